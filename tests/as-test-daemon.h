/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <json-glib/json-glib.h>
#include <libsoup/soup.h>

G_BEGIN_DECLS

/* how long a daemon may take to report its port on --ready-fd */
#define AS_TEST_DAEMON_READY_TIMEOUT_MS 10000
/* how long a SIGTERM'd daemon may take to exit */
#define AS_TEST_DAEMON_STOP_TIMEOUT_MS 10000
/* client-side I/O timeout of every request */
#define AS_TEST_HTTP_TIMEOUT_S 30
/* every test case must finish within this, or the process is killed (and its daemons with it) */
#define AS_TEST_WATCHDOG_S 60

#define AS_TYPE_TEST_DAEMON (as_test_daemon_get_type())
G_DECLARE_FINAL_TYPE(AsTestDaemon, as_test_daemon, AS, TEST_DAEMON, GObject)

/* one HTTP answer, body read in full (tests only fetch small replies) */
typedef struct {
	guint status;
	SoupMessageHeaders *headers; /* owned ref, response headers */
	GBytes *body;		     /* owned, never NULL */
	JsonNode *json;		     /* owned, NULL when the body is not JSON */
} AsTestReply;

void as_test_reply_free(AsTestReply *reply);
JsonObject *as_test_reply_object(AsTestReply *reply);
const gchar *as_test_reply_text(AsTestReply *reply);
const gchar *as_test_reply_header(AsTestReply *reply, const gchar *name);
void as_test_reply_assert_status(AsTestReply *reply, guint status);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(AsTestReply, as_test_reply_free)

AsTestDaemon *as_test_daemon_new(void);
void as_test_daemon_add_arg(AsTestDaemon *self, const gchar *arg);
void as_test_daemon_set_save_to(AsTestDaemon *self, const gchar *path);
void as_test_daemon_set_auth(AsTestDaemon *self, gboolean auth);
void as_test_daemon_set_dbus_address(AsTestDaemon *self, const gchar *address);
gboolean as_test_daemon_start(AsTestDaemon *self, GError **error);
gint as_test_daemon_stop(AsTestDaemon *self);
void as_test_daemon_kill(AsTestDaemon *self);
void as_test_daemon_send_signal(AsTestDaemon *self, gint signum);
gboolean as_test_daemon_wait_exit(AsTestDaemon *self, guint timeout_ms, gint *exit_status);
gboolean as_test_daemon_is_running(AsTestDaemon *self);
guint64 as_test_daemon_get_rss_kib(AsTestDaemon *self);

guint16 as_test_daemon_get_port(AsTestDaemon *self);
guint16 as_test_daemon_get_quic_port(AsTestDaemon *self);
guint16 as_test_daemon_get_https_port(AsTestDaemon *self);
void as_test_daemon_set_https(AsTestDaemon *self, gboolean https);
void as_test_daemon_set_mdns(AsTestDaemon *self, gboolean mdns);
gchar *as_test_daemon_dup_cert_sha256(AsTestDaemon *self);
const gchar *as_test_daemon_get_token(AsTestDaemon *self);
const gchar *as_test_daemon_get_root(AsTestDaemon *self);
const gchar *as_test_daemon_get_save_dir(AsTestDaemon *self);
const gchar *as_test_daemon_get_staging_dir(AsTestDaemon *self);
const gchar *as_test_daemon_get_history_path(AsTestDaemon *self);
const gchar *as_test_daemon_get_audit_path(AsTestDaemon *self);
const gchar *as_test_daemon_get_env(AsTestDaemon *self, const gchar *name);
SoupSession *as_test_daemon_get_session(AsTestDaemon *self);
gchar *as_test_daemon_url(AsTestDaemon *self, const gchar *path_and_query);

SoupMessage *as_test_daemon_message(AsTestDaemon *self,
				    const gchar *method,
				    const gchar *path_and_query,
				    const gchar *token);
AsTestReply *
as_test_daemon_send(AsTestDaemon *self, SoupMessage *msg, GBytes *body, const gchar *content_type);
AsTestReply *as_test_daemon_send_file(AsTestDaemon *self, SoupMessage *msg, const gchar *path);
AsTestReply *as_test_daemon_get(AsTestDaemon *self, const gchar *path_and_query);
AsTestReply *as_test_daemon_put_bytes(AsTestDaemon *self,
				      const gchar *escaped_rel_path,
				      GBytes *body,
				      const gchar *sha256);
AsTestReply *as_test_daemon_post_empty(AsTestDaemon *self, const gchar *path_and_query);
AsTestReply *as_test_daemon_send_chunk(AsTestDaemon *self,
				       const gchar *task_id,
				       const gchar *filename,
				       const gchar *src_path,
				       guint64 total_size,
				       guint64 chunk_size,
				       guint32 index,
				       gboolean with_hash);
gchar *as_test_chunk_query(const gchar *task_id,
			   const gchar *filename,
			   guint64 total_size,
			   guint64 chunk_size,
			   guint32 index);
GBytes *as_test_read_range(const gchar *path, guint64 offset, guint64 length);

AsTestReply *as_test_daemon_raw_request(AsTestDaemon *self, const gchar *head, GBytes *body);
GSocketConnection *as_test_daemon_raw_connect(AsTestDaemon *self);
AsTestReply *as_test_raw_read_reply(GSocketConnection *conn);
void as_test_raw_write_all(GSocketConnection *conn, const void *data, gsize len);

GPtrArray *as_test_read_jsonl(const gchar *path);
gchar *as_test_write_random_file(const gchar *path, guint64 size, guint32 seed);
GBytes *as_test_random_bytes(gsize size, guint32 seed);
gchar *as_test_file_sha256(const gchar *path);
gchar *as_test_bytes_sha256(GBytes *bytes);
guint as_test_count_staging_temps(AsTestDaemon *self);
gboolean as_test_wait_for(gboolean (*check)(gpointer), gpointer user_data, guint timeout_ms);
gboolean as_test_dir_is_empty(const gchar *path);
void as_test_rm_rf(const gchar *path);
void as_test_watchdog_arm(void);
gchar *as_test_random_token(void);
void as_test_init(gint *argc, gchar ***argv);

G_END_DECLS
