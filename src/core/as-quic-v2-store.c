/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "AsQuicV2Store"

#include "config.h"

#include "as-disk-writer.h"
#include "as-error.h"
#include "as-path.h"
#include "as-quic-v2-store.h"
#include "as-sha256.h"

struct _AsQuicV2Store {
	gint refcount;
	AsChunkStore *store; /* owned */
	AsQuicV2StoreHooks hooks;
	gpointer user_data;
	GDestroyNotify user_data_destroy;
	AsQuicServer *server; /* unowned: it owns us; NULL once it let go */
	gboolean overwrite;
};

typedef struct _AsQuicV2StoreFile AsQuicV2StoreFile;

/* one file stream */
struct _AsQuicV2StoreFile {
	gint refcount;
	AsQuicV2Store *store; /* owned ref */
	AsChunkTask *task;    /* owned */
	gpointer cookie;      /* the hooks' */
	gchar *expected_sha256;
	GList *open_chunks; /* (element-type AsQuicV2StoreChunk) begun, not ended */
	gboolean aborted;
};

/* one chunk on its way to the disk */
typedef struct {
	AsQuicV2StoreFile *file; /* owned ref */
	guint32 index;
	guint64 length;
	AsChunkClaim claim;
	GCancellable *cancellable; /* owned: cancelled when another stream takes the chunk over */
	gulong cancelled_id;
	AsDiskWriter *writer; /* owned, NULL for a chunk already stored or taken over */
	gboolean taken_over;
	gboolean finishing;    /* chunk_end() flushes the writer */
	gboolean released;     /* the claim is ended or handed to as_chunk_task_abandon_chunk() */
	gboolean read_back;    /* written unhashed, verified by reading it back once */
	gboolean reading_back; /* a worker thread is at it */
	gboolean recorded;     /* and found it right and marked it done */
	gchar *read_back_sha256;
	gchar *expected_sha256;
	AsQuicV2ChunkReplyFunc reply;
	gpointer reply_data;
} AsQuicV2StoreChunk;

typedef struct {
	AsQuicV2StoreFile *file; /* owned ref */
	AsQuicV2FileReplyFunc reply;
	gpointer reply_data;
} AsQuicV2StoreEnd;

/**
 * as_quic_v2_store_new:
 * @store: the chunk store shared with the HTTP endpoints
 * @hooks: (nullable): copied
 * @user_data: for @hooks
 * @user_data_destroy: (nullable): frees @user_data with the store
 *
 * Returns: (transfer full): a new store ingest; hand it to a server with
 * as_quic_v2_store_attach()
 **/
AsQuicV2Store *
as_quic_v2_store_new(AsChunkStore *store,
		     const AsQuicV2StoreHooks *hooks,
		     gpointer user_data,
		     GDestroyNotify user_data_destroy)
{
	AsQuicV2Store *self;

	g_return_val_if_fail(AS_IS_CHUNK_STORE(store), NULL);

	self = g_new0(AsQuicV2Store, 1);
	self->refcount = 1;
	self->store = g_object_ref(store);
	if (hooks != NULL)
		self->hooks = *hooks;
	self->user_data = user_data;
	self->user_data_destroy = user_data_destroy;
	return self;
}

/**
 * as_quic_v2_store_set_overwrite:
 *
 * Whether publishing may replace an existing file (the daemon's `overwrite` setting).
 **/
void
as_quic_v2_store_set_overwrite(AsQuicV2Store *self, gboolean overwrite)
{
	g_return_if_fail(self != NULL);
	self->overwrite = overwrite;
}

AsQuicV2Store *
as_quic_v2_store_ref(AsQuicV2Store *self)
{
	g_return_val_if_fail(self != NULL, NULL);
	self->refcount++;
	return self;
}

void
as_quic_v2_store_unref(AsQuicV2Store *self)
{
	g_return_if_fail(self != NULL);
	if (--self->refcount > 0)
		return;
	if (self->user_data_destroy != NULL)
		self->user_data_destroy(self->user_data);
	g_object_unref(self->store);
	g_free(self);
}

/* ---- files ---- */

static AsQuicV2StoreFile *
as_quic_v2_store_file_ref(AsQuicV2StoreFile *file)
{
	file->refcount++;
	return file;
}

