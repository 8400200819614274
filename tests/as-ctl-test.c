/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "AsCtlTest"

#include "config.h"

#include <gio/gio.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <libsoup/soup.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "as-keys.h"
#include "as-test-daemon.h"

/* bounds for the daemon to appear on the bus, and to go away after SIGTERM */
#define AS_CTL_TEST_APPEAR_TIMEOUT_S 10
#define AS_CTL_TEST_EXIT_TIMEOUT_S   10
#define AS_CTL_TEST_N_TOKENS	     8
/* --expires 1h in the token test, and how far the daemon's clock may lag ours */
#define AS_CTL_TEST_EXPIRES_S	  3600
#define AS_CTL_TEST_CLOCK_SLACK_S 60

#define AS_CTL_TEST_UPLOAD_NAME	   "hello.txt"
#define AS_CTL_TEST_UPLOAD_CONTENT "hello aerosync\n"

/* the exit codes documented by aerosyncctl --help */
#define AS_CTL_TEST_EXIT_OK	     0
#define AS_CTL_TEST_EXIT_USAGE	     2
#define AS_CTL_TEST_EXIT_NOT_FOUND   3
#define AS_CTL_TEST_EXIT_UNREACHABLE 4

typedef struct {
	gchar *tmpdir;		     /* (owned): removed in teardown */
	gchar *save_dir;	     /* (owned): the daemon's --save-to */
	GDBusConnection *connection; /* (owned): our own connection to the test bus */
	GPid daemon_pid;
	gboolean daemon_running;
	gint daemon_wait_status;
} AsCtlFixture;

typedef struct {
	gint exit_code;
	gchar *out; /* (owned) */
	gchar *err; /* (owned) */
} AsCtlResult;

