/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "AsPeerClient"

#include "config.h"

#include <string.h>

#include "as-error.h"
#include "as-http-raw-request.h"
#include "as-peer-client.h"
#include "as-peer-trust.h"

G_DEFINE_QUARK(as - peer - client - error - quark, as_peer_client_error)

/* RFC 6585, which libsoup has no name for */
#define AS_PEER_CLIENT_STATUS_TOO_MANY_REQUESTS 429

/* -------- the request body: a GBytes read out under the rate limiters -------- */

/*
 * libsoup writes a request body by splicing this stream into the socket, 8 KiB per read. Every
 * read first charges its bytes to the transfer's and the daemon's token buckets and, when they
 * are in debt, waits on a main-loop timer before handing the bytes out: what is limited is what
 * really goes to the socket, whatever the size of the chunk. It is seekable so libsoup can
 * rewind it when it has to resend a request on a fresh connection.
 */

#define AS_TYPE_PEER_BODY_STREAM (as_peer_body_stream_get_type())
G_DECLARE_FINAL_TYPE(AsPeerBodyStream, as_peer_body_stream, AS, PEER_BODY_STREAM, GInputStream)

struct _AsPeerBodyStream {
	GInputStream parent_instance;
	GBytes *bytes; /* owned */
	gsize pos;
	AsRateLimiter *limiter_a;		/* owned ref, nullable: the transfer's */
	AsRateLimiter *limiter_b;		/* owned ref, nullable: the daemon's */
	AsPeerClientProgressFunc progress_func; /* cleared when the request ends */
	gpointer progress_data;
	GTask *wait_task;     /* a read waiting for the limiters; holds a ref on us */
	GSource *wait_source; /* owned */
	guint8 *wait_buffer;
	gsize wait_count;
};

static void as_peer_body_stream_seekable_iface_init(GSeekableIface *iface);

G_DEFINE_TYPE_WITH_CODE(AsPeerBodyStream,
			as_peer_body_stream,
			G_TYPE_INPUT_STREAM,
			G_IMPLEMENT_INTERFACE(G_TYPE_SEEKABLE,
					      as_peer_body_stream_seekable_iface_init))

static gsize
as_peer_body_stream_take(AsPeerBodyStream *self, guint8 *buffer, gsize count)
{
	gsize len = 0;
	const guint8 *data = g_bytes_get_data(self->bytes, &len);

	count = MIN(count, len - self->pos);
	if (count > 0)
		memcpy(buffer, data + self->pos, count);
	self->pos += count;
	if (self->progress_func != NULL)
		self->progress_func(self->pos, self->progress_data);
	return count;
}

static gsize
as_peer_body_stream_next_size(AsPeerBodyStream *self, gsize count)
{
	return MIN(count, g_bytes_get_size(self->bytes) - self->pos);
}

static gint64
as_peer_body_stream_reserve(AsPeerBodyStream *self, gsize count)
{
	if (self->limiter_a == NULL && self->limiter_b == NULL)
		return 0;
	return as_rate_limiter_reserve_pair(self->limiter_a, self->limiter_b, count,
					    g_get_monotonic_time());
}

static gint64
as_peer_body_stream_delay(AsPeerBodyStream *self)
{
	if (self->limiter_a == NULL && self->limiter_b == NULL)
		return 0;
	return as_rate_limiter_get_delay_pair(self->limiter_a, self->limiter_b,
					      g_get_monotonic_time());
}

/* only used by blocking splices, which run in a worker thread */
static gssize
as_peer_body_stream_read(
	GInputStream *stream, void *buffer, gsize count, GCancellable *cancellable, GError **error)
{
	AsPeerBodyStream *self = AS_PEER_BODY_STREAM(stream);
	gint64 delay;

	count = as_peer_body_stream_next_size(self, count);
	if (count == 0)
		return 0;
	delay = as_peer_body_stream_reserve(self, count);
	while (delay > 0) {
		if (g_cancellable_set_error_if_cancelled(cancellable, error))
			return -1;
		g_usleep((gulong)MIN(delay, (gint64)AS_PEER_CLIENT_RATE_RECHECK_MS * 1000));
		delay = as_peer_body_stream_delay(self);
	}
	return (gssize)as_peer_body_stream_take(self, buffer, count);
}

static gboolean as_peer_body_stream_wait_cb(gpointer user_data);

static void
as_peer_body_stream_arm(AsPeerBodyStream *self, gint64 delay_us)
{
	guint ms = (guint)MIN((delay_us + 999) / 1000, (gint64)AS_PEER_CLIENT_RATE_RECHECK_MS);

	g_clear_pointer(&self->wait_source, g_source_unref);
	self->wait_source = g_timeout_source_new(MAX(ms, 1));
	g_source_set_priority(self->wait_source, g_task_get_priority(self->wait_task));
	g_source_set_callback(self->wait_source, as_peer_body_stream_wait_cb, self, NULL);
	g_source_attach(self->wait_source, g_task_get_context(self->wait_task));
}

static gboolean
as_peer_body_stream_wait_cb(gpointer user_data)
{
	AsPeerBodyStream *self = AS_PEER_BODY_STREAM(user_data);
	g_autoptr(GTask) task = NULL;
	gint64 delay;

	/* a cancelled request (pause, cancel) stops waiting at the next look */
	if (!g_cancellable_is_cancelled(g_task_get_cancellable(self->wait_task))) {
		delay = as_peer_body_stream_delay(self);
		if (delay > 0) {
			as_peer_body_stream_arm(self, delay);
			return G_SOURCE_REMOVE;
		}
	}
	g_clear_pointer(&self->wait_source, g_source_unref);
	task = g_steal_pointer(&self->wait_task);
	if (g_task_return_error_if_cancelled(task))
		return G_SOURCE_REMOVE;
	g_task_return_int(
		task, (gssize)as_peer_body_stream_take(self, self->wait_buffer, self->wait_count));
	return G_SOURCE_REMOVE;
}

static void
as_peer_body_stream_read_async(GInputStream *stream,
			       void *buffer,
			       gsize count,
			       int io_priority,
			       GCancellable *cancellable,
			       GAsyncReadyCallback callback,
			       gpointer user_data)
{
	AsPeerBodyStream *self = AS_PEER_BODY_STREAM(stream);
	g_autoptr(GTask) task = g_task_new(stream, cancellable, callback, user_data);
	gint64 delay;

	g_task_set_source_tag(task, as_peer_body_stream_read_async);
	g_task_set_priority(task, io_priority);
	if (g_task_return_error_if_cancelled(task))
		return;
	count = as_peer_body_stream_next_size(self, count);
	if (count == 0) {
		g_task_return_int(task, 0);
		return;
	}
	/* charged at once, so concurrent requests queue behind each other in the buckets */
	delay = as_peer_body_stream_reserve(self, count);
	if (delay <= 0) {
		g_task_return_int(task, (gssize)as_peer_body_stream_take(self, buffer, count));
		return;
	}
	self->wait_task = g_steal_pointer(&task);
	self->wait_buffer = buffer;
	self->wait_count = count;
	as_peer_body_stream_arm(self, delay);
}

static gssize
as_peer_body_stream_read_finish(GInputStream *stream, GAsyncResult *res, GError **error)
{
	return g_task_propagate_int(G_TASK(res), error);
}

static gboolean
as_peer_body_stream_close(GInputStream *stream, GCancellable *cancellable, GError **error)
{
	return TRUE;
}

/* closing frees nothing that needs a thread, unlike the default close_async */
static void
as_peer_body_stream_close_async(GInputStream *stream,
				int io_priority,
				GCancellable *cancellable,
				GAsyncReadyCallback callback,
				gpointer user_data)
{
	g_autoptr(GTask) task = g_task_new(stream, cancellable, callback, user_data);
	g_task_set_source_tag(task, as_peer_body_stream_close_async);
	g_task_return_boolean(task, TRUE);
}

