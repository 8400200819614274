/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "AsSendTest"

#include "config.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#include "as-error.h"
#include "as-keys.h"
#include "as-peer-client.h"
#include "as-send-job.h"
#include "as-test-daemon.h"
#include "as-test-send.h"

/*
 * The sending engine end to end: a sender aerosyncd owning org.aerosync on a private bus
 * (GTestDBus) is told to Send() to a receiver aerosyncd (--no-dbus) over loopback, often through
 * a byte-counting TCP proxy run by this process, so what really reached the receiver can be
 * measured, and so the receiver can restart on another port while the sender keeps one address.
 */

#define AS_TEST_MIB (1024 * 1024)
/* HTTP request heads and small replies, per request, in the byte counts */
#define AS_TEST_HEAD_SLACK (2 * 1024)
/* a small file count that still shows batching at work */
#define AS_TEST_SMALL_FILES	1000
#define AS_TEST_SMALL_FILE_SIZE (64 * 1024)
/* the tolerance of the rate limit, as the issue asks */
#define AS_TEST_RATE_TOLERANCE 0.15

/* -------- daemons and the bus -------- */

static AsTestDaemon *
as_test_receiver_new(void)
{
	AsTestDaemon *receiver = as_test_daemon_new();
	g_autoptr(GError) error = NULL;

	/* these cases are about the HTTP paths; as-send-quic-test covers QUIC */
	as_test_daemon_add_arg(receiver, "--http-only");
	as_test_daemon_start(receiver, &error);
	g_assert_no_error(error);
	return receiver;
}

static guint64
as_test_bytes_done(GDBusConnection *conn, const gchar *path)
{
	g_autoptr(GVariant) props = as_test_props(conn, path);
	g_assert_nonnull(props);
	return as_test_prop_u64(props, "BytesDone");
}

/* a metric of a daemon's /metrics */
static guint64
as_test_metric(AsTestDaemon *d, const gchar *name)
{
	g_autoptr(AsTestReply) reply = as_test_daemon_get(d, "/metrics");
	g_auto(GStrv) lines = NULL;

	as_test_reply_assert_status(reply, SOUP_STATUS_OK);
	lines = g_strsplit(as_test_reply_text(reply), "\n", -1);
	for (guint i = 0; lines[i] != NULL; i++) {
		if (g_str_has_prefix(lines[i], name) && lines[i][strlen(name)] == ' ')
			return g_ascii_strtoull(lines[i] + strlen(name) + 1, NULL, 10);
	}
	g_error("no metric %s", name);
	return 0;
}

typedef struct {
	AsTestDaemon *receiver;
	const gchar *task_id;
	guint64 chunks;
} AsTestChunkWait;

static gboolean
as_test_chunks_cb(gpointer user_data)
{
	AsTestChunkWait *wait = user_data;
	return as_test_received_chunks(wait->receiver, wait->task_id) >= wait->chunks;
}

typedef struct {
	GDBusConnection *conn;
	const gchar *path;
	guint64 bytes;
} AsTestBytesWait;

static gboolean
as_test_bytes_cb(gpointer user_data)
{
	AsTestBytesWait *wait = user_data;
	return as_test_bytes_done(wait->conn, wait->path) >= wait->bytes;
}

/* a /ws subscriber of a daemon, collecting every event */
typedef struct {
	SoupWebsocketConnection *conn; /* owned */
	GPtrArray *events;	       /* (element-type utf8) */
	gboolean done;
} AsTestWs;

static void
as_test_ws_message_cb(SoupWebsocketConnection *conn, gint type, GBytes *message, gpointer user_data)
{
	AsTestWs *ws = user_data;
	gsize len = 0;
	const gchar *data = g_bytes_get_data(message, &len);
	g_ptr_array_add(ws->events, g_strndup(data, len));
}

static void
as_test_ws_connected_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	AsTestWs *ws = user_data;
	g_autoptr(GError) error = NULL;

	ws->conn = soup_session_websocket_connect_finish(SOUP_SESSION(source), res, &error);
	g_assert_no_error(error);
	g_signal_connect(ws->conn, "message", G_CALLBACK(as_test_ws_message_cb), ws);
	ws->done = TRUE;
}

static gboolean
as_test_ws_done_cb(gpointer user_data)
{
	AsTestWs *ws = user_data;
	return ws->done;
}

static AsTestWs *
as_test_ws_new(AsTestDaemon *d)
{
	AsTestWs *ws = g_new0(AsTestWs, 1);
	g_autoptr(SoupMessage) msg =
		as_test_daemon_message(d, SOUP_METHOD_GET, "/ws", as_test_daemon_get_token(d));

	ws->events = g_ptr_array_new_with_free_func(g_free);
	soup_session_websocket_connect_async(as_test_daemon_get_session(d), msg, NULL, NULL,
					     G_PRIORITY_DEFAULT, NULL, as_test_ws_connected_cb, ws);
	g_assert_true(as_test_wait_for(as_test_ws_done_cb, ws, AS_TEST_CALL_TIMEOUT_MS));
	return ws;
}

static void
as_test_ws_free(AsTestWs *ws)
{
	if (ws->conn != NULL) {
		g_signal_handlers_disconnect_by_data(ws->conn, ws);
		if (soup_websocket_connection_get_state(ws->conn) == SOUP_WEBSOCKET_STATE_OPEN)
			soup_websocket_connection_close(ws->conn, SOUP_WEBSOCKET_CLOSE_NORMAL,
							NULL);
		g_object_unref(ws->conn);
	}
	g_ptr_array_unref(ws->events);
	g_free(ws);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(AsTestWs, as_test_ws_free)

typedef struct {
	AsTestWs *ws;
	const gchar *needles[4];
} AsTestWsWait;

static gboolean
as_test_ws_seen_cb(gpointer user_data)
{
	AsTestWsWait *wait = user_data;
	for (guint i = 0; i < wait->ws->events->len; i++) {
		const gchar *event = g_ptr_array_index(wait->ws->events, i);
		gboolean all = TRUE;
		for (guint j = 0; j < G_N_ELEMENTS(wait->needles) && wait->needles[j] != NULL; j++)
			all = all && strstr(event, wait->needles[j]) != NULL;
		if (all)
			return TRUE;
	}
	return FALSE;
}

/* -------- the cases -------- */

static void
as_test_send_parse_destination(void)
{
	struct {
		const gchar *destination;
		const gchar *protocol;
		const gchar *base_url;
		const gchar *host_port;
		gint code; /* -1: success */
	} cases[] = {
		{"10.0.0.5", NULL, "http://10.0.0.5:7788", "10.0.0.5:7788", -1},
		{"10.0.0.5:9000", "auto", "http://10.0.0.5:9000", "10.0.0.5:9000", -1},
		{"host.example", "http", "http://host.example:7788", "host.example:7788", -1},
		{"http://host.example:81", NULL, "http://host.example:81", "host.example:81", -1},
		{"http://host.example:81/", NULL, "http://host.example:81", "host.example:81", -1},
		{"[::1]:7000", NULL, "http://[::1]:7000", "[::1]:7000", -1},
		{"::1", NULL, "http://[::1]:7788", "[::1]:7788", -1},
		{"quic://10.0.0.5:7789", NULL, NULL, NULL, AS_ERROR_NOT_SUPPORTED},
		{"10.0.0.5", "quic", NULL, NULL, AS_ERROR_NOT_SUPPORTED},
		{"https://10.0.0.5", NULL, "https://10.0.0.5:7790", "10.0.0.5:7790", -1},
		{"https://10.0.0.5:8443", NULL, "https://10.0.0.5:8443", "10.0.0.5:8443", -1},
		{"10.0.0.5", "https", "https://10.0.0.5:7790", "10.0.0.5:7790", -1},
		{"http://10.0.0.5:81", "https", NULL, NULL, AS_ERROR_INVALID_ARGUMENT},
		{"https://10.0.0.5", "http", NULL, NULL, AS_ERROR_INVALID_ARGUMENT},
		{"@living-room", NULL, NULL, NULL, AS_ERROR_NOT_SUPPORTED},
		{"10.0.0.5", "carrier-pigeon", NULL, NULL, AS_ERROR_INVALID_ARGUMENT},
		{"ftp://10.0.0.5", NULL, NULL, NULL, AS_ERROR_INVALID_ARGUMENT},
		{"http://10.0.0.5/upload", NULL, NULL, NULL, AS_ERROR_INVALID_ARGUMENT},
		{"http://user@10.0.0.5", NULL, NULL, NULL, AS_ERROR_INVALID_ARGUMENT},
		{"10.0.0.5:99999", NULL, NULL, NULL, AS_ERROR_INVALID_ARGUMENT},
		{"", NULL, NULL, NULL, AS_ERROR_INVALID_ARGUMENT},
	};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(GError) error = NULL;
		g_autofree gchar *base_url = NULL;
		g_autofree gchar *host_port = NULL;
		gboolean ok = as_peer_client_parse_destination(
			cases[i].destination, cases[i].protocol, &base_url, &host_port, &error);
		g_test_message("%s -> %s", cases[i].destination, ok ? base_url : error->message);
		if (cases[i].code < 0) {
			g_assert_no_error(error);
			g_assert_cmpstr(base_url, ==, cases[i].base_url);
			g_assert_cmpstr(host_port, ==, cases[i].host_port);
		} else {
			g_assert_error(error, AS_ERROR, cases[i].code);
		}
	}
	{
		g_autoptr(GError) error = NULL;
		g_autofree gchar *base_url = NULL;
		g_autofree gchar *host_port = NULL;
		g_assert_false(as_peer_client_parse_destination("quic://h", NULL, &base_url,
								&host_port, &error));
		g_assert_cmpstr(error->message, ==, "QUIC is not supported yet");
	}
	/* names in URLs: '/' stays, a space is %20 and '+' is %2B, never a '+' for a space */
	{
		g_autofree gchar *escaped = as_peer_client_escape_path("photos/a b+c%#?.jpg");
		g_assert_cmpstr(escaped, ==, "photos/a%20b%2Bc%25%23%3F.jpg");
	}
}

