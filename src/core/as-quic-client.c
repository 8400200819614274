/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "AsQuicClient"

#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <gnutls/crypto.h>
#include <ngtcp2/ngtcp2_crypto.h>
#include <string.h>
#include <unistd.h>

#include "as-error.h"
#include "as-quic-client.h"
#include "as-quic-conn.h"
#include "as-quic-framing.h"
#include "as-quic-v2.h"
#include "as-rate-limit.h"
#include "as-sha256.h"

/* what the client receives is only replies: small windows */
#define AS_QUIC_CLIENT_RX_STREAM_WINDOW (64 * 1024)
#define AS_QUIC_CLIENT_RX_CONN_WINDOW	(1024 * 1024)
/* PINGs while uploads are open: this many per idle timeout */
#define AS_QUIC_CLIENT_KEEP_ALIVE_DIVISOR 3
/* the destination connection ID of the first Initial */
#define AS_QUIC_CLIENT_DCID_LEN 18

typedef struct _AsQuicClientConn AsQuicClientConn;
typedef struct _AsQuicClientUpload AsQuicClientUpload;

struct _AsQuicClientUpload {
	gint refcount;
	AsQuicClient *client;	/* unowned */
	AsQuicClientConn *conn; /* unowned, while its stream is open */
	GTask *task;		/* owned until completed */
	AsQuicSendStream send;
	gchar *header;	 /* owned, until the stream opens */
	GBytes *request; /* owned: a raw stream instead of header and file */
	gchar *name;
	guint64 size;
	GInputStream *input; /* owned, or NULL */
	int fd;		     /* owned duplicate, or -1 */
	guint64 fd_offset;
	guint64 read_pos; /* body bytes read from the source */
	gboolean reading;
	GByteArray *reply;	/* owned */
	GSource *cancel_source; /* owned */
	GList pending_link;	/* in AsQuicClient.pending while pending_link.data != NULL */
	gboolean raw_bytes;	/* a request whose reply is returned as GBytes */
	/* aerosync/2 */
	gboolean v2;
	GBytes *v2_file_frame; /* owned, until the stream opens */
	gchar *task_id;
	guint64 chunk_size;
	guint32 total_chunks;
	GBytes *have;	    /* owned: the receiver's HAVE bitmap, NULL until it came */
	guint32 next_chunk; /* the next index to consider sending */
	gboolean in_chunk;  /* a chunk's frame is out, its data and digest are being read */
	guint32 cur_index;
	guint64 cur_offset;
	guint64 cur_len;
	guint64 cur_pos;
	AsSha256 *chunk_sha; /* owned; fed by the read thread, one read at a time */
	gboolean sent_all;
	guint32 chunks_sent;
	guint32 chunks_skipped;
	guint32 chunks_acked;
	gint read_stop; /* atomic: completed, a read waiting for the rate limit gives up */
};

struct _AsQuicClientConn {
	AsQuicConn base; /* first: callbacks cast */
	AsQuicClient *client;
	AsQuicSocket *sock; /* owned */
	gboolean handshake_done;
	gboolean announced;
	GHashTable *uploads; /* stream id -> (owned ref) AsQuicClientUpload */
	guint64 buffered;    /* bytes read from disk and not yet acknowledged, all uploads */
	gboolean need_fill;
	gboolean keep_alive;
	gchar *fingerprint;
	gchar *remote;
	GError *verify_error;
	/* aerosync/2 */
	gboolean v2;		    /* ALPN aerosync/2 was negotiated */
	gboolean welcomed;	    /* the receiver accepted our HELLO */
	AsQuicSendStream ctrl_send; /* the control stream, id -1 until opened */
	GByteArray *ctrl_rx;	    /* owned: a partial frame from the control stream */
	GError *v2_error;	    /* the connection must close for this */
};

typedef struct {
	GTask *task;
	gpointer reply; /* upload result, or NULL for a connect */
	GDestroyNotify reply_free;
	GError *error;
	AsQuicV2Msg *event; /* instead of a task: an aerosync/2 EVENT to emit */
} AsQuicClientCompletion;

enum { SIGNAL_V2_EVENT, SIGNAL_LAST };
static guint as_quic_client_signals[SIGNAL_LAST] = {0};

struct _AsQuicClient {
	GObject parent_instance;
	GMainContext *context; /* owned */
	gchar *host;
	guint16 port;
	gchar *alpn;
	gchar *pin;
	gchar *ca_file;
	gboolean insecure;
	guint handshake_timeout_ms;
	guint idle_timeout_ms;
	AsQuicCcAlgo cc_algo;
	gchar *token;				/* aerosync/2 HELLO */
	gnutls_certificate_credentials_t creds; /* owned, made at the first connect */
	AsQuicClientConn *conn;			/* owned */
	gboolean connecting;
	GList *addresses; /* (element-type GInetAddress) (owned) still to try */
	GCancellable *resolve_cancellable;
	GSource *attempt_timer;
	gint64 connect_deadline_us;
	GError *attempt_error;
	GQueue connect_tasks; /* (element-type GTask) (owned) */
	GQueue pending;	      /* (element-type AsQuicClientUpload) waiting for a stream */
	GQueue completions;   /* (element-type AsQuicClientCompletion) */
	GSource *completion_source;
	gchar *peer_fingerprint;
	gchar *remote_address;
	AsRateLimiter *limiter_a; /* owned ref, nullable: paces reads from files */
	AsRateLimiter *limiter_b; /* owned ref, nullable */
	AsQuicClientStats stats;
};

G_DEFINE_TYPE(AsQuicClient, as_quic_client, G_TYPE_OBJECT)

static void as_quic_client_ensure_connecting(AsQuicClient *self);
static void as_quic_client_try_next(AsQuicClient *self);

/* ---- completions: always delivered from an idle, never from inside ngtcp2 ---- */

static gboolean
as_quic_client_completion_cb(gpointer user_data)
{
	g_autoptr(AsQuicClient) self = g_object_ref(AS_QUIC_CLIENT(user_data));
	AsQuicClientCompletion *c;

	g_clear_pointer(&self->completion_source, g_source_unref);
	while ((c = g_queue_pop_head(&self->completions)) != NULL) {
		if (c->event != NULL) {
			g_signal_emit(self, as_quic_client_signals[SIGNAL_V2_EVENT], 0,
				      as_quic_v2_event_kind_to_string(c->event->kind),
				      c->event->task_id, c->event->bytes_done, c->event->size,
				      c->event->text);
			as_quic_v2_msg_clear(c->event);
			g_free(c->event);
			g_free(c);
			continue;
		}
		if (c->error != NULL)
			g_task_return_error(c->task, c->error);
		else if (c->reply != NULL)
			g_task_return_pointer(c->task, c->reply, c->reply_free);
		else
			g_task_return_boolean(c->task, TRUE);
		g_object_unref(c->task);
		g_free(c);
	}
	return G_SOURCE_REMOVE;
}

static void
as_quic_client_queue_completion(AsQuicClient *self, AsQuicClientCompletion *c)
{
	g_queue_push_tail(&self->completions, c);
	if (self->completion_source == NULL) {
		self->completion_source = g_idle_source_new();
		g_source_set_priority(self->completion_source, G_PRIORITY_DEFAULT);
		g_source_set_callback(self->completion_source, as_quic_client_completion_cb, self,
				      NULL);
		g_source_attach(self->completion_source, self->context);
	}
}

/* takes @task, @reply and @error */
static void
as_quic_client_complete_full(
	AsQuicClient *self, GTask *task, gpointer reply, GDestroyNotify reply_free, GError *error)
{
	AsQuicClientCompletion *c = g_new0(AsQuicClientCompletion, 1);

	c->task = task;
	c->reply = reply;
	c->reply_free = reply_free;
	c->error = error;
	as_quic_client_queue_completion(self, c);
}

/* takes @task, @reply and @error */
static void
as_quic_client_complete(AsQuicClient *self, GTask *task, gchar *reply, GError *error)
{
	as_quic_client_complete_full(self, task, reply, g_free, error);
}

/* ---- uploads ---- */

static AsQuicClientUpload *
as_quic_client_upload_ref(AsQuicClientUpload *u)
{
	u->refcount++;
	return u;
}

static void
as_quic_client_upload_unref(AsQuicClientUpload *u)
{
	if (--u->refcount > 0)
		return;
	g_assert(u->task == NULL);
	as_quic_send_stream_clear(&u->send);
	g_clear_object(&u->input);
	if (u->fd >= 0)
		close(u->fd);
	if (u->cancel_source != NULL) {
		g_source_destroy(u->cancel_source);
		g_source_unref(u->cancel_source);
	}
	if (u->reply != NULL)
		g_byte_array_unref(u->reply);
	g_free(u->header);
	if (u->request != NULL)
		g_bytes_unref(u->request);
	if (u->v2_file_frame != NULL)
		g_bytes_unref(u->v2_file_frame);
	if (u->have != NULL)
		g_bytes_unref(u->have);
	if (u->chunk_sha != NULL)
		as_sha256_free(u->chunk_sha);
	g_free(u->task_id);
	g_free(u->name);
	g_free(u);
}

/* completes the upload's task once; takes @reply and @error */
static void
as_quic_client_upload_complete_full(AsQuicClientUpload *u,
				    gpointer reply,
				    GDestroyNotify reply_free,
				    GError *error)
{
	AsQuicClient *self = u->client;

	g_atomic_int_set(&u->read_stop, 1);
	if (u->task == NULL) {
		if (reply != NULL)
			reply_free(reply);
		if (error != NULL)
			g_error_free(error);
		return;
	}
	if (error != NULL)
		self->stats.uploads_failed++;
	else
		self->stats.uploads_completed++;
	if (u->cancel_source != NULL) {
		g_source_destroy(u->cancel_source);
		g_clear_pointer(&u->cancel_source, g_source_unref);
	}
	as_quic_client_complete_full(self, g_steal_pointer(&u->task), reply, reply_free, error);
}

static void
as_quic_client_upload_complete(AsQuicClientUpload *u, gchar *reply, GError *error)
{
	as_quic_client_upload_complete_full(u, reply, g_free, error);
}

/* drops what is buffered for sending: nothing more will go out */
static void
as_quic_client_upload_drop_buffers(AsQuicClientUpload *u)
{
	if (u->conn != NULL) {
		guint64 buffered = as_quic_send_stream_get_buffered(&u->send);
		u->conn->buffered -= MIN(u->conn->buffered, buffered);
		as_quic_conn_unqueue_stream(&u->conn->base, &u->send);
	}
	as_quic_send_stream_clear(&u->send);
	u->send.shut = TRUE;
}

/* gives up an open stream: tells the receiver, keeps the stream until ngtcp2 closes it */
static void
as_quic_client_upload_abandon(AsQuicClientUpload *u, GError *error)
{
	as_quic_client_upload_complete(u, NULL, error);
	if (u->conn != NULL && u->send.id >= 0 && as_quic_conn_is_open(&u->conn->base)) {
		(void)ngtcp2_conn_shutdown_stream(u->conn->base.conn, u->send.id,
						  AS_QUIC_APP_ERROR_CANCELLED);
		as_quic_conn_schedule(&u->conn->base);
	}
	as_quic_client_upload_drop_buffers(u);
}

typedef struct {
	int fd;
	guint64 offset;
	gsize len;
	guint8 *buf;
	AsSha256 *sha; /* unowned: aerosync/2 hashes the chunk here, off the main thread */
	AsRateLimiter *limiter_a; /* owned ref, nullable */
	AsRateLimiter *limiter_b; /* owned ref, nullable */
	gint *stop;		  /* the upload's read_stop; the task holds a ref on the upload */
} AsQuicClientRead;

