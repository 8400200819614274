/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <string.h>

#include "as-error.h"
#include "as-http-raw-request.h"

/* the parsers over buffers, then whole requests against a scripted server on 127.0.0.1 */

#define AS_TEST_MIB (1024 * 1024)

static void
as_test_http_raw_head(void)
{
	const gchar *ok = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
			  "Content-Length: 2\r\nConnection: close\r\n\r\n{}";
	g_autoptr(GError) error = NULL;
	g_autofree gchar *reason = NULL;
	AsHttpRawFraming framing = AS_HTTP_RAW_FRAMING_NONE;
	guint64 length = 0;
	gsize head_len = 0;
	guint status = 0;

	/* not all there yet */
	g_assert_true(as_http_raw_parse_head(ok, 20, &head_len, &status, &reason, &framing, &length,
					     &error));
	g_assert_no_error(error);
	g_assert_cmpuint(head_len, ==, 0);

	g_assert_true(as_http_raw_parse_head(ok, strlen(ok), &head_len, &status, &reason, &framing,
					     &length, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(head_len, ==, strlen(ok) - 2);
	g_assert_cmpuint(status, ==, 200);
	g_assert_cmpstr(reason, ==, "OK");
	g_assert_cmpint(framing, ==, AS_HTTP_RAW_FRAMING_LENGTH);
	g_assert_cmpuint(length, ==, 2);
	g_clear_pointer(&reason, g_free);

	{
		const gchar *r = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
		g_assert_true(as_http_raw_parse_head(r, strlen(r), &head_len, &status, &reason,
						     &framing, &length, &error));
		g_assert_cmpint(framing, ==, AS_HTTP_RAW_FRAMING_CHUNKED);
		g_clear_pointer(&reason, g_free);
	}
	{
		const gchar *r = "HTTP/1.0 404 Not Found\r\nServer: x\r\n\r\n";
		g_assert_true(as_http_raw_parse_head(r, strlen(r), &head_len, &status, &reason,
						     &framing, &length, &error));
		g_assert_cmpuint(status, ==, 404);
		g_assert_cmpstr(reason, ==, "Not Found");
		g_assert_cmpint(framing, ==, AS_HTTP_RAW_FRAMING_CLOSE);
		g_clear_pointer(&reason, g_free);
	}
	{
		const gchar *r = "HTTP/1.1 204 No Content\r\n\r\n";
		g_assert_true(as_http_raw_parse_head(r, strlen(r), &head_len, &status, &reason,
						     &framing, &length, &error));
		g_assert_cmpint(framing, ==, AS_HTTP_RAW_FRAMING_NONE);
		g_clear_pointer(&reason, g_free);
	}

	/* refused */
	{
		const gchar *bad[] = {
			"HTTP/2 200 OK\r\n\r\n",
			"HTTP/1.1 2x0 OK\r\n\r\n",
			"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
			"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
			"HTTP/1.1 200 OK\r\nX: a\r\n folded\r\n\r\n",
			"HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
		};
		for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
			g_assert_false(as_http_raw_parse_head(bad[i], strlen(bad[i]), &head_len,
							      &status, &reason, &framing, &length,
							      &error));
			g_assert_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA);
			g_clear_error(&error);
		}
	}
	{
		const gchar *r = "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n";
		g_assert_false(as_http_raw_parse_head(r, strlen(r), &head_len, &status, &reason,
						      &framing, &length, &error));
		g_assert_error(error, AS_ERROR, AS_ERROR_NOT_SUPPORTED);
		g_clear_error(&error);
	}
}

