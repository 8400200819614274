/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "AsHttpChunk"

#include "config.h"

#include "as-disk-writer.h"
#include "as-error.h"
#include "as-http-chunk.h"
#include "as-http-pump.h"
#include "as-http-util.h"
#include "as-path.h"
#include "as-sha256.h"

#define AS_HTTP_CHUNK_KEY "as-http-chunk"

/* one POST /upload/chunk request */
typedef struct {
	AsEngine *engine;	/* owned ref */
	SoupServerMessage *msg; /* not owned: the ctx lives in its qdata */
	AsChunkTask *task;	/* owned */
	AsTransfer *transfer;	/* owned ref */
	AsDiskWriter *writer;	/* owned, NULL for a duplicate or once taken over */
	AsChunkClaim claim;
	GCancellable *cancellable; /* owned: cancelled when another request takes the chunk */
	gulong cancelled_id;
	GSocket *socket; /* owned, nullable: the connection the pump reads */
	guint32 index;
	guint64 length;
	guint64 received;
	gchar *expected_sha256;	    /* X-Chunk-Hash */
	gboolean read_back;	    /* written unhashed, then verified by reading it back */
	gboolean recorded;	    /* read back, verified and marked done by the worker */
	gchar *read_back_sha256;    /* what the worker found on disk */
	AsHttpPump *pump;	    /* not owned: the pump waiting for the verdict, or NULL */
	SoupServerMessage *msg_ref; /* owned ref while a libsoup request waits for it */
	gboolean duplicate;
	gboolean ended; /* end_chunk() was called or is on its way */
	gboolean taken_over;
	gboolean finishing; /* the writer is being flushed */
	gboolean paused_by_writer;
} AsChunkCtx;

static void
as_chunk_ctx_free(AsChunkCtx *ctx)
{
	if (ctx->cancelled_id != 0)
		g_cancellable_disconnect(ctx->cancellable, ctx->cancelled_id);
	/* a chunk cut short by the client is simply not marked done; its bytes get rewritten,
	 * once the writer cannot touch them any more */
	if (ctx->writer != NULL && !ctx->ended)
		as_chunk_task_abandon_chunk(ctx->task, &ctx->claim, ctx->writer);
	else if (!ctx->ended && !ctx->duplicate)
		as_chunk_task_end_chunk(ctx->task, &ctx->claim, FALSE, NULL, NULL);
	g_clear_object(&ctx->writer);
	g_clear_object(&ctx->socket);
	g_clear_object(&ctx->cancellable);
	g_clear_object(&ctx->task);
	g_clear_object(&ctx->transfer);
	g_free(ctx->expected_sha256);
	g_free(ctx->read_back_sha256);
	g_object_unref(ctx->engine);
	g_free(ctx);
}

static AsTransfer *
as_http_chunk_transfer(AsEngine *engine, SoupServerMessage *msg, AsChunkTask *task)
{
	AsTransfer *transfer = as_engine_lookup_transfer(engine, as_chunk_task_get_id(task));
	/* a completed one answers retries; only a failed task that starts over gets a new one */
	if (transfer != NULL && as_transfer_get_state(transfer) != AS_TRANSFER_STATE_FAILED &&
	    as_transfer_get_state(transfer) != AS_TRANSFER_STATE_CANCELLED)
		return transfer;
	transfer = as_engine_receive_begin(engine, as_chunk_task_get_id(task), "http-chunk",
					   as_chunk_task_get_rel_path(task), as_http_peer(msg),
					   as_chunk_task_get_total_size(task));
	as_transfer_set_bytes_done(transfer, as_chunk_task_get_bytes_done(task));
	return transfer;
}

static void
as_http_chunk_drain_cb(AsDiskWriter *writer, gpointer user_data)
{
	AsChunkCtx *ctx = user_data;
	if (ctx->paused_by_writer) {
		ctx->paused_by_writer = FALSE;
		soup_server_message_unpause(ctx->msg);
	}
}

