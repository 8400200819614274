/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* version of the [transfer] group this build writes and reads */
#define AS_SEND_STATE_VERSION 1

/* as_send_state_save_throttled() writes at most this often unless forced */
#define AS_SEND_STATE_SAVE_INTERVAL_MS 250

/* longest transfer id, in [A-Za-z0-9_-]; the id is a file name */
#define AS_SEND_STATE_ID_MAX 64

/* longest source path and destination name accepted, in bytes */
#define AS_SEND_STATE_PATH_MAX 4096

/* longest error message kept for a failed file, in bytes */
#define AS_SEND_STATE_ERROR_MAX 1024

/* longest line of a .files or .done list: both paths fully escaped, and the rest */
#define AS_SEND_STATE_LINE_MAX (64 * 1024)

/* largest .state key file loaded; it only holds the files being sent */
#define AS_SEND_STATE_KEYFILE_MAX (4 * 1024 * 1024)

/* appended list lines are written out once this much is buffered */
#define AS_SEND_STATE_BUFFER_SIZE (64 * 1024)

/**
 * AsSendFileState:
 * @AS_SEND_FILE_STATE_PENDING: not started
 * @AS_SEND_FILE_STATE_SENDING: started: it has a remote task id and maybe a hash state
 * @AS_SEND_FILE_STATE_DONE: the receiver confirmed the whole-file SHA-256
 * @AS_SEND_FILE_STATE_FAILED: given up; the error says why
 *
 * Where one file of a transfer stands.
 */
typedef enum {
	AS_SEND_FILE_STATE_PENDING,
	AS_SEND_FILE_STATE_SENDING,
	AS_SEND_FILE_STATE_DONE,
	AS_SEND_FILE_STATE_FAILED,
} AsSendFileState;

const gchar *as_send_file_state_to_string(AsSendFileState state);

/**
 * AsSendFile:
 * @index: position in the transfer, from 0 in the order files were added
 * @source: absolute source path
 * @name: relative destination name
 * @size: size in bytes when added
 * @mtime_us: modification time when added; a different one on resume means the source changed
 * @state: #AsSendFileState
 * @task_id: (nullable): the receiver's task id, once sending
 * @chunk_size: nominal chunk size, once sending
 * @total_chunks: number of chunks, once sending
 * @hash_state: (nullable): an as_sha256_state_save() blob covering chunks 0 to
 *   @hashed_chunks - 1, read in order; which chunks the receiver holds is asked from it
 *   (`/upload/status`), never assumed from this
 * @hashed_chunks: chunks included in @hash_state
 * @sha256: (nullable): whole-file SHA-256 when done
 * @error: (nullable): why it failed
 *
 * One file of a transfer, as a plain record the caller may change and hand back through
 * as_send_state_update_file().
 */
typedef struct {
	guint64 index;
	gchar *source;
	gchar *name;
	guint64 size;
	gint64 mtime_us;
	AsSendFileState state;
	gchar *task_id;
	guint64 chunk_size;
	guint32 total_chunks;
	GBytes *hash_state;
	guint32 hashed_chunks;
	gchar *sha256;
	gchar *error;
} AsSendFile;

AsSendFile *as_send_file_copy(const AsSendFile *file);
void as_send_file_free(AsSendFile *file);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(AsSendFile, as_send_file_free)

/**
 * AsSendStateIterKind:
 * @AS_SEND_STATE_ITER_PENDING: files still to send, pending or sending, in index order
 * @AS_SEND_STATE_ITER_FINISHED: done and failed files, in the order they finished
 *
 * What as_send_state_file_iter_new() walks through.
 */
typedef enum {
	AS_SEND_STATE_ITER_PENDING,
	AS_SEND_STATE_ITER_FINISHED,
} AsSendStateIterKind;

typedef struct _AsSendStateFileIter AsSendStateFileIter;

#define AS_TYPE_SEND_STATE (as_send_state_get_type())
G_DECLARE_FINAL_TYPE(AsSendState, as_send_state, AS, SEND_STATE, GObject)

gboolean as_send_state_id_is_valid(const gchar *transfer_id);
GPtrArray *as_send_state_list_dir(const gchar *dir, GError **error);
AsSendState *as_send_state_new(const gchar *dir,
			       const gchar *transfer_id,
			       const gchar *destination,
			       GVariant *options,
			       GError **error);
AsSendState *as_send_state_load(const gchar *dir, const gchar *transfer_id, GError **error);
gboolean as_send_state_delete(AsSendState *self, GError **error);
gboolean as_send_state_delete_id(const gchar *dir, const gchar *transfer_id, GError **error);

const gchar *as_send_state_get_transfer_id(AsSendState *self);
const gchar *as_send_state_get_destination(AsSendState *self);
GVariant *as_send_state_get_options(AsSendState *self);
gint64 as_send_state_get_created_us(AsSendState *self);
guint64 as_send_state_get_n_files(AsSendState *self);
guint64 as_send_state_get_bytes_total(AsSendState *self);
guint64 as_send_state_get_n_done(AsSendState *self);
guint64 as_send_state_get_n_failed(AsSendState *self);
guint64 as_send_state_get_bytes_done(AsSendState *self);
gboolean as_send_state_get_files_complete(AsSendState *self);
void as_send_state_set_files_complete(AsSendState *self);

gboolean as_send_state_add_file(AsSendState *self,
				const gchar *source,
				const gchar *name,
				guint64 size,
				gint64 mtime_us,
				guint64 *index,
				GError **error);
AsSendFileState as_send_state_get_file_state(AsSendState *self, guint64 index);
const AsSendFile *as_send_state_lookup_sending(AsSendState *self, guint64 index);
gboolean as_send_state_update_file(AsSendState *self, const AsSendFile *file, GError **error);

gboolean as_send_state_save(AsSendState *self, GError **error);
gboolean as_send_state_save_throttled(AsSendState *self, gboolean force, GError **error);
gboolean as_send_state_is_dirty(AsSendState *self);

AsSendStateFileIter *
as_send_state_file_iter_new(AsSendState *self, AsSendStateIterKind kind, GError **error);
gboolean as_send_state_file_iter_next(AsSendStateFileIter *iter, AsSendFile **file, GError **error);
void as_send_state_file_iter_free(AsSendStateFileIter *iter);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(AsSendStateFileIter, as_send_state_file_iter_free)

G_END_DECLS
