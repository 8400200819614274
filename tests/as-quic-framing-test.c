/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <string.h>

#include "as-error.h"
#include "as-quic-framing.h"

#define HASH_HEX       "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
#define HASH_HEX_UPPER "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD"

/* feeds @stream in slices of @step bytes the way a receiver accumulates a header, and returns
 * the final state with the header and where the body starts */
static AsQuicFramingResult
parse_in_steps(const gchar *stream,
	       gsize len,
	       gsize step,
	       AsQuicUploadHeader *hdr,
	       gsize *header_len,
	       GError **error)
{
	gsize have = 0;

	for (;;) {
		AsQuicFramingResult rc;
		gboolean fin;

		have = MIN(have + step, len);
		fin = have == len;
		rc = as_quic_framing_parse_header((const guint8 *)stream, have, fin, hdr,
						  header_len, error);
		if (rc != AS_QUIC_FRAMING_RESULT_NEED_MORE)
			return rc;
		g_assert_false(fin);
	}
}

static void
as_quic_framing_basic_func(void)
{
	AsQuicUploadHeader hdr = {NULL};
	g_autoptr(GError) error = NULL;
	const gchar *stream = "UPLOAD:a.txt:5\nhello";
	gsize header_len = 0;
	AsQuicFramingResult rc;

	rc = as_quic_framing_parse_header((const guint8 *)stream, strlen(stream), FALSE, &hdr,
					  &header_len, &error);
	g_assert_no_error(error);
	g_assert_cmpint(rc, ==, AS_QUIC_FRAMING_RESULT_COMPLETE);
	g_assert_cmpstr(hdr.name, ==, "a.txt");
	g_assert_cmpuint(hdr.size, ==, 5);
	g_assert_null(hdr.token);
	g_assert_null(hdr.receipt);
	g_assert_null(hdr.sha256);
	g_assert_cmpuint(header_len, ==, strlen("UPLOAD:a.txt:5\n"));
	g_assert_cmpmem(stream + header_len, 5, "hello", 5);
	as_quic_upload_header_clear(&hdr);
	g_assert_null(hdr.name);
}

static void
as_quic_framing_fields_func(void)
{
	struct {
		const gchar *stream;
		const gchar *name;
		guint64 size;
		const gchar *token;
		const gchar *receipt;
	} cases[] = {
		{"UPLOAD:f:0:tok\n", "f", 0, "tok", NULL},
		{"UPLOAD:f:1:tok:rcpt\nX", "f", 1, "tok", "rcpt"},
		/* 0.2+: an empty token field before the receipt */
		{"UPLOAD:f:1::rcpt\nX", "f", 1, NULL, "rcpt"},
		/* the receipt keeps further colons, like 0.x splitn(5) */
		{"UPLOAD:f:1:t:r:s\nX", "f", 1, "t", "r:s"},
		{"UPLOAD:f:18446744073709551615\n", "f", G_MAXUINT64, NULL, NULL},
		{"UPLOAD:f:3\r\nabc", "f", 3, NULL, NULL},
		{"UPLOAD:dir/ü.bin:2:\nab", "dir/ü.bin", 2, NULL, NULL},
	};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		AsQuicUploadHeader hdr = {NULL};
		g_autoptr(GError) error = NULL;
		gsize header_len = 0;
		AsQuicFramingResult rc;

		rc = parse_in_steps(cases[i].stream, strlen(cases[i].stream),
				    strlen(cases[i].stream), &hdr, &header_len, &error);
		g_assert_no_error(error);
		g_assert_cmpint(rc, ==, AS_QUIC_FRAMING_RESULT_COMPLETE);
		g_assert_cmpstr(hdr.name, ==, cases[i].name);
		g_assert_cmpuint(hdr.size, ==, cases[i].size);
		g_assert_cmpstr(hdr.token, ==, cases[i].token);
		g_assert_cmpstr(hdr.receipt, ==, cases[i].receipt);
		g_assert_cmpuint(header_len, ==,
				 strchr(cases[i].stream, '\n') - cases[i].stream + 1);
		as_quic_upload_header_clear(&hdr);
	}
}