/*
 * Another request took the chunk over (its sender came back after a crash, say). Stop
 * writing: the libsoup path aborts its writer and releases the claim once the writer is idle;
 * the pump cannot be interrupted mid-read, so its socket is shut for reading, which ends the
 * pump at once with an error. Either way this request answers 409.
 */
static void
as_http_chunk_cancelled_cb(GCancellable *cancellable, gpointer user_data)
{
	AsChunkCtx *ctx = user_data;

	ctx->taken_over = TRUE;
	if (ctx->socket != NULL) {
		g_autoptr(GError) error_local = NULL;
		if (!g_socket_shutdown(ctx->socket, TRUE, FALSE, &error_local))
			g_debug("cannot stop the pump of chunk %u: %s", ctx->index,
				error_local->message);
		return;
	}
	if (ctx->writer == NULL || ctx->ended)
		return;
	if (ctx->finishing) {
		/* the flush fails once the writer is idle, and the chunk is settled then */
		as_disk_writer_abort(ctx->writer);
		return;
	}
	ctx->ended = TRUE;
	as_chunk_task_abandon_chunk(ctx->task, &ctx->claim, ctx->writer);
	g_clear_object(&ctx->writer);
	if (ctx->paused_by_writer) {
		/* the rest of the body is read and dropped */
		ctx->paused_by_writer = FALSE;
		soup_server_message_unpause(ctx->msg);
	}
}

static void
as_http_chunk_got_chunk_cb(SoupServerMessage *msg, GBytes *chunk, gpointer user_data)
{
	AsChunkCtx *ctx = user_data;
	gsize len = 0;
	const guint8 *data = g_bytes_get_data(chunk, &len);

	ctx->received += len;
	if (ctx->writer == NULL || ctx->transfer == NULL)
		return;
	if (as_disk_writer_write(ctx->writer, data, len) && !ctx->paused_by_writer) {
		ctx->paused_by_writer = TRUE;
		soup_server_message_pause(msg);
	}
	as_engine_receive_progress(ctx->engine, ctx->transfer,
				   as_chunk_task_get_bytes_done(ctx->task) + ctx->received);
}

static gboolean
as_http_chunk_parse(GHashTable *params,
		    AsEngine *engine,
		    gchar **task_id,
		    gchar **rel_path,
		    guint64 *index,
		    guint64 *total_chunks,
		    guint64 *total_size,
		    guint64 *chunk_size,
		    GError **error)
{
	const gchar *id = as_http_param_string(params, "task_id", TRUE, error);
	const gchar *filename;

	if (id == NULL)
		return FALSE;
	filename = as_http_param_string(params, "filename", TRUE, error);
	if (filename == NULL)
		return FALSE;
	if (!as_http_param_uint64(params, "chunk_index", TRUE, G_MAXUINT32, index, error) ||
	    !as_http_param_uint64(params, "total_chunks", TRUE, G_MAXUINT32, total_chunks, error) ||
	    !as_http_param_uint64(params, "total_size", TRUE, G_MAXUINT64, total_size, error) ||
	    !as_http_param_uint64(params, "chunk_size", TRUE, G_MAXUINT64, chunk_size, error))
		return FALSE;
	*rel_path = as_path_sanitize(filename, error);
	if (*rel_path == NULL)
		return FALSE;
	*task_id = g_strdup(id);
	return TRUE;
}

static JsonObject *as_http_chunk_settle(AsChunkCtx *ctx,
					const gchar *sha256,
					const GError *error,
					const gchar *peer,
					guint *status);

/* a large chunk body goes through the pump; the ctx then belongs to it, not to the message */
static void
as_http_chunk_pump_progress_cb(AsHttpPump *pump, guint64 bytes_done, gpointer user_data)
{
	AsChunkCtx *ctx = user_data;
	ctx->received = bytes_done;
	as_engine_receive_progress(ctx->engine, ctx->transfer,
				   as_chunk_task_get_bytes_done(ctx->task) + bytes_done);
}

