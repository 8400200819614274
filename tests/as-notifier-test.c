/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "AsNotifierTest"

#include "config.h"

#include <gio/gio.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>

#include "as-keys.h"
#include "as-test-daemon.h"

/* python3-dbusmock is a Debian module: the image's pyenv python3 does not have it */
#define AS_TEST_PYTHON "/usr/bin/python3"

#define AS_TEST_NOTIFY_NAME    "org.freedesktop.Notifications"
#define AS_TEST_NOTIFY_PATH    "/org/freedesktop/Notifications"
#define AS_TEST_MOCK_IFACE     "org.freedesktop.DBus.Mock"
#define AS_TEST_NOTIFIER_NAME  "org.aerosync.Notifier"
#define AS_TEST_NOTIFIER_PATH  "/org/aerosync/Notifier"
#define AS_TEST_FM1_NAME       "org.freedesktop.FileManager1"
#define AS_TEST_FM1_PATH       "/org/freedesktop/FileManager1"
#define AS_TEST_MANAGER1_IFACE "org.aerosync.Manager1"

#define AS_TEST_NAME_TIMEOUT_MS	  10000
#define AS_TEST_NOTIFY_TIMEOUT_MS 10000
#define AS_TEST_CALL_TIMEOUT_MS	  10000
#define AS_TEST_STOP_TIMEOUT_MS	  10000
/* after the last expected notification, nothing more may arrive within this */
#define AS_TEST_QUIET_MS 500

/* big enough that the daemon reports progress while it arrives */
#define AS_TEST_BIG_SIZE (4 * 1024 * 1024)
#define AS_TEST_BIG_SEED 7
#define AS_TEST_BIG_NAME "big file.bin"
#define AS_TEST_BIG_PATH "big%20file.bin"

#define AS_TEST_TEXT_NAME    "hello.txt"
#define AS_TEST_TEXT_CONTENT "hello notifier\n"
#define AS_TEST_BAD_NAME     "bad.txt"
#define AS_TEST_BAD_SHA256   "0000000000000000000000000000000000000000000000000000000000000000"

/* the fields of the Notify(susssasa{sv}i) calls the mock recorded */
#define AS_TEST_NOTIFY_ARG_REPLACES_ID 1
#define AS_TEST_NOTIFY_ARG_SUMMARY     3
#define AS_TEST_NOTIFY_ARG_BODY	       4
#define AS_TEST_NOTIFY_ARG_ACTIONS     5
#define AS_TEST_NOTIFY_ARG_HINTS       6

static GTestDBus *as_test_bus = NULL;
static gboolean as_test_have_dbusmock = FALSE;

typedef struct {
	gchar *root;		      /* owned temp dir, removed in teardown */
	gchar *opened_dir;	      /* the test viewer links what it was asked to open here */
	gchar *notifier_log;	      /* the notifier's stderr */
	GStrv notifier_envp;	      /* owned */
	GDBusConnection *connection;  /* owned: ours to the test bus */
	GSubprocess *mock;	      /* owned: python3-dbusmock's notification_daemon */
	GSubprocess *notifier;	      /* owned */
	const gchar *allowed_warning; /* a notifier warning this test provokes on purpose */
	guint fm1_registration;
	GPtrArray *fm1_uris; /* (element-type utf8): what ShowItems was asked to show */
} AsNotifierFixture;

/* -------- processes -------- */

static void
as_test_child_setup_cb(gpointer user_data)
{
	/* a test that aborts must not leave the mock or the notifier behind */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
}

static GSubprocess *
as_test_spawn(const gchar *const *argv, const gchar *const *envp, const gchar *log_path)
{
	g_autoptr(GSubprocessLauncher) launcher =
		g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_NONE);
	g_autoptr(GError) error = NULL;
	GSubprocess *proc;

	if (envp != NULL)
		g_subprocess_launcher_set_environ(launcher, (gchar **)envp);
	/* stdout carries TAP: everything the children say goes to their log */
	g_subprocess_launcher_set_stdout_file_path(launcher, log_path);
	g_subprocess_launcher_set_flags(launcher, G_SUBPROCESS_FLAGS_STDERR_MERGE);
	g_subprocess_launcher_set_child_setup(launcher, as_test_child_setup_cb, NULL, NULL);
	proc = g_subprocess_launcher_spawnv(launcher, argv, &error);
	g_assert_no_error(error);
	return proc;
}

typedef struct {
	gboolean done;
	gboolean timed_out;
} AsTestWait;

static void
as_test_wait_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	AsTestWait *wait = user_data;
	g_subprocess_wait_finish(G_SUBPROCESS(source), res, NULL);
	wait->done = TRUE;
}

static gboolean
as_test_wait_timeout_cb(gpointer user_data)
{
	AsTestWait *wait = user_data;
	wait->timed_out = TRUE;
	return G_SOURCE_REMOVE;
}

/* TRUE when @proc exited within @timeout_ms */
static gboolean
as_test_wait_exit(GSubprocess *proc, guint timeout_ms)
{
	g_autoptr(GCancellable) cancellable = g_cancellable_new();
	AsTestWait wait = {FALSE, FALSE};
	guint timeout_id;

	g_subprocess_wait_async(proc, cancellable, as_test_wait_cb, &wait);
	timeout_id = g_timeout_add(timeout_ms, as_test_wait_timeout_cb, &wait);
	while (!wait.done && !wait.timed_out)
		g_main_context_iteration(NULL, TRUE);
	if (!wait.timed_out)
		g_source_remove(timeout_id);
	if (!wait.done) {
		/* the callback holds &wait: let it run before returning */
		g_cancellable_cancel(cancellable);
		while (!wait.done)
			g_main_context_iteration(NULL, TRUE);
		return FALSE;
	}
	return TRUE;
}

