/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "AsQuicFraming"

#include "config.h"

#include <string.h>

#include "as-error.h"
#include "as-quic-framing.h"
#include "as-sha256.h"

#define AS_QUIC_FRAMING_UPLOAD_PREFIX "UPLOAD:"
#define AS_QUIC_FRAMING_HASH_PREFIX   "HASH:"
/* a size field longer than this cannot be a guint64 */
#define AS_QUIC_FRAMING_MAX_SIZE_DIGITS 20

/* how a GError code is spelled on the wire, and read back by the sender; "Unauthorized" and
 * "File too large" are the 0.x texts */
typedef struct {
	AsError code;
	const gchar *prefix;
} AsQuicReplyPrefix;

static const AsQuicReplyPrefix as_quic_reply_prefixes[] = {
	{AS_ERROR_TOO_LARGE, "File too large"},
	{AS_ERROR_HASH_MISMATCH, "Hash mismatch"},
	{AS_ERROR_INCOMPLETE, "Incomplete"},
	{AS_ERROR_NO_SPACE, "No space"},
	{AS_ERROR_INVALID_ARGUMENT, "Invalid request"},
	{AS_ERROR_CONFLICT, "Conflict"},
	{AS_ERROR_NOT_SUPPORTED, "Not supported"},
};

/**
 * as_quic_upload_header_clear:
 * @hdr: a #AsQuicUploadHeader
 *
 * Frees the strings of @hdr and zeroes it, so it can be parsed into again.
 **/
void
as_quic_upload_header_clear(AsQuicUploadHeader *hdr)
{
	g_return_if_fail(hdr != NULL);
	g_free(hdr->name);
	g_free(hdr->token);
	g_free(hdr->receipt);
	g_free(hdr->sha256);
	memset(hdr, 0, sizeof(*hdr));
}

static gboolean
as_quic_framing_has_control_chars(const gchar *str)
{
	for (const guchar *p = (const guchar *)str; *p != '\0'; p++) {
		if (*p < 0x20 || *p == 0x7f)
			return TRUE;
	}
	return FALSE;
}

static gboolean
as_quic_framing_parse_size(const gchar *str, guint64 *size, GError **error)
{
	gsize len = strlen(str);

	/* digits only: no sign, no spaces, no hex, nothing that strtoull would quietly accept */
	if (len == 0 || len > AS_QUIC_FRAMING_MAX_SIZE_DIGITS) {
		g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT, "invalid size field");
		return FALSE;
	}
	for (gsize i = 0; i < len; i++) {
		if (!g_ascii_isdigit(str[i])) {
			g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
				    "invalid size field");
			return FALSE;
		}
	}
	if (!g_ascii_string_to_unsigned(str, 10, 0, G_MAXUINT64, size, NULL)) {
		g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT, "size field out of range");
		return FALSE;
	}
	return TRUE;
}

/* the UPLOAD line without its terminator */
static gboolean
as_quic_framing_parse_upload_line(const gchar *line,
				  gsize len,
				  AsQuicUploadHeader *hdr,
				  GError **error)
{
	g_autofree gchar *copy = NULL;
	g_auto(GStrv) fields = NULL;
	gsize prefix_len = strlen(AS_QUIC_FRAMING_UPLOAD_PREFIX);

	if (len > 0 && line[len - 1] == '\r')
		len--;
	if (len < prefix_len || memcmp(line, AS_QUIC_FRAMING_UPLOAD_PREFIX, prefix_len) != 0) {
		g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
			    "stream does not start with UPLOAD:");
		return FALSE;
	}
	if (memchr(line, '\0', len) != NULL || !g_utf8_validate(line, (gssize)len, NULL)) {
		g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT, "header is not UTF-8 text");
		return FALSE;
	}
	copy = g_strndup(line + prefix_len, len - prefix_len);
	if (as_quic_framing_has_control_chars(copy)) {
		g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
			    "header contains control characters");
		return FALSE;
	}

	/* name:size[:token[:receipt]] -- the receipt keeps any further colons, as 0.x splitn(5) */
	fields = g_strsplit(copy, ":", 4);
	if (g_strv_length(fields) < 2) {
		g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT, "header has no size field");
		return FALSE;
	}
	if (fields[0][0] == '\0') {
		g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT, "empty file name");
		return FALSE;
	}
	if (!as_quic_framing_parse_size(fields[1], &hdr->size, error))
		return FALSE;
	hdr->name = g_strdup(fields[0]);
	if (fields[2] != NULL && fields[2][0] != '\0')
		hdr->token = g_strdup(fields[2]);
	if (fields[2] != NULL && fields[3] != NULL && fields[3][0] != '\0')
		hdr->receipt = g_strdup(fields[3]);
	return TRUE;
}

