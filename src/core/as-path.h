/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* reserved folder under the receive dir, never reachable by a sender-supplied name */
#define AS_STAGING_DIR_NAME ".aerosync"

/* limits of a sender-supplied relative path, in bytes */
#define AS_PATH_SEGMENT_MAX 255
#define AS_PATH_TOTAL_MAX   4096

gchar *as_path_sanitize(const gchar *raw, GError **error);
gboolean as_path_segment_is_reserved(const gchar *segment);
gchar *as_path_basename_only(const gchar *raw);
int as_path_open_dir(int root_fd, const gchar *rel_dir, gboolean create, GError **error);
gchar *as_path_dirname(const gchar *rel);
gchar *as_path_basename(const gchar *rel);

G_END_DECLS
