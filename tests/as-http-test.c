/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "AsHttpTest"

#include "config.h"

#include <glib/gstdio.h>
#include <string.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "as-test-daemon.h"

/* sizes kept small: every case of this file together must stay well under a minute */
#define AS_TEST_SMALL_SIZE     (64 * 1024)
#define AS_TEST_CHUNK_SIZE     (64 * 1024)
#define AS_TEST_CHUNKED_SIZE   (5 * AS_TEST_CHUNK_SIZE + 1234)
#define AS_TEST_MAX_SIZE       "256KiB"
#define AS_TEST_MAX_SIZE_B     (256 * 1024)
#define AS_TEST_TRUNC_DECLARED (1024 * 1024)
#define AS_TEST_TRUNC_SENT     (100 * 1024)
#define AS_TEST_STATUS_MAX     100
#define AS_TEST_RACE_N	       4
/* a refused body this big must not show up in the daemon's memory */
#define AS_TEST_REFUSED_SIZE	      (64 * 1024 * 1024)
#define AS_TEST_REFUSED_BLOCK	      (1024 * 1024)
#define AS_TEST_REFUSED_RSS_SLACK_KIB (24 * 1024)
#define AS_TEST_BATCH_MANY	      105
/* how long the daemon may take to notice a dropped client and clean up */
#define AS_TEST_SETTLE_MS	 5000
#define AS_TEST_ONE_SHOT_EXIT_MS 10000
#define AS_TEST_WS_TIMEOUT_S	 "20"

static const gchar *as_test_json_keys_health[] = {
	"status",      "received_files", "free_bytes", "total_bytes",	"active_transfers",
	"queue_depth", "protocols",	 "version",    "auth_required", NULL};

static AsTestDaemon *
as_test_started(const gchar *first_arg, ...)
{
	AsTestDaemon *d;
	g_autoptr(GError) error = NULL;
	va_list args;

	as_test_watchdog_arm();
	d = as_test_daemon_new();
	va_start(args, first_arg);
	for (const gchar *arg = first_arg; arg != NULL; arg = va_arg(args, const gchar *))
		as_test_daemon_add_arg(d, arg);
	va_end(args);
	as_test_daemon_start(d, &error);
	g_assert_no_error(error);
	return d;
}

static const gchar *
as_test_str(JsonObject *obj, const gchar *key)
{
	if (!json_object_has_member(obj, key))
		g_error("JSON object has no '%s'", key);
	return json_object_get_string_member(obj, key);
}

static gint64
as_test_int(JsonObject *obj, const gchar *key)
{
	if (!json_object_has_member(obj, key))
		g_error("JSON object has no '%s'", key);
	return json_object_get_int_member(obj, key);
}

static gboolean
as_test_bool(JsonObject *obj, const gchar *key)
{
	if (!json_object_has_member(obj, key))
		g_error("JSON object has no '%s'", key);
	return json_object_get_boolean_member(obj, key);
}

static gchar *
as_test_saved_path(AsTestDaemon *d, const gchar *rel)
{
	return g_build_filename(as_test_daemon_get_save_dir(d), rel, NULL);
}

static void
as_test_assert_file_bytes(const gchar *path, GBytes *expected)
{
	g_autofree gchar *contents = NULL;
	gsize len = 0;
	g_autoptr(GError) error = NULL;

	g_file_get_contents(path, &contents, &len, &error);
	g_assert_no_error(error);
	g_assert_cmpmem(contents, len, g_bytes_get_data(expected, NULL),
			g_bytes_get_size(expected));
}

static void
as_test_assert_error_reply(AsTestReply *reply, guint status)
{
	JsonObject *obj;
	if (reply->status != status)
		g_error("expected HTTP %u, got %u: %s", status, reply->status,
			as_test_reply_text(reply));
	obj = as_test_reply_object(reply);
	g_assert_nonnull(as_test_str(obj, "error"));
	g_assert_null(as_test_reply_header(reply, "Access-Control-Allow-Origin"));
}

/* every regular file and symlink below @dir except the daemon's staging folder */
static void
as_test_list_files(const gchar *dir, const gchar *prefix, GPtrArray *out)
{
	g_autoptr(GDir) gdir = g_dir_open(dir, 0, NULL);
	const gchar *name;

	if (gdir == NULL)
		return;
	while ((name = g_dir_read_name(gdir)) != NULL) {
		g_autofree gchar *path = g_build_filename(dir, name, NULL);
		g_autofree gchar *rel =
			prefix != NULL ? g_build_filename(prefix, name, NULL) : g_strdup(name);
		if (prefix == NULL && g_strcmp0(name, ".aerosync") == 0)
			continue;
		if (g_file_test(path, G_FILE_TEST_IS_DIR) &&
		    !g_file_test(path, G_FILE_TEST_IS_SYMLINK))
			as_test_list_files(path, rel, out);
		else
			g_ptr_array_add(out, g_steal_pointer(&rel));
	}
}

static guint
as_test_count_saved(AsTestDaemon *d)
{
	g_autoptr(GPtrArray) files = g_ptr_array_new_with_free_func(g_free);
	as_test_list_files(as_test_daemon_get_save_dir(d), NULL, files);
	return files->len;
}

static gboolean
as_test_history_has_cb(gpointer user_data)
{
	gpointer *args = user_data;
	AsTestDaemon *d = args[0];
	const gchar *filename = args[1];
	gboolean success = GPOINTER_TO_INT(args[2]);
	g_autoptr(GPtrArray) lines = as_test_read_jsonl(as_test_daemon_get_history_path(d));

	for (guint i = 0; i < lines->len; i++) {
		JsonObject *obj = g_ptr_array_index(lines, i);
		if (g_strcmp0(json_object_get_string_member_with_default(obj, "filename", ""),
			      filename) == 0 &&
		    json_object_get_boolean_member_with_default(obj, "success", !success) ==
			    success)
			return TRUE;
	}
	return FALSE;
}

static gboolean
as_test_wait_history(AsTestDaemon *d, const gchar *filename, gboolean success)
{
	gpointer args[] = {d, (gpointer)filename, GINT_TO_POINTER(success)};
	return as_test_wait_for(as_test_history_has_cb, args, AS_TEST_SETTLE_MS);
}

/* -------- /health -------- */

static void
as_test_http_health(void)
{
	g_autoptr(AsTestDaemon) d = as_test_started(NULL);
	g_autoptr(SoupMessage) msg = as_test_daemon_message(d, SOUP_METHOD_GET, "/health", NULL);
	g_autoptr(AsTestReply) reply = as_test_daemon_send(d, msg, NULL, NULL);
	JsonObject *obj;
	JsonArray *protocols;
	struct statvfs st;
	guint64 free_bytes, total_bytes;

	as_test_reply_assert_status(reply, SOUP_STATUS_OK);
	g_assert_cmpstr(as_test_reply_header(reply, "X-AeroSync"), ==, "true");
	g_assert_null(as_test_reply_header(reply, "Access-Control-Allow-Origin"));
	obj = as_test_reply_object(reply);
	for (guint i = 0; as_test_json_keys_health[i] != NULL; i++)
		g_assert_true(json_object_has_member(obj, as_test_json_keys_health[i]));
	g_assert_cmpstr(as_test_str(obj, "status"), ==, "ok");
	g_assert_cmpint(as_test_int(obj, "received_files"), ==, 0);
	g_assert_cmpint(as_test_int(obj, "active_transfers"), ==, 0);
	g_assert_cmpint(as_test_int(obj, "queue_depth"), ==, 0);
	g_assert_cmpstr(as_test_str(obj, "version"), ==, PACKAGE_VERSION);
	g_assert_true(as_test_bool(obj, "auth_required"));
	protocols = json_object_get_array_member(obj, "protocols");
	g_assert_cmpstr(json_array_get_string_element(protocols, 0), ==, "http");
#if HAVE_QUIC
	/* QUIC is on by default, and the reply says where and which certificate to pin */
	g_assert_cmpuint(json_array_get_length(protocols), ==, 2);
	g_assert_cmpstr(json_array_get_string_element(protocols, 1), ==, "quic");
	g_assert_cmpint(as_test_int(obj, "quic_port"), ==, as_test_daemon_get_quic_port(d));
	g_assert_cmpuint(strlen(as_test_str(obj, "cert_sha256")), ==, 64);
#else
	g_assert_cmpuint(json_array_get_length(protocols), ==, 1);
	g_assert_false(json_object_has_member(obj, "quic_port"));
#endif

	/* the figures are the receive dir's file system, not '/' or made up */
	g_assert_cmpint(statvfs(as_test_daemon_get_save_dir(d), &st), ==, 0);
	total_bytes = (guint64)st.f_blocks * st.f_frsize;
	free_bytes = (guint64)st.f_bavail * st.f_frsize;
	g_assert_cmpint(as_test_int(obj, "total_bytes"), ==, (gint64)total_bytes);
	g_assert_cmpint(ABS(as_test_int(obj, "free_bytes") - (gint64)free_bytes), <,
			64 * 1024 * 1024);

	/* after one upload the count moves */
	{
		g_autoptr(GBytes) data = g_bytes_new_static("hello", 5);
		g_autoptr(AsTestReply) up = as_test_daemon_put_bytes(d, "hello.txt", data, NULL);
		g_autoptr(AsTestReply) again = NULL;
		g_autoptr(SoupMessage) msg2 =
			as_test_daemon_message(d, SOUP_METHOD_GET, "/health", NULL);
		as_test_reply_assert_status(up, SOUP_STATUS_OK);
		again = as_test_daemon_send(d, msg2, NULL, NULL);
		g_assert_cmpint(as_test_int(as_test_reply_object(again), "received_files"), ==, 1);
	}
	g_assert_cmpint(as_test_daemon_stop(d), ==, 0);
}

/* -------- auth -------- */

static void
as_test_http_auth(void)
{
	g_autoptr(AsTestDaemon) d = NULL;
	g_autoptr(GPtrArray) audit = NULL;
	g_autoptr(GBytes) data = g_bytes_new_static("secret data", 11);
	const gchar *paths[] = {"/status", "/metrics", "/upload/status?task_id=nothing", NULL};
	guint auth_failed = 0;

	as_test_watchdog_arm();
	d = as_test_daemon_new();
	as_test_daemon_add_arg(d, "--audit-log");
	as_test_daemon_add_arg(d, as_test_daemon_get_audit_path(d));
	{
		g_autoptr(GError) error = NULL;
		as_test_daemon_start(d, &error);
		g_assert_no_error(error);
	}

	/* no token, a wrong one, an empty one: 401 with a challenge, on every endpoint but /health
	 */
	for (guint i = 0; paths[i] != NULL; i++) {
		const gchar *tokens[] = {NULL, "wrong-token", "", NULL};
		for (guint j = 0; j < 3; j++) {
			g_autoptr(SoupMessage) msg =
				as_test_daemon_message(d, SOUP_METHOD_GET, paths[i], tokens[j]);
			g_autoptr(AsTestReply) reply = as_test_daemon_send(d, msg, NULL, NULL);
			as_test_assert_error_reply(reply, SOUP_STATUS_UNAUTHORIZED);
			g_assert_cmpstr(as_test_reply_header(reply, "WWW-Authenticate"), ==,
					"Bearer realm=\"aerosync\"");
			auth_failed++;
		}
	}
	/* an upload without a token writes nothing */
	{
		g_autoptr(SoupMessage) msg =
			as_test_daemon_message(d, SOUP_METHOD_PUT, "/upload/nope.txt", NULL);
		g_autoptr(AsTestReply) reply = as_test_daemon_send(d, msg, data, NULL);
		as_test_assert_error_reply(reply, SOUP_STATUS_UNAUTHORIZED);
		auth_failed++;
		g_assert_cmpuint(as_test_count_saved(d), ==, 0);
	}

	/* the three ways to present it */
	{
		const gchar *headers[] = {"Authorization", "Authorization", "X-Auth-Token", NULL};
		g_autofree gchar *bearer =
			g_strdup_printf("Bearer %s", as_test_daemon_get_token(d));
		g_autofree gchar *bearer_lc =
			g_strdup_printf("bearer %s", as_test_daemon_get_token(d));
		const gchar *values[] = {bearer, as_test_daemon_get_token(d),
					 as_test_daemon_get_token(d), NULL};
		for (guint i = 0; headers[i] != NULL; i++) {
			g_autoptr(SoupMessage) msg =
				as_test_daemon_message(d, SOUP_METHOD_GET, "/status", NULL);
			g_autoptr(AsTestReply) reply = NULL;
			soup_message_headers_replace(soup_message_get_request_headers(msg),
						     headers[i], values[i]);
			reply = as_test_daemon_send(d, msg, NULL, NULL);
			as_test_reply_assert_status(reply, SOUP_STATUS_OK);
		}
		/* the scheme name is case-insensitive (RFC 7235) */
		{
			g_autoptr(SoupMessage) msg =
				as_test_daemon_message(d, SOUP_METHOD_GET, "/status", NULL);
			g_autoptr(AsTestReply) reply = NULL;
			soup_message_headers_replace(soup_message_get_request_headers(msg),
						     "Authorization", bearer_lc);
			reply = as_test_daemon_send(d, msg, NULL, NULL);
			as_test_reply_assert_status(reply, SOUP_STATUS_OK);
		}
	}
	/* a wrong token in X-Auth-Token is not rescued by nothing else */
	{
		g_autoptr(SoupMessage) msg =
			as_test_daemon_message(d, SOUP_METHOD_GET, "/status", NULL);
		g_autoptr(AsTestReply) reply = NULL;
		soup_message_headers_replace(soup_message_get_request_headers(msg), "X-Auth-Token",
					     "nope");
		reply = as_test_daemon_send(d, msg, NULL, NULL);
		as_test_assert_error_reply(reply, SOUP_STATUS_UNAUTHORIZED);
		auth_failed++;
	}

	/* every refusal is in the audit log, and no secret is */
	audit = as_test_read_jsonl(as_test_daemon_get_audit_path(d));
	{
		guint seen = 0;
		g_autofree gchar *contents = NULL;
		for (guint i = 0; i < audit->len; i++) {
			JsonObject *obj = g_ptr_array_index(audit, i);
			JsonObject *ev = json_object_get_object_member(obj, "event");
			g_assert_nonnull(ev);
			if (g_strcmp0(json_object_get_string_member(ev, "type"), "auth_failed") !=
			    0)
				continue;
			seen++;
			g_assert_true(json_object_has_member(obj, "timestamp"));
			g_assert_cmpstr(json_object_get_string_member(obj, "remote_ip"), ==,
					"127.0.0.1");
			g_assert_true(json_object_has_member(obj, "result"));
		}
		g_assert_cmpuint(seen, ==, auth_failed);
		g_assert_true(g_file_get_contents(as_test_daemon_get_audit_path(d), &contents, NULL,
						  NULL));
		g_assert_null(strstr(contents, as_test_daemon_get_token(d)));
		g_assert_null(strstr(contents, "wrong-token"));
	}
	g_assert_cmpint(as_test_daemon_stop(d), ==, 0);
}

/* -------- browsers on other sites -------- */

