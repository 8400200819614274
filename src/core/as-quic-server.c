/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "AsQuicServer"

#include "config.h"

#include <ngtcp2/ngtcp2_crypto.h>
#include <string.h>

#include "as-error.h"
#include "as-quic-conn.h"
#include "as-quic-framing.h"
#include "as-quic-server.h"
#include "as-sha256.h"

/* secrets for stateless reset tokens and Retry tokens, derived from the TLS key so they
 * survive a restart */
#define AS_QUIC_SERVER_SECRET_SIZE 32
/* a Retry token is good for this long */
#define AS_QUIC_SERVER_RETRY_TOKEN_TIMEOUT (10 * NGTCP2_SECONDS)
/* the server's own handshake deadline */
#define AS_QUIC_SERVER_HANDSHAKE_TIMEOUT (10 * NGTCP2_SECONDS)
/* CIDs a client may keep in reserve for migration */
#define AS_QUIC_SERVER_ACTIVE_CID_LIMIT 4
/* answering unknown short-header packets: at most this many resets per second, and never one
 * as large as the packet that triggered it (RFC 9000 10.3) */
#define AS_QUIC_SERVER_RESETS_PER_SECOND 100
#define AS_QUIC_SERVER_RESET_MAX_LEN	 41
#define AS_QUIC_SERVER_RESET_MIN_LEN                                                               \
	(1 + NGTCP2_MIN_STATELESS_RESET_RANDLEN + NGTCP2_STATELESS_RESET_TOKENLEN)
/* RFC 9000 14.1: version negotiation only for datagrams of Initial size */
#define AS_QUIC_SERVER_MIN_INITIAL_SIZE 1200
/* a bind to "any" port is shared by both families; retry if the other family's port is taken */
#define AS_QUIC_SERVER_BIND_ATTEMPTS 8

typedef struct {
	guint8 len;
	guint8 data[NGTCP2_MAX_CIDLEN];
} AsQuicCidKey;

typedef struct _AsQuicServerConn AsQuicServerConn;
typedef struct _AsQuicServerStream AsQuicServerStream;

typedef struct {
	AsQuicServerStream *stream; /* unowned, NULL once the stream is gone */
	GList link;		    /* aerosync/2: in AsQuicServerStream.v2_replies */
	guint32 index;		    /* aerosync/2: the chunk a chunk reply is for */
} AsQuicReplyCtx;

/* where an aerosync/2 stream is between frames */
typedef enum {
	AS_QUIC_V2_RX_FRAME,  /* reading a frame into ->header */
	AS_QUIC_V2_RX_DATA,   /* handing a chunk's bytes to the ingest */
	AS_QUIC_V2_RX_DIGEST, /* reading the chunk's SHA-256 digest */
} AsQuicV2RxState;

typedef enum {
	AS_QUIC_SERVER_STREAM_STATE_HEADER, /* reading the UPLOAD/HASH lines */
	AS_QUIC_SERVER_STREAM_STATE_BODY,   /* handing body bytes to the ingest */
	AS_QUIC_SERVER_STREAM_STATE_ENDED,  /* ingest end() called, waiting for its reply */
	AS_QUIC_SERVER_STREAM_STATE_DONE,   /* replied, refused or failed: nothing more to read */
} AsQuicServerStreamState;

struct _AsQuicServerStream {
	AsQuicSendStream send; /* the reply */
	AsQuicServerConn *conn;
	int64_t id;
	AsQuicServerStreamState state;
	GByteArray *header; /* owned, while HEADER */
	AsQuicUploadHeader hdr;
	gpointer handle; /* the ingest's, while BODY */
	guint64 body_received;
	guint64 credit_held;	/* consumed while paused, not yet granted back */
	guint64 credit_release; /* to grant at the next write pass */
	gboolean paused;
	gboolean resume_requested;
	gboolean want_shutdown_write;
	GList op_link; /* in AsQuicServerConn.ops while op_link.data != NULL */
	AsQuicReplyCtx *reply_ctx;
	/* aerosync/2 */
	gboolean v2;
	gboolean control;      /* the connection's control stream */
	AsQuicV2RxState v2_rx; /* while BODY */
	gchar *task_id;	       /* owned, once FILE arrived */
	guint64 chunk_size;    /* of the file */
	guint32 total_chunks;  /* of the file */
	gpointer chunk_handle; /* the ingest's, while DATA or DIGEST */
	guint32 chunk_index;   /* while DATA or DIGEST */
	guint64 chunk_left;    /* data bytes of the chunk still to come */
	guint8 digest[AS_QUIC_V2_DIGEST_SIZE];
	guint digest_len;
	guint n_pending;	 /* chunk replies owed by the ingest */
	gboolean paused_pending; /* too many of those: credit held */
	gboolean fin_received;
	GQueue v2_replies; /* (element-type AsQuicReplyCtx) owed to this stream */
	gint64 last_progress_us;
	guint64 bytes_done;
};

struct _AsQuicServerConn {
	AsQuicConn base; /* first: the callbacks cast */
	AsQuicServer *server;
	guint64 id;
	gchar *peer;
	gchar *alpn;
	gboolean handshake_done;
	gboolean v2;		     /* ALPN aerosync/2 */
	gboolean authenticated;	     /* aerosync/2: HELLO accepted */
	AsQuicServerStream *control; /* aerosync/2: unowned, NULL until HELLO */
	GArray *cids;		     /* (element-type AsQuicCidKey) registered in server->cids */
	GHashTable *streams;	     /* stream id -> (owned) AsQuicServerStream */
	GQueue ops;		     /* (element-type AsQuicServerStream) with deferred work */
};

struct _AsQuicServer {
	GObject parent_instance;
	AsTlsIdentity *identity; /* owned */
	AsQuicIngest ingest;
	gpointer ingest_data;
	GDestroyNotify ingest_data_destroy;
	AsQuicV2Ingest v2_ingest;
	gboolean has_v2;
	gpointer v2_ingest_data;
	GDestroyNotify v2_ingest_data_destroy;
	GMainContext *context; /* owned */
	GPtrArray *sockets;    /* (element-type AsQuicSocket) owned */
	GHashTable *cids;      /* (owned) AsQuicCidKey -> AsQuicServerConn */
	GHashTable *conns;     /* set of (owned) AsQuicServerConn */
	GHashTable *handles;   /* ingest handle -> AsQuicServerStream */
	guint8 reset_secret[AS_QUIC_SERVER_SECRET_SIZE];
	guint8 token_secret[AS_QUIC_SERVER_SECRET_SIZE];
	guint64 next_connection_id;
	guint idle_timeout_ms;
	guint max_connections;
	guint retry_threshold;
	guint max_handshakes;
	guint max_streams;
	AsQuicCcAlgo cc_algo;
	guint n_handshakes;
	gint64 reset_window_start_us;
	guint reset_window_count;
	AsQuicServerStats stats;
};

G_DEFINE_TYPE(AsQuicServer, as_quic_server, G_TYPE_OBJECT)

static const gnutls_datum_t as_quic_server_alpns[] = {
	{(guchar *)AS_QUIC_ALPN_V1, sizeof(AS_QUIC_ALPN_V1) - 1},
	{(guchar *)AS_QUIC_ALPN_LEGACY, sizeof(AS_QUIC_ALPN_LEGACY) - 1},
};

/* with a v2 ingest: the native protocol first, then the 0.x framing */
static const gnutls_datum_t as_quic_server_alpns_v2[] = {
	{(guchar *)AS_QUIC_ALPN_V2, sizeof(AS_QUIC_ALPN_V2) - 1},
	{(guchar *)AS_QUIC_ALPN_V1, sizeof(AS_QUIC_ALPN_V1) - 1},
	{(guchar *)AS_QUIC_ALPN_LEGACY, sizeof(AS_QUIC_ALPN_LEGACY) - 1},
};

/* ---- CID map ---- */

/* FNV-1a keyed with a per-process random seed: peers choose some of these bytes */
static guint
as_quic_cid_key_hash(gconstpointer key)
{
	static gsize seed_once = 0;
	static guint64 seed = 0;
	const AsQuicCidKey *cid = key;
	guint64 h;

	if (g_once_init_enter(&seed_once)) {
		as_quic_random(&seed, sizeof(seed));
		g_once_init_leave(&seed_once, 1);
	}
	h = 0xcbf29ce484222325ULL ^ seed;
	for (guint i = 0; i < cid->len; i++) {
		h ^= cid->data[i];
		h *= 0x100000001b3ULL;
	}
	h ^= h >> 29;
	return (guint)(h ^ (h >> 32));
}

static gboolean
as_quic_cid_key_equal(gconstpointer a, gconstpointer b)
{
	const AsQuicCidKey *ka = a;
	const AsQuicCidKey *kb = b;
	return ka->len == kb->len && memcmp(ka->data, kb->data, ka->len) == 0;
}

static void
as_quic_cid_key_set(AsQuicCidKey *key, const guint8 *data, gsize len)
{
	memset(key, 0, sizeof(*key));
	key->len = (guint8)MIN(len, sizeof(key->data));
	memcpy(key->data, data, key->len);
}

static void
as_quic_server_register_cid(AsQuicServerConn *sc, const guint8 *data, gsize len)
{
	AsQuicServer *self = sc->server;
	AsQuicCidKey key;

	as_quic_cid_key_set(&key, data, len);
	if (g_hash_table_contains(self->cids, &key))
		return;
	g_hash_table_insert(self->cids, g_memdup2(&key, sizeof(key)), sc);
	g_array_append_val(sc->cids, key);
}

