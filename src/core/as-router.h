/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib-object.h>

G_BEGIN_DECLS

#define AS_TYPE_ROUTER (as_router_get_type())
G_DECLARE_FINAL_TYPE(AsRouter, as_router, AS, ROUTER, GObject)

/* config groups "[route NAME]", tried in file order */
#define AS_ROUTER_GROUP_PREFIX "route "
#define AS_ROUTER_MAX_RULES    1024

AsRouter *as_router_new(void);
gboolean as_router_load_key_file(AsRouter *self, GKeyFile *kf, GError **error);
guint as_router_get_count(AsRouter *self);
gchar *as_router_route(AsRouter *self,
		       const gchar *rel_path,
		       const gchar *tag,
		       const gchar *sender_ip,
		       gchar **rule_name);

G_END_DECLS
