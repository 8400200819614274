/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "AsMain"

#include "config.h"

#include <errno.h>
#include <glib-unix.h>
#include <locale.h>
#include <stdio.h>
#include <unistd.h>

#include "as-config.h"
#include "as-dbus-service.h"
#include "as-engine.h"
#include "as-error.h"
#include "as-http-server.h"
#include "as-keys.h"

/* one-shot: how long to wait for replies to be written before exiting */
#define AS_MAIN_ONE_SHOT_DRAIN_MS 5000
#define AS_MAIN_POLL_MS		  50

typedef struct {
	GMainLoop *loop;
	AsConfig *config;
	AsEngine *engine;
	AsHttpServer *http;
	AsDbusService *dbus;
	guint bus_owner_id;
	gint exit_code;
	gint64 one_shot_deadline_us;
	gboolean verbose;
} AsDaemon;

static GLogWriterOutput
as_main_log_writer_cb(GLogLevelFlags log_level, const GLogField *fields, gsize n_fields, gpointer user_data)
{
	AsDaemon *daemon = user_data;
	/* info is for --verbose, debug for G_MESSAGES_DEBUG as usual */
	if (log_level & G_LOG_LEVEL_INFO && !daemon->verbose)
		return G_LOG_WRITER_HANDLED;
	if (log_level & G_LOG_LEVEL_INFO) {
		for (gsize i = 0; i < n_fields; i++) {
			if (g_strcmp0(fields[i].key, "MESSAGE") == 0) {
				g_printerr("aerosyncd: %s\n", (const gchar *)fields[i].value);
				return G_LOG_WRITER_HANDLED;
			}
		}
	}
	return g_log_writer_default(log_level, fields, n_fields, user_data);
}

static gboolean
as_main_quit_cb(gpointer user_data)
{
	AsDaemon *daemon = user_data;
	g_message("shutting down; unfinished chunked uploads stay resumable");
	g_main_loop_quit(daemon->loop);
	return G_SOURCE_REMOVE;
}

static gboolean
as_main_one_shot_poll_cb(gpointer user_data)
{
	AsDaemon *daemon = user_data;
	if (as_http_server_get_requests_in_flight(daemon->http) == 0 ||
	    g_get_monotonic_time() > daemon->one_shot_deadline_us) {
		g_main_loop_quit(daemon->loop);
		return G_SOURCE_REMOVE;
	}
	return G_SOURCE_CONTINUE;
}

static void
as_main_transfer_finished_cb(AsEngine *engine, AsTransfer *transfer, gpointer user_data)
{
	AsDaemon *daemon = user_data;
	if (!daemon->config->one_shot || as_transfer_get_state(transfer) != AS_TRANSFER_STATE_COMPLETED)
		return;
	g_message("one-shot: %s received and verified, exiting", as_transfer_get_filename(transfer));
	g_signal_handlers_disconnect_by_func(engine, as_main_transfer_finished_cb, daemon);
	/* let the reply reach the sender first */
	daemon->one_shot_deadline_us = g_get_monotonic_time() + AS_MAIN_ONE_SHOT_DRAIN_MS * 1000;
	g_timeout_add(AS_MAIN_POLL_MS, as_main_one_shot_poll_cb, daemon);
}

static void
as_main_bus_acquired_cb(GDBusConnection *connection, const gchar *name, gpointer user_data)
{
	AsDaemon *daemon = user_data;
	g_autoptr(GError) error = NULL;

	daemon->dbus = as_dbus_service_new(daemon->engine);
	if (!as_dbus_service_start(daemon->dbus, connection, &error))
		g_warning("cannot export the D-Bus API: %s", error->message);
}

static void
as_main_name_acquired_cb(GDBusConnection *connection, const gchar *name, gpointer user_data)
{
	g_info("owns %s on the session bus", name);
}

static void
as_main_name_lost_cb(GDBusConnection *connection, const gchar *name, gpointer user_data)
{
	AsDaemon *daemon = user_data;
	if (connection == NULL) {
		g_message("the session bus went away; continuing with HTTP only");
		return;
	}
	/* another aerosyncd serves this session: two would fight over the receive dir */
	g_printerr("aerosyncd: %s is already owned on the session bus (another aerosyncd runs?); "
		   "use --no-dbus to run a second receiver\n",
		   name);
	daemon->exit_code = EXIT_FAILURE;
	g_main_loop_quit(daemon->loop);
}

