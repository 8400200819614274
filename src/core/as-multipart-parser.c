/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "AsMultipartParser"

#include "config.h"

#include <string.h>

#include "as-error.h"
#include "as-multipart-parser.h"

/* "\r\n--" before the boundary */
#define AS_MULTIPART_DELIMITER_PREFIX_LEN 4
#define AS_MULTIPART_DELIMITER_MAX	  (AS_MULTIPART_DELIMITER_PREFIX_LEN + AS_MULTIPART_BOUNDARY_MAX)
/* the header buffer starts with a virtual CRLF and ends with the blank line */
#define AS_MULTIPART_HEADERS_BUF_MAX (2 + AS_MULTIPART_HEADERS_MAX + 4)
/* RFC 2046 allows linear whitespace between a boundary and its CRLF */
#define AS_MULTIPART_PADDING_MAX 256

typedef enum {
	AS_MULTIPART_STATE_PREAMBLE,
	AS_MULTIPART_STATE_DELIMITER_TAIL,
	AS_MULTIPART_STATE_HEADERS,
	AS_MULTIPART_STATE_BODY,
	AS_MULTIPART_STATE_EPILOGUE,
	AS_MULTIPART_STATE_ERROR,
} AsMultipartState;

struct _AsMultipartParser {
	AsMultipartCallbacks callbacks;
	gpointer user_data;
	guint8 delimiter[AS_MULTIPART_DELIMITER_MAX]; /* "\r\n--" + boundary */
	gsize delimiter_len;
	/* a delimiter prefix seen at the end of the previous feed, not yet known to be data */
	guint8 carry[AS_MULTIPART_DELIMITER_MAX];
	gsize carry_len;
	AsMultipartState state;
	guint8 tail_prev; /* 0, '-' or '\r' while in DELIMITER_TAIL */
	guint tail_padding;
	GByteArray *headers; /* owned */
	guint part_count;
	guint max_parts;
	GError *error; /* owned, nullable: the first failure, returned by every later call */
};

/* RFC 2046 bcharsnospace plus space; CR never appears, which the scanner relies on */
static gboolean
as_multipart_is_bchar(gchar c)
{
	return g_ascii_isalnum(c) || strchr("'()+_,-./:=? ", c) != NULL;
}

static gboolean
as_multipart_boundary_is_valid(const gchar *boundary, GError **error)
{
	gsize len = strlen(boundary);

	if (len == 0 || len > AS_MULTIPART_BOUNDARY_MAX) {
		g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
			    "multipart boundary must be 1 to %u characters, got %" G_GSIZE_FORMAT,
			    (guint)AS_MULTIPART_BOUNDARY_MAX, len);
		return FALSE;
	}
	for (gsize i = 0; i < len; i++) {
		if (!as_multipart_is_bchar(boundary[i])) {
			g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
				    "invalid character 0x%02x in multipart boundary",
				    (guint)(guchar)boundary[i]);
			return FALSE;
		}
	}
	if (boundary[len - 1] == ' ') {
		g_set_error_literal(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
				    "multipart boundary must not end with a space");
		return FALSE;
	}
	return TRUE;
}

/* header parameters: `type; key=value; key="quoted \" value"` */

static gboolean
as_multipart_is_ws(gchar c)
{
	return c == ' ' || c == '\t';
}

static const gchar *
as_multipart_skip_ws(const gchar *p)
{
	while (as_multipart_is_ws(*p))
		p++;
	return p;
}

/* curl and RFC 7230 escape '"' and '\' with a backslash; browsers escape nothing and send
 * literal backslashes (e.g. Windows paths), so any other backslash stays as it is */
static gchar *
as_multipart_parse_quoted(const gchar **pp, GError **error)
{
	const gchar *p = *pp + 1;
	g_autoptr(GString) str = g_string_new(NULL);

	for (;;) {
		if (*p == '\0') {
			g_set_error_literal(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
					    "unterminated quoted string");
			return NULL;
		}
		if (*p == '"')
			break;
		if (*p == '\\' && (p[1] == '"' || p[1] == '\\')) {
			g_string_append_c(str, p[1]);
			p += 2;
			continue;
		}
		g_string_append_c(str, *p);
		p++;
	}
	*pp = p + 1;
	return g_string_free(g_steal_pointer(&str), FALSE);
}

