/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "AsCtlReceive"

#include "config.h"

#include <gio/gunixinputstream.h>
#include <glib-unix.h>
#include <glib/gi18n.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "as-ctl-receive.h"
#include "as-keys.h"

/* the daemon to start: this variable, then next to aerosyncctl, then $PATH */
#define AS_CTL_RECEIVE_ENV_DAEMON "AEROSYNCD_PATH"
#define AS_CTL_RECEIVE_DAEMON	  "aerosyncd"
/* the fd aerosyncd writes "port=H quic_port=Q" to once it listens (--ready-fd) */
#define AS_CTL_RECEIVE_READY_FD 3
/* bounds for a started aerosyncd to come up, and to go away again */
#define AS_CTL_RECEIVE_START_TIMEOUT_MS 10000
#define AS_CTL_RECEIVE_STOP_TIMEOUT_MS	10000
/* a --one-shot daemon exits right after its signal: let the signal reach us first */
#define AS_CTL_RECEIVE_EXIT_GRACE_MS 1000
/* "sha256=abcd1234" in the arrival lines, as AeroSync 0.x printed it */
#define AS_CTL_RECEIVE_SHA_PREFIX 8

const GOptionEntry as_ctl_receive_options[] = {
	AS_CTL_OPTION_VALUE("save-to",
			    '\0',
			    /* TRANSLATORS: --save-to option of 'receive' */
			    N_("Store incoming files in DIR"),
			    /* TRANSLATORS: placeholder for the value of --save-to */
			    N_("DIR")),
	AS_CTL_OPTION_VALUE("port",
			    '\0',
			    /* TRANSLATORS: --port option of 'receive' */
			    N_("Listen on this HTTP port (7788; 0 picks a free one)"),
			    /* TRANSLATORS: placeholder for the value of --port */
			    N_("PORT")),
	/* TRANSLATORS: --one-shot option of 'receive' */
	AS_CTL_OPTION_FLAG("one-shot", '\0', N_("Exit after one file arrived and was verified")),
	/* TRANSLATORS: --no-auth option of 'receive' */
	AS_CTL_OPTION_FLAG("no-auth", '\0', N_("Accept files from senders without a token")),
	{NULL},
};

/* what the command line asks of the receiver */
typedef struct {
	gchar *save_to;	  /* (owned) (nullable): absolute */
	gint port;	  /* -1: not given */
	gboolean no_auth; /* --no-auth */
	gboolean one_shot;
} AsCtlReceiveWish;

typedef struct {
	AsCtl *ctl;		   /* (unowned) */
	AsCtlReceiveWish wish;	   /* (owned) */
	GMainLoop *loop;	   /* (owned) */
	GCancellable *cancellable; /* (owned): the reads of the started daemon's pipes */
	GSubprocess *daemon;	   /* (owned) (nullable): the aerosyncd we started */
	gchar *last_daemon_line;   /* (owned) (nullable): its last line on stderr */
	guint n_pending;	   /* async reads still to complete */
	gint ready_port;	   /* from --ready-fd, -1 until then */
	gboolean name_owned;	   /* org.aerosync has an owner */
	gboolean name_seen;	   /* it had one since we started watching */
	gboolean daemon_gone;	   /* it lost it again */
	gboolean daemon_exited;	   /* the started aerosyncd exited */
	gboolean timed_out;	   /* a bounded wait ran out */
	gboolean interrupted;	   /* Ctrl-C */
	gboolean got_file;	   /* one file completed (for --one-shot) */
} AsCtlReceive;

/* --- the command line --- */

static gboolean
as_ctl_receive_parse(AsCtl *self, AsCtlReceiveWish *wish, GError **error)
{
	const gchar *save_to = as_ctl_get_option(self, "save-to");
	const gchar *port = as_ctl_get_option(self, "port");

	wish->port = -1;
	wish->no_auth = as_ctl_has_option(self, "no-auth");
	wish->one_shot = as_ctl_has_option(self, "one-shot");
	if (port != NULL) {
		guint64 value = 0;
		if (!g_ascii_string_to_unsigned(port, 10, 0, G_MAXUINT16, &value, NULL)) {
			g_autofree gchar *safe = as_ctl_sanitize_text(port);
			g_set_error(error, AS_CTL_ERROR, AS_CTL_EXIT_USAGE,
				    /* TRANSLATORS: %s is the value given; keep the option */
				    _("invalid --port '%s': give a number from 0 to 65535 (see "
				      "'aerosyncctl help receive')"),
				    safe);
			return FALSE;
		}
		wish->port = (gint)value;
	}
	if (save_to != NULL) {
		if (save_to[0] == '\0') {
			g_set_error_literal(
				error, AS_CTL_ERROR, AS_CTL_EXIT_USAGE,
				/* TRANSLATORS: keep the option untranslated */
				_("--save-to is empty (see 'aerosyncctl help receive')"));
			return FALSE;
		}
		/* aerosyncd may run from another working directory */
		wish->save_to = g_canonicalize_filename(save_to, NULL);
	}
	return TRUE;
}

