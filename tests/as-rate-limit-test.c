/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "AsRateLimitTest"

#include "config.h"

#include "as-error.h"
#include "as-rate-limit.h"

#define KIB (G_GUINT64_CONSTANT(1024))
#define MIB (1024 * KIB)
#define GIB (1024 * MIB)

/* size of one simulated socket write */
#define TEST_PIECE_BYTES (16 * KIB)

/* simulated run length */
#define TEST_RUN_US (10 * G_USEC_PER_SEC)

/* allowed error of the average rate */
#define TEST_RATE_TOLERANCE 0.02

static void
test_rate_limit_parse(void)
{
	struct {
		const gchar *text;
		guint64 expected;
	} good[] = {
		{"512KB", 512 * KIB},
		{"512kb", 512 * KIB},
		{"10MB", 10 * MIB},
		{"1MB/s", MIB},
		{"1mb/sec", MIB},
		{"1.5M", 3 * MIB / 2},
		{"1.5 MB/s", 3 * MIB / 2},
		{"1GB", GIB},
		{"2g", 2 * GIB},
		{"3GiB", 3 * GIB},
		{"64KiB", 64 * KIB},
		{"64k", 64 * KIB},
		{"100", 100 * KIB}, /* 0.x: a bare number is KB/s */
		{"  100  ", 100 * KIB},
		{"0.5", 512},
		{".5M", MIB / 2},
		{"100B", 100},
		{"100b/s", 100},
		{"0", 0},
		{"0MB", 0},
		{"0.0", 0},
		{"unlimited", 0},
		{"Unlimited", 0},
		{"off", 0},
		{"1024GB", 1024 * GIB},
	};
	const gchar *bad[] = {
		"",	 "   ",	   "abc",
		"MB",	 "-1",	   "-1MB",
		"+1MB",	 "1e3",	   "0x10",
		"inf",	 "nan",	   "1.2.3",
		"1TB",	 "1 M B",  "10MB/h",
		"10MB/", "10/s/s", "1025GB",
		"0.1B",	 "0.0001", "123456789012345678901234567890123MB",
	};

	for (guint i = 0; i < G_N_ELEMENTS(good); i++) {
		g_autoptr(GError) error = NULL;
		guint64 rate = G_MAXUINT64;
		g_assert_true(as_rate_limit_parse(good[i].text, &rate, &error));
		g_assert_no_error(error);
		g_assert_cmpuint(rate, ==, good[i].expected);
	}
	for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
		g_autoptr(GError) error = NULL;
		guint64 rate = 42;
		g_assert_false(as_rate_limit_parse(bad[i], &rate, &error));
		g_assert_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT);
		g_assert_nonnull(strstr(error->message, bad[i]));
		g_assert_cmpuint(rate, ==, 42);
	}
}

static void
test_rate_limit_format(void)
{
	struct {
		guint64 rate;
		const gchar *expected;
	} cases[] = {
		{0, "unlimited"},	 {1, "1 B/s"},
		{1023, "1023 B/s"},	 {1024, "1 KB/s"},
		{512 * KIB, "512 KB/s"}, {3 * MIB / 2, "1.5 MB/s"},
		{10 * MIB, "10 MB/s"},	 {MIB - 1, "1 MB/s"},
		{GIB, "1 GB/s"},	 {1536 * GIB, "1.5 TB/s"},
	};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autofree gchar *text = as_rate_limit_format(cases[i].rate);
		g_assert_cmpstr(text, ==, cases[i].expected);
	}

	/* what is printed parses back, to within the rounding of one decimal */
	for (guint64 rate = 1; rate < 64 * GIB; rate = rate * 3 + 7) {
		g_autofree gchar *text = as_rate_limit_format(rate);
		g_autoptr(GError) error = NULL;
		guint64 back = 0;
		g_assert_true(as_rate_limit_parse(text, &back, &error));
		g_assert_no_error(error);
		g_assert_cmpfloat(ABS((gdouble)back - (gdouble)rate) / (gdouble)rate, <=, 0.05);
	}
}

/* one sender writing TEST_PIECE_BYTES pieces as fast as the limiters let it, on a fake clock;
 * returns the bytes sent in [start_us, end_us) and leaves *now_us at the end */