static void
as_ctl_result_free(AsCtlResult *result)
{
	g_free(result->out);
	g_free(result->err);
	g_free(result);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(AsCtlResult, as_ctl_result_free)

static const gchar *
as_ctl_test_get_path(const gchar *env_name)
{
	const gchar *path = g_getenv(env_name);
	if (path == NULL)
		g_error("%s is not set: run this test through 'meson test'", env_name);
	return path;
}

/* the environment of aerosyncctl: the test bus from GTestDBus, no colour */
static gchar **
as_ctl_test_get_envp(void)
{
	gchar **envp = g_get_environ();
	envp = g_environ_unsetenv(envp, "AEROSYNC_BUS_ADDRESS");
	envp = g_environ_setenv(envp, "NO_COLOR", "1", TRUE);
	envp = g_environ_setenv(envp, "LC_ALL", "C.UTF-8", TRUE);
	return envp;
}

static AsCtlResult *
as_ctl_test_run_argv(gchar **envp, const gchar *const *args)
{
	g_autoptr(GPtrArray) argv = g_ptr_array_new();
	g_autoptr(GError) error = NULL;
	g_auto(GStrv) envp_default = NULL;
	g_autofree gchar *command = g_strjoinv(" ", (gchar **)args);
	AsCtlResult *result = g_new0(AsCtlResult, 1);
	gint wait_status = 0;

	if (envp == NULL) {
		envp_default = as_ctl_test_get_envp();
		envp = envp_default;
	}
	g_ptr_array_add(argv, (gpointer)as_ctl_test_get_path("AEROSYNCCTL_PATH"));
	for (guint i = 0; args[i] != NULL; i++)
		g_ptr_array_add(argv, (gpointer)args[i]);
	g_ptr_array_add(argv, NULL);
	g_spawn_sync(NULL, (gchar **)argv->pdata, envp, G_SPAWN_DEFAULT, NULL, NULL, &result->out,
		     &result->err, &wait_status, &error);
	g_assert_no_error(error);
	g_assert_true(WIFEXITED(wait_status));
	result->exit_code = WEXITSTATUS(wait_status);
	/* keep secrets out of the test log */
	g_test_message("aerosyncctl %s -> %d\n%s%s", command, result->exit_code,
		       g_strv_contains(args, "generate") || g_strv_contains(args, "new")
			       ? "(stdout holds a token)\n"
			       : result->out,
		       result->err);
	return result;
}

#define as_ctl_test_run(envp, ...)                                                                 \
	as_ctl_test_run_argv(envp, (const gchar *const[]){__VA_ARGS__, NULL})

/* errors are exactly one line on stderr, named after the program, and nothing on stdout */
static void
as_ctl_test_assert_one_error_line(AsCtlResult *result)
{
	const gchar *newline = strchr(result->err, '\n');
	g_assert_true(g_str_has_prefix(result->err, "aerosyncctl: "));
	g_assert_nonnull(newline);
	g_assert_cmpint(newline[1], ==, '\0');
	g_assert_cmpstr(result->out, ==, "");
}

static JsonNode *
as_ctl_test_parse_json(const gchar *text, JsonNodeType node_type)
{
	g_autoptr(JsonParser) parser = json_parser_new();
	g_autoptr(GError) error = NULL;
	JsonNode *root;

	json_parser_load_from_data(parser, text, -1, &error);
	g_assert_no_error(error);
	root = json_parser_steal_root(parser);
	g_assert_nonnull(root);
	g_assert_cmpint(json_node_get_node_type(root), ==, node_type);
	return root;
}

/* the token list entry with @id, or NULL */
static JsonObject *
as_ctl_test_find_token(JsonArray *tokens, const gchar *id)
{
	for (guint i = 0; i < json_array_get_length(tokens); i++) {
		JsonObject *obj = json_array_get_object_element(tokens, i);
		if (g_strcmp0(json_object_get_string_member(obj, "id"), id) == 0)
			return obj;
	}
	return NULL;
}

static JsonNode *
as_ctl_test_list_tokens(void)
{
	g_autoptr(AsCtlResult) result = as_ctl_test_run(NULL, "token", "list", "--json");
	g_assert_cmpint(result->exit_code, ==, AS_CTL_TEST_EXIT_OK);
	return as_ctl_test_parse_json(result->out, JSON_NODE_ARRAY);
}

/* POSTs one small file to the daemon's /upload like a sender would; returns the HTTP status */
static guint
as_ctl_test_upload(guint16 port, const gchar *token)
{
	g_autoptr(SoupSession) session = soup_session_new();
	g_autoptr(SoupMultipart) multipart = soup_multipart_new(SOUP_FORM_MIME_TYPE_MULTIPART);
	g_autoptr(GBytes) body =
		g_bytes_new_static(AS_CTL_TEST_UPLOAD_CONTENT, strlen(AS_CTL_TEST_UPLOAD_CONTENT));
	g_autoptr(SoupMessage) msg = NULL;
	g_autoptr(GBytes) reply = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *uri = g_strdup_printf("http://127.0.0.1:%u/upload", port);
	g_autofree gchar *authorization = g_strdup_printf("Bearer %s", token);

	soup_multipart_append_form_file(multipart, "file", AS_CTL_TEST_UPLOAD_NAME,
					"application/octet-stream", body);
	msg = soup_message_new_from_multipart(uri, multipart);
	soup_message_headers_replace(soup_message_get_request_headers(msg), "Authorization",
				     authorization);
	reply = soup_session_send_and_read(session, msg, NULL, &error);
	g_assert_no_error(error);
	return soup_message_get_status(msg);
}

/* the daemon */

static void
as_ctl_test_child_exited_cb(GPid pid, gint wait_status, gpointer user_data)
{
	AsCtlFixture *fixture = user_data;
	fixture->daemon_running = FALSE;
	fixture->daemon_wait_status = wait_status;
	g_spawn_close_pid(pid);
}

static gboolean
as_ctl_test_timeout_cb(gpointer user_data)
{
	gboolean *timed_out = user_data;
	*timed_out = TRUE;
	return G_SOURCE_REMOVE;
}

static void
as_ctl_test_name_appeared_cb(GDBusConnection *connection,
			     const gchar *name,
			     const gchar *name_owner,
			     gpointer user_data)
{
	gboolean *owned = user_data;
	*owned = TRUE;
}

static void
as_ctl_test_name_vanished_cb(GDBusConnection *connection, const gchar *name, gpointer user_data)
{
	gboolean *owned = user_data;
	*owned = FALSE;
}

/* iterates the main context until org.aerosync is (or is not) owned, or the bound passes */
static gboolean
as_ctl_test_wait_for_name(AsCtlFixture *fixture, gboolean want_owned)
{
	gboolean owned = !want_owned;
	gboolean timed_out = FALSE;
	guint watch_id;
	guint timeout_id;

	watch_id = g_bus_watch_name_on_connection(
		fixture->connection, AS_DBUS_NAME, G_BUS_NAME_WATCHER_FLAGS_NONE,
		as_ctl_test_name_appeared_cb, as_ctl_test_name_vanished_cb, &owned, NULL);
	timeout_id = g_timeout_add_seconds(AS_CTL_TEST_APPEAR_TIMEOUT_S, as_ctl_test_timeout_cb,
					   &timed_out);
	while (owned != want_owned && !timed_out) {
		/* a daemon that died will never appear */
		if (want_owned && !fixture->daemon_running)
			break;
		g_main_context_iteration(NULL, TRUE);
	}
	g_bus_unwatch_name(watch_id);
	if (!timed_out)
		g_source_remove(timeout_id);
	return owned == want_owned;
}

static void
as_ctl_test_setup(AsCtlFixture *fixture, gconstpointer user_data)
{
	g_autoptr(GError) error = NULL;

	fixture->tmpdir = g_dir_make_tmp("as-ctl-test-XXXXXX", &error);
	g_assert_no_error(error);
	fixture->save_dir = g_build_filename(fixture->tmpdir, "received", NULL);
	g_assert_cmpint(g_mkdir_with_parents(fixture->save_dir, 0700), ==, 0);
	fixture->connection = g_dbus_connection_new_for_address_sync(
		g_getenv("DBUS_SESSION_BUS_ADDRESS"),
		G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
			G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
		NULL, NULL, &error);
	g_assert_no_error(error);
}

/* a failed assertion aborts the test: the daemon must not outlive it and hold its pipes */
static void
as_ctl_test_child_setup_cb(gpointer user_data)
{
	prctl(PR_SET_PDEATHSIG, SIGTERM);
}

static void
as_ctl_test_setup_daemon(AsCtlFixture *fixture, gconstpointer user_data)
{
	const gchar *xdg_dirs[] = {"XDG_CONFIG_HOME", "XDG_STATE_HOME",	 "XDG_DATA_HOME",
				   "XDG_CACHE_HOME",  "XDG_RUNTIME_DIR", NULL};
	const gchar *argv[] = {as_ctl_test_get_path("AEROSYNCD_PATH"),
			       "--session",
			       "--bind",
			       "127.0.0.1",
			       "--port",
			       "0",
			       "--save-to",
			       NULL,
			       NULL};
	g_auto(GStrv) envp = g_get_environ();
	g_autoptr(GError) error = NULL;

	as_ctl_test_setup(fixture, user_data);
	argv[G_N_ELEMENTS(argv) - 2] = fixture->save_dir;

	/* keep the daemon away from the real user's config, tokens and history */
	for (guint i = 0; xdg_dirs[i] != NULL; i++) {
		g_autofree gchar *dir = g_build_filename(fixture->tmpdir, xdg_dirs[i], NULL);
		g_assert_cmpint(g_mkdir_with_parents(dir, 0700), ==, 0);
		envp = g_environ_setenv(envp, xdg_dirs[i], dir, TRUE);
	}
	envp = g_environ_setenv(envp, "HOME", fixture->tmpdir, TRUE);

	/* the daemon's stdout goes to our stderr: stdout carries TAP */
	g_spawn_async_with_pipes_and_fds(NULL, argv, (const gchar *const *)envp,
					 G_SPAWN_DO_NOT_REAP_CHILD, as_ctl_test_child_setup_cb,
					 NULL, -1, STDERR_FILENO, -1, NULL, NULL, 0,
					 &fixture->daemon_pid, NULL, NULL, NULL, &error);
	g_assert_no_error(error);
	fixture->daemon_running = TRUE;
	g_child_watch_add(fixture->daemon_pid, as_ctl_test_child_exited_cb, fixture);

	if (!as_ctl_test_wait_for_name(fixture, TRUE)) {
		g_error("aerosyncd did not own %s within %d s (running: %d)", AS_DBUS_NAME,
			AS_CTL_TEST_APPEAR_TIMEOUT_S, fixture->daemon_running);
	}
}

static void
as_ctl_test_teardown(AsCtlFixture *fixture, gconstpointer user_data)
{
	if (fixture->daemon_pid != 0) {
		gboolean timed_out = FALSE;
		guint timeout_id;

		if (fixture->daemon_running)
			kill(fixture->daemon_pid, SIGTERM);
		timeout_id = g_timeout_add_seconds(AS_CTL_TEST_EXIT_TIMEOUT_S,
						   as_ctl_test_timeout_cb, &timed_out);
		while (fixture->daemon_running && !timed_out)
			g_main_context_iteration(NULL, TRUE);
		if (!timed_out)
			g_source_remove(timeout_id);
		if (fixture->daemon_running) {
			g_test_message("aerosyncd ignored SIGTERM, killing it");
			kill(fixture->daemon_pid, SIGKILL);
			while (fixture->daemon_running)
				g_main_context_iteration(NULL, TRUE);
		}
		g_test_message("aerosyncd exit status %d", fixture->daemon_wait_status);
		/* the next test's daemon must not race the old owner of the name */
		g_assert_true(as_ctl_test_wait_for_name(fixture, FALSE));
	}
	g_clear_object(&fixture->connection);
	as_test_rm_rf(fixture->tmpdir);
	g_free(fixture->tmpdir);
	g_free(fixture->save_dir);
}

/* tests */

/* the command line is checked before any bus call: a dead bus address must not matter */
static void
as_ctl_test_usage(AsCtlFixture *fixture, gconstpointer user_data)
{
	g_auto(GStrv) envp = as_ctl_test_get_envp();
	g_autofree gchar *version = g_strdup_printf("aerosyncctl %s\n", PACKAGE_VERSION);
	const gchar *const bad[][5] = {
		{"frobnicate", NULL},
		{"token", NULL},
		{"token", "frob", NULL},
		{"token", "revoke", NULL},
		{"token", "revoke", "abcd", "extra", NULL},
		{"token", "revoke", "a", NULL},
		{"status", "a", "b", NULL},
		{"status", "--limit", "3", NULL},
		{"token", "generate", "--expires", "7x", NULL},
		{"token", "generate", "--expires", "0", NULL},
		{"history", "--sent", "--received", NULL},
		{"history", "--limit", "0", NULL},
		{"history", "--limit", "many", NULL},
		{"--json", NULL},
		{"help", "frob", NULL},
	};

	envp = g_environ_setenv(envp, "DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent", TRUE);
	for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
		g_autoptr(AsCtlResult) result = as_ctl_test_run_argv(envp, bad[i]);
		g_assert_cmpint(result->exit_code, ==, AS_CTL_TEST_EXIT_USAGE);
		as_ctl_test_assert_one_error_line(result);
	}

	/* --help documents the verbs and the exit codes */
	{
		g_autoptr(AsCtlResult) result = as_ctl_test_run(envp, "--help");
		g_assert_cmpint(result->exit_code, ==, AS_CTL_TEST_EXIT_OK);
		g_assert_nonnull(strstr(result->out, "token revoke PREFIX"));
		g_assert_nonnull(strstr(result->out, "history"));
		g_assert_nonnull(strstr(result->out, "4  aerosyncd cannot be reached"));
		g_assert_cmpstr(result->err, ==, "");
	}
	{
		g_autoptr(AsCtlResult) result = as_ctl_test_run(envp, "help", "token", "generate");
		g_assert_cmpint(result->exit_code, ==, AS_CTL_TEST_EXIT_OK);
		g_assert_nonnull(strstr(result->out, "--expires DURATION"));
	}
	{
		g_autoptr(AsCtlResult) result = as_ctl_test_run(envp, "history", "--help");
		g_assert_cmpint(result->exit_code, ==, AS_CTL_TEST_EXIT_OK);
		g_assert_nonnull(strstr(result->out, "--success-only"));
	}
	{
		g_autoptr(AsCtlResult) result = as_ctl_test_run(envp, "--version");
		g_assert_cmpint(result->exit_code, ==, AS_CTL_TEST_EXIT_OK);
		g_assert_cmpstr(result->out, ==, version);
	}
	{
		g_autoptr(AsCtlResult) result = as_ctl_test_run(envp, "help", "--json");
		g_autoptr(JsonNode) root = NULL;
		JsonArray *verbs;
		g_assert_cmpint(result->exit_code, ==, AS_CTL_TEST_EXIT_OK);
		root = as_ctl_test_parse_json(result->out, JSON_NODE_OBJECT);
		verbs = json_object_get_array_member(json_node_get_object(root), "verbs");
		g_assert_cmpuint(json_array_get_length(verbs), >=, 5);
	}
}