static void
as_main_write_ready(AsDaemon *daemon)
{
	g_autofree gchar *line = NULL;
	gssize len;

	if (daemon->config->ready_fd < 0)
		return;
	line = g_strdup_printf("port=%u\n", as_http_server_get_port(daemon->http));
	len = (gssize)strlen(line);
	if (write(daemon->config->ready_fd, line, len) != len)
		g_warning("cannot write to --ready-fd: %s", g_strerror(errno));
	close(daemon->config->ready_fd);
}

static void
as_main_start_dbus(AsDaemon *daemon)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GDBusConnection) connection = NULL;

	if (daemon->config->bus == AS_CONFIG_BUS_NONE)
		return;
	connection = g_bus_get_sync(G_BUS_TYPE_SESSION, NULL, &error);
	if (connection == NULL) {
		g_message("no session bus (%s): continuing with HTTP only, no D-Bus API", error->message);
		return;
	}
	g_dbus_connection_set_exit_on_close(connection, FALSE);
	daemon->bus_owner_id = g_bus_own_name_on_connection(connection,
							    AS_DBUS_NAME,
							    G_BUS_NAME_OWNER_FLAGS_DO_NOT_QUEUE,
							    as_main_name_acquired_cb,
							    as_main_name_lost_cb,
							    daemon,
							    NULL);
	as_main_bus_acquired_cb(connection, AS_DBUS_NAME, daemon);
}

int
main(int argc, char *argv[])
{
	AsDaemon daemon = {0};
	g_autoptr(AsConfig) config = as_config_new();
	g_autoptr(GError) error = NULL;
	g_autoptr(GMainLoop) loop = NULL;
	g_autoptr(AsEngine) engine = NULL;
	g_autoptr(AsHttpServer) http = NULL;
	guint removed;

	setlocale(LC_ALL, "");
	g_set_prgname("aerosyncd");
	g_log_set_writer_func(as_main_log_writer_cb, &daemon, NULL);

	if (!as_config_parse_args(config, &argc, &argv, &error) ||
	    !as_config_finalize(config, &error)) {
		g_printerr("aerosyncd: %s\n", error->message);
		return 2;
	}
	daemon.config = config;
	daemon.verbose = config->verbose;
	daemon.exit_code = EXIT_SUCCESS;

	engine = as_engine_new(config, &error);
	if (engine == NULL) {
		g_printerr("aerosyncd: %s\n", error->message);
		return EXIT_FAILURE;
	}
	daemon.engine = engine;
	removed = as_chunk_store_cleanup_stale(as_engine_get_chunk_store(engine), AS_CONFIG_STAGING_MAX_AGE_S);
	/* single uploads cannot resume: partial ones of a dead process are garbage */
	removed += as_chunk_store_cleanup_temps(as_engine_get_chunk_store(engine));
	if (removed > 0)
		g_message("removed %u stale staging entries", removed);

	http = as_http_server_new(engine);
	if (!as_http_server_listen(http, config->bind, (guint16)config->port, &error)) {
		g_printerr("aerosyncd: %s\n", error->message);
		return EXIT_FAILURE;
	}
	daemon.http = http;
	as_engine_set_http_port(engine, as_http_server_get_port(http));

	loop = g_main_loop_new(NULL, FALSE);
	daemon.loop = loop;
	g_unix_signal_add(SIGTERM, as_main_quit_cb, &daemon);
	g_unix_signal_add(SIGINT, as_main_quit_cb, &daemon);
	g_signal_connect(engine, "transfer-finished", G_CALLBACK(as_main_transfer_finished_cb), &daemon);

	as_main_start_dbus(&daemon);
	g_message("receiving into %s on http://%s:%u (auth %s, tokens: %s)",
		  config->save_to,
		  config->bind,
		  as_http_server_get_port(http),
		  config->auth ? "on" : "OFF",
		  as_token_store_get_backend_name(as_engine_get_token_store(engine)));
	if (config->auth && as_token_store_get_count(as_engine_get_token_store(engine)) == 0 &&
	    config->auth_token_file == NULL)
		g_message("no tokens yet: create one with 'aerosyncctl token generate --label NAME'");
	as_main_write_ready(&daemon);

	g_main_loop_run(loop);

	as_http_server_stop(http);
	as_chunk_store_remove_own_temps(as_engine_get_chunk_store(engine));
	if (daemon.bus_owner_id != 0)
		g_bus_unown_name(daemon.bus_owner_id);
	g_clear_object(&daemon.dbus);
	return daemon.exit_code;
}
