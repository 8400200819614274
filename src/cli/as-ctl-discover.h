/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "as-ctl.h"

G_BEGIN_DECLS

/* 'aerosyncctl discover': browses mDNS directly, never the daemon's bus */
extern const GOptionEntry as_ctl_discover_options[];
gboolean as_ctl_discover(AsCtl *self, gchar **values, GError **error);

G_END_DECLS