/* parses `type *(";" key "=" value)`, returning the lower-cased type and a table of
 * lower-cased keys to values; a repeated key is an error so two readers cannot disagree */
static gboolean
as_multipart_parse_params(const gchar *value,
			  gchar **type_out,
			  GHashTable **params_out,
			  GError **error)
{
	const gchar *p = as_multipart_skip_ws(value);
	const gchar *start = p;
	g_autoptr(GHashTable) params =
		g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	g_autofree gchar *type = NULL;

	while (*p != '\0' && *p != ';' && !as_multipart_is_ws(*p))
		p++;
	type = g_ascii_strdown(start, p - start);
	for (;;) {
		g_autofree gchar *key = NULL;
		g_autofree gchar *val = NULL;

		p = as_multipart_skip_ws(p);
		if (*p == '\0')
			break;
		if (*p != ';') {
			g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
				    "expected ';' at offset %u", (guint)(p - value));
			return FALSE;
		}
		p = as_multipart_skip_ws(p + 1);
		if (*p == '\0')
			break;
		start = p;
		while (*p != '\0' && *p != '=' && *p != ';' && !as_multipart_is_ws(*p))
			p++;
		if (p == start) {
			g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
				    "empty parameter name at offset %u", (guint)(p - value));
			return FALSE;
		}
		key = g_ascii_strdown(start, p - start);
		p = as_multipart_skip_ws(p);
		if (*p != '=') {
			g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
				    "parameter %s has no value", key);
			return FALSE;
		}
		p = as_multipart_skip_ws(p + 1);
		if (*p == '"') {
			val = as_multipart_parse_quoted(&p, error);
			if (val == NULL) {
				g_prefix_error(error, "parameter %s: ", key);
				return FALSE;
			}
		} else {
			const gchar *end;
			start = p;
			while (*p != '\0' && *p != ';')
				p++;
			end = p;
			while (end > start && as_multipart_is_ws(end[-1]))
				end--;
			val = g_strndup(start, end - start);
		}
		if (g_hash_table_contains(params, key)) {
			g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
				    "parameter %s given twice", key);
			return FALSE;
		}
		g_hash_table_insert(params, g_steal_pointer(&key), g_steal_pointer(&val));
	}
	*type_out = g_steal_pointer(&type);
	*params_out = g_steal_pointer(&params);
	return TRUE;
}

/* RFC 8187 ext-value: charset'language'percent-encoded */
static gchar *
as_multipart_decode_ext_value(const gchar *ext, GError **error)
{
	const gchar *q1 = strchr(ext, '\'');
	const gchar *q2 = q1 != NULL ? strchr(q1 + 1, '\'') : NULL;
	g_autofree gchar *charset = NULL;
	g_autofree gchar *raw = NULL;

	if (q2 == NULL) {
		g_set_error_literal(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
				    "extended value has no charset'language' prefix");
		return NULL;
	}
	charset = g_strndup(ext, q1 - ext);
	/* NULL for bad escapes and for an escaped NUL */
	raw = g_uri_unescape_string(q2 + 1, NULL);
	if (raw == NULL) {
		g_set_error_literal(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
				    "invalid percent-encoding in extended value");
		return NULL;
	}
	if (g_ascii_strcasecmp(charset, "UTF-8") == 0) {
		if (!g_utf8_validate(raw, -1, NULL)) {
			g_set_error_literal(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
					    "extended value is not valid UTF-8");
			return NULL;
		}
		return g_steal_pointer(&raw);
	}
	if (g_ascii_strcasecmp(charset, "ISO-8859-1") == 0)
		return g_convert(raw, -1, "UTF-8", "ISO-8859-1", NULL, NULL, error);
	g_set_error(error, AS_ERROR, AS_ERROR_NOT_SUPPORTED,
		    "unsupported charset %s in extended value", charset);
	return NULL;
}