static void
as_ctl_test_unreachable(AsCtlFixture *fixture, gconstpointer user_data)
{
	g_auto(GStrv) envp = as_ctl_test_get_envp();
	g_autofree gchar *missing = g_build_filename(fixture->tmpdir, "no-such-bus", NULL);
	g_autofree gchar *address = g_strdup_printf("unix:path=%s", missing);

	/* the test bus is up but nobody owns org.aerosync and nothing can activate it */
	{
		g_autoptr(AsCtlResult) result = as_ctl_test_run(NULL, "status");
		g_assert_cmpint(result->exit_code, ==, AS_CTL_TEST_EXIT_UNREACHABLE);
		as_ctl_test_assert_one_error_line(result);
		g_assert_nonnull(strstr(result->err, "cannot reach aerosyncd on the session bus"));
	}
	{
		g_autoptr(AsCtlResult) result = as_ctl_test_run(NULL, "token", "list", "--json");
		g_assert_cmpint(result->exit_code, ==, AS_CTL_TEST_EXIT_UNREACHABLE);
		as_ctl_test_assert_one_error_line(result);
	}

	/* AEROSYNC_BUS_ADDRESS overrides the session bus */
	envp = g_environ_setenv(envp, "AEROSYNC_BUS_ADDRESS", address, TRUE);
	{
		g_autoptr(AsCtlResult) result =
			as_ctl_test_run(envp, "token", "generate", "--expires", "30m", "--json");
		g_assert_cmpint(result->exit_code, ==, AS_CTL_TEST_EXIT_UNREACHABLE);
		as_ctl_test_assert_one_error_line(result);
		g_assert_nonnull(strstr(result->err, missing));
	}
}

