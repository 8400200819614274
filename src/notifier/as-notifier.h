/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* also the name of the desktop file and the bus name the systemd unit waits for */
#define AS_NOTIFIER_APPLICATION_ID "org.aerosync.Notifier"

#define AS_TYPE_NOTIFIER (as_notifier_get_type())
G_DECLARE_FINAL_TYPE(AsNotifier, as_notifier, AS, NOTIFIER, GApplication)

AsNotifier *as_notifier_new(void);

G_END_DECLS