static gboolean
as_peer_body_stream_close_finish(GInputStream *stream, GAsyncResult *res, GError **error)
{
	return g_task_propagate_boolean(G_TASK(res), error);
}

static goffset
as_peer_body_stream_tell(GSeekable *seekable)
{
	return (goffset)AS_PEER_BODY_STREAM(seekable)->pos;
}

static gboolean
as_peer_body_stream_can_seek(GSeekable *seekable)
{
	return TRUE;
}

static gboolean
as_peer_body_stream_seek(GSeekable *seekable,
			 goffset offset,
			 GSeekType type,
			 GCancellable *cancellable,
			 GError **error)
{
	AsPeerBodyStream *self = AS_PEER_BODY_STREAM(seekable);
	goffset len = (goffset)g_bytes_get_size(self->bytes);
	goffset base = type == G_SEEK_SET ? 0 : type == G_SEEK_CUR ? (goffset)self->pos : len;

	if (base + offset < 0 || base + offset > len) {
		g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
				    "seek outside the request body");
		return FALSE;
	}
	self->pos = (gsize)(base + offset);
	return TRUE;
}

static gboolean
as_peer_body_stream_can_truncate(GSeekable *seekable)
{
	return FALSE;
}

static gboolean
as_peer_body_stream_truncate(GSeekable *seekable,
			     goffset offset,
			     GCancellable *cancellable,
			     GError **error)
{
	g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
			    "a request body cannot be truncated");
	return FALSE;
}

static void
as_peer_body_stream_seekable_iface_init(GSeekableIface *iface)
{
	iface->tell = as_peer_body_stream_tell;
	iface->can_seek = as_peer_body_stream_can_seek;
	iface->seek = as_peer_body_stream_seek;
	iface->can_truncate = as_peer_body_stream_can_truncate;
	iface->truncate_fn = as_peer_body_stream_truncate;
}

static void
as_peer_body_stream_finalize(GObject *object)
{
	AsPeerBodyStream *self = AS_PEER_BODY_STREAM(object);

	if (self->wait_source != NULL)
		g_source_destroy(self->wait_source);
	g_clear_pointer(&self->wait_source, g_source_unref);
	g_bytes_unref(self->bytes);
	g_clear_object(&self->limiter_a);
	g_clear_object(&self->limiter_b);
	G_OBJECT_CLASS(as_peer_body_stream_parent_class)->finalize(object);
}

static void
as_peer_body_stream_class_init(AsPeerBodyStreamClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);
	GInputStreamClass *stream_class = G_INPUT_STREAM_CLASS(klass);

	object_class->finalize = as_peer_body_stream_finalize;
	stream_class->read_fn = as_peer_body_stream_read;
	stream_class->read_async = as_peer_body_stream_read_async;
	stream_class->read_finish = as_peer_body_stream_read_finish;
	stream_class->close_fn = as_peer_body_stream_close;
	stream_class->close_async = as_peer_body_stream_close_async;
	stream_class->close_finish = as_peer_body_stream_close_finish;
}

static void
as_peer_body_stream_init(AsPeerBodyStream *self)
{
}

static AsPeerBodyStream *
as_peer_body_stream_new(GBytes *bytes,
			AsRateLimiter *limiter_a,
			AsRateLimiter *limiter_b,
			AsPeerClientProgressFunc progress_func,
			gpointer progress_data)
{
	AsPeerBodyStream *self = g_object_new(AS_TYPE_PEER_BODY_STREAM, NULL);
	self->bytes = g_bytes_ref(bytes);
	self->limiter_a = limiter_a != NULL ? g_object_ref(limiter_a) : NULL;
	self->limiter_b = limiter_b != NULL ? g_object_ref(limiter_b) : NULL;
	self->progress_func = progress_func;
	self->progress_data = progress_data;
	return self;
}

/* -------- /upload/batch bodies -------- */

struct _AsPeerBatch {
	gchar *boundary;
	GByteArray *body; /* parts so far, without the closing delimiter */
	guint n_parts;
};

/**
 * as_peer_batch_new:
 *
 * Starts a `multipart/form-data` body for `POST /upload/batch`: one part per file, named by
 * its relative path as in 0.x, each with its own `X-File-Hash` part header.
 *
 * Returns: (transfer full): a new, empty batch
 **/
AsPeerBatch *
as_peer_batch_new(void)
{
	AsPeerBatch *self = g_new0(AsPeerBatch, 1);
	g_autoptr(GString) boundary = g_string_new(AS_PEER_BATCH_BOUNDARY_PREFIX);

	for (guint i = 0; i < 4; i++)
		g_string_append_printf(boundary, "%08x", g_random_int());
	self->boundary = g_string_free(g_steal_pointer(&boundary), FALSE);
	self->body = g_byte_array_new();
	return self;
}

/**
 * as_peer_batch_name_is_safe:
 * @name: a relative destination name
 *
 * Part headers must be UTF-8 without control characters; other names go one by one in the
 * URL, where any byte can be percent-encoded.
 *
 * Returns: %TRUE if @name can name a batch part
 **/
gboolean
as_peer_batch_name_is_safe(const gchar *name)
{
	if (name == NULL || !g_utf8_validate(name, -1, NULL))
		return FALSE;
	for (const guchar *p = (const guchar *)name; *p != '\0'; p++) {
		if (*p < 0x20 || *p == 0x7f)
			return FALSE;
	}
	return TRUE;
}

/* a quoted-string with '"' and '\' escaped, as curl does and the receiver's parser reads */
static void
as_peer_batch_append_quoted(GString *str, const gchar *text)
{
	g_string_append_c(str, '"');
	for (const gchar *p = text; *p != '\0'; p++) {
		if (*p == '"' || *p == '\\')
			g_string_append_c(str, '\\');
		g_string_append_c(str, *p);
	}
	g_string_append_c(str, '"');
}

/**
 * as_peer_batch_add:
 * @self: a #AsPeerBatch
 * @name: the relative destination name, see as_peer_batch_name_is_safe()
 * @data: (array length=len): the file's content
 * @len: its size
 * @sha256: (nullable): its SHA-256, sent as the part's `X-File-Hash`
 *
 * Appends one file.
 **/
void
as_peer_batch_add(
	AsPeerBatch *self, const gchar *name, const guint8 *data, gsize len, const gchar *sha256)
{
	g_autoptr(GString) head = g_string_new(NULL);
	const gchar *base = strrchr(name, '/');

	g_return_if_fail(self != NULL);
	g_return_if_fail(as_peer_batch_name_is_safe(name));

	g_string_append_printf(head,
			       "--%s\r\nContent-Disposition: form-data; name=", self->boundary);
	as_peer_batch_append_quoted(head, name);
	g_string_append(head, "; filename=");
	as_peer_batch_append_quoted(head, base != NULL ? base + 1 : name);
	g_string_append(head, "\r\nContent-Type: application/octet-stream\r\n");
	if (sha256 != NULL)
		g_string_append_printf(head, "X-File-Hash: %s\r\n", sha256);
	g_string_append(head, "\r\n");
	g_byte_array_append(self->body, (const guint8 *)head->str, head->len);
	if (len > 0)
		g_byte_array_append(self->body, data, len);
	g_byte_array_append(self->body, (const guint8 *)"\r\n", 2);
	self->n_parts++;
}

guint
as_peer_batch_get_n_parts(AsPeerBatch *self)
{
	return self->n_parts;
}

/* bytes of the body so far: a bound on what the request holds in memory */
gsize
as_peer_batch_get_size(AsPeerBatch *self)
{
	return self->body->len;
}

void
as_peer_batch_free(AsPeerBatch *self)
{
	if (self == NULL)
		return;
	g_free(self->boundary);
	if (self->body != NULL)
		g_byte_array_unref(self->body);
	g_free(self);
}

