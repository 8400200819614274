/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "AsEngine"

#include "config.h"

#include <gio/gio.h>
#include <glib/gstdio.h>

#include "as-audit.h"
#include "as-disk-usage.h"
#include "as-engine.h"
#include "as-error.h"
#include "as-history.h"
#include "as-publish-batch.h"
#include "as-publish.h"
#include "as-sha256.h"

struct _AsEngine {
	GObject parent_instance;
	AsConfig *config;	       /* not owned: outlives the engine */
	AsChunkStore *chunk_store;     /* owned */
	AsTokenStore *token_store;     /* owned */
	AsMetrics *metrics;	       /* owned */
	AsJsonlLog *history;	       /* owned */
	AsJsonlLog *audit;	       /* owned, path may be NULL */
	GHashTable *transfers;	       /* (element-type utf8 AsTransfer) owned */
	GHashTable *progress_stamp_us; /* AsTransfer* -> gint64 of the last progress notify */
	guint stall_check_id;
	AsRouter *router; /* owned */
	GStrv argv;	  /* the command line, re-parsed on reload */
	GStrv protocols;
	guint16 http_port;
	guint16 quic_port;
	guint16 https_port;	     /* 0 when HTTPS is off */
	AsTlsIdentity *tls_identity; /* owned, nullable: serves QUIC and HTTPS */
	gchar *cert_sha256;	     /* of the TLS identity, NULL without QUIC and HTTPS */
	guint64 received_files;
};

G_DEFINE_TYPE(AsEngine, as_engine, G_TYPE_OBJECT)

enum {
	SIGNAL_TRANSFER_ADDED,
	SIGNAL_TRANSFER_REMOVED,
	SIGNAL_TRANSFER_FINISHED,
	SIGNAL_EVENT,
	SIGNAL_RELOADED,
	SIGNAL_LAST
};
enum { PROP_0, PROP_ACTIVE_TRANSFERS, PROP_RECEIVED_FILES, PROP_HTTP_PORT, PROP_LAST };

static guint signals[SIGNAL_LAST];
static GParamSpec *props[PROP_LAST];

static void
as_engine_emit_event(AsEngine *self, JsonObject *event)
{
	g_autoptr(JsonNode) node = json_node_new(JSON_NODE_OBJECT);
	g_autofree gchar *text = NULL;

	json_node_set_object(node, event);
	text = json_to_string(node, FALSE);
	g_signal_emit(self, signals[SIGNAL_EVENT], 0, json_object_get_string_member(event, "event"),
		      text);
}

static void
as_engine_audit(AsEngine *self, JsonObject *entry)
{
	g_autoptr(GError) error_local = NULL;
	if (!as_jsonl_log_append(self->audit, entry, &error_local))
		g_warning("cannot write the audit log: %s", error_local->message);
}

/* the audit line of a transfer that ended without its file */
static void
as_engine_audit_failed(AsEngine *self, AsTransfer *transfer, const gchar *reason)
{
	g_autoptr(JsonObject) audit = as_audit_entry_new(
		AS_AUDIT_TRANSFER_FAILED, as_transfer_get_direction(transfer),
		as_transfer_get_protocol(transfer), as_transfer_get_filename(transfer),
		as_transfer_get_bytes_done(transfer), NULL, as_transfer_get_peer(transfer), reason);
	as_engine_audit(self, audit);
}

static void
as_engine_write_history(AsEngine *self, AsTransfer *transfer, gboolean success, guint64 size)
{
	g_autoptr(JsonObject) obj = NULL;
	g_autoptr(GError) error_local = NULL;
	gint64 duration_us = g_get_monotonic_time() - as_transfer_get_started_mono(transfer);
	AsHistoryRecord rec = {
		.id = as_transfer_get_id(transfer),
		.filename = as_transfer_get_filename(transfer),
		.saved_path = as_transfer_get_saved_path(transfer),
		.size = size,
		.sha256 = as_transfer_get_sha256(transfer),
		.remote_ip = as_transfer_get_peer(transfer),
		.protocol = as_transfer_get_protocol(transfer),
		.direction = as_transfer_get_direction(transfer),
		.completed_at_s = g_get_real_time() / G_USEC_PER_SEC,
		.duration_ms = (guint64)MAX(duration_us, 0) / 1000,
		.success = success,
		.error = success ? NULL : as_transfer_get_error(transfer),
	};
	obj = as_history_record_to_json(&rec);
	if (!as_jsonl_log_append(self->history, obj, &error_local))
		g_warning("cannot write the history: %s", error_local->message);
}

static void
as_engine_notify_counts(AsEngine *self)
{
	g_object_notify_by_pspec(G_OBJECT(self), props[PROP_ACTIVE_TRANSFERS]);
}

static gboolean
as_engine_linger_done_cb(gpointer user_data)
{
	g_autoptr(AsTransfer) transfer = AS_TRANSFER(user_data);
	AsEngine *self = g_object_get_data(G_OBJECT(transfer), "as-engine");

	/* a newer transfer with the same id (a re-sent task) may have replaced it */
	if (self != NULL &&
	    g_hash_table_lookup(self->transfers, as_transfer_get_id(transfer)) == transfer) {
		g_hash_table_steal(self->transfers, as_transfer_get_id(transfer));
		g_signal_emit(self, signals[SIGNAL_TRANSFER_REMOVED], 0, transfer);
		g_object_unref(transfer);
	}
	return G_SOURCE_REMOVE;
}

static void
as_engine_finish(AsEngine *self, AsTransfer *transfer)
{
	g_hash_table_remove(self->progress_stamp_us, transfer);
	g_signal_emit(self, signals[SIGNAL_TRANSFER_FINISHED], 0, transfer);
	as_engine_notify_counts(self);
	g_timeout_add_seconds_full(G_PRIORITY_LOW, AS_ENGINE_FINISHED_LINGER_S,
				   as_engine_linger_done_cb, g_object_ref(transfer), NULL);
}

AsTransfer *
as_engine_receive_begin(AsEngine *self,
			const gchar *id,
			const gchar *protocol,
			const gchar *filename,
			const gchar *peer,
			guint64 bytes_total)
{
	g_autofree gchar *id_random = NULL;
	g_autoptr(JsonObject) event = json_object_new();
	AsTransfer *old;
	AsTransfer *transfer;

	g_return_val_if_fail(AS_IS_ENGINE(self), NULL);

	if (id == NULL) {
		id_random = g_uuid_string_random();
		id = id_random;
	}
	/* a previous object with this id may still linger after it finished */
	old = g_hash_table_lookup(self->transfers, id);
	if (old != NULL) {
		g_hash_table_steal(self->transfers, id);
		g_signal_emit(self, signals[SIGNAL_TRANSFER_REMOVED], 0, old);
		g_object_unref(old);
	}
	transfer = as_transfer_new(id, "receive", protocol, filename, peer, bytes_total);
	g_object_set_data(G_OBJECT(transfer), "as-engine", self);
	g_hash_table_insert(self->transfers, g_strdup(id), transfer);
	g_signal_emit(self, signals[SIGNAL_TRANSFER_ADDED], 0, transfer);
	as_engine_notify_counts(self);

	json_object_set_string_member(event, "event", "transfer_started");
	json_object_set_string_member(event, "id", id);
	json_object_set_string_member(event, "filename", filename);
	json_object_set_int_member(event, "size", (gint64)bytes_total);
	json_object_set_string_member(event, "sender_ip", peer);
	json_object_set_string_member(event, "protocol", protocol);
	as_engine_emit_event(self, event);
	return transfer;
}