static void
as_quic_server_unregister_cid(AsQuicServerConn *sc, const guint8 *data, gsize len)
{
	AsQuicServer *self = sc->server;
	AsQuicCidKey key;

	as_quic_cid_key_set(&key, data, len);
	if (g_hash_table_lookup(self->cids, &key) == sc)
		g_hash_table_remove(self->cids, &key);
	for (guint i = 0; i < sc->cids->len; i++) {
		if (as_quic_cid_key_equal(&g_array_index(sc->cids, AsQuicCidKey, i), &key)) {
			g_array_remove_index_fast(sc->cids, i);
			break;
		}
	}
}

/* ---- streams ---- */

static void
as_quic_server_stream_queue_op(AsQuicServerStream *st)
{
	if (st->op_link.data == NULL) {
		st->op_link.data = st;
		g_queue_push_tail_link(&st->conn->ops, &st->op_link);
	}
	as_quic_conn_schedule(&st->conn->base);
}

static void
as_quic_server_stream_forget_handle(AsQuicServerStream *st)
{
	if (st->handle == NULL)
		return;
	g_hash_table_remove(st->conn->server->handles, st->handle);
	st->handle = NULL;
}

static void
as_quic_server_stream_abort(AsQuicServerStream *st, const gchar *reason)
{
	AsQuicServer *self = st->conn->server;
	gpointer handle = st->handle;

	if (handle == NULL)
		return;
	as_quic_server_stream_forget_handle(st);
	self->stats.uploads_failed++;
	g_debug("%s: upload on stream %" G_GINT64_FORMAT " aborted: %s", st->conn->peer, st->id,
		reason);
	if (st->v2) {
		st->chunk_handle = NULL;
		self->v2_ingest.file_abort(self->v2_ingest_data, handle, reason);
		return;
	}
	self->ingest.abort(self->ingest_data, handle, reason);
}

static void
as_quic_server_stream_free(AsQuicServerStream *st)
{
	if (st->reply_ctx != NULL)
		st->reply_ctx->stream = NULL;
	while (st->v2_replies.head != NULL) {
		AsQuicReplyCtx *ctx = st->v2_replies.head->data;
		g_queue_unlink(&st->v2_replies, &ctx->link);
		ctx->stream = NULL;
	}
	if (st->conn->control == st)
		st->conn->control = NULL;
	g_free(st->task_id);
	if (st->op_link.data != NULL)
		g_queue_unlink(&st->conn->ops, &st->op_link);
	as_quic_conn_unqueue_stream(&st->conn->base, &st->send);
	as_quic_send_stream_clear(&st->send);
	as_quic_upload_header_clear(&st->hdr);
	if (st->header != NULL)
		g_byte_array_unref(st->header);
	g_free(st);
}

static void
as_quic_server_stream_send_reply(AsQuicServerStream *st, const gchar *text)
{
	gsize len = strlen(text);

	if (st->send.shut)
		return;
	as_quic_conn_append(&st->conn->base, &st->send, g_memdup2(text, len), len);
	as_quic_conn_finish_stream(&st->conn->base, &st->send);
}

/* refuses or fails the stream: abort the ingest side, reply, and stop the sender */
static void as_quic_server_v2_event(AsQuicServerStream *st,
				    AsQuicV2EventKind kind,
				    guint64 bytes_done,
				    const gchar *detail);
static void
as_quic_server_stream_send_frame(AsQuicServerStream *st, GByteArray *frame, gboolean fin);

static void
as_quic_server_stream_fail(AsQuicServerStream *st, const GError *error)
{
	g_autofree gchar *reply = NULL;

	if (st->handle != NULL)
		as_quic_server_stream_abort(st, error->message);
	else
		st->conn->server->stats.uploads_failed++;
	st->state = AS_QUIC_SERVER_STREAM_STATE_DONE;
	/* credit held back for a paused stream goes back to the connection */
	if (st->credit_held > 0 || st->credit_release > 0) {
		ngtcp2_conn_extend_max_offset(st->conn->base.conn,
					      st->credit_held + st->credit_release);
		st->credit_held = 0;
		st->credit_release = 0;
	}
	if (st->v2) {
		if (st->task_id != NULL)
			as_quic_server_v2_event(st, AS_QUIC_V2_EVENT_FAILED, st->bytes_done,
						error->message);
		as_quic_server_stream_send_frame(st, as_quic_v2_encode_error(error), TRUE);
	} else {
		reply = as_quic_framing_format_error_reply(error);
		as_quic_server_stream_send_reply(st, reply);
	}
	/* STOP_SENDING; ngtcp2 returns the connection credit of anything still in flight */
	(void)ngtcp2_conn_shutdown_stream_read(st->conn->base.conn, st->id,
					       AS_QUIC_APP_ERROR_REFUSED);
}

static void
as_quic_server_reply_cb(gpointer reply_data, gboolean success, const gchar *error_message)
{
	AsQuicReplyCtx *ctx = reply_data;
	AsQuicServerStream *st = ctx->stream;

	if (st != NULL) {
		AsQuicServer *self = st->conn->server;
		st->reply_ctx = NULL;
		st->state = AS_QUIC_SERVER_STREAM_STATE_DONE;
		if (success) {
			self->stats.uploads_completed++;
			as_quic_server_stream_send_reply(st, AS_QUIC_REPLY_SUCCESS);
		} else {
			g_autofree gchar *reply = g_strconcat(
				AS_QUIC_REPLY_ERROR_PREFIX,
				error_message != NULL ? error_message : "Upload failed", NULL);
			self->stats.uploads_failed++;
			g_strdelimit(reply, "\r\n", ' ');
			as_quic_server_stream_send_reply(st, reply);
		}
	}
	g_free(ctx);
}

static void
as_quic_server_stream_grant(AsQuicServerStream *st, guint64 credit)
{
	ngtcp2_conn *conn = st->conn->base.conn;

	if (credit == 0)
		return;
	(void)ngtcp2_conn_extend_max_stream_offset(conn, st->id, credit);
	ngtcp2_conn_extend_max_offset(conn, credit);
}

/* @credit: how many of these bytes arrived in this callback, and so may be granted back */
static void
as_quic_server_stream_on_body(AsQuicServerStream *st,
			      const guint8 *data1,
			      gsize len1,
			      const guint8 *data2,
			      gsize len2,
			      guint64 credit,
			      gboolean fin)
{
	AsQuicServer *self = st->conn->server;
	gsize len = len1 + len2;
	gboolean want_more = TRUE;

	if (st->body_received + len > st->hdr.size) {
		g_autoptr(GError) error = g_error_new(
			AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
			"body longer than the announced %" G_GUINT64_FORMAT " bytes", st->hdr.size);
		ngtcp2_conn_extend_max_offset(st->conn->base.conn, credit);
		as_quic_server_stream_fail(st, error);
		return;
	}
	st->body_received += len;
	st->resume_requested = FALSE;
	if (len1 > 0 && !self->ingest.data(self->ingest_data, st->handle, data1, len1))
		want_more = FALSE;
	if (len2 > 0 && !self->ingest.data(self->ingest_data, st->handle, data2, len2))
		want_more = FALSE;
	/* a resume that raced with the data call counts */
	if (!want_more && st->resume_requested)
		want_more = TRUE;
	if (want_more) {
		as_quic_server_stream_grant(st, credit);
	} else {
		st->paused = TRUE;
		st->credit_held += credit;
	}

	if (!fin)
		return;
	if (st->body_received < st->hdr.size) {
		g_autoptr(GError) error =
			g_error_new(AS_ERROR, AS_ERROR_INCOMPLETE,
				    "received %" G_GUINT64_FORMAT " of %" G_GUINT64_FORMAT " bytes",
				    st->body_received, st->hdr.size);
		as_quic_server_stream_fail(st, error);
		return;
	}
	{
		gpointer handle = st->handle;
		AsQuicReplyCtx *ctx = g_new0(AsQuicReplyCtx, 1);

		ctx->stream = st;
		st->reply_ctx = ctx;
		st->state = AS_QUIC_SERVER_STREAM_STATE_ENDED;
		st->paused = FALSE;
		st->credit_held = 0;
		as_quic_server_stream_forget_handle(st);
		self->ingest.end(self->ingest_data, handle, as_quic_server_reply_cb, ctx);
	}
}

static void
as_quic_server_stream_on_header(AsQuicServerStream *st, const guint8 *data, gsize len, gboolean fin)
{
	AsQuicServerConn *sc = st->conn;
	AsQuicServer *self = sc->server;
	g_autoptr(GError) error = NULL;
	gsize before = st->header->len;
	gsize room = AS_QUIC_FRAMING_MAX_HEADER_SIZE - before;
	gsize take = MIN(len, room);
	gsize header_len = 0;
	gsize header_here;
	AsQuicUploadInfo info = {0};
	AsQuicFramingResult rc;

	g_byte_array_append(st->header, data, (guint)take);
	rc = as_quic_framing_parse_header(st->header->data, st->header->len, fin && take == len,
					  &st->hdr, &header_len, &error);
	if (rc == AS_QUIC_FRAMING_RESULT_NEED_MORE && take < len) {
		/* cannot happen with a parser that decides within the header limit; be safe */
		rc = AS_QUIC_FRAMING_RESULT_ERROR;
		g_set_error_literal(&error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT, "header too long");
	}
	if (rc == AS_QUIC_FRAMING_RESULT_NEED_MORE) {
		/* header bytes are consumed as they are buffered: bounded by the header limit */
		as_quic_server_stream_grant(st, len);
		return;
	}
	if (rc == AS_QUIC_FRAMING_RESULT_ERROR) {
		g_debug("%s: stream %" G_GINT64_FORMAT " refused: %s", sc->peer, st->id,
			error->message);
		ngtcp2_conn_extend_max_offset(sc->base.conn, len);
		as_quic_server_stream_fail(st, error);
		return;
	}

	if (before > 0)
		self->stats.headers_fragmented++;
	/* the header may end before the bytes buffered earlier did: those are body */
	header_here = header_len > before ? header_len - before : 0;
	as_quic_server_stream_grant(st, header_here);

	info.name = st->hdr.name;
	info.size = st->hdr.size;
	info.token = st->hdr.token;
	info.receipt = st->hdr.receipt;
	info.sha256 = st->hdr.sha256;
	info.peer = sc->peer;
	info.alpn = sc->alpn != NULL ? sc->alpn : AS_QUIC_ALPN_V1;
	info.connection_id = sc->id;
	if (!self->ingest.begin(self->ingest_data, &info, &st->handle, &error)) {
		if (error == NULL) {
			g_set_error_literal(&error, AS_ERROR, AS_ERROR_FAILED, "upload refused");
		}
		g_debug("%s: upload of %s refused: %s", sc->peer, st->hdr.name, error->message);
		st->handle = NULL;
		ngtcp2_conn_extend_max_offset(sc->base.conn, len - header_here);
		as_quic_server_stream_fail(st, error);
		return;
	}
	if (st->handle == NULL) {
		g_critical("ingest begin() accepted an upload without a stream handle");
		g_set_error_literal(&error, AS_ERROR, AS_ERROR_FAILED, "internal error");
		ngtcp2_conn_extend_max_offset(sc->base.conn, len - header_here);
		as_quic_server_stream_fail(st, error);
		return;
	}
	g_hash_table_insert(self->handles, st->handle, st);
	st->state = AS_QUIC_SERVER_STREAM_STATE_BODY;
	as_quic_server_stream_on_body(st, st->header->data + header_len,
				      st->header->len - header_len, data + take, len - take,
				      len - header_here, fin);
	g_clear_pointer(&st->header, g_byte_array_unref);
}