/* decides whether @buf starts with a HASH line; *hash_len is 0 when it does not */
static AsQuicFramingResult
as_quic_framing_scan_hash_line(const guint8 *buf, gsize len, gboolean fin, gsize *hash_len)
{
	gsize prefix_len = strlen(AS_QUIC_FRAMING_HASH_PREFIX);
	gsize hex_end = prefix_len + AS_SHA256_HEX_LEN;

	*hash_len = 0;
	for (gsize i = 0; i < AS_QUIC_FRAMING_MAX_HASH_LINE_SIZE; i++) {
		guint8 c;

		/* out of bytes while everything so far matched: wait, or at FIN it was body data */
		if (i >= len)
			return fin ? AS_QUIC_FRAMING_RESULT_COMPLETE
				   : AS_QUIC_FRAMING_RESULT_NEED_MORE;
		c = buf[i];
		if (i < prefix_len) {
			if (c != (guint8)AS_QUIC_FRAMING_HASH_PREFIX[i])
				return AS_QUIC_FRAMING_RESULT_COMPLETE;
		} else if (i < hex_end) {
			if (!g_ascii_isxdigit(c))
				return AS_QUIC_FRAMING_RESULT_COMPLETE;
		} else if (i == hex_end) {
			if (c == '\n') {
				*hash_len = hex_end + 1;
				return AS_QUIC_FRAMING_RESULT_COMPLETE;
			}
			if (c != '\r')
				return AS_QUIC_FRAMING_RESULT_COMPLETE;
		} else {
			if (c == '\n')
				*hash_len = hex_end + 2;
			return AS_QUIC_FRAMING_RESULT_COMPLETE;
		}
	}
	return AS_QUIC_FRAMING_RESULT_COMPLETE;
}

/**
 * as_quic_framing_parse_header:
 * @buf: (array length=len): every byte of the stream received so far, from offset 0
 * @len: number of bytes in @buf
 * @fin: %TRUE if the stream ended after @buf
 * @hdr: (out caller-allocates): the header, filled on %AS_QUIC_FRAMING_RESULT_COMPLETE
 * @header_len: (out): bytes of @buf taken by the header lines; the body starts there
 * @error: (nullable): optional return location for an error
 *
 * Parses the header of an AeroSync 0.x QUIC upload stream. Only the header lines are looked
 * at, never the body: the first line up to `\n` is the UPLOAD line, and it is followed by a
 * HASH line only if the next bytes are exactly `HASH:`, 64 hex digits and `\n` (or `\r\n`).
 * The HASH line is consumed, never part of the body. A sender that announces no hash and whose
 * data itself starts with such a line is indistinguishable from one that does; 0.x senders always
 * send the line when they have a hash.
 *
 * The parser is pure: the caller keeps the bytes it was given and calls again with more of them
 * (at most %AS_QUIC_FRAMING_MAX_HEADER_SIZE before an answer other than NEED_MORE is certain)
 * until it stops answering %AS_QUIC_FRAMING_RESULT_NEED_MORE. Up to 71 bytes after the UPLOAD
 * line may be needed to rule a HASH line in or out; at @fin they are body.
 *
 * Returns: the parse state; %AS_QUIC_FRAMING_RESULT_ERROR sets @error (%AS_ERROR_INVALID_ARGUMENT)
 **/
