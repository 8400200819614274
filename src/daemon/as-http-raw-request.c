/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "AsHttpRawRequest"

#include "config.h"

#include <string.h>

#include "as-error.h"
#include "as-http-raw-request.h"

/*
 * One HTTP/1.1 request with a large in-memory body on a connection of its own. libsoup splices
 * a request body into the socket 8 KiB per read on the main loop, which for chunk uploads costs
 * one sendto and about half a poll per 8 KiB; here the body goes out in blocks of up to 1 MiB
 * with write_all, so the kernel takes as much as the send buffer holds per call. Every block is
 * charged to the rate limiters before it is written, as the libsoup body stream did per read.
 * The connection is closed after the reply: the receiver closes large uploads anyway.
 *
 * The socket timeout of the GSocketClient applies to every single I/O wait, so a request fails
 * only after that long without progress, never because it is long.
 */

/* -------- parsers: pure functions over buffers -------- */

static gboolean
as_http_raw_parse_failed(GError **error, const gchar *what)
{
	g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "malformed HTTP reply: %s", what);
	return FALSE;
}

/**
 * as_http_raw_parse_head:
 * @data: the start of a reply
 * @len: bytes in @data
 * @head_len: (out): bytes of the head including the blank line, 0 if @data holds no whole head
 * @status: (out): the status code
 * @reason: (out) (transfer full): the reason phrase
 * @framing: (out): how the body ends
 * @content_length: (out): the body size for %AS_HTTP_RAW_FRAMING_LENGTH
 *
 * Parses an HTTP/1.0 or 1.1 status line and its header fields. A head longer than
 * %AS_HTTP_RAW_HEAD_MAX, obsolete line folding, a bad or contradictory Content-Length and a
 * transfer coding other than a final "chunked" are refused.
 *
 * Returns: %TRUE with *@head_len 0 if more data is needed, %TRUE with the fields set, or %FALSE
 **/
