/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <json-glib/json-glib.h>
#include <libsoup/soup.h>

#include "as-peer-trust.h"
#include "as-rate-limit.h"

G_BEGIN_DECLS

/* the port of "host" destinations without one, as in 0.x */
#define AS_PEER_CLIENT_DEFAULT_PORT 7788
/* the port of "https://host" destinations without one, as 0.x's HTTPS listener */
#define AS_PEER_CLIENT_DEFAULT_HTTPS_PORT 7790
/* a request fails after this long without any I/O progress; there is never a total deadline,
 * so a slow link does not fail */
#define AS_PEER_CLIENT_IO_TIMEOUT_S 60
/* a /health that a port hung up on is followed by a TLS handshake this long at most, to tell a
 * user who sent http:// to an HTTPS port */
#define AS_PEER_CLIENT_TLS_PROBE_TIMEOUT_S 5
/* the first TLS handshake with an https:// receiver must be done within this */
#define AS_PEER_CLIENT_TLS_HANDSHAKE_TIMEOUT_S 10
/* replies are JSON documents; a /upload/status of a badly fragmented task is the largest */
#define AS_PEER_CLIENT_REPLY_MAX (8 * 1024 * 1024)
/* request bodies this large go out through as-http-raw-request.c in large blocks, each on a
 * connection of its own (the receiver closes after them, see as-http-pump.c) */
#define AS_PEER_CLIENT_RAW_MIN_BYTES (1024 * 1024)
/* how much of a reply is read at once */
#define AS_PEER_CLIENT_REPLY_READ_SIZE (16 * 1024)
/* a body read waiting for the rate limiters looks again at least this often, so that
 * SetRateLimit() or a pause applies within a second */
#define AS_PEER_CLIENT_RATE_RECHECK_MS 250
/* the multipart boundary of /upload/batch: a fixed prefix and 128 random bits */
#define AS_PEER_BATCH_BOUNDARY_PREFIX "aerosync-batch-"

/* errors from the receiver: the code is the HTTP status, the message its error text */
#define AS_PEER_CLIENT_ERROR (as_peer_client_error_quark())
GQuark as_peer_client_error_quark(void);

gboolean as_peer_client_parse_destination(const gchar *destination,
					  const gchar *protocol,
					  gchar **base_url,
					  gchar **host_port,
					  GError **error);
gboolean as_peer_client_error_is_retryable(const GError *error);
gboolean as_peer_client_error_is_auth(const GError *error);
gchar *as_peer_client_escape_path(const gchar *name);

/* one multipart body for POST /upload/batch, built in memory (the files are tiny) */
typedef struct _AsPeerBatch AsPeerBatch;

AsPeerBatch *as_peer_batch_new(void);
gboolean as_peer_batch_name_is_safe(const gchar *name);
void as_peer_batch_add(
	AsPeerBatch *self, const gchar *name, const guint8 *data, gsize len, const gchar *sha256);
guint as_peer_batch_get_n_parts(AsPeerBatch *self);
gsize as_peer_batch_get_size(AsPeerBatch *self);
GBytes *as_peer_batch_end(AsPeerBatch *self, gchar **content_type);
void as_peer_batch_free(AsPeerBatch *self);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(AsPeerBatch, as_peer_batch_free)

/* bytes of the current request body handed to the socket so far */
typedef void (*AsPeerClientProgressFunc)(guint64 bytes_sent, gpointer user_data);

#define AS_TYPE_PEER_CLIENT (as_peer_client_get_type())
G_DECLARE_FINAL_TYPE(AsPeerClient, as_peer_client, AS, PEER_CLIENT, GObject)

AsPeerClient *as_peer_client_new(const gchar *base_url,
				 const gchar *host_port,
				 const gchar *token,
				 const gchar *tag,
				 guint max_conns);
const gchar *as_peer_client_get_host_port(AsPeerClient *self);
gboolean as_peer_client_get_https(AsPeerClient *self);
void as_peer_client_set_trust(AsPeerClient *self, AsPeerTrust *trust);
AsPeerTrust *as_peer_client_get_trust(AsPeerClient *self);
void as_peer_client_set_limiters(AsPeerClient *self,
				 AsRateLimiter *transfer_limiter,
				 AsRateLimiter *global_limiter);
void as_peer_client_abort(AsPeerClient *self);

void as_peer_client_health_async(AsPeerClient *self,
				 GCancellable *cancellable,
				 GAsyncReadyCallback callback,
				 gpointer user_data);
void as_peer_client_put_async(AsPeerClient *self,
			      const gchar *name,
			      GBytes *data,
			      const gchar *sha256,
			      AsPeerClientProgressFunc progress_func,
			      gpointer progress_data,
			      GCancellable *cancellable,
			      GAsyncReadyCallback callback,
			      gpointer user_data);
void as_peer_client_batch_async(AsPeerClient *self,
				GBytes *body,
				const gchar *content_type,
				AsPeerClientProgressFunc progress_func,
				gpointer progress_data,
				GCancellable *cancellable,
				GAsyncReadyCallback callback,
				gpointer user_data);
void as_peer_client_chunk_async(AsPeerClient *self,
				const gchar *task_id,
				const gchar *name,
				guint64 total_size,
				guint64 chunk_size,
				guint32 total_chunks,
				guint32 index,
				GBytes *data,
				const gchar *sha256,
				AsPeerClientProgressFunc progress_func,
				gpointer progress_data,
				GCancellable *cancellable,
				GAsyncReadyCallback callback,
				gpointer user_data);
void as_peer_client_status_async(AsPeerClient *self,
				 const gchar *task_id,
				 GCancellable *cancellable,
				 GAsyncReadyCallback callback,
				 gpointer user_data);
void as_peer_client_complete_async(AsPeerClient *self,
				   const gchar *task_id,
				   guint64 total_size,
				   guint32 total_chunks,
				   const gchar *sha256,
				   GCancellable *cancellable,
				   GAsyncReadyCallback callback,
				   gpointer user_data);
JsonObject *as_peer_client_request_finish(AsPeerClient *self, GAsyncResult *res, GError **error);

G_END_DECLS
