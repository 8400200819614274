/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>

#include "as-disk-writer.h"

G_BEGIN_DECLS

/* folder below AS_STAGING_DIR_NAME that holds temps and chunked tasks */
#define AS_CHUNK_STORE_INPROGRESS_DIR_NAME "inprogress"

/* most chunks one task may have: bounds the .map file to 1 MiB */
#define AS_CHUNK_STORE_MAX_CHUNKS 1048576

/* longest task id, in [A-Za-z0-9_-] */
#define AS_CHUNK_STORE_TASK_ID_MAX 64

/* most chunks of one task being received at once */
#define AS_CHUNK_TASK_MAX_IN_FLIGHT 256

/* most claims of one task taken over whose writers have not stopped yet */
#define AS_CHUNK_TASK_MAX_STALE_CLAIMS AS_CHUNK_TASK_MAX_IN_FLIGHT

/* read size when scanning a .map file */
#define AS_CHUNK_TASK_MAP_READ_SIZE (64 * 1024)

#define AS_TYPE_CHUNK_STORE (as_chunk_store_get_type())
G_DECLARE_FINAL_TYPE(AsChunkStore, as_chunk_store, AS, CHUNK_STORE, GObject)

#define AS_TYPE_CHUNK_TASK (as_chunk_task_get_type())
G_DECLARE_FINAL_TYPE(AsChunkTask, as_chunk_task, AS, CHUNK_TASK, GObject)

/**
 * AsChunkRangeFunc:
 * @first: first chunk index of the run
 * @last_inclusive: last chunk index of the run
 * @user_data: data given to as_chunk_task_foreach_range()
 *
 * Receives one run of consecutive chunks in the same state.
 */
typedef void (*AsChunkRangeFunc)(guint32 first, guint32 last_inclusive, gpointer user_data);

/**
 * AsChunkClaim:
 * @index: the chunk index
 * @id: the claim, unique within the task; 0 when nothing was claimed (@already_done)
 * @already_done: the chunk was received before: discard the body, never rewrite it
 * @verify: the claim took the chunk over from a request whose writer may not have stopped
 *   yet: hash what is written and give the digest to as_chunk_task_end_chunk(), which reads
 *   the chunk back and counts it only if the disk holds exactly that
 *
 * What as_chunk_task_begin_chunk() hands the request that receives a chunk.
 */
typedef struct {
	guint32 index;
	guint64 id;
	gboolean already_done;
	gboolean verify;
} AsChunkClaim;

AsChunkStore *as_chunk_store_new(const gchar *receive_dir, guint64 max_file_size, GError **error);
int as_chunk_store_get_root_fd(AsChunkStore *self);
int as_chunk_store_get_staging_fd(AsChunkStore *self);
const gchar *as_chunk_store_get_receive_dir(AsChunkStore *self);
void as_chunk_store_set_max_file_size(AsChunkStore *self, guint64 max);
int as_chunk_store_create_temp(AsChunkStore *self, gchar **name_out, GError **error);
void as_chunk_store_remove_temp(AsChunkStore *self, const gchar *name);
guint as_chunk_store_remove_own_temps(AsChunkStore *self);
guint as_chunk_store_cleanup_temps(AsChunkStore *self);
gchar *as_chunk_task_dup_computed_sha256(AsChunkTask *self);
guint as_chunk_store_cleanup_stale(AsChunkStore *self, gint64 max_age_s);
AsChunkTask *as_chunk_store_open_task(AsChunkStore *self,
				      const gchar *task_id,
				      const gchar *rel_path,
				      guint64 total_size,
				      guint64 chunk_size,
				      guint32 total_chunks,
				      GError **error);

/**
 * AsChunkStoreOpenFlags:
 * @AS_CHUNK_STORE_OPEN_FLAG_NONE: a task that survives the request and a restart
 * @AS_CHUNK_STORE_OPEN_FLAG_HOLD: the caller holds the task from its first chunk to its
 *   completion (an aerosync/2 stream): a new task of one chunk is then kept in memory only,
 *   with its data file and no resume state
 *
 * How as_chunk_store_open_task_full() may create a task.
 */