static guint64
test_send_for(AsRateLimiter *a, AsRateLimiter *b, gint64 *now_us, gint64 end_us)
{
	guint64 sent = 0;

	while (TRUE) {
		gint64 delay = as_rate_limiter_reserve_pair(a, b, TEST_PIECE_BYTES, *now_us);
		g_assert_cmpint(delay, >=, 0);
		if (*now_us + delay >= end_us) {
			*now_us = end_us;
			return sent;
		}
		*now_us += delay;
		sent += TEST_PIECE_BYTES;
	}
}

/* the average rate after the initial full bucket (burst_bytes, sent at once) is within
 * TEST_RATE_TOLERANCE of the limit */
static void
test_assert_rate(guint64 bytes, gint64 duration_us, guint64 rate, guint64 burst_bytes)
{
	gdouble measured;

	g_assert_cmpuint(bytes, >=, burst_bytes);
	measured = (gdouble)(bytes - burst_bytes) * G_USEC_PER_SEC / (gdouble)duration_us;
	g_test_message("measured %.0f B/s for a limit of %" G_GUINT64_FORMAT " B/s", measured,
		       rate);
	g_assert_cmpfloat(measured, >=, (gdouble)rate * (1.0 - TEST_RATE_TOLERANCE));
	g_assert_cmpfloat(measured, <=, (gdouble)rate * (1.0 + TEST_RATE_TOLERANCE));
}

static void
test_rate_limiter_average(void)
{
	guint64 rates[] = {100 * KIB, MIB, 10 * MIB, 3 * MIB / 2, 300 * MIB};

	for (guint i = 0; i < G_N_ELEMENTS(rates); i++) {
		g_autoptr(AsRateLimiter) limiter = as_rate_limiter_new(rates[i], 0);
		gint64 now_us = 1000;
		guint64 sent = test_send_for(limiter, NULL, &now_us, 1000 + TEST_RUN_US);
		test_assert_rate(sent, TEST_RUN_US, rates[i], as_rate_limiter_get_burst(limiter));
	}
}

static void
test_rate_limiter_burst(void)
{
	g_autoptr(AsRateLimiter) slow = as_rate_limiter_new(10 * KIB, 0);
	g_autoptr(AsRateLimiter) fast = as_rate_limiter_new(100 * MIB, 0);
	g_autoptr(AsRateLimiter) fixed = as_rate_limiter_new(MIB, 4096);

	/* max(rate / 10, 64 KiB) */
	g_assert_cmpuint(as_rate_limiter_get_burst(slow), ==, AS_RATE_LIMITER_MIN_BURST);
	g_assert_cmpuint(as_rate_limiter_get_burst(fast), ==, 10 * MIB);
	g_assert_cmpuint(as_rate_limiter_get_burst(fixed), ==, 4096);

	/* a full bucket lets the burst through at once, then the caller waits */
	g_assert_cmpint(as_rate_limiter_reserve(slow, 32 * KIB, 0), ==, 0);
	g_assert_cmpint(as_rate_limiter_reserve(slow, 32 * KIB, 0), ==, 0);
	g_assert_cmpint(as_rate_limiter_reserve(slow, 10 * KIB, 0), ==, G_USEC_PER_SEC);
	g_assert_cmpint(as_rate_limiter_get_delay(slow, 0), ==, G_USEC_PER_SEC);
	g_assert_cmpint(as_rate_limiter_get_delay(slow, G_USEC_PER_SEC / 2), ==,
			G_USEC_PER_SEC / 2);
	g_assert_cmpint(as_rate_limiter_get_delay(slow, G_USEC_PER_SEC), ==, 0);

	/* a clock that goes backwards does not earn tokens nor produce negative delays */
	g_assert_cmpint(as_rate_limiter_reserve(slow, 10 * KIB, 0), ==, G_USEC_PER_SEC);
	g_assert_cmpint(as_rate_limiter_get_delay(slow, G_USEC_PER_SEC / 2), >, 0);

	/* an idle limiter refills to the burst, not more */
	g_assert_cmpint(as_rate_limiter_reserve(fixed, 4096, 100 * G_USEC_PER_SEC), ==, 0);
	g_assert_cmpint(as_rate_limiter_reserve(fixed, 1, 100 * G_USEC_PER_SEC), >, 0);

	/* the automatic burst follows the rate */
	as_rate_limiter_set_rate(fast, 200 * MIB, 0);
	g_assert_cmpuint(as_rate_limiter_get_burst(fast), ==, 20 * MIB);
	as_rate_limiter_set_rate(fixed, 200 * MIB, 0);
	g_assert_cmpuint(as_rate_limiter_get_burst(fixed), ==, 4096);
}

