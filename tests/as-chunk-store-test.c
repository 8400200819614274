/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "AsChunkStoreTest"

#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <sched.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "as-chunk-store.h"
#include "as-disk-writer.h"
#include "as-error.h"
#include "as-path.h"
#include "as-sha256.h"

/* a small file in uneven chunks: 10 full chunks and a short last one */
#define TEST_CHUNK_SIZE	  1000
#define TEST_TOTAL_SIZE	  10500
#define TEST_TOTAL_CHUNKS 11

/* size of the tmpfs used to fill the disk */
#define TEST_TMPFS_SIZE "size=4m"

typedef struct {
	gchar *tmpdir;
	gchar *receive_dir;
	AsChunkStore *store;
} TestFixture;

static void
test_rmtree(const gchar *path)
{
	GDir *dir;
	const gchar *name;

	dir = g_dir_open(path, 0, NULL);
	if (dir == NULL) {
		(void)g_unlink(path);
		return;
	}
	while ((name = g_dir_read_name(dir)) != NULL) {
		g_autofree gchar *child = g_build_filename(path, name, NULL);
		struct stat st;
		if (lstat(child, &st) == 0 && S_ISDIR(st.st_mode))
			test_rmtree(child);
		else
			g_assert_cmpint(g_unlink(child), ==, 0);
	}
	g_dir_close(dir);
	g_assert_cmpint(g_rmdir(path), ==, 0);
}

static void
test_fixture_set_up(TestFixture *fx, gconstpointer user_data)
{
	g_autoptr(GError) error = NULL;

	fx->tmpdir = g_dir_make_tmp("as-chunk-store-XXXXXX", &error);
	g_assert_no_error(error);
	fx->receive_dir = g_build_filename(fx->tmpdir, "received", NULL);
	fx->store = as_chunk_store_new(fx->receive_dir, 0, &error);
	g_assert_no_error(error);
	g_assert_nonnull(fx->store);
}

static void
test_fixture_tear_down(TestFixture *fx, gconstpointer user_data)
{
	g_clear_object(&fx->store);
	test_rmtree(fx->tmpdir);
	g_free(fx->receive_dir);
	g_free(fx->tmpdir);
}

/* deterministic bytes */
static GBytes *
test_make_data(gsize len, guint seed)
{
	guint8 *buf = g_malloc(MAX(len, 1));
	guint32 x = seed * 2654435761u + 1;

	for (gsize i = 0; i < len; i++) {
		x = x * 1103515245u + 12345u;
		buf[i] = (guint8)(x >> 16);
	}
	return g_bytes_new_take(buf, len);
}

static void
test_async_result_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	GAsyncResult **out = user_data;
	*out = g_object_ref(res);
}

static void
test_wait(GAsyncResult **res)
{
	while (*res == NULL)
		g_main_context_iteration(NULL, TRUE);
}

/* writes @body through AsDiskWriter like the daemon does */
static gboolean
test_write_at(int fd, guint64 offset, const guint8 *body, gsize len, GError **error)
{
	g_autoptr(AsDiskWriter) writer = as_disk_writer_new(fd, offset, FALSE);
	g_autoptr(GAsyncResult) res = NULL;
	g_autofree gchar *hex = NULL;

	/* odd pieces, as from the network */
	for (gsize done = 0; done < len;) {
		gsize n = MIN((gsize)333, len - done);
		(void)as_disk_writer_write(writer, body + done, n);
		done += n;
	}
	as_disk_writer_finish_async(writer, NULL, test_async_result_cb, &res);
	test_wait(&res);
	hex = as_disk_writer_finish_finish(writer, res, error);
	return hex != NULL;
}

/* one POST /upload/chunk: @file is the whole file, the chunk is cut from it */
static gboolean
test_upload_chunk(
	AsChunkTask *task, guint32 index, GBytes *file, gboolean *already_done, GError **error)
{
	guint64 offset = 0, length = 0;
	AsChunkClaim claim = {0};
	const guint8 *data = g_bytes_get_data(file, NULL);

	if (!as_chunk_task_chunk_range(task, index, &offset, &length, error))
		return FALSE;
	if (!as_chunk_task_begin_chunk(task, index, length, NULL, &claim, error))
		return FALSE;
	if (already_done != NULL)
		*already_done = claim.already_done;
	if (claim.already_done)
		return TRUE;
	if (!test_write_at(as_chunk_task_get_fd(task), offset, data + offset, length, error)) {
		g_assert_true(as_chunk_task_end_chunk(task, &claim, FALSE, NULL, NULL));
		return FALSE;
	}
	return as_chunk_task_end_chunk(task, &claim, TRUE, NULL, error);
}

static gchar *
test_complete(AsChunkTask *task,
	      const gchar *expected_sha256,
	      gboolean overwrite,
	      gchar **sha256_out,
	      GError **error)
{
	g_autoptr(GAsyncResult) res = NULL;

	as_chunk_task_complete_async(task, expected_sha256, overwrite, NULL, test_async_result_cb,
				     &res);
	test_wait(&res);
	return as_chunk_task_complete_finish(task, res, sha256_out, error);
}

static AsChunkTask *
test_open_default(TestFixture *fx, const gchar *task_id, const gchar *rel_path)
{
	g_autoptr(GError) error = NULL;
	AsChunkTask *task = as_chunk_store_open_task(fx->store, task_id, rel_path, TEST_TOTAL_SIZE,
						     TEST_CHUNK_SIZE, TEST_TOTAL_CHUNKS, &error);
	g_assert_no_error(error);
	g_assert_nonnull(task);
	return task;
}

static gchar *
test_staging_path(TestFixture *fx)
{
	return g_build_filename(fx->receive_dir, AS_STAGING_DIR_NAME,
				AS_CHUNK_STORE_INPROGRESS_DIR_NAME, NULL);
}

static gint
test_strcmp_indirect(gconstpointer a, gconstpointer b)
{
	return g_strcmp0(*(const gchar *const *)a, *(const gchar *const *)b);
}

/* the sorted names in the staging folder, joined with ',' */
static gchar *
test_staging_list(TestFixture *fx)
{
	g_autofree gchar *path = test_staging_path(fx);
	g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GDir) dir = g_dir_open(path, 0, NULL);
	const gchar *name;

	g_assert_nonnull(dir);
	while ((name = g_dir_read_name(dir)) != NULL)
		g_ptr_array_add(names, g_strdup(name));
	g_ptr_array_sort(names, test_strcmp_indirect);
	g_ptr_array_add(names, NULL);
	return g_strjoinv(",", (gchar **)names->pdata);
}

static void
test_assert_file_equals(TestFixture *fx, const gchar *rel_path, GBytes *expected)
{
	g_autofree gchar *path = g_build_filename(fx->receive_dir, rel_path, NULL);
	g_autofree gchar *contents = NULL;
	g_autoptr(GError) error = NULL;
	gsize len = 0;

	g_assert_true(g_file_get_contents(path, &contents, &len, &error));
	g_assert_no_error(error);
	g_assert_cmpmem(contents, len, g_bytes_get_data(expected, NULL),
			g_bytes_get_size(expected));
}

static gchar *
test_bytes_sha256(GBytes *bytes)
{
	return as_sha256_data_hex(g_bytes_get_data(bytes, NULL), g_bytes_get_size(bytes));
}