static void
as_http_chunk_read_back_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	AsChunkCtx *ctx = user_data;
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonObject) obj = NULL;
	guint status = 0;

	ctx->recorded = as_chunk_task_end_chunk_verify_finish(AS_CHUNK_TASK(source), res,
							      &ctx->read_back_sha256, &error);
	/* a mismatch is told from the digest, like one found while the body came in */
	if (g_error_matches(error, AS_ERROR, AS_ERROR_HASH_MISMATCH))
		g_clear_error(&error);
	if (ctx->pump != NULL) {
		AsHttpPump *pump = ctx->pump;
		obj = as_http_chunk_settle(ctx, ctx->read_back_sha256, error,
					   as_http_pump_get_peer(pump), &status);
		as_http_pump_reply_json(pump, status, obj);
		as_chunk_ctx_free(ctx);
	} else {
		/* the ctx belongs to the message: settle before dropping our reference */
		g_autoptr(SoupServerMessage) msg = g_steal_pointer(&ctx->msg_ref);
		obj = as_http_chunk_settle(ctx, ctx->read_back_sha256, error, as_http_peer(msg),
					   &status);
		as_http_reply_json(msg, status, obj);
		soup_server_message_unpause(msg);
	}
}

/*
 * The body is written, unhashed: verify it on a worker thread (which also records it) and
 * settle then. Returns FALSE when there is nothing to verify and the caller settles now.
 */
static gboolean
as_http_chunk_read_back_start(AsChunkCtx *ctx, const GError *error)
{
	if (!ctx->read_back || error != NULL || ctx->taken_over || ctx->ended)
		return FALSE;
	ctx->ended = TRUE;
	as_chunk_task_end_chunk_verify_async(ctx->task, &ctx->claim, ctx->expected_sha256,
					     ctx->cancellable, as_http_chunk_read_back_cb, ctx);
	return TRUE;
}

static void
as_http_chunk_pump_done_cb(AsHttpPump *pump,
			   const gchar *sha256,
			   const GError *error,
			   gpointer user_data)
{
	AsChunkCtx *ctx = user_data;
	guint status = 0;
	g_autoptr(JsonObject) obj = NULL;

	ctx->pump = pump;
	if (as_http_chunk_read_back_start(ctx, error))
		return;
	obj = as_http_chunk_settle(ctx, sha256, error, as_http_pump_get_peer(pump), &status);
	as_http_pump_reply_json(pump, status, obj);
	as_chunk_ctx_free(ctx);
}

