/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "as-test-daemon.h"

G_BEGIN_DECLS

/* helpers of the tests where a sender aerosyncd on a private bus (GTestDBus) sends to a
 * receiver aerosyncd over loopback: as-send-test and as-send-quic-test */

#define AS_TEST_MANAGER1	  "org.aerosync.Manager1"
#define AS_TEST_TRANSFER1	  "org.aerosync.Transfer1"
#define AS_TEST_CALL_TIMEOUT_MS	  10000
#define AS_TEST_NAME_TIMEOUT_MS	  10000
#define AS_TEST_FINISH_TIMEOUT_MS 40000

/* a TCP proxy in front of a receiver's HTTP port, run by the test's main loop: it counts what
 * goes to the receiver, can stall uploads past a limit, and can rewrite replies */
typedef struct {
	GSocketService *service;
	guint16 port;
	guint16 target_port;
	guint n_conns;
	guint64 up_bytes;   /* client to receiver */
	guint64 up_limit;   /* past this, uploads stall (nothing more is read); 0: never */
	GPtrArray *stalled; /* (element-type AsTestPipe): each holds a ref */
	gchar *find;	    /* NULL, or replaced by @replace in replies (same length) */
	gchar *replace;
} AsTestProxy;

AsTestProxy *as_test_proxy_new(guint16 target_port);
void as_test_proxy_cut_stalled(AsTestProxy *proxy);
void as_test_proxy_free(AsTestProxy *proxy);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(AsTestProxy, as_test_proxy_free)

void as_test_send_bus_up(void);
void as_test_send_bus_down(void);
GDBusConnection *as_test_connection(void);
void as_test_sender_start(AsTestDaemon *sender, GDBusConnection *conn);
AsTestDaemon *as_test_sender_new(GDBusConnection *conn);

gchar *as_test_token_file(AsTestDaemon *sender, AsTestDaemon *receiver);
GVariantBuilder *as_test_options_with_token(AsTestDaemon *sender, AsTestDaemon *receiver);
gchar *as_test_send(GDBusConnection *conn,
		    const gchar *const *paths,
		    const gchar *destination,
		    GVariantBuilder *options,
		    GError **error);
void as_test_call_transfer(GDBusConnection *conn,
			   const gchar *path,
			   const gchar *method,
			   GVariant *args,
			   GError **error);

GVariant *as_test_props(GDBusConnection *conn, const gchar *path);
gchar *as_test_prop_string(GVariant *props, const gchar *key);
guint64 as_test_prop_u64(GVariant *props, const gchar *key);
guint32 as_test_prop_u32(GVariant *props, const gchar *key);
gchar *as_test_state(GDBusConnection *conn, const gchar *path);
gchar *as_test_transfer_id(GDBusConnection *conn, const gchar *path);
GVariant *
as_test_wait_state(GDBusConnection *conn, const gchar *path, const gchar *state, guint timeout_ms);
GVariant *as_test_wait_completed(GDBusConnection *conn, const gchar *path);

gchar *as_test_mkdir(AsTestDaemon *d, const gchar *name);
void as_test_assert_received(AsTestDaemon *receiver, const gchar *name, const gchar *sha256);
guint64 as_test_received_chunks(AsTestDaemon *receiver, const gchar *task_id);
void as_test_run_for(guint ms);
gchar *as_test_wait_failed(GDBusConnection *conn, const gchar *path);
guint as_test_count_history(AsTestDaemon *d, const gchar *direction, const gchar *protocol);
gchar *as_test_known_peers_path(AsTestDaemon *sender);
gchar *as_test_one_file(AsTestDaemon *sender, const gchar *name, guint64 size, guint32 seed);

G_END_DECLS