/**
 * as_peer_batch_end:
 * @self: a #AsPeerBatch with at least one part
 * @content_type: (out) (transfer full): the request's Content-Type, with the boundary
 *
 * Closes the body; nothing can be added afterwards.
 *
 * Returns: (transfer full): the body for as_peer_client_batch_async()
 **/
GBytes *
as_peer_batch_end(AsPeerBatch *self, gchar **content_type)
{
	g_autofree gchar *close = NULL;

	g_return_val_if_fail(self != NULL && self->body != NULL, NULL);

	close = g_strdup_printf("--%s--\r\n", self->boundary);
	g_byte_array_append(self->body, (const guint8 *)close, strlen(close));
	*content_type = g_strdup_printf("multipart/form-data; boundary=%s", self->boundary);
	return g_byte_array_free_to_bytes(g_steal_pointer(&self->body));
}

/* -------- destinations and errors -------- */

/**
 * as_peer_client_parse_destination:
 * @destination: `host`, `host:port`, `[v6]:port`, `http://host:port`, `https://host[:port]`
 *   (or `quic://`)
 * @protocol: (nullable): the Protocol option: `auto`, `http`, `https` or `quic`
 * @base_url: (out) (transfer full): e.g. `http://10.0.0.5:7788` or `https://10.0.0.5:7790`
 * @host_port: (out) (transfer full): e.g. `10.0.0.5:7788`, for messages
 * @error: (nullable): optional return location for an error
 *
 * Works out where a send goes. `https://` destinations and Protocol `https` go over TLS, by
 * default to port %AS_PEER_CLIENT_DEFAULT_HTTPS_PORT; `quic://` and Protocol `quic` fail with
 * %AS_ERROR_NOT_SUPPORTED (the send job handles them); `auto` starts over HTTP.
 *
 * Returns: %TRUE on success; %AS_ERROR_INVALID_ARGUMENT for a malformed destination
 **/
gboolean
as_peer_client_parse_destination(const gchar *destination,
				 const gchar *protocol,
				 gchar **base_url,
				 gchar **host_port,
				 GError **error)
{
	g_autoptr(GUri) uri = NULL;
	g_autofree gchar *url = NULL;
	g_autofree gchar *scheme = NULL;
	const gchar *host;
	const gchar *path;
	gboolean https;
	gint port;

	g_return_val_if_fail(destination != NULL, FALSE);

	if (protocol != NULL && g_strcmp0(protocol, "auto") != 0 &&
	    g_strcmp0(protocol, "http") != 0 && g_strcmp0(protocol, "https") != 0 &&
	    g_strcmp0(protocol, "quic") != 0) {
		g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
			    "unknown protocol '%s': use auto, http, https or quic", protocol);
		return FALSE;
	}
	if (destination[0] == '\0') {
		g_set_error_literal(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
				    "no destination given");
		return FALSE;
	}
	if (destination[0] == '@') {
		g_set_error(error, AS_ERROR, AS_ERROR_NOT_SUPPORTED,
			    "sending to a discovered receiver (%s) is not supported yet: give its "
			    "address as HOST[:PORT]",
			    destination);
		return FALSE;
	}
	scheme = g_uri_parse_scheme(destination);
	if (scheme != NULL && strstr(destination, "://") == NULL)
		g_clear_pointer(&scheme, g_free);
	if (scheme != NULL) {
		gchar *lower = g_ascii_strdown(scheme, -1);
		g_free(scheme);
		scheme = lower;
	}
	if (g_strcmp0(scheme, "quic") == 0 || g_strcmp0(protocol, "quic") == 0) {
		g_set_error_literal(error, AS_ERROR, AS_ERROR_NOT_SUPPORTED,
				    "QUIC is not supported yet");
		return FALSE;
	}
	if (scheme != NULL && g_strcmp0(scheme, "http") != 0 && g_strcmp0(scheme, "https") != 0) {
		g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
			    "unknown scheme '%s://' in '%s': use HOST[:PORT], http://HOST:PORT or "
			    "https://HOST[:PORT]",
			    scheme, destination);
		return FALSE;
	}
	/* the scheme says it; a Protocol that says otherwise is a mistake, not a choice */
	if (g_strcmp0(scheme, "http") == 0 && g_strcmp0(protocol, "https") == 0) {
		g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
			    "'%s' is plain HTTP but the protocol is https: send to https://...",
			    destination);
		return FALSE;
	}
	if (g_strcmp0(scheme, "https") == 0 && g_strcmp0(protocol, "http") == 0) {
		g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
			    "'%s' is HTTPS but the protocol is http: drop --protocol http",
			    destination);
		return FALSE;
	}
	https = g_strcmp0(scheme, "https") == 0 ||
		(scheme == NULL && g_strcmp0(protocol, "https") == 0);
	/* a bare IPv6 address has several colons and no brackets: it can carry no port */
	if (scheme == NULL && strchr(destination, ':') != strrchr(destination, ':') &&
	    destination[0] != '[')
		url = g_strdup_printf("http://[%s]", destination);
	else if (scheme == NULL)
		url = g_strdup_printf("http://%s", destination);
	else
		url = g_strdup(destination);
	uri = g_uri_parse(url, G_URI_FLAGS_NONE, NULL);
	host = uri != NULL ? g_uri_get_host(uri) : NULL;
	path = uri != NULL ? g_uri_get_path(uri) : NULL;
	if (uri == NULL || host == NULL || host[0] == '\0' || g_uri_get_userinfo(uri) != NULL ||
	    g_uri_get_query(uri) != NULL || g_uri_get_fragment(uri) != NULL ||
	    (path != NULL && path[0] != '\0' && g_strcmp0(path, "/") != 0)) {
		g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
			    "'%s' is not a destination: use HOST[:PORT], http://HOST:PORT or "
			    "https://HOST[:PORT]",
			    destination);
		return FALSE;
	}
	port = g_uri_get_port(uri);
	if (port <= 0 && https)
		port = AS_PEER_CLIENT_DEFAULT_HTTPS_PORT;
	else if (port <= 0)
		port = scheme == NULL ? AS_PEER_CLIENT_DEFAULT_PORT : 80;
	if (strchr(host, ':') != NULL)
		*host_port = g_strdup_printf("[%s]:%d", host, port);
	else
		*host_port = g_strdup_printf("%s:%d", host, port);
	*base_url = g_strdup_printf("%s://%s", https ? "https" : "http", *host_port);
	return TRUE;
}

/**
 * as_peer_client_error_is_retryable:
 * @error: an error from a request
 *
 * Network trouble (refused, reset, timed out, unresolvable) and the statuses of a receiver that
 * is busy or restarting (408, 429, 5xx but 501 and 507) are worth retrying after a while; a
 * refusal on the merits (400, 401, 403, 404, 409, 413, 501, 507) is not.
 *
 * Returns: %TRUE if the same request may succeed later
 **/
gboolean
as_peer_client_error_is_retryable(const GError *error)
{
	if (error == NULL)
		return FALSE;
	if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
		return FALSE;
	if (error->domain == G_IO_ERROR || error->domain == G_RESOLVER_ERROR ||
	    error->domain == SOUP_SESSION_ERROR)
		return TRUE;
	if (error->domain == AS_PEER_CLIENT_ERROR) {
		switch (error->code) {
		case SOUP_STATUS_REQUEST_TIMEOUT:
		case AS_PEER_CLIENT_STATUS_TOO_MANY_REQUESTS:
		case SOUP_STATUS_INTERNAL_SERVER_ERROR:
		case SOUP_STATUS_BAD_GATEWAY:
		case SOUP_STATUS_SERVICE_UNAVAILABLE:
		case SOUP_STATUS_GATEWAY_TIMEOUT:
			return TRUE;
		default:
			return FALSE;
		}
	}
	return FALSE;
}

