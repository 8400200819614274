/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <json-glib/json-glib.h>

G_BEGIN_DECLS

#define AS_TYPE_JSONL_LOG (as_jsonl_log_get_type())
G_DECLARE_FINAL_TYPE(AsJsonlLog, as_jsonl_log, AS, JSONL_LOG, GObject)

/* longest line written or read back; longer lines on disk are skipped when reading */
#define AS_JSONL_LOG_LINE_MAX (1024 * 1024)

/**
 * AsJsonlFilterFunc:
 * @obj: one parsed line
 * @user_data: the data given to as_jsonl_log_read_tail()
 *
 * Returns: %TRUE to keep @obj
 */
typedef gboolean (*AsJsonlFilterFunc)(JsonObject *obj, gpointer user_data);

AsJsonlLog *as_jsonl_log_new(const gchar *path);
gboolean as_jsonl_log_set_path(AsJsonlLog *self, const gchar *path, GError **error);
gchar *as_jsonl_log_dup_path(AsJsonlLog *self);
gboolean as_jsonl_log_append(AsJsonlLog *self, JsonObject *object, GError **error);
GPtrArray *as_jsonl_log_read_tail(AsJsonlLog *self,
				  guint limit,
				  AsJsonlFilterFunc filter,
				  gpointer user_data,
				  GError **error);

G_END_DECLS