/* ---- aerosync/2 ---- */

static void
as_quic_server_stream_send_frame(AsQuicServerStream *st, GByteArray *frame, gboolean fin)
{
	gsize len;

	if (frame == NULL)
		return;
	if (st->send.shut) {
		g_byte_array_unref(frame);
		return;
	}
	len = frame->len;
	as_quic_conn_append(&st->conn->base, &st->send, g_byte_array_free(frame, FALSE), len);
	if (fin)
		as_quic_conn_finish_stream(&st->conn->base, &st->send);
}

/* events go on the control stream, dropped when the sender does not read them */
static void
as_quic_server_v2_event(AsQuicServerStream *st,
			AsQuicV2EventKind kind,
			guint64 bytes_done,
			const gchar *detail)
{
	AsQuicServerStream *control = st->conn->control;
	AsQuicV2Msg msg = {0};

	if (control == NULL || control->send.shut || control->send.fin ||
	    as_quic_send_stream_get_buffered(&control->send) > AS_QUIC_SERVER_V2_EVENT_BUFFER_MAX)
		return;
	msg.type = AS_QUIC_V2_MSG_EVENT;
	msg.kind = kind;
	msg.bytes_done = bytes_done;
	msg.size = st->hdr.size;
	msg.task_id = st->task_id;
	msg.text = (gchar *)detail;
	as_quic_server_stream_send_frame(control, as_quic_v2_encode(&msg, NULL), FALSE);
}

static void
as_quic_server_v2_release_pending(AsQuicServerStream *st)
{
	if (!st->paused_pending || st->n_pending >= AS_QUIC_SERVER_V2_MAX_PENDING_CHUNKS)
		return;
	st->paused_pending = FALSE;
	if (st->paused)
		return;
	st->credit_release += st->credit_held;
	st->credit_held = 0;
	as_quic_server_stream_queue_op(st);
}

static void
as_quic_server_v2_file_reply_cb(gpointer reply_data,
				const gchar *saved_as,
				const gchar *sha256,
				const GError *error)
{
	AsQuicReplyCtx *ctx = reply_data;
	AsQuicServerStream *st = ctx->stream;

	if (st != NULL) {
		AsQuicServer *self = st->conn->server;
		AsQuicV2Msg msg = {0};
		g_autoptr(GError) error_local = NULL;
		GByteArray *frame = NULL;

		st->reply_ctx = NULL;
		st->state = AS_QUIC_SERVER_STREAM_STATE_DONE;
		if (error == NULL) {
			msg.type = AS_QUIC_V2_MSG_DONE;
			msg.size = st->hdr.size;
			msg.sha256 = (gchar *)sha256;
			msg.path = (gchar *)saved_as;
			frame = as_quic_v2_encode(&msg, &error_local);
			if (frame == NULL) {
				g_prefix_error_literal(&error_local, "cannot reply: ");
				error = error_local;
			}
		}
		if (error == NULL) {
			self->stats.uploads_completed++;
			as_quic_server_v2_event(st, AS_QUIC_V2_EVENT_COMPLETED, st->hdr.size,
						saved_as);
			as_quic_server_stream_send_frame(st, frame, TRUE);
		} else {
			self->stats.uploads_failed++;
			as_quic_server_v2_event(st, AS_QUIC_V2_EVENT_FAILED, st->bytes_done,
						error->message);
			as_quic_server_stream_send_frame(st, as_quic_v2_encode_error(error), TRUE);
		}
	}
	g_free(ctx);
}

/* the sender finished and every chunk is settled: the ingest verifies and publishes */
static void
as_quic_server_v2_maybe_finish(AsQuicServerStream *st)
{
	AsQuicServer *self = st->conn->server;
	AsQuicReplyCtx *ctx;
	gpointer handle;

	if (st->state != AS_QUIC_SERVER_STREAM_STATE_BODY || !st->fin_received || st->n_pending > 0)
		return;
	ctx = g_new0(AsQuicReplyCtx, 1);
	ctx->stream = st;
	st->reply_ctx = ctx;
	st->state = AS_QUIC_SERVER_STREAM_STATE_ENDED;
	handle = st->handle;
	as_quic_server_stream_forget_handle(st);
	self->v2_ingest.file_end(self->v2_ingest_data, handle, as_quic_server_v2_file_reply_cb,
				 ctx);
}

static void
as_quic_server_v2_chunk_reply_cb(gpointer reply_data,
				 guint32 chunks_done,
				 guint64 bytes_done,
				 const GError *error)
{
	AsQuicReplyCtx *ctx = reply_data;
	AsQuicServerStream *st = ctx->stream;
	AsQuicV2Msg msg = {0};
	gint64 now_us;

	if (st == NULL) {
		g_free(ctx);
		return;
	}
	g_queue_unlink(&st->v2_replies, &ctx->link);
	st->n_pending--;
	if (st->state != AS_QUIC_SERVER_STREAM_STATE_BODY) {
		g_free(ctx);
		return;
	}
	if (error != NULL) {
		g_autoptr(GError) chunk_error = g_error_new(
			error->domain, error->code, "chunk %u: %s", ctx->index, error->message);
		g_free(ctx);
		as_quic_server_stream_fail(st, chunk_error);
		as_quic_conn_schedule(&st->conn->base);
		return;
	}
	st->conn->server->stats.v2_chunks_received++;
	st->bytes_done = bytes_done;
	msg.type = AS_QUIC_V2_MSG_CHUNK_OK;
	msg.index = ctx->index;
	msg.chunks_done = chunks_done;
	g_free(ctx);
	as_quic_server_stream_send_frame(st, as_quic_v2_encode(&msg, NULL), FALSE);
	now_us = g_get_monotonic_time();
	if (now_us - st->last_progress_us >= AS_QUIC_SERVER_V2_PROGRESS_INTERVAL_US) {
		st->last_progress_us = now_us;
		as_quic_server_v2_event(st, AS_QUIC_V2_EVENT_PROGRESS, bytes_done, NULL);
	}
	as_quic_server_v2_release_pending(st);
	as_quic_server_v2_maybe_finish(st);
	as_quic_conn_schedule(&st->conn->base);
}

static void
as_quic_server_v2_chunk_done(AsQuicServerStream *st)
{
	AsQuicServer *self = st->conn->server;
	AsQuicReplyCtx *ctx = g_new0(AsQuicReplyCtx, 1);
	static const gchar digits[] = "0123456789abcdef";
	gchar hex[AS_SHA256_HEX_LEN + 1];
	gpointer chunk_handle = g_steal_pointer(&st->chunk_handle);

	for (guint i = 0; i < AS_QUIC_V2_DIGEST_SIZE; i++) {
		hex[2 * i] = digits[st->digest[i] >> 4];
		hex[2 * i + 1] = digits[st->digest[i] & 0xf];
	}
	hex[AS_SHA256_HEX_LEN] = '\0';
	st->v2_rx = AS_QUIC_V2_RX_FRAME;
	st->digest_len = 0;
	ctx->stream = st;
	ctx->index = st->chunk_index;
	ctx->link.data = ctx;
	g_queue_push_tail_link(&st->v2_replies, &ctx->link);
	st->n_pending++;
	if (st->n_pending >= AS_QUIC_SERVER_V2_MAX_PENDING_CHUNKS)
		st->paused_pending = TRUE;
	self->v2_ingest.chunk_end(self->v2_ingest_data, st->handle, chunk_handle, hex,
				  as_quic_server_v2_chunk_reply_cb, ctx);
}

static gboolean
as_quic_server_v2_on_hello(AsQuicServerStream *st, AsQuicV2Msg *msg, GError **error)
{
	AsQuicServerConn *sc = st->conn;
	AsQuicServer *self = sc->server;
	g_autoptr(GError) error_local = NULL;
	AsQuicV2Msg welcome = {.type = AS_QUIC_V2_MSG_WELCOME};

	if (sc->control != NULL) {
		g_set_error_literal(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
				    "the connection already has a control stream");
		return FALSE;
	}
	sc->control = st;
	st->control = TRUE;
	if (!self->v2_ingest.authenticate(self->v2_ingest_data, msg->token, sc->peer,
					  &error_local)) {
		if (error_local == NULL)
			g_set_error_literal(&error_local, AS_ERROR, AS_ERROR_PERMISSION_DENIED,
					    "Unauthorized");
		self->stats.v2_auth_failures++;
		g_debug("%s: aerosync/2 authentication failed: %s", sc->peer, error_local->message);
		g_propagate_error(error, g_steal_pointer(&error_local));
		return FALSE;
	}
	sc->authenticated = TRUE;
	st->state = AS_QUIC_SERVER_STREAM_STATE_BODY;
	as_quic_server_stream_send_frame(st, as_quic_v2_encode(&welcome, NULL), FALSE);
	return TRUE;
}