static void
as_quic_client_read_free(AsQuicClientRead *r)
{
	g_clear_object(&r->limiter_a);
	g_clear_object(&r->limiter_b);
	g_free(r->buf);
	g_free(r);
}

/* waits until the limiters allow @r's bytes; FALSE when the upload ended meanwhile */
static gboolean
as_quic_client_read_pace(AsQuicClientRead *r)
{
	if (!as_rate_limiter_pair_is_limited(r->limiter_a, r->limiter_b))
		return TRUE;
	return as_rate_limiter_wait_pair(r->limiter_a, r->limiter_b, r->len, r->stop, NULL,
					 AS_QUIC_CLIENT_RATE_RECHECK_MS);
}

static void
as_quic_client_read_thread(GTask *task,
			   gpointer source_object,
			   gpointer task_data,
			   GCancellable *cancellable)
{
	AsQuicClientRead *r = task_data;
	gsize done = 0;

	if (!as_quic_client_read_pace(r)) {
		g_task_return_new_error(task, G_IO_ERROR, G_IO_ERROR_CANCELLED,
					"the upload was stopped");
		return;
	}
	while (done < r->len) {
		ssize_t n = pread(r->fd, r->buf + done, r->len - done, (off_t)(r->offset + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int errsv = errno;
			g_task_return_new_error(task, G_IO_ERROR, g_io_error_from_errno(errsv),
						"%s", g_strerror(errsv));
			return;
		}
		if (n == 0)
			break;
		done += (gsize)n;
	}
	if (r->sha != NULL)
		as_sha256_update(r->sha, r->buf, done);
	g_task_return_int(task, (gssize)done);
}

/* ---- aerosync/2 sending ---- */

static void
as_quic_client_v2_append_frame(AsQuicClientConn *cc, AsQuicSendStream *send, GByteArray *frame)
{
	gsize len = frame->len;
	cc->buffered += len;
	as_quic_conn_append(&cc->base, send, g_byte_array_free(frame, FALSE), len);
}

/* the chunk's data is out: its digest follows */
static void
as_quic_client_v2_end_chunk(AsQuicClientConn *cc, AsQuicClientUpload *u)
{
	g_autofree gchar *hex = as_sha256_finish_hex(u->chunk_sha);
	guint8 *digest = g_malloc(AS_QUIC_V2_DIGEST_SIZE);

	for (guint i = 0; i < AS_QUIC_V2_DIGEST_SIZE; i++)
		digest[i] = (guint8)((g_ascii_xdigit_value(hex[2 * i]) << 4) |
				     g_ascii_xdigit_value(hex[2 * i + 1]));
	g_clear_pointer(&u->chunk_sha, as_sha256_free);
	cc->buffered += AS_QUIC_V2_DIGEST_SIZE;
	as_quic_conn_append(&cc->base, &u->send, digest, AS_QUIC_V2_DIGEST_SIZE);
	u->in_chunk = FALSE;
	u->chunks_sent++;
}

/* starts the next chunk the receiver lacks; FALSE when there is no data to read for it */
static gboolean
as_quic_client_v2_next_chunk(AsQuicClientConn *cc, AsQuicClientUpload *u)
{
	AsQuicV2Msg msg = {.type = AS_QUIC_V2_MSG_CHUNK};

	while (u->next_chunk < u->total_chunks && as_quic_v2_bitmap_get(u->have, u->next_chunk))
		u->next_chunk++;
	if (u->next_chunk >= u->total_chunks) {
		u->sent_all = TRUE;
		as_quic_conn_finish_stream(&cc->base, &u->send);
		return FALSE;
	}
	u->cur_index = u->next_chunk++;
	(void)as_quic_v2_chunk_range(u->size, u->chunk_size, u->cur_index, &u->cur_offset,
				     &u->cur_len);
	u->cur_pos = 0;
	u->in_chunk = TRUE;
	if (u->chunk_sha != NULL)
		as_sha256_free(u->chunk_sha);
	u->chunk_sha = as_sha256_new();
	msg.index = u->cur_index;
	msg.offset = u->cur_offset;
	msg.length = u->cur_len;
	as_quic_client_v2_append_frame(cc, &u->send, as_quic_v2_encode(&msg, NULL));
	if (u->cur_len == 0) {
		/* an empty file is one empty chunk */
		as_quic_client_v2_end_chunk(cc, u);
		cc->need_fill = TRUE;
		return FALSE;
	}
	return TRUE;
}

static void
as_quic_client_v2_upload_result_free_cb(gpointer data)
{
	as_quic_v2_upload_result_free(data);
}

static void
as_quic_client_v2_on_frame(AsQuicClientConn *cc, AsQuicClientUpload *u, AsQuicV2Msg *msg)
{
	switch (msg->type) {
	case AS_QUIC_V2_MSG_HAVE:
		if (u->have != NULL || msg->total_chunks != u->total_chunks) {
			as_quic_client_upload_abandon(
				u, g_error_new(AS_ERROR, AS_ERROR_FAILED,
					       "receiver sent a bad HAVE for %s", u->name));
			return;
		}
		u->have = g_bytes_ref(msg->bitmap);
		for (guint32 i = 0; i < u->total_chunks; i++) {
			if (as_quic_v2_bitmap_get(u->have, i))
				u->chunks_skipped++;
		}
		cc->need_fill = TRUE;
		as_quic_conn_schedule(&cc->base);
		return;
	case AS_QUIC_V2_MSG_CHUNK_OK:
		u->chunks_acked++;
		return;
	case AS_QUIC_V2_MSG_DONE: {
		AsQuicV2UploadResult *result = g_new0(AsQuicV2UploadResult, 1);
		result->saved_as = g_strdup(msg->path);
		result->sha256 = g_strdup(msg->sha256);
		result->size = msg->size;
		result->total_chunks = u->total_chunks;
		result->chunks_sent = u->chunks_sent;
		result->chunks_skipped = u->chunks_skipped;
		as_quic_client_upload_complete_full(u, result,
						    as_quic_client_v2_upload_result_free_cb, NULL);
		/* already complete at the receiver: it stopped reading */
		if (!u->sent_all)
			as_quic_client_upload_drop_buffers(u);
		return;
	}
	case AS_QUIC_V2_MSG_ERROR: {
		GError *error = as_quic_v2_msg_to_error(msg);
		g_prefix_error(&error, "receiver refused %s: ", u->name);
		as_quic_client_upload_complete(u, NULL, error);
		as_quic_client_upload_drop_buffers(u);
		return;
	}
	default:
		as_quic_client_upload_abandon(u, g_error_new(AS_ERROR, AS_ERROR_FAILED,
							     "unexpected frame 0x%02x for %s",
							     msg->type, u->name));
		return;
	}
}

static void
as_quic_client_v2_on_reply(
	AsQuicClientConn *cc, AsQuicClientUpload *u, const guint8 *data, gsize len, gboolean fin)
{
	g_byte_array_append(u->reply, data, (guint)len);
	while (u->task != NULL) {
		AsQuicV2Msg msg = {0};
		gsize frame_len = 0;
		GError *error = NULL;
		AsQuicFramingResult rc =
			as_quic_v2_decode(u->reply->data, u->reply->len,
					  AS_QUIC_V2_MAX_SERVER_PAYLOAD, &msg, &frame_len, &error);

		if (rc == AS_QUIC_FRAMING_RESULT_NEED_MORE)
			break;
		if (rc == AS_QUIC_FRAMING_RESULT_ERROR) {
			g_prefix_error(&error, "bad reply from the receiver for %s: ", u->name);
			as_quic_client_upload_abandon(u, error);
			return;
		}
		g_byte_array_remove_range(u->reply, 0, (guint)frame_len);
		as_quic_client_v2_on_frame(cc, u, &msg);
		as_quic_v2_msg_clear(&msg);
	}
	if (fin && u->task != NULL) {
		as_quic_client_upload_complete(
			u, NULL,
			g_error_new(G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED,
				    "receiver ended the stream of %s without a reply", u->name));
		as_quic_client_upload_drop_buffers(u);
	}
}

static void
as_quic_client_v2_on_control(AsQuicClientConn *cc, const guint8 *data, gsize len)
{
	AsQuicClient *self = cc->client;

	if (cc->v2_error != NULL)
		return;
	g_byte_array_append(cc->ctrl_rx, data, (guint)len);
	for (;;) {
		AsQuicV2Msg msg = {0};
		gsize frame_len = 0;
		GError *error = NULL;
		AsQuicFramingResult rc =
			as_quic_v2_decode(cc->ctrl_rx->data, cc->ctrl_rx->len,
					  AS_QUIC_V2_MAX_SERVER_PAYLOAD, &msg, &frame_len, &error);

		if (rc == AS_QUIC_FRAMING_RESULT_NEED_MORE)
			return;
		if (rc == AS_QUIC_FRAMING_RESULT_ERROR) {
			g_prefix_error_literal(&error, "bad control frame from the receiver: ");
			cc->v2_error = error;
			as_quic_conn_schedule(&cc->base);
			return;
		}
		g_byte_array_remove_range(cc->ctrl_rx, 0, (guint)frame_len);
		switch (msg.type) {
		case AS_QUIC_V2_MSG_WELCOME:
			cc->welcomed = TRUE;
			as_quic_conn_schedule(&cc->base);
			break;
		case AS_QUIC_V2_MSG_ERROR:
			/* the receiver's own reason, e.g. a wrong token */
			cc->v2_error = as_quic_v2_msg_to_error(&msg);
			g_prefix_error(&cc->v2_error, "%s refused the connection: ", cc->remote);
			as_quic_conn_schedule(&cc->base);
			as_quic_v2_msg_clear(&msg);
			return;
		case AS_QUIC_V2_MSG_EVENT: {
			AsQuicClientCompletion *c = g_new0(AsQuicClientCompletion, 1);
			c->event = g_new0(AsQuicV2Msg, 1);
			*c->event = msg;
			memset(&msg, 0, sizeof(msg));
			as_quic_client_queue_completion(self, c);
			break;
		}
		default:
			/* nothing else is meant for the control stream: ignore it */
			break;
		}
		as_quic_v2_msg_clear(&msg);
	}
}

static void
as_quic_client_v2_open_control(AsQuicClientConn *cc)
{
	AsQuicClient *self = cc->client;
	AsQuicV2Msg hello = {.type = AS_QUIC_V2_MSG_HELLO};
	GError *error = NULL;
	GByteArray *frame;
	int64_t sid = -1;
	int rv;

	if (cc->ctrl_send.id >= 0)
		return;
	rv = ngtcp2_conn_open_bidi_stream(cc->base.conn, &sid, NULL);
	if (rv == NGTCP2_ERR_STREAM_ID_BLOCKED)
		return;
	if (rv != 0) {
		cc->v2_error =
			g_error_new(G_IO_ERROR, G_IO_ERROR_FAILED,
				    "cannot open the control stream: %s", ngtcp2_strerror(rv));
		as_quic_conn_schedule(&cc->base);
		return;
	}
	cc->ctrl_send.id = sid;
	hello.token = self->token;
	frame = as_quic_v2_encode(&hello, &error);
	if (frame == NULL) {
		cc->v2_error = error;
		as_quic_conn_schedule(&cc->base);
		return;
	}
	as_quic_client_v2_append_frame(cc, &cc->ctrl_send, frame);
}

static void
as_quic_client_upload_read_done(
	AsQuicClientUpload *u, guint8 *buf, gsize expected, gssize n, GError *error)
{
	AsQuicClientConn *cc = u->conn;

	u->reading = FALSE;
	if (cc == NULL || u->task == NULL || u->send.shut) {
		g_free(buf);
		if (error != NULL)
			g_error_free(error);
		return;
	}
	if (error != NULL) {
		g_prefix_error(&error, "cannot read %s: ", u->name);
		as_error_convert(&error);
		g_free(buf);
		as_quic_client_upload_abandon(u, error);
		return;
	}
	if ((gsize)n < expected) {
		guint64 pos = u->v2 ? u->cur_offset + u->cur_pos : u->read_pos;
		g_free(buf);
		as_quic_client_upload_abandon(u, g_error_new(AS_ERROR, AS_ERROR_INCOMPLETE,
							     "%s ended after %" G_GUINT64_FORMAT
							     " of %" G_GUINT64_FORMAT " bytes",
							     u->name, pos + (guint64)n, u->size));
		return;
	}
	cc->buffered += (guint64)n;
	as_quic_conn_append(&cc->base, &u->send, buf, (gsize)n);
	if (u->v2) {
		u->cur_pos += (guint64)n;
		if (u->cur_pos == u->cur_len)
			as_quic_client_v2_end_chunk(cc, u);
	} else {
		u->read_pos += (guint64)n;
		if (u->read_pos == u->size)
			as_quic_conn_finish_stream(&cc->base, &u->send);
	}
	cc->need_fill = TRUE;
	as_quic_conn_schedule(&cc->base);
}

static void
as_quic_client_fd_read_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	AsQuicClientUpload *u = user_data;
	AsQuicClientRead *r = g_task_get_task_data(G_TASK(res));
	GError *error = NULL;
	gssize n = g_task_propagate_int(G_TASK(res), &error);
	guint8 *buf = g_steal_pointer(&r->buf);

	as_quic_client_upload_read_done(u, buf, r->len, n, error);
	as_quic_client_upload_unref(u);
}