static void
as_test_http_origin(void)
{
	g_autoptr(AsTestDaemon) d = as_test_started(NULL);
	g_autoptr(GBytes) data = g_bytes_new_static("csrf", 4);
	g_autofree gchar *same = g_strdup_printf("http://127.0.0.1:%u", as_test_daemon_get_port(d));
	struct {
		const gchar *method;
		const gchar *path;
		const gchar *header;
		const gchar *value;
		guint status;
	} cases[] = {
		{SOUP_METHOD_POST, "/upload/csrf.txt", "Origin", "http://evil.example", 403},
		{SOUP_METHOD_PUT, "/upload/csrf.txt", "Origin", "null", 403},
		{SOUP_METHOD_GET, "/status", "Origin", "http://evil.example", 403},
		{SOUP_METHOD_GET, "/status", "Origin", "http://127.0.0.1:1", 403},
		{SOUP_METHOD_POST, "/upload/csrf.txt", "Sec-Fetch-Site", "cross-site", 403},
		{SOUP_METHOD_GET, "/status", "Sec-Fetch-Site", "cross-site", 403},
		{SOUP_METHOD_GET, "/status", "Origin", same, 200},
		{SOUP_METHOD_GET, "/status", "Sec-Fetch-Site", "same-origin", 200},
		{SOUP_METHOD_GET, "/status", "Sec-Fetch-Site", "none", 200},
	};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(SoupMessage) msg = as_test_daemon_message(
			d, cases[i].method, cases[i].path, as_test_daemon_get_token(d));
		g_autoptr(AsTestReply) reply = NULL;
		soup_message_headers_replace(soup_message_get_request_headers(msg), cases[i].header,
					     cases[i].value);
		reply = as_test_daemon_send(d, msg,
					    cases[i].method == SOUP_METHOD_GET ? NULL : data, NULL);
		if (reply->status != cases[i].status)
			g_error("%s %s with %s: %s: expected %u, got %u: %s", cases[i].method,
				cases[i].path, cases[i].header, cases[i].value, cases[i].status,
				reply->status, as_test_reply_text(reply));
		g_assert_null(as_test_reply_header(reply, "Access-Control-Allow-Origin"));
		g_assert_null(as_test_reply_header(reply, "Access-Control-Allow-Credentials"));
	}
	g_assert_cmpuint(as_test_count_saved(d), ==, 0);

	/* a CORS preflight gets no permission either */
	{
		g_autoptr(SoupMessage) msg =
			as_test_daemon_message(d, "OPTIONS", "/upload/x.txt", NULL);
		g_autoptr(AsTestReply) reply = NULL;
		SoupMessageHeaders *hdrs = soup_message_get_request_headers(msg);
		soup_message_headers_replace(hdrs, "Origin", "http://evil.example");
		soup_message_headers_replace(hdrs, "Access-Control-Request-Method", "PUT");
		reply = as_test_daemon_send(d, msg, NULL, NULL);
		g_assert_cmpuint(reply->status, >=, 400);
		g_assert_null(as_test_reply_header(reply, "Access-Control-Allow-Origin"));
		g_assert_null(as_test_reply_header(reply, "Access-Control-Allow-Methods"));
	}
	g_assert_cmpint(as_test_daemon_stop(d), ==, 0);
}

/* -------- single uploads -------- */

static void
as_test_http_upload_put(void)
{
	g_autoptr(AsTestDaemon) d = as_test_started(NULL);
	g_autoptr(GBytes) data = as_test_random_bytes(AS_TEST_SMALL_SIZE, 1);
	g_autofree gchar *sha = as_test_bytes_sha256(data);
	g_autofree gchar *sha_upper = g_ascii_strup(sha, -1);
	g_autofree gchar *path = as_test_saved_path(d, "put.bin");
	g_autoptr(AsTestReply) reply = as_test_daemon_put_bytes(d, "put.bin", data, sha_upper);
	JsonObject *obj;

	as_test_reply_assert_status(reply, SOUP_STATUS_OK);
	obj = as_test_reply_object(reply);
	g_assert_true(as_test_bool(obj, "success"));
	g_assert_cmpstr(as_test_str(obj, "filename"), ==, "put.bin");
	g_assert_cmpint(as_test_int(obj, "size"), ==, AS_TEST_SMALL_SIZE);
	g_assert_cmpstr(as_test_str(obj, "sha256"), ==, sha);
	g_assert_cmpuint(strlen(as_test_str(obj, "file_id")), >, 0);
	as_test_assert_file_bytes(path, data);

	/* POST with a raw body and no hash, into a new sub-folder */
	{
		g_autoptr(SoupMessage) msg =
			as_test_daemon_message(d, SOUP_METHOD_POST, "/upload/sub/dir/post.bin",
					       as_test_daemon_get_token(d));
		g_autoptr(AsTestReply) r2 = as_test_daemon_send(d, msg, data, NULL);
		g_autofree gchar *p2 = as_test_saved_path(d, "sub/dir/post.bin");
		as_test_reply_assert_status(r2, SOUP_STATUS_OK);
		g_assert_cmpstr(as_test_str(as_test_reply_object(r2), "filename"), ==,
				"sub/dir/post.bin");
		g_assert_cmpstr(as_test_str(as_test_reply_object(r2), "sha256"), ==, sha);
		as_test_assert_file_bytes(p2, data);
	}
	/* an empty file is a file */
	{
		g_autoptr(GBytes) empty = g_bytes_new_static("", 0);
		g_autoptr(AsTestReply) r3 = as_test_daemon_put_bytes(d, "empty.txt", empty, NULL);
		g_autofree gchar *p3 = as_test_saved_path(d, "empty.txt");
		as_test_reply_assert_status(r3, SOUP_STATUS_OK);
		g_assert_cmpint(as_test_int(as_test_reply_object(r3), "size"), ==, 0);
		g_assert_cmpstr(as_test_str(as_test_reply_object(r3), "sha256"), ==,
				"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
		as_test_assert_file_bytes(p3, empty);
	}
	/* a malformed X-File-Hash is refused before any byte is stored */
	{
		g_autoptr(GBytes) tiny = g_bytes_new_static("tiny", 4);
		g_autoptr(AsTestReply) r4 = as_test_daemon_put_bytes(d, "badhash.bin", tiny, "xyz");
		g_autofree gchar *p4 = as_test_saved_path(d, "badhash.bin");
		as_test_assert_error_reply(r4, SOUP_STATUS_BAD_REQUEST);
		g_assert_false(g_file_test(p4, G_FILE_TEST_EXISTS));
	}
	g_assert_cmpuint(as_test_count_staging_temps(d), ==, 0);
	g_assert_cmpint(as_test_daemon_stop(d), ==, 0);
}

static void
as_test_http_hash_mismatch(void)
{
	g_autoptr(AsTestDaemon) d = as_test_started(NULL);
	g_autoptr(GBytes) data = as_test_random_bytes(AS_TEST_SMALL_SIZE, 2);
	g_autofree gchar *actual = as_test_bytes_sha256(data);
	const gchar *wrong = "0000000000000000000000000000000000000000000000000000000000000000";
	g_autofree gchar *path = as_test_saved_path(d, "mismatch.bin");
	g_autoptr(AsTestReply) reply = as_test_daemon_put_bytes(d, "mismatch.bin", data, wrong);
	JsonObject *obj;

	as_test_assert_error_reply(reply, SOUP_STATUS_BAD_REQUEST);
	obj = as_test_reply_object(reply);
	g_assert_cmpstr(as_test_str(obj, "error"), ==, "SHA-256 mismatch");
	g_assert_cmpstr(as_test_str(obj, "expected"), ==, wrong);
	g_assert_cmpstr(as_test_str(obj, "actual"), ==, actual);
	g_assert_false(g_file_test(path, G_FILE_TEST_EXISTS));
	g_assert_cmpuint(as_test_count_staging_temps(d), ==, 0);
	g_assert_cmpuint(as_test_count_saved(d), ==, 0);
	g_assert_true(as_test_wait_history(d, "mismatch.bin", FALSE));

	/* a mismatch does not take an existing file's name either */
	{
		g_autoptr(GBytes) first = g_bytes_new_static("first", 5);
		g_autoptr(AsTestReply) r1 = as_test_daemon_put_bytes(d, "keep.txt", first, NULL);
		g_autoptr(AsTestReply) r2 = as_test_daemon_put_bytes(d, "keep.txt", data, wrong);
		g_autofree gchar *keep = as_test_saved_path(d, "keep.txt");
		g_autofree gchar *keep1 = as_test_saved_path(d, "keep_1.txt");
		as_test_reply_assert_status(r1, SOUP_STATUS_OK);
		as_test_assert_error_reply(r2, SOUP_STATUS_BAD_REQUEST);
		as_test_assert_file_bytes(keep, first);
		g_assert_false(g_file_test(keep1, G_FILE_TEST_EXISTS));
	}
	g_assert_cmpuint(as_test_count_staging_temps(d), ==, 0);
	g_assert_cmpint(as_test_daemon_stop(d), ==, 0);
}

typedef struct {
	guint pending;
	GPtrArray *replies; /* (element-type AsTestReply) */
} AsTestAsync;

typedef struct {
	AsTestAsync *state;
	SoupMessage *msg; /* owned */
} AsTestAsyncRequest;

static void
as_test_async_done_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	AsTestAsyncRequest *req = user_data;
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) body =
		soup_session_send_and_read_finish(SOUP_SESSION(source), res, &error);
	g_autoptr(JsonParser) parser = json_parser_new();
	AsTestReply *reply = g_new0(AsTestReply, 1);

	g_assert_no_error(error);
	reply->status = soup_message_get_status(req->msg);
	reply->headers = soup_message_headers_ref(soup_message_get_response_headers(req->msg));
	reply->body = g_bytes_ref(body);
	if (json_parser_load_from_data(parser, g_bytes_get_data(body, NULL),
				       (gssize)g_bytes_get_size(body), NULL))
		reply->json = json_node_ref(json_parser_get_root(parser));
	g_ptr_array_add(req->state->replies, reply);
	req->state->pending--;
	g_object_unref(req->msg);
	g_free(req);
}

/* PUTs all @bodies to /upload/@escaped at the same time */
static GPtrArray *
as_test_put_concurrently(AsTestDaemon *d, const gchar *escaped, GBytes **bodies, guint n)
{
	AsTestAsync state = {0, g_ptr_array_new_with_free_func((GDestroyNotify)as_test_reply_free)};
	g_autofree gchar *path = g_strdup_printf("/upload/%s", escaped);

	for (guint i = 0; i < n; i++) {
		AsTestAsyncRequest *req = g_new0(AsTestAsyncRequest, 1);
		req->state = &state;
		req->msg = as_test_daemon_message(d, SOUP_METHOD_PUT, path,
						  as_test_daemon_get_token(d));
		soup_message_set_request_body_from_bytes(req->msg, "application/octet-stream",
							 bodies[i]);
		soup_session_send_and_read_async(as_test_daemon_get_session(d), req->msg,
						 G_PRIORITY_DEFAULT, NULL, as_test_async_done_cb,
						 req);
		state.pending++;
	}
	while (state.pending > 0)
		g_main_context_iteration(NULL, TRUE);
	return state.replies;
}

static void
as_test_http_collision(void)
{
	g_autoptr(GBytes) one = g_bytes_new_static("one", 3);
	g_autoptr(GBytes) two = g_bytes_new_static("two", 3);
	g_autoptr(GBytes) three = g_bytes_new_static("three", 5);

	{
		g_autoptr(AsTestDaemon) d = as_test_started(NULL);
		g_autoptr(AsTestReply) r1 = as_test_daemon_put_bytes(d, "a.txt", one, NULL);
		g_autoptr(AsTestReply) r2 = as_test_daemon_put_bytes(d, "a.txt", two, NULL);
		g_autoptr(AsTestReply) r3 = as_test_daemon_put_bytes(d, "a.txt", three, NULL);
		g_autoptr(AsTestReply) r4 = as_test_daemon_put_bytes(d, "noext", one, NULL);
		g_autoptr(AsTestReply) r5 = as_test_daemon_put_bytes(d, "noext", two, NULL);
		g_autofree gchar *p0 = as_test_saved_path(d, "a.txt");
		g_autofree gchar *p1 = as_test_saved_path(d, "a_1.txt");
		g_autofree gchar *p2 = as_test_saved_path(d, "a_2.txt");

		g_assert_cmpstr(as_test_str(as_test_reply_object(r1), "filename"), ==, "a.txt");
		g_assert_cmpstr(as_test_str(as_test_reply_object(r2), "filename"), ==, "a_1.txt");
		g_assert_cmpstr(as_test_str(as_test_reply_object(r3), "filename"), ==, "a_2.txt");
		g_assert_cmpstr(as_test_str(as_test_reply_object(r4), "filename"), ==, "noext");
		g_assert_cmpstr(as_test_str(as_test_reply_object(r5), "filename"), ==, "noext_1");
		as_test_assert_file_bytes(p0, one);
		as_test_assert_file_bytes(p1, two);
		as_test_assert_file_bytes(p2, three);

		/* four at once under one name: four files, none lost */
		{
			GBytes *bodies[AS_TEST_RACE_N];
			g_autoptr(GPtrArray) replies = NULL;
			g_autoptr(GHashTable) names =
				g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
			for (guint i = 0; i < AS_TEST_RACE_N; i++)
				bodies[i] = as_test_random_bytes(AS_TEST_SMALL_SIZE, 50 + i);
			replies = as_test_put_concurrently(d, "race.bin", bodies, AS_TEST_RACE_N);
			for (guint i = 0; i < replies->len; i++) {
				AsTestReply *r = g_ptr_array_index(replies, i);
				JsonObject *obj;
				g_autofree gchar *p = NULL;
				g_autofree gchar *psha = NULL;
				as_test_reply_assert_status(r, SOUP_STATUS_OK);
				obj = as_test_reply_object(r);
				p = as_test_saved_path(d, as_test_str(obj, "filename"));
				psha = as_test_file_sha256(p);
				g_assert_cmpstr(psha, ==, as_test_str(obj, "sha256"));
				g_assert_false(
					g_hash_table_contains(names, as_test_str(obj, "filename")));
				g_hash_table_add(names, g_strdup(as_test_str(obj, "filename")));
			}
			g_assert_true(g_hash_table_contains(names, "race.bin"));
			g_assert_true(g_hash_table_contains(names, "race_1.bin"));
			g_assert_true(g_hash_table_contains(names, "race_2.bin"));
			g_assert_true(g_hash_table_contains(names, "race_3.bin"));
			for (guint i = 0; i < AS_TEST_RACE_N; i++)
				g_bytes_unref(bodies[i]);
		}
		g_assert_cmpint(as_test_daemon_stop(d), ==, 0);
	}
	{
		g_autoptr(AsTestDaemon) d = as_test_started("--overwrite", NULL);
		g_autoptr(AsTestReply) r1 = as_test_daemon_put_bytes(d, "a.txt", one, NULL);
		g_autoptr(AsTestReply) r2 = as_test_daemon_put_bytes(d, "a.txt", three, NULL);
		g_autofree gchar *p0 = as_test_saved_path(d, "a.txt");
		g_autofree gchar *p1 = as_test_saved_path(d, "a_1.txt");

		g_assert_cmpstr(as_test_str(as_test_reply_object(r2), "filename"), ==, "a.txt");
		as_test_reply_assert_status(r1, SOUP_STATUS_OK);
		as_test_assert_file_bytes(p0, three);
		g_assert_false(g_file_test(p1, G_FILE_TEST_EXISTS));
		g_assert_cmpint(as_test_daemon_stop(d), ==, 0);
	}
}

/* -------- names -------- */