static void
as_chunk_store_in_order_func(TestFixture *fx, gconstpointer user_data)
{
	g_autoptr(GBytes) file = test_make_data(TEST_TOTAL_SIZE, 1);
	g_autoptr(AsChunkTask) task = test_open_default(fx, "task-in-order", "dir/sub/file.bin");
	g_autoptr(GError) error = NULL;
	g_autofree gchar *expected_hex = test_bytes_sha256(file);
	g_autofree gchar *upper_hex = g_ascii_strup(expected_hex, -1);
	g_autofree gchar *rel_path = NULL;
	g_autofree gchar *sha256 = NULL;
	g_autofree gchar *rel_path2 = NULL;
	g_autofree gchar *sha256_2 = NULL;
	g_autofree gchar *staging = NULL;
	guint64 offset = 0, length = 0;

	g_assert_cmpstr(as_chunk_task_get_id(task), ==, "task-in-order");
	g_assert_cmpstr(as_chunk_task_get_rel_path(task), ==, "dir/sub/file.bin");
	g_assert_cmpuint(as_chunk_task_get_total_size(task), ==, TEST_TOTAL_SIZE);
	g_assert_cmpuint(as_chunk_task_get_chunk_size(task), ==, TEST_CHUNK_SIZE);
	g_assert_cmpuint(as_chunk_task_get_total_chunks(task), ==, TEST_TOTAL_CHUNKS);
	g_assert_true(as_chunk_task_chunk_range(task, 10, &offset, &length, &error));
	g_assert_cmpuint(offset, ==, 10000);
	g_assert_cmpuint(length, ==, 500);

	staging = test_staging_list(fx);
	g_assert_cmpstr(
		staging, ==,
		"task-in-order.data,task-in-order.hash,task-in-order.map,task-in-order.meta");
	g_clear_pointer(&staging, g_free);

	for (guint32 i = 0; i < TEST_TOTAL_CHUNKS; i++) {
		gboolean already_done = TRUE;
		g_assert_true(test_upload_chunk(task, i, file, &already_done, &error));
		g_assert_no_error(error);
		g_assert_false(already_done);
		g_assert_cmpuint(as_chunk_task_get_done_count(task), ==, i + 1);
		g_assert_cmpuint(as_chunk_task_get_bytes_done(task), ==,
				 MIN((guint64)(i + 1) * TEST_CHUNK_SIZE, TEST_TOTAL_SIZE));
	}

	/* the client's digest may be upper case */
	rel_path = test_complete(task, upper_hex, FALSE, &sha256, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(rel_path, ==, "dir/sub/file.bin");
	g_assert_cmpstr(sha256, ==, expected_hex);
	test_assert_file_equals(fx, "dir/sub/file.bin", file);

	/* only the tombstone stays behind */
	staging = test_staging_list(fx);
	g_assert_cmpstr(staging, ==, "task-in-order.done");

	/* a retried complete gets the same answer and touches nothing */
	rel_path2 = test_complete(task, expected_hex, FALSE, &sha256_2, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(rel_path2, ==, rel_path);
	g_assert_cmpstr(sha256_2, ==, sha256);

	/* a retried chunk after completion is answered, not written */
	{
		gboolean already_done = FALSE;
		g_assert_true(test_upload_chunk(task, 3, file, &already_done, &error));
		g_assert_no_error(error);
		g_assert_true(already_done);
	}
	test_assert_file_equals(fx, "dir/sub/file.bin", file);
}

static void
as_chunk_store_out_of_order_func(TestFixture *fx, gconstpointer user_data)
{
	const guint32 order[TEST_TOTAL_CHUNKS] = {10, 3, 7, 0, 5, 1, 9, 2, 8, 4, 6};
	g_autoptr(GBytes) file = test_make_data(TEST_TOTAL_SIZE, 2);
	g_autoptr(AsChunkTask) task = test_open_default(fx, "task-ooo", "ooo.bin");
	g_autoptr(GError) error = NULL;
	g_autofree gchar *expected_hex = test_bytes_sha256(file);
	g_autofree gchar *rel_path = NULL;

	for (guint i = 0; i < G_N_ELEMENTS(order); i++) {
		g_assert_false(as_chunk_task_is_chunk_done(task, order[i]));
		g_assert_true(test_upload_chunk(task, order[i], file, NULL, &error));
		g_assert_no_error(error);
		g_assert_true(as_chunk_task_is_chunk_done(task, order[i]));
	}
	g_assert_false(as_chunk_task_is_chunk_done(task, TEST_TOTAL_CHUNKS));
	g_assert_cmpuint(as_chunk_task_get_bytes_done(task), ==, TEST_TOTAL_SIZE);
	rel_path = test_complete(task, expected_hex, FALSE, NULL, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(rel_path, ==, "ooo.bin");
	test_assert_file_equals(fx, "ooo.bin", file);
}

static void
as_chunk_store_duplicate_func(TestFixture *fx, gconstpointer user_data)
{
	g_autoptr(GBytes) file = test_make_data(TEST_TOTAL_SIZE, 3);
	g_autoptr(GBytes) other = test_make_data(TEST_TOTAL_SIZE, 4);
	g_autoptr(AsChunkTask) task = test_open_default(fx, "task-dup", "dup.bin");
	g_autoptr(GError) error = NULL;
	g_autofree gchar *expected_hex = test_bytes_sha256(file);
	g_autofree gchar *rel_path = NULL;
	gboolean already_done = FALSE;

	for (guint32 i = 0; i < TEST_TOTAL_CHUNKS; i++) {
		g_assert_true(test_upload_chunk(task, i, file, NULL, &error));
		g_assert_no_error(error);
	}

	/* a retry with different bytes (a buggy or hostile client) must not rewrite chunk 0,
	 * which 0.x did by truncating the staging file */
	g_assert_true(test_upload_chunk(task, 0, other, &already_done, &error));
	g_assert_no_error(error);
	g_assert_true(already_done);
	g_assert_true(test_upload_chunk(task, 4, other, &already_done, &error));
	g_assert_true(already_done);
	g_assert_cmpuint(as_chunk_task_get_done_count(task), ==, TEST_TOTAL_CHUNKS);
	g_assert_cmpuint(as_chunk_task_get_bytes_done(task), ==, TEST_TOTAL_SIZE);

	/* ending a chunk twice is harmless */
	{
		const AsChunkClaim ended = {.index = 4, .id = 1};
		g_assert_true(as_chunk_task_end_chunk(task, &ended, TRUE, NULL, &error));
	}
	g_assert_no_error(error);
	g_assert_cmpuint(as_chunk_task_get_done_count(task), ==, TEST_TOTAL_CHUNKS);

	rel_path = test_complete(task, expected_hex, FALSE, NULL, &error);
	g_assert_no_error(error);
	test_assert_file_equals(fx, rel_path, file);
}

static void
as_chunk_store_in_flight_func(TestFixture *fx, gconstpointer user_data)
{
	g_autoptr(GBytes) file = test_make_data(TEST_TOTAL_SIZE, 5);
	g_autoptr(AsChunkTask) task = test_open_default(fx, "task-flight", "flight.bin");
	g_autoptr(AsChunkTask) task2 = test_open_default(fx, "task-flight", "flight.bin");
	g_autoptr(GError) error = NULL;
	AsChunkClaim claim = {0};

	/* concurrent requests share one object */
	g_assert_true(task == task2);

	g_assert_true(as_chunk_task_begin_chunk(task, 2, TEST_CHUNK_SIZE, NULL, &claim, &error));
	g_assert_no_error(error);
	g_assert_false(claim.already_done);
	g_assert_false(claim.verify);
	g_assert_cmpuint(claim.id, >, 0);

	/* another chunk is fine meanwhile */
	g_assert_true(test_upload_chunk(task2, 3, file, NULL, &error));
	g_assert_no_error(error);

	/* a failed request releases the chunk without marking it */
	g_assert_true(as_chunk_task_end_chunk(task, &claim, FALSE, NULL, &error));
	g_assert_no_error(error);
	g_assert_false(as_chunk_task_is_chunk_done(task, 2));
	g_assert_true(as_chunk_task_end_chunk(task, &claim, FALSE, NULL, &error));

	/* success for a chunk nobody began is a caller bug, not a done chunk */
	{
		const AsChunkClaim never = {.index = 5, .id = 12345};
		g_assert_false(as_chunk_task_end_chunk(task, &never, TRUE, NULL, &error));
		g_assert_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT);
		g_clear_error(&error);
	}
	g_assert_false(as_chunk_task_is_chunk_done(task, 5));

	g_assert_true(test_upload_chunk(task2, 2, file, NULL, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(as_chunk_task_get_done_count(task), ==, 2);
}

/* writes @len bytes of @data at the range of chunk @index and returns their SHA-256 */
static gchar *
test_write_chunk(AsChunkTask *task, guint32 index, const guint8 *data)
{
	g_autoptr(GError) error = NULL;
	guint64 offset = 0, length = 0;

	g_assert_true(as_chunk_task_chunk_range(task, index, &offset, &length, &error));
	g_assert_true(
		test_write_at(as_chunk_task_get_fd(task), offset, data + offset, length, &error));
	g_assert_no_error(error);
	return as_sha256_data_hex(data + offset, length);
}

/* a claim left by a dead request is taken over; the old owner is cancelled, its success does
 * not count, and a late write of it cannot get a wrong chunk marked */
static void
as_chunk_store_takeover_func(TestFixture *fx, gconstpointer user_data)
{
	g_autoptr(GBytes) file = test_make_data(TEST_TOTAL_SIZE, 11);
	g_autoptr(GBytes) other = test_make_data(TEST_TOTAL_SIZE, 12);
	g_autoptr(AsChunkTask) task = test_open_default(fx, "task-takeover", "takeover.bin");
	g_autoptr(GCancellable) old_cancellable = g_cancellable_new();
	g_autoptr(GCancellable) new_cancellable = g_cancellable_new();
	g_autoptr(GError) error = NULL;
	g_autofree gchar *expected_hex = test_bytes_sha256(file);
	g_autofree gchar *rel_path = NULL;
	g_autofree gchar *good = NULL;
	g_autofree gchar *bad = NULL;
	const guint8 *data = g_bytes_get_data(file, NULL);
	const guint8 *other_data = g_bytes_get_data(other, NULL);
	AsChunkClaim old_claim = {0};
	AsChunkClaim new_claim = {0};
	AsChunkClaim third = {0};

	/* the old owner writes half... */
	g_assert_true(as_chunk_task_begin_chunk(task, 4, TEST_CHUNK_SIZE, old_cancellable,
						&old_claim, &error));
	g_assert_no_error(error);
	g_assert_false(old_claim.verify);

	/* ...and a new request takes the chunk over at once, not after a timeout */
	g_assert_true(as_chunk_task_begin_chunk(task, 4, TEST_CHUNK_SIZE, new_cancellable,
						&new_claim, &error));
	g_assert_no_error(error);
	g_assert_true(g_cancellable_is_cancelled(old_cancellable));
	g_assert_false(g_cancellable_is_cancelled(new_cancellable));
	g_assert_cmpuint(new_claim.id, !=, old_claim.id);
	g_assert_true(new_claim.verify);

	/* the new owner finishes first while the old writer has not stopped: not counted, since
	 * the old writer could still land a write afterwards */
	good = test_write_chunk(task, 4, data);
	g_assert_false(as_chunk_task_end_chunk(task, &new_claim, TRUE, good, &error));
	g_assert_error(error, AS_ERROR, AS_ERROR_CONFLICT);
	g_clear_error(&error);
	g_assert_false(as_chunk_task_is_chunk_done(task, 4));

	/* the old owner's late write and success: ignored, nothing marked */
	bad = test_write_chunk(task, 4, other_data);
	g_assert_false(as_chunk_task_end_chunk(task, &old_claim, TRUE, bad, &error));
	g_assert_error(error, AS_ERROR, AS_ERROR_CONFLICT);
	g_clear_error(&error);
	g_assert_false(as_chunk_task_is_chunk_done(task, 4));
	g_assert_cmpuint(as_chunk_task_get_done_count(task), ==, 0);
	/* ending it again is harmless */
	g_assert_true(as_chunk_task_end_chunk(task, &old_claim, FALSE, NULL, &error));
	g_assert_no_error(error);

	/* a stale owner that ends while the new one writes: the new one is read back, and a late
	 * write of the old one over it is caught */
	g_clear_object(&old_cancellable);
	old_cancellable = g_cancellable_new();
	g_assert_true(as_chunk_task_begin_chunk(task, 4, TEST_CHUNK_SIZE, old_cancellable,
						&old_claim, &error));
	g_assert_false(old_claim.verify);
	g_assert_true(
		as_chunk_task_begin_chunk(task, 4, TEST_CHUNK_SIZE, NULL, &new_claim, &error));
	g_assert_true(new_claim.verify);
	g_assert_true(g_cancellable_is_cancelled(old_cancellable));
	g_clear_pointer(&good, g_free);
	good = test_write_chunk(task, 4, data);
	g_clear_pointer(&bad, g_free);
	bad = test_write_chunk(task, 4, other_data);
	g_assert_true(as_chunk_task_end_chunk(task, &old_claim, FALSE, NULL, &error));
	g_assert_no_error(error);
	g_assert_false(as_chunk_task_end_chunk(task, &new_claim, TRUE, good, &error));
	g_assert_error(error, AS_ERROR, AS_ERROR_CONFLICT);
	g_clear_error(&error);
	g_assert_false(as_chunk_task_is_chunk_done(task, 4));

	/* a third request takes it over again, the old writer having stopped before: counted
	 * after the read-back */
	g_assert_true(as_chunk_task_begin_chunk(task, 4, TEST_CHUNK_SIZE, old_cancellable,
						&old_claim, &error));
	g_assert_true(as_chunk_task_begin_chunk(task, 4, TEST_CHUNK_SIZE, NULL, &third, &error));
	g_assert_true(third.verify);
	g_assert_true(as_chunk_task_end_chunk(task, &old_claim, FALSE, NULL, &error));
	g_clear_pointer(&good, g_free);
	good = test_write_chunk(task, 4, data);
	/* without the digest a taken-over chunk cannot be checked */
	g_assert_false(as_chunk_task_end_chunk(task, &third, TRUE, NULL, &error));
	g_assert_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT);
	g_clear_error(&error);
	g_assert_true(as_chunk_task_begin_chunk(task, 4, TEST_CHUNK_SIZE, NULL, &third, &error));
	g_assert_false(third.verify);
	g_clear_pointer(&good, g_free);
	good = test_write_chunk(task, 4, data);
	g_assert_true(as_chunk_task_end_chunk(task, &third, TRUE, good, &error));
	g_assert_no_error(error);
	g_assert_true(as_chunk_task_is_chunk_done(task, 4));

	/* a takeover, the stale writer gone, verified: counted */
	g_assert_true(
		as_chunk_task_begin_chunk(task, 5, TEST_CHUNK_SIZE, NULL, &old_claim, &error));
	g_assert_true(
		as_chunk_task_begin_chunk(task, 5, TEST_CHUNK_SIZE, NULL, &new_claim, &error));
	g_assert_true(as_chunk_task_end_chunk(task, &old_claim, FALSE, NULL, &error));
	g_clear_pointer(&good, g_free);
	good = test_write_chunk(task, 5, data);
	g_assert_true(as_chunk_task_end_chunk(task, &new_claim, TRUE, good, &error));
	g_assert_no_error(error);
	g_assert_true(as_chunk_task_is_chunk_done(task, 5));
	/* the old owner's success after all that changes nothing */
	g_assert_true(as_chunk_task_end_chunk(task, &old_claim, TRUE, NULL, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(as_chunk_task_get_done_count(task), ==, 2);

	/* the data is right: the file completes and verifies */
	for (guint32 i = 0; i < TEST_TOTAL_CHUNKS; i++) {
		g_assert_true(test_upload_chunk(task, i, file, NULL, &error));
		g_assert_no_error(error);
	}
	rel_path = test_complete(task, expected_hex, FALSE, NULL, &error);
	g_assert_no_error(error);
	test_assert_file_equals(fx, rel_path, file);
}

/* a file of one chunk keeps no resume state: its data file only, the writer's digest is the
 * file's, it still verifies and publishes atomically, and a restart forgets it */
static void
as_chunk_store_ephemeral_func(TestFixture *fx, gconstpointer user_data)
{
	g_autoptr(GBytes) file = test_make_data(TEST_CHUNK_SIZE - 7, 21);
	g_autoptr(AsChunkTask) task = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *expected_hex = test_bytes_sha256(file);
	g_autofree gchar *rel_path = NULL;
	g_autofree gchar *sha256 = NULL;
	const guint8 *data = g_bytes_get_data(file, NULL);
	const gsize size = g_bytes_get_size(file);
	AsChunkClaim claim = {0};

	task = as_chunk_store_open_task_full(fx->store, "task-eph", "eph.bin", size,
					     TEST_CHUNK_SIZE, 1, AS_CHUNK_STORE_OPEN_FLAG_HOLD,
					     &error);
	g_assert_no_error(error);
	{
		g_autofree gchar *staging = test_staging_list(fx);
		g_assert_cmpstr(staging, ==, "task-eph.data");
	}
	/* in memory it is a task like any other */
	g_assert_true(as_chunk_task_begin_chunk(task, 0, size, NULL, &claim, &error));
	g_assert_no_error(error);
	g_assert_true(test_write_at(as_chunk_task_get_fd(task), 0, data, size, &error));
	g_assert_true(as_chunk_task_end_chunk(task, &claim, TRUE, expected_hex, &error));
	g_assert_no_error(error);
	g_assert_true(as_chunk_task_is_chunk_done(task, 0));
	g_assert_cmpuint(as_chunk_task_get_done_count(task), ==, 1);
	g_assert_true(as_chunk_task_begin_chunk(task, 0, size, NULL, &claim, &error));
	g_assert_true(claim.already_done);

	/* a wrong whole-file digest still fails and discards */
	{
		g_autoptr(AsChunkTask) other = as_chunk_store_open_task_full(
			fx->store, "task-eph2", "eph2.bin", size, TEST_CHUNK_SIZE, 1,
			AS_CHUNK_STORE_OPEN_FLAG_HOLD, &error);
		g_autofree gchar *wrong = as_sha256_data_hex("x", 1);
		g_autofree gchar *path = NULL;
		g_assert_no_error(error);
		g_assert_true(as_chunk_task_begin_chunk(other, 0, size, NULL, &claim, &error));
		g_assert_true(test_write_at(as_chunk_task_get_fd(other), 0, data, size, &error));
		g_assert_true(as_chunk_task_end_chunk(other, &claim, TRUE, NULL, &error));
		path = test_complete(other, wrong, FALSE, NULL, &error);
		g_assert_error(error, AS_ERROR, AS_ERROR_HASH_MISMATCH);
		g_clear_error(&error);
	}

	rel_path = test_complete(task, expected_hex, FALSE, &sha256, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(sha256, ==, expected_hex);
	test_assert_file_equals(fx, rel_path, file);
	{
		g_autofree gchar *staging = test_staging_list(fx);
		g_assert_cmpstr(staging, ==, "task-eph.done");
	}

	/* without the flag (an HTTP request, which lets go of the task in between) a task of one
	 * chunk keeps its resume state */
	{
		g_autoptr(AsChunkTask) held = as_chunk_store_open_task(
			fx->store, "task-eph4", "eph4.bin", size, TEST_CHUNK_SIZE, 1, &error);
		g_autofree gchar *staging = test_staging_list(fx);
		g_assert_no_error(error);
		g_assert_cmpstr(staging, ==,
				"task-eph.done,task-eph4.data,task-eph4.hash,task-eph4.map,"
				"task-eph4.meta");
	}

	/* one that was never completed is gone after a restart: its chunk is sent again */
	g_clear_object(&task);
	task = as_chunk_store_open_task_full(fx->store, "task-eph3", "eph3.bin", size,
					     TEST_CHUNK_SIZE, 1, AS_CHUNK_STORE_OPEN_FLAG_HOLD,
					     &error);
	g_assert_no_error(error);
	g_clear_object(&task);
	g_clear_object(&fx->store);
	fx->store = as_chunk_store_new(fx->receive_dir, 0, &error);
	g_assert_no_error(error);
	task = as_chunk_store_lookup_task(fx->store, "task-eph3", &error);
	g_assert_error(error, AS_ERROR, AS_ERROR_NOT_FOUND);
	g_assert_null(task);
}

/* takeovers stay bounded: each stale claim is a request yet to stop */
static void
as_chunk_store_takeover_limit_func(TestFixture *fx, gconstpointer user_data)
{
	g_autoptr(AsChunkTask) task = test_open_default(fx, "task-takelimit", "takelimit.bin");
	g_autoptr(GError) error = NULL;
	AsChunkClaim claim = {0};

	for (guint i = 0; i <= AS_CHUNK_TASK_MAX_STALE_CLAIMS; i++) {
		g_assert_true(
			as_chunk_task_begin_chunk(task, 1, TEST_CHUNK_SIZE, NULL, &claim, &error));
		g_assert_no_error(error);
	}
	g_assert_false(as_chunk_task_begin_chunk(task, 1, TEST_CHUNK_SIZE, NULL, &claim, &error));
	g_assert_error(error, AS_ERROR, AS_ERROR_CONFLICT);
	g_clear_error(&error);
}

static void
as_chunk_store_bad_chunk_func(TestFixture *fx, gconstpointer user_data)
{
	g_autoptr(AsChunkTask) task = test_open_default(fx, "task-bad", "bad.bin");
	g_autoptr(GError) error = NULL;
	AsChunkClaim claim = {0};
	guint64 offset = 0, length = 0;

	g_assert_false(
		as_chunk_task_begin_chunk(task, 0, TEST_CHUNK_SIZE - 1, NULL, &claim, &error));
	g_assert_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT);
	g_assert_cmpstr(error->message, ==, "chunk 0 must be 1000 bytes, got 999");
	g_clear_error(&error);
	g_assert_false(
		as_chunk_task_begin_chunk(task, 3, TEST_CHUNK_SIZE + 1, NULL, &claim, &error));
	g_assert_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT);
	g_clear_error(&error);

	/* the last chunk is the short one, and only it */
	g_assert_false(as_chunk_task_begin_chunk(task, 10, TEST_CHUNK_SIZE, NULL, &claim, &error));
	g_assert_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT);
	g_assert_cmpstr(error->message, ==, "chunk 10 must be 500 bytes, got 1000");
	g_clear_error(&error);
	g_assert_true(as_chunk_task_begin_chunk(task, 10, 500, NULL, &claim, &error));
	g_assert_no_error(error);
	g_assert_true(as_chunk_task_end_chunk(task, &claim, FALSE, NULL, &error));

	/* out of range */
	g_assert_false(as_chunk_task_begin_chunk(task, TEST_TOTAL_CHUNKS, TEST_CHUNK_SIZE, NULL,
						 &claim, &error));
	g_assert_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT);
	g_clear_error(&error);
	g_assert_false(as_chunk_task_begin_chunk(task, G_MAXUINT32, 0, NULL, &claim, &error));
	g_assert_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT);
	g_clear_error(&error);
	g_assert_false(
		as_chunk_task_chunk_range(task, TEST_TOTAL_CHUNKS, &offset, &length, &error));
	g_assert_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT);
	g_clear_error(&error);
	claim.index = TEST_TOTAL_CHUNKS;
	g_assert_false(as_chunk_task_end_chunk(task, &claim, TRUE, NULL, &error));
	g_assert_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT);
	g_clear_error(&error);
	g_assert_cmpuint(as_chunk_task_get_done_count(task), ==, 0);
}