typedef struct {
	AsQuicClientUpload *upload;
	guint8 *buf;
	gsize len;
} AsQuicClientStreamRead;

static void
as_quic_client_stream_read_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	AsQuicClientStreamRead *r = user_data;
	GError *error = NULL;
	gsize n = 0;

	if (!g_input_stream_read_all_finish(G_INPUT_STREAM(source), res, &n, &error))
		n = 0;
	as_quic_client_upload_read_done(r->upload, r->buf, r->len, (gssize)n, error);
	as_quic_client_upload_unref(r->upload);
	g_free(r);
}

static void
as_quic_client_upload_start_read(AsQuicClientUpload *u, gsize len)
{
	u->reading = TRUE;
	if (u->input != NULL) {
		AsQuicClientStreamRead *r = g_new0(AsQuicClientStreamRead, 1);
		r->upload = as_quic_client_upload_ref(u);
		r->buf = g_malloc(len);
		r->len = len;
		g_input_stream_read_all_async(u->input, r->buf, len, G_PRIORITY_DEFAULT, NULL,
					      as_quic_client_stream_read_cb, r);
	} else {
		g_autoptr(GTask) task = g_task_new(NULL, NULL, as_quic_client_fd_read_cb,
						   as_quic_client_upload_ref(u));
		AsQuicClientRead *r = g_new0(AsQuicClientRead, 1);
		AsQuicClient *self = u->client;
		/* a paced read is small, so a rate change applies within a fraction of a second */
		if (as_rate_limiter_pair_is_limited(self->limiter_a, self->limiter_b))
			len = MIN(len, (gsize)AS_QUIC_CLIENT_LIMITED_READ_SIZE);
		if (self->limiter_a != NULL)
			r->limiter_a = g_object_ref(self->limiter_a);
		if (self->limiter_b != NULL)
			r->limiter_b = g_object_ref(self->limiter_b);
		r->stop = &u->read_stop;
		r->fd = u->fd;
		r->offset = u->fd_offset + (u->v2 ? u->cur_offset + u->cur_pos : u->read_pos);
		r->len = len;
		r->buf = g_malloc(len);
		r->sha = u->v2 ? u->chunk_sha : NULL;
		g_task_set_task_data(task, r, (GDestroyNotify)as_quic_client_read_free);
		g_task_run_in_thread(task, as_quic_client_read_thread);
	}
}

/* reads ahead while the per-upload and per-connection buffers have room */
static void
as_quic_client_conn_fill(AsQuicClientConn *cc)
{
	GHashTableIter iter;
	gpointer value;

	cc->need_fill = FALSE;
	g_hash_table_iter_init(&iter, cc->uploads);
	while (g_hash_table_iter_next(&iter, NULL, &value)) {
		AsQuicClientUpload *u = value;
		guint64 buffered;
		gsize len;

		if (u->v2) {
			if (u->task == NULL || u->reading || u->send.shut || u->have == NULL ||
			    u->sent_all)
				continue;
			if (cc->buffered >= AS_QUIC_CLIENT_CONN_BUFFER_MAX)
				return;
			if (as_quic_send_stream_get_buffered(&u->send) >=
			    AS_QUIC_CLIENT_STREAM_BUFFER_MAX)
				continue;
			if (!u->in_chunk && !as_quic_client_v2_next_chunk(cc, u))
				continue;
			as_quic_client_upload_start_read(
				u, (gsize)MIN(u->cur_len - u->cur_pos, AS_QUIC_CLIENT_READ_SIZE));
			continue;
		}
		if (u->task == NULL || u->reading || u->send.shut || u->read_pos >= u->size)
			continue;
		if (cc->buffered >= AS_QUIC_CLIENT_CONN_BUFFER_MAX)
			return;
		buffered = as_quic_send_stream_get_buffered(&u->send);
		if (buffered >= AS_QUIC_CLIENT_STREAM_BUFFER_MAX)
			continue;
		len = (gsize)MIN(u->size - u->read_pos, AS_QUIC_CLIENT_READ_SIZE);
		as_quic_client_upload_start_read(u, len);
	}
}

/* opens streams for pending uploads while the server allows more */
static void
as_quic_client_conn_open_streams(AsQuicClientConn *cc)
{
	AsQuicClient *self = cc->client;

	while (self->pending.head != NULL) {
		AsQuicClientUpload *u = self->pending.head->data;
		int64_t sid = -1;
		gsize header_len;
		int rv;

		if (u->task == NULL) {
			g_queue_unlink(&self->pending, &u->pending_link);
			u->pending_link.data = NULL;
			as_quic_client_upload_unref(u);
			continue;
		}
		rv = ngtcp2_conn_open_bidi_stream(cc->base.conn, &sid, u);
		if (rv == NGTCP2_ERR_STREAM_ID_BLOCKED)
			return;
		g_queue_unlink(&self->pending, &u->pending_link);
		u->pending_link.data = NULL;
		if (rv != 0) {
			as_quic_client_upload_complete(u, NULL,
						       g_error_new(G_IO_ERROR, G_IO_ERROR_FAILED,
								   "cannot open QUIC stream: %s",
								   ngtcp2_strerror(rv)));
			as_quic_client_upload_unref(u);
			continue;
		}
		/* the pending queue's reference moves to the stream table */
		u->conn = cc;
		u->send.id = sid;
		g_hash_table_insert(cc->uploads, &u->send.id, u);
		if (u->request != NULL) {
			gsize len = 0;
			gconstpointer data = g_bytes_get_data(u->request, &len);
			cc->buffered += len;
			as_quic_conn_append(&cc->base, &u->send, g_memdup2(data, len), len);
		} else if (u->v2) {
			gsize len = 0;
			gconstpointer data = g_bytes_get_data(u->v2_file_frame, &len);
			cc->buffered += len;
			as_quic_conn_append(&cc->base, &u->send, g_memdup2(data, len), len);
			g_clear_pointer(&u->v2_file_frame, g_bytes_unref);
		} else {
			header_len = strlen(u->header);
			cc->buffered += header_len;
			as_quic_conn_append(&cc->base, &u->send,
					    (guint8 *)g_steal_pointer(&u->header), header_len);
		}
		if (u->size == 0 && !u->v2)
			as_quic_conn_finish_stream(&cc->base, &u->send);
		cc->need_fill = TRUE;
	}
}

/* ---- ngtcp2 callbacks ---- */

static int
as_quic_client_recv_stream_data_cb(ngtcp2_conn *conn,
				   uint32_t flags,
				   int64_t stream_id,
				   uint64_t offset,
				   const uint8_t *data,
				   size_t datalen,
				   void *user_data,
				   void *stream_user_data)
{
	AsQuicClientConn *cc = user_data;
	AsQuicClientUpload *u = stream_user_data;
	gboolean fin = (flags & NGTCP2_STREAM_DATA_FLAG_FIN) != 0;

	(void)ngtcp2_conn_extend_max_stream_offset(conn, stream_id, datalen);
	ngtcp2_conn_extend_max_offset(conn, datalen);
	if (cc->v2 && stream_id == cc->ctrl_send.id) {
		as_quic_client_v2_on_control(cc, data, datalen);
		return 0;
	}
	if (u == NULL || u->task == NULL)
		return 0;
	if (u->v2) {
		as_quic_client_v2_on_reply(cc, u, data, datalen, fin);
		return 0;
	}
	if (u->reply->len + datalen > AS_QUIC_REPLY_MAX_SIZE) {
		as_quic_client_upload_abandon(
			u, g_error_new(AS_ERROR, AS_ERROR_FAILED, "reply from receiver too long"));
		return 0;
	}
	g_byte_array_append(u->reply, data, (guint)datalen);
	if (fin && u->request != NULL && u->raw_bytes) {
		as_quic_client_upload_complete_full(u, g_bytes_new(u->reply->data, u->reply->len),
						    (GDestroyNotify)g_bytes_unref, NULL);
	} else if (fin && u->request != NULL) {
		as_quic_client_upload_complete(
			u, g_strndup((const gchar *)u->reply->data, u->reply->len), NULL);
	} else if (flags & NGTCP2_STREAM_DATA_FLAG_FIN) {
		g_autoptr(GError) error = NULL;
		if (as_quic_framing_parse_reply((const gchar *)u->reply->data, u->reply->len,
						&error)) {
			as_quic_client_upload_complete(
				u, g_strndup((const gchar *)u->reply->data, u->reply->len), NULL);
		} else {
			g_prefix_error(&error, "receiver refused %s: ", u->name);
			as_quic_client_upload_complete(u, NULL, g_steal_pointer(&error));
		}
		/* a refusal may come before everything was sent: stop reading the file */
		if (u->read_pos < u->size)
			as_quic_client_upload_drop_buffers(u);
	}
	return 0;
}

static int
as_quic_client_acked_stream_data_offset_cb(ngtcp2_conn *conn,
					   int64_t stream_id,
					   uint64_t offset,
					   uint64_t datalen,
					   void *user_data,
					   void *stream_user_data)
{
	AsQuicClientConn *cc = user_data;
	AsQuicClientUpload *u = stream_user_data;
	guint64 released;

	if (cc->v2 && stream_id == cc->ctrl_send.id) {
		released = as_quic_send_stream_ack(&cc->ctrl_send, offset, datalen);
		cc->buffered -= MIN(cc->buffered, released);
		return 0;
	}
	if (u == NULL)
		return 0;
	released = as_quic_send_stream_ack(&u->send, offset, datalen);
	cc->buffered -= MIN(cc->buffered, released);
	cc->client->stats.body_bytes_sent += released;
	if (released > 0)
		cc->need_fill = TRUE;
	return 0;
}

