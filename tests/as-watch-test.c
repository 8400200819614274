/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "AsWatchTest"

#include "config.h"

#include <gio/gio.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>

#include "as-test-daemon.h"

/* the exit codes documented by aerosyncctl --help */
#define AS_WATCH_TEST_EXIT_OK		    0
#define AS_WATCH_TEST_EXIT_FAILURE	    1
#define AS_WATCH_TEST_EXIT_USAGE	    2
#define AS_WATCH_TEST_EXIT_PERMISSION	    5
#define AS_WATCH_TEST_EXIT_PEER_UNREACHABLE 101

/* how long aerosyncctl may take to show what a test waits for */
#define AS_WATCH_TEST_OUTPUT_TIMEOUT_MS 15000
#define AS_WATCH_TEST_EXIT_TIMEOUT_MS	15000
#define AS_WATCH_TEST_READ_SIZE		4096
/* --max-retries 2 --retry-delay 0.5 gives up after about 0.5 * (1 + 2) s */
#define AS_WATCH_TEST_RETRY_DELAY_S  0.5
#define AS_WATCH_TEST_MAX_RETRIES    2
#define AS_WATCH_TEST_GIVE_UP_MIN_US (1300 * G_TIME_SPAN_MILLISECOND)
#define AS_WATCH_TEST_GIVE_UP_MAX_US (8 * G_TIME_SPAN_SECOND)
#define AS_WATCH_TEST_CONNECTED	     "aerosyncctl: watching "

/* --- aerosyncctl as a child whose output is collected while the main loop runs --- */

typedef struct {
	GSubprocess *proc;	   /* (owned) */
	GCancellable *cancellable; /* (owned) */
	GString *out;		   /* (owned): all of stdout so far */
	GString *err;		   /* (owned): all of stderr so far */
	guint8 out_buf[AS_WATCH_TEST_READ_SIZE];
	guint8 err_buf[AS_WATCH_TEST_READ_SIZE];
	gboolean out_eof;
	gboolean err_eof;
	gboolean exited;
	gint exit_code; /* 128 + signal when killed */
	gchar *command; /* (owned): for messages */
} AsWatchProc;

static void as_watch_proc_read(AsWatchProc *proc, gboolean is_err);

static void
as_watch_proc_read_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	AsWatchProc *proc = user_data;
	gboolean is_err = G_INPUT_STREAM(source) == g_subprocess_get_stderr_pipe(proc->proc);
	gssize n = g_input_stream_read_finish(G_INPUT_STREAM(source), res, NULL);

	if (n <= 0) {
		if (is_err)
			proc->err_eof = TRUE;
		else
			proc->out_eof = TRUE;
		return;
	}
	if (is_err)
		g_string_append_len(proc->err, (const gchar *)proc->err_buf, n);
	else
		g_string_append_len(proc->out, (const gchar *)proc->out_buf, n);
	as_watch_proc_read(proc, is_err);
}

static void
as_watch_proc_read(AsWatchProc *proc, gboolean is_err)
{
	GInputStream *stream = is_err ? g_subprocess_get_stderr_pipe(proc->proc)
				      : g_subprocess_get_stdout_pipe(proc->proc);
	g_input_stream_read_async(stream, is_err ? proc->err_buf : proc->out_buf,
				  AS_WATCH_TEST_READ_SIZE, G_PRIORITY_DEFAULT, proc->cancellable,
				  as_watch_proc_read_cb, proc);
}

static void
as_watch_proc_wait_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	AsWatchProc *proc = user_data;
	GSubprocess *subprocess = G_SUBPROCESS(source);

	if (!g_subprocess_wait_finish(subprocess, res, NULL))
		return;
	if (g_subprocess_get_if_exited(subprocess))
		proc->exit_code = g_subprocess_get_exit_status(subprocess);
	else if (g_subprocess_get_if_signaled(subprocess))
		proc->exit_code = 128 + g_subprocess_get_term_sig(subprocess);
	proc->exited = TRUE;
}

static void
as_watch_proc_child_setup_cb(gpointer user_data)
{
	/* a failed assertion must not leave a watcher behind */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
}

