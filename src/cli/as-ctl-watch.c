/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "AsCtlWatch"

#include "config.h"

#include <glib/gi18n.h>
#include <libsoup/soup.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "as-ctl-watch.h"

/* AeroSync 0.x: the first retry after 2 s, doubling, never more than 60 s apart */
#define AS_CTL_WATCH_RETRY_DELAY_S     2.0
#define AS_CTL_WATCH_RETRY_DELAY_MIN_S 0.1
#define AS_CTL_WATCH_RETRY_DELAY_MAX_S 60.0
#define AS_CTL_WATCH_MAX_RETRIES_MAX   1000000
/* the handshake; once open the connection lives as long as it is healthy */
#define AS_CTL_WATCH_CONNECT_TIMEOUT_S 10
/* pings keep NAT entries alive and let a dead peer show up as a write error */
#define AS_CTL_WATCH_KEEPALIVE_S 30
/* a token file holds one line: anything longer is not a token */
#define AS_CTL_WATCH_TOKEN_MAX	 4096
#define AS_CTL_WATCH_SHA_PREFIX	 8
#define AS_CTL_WATCH_PERCENT	 100
#define AS_CTL_WATCH_DEFAULT_URL "ws://localhost:7788/ws"

const GOptionEntry as_ctl_watch_options[] = {
	AS_CTL_OPTION_VALUE("format",
			    '\0',
			    /* TRANSLATORS: --format option of 'watch'; keep the values */
			    N_("pretty (default) or json, one event per line"),
			    /* TRANSLATORS: placeholder for the value of --format */
			    N_("FORMAT")),
	AS_CTL_OPTION_VALUE("filter",
			    '\0',
			    /* TRANSLATORS: --filter option of 'watch' */
			    N_("Show only events whose name contains EVENT"),
			    /* TRANSLATORS: placeholder for the value of --filter */
			    N_("EVENT")),
	/* TRANSLATORS: --reconnect option of 'watch' */
	AS_CTL_OPTION_FLAG("reconnect", '\0', N_("Connect again when the connection is lost")),
	AS_CTL_OPTION_VALUE("max-retries",
			    '\0',
			    /* TRANSLATORS: --max-retries option of 'watch' */
			    N_("With --reconnect, give up after N failures in a row (0: never)"),
			    /* TRANSLATORS: placeholder for the value of --max-retries */
			    N_("N")),
	AS_CTL_OPTION_VALUE("retry-delay",
			    '\0',
			    /* TRANSLATORS: --retry-delay option of 'watch' */
			    N_("With --reconnect, wait this long before the first retry (2)"),
			    /* TRANSLATORS: placeholder for the value of --retry-delay */
			    N_("SECONDS")),
	AS_CTL_OPTION_VALUE("token-file",
			    '\0',
			    /* TRANSLATORS: --token-file option of 'watch' */
			    N_("Authenticate with the token in FILE"),
			    /* TRANSLATORS: placeholder for the value of --token-file */
			    N_("FILE")),
	{NULL},
};

typedef struct {
	AsCtl *ctl;		       /* (unowned) */
	GMainLoop *loop;	       /* (owned) */
	SoupSession *session;	       /* (owned) */
	SoupMessage *msg;	       /* (owned) (nullable): the handshake under way */
	SoupWebsocketConnection *conn; /* (owned) (nullable) */
	GCancellable *cancellable;     /* (owned) */
	gchar *url;		       /* (owned): http(s)://…/ws, what libsoup connects to */
	gchar *display;		       /* (owned): ws(s)://…/ws, what the user reads */
	gchar *token;		       /* (owned) (nullable) */
	gchar *filter;		       /* (owned) (nullable) */
	gboolean json;		       /* --format json */
	gboolean reconnect;	       /* --reconnect */
	guint max_retries;	       /* 0: retry for ever */
	gdouble retry_delay_s;	       /* the first wait; doubled each time */
	guint attempt;		       /* failed attempts in a row */
	guint retry_id;		       /* the pending retry */
	gboolean pending_connect;      /* a handshake callback is still to come */
	gboolean done;		       /* the loop may end */
	GError *error;		       /* (owned) (nullable): why it ended */
} AsCtlWatch;

