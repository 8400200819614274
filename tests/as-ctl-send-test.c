/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "AsCtlSendTest"

#include "config.h"

#include <gio/gio.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include "as-keys.h"
#include "as-test-daemon.h"

/* the exit codes documented by aerosyncctl --help */
#define AS_SEND_TEST_EXIT_OK		   0
#define AS_SEND_TEST_EXIT_FAILURE	   1
#define AS_SEND_TEST_EXIT_USAGE		   2
#define AS_SEND_TEST_EXIT_NOT_FOUND	   3
#define AS_SEND_TEST_EXIT_UNREACHABLE	   4
#define AS_SEND_TEST_EXIT_PEER_UNREACHABLE 101

#define AS_SEND_TEST_NAME_TIMEOUT_MS 10000
#define AS_SEND_TEST_CALL_TIMEOUT_MS 10000
#define AS_SEND_TEST_HTTP_TIMEOUT_S  30
#define AS_SEND_TEST_PAYLOAD_SIZE    (3 * 1024 * 1024)
#define AS_SEND_TEST_PAYLOAD_SEED    42
#define AS_SEND_TEST_ID_PREFIX	     6
#define AS_SEND_TEST_PIN_HEX	     "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define AS_SEND_TEST_MANAGER1	     "org.aerosync.Manager1"

static GTestDBus *as_send_test_bus = NULL;

typedef struct {
	gint exit_code;
	gchar *out; /* (owned) */
	gchar *err; /* (owned) */
} AsSendResult;

