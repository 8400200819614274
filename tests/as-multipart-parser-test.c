/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "AsMultipartParserTest"

#include "config.h"

#include <gnutls/crypto.h>
#include <string.h>

#include "as-error.h"
#include "as-multipart-parser.h"

#define AS_TEST_BOUNDARY "aerosync-7c1f0e2b9d"

/* records every callback as text so two parses can be compared byte for byte */
typedef struct {
	GString *log;
	guint n_data_calls;
	gsize max_slice;
	guint n_begin;
	guint n_end;
	gboolean in_part;
} AsTestRecorder;

static void
as_test_recorder_init(AsTestRecorder *rec)
{
	memset(rec, 0, sizeof(*rec));
	rec->log = g_string_new(NULL);
}

static void
as_test_recorder_clear(AsTestRecorder *rec)
{
	g_string_free(rec->log, TRUE);
	rec->log = NULL;
}

static gboolean
as_test_part_begin_cb(gpointer user_data,
		      const gchar *name,
		      const gchar *filename,
		      const gchar *content_type,
		      GError **error)
{
	AsTestRecorder *rec = user_data;
	g_assert_false(rec->in_part);
	g_assert_nonnull(name);
	rec->in_part = TRUE;
	rec->n_begin++;
	g_string_append_printf(rec->log, "<begin name=[%s] filename=[%s] type=[%s]>", name,
			       filename != NULL ? filename : "(null)",
			       content_type != NULL ? content_type : "(null)");
	return TRUE;
}

static gboolean
as_test_part_data_cb(gpointer user_data, const guint8 *data, gsize len, GError **error)
{
	AsTestRecorder *rec = user_data;
	g_assert_true(rec->in_part);
	g_assert_cmpuint(len, >, 0);
	rec->n_data_calls++;
	rec->max_slice = MAX(rec->max_slice, len);
	g_string_append_len(rec->log, (const gchar *)data, len);
	return TRUE;
}

static gboolean
as_test_part_end_cb(gpointer user_data, GError **error)
{
	AsTestRecorder *rec = user_data;
	g_assert_true(rec->in_part);
	rec->in_part = FALSE;
	rec->n_end++;
	g_string_append(rec->log, "<end>");
	return TRUE;
}

static const AsMultipartCallbacks as_test_callbacks = {
	.part_begin = as_test_part_begin_cb,
	.part_data = as_test_part_data_cb,
	.part_end = as_test_part_end_cb,
};

/* feeds @body in pieces cut at @splits (ascending offsets) and returns the log or NULL */
static gchar *
as_test_parse_split(const gchar *boundary,
		    const guint8 *body,
		    gsize len,
		    const gsize *splits,
		    guint n_splits,
		    GError **error)
{
	AsTestRecorder rec;
	g_autoptr(AsMultipartParser) parser = NULL;
	gsize pos = 0;
	gboolean ok = TRUE;

	as_test_recorder_init(&rec);
	parser = as_multipart_parser_new(boundary, &as_test_callbacks, &rec);
	for (guint i = 0; ok && i <= n_splits; i++) {
		gsize next = i < n_splits ? splits[i] : len;
		ok = as_multipart_parser_feed(parser, body + pos, next - pos, error);
		pos = next;
	}
	if (ok)
		ok = as_multipart_parser_finish(parser, error);
	if (!ok) {
		as_test_recorder_clear(&rec);
		return NULL;
	}
	g_assert_false(rec.in_part);
	return g_string_free(rec.log, FALSE);
}

static gchar *
as_test_parse(const gchar *body, GError **error)
{
	return as_test_parse_split(AS_TEST_BOUNDARY, (const guint8 *)body, strlen(body), NULL, 0,
				   error);
}

static gchar *
as_test_parse_bytewise(const guint8 *body, gsize len, GError **error)
{
	AsTestRecorder rec;
	g_autoptr(AsMultipartParser) parser = NULL;

	as_test_recorder_init(&rec);
	parser = as_multipart_parser_new(AS_TEST_BOUNDARY, &as_test_callbacks, &rec);
	for (gsize i = 0; i < len; i++) {
		if (!as_multipart_parser_feed(parser, body + i, 1, error)) {
			as_test_recorder_clear(&rec);
			return NULL;
		}
	}
	if (!as_multipart_parser_finish(parser, error)) {
		as_test_recorder_clear(&rec);
		return NULL;
	}
	return g_string_free(rec.log, FALSE);
}