/* --- the command line --- */

static gboolean
as_ctl_watch_usage_error(GError **error, const gchar *message)
{
	g_set_error(error, AS_CTL_ERROR, AS_CTL_EXIT_USAGE,
		    /* TRANSLATORS: %s says what is wrong with the command line */
		    _("%s (see 'aerosyncctl help watch')"), message);
	return FALSE;
}

/* ws://HOST:PORT/ws for HOST[:PORT]; a ws:// or wss:// URL as given */
static gboolean
as_ctl_watch_parse_target(AsCtlWatch *watch, const gchar *target, GError **error)
{
	g_autoptr(GUri) uri = NULL;
	g_autofree gchar *ws_url = NULL;
	const gchar *scheme;
	const gchar *path;
	gint port;

	if (target == NULL)
		ws_url = g_strdup(AS_CTL_WATCH_DEFAULT_URL);
	else if (g_str_has_prefix(target, "ws://") || g_str_has_prefix(target, "wss://"))
		ws_url = g_strdup(target);
	else if (strstr(target, "://") == NULL && target[0] != '\0')
		ws_url = g_strdup_printf("ws://%s/ws", target);
	if (ws_url != NULL)
		uri = g_uri_parse(ws_url, G_URI_FLAGS_NONE, NULL);
	if (uri == NULL || g_uri_get_host(uri) == NULL || g_uri_get_host(uri)[0] == '\0') {
		g_autofree gchar *safe = as_ctl_sanitize_text(target);
		g_autofree gchar *message =
			/* TRANSLATORS: %s is what the user typed */
			g_strdup_printf(_("invalid receiver '%s': give HOST, HOST:PORT or a "
					  "ws:// URL"),
					safe);
		return as_ctl_watch_usage_error(error, message);
	}
	scheme = g_strcmp0(g_uri_get_scheme(uri), "wss") == 0 ? "https" : "http";
	port = g_uri_get_port(uri);
	if (port <= 0 && target != NULL && strstr(target, "://") == NULL)
		port = AS_CTL_DEFAULT_PORT;
	path = g_uri_get_path(uri);
	if (path == NULL || path[0] == '\0')
		path = "/ws";
	watch->url = g_uri_join(G_URI_FLAGS_NONE, scheme, NULL, g_uri_get_host(uri), port, path,
				g_uri_get_query(uri), NULL);
	watch->display = g_uri_join(G_URI_FLAGS_NONE, g_uri_get_scheme(uri), NULL,
				    g_uri_get_host(uri), port, path, g_uri_get_query(uri), NULL);
	return TRUE;
}

static gboolean
as_ctl_watch_read_token(AsCtlWatch *watch, const gchar *filename, GError **error)
{
	g_autoptr(GFile) file = g_file_new_for_commandline_arg(filename);
	g_autoptr(GFileInputStream) stream = NULL;
	g_autofree gchar *buf = g_malloc0(AS_CTL_WATCH_TOKEN_MAX + 1);
	g_autoptr(GError) error_local = NULL;
	gsize n_read = 0;

	stream = g_file_read(file, NULL, &error_local);
	if (stream == NULL ||
	    !g_input_stream_read_all(G_INPUT_STREAM(stream), buf, AS_CTL_WATCH_TOKEN_MAX + 1,
				     &n_read, NULL, &error_local)) {
		g_set_error(error, AS_CTL_ERROR, AS_CTL_EXIT_FAILURE,
			    /* TRANSLATORS: first %s is a file, the second why */
			    _("cannot read the token file %s: %s"), filename, error_local->message);
		return FALSE;
	}
	g_strstrip(buf);
	if (n_read > AS_CTL_WATCH_TOKEN_MAX || buf[0] == '\0' || strpbrk(buf, " \t\r\n") != NULL) {
		g_set_error(error, AS_CTL_ERROR, AS_CTL_EXIT_FAILURE,
			    /* TRANSLATORS: %s is a file */
			    _("the token file %s does not hold one token"), filename);
		return FALSE;
	}
	watch->token = g_steal_pointer(&buf);
	return TRUE;
}

