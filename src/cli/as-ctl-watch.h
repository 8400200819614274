/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "as-ctl.h"

G_BEGIN_DECLS

/* 'watch': a WebSocket client of a receiver's /ws, no D-Bus */
extern const GOptionEntry as_ctl_watch_options[];
gboolean as_ctl_watch(AsCtl *self, gchar **values, GError **error);

G_END_DECLS
