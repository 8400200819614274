/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

gboolean
as_disk_usage_get(const gchar *path, guint64 *free_bytes, guint64 *total_bytes, GError **error);
gboolean as_disk_usage_get_fd(int fd, guint64 *free_bytes, guint64 *total_bytes, GError **error);

G_END_DECLS