static void
as_test_send_options(void)
{
	AsSendOptions opts = {0};
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) saved = NULL;
	GVariantBuilder b;

	/* defaults */
	g_assert_true(as_send_options_parse(&opts, NULL, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(opts.parallel, ==, AS_SEND_JOB_DEFAULT_PARALLEL);
	g_assert_cmpuint(opts.chunk_size, ==, AS_SEND_JOB_DEFAULT_CHUNK_SIZE);
	g_assert_true(opts.verify);
	g_assert_true(opts.preflight);
	as_send_options_clear(&opts);

	/* everything, and back through the resume record's form */
	g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
	g_variant_builder_add(&b, "{sv}", AS_SEND_KEY_TOKEN, g_variant_new_string("secret"));
	g_variant_builder_add(&b, "{sv}", AS_SEND_KEY_PARALLEL, g_variant_new_uint32(8));
	g_variant_builder_add(&b, "{sv}", AS_SEND_KEY_CHUNK_SIZE,
			      g_variant_new_uint64(AS_TEST_MIB));
	g_variant_builder_add(&b, "{sv}", AS_SEND_KEY_RATE_LIMIT, g_variant_new_uint64(1000));
	g_variant_builder_add(&b, "{sv}", AS_SEND_KEY_VERIFY, g_variant_new_boolean(FALSE));
	g_variant_builder_add(&b, "{sv}", AS_SEND_KEY_TAG, g_variant_new_string("holiday 2024"));
	g_variant_builder_add(&b, "{sv}", "SomethingNewer", g_variant_new_string("ignored"));
	g_assert_true(as_send_options_parse(&opts, g_variant_builder_end(&b), &error));
	g_assert_no_error(error);
	saved = g_variant_ref_sink(as_send_options_to_variant(&opts));
	as_send_options_clear(&opts);
	g_assert_true(as_send_options_parse(&opts, saved, &error));
	g_assert_cmpstr(opts.token, ==, "secret");
	g_assert_cmpuint(opts.parallel, ==, 8);
	g_assert_cmpuint(opts.chunk_size, ==, AS_TEST_MIB);
	g_assert_cmpuint(opts.rate_limit, ==, 1000);
	g_assert_false(opts.verify);
	g_assert_cmpstr(opts.tag, ==, "holiday 2024");
	as_send_options_clear(&opts);

	/* refusals */
	{
		struct {
			const gchar *key;
			GVariant *value;
		} bad[] = {
			{AS_SEND_KEY_PARALLEL, g_variant_new_int32(4)},
			{AS_SEND_KEY_PARALLEL, g_variant_new_uint32(0)},
			{AS_SEND_KEY_PARALLEL, g_variant_new_uint32(AS_SEND_JOB_MAX_PARALLEL + 1)},
			{AS_SEND_KEY_CHUNK_SIZE, g_variant_new_uint64(1024)},
			{AS_SEND_KEY_TAG, g_variant_new_string("two\r\nlines")},
			{AS_SEND_KEY_TOKEN, g_variant_new_string("has space")},
			{AS_SEND_KEY_TOKEN_FILE, g_variant_new_string("relative/token")},
		};
		for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
			g_autoptr(GError) error_bad = NULL;
			g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
			g_variant_builder_add(&b, "{sv}", bad[i].key, bad[i].value);
			g_assert_false(as_send_options_parse(&opts, g_variant_builder_end(&b),
							     &error_bad));
			g_assert_error(error_bad, AS_ERROR, AS_ERROR_INVALID_ARGUMENT);
			as_send_options_clear(&opts);
		}
	}
}

static void
as_test_send_bad_arguments(void)
{
	g_autoptr(GDBusConnection) conn = as_test_connection();
	g_autoptr(AsTestDaemon) sender = NULL;
	g_autofree gchar *dir = NULL;
	g_autofree gchar *file = NULL;
	struct {
		const gchar *path;
		const gchar *destination;
		const gchar *error_name;
		const gchar *message;
	} cases[] = {
		{"dir", "127.0.0.1:7788", "org.aerosync.Error.InvalidArgument", "(use -r)"},
		{"missing", "127.0.0.1:7788", "org.aerosync.Error.NotFound", "missing"},
		{"file", "quic://127.0.0.1:0", "org.aerosync.Error.InvalidArgument",
		 "no usable port"},
		{"file", "https://127.0.0.1:99999", "org.aerosync.Error.InvalidArgument",
		 "is not a destination"},
		{"file", "ftp://127.0.0.1", "org.aerosync.Error.InvalidArgument", "ftp://"},
		{"relative", "127.0.0.1", "org.aerosync.Error.InvalidArgument",
		 "not an absolute path"},
	};

	as_test_watchdog_arm();
	sender = as_test_sender_new(conn);
	dir = as_test_mkdir(sender, "src/dir");
	file = g_build_filename(as_test_daemon_get_root(sender), "src", "file", NULL);
	g_assert_true(g_file_set_contents(file, "x", 1, NULL));

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(GError) error = NULL;
		g_autofree gchar *remote = NULL;
		g_autofree gchar *path = g_strcmp0(cases[i].path, "relative") == 0
						 ? g_strdup("relative/file")
						 : g_build_filename(as_test_daemon_get_root(sender),
								    "src", cases[i].path, NULL);
		const gchar *paths[] = {path, NULL};
		g_autofree gchar *object =
			as_test_send(conn, paths, cases[i].destination, NULL, &error);

		g_assert_null(object);
		g_assert_nonnull(error);
		remote = g_dbus_error_get_remote_error(error);
		g_test_message("%s to %s: %s", cases[i].path, cases[i].destination, error->message);
		g_assert_cmpstr(remote, ==, cases[i].error_name);
		g_assert_nonnull(strstr(error->message, cases[i].message));
	}
	/* nothing was queued */
	{
		g_autofree gchar *sending = g_build_filename(as_test_daemon_get_root(sender),
							     "state", "aerosync", "sending", NULL);
		g_assert_true(as_test_dir_is_empty(sending));
	}
}