static void
as_send_result_free(AsSendResult *result)
{
	g_free(result->out);
	g_free(result->err);
	g_free(result);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(AsSendResult, as_send_result_free)

typedef struct {
	gchar *tmpdir;		     /* (owned) */
	GDBusConnection *connection; /* (owned): ours, on the test bus */
	AsTestDaemon *sender;	     /* (owned) (nullable): aerosyncd on the bus */
	AsTestDaemon *receiver;	     /* (owned) (nullable): a second aerosyncd, HTTP only */
	gchar *token_file;	     /* (owned) (nullable): the receiver's token */
	gchar *bad_token_file;	     /* (owned) */
} AsSendFixture;

static const gchar *
as_send_test_ctl_path(void)
{
	const gchar *path = g_getenv("AEROSYNCCTL_PATH");
	if (path == NULL)
		g_error("AEROSYNCCTL_PATH is not set: run this test through meson");
	return path;
}

/* aerosyncctl's environment: the test bus, no colour, and XDG dirs of this test only */
static gchar **
as_send_test_envp(AsSendFixture *fixture)
{
	const gchar *xdg_dirs[] = {"XDG_CONFIG_HOME", "XDG_STATE_HOME",	 "XDG_DATA_HOME",
				   "XDG_CACHE_HOME",  "XDG_RUNTIME_DIR", NULL};
	gchar **envp = g_get_environ();

	envp = g_environ_unsetenv(envp, "AEROSYNC_BUS_ADDRESS");
	envp = g_environ_setenv(envp, "NO_COLOR", "1", TRUE);
	envp = g_environ_setenv(envp, "LC_ALL", "C.UTF-8", TRUE);
	for (guint i = 0; xdg_dirs[i] != NULL; i++) {
		g_autofree gchar *dir = g_build_filename(fixture->tmpdir, "ctl", xdg_dirs[i], NULL);
		g_assert_cmpint(g_mkdir_with_parents(dir, 0700), ==, 0);
		envp = g_environ_setenv(envp, xdg_dirs[i], dir, TRUE);
	}
	return envp;
}

static AsSendResult *
as_send_test_run_argv(gchar **envp, const gchar *const *args)
{
	g_autoptr(GPtrArray) argv = g_ptr_array_new();
	g_autoptr(GError) error = NULL;
	g_autofree gchar *command = g_strjoinv(" ", (gchar **)args);
	AsSendResult *result = g_new0(AsSendResult, 1);
	gint wait_status = 0;

	g_ptr_array_add(argv, (gpointer)as_send_test_ctl_path());
	for (guint i = 0; args[i] != NULL; i++)
		g_ptr_array_add(argv, (gpointer)args[i]);
	g_ptr_array_add(argv, NULL);
	g_spawn_sync(NULL, (gchar **)argv->pdata, envp, G_SPAWN_DEFAULT, NULL, NULL, &result->out,
		     &result->err, &wait_status, &error);
	g_assert_no_error(error);
	g_assert_true(WIFEXITED(wait_status));
	result->exit_code = WEXITSTATUS(wait_status);
	g_test_message("aerosyncctl %s -> %d\n%s%s", command, result->exit_code, result->out,
		       result->err);
	return result;
}

#define as_send_test_run(envp, ...)                                                                \
	as_send_test_run_argv(envp, (const gchar *const[]){__VA_ARGS__, NULL})

/* errors are exactly one line on stderr, named after the program */
static void
as_send_test_assert_one_error_line(AsSendResult *result, const gchar *contains)
{
	const gchar *newline = strchr(result->err, '\n');
	g_assert_true(g_str_has_prefix(result->err, "aerosyncctl: "));
	g_assert_nonnull(newline);
	g_assert_cmpint(newline[1], ==, '\0');
	if (contains != NULL && strstr(result->err, contains) == NULL)
		g_error("'%s' is not in the error line: %s", contains, result->err);
}

/* every line of @text is one JSON object; returns them in order */
static GPtrArray *
as_send_test_parse_lines(const gchar *text)
{
	GPtrArray *objects = g_ptr_array_new_with_free_func((GDestroyNotify)json_object_unref);
	g_auto(GStrv) lines = g_strsplit(text, "\n", -1);

	for (guint i = 0; lines[i] != NULL; i++) {
		g_autoptr(JsonParser) parser = json_parser_new();
		g_autoptr(GError) error = NULL;
		JsonNode *root;

		if (lines[i][0] == '\0') {
			/* only after the last line */
			g_assert_null(lines[i + 1]);
			continue;
		}
		json_parser_load_from_data(parser, lines[i], -1, &error);
		g_assert_no_error(error);
		root = json_parser_get_root(parser);
		g_assert_true(JSON_NODE_HOLDS_OBJECT(root));
		g_ptr_array_add(objects, json_object_ref(json_node_get_object(root)));
	}
	return objects;
}

static const gchar *
as_send_test_event(JsonObject *obj)
{
	return json_object_get_string_member_with_default(obj, "event", "");
}

/* --- the bus and the daemons --- */

static gboolean
as_send_test_name_owned_cb(gpointer user_data)
{
	GDBusConnection *connection = user_data;
	g_autoptr(GVariant) ret = g_dbus_connection_call_sync(
		connection, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
		"NameHasOwner", g_variant_new("(s)", AS_DBUS_NAME), G_VARIANT_TYPE("(b)"),
		G_DBUS_CALL_FLAGS_NONE, AS_SEND_TEST_CALL_TIMEOUT_MS, NULL, NULL);
	gboolean owned = FALSE;
	if (ret != NULL)
		g_variant_get(ret, "(b)", &owned);
	return owned;
}

static gboolean
as_send_test_name_free_cb(gpointer user_data)
{
	return !as_send_test_name_owned_cb(user_data);
}

static void
as_send_test_write_file(const gchar *path, const gchar *contents)
{
	g_autoptr(GError) error = NULL;
	g_file_set_contents_full(path, contents, -1, G_FILE_SET_CONTENTS_NONE, 0600, &error);
	g_assert_no_error(error);
}

static void
as_send_fixture_setup(AsSendFixture *fixture, gconstpointer user_data)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *bad = as_test_random_token();

	as_test_watchdog_arm();
	fixture->tmpdir = g_dir_make_tmp("as-ctl-send-test-XXXXXX", &error);
	g_assert_no_error(error);
	fixture->connection = g_dbus_connection_new_for_address_sync(
		g_test_dbus_get_bus_address(as_send_test_bus),
		G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
			G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
		NULL, NULL, &error);
	g_assert_no_error(error);
	fixture->bad_token_file = g_build_filename(fixture->tmpdir, "bad-token", NULL);
	as_send_test_write_file(fixture->bad_token_file, bad);
	/* the previous test's daemon must be gone from the bus */
	g_assert_true(as_test_wait_for(as_send_test_name_free_cb, fixture->connection,
				       AS_SEND_TEST_NAME_TIMEOUT_MS));
}

/* a sending aerosyncd on the test bus */
static void
as_send_fixture_setup_sender(AsSendFixture *fixture, gconstpointer user_data)
{
	g_autoptr(GError) error = NULL;

	as_send_fixture_setup(fixture, user_data);
	fixture->sender = as_test_daemon_new();
	as_test_daemon_set_dbus_address(fixture->sender,
					g_test_dbus_get_bus_address(as_send_test_bus));
	as_test_daemon_start(fixture->sender, &error);
	g_assert_no_error(error);
	g_assert_true(as_test_wait_for(as_send_test_name_owned_cb, fixture->connection,
				       AS_SEND_TEST_NAME_TIMEOUT_MS));
}

/* and a receiving one, HTTP only, with a token */
static void
as_send_fixture_setup_pair(AsSendFixture *fixture, gconstpointer user_data)
{
	g_autoptr(GError) error = NULL;

	as_send_fixture_setup_sender(fixture, user_data);
	fixture->receiver = as_test_daemon_new();
	as_test_daemon_start(fixture->receiver, &error);
	g_assert_no_error(error);
	fixture->token_file = g_build_filename(fixture->tmpdir, "token", NULL);
	as_send_test_write_file(fixture->token_file, as_test_daemon_get_token(fixture->receiver));
}