static AsWatchProc *
as_watch_proc_spawnv(const gchar *const *args)
{
	AsWatchProc *proc = g_new0(AsWatchProc, 1);
	g_autoptr(GSubprocessLauncher) launcher = g_subprocess_launcher_new(
		G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE);
	g_autoptr(GPtrArray) argv = g_ptr_array_new();
	g_autoptr(GError) error = NULL;
	const gchar *ctl = g_getenv("AEROSYNCCTL_PATH");

	if (ctl == NULL)
		g_error("AEROSYNCCTL_PATH is not set: run this test through meson");
	g_ptr_array_add(argv, (gpointer)ctl);
	for (guint i = 0; args[i] != NULL; i++)
		g_ptr_array_add(argv, (gpointer)args[i]);
	g_ptr_array_add(argv, NULL);
	proc->command = g_strjoinv(" ", (gchar **)args);
	proc->out = g_string_new(NULL);
	proc->err = g_string_new(NULL);
	proc->cancellable = g_cancellable_new();

	/* watch and 'status HOST' need no bus: make sure none is used */
	g_subprocess_launcher_unsetenv(launcher, "DBUS_SESSION_BUS_ADDRESS");
	g_subprocess_launcher_unsetenv(launcher, "AEROSYNC_BUS_ADDRESS");
	g_subprocess_launcher_setenv(launcher, "NO_COLOR", "1", TRUE);
	g_subprocess_launcher_setenv(launcher, "LC_ALL", "C.UTF-8", TRUE);
	g_subprocess_launcher_set_child_setup(launcher, as_watch_proc_child_setup_cb, NULL, NULL);
	proc->proc =
		g_subprocess_launcher_spawnv(launcher, (const gchar *const *)argv->pdata, &error);
	g_assert_no_error(error);
	g_subprocess_wait_async(proc->proc, NULL, as_watch_proc_wait_cb, proc);
	as_watch_proc_read(proc, FALSE);
	as_watch_proc_read(proc, TRUE);
	g_test_message("started aerosyncctl %s", proc->command);
	return proc;
}

#define as_watch_proc_spawn(...) as_watch_proc_spawnv((const gchar *const[]){__VA_ARGS__, NULL})

static gboolean
as_watch_timeout_cb(gpointer user_data)
{
	gboolean *timed_out = user_data;
	*timed_out = TRUE;
	return G_SOURCE_REMOVE;
}

static guint
as_watch_count(const gchar *haystack, const gchar *needle)
{
	guint count = 0;
	for (const gchar *p = strstr(haystack, needle); p != NULL; p = strstr(p + 1, needle))
		count++;
	return count;
}

/* runs the main loop until @text appears @count times in stdout (or stderr), or fails */
static void
as_watch_proc_wait_for(AsWatchProc *proc, gboolean in_err, const gchar *text, guint count)
{
	gboolean timed_out = FALSE;
	guint timeout_id =
		g_timeout_add(AS_WATCH_TEST_OUTPUT_TIMEOUT_MS, as_watch_timeout_cb, &timed_out);
	GString *str = in_err ? proc->err : proc->out;

	while (as_watch_count(str->str, text) < count && !timed_out &&
	       !(proc->exited && proc->out_eof && proc->err_eof))
		g_main_context_iteration(NULL, TRUE);
	if (!timed_out)
		g_source_remove(timeout_id);
	if (as_watch_count(str->str, text) < count) {
		g_error("aerosyncctl %s: '%s' did not appear %u time(s) on %s (exited: %d)\n"
			"stdout: %s\nstderr: %s",
			proc->command, text, count, in_err ? "stderr" : "stdout", proc->exited,
			proc->out->str, proc->err->str);
	}
}

