/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "AsHttpUpload"

#include "config.h"

#include <unistd.h>

#include "as-disk-writer.h"
#include "as-error.h"
#include "as-http-pump.h"
#include "as-http-upload.h"
#include "as-http-util.h"
#include "as-multipart-parser.h"
#include "as-path.h"
#include "as-publish.h"
#include "as-sha256.h"
#include "as-write-behind.h"

#define AS_HTTP_UPLOAD_KEY "as-http-upload"
/* how many batch files may be finishing their writes at once before reading pauses */
#define AS_HTTP_BATCH_MAX_PENDING 8
/* verified batch files published together, with one data sync and one sync per directory */
#define AS_HTTP_BATCH_GROUP_MAX 64

typedef struct _AsUploadCtx AsUploadCtx;

/* one file being written into the staging folder */
typedef struct {
	AsUploadCtx *ctx;     /* not owned */
	AsDiskWriter *writer; /* owned */
	AsTransfer *transfer; /* owned ref; the engine keeps its own */
	gchar *temp_name;     /* in the staging dir; NULL once published or removed */
	gchar *rel_path;      /* sanitised */
	gchar *expected_sha256;
	gchar *sha256; /* computed, once written: a mismatch reply shows it */
	guint64 size;
	gboolean ended;
} AsUploadFile;

struct _AsUploadCtx {
	AsEngine *engine;	/* owned ref */
	SoupServerMessage *msg; /* not owned: the ctx lives in its qdata */
	gboolean batch;
	gchar *path_tail;	    /* URL-named file, or NULL */
	gchar *expected_sha256;	    /* X-File-Hash */
	gchar *part_sha256;	    /* X-File-Hash inside the current part's headers */
	gboolean part_sha256_bad;   /* that header was not a SHA-256 */
	AsMultipartParser *parser;  /* NULL for a raw body */
	AsUploadFile *current;	    /* the file receiving data, or NULL */
	gboolean skipping_part;	    /* a multipart part we ignore */
	gboolean file_part_seen;    /* single: only the first 'file' part counts */
	GPtrArray *pending;	    /* (element-type AsUploadFile) not settled yet */
	guint finishing;	    /* of those, files whose writes are being finished */
	AsEngineCommitBatch *group; /* batch: verified files waiting to be published */
	gboolean committing;	    /* batch: a group is being published */
	JsonArray *results;	    /* batch per-file results */
	guint saved;
	GError *error;		   /* first fatal error; the body is then drained and dropped */
	gboolean paused_by_writer; /* waiting for the disk */
	gboolean paused_for_reply; /* got the body, waiting for verification */
	gboolean body_done;
	gboolean disconnected; /* the client went away: no more parts will come */
	gboolean replied;
};

static void
as_upload_file_free(AsUploadFile *file)
{
	if (file->writer != NULL)
		as_disk_writer_abort(file->writer);
	g_clear_object(&file->writer);
	if (file->temp_name != NULL) {
		as_chunk_store_remove_temp(as_engine_get_chunk_store(file->ctx->engine),
					   file->temp_name);
		g_free(file->temp_name);
	}
	g_clear_object(&file->transfer);
	g_free(file->rel_path);
	g_free(file->expected_sha256);
	g_free(file->sha256);
	g_free(file);
}

static void
as_upload_ctx_free(AsUploadCtx *ctx)
{
	/* the client went away before the reply: whatever was half-received is discarded */
	if (ctx->current != NULL) {
		if (ctx->current->transfer != NULL) {
			g_autofree gchar *reason = g_strdup_printf(
				"connection closed after %" G_GUINT64_FORMAT " bytes",
				ctx->current->size);
			as_engine_receive_failed(ctx->engine, ctx->current->transfer, reason);
		}
		as_upload_file_free(ctx->current);
	}
	g_clear_pointer(&ctx->pending, g_ptr_array_unref);
	g_clear_pointer(&ctx->group, as_engine_commit_batch_free);
	g_clear_pointer(&ctx->parser, as_multipart_parser_free);
	g_clear_pointer(&ctx->results, json_array_unref);
	g_clear_error(&ctx->error);
	g_free(ctx->path_tail);
	g_free(ctx->expected_sha256);
	g_free(ctx->part_sha256);
	g_object_unref(ctx->engine);
	g_free(ctx);
}