gboolean
as_http_raw_parse_head(const gchar *data,
		       gsize len,
		       gsize *head_len,
		       guint *status,
		       gchar **reason,
		       AsHttpRawFraming *framing,
		       guint64 *content_length,
		       GError **error)
{
	const gchar *end = NULL;
	g_autofree gchar *head = NULL;
	g_auto(GStrv) lines = NULL;
	gboolean have_length = FALSE;
	gboolean chunked = FALSE;
	gboolean other_coding = FALSE;
	guint64 length = 0;
	guint code;

	*head_len = 0;
	for (gsize i = 0; i + 3 < len; i++) {
		if (data[i] == '\r' && data[i + 1] == '\n' && data[i + 2] == '\r' &&
		    data[i + 3] == '\n') {
			end = data + i;
			break;
		}
	}
	if (end == NULL) {
		if (len > AS_HTTP_RAW_HEAD_MAX)
			return as_http_raw_parse_failed(error, "header section too long");
		return TRUE;
	}
	if ((gsize)(end - data) + 4 > AS_HTTP_RAW_HEAD_MAX)
		return as_http_raw_parse_failed(error, "header section too long");
	if (memchr(data, '\0', (gsize)(end - data)) != NULL)
		return as_http_raw_parse_failed(error, "NUL in the header section");
	head = g_strndup(data, (gsize)(end - data));
	lines = g_strsplit(head, "\r\n", -1);

	/* "HTTP/1.1 200 OK" */
	if ((strncmp(lines[0], "HTTP/1.1 ", 9) != 0 && strncmp(lines[0], "HTTP/1.0 ", 9) != 0) ||
	    !g_ascii_isdigit(lines[0][9]) || !g_ascii_isdigit(lines[0][10]) ||
	    !g_ascii_isdigit(lines[0][11]) || (lines[0][12] != ' ' && lines[0][12] != '\0'))
		return as_http_raw_parse_failed(error, "bad status line");
	code = (guint)((lines[0][9] - '0') * 100 + (lines[0][10] - '0') * 10 +
		       (lines[0][11] - '0'));
	if (code < 100)
		return as_http_raw_parse_failed(error, "bad status code");

	for (guint i = 1; lines[i] != NULL; i++) {
		const gchar *line = lines[i];
		const gchar *colon = strchr(line, ':');
		g_autofree gchar *name = NULL;
		g_autofree gchar *value = NULL;

		if (line[0] == ' ' || line[0] == '\t')
			return as_http_raw_parse_failed(error, "folded header line");
		if (colon == NULL || colon == line)
			return as_http_raw_parse_failed(error, "header line without a name");
		name = g_strndup(line, (gsize)(colon - line));
		if (strpbrk(name, " \t") != NULL)
			return as_http_raw_parse_failed(error, "white space in a header name");
		value = g_strstrip(g_strdup(colon + 1));
		if (g_ascii_strcasecmp(name, "Content-Length") == 0) {
			guint64 v = 0;
			if (!g_ascii_string_to_unsigned(value, 10, 0, G_MAXINT64, &v, NULL))
				return as_http_raw_parse_failed(error, "bad Content-Length");
			if (have_length && v != length)
				return as_http_raw_parse_failed(error,
								"conflicting Content-Length");
			have_length = TRUE;
			length = v;
		} else if (g_ascii_strcasecmp(name, "Transfer-Encoding") == 0) {
			g_auto(GStrv) codings = g_strsplit(value, ",", -1);
			for (guint j = 0; codings[j] != NULL; j++) {
				const gchar *c = g_strstrip(codings[j]);
				if (c[0] == '\0')
					continue;
				/* chunked must be the last coding; anything after it breaks that */
				if (g_ascii_strcasecmp(c, "chunked") == 0 && !chunked) {
					chunked = TRUE;
				} else {
					other_coding = TRUE;
				}
			}
			if (!chunked && !other_coding)
				return as_http_raw_parse_failed(error, "empty Transfer-Encoding");
		}
	}
	if (other_coding) {
		g_set_error_literal(error, AS_ERROR, AS_ERROR_NOT_SUPPORTED,
				    "the HTTP reply uses a transfer coding other than chunked");
		return FALSE;
	}

	*head_len = (gsize)(end - data) + 4;
	*status = code;
	*reason = g_strdup(lines[0][12] == ' ' ? lines[0] + 13 : "");
	*content_length = 0;
	if (code < 200 || code == 204 || code == 304)
		*framing = AS_HTTP_RAW_FRAMING_NONE;
	else if (chunked)
		*framing = AS_HTTP_RAW_FRAMING_CHUNKED;
	else if (have_length) {
		*framing = AS_HTTP_RAW_FRAMING_LENGTH;
		*content_length = length;
	} else
		*framing = AS_HTTP_RAW_FRAMING_CLOSE;
	return TRUE;
}

static gint
as_http_raw_dechunk_failed(GError **error, const gchar *what)
{
	as_http_raw_parse_failed(error, what);
	return -1;
}

/* the end of the CRLF-terminated line starting at @pos, or -1 if it is not all there */
static gssize
as_http_raw_line_end(const guint8 *data, gsize len, gsize pos)
{
	for (gsize i = pos; i + 1 < len; i++) {
		if (data[i] == '\r' && data[i + 1] == '\n')
			return (gssize)i;
	}
	return -1;
}

/**
 * as_http_raw_dechunk:
 * @data: a chunked body from its start
 * @len: bytes of it received so far
 * @out: the decoded body, replaced by each call
 * @max: the largest decoded body accepted
 * @used: (out): bytes of @data the whole chunked body took, once complete
 *
 * Decodes a `Transfer-Encoding: chunked` body (RFC 9112 §7.1), dropping chunk extensions and
 * trailer fields.
 *
 * Returns: 1 when complete, 0 when more data is needed, -1 on error
 **/