/* the one-shot result must equal every 2-way split, every 3-way split and 1-byte feeding */
static void
as_test_check_all_splits(const gchar *body, const gchar *expected)
{
	gsize len = strlen(body);
	const guint8 *data = (const guint8 *)body;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *bytewise = NULL;

	for (gsize i = 0; i <= len; i++) {
		g_autofree gchar *log =
			as_test_parse_split(AS_TEST_BOUNDARY, data, len, &i, 1, &error);
		g_assert_no_error(error);
		g_assert_cmpstr(log, ==, expected);
	}
	for (gsize i = 0; i <= len; i++) {
		for (gsize j = i; j <= len; j++) {
			gsize splits[] = {i, j};
			g_autofree gchar *log =
				as_test_parse_split(AS_TEST_BOUNDARY, data, len, splits, 2, &error);
			g_assert_no_error(error);
			g_assert_cmpstr(log, ==, expected);
		}
	}
	bytewise = as_test_parse_bytewise(data, len, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(bytewise, ==, expected);
}

static void
as_multipart_simple_func(void)
{
	AsTestRecorder rec;
	g_autoptr(AsMultipartParser) parser = NULL;
	g_autoptr(GError) error = NULL;
	const gchar *body = "--" AS_TEST_BOUNDARY "\r\n"
			    "Content-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n"
			    "Content-Type: application/octet-stream\r\n"
			    "\r\n"
			    "hello world\r\n"
			    "--" AS_TEST_BOUNDARY "--\r\n";

	as_test_recorder_init(&rec);
	parser = as_multipart_parser_new(AS_TEST_BOUNDARY, &as_test_callbacks, &rec);
	g_assert_true(as_multipart_parser_feed(parser, (const guint8 *)body, strlen(body), &error));
	g_assert_no_error(error);
	g_assert_true(as_multipart_parser_finish(parser, &error));
	g_assert_no_error(error);
	g_assert_cmpstr(rec.log->str, ==,
			"<begin name=[file] filename=[a.txt] type=[application/octet-stream]>"
			"hello world<end>");
	/* one contiguous body slice when it arrives in one piece */
	g_assert_cmpuint(rec.n_data_calls, ==, 1);
	g_assert_cmpuint(as_multipart_parser_get_part_count(parser), ==, 1);
	as_test_recorder_clear(&rec);
	as_test_check_all_splits(body, "<begin name=[file] filename=[a.txt] "
				       "type=[application/octet-stream]>hello world<end>");
}

static void
as_multipart_multiple_func(void)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *log = NULL;
	const gchar *body = "This is the preamble, to be ignored. --" AS_TEST_BOUNDARY
			    "x is not a delimiter\r\n"
			    "--" AS_TEST_BOUNDARY "\r\n"
			    "content-disposition: form-data; name=field1\r\n"
			    "\r\n"
			    "value1\r\n"
			    "--" AS_TEST_BOUNDARY "  \t\r\n"
			    "Content-Disposition:form-data;name=\"empty\";filename=\"\"\r\n"
			    "X-Other: ignored\r\n"
			    "\r\n"
			    "\r\n"
			    "--" AS_TEST_BOUNDARY "\r\n"
			    "CONTENT-DISPOSITION: form-data; name=\"bin\"; filename=\"b.bin\"\r\n"
			    "content-type: image/png;\r\n"
			    " charset=binary\r\n"
			    "\r\n"
			    "\r\n\r\n--\r\n-" AS_TEST_BOUNDARY "\r\n"
			    "--" AS_TEST_BOUNDARY "--\r\n"
			    "epilogue --" AS_TEST_BOUNDARY "\r\n garbage";
	const gchar *expected =
		"<begin name=[field1] filename=[(null)] type=[(null)]>value1<end>"
		"<begin name=[empty] filename=[] type=[(null)]><end>"
		"<begin name=[bin] filename=[b.bin] type=[image/png; charset=binary]>"
		"\r\n\r\n--\r\n-" AS_TEST_BOUNDARY "<end>";

	/* the preamble mention is not at a line start, so it is not a delimiter */
	log = as_test_parse(body, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(log, ==, expected);
	as_test_check_all_splits(body, expected);
}

static void
as_multipart_filenames_func(void)
{
	struct {
		const gchar *disposition;
		const gchar *filename;
	} cases[] = {
		{"form-data; name=\"f\"; filename=\"a \\\"quoted\\\" name.txt\"",
		 "a \"quoted\" name.txt"},
		{"form-data; name=\"f\"; filename=\"back\\\\slash.txt\"", "back\\slash.txt"},
		/* browsers do not escape, so a lone backslash is kept */
		{"form-data; name=\"f\"; filename=\"C:\\dir\\x.txt\"", "C:\\dir\\x.txt"},
		{"form-data; name=\"f\"; filename=\"semi;colon = x.txt\"", "semi;colon = x.txt"},
		{"form-data; name=\"f\"; filename=\"\xe4\xbd\xa0\xe5\xa5\xbd.txt\"",
		 "\xe4\xbd\xa0\xe5\xa5\xbd.txt"},
		{"form-data; name=\"f\"; filename=\"plain.txt\"; "
		 "filename*=UTF-8''%E4%BD%A0%20x.txt",
		 "\xe4\xbd\xa0 x.txt"},
		{"form-data; name=\"f\"; filename*=utf-8'en'caf%C3%A9.txt; filename=\"cafe.txt\"",
		 "caf\xc3\xa9.txt"},
		{"form-data; name=\"f\"; filename*=ISO-8859-1''caf%E9.txt", "caf\xc3\xa9.txt"},
		/* a broken filename* falls back to filename */
		{"form-data; name=\"f\"; filename=\"ok.txt\"; filename*=UTF-8''%FF%FE", "ok.txt"},
		{"form-data; name=\"f\"; filename=\"ok.txt\"; filename*=KOI8-R''x", "ok.txt"},
		{"form-data; name=\"f\"; filename=\"ok.txt\"; filename*=UTF-8''a%00b", "ok.txt"},
		{"form-data; name=\"f\"; filename=unquoted.txt  ", "unquoted.txt"},
		{"form-data; NAME=\"f\"; FileName=\"case.txt\"", "case.txt"},
		{"form-data; name=\"f\"", NULL},
	};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(GError) error = NULL;
		g_autofree gchar *body =
			g_strdup_printf("--%s\r\nContent-Disposition: %s\r\n\r\n"
					"x\r\n--%s--",
					AS_TEST_BOUNDARY, cases[i].disposition, AS_TEST_BOUNDARY);
		g_autofree gchar *expected =
			g_strdup_printf("<begin name=[f] filename=[%s] type=[(null)]>x<end>",
					cases[i].filename != NULL ? cases[i].filename : "(null)");
		g_autofree gchar *log = as_test_parse(body, &error);
		g_assert_no_error(error);
		g_assert_cmpstr(log, ==, expected);
	}
}