static gboolean
as_quic_server_v2_on_file(AsQuicServerStream *st, AsQuicV2Msg *msg, GError **error)
{
	AsQuicServerConn *sc = st->conn;
	AsQuicServer *self = sc->server;
	AsQuicV2FileInfo info = {0};
	g_autofree gchar *done_saved_as = NULL;
	g_autofree gchar *done_sha256 = NULL;
	g_autoptr(GByteArray) have = NULL;
	AsQuicV2Msg reply = {0};

	if (!sc->authenticated) {
		g_set_error_literal(error, AS_ERROR, AS_ERROR_PERMISSION_DENIED,
				    "Unauthorized: no accepted HELLO on this connection");
		return FALSE;
	}
	if (!as_quic_v2_file_check(msg->size, msg->chunk_size, &st->total_chunks, error))
		return FALSE;
	st->task_id = g_strdup(msg->task_id);
	st->chunk_size = msg->chunk_size;
	st->hdr.size = msg->size;
	st->hdr.name = g_strdup(msg->path);
	info.task_id = msg->task_id;
	info.path = msg->path;
	info.size = msg->size;
	info.chunk_size = msg->chunk_size;
	info.total_chunks = st->total_chunks;
	info.sha256 = msg->sha256;
	info.peer = sc->peer;
	info.connection_id = sc->id;
	have = g_byte_array_sized_new((st->total_chunks + 7) / 8);
	g_byte_array_set_size(have, (st->total_chunks + 7) / 8);
	memset(have->data, 0, have->len);
	if (!self->v2_ingest.file_begin(self->v2_ingest_data, &info, have->data, &st->handle,
					&done_saved_as, &done_sha256, error)) {
		st->handle = NULL;
		if (error != NULL && *error == NULL)
			g_set_error_literal(error, AS_ERROR, AS_ERROR_FAILED, "upload refused");
		return FALSE;
	}
	if (st->handle == NULL) {
		if (done_saved_as == NULL || done_sha256 == NULL) {
			g_critical("v2 ingest file_begin() gave neither a handle nor a result");
			g_set_error_literal(error, AS_ERROR, AS_ERROR_FAILED, "internal error");
			return FALSE;
		}
		/* completed before: answer at once, nothing more to read */
		reply.type = AS_QUIC_V2_MSG_DONE;
		reply.size = msg->size;
		reply.sha256 = done_sha256;
		reply.path = done_saved_as;
		st->state = AS_QUIC_SERVER_STREAM_STATE_DONE;
		self->stats.uploads_completed++;
		as_quic_server_stream_send_frame(st, as_quic_v2_encode(&reply, NULL), TRUE);
		(void)ngtcp2_conn_shutdown_stream_read(sc->base.conn, st->id,
						       AS_QUIC_APP_ERROR_NONE);
		return TRUE;
	}
	g_hash_table_insert(self->handles, st->handle, st);
	st->state = AS_QUIC_SERVER_STREAM_STATE_BODY;
	st->v2_rx = AS_QUIC_V2_RX_FRAME;
	reply.type = AS_QUIC_V2_MSG_HAVE;
	reply.total_chunks = st->total_chunks;
	reply.bitmap = g_byte_array_free_to_bytes(g_steal_pointer(&have));
	as_quic_server_stream_send_frame(st, as_quic_v2_encode(&reply, NULL), FALSE);
	g_bytes_unref(reply.bitmap);
	return TRUE;
}

static gboolean
as_quic_server_v2_on_chunk(AsQuicServerStream *st, AsQuicV2Msg *msg, GError **error)
{
	AsQuicServer *self = st->conn->server;
	guint64 offset = 0, length = 0;

	if (!as_quic_v2_chunk_range(st->hdr.size, st->chunk_size, msg->index, &offset, &length)) {
		g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
			    "chunk %u past the last chunk %u", msg->index, st->total_chunks - 1);
		return FALSE;
	}
	if (msg->offset != offset || msg->length != length) {
		g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
			    "chunk %u covers %" G_GUINT64_FORMAT "+%" G_GUINT64_FORMAT
			    ", not %" G_GUINT64_FORMAT "+%" G_GUINT64_FORMAT,
			    msg->index, offset, length, msg->offset, msg->length);
		return FALSE;
	}
	if (!self->v2_ingest.chunk_begin(self->v2_ingest_data, st->handle, msg->index, offset,
					 length, &st->chunk_handle, error)) {
		st->chunk_handle = NULL;
		if (error != NULL && *error == NULL)
			g_set_error(error, AS_ERROR, AS_ERROR_FAILED, "chunk %u refused",
				    msg->index);
		return FALSE;
	}
	st->chunk_index = msg->index;
	st->chunk_left = length;
	st->digest_len = 0;
	st->v2_rx = length > 0 ? AS_QUIC_V2_RX_DATA : AS_QUIC_V2_RX_DIGEST;
	return TRUE;
}

static gboolean
as_quic_server_v2_on_frame(AsQuicServerStream *st, AsQuicV2Msg *msg, GError **error)
{
	if (st->state == AS_QUIC_SERVER_STREAM_STATE_HEADER) {
		if (msg->type == AS_QUIC_V2_MSG_HELLO)
			return as_quic_server_v2_on_hello(st, msg, error);
		if (msg->type == AS_QUIC_V2_MSG_FILE)
			return as_quic_server_v2_on_file(st, msg, error);
	} else if (!st->control && msg->type == AS_QUIC_V2_MSG_CHUNK) {
		return as_quic_server_v2_on_chunk(st, msg, error);
	}
	g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT, "unexpected frame type 0x%02x",
		    msg->type);
	return FALSE;
}

/* bytes of the frame being read that are still missing */
static gsize
as_quic_server_v2_frame_want(GByteArray *rx)
{
	guint32 payload_len;

	if (rx->len < AS_QUIC_V2_FRAME_HEADER_SIZE)
		return AS_QUIC_V2_FRAME_HEADER_SIZE - rx->len;
	payload_len = ((guint32)rx->data[1] << 24) | ((guint32)rx->data[2] << 16) |
		      ((guint32)rx->data[3] << 8) | rx->data[4];
	/* too large: the decoder refuses it from the header alone */
	if (payload_len > AS_QUIC_V2_MAX_CLIENT_PAYLOAD)
		return 0;
	return AS_QUIC_V2_FRAME_HEADER_SIZE + payload_len - rx->len;
}

/* everything an aerosync/2 stream receives: frames, chunk data and digests, in any split */
static void
as_quic_server_v2_on_data(AsQuicServerStream *st, const guint8 *data, gsize len, gboolean fin)
{
	AsQuicServer *self = st->conn->server;
	ngtcp2_conn *conn = st->conn->base.conn;
	guint64 grant = 0;
	guint64 hold = 0;
	gsize total = len;
	g_autoptr(GError) error = NULL;

	while (len > 0 && error == NULL &&
	       (st->state == AS_QUIC_SERVER_STREAM_STATE_HEADER ||
		st->state == AS_QUIC_SERVER_STREAM_STATE_BODY)) {
		if (st->state == AS_QUIC_SERVER_STREAM_STATE_HEADER ||
		    st->v2_rx == AS_QUIC_V2_RX_FRAME) {
			AsQuicV2Msg msg = {0};
			gsize frame_len = 0;
			gsize take;
			AsQuicFramingResult rc;

			if (st->control && st->state == AS_QUIC_SERVER_STREAM_STATE_BODY) {
				/* nothing more is expected from the sender on the control stream */
				g_set_error_literal(&error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
						    "unexpected data on the control stream");
				break;
			}
			take = MIN(len, MAX(as_quic_server_v2_frame_want(st->header), 1));
			g_byte_array_append(st->header, data, (guint)take);
			data += take;
			len -= take;
			grant += take;
			rc = as_quic_v2_decode(st->header->data, st->header->len,
					       AS_QUIC_V2_MAX_CLIENT_PAYLOAD, &msg, &frame_len,
					       &error);
			if (rc == AS_QUIC_FRAMING_RESULT_NEED_MORE)
				continue;
			if (rc == AS_QUIC_FRAMING_RESULT_COMPLETE) {
				g_byte_array_set_size(st->header, 0);
				(void)as_quic_server_v2_on_frame(st, &msg, &error);
				as_quic_v2_msg_clear(&msg);
			}
			continue;
		}
		if (st->v2_rx == AS_QUIC_V2_RX_DATA) {
			gsize n = (gsize)MIN((guint64)len, st->chunk_left);
			gboolean want_more;

			st->resume_requested = FALSE;
			want_more = self->v2_ingest.chunk_data(self->v2_ingest_data, st->handle,
							       st->chunk_handle, data, n);
			if (!want_more && !st->resume_requested)
				st->paused = TRUE;
			if (st->paused || st->paused_pending)
				hold += n;
			else
				grant += n;
			data += n;
			len -= n;
			st->chunk_left -= n;
			if (st->chunk_left == 0)
				st->v2_rx = AS_QUIC_V2_RX_DIGEST;
			continue;
		}
		/* AS_QUIC_V2_RX_DIGEST */
		{
			gsize n = MIN(len, AS_QUIC_V2_DIGEST_SIZE - st->digest_len);
			memcpy(st->digest + st->digest_len, data, n);
			st->digest_len += (guint)n;
			data += n;
			len -= n;
			grant += n;
			if (st->digest_len == AS_QUIC_V2_DIGEST_SIZE)
				as_quic_server_v2_chunk_done(st);
		}
	}
	if (error != NULL) {
		g_debug("%s: aerosync/2 stream %" G_GINT64_FORMAT " refused: %s", st->conn->peer,
			st->id, error->message);
		/* the connection gets back every byte of this call */
		ngtcp2_conn_extend_max_offset(conn, total);
		as_quic_server_stream_fail(st, error);
		return;
	}
	if (st->state == AS_QUIC_SERVER_STREAM_STATE_DONE ||
	    st->state == AS_QUIC_SERVER_STREAM_STATE_ENDED) {
		/* answered early (a completed task) or failed by a synchronous reply */
		ngtcp2_conn_extend_max_offset(conn, grant + hold + len);
		return;
	}
	as_quic_server_stream_grant(st, grant);
	st->credit_held += hold;

	if (!fin)
		return;
	if (st->control)
		return; /* the sender closed its side of the control stream; ours stays open */
	if (st->state == AS_QUIC_SERVER_STREAM_STATE_HEADER || st->v2_rx != AS_QUIC_V2_RX_FRAME ||
	    st->header->len > 0) {
		g_set_error_literal(&error, AS_ERROR, AS_ERROR_INCOMPLETE,
				    st->state == AS_QUIC_SERVER_STREAM_STATE_HEADER
					    ? "stream ended before its FILE frame"
					    : "stream ended inside a frame or chunk");
		as_quic_server_stream_fail(st, error);
		return;
	}
	st->fin_received = TRUE;
	as_quic_server_v2_maybe_finish(st);
}

