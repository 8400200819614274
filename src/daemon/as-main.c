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
#include "as-sender.h"
#if HAVE_MDNS
#include "as-mdns-publisher.h"
#endif
#if HAVE_QUIC
#include "as-quic-receiver.h"
#include "as-quic-v2-ingest.h"
#endif

/* one-shot: how long to wait for replies to be written before exiting */
#define AS_MAIN_ONE_SHOT_DRAIN_MS 5000
#define AS_MAIN_POLL_MS		  50
/* idle exit: how long calls that reached us before the bus name was released may take */
#define AS_MAIN_IDLE_DRAIN_MS 5000

/* D-Bus traffic as seen by the connection filter, which runs in GDBus's worker thread;
 * shared (atomic-refcounted) so the filter may outlive the daemon's own reference */
typedef struct {
	GMutex mutex;
	gint64 last_us;	       /* monotonic time of the last call in or reply out */
	guint calls_in_flight; /* calls received and not yet answered */
} AsMainBusActivity;

typedef struct {
	GMainLoop *loop;
	AsConfig *config;
	AsEngine *engine;
	AsHttpServer *http; /* NULL with listen=false */
#if HAVE_QUIC
	AsQuicReceiver *quic; /* owned, NULL with --http-only */
#endif
#if HAVE_MDNS
	AsMdnsPublisher *mdns; /* owned, NULL when not published */
#endif
	AsDbusService *dbus;
	AsSender *sender;	     /* owned: Send() and the resumed sends */
	GDBusConnection *connection; /* owned, NULL without a bus */
	guint bus_owner_id;
	guint filter_id;
	AsMainBusActivity *activity; /* (atomic-rc) owned ref, only with an idle timeout */
	guint idle_id;
	gint64 idle_drain_deadline_us;
	gint exit_code;
	gint64 one_shot_deadline_us;
	gboolean verbose;
} AsDaemon;

static GLogWriterOutput
as_main_log_writer_cb(GLogLevelFlags log_level,
		      const GLogField *fields,
		      gsize n_fields,
		      gpointer user_data)
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

#if HAVE_MDNS
/* the TXT record follows the auth setting across reloads */
static GHashTable *
as_main_mdns_txt(AsDaemon *daemon)
{
	GHashTable *txt = as_mdns_publisher_txt_new(TRUE, daemon->config->auth,
						    as_engine_get_quic_port(daemon->engine),
						    as_engine_get_cert_sha256(daemon->engine));
	as_mdns_publisher_txt_add_https(txt, as_engine_get_https_port(daemon->engine));
	return txt;
}

static void
as_main_reloaded_cb(AsEngine *engine, gpointer user_data)
{
	AsDaemon *daemon = user_data;
	g_autoptr(GHashTable) txt = NULL;

	if (daemon->mdns == NULL)
		return;
	txt = as_main_mdns_txt(daemon);
	as_mdns_publisher_update_txt(daemon->mdns, txt);
}

static void
as_main_start_mdns(AsDaemon *daemon)
{
	g_autoptr(GHashTable) txt = NULL;

	if (daemon->http == NULL || !daemon->config->mdns)
		return;
	txt = as_main_mdns_txt(daemon);
	daemon->mdns = as_mdns_publisher_new(NULL, as_http_server_get_port(daemon->http), txt);
	as_mdns_publisher_start(daemon->mdns);
	g_signal_connect(daemon->engine, "reloaded", G_CALLBACK(as_main_reloaded_cb), daemon);
}
#endif

