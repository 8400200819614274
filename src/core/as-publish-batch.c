/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "AsPublishBatch"

#include "config.h"

#include <errno.h>
#include <unistd.h>

#include "as-error.h"
#include "as-path.h"
#include "as-publish-batch.h"
#include "as-publish.h"

/*
 * Many verified staged files published together, durably, for the price of a few syncs:
 * one syncfs() makes every staged file's data durable, then each is renamed to its final name
 * and each destination directory is synced once. Publishing them one by one with
 * as_publish_file() costs a directory fsync per file, and leaves the data of files below
 * AS_WRITE_BEHIND_MIN_BYTES to the page cache.
 */

typedef struct {
	gchar *staged_name;
	gchar *rel_path;
	gchar *published; /* NULL until published, or on failure */
	GError *error;	  /* why it was not published */
} AsPublishBatchItem;

struct _AsPublishBatch {
	int staging_dir_fd; /* not owned */
	int root_fd;	    /* not owned */
	gboolean overwrite;
	GArray *items; /* (element-type AsPublishBatchItem) */
};

static void
as_publish_batch_item_clear(AsPublishBatchItem *item)
{
	g_free(item->staged_name);
	g_free(item->rel_path);
	g_free(item->published);
	g_clear_error(&item->error);
}

/**
 * as_publish_batch_new:
 * @staging_dir_fd: the directory holding the staged files; must outlive the batch
 * @root_fd: the receive directory, on the same filesystem; must outlive the batch
 * @overwrite: whether existing files may be replaced, see as_publish_file()
 *
 * Returns: (transfer full): an empty batch
 **/
AsPublishBatch *
as_publish_batch_new(int staging_dir_fd, int root_fd, gboolean overwrite)
{
	AsPublishBatch *self = g_new0(AsPublishBatch, 1);

	self->staging_dir_fd = staging_dir_fd;
	self->root_fd = root_fd;
	self->overwrite = overwrite;
	self->items = g_array_new(FALSE, TRUE, sizeof(AsPublishBatchItem));
	g_array_set_clear_func(self->items, (GDestroyNotify)as_publish_batch_item_clear);
	return self;
}

/**
 * as_publish_batch_add:
 * @staged_name: a verified file in the staging directory, complete and no longer written
 * @rel_path: its sanitised destination below the receive directory
 *
 * Returns: the file's index, for the getters once the batch has run
 **/
guint
as_publish_batch_add(AsPublishBatch *self, const gchar *staged_name, const gchar *rel_path)
{
	AsPublishBatchItem item = {
		.staged_name = g_strdup(staged_name),
		.rel_path = g_strdup(rel_path),
	};

	g_return_val_if_fail(self != NULL, 0);
	g_array_append_val(self->items, item);
	return self->items->len - 1;
}

guint
as_publish_batch_get_length(AsPublishBatch *self)
{
	g_return_val_if_fail(self != NULL, 0);
	return self->items->len;
}

/**
 * as_publish_batch_run:
 *
 * Makes the staged data durable, then publishes every file like as_publish_file() and syncs
 * each destination directory once. If the data cannot be made durable nothing is published:
 * a name must never point at data a crash can still lose. This blocks: call it on a worker
 * thread. Files that fail stay staged; the getters say which.
 **/
void
as_publish_batch_run(AsPublishBatch *self)
{
	g_autoptr(GHashTable) dirs = NULL; /* dirname -> fd + 1 */
	GHashTableIter iter;
	gpointer key, value;

	g_return_if_fail(self != NULL);

	if (self->items->len == 0)
		return;
	while (syncfs(self->staging_dir_fd) < 0) {
		int errsv = errno;
		if (errsv == EINTR)
			continue;
		for (guint i = 0; i < self->items->len; i++) {
			AsPublishBatchItem *item =
				&g_array_index(self->items, AsPublishBatchItem, i);
			g_set_error(&item->error, AS_ERROR,
				    errsv == ENOSPC || errsv == EDQUOT ? AS_ERROR_NO_SPACE
								       : AS_ERROR_IO,
				    "failed to write %s to disk: %s", item->rel_path,
				    g_strerror(errsv));
		}
		return;
	}

	dirs = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	for (guint i = 0; i < self->items->len; i++) {
		AsPublishBatchItem *item = &g_array_index(self->items, AsPublishBatchItem, i);
		g_autofree gchar *dirname = NULL;
		int dir_fd = -1;

		item->published = as_publish_file_full(
			self->staging_dir_fd, item->staged_name, self->root_fd, item->rel_path,
			self->overwrite, AS_PUBLISH_METHOD_RENAME_NOREPLACE, &dir_fd, &item->error);
		if (item->published == NULL)
			continue;
		dirname = as_path_dirname(item->published);
		if (g_hash_table_contains(dirs, dirname)) {
			close(dir_fd);
			continue;
		}
		g_hash_table_insert(dirs, g_steal_pointer(&dirname), GINT_TO_POINTER(dir_fd + 1));
	}

	/* the files are at their final names now, so a failed sync only warns, as for one */
	g_hash_table_iter_init(&iter, dirs);
	while (g_hash_table_iter_next(&iter, &key, &value)) {
		g_autoptr(GError) error_local = NULL;
		int dir_fd = GPOINTER_TO_INT(value) - 1;
		if (!as_publish_fsync_dir(dir_fd, &error_local))
			g_warning("published files in '%s' but %s", (const gchar *)key,
				  error_local->message);
		close(dir_fd);
	}
}

/**
 * as_publish_batch_get_published:
 *
 * Returns: (nullable): the relative path file @index was published under, or %NULL
 **/
const gchar *
as_publish_batch_get_published(AsPublishBatch *self, guint index)
{
	g_return_val_if_fail(self != NULL && index < self->items->len, NULL);
	return g_array_index(self->items, AsPublishBatchItem, index).published;
}

/**
 * as_publish_batch_get_error:
 *
 * Returns: (nullable): why file @index was not published
 **/
const GError *
as_publish_batch_get_error(AsPublishBatch *self, guint index)
{
	g_return_val_if_fail(self != NULL && index < self->items->len, NULL);
	return g_array_index(self->items, AsPublishBatchItem, index).error;
}

void
as_publish_batch_free(AsPublishBatch *self)
{
	if (self == NULL)
		return;
	g_array_unref(self->items);
	g_free(self);
}