static gboolean
as_ctl_watch_parse(AsCtlWatch *watch, gchar **values, GError **error)
{
	AsCtl *self = watch->ctl;
	const gchar *format = as_ctl_get_option(self, "format");
	const gchar *max_retries = as_ctl_get_option(self, "max-retries");
	const gchar *retry_delay = as_ctl_get_option(self, "retry-delay");
	const gchar *filter = as_ctl_get_option(self, "filter");
	const gchar *token_file = as_ctl_get_option(self, "token-file");

	watch->json = self->json;
	if (format != NULL) {
		if (g_strcmp0(format, "json") == 0) {
			watch->json = TRUE;
		} else if (g_strcmp0(format, "pretty") == 0) {
			if (self->json)
				return as_ctl_watch_usage_error(
					error,
					/* TRANSLATORS: keep the options untranslated */
					_("--json and --format pretty exclude each other"));
		} else {
			g_autofree gchar *safe = as_ctl_sanitize_text(format);
			g_autofree gchar *message =
				/* TRANSLATORS: %s is the value given; keep the values */
				g_strdup_printf(_("invalid --format '%s': use pretty or json"),
						safe);
			return as_ctl_watch_usage_error(error, message);
		}
	}
	watch->reconnect = as_ctl_has_option(self, "reconnect");
	if ((max_retries != NULL || retry_delay != NULL) && !watch->reconnect) {
		return as_ctl_watch_usage_error(
			error,
			/* TRANSLATORS: keep the options untranslated */
			_("--max-retries and --retry-delay need --reconnect"));
	}
	if (max_retries != NULL) {
		guint64 value = 0;
		if (!g_ascii_string_to_unsigned(max_retries, 10, 0, AS_CTL_WATCH_MAX_RETRIES_MAX,
						&value, NULL)) {
			g_autofree gchar *safe = as_ctl_sanitize_text(max_retries);
			g_autofree gchar *message =
				/* TRANSLATORS: %s is the value given */
				g_strdup_printf(_("invalid --max-retries '%s': give a number, 0 "
						  "for no limit"),
						safe);
			return as_ctl_watch_usage_error(error, message);
		}
		watch->max_retries = (guint)value;
	}
	watch->retry_delay_s = AS_CTL_WATCH_RETRY_DELAY_S;
	if (retry_delay != NULL) {
		gchar *end = NULL;
		gdouble value = g_ascii_strtod(retry_delay, &end);
		if (end == retry_delay || *end != '\0' || !isfinite(value) ||
		    value < AS_CTL_WATCH_RETRY_DELAY_MIN_S ||
		    value > AS_CTL_WATCH_RETRY_DELAY_MAX_S) {
			g_autofree gchar *safe = as_ctl_sanitize_text(retry_delay);
			g_autofree gchar *message = g_strdup_printf(
				/* TRANSLATORS: %s is the value given, then the bounds in seconds */
				_("invalid --retry-delay '%s': give seconds from %.1f to %.0f"),
				safe, AS_CTL_WATCH_RETRY_DELAY_MIN_S,
				AS_CTL_WATCH_RETRY_DELAY_MAX_S);
			return as_ctl_watch_usage_error(error, message);
		}
		watch->retry_delay_s = value;
	}
	if (filter != NULL)
		watch->filter = g_strdup(filter);
	if (!as_ctl_watch_parse_target(watch, values[0], error))
		return FALSE;
	if (token_file != NULL && !as_ctl_watch_read_token(watch, token_file, error))
		return FALSE;
	return TRUE;
}

/* --- events --- */

static gchar *
as_ctl_watch_member_text(JsonObject *obj, const gchar *name)
{
	JsonNode *node = json_object_get_member(obj, name);
	if (node == NULL || json_node_get_value_type(node) != G_TYPE_STRING)
		return g_strdup("");
	return as_ctl_sanitize_text(json_node_get_string(node));
}

