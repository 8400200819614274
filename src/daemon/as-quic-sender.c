/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "AsQuicSender"

#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "as-error.h"
#include "as-known-peers.h"
#include "as-peer-trust.h"
#include "as-quic-client.h"
#include "as-quic-framing.h"
#include "as-quic-sender.h"
#include "as-quic-v2.h"
#include "as-sha256-state.h"
#include "as-sha256.h"

/* -------- a file as the body of one upload, paced by the rate limiters -------- */

#define AS_TYPE_QUIC_FILE_STREAM (as_quic_file_stream_get_type())
G_DECLARE_FINAL_TYPE(AsQuicFileStream, as_quic_file_stream, AS, QUIC_FILE_STREAM, GInputStream)

/* read in GIO's worker threads, one read at a time: the fields need no lock */
struct _AsQuicFileStream {
	GInputStream parent_instance;
	int fd; /* owned */
	guint64 size;
	guint64 pos;
	AsRateLimiter *limiter_a; /* owned ref, nullable */
	AsRateLimiter *limiter_b; /* owned ref, nullable */
	gint stop;		  /* atomic: the upload ended, a waiting read gives up */
};

G_DEFINE_TYPE(AsQuicFileStream, as_quic_file_stream, G_TYPE_INPUT_STREAM)

static gssize
as_quic_file_stream_read(
	GInputStream *stream, void *buffer, gsize count, GCancellable *cancellable, GError **error)
{
	AsQuicFileStream *self = AS_QUIC_FILE_STREAM(stream);
	gsize done = 0;

	count = (gsize)MIN((guint64)count, self->size - self->pos);
	if (count == 0)
		return 0;
	if (as_rate_limiter_pair_is_limited(self->limiter_a, self->limiter_b)) {
		count = MIN(count, (gsize)AS_QUIC_SENDER_LIMITED_READ_SIZE);
		if (!as_rate_limiter_wait_pair(self->limiter_a, self->limiter_b, count, &self->stop,
					       cancellable, AS_QUIC_SENDER_RATE_RECHECK_MS)) {
			if (!g_cancellable_set_error_if_cancelled(cancellable, error))
				g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_CANCELLED,
						    "the upload was stopped");
			return -1;
		}
	}
	while (done < count) {
		gssize n = pread(self->fd, (guint8 *)buffer + done, count - done,
				 (off_t)(self->pos + done));
		if (n < 0) {
			int errsv = errno;
			if (errsv == EINTR)
				continue;
			g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errsv), "%s",
				    g_strerror(errsv));
			return -1;
		}
		if (n == 0)
			break;
		done += (gsize)n;
	}
	self->pos += done;
	return (gssize)done;
}

static void
as_quic_file_stream_finalize(GObject *object)
{
	AsQuicFileStream *self = AS_QUIC_FILE_STREAM(object);

	if (self->fd >= 0)
		g_close(self->fd, NULL);
	g_clear_object(&self->limiter_a);
	g_clear_object(&self->limiter_b);
	G_OBJECT_CLASS(as_quic_file_stream_parent_class)->finalize(object);
}

static void
as_quic_file_stream_class_init(AsQuicFileStreamClass *klass)
{
	G_OBJECT_CLASS(klass)->finalize = as_quic_file_stream_finalize;
	G_INPUT_STREAM_CLASS(klass)->read_fn = as_quic_file_stream_read;
}

static void
as_quic_file_stream_init(AsQuicFileStream *self)
{
	self->fd = -1;
}

/* -------- the sender -------- */

struct _AsQuicSender {
	GObject parent_instance;
	AsQuicClient *client; /* owned */
	gchar *host;
	guint16 port;
	gchar *host_port; /* for messages, and the key in known_peers */
	gchar *token;
	AsPeerTrust *trust;	  /* owned: the receiver's certificate, decided as for HTTPS */
	gchar *pinned;		  /* what the handshake was pinned to, nullable */
	AsRateLimiter *limiter_a; /* owned ref, nullable */
	AsRateLimiter *limiter_b; /* owned ref, nullable */
	AsQuicSenderProgressFunc progress_func;
	gpointer progress_data;
	guint progress_id;
	gboolean trusted; /* the peer's identity was checked once: later handshakes are pinned */
	gboolean v2;	  /* aerosync/2 was negotiated */
	gboolean v1_only; /* the receiver refused aerosync/2: the 0.x framing from now on */
	guint n_active;	  /* uploads on the wire */
	guint64 active_bytes;
	guint64 acked_base; /* body_bytes_sent of the client that belongs to ended uploads */
};

G_DEFINE_TYPE(AsQuicSender, as_quic_sender, G_TYPE_OBJECT)

/**
 * as_quic_sender_parse_destination:
 * @destination: `quic://host[:port]`, `quic://[v6]:port`
 * @host: (out) (transfer full): the host, IPv6 without brackets
 * @port: (out): the port, %AS_QUIC_SENDER_DEFAULT_PORT when none is given
 * @error: (nullable): optional return location for an error
 *
 * Returns: %TRUE on success; %AS_ERROR_INVALID_ARGUMENT for anything else
 **/
