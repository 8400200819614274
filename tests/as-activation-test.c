/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "AsActivationTest"

#include "config.h"

#include <gio/gio.h>
#include <glib-unix.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "as-keys.h"
#include "as-test-daemon.h"

/*
 * D-Bus activation of aerosyncd on a private bus (GTestDBus) whose service directory is
 * tests/services in the build tree: the real data/org.aerosync.service.in with this build's
 * aerosyncd. The activated daemon inherits the bus daemon's environment, so the test user's
 * XDG dirs set before the bus starts give it a config with listen=false and a short idle-timeout:
 * the daemon runs "in the user's configured mode", as an installed one would.
 */

/* idle-timeout in the test user's config */
#define AS_ACTIVATION_TEST_IDLE_S 2
/* bound on an idle exit after the timeout, and on any process going away */
#define AS_ACTIVATION_TEST_EXIT_TIMEOUT_S 10
/* a call may have to wait for an activation */
#define AS_ACTIVATION_TEST_CALL_TIMEOUT_MS 20000
#define AS_ACTIVATION_TEST_POLL_MS	   50
/* keep-alive: a call this often, for this long (well past the idle timeout) */
#define AS_ACTIVATION_TEST_KEEPALIVE_INTERVAL_MS 250
#define AS_ACTIVATION_TEST_KEEPALIVE_S		 (2 * AS_ACTIVATION_TEST_IDLE_S)

typedef struct {
	gchar *tmpdir;		     /* (owned): the test user's home, removed at the end */
	gchar *save_dir;	     /* (owned): save-to in the test user's config */
	GDBusConnection *connection; /* (owned): our own connection to the test bus */
	GArray *pids;		     /* (element-type GPid): every aerosyncd seen */
} AsActivationTest;

typedef struct {
	gint exit_code;
	gchar *out; /* (owned) */
	gchar *err; /* (owned) */
} AsActivationResult;

