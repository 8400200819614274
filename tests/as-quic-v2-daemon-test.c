/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "AsQuicV2DaemonTest"

#include "config.h"

#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#include "as-error.h"
#include "as-quic-client.h"
#include "as-quic-v2.h"
#include "as-test-daemon.h"

/*
 * aerosyncd receiving `aerosync/2`: the real daemon on loopback. The chunk state is the HTTP
 * chunk store's, so a task started over QUIC is finished over HTTP (/upload/status shows what
 * QUIC stored, /upload/chunk and /upload/complete do the rest) and the other way round.
 * Skipped while the daemon does not offer aerosync/2.
 */

#define AS_TEST_CHUNK_SIZE   AS_QUIC_V2_MIN_CHUNK_SIZE
#define AS_TEST_FILE_SIZE    (5 * AS_TEST_CHUNK_SIZE + 1000)
#define AS_TEST_TOTAL_CHUNKS 6
#define AS_TEST_HANDSHAKE_MS 10000

typedef struct {
	gboolean done;
	AsQuicV2UploadResult *result;
	GBytes *reply;
	GError *error;
} AsTestResult;

static void
as_test_result_clear(AsTestResult *r)
{
	g_clear_pointer(&r->result, as_quic_v2_upload_result_free);
	g_clear_pointer(&r->reply, g_bytes_unref);
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
	(void)as_quic_client_connect_finish(AS_QUIC_CLIENT(source), res, &r->error);
	r->done = TRUE;
}

static void
as_test_upload_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	AsTestResult *r = user_data;
	r->result = as_quic_client_v2_upload_finish(AS_QUIC_CLIENT(source), res, &r->error);
	r->done = TRUE;
}

static void
as_test_request_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	AsTestResult *r = user_data;
	r->reply = as_quic_client_request_bytes_finish(AS_QUIC_CLIENT(source), res, &r->error);
	r->done = TRUE;
}

static AsTestDaemon *
as_test_started(void)
{
	AsTestDaemon *d = as_test_daemon_new();
	g_autoptr(GError) error = NULL;

	as_test_daemon_start(d, &error);
	g_assert_no_error(error);
	return d;
}

/* an aerosync/2 client pinned to the daemon's certificate; NULL (test skipped) when the
 * daemon does not speak aerosync/2 */
static AsQuicClient *
as_test_client(AsTestDaemon *d, const gchar *token)
{
	g_autofree gchar *fp = as_test_daemon_dup_cert_sha256(d);
	g_autoptr(AsQuicClient) client = NULL;
	AsTestResult r = {0};

	if (as_test_daemon_get_quic_port(d) == 0) {
		g_test_skip("aerosyncd has no QUIC port");
		return NULL;
	}
	client = as_quic_client_new("127.0.0.1", as_test_daemon_get_quic_port(d));
	as_quic_client_set_alpn(client, AS_QUIC_ALPN_V2);
	as_quic_client_set_pin(client, fp);
	as_quic_client_set_token(client, token);
	as_quic_client_set_handshake_timeout_ms(client, AS_TEST_HANDSHAKE_MS);
	as_quic_client_connect_async(client, NULL, as_test_connect_cb, &r);
	as_test_wait(&r.done);
	if (g_error_matches(r.error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED)) {
		g_test_skip("aerosyncd does not offer aerosync/2");
		as_test_result_clear(&r);
		return NULL;
	}
	if (token != NULL && g_strcmp0(token, as_test_daemon_get_token(d)) == 0)
		g_assert_no_error(r.error);
	as_test_result_clear(&r);
	return g_steal_pointer(&client);
}

static void
as_test_append_frame(GByteArray *out, const AsQuicV2Msg *msg)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GByteArray) frame = as_quic_v2_encode(msg, &error);
	g_assert_no_error(error);
	g_byte_array_append(out, frame->data, frame->len);
}