void
as_http_chunk_begin(AsEngine *engine, SoupServerMessage *msg)
{
	SoupMessageHeaders *hdrs = soup_server_message_get_request_headers(msg);
	AsChunkStore *store = as_engine_get_chunk_store(engine);
	const gchar *chunk_hash = soup_message_headers_get_one(hdrs, "X-Chunk-Hash");
	g_autoptr(GHashTable) params = as_http_query_params(msg);
	g_autoptr(GError) error = NULL;
	g_autoptr(AsChunkTask) task = NULL;
	g_autofree gchar *task_id = NULL;
	g_autofree gchar *rel_path = NULL;
	g_autoptr(GCancellable) cancellable = g_cancellable_new();
	guint64 index = 0, total_chunks = 0, total_size = 0, chunk_size = 0, offset = 0, length = 0;
	AsChunkClaim claim = {0};
	gboolean already_done = FALSE;
	gboolean hash;
	AsChunkCtx *ctx;

	if (!as_http_chunk_parse(params, engine, &task_id, &rel_path, &index, &total_chunks,
				 &total_size, &chunk_size, &error))
		goto fail;
	if (chunk_hash != NULL && !as_sha256_hex_is_valid(chunk_hash)) {
		g_set_error_literal(&error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
				    "X-Chunk-Hash must be 64 hex digits of SHA-256");
		goto fail;
	}
	/* the body size must be known up front: it is checked against the chunk's range */
	if (soup_message_headers_get_encoding(hdrs) != SOUP_ENCODING_CONTENT_LENGTH) {
		as_http_reply_error(msg, SOUP_STATUS_LENGTH_REQUIRED,
				    "chunks need a Content-Length");
		return;
	}
	/* routing is deterministic, so every chunk of a task lands on the same routed name; a
	 * sender that changes name or tag mid-task gets a conflict, not a silent redirect */
	{
		const gchar *tag = soup_message_headers_get_one(hdrs, "X-AeroSync-Tag");
		gchar *routed = as_engine_route(engine, rel_path, tag, as_http_peer(msg));
		g_free(rel_path);
		rel_path = routed;
	}
	task = as_chunk_store_open_task(store, task_id, rel_path, total_size, chunk_size,
					(guint32)total_chunks, &error);
	if (task == NULL)
		goto fail;
	if (!as_chunk_task_begin_chunk(task, (guint32)index,
				       (guint64)soup_message_headers_get_content_length(hdrs),
				       cancellable, &claim, &error))
		goto fail;
	if (!as_chunk_task_chunk_range(task, (guint32)index, &offset, &length, &error)) {
		as_chunk_task_end_chunk(task, &claim, FALSE, NULL, NULL);
		goto fail;
	}
	already_done = claim.already_done;
	/*
	 * A chunk taken over is hashed as it is written, then read back and compared with that.
	 * Any other chunk with an X-Chunk-Hash is written unhashed and read back once at the
	 * end: that one read gives its digest and, for a chunk in order, advances the
	 * whole-file hash too, where hashing on the way in meant hashing every byte twice.
	 */
	hash = claim.verify;

	ctx = g_new0(AsChunkCtx, 1);
	ctx->engine = g_object_ref(engine);
	ctx->msg = msg;
	ctx->task = g_steal_pointer(&task);
	ctx->claim = claim;
	ctx->cancellable = g_steal_pointer(&cancellable);
	ctx->index = (guint32)index;
	ctx->length = length;
	ctx->duplicate = already_done;
	ctx->expected_sha256 = g_strdup(chunk_hash);
	ctx->read_back = chunk_hash != NULL && !claim.verify;
	/* a duplicate moves nothing: no transfer is created or revived for it */
	if (!already_done)
		ctx->transfer = g_object_ref(as_http_chunk_transfer(engine, msg, ctx->task));
	if (!already_done && as_http_pump_can_take(msg, length)) {
		ctx->socket = g_object_ref(soup_server_message_get_socket(msg));
		ctx->cancelled_id = g_cancellable_connect(
			ctx->cancellable, G_CALLBACK(as_http_chunk_cancelled_cb), ctx, NULL);
		as_http_pump_start(msg, as_chunk_task_get_fd(ctx->task), offset, length, hash,
				   as_http_chunk_pump_progress_cb, as_http_chunk_pump_done_cb, ctx);
		return;
	}
	if (!already_done) {
		ctx->writer = as_disk_writer_new(as_chunk_task_get_fd(ctx->task), offset, hash);
		as_disk_writer_set_drain_func(ctx->writer, as_http_chunk_drain_cb, ctx);
		ctx->cancelled_id = g_cancellable_connect(
			ctx->cancellable, G_CALLBACK(as_http_chunk_cancelled_cb), ctx, NULL);
	}
	g_object_set_data_full(G_OBJECT(msg), AS_HTTP_CHUNK_KEY, ctx,
			       (GDestroyNotify)as_chunk_ctx_free);
	/* a duplicate's body is read and dropped: a verified chunk is never rewritten */
	soup_message_body_set_accumulate(soup_server_message_get_request_body(msg), FALSE);
	g_signal_connect(msg, "got-chunk", G_CALLBACK(as_http_chunk_got_chunk_cb), ctx);
	return;
fail:
	as_engine_record_failure(engine, "http-chunk", rel_path, as_http_peer(msg), error->message);
	as_http_reply_gerror(msg, error);
}

