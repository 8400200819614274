/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "AsFileWalkerTest"

#include "config.h"

#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "as-error.h"
#include "as-file-walker.h"

typedef struct {
	gchar *tmpdir;
	gchar *photos;	    /* tmpdir/photos */
	GPtrArray *skipped; /* (element-type utf8) "name: code" */
} TestFixture;

static void
test_rmtree(const gchar *path)
{
	GDir *dir;
	const gchar *name;
	struct stat st;

	if (lstat(path, &st) != 0)
		return;
	if (!S_ISDIR(st.st_mode)) {
		g_assert_cmpint(g_unlink(path), ==, 0);
		return;
	}
	(void)g_chmod(path, 0700);
	dir = g_dir_open(path, 0, NULL);
	g_assert_nonnull(dir);
	while ((name = g_dir_read_name(dir)) != NULL) {
		g_autofree gchar *child = g_build_filename(path, name, NULL);
		test_rmtree(child);
	}
	g_dir_close(dir);
	g_assert_cmpint(g_rmdir(path), ==, 0);
}

static void
test_write(const gchar *dir, const gchar *rel, gsize size)
{
	g_autofree gchar *path = g_build_filename(dir, rel, NULL);
	g_autofree gchar *parent = g_path_get_dirname(path);
	g_autofree gchar *data = g_malloc0(size + 1);
	g_autoptr(GError) error = NULL;

	memset(data, 'x', size);
	g_assert_cmpint(g_mkdir_with_parents(parent, 0700), ==, 0);
	g_assert_true(g_file_set_contents(path, data, (gssize)size, &error));
	g_assert_no_error(error);
}

static void
test_symlink(const gchar *target, const gchar *dir, const gchar *rel)
{
	g_autofree gchar *path = g_build_filename(dir, rel, NULL);
	g_assert_cmpint(symlink(target, path), ==, 0);
}

/*
 * photos/a.jpg (10)           photos/.hidden (3)         photos/empty/
 * photos/sub/b.jpg (20)       photos/sub/deep/c.txt (30)
 * photos/fifo                 photos/link-file -> a.jpg  photos/link-dir -> sub
 * photos/dangling -> nowhere  top.txt (5)
 */
static void
test_fixture_set_up(TestFixture *fx, gconstpointer user_data)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *fifo = NULL;
	g_autofree gchar *empty = NULL;

	fx->tmpdir = g_dir_make_tmp("as-file-walker-XXXXXX", &error);
	g_assert_no_error(error);
	fx->photos = g_build_filename(fx->tmpdir, "photos", NULL);
	fx->skipped = g_ptr_array_new_with_free_func(g_free);
	test_write(fx->photos, "a.jpg", 10);
	test_write(fx->photos, ".hidden", 3);
	test_write(fx->photos, "sub/b.jpg", 20);
	test_write(fx->photos, "sub/deep/c.txt", 30);
	test_write(fx->tmpdir, "top.txt", 5);
	empty = g_build_filename(fx->photos, "empty", NULL);
	g_assert_cmpint(g_mkdir(empty, 0700), ==, 0);
	fifo = g_build_filename(fx->photos, "fifo", NULL);
	g_assert_cmpint(mkfifo(fifo, 0600), ==, 0);
	test_symlink("a.jpg", fx->photos, "link-file");
	test_symlink("sub", fx->photos, "link-dir");
	test_symlink("nowhere", fx->photos, "dangling");
}

static void
test_fixture_tear_down(TestFixture *fx, gconstpointer user_data)
{
	test_rmtree(fx->tmpdir);
	g_ptr_array_unref(fx->skipped);
	g_free(fx->photos);
	g_free(fx->tmpdir);
}

static void
test_skipped_cb(const gchar *path, const gchar *name, const GError *error, gpointer user_data)
{
	TestFixture *fx = user_data;

	g_autofree gchar *path_base = g_path_get_basename(path);
	g_autofree gchar *name_base = g_path_get_basename(name);

	g_assert_true(g_path_is_absolute(path));
	g_assert_cmpstr(path_base, ==, name_base);
	g_assert_true(error->domain == AS_ERROR);
	g_test_message("skipped %s: %s", name, error->message);
	g_ptr_array_add(fx->skipped, g_strdup_printf("%s: %d", name, error->code));
}