static void
as_quic_v2_store_file_unref(AsQuicV2StoreFile *file)
{
	AsQuicV2Store *self = file->store;

	if (--file->refcount > 0)
		return;
	if (self->hooks.file_closed != NULL)
		self->hooks.file_closed(self->user_data, file->cookie);
	g_list_free(file->open_chunks);
	g_object_unref(file->task);
	g_free(file->expected_sha256);
	as_quic_v2_store_unref(self);
	g_free(file);
}

static void
as_quic_v2_store_chunk_free(AsQuicV2StoreChunk *chunk)
{
	if (chunk->cancelled_id != 0)
		g_cancellable_disconnect(chunk->cancellable, chunk->cancelled_id);
	g_clear_object(&chunk->cancellable);
	if (chunk->writer != NULL) {
		as_disk_writer_set_drain_func(chunk->writer, NULL, NULL);
		as_disk_writer_abort(chunk->writer);
	}
	g_clear_object(&chunk->writer);
	as_quic_v2_store_file_unref(chunk->file);
	g_free(chunk->expected_sha256);
	g_free(chunk->read_back_sha256);
	g_free(chunk);
}

static void
as_quic_v2_store_have_cb(guint32 first, guint32 last_inclusive, gpointer user_data)
{
	guint8 *have = user_data;
	for (guint64 i = first; i <= last_inclusive; i++)
		as_quic_v2_bitmap_set(have, (guint32)i);
}

static gboolean
as_quic_v2_store_authenticate(gpointer user_data,
			      const gchar *token,
			      const gchar *peer,
			      GError **error)
{
	AsQuicV2Store *self = user_data;

	if (self->hooks.authenticate == NULL)
		return TRUE;
	return self->hooks.authenticate(self->user_data, token, peer, error);
}

static gboolean
as_quic_v2_store_file_begin(gpointer user_data,
			    const AsQuicV2FileInfo *info,
			    guint8 *have,
			    gpointer *file_handle,
			    gchar **done_saved_as,
			    gchar **done_sha256,
			    GError **error)
{
	AsQuicV2Store *self = user_data;
	g_autofree gchar *rel_path = NULL;
	g_autofree gchar *done_rel = NULL;
	g_autofree gchar *done_sha = NULL;
	g_autoptr(AsChunkTask) task = NULL;
	AsQuicV2StoreFile *file;
	guint64 done_size = 0;

	rel_path = as_path_sanitize(info->path, error);
	if (rel_path == NULL)
		return FALSE;
	if (self->hooks.route != NULL) {
		gchar *routed = self->hooks.route(self->user_data, rel_path, info->peer);
		if (routed != NULL) {
			g_free(rel_path);
			rel_path = routed;
		}
	}
	/* a task that completed before: the same answer a retried /upload/complete gets */
	if (as_chunk_store_lookup_done(self->store, info->task_id, &done_rel, &done_sha, &done_size,
				       NULL)) {
		if (info->sha256 != NULL && !as_sha256_hex_equal(info->sha256, done_sha)) {
			g_set_error(error, AS_ERROR, AS_ERROR_HASH_MISMATCH,
				    "task %s completed with SHA-256 %s, not %s", info->task_id,
				    done_sha, info->sha256);
			return FALSE;
		}
		if (done_size != info->size) {
			g_set_error(error, AS_ERROR, AS_ERROR_CONFLICT,
				    "task %s completed with %" G_GUINT64_FORMAT " bytes",
				    info->task_id, done_size);
			return FALSE;
		}
		*done_saved_as = g_steal_pointer(&done_rel);
		*done_sha256 = g_steal_pointer(&done_sha);
		*file_handle = NULL;
		return TRUE;
	}
	/* the stream holds the task until it completes: a file of one chunk needs no resume
	 * state, which would cost more than the file */
	task = as_chunk_store_open_task_full(self->store, info->task_id, rel_path, info->size,
					     info->chunk_size, info->total_chunks,
					     AS_CHUNK_STORE_OPEN_FLAG_HOLD, error);
	if (task == NULL)
		return FALSE;
	if (!as_chunk_task_foreach_range(task, TRUE, as_quic_v2_store_have_cb, have, error))
		return FALSE;

	file = g_new0(AsQuicV2StoreFile, 1);
	file->refcount = 1;
	file->store = as_quic_v2_store_ref(self);
	file->task = g_steal_pointer(&task);
	file->expected_sha256 = g_strdup(info->sha256);
	if (self->hooks.file_started != NULL)
		file->cookie = self->hooks.file_started(self->user_data, file->task, info->peer);
	*file_handle = file;
	return TRUE;
}