static void
as_quic_framing_hash_func(void)
{
	/* the HASH line is consumed, lower-cased and never part of the body, whether the header
	 * arrives byte by byte, in odd slices, or together with the body */
	const gchar *streams[] = {
		"UPLOAD:f:3:tok\nHASH:" HASH_HEX "\nabc",
		"UPLOAD:f:3:tok\nHASH:" HASH_HEX_UPPER "\r\nabc",
	};

	for (guint i = 0; i < G_N_ELEMENTS(streams); i++) {
		gsize len = strlen(streams[i]);
		for (gsize step = 1; step <= len; step++) {
			AsQuicUploadHeader hdr = {NULL};
			g_autoptr(GError) error = NULL;
			gsize header_len = 0;
			AsQuicFramingResult rc;

			rc = parse_in_steps(streams[i], len, step, &hdr, &header_len, &error);
			g_assert_no_error(error);
			g_assert_cmpint(rc, ==, AS_QUIC_FRAMING_RESULT_COMPLETE);
			g_assert_cmpstr(hdr.sha256, ==, HASH_HEX);
			g_assert_cmpstr(hdr.token, ==, "tok");
			g_assert_cmpuint(len - header_len, ==, 3);
			g_assert_cmpmem(streams[i] + header_len, 3, "abc", 3);
			as_quic_upload_header_clear(&hdr);
		}
	}
}

static void
as_quic_framing_hash_split_func(void)
{
	const gchar *stream = "UPLOAD:f:2\nHASH:" HASH_HEX "\nxy";
	gsize line_len = strlen("UPLOAD:f:2\n");
	AsQuicUploadHeader hdr = {NULL};
	g_autoptr(GError) error = NULL;
	gsize header_len = 0;
	AsQuicFramingResult rc;

	/* a HASH line cut anywhere is not decided until it is complete */
	for (gsize cut = line_len; cut < line_len + 70; cut++) {
		rc = as_quic_framing_parse_header((const guint8 *)stream, cut, FALSE, &hdr,
						  &header_len, &error);
		g_assert_no_error(error);
		g_assert_cmpint(rc, ==, AS_QUIC_FRAMING_RESULT_NEED_MORE);
		g_assert_cmpuint(header_len, ==, 0);
	}
	rc = as_quic_framing_parse_header((const guint8 *)stream, line_len + 70, FALSE, &hdr,
					  &header_len, &error);
	g_assert_no_error(error);
	g_assert_cmpint(rc, ==, AS_QUIC_FRAMING_RESULT_COMPLETE);
	g_assert_cmpuint(header_len, ==, line_len + 70);
	g_assert_cmpstr(hdr.sha256, ==, HASH_HEX);
	as_quic_upload_header_clear(&hdr);
}

static void
as_quic_framing_body_like_hash_func(void)
{
	struct {
		const gchar *stream;
		gboolean fin;
		gsize body_len;
	} cases[] = {
		/* body starts like a HASH line but is not one */
		{"UPLOAD:f:9\nHASH:nope", FALSE, 9},
		{"UPLOAD:f:6\nHASHES", FALSE, 6},
		{"UPLOAD:f:70\nHASH:" HASH_HEX "X", FALSE, 70},
		/* a short body that is a prefix of "HASH:" is body at FIN */
		{"UPLOAD:f:3\nHAS", TRUE, 3},
		{"UPLOAD:f:0\n", TRUE, 0},
		{"UPLOAD:f:4\nbody", FALSE, 4},
	};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		AsQuicUploadHeader hdr = {NULL};
		g_autoptr(GError) error = NULL;
		gsize header_len = 0;
		gsize len = strlen(cases[i].stream);
		AsQuicFramingResult rc;

		rc = as_quic_framing_parse_header((const guint8 *)cases[i].stream, len,
						  cases[i].fin, &hdr, &header_len, &error);
		g_assert_no_error(error);
		g_assert_cmpint(rc, ==, AS_QUIC_FRAMING_RESULT_COMPLETE);
		g_assert_null(hdr.sha256);
		g_assert_cmpuint(len - header_len, ==, cases[i].body_len);
		as_quic_upload_header_clear(&hdr);
	}
}