static void
as_upload_ctx_fail(AsUploadCtx *ctx, GError *error)
{
	if (ctx->error == NULL)
		ctx->error = error;
	else
		g_error_free(error);
}

/* too much is waiting for the disk: reading the body pauses */
static gboolean
as_upload_is_congested(AsUploadCtx *ctx)
{
	return ctx->finishing >= AS_HTTP_BATCH_MAX_PENDING ||
	       (ctx->committing && ctx->group != NULL &&
		as_engine_commit_batch_get_length(ctx->group) >= AS_HTTP_BATCH_GROUP_MAX);
}

static void
as_upload_maybe_unpause(AsUploadCtx *ctx)
{
	if (ctx->paused_by_writer && !as_upload_is_congested(ctx)) {
		ctx->paused_by_writer = FALSE;
		soup_server_message_unpause(ctx->msg);
	}
}

static void
as_upload_writer_drain_cb(AsDiskWriter *writer, gpointer user_data)
{
	as_upload_maybe_unpause(user_data);
}

static AsUploadFile *
as_upload_file_new(AsUploadCtx *ctx,
		   const gchar *rel_path,
		   const gchar *expected_sha256,
		   GError **error)
{
	AsChunkStore *store = as_engine_get_chunk_store(ctx->engine);
	g_autoptr(GError) error_local = NULL;
	AsUploadFile *file;
	goffset length;
	int fd;

	file = g_new0(AsUploadFile, 1);
	file->ctx = ctx;
	file->rel_path = g_strdup(rel_path);
	file->expected_sha256 = g_strdup(expected_sha256);
	fd = as_chunk_store_create_temp(store, &file->temp_name, error);
	if (fd < 0) {
		as_upload_file_free(file);
		return NULL;
	}
	length = soup_message_headers_get_content_length(
		soup_server_message_get_request_headers(ctx->msg));
	file->writer = as_disk_writer_new(fd, 0, TRUE);
	if (!ctx->batch && length >= AS_WRITE_BEHIND_MIN_BYTES)
		as_disk_writer_set_write_behind(file->writer);
	close(fd);
	as_disk_writer_set_drain_func(file->writer, as_upload_writer_drain_cb, ctx);

	file->transfer = g_object_ref(as_engine_receive_begin(
		ctx->engine, NULL, ctx->batch ? "http-batch" : "http", rel_path,
		as_http_peer(ctx->msg), ctx->parser == NULL ? (guint64)length : 0));
	return file;
}

static gboolean
as_upload_file_write(
	AsUploadCtx *ctx, AsUploadFile *file, const guint8 *data, gsize len, GError **error)
{
	AsConfig *config = as_engine_get_config(ctx->engine);

	if (file->size + len > config->max_size) {
		g_set_error(error, AS_ERROR, AS_ERROR_TOO_LARGE,
			    "%s exceeds the limit of %" G_GUINT64_FORMAT " bytes", file->rel_path,
			    config->max_size);
		return FALSE;
	}
	file->size += len;
	if (as_disk_writer_write(file->writer, data, len) && !ctx->paused_by_writer) {
		ctx->paused_by_writer = TRUE;
		soup_server_message_pause(ctx->msg);
	}
	if (as_disk_writer_has_failed(file->writer)) {
		g_set_error(error, AS_ERROR, AS_ERROR_IO, "writing %s failed", file->rel_path);
		return FALSE;
	}
	as_engine_receive_progress(ctx->engine, file->transfer, file->size);
	return TRUE;
}

static void as_upload_maybe_reply(AsUploadCtx *ctx);
static void as_upload_maybe_commit(AsUploadCtx *ctx);

/* where the routing rules send this name; X-AeroSync-Tag and the peer take part */
static gchar *
as_upload_route(AsEngine *engine, SoupServerMessage *msg, const gchar *rel)
{
	const gchar *tag = soup_message_headers_get_one(
		soup_server_message_get_request_headers(msg), "X-AeroSync-Tag");
	return as_engine_route(engine, rel, tag, as_http_peer(msg));
}

static void
as_upload_batch_result(AsUploadCtx *ctx, const gchar *name, AsUploadFile *file, const GError *error)
{
	JsonObject *obj = json_object_new();

	json_object_set_string_member(obj, "name", name);
	json_object_set_boolean_member(obj, "ok", error == NULL);
	if (file != NULL && error == NULL) {
		json_object_set_string_member(obj, "saved_as", file->rel_path);
		json_object_set_int_member(obj, "size", (gint64)file->size);
		json_object_set_string_member(obj, "sha256",
					      as_transfer_get_sha256(file->transfer));
	}
	if (error != NULL)
		json_object_set_string_member(obj, "error", error->message);
	json_array_add_object_element(ctx->results, obj);
}