static guint64
as_ctl_watch_member_uint(JsonObject *obj, const gchar *name)
{
	JsonNode *node = json_object_get_member(obj, name);
	if (node == NULL || json_node_get_value_type(node) != G_TYPE_INT64 ||
	    json_node_get_int(node) < 0)
		return 0;
	return (guint64)json_node_get_int(node);
}

/* one line per event: "completed" on stdout, the rest on stderr, as AeroSync 0.x did */
static void
as_ctl_watch_print_pretty(AsCtlWatch *watch, const gchar *event, JsonObject *obj)
{
	g_autoptr(GDateTime) now = g_date_time_new_now_local();
	g_autofree gchar *time = g_date_time_format(now, "%H:%M:%S");
	g_autofree gchar *name = as_ctl_watch_member_text(obj, "filename");
	g_autofree gchar *size = as_ctl_format_size(as_ctl_watch_member_uint(obj, "size"));
	g_autofree gchar *event_safe = as_ctl_sanitize_text(event);
	g_autofree gchar *line = NULL;

	if (g_strcmp0(event, "completed") == 0) {
		g_autofree gchar *sha256 = as_ctl_watch_member_text(obj, "sha256");
		g_autofree gchar *mark =
			as_ctl_colourise(watch->ctl, "completed", AS_CTL_COLOUR_GREEN);
		if (strlen(sha256) > AS_CTL_WATCH_SHA_PREFIX)
			sha256[AS_CTL_WATCH_SHA_PREFIX] = '\0';
		if (sha256[0] != '\0')
			g_print("%s %s %s (%s) sha256=%s\n", time, mark, name, size, sha256);
		else
			g_print("%s %s %s (%s)\n", time, mark, name, size);
		fflush(stdout);
		return;
	}
	if (g_strcmp0(event, "transfer_started") == 0) {
		g_autofree gchar *ip = as_ctl_watch_member_text(obj, "sender_ip");
		if (as_ctl_watch_member_uint(obj, "size") > 0)
			/* TRANSLATORS: 'watch': a file starts to arrive; the name, size, sender */
			line = g_strdup_printf(_("%s (%s) from %s"), name, size, ip);
		else
			/* TRANSLATORS: 'watch': a file of unknown size starts to arrive */
			line = g_strdup_printf(_("%s from %s"), name, ip);
	} else if (g_strcmp0(event, "progress") == 0) {
		guint64 bytes = as_ctl_watch_member_uint(obj, "bytes");
		guint64 total = as_ctl_watch_member_uint(obj, "total");
		g_autofree gchar *bytes_str = as_ctl_format_size(bytes);
		g_autofree gchar *total_str = as_ctl_format_size(total);
		if (total > 0) {
			guint percent = (guint)(MIN(bytes, total) * AS_CTL_WATCH_PERCENT / total);
			/* TRANSLATORS: 'watch': the name, percent, bytes so far and in all */
			line = g_strdup_printf(_("%s %u%% (%s of %s)"), name, percent, bytes_str,
					       total_str);
		} else {
			line = g_strdup_printf("%s %s", name, bytes_str);
		}
	} else if (g_strcmp0(event, "failed") == 0) {
		g_autofree gchar *reason = as_ctl_watch_member_text(obj, "reason");
		line = g_strdup_printf("%s: %s", name, reason);
	} else {
		/* an event this version does not know: show it whole */
		g_autoptr(JsonGenerator) generator = json_generator_new();
		g_autoptr(JsonNode) root = json_node_new(JSON_NODE_OBJECT);
		g_autofree gchar *text = NULL;
		json_node_set_object(root, obj);
		json_generator_set_root(generator, root);
		text = json_generator_to_data(generator, NULL);
		line = as_ctl_sanitize_text(text);
	}
	g_printerr("%s %s %s\n", time, event_safe, line);
}

