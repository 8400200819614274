/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "AsHttpServer"

#include "config.h"

#include <libsoup/soup.h>

#include "as-disk-usage.h"
#include "as-error.h"
#include "as-http-chunk.h"
#include "as-http-pump.h"
#include "as-http-server.h"
#include "as-http-upload.h"
#include "as-http-util.h"
#include "as-ws-hub.h"

/* /upload/complete and GET requests carry no payload worth reading */
#define AS_HTTP_MAX_SMALL_BODY 4096

struct _AsHttpServer {
	GObject parent_instance;
	AsEngine *engine; /* owned */
	SoupServer *soup; /* owned */
	AsWsHub *ws_hub;  /* owned */
	guint16 port;
	guint16 https_port; /* 0 when HTTPS is off */
	guint in_flight;    /* requests started and not finished, stolen ones included */
	guint ws_stolen;
};

G_DEFINE_TYPE(AsHttpServer, as_http_server, G_TYPE_OBJECT)

typedef enum {
	AS_ROUTE_UNKNOWN,
	AS_ROUTE_HEALTH,
	AS_ROUTE_STATUS,
	AS_ROUTE_METRICS,
	AS_ROUTE_WS,
	AS_ROUTE_UPLOAD,
	AS_ROUTE_CHUNK,
	AS_ROUTE_COMPLETE,
	AS_ROUTE_CHUNK_STATUS,
	AS_ROUTE_BATCH,
} AsRoute;

/* the path is raw (percent-encoded): only the upload tail is decoded, by the upload code;
 * '+' stays '+' (0.x turned it into a space) */
static AsRoute
as_http_route(const gchar *path, const gchar **tail)
{
	*tail = NULL;
	if (g_strcmp0(path, "/health") == 0)
		return AS_ROUTE_HEALTH;
	if (g_strcmp0(path, "/status") == 0)
		return AS_ROUTE_STATUS;
	if (g_strcmp0(path, "/metrics") == 0)
		return AS_ROUTE_METRICS;
	if (g_strcmp0(path, "/ws") == 0)
		return AS_ROUTE_WS;
	if (g_strcmp0(path, "/upload/chunk") == 0)
		return AS_ROUTE_CHUNK;
	if (g_strcmp0(path, "/upload/complete") == 0)
		return AS_ROUTE_COMPLETE;
	if (g_strcmp0(path, "/upload/status") == 0)
		return AS_ROUTE_CHUNK_STATUS;
	if (g_strcmp0(path, "/upload/batch") == 0)
		return AS_ROUTE_BATCH;
	if (g_strcmp0(path, "/upload") == 0 || g_strcmp0(path, "/upload/") == 0)
		return AS_ROUTE_UPLOAD;
	if (g_str_has_prefix(path, "/upload/")) {
		*tail = path + strlen("/upload/");
		return AS_ROUTE_UPLOAD;
	}
	return AS_ROUTE_UNKNOWN;
}

static gboolean
as_http_method_allowed(AsRoute route, const gchar *method, const gchar **allow)
{
	switch (route) {
	case AS_ROUTE_UPLOAD:
		*allow = "POST, PUT";
		return method == SOUP_METHOD_POST || method == SOUP_METHOD_PUT;
	case AS_ROUTE_CHUNK:
	case AS_ROUTE_COMPLETE:
	case AS_ROUTE_BATCH:
		*allow = "POST";
		return method == SOUP_METHOD_POST;
	default:
		*allow = "GET, HEAD";
		return method == SOUP_METHOD_GET || method == SOUP_METHOD_HEAD;
	}
}