gboolean
as_quic_sender_parse_destination(const gchar *destination,
				 gchar **host,
				 guint16 *port,
				 GError **error)
{
	g_autoptr(GUri) uri = NULL;
	const gchar *uri_host;
	const gchar *path;
	gint uri_port;

	g_return_val_if_fail(destination != NULL, FALSE);

	if (g_ascii_strncasecmp(destination, "quic://", 7) == 0)
		uri = g_uri_parse(destination, G_URI_FLAGS_NONE, NULL);
	uri_host = uri != NULL ? g_uri_get_host(uri) : NULL;
	path = uri != NULL ? g_uri_get_path(uri) : NULL;
	if (uri == NULL || uri_host == NULL || uri_host[0] == '\0' ||
	    g_uri_get_userinfo(uri) != NULL || g_uri_get_query(uri) != NULL ||
	    g_uri_get_fragment(uri) != NULL ||
	    (path != NULL && path[0] != '\0' && g_strcmp0(path, "/") != 0)) {
		g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
			    "'%s' is not a QUIC destination: use quic://HOST[:PORT]", destination);
		return FALSE;
	}
	uri_port = g_uri_get_port(uri);
	if (uri_port == 0 || uri_port > G_MAXUINT16) {
		g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT, "'%s' has no usable port",
			    destination);
		return FALSE;
	}
	*host = g_strdup(uri_host);
	*port = uri_port < 0 ? AS_QUIC_SENDER_DEFAULT_PORT : (guint16)uri_port;
	return TRUE;
}

/**
 * as_quic_sender_error_allows_fallback:
 * @error: an error of as_quic_sender_connect_finish()
 *
 * Returns: %TRUE when QUIC cannot reach the receiver (timeout, nothing listening, no common
 *   ALPN, no address), so HTTP may be tried; never for a certificate that failed its check
 **/
gboolean
as_quic_sender_error_allows_fallback(const GError *error)
{
	if (error == NULL || error->domain != G_IO_ERROR)
		return FALSE;
	switch (error->code) {
	case G_IO_ERROR_TIMED_OUT:
	case G_IO_ERROR_CONNECTION_REFUSED:
	case G_IO_ERROR_HOST_NOT_FOUND:
	case G_IO_ERROR_HOST_UNREACHABLE:
	case G_IO_ERROR_NETWORK_UNREACHABLE:
	case G_IO_ERROR_NOT_SUPPORTED:
	case G_IO_ERROR_CONNECTION_CLOSED:
	case G_IO_ERROR_FAILED:
		return TRUE;
	default:
		return FALSE;
	}
}

/**
 * as_quic_sender_error_is_retryable:
 * @error: an error of as_quic_sender_upload_finish()
 *
 * Returns: %TRUE for network trouble (the connection broke or timed out) after which the
 *   same file may go again; %FALSE for refusals, local errors and cancellation
 **/
gboolean
as_quic_sender_error_is_retryable(const GError *error)
{
	if (error == NULL || g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
		return FALSE;
	return error->domain == G_IO_ERROR || error->domain == G_RESOLVER_ERROR;
}

static gboolean
as_quic_sender_progress_cb(gpointer user_data)
{
	AsQuicSender *self = AS_QUIC_SENDER(user_data);

	if (self->progress_func != NULL)
		self->progress_func(self->progress_data);
	return G_SOURCE_CONTINUE;
}

static void
as_quic_sender_upload_begins(AsQuicSender *self, guint64 size)
{
	if (self->n_active++ == 0) {
		AsQuicClientStats stats;
		as_quic_client_get_stats(self->client, &stats);
		self->acked_base = stats.body_bytes_sent;
		if (self->progress_id == 0)
			self->progress_id = g_timeout_add(AS_QUIC_SENDER_PROGRESS_INTERVAL_MS,
							  as_quic_sender_progress_cb, self);
	}
	self->active_bytes += size;
}

static void
as_quic_sender_upload_ends(AsQuicSender *self, guint64 size, guint64 wire_bytes)
{
	self->active_bytes -= MIN(self->active_bytes, size);
	self->acked_base += wire_bytes;
	if (--self->n_active == 0)
		g_clear_handle_id(&self->progress_id, g_source_remove);
}

/**
 * as_quic_sender_get_bytes_in_flight:
 * @self: a #AsQuicSender
 *
 * Returns: body bytes of the uploads under way that the receiver acknowledged, for progress
 **/
guint64
as_quic_sender_get_bytes_in_flight(AsQuicSender *self)
{
	AsQuicClientStats stats;

	g_return_val_if_fail(AS_IS_QUIC_SENDER(self), 0);
	if (self->n_active == 0)
		return 0;
	as_quic_client_get_stats(self->client, &stats);
	if (stats.body_bytes_sent <= self->acked_base)
		return 0;
	return MIN(stats.body_bytes_sent - self->acked_base, self->active_bytes);
}

/* -------- connecting, with the identity checked -------- */

/* the fingerprint the certificate has, out of the client's pin mismatch message */
static gchar *
as_quic_sender_find_other_sha256(const gchar *text, const gchar *not_this)
{
	for (const gchar *p = text; p != NULL && *p != '\0'; p++) {
		gsize n = 0;
		g_autofree gchar *candidate = NULL;

		while (g_ascii_isxdigit(p[n]))
			n++;
		if (n != AS_SHA256_HEX_LEN) {
			p += n > 0 ? n - 1 : 0;
			continue;
		}
		candidate = g_ascii_strdown(p, (gssize)n);
		if (!as_sha256_hex_equal(candidate, not_this))
			return g_steal_pointer(&candidate);
		p += n - 1;
	}
	return NULL;
}

static void
as_quic_sender_connect_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = G_TASK(user_data);
	AsQuicSender *self = g_task_get_source_object(task);
	g_autoptr(GError) error = NULL;
	const gchar *fp;

	if (!as_quic_client_connect_finish(AS_QUIC_CLIENT(source), res, &error)) {
		/* a receiver without aerosync/2 refuses it in the handshake: the 0.x framing */
		if (!self->v1_only &&
		    g_error_matches(error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED)) {
			g_info("%s does not speak %s (%s); using %s", self->host_port,
			       AS_QUIC_ALPN_V2, error->message, AS_QUIC_ALPN_V1);
			self->v1_only = TRUE;
			as_quic_client_set_alpn(self->client, AS_QUIC_ALPN_V1);
			as_quic_client_connect_async(self->client, g_task_get_cancellable(task),
						     as_quic_sender_connect_cb,
						     g_steal_pointer(&task));
			return;
		}
		/* a certificate other than the one the handshake was pinned to: the trust's
		 * refusal (loud for a changed known peer); one whose certificate matched and that
		 * refused us itself (a wrong token) says why */
		fp = as_quic_client_get_peer_fingerprint(AS_QUIC_CLIENT(source));
		if (self->pinned != NULL &&
		    g_error_matches(error, AS_ERROR, AS_ERROR_PERMISSION_DENIED) &&
		    (fp == NULL || !as_sha256_hex_equal(fp, self->pinned))) {
			g_autofree gchar *seen =
				as_quic_sender_find_other_sha256(error->message, self->pinned);
			GError *refusal = as_peer_trust_refusal(self->trust, seen);
			g_warning("%s", refusal->message);
			g_task_return_error(task, refusal);
			return;
		}
		g_task_return_error(task, g_steal_pointer(&error));
		return;
	}
	self->v2 = !self->v1_only;
	fp = as_quic_client_get_peer_fingerprint(self->client);
	if (!self->trusted) {
		/* nothing was sent yet: the token only goes out once this has passed */
		if (as_peer_trust_check(self->trust, fp, FALSE, &error) ==
		    AS_PEER_TRUST_VERDICT_REFUSED) {
			as_quic_client_close(self->client);
			g_task_return_error(task, g_steal_pointer(&error));
			return;
		}
		/* every later handshake of this sender, after a reconnect too, must match */
		if (!as_peer_trust_get_insecure(self->trust)) {
			as_quic_client_set_insecure(self->client, FALSE);
			as_quic_client_set_pin(self->client, fp);
		}
		self->trusted = TRUE;
	}
	g_task_return_boolean(task, TRUE);
}