/* SIGHUP: the same as Manager1.Reload; a bad config leaves the running one in force */
static gboolean
as_main_reload_cb(gpointer user_data)
{
	AsDaemon *daemon = user_data;
	g_autoptr(GError) error = NULL;

	if (!as_engine_reload(daemon->engine, NULL, NULL, &error))
		g_warning("reload refused, the configuration in force stays: %s", error->message);
	return G_SOURCE_CONTINUE;
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
	if (!daemon->config->one_shot ||
	    as_transfer_get_state(transfer) != AS_TRANSFER_STATE_COMPLETED)
		return;
	g_message("one-shot: %s received and verified, exiting",
		  as_transfer_get_filename(transfer));
	g_signal_handlers_disconnect_by_func(engine, as_main_transfer_finished_cb, daemon);
	/* let the reply reach the sender first */
	daemon->one_shot_deadline_us = g_get_monotonic_time() + AS_MAIN_ONE_SHOT_DRAIN_MS * 1000;
	g_timeout_add(AS_MAIN_POLL_MS, as_main_one_shot_poll_cb, daemon);
}

static void
as_main_bus_activity_clear(gpointer data)
{
	AsMainBusActivity *activity = data;
	g_mutex_clear(&activity->mutex);
}

static void
as_main_bus_activity_unref(gpointer data)
{
	g_atomic_rc_box_release_full(data, as_main_bus_activity_clear);
}

static AsMainBusActivity *
as_main_bus_activity_new(void)
{
	AsMainBusActivity *activity = g_atomic_rc_box_new0(AsMainBusActivity);
	g_mutex_init(&activity->mutex);
	activity->last_us = g_get_monotonic_time();
	return activity;
}

static void
as_main_bus_activity_touch(AsMainBusActivity *activity)
{
	g_mutex_lock(&activity->mutex);
	activity->last_us = g_get_monotonic_time();
	g_mutex_unlock(&activity->mutex);
}

/* every call restarts the idle clock, and an unanswered one (an async handler still working)
 * holds it; runs in the GDBus worker thread, for every message in and out */
static GDBusMessage *
as_main_bus_filter_cb(GDBusConnection *connection,
		      GDBusMessage *message,
		      gboolean incoming,
		      gpointer user_data)
{
	AsMainBusActivity *activity = user_data;
	GDBusMessageType type = g_dbus_message_get_message_type(message);

	if (incoming && type == G_DBUS_MESSAGE_TYPE_METHOD_CALL) {
		gboolean wants_reply = (g_dbus_message_get_flags(message) &
					G_DBUS_MESSAGE_FLAGS_NO_REPLY_EXPECTED) == 0;
		g_mutex_lock(&activity->mutex);
		activity->last_us = g_get_monotonic_time();
		if (wants_reply)
			activity->calls_in_flight++;
		g_mutex_unlock(&activity->mutex);
	} else if (!incoming && (type == G_DBUS_MESSAGE_TYPE_METHOD_RETURN ||
				 type == G_DBUS_MESSAGE_TYPE_ERROR)) {
		/* everything we send that is a return or an error answers a call we received */
		g_mutex_lock(&activity->mutex);
		activity->last_us = g_get_monotonic_time();
		if (activity->calls_in_flight > 0)
			activity->calls_in_flight--;
		g_mutex_unlock(&activity->mutex);
	}
	return message;
}

static guint
as_main_bus_activity_get_calls_in_flight(AsMainBusActivity *activity, gint64 *last_us)
{
	guint calls;

	g_mutex_lock(&activity->mutex);
	calls = activity->calls_in_flight;
	if (last_us != NULL)
		*last_us = activity->last_us;
	g_mutex_unlock(&activity->mutex);
	return calls;
}

static void
as_main_active_transfers_notify_cb(AsEngine *engine, GParamSpec *pspec, gpointer user_data)
{
	AsDaemon *daemon = user_data;
	/* a transfer starting or ending is activity; while one runs, the idle check waits */
	as_main_bus_activity_touch(daemon->activity);
}

