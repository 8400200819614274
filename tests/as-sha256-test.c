/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#include "as-error.h"
#include "as-sha256.h"

#define SHA256_EMPTY  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define SHA256_ABC    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
#define SHA256_448BIT "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
#define MSG_448BIT    "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"
/* 1 MiB and 1,000,000 times 'a' */
#define SHA256_A_MIB	 "9bc1b2a288b26af7257a36277ae3816a7d4f16e89c1e7e77d0a5c48bad62b360"
#define SHA256_A_MILLION "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"

#define MIB (1024 * 1024)

/* a temp file with @prefix bytes of 'X', @count bytes of 'a', @suffix bytes of 'Z' */
static int
open_pattern_file(gchar **dir_out, gchar **path_out, gsize prefix, gsize count, gsize suffix)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *buf = g_malloc(prefix + count + suffix);
	gboolean ret;
	int fd;

	memset(buf, 'X', prefix);
	memset(buf + prefix, 'a', count);
	memset(buf + prefix + count, 'Z', suffix);
	*dir_out = g_dir_make_tmp("as-sha256-test-XXXXXX", &error);
	g_assert_no_error(error);
	*path_out = g_build_filename(*dir_out, "data", NULL);
	ret = g_file_set_contents(*path_out, buf, (gssize)(prefix + count + suffix), &error);
	g_assert_no_error(error);
	g_assert_true(ret);
	fd = open(*path_out, O_RDONLY | O_CLOEXEC);
	g_assert_cmpint(fd, >=, 0);
	return fd;
}

static void
remove_pattern_file(int fd, const gchar *dir, const gchar *path)
{
	close(fd);
	g_assert_cmpint(g_unlink(path), ==, 0);
	g_assert_cmpint(g_rmdir(dir), ==, 0);
}

static void
as_sha256_vectors_func(void)
{
	g_autofree gchar *empty = as_sha256_data_hex("", 0);
	g_autofree gchar *empty_null = as_sha256_data_hex(NULL, 0);
	g_autofree gchar *abc = as_sha256_data_hex("abc", 3);
	g_autofree gchar *msg = as_sha256_data_hex(MSG_448BIT, strlen(MSG_448BIT));

	g_assert_cmpstr(empty, ==, SHA256_EMPTY);
	g_assert_cmpstr(empty_null, ==, SHA256_EMPTY);
	g_assert_cmpstr(abc, ==, SHA256_ABC);
	g_assert_cmpstr(msg, ==, SHA256_448BIT);
}

static void
as_sha256_streaming_func(void)
{
	g_autoptr(AsSha256) sha = as_sha256_new();
	g_autoptr(AsSha256) unfinished = as_sha256_new();
	g_autofree gchar *hex = NULL;

	/* byte by byte, with empty updates in between, must match the one-shot digest */
	for (gsize i = 0; i < strlen(MSG_448BIT); i++) {
		as_sha256_update(sha, MSG_448BIT + i, 1);
		as_sha256_update(sha, NULL, 0);
	}
	hex = as_sha256_finish_hex(sha);
	g_assert_cmpstr(hex, ==, SHA256_448BIT);
	g_assert_cmpuint(strlen(hex), ==, AS_SHA256_HEX_LEN);

	/* freeing a context that never finished must not leak or crash */
	as_sha256_update(unfinished, "abc", 3);
}

