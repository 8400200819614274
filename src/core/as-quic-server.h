/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>

#include "as-quic-v2.h"
#include "as-quic.h"
#include "as-tls-identity.h"

G_BEGIN_DECLS

/*
 * AsQuicServer: the QUIC receiver of aerosyncd, for the AeroSync 0.x stream framing (ALPN
 * `aerosync/1` and `aerosync`): each bidirectional stream carries `UPLOAD:<name>:<size>[:<token>
 * [:<receipt>]]\n`, an optional `HASH:<sha256>\n`, exactly <size> bytes and FIN, and gets
 * `SUCCESS` or `ERROR:<msg>` and FIN back. Streams of one connection run concurrently.
 *
 * It runs in the thread-default GMainContext of its creator (socket sources and one timer per
 * connection, no thread of its own) and never writes files: the daemon provides an
 * #AsQuicIngest, which receives each upload's header, its body in order and its end, and
 * replies when it has verified and published the file. Flow-control credit is granted to the
 * sender only as the ingest accepts data, so a slow disk slows the sender and memory per
 * connection stays bounded by the receive windows below.
 *
 * Integration sketch:
 *
 *   identity = as_tls_identity_new_for_options(tls_cert, tls_key, state_dir, &error);
 *   server = as_quic_server_new(identity, &ingest_vtable, engine, NULL);
 *   as_quic_server_listen(server, bind_address, quic_port, &error);   // "::" = both families
 *   ... begin(): authenticate info->token, confine info->name, open staging, *handle = transfer
 *   ... data(): queue the bytes for the disk writer; return FALSE above a high-water mark and
 *       call as_quic_server_resume_stream(server, handle) once it drained
 *   ... end(): finish the staged file, compare with info->sha256, publish, then call
 *       reply(reply_data, TRUE, NULL) or reply(reply_data, FALSE, as_quic_framing_error_message())
 *   ... abort(): discard the staged file
 *   as_quic_server_close(server) at shutdown.
 *
 * The native protocol, ALPN `aerosync/2` (doc/protocol.md), is offered once
 * as_quic_server_set_v2_ingest() gave it an #AsQuicV2Ingest (as_quic_v2_store_attach() does, for
 * a chunk store): the connection authenticates once on a control stream, every file is a
 * resumable chunked task on its own stream, and chunk data goes to the ingest with the same
 * credit-as-the-disk-takes-it backpressure.
 *
 * Security: a flood of Initials gets stateless Retry once AS_QUIC_SERVER_DEFAULT_RETRY_THRESHOLD
 * handshakes are in progress and refusal beyond the connection and handshake limits; packets
 * for unknown connections get (rate-limited) stateless resets whose secret, like the Retry
 * token secret, is derived from the TLS key and so survives restarts.
 */

#define AS_TYPE_QUIC_SERVER (as_quic_server_get_type())
G_DECLARE_FINAL_TYPE(AsQuicServer, as_quic_server, AS, QUIC_SERVER, GObject)

/* defaults; the setters change them for connections accepted afterwards */
#define AS_QUIC_SERVER_DEFAULT_IDLE_TIMEOUT_MS 30000
#define AS_QUIC_SERVER_DEFAULT_MAX_CONNECTIONS 256
/* handshakes in progress before new clients must prove their address with a Retry */
#define AS_QUIC_SERVER_DEFAULT_RETRY_THRESHOLD 64
/* handshakes in progress beyond which even validated clients are refused */
#define AS_QUIC_SERVER_DEFAULT_MAX_HANDSHAKES 128
/* aerosync/2: chunk replies owed on one stream before the server stops granting it credit */
#define AS_QUIC_SERVER_V2_MAX_PENDING_CHUNKS 4
/* aerosync/2: events queued on a control stream the sender does not read are dropped past this */
#define AS_QUIC_SERVER_V2_EVENT_BUFFER_MAX (256 * 1024)
/* aerosync/2: at most one progress event per file this often */
#define AS_QUIC_SERVER_V2_PROGRESS_INTERVAL_US (250 * 1000)
/* concurrent upload streams per connection */
#define AS_QUIC_SERVER_DEFAULT_MAX_STREAMS 128
/* receive windows: initial, and the maximum they auto-tune to while the ingest keeps up (enough
 * for 1 Gbit/s at 250 ms); they bound what one connection can make the server and the ingest
 * hold, buffered out of order or queued for the disk. The ingest should also watch its global
 * queue: max connections x max window is the worst case */
