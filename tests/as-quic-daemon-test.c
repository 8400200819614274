/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "AsQuicDaemonTest"

#include "config.h"

#include <fcntl.h>
#include <gio/gunixinputstream.h>
#include <glib-unix.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "as-error.h"
#include "as-quic-client.h"
#include "as-test-daemon.h"

/*
 * aerosyncd receiving over QUIC (0.x framing): the real daemon on loopback, driven by our QUIC
 * client, checked from the outside (files, history, audit, /health, /metrics) like the HTTP
 * tests do, so "a file uploaded over QUIC is indistinguishable downstream" is what is tested.
 */

#define AS_TEST_FILE_SIZE  (300 * 1024 + 17)
#define AS_TEST_MANY_FILES 20
#define AS_TEST_MANY_SIZE  (16 * 1024)
#define AS_TEST_ABORT_SIZE (64 * 1024 * 1024)
/* what the pipe holds: one read block of the client, and the most an unprivileged pipe takes */
#define AS_TEST_ABORT_PART	    AS_QUIC_CLIENT_READ_SIZE
#define AS_TEST_FLOOD_PACKETS	    20000
#define AS_TEST_FLOOD_RSS_SLACK_KIB (16 * 1024)
#define AS_TEST_SETTLE_MS	    5000
#define AS_TEST_HANDSHAKE_MS	    10000

typedef struct {
	gboolean done;
	gchar *reply;
	GError *error;
} AsTestResult;

static void
as_test_result_clear(AsTestResult *r)
{
	g_clear_pointer(&r->reply, g_free);
	g_clear_error(&r->error);
	r->done = FALSE;
}

static void
as_test_wait(gboolean *done)
{
	while (!*done)
		g_main_context_iteration(NULL, TRUE);
}

static void
as_test_connect_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	AsTestResult *r = user_data;
	if (as_quic_client_connect_finish(AS_QUIC_CLIENT(source), res, &r->error))
		r->reply = g_strdup("connected");
	r->done = TRUE;
}

static void
as_test_upload_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	AsTestResult *r = user_data;
	r->reply = as_quic_client_upload_finish(AS_QUIC_CLIENT(source), res, &r->error);
	r->done = TRUE;
}

static AsTestDaemon *
as_test_started(const gchar *first_arg, ...)
{
	AsTestDaemon *d;
	g_autoptr(GError) error = NULL;
	va_list args;

	d = as_test_daemon_new();
	va_start(args, first_arg);
	for (const gchar *arg = first_arg; arg != NULL; arg = va_arg(args, const gchar *))
		as_test_daemon_add_arg(d, arg);
	va_end(args);
	as_test_daemon_start(d, &error);
	g_assert_no_error(error);
	return d;
}

/* a client that pins the certificate /health advertises */
static AsQuicClient *
as_test_client(AsTestDaemon *d)
{
	g_autofree gchar *fp = as_test_daemon_dup_cert_sha256(d);
	AsQuicClient *client = as_quic_client_new("127.0.0.1", as_test_daemon_get_quic_port(d));
	AsTestResult r = {0};

	g_assert_nonnull(fp);
	as_quic_client_set_pin(client, fp);
	as_quic_client_set_handshake_timeout_ms(client, AS_TEST_HANDSHAKE_MS);
	as_quic_client_connect_async(client, NULL, as_test_connect_cb, &r);
	as_test_wait(&r.done);
	g_assert_no_error(r.error);
	as_test_result_clear(&r);
	return client;
}

static void
as_test_upload_async(AsQuicClient *client,
		     const gchar *name,
		     GBytes *bytes,
		     const gchar *token,
		     const gchar *sha256,
		     GCancellable *cancellable,
		     AsTestResult *r)
{
	g_autoptr(GInputStream) stream = g_memory_input_stream_new_from_bytes(bytes);
	as_quic_client_upload_async(client, name, stream, g_bytes_get_size(bytes), token, sha256,
				    cancellable, as_test_upload_cb, r);
}

static void
as_test_upload(AsQuicClient *client,
	       const gchar *name,
	       GBytes *bytes,
	       const gchar *token,
	       const gchar *sha256,
	       AsTestResult *r)
{
	as_test_upload_async(client, name, bytes, token, sha256, NULL, r);
	as_test_wait(&r->done);
}