static void
as_send_fixture_teardown(AsSendFixture *fixture, gconstpointer user_data)
{
	g_clear_object(&fixture->sender);
	g_clear_object(&fixture->receiver);
	if (fixture->connection != NULL) {
		g_assert_true(as_test_wait_for(as_send_test_name_free_cb, fixture->connection,
					       AS_SEND_TEST_NAME_TIMEOUT_MS));
	}
	g_clear_object(&fixture->connection);
	as_test_rm_rf(fixture->tmpdir);
	g_free(fixture->tmpdir);
	g_free(fixture->token_file);
	g_free(fixture->bad_token_file);
}

/* whether this aerosyncd implements Manager1.Send: the codegen skeleton answers
 * UnknownMethod for a method without a handler, even though introspection lists it */
static gboolean
as_send_test_daemon_can_send(AsSendFixture *fixture)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) reply = NULL;
	g_autofree gchar *remote = NULL;
	const gchar *no_paths[] = {NULL};

	reply = g_dbus_connection_call_sync(
		fixture->connection, AS_DBUS_NAME, AS_DBUS_PATH, AS_SEND_TEST_MANAGER1, "Send",
		g_variant_new("(^ass@a{sv})", no_paths, "127.0.0.1:1",
			      g_variant_new_array(G_VARIANT_TYPE("{sv}"), NULL, 0)),
		G_VARIANT_TYPE("(o)"), G_DBUS_CALL_FLAGS_NO_AUTO_START,
		AS_SEND_TEST_CALL_TIMEOUT_MS, NULL, &error);
	if (g_error_matches(error, G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_METHOD)) {
		g_test_skip("aerosyncd does not implement Manager1.Send yet");
		return FALSE;
	}
	/* a daemon built or started without its sending engine */
	remote = error != NULL ? g_dbus_error_get_remote_error(error) : NULL;
	if (g_strcmp0(remote, "org.aerosync.Error.NotSupported") == 0) {
		g_test_skip("this aerosyncd does not send (Send: NotSupported)");
		return FALSE;
	}
	return TRUE;
}

/* PUT /upload/NAME without a token */
static void
as_send_test_upload(guint16 port, const gchar *name, const gchar *content)
{
	g_autoptr(SoupSession) session =
		soup_session_new_with_options("timeout", AS_SEND_TEST_HTTP_TIMEOUT_S, NULL);
	g_autofree gchar *url = g_strdup_printf("http://127.0.0.1:%u/upload/%s", port, name);
	g_autoptr(SoupMessage) msg = soup_message_new(SOUP_METHOD_PUT, url);
	g_autoptr(GBytes) body = g_bytes_new(content, strlen(content));
	g_autoptr(GBytes) reply = NULL;
	g_autoptr(GError) error = NULL;

	soup_message_set_request_body_from_bytes(msg, "application/octet-stream", body);
	reply = soup_session_send_and_read(session, msg, NULL, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(soup_message_get_status(msg), ==, SOUP_STATUS_OK);
}

static guint16
as_send_test_free_port(void)
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

/* --- tests without a daemon --- */

static void
as_send_test_usage(AsSendFixture *fixture, gconstpointer user_data)
{
	g_auto(GStrv) envp = as_send_test_envp(fixture);
	const gchar *const bad[][9] = {
		{"send", NULL},
		{"send", "only-a-path", NULL},
		{"send", "file", "", NULL},
		{"send", "", "host", NULL},
		{"send", "file", "host", "--parallel", "0", NULL},
		{"send", "file", "host", "--parallel", "65", NULL},
		{"send", "file", "host", "--parallel", "many", NULL},
		{"send", "file", "host", "--protocol", "ftp", NULL},
		{"send", "file", "host", "--token", "t", "--token-file", "f", NULL},
		{"send", "file", "host", "--token", "", NULL},
		{"send", "file", "host", "--pin", "abc", NULL},
		{"send", "file", "host", "--pin", AS_SEND_TEST_PIN_HEX, "--insecure", NULL},
		{"send", "file", "host", "--tag", "", NULL},
		{"send", "file", "host", "--tag", "a\tb", NULL},
		{"send", "file", "host", "--frobnicate", NULL},
		{"pause", NULL},
		{"resume", "a", "b", NULL},
		{"cancel", NULL},
		{"follow", NULL},
		{"limit", "abc", NULL},
		{"limit", "abc", "1M", "extra", NULL},
		{"transfers", "extra", NULL},
		{"receive", "--port", "65536", NULL},
		{"receive", "--port", "web", NULL},
		{"receive", "--save-to", "", NULL},
		{"receive", "extra", NULL},
	};

	/* a dead bus: anything that got as far as the bus would exit 4, not 2 */
	envp = g_environ_setenv(envp, "DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent", TRUE);
	for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
		g_autoptr(AsSendResult) result = as_send_test_run_argv(envp, bad[i]);
		g_assert_cmpint(result->exit_code, ==, AS_SEND_TEST_EXIT_USAGE);
		as_send_test_assert_one_error_line(result, NULL);
		g_assert_cmpstr(result->out, ==, "");
	}
}