/* SIGTERM, then SIGKILL if it lingers; returns whether it exited cleanly with 0 */
static gboolean
as_test_stop(GSubprocess *proc, const gchar *what)
{
	if (g_subprocess_get_identifier(proc) != NULL)
		g_subprocess_send_signal(proc, SIGTERM);
	if (!as_test_wait_exit(proc, AS_TEST_STOP_TIMEOUT_MS)) {
		g_test_message("%s ignored SIGTERM, killing it", what);
		g_subprocess_force_exit(proc);
		g_assert_true(as_test_wait_exit(proc, AS_TEST_STOP_TIMEOUT_MS));
		return FALSE;
	}
	return g_subprocess_get_if_exited(proc) && g_subprocess_get_exit_status(proc) == 0;
}

/* -------- the bus -------- */

typedef struct {
	GDBusConnection *connection;
	const gchar *name;
	gboolean want_owned;
} AsTestNameWait;

static gboolean
as_test_name_has_owner(GDBusConnection *connection, const gchar *name)
{
	g_autoptr(GVariant) ret = NULL;
	gboolean owned = FALSE;

	ret = g_dbus_connection_call_sync(
		connection, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
		"NameHasOwner", g_variant_new("(s)", name), G_VARIANT_TYPE("(b)"),
		G_DBUS_CALL_FLAGS_NONE, AS_TEST_CALL_TIMEOUT_MS, NULL, NULL);
	if (ret != NULL)
		g_variant_get(ret, "(b)", &owned);
	return owned;
}

static gboolean
as_test_name_check_cb(gpointer user_data)
{
	AsTestNameWait *wait = user_data;
	return as_test_name_has_owner(wait->connection, wait->name) == wait->want_owned;
}

static gboolean
as_test_wait_name(GDBusConnection *connection, const gchar *name, gboolean want_owned)
{
	AsTestNameWait wait = {connection, name, want_owned};
	return as_test_wait_for(as_test_name_check_cb, &wait, AS_TEST_NAME_TIMEOUT_MS);
}

static void
as_test_request_name(GDBusConnection *connection, const gchar *name)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) ret = NULL;
	guint32 reply = 0;

	ret = g_dbus_connection_call_sync(
		connection, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
		"RequestName", g_variant_new("(su)", name, 0x4), G_VARIANT_TYPE("(u)"),
		G_DBUS_CALL_FLAGS_NONE, AS_TEST_CALL_TIMEOUT_MS, NULL, &error);
	g_assert_no_error(error);
	g_variant_get(ret, "(u)", &reply);
	/* DBUS_REQUEST_NAME_REPLY_PRIMARY_OWNER */
	g_assert_cmpuint(reply, ==, 1);
}

static GDBusConnection *
as_test_new_connection(void)
{
	g_autoptr(GError) error = NULL;
	GDBusConnection *connection = g_dbus_connection_new_for_address_sync(
		g_test_dbus_get_bus_address(as_test_bus),
		G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
			G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
		NULL, NULL, &error);
	g_assert_no_error(error);
	return connection;
}

/* -------- the notification server double -------- */

/* every Notify call so far, as a(tav) */
static GVariant *
as_test_notify_calls(AsNotifierFixture *fixture)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) ret = NULL;

	ret = g_dbus_connection_call_sync(
		fixture->connection, AS_TEST_NOTIFY_NAME, AS_TEST_NOTIFY_PATH, AS_TEST_MOCK_IFACE,
		"GetMethodCalls", g_variant_new("(s)", "Notify"), G_VARIANT_TYPE("(a(tav))"),
		G_DBUS_CALL_FLAGS_NONE, AS_TEST_CALL_TIMEOUT_MS, NULL, &error);
	g_assert_no_error(error);
	return g_variant_get_child_value(ret, 0);
}

static gsize
as_test_notify_count(AsNotifierFixture *fixture)
{
	g_autoptr(GVariant) calls = as_test_notify_calls(fixture);
	return g_variant_n_children(calls);
}

typedef struct {
	AsNotifierFixture *fixture;
	gsize count;
} AsTestCountWait;

static gboolean
as_test_count_check_cb(gpointer user_data)
{
	AsTestCountWait *wait = user_data;
	return as_test_notify_count(wait->fixture) >= wait->count;
}

/* the arguments of Notify call @index (0-based), once it arrived */
static GVariant *
as_test_wait_notify(AsNotifierFixture *fixture, gsize index)
{
	AsTestCountWait wait = {fixture, index + 1};
	g_autoptr(GVariant) calls = NULL;
	g_autoptr(GVariant) call = NULL;

	if (!as_test_wait_for(as_test_count_check_cb, &wait, AS_TEST_NOTIFY_TIMEOUT_MS))
		g_error("notification %" G_GSIZE_FORMAT " never arrived", index + 1);
	calls = as_test_notify_calls(fixture);
	call = g_variant_get_child_value(calls, index);
	return g_variant_get_child_value(call, 1);
}

/* argument @n of a recorded call: the mock hands every argument back in a variant */
static GVariant *
as_test_notify_arg(GVariant *args, gsize n)
{
	g_autoptr(GVariant) boxed = g_variant_get_child_value(args, n);
	return g_variant_get_variant(boxed);
}

static gchar *
as_test_notify_string(GVariant *args, gsize n)
{
	g_autoptr(GVariant) value = as_test_notify_arg(args, n);
	g_assert_true(g_variant_is_of_type(value, G_VARIANT_TYPE_STRING));
	return g_variant_dup_string(value, NULL);
}

