/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "AsSendStateTest"

#include "config.h"

#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "as-error.h"
#include "as-send-state.h"
#include "as-sha256-state.h"
#include "as-sha256.h"

#define TEST_ID		"0123abcd-ef45-6789-abcd-ef0123456789"
#define TEST_DEST	"192.168.1.10:7788"
#define TEST_N_FILES	10000
#define TEST_CHUNK_SIZE 256

/* files 0-3 are being sent, 4-9 are done, 10 failed */
#define TEST_N_SENDING 4
#define TEST_N_DONE    6
#define TEST_FAILED    10

typedef struct {
	gchar *tmpdir;
	gchar *dir; /* tmpdir/state/sending, created by the code under test */
} TestFixture;

static void
test_rmtree(const gchar *path)
{
	GDir *dir = g_dir_open(path, 0, NULL);
	const gchar *name;

	if (dir == NULL) {
		(void)g_unlink(path);
		return;
	}
	while ((name = g_dir_read_name(dir)) != NULL) {
		g_autofree gchar *child = g_build_filename(path, name, NULL);
		test_rmtree(child);
	}
	g_dir_close(dir);
	g_assert_cmpint(g_rmdir(path), ==, 0);
}

static void
test_fixture_set_up(TestFixture *fx, gconstpointer user_data)
{
	g_autoptr(GError) error = NULL;

	fx->tmpdir = g_dir_make_tmp("as-send-state-XXXXXX", &error);
	g_assert_no_error(error);
	fx->dir = g_build_filename(fx->tmpdir, "state", "sending", NULL);
}

static void
test_fixture_tear_down(TestFixture *fx, gconstpointer user_data)
{
	test_rmtree(fx->tmpdir);
	g_free(fx->dir);
	g_free(fx->tmpdir);
}

static gchar *
test_path(TestFixture *fx, const gchar *suffix)
{
	g_autofree gchar *basename = g_strconcat(TEST_ID, suffix, NULL);
	return g_build_filename(fx->dir, basename, NULL);
}

/* source paths with a tab, a newline, UTF-8 and a byte that is not UTF-8 */
static gchar *
test_source(guint64 i)
{
	return g_strdup_printf("/home/u/photos/f\t%05" G_GUINT64_FORMAT "\n\xc3\xa9\xff.jpg", i);
}

static gchar *
test_name(guint64 i)
{
	return g_strdup_printf("photos/sub %" G_GUINT64_FORMAT "/f\\%05" G_GUINT64_FORMAT ".jpg",
			       i % 7, i);
}

static guint64
test_size(guint64 i)
{
	return 1000 + i;
}

static GVariant *
test_options(void)
{
	g_auto(GVariantBuilder) builder = G_VARIANT_BUILDER_INIT(G_VARIANT_TYPE_VARDICT);
	g_variant_builder_add(&builder, "{sv}", "Recursive", g_variant_new_boolean(TRUE));
	g_variant_builder_add(&builder, "{sv}", "RateLimit", g_variant_new_uint64(512 * 1024));
	g_variant_builder_add(&builder, "{sv}", "Tag", g_variant_new_string("nightly\nbatch"));
	return g_variant_builder_end(&builder);
}

static gchar *
test_sha(guint64 i)
{
	g_autofree gchar *data = g_strdup_printf("file %" G_GUINT64_FORMAT, i);
	return as_sha256_data_hex(data, strlen(data));
}

/* a hash state over the first two chunks */
static GBytes *
test_hash_state(guint64 i)
{
	g_autoptr(AsSha256State) state = as_sha256_state_new();
	guint8 chunk[TEST_CHUNK_SIZE];

	memset(chunk, (int)i, sizeof(chunk));
	as_sha256_state_update(state, chunk, sizeof(chunk));
	as_sha256_state_update(state, chunk, sizeof(chunk));
	return as_sha256_state_save(state);
}

static AsSendState *
test_create(TestFixture *fx, guint64 n_files)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(AsSendState) state =
		as_send_state_new(fx->dir, TEST_ID, TEST_DEST, test_options(), &error);

	g_assert_no_error(error);
	g_assert_nonnull(state);
	for (guint64 i = 0; i < n_files; i++) {
		g_autofree gchar *source = test_source(i);
		g_autofree gchar *name = test_name(i);
		guint64 index = G_MAXUINT64;
		g_assert_true(as_send_state_add_file(state, source, name, test_size(i),
						     1700000000000000 + (gint64)i, &index, &error));
		g_assert_no_error(error);
		g_assert_cmpuint(index, ==, i);
	}
	return g_steal_pointer(&state);
}

