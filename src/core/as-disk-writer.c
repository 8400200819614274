/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "AsDiskWriter"

#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "as-disk-writer.h"
#include "as-error.h"
#include "as-sha256.h"
#include "as-write-behind.h"

/* the pool must make progress even on a single-core machine while another writer blocks */
#define AS_DISK_WRITER_MIN_THREADS 2

/* blocks a strand processes before it goes to the back of the pool's queue, so a fast
 * producer cannot starve the other writers */
#define AS_DISK_WRITER_BLOCKS_PER_TURN 8

typedef struct {
	guint8 *data; /* owned, AS_DISK_WRITER_BLOCK_SIZE bytes */
	gsize len;
	guint jobs; /* strands still to process it */
} AsDiskWriterBlock;

typedef enum {
	AS_DISK_WRITER_STRAND_WRITE,
	AS_DISK_WRITER_STRAND_HASH,
	AS_DISK_WRITER_STRAND_LAST
} AsDiskWriterStrandKind;

/* a serial queue of blocks processed in order by at most one pool thread at a time */
typedef struct {
	AsDiskWriter *writer; /* unowned: the pool holds a reference while scheduled */
	AsDiskWriterStrandKind kind;
	GQueue pending;	    /* (element-type AsDiskWriterBlock) in order */
	gboolean scheduled; /* pushed to the pool */
} AsDiskWriterStrand;

struct _AsDiskWriter {
	GObject parent_instance;
	int fd;
	GMainContext *context; /* owned: where the drain callback runs */

	/* main thread only */
	AsDiskWriterDrainFunc drain_func;
	gpointer drain_user_data;
	AsDiskWriterBlock *current; /* owned, nullable: the block being filled */
	guint64 bytes_accepted;
	gboolean paused; /* write() returned TRUE and the drain has not been delivered */
	gboolean finishing;

	/* owned by the hash strand; the main thread touches it only when no strand runs */
	AsSha256 *sha256; /* nullable */
	/* owned by the write strand */
	guint64 write_offset;
	gboolean write_behind; /* set before the first write */
	AsWriteBehind behind;

	/* everything below is protected by mutex */
	GMutex mutex;
	AsDiskWriterStrand strands[AS_DISK_WRITER_STRAND_LAST];
	guint n_strands; /* the hash strand exists only when hashing */
	AsDiskWriterBlock *free_blocks[AS_DISK_WRITER_FREE_BLOCKS_MAX]; /* owned */
	guint free_count;
	guint64 queued_bytes; /* in blocks not yet released by every strand */
	gboolean drain_wanted;
	gboolean aborted;
	GError *error;		   /* owned, nullable: the first failure */
	GTask *finish_task;	   /* owned, nullable: completed by the last strand to go idle */
	GCancellable *cancellable; /* owned, nullable: of finish_task */
	gint failed;		   /* atomic: error or aborted, so write() need not lock */
};

G_DEFINE_TYPE(AsDiskWriter, as_disk_writer, G_TYPE_OBJECT)

static void as_disk_writer_worker_cb(gpointer data, gpointer user_data);

/* one pool for all writers: each writer is one or two serial strands within it */
static GThreadPool *
as_disk_writer_get_pool(void)
{
	static gsize pool_once = 0;
	static GThreadPool *pool = NULL;

	if (g_once_init_enter(&pool_once)) {
		gint max_threads = MAX((gint)g_get_num_processors(), AS_DISK_WRITER_MIN_THREADS);
		/* a shared pool never fails to be created */
		pool = g_thread_pool_new(as_disk_writer_worker_cb, NULL, max_threads, FALSE, NULL);
		g_once_init_leave(&pool_once, 1);
	}
	return pool;
}

static void
as_disk_writer_block_free(AsDiskWriterBlock *block)
{
	if (block == NULL)
		return;
	g_free(block->data);
	g_free(block);
}

