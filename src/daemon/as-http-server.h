/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "as-engine.h"

G_BEGIN_DECLS

#define AS_TYPE_HTTP_SERVER (as_http_server_get_type())
G_DECLARE_FINAL_TYPE(AsHttpServer, as_http_server, AS, HTTP_SERVER, GObject)

AsHttpServer *as_http_server_new(AsEngine *engine);
gboolean as_http_server_listen(AsHttpServer *self, const gchar *bind, guint16 port, GError **error);
gboolean as_http_server_listen_https(AsHttpServer *self,
				     const gchar *bind,
				     guint16 port,
				     GTlsCertificate *certificate,
				     GError **error);
guint16 as_http_server_get_port(AsHttpServer *self);
guint16 as_http_server_get_https_port(AsHttpServer *self);
guint as_http_server_get_requests_in_flight(AsHttpServer *self);
void as_http_server_stop(AsHttpServer *self);

G_END_DECLS