static gboolean
as_multipart_parser_set_error(AsMultipartParser *self, GError *error_local, GError **error)
{
	self->state = AS_MULTIPART_STATE_ERROR;
	g_clear_error(&self->error);
	self->error = g_error_copy(error_local);
	g_propagate_error(error, error_local);
	return FALSE;
}

static gboolean
as_multipart_parser_fail(AsMultipartParser *self, GError **error, gint code, const gchar *msg)
{
	return as_multipart_parser_set_error(self, g_error_new_literal(AS_ERROR, code, msg), error);
}

/* a callback returned FALSE; pass its error on unchanged so its code reaches the caller */
static gboolean
as_multipart_parser_callback_failed(AsMultipartParser *self, GError *error_local, GError **error)
{
	if (error_local == NULL) {
		error_local = g_error_new_literal(AS_ERROR, AS_ERROR_FAILED,
						  "multipart callback aborted parsing");
	}
	return as_multipart_parser_set_error(self, error_local, error);
}

static gboolean
as_multipart_parser_emit(AsMultipartParser *self, const guint8 *data, gsize len, GError **error)
{
	GError *error_local = NULL;

	if (self->state != AS_MULTIPART_STATE_BODY || len == 0 || self->callbacks.part_data == NULL)
		return TRUE;
	if (!self->callbacks.part_data(self->user_data, data, len, &error_local))
		return as_multipart_parser_callback_failed(self, error_local, error);
	return TRUE;
}

static gboolean
as_multipart_parser_delimiter_found(AsMultipartParser *self, GError **error)
{
	if (self->state == AS_MULTIPART_STATE_BODY && self->callbacks.part_end != NULL) {
		GError *error_local = NULL;
		if (!self->callbacks.part_end(self->user_data, &error_local))
			return as_multipart_parser_callback_failed(self, error_local, error);
	}
	self->state = AS_MULTIPART_STATE_DELIMITER_TAIL;
	self->tail_prev = 0;
	self->tail_padding = 0;
	return TRUE;
}

/* length of the longest suffix of @data that is a proper prefix of the delimiter; the
 * delimiter holds '\r' only at index 0, so only a CR can start such a suffix */
static gsize
as_multipart_parser_partial_len(AsMultipartParser *self, const guint8 *data, gsize len)
{
	gsize window = MIN(len, self->delimiter_len - 1);
	const guint8 *end = data + len;
	const guint8 *cr = memchr(end - window, '\r', window);

	while (cr != NULL) {
		gsize k = end - cr;
		if (memcmp(cr, self->delimiter, k) == 0)
			return k;
		cr = memchr(cr + 1, '\r', end - (cr + 1));
	}
	return 0;
}

/* PREAMBLE and BODY: find the next delimiter with memmem, passing everything before it on
 * in one slice; returns with *len == 0 or with the state changed */
static gboolean
as_multipart_parser_scan(AsMultipartParser *self, const guint8 **data, gsize *len, GError **error)
{
	const guint8 *p = *data;
	gsize n = *len;
	const guint8 *hit;
	gsize keep;

	if (self->carry_len > 0) {
		gsize need = self->delimiter_len - self->carry_len;
		gsize cmp = MIN(need, n);

		if (memcmp(p, self->delimiter + self->carry_len, cmp) == 0) {
			if (cmp < need) {
				memcpy(self->carry + self->carry_len, p, cmp);
				self->carry_len += cmp;
				*data = p + cmp;
				*len = n - cmp;
				return TRUE;
			}
			self->carry_len = 0;
			*data = p + need;
			*len = n - need;
			return as_multipart_parser_delimiter_found(self, error);
		}

		/* not a delimiter after all; no later byte of it can start one */
		if (!as_multipart_parser_emit(self, self->carry, self->carry_len, error))
			return FALSE;
		self->carry_len = 0;
	}

	hit = memmem(p, n, self->delimiter, self->delimiter_len);
	if (hit != NULL) {
		if (!as_multipart_parser_emit(self, p, hit - p, error))
			return FALSE;
		*data = hit + self->delimiter_len;
		*len = n - (hit - p) - self->delimiter_len;
		return as_multipart_parser_delimiter_found(self, error);
	}

	keep = as_multipart_parser_partial_len(self, p, n);
	if (!as_multipart_parser_emit(self, p, n - keep, error))
		return FALSE;
	memcpy(self->carry, p + n - keep, keep);
	self->carry_len = keep;
	*data = p + n;
	*len = 0;
	return TRUE;
}