/* the 0.x replies of a single upload */
static JsonObject *
as_upload_reply_json(AsTransfer *transfer,
		     const gchar *published,
		     guint64 size,
		     const gchar *expected_sha256,
		     const gchar *sha256,
		     const GError *error,
		     guint *status)
{
	JsonObject *obj;

	if (error == NULL) {
		obj = json_object_new();
		*status = SOUP_STATUS_OK;
		json_object_set_boolean_member(obj, "success", TRUE);
		json_object_set_string_member(obj, "file_id", as_transfer_get_id(transfer));
		json_object_set_string_member(obj, "filename", published);
		json_object_set_int_member(obj, "size", (gint64)size);
		json_object_set_string_member(obj, "sha256", sha256);
	} else if (g_error_matches(error, AS_ERROR, AS_ERROR_HASH_MISMATCH)) {
		obj = json_object_new();
		*status = SOUP_STATUS_BAD_REQUEST;
		json_object_set_string_member(obj, "error", "SHA-256 mismatch");
		json_object_set_string_member(obj, "expected", expected_sha256);
		json_object_set_string_member(obj, "actual", sha256);
	} else {
		obj = as_http_error_json(error, status);
	}
	return obj;
}

/* the file is published or refused, and the engine knows: answer and go on */
static void
as_upload_file_settled(AsUploadFile *file,
		       const gchar *sha256,
		       const gchar *published,
		       const GError *error)
{
	AsUploadCtx *ctx = file->ctx;
	g_autofree gchar *requested = g_strdup(file->rel_path);

	if (published != NULL) {
		g_free(file->rel_path);
		file->rel_path = g_strdup(published);
		ctx->saved++;
	}

	if (ctx->batch) {
		as_upload_batch_result(ctx, requested, file, error);
	} else {
		guint status = 0;
		g_autoptr(JsonObject) obj =
			as_upload_reply_json(file->transfer, published, file->size,
					     file->expected_sha256, sha256, error, &status);
		as_http_reply_json(ctx->msg, status, obj);
		ctx->replied = TRUE;
	}
	g_ptr_array_remove(ctx->pending, file);
	as_upload_maybe_unpause(ctx);
	as_upload_maybe_commit(ctx);
	as_upload_maybe_reply(ctx);
	g_object_unref(ctx->msg);
}

static void
as_upload_file_committed_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	AsUploadFile *file = user_data;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *published =
		as_engine_receive_commit_finish(AS_ENGINE(source), res, &error);

	as_upload_file_settled(file, file->sha256, published, error);
}

/* the file's bytes are on disk: verify, publish (off the main loop), tell the engine */
static void
as_upload_file_finished_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	AsUploadFile *file = user_data;
	g_autoptr(GError) error = NULL;

	AsUploadCtx *ctx = file->ctx;

	ctx->finishing--;
	file->sha256 = as_disk_writer_finish_finish(AS_DISK_WRITER(source), res, &error);
	/* its buffers are not needed while the file waits to be published */
	g_clear_object(&file->writer);
	if (file->sha256 == NULL) {
		as_engine_receive_failed(ctx->engine, file->transfer, error->message);
		as_upload_file_settled(file, NULL, NULL, error);
		return;
	}
	/* a batch file waits for its group: see as_upload_maybe_commit() */
	if (ctx->batch) {
		if (ctx->group == NULL)
			ctx->group = as_engine_commit_batch_new(ctx->engine);
		if (!as_engine_commit_batch_add(ctx->group, file->transfer, &file->temp_name,
						file->rel_path, file->expected_sha256, file->sha256,
						file->size, file, &error)) {
			as_upload_file_settled(file, file->sha256, NULL, error);
			return;
		}
		as_upload_maybe_unpause(ctx);
		as_upload_maybe_commit(ctx);
		return;
	}
	as_engine_receive_commit_async(file->ctx->engine, file->transfer, &file->temp_name,
				       file->rel_path, file->expected_sha256, file->sha256,
				       file->size, as_upload_file_committed_cb, file);
}