/**
 * as_peer_client_error_is_auth:
 * @error: an error from a request
 *
 * Returns: %TRUE if the receiver refused the token (401 or 403): no file can get through
 **/
gboolean
as_peer_client_error_is_auth(const GError *error)
{
	return g_error_matches(error, AS_PEER_CLIENT_ERROR, SOUP_STATUS_UNAUTHORIZED) ||
	       g_error_matches(error, AS_PEER_CLIENT_ERROR, SOUP_STATUS_FORBIDDEN);
}

/**
 * as_peer_client_escape_path:
 * @name: a relative name such as `photos/a b.jpg`
 *
 * Percent-encodes everything but unreserved characters and '/', so the receiver decodes the
 * exact name: a space is `%20` and a '+' is `%2B`, never a '+' for a space.
 *
 * Returns: (transfer full): the escaped path
 **/
gchar *
as_peer_client_escape_path(const gchar *name)
{
	return g_uri_escape_string(name, "/", FALSE);
}

/* -------- the client -------- */

struct _AsPeerClient {
	GObject parent_instance;
	SoupSession *session;	     /* owned */
	gchar *base_url;	     /* http://host:port */
	gchar *host_port;	     /* host:port, for messages */
	gchar *authorization;	     /* "Bearer ...", never logged */
	gchar *tag;		     /* X-AeroSync-Tag, nullable */
	AsRateLimiter *limiter_a;    /* owned ref, nullable */
	AsRateLimiter *limiter_b;    /* owned ref, nullable */
	GSocketClient *sockets;	     /* owned: connections of large bodies */
	GPtrArray *raw_cancellables; /* (element-type GCancellable): raw requests in flight */
	gboolean https;		     /* base_url is https:// */
	AsPeerTrust *trust;	     /* owned, with https: decides on the receiver's certificate */
};

G_DEFINE_TYPE(AsPeerClient, as_peer_client, G_TYPE_OBJECT)

/* one request: the message, its body and the reply read so far */
typedef struct {
	SoupMessage *msg;	/* owned */
	AsPeerBodyStream *body; /* owned, nullable */
	GInputStream *reply_stream;
	GByteArray *reply; /* owned */
	gboolean health;
	GError *plain_error; /* owned, nullable: a /health that failed while TLS is probed */
} AsPeerRequest;

/* the body may outlive the request inside libsoup: it must not report to a gone caller */
static void
as_peer_request_detach(AsPeerRequest *req)
{
	if (req->body != NULL)
		req->body->progress_func = NULL;
}

static void
as_peer_request_free(AsPeerRequest *req)
{
	as_peer_request_detach(req);
	g_clear_object(&req->body);
	g_clear_object(&req->reply_stream);
	g_byte_array_unref(req->reply);
	g_object_unref(req->msg);
	g_clear_error(&req->plain_error);
	g_free(req);
}

static void
as_peer_client_prefix_network_error(AsPeerClient *self, GError **error)
{
	GError *e = *error;

	if (g_error_matches(e, G_IO_ERROR, G_IO_ERROR_CANCELLED))
		return;
	if (e->domain == G_RESOLVER_ERROR ||
	    g_error_matches(e, G_IO_ERROR, G_IO_ERROR_CONNECTION_REFUSED) ||
	    g_error_matches(e, G_IO_ERROR, G_IO_ERROR_HOST_UNREACHABLE) ||
	    g_error_matches(e, G_IO_ERROR, G_IO_ERROR_NETWORK_UNREACHABLE) ||
	    g_error_matches(e, G_IO_ERROR, G_IO_ERROR_HOST_NOT_FOUND))
		g_prefix_error(error, "cannot connect to %s: ", self->host_port);
	else
		g_prefix_error(error, "connection to %s failed: ", self->host_port);
}

/*
 * TLS failures in words a user can act on: the certificate refusal decided by the trust (not
 * GIO's "unacceptable TLS certificate") and a receiver that does not speak TLS on that port.
 */
static void
as_peer_client_explain_error(AsPeerClient *self, GError **error)
{
	GError *e = *error;

	if (e == NULL || g_error_matches(e, G_IO_ERROR, G_IO_ERROR_CANCELLED))
		return;
	if (self->https && e->domain == G_TLS_ERROR) {
		g_autoptr(GError) refusal =
			self->trust != NULL ? as_peer_trust_dup_last_error(self->trust) : NULL;
		if (refusal != NULL &&
		    g_error_matches(e, G_TLS_ERROR, G_TLS_ERROR_BAD_CERTIFICATE)) {
			g_clear_error(error);
			g_propagate_error(error, g_steal_pointer(&refusal));
			return;
		}
		if (g_error_matches(e, G_TLS_ERROR, G_TLS_ERROR_NOT_TLS)) {
			g_autoptr(GError) plain = g_error_new(
				AS_ERROR, AS_ERROR_NOT_SUPPORTED,
				"%s does not speak TLS (%s): is it the receiver's HTTP port? Send "
				"there with http://, or to its HTTPS port (aerosyncd --https, 7790 "
				"by "
				"default)",
				self->host_port, e->message);
			g_clear_error(error);
			g_propagate_error(error, g_steal_pointer(&plain));
			return;
		}
		g_prefix_error(error, "TLS with %s failed: ", self->host_port);
		return;
	}
}

/* "HTTP 507: no space left on the receiving disk", from the receiver's JSON error */
static GError *
as_peer_client_status_error(guint status, const gchar *reason, JsonObject *obj)
{
	const gchar *text = NULL;
	const gchar *detail = NULL;

	if (obj != NULL) {
		text = json_object_get_string_member_with_default(obj, "error", NULL);
		detail = json_object_get_string_member_with_default(obj, "detail", NULL);
	}
	if (text == NULL)
		text = reason;
	if (text == NULL || text[0] == '\0')
		text = soup_status_get_phrase(status);
	if (detail != NULL)
		return g_error_new(AS_PEER_CLIENT_ERROR, (gint)status, "HTTP %u: %s (%s)", status,
				   text, detail);
	return g_error_new(AS_PEER_CLIENT_ERROR, (gint)status, "HTTP %u: %s", status, text);
}

static JsonObject *
as_peer_client_parse_reply(GByteArray *reply)
{
	g_autoptr(JsonParser) parser = json_parser_new();
	JsonNode *root;

	if (reply->len == 0 ||
	    !json_parser_load_from_data(parser, (const gchar *)reply->data, reply->len, NULL))
		return NULL;
	root = json_parser_get_root(parser);
	if (root == NULL || !JSON_NODE_HOLDS_OBJECT(root))
		return NULL;
	return json_object_ref(json_node_get_object(root));
}

/* a reply's end, the same for libsoup and the raw writer: a 2xx JSON object, or an error */
static void
as_peer_client_return_reply(GTask *task, guint status, const gchar *reason, JsonObject *obj_owned)
{
	g_autoptr(JsonObject) obj = obj_owned;

	if (!SOUP_STATUS_IS_SUCCESSFUL(status)) {
		g_task_return_error(task, as_peer_client_status_error(status, reason, obj));
		return;
	}
	if (obj == NULL) {
		g_task_return_new_error(task, AS_PEER_CLIENT_ERROR, (gint)status,
					"HTTP %u with a reply that is not a JSON object", status);
		return;
	}
	g_task_return_pointer(task, g_steal_pointer(&obj), (GDestroyNotify)json_object_unref);
}