static gboolean
as_ctl_receive_wish_has_settings(AsCtlReceiveWish *wish)
{
	return wish->save_to != NULL || wish->port >= 0 || wish->no_auth;
}

/* --- the bus --- */

static GVariant *
as_ctl_receive_call_bus(AsCtl *self, const gchar *method, GVariant *args, const gchar *type)
{
	return g_dbus_connection_call_sync(self->connection, "org.freedesktop.DBus",
					   "/org/freedesktop/DBus", "org.freedesktop.DBus", method,
					   args, G_VARIANT_TYPE(type), G_DBUS_CALL_FLAGS_NONE,
					   AS_CTL_DBUS_TIMEOUT_MS, NULL, NULL);
}

static gboolean
as_ctl_receive_name_has_owner(AsCtl *self)
{
	g_autoptr(GVariant) reply = as_ctl_receive_call_bus(
		self, "NameHasOwner", g_variant_new("(s)", AS_DBUS_NAME), "(b)");
	gboolean owned = FALSE;
	if (reply != NULL)
		g_variant_get(reply, "(b)", &owned);
	return owned;
}

static gboolean
as_ctl_receive_name_is_activatable(AsCtl *self)
{
	g_autoptr(GVariant) reply =
		as_ctl_receive_call_bus(self, "ListActivatableNames", NULL, "(as)");
	g_autofree const gchar **names = NULL;
	if (reply == NULL)
		return FALSE;
	g_variant_get(reply, "(^a&s)", &names);
	return g_strv_contains(names, AS_DBUS_NAME);
}

/* the pid of the running aerosyncd, for "stop it with kill PID", or 0 */
static guint32
as_ctl_receive_get_daemon_pid(AsCtl *self)
{
	g_autoptr(GVariant) reply = as_ctl_receive_call_bus(
		self, "GetConnectionUnixProcessID", g_variant_new("(s)", AS_DBUS_NAME), "(u)");
	guint32 pid = 0;
	if (reply != NULL)
		g_variant_get(reply, "(u)", &pid);
	return pid;
}

/* --- starting aerosyncd --- */

static gchar *
as_ctl_receive_find_daemon(GError **error)
{
	const gchar *env = g_getenv(AS_CTL_RECEIVE_ENV_DAEMON);
	g_autofree gchar *self_exe = g_file_read_link("/proc/self/exe", NULL);
	gchar *path;

	if (env != NULL && env[0] != '\0')
		return g_strdup(env);
	/* an installed aerosyncctl sits next to its aerosyncd */
	if (self_exe != NULL) {
		g_autofree gchar *dir = g_path_get_dirname(self_exe);
		path = g_build_filename(dir, AS_CTL_RECEIVE_DAEMON, NULL);
		if (g_file_test(path, G_FILE_TEST_IS_EXECUTABLE))
			return path;
		g_free(path);
	}
	path = g_find_program_in_path(AS_CTL_RECEIVE_DAEMON);
	if (path != NULL)
		return path;
	g_set_error(error, AS_CTL_ERROR, AS_CTL_EXIT_UNREACHABLE,
		    /* TRANSLATORS: %s is an environment variable; keep 'aerosyncd' */
		    _("aerosyncd is not running and cannot be found next to aerosyncctl or in "
		      "PATH (set %s to its path)"),
		    AS_CTL_RECEIVE_ENV_DAEMON);
	return NULL;
}

static void
as_ctl_receive_child_setup_cb(gpointer user_data)
{
	/* the receiver belongs to this command: it must not outlive a crash of it */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
}

static void as_ctl_receive_read_stderr(AsCtlReceive *rcv, GDataInputStream *stream);