/* one file with a name that needs escaping, and its history on both sides */
static void
as_test_send_single_file(void)
{
	g_autoptr(GDBusConnection) conn = as_test_connection();
	g_autoptr(AsTestDaemon) sender = NULL;
	g_autoptr(AsTestDaemon) receiver = NULL;
	g_autoptr(GVariant) props = NULL;
	g_autoptr(GPtrArray) history = NULL;
	g_autofree gchar *src = NULL;
	g_autofree gchar *path = NULL;
	g_autofree gchar *sha256 = NULL;
	g_autofree gchar *dest = NULL;
	g_autofree gchar *object = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariantBuilder) options = NULL;
	g_autoptr(AsTestWs) ws = NULL;
	const gchar *name = "a b+c%.bin";
	const guint64 size = 3 * AS_TEST_MIB + 17;
	guint n_send = 0;

	as_test_watchdog_arm();
	sender = as_test_sender_new(conn);
	receiver = as_test_receiver_new();
	src = as_test_mkdir(sender, "src");
	path = g_build_filename(src, name, NULL);
	sha256 = as_test_write_random_file(path, size, 1);
	dest = g_strdup_printf("127.0.0.1:%u", as_test_daemon_get_port(receiver));
	options = as_test_options_with_token(sender, receiver);
	ws = as_test_ws_new(sender);
	{
		const gchar *paths[] = {path, NULL};
		object = as_test_send(conn, paths, dest, options, &error);
	}
	g_assert_no_error(error);
	g_assert_true(g_str_has_prefix(object, AS_DBUS_TRANSFERS_PATH "/"));

	props = as_test_wait_completed(conn, object);
	g_assert_cmpuint(as_test_prop_u32(props, "Files"), ==, 1);
	g_assert_cmpuint(as_test_prop_u32(props, "FilesDone"), ==, 1);
	g_assert_cmpuint(as_test_prop_u32(props, "FilesFailed"), ==, 0);
	g_assert_cmpuint(as_test_prop_u64(props, "BytesTotal"), ==, size);
	g_assert_cmpuint(as_test_prop_u64(props, "BytesDone"), ==, size);
	{
		g_autofree gchar *direction = as_test_prop_string(props, "Direction");
		g_autofree gchar *destination = as_test_prop_string(props, "Destination");
		g_autofree gchar *protocol = as_test_prop_string(props, "Protocol");
		g_assert_cmpstr(direction, ==, "send");
		g_assert_cmpstr(destination, ==, dest);
		g_assert_cmpstr(protocol, ==, "http");
	}
	as_test_assert_received(receiver, name, sha256);
	/* the sender's /ws subscribers heard of it */
	{
		AsTestWsWait wait = {
			ws, {"\"event\":\"completed\"", "\"direction\":\"send\"", sha256, NULL}};
		g_assert_true(as_test_wait_for(as_test_ws_seen_cb, &wait, AS_TEST_CALL_TIMEOUT_MS));
	}

	/* one "send" history line on the sender, with the hash the receiver confirmed */
	history = as_test_read_jsonl(as_test_daemon_get_history_path(sender));
	for (guint i = 0; i < history->len; i++) {
		JsonObject *h = g_ptr_array_index(history, i);
		if (g_strcmp0(json_object_get_string_member(h, "direction"), "send") != 0)
			continue;
		n_send++;
		g_assert_cmpstr(json_object_get_string_member(h, "filename"), ==, name);
		g_assert_cmpstr(json_object_get_string_member(h, "sha256"), ==, sha256);
		g_assert_true(json_object_get_boolean_member(h, "success"));
		g_assert_cmpint(json_object_get_int_member(h, "size"), ==, (gint64)size);
	}
	g_assert_cmpuint(n_send, ==, 1);
	g_assert_cmpuint(as_test_metric(sender, "aerosync_files_sent_total"), ==, 1);
	g_assert_cmpuint(as_test_metric(sender, "aerosync_bytes_sent_total"), ==, size);
	/* the resume record is gone */
	{
		g_autofree gchar *sending = g_build_filename(as_test_daemon_get_root(sender),
							     "state", "aerosync", "sending", NULL);
		g_assert_true(as_test_dir_is_empty(sending));
	}
}

/* send -r photos: photos/... on the receiver, as scp -r does; files of every path */
static void
as_test_send_tree(void)
{
	g_autoptr(GDBusConnection) conn = as_test_connection();
	g_autoptr(AsTestDaemon) sender = NULL;
	g_autoptr(AsTestDaemon) receiver = NULL;
	g_autoptr(GVariant) props = NULL;
	g_autoptr(GPtrArray) history = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariantBuilder) options = NULL;
	g_autofree gchar *photos = NULL;
	g_autofree gchar *sub = NULL;
	g_autofree gchar *dest = NULL;
	g_autofree gchar *object = NULL;
	struct {
		const gchar *rel;
		guint64 size;
		gchar *sha256;
	} files[] = {
		{"photos/a.jpg", 1000, NULL},				/* batch */
		{"photos/empty.txt", 0, NULL},				/* batch */
		{"photos/sub/b \"quoted\".jpg", 70 * 1024, NULL},	/* single PUT */
		{"photos/sub/deeper/c.raw", 2 * AS_TEST_MIB + 5, NULL}, /* chunked with 1 MiB */
		{"photos/sub/d+e.txt", 10, NULL},			/* batch */
	};
	guint n_send = 0;

	as_test_watchdog_arm();
	sender = as_test_sender_new(conn);
	receiver = as_test_receiver_new();
	photos = as_test_mkdir(sender, "src/photos");
	sub = as_test_mkdir(sender, "src/photos/sub/deeper");
	for (guint i = 0; i < G_N_ELEMENTS(files); i++) {
		g_autofree gchar *path = g_build_filename(as_test_daemon_get_root(sender), "src",
							  files[i].rel, NULL);
		files[i].sha256 = as_test_write_random_file(path, files[i].size, 10 + i);
	}
	dest = g_strdup_printf("127.0.0.1:%u", as_test_daemon_get_port(receiver));

	/* a directory needs Recursive */
	{
		const gchar *paths[] = {photos, NULL};
		g_autoptr(GError) error_dir = NULL;
		g_autofree gchar *none = as_test_send(conn, paths, dest, NULL, &error_dir);
		g_assert_null(none);
		g_assert_true(g_dbus_error_is_remote_error(error_dir));
		g_assert_nonnull(strstr(error_dir->message, "is a directory (use -r)"));
	}
	options = as_test_options_with_token(sender, receiver);
	g_variant_builder_add(options, "{sv}", AS_SEND_KEY_RECURSIVE, g_variant_new_boolean(TRUE));
	g_variant_builder_add(options, "{sv}", AS_SEND_KEY_CHUNK_SIZE,
			      g_variant_new_uint64(AS_TEST_MIB));
	{
		const gchar *paths[] = {photos, NULL};
		object = as_test_send(conn, paths, dest, options, &error);
	}
	g_assert_no_error(error);
	props = as_test_wait_completed(conn, object);
	g_assert_cmpuint(as_test_prop_u32(props, "Files"), ==, G_N_ELEMENTS(files));
	g_assert_cmpuint(as_test_prop_u32(props, "FilesDone"), ==, G_N_ELEMENTS(files));
	{
		g_autofree gchar *filename = as_test_prop_string(props, "Filename");
		g_assert_cmpstr(filename, ==, "photos");
	}
	for (guint i = 0; i < G_N_ELEMENTS(files); i++) {
		as_test_assert_received(receiver, files[i].rel, files[i].sha256);
		g_free(files[i].sha256);
	}

	/* one history line per file, each through the path its size calls for */
	history = as_test_read_jsonl(as_test_daemon_get_history_path(sender));
	for (guint i = 0; i < history->len; i++) {
		JsonObject *h = g_ptr_array_index(history, i);
		const gchar *filename = json_object_get_string_member(h, "filename");
		const gchar *protocol = json_object_get_string_member(h, "protocol");
		if (g_strcmp0(json_object_get_string_member(h, "direction"), "send") != 0)
			continue;
		n_send++;
		g_assert_true(json_object_get_boolean_member(h, "success"));
		if (g_str_has_suffix(filename, "c.raw"))
			g_assert_cmpstr(protocol, ==, "http-chunk");
		else if (g_str_has_suffix(filename, ".jpg") && strstr(filename, "quoted") != NULL)
			g_assert_cmpstr(protocol, ==, "http");
		else
			g_assert_cmpstr(protocol, ==, "http-batch");
	}
	g_assert_cmpuint(n_send, ==, G_N_ELEMENTS(files));
}

