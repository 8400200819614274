/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "AsHttpPump"

#include "config.h"

#include <errno.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "as-error.h"
#include "as-http-pump.h"
#include "as-sha256.h"
#include "as-write-behind.h"

/*
 * libsoup reads request bodies 8 KiB at a time on the main thread, copying each piece
 * into a GBytes and emitting a signal for it. For large raw bodies we take the
 * connection over once the headers are in and move the body with 1 MiB reads on a worker
 * thread that hashes and writes as it goes: one pass, one copy, the main loop stays free.
 * The reply is written by hand with "Connection: close".
 */

struct _AsHttpPump {
	GIOStream *stream; /* owned, stolen from libsoup */
	GSocket *socket;   /* owned */
	int fd;		   /* owned dup */
	guint64 offset;
	guint64 length;
	gboolean hash;
	gboolean write_behind;
	AsWriteBehind behind; /* pump thread only */
	gboolean expect_continue;
	gchar *peer;
	guint64 bytes_done; /* atomic: written by the worker, read by the progress timer */
	guint progress_id;
	AsHttpPumpProgressFunc progress_func;
	AsHttpPumpDoneFunc done_func;
	gpointer user_data;
	gchar *reply; /* owned, being written */
	int rcvlowat; /* SO_RCVLOWAT now on the socket, 0 before the first setsockopt() */
	gboolean rcvlowat_failed;
};

/* how often the main loop looks at a pump's progress */
#define AS_HTTP_PUMP_PROGRESS_MS 100

static guint as_http_pump_active = 0;
static guint as_http_pump_stolen_total = 0;

static void
as_http_pump_free(AsHttpPump *self)
{
	g_clear_handle_id(&self->progress_id, g_source_remove);
	if (self->fd >= 0)
		close(self->fd);
	g_clear_object(&self->stream);
	g_clear_object(&self->socket);
	g_free(self->peer);
	g_free(self->reply);
	g_free(self);
	as_http_pump_active--;
}

guint
as_http_pump_get_active(void)
{
	return as_http_pump_active;
}

/* libsoup never reports a stolen request as finished: the server subtracts these */
guint
as_http_pump_get_stolen_total(void)
{
	return as_http_pump_stolen_total;
}

const gchar *
as_http_pump_get_peer(AsHttpPump *self)
{
	return self->peer;
}

static gboolean
as_http_pump_pwrite_all(int fd, const guint8 *buf, gsize len, guint64 offset, GError **error)
{
	while (len > 0) {
		gssize n = pwrite(fd, buf, len, (off_t)offset);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == ENOSPC || errno == EDQUOT) {
				g_set_error_literal(error, AS_ERROR, AS_ERROR_NO_SPACE,
						    "no space left on the receiving disk");
			} else {
				g_set_error(error, AS_ERROR, AS_ERROR_IO, "write failed: %s",
					    g_strerror(errno));
			}
			return FALSE;
		}
		buf += n;
		len -= (gsize)n;
		offset += (guint64)n;
	}
	return TRUE;
}

/*
 * Senders write in small pieces (libsoup clients 8 KiB at a time), and each piece would wake
 * the pump for a poll() and a short recv(). With SO_RCVLOWAT the kernel wakes us only once
 * this much is queued, so a 1 MiB block takes a few reads. It never asks for more than what
 * is still missing from the body: the last bytes of a request would never reach the mark.
 */
static void
as_http_pump_set_rcvlowat(AsHttpPump *self, gsize missing)
{
	int lowat = (int)MIN(missing, (gsize)AS_HTTP_PUMP_RCVLOWAT);

	if (self->rcvlowat_failed || lowat == self->rcvlowat || lowat < 1)
		return;
	if (setsockopt(g_socket_get_fd(self->socket), SOL_SOCKET, SO_RCVLOWAT, &lowat,
		       sizeof(lowat)) < 0) {
		g_debug("SO_RCVLOWAT not available: %s", g_strerror(errno));
		self->rcvlowat_failed = TRUE;
		return;
	}
	self->rcvlowat = lowat;
}

/*
 * Fills @buf with exactly @want bytes unless the peer stops. Below the low-water mark the
 * kernel does not wake us, so the socket times out every AS_HTTP_PUMP_WAIT_S: bytes queued
 * by then are progress and are taken as they are (a slow, rate-limited sender must not fail);
 * only AS_HTTP_PUMP_IDLE_TIMEOUT_S without any byte is an error.
 */