static void
as_ctl_receive_stderr_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	AsCtlReceive *rcv = user_data;
	GDataInputStream *stream = G_DATA_INPUT_STREAM(source);
	g_autofree gchar *line = NULL;
	g_autoptr(GError) error_local = NULL;

	rcv->n_pending--;
	line = g_data_input_stream_read_line_finish_utf8(stream, res, NULL, &error_local);
	if (line == NULL) {
		/* EOF, or cancelled at the end */
		g_object_unref(stream);
		return;
	}
	if (line[0] != '\0') {
		g_free(rcv->last_daemon_line);
		rcv->last_daemon_line = as_ctl_sanitize_text(line);
	}
	/* the daemon's log is noise unless asked for; stdout stays ours */
	if (rcv->ctl->verbose)
		g_printerr("%s\n", rcv->last_daemon_line != NULL ? rcv->last_daemon_line : "");
	as_ctl_receive_read_stderr(rcv, stream);
}

/* keeps draining the daemon's stderr so that it never blocks on a full pipe */
static void
as_ctl_receive_read_stderr(AsCtlReceive *rcv, GDataInputStream *stream)
{
	rcv->n_pending++;
	g_data_input_stream_read_line_async(stream, G_PRIORITY_DEFAULT, rcv->cancellable,
					    as_ctl_receive_stderr_cb, rcv);
}

static void
as_ctl_receive_ready_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	AsCtlReceive *rcv = user_data;
	GDataInputStream *stream = G_DATA_INPUT_STREAM(source);
	g_autofree gchar *line = NULL;
	guint64 port = 0;

	rcv->n_pending--;
	line = g_data_input_stream_read_line_finish_utf8(stream, res, NULL, NULL);
	/* "port=H quic_port=Q": the HTTP port is the first field */
	if (line != NULL && g_str_has_prefix(line, "port=")) {
		g_auto(GStrv) fields = g_strsplit(line + strlen("port="), " ", 2);
		if (g_ascii_string_to_unsigned(fields[0], 10, 0, G_MAXUINT16, &port, NULL))
			rcv->ready_port = (gint)port;
	}
	g_object_unref(stream);
	g_main_loop_quit(rcv->loop);
}

static void
as_ctl_receive_daemon_exited_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	AsCtlReceive *rcv = user_data;
	g_autoptr(GError) error_local = NULL;

	rcv->n_pending--;
	if (!g_subprocess_wait_finish(G_SUBPROCESS(source), res, &error_local))
		return;
	rcv->daemon_exited = TRUE;
	g_main_loop_quit(rcv->loop);
}

static gboolean
as_ctl_receive_timeout_cb(gpointer user_data)
{
	AsCtlReceive *rcv = user_data;
	rcv->timed_out = TRUE;
	g_main_loop_quit(rcv->loop);
	return G_SOURCE_REMOVE;
}

/* runs the loop until @done is set, @timeout_ms passes or, if @stop_on_exit, the started
 * daemon exits */
static void
as_ctl_receive_wait(AsCtlReceive *rcv, gboolean *done, gboolean stop_on_exit, guint timeout_ms)
{
	guint timeout_id = g_timeout_add(timeout_ms, as_ctl_receive_timeout_cb, rcv);

	rcv->timed_out = FALSE;
	while (!*done && !rcv->timed_out && !(stop_on_exit && rcv->daemon_exited))
		g_main_loop_run(rcv->loop);
	if (!rcv->timed_out)
		g_source_remove(timeout_id);
}

static void
as_ctl_receive_set_start_error(AsCtlReceive *rcv, GError **error)
{
	g_autofree gchar *why = NULL;

	if (rcv->daemon_exited && g_subprocess_get_if_exited(rcv->daemon)) {
		why = g_strdup_printf(
			/* TRANSLATORS: %d is an exit status */
			_("it exited with status %d"), g_subprocess_get_exit_status(rcv->daemon));
	} else if (rcv->daemon_exited) {
		/* TRANSLATORS: aerosyncd was killed by a signal */
		why = g_strdup(_("it was killed"));
	} else {
		why = g_strdup_printf(
			/* TRANSLATORS: %d is a number of seconds */
			_("it did not come up within %d s"),
			AS_CTL_RECEIVE_START_TIMEOUT_MS / 1000);
	}
	if (rcv->last_daemon_line != NULL) {
		g_set_error(error, AS_CTL_ERROR, AS_CTL_EXIT_UNREACHABLE,
			    /* TRANSLATORS: first %s says how it ended, the second is the daemon's
			     * last message */
			    _("cannot start aerosyncd: %s: %s"), why, rcv->last_daemon_line);
		return;
	}
	g_set_error(error, AS_CTL_ERROR, AS_CTL_EXIT_UNREACHABLE,
		    /* TRANSLATORS: %s says how it ended */
		    _("cannot start aerosyncd: %s"), why);
}