static void
as_quic_framing_malformed_func(void)
{
	const gchar *bad[] = {
		"DOWNLOAD:f\n",
		"GET / HTTP/1.1\r\n",
		"UPLOAD:\n",
		"UPLOAD:f\n",
		"UPLOAD::5\n",
		"UPLOAD:f:\n",
		"UPLOAD:f:-1\n",
		"UPLOAD:f:+1\n",
		"UPLOAD:f: 1\n",
		"UPLOAD:f:0x10\n",
		"UPLOAD:f:18446744073709551616\n",
		"UPLOAD:f:123456789012345678901\n",
		"UPLOAD:f\tg:1\n",
		"UPLOAD:f:1:tok\x01\n",
		"UPLOAD:\xff\xfe:1\n",
	};

	for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
		AsQuicUploadHeader hdr = {NULL};
		g_autoptr(GError) error = NULL;
		gsize header_len = 0;
		AsQuicFramingResult rc;

		rc = as_quic_framing_parse_header((const guint8 *)bad[i], strlen(bad[i]), FALSE,
						  &hdr, &header_len, &error);
		g_assert_cmpint(rc, ==, AS_QUIC_FRAMING_RESULT_ERROR);
		g_assert_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT);
		g_assert_null(hdr.name);
	}
}

static void
as_quic_framing_early_reject_func(void)
{
	AsQuicUploadHeader hdr = {NULL};
	g_autoptr(GError) error = NULL;
	g_autofree gchar *long_line = NULL;
	gsize header_len = 0;
	AsQuicFramingResult rc;

	/* a wrong protocol is refused from its first bytes, without waiting for a newline */
	rc = as_quic_framing_parse_header((const guint8 *)"GET", 3, FALSE, &hdr, &header_len,
					  &error);
	g_assert_cmpint(rc, ==, AS_QUIC_FRAMING_RESULT_ERROR);
	g_clear_error(&error);

	/* a prefix of UPLOAD: waits */
	rc = as_quic_framing_parse_header((const guint8 *)"UPL", 3, FALSE, &hdr, &header_len,
					  &error);
	g_assert_no_error(error);
	g_assert_cmpint(rc, ==, AS_QUIC_FRAMING_RESULT_NEED_MORE);

	/* ...but not past FIN */
	rc = as_quic_framing_parse_header((const guint8 *)"UPLOAD:f:1", 10, TRUE, &hdr, &header_len,
					  &error);
	g_assert_cmpint(rc, ==, AS_QUIC_FRAMING_RESULT_ERROR);
	g_clear_error(&error);

	/* a malformed UPLOAD line is refused even while a HASH line could still follow */
	rc = as_quic_framing_parse_header((const guint8 *)"UPLOAD:f:x\nHA", 14, FALSE, &hdr,
					  &header_len, &error);
	g_assert_cmpint(rc, ==, AS_QUIC_FRAMING_RESULT_ERROR);
	g_clear_error(&error);

	/* no newline within the line limit: refused, the receiver never buffers more */
	long_line = g_strnfill(AS_QUIC_FRAMING_MAX_LINE_SIZE, 'a');
	memcpy(long_line, "UPLOAD:", 7);
	rc = as_quic_framing_parse_header((const guint8 *)long_line, AS_QUIC_FRAMING_MAX_LINE_SIZE,
					  FALSE, &hdr, &header_len, &error);
	g_assert_cmpint(rc, ==, AS_QUIC_FRAMING_RESULT_ERROR);
	g_assert_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT);
	g_clear_error(&error);
	rc = as_quic_framing_parse_header((const guint8 *)long_line,
					  AS_QUIC_FRAMING_MAX_LINE_SIZE - 1, FALSE, &hdr,
					  &header_len, &error);
	g_assert_no_error(error);
	g_assert_cmpint(rc, ==, AS_QUIC_FRAMING_RESULT_NEED_MORE);
}

