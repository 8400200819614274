/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "as-ctl.h"

G_BEGIN_DECLS

/* 'transfers', 'pause|resume|cancel ID' and 'limit ID RATE' */
gboolean as_ctl_transfers(AsCtl *self, gchar **values, GError **error);
gboolean as_ctl_transfer_pause(AsCtl *self, gchar **values, GError **error);
gboolean as_ctl_transfer_resume(AsCtl *self, gchar **values, GError **error);
gboolean as_ctl_transfer_cancel(AsCtl *self, gchar **values, GError **error);
gboolean as_ctl_transfer_limit(AsCtl *self, gchar **values, GError **error);

gchar *as_ctl_transfer_find(AsCtl *self, const gchar *id_or_prefix, GError **error);

G_END_DECLS