/* files the receiver refuses fail one by one; the others arrive, and each has its line */
static void
as_test_send_partial_failure(void)
{
	g_autoptr(GDBusConnection) conn = as_test_connection();
	g_autoptr(AsTestDaemon) sender = NULL;
	g_autoptr(AsTestDaemon) receiver = NULL;
	g_autoptr(GVariant) props = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariantBuilder) options = NULL;
	g_autoptr(GPtrArray) history = NULL;
	g_autofree gchar *mixed = NULL;
	g_autofree gchar *top = NULL;
	g_autofree gchar *reserved = NULL;
	g_autofree gchar *not_utf8 = NULL;
	g_autofree gchar *sha_a = NULL;
	g_autofree gchar *sha_b = NULL;
	g_autofree gchar *dest = NULL;
	g_autofree gchar *object = NULL;
	g_autofree gchar *state = NULL;
	g_autofree gchar *message = NULL;
	guint n_ok = 0;
	guint n_failed = 0;

	as_test_watchdog_arm();
	sender = as_test_sender_new(conn);
	receiver = as_test_receiver_new();
	mixed = as_test_mkdir(sender, "src/mixed");
	top = as_test_mkdir(sender, "src/top");
	{
		g_autofree gchar *a = g_build_filename(mixed, "a.txt", NULL);
		g_autofree gchar *b = g_build_filename(mixed, "b.txt", NULL);
		sha_a = as_test_write_random_file(a, 100, 80);
		sha_b = as_test_write_random_file(b, 200 * 1024, 81);
	}
	/* a name that is not UTF-8 (sent alone, in the URL) and one in the receiver's reserved
	 * folder (sent in a batch): both refused with a 400 */
	not_utf8 = g_build_filename(mixed, "bad-\xff.bin", NULL);
	g_free(as_test_write_random_file(not_utf8, 10, 82));
	reserved = g_build_filename(top, ".aerosync", NULL);
	g_free(as_test_write_random_file(reserved, 10, 83));

	dest = g_strdup_printf("127.0.0.1:%u", as_test_daemon_get_port(receiver));
	options = as_test_options_with_token(sender, receiver);
	g_variant_builder_add(options, "{sv}", AS_SEND_KEY_RECURSIVE, g_variant_new_boolean(TRUE));
	{
		const gchar *paths[] = {mixed, reserved, NULL};
		object = as_test_send(conn, paths, dest, options, &error);
	}
	g_assert_no_error(error);
	props = as_test_wait_state(conn, object, NULL, AS_TEST_FINISH_TIMEOUT_MS);
	state = as_test_prop_string(props, "State");
	message = as_test_prop_string(props, "Error");
	g_test_message("partial failure: %s", message);
	g_assert_cmpstr(state, ==, "failed");
	g_assert_cmpuint(as_test_prop_u32(props, "Files"), ==, 4);
	g_assert_cmpuint(as_test_prop_u32(props, "FilesDone"), ==, 2);
	g_assert_cmpuint(as_test_prop_u32(props, "FilesFailed"), ==, 2);
	g_assert_true(g_str_has_prefix(message, "2 of 4 files failed; the first: "));
	as_test_assert_received(receiver, "mixed/a.txt", sha_a);
	as_test_assert_received(receiver, "mixed/b.txt", sha_b);

	history = as_test_read_jsonl(as_test_daemon_get_history_path(sender));
	for (guint i = 0; i < history->len; i++) {
		JsonObject *h = g_ptr_array_index(history, i);
		const gchar *filename = json_object_get_string_member(h, "filename");
		if (g_strcmp0(json_object_get_string_member(h, "direction"), "send") != 0)
			continue;
		if (json_object_get_boolean_member(h, "success")) {
			n_ok++;
			continue;
		}
		n_failed++;
		g_assert_true(g_utf8_validate(filename, -1, NULL));
		if (g_str_has_prefix(filename, "mixed/bad-"))
			g_assert_nonnull(strstr(json_object_get_string_member(h, "error"),
						"not valid UTF-8"));
		else
			g_assert_nonnull(
				strstr(json_object_get_string_member(h, "error"), "reserved"));
	}
	g_assert_cmpuint(n_ok, ==, 2);
	g_assert_cmpuint(n_failed, ==, 2);
}

/* 1000 files of 64 KiB: batched, all there with the right content */
static void
as_test_send_many_small(void)
{
	g_autoptr(GDBusConnection) conn = as_test_connection();
	g_autoptr(AsTestDaemon) sender = NULL;
	g_autoptr(AsTestDaemon) receiver = NULL;
	g_autoptr(GVariant) props = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariantBuilder) options = NULL;
	g_autoptr(GPtrArray) shas = g_ptr_array_new_with_free_func(g_free);
	g_autofree gchar *dir = NULL;
	g_autofree gchar *dest = NULL;
	g_autofree gchar *object = NULL;
	gint64 start_us;
	gdouble seconds;

	as_test_watchdog_arm();
	sender = as_test_sender_new(conn);
	receiver = as_test_receiver_new();
	dir = as_test_mkdir(sender, "src/small");
	for (guint i = 0; i < AS_TEST_SMALL_FILES; i++) {
		g_autofree gchar *name = g_strdup_printf("f%04u.bin", i);
		g_autofree gchar *path = g_build_filename(dir, name, NULL);
		g_ptr_array_add(shas,
				as_test_write_random_file(path, AS_TEST_SMALL_FILE_SIZE, 1000 + i));
	}
	dest = g_strdup_printf("127.0.0.1:%u", as_test_daemon_get_port(receiver));
	options = as_test_options_with_token(sender, receiver);
	g_variant_builder_add(options, "{sv}", AS_SEND_KEY_RECURSIVE, g_variant_new_boolean(TRUE));
	start_us = g_get_monotonic_time();
	{
		const gchar *paths[] = {dir, NULL};
		object = as_test_send(conn, paths, dest, options, &error);
	}
	g_assert_no_error(error);
	props = as_test_wait_completed(conn, object);
	seconds = (gdouble)(g_get_monotonic_time() - start_us) / G_USEC_PER_SEC;
	g_test_message("%u x %u KiB in %.2f s: %.0f files/s", AS_TEST_SMALL_FILES,
		       AS_TEST_SMALL_FILE_SIZE / 1024, seconds, AS_TEST_SMALL_FILES / seconds);
	g_assert_cmpuint(as_test_prop_u32(props, "FilesDone"), ==, AS_TEST_SMALL_FILES);
	for (guint i = 0; i < AS_TEST_SMALL_FILES; i++) {
		g_autofree gchar *name = g_strdup_printf("small/f%04u.bin", i);
		as_test_assert_received(receiver, name, g_ptr_array_index(shas, i));
	}
	/* batched: far fewer requests than files reached the receiver */
	g_assert_cmpuint(as_test_metric(receiver, "aerosync_files_received_total"), ==,
			 AS_TEST_SMALL_FILES);
	g_assert_cmpuint(as_test_metric(sender, "aerosync_files_sent_total"), ==,
			 AS_TEST_SMALL_FILES);
}