/**
 * as_quic_sender_connect_async:
 * @self: a #AsQuicSender
 * @cancellable: (nullable): a #GCancellable
 * @callback: called when connected and the receiver's identity is checked, or not
 * @user_data: data for @callback
 *
 * Connects within the handshake timeout. See as_quic_sender_error_allows_fallback() for the
 * failures after which HTTP may be tried; %AS_ERROR_PERMISSION_DENIED (pin mismatch, changed
 * certificate, untrusted certificate) is never one of them.
 **/
void
as_quic_sender_connect_async(AsQuicSender *self,
			     GCancellable *cancellable,
			     GAsyncReadyCallback callback,
			     gpointer user_data)
{
	GTask *task;

	g_return_if_fail(AS_IS_QUIC_SENDER(self));

	task = g_task_new(self, cancellable, callback, user_data);
	g_task_set_source_tag(task, as_quic_sender_connect_async);
	/* aerosync/2 first: resumable chunks on the receiver's chunk store, shared with HTTP;
	 * the client paces its reads of the file by the same limiters as the 0.x streams */
	as_quic_client_set_limiters(self->client, self->limiter_a, self->limiter_b);
	as_quic_client_set_alpn(self->client, self->v1_only ? AS_QUIC_ALPN_V1 : AS_QUIC_ALPN_V2);
	if (!self->trusted) {
		g_autoptr(GError) error = NULL;

		/* the pin, the recorded or the announced certificate; else the handshake only
		 * looks and as_peer_trust_check() decides */
		g_clear_pointer(&self->pinned, g_free);
		if (!as_peer_trust_prepare(self->trust, &self->pinned, &error)) {
			g_task_return_error(task, g_steal_pointer(&error));
			g_object_unref(task);
			return;
		}
		if (self->pinned != NULL)
			as_quic_client_set_pin(self->client, self->pinned);
		else
			as_quic_client_set_insecure(self->client, TRUE);
	}
	as_quic_client_connect_async(self->client, cancellable, as_quic_sender_connect_cb, task);
}

gboolean
as_quic_sender_connect_finish(AsQuicSender *self, GAsyncResult *res, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(res, self), FALSE);
	return g_task_propagate_boolean(G_TASK(res), error);
}

/**
 * as_quic_sender_is_v2:
 * @self: a #AsQuicSender
 *
 * Returns: %TRUE once connected with `aerosync/2`: use as_quic_sender_v2_upload_async()
 **/
gboolean
as_quic_sender_is_v2(AsQuicSender *self)
{
	g_return_val_if_fail(AS_IS_QUIC_SENDER(self), FALSE);
	return self->v2;
}

/**
 * as_quic_sender_get_peer_fingerprint:
 *
 * Returns: (nullable): the SHA-256 of the receiver's certificate, once connected
 **/
const gchar *
as_quic_sender_get_peer_fingerprint(AsQuicSender *self)
{
	g_return_val_if_fail(AS_IS_QUIC_SENDER(self), NULL);
	return as_quic_client_get_peer_fingerprint(self->client);
}

/* -------- uploads -------- */

typedef struct {
	gchar *source;
	gchar *name;
	guint64 size;
	gint64 mtime_us;
	gboolean verify;
	int fd;
	gchar *sha256;
	AsQuicFileStream *stream; /* owned ref, once on the wire */
	guint64 wire_bytes;	  /* header and body */
	gboolean active;
	/* aerosync/2 */
	gchar *task_id;
	guint64 chunk_size;
	guint32 total_chunks;
	GBytes *hash_blob;	   /* owned, nullable: saved whole-file hash of the first chunks */
	guint32 hashed_chunks;	   /* chunks in hash_blob */
	AsSha256State *hash;	   /* owned, loaded in the prepare thread, then the hasher's */
	GCancellable *cancellable; /* owned: this upload and its hasher */
	gulong cancelled_id;	   /* on the caller's cancellable */
	GCancellable *caller_cancellable; /* owned ref, nullable */
	AsQuicSenderHashFunc hash_func;
	gpointer hash_data;
	gboolean hashing;	      /* the hasher runs */
	gboolean upload_done;	      /* the receiver answered DONE */
	gboolean returned;	      /* the result went to the caller */
	AsQuicV2UploadResult *result; /* owned */
} AsQuicSenderUpload;