/* the 0.x reply to an accepted (or duplicate) chunk */
static JsonObject *
as_http_chunk_ok_json(AsChunkCtx *ctx)
{
	JsonObject *obj = json_object_new();
	guint32 done = as_chunk_task_get_done_count(ctx->task);
	guint32 total = as_chunk_task_get_total_chunks(ctx->task);

	json_object_set_string_member(obj, "task_id", as_chunk_task_get_id(ctx->task));
	json_object_set_int_member(obj, "chunk_index", ctx->index);
	json_object_set_int_member(obj, "received", (gint64)ctx->received);
	json_object_set_boolean_member(obj, "all_chunks_done", done == total);
	json_object_set_int_member(obj, "chunks_done", done);
	json_object_set_int_member(obj, "total_chunks", total);
	json_object_set_boolean_member(obj, "duplicate", ctx->duplicate);
	return obj;
}

static void
as_http_chunk_reply(AsChunkCtx *ctx)
{
	g_autoptr(JsonObject) obj = as_http_chunk_ok_json(ctx);
	as_http_reply_json(ctx->msg, SOUP_STATUS_OK, obj);
}

/*
 * The chunk's bytes are written (or @error says why not): check them against X-Chunk-Hash,
 * mark the chunk done or not, and build the reply. Shared by the libsoup path and the pump.
 */
static JsonObject *
as_http_chunk_settle(
	AsChunkCtx *ctx, const gchar *sha256, const GError *error, const gchar *peer, guint *status)
{
	g_autoptr(GError) error_local = NULL;
	gboolean was_ended = ctx->ended;

	ctx->ended = TRUE;
	if (ctx->taken_over) {
		/* whatever this request wrote, the chunk belongs to the one that took it over */
		if (!was_ended)
			as_chunk_task_end_chunk(ctx->task, &ctx->claim, FALSE, NULL, NULL);
		g_set_error(&error_local, AS_ERROR, AS_ERROR_CONFLICT,
			    "chunk %u of task %s was taken over by another request", ctx->index,
			    as_chunk_task_get_id(ctx->task));
		as_engine_record_failure(ctx->engine, "http-chunk",
					 as_chunk_task_get_rel_path(ctx->task), peer,
					 error_local->message);
		return as_http_error_json(error_local, status);
	}
	if (error == NULL && ctx->expected_sha256 != NULL &&
	    !as_sha256_hex_equal(sha256, ctx->expected_sha256)) {
		JsonObject *obj = json_object_new();
		as_chunk_task_end_chunk(ctx->task, &ctx->claim, FALSE, NULL, NULL);
		as_engine_record_failure(ctx->engine, "http-chunk",
					 as_chunk_task_get_rel_path(ctx->task), peer,
					 "chunk SHA-256 mismatch");
		json_object_set_string_member(obj, "error", "chunk SHA-256 mismatch");
		json_object_set_int_member(obj, "chunk_index", ctx->index);
		json_object_set_string_member(obj, "expected", ctx->expected_sha256);
		json_object_set_string_member(obj, "actual", sha256);
		*status = SOUP_STATUS_BAD_REQUEST;
		return obj;
	}
	if (error == NULL && (ctx->recorded || as_chunk_task_end_chunk(ctx->task, &ctx->claim, TRUE,
								       sha256, &error_local))) {
		as_metrics_bytes_received(as_engine_get_metrics(ctx->engine), ctx->length);
		as_engine_receive_progress(ctx->engine, ctx->transfer,
					   as_chunk_task_get_bytes_done(ctx->task));
		*status = SOUP_STATUS_OK;
		return as_http_chunk_ok_json(ctx);
	}
	if (error == NULL)
		error = error_local;
	as_chunk_task_end_chunk(ctx->task, &ctx->claim, FALSE, NULL, NULL);
	as_engine_record_failure(ctx->engine, "http-chunk", as_chunk_task_get_rel_path(ctx->task),
				 peer, error->message);
	return as_http_error_json(error, status);
}