AsQuicFramingResult
as_quic_framing_parse_header(const guint8 *buf,
			     gsize len,
			     gboolean fin,
			     AsQuicUploadHeader *hdr,
			     gsize *header_len,
			     GError **error)
{
	const guint8 *nl;
	gsize line_len;
	gsize hash_len = 0;
	AsQuicFramingResult rc;

	g_return_val_if_fail(buf != NULL || len == 0, AS_QUIC_FRAMING_RESULT_ERROR);
	g_return_val_if_fail(hdr != NULL, AS_QUIC_FRAMING_RESULT_ERROR);
	g_return_val_if_fail(header_len != NULL, AS_QUIC_FRAMING_RESULT_ERROR);
	g_return_val_if_fail(error == NULL || *error == NULL, AS_QUIC_FRAMING_RESULT_ERROR);

	*header_len = 0;
	nl = len > 0 ? memchr(buf, '\n', MIN(len, AS_QUIC_FRAMING_MAX_LINE_SIZE)) : NULL;
	if (nl == NULL) {
		if (len >= AS_QUIC_FRAMING_MAX_LINE_SIZE) {
			g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
				    "header line longer than %u bytes",
				    (guint)AS_QUIC_FRAMING_MAX_LINE_SIZE);
			return AS_QUIC_FRAMING_RESULT_ERROR;
		}
		/* reject a wrong protocol as early as the first bytes show it */
		if (memcmp(buf, AS_QUIC_FRAMING_UPLOAD_PREFIX,
			   MIN(len, strlen(AS_QUIC_FRAMING_UPLOAD_PREFIX))) != 0) {
			g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
				    "stream does not start with UPLOAD:");
			return AS_QUIC_FRAMING_RESULT_ERROR;
		}
		if (fin) {
			g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
				    "stream ended inside the header");
			return AS_QUIC_FRAMING_RESULT_ERROR;
		}
		return AS_QUIC_FRAMING_RESULT_NEED_MORE;
	}
	line_len = (gsize)(nl - buf);

	rc = as_quic_framing_scan_hash_line(nl + 1, len - line_len - 1, fin, &hash_len);
	if (rc == AS_QUIC_FRAMING_RESULT_NEED_MORE) {
		/* still report a malformed UPLOAD line at once, without waiting for more */
		AsQuicUploadHeader tmp = {NULL};
		gboolean ok = as_quic_framing_parse_upload_line((const gchar *)buf, line_len, &tmp,
								error);
		as_quic_upload_header_clear(&tmp);
		return ok ? AS_QUIC_FRAMING_RESULT_NEED_MORE : AS_QUIC_FRAMING_RESULT_ERROR;
	}

	as_quic_upload_header_clear(hdr);
	if (!as_quic_framing_parse_upload_line((const gchar *)buf, line_len, hdr, error)) {
		as_quic_upload_header_clear(hdr);
		return AS_QUIC_FRAMING_RESULT_ERROR;
	}
	if (hash_len > 0) {
		hdr->sha256 =
			g_ascii_strdown((const gchar *)nl + 1 + strlen(AS_QUIC_FRAMING_HASH_PREFIX),
					AS_SHA256_HEX_LEN);
	}
	*header_len = line_len + 1 + hash_len;
	return AS_QUIC_FRAMING_RESULT_COMPLETE;
}

/**
 * as_quic_framing_format_header:
 * @name: the file name; may not contain `:`, line breaks or control characters
 * @size: the body size in bytes
 * @token: (nullable): the auth token
 * @receipt: (nullable): a receipt id (0.2+); needs no @token, the field is left empty then
 * @sha256: (nullable): the SHA-256 of the body in hex
 * @error: (nullable): optional return location for an error
 *
 * Builds the header a sender writes before the body: the UPLOAD line and, with @sha256, the HASH
 * line. Fields that cannot be framed are refused rather than mangled.
 *
 * Returns: (transfer full): the header text, or %NULL with %AS_ERROR_INVALID_ARGUMENT
 **/
gchar *
as_quic_framing_format_header(const gchar *name,
			      guint64 size,
			      const gchar *token,
			      const gchar *receipt,
			      const gchar *sha256,
			      GError **error)
{
	GString *str;

	g_return_val_if_fail(name != NULL, NULL);

	if (name[0] == '\0' || strchr(name, ':') != NULL ||
	    as_quic_framing_has_control_chars(name) || !g_utf8_validate(name, -1, NULL)) {
		g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
			    "file name cannot be sent over QUIC: empty, or contains ':' or control "
			    "characters");
		return NULL;
	}
	if (token != NULL &&
	    (strchr(token, ':') != NULL || as_quic_framing_has_control_chars(token))) {
		g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT, "token cannot be framed");
		return NULL;
	}
	if (receipt != NULL && as_quic_framing_has_control_chars(receipt)) {
		g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT, "receipt cannot be framed");
		return NULL;
	}
	if (sha256 != NULL && !as_sha256_hex_is_valid(sha256)) {
		g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT, "invalid SHA-256 hex");
		return NULL;
	}

	str = g_string_new(AS_QUIC_FRAMING_UPLOAD_PREFIX);
	g_string_append_printf(str, "%s:%" G_GUINT64_FORMAT, name, size);
	if (token != NULL || receipt != NULL)
		g_string_append_printf(str, ":%s", token != NULL ? token : "");
	if (receipt != NULL)
		g_string_append_printf(str, ":%s", receipt);
	g_string_append_c(str, '\n');
	if (sha256 != NULL) {
		g_autofree gchar *lower = g_ascii_strdown(sha256, -1);
		g_string_append_printf(str, "%s%s\n", AS_QUIC_FRAMING_HASH_PREFIX, lower);
	}
	return g_string_free(str, FALSE);
}