static AsSendState *
test_load(TestFixture *fx)
{
	g_autoptr(GError) error = NULL;
	AsSendState *state = as_send_state_load(fx->dir, TEST_ID, &error);
	g_assert_no_error(error);
	g_assert_nonnull(state);
	return state;
}

/* iterates to the end; checks each file against what test_create() added */
static GPtrArray *
test_iterate(AsSendState *state, AsSendStateIterKind kind)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(AsSendStateFileIter) iter = as_send_state_file_iter_new(state, kind, &error);
	GPtrArray *files = g_ptr_array_new_with_free_func((GDestroyNotify)as_send_file_free);

	g_assert_no_error(error);
	while (TRUE) {
		g_autoptr(AsSendFile) file = NULL;
		g_autofree gchar *source = NULL;
		g_autofree gchar *name = NULL;

		g_assert_true(as_send_state_file_iter_next(iter, &file, &error));
		g_assert_no_error(error);
		if (file == NULL)
			break;
		source = test_source(file->index);
		name = test_name(file->index);
		g_assert_cmpstr(file->source, ==, source);
		g_assert_cmpstr(file->name, ==, name);
		g_assert_cmpuint(file->size, ==, test_size(file->index));
		g_assert_cmpint(file->mtime_us, ==, 1700000000000000 + (gint64)file->index);
		g_ptr_array_add(files, g_steal_pointer(&file));
	}
	/* the end is sticky */
	{
		g_autoptr(AsSendFile) file = NULL;
		g_assert_true(as_send_state_file_iter_next(iter, &file, &error));
		g_assert_null(file);
	}
	return files;
}

/* marks files 0-3 sending, 4-9 done and 10 failed, through records from the iterator */
static void
test_progress(AsSendState *state)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) files = test_iterate(state, AS_SEND_STATE_ITER_PENDING);

	for (guint i = 0; i <= TEST_FAILED; i++) {
		AsSendFile *file = g_ptr_array_index(files, i);
		g_assert_cmpint(file->state, ==, AS_SEND_FILE_STATE_PENDING);
		g_assert_cmpuint(file->index, ==, i);
		if (i < TEST_N_SENDING) {
			file->state = AS_SEND_FILE_STATE_SENDING;
			file->task_id = g_strdup_printf("task-%u", i);
			file->chunk_size = TEST_CHUNK_SIZE;
			file->total_chunks =
				(guint32)((file->size + TEST_CHUNK_SIZE - 1) / TEST_CHUNK_SIZE);
			file->hash_state = test_hash_state(i);
			file->hashed_chunks = 2;
		} else if (i < TEST_N_SENDING + TEST_N_DONE) {
			g_autofree gchar *sha = test_sha(i);
			file->state = AS_SEND_FILE_STATE_DONE;
			file->sha256 = g_ascii_strup(sha, -1);
		} else {
			file->state = AS_SEND_FILE_STATE_FAILED;
			file->error = g_strdup("receiver said:\t\"no\"\nand \\ left");
		}
		g_assert_true(as_send_state_update_file(state, file, &error));
		g_assert_no_error(error);
	}
}

static void
test_send_state_create(TestFixture *fx, gconstpointer user_data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(AsSendState) state = test_create(fx, 0);
	g_autoptr(AsSendState) again = NULL;
	g_autoptr(AsSendState) bad = NULL;
	g_autofree gchar *path = test_path(fx, ".state");
	struct stat st;

	/* private: 0700 directory, 0600 files */
	g_assert_cmpint(stat(fx->dir, &st), ==, 0);
	g_assert_cmpint(st.st_mode & 0777, ==, 0700);
	g_assert_cmpint(stat(path, &st), ==, 0);
	g_assert_cmpint(st.st_mode & 0777, ==, 0600);
	g_assert_false(as_send_state_is_dirty(state));
	g_assert_cmpstr(as_send_state_get_transfer_id(state), ==, TEST_ID);
	g_assert_cmpstr(as_send_state_get_destination(state), ==, TEST_DEST);
	g_assert_cmpint(as_send_state_get_created_us(state), >, 0);

	again = as_send_state_new(fx->dir, TEST_ID, TEST_DEST, NULL, &error);
	g_assert_error(error, AS_ERROR, AS_ERROR_CONFLICT);
	g_assert_null(again);
	g_clear_error(&error);

	for (guint i = 0; i < 4; i++) {
		const gchar *ids[] = {"", "../x", "a b", "x.state"};
		bad = as_send_state_new(fx->dir, ids[i], TEST_DEST, NULL, &error);
		g_assert_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT);
		g_assert_null(bad);
		g_clear_error(&error);
	}
	g_assert_false(as_send_state_id_is_valid(NULL));
	g_assert_true(as_send_state_id_is_valid("A-z_09"));

	/* an empty transfer loads back */
	g_clear_object(&state);
	state = test_load(fx);
	g_assert_cmpuint(as_send_state_get_n_files(state), ==, 0);
	{
		g_autoptr(GPtrArray) files = test_iterate(state, AS_SEND_STATE_ITER_PENDING);
		g_assert_cmpuint(files->len, ==, 0);
	}
}