static void
as_send_test_limit_parsing(AsSendFixture *fixture, gconstpointer user_data)
{
	g_auto(GStrv) envp = as_send_test_envp(fixture);
	const gchar *const bad_rates[] = {"5x", "-1",	   "1e3",   "10 parsecs",
					  "",	"1.2.3MB", "5MB/h", NULL};
	const gchar *const good_rates[] = {"512KB", "10MB/s",	 "1.5M", "100",
					   "0",	    "unlimited", NULL};

	envp = g_environ_setenv(envp, "DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent", TRUE);
	for (guint i = 0; bad_rates[i] != NULL; i++) {
		g_autoptr(AsSendResult) send =
			as_send_test_run(envp, "send", "file", "host", "--limit", bad_rates[i]);
		g_autoptr(AsSendResult) limit =
			as_send_test_run(envp, "limit", "abcd", bad_rates[i]);
		g_assert_cmpint(send->exit_code, ==, AS_SEND_TEST_EXIT_USAGE);
		as_send_test_assert_one_error_line(send, "invalid --limit");
		g_assert_cmpint(limit->exit_code, ==, AS_SEND_TEST_EXIT_USAGE);
		/* "-1" reads as an option there, which is a usage error of its own */
		as_send_test_assert_one_error_line(
			limit, bad_rates[i][0] != '-' ? "invalid rate limit" : NULL);
	}
	/* valid rates pass the checks and only then meet the dead bus */
	for (guint i = 0; good_rates[i] != NULL; i++) {
		g_autoptr(AsSendResult) send =
			as_send_test_run(envp, "send", "file", "host", "--limit", good_rates[i]);
		g_autoptr(AsSendResult) limit =
			as_send_test_run(envp, "limit", "abcd", good_rates[i]);
		g_assert_cmpint(send->exit_code, ==, AS_SEND_TEST_EXIT_UNREACHABLE);
		as_send_test_assert_one_error_line(send, "cannot reach aerosyncd");
		g_assert_cmpint(limit->exit_code, ==, AS_SEND_TEST_EXIT_UNREACHABLE);
	}
	/* every other option accepted too; --token warns about ps on the way */
	{
		g_autoptr(AsSendResult) result = as_send_test_run(
			envp, "send", "-r", "dir", "file", "host:7788", "--parallel", "8",
			"--protocol", "http", "--tag", "photos", "--no-verify", "--no-preflight",
			"--pin", AS_SEND_TEST_PIN_HEX, "--detach", "--token", "secret");
		g_assert_cmpint(result->exit_code, ==, AS_SEND_TEST_EXIT_UNREACHABLE);
		g_assert_true(g_str_has_prefix(result->err, "aerosyncctl: warning: --token"));
		g_assert_null(strstr(result->err, "secret"));
	}
}

/* --- tests against aerosyncd on the bus --- */