/* waits for the exit and the end of both pipes; returns the exit code */
static gint
as_watch_proc_wait_exit(AsWatchProc *proc)
{
	gboolean timed_out = FALSE;
	guint timeout_id =
		g_timeout_add(AS_WATCH_TEST_EXIT_TIMEOUT_MS, as_watch_timeout_cb, &timed_out);

	while (!(proc->exited && proc->out_eof && proc->err_eof) && !timed_out)
		g_main_context_iteration(NULL, TRUE);
	if (!timed_out)
		g_source_remove(timeout_id);
	if (!proc->exited) {
		g_error("aerosyncctl %s did not exit\nstdout: %s\nstderr: %s", proc->command,
			proc->out->str, proc->err->str);
	}
	g_test_message("aerosyncctl %s -> %d\nstdout: %s\nstderr: %s", proc->command,
		       proc->exit_code, proc->out->str, proc->err->str);
	return proc->exit_code;
}

static void
as_watch_proc_free(AsWatchProc *proc)
{
	if (!proc->exited)
		g_subprocess_force_exit(proc->proc);
	while (!(proc->exited && proc->out_eof && proc->err_eof))
		g_main_context_iteration(NULL, TRUE);
	g_object_unref(proc->proc);
	g_object_unref(proc->cancellable);
	g_string_free(proc->out, TRUE);
	g_string_free(proc->err, TRUE);
	g_free(proc->command);
	g_free(proc);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(AsWatchProc, as_watch_proc_free)

/* errors are one line on stderr, named after the program */
static void
as_watch_assert_one_error_line(AsWatchProc *proc, const gchar *contains)
{
	const gchar *last = proc->err->str;
	const gchar *newline;

	/* watch prints progress notes before the error: the error is the last line */
	for (const gchar *p = strchr(last, '\n'); p != NULL && p[1] != '\0';
	     p = strchr(p + 1, '\n'))
		last = p + 1;
	newline = strchr(last, '\n');
	g_assert_true(g_str_has_prefix(last, "aerosyncctl: "));
	g_assert_nonnull(newline);
	g_assert_cmpint(newline[1], ==, '\0');
	if (contains != NULL && strstr(last, contains) == NULL)
		g_error("'%s' is not in the error line: %s", contains, last);
}

/* --- helpers --- */

typedef struct {
	gchar *tmpdir;	   /* (owned) */
	gchar *token_file; /* (owned): the receiver's token */
	gchar *bad_token_file;
	AsTestDaemon *daemon; /* (owned) (nullable) */
} AsWatchFixture;

static void
as_watch_fixture_setup(AsWatchFixture *fixture, gconstpointer user_data)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *bad = as_test_random_token();

	as_test_watchdog_arm();
	fixture->tmpdir = g_dir_make_tmp("as-watch-test-XXXXXX", &error);
	g_assert_no_error(error);
	fixture->bad_token_file = g_build_filename(fixture->tmpdir, "bad-token", NULL);
	g_file_set_contents_full(fixture->bad_token_file, bad, -1, G_FILE_SET_CONTENTS_NONE, 0600,
				 &error);
	g_assert_no_error(error);
}

static void
as_watch_fixture_setup_daemon(AsWatchFixture *fixture, gconstpointer user_data)
{
	g_autoptr(GError) error = NULL;

	as_watch_fixture_setup(fixture, user_data);
	fixture->daemon = as_test_daemon_new();
	as_test_daemon_start(fixture->daemon, &error);
	g_assert_no_error(error);
	fixture->token_file = g_build_filename(fixture->tmpdir, "token", NULL);
	g_file_set_contents_full(fixture->token_file, as_test_daemon_get_token(fixture->daemon), -1,
				 G_FILE_SET_CONTENTS_NONE, 0600, &error);
	g_assert_no_error(error);
}

static void
as_watch_fixture_teardown(AsWatchFixture *fixture, gconstpointer user_data)
{
	g_clear_object(&fixture->daemon);
	as_test_rm_rf(fixture->tmpdir);
	g_free(fixture->tmpdir);
	g_free(fixture->token_file);
	g_free(fixture->bad_token_file);
}

static gchar *
as_watch_address(AsTestDaemon *daemon)
{
	return g_strdup_printf("127.0.0.1:%u", as_test_daemon_get_port(daemon));
}

/* a file through PUT /upload/NAME, as any sender does */
static void
as_watch_upload(AsTestDaemon *daemon, const gchar *name, const gchar *content)
{
	g_autoptr(GBytes) body = g_bytes_new(content, strlen(content));
	g_autoptr(AsTestReply) reply = as_test_daemon_put_bytes(daemon, name, body, NULL);
	as_test_reply_assert_status(reply, SOUP_STATUS_OK);
}