static void
test_send_state_roundtrip(TestFixture *fx, gconstpointer user_data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(AsSendState) state = test_create(fx, TEST_N_FILES);
	g_autoptr(AsSendState) loaded = NULL;
	g_autoptr(AsSendState) reloaded = NULL;
	g_autoptr(GPtrArray) pending = NULL;
	g_autoptr(GPtrArray) finished = NULL;
	g_autoptr(GVariant) options = test_options();
	g_autofree gchar *state_path = test_path(fx, ".state");
	guint64 bytes_total = 0;
	guint64 bytes_done = 0;
	struct stat st;

	for (guint64 i = 0; i < TEST_N_FILES; i++)
		bytes_total += test_size(i);
	g_assert_true(as_send_state_is_dirty(state));
	as_send_state_set_files_complete(state);
	g_assert_true(as_send_state_save(state, &error));
	g_assert_no_error(error);
	g_assert_false(as_send_state_is_dirty(state));

	/* the key file does not grow with the number of files */
	g_assert_cmpint(stat(state_path, &st), ==, 0);
	g_assert_cmpint(st.st_size, <, 1024);

	/* a new object sees it all */
	loaded = test_load(fx);
	g_assert_cmpstr(as_send_state_get_destination(loaded), ==, TEST_DEST);
	g_assert_true(g_variant_equal(as_send_state_get_options(loaded), options));
	g_assert_cmpint(as_send_state_get_created_us(loaded), ==,
			as_send_state_get_created_us(state));
	g_assert_cmpuint(as_send_state_get_n_files(loaded), ==, TEST_N_FILES);
	g_assert_cmpuint(as_send_state_get_bytes_total(loaded), ==, bytes_total);
	g_assert_true(as_send_state_get_files_complete(loaded));
	pending = test_iterate(loaded, AS_SEND_STATE_ITER_PENDING);
	g_assert_cmpuint(pending->len, ==, TEST_N_FILES);
	for (guint i = 0; i < pending->len; i++)
		g_assert_cmpuint(((AsSendFile *)g_ptr_array_index(pending, i))->index, ==, i);
	g_clear_pointer(&pending, g_ptr_array_unref);

	/* progress, saved, seen by a third object */
	test_progress(loaded);
	g_assert_cmpuint(as_send_state_get_n_done(loaded), ==, TEST_N_DONE);
	g_assert_true(as_send_state_save(loaded, &error));
	g_assert_no_error(error);
	g_clear_object(&loaded);
	reloaded = test_load(fx);
	for (guint64 i = TEST_N_SENDING; i < TEST_N_SENDING + TEST_N_DONE; i++)
		bytes_done += test_size(i);
	g_assert_cmpuint(as_send_state_get_n_done(reloaded), ==, TEST_N_DONE);
	g_assert_cmpuint(as_send_state_get_n_failed(reloaded), ==, 1);
	g_assert_cmpuint(as_send_state_get_bytes_done(reloaded), ==, bytes_done);
	g_assert_cmpint(as_send_state_get_file_state(reloaded, 0), ==, AS_SEND_FILE_STATE_SENDING);
	g_assert_cmpint(as_send_state_get_file_state(reloaded, 4), ==, AS_SEND_FILE_STATE_DONE);
	g_assert_cmpint(as_send_state_get_file_state(reloaded, TEST_FAILED), ==,
			AS_SEND_FILE_STATE_FAILED);
	g_assert_cmpint(as_send_state_get_file_state(reloaded, TEST_FAILED + 1), ==,
			AS_SEND_FILE_STATE_PENDING);

	/* pending: files being sent come with their record, finished ones are skipped */
	pending = test_iterate(reloaded, AS_SEND_STATE_ITER_PENDING);
	g_assert_cmpuint(pending->len, ==, TEST_N_FILES - TEST_N_DONE - 1);
	for (guint i = 0; i < TEST_N_SENDING; i++) {
		AsSendFile *file = g_ptr_array_index(pending, i);
		g_autofree gchar *task_id = g_strdup_printf("task-%u", i);
		g_autoptr(GBytes) hash_state = test_hash_state(i);
		const AsSendFile *sending = as_send_state_lookup_sending(reloaded, i);
		g_autoptr(AsSha256State) hash = NULL;

		g_assert_cmpint(file->state, ==, AS_SEND_FILE_STATE_SENDING);
		g_assert_cmpstr(file->task_id, ==, task_id);
		g_assert_cmpuint(file->chunk_size, ==, TEST_CHUNK_SIZE);
		g_assert_cmpuint(file->total_chunks, ==, 4);
		g_assert_cmpuint(file->hashed_chunks, ==, 2);
		g_assert_true(g_bytes_equal(file->hash_state, hash_state));
		hash = as_sha256_state_load(file->hash_state, &error);
		g_assert_no_error(error);
		g_assert_cmpuint(as_sha256_state_get_length(hash), ==, 2 * TEST_CHUNK_SIZE);
		g_assert_nonnull(sending);
		g_assert_cmpstr(sending->task_id, ==, task_id);
	}
	g_assert_null(as_send_state_lookup_sending(reloaded, TEST_N_SENDING));
	g_assert_cmpuint(((AsSendFile *)g_ptr_array_index(pending, TEST_N_SENDING))->index, ==,
			 TEST_FAILED + 1);
	g_assert_cmpint(((AsSendFile *)g_ptr_array_index(pending, TEST_N_SENDING))->state, ==,
			AS_SEND_FILE_STATE_PENDING);

	/* finished: in finishing order, with their SHA-256 (lower case) or error */
	finished = test_iterate(reloaded, AS_SEND_STATE_ITER_FINISHED);
	g_assert_cmpuint(finished->len, ==, TEST_N_DONE + 1);
	for (guint i = 0; i < finished->len; i++) {
		AsSendFile *file = g_ptr_array_index(finished, i);
		g_assert_cmpuint(file->index, ==, TEST_N_SENDING + i);
		if (file->index == TEST_FAILED) {
			g_assert_cmpint(file->state, ==, AS_SEND_FILE_STATE_FAILED);
			g_assert_cmpstr(file->error, ==, "receiver said:\t\"no\"\nand \\ left");
			g_assert_null(file->sha256);
		} else {
			g_autofree gchar *sha = test_sha(file->index);
			g_assert_cmpint(file->state, ==, AS_SEND_FILE_STATE_DONE);
			g_assert_cmpstr(file->sha256, ==, sha);
		}
	}
}