static gssize
as_http_pump_read_full(AsHttpPump *self, GInputStream *in, guint8 *buf, gsize want, GError **error)
{
	gsize got = 0;
	guint idle_s = 0;
	gboolean trickle = FALSE;

	while (got < want) {
		g_autoptr(GError) error_local = NULL;
		gssize n;

		as_http_pump_set_rcvlowat(self, trickle ? 1 : want - got);
		n = g_input_stream_read(in, buf + got, want - got, NULL, &error_local);
		if (n < 0 && g_error_matches(error_local, G_IO_ERROR, G_IO_ERROR_TIMED_OUT)) {
			int queued = 0;
			if (ioctl(g_socket_get_fd(self->socket), FIONREAD, &queued) == 0 &&
			    queued > 0) {
				trickle = TRUE;
				idle_s = 0;
				continue;
			}
			idle_s += AS_HTTP_PUMP_WAIT_S;
			if (idle_s < AS_HTTP_PUMP_IDLE_TIMEOUT_S)
				continue;
		}
		if (n < 0) {
			g_propagate_error(error, g_steal_pointer(&error_local));
			return -1;
		}
		if (n == 0)
			break;
		got += (gsize)n;
		idle_s = 0;
		trickle = FALSE;
	}
	return (gssize)got;
}

/*
 * Hashing runs beside reading and writing: the pump thread reads a block and writes it
 * while a hash thread digests the same block (both only read it), so SHA-256 costs no wall
 * time while a core is free. A small ring of blocks bounds the memory.
 */
#define AS_HTTP_PUMP_RING 4

typedef struct {
	GAsyncQueue *to_hash; /* blocks in stream order; the ring's end marker last */
	GAsyncQueue *free;    /* blocks hashed and free for reuse */
	AsSha256 *sha;
	GThread *thread;
} AsHttpPumpHasher;

typedef struct {
	guint8 *data;
	gsize len;
} AsHttpPumpBlock;

static AsHttpPumpBlock as_http_pump_end_marker;

static gpointer
as_http_pump_hash_thread_cb(gpointer user_data)
{
	AsHttpPumpHasher *hasher = user_data;
	for (;;) {
		AsHttpPumpBlock *block = g_async_queue_pop(hasher->to_hash);
		if (block == &as_http_pump_end_marker)
			break;
		as_sha256_update(hasher->sha, block->data, block->len);
		g_async_queue_push(hasher->free, block);
	}
	return NULL;
}

static void
as_http_pump_block_free(gpointer data)
{
	AsHttpPumpBlock *block = data;
	g_free(block->data);
	g_free(block);
}

/* waits for the hash thread and frees every block; returns the digest or NULL */
static gchar *
as_http_pump_hasher_finish(AsHttpPumpHasher *hasher, gboolean want_digest)
{
	gchar *hex = NULL;

	g_async_queue_push(hasher->to_hash, &as_http_pump_end_marker);
	g_thread_join(hasher->thread);
	if (want_digest)
		hex = as_sha256_finish_hex(hasher->sha);
	as_sha256_free(hasher->sha);
	g_async_queue_unref(hasher->to_hash);
	g_async_queue_unref(hasher->free);
	return hex;
}