static gboolean
as_ctl_receive_spawn(AsCtlReceive *rcv, GError **error)
{
	AsCtl *self = rcv->ctl;
	g_autofree gchar *binary = as_ctl_receive_find_daemon(error);
	g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GSubprocessLauncher) launcher = NULL;
	g_autofree gchar *port_str = NULL;
	const gchar *bus_address = g_getenv("AEROSYNC_BUS_ADDRESS");
	g_autoptr(GInputStream) ready_base = NULL;
	g_autoptr(GError) error_local = NULL;
	GDataInputStream *ready = NULL;
	GDataInputStream *log = NULL;
	gint fds[2];

	if (binary == NULL)
		return FALSE;
	g_ptr_array_add(argv, g_strdup(binary));
	g_ptr_array_add(argv, g_strdup("--session"));
	g_ptr_array_add(argv, g_strdup("--ready-fd"));
	g_ptr_array_add(argv, g_strdup_printf("%d", AS_CTL_RECEIVE_READY_FD));
	if (rcv->wish.port >= 0) {
		g_ptr_array_add(argv, g_strdup("--port"));
		g_ptr_array_add(argv, g_strdup_printf("%d", rcv->wish.port));
	}
	if (rcv->wish.save_to != NULL) {
		g_ptr_array_add(argv, g_strdup("--save-to"));
		g_ptr_array_add(argv, g_strdup(rcv->wish.save_to));
	}
	if (rcv->wish.no_auth)
		g_ptr_array_add(argv, g_strdup("--no-auth"));
	if (rcv->wish.one_shot)
		g_ptr_array_add(argv, g_strdup("--one-shot"));
	if (self->verbose)
		g_ptr_array_add(argv, g_strdup("--verbose"));
	g_ptr_array_add(argv, NULL);

	if (!g_unix_open_pipe(fds, FD_CLOEXEC, &error_local)) {
		g_set_error(error, AS_CTL_ERROR, AS_CTL_EXIT_FAILURE,
			    /* TRANSLATORS: first %s is a program, the second why */
			    _("cannot start %s: %s"), binary, error_local->message);
		return FALSE;
	}
	launcher = g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_STDOUT_SILENCE |
					     G_SUBPROCESS_FLAGS_STDERR_PIPE);
	/* the daemon must join the bus this command talks to */
	if (bus_address != NULL && bus_address[0] != '\0')
		g_subprocess_launcher_setenv(launcher, "DBUS_SESSION_BUS_ADDRESS", bus_address,
					     TRUE);
	g_subprocess_launcher_take_fd(launcher, fds[1], AS_CTL_RECEIVE_READY_FD);
	g_subprocess_launcher_set_child_setup(launcher, as_ctl_receive_child_setup_cb, NULL, NULL);
	g_debug("starting %s", binary);
	rcv->daemon = g_subprocess_launcher_spawnv(launcher, (const gchar *const *)argv->pdata,
						   &error_local);
	/* our copy of the write end must go, so that a daemon that dies gives EOF */
	g_subprocess_launcher_close(launcher);
	if (rcv->daemon == NULL) {
		close(fds[0]);
		g_set_error(error, AS_CTL_ERROR, AS_CTL_EXIT_UNREACHABLE,
			    /* TRANSLATORS: first %s is a program, the second why */
			    _("cannot start %s: %s"), binary, error_local->message);
		return FALSE;
	}

	rcv->n_pending++;
	g_subprocess_wait_async(rcv->daemon, rcv->cancellable, as_ctl_receive_daemon_exited_cb,
				rcv);
	log = g_data_input_stream_new(g_subprocess_get_stderr_pipe(rcv->daemon));
	as_ctl_receive_read_stderr(rcv, log);
	ready_base = g_unix_input_stream_new(fds[0], TRUE);
	ready = g_data_input_stream_new(ready_base);
	rcv->n_pending++;
	g_data_input_stream_read_line_async(ready, G_PRIORITY_DEFAULT, rcv->cancellable,
					    as_ctl_receive_ready_cb, rcv);

	/* first the port on --ready-fd, then the name on the bus */
	{
		gboolean have_port = FALSE;
		guint timeout_id = g_timeout_add(AS_CTL_RECEIVE_START_TIMEOUT_MS,
						 as_ctl_receive_timeout_cb, rcv);
		while (!rcv->timed_out && !rcv->daemon_exited && !have_port) {
			g_main_loop_run(rcv->loop);
			have_port = rcv->ready_port >= 0;
			/* EOF without a port: the daemon is going away; wait for its status */
			if (!have_port && !rcv->timed_out && !rcv->daemon_exited)
				continue;
		}
		if (!rcv->timed_out)
			g_source_remove(timeout_id);
	}
	if (rcv->ready_port < 0) {
		as_ctl_receive_set_start_error(rcv, error);
		return FALSE;
	}
	as_ctl_receive_wait(rcv, &rcv->name_owned, TRUE, AS_CTL_RECEIVE_START_TIMEOUT_MS);
	if (!rcv->name_owned) {
		as_ctl_receive_set_start_error(rcv, error);
		return FALSE;
	}
	return TRUE;
}