static void
as_activation_result_free(AsActivationResult *result)
{
	g_free(result->out);
	g_free(result->err);
	g_free(result);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(AsActivationResult, as_activation_result_free)

static const gchar *
as_activation_test_get_path(const gchar *env_name)
{
	const gchar *path = g_getenv(env_name);
	if (path == NULL)
		g_error("%s is not set: run this test through 'meson test'", env_name);
	return path;
}

/* a process that has exited but not been reaped yet (a zombie) counts as gone */
static gboolean
as_activation_test_pid_alive(GPid pid)
{
	g_autofree gchar *path = g_strdup_printf("/proc/%d/stat", pid);
	g_autofree gchar *stat = NULL;
	const gchar *state;

	if (!g_file_get_contents(path, &stat, NULL, NULL))
		return FALSE;
	/* "pid (comm) S ...": comm may hold anything, the state follows the last ')' */
	state = strrchr(stat, ')');
	return state != NULL && state[1] == ' ' && state[2] != 'Z' && state[2] != 'X';
}

static gboolean
as_activation_test_pid_is_aerosyncd(GPid pid)
{
	g_autofree gchar *link = g_strdup_printf("/proc/%d/exe", pid);
	g_autofree gchar *exe = g_file_read_link(link, NULL);
	g_autofree gchar *want = realpath(as_activation_test_get_path("AEROSYNCD_PATH"), NULL);
	return exe != NULL && want != NULL && g_strcmp0(exe, want) == 0;
}

static void
as_activation_test_remember_pid(AsActivationTest *self, GPid pid)
{
	for (guint i = 0; i < self->pids->len; i++) {
		if (g_array_index(self->pids, GPid, i) == pid)
			return;
	}
	g_array_append_val(self->pids, pid);
}

/* the process owning org.aerosync, or 0; asks the bus, so it never activates anything */
static GPid
as_activation_test_get_owner_pid(AsActivationTest *self)
{
	g_autoptr(GVariant) reply = NULL;
	g_autoptr(GError) error = NULL;
	guint32 pid = 0;

	reply = g_dbus_connection_call_sync(
		self->connection, "org.freedesktop.DBus", "/org/freedesktop/DBus",
		"org.freedesktop.DBus", "GetConnectionUnixProcessID",
		g_variant_new("(s)", AS_DBUS_NAME), G_VARIANT_TYPE("(u)"), G_DBUS_CALL_FLAGS_NONE,
		-1, NULL, &error);
	if (reply == NULL) {
		g_autofree gchar *remote = g_dbus_error_get_remote_error(error);
		g_assert_cmpstr(remote, ==, "org.freedesktop.DBus.Error.NameHasNoOwner");
		return 0;
	}
	g_variant_get(reply, "(u)", &pid);
	g_assert_cmpuint(pid, >, 0);
	as_activation_test_remember_pid(self, (GPid)pid);
	return (GPid)pid;
}

/* returns how long the name took to go away, or -1 */
static gint64
as_activation_test_wait_for_no_owner(AsActivationTest *self, gint64 since_us)
{
	gint64 deadline_us =
		g_get_monotonic_time() + AS_ACTIVATION_TEST_EXIT_TIMEOUT_S * G_USEC_PER_SEC;
	while (g_get_monotonic_time() < deadline_us) {
		if (as_activation_test_get_owner_pid(self) == 0)
			return (g_get_monotonic_time() - since_us) / 1000;
		g_usleep(AS_ACTIVATION_TEST_POLL_MS * 1000);
	}
	return -1;
}

static gboolean
as_activation_test_wait_for_pid_gone(GPid pid)
{
	gint64 deadline_us =
		g_get_monotonic_time() + AS_ACTIVATION_TEST_EXIT_TIMEOUT_S * G_USEC_PER_SEC;
	while (g_get_monotonic_time() < deadline_us) {
		if (!as_activation_test_pid_alive(pid))
			return TRUE;
		g_usleep(AS_ACTIVATION_TEST_POLL_MS * 1000);
	}
	return FALSE;
}

/* the unique name owning org.aerosync, or NULL; never activates anything */
static gchar *
as_activation_test_get_owner_name(AsActivationTest *self)
{
	g_autoptr(GVariant) reply = NULL;
	g_autoptr(GError) error = NULL;
	gchar *owner = NULL;

	reply = g_dbus_connection_call_sync(
		self->connection, "org.freedesktop.DBus", "/org/freedesktop/DBus",
		"org.freedesktop.DBus", "GetNameOwner", g_variant_new("(s)", AS_DBUS_NAME),
		G_VARIANT_TYPE("(s)"), G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
	if (reply == NULL) {
		g_autofree gchar *remote = g_dbus_error_get_remote_error(error);
		g_assert_cmpstr(remote, ==, "org.freedesktop.DBus.Error.NameHasNoOwner");
		return NULL;
	}
	g_variant_get(reply, "(s)", &owner);
	return owner;
}

/* GetStatus on the well-known name, letting the bus activate the daemon; @sender: the unique
 * name of the connection that answered */
static GVariant *
as_activation_test_get_status(AsActivationTest *self, gchar **sender, GError **error)
{
	g_autoptr(GDBusMessage) message = NULL;
	g_autoptr(GDBusMessage) reply = NULL;
	GVariant *status = NULL;

	message = g_dbus_message_new_method_call(AS_DBUS_NAME, AS_DBUS_PATH,
						 "org.aerosync.Manager1", "GetStatus");
	reply = g_dbus_connection_send_message_with_reply_sync(
		self->connection, message, G_DBUS_SEND_MESSAGE_FLAGS_NONE,
		AS_ACTIVATION_TEST_CALL_TIMEOUT_MS, NULL, NULL, error);
	if (reply == NULL || g_dbus_message_to_gerror(reply, error))
		return NULL;
	g_assert_true(
		g_variant_is_of_type(g_dbus_message_get_body(reply), G_VARIANT_TYPE("(a{sv})")));
	g_variant_get(g_dbus_message_get_body(reply), "(@a{sv})", &status);
	if (sender != NULL)
		*sender = g_strdup(g_dbus_message_get_sender(reply));
	return status;
}

static AsActivationResult *
as_activation_test_run_ctl(const gchar *verb, const gchar *arg)
{
	const gchar *argv[] = {as_activation_test_get_path("AEROSYNCCTL_PATH"), verb, arg, NULL};
	g_auto(GStrv) envp = g_get_environ();
	g_autoptr(GError) error = NULL;
	AsActivationResult *result = g_new0(AsActivationResult, 1);
	gint wait_status = 0;

	/* the test bus of GTestDBus, through DBUS_SESSION_BUS_ADDRESS */
	envp = g_environ_unsetenv(envp, "AEROSYNC_BUS_ADDRESS");
	g_spawn_sync(NULL, (gchar **)argv, envp, G_SPAWN_DEFAULT, NULL, NULL, &result->out,
		     &result->err, &wait_status, &error);
	g_assert_no_error(error);
	g_assert_true(WIFEXITED(wait_status));
	result->exit_code = WEXITSTATUS(wait_status);
	if (result->exit_code != 0)
		g_test_message("aerosyncctl %s %s: %d\n%s", verb, arg, result->exit_code,
			       result->err);
	return result;
}

/* 'aerosyncctl status --json' activates the daemon, which runs as configured: HTTP off */
static GPid
as_activation_test_ctl_status(AsActivationTest *self)
{
	g_autoptr(AsActivationResult) result = as_activation_test_run_ctl("status", "--json");
	g_autoptr(JsonParser) parser = json_parser_new();
	g_autoptr(GError) error = NULL;
	JsonObject *obj;
	JsonArray *protocols;
	GPid pid;

	g_assert_cmpint(result->exit_code, ==, 0);
	json_parser_load_from_data(parser, result->out, -1, &error);
	g_assert_no_error(error);
	obj = json_node_get_object(json_parser_get_root(parser));
	g_assert_cmpstr(json_object_get_string_member(obj, "status"), ==, "ok");
	g_assert_cmpint(json_object_get_int_member(obj, "http_port"), ==, 0);
	g_assert_cmpstr(json_object_get_string_member(obj, "receive_directory"), ==,
			self->save_dir);
	protocols = json_object_get_array_member(obj, "protocols");
	g_assert_nonnull(protocols);
	g_assert_cmpuint(json_array_get_length(protocols), ==, 0);

	/* started by the bus from our service file: this build's aerosyncd */
	pid = as_activation_test_get_owner_pid(self);
	g_assert_cmpint(pid, >, 0);
	g_assert_true(as_activation_test_pid_is_aerosyncd(pid));
	return pid;
}

/* @last_call_us: taken before the last call was made, so the daemon saw it later: an exit
 * sooner than the idle timeout after it is early, however slow this machine is */
static void
as_activation_test_assert_idle_exit(AsActivationTest *self, GPid pid, gint64 last_call_us)
{
	gint64 elapsed_ms = as_activation_test_wait_for_no_owner(self, last_call_us);

	g_test_message("aerosyncd %d gave up the name %" G_GINT64_FORMAT " ms after the last call",
		       pid, elapsed_ms);
	g_assert_cmpint(elapsed_ms, >=, AS_ACTIVATION_TEST_IDLE_S * 1000);
	g_assert_true(as_activation_test_wait_for_pid_gone(pid));
}

/* a child of ours, killed if the test dies first */
static void
as_activation_test_child_setup_cb(gpointer user_data)
{
	prctl(PR_SET_PDEATHSIG, SIGTERM);
}

/* tests */

static void
as_activation_test_start_and_idle_exit(gconstpointer user_data)
{
	AsActivationTest *self = (AsActivationTest *)user_data;
	gint64 sent_us;
	GPid pid;

	g_assert_cmpint(as_activation_test_get_owner_pid(self), ==, 0);
	sent_us = g_get_monotonic_time();
	pid = as_activation_test_ctl_status(self);
	as_activation_test_assert_idle_exit(self, pid, sent_us);
}

static void
as_activation_test_restart_and_keep_alive(gconstpointer user_data)
{
	AsActivationTest *self = (AsActivationTest *)user_data;
	gint64 end_us;
	gint64 last_call_us = 0;
	guint n_calls = 0;
	GPid pid;

	/* the previous instance exited: the next call starts a new one */
	g_assert_cmpint(as_activation_test_get_owner_pid(self), ==, 0);
	pid = as_activation_test_ctl_status(self);
	for (guint i = 0; i + 1 < self->pids->len; i++)
		g_assert_cmpint(g_array_index(self->pids, GPid, i), !=, pid);

	/* calls reset the idle clock: the same instance answers them all, long past the timeout */
	end_us = g_get_monotonic_time() + AS_ACTIVATION_TEST_KEEPALIVE_S * G_USEC_PER_SEC;
	while (g_get_monotonic_time() < end_us) {
		g_autoptr(GError) error = NULL;
		g_autoptr(GVariant) status = NULL;

		g_usleep(AS_ACTIVATION_TEST_KEEPALIVE_INTERVAL_MS * 1000);
		last_call_us = g_get_monotonic_time();
		status = as_activation_test_get_status(self, NULL, &error);
		g_assert_no_error(error);
		g_assert_cmpint(as_activation_test_get_owner_pid(self), ==, pid);
		n_calls++;
	}
	g_test_message("%u calls over %d s, all answered by aerosyncd %d", n_calls,
		       AS_ACTIVATION_TEST_KEEPALIVE_S, pid);
	as_activation_test_assert_idle_exit(self, pid, last_call_us);
}

/* a call that arrives as the daemon decides to exit is answered: by that instance if it came
 * before the name was released (the daemon releases the name, then drains its queue), else by a
 * new instance the bus activates; never lost */
static void
as_activation_test_calls_at_idle_boundary(gconstpointer user_data)
{
	AsActivationTest *self = (AsActivationTest *)user_data;
	const gint offsets_ms[] = {-20, -5, 0, 5, 10, 25};
	guint n_kept = 0;
	guint n_drained = 0;
	guint n_activated = 0;
	gint64 sent_us = 0;
	GPid pid = 0;

	for (guint i = 0; i < G_N_ELEMENTS(offsets_ms); i++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(GVariant) status = NULL;
		g_autofree gchar *owner_before = NULL;
		g_autofree gchar *owner_after = NULL;
		g_autofree gchar *sender = NULL;
		const gchar *outcome;

		/* (re)start the idle clock of the current instance, activating one if needed */
		status = as_activation_test_get_status(self, NULL, &error);
		g_assert_no_error(error);
		g_clear_pointer(&status, g_variant_unref);
		owner_before = as_activation_test_get_owner_name(self);
		g_assert_nonnull(owner_before);
		g_usleep((AS_ACTIVATION_TEST_IDLE_S * 1000 + offsets_ms[i]) * 1000);

		sent_us = g_get_monotonic_time();
		status = as_activation_test_get_status(self, &sender, &error);
		g_assert_no_error(error);
		g_assert_nonnull(status);
		g_assert_nonnull(sender);
		owner_after = as_activation_test_get_owner_name(self);
		if (g_strcmp0(sender, owner_before) != 0) {
			/* the old instance had released the name: a new one answered, and owns it
			 */
			g_assert_cmpstr(sender, ==, owner_after);
			outcome = "a new instance answered";
			n_activated++;
		} else if (g_strcmp0(owner_after, owner_before) == 0) {
			outcome = "answered, idle clock reset";
			n_kept++;
		} else {
			/* the name was released before it answered: the drain path */
			outcome = "answered while exiting";
			n_drained++;
		}
		g_test_message("call at idle %+d ms: %s in %" G_GINT64_FORMAT " ms", offsets_ms[i],
			       outcome, (g_get_monotonic_time() - sent_us) / 1000);
	}
	g_test_message("%u kept alive, %u answered while exiting, %u activated a new instance",
		       n_kept, n_drained, n_activated);
	g_assert_cmpuint(n_kept + n_drained + n_activated, ==, G_N_ELEMENTS(offsets_ms));

	pid = as_activation_test_get_owner_pid(self);
	if (pid != 0)
		as_activation_test_assert_idle_exit(self, pid, sent_us);
}

/* listening is the default mode, and a receiver never idles out */
static void
as_activation_test_listening_ignores_idle(gconstpointer user_data)
{
	AsActivationTest *self = (AsActivationTest *)user_data;
	g_autofree gchar *empty_conf = g_build_filename(self->tmpdir, "empty.conf", NULL);
	const gchar *argv[] = {as_activation_test_get_path("AEROSYNCD_PATH"),
			       "--session",
			       "--config",
			       empty_conf,
			       "--bind",
			       "127.0.0.1",
			       "--port",
			       "0",
			       "--idle-timeout",
			       "1",
			       NULL};
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) status = NULL;
	gint64 deadline_us;
	guint16 port = 0;
	GPid child = 0;
	GPid pid = 0;
	gint wait_status = 0;

	g_assert_true(g_file_set_contents(empty_conf, "[daemon]\n", -1, &error));
	g_assert_no_error(error);
	g_spawn_async(NULL, (gchar **)argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD,
		      as_activation_test_child_setup_cb, NULL, &child, &error);
	g_assert_no_error(error);
	as_activation_test_remember_pid(self, child);

	deadline_us = g_get_monotonic_time() + AS_ACTIVATION_TEST_EXIT_TIMEOUT_S * G_USEC_PER_SEC;
	while (pid == 0 && g_get_monotonic_time() < deadline_us) {
		g_usleep(AS_ACTIVATION_TEST_POLL_MS * 1000);
		pid = as_activation_test_get_owner_pid(self);
	}
	g_assert_cmpint(pid, ==, child);

	/* well past --idle-timeout 1: still there, still listening */
	g_usleep((AS_ACTIVATION_TEST_IDLE_S + 1) * G_USEC_PER_SEC);
	g_assert_cmpint(as_activation_test_get_owner_pid(self), ==, child);
	status = as_activation_test_get_status(self, NULL, &error);
	g_assert_no_error(error);
	g_assert_true(g_variant_lookup(status, "http_port", "q", &port));
	g_assert_cmpuint(port, >, 0);

	kill(child, SIGTERM);
	g_assert_cmpint(waitpid(child, &wait_status, 0), ==, child);
	g_spawn_close_pid(child);
	g_assert_true(WIFEXITED(wait_status));
	g_assert_cmpint(WEXITSTATUS(wait_status), ==, 0);
	g_assert_cmpint(as_activation_test_wait_for_no_owner(self, 0), >=, 0);
}

static gboolean
as_activation_test_waitpid(GPid pid, gint *wait_status)
{
	gint64 deadline_us =
		g_get_monotonic_time() + AS_ACTIVATION_TEST_EXIT_TIMEOUT_S * G_USEC_PER_SEC;
	while (g_get_monotonic_time() < deadline_us) {
		pid_t rc = waitpid(pid, wait_status, WNOHANG);
		g_assert_cmpint(rc, >=, 0);
		if (rc == pid)
			return TRUE;
		g_usleep(AS_ACTIVATION_TEST_POLL_MS * 1000);
	}
	return FALSE;
}

/* with HTTP off, a session bus that goes away leaves nothing to serve: exit, successfully */
static void
as_activation_test_bus_gone(gconstpointer user_data)
{
	AsActivationTest *self = (AsActivationTest *)user_data;
	const gchar *bus_argv[] = {"dbus-daemon", "--session",	       "--nofork",
				   "--nopidfile", "--print-address=1", NULL};
	const gchar *daemon_argv[] = {
		as_activation_test_get_path("AEROSYNCD_PATH"), "--session", "--no-listen",
		/* overrides the test user's idle-timeout: no idle exit here */
		"--idle-timeout", "0", "--ready-fd", "3", NULL};
	g_autoptr(GError) error = NULL;
	g_autoptr(GIOChannel) bus_out = NULL;
	g_autofree gchar *address = NULL;
	g_auto(GStrv) envp = g_get_environ();
	gchar ready[64] = {0};
	gint ready_fds[2] = {-1, -1};
	gint bus_stdout = -1;
	gint wait_status = 0;
	GPid bus_pid = 0;
	GPid daemon_pid = 0;
	gssize len;

	/* a bus of its own: GTestDBus's must stay up for the other tests */
	g_spawn_async_with_pipes(
		NULL, (gchar **)bus_argv, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD,
		as_activation_test_child_setup_cb, NULL, &bus_pid, NULL, &bus_stdout, NULL, &error);
	if (g_error_matches(error, G_SPAWN_ERROR, G_SPAWN_ERROR_NOENT)) {
		g_test_skip("dbus-daemon is not installed");
		return;
	}
	g_assert_no_error(error);
	bus_out = g_io_channel_unix_new(bus_stdout);
	g_io_channel_set_close_on_unref(bus_out, TRUE);
	g_io_channel_read_line(bus_out, &address, NULL, NULL, &error);
	g_assert_no_error(error);
	g_assert_nonnull(address);
	g_strstrip(address);
	envp = g_environ_setenv(envp, "DBUS_SESSION_BUS_ADDRESS", address, TRUE);

	g_assert_true(g_unix_open_pipe(ready_fds, FD_CLOEXEC, &error));
	g_assert_no_error(error);
	g_spawn_async_with_pipes_and_fds(
		NULL, daemon_argv, (const gchar *const *)envp, G_SPAWN_DO_NOT_REAP_CHILD,
		as_activation_test_child_setup_cb, NULL, -1, -1, -1, &ready_fds[1],
		(const gint[]){3}, 1, &daemon_pid, NULL, NULL, NULL, &error);
	g_assert_no_error(error);
	as_activation_test_remember_pid(self, daemon_pid);
	close(ready_fds[1]);

	/* with HTTP off, ready means owning the name, and there is no port */
	len = read(ready_fds[0], ready, sizeof(ready) - 1);
	close(ready_fds[0]);
	g_assert_cmpint(len, >, 0);
	g_assert_cmpstr(ready, ==, "port=0 quic_port=0 https_port=0\n");

	kill(bus_pid, SIGTERM);
	g_assert_true(as_activation_test_waitpid(bus_pid, &wait_status));
	g_spawn_close_pid(bus_pid);
	if (!as_activation_test_waitpid(daemon_pid, &wait_status)) {
		kill(daemon_pid, SIGKILL);
		waitpid(daemon_pid, &wait_status, 0);
		g_assert_not_reached();
	}
	g_spawn_close_pid(daemon_pid);
	g_assert_true(WIFEXITED(wait_status));
	g_assert_cmpint(WEXITSTATUS(wait_status), ==, 0);
}

/* the combinations that cannot work are refused before anything starts */
static void
as_activation_test_options(gconstpointer user_data)
{
	AsActivationTest *self = (AsActivationTest *)user_data;
	g_autofree gchar *conf = g_build_filename(self->tmpdir, "bad.conf", NULL);
	const struct {
		const gchar *args[4];
		const gchar *conf;
		const gchar *message;
	} cases[] = {
		{{"--no-listen", "--no-dbus", NULL}, NULL, "nothing to serve"},
		{{"--no-listen", "--one-shot", NULL}, NULL, "one-shot"},
		{{"--idle-timeout", "-5", NULL}, NULL, "idle-timeout must be 0 (never) to 86400"},
		{{"--idle-timeout", "86401", NULL}, NULL, "idle-timeout must be"},
		{{NULL}, "[daemon]\nidle-timeout=soon\n", "idle-timeout"},
		{{NULL}, "[daemon]\nidle-timeout=-1\n", "idle-timeout must be"},
		{{NULL}, "[daemon]\nlisten=maybe\n", "listen"},
	};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(GPtrArray) argv = g_ptr_array_new();
		g_autoptr(GError) error = NULL;
		g_autofree gchar *out = NULL;
		g_autofree gchar *err = NULL;
		gint wait_status = 0;

		g_ptr_array_add(argv, (gpointer)as_activation_test_get_path("AEROSYNCD_PATH"));
		/* should a check ever be missing, the daemon must not take a real port */
		g_ptr_array_add(argv, (gpointer) "--bind");
		g_ptr_array_add(argv, (gpointer) "127.0.0.1");
		g_ptr_array_add(argv, (gpointer) "--port");
		g_ptr_array_add(argv, (gpointer) "0");
		for (guint j = 0; cases[i].args[j] != NULL; j++)
			g_ptr_array_add(argv, (gpointer)cases[i].args[j]);
		if (cases[i].conf != NULL) {
			g_assert_true(g_file_set_contents(conf, cases[i].conf, -1, &error));
			g_ptr_array_add(argv, (gpointer) "--config");
			g_ptr_array_add(argv, conf);
		}
		g_ptr_array_add(argv, NULL);
		g_spawn_sync(NULL, (gchar **)argv->pdata, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out,
			     &err, &wait_status, &error);
		g_assert_no_error(error);
		g_test_message("%s", g_strchomp(err));
		g_assert_true(WIFEXITED(wait_status));
		g_assert_cmpint(WEXITSTATUS(wait_status), ==, 2);
		g_assert_nonnull(strstr(err, cases[i].message));
	}
}