#define AS_QUIC_SERVER_STREAM_WINDOW	 (2 * 1024 * 1024)
#define AS_QUIC_SERVER_MAX_STREAM_WINDOW (16 * 1024 * 1024)
#define AS_QUIC_SERVER_CONN_WINDOW	 (8 * 1024 * 1024)
#define AS_QUIC_SERVER_MAX_CONN_WINDOW	 (32 * 1024 * 1024)

/**
 * AsQuicUploadInfo:
 * @name: the file name as sent; not sanitized, the ingest must confine it
 * @size: the exact number of body bytes announced
 * @token: (nullable): the auth token; never log it
 * @receipt: (nullable): the 0.2+ receipt id
 * @sha256: (nullable): the announced SHA-256 of the body, lower-case hex; the ingest verifies it
 *   before it replies success
 * @peer: the peer address, e.g. `192.0.2.1:50000` or `[2001:db8::1]:50000`
 * @alpn: the negotiated ALPN, `aerosync` or `aerosync/1`
 * @connection_id: a number unique to the QUIC connection within this server, to group the
 *   streams of one sender
 *
 * What the server knows about an upload stream once its header is parsed.
 **/
typedef struct {
	const gchar *name;
	guint64 size;
	const gchar *token;
	const gchar *receipt;
	const gchar *sha256;
	const gchar *peer;
	const gchar *alpn;
	guint64 connection_id;
} AsQuicUploadInfo;

/**
 * AsQuicReplyFunc:
 * @reply_data: what AsQuicIngest.end() was given
 * @success: %TRUE to reply `SUCCESS`
 * @error_message: (nullable): without @success, the text after `ERROR:`, e.g. `Unauthorized`;
 *   as_quic_framing_error_message() maps a #GError to the usual texts
 *
 * Answers an upload: the reply and FIN go out on its stream. Call it exactly once, from the
 * thread of the server's main context; it is safe after the connection died (then it only frees
 * @reply_data).
 **/
typedef void (*AsQuicReplyFunc)(gpointer reply_data, gboolean success, const gchar *error_message);

/**
 * AsQuicIngest:
 * @begin: a header was parsed. Return %TRUE and set *@stream_handle (non-%NULL) to accept the
 *   upload, or %FALSE with an #AsError to refuse it; the error becomes the reply
 *   (%AS_ERROR_PERMISSION_DENIED is `ERROR:Unauthorized`, %AS_ERROR_TOO_LARGE
 *   `ERROR:File too large: ...`), and the sender is told to stop sending.
 * @data: body bytes, in order, never more than the announced size in total. The bytes are only
 *   valid during the call: copy them. Return %TRUE to keep the sender going; %FALSE pauses the
 *   stream: the server stops granting it (and its connection) flow-control credit until
 *   as_quic_server_resume_stream() is called. Data already on its way may still arrive while
 *   paused and must be accepted too; it is bounded by the receive windows.
 * @end: the whole body arrived (the size matched at FIN). Verify the hash, publish, then call
 *   @reply with @reply_data, possibly later. abort() is never called after end().
 * @abort: the stream will not complete: the sender reset it, sent too little or too much, or the
 *   connection died. Discard what was staged. The handle is not used again.
 *
 * How the server hands upload streams to the daemon. All four are called from the server's main
 * context and may not call back into the server except for as_quic_server_resume_stream().
 **/