/* the action key a server would send back for the button labelled @label, or NULL */
static gchar *
as_test_notify_action_key(GVariant *args, const gchar *label)
{
	g_autoptr(GVariant) actions = as_test_notify_arg(args, AS_TEST_NOTIFY_ARG_ACTIONS);
	g_autofree const gchar **strv = NULL;
	gsize n = 0;

	g_assert_true(g_variant_is_of_type(actions, G_VARIANT_TYPE_STRING_ARRAY));
	strv = g_variant_get_strv(actions, &n);
	/* pairs of key and label */
	g_assert_cmpuint(n % 2, ==, 0);
	for (gsize i = 0; i + 1 < n; i += 2) {
		if (g_strcmp0(strv[i + 1], label) == 0)
			return g_strdup(strv[i]);
	}
	return NULL;
}

static gsize
as_test_notify_n_actions(GVariant *args)
{
	g_autoptr(GVariant) actions = as_test_notify_arg(args, AS_TEST_NOTIFY_ARG_ACTIONS);
	return g_variant_n_children(actions) / 2;
}

static void
as_test_assert_notify(GVariant *args, const gchar *summary, const gchar *body)
{
	g_autofree gchar *summary_got = as_test_notify_string(args, AS_TEST_NOTIFY_ARG_SUMMARY);
	g_autofree gchar *body_got = as_test_notify_string(args, AS_TEST_NOTIFY_ARG_BODY);
	g_autoptr(GVariant) hints = as_test_notify_arg(args, AS_TEST_NOTIFY_ARG_HINTS);
	g_autoptr(GVariant) replaces = as_test_notify_arg(args, AS_TEST_NOTIFY_ARG_REPLACES_ID);
	g_autoptr(GVariant) entry = NULL;

	g_test_message("notification: %s / %s", summary_got, body_got);
	g_assert_cmpstr(summary_got, ==, summary);
	g_assert_cmpstr(body_got, ==, body);
	/* the server can find our desktop file, so its settings apply */
	entry = g_variant_lookup_value(hints, "desktop-entry", NULL);
	g_assert_nonnull(entry);
	g_assert_cmpstr(g_variant_get_string(entry, NULL), ==, AS_TEST_NOTIFIER_NAME);
	/* every transfer is a new bubble here: fewer than the notifier's ring of ids */
	g_assert_cmpuint(g_variant_get_uint32(replaces), ==, 0);
}

/* what a server does when a button or the bubble is clicked; the mock numbers from 1 */
static void
as_test_invoke_action(AsNotifierFixture *fixture, gsize index, const gchar *key)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) ret = NULL;
	GVariantBuilder args;

	g_variant_builder_init(&args, G_VARIANT_TYPE("av"));
	g_variant_builder_add(&args, "v", g_variant_new_uint32((guint32)index + 1));
	g_variant_builder_add(&args, "v", g_variant_new_string(key));
	ret = g_dbus_connection_call_sync(
		fixture->connection, AS_TEST_NOTIFY_NAME, AS_TEST_NOTIFY_PATH, AS_TEST_MOCK_IFACE,
		"EmitSignal",
		g_variant_new("(sssav)", AS_TEST_NOTIFY_NAME, "ActionInvoked", "us", &args), NULL,
		G_DBUS_CALL_FLAGS_NONE, AS_TEST_CALL_TIMEOUT_MS, NULL, &error);
	g_assert_no_error(error);
}

/* -------- a file manager double for ShowItems -------- */

static const gchar as_test_fm1_xml[] = "<node>"
				       "  <interface name='org.freedesktop.FileManager1'>"
				       "    <method name='ShowItems'>"
				       "      <arg type='as' name='uris' direction='in'/>"
				       "      <arg type='s' name='startup_id' direction='in'/>"
				       "    </method>"
				       "  </interface>"
				       "</node>";

static void
as_test_fm1_method_cb(GDBusConnection *connection,
		      const gchar *sender,
		      const gchar *object_path,
		      const gchar *interface_name,
		      const gchar *method_name,
		      GVariant *parameters,
		      GDBusMethodInvocation *invocation,
		      gpointer user_data)
{
	AsNotifierFixture *fixture = user_data;
	g_autofree const gchar **uris = NULL;

	g_variant_get(parameters, "(^a&s&s)", &uris, NULL);
	for (guint i = 0; uris[i] != NULL; i++)
		g_ptr_array_add(fixture->fm1_uris, g_strdup(uris[i]));
	g_dbus_method_invocation_return_value(invocation, NULL);
}

static void
as_test_fm1_start(AsNotifierFixture *fixture)
{
	static const GDBusInterfaceVTable vtable = {.method_call = as_test_fm1_method_cb};
	g_autoptr(GDBusNodeInfo) node = NULL;
	g_autoptr(GError) error = NULL;

	node = g_dbus_node_info_new_for_xml(as_test_fm1_xml, &error);
	g_assert_no_error(error);
	fixture->fm1_registration = g_dbus_connection_register_object(
		fixture->connection, AS_TEST_FM1_PATH, node->interfaces[0], &vtable, fixture, NULL,
		&error);
	g_assert_no_error(error);
	as_test_request_name(fixture->connection, AS_TEST_FM1_NAME);
}

static gboolean
as_test_fm1_check_cb(gpointer user_data)
{
	AsNotifierFixture *fixture = user_data;
	return fixture->fm1_uris->len > 0;
}

/* -------- the notifier -------- */