static void
as_quic_framing_format_func(void)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *plain = NULL;
	g_autofree gchar *full = NULL;
	g_autofree gchar *receipt_only = NULL;
	g_autofree gchar *bad = NULL;
	AsQuicUploadHeader hdr = {NULL};
	gsize header_len = 0;

	plain = as_quic_framing_format_header("a.txt", 5, NULL, NULL, NULL, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(plain, ==, "UPLOAD:a.txt:5\n");
	full = as_quic_framing_format_header("a.txt", 5, "tok", "r1", HASH_HEX_UPPER, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(full, ==, "UPLOAD:a.txt:5:tok:r1\nHASH:" HASH_HEX "\n");
	receipt_only = as_quic_framing_format_header("a", 1, NULL, "r1", NULL, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(receipt_only, ==, "UPLOAD:a:1::r1\n");

	/* round trip */
	g_assert_cmpint(as_quic_framing_parse_header((const guint8 *)full, strlen(full), FALSE,
						     &hdr, &header_len, &error),
			==, AS_QUIC_FRAMING_RESULT_COMPLETE);
	g_assert_no_error(error);
	g_assert_cmpuint(header_len, ==, strlen(full));
	g_assert_cmpstr(hdr.receipt, ==, "r1");
	g_assert_cmpstr(hdr.sha256, ==, HASH_HEX);
	as_quic_upload_header_clear(&hdr);

	bad = as_quic_framing_format_header("a:b", 1, NULL, NULL, NULL, &error);
	g_assert_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT);
	g_assert_null(bad);
	g_clear_error(&error);
	g_assert_null(as_quic_framing_format_header("a\nb", 1, NULL, NULL, NULL, &error));
	g_assert_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT);
	g_clear_error(&error);
	g_assert_null(as_quic_framing_format_header("a", 1, "t:k", NULL, NULL, &error));
	g_assert_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT);
	g_clear_error(&error);
	g_assert_null(as_quic_framing_format_header("a", 1, NULL, NULL, "abc", &error));
	g_assert_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT);
}

static void
as_quic_framing_reply_func(void)
{
	struct {
		AsError code;
		const gchar *message;
		const gchar *reply;
	} cases[] = {
		{AS_ERROR_PERMISSION_DENIED, "token expired", "ERROR:Unauthorized"},
		{AS_ERROR_TOO_LARGE, "1000 bytes", "ERROR:File too large: 1000 bytes"},
		{AS_ERROR_HASH_MISMATCH, "got x", "ERROR:Hash mismatch: got x"},
		{AS_ERROR_INCOMPLETE, "2 of 3\nbytes", "ERROR:Incomplete: 2 of 3 bytes"},
		{AS_ERROR_IO, "disk on fire", "ERROR:disk on fire"},
	};
	g_autoptr(GError) error = NULL;

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(GError) in =
			g_error_new_literal(AS_ERROR, cases[i].code, cases[i].message);
		g_autoptr(GError) out = NULL;
		g_autofree gchar *reply = as_quic_framing_format_error_reply(in);
		gint expected =
			cases[i].code == AS_ERROR_IO ? AS_ERROR_FAILED : (gint)cases[i].code;

		g_assert_cmpstr(reply, ==, cases[i].reply);
		g_assert_false(as_quic_framing_parse_reply(reply, strlen(reply), &out));
		g_assert_error(out, AS_ERROR, expected);
	}
	g_assert_true(as_quic_framing_parse_reply("SUCCESS", 7, &error));
	g_assert_no_error(error);
	g_assert_true(as_quic_framing_parse_reply("SUCCESS\n", 8, &error));
	g_assert_no_error(error);
	g_assert_false(as_quic_framing_parse_reply("", 0, &error));
	g_assert_error(error, AS_ERROR, AS_ERROR_FAILED);
	g_clear_error(&error);
	g_assert_false(as_quic_framing_parse_reply("OK:abc", 6, &error));
	g_assert_error(error, AS_ERROR, AS_ERROR_FAILED);
	g_clear_error(&error);
	g_assert_false(as_quic_framing_parse_reply("SUCCESSFUL", 10, &error));
	g_assert_error(error, AS_ERROR, AS_ERROR_FAILED);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/aerosync/quic-framing/basic", as_quic_framing_basic_func);
	g_test_add_func("/aerosync/quic-framing/fields", as_quic_framing_fields_func);
	g_test_add_func("/aerosync/quic-framing/hash", as_quic_framing_hash_func);
	g_test_add_func("/aerosync/quic-framing/hash-split", as_quic_framing_hash_split_func);
	g_test_add_func("/aerosync/quic-framing/body-like-hash",
			as_quic_framing_body_like_hash_func);
	g_test_add_func("/aerosync/quic-framing/malformed", as_quic_framing_malformed_func);
	g_test_add_func("/aerosync/quic-framing/early-reject", as_quic_framing_early_reject_func);
	g_test_add_func("/aerosync/quic-framing/format", as_quic_framing_format_func);
	g_test_add_func("/aerosync/quic-framing/reply", as_quic_framing_reply_func);
	return g_test_run();
}
