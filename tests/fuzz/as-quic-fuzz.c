/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "AsQuicFuzz"

#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "as-quic-framing.h"
#include "as-quic-v2.h"
#include "as-sha256.h"

/* input: one mode byte, then the bytes of a QUIC stream.
 * even mode: the 0.x UPLOAD/HASH header parser, on the whole input (with or without FIN) and on
 *   growing prefixes as the server feeds it; a prefix may only need more or agree with the
 *   whole input, and a parsed header must describe what it consumed.
 * odd mode: the aerosync/2 frame decoder, frame after frame as a receiver (bit 1: as a sender)
 *   reads them; every decoded frame must encode back to the same bytes, and every proper prefix
 *   of it must need more. */

#define AS_FUZZ_PREFIX_STEPS 8

static void
as_fuzz_check_header(const AsQuicUploadHeader *hdr, gsize header_len, gsize len)
{
	if (header_len == 0 || header_len > len || header_len > AS_QUIC_FRAMING_MAX_HEADER_SIZE)
		abort();
	if (hdr->name == NULL || hdr->name[0] == '\0')
		abort();
	if (hdr->sha256 != NULL && !as_sha256_hex_is_valid(hdr->sha256))
		abort();
}

static void
as_fuzz_v1(const guint8 *data, gsize len, gboolean fin)
{
	AsQuicUploadHeader whole = {0};
	gsize whole_len = 0;
	AsQuicFramingResult rc_whole;
	gsize step;

	rc_whole = as_quic_framing_parse_header(data, len, fin, &whole, &whole_len, NULL);
	if (rc_whole == AS_QUIC_FRAMING_RESULT_COMPLETE)
		as_fuzz_check_header(&whole, whole_len, len);

	/* the server grows its buffer as packets come; each partial view must stay consistent */
	step = MAX(len / AS_FUZZ_PREFIX_STEPS, 1);
	for (gsize n = 0; n < len; n += step) {
		AsQuicUploadHeader part = {0};
		gsize part_len = 0;
		AsQuicFramingResult rc =
			as_quic_framing_parse_header(data, n, FALSE, &part, &part_len, NULL);
		if (rc == AS_QUIC_FRAMING_RESULT_COMPLETE) {
			as_fuzz_check_header(&part, part_len, n);
			/* more bytes cannot change a header that was already complete */
			if (rc_whole != AS_QUIC_FRAMING_RESULT_COMPLETE || part_len != whole_len ||
			    part.size != whole.size || g_strcmp0(part.name, whole.name) != 0 ||
			    g_strcmp0(part.sha256, whole.sha256) != 0)
				abort();
		}
		if (rc == AS_QUIC_FRAMING_RESULT_ERROR && rc_whole != AS_QUIC_FRAMING_RESULT_ERROR)
			abort();
		as_quic_upload_header_clear(&part);
	}
	as_quic_upload_header_clear(&whole);
}

static void
as_fuzz_v2(const guint8 *data, gsize len, gsize max_payload)
{
	while (len > 0) {
		AsQuicV2Msg msg = {0};
		gsize frame_len = 0;
		g_autoptr(GByteArray) again = NULL;
		AsQuicFramingResult rc;

		rc = as_quic_v2_decode(data, len, max_payload, &msg, &frame_len, NULL);
		if (rc != AS_QUIC_FRAMING_RESULT_COMPLETE)
			return;
		if (frame_len < AS_QUIC_V2_FRAME_HEADER_SIZE || frame_len > len ||
		    frame_len > AS_QUIC_V2_FRAME_HEADER_SIZE + max_payload)
			abort();
		/* what was accepted is canonical: it writes back byte for byte */
		again = as_quic_v2_encode(&msg, NULL);
		if (again == NULL || again->len != frame_len ||
		    memcmp(again->data, data, frame_len) != 0)
			abort();
		for (gsize i = 0; i < AS_FUZZ_PREFIX_STEPS; i++) {
			AsQuicV2Msg part = {0};
			gsize part_len = 0;
			gsize n = frame_len * i / AS_FUZZ_PREFIX_STEPS;
			if (as_quic_v2_decode(data, n, max_payload, &part, &part_len, NULL) !=
			    AS_QUIC_FRAMING_RESULT_NEED_MORE)
				abort();
		}
		as_quic_v2_msg_clear(&msg);
		data += frame_len;
		len -= frame_len;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	guint8 mode;

	if (size < 1)
		return 0;
	mode = data[0];
	data++;
	size--;
	if ((mode & 1) == 0)
		as_fuzz_v1(data, size, (mode & 2) != 0);
	else
		as_fuzz_v2(data, size,
			   (mode & 2) != 0 ? AS_QUIC_V2_MAX_SERVER_PAYLOAD
					   : AS_QUIC_V2_MAX_CLIENT_PAYLOAD);
	return 0;
}