static gchar *
as_test_saved(AsTestDaemon *d, const gchar *rel)
{
	return g_build_filename(as_test_daemon_get_save_dir(d), rel, NULL);
}

static JsonObject *
as_test_last_history(AsTestDaemon *d)
{
	g_autoptr(GPtrArray) lines = as_test_read_jsonl(as_test_daemon_get_history_path(d));
	g_assert_cmpuint(lines->len, >, 0);
	return json_object_ref(g_ptr_array_index(lines, lines->len - 1));
}

/* entries of the receive directory other than the staging folder */
static guint
as_test_count_published(AsTestDaemon *d)
{
	g_autoptr(GDir) dir = g_dir_open(as_test_daemon_get_save_dir(d), 0, NULL);
	const gchar *name;
	guint n = 0;

	while (dir != NULL && (name = g_dir_read_name(dir)) != NULL) {
		if (g_strcmp0(name, ".aerosync") != 0)
			n++;
	}
	return n;
}

static gboolean
as_test_staging_empty_cb(gpointer user_data)
{
	return as_test_count_staging_temps(user_data) == 0;
}

/* one file: saved verified, the history and /metrics tell it as they do for HTTP */
static void
as_test_quic_upload(void)
{
	g_autoptr(AsTestDaemon) d = NULL;
	g_autoptr(AsQuicClient) client = NULL;
	g_autoptr(GBytes) bytes = as_test_random_bytes(AS_TEST_FILE_SIZE, 1);
	g_autofree gchar *sha = as_test_bytes_sha256(bytes);
	g_autofree gchar *saved = NULL;
	g_autofree gchar *saved_sha = NULL;
	g_autoptr(JsonObject) entry = NULL;
	g_autoptr(AsTestReply) metrics = NULL;
	AsTestResult r = {0};

	as_test_watchdog_arm();
	d = as_test_started(NULL);
	g_assert_cmpuint(as_test_daemon_get_quic_port(d), !=, 0);
	client = as_test_client(d);

	as_test_upload(client, "dir/one.bin", bytes, as_test_daemon_get_token(d), sha, &r);
	g_assert_no_error(r.error);
	saved = as_test_saved(d, "dir/one.bin");
	saved_sha = as_test_file_sha256(saved);
	g_assert_cmpstr(saved_sha, ==, sha);
	g_assert_cmpuint(as_test_count_staging_temps(d), ==, 0);

	entry = as_test_last_history(d);
	g_assert_cmpstr(json_object_get_string_member(entry, "protocol"), ==, "quic");
	g_assert_cmpstr(json_object_get_string_member(entry, "direction"), ==, "receive");
	g_assert_cmpstr(json_object_get_string_member(entry, "filename"), ==, "dir/one.bin");
	g_assert_cmpstr(json_object_get_string_member(entry, "sha256"), ==, sha);
	g_assert_cmpstr(json_object_get_string_member(entry, "remote_ip"), ==, "127.0.0.1");
	g_assert_cmpint(json_object_get_int_member(entry, "size"), ==, AS_TEST_FILE_SIZE);
	g_assert_true(json_object_get_boolean_member(entry, "success"));

	metrics = as_test_daemon_get(d, "/metrics");
	as_test_reply_assert_status(metrics, 200);
	g_assert_nonnull(strstr(as_test_reply_text(metrics), "aerosync_files_received_total 1\n"));

	/* a second upload of the same name is kept beside the first, as over HTTP */
	as_test_result_clear(&r);
	as_test_upload(client, "dir/one.bin", bytes, as_test_daemon_get_token(d), NULL, &r);
	g_assert_no_error(r.error);
	g_free(saved);
	saved = as_test_saved(d, "dir/one_1.bin");
	g_assert_true(g_file_test(saved, G_FILE_TEST_IS_REGULAR));
	as_test_result_clear(&r);
}