static void
as_http_pump_thread_cb(GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
	AsHttpPump *self = task_data;
	GInputStream *in = g_io_stream_get_input_stream(self->stream);
	GOutputStream *out = g_io_stream_get_output_stream(self->stream);
	AsHttpPumpHasher hasher = {0};
	g_autoptr(GError) error = NULL;
	g_autofree guint8 *plain = NULL;
	guint allocated = 0;
	guint64 done = 0;

	if (self->expect_continue) {
		const gchar *cont = "HTTP/1.1 100 Continue\r\n\r\n";
		if (!g_output_stream_write_all(out, cont, strlen(cont), NULL, NULL, &error)) {
			g_task_return_error(task, g_steal_pointer(&error));
			return;
		}
	}
	if (self->hash) {
		hasher.to_hash = g_async_queue_new();
		hasher.free = g_async_queue_new_full(as_http_pump_block_free);
		hasher.sha = as_sha256_new();
		hasher.thread = g_thread_new("pump-sha256", as_http_pump_hash_thread_cb, &hasher);
	} else {
		plain = g_malloc(AS_HTTP_PUMP_BLOCK_SIZE);
	}

	while (done < self->length) {
		gsize want = (gsize)MIN(self->length - done, AS_HTTP_PUMP_BLOCK_SIZE);
		AsHttpPumpBlock *block = NULL;
		guint8 *buf = plain;
		gssize n;

		if (self->hash) {
			/* a fresh block while the ring is not full, else wait for one to be hashed
			 */
			if (allocated < AS_HTTP_PUMP_RING) {
				block = g_new0(AsHttpPumpBlock, 1);
				block->data = g_malloc(AS_HTTP_PUMP_BLOCK_SIZE);
				allocated++;
			} else {
				block = g_async_queue_pop(hasher.free);
			}
			buf = block->data;
		}
		n = as_http_pump_read_full(self, in, buf, want, &error);
		if (n < 0) {
			if (block != NULL)
				as_http_pump_block_free(block);
			g_free(hasher.thread != NULL ? as_http_pump_hasher_finish(&hasher, FALSE)
						     : NULL);
			if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT))
				g_task_return_new_error(task, AS_ERROR, AS_ERROR_IO,
							"no data for %d s after %" G_GUINT64_FORMAT
							" of %" G_GUINT64_FORMAT " bytes",
							AS_HTTP_PUMP_IDLE_TIMEOUT_S, done,
							self->length);
			else
				g_task_return_new_error(task, AS_ERROR, AS_ERROR_IO,
							"receiving failed after %" G_GUINT64_FORMAT
							" bytes: %s",
							done, error->message);
			return;
		}
		if (block != NULL) {
			block->len = (gsize)n;
			g_async_queue_push(hasher.to_hash, block);
		}
		if (!as_http_pump_pwrite_all(self->fd, buf, (gsize)n, self->offset + done,
					     &error)) {
			/* read and drop the rest so the sender sees our answer, not a reset */
			g_autofree guint8 *drain = g_malloc(AS_HTTP_PUMP_BLOCK_SIZE);
			guint64 left = self->length - done - (guint64)n;
			g_socket_set_timeout(self->socket, AS_HTTP_PUMP_IDLE_TIMEOUT_S);
			as_http_pump_set_rcvlowat(self, 1);
			g_free(hasher.thread != NULL ? as_http_pump_hasher_finish(&hasher, FALSE)
						     : NULL);
			while (left > 0) {
				gssize m = g_input_stream_read(
					in, drain, (gsize)MIN(left, AS_HTTP_PUMP_BLOCK_SIZE), NULL,
					NULL);
				if (m <= 0)
					break;
				left -= (guint64)m;
			}
			g_task_return_error(task, g_steal_pointer(&error));
			return;
		}
		if (self->write_behind)
			as_write_behind_advance(&self->behind, done + (guint64)n);
		done += (guint64)n;
		__atomic_store_n(&self->bytes_done, done, __ATOMIC_RELAXED);
		if ((gsize)n < want) {
			g_free(hasher.thread != NULL ? as_http_pump_hasher_finish(&hasher, FALSE)
						     : NULL);
			g_task_return_new_error(task, AS_ERROR, AS_ERROR_IO,
						"connection closed after %" G_GUINT64_FORMAT
						" of %" G_GUINT64_FORMAT " bytes",
						done, self->length);
			return;
		}
	}
	if (self->write_behind && !as_write_behind_finish(&self->behind, &error)) {
		g_free(hasher.thread != NULL ? as_http_pump_hasher_finish(&hasher, FALSE) : NULL);
		g_task_return_error(task, g_steal_pointer(&error));
		return;
	}
	g_task_return_pointer(task,
			      self->hash ? as_http_pump_hasher_finish(&hasher, TRUE) : g_strdup(""),
			      g_free);
}

static gboolean
as_http_pump_progress_cb(gpointer user_data)
{
	AsHttpPump *self = user_data;
	if (self->progress_func != NULL)
		self->progress_func(self, __atomic_load_n(&self->bytes_done, __ATOMIC_RELAXED),
				    self->user_data);
	return G_SOURCE_CONTINUE;
}

static void
as_http_pump_done_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	AsHttpPump *self = user_data;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *sha256 = g_task_propagate_pointer(G_TASK(res), &error);

	g_clear_handle_id(&self->progress_id, g_source_remove);
	/* the reply is written with the ordinary idle timeout */
	g_socket_set_timeout(self->socket, AS_HTTP_PUMP_IDLE_TIMEOUT_S);
	as_http_pump_progress_cb(self);
	self->done_func(self, sha256, error, self->user_data);
}

/**
 * as_http_pump_can_take:
 * @msg: a request whose headers are in
 * @length: the length of its body
 *
 * The pump reads the plain socket, so it takes large bodies of unencrypted connections only;
 * a TLS connection's body stays with libsoup, which decrypts it.
 *
 * Returns: %TRUE if as_http_pump_start() may take @msg over
 **/
gboolean
as_http_pump_can_take(SoupServerMessage *msg, guint64 length)
{
	GUri *uri = soup_server_message_get_uri(msg);

	if (length < AS_HTTP_PUMP_MIN_BYTES)
		return FALSE;
	return uri != NULL && g_strcmp0(g_uri_get_scheme(uri), "http") == 0;
}

AsHttpPump *
as_http_pump_start(SoupServerMessage *msg,
		   int fd,
		   guint64 offset,
		   guint64 length,
		   gboolean hash,
		   AsHttpPumpProgressFunc progress_func,
		   AsHttpPumpDoneFunc done_func,
		   gpointer user_data)
{
	return as_http_pump_start_full(msg, fd, offset, length,
				       hash ? AS_HTTP_PUMP_FLAG_HASH : AS_HTTP_PUMP_FLAG_NONE,
				       progress_func, done_func, user_data);
}