static void
as_send_test_transfers(AsSendFixture *fixture, gconstpointer user_data)
{
	g_auto(GStrv) envp = as_send_test_envp(fixture);
	guint16 port = as_test_daemon_get_port(fixture->sender);
	g_autoptr(GBytes) body = g_bytes_new_static("listed\n", 7);
	g_autoptr(JsonParser) parser = json_parser_new();
	g_autoptr(GError) error = NULL;
	g_autofree gchar *id = NULL;
	g_autofree gchar *prefix = NULL;
	JsonArray *array;
	JsonObject *obj = NULL;

	{
		g_autoptr(AsSendResult) result = as_send_test_run(envp, "transfers", "--json");
		g_assert_cmpint(result->exit_code, ==, AS_SEND_TEST_EXIT_OK);
		g_assert_cmpstr(g_strstrip(result->out), ==, "[]");
	}
	{
		g_autoptr(AsSendResult) result = as_send_test_run(envp, "transfers");
		g_assert_cmpint(result->exit_code, ==, AS_SEND_TEST_EXIT_OK);
		g_assert_cmpstr(result->out, ==, "No transfers.\n");
	}

	/* a received file stays listed for a while after it finished */
	{
		g_autoptr(AsTestReply) reply =
			as_test_daemon_put_bytes(fixture->sender, "listed.txt", body, NULL);
		as_test_reply_assert_status(reply, SOUP_STATUS_OK);
	}
	{
		g_autoptr(AsSendResult) result = as_send_test_run(envp, "transfers", "--json");
		g_assert_cmpint(result->exit_code, ==, AS_SEND_TEST_EXIT_OK);
		json_parser_load_from_data(parser, result->out, -1, &error);
		g_assert_no_error(error);
	}
	array = json_node_get_array(json_parser_get_root(parser));
	for (guint i = 0; i < json_array_get_length(array); i++) {
		JsonObject *candidate = json_array_get_object_element(array, i);
		if (g_strcmp0(json_object_get_string_member(candidate, "filename"), "listed.txt") ==
		    0)
			obj = candidate;
	}
	g_assert_nonnull(obj);
	g_assert_cmpstr(json_object_get_string_member(obj, "direction"), ==, "receive");
	g_assert_cmpstr(json_object_get_string_member(obj, "state"), ==, "completed");
	g_assert_cmpint(json_object_get_int_member(obj, "bytes_done"), ==, 7);
	g_assert_cmpstr(json_object_get_string_member(obj, "peer"), ==, "127.0.0.1");
	g_assert_true(g_str_has_prefix(json_object_get_string_member(obj, "path"),
				       AS_DBUS_TRANSFERS_PATH "/"));
	id = g_strdup(json_object_get_string_member(obj, "id"));
	prefix = g_strndup(id, AS_SEND_TEST_ID_PREFIX);
	g_test_message("transfer %s on port %u", id, port);

	{
		g_autoptr(AsSendResult) result = as_send_test_run(envp, "transfers");
		g_assert_cmpint(result->exit_code, ==, AS_SEND_TEST_EXIT_OK);
		g_assert_true(g_str_has_prefix(result->out, "ID"));
		g_assert_nonnull(strstr(result->out, prefix));
		g_assert_nonnull(strstr(result->out, "listed.txt"));
	}
	/* a finished receive cannot be paused; a prefix finds it, nonsense does not */
	{
		g_autoptr(AsSendResult) result = as_send_test_run(envp, "pause", prefix);
		g_assert_cmpint(result->exit_code, ==, AS_SEND_TEST_EXIT_FAILURE);
		as_send_test_assert_one_error_line(result, "cannot pause transfer");
		g_assert_nonnull(strstr(result->err, id));
	}
	{
		g_autoptr(AsSendResult) result = as_send_test_run(envp, "cancel", "zzzz-no-such");
		g_assert_cmpint(result->exit_code, ==, AS_SEND_TEST_EXIT_NOT_FOUND);
		as_send_test_assert_one_error_line(result, "no transfer matches");
	}
	{
		g_autoptr(AsSendResult) result = as_send_test_run(envp, "limit", "zzzz", "1M");
		g_assert_cmpint(result->exit_code, ==, AS_SEND_TEST_EXIT_NOT_FOUND);
	}
	/* following a finished transfer reports how it ended */
	{
		g_autoptr(AsSendResult) result = as_send_test_run(envp, "follow", prefix, "--json");
		g_autoptr(GPtrArray) events = as_send_test_parse_lines(result->out);
		JsonObject *last;
		g_assert_cmpint(result->exit_code, ==, AS_SEND_TEST_EXIT_OK);
		g_assert_cmpuint(events->len, ==, 2);
		g_assert_cmpstr(as_send_test_event(g_ptr_array_index(events, 0)), ==, "started");
		last = g_ptr_array_index(events, 1);
		g_assert_cmpstr(as_send_test_event(last), ==, "completed");
		g_assert_cmpstr(json_object_get_string_member(last, "id"), ==, id);
		g_assert_cmpint(json_object_get_int_member(last, "bytes_done"), ==, 7);
	}
	{
		g_autoptr(AsSendResult) result = as_send_test_run(envp, "follow", id);
		g_assert_cmpint(result->exit_code, ==, AS_SEND_TEST_EXIT_OK);
		g_assert_nonnull(strstr(result->out, "Received 1 file (7 bytes) from 127.0.0.1"));
	}
}

static void
as_send_test_receive_conflict(AsSendFixture *fixture, gconstpointer user_data)
{
	g_auto(GStrv) envp = as_send_test_envp(fixture);
	g_autofree gchar *other_dir = g_build_filename(fixture->tmpdir, "elsewhere", NULL);
	g_autofree gchar *port = g_strdup_printf("%u", as_test_daemon_get_port(fixture->sender));
	g_autofree gchar *expected = g_strdup_printf("already running on port %s", port);

	/* options the running daemon does not have are an error, never ignored */
	{
		g_autoptr(AsSendResult) result =
			as_send_test_run(envp, "receive", "--port", "1", "--save-to", other_dir);
		g_assert_cmpint(result->exit_code, ==, AS_SEND_TEST_EXIT_FAILURE);
		as_send_test_assert_one_error_line(result, expected);
		g_assert_nonnull(strstr(result->err, "to change --port, --save-to"));
		g_assert_cmpstr(result->out, ==, "");
	}
	{
		g_autoptr(AsSendResult) result = as_send_test_run(envp, "receive", "--no-auth");
		g_assert_cmpint(result->exit_code, ==, AS_SEND_TEST_EXIT_FAILURE);
		as_send_test_assert_one_error_line(result, "to change --no-auth");
	}
	/* the settings it has are fine: --one-shot then waits for a file */
	{
		g_autoptr(GSubprocessLauncher) launcher =
			g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_STDOUT_PIPE);
		g_autoptr(GSubprocess) proc = NULL;
		g_autoptr(GDataInputStream) out = NULL;
		g_autoptr(GError) error = NULL;
		g_autofree gchar *line = NULL;
		g_autoptr(AsTestReply) reply = NULL;
		g_autoptr(GBytes) body = g_bytes_new_static("one\n", 4);

		g_subprocess_launcher_set_environ(launcher, envp);
		proc = g_subprocess_launcher_spawn(launcher, &error, as_send_test_ctl_path(),
						   "receive", "--port", port, "--one-shot", NULL);
		g_assert_no_error(error);
		out = g_data_input_stream_new(g_subprocess_get_stdout_pipe(proc));
		line = g_data_input_stream_read_line_utf8(out, NULL, NULL, &error);
		g_assert_no_error(error);
		g_assert_nonnull(strstr(line, port));
		g_clear_pointer(&line, g_free);
		line = g_data_input_stream_read_line_utf8(out, NULL, NULL, &error);
		g_assert_no_error(error);
		g_assert_cmpstr(line, ==, "aerosyncd keeps running after Ctrl-C.");
		g_clear_pointer(&line, g_free);

		reply = as_test_daemon_put_bytes(fixture->sender, "conflict.txt", body, NULL);
		as_test_reply_assert_status(reply, SOUP_STATUS_OK);
		line = g_data_input_stream_read_line_utf8(out, NULL, NULL, &error);
		g_assert_no_error(error);
		g_assert_true(g_str_has_prefix(line, "  [+] conflict.txt (4 bytes) sha256="));
		g_subprocess_wait_check(proc, NULL, &error);
		g_assert_no_error(error);
		/* the daemon was not ours to stop */
		g_assert_true(as_test_daemon_is_running(fixture->sender));
	}
}