static AsDiskWriterBlock *
as_disk_writer_take_block(AsDiskWriter *self)
{
	AsDiskWriterBlock *block = NULL;

	g_mutex_lock(&self->mutex);
	if (self->free_count > 0)
		block = self->free_blocks[--self->free_count];
	g_mutex_unlock(&self->mutex);
	if (block == NULL) {
		block = g_new0(AsDiskWriterBlock, 1);
		block->data = g_malloc(AS_DISK_WRITER_BLOCK_SIZE);
	}
	block->len = 0;
	block->jobs = 0;
	return block;
}

static void
as_disk_writer_recycle_block_locked(AsDiskWriter *self, AsDiskWriterBlock *block)
{
	if (self->free_count < AS_DISK_WRITER_FREE_BLOCKS_MAX) {
		block->len = 0;
		self->free_blocks[self->free_count++] = block;
		return;
	}
	as_disk_writer_block_free(block);
}

/* one strand is done with @block; the last one gives its memory back */
static void
as_disk_writer_release_block_locked(AsDiskWriter *self, AsDiskWriterBlock *block)
{
	if (--block->jobs > 0)
		return;
	self->queued_bytes -= block->len;
	as_disk_writer_recycle_block_locked(self, block);
}

static void
as_disk_writer_drop_pending_locked(AsDiskWriter *self)
{
	for (guint i = 0; i < self->n_strands; i++) {
		AsDiskWriterBlock *block;
		while ((block = g_queue_pop_head(&self->strands[i].pending)) != NULL)
			as_disk_writer_release_block_locked(self, block);
	}
}

static gboolean
as_disk_writer_is_idle_locked(AsDiskWriter *self)
{
	for (guint i = 0; i < self->n_strands; i++) {
		if (self->strands[i].scheduled)
			return FALSE;
	}
	return TRUE;
}

static void
as_disk_writer_schedule_locked(AsDiskWriter *self, AsDiskWriterStrand *strand)
{
	g_autoptr(GError) error_local = NULL;

	if (strand->scheduled || g_queue_is_empty(&strand->pending))
		return;
	strand->scheduled = TRUE;

	/* the data is queued even when no new thread could be started; an existing thread or
	 * the next push picks it up */
	g_object_ref(self);
	if (!g_thread_pool_push(as_disk_writer_get_pool(), strand, &error_local))
		g_warning("failed to start a disk writer thread: %s", error_local->message);
}

static gboolean
as_disk_writer_drain_cb(gpointer user_data)
{
	AsDiskWriter *self = AS_DISK_WRITER(user_data);

	/* an abort or a second delivery already released the producer */
	if (!self->paused)
		return G_SOURCE_REMOVE;
	self->paused = FALSE;
	if (self->drain_func != NULL)
		self->drain_func(self, self->drain_user_data);
	return G_SOURCE_REMOVE;
}

static void
as_disk_writer_schedule_drain_locked(AsDiskWriter *self)
{
	g_autoptr(GSource) source = g_idle_source_new();

	self->drain_wanted = FALSE;
	g_source_set_priority(source, G_PRIORITY_DEFAULT);
	g_source_set_callback(source, as_disk_writer_drain_cb, g_object_ref(self), g_object_unref);
	g_source_set_static_name(source, "[aerosync] disk writer drain");
	g_source_attach(source, self->context);
}

static void
as_disk_writer_set_error_locked(AsDiskWriter *self, GError *error)
{
	if (self->error == NULL)
		self->error = error;
	else
		g_error_free(error);
	g_atomic_int_set(&self->failed, TRUE);
	as_disk_writer_drop_pending_locked(self);
	if (self->drain_wanted)
		as_disk_writer_schedule_drain_locked(self);
}

