/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <fcntl.h>
#include <ftw.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "as-disk-usage.h"
#include "as-error.h"
#include "as-path.h"
#include "as-publish-batch.h"
#include "as-publish.h"

/* threads publishing to one name at the same time */
#define CONCURRENT_PUBLISHERS 8

static int
rm_rf_cb(const char *path, const struct stat *st, int typeflag, struct FTW *ftwbuf)
{
	return remove(path);
}

static void
rm_rf(const gchar *path)
{
	g_assert_cmpint(nftw(path, rm_rf_cb, 16, FTW_DEPTH | FTW_PHYS), ==, 0);
}

static gchar *
make_tmp_dir(void)
{
	g_autoptr(GError) error = NULL;
	gchar *dir = g_dir_make_tmp("as-path-test-XXXXXX", &error);
	g_assert_no_error(error);
	return dir;
}

static int
open_dir_fd(const gchar *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	g_assert_cmpint(fd, >=, 0);
	return fd;
}

static void
write_file(const gchar *path, const gchar *contents)
{
	g_autoptr(GError) error = NULL;
	gboolean ret = g_file_set_contents(path, contents, -1, &error);
	g_assert_no_error(error);
	g_assert_true(ret);
}

static void
assert_file_contents(const gchar *path, const gchar *expected)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *contents = NULL;
	gboolean ret = g_file_get_contents(path, &contents, NULL, &error);
	g_assert_no_error(error);
	g_assert_true(ret);
	g_assert_cmpstr(contents, ==, expected);
}

static void
as_path_sanitize_func(void)
{
	g_autofree gchar *seg255 = g_strnfill(255, 'x');
	g_autofree gchar *seg256 = g_strnfill(256, 'x');
	g_autofree gchar *deep255 = g_strdup_printf("d/%s/f", seg255);
	g_autofree gchar *deep256 = g_strdup_printf("d/%s/f", seg256);
	g_autoptr(GString) total4096 = g_string_new(NULL);
	g_autoptr(GString) total4097 = NULL;
	struct {
		const gchar *raw;
		const gchar *expected; /* NULL: rejected */
	} cases[] = {
		{"a.txt", "a.txt"},
		{"dir/sub/a.txt", "dir/sub/a.txt"},
		{"./a//b/./c", "a/b/c"},
		{"a///b", "a/b"},
		{"\xe6\x97\xa5\xe6\x9c\xac/\xd1\x84\xd0\xb0\xd0\xb9\xd0\xbb.txt",
		 "\xe6\x97\xa5\xe6\x9c\xac/\xd1\x84\xd0\xb0\xd0\xb9\xd0\xbb.txt"},
		{"a b#c?.txt", "a b#c?.txt"},
		{"a+b%20c&d=e;f.txt", "a+b%20c&d=e;f.txt"},
		{"back\\slash.txt", "back\\slash.txt"},
		{"..\\x", "..\\x"}, /* a backslash is an ordinary character on Linux */
		{"...", "..."},
		{"..a/b..", "..a/b.."},
		{".hidden", ".hidden"},
		{"sub/.aerosync/x", "sub/.aerosync/x"}, /* only reserved at the top */
		{".aerosync_x/y", ".aerosync_x/y"},
		{".aerosyncx", ".aerosyncx"},
		{seg255, seg255},
		{deep255, deep255},
		/* hostile */
		{NULL, NULL},
		{"", NULL},
		{".", NULL},
		{"./", NULL},
		{"..", NULL},
		{"../x", NULL},
		{"a/../../x", NULL},
		{"a/..", NULL},
		{"a/../b", NULL},
		{"/etc/passwd", NULL},
		{"//etc/passwd", NULL},
		{".aerosync", NULL},
		{".aerosync/x", NULL},
		{"./.aerosync/x", NULL},
		{"//.aerosync/x", NULL},
		{".AeroSync/inprogress/y", NULL},
		{".AEROSYNC/inprogress/y", NULL},
		{".aerosync./x", NULL},	      /* vfat strips trailing dots */
		{".aerosync . /x", NULL},     /* and spaces */
		{".aero\xc5\xbfync/x", NULL}, /* U+017F folds to 's' */
		{"a\001b", NULL},
		{"a\037b", NULL},
		{"a\177b", NULL},
		{"a\tb", NULL},
		{"a\nb", NULL},
		{"\xff\xfe", NULL},
		{"a/\xc3\x28.txt", NULL},
		{"\300\257etc", NULL}, /* overlong '/' */
		{seg256, NULL},
		{deep256, NULL},
		{"dir/", NULL},
		{"dir//", NULL},
		{"dir/.", NULL},
		{"dir/./", NULL},
	};

	/* 20 segments of 200 bytes, separators, and a last segment filling up to 4096 bytes */
	for (guint i = 0; i < 20; i++) {
		g_autofree gchar *seg = g_strnfill(200, 'a' + i);
		g_string_append_printf(total4096, "%s/", seg);
	}
	total4097 = g_string_new(total4096->str);
	for (guint i = 0; i < 76; i++)
		g_string_append_c(total4096, 'z');
	for (guint i = 0; i < 77; i++)
		g_string_append_c(total4097, 'z');
	g_assert_cmpuint(total4096->len, ==, AS_PATH_TOTAL_MAX);

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(GError) error = NULL;
		g_autofree gchar *result = as_path_sanitize(cases[i].raw, &error);

		g_debug("case %u: %s", i, cases[i].expected != NULL ? cases[i].expected : "reject");
		if (cases[i].expected != NULL) {
			g_assert_no_error(error);
			g_assert_cmpstr(result, ==, cases[i].expected);
		} else {
			g_assert_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT);
			g_assert_null(result);
		}
	}

	{
		g_autoptr(GError) error = NULL;
		g_autofree gchar *result = as_path_sanitize(total4096->str, &error);
		g_assert_no_error(error);
		g_assert_cmpstr(result, ==, total4096->str);
	}
	{
		g_autoptr(GError) error = NULL;
		g_autofree gchar *result = as_path_sanitize(total4097->str, &error);
		g_assert_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT);
		g_assert_null(result);
	}

	/* a long run of empty and "." segments collapses */
	{
		g_autoptr(GString) padded = g_string_new(NULL);
		g_autoptr(GError) error = NULL;
		g_autofree gchar *result = NULL;

		for (guint i = 0; i < 100000; i++)
			g_string_append(padded, "./");
		g_string_append(padded, "a");
		for (guint i = 0; i < 100000; i++)
			g_string_append_c(padded, '/');
		g_string_append(padded, "b");
		result = as_path_sanitize(padded->str, &error);
		g_assert_no_error(error);
		g_assert_cmpstr(result, ==, "a/b");
	}
}