/* walks to the end; returns "name size" lines in walk order */
static GPtrArray *
test_walk(TestFixture *fx, AsFileWalker *walker)
{
	GPtrArray *lines = g_ptr_array_new_with_free_func(g_free);

	as_file_walker_set_error_func(walker, test_skipped_cb, fx, NULL);
	while (TRUE) {
		g_autoptr(AsFileWalkerEntry) entry = NULL;
		g_autoptr(GError) error = NULL;
		struct stat st;

		g_assert_true(as_file_walker_next(walker, &entry, NULL, &error));
		g_assert_no_error(error);
		if (entry == NULL)
			break;
		g_assert_true(g_path_is_absolute(entry->path));
		g_assert_cmpint(stat(entry->path, &st), ==, 0);
		g_assert_cmpuint(entry->size, ==, (guint64)st.st_size);
		g_assert_cmpint(entry->mtime_us, ==,
				(gint64)st.st_mtim.tv_sec * G_USEC_PER_SEC +
					st.st_mtim.tv_nsec / 1000);
		g_ptr_array_add(lines,
				g_strdup_printf("%s %" G_GUINT64_FORMAT, entry->name, entry->size));
	}
	return lines;
}

static gint
test_strcmp_cb(gconstpointer a, gconstpointer b)
{
	return g_strcmp0(*(const gchar *const *)a, *(const gchar *const *)b);
}

static gchar *
test_sorted_join(GPtrArray *lines)
{
	g_autoptr(GPtrArray) copy = g_ptr_array_new();

	/* borrowed strings: g_ptr_array_copy() would take the free function along */
	for (guint i = 0; i < lines->len; i++)
		g_ptr_array_add(copy, g_ptr_array_index(lines, i));
	g_ptr_array_sort(copy, test_strcmp_cb);
	g_ptr_array_add(copy, NULL);
	return g_strjoinv("|", (gchar **)copy->pdata);
}

static void
test_file_walker_recursive(TestFixture *fx, gconstpointer user_data)
{
	const gchar *paths[] = {fx->photos, NULL};
	g_autoptr(GError) error = NULL;
	g_autoptr(AsFileWalker) walker =
		as_file_walker_new(paths, AS_FILE_WALKER_FLAG_RECURSIVE, &error);
	g_autoptr(AsFileWalker) again = NULL;
	g_autoptr(GPtrArray) lines = NULL;
	g_autoptr(GPtrArray) lines_again = NULL;
	g_autofree gchar *joined = NULL;
	g_autofree gchar *skipped = NULL;

	g_assert_no_error(error);
	lines = test_walk(fx, walker);
	joined = test_sorted_join(lines);
	g_assert_cmpstr(joined, ==,
			"photos/.hidden 3|photos/a.jpg 10|photos/link-file 10|"
			"photos/sub/b.jpg 20|photos/sub/deep/c.txt 30");

	/* the fifo, the link to a directory and the broken link are reported, not fatal */
	skipped = test_sorted_join(fx->skipped);
	g_assert_cmpstr(skipped, ==, "photos/dangling: 2|photos/fifo: 5|photos/link-dir: 5");
	g_assert_cmpuint(as_file_walker_get_n_skipped(walker), ==, 3);

	/* depth first: a directory's files come together */
	for (guint i = 0; i < lines->len; i++) {
		if (g_str_has_prefix(g_ptr_array_index(lines, i), "photos/sub/deep/")) {
			g_assert_cmpuint(i, >, 0);
		}
	}

	/* the same order on a second walk */
	again = as_file_walker_new(paths, AS_FILE_WALKER_FLAG_RECURSIVE, &error);
	g_assert_no_error(error);
	lines_again = test_walk(fx, again);
	g_assert_cmpuint(lines_again->len, ==, lines->len);
	for (guint i = 0; i < lines->len; i++)
		g_assert_cmpstr(g_ptr_array_index(lines, i), ==, g_ptr_array_index(lines_again, i));

	/* after the end, the walker stays at the end */
	{
		g_autoptr(AsFileWalkerEntry) entry = NULL;
		g_assert_true(as_file_walker_next(walker, &entry, NULL, &error));
		g_assert_no_error(error);
		g_assert_null(entry);
	}
}