static void
as_http_chunk_written_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(SoupServerMessage) msg = SOUP_SERVER_MESSAGE(user_data);
	AsChunkCtx *ctx = g_object_get_data(G_OBJECT(msg), AS_HTTP_CHUNK_KEY);
	g_autoptr(GError) error = NULL;
	g_autofree gchar *sha256 = NULL;
	g_autoptr(JsonObject) obj = NULL;
	guint status = 0;

	sha256 = as_disk_writer_finish_finish(AS_DISK_WRITER(source), res, &error);
	g_clear_object(&ctx->writer);
	if (as_http_chunk_read_back_start(ctx, error)) {
		ctx->msg_ref = g_steal_pointer(&msg);
		return;
	}
	obj = as_http_chunk_settle(ctx, sha256, error, as_http_peer(msg), &status);
	as_http_reply_json(msg, status, obj);
	soup_server_message_unpause(msg);
}

void
as_http_chunk_finish(AsEngine *engine, SoupServerMessage *msg)
{
	AsChunkCtx *ctx = g_object_get_data(G_OBJECT(msg), AS_HTTP_CHUNK_KEY);

	if (ctx == NULL) {
		as_http_reply_error(msg, SOUP_STATUS_INTERNAL_SERVER_ERROR, "chunk state lost");
		return;
	}
	if (ctx->duplicate) {
		as_http_chunk_reply(ctx);
		return;
	}
	if (ctx->writer == NULL) {
		g_autoptr(JsonObject) obj = NULL;
		guint status = 0;
		obj = as_http_chunk_settle(ctx, NULL, NULL, as_http_peer(msg), &status);
		as_http_reply_json(msg, status, obj);
		return;
	}
	soup_server_message_pause(msg);
	ctx->finishing = TRUE;
	as_disk_writer_finish_async(ctx->writer, NULL, as_http_chunk_written_cb, g_object_ref(msg));
}

/* POST /upload/complete */

typedef struct {
	AsEngine *engine;
	SoupServerMessage *msg;
	AsTransfer *transfer;
	gchar *expected_sha256;
	gboolean retry; /* the transfer had completed already: answer, announce nothing */
} AsCompleteCtx;

static void
as_complete_ctx_free(AsCompleteCtx *ctx)
{
	g_object_unref(ctx->engine);
	g_object_unref(ctx->msg);
	g_clear_object(&ctx->transfer);
	g_free(ctx->expected_sha256);
	g_free(ctx);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(AsCompleteCtx, as_complete_ctx_free)

static void
as_http_complete_reply(SoupServerMessage *msg,
		       const gchar *filename,
		       const gchar *saved_as,
		       guint64 size,
		       const gchar *sha256)
{
	g_autoptr(JsonObject) obj = json_object_new();
	json_object_set_string_member(obj, "status", "complete");
	json_object_set_string_member(obj, "filename", filename);
	json_object_set_string_member(obj, "saved_as", saved_as);
	json_object_set_int_member(obj, "size", (gint64)size);
	json_object_set_string_member(obj, "sha256", sha256);
	as_http_reply_json(msg, SOUP_STATUS_OK, obj);
}

static void
as_http_complete_done_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(AsCompleteCtx) ctx = user_data;
	AsChunkTask *task = AS_CHUNK_TASK(source);
	g_autoptr(GError) error = NULL;
	g_autofree gchar *sha256 = NULL;
	g_autofree gchar *published = NULL;

	published = as_chunk_task_complete_finish(task, res, &sha256, &error);
	if (published == NULL) {
		if (g_error_matches(error, AS_ERROR, AS_ERROR_INCOMPLETE) ||
		    g_error_matches(error, AS_ERROR, AS_ERROR_CONFLICT)) {
			/* nothing is lost: the sender can still send what is missing */
			if (!ctx->retry)
				as_transfer_set_state(ctx->transfer, AS_TRANSFER_STATE_RUNNING);
			as_http_reply_gerror(ctx->msg, error);
		} else if (g_error_matches(error, AS_ERROR, AS_ERROR_HASH_MISMATCH)) {
			g_autoptr(JsonObject) obj = json_object_new();
			if (sha256 == NULL)
				sha256 = as_chunk_task_dup_computed_sha256(task);
			json_object_set_string_member(obj, "error", "SHA-256 mismatch");
			json_object_set_string_member(obj, "detail", error->message);
			json_object_set_string_member(obj, "expected", ctx->expected_sha256);
			if (sha256 != NULL)
				json_object_set_string_member(obj, "actual", sha256);
			as_engine_receive_failed(ctx->engine, ctx->transfer, error->message);
			as_http_reply_json(ctx->msg, SOUP_STATUS_BAD_REQUEST, obj);
		} else {
			as_engine_receive_failed(ctx->engine, ctx->transfer, error->message);
			as_http_reply_gerror(ctx->msg, error);
		}
		soup_server_message_unpause(ctx->msg);
		return;
	}
	/* a retried complete whose first reply was lost must not announce the file twice */
	if (!ctx->retry)
		as_engine_receive_completed(ctx->engine, ctx->transfer, published, sha256,
					    as_chunk_task_get_total_size(task));
	as_http_complete_reply(ctx->msg, as_chunk_task_get_rel_path(task), published,
			       as_chunk_task_get_total_size(task), sha256);
	soup_server_message_unpause(ctx->msg);
}