static void
as_path_sanitize_messages_func(void)
{
	struct {
		const gchar *raw;
		const gchar *needle;
	} cases[] = {
		{"a/../../x", "path escapes the receive directory: '..' segment"},
		{"/etc/passwd", "absolute"},
		{".aerosync/inprogress/x", "reserved folder '.aerosync'"},
		{"a\001b", "control character 0x01"},
		{"\xff", "UTF-8"},
		{"", "empty"},
		{"dir/", "does not end in a file name"},
	};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(GError) error = NULL;
		g_autofree gchar *result = as_path_sanitize(cases[i].raw, &error);
		g_assert_null(result);
		g_assert_nonnull(error);
		g_assert_nonnull(strstr(error->message, cases[i].needle));
	}
}

static void
as_path_reserved_func(void)
{
	g_assert_true(as_path_segment_is_reserved(".aerosync"));
	g_assert_true(as_path_segment_is_reserved(".AeroSync"));
	g_assert_true(as_path_segment_is_reserved(".aerosync.. "));
	/* U+FF41 FULLWIDTH LATIN SMALL LETTER A has a compatibility decomposition to 'a' */
	g_assert_true(as_path_segment_is_reserved(".\357\275\201erosync"));
	g_assert_false(as_path_segment_is_reserved("aerosync"));
	g_assert_false(as_path_segment_is_reserved(".aerosync2"));
	g_assert_false(as_path_segment_is_reserved(". aerosync"));
	g_assert_false(as_path_segment_is_reserved(""));
}

static void
as_path_basename_only_func(void)
{
	struct {
		const gchar *raw;
		const gchar *expected;
	} cases[] = {
		{"plain.txt", "plain.txt"},
		{"C:\\Users\\me\\report final.pdf", "report final.pdf"},
		{"/home/me/a.txt", "a.txt"},
		{"../../etc/passwd", "passwd"},
		{"dir\\sub/mixed.bin", "mixed.bin"},
		{"\xe6\x97\xa5.txt", "\xe6\x97\xa5.txt"},
		{NULL, NULL},
		{"", NULL},
		{"dir/", NULL},
		{"dir\\", NULL},
		{".", NULL},
		{"..", NULL},
		{"a\\..", NULL},
		{".aerosync", NULL},
		{"x/.AEROSYNC", NULL},
		{"x/a\001b", NULL},
		{"x/\xff", NULL},
	};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autofree gchar *result = as_path_basename_only(cases[i].raw);
		g_assert_cmpstr(result, ==, cases[i].expected);
	}
}

static void
as_path_dirname_basename_func(void)
{
	struct {
		const gchar *rel;
		const gchar *dirname;
		const gchar *basename;
	} cases[] = {
		{"a/b/c.txt", "a/b", "c.txt"},
		{"a/c", "a", "c"},
		{"c.txt", "", "c.txt"},
	};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autofree gchar *dirname = as_path_dirname(cases[i].rel);
		g_autofree gchar *basename = as_path_basename(cases[i].rel);
		g_assert_cmpstr(dirname, ==, cases[i].dirname);
		g_assert_cmpstr(basename, ==, cases[i].basename);
	}
}

