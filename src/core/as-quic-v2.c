/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "AsQuicV2"

#include "config.h"

#include <string.h>

#include "as-error.h"
#include "as-quic-v2.h"
#include "as-sha256.h"

/* fixed parts of the payloads */
#define AS_QUIC_V2_FILE_FIXED_SIZE    (1 + 8 + 8)
#define AS_QUIC_V2_CHUNK_PAYLOAD_SIZE (4 + 8 + 8)
#define AS_QUIC_V2_CHUNK_OK_SIZE      (4 + 4)
#define AS_QUIC_V2_EVENT_FIXED_SIZE   (1 + 8 + 8)
#define AS_QUIC_V2_STRING_HEADER_SIZE 2
#define AS_QUIC_V2_MAX_FRAME_TYPE     AS_QUIC_V2_MSG_EVENT

/**
 * as_quic_v2_msg_clear:
 * @msg: a #AsQuicV2Msg
 *
 * Frees what @msg holds and zeroes it.
 **/
void
as_quic_v2_msg_clear(AsQuicV2Msg *msg)
{
	g_return_if_fail(msg != NULL);
	g_free(msg->token);
	g_free(msg->sha256);
	g_free(msg->task_id);
	g_free(msg->path);
	g_free(msg->text);
	if (msg->bitmap != NULL)
		g_bytes_unref(msg->bitmap);
	memset(msg, 0, sizeof(*msg));
}

/* ---- reading ---- */

typedef struct {
	const guint8 *p;
	gsize left;
} AsQuicV2Reader;

static gboolean
as_quic_v2_read_bytes(AsQuicV2Reader *r, gsize n, const guint8 **out)
{
	if (r->left < n)
		return FALSE;
	*out = r->p;
	r->p += n;
	r->left -= n;
	return TRUE;
}

static gboolean
as_quic_v2_read_u8(AsQuicV2Reader *r, guint8 *v)
{
	const guint8 *b;
	if (!as_quic_v2_read_bytes(r, 1, &b))
		return FALSE;
	*v = b[0];
	return TRUE;
}

static gboolean
as_quic_v2_read_u16(AsQuicV2Reader *r, guint16 *v)
{
	const guint8 *b;
	if (!as_quic_v2_read_bytes(r, 2, &b))
		return FALSE;
	*v = (guint16)((b[0] << 8) | b[1]);
	return TRUE;
}

static gboolean
as_quic_v2_read_u32(AsQuicV2Reader *r, guint32 *v)
{
	const guint8 *b;
	if (!as_quic_v2_read_bytes(r, 4, &b))
		return FALSE;
	*v = ((guint32)b[0] << 24) | ((guint32)b[1] << 16) | ((guint32)b[2] << 8) | b[3];
	return TRUE;
}

static gboolean
as_quic_v2_read_u64(AsQuicV2Reader *r, guint64 *v)
{
	guint32 hi, lo;
	if (!as_quic_v2_read_u32(r, &hi) || !as_quic_v2_read_u32(r, &lo))
		return FALSE;
	*v = ((guint64)hi << 32) | lo;
	return TRUE;
}

/* a string: UTF-8, no NUL or other control characters, at most @max bytes; empty gives NULL
 * unless @required */
static gboolean
as_quic_v2_read_string(AsQuicV2Reader *r,
		       const gchar *what,
		       gsize max,
		       gboolean required,
		       gchar **out,
		       GError **error)
{
	guint16 n = 0;
	const guint8 *b;

	if (!as_quic_v2_read_u16(r, &n) || !as_quic_v2_read_bytes(r, n, &b)) {
		g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT, "truncated %s", what);
		return FALSE;
	}
	if (n > max) {
		g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
			    "%s longer than %" G_GSIZE_FORMAT " bytes", what, max);
		return FALSE;
	}
	if (n == 0) {
		if (required) {
			g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT, "empty %s", what);
			return FALSE;
		}
		*out = NULL;
		return TRUE;
	}
	if (!g_utf8_validate((const gchar *)b, n, NULL)) {
		g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT, "%s is not UTF-8", what);
		return FALSE;
	}
	for (guint16 i = 0; i < n; i++) {
		if (b[i] < 0x20 || b[i] == 0x7f) {
			g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
				    "control character in %s", what);
			return FALSE;
		}
	}
	*out = g_strndup((const gchar *)b, n);
	return TRUE;
}