static void
as_chunk_store_bad_params_func(TestFixture *fx, gconstpointer user_data)
{
	const gchar *bad_ids[] = {"", "a/b", "..", "a.b", "tab\t", "ü"};
	g_autofree gchar *long_id = g_strnfill(AS_CHUNK_STORE_TASK_ID_MAX + 1, 'a');
	g_autofree gchar *max_id = g_strnfill(AS_CHUNK_STORE_TASK_ID_MAX, 'a');
	g_autoptr(AsChunkTask) task = NULL;
	g_autoptr(AsChunkTask) task_max = NULL;
	g_autoptr(GError) error = NULL;

	for (guint i = 0; i < G_N_ELEMENTS(bad_ids); i++) {
		g_autoptr(AsChunkTask) bad =
			as_chunk_store_open_task(fx->store, bad_ids[i], "a.bin", 10, 10, 1, &error);
		g_assert_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT);
		g_assert_null(bad);
		g_clear_error(&error);
	}
	task = as_chunk_store_open_task(fx->store, long_id, "a.bin", 10, 10, 1, &error);
	g_assert_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT);
	g_clear_error(&error);
	task_max = as_chunk_store_open_task(fx->store, max_id, "a.bin", 10, 10, 1, &error);
	g_assert_no_error(error);
	g_assert_nonnull(task_max);

	/* unsafe destinations */
	task = as_chunk_store_open_task(fx->store, "t1", "../escape.bin", 10, 10, 1, &error);
	g_assert_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT);
	g_clear_error(&error);
	task = as_chunk_store_open_task(fx->store, "t1", ".aerosync/x", 10, 10, 1, &error);
	g_assert_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT);
	g_clear_error(&error);

	/* chunk arithmetic */
	task = as_chunk_store_open_task(fx->store, "t1", "a.bin", 10, 0, 1, &error);
	g_assert_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT);
	g_clear_error(&error);
	task = as_chunk_store_open_task(fx->store, "t1", "a.bin", 10500, 1000, 10, &error);
	g_assert_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT);
	g_clear_error(&error);
	task = as_chunk_store_open_task(fx->store, "t1", "a.bin", 10000, 1000, 11, &error);
	g_assert_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT);
	g_clear_error(&error);
	task = as_chunk_store_open_task(fx->store, "t1", "a.bin", 0, 1000, 0, &error);
	g_assert_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT);
	g_clear_error(&error);
	task = as_chunk_store_open_task(fx->store, "t1", "a.bin",
					(guint64)AS_CHUNK_STORE_MAX_CHUNKS + 1, 1,
					AS_CHUNK_STORE_MAX_CHUNKS + 1, &error);
	g_assert_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT);
	g_clear_error(&error);
	task = as_chunk_store_open_task(fx->store, "t1", "a.bin", G_MAXUINT64, G_MAXUINT64, 1,
					&error);
	g_assert_error(error, AS_ERROR, AS_ERROR_TOO_LARGE);
	g_clear_error(&error);
	g_assert_null(task);

	/* nothing was created by any of it, except the valid task */
	{
		g_autofree gchar *staging = test_staging_list(fx);
		g_autofree gchar *expected = g_strdup_printf("%s.data,%s.hash,%s.map,%s.meta",
							     max_id, max_id, max_id, max_id);
		g_assert_cmpstr(staging, ==, expected);
	}
}