/* called when no strand runs, so the hash state is ours */
static void
as_disk_writer_return_task(AsDiskWriter *self, GTask *task)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *hex = NULL;

	/* the data on disk first, without the lock: a flush can take a while */
	if (self->write_behind && !g_atomic_int_get(&self->failed) &&
	    !as_write_behind_finish(&self->behind, &error)) {
		g_mutex_lock(&self->mutex);
		as_disk_writer_set_error_locked(self, g_error_copy(error));
		g_mutex_unlock(&self->mutex);
	}

	g_mutex_lock(&self->mutex);
	if (self->aborted) {
		g_clear_error(&error);
		error = g_error_new_literal(G_IO_ERROR, G_IO_ERROR_CANCELLED,
					    "the write was aborted");
	} else if (self->error != NULL) {
		g_clear_error(&error);
		error = g_error_copy(self->error);
	} else if (self->sha256 != NULL) {
		hex = as_sha256_finish_hex(self->sha256);
		g_clear_pointer(&self->sha256, as_sha256_free);
	} else {
		hex = g_strdup("");
	}
	g_mutex_unlock(&self->mutex);

	if (error != NULL)
		g_task_return_error(task, g_steal_pointer(&error));
	else
		g_task_return_pointer(task, g_steal_pointer(&hex), g_free);
}

/* writes one block at the next offset; short writes and EINTR are retried */
static gboolean
as_disk_writer_write_block(AsDiskWriter *self, AsDiskWriterBlock *block, GError **error)
{
	gsize done = 0;

	if (self->write_offset > (guint64)G_MAXINT64 - block->len) {
		g_set_error(error, AS_ERROR, AS_ERROR_TOO_LARGE,
			    "write beyond offset %" G_GUINT64_FORMAT " is not possible",
			    self->write_offset);
		return FALSE;
	}
	while (done < block->len) {
		gssize n = pwrite(self->fd, block->data + done, block->len - done,
				  (off_t)(self->write_offset + done));
		if (n < 0) {
			int errsv = errno;
			if (errsv == EINTR)
				continue;
			if (errsv == ENOSPC || errsv == EDQUOT) {
				g_set_error_literal(error, AS_ERROR, AS_ERROR_NO_SPACE,
						    "no space left on the receiving disk");
				return FALSE;
			}
			g_set_error(error, AS_ERROR, AS_ERROR_IO,
				    "failed to write at offset %" G_GUINT64_FORMAT ": %s",
				    self->write_offset + done, g_strerror(errsv));
			return FALSE;
		}
		/* a regular file never accepts zero bytes of a non-empty write: avoid spinning */
		if (n == 0) {
			g_set_error(error, AS_ERROR, AS_ERROR_IO,
				    "failed to write at offset %" G_GUINT64_FORMAT
				    ": the file accepted no data",
				    self->write_offset + done);
			return FALSE;
		}
		done += (gsize)n;
	}
	self->write_offset += block->len;
	if (self->write_behind)
		as_write_behind_advance(&self->behind, self->write_offset - self->behind.base);
	return TRUE;
}

/* runs one strand until its queue is empty; hashing and writing the same stream run as two
 * strands, so the digest of one block overlaps with the write of another */
