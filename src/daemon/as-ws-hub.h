/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <libsoup/soup.h>

#include "as-engine.h"

G_BEGIN_DECLS

#define AS_TYPE_WS_HUB (as_ws_hub_get_type())
G_DECLARE_FINAL_TYPE(AsWsHub, as_ws_hub, AS, WS_HUB, GObject)

/* server-side keepalive so dead subscribers are noticed */
#define AS_WS_HUB_KEEPALIVE_S 30

AsWsHub *as_ws_hub_new(AsEngine *engine);
void as_ws_hub_add_connection(AsWsHub *self, SoupWebsocketConnection *conn);
guint as_ws_hub_get_count(AsWsHub *self);
void as_ws_hub_close_all(AsWsHub *self);

G_END_DECLS