static gchar *
as_quic_v2_digest_to_hex(const guint8 *digest)
{
	static const gchar hex[] = "0123456789abcdef";
	gchar *out = g_malloc(AS_SHA256_HEX_LEN + 1);

	for (guint i = 0; i < AS_QUIC_V2_DIGEST_SIZE; i++) {
		out[2 * i] = hex[digest[i] >> 4];
		out[2 * i + 1] = hex[digest[i] & 0xf];
	}
	out[AS_SHA256_HEX_LEN] = '\0';
	return out;
}

static gboolean
as_quic_v2_read_digest(AsQuicV2Reader *r, gchar **out, GError **error)
{
	const guint8 *b;
	if (!as_quic_v2_read_bytes(r, AS_QUIC_V2_DIGEST_SIZE, &b)) {
		g_set_error_literal(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
				    "truncated SHA-256");
		return FALSE;
	}
	*out = as_quic_v2_digest_to_hex(b);
	return TRUE;
}

/**
 * as_quic_v2_task_id_is_valid:
 *
 * Returns: %TRUE for 1 to %AS_QUIC_V2_TASK_ID_MAX characters of `[A-Za-z0-9_-]`
 **/
gboolean
as_quic_v2_task_id_is_valid(const gchar *task_id)
{
	gsize n = 0;

	if (task_id == NULL)
		return FALSE;
	for (const gchar *p = task_id; *p != '\0'; p++, n++) {
		if (!g_ascii_isalnum(*p) && *p != '_' && *p != '-')
			return FALSE;
	}
	return n > 0 && n <= AS_QUIC_V2_TASK_ID_MAX;
}

/**
 * as_quic_v2_file_check:
 * @size: the file size
 * @chunk_size: the chunk size
 * @total_chunks: (out) (optional): max(1, ceil(size / chunk_size))
 *
 * Checks the sizes a FILE frame announces.
 *
 * Returns: %TRUE if a receiver can take them
 **/
gboolean
as_quic_v2_file_check(guint64 size, guint64 chunk_size, guint32 *total_chunks, GError **error)
{
	guint64 n;

	if (chunk_size < AS_QUIC_V2_MIN_CHUNK_SIZE) {
		g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
			    "chunk size %" G_GUINT64_FORMAT " below the minimum of %u", chunk_size,
			    (guint)AS_QUIC_V2_MIN_CHUNK_SIZE);
		return FALSE;
	}
	n = size / chunk_size + (size % chunk_size != 0 ? 1 : 0);
	if (n == 0)
		n = 1;
	if (n > AS_QUIC_V2_MAX_CHUNKS) {
		g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
			    "%" G_GUINT64_FORMAT " chunks, more than %u", n,
			    (guint)AS_QUIC_V2_MAX_CHUNKS);
		return FALSE;
	}
	if (total_chunks != NULL)
		*total_chunks = (guint32)n;
	return TRUE;
}

/**
 * as_quic_v2_chunk_range:
 *
 * Where chunk @index of a file lies; the sizes must have passed as_quic_v2_file_check().
 *
 * Returns: %FALSE if @index is past the last chunk
 **/
gboolean
as_quic_v2_chunk_range(
	guint64 size, guint64 chunk_size, guint32 index, guint64 *offset, guint64 *length)
{
	guint32 total = 0;

	if (!as_quic_v2_file_check(size, chunk_size, &total, NULL) || index >= total)
		return FALSE;
	*offset = (guint64)index * chunk_size;
	*length = MIN(chunk_size, size - *offset);
	return TRUE;
}