/* the caller's task of an aerosync/2 upload, and a hasher checkpoint on its way there */
typedef struct {
	GTask *task; /* owned ref */
	GBytes *blob;
	guint32 hashed_chunks;
} AsQuicSenderCheckpoint;

static void
as_quic_sender_upload_free(AsQuicSenderUpload *up)
{
	if (up->fd >= 0)
		g_close(up->fd, NULL);
	if (up->stream != NULL)
		g_atomic_int_set(&up->stream->stop, 1);
	g_clear_object(&up->stream);
	if (up->cancelled_id != 0)
		g_cancellable_disconnect(up->caller_cancellable, up->cancelled_id);
	g_clear_object(&up->caller_cancellable);
	g_clear_object(&up->cancellable);
	g_clear_pointer(&up->hash, as_sha256_state_free);
	g_clear_pointer(&up->hash_blob, g_bytes_unref);
	g_clear_pointer(&up->result, as_quic_v2_upload_result_free);
	g_free(up->task_id);
	g_free(up->source);
	g_free(up->name);
	g_free(up->sha256);
	g_free(up);
}

/* opens the source and checks it is the file that was listed */
static gboolean
as_quic_sender_open_source(AsQuicSenderUpload *up, GError **error)
{
	struct stat st;
	gint64 st_mtime_us;

	up->fd = g_open(up->source, O_RDONLY | O_CLOEXEC, 0);
	if (up->fd < 0) {
		int errsv = errno;
		/* never AS_ERROR_PERMISSION_DENIED: that code means the receiver refused us */
		g_set_error(error, AS_ERROR, errsv == ENOENT ? AS_ERROR_NOT_FOUND : AS_ERROR_IO,
			    "cannot open %s: %s", up->source, g_strerror(errsv));
		return FALSE;
	}
	if (fstat(up->fd, &st) != 0) {
		int errsv = errno;
		g_set_error(error, AS_ERROR, AS_ERROR_IO, "cannot stat %s: %s", up->source,
			    g_strerror(errsv));
		return FALSE;
	}
	st_mtime_us = (gint64)st.st_mtim.tv_sec * G_USEC_PER_SEC + st.st_mtim.tv_nsec / 1000;
	if (!S_ISREG(st.st_mode) || (guint64)st.st_size != up->size ||
	    (up->mtime_us != 0 && st_mtime_us != up->mtime_us)) {
		g_set_error(error, AS_ERROR, AS_ERROR_CONFLICT, "%s changed since the send started",
			    up->name);
		return FALSE;
	}
	return TRUE;
}

/* opens the source, checks it is the file that was listed, hashes it */
static void
as_quic_sender_hash_thread(GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
	AsQuicSenderUpload *up = data;
	GError *error = NULL;

	if (!as_quic_sender_open_source(up, &error)) {
		g_task_return_error(task, error);
		return;
	}
	up->sha256 = as_sha256_fd_range(up->fd, 0, up->size, cancellable, &error);
	if (up->sha256 == NULL) {
		g_prefix_error(&error, "cannot read %s: ", up->name);
		g_task_return_error(task, error);
		return;
	}
	g_task_return_boolean(task, TRUE);
}

static void
as_quic_sender_uploaded_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = G_TASK(user_data);
	AsQuicSender *self = g_task_get_source_object(task);
	AsQuicSenderUpload *up = g_task_get_task_data(task);
	g_autoptr(GError) error = NULL;
	g_autofree gchar *reply = as_quic_client_upload_finish(AS_QUIC_CLIENT(source), res, &error);

	if (up->active) {
		up->active = FALSE;
		as_quic_sender_upload_ends(self, up->size, reply != NULL ? up->wire_bytes : 0);
	}
	if (up->stream != NULL)
		g_atomic_int_set(&up->stream->stop, 1);
	if (reply == NULL) {
		g_task_return_error(task, g_steal_pointer(&error));
		return;
	}
	g_task_return_pointer(task, g_strdup(up->sha256), g_free);
}

static void
as_quic_sender_hashed_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	GTask *task = G_TASK(user_data);
	AsQuicSender *self = g_task_get_source_object(task);
	AsQuicSenderUpload *up = g_task_get_task_data(task);
	g_autoptr(GError) error = NULL;
	g_autofree gchar *header = NULL;
	AsQuicFileStream *stream;

	if (!g_task_propagate_boolean(G_TASK(res), &error)) {
		g_task_return_error(task, g_steal_pointer(&error));
		g_object_unref(task);
		return;
	}
	if (g_task_return_error_if_cancelled(task)) {
		g_object_unref(task);
		return;
	}
	/* the framing refuses names it cannot carry (a ':' or a line break): say so per file */
	header = as_quic_framing_format_header(up->name, up->size, self->token, NULL,
					       up->verify ? up->sha256 : NULL, &error);
	if (header == NULL) {
		g_prefix_error(&error, "cannot send %s over QUIC: ", up->name);
		g_task_return_error(task, g_steal_pointer(&error));
		g_object_unref(task);
		return;
	}
	up->wire_bytes = strlen(header) + up->size;
	stream = g_object_new(AS_TYPE_QUIC_FILE_STREAM, NULL);
	stream->fd = up->fd;
	up->fd = -1;
	stream->size = up->size;
	stream->limiter_a = self->limiter_a != NULL ? g_object_ref(self->limiter_a) : NULL;
	stream->limiter_b = self->limiter_b != NULL ? g_object_ref(self->limiter_b) : NULL;
	up->stream = stream;
	up->active = TRUE;
	as_quic_sender_upload_begins(self, up->size);
	as_quic_client_upload_async(self->client, up->name, G_INPUT_STREAM(stream), up->size,
				    self->token, up->verify ? up->sha256 : NULL,
				    g_task_get_cancellable(task), as_quic_sender_uploaded_cb, task);
}