/**
 * as_quic_framing_error_message:
 * @error: the reason an upload failed
 *
 * The text of an `ERROR:` reply for @error, without the prefix. %AS_ERROR_PERMISSION_DENIED is
 * always `Unauthorized` (the 0.x text, and no detail for an unauthenticated peer); other #AsError
 * codes get a prefix that as_quic_framing_parse_reply() maps back to the same code. Line breaks
 * in the message are replaced so the reply stays one line.
 *
 * Returns: (transfer full): the message
 **/
gchar *
as_quic_framing_error_message(const GError *error)
{
	g_autofree gchar *msg = NULL;

	g_return_val_if_fail(error != NULL, NULL);

	if (g_error_matches(error, AS_ERROR, AS_ERROR_PERMISSION_DENIED))
		return g_strdup("Unauthorized");
	msg = g_strdup(error->message);
	g_strdelimit(msg, "\r\n", ' ');
	if (error->domain == AS_ERROR) {
		for (guint i = 0; i < G_N_ELEMENTS(as_quic_reply_prefixes); i++) {
			if (as_quic_reply_prefixes[i].code == (AsError)error->code) {
				return g_strdup_printf("%s: %s", as_quic_reply_prefixes[i].prefix,
						       msg);
			}
		}
	}
	return g_steal_pointer(&msg);
}

/**
 * as_quic_framing_format_error_reply:
 * @error: the reason an upload failed
 *
 * Builds the whole `ERROR:<msg>` reply for @error, see as_quic_framing_error_message().
 *
 * Returns: (transfer full): the reply text, without FIN
 **/
gchar *
as_quic_framing_format_error_reply(const GError *error)
{
	g_autofree gchar *msg = NULL;

	g_return_val_if_fail(error != NULL, NULL);
	msg = as_quic_framing_error_message(error);
	return g_strconcat(AS_QUIC_REPLY_ERROR_PREFIX, msg, NULL);
}

/**
 * as_quic_framing_parse_reply:
 * @reply: (array length=len): the reply bytes the receiver sent before FIN
 * @len: the number of bytes
 * @error: (nullable): optional return location for an error
 *
 * Interprets a receiver's reply. `SUCCESS` (trailing whitespace allowed) is success;
 * `ERROR:<msg>` becomes an #AsError whose code follows the message prefix
 * (`Unauthorized` is %AS_ERROR_PERMISSION_DENIED, see as_quic_framing_format_error_reply())
 * and whose message is `<msg>`; anything else, including an empty reply, is %AS_ERROR_FAILED.
 *
 * Returns: %TRUE if the receiver accepted the upload
 **/
gboolean
as_quic_framing_parse_reply(const gchar *reply, gsize len, GError **error)
{
	g_autofree gchar *text = NULL;
	gsize error_prefix_len = strlen(AS_QUIC_REPLY_ERROR_PREFIX);
	const gchar *msg;

	g_return_val_if_fail(reply != NULL || len == 0, FALSE);

	if (len == 0) {
		g_set_error(error, AS_ERROR, AS_ERROR_FAILED,
			    "receiver closed the stream without a reply");
		return FALSE;
	}
	text = g_strndup(reply, len);
	g_strchomp(text);
	if (g_strcmp0(text, AS_QUIC_REPLY_SUCCESS) == 0)
		return TRUE;
	if (!g_str_has_prefix(text, AS_QUIC_REPLY_ERROR_PREFIX) ||
	    !g_utf8_validate(text, -1, NULL)) {
		g_set_error(error, AS_ERROR, AS_ERROR_FAILED, "unexpected reply from receiver");
		return FALSE;
	}
	msg = text + error_prefix_len;
	if (g_strcmp0(msg, "Unauthorized") == 0) {
		g_set_error_literal(error, AS_ERROR, AS_ERROR_PERMISSION_DENIED, msg);
		return FALSE;
	}
	for (guint i = 0; i < G_N_ELEMENTS(as_quic_reply_prefixes); i++) {
		if (g_str_has_prefix(msg, as_quic_reply_prefixes[i].prefix)) {
			g_set_error_literal(error, AS_ERROR, as_quic_reply_prefixes[i].code, msg);
			return FALSE;
		}
	}
	g_set_error_literal(error, AS_ERROR, AS_ERROR_FAILED, msg);
	return FALSE;
}