static void
as_peer_client_reply_done(GTask *task)
{
	AsPeerClient *self = g_task_get_source_object(task);
	AsPeerRequest *req = g_task_get_task_data(task);
	g_autoptr(JsonObject) obj = as_peer_client_parse_reply(req->reply);
	guint status = soup_message_get_status(req->msg);
	const gchar *marker;

	if (req->health) {
		marker = soup_message_headers_get_one(soup_message_get_response_headers(req->msg),
						      "X-AeroSync");
		if (marker == NULL || g_ascii_strcasecmp(marker, "true") != 0) {
			g_task_return_new_error(task, AS_ERROR, AS_ERROR_NOT_SUPPORTED,
						"%s is not an AeroSync receiver", self->host_port);
			return;
		}
	}
	as_peer_client_return_reply(task, status, soup_message_get_reason_phrase(req->msg),
				    g_steal_pointer(&obj));
}

static void
as_peer_client_read_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = G_TASK(user_data);
	AsPeerClient *self = g_task_get_source_object(task);
	AsPeerRequest *req = g_task_get_task_data(task);
	GCancellable *cancellable;
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) bytes =
		g_input_stream_read_bytes_finish(G_INPUT_STREAM(source), res, &error);

	if (bytes == NULL) {
		as_peer_client_explain_error(self, &error);
		if (error->domain != AS_ERROR)
			as_peer_client_prefix_network_error(self, &error);
		g_task_return_error(task, g_steal_pointer(&error));
		return;
	}
	if (g_bytes_get_size(bytes) == 0) {
		as_peer_client_reply_done(task);
		return;
	}
	if (req->reply->len + g_bytes_get_size(bytes) > AS_PEER_CLIENT_REPLY_MAX) {
		g_task_return_new_error(task, AS_ERROR, AS_ERROR_TOO_LARGE,
					"the reply of %s is larger than %u bytes", self->host_port,
					(guint)AS_PEER_CLIENT_REPLY_MAX);
		return;
	}
	g_byte_array_append(req->reply, g_bytes_get_data(bytes, NULL),
			    (guint)g_bytes_get_size(bytes));
	cancellable = g_task_get_cancellable(task);
	g_input_stream_read_bytes_async(req->reply_stream, AS_PEER_CLIENT_REPLY_READ_SIZE,
					G_PRIORITY_DEFAULT, cancellable, as_peer_client_read_cb,
					g_steal_pointer(&task));
}

/* a plain-HTTP /health that a TLS listener hung up on: say so rather than "reset by peer" */
static gboolean
as_peer_client_may_be_tls_port(AsPeerClient *self, const GError *error)
{
	if (self->https)
		return FALSE;
	return g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED) ||
	       g_error_matches(error, G_IO_ERROR, G_IO_ERROR_BROKEN_PIPE) ||
	       g_error_matches(error, G_IO_ERROR, G_IO_ERROR_PARTIAL_INPUT) ||
	       g_error_matches(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA) ||
	       g_error_matches(error, G_IO_ERROR, G_IO_ERROR_FAILED) ||
	       g_error_matches(error, SOUP_SESSION_ERROR, SOUP_SESSION_ERROR_PARSING);
}

/* the probe only learns whether the port speaks TLS: it sends nothing, so any certificate do */
static gboolean
as_peer_client_probe_accept_cb(GTlsConnection *conn,
			       GTlsCertificate *certificate,
			       GTlsCertificateFlags errors,
			       gpointer user_data)
{
	return TRUE;
}

/* a GSocketClient's TLS handshake: no CA check of GIO's own, @accept_cb decides; @owner, when
 * given, is the object @accept_cb gets, for as long as it lives */
static void
as_peer_client_hook_handshake(GSocketClientEvent event,
			      GIOStream *connection,
			      GCallback accept_cb,
			      GObject *owner)
{
	if (event != G_SOCKET_CLIENT_TLS_HANDSHAKING || !G_IS_TLS_CLIENT_CONNECTION(connection))
		return;
	g_tls_connection_set_database(G_TLS_CONNECTION(connection), NULL);
	if (owner != NULL)
		g_signal_connect_object(connection, "accept-certificate", accept_cb, owner, 0);
	else
		g_signal_connect(connection, "accept-certificate", accept_cb, NULL);
}

static void
as_peer_client_probe_event_cb(GSocketClient *client,
			      GSocketClientEvent event,
			      GSocketConnectable *connectable,
			      GIOStream *connection,
			      gpointer user_data)
{
	as_peer_client_hook_handshake(event, connection, G_CALLBACK(as_peer_client_probe_accept_cb),
				      NULL);
}

static void
as_peer_client_probe_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = G_TASK(user_data);
	AsPeerClient *self = g_task_get_source_object(task);
	AsPeerRequest *req = g_task_get_task_data(task);
	g_autoptr(GError) error = NULL;
	g_autoptr(GSocketConnection) conn =
		g_socket_client_connect_to_host_finish(G_SOCKET_CLIENT(source), res, &error);

	if (conn == NULL) {
		g_debug("%s does not speak TLS either: %s", self->host_port, error->message);
		g_task_return_error(task, g_steal_pointer(&req->plain_error));
		return;
	}
	g_io_stream_close(G_IO_STREAM(conn), NULL, NULL);
	g_task_return_new_error(task, AS_ERROR, AS_ERROR_NOT_SUPPORTED,
				"%s speaks TLS, not plain HTTP: it is an HTTPS port; send to "
				"https://%s",
				self->host_port, self->host_port);
}

static void
as_peer_client_probe_tls(AsPeerClient *self, GTask *task)
{
	g_autoptr(GSocketClient) probe = g_socket_client_new();

	g_socket_client_set_tls(probe, TRUE);
	g_socket_client_set_timeout(probe, AS_PEER_CLIENT_TLS_PROBE_TIMEOUT_S);
	g_signal_connect(probe, "event", G_CALLBACK(as_peer_client_probe_event_cb), NULL);
	g_socket_client_connect_to_host_async(probe, self->host_port, 0,
					      g_task_get_cancellable(task), as_peer_client_probe_cb,
					      task);
}

static void
as_peer_client_sent_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = G_TASK(user_data);
	AsPeerClient *self = g_task_get_source_object(task);
	AsPeerRequest *req = g_task_get_task_data(task);
	GCancellable *cancellable;
	g_autoptr(GError) error = NULL;

	req->reply_stream = soup_session_send_finish(SOUP_SESSION(source), res, &error);
	/* the body is all out (or never will be): nothing more to report */
	as_peer_request_detach(req);
	if (req->reply_stream == NULL) {
		as_peer_client_explain_error(self, &error);
		if (error->domain != AS_ERROR)
			as_peer_client_prefix_network_error(self, &error);
		if (req->health && as_peer_client_may_be_tls_port(self, error)) {
			req->plain_error = g_steal_pointer(&error);
			as_peer_client_probe_tls(self, g_steal_pointer(&task));
			return;
		}
		g_task_return_error(task, g_steal_pointer(&error));
		return;
	}
	cancellable = g_task_get_cancellable(task);
	g_input_stream_read_bytes_async(req->reply_stream, AS_PEER_CLIENT_REPLY_READ_SIZE,
					G_PRIORITY_DEFAULT, cancellable, as_peer_client_read_cb,
					g_steal_pointer(&task));
}

/* -------- the receiver's certificate -------- */

static gboolean
as_peer_client_judge(AsPeerClient *self, GTlsCertificate *certificate)
{
	g_autoptr(GError) error = NULL;

	/* no trust, no acceptance: HTTPS is never silently unverified */
	if (self->trust == NULL)
		return FALSE;
	if (as_peer_trust_check_certificate(self->trust, certificate, &error) ==
	    AS_PEER_TRUST_VERDICT_REFUSED) {
		g_debug("refused the certificate of %s: %s", self->host_port, error->message);
		return FALSE;
	}
	return TRUE;
}

/* libsoup asks for every certificate: the session has no CA database (see as_peer_client_new) */
static gboolean
as_peer_client_accept_certificate_cb(SoupMessage *msg,
				     GTlsCertificate *certificate,
				     GTlsCertificateFlags errors,
				     gpointer user_data)
{
	return as_peer_client_judge(AS_PEER_CLIENT(user_data), certificate);
}