static gboolean
as_main_idle_drain_cb(gpointer user_data)
{
	AsDaemon *daemon = user_data;
	g_autoptr(GError) error = NULL;
	guint calls = as_main_bus_activity_get_calls_in_flight(daemon->activity, NULL);

	/* a transfer started by a late call is real work: finish it, however long it takes */
	if (as_engine_get_active_transfers(daemon->engine) > 0)
		return G_SOURCE_CONTINUE;
	if (calls > 0 && g_get_monotonic_time() < daemon->idle_drain_deadline_us)
		return G_SOURCE_CONTINUE;
	if (calls > 0)
		g_warning("exiting with %u D-Bus calls unanswered after %d ms", calls,
			  AS_MAIN_IDLE_DRAIN_MS);
	/* the replies are queued in the worker thread: make sure they leave before we do */
	if (!g_dbus_connection_flush_sync(daemon->connection, NULL, &error))
		g_debug("cannot flush the bus connection: %s", error->message);
	daemon->idle_id = 0;
	g_main_loop_quit(daemon->loop);
	return G_SOURCE_REMOVE;
}

static void
as_main_idle_exit(AsDaemon *daemon)
{
	g_message("idle for %d s with HTTP off: exiting; the next D-Bus call starts it again",
		  daemon->config->idle_timeout_s);

	/* release the name first (a synchronous ReleaseName): from then on the bus activates a
	 * fresh instance for new calls, and the calls that reached this one before the release
	 * are already counted by the filter, so they can be answered before exiting */
	g_bus_unown_name(daemon->bus_owner_id);
	daemon->bus_owner_id = 0;
	daemon->idle_drain_deadline_us = g_get_monotonic_time() + AS_MAIN_IDLE_DRAIN_MS * 1000;
	daemon->idle_id = g_timeout_add(AS_MAIN_POLL_MS, as_main_idle_drain_cb, daemon);
}

static gboolean as_main_idle_check_cb(gpointer user_data);

static void
as_main_idle_arm(AsDaemon *daemon, gint64 delay_us)
{
	guint delay_ms = (guint)((MAX(delay_us, 0) + 999) / 1000);
	g_clear_handle_id(&daemon->idle_id, g_source_remove);
	daemon->idle_id = g_timeout_add(MAX(delay_ms, 1), as_main_idle_check_cb, daemon);
}

static gboolean
as_main_idle_check_cb(gpointer user_data)
{
	AsDaemon *daemon = user_data;
	gint64 timeout_us = (gint64)daemon->config->idle_timeout_s * G_USEC_PER_SEC;
	gint64 last_us = 0;
	gint64 idle_us;
	guint calls = as_main_bus_activity_get_calls_in_flight(daemon->activity, &last_us);

	daemon->idle_id = 0;
	/* busy: the end of the work touches the clock, so look again a full period later */
	if (calls > 0 || as_engine_get_active_transfers(daemon->engine) > 0) {
		as_main_idle_arm(daemon, timeout_us);
		return G_SOURCE_REMOVE;
	}
	idle_us = g_get_monotonic_time() - last_us;
	if (idle_us < timeout_us) {
		as_main_idle_arm(daemon, timeout_us - idle_us);
		return G_SOURCE_REMOVE;
	}
	as_main_idle_exit(daemon);
	return G_SOURCE_REMOVE;
}

static void
as_main_bus_acquired_cb(GDBusConnection *connection, const gchar *name, gpointer user_data)
{
	AsDaemon *daemon = user_data;
	g_autoptr(GError) error = NULL;

	daemon->dbus = as_dbus_service_new(daemon->engine);
	as_dbus_service_set_sender(daemon->dbus, daemon->sender);
	if (!as_dbus_service_start(daemon->dbus, connection, &error))
		g_warning("cannot export the D-Bus API: %s", error->message);
}