/**
 * as_http_pump_start_full:
 * @msg: a request whose headers are in, accepted by as_http_pump_can_take()
 * @fd: where the body goes; duplicated
 * @offset: where in @fd the body starts
 * @length: the body's length
 * @flags: %AS_HTTP_PUMP_FLAG_HASH to hash the body, %AS_HTTP_PUMP_FLAG_WRITE_BEHIND when @fd
 *   is a whole file nobody reads back while it arrives
 * @progress_func: called on the main loop while the body arrives
 * @done_func: called on the main loop once it is in or failed
 * @user_data: for both
 *
 * Takes the connection over from libsoup and moves the body to disk on a worker thread.
 *
 * Returns: (transfer none): the pump; it frees itself after its reply
 **/
AsHttpPump *
as_http_pump_start_full(SoupServerMessage *msg,
			int fd,
			guint64 offset,
			guint64 length,
			AsHttpPumpFlags flags,
			AsHttpPumpProgressFunc progress_func,
			AsHttpPumpDoneFunc done_func,
			gpointer user_data)
{
	gboolean hash = (flags & AS_HTTP_PUMP_FLAG_HASH) != 0;
	SoupMessageHeaders *hdrs = soup_server_message_get_request_headers(msg);
	AsHttpPump *self = g_new0(AsHttpPump, 1);
	g_autoptr(GTask) task = NULL;

	as_http_pump_active++;
	as_http_pump_stolen_total++;
	self->fd = dup(fd);
	self->offset = offset;
	self->length = length;
	self->hash = hash;
	self->write_behind = (flags & AS_HTTP_PUMP_FLAG_WRITE_BEHIND) != 0;
	as_write_behind_init(&self->behind, self->fd, offset);
	self->progress_func = progress_func;
	self->done_func = done_func;
	self->user_data = user_data;
	self->peer = g_strdup(soup_server_message_get_remote_host(msg));
	self->expect_continue =
		(soup_message_headers_get_expectations(hdrs) & SOUP_EXPECTATION_CONTINUE) != 0;
	self->socket = g_object_ref(soup_server_message_get_socket(msg));
	g_socket_set_timeout(self->socket, AS_HTTP_PUMP_WAIT_S);
	self->stream = soup_server_message_steal_connection(msg);
	self->progress_id = g_timeout_add(AS_HTTP_PUMP_PROGRESS_MS, as_http_pump_progress_cb, self);

	task = g_task_new(NULL, NULL, as_http_pump_done_cb, self);
	g_task_set_task_data(task, self, NULL);
	g_task_run_in_thread(task, as_http_pump_thread_cb);
	return self;
}

static void
as_http_pump_closed_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	AsHttpPump *self = user_data;
	g_io_stream_close_finish(G_IO_STREAM(source), res, NULL);
	as_http_pump_free(self);
}

static void
as_http_pump_written_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	AsHttpPump *self = user_data;
	g_autoptr(GError) error = NULL;

	if (!g_output_stream_write_all_finish(G_OUTPUT_STREAM(source), res, NULL, &error))
		g_debug("reply to %s not delivered: %s", self->peer, error->message);
	g_io_stream_close_async(self->stream, G_PRIORITY_DEFAULT, NULL, as_http_pump_closed_cb,
				self);
}

/* writes a whole HTTP/1.1 reply, closes the connection and frees @self */
void
as_http_pump_reply_json(AsHttpPump *self, guint status, JsonObject *obj)
{
	g_autoptr(JsonNode) node = json_node_new(JSON_NODE_OBJECT);
	g_autoptr(GDateTime) now = g_date_time_new_now_utc();
	g_autofree gchar *date = soup_date_time_to_string(now, SOUP_DATE_HTTP);
	g_autofree gchar *body = NULL;

	json_node_set_object(node, obj);
	body = json_to_string(node, FALSE);
	self->reply =
		g_strdup_printf("HTTP/1.1 %u %s\r\n"
				"Date: %s\r\n"
				"Server: aerosyncd/" PACKAGE_VERSION "\r\n"
				"Content-Type: application/json\r\n"
				"Content-Length: %zu\r\n"
				"Connection: close\r\n"
				"\r\n"
				"%s",
				status, soup_status_get_phrase(status), date, strlen(body), body);
	g_output_stream_write_all_async(g_io_stream_get_output_stream(self->stream), self->reply,
					strlen(self->reply), G_PRIORITY_DEFAULT, NULL,
					as_http_pump_written_cb, self);
}

void
as_http_pump_reply_error(AsHttpPump *self, guint status, const gchar *message)
{
	g_autoptr(JsonObject) obj = json_object_new();
	json_object_set_string_member(obj, "error", message);
	as_http_pump_reply_json(self, status, obj);
}