static void
as_test_notifier_start(AsNotifierFixture *fixture)
{
	const gchar *argv[] = {NULL, NULL};
	const gchar *path = g_getenv("AEROSYNC_NOTIFIER_PATH");

	if (path == NULL)
		g_error("AEROSYNC_NOTIFIER_PATH is not set: run this test through meson");
	argv[0] = path;
	fixture->notifier = as_test_spawn(argv, (const gchar *const *)fixture->notifier_envp,
					  fixture->notifier_log);
	g_test_message("aerosync-notifier pid %s", g_subprocess_get_identifier(fixture->notifier));
	/* it subscribes before it owns its name: from now on no signal is missed */
	g_assert_true(as_test_wait_name(fixture->connection, AS_TEST_NOTIFIER_NAME, TRUE));
}

/* warnings and criticals in the notifier's log fail the test: no error spam */
static void
as_test_notifier_check_log(AsNotifierFixture *fixture)
{
	g_autofree gchar *log = NULL;
	g_auto(GStrv) lines = NULL;

	if (!g_file_get_contents(fixture->notifier_log, &log, NULL, NULL))
		return;
	g_test_message("aerosync-notifier log:\n%s", log);
	lines = g_strsplit(log, "\n", -1);
	for (guint i = 0; lines[i] != NULL; i++) {
		if (strstr(lines[i], "CRITICAL") != NULL)
			g_error("the notifier logged a critical: %s", lines[i]);
		if (strstr(lines[i], "WARNING") != NULL &&
		    (fixture->allowed_warning == NULL ||
		     strstr(lines[i], fixture->allowed_warning) == NULL))
			g_error("the notifier logged a warning: %s", lines[i]);
	}
}

/* -------- fixture -------- */

static void
as_test_write(const gchar *path, const gchar *contents)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *dir = g_path_get_dirname(path);
	g_assert_cmpint(g_mkdir_with_parents(dir, 0700), ==, 0);
	g_file_set_contents(path, contents, -1, &error);
	g_assert_no_error(error);
}

static void
as_test_setup(AsNotifierFixture *fixture, gconstpointer user_data)
{
	const gchar *mock_argv[] = {AS_TEST_PYTHON,	   "-m", "dbusmock", "--template",
				    "notification_daemon", NULL};
	g_autoptr(GError) error = NULL;
	g_autofree gchar *mock_log = NULL;
	g_autofree gchar *data_home = NULL;
	g_autofree gchar *config_home = NULL;
	g_autofree gchar *desktop = NULL;
	g_autofree gchar *desktop_path = NULL;
	g_autofree gchar *mimeapps_path = NULL;
	g_autofree gchar *quoted = NULL;
	const gchar *xdg_dirs[][2] = {{"XDG_STATE_HOME", "state"},
				      {"XDG_CACHE_HOME", "cache"},
				      {"XDG_RUNTIME_DIR", "runtime"},
				      {"XDG_CONFIG_DIRS", "config-dirs"},
				      {"HOME", "home"}};

	as_test_watchdog_arm();
	if (!as_test_have_dbusmock)
		return;

	fixture->root = g_dir_make_tmp("as-notifier-test-XXXXXX", &error);
	g_assert_no_error(error);
	fixture->opened_dir = g_build_filename(fixture->root, "opened", NULL);
	g_assert_cmpint(g_mkdir_with_parents(fixture->opened_dir, 0700), ==, 0);
	fixture->notifier_log = g_build_filename(fixture->root, "notifier.log", NULL);
	fixture->fm1_uris = g_ptr_array_new_with_free_func(g_free);
	fixture->connection = as_test_new_connection();

	/* the notification server double */
	mock_log = g_build_filename(fixture->root, "mock.log", NULL);
	fixture->mock = as_test_spawn(mock_argv, NULL, mock_log);
	if (!as_test_wait_name(fixture->connection, AS_TEST_NOTIFY_NAME, TRUE))
		g_error("python3-dbusmock did not own %s", AS_TEST_NOTIFY_NAME);

	/* the notifier's session: its own XDG dirs and a "viewer" that links what it opens,
	 * the default for the types the tests open; the system MIME database stays */
	fixture->notifier_envp = g_get_environ();
	for (guint i = 0; i < G_N_ELEMENTS(xdg_dirs); i++) {
		g_autofree gchar *dir = g_build_filename(fixture->root, xdg_dirs[i][1], NULL);
		g_assert_cmpint(g_mkdir_with_parents(dir, 0700), ==, 0);
		fixture->notifier_envp =
			g_environ_setenv(fixture->notifier_envp, xdg_dirs[i][0], dir, TRUE);
	}
	data_home = g_build_filename(fixture->root, "data", NULL);
	config_home = g_build_filename(fixture->root, "config", NULL);
	fixture->notifier_envp =
		g_environ_setenv(fixture->notifier_envp, "XDG_DATA_HOME", data_home, TRUE);
	fixture->notifier_envp =
		g_environ_setenv(fixture->notifier_envp, "XDG_CONFIG_HOME", config_home, TRUE);
	fixture->notifier_envp =
		g_environ_setenv(fixture->notifier_envp, "XDG_DATA_DIRS", "/usr/share", TRUE);
	fixture->notifier_envp = g_environ_setenv(fixture->notifier_envp, "GNOTIFICATION_BACKEND",
						  "freedesktop", TRUE);
	fixture->notifier_envp = g_environ_setenv(fixture->notifier_envp, "LANGUAGE", "C", TRUE);
	fixture->notifier_envp =
		g_environ_setenv(fixture->notifier_envp, "G_MESSAGES_DEBUG", "AsNotifier", TRUE);
	fixture->notifier_envp = g_environ_unsetenv(fixture->notifier_envp, "DISPLAY");
	fixture->notifier_envp = g_environ_unsetenv(fixture->notifier_envp, "WAYLAND_DISPLAY");

	quoted = g_shell_quote(fixture->opened_dir);
	desktop = g_strdup_printf("[Desktop Entry]\n"
				  "Type=Application\n"
				  "Name=AeroSync test viewer\n"
				  "Exec=ln -s %%f %s\n"
				  "MimeType=text/plain;application/octet-stream;inode/directory;\n"
				  "NoDisplay=true\n",
				  quoted);
	desktop_path = g_build_filename(data_home, "applications", "as-test-viewer.desktop", NULL);
	as_test_write(desktop_path, desktop);
	mimeapps_path = g_build_filename(config_home, "mimeapps.list", NULL);
	as_test_write(mimeapps_path, "[Default Applications]\n"
				     "text/plain=as-test-viewer.desktop\n"
				     "application/octet-stream=as-test-viewer.desktop\n"
				     "inode/directory=as-test-viewer.desktop\n");
}