/* stops the daemon we started, unless --one-shot lets it finish by itself */
static void
as_ctl_receive_stop_daemon(AsCtlReceive *rcv)
{
	if (rcv->daemon == NULL)
		return;
	if (!rcv->daemon_exited && !(rcv->wish.one_shot && rcv->got_file))
		g_subprocess_send_signal(rcv->daemon, SIGTERM);
	as_ctl_receive_wait(rcv, &rcv->daemon_exited, FALSE, AS_CTL_RECEIVE_STOP_TIMEOUT_MS);
	if (!rcv->daemon_exited) {
		g_warning("aerosyncd did not stop within %d s; killing it",
			  AS_CTL_RECEIVE_STOP_TIMEOUT_MS / 1000);
		g_subprocess_force_exit(rcv->daemon);
		as_ctl_receive_wait(rcv, &rcv->daemon_exited, FALSE,
				    AS_CTL_RECEIVE_STOP_TIMEOUT_MS);
	}
}

/* --- a daemon that already runs --- */

static gboolean
as_ctl_receive_same_dir(const gchar *a, const gchar *b)
{
	g_autofree gchar *real_a = realpath(a, NULL);
	g_autofree gchar *real_b = realpath(b, NULL);
	if (real_a != NULL && real_b != NULL)
		return g_strcmp0(real_a, real_b) == 0;
	return g_strcmp0(a, b) == 0;
}

/* options that the running daemon does not honour are an error, never ignored */
static gboolean
as_ctl_receive_check_running(AsCtlReceive *rcv,
			     guint16 http_port,
			     const gchar *receive_directory,
			     gboolean auth_required,
			     GError **error)
{
	AsCtl *self = rcv->ctl;
	g_autoptr(GPtrArray) conflicts = g_ptr_array_new();
	g_autofree gchar *dir = as_ctl_sanitize_text(receive_directory);
	g_autofree gchar *options = NULL;
	g_autofree gchar *how_to_stop = NULL;
	guint32 pid = as_ctl_receive_get_daemon_pid(self);

	if (http_port == 0) {
		g_set_error_literal(error, AS_CTL_ERROR, AS_CTL_EXIT_FAILURE,
				    /* TRANSLATORS: keep 'aerosyncd' and 'listen=false' */
				    _("aerosyncd runs without HTTP (listen=false in its "
				      "configuration), so it cannot receive; stop it, or set "
				      "listen=true and restart it"));
		return FALSE;
	}
	if (rcv->wish.port > 0 && rcv->wish.port != http_port)
		g_ptr_array_add(conflicts, "--port");
	if (rcv->wish.save_to != NULL &&
	    !as_ctl_receive_same_dir(rcv->wish.save_to, receive_directory))
		g_ptr_array_add(conflicts, "--save-to");
	if (rcv->wish.no_auth && auth_required)
		g_ptr_array_add(conflicts, "--no-auth");
	if (conflicts->len == 0)
		return TRUE;

	g_ptr_array_add(conflicts, NULL);
	options = g_strjoinv(", ", (gchar **)conflicts->pdata);
	if (pid != 0)
		/* TRANSLATORS: how to stop the daemon; %u is its process id */
		how_to_stop = g_strdup_printf(_("stop it first (kill %u)"), pid);
	else
		/* TRANSLATORS: how to stop the daemon when its process id is unknown */
		how_to_stop = g_strdup(_("stop it first"));
	g_set_error(error, AS_CTL_ERROR, AS_CTL_EXIT_FAILURE,
		    /* TRANSLATORS: %u is a port, then a directory, whether tokens are needed, how
		     * to stop it and the options given, e.g. "--port, --save-to" */
		    _("aerosyncd is already running on port %u receiving into %s (%s); %s to "
		      "change %s"),
		    http_port, dir,
		    /* TRANSLATORS: part of the 'already running' message */
		    auth_required ? _("token required") : _("no token needed"), how_to_stop,
		    options);
	return FALSE;
}