/* the event @event about @filename among the JSON lines of @text, or NULL */
static JsonObject *
as_watch_find_event(const gchar *text, const gchar *event, const gchar *filename)
{
	g_auto(GStrv) lines = g_strsplit(text, "\n", -1);

	for (guint i = 0; lines[i] != NULL; i++) {
		g_autoptr(JsonParser) parser = json_parser_new();
		g_autoptr(GError) error = NULL;
		JsonNode *root;
		JsonObject *obj;

		if (lines[i][0] == '\0')
			continue;
		/* every line of --format json is one JSON object */
		json_parser_load_from_data(parser, lines[i], -1, &error);
		g_assert_no_error(error);
		root = json_parser_get_root(parser);
		g_assert_true(JSON_NODE_HOLDS_OBJECT(root));
		obj = json_node_get_object(root);
		if (g_strcmp0(json_object_get_string_member_with_default(obj, "event", ""),
			      event) == 0 &&
		    g_strcmp0(json_object_get_string_member_with_default(obj, "filename", ""),
			      filename) == 0)
			return json_object_ref(obj);
	}
	return NULL;
}

/* a TCP port nobody listens on (just freed) */
static guint16
as_watch_free_port(void)
{
	g_autoptr(GSocket) socket = NULL;
	g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
	g_autoptr(GSocketAddress) address = g_inet_socket_address_new(loopback, 0);
	g_autoptr(GSocketAddress) bound = NULL;
	g_autoptr(GError) error = NULL;

	socket = g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP,
			      &error);
	g_assert_no_error(error);
	g_socket_bind(socket, address, FALSE, &error);
	g_assert_no_error(error);
	bound = g_socket_get_local_address(socket, &error);
	g_assert_no_error(error);
	return g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(bound));
}

/* --- an in-process server for what aerosyncd never does --- */

typedef struct {
	SoupServer *server; /* (owned) */
	guint16 port;
	guint n_ws; /* WebSocket connections accepted */
} AsWatchServer;

static void
as_watch_server_plain_cb(SoupServer *server,
			 SoupServerMessage *msg,
			 const char *path,
			 GHashTable *query,
			 gpointer user_data)
{
	static const gchar body[] = "<html><body>just a web server</body></html>";
	soup_server_message_set_status(msg, SOUP_STATUS_OK, NULL);
	soup_server_message_set_response(msg, "text/html", SOUP_MEMORY_STATIC, body, strlen(body));
}

static void
as_watch_server_ws_cb(SoupServer *server,
		      SoupServerMessage *msg,
		      const char *path,
		      SoupWebsocketConnection *conn,
		      gpointer user_data)
{
	AsWatchServer *self = user_data;
	self->n_ws++;
	/* one event, then a clean close: watch must print it and stop for good */
	soup_websocket_connection_send_text(
		conn, "{\"event\":\"completed\",\"filename\":\"bye.txt\",\"size\":3,"
		      "\"sha256\":\"0123456789abcdef\"}");
	soup_websocket_connection_close(conn, SOUP_WEBSOCKET_CLOSE_NORMAL, "bye");
}

static AsWatchServer *
as_watch_server_new(void)
{
	AsWatchServer *self = g_new0(AsWatchServer, 1);
	g_autoptr(GError) error = NULL;
	GSList *uris;

	self->server = soup_server_new(NULL, NULL);
	soup_server_add_handler(self->server, "/", as_watch_server_plain_cb, self, NULL);
	soup_server_add_websocket_handler(self->server, "/ws", NULL, NULL, as_watch_server_ws_cb,
					  self, NULL);
	soup_server_listen_local(self->server, 0, SOUP_SERVER_LISTEN_IPV4_ONLY, &error);
	g_assert_no_error(error);
	uris = soup_server_get_uris(self->server);
	g_assert_nonnull(uris);
	self->port = (guint16)g_uri_get_port(uris->data);
	g_slist_free_full(uris, (GDestroyNotify)g_uri_unref);
	return self;
}