static void
as_test_append_chunk(GByteArray *out, const gchar *path, guint32 index)
{
	AsQuicV2Msg msg = {.type = AS_QUIC_V2_MSG_CHUNK};
	guint64 offset = (guint64)index * AS_TEST_CHUNK_SIZE;
	guint64 length = MIN(AS_TEST_CHUNK_SIZE, AS_TEST_FILE_SIZE - offset);
	g_autoptr(GBytes) data = as_test_read_range(path, offset, length);
	g_autofree gchar *hex = as_test_bytes_sha256(data);
	guint8 digest[AS_QUIC_V2_DIGEST_SIZE];

	msg.index = index;
	msg.offset = offset;
	msg.length = length;
	as_test_append_frame(out, &msg);
	g_byte_array_append(out, g_bytes_get_data(data, NULL), (guint)length);
	for (guint i = 0; i < AS_QUIC_V2_DIGEST_SIZE; i++)
		digest[i] = (guint8)((g_ascii_xdigit_value(hex[2 * i]) << 4) |
				     g_ascii_xdigit_value(hex[2 * i + 1]));
	g_byte_array_append(out, digest, sizeof(digest));
}

/* the type of the last frame of a reply */
static guint8
as_test_last_frame(GBytes *reply, guint16 *code)
{
	gsize len = 0;
	const guint8 *p = g_bytes_get_data(reply, &len);
	guint8 type = 0;

	while (len > 0) {
		AsQuicV2Msg msg = {0};
		gsize frame_len = 0;
		g_autoptr(GError) error = NULL;
		g_assert_cmpint(as_quic_v2_decode(p, len, AS_QUIC_V2_MAX_SERVER_PAYLOAD, &msg,
						  &frame_len, &error),
				==, AS_QUIC_FRAMING_RESULT_COMPLETE);
		type = msg.type;
		*code = msg.code;
		as_quic_v2_msg_clear(&msg);
		p += frame_len;
		len -= frame_len;
	}
	return type;
}

static void
as_test_assert_saved(AsTestDaemon *d, const gchar *rel, const gchar *sha256)
{
	g_autofree gchar *path = g_build_filename(as_test_daemon_get_save_dir(d), rel, NULL);
	g_autofree gchar *got = as_test_file_sha256(path);
	g_assert_cmpstr(got, ==, sha256);
}

static void
as_test_v2_quic_then_http(void)
{
	g_autoptr(AsTestDaemon) d = as_test_started();
	g_autoptr(AsQuicClient) client = as_test_client(d, as_test_daemon_get_token(d));
	g_autofree gchar *src = NULL;
	g_autofree gchar *sha = NULL;
	g_autoptr(GByteArray) req = g_byte_array_new();
	g_autoptr(GBytes) request = NULL;
	g_autoptr(AsTestReply) status = NULL;
	g_autoptr(AsTestReply) done = NULL;
	g_autofree gchar *complete = NULL;
	AsQuicV2Msg file = {.type = AS_QUIC_V2_MSG_FILE};
	AsTestResult r = {0};
	JsonArray *received;
	JsonArray *missing;
	guint16 code = 0;

	if (client == NULL)
		return;
	src = g_build_filename(as_test_daemon_get_root(d), "src.bin", NULL);
	sha = as_test_write_random_file(src, AS_TEST_FILE_SIZE, 42);

	/* over QUIC: chunks 0-2, then the sender stops (FIN) */
	file.size = AS_TEST_FILE_SIZE;
	file.chunk_size = AS_TEST_CHUNK_SIZE;
	file.sha256 = sha;
	file.task_id = (gchar *)"q2h";
	file.path = (gchar *)"v2/q2h.bin";
	as_test_append_frame(req, &file);
	for (guint32 i = 0; i < 3; i++)
		as_test_append_chunk(req, src, i);
	request = g_byte_array_free_to_bytes(g_steal_pointer(&req));
	as_quic_client_request_bytes_async(client, request, NULL, as_test_request_cb, &r);
	as_test_wait(&r.done);
	g_assert_no_error(r.error);
	/* completing with chunks missing is refused, and nothing is lost */
	g_assert_cmpint(as_test_last_frame(r.reply, &code), ==, AS_QUIC_V2_MSG_ERROR);
	g_assert_cmpint(code, ==, AS_ERROR_INCOMPLETE);
	as_test_result_clear(&r);

	/* over HTTP: the status shows what QUIC stored */
	status = as_test_daemon_get(d, "/upload/status?task_id=q2h");
	as_test_reply_assert_status(status, 200);
	g_assert_false(json_object_get_boolean_member(as_test_reply_object(status), "complete"));
	g_assert_cmpint(json_object_get_int_member(as_test_reply_object(status), "chunk_size"), ==,
			AS_TEST_CHUNK_SIZE);
	received = json_object_get_array_member(as_test_reply_object(status), "received");
	missing = json_object_get_array_member(as_test_reply_object(status), "missing");
	g_assert_cmpuint(json_array_get_length(received), ==, 1);
	g_assert_cmpint(json_array_get_int_element(json_array_get_array_element(received, 0), 0),
			==, 0);
	g_assert_cmpint(json_array_get_int_element(json_array_get_array_element(received, 0), 1),
			==, 2);
	g_assert_cmpint(json_array_get_int_element(json_array_get_array_element(missing, 0), 0), ==,
			3);

	/* ...and HTTP finishes the task */
	for (guint32 i = 3; i < AS_TEST_TOTAL_CHUNKS; i++) {
		g_autoptr(AsTestReply) chunk =
			as_test_daemon_send_chunk(d, "q2h", "v2/q2h.bin", src, AS_TEST_FILE_SIZE,
						  AS_TEST_CHUNK_SIZE, i, TRUE);
		as_test_reply_assert_status(chunk, 200);
	}
	complete = g_strdup_printf("/upload/complete?task_id=q2h&sha256=%s", sha);
	done = as_test_daemon_post_empty(d, complete);
	as_test_reply_assert_status(done, 200);
	g_assert_cmpstr(json_object_get_string_member(as_test_reply_object(done), "saved_as"), ==,
			"v2/q2h.bin");
	as_test_assert_saved(d, "v2/q2h.bin", sha);
}