void
as_engine_receive_progress(AsEngine *self, AsTransfer *transfer, guint64 bytes_done)
{
	gint64 now = g_get_monotonic_time();
	gint64 last = GPOINTER_TO_SIZE(g_hash_table_lookup(self->progress_stamp_us, transfer));
	g_autoptr(JsonObject) event = NULL;

	guint64 total = as_transfer_get_bytes_total(transfer);

	/* the last byte of a known size always goes out; an unknown size (0) is throttled too */
	/* a stalled upload whose sender came back */
	if (as_transfer_get_state(transfer) == AS_TRANSFER_STATE_PAUSED) {
		as_transfer_set_state(transfer, AS_TRANSFER_STATE_RUNNING);
		as_engine_notify_counts(self);
	}
	if (now - last < AS_ENGINE_PROGRESS_INTERVAL_US && (total == 0 || bytes_done < total))
		return;
	g_hash_table_insert(self->progress_stamp_us, transfer, GSIZE_TO_POINTER(now));
	as_transfer_set_bytes_done(transfer, bytes_done);

	event = json_object_new();
	json_object_set_string_member(event, "event", "progress");
	json_object_set_string_member(event, "id", as_transfer_get_id(transfer));
	json_object_set_string_member(event, "filename", as_transfer_get_filename(transfer));
	json_object_set_int_member(event, "bytes", (gint64)bytes_done);
	json_object_set_int_member(event, "total", (gint64)as_transfer_get_bytes_total(transfer));
	as_engine_emit_event(self, event);
}

void
as_engine_receive_completed(AsEngine *self,
			    AsTransfer *transfer,
			    const gchar *saved_rel_path,
			    const gchar *sha256,
			    guint64 size)
{
	g_autofree gchar *saved_path = NULL;
	g_autoptr(JsonObject) event = json_object_new();
	g_autoptr(JsonObject) audit = NULL;

	g_return_if_fail(AS_IS_TRANSFER(transfer));
	if (as_transfer_state_is_final(as_transfer_get_state(transfer)))
		return;

	saved_path = g_build_filename(self->config->save_to, saved_rel_path, NULL);
	as_transfer_set_bytes_done(transfer, size);
	as_transfer_set_bytes_total(transfer, size);
	as_transfer_set_sha256(transfer, sha256);
	as_transfer_set_saved_path(transfer, saved_path);
	as_transfer_set_state(transfer, AS_TRANSFER_STATE_COMPLETED);
	self->received_files++;
	g_object_notify_by_pspec(G_OBJECT(self), props[PROP_RECEIVED_FILES]);
	as_metrics_file_received(self->metrics, size);
	/* chunked bytes were counted chunk by chunk as each was verified */
	if (g_strcmp0(as_transfer_get_protocol(transfer), "http-chunk") != 0)
		as_metrics_bytes_received(self->metrics, size);

	as_engine_write_history(self, transfer, TRUE, size);
	audit = as_audit_entry_new(AS_AUDIT_TRANSFER_COMPLETED, "receive",
				   as_transfer_get_protocol(transfer), saved_rel_path, size, sha256,
				   as_transfer_get_peer(transfer), NULL);
	as_engine_audit(self, audit);

	json_object_set_string_member(event, "event", "completed");
	json_object_set_string_member(event, "id", as_transfer_get_id(transfer));
	json_object_set_string_member(event, "filename", saved_rel_path);
	json_object_set_int_member(event, "size", (gint64)size);
	json_object_set_string_member(event, "sha256", sha256);
	json_object_set_string_member(event, "saved_path", saved_path);
	as_engine_emit_event(self, event);
	g_info("received %s (%" G_GUINT64_FORMAT " bytes) sha256=%s from %s", saved_rel_path, size,
	       sha256, as_transfer_get_peer(transfer));
	as_engine_finish(self, transfer);
}

/* the sender's hash, when it gave one, against what arrived; a mismatch fails the transfer */
static gboolean
as_engine_commit_check(AsEngine *self,
		       AsTransfer *transfer,
		       const gchar *expected_sha256,
		       const gchar *sha256,
		       GError **error)
{
	if (expected_sha256 != NULL && !as_sha256_hex_equal(sha256, expected_sha256)) {
		GError *error_local = g_error_new(AS_ERROR, AS_ERROR_HASH_MISMATCH,
						  "SHA-256 mismatch: expected %s, got %s",
						  expected_sha256, sha256);
		as_engine_receive_failed(self, transfer, error_local->message);
		g_propagate_error(error, error_local);
		return FALSE;
	}
	as_transfer_set_sha256(transfer, sha256);
	return TRUE;
}

/**
 * as_engine_receive_commit:
 * @transfer: the incoming transfer
 * @temp_name: (inout): the staging temp holding all the file's bytes; cleared on success
 *   (it no longer exists)
 * @rel_path: where the file goes, relative to the receive directory, routed
 * @expected_sha256: (nullable): the hash the sender announced
 * @sha256: the hash of what arrived
 * @size: bytes that arrived
 * @error: (nullable): optional return location for an error
 *
 * Checks the bytes against the hash the sender gave, publishes the temp under its final name
 * and tells everyone either way. Shared by every ingest path: HTTP bodies, the body pump and
 * QUIC streams.
 *
 * Returns: (transfer full) (nullable): the name the file was published under
 **/
gchar *
as_engine_receive_commit(AsEngine *self,
			 AsTransfer *transfer,
			 gchar **temp_name,
			 const gchar *rel_path,
			 const gchar *expected_sha256,
			 const gchar *sha256,
			 guint64 size,
			 GError **error)
{
	gchar *published;

	if (!as_engine_commit_check(self, transfer, expected_sha256, sha256, error))
		return NULL;
	published = as_publish_file(as_chunk_store_get_staging_fd(self->chunk_store), *temp_name,
				    as_chunk_store_get_root_fd(self->chunk_store), rel_path,
				    self->config->overwrite, error);
	if (published == NULL) {
		as_engine_receive_failed(self, transfer, (*error)->message);
		return NULL;
	}
	g_clear_pointer(temp_name, g_free);
	as_engine_receive_completed(self, transfer, published, sha256, size);
	return published;
}

typedef struct {
	AsTransfer *transfer; /* owned ref */
	gchar *temp_name;     /* owned; NULL once published */
	gchar *rel_path;
	gchar *sha256;
	guint64 size;
	gboolean overwrite;
	int staging_fd; /* the chunk store's, which outlives the engine's tasks */
	int root_fd;
} AsEngineCommit;

static void
as_engine_commit_free(AsEngineCommit *commit)
{
	g_clear_object(&commit->transfer);
	g_free(commit->temp_name);
	g_free(commit->rel_path);
	g_free(commit->sha256);
	g_free(commit);
}

static void
as_engine_commit_thread(GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
	AsEngineCommit *commit = task_data;
	GError *error = NULL;
	gchar *published = as_publish_file(commit->staging_fd, commit->temp_name, commit->root_fd,
					   commit->rel_path, commit->overwrite, &error);
	if (published == NULL) {
		g_task_return_error(task, error);
		return;
	}
	g_clear_pointer(&commit->temp_name, g_free);
	g_task_return_pointer(task, published, g_free);
}

/* back on the main context: the engine learns the outcome there, as for a sync commit */
static void
as_engine_commit_done_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	AsEngine *self = AS_ENGINE(source);
	g_autoptr(GTask) outer = G_TASK(user_data);
	AsEngineCommit *commit = g_task_get_task_data(G_TASK(res));
	GError *error = NULL;
	gchar *published = g_task_propagate_pointer(G_TASK(res), &error);

	if (published == NULL) {
		as_chunk_store_remove_temp(self->chunk_store, commit->temp_name);
		as_engine_receive_failed(self, commit->transfer, error->message);
		g_task_return_error(outer, error);
		return;
	}
	as_engine_receive_completed(self, commit->transfer, published, commit->sha256,
				    commit->size);
	g_task_return_pointer(outer, published, g_free);
}