static void
as_test_http_hostile_names(void)
{
	g_autoptr(AsTestDaemon) d = as_test_started(NULL);
	g_autofree gchar *root = g_strdup(as_test_daemon_get_root(d));
	g_autofree gchar *root_parent = g_path_get_dirname(root);
	g_autofree gchar *root_base = g_path_get_basename(root);
	g_autofree gchar *abs_target = g_build_filename(root, "abs-target.txt", NULL);
	g_autofree gchar *abs_escaped = g_uri_escape_string(abs_target, NULL, FALSE);
	g_autofree gchar *escape1 = g_build_filename(root, "escape1.txt", NULL);
	g_autofree gchar *escape2 = g_strdup_printf("%s/%s-escape2.txt", root_parent, root_base);
	g_autofree gchar *escape2_name = g_strdup_printf("..%%2F..%%2F%s-escape2.txt", root_base);
	g_autofree gchar *abs_path = g_strdup_printf("/upload/%s", abs_escaped);
	g_autofree gchar *escape2_path = g_strdup_printf("/upload/%s", escape2_name);
	g_autoptr(GBytes) data = g_bytes_new_static("pwned", 5);
	const gchar *paths[] = {
		"/upload/..%2Fescape1.txt",
		escape2_path,
		"/upload/sub/..%2F..%2Fescape1.txt",
		"/upload/sub/%2E%2E/%2E%2E/escape1.txt",
		"/upload/..",
		"/upload/.",
		"/upload/sub/..",
		"/upload/.aerosync/inprogress/x",
		"/upload/.aerosync/x",
		"/upload/%2Eaerosync%2Finprogress%2Fx",
		"/upload/.AeroSync/x",
		"/upload/a%01b",
		"/upload/a%0Ab",
		"/upload/a%7Fb",
		abs_path,
		"/upload/%FF",
		"/upload/ok%C3%28.txt",
		"/upload/",
		NULL,
	};

	for (guint i = 0; paths[i] != NULL; i++) {
		g_autofree gchar *head =
			g_strdup_printf("PUT %s HTTP/1.1\r\nAuthorization: Bearer %s\r\n", paths[i],
					as_test_daemon_get_token(d));
		g_autoptr(AsTestReply) reply = as_test_daemon_raw_request(d, head, data);
		if (reply->status != SOUP_STATUS_BAD_REQUEST &&
		    reply->status != SOUP_STATUS_FORBIDDEN &&
		    reply->status != SOUP_STATUS_NOT_FOUND)
			g_error("PUT %s: expected 400, got %u: %s", paths[i], reply->status,
				as_test_reply_text(reply));
		g_test_message("PUT %s -> %u %s", paths[i], reply->status,
			       as_test_reply_text(reply));
		/* the daemon's own refusals are JSON; libsoup's may have no body */
		if (reply->json != NULL)
			g_assert_nonnull(as_test_str(as_test_reply_object(reply), "error"));
	}
	g_assert_false(g_file_test(escape1, G_FILE_TEST_EXISTS));
	g_assert_false(g_file_test(escape2, G_FILE_TEST_EXISTS));
	g_assert_false(g_file_test(abs_target, G_FILE_TEST_EXISTS));
	g_assert_cmpuint(as_test_count_saved(d), ==, 0);
	g_assert_cmpuint(as_test_count_staging_temps(d), ==, 0);
	/* nothing was slipped into the staging folder by name */
	{
		g_autofree gchar *x =
			g_build_filename(as_test_daemon_get_staging_dir(d), "x", NULL);
		g_autofree gchar *x2 =
			g_build_filename(as_test_daemon_get_save_dir(d), ".aerosync", "x", NULL);
		g_assert_false(g_file_test(x, G_FILE_TEST_EXISTS));
		g_assert_false(g_file_test(x2, G_FILE_TEST_EXISTS));
	}
	/* and the daemon is fine */
	{
		g_autoptr(AsTestReply) health = as_test_daemon_get(d, "/health");
		as_test_reply_assert_status(health, SOUP_STATUS_OK);
	}
	g_assert_cmpint(as_test_daemon_stop(d), ==, 0);
}

static void
as_test_http_symlink_escape(void)
{
	g_autoptr(AsTestDaemon) d = as_test_started(NULL);
	g_autofree gchar *outside = g_build_filename(as_test_daemon_get_root(d), "outside", NULL);
	g_autofree gchar *outside_file = g_build_filename(outside, "target.txt", NULL);
	g_autofree gchar *evil = g_build_filename(outside, "evil.txt", NULL);
	g_autofree gchar *link_dir = as_test_saved_path(d, "link");
	g_autofree gchar *link_file = as_test_saved_path(d, "filelink");
	g_autoptr(GBytes) original = g_bytes_new_static("original", 8);
	g_autoptr(GBytes) data = g_bytes_new_static("evil", 4);

	g_assert_cmpint(g_mkdir(outside, 0700), ==, 0);
	g_assert_true(g_file_set_contents(outside_file, "original", 8, NULL));
	g_assert_cmpint(symlink(outside, link_dir), ==, 0);
	g_assert_cmpint(symlink(outside_file, link_file), ==, 0);

	/* through a linked folder: refused */
	{
		g_autoptr(AsTestReply) reply =
			as_test_daemon_put_bytes(d, "link/evil.txt", data, NULL);
		if (reply->status != SOUP_STATUS_FORBIDDEN &&
		    reply->status != SOUP_STATUS_BAD_REQUEST)
			g_error("upload through a symlinked folder: expected 403 or 400, got %u: "
				"%s",
				reply->status, as_test_reply_text(reply));
		g_assert_false(g_file_test(evil, G_FILE_TEST_EXISTS));
	}
	/* chunked, same thing */
	{
		g_autoptr(SoupMessage) msg = NULL;
		g_autoptr(AsTestReply) reply = NULL;
		g_autofree gchar *q = as_test_chunk_query("symlinktask", "link/evil.txt", 4, 4, 0);
		g_autoptr(AsTestReply) done = NULL;
		msg = as_test_daemon_message(d, SOUP_METHOD_POST, q, as_test_daemon_get_token(d));
		reply = as_test_daemon_send(d, msg, data, NULL);
		if (reply->status == SOUP_STATUS_OK) {
			done = as_test_daemon_post_empty(
				d, "/upload/"
				   "complete?task_id=symlinktask&filename=link%2Fevil.txt&total_"
				   "chunks=1&total_size=4");
			if (done->status != SOUP_STATUS_FORBIDDEN &&
			    done->status != SOUP_STATUS_BAD_REQUEST)
				g_error("chunked upload through a symlinked folder: got %u: %s",
					done->status, as_test_reply_text(done));
		}
		g_assert_false(g_file_test(evil, G_FILE_TEST_EXISTS));
	}
	/* onto a linked file: its target is never written */
	{
		g_autoptr(AsTestReply) reply = as_test_daemon_put_bytes(d, "filelink", data, NULL);
		g_test_message("upload onto a symlinked file -> %u %s", reply->status,
			       as_test_reply_text(reply));
		as_test_assert_file_bytes(outside_file, original);
		if (reply->status == SOUP_STATUS_OK)
			g_assert_cmpstr(as_test_str(as_test_reply_object(reply), "filename"), !=,
					"filelink");
	}
	/* with --overwrite too */
	g_assert_cmpint(as_test_daemon_stop(d), ==, 0);
	as_test_daemon_add_arg(d, "--overwrite");
	{
		g_autoptr(GError) error = NULL;
		g_autoptr(AsTestReply) reply = NULL;
		as_test_daemon_start(d, &error);
		g_assert_no_error(error);
		reply = as_test_daemon_put_bytes(d, "filelink", data, NULL);
		g_test_message("overwrite onto a symlinked file -> %u %s", reply->status,
			       as_test_reply_text(reply));
		as_test_assert_file_bytes(outside_file, original);
		reply = as_test_daemon_put_bytes(d, "link/evil.txt", data, NULL);
		g_assert_cmpuint(reply->status, !=, SOUP_STATUS_OK);
		g_assert_false(g_file_test(evil, G_FILE_TEST_EXISTS));
	}
	g_assert_cmpint(as_test_daemon_stop(d), ==, 0);
}

static void
as_test_http_special_names(void)
{
	g_autoptr(AsTestDaemon) d = as_test_started(NULL);
	struct {
		const gchar *escaped;
		const gchar *name;
	} cases[] = {
		{"with%20space.txt", "with space.txt"},
		{"hash%23tag.txt", "hash#tag.txt"},
		{"plus+sign.txt", "plus+sign.txt"},
		{"pct%2541.txt", "pct%41.txt"},
		{"%E4%B8%AD%E6%96%87.txt", "中文.txt"},
		{"caf%C3%A9%20%F0%9F%98%80.txt", "café 😀.txt"},
		{"deep/er%20dir/name.txt", "deep/er dir/name.txt"},
		{"semi;colon,comma=eq&amp.txt", "semi;colon,comma=eq&amp.txt"},
		{"..hidden-ish..txt", "..hidden-ish..txt"},
	};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autofree gchar *content = g_strdup_printf("content %u", i);
		g_autoptr(GBytes) data = g_bytes_new(content, strlen(content));
		g_autoptr(AsTestReply) reply =
			as_test_daemon_put_bytes(d, cases[i].escaped, data, NULL);
		g_autofree gchar *path = as_test_saved_path(d, cases[i].name);
		if (reply->status != SOUP_STATUS_OK)
			g_error("PUT %s: %u %s", cases[i].escaped, reply->status,
				as_test_reply_text(reply));
		g_assert_cmpstr(as_test_str(as_test_reply_object(reply), "filename"), ==,
				cases[i].name);
		as_test_assert_file_bytes(path, data);
	}
	g_assert_cmpuint(as_test_count_saved(d), ==, G_N_ELEMENTS(cases));
	g_assert_cmpint(as_test_daemon_stop(d), ==, 0);
}

/* -------- multipart -------- */

static AsTestReply *
as_test_post_multipart(AsTestDaemon *d, const gchar *path, SoupMultipart *multipart)
{
	g_autoptr(SoupMessage) msg =
		as_test_daemon_message(d, SOUP_METHOD_POST, path, as_test_daemon_get_token(d));
	g_autoptr(GBytes) body = NULL;
	SoupMessageHeaders *hdrs = soup_message_get_request_headers(msg);

	g_autofree gchar *content_type = NULL;

	soup_multipart_to_message(multipart, hdrs, &body);
	/* copied: setting the body replaces the header it points into */
	content_type = g_strdup(soup_message_headers_get_one(hdrs, "Content-Type"));
	return as_test_daemon_send(d, msg, body, content_type);
}

static void
as_test_http_multipart(void)
{
	g_autoptr(AsTestDaemon) d = as_test_started(NULL);
	g_autoptr(GBytes) data = as_test_random_bytes(AS_TEST_SMALL_SIZE, 3);
	g_autoptr(GBytes) crlf = g_bytes_new_static("a\r\n--\r\nb\r\n", 10);
	g_autofree gchar *sha = as_test_bytes_sha256(data);
	/* form.bin, win.txt and "url dir/named.bin"; x.txt maybe */
	guint expected_saved = 3;

	/* 0.x form: the name comes from the part */
	{
		g_autoptr(SoupMultipart) mp = soup_multipart_new(SOUP_FORM_MIME_TYPE_MULTIPART);
		g_autoptr(AsTestReply) reply = NULL;
		g_autofree gchar *path = as_test_saved_path(d, "form.bin");
		soup_multipart_append_form_string(mp, "note", "ignored field");
		soup_multipart_append_form_file(mp, "file", "form.bin", "application/octet-stream",
						data);
		reply = as_test_post_multipart(d, "/upload", mp);
		as_test_reply_assert_status(reply, SOUP_STATUS_OK);
		g_assert_cmpstr(as_test_str(as_test_reply_object(reply), "filename"), ==,
				"form.bin");
		g_assert_cmpstr(as_test_str(as_test_reply_object(reply), "sha256"), ==, sha);
		as_test_assert_file_bytes(path, data);
	}
	/* a browser's full Windows path keeps only the base name */
	{
		g_autoptr(SoupMultipart) mp = soup_multipart_new(SOUP_FORM_MIME_TYPE_MULTIPART);
		g_autoptr(AsTestReply) reply = NULL;
		g_autofree gchar *path = as_test_saved_path(d, "win.txt");
		soup_multipart_append_form_file(mp, "file", "C:\\Users\\x\\win.txt", "text/plain",
						crlf);
		reply = as_test_post_multipart(d, "/upload", mp);
		as_test_reply_assert_status(reply, SOUP_STATUS_OK);
		g_assert_cmpstr(as_test_str(as_test_reply_object(reply), "filename"), ==,
				"win.txt");
		/* bytes that look like a boundary's start survive */
		as_test_assert_file_bytes(path, crlf);
	}
	/* a part named ../../x keeps only x */
	{
		g_autoptr(SoupMultipart) mp = soup_multipart_new(SOUP_FORM_MIME_TYPE_MULTIPART);
		g_autoptr(AsTestReply) reply = NULL;
		g_autofree gchar *escaped =
			g_build_filename(as_test_daemon_get_root(d), "x.txt", NULL);
		soup_multipart_append_form_file(mp, "file", "../../x.txt", "text/plain", crlf);
		reply = as_test_post_multipart(d, "/upload", mp);
		if (reply->status == SOUP_STATUS_OK) {
			g_assert_cmpstr(as_test_str(as_test_reply_object(reply), "filename"), ==,
					"x.txt");
			expected_saved++;
		}
		g_assert_false(g_file_test(escaped, G_FILE_TEST_EXISTS));
	}
	/* the name in the URL wins over the part's */
	{
		g_autoptr(SoupMultipart) mp = soup_multipart_new(SOUP_FORM_MIME_TYPE_MULTIPART);
		g_autoptr(AsTestReply) reply = NULL;
		g_autofree gchar *path = as_test_saved_path(d, "url dir/named.bin");
		soup_multipart_append_form_file(mp, "file", "part.bin", "application/octet-stream",
						data);
		reply = as_test_post_multipart(d, "/upload/url%20dir/named.bin", mp);
		as_test_reply_assert_status(reply, SOUP_STATUS_OK);
		g_assert_cmpstr(as_test_str(as_test_reply_object(reply), "filename"), ==,
				"url dir/named.bin");
		as_test_assert_file_bytes(path, data);
	}
	/* X-File-Hash applies to the part */
	{
		g_autoptr(SoupMultipart) mp = soup_multipart_new(SOUP_FORM_MIME_TYPE_MULTIPART);
		g_autoptr(SoupMessage) msg =
			as_test_daemon_message(d, SOUP_METHOD_POST, "/upload/hashed-form.bin",
					       as_test_daemon_get_token(d));
		g_autoptr(GBytes) body = NULL;
		g_autoptr(AsTestReply) reply = NULL;
		g_autofree gchar *path = as_test_saved_path(d, "hashed-form.bin");
		g_autofree gchar *content_type = NULL;
		SoupMessageHeaders *hdrs = soup_message_get_request_headers(msg);
		soup_multipart_append_form_file(mp, "file", "x", "application/octet-stream", data);
		soup_multipart_to_message(mp, hdrs, &body);
		soup_message_headers_replace(
			hdrs, "X-File-Hash",
			"1111111111111111111111111111111111111111111111111111111111111111");
		content_type = g_strdup(soup_message_headers_get_one(hdrs, "Content-Type"));
		reply = as_test_daemon_send(d, msg, body, content_type);
		as_test_assert_error_reply(reply, SOUP_STATUS_BAD_REQUEST);
		g_assert_false(g_file_test(path, G_FILE_TEST_EXISTS));
	}
	/* no 'file' part */
	{
		g_autoptr(SoupMultipart) mp = soup_multipart_new(SOUP_FORM_MIME_TYPE_MULTIPART);
		g_autoptr(AsTestReply) reply = NULL;
		soup_multipart_append_form_string(mp, "other", "value");
		soup_multipart_append_form_file(mp, "notfile", "n.bin", "application/octet-stream",
						data);
		reply = as_test_post_multipart(d, "/upload", mp);
		as_test_assert_error_reply(reply, SOUP_STATUS_BAD_REQUEST);
	}
	/* a raw POST /upload without a name */
	{
		g_autoptr(SoupMessage) msg = as_test_daemon_message(d, SOUP_METHOD_POST, "/upload",
								    as_test_daemon_get_token(d));
		g_autoptr(AsTestReply) reply = as_test_daemon_send(d, msg, data, NULL);
		as_test_assert_error_reply(reply, SOUP_STATUS_BAD_REQUEST);
	}
	/* a broken multipart body */
	{
		g_autoptr(SoupMessage) msg = as_test_daemon_message(d, SOUP_METHOD_POST, "/upload",
								    as_test_daemon_get_token(d));
		static const gchar junk_text[] =
			"--XYZ\r\nContent-Disposition: form-data; name=\"file\"; "
			"filename=\"trunc.bin\"\r\n\r\nabc";
		g_autoptr(GBytes) junk = g_bytes_new_static(junk_text, sizeof(junk_text) - 1);
		g_autoptr(AsTestReply) reply =
			as_test_daemon_send(d, msg, junk, "multipart/form-data; boundary=XYZ");
		g_autofree gchar *path = as_test_saved_path(d, "trunc.bin");
		as_test_assert_error_reply(reply, SOUP_STATUS_BAD_REQUEST);
		g_assert_false(g_file_test(path, G_FILE_TEST_EXISTS));
	}
	g_assert_cmpuint(as_test_count_staging_temps(d), ==, 0);
	g_assert_cmpuint(as_test_count_saved(d), ==, expected_saved);
	g_assert_cmpint(as_test_daemon_stop(d), ==, 0);
}