static void
as_upload_file_end(AsUploadCtx *ctx)
{
	AsUploadFile *file = g_steal_pointer(&ctx->current);

	g_ptr_array_add(ctx->pending, file);
	ctx->finishing++;
	as_transfer_set_state(file->transfer, AS_TRANSFER_STATE_VERIFYING);
	g_object_ref(ctx->msg);
	as_disk_writer_finish_async(file->writer, NULL, as_upload_file_finished_cb, file);
	if (as_upload_is_congested(ctx) && !ctx->paused_by_writer) {
		ctx->paused_by_writer = TRUE;
		soup_server_message_pause(ctx->msg);
	}
}

static void
as_upload_group_done_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	AsUploadCtx *ctx = user_data;
	g_autoptr(AsEngineCommitBatch) group =
		as_engine_commit_batch_run_finish(AS_ENGINE(source), res);
	/* settling the last file may drop the last reference the files hold */
	g_autoptr(SoupServerMessage) msg = ctx->msg;

	for (guint i = 0; i < as_engine_commit_batch_get_length(group); i++) {
		AsUploadFile *file = as_engine_commit_batch_get_user_data(group, i);
		as_upload_file_settled(file, file->sha256,
				       as_engine_commit_batch_get_published(group, i),
				       as_engine_commit_batch_get_error(group, i));
	}
	ctx->committing = FALSE;
	as_upload_maybe_unpause(ctx);
	as_upload_maybe_commit(ctx);
	as_upload_maybe_reply(ctx);
}

/*
 * Publishes the verified batch files waiting in the group once there are enough of them, or
 * once no more can come: one group at a time, so a group's syncs cover as many files as
 * possible. The reply waits for every group, so "saved" means on disk.
 */
static void
as_upload_maybe_commit(AsUploadCtx *ctx)
{
	guint len;

	if (ctx->committing || ctx->group == NULL)
		return;
	len = as_engine_commit_batch_get_length(ctx->group);
	if (len == 0)
		return;
	if (len < AS_HTTP_BATCH_GROUP_MAX && ctx->finishing > 0)
		return;
	if (len < AS_HTTP_BATCH_GROUP_MAX && !ctx->disconnected &&
	    !(ctx->body_done && ctx->current == NULL))
		return;
	ctx->committing = TRUE;
	g_object_ref(ctx->msg);
	as_engine_commit_batch_run_async(ctx->engine, g_steal_pointer(&ctx->group),
					 as_upload_group_done_cb, ctx);
}

static void
as_upload_maybe_reply(AsUploadCtx *ctx)
{
	if (!ctx->body_done || ctx->pending->len > 0)
		return;
	if (!ctx->replied) {
		if (g_error_matches(ctx->error, AS_ERROR, AS_ERROR_INCOMPLETE)) {
			/* a truncated body is the sender's fault, not a conflict to resolve */
			as_http_reply_error(ctx->msg, SOUP_STATUS_BAD_REQUEST, ctx->error->message);
		} else if (ctx->error != NULL) {
			as_http_reply_gerror(ctx->msg, ctx->error);
		} else if (ctx->batch) {
			g_autoptr(JsonObject) obj = json_object_new();
			g_autoptr(JsonArray) errors = json_array_new();
			for (guint i = 0; i < json_array_get_length(ctx->results); i++) {
				JsonObject *r = json_array_get_object_element(ctx->results, i);
				if (!json_object_get_boolean_member(r, "ok")) {
					g_autofree gchar *line = g_strdup_printf(
						"%s: %s", json_object_get_string_member(r, "name"),
						json_object_get_string_member(r, "error"));
					json_array_add_string_element(errors, line);
				}
			}
			json_object_set_int_member(obj, "saved", ctx->saved);
			json_object_set_array_member(obj, "errors", g_steal_pointer(&errors));
			json_object_set_array_member(obj, "files", json_array_ref(ctx->results));
			as_http_reply_json(ctx->msg, SOUP_STATUS_OK, obj);
		} else {
			as_http_reply_error(ctx->msg, SOUP_STATUS_BAD_REQUEST,
					    "no multipart part named 'file'");
		}
		ctx->replied = TRUE;
	}
	if (ctx->paused_for_reply) {
		ctx->paused_for_reply = FALSE;
		soup_server_message_unpause(ctx->msg);
	}
}