/**
 * as_engine_receive_commit_async:
 * @temp_name: (inout): the staging temp; always taken (set to %NULL): it is published, or
 *   removed on failure
 * @callback: called on the thread-default main context once the engine knows the outcome
 *
 * as_engine_receive_commit() with the publication (rename and directory fsync) on a worker
 * thread, so many small files do not queue their fsyncs on the main loop and concurrent ones
 * share journal commits.
 **/
void
as_engine_receive_commit_async(AsEngine *self,
			       AsTransfer *transfer,
			       gchar **temp_name,
			       const gchar *rel_path,
			       const gchar *expected_sha256,
			       const gchar *sha256,
			       guint64 size,
			       GAsyncReadyCallback callback,
			       gpointer user_data)
{
	GTask *outer = g_task_new(self, NULL, callback, user_data);
	g_autoptr(GTask) inner = NULL;
	GError *error = NULL;
	AsEngineCommit *commit;

	if (!as_engine_commit_check(self, transfer, expected_sha256, sha256, &error)) {
		as_chunk_store_remove_temp(self->chunk_store, *temp_name);
		g_clear_pointer(temp_name, g_free);
		g_task_return_error(outer, error);
		g_object_unref(outer);
		return;
	}
	commit = g_new0(AsEngineCommit, 1);
	commit->transfer = g_object_ref(transfer);
	commit->temp_name = g_steal_pointer(temp_name);
	commit->rel_path = g_strdup(rel_path);
	commit->sha256 = g_strdup(sha256);
	commit->size = size;
	commit->overwrite = self->config->overwrite;
	commit->staging_fd = as_chunk_store_get_staging_fd(self->chunk_store);
	commit->root_fd = as_chunk_store_get_root_fd(self->chunk_store);
	inner = g_task_new(self, NULL, as_engine_commit_done_cb, outer);
	g_task_set_task_data(inner, commit, (GDestroyNotify)as_engine_commit_free);
	g_task_run_in_thread(inner, as_engine_commit_thread);
}

/**
 * as_engine_receive_commit_finish:
 *
 * Returns: (transfer full) (nullable): the name the file was published under
 **/
gchar *
as_engine_receive_commit_finish(AsEngine *self, GAsyncResult *res, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(res, self), NULL);
	return g_task_propagate_pointer(G_TASK(res), error);
}

/* -------- many verified files published together (/upload/batch) -------- */

typedef struct {
	AsTransfer *transfer; /* owned ref */
	gchar *temp_name;     /* owned; NULL once published */
	gchar *sha256;
	guint64 size;
	gpointer user_data;
} AsEngineCommitItem;

struct _AsEngineCommitBatch {
	AsEngine *engine;	   /* owned ref */
	AsChunkStore *chunk_store; /* owned ref: its staging and root fds outlive the run */
	GArray *items;		   /* (element-type AsEngineCommitItem) */
	AsPublishBatch *publish;   /* owned */
};

static void
as_engine_commit_item_clear(AsEngineCommitItem *item)
{
	g_clear_object(&item->transfer);
	g_free(item->temp_name);
	g_free(item->sha256);
}

/**
 * as_engine_commit_batch_new:
 *
 * Starts a group of verified staged files to publish together, durably, with one data sync
 * and one sync per directory (see as-publish-batch.c) instead of one per file.
 *
 * Returns: (transfer full): an empty batch
 **/
AsEngineCommitBatch *
as_engine_commit_batch_new(AsEngine *self)
{
	AsEngineCommitBatch *batch = g_new0(AsEngineCommitBatch, 1);

	batch->engine = g_object_ref(self);
	batch->chunk_store = g_object_ref(self->chunk_store);
	batch->items = g_array_new(FALSE, TRUE, sizeof(AsEngineCommitItem));
	g_array_set_clear_func(batch->items, (GDestroyNotify)as_engine_commit_item_clear);
	batch->publish = as_publish_batch_new(as_chunk_store_get_staging_fd(self->chunk_store),
					      as_chunk_store_get_root_fd(self->chunk_store),
					      self->config->overwrite);
	return batch;
}

/**
 * as_engine_commit_batch_add:
 * @temp_name: (inout): the staging temp holding all the file's bytes; always taken (set to
 *   %NULL): it is published or removed
 * @user_data: the caller's, given back by as_engine_commit_batch_get_user_data()
 *
 * Checks the file against the hash the sender gave, as as_engine_receive_commit() does; a
 * file that passes waits in @batch to be published by as_engine_commit_batch_run_async().
 *
 * Returns: %TRUE if the file joined the batch; on a mismatch the transfer has failed
 **/
gboolean
as_engine_commit_batch_add(AsEngineCommitBatch *batch,
			   AsTransfer *transfer,
			   gchar **temp_name,
			   const gchar *rel_path,
			   const gchar *expected_sha256,
			   const gchar *sha256,
			   guint64 size,
			   gpointer user_data,
			   GError **error)
{
	AsEngineCommitItem item = {0};

	g_return_val_if_fail(batch != NULL, FALSE);
	g_return_val_if_fail(temp_name != NULL && *temp_name != NULL, FALSE);

	if (!as_engine_commit_check(batch->engine, transfer, expected_sha256, sha256, error)) {
		as_chunk_store_remove_temp(batch->chunk_store, *temp_name);
		g_clear_pointer(temp_name, g_free);
		return FALSE;
	}
	item.transfer = g_object_ref(transfer);
	item.temp_name = g_steal_pointer(temp_name);
	item.sha256 = g_strdup(sha256);
	item.size = size;
	item.user_data = user_data;
	as_publish_batch_add(batch->publish, item.temp_name, rel_path);
	g_array_append_val(batch->items, item);
	return TRUE;
}

guint
as_engine_commit_batch_get_length(AsEngineCommitBatch *batch)
{
	g_return_val_if_fail(batch != NULL, 0);
	return batch->items->len;
}

gpointer
as_engine_commit_batch_get_user_data(AsEngineCommitBatch *batch, guint index)
{
	g_return_val_if_fail(batch != NULL && index < batch->items->len, NULL);
	return g_array_index(batch->items, AsEngineCommitItem, index).user_data;
}

/* once run: the name file @index was published under, or NULL */
const gchar *
as_engine_commit_batch_get_published(AsEngineCommitBatch *batch, guint index)
{
	g_return_val_if_fail(batch != NULL && index < batch->items->len, NULL);
	return as_publish_batch_get_published(batch->publish, index);
}

/* once run: why file @index was not published, or NULL */
const GError *
as_engine_commit_batch_get_error(AsEngineCommitBatch *batch, guint index)
{
	g_return_val_if_fail(batch != NULL && index < batch->items->len, NULL);
	return as_publish_batch_get_error(batch->publish, index);
}

static void
as_engine_commit_batch_thread(GTask *task,
			      gpointer source_object,
			      gpointer task_data,
			      GCancellable *cancellable)
{
	AsEngineCommitBatch *batch = task_data;
	as_publish_batch_run(batch->publish);
	g_task_return_boolean(task, TRUE);
}

/* back on the main context: the engine learns each outcome, as for a single commit */
static void
as_engine_commit_batch_done_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	AsEngine *self = AS_ENGINE(source);
	g_autoptr(GTask) outer = G_TASK(user_data);
	AsEngineCommitBatch *batch = g_task_get_task_data(G_TASK(res));

	for (guint i = 0; i < batch->items->len; i++) {
		AsEngineCommitItem *item = &g_array_index(batch->items, AsEngineCommitItem, i);
		const gchar *published = as_publish_batch_get_published(batch->publish, i);
		const GError *error = as_publish_batch_get_error(batch->publish, i);

		if (published == NULL) {
			as_chunk_store_remove_temp(self->chunk_store, item->temp_name);
			g_clear_pointer(&item->temp_name, g_free);
			as_engine_receive_failed(self, item->transfer,
						 error != NULL ? error->message
							       : "failed to publish");
			continue;
		}
		g_clear_pointer(&item->temp_name, g_free);
		as_engine_receive_completed(self, item->transfer, published, item->sha256,
					    item->size);
	}
	g_task_return_pointer(outer, batch, (GDestroyNotify)as_engine_commit_batch_free);
}