gint
as_http_raw_dechunk(
	const guint8 *data, gsize len, GByteArray *out, gsize max, gsize *used, GError **error)
{
	gsize pos = 0;

	g_byte_array_set_size(out, 0);
	*used = 0;
	for (;;) {
		gssize eol = as_http_raw_line_end(data, len, pos);
		guint64 size = 0;
		gsize digits = 0;

		if (eol < 0 && len - pos > AS_HTTP_RAW_HEAD_MAX)
			return as_http_raw_dechunk_failed(error, "chunk line too long");
		if (eol < 0)
			return 0;
		while (pos + digits < (gsize)eol && g_ascii_isxdigit(data[pos + digits])) {
			if (size > (G_MAXUINT64 >> 4))
				return as_http_raw_dechunk_failed(error, "chunk size too large");
			size = (size << 4) |
			       (guint64)g_ascii_xdigit_value((gchar)data[pos + digits]);
			digits++;
		}
		if (digits == 0 || (pos + digits < (gsize)eol && data[pos + digits] != ';' &&
				    data[pos + digits] != ' ' && data[pos + digits] != '\t'))
			return as_http_raw_dechunk_failed(error, "bad chunk size");
		pos = (gsize)eol + 2;
		if (size == 0) {
			/* trailer fields up to an empty line */
			for (;;) {
				eol = as_http_raw_line_end(data, len, pos);
				if (eol < 0)
					return 0;
				if ((gsize)eol == pos) {
					*used = pos + 2;
					return 1;
				}
				pos = (gsize)eol + 2;
			}
		}
		if (size > max || out->len + size > max) {
			g_set_error(error, AS_ERROR, AS_ERROR_TOO_LARGE,
				    "the reply is larger than %" G_GSIZE_FORMAT " bytes", max);
			return -1;
		}
		if (len - pos < size + 2)
			return 0;
		if (data[pos + size] != '\r' || data[pos + size + 1] != '\n')
			return as_http_raw_dechunk_failed(error, "chunk without its CRLF");
		g_byte_array_append(out, data + pos, (guint)size);
		pos += (gsize)size + 2;
	}
}

/**
 * as_http_raw_block_size:
 *
 * Returns: how much of a body to charge and write at once: %AS_HTTP_RAW_BLOCK_SIZE without a
 *   rate limit, else a 1/%AS_HTTP_RAW_BLOCKS_PER_S second of the lowest rate
 **/
gsize
as_http_raw_block_size(AsRateLimiter *limiter_a, AsRateLimiter *limiter_b)
{
	guint64 rate = 0;
	guint64 r;

	if (limiter_a != NULL && (r = as_rate_limiter_get_rate(limiter_a)) > 0)
		rate = r;
	if (limiter_b != NULL && (r = as_rate_limiter_get_rate(limiter_b)) > 0)
		rate = rate == 0 ? r : MIN(rate, r);
	if (rate == 0)
		return AS_HTTP_RAW_BLOCK_SIZE;
	return (gsize)CLAMP(rate / AS_HTTP_RAW_BLOCKS_PER_S, (guint64)AS_HTTP_RAW_MIN_BLOCK_SIZE,
			    (guint64)AS_HTTP_RAW_BLOCK_SIZE);
}

/* -------- the request -------- */

typedef struct {
	GSocketConnection *conn; /* owned */
	gchar *head;		 /* owned */
	GBytes *body;		 /* owned */
	gsize pos;		 /* body bytes written */
	gsize block;		 /* body bytes being written */
	gboolean head_sent;
	AsRateLimiter *limiter_a; /* owned, nullable */
	AsRateLimiter *limiter_b; /* owned, nullable */
	gsize reply_max;
	AsHttpRawProgressFunc progress_func;
	gpointer progress_data;
	GSource *wait_source; /* owned */
	GOutputVector vectors[2];
	GError *write_error; /* owned: a failed write whose reply may already be in */
	guint8 *read_buffer; /* owned */
	GByteArray *reply;   /* owned: received bytes after any finished 1xx heads */
	gsize head_len;	     /* 0 until the final head is parsed */
	guint status;
	gchar *reason; /* owned */
	AsHttpRawFraming framing;
	guint64 content_length;
} AsHttpRawRequest;

static void
as_http_raw_request_free(AsHttpRawRequest *req)
{
	if (req->wait_source != NULL)
		g_source_destroy(req->wait_source);
	g_clear_pointer(&req->wait_source, g_source_unref);
	g_clear_object(&req->conn);
	g_free(req->head);
	g_bytes_unref(req->body);
	g_clear_object(&req->limiter_a);
	g_clear_object(&req->limiter_b);
	g_clear_error(&req->write_error);
	g_free(req->read_buffer);
	g_byte_array_unref(req->reply);
	g_free(req->reason);
	g_free(req);
}

static void as_http_raw_request_send_block(GTask *task);
static void as_http_raw_request_read(GTask *task);

static void
as_http_raw_request_return(GTask *task, GBytes *body)
{
	g_task_return_pointer(task, body, (GDestroyNotify)g_bytes_unref);
}

