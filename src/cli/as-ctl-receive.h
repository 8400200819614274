/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "as-ctl.h"

G_BEGIN_DECLS

/* 'receive': starts or checks the daemon's receiver, then prints arrivals */
extern const GOptionEntry as_ctl_receive_options[];
gboolean as_ctl_receive(AsCtl *self, gchar **values, GError **error);

G_END_DECLS