static void
as_test_http_raw_dechunk(void)
{
	const gchar *body = "4;ext=1\r\nabcd\r\n3\r\nefg\r\n0\r\nTrailer: x\r\n\r\n";
	g_autoptr(GByteArray) out = g_byte_array_new();
	g_autoptr(GError) error = NULL;
	gsize used = 0;

	/* every prefix is incomplete, never an error */
	for (gsize n = 0; n < strlen(body); n++) {
		g_assert_cmpint(
			as_http_raw_dechunk((const guint8 *)body, n, out, 1024, &used, &error), ==,
			0);
		g_assert_no_error(error);
	}
	g_assert_cmpint(
		as_http_raw_dechunk((const guint8 *)body, strlen(body), out, 1024, &used, &error),
		==, 1);
	g_assert_cmpuint(used, ==, strlen(body));
	g_assert_cmpmem(out->data, out->len, "abcdefg", 7);

	g_assert_cmpint(as_http_raw_dechunk((const guint8 *)"zz\r\n", 4, out, 1024, &used, &error),
			==, -1);
	g_assert_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA);
	g_clear_error(&error);
	g_assert_cmpint(
		as_http_raw_dechunk((const guint8 *)"4\r\nabcdXY", 9, out, 1024, &used, &error), ==,
		-1);
	g_assert_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA);
	g_clear_error(&error);
	g_assert_cmpint(as_http_raw_dechunk((const guint8 *)"800\r\n", 5, out, 1024, &used, &error),
			==, -1);
	g_assert_error(error, AS_ERROR, AS_ERROR_TOO_LARGE);
	g_clear_error(&error);
}

static void
as_test_http_raw_block_size(void)
{
	g_autoptr(AsRateLimiter) a = as_rate_limiter_new(0, 0);
	g_autoptr(AsRateLimiter) b = as_rate_limiter_new(0, 0);

	g_assert_cmpuint(as_http_raw_block_size(NULL, NULL), ==, AS_HTTP_RAW_BLOCK_SIZE);
	g_assert_cmpuint(as_http_raw_block_size(a, b), ==, AS_HTTP_RAW_BLOCK_SIZE);
	as_rate_limiter_set_rate(b, 1600 * 1024, g_get_monotonic_time());
	g_assert_cmpuint(as_http_raw_block_size(a, b), ==, 100 * 1024);
	as_rate_limiter_set_rate(a, 1024, g_get_monotonic_time());
	g_assert_cmpuint(as_http_raw_block_size(a, b), ==, AS_HTTP_RAW_MIN_BLOCK_SIZE);
}

/* -------- a scripted server: one connection, one reply -------- */

typedef enum {
	AS_TEST_SERVER_AFTER_BODY, /* reads the whole request, then replies */
	AS_TEST_SERVER_EARLY,	   /* replies after the head, then drains the body */
} AsTestServerMode;

typedef struct {
	GSocketListener *listener;
	guint16 port;
	GThread *thread;
	const gchar *reply;
	AsTestServerMode mode;
	gchar *request_head; /* what the server got */
	gsize body_len;
	gboolean body_ok; /* the body matched the pattern */
} AsTestServer;

static guint8
as_test_pattern(gsize i)
{
	return (guint8)((i * 7) ^ (i >> 10));
}