static void
as_quic_v2_store_drain_cb(AsDiskWriter *writer, gpointer user_data)
{
	AsQuicV2StoreFile *file = user_data;

	if (file->store->server != NULL)
		as_quic_server_resume_stream(file->store->server, file);
}

/*
 * Another stream took this chunk over: typically the sender crashed, its connection lingers
 * until the idle timeout, and the restarted sender sends the chunk again. The writer stops
 * and the claim goes once the writer is idle (see as_chunk_task_begin_chunk()); the rest of
 * this chunk's data is dropped and its end fails the stream with a conflict.
 */
static void
as_quic_v2_store_chunk_cancelled_cb(GCancellable *cancellable, gpointer user_data)
{
	AsQuicV2StoreChunk *chunk = user_data;

	/* the read-back stops by itself: its cancellable is this one */
	if (chunk->reading_back) {
		chunk->taken_over = TRUE;
		return;
	}
	if (chunk->writer == NULL)
		return;
	chunk->taken_over = TRUE;
	if (chunk->finishing) {
		/* its flush fails once the writer is idle, and settles the claim */
		as_disk_writer_abort(chunk->writer);
		return;
	}
	as_chunk_task_abandon_chunk(chunk->file->task, &chunk->claim, chunk->writer);
	chunk->released = TRUE;
	g_clear_object(&chunk->writer);
	/* a stream paused by this writer would never hear its drain */
	if (chunk->file->store->server != NULL)
		as_quic_server_resume_stream(chunk->file->store->server, chunk->file);
}

static gboolean
as_quic_v2_store_chunk_begin(gpointer user_data,
			     gpointer file_handle,
			     guint32 index,
			     guint64 offset,
			     guint64 length,
			     gpointer *chunk_handle,
			     GError **error)
{
	AsQuicV2StoreFile *file = file_handle;
	AsQuicV2StoreChunk *chunk;
	g_autoptr(GCancellable) cancellable = g_cancellable_new();
	AsChunkClaim claim = {0};

	if (!as_chunk_task_begin_chunk(file->task, index, length, cancellable, &claim, error))
		return FALSE;
	chunk = g_new0(AsQuicV2StoreChunk, 1);
	chunk->file = as_quic_v2_store_file_ref(file);
	chunk->index = index;
	chunk->length = length;
	chunk->claim = claim;
	chunk->cancellable = g_steal_pointer(&cancellable);
	/* a chunk stored meanwhile (another connection, an HTTP sender) is read and dropped */
	if (!claim.already_done) {
		/* as over HTTP (as_chunk_task_end_chunk_verify()): a chunk is read back once, for
		 * its digest and the whole-file hash, unless it was taken over or is the whole
		 * file held in memory */
		chunk->read_back = !claim.verify && !as_chunk_task_is_ephemeral(file->task);
		chunk->writer = as_disk_writer_new(as_chunk_task_get_fd(file->task), offset,
						   !chunk->read_back);
		as_disk_writer_set_drain_func(chunk->writer, as_quic_v2_store_drain_cb, file);
		chunk->cancelled_id = g_cancellable_connect(
			chunk->cancellable, G_CALLBACK(as_quic_v2_store_chunk_cancelled_cb), chunk,
			NULL);
	}
	file->open_chunks = g_list_prepend(file->open_chunks, chunk);
	*chunk_handle = chunk;
	return TRUE;
}

static gboolean
as_quic_v2_store_chunk_data(gpointer user_data,
			    gpointer file_handle,
			    gpointer chunk_handle,
			    const guint8 *data,
			    gsize len)
{
	AsQuicV2StoreChunk *chunk = chunk_handle;

	if (chunk->writer == NULL)
		return TRUE;
	/* TRUE from the writer means "pause" */
	return !as_disk_writer_write(chunk->writer, data, len);
}