static void
as_test_http_batch(void)
{
	g_autoptr(AsTestDaemon) d = as_test_started(NULL);
	g_autoptr(SoupMultipart) mp = soup_multipart_new(SOUP_FORM_MIME_TYPE_MULTIPART);
	g_autoptr(GBytes) a = as_test_random_bytes(1000, 4);
	g_autoptr(GBytes) b = as_test_random_bytes(AS_TEST_SMALL_SIZE, 5);
	g_autoptr(GBytes) c = g_bytes_new_static("c", 1);
	g_autoptr(AsTestReply) reply = NULL;
	g_autofree gchar *sha_b = as_test_bytes_sha256(b);
	g_autofree gchar *escaped = g_build_filename(as_test_daemon_get_root(d), "bad.txt", NULL);
	JsonObject *obj;
	JsonArray *files;
	guint ok = 0, bad = 0;

	soup_multipart_append_form_file(mp, "a.bin", "a.bin", "application/octet-stream", a);
	soup_multipart_append_form_file(mp, "../bad.txt", "bad.txt", "text/plain", c);
	soup_multipart_append_form_file(mp, "dir/sub/b.bin", "b.bin", "application/octet-stream",
					b);
	soup_multipart_append_form_file(mp, ".aerosync/inprogress/evil", "e", "text/plain", c);
	soup_multipart_append_form_file(mp, "c.txt", "c.txt", "text/plain", c);
	reply = as_test_post_multipart(d, "/upload/batch", mp);
	as_test_reply_assert_status(reply, SOUP_STATUS_OK);
	obj = as_test_reply_object(reply);
	g_assert_cmpint(as_test_int(obj, "saved"), ==, 3);
	g_assert_cmpuint(json_array_get_length(json_object_get_array_member(obj, "errors")), ==, 2);
	files = json_object_get_array_member(obj, "files");
	g_assert_cmpuint(json_array_get_length(files), ==, 5);
	for (guint i = 0; i < json_array_get_length(files); i++) {
		JsonObject *f = json_array_get_object_element(files, i);
		const gchar *name = as_test_str(f, "name");
		if (as_test_bool(f, "ok")) {
			ok++;
			g_assert_true(json_object_has_member(f, "saved_as"));
			g_assert_true(json_object_has_member(f, "size"));
			if (g_strcmp0(name, "dir/sub/b.bin") == 0) {
				g_assert_cmpstr(as_test_str(f, "saved_as"), ==, "dir/sub/b.bin");
				g_assert_cmpstr(as_test_str(f, "sha256"), ==, sha_b);
				g_assert_cmpint(as_test_int(f, "size"), ==, AS_TEST_SMALL_SIZE);
			}
		} else {
			bad++;
			g_assert_nonnull(as_test_str(f, "error"));
			g_assert_true(g_strcmp0(name, "../bad.txt") == 0 ||
				      g_strcmp0(name, ".aerosync/inprogress/evil") == 0);
		}
	}
	g_assert_cmpuint(ok, ==, 3);
	g_assert_cmpuint(bad, ==, 2);
	{
		g_autofree gchar *pa = as_test_saved_path(d, "a.bin");
		g_autofree gchar *pb = as_test_saved_path(d, "dir/sub/b.bin");
		g_autofree gchar *pc = as_test_saved_path(d, "c.txt");
		g_autofree gchar *pe =
			g_build_filename(as_test_daemon_get_staging_dir(d), "evil", NULL);
		as_test_assert_file_bytes(pa, a);
		as_test_assert_file_bytes(pb, b);
		as_test_assert_file_bytes(pc, c);
		g_assert_false(g_file_test(pe, G_FILE_TEST_EXISTS));
	}
	g_assert_false(g_file_test(escaped, G_FILE_TEST_EXISTS));
	g_assert_cmpuint(as_test_count_saved(d), ==, 3);
	g_assert_cmpuint(as_test_count_staging_temps(d), ==, 0);

	/* the same name twice in one batch: two files */
	{
		g_autoptr(SoupMultipart) mp2 = soup_multipart_new(SOUP_FORM_MIME_TYPE_MULTIPART);
		g_autoptr(AsTestReply) r = NULL;
		g_autoptr(GHashTable) saved_as = g_hash_table_new(g_str_hash, g_str_equal);
		JsonArray *results;
		soup_multipart_append_form_file(mp2, "dup.txt", "dup.txt", "text/plain", a);
		soup_multipart_append_form_file(mp2, "dup.txt", "dup.txt", "text/plain", b);
		r = as_test_post_multipart(d, "/upload/batch", mp2);
		as_test_reply_assert_status(r, SOUP_STATUS_OK);
		g_assert_cmpint(as_test_int(as_test_reply_object(r), "saved"), ==, 2);
		results = json_object_get_array_member(as_test_reply_object(r), "files");
		for (guint i = 0; i < json_array_get_length(results); i++) {
			JsonObject *f = json_array_get_object_element(results, i);
			g_autofree gchar *p = as_test_saved_path(d, as_test_str(f, "saved_as"));
			g_autofree gchar *psha = as_test_file_sha256(p);
			g_hash_table_add(saved_as, (gpointer)as_test_str(f, "saved_as"));
			g_assert_cmpstr(psha, ==, as_test_str(f, "sha256"));
		}
		g_assert_true(g_hash_table_contains(saved_as, "dup.txt"));
		g_assert_true(g_hash_table_contains(saved_as, "dup_1.txt"));
	}

	/* not multipart */
	{
		g_autoptr(SoupMessage) msg = as_test_daemon_message(
			d, SOUP_METHOD_POST, "/upload/batch", as_test_daemon_get_token(d));
		g_autoptr(AsTestReply) r = as_test_daemon_send(d, msg, a, NULL);
		as_test_assert_error_reply(r, SOUP_STATUS_BAD_REQUEST);
	}
	g_assert_cmpint(as_test_daemon_stop(d), ==, 0);
}

/* more files than one publish group (64): every group is published before the reply, and a
 * file whose part hash is wrong fails alone, in whichever group it falls */
static void
as_test_http_batch_many(void)
{
	g_autoptr(AsTestDaemon) d = as_test_started(NULL);
	g_autoptr(SoupMultipart) mp = soup_multipart_new(SOUP_FORM_MIME_TYPE_MULTIPART);
	g_autoptr(AsTestReply) reply = NULL;
	g_autoptr(GPtrArray) bodies = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
	const guint n_files = 150;
	const guint bad_index = 70;
	JsonArray *files;

	for (guint i = 0; i < n_files; i++) {
		g_autoptr(GBytes) body = as_test_random_bytes(1000 + i, 100 + i);
		g_autoptr(SoupMessageHeaders) hdrs =
			soup_message_headers_new(SOUP_MESSAGE_HEADERS_MULTIPART);
		g_autofree gchar *name = g_strdup_printf("many/f%03u.bin", i);
		g_autofree gchar *disposition =
			g_strdup_printf("form-data; name=\"%s\"; filename=\"f%03u.bin\"", name, i);
		g_autofree gchar *sha = as_test_bytes_sha256(body);
		soup_message_headers_replace(hdrs, "Content-Disposition", disposition);
		soup_message_headers_replace(hdrs, "Content-Type", "application/octet-stream");
		soup_message_headers_replace(
			hdrs, "X-File-Hash",
			i == bad_index
				? "abababababababababababababababababababababababababababababababab"
				: sha);
		soup_multipart_append_part(mp, hdrs, body);
		g_ptr_array_add(bodies, g_steal_pointer(&body));
	}
	reply = as_test_post_multipart(d, "/upload/batch", mp);
	as_test_reply_assert_status(reply, SOUP_STATUS_OK);
	g_assert_cmpint(as_test_int(as_test_reply_object(reply), "saved"), ==, n_files - 1);
	files = json_object_get_array_member(as_test_reply_object(reply), "files");
	g_assert_cmpuint(json_array_get_length(files), ==, n_files);
	for (guint i = 0; i < n_files; i++) {
		g_autofree gchar *rel = g_strdup_printf("many/f%03u.bin", i);
		g_autofree gchar *path = as_test_saved_path(d, rel);
		if (i == bad_index) {
			g_assert_false(g_file_test(path, G_FILE_TEST_EXISTS));
			continue;
		}
		as_test_assert_file_bytes(path, g_ptr_array_index(bodies, i));
	}
	for (guint i = 0; i < n_files; i++) {
		JsonObject *f = json_array_get_object_element(files, i);
		g_autofree gchar *bad_name = g_strdup_printf("many/f%03u.bin", bad_index);
		g_assert_cmpint(as_test_bool(f, "ok"), ==,
				g_strcmp0(as_test_str(f, "name"), bad_name) != 0);
	}
	g_assert_cmpuint(as_test_count_saved(d), ==, n_files - 1);
	g_assert_cmpuint(as_test_count_staging_temps(d), ==, 0);
	g_assert_cmpint(as_test_daemon_stop(d), ==, 0);
}

/* -------- real curl -------- */

static gchar *
as_test_run_curl(const gchar *const *argv, gint *exit_status)
{
	g_autofree gchar *out = NULL;
	g_autofree gchar *err = NULL;
	g_autoptr(GError) error = NULL;
	gint wait_status = 0;

	g_spawn_sync(NULL, (gchar **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &out, &err,
		     &wait_status, &error);
	g_assert_no_error(error);
	if (err != NULL && *err != '\0')
		g_test_message("curl: %s", err);
	*exit_status = WIFEXITED(wait_status) ? WEXITSTATUS(wait_status) : -1;
	return g_steal_pointer(&out);
}

static void
as_test_http_curl(void)
{
	g_autoptr(AsTestDaemon) d = NULL;
	g_autofree gchar *curl = g_find_program_in_path("curl");
	g_autofree gchar *src = NULL;
	g_autofree gchar *sha = NULL;
	g_autofree gchar *auth = NULL;
	g_autofree gchar *hash_hdr = NULL;
	g_autoptr(JsonParser) parser = json_parser_new();
	gint status = 0;

	if (curl == NULL) {
		g_test_skip("curl is not installed");
		return;
	}
	d = as_test_started(NULL);
	src = g_build_filename(as_test_daemon_get_root(d), "curl src.bin", NULL);
	sha = as_test_write_random_file(src, 3 * AS_TEST_SMALL_SIZE + 17, 6);
	auth = g_strdup_printf("Authorization: Bearer %s", as_test_daemon_get_token(d));
	hash_hdr = g_strdup_printf("X-File-Hash: %s", sha);

	/* curl -T: PUT with a Content-Length */
	{
		g_autofree gchar *url = as_test_daemon_url(d, "/upload/curl-put.bin");
		const gchar *argv[] = {curl, "-sS", "-f",     "-T", src, "-H",
				       auth, "-H",  hash_hdr, url,  NULL};
		g_autofree gchar *out = as_test_run_curl(argv, &status);
		g_autofree gchar *saved = as_test_saved_path(d, "curl-put.bin");
		g_autofree gchar *saved_sha = NULL;
		JsonObject *obj;
		g_assert_cmpint(status, ==, 0);
		g_assert_true(json_parser_load_from_data(parser, out, -1, NULL));
		obj = json_node_get_object(json_parser_get_root(parser));
		g_assert_true(json_object_get_boolean_member(obj, "success"));
		g_assert_cmpstr(json_object_get_string_member(obj, "sha256"), ==, sha);
		saved_sha = as_test_file_sha256(saved);
		g_assert_cmpstr(saved_sha, ==, sha);
	}
	/* curl -T - : chunked transfer encoding, no Content-Length */
	{
		g_autofree gchar *url = as_test_daemon_url(d, "/upload/curl-chunked.bin");
		g_autofree gchar *cmd = NULL;
		g_autofree gchar *out = NULL;
		g_autofree gchar *saved = as_test_saved_path(d, "curl-chunked.bin");
		g_autofree gchar *saved_sha = NULL;
		g_autofree gchar *q_src = g_shell_quote(src);
		g_autofree gchar *q_auth = g_shell_quote(auth);
		g_autofree gchar *q_url = g_shell_quote(url);
		const gchar *argv[] = {"/bin/sh", "-c", NULL, NULL};
		cmd = g_strdup_printf("cat %s | %s -sS -f -T - -H %s %s", q_src, curl, q_auth,
				      q_url);
		argv[2] = cmd;
		out = as_test_run_curl(argv, &status);
		g_assert_cmpint(status, ==, 0);
		saved_sha = as_test_file_sha256(saved);
		g_assert_cmpstr(saved_sha, ==, sha);
	}
	/* curl -F: the 0.x form upload */
	{
		g_autofree gchar *url = as_test_daemon_url(d, "/upload");
		g_autofree gchar *form = g_strdup_printf("file=@%s;filename=curl-form.bin", src);
		const gchar *argv[] = {curl, "-sS", "-f", "-F", form, "-H", auth, url, NULL};
		g_autofree gchar *out = as_test_run_curl(argv, &status);
		g_autofree gchar *saved = as_test_saved_path(d, "curl-form.bin");
		g_autofree gchar *saved_sha = NULL;
		g_assert_cmpint(status, ==, 0);
		g_assert_nonnull(strstr(out, sha));
		saved_sha = as_test_file_sha256(saved);
		g_assert_cmpstr(saved_sha, ==, sha);
	}
	/* -f makes curl fail on 401 */
	{
		g_autofree gchar *url = as_test_daemon_url(d, "/upload/noauth.bin");
		const gchar *argv[] = {curl, "-sS", "-f", "-T", src, url, NULL};
		g_autofree gchar *out = as_test_run_curl(argv, &status);
		g_autofree gchar *saved = as_test_saved_path(d, "noauth.bin");
		/* 22 for the 401; or a send error when the refusal came before the whole body */
		g_assert_cmpint(status, !=, 0);
		g_assert_false(g_file_test(saved, G_FILE_TEST_EXISTS));
	}
	g_assert_cmpint(as_test_daemon_stop(d), ==, 0);
}

/* -------- limits and broken clients -------- */

static void
as_test_http_max_size(void)
{
	g_autoptr(AsTestDaemon) d = as_test_started("--max-size", AS_TEST_MAX_SIZE, NULL);
	g_autoptr(GBytes) big = as_test_random_bytes(AS_TEST_MAX_SIZE_B + 1, 7);
	g_autoptr(GBytes) fits = as_test_random_bytes(AS_TEST_MAX_SIZE_B, 8);

	/* refused on the Content-Length, before the body is sent */
	{
		g_autofree gchar *head =
			g_strdup_printf("PUT /upload/big.bin HTTP/1.1\r\n"
					"Authorization: Bearer %s\r\n"
					"Expect: 100-continue\r\n"
					"Content-Length: %u\r\n",
					as_test_daemon_get_token(d), AS_TEST_MAX_SIZE_B + 1);
		g_autoptr(AsTestReply) reply = as_test_daemon_raw_request(d, head, NULL);
		g_autofree gchar *path = as_test_saved_path(d, "big.bin");
		as_test_assert_error_reply(reply, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE);
		g_assert_cmpstr(as_test_str(as_test_reply_object(reply), "error"), ==,
				"Payload Too Large: file exceeds server limit");
		g_assert_false(g_file_test(path, G_FILE_TEST_EXISTS));
	}
	/* a chunked-encoded body has no length up front: refused when it grows too big */
	{
		g_autoptr(SoupMessage) msg = as_test_daemon_message(
			d, SOUP_METHOD_PUT, "/upload/big2.bin", as_test_daemon_get_token(d));
		g_autoptr(GInputStream) stream = g_memory_input_stream_new_from_bytes(big);
		g_autoptr(AsTestReply) reply = NULL;
		g_autofree gchar *path = as_test_saved_path(d, "big2.bin");
		soup_message_set_request_body(msg, "application/octet-stream", stream, -1);
		reply = as_test_daemon_send(d, msg, NULL, NULL);
		as_test_assert_error_reply(reply, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE);
		g_assert_cmpstr(as_test_str(as_test_reply_object(reply), "error"), ==,
				"Payload Too Large: file exceeds server limit");
		g_assert_false(g_file_test(path, G_FILE_TEST_EXISTS));
	}
	/* multipart, where Content-Length is more than the file */
	{
		g_autoptr(SoupMultipart) mp = soup_multipart_new(SOUP_FORM_MIME_TYPE_MULTIPART);
		g_autoptr(AsTestReply) reply = NULL;
		g_autofree gchar *path = as_test_saved_path(d, "big3.bin");
		soup_multipart_append_form_file(mp, "file", "big3.bin", "application/octet-stream",
						big);
		reply = as_test_post_multipart(d, "/upload", mp);
		as_test_assert_error_reply(reply, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE);
		g_assert_false(g_file_test(path, G_FILE_TEST_EXISTS));
	}
	/* a chunked task bigger than the limit */
	{
		g_autofree gchar *q =
			as_test_chunk_query("bigtask", "big4.bin", AS_TEST_MAX_SIZE_B + 1, 1024, 0);
		g_autoptr(SoupMessage) msg =
			as_test_daemon_message(d, SOUP_METHOD_POST, q, as_test_daemon_get_token(d));
		g_autoptr(GBytes) kb = g_bytes_new_from_bytes(big, 0, 1024);
		g_autoptr(AsTestReply) reply = as_test_daemon_send(d, msg, kb, NULL);
		as_test_assert_error_reply(reply, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE);
	}
	/* exactly the limit is fine */
	{
		g_autoptr(AsTestReply) reply = as_test_daemon_put_bytes(d, "fits.bin", fits, NULL);
		g_autofree gchar *path = as_test_saved_path(d, "fits.bin");
		as_test_reply_assert_status(reply, SOUP_STATUS_OK);
		as_test_assert_file_bytes(path, fits);
	}
	g_assert_cmpuint(as_test_count_staging_temps(d), ==, 0);
	g_assert_cmpuint(as_test_count_saved(d), ==, 1);
	g_assert_cmpint(as_test_daemon_stop(d), ==, 0);
}

/*
 * A refused request's body (no token, too large, bad name) is read to keep the connection in
 * step, but must not be kept: the daemon's memory stays flat whatever a client sends.
 */
static void
as_test_http_refused_body_memory(void)
{
	g_autoptr(AsTestDaemon) d = as_test_started("--max-size", AS_TEST_MAX_SIZE, NULL);
	g_autoptr(GBytes) block = as_test_random_bytes(AS_TEST_REFUSED_BLOCK, 20);
	/* @TOKEN@ stands for the daemon's token */
	struct {
		const gchar *label;
		const gchar *head;
		guint status;
	} cases[] = {
		{"no token", "PUT /upload/noauth.bin HTTP/1.1\r\n", 401},
		{"too large",
		 "PUT /upload/toolarge.bin HTTP/1.1\r\nAuthorization: Bearer @TOKEN@\r\n", 413},
		{"bad name",
		 "PUT /upload/..%2Fbadname.bin HTTP/1.1\r\nAuthorization: Bearer @TOKEN@\r\n", 400},
		{"cross-site",
		 "PUT /upload/origin.bin HTTP/1.1\r\nAuthorization: Bearer @TOKEN@\r\n"
		 "Origin: http://evil.example\r\n",
		 403},
	};
	guint64 baseline = as_test_daemon_get_rss_kib(d);

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(GSocketConnection) conn = as_test_daemon_raw_connect(d);
		g_auto(GStrv) parts = g_strsplit(cases[i].head, "@TOKEN@", -1);
		g_autofree gchar *start = g_strjoinv(as_test_daemon_get_token(d), parts);
		g_autofree gchar *head =
			g_strdup_printf("%sHost: 127.0.0.1:%u\r\nContent-Length: %u\r\n\r\n", start,
					as_test_daemon_get_port(d), AS_TEST_REFUSED_SIZE);
		g_autoptr(AsTestReply) reply = NULL;
		guint64 rss;

		as_test_raw_write_all(conn, head, strlen(head));
		for (guint j = 0; j < AS_TEST_REFUSED_SIZE / AS_TEST_REFUSED_BLOCK; j++) {
			GOutputStream *out = g_io_stream_get_output_stream(G_IO_STREAM(conn));
			/* the daemon may answer and close before the end: that is fine */
			if (!g_output_stream_write_all(out, g_bytes_get_data(block, NULL),
						       AS_TEST_REFUSED_BLOCK, NULL, NULL, NULL))
				break;
		}
		reply = as_test_raw_read_reply(conn);
		as_test_assert_error_reply(reply, cases[i].status);
		rss = as_test_daemon_get_rss_kib(d);
		g_test_message("%s: %u, daemon RSS %" G_GUINT64_FORMAT
			       " KiB (was %" G_GUINT64_FORMAT ")",
			       cases[i].label, reply->status, rss, baseline);
		if (rss > baseline + AS_TEST_REFUSED_RSS_SLACK_KIB)
			g_error("the daemon kept a refused body (%s) in memory: RSS "
				"%" G_GUINT64_FORMAT " KiB, was %" G_GUINT64_FORMAT " KiB before",
				cases[i].label, rss, baseline);
	}
	g_assert_cmpuint(as_test_count_saved(d), ==, 0);
	g_assert_cmpint(as_test_daemon_stop(d), ==, 0);
}

