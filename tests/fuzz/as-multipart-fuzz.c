/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "AsMultipartFuzz"

#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "as-multipart-parser.h"

/* input: one byte choosing the boundary, two bytes placing split points, then the body;
 * the body is parsed whole, in three pieces, and a byte at a time, and every way must
 * produce the same callbacks, the same data and the same outcome */

#define AS_FUZZ_MAX_PARTS	 64
#define AS_FUZZ_CONTENT_TYPE_MAX 256

static const gchar *as_fuzz_boundaries[] = {
	"AaB03x",
	"-",
	"0123456789012345678901234567890123456789012345678901234567890123456789",
};

typedef struct {
	GString *log;
	gboolean in_part;
} AsFuzzRecorder;

static gboolean
as_fuzz_part_begin_cb(gpointer user_data,
		      const gchar *name,
		      const gchar *filename,
		      const gchar *content_type,
		      GError **error)
{
	AsFuzzRecorder *rec = user_data;
	if (rec->in_part || name == NULL || !g_utf8_validate(name, -1, NULL) ||
	    (filename != NULL && !g_utf8_validate(filename, -1, NULL)))
		abort();
	rec->in_part = TRUE;
	g_string_append_printf(rec->log, "<begin %s|%s|%s>", name,
			       filename != NULL ? filename : "(null)",
			       content_type != NULL ? content_type : "(null)");
	return TRUE;
}

static gboolean
as_fuzz_part_data_cb(gpointer user_data, const guint8 *data, gsize len, GError **error)
{
	AsFuzzRecorder *rec = user_data;
	if (!rec->in_part || len == 0)
		abort();
	g_string_append_len(rec->log, (const gchar *)data, len);
	return TRUE;
}

static gboolean
as_fuzz_part_end_cb(gpointer user_data, GError **error)
{
	AsFuzzRecorder *rec = user_data;
	if (!rec->in_part)
		abort();
	rec->in_part = FALSE;
	g_string_append(rec->log, "<end>");
	return TRUE;
}

static const AsMultipartCallbacks as_fuzz_callbacks = {
	.part_begin = as_fuzz_part_begin_cb,
	.part_data = as_fuzz_part_data_cb,
	.part_end = as_fuzz_part_end_cb,
};

/* returns the log with the outcome appended; @piece 0 means cut at @splits, else feed
 * @piece bytes at a time */
static gchar *
as_fuzz_parse(const gchar *boundary,
	      const guint8 *data,
	      gsize len,
	      const gsize *splits,
	      guint n_splits,
	      gsize piece)
{
	AsFuzzRecorder rec = {.log = g_string_new(NULL)};
	g_autoptr(AsMultipartParser) parser =
		as_multipart_parser_new(boundary, &as_fuzz_callbacks, &rec);
	g_autoptr(GError) error = NULL;
	gboolean ok = TRUE;
	gsize pos = 0;

	as_multipart_parser_set_max_parts(parser, AS_FUZZ_MAX_PARTS);
	if (piece > 0) {
		for (; ok && pos < len; pos += piece)
			ok = as_multipart_parser_feed(parser, data + pos, MIN(piece, len - pos),
						      &error);
	} else {
		for (guint i = 0; ok && i <= n_splits; i++) {
			gsize next = i < n_splits ? splits[i] : len;
			ok = as_multipart_parser_feed(parser, data + pos, next - pos, &error);
			pos = next;
		}
	}
	if (ok)
		ok = as_multipart_parser_finish(parser, &error);
	if (ok == (error != NULL))
		abort();
	if (ok && rec.in_part)
		abort();
	g_string_append_printf(rec.log, "<result %d>", ok ? -1 : error->code);
	return g_string_free(rec.log, FALSE);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const gchar *boundary;
	const guint8 *body;
	gsize body_len;
	gsize splits[2];
	g_autofree gchar *whole = NULL;
	g_autofree gchar *split = NULL;
	g_autofree gchar *bytewise = NULL;
	g_autofree gchar *content_type = NULL;
	g_autofree gchar *parsed_boundary = NULL;

	if (size < 3)
		return 0;
	boundary = as_fuzz_boundaries[data[0] % G_N_ELEMENTS(as_fuzz_boundaries)];
	body = data + 3;
	body_len = size - 3;
	splits[0] = body_len * data[1] / 255;
	splits[1] = splits[0] + (body_len - splits[0]) * data[2] / 255;

	/* the first line doubles as a Content-Type header value */
	content_type = g_strndup((const gchar *)body, MIN(body_len, AS_FUZZ_CONTENT_TYPE_MAX));
	content_type[strcspn(content_type, "\r\n")] = '\0';
	parsed_boundary = as_multipart_boundary_from_content_type(content_type, NULL);
	if (parsed_boundary != NULL) {
		gsize blen = strlen(parsed_boundary);
		if (blen == 0 || blen > AS_MULTIPART_BOUNDARY_MAX)
			abort();
		as_multipart_parser_free(
			as_multipart_parser_new(parsed_boundary, &as_fuzz_callbacks, NULL));
	}

	whole = as_fuzz_parse(boundary, body, body_len, NULL, 0, 0);
	split = as_fuzz_parse(boundary, body, body_len, splits, G_N_ELEMENTS(splits), 0);
	if (strcmp(whole, split) != 0)
		abort();
	/* byte at a time is slow on big inputs; libFuzzer keeps most inputs small */
	if (body_len <= 4096) {
		bytewise = as_fuzz_parse(boundary, body, body_len, NULL, 0, 1);
		if (strcmp(whole, bytewise) != 0)
			abort();
	}
	return 0;
}