/**
 * as_quic_v2_bitmap_get:
 *
 * Returns: whether chunk @index is marked in a HAVE bitmap (%FALSE past its end)
 **/
gboolean
as_quic_v2_bitmap_get(GBytes *bitmap, guint32 index)
{
	gsize len = 0;
	const guint8 *b;

	if (bitmap == NULL)
		return FALSE;
	b = g_bytes_get_data(bitmap, &len);
	if (index / 8 >= len)
		return FALSE;
	return (b[index / 8] >> (index & 7)) & 1;
}

void
as_quic_v2_bitmap_set(guint8 *bitmap, guint32 index)
{
	bitmap[index / 8] |= (guint8)(1u << (index & 7));
}

static gboolean
as_quic_v2_decode_payload(AsQuicV2Reader *r, AsQuicV2Msg *msg, GError **error)
{
	switch (msg->type) {
	case AS_QUIC_V2_MSG_HELLO:
		return as_quic_v2_read_string(r, "token", AS_QUIC_V2_MAX_TOKEN_LEN, FALSE,
					      &msg->token, error);
	case AS_QUIC_V2_MSG_WELCOME:
		return TRUE;
	case AS_QUIC_V2_MSG_FILE: {
		guint8 flags = 0;
		if (!as_quic_v2_read_u8(r, &flags) || !as_quic_v2_read_u64(r, &msg->size) ||
		    !as_quic_v2_read_u64(r, &msg->chunk_size)) {
			g_set_error_literal(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
					    "truncated FILE");
			return FALSE;
		}
		if ((flags & ~AS_QUIC_V2_FILE_FLAG_SHA256) != 0) {
			g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
				    "unknown FILE flags 0x%02x", flags);
			return FALSE;
		}
		if ((flags & AS_QUIC_V2_FILE_FLAG_SHA256) &&
		    !as_quic_v2_read_digest(r, &msg->sha256, error))
			return FALSE;
		if (!as_quic_v2_read_string(r, "task id", AS_QUIC_V2_TASK_ID_MAX, TRUE,
					    &msg->task_id, error) ||
		    !as_quic_v2_read_string(r, "path", AS_QUIC_V2_MAX_PATH_LEN, TRUE, &msg->path,
					    error))
			return FALSE;
		if (!as_quic_v2_task_id_is_valid(msg->task_id)) {
			g_set_error_literal(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
					    "task id must be 1 to 64 characters of [A-Za-z0-9_-]");
			return FALSE;
		}
		return as_quic_v2_file_check(msg->size, msg->chunk_size, NULL, error);
	}
	case AS_QUIC_V2_MSG_HAVE: {
		const guint8 *b;
		gsize n;
		if (!as_quic_v2_read_u32(r, &msg->total_chunks) || msg->total_chunks == 0 ||
		    msg->total_chunks > AS_QUIC_V2_MAX_CHUNKS) {
			g_set_error_literal(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
					    "HAVE with a bad chunk count");
			return FALSE;
		}
		n = ((gsize)msg->total_chunks + 7) / 8;
		if (!as_quic_v2_read_bytes(r, n, &b)) {
			g_set_error_literal(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
					    "truncated HAVE bitmap");
			return FALSE;
		}
		msg->bitmap = g_bytes_new(b, n);
		return TRUE;
	}
	case AS_QUIC_V2_MSG_CHUNK:
		if (!as_quic_v2_read_u32(r, &msg->index) || !as_quic_v2_read_u64(r, &msg->offset) ||
		    !as_quic_v2_read_u64(r, &msg->length)) {
			g_set_error_literal(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
					    "truncated CHUNK");
			return FALSE;
		}
		return TRUE;
	case AS_QUIC_V2_MSG_CHUNK_OK:
		if (!as_quic_v2_read_u32(r, &msg->index) ||
		    !as_quic_v2_read_u32(r, &msg->chunks_done)) {
			g_set_error_literal(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
					    "truncated CHUNK_OK");
			return FALSE;
		}
		return TRUE;
	case AS_QUIC_V2_MSG_DONE:
		if (!as_quic_v2_read_u64(r, &msg->size)) {
			g_set_error_literal(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
					    "truncated DONE");
			return FALSE;
		}
		return as_quic_v2_read_digest(r, &msg->sha256, error) &&
		       as_quic_v2_read_string(r, "saved path", AS_QUIC_V2_MAX_PATH_LEN, TRUE,
					      &msg->path, error);
	case AS_QUIC_V2_MSG_ERROR:
		if (!as_quic_v2_read_u16(r, &msg->code)) {
			g_set_error_literal(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
					    "truncated ERROR");
			return FALSE;
		}
		return as_quic_v2_read_string(r, "error message", AS_QUIC_V2_MAX_TEXT_LEN, FALSE,
					      &msg->text, error);
	case AS_QUIC_V2_MSG_EVENT:
		if (!as_quic_v2_read_u8(r, &msg->kind) ||
		    !as_quic_v2_read_u64(r, &msg->bytes_done) ||
		    !as_quic_v2_read_u64(r, &msg->size)) {
			g_set_error_literal(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
					    "truncated EVENT");
			return FALSE;
		}
		return as_quic_v2_read_string(r, "task id", AS_QUIC_V2_TASK_ID_MAX, TRUE,
					      &msg->task_id, error) &&
		       as_quic_v2_read_string(r, "event detail", AS_QUIC_V2_MAX_TEXT_LEN, FALSE,
					      &msg->text, error);
	}
	g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT, "unknown frame type 0x%02x",
		    msg->type);
	return FALSE;
}