static void
as_chunk_store_too_large_func(TestFixture *fx, gconstpointer user_data)
{
	g_autoptr(AsChunkTask) task = NULL;
	g_autoptr(GError) error = NULL;

	as_chunk_store_set_max_file_size(fx->store, 1024 * 1024);
	task = as_chunk_store_open_task(fx->store, "big", "big.bin", 1024 * 1024 + 1, 64 * 1024, 17,
					&error);
	g_assert_error(error, AS_ERROR, AS_ERROR_TOO_LARGE);
	g_assert_null(task);
	g_clear_error(&error);

	/* exactly the limit is fine, and a reload takes effect at once */
	task = as_chunk_store_open_task(fx->store, "big", "big.bin", 1024 * 1024, 64 * 1024, 16,
					&error);
	g_assert_no_error(error);
	g_clear_object(&task);
	as_chunk_store_set_max_file_size(fx->store, 4 * 1024 * 1024);
	task = as_chunk_store_open_task(fx->store, "big2", "big.bin", 1024 * 1024 + 1, 64 * 1024,
					17, &error);
	g_assert_no_error(error);
	g_assert_nonnull(task);
}

static void
as_chunk_store_conflict_func(TestFixture *fx, gconstpointer user_data)
{
	g_autoptr(AsChunkTask) task = test_open_default(fx, "task-conflict", "c.bin");
	g_autoptr(AsChunkTask) other = NULL;
	g_autoptr(GError) error = NULL;

	other = as_chunk_store_open_task(fx->store, "task-conflict", "c.bin", TEST_TOTAL_SIZE + 1,
					 TEST_CHUNK_SIZE, TEST_TOTAL_CHUNKS, &error);
	g_assert_error(error, AS_ERROR, AS_ERROR_CONFLICT);
	g_assert_cmpstr(error->message, ==, "task task-conflict exists with different parameters");
	g_clear_error(&error);
	other = as_chunk_store_open_task(fx->store, "task-conflict", "c.bin", TEST_TOTAL_SIZE, 2000,
					 6, &error);
	g_assert_error(error, AS_ERROR, AS_ERROR_CONFLICT);
	g_clear_error(&error);
	other = as_chunk_store_open_task(fx->store, "task-conflict", "other.bin", TEST_TOTAL_SIZE,
					 TEST_CHUNK_SIZE, TEST_TOTAL_CHUNKS, &error);
	g_assert_error(error, AS_ERROR, AS_ERROR_CONFLICT);
	g_clear_error(&error);

	/* equivalent spellings of the same path are the same task */
	other = as_chunk_store_open_task(fx->store, "task-conflict", "./c.bin", TEST_TOTAL_SIZE,
					 TEST_CHUNK_SIZE, TEST_TOTAL_CHUNKS, &error);
	g_assert_no_error(error);
	g_assert_true(other == task);
	g_clear_object(&other);

	/* also against a task only on disk */
	g_clear_object(&task);
	other = as_chunk_store_open_task(fx->store, "task-conflict", "c.bin", TEST_TOTAL_SIZE - 1,
					 TEST_CHUNK_SIZE, TEST_TOTAL_CHUNKS, &error);
	g_assert_error(error, AS_ERROR, AS_ERROR_CONFLICT);
	g_assert_null(other);
}