static void
as_path_open_dir_func(void)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *root = make_tmp_dir();
	g_autofree gchar *nested = g_build_filename(root, "x", "y", "z", NULL);
	g_autofree gchar *file = g_build_filename(root, "file", NULL);
	struct stat st_root;
	struct stat st_dup;
	struct stat st_nested;
	struct stat st_opened;
	int root_fd = open_dir_fd(root);
	int fd;

	/* the root itself, as a new descriptor */
	fd = as_path_open_dir(root_fd, NULL, FALSE, &error);
	g_assert_no_error(error);
	g_assert_cmpint(fd, >=, 0);
	g_assert_cmpint(fd, !=, root_fd);
	g_assert_cmpint(fstat(root_fd, &st_root), ==, 0);
	g_assert_cmpint(fstat(fd, &st_dup), ==, 0);
	g_assert_cmpuint(st_root.st_ino, ==, st_dup.st_ino);
	close(fd);
	fd = as_path_open_dir(root_fd, "", FALSE, &error);
	g_assert_no_error(error);
	g_assert_cmpint(fd, >=, 0);
	close(fd);

	/* missing without create */
	fd = as_path_open_dir(root_fd, "x/y/z", FALSE, &error);
	g_assert_error(error, AS_ERROR, AS_ERROR_NOT_FOUND);
	g_assert_cmpint(fd, ==, -1);
	g_clear_error(&error);
	g_assert_false(g_file_test(nested, G_FILE_TEST_EXISTS));

	/* created, then opened again without create */
	fd = as_path_open_dir(root_fd, "x/y/z", TRUE, &error);
	g_assert_no_error(error);
	g_assert_cmpint(fd, >=, 0);
	g_assert_true(g_file_test(nested, G_FILE_TEST_IS_DIR));
	g_assert_cmpint(stat(nested, &st_nested), ==, 0);
	g_assert_cmpint(fstat(fd, &st_opened), ==, 0);
	g_assert_cmpuint(st_nested.st_ino, ==, st_opened.st_ino);
	g_assert_cmpuint(st_nested.st_mode & 0777, ==, 0755 & ~0022 & 0777);
	close(fd);
	fd = as_path_open_dir(root_fd, "x/y/z", FALSE, &error);
	g_assert_no_error(error);
	g_assert_cmpint(fd, >=, 0);
	close(fd);

	/* a regular file where a directory is needed */
	write_file(file, "data");
	fd = as_path_open_dir(root_fd, "file/sub", TRUE, &error);
	g_assert_error(error, AS_ERROR, AS_ERROR_CONFLICT);
	g_assert_cmpint(fd, ==, -1);
	g_clear_error(&error);

	/* '..' is refused even though callers should have sanitised it away */
	fd = as_path_open_dir(root_fd, "x/../..", TRUE, &error);
	g_assert_error(error, AS_ERROR, AS_ERROR_PERMISSION_DENIED);
	g_assert_cmpint(fd, ==, -1);
	g_clear_error(&error);

	close(root_fd);
	rm_rf(root);
}

static void
as_path_open_dir_symlink_func(void)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *root = make_tmp_dir();
	g_autofree gchar *outside = make_tmp_dir();
	g_autofree gchar *link = g_build_filename(root, "link", NULL);
	g_autofree gchar *real = g_build_filename(root, "real", NULL);
	g_autofree gchar *deep_link = g_build_filename(root, "real", "deep", NULL);
	g_autofree gchar *outside_sub = g_build_filename(outside, "sub", NULL);
	g_autofree gchar *outside_deep = g_build_filename(outside, "q", NULL);
	g_autoptr(GDir) dir = NULL;
	int root_fd = open_dir_fd(root);
	int fd;

	g_assert_cmpint(symlink(outside, link), ==, 0);
	g_assert_cmpint(g_mkdir(real, 0755), ==, 0);
	g_assert_cmpint(symlink(outside, deep_link), ==, 0);

	fd = as_path_open_dir(root_fd, "link/sub", TRUE, &error);
	g_assert_error(error, AS_ERROR, AS_ERROR_PERMISSION_DENIED);
	g_assert_nonnull(strstr(error->message, "symlink in path"));
	g_assert_cmpint(fd, ==, -1);
	g_clear_error(&error);

	fd = as_path_open_dir(root_fd, "link", FALSE, &error);
	g_assert_error(error, AS_ERROR, AS_ERROR_PERMISSION_DENIED);
	g_assert_cmpint(fd, ==, -1);
	g_clear_error(&error);

	fd = as_path_open_dir(root_fd, "real/deep/q", TRUE, &error);
	g_assert_error(error, AS_ERROR, AS_ERROR_PERMISSION_DENIED);
	g_assert_cmpint(fd, ==, -1);
	g_clear_error(&error);

	/* nothing was created on the far side of either symlink */
	g_assert_false(g_file_test(outside_sub, G_FILE_TEST_EXISTS));
	g_assert_false(g_file_test(outside_deep, G_FILE_TEST_EXISTS));
	dir = g_dir_open(outside, 0, &error);
	g_assert_no_error(error);
	g_assert_null(g_dir_read_name(dir));

	close(root_fd);
	rm_rf(root);
	rm_rf(outside);
}