static void
as_activation_test_write_user_config(AsActivationTest *self)
{
	const gchar *xdg_dirs[] = {"XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_DATA_HOME",
				   "XDG_CACHE_HOME", NULL};
	g_autofree gchar *conf_dir = NULL;
	g_autofree gchar *conf_path = NULL;
	g_autofree gchar *conf = NULL;
	g_autoptr(GError) error = NULL;

	/* set before the bus starts: activated services inherit the bus daemon's environment */
	for (guint i = 0; xdg_dirs[i] != NULL; i++) {
		g_autofree gchar *dir = g_build_filename(self->tmpdir, xdg_dirs[i], NULL);
		g_assert_cmpint(g_mkdir_with_parents(dir, 0700), ==, 0);
		g_setenv(xdg_dirs[i], dir, TRUE);
	}
	g_setenv("HOME", self->tmpdir, TRUE);

	conf_dir = g_build_filename(self->tmpdir, "XDG_CONFIG_HOME", "aerosync", NULL);
	g_assert_cmpint(g_mkdir_with_parents(conf_dir, 0700), ==, 0);
	conf_path = g_build_filename(conf_dir, AS_DEFAULT_CONFIG_NAME, NULL);
	conf = g_strdup_printf("[daemon]\n"
			       "listen=false\n"
			       "idle-timeout=%d\n"
			       "save-to=%s\n"
			       "token-backend=file\n",
			       AS_ACTIVATION_TEST_IDLE_S, self->save_dir);
	g_assert_true(g_file_set_contents(conf_path, conf, -1, &error));
	g_assert_no_error(error);
}