/**
 * as_engine_commit_batch_run_async:
 * @batch: (transfer full): the files to publish
 *
 * Publishes the files of @batch on a worker thread, then tells the engine each outcome and
 * calls @callback on the thread-default main context. Get @batch back, with the outcomes,
 * from as_engine_commit_batch_run_finish().
 **/
void
as_engine_commit_batch_run_async(AsEngine *self,
				 AsEngineCommitBatch *batch,
				 GAsyncReadyCallback callback,
				 gpointer user_data)
{
	GTask *outer = g_task_new(self, NULL, callback, user_data);
	g_autoptr(GTask) inner = g_task_new(self, NULL, as_engine_commit_batch_done_cb, outer);

	/* the inner task lends the batch to the thread; the outer one returns it */
	g_task_set_task_data(inner, batch, NULL);
	g_task_run_in_thread(inner, as_engine_commit_batch_thread);
}

/**
 * as_engine_commit_batch_run_finish:
 *
 * Returns: (transfer full): the batch, with each file's outcome
 **/
AsEngineCommitBatch *
as_engine_commit_batch_run_finish(AsEngine *self, GAsyncResult *res)
{
	g_return_val_if_fail(g_task_is_valid(res, self), NULL);
	return g_task_propagate_pointer(G_TASK(res), NULL);
}

void
as_engine_commit_batch_free(AsEngineCommitBatch *batch)
{
	if (batch == NULL)
		return;
	/* files never published (a batch dropped without running) are not left behind */
	for (guint i = 0; i < batch->items->len; i++) {
		AsEngineCommitItem *item = &g_array_index(batch->items, AsEngineCommitItem, i);
		if (item->temp_name != NULL &&
		    as_publish_batch_get_published(batch->publish, i) == NULL)
			as_chunk_store_remove_temp(batch->chunk_store, item->temp_name);
	}
	g_array_unref(batch->items);
	as_publish_batch_free(batch->publish);
	g_object_unref(batch->chunk_store);
	g_object_unref(batch->engine);
	g_free(batch);
}

void
as_engine_receive_failed(AsEngine *self, AsTransfer *transfer, const gchar *reason)
{
	g_autoptr(JsonObject) event = json_object_new();

	g_return_if_fail(AS_IS_TRANSFER(transfer));
	if (as_transfer_state_is_final(as_transfer_get_state(transfer)))
		return;

	as_transfer_set_error(transfer, reason);
	as_transfer_set_state(transfer, AS_TRANSFER_STATE_FAILED);
	as_metrics_upload_error(self->metrics);
	as_engine_write_history(self, transfer, FALSE, as_transfer_get_bytes_done(transfer));
	as_engine_audit_failed(self, transfer, reason);

	json_object_set_string_member(event, "event", "failed");
	json_object_set_string_member(event, "id", as_transfer_get_id(transfer));
	json_object_set_string_member(event, "filename", as_transfer_get_filename(transfer));
	json_object_set_string_member(event, "reason", reason);
	as_engine_emit_event(self, event);
	g_message("receiving %s from %s failed: %s", as_transfer_get_filename(transfer),
		  as_transfer_get_peer(transfer), reason);
	as_engine_finish(self, transfer);
}

/* a request refused before any transfer existed (bad name, too large, bad hash format) */
void
as_engine_record_failure(AsEngine *self,
			 const gchar *protocol,
			 const gchar *filename,
			 const gchar *peer,
			 const gchar *reason)
{
	g_autoptr(JsonObject) audit = NULL;
	g_autoptr(JsonObject) event = json_object_new();

	as_metrics_upload_error(self->metrics);
	audit = as_audit_entry_new(AS_AUDIT_TRANSFER_FAILED, "receive", protocol, filename, 0, NULL,
				   peer, reason);
	as_engine_audit(self, audit);
	json_object_set_string_member(event, "event", "failed");
	json_object_set_string_member(event, "filename", filename != NULL ? filename : "");
	json_object_set_string_member(event, "reason", reason);
	as_engine_emit_event(self, event);
}

/* -------- the send side: transfers started through Send() -------- */

/**
 * as_engine_send_begin:
 * @id: the transfer id
 * @destination: where it goes, as given to Send()
 * @peer: the receiver's `host:port`
 * @protocol: e.g. "http"
 * @filename: what the transfer is called until a file is under way
 *
 * Registers an outgoing transfer in state `queued`; it appears on the bus at once.
 *
 * Returns: (transfer none): the transfer, owned by the engine
 **/
AsTransfer *
as_engine_send_begin(AsEngine *self,
		     const gchar *id,
		     const gchar *destination,
		     const gchar *peer,
		     const gchar *protocol,
		     const gchar *filename)
{
	g_autoptr(JsonObject) event = json_object_new();
	AsTransfer *old;
	AsTransfer *transfer;

	g_return_val_if_fail(AS_IS_ENGINE(self), NULL);
	g_return_val_if_fail(id != NULL, NULL);

	old = g_hash_table_lookup(self->transfers, id);
	if (old != NULL) {
		g_hash_table_steal(self->transfers, id);
		g_signal_emit(self, signals[SIGNAL_TRANSFER_REMOVED], 0, old);
		g_object_unref(old);
	}
	transfer = as_transfer_new(id, "send", protocol, filename, peer, 0);
	as_transfer_set_state(transfer, AS_TRANSFER_STATE_QUEUED);
	as_transfer_set_destination(transfer, destination);
	as_transfer_set_files(transfer, 0);
	g_object_set_data(G_OBJECT(transfer), "as-engine", self);
	g_hash_table_insert(self->transfers, g_strdup(id), transfer);
	g_signal_emit(self, signals[SIGNAL_TRANSFER_ADDED], 0, transfer);
	as_engine_notify_counts(self);

	json_object_set_string_member(event, "event", "transfer_started");
	json_object_set_string_member(event, "id", id);
	json_object_set_string_member(event, "direction", "send");
	json_object_set_string_member(event, "filename", filename);
	json_object_set_string_member(event, "destination", destination);
	json_object_set_string_member(event, "protocol", protocol);
	as_engine_emit_event(self, event);
	return transfer;
}

/**
 * as_engine_send_progress:
 * @force: update even if the last update was less than %AS_ENGINE_PROGRESS_INTERVAL_US ago
 *
 * Moves BytesDone (and with it Rate and Eta), at most about ten times a second.
 **/
void
as_engine_send_progress(AsEngine *self, AsTransfer *transfer, guint64 bytes_done, gboolean force)
{
	gint64 now = g_get_monotonic_time();
	gint64 last = GPOINTER_TO_SIZE(g_hash_table_lookup(self->progress_stamp_us, transfer));
	g_autoptr(JsonObject) event = NULL;

	g_return_if_fail(AS_IS_TRANSFER(transfer));
	if (as_transfer_state_is_final(as_transfer_get_state(transfer)))
		return;
	if (!force && now - last < AS_ENGINE_PROGRESS_INTERVAL_US)
		return;
	g_hash_table_insert(self->progress_stamp_us, transfer, GSIZE_TO_POINTER(now));
	if (as_transfer_get_bytes_done(transfer) == bytes_done)
		return;
	as_transfer_set_bytes_done(transfer, bytes_done);

	event = json_object_new();
	json_object_set_string_member(event, "event", "progress");
	json_object_set_string_member(event, "id", as_transfer_get_id(transfer));
	json_object_set_string_member(event, "direction", "send");
	json_object_set_string_member(event, "filename", as_transfer_get_filename(transfer));
	json_object_set_int_member(event, "bytes", (gint64)bytes_done);
	json_object_set_int_member(event, "total", (gint64)as_transfer_get_bytes_total(transfer));
	as_engine_emit_event(self, event);
}