static void
as_sha256_fd_range_func(void)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *dir = NULL;
	g_autofree gchar *path = NULL;
	g_autofree gchar *hex = NULL;
	g_autofree gchar *hex_million = NULL;
	g_autofree gchar *hex_empty = NULL;
	int fd = open_pattern_file(&dir, &path, 3, MIB, 7);

	/* the range excludes the 'X' prefix and 'Z' suffix */
	hex = as_sha256_fd_range(fd, 3, MIB, NULL, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(hex, ==, SHA256_A_MIB);

	/* a range inside the run of 'a' at an odd offset */
	hex_million = as_sha256_fd_range(fd, 3 + 12345, 1000000, NULL, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(hex_million, ==, SHA256_A_MILLION);

	hex_empty = as_sha256_fd_range(fd, 5, 0, NULL, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(hex_empty, ==, SHA256_EMPTY);

	/* pread must leave the file offset alone */
	g_assert_cmpint(lseek(fd, 0, SEEK_CUR), ==, 0);
	remove_pattern_file(fd, dir, path);
}

static void
as_sha256_fd_range_multi_block_func(void)
{
	const gsize count = 2 * MIB + MIB / 2 + 11;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *dir = NULL;
	g_autofree gchar *path = NULL;
	g_autofree gchar *hex = NULL;
	g_autofree gchar *expected = NULL;
	g_autofree gchar *buf = g_malloc(count);
	g_autoptr(AsSha256) sha = as_sha256_new();
	g_autofree gchar *hex_parts = NULL;
	gboolean ret;
	int fd = open_pattern_file(&dir, &path, 5, count, 1);

	memset(buf, 'a', count);
	expected = as_sha256_data_hex(buf, count);
	hex = as_sha256_fd_range(fd, 5, count, NULL, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(hex, ==, expected);

	/* the same range hashed in two pieces through one context */
	ret = as_sha256_update_fd_range(sha, fd, 5, MIB + 1, NULL, &error);
	g_assert_no_error(error);
	g_assert_true(ret);
	ret = as_sha256_update_fd_range(sha, fd, 5 + MIB + 1, count - MIB - 1, NULL, &error);
	g_assert_no_error(error);
	g_assert_true(ret);
	hex_parts = as_sha256_finish_hex(sha);
	g_assert_cmpstr(hex_parts, ==, expected);
	remove_pattern_file(fd, dir, path);
}

static void
as_sha256_fd_range_errors_func(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GCancellable) cancellable = g_cancellable_new();
	g_autofree gchar *dir = NULL;
	g_autofree gchar *path = NULL;
	g_autofree gchar *hex = NULL;
	int fd = open_pattern_file(&dir, &path, 0, 100, 0);
	int dir_fd;

	/* one byte past the end of the file */
	hex = as_sha256_fd_range(fd, 0, 101, NULL, &error);
	g_assert_error(error, AS_ERROR, AS_ERROR_INCOMPLETE);
	g_assert_null(hex);
	g_clear_error(&error);

	hex = as_sha256_fd_range(fd, 200, 1, NULL, &error);
	g_assert_error(error, AS_ERROR, AS_ERROR_INCOMPLETE);
	g_assert_null(hex);
	g_clear_error(&error);

	hex = as_sha256_fd_range(fd, G_MAXUINT64 - 1, 10, NULL, &error);
	g_assert_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT);
	g_assert_null(hex);
	g_clear_error(&error);

	g_cancellable_cancel(cancellable);
	hex = as_sha256_fd_range(fd, 0, 100, cancellable, &error);
	g_assert_error(error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
	g_assert_null(hex);
	g_clear_error(&error);

	/* reading a directory fails with EISDIR */
	dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	g_assert_cmpint(dir_fd, >=, 0);
	hex = as_sha256_fd_range(dir_fd, 0, 1, NULL, &error);
	g_assert_error(error, AS_ERROR, AS_ERROR_IO);
	g_assert_null(hex);
	close(dir_fd);
	remove_pattern_file(fd, dir, path);
}

static void
as_sha256_hex_valid_func(void)
{
	g_autofree gchar *upper = g_ascii_strup(SHA256_ABC, -1);
	g_autofree gchar *longer = g_strconcat(SHA256_ABC, "0", NULL);
	g_autofree gchar *shorter = g_strndup(SHA256_ABC, AS_SHA256_HEX_LEN - 1);
	g_autofree gchar *non_hex = g_strdup(SHA256_ABC);
	g_autofree gchar *spaced = g_strdup(SHA256_ABC);

	non_hex[10] = 'g';
	spaced[63] = ' ';
	g_assert_true(as_sha256_hex_is_valid(SHA256_ABC));
	g_assert_true(as_sha256_hex_is_valid(upper));
	g_assert_false(as_sha256_hex_is_valid(NULL));
	g_assert_false(as_sha256_hex_is_valid(""));
	g_assert_false(as_sha256_hex_is_valid(longer));
	g_assert_false(as_sha256_hex_is_valid(shorter));
	g_assert_false(as_sha256_hex_is_valid(non_hex));
	g_assert_false(as_sha256_hex_is_valid(spaced));
}

static void
as_sha256_hex_equal_func(void)
{
	g_autofree gchar *upper = g_ascii_strup(SHA256_ABC, -1);
	g_autofree gchar *last = g_strdup(SHA256_ABC);
	g_autofree gchar *first = g_strdup(SHA256_ABC);
	g_autofree gchar *invalid = g_strdup(SHA256_ABC);

	last[63] = last[63] == '0' ? '1' : '0';
	first[0] = first[0] == '0' ? '1' : '0';
	invalid[5] = 'z';

	g_assert_true(as_sha256_hex_equal(SHA256_ABC, SHA256_ABC));
	g_assert_true(as_sha256_hex_equal(SHA256_ABC, upper));
	g_assert_true(as_sha256_hex_equal(upper, SHA256_ABC));
	g_assert_false(as_sha256_hex_equal(SHA256_ABC, SHA256_EMPTY));
	g_assert_false(as_sha256_hex_equal(SHA256_ABC, last));
	g_assert_false(as_sha256_hex_equal(SHA256_ABC, first));

	/* invalid input never compares equal, not even to itself */
	g_assert_false(as_sha256_hex_equal(invalid, invalid));
	g_assert_false(as_sha256_hex_equal("abc", "abc"));
	g_assert_false(as_sha256_hex_equal(NULL, NULL));
	g_assert_false(as_sha256_hex_equal(SHA256_ABC, NULL));
}

static void
as_sha256_memeq_func(void)
{
	const guint8 a[] = {1, 2, 3, 4, 5};
	const guint8 b[] = {1, 2, 3, 4, 5};
	const guint8 c[] = {1, 2, 3, 4, 6};
	const guint8 d[] = {0, 2, 3, 4, 5};

	g_assert_true(as_memeq_const_time(a, b, sizeof(a)));
	g_assert_false(as_memeq_const_time(a, c, sizeof(a)));
	g_assert_false(as_memeq_const_time(a, d, sizeof(a)));
	g_assert_true(as_memeq_const_time(a, c, sizeof(a) - 1));
	g_assert_true(as_memeq_const_time(NULL, NULL, 0));
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/aerosync/sha256/vectors", as_sha256_vectors_func);
	g_test_add_func("/aerosync/sha256/streaming", as_sha256_streaming_func);
	g_test_add_func("/aerosync/sha256/fd-range", as_sha256_fd_range_func);
	g_test_add_func("/aerosync/sha256/fd-range-multi-block",
			as_sha256_fd_range_multi_block_func);
	g_test_add_func("/aerosync/sha256/fd-range-errors", as_sha256_fd_range_errors_func);
	g_test_add_func("/aerosync/sha256/hex-valid", as_sha256_hex_valid_func);
	g_test_add_func("/aerosync/sha256/hex-equal", as_sha256_hex_equal_func);
	g_test_add_func("/aerosync/sha256/memeq", as_sha256_memeq_func);
	return g_test_run();
}