/* the reply so far: returns TRUE once it is complete or has failed */
static gboolean
as_http_raw_request_check_reply(GTask *task, gboolean eof)
{
	AsHttpRawRequest *req = g_task_get_task_data(task);
	g_autoptr(GError) error = NULL;

	while (req->head_len == 0) {
		gsize head_len = 0;
		g_free(req->reason);
		req->reason = NULL;
		if (!as_http_raw_parse_head((const gchar *)req->reply->data, req->reply->len,
					    &head_len, &req->status, &req->reason, &req->framing,
					    &req->content_length, &error)) {
			g_task_return_error(task, g_steal_pointer(&error));
			return TRUE;
		}
		if (head_len == 0) {
			if (!eof)
				return FALSE;
			g_task_return_new_error(task, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED,
						"the connection closed before the reply");
			return TRUE;
		}
		if (req->status == 101) {
			g_task_return_new_error(task, AS_ERROR, AS_ERROR_NOT_SUPPORTED,
						"unexpected protocol switch in the HTTP reply");
			return TRUE;
		}
		/* 100 Continue and other interim replies come before the real one */
		if (req->status < 200) {
			g_byte_array_remove_range(req->reply, 0, (guint)head_len);
			continue;
		}
		req->head_len = head_len;
	}

	switch (req->framing) {
	case AS_HTTP_RAW_FRAMING_NONE:
		as_http_raw_request_return(task, g_bytes_new(NULL, 0));
		return TRUE;
	case AS_HTTP_RAW_FRAMING_LENGTH:
		if (req->content_length > req->reply_max) {
			g_task_return_new_error(task, AS_ERROR, AS_ERROR_TOO_LARGE,
						"the reply is larger than %" G_GSIZE_FORMAT
						" bytes",
						req->reply_max);
			return TRUE;
		}
		if (req->reply->len - req->head_len >= req->content_length) {
			as_http_raw_request_return(task,
						   g_bytes_new(req->reply->data + req->head_len,
							       (gsize)req->content_length));
			return TRUE;
		}
		break;
	case AS_HTTP_RAW_FRAMING_CHUNKED: {
		g_autoptr(GByteArray) out = g_byte_array_new();
		gsize used = 0;
		gint rc = as_http_raw_dechunk(req->reply->data + req->head_len,
					      req->reply->len - req->head_len, out, req->reply_max,
					      &used, &error);
		if (rc < 0) {
			g_task_return_error(task, g_steal_pointer(&error));
			return TRUE;
		}
		if (rc > 0) {
			as_http_raw_request_return(
				task, g_byte_array_free_to_bytes(g_steal_pointer(&out)));
			return TRUE;
		}
		break;
	}
	case AS_HTTP_RAW_FRAMING_CLOSE:
		if (req->reply->len - req->head_len > req->reply_max) {
			g_task_return_new_error(task, AS_ERROR, AS_ERROR_TOO_LARGE,
						"the reply is larger than %" G_GSIZE_FORMAT
						" bytes",
						req->reply_max);
			return TRUE;
		}
		if (eof) {
			as_http_raw_request_return(task,
						   g_bytes_new(req->reply->data + req->head_len,
							       req->reply->len - req->head_len));
			return TRUE;
		}
		return FALSE;
	default:
		g_assert_not_reached();
	}
	if (eof) {
		g_task_return_new_error(task, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED,
					"the connection closed in the middle of the reply");
		return TRUE;
	}
	return FALSE;
}

static void
as_http_raw_request_read_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = G_TASK(user_data);
	AsHttpRawRequest *req = g_task_get_task_data(task);
	g_autoptr(GError) error = NULL;
	gssize n = g_input_stream_read_finish(G_INPUT_STREAM(source), res, &error);

	if (n < 0) {
		/* a write that failed first says more about what went wrong */
		if (req->write_error != NULL &&
		    !g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
			g_task_return_error(task, g_steal_pointer(&req->write_error));
			return;
		}
		g_task_return_error(task, g_steal_pointer(&error));
		return;
	}
	g_byte_array_append(req->reply, req->read_buffer, (guint)n);
	if (req->write_error != NULL && n == 0 && req->head_len == 0) {
		g_task_return_error(task, g_steal_pointer(&req->write_error));
		return;
	}
	if (as_http_raw_request_check_reply(task, n == 0))
		return;
	as_http_raw_request_read(g_steal_pointer(&task));
}