/* a file larger than the chunk threshold, at the default chunk size */
static void
as_test_send_chunked(void)
{
	g_autoptr(GDBusConnection) conn = as_test_connection();
	g_autoptr(AsTestDaemon) sender = NULL;
	g_autoptr(AsTestDaemon) receiver = NULL;
	g_autoptr(GVariant) props = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariantBuilder) options = NULL;
	g_autoptr(GPtrArray) history = NULL;
	g_autofree gchar *src = NULL;
	g_autofree gchar *path = NULL;
	g_autofree gchar *sha256 = NULL;
	g_autofree gchar *dest = NULL;
	g_autofree gchar *object = NULL;
	const guint64 size = 2 * AS_SEND_JOB_DEFAULT_CHUNK_SIZE + 12345;
	gboolean seen = FALSE;

	as_test_watchdog_arm();
	sender = as_test_sender_new(conn);
	receiver = as_test_receiver_new();
	src = as_test_mkdir(sender, "src");
	path = g_build_filename(src, "big.bin", NULL);
	sha256 = as_test_write_random_file(path, size, 7);
	dest = g_strdup_printf("127.0.0.1:%u", as_test_daemon_get_port(receiver));
	options = as_test_options_with_token(sender, receiver);
	{
		const gchar *paths[] = {path, NULL};
		object = as_test_send(conn, paths, dest, options, &error);
	}
	g_assert_no_error(error);
	props = as_test_wait_completed(conn, object);
	g_assert_cmpuint(as_test_prop_u64(props, "BytesDone"), ==, size);
	{
		g_autofree gchar *got = as_test_prop_string(props, "Filename");
		g_assert_cmpstr(got, ==, "big.bin");
	}
	as_test_assert_received(receiver, "big.bin", sha256);
	/* the receiver saw a chunked upload and verified the whole-file hash we sent */
	history = as_test_read_jsonl(as_test_daemon_get_history_path(receiver));
	for (guint i = 0; i < history->len; i++) {
		JsonObject *h = g_ptr_array_index(history, i);
		if (g_strcmp0(json_object_get_string_member(h, "filename"), "big.bin") != 0)
			continue;
		g_assert_cmpstr(json_object_get_string_member(h, "protocol"), ==, "http-chunk");
		g_assert_cmpstr(json_object_get_string_member(h, "sha256"), ==, sha256);
		seen = TRUE;
	}
	g_assert_true(seen);

	/* Verify=false: no hashes sent, the receiver's own digest is what the history keeps */
	{
		g_autoptr(GVariant) props2 = NULL;
		g_autoptr(GVariantBuilder) options2 = as_test_options_with_token(sender, receiver);
		g_autofree gchar *object2 = NULL;
		g_autofree gchar *got = NULL;
		const gchar *paths[] = {path, NULL};

		g_variant_builder_add(options2, "{sv}", AS_SEND_KEY_VERIFY,
				      g_variant_new_boolean(FALSE));
		object2 = as_test_send(conn, paths, dest, options2, &error);
		g_assert_no_error(error);
		props2 = as_test_wait_completed(conn, object2);
		got = as_test_prop_string(props2, "Sha256");
		g_assert_cmpstr(got, ==, sha256);
		/* the name was taken: the receiver kept both */
		as_test_assert_received(receiver, "big_1.bin", sha256);
	}
}

/* the sending daemon is killed mid-file and restarted: it resumes, and chunks the receiver
 * already had are not sent again (counted by the proxy in front of the receiver) */
static void
as_test_send_resume_sender_killed(void)
{
	g_autoptr(GDBusConnection) conn = as_test_connection();
	g_autoptr(AsTestDaemon) sender = NULL;
	g_autoptr(AsTestDaemon) receiver = NULL;
	g_autoptr(AsTestProxy) proxy = NULL;
	g_autoptr(GVariant) props = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariantBuilder) options = NULL;
	g_autofree gchar *src = NULL;
	g_autofree gchar *path = NULL;
	g_autofree gchar *sha256 = NULL;
	g_autofree gchar *dest = NULL;
	g_autofree gchar *object = NULL;
	g_autofree gchar *id = NULL;
	g_autofree gchar *task_id = NULL;
	const guint64 chunk = AS_TEST_MIB;
	const guint64 size = 24 * AS_TEST_MIB + 99;
	const guint parallel = 4;
	AsTestChunkWait wait = {0};
	guint64 chunks_at_kill;
	guint64 bound;

	as_test_watchdog_arm();
	sender = as_test_sender_new(conn);
	receiver = as_test_receiver_new();
	proxy = as_test_proxy_new(as_test_daemon_get_port(receiver));
	src = as_test_mkdir(sender, "src");
	path = g_build_filename(src, "resume.bin", NULL);
	sha256 = as_test_write_random_file(path, size, 21);
	dest = g_strdup_printf("127.0.0.1:%u", proxy->port);
	options = as_test_options_with_token(sender, receiver);
	g_variant_builder_add(options, "{sv}", AS_SEND_KEY_CHUNK_SIZE, g_variant_new_uint64(chunk));
	g_variant_builder_add(options, "{sv}", AS_SEND_KEY_PARALLEL,
			      g_variant_new_uint32(parallel));
	g_variant_builder_add(options, "{sv}", AS_SEND_KEY_RATE_LIMIT,
			      g_variant_new_uint64(8 * AS_TEST_MIB));
	{
		const gchar *paths[] = {path, NULL};
		object = as_test_send(conn, paths, dest, options, &error);
	}
	g_assert_no_error(error);
	id = as_test_transfer_id(conn, object);
	task_id = g_strdup_printf("%s-0", id);

	/* a third of the chunks are with the receiver: kill -9 the sender */
	wait.receiver = receiver;
	wait.task_id = task_id;
	wait.chunks = 8;
	g_assert_true(as_test_wait_for(as_test_chunks_cb, &wait, AS_TEST_FINISH_TIMEOUT_MS));
	as_test_daemon_kill(sender);
	as_test_run_for(300);
	chunks_at_kill = as_test_received_chunks(receiver, task_id);
	g_test_message("killed the sender with %" G_GUINT64_FORMAT
		       " chunks received, %" G_GUINT64_FORMAT " bytes through the proxy",
		       chunks_at_kill, proxy->up_bytes);
	g_assert_cmpuint(chunks_at_kill, >=, 8);
	g_assert_cmpuint(chunks_at_kill, <, size / chunk);

	/* same state directory: it picks the send up by itself, under the same object path */
	as_test_sender_start(sender, conn);
	props = as_test_wait_completed(conn, object);
	as_test_assert_received(receiver, "resume.bin", sha256);
	g_assert_cmpuint(as_test_prop_u64(props, "BytesDone"), ==, size);

	/* everything went over the wire about once: at most the chunks in flight at the kill
	 * (and the one more buffer) twice, never the chunks the receiver had */
	bound = size + (parallel + 1) * chunk + (size / chunk + 16) * AS_TEST_HEAD_SLACK;
	g_test_message("%" G_GUINT64_FORMAT " bytes reached the receiver for a %" G_GUINT64_FORMAT
		       "-byte file (bound %" G_GUINT64_FORMAT ")",
		       proxy->up_bytes, size, bound);
	g_assert_cmpuint(proxy->up_bytes, >=, size);
	g_assert_cmpuint(proxy->up_bytes, <=, bound);
}

/* a daemon stopped with SIGTERM mid-send exits cleanly, keeps the record and goes on when it
 * starts again */
static void
as_test_send_resume_after_stop(void)
{
	g_autoptr(GDBusConnection) conn = as_test_connection();
	g_autoptr(AsTestDaemon) sender = NULL;
	g_autoptr(AsTestDaemon) receiver = NULL;
	g_autoptr(GVariant) props = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariantBuilder) options = NULL;
	g_autofree gchar *src = NULL;
	g_autofree gchar *path = NULL;
	g_autofree gchar *sha256 = NULL;
	g_autofree gchar *dest = NULL;
	g_autofree gchar *object = NULL;
	g_autofree gchar *id = NULL;
	g_autofree gchar *record = NULL;
	g_autofree gchar *task_id = NULL;
	AsTestChunkWait wait = {0};
	const guint64 size = 16 * AS_TEST_MIB + 1;

	as_test_watchdog_arm();
	sender = as_test_sender_new(conn);
	receiver = as_test_receiver_new();
	src = as_test_mkdir(sender, "src");
	path = g_build_filename(src, "stopped.bin", NULL);
	sha256 = as_test_write_random_file(path, size, 23);
	dest = g_strdup_printf("127.0.0.1:%u", as_test_daemon_get_port(receiver));
	options = as_test_options_with_token(sender, receiver);
	g_variant_builder_add(options, "{sv}", AS_SEND_KEY_CHUNK_SIZE,
			      g_variant_new_uint64(AS_TEST_MIB));
	g_variant_builder_add(options, "{sv}", AS_SEND_KEY_RATE_LIMIT,
			      g_variant_new_uint64(4 * AS_TEST_MIB));
	{
		const gchar *paths[] = {path, NULL};
		object = as_test_send(conn, paths, dest, options, &error);
	}
	g_assert_no_error(error);
	id = as_test_transfer_id(conn, object);
	record = g_strdup_printf("%s/state/aerosync/sending/%s.state",
				 as_test_daemon_get_root(sender), id);
	task_id = g_strdup_printf("%s-0", id);
	wait.receiver = receiver;
	wait.task_id = task_id;
	wait.chunks = 3;
	g_assert_true(as_test_wait_for(as_test_chunks_cb, &wait, AS_TEST_FINISH_TIMEOUT_MS));

	g_assert_cmpint(as_test_daemon_stop(sender), ==, 0);
	g_assert_true(g_file_test(record, G_FILE_TEST_EXISTS));
	as_test_sender_start(sender, conn);
	props = as_test_wait_completed(conn, object);
	g_assert_cmpuint(as_test_prop_u64(props, "BytesDone"), ==, size);
	as_test_assert_received(receiver, "stopped.bin", sha256);
	g_assert_false(g_file_test(record, G_FILE_TEST_EXISTS));
	/* one file, one digest on the transfer */
	{
		g_autofree gchar *got = as_test_prop_string(props, "Sha256");
		g_assert_cmpstr(got, ==, sha256);
	}
}