static void
test_send_state_update_errors(TestFixture *fx, gconstpointer user_data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(AsSendState) state = test_create(fx, 20);
	g_autoptr(GPtrArray) files = NULL;
	AsSendFile *file;

	test_progress(state);
	files = test_iterate(state, AS_SEND_STATE_ITER_FINISHED);

	/* finished is final */
	file = g_ptr_array_index(files, 0);
	file->state = AS_SEND_FILE_STATE_SENDING;
	g_assert_false(as_send_state_update_file(state, file, &error));
	g_assert_error(error, AS_ERROR, AS_ERROR_CONFLICT);
	g_clear_error(&error);
	g_clear_pointer(&files, g_ptr_array_unref);

	files = test_iterate(state, AS_SEND_STATE_ITER_PENDING);
	file = g_ptr_array_index(files, TEST_N_SENDING);
	g_assert_cmpuint(file->index, ==, TEST_FAILED + 1);

	/* done needs a SHA-256, failed an error, sending a task id and a matching hash state */
	file->state = AS_SEND_FILE_STATE_DONE;
	file->sha256 = g_strdup("abc");
	g_assert_false(as_send_state_update_file(state, file, &error));
	g_assert_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT);
	g_clear_error(&error);
	file->state = AS_SEND_FILE_STATE_FAILED;
	g_assert_false(as_send_state_update_file(state, file, &error));
	g_assert_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT);
	g_clear_error(&error);
	file->state = AS_SEND_FILE_STATE_SENDING;
	file->task_id = g_strdup("bad/id");
	file->chunk_size = TEST_CHUNK_SIZE;
	file->total_chunks = 4;
	g_assert_false(as_send_state_update_file(state, file, &error));
	g_assert_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT);
	g_clear_error(&error);
	g_free(file->task_id);
	file->task_id = g_strdup("task-ok");
	file->hash_state = test_hash_state(1);
	file->hashed_chunks = 3;
	g_assert_false(as_send_state_update_file(state, file, &error));
	g_assert_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT);
	g_clear_error(&error);
	file->hashed_chunks = 5;
	g_assert_false(as_send_state_update_file(state, file, &error));
	g_assert_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT);
	g_clear_error(&error);
	file->hashed_chunks = 2;
	g_assert_true(as_send_state_update_file(state, file, &error));
	g_assert_no_error(error);
	g_assert_cmpint(as_send_state_get_file_state(state, file->index), ==,
			AS_SEND_FILE_STATE_SENDING);

	/* back to pending forgets the record */
	file->state = AS_SEND_FILE_STATE_PENDING;
	g_assert_true(as_send_state_update_file(state, file, &error));
	g_assert_null(as_send_state_lookup_sending(state, file->index));

	/* long errors are cut, at a character boundary */
	{
		g_autoptr(GString) long_error = g_string_new("x");
		g_autoptr(GPtrArray) finished = NULL;
		AsSendFile *failed;

		for (guint i = 0; i < AS_SEND_STATE_ERROR_MAX; i++)
			g_string_append(long_error, "\xc3\xa9");
		file->state = AS_SEND_FILE_STATE_FAILED;
		file->error = g_string_free(g_steal_pointer(&long_error), FALSE);
		g_assert_true(as_send_state_update_file(state, file, &error));
		g_assert_no_error(error);
		finished = test_iterate(state, AS_SEND_STATE_ITER_FINISHED);
		failed = g_ptr_array_index(finished, finished->len - 1);
		g_assert_cmpuint(failed->index, ==, file->index);
		g_assert_cmpuint(strlen(failed->error), ==, AS_SEND_STATE_ERROR_MAX - 1);
		g_assert_true(g_utf8_validate(failed->error, -1, NULL));
	}

	/* unknown index, relative source */
	file->index = 20;
	g_assert_false(as_send_state_update_file(state, file, &error));
	g_assert_error(error, AS_ERROR, AS_ERROR_NOT_FOUND);
	g_clear_error(&error);
	g_assert_false(as_send_state_add_file(state, "relative", "x", 1, 0, NULL, &error));
	g_assert_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT);
	g_clear_error(&error);
	g_assert_false(as_send_state_add_file(state, "/abs", "/abs", 1, 0, NULL, &error));
	g_assert_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT);
	g_clear_error(&error);

	/* no more files once the list is complete */
	as_send_state_set_files_complete(state);
	g_assert_false(as_send_state_add_file(state, "/abs", "x", 1, 0, NULL, &error));
	g_assert_error(error, AS_ERROR, AS_ERROR_CONFLICT);
}