static void
as_watch_server_free(AsWatchServer *self)
{
	soup_server_disconnect(self->server);
	g_object_unref(self->server);
	g_free(self);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(AsWatchServer, as_watch_server_free)

/* --- tests --- */

static void
as_watch_test_usage(AsWatchFixture *fixture, gconstpointer user_data)
{
	const gchar *const bad[][6] = {
		{"watch", "--format", "xml", NULL},
		{"watch", "--max-retries", "2", NULL},
		{"watch", "--reconnect", "--max-retries", "-1", NULL},
		{"watch", "--reconnect", "--retry-delay", "0", NULL},
		{"watch", "--reconnect", "--retry-delay", "soon", NULL},
		{"watch", "ftp://host", NULL},
		{"watch", "a", "b", NULL},
		{"watch", "--json", "--format", "pretty", NULL},
		{"status", "a", "b", NULL},
		{"status", "quic://host:7789", NULL},
	};

	for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
		g_autoptr(AsWatchProc) proc = as_watch_proc_spawnv(bad[i]);
		g_assert_cmpint(as_watch_proc_wait_exit(proc), ==, AS_WATCH_TEST_EXIT_USAGE);
		as_watch_assert_one_error_line(proc, NULL);
		g_assert_cmpstr(proc->out->str, ==, "");
	}
}

static void
as_watch_test_json(AsWatchFixture *fixture, gconstpointer user_data)
{
	g_autofree gchar *address = as_watch_address(fixture->daemon);
	g_autoptr(AsWatchProc) proc = as_watch_proc_spawn("watch", address, "--format", "json",
							  "--token-file", fixture->token_file);
	g_autoptr(JsonObject) started = NULL;
	g_autoptr(JsonObject) completed = NULL;

	as_watch_proc_wait_for(proc, TRUE, AS_WATCH_TEST_CONNECTED, 1);
	as_watch_upload(fixture->daemon, "watched.txt", "hello watch\n");
	as_watch_proc_wait_for(proc, FALSE, "\"completed\"", 1);

	completed = as_watch_find_event(proc->out->str, "completed", "watched.txt");
	g_assert_nonnull(completed);
	g_assert_cmpint(json_object_get_int_member(completed, "size"), ==, 12);
	g_assert_cmpuint(strlen(json_object_get_string_member(completed, "sha256")), ==, 64);
	/* json mode: every event goes to stdout, the start included */
	started = as_watch_find_event(proc->out->str, "transfer_started", "watched.txt");
	g_assert_nonnull(started);
}

static void
as_watch_test_pretty(AsWatchFixture *fixture, gconstpointer user_data)
{
	g_autofree gchar *address = as_watch_address(fixture->daemon);
	g_autoptr(AsWatchProc) proc =
		as_watch_proc_spawn("watch", address, "--token-file", fixture->token_file);

	as_watch_proc_wait_for(proc, TRUE, AS_WATCH_TEST_CONNECTED, 1);
	as_watch_upload(fixture->daemon, "pretty.txt", "pretty\n");
	as_watch_proc_wait_for(proc, FALSE, "completed pretty.txt", 1);
	as_watch_proc_wait_for(proc, TRUE, "transfer_started pretty.txt", 1);
	/* 0.x split: completed on stdout only, everything else on stderr only */
	g_assert_null(strstr(proc->out->str, "transfer_started"));
	g_assert_null(strstr(proc->err->str, "completed pretty.txt"));
	g_assert_nonnull(strstr(proc->out->str, "sha256="));
}

static void
as_watch_test_filter(AsWatchFixture *fixture, gconstpointer user_data)
{
	g_autofree gchar *address = as_watch_address(fixture->daemon);
	g_autoptr(AsWatchProc) proc =
		as_watch_proc_spawn("watch", address, "--json", "--filter", "complete",
				    "--token-file", fixture->token_file);

	as_watch_proc_wait_for(proc, TRUE, AS_WATCH_TEST_CONNECTED, 1);
	as_watch_upload(fixture->daemon, "one.txt", "1\n");
	as_watch_upload(fixture->daemon, "two.txt", "2\n");
	as_watch_proc_wait_for(proc, FALSE, "two.txt", 1);
	g_assert_cmpuint(as_watch_count(proc->out->str, "\n"), ==, 2);
	g_assert_null(strstr(proc->out->str, "transfer_started"));
	g_assert_null(strstr(proc->out->str, "progress"));
}