static void
as_disk_writer_worker_cb(gpointer data, gpointer user_data)
{
	AsDiskWriterStrand *strand = data;
	AsDiskWriter *self = strand->writer; /* reference taken when scheduled */

	for (guint turn = 0;; turn++) {
		AsDiskWriterBlock *block;
		g_autoptr(GError) error_local = NULL;

		g_mutex_lock(&self->mutex);
		if (self->error == NULL && g_cancellable_is_cancelled(self->cancellable)) {
			as_disk_writer_set_error_locked(
				self, g_error_new_literal(G_IO_ERROR, G_IO_ERROR_CANCELLED,
							  "the write was cancelled"));
		}
		block = g_queue_pop_head(&strand->pending);
		if (block == NULL) {
			GTask *task = NULL;
			strand->scheduled = FALSE;
			if (as_disk_writer_is_idle_locked(self))
				task = g_steal_pointer(&self->finish_task);
			g_mutex_unlock(&self->mutex);
			if (task != NULL) {
				as_disk_writer_return_task(self, task);
				g_object_unref(task);
			}
			break;
		}
		if (turn == AS_DISK_WRITER_BLOCKS_PER_TURN) {
			/* still scheduled: the pool's queue now holds our reference */
			g_queue_push_head(&strand->pending, block);
			g_mutex_unlock(&self->mutex);
			if (!g_thread_pool_push(as_disk_writer_get_pool(), strand, &error_local))
				g_warning("failed to start a disk writer thread: %s",
					  error_local->message);
			return;
		}
		g_mutex_unlock(&self->mutex);

		if (strand->kind == AS_DISK_WRITER_STRAND_HASH)
			as_sha256_update(self->sha256, block->data, block->len);
		else
			(void)as_disk_writer_write_block(self, block, &error_local);

		g_mutex_lock(&self->mutex);
		as_disk_writer_release_block_locked(self, block);
		if (error_local != NULL) {
			g_debug("disk writer failed: %s", error_local->message);
			as_disk_writer_set_error_locked(self, g_steal_pointer(&error_local));
		} else if (self->drain_wanted && self->queued_bytes < AS_DISK_WRITER_LOW_WATER) {
			as_disk_writer_schedule_drain_locked(self);
		}
		g_mutex_unlock(&self->mutex);
	}
	g_object_unref(self);
}

/* hands the block being filled to the worker */
static void
as_disk_writer_queue_current(AsDiskWriter *self)
{
	AsDiskWriterBlock *block = g_steal_pointer(&self->current);

	if (block == NULL)
		return;
	g_mutex_lock(&self->mutex);
	if (self->error != NULL || self->aborted || block->len == 0) {
		as_disk_writer_recycle_block_locked(self, block);
		g_mutex_unlock(&self->mutex);
		return;
	}
	block->jobs = self->n_strands;
	self->queued_bytes += block->len;
	for (guint i = 0; i < self->n_strands; i++) {
		g_queue_push_tail(&self->strands[i].pending, block);
		as_disk_writer_schedule_locked(self, &self->strands[i]);
	}
	if (!self->paused && self->queued_bytes >= AS_DISK_WRITER_HIGH_WATER) {
		self->paused = TRUE;
		self->drain_wanted = TRUE;
	}
	g_mutex_unlock(&self->mutex);
}

/**
 * as_disk_writer_write:
 * @self: a #AsDiskWriter
 * @data: (array length=len): bytes to append
 * @len: number of bytes
 *
 * Appends bytes to the stream. They are copied into %AS_DISK_WRITER_BLOCK_SIZE blocks, and
 * full blocks are written by a worker thread, so this never blocks on the disk. After a
 * failure or an abort the bytes are dropped.
 *
 * Returns: %TRUE if the producer should pause until the drain callback runs, because at
 * least %AS_DISK_WRITER_HIGH_WATER bytes wait for the disk
 **/
gboolean
as_disk_writer_write(AsDiskWriter *self, const void *data, gsize len)
{
	const guint8 *p = data;

	g_return_val_if_fail(AS_IS_DISK_WRITER(self), FALSE);
	g_return_val_if_fail(data != NULL || len == 0, FALSE);
	g_return_val_if_fail(!self->finishing, FALSE);

	if (g_atomic_int_get(&self->failed))
		return FALSE;
	while (len > 0) {
		gsize n;

		if (self->current == NULL)
			self->current = as_disk_writer_take_block(self);
		n = MIN(len, AS_DISK_WRITER_BLOCK_SIZE - self->current->len);
		memcpy(self->current->data + self->current->len, p, n);
		self->current->len += n;
		self->bytes_accepted += n;
		p += n;
		len -= n;
		if (self->current->len == AS_DISK_WRITER_BLOCK_SIZE)
			as_disk_writer_queue_current(self);
	}
	return self->paused;
}

/**
 * as_disk_writer_set_write_behind:
 * @self: a #AsDiskWriter, before its first write
 *
 * The file is a whole file written front to back that nobody reads while it arrives: push
 * it to disk as it goes, keep little of it in the page cache, and make it durable before the
 * finish reports success. See as-write-behind.c.
 **/