static gpointer
as_test_server_thread(gpointer user_data)
{
	AsTestServer *srv = user_data;
	g_autoptr(GSocketConnection) conn =
		g_socket_listener_accept(srv->listener, NULL, NULL, NULL);
	GInputStream *in = g_io_stream_get_input_stream(G_IO_STREAM(conn));
	GOutputStream *out = g_io_stream_get_output_stream(G_IO_STREAM(conn));
	g_autoptr(GByteArray) buf = g_byte_array_new();
	g_autofree guint8 *tmp = g_malloc(65536);
	gsize head_len = 0;
	guint64 length = 0;
	gsize pos = 0;

	g_assert_nonnull(conn);
	while (head_len == 0) {
		gssize n = g_input_stream_read(in, tmp, 65536, NULL, NULL);
		const gchar *end;
		g_assert_cmpint(n, >, 0);
		g_byte_array_append(buf, tmp, (guint)n);
		end = g_strstr_len((const gchar *)buf->data, buf->len, "\r\n\r\n");
		if (end != NULL)
			head_len = (gsize)(end - (const gchar *)buf->data) + 4;
	}
	srv->request_head = g_strndup((const gchar *)buf->data, head_len);
	{
		const gchar *cl = strstr(srv->request_head, "\r\nContent-Length: ");
		g_assert_nonnull(cl);
		length = g_ascii_strtoull(cl + 18, NULL, 10);
	}
	if (srv->mode == AS_TEST_SERVER_EARLY) {
		g_assert_true(g_output_stream_write_all(out, srv->reply, strlen(srv->reply), NULL,
							NULL, NULL));
		g_socket_shutdown(g_socket_connection_get_socket(conn), FALSE, TRUE, NULL);
	}
	srv->body_ok = TRUE;
	for (gsize i = head_len; i < buf->len; i++, pos++)
		srv->body_ok = srv->body_ok && buf->data[i] == as_test_pattern(pos);
	while (pos < length) {
		gssize n = g_input_stream_read(in, tmp, 65536, NULL, NULL);
		if (n <= 0)
			break;
		for (gssize i = 0; i < n; i++, pos++)
			srv->body_ok = srv->body_ok && tmp[i] == as_test_pattern(pos);
	}
	srv->body_len = pos;
	if (srv->mode == AS_TEST_SERVER_AFTER_BODY)
		g_output_stream_write_all(out, srv->reply, strlen(srv->reply), NULL, NULL, NULL);
	g_io_stream_close(G_IO_STREAM(conn), NULL, NULL);
	return NULL;
}

static AsTestServer *
as_test_server_new(const gchar *reply, AsTestServerMode mode)
{
	AsTestServer *srv = g_new0(AsTestServer, 1);
	g_autoptr(GInetAddress) lo = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
	g_autoptr(GSocketAddress) addr = g_inet_socket_address_new(lo, 0);
	g_autoptr(GSocketAddress) bound = NULL;
	g_autoptr(GError) error = NULL;

	srv->listener = g_socket_listener_new();
	g_socket_listener_add_address(srv->listener, addr, G_SOCKET_TYPE_STREAM,
				      G_SOCKET_PROTOCOL_TCP, NULL, &bound, &error);
	g_assert_no_error(error);
	srv->port = g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(bound));
	srv->reply = reply;
	srv->mode = mode;
	srv->thread = g_thread_new("as-test-server", as_test_server_thread, srv);
	return srv;
}

static void
as_test_server_free(AsTestServer *srv)
{
	g_thread_join(srv->thread);
	g_socket_listener_close(srv->listener);
	g_object_unref(srv->listener);
	g_free(srv->request_head);
	g_free(srv);
}

typedef struct {
	GMainLoop *loop;
	GBytes *reply;
	guint status;
	gchar *reason;
	GError *error;
	guint64 progress;
	guint n_progress;
} AsTestResult;

static void
as_test_progress_cb(guint64 bytes_sent, gpointer user_data)
{
	AsTestResult *r = user_data;
	g_assert_cmpuint(bytes_sent, >, r->progress);
	r->progress = bytes_sent;
	r->n_progress++;
}

static void
as_test_done_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	AsTestResult *r = user_data;
	r->reply = as_http_raw_request_finish(res, &r->status, &r->reason, &r->error);
	g_main_loop_quit(r->loop);
}

static GBytes *
as_test_body(gsize len)
{
	guint8 *data = g_malloc(len);
	for (gsize i = 0; i < len; i++)
		data[i] = as_test_pattern(i);
	return g_bytes_new_take(data, len);
}