static void
as_ctl_watch_message_cb(SoupWebsocketConnection *conn,
			gint type,
			GBytes *message,
			gpointer user_data)
{
	AsCtlWatch *watch = user_data;
	g_autoptr(JsonParser) parser = json_parser_new();
	g_autoptr(GError) error_local = NULL;
	g_autofree gchar *event = NULL;
	gsize size = 0;
	const gchar *data = g_bytes_get_data(message, &size);
	JsonNode *root;
	JsonObject *obj;

	if (type != SOUP_WEBSOCKET_DATA_TEXT)
		return;
	if (!json_parser_load_from_data(parser, data, (gssize)size, &error_local) ||
	    (root = json_parser_get_root(parser)) == NULL || !JSON_NODE_HOLDS_OBJECT(root)) {
		g_debug("ignoring a frame that is not a JSON object");
		return;
	}
	obj = json_node_get_object(root);
	event = g_strdup(json_object_get_string_member_with_default(obj, "event", ""));
	if (watch->filter != NULL && strstr(event, watch->filter) == NULL)
		return;
	if (watch->json) {
		/* re-serialized, so that one event is always exactly one line */
		as_ctl_print_json_line(watch->ctl, root);
		return;
	}
	as_ctl_watch_print_pretty(watch, event, obj);
}

/* --- the connection --- */

static void as_ctl_watch_connect(AsCtlWatch *watch);

static void
as_ctl_watch_stop(AsCtlWatch *watch, GError *error)
{
	watch->done = TRUE;
	if (watch->error == NULL)
		watch->error = error;
	else if (error != NULL)
		g_error_free(error);
	g_main_loop_quit(watch->loop);
}

static gboolean
as_ctl_watch_retry_cb(gpointer user_data)
{
	AsCtlWatch *watch = user_data;
	watch->retry_id = 0;
	as_ctl_watch_connect(watch);
	return G_SOURCE_REMOVE;
}

/* a failure the next attempt may not see: retry with back-off, or give up */
static void
as_ctl_watch_retry(AsCtlWatch *watch, const gchar *reason)
{
	g_autofree gchar *safe = as_ctl_sanitize_text(reason);
	gdouble delay_s;

	if (!watch->reconnect) {
		as_ctl_watch_stop(watch, g_error_new(AS_CTL_ERROR, AS_CTL_EXIT_PEER_UNREACHABLE,
						     /* TRANSLATORS: first %s is a URL, the second
						      * why; keep the option */
						     _("%s: %s (--reconnect retries)"),
						     watch->display, safe));
		return;
	}
	watch->attempt++;
	if (watch->max_retries > 0 && watch->attempt > watch->max_retries) {
		as_ctl_watch_stop(watch, g_error_new(AS_CTL_ERROR, AS_CTL_EXIT_PEER_UNREACHABLE,
						     /* TRANSLATORS: first %s is a URL, %u a number
						      * of retries, the last %s why */
						     ngettext("%s: giving up after %u retry: %s",
							      "%s: giving up after %u retries: %s",
							      watch->max_retries),
						     watch->display, watch->max_retries, safe));
		return;
	}
	/* delay·2^(n-1), capped */
	delay_s = watch->retry_delay_s;
	for (guint i = 1; i < watch->attempt && delay_s < AS_CTL_WATCH_RETRY_DELAY_MAX_S; i++)
		delay_s *= 2;
	delay_s = MIN(delay_s, AS_CTL_WATCH_RETRY_DELAY_MAX_S);
	if (watch->max_retries > 0) {
		g_printerr(
			/* TRANSLATORS: 'watch' is retrying; a URL, why, seconds, retry n of m */
			_("aerosyncctl: %s: %s; retrying in %.1f s (%u of %u)"), watch->display,
			safe, delay_s, watch->attempt, watch->max_retries);
	} else {
		g_printerr(
			/* TRANSLATORS: 'watch' is retrying; a URL, why, seconds, retry number */
			_("aerosyncctl: %s: %s; retrying in %.1f s (retry %u)"), watch->display,
			safe, delay_s, watch->attempt);
	}
	g_printerr("\n");
	watch->retry_id = g_timeout_add((guint)(delay_s * 1000), as_ctl_watch_retry_cb, watch);
}