void
as_http_chunk_complete(AsEngine *engine, SoupServerMessage *msg)
{
	AsChunkStore *store = as_engine_get_chunk_store(engine);
	AsConfig *config = as_engine_get_config(engine);
	g_autoptr(GHashTable) params = as_http_query_params(msg);
	g_autoptr(GError) error = NULL;
	g_autoptr(AsChunkTask) task = NULL;
	const gchar *task_id = as_http_param_string(params, "task_id", TRUE, &error);
	const gchar *sha256 = g_hash_table_lookup(params, "sha256");
	guint64 total_size = G_MAXUINT64, total_chunks = G_MAXUINT64;
	AsCompleteCtx *ctx;

	if (task_id == NULL ||
	    !as_http_param_uint64(params, "total_size", FALSE, G_MAXUINT64, &total_size, &error) ||
	    !as_http_param_uint64(params, "total_chunks", FALSE, G_MAXUINT32, &total_chunks,
				  &error))
		goto fail;
	if (sha256 != NULL && *sha256 == '\0')
		sha256 = NULL;
	if (sha256 != NULL && !as_sha256_hex_is_valid(sha256)) {
		g_set_error_literal(&error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
				    "sha256 must be 64 hex digits");
		goto fail;
	}
	task = as_chunk_store_lookup_task(store, task_id, &error);
	if (task == NULL) {
		g_autofree gchar *rel = NULL;
		g_autofree gchar *done_sha = NULL;
		guint64 size = 0;

		/* a retried complete whose first reply was lost gets the same answer */
		if (as_chunk_store_lookup_done(store, task_id, &rel, &done_sha, &size, NULL)) {
			if (sha256 != NULL && !as_sha256_hex_equal(sha256, done_sha)) {
				g_autoptr(JsonObject) obj = json_object_new();
				json_object_set_string_member(obj, "error", "SHA-256 mismatch");
				json_object_set_string_member(obj, "expected", sha256);
				json_object_set_string_member(obj, "actual", done_sha);
				as_http_reply_json(msg, SOUP_STATUS_BAD_REQUEST, obj);
				return;
			}
			as_http_complete_reply(msg, rel, rel, size, done_sha);
			return;
		}
		goto fail;
	}
	if ((total_size != G_MAXUINT64 && total_size != as_chunk_task_get_total_size(task)) ||
	    (total_chunks != G_MAXUINT64 && total_chunks != as_chunk_task_get_total_chunks(task))) {
		g_set_error(&error, AS_ERROR, AS_ERROR_CONFLICT,
			    "task %s was started with total_size %" G_GUINT64_FORMAT
			    " and total_chunks %u",
			    task_id, as_chunk_task_get_total_size(task),
			    as_chunk_task_get_total_chunks(task));
		goto fail;
	}

	ctx = g_new0(AsCompleteCtx, 1);
	ctx->engine = g_object_ref(engine);
	ctx->msg = g_object_ref(msg);
	ctx->transfer = g_object_ref(as_http_chunk_transfer(engine, msg, task));
	ctx->expected_sha256 = g_strdup(sha256);
	ctx->retry = as_transfer_get_state(ctx->transfer) == AS_TRANSFER_STATE_COMPLETED;
	if (!ctx->retry)
		as_transfer_set_state(ctx->transfer, AS_TRANSFER_STATE_VERIFYING);
	soup_server_message_pause(msg);
	as_chunk_task_complete_async(task, sha256, config->overwrite, NULL,
				     as_http_complete_done_cb, ctx);
	return;
fail:
	as_http_reply_gerror(msg, error);
}

