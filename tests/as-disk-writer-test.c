/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "AsDiskWriterTest"

#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <linux/magic.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "as-disk-writer.h"
#include "as-error.h"
#include "as-sha256-state.h"
#include "as-sha256.h"
#include "as-write-behind.h"

/* size of the pieces libsoup hands to the daemon */
#define TEST_PIECE_SIZE (8 * 1024)

/* stream size of the throughput measurement */
#define TEST_THROUGHPUT_BYTES (1024ull * 1024 * 1024)

typedef struct {
	gchar *tmpdir;
	gchar *path;
	int fd;
} TestFile;

static void
test_file_open(TestFile *tf)
{
	g_autoptr(GError) error = NULL;

	tf->tmpdir = g_dir_make_tmp("as-disk-writer-XXXXXX", &error);
	g_assert_no_error(error);
	tf->path = g_build_filename(tf->tmpdir, "out.bin", NULL);
	tf->fd = open(tf->path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	g_assert_cmpint(tf->fd, >=, 0);
}

static void
test_file_close(TestFile *tf)
{
	if (tf->fd >= 0)
		close(tf->fd);
	g_assert_cmpint(g_unlink(tf->path), ==, 0);
	g_assert_cmpint(g_rmdir(tf->tmpdir), ==, 0);
	g_free(tf->path);
	g_free(tf->tmpdir);
}

/* deterministic bytes that differ from block to block */
static void
test_fill_pattern(guint8 *buf, gsize len, guint64 seed)
{
	guint64 x = seed * 0x9e3779b97f4a7c15ull + 1;
	for (gsize i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		buf[i] = (guint8)x;
	}
}

static void
test_async_result_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	GAsyncResult **out = user_data;
	*out = g_object_ref(res);
}

/* runs the default context until the writer has finished */
static gchar *
test_finish_sync(AsDiskWriter *writer, GError **error)
{
	g_autoptr(GAsyncResult) res = NULL;

	as_disk_writer_finish_async(writer, NULL, test_async_result_cb, &res);
	while (res == NULL)
		g_main_context_iteration(NULL, TRUE);
	return as_disk_writer_finish_finish(writer, res, error);
}