/**
 * as_quic_sender_upload_async:
 * @self: a #AsQuicSender, connected
 * @source: the file to send
 * @name: its relative name on the receiver, e.g. `photos/a.jpg`
 * @size: its size when it was listed
 * @mtime_us: its modification time when it was listed, 0 not to check
 * @verify: announce the SHA-256 so the receiver checks it (HASH line)
 * @cancellable: (nullable): cancels the upload (the stream is reset)
 * @callback: called with the result
 * @user_data: data for @callback
 *
 * Hashes @source in a worker thread, then sends it on a stream of its own. Several uploads
 * may run at once; they share the connection.
 **/
void
as_quic_sender_upload_async(AsQuicSender *self,
			    const gchar *source,
			    const gchar *name,
			    guint64 size,
			    gint64 mtime_us,
			    gboolean verify,
			    GCancellable *cancellable,
			    GAsyncReadyCallback callback,
			    gpointer user_data)
{
	GTask *task;
	g_autoptr(GTask) hash_task = NULL;
	AsQuicSenderUpload *up;

	g_return_if_fail(AS_IS_QUIC_SENDER(self));
	g_return_if_fail(source != NULL && name != NULL);

	task = g_task_new(self, cancellable, callback, user_data);
	g_task_set_source_tag(task, as_quic_sender_upload_async);
	up = g_new0(AsQuicSenderUpload, 1);
	up->source = g_strdup(source);
	up->name = g_strdup(name);
	up->size = size;
	up->mtime_us = mtime_us;
	up->verify = verify;
	up->fd = -1;
	g_task_set_task_data(task, up, (GDestroyNotify)as_quic_sender_upload_free);
	hash_task = g_task_new(self, cancellable, as_quic_sender_hashed_cb, task);
	g_task_set_task_data(hash_task, up, NULL);
	g_task_run_in_thread(hash_task, as_quic_sender_hash_thread);
}

/**
 * as_quic_sender_upload_finish:
 *
 * Returns: (transfer full): the file's SHA-256, which the receiver confirmed when the upload
 *   was verified, or %NULL with the error: a refusal of the receiver is an #AsError (its
 *   reply's code), network trouble a %G_IO_ERROR (see as_quic_sender_error_is_retryable())
 **/
gchar *
as_quic_sender_upload_finish(AsQuicSender *self, GAsyncResult *res, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(res, self), NULL);
	return g_task_propagate_pointer(G_TASK(res), error);
}

/* -------- aerosync/2 uploads -------- */

/* once the upload is answered and the hasher (if any) is done: compare, hand the result over */
static void
as_quic_sender_v2_maybe_return(GTask *task)
{
	AsQuicSenderUpload *up = g_task_get_task_data(task);

	if (up->returned || !up->upload_done || up->hashing)
		return;
	up->returned = TRUE;
	/* the receiver hashed what it published; ours was hashed from the source */
	if (up->sha256 != NULL && !as_sha256_hex_equal(up->sha256, up->result->sha256)) {
		g_task_return_new_error(
			task, AS_ERROR, AS_ERROR_HASH_MISMATCH,
			"%s arrived with SHA-256 %s but the source has %s", up->name,
			up->result->sha256 != NULL ? up->result->sha256 : "(none)", up->sha256);
		return;
	}
	g_task_return_boolean(task, TRUE);
}

static void
as_quic_sender_v2_fail(GTask *task, GError *error)
{
	AsQuicSenderUpload *up = g_task_get_task_data(task);

	if (up->returned) {
		g_error_free(error);
		return;
	}
	up->returned = TRUE;
	/* the other half (the upload or the hasher) stops too */
	g_cancellable_cancel(up->cancellable);
	g_task_return_error(task, error);
}

static void
as_quic_sender_v2_uploaded_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = G_TASK(user_data);
	AsQuicSender *self = g_task_get_source_object(task);
	AsQuicSenderUpload *up = g_task_get_task_data(task);
	GError *error = NULL;
	AsQuicV2UploadResult *result =
		as_quic_client_v2_upload_finish(AS_QUIC_CLIENT(source), res, &error);

	if (up->active) {
		/* progress only: the last chunk may be short */
		guint64 wire = result != NULL ? MIN((guint64)result->chunks_sent * up->chunk_size,
						    up->size)
					      : 0;
		up->active = FALSE;
		as_quic_sender_upload_ends(self, up->size, wire);
	}
	if (result == NULL) {
		as_quic_sender_v2_fail(task, error);
		return;
	}
	g_debug("%s: %u chunks sent, %u the receiver held", up->name, result->chunks_sent,
		result->chunks_skipped);
	up->result = result;
	up->upload_done = TRUE;
	as_quic_sender_v2_maybe_return(task);
}

static gboolean
as_quic_sender_v2_checkpoint_cb(gpointer user_data)
{
	AsQuicSenderCheckpoint *cp = user_data;
	AsQuicSenderUpload *up = g_task_get_task_data(cp->task);

	if (!up->returned && up->hash_func != NULL)
		up->hash_func(cp->hashed_chunks, cp->blob, up->hash_data);
	return G_SOURCE_REMOVE;
}

static void
as_quic_sender_checkpoint_free(gpointer data)
{
	AsQuicSenderCheckpoint *cp = data;

	g_object_unref(cp->task);
	g_bytes_unref(cp->blob);
	g_free(cp);
}

/*
 * The whole-file hash, in chunk order from where the saved state stopped, alongside the upload:
 * both read the same pages, so the disk is read once, and every chunk hashed is offered to the
 * caller to record (the same record the HTTP chunk path keeps and resumes from).
 */