static void
as_multipart_malformed_func(void)
{
	struct {
		const gchar *body;
		gint code;
	} cases[] = {
		{"--" AS_TEST_BOUNDARY "\r\n\r\nx\r\n--" AS_TEST_BOUNDARY "--",
		 AS_ERROR_INVALID_ARGUMENT},
		{"--" AS_TEST_BOUNDARY "\r\nContent-Disposition: form-data\r\n\r\nx",
		 AS_ERROR_INVALID_ARGUMENT},
		{"--" AS_TEST_BOUNDARY "\r\nContent-Disposition: form-data; filename=\"a\"\r\n\r\n",
		 AS_ERROR_INVALID_ARGUMENT},
		{"--" AS_TEST_BOUNDARY "\r\nContent-Disposition: form-data; name=\"a\r\n\r\n",
		 AS_ERROR_INVALID_ARGUMENT},
		{"--" AS_TEST_BOUNDARY "\r\nContent-Disposition: form-data; name=a; name=b\r\n\r\n",
		 AS_ERROR_INVALID_ARGUMENT},
		{"--" AS_TEST_BOUNDARY "\r\nContent-Disposition: form-data; name=a\r\n"
		 "Content-Disposition: form-data; name=b\r\n\r\n",
		 AS_ERROR_INVALID_ARGUMENT},
		{"--" AS_TEST_BOUNDARY "\r\nContent-Disposition: form-data; name\r\n\r\n",
		 AS_ERROR_INVALID_ARGUMENT},
		{"--" AS_TEST_BOUNDARY "\r\nno colon here\r\n\r\n", AS_ERROR_INVALID_ARGUMENT},
		{"--" AS_TEST_BOUNDARY "\r\nContent-Disposition: form-data; name=\"\xff\"\r\n\r\n",
		 AS_ERROR_INVALID_ARGUMENT},
		{"--" AS_TEST_BOUNDARY "\r\nContent-Disposition: form-data; name=x; "
		 "filename*=UTF-8''%FF\r\n\r\n",
		 AS_ERROR_INVALID_ARGUMENT},
		{"--" AS_TEST_BOUNDARY "x\r\n", AS_ERROR_INVALID_ARGUMENT},
		{"--" AS_TEST_BOUNDARY "-x", AS_ERROR_INVALID_ARGUMENT},
		{"--" AS_TEST_BOUNDARY "\rx", AS_ERROR_INVALID_ARGUMENT},
		{"--" AS_TEST_BOUNDARY " -\r\n", AS_ERROR_INVALID_ARGUMENT},
	};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(GError) error = NULL;
		g_autofree gchar *log = as_test_parse(cases[i].body, &error);
		g_assert_error(error, AS_ERROR, cases[i].code);
		g_assert_null(log);
	}
}

static void
as_multipart_tricky_body_func(void)
{
	/* bodies that contain every proper prefix of the delimiter, and a stray CR before it */
	const gchar *delim = "\r\n--" AS_TEST_BOUNDARY;
	gsize delim_len = strlen(delim);

	for (gsize k = 1; k < delim_len; k++) {
		g_autofree gchar *prefix = g_strndup(delim, k);
		g_autofree gchar *data = g_strdup_printf("A%sB%s%s\r", prefix, prefix, prefix);
		g_autofree gchar *body =
			g_strdup_printf("--%s\r\n"
					"Content-Disposition: form-data; name=t\r\n"
					"\r\n"
					"%s\r\n--%s--",
					AS_TEST_BOUNDARY, data, AS_TEST_BOUNDARY);
		g_autofree gchar *expected = g_strdup_printf(
			"<begin name=[t] filename=[(null)] type=[(null)]>%s<end>", data);
		as_test_check_all_splits(body, expected);
	}
}