static int
as_quic_client_stream_close_cb(ngtcp2_conn *conn,
			       uint32_t flags,
			       int64_t stream_id,
			       uint64_t app_error_code,
			       void *user_data,
			       void *stream_user_data)
{
	AsQuicClientConn *cc = user_data;
	AsQuicClientUpload *u = stream_user_data;

	if (cc->v2 && stream_id == cc->ctrl_send.id) {
		as_quic_conn_unqueue_stream(&cc->base, &cc->ctrl_send);
		cc->ctrl_send.shut = TRUE;
		if (!cc->welcomed && cc->v2_error == NULL) {
			cc->v2_error = g_error_new_literal(G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED,
							   "receiver closed the control stream");
			as_quic_conn_schedule(&cc->base);
		}
		return 0;
	}
	if (u == NULL)
		return 0;
	if (u->task != NULL) {
		as_quic_client_upload_complete(
			u, NULL,
			g_error_new(G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED,
				    "receiver closed the stream of %s without "
				    "a reply (code 0x%" G_GINT64_MODIFIER "x)",
				    u->name, app_error_code));
	}
	as_quic_client_upload_drop_buffers(u);
	u->conn = NULL;
	g_hash_table_remove(cc->uploads, &stream_id);
	return 0;
}

static int
as_quic_client_stream_stop_sending_cb(ngtcp2_conn *conn,
				      int64_t stream_id,
				      uint64_t app_error_code,
				      void *user_data,
				      void *stream_user_data)
{
	AsQuicClientUpload *u = stream_user_data;

	/* ngtcp2 calls this when we stop reading (an abandoned upload): nothing more goes out.
	 * A receiver's refusal is STOP_SENDING from its side, which ngtcp2 answers by resetting
	 * ours; its ERROR frame says why */
	if (u != NULL)
		as_quic_client_upload_drop_buffers(u);
	return 0;
}

static int
as_quic_client_extend_max_stream_data_cb(ngtcp2_conn *conn,
					 int64_t stream_id,
					 uint64_t max_data,
					 void *user_data,
					 void *stream_user_data)
{
	AsQuicClientConn *cc = user_data;
	AsQuicClientUpload *u = stream_user_data;

	if (cc->v2 && stream_id == cc->ctrl_send.id && cc->ctrl_send.blocked) {
		cc->ctrl_send.blocked = FALSE;
		as_quic_conn_queue_stream(&cc->base, &cc->ctrl_send);
		return 0;
	}
	if (u != NULL && u->send.blocked) {
		u->send.blocked = FALSE;
		as_quic_conn_queue_stream(&cc->base, &u->send);
	}
	return 0;
}

static int
as_quic_client_extend_max_local_streams_bidi_cb(ngtcp2_conn *conn,
						uint64_t max_streams,
						void *user_data)
{
	AsQuicClientConn *cc = user_data;
	as_quic_conn_schedule(&cc->base);
	return 0;
}

static int
as_quic_client_handshake_completed_cb(ngtcp2_conn *conn, void *user_data)
{
	AsQuicClientConn *cc = user_data;
	g_autofree gchar *alpn = as_quic_conn_get_alpn(&cc->base);

	cc->handshake_done = TRUE;
	cc->v2 = g_strcmp0(alpn, AS_QUIC_ALPN_V2) == 0;
	as_quic_conn_schedule(&cc->base);
	return 0;
}

static int
as_quic_client_get_new_connection_id_cb(
	ngtcp2_conn *conn, ngtcp2_cid *cid, uint8_t *token, size_t cidlen, void *user_data)
{
	as_quic_random(cid->data, cidlen);
	cid->datalen = cidlen;
	as_quic_random(token, NGTCP2_STATELESS_RESET_TOKENLEN);
	return 0;
}

static const ngtcp2_callbacks as_quic_client_callbacks = {
	.client_initial = ngtcp2_crypto_client_initial_cb,
	.recv_crypto_data = ngtcp2_crypto_recv_crypto_data_cb,
	.handshake_completed = as_quic_client_handshake_completed_cb,
	.encrypt = ngtcp2_crypto_encrypt_cb,
	.decrypt = ngtcp2_crypto_decrypt_cb,
	.hp_mask = ngtcp2_crypto_hp_mask_cb,
	.recv_stream_data = as_quic_client_recv_stream_data_cb,
	.acked_stream_data_offset = as_quic_client_acked_stream_data_offset_cb,
	.stream_close = as_quic_client_stream_close_cb,
	.recv_retry = ngtcp2_crypto_recv_retry_cb,
	.extend_max_local_streams_bidi = as_quic_client_extend_max_local_streams_bidi_cb,
	.rand = as_quic_rand_cb,
	.get_new_connection_id = as_quic_client_get_new_connection_id_cb,
	.update_key = ngtcp2_crypto_update_key_cb,
	.extend_max_stream_data = as_quic_client_extend_max_stream_data_cb,
	.delete_crypto_aead_ctx = ngtcp2_crypto_delete_crypto_aead_ctx_cb,
	.delete_crypto_cipher_ctx = ngtcp2_crypto_delete_crypto_cipher_ctx_cb,
	.get_path_challenge_data = ngtcp2_crypto_get_path_challenge_data_cb,
	.stream_stop_sending = as_quic_client_stream_stop_sending_cb,
	.version_negotiation = ngtcp2_crypto_version_negotiation_cb,
};

/* ---- certificate checking ---- */

static int
as_quic_client_verify_cb(gnutls_session_t session)
{
	ngtcp2_crypto_conn_ref *ref = gnutls_session_get_ptr(session);
	AsQuicClientConn *cc = ref->user_data;
	AsQuicClient *self = cc->client;
	const gnutls_datum_t *certs;
	guint n_certs = 0;

	certs = gnutls_certificate_get_peers(session, &n_certs);
	if (certs == NULL || n_certs == 0) {
		cc->verify_error = g_error_new(AS_ERROR, AS_ERROR_PERMISSION_DENIED,
					       "%s sent no certificate", cc->remote);
		return -1;
	}
	g_free(cc->fingerprint);
	cc->fingerprint = as_sha256_data_hex(certs[0].data, certs[0].size);
	if (self->pin != NULL) {
		if (!as_memeq_const_time(cc->fingerprint, self->pin, AS_SHA256_HEX_LEN)) {
			cc->verify_error = g_error_new(AS_ERROR, AS_ERROR_PERMISSION_DENIED,
						       "certificate of %s has SHA-256 %s, not the "
						       "pinned %s",
						       cc->remote, cc->fingerprint, self->pin);
			return -1;
		}
		return 0;
	}
	if (self->insecure) {
		g_warning("accepting the certificate of %s without verification (insecure mode), "
			  "SHA-256 %s",
			  cc->remote, cc->fingerprint);
	}
	/* CA mode: GnuTLS verified the chain and name before calling us */
	return 0;
}

static gboolean
as_quic_client_setup_creds(AsQuicClient *self, GError **error)
{
	int rc;

	if (self->creds != NULL)
		return TRUE;
	rc = gnutls_certificate_allocate_credentials(&self->creds);
	if (rc < 0) {
		g_set_error(error, AS_ERROR, AS_ERROR_FAILED, "%s", gnutls_strerror(rc));
		return FALSE;
	}
	if (self->pin == NULL && !self->insecure) {
		if (self->ca_file != NULL)
			rc = gnutls_certificate_set_x509_trust_file(self->creds, self->ca_file,
								    GNUTLS_X509_FMT_PEM);
		else
			rc = gnutls_certificate_set_x509_system_trust(self->creds);
		if (rc <= 0 && self->ca_file != NULL) {
			g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
				    "no CA certificates in %s%s%s", self->ca_file,
				    rc < 0 ? ": " : "", rc < 0 ? gnutls_strerror(rc) : "");
			gnutls_certificate_free_credentials(self->creds);
			self->creds = NULL;
			return FALSE;
		}
	}
	gnutls_certificate_set_verify_function(self->creds, as_quic_client_verify_cb);
	return TRUE;
}

/* ---- connections ---- */

static void
as_quic_client_conn_free(AsQuicClientConn *cc, const GError *error)
{
	GHashTableIter iter;
	gpointer value;

	g_hash_table_iter_init(&iter, cc->uploads);
	while (g_hash_table_iter_next(&iter, NULL, &value)) {
		AsQuicClientUpload *u = value;
		GError *upload_error =
			error != NULL ? g_error_copy(error)
				      : g_error_new(G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED,
						    "QUIC connection closed before %s completed",
						    u->name);
		as_quic_client_upload_complete(u, NULL, upload_error);
		as_quic_client_upload_drop_buffers(u);
		u->conn = NULL;
	}
	g_hash_table_remove_all(cc->uploads);
	as_quic_conn_unqueue_stream(&cc->base, &cc->ctrl_send);
	as_quic_send_stream_clear(&cc->ctrl_send);
	g_byte_array_unref(cc->ctrl_rx);
	g_clear_error(&cc->v2_error);
	as_quic_conn_clear(&cc->base);
	as_quic_socket_free(cc->sock);
	g_hash_table_unref(cc->uploads);
	g_clear_error(&cc->verify_error);
	g_free(cc->fingerprint);
	g_free(cc->remote);
	g_free(cc);
}

static void
as_quic_client_stop_attempt_timer(AsQuicClient *self)
{
	if (self->attempt_timer != NULL) {
		g_source_destroy(self->attempt_timer);
		g_clear_pointer(&self->attempt_timer, g_source_unref);
	}
}

/* connecting failed for good: every waiter learns why */
static void
as_quic_client_fail_connect(AsQuicClient *self, GError *error)
{
	GTask *task;
	AsQuicClientUpload *u;

	self->connecting = FALSE;
	as_quic_client_stop_attempt_timer(self);
	if (self->resolve_cancellable != NULL) {
		g_cancellable_cancel(self->resolve_cancellable);
		g_clear_object(&self->resolve_cancellable);
	}
	g_list_free_full(g_steal_pointer(&self->addresses), g_object_unref);
	g_clear_error(&self->attempt_error);
	if (self->connect_tasks.length > 0 || self->pending.length > 0)
		g_debug("cannot connect to %s:%u: %s", self->host, self->port, error->message);
	while ((task = g_queue_pop_head(&self->connect_tasks)) != NULL)
		as_quic_client_complete(self, task, NULL, g_error_copy(error));
	while (self->pending.head != NULL) {
		/* the links are embedded in the uploads: unlink, never free */
		u = self->pending.head->data;
		g_queue_unlink(&self->pending, &u->pending_link);
		u->pending_link.data = NULL;
		as_quic_client_upload_complete(u, NULL, g_error_copy(error));
		as_quic_client_upload_unref(u);
	}
	g_error_free(error);
}

static GError *
as_quic_client_conn_failure(AsQuicClientConn *cc, const GError *error)
{
	AsQuicClient *self = cc->client;
	unsigned int status;

	if (cc->verify_error != NULL)
		return g_error_copy(cc->verify_error);
	/* (unsigned)-1: no verification took place */
	status = cc->base.session != NULL ? gnutls_session_get_verify_cert_status(cc->base.session)
					  : (unsigned int)-1;
	if (status != 0 && status != (unsigned int)-1 && self->pin == NULL && !self->insecure) {
		gnutls_datum_t out = {NULL, 0};
		GError *tls_error;
		(void)gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &out,
								   0);
		tls_error = g_error_new(AS_ERROR, AS_ERROR_PERMISSION_DENIED,
					"certificate of %s is not trusted: %s", cc->remote,
					out.data != NULL ? (const gchar *)out.data
							 : "verification failed");
		gnutls_free(out.data);
		return tls_error;
	}
	if (error != NULL)
		return g_error_copy(error);
	return g_error_new(G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED,
			   "QUIC connection to %s closed during the handshake", cc->remote);
}