static void
as_test_teardown(AsNotifierFixture *fixture, gconstpointer user_data)
{
	if (fixture->notifier != NULL) {
		/* SIGTERM is a clean exit: systemd stops the unit so */
		g_assert_true(as_test_stop(fixture->notifier, "aerosync-notifier"));
		as_test_notifier_check_log(fixture);
	}
	if (fixture->mock != NULL)
		as_test_stop(fixture->mock, "dbusmock");
	if (fixture->fm1_registration != 0)
		g_dbus_connection_unregister_object(fixture->connection, fixture->fm1_registration);
	g_clear_object(&fixture->notifier);
	g_clear_object(&fixture->mock);
	g_clear_object(&fixture->connection);
	g_clear_pointer(&fixture->fm1_uris, g_ptr_array_unref);
	g_clear_pointer(&fixture->notifier_envp, g_strfreev);
	if (fixture->root != NULL && g_getenv("AS_TEST_KEEP") == NULL)
		as_test_rm_rf(fixture->root);
	g_free(fixture->root);
	g_free(fixture->opened_dir);
	g_free(fixture->notifier_log);
}

/* the real aerosyncd on the test bus, auth on */
static AsTestDaemon *
as_test_daemon_on_bus(AsNotifierFixture *fixture)
{
	AsTestDaemon *daemon = as_test_daemon_new();
	g_autoptr(GError) error = NULL;

	as_test_daemon_set_dbus_address(daemon, g_test_dbus_get_bus_address(as_test_bus));
	as_test_daemon_start(daemon, &error);
	g_assert_no_error(error);
	g_assert_true(as_test_wait_name(fixture->connection, AS_DBUS_NAME, TRUE));
	return daemon;
}

/* nothing more than @count notifications, also a moment later */
static void
as_test_assert_quiet(AsNotifierFixture *fixture, gsize count)
{
	gint64 until = g_get_monotonic_time() + AS_TEST_QUIET_MS * G_TIME_SPAN_MILLISECOND;
	while (g_get_monotonic_time() < until)
		g_main_context_iteration(NULL, FALSE);
	g_assert_cmpuint(as_test_notify_count(fixture), ==, count);
}

#define AS_TEST_SKIP_WITHOUT_DBUSMOCK()                                                            \
	G_STMT_START                                                                               \
	{                                                                                          \
		if (!as_test_have_dbusmock) {                                                      \
			g_test_skip("python3-dbusmock is not installed for " AS_TEST_PYTHON);      \
			return;                                                                    \
		}                                                                                  \
	}                                                                                          \
	G_STMT_END

/* -------- tests -------- */