typedef enum {
	AS_CHUNK_STORE_OPEN_FLAG_NONE = 0,
	AS_CHUNK_STORE_OPEN_FLAG_HOLD = 1 << 0,
} AsChunkStoreOpenFlags;

AsChunkTask *as_chunk_store_open_task_full(AsChunkStore *self,
					   const gchar *task_id,
					   const gchar *rel_path,
					   guint64 total_size,
					   guint64 chunk_size,
					   guint32 total_chunks,
					   AsChunkStoreOpenFlags flags,
					   GError **error);
AsChunkTask *as_chunk_store_lookup_task(AsChunkStore *self, const gchar *task_id, GError **error);
gboolean as_chunk_store_lookup_done(AsChunkStore *self,
				    const gchar *task_id,
				    gchar **rel_path,
				    gchar **sha256,
				    guint64 *size,
				    GError **error);
gboolean as_chunk_store_task_id_is_valid(const gchar *task_id);

const gchar *as_chunk_task_get_id(AsChunkTask *self);
const gchar *as_chunk_task_get_rel_path(AsChunkTask *self);
guint64 as_chunk_task_get_total_size(AsChunkTask *self);
guint64 as_chunk_task_get_chunk_size(AsChunkTask *self);
guint32 as_chunk_task_get_total_chunks(AsChunkTask *self);
gboolean as_chunk_task_is_ephemeral(AsChunkTask *self);
guint32 as_chunk_task_get_done_count(AsChunkTask *self);
guint64 as_chunk_task_get_bytes_done(AsChunkTask *self);
guint32 as_chunk_task_get_hashed_chunks(AsChunkTask *self);
int as_chunk_task_get_fd(AsChunkTask *self);
gboolean as_chunk_task_chunk_range(
	AsChunkTask *self, guint32 index, guint64 *offset, guint64 *length, GError **error);
gboolean as_chunk_task_begin_chunk(AsChunkTask *self,
				   guint32 index,
				   guint64 body_length,
				   GCancellable *cancellable,
				   AsChunkClaim *claim,
				   GError **error);
gboolean as_chunk_task_end_chunk(AsChunkTask *self,
				 const AsChunkClaim *claim,
				 gboolean success,
				 const gchar *sha256,
				 GError **error);
gboolean as_chunk_task_end_chunk_verify(AsChunkTask *self,
					const AsChunkClaim *claim,
					const gchar *expected_sha256,
					GCancellable *cancellable,
					gchar **sha256_out,
					GError **error);
void as_chunk_task_end_chunk_verify_async(AsChunkTask *self,
					  const AsChunkClaim *claim,
					  const gchar *expected_sha256,
					  GCancellable *cancellable,
					  GAsyncReadyCallback callback,
					  gpointer user_data);
gboolean as_chunk_task_end_chunk_verify_finish(AsChunkTask *self,
					       GAsyncResult *res,
					       gchar **sha256_out,
					       GError **error);
void
as_chunk_task_abandon_chunk(AsChunkTask *self, const AsChunkClaim *claim, AsDiskWriter *writer);
gboolean as_chunk_task_is_chunk_done(AsChunkTask *self, guint32 index);
gboolean as_chunk_task_foreach_range(AsChunkTask *self,
				     gboolean done,
				     AsChunkRangeFunc func,
				     gpointer user_data,
				     GError **error);
void as_chunk_task_complete_async(AsChunkTask *self,
				  const gchar *expected_sha256,
				  gboolean overwrite,
				  GCancellable *cancellable,
				  GAsyncReadyCallback callback,
				  gpointer user_data);
gchar *as_chunk_task_complete_finish(AsChunkTask *self,
				     GAsyncResult *res,
				     gchar **sha256_out,
				     GError **error);

G_END_DECLS