/* GET /upload/status?task_id=: what the receiver holds, so a sender can resume with no state */

static void
as_http_status_range_cb(guint32 first, guint32 last, gpointer user_data)
{
	JsonArray *ranges = user_data;
	JsonArray *pair = json_array_new();
	json_array_add_int_element(pair, first);
	json_array_add_int_element(pair, last);
	json_array_add_array_element(ranges, pair);
}

void
as_http_chunk_status(AsEngine *engine, SoupServerMessage *msg)
{
	AsChunkStore *store = as_engine_get_chunk_store(engine);
	g_autoptr(GHashTable) params = as_http_query_params(msg);
	g_autoptr(GError) error = NULL;
	g_autoptr(AsChunkTask) task = NULL;
	g_autoptr(JsonObject) obj = json_object_new();
	g_autoptr(JsonArray) received = json_array_new();
	g_autoptr(JsonArray) missing = json_array_new();
	const gchar *task_id = as_http_param_string(params, "task_id", TRUE, &error);

	if (task_id == NULL) {
		as_http_reply_gerror(msg, error);
		return;
	}
	/* the tombstone first: a task that just completed may still be held in memory by the
	 * stream or request that completed it, and must not be reported as unfinished */
	{
		g_autofree gchar *rel = NULL;
		g_autofree gchar *sha256 = NULL;
		guint64 size = 0;
		if (as_chunk_store_lookup_done(store, task_id, &rel, &sha256, &size, NULL)) {
			json_object_set_string_member(obj, "task_id", task_id);
			json_object_set_boolean_member(obj, "complete", TRUE);
			json_object_set_string_member(obj, "saved_as", rel);
			json_object_set_int_member(obj, "total_size", (gint64)size);
			json_object_set_string_member(obj, "sha256", sha256);
			as_http_reply_json(msg, SOUP_STATUS_OK, obj);
			return;
		}
	}
	task = as_chunk_store_lookup_task(store, task_id, &error);
	if (task == NULL) {
		as_http_reply_gerror(msg, error);
		return;
	}
	if (!as_chunk_task_foreach_range(task, TRUE, as_http_status_range_cb, received, &error) ||
	    !as_chunk_task_foreach_range(task, FALSE, as_http_status_range_cb, missing, &error)) {
		as_http_reply_gerror(msg, error);
		return;
	}
	json_object_set_string_member(obj, "task_id", task_id);
	json_object_set_boolean_member(obj, "complete", FALSE);
	json_object_set_string_member(obj, "filename", as_chunk_task_get_rel_path(task));
	json_object_set_int_member(obj, "total_size", (gint64)as_chunk_task_get_total_size(task));
	json_object_set_int_member(obj, "chunk_size", (gint64)as_chunk_task_get_chunk_size(task));
	json_object_set_int_member(obj, "total_chunks", as_chunk_task_get_total_chunks(task));
	json_object_set_int_member(obj, "received_chunks", as_chunk_task_get_done_count(task));
	json_object_set_int_member(obj, "received_bytes",
				   (gint64)as_chunk_task_get_bytes_done(task));
	json_object_set_array_member(obj, "received", g_steal_pointer(&received));
	json_object_set_array_member(obj, "missing", g_steal_pointer(&missing));
	as_http_reply_json(msg, SOUP_STATUS_OK, obj);
}