typedef struct {
	gchar *root;
	gchar *outside;
	int root_fd;
	int staging_fd;
	guint staged_count;
} PublishFixture;

static void
publish_fixture_set_up(PublishFixture *fx, gconstpointer user_data)
{
	g_autofree gchar *staging = NULL;

	fx->root = make_tmp_dir();
	fx->outside = make_tmp_dir();
	staging = g_build_filename(fx->root, AS_STAGING_DIR_NAME, "inprogress", NULL);
	g_assert_cmpint(g_mkdir_with_parents(staging, 0700), ==, 0);
	fx->root_fd = open_dir_fd(fx->root);
	fx->staging_fd = open_dir_fd(staging);
}

static void
publish_fixture_tear_down(PublishFixture *fx, gconstpointer user_data)
{
	close(fx->staging_fd);
	close(fx->root_fd);
	rm_rf(fx->root);
	rm_rf(fx->outside);
	g_free(fx->root);
	g_free(fx->outside);
}

/* writes a staged file and returns its name in the staging dir */
static gchar *
publish_stage(PublishFixture *fx, const gchar *contents)
{
	gchar *name = g_strdup_printf("staged-%u", fx->staged_count++);
	g_autofree gchar *path =
		g_build_filename(fx->root, AS_STAGING_DIR_NAME, "inprogress", name, NULL);
	write_file(path, contents);
	return name;
}

static gboolean
publish_staged_exists(PublishFixture *fx, const gchar *name)
{
	g_autofree gchar *path =
		g_build_filename(fx->root, AS_STAGING_DIR_NAME, "inprogress", name, NULL);
	return g_file_test(path, G_FILE_TEST_EXISTS);
}

static gchar *
publish_path(PublishFixture *fx, const gchar *rel)
{
	return g_build_filename(fx->root, rel, NULL);
}

static void
publish_expect(PublishFixture *fx,
	       const gchar *rel,
	       gboolean overwrite,
	       AsPublishMethod method,
	       const gchar *contents,
	       const gchar *expected)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *staged = publish_stage(fx, contents);
	g_autofree gchar *used = as_publish_file_with_method(fx->staging_fd, staged, fx->root_fd,
							     rel, overwrite, method, &error);
	g_autofree gchar *path = NULL;

	g_assert_no_error(error);
	g_assert_cmpstr(used, ==, expected);
	path = publish_path(fx, used);
	assert_file_contents(path, contents);
	g_assert_false(publish_staged_exists(fx, staged));
}

static void
as_publish_no_clobber_func(PublishFixture *fx, gconstpointer user_data)
{
	const AsPublishMethod methods[] = {
		AS_PUBLISH_METHOD_RENAME_NOREPLACE,
		AS_PUBLISH_METHOD_LINK,
		AS_PUBLISH_METHOD_PLACEHOLDER,
	};

	for (guint i = 0; i < G_N_ELEMENTS(methods); i++) {
		g_autofree gchar *dir = g_strdup_printf("m%u", i);
		g_autofree gchar *a = g_strdup_printf("%s/a.txt", dir);
		g_autofree gchar *a1 = g_strdup_printf("%s/a_1.txt", dir);
		g_autofree gchar *a2 = g_strdup_printf("%s/a_2.txt", dir);
		g_autofree gchar *rc = g_strdup_printf("%s/.bashrc", dir);
		g_autofree gchar *rc1 = g_strdup_printf("%s/.bashrc_1", dir);
		g_autofree gchar *tgz = g_strdup_printf("%s/a.tar.gz", dir);
		g_autofree gchar *tgz1 = g_strdup_printf("%s/a.tar_1.gz", dir);
		g_autofree gchar *noext = g_strdup_printf("%s/noext", dir);
		g_autofree gchar *noext1 = g_strdup_printf("%s/noext_1", dir);
		g_autofree gchar *path_a = NULL;
		g_autofree gchar *path_a1 = NULL;

		publish_expect(fx, a, FALSE, methods[i], "one", a);
		publish_expect(fx, a, FALSE, methods[i], "two", a1);
		publish_expect(fx, a, FALSE, methods[i], "three", a2);
		publish_expect(fx, rc, FALSE, methods[i], "rc", rc);
		publish_expect(fx, rc, FALSE, methods[i], "rc again", rc1);
		publish_expect(fx, tgz, FALSE, methods[i], "tgz", tgz);
		publish_expect(fx, tgz, FALSE, methods[i], "tgz again", tgz1);
		publish_expect(fx, noext, FALSE, methods[i], "n", noext);
		publish_expect(fx, noext, FALSE, methods[i], "n again", noext1);

		/* earlier files were left alone */
		path_a = publish_path(fx, a);
		path_a1 = publish_path(fx, a1);
		assert_file_contents(path_a, "one");
		assert_file_contents(path_a1, "two");
	}
}