static void
as_ctl_test_status(AsCtlFixture *fixture, gconstpointer user_data)
{
	g_autoptr(AsCtlResult) result = as_ctl_test_run(NULL, "status", "--json");
	g_autoptr(JsonNode) root = NULL;
	JsonObject *obj;
	JsonArray *protocols;
	const gchar *backend;

	g_assert_cmpint(result->exit_code, ==, AS_CTL_TEST_EXIT_OK);
	g_assert_cmpstr(result->err, ==, "");
	root = as_ctl_test_parse_json(result->out, JSON_NODE_OBJECT);
	obj = json_node_get_object(root);
	g_assert_cmpstr(json_object_get_string_member(obj, "version"), ==, PACKAGE_VERSION);
	g_assert_cmpstr(json_object_get_string_member(obj, "status"), ==, "ok");
	g_assert_cmpstr(json_object_get_string_member(obj, "receive_directory"), ==,
			fixture->save_dir);
	/* --port 0 picked a real port */
	g_assert_cmpint(json_object_get_int_member(obj, "http_port"), >, 0);
	g_assert_cmpint(json_object_get_int_member(obj, "received_files"), ==, 0);
	g_assert_cmpint(json_object_get_int_member(obj, "active_transfers"), ==, 0);
	g_assert_cmpint(json_object_get_int_member(obj, "total_bytes"), >, 0);
	g_assert_cmpint(json_object_get_int_member(obj, "free_bytes"), <=,
			json_object_get_int_member(obj, "total_bytes"));
	g_assert_true(JSON_NODE_HOLDS_VALUE(json_object_get_member(obj, "auth_required")));
	g_assert_cmpint(json_node_get_value_type(json_object_get_member(obj, "auth_required")), ==,
			G_TYPE_BOOLEAN);
	protocols = json_object_get_array_member(obj, "protocols");
	g_assert_nonnull(protocols);
	g_assert_cmpstr(json_array_get_string_element(protocols, 0), ==, "http");
	backend = json_object_get_string_member(obj, "token_backend");
	g_assert_true(g_strcmp0(backend, "file") == 0 || g_strcmp0(backend, "secret-service") == 0);

	/* the human form */
	{
		g_autoptr(AsCtlResult) human = as_ctl_test_run(NULL, "status");
		g_autofree gchar *port_line = g_strdup_printf(
			" %" G_GINT64_FORMAT "\n", json_object_get_int_member(obj, "http_port"));
		g_assert_cmpint(human->exit_code, ==, AS_CTL_TEST_EXIT_OK);
		g_assert_nonnull(strstr(human->out, "Version:"));
		g_assert_nonnull(strstr(human->out, " free of "));
		g_assert_nonnull(strstr(human->out, port_line));
		g_assert_nonnull(strstr(human->out, fixture->save_dir));
#if HAVE_QUIC
		/* the fingerprint a sender pins, whole, next to the QUIC port */
		{
			g_autofree gchar *cert_line = g_strdup_printf(
				" %s\n", json_object_get_string_member(obj, "cert_sha256"));
			g_autofree gchar *quic_line =
				g_strdup_printf("QUIC port:            %" G_GINT64_FORMAT "\n",
						json_object_get_int_member(obj, "quic_port"));
			g_assert_cmpint(json_object_get_int_member(obj, "quic_port"), >, 0);
			g_assert_nonnull(strstr(human->out, cert_line));
			g_assert_nonnull(strstr(human->out, quic_line));
		}
#endif
		/* NO_COLOR is set: no escape sequences */
		g_assert_null(strchr(human->out, '\033'));
	}

	/* AEROSYNC_BUS_ADDRESS wins over a broken session bus address */
	{
		g_auto(GStrv) envp = as_ctl_test_get_envp();
		g_autoptr(AsCtlResult) result_override = NULL;
		envp = g_environ_setenv(envp, "AEROSYNC_BUS_ADDRESS",
					g_getenv("DBUS_SESSION_BUS_ADDRESS"), TRUE);
		envp = g_environ_setenv(envp, "DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent",
					TRUE);
		result_override = as_ctl_test_run(envp, "status", "--json");
		g_assert_cmpint(result_override->exit_code, ==, AS_CTL_TEST_EXIT_OK);
	}
}