/* --- arrivals --- */

/* the Id property: TransferFinished carries only the object, which lingers a while */
static gchar *
as_ctl_receive_get_transfer_id(AsCtlReceive *rcv, const gchar *path)
{
	g_autoptr(GVariant) reply = NULL;
	g_autoptr(GVariant) value = NULL;

	reply = g_dbus_connection_call_sync(
		rcv->ctl->connection, AS_DBUS_NAME, path, "org.freedesktop.DBus.Properties", "Get",
		g_variant_new("(ss)", as_dbus_transfer1_interface_info()->name, "Id"),
		G_VARIANT_TYPE("(v)"), G_DBUS_CALL_FLAGS_NO_AUTO_START, AS_CTL_DBUS_TIMEOUT_MS,
		NULL, NULL);
	if (reply == NULL)
		return NULL;
	g_variant_get(reply, "(v)", &value);
	if (!g_variant_is_of_type(value, G_VARIANT_TYPE_STRING))
		return NULL;
	return g_variant_dup_string(value, NULL);
}

static void
as_ctl_receive_print_arrival(AsCtlReceive *rcv,
			     const gchar *path,
			     const gchar *state,
			     GVariant *info)
{
	AsCtl *self = rcv->ctl;
	const gchar *filename = "";
	const gchar *sha256 = "";
	const gchar *saved_path = "";
	const gchar *peer = "";
	const gchar *error_text = "";
	guint64 size = 0;
	gboolean completed = g_strcmp0(state, "completed") == 0;

	g_variant_lookup(info, "filename", "&s", &filename);
	g_variant_lookup(info, "sha256", "&s", &sha256);
	g_variant_lookup(info, "saved_path", "&s", &saved_path);
	g_variant_lookup(info, "peer", "&s", &peer);
	g_variant_lookup(info, "error", "&s", &error_text);
	g_variant_lookup(info, "size", "t", &size);

	if (self->json) {
		g_autoptr(JsonBuilder) builder = json_builder_new();
		g_autoptr(JsonNode) root = NULL;
		g_autofree gchar *id = as_ctl_receive_get_transfer_id(rcv, path);

		json_builder_begin_object(builder);
		json_builder_set_member_name(builder, "event");
		json_builder_add_string_value(builder, completed ? "received" : state);
		if (id != NULL) {
			json_builder_set_member_name(builder, "id");
			json_builder_add_string_value(builder, id);
		}
		json_builder_set_member_name(builder, "path");
		json_builder_add_string_value(builder, path);
		json_builder_set_member_name(builder, "filename");
		json_builder_add_string_value(builder, filename);
		json_builder_set_member_name(builder, "size");
		json_builder_add_int_value(builder, (gint64)MIN(size, (guint64)G_MAXINT64));
		json_builder_set_member_name(builder, "sha256");
		json_builder_add_string_value(builder, sha256);
		json_builder_set_member_name(builder, "saved_path");
		json_builder_add_string_value(builder, saved_path);
		json_builder_set_member_name(builder, "peer");
		json_builder_add_string_value(builder, peer);
		if (error_text[0] != '\0') {
			json_builder_set_member_name(builder, "error");
			json_builder_add_string_value(builder, error_text);
		}
		json_builder_end_object(builder);
		root = json_builder_get_root(builder);
		as_ctl_print_json_line(self, root);
		return;
	}
	{
		g_autofree gchar *name = as_ctl_sanitize_text(filename);
		g_autofree gchar *size_str = as_ctl_format_size(size);
		if (completed) {
			g_autofree gchar *sha_short = g_strndup(sha256, AS_CTL_RECEIVE_SHA_PREFIX);
			g_autofree gchar *sha_safe = as_ctl_sanitize_text(sha_short);
			g_autofree gchar *mark = as_ctl_colourise(self, "[+]", AS_CTL_COLOUR_GREEN);
			if (sha_safe[0] != '\0')
				g_print("  %s %s (%s) sha256=%s\n", mark, name, size_str, sha_safe);
			else
				g_print("  %s %s (%s)\n", mark, name, size_str);
			fflush(stdout);
		} else {
			g_autofree gchar *why =
				as_ctl_sanitize_text(error_text[0] != '\0' ? error_text : state);
			g_printerr("  [!] %s: %s\n", name, why);
		}
	}
}