static void
as_test_run(AsTestServer *srv,
	    GBytes *body,
	    AsRateLimiter *limiter,
	    GCancellable *cancellable,
	    AsTestResult *r)
{
	g_autoptr(GSocketClient) client = g_socket_client_new();
	g_autofree gchar *host_port = g_strdup_printf("127.0.0.1:%u", srv->port);
	g_autofree gchar *head =
		g_strdup_printf("POST /upload/chunk?task_id=t HTTP/1.1\r\nHost: "
				"%s\r\nContent-Length: %" G_GSIZE_FORMAT "\r\nX-Test: yes\r\n\r\n",
				host_port, g_bytes_get_size(body));

	g_socket_client_set_timeout(client, 10);
	r->loop = g_main_loop_new(NULL, FALSE);
	as_http_raw_request_async(client, host_port, head, body, limiter, NULL, 4096,
				  as_test_progress_cb, r, cancellable, as_test_done_cb, r);
	g_main_loop_run(r->loop);
	g_main_loop_unref(r->loop);
}

static void
as_test_result_clear(AsTestResult *r)
{
	g_clear_pointer(&r->reply, g_bytes_unref);
	g_clear_pointer(&r->reason, g_free);
	g_clear_error(&r->error);
}

static void
as_test_http_raw_request_length(void)
{
	AsTestServer *srv = as_test_server_new(
		"HTTP/1.1 200 OK\r\nContent-Length: 11\r\nConnection: close\r\n\r\n{\"ok\":true}",
		AS_TEST_SERVER_AFTER_BODY);
	g_autoptr(GBytes) body = as_test_body(3 * AS_TEST_MIB + 17);
	AsTestResult r = {0};

	as_test_run(srv, body, NULL, NULL, &r);
	g_assert_no_error(r.error);
	g_assert_cmpuint(r.status, ==, 200);
	g_assert_cmpmem(g_bytes_get_data(r.reply, NULL), g_bytes_get_size(r.reply), "{\"ok\":true}",
			11);
	g_assert_cmpuint(r.progress, ==, g_bytes_get_size(body));
	g_assert_cmpuint(r.n_progress, ==, 4);
	as_test_server_free(srv);
	as_test_result_clear(&r);
}

static void
as_test_http_raw_request_chunked(void)
{
	AsTestServer *srv =
		as_test_server_new("HTTP/1.1 100 Continue\r\n\r\n"
				   "HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n"
				   "\r\n3\r\n{\"a\r\n4\r\n\":1}\r\n0\r\n\r\n",
				   AS_TEST_SERVER_AFTER_BODY);
	g_autoptr(GBytes) body = as_test_body(AS_TEST_MIB);
	AsTestResult r = {0};

	as_test_run(srv, body, NULL, NULL, &r);
	g_assert_no_error(r.error);
	g_assert_cmpuint(r.status, ==, 201);
	g_assert_cmpstr(r.reason, ==, "Created");
	g_assert_cmpmem(g_bytes_get_data(r.reply, NULL), g_bytes_get_size(r.reply), "{\"a\":1}", 7);
	g_assert_true(srv->body_ok);
	g_assert_cmpuint(srv->body_len, ==, AS_TEST_MIB);
	g_assert_nonnull(strstr(srv->request_head, "\r\nX-Test: yes\r\n"));
	g_assert_true(g_str_has_prefix(srv->request_head, "POST /upload/chunk?task_id=t HTTP/1.1"));
	as_test_server_free(srv);
	as_test_result_clear(&r);
}

static void
as_test_http_raw_request_close_delimited(void)
{
	AsTestServer *srv = as_test_server_new("HTTP/1.0 507 Insufficient Storage\r\n\r\n{\"e\":1}",
					       AS_TEST_SERVER_AFTER_BODY);
	g_autoptr(GBytes) body = as_test_body(AS_TEST_MIB);
	AsTestResult r = {0};

	as_test_run(srv, body, NULL, NULL, &r);
	g_assert_no_error(r.error);
	g_assert_cmpuint(r.status, ==, 507);
	g_assert_cmpmem(g_bytes_get_data(r.reply, NULL), g_bytes_get_size(r.reply), "{\"e\":1}", 7);
	as_test_server_free(srv);
	as_test_result_clear(&r);
}