/* after "\r\n--boundary": either "--" (the close delimiter) or optional padding and CRLF */
static gboolean
as_multipart_parser_delimiter_tail(AsMultipartParser *self, guint8 c, GError **error)
{
	if (self->tail_prev == '-') {
		if (c != '-') {
			return as_multipart_parser_fail(self, error, AS_ERROR_INVALID_ARGUMENT,
							"malformed close delimiter");
		}
		self->state = AS_MULTIPART_STATE_EPILOGUE;
		return TRUE;
	}
	if (self->tail_prev == '\r') {
		if (c != '\n') {
			return as_multipart_parser_fail(self, error, AS_ERROR_INVALID_ARGUMENT,
							"boundary line not ended by CRLF");
		}
		self->state = AS_MULTIPART_STATE_HEADERS;
		g_byte_array_set_size(self->headers, 0);
		g_byte_array_append(self->headers, (const guint8 *)"\r\n", 2);
		return TRUE;
	}
	if (c == '-' && self->tail_padding == 0) {
		self->tail_prev = '-';
		return TRUE;
	}
	if (c == '\r') {
		self->tail_prev = '\r';
		return TRUE;
	}
	if ((c == ' ' || c == '\t') && self->tail_padding < AS_MULTIPART_PADDING_MAX) {
		self->tail_padding++;
		return TRUE;
	}
	return as_multipart_parser_fail(self, error, AS_ERROR_INVALID_ARGUMENT,
					"unexpected data after a multipart boundary");
}

static gboolean
as_multipart_parser_set_header(gchar **dest, const gchar *name, const gchar *value, GError **error)
{
	if (*dest != NULL) {
		g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
			    "part header %s given twice", name);
		return FALSE;
	}
	*dest = g_strdup(value);
	return TRUE;
}

