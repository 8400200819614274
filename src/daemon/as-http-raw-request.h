/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>

#include "as-rate-limit.h"

G_BEGIN_DECLS

/* the status line and headers of a reply are refused beyond this */
#define AS_HTTP_RAW_HEAD_MAX (64 * 1024)
/* a request body goes to the socket in blocks of at most this, between rate-limit checks and
 * progress reports */
#define AS_HTTP_RAW_BLOCK_SIZE (1024 * 1024)
/* and at least this, however low the rate limit (libsoup's splice block) */
#define AS_HTTP_RAW_MIN_BLOCK_SIZE (8 * 1024)
/* under a rate limit a block is this fraction of a second of traffic */
#define AS_HTTP_RAW_BLOCKS_PER_S 16
/* a block waiting for the rate limiters looks again at least this often */
#define AS_HTTP_RAW_RATE_RECHECK_MS 250
/* how much of a reply is read at once */
#define AS_HTTP_RAW_READ_SIZE (16 * 1024)

/* how the body of a reply ends (RFC 9112 §6.3) */
typedef enum {
	AS_HTTP_RAW_FRAMING_NONE,    /* 1xx, 204, 304: no body */
	AS_HTTP_RAW_FRAMING_LENGTH,  /* Content-Length */
	AS_HTTP_RAW_FRAMING_CHUNKED, /* Transfer-Encoding: chunked */
	AS_HTTP_RAW_FRAMING_CLOSE,   /* neither: the body ends when the connection does */
} AsHttpRawFraming;

gboolean as_http_raw_parse_head(const gchar *data,
				gsize len,
				gsize *head_len,
				guint *status,
				gchar **reason,
				AsHttpRawFraming *framing,
				guint64 *content_length,
				GError **error);
gint as_http_raw_dechunk(
	const guint8 *data, gsize len, GByteArray *out, gsize max, gsize *used, GError **error);
gsize as_http_raw_block_size(AsRateLimiter *limiter_a, AsRateLimiter *limiter_b);

typedef void (*AsHttpRawProgressFunc)(guint64 bytes_sent, gpointer user_data);

void as_http_raw_request_async(GSocketClient *client,
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
			       gpointer user_data);
GBytes *
as_http_raw_request_finish(GAsyncResult *res, guint *status, gchar **reason, GError **error);

G_END_DECLS