static void
as_http_server_early_cb(SoupServer *soup,
			SoupServerMessage *msg,
			const char *path,
			GHashTable *query,
			gpointer user_data)
{
	AsHttpServer *self = AS_HTTP_SERVER(user_data);
	SoupMessageHeaders *req_hdrs = soup_server_message_get_request_headers(msg);
	const gchar *method = soup_server_message_get_method(msg);
	const gchar *tail = NULL;
	const gchar *allow = NULL;
	AsRoute route = as_http_route(path, &tail);
	g_autoptr(GError) error = NULL;

	/* no handler needs a request body in memory: uploads stream it, everything else
	 * refuses one, and a refused body must not pile up while libsoup drains it */
	soup_message_body_set_accumulate(soup_server_message_get_request_body(msg), FALSE);
	if (route == AS_ROUTE_UNKNOWN)
		return;
	if (!as_http_origin_allowed(msg)) {
		as_http_reply_error(msg, SOUP_STATUS_FORBIDDEN,
				    "cross-origin requests are not accepted");
		return;
	}
	if (route != AS_ROUTE_WS && !as_http_method_allowed(route, method, &allow)) {
		soup_message_headers_replace(soup_server_message_get_response_headers(msg), "Allow",
					     allow);
		as_http_reply_error(msg, SOUP_STATUS_METHOD_NOT_ALLOWED, "method not allowed");
		return;
	}
	if (route == AS_ROUTE_HEALTH)
		return;

	/* every endpoint but /health needs a token, /status, /metrics and /ws included */
	if (!as_engine_check_token(self->engine, as_http_presented_token(msg), as_http_peer(msg),
				   as_http_scheme(msg), &error)) {
		soup_message_headers_replace(soup_server_message_get_response_headers(msg),
					     "WWW-Authenticate", "Bearer realm=\"aerosync\"");
		as_http_reply_error(msg, SOUP_STATUS_UNAUTHORIZED,
				    "Unauthorized: Invalid or missing authentication token");
		return;
	}

	switch (route) {
	case AS_ROUTE_UPLOAD:
		as_http_upload_single_begin(self->engine, msg, tail);
		break;
	case AS_ROUTE_BATCH:
		as_http_upload_batch_begin(self->engine, msg);
		break;
	case AS_ROUTE_CHUNK:
		as_http_chunk_begin(self->engine, msg);
		break;
	default:
		if (soup_message_headers_get_encoding(req_hdrs) != SOUP_ENCODING_NONE &&
		    (soup_message_headers_get_encoding(req_hdrs) != SOUP_ENCODING_CONTENT_LENGTH ||
		     soup_message_headers_get_content_length(req_hdrs) > AS_HTTP_MAX_SMALL_BODY))
			as_http_reply_error(msg, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE,
					    "this endpoint takes no body");
		break;
	}
}

static void
as_http_server_health(AsHttpServer *self, SoupServerMessage *msg)
{
	g_autoptr(JsonObject) obj = as_engine_get_health(self->engine);
	soup_message_headers_replace(soup_server_message_get_response_headers(msg), "X-AeroSync",
				     "true");
	as_http_reply_json(msg, SOUP_STATUS_OK, obj);
}

static void
as_http_server_metrics(AsHttpServer *self, SoupServerMessage *msg)
{
	AsConfig *config = as_engine_get_config(self->engine);
	guint64 free_bytes = 0, total_bytes = 0;
	gchar *text;

	if (!as_disk_usage_get(config->save_to, &free_bytes, &total_bytes, NULL))
		free_bytes = total_bytes = 0;
	text = as_metrics_render(as_engine_get_metrics(self->engine), free_bytes, total_bytes,
				 as_engine_get_active_transfers(self->engine), 0);
	soup_server_message_set_status(msg, SOUP_STATUS_OK, NULL);
	soup_server_message_set_response(msg, "text/plain; version=0.0.4; charset=utf-8",
					 SOUP_MEMORY_TAKE, text, strlen(text));
}

static void
as_http_server_handler_cb(SoupServer *soup,
			  SoupServerMessage *msg,
			  const char *path,
			  GHashTable *query,
			  gpointer user_data)
{
	AsHttpServer *self = AS_HTTP_SERVER(user_data);
	const gchar *tail = NULL;

	switch (as_http_route(path, &tail)) {
	case AS_ROUTE_HEALTH:
		as_http_server_health(self, msg);
		break;
	case AS_ROUTE_STATUS: {
		g_autoptr(JsonObject) obj = as_engine_get_status(self->engine);
		as_http_reply_json(msg, SOUP_STATUS_OK, obj);
		break;
	}
	case AS_ROUTE_METRICS:
		as_http_server_metrics(self, msg);
		break;
	case AS_ROUTE_UPLOAD:
	case AS_ROUTE_BATCH:
		as_http_upload_finish(self->engine, msg);
		break;
	case AS_ROUTE_CHUNK:
		as_http_chunk_finish(self->engine, msg);
		break;
	case AS_ROUTE_COMPLETE:
		as_http_chunk_complete(self->engine, msg);
		break;
	case AS_ROUTE_CHUNK_STATUS:
		as_http_chunk_status(self->engine, msg);
		break;
	case AS_ROUTE_WS:
		/* only reached when the handshake is not a WebSocket one */
		break;
	default:
		as_http_reply_error(msg, SOUP_STATUS_NOT_FOUND, "not found");
		break;
	}
}