static gboolean
as_peer_client_tls_accept_cb(GTlsConnection *conn,
			     GTlsCertificate *certificate,
			     GTlsCertificateFlags errors,
			     gpointer user_data)
{
	return as_peer_client_judge(AS_PEER_CLIENT(user_data), certificate);
}

/* the connections of large bodies: the same judge as libsoup's */
static void
as_peer_client_socket_event_cb(GSocketClient *client,
			       GSocketClientEvent event,
			       GSocketConnectable *connectable,
			       GIOStream *connection,
			       gpointer user_data)
{
	as_peer_client_hook_handshake(event, connection, G_CALLBACK(as_peer_client_tls_accept_cb),
				      G_OBJECT(user_data));
}

/* every request: no redirect may take the token elsewhere (or to plain HTTP) */
static void
as_peer_client_prepare_message(AsPeerClient *self, SoupMessage *msg)
{
	soup_message_add_flags(msg, SOUP_MESSAGE_NO_REDIRECT);
	if (self->https)
		g_signal_connect_object(msg, "accept-certificate",
					G_CALLBACK(as_peer_client_accept_certificate_cb), self, 0);
}

static SoupMessage *
as_peer_client_message(AsPeerClient *self, const gchar *method, const gchar *path_and_query)
{
	g_autofree gchar *url = g_strconcat(self->base_url, path_and_query, NULL);
	SoupMessage *msg = soup_message_new(method, url);
	SoupMessageHeaders *hdrs;

	/* every part of the URL was escaped here: only a broken base URL gets here */
	if (msg == NULL)
		return NULL;
	as_peer_client_prepare_message(self, msg);
	hdrs = soup_message_get_request_headers(msg);
	if (self->authorization != NULL)
		soup_message_headers_replace(hdrs, "Authorization", self->authorization);
	if (self->tag != NULL)
		soup_message_headers_replace(hdrs, "X-AeroSync-Tag", self->tag);
	return msg;
}

/* -------- large bodies, without libsoup's 8 KiB splice -------- */

typedef struct {
	GCancellable *cancellable; /* owned: cancelled by the caller's or by abort */
	GCancellable *caller;	   /* owned, nullable */
	gulong caller_id;
} AsPeerRawRequest;

static void
as_peer_raw_request_free(AsPeerRawRequest *raw)
{
	if (raw->caller != NULL)
		g_cancellable_disconnect(raw->caller, raw->caller_id);
	g_clear_object(&raw->caller);
	g_object_unref(raw->cancellable);
	g_free(raw);
}

static void
as_peer_raw_request_cancelled_cb(GCancellable *caller, gpointer user_data)
{
	g_cancellable_cancel(G_CANCELLABLE(user_data));
}

/* "POST /upload/chunk?... HTTP/1.1" with the message's own header fields */
static gchar *
as_peer_client_raw_head(AsPeerClient *self, SoupMessage *msg, const gchar *content_type, gsize len)
{
	GUri *uri = soup_message_get_uri(msg);
	const gchar *path = g_uri_get_path(uri);
	const gchar *query = g_uri_get_query(uri);
	GString *head = g_string_new(NULL);
	SoupMessageHeadersIter iter;
	const gchar *name;
	const gchar *value;

	g_string_append_printf(head, "%s %s%s%s HTTP/1.1\r\n", soup_message_get_method(msg),
			       path[0] != '\0' ? path : "/", query != NULL ? "?" : "",
			       query != NULL ? query : "");
	g_string_append_printf(head, "Host: %s\r\n", self->host_port);
	g_string_append(head, "User-Agent: aerosyncd/" PACKAGE_VERSION "\r\n");
	g_string_append_printf(head, "Content-Type: %s\r\n", content_type);
	g_string_append_printf(head, "Content-Length: %" G_GSIZE_FORMAT "\r\n", len);
	g_string_append(head, "Connection: close\r\n");
	soup_message_headers_iter_init(&iter, soup_message_get_request_headers(msg));
	while (soup_message_headers_iter_next(&iter, &name, &value))
		g_string_append_printf(head, "%s: %s\r\n", name, value);
	g_string_append(head, "\r\n");
	return g_string_free(head, FALSE);
}

static void
as_peer_client_raw_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = G_TASK(user_data);
	AsPeerClient *self = g_task_get_source_object(task);
	AsPeerRawRequest *raw = g_task_get_task_data(task);
	g_autoptr(GError) error = NULL;
	g_autofree gchar *reason = NULL;
	g_autoptr(GByteArray) reply = NULL;
	guint status = 0;
	g_autoptr(GBytes) body = as_http_raw_request_finish(res, &status, &reason, &error);

	g_ptr_array_remove_fast(self->raw_cancellables, raw->cancellable);
	if (body == NULL) {
		/* an abort or the caller's cancel both stop the request */
		if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED) ||
		    g_cancellable_is_cancelled(raw->cancellable)) {
			g_task_return_new_error(task, G_IO_ERROR, G_IO_ERROR_CANCELLED,
						"the request was cancelled");
			return;
		}
		as_peer_client_explain_error(self, &error);
		if (error->domain == G_IO_ERROR || error->domain == G_RESOLVER_ERROR)
			as_peer_client_prefix_network_error(self, &error);
		g_task_return_error(task, g_steal_pointer(&error));
		return;
	}
	reply = g_bytes_unref_to_array(g_steal_pointer(&body));
	as_peer_client_return_reply(task, status, reason, as_peer_client_parse_reply(reply));
}

static void
as_peer_client_send_raw(AsPeerClient *self,
			SoupMessage *msg,
			GBytes *body,
			const gchar *content_type,
			AsPeerClientProgressFunc progress_func,
			gpointer progress_data,
			GCancellable *cancellable,
			GAsyncReadyCallback callback,
			gpointer user_data)
{
	GTask *task = g_task_new(self, cancellable, callback, user_data);
	AsPeerRawRequest *raw = g_new0(AsPeerRawRequest, 1);
	g_autofree gchar *head =
		as_peer_client_raw_head(self, msg, content_type, g_bytes_get_size(body));

	g_task_set_source_tag(task, as_peer_client_send_raw);
	raw->cancellable = g_cancellable_new();
	if (cancellable != NULL) {
		raw->caller = g_object_ref(cancellable);
		raw->caller_id = g_cancellable_connect(
			cancellable, G_CALLBACK(as_peer_raw_request_cancelled_cb),
			g_object_ref(raw->cancellable), g_object_unref);
	}
	g_task_set_task_data(task, raw, (GDestroyNotify)as_peer_raw_request_free);
	g_ptr_array_add(self->raw_cancellables, g_object_ref(raw->cancellable));
	as_http_raw_request_async(self->sockets, self->host_port, head, body, self->limiter_a,
				  self->limiter_b, AS_PEER_CLIENT_REPLY_MAX, progress_func,
				  progress_data, raw->cancellable, as_peer_client_raw_cb, task);
	g_object_unref(msg);
}