static void
as_publish_existing_untouched_func(PublishFixture *fx, gconstpointer user_data)
{
	g_autofree gchar *dir = publish_path(fx, "dir");
	g_autofree gchar *existing = publish_path(fx, "dir/a.txt");
	g_autofree gchar *target = g_build_filename(fx->outside, "target", NULL);
	g_autofree gchar *link = publish_path(fx, "s.txt");
	g_autofree gchar *subdir = publish_path(fx, "dd");

	g_assert_cmpint(g_mkdir(dir, 0755), ==, 0);
	write_file(existing, "original");
	write_file(target, "secret");
	g_assert_cmpint(symlink(target, link), ==, 0);
	g_assert_cmpint(g_mkdir(subdir, 0755), ==, 0);

	publish_expect(fx, "dir/a.txt", FALSE, AS_PUBLISH_METHOD_RENAME_NOREPLACE, "new",
		       "dir/a_1.txt");
	assert_file_contents(existing, "original");

	/* a symlink at the destination is a taken name, never followed */
	publish_expect(fx, "s.txt", FALSE, AS_PUBLISH_METHOD_RENAME_NOREPLACE, "new", "s_1.txt");
	assert_file_contents(target, "secret");
	g_assert_true(g_file_test(link, G_FILE_TEST_IS_SYMLINK));

	/* so is a directory */
	publish_expect(fx, "dd", FALSE, AS_PUBLISH_METHOD_LINK, "new", "dd_1");
	g_assert_true(g_file_test(subdir, G_FILE_TEST_IS_DIR));
}

typedef struct {
	PublishFixture *fx;
	gchar *staged;	 /* owned */
	gchar *contents; /* owned */
	gchar *used;	 /* owned */
	GError *error;	 /* owned */
} PublishJob;

static gpointer
publish_thread_cb(gpointer user_data)
{
	PublishJob *job = user_data;
	job->used = as_publish_file(job->fx->staging_fd, job->staged, job->fx->root_fd,
				    "c/same.bin", FALSE, &job->error);
	return NULL;
}

static void
as_publish_concurrent_func(PublishFixture *fx, gconstpointer user_data)
{
	PublishJob jobs[CONCURRENT_PUBLISHERS] = {0};
	GThread *threads[CONCURRENT_PUBLISHERS];
	g_autoptr(GHashTable) seen = g_hash_table_new(g_str_hash, g_str_equal);

	for (guint i = 0; i < CONCURRENT_PUBLISHERS; i++) {
		jobs[i].fx = fx;
		jobs[i].contents = g_strdup_printf("publisher %u", i);
		jobs[i].staged = publish_stage(fx, jobs[i].contents);
	}
	for (guint i = 0; i < CONCURRENT_PUBLISHERS; i++)
		threads[i] = g_thread_new("publish", publish_thread_cb, &jobs[i]);
	for (guint i = 0; i < CONCURRENT_PUBLISHERS; i++)
		g_thread_join(threads[i]);

	/* every publisher got its own name and its own content survived */
	for (guint i = 0; i < CONCURRENT_PUBLISHERS; i++) {
		g_autofree gchar *path = NULL;

		g_assert_no_error(jobs[i].error);
		g_assert_nonnull(jobs[i].used);
		g_assert_true(g_str_has_prefix(jobs[i].used, "c/same"));
		g_assert_true(g_hash_table_add(seen, jobs[i].used));
		path = publish_path(fx, jobs[i].used);
		assert_file_contents(path, jobs[i].contents);
		g_assert_false(publish_staged_exists(fx, jobs[i].staged));
	}
	g_assert_true(g_hash_table_contains(seen, "c/same.bin"));
	g_assert_true(g_hash_table_contains(seen, "c/same_7.bin"));
	for (guint i = 0; i < CONCURRENT_PUBLISHERS; i++) {
		g_free(jobs[i].staged);
		g_free(jobs[i].contents);
		g_free(jobs[i].used);
	}
}

static void
as_publish_overwrite_func(PublishFixture *fx, gconstpointer user_data)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *existing = publish_path(fx, "o.txt");
	g_autofree gchar *target = g_build_filename(fx->outside, "target", NULL);
	g_autofree gchar *link = publish_path(fx, "l.txt");
	g_autofree gchar *subdir = publish_path(fx, "d.txt");
	g_autofree gchar *inside = publish_path(fx, "d.txt/keep");
	g_autofree gchar *staged = NULL;
	g_autofree gchar *used = NULL;

	write_file(existing, "old");
	publish_expect(fx, "o.txt", TRUE, AS_PUBLISH_METHOD_RENAME_NOREPLACE, "new", "o.txt");
	assert_file_contents(existing, "new");

	/* the symlink itself is replaced, its target is untouched */
	write_file(target, "secret");
	g_assert_cmpint(symlink(target, link), ==, 0);
	publish_expect(fx, "l.txt", TRUE, AS_PUBLISH_METHOD_RENAME_NOREPLACE, "new", "l.txt");
	g_assert_false(g_file_test(link, G_FILE_TEST_IS_SYMLINK));
	assert_file_contents(target, "secret");

	/* a directory is never replaced, and the staged file is kept for a retry */
	g_assert_cmpint(g_mkdir(subdir, 0755), ==, 0);
	write_file(inside, "kept");
	staged = publish_stage(fx, "new");
	used = as_publish_file(fx->staging_fd, staged, fx->root_fd, "d.txt", TRUE, &error);
	g_assert_error(error, AS_ERROR, AS_ERROR_CONFLICT);
	g_assert_null(used);
	g_assert_true(publish_staged_exists(fx, staged));
	assert_file_contents(inside, "kept");
}