/**
 * as_quic_v2_decode:
 * @buf: bytes received so far on a stream, starting at a frame boundary
 * @len: their number
 * @max_payload: the largest payload accepted (%AS_QUIC_V2_MAX_CLIENT_PAYLOAD on a receiver)
 * @msg: (out caller-allocates): the frame, cleared first; clear it again after use
 * @frame_len: (out): on %AS_QUIC_FRAMING_RESULT_COMPLETE, the bytes the frame took
 * @error: (nullable): why the frame is malformed
 *
 * Decodes the frame at the start of @buf. It decides from the 5-byte frame header alone
 * whether the frame can ever be accepted, so a receiver never buffers more than
 * %AS_QUIC_V2_FRAME_HEADER_SIZE + @max_payload bytes for one.
 *
 * Returns: %AS_QUIC_FRAMING_RESULT_NEED_MORE, _COMPLETE or _ERROR
 **/
AsQuicFramingResult
as_quic_v2_decode(const guint8 *buf,
		  gsize len,
		  gsize max_payload,
		  AsQuicV2Msg *msg,
		  gsize *frame_len,
		  GError **error)
{
	AsQuicV2Reader r;
	guint32 payload_len;
	g_autoptr(GError) error_local = NULL;

	g_return_val_if_fail(buf != NULL || len == 0, AS_QUIC_FRAMING_RESULT_ERROR);
	g_return_val_if_fail(msg != NULL && frame_len != NULL, AS_QUIC_FRAMING_RESULT_ERROR);

	memset(msg, 0, sizeof(*msg));
	if (len >= 1 && (buf[0] == 0 || buf[0] > AS_QUIC_V2_MAX_FRAME_TYPE)) {
		g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT, "unknown frame type 0x%02x",
			    buf[0]);
		return AS_QUIC_FRAMING_RESULT_ERROR;
	}
	if (len < AS_QUIC_V2_FRAME_HEADER_SIZE)
		return AS_QUIC_FRAMING_RESULT_NEED_MORE;
	payload_len =
		((guint32)buf[1] << 24) | ((guint32)buf[2] << 16) | ((guint32)buf[3] << 8) | buf[4];
	if (payload_len > max_payload) {
		g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
			    "frame of %u bytes, more than %" G_GSIZE_FORMAT, payload_len,
			    max_payload);
		return AS_QUIC_FRAMING_RESULT_ERROR;
	}
	if (len - AS_QUIC_V2_FRAME_HEADER_SIZE < payload_len)
		return AS_QUIC_FRAMING_RESULT_NEED_MORE;

	msg->type = buf[0];
	r.p = buf + AS_QUIC_V2_FRAME_HEADER_SIZE;
	r.left = payload_len;
	if (!as_quic_v2_decode_payload(&r, msg, &error_local)) {
		as_quic_v2_msg_clear(msg);
		g_propagate_error(error, g_steal_pointer(&error_local));
		return AS_QUIC_FRAMING_RESULT_ERROR;
	}
	if (r.left != 0) {
		as_quic_v2_msg_clear(msg);
		g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
			    "%" G_GSIZE_FORMAT " stray bytes after a frame of type 0x%02x", r.left,
			    buf[0]);
		return AS_QUIC_FRAMING_RESULT_ERROR;
	}
	*frame_len = AS_QUIC_V2_FRAME_HEADER_SIZE + payload_len;
	return AS_QUIC_FRAMING_RESULT_COMPLETE;
}