static void
as_peer_client_send(AsPeerClient *self,
		    SoupMessage *msg,
		    GBytes *body,
		    const gchar *content_type,
		    AsPeerClientProgressFunc progress_func,
		    gpointer progress_data,
		    GCancellable *cancellable,
		    GAsyncReadyCallback callback,
		    gpointer user_data)
{
	GTask *task = g_task_new(self, cancellable, callback, user_data);
	AsPeerRequest *req;

	g_task_set_source_tag(task, as_peer_client_send);
	if (msg == NULL) {
		g_task_return_new_error(task, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
					"cannot make a request URL for %s", self->host_port);
		g_object_unref(task);
		return;
	}
	if (body != NULL && g_bytes_get_size(body) >= AS_PEER_CLIENT_RAW_MIN_BYTES) {
		g_object_unref(task);
		as_peer_client_send_raw(self, msg, body, content_type, progress_func, progress_data,
					cancellable, callback, user_data);
		return;
	}
	req = g_new0(AsPeerRequest, 1);
	req->msg = msg;
	req->reply = g_byte_array_new();
	if (body != NULL) {
		req->body = as_peer_body_stream_new(body, self->limiter_a, self->limiter_b,
						    progress_func, progress_data);
		soup_message_set_request_body(msg, content_type, G_INPUT_STREAM(req->body),
					      (gssize)g_bytes_get_size(body));
	}
	g_task_set_task_data(task, req, (GDestroyNotify)as_peer_request_free);
	soup_session_send_async(self->session, msg, G_PRIORITY_DEFAULT, cancellable,
				as_peer_client_sent_cb, task);
}

static void
as_peer_client_handshake_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	GTask *task = G_TASK(user_data);
	AsPeerClient *self = g_task_get_source_object(task);
	AsPeerRequest *req = g_task_get_task_data(task);
	g_autoptr(GError) error = NULL;
	g_autoptr(GSocketConnection) conn =
		g_socket_client_connect_to_host_finish(G_SOCKET_CLIENT(source), res, &error);

	if (conn == NULL) {
		as_peer_client_explain_error(self, &error);
		if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT))
			g_prefix_error(&error,
				       "no TLS handshake with %s (if it is a plain-HTTP port, send "
				       "to http://%s): ",
				       self->host_port, self->host_port);
		else if (error->domain == G_IO_ERROR || error->domain == G_RESOLVER_ERROR)
			as_peer_client_prefix_network_error(self, &error);
		g_task_return_error(task, g_steal_pointer(&error));
		g_object_unref(task);
		return;
	}
	g_io_stream_close(G_IO_STREAM(conn), NULL, NULL);
	soup_session_send_async(self->session, req->msg, G_PRIORITY_DEFAULT,
				g_task_get_cancellable(task), as_peer_client_sent_cb, task);
}

/*
 * Before the first request to an https:// receiver: one TLS handshake within a short time,
 * judged like every later one. A plain-HTTP port never answers a ClientHello (it waits for the
 * end of a request head), which would otherwise only fail after the I/O timeout; and the
 * certificate is decided (and recorded on first use) once, before any request is made.
 */
static void
as_peer_client_handshake(AsPeerClient *self, GTask *task)
{
	g_autoptr(GSocketClient) client = g_socket_client_new();

	g_socket_client_set_tls(client, TRUE);
	g_socket_client_set_timeout(client, AS_PEER_CLIENT_TLS_HANDSHAKE_TIMEOUT_S);
	g_signal_connect_object(client, "event", G_CALLBACK(as_peer_client_socket_event_cb), self,
				0);
	g_socket_client_connect_to_host_async(client, self->host_port, 0,
					      g_task_get_cancellable(task),
					      as_peer_client_handshake_cb, task);
}

/**
 * as_peer_client_health_async:
 *
 * `GET /health`, which needs no token. The reply must carry `X-AeroSync: true`, or the
 * request fails with "HOST:PORT is not an AeroSync receiver". Finish with
 * as_peer_client_request_finish(), which gives the health object (`free_bytes`, `protocols`).
 **/
void
as_peer_client_health_async(AsPeerClient *self,
			    GCancellable *cancellable,
			    GAsyncReadyCallback callback,
			    gpointer user_data)
{
	g_autofree gchar *url = g_strconcat(self->base_url, "/health", NULL);
	SoupMessage *msg = soup_message_new(SOUP_METHOD_GET, url);
	GTask *task;
	AsPeerRequest *req;

	g_return_if_fail(AS_IS_PEER_CLIENT(self));

	/* built by hand: /health needs no token, so none is sent */
	task = g_task_new(self, cancellable, callback, user_data);
	as_peer_client_prepare_message(self, msg);
	req = g_new0(AsPeerRequest, 1);
	req->msg = msg;
	req->reply = g_byte_array_new();
	req->health = TRUE;
	g_task_set_source_tag(task, as_peer_client_send);
	g_task_set_task_data(task, req, (GDestroyNotify)as_peer_request_free);
	if (self->https) {
		as_peer_client_handshake(self, task);
		return;
	}
	soup_session_send_async(self->session, msg, G_PRIORITY_DEFAULT, cancellable,
				as_peer_client_sent_cb, task);
}

/**
 * as_peer_client_put_async:
 * @name: relative destination name, escaped here
 * @data: the whole file
 * @sha256: (nullable): sent as `X-File-Hash`, so the receiver verifies before keeping it
 *
 * `PUT /upload/<name>` of one file. The reply gives `filename` (where it was saved) and
 * `sha256`.
 **/
void
as_peer_client_put_async(AsPeerClient *self,
			 const gchar *name,
			 GBytes *data,
			 const gchar *sha256,
			 AsPeerClientProgressFunc progress_func,
			 gpointer progress_data,
			 GCancellable *cancellable,
			 GAsyncReadyCallback callback,
			 gpointer user_data)
{
	g_autofree gchar *escaped = as_peer_client_escape_path(name);
	g_autofree gchar *path = g_strconcat("/upload/", escaped, NULL);
	SoupMessage *msg = as_peer_client_message(self, SOUP_METHOD_PUT, path);

	if (sha256 != NULL)
		soup_message_headers_replace(soup_message_get_request_headers(msg), "X-File-Hash",
					     sha256);
	as_peer_client_send(self, msg, data, "application/octet-stream", progress_func,
			    progress_data, cancellable, callback, user_data);
}

/**
 * as_peer_client_batch_async:
 * @body: from as_peer_batch_end()
 * @content_type: from as_peer_batch_end()
 *
 * `POST /upload/batch`. The reply lists every file under `files`, each with `name`, `ok` and
 * either `saved_as` and `sha256` or `error`.
 **/
void
as_peer_client_batch_async(AsPeerClient *self,
			   GBytes *body,
			   const gchar *content_type,
			   AsPeerClientProgressFunc progress_func,
			   gpointer progress_data,
			   GCancellable *cancellable,
			   GAsyncReadyCallback callback,
			   gpointer user_data)
{
	as_peer_client_send(self, as_peer_client_message(self, SOUP_METHOD_POST, "/upload/batch"),
			    body, content_type, progress_func, progress_data, cancellable, callback,
			    user_data);
}

/**
 * as_peer_client_chunk_async:
 * @sha256: (nullable): the chunk's SHA-256, sent as `X-Chunk-Hash`
 *
 * `POST /upload/chunk` of chunk @index of task @task_id. The reply says whether it was new or
 * a duplicate and how many chunks the receiver holds.
 **/
void
as_peer_client_chunk_async(AsPeerClient *self,
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
			   gpointer user_data)
{
	g_autofree gchar *escaped = g_uri_escape_string(name, NULL, FALSE);
	g_autofree gchar *query = g_strdup_printf(
		"/upload/chunk?task_id=%s&chunk_index=%u&total_chunks=%u&filename=%s"
		"&total_size=%" G_GUINT64_FORMAT "&chunk_size=%" G_GUINT64_FORMAT,
		task_id, index, total_chunks, escaped, total_size, chunk_size);
	SoupMessage *msg = as_peer_client_message(self, SOUP_METHOD_POST, query);

	if (sha256 != NULL)
		soup_message_headers_replace(soup_message_get_request_headers(msg), "X-Chunk-Hash",
					     sha256);
	as_peer_client_send(self, msg, data, "application/octet-stream", progress_func,
			    progress_data, cancellable, callback, user_data);
}

