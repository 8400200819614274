/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>

#include "as-engine.h"
#include "as-sender.h"

G_BEGIN_DECLS

#define AS_TYPE_DBUS_SERVICE (as_dbus_service_get_type())
G_DECLARE_FINAL_TYPE(AsDbusService, as_dbus_service, AS, DBUS_SERVICE, GObject)

AsDbusService *as_dbus_service_new(AsEngine *engine);
void as_dbus_service_set_sender(AsDbusService *self, AsSender *sender);
gboolean as_dbus_service_start(AsDbusService *self, GDBusConnection *connection, GError **error);
gchar *as_dbus_service_transfer_path(const gchar *transfer_id);

G_END_DECLS