/* the walker appends while the sender iterates: the iterator sees the new files */
static void
test_send_state_interleaved(TestFixture *fx, gconstpointer user_data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(AsSendState) state = test_create(fx, 3);
	g_autoptr(AsSendStateFileIter) iter = NULL;
	g_autoptr(AsSendFile) first = NULL;
	guint64 seen = 0;

	iter = as_send_state_file_iter_new(state, AS_SEND_STATE_ITER_PENDING, &error);
	g_assert_no_error(error);
	g_assert_true(as_send_state_file_iter_next(iter, &first, &error));
	g_assert_cmpuint(first->index, ==, 0);
	seen = 1;
	for (guint64 i = 3; i < 3000; i++) {
		g_autofree gchar *source = test_source(i);
		g_autofree gchar *name = test_name(i);
		g_assert_true(as_send_state_add_file(state, source, name, test_size(i),
						     1700000000000000 + (gint64)i, NULL, &error));
		if (i % 3 == 0) {
			g_autoptr(AsSendFile) file = NULL;
			g_assert_true(as_send_state_file_iter_next(iter, &file, &error));
			g_assert_no_error(error);
			g_assert_cmpuint(file->index, ==, seen);
			seen++;
		}
	}

	/* a file that finishes before the iterator reaches it is skipped */
	{
		g_autofree gchar *source = test_source(2999);
		g_autofree gchar *name = test_name(2999);
		g_autofree gchar *sha = test_sha(2999);
		AsSendFile done = {.index = 2999,
				   .source = source,
				   .name = name,
				   .size = test_size(2999),
				   .mtime_us = 1700000000000000 + 2999,
				   .state = AS_SEND_FILE_STATE_DONE,
				   .sha256 = sha};
		g_assert_true(as_send_state_update_file(state, &done, &error));
		g_assert_no_error(error);
	}
	while (TRUE) {
		g_autoptr(AsSendFile) file = NULL;
		g_assert_true(as_send_state_file_iter_next(iter, &file, &error));
		g_assert_no_error(error);
		if (file == NULL)
			break;
		g_assert_cmpuint(file->index, ==, seen);
		seen++;
	}
	g_assert_cmpuint(seen, ==, 2999);
}

