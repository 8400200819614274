/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "AsWsHub"

#include "config.h"

#include "as-ws-hub.h"

struct _AsWsHub {
	GObject parent_instance;
	AsEngine *engine; /* owned */
	GPtrArray *conns; /* (element-type SoupWebsocketConnection) owned */
	gulong event_handler_id;
};

G_DEFINE_TYPE(AsWsHub, as_ws_hub, G_TYPE_OBJECT)

static void
as_ws_hub_event_cb(AsEngine *engine, const gchar *name, const gchar *json, gpointer user_data)
{
	AsWsHub *self = AS_WS_HUB(user_data);
	for (guint i = 0; i < self->conns->len; i++) {
		SoupWebsocketConnection *conn = g_ptr_array_index(self->conns, i);
		if (soup_websocket_connection_get_state(conn) == SOUP_WEBSOCKET_STATE_OPEN)
			soup_websocket_connection_send_text(conn, json);
	}
}

static void
as_ws_hub_closed_cb(SoupWebsocketConnection *conn, gpointer user_data)
{
	AsWsHub *self = AS_WS_HUB(user_data);
	if (g_ptr_array_remove(self->conns, conn))
		as_metrics_ws_disconnected(as_engine_get_metrics(self->engine));
}

void
as_ws_hub_add_connection(AsWsHub *self, SoupWebsocketConnection *conn)
{
	g_ptr_array_add(self->conns, g_object_ref(conn));
	soup_websocket_connection_set_keepalive_interval(conn, AS_WS_HUB_KEEPALIVE_S);
	g_signal_connect_object(conn, "closed", G_CALLBACK(as_ws_hub_closed_cb), self, 0);
	as_metrics_ws_connected(as_engine_get_metrics(self->engine));
}

guint
as_ws_hub_get_count(AsWsHub *self)
{
	return self->conns->len;
}

static gpointer
as_ws_hub_ref_cb(gconstpointer src, gpointer user_data)
{
	return g_object_ref((gpointer)src);
}

void
as_ws_hub_close_all(AsWsHub *self)
{
	g_autoptr(GPtrArray) conns = g_ptr_array_copy(self->conns, as_ws_hub_ref_cb, NULL);
	g_ptr_array_set_free_func(conns, g_object_unref);
	for (guint i = 0; i < conns->len; i++) {
		SoupWebsocketConnection *conn = g_ptr_array_index(conns, i);
		if (soup_websocket_connection_get_state(conn) == SOUP_WEBSOCKET_STATE_OPEN)
			soup_websocket_connection_close(conn, SOUP_WEBSOCKET_CLOSE_GOING_AWAY,
							"server shutting down");
	}
}

AsWsHub *
as_ws_hub_new(AsEngine *engine)
{
	AsWsHub *self = g_object_new(AS_TYPE_WS_HUB, NULL);
	self->engine = g_object_ref(engine);
	self->event_handler_id =
		g_signal_connect(engine, "event", G_CALLBACK(as_ws_hub_event_cb), self);
	return self;
}

static void
as_ws_hub_dispose(GObject *object)
{
	AsWsHub *self = AS_WS_HUB(object);
	if (self->engine != NULL)
		g_clear_signal_handler(&self->event_handler_id, self->engine);
	g_clear_object(&self->engine);
	g_ptr_array_set_size(self->conns, 0);
	G_OBJECT_CLASS(as_ws_hub_parent_class)->dispose(object);
}

static void
as_ws_hub_finalize(GObject *object)
{
	AsWsHub *self = AS_WS_HUB(object);
	g_ptr_array_unref(self->conns);
	G_OBJECT_CLASS(as_ws_hub_parent_class)->finalize(object);
}

static void
as_ws_hub_class_init(AsWsHubClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);
	object_class->dispose = as_ws_hub_dispose;
	object_class->finalize = as_ws_hub_finalize;
}

static void
as_ws_hub_init(AsWsHub *self)
{
	self->conns = g_ptr_array_new_with_free_func(g_object_unref);
}