static void
as_ctl_watch_closed_cb(SoupWebsocketConnection *conn, gpointer user_data)
{
	AsCtlWatch *watch = user_data;
	gushort code = soup_websocket_connection_get_close_code(conn);
	g_autofree gchar *reason = g_strdup(soup_websocket_connection_get_close_data(conn));

	g_signal_handlers_disconnect_by_data(conn, watch);
	g_clear_object(&watch->conn);
	if (watch->done)
		return;
	g_debug("closed with code %u", code);

	/* the receiver said goodbye: there is nothing to come back for */
	if (code == SOUP_WEBSOCKET_CLOSE_NORMAL) {
		g_printerr(
			/* TRANSLATORS: 'watch' ended because the receiver closed; %s is a URL */
			_("aerosyncctl: %s closed the connection"), watch->display);
		g_printerr("\n");
		as_ctl_watch_stop(watch, NULL);
		return;
	}
	/* 1001 is what aerosyncd sends as it shuts down: with --reconnect, wait for the restart */
	if (code == 0 || code == SOUP_WEBSOCKET_CLOSE_GOING_AWAY ||
	    code == SOUP_WEBSOCKET_CLOSE_ABNORMAL) {
		/* TRANSLATORS: why 'watch' reconnects */
		as_ctl_watch_retry(watch, code == SOUP_WEBSOCKET_CLOSE_GOING_AWAY
						  ? _("the receiver is shutting down")
						  : _("the connection was lost"));
		return;
	}
	{
		g_autofree gchar *safe = as_ctl_sanitize_text(reason != NULL ? reason : "");
		as_ctl_watch_stop(watch, g_error_new(AS_CTL_ERROR, AS_CTL_EXIT_FAILURE,
						     /* TRANSLATORS: a URL, a WebSocket close code
						      * and the receiver's reason */
						     _("%s closed the connection with code %u: %s"),
						     watch->display, code, safe));
	}
}

static void
as_ctl_watch_connect_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	AsCtlWatch *watch = user_data;
	g_autoptr(SoupMessage) msg = g_steal_pointer(&watch->msg);
	g_autoptr(GError) error_local = NULL;
	SoupWebsocketConnection *conn;
	guint status;

	watch->pending_connect = FALSE;
	conn = soup_session_websocket_connect_finish(SOUP_SESSION(source), res, &error_local);
	if (watch->done) {
		g_clear_object(&conn);
		return;
	}
	if (conn == NULL) {
		status = soup_message_get_status(msg);
		if (status == SOUP_STATUS_UNAUTHORIZED || status == SOUP_STATUS_FORBIDDEN) {
			as_ctl_watch_stop(
				watch,
				g_error_new(
					AS_CTL_ERROR, AS_CTL_EXIT_PERMISSION,
					watch->token != NULL
						/* TRANSLATORS: %s is a URL, %u an HTTP status */
						? _("%s refused the token (HTTP %u)")
						/* TRANSLATORS: %s is a URL, %u an HTTP status;
						 * keep the option */
						: _("%s needs a token (HTTP %u): pass "
						    "--token-file"),
					watch->display, status));
			return;
		}
		if (status == SOUP_STATUS_NOT_FOUND) {
			as_ctl_watch_stop(
				watch,
				g_error_new(AS_CTL_ERROR, AS_CTL_EXIT_FAILURE,
					    /* TRANSLATORS: %s is a URL */
					    _("%s does not exist: events are off on that receiver, "
					      "or it is not an AeroSync receiver"),
					    watch->display));
			return;
		}
		/* a server that answered something else will answer it again */
		if (SOUP_STATUS_IS_CLIENT_ERROR(status) || SOUP_STATUS_IS_SUCCESSFUL(status) ||
		    SOUP_STATUS_IS_REDIRECTION(status)) {
			as_ctl_watch_stop(
				watch,
				g_error_new(AS_CTL_ERROR, AS_CTL_EXIT_FAILURE,
					    /* TRANSLATORS: a URL, an HTTP status, the reason */
					    _("%s refused the WebSocket (HTTP %u): %s"),
					    watch->display, status, error_local->message));
			return;
		}
		as_ctl_watch_retry(watch, error_local->message);
		return;
	}

	watch->attempt = 0;
	watch->conn = conn;
	soup_websocket_connection_set_keepalive_interval(conn, AS_CTL_WATCH_KEEPALIVE_S);
	g_signal_connect(conn, "message", G_CALLBACK(as_ctl_watch_message_cb), watch);
	g_signal_connect(conn, "closed", G_CALLBACK(as_ctl_watch_closed_cb), watch);
	/* TRANSLATORS: 'watch' is connected; %s is a URL */
	g_printerr(_("aerosyncctl: watching %s"), watch->display);
	g_printerr("\n");
}