/**
 * as_engine_send_file_done:
 * @result: how one file of the transfer ended
 *
 * Writes the file's history line (0.x shape, direction "send") and audit entry, counts it in
 * the metrics and tells /ws subscribers with a `completed` or `failed` event.
 **/
void
as_engine_send_file_done(AsEngine *self, AsTransfer *transfer, const AsEngineSendResult *result)
{
	g_autoptr(JsonObject) history = NULL;
	g_autoptr(JsonObject) audit = NULL;
	g_autoptr(JsonObject) event = json_object_new();
	g_autoptr(GError) error_local = NULL;
	gboolean success = result->error == NULL;
	AsHistoryRecord rec = {
		.id = result->id,
		.filename = result->filename,
		.saved_path = result->saved_path,
		.size = result->size,
		.sha256 = result->sha256,
		.remote_ip = as_transfer_get_peer(transfer),
		.protocol = result->protocol,
		.direction = "send",
		.completed_at_s = g_get_real_time() / G_USEC_PER_SEC,
		.duration_ms = result->duration_ms,
		.success = success,
		.error = result->error,
	};

	g_return_if_fail(AS_IS_ENGINE(self));
	g_return_if_fail(AS_IS_TRANSFER(transfer));

	history = as_history_record_to_json(&rec);
	if (!as_jsonl_log_append(self->history, history, &error_local))
		g_warning("cannot write the history: %s", error_local->message);
	audit = as_audit_entry_new(success ? AS_AUDIT_TRANSFER_COMPLETED : AS_AUDIT_TRANSFER_FAILED,
				   "send", result->protocol, result->filename, result->size,
				   result->sha256, as_transfer_get_peer(transfer), result->error);
	as_engine_audit(self, audit);
	if (success)
		as_metrics_file_sent(self->metrics, result->protocol, result->size);
	else
		as_metrics_send_error(self->metrics);

	json_object_set_string_member(event, "event", success ? "completed" : "failed");
	json_object_set_string_member(event, "id", result->id);
	json_object_set_string_member(event, "transfer_id", as_transfer_get_id(transfer));
	json_object_set_string_member(event, "direction", "send");
	json_object_set_string_member(event, "filename", result->filename);
	json_object_set_int_member(event, "size", (gint64)result->size);
	json_object_set_string_member(event, "peer", as_transfer_get_peer(transfer));
	if (result->sha256 != NULL)
		json_object_set_string_member(event, "sha256", result->sha256);
	if (result->saved_path != NULL)
		json_object_set_string_member(event, "saved_path", result->saved_path);
	if (!success)
		json_object_set_string_member(event, "reason", result->error);
	as_engine_emit_event(self, event);
	if (success)
		g_info("sent %s (%" G_GUINT64_FORMAT " bytes) sha256=%s to %s", result->filename,
		       result->size, result->sha256 != NULL ? result->sha256 : "unverified",
		       as_transfer_get_peer(transfer));
	else
		g_message("sending %s to %s failed: %s", result->filename,
			  as_transfer_get_peer(transfer), result->error);
}

/* the transfer as one history line, for an end no file line tells of */
static void
as_engine_send_history_line(AsEngine *self, AsTransfer *transfer, const gchar *reason)
{
	g_autoptr(JsonObject) obj = NULL;
	g_autoptr(GError) error_local = NULL;
	gint64 duration_us = g_get_monotonic_time() - as_transfer_get_started_mono(transfer);
	AsHistoryRecord rec = {
		.id = as_transfer_get_id(transfer),
		.filename = as_transfer_get_filename(transfer),
		.size = as_transfer_get_bytes_done(transfer),
		.remote_ip = as_transfer_get_peer(transfer),
		.protocol = as_transfer_get_protocol(transfer),
		.direction = "send",
		.completed_at_s = g_get_real_time() / G_USEC_PER_SEC,
		.duration_ms = (guint64)MAX(duration_us, 0) / 1000,
		.success = FALSE,
		.error = reason,
	};

	obj = as_history_record_to_json(&rec);
	if (!as_jsonl_log_append(self->history, obj, &error_local))
		g_warning("cannot write the history: %s", error_local->message);
}

/**
 * as_engine_send_completed:
 *
 * Ends a send whose every file the receiver confirmed.
 **/
void
as_engine_send_completed(AsEngine *self, AsTransfer *transfer)
{
	g_return_if_fail(AS_IS_ENGINE(self));
	g_return_if_fail(AS_IS_TRANSFER(transfer));
	if (as_transfer_state_is_final(as_transfer_get_state(transfer)))
		return;

	as_transfer_set_bytes_done(transfer, as_transfer_get_bytes_total(transfer));
	as_transfer_set_state(transfer, AS_TRANSFER_STATE_COMPLETED);
	g_message("sent %u files (%" G_GUINT64_FORMAT " bytes) to %s",
		  as_transfer_get_files_done(transfer), as_transfer_get_bytes_total(transfer),
		  as_transfer_get_peer(transfer));
	as_engine_finish(self, transfer);
}

/**
 * as_engine_send_failed:
 * @reason: what went wrong, one line for people
 * @write_history: also write a history line for the transfer as a whole, when no file line
 *   tells of the failure (e.g. the receiver could not be reached)
 *
 * Ends a send in state `failed`.
 **/
void
as_engine_send_failed(AsEngine *self,
		      AsTransfer *transfer,
		      const gchar *reason,
		      gboolean write_history)
{
	g_autoptr(JsonObject) event = json_object_new();

	g_return_if_fail(AS_IS_ENGINE(self));
	g_return_if_fail(AS_IS_TRANSFER(transfer));
	if (as_transfer_state_is_final(as_transfer_get_state(transfer)))
		return;

	as_transfer_set_error(transfer, reason);
	as_transfer_set_state(transfer, AS_TRANSFER_STATE_FAILED);
	if (write_history) {
		as_metrics_send_error(self->metrics);
		as_engine_send_history_line(self, transfer, reason);
	}
	as_engine_audit_failed(self, transfer, reason);
	json_object_set_string_member(event, "event", "failed");
	json_object_set_string_member(event, "id", as_transfer_get_id(transfer));
	json_object_set_string_member(event, "direction", "send");
	json_object_set_string_member(event, "filename", as_transfer_get_filename(transfer));
	json_object_set_string_member(event, "reason", reason);
	as_engine_emit_event(self, event);
	g_message("sending to %s failed: %s", as_transfer_get_peer(transfer), reason);
	as_engine_finish(self, transfer);
}

/**
 * as_engine_send_cancelled:
 *
 * Ends a send the user cancelled, with one history line and one audit entry saying so.
 **/
void
as_engine_send_cancelled(AsEngine *self, AsTransfer *transfer)
{
	const gchar *reason = "cancelled";

	g_return_if_fail(AS_IS_ENGINE(self));
	g_return_if_fail(AS_IS_TRANSFER(transfer));
	if (as_transfer_state_is_final(as_transfer_get_state(transfer)))
		return;

	as_transfer_set_state(transfer, AS_TRANSFER_STATE_CANCELLED);
	as_engine_send_history_line(self, transfer, reason);
	as_engine_audit_failed(self, transfer, reason);
	g_message("sending to %s cancelled", as_transfer_get_peer(transfer));
	as_engine_finish(self, transfer);
}