/* ---- writing ---- */

static void
as_quic_v2_put_u8(GByteArray *out, guint8 v)
{
	g_byte_array_append(out, &v, 1);
}

static void
as_quic_v2_put_u16(GByteArray *out, guint16 v)
{
	guint8 b[2] = {v >> 8, v & 0xff};
	g_byte_array_append(out, b, sizeof(b));
}

static void
as_quic_v2_put_u32(GByteArray *out, guint32 v)
{
	guint8 b[4] = {v >> 24, (v >> 16) & 0xff, (v >> 8) & 0xff, v & 0xff};
	g_byte_array_append(out, b, sizeof(b));
}

static void
as_quic_v2_put_u64(GByteArray *out, guint64 v)
{
	as_quic_v2_put_u32(out, (guint32)(v >> 32));
	as_quic_v2_put_u32(out, (guint32)v);
}

static gboolean
as_quic_v2_put_string(GByteArray *out,
		      const gchar *what,
		      const gchar *str,
		      gsize max,
		      gboolean truncate,
		      GError **error)
{
	gsize n = str != NULL ? strlen(str) : 0;

	if (n > max && truncate) {
		/* only free text is cut, on a character boundary */
		const gchar *end = g_utf8_find_prev_char(str, str + max + 1);
		n = end != NULL ? (gsize)(end - str) : 0;
	} else if (n > max) {
		g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
			    "%s longer than %" G_GSIZE_FORMAT " bytes", what, max);
		return FALSE;
	}
	if (n > 0 && !g_utf8_validate(str, (gssize)n, NULL)) {
		g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT, "%s is not UTF-8", what);
		return FALSE;
	}
	for (gsize i = 0; i < n; i++) {
		if ((guchar)str[i] < 0x20 || str[i] == 0x7f) {
			if (!truncate) {
				g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
					    "control character in %s", what);
				return FALSE;
			}
		}
	}
	as_quic_v2_put_u16(out, (guint16)n);
	if (truncate) {
		for (gsize i = 0; i < n; i++) {
			guint8 c = (guint8)str[i];
			if (c < 0x20 || c == 0x7f)
				c = ' ';
			g_byte_array_append(out, &c, 1);
		}
	} else {
		g_byte_array_append(out, (const guint8 *)str, (guint)n);
	}
	return TRUE;
}