static void
as_quic_sender_v2_hash_thread(GTask *hash_task,
			      gpointer source,
			      gpointer data,
			      GCancellable *cancellable)
{
	GTask *task = data;
	AsQuicSenderUpload *up = g_task_get_task_data(task);
	GMainContext *context = g_task_get_context(task);
	GError *error = NULL;

	for (guint32 i = up->hashed_chunks; i < up->total_chunks; i++) {
		guint64 offset = (guint64)i * up->chunk_size;
		guint64 len = MIN(up->chunk_size, up->size - offset);
		AsQuicSenderCheckpoint *cp;

		if (!as_sha256_state_update_fd_range(up->hash, up->fd, offset, len, cancellable,
						     &error)) {
			g_prefix_error(&error, "cannot read %s: ", up->name);
			g_task_return_error(hash_task, error);
			return;
		}
		cp = g_new0(AsQuicSenderCheckpoint, 1);
		cp->task = g_object_ref(task);
		cp->blob = as_sha256_state_save(up->hash);
		cp->hashed_chunks = i + 1;
		g_main_context_invoke_full(context, G_PRIORITY_DEFAULT,
					   as_quic_sender_v2_checkpoint_cb, cp,
					   as_quic_sender_checkpoint_free);
	}
	g_task_return_pointer(hash_task, as_sha256_state_finish_hex(up->hash), g_free);
}

static void
as_quic_sender_v2_hashed_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = G_TASK(user_data);
	AsQuicSenderUpload *up = g_task_get_task_data(task);
	GError *error = NULL;
	gchar *sha256 = g_task_propagate_pointer(G_TASK(res), &error);

	up->hashing = FALSE;
	if (sha256 == NULL) {
		as_quic_sender_v2_fail(task, error);
		return;
	}
	up->sha256 = sha256;
	as_quic_sender_v2_maybe_return(task);
}

/* opens and checks the source and loads the saved hash state */
static void
as_quic_sender_v2_prepare_thread(GTask *task,
				 gpointer source,
				 gpointer data,
				 GCancellable *cancellable)
{
	AsQuicSenderUpload *up = data;
	GError *error = NULL;

	if (!as_quic_sender_open_source(up, &error)) {
		g_task_return_error(task, error);
		return;
	}
	if (!up->verify) {
		g_task_return_boolean(task, TRUE);
		return;
	}
	if (up->size == 0) {
		up->sha256 = as_sha256_data_hex("", 0);
		g_task_return_boolean(task, TRUE);
		return;
	}
	/* one chunk: hashing it first costs one read from the page cache and lets the receiver
	 * check the file before it publishes it */
	if (up->total_chunks == 1) {
		up->sha256 = as_sha256_fd_range(up->fd, 0, up->size, cancellable, &error);
		if (up->sha256 == NULL) {
			g_prefix_error(&error, "cannot read %s: ", up->name);
			g_task_return_error(task, error);
			return;
		}
		g_task_return_boolean(task, TRUE);
		return;
	}
	if (up->hash_blob != NULL && up->hashed_chunks > 0 &&
	    up->hashed_chunks <= up->total_chunks) {
		up->hash = as_sha256_state_load(up->hash_blob, &error);
		if (up->hash != NULL &&
		    as_sha256_state_get_length(up->hash) !=
			    MIN((guint64)up->hashed_chunks * up->chunk_size, up->size)) {
			g_clear_pointer(&up->hash, as_sha256_state_free);
			g_set_error_literal(&error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
					    "it covers another length");
		}
		if (up->hash == NULL) {
			g_warning("the saved hash of %s is unusable, hashing it again: %s",
				  up->name, error->message);
			g_clear_error(&error);
		}
	}
	if (up->hash == NULL) {
		up->hash = as_sha256_state_new();
		up->hashed_chunks = 0;
	}
	/* hashed whole before: the receiver checks it before it publishes anything */
	if (up->hashed_chunks == up->total_chunks)
		up->sha256 = as_sha256_state_finish_hex(up->hash);
	g_task_return_boolean(task, TRUE);
}

static void
as_quic_sender_v2_prepared_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	GTask *task = G_TASK(user_data);
	AsQuicSender *self = g_task_get_source_object(task);
	AsQuicSenderUpload *up = g_task_get_task_data(task);
	GError *error = NULL;

	if (!g_task_propagate_boolean(G_TASK(res), &error)) {
		as_quic_sender_v2_fail(task, error);
		g_object_unref(task);
		return;
	}
	if (g_cancellable_set_error_if_cancelled(up->cancellable, &error)) {
		as_quic_sender_v2_fail(task, error);
		g_object_unref(task);
		return;
	}
	/* the hash goes in the FILE frame when it is known already; otherwise it is computed
	 * while the chunks go and compared with the receiver's in DONE */
	if (up->verify && up->sha256 == NULL) {
		g_autoptr(GTask) hash_task = g_task_new(
			self, up->cancellable, as_quic_sender_v2_hashed_cb, g_object_ref(task));
		up->hashing = TRUE;
		g_task_set_task_data(hash_task, task, NULL);
		g_task_run_in_thread(hash_task, as_quic_sender_v2_hash_thread);
	}
	up->active = TRUE;
	as_quic_sender_upload_begins(self, up->size);
	as_quic_client_v2_upload_fd_async(self->client, up->name, up->fd, 0, up->size, up->task_id,
					  up->chunk_size, up->hashing ? NULL : up->sha256,
					  up->cancellable, as_quic_sender_v2_uploaded_cb, task);
}

static void
as_quic_sender_v2_cancelled_cb(GCancellable *caller, gpointer user_data)
{
	g_cancellable_cancel(G_CANCELLABLE(user_data));
}