static void
as_watch_test_token_refused(AsWatchFixture *fixture, gconstpointer user_data)
{
	g_autofree gchar *address = as_watch_address(fixture->daemon);

	{
		g_autoptr(AsWatchProc) proc = as_watch_proc_spawn(
			"watch", address, "--reconnect", "--token-file", fixture->bad_token_file);
		/* a refusal is not retried, even with --reconnect */
		g_assert_cmpint(as_watch_proc_wait_exit(proc), ==, AS_WATCH_TEST_EXIT_PERMISSION);
		as_watch_assert_one_error_line(proc, "refused the token");
	}
	{
		g_autoptr(AsWatchProc) proc = as_watch_proc_spawn("watch", address);
		g_assert_cmpint(as_watch_proc_wait_exit(proc), ==, AS_WATCH_TEST_EXIT_PERMISSION);
		as_watch_assert_one_error_line(proc, "--token-file");
	}
}

static void
as_watch_test_reconnect(AsWatchFixture *fixture, gconstpointer user_data)
{
	g_autofree gchar *address = as_watch_address(fixture->daemon);
	guint16 port_number = as_test_daemon_get_port(fixture->daemon);
	g_autofree gchar *port = g_strdup_printf("%u", port_number);
	g_autoptr(AsWatchProc) proc =
		as_watch_proc_spawn("watch", address, "--format", "json", "--reconnect",
				    "--retry-delay", "0.2", "--token-file", fixture->token_file);
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonObject) after = NULL;

	as_watch_proc_wait_for(proc, TRUE, AS_WATCH_TEST_CONNECTED, 1);
	as_watch_upload(fixture->daemon, "before.txt", "before\n");
	as_watch_proc_wait_for(proc, FALSE, "\"completed\"", 1);

	/* SIGTERM: aerosyncd closes with 1001 going away; then the same port again */
	as_test_daemon_stop(fixture->daemon);
	as_watch_proc_wait_for(proc, TRUE, "retrying", 1);
	as_test_daemon_add_arg(fixture->daemon, "--port");
	as_test_daemon_add_arg(fixture->daemon, port);
	as_test_daemon_start(fixture->daemon, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(as_test_daemon_get_port(fixture->daemon), ==, port_number);

	as_watch_proc_wait_for(proc, TRUE, AS_WATCH_TEST_CONNECTED, 2);
	as_watch_upload(fixture->daemon, "after.txt", "after\n");
	as_watch_proc_wait_for(proc, FALSE, "\"completed\"", 2);
	after = as_watch_find_event(proc->out->str, "completed", "after.txt");
	g_assert_nonnull(after);
	g_assert_false(proc->exited);
}

static void
as_watch_test_lost_without_reconnect(AsWatchFixture *fixture, gconstpointer user_data)
{
	g_autofree gchar *address = as_watch_address(fixture->daemon);
	g_autoptr(AsWatchProc) proc =
		as_watch_proc_spawn("watch", address, "--token-file", fixture->token_file);

	as_watch_proc_wait_for(proc, TRUE, AS_WATCH_TEST_CONNECTED, 1);
	as_test_daemon_kill(fixture->daemon);
	g_assert_cmpint(as_watch_proc_wait_exit(proc), ==, AS_WATCH_TEST_EXIT_PEER_UNREACHABLE);
	as_watch_assert_one_error_line(proc, "--reconnect");
}