/* nothing on the bus: receive starts aerosyncd itself and stops when --one-shot is done */
static void
as_send_test_receive_spawn(AsSendFixture *fixture, gconstpointer user_data)
{
	g_auto(GStrv) envp = as_send_test_envp(fixture);
	g_autofree gchar *save_dir = g_build_filename(fixture->tmpdir, "incoming", NULL);
	g_autofree gchar *saved = g_build_filename(save_dir, "spawned.txt", NULL);
	g_autoptr(GSubprocessLauncher) launcher =
		g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_STDOUT_PIPE);
	g_autoptr(GSubprocess) proc = NULL;
	g_autoptr(GDataInputStream) out = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) events = NULL;
	g_autoptr(GString) text = g_string_new(NULL);
	g_autofree gchar *line = NULL;
	g_autofree gchar *contents = NULL;
	JsonObject *listening;
	JsonObject *received;
	guint16 port;

	g_assert_nonnull(g_getenv("AEROSYNCD_PATH"));
	g_subprocess_launcher_set_environ(launcher, envp);
	proc = g_subprocess_launcher_spawn(launcher, &error, as_send_test_ctl_path(), "receive",
					   "--save-to", save_dir, "--port", "0", "--no-auth",
					   "--one-shot", "--json", NULL);
	g_assert_no_error(error);
	out = g_data_input_stream_new(g_subprocess_get_stdout_pipe(proc));

	line = g_data_input_stream_read_line_utf8(out, NULL, NULL, &error);
	g_assert_no_error(error);
	g_assert_nonnull(line);
	g_string_append_printf(text, "%s\n", line);
	events = as_send_test_parse_lines(text->str);
	listening = g_ptr_array_index(events, 0);
	g_assert_cmpstr(as_send_test_event(listening), ==, "listening");
	g_assert_true(json_object_get_boolean_member(listening, "started"));
	g_assert_false(json_object_get_boolean_member(listening, "auth_required"));
	g_assert_cmpstr(json_object_get_string_member(listening, "receive_directory"), ==,
			save_dir);
	port = (guint16)json_object_get_int_member(listening, "port");
	g_assert_cmpuint(port, >, 0);
	g_assert_true(as_send_test_name_owned_cb(fixture->connection));

	as_send_test_upload(port, "spawned.txt", "spawned\n");
	g_clear_pointer(&line, g_free);
	line = g_data_input_stream_read_line_utf8(out, NULL, NULL, &error);
	g_assert_no_error(error);
	g_assert_nonnull(line);
	g_string_append_printf(text, "%s\n", line);
	g_clear_pointer(&events, g_ptr_array_unref);
	events = as_send_test_parse_lines(text->str);
	received = g_ptr_array_index(events, 1);
	g_assert_cmpstr(as_send_test_event(received), ==, "received");
	g_assert_cmpstr(json_object_get_string_member(received, "filename"), ==, "spawned.txt");
	g_assert_cmpint(json_object_get_int_member(received, "size"), ==, 8);
	g_assert_cmpstr(json_object_get_string_member(received, "saved_path"), ==, saved);
	g_assert_cmpuint(strlen(json_object_get_string_member(received, "sha256")), ==, 64);

	/* --one-shot: aerosyncctl and the daemon it started are both gone */
	g_subprocess_wait_check(proc, NULL, &error);
	g_assert_no_error(error);
	g_assert_true(as_test_wait_for(as_send_test_name_free_cb, fixture->connection,
				       AS_SEND_TEST_NAME_TIMEOUT_MS));
	g_assert_true(g_file_get_contents(saved, &contents, NULL, NULL));
	g_assert_cmpstr(contents, ==, "spawned\n");
}