/* received, received, failed: one notification each, none for progress */
static void
as_test_notifier_received(AsNotifierFixture *fixture, gconstpointer user_data)
{
	g_autoptr(AsTestDaemon) daemon = NULL;
	g_autoptr(GBytes) big = NULL;
	g_autoptr(GBytes) text =
		g_bytes_new_static(AS_TEST_TEXT_CONTENT, strlen(AS_TEST_TEXT_CONTENT));
	g_autofree gchar *big_size = g_format_size(AS_TEST_BIG_SIZE);
	g_autofree gchar *text_size = g_format_size(strlen(AS_TEST_TEXT_CONTENT));
	g_autofree gchar *body = NULL;
	g_autofree gchar *default_key = NULL;

	AS_TEST_SKIP_WITHOUT_DBUSMOCK();

	/* the notifier comes first and waits for the daemon without complaint */
	as_test_notifier_start(fixture);
	daemon = as_test_daemon_on_bus(fixture);

	/* a file big enough for progress reports: still one notification */
	big = as_test_random_bytes(AS_TEST_BIG_SIZE, AS_TEST_BIG_SEED);
	{
		g_autoptr(AsTestReply) reply =
			as_test_daemon_put_bytes(daemon, AS_TEST_BIG_PATH, big, NULL);
		g_autoptr(GVariant) args = NULL;
		g_autofree gchar *open_key = NULL;
		g_autofree gchar *show_key = NULL;

		as_test_reply_assert_status(reply, SOUP_STATUS_OK);
		args = as_test_wait_notify(fixture, 0);
		body = g_strdup_printf("%s from 127.0.0.1 (%s)", AS_TEST_BIG_NAME, big_size);
		as_test_assert_notify(args, "File received", body);
		/* a click on the bubble opens it, and the two buttons */
		default_key = as_test_notify_action_key(args, "");
		g_assert_cmpstr(default_key, ==, "default");
		open_key = as_test_notify_action_key(args, "Open");
		show_key = as_test_notify_action_key(args, "Show in folder");
		g_assert_nonnull(open_key);
		g_assert_nonnull(show_key);
		g_assert_true(g_str_has_prefix(open_key, "app.open"));
		g_assert_true(g_str_has_prefix(show_key, "app.show-in-folder"));
		g_assert_cmpuint(as_test_notify_n_actions(args), ==, 3);
		g_clear_pointer(&body, g_free);
	}
	as_test_assert_quiet(fixture, 1);

	{
		g_autoptr(AsTestReply) reply =
			as_test_daemon_put_bytes(daemon, AS_TEST_TEXT_NAME, text, NULL);
		g_autoptr(GVariant) args = NULL;

		as_test_reply_assert_status(reply, SOUP_STATUS_OK);
		args = as_test_wait_notify(fixture, 1);
		body = g_strdup_printf("%s from 127.0.0.1 (%s)", AS_TEST_TEXT_NAME, text_size);
		as_test_assert_notify(args, "File received", body);
		g_assert_cmpuint(as_test_notify_n_actions(args), ==, 3);
		g_clear_pointer(&body, g_free);
	}

	/* a wrong X-File-Hash: the daemon's reason reaches the user */
	{
		g_autoptr(AsTestReply) reply = as_test_daemon_put_bytes(daemon, AS_TEST_BAD_NAME,
									text, AS_TEST_BAD_SHA256);
		g_autoptr(GVariant) args = NULL;
		g_autofree gchar *summary = NULL;
		g_autofree gchar *body_got = NULL;

		as_test_reply_assert_status(reply, SOUP_STATUS_BAD_REQUEST);
		args = as_test_wait_notify(fixture, 2);
		summary = as_test_notify_string(args, AS_TEST_NOTIFY_ARG_SUMMARY);
		body_got = as_test_notify_string(args, AS_TEST_NOTIFY_ARG_BODY);
		g_test_message("notification: %s / %s", summary, body_got);
		g_assert_cmpstr(summary, ==, "Transfer failed");
		g_assert_true(g_str_has_prefix(body_got, AS_TEST_BAD_NAME " from 127.0.0.1: "));
		g_assert_nonnull(
			strstr(body_got, "SHA-256 mismatch: expected " AS_TEST_BAD_SHA256));
		/* nothing to open */
		g_assert_cmpuint(as_test_notify_n_actions(args), ==, 0);
	}
	as_test_assert_quiet(fixture, 3);

	/* the daemon goes away (and the notifier must stay quiet about it) */
	g_assert_cmpint(as_test_daemon_stop(daemon), ==, 0);
	g_assert_true(as_test_wait_name(fixture->connection, AS_DBUS_NAME, FALSE));
}

typedef struct {
	gchar *path;
} AsTestLinkWait;

static gboolean
as_test_link_check_cb(gpointer user_data)
{
	AsTestLinkWait *wait = user_data;
	return g_file_test(wait->path, G_FILE_TEST_IS_SYMLINK);
}

/* waits for the test viewer to have been started on @target */
static void
as_test_assert_opened(AsNotifierFixture *fixture, const gchar *target)
{
	g_autofree gchar *basename = g_path_get_basename(target);
	AsTestLinkWait wait = {g_build_filename(fixture->opened_dir, basename, NULL)};
	g_autofree gchar *link_target = NULL;
	g_autoptr(GError) error = NULL;

	if (!as_test_wait_for(as_test_link_check_cb, &wait, AS_TEST_NOTIFY_TIMEOUT_MS))
		g_error("%s was never opened", target);
	link_target = g_file_read_link(wait.path, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(link_target, ==, target);
	g_unlink(wait.path);
	g_free(wait.path);
}

/* uploads @name and returns the arguments of its notification, number @index */
static GVariant *
as_test_receive(AsNotifierFixture *fixture, AsTestDaemon *daemon, const gchar *name, gsize index)
{
	g_autoptr(GBytes) text =
		g_bytes_new_static(AS_TEST_TEXT_CONTENT, strlen(AS_TEST_TEXT_CONTENT));
	g_autoptr(AsTestReply) reply = as_test_daemon_put_bytes(daemon, name, text, NULL);

	as_test_reply_assert_status(reply, SOUP_STATUS_OK);
	return as_test_wait_notify(fixture, index);
}

/* clicks the button labelled @label ("" for the bubble) of notification @index */
static void
as_test_click(AsNotifierFixture *fixture, GVariant *args, gsize index, const gchar *label)
{
	g_autofree gchar *key = as_test_notify_action_key(args, label);
	g_assert_nonnull(key);
	as_test_invoke_action(fixture, index, key);
}

/* the buttons and the bubble do what they say, and only for what was offered; a server
 * closes a notification once it was clicked, so every click gets its own file */
static void
as_test_notifier_actions(AsNotifierFixture *fixture, gconstpointer user_data)
{
	g_autoptr(AsTestDaemon) daemon = NULL;
	const gchar *save_dir;

	AS_TEST_SKIP_WITHOUT_DBUSMOCK();

	daemon = as_test_daemon_on_bus(fixture);
	save_dir = as_test_daemon_get_save_dir(daemon);
	as_test_notifier_start(fixture);

	/* "Open" starts the default application on the file */
	{
		g_autoptr(GVariant) args = as_test_receive(fixture, daemon, "open.txt", 0);
		g_autofree gchar *saved = g_build_filename(save_dir, "open.txt", NULL);
		as_test_click(fixture, args, 0, "Open");
		as_test_assert_opened(fixture, saved);
	}

	/* so does a click on the bubble */
	{
		g_autoptr(GVariant) args = as_test_receive(fixture, daemon, "bubble.txt", 1);
		g_autofree gchar *saved = g_build_filename(save_dir, "bubble.txt", NULL);
		as_test_click(fixture, args, 1, "");
		as_test_assert_opened(fixture, saved);
	}

	/* "Show in folder" without a file manager on the bus: the folder is opened */
	{
		g_autoptr(GVariant) args = as_test_receive(fixture, daemon, "folder.txt", 2);
		as_test_click(fixture, args, 2, "Show in folder");
		as_test_assert_opened(fixture, save_dir);
	}

	/* with one, it is asked to show the file */
	{
		g_autoptr(GVariant) args = as_test_receive(fixture, daemon, "show.txt", 3);
		g_autofree gchar *saved = g_build_filename(save_dir, "show.txt", NULL);
		g_autofree gchar *saved_uri = g_filename_to_uri(saved, NULL, NULL);

		as_test_fm1_start(fixture);
		as_test_click(fixture, args, 3, "Show in folder");
		g_assert_true(
			as_test_wait_for(as_test_fm1_check_cb, fixture, AS_TEST_NOTIFY_TIMEOUT_MS));
		g_assert_cmpuint(fixture->fm1_uris->len, ==, 1);
		g_assert_cmpstr(g_ptr_array_index(fixture->fm1_uris, 0), ==, saved_uri);
	}

	/* anyone on the bus can activate the actions: a path no notification offered is refused */
	fixture->allowed_warning = "no notification offered it";
	for (guint i = 0; i < 2; i++) {
		const gchar *action = i == 0 ? "open" : "show-in-folder";
		g_autoptr(GError) error = NULL;
		g_autoptr(GVariant) ret = NULL;
		GVariantBuilder params;

		g_variant_builder_init(&params, G_VARIANT_TYPE("av"));
		g_variant_builder_add(&params, "v", g_variant_new_string("/etc/passwd"));
		ret = g_dbus_connection_call_sync(
			fixture->connection, AS_TEST_NOTIFIER_NAME, AS_TEST_NOTIFIER_PATH,
			"org.gtk.Actions", "Activate",
			g_variant_new("(sava{sv})", action, &params, NULL), NULL,
			G_DBUS_CALL_FLAGS_NONE, AS_TEST_CALL_TIMEOUT_MS, NULL, &error);
		g_assert_no_error(error);
	}
	as_test_assert_quiet(fixture, 4);
	g_assert_true(as_test_dir_is_empty(fixture->opened_dir));
	g_assert_cmpuint(fixture->fm1_uris->len, ==, 1);
}

static void
as_test_emit_finished(GDBusConnection *connection,
		      const gchar *id,
		      const gchar *state,
		      GVariant *info)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *path = g_strdup_printf("%s/%s", AS_DBUS_TRANSFERS_PATH, id);

	g_dbus_connection_emit_signal(connection, NULL, AS_DBUS_PATH, AS_TEST_MANAGER1_IFACE,
				      "TransferFinished",
				      g_variant_new("(os@a{sv})", path, state, info), &error);
	g_assert_no_error(error);
	g_dbus_connection_flush_sync(connection, NULL, &error);
	g_assert_no_error(error);
}