static void
as_quic_client_conn_closed(AsQuicConn *conn, const GError *error)
{
	AsQuicClientConn *cc = (AsQuicClientConn *)conn;
	AsQuicClient *self = cc->client;
	gboolean announced = cc->announced;
	GError *failure = NULL;

	g_return_if_fail(self->conn == cc);
	self->conn = NULL;
	if (!announced) {
		failure = as_quic_client_conn_failure(cc, error);
		g_debug("attempt on %s failed: %s", cc->remote, failure->message);
		/* a receiver that refused our HELLO passed the certificate check: tell that apart
		 * from a certificate that failed it */
		g_free(self->peer_fingerprint);
		self->peer_fingerprint = cc->handshake_done ? g_strdup(cc->fingerprint) : NULL;
	}
	as_quic_client_conn_free(cc, error);
	if (announced) {
		/* uploads that had no stream yet get a new connection */
		if (self->pending.length > 0)
			as_quic_client_ensure_connecting(self);
		return;
	}
	as_quic_client_stop_attempt_timer(self);
	/* a certificate that fails is no reason to try the host's other addresses */
	if (g_error_matches(failure, AS_ERROR, AS_ERROR_PERMISSION_DENIED)) {
		as_quic_client_fail_connect(self, failure);
		return;
	}
	g_clear_error(&self->attempt_error);
	self->attempt_error = failure;
	as_quic_client_try_next(self);
}

static void
as_quic_client_conn_announce(AsQuicClientConn *cc)
{
	AsQuicClient *self = cc->client;
	g_autofree gchar *alpn = as_quic_conn_get_alpn(&cc->base);
	GTask *task;

	cc->announced = TRUE;
	self->connecting = FALSE;
	self->stats.connections++;
	as_quic_client_stop_attempt_timer(self);
	g_list_free_full(g_steal_pointer(&self->addresses), g_object_unref);
	g_clear_error(&self->attempt_error);
	g_free(self->peer_fingerprint);
	self->peer_fingerprint = g_strdup(cc->fingerprint);
	g_free(self->remote_address);
	self->remote_address = g_strdup(cc->remote);
	g_debug("connected to %s, ALPN %s", cc->remote, alpn);
	while ((task = g_queue_pop_head(&self->connect_tasks)) != NULL)
		as_quic_client_complete(self, task, NULL, NULL);
}

/* while uploads wait for their reply (the receiver may verify a large file for a while) PINGs
 * keep the connection from idling out; an idle connection is left to time out */
static void
as_quic_client_conn_update_keep_alive(AsQuicClientConn *cc)
{
	gboolean busy = g_hash_table_size(cc->uploads) > 0;

	if (busy == cc->keep_alive)
		return;
	cc->keep_alive = busy;
	/* 0 turns it off (UINT64_MAX would overflow inside ngtcp2 0.12 and fire at once) */
	ngtcp2_conn_set_keep_alive_timeout(
		cc->base.conn, busy ? (guint64)cc->client->idle_timeout_ms * NGTCP2_MILLISECONDS /
					       AS_QUIC_CLIENT_KEEP_ALIVE_DIVISOR
				    : 0);
}

static void
as_quic_client_conn_prepare_write(AsQuicConn *conn)
{
	AsQuicClientConn *cc = (AsQuicClientConn *)conn;

	if (!cc->handshake_done)
		return;
	if (cc->v2_error != NULL) {
		ngtcp2_connection_close_error ccerr;
		const gchar *reason = "aerosync/2 control stream failed";
		ngtcp2_connection_close_error_default(&ccerr);
		ngtcp2_connection_close_error_set_application_error(
			&ccerr, AS_QUIC_APP_ERROR_REFUSED, (const uint8_t *)reason, strlen(reason));
		as_quic_conn_set_error(&cc->base, g_steal_pointer(&cc->v2_error));
		as_quic_conn_close(&cc->base, &ccerr);
		return;
	}
	if (!cc->announced) {
		/* aerosync/2: connected once the receiver accepted the HELLO */
		if (cc->v2 && !cc->welcomed) {
			as_quic_client_v2_open_control(cc);
			return;
		}
		as_quic_client_conn_announce(cc);
	}
	as_quic_client_conn_open_streams(cc);
	if (cc->need_fill)
		as_quic_client_conn_fill(cc);
	as_quic_client_conn_update_keep_alive(cc);
}

static const AsQuicConnVfuncs as_quic_client_conn_vfuncs = {
	.prepare_write = as_quic_client_conn_prepare_write,
	.closed = as_quic_client_conn_closed,
};

static void
as_quic_client_on_datagram(AsQuicSocket *sock, const AsQuicDatagram *dgram, gpointer user_data)
{
	AsQuicClientConn *cc = user_data;
	(void)as_quic_conn_read(&cc->base, dgram);
}

static void
as_quic_client_on_socket_error(AsQuicSocket *sock, int errsv, gpointer user_data)
{
	AsQuicClientConn *cc = user_data;

	/* an ICMP port unreachable on the connected socket */
	if (errsv == ECONNREFUSED)
		as_quic_conn_refused(&cc->base);
}

static AsQuicClientConn *
as_quic_client_conn_new(AsQuicClient *self, GInetSocketAddress *remote, GError **error)
{
	g_autoptr(AsQuicSocket) sock = NULL;
	AsQuicClientConn *cc;
	const struct sockaddr *local;
	socklen_t local_len = 0;
	struct sockaddr_storage remote_ss;
	socklen_t remote_len = 0;
	ngtcp2_cid dcid;
	ngtcp2_cid scid;
	ngtcp2_settings settings;
	ngtcp2_transport_params params;
	ngtcp2_path path;
	gnutls_datum_t alpn = {(guchar *)self->alpn, (guint)strlen(self->alpn)};
	g_autoptr(GInetAddress) host_inet = g_inet_address_new_from_string(self->host);
	int rv;

	if (!as_quic_sockaddr_from_inet(remote, &remote_ss, &remote_len, error))
		return NULL;
	sock = as_quic_socket_new_connected(remote, error);
	if (sock == NULL)
		return NULL;
	local = as_quic_socket_get_local(sock, &local_len);

	cc = g_new0(AsQuicClientConn, 1);
	cc->client = self;
	cc->remote = as_quic_sockaddr_to_string((struct sockaddr *)&remote_ss, remote_len);
	cc->uploads = g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL,
					    (GDestroyNotify)as_quic_client_upload_unref);
	as_quic_send_stream_init(&cc->ctrl_send);
	cc->ctrl_rx = g_byte_array_new();
	as_quic_conn_init(&cc->base, &as_quic_client_conn_vfuncs, sock, self->context, local,
			  local_len, (struct sockaddr *)&remote_ss, remote_len);
	cc->base.no_linger_before_handshake = TRUE;

	dcid.datalen = AS_QUIC_CLIENT_DCID_LEN;
	as_quic_random(dcid.data, dcid.datalen);
	scid.datalen = AS_QUIC_SCID_LEN;
	as_quic_random(scid.data, scid.datalen);
	ngtcp2_settings_default(&settings);
	settings.initial_ts = as_quic_now_ns();
	settings.cc_algo = as_quic_cc_algo_to_ngtcp2(self->cc_algo);
	/* ngtcp2's own deadline is a backstop behind our per-address timer */
	settings.handshake_timeout = (guint64)self->handshake_timeout_ms * NGTCP2_MILLISECONDS * 2;
	ngtcp2_transport_params_default(&params);
	params.initial_max_stream_data_bidi_local = AS_QUIC_CLIENT_RX_STREAM_WINDOW;
	params.initial_max_data = AS_QUIC_CLIENT_RX_CONN_WINDOW;
	params.initial_max_streams_bidi = 0;
	params.initial_max_streams_uni = 0;
	params.max_idle_timeout = (guint64)self->idle_timeout_ms * NGTCP2_MILLISECONDS;
	path.local.addr = (ngtcp2_sockaddr *)local;
	path.local.addrlen = local_len;
	path.remote.addr = (ngtcp2_sockaddr *)&remote_ss;
	path.remote.addrlen = remote_len;
	path.user_data = NULL;
	rv = ngtcp2_conn_client_new(&cc->base.conn, &dcid, &scid, &path, NGTCP2_PROTO_VER_V1,
				    &as_quic_client_callbacks, &settings, &params, NULL, cc);
	if (rv != 0) {
		g_set_error(error, AS_ERROR, AS_ERROR_FAILED, "cannot create QUIC connection: %s",
			    ngtcp2_strerror(rv));
		cc->sock = g_steal_pointer(&sock);
		as_quic_client_conn_free(cc, NULL);
		return NULL;
	}
	if (!as_quic_conn_setup_tls(&cc->base, FALSE, self->creds, &alpn, 1, error)) {
		cc->sock = g_steal_pointer(&sock);
		as_quic_client_conn_free(cc, NULL);
		return NULL;
	}
	/* SNI only for names; CA mode also checks the name (or IP) against the certificate */
	if (host_inet == NULL) {
		(void)gnutls_server_name_set(cc->base.session, GNUTLS_NAME_DNS, self->host,
					     strlen(self->host));
	}
	if (self->pin == NULL && !self->insecure)
		gnutls_session_set_verify_cert(cc->base.session, self->host, 0);

	cc->sock = g_steal_pointer(&sock);
	as_quic_socket_start(cc->sock, self->context, as_quic_client_on_datagram,
			     as_quic_client_on_socket_error, cc);
	as_quic_conn_schedule(&cc->base);
	return cc;
}

static gboolean
as_quic_client_attempt_timeout_cb(gpointer user_data)
{
	AsQuicClient *self = AS_QUIC_CLIENT(user_data);
	AsQuicClientConn *cc = self->conn;

	g_clear_pointer(&self->attempt_timer, g_source_unref);
	if (cc == NULL || cc->announced)
		return G_SOURCE_REMOVE;
	g_clear_error(&self->attempt_error);
	self->attempt_error = g_error_new(G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
					  "QUIC handshake with %s:%u (%s) timed out", self->host,
					  self->port, cc->remote);
	self->conn = NULL;
	as_quic_client_conn_free(cc, NULL);
	as_quic_client_try_next(self);
	return G_SOURCE_REMOVE;
}