/* the receiving daemon is killed mid-file and comes back (on another port, behind the same
 * proxy address): the sender retries with backoff and finishes from /upload/status */
static void
as_test_send_resume_receiver_killed(void)
{
	g_autoptr(GDBusConnection) conn = as_test_connection();
	g_autoptr(AsTestDaemon) sender = NULL;
	g_autoptr(AsTestDaemon) receiver = NULL;
	g_autoptr(AsTestProxy) proxy = NULL;
	g_autoptr(GVariant) props = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariantBuilder) options = NULL;
	g_autofree gchar *src = NULL;
	g_autofree gchar *path = NULL;
	g_autofree gchar *sha256 = NULL;
	g_autofree gchar *dest = NULL;
	g_autofree gchar *object = NULL;
	g_autofree gchar *id = NULL;
	g_autofree gchar *task_id = NULL;
	const guint64 chunk = AS_TEST_MIB;
	const guint64 size = 24 * AS_TEST_MIB + 7;
	const guint parallel = 4;
	AsTestChunkWait wait = {0};
	guint64 bound;

	as_test_watchdog_arm();
	sender = as_test_sender_new(conn);
	receiver = as_test_receiver_new();
	proxy = as_test_proxy_new(as_test_daemon_get_port(receiver));
	src = as_test_mkdir(sender, "src");
	path = g_build_filename(src, "cut.bin", NULL);
	sha256 = as_test_write_random_file(path, size, 22);
	dest = g_strdup_printf("127.0.0.1:%u", proxy->port);
	options = as_test_options_with_token(sender, receiver);
	g_variant_builder_add(options, "{sv}", AS_SEND_KEY_CHUNK_SIZE, g_variant_new_uint64(chunk));
	g_variant_builder_add(options, "{sv}", AS_SEND_KEY_PARALLEL,
			      g_variant_new_uint32(parallel));
	g_variant_builder_add(options, "{sv}", AS_SEND_KEY_RATE_LIMIT,
			      g_variant_new_uint64(8 * AS_TEST_MIB));
	{
		const gchar *paths[] = {path, NULL};
		object = as_test_send(conn, paths, dest, options, &error);
	}
	g_assert_no_error(error);
	id = as_test_transfer_id(conn, object);
	task_id = g_strdup_printf("%s-0", id);

	wait.receiver = receiver;
	wait.task_id = task_id;
	wait.chunks = 6;
	g_assert_true(as_test_wait_for(as_test_chunks_cb, &wait, AS_TEST_FINISH_TIMEOUT_MS));
	as_test_daemon_kill(receiver);
	/* down for a while: the sender keeps trying, and the transfer does not fail */
	as_test_run_for(1500);
	{
		g_autofree gchar *state = as_test_state(conn, object);
		g_assert_cmpstr(state, ==, "running");
	}
	as_test_daemon_start(receiver, &error);
	g_assert_no_error(error);
	proxy->target_port = as_test_daemon_get_port(receiver);

	props = as_test_wait_completed(conn, object);
	as_test_assert_received(receiver, "cut.bin", sha256);
	bound = size + (parallel + 1) * chunk + (size / chunk + 64) * AS_TEST_HEAD_SLACK;
	g_test_message("%" G_GUINT64_FORMAT " bytes reached the receiver for a %" G_GUINT64_FORMAT
		       "-byte file (bound %" G_GUINT64_FORMAT ")",
		       proxy->up_bytes, size, bound);
	g_assert_cmpuint(proxy->up_bytes, <=, bound);
}

/* Pause stops the bytes within a second, Resume goes on, Cancel ends it and its record */
static void
as_test_send_pause_resume_cancel(void)
{
	g_autoptr(GDBusConnection) conn = as_test_connection();
	g_autoptr(AsTestDaemon) sender = NULL;
	g_autoptr(AsTestDaemon) receiver = NULL;
	g_autoptr(AsTestProxy) proxy = NULL;
	g_autoptr(GVariant) props = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariantBuilder) options = NULL;
	g_autofree gchar *src = NULL;
	g_autofree gchar *path = NULL;
	g_autofree gchar *dest = NULL;
	g_autofree gchar *object = NULL;
	g_autofree gchar *id = NULL;
	g_autofree gchar *sending = NULL;
	g_autofree gchar *record = NULL;
	AsTestBytesWait bytes_wait = {0};
	guint64 paused_at;
	guint64 resumed_from;

	as_test_watchdog_arm();
	sender = as_test_sender_new(conn);
	receiver = as_test_receiver_new();
	proxy = as_test_proxy_new(as_test_daemon_get_port(receiver));
	src = as_test_mkdir(sender, "src");
	path = g_build_filename(src, "slow.bin", NULL);
	g_free(as_test_write_random_file(path, 32 * AS_TEST_MIB, 31));
	dest = g_strdup_printf("127.0.0.1:%u", proxy->port);
	options = as_test_options_with_token(sender, receiver);
	g_variant_builder_add(options, "{sv}", AS_SEND_KEY_CHUNK_SIZE,
			      g_variant_new_uint64(AS_TEST_MIB));
	g_variant_builder_add(options, "{sv}", AS_SEND_KEY_RATE_LIMIT,
			      g_variant_new_uint64(4 * AS_TEST_MIB));
	{
		const gchar *paths[] = {path, NULL};
		object = as_test_send(conn, paths, dest, options, &error);
	}
	g_assert_no_error(error);
	id = as_test_transfer_id(conn, object);
	sending = g_build_filename(as_test_daemon_get_root(sender), "state", "aerosync", "sending",
				   NULL);
	record = g_strdup_printf("%s/%s.state", sending, id);
	g_assert_true(g_file_test(record, G_FILE_TEST_EXISTS));

	bytes_wait.conn = conn;
	bytes_wait.path = object;
	bytes_wait.bytes = 2 * AS_TEST_MIB;
	g_assert_true(as_test_wait_for(as_test_bytes_cb, &bytes_wait, AS_TEST_FINISH_TIMEOUT_MS));

	as_test_call_transfer(conn, object, "Pause", NULL, &error);
	g_assert_no_error(error);
	props = as_test_wait_state(conn, object, "paused", 1000);
	g_clear_pointer(&props, g_variant_unref);
	/* within a second nothing moves any more */
	as_test_run_for(1000);
	paused_at = proxy->up_bytes;
	as_test_run_for(1500);
	g_test_message("paused: %" G_GUINT64_FORMAT " then %" G_GUINT64_FORMAT " bytes", paused_at,
		       proxy->up_bytes);
	g_assert_cmpuint(proxy->up_bytes, ==, paused_at);
	{
		g_autofree gchar *state = as_test_state(conn, object);
		g_assert_cmpstr(state, ==, "paused");
	}

	as_test_call_transfer(conn, object, "Resume", NULL, &error);
	g_assert_no_error(error);
	props = as_test_wait_state(conn, object, "running", 1000);
	g_clear_pointer(&props, g_variant_unref);
	resumed_from = proxy->up_bytes;
	as_test_run_for(1000);
	g_assert_cmpuint(proxy->up_bytes, >, resumed_from + 1 * AS_TEST_MIB);

	as_test_call_transfer(conn, object, "Cancel", NULL, &error);
	g_assert_no_error(error);
	props = as_test_wait_state(conn, object, "cancelled", 1000);
	g_assert_false(g_file_test(record, G_FILE_TEST_EXISTS));
	g_assert_true(as_test_dir_is_empty(sending));
	/* a finished transfer takes no more orders */
	as_test_call_transfer(conn, object, "Resume", NULL, &error);
	g_assert_nonnull(error);
	g_clear_error(&error);
}

