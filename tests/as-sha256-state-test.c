/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "AsSha256StateTest"

#include "config.h"

#include <fcntl.h>
#include <glib/gstdio.h>
#include <gnutls/crypto.h>
#include <nettle/sha2.h>
#include <string.h>
#include <unistd.h>

#include "as-error.h"
#include "as-sha256-state.h"
#include "as-sha256.h"

/* test data: a few blocks plus an odd tail */
#define TEST_DATA_SIZE (64 * 70 + 37)

/* benchmark sizes: 1 GiB with -m perf or -m thorough, a quick pass otherwise */
#define TEST_BENCH_BUFFER    (1024 * 1024)
#define TEST_BENCH_FULL_MIB  1024
#define TEST_BENCH_QUICK_MIB 64

static guint8 *
test_data_new(gsize len)
{
	guint8 *data = g_malloc(len);
	guint32 x = 2463534242u;

	/* xorshift: reproducible and not all zero */
	for (gsize i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		data[i] = (guint8)x;
	}
	return data;
}

static void
test_sha256_state_vectors(void)
{
	g_autoptr(AsSha256State) state = as_sha256_state_new();
	g_autofree gchar *empty = as_sha256_state_finish_hex(state);
	g_autofree gchar *abc = NULL;

	g_assert_cmpstr(empty, ==,
			"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	g_assert_cmpuint(as_sha256_state_get_length(state), ==, 0);
	as_sha256_state_update(state, "abc", 3);
	abc = as_sha256_state_finish_hex(state);
	g_assert_cmpstr(abc, ==,
			"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	g_assert_cmpuint(as_sha256_state_get_length(state), ==, 3);
}

/* hash data[0..split), save, drop, load, hash the rest: must match GnuTLS on the whole */
static void
test_sha256_state_splits(void)
{
	g_autofree guint8 *data = test_data_new(TEST_DATA_SIZE);
	g_autofree gchar *expected = as_sha256_data_hex(data, TEST_DATA_SIZE);
	g_autofree gchar *prefix_hex = NULL;
	g_autoptr(AsSha256State) multi = as_sha256_state_new();
	g_autofree gchar *multi_hex = NULL;
	gsize done = 0;

	for (gsize split = 0; split <= TEST_DATA_SIZE; split++) {
		g_autoptr(AsSha256State) first = as_sha256_state_new();
		g_autoptr(AsSha256State) second = NULL;
		g_autoptr(GBytes) blob = NULL;
		g_autoptr(GError) error = NULL;
		g_autofree gchar *hex = NULL;

		/* every split in the first blocks, then around block boundaries */
		if (split > 200 && split % 64 > 2 && split % 64 < 62 && split != TEST_DATA_SIZE)
			continue;
		as_sha256_state_update(first, data, split);
		blob = as_sha256_state_save(first);
		g_assert_cmpuint(g_bytes_get_size(blob), ==, AS_SHA256_STATE_BLOB_SIZE);
		g_clear_pointer(&first, as_sha256_state_free);

		second = as_sha256_state_load(blob, &error);
		g_assert_no_error(error);
		g_assert_nonnull(second);
		g_assert_cmpuint(as_sha256_state_get_length(second), ==, split);
		as_sha256_state_update(second, data + split, TEST_DATA_SIZE - split);
		hex = as_sha256_state_finish_hex(second);
		g_assert_cmpstr(hex, ==, expected);
	}

	/* a chain of save/load cycles, as a transfer resumed many times */
	for (guint step = 1; done < TEST_DATA_SIZE; step = step * 2 + 1) {
		gsize n = MIN((gsize)step, TEST_DATA_SIZE - done);
		g_autoptr(GBytes) blob = NULL;
		g_autoptr(GError) error = NULL;

		as_sha256_state_update(multi, data + done, n);
		done += n;
		blob = as_sha256_state_save(multi);
		as_sha256_state_free(multi);
		multi = as_sha256_state_load(blob, &error);
		g_assert_no_error(error);
	}
	multi_hex = as_sha256_state_finish_hex(multi);
	g_assert_cmpstr(multi_hex, ==, expected);

	/* finishing leaves the state usable, and saved blobs stay valid */
	{
		g_autoptr(AsSha256State) state = as_sha256_state_new();
		g_autoptr(AsSha256State) copy = NULL;
		g_autoptr(AsSha256State) restored = NULL;
		g_autoptr(GBytes) blob = NULL;
		g_autoptr(GError) error = NULL;
		g_autofree gchar *hex = NULL;
		g_autofree gchar *hex_copy = NULL;
		g_autofree gchar *hex_restored = NULL;
		g_autofree gchar *hex_gnutls = as_sha256_data_hex(data, 100);

		as_sha256_state_update(state, data, 100);
		blob = as_sha256_state_save(state);
		prefix_hex = as_sha256_state_finish_hex(state);
		g_assert_cmpstr(prefix_hex, ==, hex_gnutls);
		copy = as_sha256_state_copy(state);
		as_sha256_state_update(state, data + 100, TEST_DATA_SIZE - 100);
		hex = as_sha256_state_finish_hex(state);
		g_assert_cmpstr(hex, ==, expected);
		hex_copy = as_sha256_state_finish_hex(copy);
		g_assert_cmpstr(hex_copy, ==, prefix_hex);
		restored = as_sha256_state_load(blob, &error);
		g_assert_no_error(error);
		hex_restored = as_sha256_state_finish_hex(restored);
		g_assert_cmpstr(hex_restored, ==, prefix_hex);
	}
}

static void
test_sha256_state_deterministic(void)
{
	g_autofree guint8 *data = test_data_new(1000);
	g_autoptr(AsSha256State) a = as_sha256_state_new();
	g_autoptr(AsSha256State) b = as_sha256_state_new();
	g_autoptr(GBytes) blob_a = NULL;
	g_autoptr(GBytes) blob_b = NULL;

	/* same bytes in different pieces: same blob */
	as_sha256_state_update(a, data, 1000);
	for (guint i = 0; i < 1000; i += 7)
		as_sha256_state_update(b, data + i, MIN(7u, 1000 - i));
	blob_a = as_sha256_state_save(a);
	blob_b = as_sha256_state_save(b);
	g_assert_true(g_bytes_equal(blob_a, blob_b));
}

static GBytes *
test_reseal(const guint8 *data)
{
	guint8 *copy = g_memdup2(data, AS_SHA256_STATE_BLOB_SIZE);
	struct sha256_ctx ctx;

	/* recompute the trailing checksum so the field checks are reached */
	sha256_init(&ctx);
	sha256_update(&ctx, AS_SHA256_STATE_BLOB_SIZE - SHA256_DIGEST_SIZE, copy);
	sha256_digest(&ctx, SHA256_DIGEST_SIZE,
		      copy + AS_SHA256_STATE_BLOB_SIZE - SHA256_DIGEST_SIZE);
	return g_bytes_new_take(copy, AS_SHA256_STATE_BLOB_SIZE);
}

static void
test_assert_rejected(GBytes *blob, gint code)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(AsSha256State) state = as_sha256_state_load(blob, &error);
	g_assert_error(error, AS_ERROR, code);
	g_assert_null(state);
}

static void
test_sha256_state_corrupt(void)
{
	g_autofree guint8 *data = test_data_new(100);
	g_autoptr(AsSha256State) state = as_sha256_state_new();
	g_autoptr(GBytes) blob = NULL;
	g_autofree guint8 *raw = NULL;
	gsize len = 0;

	as_sha256_state_update(state, data, 100);
	blob = as_sha256_state_save(state);
	raw = g_bytes_unref_to_data(g_bytes_ref(blob), &len);
	g_assert_cmpuint(len, ==, AS_SHA256_STATE_BLOB_SIZE);

	/* every single bit flip */
	for (gsize i = 0; i < len; i++) {
		for (guint bit = 0; bit < 8; bit++) {
			g_autoptr(GBytes) bad = NULL;
			raw[i] ^= (guint8)(1u << bit);
			bad = g_bytes_new(raw, len);
			raw[i] ^= (guint8)(1u << bit);
			test_assert_rejected(bad, i >= 8 && i < 12 ? AS_ERROR_NOT_SUPPORTED
								   : AS_ERROR_INVALID_ARGUMENT);
		}
	}

	/* truncated, extended, empty */
	{
		g_autoptr(GBytes) shorter = g_bytes_new(raw, len - 1);
		g_autoptr(GBytes) empty = g_bytes_new(NULL, 0);
		g_autofree guint8 *longer_raw = g_malloc0(len + 1);
		g_autoptr(GBytes) longer = NULL;
		memcpy(longer_raw, raw, len);
		longer = g_bytes_new(longer_raw, len + 1);
		test_assert_rejected(shorter, AS_ERROR_INVALID_ARGUMENT);
		test_assert_rejected(longer, AS_ERROR_INVALID_ARGUMENT);
		test_assert_rejected(empty, AS_ERROR_INVALID_ARGUMENT);
	}

	/* a valid checksum over impossible fields */
	{
		g_autofree guint8 *copy = g_memdup2(raw, len);
		g_autoptr(GBytes) resealed = NULL;
		g_autoptr(GBytes) version2 = NULL;
		g_autoptr(GBytes) index64 = NULL;
		g_autoptr(GBytes) tail = NULL;
		g_autoptr(GBytes) reserved = NULL;
		g_autoptr(AsSha256State) same = NULL;
		g_autoptr(GError) error = NULL;

		/* resealing an intact blob keeps it valid: the checks below test the fields */
		resealed = test_reseal(copy);
		same = as_sha256_state_load(resealed, &error);
		g_assert_no_error(error);
		g_assert_nonnull(same);

		copy[8] = 2;
		version2 = test_reseal(copy);
		test_assert_rejected(version2, AS_ERROR_NOT_SUPPORTED);
		copy[8] = 1;

		copy[24] = 64;
		index64 = test_reseal(copy);
		test_assert_rejected(index64, AS_ERROR_INVALID_ARGUMENT);
		copy[24] = 100 % 64;

		/* 100 bytes = one block + 36: byte 64 + 36 must be zero */
		copy[64 + 36] = 1;
		tail = test_reseal(copy);
		test_assert_rejected(tail, AS_ERROR_INVALID_ARGUMENT);
		copy[64 + 36] = 0;

		copy[12] = 1;
		reserved = test_reseal(copy);
		test_assert_rejected(reserved, AS_ERROR_INVALID_ARGUMENT);
	}
}

static void
test_sha256_state_fd_range(void)
{
	g_autofree guint8 *data = test_data_new(3 * AS_SHA256_BLOCK_SIZE + 123);
	gsize len = 3 * AS_SHA256_BLOCK_SIZE + 123;
	g_autofree gchar *path = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(AsSha256State) state = as_sha256_state_new();
	g_autoptr(AsSha256State) state_short = as_sha256_state_new();
	g_autofree gchar *hex = NULL;
	g_autofree gchar *expected = as_sha256_data_hex(data, len);
	int fd = g_file_open_tmp("as-sha256-state-XXXXXX", &path, &error);

	g_assert_no_error(error);
	g_assert_cmpint(write(fd, data, len), ==, (gssize)len);

	/* the first 1000 bytes from memory, the rest from the file */
	as_sha256_state_update(state, data, 1000);
	g_assert_true(as_sha256_state_update_fd_range(state, fd, 1000, len - 1000, NULL, &error));
	g_assert_no_error(error);
	hex = as_sha256_state_finish_hex(state);
	g_assert_cmpstr(hex, ==, expected);

	g_assert_false(as_sha256_state_update_fd_range(state_short, fd, 0, len + 1, NULL, &error));
	g_assert_error(error, AS_ERROR, AS_ERROR_INCOMPLETE);

	close(fd);
	g_assert_cmpint(g_unlink(path), ==, 0);
}

/*
 * The pair update against two plain updates and GnuTLS: aligned and unaligned starts, tails,
 * a second state that is mid-block while the first is not, and the portable fallback.
 */
static void
test_sha256_state_pair_check(const guint8 *data, gsize prefix_a, gsize prefix_b, gsize len)
{
	g_autoptr(AsSha256State) a = as_sha256_state_new();
	g_autoptr(AsSha256State) b = as_sha256_state_new();
	g_autofree gchar *a_hex = NULL;
	g_autofree gchar *b_hex = NULL;
	g_autofree gchar *a_want = as_sha256_data_hex(data, prefix_a + len);
	g_autofree gchar *b_want = NULL;

	/* b hashes bytes [prefix_a - prefix_b, prefix_a + len) so both end on the same byte */
	g_assert_cmpuint(prefix_b, <=, prefix_a);
	b_want = as_sha256_data_hex(data + prefix_a - prefix_b, prefix_b + len);
	as_sha256_state_update(a, data, prefix_a);
	as_sha256_state_update(b, data + prefix_a - prefix_b, prefix_b);
	/* in two calls, so the second starts wherever the first left the states */
	as_sha256_state_update_pair(a, b, data + prefix_a, len / 3);
	as_sha256_state_update_pair(a, b, data + prefix_a + len / 3, len - len / 3);
	a_hex = as_sha256_state_finish_hex(a);
	b_hex = as_sha256_state_finish_hex(b);
	g_assert_cmpstr(a_hex, ==, a_want);
	g_assert_cmpstr(b_hex, ==, b_want);
	g_assert_cmpuint(as_sha256_state_get_length(a), ==, prefix_a + len);
	g_assert_cmpuint(as_sha256_state_get_length(b), ==, prefix_b + len);
}

static void
test_sha256_state_pair(void)
{
	g_autofree guint8 *data = test_data_new(TEST_DATA_SIZE);
	const gsize prefixes[][2] = {{0, 0}, {64, 0}, {128, 64}, {5, 5}, {70, 6}, {64, 3}};
	const gsize lengths[] = {0, 1, 63, 64, 65, 64 * 3, 64 * 50 + 17};

	for (guint i = 0; i < G_N_ELEMENTS(prefixes); i++) {
		for (guint j = 0; j < G_N_ELEMENTS(lengths); j++)
			test_sha256_state_pair_check(data, prefixes[i][0], prefixes[i][1],
						     lengths[j]);
	}
}

/* the same without the SHA extensions (AEROSYNC_NO_SHA_NI is read once per process) */
static void
test_sha256_state_pair_portable(void)
{
	if (g_test_subprocess()) {
		g_setenv("AEROSYNC_NO_SHA_NI", "1", TRUE);
		test_sha256_state_pair();
		return;
	}
	g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
	g_test_trap_assert_passed();
}

static void
test_sha256_state_bench(void)
{
	g_autofree guint8 *buf = test_data_new(TEST_BENCH_BUFFER);
	guint mib = g_test_perf() || g_test_thorough() ? TEST_BENCH_FULL_MIB : TEST_BENCH_QUICK_MIB;
	g_autoptr(AsSha256State) state = as_sha256_state_new();
	g_autofree gchar *nettle_hex = NULL;
	g_autofree gchar *gnutls_hex = NULL;
	guint8 digest[SHA256_DIGEST_SIZE];
	gnutls_hash_hd_t hd;
	g_autoptr(AsSha256State) pair_a = NULL;
	g_autoptr(AsSha256State) pair_b = NULL;
	g_autofree gchar *pair_hex = NULL;
	gdouble nettle_s, gnutls_s, pair_s;
	g_autoptr(GTimer) timer = g_timer_new();

	for (guint i = 0; i < mib; i++)
		as_sha256_state_update(state, buf, TEST_BENCH_BUFFER);
	nettle_hex = as_sha256_state_finish_hex(state);
	nettle_s = g_timer_elapsed(timer, NULL);

	g_timer_start(timer);
	g_assert_cmpint(gnutls_hash_init(&hd, GNUTLS_DIG_SHA256), ==, 0);
	for (guint i = 0; i < mib; i++)
		g_assert_cmpint(gnutls_hash(hd, buf, TEST_BENCH_BUFFER), ==, 0);
	gnutls_hash_deinit(hd, digest);
	gnutls_s = g_timer_elapsed(timer, NULL);
	gnutls_hex = g_new0(gchar, AS_SHA256_HEX_LEN + 1);
	for (guint i = 0; i < SHA256_DIGEST_SIZE; i++) {
		static const gchar hexdigits[] = "0123456789abcdef";
		gnutls_hex[2 * i] = hexdigits[digest[i] >> 4];
		gnutls_hex[2 * i + 1] = hexdigits[digest[i] & 0xf];
	}

	g_timer_start(timer);
	pair_a = as_sha256_state_new();
	pair_b = as_sha256_state_new();
	for (guint i = 0; i < mib; i++)
		as_sha256_state_update_pair(pair_a, pair_b, buf, TEST_BENCH_BUFFER);
	pair_hex = as_sha256_state_finish_hex(pair_b);
	pair_s = g_timer_elapsed(timer, NULL);

	/* the libraries and the pair agree; the speeds are reported, not asserted */
	g_assert_cmpstr(nettle_hex, ==, gnutls_hex);
	g_assert_cmpstr(pair_hex, ==, gnutls_hex);
	g_test_message("SHA-256 of %u MiB: nettle %.0f MB/s (%.2f s), gnutls %.0f MB/s (%.2f s), "
		       "two digests at once %.0f MB/s (%.2f s)",
		       mib, mib * 1.048576 / nettle_s, nettle_s, mib * 1.048576 / gnutls_s,
		       gnutls_s, mib * 1.048576 / pair_s, pair_s);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/aerosync/sha256-state/vectors", test_sha256_state_vectors);
	g_test_add_func("/aerosync/sha256-state/splits", test_sha256_state_splits);
	g_test_add_func("/aerosync/sha256-state/deterministic", test_sha256_state_deterministic);
	g_test_add_func("/aerosync/sha256-state/corrupt", test_sha256_state_corrupt);
	g_test_add_func("/aerosync/sha256-state/fd-range", test_sha256_state_fd_range);
	g_test_add_func("/aerosync/sha256-state/pair", test_sha256_state_pair);
	g_test_add_func("/aerosync/sha256-state/pair-portable", test_sha256_state_pair_portable);
	g_test_add_func("/aerosync/sha256-state/bench", test_sha256_state_bench);
	return g_test_run();
}