gboolean
as_engine_check_token(AsEngine *self,
		      const gchar *token,
		      const gchar *peer,
		      const gchar *protocol,
		      GError **error)
{
	g_autoptr(GError) error_local = NULL;
	g_autoptr(JsonObject) audit = NULL;

	if (!self->config->auth)
		return TRUE;
	if (as_token_store_check(self->token_store, token, g_get_real_time() / G_USEC_PER_SEC,
				 &error_local))
		return TRUE;

	as_metrics_auth_failure(self->metrics);
	audit = as_audit_entry_new(AS_AUDIT_AUTH_FAILED, "receive", protocol, NULL, 0, NULL, peer,
				   error_local->message);
	as_engine_audit(self, audit);
	g_message("refused %s request from %s: %s", protocol, peer, error_local->message);
	g_propagate_error(error, g_steal_pointer(&error_local));
	return FALSE;
}

AsTransfer *
as_engine_lookup_transfer(AsEngine *self, const gchar *id)
{
	return g_hash_table_lookup(self->transfers, id);
}

GPtrArray *
as_engine_get_transfers(AsEngine *self)
{
	GPtrArray *array = g_ptr_array_new_with_free_func(g_object_unref);
	GHashTableIter iter;
	gpointer value;

	g_hash_table_iter_init(&iter, self->transfers);
	while (g_hash_table_iter_next(&iter, NULL, &value))
		g_ptr_array_add(array, g_object_ref(value));
	return array;
}

guint
as_engine_get_active_transfers(AsEngine *self)
{
	GHashTableIter iter;
	gpointer value;
	guint count = 0;

	g_hash_table_iter_init(&iter, self->transfers);
	while (g_hash_table_iter_next(&iter, NULL, &value)) {
		AsTransferState state = as_transfer_get_state(AS_TRANSFER(value));
		if (!as_transfer_state_is_final(state) && state != AS_TRANSFER_STATE_PAUSED)
			count++;
	}
	return count;
}

/* a chunked upload whose sender went away keeps its staging for a resume, but it is not
 * an active transfer: show it as paused until data flows again */
static gboolean
as_engine_stall_check_cb(gpointer user_data)
{
	AsEngine *self = AS_ENGINE(user_data);
	gint64 now = g_get_monotonic_time();
	gboolean changed = FALSE;
	GHashTableIter iter;
	gpointer value;

	g_hash_table_iter_init(&iter, self->transfers);
	while (g_hash_table_iter_next(&iter, NULL, &value)) {
		AsTransfer *transfer = AS_TRANSFER(value);
		gint64 last =
			GPOINTER_TO_SIZE(g_hash_table_lookup(self->progress_stamp_us, transfer));

		if (g_strcmp0(as_transfer_get_direction(transfer), "receive") != 0 ||
		    as_transfer_get_state(transfer) != AS_TRANSFER_STATE_RUNNING)
			continue;
		if (last == 0)
			last = as_transfer_get_started_mono(transfer);
		if (now - last < (gint64)AS_ENGINE_STALL_S * G_USEC_PER_SEC)
			continue;
		as_transfer_set_state(transfer, AS_TRANSFER_STATE_PAUSED);
		changed = TRUE;
	}
	if (changed)
		as_engine_notify_counts(self);
	return G_SOURCE_CONTINUE;
}

guint64
as_engine_get_received_files(AsEngine *self)
{
	return self->received_files;
}

void
as_engine_set_protocols(AsEngine *self, const gchar *const *protocols)
{
	g_strfreev(self->protocols);
	self->protocols = g_strdupv((gchar **)protocols);
}

const gchar *const *
as_engine_get_protocols(AsEngine *self)
{
	return (const gchar *const *)self->protocols;
}

void
as_engine_set_http_port(AsEngine *self, guint16 port)
{
	self->http_port = port;
	g_object_notify_by_pspec(G_OBJECT(self), props[PROP_HTTP_PORT]);
}

guint16
as_engine_get_http_port(AsEngine *self)
{
	return self->http_port;
}

void
as_engine_set_quic(AsEngine *self, guint16 port, const gchar *cert_sha256)
{
	g_return_if_fail(AS_IS_ENGINE(self));
	self->quic_port = port;
	g_free(self->cert_sha256);
	self->cert_sha256 = g_strdup(cert_sha256);
}

guint16
as_engine_get_quic_port(AsEngine *self)
{
	g_return_val_if_fail(AS_IS_ENGINE(self), 0);
	return self->quic_port;
}

/**
 * as_engine_set_tls_identity:
 * @identity: the certificate QUIC and HTTPS present
 *
 * Its fingerprint is what /health, D-Bus and mDNS announce as `cert_sha256`.
 **/
void
as_engine_set_tls_identity(AsEngine *self, AsTlsIdentity *identity)
{
	g_return_if_fail(AS_IS_ENGINE(self));
	g_return_if_fail(AS_IS_TLS_IDENTITY(identity));
	g_set_object(&self->tls_identity, identity);
	g_free(self->cert_sha256);
	self->cert_sha256 = g_strdup(as_tls_identity_get_fingerprint(identity));
}

AsTlsIdentity *
as_engine_get_tls_identity(AsEngine *self)
{
	g_return_val_if_fail(AS_IS_ENGINE(self), NULL);
	return self->tls_identity;
}

void
as_engine_set_https_port(AsEngine *self, guint16 port)
{
	g_return_if_fail(AS_IS_ENGINE(self));
	self->https_port = port;
}

guint16
as_engine_get_https_port(AsEngine *self)
{
	g_return_val_if_fail(AS_IS_ENGINE(self), 0);
	return self->https_port;
}

const gchar *
as_engine_get_cert_sha256(AsEngine *self)
{
	g_return_val_if_fail(AS_IS_ENGINE(self), NULL);
	return self->cert_sha256;
}

/* the /health shape of 0.x, with real figures */
JsonObject *
as_engine_get_health(AsEngine *self)
{
	JsonObject *obj = json_object_new();
	g_autoptr(JsonArray) protocols = json_array_new();
	guint64 free_bytes = 0;
	guint64 total_bytes = 0;
	g_autoptr(GError) error_local = NULL;

	if (!as_disk_usage_get(self->config->save_to, &free_bytes, &total_bytes, &error_local))
		g_debug("disk usage: %s", error_local->message);
	for (guint i = 0; self->protocols != NULL && self->protocols[i] != NULL; i++)
		json_array_add_string_element(protocols, self->protocols[i]);

	json_object_set_string_member(obj, "status", "ok");
	json_object_set_int_member(obj, "received_files", (gint64)self->received_files);
	json_object_set_int_member(obj, "free_bytes", (gint64)free_bytes);
	json_object_set_int_member(obj, "total_bytes", (gint64)total_bytes);
	json_object_set_int_member(obj, "active_transfers", as_engine_get_active_transfers(self));
	json_object_set_int_member(obj, "queue_depth", 0);
	json_object_set_array_member(obj, "protocols", g_steal_pointer(&protocols));
	json_object_set_string_member(obj, "version", PACKAGE_VERSION);
	json_object_set_boolean_member(obj, "auth_required", self->config->auth);
	/* so a sender can go to QUIC and pin the certificate it is about to see */
	if (self->quic_port != 0)
		json_object_set_int_member(obj, "quic_port", self->quic_port);
	if (self->https_port != 0)
		json_object_set_int_member(obj, "https_port", self->https_port);
	if ((self->quic_port != 0 || self->https_port != 0) && self->cert_sha256 != NULL)
		json_object_set_string_member(obj, "cert_sha256", self->cert_sha256);
	return obj;
}

static gboolean
as_engine_history_received_ok_cb(JsonObject *obj, gpointer user_data)
{
	return g_strcmp0(json_object_get_string_member_with_default(obj, "direction", ""),
			 "receive") == 0 &&
	       json_object_get_boolean_member_with_default(obj, "success", FALSE);
}

