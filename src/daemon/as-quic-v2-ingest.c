/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "AsQuicV2DaemonIngest"

#include "config.h"

#include <string.h>

#include "as-error.h"
#include "as-metrics.h"
#include "as-quic-v2-ingest.h"
#include "as-quic-v2-store.h"

/*
 * The daemon's side of `aerosync/2` (doc/protocol.md): the connection authenticates once with
 * an engine token, and every file stream is a chunked task in the engine's chunk store, the one
 * `/upload/chunk`, `/upload/status` and `/upload/complete` use. So a task started over QUIC
 * resumes over HTTP and the other way round, and a file received this way goes through the
 * same routing, verification, publishing, history, metrics and D-Bus transfer objects as a
 * chunked HTTP upload; its protocol is "quic".
 */

#define AS_QUIC_V2_INGEST_PROTOCOL "quic"

typedef struct {
	AsEngine *engine; /* owned */
} AsQuicV2DaemonIngest;

/* what the store keeps per file stream */
typedef struct {
	AsQuicV2DaemonIngest *ingest; /* unowned: outlives the store */
	AsTransfer *transfer;	      /* owned ref */
	gchar *host;
	gchar *rel_path;
} AsQuicV2IngestFile;

static void
as_quic_v2_ingest_free(gpointer data)
{
	AsQuicV2DaemonIngest *ingest = data;
	g_object_unref(ingest->engine);
	g_free(ingest);
}

static gboolean
as_quic_v2_ingest_authenticate(gpointer user_data,
			       const gchar *token,
			       const gchar *peer,
			       GError **error)
{
	AsQuicV2DaemonIngest *ingest = user_data;
	g_autofree gchar *host = as_quic_peer_host(peer);

	return as_engine_check_token(ingest->engine, token, host, AS_QUIC_V2_INGEST_PROTOCOL,
				     error);
}

static gchar *
as_quic_v2_ingest_route(gpointer user_data, const gchar *rel_path, const gchar *peer)
{
	AsQuicV2DaemonIngest *ingest = user_data;
	g_autofree gchar *host = as_quic_peer_host(peer);

	/* deterministic, like the HTTP chunk path: every resume lands on the same name */
	return as_engine_route(ingest->engine, rel_path, NULL, host);
}

static gpointer
as_quic_v2_ingest_file_started(gpointer user_data, AsChunkTask *task, const gchar *peer)
{
	AsQuicV2DaemonIngest *ingest = user_data;
	AsQuicV2IngestFile *file = g_new0(AsQuicV2IngestFile, 1);
	AsTransfer *transfer =
		as_engine_lookup_transfer(ingest->engine, as_chunk_task_get_id(task));

	file->ingest = ingest;
	file->host = as_quic_peer_host(peer);
	file->rel_path = g_strdup(as_chunk_task_get_rel_path(task));
	/* the transfer a resumed task already has (from HTTP or an earlier connection) goes on;
	 * only a failed or cancelled one is started afresh */
	if (transfer == NULL || as_transfer_get_state(transfer) == AS_TRANSFER_STATE_FAILED ||
	    as_transfer_get_state(transfer) == AS_TRANSFER_STATE_CANCELLED) {
		transfer = as_engine_receive_begin(ingest->engine, as_chunk_task_get_id(task),
						   AS_QUIC_V2_INGEST_PROTOCOL, file->rel_path,
						   file->host, as_chunk_task_get_total_size(task));
		as_transfer_set_bytes_done(transfer, as_chunk_task_get_bytes_done(task));
	} else if (as_transfer_get_state(transfer) == AS_TRANSFER_STATE_VERIFYING) {
		as_transfer_set_state(transfer, AS_TRANSFER_STATE_RUNNING);
	}
	file->transfer = g_object_ref(transfer);
	return file;
}

static void
as_quic_v2_ingest_file_progress(gpointer user_data,
				gpointer cookie,
				guint64 bytes_done,
				guint64 chunk_bytes)
{
	AsQuicV2IngestFile *file = cookie;
	AsEngine *engine = file->ingest->engine;

	as_metrics_bytes_received(as_engine_get_metrics(engine), chunk_bytes);
	as_engine_receive_progress(engine, file->transfer, bytes_done);
}