static void
as_quic_client_try_next(AsQuicClient *self)
{
	while (self->addresses != NULL) {
		g_autoptr(GInetAddress) inet = self->addresses->data;
		g_autoptr(GSocketAddress) sa = g_inet_socket_address_new(inet, self->port);
		g_autoptr(GError) error = NULL;
		gint64 remaining_us = self->connect_deadline_us - g_get_monotonic_time();
		guint n_left = g_list_length(self->addresses);
		AsQuicClientConn *cc;

		self->addresses = g_list_delete_link(self->addresses, self->addresses);
		if (remaining_us <= 0)
			break;
		cc = as_quic_client_conn_new(self, G_INET_SOCKET_ADDRESS(sa), &error);
		if (cc == NULL) {
			g_clear_error(&self->attempt_error);
			self->attempt_error = g_steal_pointer(&error);
			continue;
		}
		self->conn = cc;
		/* share what is left of the deadline among the addresses left, so a black hole on
		 * the first one does not eat the whole budget */
		self->attempt_timer =
			g_timeout_source_new((guint)MAX(remaining_us / n_left / 1000, 1));
		g_source_set_callback(self->attempt_timer, as_quic_client_attempt_timeout_cb, self,
				      NULL);
		g_source_attach(self->attempt_timer, self->context);
		return;
	}
	if (self->attempt_error == NULL) {
		self->attempt_error =
			g_error_new(G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
				    "QUIC handshake with %s:%u timed out after %u ms", self->host,
				    self->port, self->handshake_timeout_ms);
	} else if (g_error_matches(self->attempt_error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT)) {
		g_clear_error(&self->attempt_error);
		self->attempt_error =
			g_error_new(G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
				    "QUIC handshake with %s:%u timed out after %u ms", self->host,
				    self->port, self->handshake_timeout_ms);
	}
	as_quic_client_fail_connect(self, g_steal_pointer(&self->attempt_error));
}

typedef struct {
	AsQuicClient *client;	   /* owned */
	GCancellable *cancellable; /* owned: tells this lookup from a later one */
} AsQuicClientResolve;

static void
as_quic_client_resolve_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	AsQuicClientResolve *ctx = user_data;
	g_autoptr(AsQuicClient) self = ctx->client;
	g_autoptr(GCancellable) cancellable = ctx->cancellable;
	g_autoptr(GError) error = NULL;
	GList *addresses;

	g_free(ctx);
	addresses = g_resolver_lookup_by_name_finish(G_RESOLVER(source), res, &error);
	/* given up (timeout, close) or superseded by a later connect */
	if (cancellable != self->resolve_cancellable || !self->connecting) {
		g_resolver_free_addresses(addresses);
		return;
	}
	g_clear_object(&self->resolve_cancellable);
	as_quic_client_stop_attempt_timer(self);
	if (addresses == NULL) {
		GError *resolve_error =
			g_error_new(G_IO_ERROR, G_IO_ERROR_HOST_NOT_FOUND, "cannot resolve %s: %s",
				    self->host, error->message);
		as_quic_client_fail_connect(self, resolve_error);
		return;
	}
	self->addresses = addresses;
	as_quic_client_try_next(self);
}

static gboolean
as_quic_client_resolve_timeout_cb(gpointer user_data)
{
	AsQuicClient *self = AS_QUIC_CLIENT(user_data);

	g_clear_pointer(&self->attempt_timer, g_source_unref);
	as_quic_client_fail_connect(self, g_error_new(G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
						      "resolving %s timed out after %u ms",
						      self->host, self->handshake_timeout_ms));
	return G_SOURCE_REMOVE;
}

static void
as_quic_client_ensure_connecting(AsQuicClient *self)
{
	g_autoptr(GInetAddress) inet = NULL;
	g_autoptr(GResolver) resolver = NULL;
	AsQuicClientResolve *ctx;
	GError *error = NULL;

	if (self->conn != NULL || self->connecting)
		return;
	if (!as_quic_client_setup_creds(self, &error)) {
		as_quic_client_fail_connect(self, error);
		return;
	}
	self->connecting = TRUE;
	g_clear_error(&self->attempt_error);
	self->connect_deadline_us =
		g_get_monotonic_time() + (gint64)self->handshake_timeout_ms * 1000;
	inet = g_inet_address_new_from_string(self->host);
	if (inet != NULL) {
		self->addresses = g_list_append(NULL, g_steal_pointer(&inet));
		as_quic_client_try_next(self);
		return;
	}
	/* A and AAAA, in the order getaddrinfo prefers; the deadline covers the lookup too */
	ctx = g_new0(AsQuicClientResolve, 1);
	ctx->client = g_object_ref(self);
	ctx->cancellable = g_cancellable_new();
	self->resolve_cancellable = g_object_ref(ctx->cancellable);
	self->attempt_timer = g_timeout_source_new(self->handshake_timeout_ms);
	g_source_set_callback(self->attempt_timer, as_quic_client_resolve_timeout_cb, self, NULL);
	g_source_attach(self->attempt_timer, self->context);
	resolver = g_resolver_get_default();
	g_resolver_lookup_by_name_async(resolver, self->host, ctx->cancellable,
					as_quic_client_resolve_cb, ctx);
}

/* ---- public API ---- */

/**
 * as_quic_client_new:
 * @host: a host name or IP address literal
 * @port: the UDP port
 *
 * Creates a client that keeps one QUIC connection to @host for many uploads, each on its own
 * bidirectional stream, in the AeroSync 0.x framing. It lives in the thread-default main context
 * of the caller; use it from that thread only.
 *
 * The certificate is checked against the system CA store and @host unless
 * as_quic_client_set_pin() or as_quic_client_set_ca_file() say otherwise; it is never accepted
 * unchecked unless as_quic_client_set_insecure() asks for it.
 *
 * Returns: (transfer full): a new #AsQuicClient, not connected yet
 **/
AsQuicClient *
as_quic_client_new(const gchar *host, guint16 port)
{
	AsQuicClient *self;

	g_return_val_if_fail(host != NULL && host[0] != '\0', NULL);
	g_return_val_if_fail(port != 0, NULL);

	self = g_object_new(AS_TYPE_QUIC_CLIENT, NULL);
	/* a bracketed IPv6 literal is accepted as well */
	if (host[0] == '[' && g_str_has_suffix(host, "]"))
		self->host = g_strndup(host + 1, strlen(host) - 2);
	else
		self->host = g_strdup(host);
	self->port = port;
	return self;
}

/**
 * as_quic_client_set_alpn:
 *
 * The ALPN offered, %AS_QUIC_ALPN_V1 by default; %AS_QUIC_ALPN_LEGACY speaks to 0.1 receivers.
 **/
void
as_quic_client_set_alpn(AsQuicClient *self, const gchar *alpn)
{
	g_return_if_fail(AS_IS_QUIC_CLIENT(self));
	g_return_if_fail(alpn != NULL && alpn[0] != '\0' && strlen(alpn) < 256);
	g_free(self->alpn);
	self->alpn = g_strdup(alpn);
}

/**
 * as_quic_client_set_pin:
 * @sha256_hex: (nullable): the SHA-256 of the receiver's DER certificate (64 hex digits, case
 *   and `:` separators ignored), or %NULL to go back to CA verification
 *
 * Accepts exactly that certificate, whatever its name, issuer or dates: how a self-signed
 * receiver announced by mDNS or `/health` is trusted. Must be called before connecting.
 **/
void
as_quic_client_set_pin(AsQuicClient *self, const gchar *sha256_hex)
{
	g_autofree gchar *normalized = NULL;

	g_return_if_fail(AS_IS_QUIC_CLIENT(self));

	g_clear_pointer(&self->pin, g_free);
	if (sha256_hex == NULL)
		return;
	normalized = g_ascii_strdown(sha256_hex, -1);
	{
		gchar **parts = g_strsplit(normalized, ":", -1);
		g_free(normalized);
		normalized = g_strjoinv("", parts);
		g_strfreev(parts);
	}
	g_return_if_fail(as_sha256_hex_is_valid(normalized));
	self->pin = g_steal_pointer(&normalized);
}

/**
 * as_quic_client_set_ca_file:
 * @ca_file: (nullable): a PEM bundle of trusted CAs, or %NULL for the system store
 *
 * CA verification (the default when no pin is set) against @ca_file instead of the system trust.
 **/
void
as_quic_client_set_ca_file(AsQuicClient *self, const gchar *ca_file)
{
	g_return_if_fail(AS_IS_QUIC_CLIENT(self));
	g_free(self->ca_file);
	self->ca_file = g_strdup(ca_file);
}

/**
 * as_quic_client_set_insecure:
 *
 * Accepts any certificate (with a warning in the log for every connection); only for an
 * explicit `--insecure`. The fingerprint seen is still available afterwards, e.g. to pin it.
 **/
void
as_quic_client_set_insecure(AsQuicClient *self, gboolean insecure)
{
	g_return_if_fail(AS_IS_QUIC_CLIENT(self));
	self->insecure = insecure;
}

/**
 * as_quic_client_set_handshake_timeout_ms:
 *
 * How long connecting may take, over all addresses of the host, before it fails with
 * %G_IO_ERROR_TIMED_OUT; default %AS_QUIC_CLIENT_DEFAULT_HANDSHAKE_TIMEOUT_MS.
 **/
void
as_quic_client_set_handshake_timeout_ms(AsQuicClient *self, guint timeout_ms)
{
	g_return_if_fail(AS_IS_QUIC_CLIENT(self));
	g_return_if_fail(timeout_ms > 0);
	self->handshake_timeout_ms = timeout_ms;
}

/**
 * as_quic_client_set_idle_timeout_ms:
 *
 * An idle connection is closed after this long; the next upload reconnects.
 **/
void
as_quic_client_set_idle_timeout_ms(AsQuicClient *self, guint timeout_ms)
{
	g_return_if_fail(AS_IS_QUIC_CLIENT(self));
	self->idle_timeout_ms = timeout_ms;
}

/**
 * as_quic_client_set_limiters:
 * @self: a #AsQuicClient
 * @limiter_a: (nullable): e.g. the transfer's own rate limit
 * @limiter_b: (nullable): e.g. the daemon-wide one
 *
 * Paces the reads of file bodies (as_quic_client_upload_fd_async() and aerosync/2 uploads)
 * by both limiters, as they are at each read, so a rate changed later applies too.
 **/
void
as_quic_client_set_limiters(AsQuicClient *self, AsRateLimiter *limiter_a, AsRateLimiter *limiter_b)
{
	g_return_if_fail(AS_IS_QUIC_CLIENT(self));
	g_set_object(&self->limiter_a, limiter_a);
	g_set_object(&self->limiter_b, limiter_b);
}

/**
 * as_quic_client_set_cc_algo:
 *
 * Congestion control for the uploads, CUBIC by default. Applies to the next connection.
 **/
void
as_quic_client_set_cc_algo(AsQuicClient *self, AsQuicCcAlgo cc_algo)
{
	g_return_if_fail(AS_IS_QUIC_CLIENT(self));
	self->cc_algo = cc_algo;
}

/**
 * as_quic_client_connect_async:
 * @self: a #AsQuicClient
 * @cancellable: (nullable): a #GCancellable
 * @callback: called when connected or failed
 * @user_data: for @callback
 *
 * Resolves the host (A and AAAA) and tries its addresses in order until a handshake completes,
 * within the handshake timeout. Completes at once if already connected. Uploads connect by
 * themselves; this is for a caller that wants to know early whether QUIC works (and fall back
 * to HTTP if not).
 *
 * Errors: %G_IO_ERROR_TIMED_OUT (no answer, e.g. UDP filtered), %G_IO_ERROR_CONNECTION_REFUSED
 * (ICMP unreachable or the server refused), %G_IO_ERROR_HOST_NOT_FOUND,
 * %G_IO_ERROR_NOT_SUPPORTED (no common ALPN), %AS_ERROR_PERMISSION_DENIED (certificate pin
 * mismatch or untrusted certificate).
 **/