typedef struct {
	gboolean (*begin)(gpointer user_data,
			  const AsQuicUploadInfo *info,
			  gpointer *stream_handle,
			  GError **error);
	gboolean (*data)(gpointer user_data, gpointer stream_handle, const guint8 *data, gsize len);
	void (*end)(gpointer user_data,
		    gpointer stream_handle,
		    AsQuicReplyFunc reply,
		    gpointer reply_data);
	void (*abort)(gpointer user_data, gpointer stream_handle, const gchar *reason);
} AsQuicIngest;

/**
 * AsQuicV2FileInfo:
 * @task_id: the resumable task id, `[A-Za-z0-9_-]{1,64}`
 * @path: the relative path as sent; not sanitized, the ingest must confine it
 * @size: the file size
 * @chunk_size: the chunk size (at least %AS_QUIC_V2_MIN_CHUNK_SIZE)
 * @total_chunks: max(1, ceil(@size / @chunk_size))
 * @sha256: (nullable): the announced SHA-256 of the whole file, lower-case hex
 * @peer: the peer address
 * @connection_id: the QUIC connection, as in #AsQuicUploadInfo
 *
 * A file stream of ALPN `aerosync/2`, once its FILE frame is parsed. The connection has
 * authenticated by then.
 **/
typedef struct {
	const gchar *task_id;
	const gchar *path;
	guint64 size;
	guint64 chunk_size;
	guint32 total_chunks;
	const gchar *sha256;
	const gchar *peer;
	guint64 connection_id;
} AsQuicV2FileInfo;

/**
 * AsQuicV2ChunkReplyFunc:
 * @reply_data: what chunk_end() was given
 * @chunks_done: with success, how many distinct chunks of the task are stored now
 * @bytes_done: with success, how many bytes of the task are stored now
 * @error: (nullable): %NULL if the chunk is verified and marked in the chunk store; else why not
 *   (%AS_ERROR_HASH_MISMATCH for a digest that does not match), which fails the stream
 *
 * Call exactly once, from the server's main context, possibly from inside chunk_end().
 **/
typedef void (*AsQuicV2ChunkReplyFunc)(gpointer reply_data,
				       guint32 chunks_done,
				       guint64 bytes_done,
				       const GError *error);

/**
 * AsQuicV2FileReplyFunc:
 * @reply_data: what file_end() was given
 * @saved_as: with success, the relative path the file was published as
 * @sha256: with success, its SHA-256
 * @error: (nullable): %NULL on success
 *
 * Call exactly once, from the server's main context, possibly from inside file_end().
 **/
typedef void (*AsQuicV2FileReplyFunc)(gpointer reply_data,
				      const gchar *saved_as,
				      const gchar *sha256,
				      const GError *error);

/**
 * AsQuicV2Ingest:
 * @authenticate: the HELLO of a connection: accept @token (%NULL when none was sent) or fail
 *   with %AS_ERROR_PERMISSION_DENIED. Called once per connection; until it succeeded every file
 *   stream is refused.
 * @file_begin: a FILE frame. Open or create the task and set the bits of the chunks already
 *   held in @have ((@info->total_chunks + 7) / 8 zeroed bytes), then return %TRUE with a
 *   non-%NULL *@file_handle. If the task has completed before, set *@done_saved_as and
 *   *@done_sha256 (newly allocated) and return %TRUE with no handle: the sender is told at once.
 *   %FALSE with an error refuses the stream.
 * @chunk_begin: a CHUNK frame whose index, offset and length match the file. Set a non-%NULL
 *   *@chunk_handle. Chunks of one file come one after another on its stream, but a chunk may
 *   begin before the previous one's reply. A chunk that is already stored must still be accepted
 *   (its data dropped): another connection may have sent it meanwhile.
 * @chunk_data: the chunk's bytes, in order; copy them. %FALSE pauses the stream as
 *   #AsQuicIngest's data() does, until as_quic_server_resume_stream() with the *file* handle.
 * @chunk_end: all the chunk's bytes arrived; @sha256 is the digest the sender computed. Verify,
 *   mark the chunk done, then call @reply.
 * @file_end: the sender finished the stream and every chunk reply was a success. Verify the
 *   whole file against @info->sha256 if there was one, publish, then call @reply.
 * @file_abort: the stream will not complete (reset, connection lost, a failed chunk). Forget
 *   the chunks begun and not ended, keep the ones stored: the task stays resumable. Replies
 *   still owed may be called afterwards and do nothing. Never called after file_end().
 *
 * How the server hands `aerosync/2` connections to the daemon; see doc/protocol.md. All are
 * called from the server's main context.
 **/