static void
as_publish_parents_func(PublishFixture *fx, gconstpointer user_data)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *link = publish_path(fx, "evil");
	g_autofree gchar *escaped = g_build_filename(fx->outside, "x.txt", NULL);
	g_autofree gchar *escaped_dir = g_build_filename(fx->outside, "sub", NULL);
	g_autofree gchar *staged = NULL;
	g_autofree gchar *used = NULL;

	publish_expect(fx, "p/q/r/file.txt", FALSE, AS_PUBLISH_METHOD_RENAME_NOREPLACE, "deep",
		       "p/q/r/file.txt");
	publish_expect(fx, "./p//q/file.txt", FALSE, AS_PUBLISH_METHOD_RENAME_NOREPLACE,
		       "normalised", "p/q/file.txt");

	/* a symlinked parent is refused and nothing lands outside */
	g_assert_cmpint(symlink(fx->outside, link), ==, 0);
	staged = publish_stage(fx, "payload");
	used = as_publish_file(fx->staging_fd, staged, fx->root_fd, "evil/x.txt", FALSE, &error);
	g_assert_error(error, AS_ERROR, AS_ERROR_PERMISSION_DENIED);
	g_assert_null(used);
	g_clear_error(&error);
	used = as_publish_file(fx->staging_fd, staged, fx->root_fd, "evil/sub/x.txt", TRUE, &error);
	g_assert_error(error, AS_ERROR, AS_ERROR_PERMISSION_DENIED);
	g_assert_null(used);
	g_clear_error(&error);
	g_assert_false(g_file_test(escaped, G_FILE_TEST_EXISTS));
	g_assert_false(g_file_test(escaped_dir, G_FILE_TEST_EXISTS));
	g_assert_true(publish_staged_exists(fx, staged));

	/* unsanitised destinations are refused */
	used = as_publish_file(fx->staging_fd, staged, fx->root_fd, "../x.txt", FALSE, &error);
	g_assert_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT);
	g_assert_null(used);
	g_clear_error(&error);
	used = as_publish_file(fx->staging_fd, staged, fx->root_fd, ".aerosync/inprogress/x", TRUE,
			       &error);
	g_assert_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT);
	g_assert_null(used);
	g_assert_true(publish_staged_exists(fx, staged));
}

static void
as_publish_failure_leaves_nothing_func(PublishFixture *fx, gconstpointer user_data)
{
	const AsPublishMethod methods[] = {
		AS_PUBLISH_METHOD_RENAME_NOREPLACE,
		AS_PUBLISH_METHOD_LINK,
		AS_PUBLISH_METHOD_PLACEHOLDER,
	};
	g_autofree gchar *final = publish_path(fx, "missing.txt");

	/* a staged file that vanished: the placeholder method must remove its reservation */
	for (guint i = 0; i < G_N_ELEMENTS(methods); i++) {
		g_autoptr(GError) error = NULL;
		g_autofree gchar *used = as_publish_file_with_method(
			fx->staging_fd, "no-such-staged-file", fx->root_fd, "missing.txt", FALSE,
			methods[i], &error);
		g_assert_error(error, AS_ERROR, AS_ERROR_NOT_FOUND);
		g_assert_null(used);
		g_assert_false(g_file_test(final, G_FILE_TEST_EXISTS));
	}
}

static void
as_publish_exhausted_func(PublishFixture *fx, gconstpointer user_data)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *staged = NULL;
	g_autofree gchar *used = NULL;
	int dir_fd;
	int fd;

	/* take a.txt and every a_N.txt; hard links are much cheaper to make than new inodes */
	dir_fd = as_path_open_dir(fx->root_fd, "full", TRUE, &error);
	g_assert_no_error(error);
	fd = openat(dir_fd, "a.txt", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	g_assert_cmpint(fd, >=, 0);
	close(fd);
	for (guint n = 1; n <= AS_PUBLISH_SUFFIX_MAX; n++) {
		g_autofree gchar *name = as_publish_candidate_name("a.txt", n);
		g_assert_cmpint(linkat(dir_fd, "a.txt", dir_fd, name, 0), ==, 0);
	}
	close(dir_fd);

	staged = publish_stage(fx, "no room");
	used = as_publish_file(fx->staging_fd, staged, fx->root_fd, "full/a.txt", FALSE, &error);
	g_assert_error(error, AS_ERROR, AS_ERROR_CONFLICT);
	g_assert_null(used);
	g_assert_true(publish_staged_exists(fx, staged));
}