static GVariant *
as_test_send_info(const gchar *error_text)
{
	GVariantBuilder b;
	g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
	g_variant_builder_add(&b, "{sv}", "filename", g_variant_new_string("report.pdf"));
	g_variant_builder_add(&b, "{sv}", "direction", g_variant_new_string("send"));
	g_variant_builder_add(&b, "{sv}", "size", g_variant_new_uint64(2000));
	g_variant_builder_add(&b, "{sv}", "peer", g_variant_new_string("192.0.2.7"));
	if (error_text != NULL)
		g_variant_builder_add(&b, "{sv}", "error", g_variant_new_string(error_text));
	return g_variant_builder_end(&b);
}

/* sends, signals from impostors and odd payloads, and a daemon that restarts: a stand-in
 * for aerosyncd owns org.aerosync so every case can be driven exactly */
static void
as_test_notifier_sent(AsNotifierFixture *fixture, gconstpointer user_data)
{
	g_autoptr(GDBusConnection) owner = NULL;
	g_autofree gchar *size_text = g_format_size(2000);
	g_autofree gchar *body = g_strdup_printf("report.pdf to 192.0.2.7 (%s)", size_text);

	AS_TEST_SKIP_WITHOUT_DBUSMOCK();

	as_test_notifier_start(fixture);
	owner = as_test_new_connection();
	as_test_request_name(owner, AS_DBUS_NAME);

	/* not from the owner of org.aerosync: ignored */
	as_test_emit_finished(fixture->connection, "impostor", "completed",
			      as_test_send_info(NULL));

	/* a completed send */
	as_test_emit_finished(owner, "s1", "completed", as_test_send_info(NULL));
	{
		g_autoptr(GVariant) args = as_test_wait_notify(fixture, 0);
		as_test_assert_notify(args, "File sent", body);
		g_assert_cmpuint(as_test_notify_n_actions(args), ==, 0);
	}

	/* cancelled, an unknown direction, and values of the wrong type: nothing, no crash */
	as_test_emit_finished(owner, "s2", "cancelled", as_test_send_info(NULL));
	{
		GVariantBuilder b;
		g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
		g_variant_builder_add(&b, "{sv}", "filename", g_variant_new_int32(7));
		g_variant_builder_add(&b, "{sv}", "direction", g_variant_new_string("send"));
		as_test_emit_finished(owner, "s3", "completed", g_variant_builder_end(&b));
		g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
		g_variant_builder_add(&b, "{sv}", "filename", g_variant_new_string("x"));
		g_variant_builder_add(&b, "{sv}", "direction", g_variant_new_string("sideways"));
		as_test_emit_finished(owner, "s4", "completed", g_variant_builder_end(&b));
	}

	/* a failed send says why */
	as_test_emit_finished(owner, "s5", "failed", as_test_send_info("connection refused"));
	{
		g_autoptr(GVariant) args = as_test_wait_notify(fixture, 1);
		as_test_assert_notify(args, "Transfer failed",
				      "report.pdf to 192.0.2.7: connection refused");
	}
	as_test_assert_quiet(fixture, 2);

	/* the daemon restarts: the notifier follows the new owner by itself */
	g_dbus_connection_close_sync(owner, NULL, NULL);
	g_clear_object(&owner);
	g_assert_true(as_test_wait_name(fixture->connection, AS_DBUS_NAME, FALSE));
	owner = as_test_new_connection();
	as_test_request_name(owner, AS_DBUS_NAME);
	as_test_emit_finished(owner, "s6", "completed", as_test_send_info(NULL));
	{
		g_autoptr(GVariant) args = as_test_wait_notify(fixture, 2);
		as_test_assert_notify(args, "File sent", body);
	}
	as_test_assert_quiet(fixture, 3);
	/* still running after all that */
	g_assert_nonnull(g_subprocess_get_identifier(fixture->notifier));
}

