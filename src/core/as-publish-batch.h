/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _AsPublishBatch AsPublishBatch;

AsPublishBatch *as_publish_batch_new(int staging_dir_fd, int root_fd, gboolean overwrite);
guint as_publish_batch_add(AsPublishBatch *self, const gchar *staged_name, const gchar *rel_path);
guint as_publish_batch_get_length(AsPublishBatch *self);
void as_publish_batch_run(AsPublishBatch *self);
const gchar *as_publish_batch_get_published(AsPublishBatch *self, guint index);
const GError *as_publish_batch_get_error(AsPublishBatch *self, guint index);
void as_publish_batch_free(AsPublishBatch *self);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(AsPublishBatch, as_publish_batch_free)

G_END_DECLS