/* 1 MiB/s holds within 15% over 4 s even with 8 MiB chunks; SetRateLimit applies at once */
static void
as_test_send_rate_limit(void)
{
	g_autoptr(GDBusConnection) conn = as_test_connection();
	g_autoptr(AsTestDaemon) sender = NULL;
	g_autoptr(AsTestDaemon) receiver = NULL;
	g_autoptr(GVariant) props = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariantBuilder) options = NULL;
	g_autofree gchar *src = NULL;
	g_autofree gchar *path = NULL;
	g_autofree gchar *dest = NULL;
	g_autofree gchar *object = NULL;
	const guint64 limit = AS_TEST_MIB;
	AsTestBytesWait bytes_wait = {0};
	gint64 t0, t1;
	guint64 b0, b1;
	gdouble rate;

	as_test_watchdog_arm();
	sender = as_test_sender_new(conn);
	receiver = as_test_receiver_new();
	src = as_test_mkdir(sender, "src");
	path = g_build_filename(src, "limited.bin", NULL);
	g_free(as_test_write_random_file(path, 24 * AS_TEST_MIB, 41));
	dest = g_strdup_printf("127.0.0.1:%u", as_test_daemon_get_port(receiver));
	options = as_test_options_with_token(sender, receiver);
	g_variant_builder_add(options, "{sv}", AS_SEND_KEY_RATE_LIMIT, g_variant_new_uint64(limit));
	{
		const gchar *paths[] = {path, NULL};
		object = as_test_send(conn, paths, dest, options, &error);
	}
	g_assert_no_error(error);
	props = as_test_props(conn, object);
	g_assert_cmpuint(as_test_prop_u64(props, "RateLimit"), ==, limit);

	/* past the initial burst, measure 4 s */
	bytes_wait.conn = conn;
	bytes_wait.path = object;
	bytes_wait.bytes = limit / 2;
	g_assert_true(as_test_wait_for(as_test_bytes_cb, &bytes_wait, 10000));
	t0 = g_get_monotonic_time();
	b0 = as_test_bytes_done(conn, object);
	as_test_run_for(4000);
	t1 = g_get_monotonic_time();
	b1 = as_test_bytes_done(conn, object);
	rate = (gdouble)(b1 - b0) * G_USEC_PER_SEC / (gdouble)(t1 - t0);
	g_test_message("limited to %" G_GUINT64_FORMAT " B/s: measured %.0f B/s", limit, rate);
	g_assert_cmpfloat(rate, >=, limit * (1.0 - AS_TEST_RATE_TOLERANCE));
	g_assert_cmpfloat(rate, <=, limit * (1.0 + AS_TEST_RATE_TOLERANCE));

	/* four times faster from now on: measured from a second later, over 2 s */
	as_test_call_transfer(conn, object, "SetRateLimit", g_variant_new("(t)", 4 * limit),
			      &error);
	g_assert_no_error(error);
	as_test_run_for(1000);
	t0 = g_get_monotonic_time();
	b0 = as_test_bytes_done(conn, object);
	as_test_run_for(2000);
	t1 = g_get_monotonic_time();
	b1 = as_test_bytes_done(conn, object);
	rate = (gdouble)(b1 - b0) * G_USEC_PER_SEC / (gdouble)(t1 - t0);
	g_test_message("raised to %" G_GUINT64_FORMAT " B/s: measured %.0f B/s", 4 * limit, rate);
	g_assert_cmpfloat(rate, >=, 4 * limit * (1.0 - AS_TEST_RATE_TOLERANCE));
	g_assert_cmpfloat(rate, <=, 4 * limit * (1.0 + AS_TEST_RATE_TOLERANCE));
	g_clear_pointer(&props, g_variant_unref);
	props = as_test_props(conn, object);
	g_assert_cmpuint(as_test_prop_u64(props, "RateLimit"), ==, 4 * limit);

	as_test_call_transfer(conn, object, "Cancel", NULL, &error);
	g_assert_no_error(error);
}

/* a wrong token fails the transfer with the receiver's 401 text, without a retry loop */
static void
as_test_send_wrong_token(void)
{
	g_autoptr(GDBusConnection) conn = as_test_connection();
	g_autoptr(AsTestDaemon) sender = NULL;
	g_autoptr(AsTestDaemon) receiver = NULL;
	g_autoptr(GVariant) props = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) history = NULL;
	g_autofree gchar *src = NULL;
	g_autofree gchar *dest = NULL;
	g_autofree gchar *object = NULL;
	g_autofree gchar *state = NULL;
	g_autofree gchar *message = NULL;
	GVariantBuilder options;
	gboolean seen = FALSE;

	as_test_watchdog_arm();
	sender = as_test_sender_new(conn);
	receiver = as_test_receiver_new();
	src = as_test_mkdir(sender, "src/few");
	for (guint i = 0; i < 10; i++) {
		g_autofree gchar *name = g_strdup_printf("%s/f%u", src, i);
		g_free(as_test_write_random_file(name, 100 * 1024, 50 + i));
	}
	dest = g_strdup_printf("127.0.0.1:%u", as_test_daemon_get_port(receiver));
	g_variant_builder_init(&options, G_VARIANT_TYPE_VARDICT);
	g_variant_builder_add(&options, "{sv}", AS_SEND_KEY_TOKEN,
			      g_variant_new_string("not-the-token"));
	g_variant_builder_add(&options, "{sv}", AS_SEND_KEY_RECURSIVE, g_variant_new_boolean(TRUE));
	{
		const gchar *paths[] = {src, NULL};
		object = as_test_send(conn, paths, dest, &options, &error);
	}
	g_assert_no_error(error);
	props = as_test_wait_state(conn, object, NULL, 10000);
	state = as_test_prop_string(props, "State");
	message = as_test_prop_string(props, "Error");
	g_test_message("wrong token: %s", message);
	g_assert_cmpstr(state, ==, "failed");
	g_assert_nonnull(strstr(message, "refused the token"));
	g_assert_nonnull(strstr(message, "HTTP 401"));
	g_assert_nonnull(strstr(message, "Invalid or missing authentication token"));
	/* a refusal is not retried: at most the requests already started were refused */
	g_assert_cmpuint(as_test_metric(receiver, "aerosync_auth_failures_total"), <=,
			 AS_SEND_JOB_DEFAULT_PARALLEL + 1);
	g_assert_cmpuint(as_test_metric(receiver, "aerosync_files_received_total"), ==, 0);
	/* the failure is in the sender's history */
	history = as_test_read_jsonl(as_test_daemon_get_history_path(sender));
	for (guint i = 0; i < history->len; i++) {
		JsonObject *h = g_ptr_array_index(history, i);
		if (g_strcmp0(json_object_get_string_member(h, "direction"), "send") != 0)
			continue;
		g_assert_false(json_object_get_boolean_member(h, "success"));
		g_assert_nonnull(strstr(json_object_get_string_member(h, "error"), "401"));
		seen = TRUE;
	}
	g_assert_true(seen);
}

/* nothing listens: a clear error at once, no waiting */
static void
as_test_send_receiver_down(void)
{
	g_autoptr(GDBusConnection) conn = as_test_connection();
	g_autoptr(AsTestDaemon) sender = NULL;
	g_autoptr(GVariant) props = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GSocket) socket = NULL;
	g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
	g_autoptr(GSocketAddress) addr = g_inet_socket_address_new(loopback, 0);
	g_autoptr(GSocketAddress) bound = NULL;
	g_autofree gchar *src = NULL;
	g_autofree gchar *path = NULL;
	g_autofree gchar *dest = NULL;
	g_autofree gchar *object = NULL;
	g_autofree gchar *state = NULL;
	g_autofree gchar *message = NULL;
	g_autofree gchar *expected = NULL;
	guint16 port;
	gint64 start_us;

	as_test_watchdog_arm();
	sender = as_test_sender_new(conn);
	src = as_test_mkdir(sender, "src");
	path = g_build_filename(src, "f.bin", NULL);
	g_free(as_test_write_random_file(path, 1000, 60));
	/* a port that surely refuses: bound, never listened on */
	socket = g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP,
			      &error);
	g_assert_no_error(error);
	g_assert_true(g_socket_bind(socket, addr, FALSE, &error));
	bound = g_socket_get_local_address(socket, &error);
	port = g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(bound));
	dest = g_strdup_printf("127.0.0.1:%u", port);
	start_us = g_get_monotonic_time();
	{
		const gchar *paths[] = {path, NULL};
		object = as_test_send(conn, paths, dest, NULL, &error);
	}
	g_assert_no_error(error);
	props = as_test_wait_state(conn, object, NULL, 5000);
	state = as_test_prop_string(props, "State");
	message = as_test_prop_string(props, "Error");
	g_test_message("receiver down: %s", message);
	g_assert_cmpstr(state, ==, "failed");
	expected = g_strdup_printf("cannot connect to 127.0.0.1:%u: ", port);
	g_assert_true(g_str_has_prefix(message, expected));
	g_assert_cmpint(g_get_monotonic_time() - start_us, <, 3 * G_USEC_PER_SEC);
}