static gboolean
as_upload_part_begin_cb(gpointer user_data,
			const gchar *name,
			const gchar *filename,
			const gchar *content_type,
			GError **error)
{
	AsUploadCtx *ctx = user_data;
	g_autoptr(GError) error_local = NULL;
	g_autofree gchar *rel = NULL;

	g_autofree gchar *part_sha256 = g_steal_pointer(&ctx->part_sha256);
	gboolean part_sha256_bad = ctx->part_sha256_bad;

	ctx->part_sha256_bad = FALSE;
	ctx->skipping_part = TRUE;
	if (ctx->batch) {
		/* 0.x: the field name is the relative path; a bad one fails that file only */
		rel = as_path_sanitize(name, &error_local);
		if (rel == NULL || part_sha256_bad) {
			if (error_local == NULL)
				g_set_error_literal(&error_local, AS_ERROR,
						    AS_ERROR_INVALID_ARGUMENT,
						    "X-File-Hash must be 64 hex digits of SHA-256");
			as_engine_record_failure(ctx->engine, "http-batch", name,
						 as_http_peer(ctx->msg), error_local->message);
			as_upload_batch_result(ctx, name != NULL ? name : "", NULL, error_local);
			return TRUE;
		}
	} else {
		if (g_strcmp0(name, "file") != 0 || ctx->file_part_seen)
			return TRUE;
		ctx->file_part_seen = TRUE;
		if (ctx->path_tail != NULL) {
			rel = g_strdup(ctx->path_tail);
		} else {
			g_autofree gchar *base = as_path_basename_only(filename);
			if (base == NULL) {
				g_set_error_literal(
					error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
					"no file name: give it in the URL (/upload/NAME) or "
					"as the part's filename");
				return FALSE;
			}
			rel = as_path_sanitize(base, error);
			if (rel == NULL)
				return FALSE;
		}
	}
	{
		/* a name from the URL was routed when the request began */
		g_autofree gchar *routed = !ctx->batch && ctx->path_tail != NULL
						   ? g_strdup(rel)
						   : as_upload_route(ctx->engine, ctx->msg, rel);
		ctx->current = as_upload_file_new(
			ctx, routed, part_sha256 != NULL ? part_sha256 : ctx->expected_sha256,
			error);
	}
	if (ctx->current == NULL)
		return FALSE;
	ctx->skipping_part = FALSE;
	return TRUE;
}

static gboolean
as_upload_part_data_cb(gpointer user_data, const guint8 *data, gsize len, GError **error)
{
	AsUploadCtx *ctx = user_data;
	g_autoptr(GError) error_local = NULL;

	if (ctx->skipping_part || ctx->current == NULL)
		return TRUE;
	if (as_upload_file_write(ctx, ctx->current, data, len, &error_local))
		return TRUE;
	if (!ctx->batch) {
		g_propagate_error(error, g_steal_pointer(&error_local));
		return FALSE;
	}
	/* in a batch one bad file fails alone; the rest of its part is skipped */
	as_engine_receive_failed(ctx->engine, ctx->current->transfer, error_local->message);
	as_upload_batch_result(ctx, ctx->current->rel_path, NULL, error_local);
	g_clear_pointer(&ctx->current, as_upload_file_free);
	ctx->skipping_part = TRUE;
	as_upload_maybe_unpause(ctx);
	return TRUE;
}

static gboolean
as_upload_part_end_cb(gpointer user_data, GError **error)
{
	AsUploadCtx *ctx = user_data;
	if (ctx->current != NULL)
		as_upload_file_end(ctx);
	ctx->skipping_part = FALSE;
	return TRUE;
}

/* a part may carry its own X-File-Hash: batch files are verified one by one */
static gboolean
as_upload_part_header_cb(gpointer user_data, const gchar *name, const gchar *value, GError **error)
{
	AsUploadCtx *ctx = user_data;
	if (g_ascii_strcasecmp(name, "X-File-Hash") != 0)
		return TRUE;
	g_clear_pointer(&ctx->part_sha256, g_free);
	if (!as_sha256_hex_is_valid(value)) {
		ctx->part_sha256_bad = TRUE;
		if (!ctx->batch) {
			g_set_error_literal(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
					    "X-File-Hash must be 64 hex digits of SHA-256");
			return FALSE;
		}
		return TRUE;
	}
	ctx->part_sha256 = g_strdup(value);
	return TRUE;
}