static void
as_multipart_truncated_func(void)
{
	const gchar *full = "preamble\r\n--" AS_TEST_BOUNDARY "\r\n"
			    "Content-Disposition: form-data; name=\"file\"\r\n"
			    "\r\n"
			    "data\r\n"
			    "--" AS_TEST_BOUNDARY "--";
	gsize len = strlen(full);

	/* every proper prefix lacks the close delimiter */
	for (gsize i = 0; i < len; i++) {
		AsTestRecorder rec;
		g_autoptr(AsMultipartParser) parser = NULL;
		g_autoptr(GError) error = NULL;

		as_test_recorder_init(&rec);
		parser = as_multipart_parser_new(AS_TEST_BOUNDARY, &as_test_callbacks, &rec);
		g_assert_true(as_multipart_parser_feed(parser, (const guint8 *)full, i, &error));
		g_assert_no_error(error);
		g_assert_false(as_multipart_parser_finish(parser, &error));
		g_assert_error(error, AS_ERROR, AS_ERROR_INCOMPLETE);
		/* a delimiter that may still complete is never passed on as data */
		g_assert_null(g_strstr_len(rec.log->str, -1, "\r\n-"));
		as_test_recorder_clear(&rec);
	}
}

static void
as_multipart_headers_limit_func(void)
{
	const gsize prefix_len = strlen("Content-Disposition: form-data; name=x\r\nX-Pad: ");

	/* exactly the limit is fine, one byte more is not */
	for (guint extra = 0; extra <= 1; extra++) {
		g_autoptr(GString) body = g_string_new("--" AS_TEST_BOUNDARY "\r\n");
		g_autoptr(GError) error = NULL;
		g_autofree gchar *log = NULL;
		g_autofree gchar *bytewise = NULL;

		g_string_append(body, "Content-Disposition: form-data; name=x\r\nX-Pad: ");
		for (gsize i = prefix_len; i < AS_MULTIPART_HEADERS_MAX + extra; i++)
			g_string_append_c(body, 'p');
		g_string_append(body, "\r\n\r\nbody\r\n--" AS_TEST_BOUNDARY "--");
		log = as_test_parse(body->str, &error);
		bytewise = as_test_parse_bytewise((const guint8 *)body->str, body->len, NULL);
		if (extra == 0) {
			g_assert_no_error(error);
			g_assert_cmpstr(
				log, ==,
				"<begin name=[x] filename=[(null)] type=[(null)]>body<end>");
			g_assert_cmpstr(bytewise, ==, log);
		} else {
			g_assert_error(error, AS_ERROR, AS_ERROR_TOO_LARGE);
			g_assert_null(bytewise);
		}
	}
}

typedef struct {
	guint fail_at; /* 1 begin, 2 data, 3 end */
	guint calls;
} AsTestAbort;

static gboolean
as_test_abort_maybe(AsTestAbort *ab, guint which, GError **error)
{
	ab->calls++;
	if (ab->fail_at != which)
		return TRUE;
	g_set_error_literal(error, AS_ERROR, AS_ERROR_NO_SPACE, "disk full");
	return FALSE;
}

static gboolean
as_test_abort_begin_cb(gpointer user_data,
		       const gchar *name,
		       const gchar *filename,
		       const gchar *content_type,
		       GError **error)
{
	return as_test_abort_maybe(user_data, 1, error);
}

static gboolean
as_test_abort_data_cb(gpointer user_data, const guint8 *data, gsize len, GError **error)
{
	return as_test_abort_maybe(user_data, 2, error);
}

static gboolean
as_test_abort_end_cb(gpointer user_data, GError **error)
{
	AsTestAbort *ab = user_data;
	/* a callback may fail without an error; the parser then supplies one */
	if (ab->fail_at == 4) {
		ab->calls++;
		return FALSE;
	}
	return as_test_abort_maybe(user_data, 3, error);
}