static gboolean
as_test_no_temps_cb(gpointer user_data)
{
	return as_test_count_staging_temps(AS_TEST_DAEMON(user_data)) == 0;
}

static gboolean
as_test_three_saved_cb(gpointer user_data)
{
	return as_test_count_saved(AS_TEST_DAEMON(user_data)) == 3;
}

/* a batch whose client vanishes mid-body: the files that were complete and verified are
 * published, the one cut short is dropped, and nothing stays staged */
static void
as_test_http_batch_truncated(void)
{
	g_autoptr(AsTestDaemon) d = as_test_started(NULL);
	g_autoptr(GString) body = g_string_new(NULL);
	g_autoptr(GPtrArray) bodies = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
	const gchar *boundary = "as-test-boundary-7Hq2";

	for (guint i = 0; i < 4; i++) {
		g_autoptr(GBytes) data = as_test_random_bytes(5000, 40 + i);
		g_string_append_printf(body,
				       "--%s\r\n"
				       "Content-Disposition: form-data; name=\"cut/f%u.bin\"; "
				       "filename=\"f%u.bin\"\r\n"
				       "Content-Type: application/octet-stream\r\n\r\n",
				       boundary, i, i);
		/* the last part stops halfway */
		g_string_append_len(body, g_bytes_get_data(data, NULL),
				    i == 3 ? 2500 : g_bytes_get_size(data));
		if (i < 3)
			g_string_append(body, "\r\n");
		g_ptr_array_add(bodies, g_steal_pointer(&data));
	}
	{
		g_autoptr(GSocketConnection) conn = as_test_daemon_raw_connect(d);
		g_autofree gchar *head =
			g_strdup_printf("POST /upload/batch HTTP/1.1\r\n"
					"Host: 127.0.0.1:%u\r\n"
					"Authorization: Bearer %s\r\n"
					"Content-Type: multipart/form-data; boundary=%s\r\n"
					"Content-Length: %" G_GSIZE_FORMAT "\r\n\r\n",
					as_test_daemon_get_port(d), as_test_daemon_get_token(d),
					boundary, body->len + 100000);
		as_test_raw_write_all(conn, head, strlen(head));
		as_test_raw_write_all(conn, body->str, body->len);
		g_usleep(300 * G_TIME_SPAN_MILLISECOND);
		g_io_stream_close(G_IO_STREAM(conn), NULL, NULL);
	}
	g_assert_true(as_test_wait_for(as_test_three_saved_cb, d, AS_TEST_SETTLE_MS));
	g_assert_true(as_test_wait_for(as_test_no_temps_cb, d, AS_TEST_SETTLE_MS));
	for (guint i = 0; i < 4; i++) {
		g_autofree gchar *rel = g_strdup_printf("cut/f%u.bin", i);
		g_autofree gchar *path = as_test_saved_path(d, rel);
		if (i == 3)
			g_assert_false(g_file_test(path, G_FILE_TEST_EXISTS));
		else
			as_test_assert_file_bytes(path, g_ptr_array_index(bodies, i));
	}
	g_assert_true(as_test_wait_history(d, "cut/f3.bin", FALSE));
	g_assert_cmpint(as_test_daemon_stop(d), ==, 0);
}

static void
as_test_http_truncated(void)
{
	g_autoptr(AsTestDaemon) d = as_test_started(NULL);
	g_autoptr(GBytes) part = as_test_random_bytes(AS_TEST_TRUNC_SENT, 9);
	g_autofree gchar *path = as_test_saved_path(d, "trunc.bin");
	g_autoptr(GPtrArray) history = NULL;
	gboolean found = FALSE;

	{
		g_autoptr(GSocketConnection) conn = as_test_daemon_raw_connect(d);
		g_autofree gchar *head =
			g_strdup_printf("PUT /upload/trunc.bin HTTP/1.1\r\n"
					"Host: 127.0.0.1:%u\r\n"
					"Authorization: Bearer %s\r\n"
					"Content-Length: %u\r\n\r\n",
					as_test_daemon_get_port(d), as_test_daemon_get_token(d),
					AS_TEST_TRUNC_DECLARED);
		as_test_raw_write_all(conn, head, strlen(head));
		as_test_raw_write_all(conn, g_bytes_get_data(part, NULL), g_bytes_get_size(part));
		/* let the daemon take the bytes in before the client vanishes */
		g_usleep(300 * G_TIME_SPAN_MILLISECOND);
		/* meanwhile it is an active transfer */
		{
			g_autoptr(AsTestReply) health = as_test_daemon_get(d, "/health");
			g_autoptr(AsTestReply) status = as_test_daemon_get(d, "/status");
			g_assert_cmpint(
				as_test_int(as_test_reply_object(health), "active_transfers"), ==,
				1);
			g_assert_cmpint(
				as_test_int(as_test_reply_object(status), "active_transfers"), ==,
				1);
			g_assert_cmpuint(as_test_count_staging_temps(d), ==, 1);
		}
		g_io_stream_close(G_IO_STREAM(conn), NULL, NULL);
	}
	g_usleep(G_USEC_PER_SEC);
	g_assert_true(as_test_wait_for(as_test_no_temps_cb, d, AS_TEST_SETTLE_MS));
	g_assert_false(g_file_test(path, G_FILE_TEST_EXISTS));
	g_assert_cmpuint(as_test_count_saved(d), ==, 0);
	g_assert_true(as_test_wait_history(d, "trunc.bin", FALSE));
	history = as_test_read_jsonl(as_test_daemon_get_history_path(d));
	for (guint i = 0; i < history->len; i++) {
		JsonObject *obj = g_ptr_array_index(history, i);
		if (g_strcmp0(json_object_get_string_member(obj, "filename"), "trunc.bin") != 0)
			continue;
		found = TRUE;
		g_assert_false(json_object_get_boolean_member(obj, "success"));
		g_assert_false(json_object_get_null_member(obj, "error"));
		g_assert_cmpstr(json_object_get_string_member(obj, "direction"), ==, "receive");
	}
	g_assert_true(found);
	{
		g_autoptr(AsTestReply) health = as_test_daemon_get(d, "/health");
		g_assert_cmpint(as_test_int(as_test_reply_object(health), "active_transfers"), ==,
				0);
	}

	/* the same in a multipart body */
	{
		g_autoptr(GSocketConnection) conn = as_test_daemon_raw_connect(d);
		g_autofree gchar *head =
			g_strdup_printf("POST /upload HTTP/1.1\r\n"
					"Host: 127.0.0.1:%u\r\n"
					"Authorization: Bearer %s\r\n"
					"Content-Type: multipart/form-data; boundary=AsBoundary\r\n"
					"Content-Length: %u\r\n\r\n"
					"--AsBoundary\r\n"
					"Content-Disposition: form-data; name=\"file\"; "
					"filename=\"mp-trunc.bin\"\r\n"
					"Content-Type: application/octet-stream\r\n\r\n",
					as_test_daemon_get_port(d), as_test_daemon_get_token(d),
					AS_TEST_TRUNC_DECLARED);
		g_autofree gchar *mp_path = as_test_saved_path(d, "mp-trunc.bin");
		as_test_raw_write_all(conn, head, strlen(head));
		as_test_raw_write_all(conn, g_bytes_get_data(part, NULL), g_bytes_get_size(part));
		g_usleep(300 * G_TIME_SPAN_MILLISECOND);
		g_io_stream_close(G_IO_STREAM(conn), NULL, NULL);
		g_assert_true(as_test_wait_history(d, "mp-trunc.bin", FALSE));
		g_assert_true(as_test_wait_for(as_test_no_temps_cb, d, AS_TEST_SETTLE_MS));
		g_assert_false(g_file_test(mp_path, G_FILE_TEST_EXISTS));
	}

	/* the daemon still works, and the same name is free */
	{
		g_autoptr(AsTestReply) reply = as_test_daemon_put_bytes(d, "trunc.bin", part, NULL);
		as_test_reply_assert_status(reply, SOUP_STATUS_OK);
		g_assert_cmpstr(as_test_str(as_test_reply_object(reply), "filename"), ==,
				"trunc.bin");
	}
	g_assert_cmpint(as_test_daemon_stop(d), ==, 0);
}

static gint as_test_metric_value(const gchar *text, const gchar *name);

/* -------- chunked protocol -------- */

static void
as_test_assert_ranges(JsonArray *ranges, const guint *pairs, guint n_pairs)
{
	g_assert_cmpuint(json_array_get_length(ranges), ==, n_pairs);
	for (guint i = 0; i < n_pairs; i++) {
		JsonArray *pair = json_array_get_array_element(ranges, i);
		g_assert_cmpuint(json_array_get_length(pair), ==, 2);
		g_assert_cmpint(json_array_get_int_element(pair, 0), ==, pairs[2 * i]);
		g_assert_cmpint(json_array_get_int_element(pair, 1), ==, pairs[2 * i + 1]);
	}
}

