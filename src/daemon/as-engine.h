/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <json-glib/json-glib.h>

#include "as-chunk-store.h"
#include "as-config.h"
#include "as-jsonl-log.h"
#include "as-metrics.h"
#include "as-router.h"
#include "as-tls-identity.h"
#include "as-token-store.h"
#include "as-transfer.h"

G_BEGIN_DECLS

#define AS_TYPE_ENGINE (as_engine_get_type())
G_DECLARE_FINAL_TYPE(AsEngine, as_engine, AS, ENGINE, GObject)

/* finished transfers stay visible on the bus for a while so clients can read the outcome */
#define AS_ENGINE_FINISHED_LINGER_S 30
/* D-Bus PropertiesChanged and WebSocket progress at most this often per transfer */
#define AS_ENGINE_PROGRESS_INTERVAL_US (100 * G_TIME_SPAN_MILLISECOND)
/* an incoming transfer with no data for this long is shown as paused, not active */
#define AS_ENGINE_STALL_S	300
#define AS_ENGINE_STALL_CHECK_S 30
/* /status lists at most this many recent files */
#define AS_ENGINE_STATUS_MAX_FILES 100

AsEngine *as_engine_new(AsConfig *config, GError **error);
AsConfig *as_engine_get_config(AsEngine *self);
AsChunkStore *as_engine_get_chunk_store(AsEngine *self);
AsTokenStore *as_engine_get_token_store(AsEngine *self);
AsMetrics *as_engine_get_metrics(AsEngine *self);
AsJsonlLog *as_engine_get_history(AsEngine *self);
void as_engine_set_protocols(AsEngine *self, const gchar *const *protocols);
const gchar *const *as_engine_get_protocols(AsEngine *self);
void as_engine_set_http_port(AsEngine *self, guint16 port);
guint16 as_engine_get_http_port(AsEngine *self);
void as_engine_set_quic(AsEngine *self, guint16 port, const gchar *cert_sha256);
guint16 as_engine_get_quic_port(AsEngine *self);
const gchar *as_engine_get_cert_sha256(AsEngine *self);
void as_engine_set_tls_identity(AsEngine *self, AsTlsIdentity *identity);
AsTlsIdentity *as_engine_get_tls_identity(AsEngine *self);
void as_engine_set_https_port(AsEngine *self, guint16 port);
guint16 as_engine_get_https_port(AsEngine *self);
guint as_engine_get_active_transfers(AsEngine *self);
guint64 as_engine_get_received_files(AsEngine *self);

gboolean as_engine_check_token(AsEngine *self,
			       const gchar *token,
			       const gchar *peer,
			       const gchar *protocol,
			       GError **error);

AsTransfer *as_engine_lookup_transfer(AsEngine *self, const gchar *id);
GPtrArray *as_engine_get_transfers(AsEngine *self);
AsTransfer *as_engine_receive_begin(AsEngine *self,
				    const gchar *id,
				    const gchar *protocol,
				    const gchar *filename,
				    const gchar *peer,
				    guint64 bytes_total);
void as_engine_receive_progress(AsEngine *self, AsTransfer *transfer, guint64 bytes_done);
void as_engine_receive_completed(AsEngine *self,
				 AsTransfer *transfer,
				 const gchar *saved_rel_path,
				 const gchar *sha256,
				 guint64 size);
gchar *as_engine_receive_commit(AsEngine *self,
				AsTransfer *transfer,
				gchar **temp_name,
				const gchar *rel_path,
				const gchar *expected_sha256,
				const gchar *sha256,
				guint64 size,
				GError **error);
void as_engine_receive_commit_async(AsEngine *self,
				    AsTransfer *transfer,
				    gchar **temp_name,
				    const gchar *rel_path,
				    const gchar *expected_sha256,
				    const gchar *sha256,
				    guint64 size,
				    GAsyncReadyCallback callback,
				    gpointer user_data);
gchar *as_engine_receive_commit_finish(AsEngine *self, GAsyncResult *res, GError **error);
typedef struct _AsEngineCommitBatch AsEngineCommitBatch;

AsEngineCommitBatch *as_engine_commit_batch_new(AsEngine *self);
gboolean as_engine_commit_batch_add(AsEngineCommitBatch *batch,
				    AsTransfer *transfer,
				    gchar **temp_name,
				    const gchar *rel_path,
				    const gchar *expected_sha256,
				    const gchar *sha256,
				    guint64 size,
				    gpointer user_data,
				    GError **error);
guint as_engine_commit_batch_get_length(AsEngineCommitBatch *batch);
gpointer as_engine_commit_batch_get_user_data(AsEngineCommitBatch *batch, guint index);
const gchar *as_engine_commit_batch_get_published(AsEngineCommitBatch *batch, guint index);
const GError *as_engine_commit_batch_get_error(AsEngineCommitBatch *batch, guint index);
void as_engine_commit_batch_run_async(AsEngine *self,
				      AsEngineCommitBatch *batch,
				      GAsyncReadyCallback callback,
				      gpointer user_data);
AsEngineCommitBatch *as_engine_commit_batch_run_finish(AsEngine *self, GAsyncResult *res);
void as_engine_commit_batch_free(AsEngineCommitBatch *batch);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(AsEngineCommitBatch, as_engine_commit_batch_free)
void as_engine_receive_failed(AsEngine *self, AsTransfer *transfer, const gchar *reason);
void as_engine_record_failure(AsEngine *self,
			      const gchar *protocol,
			      const gchar *filename,
			      const gchar *peer,
			      const gchar *reason);

/* one file of a send, as it ends up in the history, the audit log and /ws */
typedef struct {
	const gchar *id;	 /* unique per file, e.g. the chunked upload's task id */
	const gchar *filename;	 /* relative name as sent */
	const gchar *protocol;	 /* "http", "http-chunk" or "http-batch" */
	const gchar *sha256;	 /* nullable */
	const gchar *saved_path; /* nullable: where the receiver put it */
	guint64 size;
	guint64 duration_ms;
	const gchar *error; /* NULL on success */
} AsEngineSendResult;

AsTransfer *as_engine_send_begin(AsEngine *self,
				 const gchar *id,
				 const gchar *destination,
				 const gchar *peer,
				 const gchar *protocol,
				 const gchar *filename);
void
as_engine_send_progress(AsEngine *self, AsTransfer *transfer, guint64 bytes_done, gboolean force);
void
as_engine_send_file_done(AsEngine *self, AsTransfer *transfer, const AsEngineSendResult *result);
void as_engine_send_completed(AsEngine *self, AsTransfer *transfer);
void as_engine_send_failed(AsEngine *self,
			   AsTransfer *transfer,
			   const gchar *reason,
			   gboolean write_history);
void as_engine_send_cancelled(AsEngine *self, AsTransfer *transfer);

gchar *as_engine_route(AsEngine *self, const gchar *rel_path, const gchar *tag, const gchar *peer);
void as_engine_set_argv(AsEngine *self, const gchar *const *argv);
gboolean as_engine_reload(AsEngine *self, GStrv *applied, GStrv *restart_needed, GError **error);

JsonObject *as_engine_get_health(AsEngine *self);
JsonObject *as_engine_get_status(AsEngine *self);

G_END_DECLS