static const AsMultipartCallbacks as_upload_multipart_callbacks = {
	.part_begin = as_upload_part_begin_cb,
	.part_data = as_upload_part_data_cb,
	.part_end = as_upload_part_end_cb,
	.part_header = as_upload_part_header_cb,
};

static void
as_upload_got_chunk_cb(SoupServerMessage *msg, GBytes *chunk, gpointer user_data)
{
	AsUploadCtx *ctx = user_data;
	gsize len = 0;
	const guint8 *data = g_bytes_get_data(chunk, &len);
	g_autoptr(GError) error = NULL;

	if (ctx->error != NULL)
		return;
	if (ctx->parser != NULL) {
		if (!as_multipart_parser_feed(ctx->parser, data, len, &error))
			as_upload_ctx_fail(ctx, g_steal_pointer(&error));
	} else if (ctx->current != NULL) {
		if (!as_upload_file_write(ctx, ctx->current, data, len, &error))
			as_upload_ctx_fail(ctx, g_steal_pointer(&error));
	}
	if (ctx->error != NULL && ctx->current != NULL) {
		/* keep draining the body but drop the file now, so the disk is freed at once */
		as_engine_receive_failed(ctx->engine, ctx->current->transfer, ctx->error->message);
		g_clear_pointer(&ctx->current, as_upload_file_free);
		if (ctx->paused_by_writer) {
			ctx->paused_by_writer = FALSE;
			soup_server_message_unpause(msg);
		}
	}
}

/* the files verified so far are still published; the reply has nowhere to go */
static void
as_upload_disconnected_cb(SoupServerMessage *msg, gpointer user_data)
{
	AsUploadCtx *ctx = user_data;
	ctx->disconnected = TRUE;
	as_upload_maybe_commit(ctx);
}

static AsUploadCtx *
as_upload_ctx_new(AsEngine *engine, SoupServerMessage *msg, gboolean batch)
{
	AsUploadCtx *ctx = g_new0(AsUploadCtx, 1);
	ctx->engine = g_object_ref(engine);
	ctx->msg = msg;
	ctx->batch = batch;
	ctx->pending = g_ptr_array_new_with_free_func((GDestroyNotify)as_upload_file_free);
	ctx->results = json_array_new();
	g_object_set_data_full(G_OBJECT(msg), AS_HTTP_UPLOAD_KEY, ctx,
			       (GDestroyNotify)as_upload_ctx_free);
	soup_message_body_set_accumulate(soup_server_message_get_request_body(msg), FALSE);
	g_signal_connect(msg, "got-chunk", G_CALLBACK(as_upload_got_chunk_cb), ctx);
	g_signal_connect(msg, "disconnected", G_CALLBACK(as_upload_disconnected_cb), ctx);
	return ctx;
}

static gboolean
as_upload_check_length(AsEngine *engine, SoupServerMessage *msg, GError **error)
{
	SoupMessageHeaders *hdrs = soup_server_message_get_request_headers(msg);
	AsConfig *config = as_engine_get_config(engine);

	if (soup_message_headers_get_encoding(hdrs) == SOUP_ENCODING_CONTENT_LENGTH &&
	    (guint64)soup_message_headers_get_content_length(hdrs) > config->max_size) {
		g_set_error(error, AS_ERROR, AS_ERROR_TOO_LARGE,
			    "the body of %" G_GINT64_FORMAT
			    " bytes exceeds the limit of %" G_GUINT64_FORMAT " bytes",
			    (gint64)soup_message_headers_get_content_length(hdrs),
			    config->max_size);
		return FALSE;
	}
	return TRUE;
}

static gboolean
as_upload_setup_multipart(AsUploadCtx *ctx, const gchar *content_type, GError **error)
{
	g_autofree gchar *boundary = as_multipart_boundary_from_content_type(content_type, error);
	if (boundary == NULL)
		return FALSE;
	ctx->parser = as_multipart_parser_new(boundary, &as_upload_multipart_callbacks, ctx);
	return TRUE;
}

static void
as_upload_refuse(AsEngine *engine, SoupServerMessage *msg, const gchar *name, const GError *error)
{
	as_engine_record_failure(engine, "http", name, as_http_peer(msg), error->message);
	as_http_reply_gerror(msg, error);
}