static gboolean
as_multipart_parser_begin_part(AsMultipartParser *self,
			       const gchar *text,
			       gsize text_len,
			       GError **error)
{
	g_autofree gchar *disposition = NULL;
	g_autofree gchar *content_type = NULL;
	g_autofree gchar *dtype = NULL;
	g_autofree gchar *filename = NULL;
	g_autoptr(GHashTable) params = NULL;
	g_autoptr(GString) line = g_string_new(NULL);
	const gchar *name;
	const gchar *fn_plain;
	const gchar *fn_ext;
	const gchar *p = text;
	const gchar *end = text + text_len;
	GError *error_local = NULL;

	/* also rejects NUL bytes, so the strings below are never cut short */
	if (!g_utf8_validate(text, text_len, NULL)) {
		return as_multipart_parser_fail(self, error, AS_ERROR_INVALID_ARGUMENT,
						"part headers are not valid UTF-8");
	}

	/* one iteration per logical header; continuation lines (obs-fold) are joined */
	while (p < end) {
		const gchar *eol = g_strstr_len(p, end - p, "\r\n");
		const gchar *colon;
		g_autofree gchar *hname = NULL;
		const gchar *hvalue;

		if (eol == NULL)
			eol = end;
		g_string_append_len(line, p, eol - p);
		p = eol < end ? eol + 2 : end;
		if (p < end && as_multipart_is_ws(*p))
			continue;

		colon = strchr(line->str, ':');
		if (colon == NULL || colon == line->str) {
			return as_multipart_parser_fail(self, error, AS_ERROR_INVALID_ARGUMENT,
							"malformed part header line");
		}
		hname = g_strndup(line->str, colon - line->str);
		g_strchomp(hname);
		hvalue = as_multipart_skip_ws(colon + 1);
		if (g_ascii_strcasecmp(hname, "Content-Disposition") == 0) {
			if (!as_multipart_parser_set_header(&disposition, hname, hvalue,
							    &error_local))
				return as_multipart_parser_set_error(self, error_local, error);
			g_strchomp(disposition);
		} else if (g_ascii_strcasecmp(hname, "Content-Type") == 0) {
			if (!as_multipart_parser_set_header(&content_type, hname, hvalue,
							    &error_local))
				return as_multipart_parser_set_error(self, error_local, error);
			g_strchomp(content_type);
		}
		if (self->callbacks.part_header != NULL &&
		    !self->callbacks.part_header(self->user_data, hname, hvalue, &error_local))
			return as_multipart_parser_callback_failed(self, error_local, error);
		g_string_truncate(line, 0);
	}

	if (disposition == NULL) {
		return as_multipart_parser_fail(self, error, AS_ERROR_INVALID_ARGUMENT,
						"part has no Content-Disposition header");
	}
	if (!as_multipart_parse_params(disposition, &dtype, &params, &error_local)) {
		g_prefix_error_literal(&error_local, "invalid Content-Disposition: ");
		return as_multipart_parser_set_error(self, error_local, error);
	}
	name = g_hash_table_lookup(params, "name");
	if (name == NULL) {
		return as_multipart_parser_fail(self, error, AS_ERROR_INVALID_ARGUMENT,
						"part has no name in its Content-Disposition");
	}
	fn_plain = g_hash_table_lookup(params, "filename");
	fn_ext = g_hash_table_lookup(params, "filename*");
	if (fn_ext != NULL) {
		filename = as_multipart_decode_ext_value(fn_ext, &error_local);
		if (filename == NULL && fn_plain == NULL) {
			g_prefix_error_literal(&error_local, "invalid filename*: ");
			return as_multipart_parser_set_error(self, error_local, error);
		}
		if (filename == NULL) {
			g_debug("ignoring filename*, using filename: %s", error_local->message);
			g_clear_error(&error_local);
		}
	}
	if (filename == NULL)
		filename = g_strdup(fn_plain);

	if (self->part_count >= self->max_parts) {
		g_autofree gchar *msg =
			g_strdup_printf("more than %u parts in multipart body", self->max_parts);
		return as_multipart_parser_fail(self, error, AS_ERROR_TOO_LARGE, msg);
	}
	self->part_count++;
	self->state = AS_MULTIPART_STATE_BODY;
	self->carry_len = 0;
	if (self->callbacks.part_begin != NULL &&
	    !self->callbacks.part_begin(self->user_data, name, filename, content_type,
					&error_local))
		return as_multipart_parser_callback_failed(self, error_local, error);
	return TRUE;
}

/* collects the header block into a bounded buffer until the blank line */
static gboolean
as_multipart_parser_headers(AsMultipartParser *self,
			    const guint8 **data,
			    gsize *len,
			    GError **error)
{
	gsize old_len = self->headers->len;
	gsize take = MIN(*len, AS_MULTIPART_HEADERS_BUF_MAX - old_len);
	gsize from = old_len >= 3 ? old_len - 3 : 0;
	const guint8 *hit;
	gsize block_end;
	gsize consumed;

	g_byte_array_append(self->headers, *data, take);
	hit = memmem(self->headers->data + from, self->headers->len - from, "\r\n\r\n", 4);
	if (hit == NULL) {
		if (self->headers->len >= AS_MULTIPART_HEADERS_BUF_MAX) {
			g_autofree gchar *msg = g_strdup_printf("part headers exceed %u bytes",
								(guint)AS_MULTIPART_HEADERS_MAX);
			return as_multipart_parser_fail(self, error, AS_ERROR_TOO_LARGE, msg);
		}
		*data += take;
		*len -= take;
		return TRUE;
	}

	/* the buffer starts with the virtual CRLF, so an empty block ends at index 0 */
	block_end = hit - self->headers->data;
	consumed = block_end + 4 - old_len;
	*data += consumed;
	*len -= consumed;
	return as_multipart_parser_begin_part(self, (const gchar *)self->headers->data + 2,
					      block_end > 2 ? block_end - 2 : 0, error);
}