void
as_quic_client_connect_async(AsQuicClient *self,
			     GCancellable *cancellable,
			     GAsyncReadyCallback callback,
			     gpointer user_data)
{
	g_autoptr(GTask) task = NULL;

	g_return_if_fail(AS_IS_QUIC_CLIENT(self));

	task = g_task_new(self, cancellable, callback, user_data);
	g_task_set_source_tag(task, as_quic_client_connect_async);
	g_task_set_check_cancellable(task, TRUE);
	if (self->conn != NULL && self->conn->announced) {
		g_task_return_boolean(task, TRUE);
		return;
	}
	g_queue_push_tail(&self->connect_tasks, g_steal_pointer(&task));
	as_quic_client_ensure_connecting(self);
}

/**
 * as_quic_client_connect_finish:
 *
 * Returns: %TRUE if connected
 **/
gboolean
as_quic_client_connect_finish(AsQuicClient *self, GAsyncResult *res, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(res, self), FALSE);
	return g_task_propagate_boolean(G_TASK(res), error);
}

/**
 * as_quic_client_is_connected:
 *
 * Returns: %TRUE while a connection is established
 **/
gboolean
as_quic_client_is_connected(AsQuicClient *self)
{
	g_return_val_if_fail(AS_IS_QUIC_CLIENT(self), FALSE);
	return self->conn != NULL && self->conn->announced &&
	       as_quic_conn_is_open(&self->conn->base);
}

/**
 * as_quic_client_get_peer_fingerprint:
 *
 * Returns: (nullable): the SHA-256 of the certificate of the last connected receiver (lower-case
 * hex), e.g. to record it for trust on first use; after a failed connect, that of the receiver
 * if its certificate passed and it refused the connection itself (a wrong token), else %NULL
 **/
const gchar *
as_quic_client_get_peer_fingerprint(AsQuicClient *self)
{
	g_return_val_if_fail(AS_IS_QUIC_CLIENT(self), NULL);
	return self->peer_fingerprint;
}

/**
 * as_quic_client_get_remote_address:
 *
 * Returns: (nullable): the address of the last connected receiver, e.g. `[::1]:7789`
 **/
const gchar *
as_quic_client_get_remote_address(AsQuicClient *self)
{
	g_return_val_if_fail(AS_IS_QUIC_CLIENT(self), NULL);
	return self->remote_address;
}

static gboolean
as_quic_client_upload_cancelled_cb(GCancellable *cancellable, gpointer user_data)
{
	AsQuicClientUpload *u = user_data;
	AsQuicClient *self = u->client;

	g_clear_pointer(&u->cancel_source, g_source_unref);
	if (u->pending_link.data != NULL) {
		g_queue_unlink(&self->pending, &u->pending_link);
		u->pending_link.data = NULL;
		as_quic_client_upload_complete(
			u, NULL,
			g_error_new_literal(G_IO_ERROR, G_IO_ERROR_CANCELLED, "upload cancelled"));
		as_quic_client_upload_unref(u);
		return G_SOURCE_REMOVE;
	}
	as_quic_client_upload_abandon(
		u, g_error_new_literal(G_IO_ERROR, G_IO_ERROR_CANCELLED, "upload cancelled"));
	return G_SOURCE_REMOVE;
}

static AsQuicClientUpload *
as_quic_client_upload_new(AsQuicClient *self,
			  GTask *task,
			  const gchar *name,
			  GInputStream *stream,
			  int fd,
			  guint64 offset,
			  guint64 size,
			  GCancellable *cancellable)
{
	AsQuicClientUpload *u = g_new0(AsQuicClientUpload, 1);

	u->refcount = 1;
	u->client = self;
	u->task = task;
	as_quic_send_stream_init(&u->send);
	u->name = g_strdup(name);
	u->size = size;
	u->input = stream != NULL ? g_object_ref(stream) : NULL;
	u->fd = fd;
	u->fd_offset = offset;
	u->reply = g_byte_array_new();
	if (cancellable != NULL) {
		u->cancel_source = g_cancellable_source_new(cancellable);
		g_source_set_callback(u->cancel_source,
				      G_SOURCE_FUNC(as_quic_client_upload_cancelled_cb), u, NULL);
		g_source_attach(u->cancel_source, self->context);
	}
	return u;
}

static void
as_quic_client_upload_enqueue(AsQuicClient *self, AsQuicClientUpload *u)
{
	u->pending_link.data = u;
	g_queue_push_tail_link(&self->pending, &u->pending_link);
	if (self->conn != NULL && self->conn->announced)
		as_quic_conn_schedule(&self->conn->base);
	else
		as_quic_client_ensure_connecting(self);
}

static gboolean
as_quic_client_is_v2(AsQuicClient *self)
{
	return g_strcmp0(self->alpn, AS_QUIC_ALPN_V2) == 0;
}

/* (transfer none): the upload, or %NULL if it failed at once */
static AsQuicClientUpload *
as_quic_client_upload_start(AsQuicClient *self,
			    const gchar *name,
			    GBytes *request,
			    GInputStream *stream,
			    int fd,
			    guint64 offset,
			    guint64 size,
			    const gchar *token,
			    const gchar *sha256,
			    GCancellable *cancellable,
			    GAsyncReadyCallback callback,
			    gpointer user_data)
{
	g_autoptr(GTask) task = g_task_new(self, cancellable, callback, user_data);
	g_autoptr(GError) error = NULL;
	g_autofree gchar *header = NULL;
	AsQuicClientUpload *u;

	g_task_set_source_tag(task, as_quic_client_upload_async);
	if (request == NULL && as_quic_client_is_v2(self)) {
		g_set_error_literal(&error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
				    "0.x uploads need ALPN aerosync/1; use "
				    "as_quic_client_v2_upload_fd_async() with aerosync/2");
	} else if (request == NULL) {
		header = as_quic_framing_format_header(name, size, token, NULL, sha256, &error);
	}
	if (request == NULL && header == NULL) {
		if (fd >= 0)
			close(fd);
		g_task_return_error(task, g_steal_pointer(&error));
		return NULL;
	}
	u = as_quic_client_upload_new(self, g_steal_pointer(&task), name, stream, fd, offset, size,
				      cancellable);
	u->header = g_steal_pointer(&header);
	u->request = request != NULL ? g_bytes_ref(request) : NULL;
	as_quic_client_upload_enqueue(self, u);
	return u;
}

/**
 * as_quic_client_upload_async:
 * @self: a #AsQuicClient
 * @name: the file name the receiver stores (no `:` or control characters)
 * @stream: the data; exactly @size bytes are read from it, with async reads
 * @size: the number of bytes
 * @token: (nullable): the receiver's auth token
 * @sha256: (nullable): the SHA-256 of the data in hex, sent as the HASH line for the receiver
 *   to verify; compute it beforehand (the header precedes the data)
 * @cancellable: (nullable): cancels this upload only (the stream is reset)
 * @callback: called with the outcome
 * @user_data: for @callback
 *
 * Uploads on a new stream of the shared connection, connecting first if needed; any number may
 * run at once, the receiver's stream limit queues the rest. Reads ahead at most
 * %AS_QUIC_CLIENT_STREAM_BUFFER_MAX per upload and %AS_QUIC_CLIENT_CONN_BUFFER_MAX per
 * connection, and only as fast as the receiver grants flow-control credit.
 **/
void
as_quic_client_upload_async(AsQuicClient *self,
			    const gchar *name,
			    GInputStream *stream,
			    guint64 size,
			    const gchar *token,
			    const gchar *sha256,
			    GCancellable *cancellable,
			    GAsyncReadyCallback callback,
			    gpointer user_data)
{
	g_return_if_fail(AS_IS_QUIC_CLIENT(self));
	g_return_if_fail(name != NULL);
	g_return_if_fail(G_IS_INPUT_STREAM(stream));

	as_quic_client_upload_start(self, name, NULL, stream, -1, 0, size, token, sha256,
				    cancellable, callback, user_data);
}

/**
 * as_quic_client_upload_fd_async:
 * @fd: a readable file descriptor; it is duplicated, the caller keeps its own
 * @offset: where the data starts in @fd (read with pread() in a worker thread, so the file
 *   offset of @fd does not move)
 *
 * As as_quic_client_upload_async(), for a range of a file.
 **/
void
as_quic_client_upload_fd_async(AsQuicClient *self,
			       const gchar *name,
			       int fd,
			       guint64 offset,
			       guint64 size,
			       const gchar *token,
			       const gchar *sha256,
			       GCancellable *cancellable,
			       GAsyncReadyCallback callback,
			       gpointer user_data)
{
	int dup_fd;

	g_return_if_fail(AS_IS_QUIC_CLIENT(self));
	g_return_if_fail(name != NULL);
	g_return_if_fail(fd >= 0);

	dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (dup_fd < 0) {
		int errsv = errno;
		g_task_report_new_error(self, callback, user_data, as_quic_client_upload_async,
					G_IO_ERROR, g_io_error_from_errno(errsv),
					"cannot duplicate file descriptor: %s", g_strerror(errsv));
		return;
	}
	as_quic_client_upload_start(self, name, NULL, NULL, dup_fd, offset, size, token, sha256,
				    cancellable, callback, user_data);
}

/**
 * as_quic_client_upload_finish:
 * @self: a #AsQuicClient
 * @res: the result
 * @error: (nullable): optional return location for an error
 *
 * Returns: (transfer full): the receiver's reply, `SUCCESS`, or %NULL with an error: a refusal
 * by the receiver is the #AsError its `ERROR:` text maps to (%AS_ERROR_PERMISSION_DENIED for
 * `Unauthorized`, %AS_ERROR_HASH_MISMATCH, %AS_ERROR_INCOMPLETE, ...), a transport failure a
 * #GIOErrorEnum (connection lost: %G_IO_ERROR_CONNECTION_CLOSED) or the connect errors of
 * as_quic_client_connect_async()
 **/
gchar *
as_quic_client_upload_finish(AsQuicClient *self, GAsyncResult *res, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(res, self), NULL);
	return g_task_propagate_pointer(G_TASK(res), error);
}

/**
 * as_quic_client_request_async:
 * @self: a #AsQuicClient
 * @request: every byte of the stream, header included; FIN follows
 * @cancellable: (nullable): a #GCancellable
 * @callback: called with the reply
 * @user_data: for @callback
 *
 * Sends @request as it is on a new stream and collects the receiver's reply, unparsed. This is
 * for protocol tests and diagnostics (a malformed or truncated upload, a 0.x sender's exact
 * bytes); uploads use as_quic_client_upload_async().
 **/
void
as_quic_client_request_async(AsQuicClient *self,
			     GBytes *request,
			     GCancellable *cancellable,
			     GAsyncReadyCallback callback,
			     gpointer user_data)
{
	g_return_if_fail(AS_IS_QUIC_CLIENT(self));
	g_return_if_fail(request != NULL);

	as_quic_client_upload_start(self, "request", request, NULL, -1, 0, 0, NULL, NULL,
				    cancellable, callback, user_data);
}

/**
 * as_quic_client_request_finish:
 *
 * Returns: (transfer full): the reply bytes as text (`SUCCESS`, `ERROR:...`, or empty if the
 * receiver sent none), or %NULL on a transport error
 **/
gchar *
as_quic_client_request_finish(AsQuicClient *self, GAsyncResult *res, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(res, self), NULL);
	return g_task_propagate_pointer(G_TASK(res), error);
}

/**
 * as_quic_client_request_bytes_async:
 * @self: a #AsQuicClient
 * @request: every byte of the stream; FIN follows
 * @cancellable: (nullable): a #GCancellable
 * @callback: called with the reply
 * @user_data: for @callback
 *
 * As as_quic_client_request_async(), for binary replies (`aerosync/2` frames): the reply is
 * returned as it came, at most %AS_QUIC_REPLY_MAX_SIZE bytes. With ALPN `aerosync/2` the stream
 * opens once the connection is authenticated.
 **/