static void
as_watch_test_give_up(AsWatchFixture *fixture, gconstpointer user_data)
{
	g_autofree gchar *address = g_strdup_printf("127.0.0.1:%u", as_watch_free_port());
	g_autofree gchar *retries = g_strdup_printf("%d", AS_WATCH_TEST_MAX_RETRIES);
	g_autofree gchar *delay = g_strdup_printf("%.1f", AS_WATCH_TEST_RETRY_DELAY_S);
	gint64 start_us = g_get_monotonic_time();
	g_autoptr(AsWatchProc) proc = as_watch_proc_spawn(
		"watch", address, "--reconnect", "--max-retries", retries, "--retry-delay", delay);
	gint64 elapsed_us;

	g_assert_cmpint(as_watch_proc_wait_exit(proc), ==, AS_WATCH_TEST_EXIT_PEER_UNREACHABLE);
	elapsed_us = g_get_monotonic_time() - start_us;
	/* waits of delay and 2·delay between the three attempts */
	g_assert_cmpint(elapsed_us, >=, AS_WATCH_TEST_GIVE_UP_MIN_US);
	g_assert_cmpint(elapsed_us, <, AS_WATCH_TEST_GIVE_UP_MAX_US);
	g_assert_cmpuint(as_watch_count(proc->err->str, "retrying in"), ==,
			 AS_WATCH_TEST_MAX_RETRIES);
	g_assert_nonnull(strstr(proc->err->str, "retrying in 0.5 s (1 of 2)"));
	g_assert_nonnull(strstr(proc->err->str, "retrying in 1.0 s (2 of 2)"));
	as_watch_assert_one_error_line(proc, "giving up after 2 retries");
	g_assert_cmpstr(proc->out->str, ==, "");
}

static void
as_watch_test_clean_close(AsWatchFixture *fixture, gconstpointer user_data)
{
	g_autoptr(AsWatchServer) server = as_watch_server_new();
	g_autofree gchar *url = g_strdup_printf("ws://127.0.0.1:%u/ws", server->port);
	g_autoptr(AsWatchProc) proc =
		as_watch_proc_spawn("watch", url, "--reconnect", "--retry-delay", "0.1");

	/* a Close frame with 1000 ends the watch: no reconnect despite --reconnect */
	g_assert_cmpint(as_watch_proc_wait_exit(proc), ==, AS_WATCH_TEST_EXIT_OK);
	g_assert_cmpuint(server->n_ws, ==, 1);
	g_assert_nonnull(strstr(proc->out->str, "completed bye.txt (3 bytes) sha256=01234567\n"));
	g_assert_null(strstr(proc->err->str, "retrying"));
	g_assert_nonnull(strstr(proc->err->str, "closed the connection"));
}

static void
as_watch_test_status_json(AsWatchFixture *fixture, gconstpointer user_data)
{
	g_autofree gchar *address = as_watch_address(fixture->daemon);
	g_autoptr(JsonParser) parser = json_parser_new();
	g_autoptr(GError) error = NULL;
	JsonObject *obj;
	JsonArray *protocols;

	{
		g_autoptr(AsWatchProc) proc = as_watch_proc_spawn("status", address, "--json");
		g_assert_cmpint(as_watch_proc_wait_exit(proc), ==, AS_WATCH_TEST_EXIT_OK);
		g_assert_cmpstr(proc->err->str, ==, "");
		json_parser_load_from_data(parser, proc->out->str, -1, &error);
		g_assert_no_error(error);
	}
	g_assert_true(JSON_NODE_HOLDS_OBJECT(json_parser_get_root(parser)));
	obj = json_node_get_object(json_parser_get_root(parser));
	g_assert_cmpstr(json_object_get_string_member(obj, "address"), ==, address);
	g_assert_cmpstr(json_object_get_string_member(obj, "status"), ==, "ok");
	g_assert_cmpstr(json_object_get_string_member(obj, "version"), ==, PACKAGE_VERSION);
	g_assert_true(json_object_get_boolean_member(obj, "auth_required"));
	g_assert_cmpint(json_object_get_int_member(obj, "received_files"), ==, 0);
	g_assert_cmpint(json_object_get_int_member(obj, "total_bytes"), >, 0);
	protocols = json_object_get_array_member(obj, "protocols");
	g_assert_cmpstr(json_array_get_string_element(protocols, 0), ==, "http");

	/* the human form, with a URL instead of HOST:PORT */
	{
		g_autofree gchar *url = g_strdup_printf("http://127.0.0.1:%u",
							as_test_daemon_get_port(fixture->daemon));
		g_autoptr(AsWatchProc) proc = as_watch_proc_spawn("status", url);
		g_assert_cmpint(as_watch_proc_wait_exit(proc), ==, AS_WATCH_TEST_EXIT_OK);
		g_assert_nonnull(strstr(proc->out->str, "Address:"));
		g_assert_nonnull(strstr(proc->out->str, address));
		g_assert_nonnull(strstr(proc->out->str, "Authentication:       on\n"));
#if HAVE_QUIC
		/* what a sender needs to pin the receiver, from /health */
		{
			g_autofree gchar *cert = as_test_daemon_dup_cert_sha256(fixture->daemon);
			g_autofree gchar *line =
				g_strdup_printf("Certificate SHA-256:  %s\n", cert);
			g_assert_nonnull(strstr(proc->out->str, line));
		}
#endif
	}
}