/* the /status shape of 0.x, but bounded: the newest files from the history */
JsonObject *
as_engine_get_status(AsEngine *self)
{
	JsonObject *obj = json_object_new();
	g_autoptr(JsonArray) files = json_array_new();
	g_autoptr(GPtrArray) recent = NULL;
	g_autoptr(GError) error_local = NULL;
	guint64 total_size = 0;

	recent = as_jsonl_log_read_tail(self->history, AS_ENGINE_STATUS_MAX_FILES,
					as_engine_history_received_ok_cb, NULL, &error_local);
	if (recent == NULL) {
		g_debug("history: %s", error_local->message);
		recent = g_ptr_array_new();
	}
	for (guint i = 0; i < recent->len; i++) {
		JsonObject *h = g_ptr_array_index(recent, i);
		JsonObject *f = json_object_new();
		gint64 size = json_object_get_int_member_with_default(h, "size", 0);
		JsonNode *sha = json_object_get_member(h, "sha256");

		json_object_set_string_member(
			f, "id", json_object_get_string_member_with_default(h, "id", ""));
		json_object_set_string_member(
			f, "name", json_object_get_string_member_with_default(h, "filename", ""));
		json_object_set_int_member(f, "size", size);
		if (sha != NULL)
			json_object_set_member(f, "sha256", json_node_copy(sha));
		else
			json_object_set_null_member(f, "sha256");
		json_object_set_int_member(
			f, "received_at",
			json_object_get_int_member_with_default(h, "completed_at", 0));
		json_array_add_object_element(files, f);
		total_size += (guint64)size;
	}
	json_object_set_string_member(obj, "status", "running");
	json_object_set_int_member(obj, "total_files", (gint64)self->received_files);
	json_object_set_int_member(obj, "total_size", (gint64)total_size);
	json_object_set_int_member(obj, "active_transfers", as_engine_get_active_transfers(self));
	json_object_set_array_member(obj, "files", g_steal_pointer(&files));
	return obj;
}

AsConfig *
as_engine_get_config(AsEngine *self)
{
	return self->config;
}
AsChunkStore *
as_engine_get_chunk_store(AsEngine *self)
{
	return self->chunk_store;
}
AsTokenStore *
as_engine_get_token_store(AsEngine *self)
{
	return self->token_store;
}
AsMetrics *
as_engine_get_metrics(AsEngine *self)
{
	return self->metrics;
}
AsJsonlLog *
as_engine_get_history(AsEngine *self)
{
	return self->history;
}

static gboolean
as_engine_load_secret_file(const gchar *path, gchar **value, GError **error)
{
	g_autofree gchar *contents = NULL;
	GStatBuf st;

	if (g_stat(path, &st) == 0 && (st.st_mode & 0077) != 0)
		g_warning("%s is readable by other users; chmod 600 it", path);
	if (!g_file_get_contents(path, &contents, NULL, error)) {
		g_prefix_error(error, "cannot read %s: ", path);
		return FALSE;
	}
	g_strstrip(contents);
	if (*contents == '\0') {
		g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT, "%s is empty", path);
		return FALSE;
	}
	*value = g_steal_pointer(&contents);
	return TRUE;
}

/* the [route NAME] groups of the config file the daemon was started with */
static gboolean
as_engine_load_routes(AsRouter *router, const gchar *config_path, GError **error)
{
	g_autoptr(GKeyFile) kf = g_key_file_new();

	if (config_path == NULL)
		return TRUE;
	if (!g_key_file_load_from_file(kf, config_path, G_KEY_FILE_NONE, error)) {
		g_prefix_error(error, "cannot read config %s: ", config_path);
		return FALSE;
	}
	if (!as_router_load_key_file(router, kf, error)) {
		g_prefix_error(error, "config %s: ", config_path);
		return FALSE;
	}
	return TRUE;
}

/**
 * as_engine_route:
 * @rel_path: the sanitised name the sender asked for
 * @tag: (nullable): X-AeroSync-Tag
 * @peer: (nullable): the sender's address
 *
 * Returns: (transfer full): where the file goes below the receive directory
 **/
gchar *
as_engine_route(AsEngine *self, const gchar *rel_path, const gchar *tag, const gchar *peer)
{
	g_autofree gchar *rule = NULL;
	gchar *routed = as_router_route(self->router, rel_path, tag, peer, &rule);
	if (rule != NULL)
		g_debug("route %s: %s -> %s", rule, rel_path, routed);
	return routed;
}

void
as_engine_set_argv(AsEngine *self, const gchar *const *argv)
{
	g_strfreev(self->argv);
	self->argv = g_strdupv((gchar **)argv);
}

static void
as_engine_note_change(GPtrArray *list, const gchar *key, gboolean changed)
{
	if (changed)
		g_ptr_array_add(list, g_strdup(key));
}

/**
 * as_engine_reload:
 * @applied: (out) (optional): the settings that changed and took effect
 * @restart_needed: (out) (optional): the settings that changed but need a restart
 *
 * Re-reads the command line and the config file. Auth, tokens, routes, limits, the
 * overwrite policy and the log paths change at once for every ingress path; the listening
 * address and the receive directory are only reported. A config that does not parse is
 * refused as a whole and the one in force stays.
 **/