void
as_disk_writer_set_write_behind(AsDiskWriter *self)
{
	g_return_if_fail(AS_IS_DISK_WRITER(self));
	g_return_if_fail(self->bytes_accepted == 0);

	self->write_behind = TRUE;
	as_write_behind_init(&self->behind, self->fd, self->write_offset);
}

/**
 * as_disk_writer_set_drain_func:
 * @self: a #AsDiskWriter
 * @func: (nullable): called when a paused producer may resume
 * @user_data: data for @func
 *
 * Sets the callback invoked, in the thread-default main context of as_disk_writer_new(),
 * once the backlog falls below %AS_DISK_WRITER_LOW_WATER after as_disk_writer_write()
 * returned %TRUE, or once the writer fails, so a paused producer always wakes up.
 **/
void
as_disk_writer_set_drain_func(AsDiskWriter *self, AsDiskWriterDrainFunc func, gpointer user_data)
{
	g_return_if_fail(AS_IS_DISK_WRITER(self));
	self->drain_func = func;
	self->drain_user_data = user_data;
}

/**
 * as_disk_writer_get_bytes_written:
 * @self: a #AsDiskWriter
 *
 * Returns: the number of bytes accepted by as_disk_writer_write() so far
 **/
guint64
as_disk_writer_get_bytes_written(AsDiskWriter *self)
{
	g_return_val_if_fail(AS_IS_DISK_WRITER(self), 0);
	return self->bytes_accepted;
}

/**
 * as_disk_writer_has_failed:
 * @self: a #AsDiskWriter
 *
 * Returns: %TRUE if a write failed or the writer was aborted; further data is dropped
 **/
gboolean
as_disk_writer_has_failed(AsDiskWriter *self)
{
	g_return_val_if_fail(AS_IS_DISK_WRITER(self), TRUE);
	return g_atomic_int_get(&self->failed);
}

/**
 * as_disk_writer_finish_async:
 * @self: a #AsDiskWriter
 * @cancellable: (nullable): a #GCancellable; cancelling drops the data not yet written
 * @callback: called when all data is on the file
 * @user_data: data for @callback
 *
 * Flushes the partial block and waits for the worker. No more data may be written.
 **/
void
as_disk_writer_finish_async(AsDiskWriter *self,
			    GCancellable *cancellable,
			    GAsyncReadyCallback callback,
			    gpointer user_data)
{
	g_autoptr(GTask) task = NULL;

	g_return_if_fail(AS_IS_DISK_WRITER(self));
	g_return_if_fail(cancellable == NULL || G_IS_CANCELLABLE(cancellable));
	g_return_if_fail(!self->finishing);

	task = g_task_new(self, cancellable, callback, user_data);
	g_task_set_source_tag(task, as_disk_writer_finish_async);
	self->finishing = TRUE;
	as_disk_writer_queue_current(self);

	g_mutex_lock(&self->mutex);
	if (!as_disk_writer_is_idle_locked(self)) {
		self->finish_task = g_steal_pointer(&task);
		g_set_object(&self->cancellable, cancellable);
		g_mutex_unlock(&self->mutex);
		return;
	}
	g_mutex_unlock(&self->mutex);
	as_disk_writer_return_task(self, task);
}

/**
 * as_disk_writer_finish_finish:
 * @self: a #AsDiskWriter
 * @res: the #GAsyncResult
 * @error: (nullable): optional return location for an error
 *
 * Returns: (transfer full): the SHA-256 hex of all bytes written, "" when hashing was off,
 * or %NULL with the first error: %AS_ERROR_NO_SPACE when the disk is full, %AS_ERROR_IO
 * otherwise, %G_IO_ERROR_CANCELLED after an abort or cancellation
 **/