/* a large raw body goes through the pump: no libsoup body reads, one pass to disk */
typedef struct {
	AsEngine *engine;     /* owned */
	AsTransfer *transfer; /* owned ref */
	gchar *temp_name;     /* NULL once published */
	gchar *rel_path;
	gchar *expected_sha256;
	guint64 length;
} AsUploadPumpCtx;

static void
as_upload_pump_ctx_free(AsUploadPumpCtx *pctx)
{
	if (pctx->temp_name != NULL)
		as_chunk_store_remove_temp(as_engine_get_chunk_store(pctx->engine),
					   pctx->temp_name);
	g_free(pctx->temp_name);
	g_free(pctx->rel_path);
	g_free(pctx->expected_sha256);
	g_clear_object(&pctx->transfer);
	g_object_unref(pctx->engine);
	g_free(pctx);
}

static void
as_upload_pump_progress_cb(AsHttpPump *pump, guint64 bytes_done, gpointer user_data)
{
	AsUploadPumpCtx *pctx = user_data;
	as_engine_receive_progress(pctx->engine, pctx->transfer, bytes_done);
}

static void
as_upload_pump_done_cb(AsHttpPump *pump,
		       const gchar *sha256,
		       const GError *error,
		       gpointer user_data)
{
	AsUploadPumpCtx *pctx = user_data;
	g_autoptr(GError) error_local = NULL;
	g_autofree gchar *published = NULL;
	g_autoptr(JsonObject) obj = NULL;
	guint status = 0;

	if (error != NULL) {
		as_engine_receive_failed(pctx->engine, pctx->transfer, error->message);
		error_local = g_error_copy(error);
	} else {
		published = as_engine_receive_commit(pctx->engine, pctx->transfer, &pctx->temp_name,
						     pctx->rel_path, pctx->expected_sha256, sha256,
						     pctx->length, &error_local);
	}
	obj = as_upload_reply_json(pctx->transfer, published, pctx->length, pctx->expected_sha256,
				   sha256, error_local, &status);
	as_http_pump_reply_json(pump, status, obj);
	as_upload_pump_ctx_free(pctx);
}

static gboolean
as_upload_pump_start(AsEngine *engine,
		     SoupServerMessage *msg,
		     const gchar *rel,
		     const gchar *hash,
		     guint64 length,
		     GError **error)
{
	AsUploadPumpCtx *pctx = g_new0(AsUploadPumpCtx, 1);
	int fd;

	pctx->engine = g_object_ref(engine);
	pctx->rel_path = g_strdup(rel);
	pctx->expected_sha256 = g_strdup(hash);
	pctx->length = length;
	fd = as_chunk_store_create_temp(as_engine_get_chunk_store(engine), &pctx->temp_name, error);
	if (fd < 0) {
		as_upload_pump_ctx_free(pctx);
		return FALSE;
	}
	pctx->transfer = g_object_ref(
		as_engine_receive_begin(engine, NULL, "http", rel, as_http_peer(msg), length));
	as_http_pump_start_full(msg, fd, 0, length,
				AS_HTTP_PUMP_FLAG_HASH | (length >= AS_WRITE_BEHIND_MIN_BYTES
								  ? AS_HTTP_PUMP_FLAG_WRITE_BEHIND
								  : AS_HTTP_PUMP_FLAG_NONE),
				as_upload_pump_progress_cb, as_upload_pump_done_cb, pctx);
	close(fd);
	return TRUE;
}