static gboolean
as_quic_v2_put_digest(GByteArray *out, const gchar *hex, GError **error)
{
	guint8 digest[AS_QUIC_V2_DIGEST_SIZE];

	if (hex == NULL || !as_sha256_hex_is_valid(hex)) {
		g_set_error_literal(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
				    "SHA-256 must be 64 hex digits");
		return FALSE;
	}
	for (guint i = 0; i < AS_QUIC_V2_DIGEST_SIZE; i++)
		digest[i] = (guint8)((g_ascii_xdigit_value(hex[2 * i]) << 4) |
				     g_ascii_xdigit_value(hex[2 * i + 1]));
	g_byte_array_append(out, digest, sizeof(digest));
	return TRUE;
}

/**
 * as_quic_v2_encode:
 * @msg: the frame to write; the fields of its type are used
 * @error: (nullable): why it cannot be written (a string too long, a bad digest, ...)
 *
 * Returns: (transfer full): the frame, header included, or %NULL
 **/
GByteArray *
as_quic_v2_encode(const AsQuicV2Msg *msg, GError **error)
{
	g_autoptr(GByteArray) out = g_byte_array_new();
	gsize payload_len;
	gboolean ok = TRUE;

	g_return_val_if_fail(msg != NULL, NULL);

	as_quic_v2_put_u8(out, msg->type);
	as_quic_v2_put_u32(out, 0);
	switch (msg->type) {
	case AS_QUIC_V2_MSG_HELLO:
		ok = as_quic_v2_put_string(out, "token", msg->token, AS_QUIC_V2_MAX_TOKEN_LEN,
					   FALSE, error);
		break;
	case AS_QUIC_V2_MSG_WELCOME:
		break;
	case AS_QUIC_V2_MSG_FILE:
		if (!as_quic_v2_task_id_is_valid(msg->task_id)) {
			g_set_error_literal(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
					    "task id must be 1 to 64 characters of [A-Za-z0-9_-]");
			return NULL;
		}
		if (msg->path == NULL || msg->path[0] == '\0') {
			g_set_error_literal(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
					    "empty path");
			return NULL;
		}
		if (!as_quic_v2_file_check(msg->size, msg->chunk_size, NULL, error))
			return NULL;
		as_quic_v2_put_u8(out, msg->sha256 != NULL ? AS_QUIC_V2_FILE_FLAG_SHA256 : 0);
		as_quic_v2_put_u64(out, msg->size);
		as_quic_v2_put_u64(out, msg->chunk_size);
		ok = (msg->sha256 == NULL || as_quic_v2_put_digest(out, msg->sha256, error)) &&
		     as_quic_v2_put_string(out, "task id", msg->task_id, AS_QUIC_V2_TASK_ID_MAX,
					   FALSE, error) &&
		     as_quic_v2_put_string(out, "path", msg->path, AS_QUIC_V2_MAX_PATH_LEN, FALSE,
					   error);
		break;
	case AS_QUIC_V2_MSG_HAVE: {
		gsize n = ((gsize)msg->total_chunks + 7) / 8;
		gsize have = 0;
		const guint8 *b = msg->bitmap != NULL ? g_bytes_get_data(msg->bitmap, &have) : NULL;
		if (msg->total_chunks == 0 || msg->total_chunks > AS_QUIC_V2_MAX_CHUNKS ||
		    (b != NULL && have != n)) {
			g_set_error_literal(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
					    "HAVE with a bad chunk count");
			return NULL;
		}
		as_quic_v2_put_u32(out, msg->total_chunks);
		if (b != NULL)
			g_byte_array_append(out, b, (guint)n);
		else {
			guint old = out->len;
			g_byte_array_set_size(out, old + (guint)n);
			memset(out->data + old, 0, n);
		}
		break;
	}
	case AS_QUIC_V2_MSG_CHUNK:
		as_quic_v2_put_u32(out, msg->index);
		as_quic_v2_put_u64(out, msg->offset);
		as_quic_v2_put_u64(out, msg->length);
		break;
	case AS_QUIC_V2_MSG_CHUNK_OK:
		as_quic_v2_put_u32(out, msg->index);
		as_quic_v2_put_u32(out, msg->chunks_done);
		break;
	case AS_QUIC_V2_MSG_DONE:
		as_quic_v2_put_u64(out, msg->size);
		ok = as_quic_v2_put_digest(out, msg->sha256, error) &&
		     as_quic_v2_put_string(out, "saved path", msg->path, AS_QUIC_V2_MAX_PATH_LEN,
					   FALSE, error);
		break;
	case AS_QUIC_V2_MSG_ERROR:
		as_quic_v2_put_u16(out, msg->code);
		ok = as_quic_v2_put_string(out, "error message", msg->text, AS_QUIC_V2_MAX_TEXT_LEN,
					   TRUE, error);
		break;
	case AS_QUIC_V2_MSG_EVENT:
		as_quic_v2_put_u8(out, msg->kind);
		as_quic_v2_put_u64(out, msg->bytes_done);
		as_quic_v2_put_u64(out, msg->size);
		ok = as_quic_v2_put_string(out, "task id", msg->task_id, AS_QUIC_V2_TASK_ID_MAX,
					   FALSE, error) &&
		     as_quic_v2_put_string(out, "event detail", msg->text, AS_QUIC_V2_MAX_TEXT_LEN,
					   TRUE, error);
		break;
	default:
		g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT, "unknown frame type 0x%02x",
			    msg->type);
		return NULL;
	}
	if (!ok)
		return NULL;
	payload_len = out->len - AS_QUIC_V2_FRAME_HEADER_SIZE;
	out->data[1] = (guint8)(payload_len >> 24);
	out->data[2] = (guint8)(payload_len >> 16);
	out->data[3] = (guint8)(payload_len >> 8);
	out->data[4] = (guint8)payload_len;
	return g_steal_pointer(&out);
}