/* ---- ngtcp2 callbacks ---- */

static int
as_quic_server_recv_stream_data_cb(ngtcp2_conn *conn,
				   uint32_t flags,
				   int64_t stream_id,
				   uint64_t offset,
				   const uint8_t *data,
				   size_t datalen,
				   void *user_data,
				   void *stream_user_data)
{
	AsQuicServerStream *st = stream_user_data;
	gboolean fin = (flags & NGTCP2_STREAM_DATA_FLAG_FIN) != 0;

	if (st == NULL) {
		ngtcp2_conn_extend_max_offset(conn, datalen);
		return 0;
	}
	if (st->v2) {
		as_quic_server_v2_on_data(st, data, datalen, fin);
		return 0;
	}
	switch (st->state) {
	case AS_QUIC_SERVER_STREAM_STATE_HEADER:
		as_quic_server_stream_on_header(st, data, datalen, fin);
		break;
	case AS_QUIC_SERVER_STREAM_STATE_BODY:
		as_quic_server_stream_on_body(st, data, datalen, NULL, 0, datalen, fin);
		break;
	default:
		/* refused or finished: discard, but give the connection its credit back */
		ngtcp2_conn_extend_max_offset(conn, datalen);
		break;
	}
	return 0;
}

static int
as_quic_server_stream_open_cb(ngtcp2_conn *conn, int64_t stream_id, void *user_data)
{
	AsQuicServerConn *sc = user_data;
	AsQuicServerStream *st;

	if (!ngtcp2_is_bidi_stream(stream_id))
		return 0;
	st = g_new0(AsQuicServerStream, 1);
	as_quic_send_stream_init(&st->send);
	st->send.id = stream_id;
	st->conn = sc;
	st->id = stream_id;
	st->header = g_byte_array_new();
	st->v2 = sc->v2;
	g_hash_table_insert(sc->streams, &st->id, st);
	ngtcp2_conn_set_stream_user_data(conn, stream_id, st);
	return 0;
}

static int
as_quic_server_stream_close_cb(ngtcp2_conn *conn,
			       uint32_t flags,
			       int64_t stream_id,
			       uint64_t app_error_code,
			       void *user_data,
			       void *stream_user_data)
{
	AsQuicServerConn *sc = user_data;
	AsQuicServerStream *st = stream_user_data;

	if (st != NULL) {
		as_quic_server_stream_abort(st, "stream closed before the upload completed");
		g_hash_table_remove(sc->streams, &st->id);
	}
	/* let the client open another stream in its place */
	if (!ngtcp2_conn_is_local_stream(conn, stream_id) && ngtcp2_is_bidi_stream(stream_id))
		ngtcp2_conn_extend_max_streams_bidi(conn, 1);
	return 0;
}

static int
as_quic_server_stream_reset_cb(ngtcp2_conn *conn,
			       int64_t stream_id,
			       uint64_t final_size,
			       uint64_t app_error_code,
			       void *user_data,
			       void *stream_user_data)
{
	AsQuicServerStream *st = stream_user_data;

	if (st == NULL)
		return 0;
	/* a stream we refused or answered early (ERROR or DONE, then FIN and STOP_SENDING) is
	 * reset by the sender's stack in answer to our STOP_SENDING: its reader still waits for
	 * that reply, so our side stays open until the reply is delivered */
	if (st->state == AS_QUIC_SERVER_STREAM_STATE_DONE && st->send.fin)
		return 0;
	if (st->state != AS_QUIC_SERVER_STREAM_STATE_ENDED) {
		as_quic_server_stream_abort(st, "sender reset the stream");
		st->state = AS_QUIC_SERVER_STREAM_STATE_DONE;
		/* nobody will read a reply: close our side too, so the stream slot is freed */
		st->want_shutdown_write = TRUE;
		as_quic_server_stream_queue_op(st);
	}
	return 0;
}

static int
as_quic_server_acked_stream_data_offset_cb(ngtcp2_conn *conn,
					   int64_t stream_id,
					   uint64_t offset,
					   uint64_t datalen,
					   void *user_data,
					   void *stream_user_data)
{
	AsQuicServerStream *st = stream_user_data;

	if (st != NULL)
		(void)as_quic_send_stream_ack(&st->send, offset, datalen);
	return 0;
}

static int
as_quic_server_extend_max_stream_data_cb(ngtcp2_conn *conn,
					 int64_t stream_id,
					 uint64_t max_data,
					 void *user_data,
					 void *stream_user_data)
{
	AsQuicServerStream *st = stream_user_data;

	if (st != NULL && st->send.blocked) {
		st->send.blocked = FALSE;
		as_quic_conn_queue_stream(&st->conn->base, &st->send);
	}
	return 0;
}

static int
as_quic_server_handshake_completed_cb(ngtcp2_conn *conn, void *user_data)
{
	AsQuicServerConn *sc = user_data;

	if (!sc->handshake_done) {
		sc->handshake_done = TRUE;
		sc->server->n_handshakes--;
	}
	g_free(sc->alpn);
	sc->alpn = as_quic_conn_get_alpn(&sc->base);
	sc->v2 = sc->server->has_v2 && g_strcmp0(sc->alpn, AS_QUIC_ALPN_V2) == 0;
	g_debug("%s: handshake completed, ALPN %s", sc->peer, sc->alpn);
	return 0;
}

static int
as_quic_server_get_new_connection_id_cb(
	ngtcp2_conn *conn, ngtcp2_cid *cid, uint8_t *token, size_t cidlen, void *user_data)
{
	AsQuicServerConn *sc = user_data;
	AsQuicServer *self = sc->server;

	as_quic_random(cid->data, cidlen);
	cid->datalen = cidlen;
	if (ngtcp2_crypto_generate_stateless_reset_token(token, self->reset_secret,
							 sizeof(self->reset_secret), cid) != 0)
		return NGTCP2_ERR_CALLBACK_FAILURE;
	as_quic_server_register_cid(sc, cid->data, cid->datalen);
	return 0;
}

static int
as_quic_server_remove_connection_id_cb(ngtcp2_conn *conn, const ngtcp2_cid *cid, void *user_data)
{
	as_quic_server_unregister_cid(user_data, cid->data, cid->datalen);
	return 0;
}

static const ngtcp2_callbacks as_quic_server_callbacks = {
	.recv_client_initial = ngtcp2_crypto_recv_client_initial_cb,
	.recv_crypto_data = ngtcp2_crypto_recv_crypto_data_cb,
	.handshake_completed = as_quic_server_handshake_completed_cb,
	.encrypt = ngtcp2_crypto_encrypt_cb,
	.decrypt = ngtcp2_crypto_decrypt_cb,
	.hp_mask = ngtcp2_crypto_hp_mask_cb,
	.recv_stream_data = as_quic_server_recv_stream_data_cb,
	.acked_stream_data_offset = as_quic_server_acked_stream_data_offset_cb,
	.stream_open = as_quic_server_stream_open_cb,
	.stream_close = as_quic_server_stream_close_cb,
	.rand = as_quic_rand_cb,
	.get_new_connection_id = as_quic_server_get_new_connection_id_cb,
	.remove_connection_id = as_quic_server_remove_connection_id_cb,
	.update_key = ngtcp2_crypto_update_key_cb,
	.stream_reset = as_quic_server_stream_reset_cb,
	.extend_max_stream_data = as_quic_server_extend_max_stream_data_cb,
	.delete_crypto_aead_ctx = ngtcp2_crypto_delete_crypto_aead_ctx_cb,
	.delete_crypto_cipher_ctx = ngtcp2_crypto_delete_crypto_cipher_ctx_cb,
	.get_path_challenge_data = ngtcp2_crypto_get_path_challenge_data_cb,
	/* no stream_stop_sending: ngtcp2 calls it when *we* stop reading (a refusal, an early
	 * answer), and the reply queued just before must still go out. When the sender stops
	 * reading, ngtcp2 resets our side itself and writev_stream() says so */
	.version_negotiation = ngtcp2_crypto_version_negotiation_cb,
};

