/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>

#include "as-rate-limit.h"

G_BEGIN_DECLS

/*
 * AsQuicSender: the QUIC transport of a send job. One AsQuicClient connection to the receiver
 * carries every file of the job, one bidirectional stream per file, as many files in flight as
 * the job dispatches.
 *
 * The native protocol `aerosync/2` is offered first (doc/protocol.md): the connection
 * authenticates once with the token, and each file is a resumable task of the receiver's chunk
 * store, with the task id and chunk size of the HTTP chunk path, so a file interrupted over
 * QUIC resumes over HTTP `/upload/chunk` and the reverse, and a restarted sender resumes where
 * the receiver's HAVE says (see as_quic_sender_v2_upload_async()). A receiver that does not
 * speak it refuses it in the handshake (%G_IO_ERROR_NOT_SUPPORTED): the sender connects again
 * with `aerosync/1` and stays with it. A send that is rate-limited when it connects uses
 * `aerosync/1` from the start: AsQuicClient reads aerosync/2 chunks straight from the file, where
 * the limiters cannot pace them.
 *
 * The 0.x framing (`UPLOAD:name:size[:token]`, `HASH:sha256`, body, FIN; reply SUCCESS or
 * ERROR:...) announces the SHA-256 before the body and the receiver only answers SUCCESS
 * when the body matches it, so each file is hashed in a worker thread first and then streamed
 * from the same descriptor (the second read comes from the page cache for all but huge files);
 * a file is sent whole: there is no chunk resume in this framing, an interrupted file starts
 * again from its first byte.
 *
 * Trust, in this order: a pinned SHA-256 (the Pin option, or the `fp` of an mDNS announcement),
 * Insecure when asked for (logged), or trust on first use through known_peers (see
 * AsKnownPeers): a known peer must present its recorded fingerprint, an unknown one is
 * recorded after its first handshake, pinned to the fingerprint its `/health` announced when
 * there is one. Without a known_peers file the system CAs decide. Nothing is ever accepted
 * silently.
 */

/* the QUIC port of quic:// destinations without one (the HTTP default port + 1) */
#define AS_QUIC_SENDER_DEFAULT_PORT 7789
/* a limited read takes at most this much at once, so the rate stays smooth */
#define AS_QUIC_SENDER_LIMITED_READ_SIZE (64 * 1024)
/* a read waiting for the rate limiters looks again this often (pause, SetRateLimit) */
#define AS_QUIC_SENDER_RATE_RECHECK_MS 250
/* progress of the uploads in flight is reported this often */
#define AS_QUIC_SENDER_PROGRESS_INTERVAL_MS 100

typedef void (*AsQuicSenderProgressFunc)(gpointer user_data);
/* a newer whole-file hash state over the first @hashed_chunks chunks, to record for resuming */
typedef void (*AsQuicSenderHashFunc)(guint32 hashed_chunks, GBytes *hash_state, gpointer user_data);

#define AS_TYPE_QUIC_SENDER (as_quic_sender_get_type())
G_DECLARE_FINAL_TYPE(AsQuicSender, as_quic_sender, AS, QUIC_SENDER, GObject)

gboolean as_quic_sender_parse_destination(const gchar *destination,
					  gchar **host,
					  guint16 *port,
					  GError **error);
gboolean as_quic_sender_error_allows_fallback(const GError *error);
gboolean as_quic_sender_error_is_retryable(const GError *error);

AsQuicSender *as_quic_sender_new(const gchar *host, guint16 port, const gchar *token);
const gchar *as_quic_sender_get_host_port(AsQuicSender *self);
void as_quic_sender_set_pin(AsQuicSender *self, const gchar *sha256);
void as_quic_sender_set_expected_fingerprint(AsQuicSender *self, const gchar *sha256);
void as_quic_sender_set_insecure(AsQuicSender *self, gboolean insecure);
void as_quic_sender_set_known_peers(AsQuicSender *self, const gchar *path);
void as_quic_sender_set_prefer_v2(AsQuicSender *self, gboolean prefer_v2);
void as_quic_sender_set_handshake_timeout_ms(AsQuicSender *self, guint timeout_ms);
void as_quic_sender_set_limiters(AsQuicSender *self,
				 AsRateLimiter *transfer_limiter,
				 AsRateLimiter *global_limiter);
void as_quic_sender_set_progress_func(AsQuicSender *self,
				      AsQuicSenderProgressFunc func,
				      gpointer user_data);

void as_quic_sender_connect_async(AsQuicSender *self,
				  GCancellable *cancellable,
				  GAsyncReadyCallback callback,
				  gpointer user_data);
gboolean as_quic_sender_connect_finish(AsQuicSender *self, GAsyncResult *res, GError **error);
const gchar *as_quic_sender_get_peer_fingerprint(AsQuicSender *self);
gboolean as_quic_sender_is_v2(AsQuicSender *self);

void as_quic_sender_upload_async(AsQuicSender *self,
				 const gchar *source,
				 const gchar *name,
				 guint64 size,
				 gint64 mtime_us,
				 gboolean verify,
				 GCancellable *cancellable,
				 GAsyncReadyCallback callback,
				 gpointer user_data);
gchar *as_quic_sender_upload_finish(AsQuicSender *self, GAsyncResult *res, GError **error);
void as_quic_sender_v2_upload_async(AsQuicSender *self,
				    const gchar *source,
				    const gchar *name,
				    guint64 size,
				    gint64 mtime_us,
				    const gchar *task_id,
				    guint64 chunk_size,
				    gboolean verify,
				    GBytes *hash_state,
				    guint32 hashed_chunks,
				    AsQuicSenderHashFunc hash_func,
				    gpointer hash_data,
				    GCancellable *cancellable,
				    GAsyncReadyCallback callback,
				    gpointer user_data);
gchar *as_quic_sender_v2_upload_finish(AsQuicSender *self,
				       GAsyncResult *res,
				       gchar **saved_as,
				       guint32 *chunks_sent,
				       guint32 *chunks_skipped,
				       GError **error);
guint64 as_quic_sender_get_bytes_in_flight(AsQuicSender *self);
void as_quic_sender_close(AsQuicSender *self);

G_END_DECLS