void
as_http_upload_single_begin(AsEngine *engine, SoupServerMessage *msg, const gchar *path_tail)
{
	SoupMessageHeaders *hdrs = soup_server_message_get_request_headers(msg);
	const gchar *content_type = soup_message_headers_get_content_type(hdrs, NULL);
	const gchar *hash = soup_message_headers_get_one(hdrs, "X-File-Hash");
	g_autoptr(GError) error = NULL;
	g_autofree gchar *rel = NULL;
	AsUploadCtx *ctx;

	if (hash != NULL && !as_sha256_hex_is_valid(hash)) {
		g_set_error_literal(&error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
				    "X-File-Hash must be 64 hex digits of SHA-256");
		as_upload_refuse(engine, msg, path_tail, error);
		return;
	}
	if (path_tail != NULL && *path_tail != '\0') {
		g_autofree gchar *decoded = g_uri_unescape_string(path_tail, NULL);
		if (decoded == NULL) {
			g_set_error_literal(
				&error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
				"the file name in the URL is not valid percent-encoding");
			as_upload_refuse(engine, msg, path_tail, error);
			return;
		}
		rel = as_path_sanitize(decoded, &error);
		if (rel == NULL) {
			as_upload_refuse(engine, msg, path_tail, error);
			return;
		}
	}
	if (!as_upload_check_length(engine, msg, &error)) {
		as_upload_refuse(engine, msg, rel, error);
		return;
	}
	/* the URL name is routed here; a multipart part's own name when it begins */
	if (rel != NULL) {
		gchar *routed = as_upload_route(engine, msg, rel);
		g_free(rel);
		rel = routed;
	}

	if (rel != NULL &&
	    (content_type == NULL ||
	     g_ascii_strcasecmp(content_type, "multipart/form-data") != 0) &&
	    soup_message_headers_get_encoding(hdrs) == SOUP_ENCODING_CONTENT_LENGTH &&
	    as_http_pump_can_take(msg, (guint64)soup_message_headers_get_content_length(hdrs))) {
		if (!as_upload_pump_start(engine, msg, rel, hash,
					  (guint64)soup_message_headers_get_content_length(hdrs),
					  &error))
			as_upload_refuse(engine, msg, rel, error);
		return;
	}

	ctx = as_upload_ctx_new(engine, msg, FALSE);
	ctx->path_tail = g_strdup(rel);
	ctx->expected_sha256 = g_strdup(hash);
	if (content_type != NULL && g_ascii_strcasecmp(content_type, "multipart/form-data") == 0) {
		const gchar *full = soup_message_headers_get_one(hdrs, "Content-Type");
		if (!as_upload_setup_multipart(ctx, full, &error))
			as_upload_ctx_fail(ctx, g_steal_pointer(&error));
		return;
	}
	/* a raw body (PUT or POST): the name must be in the URL */
	if (rel == NULL) {
		g_set_error_literal(&error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
				    "a raw upload needs the file name in the URL: /upload/NAME");
		as_upload_ctx_fail(ctx, g_steal_pointer(&error));
		return;
	}
	ctx->file_part_seen = TRUE;
	ctx->current = as_upload_file_new(ctx, rel, hash, &error);
	if (ctx->current == NULL)
		as_upload_ctx_fail(ctx, g_steal_pointer(&error));
}

void
as_http_upload_batch_begin(AsEngine *engine, SoupServerMessage *msg)
{
	SoupMessageHeaders *hdrs = soup_server_message_get_request_headers(msg);
	const gchar *content_type = soup_message_headers_get_one(hdrs, "Content-Type");
	g_autoptr(GError) error = NULL;
	AsUploadCtx *ctx;

	ctx = as_upload_ctx_new(engine, msg, TRUE);
	if (content_type == NULL || !as_upload_setup_multipart(ctx, content_type, &error)) {
		if (error == NULL)
			g_set_error_literal(&error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
					    "/upload/batch takes multipart/form-data");
		as_upload_ctx_fail(ctx, g_steal_pointer(&error));
	}
}

void
as_http_upload_finish(AsEngine *engine, SoupServerMessage *msg)
{
	AsUploadCtx *ctx = g_object_get_data(G_OBJECT(msg), AS_HTTP_UPLOAD_KEY);
	g_autoptr(GError) error = NULL;

	if (ctx == NULL) {
		as_http_reply_error(msg, SOUP_STATUS_INTERNAL_SERVER_ERROR, "upload state lost");
		return;
	}
	ctx->body_done = TRUE;
	if (ctx->error == NULL && ctx->parser != NULL &&
	    !as_multipart_parser_finish(ctx->parser, &error))
		as_upload_ctx_fail(ctx, g_steal_pointer(&error));
	if (ctx->error != NULL && ctx->current != NULL) {
		as_engine_receive_failed(ctx->engine, ctx->current->transfer, ctx->error->message);
		g_clear_pointer(&ctx->current, as_upload_file_free);
	}
	/* a raw body ends with the request */
	if (ctx->error == NULL && ctx->current != NULL)
		as_upload_file_end(ctx);
	as_upload_maybe_commit(ctx);
	if (ctx->pending->len > 0) {
		ctx->paused_for_reply = TRUE;
		soup_server_message_pause(msg);
		return;
	}
	as_upload_maybe_reply(ctx);
}