static void
as_multipart_callback_abort_func(void)
{
	const AsMultipartCallbacks callbacks = {
		.part_begin = as_test_abort_begin_cb,
		.part_data = as_test_abort_data_cb,
		.part_end = as_test_abort_end_cb,
	};
	const gchar *body = "--" AS_TEST_BOUNDARY "\r\n"
			    "Content-Disposition: form-data; name=\"file\"\r\n"
			    "\r\n"
			    "data\r\n"
			    "--" AS_TEST_BOUNDARY "--";

	for (guint fail_at = 1; fail_at <= 4; fail_at++) {
		AsTestAbort ab = {.fail_at = fail_at};
		g_autoptr(AsMultipartParser) parser =
			as_multipart_parser_new(AS_TEST_BOUNDARY, &callbacks, &ab);
		g_autoptr(GError) error = NULL;
		guint calls;

		g_assert_false(as_multipart_parser_feed(parser, (const guint8 *)body, strlen(body),
							&error));
		if (fail_at == 4) {
			g_assert_error(error, AS_ERROR, AS_ERROR_FAILED);
		} else {
			g_assert_error(error, AS_ERROR, AS_ERROR_NO_SPACE);
			g_assert_cmpstr(error->message, ==, "disk full");
		}
		g_assert_cmpuint(ab.calls, ==, MIN(fail_at, 3));
		calls = ab.calls;
		g_clear_error(&error);

		/* sticky: every later call fails without calling back */
		g_assert_false(as_multipart_parser_feed(parser, (const guint8 *)"x", 1, &error));
		g_assert_nonnull(error);
		g_clear_error(&error);
		g_assert_false(as_multipart_parser_feed(parser, NULL, 0, &error));
		g_assert_nonnull(error);
		g_clear_error(&error);
		g_assert_false(as_multipart_parser_finish(parser, &error));
		g_assert_nonnull(error);
		g_assert_cmpuint(ab.calls, ==, calls);
	}
}

static void
as_multipart_max_parts_func(void)
{
	g_autoptr(GString) body = g_string_new(NULL);

	for (guint i = 0; i < 5; i++) {
		g_string_append_printf(
			body, "--%s\r\nContent-Disposition: form-data; name=p%u\r\n\r\nv\r\n",
			AS_TEST_BOUNDARY, i);
	}
	g_string_append(body, "--" AS_TEST_BOUNDARY "--");

	for (guint max = 4; max <= 5; max++) {
		AsTestRecorder rec;
		g_autoptr(AsMultipartParser) parser = NULL;
		g_autoptr(GError) error = NULL;
		gboolean ok;

		as_test_recorder_init(&rec);
		parser = as_multipart_parser_new(AS_TEST_BOUNDARY, &as_test_callbacks, &rec);
		as_multipart_parser_set_max_parts(parser, max);
		ok = as_multipart_parser_feed(parser, (const guint8 *)body->str, body->len, &error);
		if (ok)
			ok = as_multipart_parser_finish(parser, &error);
		if (max == 4) {
			g_assert_error(error, AS_ERROR, AS_ERROR_TOO_LARGE);
			g_assert_false(ok);
			g_assert_cmpuint(rec.n_begin, ==, 4);
		} else {
			g_assert_no_error(error);
			g_assert_true(ok);
			g_assert_cmpuint(rec.n_begin, ==, 5);
			g_assert_cmpuint(rec.n_end, ==, 5);
		}
		as_test_recorder_clear(&rec);
	}
}

static void
as_multipart_no_parts_func(void)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *log = NULL;

	log = as_test_parse("--" AS_TEST_BOUNDARY "--", &error);
	g_assert_no_error(error);
	g_assert_cmpstr(log, ==, "");
	g_clear_pointer(&log, g_free);

	log = as_test_parse("", &error);
	g_assert_error(error, AS_ERROR, AS_ERROR_INCOMPLETE);
	g_assert_null(log);
	g_clear_error(&error);

	log = as_test_parse("no boundary at all\r\n--other--", &error);
	g_assert_error(error, AS_ERROR, AS_ERROR_INCOMPLETE);
	g_assert_null(log);
}

static void
as_multipart_boundary_func(void)
{
	struct {
		const gchar *content_type;
		const gchar *boundary;
	} cases[] = {
		{"multipart/form-data; boundary=abc", "abc"},
		{"Multipart/Form-Data;BOUNDARY=\"a b:c\"", "a b:c"},
		{"multipart/form-data; charset=utf-8; Boundary=\"----WebKitFormBoundaryx7\"",
		 "----WebKitFormBoundaryx7"},
		{"multipart/form-data; boundary=------------------------d74496d66958873e ",
		 "------------------------d74496d66958873e"},
		{"multipart/form-data; "
		 "boundary=\"0123456789012345678901234567890123456789012345678901"
		 "234567890123456789\"",
		 "0123456789012345678901234567890123456789012345678901234567890123456789"},
		{"multipart/form-data; "
		 "boundary=\"01234567890123456789012345678901234567890123456789"
		 "012345678901234567890\"",
		 NULL},
		{"multipart/form-data; boundary=\"\"", NULL},
		{"multipart/form-data; boundary=\"ends with space \"", NULL},
		{"multipart/form-data; boundary=\"bad\\\"quote\"", NULL},
		{"multipart/form-data; boundary=\"cr\rlf\"", NULL},
		{"multipart/form-data; boundary=a; boundary=b", NULL},
		{"multipart/form-data", NULL},
		{"multipart/mixed; boundary=abc", NULL},
		{"application/json", NULL},
		{"multipart/form-data; boundary", NULL},
		{"multipart/form-data; boundary=\"unterminated", NULL},
		{NULL, NULL},
	};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(GError) error = NULL;
		g_autofree gchar *boundary =
			as_multipart_boundary_from_content_type(cases[i].content_type, &error);
		if (cases[i].boundary != NULL) {
			g_assert_no_error(error);
			g_assert_cmpstr(boundary, ==, cases[i].boundary);
		} else {
			g_assert_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT);
			g_assert_null(boundary);
		}
	}
}