static void
as_disk_writer_content_func(void)
{
	/* sizes straddle block boundaries in every way */
	const gsize pieces[] = {1,
				7,
				TEST_PIECE_SIZE - 1,
				AS_DISK_WRITER_BLOCK_SIZE - 8,
				AS_DISK_WRITER_BLOCK_SIZE,
				AS_DISK_WRITER_BLOCK_SIZE + 3,
				3 * AS_DISK_WRITER_BLOCK_SIZE + 5,
				12345,
				0,
				99};
	const guint64 offset = 4096 + 17;
	g_autoptr(AsDiskWriter) writer = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GByteArray) expected = g_byte_array_new();
	g_autofree gchar *hex = NULL;
	g_autofree gchar *expected_hex = NULL;
	g_autofree gchar *contents = NULL;
	gsize contents_len = 0;
	TestFile tf = {0};

	test_file_open(&tf);
	writer = as_disk_writer_new(tf.fd, offset, TRUE);
	/* the writer has its own copy of the fd */
	close(tf.fd);
	tf.fd = -1;

	for (guint i = 0; i < G_N_ELEMENTS(pieces); i++) {
		g_autofree guint8 *buf = g_malloc(MAX(pieces[i], 1));
		test_fill_pattern(buf, pieces[i], i);
		g_byte_array_append(expected, buf, (guint)pieces[i]);
		(void)as_disk_writer_write(writer, buf, pieces[i]);
		g_assert_cmpuint(as_disk_writer_get_bytes_written(writer), ==, expected->len);
	}
	hex = test_finish_sync(writer, &error);
	g_assert_no_error(error);
	g_assert_false(as_disk_writer_has_failed(writer));

	expected_hex = as_sha256_data_hex(expected->data, expected->len);
	g_assert_cmpstr(hex, ==, expected_hex);
	g_assert_true(g_file_get_contents(tf.path, &contents, &contents_len, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(contents_len, ==, offset + expected->len);
	for (guint64 i = 0; i < offset; i++)
		g_assert_cmpint(contents[i], ==, 0);
	g_assert_cmpmem(contents + offset, expected->len, expected->data, expected->len);

	test_file_close(&tf);
}

static void
as_disk_writer_no_hash_func(void)
{
	g_autoptr(AsDiskWriter) writer = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *hex = NULL;
	g_autofree gchar *contents = NULL;
	gsize contents_len = 0;
	TestFile tf = {0};

	test_file_open(&tf);
	writer = as_disk_writer_new(tf.fd, 0, FALSE);
	g_assert_false(as_disk_writer_write(writer, "hello ", 6));
	g_assert_false(as_disk_writer_write(writer, "world", 5));
	hex = test_finish_sync(writer, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(hex, ==, "");
	g_assert_true(g_file_get_contents(tf.path, &contents, &contents_len, &error));
	g_assert_cmpstr(contents, ==, "hello world");
	test_file_close(&tf);
}

static void
as_disk_writer_empty_func(void)
{
	g_autoptr(AsDiskWriter) writer = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *hex = NULL;
	g_autofree gchar *empty_hex = as_sha256_data_hex("", 0);
	TestFile tf = {0};

	test_file_open(&tf);
	writer = as_disk_writer_new(tf.fd, 0, TRUE);
	hex = test_finish_sync(writer, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(hex, ==, empty_hex);
	g_assert_cmpuint(as_disk_writer_get_bytes_written(writer), ==, 0);
	test_file_close(&tf);
}

typedef struct {
	GMainLoop *loop;
	AsDiskWriter *writer;
	guint8 *piece;
	guint64 total;	  /* bytes to produce */
	guint64 produced; /* bytes handed to write() */
	guint drain_count;
	guint pause_count;
	guint source_id;
	gboolean stop_at_first_pause;
	AsSha256 *sha256; /* nullable: hash of what was produced, to compare */
} TestProducer;

static gboolean test_producer_idle_cb(gpointer user_data);

static void
test_producer_drain_cb(AsDiskWriter *writer, gpointer user_data)
{
	TestProducer *p = user_data;

	g_assert_true(writer == p->writer);
	g_assert_cmpuint(p->source_id, ==, 0);
	p->drain_count++;
	if (p->stop_at_first_pause) {
		g_main_loop_quit(p->loop);
		return;
	}
	p->source_id = g_idle_add(test_producer_idle_cb, p);
}

/* like a libsoup body: pieces until write() asks for a pause, then wait for the drain */
static gboolean
test_producer_idle_cb(gpointer user_data)
{
	TestProducer *p = user_data;

	while (p->produced < p->total) {
		gsize len = (gsize)MIN((guint64)TEST_PIECE_SIZE, p->total - p->produced);
		gboolean pause;

		if (p->sha256 != NULL)
			as_sha256_update(p->sha256, p->piece, len);
		pause = as_disk_writer_write(p->writer, p->piece, len);
		p->produced += len;
		if (pause) {
			p->pause_count++;
			p->source_id = 0;
			if (p->stop_at_first_pause)
				g_assert_true(as_disk_writer_write(p->writer, p->piece, 0));
			return G_SOURCE_REMOVE;
		}
	}
	p->source_id = 0;
	g_main_loop_quit(p->loop);
	return G_SOURCE_REMOVE;
}

static void
as_disk_writer_backpressure_func(void)
{
	g_autoptr(AsDiskWriter) writer = NULL;
	g_autoptr(GMainLoop) loop = g_main_loop_new(NULL, FALSE);
	g_autoptr(GError) error = NULL;
	g_autoptr(AsSha256State) file_hash = NULL;
	g_autofree guint8 *piece = g_malloc(TEST_PIECE_SIZE);
	g_autofree gchar *hex = NULL;
	g_autofree gchar *expected_hex = NULL;
	TestProducer p = {0};
	TestFile tf = {0};
	struct stat st;

	test_file_open(&tf);
	test_fill_pattern(piece, TEST_PIECE_SIZE, 42);
	writer = as_disk_writer_new(tf.fd, 0, TRUE);
	p.loop = loop;
	p.writer = writer;
	p.piece = piece;
	/* hashing is several times slower than memcpy(), so the backlog builds up long before;
	 * the producer does not hash itself, or it could be as slow as the writer and never
	 * see a pause: the file is hashed afterwards instead */
	p.total = 256 * 1024 * 1024;
	p.stop_at_first_pause = TRUE;
	as_disk_writer_set_drain_func(writer, test_producer_drain_cb, &p);

	p.source_id = g_idle_add(test_producer_idle_cb, &p);
	g_main_loop_run(loop);
	g_assert_cmpuint(p.pause_count, ==, 1);
	g_assert_cmpuint(p.drain_count, ==, 1);
	/* the pause came at the high-water mark, not before */
	g_assert_cmpuint(p.produced, >=, AS_DISK_WRITER_HIGH_WATER);
	/* just drained: the backlog is below the low-water mark */
	g_assert_false(as_disk_writer_write(writer, piece, 1));
	p.produced++;

	/* the rest with pauses and drains, like a real upload */
	p.stop_at_first_pause = FALSE;
	p.total = p.produced + 64 * 1024 * 1024 + 5;
	p.source_id = g_idle_add(test_producer_idle_cb, &p);
	g_main_loop_run(loop);
	g_assert_cmpuint(p.drain_count, ==, p.pause_count);
	g_assert_cmpuint(as_disk_writer_get_bytes_written(writer), ==, p.produced);

	hex = test_finish_sync(writer, &error);
	g_assert_no_error(error);
	g_assert_cmpint(fstat(tf.fd, &st), ==, 0);
	g_assert_cmpuint((guint64)st.st_size, ==, p.produced);
	file_hash = as_sha256_state_new();
	g_assert_true(
		as_sha256_state_update_fd_range(file_hash, tf.fd, 0, p.produced, NULL, &error));
	g_assert_no_error(error);
	expected_hex = as_sha256_state_finish_hex(file_hash);
	g_assert_cmpstr(hex, ==, expected_hex);
	test_file_close(&tf);
}

static void
as_disk_writer_abort_func(void)
{
	g_autoptr(AsDiskWriter) writer = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree guint8 *buf = g_malloc0(AS_DISK_WRITER_BLOCK_SIZE);
	g_autofree gchar *hex = NULL;
	TestFile tf = {0};
	struct stat st;

	test_file_open(&tf);
	writer = as_disk_writer_new(tf.fd, 0, TRUE);
	for (guint i = 0; i < 20; i++)
		(void)as_disk_writer_write(writer, buf, AS_DISK_WRITER_BLOCK_SIZE);
	(void)as_disk_writer_write(writer, buf, 100);
	g_assert_cmpuint(as_disk_writer_get_bytes_written(writer), ==,
			 20 * AS_DISK_WRITER_BLOCK_SIZE + 100);
	as_disk_writer_abort(writer);
	as_disk_writer_abort(writer);
	g_assert_true(as_disk_writer_has_failed(writer));

	/* dropped: neither counted nor written */
	g_assert_false(as_disk_writer_write(writer, buf, 100));
	g_assert_cmpuint(as_disk_writer_get_bytes_written(writer), ==,
			 20 * AS_DISK_WRITER_BLOCK_SIZE + 100);
	hex = test_finish_sync(writer, &error);
	g_assert_error(error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
	g_assert_null(hex);

	/* the partial block never reached the file and the worker stopped */
	g_assert_cmpint(fstat(tf.fd, &st), ==, 0);
	g_assert_cmpuint((guint64)st.st_size % AS_DISK_WRITER_BLOCK_SIZE, ==, 0);
	g_assert_cmpuint((guint64)st.st_size, <=, 20 * AS_DISK_WRITER_BLOCK_SIZE);
	test_file_close(&tf);
}

static void
as_disk_writer_abort_while_finishing_func(void)
{
	g_autoptr(AsDiskWriter) writer = NULL;
	g_autoptr(GAsyncResult) res = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree guint8 *buf = g_malloc0(AS_DISK_WRITER_BLOCK_SIZE);
	g_autofree gchar *hex = NULL;
	TestFile tf = {0};

	test_file_open(&tf);
	writer = as_disk_writer_new(tf.fd, 0, TRUE);
	for (guint i = 0; i < 8; i++)
		(void)as_disk_writer_write(writer, buf, AS_DISK_WRITER_BLOCK_SIZE);
	as_disk_writer_finish_async(writer, NULL, test_async_result_cb, &res);
	as_disk_writer_abort(writer);
	while (res == NULL)
		g_main_context_iteration(NULL, TRUE);

	/* whichever came first, the finish must report exactly once, and an abort wins */
	hex = as_disk_writer_finish_finish(writer, res, &error);
	if (hex != NULL)
		g_assert_cmpuint(strlen(hex), ==, AS_SHA256_HEX_LEN);
	else
		g_assert_error(error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
	test_file_close(&tf);
}

static void
as_disk_writer_cancel_func(void)
{
	g_autoptr(AsDiskWriter) writer = NULL;
	g_autoptr(GAsyncResult) res = NULL;
	g_autoptr(GCancellable) cancellable = g_cancellable_new();
	g_autoptr(GError) error = NULL;
	g_autofree guint8 *buf = g_malloc0(AS_DISK_WRITER_BLOCK_SIZE);
	g_autofree gchar *hex = NULL;
	TestFile tf = {0};

	test_file_open(&tf);
	writer = as_disk_writer_new(tf.fd, 0, FALSE);
	for (guint i = 0; i < 4; i++)
		(void)as_disk_writer_write(writer, buf, AS_DISK_WRITER_BLOCK_SIZE);
	g_cancellable_cancel(cancellable);
	as_disk_writer_finish_async(writer, cancellable, test_async_result_cb, &res);
	while (res == NULL)
		g_main_context_iteration(NULL, TRUE);
	hex = as_disk_writer_finish_finish(writer, res, &error);
	g_assert_error(error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
	g_assert_null(hex);
	test_file_close(&tf);
}

static void
test_count_drain_cb(AsDiskWriter *writer, gpointer user_data)
{
	guint *count = user_data;
	(*count)++;
}

static gboolean
test_timeout_cb(gpointer user_data)
{
	g_assert_not_reached();
	return G_SOURCE_REMOVE;
}

static void
as_disk_writer_io_error_func(void)
{
	g_autoptr(AsDiskWriter) writer = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree guint8 *buf = g_malloc0(AS_DISK_WRITER_BLOCK_SIZE);
	g_autofree gchar *hex = NULL;
	TestFile tf = {0};
	gboolean paused = FALSE;
	guint drain_count = 0;
	int ro_fd;

	test_file_open(&tf);
	ro_fd = open(tf.path, O_RDONLY | O_CLOEXEC);
	g_assert_cmpint(ro_fd, >=, 0);
	writer = as_disk_writer_new(ro_fd, 0, TRUE);
	close(ro_fd);
	as_disk_writer_set_drain_func(writer, test_count_drain_cb, &drain_count);

	/* whether the backlog reaches the high-water mark before the first write fails is a
	 * race; if the producer was told to pause, the failure must wake it up */
	for (guint i = 0; i < 64 && !paused; i++)
		paused = as_disk_writer_write(writer, buf, AS_DISK_WRITER_BLOCK_SIZE);
	if (paused) {
		guint timeout_id = g_timeout_add_seconds(10, test_timeout_cb, NULL);
		while (drain_count == 0)
			g_main_context_iteration(NULL, TRUE);
		g_source_remove(timeout_id);
	}
	g_test_message("producer paused before the failure: %s", paused ? "yes" : "no");
	hex = test_finish_sync(writer, &error);
	g_assert_cmpuint(drain_count, ==, paused ? 1 : 0);
	g_assert_error(error, AS_ERROR, AS_ERROR_IO);
	g_assert_null(hex);
	g_assert_true(as_disk_writer_has_failed(writer));
	g_assert_nonnull(strstr(error->message, g_strerror(EBADF)));
	test_file_close(&tf);
}

/* one attempt at pausing a producer just before its writer fails; returns whether it paused */
static gboolean
test_fail_wakes_producer_once(void)
{
	g_autoptr(AsDiskWriter) writer = NULL;
	g_autoptr(GPtrArray) blockers = g_ptr_array_new_with_free_func(g_object_unref);
	g_autoptr(GError) error = NULL;
	g_autofree guint8 *buf = g_malloc0(AS_DISK_WRITER_BLOCK_SIZE);
	g_autofree gchar *hex = NULL;
	TestFile tf = {0};
	gboolean paused = FALSE;
	guint drain_count = 0;
	guint n_blockers = 2 * MAX(g_get_num_processors(), 2);
	int null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	int ro_fd;

	/* keep every thread of the shared pool busy hashing, so the failing writer's blocks
	 * queue up before its first write fails */
	g_assert_cmpint(null_fd, >=, 0);
	for (guint i = 0; i < n_blockers; i++) {
		AsDiskWriter *blocker = as_disk_writer_new(null_fd, 0, TRUE);
		for (guint j = 0; j < 32; j++)
			(void)as_disk_writer_write(blocker, buf, AS_DISK_WRITER_BLOCK_SIZE);
		g_ptr_array_add(blockers, blocker);
	}
	close(null_fd);

	test_file_open(&tf);
	ro_fd = open(tf.path, O_RDONLY | O_CLOEXEC);
	g_assert_cmpint(ro_fd, >=, 0);
	writer = as_disk_writer_new(ro_fd, 0, FALSE);
	close(ro_fd);
	as_disk_writer_set_drain_func(writer, test_count_drain_cb, &drain_count);
	for (guint i = 0; i < AS_DISK_WRITER_HIGH_WATER / AS_DISK_WRITER_BLOCK_SIZE && !paused; i++)
		paused = as_disk_writer_write(writer, buf, AS_DISK_WRITER_BLOCK_SIZE);
	if (paused) {
		guint timeout_id = g_timeout_add_seconds(10, test_timeout_cb, NULL);
		while (drain_count == 0)
			g_main_context_iteration(NULL, TRUE);
		g_source_remove(timeout_id);
		g_assert_true(as_disk_writer_has_failed(writer));
	}
	hex = test_finish_sync(writer, &error);
	g_assert_error(error, AS_ERROR, AS_ERROR_IO);
	g_assert_null(hex);
	g_assert_cmpuint(drain_count, ==, paused ? 1 : 0);

	for (guint i = 0; i < blockers->len; i++) {
		g_autoptr(GError) error_blocker = NULL;
		g_autofree gchar *hex_blocker =
			test_finish_sync(g_ptr_array_index(blockers, i), &error_blocker);
		g_assert_no_error(error_blocker);
	}
	test_file_close(&tf);
	return paused;
}

/* a producer paused by the high-water mark must be woken up by a failure too */
static void
as_disk_writer_fail_wakes_producer_func(void)
{
	const guint max_attempts = 10;

	for (guint i = 0; i < max_attempts; i++) {
		if (test_fail_wakes_producer_once()) {
			g_test_message("paused before the failure at attempt %u", i + 1);
			return;
		}
	}
	g_test_skip("the writer always failed before the producer was paused");
}

static void
as_disk_writer_bad_fd_func(void)
{
	g_autoptr(AsDiskWriter) writer = as_disk_writer_new(-1, 0, TRUE);
	g_autoptr(GError) error = NULL;
	g_autofree gchar *hex = NULL;

	g_assert_true(as_disk_writer_has_failed(writer));
	g_assert_false(as_disk_writer_write(writer, "x", 1));
	hex = test_finish_sync(writer, &error);
	g_assert_error(error, AS_ERROR, AS_ERROR_IO);
	g_assert_null(hex);
}

/* several writers share the pool; each must stay in order */
static void
as_disk_writer_many_func(void)
{
	const guint n_writers = 6;
	const gsize per_writer = 12 * AS_DISK_WRITER_BLOCK_SIZE + 333;
	g_autofree guint8 *buf = g_malloc(per_writer);
	g_autofree gchar *expected_hex = NULL;
	AsDiskWriter *writers[6];
	TestFile files[6] = {0};

	test_fill_pattern(buf, per_writer, 7);
	expected_hex = as_sha256_data_hex(buf, per_writer);
	for (guint i = 0; i < n_writers; i++) {
		test_file_open(&files[i]);
		writers[i] = as_disk_writer_new(files[i].fd, 0, TRUE);
	}
	/* interleave the streams in odd-sized pieces */
	for (gsize done = 0; done < per_writer;) {
		gsize len = MIN((gsize)77777, per_writer - done);
		for (guint i = 0; i < n_writers; i++)
			(void)as_disk_writer_write(writers[i], buf + done, len);
		done += len;
	}
	for (guint i = 0; i < n_writers; i++) {
		g_autoptr(GError) error = NULL;
		g_autofree gchar *hex = test_finish_sync(writers[i], &error);
		g_autofree gchar *file_hex = NULL;

		g_assert_no_error(error);
		g_assert_cmpstr(hex, ==, expected_hex);
		file_hex = as_sha256_fd_range(files[i].fd, 0, per_writer, NULL, &error);
		g_assert_no_error(error);
		g_assert_cmpstr(file_hex, ==, expected_hex);
		g_object_unref(writers[i]);
		test_file_close(&files[i]);
	}
}

/* streams TEST_THROUGHPUT_BYTES of @piece to @fd like an upload, returns the digest */
static gchar *
test_measure_throughput(int fd, const guint8 *piece, const gchar *what)
{
	g_autoptr(AsDiskWriter) writer = as_disk_writer_new(fd, 0, TRUE);
	g_autoptr(GMainLoop) loop = g_main_loop_new(NULL, FALSE);
	g_autoptr(GError) error = NULL;
	g_autofree gchar *hex = NULL;
	TestProducer p = {0};
	gint64 start_us, elapsed_us;

	p.loop = loop;
	p.writer = writer;
	p.piece = (guint8 *)piece;
	p.total = TEST_THROUGHPUT_BYTES;
	as_disk_writer_set_drain_func(writer, test_producer_drain_cb, &p);

	start_us = g_get_monotonic_time();
	p.source_id = g_idle_add(test_producer_idle_cb, &p);
	g_main_loop_run(loop);
	hex = test_finish_sync(writer, &error);
	elapsed_us = g_get_monotonic_time() - start_us;
	g_assert_no_error(error);
	g_assert_cmpuint(as_disk_writer_get_bytes_written(writer), ==, TEST_THROUGHPUT_BYTES);
	g_test_message("1 GiB in 8 KiB pieces with SHA-256 to %s: %.2f s, %.2f GB/s, %u pauses",
		       what, elapsed_us / 1e6,
		       (double)TEST_THROUGHPUT_BYTES / 1e3 / (double)elapsed_us, p.pause_count);
	return g_steal_pointer(&hex);
}

static void
as_disk_writer_throughput_func(void)
{
	g_autoptr(AsSha256) sha256 = as_sha256_new();
	g_autofree guint8 *piece = g_malloc(TEST_PIECE_SIZE);
	g_autofree gchar *hex = NULL;
	g_autofree gchar *expected_hex = NULL;
	TestFile tf = {0};
	struct stat st;
	int null_fd;

	test_fill_pattern(piece, TEST_PIECE_SIZE, 1);
	for (guint64 i = 0; i < TEST_THROUGHPUT_BYTES / TEST_PIECE_SIZE; i++)
		as_sha256_update(sha256, piece, TEST_PIECE_SIZE);
	expected_hex = as_sha256_finish_hex(sha256);

	test_file_open(&tf);
	hex = test_measure_throughput(tf.fd, piece, "a file");
	g_assert_cmpstr(hex, ==, expected_hex);
	g_assert_cmpint(fstat(tf.fd, &st), ==, 0);
	g_assert_cmpuint((guint64)st.st_size, ==, TEST_THROUGHPUT_BYTES);
	test_file_close(&tf);

	/* the writer's own ceiling, without the page cache: bound by SHA-256 alone */
	null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (null_fd >= 0) {
		g_autofree gchar *null_hex = test_measure_throughput(null_fd, piece, "/dev/null");
		g_assert_cmpstr(null_hex, ==, expected_hex);
		close(null_fd);
	}
}

/* bytes of @path in the page cache */
static guint64
test_resident_bytes(const gchar *path, guint64 size)
{
	long page = sysconf(_SC_PAGESIZE);
	gsize pages = (gsize)((size + (guint64)page - 1) / (guint64)page);
	g_autofree guint8 *vec = g_malloc(pages);
	guint64 resident = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	void *map;

	g_assert_cmpint(fd, >=, 0);
	map = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
	g_assert_true(map != MAP_FAILED);
	g_assert_cmpint(mincore(map, size, vec), ==, 0);
	for (gsize i = 0; i < pages; i++)
		resident += (vec[i] & 1) ? (guint64)page : 0;
	munmap(map, size);
	close(fd);
	return resident;
}

/* a whole file written behind: same bytes and hash, and it leaves the page cache */
static void
as_disk_writer_write_behind_func(void)
{
	const guint64 offset = 4096 + 17;
	const guint n_pieces = AS_WRITE_BEHIND_WINDOW / AS_DISK_WRITER_BLOCK_SIZE + 8;
	g_autofree guint8 *buf = g_malloc(AS_DISK_WRITER_BLOCK_SIZE);
	g_autoptr(AsDiskWriter) writer = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GChecksum) expected = g_checksum_new(G_CHECKSUM_SHA256);
	g_autofree gchar *hex = NULL;
	g_autofree gchar *contents = NULL;
	g_autofree gchar *file_hex = NULL;
	gsize contents_len = 0;
	guint64 total = (guint64)n_pieces * AS_DISK_WRITER_BLOCK_SIZE;
	struct statfs fs;
	guint drains = 0;
	TestFile tf = {0};

	test_file_open(&tf);
	writer = as_disk_writer_new(tf.fd, offset, TRUE);
	as_disk_writer_set_write_behind(writer);
	as_disk_writer_set_drain_func(writer, test_count_drain_cb, &drains);
	for (guint i = 0; i < n_pieces; i++) {
		test_fill_pattern(buf, AS_DISK_WRITER_BLOCK_SIZE, i);
		g_checksum_update(expected, buf, AS_DISK_WRITER_BLOCK_SIZE);
		/* pause when asked to, as a producer under backpressure does */
		if (as_disk_writer_write(writer, buf, AS_DISK_WRITER_BLOCK_SIZE)) {
			guint drains_before = drains;
			while (drains == drains_before)
				g_main_context_iteration(NULL, TRUE);
		}
	}
	hex = test_finish_sync(writer, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(hex, ==, g_checksum_get_string(expected));

	/* dropped pages are read back from the disk intact */
	if (fstatfs(tf.fd, &fs) == 0 && fs.f_type != TMPFS_MAGIC)
		g_assert_cmpuint(test_resident_bytes(tf.path, offset + total), <, total / 2);
	g_assert_true(g_file_get_contents(tf.path, &contents, &contents_len, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(contents_len, ==, offset + total);
	file_hex = as_sha256_data_hex(contents + offset, total);
	g_assert_cmpstr(file_hex, ==, hex);
	test_file_close(&tf);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/aerosync/disk-writer/content", as_disk_writer_content_func);
	g_test_add_func("/aerosync/disk-writer/no-hash", as_disk_writer_no_hash_func);
	g_test_add_func("/aerosync/disk-writer/empty", as_disk_writer_empty_func);
	g_test_add_func("/aerosync/disk-writer/backpressure", as_disk_writer_backpressure_func);
	g_test_add_func("/aerosync/disk-writer/abort", as_disk_writer_abort_func);
	g_test_add_func("/aerosync/disk-writer/abort-while-finishing",
			as_disk_writer_abort_while_finishing_func);
	g_test_add_func("/aerosync/disk-writer/cancel", as_disk_writer_cancel_func);
	g_test_add_func("/aerosync/disk-writer/io-error", as_disk_writer_io_error_func);
	g_test_add_func("/aerosync/disk-writer/fail-wakes-producer",
			as_disk_writer_fail_wakes_producer_func);
	g_test_add_func("/aerosync/disk-writer/bad-fd", as_disk_writer_bad_fd_func);
	g_test_add_func("/aerosync/disk-writer/many", as_disk_writer_many_func);
	g_test_add_func("/aerosync/disk-writer/write-behind", as_disk_writer_write_behind_func);
	g_test_add_func("/aerosync/disk-writer/throughput", as_disk_writer_throughput_func);
	return g_test_run();
}