/**
 * as_quic_sender_v2_upload_async:
 * @self: a #AsQuicSender, connected with `aerosync/2` (see as_quic_sender_is_v2())
 * @source: the file to send
 * @name: its relative name on the receiver
 * @size: its size when it was listed
 * @mtime_us: its modification time when it was listed, 0 not to check
 * @task_id: the receiver's task id: the one the HTTP chunk path uses for this file, so either
 *   transport resumes what the other started
 * @chunk_size: the task's chunk size (the HTTP chunk path's)
 * @verify: check the whole file's SHA-256 against the receiver's
 * @hash_state: (nullable): a saved whole-file hash state over the first chunks
 * @hashed_chunks: chunks in @hash_state
 * @hash_func: (nullable): called on the main context with each newer hash state, to record
 * @hash_data: data for @hash_func
 * @cancellable: (nullable): cancels the upload (the receiver keeps the chunks it stored)
 * @callback: called with the result
 * @user_data: data for @callback
 *
 * Sends @source as a resumable `aerosync/2` task: the receiver says which chunks it holds and
 * only the others are read and sent, each with its SHA-256. With @verify, the whole-file
 * SHA-256 is computed from @hash_state on in a worker thread while the chunks go, and must
 * equal the one in the receiver's DONE; when @hash_state covers the whole file already, or the
 * file is one chunk (hashed first, from the page cache), it goes in the FILE frame instead and
 * the receiver checks it before publishing.
 *
 * Why not hash everything first, as the 0.x framing must: that is a whole extra pass before the
 * first byte goes (about 0.7 s per GiB at 1.4 GB/s on one core), and for a resumed file it would
 * read the chunks the receiver holds twice. Alongside, the hash costs a second core and no
 * extra disk read; its state is recorded per chunk like the HTTP chunk path's, so after a
 * restart hashing goes on where it stopped. Every chunk is checked by its own SHA-256 on the
 * way, so the whole-file comparison catches a source that changed between reads.
 **/
void
as_quic_sender_v2_upload_async(AsQuicSender *self,
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
			       gpointer user_data)
{
	GTask *task;
	g_autoptr(GTask) prepare_task = NULL;
	g_autoptr(GError) error = NULL;
	AsQuicSenderUpload *up;
	guint32 total_chunks = 0;

	g_return_if_fail(AS_IS_QUIC_SENDER(self));
	g_return_if_fail(source != NULL && name != NULL && task_id != NULL);

	task = g_task_new(self, cancellable, callback, user_data);
	g_task_set_source_tag(task, as_quic_sender_v2_upload_async);
	if (!self->v2) {
		g_task_return_new_error(task, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
					"%s does not speak %s", self->host_port, AS_QUIC_ALPN_V2);
		g_object_unref(task);
		return;
	}
	if (!as_quic_v2_file_check(size, chunk_size, &total_chunks, &error)) {
		g_prefix_error(&error, "cannot send %s over QUIC: ", name);
		g_task_return_error(task, g_steal_pointer(&error));
		g_object_unref(task);
		return;
	}
	up = g_new0(AsQuicSenderUpload, 1);
	up->source = g_strdup(source);
	up->name = g_strdup(name);
	up->size = size;
	up->mtime_us = mtime_us;
	up->verify = verify;
	up->fd = -1;
	up->task_id = g_strdup(task_id);
	up->chunk_size = chunk_size;
	up->total_chunks = total_chunks;
	up->hash_blob = hash_state != NULL ? g_bytes_ref(hash_state) : NULL;
	up->hashed_chunks = hashed_chunks;
	up->hash_func = hash_func;
	up->hash_data = hash_data;
	up->cancellable = g_cancellable_new();
	if (cancellable != NULL) {
		up->caller_cancellable = g_object_ref(cancellable);
		up->cancelled_id = g_cancellable_connect(
			cancellable, G_CALLBACK(as_quic_sender_v2_cancelled_cb),
			g_object_ref(up->cancellable), g_object_unref);
	}
	g_task_set_task_data(task, up, (GDestroyNotify)as_quic_sender_upload_free);
	prepare_task = g_task_new(self, up->cancellable, as_quic_sender_v2_prepared_cb, task);
	g_task_set_task_data(prepare_task, up, NULL);
	g_task_run_in_thread(prepare_task, as_quic_sender_v2_prepare_thread);
}

/**
 * as_quic_sender_v2_upload_finish:
 * @saved_as: (out) (optional) (transfer full): the path the receiver published
 * @chunks_sent: (out) (optional): chunks this upload sent
 * @chunks_skipped: (out) (optional): chunks the receiver held already
 *
 * Returns: (transfer full): the file's SHA-256, which the receiver confirmed, or %NULL with
 *   the error (see as_quic_sender_upload_finish()); after any error but a whole-file mismatch
 *   the same task id resumes, over QUIC or HTTP
 **/
gchar *
as_quic_sender_v2_upload_finish(AsQuicSender *self,
				GAsyncResult *res,
				gchar **saved_as,
				guint32 *chunks_sent,
				guint32 *chunks_skipped,
				GError **error)
{
	AsQuicSenderUpload *up;

	g_return_val_if_fail(g_task_is_valid(res, self), NULL);
	if (!g_task_propagate_boolean(G_TASK(res), error))
		return NULL;
	up = g_task_get_task_data(G_TASK(res));
	if (saved_as != NULL)
		*saved_as = g_strdup(up->result->saved_as);
	if (chunks_sent != NULL)
		*chunks_sent = up->result->chunks_sent;
	if (chunks_skipped != NULL)
		*chunks_skipped = up->result->chunks_skipped;
	return g_strdup(up->sha256 != NULL ? up->sha256 : up->result->sha256);
}

/* -------- set-up -------- */

/**
 * as_quic_sender_new:
 * @host: the receiver's host name or address (resolved A and AAAA)
 * @port: its QUIC port
 * @token: (nullable): the token sent in every UPLOAD line
 *
 * Returns: (transfer full): a sender that checks the receiver against the system CAs until
 *   told otherwise
 **/