/* ---- connections ---- */

static void
as_quic_server_conn_free(AsQuicServerConn *sc)
{
	AsQuicServer *self = sc->server;
	GHashTableIter iter;
	gpointer value;

	/* ngtcp2_conn_del() calls no stream_close: abort what is still open */
	g_hash_table_iter_init(&iter, sc->streams);
	while (g_hash_table_iter_next(&iter, NULL, &value)) {
		AsQuicServerStream *st = value;
		as_quic_server_stream_abort(st, "connection closed before the upload completed");
	}
	g_hash_table_remove_all(sc->streams);
	for (guint i = 0; i < sc->cids->len; i++) {
		AsQuicCidKey *key = &g_array_index(sc->cids, AsQuicCidKey, i);
		if (g_hash_table_lookup(self->cids, key) == sc)
			g_hash_table_remove(self->cids, key);
	}
	if (!sc->handshake_done)
		self->n_handshakes--;
	as_quic_conn_clear(&sc->base);
	g_hash_table_unref(sc->streams);
	g_array_unref(sc->cids);
	g_free(sc->peer);
	g_free(sc->alpn);
	g_free(sc);
}

static void
as_quic_server_conn_prepare_write(AsQuicConn *conn)
{
	AsQuicServerConn *sc = (AsQuicServerConn *)conn;

	while (sc->ops.head != NULL) {
		AsQuicServerStream *st = sc->ops.head->data;

		g_queue_unlink(&sc->ops, &st->op_link);
		st->op_link.data = NULL;
		if (st->credit_release > 0) {
			as_quic_server_stream_grant(st, st->credit_release);
			st->credit_release = 0;
		}
		if (st->want_shutdown_write) {
			st->want_shutdown_write = FALSE;
			st->send.shut = TRUE;
			as_quic_conn_unqueue_stream(conn, &st->send);
			(void)ngtcp2_conn_shutdown_stream_write(conn->conn, st->id,
								AS_QUIC_APP_ERROR_CANCELLED);
		}
	}
}

static void
as_quic_server_conn_closed(AsQuicConn *conn, const GError *error)
{
	AsQuicServerConn *sc = (AsQuicServerConn *)conn;

	g_debug("%s: connection %" G_GUINT64_FORMAT " over: %s", sc->peer, sc->id,
		error != NULL ? error->message : "closed");
	/* the set owns it */
	g_hash_table_remove(sc->server->conns, sc);
}

static const AsQuicConnVfuncs as_quic_server_conn_vfuncs = {
	.prepare_write = as_quic_server_conn_prepare_write,
	.closed = as_quic_server_conn_closed,
};

static void
as_quic_server_send_stateless(AsQuicServer *self,
			      AsQuicSocket *sock,
			      const AsQuicDatagram *dgram,
			      const guint8 *data,
			      gsize len)
{
	gsize sent = 0;
	int errsv = 0;

	(void)as_quic_socket_send(sock, dgram->remote, dgram->remote_len, dgram->local, 0, data,
				  len, len, &sent, &errsv);
}

static void
as_quic_server_send_version_negotiation(AsQuicServer *self,
					AsQuicSocket *sock,
					const AsQuicDatagram *dgram,
					const ngtcp2_version_cid *vc)
{
	guint8 buf[256];
	guint8 unused;
	const uint32_t versions[] = {NGTCP2_PROTO_VER_V1};
	ngtcp2_ssize n;

	if (dgram->len < AS_QUIC_SERVER_MIN_INITIAL_SIZE)
		return;
	as_quic_random(&unused, 1);
	n = ngtcp2_pkt_write_version_negotiation(buf, sizeof(buf), unused, vc->scid, vc->scidlen,
						 vc->dcid, vc->dcidlen, versions,
						 G_N_ELEMENTS(versions));
	if (n <= 0)
		return;
	self->stats.version_negotiations_sent++;
	as_quic_server_send_stateless(self, sock, dgram, buf, (gsize)n);
}

static void
as_quic_server_send_stateless_reset(AsQuicServer *self,
				    AsQuicSocket *sock,
				    const AsQuicDatagram *dgram,
				    const ngtcp2_version_cid *vc)
{
	guint8 buf[AS_QUIC_SERVER_RESET_MAX_LEN];
	guint8 token[NGTCP2_STATELESS_RESET_TOKENLEN];
	guint8 rand_bytes[AS_QUIC_SERVER_RESET_MAX_LEN];
	gint64 now_us = g_get_monotonic_time();
	gsize len;
	ngtcp2_cid cid;
	ngtcp2_ssize n;

	/* smaller than the trigger, so two endpoints cannot loop */
	if (dgram->len <= AS_QUIC_SERVER_RESET_MIN_LEN || vc->dcidlen > NGTCP2_MAX_CIDLEN)
		return;
	if (now_us - self->reset_window_start_us >= G_USEC_PER_SEC) {
		self->reset_window_start_us = now_us;
		self->reset_window_count = 0;
	}
	if (self->reset_window_count >= AS_QUIC_SERVER_RESETS_PER_SECOND)
		return;
	self->reset_window_count++;

	len = MIN(dgram->len - 1, sizeof(buf));
	ngtcp2_cid_init(&cid, vc->dcid, vc->dcidlen);
	if (ngtcp2_crypto_generate_stateless_reset_token(token, self->reset_secret,
							 sizeof(self->reset_secret), &cid) != 0)
		return;
	as_quic_random(rand_bytes, sizeof(rand_bytes));
	n = ngtcp2_pkt_write_stateless_reset(buf, len, token, rand_bytes,
					     len - 1 - NGTCP2_STATELESS_RESET_TOKENLEN);
	if (n <= 0)
		return;
	self->stats.stateless_resets_sent++;
	as_quic_server_send_stateless(self, sock, dgram, buf, (gsize)n);
}

static void
as_quic_server_send_retry(AsQuicServer *self,
			  AsQuicSocket *sock,
			  const AsQuicDatagram *dgram,
			  const ngtcp2_pkt_hd *hd)
{
	guint8 token[NGTCP2_CRYPTO_MAX_RETRY_TOKENLEN];
	guint8 buf[NGTCP2_MAX_UDP_PAYLOAD_SIZE];
	ngtcp2_cid retry_scid;
	ngtcp2_ssize tokenlen;
	ngtcp2_ssize n;

	retry_scid.datalen = AS_QUIC_SCID_LEN;
	as_quic_random(retry_scid.data, retry_scid.datalen);
	tokenlen = ngtcp2_crypto_generate_retry_token(
		token, self->token_secret, sizeof(self->token_secret), hd->version,
		(const ngtcp2_sockaddr *)dgram->remote, dgram->remote_len, &retry_scid, &hd->dcid,
		as_quic_wall_clock_ns());
	if (tokenlen < 0)
		return;
	n = ngtcp2_crypto_write_retry(buf, sizeof(buf), hd->version, &hd->scid, &retry_scid,
				      &hd->dcid, token, (gsize)tokenlen);
	/* never more than three times what the unvalidated peer sent */
	if (n <= 0 || (gsize)n > dgram->len * 3)
		return;
	self->stats.retries_sent++;
	as_quic_server_send_stateless(self, sock, dgram, buf, (gsize)n);
}

static void
as_quic_server_send_refusal(AsQuicServer *self,
			    AsQuicSocket *sock,
			    const AsQuicDatagram *dgram,
			    const ngtcp2_pkt_hd *hd,
			    guint64 error_code)
{
	guint8 buf[NGTCP2_MAX_UDP_PAYLOAD_SIZE];
	ngtcp2_ssize n;

	n = ngtcp2_crypto_write_connection_close(buf, sizeof(buf), hd->version, &hd->scid,
						 &hd->dcid, error_code, NULL, 0);
	if (n <= 0 || (gsize)n > dgram->len * 3)
		return;
	as_quic_server_send_stateless(self, sock, dgram, buf, (gsize)n);
}