static gboolean
as_multipart_parser_check_state(AsMultipartParser *self, GError **error)
{
	if (self->state == AS_MULTIPART_STATE_ERROR) {
		g_propagate_error(error, g_error_copy(self->error));
		return FALSE;
	}
	return TRUE;
}

/**
 * as_multipart_parser_feed:
 * @self: a #AsMultipartParser
 * @data: (array length=len): the next bytes of the request body
 * @len: length of @data, may be 0
 * @error: (nullable): optional return location for an error
 *
 * Parses the next piece of the body, calling the callbacks as parts begin, carry data and end.
 * Nothing of a part body is kept except up to 73 bytes that might start a delimiter.
 *
 * Returns: %FALSE on malformed input or when a callback aborted; every later call fails too
 **/
gboolean
as_multipart_parser_feed(AsMultipartParser *self, const guint8 *data, gsize len, GError **error)
{
	g_return_val_if_fail(self != NULL, FALSE);
	g_return_val_if_fail(data != NULL || len == 0, FALSE);
	g_return_val_if_fail(error == NULL || *error == NULL, FALSE);

	if (!as_multipart_parser_check_state(self, error))
		return FALSE;
	while (len > 0) {
		switch (self->state) {
		case AS_MULTIPART_STATE_PREAMBLE:
		case AS_MULTIPART_STATE_BODY:
			if (!as_multipart_parser_scan(self, &data, &len, error))
				return FALSE;
			break;
		case AS_MULTIPART_STATE_DELIMITER_TAIL:
			if (!as_multipart_parser_delimiter_tail(self, *data, error))
				return FALSE;
			data++;
			len--;
			break;
		case AS_MULTIPART_STATE_HEADERS:
			if (!as_multipart_parser_headers(self, &data, &len, error))
				return FALSE;
			break;
		case AS_MULTIPART_STATE_EPILOGUE:
			/* the epilogue is ignored, like the preamble */
			return TRUE;
		case AS_MULTIPART_STATE_ERROR:
		default:
			/* every failure returns at once, so this is only reached after misuse */
			return as_multipart_parser_check_state(self, error);
		}
	}
	return TRUE;
}

/**
 * as_multipart_parser_finish:
 * @self: a #AsMultipartParser
 * @error: (nullable): optional return location for an error
 *
 * Checks that the body ended properly: the close delimiter was seen, so no part is left open.
 *
 * Returns: %TRUE if the body was complete
 **/
gboolean
as_multipart_parser_finish(AsMultipartParser *self, GError **error)
{
	g_return_val_if_fail(self != NULL, FALSE);
	g_return_val_if_fail(error == NULL || *error == NULL, FALSE);

	if (!as_multipart_parser_check_state(self, error))
		return FALSE;
	switch (self->state) {
	case AS_MULTIPART_STATE_EPILOGUE:
		return TRUE;
	case AS_MULTIPART_STATE_PREAMBLE:
		return as_multipart_parser_fail(self, error, AS_ERROR_INCOMPLETE,
						"multipart body has no boundary");
	case AS_MULTIPART_STATE_BODY: {
		g_autofree gchar *msg = g_strdup_printf("multipart body truncated inside part %u",
							self->part_count);
		return as_multipart_parser_fail(self, error, AS_ERROR_INCOMPLETE, msg);
	}
	case AS_MULTIPART_STATE_HEADERS:
	case AS_MULTIPART_STATE_DELIMITER_TAIL:
	case AS_MULTIPART_STATE_ERROR:
	default:
		return as_multipart_parser_fail(
			self, error, AS_ERROR_INCOMPLETE,
			"multipart body truncated before its close delimiter");
	}
}

/**
 * as_multipart_parser_set_max_parts:
 * @self: a #AsMultipartParser
 * @max_parts: the most parts accepted, default %AS_MULTIPART_MAX_PARTS_DEFAULT
 *
 * Bounds the work one request can cause; one more part fails with %AS_ERROR_TOO_LARGE.
 **/