/**
 * as_peer_client_status_async:
 *
 * `GET /upload/status?task_id=`: what the receiver holds of a task (`received` and `missing`
 * chunk ranges) or, once published, `complete` with its `sha256`. An unknown task fails with
 * %AS_PEER_CLIENT_ERROR 404.
 **/
void
as_peer_client_status_async(AsPeerClient *self,
			    const gchar *task_id,
			    GCancellable *cancellable,
			    GAsyncReadyCallback callback,
			    gpointer user_data)
{
	g_autofree gchar *query = g_strdup_printf("/upload/status?task_id=%s", task_id);
	as_peer_client_send(self, as_peer_client_message(self, SOUP_METHOD_GET, query), NULL, NULL,
			    NULL, NULL, cancellable, callback, user_data);
}

/**
 * as_peer_client_complete_async:
 * @sha256: (nullable): the whole file's SHA-256: the receiver publishes only if it matches
 *
 * `POST /upload/complete`. The reply gives `saved_as` and the `sha256` the receiver computed.
 **/
void
as_peer_client_complete_async(AsPeerClient *self,
			      const gchar *task_id,
			      guint64 total_size,
			      guint32 total_chunks,
			      const gchar *sha256,
			      GCancellable *cancellable,
			      GAsyncReadyCallback callback,
			      gpointer user_data)
{
	g_autofree gchar *query = g_strdup_printf(
		"/upload/complete?task_id=%s&total_size=%" G_GUINT64_FORMAT "&total_chunks=%u%s%s",
		task_id, total_size, total_chunks, sha256 != NULL ? "&sha256=" : "",
		sha256 != NULL ? sha256 : "");
	as_peer_client_send(self, as_peer_client_message(self, SOUP_METHOD_POST, query), NULL, NULL,
			    NULL, NULL, cancellable, callback, user_data);
}

/**
 * as_peer_client_request_finish:
 *
 * Returns: (transfer full): the reply object of a successful request, or %NULL: network errors
 *   say "cannot connect to HOST:PORT: ..." or "connection to HOST:PORT failed: ...", refusals are
 *   in %AS_PEER_CLIENT_ERROR with the status as code and the receiver's error text
 **/
JsonObject *
as_peer_client_request_finish(AsPeerClient *self, GAsyncResult *res, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(res, self), NULL);
	return g_task_propagate_pointer(G_TASK(res), error);
}

const gchar *
as_peer_client_get_host_port(AsPeerClient *self)
{
	return self->host_port;
}

/* whether requests go over TLS */
gboolean
as_peer_client_get_https(AsPeerClient *self)
{
	g_return_val_if_fail(AS_IS_PEER_CLIENT(self), FALSE);
	return self->https;
}

/**
 * as_peer_client_set_trust:
 * @trust: decides on the receiver's certificate, for every connection of an https:// client
 *
 * Without one, an https:// client accepts only certificates a trusted CA signed for the host.
 **/
void
as_peer_client_set_trust(AsPeerClient *self, AsPeerTrust *trust)
{
	g_return_if_fail(AS_IS_PEER_CLIENT(self));
	g_return_if_fail(AS_IS_PEER_TRUST(trust));
	g_set_object(&self->trust, trust);
}

AsPeerTrust *
as_peer_client_get_trust(AsPeerClient *self)
{
	g_return_val_if_fail(AS_IS_PEER_CLIENT(self), NULL);
	return self->trust;
}

/**
 * as_peer_client_set_limiters:
 * @transfer_limiter: (nullable): the transfer's own bucket
 * @global_limiter: (nullable): the daemon-wide bucket
 *
 * Every request body started from now on is paced by both.
 **/
void
as_peer_client_set_limiters(AsPeerClient *self,
			    AsRateLimiter *transfer_limiter,
			    AsRateLimiter *global_limiter)
{
	g_return_if_fail(AS_IS_PEER_CLIENT(self));
	g_set_object(&self->limiter_a, transfer_limiter);
	g_set_object(&self->limiter_b, global_limiter);
}

/* drops every connection, e.g. when the transfer is over */
void
as_peer_client_abort(AsPeerClient *self)
{
	g_return_if_fail(AS_IS_PEER_CLIENT(self));
	soup_session_abort(self->session);
	for (guint i = 0; i < self->raw_cancellables->len; i++)
		g_cancellable_cancel(g_ptr_array_index(self->raw_cancellables, i));
}

/**
 * as_peer_client_new:
 * @base_url: from as_peer_client_parse_destination()
 * @host_port: the same, for messages
 * @token: (nullable): sent as `Authorization: Bearer`
 * @tag: (nullable): sent as `X-AeroSync-Tag` with every upload
 * @max_conns: keep-alive connections kept to the receiver
 *
 * Returns: (transfer full): a client for one receiver, to use from the thread that made it
 **/
AsPeerClient *
as_peer_client_new(const gchar *base_url,
		   const gchar *host_port,
		   const gchar *token,
		   const gchar *tag,
		   guint max_conns)
{
	AsPeerClient *self = g_object_new(AS_TYPE_PEER_CLIENT, NULL);

	self->base_url = g_strdup(base_url);
	self->host_port = g_strdup(host_port);
	if (token != NULL && token[0] != '\0')
		self->authorization = g_strdup_printf("Bearer %s", token);
	self->tag = g_strdup(tag);
	/* "timeout" is per I/O operation, so a slow but moving transfer never times out */
	self->session = soup_session_new_with_options(
		"timeout", AS_PEER_CLIENT_IO_TIMEOUT_S, "max-conns-per-host", MAX(max_conns, 1u),
		"max-conns", MAX(max_conns, 1u), "user-agent", "aerosyncd/" PACKAGE_VERSION, NULL);
	self->sockets = g_socket_client_new();
	/* like libsoup's "timeout": per I/O wait, never for the whole request */
	g_socket_client_set_timeout(self->sockets, AS_PEER_CLIENT_IO_TIMEOUT_S);
	if (g_str_has_prefix(base_url, "https://")) {
		g_autoptr(GUri) uri = g_uri_parse(base_url, G_URI_FLAGS_NONE, NULL);
		self->https = TRUE;
		/* no database: every certificate reaches as_peer_client_judge(), which does the
		 * CA verification itself, so that a pin holds for CA-signed certificates too */
		soup_session_set_tls_database(self->session, NULL);
		g_socket_client_set_tls(self->sockets, TRUE);
		g_signal_connect_object(self->sockets, "event",
					G_CALLBACK(as_peer_client_socket_event_cb), self, 0);
		/* until the caller says more: CA-verified certificates only */
		if (uri != NULL && g_uri_get_host(uri) != NULL) {
			self->trust = as_peer_trust_new(g_uri_get_host(uri),
							(guint16)g_uri_get_port(uri));
			as_peer_trust_set_allow_ca(self->trust, TRUE);
		}
	}
	return self;
}

static void
as_peer_client_finalize(GObject *object)
{
	AsPeerClient *self = AS_PEER_CLIENT(object);

	soup_session_abort(self->session);
	g_object_unref(self->session);
	g_object_unref(self->sockets);
	g_ptr_array_unref(self->raw_cancellables);
	g_clear_object(&self->limiter_a);
	g_clear_object(&self->limiter_b);
	g_free(self->base_url);
	g_free(self->host_port);
	if (self->authorization != NULL)
		memset(self->authorization, 0, strlen(self->authorization));
	g_free(self->authorization);
	g_free(self->tag);
	g_clear_object(&self->trust);
	G_OBJECT_CLASS(as_peer_client_parent_class)->finalize(object);
}

static void
as_peer_client_class_init(AsPeerClientClass *klass)
{
	G_OBJECT_CLASS(klass)->finalize = as_peer_client_finalize;
}

static void
as_peer_client_init(AsPeerClient *self)
{
	self->raw_cancellables = g_ptr_array_new_with_free_func(g_object_unref);
}