static void
as_test_http_chunked(void)
{
	g_autoptr(AsTestDaemon) d = as_test_started(NULL);
	g_autofree gchar *src = g_build_filename(as_test_daemon_get_root(d), "chunked.src", NULL);
	g_autofree gchar *sha = as_test_write_random_file(src, AS_TEST_CHUNKED_SIZE, 10);
	const guint64 total = AS_TEST_CHUNKED_SIZE;
	const guint32 n_chunks = 6;
	g_autofree gchar *complete_q = g_strdup_printf(
		"/upload/complete?task_id=t1&filename=chunked%%20file.bin&total_chunks=%u"
		"&total_size=%" G_GUINT64_FORMAT "&sha256=%s",
		n_chunks, total, sha);

	/* chunks 0, 1 and 4 */
	for (guint32 i = 0; i < n_chunks; i++) {
		g_autoptr(AsTestReply) reply = NULL;
		JsonObject *obj;
		if (i == 2 || i == 3 || i == 5)
			continue;
		reply = as_test_daemon_send_chunk(d, "t1", "chunked file.bin", src, total,
						  AS_TEST_CHUNK_SIZE, i, TRUE);
		as_test_reply_assert_status(reply, SOUP_STATUS_OK);
		obj = as_test_reply_object(reply);
		g_assert_cmpstr(as_test_str(obj, "task_id"), ==, "t1");
		g_assert_cmpint(as_test_int(obj, "chunk_index"), ==, i);
		g_assert_cmpint(as_test_int(obj, "received"), ==, AS_TEST_CHUNK_SIZE);
		g_assert_false(as_test_bool(obj, "all_chunks_done"));
		g_assert_false(as_test_bool(obj, "duplicate"));
		g_assert_cmpint(as_test_int(obj, "total_chunks"), ==, n_chunks);
		g_assert_cmpint(as_test_int(obj, "chunks_done"), ==, i == 4 ? 3 : i + 1);
	}
	/* nothing at the final name yet */
	{
		g_autofree gchar *path = as_test_saved_path(d, "chunked file.bin");
		g_assert_false(g_file_test(path, G_FILE_TEST_EXISTS));
	}
	/* the status shows what is there and what is not */
	{
		g_autoptr(AsTestReply) reply = as_test_daemon_get(d, "/upload/status?task_id=t1");
		JsonObject *obj;
		const guint received[] = {0, 1, 4, 4};
		const guint missing[] = {2, 3, 5, 5};
		as_test_reply_assert_status(reply, SOUP_STATUS_OK);
		obj = as_test_reply_object(reply);
		g_assert_cmpstr(as_test_str(obj, "task_id"), ==, "t1");
		g_assert_false(as_test_bool(obj, "complete"));
		g_assert_cmpstr(as_test_str(obj, "filename"), ==, "chunked file.bin");
		g_assert_cmpint(as_test_int(obj, "total_size"), ==, (gint64)total);
		g_assert_cmpint(as_test_int(obj, "chunk_size"), ==, AS_TEST_CHUNK_SIZE);
		g_assert_cmpint(as_test_int(obj, "total_chunks"), ==, n_chunks);
		g_assert_cmpint(as_test_int(obj, "received_chunks"), ==, 3);
		g_assert_cmpint(as_test_int(obj, "received_bytes"), ==, 3 * AS_TEST_CHUNK_SIZE);
		as_test_assert_ranges(json_object_get_array_member(obj, "received"), received, 2);
		as_test_assert_ranges(json_object_get_array_member(obj, "missing"), missing, 2);
	}
	/* complete too early: 409, nothing lost */
	{
		g_autoptr(AsTestReply) reply = as_test_daemon_post_empty(d, complete_q);
		g_autoptr(AsTestReply) st = NULL;
		as_test_assert_error_reply(reply, SOUP_STATUS_CONFLICT);
		st = as_test_daemon_get(d, "/upload/status?task_id=t1");
		g_assert_cmpint(as_test_int(as_test_reply_object(st), "received_chunks"), ==, 3);
	}
	/* a chunk whose hash is wrong is refused and stays missing */
	{
		g_autofree gchar *q =
			as_test_chunk_query("t1", "chunked file.bin", total, AS_TEST_CHUNK_SIZE, 2);
		g_autoptr(SoupMessage) msg =
			as_test_daemon_message(d, SOUP_METHOD_POST, q, as_test_daemon_get_token(d));
		g_autoptr(GBytes) data =
			as_test_read_range(src, 2 * AS_TEST_CHUNK_SIZE, AS_TEST_CHUNK_SIZE);
		g_autoptr(AsTestReply) reply = NULL;
		g_autoptr(AsTestReply) st = NULL;
		g_autofree gchar *actual = as_test_bytes_sha256(data);
		JsonObject *obj;
		soup_message_headers_replace(
			soup_message_get_request_headers(msg), "X-Chunk-Hash",
			"abababababababababababababababababababababababababababababababab");
		reply = as_test_daemon_send(d, msg, data, NULL);
		as_test_assert_error_reply(reply, SOUP_STATUS_BAD_REQUEST);
		/* the chunk is verified by reading back what was written: that is what it shows */
		obj = as_test_reply_object(reply);
		g_assert_cmpstr(as_test_str(obj, "error"), ==, "chunk SHA-256 mismatch");
		g_assert_cmpint(as_test_int(obj, "chunk_index"), ==, 2);
		g_assert_cmpstr(as_test_str(obj, "actual"), ==, actual);
		st = as_test_daemon_get(d, "/upload/status?task_id=t1");
		g_assert_cmpint(as_test_int(as_test_reply_object(st), "received_chunks"), ==, 3);
	}
	/* index out of range, wrong lengths */
	{
		g_autofree gchar *q = as_test_chunk_query("t1", "chunked file.bin", total,
							  AS_TEST_CHUNK_SIZE, n_chunks);
		g_autofree gchar *q5 =
			as_test_chunk_query("t1", "chunked file.bin", total, AS_TEST_CHUNK_SIZE, 5);
		g_autofree gchar *q3 =
			as_test_chunk_query("t1", "chunked file.bin", total, AS_TEST_CHUNK_SIZE, 3);
		g_autoptr(GBytes) full = as_test_random_bytes(AS_TEST_CHUNK_SIZE, 11);
		g_autoptr(GBytes) small = as_test_random_bytes(100, 12);
		g_autoptr(SoupMessage) m1 =
			as_test_daemon_message(d, SOUP_METHOD_POST, q, as_test_daemon_get_token(d));
		g_autoptr(SoupMessage) m2 = as_test_daemon_message(d, SOUP_METHOD_POST, q5,
								   as_test_daemon_get_token(d));
		g_autoptr(SoupMessage) m3 = as_test_daemon_message(d, SOUP_METHOD_POST, q3,
								   as_test_daemon_get_token(d));
		g_autoptr(AsTestReply) r1 = as_test_daemon_send(d, m1, full, NULL);
		g_autoptr(AsTestReply) r2 = as_test_daemon_send(d, m2, full, NULL);
		g_autoptr(AsTestReply) r3 = as_test_daemon_send(d, m3, small, NULL);
		as_test_assert_error_reply(r1, SOUP_STATUS_BAD_REQUEST);
		as_test_assert_error_reply(r2, SOUP_STATUS_BAD_REQUEST);
		as_test_assert_error_reply(r3, SOUP_STATUS_BAD_REQUEST);
	}
	/* the same task id with other parameters */
	{
		g_autofree gchar *q = as_test_chunk_query("t1", "chunked file.bin", total + 1,
							  AS_TEST_CHUNK_SIZE, 3);
		g_autofree gchar *q2 =
			as_test_chunk_query("t1", "other name.bin", total, AS_TEST_CHUNK_SIZE, 3);
		g_autofree gchar *q3 = as_test_chunk_query("t1", "chunked file.bin", total,
							   AS_TEST_CHUNK_SIZE / 2, 3);
		g_autoptr(GBytes) full =
			as_test_read_range(src, 3 * AS_TEST_CHUNK_SIZE, AS_TEST_CHUNK_SIZE);
		g_autoptr(GBytes) half =
			as_test_read_range(src, 3 * AS_TEST_CHUNK_SIZE / 2, AS_TEST_CHUNK_SIZE / 2);
		g_autoptr(SoupMessage) m1 =
			as_test_daemon_message(d, SOUP_METHOD_POST, q, as_test_daemon_get_token(d));
		g_autoptr(SoupMessage) m2 = as_test_daemon_message(d, SOUP_METHOD_POST, q2,
								   as_test_daemon_get_token(d));
		g_autoptr(SoupMessage) m3 = as_test_daemon_message(d, SOUP_METHOD_POST, q3,
								   as_test_daemon_get_token(d));
		g_autoptr(AsTestReply) r1 = as_test_daemon_send(d, m1, full, NULL);
		g_autoptr(AsTestReply) r2 = as_test_daemon_send(d, m2, full, NULL);
		g_autoptr(AsTestReply) r3 = as_test_daemon_send(d, m3, half, NULL);
		as_test_assert_error_reply(r1, SOUP_STATUS_CONFLICT);
		as_test_assert_error_reply(r2, SOUP_STATUS_CONFLICT);
		as_test_assert_error_reply(r3, SOUP_STATUS_CONFLICT);
	}
	/* missing Content-Length */
	{
		g_autofree gchar *q =
			as_test_chunk_query("t1", "chunked file.bin", total, AS_TEST_CHUNK_SIZE, 3);
		g_autoptr(SoupMessage) msg =
			as_test_daemon_message(d, SOUP_METHOD_POST, q, as_test_daemon_get_token(d));
		g_autoptr(GBytes) full =
			as_test_read_range(src, 3 * AS_TEST_CHUNK_SIZE, AS_TEST_CHUNK_SIZE);
		g_autoptr(GInputStream) stream = g_memory_input_stream_new_from_bytes(full);
		g_autoptr(AsTestReply) reply = NULL;
		soup_message_set_request_body(msg, "application/octet-stream", stream, -1);
		reply = as_test_daemon_send(d, msg, NULL, NULL);
		as_test_reply_assert_status(reply, SOUP_STATUS_LENGTH_REQUIRED);
	}
	/* bad parameters */
	{
		const gchar *queries[] = {
			"/upload/"
			"chunk?task_id=t1&chunk_index=x&total_chunks=6&filename=a&total_size=10&"
			"chunk_size=2",
			"/upload/"
			"chunk?chunk_index=0&total_chunks=6&filename=a&total_size=10&chunk_size=2",
			"/upload/"
			"chunk?task_id=t1&chunk_index=-1&total_chunks=6&filename=a&total_size=10&"
			"chunk_size=2",
			"/upload/"
			"chunk?task_id=..%2Fx&chunk_index=0&total_chunks=5&filename=a&total_size="
			"10&chunk_size=2",
			"/upload/"
			"chunk?task_id=t9&chunk_index=0&total_chunks=5&filename=..%2Fa&total_size="
			"10&chunk_size=2",
			"/upload/"
			"chunk?task_id=t9&chunk_index=0&total_chunks=9&filename=a&total_size=10&"
			"chunk_size=2",
			"/upload/"
			"chunk?task_id=t9&chunk_index=0&total_chunks=5&filename=a&total_size=10&"
			"chunk_size=0",
			NULL,
		};
		g_autoptr(GBytes) two = g_bytes_new_static("ab", 2);
		for (guint i = 0; queries[i] != NULL; i++) {
			g_autoptr(SoupMessage) msg = as_test_daemon_message(
				d, SOUP_METHOD_POST, queries[i], as_test_daemon_get_token(d));
			g_autoptr(AsTestReply) reply = as_test_daemon_send(d, msg, two, NULL);
			if (reply->status != SOUP_STATUS_BAD_REQUEST)
				g_error("%s: expected 400, got %u: %s", queries[i], reply->status,
					as_test_reply_text(reply));
		}
	}
	/* the rest, then a duplicate */
	for (guint32 i = 2; i < n_chunks; i++) {
		g_autoptr(AsTestReply) reply = as_test_daemon_send_chunk(
			d, "t1", "chunked file.bin", src, total, AS_TEST_CHUNK_SIZE, i, i != 5);
		as_test_reply_assert_status(reply, SOUP_STATUS_OK);
		g_assert_cmpint(as_test_int(as_test_reply_object(reply), "received"), ==,
				i == 5 ? 1234 : AS_TEST_CHUNK_SIZE);
		if (i == 4)
			g_assert_true(as_test_bool(as_test_reply_object(reply), "duplicate"));
		if (i == 5)
			g_assert_true(as_test_bool(as_test_reply_object(reply), "all_chunks_done"));
	}
	/* everything is there now */
	{
		g_autoptr(AsTestReply) st = as_test_daemon_get(d, "/upload/status?task_id=t1");
		const guint received[] = {0, 5};
		g_assert_cmpint(as_test_int(as_test_reply_object(st), "received_chunks"), ==,
				n_chunks);
		as_test_assert_ranges(
			json_object_get_array_member(as_test_reply_object(st), "received"),
			received, 1);
		g_assert_cmpuint(json_array_get_length(json_object_get_array_member(
					 as_test_reply_object(st), "missing")),
				 ==, 0);
	}
	/* complete */
	{
		g_autoptr(AsTestReply) reply = as_test_daemon_post_empty(d, complete_q);
		g_autoptr(AsTestReply) again = NULL;
		g_autoptr(AsTestReply) st = NULL;
		g_autofree gchar *path = as_test_saved_path(d, "chunked file.bin");
		g_autofree gchar *saved_sha = NULL;
		JsonObject *obj;
		as_test_reply_assert_status(reply, SOUP_STATUS_OK);
		obj = as_test_reply_object(reply);
		g_assert_cmpstr(as_test_str(obj, "status"), ==, "complete");
		g_assert_cmpstr(as_test_str(obj, "filename"), ==, "chunked file.bin");
		g_assert_cmpstr(as_test_str(obj, "saved_as"), ==, "chunked file.bin");
		g_assert_cmpint(as_test_int(obj, "size"), ==, (gint64)total);
		g_assert_cmpstr(as_test_str(obj, "sha256"), ==, sha);
		saved_sha = as_test_file_sha256(path);
		g_assert_cmpstr(saved_sha, ==, sha);

		/* the reply was lost, the sender asks again: the same answer, no second file */
		again = as_test_daemon_post_empty(d, complete_q);
		as_test_reply_assert_status(again, SOUP_STATUS_OK);
		g_assert_cmpstr(as_test_reply_text(again), ==, as_test_reply_text(reply));
		g_assert_cmpuint(as_test_count_saved(d), ==, 1);

		st = as_test_daemon_get(d, "/upload/status?task_id=t1");
		as_test_reply_assert_status(st, SOUP_STATUS_OK);
		obj = as_test_reply_object(st);
		g_assert_true(as_test_bool(obj, "complete"));
		g_assert_cmpstr(as_test_str(obj, "saved_as"), ==, "chunked file.bin");
		g_assert_cmpstr(as_test_str(obj, "sha256"), ==, sha);
		g_assert_cmpint(as_test_int(obj, "total_size"), ==, (gint64)total);
	}
	/* one transfer: one history line and one count, however many chunks and completes */
	{
		g_autoptr(GPtrArray) history =
			as_test_read_jsonl(as_test_daemon_get_history_path(d));
		g_autoptr(AsTestReply) metrics = as_test_daemon_get(d, "/metrics");
		guint lines = 0;
		for (guint i = 0; i < history->len; i++) {
			JsonObject *h = g_ptr_array_index(history, i);
			if (g_strcmp0(json_object_get_string_member(h, "filename"),
				      "chunked file.bin") != 0)
				continue;
			lines++;
			g_assert_true(json_object_get_boolean_member(h, "success"));
			g_assert_cmpstr(json_object_get_string_member(h, "sha256"), ==, sha);
			g_assert_cmpint(json_object_get_int_member(h, "size"), ==, (gint64)total);
		}
		g_assert_cmpuint(lines, ==, 1);
		g_assert_cmpint(as_test_metric_value(as_test_reply_text(metrics),
						     "aerosync_files_received_total"),
				==, 1);
	}
	/* unknown tasks */
	{
		g_autoptr(AsTestReply) st = as_test_daemon_get(d, "/upload/status?task_id=never");
		g_autoptr(AsTestReply) c =
			as_test_daemon_post_empty(d, "/upload/complete?task_id=never&filename=x");
		as_test_assert_error_reply(st, SOUP_STATUS_NOT_FOUND);
		as_test_assert_error_reply(c, SOUP_STATUS_NOT_FOUND);
	}
	/* a wrong final hash discards the task */
	{
		g_autofree gchar *small_src =
			g_build_filename(as_test_daemon_get_root(d), "t2.src", NULL);
		g_autofree gchar *small_sha = as_test_write_random_file(small_src, 3000, 13);
		g_autoptr(AsTestReply) c = NULL;
		g_autoptr(AsTestReply) st = NULL;
		g_autofree gchar *path = as_test_saved_path(d, "t2.bin");
		for (guint32 i = 0; i < 3; i++) {
			g_autoptr(AsTestReply) reply = as_test_daemon_send_chunk(
				d, "t2", "t2.bin", small_src, 3000, 1000, i, FALSE);
			as_test_reply_assert_status(reply, SOUP_STATUS_OK);
		}
		c = as_test_daemon_post_empty(
			d,
			"/upload/complete?task_id=t2&filename=t2.bin&total_chunks=3&total_size=3000"
			"&sha256=cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd");
		as_test_assert_error_reply(c, SOUP_STATUS_BAD_REQUEST);
		g_assert_cmpstr(as_test_str(as_test_reply_object(c), "error"), ==,
				"SHA-256 mismatch");
		g_assert_cmpstr(as_test_str(as_test_reply_object(c), "actual"), ==, small_sha);
		g_assert_false(g_file_test(path, G_FILE_TEST_EXISTS));
		st = as_test_daemon_get(d, "/upload/status?task_id=t2");
		as_test_assert_error_reply(st, SOUP_STATUS_NOT_FOUND);
		g_assert_true(as_test_wait_history(d, "t2.bin", FALSE));
	}
	/* nothing of t1 or t2 is left in staging but the tombstone */
	{
		g_autoptr(GDir) dir = g_dir_open(as_test_daemon_get_staging_dir(d), 0, NULL);
		const gchar *name;
		while (dir != NULL && (name = g_dir_read_name(dir)) != NULL) {
			g_assert_false(g_str_has_suffix(name, ".data"));
			g_assert_false(g_str_has_suffix(name, ".map"));
			g_assert_false(g_str_has_prefix(name, "t2."));
		}
	}
	g_assert_cmpint(as_test_daemon_stop(d), ==, 0);
}

/* one client sends half a chunk and waits; another sends the same chunk and takes it over: a
 * sender that died mid-chunk must not hold it until its connection times out */