static void
as_ctl_test_token(AsCtlFixture *fixture, gconstpointer user_data)
{
	g_autoptr(AsCtlResult) result = NULL;
	g_autoptr(JsonNode) generated = NULL;
	g_autoptr(JsonNode) tokens = NULL;
	g_autofree gchar *id = NULL;
	g_autofree gchar *token = NULL;
	g_autofree gchar *prefix = NULL;
	g_autofree gchar *unknown = NULL;
	g_autofree gchar *expires_str = g_strdup_printf("%ds", AS_CTL_TEST_EXPIRES_S);
	JsonObject *obj;
	gint64 created;
	gint64 expires;

	result = as_ctl_test_run(NULL, "token", "generate", "--label", "laptop", "--expires",
				 expires_str, "--json");
	g_assert_cmpint(result->exit_code, ==, AS_CTL_TEST_EXIT_OK);
	generated = as_ctl_test_parse_json(result->out, JSON_NODE_OBJECT);
	obj = json_node_get_object(generated);
	token = g_strdup(json_object_get_string_member(obj, "token"));
	id = g_strdup(json_object_get_string_member(obj, "id"));
	g_assert_nonnull(token);
	g_assert_nonnull(id);
	g_assert_cmpuint(strlen(id), >=, 4);
	g_assert_cmpstr(token, !=, id);
	g_assert_cmpstr(json_object_get_string_member(obj, "label"), ==, "laptop");
	created = json_object_get_int_member(obj, "created");
	expires = json_object_get_int_member(obj, "expires");
	g_assert_cmpint(created, >, 0);
	g_assert_cmpint(expires - created, >=, AS_CTL_TEST_EXPIRES_S - AS_CTL_TEST_CLOCK_SLACK_S);
	g_assert_cmpint(expires - created, <=, AS_CTL_TEST_EXPIRES_S + AS_CTL_TEST_CLOCK_SLACK_S);
	g_clear_pointer(&result, as_ctl_result_free);

	/* listed as active, and the secret is never listed */
	result = as_ctl_test_run(NULL, "token", "list", "--json");
	g_assert_cmpint(result->exit_code, ==, AS_CTL_TEST_EXIT_OK);
	g_assert_null(strstr(result->out, token));
	tokens = as_ctl_test_parse_json(result->out, JSON_NODE_ARRAY);
	obj = as_ctl_test_find_token(json_node_get_array(tokens), id);
	g_assert_nonnull(obj);
	g_assert_cmpstr(json_object_get_string_member(obj, "status"), ==, "active");
	g_assert_false(json_object_get_boolean_member(obj, "revoked"));
	g_clear_pointer(&tokens, json_node_unref);
	g_clear_pointer(&result, as_ctl_result_free);

	result = as_ctl_test_run(NULL, "token", "list");
	g_assert_cmpint(result->exit_code, ==, AS_CTL_TEST_EXIT_OK);
	g_assert_nonnull(strstr(result->out, "STATUS"));
	g_assert_nonnull(strstr(result->out, id));
	g_assert_nonnull(strstr(result->out, "active"));
	g_clear_pointer(&result, as_ctl_result_free);

	/* an id that differs from the real one in its last character matches nothing */
	unknown = g_strdup(id);
	unknown[strlen(unknown) - 1] = unknown[strlen(unknown) - 1] == '0' ? '1' : '0';
	result = as_ctl_test_run(NULL, "token", "revoke", unknown);
	g_assert_cmpint(result->exit_code, ==, AS_CTL_TEST_EXIT_NOT_FOUND);
	as_ctl_test_assert_one_error_line(result);
	g_assert_nonnull(strstr(result->err, "cannot revoke token"));
	/* the remote error prefix is stripped */
	g_assert_null(strstr(result->err, "GDBus.Error"));
	g_clear_pointer(&result, as_ctl_result_free);

	/* revoke by a prefix of the id */
	prefix = g_strndup(id, 4);
	result = as_ctl_test_run(NULL, "token", "revoke", prefix, "--json");
	g_assert_cmpint(result->exit_code, ==, AS_CTL_TEST_EXIT_OK);
	g_clear_pointer(&generated, json_node_unref);
	generated = as_ctl_test_parse_json(result->out, JSON_NODE_OBJECT);
	g_assert_true(json_object_get_boolean_member(json_node_get_object(generated), "revoked"));
	g_clear_pointer(&result, as_ctl_result_free);

	tokens = as_ctl_test_list_tokens();
	obj = as_ctl_test_find_token(json_node_get_array(tokens), id);
	g_assert_nonnull(obj);
	g_assert_cmpstr(json_object_get_string_member(obj, "status"), ==, "revoked");
	g_assert_true(json_object_get_boolean_member(obj, "revoked"));
}