static void
as_test_v2_http_then_quic(void)
{
	g_autoptr(AsTestDaemon) d = as_test_started();
	g_autoptr(AsQuicClient) client = as_test_client(d, as_test_daemon_get_token(d));
	g_autofree gchar *src = NULL;
	g_autofree gchar *sha = NULL;
	g_autoptr(AsTestReply) status = NULL;
	AsTestResult r = {0};
	int fd;

	if (client == NULL)
		return;
	src = g_build_filename(as_test_daemon_get_root(d), "src.bin", NULL);
	sha = as_test_write_random_file(src, AS_TEST_FILE_SIZE, 43);

	/* over HTTP: chunks 0 and 4 */
	for (guint32 i = 0; i < AS_TEST_TOTAL_CHUNKS; i += 4) {
		g_autoptr(AsTestReply) chunk =
			as_test_daemon_send_chunk(d, "h2q", "v2/h2q.bin", src, AS_TEST_FILE_SIZE,
						  AS_TEST_CHUNK_SIZE, i, TRUE);
		as_test_reply_assert_status(chunk, 200);
	}

	/* over QUIC: the receiver's HAVE skips those two */
	fd = open(src, O_RDONLY | O_CLOEXEC);
	g_assert_cmpint(fd, >=, 0);
	as_quic_client_v2_upload_fd_async(client, "v2/h2q.bin", fd, 0, AS_TEST_FILE_SIZE, "h2q",
					  AS_TEST_CHUNK_SIZE, sha, NULL, as_test_upload_cb, &r);
	close(fd);
	as_test_wait(&r.done);
	g_assert_no_error(r.error);
	g_assert_cmpuint(r.result->chunks_skipped, ==, 2);
	g_assert_cmpuint(r.result->chunks_sent, ==, AS_TEST_TOTAL_CHUNKS - 2);
	g_assert_cmpstr(r.result->saved_as, ==, "v2/h2q.bin");
	g_assert_cmpstr(r.result->sha256, ==, sha);
	as_test_result_clear(&r);
	as_test_assert_saved(d, "v2/h2q.bin", sha);

	status = as_test_daemon_get(d, "/upload/status?task_id=h2q");
	as_test_reply_assert_status(status, 200);
	g_assert_true(json_object_get_boolean_member(as_test_reply_object(status), "complete"));
}