gchar *
as_disk_writer_finish_finish(AsDiskWriter *self, GAsyncResult *res, GError **error)
{
	g_return_val_if_fail(AS_IS_DISK_WRITER(self), NULL);
	g_return_val_if_fail(g_task_is_valid(res, self), NULL);
	g_return_val_if_fail(error == NULL || *error == NULL, NULL);
	return g_task_propagate_pointer(G_TASK(res), error);
}

/**
 * as_disk_writer_abort:
 * @self: a #AsDiskWriter
 *
 * Stops writing and drops the queued data; a block already being written completes. A
 * pending finish fails with %G_IO_ERROR_CANCELLED. Calling it again does nothing.
 **/
void
as_disk_writer_abort(AsDiskWriter *self)
{
	GTask *task = NULL;

	g_return_if_fail(AS_IS_DISK_WRITER(self));

	g_clear_pointer(&self->current, as_disk_writer_block_free);
	self->paused = FALSE;
	g_mutex_lock(&self->mutex);
	self->aborted = TRUE;
	self->drain_wanted = FALSE;
	g_atomic_int_set(&self->failed, TRUE);
	as_disk_writer_drop_pending_locked(self);
	if (as_disk_writer_is_idle_locked(self))
		task = g_steal_pointer(&self->finish_task);
	g_mutex_unlock(&self->mutex);
	if (task != NULL) {
		as_disk_writer_return_task(self, task);
		g_object_unref(task);
	}
}

static void
as_disk_writer_finalize(GObject *object)
{
	AsDiskWriter *self = AS_DISK_WRITER(object);

	as_disk_writer_block_free(self->current);
	as_disk_writer_drop_pending_locked(self);
	for (guint i = 0; i < self->free_count; i++)
		as_disk_writer_block_free(self->free_blocks[i]);
	g_clear_pointer(&self->sha256, as_sha256_free);
	g_clear_error(&self->error);
	g_clear_object(&self->cancellable);
	g_clear_pointer(&self->context, g_main_context_unref);
	if (self->fd >= 0)
		close(self->fd);
	g_mutex_clear(&self->mutex);
	G_OBJECT_CLASS(as_disk_writer_parent_class)->finalize(object);
}

static void
as_disk_writer_class_init(AsDiskWriterClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);
	object_class->finalize = as_disk_writer_finalize;
}

static void
as_disk_writer_init(AsDiskWriter *self)
{
	self->fd = -1;
	g_mutex_init(&self->mutex);
	for (guint i = 0; i < AS_DISK_WRITER_STRAND_LAST; i++) {
		self->strands[i].writer = self;
		self->strands[i].kind = i;
		g_queue_init(&self->strands[i].pending);
	}
}

/**
 * as_disk_writer_new:
 * @fd: a writable file descriptor, duplicated so the caller may close it
 * @offset: where the first byte goes
 * @hash: whether to compute the SHA-256 of the stream
 *
 * Creates a writer that puts an ordered byte stream at @offset of @fd from a worker thread,
 * so the caller's main loop never blocks on the disk.
 *
 * Returns: (transfer full): a new #AsDiskWriter; a bad @fd makes it fail on finish
 **/
AsDiskWriter *
as_disk_writer_new(int fd, guint64 offset, gboolean hash)
{
	AsDiskWriter *self = g_object_new(AS_TYPE_DISK_WRITER, NULL);

	self->context = g_main_context_ref_thread_default();
	self->write_offset = offset;
	self->n_strands = hash ? 2 : 1;
	if (hash)
		self->sha256 = as_sha256_new();
	self->fd = fd >= 0 ? fcntl(fd, F_DUPFD_CLOEXEC, 3) : -1;
	if (self->fd < 0) {
		int errsv = fd >= 0 ? errno : EBADF;
		self->error = g_error_new(AS_ERROR, AS_ERROR_IO,
					  "failed to duplicate the file descriptor: %s",
					  g_strerror(errsv));
		g_atomic_int_set(&self->failed, TRUE);
	}
	return self;
}