static void
as_ctl_test_token_human(AsCtlFixture *fixture, gconstpointer user_data)
{
	g_autoptr(AsCtlResult) result = as_ctl_test_run(NULL, "token", "new");
	g_autoptr(JsonNode) tokens = NULL;
	g_autofree gchar *token = NULL;

	/* only the secret on stdout, the details and the hint on stderr */
	g_assert_cmpint(result->exit_code, ==, AS_CTL_TEST_EXIT_OK);
	g_assert_nonnull(strchr(result->out, '\n'));
	g_assert_cmpint(strchr(result->out, '\n')[1], ==, '\0');
	token = g_strndup(result->out, strlen(result->out) - 1);
	g_assert_cmpuint(strlen(token), >, 0);
	g_assert_nonnull(strstr(result->err, "--token-file"));
	g_assert_nonnull(strstr(result->err, "expires never"));
	g_assert_null(strstr(result->err, token));

	tokens = as_ctl_test_list_tokens();
	g_assert_cmpuint(json_array_get_length(json_node_get_array(tokens)), ==, 1);
	g_assert_cmpint(
		json_object_get_int_member(
			json_array_get_object_element(json_node_get_array(tokens), 0), "expires"),
		==, 0);
}

/* a prefix under 4 characters is refused before it can revoke anything */
static void
as_ctl_test_token_short_prefix(AsCtlFixture *fixture, gconstpointer user_data)
{
	g_autoptr(JsonNode) tokens = NULL;
	g_autoptr(AsCtlResult) result = NULL;
	g_autofree gchar *prefix = NULL;
	JsonArray *array;

	for (guint i = 0; i < AS_CTL_TEST_N_TOKENS; i++) {
		g_autoptr(AsCtlResult) generated =
			as_ctl_test_run(NULL, "token", "generate", "--json");
		g_assert_cmpint(generated->exit_code, ==, AS_CTL_TEST_EXIT_OK);
	}
	tokens = as_ctl_test_list_tokens();
	array = json_node_get_array(tokens);
	g_assert_cmpuint(json_array_get_length(array), ==, AS_CTL_TEST_N_TOKENS);
	prefix = g_strndup(
		json_object_get_string_member(json_array_get_object_element(array, 0), "id"), 1);
	g_clear_pointer(&tokens, json_node_unref);

	result = as_ctl_test_run(NULL, "token", "revoke", prefix, "--json");
	g_assert_cmpint(result->exit_code, ==, AS_CTL_TEST_EXIT_USAGE);
	as_ctl_test_assert_one_error_line(result);
	g_assert_nonnull(strstr(result->err, "too short"));

	tokens = as_ctl_test_list_tokens();
	array = json_node_get_array(tokens);
	for (guint i = 0; i < json_array_get_length(array); i++) {
		JsonObject *obj = json_array_get_object_element(array, i);
		g_assert_cmpstr(json_object_get_string_member(obj, "status"), ==, "active");
	}
}