static void
as_test_not_aerosync_cb(SoupServer *server,
			SoupServerMessage *msg,
			const char *path,
			GHashTable *query,
			gpointer user_data)
{
	soup_server_message_set_status(msg, SOUP_STATUS_OK, NULL);
	soup_server_message_set_response(msg, "text/plain", SOUP_MEMORY_STATIC, "ok", 2);
}

/* a web server that is not a receiver is not taken for one */
static void
as_test_send_not_aerosync(void)
{
	g_autoptr(GDBusConnection) conn = as_test_connection();
	g_autoptr(AsTestDaemon) sender = NULL;
	g_autoptr(SoupServer) server = soup_server_new(NULL, NULL);
	g_autoptr(GVariant) props = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *src = NULL;
	g_autofree gchar *path = NULL;
	g_autofree gchar *dest = NULL;
	g_autofree gchar *object = NULL;
	g_autofree gchar *message = NULL;
	g_autofree gchar *expected = NULL;
	GSList *uris;
	guint16 port;

	as_test_watchdog_arm();
	sender = as_test_sender_new(conn);
	src = as_test_mkdir(sender, "src");
	path = g_build_filename(src, "f.bin", NULL);
	g_free(as_test_write_random_file(path, 1000, 61));
	soup_server_add_handler(server, NULL, as_test_not_aerosync_cb, NULL, NULL);
	g_assert_true(soup_server_listen_local(server, 0, SOUP_SERVER_LISTEN_IPV4_ONLY, &error));
	uris = soup_server_get_uris(server);
	port = (guint16)g_uri_get_port(uris->data);
	g_slist_free_full(uris, (GDestroyNotify)g_uri_unref);
	dest = g_strdup_printf("http://127.0.0.1:%u", port);
	{
		const gchar *paths[] = {path, NULL};
		object = as_test_send(conn, paths, dest, NULL, &error);
	}
	g_assert_no_error(error);
	props = as_test_wait_state(conn, object, NULL, 5000);
	message = as_test_prop_string(props, "Error");
	expected = g_strdup_printf("127.0.0.1:%u is not an AeroSync receiver", port);
	g_assert_cmpstr(message, ==, expected);
}

/* a full receiving disk: 507 without preflight, the preflight message with it */
static void
as_test_send_disk_full(void)
{
	g_autoptr(GDBusConnection) conn = NULL;
	g_autoptr(AsTestDaemon) sender = NULL;
	g_autoptr(AsTestDaemon) receiver = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *mnt = NULL;
	g_autofree gchar *src = NULL;
	g_autofree gchar *path = NULL;
	g_autofree gchar *dest = NULL;
	g_autofree gchar *token_file = NULL;

	if (getuid() != 0) {
		g_test_skip("mounting a small tmpfs needs root");
		return;
	}
	as_test_watchdog_arm();
	conn = as_test_connection();
	receiver = as_test_daemon_new();
	as_test_daemon_add_arg(receiver, "--http-only");
	mnt = g_build_filename(as_test_daemon_get_root(receiver), "small", NULL);
	g_assert_cmpint(g_mkdir_with_parents(mnt, 0700), ==, 0);
	if (mount("tmpfs", mnt, "tmpfs", 0, "size=8m") != 0) {
		g_test_skip_printf("cannot mount a tmpfs: %s", g_strerror(errno));
		return;
	}
	as_test_daemon_set_save_to(receiver, mnt);
	as_test_daemon_start(receiver, &error);
	g_assert_no_error(error);
	sender = as_test_sender_new(conn);
	src = as_test_mkdir(sender, "src");
	path = g_build_filename(src, "too-big.bin", NULL);
	g_free(as_test_write_random_file(path, 16 * AS_TEST_MIB, 70));
	dest = g_strdup_printf("127.0.0.1:%u", as_test_daemon_get_port(receiver));
	token_file = as_test_token_file(sender, receiver);

	for (guint preflight = 0; preflight <= 1; preflight++) {
		g_autoptr(GVariant) props = NULL;
		g_autofree gchar *object = NULL;
		g_autofree gchar *state = NULL;
		g_autofree gchar *message = NULL;
		const gchar *paths[] = {path, NULL};
		GVariantBuilder options;

		g_variant_builder_init(&options, G_VARIANT_TYPE_VARDICT);
		g_variant_builder_add(&options, "{sv}", AS_SEND_KEY_TOKEN_FILE,
				      g_variant_new_string(token_file));
		g_variant_builder_add(&options, "{sv}", AS_SEND_KEY_PREFLIGHT,
				      g_variant_new_boolean(preflight));
		object = as_test_send(conn, paths, dest, &options, &error);
		g_assert_no_error(error);
		props = as_test_wait_state(conn, object, NULL, 20000);
		state = as_test_prop_string(props, "State");
		message = as_test_prop_string(props, "Error");
		g_test_message("preflight %s: %s", preflight ? "on" : "off", message);
		g_assert_cmpstr(state, ==, "failed");
		if (preflight) {
			g_autofree gchar *expected = g_strdup_printf(
				"receiver 127.0.0.1:%u has ", as_test_daemon_get_port(receiver));
			g_assert_true(g_str_has_prefix(message, expected));
			g_assert_nonnull(strstr(
				message, "16.8 MB needed (use --no-preflight to try anyway)"));
		} else {
			g_assert_nonnull(strstr(message, "HTTP 507"));
			g_assert_nonnull(strstr(message, "no space left"));
		}
	}
	/* unmounted before the receiver's folder is removed with it */
	as_test_daemon_stop(receiver);
	g_assert_cmpint(umount2(mnt, MNT_DETACH), ==, 0);
}

int
main(int argc, char **argv)
{
	gint ret;

	as_test_init(&argc, &argv);
	as_test_send_bus_up();
	g_test_add_func("/aerosync/send/parse-destination", as_test_send_parse_destination);
	g_test_add_func("/aerosync/send/options", as_test_send_options);
	g_test_add_func("/aerosync/send/bad-arguments", as_test_send_bad_arguments);
	g_test_add_func("/aerosync/send/single-file", as_test_send_single_file);
	g_test_add_func("/aerosync/send/tree", as_test_send_tree);
	g_test_add_func("/aerosync/send/partial-failure", as_test_send_partial_failure);
	g_test_add_func("/aerosync/send/many-small", as_test_send_many_small);
	g_test_add_func("/aerosync/send/chunked", as_test_send_chunked);
	g_test_add_func("/aerosync/send/resume-sender-killed", as_test_send_resume_sender_killed);
	g_test_add_func("/aerosync/send/resume-after-stop", as_test_send_resume_after_stop);
	g_test_add_func("/aerosync/send/resume-receiver-killed",
			as_test_send_resume_receiver_killed);
	g_test_add_func("/aerosync/send/pause-resume-cancel", as_test_send_pause_resume_cancel);
	g_test_add_func("/aerosync/send/rate-limit", as_test_send_rate_limit);
	g_test_add_func("/aerosync/send/wrong-token", as_test_send_wrong_token);
	g_test_add_func("/aerosync/send/receiver-down", as_test_send_receiver_down);
	g_test_add_func("/aerosync/send/not-aerosync", as_test_send_not_aerosync);
	g_test_add_func("/aerosync/send/disk-full", as_test_send_disk_full);
	ret = g_test_run();
	as_test_send_bus_down();
	return ret;
}