static void
test_file_walker_files(TestFixture *fx, gconstpointer user_data)
{
	g_autofree gchar *a = g_build_filename(fx->photos, "a.jpg", NULL);
	g_autofree gchar *b = g_build_filename(fx->photos, "sub", "b.jpg", NULL);
	g_autofree gchar *link = g_build_filename(fx->photos, "link-file", NULL);
	g_autofree gchar *top = g_build_filename(fx->tmpdir, "top.txt", NULL);
	g_autofree gchar *sub = g_build_filename(fx->photos, "sub", NULL);
	const gchar *paths[] = {a, b, link, sub, top, NULL};
	g_autoptr(GError) error = NULL;
	g_autoptr(AsFileWalker) walker =
		as_file_walker_new(paths, AS_FILE_WALKER_FLAG_RECURSIVE, &error);
	g_autoptr(GPtrArray) lines = NULL;
	g_autofree gchar *joined = NULL;

	/* plain files come as their base names, in the order given */
	g_assert_no_error(error);
	lines = test_walk(fx, walker);
	g_assert_cmpuint(lines->len, ==, 6);
	g_assert_cmpstr(g_ptr_array_index(lines, 0), ==, "a.jpg 10");
	g_assert_cmpstr(g_ptr_array_index(lines, 1), ==, "b.jpg 20");
	g_assert_cmpstr(g_ptr_array_index(lines, 2), ==, "link-file 10");
	g_assert_cmpstr(g_ptr_array_index(lines, 5), ==, "top.txt 5");
	joined = test_sorted_join(lines);
	g_assert_cmpstr(joined, ==,
			"a.jpg 10|b.jpg 20|link-file 10|sub/b.jpg 20|sub/deep/c.txt 30|top.txt 5");
	g_assert_cmpuint(fx->skipped->len, ==, 0);
}

static void
test_file_walker_relative(TestFixture *fx, gconstpointer user_data)
{
	g_autofree gchar *cwd = g_get_current_dir();
	g_autofree gchar *link = g_build_filename(fx->tmpdir, "alias", NULL);
	const gchar *dot_paths[] = {"./photos/sub/", NULL};
	const gchar *link_paths[] = {"alias", NULL};
	g_autoptr(GError) error = NULL;
	g_autoptr(AsFileWalker) walker = NULL;
	g_autoptr(AsFileWalker) walker_link = NULL;
	g_autoptr(GPtrArray) lines = NULL;
	g_autoptr(GPtrArray) lines_link = NULL;
	g_autofree gchar *joined = NULL;
	g_autofree gchar *joined_link = NULL;

	/* relative paths with a trailing slash name the directory, as scp -r does */
	g_assert_cmpint(g_chdir(fx->tmpdir), ==, 0);
	walker = as_file_walker_new(dot_paths, AS_FILE_WALKER_FLAG_RECURSIVE, &error);
	g_assert_no_error(error);
	lines = test_walk(fx, walker);
	joined = test_sorted_join(lines);
	g_assert_cmpstr(joined, ==, "sub/b.jpg 20|sub/deep/c.txt 30");

	/* a symbolic link named by the user is followed, under its own name */
	test_symlink("photos/sub", fx->tmpdir, "alias");
	walker_link = as_file_walker_new(link_paths, AS_FILE_WALKER_FLAG_RECURSIVE, &error);
	g_assert_no_error(error);
	lines_link = test_walk(fx, walker_link);
	joined_link = test_sorted_join(lines_link);
	g_assert_cmpstr(joined_link, ==, "alias/b.jpg 20|alias/deep/c.txt 30");
	g_assert_cmpint(g_chdir(cwd), ==, 0);
}