static void
as_quic_server_accept(AsQuicServer *self, AsQuicSocket *sock, const AsQuicDatagram *dgram)
{
	AsQuicServerConn *sc;
	ngtcp2_pkt_hd hd;
	ngtcp2_cid odcid;
	gboolean validated = FALSE;
	ngtcp2_cid scid;
	ngtcp2_settings settings;
	ngtcp2_transport_params params;
	ngtcp2_path path = {
		.local = {(ngtcp2_sockaddr *)dgram->local, dgram->local_len},
		.remote = {(ngtcp2_sockaddr *)dgram->remote, dgram->remote_len},
	};
	g_autoptr(GError) error = NULL;
	int rv;

	rv = ngtcp2_accept(&hd, dgram->data, dgram->len);
	if (rv != 0) {
		/* not a usable first Initial: 0-RTT for a forgotten connection, too short, ... */
		self->stats.datagrams_dropped++;
		return;
	}
	if (g_hash_table_size(self->conns) >= self->max_connections ||
	    self->n_handshakes >= self->max_handshakes) {
		self->stats.connections_refused++;
		as_quic_server_send_refusal(self, sock, dgram, &hd, NGTCP2_CONNECTION_REFUSED);
		return;
	}
	if (hd.token.len > 0 && hd.token.base[0] == NGTCP2_CRYPTO_TOKEN_MAGIC_RETRY) {
		rv = ngtcp2_crypto_verify_retry_token(
			&odcid, hd.token.base, hd.token.len, self->token_secret,
			sizeof(self->token_secret), hd.version,
			(const ngtcp2_sockaddr *)dgram->remote, dgram->remote_len, &hd.dcid,
			AS_QUIC_SERVER_RETRY_TOKEN_TIMEOUT, as_quic_wall_clock_ns());
		if (rv != 0) {
			self->stats.datagrams_dropped++;
			as_quic_server_send_refusal(self, sock, dgram, &hd, NGTCP2_INVALID_TOKEN);
			return;
		}
		validated = TRUE;
	} else if (hd.token.len > 0) {
		/* we never send NEW_TOKEN: whatever this is proves nothing */
		hd.token.base = NULL;
		hd.token.len = 0;
	}
	/* under a flood of Initials, make new peers prove their address before any state */
	if (!validated && self->n_handshakes >= self->retry_threshold) {
		as_quic_server_send_retry(self, sock, dgram, &hd);
		return;
	}

	scid.datalen = AS_QUIC_SCID_LEN;
	as_quic_random(scid.data, scid.datalen);

	ngtcp2_settings_default(&settings);
	settings.initial_ts = as_quic_now_ns();
	settings.cc_algo = as_quic_cc_algo_to_ngtcp2(self->cc_algo);
	settings.max_window = AS_QUIC_SERVER_MAX_CONN_WINDOW;
	settings.max_stream_window = AS_QUIC_SERVER_MAX_STREAM_WINDOW;
	settings.handshake_timeout = AS_QUIC_SERVER_HANDSHAKE_TIMEOUT;
	settings.token = hd.token;

	ngtcp2_transport_params_default(&params);
	params.initial_max_stream_data_bidi_remote = AS_QUIC_SERVER_STREAM_WINDOW;
	params.initial_max_data = AS_QUIC_SERVER_CONN_WINDOW;
	params.initial_max_streams_bidi = self->max_streams;
	params.initial_max_streams_uni = 0;
	params.max_idle_timeout = (guint64)self->idle_timeout_ms * NGTCP2_MILLISECONDS;
	params.active_connection_id_limit = AS_QUIC_SERVER_ACTIVE_CID_LIMIT;
	params.disable_active_migration = 1;
	params.stateless_reset_token_present = 1;
	if (ngtcp2_crypto_generate_stateless_reset_token(params.stateless_reset_token,
							 self->reset_secret,
							 sizeof(self->reset_secret), &scid) != 0)
		return;
	if (validated) {
		params.original_dcid = odcid;
		params.retry_scid = hd.dcid;
		params.retry_scid_present = 1;
	} else {
		params.original_dcid = hd.dcid;
	}

	sc = g_new0(AsQuicServerConn, 1);
	sc->server = self;
	sc->id = ++self->next_connection_id;
	sc->peer = as_quic_sockaddr_to_string(dgram->remote, dgram->remote_len);
	sc->cids = g_array_new(FALSE, TRUE, sizeof(AsQuicCidKey));
	sc->streams = g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL,
					    (GDestroyNotify)as_quic_server_stream_free);
	g_queue_init(&sc->ops);
	as_quic_conn_init(&sc->base, &as_quic_server_conn_vfuncs, sock, self->context, dgram->local,
			  dgram->local_len, dgram->remote, dgram->remote_len);
	rv = ngtcp2_conn_server_new(&sc->base.conn, &hd.scid, &scid, &path, hd.version,
				    &as_quic_server_callbacks, &settings, &params, NULL, sc);
	if (rv != 0) {
		g_warning("cannot create QUIC connection: %s", ngtcp2_strerror(rv));
		self->n_handshakes++; /* balanced by the free */
		as_quic_server_conn_free(sc);
		return;
	}
	if (!as_quic_conn_setup_tls(&sc->base, TRUE,
				    as_tls_identity_get_credentials(self->identity),
				    self->has_v2 ? as_quic_server_alpns_v2 : as_quic_server_alpns,
				    self->has_v2 ? G_N_ELEMENTS(as_quic_server_alpns_v2)
						 : G_N_ELEMENTS(as_quic_server_alpns),
				    &error)) {
		g_warning("%s", error->message);
		self->n_handshakes++;
		as_quic_server_conn_free(sc);
		return;
	}
	self->n_handshakes++;
	self->stats.connections_accepted++;
	g_hash_table_add(self->conns, sc);
	as_quic_server_register_cid(sc, scid.data, scid.datalen);
	as_quic_server_register_cid(sc, hd.dcid.data, hd.dcid.datalen);
	g_debug("%s: new connection %" G_GUINT64_FORMAT "%s", sc->peer, sc->id,
		validated ? " (address validated)" : "");

	rv = as_quic_conn_read(&sc->base, dgram);
	if (rv == NGTCP2_ERR_RETRY) {
		as_quic_server_send_retry(self, sock, dgram, &hd);
		g_hash_table_remove(self->conns, sc);
	}
}

static void
as_quic_server_on_datagram(AsQuicSocket *sock, const AsQuicDatagram *dgram, gpointer user_data)
{
	AsQuicServer *self = user_data;
	ngtcp2_version_cid vc;
	AsQuicServerConn *sc;
	AsQuicCidKey key;
	int rv;

	self->stats.datagrams_received++;
	rv = ngtcp2_pkt_decode_version_cid(&vc, dgram->data, dgram->len, AS_QUIC_SCID_LEN);
	if (rv == NGTCP2_ERR_VERSION_NEGOTIATION) {
		as_quic_server_send_version_negotiation(self, sock, dgram, &vc);
		return;
	}
	if (rv != 0 || vc.dcidlen > NGTCP2_MAX_CIDLEN) {
		self->stats.datagrams_dropped++;
		return;
	}
	as_quic_cid_key_set(&key, vc.dcid, vc.dcidlen);
	sc = g_hash_table_lookup(self->cids, &key);
	if (sc != NULL) {
		rv = as_quic_conn_read(&sc->base, dgram);
		if (rv != 0)
			g_debug("%s: %s", sc->peer, ngtcp2_strerror(rv));
		return;
	}
	if ((dgram->data[0] & 0x80) == 0) {
		/* a short header for a connection we do not know: maybe we restarted */
		self->stats.datagrams_dropped++;
		as_quic_server_send_stateless_reset(self, sock, dgram, &vc);
		return;
	}
	as_quic_server_accept(self, sock, dgram);
}

/* ---- public API ---- */

/**
 * as_quic_server_new:
 * @identity: the TLS identity presented to clients
 * @ingest: where upload streams go; copied
 * @user_data: passed to the @ingest functions
 * @user_data_destroy: (nullable): frees @user_data with the server
 *
 * Creates a QUIC server for the AeroSync 0.x framing (ALPN `aerosync/1` and `aerosync`). It runs
 * in the thread-default main context of the caller: sockets and timers are sources there, and
 * every callback comes from there.
 *
 * Returns: (transfer full): a new #AsQuicServer, not listening yet
 **/
AsQuicServer *
as_quic_server_new(AsTlsIdentity *identity,
		   const AsQuicIngest *ingest,
		   gpointer user_data,
		   GDestroyNotify user_data_destroy)
{
	AsQuicServer *self;

	g_return_val_if_fail(AS_IS_TLS_IDENTITY(identity), NULL);
	g_return_val_if_fail(ingest != NULL, NULL);
	g_return_val_if_fail(ingest->begin != NULL && ingest->data != NULL, NULL);
	g_return_val_if_fail(ingest->end != NULL && ingest->abort != NULL, NULL);

	self = g_object_new(AS_TYPE_QUIC_SERVER, NULL);
	self->identity = g_object_ref(identity);
	self->ingest = *ingest;
	self->ingest_data = user_data;
	self->ingest_data_destroy = user_data_destroy;
	as_tls_identity_derive_secret(identity, "aerosync quic stateless reset", self->reset_secret,
				      sizeof(self->reset_secret));
	as_tls_identity_derive_secret(identity, "aerosync quic retry token", self->token_secret,
				      sizeof(self->token_secret));
	return self;
}

/**
 * as_quic_server_set_v2_ingest:
 * @self: a #AsQuicServer
 * @ingest: where `aerosync/2` connections go; copied
 * @user_data: passed to the @ingest functions
 * @user_data_destroy: (nullable): frees @user_data with the server
 *
 * Turns on the native protocol, ALPN `aerosync/2` (doc/protocol.md), next to the 0.x framing,
 * for connections accepted afterwards. Without it the server offers only the 0.x ALPNs.
 **/
void
as_quic_server_set_v2_ingest(AsQuicServer *self,
			     const AsQuicV2Ingest *ingest,
			     gpointer user_data,
			     GDestroyNotify user_data_destroy)
{
	g_return_if_fail(AS_IS_QUIC_SERVER(self));
	g_return_if_fail(ingest != NULL);
	g_return_if_fail(ingest->authenticate != NULL && ingest->file_begin != NULL);
	g_return_if_fail(ingest->chunk_begin != NULL && ingest->chunk_data != NULL);
	g_return_if_fail(ingest->chunk_end != NULL && ingest->file_end != NULL);
	g_return_if_fail(ingest->file_abort != NULL);

	if (self->v2_ingest_data_destroy != NULL)
		self->v2_ingest_data_destroy(self->v2_ingest_data);
	self->v2_ingest = *ingest;
	self->v2_ingest_data = user_data;
	self->v2_ingest_data_destroy = user_data_destroy;
	self->has_v2 = TRUE;
}

/**
 * as_quic_server_set_idle_timeout_ms:
 *
 * Connections silent for this long are dropped; default %AS_QUIC_SERVER_DEFAULT_IDLE_TIMEOUT_MS.
 **/
void
as_quic_server_set_idle_timeout_ms(AsQuicServer *self, guint idle_timeout_ms)
{
	g_return_if_fail(AS_IS_QUIC_SERVER(self));
	self->idle_timeout_ms = idle_timeout_ms;
}

/**
 * as_quic_server_set_max_connections:
 *
 * New connections beyond this many are refused with CONNECTION_REFUSED.
 **/
void
as_quic_server_set_max_connections(AsQuicServer *self, guint max_connections)
{
	g_return_if_fail(AS_IS_QUIC_SERVER(self));
	self->max_connections = max_connections;
}

