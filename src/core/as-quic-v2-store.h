/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>

#include "as-chunk-store.h"
#include "as-quic-server.h"

G_BEGIN_DECLS

/*
 * AsQuicV2Store: the receiving side of `aerosync/2` on an #AsChunkStore, the same store and task
 * files the HTTP chunk endpoints use, so a task started over QUIC can be resumed over HTTP and
 * the other way round. Each file stream is a chunk task (its task id, relative path, size and
 * chunk size); each CHUNK is written at its offset by an #AsDiskWriter on a worker thread,
 * hashed as it is written, compared with the sender's digest and only then marked in the map.
 * Completion hashes the whole file and publishes it exactly as `POST /upload/complete` does.
 *
 * The owner (the daemon, or a test) adds authentication, routing and bookkeeping through
 * #AsQuicV2StoreHooks.
 */

typedef struct _AsQuicV2Store AsQuicV2Store;

/**
 * AsQuicV2StoreHooks:
 * @authenticate: (nullable): check the connection's token; %NULL accepts every connection
 * @route: (nullable): map a sanitized relative path to the one to store under (newly
 *   allocated); %NULL keeps it. Must be deterministic: every resume of a task must land on the
 *   same path
 * @file_started: (nullable): a file stream began on @task (new or resumed); the result is a
 *   cookie handed to the other hooks (e.g. the daemon's transfer object)
 * @file_progress: (nullable): a chunk of @chunk_bytes is stored; @bytes_done counts the whole
 *   task
 * @file_verifying: (nullable): every chunk is in; the whole file is being hashed and published
 * @file_completed: (nullable): the file is verified and published as @saved_as
 * @file_failed: (nullable): completion failed with @error; for %AS_ERROR_INCOMPLETE and
 *   %AS_ERROR_CONFLICT the task is intact and resumable, for %AS_ERROR_HASH_MISMATCH it was
 *   discarded
 * @chunk_failed: (nullable): a chunk was refused (e.g. its digest did not match); the task stays
 * @file_closed: (nullable): the cookie is no longer used
 *
 * All are called from the main context of the server.
 **/
typedef struct {
	gboolean (*authenticate)(gpointer user_data,
				 const gchar *token,
				 const gchar *peer,
				 GError **error);
	gchar *(*route)(gpointer user_data, const gchar *rel_path, const gchar *peer);
	gpointer (*file_started)(gpointer user_data, AsChunkTask *task, const gchar *peer);
	void (*file_progress)(gpointer user_data,
			      gpointer cookie,
			      guint64 bytes_done,
			      guint64 chunk_bytes);
	void (*file_verifying)(gpointer user_data, gpointer cookie);
	void (*file_completed)(gpointer user_data,
			       gpointer cookie,
			       AsChunkTask *task,
			       const gchar *saved_as,
			       const gchar *sha256);
	void (*file_failed)(gpointer user_data, gpointer cookie, const GError *error);
	void (*chunk_failed)(gpointer user_data,
			     gpointer cookie,
			     AsChunkTask *task,
			     guint32 index,
			     const GError *error);
	void (*file_closed)(gpointer user_data, gpointer cookie);
} AsQuicV2StoreHooks;

AsQuicV2Store *as_quic_v2_store_new(AsChunkStore *store,
				    const AsQuicV2StoreHooks *hooks,
				    gpointer user_data,
				    GDestroyNotify user_data_destroy);
void as_quic_v2_store_set_overwrite(AsQuicV2Store *self, gboolean overwrite);
void as_quic_v2_store_attach(AsQuicV2Store *self, AsQuicServer *server);
AsQuicV2Store *as_quic_v2_store_ref(AsQuicV2Store *self);
void as_quic_v2_store_unref(AsQuicV2Store *self);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(AsQuicV2Store, as_quic_v2_store_unref)

G_END_DECLS