/* random bodies built from an alphabet rich in delimiter pieces, with the expected log built
 * alongside: an oracle that does not depend on the parser */
static void
as_multipart_random_func(void)
{
	const gchar *alphabet[] = {"\r",       "\n",
				   "-",	       "--",
				   "\r\n",     "\r\n--",
				   "x",	       AS_TEST_BOUNDARY,
				   "aerosync", "\r\n--aerosync-7c1f0e2b9"};
	const gchar *delim = "\r\n--" AS_TEST_BOUNDARY;
	g_autoptr(GRand) rand = g_rand_new_with_seed(0x5eed);

	for (guint iter = 0; iter < 300; iter++) {
		g_autoptr(GString) body = g_string_new(NULL);
		g_autoptr(GString) expected = g_string_new(NULL);
		g_autoptr(GError) error = NULL;
		g_autofree gchar *bytewise = NULL;
		guint n_parts = g_rand_int_range(rand, 0, 5);

		if (g_rand_boolean(rand))
			g_string_append(body, "preamble\r\n");
		for (guint p = 0; p < n_parts; p++) {
			g_autoptr(GString) data = g_string_new(NULL);
			guint n_pieces = g_rand_int_range(rand, 0, 40);

			for (guint i = 0; i < n_pieces; i++) {
				g_string_append(data, alphabet[g_rand_int_range(
							      rand, 0, G_N_ELEMENTS(alphabet))]);
			}
			/* break any accidental full delimiter */
			for (gchar *hit = g_strstr_len(data->str, -1, delim); hit != NULL;
			     hit = g_strstr_len(data->str, -1, delim))
				hit[2] = '_';
			g_string_append_printf(
				body,
				"--%s\r\nContent-Disposition: form-data; name=\"p%u\""
				"\r\n\r\n%s\r\n",
				AS_TEST_BOUNDARY, p, data->str);
			g_string_append_printf(expected,
					       "<begin name=[p%u] filename=[(null)] type=[(null)]>"
					       "%s<end>",
					       p, data->str);
		}
		g_string_append(body, "--" AS_TEST_BOUNDARY "--\r\n");

		for (guint trial = 0; trial < 20; trial++) {
			gsize splits[8];
			g_autofree gchar *log = NULL;
			for (guint i = 0; i < G_N_ELEMENTS(splits); i++)
				splits[i] = g_rand_int_range(rand, 0, body->len + 1);
			/* ascending offsets */
			for (guint i = 1; i < G_N_ELEMENTS(splits); i++) {
				for (guint j = i; j > 0 && splits[j - 1] > splits[j]; j--) {
					gsize tmp = splits[j];
					splits[j] = splits[j - 1];
					splits[j - 1] = tmp;
				}
			}
			log = as_test_parse_split(AS_TEST_BOUNDARY, (const guint8 *)body->str,
						  body->len, splits, G_N_ELEMENTS(splits), &error);
			g_assert_no_error(error);
			g_assert_cmpstr(log, ==, expected->str);
		}
		bytewise = as_test_parse_bytewise((const guint8 *)body->str, body->len, &error);
		g_assert_no_error(error);
		g_assert_cmpstr(bytewise, ==, expected->str);
	}
}

/* a 64 MiB body produced and fed piecewise, never held whole: the part data must hash the same */
#define AS_TEST_BIG_SIZE  (64 * 1024 * 1024)
#define AS_TEST_GEN_CHUNK (1024 * 1024)

typedef struct {
	gnutls_hash_hd_t hash;
	guint64 bytes;
	guint n_data_calls;
	guint n_parts;
	gboolean ended;
} AsTestBig;

static gboolean
as_test_big_begin_cb(gpointer user_data,
		     const gchar *name,
		     const gchar *filename,
		     const gchar *content_type,
		     GError **error)
{
	AsTestBig *big = user_data;
	g_assert_cmpstr(name, ==, "file");
	g_assert_cmpstr(filename, ==, "big.bin");
	big->n_parts++;
	return TRUE;
}

static gboolean
as_test_big_data_cb(gpointer user_data, const guint8 *data, gsize len, GError **error)
{
	AsTestBig *big = user_data;
	g_assert_cmpint(gnutls_hash(big->hash, data, len), ==, 0);
	big->bytes += len;
	big->n_data_calls++;
	return TRUE;
}

static gboolean
as_test_big_end_cb(gpointer user_data, GError **error)
{
	AsTestBig *big = user_data;
	big->ended = TRUE;
	return TRUE;
}