/* many files at once: each lands or fails on its own, names never clobber, dirs are shared */
static void
as_publish_batch_func(PublishFixture *fx, gconstpointer user_data)
{
	g_autoptr(AsPublishBatch) batch = as_publish_batch_new(fx->staging_fd, fx->root_fd, FALSE);
	g_autoptr(AsPublishBatch) empty = as_publish_batch_new(fx->staging_fd, fx->root_fd, FALSE);
	g_autofree gchar *link = publish_path(fx, "evil");
	g_autofree gchar *escaped = g_build_filename(fx->outside, "x.txt", NULL);
	const gchar *rels[] = {"a.txt", "a.txt", "d/b.txt", "d/c.txt", "evil/x.txt", "e/f/g.txt"};
	const gchar *expected[] = {"a.txt", "a_1.txt", "d/b.txt", "d/c.txt", NULL, "e/f/g.txt"};
	gchar *staged[G_N_ELEMENTS(rels)] = {NULL};

	g_assert_cmpint(symlink(fx->outside, link), ==, 0);
	for (guint i = 0; i < G_N_ELEMENTS(rels); i++) {
		g_autofree gchar *contents = g_strdup_printf("file %u", i);
		staged[i] = publish_stage(fx, contents);
		g_assert_cmpuint(as_publish_batch_add(batch, staged[i], rels[i]), ==, i);
	}
	g_assert_cmpuint(as_publish_batch_get_length(batch), ==, G_N_ELEMENTS(rels));

	/* nothing moves before the batch runs */
	for (guint i = 0; i < G_N_ELEMENTS(rels); i++)
		g_assert_true(publish_staged_exists(fx, staged[i]));
	as_publish_batch_run(batch);

	for (guint i = 0; i < G_N_ELEMENTS(rels); i++) {
		g_autofree gchar *contents = g_strdup_printf("file %u", i);
		const gchar *published = as_publish_batch_get_published(batch, i);
		g_assert_cmpstr(published, ==, expected[i]);
		if (expected[i] == NULL) {
			/* the symlinked parent fails that file alone; it stays staged */
			g_assert_error((GError *)as_publish_batch_get_error(batch, i), AS_ERROR,
				       AS_ERROR_PERMISSION_DENIED);
			g_assert_true(publish_staged_exists(fx, staged[i]));
		} else {
			g_autofree gchar *path = publish_path(fx, published);
			g_assert_null(as_publish_batch_get_error(batch, i));
			assert_file_contents(path, contents);
			g_assert_false(publish_staged_exists(fx, staged[i]));
		}
		g_free(staged[i]);
	}
	g_assert_false(g_file_test(escaped, G_FILE_TEST_EXISTS));

	/* an empty batch has nothing to sync */
	as_publish_batch_run(empty);
	g_assert_cmpuint(as_publish_batch_get_length(empty), ==, 0);
}

static void
as_publish_candidate_name_func(void)
{
	g_autofree gchar *long_stem = g_strnfill(251, 'x');
	g_autofree gchar *long_name = g_strdup_printf("%s.txt", long_stem);
	g_autofree gchar *long_ext_stem = g_strnfill(253, 'x');
	g_autofree gchar *fitting_ext = g_strdup_printf("a.%s", long_stem);
	g_autofree gchar *long_ext = g_strdup_printf("a.%s", long_ext_stem);
	g_autoptr(GString) utf8 = g_string_new(NULL);
	struct {
		const gchar *basename;
		guint n;
		const gchar *expected;
	} cases[] = {
		{"a.txt", 0, "a.txt"},	       {"a.txt", 1, "a_1.txt"},
		{"a.txt", 9999, "a_9999.txt"}, {"a.tar.gz", 2, "a.tar_2.gz"},
		{".bashrc", 1, ".bashrc_1"},   {".config.json", 1, ".config_1.json"},
		{"noext", 3, "noext_3"},       {"trailing.", 1, "trailing_1."},
	};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autofree gchar *name = as_publish_candidate_name(cases[i].basename, cases[i].n);
		g_assert_cmpstr(name, ==, cases[i].expected);
	}

	/* names stay within 255 bytes, keeping the suffix and extension */
	{
		g_autofree gchar *name = as_publish_candidate_name(long_name, 42);
		g_assert_cmpuint(strlen(long_name), ==, 255);
		g_assert_cmpuint(strlen(name), ==, 255);
		g_assert_true(g_str_has_suffix(name, "_42.txt"));
	}
	{
		g_autofree gchar *name = as_publish_candidate_name(fitting_ext, 1);
		g_assert_cmpuint(strlen(name), ==, 255);
		g_assert_true(g_str_has_prefix(name, "a_1.x"));
	}
	/* an extension that leaves no room for the stem is treated as part of it */
	{
		g_autofree gchar *name = as_publish_candidate_name(long_ext, 1);
		g_assert_cmpuint(strlen(long_ext), ==, 255);
		g_assert_cmpuint(strlen(name), ==, 255);
		g_assert_true(g_str_has_prefix(name, "a.x"));
		g_assert_true(g_str_has_suffix(name, "x_1"));
	}

	/* 85 three-byte characters: truncation must not split one */
	for (guint i = 0; i < 85; i++)
		g_string_append(utf8, "\xe6\x97\xa5");
	{
		g_autofree gchar *name = as_publish_candidate_name(utf8->str, 7);
		g_assert_cmpuint(strlen(name), <=, 255);
		g_assert_true(g_utf8_validate(name, -1, NULL));
		g_assert_true(g_str_has_suffix(name, "\xe6\x97\xa5_7"));
	}
}