static void
as_quic_v2_store_chunk_settle(AsQuicV2StoreChunk *chunk, const gchar *sha256, GError *error)
{
	AsQuicV2StoreFile *file = chunk->file;
	AsQuicV2Store *self = file->store;
	AsChunkTask *task = file->task;

	if (chunk->taken_over) {
		/* whatever this stream wrote, the chunk belongs to the one that took it over */
		g_clear_error(&error);
		error = g_error_new_literal(AS_ERROR, AS_ERROR_CONFLICT,
					    "taken over by another stream");
	} else if (error == NULL && !chunk->recorded &&
		   !as_sha256_hex_equal(sha256, chunk->expected_sha256)) {
		error = g_error_new(AS_ERROR, AS_ERROR_HASH_MISMATCH,
				    "SHA-256 mismatch: expected %s, got %s", chunk->expected_sha256,
				    sha256);
	}
	/* a verified chunk counts even if its stream died meanwhile: it is on disk */
	if (error == NULL && !chunk->recorded &&
	    !as_chunk_task_end_chunk(task, &chunk->claim, TRUE, sha256, &error))
		g_prefix_error_literal(&error, "cannot mark the chunk: ");
	if (error != NULL) {
		if (!chunk->released)
			as_chunk_task_end_chunk(task, &chunk->claim, FALSE, NULL, NULL);
		chunk->released = TRUE;
		if (self->hooks.chunk_failed != NULL)
			self->hooks.chunk_failed(self->user_data, file->cookie, task, chunk->index,
						 error);
		chunk->reply(chunk->reply_data, 0, 0, error);
		g_error_free(error);
		return;
	}
	chunk->released = TRUE;
	if (self->hooks.file_progress != NULL)
		self->hooks.file_progress(self->user_data, file->cookie,
					  as_chunk_task_get_bytes_done(task), chunk->length);
	chunk->reply(chunk->reply_data, as_chunk_task_get_done_count(task),
		     as_chunk_task_get_bytes_done(task), NULL);
}

static void
as_quic_v2_store_read_back_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	AsQuicV2StoreChunk *chunk = user_data;
	GError *error = NULL;

	chunk->reading_back = FALSE;
	/* the claim is released either way */
	chunk->released = TRUE;
	chunk->recorded = as_chunk_task_end_chunk_verify_finish(AS_CHUNK_TASK(source), res,
								&chunk->read_back_sha256, &error);
	if (!chunk->recorded && chunk->taken_over)
		g_clear_error(&error);
	as_quic_v2_store_chunk_settle(chunk, chunk->read_back_sha256, error);
	if (chunk->file->store->server != NULL)
		as_quic_server_resume_stream(chunk->file->store->server, chunk->file);
	as_quic_v2_store_chunk_free(chunk);
}

static void
as_quic_v2_store_written_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	AsQuicV2StoreChunk *chunk = user_data;
	GError *error = NULL;
	g_autofree gchar *sha256 = NULL;

	sha256 = as_disk_writer_finish_finish(AS_DISK_WRITER(source), res, &error);
	/* a drain still queued must not reach the file once the chunk lets go of it */
	as_disk_writer_set_drain_func(chunk->writer, NULL, NULL);
	g_clear_object(&chunk->writer);
	if (chunk->read_back && error == NULL && !chunk->taken_over &&
	    as_sha256_hex_is_valid(chunk->expected_sha256)) {
		chunk->reading_back = TRUE;
		as_chunk_task_end_chunk_verify_async(chunk->file->task, &chunk->claim,
						     chunk->expected_sha256, chunk->cancellable,
						     as_quic_v2_store_read_back_cb, chunk);
		/* the writer is gone: a stream it paused goes on with its next chunk meanwhile */
		if (chunk->file->store->server != NULL)
			as_quic_server_resume_stream(chunk->file->store->server, chunk->file);
		return;
	}
	as_quic_v2_store_chunk_settle(chunk, sha256, error);
	/* if this writer had paused the stream, its drain may have been dropped just above */
	if (chunk->file->store->server != NULL)
		as_quic_server_resume_stream(chunk->file->store->server, chunk->file);
	as_quic_v2_store_chunk_free(chunk);
}

static void
as_quic_v2_store_chunk_end(gpointer user_data,
			   gpointer file_handle,
			   gpointer chunk_handle,
			   const gchar *sha256,
			   AsQuicV2ChunkReplyFunc reply,
			   gpointer reply_data)
{
	AsQuicV2StoreFile *file = file_handle;
	AsQuicV2StoreChunk *chunk = chunk_handle;

	file->open_chunks = g_list_remove(file->open_chunks, chunk);
	chunk->expected_sha256 = g_strdup(sha256);
	chunk->reply = reply;
	chunk->reply_data = reply_data;
	if (chunk->taken_over) {
		as_quic_v2_store_chunk_settle(chunk, NULL, NULL);
		as_quic_v2_store_chunk_free(chunk);
		return;
	}
	if (chunk->writer == NULL) {
		/* stored before: as HTTP does, a duplicate's digest is not compared */
		reply(reply_data, as_chunk_task_get_done_count(file->task),
		      as_chunk_task_get_bytes_done(file->task), NULL);
		as_quic_v2_store_chunk_free(chunk);
		return;
	}
	chunk->finishing = TRUE;
	as_disk_writer_finish_async(chunk->writer, NULL, as_quic_v2_store_written_cb, chunk);
}