static void
as_test_http_chunk_concurrent_same(void)
{
	g_autoptr(AsTestDaemon) d = as_test_started(NULL);
	g_autoptr(GBytes) data = as_test_random_bytes(2 * AS_TEST_CHUNK_SIZE, 14);
	g_autoptr(GBytes) chunk0 = g_bytes_new_from_bytes(data, 0, AS_TEST_CHUNK_SIZE);
	g_autoptr(GBytes) chunk1 =
		g_bytes_new_from_bytes(data, AS_TEST_CHUNK_SIZE, AS_TEST_CHUNK_SIZE);
	g_autofree gchar *q0 = as_test_chunk_query("same", "same.bin", 2 * AS_TEST_CHUNK_SIZE,
						   AS_TEST_CHUNK_SIZE, 0);
	g_autofree gchar *q1 = as_test_chunk_query("same", "same.bin", 2 * AS_TEST_CHUNK_SIZE,
						   AS_TEST_CHUNK_SIZE, 1);
	g_autofree gchar *head = g_strdup_printf(
		"POST %s HTTP/1.1\r\nHost: 127.0.0.1:%u\r\n"
		"Authorization: Bearer %s\r\nContent-Length: %u\r\n\r\n",
		q0, as_test_daemon_get_port(d), as_test_daemon_get_token(d), AS_TEST_CHUNK_SIZE);
	g_autoptr(GSocketConnection) conn = as_test_daemon_raw_connect(d);
	const guint8 *bytes = g_bytes_get_data(chunk0, NULL);
	g_autofree gchar *sha = as_test_bytes_sha256(data);

	as_test_raw_write_all(conn, head, strlen(head));
	as_test_raw_write_all(conn, bytes, AS_TEST_CHUNK_SIZE / 2);
	g_usleep(300 * G_TIME_SPAN_MILLISECOND);
	{
		g_autoptr(SoupMessage) msg = as_test_daemon_message(d, SOUP_METHOD_POST, q0,
								    as_test_daemon_get_token(d));
		g_autoptr(AsTestReply) reply = as_test_daemon_send(d, msg, chunk0, NULL);
		as_test_reply_assert_status(reply, SOUP_STATUS_OK);
	}
	/* another chunk of the same task is fine meanwhile */
	{
		g_autoptr(SoupMessage) msg = as_test_daemon_message(d, SOUP_METHOD_POST, q1,
								    as_test_daemon_get_token(d));
		g_autoptr(AsTestReply) reply = as_test_daemon_send(d, msg, chunk1, NULL);
		as_test_reply_assert_status(reply, SOUP_STATUS_OK);
	}
	/* the first client's late end counts for nothing */
	as_test_raw_write_all(conn, bytes + AS_TEST_CHUNK_SIZE / 2, AS_TEST_CHUNK_SIZE / 2);
	{
		g_autoptr(AsTestReply) reply = as_test_raw_read_reply(conn);
		as_test_assert_error_reply(reply, SOUP_STATUS_CONFLICT);
	}
	{
		g_autofree gchar *cq = g_strdup_printf(
			"/upload/complete?task_id=same&filename=same.bin&sha256=%s", sha);
		g_autoptr(AsTestReply) reply = as_test_daemon_post_empty(d, cq);
		g_autofree gchar *path = as_test_saved_path(d, "same.bin");
		as_test_reply_assert_status(reply, SOUP_STATUS_OK);
		as_test_assert_file_bytes(path, data);
	}
	g_assert_cmpint(as_test_daemon_stop(d), ==, 0);
}

static gboolean
as_test_chunk_retry_ok_cb(gpointer user_data)
{
	gpointer *args = user_data;
	AsTestDaemon *d = args[0];
	GBytes *chunk = args[1];
	const gchar *q = args[2];
	g_autoptr(SoupMessage) msg =
		as_test_daemon_message(d, SOUP_METHOD_POST, q, as_test_daemon_get_token(d));
	g_autoptr(AsTestReply) reply = as_test_daemon_send(d, msg, chunk, NULL);

	/* 409 while the daemon has not yet noticed the first sender is gone */
	if (reply->status == SOUP_STATUS_CONFLICT)
		return FALSE;
	as_test_reply_assert_status(reply, SOUP_STATUS_OK);
	g_assert_false(as_test_bool(as_test_reply_object(reply), "duplicate"));
	return TRUE;
}

/* a sender that vanishes in the middle of a chunk: the chunk is simply missing, and can be resent
 */
static void
as_test_http_chunk_client_gone(void)
{
	g_autoptr(AsTestDaemon) d = as_test_started(NULL);
	g_autoptr(GBytes) data = as_test_random_bytes(2 * AS_TEST_CHUNK_SIZE, 17);
	g_autoptr(GBytes) chunk0 = g_bytes_new_from_bytes(data, 0, AS_TEST_CHUNK_SIZE);
	g_autoptr(GBytes) chunk1 =
		g_bytes_new_from_bytes(data, AS_TEST_CHUNK_SIZE, AS_TEST_CHUNK_SIZE);
	g_autofree gchar *q0 = as_test_chunk_query("gone", "gone.bin", 2 * AS_TEST_CHUNK_SIZE,
						   AS_TEST_CHUNK_SIZE, 0);
	g_autofree gchar *q1 = as_test_chunk_query("gone", "gone.bin", 2 * AS_TEST_CHUNK_SIZE,
						   AS_TEST_CHUNK_SIZE, 1);
	g_autofree gchar *sha = as_test_bytes_sha256(data);
	gpointer args[] = {d, chunk0, q0};

	{
		g_autoptr(SoupMessage) msg = as_test_daemon_message(d, SOUP_METHOD_POST, q1,
								    as_test_daemon_get_token(d));
		g_autoptr(AsTestReply) reply = as_test_daemon_send(d, msg, chunk1, NULL);
		as_test_reply_assert_status(reply, SOUP_STATUS_OK);
	}
	{
		g_autoptr(GSocketConnection) conn = as_test_daemon_raw_connect(d);
		g_autofree gchar *head =
			g_strdup_printf("POST %s HTTP/1.1\r\nHost: 127.0.0.1:%u\r\n"
					"Authorization: Bearer %s\r\nContent-Length: %u\r\n\r\n",
					q0, as_test_daemon_get_port(d), as_test_daemon_get_token(d),
					AS_TEST_CHUNK_SIZE);
		as_test_raw_write_all(conn, head, strlen(head));
		as_test_raw_write_all(conn, g_bytes_get_data(chunk0, NULL), AS_TEST_CHUNK_SIZE / 2);
		g_usleep(200 * G_TIME_SPAN_MILLISECOND);
		g_io_stream_close(G_IO_STREAM(conn), NULL, NULL);
	}
	{
		g_autoptr(AsTestReply) st = as_test_daemon_get(d, "/upload/status?task_id=gone");
		const guint received[] = {1, 1};
		const guint missing[] = {0, 0};
		g_assert_cmpint(as_test_int(as_test_reply_object(st), "received_chunks"), ==, 1);
		as_test_assert_ranges(
			json_object_get_array_member(as_test_reply_object(st), "received"),
			received, 1);
		as_test_assert_ranges(
			json_object_get_array_member(as_test_reply_object(st), "missing"), missing,
			1);
	}
	g_assert_true(as_test_wait_for(as_test_chunk_retry_ok_cb, args, AS_TEST_SETTLE_MS));
	{
		g_autofree gchar *cq = g_strdup_printf(
			"/upload/complete?task_id=gone&filename=gone.bin&sha256=%s", sha);
		g_autoptr(AsTestReply) reply = as_test_daemon_post_empty(d, cq);
		g_autofree gchar *path = as_test_saved_path(d, "gone.bin");
		as_test_reply_assert_status(reply, SOUP_STATUS_OK);
		as_test_assert_file_bytes(path, data);
	}
	g_assert_cmpint(as_test_daemon_stop(d), ==, 0);
}

/* -------- /status, /metrics, history, audit -------- */

static void
as_test_http_status(void)
{
	g_autoptr(AsTestDaemon) d = as_test_started(NULL);
	g_autoptr(SoupMultipart) mp = soup_multipart_new(SOUP_FORM_MIME_TYPE_MULTIPART);
	g_autoptr(AsTestReply) reply = NULL;
	JsonObject *obj;
	JsonArray *files;
	g_autoptr(GPtrArray) history = NULL;
	g_autoptr(GHashTable) names = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	guint64 expected_size = 0;

	/* empty */
	reply = as_test_daemon_get(d, "/status");
	as_test_reply_assert_status(reply, SOUP_STATUS_OK);
	obj = as_test_reply_object(reply);
	g_assert_cmpstr(as_test_str(obj, "status"), ==, "running");
	g_assert_cmpint(as_test_int(obj, "total_files"), ==, 0);
	g_assert_cmpint(as_test_int(obj, "total_size"), ==, 0);
	g_assert_cmpint(as_test_int(obj, "active_transfers"), ==, 0);
	g_assert_cmpuint(json_array_get_length(json_object_get_array_member(obj, "files")), ==, 0);
	g_clear_pointer(&reply, as_test_reply_free);

	for (guint i = 0; i < AS_TEST_BATCH_MANY; i++) {
		g_autofree gchar *name = g_strdup_printf("many/f%03u.txt", i);
		g_autofree gchar *content = g_strdup_printf("file number %u", i);
		g_autoptr(GBytes) bytes = g_bytes_new(content, strlen(content));
		soup_multipart_append_form_file(mp, name, name, "text/plain", bytes);
	}
	reply = as_test_post_multipart(d, "/upload/batch", mp);
	as_test_reply_assert_status(reply, SOUP_STATUS_OK);
	g_assert_cmpint(as_test_int(as_test_reply_object(reply), "saved"), ==, AS_TEST_BATCH_MANY);
	g_clear_pointer(&reply, as_test_reply_free);
	{
		g_autoptr(GBytes) last = g_bytes_new_static("the newest", 10);
		g_autoptr(AsTestReply) up = as_test_daemon_put_bytes(d, "newest.txt", last, NULL);
		as_test_reply_assert_status(up, SOUP_STATUS_OK);
	}

	reply = as_test_daemon_get(d, "/status");
	obj = as_test_reply_object(reply);
	g_assert_cmpint(as_test_int(obj, "total_files"), ==, AS_TEST_BATCH_MANY + 1);
	files = json_object_get_array_member(obj, "files");
	g_assert_cmpuint(json_array_get_length(files), ==, AS_TEST_STATUS_MAX);
	/* newest first: the reverse of the order in which the history got them */
	history = as_test_read_jsonl(as_test_daemon_get_history_path(d));
	g_assert_cmpuint(history->len, ==, AS_TEST_BATCH_MANY + 1);
	for (guint i = 0; i < json_array_get_length(files); i++) {
		JsonObject *f = json_array_get_object_element(files, i);
		JsonObject *h = g_ptr_array_index(history, history->len - 1 - i);
		g_assert_cmpstr(as_test_str(f, "id"), ==, as_test_str(h, "id"));
		g_assert_cmpstr(as_test_str(f, "name"), ==, as_test_str(h, "filename"));
		g_assert_cmpstr(as_test_str(f, "sha256"), ==, as_test_str(h, "sha256"));
		g_assert_cmpint(as_test_int(f, "size"), ==, as_test_int(h, "size"));
		g_assert_cmpint(as_test_int(f, "received_at"), >, 0);
		g_assert_false(g_hash_table_contains(names, as_test_str(f, "name")));
		g_hash_table_add(names, g_strdup(as_test_str(f, "name")));
		expected_size += (guint64)as_test_int(f, "size");
		if (i == 0) {
			g_assert_cmpstr(as_test_str(f, "name"), ==, "newest.txt");
			g_assert_cmpint(as_test_int(f, "size"), ==, 10);
		} else {
			g_assert_true(g_str_has_prefix(as_test_str(f, "name"), "many/f"));
		}
	}
	g_assert_cmpint(as_test_int(obj, "total_size"), >=, (gint64)expected_size);
	g_assert_cmpint(as_test_daemon_stop(d), ==, 0);
}

static gint
as_test_metric_value(const gchar *text, const gchar *name)
{
	g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
	g_autofree gchar *prefix = g_strdup_printf("%s ", name);
	for (guint i = 0; lines[i] != NULL; i++) {
		if (g_str_has_prefix(lines[i], prefix))
			return (gint)g_ascii_strtod(lines[i] + strlen(prefix), NULL);
	}
	g_error("no sample %s in:\n%s", name, text);
	return -1;
}

static void
as_test_http_metrics(void)
{
	g_autoptr(AsTestDaemon) d = as_test_started(NULL);
	g_autofree gchar *promtool = g_find_program_in_path("promtool");
	g_autoptr(GBytes) data = g_bytes_new_static("metric", 6);

	for (guint i = 0; i < 3; i++) {
		g_autofree gchar *name = g_strdup_printf("m%u.txt", i);
		g_autoptr(AsTestReply) reply = as_test_daemon_put_bytes(d, name, data, NULL);
		as_test_reply_assert_status(reply, SOUP_STATUS_OK);
	}
	{
		g_autoptr(AsTestReply) reply = as_test_daemon_put_bytes(
			d, "bad.txt", data,
			"0000000000000000000000000000000000000000000000000000000000000000");
		as_test_assert_error_reply(reply, SOUP_STATUS_BAD_REQUEST);
	}
	{
		g_autoptr(SoupMessage) msg =
			as_test_daemon_message(d, SOUP_METHOD_GET, "/status", "bad");
		g_autoptr(AsTestReply) reply = as_test_daemon_send(d, msg, NULL, NULL);
		as_test_reply_assert_status(reply, SOUP_STATUS_UNAUTHORIZED);
	}
	{
		g_autoptr(AsTestReply) reply = as_test_daemon_get(d, "/metrics");
		const gchar *text = as_test_reply_text(reply);
		as_test_reply_assert_status(reply, SOUP_STATUS_OK);
		g_assert_true(g_str_has_prefix(as_test_reply_header(reply, "Content-Type"),
					       "text/plain"));
		g_assert_cmpint(as_test_metric_value(text, "aerosync_files_received_total"), ==, 3);
		g_assert_cmpint(as_test_metric_value(text, "aerosync_bytes_received_total"), ==,
				18);
		g_assert_cmpint(as_test_metric_value(text, "aerosync_upload_errors_total"), >=, 1);
		g_assert_cmpint(as_test_metric_value(text, "aerosync_auth_failures_total"), ==, 1);
		if (promtool == NULL) {
			g_test_message("promtool is not installed: format not checked");
		} else {
			const gchar *argv[] = {promtool, "check", "metrics", NULL};
			g_autoptr(GSubprocess) proc = NULL;
			g_autoptr(GError) error = NULL;
			g_autofree gchar *out = NULL;
			proc = g_subprocess_newv(argv,
						 G_SUBPROCESS_FLAGS_STDIN_PIPE |
							 G_SUBPROCESS_FLAGS_STDOUT_PIPE |
							 G_SUBPROCESS_FLAGS_STDERR_MERGE,
						 &error);
			g_assert_no_error(error);
			g_subprocess_communicate_utf8(proc, text, NULL, &out, NULL, &error);
			g_assert_no_error(error);
			if (g_subprocess_get_exit_status(proc) != 0)
				g_error("promtool check metrics failed:\n%s\n--- input ---\n%s",
					out, text);
		}
	}
	/* /metrics needs a token */
	{
		g_autoptr(SoupMessage) msg =
			as_test_daemon_message(d, SOUP_METHOD_GET, "/metrics", NULL);
		g_autoptr(AsTestReply) reply = as_test_daemon_send(d, msg, NULL, NULL);
		as_test_reply_assert_status(reply, SOUP_STATUS_UNAUTHORIZED);
	}
	g_assert_cmpint(as_test_daemon_stop(d), ==, 0);
}