static guint64
as_test_xorshift(guint64 *state)
{
	guint64 x = *state;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*state = x;
	return x * G_GUINT64_CONSTANT(2685821657736338717);
}

static void
as_test_feed_randomly(
	AsMultipartParser *parser, GRand *rand, const guint8 *data, gsize len, guint *n_feeds)
{
	gsize pos = 0;

	while (pos < len) {
		g_autoptr(GError) error = NULL;
		/* mostly the daemon's 8 KiB pieces, sometimes odd sizes */
		gsize piece = g_rand_int_range(rand, 0, 4) == 0
				      ? (gsize)g_rand_int_range(rand, 1, 20000)
				      : 8192;
		piece = MIN(piece, len - pos);
		g_assert_true(as_multipart_parser_feed(parser, data + pos, piece, &error));
		g_assert_no_error(error);
		pos += piece;
		(*n_feeds)++;
	}
}

static void
as_multipart_big_func(void)
{
	const AsMultipartCallbacks callbacks = {
		.part_begin = as_test_big_begin_cb,
		.part_data = as_test_big_data_cb,
		.part_end = as_test_big_end_cb,
	};
	const gchar *head =
		"--" AS_TEST_BOUNDARY "\r\n"
		"Content-Disposition: form-data; name=\"file\"; filename=\"big.bin\"\r\n"
		"Content-Type: application/octet-stream\r\n\r\n";
	const gchar *tail = "\r\n--" AS_TEST_BOUNDARY "--\r\n";
	const gchar *delim = "\r\n--" AS_TEST_BOUNDARY;
	AsTestBig big = {0};
	gnutls_hash_hd_t expected_hash;
	guint8 expected[32];
	guint8 actual[32];
	guint64 state = 0x9e3779b97f4a7c15;
	guint n_feeds = 0;
	guint n_traps = 0;
	g_autofree guint8 *chunk = g_malloc(AS_TEST_GEN_CHUNK);
	g_autoptr(GRand) rand = g_rand_new_with_seed(42);
	g_autoptr(AsMultipartParser) parser = NULL;
	g_autoptr(GError) error = NULL;

	g_assert_cmpint(gnutls_hash_init(&expected_hash, GNUTLS_DIG_SHA256), ==, 0);
	g_assert_cmpint(gnutls_hash_init(&big.hash, GNUTLS_DIG_SHA256), ==, 0);
	parser = as_multipart_parser_new(AS_TEST_BOUNDARY, &callbacks, &big);

	as_test_feed_randomly(parser, rand, (const guint8 *)head, strlen(head), &n_feeds);
	for (gsize done = 0; done < AS_TEST_BIG_SIZE; done += AS_TEST_GEN_CHUNK) {
		for (gsize i = 0; i < AS_TEST_GEN_CHUNK; i += 8) {
			guint64 v = as_test_xorshift(&state);
			memcpy(chunk + i, &v, 8);
		}
		/* near-miss delimiters every 64 KiB, some cut by the chunk end */
		for (gsize off = 65521; off + 8 < AS_TEST_GEN_CHUNK; off += 65536) {
			gsize k =
				1 + (off / 65536 + done / AS_TEST_GEN_CHUNK) % (strlen(delim) - 1);
			gsize n = MIN(k, AS_TEST_GEN_CHUNK - off - 1);
			memcpy(chunk + off, delim, n);
			/* 'X' is not in the boundary, so the prefix cannot complete by chance */
			chunk[off + n] = 'X';
			n_traps++;
		}
		memcpy(chunk + AS_TEST_GEN_CHUNK - 5, delim, 5);
		g_assert_cmpint(gnutls_hash(expected_hash, chunk, AS_TEST_GEN_CHUNK), ==, 0);
		as_test_feed_randomly(parser, rand, chunk, AS_TEST_GEN_CHUNK, &n_feeds);
	}
	as_test_feed_randomly(parser, rand, (const guint8 *)tail, strlen(tail), &n_feeds);
	g_assert_true(as_multipart_parser_finish(parser, &error));
	g_assert_no_error(error);

	gnutls_hash_deinit(expected_hash, expected);
	gnutls_hash_deinit(big.hash, actual);
	g_assert_cmpuint(big.bytes, ==, AS_TEST_BIG_SIZE);
	g_assert_cmpuint(big.n_parts, ==, 1);
	g_assert_true(big.ended);
	g_assert_cmpmem(actual, sizeof(actual), expected, sizeof(expected));
	/* slices are as large as the feeds allow: at most one extra per held-back prefix */
	g_assert_cmpuint(big.n_data_calls, <=,
			 n_feeds + n_traps + AS_TEST_BIG_SIZE / AS_TEST_GEN_CHUNK);
	g_test_message("%u feeds, %u part_data calls", n_feeds, big.n_data_calls);
}

static gboolean
as_test_count_data_cb(gpointer user_data, const guint8 *data, gsize len, GError **error)
{
	guint64 *total = user_data;
	*total += len;
	return TRUE;
}