static void
as_http_server_ws_cb(SoupServer *soup,
		     SoupServerMessage *msg,
		     const char *path,
		     SoupWebsocketConnection *conn,
		     gpointer user_data)
{
	AsHttpServer *self = AS_HTTP_SERVER(user_data);
	g_debug("WebSocket subscriber from %s", as_http_peer(msg));
	self->ws_stolen++;
	as_ws_hub_add_connection(self->ws_hub, conn);
}

static void
as_http_server_request_started_cb(SoupServer *soup, SoupServerMessage *msg, gpointer user_data)
{
	AsHttpServer *self = AS_HTTP_SERVER(user_data);
	self->in_flight++;
}

static void
as_http_server_request_done_cb(SoupServer *soup, SoupServerMessage *msg, gpointer user_data)
{
	AsHttpServer *self = AS_HTTP_SERVER(user_data);
	if (self->in_flight > 0)
		self->in_flight--;
}

/* the listeners of self->soup, to tell which one a listen call added */
static GSList *
as_http_server_ports(AsHttpServer *self)
{
	GSList *listeners = soup_server_get_listeners(self->soup);
	GSList *ports = NULL;

	for (GSList *l = listeners; l != NULL; l = l->next) {
		g_autoptr(GSocketAddress) local = g_socket_get_local_address(l->data, NULL);
		if (local != NULL && G_IS_INET_SOCKET_ADDRESS(local))
			ports = g_slist_prepend(ports,
						GUINT_TO_POINTER(g_inet_socket_address_get_port(
							G_INET_SOCKET_ADDRESS(local))));
	}
	g_slist_free(listeners);
	return ports;
}

static gboolean
as_http_server_listen_on(AsHttpServer *self,
			 const gchar *bind,
			 guint16 port,
			 SoupServerListenOptions options,
			 guint16 *bound_port,
			 GError **error)
{
	g_autoptr(GInetAddress) addr = g_inet_address_new_from_string(bind);
	g_autoptr(GSocketAddress) sockaddr = NULL;
	GSList *before;
	GSList *after;

	if (addr == NULL) {
		g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
			    "--bind needs an IP address, not '%s'", bind);
		return FALSE;
	}
	before = as_http_server_ports(self);
	sockaddr = g_inet_socket_address_new(addr, port);
	/* "::" means every address of both families, as users expect; GSocket would make it
	 * IPv6-only */
	if (g_inet_address_get_is_any(addr) &&
	    g_inet_address_get_family(addr) == G_SOCKET_FAMILY_IPV6) {
		if (!soup_server_listen_all(self->soup, port, options, error)) {
			g_prefix_error(error, "cannot listen on port %u: ", port);
			g_slist_free(before);
			return FALSE;
		}
	} else if (!soup_server_listen(self->soup, sockaddr, options, error)) {
		g_prefix_error(error, "cannot listen on %s port %u: ", bind, port);
		g_slist_free(before);
		return FALSE;
	}
	after = as_http_server_ports(self);
	for (GSList *l = after; l != NULL; l = l->next) {
		if (g_slist_find(before, l->data) == NULL)
			*bound_port = (guint16)GPOINTER_TO_UINT(l->data);
	}
	g_slist_free(before);
	g_slist_free(after);
	return TRUE;
}

gboolean
as_http_server_listen(AsHttpServer *self, const gchar *bind, guint16 port, GError **error)
{
	g_return_val_if_fail(AS_IS_HTTP_SERVER(self), FALSE);
	return as_http_server_listen_on(self, bind, port, 0, &self->port, error);
}