static void
as_ctl_receive_finished_cb(GDBusConnection *connection,
			   const gchar *sender_name,
			   const gchar *object_path,
			   const gchar *interface_name,
			   const gchar *signal_name,
			   GVariant *parameters,
			   gpointer user_data)
{
	AsCtlReceive *rcv = user_data;
	const gchar *path = NULL;
	const gchar *state = NULL;
	const gchar *direction = "receive";
	g_autoptr(GVariant) info = NULL;

	if (!g_variant_is_of_type(parameters, G_VARIANT_TYPE("(osa{sv})")))
		return;
	g_variant_get(parameters, "(&o&s@a{sv})", &path, &state, &info);
	g_variant_lookup(info, "direction", "&s", &direction);
	/* our own sends finish here too */
	if (g_strcmp0(direction, "receive") != 0)
		return;
	if (rcv->wish.one_shot && rcv->got_file)
		return;
	as_ctl_receive_print_arrival(rcv, path, state, info);
	if (g_strcmp0(state, "completed") == 0 && rcv->wish.one_shot) {
		rcv->got_file = TRUE;
		g_main_loop_quit(rcv->loop);
	}
}

static void
as_ctl_receive_name_appeared_cb(GDBusConnection *connection,
				const gchar *name,
				const gchar *name_owner,
				gpointer user_data)
{
	AsCtlReceive *rcv = user_data;
	rcv->name_owned = TRUE;
	rcv->name_seen = TRUE;
	g_main_loop_quit(rcv->loop);
}

static void
as_ctl_receive_name_vanished_cb(GDBusConnection *connection, const gchar *name, gpointer user_data)
{
	AsCtlReceive *rcv = user_data;
	rcv->name_owned = FALSE;
	/* the first answer may predate an activation we caused: only a loss counts */
	if (!rcv->name_seen)
		return;
	rcv->daemon_gone = TRUE;
	g_main_loop_quit(rcv->loop);
}

static gboolean
as_ctl_receive_sigint_cb(gpointer user_data)
{
	AsCtlReceive *rcv = user_data;
	rcv->interrupted = TRUE;
	g_main_loop_quit(rcv->loop);
	return G_SOURCE_CONTINUE;
}

static void
as_ctl_receive_print_listening(AsCtlReceive *rcv,
			       guint16 http_port,
			       const gchar *receive_directory,
			       gboolean auth_required)
{
	AsCtl *self = rcv->ctl;
	const gchar *pid = rcv->daemon != NULL ? g_subprocess_get_identifier(rcv->daemon) : NULL;

	if (self->json) {
		g_autoptr(JsonBuilder) builder = json_builder_new();
		g_autoptr(JsonNode) root = NULL;

		json_builder_begin_object(builder);
		json_builder_set_member_name(builder, "event");
		json_builder_add_string_value(builder, "listening");
		json_builder_set_member_name(builder, "port");
		json_builder_add_int_value(builder, http_port);
		json_builder_set_member_name(builder, "receive_directory");
		json_builder_add_string_value(builder, receive_directory);
		json_builder_set_member_name(builder, "auth_required");
		json_builder_add_boolean_value(builder, auth_required);
		json_builder_set_member_name(builder, "started");
		json_builder_add_boolean_value(builder, rcv->daemon != NULL);
		json_builder_set_member_name(builder, "one_shot");
		json_builder_add_boolean_value(builder, rcv->wish.one_shot);
		json_builder_end_object(builder);
		root = json_builder_get_root(builder);
		as_ctl_print_json_line(self, root);
		return;
	}
	{
		g_autofree gchar *dir = as_ctl_sanitize_text(receive_directory);
		g_print(
			/* TRANSLATORS: first line of 'receive'; %s is a directory, %u a port, the
			 * last %s whether senders need a token */
			_("Receiving into %s on port %u (%s)."), dir, http_port,
			/* TRANSLATORS: completes "Receiving into DIR on port N (…)" */
			auth_required ? _("senders need a token") : _("no token needed"));
		g_print("\n");
		if (pid != NULL) {
			/* TRANSLATORS: %s is a process id */
			g_print(_("Started aerosyncd (pid %s); Ctrl-C stops it."), pid);
		} else {
			/* TRANSLATORS: 'receive' used a daemon that was already running */
			g_print("%s", _("aerosyncd keeps running after Ctrl-C."));
		}
		g_print("\n");
		fflush(stdout);
	}
}

