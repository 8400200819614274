/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* size of the blocks handed to the worker thread */
#define AS_DISK_WRITER_BLOCK_SIZE (1024 * 1024)

/* write() asks the producer to pause once this many bytes wait for the disk */
#define AS_DISK_WRITER_HIGH_WATER (8 * 1024 * 1024)

/* the drain callback fires once the backlog falls below this */
#define AS_DISK_WRITER_LOW_WATER (2 * 1024 * 1024)

/* spare blocks kept per writer so steady streaming does not churn malloc() */
#define AS_DISK_WRITER_FREE_BLOCKS_MAX 4

#define AS_TYPE_DISK_WRITER (as_disk_writer_get_type())
G_DECLARE_FINAL_TYPE(AsDiskWriter, as_disk_writer, AS, DISK_WRITER, GObject)

/**
 * AsDiskWriterDrainFunc:
 * @self: the #AsDiskWriter
 * @user_data: data given to as_disk_writer_set_drain_func()
 *
 * Tells a paused producer that it may resume writing.
 */
typedef void (*AsDiskWriterDrainFunc)(AsDiskWriter *self, gpointer user_data);

AsDiskWriter *as_disk_writer_new(int fd, guint64 offset, gboolean hash);
void as_disk_writer_set_write_behind(AsDiskWriter *self);
gboolean as_disk_writer_write(AsDiskWriter *self, const void *data, gsize len);
void
as_disk_writer_set_drain_func(AsDiskWriter *self, AsDiskWriterDrainFunc func, gpointer user_data);
guint64 as_disk_writer_get_bytes_written(AsDiskWriter *self);
gboolean as_disk_writer_has_failed(AsDiskWriter *self);
void as_disk_writer_finish_async(AsDiskWriter *self,
				 GCancellable *cancellable,
				 GAsyncReadyCallback callback,
				 gpointer user_data);
gchar *as_disk_writer_finish_finish(AsDiskWriter *self, GAsyncResult *res, GError **error);
void as_disk_writer_abort(AsDiskWriter *self);

G_END_DECLS