static void
test_rate_limiter_change(void)
{
	g_autoptr(AsRateLimiter) limiter = as_rate_limiter_new(MIB, 0);
	gint64 now_us = 0;
	guint64 sent;
	gint64 delay;

	sent = test_send_for(limiter, NULL, &now_us, TEST_RUN_US / 2);
	test_assert_rate(sent, TEST_RUN_US / 2, MIB, as_rate_limiter_get_burst(limiter));

	/* lower: the second half runs at the new rate */
	as_rate_limiter_set_rate(limiter, 256 * KIB, now_us);
	g_assert_cmpuint(as_rate_limiter_get_rate(limiter), ==, 256 * KIB);
	sent = test_send_for(limiter, NULL, &now_us, TEST_RUN_US);
	test_assert_rate(sent, TEST_RUN_US / 2, 256 * KIB, 0);

	/* raise: a caller waiting on a large debt sees its wait shrink at once */
	delay = as_rate_limiter_reserve(limiter, 5 * MIB, now_us);
	g_assert_cmpint(delay, >=, 19 * G_USEC_PER_SEC);
	as_rate_limiter_set_rate(limiter, 10 * MIB, now_us);
	delay = as_rate_limiter_get_delay(limiter, now_us);
	g_assert_cmpint(delay, >, 0);
	g_assert_cmpint(delay, <=, G_USEC_PER_SEC);
	now_us += delay;
	sent = test_send_for(limiter, NULL, &now_us, now_us + TEST_RUN_US);
	test_assert_rate(sent, TEST_RUN_US, 10 * MIB, 0);
}

static void
test_rate_limiter_unlimited(void)
{
	g_autoptr(AsRateLimiter) limiter = as_rate_limiter_new(0, 0);
	gint64 now_us = 0;

	for (guint i = 0; i < 1000; i++)
		g_assert_cmpint(as_rate_limiter_reserve(limiter, 64 * MIB, now_us), ==, 0);
	g_assert_cmpint(as_rate_limiter_get_delay(limiter, now_us), ==, 0);
	g_assert_cmpint(as_rate_limiter_reserve(limiter, G_MAXSIZE, now_us), ==, 0);

	/* limited, deep in debt, then unlimited again: the debt is forgiven */
	as_rate_limiter_set_rate(limiter, KIB, now_us);
	g_assert_cmpint(as_rate_limiter_reserve(limiter, 100 * MIB, now_us), >, 0);
	as_rate_limiter_set_rate(limiter, 0, now_us);
	g_assert_cmpint(as_rate_limiter_get_delay(limiter, now_us), ==, 0);
	g_assert_cmpint(as_rate_limiter_reserve(limiter, MIB, now_us), ==, 0);

	/* back to limited: a fresh full bucket */
	as_rate_limiter_set_rate(limiter, MIB, now_us);
	g_assert_cmpint(as_rate_limiter_reserve(limiter, 100 * KIB, now_us), ==, 0);
	g_assert_cmpint(as_rate_limiter_reserve(limiter, 100 * KIB, now_us), >, 0);

	/* huge requests saturate instead of wrapping */
	as_rate_limiter_set_rate(limiter, 1, now_us);
	for (guint i = 0; i < 10; i++)
		g_assert_cmpint(as_rate_limiter_reserve(limiter, G_MAXSIZE, now_us), >, 0);
}