/* refusals: wrong hash, bad token, hostile name; nothing appears, nothing is left staged */
static void
as_test_quic_refusals(void)
{
	g_autoptr(AsTestDaemon) d = NULL;
	g_autoptr(AsQuicClient) client = NULL;
	g_autoptr(GBytes) bytes = as_test_random_bytes(AS_TEST_FILE_SIZE, 2);
	g_autofree gchar *wrong = g_strnfill(64, 'a'); /* valid hex, not the hash of the bytes */
	g_autofree gchar *saved = NULL;
	g_autoptr(GPtrArray) audit = NULL;
	gboolean auth_failed = FALSE;
	AsTestResult r = {0};

	as_test_watchdog_arm();
	d = as_test_daemon_new();
	as_test_daemon_add_arg(d, "--audit-log");
	as_test_daemon_add_arg(d, as_test_daemon_get_audit_path(d));
	g_assert_true(as_test_daemon_start(d, NULL));
	client = as_test_client(d);

	as_test_upload(client, "wrong.bin", bytes, as_test_daemon_get_token(d), wrong, &r);
	g_assert_error(r.error, AS_ERROR, AS_ERROR_HASH_MISMATCH);
	saved = as_test_saved(d, "wrong.bin");
	g_assert_false(g_file_test(saved, G_FILE_TEST_EXISTS));
	as_test_result_clear(&r);

	as_test_upload(client, "token.bin", bytes, "not-a-token", NULL, &r);
	g_assert_error(r.error, AS_ERROR, AS_ERROR_PERMISSION_DENIED);
	as_test_result_clear(&r);
	as_test_upload(client, "token.bin", bytes, NULL, NULL, &r);
	g_assert_error(r.error, AS_ERROR, AS_ERROR_PERMISSION_DENIED);
	as_test_result_clear(&r);
	g_free(saved);
	saved = as_test_saved(d, "token.bin");
	g_assert_false(g_file_test(saved, G_FILE_TEST_EXISTS));

	as_test_upload(client, "../escape.bin", bytes, as_test_daemon_get_token(d), NULL, &r);
	g_assert_error(r.error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT);
	as_test_result_clear(&r);
	g_free(saved);
	saved = g_build_filename(as_test_daemon_get_root(d), "escape.bin", NULL);
	g_assert_false(g_file_test(saved, G_FILE_TEST_EXISTS));

	g_assert_true(as_test_wait_for(as_test_staging_empty_cb, d, AS_TEST_SETTLE_MS));
	g_assert_cmpuint(as_test_count_published(d), ==, 0);

	/* the refused token is audited with its protocol */
	audit = as_test_read_jsonl(as_test_daemon_get_audit_path(d));
	for (guint i = 0; i < audit->len; i++) {
		JsonObject *obj = g_ptr_array_index(audit, i);
		JsonObject *ev = json_object_get_object_member(obj, "event");
		if (g_strcmp0(json_object_get_string_member_with_default(obj, "protocol", ""),
			      "quic") == 0 &&
		    ev != NULL &&
		    g_strcmp0(json_object_get_string_member_with_default(ev, "type", ""),
			      "auth_failed") == 0)
			auth_failed = TRUE;
	}
	g_assert_true(auth_failed);
}

/* many files at once on one connection, each on its own stream */
static void
as_test_quic_many(void)
{
	g_autoptr(AsTestDaemon) d = NULL;
	g_autoptr(AsQuicClient) client = NULL;
	AsTestResult r[AS_TEST_MANY_FILES] = {0};
	g_autoptr(GPtrArray) bodies = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);

	as_test_watchdog_arm();
	d = as_test_started(NULL);
	client = as_test_client(d);
	for (guint i = 0; i < AS_TEST_MANY_FILES; i++) {
		g_autofree gchar *name = g_strdup_printf("many/f%02u", i);
		GBytes *bytes = as_test_random_bytes(AS_TEST_MANY_SIZE + i, 100 + i);
		g_autofree gchar *sha = as_test_bytes_sha256(bytes);
		g_ptr_array_add(bodies, bytes);
		as_test_upload_async(client, name, bytes, as_test_daemon_get_token(d), sha, NULL,
				     &r[i]);
	}
	for (guint i = 0; i < AS_TEST_MANY_FILES; i++) {
		g_autofree gchar *name = g_strdup_printf("many/f%02u", i);
		g_autofree gchar *saved = as_test_saved(d, name);
		g_autofree gchar *sha = NULL;
		g_autofree gchar *expected = as_test_bytes_sha256(g_ptr_array_index(bodies, i));

		as_test_wait(&r[i].done);
		g_assert_no_error(r[i].error);
		sha = as_test_file_sha256(saved);
		g_assert_cmpstr(sha, ==, expected);
		as_test_result_clear(&r[i]);
	}
}