static void
as_chunk_store_restart_func(TestFixture *fx, gconstpointer user_data)
{
	g_autoptr(GBytes) file = test_make_data(TEST_TOTAL_SIZE, 6);
	g_autoptr(AsChunkTask) task = test_open_default(fx, "task-restart", "r/restart.bin");
	g_autoptr(GError) error = NULL;
	g_autofree gchar *expected_hex = test_bytes_sha256(file);
	g_autofree gchar *rel_path = NULL;
	gboolean already_done = FALSE;
	AsChunkClaim in_flight = {0};

	for (guint32 i = 0; i < TEST_TOTAL_CHUNKS; i += 2) {
		g_assert_true(test_upload_chunk(task, i, file, NULL, &error));
		g_assert_no_error(error);
	}
	/* a chunk in flight when the daemon dies is not done afterwards */
	g_assert_true(
		as_chunk_task_begin_chunk(task, 1, TEST_CHUNK_SIZE, NULL, &in_flight, &error));
	g_assert_no_error(error);

	/* the daemon stops: every reference goes */
	g_clear_object(&task);
	g_clear_object(&fx->store);

	fx->store = as_chunk_store_new(fx->receive_dir, 0, &error);
	g_assert_no_error(error);
	task = as_chunk_store_lookup_task(fx->store, "task-restart", &error);
	g_assert_no_error(error);
	g_assert_nonnull(task);
	g_assert_cmpstr(as_chunk_task_get_rel_path(task), ==, "r/restart.bin");
	g_assert_cmpuint(as_chunk_task_get_total_size(task), ==, TEST_TOTAL_SIZE);
	g_assert_cmpuint(as_chunk_task_get_done_count(task), ==, 6);
	/* chunks 0,2,4,6,8 of 1000 bytes and the last of 500 */
	g_assert_cmpuint(as_chunk_task_get_bytes_done(task), ==, 5500);
	for (guint32 i = 0; i < TEST_TOTAL_CHUNKS; i++)
		g_assert_cmpint(as_chunk_task_is_chunk_done(task, i), ==, i % 2 == 0);

	/* the client resumes with the same parameters and gets the same task */
	{
		g_autoptr(AsChunkTask) same =
			test_open_default(fx, "task-restart", "r/restart.bin");
		g_assert_true(same == task);
	}
	g_assert_true(test_upload_chunk(task, 0, file, &already_done, &error));
	g_assert_true(already_done);
	for (guint32 i = 1; i < TEST_TOTAL_CHUNKS; i += 2) {
		g_assert_true(test_upload_chunk(task, i, file, &already_done, &error));
		g_assert_no_error(error);
		g_assert_false(already_done);
	}
	rel_path = test_complete(task, expected_hex, FALSE, NULL, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(rel_path, ==, "r/restart.bin");
	test_assert_file_equals(fx, "r/restart.bin", file);
}

/* the running whole-file hash is advanced by a worker thread: wait for it to get there */
static void
test_wait_hashed(AsChunkTask *task, guint32 chunks)
{
	for (guint i = 0; as_chunk_task_get_hashed_chunks(task) != chunks; i++) {
		g_assert_cmpuint(i, <, 5000);
		g_usleep(1000);
	}
}

/*
 * One chunk written unhashed (@body, the chunk's bytes or not) and verified by reading it
 * back against @expected_hex, as the HTTP receiver does for a chunk with X-Chunk-Hash.
 */
static gboolean
test_upload_read_back(AsChunkTask *task,
		      guint32 index,
		      GBytes *body,
		      const gchar *expected_hex,
		      gchar **sha256_out,
		      GError **error)
{
	guint64 offset = 0, length = 0;
	AsChunkClaim claim = {0};

	g_assert_true(as_chunk_task_chunk_range(task, index, &offset, &length, NULL));
	g_assert_cmpuint(g_bytes_get_size(body), ==, length);
	g_assert_true(as_chunk_task_begin_chunk(task, index, length, NULL, &claim, NULL));
	g_assert_false(claim.already_done);
	g_assert_false(claim.verify);
	g_assert_true(test_write_at(as_chunk_task_get_fd(task), offset,
				    g_bytes_get_data(body, NULL), length, NULL));
	return as_chunk_task_end_chunk_verify(task, &claim, expected_hex, NULL, sha256_out, error);
}

static void
as_chunk_store_read_back_func(TestFixture *fx, gconstpointer user_data)
{
	g_autoptr(GBytes) file = test_make_data(TEST_TOTAL_SIZE, 21);
	g_autoptr(AsChunkTask) task = test_open_default(fx, "task-read-back", "read-back.bin");
	g_autoptr(GError) error = NULL;
	g_autofree gchar *expected_hex = test_bytes_sha256(file);
	g_autofree gchar *sha256 = NULL;
	g_autofree gchar *rel_path = NULL;
	gchar *chunk_hex[TEST_TOTAL_CHUNKS] = {NULL};
	GBytes *chunk[TEST_TOTAL_CHUNKS] = {NULL};
	gint64 start;

	for (guint32 i = 0; i < TEST_TOTAL_CHUNKS; i++) {
		guint64 offset = (guint64)i * TEST_CHUNK_SIZE;
		chunk[i] = g_bytes_new_from_bytes(file, offset,
						  MIN(TEST_CHUNK_SIZE, TEST_TOTAL_SIZE - offset));
		chunk_hex[i] = test_bytes_sha256(chunk[i]);
	}

	/* in order: the same read advances the whole-file hash, before the call returns */
	g_assert_true(test_upload_read_back(task, 0, chunk[0], chunk_hex[0], &sha256, &error));
	g_assert_no_error(error);
	g_assert_cmpstr(sha256, ==, chunk_hex[0]);
	g_assert_true(as_chunk_task_is_chunk_done(task, 0));
	g_assert_cmpuint(as_chunk_task_get_hashed_chunks(task), ==, 1);
	g_clear_pointer(&sha256, g_free);

	/* bytes that are not what the sender hashed: refused with what the disk holds, the
	 * chunk stays missing and the whole-file hash does not move */
	{
		g_autoptr(GBytes) bad = test_make_data(TEST_CHUNK_SIZE, 99);
		g_autofree gchar *bad_hex = test_bytes_sha256(bad);
		g_assert_false(test_upload_read_back(task, 1, bad, chunk_hex[1], &sha256, &error));
		g_assert_error(error, AS_ERROR, AS_ERROR_HASH_MISMATCH);
		g_assert_cmpstr(sha256, ==, bad_hex);
		g_assert_false(as_chunk_task_is_chunk_done(task, 1));
		g_assert_cmpuint(as_chunk_task_get_hashed_chunks(task), ==, 1);
		g_clear_error(&error);
		g_clear_pointer(&sha256, g_free);
	}
	/* the claim was released: the chunk is sent again without a takeover */
	g_assert_true(test_upload_read_back(task, 1, chunk[1], chunk_hex[1], NULL, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(as_chunk_task_get_hashed_chunks(task), ==, 2);

	/* ahead of a chunk nobody sends: verified on its own after a short wait */
	start = g_get_monotonic_time();
	g_assert_true(test_upload_read_back(task, 3, chunk[3], chunk_hex[3], NULL, &error));
	g_assert_no_error(error);
	g_assert_cmpint(g_get_monotonic_time() - start, <, 5 * G_USEC_PER_SEC);
	g_assert_true(as_chunk_task_is_chunk_done(task, 3));
	g_assert_cmpuint(as_chunk_task_get_hashed_chunks(task), ==, 2);

	/* the gap fills in order; the hash then also covers the chunk after it */
	g_assert_true(test_upload_read_back(task, 2, chunk[2], chunk_hex[2], NULL, &error));
	g_assert_no_error(error);
	test_wait_hashed(task, 4);

	/* the rest the usual way; complete gives the digest of the whole file */
	for (guint32 i = 4; i < TEST_TOTAL_CHUNKS; i++) {
		g_assert_true(test_upload_chunk(task, i, file, NULL, &error));
		g_assert_no_error(error);
	}
	rel_path = test_complete(task, expected_hex, FALSE, &sha256, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(rel_path, ==, "read-back.bin");
	g_assert_cmpstr(sha256, ==, expected_hex);
	test_assert_file_equals(fx, "read-back.bin", file);
	for (guint32 i = 0; i < TEST_TOTAL_CHUNKS; i++) {
		g_bytes_unref(chunk[i]);
		g_free(chunk_hex[i]);
	}
}

/* drops the last reference of the test, then waits for a hash worker to drop its own */
static void
test_drop_task(AsChunkTask **task)
{
	gpointer weak = *task;

	g_object_add_weak_pointer(G_OBJECT(weak), &weak);
	g_clear_object(task);
	for (guint i = 0; weak != NULL; i++) {
		g_assert_cmpuint(i, <, 5000);
		while (g_main_context_iteration(NULL, FALSE))
			;
		g_usleep(1000);
	}
}

static gchar *
test_hash_record_path(TestFixture *fx, const gchar *task_id)
{
	g_autofree gchar *staging = test_staging_path(fx);
	g_autofree gchar *name = g_strconcat(task_id, ".hash", NULL);
	return g_build_filename(staging, name, NULL);
}

static void
as_chunk_store_hash_follows_func(TestFixture *fx, gconstpointer user_data)
{
	g_autoptr(GBytes) file = test_make_data(TEST_TOTAL_SIZE, 20);
	g_autoptr(AsChunkTask) task = test_open_default(fx, "task-hash", "hash.bin");
	g_autoptr(GError) error = NULL;
	g_autofree gchar *expected_hex = test_bytes_sha256(file);
	g_autofree gchar *sha256 = NULL;
	g_autofree gchar *rel_path = NULL;

	/* in order, the hash follows each chunk */
	g_assert_cmpuint(as_chunk_task_get_hashed_chunks(task), ==, 0);
	for (guint32 i = 0; i < 3; i++) {
		g_assert_true(test_upload_chunk(task, i, file, NULL, &error));
		g_assert_no_error(error);
		test_wait_hashed(task, i + 1);
	}

	/* chunks ahead of a missing one wait for it; a cut-short chunk does not count */
	for (guint32 i = 4; i < 7; i++) {
		g_assert_true(test_upload_chunk(task, i, file, NULL, &error));
		g_assert_no_error(error);
	}
	{
		AsChunkClaim claim = {0};
		g_assert_true(
			as_chunk_task_begin_chunk(task, 3, TEST_CHUNK_SIZE, NULL, &claim, &error));
		g_assert_false(claim.already_done);
		g_assert_true(as_chunk_task_end_chunk(task, &claim, FALSE, NULL, &error));
		g_assert_no_error(error);
	}
	g_usleep(20 * 1000);
	g_assert_cmpuint(as_chunk_task_get_hashed_chunks(task), ==, 3);

	/* the missing one arrives: the hash catches up over everything done after it */
	g_assert_true(test_upload_chunk(task, 3, file, NULL, &error));
	g_assert_no_error(error);
	test_wait_hashed(task, 7);

	/* the rest, last first; complete only finishes what the worker has not reached */
	for (guint32 i = TEST_TOTAL_CHUNKS; i > 7; i--) {
		g_assert_true(test_upload_chunk(task, i - 1, file, NULL, &error));
		g_assert_no_error(error);
	}
	rel_path = test_complete(task, expected_hex, FALSE, &sha256, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(rel_path, ==, "hash.bin");
	g_assert_cmpstr(sha256, ==, expected_hex);
	g_assert_cmpuint(as_chunk_task_get_hashed_chunks(task), ==, TEST_TOTAL_CHUNKS);
	test_assert_file_equals(fx, "hash.bin", file);
	g_clear_pointer(&rel_path, g_free);
	rel_path = test_staging_list(fx);
	g_assert_cmpstr(rel_path, ==, "task-hash.done");
}

/* uploads chunks 0-5 and 8, waits for the hash to cover 0-5, restarts the store */
static AsChunkTask *
test_hash_restart_prepare(TestFixture *fx, const gchar *task_id, GBytes *file)
{
	g_autoptr(AsChunkTask) task = test_open_default(fx, task_id, "restart.bin");
	g_autoptr(GError) error = NULL;
	AsChunkTask *resumed;

	for (guint32 i = 0; i < 6; i++) {
		g_assert_true(test_upload_chunk(task, i, file, NULL, &error));
		g_assert_no_error(error);
	}
	g_assert_true(test_upload_chunk(task, 8, file, NULL, &error));
	g_assert_no_error(error);
	test_wait_hashed(task, 6);

	/* the daemon stops: every reference goes */
	test_drop_task(&task);
	g_clear_object(&fx->store);
	fx->store = as_chunk_store_new(fx->receive_dir, 0, &error);
	g_assert_no_error(error);
	resumed = as_chunk_store_lookup_task(fx->store, task_id, &error);
	g_assert_no_error(error);
	g_assert_nonnull(resumed);
	return resumed;
}

static void
test_upload_rest(AsChunkTask *task, GBytes *file)
{
	for (guint32 i = 0; i < TEST_TOTAL_CHUNKS; i++) {
		g_autoptr(GError) error = NULL;
		g_assert_true(test_upload_chunk(task, i, file, NULL, &error));
		g_assert_no_error(error);
	}
}

static void
as_chunk_store_hash_restart_func(TestFixture *fx, gconstpointer user_data)
{
	g_autoptr(GBytes) file = test_make_data(TEST_TOTAL_SIZE, 21);
	g_autoptr(AsChunkTask) task = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *expected_hex = test_bytes_sha256(file);
	g_autofree gchar *rel_path = NULL;
	g_autofree gchar *sha256 = NULL;

	/* a restart within one boot picks the hash up where it was saved: chunk 6 is missing,
	 * so nothing else is hashed until it comes */
	task = test_hash_restart_prepare(fx, "task-hash-restart", file);
	g_assert_cmpuint(as_chunk_task_get_hashed_chunks(task), ==, 6);
	g_assert_cmpuint(as_chunk_task_get_done_count(task), ==, 7);
	test_upload_rest(task, file);
	rel_path = test_complete(task, expected_hex, FALSE, &sha256, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(sha256, ==, expected_hex);
	test_assert_file_equals(fx, "restart.bin", file);
}

/* rewrites the .hash record as if it came from another boot, with a valid checksum */
static void
test_hash_record_set_boot_id(TestFixture *fx, const gchar *task_id, const gchar *boot_id)
{
	g_autofree gchar *path = test_hash_record_path(fx, task_id);
	g_autofree gchar *record = NULL;
	g_autoptr(GChecksum) checksum = g_checksum_new(G_CHECKSUM_SHA256);
	g_autoptr(GError) error = NULL;
	gsize len = 0, digest_len = 32;

	g_assert_true(g_file_get_contents(path, &record, &len, &error));
	g_assert_no_error(error);
	/* the layout documented in as-chunk-store.c */
	g_assert_cmpuint(len, ==, 248);
	g_assert_cmpmem(record, 8, "ASCHKHS1", 8);
	g_assert_cmpuint(strlen(boot_id), ==, 36);
	memcpy(record + 16, boot_id, 36);
	g_checksum_update(checksum, (const guchar *)record, 216);
	g_checksum_get_digest(checksum, (guint8 *)record + 216, &digest_len);
	g_assert_true(g_file_set_contents(path, record, (gssize)len, &error));
	g_assert_no_error(error);
}

/* what a crash of the machine can do: chunk 2 never reached the disk */
static void
test_hash_lose_chunk(TestFixture *fx, const gchar *task_id)
{
	g_autofree gchar *staging = test_staging_path(fx);
	g_autofree gchar *name = g_strconcat(task_id, ".data", NULL);
	g_autofree gchar *path = g_build_filename(staging, name, NULL);
	g_autofree guint8 *zeros = g_malloc0(TEST_CHUNK_SIZE);
	int fd = open(path, O_WRONLY | O_CLOEXEC);

	g_assert_cmpint(fd, >=, 0);
	g_assert_cmpint(pwrite(fd, zeros, TEST_CHUNK_SIZE, 2 * TEST_CHUNK_SIZE), ==,
			TEST_CHUNK_SIZE);
	close(fd);
}

static void
as_chunk_store_hash_reboot_func(TestFixture *fx, gconstpointer user_data)
{
	g_autoptr(GBytes) file = test_make_data(TEST_TOTAL_SIZE, 22);
	g_autoptr(AsChunkTask) task = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *expected_hex = test_bytes_sha256(file);
	g_autofree gchar *rel_path = NULL;
	g_autofree gchar *path = g_build_filename(fx->receive_dir, "restart.bin", NULL);

	/* a record saved before a reboot is not trusted: the hash starts from the first byte
	 * again, so data the crash lost is caught at completion */
	task = test_hash_restart_prepare(fx, "task-hash-reboot", file);
	g_clear_object(&task);
	test_hash_record_set_boot_id(fx, "task-hash-reboot",
				     "00000000-0000-0000-0000-000000000000");
	test_hash_lose_chunk(fx, "task-hash-reboot");
	g_clear_object(&fx->store);
	fx->store = as_chunk_store_new(fx->receive_dir, 0, &error);
	g_assert_no_error(error);
	task = as_chunk_store_lookup_task(fx->store, "task-hash-reboot", &error);
	g_assert_no_error(error);
	test_upload_rest(task, file);
	rel_path = test_complete(task, expected_hex, FALSE, NULL, &error);
	g_assert_error(error, AS_ERROR, AS_ERROR_HASH_MISMATCH);
	g_assert_null(rel_path);
	g_assert_false(g_file_test(path, G_FILE_TEST_EXISTS));
}

static void
as_chunk_store_hash_damaged_func(TestFixture *fx, gconstpointer user_data)
{
	g_autoptr(GBytes) file = test_make_data(TEST_TOTAL_SIZE, 23);
	g_autoptr(AsChunkTask) task = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *expected_hex = test_bytes_sha256(file);
	g_autofree gchar *rel_path = NULL;
	g_autofree gchar *record_path = test_hash_record_path(fx, "task-hash-damaged");
	g_autofree gchar *record = NULL;
	gsize len = 0;

	/* a damaged record (here: a flipped bit) is ignored, and the file still verifies */
	task = test_hash_restart_prepare(fx, "task-hash-damaged", file);
	test_drop_task(&task);
	g_clear_object(&fx->store);
	g_assert_true(g_file_get_contents(record_path, &record, &len, &error));
	g_assert_no_error(error);
	record[100] ^= 0x01;
	g_assert_true(g_file_set_contents(record_path, record, (gssize)len, &error));
	g_assert_no_error(error);

	fx->store = as_chunk_store_new(fx->receive_dir, 0, &error);
	g_assert_no_error(error);
	task = as_chunk_store_lookup_task(fx->store, "task-hash-damaged", &error);
	g_assert_no_error(error);
	test_upload_rest(task, file);
	rel_path = test_complete(task, expected_hex, FALSE, NULL, &error);
	g_assert_no_error(error);
	test_assert_file_equals(fx, "restart.bin", file);
}

static void
as_chunk_store_incomplete_func(TestFixture *fx, gconstpointer user_data)
{
	g_autoptr(GBytes) file = test_make_data(TEST_TOTAL_SIZE, 7);
	g_autoptr(AsChunkTask) task = test_open_default(fx, "task-inc", "inc.bin");
	g_autoptr(GError) error = NULL;
	g_autofree gchar *expected_hex = test_bytes_sha256(file);
	g_autofree gchar *rel_path = NULL;
	g_autofree gchar *path = g_build_filename(fx->receive_dir, "inc.bin", NULL);
	AsChunkClaim claim = {0};

	rel_path = test_complete(task, NULL, FALSE, NULL, &error);
	g_assert_error(error, AS_ERROR, AS_ERROR_INCOMPLETE);
	g_assert_cmpstr(error->message, ==, "11 of 11 chunks missing");
	g_clear_error(&error);

	for (guint32 i = 0; i < TEST_TOTAL_CHUNKS - 1; i++) {
		g_assert_true(test_upload_chunk(task, i, file, NULL, &error));
		g_assert_no_error(error);
	}
	rel_path = test_complete(task, expected_hex, FALSE, NULL, &error);
	g_assert_error(error, AS_ERROR, AS_ERROR_INCOMPLETE);
	g_assert_cmpstr(error->message, ==, "1 of 11 chunks missing");
	g_clear_error(&error);

	/* in flight is not done */
	g_assert_true(as_chunk_task_begin_chunk(task, 10, 500, NULL, &claim, &error));
	rel_path = test_complete(task, expected_hex, FALSE, NULL, &error);
	g_assert_error(error, AS_ERROR, AS_ERROR_INCOMPLETE);
	g_clear_error(&error);
	g_assert_true(as_chunk_task_end_chunk(task, &claim, FALSE, NULL, &error));
	g_assert_false(g_file_test(path, G_FILE_TEST_EXISTS));

	/* the task is intact and can still finish */
	g_assert_true(test_upload_chunk(task, 10, file, NULL, &error));
	rel_path = test_complete(task, expected_hex, FALSE, NULL, &error);
	g_assert_no_error(error);
	test_assert_file_equals(fx, "inc.bin", file);
}

static void
as_chunk_store_hash_mismatch_func(TestFixture *fx, gconstpointer user_data)
{
	g_autoptr(GBytes) file = test_make_data(TEST_TOTAL_SIZE, 8);
	g_autoptr(AsChunkTask) task = test_open_default(fx, "task-mismatch", "m/mismatch.bin");
	g_autoptr(AsChunkTask) fresh = NULL;
	g_autoptr(AsChunkTask) lookup = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *rel_path = NULL;
	g_autofree gchar *staging = NULL;
	g_autofree gchar *path = g_build_filename(fx->receive_dir, "m/mismatch.bin", NULL);
	const gchar *wrong_hex = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
	AsChunkClaim claim = {0};

	for (guint32 i = 0; i < TEST_TOTAL_CHUNKS; i++) {
		g_assert_true(test_upload_chunk(task, i, file, NULL, &error));
		g_assert_no_error(error);
	}

	/* a malformed digest is a bad request, not a reason to drop the data */
	rel_path = test_complete(task, "not-a-sha", FALSE, NULL, &error);
	g_assert_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT);
	g_clear_error(&error);
	g_assert_cmpuint(as_chunk_task_get_done_count(task), ==, TEST_TOTAL_CHUNKS);

	rel_path = test_complete(task, wrong_hex, FALSE, NULL, &error);
	g_assert_error(error, AS_ERROR, AS_ERROR_HASH_MISMATCH);
	g_assert_true(g_str_has_prefix(error->message, "SHA-256 mismatch: expected 0011"));
	g_assert_null(rel_path);
	g_clear_error(&error);

	/* nothing at the final name, nothing in staging */
	g_assert_false(g_file_test(path, G_FILE_TEST_EXISTS));
	staging = test_staging_list(fx);
	g_assert_cmpstr(staging, ==, "");

	/* the task is gone for good */
	g_assert_false(as_chunk_task_begin_chunk(task, 0, TEST_CHUNK_SIZE, NULL, &claim, &error));
	g_assert_error(error, AS_ERROR, AS_ERROR_NOT_FOUND);
	g_clear_error(&error);
	rel_path = test_complete(task, NULL, FALSE, NULL, &error);
	g_assert_error(error, AS_ERROR, AS_ERROR_NOT_FOUND);
	g_clear_error(&error);
	lookup = as_chunk_store_lookup_task(fx->store, "task-mismatch", &error);
	g_assert_error(error, AS_ERROR, AS_ERROR_NOT_FOUND);
	g_clear_error(&error);
	g_assert_false(
		as_chunk_store_lookup_done(fx->store, "task-mismatch", NULL, NULL, NULL, &error));
	g_assert_error(error, AS_ERROR, AS_ERROR_NOT_FOUND);
	g_clear_error(&error);

	/* the client starts over under the same id */
	fresh = test_open_default(fx, "task-mismatch", "m/mismatch.bin");
	g_assert_true(fresh != task);
	g_assert_cmpuint(as_chunk_task_get_done_count(fresh), ==, 0);
}

static void
as_chunk_store_no_clobber_func(TestFixture *fx, gconstpointer user_data)
{
	g_autoptr(GBytes) file = test_make_data(TEST_TOTAL_SIZE, 9);
	g_autoptr(GBytes) existing = test_make_data(4321, 10);
	g_autoptr(AsChunkTask) task = NULL;
	g_autoptr(AsChunkTask) task2 = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *expected_hex = test_bytes_sha256(file);
	g_autofree gchar *existing_path = g_build_filename(fx->receive_dir, "keep.txt", NULL);
	g_autofree gchar *rel_path = NULL;
	g_autofree gchar *rel_path2 = NULL;

	g_assert_true(g_file_set_contents(existing_path, g_bytes_get_data(existing, NULL),
					  (gssize)g_bytes_get_size(existing), &error));
	g_assert_no_error(error);

	/* the 0.x bug C2: complete hashed the old file, then deleted it on the mismatch */
	task = test_open_default(fx, "task-clobber", "keep.txt");
	for (guint32 i = 0; i < TEST_TOTAL_CHUNKS; i++) {
		g_assert_true(test_upload_chunk(task, i, file, NULL, &error));
		g_assert_no_error(error);
	}
	rel_path = test_complete(task, expected_hex, FALSE, NULL, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(rel_path, ==, "keep_1.txt");
	test_assert_file_equals(fx, "keep.txt", existing);
	test_assert_file_equals(fx, "keep_1.txt", file);

	/* a mismatch next to an existing file leaves that file alone too */
	task2 = test_open_default(fx, "task-clobber2", "keep.txt");
	for (guint32 i = 0; i < TEST_TOTAL_CHUNKS; i++)
		g_assert_true(test_upload_chunk(task2, i, file, NULL, &error));
	rel_path2 = test_complete(
		task2, "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", FALSE,
		NULL, &error);
	g_assert_error(error, AS_ERROR, AS_ERROR_HASH_MISMATCH);
	g_clear_error(&error);
	test_assert_file_equals(fx, "keep.txt", existing);
	test_assert_file_equals(fx, "keep_1.txt", file);
}

static void
as_chunk_store_overwrite_func(TestFixture *fx, gconstpointer user_data)
{
	g_autoptr(GBytes) file = test_make_data(TEST_TOTAL_SIZE, 11);
	g_autoptr(AsChunkTask) task = test_open_default(fx, "task-overwrite", "over.bin");
	g_autoptr(GError) error = NULL;
	g_autofree gchar *existing_path = g_build_filename(fx->receive_dir, "over.bin", NULL);
	g_autofree gchar *rel_path = NULL;

	g_assert_true(g_file_set_contents(existing_path, "old", -1, &error));
	for (guint32 i = 0; i < TEST_TOTAL_CHUNKS; i++)
		g_assert_true(test_upload_chunk(task, i, file, NULL, &error));
	g_assert_no_error(error);
	rel_path = test_complete(task, NULL, TRUE, NULL, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(rel_path, ==, "over.bin");
	test_assert_file_equals(fx, "over.bin", file);
}

static void
as_chunk_store_tombstone_func(TestFixture *fx, gconstpointer user_data)
{
	g_autoptr(GBytes) file = test_make_data(TEST_TOTAL_SIZE, 12);
	g_autoptr(AsChunkTask) task = test_open_default(fx, "task-tomb", "tomb.bin");
	g_autoptr(AsChunkTask) again = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *expected_hex = test_bytes_sha256(file);
	g_autofree gchar *rel_path = NULL;
	g_autofree gchar *done_path = NULL;
	g_autofree gchar *done_sha = NULL;
	guint64 done_size = 0;

	g_assert_false(
		as_chunk_store_lookup_done(fx->store, "task-tomb", NULL, NULL, NULL, &error));
	g_assert_error(error, AS_ERROR, AS_ERROR_NOT_FOUND);
	g_clear_error(&error);
	g_assert_false(as_chunk_store_lookup_done(fx->store, "../x", NULL, NULL, NULL, &error));
	g_assert_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT);
	g_clear_error(&error);

	for (guint32 i = 0; i < TEST_TOTAL_CHUNKS; i++)
		g_assert_true(test_upload_chunk(task, i, file, NULL, &error));
	rel_path = test_complete(task, NULL, FALSE, NULL, &error);
	g_assert_no_error(error);
	g_clear_object(&task);

	/* survives a restart */
	g_clear_object(&fx->store);
	fx->store = as_chunk_store_new(fx->receive_dir, 0, &error);
	g_assert_no_error(error);
	g_assert_true(as_chunk_store_lookup_done(fx->store, "task-tomb", &done_path, &done_sha,
						 &done_size, &error));
	g_assert_no_error(error);
	g_assert_cmpstr(done_path, ==, rel_path);
	g_assert_cmpstr(done_sha, ==, expected_hex);
	g_assert_cmpuint(done_size, ==, TEST_TOTAL_SIZE);

	/* the task itself is gone, and its id cannot start a second file */
	task = as_chunk_store_lookup_task(fx->store, "task-tomb", &error);
	g_assert_error(error, AS_ERROR, AS_ERROR_NOT_FOUND);
	g_clear_error(&error);
	again = as_chunk_store_open_task(fx->store, "task-tomb", "tomb.bin", TEST_TOTAL_SIZE,
					 TEST_CHUNK_SIZE, TEST_TOTAL_CHUNKS, &error);
	g_assert_error(error, AS_ERROR, AS_ERROR_CONFLICT);
	g_assert_null(again);
}

static void
as_chunk_store_empty_file_func(TestFixture *fx, gconstpointer user_data)
{
	g_autoptr(AsChunkTask) task = NULL;
	g_autoptr(GBytes) empty = g_bytes_new_static("", 0);
	g_autoptr(GError) error = NULL;
	g_autofree gchar *rel_path = NULL;
	g_autofree gchar *sha256 = NULL;
	g_autofree gchar *empty_hex = as_sha256_data_hex("", 0);
	gboolean already_done = TRUE;

	task = as_chunk_store_open_task(fx->store, "task-empty", "empty.txt", 0, 32 * 1024 * 1024,
					1, &error);
	g_assert_no_error(error);
	g_assert_true(test_upload_chunk(task, 0, empty, &already_done, &error));
	g_assert_no_error(error);
	g_assert_false(already_done);
	g_assert_cmpuint(as_chunk_task_get_done_count(task), ==, 1);
	rel_path = test_complete(task, empty_hex, FALSE, &sha256, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(rel_path, ==, "empty.txt");
	g_assert_cmpstr(sha256, ==, empty_hex);
	test_assert_file_equals(fx, "empty.txt", empty);
}

static void
test_ranges_cb(guint32 first, guint32 last, gpointer user_data)
{
	GString *str = user_data;
	if (str->len > 0)
		g_string_append_c(str, ',');
	if (first == last)
		g_string_append_printf(str, "%u", first);
	else
		g_string_append_printf(str, "%u-%u", first, last);
}

static gchar *
test_ranges(AsChunkTask *task, gboolean done)
{
	g_autoptr(GString) str = g_string_new(NULL);
	g_autoptr(GError) error = NULL;

	g_assert_true(as_chunk_task_foreach_range(task, done, test_ranges_cb, str, &error));
	g_assert_no_error(error);
	return g_string_free(g_steal_pointer(&str), FALSE);
}

/* marks a chunk done without writing it: the map is all that foreach_range() reads */
static void
test_mark_done(AsChunkTask *task, guint32 index)
{
	g_autoptr(GError) error = NULL;
	guint64 length = 0;
	AsChunkClaim claim = {0};

	g_assert_true(as_chunk_task_chunk_range(task, index, NULL, &length, &error));
	g_assert_true(as_chunk_task_begin_chunk(task, index, length, NULL, &claim, &error));
	g_assert_no_error(error);
	g_assert_false(claim.already_done);
	g_assert_true(as_chunk_task_end_chunk(task, &claim, TRUE, NULL, &error));
	g_assert_no_error(error);
}

static void
as_chunk_store_ranges_func(TestFixture *fx, gconstpointer user_data)
{
	const guint32 done[] = {0, 1, 2, 5, 9, 10, 19};
	const guint32 big_done[] = {0, 65535, 65536, 65537, 131072, 199999};
	const guint32 big_chunks = 200000;
	g_autoptr(AsChunkTask) task = NULL;
	g_autoptr(AsChunkTask) big = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *ranges = NULL;

	task = as_chunk_store_open_task(fx->store, "task-ranges", "ranges.bin", 20, 1, 20, &error);
	g_assert_no_error(error);
	ranges = test_ranges(task, TRUE);
	g_assert_cmpstr(ranges, ==, "");
	g_free(ranges);
	ranges = test_ranges(task, FALSE);
	g_assert_cmpstr(ranges, ==, "0-19");
	g_free(ranges);

	for (guint i = 0; i < G_N_ELEMENTS(done); i++)
		test_mark_done(task, done[i]);
	ranges = test_ranges(task, TRUE);
	g_assert_cmpstr(ranges, ==, "0-2,5,9-10,19");
	g_free(ranges);
	ranges = test_ranges(task, FALSE);
	g_assert_cmpstr(ranges, ==, "3-4,6-8,11-18");
	g_free(ranges);

	/* runs across the 64 KiB read blocks of the map */
	big = as_chunk_store_open_task(fx->store, "task-big-ranges", "big-ranges.bin", big_chunks,
				       1, big_chunks, &error);
	g_assert_no_error(error);
	for (guint i = 0; i < G_N_ELEMENTS(big_done); i++)
		test_mark_done(big, big_done[i]);
	ranges = test_ranges(big, TRUE);
	g_assert_cmpstr(ranges, ==, "0,65535-65537,131072,199999");
	g_free(ranges);
	ranges = test_ranges(big, FALSE);
	g_assert_cmpstr(ranges, ==, "1-65534,65538-131071,131073-199998");
	g_free(ranges);
	g_assert_cmpuint(as_chunk_task_get_done_count(big), ==, G_N_ELEMENTS(big_done));
	g_assert_cmpuint(as_chunk_task_get_bytes_done(big), ==, G_N_ELEMENTS(big_done));

	/* and the same counters come back from disk */
	g_clear_object(&big);
	big = as_chunk_store_lookup_task(fx->store, "task-big-ranges", &error);
	g_assert_no_error(error);
	g_assert_cmpuint(as_chunk_task_get_done_count(big), ==, G_N_ELEMENTS(big_done));
	ranges = test_ranges(big, TRUE);
	g_assert_cmpstr(ranges, ==, "0,65535-65537,131072,199999");
}

static void
as_chunk_store_concurrent_complete_func(TestFixture *fx, gconstpointer user_data)
{
	g_autoptr(GBytes) file = test_make_data(TEST_TOTAL_SIZE, 13);
	g_autoptr(AsChunkTask) task = test_open_default(fx, "task-cc", "cc.bin");
	g_autoptr(GAsyncResult) res1 = NULL;
	g_autoptr(GAsyncResult) res2 = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *rel_path1 = NULL;
	g_autofree gchar *rel_path2 = NULL;

	for (guint32 i = 0; i < TEST_TOTAL_CHUNKS; i++)
		g_assert_true(test_upload_chunk(task, i, file, NULL, &error));
	as_chunk_task_complete_async(task, NULL, FALSE, NULL, test_async_result_cb, &res1);
	as_chunk_task_complete_async(task, NULL, FALSE, NULL, test_async_result_cb, &res2);
	test_wait(&res1);
	test_wait(&res2);
	rel_path2 = as_chunk_task_complete_finish(task, res2, NULL, &error);
	g_assert_error(error, AS_ERROR, AS_ERROR_CONFLICT);
	g_clear_error(&error);
	rel_path1 = as_chunk_task_complete_finish(task, res1, NULL, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(rel_path1, ==, "cc.bin");
	test_assert_file_equals(fx, "cc.bin", file);
}

static void
test_set_mtime(TestFixture *fx, const gchar *name, gint64 age_s)
{
	g_autofree gchar *staging = test_staging_path(fx);
	g_autofree gchar *path = g_build_filename(staging, name, NULL);
	struct timespec times[2];

	times[0].tv_sec = times[1].tv_sec = (time_t)(g_get_real_time() / G_USEC_PER_SEC - age_s);
	times[0].tv_nsec = times[1].tv_nsec = 0;
	g_assert_cmpint(utimensat(AT_FDCWD, path, times, 0), ==, 0);
}

static void
as_chunk_store_temp_cleanup_func(TestFixture *fx, gconstpointer user_data)
{
	g_autoptr(AsChunkTask) live = test_open_default(fx, "live", "live.bin");
	g_autoptr(AsChunkTask) stale = test_open_default(fx, "stale", "stale.bin");
	g_autoptr(AsChunkTask) recent = test_open_default(fx, "recent", "recent.bin");
	g_autoptr(GError) error = NULL;
	g_autofree gchar *temp1 = NULL;
	g_autofree gchar *temp2 = NULL;
	g_autofree gchar *temp3 = NULL;
	g_autofree gchar *staging = NULL;
	g_autofree gchar *expected = NULL;
	struct stat st;
	int fd1, fd2, fd3;

	fd1 = as_chunk_store_create_temp(fx->store, &temp1, &error);
	g_assert_no_error(error);
	g_assert_cmpint(fd1, >=, 0);
	g_assert_true(g_str_has_prefix(temp1, "upload-"));
	g_assert_true(g_str_has_suffix(temp1, ".part"));
	g_assert_cmpint(fstat(fd1, &st), ==, 0);
	/* a published file gets the mode of any new file: 0666 less the umask */
	{
		mode_t mask = umask(0);
		umask(mask);
		g_assert_cmpint(st.st_mode & 0777, ==, 0666 & ~mask);
	}
	g_assert_cmpint(write(fd1, "abc", 3), ==, 3);
	fd2 = as_chunk_store_create_temp(fx->store, &temp2, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(temp1, !=, temp2);
	fd3 = as_chunk_store_create_temp(fx->store, &temp3, &error);
	g_assert_no_error(error);
	close(fd1);
	close(fd2);
	close(fd3);

	/* a removed temp is gone; removing twice is fine */
	as_chunk_store_remove_temp(fx->store, temp3);
	as_chunk_store_remove_temp(fx->store, temp3);

	/* the staging folder is private */
	{
		g_autofree gchar *path = test_staging_path(fx);
		g_assert_cmpint(stat(path, &st), ==, 0);
		g_assert_cmpint(st.st_mode & 0777, ==, 0700);
	}

	/* a temp, a dropped task and a live task all look a day old */
	test_set_mtime(fx, temp1, 86400);
	test_set_mtime(fx, "stale.data", 86400);
	test_set_mtime(fx, "stale.map", 86400);
	test_set_mtime(fx, "stale.meta", 86400);
	test_set_mtime(fx, "stale.hash", 86400);
	test_set_mtime(fx, "live.data", 86400);
	test_set_mtime(fx, "live.map", 86400);
	test_set_mtime(fx, "live.meta", 86400);
	test_set_mtime(fx, "live.hash", 86400);
	/* a task with one recently touched file is in use */
	test_set_mtime(fx, "recent.data", 86400);
	test_set_mtime(fx, "recent.meta", 86400);
	test_set_mtime(fx, "recent.hash", 86400);
	g_clear_object(&stale);
	g_clear_object(&recent);

	g_assert_cmpuint(as_chunk_store_cleanup_stale(fx->store, 3600), ==, 2);
	staging = test_staging_list(fx);
	expected = g_strdup_printf(
		"live.data,live.hash,live.map,live.meta,recent.data,recent.hash,recent.map,"
		"recent.meta,%s",
		temp2);
	g_assert_cmpstr(staging, ==, expected);

	/* once the last reference goes, an old live task is stale too */
	g_clear_object(&live);
	g_assert_cmpuint(as_chunk_store_cleanup_stale(fx->store, 3600), ==, 1);
	g_assert_cmpuint(as_chunk_store_cleanup_stale(fx->store, 3600), ==, 0);
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

/* mounts a 4 MiB tmpfs: only root can, and only where mounting is allowed */
static gchar *
test_mount_tmpfs(TestFixture *fx)
{
	g_autofree gchar *mnt = g_build_filename(fx->tmpdir, "small", NULL);

	if (geteuid() != 0) {
		g_test_skip("filling a disk needs root to mount a tmpfs");
		return NULL;
	}
	g_assert_cmpint(g_mkdir(mnt, 0700), ==, 0);

	/* in a private mount namespace the tmpfs dies with the process, even if it aborts */
	if (unshare(CLONE_NEWNS) == 0 && mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		g_debug("cannot make mounts private: %s", g_strerror(errno));
	if (mount("tmpfs", mnt, "tmpfs", 0, TEST_TMPFS_SIZE) < 0) {
		g_autofree gchar *msg =
			g_strdup_printf("cannot mount a tmpfs: %s", g_strerror(errno));
		g_test_skip(msg);
		g_assert_cmpint(g_rmdir(mnt), ==, 0);
		return NULL;
	}
	return g_steal_pointer(&mnt);
}

static void
as_chunk_store_disk_full_func(TestFixture *fx, gconstpointer user_data)
{
	g_autofree gchar *mnt = test_mount_tmpfs(fx);
	g_autofree gchar *receive_dir = NULL;
	g_autofree gchar *staging = NULL;
	g_autofree gchar *temp_name = NULL;
	g_autofree gchar *hex = NULL;
	g_autofree guint8 *buf = NULL;
	g_autoptr(AsChunkStore) store = NULL;
	g_autoptr(AsChunkTask) task = NULL;
	g_autoptr(AsDiskWriter) writer = NULL;
	g_autoptr(GAsyncResult) res = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GDir) dir = NULL;
	guint drain_count = 0;
	guint pauses = 0;
	int fd;

	if (mnt == NULL)
		return;
	receive_dir = g_build_filename(mnt, "received", NULL);
	store = as_chunk_store_new(receive_dir, 0, &error);
	g_assert_no_error(error);

	/* the reservation fails up front and leaves nothing behind */
	task = as_chunk_store_open_task(store, "task-full", "full.bin", 8 * 1024 * 1024,
					1024 * 1024, 8, &error);
	g_assert_error(error, AS_ERROR, AS_ERROR_NO_SPACE);
	g_assert_null(task);
	g_clear_error(&error);
	staging = g_build_filename(receive_dir, AS_STAGING_DIR_NAME,
				   AS_CHUNK_STORE_INPROGRESS_DIR_NAME, NULL);
	dir = g_dir_open(staging, 0, &error);
	g_assert_no_error(error);
	g_assert_null(g_dir_read_name(dir));

	/* a single upload finds out while writing */
	fd = as_chunk_store_create_temp(store, &temp_name, &error);
	g_assert_no_error(error);
	writer = as_disk_writer_new(fd, 0, TRUE);
	close(fd);
	buf = g_malloc0(AS_DISK_WRITER_BLOCK_SIZE);
	as_disk_writer_set_drain_func(writer, test_count_drain_cb, &drain_count);
	for (guint i = 0; i < 8; i++) {
		/* hashing lags behind, so the backlog usually reaches the high-water mark; the
		 * full disk must then wake the paused producer */
		if (as_disk_writer_write(writer, buf, AS_DISK_WRITER_BLOCK_SIZE)) {
			guint timeout_id = g_timeout_add_seconds(10, test_timeout_cb, NULL);
			pauses++;
			while (drain_count < pauses)
				g_main_context_iteration(NULL, TRUE);
			g_source_remove(timeout_id);
		}
	}
	g_test_message("producer paused %u times before the disk filled up", pauses);
	as_disk_writer_finish_async(writer, NULL, test_async_result_cb, &res);
	test_wait(&res);
	hex = as_disk_writer_finish_finish(writer, res, &error);
	g_assert_error(error, AS_ERROR, AS_ERROR_NO_SPACE);
	g_assert_cmpstr(error->message, ==, "no space left on the receiving disk");
	g_assert_null(hex);
	g_assert_true(as_disk_writer_has_failed(writer));
	g_assert_cmpuint(drain_count, ==, pauses);
	as_chunk_store_remove_temp(store, temp_name);

	/* the result holds the writer, which holds its fd */
	g_clear_object(&res);
	g_clear_object(&writer);
	g_clear_object(&store);
	g_clear_pointer(&dir, g_dir_close);

	/* the worker thread and a drain source may hold the writer, and its fd, a little longer */
	for (guint i = 0; umount(mnt) < 0; i++) {
		g_assert_cmpint(errno, ==, EBUSY);
		g_assert_cmpuint(i, <, 500);
		while (g_main_context_iteration(NULL, FALSE))
			;
		g_usleep(10 * 1000);
	}
	g_assert_cmpint(g_rmdir(mnt), ==, 0);
}

int
main(int argc, char **argv)
{
	const struct {
		const gchar *path;
		void (*func)(TestFixture *, gconstpointer);
	} tests[] = {
		{"/aerosync/chunk-store/in-order", as_chunk_store_in_order_func},
		{"/aerosync/chunk-store/out-of-order", as_chunk_store_out_of_order_func},
		{"/aerosync/chunk-store/duplicate", as_chunk_store_duplicate_func},
		{"/aerosync/chunk-store/in-flight", as_chunk_store_in_flight_func},
		{"/aerosync/chunk-store/takeover", as_chunk_store_takeover_func},
		{"/aerosync/chunk-store/ephemeral", as_chunk_store_ephemeral_func},
		{"/aerosync/chunk-store/takeover-limit", as_chunk_store_takeover_limit_func},
		{"/aerosync/chunk-store/bad-chunk", as_chunk_store_bad_chunk_func},
		{"/aerosync/chunk-store/bad-params", as_chunk_store_bad_params_func},
		{"/aerosync/chunk-store/too-large", as_chunk_store_too_large_func},
		{"/aerosync/chunk-store/conflict", as_chunk_store_conflict_func},
		{"/aerosync/chunk-store/restart", as_chunk_store_restart_func},
		{"/aerosync/chunk-store/hash-follows", as_chunk_store_hash_follows_func},
		{"/aerosync/chunk-store/read-back", as_chunk_store_read_back_func},
		{"/aerosync/chunk-store/hash-restart", as_chunk_store_hash_restart_func},
		{"/aerosync/chunk-store/hash-reboot", as_chunk_store_hash_reboot_func},
		{"/aerosync/chunk-store/hash-damaged", as_chunk_store_hash_damaged_func},
		{"/aerosync/chunk-store/incomplete", as_chunk_store_incomplete_func},
		{"/aerosync/chunk-store/hash-mismatch", as_chunk_store_hash_mismatch_func},
		{"/aerosync/chunk-store/no-clobber", as_chunk_store_no_clobber_func},
		{"/aerosync/chunk-store/overwrite", as_chunk_store_overwrite_func},
		{"/aerosync/chunk-store/tombstone", as_chunk_store_tombstone_func},
		{"/aerosync/chunk-store/empty-file", as_chunk_store_empty_file_func},
		{"/aerosync/chunk-store/ranges", as_chunk_store_ranges_func},
		{"/aerosync/chunk-store/concurrent-complete",
		 as_chunk_store_concurrent_complete_func},
		{"/aerosync/chunk-store/temp-cleanup", as_chunk_store_temp_cleanup_func},
		{"/aerosync/chunk-store/disk-full", as_chunk_store_disk_full_func},
	};

	g_test_init(&argc, &argv, NULL);
	for (guint i = 0; i < G_N_ELEMENTS(tests); i++) {
		g_test_add(tests[i].path, TestFixture, NULL, test_fixture_set_up, tests[i].func,
			   test_fixture_tear_down);
	}
	return g_test_run();
}