/* what happened after the last save is gone after a crash, consistently */
static void
test_send_state_crash(TestFixture *fx, gconstpointer user_data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(AsSendState) state = test_create(fx, 100);
	g_autoptr(AsSendState) loaded = NULL;
	g_autoptr(GPtrArray) pending = NULL;
	g_autoptr(GPtrArray) finished = NULL;

	g_assert_true(as_send_state_save(state, &error));
	g_assert_no_error(error);

	/* unsaved: more files (forced to disk by a large buffer) and progress */
	for (guint64 i = 100; i < 1000; i++) {
		g_autofree gchar *source = test_source(i);
		g_autofree gchar *name = test_name(i);
		g_assert_true(as_send_state_add_file(state, source, name, test_size(i),
						     1700000000000000 + (gint64)i, NULL, &error));
	}
	test_progress(state);
	as_send_state_set_files_complete(state);
	{
		/* the iterator writes the buffers out without saving */
		g_autoptr(GPtrArray) all = test_iterate(state, AS_SEND_STATE_ITER_FINISHED);
		g_autoptr(GPtrArray) all_pending = test_iterate(state, AS_SEND_STATE_ITER_PENDING);
		g_assert_cmpuint(all->len, ==, TEST_N_DONE + 1);
		g_assert_cmpuint(all_pending->len, ==, 1000 - TEST_N_DONE - 1);
	}
	g_clear_object(&state);

	loaded = test_load(fx);
	g_assert_cmpuint(as_send_state_get_n_files(loaded), ==, 100);
	g_assert_cmpuint(as_send_state_get_n_done(loaded), ==, 0);
	g_assert_false(as_send_state_get_files_complete(loaded));
	g_assert_null(as_send_state_lookup_sending(loaded, 0));
	pending = test_iterate(loaded, AS_SEND_STATE_ITER_PENDING);
	g_assert_cmpuint(pending->len, ==, 100);
	finished = test_iterate(loaded, AS_SEND_STATE_ITER_FINISHED);
	g_assert_cmpuint(finished->len, ==, 0);

	/* and it goes on from there */
	test_progress(loaded);
	g_assert_true(as_send_state_save(loaded, &error));
	g_clear_object(&loaded);
	loaded = test_load(fx);
	g_assert_cmpuint(as_send_state_get_n_done(loaded), ==, TEST_N_DONE);
}

static void
test_send_state_throttle(TestFixture *fx, gconstpointer user_data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(AsSendState) state = test_create(fx, 20);
	g_autoptr(AsSendState) seen = NULL;

	g_assert_true(as_send_state_save(state, &error));
	g_assert_true(as_send_state_save_throttled(state, FALSE, &error));
	test_progress(state);

	/* too soon: nothing written, still dirty */
	g_assert_true(as_send_state_save_throttled(state, FALSE, &error));
	g_assert_no_error(error);
	g_assert_true(as_send_state_is_dirty(state));
	seen = test_load(fx);
	g_assert_cmpuint(as_send_state_get_n_done(seen), ==, 0);
	g_clear_object(&seen);

	/* later: written */
	g_usleep((AS_SEND_STATE_SAVE_INTERVAL_MS + 50) * 1000);
	g_assert_true(as_send_state_save_throttled(state, FALSE, &error));
	g_assert_false(as_send_state_is_dirty(state));
	seen = test_load(fx);
	g_assert_cmpuint(as_send_state_get_n_done(seen), ==, TEST_N_DONE);
	g_clear_object(&seen);

	/* forced: written at once */
	as_send_state_set_files_complete(state);
	g_assert_true(as_send_state_save_throttled(state, TRUE, &error));
	g_assert_false(as_send_state_is_dirty(state));
	seen = test_load(fx);
	g_assert_true(as_send_state_get_files_complete(seen));
}

