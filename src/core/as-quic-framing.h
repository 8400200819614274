/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* ALPN ids of the 0.x stream framing: 0.1 spoke "aerosync", 0.2+ speaks "aerosync/1" */
#define AS_QUIC_ALPN_LEGACY "aerosync"
#define AS_QUIC_ALPN_V1	    "aerosync/1"

/* the UPLOAD line, terminator included, may not be longer than this */
#define AS_QUIC_FRAMING_MAX_LINE_SIZE 4096
/* "HASH:" + 64 hex digits + "\r\n" */
#define AS_QUIC_FRAMING_MAX_HASH_LINE_SIZE 71
/* everything before the body: a receiver never buffers more than this per stream */
#define AS_QUIC_FRAMING_MAX_HEADER_SIZE                                                            \
	(AS_QUIC_FRAMING_MAX_LINE_SIZE + AS_QUIC_FRAMING_MAX_HASH_LINE_SIZE)

/* replies travel on the same stream, followed by FIN */
#define AS_QUIC_REPLY_SUCCESS	   "SUCCESS"
#define AS_QUIC_REPLY_ERROR_PREFIX "ERROR:"
/* a sender reads at most this much reply */
#define AS_QUIC_REPLY_MAX_SIZE 4096

/**
 * AsQuicFramingResult:
 * @AS_QUIC_FRAMING_RESULT_ERROR: the header is malformed; the stream must be refused
 * @AS_QUIC_FRAMING_RESULT_NEED_MORE: the header is not complete yet: call again with more bytes
 * @AS_QUIC_FRAMING_RESULT_COMPLETE: the header is parsed; the body starts at *header_len
 **/
typedef enum {
	AS_QUIC_FRAMING_RESULT_ERROR,
	AS_QUIC_FRAMING_RESULT_NEED_MORE,
	AS_QUIC_FRAMING_RESULT_COMPLETE,
} AsQuicFramingResult;

/**
 * AsQuicUploadHeader:
 * @name: the file name exactly as sent (not confined: the receiver must sanitize it)
 * @size: the number of body bytes that follow the header
 * @token: (nullable): the auth token, %NULL when absent or empty
 * @receipt: (nullable): the 0.2+ receipt id, %NULL when absent or empty
 * @sha256: (nullable): the announced SHA-256 of the body in lower-case hex, or %NULL
 *
 * The header of one AeroSync 0.x upload stream:
 * `UPLOAD:<name>:<size>[:<token>[:<receipt>]]\n`, then optionally `HASH:<sha256hex>\n`.
 **/
typedef struct {
	gchar *name;
	guint64 size;
	gchar *token;
	gchar *receipt;
	gchar *sha256;
} AsQuicUploadHeader;

void as_quic_upload_header_clear(AsQuicUploadHeader *hdr);

AsQuicFramingResult as_quic_framing_parse_header(const guint8 *buf,
						 gsize len,
						 gboolean fin,
						 AsQuicUploadHeader *hdr,
						 gsize *header_len,
						 GError **error);
gchar *as_quic_framing_format_header(const gchar *name,
				     guint64 size,
				     const gchar *token,
				     const gchar *receipt,
				     const gchar *sha256,
				     GError **error);

gchar *as_quic_framing_error_message(const GError *error);
gchar *as_quic_framing_format_error_reply(const GError *error);
gboolean as_quic_framing_parse_reply(const gchar *reply, gsize len, GError **error);

G_END_DECLS