static void
as_main_write_ready(AsDaemon *daemon)
{
	g_autofree gchar *line = NULL;
	gssize len;

	if (daemon->config->ready_fd < 0)
		return;
	line = g_strdup_printf("port=%u quic_port=%u https_port=%u\n",
			       daemon->http != NULL ? as_http_server_get_port(daemon->http) : 0,
			       as_engine_get_quic_port(daemon->engine),
			       as_engine_get_https_port(daemon->engine));
	len = (gssize)strlen(line);
	if (write(daemon->config->ready_fd, line, len) != len)
		g_warning("cannot write to --ready-fd: %s", g_strerror(errno));
	close(daemon->config->ready_fd);
	daemon->config->ready_fd = -1;
}

static void
as_main_name_acquired_cb(GDBusConnection *connection, const gchar *name, gpointer user_data)
{
	AsDaemon *daemon = user_data;

	/* owning the name is the readiness signal (Type=dbus), so the idle clock starts here */
	g_info("owns %s on the session bus", name);
	if (daemon->http == NULL)
		as_main_write_ready(daemon);
	if (daemon->activity != NULL) {
		as_main_bus_activity_touch(daemon->activity);
		as_main_idle_arm(daemon, (gint64)daemon->config->idle_timeout_s * G_USEC_PER_SEC);
	}
}