static gchar *
as_test_run_notifier(AsNotifierFixture *fixture, const gchar *arg, gint *exit_status)
{
	g_autoptr(GSubprocessLauncher) launcher = g_subprocess_launcher_new(
		G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_MERGE);
	g_autoptr(GSubprocess) proc = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *out = NULL;

	g_subprocess_launcher_set_environ(launcher, fixture->notifier_envp);
	proc = g_subprocess_launcher_spawn(launcher, &error, g_getenv("AEROSYNC_NOTIFIER_PATH"),
					   arg, NULL);
	g_assert_no_error(error);
	g_subprocess_communicate_utf8(proc, NULL, NULL, &out, NULL, &error);
	g_assert_no_error(error);
	g_assert_true(g_subprocess_get_if_exited(proc));
	*exit_status = g_subprocess_get_exit_status(proc);
	return g_steal_pointer(&out);
}

/* --version, a second start, --replace */
static void
as_test_notifier_instance(AsNotifierFixture *fixture, gconstpointer user_data)
{
	g_autoptr(GSubprocess) replacement = NULL;
	g_autofree gchar *version = g_strdup_printf("aerosync-notifier %s\n", PACKAGE_VERSION);
	g_autofree gchar *out = NULL;
	g_autofree gchar *log = g_build_filename(fixture->root, "replacement.log", NULL);
	const gchar *argv[] = {g_getenv("AEROSYNC_NOTIFIER_PATH"), "--replace", NULL};
	gint exit_status = -1;

	AS_TEST_SKIP_WITHOUT_DBUSMOCK();

	out = as_test_run_notifier(fixture, "--version", &exit_status);
	g_assert_cmpint(exit_status, ==, 0);
	g_assert_cmpstr(out, ==, version);
	g_clear_pointer(&out, g_free);

	/* a second start hands over to the running one and leaves */
	as_test_notifier_start(fixture);
	out = as_test_run_notifier(fixture, NULL, &exit_status);
	g_assert_cmpint(exit_status, ==, 0);
	g_assert_nonnull(g_subprocess_get_identifier(fixture->notifier));

	/* --replace: the old one quits cleanly, the new one owns the name */
	replacement = as_test_spawn(argv, (const gchar *const *)fixture->notifier_envp, log);
	g_assert_true(as_test_wait_exit(fixture->notifier, AS_TEST_STOP_TIMEOUT_MS));
	g_assert_true(g_subprocess_get_if_exited(fixture->notifier));
	g_assert_cmpint(g_subprocess_get_exit_status(fixture->notifier), ==, 0);
	as_test_notifier_check_log(fixture);
	g_clear_object(&fixture->notifier);
	g_assert_true(as_test_wait_name(fixture->connection, AS_TEST_NOTIFIER_NAME, TRUE));
	g_assert_true(as_test_stop(replacement, "aerosync-notifier --replace"));
}

static gboolean
as_test_find_dbusmock(void)
{
	const gchar *argv[] = {AS_TEST_PYTHON, "-c", "import dbusmock", NULL};
	gint wait_status = 0;

	if (!g_file_test(AS_TEST_PYTHON, G_FILE_TEST_IS_EXECUTABLE))
		return FALSE;
	if (!g_spawn_sync(NULL, (gchar **)argv, NULL,
			  G_SPAWN_STDOUT_TO_DEV_NULL | G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL, NULL,
			  NULL, &wait_status, NULL))
		return FALSE;
	return g_spawn_check_wait_status(wait_status, NULL);
}

int
main(int argc, char **argv)
{
	gint rc;

	as_test_init(&argc, &argv);
	/* the notifier's strings are checked untranslated */
	g_setenv("LANGUAGE", "C", TRUE);
	as_test_have_dbusmock = as_test_find_dbusmock();

	as_test_bus = g_test_dbus_new(G_TEST_DBUS_NONE);
	g_test_dbus_up(as_test_bus);

	g_test_add("/aerosync/notifier/received", AsNotifierFixture, NULL, as_test_setup,
		   as_test_notifier_received, as_test_teardown);
	g_test_add("/aerosync/notifier/actions", AsNotifierFixture, NULL, as_test_setup,
		   as_test_notifier_actions, as_test_teardown);
	g_test_add("/aerosync/notifier/sent", AsNotifierFixture, NULL, as_test_setup,
		   as_test_notifier_sent, as_test_teardown);
	g_test_add("/aerosync/notifier/instance", AsNotifierFixture, NULL, as_test_setup,
		   as_test_notifier_instance, as_test_teardown);
	rc = g_test_run();

	g_test_dbus_down(as_test_bus);
	g_clear_object(&as_test_bus);
	return rc;
}