static void
test_file_walker_errors(TestFixture *fx, gconstpointer user_data)
{
	g_autofree gchar *missing = g_build_filename(fx->tmpdir, "missing", NULL);
	g_autofree gchar *fifo = g_build_filename(fx->photos, "fifo", NULL);
	g_autofree gchar *a = g_build_filename(fx->photos, "a.jpg", NULL);
	struct {
		const gchar *paths[3];
		AsFileWalkerFlags flags;
		gint code;
		const gchar *message;
	} cases[] = {
		{{fx->photos, NULL},
		 AS_FILE_WALKER_FLAG_NONE,
		 AS_ERROR_INVALID_ARGUMENT,
		 "photos is a directory (use -r)"},
		{{a, fx->photos},
		 AS_FILE_WALKER_FLAG_NONE,
		 AS_ERROR_INVALID_ARGUMENT,
		 "photos is a directory (use -r)"},
		{{a, missing},
		 AS_FILE_WALKER_FLAG_RECURSIVE,
		 AS_ERROR_NOT_FOUND,
		 "missing: no such file or directory"},
		{{fifo, NULL},
		 AS_FILE_WALKER_FLAG_RECURSIVE,
		 AS_ERROR_NOT_SUPPORTED,
		 "fifo is not a regular file or directory"},
		{{"/", NULL},
		 AS_FILE_WALKER_FLAG_RECURSIVE,
		 AS_ERROR_INVALID_ARGUMENT,
		 "cannot send the root directory"},
		{{"", NULL},
		 AS_FILE_WALKER_FLAG_RECURSIVE,
		 AS_ERROR_INVALID_ARGUMENT,
		 "empty path"},
		{{NULL},
		 AS_FILE_WALKER_FLAG_RECURSIVE,
		 AS_ERROR_INVALID_ARGUMENT,
		 "no paths given"},
	};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(AsFileWalker) walker =
			as_file_walker_new(cases[i].paths, cases[i].flags, &error);
		g_assert_error(error, AS_ERROR, cases[i].code);
		g_assert_null(walker);
		g_assert_true(g_str_has_suffix(error->message, cases[i].message));
	}
}

/* directories that go away or cannot be read are reported and the walk goes on */
static void
test_file_walker_vanished(TestFixture *fx, gconstpointer user_data)
{
	g_autofree gchar *sub = g_build_filename(fx->photos, "sub", NULL);
	g_autofree gchar *top = g_build_filename(fx->tmpdir, "top.txt", NULL);
	const gchar *paths[] = {sub, top, NULL};
	g_autoptr(GError) error = NULL;
	g_autoptr(AsFileWalker) walker =
		as_file_walker_new(paths, AS_FILE_WALKER_FLAG_RECURSIVE, &error);
	g_autoptr(GPtrArray) lines = NULL;

	g_assert_no_error(error);
	test_rmtree(sub);
	lines = test_walk(fx, walker);
	g_assert_cmpuint(lines->len, ==, 1);
	g_assert_cmpstr(g_ptr_array_index(lines, 0), ==, "top.txt 5");
	g_assert_cmpuint(fx->skipped->len, ==, 1);
	g_assert_cmpstr(g_ptr_array_index(fx->skipped, 0), ==, "sub: 2");
}