static void
as_publish_fsync_dir_func(void)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *root = make_tmp_dir();
	int fd = open_dir_fd(root);
	gboolean ret = as_publish_fsync_dir(fd, &error);

	g_assert_no_error(error);
	g_assert_true(ret);
	close(fd);
	rm_rf(root);
}

static void
as_disk_usage_func(void)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *root = make_tmp_dir();
	g_autofree gchar *missing = g_build_filename(root, "missing", NULL);
	guint64 free_bytes = 0;
	guint64 total_bytes = 0;
	guint64 free_fd = 0;
	guint64 total_fd = 0;
	gboolean ret;
	int fd;

	ret = as_disk_usage_get(root, &free_bytes, &total_bytes, &error);
	g_assert_no_error(error);
	g_assert_true(ret);
	g_assert_cmpuint(total_bytes, >, 0);
	g_assert_cmpuint(free_bytes, <=, total_bytes);

	fd = open_dir_fd(root);
	ret = as_disk_usage_get_fd(fd, &free_fd, &total_fd, &error);
	g_assert_no_error(error);
	g_assert_true(ret);
	g_assert_cmpuint(total_fd, ==, total_bytes);
	close(fd);

	/* the out arguments are optional */
	ret = as_disk_usage_get(root, NULL, NULL, &error);
	g_assert_no_error(error);
	g_assert_true(ret);

	ret = as_disk_usage_get(missing, &free_bytes, &total_bytes, &error);
	g_assert_error(error, AS_ERROR, AS_ERROR_NOT_FOUND);
	g_assert_false(ret);
	rm_rf(root);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/aerosync/path/sanitize", as_path_sanitize_func);
	g_test_add_func("/aerosync/path/sanitize-messages", as_path_sanitize_messages_func);
	g_test_add_func("/aerosync/path/reserved", as_path_reserved_func);
	g_test_add_func("/aerosync/path/basename-only", as_path_basename_only_func);
	g_test_add_func("/aerosync/path/dirname-basename", as_path_dirname_basename_func);
	g_test_add_func("/aerosync/path/open-dir", as_path_open_dir_func);
	g_test_add_func("/aerosync/path/open-dir-symlink", as_path_open_dir_symlink_func);
	g_test_add("/aerosync/publish/no-clobber", PublishFixture, NULL, publish_fixture_set_up,
		   as_publish_no_clobber_func, publish_fixture_tear_down);
	g_test_add("/aerosync/publish/existing-untouched", PublishFixture, NULL,
		   publish_fixture_set_up, as_publish_existing_untouched_func,
		   publish_fixture_tear_down);
	g_test_add("/aerosync/publish/concurrent", PublishFixture, NULL, publish_fixture_set_up,
		   as_publish_concurrent_func, publish_fixture_tear_down);
	g_test_add("/aerosync/publish/overwrite", PublishFixture, NULL, publish_fixture_set_up,
		   as_publish_overwrite_func, publish_fixture_tear_down);
	g_test_add("/aerosync/publish/parents", PublishFixture, NULL, publish_fixture_set_up,
		   as_publish_parents_func, publish_fixture_tear_down);
	g_test_add("/aerosync/publish/failure-leaves-nothing", PublishFixture, NULL,
		   publish_fixture_set_up, as_publish_failure_leaves_nothing_func,
		   publish_fixture_tear_down);
	g_test_add("/aerosync/publish/exhausted", PublishFixture, NULL, publish_fixture_set_up,
		   as_publish_exhausted_func, publish_fixture_tear_down);
	g_test_add("/aerosync/publish/batch", PublishFixture, NULL, publish_fixture_set_up,
		   as_publish_batch_func, publish_fixture_tear_down);
	g_test_add_func("/aerosync/publish/candidate-name", as_publish_candidate_name_func);
	g_test_add_func("/aerosync/publish/fsync-dir", as_publish_fsync_dir_func);
	g_test_add_func("/aerosync/disk-usage/get", as_disk_usage_func);
	return g_test_run();
}