/**
 * as_quic_server_set_retry_threshold:
 *
 * Once this many handshakes are in progress, a new client gets a Retry and has to come back
 * with the token, which proves it owns its address, before the server keeps any state for it.
 * 0 always asks for a Retry.
 **/
void
as_quic_server_set_retry_threshold(AsQuicServer *self, guint retry_threshold)
{
	g_return_if_fail(AS_IS_QUIC_SERVER(self));
	self->retry_threshold = retry_threshold;
}

/**
 * as_quic_server_set_max_handshakes:
 *
 * Handshakes in progress beyond which even validated clients are refused.
 **/
void
as_quic_server_set_max_handshakes(AsQuicServer *self, guint max_handshakes)
{
	g_return_if_fail(AS_IS_QUIC_SERVER(self));
	self->max_handshakes = max_handshakes;
}

/**
 * as_quic_server_set_max_streams:
 *
 * Concurrent upload streams one connection may have open.
 **/
void
as_quic_server_set_max_streams(AsQuicServer *self, guint max_streams)
{
	g_return_if_fail(AS_IS_QUIC_SERVER(self));
	g_return_if_fail(max_streams > 0);
	self->max_streams = max_streams;
}

/**
 * as_quic_server_set_cc_algo:
 *
 * Congestion control for what the server sends (replies and ACKs only).
 **/
void
as_quic_server_set_cc_algo(AsQuicServer *self, AsQuicCcAlgo cc_algo)
{
	g_return_if_fail(AS_IS_QUIC_SERVER(self));
	self->cc_algo = cc_algo;
}

static gboolean
as_quic_server_bind(AsQuicServer *self, const gchar *address, guint16 port, GError **error)
{
	g_autoptr(GInetAddress) inet = g_inet_address_new_from_string(address);
	g_autoptr(GSocketAddress) sa = NULL;
	AsQuicSocket *sock;

	if (inet == NULL) {
		g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT, "not an IP address: %s",
			    address);
		return FALSE;
	}
	sa = g_inet_socket_address_new(inet, port);
	sock = as_quic_socket_new_bound(G_INET_SOCKET_ADDRESS(sa), error);
	if (sock == NULL)
		return FALSE;
	as_quic_socket_start(sock, self->context, as_quic_server_on_datagram, NULL, self);
	g_ptr_array_add(self->sockets, sock);
	return TRUE;
}

/**
 * as_quic_server_listen:
 * @self: a #AsQuicServer
 * @address: (nullable): an IP address; %NULL, "" or "::" listens on every IPv6 and IPv4 address
 *   (two sockets on the same port); "0.0.0.0" on every IPv4 address only
 * @port: the UDP port, or 0 to pick one (see as_quic_server_get_port())
 * @error: (nullable): optional return location for an error
 *
 * Starts receiving. With the dual-stack default, a host without IPv6 still listens on IPv4.
 *
 * Returns: %TRUE on success
 **/
gboolean
as_quic_server_listen(AsQuicServer *self, const gchar *address, guint16 port, GError **error)
{
	g_autoptr(GError) error_v6 = NULL;

	g_return_val_if_fail(AS_IS_QUIC_SERVER(self), FALSE);

	if (address != NULL && address[0] != '\0' && g_strcmp0(address, "::") != 0)
		return as_quic_server_bind(self, address, port, error);

	for (guint attempt = 0; attempt < AS_QUIC_SERVER_BIND_ATTEMPTS; attempt++) {
		g_autoptr(GError) error_v4 = NULL;
		guint16 bound = port;

		g_clear_error(&error_v6);
		if (as_quic_server_bind(self, "::", port, &error_v6))
			bound = as_quic_socket_get_port(
				g_ptr_array_index(self->sockets, self->sockets->len - 1));
		if (as_quic_server_bind(self, "0.0.0.0", bound, &error_v4)) {
			if (error_v6 != NULL)
				g_debug("no IPv6 QUIC socket: %s", error_v6->message);
			return TRUE;
		}
		if (error_v6 == NULL) {
			/* an ephemeral IPv6 port taken on IPv4: try another pair */
			if (port == 0 &&
			    g_error_matches(error_v4, G_IO_ERROR, G_IO_ERROR_ADDRESS_IN_USE)) {
				as_quic_socket_free(g_ptr_array_steal_index(
					self->sockets, self->sockets->len - 1));
				continue;
			}
			g_debug("no IPv4 QUIC socket: %s", error_v4->message);
			return TRUE;
		}
		g_propagate_prefixed_error(
			error, g_steal_pointer(&error_v4),
			"cannot listen for QUIC (IPv6: %s): ", error_v6->message);
		return FALSE;
	}
	g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_ADDRESS_IN_USE, "no free UDP port pair");
	return FALSE;
}

/**
 * as_quic_server_get_port:
 *
 * Returns: the UDP port listened on, or 0 before as_quic_server_listen()
 **/
guint16
as_quic_server_get_port(AsQuicServer *self)
{
	g_return_val_if_fail(AS_IS_QUIC_SERVER(self), 0);
	if (self->sockets->len == 0)
		return 0;
	return as_quic_socket_get_port(g_ptr_array_index(self->sockets, 0));
}

/**
 * as_quic_server_resume_stream:
 * @self: a #AsQuicServer
 * @stream_handle: the handle the ingest's begin() returned
 *
 * Grants the sender the flow-control credit held back since data() returned %FALSE. Unknown or
 * finished handles are ignored.
 **/
void
as_quic_server_resume_stream(AsQuicServer *self, gpointer stream_handle)
{
	AsQuicServerStream *st;

	g_return_if_fail(AS_IS_QUIC_SERVER(self));

	st = g_hash_table_lookup(self->handles, stream_handle);
	if (st == NULL)
		return;
	st->resume_requested = TRUE;
	if (!st->paused)
		return;
	st->paused = FALSE;
	if (st->paused_pending)
		return;
	st->credit_release += st->credit_held;
	st->credit_held = 0;
	as_quic_server_stream_queue_op(st);
}

/**
 * as_quic_server_get_stats:
 * @self: a #AsQuicServer
 * @stats: (out caller-allocates): the counters
 **/
void
as_quic_server_get_stats(AsQuicServer *self, AsQuicServerStats *stats)
{
	g_return_if_fail(AS_IS_QUIC_SERVER(self));
	g_return_if_fail(stats != NULL);
	*stats = self->stats;
	stats->n_connections = g_hash_table_size(self->conns);
	stats->n_handshakes = self->n_handshakes;
}

/**
 * as_quic_server_close:
 * @self: a #AsQuicServer
 *
 * Tells every peer the server is going away (CONNECTION_CLOSE), aborts unfinished uploads and
 * stops listening. Replies still owed by the ingest become no-ops.
 **/
void
as_quic_server_close(AsQuicServer *self)
{
	GHashTableIter iter;
	gpointer key;

	g_return_if_fail(AS_IS_QUIC_SERVER(self));

	g_hash_table_iter_init(&iter, self->conns);
	while (g_hash_table_iter_next(&iter, &key, NULL)) {
		AsQuicServerConn *sc = key;
		as_quic_conn_close_now(&sc->base, AS_QUIC_APP_ERROR_SHUTDOWN,
				       "server shutting down");
	}
	g_hash_table_remove_all(self->conns);
	g_ptr_array_set_size(self->sockets, 0);
}

static void
as_quic_server_dispose(GObject *object)
{
	AsQuicServer *self = AS_QUIC_SERVER(object);

	if (self->conns != NULL)
		as_quic_server_close(self);
	G_OBJECT_CLASS(as_quic_server_parent_class)->dispose(object);
}

static void
as_quic_server_finalize(GObject *object)
{
	AsQuicServer *self = AS_QUIC_SERVER(object);

	g_hash_table_unref(self->conns);
	g_hash_table_unref(self->cids);
	g_hash_table_unref(self->handles);
	g_ptr_array_unref(self->sockets);
	g_clear_object(&self->identity);
	if (self->ingest_data_destroy != NULL)
		self->ingest_data_destroy(self->ingest_data);
	if (self->v2_ingest_data_destroy != NULL)
		self->v2_ingest_data_destroy(self->v2_ingest_data);
	g_main_context_unref(self->context);
	memset(self->reset_secret, 0, sizeof(self->reset_secret));
	memset(self->token_secret, 0, sizeof(self->token_secret));
	G_OBJECT_CLASS(as_quic_server_parent_class)->finalize(object);
}

static void
as_quic_server_class_init(AsQuicServerClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);
	object_class->dispose = as_quic_server_dispose;
	object_class->finalize = as_quic_server_finalize;
}

static void
as_quic_server_init(AsQuicServer *self)
{
	self->context = g_main_context_ref_thread_default();
	self->sockets = g_ptr_array_new_with_free_func((GDestroyNotify)as_quic_socket_free);
	self->cids =
		g_hash_table_new_full(as_quic_cid_key_hash, as_quic_cid_key_equal, g_free, NULL);
	self->conns = g_hash_table_new_full(g_direct_hash, g_direct_equal,
					    (GDestroyNotify)as_quic_server_conn_free, NULL);
	self->handles = g_hash_table_new(g_direct_hash, g_direct_equal);
	self->idle_timeout_ms = AS_QUIC_SERVER_DEFAULT_IDLE_TIMEOUT_MS;
	self->max_connections = AS_QUIC_SERVER_DEFAULT_MAX_CONNECTIONS;
	self->retry_threshold = AS_QUIC_SERVER_DEFAULT_RETRY_THRESHOLD;
	self->max_handshakes = AS_QUIC_SERVER_DEFAULT_MAX_HANDSHAKES;
	self->max_streams = AS_QUIC_SERVER_DEFAULT_MAX_STREAMS;
	self->cc_algo = AS_QUIC_CC_ALGO_CUBIC;
}