/* no aerosyncd may outlive the test: the idle exit should have seen to it */
static void
as_activation_test_kill_leftovers(AsActivationTest *self)
{
	for (guint i = 0; i < self->pids->len; i++) {
		GPid pid = g_array_index(self->pids, GPid, i);
		if (!as_activation_test_pid_alive(pid) || !as_activation_test_pid_is_aerosyncd(pid))
			continue;
		g_printerr("# aerosyncd %d is still running, killing it\n", pid);
		kill(pid, SIGKILL);
	}
}

int
main(int argc, char **argv)
{
	AsActivationTest self = {0};
	g_autoptr(GTestDBus) bus = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *services_dir = NULL;
	gint rc;

	g_test_init(&argc, &argv, NULL);

	self.tmpdir = g_dir_make_tmp("as-activation-test-XXXXXX", &error);
	g_assert_no_error(error);
	self.save_dir = g_build_filename(self.tmpdir, "received", NULL);
	self.pids = g_array_new(FALSE, FALSE, sizeof(GPid));
	as_activation_test_write_user_config(&self);

	services_dir = g_test_build_filename(G_TEST_BUILT, "services", NULL);
	g_assert_true(g_file_test(services_dir, G_FILE_TEST_IS_DIR));
	bus = g_test_dbus_new(G_TEST_DBUS_NONE);
	g_test_dbus_add_service_dir(bus, services_dir);
	g_test_dbus_up(bus);
	self.connection = g_dbus_connection_new_for_address_sync(
		g_test_dbus_get_bus_address(bus),
		G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
			G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
		NULL, NULL, &error);
	g_assert_no_error(error);

	/* in this order: each starts with no aerosyncd on the bus */
	g_test_add_data_func("/aerosync/activation/options", &self, as_activation_test_options);
	g_test_add_data_func("/aerosync/activation/start-and-idle-exit", &self,
			     as_activation_test_start_and_idle_exit);
	g_test_add_data_func("/aerosync/activation/restart-and-keep-alive", &self,
			     as_activation_test_restart_and_keep_alive);
	g_test_add_data_func("/aerosync/activation/calls-at-idle-boundary", &self,
			     as_activation_test_calls_at_idle_boundary);
	g_test_add_data_func("/aerosync/activation/listening-ignores-idle", &self,
			     as_activation_test_listening_ignores_idle);
	g_test_add_data_func("/aerosync/activation/bus-gone", &self, as_activation_test_bus_gone);
	rc = g_test_run();

	as_activation_test_kill_leftovers(&self);
	g_dbus_connection_close_sync(self.connection, NULL, NULL);
	g_clear_object(&self.connection);
	g_test_dbus_down(bus);
	as_test_rm_rf(self.tmpdir);
	g_free(self.tmpdir);
	g_free(self.save_dir);
	g_array_unref(self.pids);
	return rc;
}