static void
test_rate_limiter_pair(void)
{
	g_autoptr(AsRateLimiter) tight = as_rate_limiter_new(512 * KIB, 0);
	g_autoptr(AsRateLimiter) loose = as_rate_limiter_new(MIB, 0);
	g_autoptr(AsRateLimiter) global = as_rate_limiter_new(MIB, 0);
	g_autoptr(AsRateLimiter) transfer_a = as_rate_limiter_new(MIB, 0);
	g_autoptr(AsRateLimiter) transfer_b = as_rate_limiter_new(256 * KIB, 0);
	gint64 next_a = 0, next_b = 0;
	guint64 sent_a = 0, sent_b = 0;
	gint64 now_us = 0;

	/* the tighter limit wins */
	g_assert_cmpint(as_rate_limiter_reserve_pair(NULL, NULL, MIB, 0), ==, 0);
	sent_a = test_send_for(loose, tight, &now_us, TEST_RUN_US);
	test_assert_rate(sent_a, TEST_RUN_US, 512 * KIB, as_rate_limiter_get_burst(tight));
	now_us = 100 * G_USEC_PER_SEC;
	sent_b = test_send_for(tight, loose, &now_us, now_us + TEST_RUN_US);
	test_assert_rate(sent_b, TEST_RUN_US, 512 * KIB, as_rate_limiter_get_burst(tight));

	/* two transfers under a global limit share it; each stays under its own limit.  The
	 * simulation steps whichever sender is due first */
	now_us = next_a = next_b = 100 * G_USEC_PER_SEC;
	sent_a = sent_b = 0;
	while (MIN(next_a, next_b) < now_us + TEST_RUN_US) {
		if (next_a <= next_b) {
			next_a += as_rate_limiter_reserve_pair(transfer_a, global, TEST_PIECE_BYTES,
							       next_a);
			if (next_a < now_us + TEST_RUN_US)
				sent_a += TEST_PIECE_BYTES;
		} else {
			next_b += as_rate_limiter_reserve_pair(transfer_b, global, TEST_PIECE_BYTES,
							       next_b);
			if (next_b < now_us + TEST_RUN_US)
				sent_b += TEST_PIECE_BYTES;
		}
	}
	test_assert_rate(sent_a + sent_b, TEST_RUN_US, MIB, as_rate_limiter_get_burst(global));
	g_assert_cmpuint(sent_b, <=, 256 * KIB * 10 + AS_RATE_LIMITER_MIN_BURST + TEST_PIECE_BYTES);
	g_assert_cmpuint(sent_a, >, sent_b);
	g_assert_cmpint(as_rate_limiter_get_delay_pair(transfer_a, global, next_a), >=, 0);
}

#define TEST_THREADS	     4
#define TEST_THREAD_RESERVES 10000
#define TEST_THREAD_BYTES    1000

static gpointer
test_rate_limiter_thread_cb(gpointer user_data)
{
	AsRateLimiter *limiter = user_data;
	for (guint i = 0; i < TEST_THREAD_RESERVES; i++)
		(void)as_rate_limiter_reserve(limiter, TEST_THREAD_BYTES, 0);
	return NULL;
}

static void
test_rate_limiter_threads(void)
{
	g_autoptr(AsRateLimiter) limiter = as_rate_limiter_new(MIB, 64 * KIB);
	GThread *threads[TEST_THREADS];
	guint64 total = (guint64)TEST_THREADS * TEST_THREAD_RESERVES * TEST_THREAD_BYTES;
	gint64 expected_us;

	for (guint i = 0; i < TEST_THREADS; i++)
		threads[i] = g_thread_new("reserve", test_rate_limiter_thread_cb, limiter);
	for (guint i = 0; i < TEST_THREADS; i++)
		g_thread_join(threads[i]);

	/* no reservation is lost: the debt is exactly everything beyond the burst */
	expected_us = (gint64)(((total - 64 * KIB) * G_USEC_PER_SEC + MIB - 1) / MIB);
	g_assert_cmpint(as_rate_limiter_get_delay(limiter, 0), ==, expected_us);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/aerosync/rate-limit/parse", test_rate_limit_parse);
	g_test_add_func("/aerosync/rate-limit/format", test_rate_limit_format);
	g_test_add_func("/aerosync/rate-limit/average", test_rate_limiter_average);
	g_test_add_func("/aerosync/rate-limit/burst", test_rate_limiter_burst);
	g_test_add_func("/aerosync/rate-limit/change", test_rate_limiter_change);
	g_test_add_func("/aerosync/rate-limit/unlimited", test_rate_limiter_unlimited);
	g_test_add_func("/aerosync/rate-limit/pair", test_rate_limiter_pair);
	g_test_add_func("/aerosync/rate-limit/threads", test_rate_limiter_threads);
	return g_test_run();
}