void
as_quic_client_request_bytes_async(AsQuicClient *self,
				   GBytes *request,
				   GCancellable *cancellable,
				   GAsyncReadyCallback callback,
				   gpointer user_data)
{
	AsQuicClientUpload *u;

	g_return_if_fail(AS_IS_QUIC_CLIENT(self));
	g_return_if_fail(request != NULL);

	u = as_quic_client_upload_start(self, "request", request, NULL, -1, 0, 0, NULL, NULL,
					cancellable, callback, user_data);
	if (u != NULL)
		u->raw_bytes = TRUE;
}

/**
 * as_quic_client_request_bytes_finish:
 *
 * Returns: (transfer full): the reply bytes (possibly empty), or %NULL on a transport error
 **/
GBytes *
as_quic_client_request_bytes_finish(AsQuicClient *self, GAsyncResult *res, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(res, self), NULL);
	return g_task_propagate_pointer(G_TASK(res), error);
}

/**
 * as_quic_client_set_token:
 * @token: (nullable): the receiver's auth token
 *
 * The token an `aerosync/2` connection authenticates with, once, in its HELLO. Applies to the
 * next connection.
 **/
void
as_quic_client_set_token(AsQuicClient *self, const gchar *token)
{
	g_return_if_fail(AS_IS_QUIC_CLIENT(self));
	g_return_if_fail(token == NULL || strlen(token) <= AS_QUIC_V2_MAX_TOKEN_LEN);
	g_free(self->token);
	self->token = g_strdup(token);
}

/**
 * as_quic_v2_upload_result_free:
 **/
void
as_quic_v2_upload_result_free(AsQuicV2UploadResult *result)
{
	if (result == NULL)
		return;
	g_free(result->saved_as);
	g_free(result->sha256);
	g_free(result);
}

/**
 * as_quic_client_v2_upload_fd_async:
 * @self: a #AsQuicClient whose ALPN is %AS_QUIC_ALPN_V2
 * @path: the relative path the receiver stores the file under (it confines it)
 * @fd: a readable file descriptor; duplicated, the caller keeps its own
 * @offset: where the file's data starts in @fd
 * @size: the file size
 * @task_id: the resumable task id, `[A-Za-z0-9_-]{1,64}`: the same id resumes the same task,
 *   over QUIC or over HTTP's `/upload/chunk`
 * @chunk_size: the chunk size, 0 for %AS_QUIC_V2_DEFAULT_CHUNK_SIZE; a resumed task must keep
 *   the size it started with
 * @sha256: (nullable): the whole file's SHA-256, which the receiver verifies before publishing
 * @cancellable: (nullable): cancels this upload only (its stream is reset; the chunks already
 *   stored stay, so a later upload with @task_id resumes)
 * @callback: called with the outcome
 * @user_data: for @callback
 *
 * Uploads a file with `aerosync/2` on a new stream of the shared, authenticated connection.
 * The receiver answers with the chunks it already holds and only the others are sent, each
 * with its SHA-256 (computed here while reading, in a worker thread). Any number may run at
 * once; memory is bounded as for as_quic_client_upload_fd_async().
 **/
void
as_quic_client_v2_upload_fd_async(AsQuicClient *self,
				  const gchar *path,
				  int fd,
				  guint64 offset,
				  guint64 size,
				  const gchar *task_id,
				  guint64 chunk_size,
				  const gchar *sha256,
				  GCancellable *cancellable,
				  GAsyncReadyCallback callback,
				  gpointer user_data)
{
	g_autoptr(GTask) task = NULL;
	g_autoptr(GByteArray) frame = NULL;
	GError *error = NULL;
	AsQuicV2Msg msg = {.type = AS_QUIC_V2_MSG_FILE};
	AsQuicClientUpload *u;
	guint32 total_chunks = 0;
	int dup_fd;

	g_return_if_fail(AS_IS_QUIC_CLIENT(self));
	g_return_if_fail(path != NULL);
	g_return_if_fail(fd >= 0);

	task = g_task_new(self, cancellable, callback, user_data);
	g_task_set_source_tag(task, as_quic_client_v2_upload_fd_async);
	if (!as_quic_client_is_v2(self)) {
		g_task_return_new_error(task, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
					"aerosync/2 uploads need as_quic_client_set_alpn(%s)",
					AS_QUIC_ALPN_V2);
		return;
	}
	if (chunk_size == 0)
		chunk_size = AS_QUIC_V2_DEFAULT_CHUNK_SIZE;
	msg.size = size;
	msg.chunk_size = chunk_size;
	msg.sha256 = (gchar *)sha256;
	msg.task_id = (gchar *)task_id;
	msg.path = (gchar *)path;
	frame = as_quic_v2_encode(&msg, &error);
	if (frame == NULL || !as_quic_v2_file_check(size, chunk_size, &total_chunks, &error)) {
		g_task_return_error(task, error);
		return;
	}
	dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (dup_fd < 0) {
		int errsv = errno;
		g_task_return_new_error(task, G_IO_ERROR, g_io_error_from_errno(errsv),
					"cannot duplicate file descriptor: %s", g_strerror(errsv));
		return;
	}
	u = as_quic_client_upload_new(self, g_steal_pointer(&task), path, NULL, dup_fd, offset,
				      size, cancellable);
	u->v2 = TRUE;
	u->v2_file_frame = g_byte_array_free_to_bytes(g_steal_pointer(&frame));
	u->task_id = g_strdup(task_id);
	u->chunk_size = chunk_size;
	u->total_chunks = total_chunks;
	as_quic_client_upload_enqueue(self, u);
}

/**
 * as_quic_client_v2_upload_finish:
 * @self: a #AsQuicClient
 * @res: the result
 * @error: (nullable): optional return location for an error
 *
 * Returns: (transfer full): what the receiver published (free with
 * as_quic_v2_upload_result_free()), or %NULL with an error: the #AsError of the receiver's
 * ERROR (%AS_ERROR_PERMISSION_DENIED, %AS_ERROR_HASH_MISMATCH for a chunk or the whole file,
 * %AS_ERROR_INCOMPLETE, %AS_ERROR_CONFLICT for a task started with other sizes, ...), a
 * transport error, or a connect error (see as_quic_client_connect_async()). After an error
 * other than a whole-file mismatch, the same @task_id resumes where it stopped.
 **/
AsQuicV2UploadResult *
as_quic_client_v2_upload_finish(AsQuicClient *self, GAsyncResult *res, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(res, self), NULL);
	return g_task_propagate_pointer(G_TASK(res), error);
}

/**
 * as_quic_client_get_stats:
 * @self: a #AsQuicClient
 * @stats: (out caller-allocates): the snapshot
 **/
void
as_quic_client_get_stats(AsQuicClient *self, AsQuicClientStats *stats)
{
	g_return_if_fail(AS_IS_QUIC_CLIENT(self));
	g_return_if_fail(stats != NULL);

	*stats = self->stats;
	stats->connected = as_quic_client_is_connected(self);
	if (stats->connected) {
		ngtcp2_conn_stat cstat;
		ngtcp2_conn_get_conn_stat(self->conn->base.conn, &cstat);
		stats->smoothed_rtt_us = cstat.smoothed_rtt / NGTCP2_MICROSECONDS;
		stats->min_rtt_us = cstat.min_rtt / NGTCP2_MICROSECONDS;
		stats->cwnd = cstat.cwnd;
		stats->bytes_in_flight = cstat.bytes_in_flight;
		stats->delivery_rate = cstat.delivery_rate_sec;
	}
}

/**
 * as_quic_client_close:
 * @self: a #AsQuicClient
 *
 * Closes the connection (CONNECTION_CLOSE, no error) and fails whatever is still running with
 * %G_IO_ERROR_CLOSED. The client can connect again afterwards.
 **/
void
as_quic_client_close(AsQuicClient *self)
{
	GError *error;

	g_return_if_fail(AS_IS_QUIC_CLIENT(self));

	error = g_error_new_literal(G_IO_ERROR, G_IO_ERROR_CLOSED, "QUIC client closed");
	if (self->conn != NULL) {
		AsQuicClientConn *cc = g_steal_pointer(&self->conn);
		as_quic_conn_close_now(&cc->base, AS_QUIC_APP_ERROR_NONE, NULL);
		as_quic_client_conn_free(cc, error);
	}
	as_quic_client_fail_connect(self, error);
}

static void
as_quic_client_dispose(GObject *object)
{
	AsQuicClient *self = AS_QUIC_CLIENT(object);

	as_quic_client_close(self);
	if (self->completion_source != NULL) {
		/* nothing can be queued for a client nobody holds: tasks keep it alive */
		g_source_destroy(self->completion_source);
		g_clear_pointer(&self->completion_source, g_source_unref);
		as_quic_client_completion_cb(self);
	}
	G_OBJECT_CLASS(as_quic_client_parent_class)->dispose(object);
}

static void
as_quic_client_finalize(GObject *object)
{
	AsQuicClient *self = AS_QUIC_CLIENT(object);

	if (self->creds != NULL)
		gnutls_certificate_free_credentials(self->creds);
	g_main_context_unref(self->context);
	g_free(self->host);
	g_free(self->alpn);
	g_free(self->pin);
	g_free(self->ca_file);
	g_free(self->token);
	g_free(self->peer_fingerprint);
	g_free(self->remote_address);
	g_clear_object(&self->limiter_a);
	g_clear_object(&self->limiter_b);
	G_OBJECT_CLASS(as_quic_client_parent_class)->finalize(object);
}

static void
as_quic_client_class_init(AsQuicClientClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);
	object_class->dispose = as_quic_client_dispose;
	object_class->finalize = as_quic_client_finalize;

	/**
	 * AsQuicClient::v2-event:
	 * @self: the client
	 * @kind: `progress`, `completed` or `failed`
	 * @task_id: the task it is about
	 * @bytes_done: bytes of the task stored at the receiver
	 * @total: the file size
	 * @detail: (nullable): the saved path, or why it failed
	 *
	 * An event the `aerosync/2` receiver sent on the control stream; it covers the uploads of
	 * this connection. Emitted from an idle callback, like the upload results.
	 **/
	as_quic_client_signals[SIGNAL_V2_EVENT] =
		g_signal_new("v2-event", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
			     NULL, G_TYPE_NONE, 5, G_TYPE_STRING, G_TYPE_STRING, G_TYPE_UINT64,
			     G_TYPE_UINT64, G_TYPE_STRING);
}

static void
as_quic_client_init(AsQuicClient *self)
{
	self->context = g_main_context_ref_thread_default();
	self->alpn = g_strdup(AS_QUIC_ALPN_V1);
	self->handshake_timeout_ms = AS_QUIC_CLIENT_DEFAULT_HANDSHAKE_TIMEOUT_MS;
	self->idle_timeout_ms = AS_QUIC_CLIENT_DEFAULT_IDLE_TIMEOUT_MS;
	/* measured on loopback with as-quic-bench, 512 MiB x 3 each into aerosyncd: CUBIC 397-434,
	 * BBR 409-428, BBR2 394-496 MB/s, within the noise of each other; loopback has no
	 * bottleneck queue where they differ, so the default stays ngtcp2's well-worn CUBIC */
	self->cc_algo = AS_QUIC_CC_ALGO_CUBIC;
	g_queue_init(&self->connect_tasks);
	g_queue_init(&self->pending);
	g_queue_init(&self->completions);
}