static void
as_main_name_lost_cb(GDBusConnection *connection, const gchar *name, gpointer user_data)
{
	AsDaemon *daemon = user_data;
	if (connection == NULL && daemon->http == NULL) {
		g_message("the session bus went away and HTTP is off: nothing left to serve, "
			  "exiting");
		g_main_loop_quit(daemon->loop);
		return;
	}
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

#if HAVE_QUIC
/* QUIC next to HTTP, on the same bind address, with an identity senders can pin */
static gboolean
as_main_start_quic(AsDaemon *daemon, GError **error)
{
	AsConfig *config = daemon->config;
	AsTlsIdentity *identity = as_engine_get_tls_identity(daemon->engine);
	g_autoptr(GError) error_local = NULL;

	daemon->quic = as_quic_receiver_new(daemon->engine, identity);
	/* aerosync/2 next to the 0.x framing, on the same listener and chunk store */
	as_quic_v2_ingest_attach(daemon->engine, as_quic_receiver_get_server(daemon->quic));
	if (!as_quic_receiver_listen(daemon->quic, config->bind, (guint16)config->quic_port,
				     &error_local)) {
		g_set_error(error, AS_ERROR, AS_ERROR_FAILED,
			    "%s (--http-only receives without QUIC)", error_local->message);
		return FALSE;
	}
	as_engine_set_quic(daemon->engine, as_quic_receiver_get_port(daemon->quic),
			   as_tls_identity_get_fingerprint(identity));
	g_message("receiving over QUIC on udp/%u, certificate sha256 %s",
		  as_quic_receiver_get_port(daemon->quic),
		  as_tls_identity_get_fingerprint(identity));
	return TRUE;
}
#endif

/* the same routes over TLS, with the certificate QUIC presents */
static gboolean
as_main_start_https(AsDaemon *daemon, GError **error)
{
	AsConfig *config = daemon->config;
	AsTlsIdentity *identity = as_engine_get_tls_identity(daemon->engine);
	g_autoptr(GTlsCertificate) certificate = NULL;

	certificate = as_tls_identity_new_gtls_certificate(identity, error);
	if (certificate == NULL)
		return FALSE;
	if (!as_http_server_listen_https(daemon->http, config->bind, (guint16)config->https_port,
					 certificate, error))
		return FALSE;
	as_engine_set_https_port(daemon->engine, as_http_server_get_https_port(daemon->http));
	g_message("receiving over HTTPS on https://%s:%u, certificate sha256 %s", config->bind,
		  as_http_server_get_https_port(daemon->http),
		  as_tls_identity_get_fingerprint(identity));
	return TRUE;
}

/* what /health and GetStatus offer: only what a sender can reach */
static void
as_main_set_protocols(AsDaemon *daemon)
{
	g_autoptr(GPtrArray) protocols = g_ptr_array_new();

	if (daemon->http != NULL)
		g_ptr_array_add(protocols, (gpointer) "http");
#if HAVE_QUIC
	if (daemon->quic != NULL)
		g_ptr_array_add(protocols, (gpointer) "quic");
#endif
	if (as_engine_get_https_port(daemon->engine) != 0)
		g_ptr_array_add(protocols, (gpointer) "https");
	g_ptr_array_add(protocols, NULL);
	as_engine_set_protocols(daemon->engine, (const gchar *const *)protocols->pdata);
}

static gboolean
as_main_start_dbus(AsDaemon *daemon, GError **error)
{
	g_autoptr(GError) error_local = NULL;
	g_autoptr(GDBusConnection) connection = NULL;

	if (daemon->config->bus == AS_CONFIG_BUS_NONE)
		return TRUE;
	connection = g_bus_get_sync(G_BUS_TYPE_SESSION, NULL, &error_local);
	if (connection == NULL && daemon->http == NULL) {
		g_propagate_prefixed_error(
			error, g_steal_pointer(&error_local),
			"HTTP is off (listen=false) and there is no session bus: ");
		return FALSE;
	}
	if (connection == NULL) {
		g_message("no session bus (%s): continuing with HTTP only, no D-Bus API",
			  error_local->message);
		return TRUE;
	}
	g_dbus_connection_set_exit_on_close(connection, FALSE);
	daemon->connection = g_object_ref(connection);

	/* idle exit only where the bus is all we serve: a receiver must stay reachable */
	if (daemon->http == NULL && daemon->config->idle_timeout_s > 0) {
		daemon->activity = as_main_bus_activity_new();
		daemon->filter_id = g_dbus_connection_add_filter(
			connection, as_main_bus_filter_cb,
			g_atomic_rc_box_acquire(daemon->activity), as_main_bus_activity_unref);
		g_signal_connect(daemon->engine, "notify::active-transfers",
				 G_CALLBACK(as_main_active_transfers_notify_cb), daemon);
	}
	/* export the objects before asking for the name: the bus hands a call that activated us to
	 * the new owner at once, and GDBus answers a call to an object not yet exported with
	 * UnknownMethod */
	as_main_bus_acquired_cb(connection, AS_DBUS_NAME, daemon);
	daemon->bus_owner_id = g_bus_own_name_on_connection(
		connection, AS_DBUS_NAME, G_BUS_NAME_OWNER_FLAGS_DO_NOT_QUEUE,
		as_main_name_acquired_cb, as_main_name_lost_cb, daemon, NULL);
	return TRUE;
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

	/* the command line is parsed again on every reload */
	g_auto(GStrv) argv_copy = g_strdupv(argv);

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
	as_engine_set_argv(engine, (const gchar *const *)argv_copy);
	removed = as_chunk_store_cleanup_stale(as_engine_get_chunk_store(engine),
					       AS_CONFIG_STAGING_MAX_AGE_S);
	/* single uploads cannot resume: partial ones of a dead process are garbage */
	removed += as_chunk_store_cleanup_temps(as_engine_get_chunk_store(engine));
	if (removed > 0)
		g_message("removed %u stale staging entries", removed);

	if (config->listen) {
		http = as_http_server_new(engine);
		if (!as_http_server_listen(http, config->bind, (guint16)config->port, &error)) {
			g_printerr("aerosyncd: %s\n", error->message);
			return EXIT_FAILURE;
		}
		daemon.http = http;
		as_engine_set_http_port(engine, as_http_server_get_port(http));
	} else {
		/* GetStatus and /health must not advertise a protocol nobody can reach */
		const gchar *const no_protocols[] = {NULL};
		as_engine_set_protocols(engine, no_protocols);
	}

	/* one TLS identity for QUIC and HTTPS, so a sender pins one fingerprint */
	if (http != NULL && (config->https || (HAVE_QUIC && config->quic))) {
		g_autoptr(AsTlsIdentity) identity = as_tls_identity_new_for_options(
			config->tls_cert, config->tls_key, config->state_dir, &error);
		if (identity == NULL) {
			g_printerr("aerosyncd: %s\n", error->message);
			return EXIT_FAILURE;
		}
		as_engine_set_tls_identity(engine, identity);
	}
#if HAVE_QUIC
	if (http != NULL && config->quic && !as_main_start_quic(&daemon, &error)) {
		g_printerr("aerosyncd: %s\n", error->message);
		return EXIT_FAILURE;
	}
#endif
	if (http != NULL && config->https && !as_main_start_https(&daemon, &error)) {
		g_printerr("aerosyncd: %s\n", error->message);
		return EXIT_FAILURE;
	}
	if (http != NULL)
		as_main_set_protocols(&daemon);

	/* sends live in the daemon: unfinished ones of an earlier run go on below */
	daemon.sender = as_sender_new(engine, 0);

	loop = g_main_loop_new(NULL, FALSE);
	daemon.loop = loop;
	g_unix_signal_add(SIGTERM, as_main_quit_cb, &daemon);
	g_unix_signal_add(SIGINT, as_main_quit_cb, &daemon);
	g_unix_signal_add(SIGHUP, as_main_reload_cb, &daemon);
	g_signal_connect(engine, "transfer-finished", G_CALLBACK(as_main_transfer_finished_cb),
			 &daemon);

	if (!as_main_start_dbus(&daemon, &error)) {
		g_printerr("aerosyncd: %s\n", error->message);
		return EXIT_FAILURE;
	}
	if (http != NULL) {
		g_message("receiving into %s on http://%s:%u (auth %s, tokens: %s)",
			  config->save_to, config->bind, as_http_server_get_port(http),
			  config->auth ? "on" : "OFF",
			  as_token_store_get_backend_name(as_engine_get_token_store(engine)));
		if (config->auth &&
		    as_token_store_get_count(as_engine_get_token_store(engine)) == 0 &&
		    config->auth_token_file == NULL)
			g_message("no tokens yet: create one with "
				  "'aerosyncctl token generate --label NAME'");
	} else if (daemon.activity != NULL) {
		g_message("HTTP is off (listen=false): serving D-Bus only, exiting after %d s idle",
			  config->idle_timeout_s);
	} else {
		g_message("HTTP is off (listen=false): serving D-Bus only");
	}
#if HAVE_MDNS
	as_main_start_mdns(&daemon);
#endif
	/* with HTTP off, ready means owning the bus name: see as_main_name_acquired_cb() */
	if (http != NULL)
		as_main_write_ready(&daemon);

	as_sender_resume_all(daemon.sender);

	g_main_loop_run(loop);

	/* unfinished sends keep their resume records and go on at the next start */
	as_sender_shutdown(daemon.sender);

	g_clear_handle_id(&daemon.idle_id, g_source_remove);
	if (http != NULL)
		as_http_server_stop(http);
#if HAVE_QUIC
	if (daemon.quic != NULL)
		as_quic_receiver_stop(daemon.quic);
	g_clear_object(&daemon.quic);
#endif
	as_chunk_store_remove_own_temps(as_engine_get_chunk_store(engine));
	if (daemon.bus_owner_id != 0)
		g_bus_unown_name(daemon.bus_owner_id);
	if (daemon.filter_id != 0)
		g_dbus_connection_remove_filter(daemon.connection, daemon.filter_id);
	g_signal_handlers_disconnect_by_data(engine, &daemon);
	g_clear_pointer(&daemon.activity, as_main_bus_activity_unref);
	g_clear_object(&daemon.dbus);
	g_clear_object(&daemon.sender);
	g_clear_object(&daemon.connection);
#if HAVE_MDNS
	if (daemon.mdns != NULL)
		as_mdns_publisher_stop(daemon.mdns);
	g_clear_object(&daemon.mdns);
#endif
	return daemon.exit_code;
}