static void
as_ctl_watch_connect(AsCtlWatch *watch)
{
	g_debug("connecting to %s", watch->url);
	watch->msg = soup_message_new(SOUP_METHOD_GET, watch->url);
	if (watch->token != NULL) {
		g_autofree gchar *value = g_strdup_printf("Bearer %s", watch->token);
		soup_message_headers_replace(soup_message_get_request_headers(watch->msg),
					     "Authorization", value);
	}
	watch->pending_connect = TRUE;
	soup_session_websocket_connect_async(watch->session, watch->msg, NULL, NULL,
					     G_PRIORITY_DEFAULT, watch->cancellable,
					     as_ctl_watch_connect_cb, watch);
}

gboolean
as_ctl_watch(AsCtl *self, gchar **values, GError **error)
{
	AsCtlWatch watch = {
		.ctl = self,
	};
	g_autofree gchar *user_agent = g_strdup_printf("aerosyncctl/%s", PACKAGE_VERSION);
	gboolean ret = FALSE;

	if (!as_ctl_watch_parse(&watch, values, error))
		goto out;
	/* a bad URL is caught here, before any connection */
	{
		g_autoptr(SoupMessage) probe = soup_message_new(SOUP_METHOD_GET, watch.url);
		if (probe == NULL) {
			g_autofree gchar *message =
				/* TRANSLATORS: %s is a URL */
				g_strdup_printf(_("invalid receiver '%s'"), watch.display);
			as_ctl_watch_usage_error(error, message);
			goto out;
		}
	}
	watch.loop = g_main_loop_new(NULL, FALSE);
	watch.cancellable = g_cancellable_new();
	/* the timeout bounds the handshake; an idle WebSocket is not timed out */
	watch.session = soup_session_new_with_options("timeout", AS_CTL_WATCH_CONNECT_TIMEOUT_S,
						      "user-agent", user_agent, NULL);
	as_ctl_watch_connect(&watch);
	while (!watch.done)
		g_main_loop_run(watch.loop);

	if (watch.error != NULL) {
		g_propagate_error(error, g_steal_pointer(&watch.error));
		goto out;
	}
	ret = TRUE;
out:
	g_clear_handle_id(&watch.retry_id, g_source_remove);
	if (watch.conn != NULL) {
		g_signal_handlers_disconnect_by_data(watch.conn, &watch);
		if (soup_websocket_connection_get_state(watch.conn) == SOUP_WEBSOCKET_STATE_OPEN)
			soup_websocket_connection_close(watch.conn, SOUP_WEBSOCKET_CLOSE_NORMAL,
							NULL);
		g_clear_object(&watch.conn);
	}
	if (watch.cancellable != NULL)
		g_cancellable_cancel(watch.cancellable);
	/* the handshake callback holds &watch */
	while (watch.pending_connect)
		g_main_context_iteration(NULL, TRUE);
	g_clear_object(&watch.msg);
	g_clear_object(&watch.session);
	g_clear_object(&watch.cancellable);
	g_clear_pointer(&watch.loop, g_main_loop_unref);
	g_clear_error(&watch.error);
	g_free(watch.url);
	g_free(watch.display);
	g_free(watch.filter);
	if (watch.token != NULL)
		memset(watch.token, 0, strlen(watch.token));
	g_free(watch.token);
	return ret;
}