static void
as_http_raw_request_read(GTask *task)
{
	AsHttpRawRequest *req = g_task_get_task_data(task);

	if (req->read_buffer == NULL)
		req->read_buffer = g_malloc(AS_HTTP_RAW_READ_SIZE);
	g_input_stream_read_async(g_io_stream_get_input_stream(G_IO_STREAM(req->conn)),
				  req->read_buffer, AS_HTTP_RAW_READ_SIZE, G_PRIORITY_DEFAULT,
				  g_task_get_cancellable(task), as_http_raw_request_read_cb, task);
}

static void
as_http_raw_request_written(GTask *task, gboolean ok, GError *error)
{
	AsHttpRawRequest *req = g_task_get_task_data(task);

	if (!ok) {
		/* the receiver may have refused the body early and closed: its reply, if it
		 * got here, is worth more than "broken pipe" */
		if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED) ||
		    g_error_matches(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT)) {
			g_task_return_error(task, error);
			g_object_unref(task);
			return;
		}
		req->write_error = error;
		as_http_raw_request_read(task);
		return;
	}
	req->head_sent = TRUE;
	req->pos += req->block;
	req->block = 0;
	if (req->progress_func != NULL)
		req->progress_func(req->pos, req->progress_data);
	if (req->pos >= g_bytes_get_size(req->body)) {
		as_http_raw_request_read(task);
		return;
	}
	as_http_raw_request_send_block(task);
}

static void
as_http_raw_request_writev_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	GError *error = NULL;
	gboolean ok = g_output_stream_writev_all_finish(G_OUTPUT_STREAM(source), res, NULL, &error);
	as_http_raw_request_written(G_TASK(user_data), ok, error);
}

static void
as_http_raw_request_write_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	GError *error = NULL;
	gboolean ok = g_output_stream_write_all_finish(G_OUTPUT_STREAM(source), res, NULL, &error);
	as_http_raw_request_written(G_TASK(user_data), ok, error);
}

static void
as_http_raw_request_write_block(GTask *task)
{
	AsHttpRawRequest *req = g_task_get_task_data(task);
	GOutputStream *out = g_io_stream_get_output_stream(G_IO_STREAM(req->conn));
	const guint8 *data = g_bytes_get_data(req->body, NULL);

	if (!req->head_sent) {
		/* the head goes with the first block, in one system call */
		req->vectors[0].buffer = req->head;
		req->vectors[0].size = strlen(req->head);
		req->vectors[1].buffer = data + req->pos;
		req->vectors[1].size = req->block;
		g_output_stream_writev_all_async(out, req->vectors, req->block > 0 ? 2 : 1,
						 G_PRIORITY_DEFAULT, g_task_get_cancellable(task),
						 as_http_raw_request_writev_cb, task);
		return;
	}
	g_output_stream_write_all_async(out, data + req->pos, req->block, G_PRIORITY_DEFAULT,
					g_task_get_cancellable(task), as_http_raw_request_write_cb,
					task);
}

static gboolean as_http_raw_request_wait_cb(gpointer user_data);

static void
as_http_raw_request_arm(GTask *task, gint64 delay_us)
{
	AsHttpRawRequest *req = g_task_get_task_data(task);
	guint ms = (guint)MIN((delay_us + 999) / 1000, (gint64)AS_HTTP_RAW_RATE_RECHECK_MS);

	g_clear_pointer(&req->wait_source, g_source_unref);
	req->wait_source = g_timeout_source_new(MAX(ms, 1));
	g_source_set_priority(req->wait_source, G_PRIORITY_DEFAULT);
	g_source_set_callback(req->wait_source, as_http_raw_request_wait_cb, task, NULL);
	g_source_attach(req->wait_source, g_task_get_context(task));
}