static void
as_watch_test_status_unreachable(AsWatchFixture *fixture, gconstpointer user_data)
{
	g_autofree gchar *address = g_strdup_printf("127.0.0.1:%u", as_watch_free_port());
	g_autoptr(AsWatchProc) proc = as_watch_proc_spawn("status", address, "--json");

	g_assert_cmpint(as_watch_proc_wait_exit(proc), ==, AS_WATCH_TEST_EXIT_PEER_UNREACHABLE);
	as_watch_assert_one_error_line(proc, address);
	g_assert_cmpstr(proc->out->str, ==, "");
}

static void
as_watch_test_status_not_aerosync(AsWatchFixture *fixture, gconstpointer user_data)
{
	g_autoptr(AsWatchServer) server = as_watch_server_new();
	g_autofree gchar *address = g_strdup_printf("127.0.0.1:%u", server->port);
	g_autoptr(AsWatchProc) proc = as_watch_proc_spawn("status", address);

	g_assert_cmpint(as_watch_proc_wait_exit(proc), ==, AS_WATCH_TEST_EXIT_FAILURE);
	as_watch_assert_one_error_line(proc, "not an AeroSync receiver");
	g_assert_cmpstr(proc->out->str, ==, "");
}

int
main(int argc, char **argv)
{
	as_test_init(&argc, &argv);

#define AS_WATCH_ADD(path, setup, func)                                                            \
	g_test_add(path, AsWatchFixture, NULL, setup, func, as_watch_fixture_teardown)

	AS_WATCH_ADD("/aerosync/watch/usage", as_watch_fixture_setup, as_watch_test_usage);
	AS_WATCH_ADD("/aerosync/watch/json", as_watch_fixture_setup_daemon, as_watch_test_json);
	AS_WATCH_ADD("/aerosync/watch/pretty", as_watch_fixture_setup_daemon, as_watch_test_pretty);
	AS_WATCH_ADD("/aerosync/watch/filter", as_watch_fixture_setup_daemon, as_watch_test_filter);
	AS_WATCH_ADD("/aerosync/watch/token-refused", as_watch_fixture_setup_daemon,
		     as_watch_test_token_refused);
	AS_WATCH_ADD("/aerosync/watch/reconnect", as_watch_fixture_setup_daemon,
		     as_watch_test_reconnect);
	AS_WATCH_ADD("/aerosync/watch/lost-without-reconnect", as_watch_fixture_setup_daemon,
		     as_watch_test_lost_without_reconnect);
	AS_WATCH_ADD("/aerosync/watch/give-up", as_watch_fixture_setup, as_watch_test_give_up);
	AS_WATCH_ADD("/aerosync/watch/clean-close", as_watch_fixture_setup,
		     as_watch_test_clean_close);
	AS_WATCH_ADD("/aerosync/status-host/json", as_watch_fixture_setup_daemon,
		     as_watch_test_status_json);
	AS_WATCH_ADD("/aerosync/status-host/unreachable", as_watch_fixture_setup,
		     as_watch_test_status_unreachable);
	AS_WATCH_ADD("/aerosync/status-host/not-aerosync", as_watch_fixture_setup,
		     as_watch_test_status_not_aerosync);
	return g_test_run();
}