AsQuicSender *
as_quic_sender_new(const gchar *host, guint16 port, const gchar *token)
{
	AsQuicSender *self = g_object_new(AS_TYPE_QUIC_SENDER, NULL);

	self->host = g_strdup(host);
	self->port = port;
	self->host_port = as_known_peers_make_key(host, port);
	self->trust = as_peer_trust_new(host, port);
	self->token = g_strdup(token);
	self->client = as_quic_client_new(host, port);
	/* aerosync/2 authenticates the connection once; the 0.x framing per upload line */
	if (token != NULL && strlen(token) <= AS_QUIC_V2_MAX_TOKEN_LEN)
		as_quic_client_set_token(self->client, token);
	else if (token != NULL)
		self->v1_only = TRUE;
	return self;
}

const gchar *
as_quic_sender_get_host_port(AsQuicSender *self)
{
	g_return_val_if_fail(AS_IS_QUIC_SENDER(self), NULL);
	return self->host_port;
}

/**
 * as_quic_sender_set_pin:
 * @sha256: (nullable): the SHA-256 the receiver's certificate must have (hex, colons allowed)
 **/
void
as_quic_sender_set_pin(AsQuicSender *self, const gchar *sha256)
{
	g_return_if_fail(AS_IS_QUIC_SENDER(self));
	as_peer_trust_set_pin(self->trust, sha256);
}

/**
 * as_quic_sender_set_expected_fingerprint:
 * @sha256: (nullable): what the receiver announced (`/health` `cert_sha256`): a peer not in
 *   known_peers yet must present it to be recorded
 **/
void
as_quic_sender_set_expected_fingerprint(AsQuicSender *self, const gchar *sha256)
{
	g_return_if_fail(AS_IS_QUIC_SENDER(self));
	as_peer_trust_set_expected(self->trust, sha256);
}

void
as_quic_sender_set_insecure(AsQuicSender *self, gboolean insecure)
{
	g_return_if_fail(AS_IS_QUIC_SENDER(self));
	as_peer_trust_set_insecure(self->trust, insecure);
}

/**
 * as_quic_sender_set_known_peers:
 * @path: (nullable): the known_peers file for trust on first use
 **/
void
as_quic_sender_set_known_peers(AsQuicSender *self, const gchar *path)
{
	g_return_if_fail(AS_IS_QUIC_SENDER(self));
	as_peer_trust_set_known_peers(self->trust, path);
}

void
as_quic_sender_set_handshake_timeout_ms(AsQuicSender *self, guint timeout_ms)
{
	g_return_if_fail(AS_IS_QUIC_SENDER(self));
	as_quic_client_set_handshake_timeout_ms(self->client, timeout_ms);
}

/**
 * as_quic_sender_set_prefer_v2:
 * @self: a #AsQuicSender
 * @prefer_v2: %FALSE to speak the 0.x framing even to a receiver that offers aerosync/2
 *
 * aerosync/2 makes every file a resumable task in the receiver's chunk store, which costs
 * several files and a sync per file there: right for big files, about three times slower for
 * many small ones than the 0.x framing. Call before connecting.
 **/
void
as_quic_sender_set_prefer_v2(AsQuicSender *self, gboolean prefer_v2)
{
	g_return_if_fail(AS_IS_QUIC_SENDER(self));
	self->v1_only = !prefer_v2;
}

/**
 * as_quic_sender_set_limiters:
 * @transfer_limiter: (nullable): the transfer's own rate limit
 * @global_limiter: (nullable): the daemon's
 *
 * Applies to uploads started from now on; rate changes apply at once.
 **/
void
as_quic_sender_set_limiters(AsQuicSender *self,
			    AsRateLimiter *transfer_limiter,
			    AsRateLimiter *global_limiter)
{
	g_return_if_fail(AS_IS_QUIC_SENDER(self));
	g_set_object(&self->limiter_a, transfer_limiter);
	g_set_object(&self->limiter_b, global_limiter);
}

/**
 * as_quic_sender_set_progress_func:
 * @func: (nullable): called every %AS_QUIC_SENDER_PROGRESS_INTERVAL_MS while uploads run
 **/
void
as_quic_sender_set_progress_func(AsQuicSender *self,
				 AsQuicSenderProgressFunc func,
				 gpointer user_data)
{
	g_return_if_fail(AS_IS_QUIC_SENDER(self));
	self->progress_func = func;
	self->progress_data = user_data;
}

/**
 * as_quic_sender_close:
 *
 * Closes the connection; uploads under way fail.
 **/
void
as_quic_sender_close(AsQuicSender *self)
{
	g_return_if_fail(AS_IS_QUIC_SENDER(self));
	g_clear_handle_id(&self->progress_id, g_source_remove);
	self->progress_func = NULL;
	as_quic_client_close(self->client);
}

static void
as_quic_sender_dispose(GObject *object)
{
	AsQuicSender *self = AS_QUIC_SENDER(object);

	g_clear_handle_id(&self->progress_id, g_source_remove);
	if (self->client != NULL)
		as_quic_client_close(self->client);
	G_OBJECT_CLASS(as_quic_sender_parent_class)->dispose(object);
}

static void
as_quic_sender_finalize(GObject *object)
{
	AsQuicSender *self = AS_QUIC_SENDER(object);

	g_clear_object(&self->client);
	g_clear_object(&self->limiter_a);
	g_clear_object(&self->limiter_b);
	g_free(self->host);
	g_free(self->host_port);
	if (self->token != NULL)
		memset(self->token, 0, strlen(self->token));
	g_free(self->token);
	g_clear_object(&self->trust);
	g_free(self->pinned);
	G_OBJECT_CLASS(as_quic_sender_parent_class)->finalize(object);
}

static void
as_quic_sender_class_init(AsQuicSenderClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);
	object_class->dispose = as_quic_sender_dispose;
	object_class->finalize = as_quic_sender_finalize;
}

static void
as_quic_sender_init(AsQuicSender *self)
{
}