/* --- sending: needs Manager1.Send in aerosyncd --- */

static void
as_send_test_assert_stream(GPtrArray *events, const gchar *last_event)
{
	JsonObject *first;
	JsonObject *last;
	const gchar *id;

	g_assert_cmpuint(events->len, >=, 2);
	first = g_ptr_array_index(events, 0);
	last = g_ptr_array_index(events, events->len - 1);
	g_assert_cmpstr(as_send_test_event(first), ==, "started");
	id = json_object_get_string_member(first, "id");
	g_assert_cmpstr(id, !=, "");
	g_assert_cmpstr(as_send_test_event(last), ==, last_event);
	for (guint i = 0; i < events->len; i++) {
		JsonObject *obj = g_ptr_array_index(events, i);
		const gchar *event = as_send_test_event(obj);
		g_assert_cmpstr(json_object_get_string_member(obj, "id"), ==, id);
		if (i > 0 && i + 1 < events->len) {
			g_assert_true(g_strcmp0(event, "state") == 0 ||
				      g_strcmp0(event, "progress") == 0);
		}
		if (g_strcmp0(event, "progress") == 0) {
			const gchar *keys[] = {"bytes_done", "bytes_total", "rate", "eta",
					       "files_done", "files",	    NULL};
			for (guint j = 0; keys[j] != NULL; j++)
				g_assert_true(json_object_has_member(obj, keys[j]));
		}
	}
}

static void
as_send_test_real(AsSendFixture *fixture, gconstpointer user_data)
{
	g_auto(GStrv) envp = as_send_test_envp(fixture);
	g_autofree gchar *src = g_build_filename(fixture->tmpdir, "payload.bin", NULL);
	g_autofree gchar *dest = NULL;
	g_autofree gchar *sha = NULL;
	g_autofree gchar *received = NULL;
	g_autofree gchar *received_sha = NULL;
	g_autoptr(AsSendResult) result = NULL;
	g_autoptr(GPtrArray) events = NULL;
	JsonObject *last;

	if (!as_send_test_daemon_can_send(fixture))
		return;
	sha = as_test_write_random_file(src, AS_SEND_TEST_PAYLOAD_SIZE, AS_SEND_TEST_PAYLOAD_SEED);
	dest = g_strdup_printf("127.0.0.1:%u", as_test_daemon_get_port(fixture->receiver));
	result = as_send_test_run(envp, "send", src, dest, "--token-file", fixture->token_file,
				  "--json");
	g_assert_cmpint(result->exit_code, ==, AS_SEND_TEST_EXIT_OK);
	g_assert_cmpstr(result->err, ==, "");
	events = as_send_test_parse_lines(result->out);
	as_send_test_assert_stream(events, "completed");
	last = g_ptr_array_index(events, events->len - 1);
	g_assert_cmpint(json_object_get_int_member(last, "bytes_done"), ==,
			AS_SEND_TEST_PAYLOAD_SIZE);
	g_assert_cmpint(json_object_get_int_member(last, "files_done"), ==, 1);
	g_assert_cmpint(json_object_get_int_member(last, "files_failed"), ==, 0);
	g_assert_false(json_object_has_member(last, "error"));

	received = g_build_filename(as_test_daemon_get_save_dir(fixture->receiver), "payload.bin",
				    NULL);
	received_sha = as_test_file_sha256(received);
	g_assert_cmpstr(received_sha, ==, sha);

	/* the sender lists it as a send to the receiver */
	{
		g_autoptr(AsSendResult) list = as_send_test_run(envp, "transfers", "--json");
		g_assert_cmpint(list->exit_code, ==, AS_SEND_TEST_EXIT_OK);
		g_assert_nonnull(strstr(list->out, "\"direction\" : \"send\""));
		g_assert_nonnull(strstr(list->out, dest));
	}
}

static void
as_send_test_detach_follow(AsSendFixture *fixture, gconstpointer user_data)
{
	g_auto(GStrv) envp = as_send_test_envp(fixture);
	g_autofree gchar *src = g_build_filename(fixture->tmpdir, "detached.bin", NULL);
	g_autofree gchar *dest = NULL;
	g_autofree gchar *sha = NULL;
	g_autofree gchar *id = NULL;
	g_autoptr(GPtrArray) events = NULL;

	if (!as_send_test_daemon_can_send(fixture))
		return;
	sha = as_test_write_random_file(src, AS_SEND_TEST_PAYLOAD_SIZE, AS_SEND_TEST_PAYLOAD_SEED);
	dest = g_strdup_printf("127.0.0.1:%u", as_test_daemon_get_port(fixture->receiver));
	{
		g_autoptr(AsSendResult) result = as_send_test_run(
			envp, "send", src, dest, "--token-file", fixture->token_file, "--detach");
		g_assert_cmpint(result->exit_code, ==, AS_SEND_TEST_EXIT_OK);
		/* the id alone on stdout, for scripts */
		g_assert_null(strchr(g_strchomp(result->out), '\n'));
		id = g_strdup(result->out);
		g_assert_cmpstr(id, !=, "");
	}
	{
		g_autoptr(AsSendResult) result = as_send_test_run(envp, "follow", id, "--json");
		g_assert_cmpint(result->exit_code, ==, AS_SEND_TEST_EXIT_OK);
		events = as_send_test_parse_lines(result->out);
		as_send_test_assert_stream(events, "completed");
		g_assert_cmpstr(json_object_get_string_member(g_ptr_array_index(events, 0), "id"),
				==, id);
	}
}

