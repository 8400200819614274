/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>

#include "as-quic-v2.h"
#include "as-quic.h"
#include "as-rate-limit.h"

G_BEGIN_DECLS

/*
 * AsQuicClient: the QUIC sender of the send engine. One client per receiver keeps one
 * connection for a whole batch; every upload is a bidirectional stream in the 0.x framing
 * (ALPN `aerosync/1` by default), several in flight at once, reading the file ahead in a worker
 * thread only as far as the receiver's flow control and the buffer limits below allow.
 *
 * Trust is explicit: a pinned SHA-256 (as_quic_client_set_pin(), from `/health` `cert_sha256`,
 * mDNS or known_peers), CA verification (the default: system store, or
 * as_quic_client_set_ca_file()), or as_quic_client_set_insecure() which logs a warning for
 * every connection. For trust on first use, connect insecurely once, read
 * as_quic_client_get_peer_fingerprint(), store it and pin it from then on.
 *
 * Falling back to HTTP: as_quic_client_connect_async() (or the first upload) fails within the
 * handshake timeout (AS_QUIC_CLIENT_DEFAULT_HANDSHAKE_TIMEOUT_MS over all addresses of the
 * host) with %G_IO_ERROR_TIMED_OUT when UDP is filtered, %G_IO_ERROR_CONNECTION_REFUSED when
 * nothing listens, %G_IO_ERROR_HOST_NOT_FOUND, or %G_IO_ERROR_NOT_SUPPORTED when the receiver
 * speaks no common ALPN; those are reasons to retry over HTTP. %AS_ERROR_PERMISSION_DENIED
 * (pin mismatch, untrusted certificate) is not: the peer is not who it claims to be.
 *
 * With as_quic_client_set_alpn(%AS_QUIC_ALPN_V2) the client speaks the native protocol
 * instead: the connection authenticates once (as_quic_client_set_token(), checked when
 * connecting), and as_quic_client_v2_upload_fd_async() uploads resumable chunked tasks that share
 * the receiver's chunk store with HTTP; the 0.x upload functions are refused on such a client.
 *
 * Runs in the thread-default GMainContext of its creator; results are delivered from an idle
 * callback there, never from inside the QUIC stack, so callbacks may start or cancel uploads
 * or close the client.
 */

#define AS_TYPE_QUIC_CLIENT (as_quic_client_get_type())
G_DECLARE_FINAL_TYPE(AsQuicClient, as_quic_client, AS, QUIC_CLIENT, GObject)

/* a QUIC peer that has not finished its handshake by then is given up (HTTP fallback) */
#define AS_QUIC_CLIENT_DEFAULT_HANDSHAKE_TIMEOUT_MS 3000
#define AS_QUIC_CLIENT_DEFAULT_IDLE_TIMEOUT_MS	    30000
/* read-ahead from disk, bounded per upload and per connection; must cover the bandwidth-delay
 * product for one file to fill the path (8 MiB = 1.3 Gbit/s at 50 ms) */
#define AS_QUIC_CLIENT_READ_SIZE	 (1024 * 1024)
#define AS_QUIC_CLIENT_STREAM_BUFFER_MAX (8 * 1024 * 1024)
#define AS_QUIC_CLIENT_CONN_BUFFER_MAX	 (32 * 1024 * 1024)

/**
 * AsQuicV2UploadResult:
 * @saved_as: the relative path the receiver published the file as
 * @sha256: the file's SHA-256 as the receiver computed it
 * @size: the file size
 * @total_chunks: chunks of the file
 * @chunks_sent: chunks sent by this upload
 * @chunks_skipped: chunks the receiver already held (a resumed task)
 *
 * The outcome of as_quic_client_v2_upload_fd_async().
 **/
typedef struct {
	gchar *saved_as;
	gchar *sha256;
	guint64 size;
	guint32 total_chunks;
	guint32 chunks_sent;
	guint32 chunks_skipped;
} AsQuicV2UploadResult;

void as_quic_v2_upload_result_free(AsQuicV2UploadResult *result);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(AsQuicV2UploadResult, as_quic_v2_upload_result_free)

/**
 * AsQuicClientStats:
 *
 * A snapshot of the current connection (zeroes when there is none) and counters since the
 * client was created.
 **/