/**
 * as_quic_v2_encode_error:
 * @error: a #GError; an #AsError keeps its code, anything else becomes %AS_ERROR_FAILED
 *
 * Returns: (transfer full): an ERROR frame
 **/
GByteArray *
as_quic_v2_encode_error(const GError *error)
{
	AsQuicV2Msg msg = {0};

	g_return_val_if_fail(error != NULL, NULL);
	msg.type = AS_QUIC_V2_MSG_ERROR;
	msg.code = error->domain == AS_ERROR ? (guint16)error->code : AS_ERROR_FAILED;
	if (error->domain == G_IO_ERROR && error->code == G_IO_ERROR_NO_SPACE)
		msg.code = AS_ERROR_NO_SPACE;
	msg.text = error->message;
	/* an ERROR frame with a truncated message cannot fail */
	return as_quic_v2_encode(&msg, NULL);
}

/**
 * as_quic_v2_msg_to_error:
 * @msg: a decoded ERROR frame
 *
 * Returns: (transfer full): the #AsError it carries; unknown codes become %AS_ERROR_FAILED
 **/
GError *
as_quic_v2_msg_to_error(const AsQuicV2Msg *msg)
{
	gint code = msg->code < AS_ERROR_LAST ? msg->code : AS_ERROR_FAILED;
	return g_error_new_literal(AS_ERROR, code,
				   msg->text != NULL ? msg->text : "receiver reported an error");
}

/**
 * as_quic_v2_event_kind_to_string:
 *
 * Returns: `progress`, `completed`, `failed` or `unknown`
 **/
const gchar *
as_quic_v2_event_kind_to_string(guint8 kind)
{
	switch (kind) {
	case AS_QUIC_V2_EVENT_PROGRESS:
		return "progress";
	case AS_QUIC_V2_EVENT_COMPLETED:
		return "completed";
	case AS_QUIC_V2_EVENT_FAILED:
		return "failed";
	default:
		return "unknown";
	}
}