static void
as_send_test_wrong_token(AsSendFixture *fixture, gconstpointer user_data)
{
	g_auto(GStrv) envp = as_send_test_envp(fixture);
	g_autofree gchar *src = g_build_filename(fixture->tmpdir, "refused.txt", NULL);
	g_autofree gchar *dest = NULL;
	g_autofree gchar *refused = NULL;
	g_autoptr(AsSendResult) result = NULL;
	g_autoptr(GPtrArray) events = NULL;
	JsonObject *last;

	if (!as_send_test_daemon_can_send(fixture))
		return;
	as_send_test_write_file(src, "refused\n");
	dest = g_strdup_printf("127.0.0.1:%u", as_test_daemon_get_port(fixture->receiver));
	result = as_send_test_run(envp, "send", src, dest, "--token-file", fixture->bad_token_file,
				  "--json");
	/* never 0 on failure, and one clear line */
	g_assert_cmpint(result->exit_code, !=, AS_SEND_TEST_EXIT_OK);
	g_assert_cmpint(result->exit_code, !=, AS_SEND_TEST_EXIT_PEER_UNREACHABLE);
	as_send_test_assert_one_error_line(result, dest);
	events = as_send_test_parse_lines(result->out);
	as_send_test_assert_stream(events, "failed");
	last = g_ptr_array_index(events, events->len - 1);
	g_assert_cmpstr(json_object_get_string_member(last, "error"), !=, "");
	refused = g_build_filename(as_test_daemon_get_save_dir(fixture->receiver), "refused.txt",
				   NULL);
	g_assert_false(g_file_test(refused, G_FILE_TEST_EXISTS));
}

static void
as_send_test_receiver_down(AsSendFixture *fixture, gconstpointer user_data)
{
	g_auto(GStrv) envp = as_send_test_envp(fixture);
	g_autofree gchar *src = g_build_filename(fixture->tmpdir, "nowhere.txt", NULL);
	g_autofree gchar *dest = g_strdup_printf("127.0.0.1:%u", as_send_test_free_port());
	g_autoptr(AsSendResult) result = NULL;

	if (!as_send_test_daemon_can_send(fixture))
		return;
	as_send_test_write_file(src, "nowhere\n");
	result = as_send_test_run(envp, "send", src, dest, "--token-file", fixture->bad_token_file);
	g_assert_cmpint(result->exit_code, ==, AS_SEND_TEST_EXIT_PEER_UNREACHABLE);
	as_send_test_assert_one_error_line(result, "cannot reach the receiver");
}

int
main(int argc, char **argv)
{
	gint ret;

	as_test_init(&argc, &argv);
	as_send_test_bus = g_test_dbus_new(G_TEST_DBUS_NONE);
	g_test_dbus_up(as_send_test_bus);

#define AS_SEND_ADD(path, setup, func)                                                             \
	g_test_add(path, AsSendFixture, NULL, setup, func, as_send_fixture_teardown)

	AS_SEND_ADD("/aerosync/send/usage", as_send_fixture_setup, as_send_test_usage);
	AS_SEND_ADD("/aerosync/send/limit-parsing", as_send_fixture_setup,
		    as_send_test_limit_parsing);
	AS_SEND_ADD("/aerosync/send/transfers", as_send_fixture_setup_sender,
		    as_send_test_transfers);
	AS_SEND_ADD("/aerosync/send/receive-conflict", as_send_fixture_setup_sender,
		    as_send_test_receive_conflict);
	AS_SEND_ADD("/aerosync/send/receive-spawn", as_send_fixture_setup,
		    as_send_test_receive_spawn);
	AS_SEND_ADD("/aerosync/send/real", as_send_fixture_setup_pair, as_send_test_real);
	AS_SEND_ADD("/aerosync/send/detach-follow", as_send_fixture_setup_pair,
		    as_send_test_detach_follow);
	AS_SEND_ADD("/aerosync/send/wrong-token", as_send_fixture_setup_pair,
		    as_send_test_wrong_token);
	AS_SEND_ADD("/aerosync/send/receiver-down", as_send_fixture_setup_sender,
		    as_send_test_receiver_down);
	ret = g_test_run();
	g_test_dbus_down(as_send_test_bus);
	return ret;
}