/* with a rate limit, files are read in pieces this big, each paced before it is read; the
 * limiter is rechecked this often while a read waits, so a new rate applies quickly */
#define AS_QUIC_CLIENT_LIMITED_READ_SIZE (64 * 1024)
#define AS_QUIC_CLIENT_RATE_RECHECK_MS	 250

typedef struct {
	gboolean connected;
	guint64 smoothed_rtt_us;
	guint64 min_rtt_us;
	guint64 cwnd;
	guint64 bytes_in_flight;
	guint64 delivery_rate; /* bytes per second, as ngtcp2 estimates it */
	guint64 body_bytes_sent;
	guint64 connections;
	guint64 uploads_completed;
	guint64 uploads_failed;
} AsQuicClientStats;

AsQuicClient *as_quic_client_new(const gchar *host, guint16 port);
void as_quic_client_set_alpn(AsQuicClient *self, const gchar *alpn);
void as_quic_client_set_pin(AsQuicClient *self, const gchar *sha256_hex);
void as_quic_client_set_ca_file(AsQuicClient *self, const gchar *ca_file);
void as_quic_client_set_insecure(AsQuicClient *self, gboolean insecure);
void as_quic_client_set_handshake_timeout_ms(AsQuicClient *self, guint timeout_ms);
void as_quic_client_set_idle_timeout_ms(AsQuicClient *self, guint timeout_ms);
void as_quic_client_set_cc_algo(AsQuicClient *self, AsQuicCcAlgo cc_algo);
void
as_quic_client_set_limiters(AsQuicClient *self, AsRateLimiter *limiter_a, AsRateLimiter *limiter_b);

void as_quic_client_connect_async(AsQuicClient *self,
				  GCancellable *cancellable,
				  GAsyncReadyCallback callback,
				  gpointer user_data);
gboolean as_quic_client_connect_finish(AsQuicClient *self, GAsyncResult *res, GError **error);
gboolean as_quic_client_is_connected(AsQuicClient *self);
const gchar *as_quic_client_get_peer_fingerprint(AsQuicClient *self);
const gchar *as_quic_client_get_remote_address(AsQuicClient *self);

void as_quic_client_upload_async(AsQuicClient *self,
				 const gchar *name,
				 GInputStream *stream,
				 guint64 size,
				 const gchar *token,
				 const gchar *sha256,
				 GCancellable *cancellable,
				 GAsyncReadyCallback callback,
				 gpointer user_data);
void as_quic_client_upload_fd_async(AsQuicClient *self,
				    const gchar *name,
				    int fd,
				    guint64 offset,
				    guint64 size,
				    const gchar *token,
				    const gchar *sha256,
				    GCancellable *cancellable,
				    GAsyncReadyCallback callback,
				    gpointer user_data);
gchar *as_quic_client_upload_finish(AsQuicClient *self, GAsyncResult *res, GError **error);
void as_quic_client_request_async(AsQuicClient *self,
				  GBytes *request,
				  GCancellable *cancellable,
				  GAsyncReadyCallback callback,
				  gpointer user_data);
gchar *as_quic_client_request_finish(AsQuicClient *self, GAsyncResult *res, GError **error);

void as_quic_client_request_bytes_async(AsQuicClient *self,
					GBytes *request,
					GCancellable *cancellable,
					GAsyncReadyCallback callback,
					gpointer user_data);
GBytes *as_quic_client_request_bytes_finish(AsQuicClient *self, GAsyncResult *res, GError **error);

/* aerosync/2 (set the ALPN to AS_QUIC_ALPN_V2 first) */
void as_quic_client_set_token(AsQuicClient *self, const gchar *token);
void as_quic_client_v2_upload_fd_async(AsQuicClient *self,
				       const gchar *path,
				       int fd,
				       guint64 offset,
				       guint64 size,
				       const gchar *task_id,
				       guint64 chunk_size,
				       const gchar *sha256,
				       GCancellable *cancellable,
				       GAsyncReadyCallback callback,
				       gpointer user_data);
AsQuicV2UploadResult *
as_quic_client_v2_upload_finish(AsQuicClient *self, GAsyncResult *res, GError **error);

void as_quic_client_get_stats(AsQuicClient *self, AsQuicClientStats *stats);
void as_quic_client_close(AsQuicClient *self);

G_END_DECLS