static void
as_ctl_test_history(AsCtlFixture *fixture, gconstpointer user_data)
{
	const gchar *const variants[][7] = {
		{"history", "--json", NULL},
		{"history", "--limit", "5", "--received", "--success-only", "--json", NULL},
		{"log", "-n", "1", "--sent", "--json", NULL},
	};

	for (guint i = 0; i < G_N_ELEMENTS(variants); i++) {
		g_autoptr(AsCtlResult) result = as_ctl_test_run_argv(NULL, variants[i]);
		g_autoptr(JsonNode) root = NULL;
		g_assert_cmpint(result->exit_code, ==, AS_CTL_TEST_EXIT_OK);
		root = as_ctl_test_parse_json(result->out, JSON_NODE_ARRAY);
		/* nothing was transferred yet */
		g_assert_cmpuint(json_array_get_length(json_node_get_array(root)), ==, 0);
	}
	{
		g_autoptr(AsCtlResult) result = as_ctl_test_run(NULL, "history");
		g_assert_cmpint(result->exit_code, ==, AS_CTL_TEST_EXIT_OK);
		g_assert_cmpstr(result->err, ==, "");
		g_assert_cmpstr(result->out, !=, "");
	}
}

/* a real upload shows up in history and status; a revoked token is refused at once */
static void
as_ctl_test_history_upload(AsCtlFixture *fixture, gconstpointer user_data)
{
	g_autoptr(AsCtlResult) result = NULL;
	g_autoptr(JsonNode) root = NULL;
	g_autofree gchar *token = NULL;
	g_autofree gchar *id = NULL;
	JsonObject *obj;
	JsonArray *entries;
	guint16 port;

	result = as_ctl_test_run(NULL, "token", "generate", "--label", "sender", "--json");
	g_assert_cmpint(result->exit_code, ==, AS_CTL_TEST_EXIT_OK);
	root = as_ctl_test_parse_json(result->out, JSON_NODE_OBJECT);
	token = g_strdup(json_object_get_string_member(json_node_get_object(root), "token"));
	id = g_strdup(json_object_get_string_member(json_node_get_object(root), "id"));
	g_clear_pointer(&root, json_node_unref);
	g_clear_pointer(&result, as_ctl_result_free);

	result = as_ctl_test_run(NULL, "status", "--json");
	g_assert_cmpint(result->exit_code, ==, AS_CTL_TEST_EXIT_OK);
	root = as_ctl_test_parse_json(result->out, JSON_NODE_OBJECT);
	port = (guint16)json_object_get_int_member(json_node_get_object(root), "http_port");
	g_clear_pointer(&root, json_node_unref);
	g_clear_pointer(&result, as_ctl_result_free);

	g_assert_cmpuint(as_ctl_test_upload(port, token), ==, SOUP_STATUS_OK);

	result = as_ctl_test_run(NULL, "history", "--received", "--json");
	g_assert_cmpint(result->exit_code, ==, AS_CTL_TEST_EXIT_OK);
	root = as_ctl_test_parse_json(result->out, JSON_NODE_ARRAY);
	entries = json_node_get_array(root);
	g_assert_cmpuint(json_array_get_length(entries), ==, 1);
	obj = json_array_get_object_element(entries, 0);
	g_assert_cmpstr(json_object_get_string_member(obj, "filename"), ==,
			AS_CTL_TEST_UPLOAD_NAME);
	g_assert_cmpstr(json_object_get_string_member(obj, "direction"), ==, "receive");
	g_assert_cmpint(json_object_get_int_member(obj, "size"), ==,
			strlen(AS_CTL_TEST_UPLOAD_CONTENT));
	g_assert_true(json_object_get_boolean_member(obj, "success"));
	g_clear_pointer(&root, json_node_unref);
	g_clear_pointer(&result, as_ctl_result_free);

	/* the direction filter reaches the daemon */
	result = as_ctl_test_run(NULL, "history", "--sent", "--json");
	g_assert_cmpint(result->exit_code, ==, AS_CTL_TEST_EXIT_OK);
	root = as_ctl_test_parse_json(result->out, JSON_NODE_ARRAY);
	g_assert_cmpuint(json_array_get_length(json_node_get_array(root)), ==, 0);
	g_clear_pointer(&root, json_node_unref);
	g_clear_pointer(&result, as_ctl_result_free);

	result = as_ctl_test_run(NULL, "history");
	g_assert_cmpint(result->exit_code, ==, AS_CTL_TEST_EXIT_OK);
	g_assert_nonnull(strstr(result->out, "FILE"));
	g_assert_nonnull(strstr(result->out, AS_CTL_TEST_UPLOAD_NAME));
	g_assert_nonnull(strstr(result->out, "\u2193")); /* down arrow: received */
	g_assert_nonnull(strstr(result->out, " ok "));
	g_clear_pointer(&result, as_ctl_result_free);

	result = as_ctl_test_run(NULL, "status", "--json");
	g_assert_cmpint(result->exit_code, ==, AS_CTL_TEST_EXIT_OK);
	root = as_ctl_test_parse_json(result->out, JSON_NODE_OBJECT);
	g_assert_cmpint(json_object_get_int_member(json_node_get_object(root), "received_files"),
			==, 1);
	g_clear_pointer(&root, json_node_unref);
	g_clear_pointer(&result, as_ctl_result_free);

	/* revoking takes effect on the next request */
	result = as_ctl_test_run(NULL, "token", "revoke", id);
	g_assert_cmpint(result->exit_code, ==, AS_CTL_TEST_EXIT_OK);
	g_assert_cmpuint(as_ctl_test_upload(port, token), ==, SOUP_STATUS_UNAUTHORIZED);
}