static gboolean
as_test_staging_busy_cb(gpointer user_data)
{
	return as_test_count_staging_temps(user_data) > 0;
}

/* a sender that gives up mid-file: the transfer fails, its staging goes, nothing is published.
 * The body comes from a pipe that holds only part of it, so the upload cannot finish first. */
static void
as_test_quic_abort(void)
{
	g_autoptr(AsTestDaemon) d = NULL;
	g_autoptr(AsQuicClient) client = NULL;
	g_autoptr(GCancellable) cancellable = g_cancellable_new();
	g_autoptr(GBytes) part = as_test_random_bytes(AS_TEST_ABORT_PART, 3);
	g_autoptr(GInputStream) stream = NULL;
	g_autofree gchar *saved = NULL;
	g_autoptr(JsonObject) entry = NULL;
	g_autoptr(GError) error = NULL;
	AsTestResult r = {0};
	gint fds[2];

	as_test_watchdog_arm();
	d = as_test_started(NULL);
	client = as_test_client(d);
	g_assert_true(g_unix_open_pipe(fds, FD_CLOEXEC, &error));
	g_assert_no_error(error);
	/* the client reads its body in blocks of AS_QUIC_CLIENT_READ_SIZE: the pipe must hold one
	 */
	g_assert_cmpint(fcntl(fds[1], F_SETPIPE_SZ, AS_TEST_ABORT_PART), >=, AS_TEST_ABORT_PART);
	g_assert_true(g_unix_set_fd_nonblocking(fds[1], TRUE, &error));
	g_assert_cmpint(write(fds[1], g_bytes_get_data(part, NULL), AS_TEST_ABORT_PART), ==,
			AS_TEST_ABORT_PART);
	stream = g_unix_input_stream_new(fds[0], TRUE);
	as_quic_client_upload_async(client, "aborted.bin", stream, AS_TEST_ABORT_SIZE,
				    as_test_daemon_get_token(d), NULL, cancellable,
				    as_test_upload_cb, &r);
	/* the receiver has begun staging it */
	while (!as_test_staging_busy_cb(d))
		g_main_context_iteration(NULL, FALSE);
	g_assert_false(r.done);
	g_cancellable_cancel(cancellable);
	as_test_wait(&r.done);
	g_assert_error(r.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
	as_test_result_clear(&r);
	close(fds[1]);

	g_assert_true(as_test_wait_for(as_test_staging_empty_cb, d, AS_TEST_SETTLE_MS));
	saved = as_test_saved(d, "aborted.bin");
	g_assert_false(g_file_test(saved, G_FILE_TEST_EXISTS));
	entry = as_test_last_history(d);
	g_assert_cmpstr(json_object_get_string_member(entry, "protocol"), ==, "quic");
	g_assert_false(json_object_get_boolean_member(entry, "success"));
}

/* routing rules see QUIC uploads: extension and sender address */
static void
as_test_quic_routing(void)
{
	g_autoptr(AsTestDaemon) d = as_test_daemon_new();
	g_autoptr(AsQuicClient) client = NULL;
	g_autoptr(GBytes) bytes = as_test_random_bytes(1000, 4);
	g_autofree gchar *conf = g_build_filename(as_test_daemon_get_root(d), "d.conf", NULL);
	g_autofree gchar *arg = g_strdup_printf("--config=%s", conf);
	g_autofree gchar *images = NULL;
	g_autofree gchar *lan = NULL;
	g_autoptr(GError) error = NULL;
	AsTestResult r = {0};

	as_test_watchdog_arm();
	g_assert_true(g_file_set_contents(conf,
					  "[route images]\nextension=jpg\ndestination=images\n"
					  "[route local]\nsender-ip=127.0.0.0/8\ndestination=lan\n",
					  -1, &error));
	as_test_daemon_add_arg(d, arg);
	g_assert_true(as_test_daemon_start(d, &error));
	g_assert_no_error(error);
	client = as_test_client(d);

	as_test_upload(client, "a.JPG", bytes, as_test_daemon_get_token(d), NULL, &r);
	g_assert_no_error(r.error);
	as_test_result_clear(&r);
	as_test_upload(client, "b.txt", bytes, as_test_daemon_get_token(d), NULL, &r);
	g_assert_no_error(r.error);
	as_test_result_clear(&r);
	images = as_test_saved(d, "images/a.JPG");
	lan = as_test_saved(d, "lan/b.txt");
	g_assert_true(g_file_test(images, G_FILE_TEST_IS_REGULAR));
	g_assert_true(g_file_test(lan, G_FILE_TEST_IS_REGULAR));
}

/* the identity: kept across restarts, replaced by --tls-cert/--tls-key, off with --http-only */
static void
as_test_quic_identity(void)
{
	g_autoptr(AsTestDaemon) d = NULL;
	g_autoptr(AsTestDaemon) other = NULL;
	g_autoptr(AsTestDaemon) http_only = NULL;
	g_autoptr(AsTestReply) health = NULL;
	g_autofree gchar *fp = NULL;
	g_autofree gchar *fp_again = NULL;
	g_autofree gchar *fp_other = NULL;
	g_autofree gchar *cert = NULL;
	g_autofree gchar *key = NULL;
	g_autofree gchar *cert_arg = NULL;
	g_autofree gchar *key_arg = NULL;
	g_autoptr(GError) error = NULL;
	JsonArray *protocols;

	as_test_watchdog_arm();
	d = as_test_started(NULL);
	fp = as_test_daemon_dup_cert_sha256(d);
	g_assert_cmpuint(strlen(fp), ==, 64);
	g_assert_cmpint(as_test_daemon_stop(d), ==, 0);
	g_assert_true(as_test_daemon_start(d, &error));
	g_assert_no_error(error);
	fp_again = as_test_daemon_dup_cert_sha256(d);
	g_assert_cmpstr(fp_again, ==, fp);

	/* another daemon presenting the first one's PEM files has its fingerprint */
	cert = g_build_filename(as_test_daemon_get_root(d), "state", "aerosync", "cert.pem", NULL);
	key = g_build_filename(as_test_daemon_get_root(d), "state", "aerosync", "key.pem", NULL);
	g_assert_true(g_file_test(cert, G_FILE_TEST_IS_REGULAR));
	cert_arg = g_strdup_printf("--tls-cert=%s", cert);
	key_arg = g_strdup_printf("--tls-key=%s", key);
	other = as_test_started(cert_arg, key_arg, NULL);
	fp_other = as_test_daemon_dup_cert_sha256(other);
	g_assert_cmpstr(fp_other, ==, fp);
	g_clear_object(&other);

	/* a certificate without its key is a configuration error, not a silent fallback */
	other = as_test_daemon_new();
	as_test_daemon_add_arg(other, cert_arg);
	g_assert_false(as_test_daemon_start(other, &error));
	g_assert_nonnull(error);
	g_clear_error(&error);

	http_only = as_test_started("--http-only", NULL);
	g_assert_cmpuint(as_test_daemon_get_quic_port(http_only), ==, 0);
	health = as_test_daemon_get(http_only, "/health");
	protocols = json_object_get_array_member(as_test_reply_object(health), "protocols");
	g_assert_cmpuint(json_array_get_length(protocols), ==, 1);
	g_assert_false(json_object_has_member(as_test_reply_object(health), "cert_sha256"));
}

typedef struct {
	AsTestDaemon *d;
	AsQuicClient *client;
	GBytes *bytes;
} AsTestReloadCtx;

static gboolean
as_test_reload_applied_cb(gpointer user_data)
{
	AsTestReloadCtx *ctx = user_data;
	g_autofree gchar *saved = as_test_saved(ctx->d, "r/big.bin");
	AsTestResult r = {0};
	gboolean ok;

	as_test_upload(ctx->client, "big.bin", ctx->bytes, as_test_daemon_get_token(ctx->d), NULL,
		       &r);
	ok = r.error == NULL;
	as_test_result_clear(&r);
	return ok && g_file_test(saved, G_FILE_TEST_IS_REGULAR);
}

/* SIGHUP reaches the running QUIC listener: limits and routes apply to the next stream */
static void
as_test_quic_reload(void)
{
	g_autoptr(AsTestDaemon) d = as_test_daemon_new();
	g_autoptr(AsQuicClient) client = NULL;
	g_autoptr(GBytes) bytes = as_test_random_bytes(4000, 6);
	g_autofree gchar *conf = g_build_filename(as_test_daemon_get_root(d), "d.conf", NULL);
	g_autofree gchar *arg = g_strdup_printf("--config=%s", conf);
	g_autoptr(GError) error = NULL;
	AsTestReloadCtx ctx = {0};
	AsTestResult r = {0};

	as_test_watchdog_arm();
	g_assert_true(g_file_set_contents(conf, "[daemon]\nmax-size=1KiB\n", -1, &error));
	as_test_daemon_add_arg(d, arg);
	g_assert_true(as_test_daemon_start(d, &error));
	g_assert_no_error(error);
	client = as_test_client(d);
	as_test_upload(client, "big.bin", bytes, as_test_daemon_get_token(d), NULL, &r);
	g_assert_error(r.error, AS_ERROR, AS_ERROR_TOO_LARGE);
	as_test_result_clear(&r);

	g_assert_true(g_file_set_contents(
		conf, "[daemon]\nmax-size=1MiB\n[route r]\nextension=bin\ndestination=r\n", -1,
		&error));
	as_test_daemon_send_signal(d, SIGHUP);
	ctx.d = d;
	ctx.client = client;
	ctx.bytes = bytes;
	g_assert_true(as_test_wait_for(as_test_reload_applied_cb, &ctx, AS_TEST_SETTLE_MS));
}

/* junk on the QUIC port: the daemon keeps serving and does not grow */
static void
as_test_quic_flood(void)
{
	g_autoptr(AsTestDaemon) d = NULL;
	g_autoptr(AsQuicClient) client = NULL;
	g_autoptr(GSocket) sock = NULL;
	g_autoptr(GInetAddress) lo = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
	g_autoptr(GSocketAddress) addr = NULL;
	g_autoptr(GBytes) bytes = as_test_random_bytes(1000, 5);
	g_autoptr(GError) error = NULL;
	g_autoptr(GRand) rand = g_rand_new_with_seed(5);
	guint8 pkt[1200];
	guint64 rss_before, rss_after;
	AsTestResult r = {0};

	as_test_watchdog_arm();
	d = as_test_started(NULL);
	addr = g_inet_socket_address_new(lo, as_test_daemon_get_quic_port(d));
	sock = g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_DATAGRAM, G_SOCKET_PROTOCOL_UDP,
			    &error);
	g_assert_no_error(error);
	rss_before = as_test_daemon_get_rss_kib(d);
	for (guint i = 0; i < AS_TEST_FLOOD_PACKETS; i++) {
		for (guint j = 0; j < sizeof(pkt); j += 4) {
			guint32 v = g_rand_int(rand);
			memcpy(pkt + j, &v, 4);
		}
		/* every other one looks like a long-header Initial of QUIC v1 */
		if (i % 2 == 0) {
			pkt[0] = 0xc0;
			pkt[1] = pkt[2] = pkt[3] = 0;
			pkt[4] = 1;
			pkt[5] = 8;
		}
		g_socket_send_to(sock, addr, (const gchar *)pkt,
				 i % 3 == 0 ? sizeof(pkt) : 1 + i % sizeof(pkt), NULL, NULL);
		if (i % 256 == 0)
			g_usleep(1000);
	}
	client = as_test_client(d);
	as_test_upload(client, "after-flood.bin", bytes, as_test_daemon_get_token(d), NULL, &r);
	g_assert_no_error(r.error);
	as_test_result_clear(&r);
	rss_after = as_test_daemon_get_rss_kib(d);
	g_assert_true(as_test_daemon_is_running(d));
	g_assert_cmpuint(rss_after, <, rss_before + AS_TEST_FLOOD_RSS_SLACK_KIB);
}

int
main(int argc, char **argv)
{
	as_test_init(&argc, &argv);
	g_test_add_func("/aerosync/quic-daemon/upload", as_test_quic_upload);
	g_test_add_func("/aerosync/quic-daemon/refusals", as_test_quic_refusals);
	g_test_add_func("/aerosync/quic-daemon/many", as_test_quic_many);
	g_test_add_func("/aerosync/quic-daemon/abort", as_test_quic_abort);
	g_test_add_func("/aerosync/quic-daemon/routing", as_test_quic_routing);
	g_test_add_func("/aerosync/quic-daemon/identity", as_test_quic_identity);
	g_test_add_func("/aerosync/quic-daemon/reload", as_test_quic_reload);
	g_test_add_func("/aerosync/quic-daemon/flood", as_test_quic_flood);
	return g_test_run();
}