static void
as_test_http_history_audit(void)
{
	g_autoptr(AsTestDaemon) d = NULL;
	g_autoptr(GPtrArray) history = NULL;
	g_autoptr(GPtrArray) audit = NULL;
	g_autoptr(GBytes) data = as_test_random_bytes(AS_TEST_SMALL_SIZE, 15);
	g_autofree gchar *sha = as_test_bytes_sha256(data);
	const gchar *keys[] = {"id",	       "filename",    "saved_path",    "size",
			       "sha256",       "remote_ip",   "protocol",      "direction",
			       "completed_at", "duration_ms", "avg_speed_bps", "success",
			       "error",	       NULL};
	guint completed = 0, failed = 0, auth_failed = 0;

	as_test_watchdog_arm();
	d = as_test_daemon_new();
	as_test_daemon_add_arg(d, "--audit-log");
	as_test_daemon_add_arg(d, as_test_daemon_get_audit_path(d));
	{
		g_autoptr(GError) error = NULL;
		as_test_daemon_start(d, &error);
		g_assert_no_error(error);
	}
	{
		g_autoptr(AsTestReply) ok = as_test_daemon_put_bytes(d, "hist.bin", data, sha);
		g_autoptr(AsTestReply) bad = as_test_daemon_put_bytes(
			d, "hist-bad.bin", data,
			"0000000000000000000000000000000000000000000000000000000000000000");
		g_autoptr(SoupMessage) msg =
			as_test_daemon_message(d, SOUP_METHOD_GET, "/status", "nope");
		g_autoptr(AsTestReply) unauth = as_test_daemon_send(d, msg, NULL, NULL);
		as_test_reply_assert_status(ok, SOUP_STATUS_OK);
		as_test_reply_assert_status(bad, SOUP_STATUS_BAD_REQUEST);
		as_test_reply_assert_status(unauth, SOUP_STATUS_UNAUTHORIZED);
	}
	g_assert_true(as_test_wait_history(d, "hist-bad.bin", FALSE));
	history = as_test_read_jsonl(as_test_daemon_get_history_path(d));
	g_assert_cmpuint(history->len, ==, 2);
	for (guint i = 0; i < history->len; i++) {
		JsonObject *obj = g_ptr_array_index(history, i);
		for (guint k = 0; keys[k] != NULL; k++) {
			if (!json_object_has_member(obj, keys[k]))
				g_error("history line %u has no '%s'", i, keys[k]);
		}
		g_assert_cmpstr(json_object_get_string_member(obj, "direction"), ==, "receive");
		g_assert_cmpstr(json_object_get_string_member(obj, "remote_ip"), ==, "127.0.0.1");
		g_assert_cmpint(json_object_get_int_member(obj, "completed_at"), >, 0);
		if (json_object_get_boolean_member(obj, "success")) {
			g_autofree gchar *expected_path = as_test_saved_path(d, "hist.bin");
			g_assert_cmpstr(json_object_get_string_member(obj, "filename"), ==,
					"hist.bin");
			g_assert_cmpstr(json_object_get_string_member(obj, "saved_path"), ==,
					expected_path);
			g_assert_cmpint(json_object_get_int_member(obj, "size"), ==,
					AS_TEST_SMALL_SIZE);
			g_assert_cmpstr(json_object_get_string_member(obj, "sha256"), ==, sha);
			g_assert_true(json_object_get_null_member(obj, "error"));
		} else {
			g_assert_cmpstr(json_object_get_string_member(obj, "filename"), ==,
					"hist-bad.bin");
			g_assert_false(json_object_get_null_member(obj, "error"));
		}
	}

	audit = as_test_read_jsonl(as_test_daemon_get_audit_path(d));
	for (guint i = 0; i < audit->len; i++) {
		JsonObject *obj = g_ptr_array_index(audit, i);
		const gchar *type = json_object_get_string_member(
			json_object_get_object_member(obj, "event"), "type");
		const gchar *fields[] = {"timestamp", "direction", "protocol", "filename", "size",
					 "sha256",    "remote_ip", "result",   NULL};
		for (guint k = 0; fields[k] != NULL; k++) {
			if (!json_object_has_member(obj, fields[k]))
				g_error("audit line %u (%s) has no '%s'", i, type, fields[k]);
		}
		if (g_strcmp0(type, "transfer_completed") == 0) {
			completed++;
			g_assert_cmpstr(json_object_get_string_member(obj, "filename"), ==,
					"hist.bin");
			g_assert_cmpstr(json_object_get_string_member(obj, "sha256"), ==, sha);
			g_assert_cmpint(json_object_get_int_member(obj, "size"), ==,
					AS_TEST_SMALL_SIZE);
			g_assert_cmpstr(json_object_get_string_member(obj, "direction"), ==,
					"receive");
			g_assert_cmpstr(json_object_get_string_member(obj, "result"), ==, "ok");
		} else if (g_strcmp0(type, "transfer_failed") == 0) {
			failed++;
			g_assert_cmpstr(json_object_get_string_member(obj, "filename"), ==,
					"hist-bad.bin");
		} else if (g_strcmp0(type, "auth_failed") == 0) {
			auth_failed++;
		}
	}
	g_assert_cmpuint(completed, ==, 1);
	g_assert_cmpuint(failed, ==, 1);
	g_assert_cmpuint(auth_failed, ==, 1);
	g_assert_cmpint(as_test_daemon_stop(d), ==, 0);
}

/* -------- WebSocket, through a third-party client -------- */

static GSubprocess *
as_test_ws_spawn(AsTestDaemon *d, const gchar *token, const gchar *until, GDataInputStream **out)
{
	g_autofree gchar *script = g_test_build_filename(G_TEST_DIST, "ws-listen.py", NULL);
	g_autofree gchar *url = g_strdup_printf("ws://127.0.0.1:%u/ws", as_test_daemon_get_port(d));
	g_autoptr(GPtrArray) argv = g_ptr_array_new();
	g_autoptr(GError) error = NULL;
	g_autoptr(GSubprocessLauncher) launcher = NULL;
	GSubprocess *proc;

	g_ptr_array_add(argv, (gpointer) "/usr/bin/python3");
	g_ptr_array_add(argv, script);
	g_ptr_array_add(argv, url);
	g_ptr_array_add(argv, (gpointer) "--timeout");
	g_ptr_array_add(argv, (gpointer)AS_TEST_WS_TIMEOUT_S);
	if (token != NULL) {
		g_ptr_array_add(argv, (gpointer) "--token");
		g_ptr_array_add(argv, (gpointer)token);
	}
	if (until != NULL) {
		g_ptr_array_add(argv, (gpointer) "--until-filename");
		g_ptr_array_add(argv, (gpointer)until);
	}
	g_ptr_array_add(argv, NULL);
	launcher = g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_STDOUT_PIPE);
	/* meson's malloc checking is for our code: under it glibc may abort the third-party
	 * client without a word, which looked like a WebSocket that never opened */
	g_subprocess_launcher_unsetenv(launcher, "MALLOC_CHECK_");
	g_subprocess_launcher_unsetenv(launcher, "MALLOC_PERTURB_");
	proc = g_subprocess_launcher_spawnv(launcher, (const gchar *const *)argv->pdata, &error);
	g_assert_no_error(error);
	*out = g_data_input_stream_new(g_subprocess_get_stdout_pipe(proc));
	return proc;
}

static gboolean
as_test_have_websockets(void)
{
	const gchar *argv[] = {"/usr/bin/python3", "-c", "import websockets", NULL};
	gint status = 0;
	if (!g_file_test(argv[0], G_FILE_TEST_IS_EXECUTABLE))
		return FALSE;
	if (!g_spawn_sync(NULL, (gchar **)argv, NULL, G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL, NULL,
			  NULL, &status, NULL))
		return FALSE;
	return g_spawn_check_wait_status(status, NULL);
}

static void
as_test_http_websocket(void)
{
	g_autoptr(AsTestDaemon) d = NULL;
	g_autoptr(GSubprocess) proc = NULL;
	g_autoptr(GDataInputStream) out = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) events =
		g_ptr_array_new_with_free_func((GDestroyNotify)json_object_unref);
	g_autofree gchar *first = NULL;
	g_autofree gchar *src = NULL;
	g_autofree gchar *sha = NULL;
	const guint64 total = 4 * AS_TEST_CHUNK_SIZE;
	guint started = 0, progress = 0, completed_chunked = 0, completed_marker = 0, failed = 0;
	gchar *line;

	if (!as_test_have_websockets()) {
		g_test_skip("/usr/bin/python3 with the websockets module is needed");
		return;
	}
	d = as_test_started(NULL);
	src = g_build_filename(as_test_daemon_get_root(d), "ws.src", NULL);
	sha = as_test_write_random_file(src, total, 16);

	/* no token: the handshake is refused */
	{
		g_autoptr(GSubprocess) p = NULL;
		g_autoptr(GDataInputStream) o = NULL;
		g_autofree gchar *l = NULL;
		p = as_test_ws_spawn(d, NULL, NULL, &o);
		l = g_data_input_stream_read_line_utf8(o, NULL, NULL, &error);
		g_assert_no_error(error);
		g_assert_cmpstr(l, ==, "REFUSED 401");
		g_subprocess_wait(p, NULL, &error);
		g_assert_no_error(error);
		g_assert_cmpint(g_subprocess_get_exit_status(p), ==, 3);
	}
	{
		g_autoptr(GSubprocess) p = NULL;
		g_autoptr(GDataInputStream) o = NULL;
		g_autofree gchar *l = NULL;
		p = as_test_ws_spawn(d, "not-the-token", NULL, &o);
		l = g_data_input_stream_read_line_utf8(o, NULL, NULL, &error);
		g_assert_no_error(error);
		g_assert_cmpstr(l, ==, "REFUSED 401");
		g_subprocess_wait(p, NULL, &error);
	}

	proc = as_test_ws_spawn(d, as_test_daemon_get_token(d), "marker.txt", &out);
	first = g_data_input_stream_read_line_utf8(out, NULL, NULL, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(first, ==, "OPEN");

	/* a chunked upload, completed twice (the second answers from the tombstone) */
	for (guint32 i = 0; i < 4; i++) {
		g_autoptr(AsTestReply) reply = as_test_daemon_send_chunk(
			d, "wstask", "ws file.bin", src, total, AS_TEST_CHUNK_SIZE, i, TRUE);
		as_test_reply_assert_status(reply, SOUP_STATUS_OK);
	}
	for (guint i = 0; i < 2; i++) {
		g_autofree gchar *q = g_strdup_printf(
			"/upload/complete?task_id=wstask&filename=ws%%20file.bin&sha256=%s", sha);
		g_autoptr(AsTestReply) reply = as_test_daemon_post_empty(d, q);
		as_test_reply_assert_status(reply, SOUP_STATUS_OK);
	}
	/* a failure */
	{
		g_autoptr(GBytes) data = g_bytes_new_static("x", 1);
		g_autoptr(AsTestReply) reply = as_test_daemon_put_bytes(
			d, "ws-bad.bin", data,
			"0000000000000000000000000000000000000000000000000000000000000000");
		as_test_reply_assert_status(reply, SOUP_STATUS_BAD_REQUEST);
	}
	/* the marker ends the listener */
	{
		g_autoptr(GBytes) data = g_bytes_new_static("end", 3);
		g_autoptr(AsTestReply) reply =
			as_test_daemon_put_bytes(d, "marker.txt", data, NULL);
		as_test_reply_assert_status(reply, SOUP_STATUS_OK);
	}

	while ((line = g_data_input_stream_read_line_utf8(out, NULL, NULL, &error)) != NULL) {
		g_autofree gchar *owned = line;
		g_autoptr(JsonParser) parser = json_parser_new();
		g_test_message("ws: %s", owned);
		if (g_strcmp0(owned, "TIMEOUT") == 0)
			g_error("the WebSocket listener timed out before the marker's completed "
				"event");
		g_assert_true(json_parser_load_from_data(parser, owned, -1, NULL));
		g_assert_true(JSON_NODE_HOLDS_OBJECT(json_parser_get_root(parser)));
		g_ptr_array_add(events, json_object_ref(json_node_get_object(
						json_parser_get_root(parser))));
	}
	g_assert_no_error(error);
	g_subprocess_wait(proc, NULL, &error);
	g_assert_no_error(error);
	g_assert_cmpint(g_subprocess_get_exit_status(proc), ==, 0);

	for (guint i = 0; i < events->len; i++) {
		JsonObject *ev = g_ptr_array_index(events, i);
		const gchar *name = as_test_str(ev, "event");
		const gchar *filename =
			json_object_get_string_member_with_default(ev, "filename", "");
		if (g_strcmp0(name, "transfer_started") == 0) {
			if (g_strcmp0(filename, "ws file.bin") == 0)
				started++;
		} else if (g_strcmp0(name, "progress") == 0) {
			if (g_strcmp0(filename, "ws file.bin") == 0) {
				progress++;
				g_assert_cmpint(as_test_int(ev, "total"), ==, (gint64)total);
				g_assert_cmpint(as_test_int(ev, "bytes"), <=, (gint64)total);
			}
		} else if (g_strcmp0(name, "completed") == 0) {
			if (g_strcmp0(filename, "ws file.bin") == 0) {
				completed_chunked++;
				g_assert_cmpstr(as_test_str(ev, "sha256"), ==, sha);
				g_assert_cmpint(as_test_int(ev, "size"), ==, (gint64)total);
			} else if (g_strcmp0(filename, "marker.txt") == 0) {
				completed_marker++;
				g_assert_cmpint(as_test_int(ev, "size"), ==, 3);
			} else {
				g_error("unexpected completed event for '%s'", filename);
			}
		} else if (g_strcmp0(name, "failed") == 0) {
			g_assert_cmpstr(filename, ==, "ws-bad.bin");
			g_assert_nonnull(as_test_str(ev, "reason"));
			failed++;
		}
	}
	g_assert_cmpuint(started, ==, 1);
	g_assert_cmpuint(progress, >=, 1);
	g_assert_cmpuint(completed_chunked, ==, 1);
	g_assert_cmpuint(completed_marker, ==, 1);
	g_assert_cmpuint(failed, ==, 1);
	g_assert_cmpint(as_test_daemon_stop(d), ==, 0);
}

/* -------- --one-shot -------- */

static void
as_test_http_one_shot(void)
{
	g_autoptr(AsTestDaemon) d = as_test_started("--one-shot", NULL);
	g_autoptr(GBytes) data = g_bytes_new_static("only one", 8);
	gint status = -1;

	/* a failed transfer does not end it */
	{
		g_autoptr(AsTestReply) bad = as_test_daemon_put_bytes(
			d, "first.txt", data,
			"0000000000000000000000000000000000000000000000000000000000000000");
		as_test_reply_assert_status(bad, SOUP_STATUS_BAD_REQUEST);
		g_usleep(200 * G_TIME_SPAN_MILLISECOND);
		g_assert_true(as_test_daemon_is_running(d));
	}
	{
		g_autoptr(AsTestReply) reply = as_test_daemon_put_bytes(d, "only.txt", data, NULL);
		g_autofree gchar *path = as_test_saved_path(d, "only.txt");
		as_test_reply_assert_status(reply, SOUP_STATUS_OK);
		as_test_assert_file_bytes(path, data);
	}
	g_assert_true(as_test_daemon_wait_exit(d, AS_TEST_ONE_SHOT_EXIT_MS, &status));
	g_assert_cmpint(status, ==, 0);
}

int
main(int argc, char **argv)
{
	as_test_init(&argc, &argv);
	g_test_add_func("/aerosync/http/health", as_test_http_health);
	g_test_add_func("/aerosync/http/auth", as_test_http_auth);
	g_test_add_func("/aerosync/http/origin", as_test_http_origin);
	g_test_add_func("/aerosync/http/upload-put", as_test_http_upload_put);
	g_test_add_func("/aerosync/http/hash-mismatch", as_test_http_hash_mismatch);
	g_test_add_func("/aerosync/http/batch-many", as_test_http_batch_many);
	g_test_add_func("/aerosync/http/batch-truncated", as_test_http_batch_truncated);
	g_test_add_func("/aerosync/http/collision", as_test_http_collision);
	g_test_add_func("/aerosync/http/hostile-names", as_test_http_hostile_names);
	g_test_add_func("/aerosync/http/symlink-escape", as_test_http_symlink_escape);
	g_test_add_func("/aerosync/http/special-names", as_test_http_special_names);
	g_test_add_func("/aerosync/http/multipart", as_test_http_multipart);
	g_test_add_func("/aerosync/http/batch", as_test_http_batch);
	g_test_add_func("/aerosync/http/curl", as_test_http_curl);
	g_test_add_func("/aerosync/http/max-size", as_test_http_max_size);
	g_test_add_func("/aerosync/http/refused-body-memory", as_test_http_refused_body_memory);
	g_test_add_func("/aerosync/http/truncated", as_test_http_truncated);
	g_test_add_func("/aerosync/http/chunked", as_test_http_chunked);
	g_test_add_func("/aerosync/http/chunk-concurrent-same", as_test_http_chunk_concurrent_same);
	g_test_add_func("/aerosync/http/chunk-client-gone", as_test_http_chunk_client_gone);
	g_test_add_func("/aerosync/http/status", as_test_http_status);
	g_test_add_func("/aerosync/http/metrics", as_test_http_metrics);
	g_test_add_func("/aerosync/http/history-audit", as_test_http_history_audit);
	g_test_add_func("/aerosync/http/websocket", as_test_http_websocket);
	g_test_add_func("/aerosync/http/one-shot", as_test_http_one_shot);
	return g_test_run();
}