static void
test_send_state_list_delete(TestFixture *fx, gconstpointer user_data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) ids = NULL;
	const gchar *junk[] = {"x.files", "bad id.state", "c.state.ABC123", "d.done"};

	/* no directory yet: no transfers */
	ids = as_send_state_list_dir(fx->dir, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(ids->len, ==, 0);
	g_clear_pointer(&ids, g_ptr_array_unref);

	for (guint i = 0; i < 3; i++) {
		const gchar *names[] = {"b", "a", "c"};
		g_autoptr(AsSendState) state =
			as_send_state_new(fx->dir, names[i], TEST_DEST, NULL, &error);
		g_assert_no_error(error);
		g_assert_true(as_send_state_add_file(state, "/x", "x", 1, 0, NULL, &error));
		g_assert_true(as_send_state_save(state, &error));
	}
	for (guint i = 0; i < G_N_ELEMENTS(junk); i++) {
		g_autofree gchar *path = g_build_filename(fx->dir, junk[i], NULL);
		g_assert_true(g_file_set_contents(path, "", 0, &error));
	}
	ids = as_send_state_list_dir(fx->dir, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(ids->len, ==, 3);
	g_assert_cmpstr(g_ptr_array_index(ids, 0), ==, "a");
	g_assert_cmpstr(g_ptr_array_index(ids, 1), ==, "b");
	g_assert_cmpstr(g_ptr_array_index(ids, 2), ==, "c");
	g_clear_pointer(&ids, g_ptr_array_unref);

	/* delete one through its object, one by id; deleting twice is fine */
	{
		g_autoptr(AsSendState) a = as_send_state_load(fx->dir, "a", &error);
		g_autofree gchar *files = g_build_filename(fx->dir, "a.files", NULL);
		g_assert_no_error(error);
		g_assert_true(as_send_state_delete(a, &error));
		g_assert_no_error(error);
		g_assert_false(g_file_test(files, G_FILE_TEST_EXISTS));
	}
	g_assert_true(as_send_state_delete_id(fx->dir, "b", &error));
	g_assert_true(as_send_state_delete_id(fx->dir, "b", &error));
	g_assert_no_error(error);
	g_assert_false(as_send_state_delete_id(fx->dir, "../b", &error));
	g_assert_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT);
	g_clear_error(&error);
	ids = as_send_state_list_dir(fx->dir, &error);
	g_assert_cmpuint(ids->len, ==, 1);
	g_assert_cmpstr(g_ptr_array_index(ids, 0), ==, "c");

	/* gone is not found */
	{
		g_autoptr(AsSendState) b = as_send_state_load(fx->dir, "b", &error);
		g_assert_error(error, AS_ERROR, AS_ERROR_NOT_FOUND);
		g_assert_null(b);
	}
}

/* rewrites a file with one substring replaced */
static void
test_edit(const gchar *path, const gchar *old, const gchar *new)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *contents = NULL;
	g_autoptr(GString) edited = NULL;

	g_assert_true(g_file_get_contents(path, &contents, NULL, &error));
	g_assert_no_error(error);
	g_assert_nonnull(strstr(contents, old));
	edited = g_string_new(contents);
	g_string_replace(edited, old, new, 1);
	g_assert_true(g_file_set_contents(path, edited->str, (gssize)edited->len, &error));
	g_assert_no_error(error);
}

static void
test_assert_load_fails(TestFixture *fx, gint code, const gchar *what)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(AsSendState) state = as_send_state_load(fx->dir, TEST_ID, &error);
	g_autofree gchar *path = test_path(fx, ".state");

	g_assert_error(error, AS_ERROR, code);
	g_assert_null(state);
	g_test_message("%s: %s", what, error->message);
	g_assert_nonnull(strstr(error->message, path));
	g_assert_nonnull(strstr(error->message, what));
}