typedef struct {
	gboolean (*authenticate)(gpointer user_data,
				 const gchar *token,
				 const gchar *peer,
				 GError **error);
	gboolean (*file_begin)(gpointer user_data,
			       const AsQuicV2FileInfo *info,
			       guint8 *have,
			       gpointer *file_handle,
			       gchar **done_saved_as,
			       gchar **done_sha256,
			       GError **error);
	gboolean (*chunk_begin)(gpointer user_data,
				gpointer file_handle,
				guint32 index,
				guint64 offset,
				guint64 length,
				gpointer *chunk_handle,
				GError **error);
	gboolean (*chunk_data)(gpointer user_data,
			       gpointer file_handle,
			       gpointer chunk_handle,
			       const guint8 *data,
			       gsize len);
	void (*chunk_end)(gpointer user_data,
			  gpointer file_handle,
			  gpointer chunk_handle,
			  const gchar *sha256,
			  AsQuicV2ChunkReplyFunc reply,
			  gpointer reply_data);
	void (*file_end)(gpointer user_data,
			 gpointer file_handle,
			 AsQuicV2FileReplyFunc reply,
			 gpointer reply_data);
	void (*file_abort)(gpointer user_data, gpointer file_handle, const gchar *reason);
} AsQuicV2Ingest;

/**
 * AsQuicServerStats:
 *
 * Counters since the server was created.
 **/
typedef struct {
	guint64 datagrams_received;
	guint64 datagrams_dropped; /* undecodable, unknown or refused */
	guint64 connections_accepted;
	guint64 connections_refused; /* over a limit */
	guint64 retries_sent;
	guint64 version_negotiations_sent;
	guint64 stateless_resets_sent;
	guint64 uploads_completed;
	guint64 uploads_failed;
	guint64 headers_fragmented; /* upload headers that arrived in more than one piece */
	guint64 v2_chunks_received; /* aerosync/2 chunks stored */
	guint64 v2_auth_failures;
	guint n_connections;
	guint n_handshakes;
} AsQuicServerStats;

AsQuicServer *as_quic_server_new(AsTlsIdentity *identity,
				 const AsQuicIngest *ingest,
				 gpointer user_data,
				 GDestroyNotify user_data_destroy);
void as_quic_server_set_v2_ingest(AsQuicServer *self,
				  const AsQuicV2Ingest *ingest,
				  gpointer user_data,
				  GDestroyNotify user_data_destroy);
void as_quic_server_set_idle_timeout_ms(AsQuicServer *self, guint idle_timeout_ms);
void as_quic_server_set_max_connections(AsQuicServer *self, guint max_connections);
void as_quic_server_set_retry_threshold(AsQuicServer *self, guint retry_threshold);
void as_quic_server_set_max_handshakes(AsQuicServer *self, guint max_handshakes);
void as_quic_server_set_max_streams(AsQuicServer *self, guint max_streams);
void as_quic_server_set_cc_algo(AsQuicServer *self, AsQuicCcAlgo cc_algo);
gboolean
as_quic_server_listen(AsQuicServer *self, const gchar *address, guint16 port, GError **error);
guint16 as_quic_server_get_port(AsQuicServer *self);
void as_quic_server_resume_stream(AsQuicServer *self, gpointer stream_handle);
void as_quic_server_get_stats(AsQuicServer *self, AsQuicServerStats *stats);
void as_quic_server_close(AsQuicServer *self);

G_END_DECLS