void
as_multipart_parser_set_max_parts(AsMultipartParser *self, guint max_parts)
{
	g_return_if_fail(self != NULL);
	self->max_parts = max_parts;
}

/**
 * as_multipart_parser_get_part_count:
 * @self: a #AsMultipartParser
 *
 * Returns: the number of parts begun so far
 **/
guint
as_multipart_parser_get_part_count(AsMultipartParser *self)
{
	g_return_val_if_fail(self != NULL, 0);
	return self->part_count;
}

/**
 * as_multipart_parser_new:
 * @boundary: the boundary, e.g. from as_multipart_boundary_from_content_type()
 * @callbacks: the callbacks, copied
 * @user_data: passed to every callback
 *
 * Returns: (transfer full): a new parser
 **/
AsMultipartParser *
as_multipart_parser_new(const gchar *boundary,
			const AsMultipartCallbacks *callbacks,
			gpointer user_data)
{
	AsMultipartParser *self;
	gsize boundary_len;

	g_return_val_if_fail(boundary != NULL, NULL);
	g_return_val_if_fail(callbacks != NULL, NULL);
	g_return_val_if_fail(as_multipart_boundary_is_valid(boundary, NULL), NULL);

	boundary_len = strlen(boundary);
	self = g_new0(AsMultipartParser, 1);
	self->callbacks = *callbacks;
	self->user_data = user_data;
	memcpy(self->delimiter, "\r\n--", AS_MULTIPART_DELIMITER_PREFIX_LEN);
	memcpy(self->delimiter + AS_MULTIPART_DELIMITER_PREFIX_LEN, boundary, boundary_len);
	self->delimiter_len = AS_MULTIPART_DELIMITER_PREFIX_LEN + boundary_len;
	self->headers = g_byte_array_sized_new(1024);
	self->max_parts = AS_MULTIPART_MAX_PARTS_DEFAULT;

	/* the first delimiter may open the body without a CRLF before it: pretend there was one */
	self->state = AS_MULTIPART_STATE_PREAMBLE;
	memcpy(self->carry, "\r\n", 2);
	self->carry_len = 2;
	return self;
}

/**
 * as_multipart_parser_free:
 * @self: (nullable): a #AsMultipartParser
 *
 * Frees the parser. No callback is called.
 **/
void
as_multipart_parser_free(AsMultipartParser *self)
{
	if (self == NULL)
		return;
	g_byte_array_unref(self->headers);
	g_clear_error(&self->error);
	g_free(self);
}

/**
 * as_multipart_boundary_from_content_type:
 * @content_type: a Content-Type header value, e.g. `multipart/form-data; boundary=xyz`
 * @error: (nullable): optional return location for an error
 *
 * Extracts the boundary parameter, quoted or not, checking the RFC 2046 rules.
 *
 * Returns: (transfer full): the boundary, or %NULL with %AS_ERROR_INVALID_ARGUMENT
 **/
gchar *
as_multipart_boundary_from_content_type(const gchar *content_type, GError **error)
{
	g_autofree gchar *type = NULL;
	g_autoptr(GHashTable) params = NULL;
	const gchar *boundary;

	g_return_val_if_fail(error == NULL || *error == NULL, NULL);

	if (content_type == NULL) {
		g_set_error_literal(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
				    "no Content-Type, expected multipart/form-data");
		return NULL;
	}
	if (!as_multipart_parse_params(content_type, &type, &params, error)) {
		g_prefix_error_literal(error, "invalid Content-Type: ");
		return NULL;
	}
	if (g_strcmp0(type, "multipart/form-data") != 0) {
		g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
			    "Content-Type is %s, expected multipart/form-data", type);
		return NULL;
	}
	boundary = g_hash_table_lookup(params, "boundary");
	if (boundary == NULL) {
		g_set_error_literal(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
				    "multipart/form-data without a boundary parameter");
		return NULL;
	}
	if (!as_multipart_boundary_is_valid(boundary, error))
		return NULL;
	return g_strdup(boundary);
}