static void
as_quic_v2_ingest_file_verifying(gpointer user_data, gpointer cookie)
{
	AsQuicV2IngestFile *file = cookie;
	as_transfer_set_state(file->transfer, AS_TRANSFER_STATE_VERIFYING);
}

static void
as_quic_v2_ingest_file_completed(gpointer user_data,
				 gpointer cookie,
				 AsChunkTask *task,
				 const gchar *saved_as,
				 const gchar *sha256)
{
	AsQuicV2IngestFile *file = cookie;

	as_engine_receive_completed(file->ingest->engine, file->transfer, saved_as, sha256,
				    as_chunk_task_get_total_size(task));
}

static void
as_quic_v2_ingest_file_failed(gpointer user_data, gpointer cookie, const GError *error)
{
	AsQuicV2IngestFile *file = cookie;

	/* as for /upload/complete: nothing is lost while chunks are merely missing */
	if (g_error_matches(error, AS_ERROR, AS_ERROR_INCOMPLETE) ||
	    g_error_matches(error, AS_ERROR, AS_ERROR_CONFLICT)) {
		as_transfer_set_state(file->transfer, AS_TRANSFER_STATE_RUNNING);
		return;
	}
	as_engine_receive_failed(file->ingest->engine, file->transfer, error->message);
}

static void
as_quic_v2_ingest_chunk_failed(
	gpointer user_data, gpointer cookie, AsChunkTask *task, guint32 index, const GError *error)
{
	AsQuicV2IngestFile *file = cookie;
	g_autofree gchar *msg = g_strdup_printf("chunk %u: %s", index, error->message);

	as_engine_record_failure(file->ingest->engine, AS_QUIC_V2_INGEST_PROTOCOL, file->rel_path,
				 file->host, msg);
}

static void
as_quic_v2_ingest_file_closed(gpointer user_data, gpointer cookie)
{
	AsQuicV2IngestFile *file = cookie;

	if (file == NULL)
		return;
	g_clear_object(&file->transfer);
	g_free(file->host);
	g_free(file->rel_path);
	g_free(file);
}

static const AsQuicV2StoreHooks as_quic_v2_ingest_hooks = {
	.authenticate = as_quic_v2_ingest_authenticate,
	.route = as_quic_v2_ingest_route,
	.file_started = as_quic_v2_ingest_file_started,
	.file_progress = as_quic_v2_ingest_file_progress,
	.file_verifying = as_quic_v2_ingest_file_verifying,
	.file_completed = as_quic_v2_ingest_file_completed,
	.file_failed = as_quic_v2_ingest_file_failed,
	.chunk_failed = as_quic_v2_ingest_chunk_failed,
	.file_closed = as_quic_v2_ingest_file_closed,
};

/**
 * as_quic_v2_ingest_attach:
 * @engine: the daemon's engine
 * @server: its QUIC server
 *
 * Turns on `aerosync/2` on @server, received into @engine's chunk store. Call it before
 * as_quic_server_listen() (it applies to connections accepted afterwards).
 **/
void
as_quic_v2_ingest_attach(AsEngine *engine, AsQuicServer *server)
{
	AsQuicV2DaemonIngest *ingest;
	g_autoptr(AsQuicV2Store) store = NULL;

	g_return_if_fail(AS_IS_ENGINE(engine));
	g_return_if_fail(AS_IS_QUIC_SERVER(server));

	ingest = g_new0(AsQuicV2DaemonIngest, 1);
	ingest->engine = g_object_ref(engine);
	store = as_quic_v2_store_new(as_engine_get_chunk_store(engine), &as_quic_v2_ingest_hooks,
				     ingest, as_quic_v2_ingest_free);
	as_quic_v2_store_set_overwrite(store, as_engine_get_config(engine)->overwrite);
	as_quic_v2_store_attach(store, server);
}