static gboolean
as_http_raw_request_wait_cb(gpointer user_data)
{
	GTask *task = G_TASK(user_data);
	AsHttpRawRequest *req = g_task_get_task_data(task);
	gint64 delay;

	/* a cancelled request (pause, cancel) stops waiting at the next look */
	if (g_task_return_error_if_cancelled(task)) {
		g_clear_pointer(&req->wait_source, g_source_unref);
		g_object_unref(task);
		return G_SOURCE_REMOVE;
	}
	delay = as_rate_limiter_get_delay_pair(req->limiter_a, req->limiter_b,
					       g_get_monotonic_time());
	if (delay > 0) {
		as_http_raw_request_arm(task, delay);
		return G_SOURCE_REMOVE;
	}
	g_clear_pointer(&req->wait_source, g_source_unref);
	as_http_raw_request_write_block(task);
	return G_SOURCE_REMOVE;
}

/* charges the next block to the limiters, then writes it at once or after a wait */
static void
as_http_raw_request_send_block(GTask *task)
{
	AsHttpRawRequest *req = g_task_get_task_data(task);
	gsize left = g_bytes_get_size(req->body) - req->pos;
	gint64 delay = 0;

	req->block = MIN(left, as_http_raw_block_size(req->limiter_a, req->limiter_b));
	if (req->block > 0 && (req->limiter_a != NULL || req->limiter_b != NULL))
		delay = as_rate_limiter_reserve_pair(req->limiter_a, req->limiter_b, req->block,
						     g_get_monotonic_time());
	if (delay > 0) {
		as_http_raw_request_arm(task, delay);
		return;
	}
	as_http_raw_request_write_block(task);
}

static void
as_http_raw_request_connect_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	GTask *task = G_TASK(user_data);
	AsHttpRawRequest *req = g_task_get_task_data(task);
	GError *error = NULL;

	req->conn = g_socket_client_connect_to_host_finish(G_SOCKET_CLIENT(source), res, &error);
	if (req->conn == NULL) {
		g_task_return_error(task, error);
		g_object_unref(task);
		return;
	}
	as_http_raw_request_send_block(task);
}

/**
 * as_http_raw_request_async:
 * @client: makes the connection; its timeout is the longest wait without progress
 * @host_port: `host:port` or `[v6]:port`
 * @head: the request line and header fields, with the blank line; they must say
 *   `Content-Length` of @body
 * @body: the whole request body
 * @limiter_a: (nullable): charged for every block before it is written
 * @limiter_b: (nullable): likewise
 * @reply_max: the largest reply body accepted
 * @progress_func: (nullable): told the body bytes written after every block
 *
 * Sends one request on a new connection and reads the reply. Finish with
 * as_http_raw_request_finish().
 **/
void
as_http_raw_request_async(GSocketClient *client,
			  const gchar *host_port,
			  const gchar *head,
			  GBytes *body,
			  AsRateLimiter *limiter_a,
			  AsRateLimiter *limiter_b,
			  gsize reply_max,
			  AsHttpRawProgressFunc progress_func,
			  gpointer progress_data,
			  GCancellable *cancellable,
			  GAsyncReadyCallback callback,
			  gpointer user_data)
{
	GTask *task = g_task_new(client, cancellable, callback, user_data);
	AsHttpRawRequest *req = g_new0(AsHttpRawRequest, 1);

	g_task_set_source_tag(task, as_http_raw_request_async);
	req->head = g_strdup(head);
	req->body = g_bytes_ref(body);
	req->limiter_a = limiter_a != NULL ? g_object_ref(limiter_a) : NULL;
	req->limiter_b = limiter_b != NULL ? g_object_ref(limiter_b) : NULL;
	req->reply_max = reply_max;
	req->progress_func = progress_func;
	req->progress_data = progress_data;
	req->reply = g_byte_array_new();
	g_task_set_task_data(task, req, (GDestroyNotify)as_http_raw_request_free);
	g_socket_client_connect_to_host_async(client, host_port, 80, cancellable,
					      as_http_raw_request_connect_cb, task);
}

/**
 * as_http_raw_request_finish:
 * @status: (out): the final status code
 * @reason: (out) (transfer full): its reason phrase
 *
 * Returns: (transfer full): the reply body, or %NULL with @error set
 **/
GBytes *
as_http_raw_request_finish(GAsyncResult *res, guint *status, gchar **reason, GError **error)
{
	GTask *task = G_TASK(res);
	AsHttpRawRequest *req = g_task_get_task_data(task);
	GBytes *body = g_task_propagate_pointer(task, error);

	if (body == NULL)
		return NULL;
	*status = req->status;
	*reason = g_strdup(req->reason);
	return body;
}