/* the API is scriptable with the stock tools */
static void
as_ctl_test_introspect(AsCtlFixture *fixture, gconstpointer user_data)
{
	g_autofree gchar *gdbus = g_find_program_in_path("gdbus");
	const gchar *argv[] = {NULL,	     "introspect",    "--session",  "--dest",
			       AS_DBUS_NAME, "--object-path", AS_DBUS_PATH, NULL};
	g_autofree gchar *out = NULL;
	g_autofree gchar *err = NULL;
	g_autoptr(GError) error = NULL;
	gint wait_status = 0;

	if (gdbus == NULL) {
		g_test_skip("gdbus is not installed");
		return;
	}
	argv[0] = gdbus;
	/* DBUS_SESSION_BUS_ADDRESS is the test bus, inherited from GTestDBus */
	g_spawn_sync(NULL, (gchar **)argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, &err,
		     &wait_status, &error);
	g_assert_no_error(error);
	g_spawn_check_wait_status(wait_status, &error);
	g_assert_no_error(error);
	g_assert_nonnull(strstr(out, "interface org.aerosync.Manager1"));
	g_assert_nonnull(strstr(out, "GetStatus"));
	g_assert_nonnull(strstr(out, "RevokeToken"));
}

int
main(int argc, char **argv)
{
	g_autoptr(GTestDBus) bus = NULL;
	int rc;

	g_test_init(&argc, &argv, NULL);

	/* a private session bus with no service files: nothing can activate org.aerosync */
	bus = g_test_dbus_new(G_TEST_DBUS_NONE);
	g_test_dbus_up(bus);

	g_test_add("/aerosync/ctl/usage", AsCtlFixture, NULL, as_ctl_test_setup, as_ctl_test_usage,
		   as_ctl_test_teardown);
	g_test_add("/aerosync/ctl/unreachable", AsCtlFixture, NULL, as_ctl_test_setup,
		   as_ctl_test_unreachable, as_ctl_test_teardown);
	g_test_add("/aerosync/ctl/status", AsCtlFixture, NULL, as_ctl_test_setup_daemon,
		   as_ctl_test_status, as_ctl_test_teardown);
	g_test_add("/aerosync/ctl/token", AsCtlFixture, NULL, as_ctl_test_setup_daemon,
		   as_ctl_test_token, as_ctl_test_teardown);
	g_test_add("/aerosync/ctl/token-human", AsCtlFixture, NULL, as_ctl_test_setup_daemon,
		   as_ctl_test_token_human, as_ctl_test_teardown);
	g_test_add("/aerosync/ctl/token-short-prefix", AsCtlFixture, NULL, as_ctl_test_setup_daemon,
		   as_ctl_test_token_short_prefix, as_ctl_test_teardown);
	g_test_add("/aerosync/ctl/history", AsCtlFixture, NULL, as_ctl_test_setup_daemon,
		   as_ctl_test_history, as_ctl_test_teardown);
	g_test_add("/aerosync/ctl/history-upload", AsCtlFixture, NULL, as_ctl_test_setup_daemon,
		   as_ctl_test_history_upload, as_ctl_test_teardown);
	g_test_add("/aerosync/ctl/introspect", AsCtlFixture, NULL, as_ctl_test_setup_daemon,
		   as_ctl_test_introspect, as_ctl_test_teardown);
	rc = g_test_run();

	g_test_dbus_down(bus);
	return rc;
}