static void
test_send_state_corrupt(TestFixture *fx, gconstpointer user_data)
{
	g_autofree gchar *state_path = test_path(fx, ".state");
	g_autofree gchar *files_path = test_path(fx, ".files");
	g_autofree gchar *done_path = test_path(fx, ".done");
	g_autofree gchar *good = NULL;
	g_autofree gchar *good_files = NULL;
	g_autofree gchar *good_done = NULL;
	g_autoptr(GError) error = NULL;
	gsize good_files_len = 0;
	gsize good_done_len = 0;

	/* a good state with a file being sent and finished ones */
	{
		g_autoptr(AsSendState) state = test_create(fx, 50);
		test_progress(state);
		g_assert_true(as_send_state_save(state, &error));
		g_assert_no_error(error);
	}
	g_assert_true(g_file_get_contents(state_path, &good, NULL, &error));
	g_assert_true(g_file_get_contents(files_path, &good_files, &good_files_len, &error));
	g_assert_true(g_file_get_contents(done_path, &good_done, &good_done_len, &error));
	g_assert_no_error(error);

#define TEST_RESTORE()                                                                             \
	do {                                                                                       \
		g_assert_true(g_file_set_contents(state_path, good, -1, NULL));                    \
		g_assert_true(g_file_set_contents(files_path, good_files, (gssize)good_files_len,  \
						  NULL));                                          \
		g_assert_true(                                                                     \
			g_file_set_contents(done_path, good_done, (gssize)good_done_len, NULL));   \
	} while (0)

	g_assert_true(g_file_set_contents(state_path, "garbage\x01\n[", -1, NULL));
	test_assert_load_fails(fx, AS_ERROR_INVALID_ARGUMENT, "corrupt");
	TEST_RESTORE();

	test_edit(state_path, "Version=1", "Version=2");
	test_assert_load_fails(fx, AS_ERROR_NOT_SUPPORTED, "version 2");
	TEST_RESTORE();

	test_edit(state_path, "Id=" TEST_ID, "Id=other");
	test_assert_load_fails(fx, AS_ERROR_INVALID_ARGUMENT, "belongs to transfer 'other'");
	TEST_RESTORE();

	test_edit(state_path, "Files=50", "Files=fifty");
	test_assert_load_fails(fx, AS_ERROR_INVALID_ARGUMENT, "Files is not a valid number");
	TEST_RESTORE();

	test_edit(state_path, "TaskId=task-0", "TaskId=task/0");
	test_assert_load_fails(fx, AS_ERROR_INVALID_ARGUMENT, "invalid task id");
	TEST_RESTORE();

	test_edit(state_path, "HashState=", "HashState=AAAA");
	test_assert_load_fails(fx, AS_ERROR_INVALID_ARGUMENT, "SHA-256 state");
	TEST_RESTORE();

	test_edit(state_path, "[file 0]", "[file 50]");
	test_assert_load_fails(fx, AS_ERROR_INVALID_ARGUMENT, "beyond the 50 files");
	TEST_RESTORE();

	test_edit(state_path, "[file 0]", "[other]");
	test_assert_load_fails(fx, AS_ERROR_INVALID_ARGUMENT, "unknown group [other]");
	TEST_RESTORE();

	/* the lists must hold at least what the key file says */
	g_assert_true(
		g_file_set_contents(files_path, good_files, (gssize)good_files_len - 1, NULL));
	test_assert_load_fails(fx, AS_ERROR_INVALID_ARGUMENT, "the saved state needs");
	TEST_RESTORE();

	/* journal lines are checked on load */
	test_edit(done_path, "\tdone\t", "\tdone?\t");
	test_assert_load_fails(fx, AS_ERROR_INVALID_ARGUMENT, "unknown final state");
	TEST_RESTORE();

	test_edit(done_path, "4\t", "0\t");
	test_assert_load_fails(fx, AS_ERROR_INVALID_ARGUMENT, "file 0 cannot finish here");
	TEST_RESTORE();

	/* the file list is checked as it is read */
	{
		g_autoptr(AsSendState) state = NULL;
		g_autoptr(AsSendStateFileIter) iter = NULL;
		gboolean ok = TRUE;

		test_edit(files_path, "\n20\t", "\n21\t");
		state = test_load(fx);
		iter = as_send_state_file_iter_new(state, AS_SEND_STATE_ITER_PENDING, &error);
		g_assert_no_error(error);
		while (ok) {
			g_autoptr(AsSendFile) file = NULL;
			ok = as_send_state_file_iter_next(iter, &file, &error);
			g_assert_true(!ok || file != NULL);
		}
		g_assert_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT);
		g_test_message("%s", error->message);
		g_assert_nonnull(strstr(error->message, "line 21 of .files is file 21"));
		g_clear_error(&error);
	}
	TEST_RESTORE();
	{
		g_autoptr(AsSendState) state = NULL;
		g_autoptr(AsSendStateFileIter) iter = NULL;
		g_autoptr(AsSendFile) file = NULL;

		test_edit(files_path, "\t1000\t", "\t1000 ");
		state = test_load(fx);
		iter = as_send_state_file_iter_new(state, AS_SEND_STATE_ITER_PENDING, &error);
		g_assert_false(as_send_state_file_iter_next(iter, &file, &error));
		g_assert_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT);
		g_assert_nonnull(strstr(error->message, "line 1 of .files"));
		g_assert_nonnull(strstr(error->message, "4 fields"));
		g_clear_error(&error);
	}
	TEST_RESTORE();

	/* and after all that, the original still loads */
	{
		g_autoptr(AsSendState) state = test_load(fx);
		g_autoptr(GPtrArray) files = test_iterate(state, AS_SEND_STATE_ITER_PENDING);
		g_assert_cmpuint(files->len, ==, 50 - TEST_N_DONE - 1);
	}

	/* missing */
	g_assert_cmpint(g_unlink(state_path), ==, 0);
	test_assert_load_fails(fx, AS_ERROR_NOT_FOUND, "No such file");
#undef TEST_RESTORE
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
#define TEST_ADD(path, func)                                                                       \
	g_test_add(path, TestFixture, NULL, test_fixture_set_up, func, test_fixture_tear_down)
	TEST_ADD("/aerosync/send-state/create", test_send_state_create);
	TEST_ADD("/aerosync/send-state/roundtrip", test_send_state_roundtrip);
	TEST_ADD("/aerosync/send-state/update-errors", test_send_state_update_errors);
	TEST_ADD("/aerosync/send-state/interleaved", test_send_state_interleaved);
	TEST_ADD("/aerosync/send-state/crash", test_send_state_crash);
	TEST_ADD("/aerosync/send-state/throttle", test_send_state_throttle);
	TEST_ADD("/aerosync/send-state/list-delete", test_send_state_list_delete);
	TEST_ADD("/aerosync/send-state/corrupt", test_send_state_corrupt);
	return g_test_run();
}
