/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "as-ctl.h"

G_BEGIN_DECLS

/* 'send PATH… DEST': one D-Bus message carries the paths, so their number is bounded well
 * below the bus's message size limit (128 MiB) even with PATH_MAX-long paths */
#define AS_CTL_SEND_PATHS_MAX 16384
#define AS_CTL_SEND_ARGS_MAX  (AS_CTL_SEND_PATHS_MAX + 1)

extern const GOptionEntry as_ctl_send_options[];
gboolean as_ctl_send(AsCtl *self, gchar **values, GError **error);
gboolean as_ctl_follow(AsCtl *self, gchar **values, GError **error);

gboolean as_ctl_follow_transfer(AsCtl *self, const gchar *object_path, GError **error);

G_END_DECLS