static void
test_file_walker_unreadable(TestFixture *fx, gconstpointer user_data)
{
	g_autofree gchar *a = g_build_filename(fx->photos, "a.jpg", NULL);
	g_autofree gchar *sub = g_build_filename(fx->photos, "sub", NULL);
	const gchar *paths[] = {fx->photos, NULL};
	const gchar *file_paths[] = {a, NULL};
	g_autoptr(GError) error = NULL;
	g_autoptr(GError) error_file = NULL;
	g_autoptr(AsFileWalker) walker = NULL;
	g_autoptr(AsFileWalker) walker_file = NULL;
	g_autoptr(GPtrArray) lines = NULL;
	g_autofree gchar *joined = NULL;
	g_autofree gchar *skipped = NULL;

	if (geteuid() == 0) {
		g_test_skip("root reads everything");
		return;
	}
	g_assert_cmpint(g_chmod(a, 0), ==, 0);
	g_assert_cmpint(g_chmod(sub, 0), ==, 0);

	/* named directly: fatal */
	walker_file = as_file_walker_new(file_paths, AS_FILE_WALKER_FLAG_NONE, &error_file);
	g_assert_error(error_file, AS_ERROR, AS_ERROR_PERMISSION_DENIED);
	g_assert_null(walker_file);

	/* inside a walked directory: reported */
	walker = as_file_walker_new(paths, AS_FILE_WALKER_FLAG_RECURSIVE, &error);
	g_assert_no_error(error);
	lines = test_walk(fx, walker);
	joined = test_sorted_join(lines);
	g_assert_cmpstr(joined, ==, "photos/.hidden 3");
	skipped = test_sorted_join(fx->skipped);
	g_assert_cmpstr(skipped, ==,
			"photos/a.jpg: 4|photos/dangling: 2|photos/fifo: 5|photos/link-dir: 5|"
			"photos/link-file: 4|photos/sub: 4");
}

static void
test_file_walker_deep(TestFixture *fx, gconstpointer user_data)
{
	g_autoptr(GString) rel = g_string_new("deep");
	g_autofree gchar *root = g_build_filename(fx->tmpdir, "deep", NULL);
	const gchar *paths[] = {root, NULL};
	g_autoptr(GError) error = NULL;
	g_autoptr(AsFileWalker) walker = NULL;
	g_autoptr(GPtrArray) lines = NULL;

	/* "deep" and 255 levels below it are walked: a file there is found, a directory there
	 * is reported and not entered */
	for (guint i = 1; i < AS_FILE_WALKER_MAX_DEPTH; i++)
		g_string_append(rel, "/d");
	g_string_append(rel, "/f");
	test_write(fx->tmpdir, rel->str, 2);
	g_string_truncate(rel, rel->len - 2);
	g_string_append(rel, "/d/d/g");
	test_write(fx->tmpdir, rel->str, 3);

	walker = as_file_walker_new(paths, AS_FILE_WALKER_FLAG_RECURSIVE, &error);
	g_assert_no_error(error);
	lines = test_walk(fx, walker);
	g_assert_cmpuint(lines->len, ==, 1);
	g_assert_true(g_str_has_suffix(g_ptr_array_index(lines, 0), "/f 2"));
	g_assert_cmpuint(fx->skipped->len, ==, 1);
}

static void
test_file_walker_cancel(TestFixture *fx, gconstpointer user_data)
{
	const gchar *paths[] = {fx->photos, NULL};
	g_autoptr(GError) error = NULL;
	g_autoptr(AsFileWalker) walker =
		as_file_walker_new(paths, AS_FILE_WALKER_FLAG_RECURSIVE, &error);
	g_autoptr(GCancellable) cancellable = g_cancellable_new();
	g_autoptr(AsFileWalkerEntry) entry = NULL;

	g_assert_no_error(error);
	g_cancellable_cancel(cancellable);
	g_assert_false(as_file_walker_next(walker, &entry, cancellable, &error));
	g_assert_error(error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
	g_assert_null(entry);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
#define TEST_ADD(path, func)                                                                       \
	g_test_add(path, TestFixture, NULL, test_fixture_set_up, func, test_fixture_tear_down)
	TEST_ADD("/aerosync/file-walker/recursive", test_file_walker_recursive);
	TEST_ADD("/aerosync/file-walker/files", test_file_walker_files);
	TEST_ADD("/aerosync/file-walker/relative", test_file_walker_relative);
	TEST_ADD("/aerosync/file-walker/errors", test_file_walker_errors);
	TEST_ADD("/aerosync/file-walker/vanished", test_file_walker_vanished);
	TEST_ADD("/aerosync/file-walker/unreadable", test_file_walker_unreadable);
	TEST_ADD("/aerosync/file-walker/deep", test_file_walker_deep);
	TEST_ADD("/aerosync/file-walker/cancel", test_file_walker_cancel);
	return g_test_run();
}