gboolean
as_engine_reload(AsEngine *self, GStrv *applied, GStrv *restart_needed, GError **error)
{
	AsConfig *cur = self->config;
	g_autoptr(AsConfig) next = as_config_new();
	g_autoptr(AsRouter) router = as_router_new();
	g_autoptr(GPtrArray) done = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GPtrArray) restart = g_ptr_array_new_with_free_func(g_free);
	g_autofree gchar *static_token = NULL;
	g_autofree gchar *legacy_secret = NULL;
	g_auto(GStrv) argv = g_strdupv(self->argv);
	gint argc = argv != NULL ? (gint)g_strv_length(argv) : 0;

	if (argv == NULL) {
		g_set_error_literal(error, AS_ERROR, AS_ERROR_NOT_SUPPORTED,
				    "this daemon was started without a command line to reload");
		return FALSE;
	}
	/* everything is parsed and read before anything changes */
	if (!as_config_parse_args(next, &argc, &argv, error) || !as_config_finalize(next, error))
		return FALSE;
	if (!as_engine_load_routes(router, next->config_path, error))
		return FALSE;
	if (next->auth_token_file != NULL &&
	    !as_engine_load_secret_file(next->auth_token_file, &static_token, error))
		return FALSE;
	if (next->legacy_secret_file != NULL &&
	    !as_engine_load_secret_file(next->legacy_secret_file, &legacy_secret, error))
		return FALSE;
	if (!as_token_store_load(self->token_store, error)) {
		g_prefix_error(error, "cannot reload tokens: ");
		return FALSE;
	}

	as_engine_note_change(done, "auth", cur->auth != next->auth);
	cur->auth = next->auth;
	as_engine_note_change(done, "max-size", cur->max_size != next->max_size);
	cur->max_size = next->max_size;
	as_chunk_store_set_max_file_size(self->chunk_store, next->max_size);
	as_engine_note_change(done, "overwrite", cur->overwrite != next->overwrite);
	cur->overwrite = next->overwrite;
	as_engine_note_change(done, "auth-token-file",
			      g_strcmp0(cur->auth_token_file, next->auth_token_file) != 0);
	as_token_store_clear_static_tokens(self->token_store);
	if (static_token != NULL)
		as_token_store_add_static_token(self->token_store, static_token);
	g_free(cur->auth_token_file);
	cur->auth_token_file = g_strdup(next->auth_token_file);
	as_engine_note_change(done, "legacy-secret-file",
			      g_strcmp0(cur->legacy_secret_file, next->legacy_secret_file) != 0);
	as_token_store_set_legacy_secret(self->token_store, legacy_secret);
	g_free(cur->legacy_secret_file);
	cur->legacy_secret_file = g_strdup(next->legacy_secret_file);
	if (g_strcmp0(cur->audit_log, next->audit_log) != 0) {
		if (!as_jsonl_log_set_path(self->audit, next->audit_log, error)) {
			g_prefix_error(error, "audit-log: ");
			return FALSE;
		}
		g_free(cur->audit_log);
		cur->audit_log = g_strdup(next->audit_log);
		g_ptr_array_add(done, g_strdup("audit-log"));
	}
	if (g_strcmp0(cur->history_log, next->history_log) != 0) {
		if (!as_jsonl_log_set_path(self->history, next->history_log, error)) {
			g_prefix_error(error, "history-log: ");
			return FALSE;
		}
		g_free(cur->history_log);
		cur->history_log = g_strdup(next->history_log);
		g_ptr_array_add(done, g_strdup("history-log"));
	}
	as_engine_note_change(done, "routes", TRUE);
	g_set_object(&self->router, router);
	cur->verbose = next->verbose;

	as_engine_note_change(restart, "bind", g_strcmp0(cur->bind, next->bind) != 0);
	as_engine_note_change(restart, "port",
			      next->port != cur->port && !(cur->port == 0 && next->port == 0));
	as_engine_note_change(restart, "quic", next->quic != cur->quic);
	as_engine_note_change(restart, "quic-port",
			      next->quic_port != cur->quic_port &&
				      !(cur->quic_port == 0 && next->quic_port == 0));
	as_engine_note_change(restart, "https", next->https != cur->https);
	as_engine_note_change(restart, "https-port",
			      next->https_port != cur->https_port &&
				      !(cur->https_port == 0 && next->https_port == 0));
	as_engine_note_change(restart, "tls-cert", g_strcmp0(cur->tls_cert, next->tls_cert) != 0);
	as_engine_note_change(restart, "tls-key", g_strcmp0(cur->tls_key, next->tls_key) != 0);
	as_engine_note_change(restart, "save-to", g_strcmp0(cur->save_to, next->save_to) != 0);
	as_engine_note_change(restart, "token-backend",
			      g_strcmp0(cur->token_backend, next->token_backend) != 0);
	for (guint i = 0; i < restart->len; i++)
		g_warning("reload: '%s' changed but needs a restart to take effect",
			  (const gchar *)g_ptr_array_index(restart, i));
	g_message("configuration reloaded (%u routes)", as_router_get_count(self->router));
	g_signal_emit(self, signals[SIGNAL_RELOADED], 0);

	if (applied != NULL) {
		g_ptr_array_add(done, NULL);
		*applied = (GStrv)g_ptr_array_steal(done, NULL);
	}
	if (restart_needed != NULL) {
		g_ptr_array_add(restart, NULL);
		*restart_needed = (GStrv)g_ptr_array_steal(restart, NULL);
	}
	return TRUE;
}

AsEngine *
as_engine_new(AsConfig *config, GError **error)
{
	g_autoptr(AsEngine) self = g_object_new(AS_TYPE_ENGINE, NULL);
	const gchar *protocols[] = {"http", NULL};

	self->config = config;
	self->chunk_store = as_chunk_store_new(config->save_to, config->max_size, error);
	if (self->chunk_store == NULL) {
		g_prefix_error(error, "cannot use the receive directory %s: ", config->save_to);
		return NULL;
	}
	self->token_store =
		as_token_store_new_auto(config->config_dir, config->token_backend, error);
	if (self->token_store == NULL) {
		g_prefix_error(error, "cannot open the token store: ");
		return NULL;
	}
	if (config->auth_token_file != NULL) {
		g_autofree gchar *token = NULL;
		if (!as_engine_load_secret_file(config->auth_token_file, &token, error))
			return NULL;
		as_token_store_add_static_token(self->token_store, token);
	}
	if (config->legacy_secret_file != NULL) {
		g_autofree gchar *secret = NULL;
		if (!as_engine_load_secret_file(config->legacy_secret_file, &secret, error))
			return NULL;
		as_token_store_set_legacy_secret(self->token_store, secret);
	}
	if (!as_engine_load_routes(self->router, config->config_path, error))
		return NULL;
	self->history = as_jsonl_log_new(config->history_log);
	self->audit = as_jsonl_log_new(config->audit_log);
	as_engine_set_protocols(self, protocols);
	return g_steal_pointer(&self);
}

static void
as_engine_get_property(GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
	AsEngine *self = AS_ENGINE(object);
	switch (prop_id) {
	case PROP_ACTIVE_TRANSFERS:
		g_value_set_uint(value, as_engine_get_active_transfers(self));
		break;
	case PROP_RECEIVED_FILES:
		g_value_set_uint64(value, self->received_files);
		break;
	case PROP_HTTP_PORT:
		g_value_set_uint(value, self->http_port);
		break;
	default:
		G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
		break;
	}
}

static void
as_engine_finalize(GObject *object)
{
	AsEngine *self = AS_ENGINE(object);
	g_clear_handle_id(&self->stall_check_id, g_source_remove);
	g_hash_table_unref(self->transfers);
	g_hash_table_unref(self->progress_stamp_us);
	g_clear_object(&self->chunk_store);
	g_clear_object(&self->token_store);
	g_clear_object(&self->metrics);
	g_clear_object(&self->history);
	g_clear_object(&self->audit);
	g_clear_object(&self->router);
	g_strfreev(self->argv);
	g_strfreev(self->protocols);
	g_free(self->cert_sha256);
	g_clear_object(&self->tls_identity);
	G_OBJECT_CLASS(as_engine_parent_class)->finalize(object);
}

static void
as_engine_class_init(AsEngineClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);
	GParamFlags flags = G_PARAM_READABLE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY;

	object_class->get_property = as_engine_get_property;
	object_class->finalize = as_engine_finalize;

	props[PROP_ACTIVE_TRANSFERS] =
		g_param_spec_uint("active-transfers", NULL, NULL, 0, G_MAXUINT, 0, flags);
	props[PROP_RECEIVED_FILES] =
		g_param_spec_uint64("received-files", NULL, NULL, 0, G_MAXUINT64, 0, flags);
	props[PROP_HTTP_PORT] =
		g_param_spec_uint("http-port", NULL, NULL, 0, G_MAXUINT16, 0, flags);
	g_object_class_install_properties(object_class, PROP_LAST, props);

	signals[SIGNAL_TRANSFER_ADDED] =
		g_signal_new("transfer-added", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL,
			     NULL, NULL, G_TYPE_NONE, 1, AS_TYPE_TRANSFER);
	signals[SIGNAL_TRANSFER_REMOVED] =
		g_signal_new("transfer-removed", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0,
			     NULL, NULL, NULL, G_TYPE_NONE, 1, AS_TYPE_TRANSFER);
	signals[SIGNAL_TRANSFER_FINISHED] =
		g_signal_new("transfer-finished", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0,
			     NULL, NULL, NULL, G_TYPE_NONE, 1, AS_TYPE_TRANSFER);
	signals[SIGNAL_RELOADED] =
		g_signal_new("reloaded", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
			     NULL, G_TYPE_NONE, 0);
	/* (name, JSON text) for WebSocket subscribers */
	signals[SIGNAL_EVENT] =
		g_signal_new("event", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
			     NULL, G_TYPE_NONE, 2, G_TYPE_STRING, G_TYPE_STRING);
}

static void
as_engine_init(AsEngine *self)
{
	self->transfers = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_object_unref);
	self->progress_stamp_us = g_hash_table_new(g_direct_hash, g_direct_equal);
	self->metrics = as_metrics_new();
	self->router = as_router_new();
	self->stall_check_id =
		g_timeout_add_seconds(AS_ENGINE_STALL_CHECK_S, as_engine_stall_check_cb, self);
}