/* a receiver that refuses after the head still has its reply read */
static void
as_test_http_raw_request_early(void)
{
	AsTestServer *srv = as_test_server_new(
		"HTTP/1.1 401 Unauthorized\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
		AS_TEST_SERVER_EARLY);
	g_autoptr(GBytes) body = as_test_body(4 * AS_TEST_MIB);
	AsTestResult r = {0};

	as_test_run(srv, body, NULL, NULL, &r);
	g_assert_no_error(r.error);
	g_assert_cmpuint(r.status, ==, 401);
	as_test_server_free(srv);
	as_test_result_clear(&r);
}

static void
as_test_http_raw_request_bad_replies(void)
{
	struct {
		const gchar *reply;
		GQuark domain;
		gint code;
	} cases[] = {
		{"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", AS_ERROR,
		 AS_ERROR_NOT_SUPPORTED},
		{"SSH-2.0-OpenSSH\r\n\r\n", G_IO_ERROR, G_IO_ERROR_INVALID_DATA},
		{"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{}", G_IO_ERROR,
		 G_IO_ERROR_CONNECTION_CLOSED},
		{"", G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED},
		{"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n", AS_ERROR, AS_ERROR_TOO_LARGE},
	};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		AsTestServer *srv = as_test_server_new(cases[i].reply, AS_TEST_SERVER_AFTER_BODY);
		g_autoptr(GBytes) body = as_test_body(AS_TEST_MIB);
		AsTestResult r = {0};

		as_test_run(srv, body, NULL, NULL, &r);
		g_assert_error(r.error, cases[i].domain, cases[i].code);
		as_test_server_free(srv);
		as_test_result_clear(&r);
	}
}

static gboolean
as_test_cancel_cb(gpointer user_data)
{
	g_cancellable_cancel(G_CANCELLABLE(user_data));
	return G_SOURCE_REMOVE;
}

/* a body held back by the rate limiter stops at once when cancelled */
static void
as_test_http_raw_request_cancel(void)
{
	AsTestServer *srv = as_test_server_new("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}",
					       AS_TEST_SERVER_AFTER_BODY);
	g_autoptr(GBytes) body = as_test_body(AS_TEST_MIB);
	g_autoptr(AsRateLimiter) limiter = as_rate_limiter_new(0, 0);
	g_autoptr(GCancellable) cancellable = g_cancellable_new();
	gint64 start = g_get_monotonic_time();
	AsTestResult r = {0};

	as_rate_limiter_set_rate(limiter, 128 * 1024, g_get_monotonic_time());
	g_timeout_add(300, as_test_cancel_cb, cancellable);
	as_test_run(srv, body, limiter, cancellable, &r);
	g_assert_error(r.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
	g_assert_cmpint(g_get_monotonic_time() - start, <, 2 * G_USEC_PER_SEC);
	g_assert_cmpuint(r.progress, <, AS_TEST_MIB);
	g_assert_cmpuint(r.progress, >, 0);
	/* the server sees the connection end short */
	as_test_server_free(srv);
	as_test_result_clear(&r);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/aerosync/http-raw/head", as_test_http_raw_head);
	g_test_add_func("/aerosync/http-raw/dechunk", as_test_http_raw_dechunk);
	g_test_add_func("/aerosync/http-raw/block-size", as_test_http_raw_block_size);
	g_test_add_func("/aerosync/http-raw/request-length", as_test_http_raw_request_length);
	g_test_add_func("/aerosync/http-raw/request-chunked", as_test_http_raw_request_chunked);
	g_test_add_func("/aerosync/http-raw/request-close-delimited",
			as_test_http_raw_request_close_delimited);
	g_test_add_func("/aerosync/http-raw/request-early", as_test_http_raw_request_early);
	g_test_add_func("/aerosync/http-raw/request-bad-replies",
			as_test_http_raw_request_bad_replies);
	g_test_add_func("/aerosync/http-raw/request-cancel", as_test_http_raw_request_cancel);
	return g_test_run();
}