static void
as_multipart_perf_func(void)
{
	const AsMultipartCallbacks callbacks = {.part_data = as_test_count_data_cb};
	const gsize buf_size = 8 * 1024 * 1024;
	const guint64 total_size = G_GUINT64_CONSTANT(4) * 1024 * 1024 * 1024;
	const gchar *head = "--" AS_TEST_BOUNDARY "\r\n"
			    "Content-Disposition: form-data; name=\"file\"\r\n\r\n";
	g_autofree guint8 *buf = g_malloc(buf_size);
	g_autoptr(AsMultipartParser) parser = NULL;
	g_autoptr(GTimer) timer = NULL;
	guint64 state = 1;
	guint64 received = 0;
	gdouble secs;

	if (!g_test_perf()) {
		g_test_skip("only with -m perf");
		return;
	}
	for (gsize i = 0; i < buf_size; i += 8) {
		guint64 v = as_test_xorshift(&state);
		memcpy(buf + i, &v, 8);
	}
	parser = as_multipart_parser_new(AS_TEST_BOUNDARY, &callbacks, &received);
	g_assert_true(as_multipart_parser_feed(parser, (const guint8 *)head, strlen(head), NULL));
	timer = g_timer_new();
	for (guint64 done = 0; done < total_size; done += buf_size) {
		for (gsize off = 0; off < buf_size; off += 8192)
			g_assert_true(as_multipart_parser_feed(parser, buf + off, 8192, NULL));
	}
	secs = g_timer_elapsed(timer, NULL);
	g_assert_cmpuint(received + 73, >=, total_size);
	g_test_minimized_result(secs, "%.2f GB/s in 8 KiB feeds", total_size / secs / 1e9);
}

typedef struct {
	GString *seen;
} AsTestHeaders;

static gboolean
as_test_header_cb(gpointer user_data, const gchar *name, const gchar *value, GError **error)
{
	AsTestHeaders *h = user_data;
	g_string_append_printf(h->seen, "%s=%s;", name, value);
	return TRUE;
}

static gboolean
as_test_header_begin_cb(gpointer user_data,
			const gchar *name,
			const gchar *filename,
			const gchar *content_type,
			GError **error)
{
	AsTestHeaders *h = user_data;
	g_string_append_printf(h->seen, "begin:%s|", name);
	return TRUE;
}

/* every header line reaches part_header before part_begin, e.g. a batch file's X-File-Hash */
static void
as_test_part_header(void)
{
	const gchar *body = "--b\r\n"
			    "Content-Disposition: form-data; name=\"a/x.txt\"\r\n"
			    "X-File-Hash:   ABC123\r\n"
			    "\r\n"
			    "hello\r\n"
			    "--b--\r\n";
	AsMultipartCallbacks cb = {.part_begin = as_test_header_begin_cb,
				   .part_header = as_test_header_cb};
	AsTestHeaders h = {g_string_new(NULL)};
	g_autoptr(AsMultipartParser) parser = as_multipart_parser_new("b", &cb, &h);
	g_autoptr(GError) error = NULL;

	g_assert_true(as_multipart_parser_feed(parser, (const guint8 *)body, strlen(body), &error));
	g_assert_no_error(error);
	g_assert_true(as_multipart_parser_finish(parser, &error));
	g_assert_cmpstr(h.seen->str, ==,
			"Content-Disposition=form-data; "
			"name=\"a/x.txt\";X-File-Hash=ABC123;begin:a/x.txt|");
	g_string_free(h.seen, TRUE);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/aerosync/multipart/part-header", as_test_part_header);
	g_test_add_func("/aerosync/multipart/simple", as_multipart_simple_func);
	g_test_add_func("/aerosync/multipart/multiple", as_multipart_multiple_func);
	g_test_add_func("/aerosync/multipart/filenames", as_multipart_filenames_func);
	g_test_add_func("/aerosync/multipart/malformed", as_multipart_malformed_func);
	g_test_add_func("/aerosync/multipart/tricky-body", as_multipart_tricky_body_func);
	g_test_add_func("/aerosync/multipart/truncated", as_multipart_truncated_func);
	g_test_add_func("/aerosync/multipart/headers-limit", as_multipart_headers_limit_func);
	g_test_add_func("/aerosync/multipart/callback-abort", as_multipart_callback_abort_func);
	g_test_add_func("/aerosync/multipart/max-parts", as_multipart_max_parts_func);
	g_test_add_func("/aerosync/multipart/no-parts", as_multipart_no_parts_func);
	g_test_add_func("/aerosync/multipart/boundary", as_multipart_boundary_func);
	g_test_add_func("/aerosync/multipart/random", as_multipart_random_func);
	g_test_add_func("/aerosync/multipart/big", as_multipart_big_func);
	g_test_add_func("/aerosync/multipart/perf", as_multipart_perf_func);
	return g_test_run();
}