static void
as_test_v2_bad_token(void)
{
	g_autoptr(AsTestDaemon) d = as_test_started();
	g_autoptr(AsQuicClient) probe = as_test_client(d, as_test_daemon_get_token(d));
	g_autoptr(AsQuicClient) client = NULL;
	g_autofree gchar *fp = NULL;
	AsTestResult r = {0};

	if (probe == NULL)
		return;
	fp = as_test_daemon_dup_cert_sha256(d);
	client = as_quic_client_new("127.0.0.1", as_test_daemon_get_quic_port(d));
	as_quic_client_set_alpn(client, AS_QUIC_ALPN_V2);
	as_quic_client_set_pin(client, fp);
	as_quic_client_set_token(client, "not-the-token");
	as_quic_client_connect_async(client, NULL, as_test_connect_cb, &r);
	as_test_wait(&r.done);
	g_assert_error(r.error, AS_ERROR, AS_ERROR_PERMISSION_DENIED);
	as_test_result_clear(&r);
}

/* a file the receiver refuses: the upload fails with the receiver's own message and code
 * from its ERROR frame, at once, not with a stream closed without a reply */
static void
as_test_v2_refused(void)
{
	g_autoptr(AsTestDaemon) d = as_test_daemon_new();
	g_autoptr(AsQuicClient) client = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *dir = NULL;
	g_autofree gchar *src = NULL;
	AsTestResult r = {0};
	int fd;

	as_test_daemon_add_arg(d, "--max-size");
	as_test_daemon_add_arg(d, "100000");
	as_test_daemon_start(d, &error);
	g_assert_no_error(error);
	client = as_test_client(d, as_test_daemon_get_token(d));
	if (client == NULL)
		return;
	dir = g_build_filename(as_test_daemon_get_root(d), "src", NULL);
	g_assert_cmpint(g_mkdir_with_parents(dir, 0700), ==, 0);
	src = g_build_filename(dir, "big.bin", NULL);
	g_free(as_test_write_random_file(src, AS_TEST_FILE_SIZE * 2, 3));
	fd = open(src, O_RDONLY | O_CLOEXEC);
	g_assert_cmpint(fd, >=, 0);

	/* too large */
	as_quic_client_v2_upload_fd_async(client, "big.bin", fd, 0, AS_TEST_FILE_SIZE * 2,
					  "refused-big", AS_TEST_CHUNK_SIZE, NULL, NULL,
					  as_test_upload_cb, &r);
	as_test_wait(&r.done);
	g_assert_error(r.error, AS_ERROR, AS_ERROR_TOO_LARGE);
	g_assert_nonnull(strstr(r.error->message, "exceeds the limit of 100000 bytes"));
	as_test_result_clear(&r);

	/* a path that leaves the receive dir */
	as_quic_client_v2_upload_fd_async(client, "../../etc/evil", fd, 0, 1000, "refused-evil",
					  AS_TEST_CHUNK_SIZE, NULL, NULL, as_test_upload_cb, &r);
	as_test_wait(&r.done);
	g_assert_nonnull(r.error);
	g_assert_true(r.error->domain == AS_ERROR);
	g_assert_null(strstr(r.error->message, "without a reply"));
	as_test_result_clear(&r);

	/* the connection still works */
	as_quic_client_v2_upload_fd_async(client, "small.bin", fd, 0, 1000, "refused-ok",
					  AS_TEST_CHUNK_SIZE, NULL, NULL, as_test_upload_cb, &r);
	as_test_wait(&r.done);
	g_assert_no_error(r.error);
	as_test_result_clear(&r);
	close(fd);
}

int
main(int argc, char **argv)
{
	as_test_init(&argc, &argv);
	g_test_add_func("/aerosync/quic-v2-daemon/quic-then-http", as_test_v2_quic_then_http);
	g_test_add_func("/aerosync/quic-v2-daemon/http-then-quic", as_test_v2_http_then_quic);
	g_test_add_func("/aerosync/quic-v2-daemon/bad-token", as_test_v2_bad_token);
	g_test_add_func("/aerosync/quic-v2-daemon/refused", as_test_v2_refused);
	return g_test_run();
}