static void
as_quic_v2_store_completed_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	AsQuicV2StoreEnd *end = user_data;
	AsQuicV2StoreFile *file = end->file;
	AsQuicV2Store *self = file->store;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *sha256 = NULL;
	g_autofree gchar *published = NULL;

	published = as_chunk_task_complete_finish(AS_CHUNK_TASK(source), res, &sha256, &error);
	if (published == NULL) {
		if (self->hooks.file_failed != NULL)
			self->hooks.file_failed(self->user_data, file->cookie, error);
		end->reply(end->reply_data, NULL, NULL, error);
	} else {
		if (self->hooks.file_completed != NULL)
			self->hooks.file_completed(self->user_data, file->cookie, file->task,
						   published, sha256);
		end->reply(end->reply_data, published, sha256, NULL);
	}
	as_quic_v2_store_file_unref(file);
	g_free(end);
}

static void
as_quic_v2_store_file_end(gpointer user_data,
			  gpointer file_handle,
			  AsQuicV2FileReplyFunc reply,
			  gpointer reply_data)
{
	AsQuicV2Store *self = user_data;
	AsQuicV2StoreFile *file = file_handle;
	AsQuicV2StoreEnd *end = g_new0(AsQuicV2StoreEnd, 1);

	if (self->hooks.file_verifying != NULL)
		self->hooks.file_verifying(self->user_data, file->cookie);
	/* the stream's reference moves to the completion */
	end->file = file;
	end->reply = reply;
	end->reply_data = reply_data;
	as_chunk_task_complete_async(file->task, file->expected_sha256, self->overwrite, NULL,
				     as_quic_v2_store_completed_cb, end);
}

static void
as_quic_v2_store_file_abort(gpointer user_data, gpointer file_handle, const gchar *reason)
{
	AsQuicV2StoreFile *file = file_handle;

	g_debug("task %s: stream aborted: %s", as_chunk_task_get_id(file->task), reason);
	file->aborted = TRUE;
	/* a chunk cut short is not marked: its bytes get rewritten by the next attempt, once
	 * this writer cannot touch them any more */
	while (file->open_chunks != NULL) {
		AsQuicV2StoreChunk *chunk = file->open_chunks->data;
		file->open_chunks = g_list_delete_link(file->open_chunks, file->open_chunks);
		if (chunk->writer != NULL && !chunk->released) {
			as_chunk_task_abandon_chunk(file->task, &chunk->claim, chunk->writer);
			chunk->released = TRUE;
			g_clear_object(&chunk->writer);
		}
		as_quic_v2_store_chunk_free(chunk);
	}
	as_quic_v2_store_file_unref(file);
}

static const AsQuicV2Ingest as_quic_v2_store_ingest = {
	.authenticate = as_quic_v2_store_authenticate,
	.file_begin = as_quic_v2_store_file_begin,
	.chunk_begin = as_quic_v2_store_chunk_begin,
	.chunk_data = as_quic_v2_store_chunk_data,
	.chunk_end = as_quic_v2_store_chunk_end,
	.file_end = as_quic_v2_store_file_end,
	.file_abort = as_quic_v2_store_file_abort,
};

static void
as_quic_v2_store_detach(gpointer user_data)
{
	AsQuicV2Store *self = user_data;
	self->server = NULL;
	as_quic_v2_store_unref(self);
}

/**
 * as_quic_v2_store_attach:
 * @self: a #AsQuicV2Store
 * @server: the server whose `aerosync/2` connections it receives; it keeps a reference on @self
 *
 * Turns on `aerosync/2` on @server with @self as its ingest.
 **/
void
as_quic_v2_store_attach(AsQuicV2Store *self, AsQuicServer *server)
{
	g_return_if_fail(self != NULL);
	g_return_if_fail(AS_IS_QUIC_SERVER(server));

	self->server = server;
	as_quic_server_set_v2_ingest(server, &as_quic_v2_store_ingest, as_quic_v2_store_ref(self),
				     as_quic_v2_store_detach);
}