/**
 * as_http_server_listen_https:
 * @self: a #AsHttpServer
 * @bind: the address, as for as_http_server_listen()
 * @port: the TLS port, 0 for any free one
 * @certificate: what the server presents: the identity QUIC presents too
 * @error: (nullable): optional return location for an error
 *
 * Serves the same routes over TLS on a second socket. Large bodies arriving over TLS stay
 * with libsoup (see as_http_pump_can_take()), which decrypts them.
 *
 * Returns: %TRUE when listening
 **/
gboolean
as_http_server_listen_https(AsHttpServer *self,
			    const gchar *bind,
			    guint16 port,
			    GTlsCertificate *certificate,
			    GError **error)
{
	g_return_val_if_fail(AS_IS_HTTP_SERVER(self), FALSE);
	g_return_val_if_fail(G_IS_TLS_CERTIFICATE(certificate), FALSE);

	soup_server_set_tls_certificate(self->soup, certificate);
	if (!as_http_server_listen_on(self, bind, port, SOUP_SERVER_LISTEN_HTTPS, &self->https_port,
				      error)) {
		g_prefix_error_literal(error, "HTTPS: ");
		return FALSE;
	}
	return TRUE;
}

guint16
as_http_server_get_https_port(AsHttpServer *self)
{
	g_return_val_if_fail(AS_IS_HTTP_SERVER(self), 0);
	return self->https_port;
}

guint16
as_http_server_get_port(AsHttpServer *self)
{
	return self->port;
}

/* requests whose reply is not written yet; a WebSocket subscriber is not one */
guint
as_http_server_get_requests_in_flight(AsHttpServer *self)
{
	guint stolen = self->ws_stolen + as_http_pump_get_stolen_total();
	guint open = self->in_flight > stolen ? self->in_flight - stolen : 0;
	return open + as_http_pump_get_active();
}

void
as_http_server_stop(AsHttpServer *self)
{
	as_ws_hub_close_all(self->ws_hub);
	soup_server_disconnect(self->soup);
}

AsHttpServer *
as_http_server_new(AsEngine *engine)
{
	AsHttpServer *self = g_object_new(AS_TYPE_HTTP_SERVER, NULL);
	self->engine = g_object_ref(engine);
	self->ws_hub = as_ws_hub_new(engine);
	/* raw paths: the upload name is decoded and judged by us, so a hostile one gets our
	 * JSON refusal instead of libsoup's bodiless 400 */
	self->soup = soup_server_new("server-header", "aerosyncd/" PACKAGE_VERSION " ", "raw-paths",
				     TRUE, NULL);
	soup_server_add_early_handler(self->soup, NULL, as_http_server_early_cb, self, NULL);
	soup_server_add_handler(self->soup, NULL, as_http_server_handler_cb, self, NULL);
	/* the /ws handler is its own entry: it needs the early (auth, origin) hook too */
	soup_server_add_early_handler(self->soup, "/ws", as_http_server_early_cb, self, NULL);
	soup_server_add_websocket_handler(self->soup, "/ws", NULL, NULL, as_http_server_ws_cb, self,
					  NULL);
	g_signal_connect(self->soup, "request-started",
			 G_CALLBACK(as_http_server_request_started_cb), self);
	g_signal_connect(self->soup, "request-finished", G_CALLBACK(as_http_server_request_done_cb),
			 self);
	g_signal_connect(self->soup, "request-aborted", G_CALLBACK(as_http_server_request_done_cb),
			 self);
	return self;
}

static void
as_http_server_dispose(GObject *object)
{
	AsHttpServer *self = AS_HTTP_SERVER(object);
	if (self->soup != NULL)
		soup_server_disconnect(self->soup);
	g_clear_object(&self->soup);
	g_clear_object(&self->ws_hub);
	g_clear_object(&self->engine);
	G_OBJECT_CLASS(as_http_server_parent_class)->dispose(object);
}

static void
as_http_server_class_init(AsHttpServerClass *klass)
{
	G_OBJECT_CLASS(klass)->dispose = as_http_server_dispose;
}

static void
as_http_server_init(AsHttpServer *self)
{
}