gboolean
as_ctl_receive(AsCtl *self, gchar **values, GError **error)
{
	AsCtlReceive rcv = {
		.ctl = self,
		.ready_port = -1,
	};
	g_autoptr(GVariant) status = NULL;
	g_autoptr(GError) error_local = NULL;
	const gchar *receive_directory = "";
	guint16 http_port = 0;
	gboolean auth_required = TRUE;
	guint subscription_id = 0;
	guint watch_id = 0;
	guint sigint_id = 0;
	gboolean ret = FALSE;

	if (!as_ctl_receive_parse(self, &rcv.wish, error)) {
		g_free(rcv.wish.save_to);
		return FALSE;
	}
	rcv.loop = g_main_loop_new(NULL, FALSE);
	rcv.cancellable = g_cancellable_new();
	if (as_ctl_get_manager(self, error) == NULL)
		goto out;

	/* listen before anything can arrive */
	subscription_id = g_dbus_connection_signal_subscribe(
		self->connection, AS_DBUS_NAME, as_dbus_manager1_interface_info()->name,
		"TransferFinished", AS_DBUS_PATH, NULL, G_DBUS_SIGNAL_FLAGS_NONE,
		as_ctl_receive_finished_cb, &rcv, NULL);
	watch_id = g_bus_watch_name_on_connection(
		self->connection, AS_DBUS_NAME, G_BUS_NAME_WATCHER_FLAGS_NONE,
		as_ctl_receive_name_appeared_cb, as_ctl_receive_name_vanished_cb, &rcv, NULL);
	sigint_id = g_unix_signal_add(SIGINT, as_ctl_receive_sigint_cb, &rcv);

	/* activation starts the daemon in the user's configured mode: fine without options */
	if (!as_ctl_receive_name_has_owner(self) && (as_ctl_receive_wish_has_settings(&rcv.wish) ||
						     !as_ctl_receive_name_is_activatable(self))) {
		if (!as_ctl_receive_spawn(&rcv, error))
			goto out;
	}
	if (!as_dbus_manager1_call_get_status_sync(self->manager, &status, NULL, &error_local)) {
		as_ctl_propagate_dbus_error(self, error, g_steal_pointer(&error_local),
					    /* TRANSLATORS: what failed, followed by why */
					    _("cannot get the daemon's status"));
		goto out;
	}
	g_variant_lookup(status, "http_port", "q", &http_port);
	g_variant_lookup(status, "receive_directory", "&s", &receive_directory);
	g_variant_lookup(status, "auth_required", "b", &auth_required);
	if (rcv.daemon == NULL &&
	    !as_ctl_receive_check_running(&rcv, http_port, receive_directory, auth_required, error))
		goto out;

	as_ctl_receive_print_listening(&rcv, http_port, receive_directory, auth_required);

	while (!rcv.interrupted && !rcv.got_file && !rcv.daemon_exited && !rcv.daemon_gone)
		g_main_loop_run(rcv.loop);
	if (rcv.wish.one_shot && !rcv.got_file && !rcv.interrupted)
		as_ctl_receive_wait(&rcv, &rcv.got_file, FALSE, AS_CTL_RECEIVE_EXIT_GRACE_MS);

	if (rcv.got_file || rcv.interrupted) {
		ret = TRUE;
	} else if (rcv.daemon != NULL && rcv.last_daemon_line != NULL) {
		g_set_error(error, AS_CTL_ERROR, AS_CTL_EXIT_UNREACHABLE,
			    /* TRANSLATORS: %s is the daemon's last message */
			    _("aerosyncd stopped: %s"), rcv.last_daemon_line);
	} else {
		g_set_error_literal(error, AS_CTL_ERROR, AS_CTL_EXIT_UNREACHABLE,
				    /* TRANSLATORS: the daemon left the bus while receiving */
				    _("aerosyncd stopped"));
	}
out:
	as_ctl_receive_stop_daemon(&rcv);
	if (sigint_id != 0)
		g_source_remove(sigint_id);
	if (watch_id != 0)
		g_bus_unwatch_name(watch_id);
	if (subscription_id != 0)
		g_dbus_connection_signal_unsubscribe(self->connection, subscription_id);
	/* the pending reads hold &rcv: let them finish before it goes */
	g_cancellable_cancel(rcv.cancellable);
	while (rcv.n_pending > 0)
		g_main_context_iteration(NULL, TRUE);
	g_clear_object(&rcv.daemon);
	g_clear_object(&rcv.cancellable);
	g_clear_pointer(&rcv.loop, g_main_loop_unref);
	g_free(rcv.last_daemon_line);
	g_free(rcv.wish.save_to);
	return ret;
}
