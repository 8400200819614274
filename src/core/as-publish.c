/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "AsPublish"

#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "as-error.h"
#include "as-path.h"
#include "as-publish.h"

/* longest file name most Linux filesystems accept, in bytes */
#define AS_PUBLISH_NAME_MAX 255

/* mode of the empty file that reserves a name for AS_PUBLISH_METHOD_PLACEHOLDER */
#define AS_PUBLISH_PLACEHOLDER_MODE 0600

typedef enum {
	AS_PUBLISH_RESULT_PUBLISHED,
	AS_PUBLISH_RESULT_EXISTS,
	AS_PUBLISH_RESULT_FAILED,
} AsPublishResult;

static void
as_publish_set_error_errno(GError **error, int errsv, const gchar *what, const gchar *name)
{
	g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errsv), "failed to %s '%s': %s", what,
		    name, g_strerror(errsv));
	as_error_convert(error);
}

/**
 * as_publish_candidate_name:
 * @basename: a file name
 * @n: the attempt, 0 for @basename itself
 *
 * Builds the 0.x-compatible alternative name "stem_N.ext", splitting at the last dot; a name
 * starting with its only dot (".bashrc") has no extension. The stem is shortened on a UTF-8
 * boundary when the result would exceed 255 bytes.
 *
 * Returns: (transfer full): the candidate name
 **/
gchar *
as_publish_candidate_name(const gchar *basename, guint n)
{
	g_autofree gchar *suffix = NULL;
	const gchar *dot;
	const gchar *ext = "";
	gsize stem_len;
	gsize budget;

	g_return_val_if_fail(basename != NULL, NULL);

	if (n == 0)
		return g_strdup(basename);

	suffix = g_strdup_printf("_%u", n);
	dot = strrchr(basename, '.');
	if (dot != NULL && dot != basename)
		ext = dot;
	stem_len = strlen(basename) - strlen(ext);

	/* an extension too long to keep is treated as part of the stem */
	if (strlen(suffix) + strlen(ext) >= AS_PUBLISH_NAME_MAX) {
		ext = "";
		stem_len = strlen(basename);
	}
	budget = AS_PUBLISH_NAME_MAX - strlen(suffix) - strlen(ext);
	if (stem_len > budget) {
		const gchar *end = basename + budget;
		while (end > basename && ((guchar)*end & 0xc0) == 0x80)
			end--;
		stem_len = (gsize)(end - basename);
	}
	return g_strdup_printf("%.*s%s%s", (int)stem_len, basename, suffix, ext);
}

/**
 * as_publish_fsync_dir:
 * @dir_fd: a directory file descriptor
 * @error: (nullable): optional return location for an error
 *
 * Makes renames and new entries in a directory durable. Filesystems that cannot sync
 * directories are not an error.
 *
 * Returns: %TRUE on success
 **/
gboolean
as_publish_fsync_dir(int dir_fd, GError **error)
{
	g_return_val_if_fail(dir_fd >= 0, FALSE);
	g_return_val_if_fail(error == NULL || *error == NULL, FALSE);

	while (fsync(dir_fd) < 0) {
		int errsv = errno;
		if (errsv == EINTR)
			continue;
		if (errsv == EINVAL || errsv == EROFS)
			return TRUE;
		g_set_error(error, AS_ERROR, AS_ERROR_IO, "failed to sync directory: %s",
			    g_strerror(errsv));
		return FALSE;
	}
	return TRUE;
}

/* one attempt to move the staged file to @name without replacing anything there */
static AsPublishResult
as_publish_try_noclobber(int staging_dir_fd,
			 const gchar *staged_name,
			 int dir_fd,
			 const gchar *name,
			 AsPublishMethod *method,
			 GError **error)
{
	int errsv;
	int fd;

	if (*method == AS_PUBLISH_METHOD_RENAME_NOREPLACE) {
		if (renameat2(staging_dir_fd, staged_name, dir_fd, name, RENAME_NOREPLACE) == 0)
			return AS_PUBLISH_RESULT_PUBLISHED;
		errsv = errno;
		if (errsv == EEXIST)
			return AS_PUBLISH_RESULT_EXISTS;
		if (errsv != EINVAL && errsv != ENOSYS) {
			as_publish_set_error_errno(error, errsv, "rename to", name);
			return AS_PUBLISH_RESULT_FAILED;
		}
		g_debug("RENAME_NOREPLACE unsupported here (%s), using hard links",
			g_strerror(errsv));
		*method = AS_PUBLISH_METHOD_LINK;
	}

	if (*method == AS_PUBLISH_METHOD_LINK) {
		if (linkat(staging_dir_fd, staged_name, dir_fd, name, 0) == 0) {
			/* the file is published already; a stale staged name is only clutter */
			if (unlinkat(staging_dir_fd, staged_name, 0) < 0) {
				g_warning("published '%s' but failed to remove staged '%s': %s",
					  name, staged_name, g_strerror(errno));
			}
			return AS_PUBLISH_RESULT_PUBLISHED;
		}
		errsv = errno;
		if (errsv == EEXIST)
			return AS_PUBLISH_RESULT_EXISTS;
		if (errsv != EPERM && errsv != EOPNOTSUPP && errsv != ENOSYS) {
			as_publish_set_error_errno(error, errsv, "link to", name);
			return AS_PUBLISH_RESULT_FAILED;
		}
		g_debug("hard links unsupported here (%s), reserving names with O_EXCL",
			g_strerror(errsv));
		*method = AS_PUBLISH_METHOD_PLACEHOLDER;
	}

	/* O_EXCL reserves the name against every other no-clobber publisher, then the rename
	 * replaces only our own empty placeholder */
	fd = openat(dir_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		    AS_PUBLISH_PLACEHOLDER_MODE);
	if (fd < 0) {
		errsv = errno;
		if (errsv == EEXIST)
			return AS_PUBLISH_RESULT_EXISTS;
		as_publish_set_error_errno(error, errsv, "reserve", name);
		return AS_PUBLISH_RESULT_FAILED;
	}
	close(fd);
	if (renameat(staging_dir_fd, staged_name, dir_fd, name) < 0) {
		errsv = errno;
		(void)unlinkat(dir_fd, name, 0);
		as_publish_set_error_errno(error, errsv, "rename to", name);
		return AS_PUBLISH_RESULT_FAILED;
	}
	return AS_PUBLISH_RESULT_PUBLISHED;
}

/* atomically replaces a file or symlink at @name, never a directory */
static gboolean
as_publish_replace(
	int staging_dir_fd, const gchar *staged_name, int dir_fd, const gchar *name, GError **error)
{
	struct stat st;
	int errsv;

	if (fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode)) {
		g_set_error(error, AS_ERROR, AS_ERROR_CONFLICT, "'%s' exists and is a directory",
			    name);
		return FALSE;
	}

	/* rename() replaces a symlink itself rather than its target, and refuses to put a
	 * file over a directory that appeared since the check above */
	if (renameat(staging_dir_fd, staged_name, dir_fd, name) == 0)
		return TRUE;
	errsv = errno;
	if (errsv == EISDIR || errsv == ENOTEMPTY || errsv == EEXIST) {
		g_set_error(error, AS_ERROR, AS_ERROR_CONFLICT, "'%s' exists and is a directory",
			    name);
		return FALSE;
	}
	as_publish_set_error_errno(error, errsv, "rename to", name);
	return FALSE;
}

/**
 * as_publish_file_with_method:
 * @staging_dir_fd: the directory holding the staged file
 * @staged_name: the staged file name in @staging_dir_fd
 * @root_fd: the receive directory, on the same filesystem
 * @rel_path: the sanitised destination below @root_fd
 * @overwrite: whether an existing file at @rel_path may be replaced
 * @method: the first no-clobber method to try; it falls back as the filesystem requires
 * @error: (nullable): optional return location for an error
 *
 * Like as_publish_file(), with a chosen starting method so each fallback can be tested.
 *
 * Returns: (transfer full): the relative path actually used, or %NULL
 **/
gchar *
as_publish_file_with_method(int staging_dir_fd,
			    const gchar *staged_name,
			    int root_fd,
			    const gchar *rel_path,
			    gboolean overwrite,
			    AsPublishMethod method,
			    GError **error)
{
	return as_publish_file_full(staging_dir_fd, staged_name, root_fd, rel_path, overwrite,
				    method, NULL, error);
}

/**
 * as_publish_file_full:
 * @dir_fd_out: (out) (optional): where to hand over the destination directory instead of
 *   syncing it; the caller then syncs it (once for many files) with as_publish_fsync_dir()
 *   and closes it. Set only on success.
 *
 * as_publish_file_with_method(), optionally leaving the directory sync to the caller.
 **/
gchar *
as_publish_file_full(int staging_dir_fd,
		     const gchar *staged_name,
		     int root_fd,
		     const gchar *rel_path,
		     gboolean overwrite,
		     AsPublishMethod method,
		     int *dir_fd_out,
		     GError **error)
{
	g_autofree gchar *sanitized = NULL;
	g_autofree gchar *dirname = NULL;
	g_autofree gchar *basename = NULL;
	g_autofree gchar *name = NULL;
	g_autoptr(GError) error_local = NULL;
	int dir_fd;

	g_return_val_if_fail(staging_dir_fd >= 0, NULL);
	g_return_val_if_fail(staged_name != NULL, NULL);
	g_return_val_if_fail(root_fd >= 0, NULL);
	g_return_val_if_fail(rel_path != NULL, NULL);
	g_return_val_if_fail(method <= AS_PUBLISH_METHOD_PLACEHOLDER, NULL);
	g_return_val_if_fail(error == NULL || *error == NULL, NULL);

	/* cheap, and keeps a caller bug from turning into an escape */
	sanitized = as_path_sanitize(rel_path, error);
	if (sanitized == NULL) {
		g_prefix_error_literal(error, "invalid destination: ");
		return NULL;
	}
	dirname = as_path_dirname(sanitized);
	basename = as_path_basename(sanitized);
	dir_fd = as_path_open_dir(root_fd, dirname, TRUE, error);
	if (dir_fd < 0) {
		g_prefix_error(error, "failed to open destination directory '%s': ", dirname);
		return NULL;
	}

	if (overwrite) {
		if (!as_publish_replace(staging_dir_fd, staged_name, dir_fd, basename, error)) {
			close(dir_fd);
			return NULL;
		}
		name = g_strdup(basename);
	} else {
		for (guint n = 0; n <= AS_PUBLISH_SUFFIX_MAX && name == NULL; n++) {
			g_autofree gchar *candidate = as_publish_candidate_name(basename, n);
			AsPublishResult rc = as_publish_try_noclobber(
				staging_dir_fd, staged_name, dir_fd, candidate, &method, error);
			if (rc == AS_PUBLISH_RESULT_FAILED) {
				close(dir_fd);
				return NULL;
			}
			if (rc == AS_PUBLISH_RESULT_PUBLISHED)
				name = g_steal_pointer(&candidate);
		}
		if (name == NULL) {
			g_set_error(error, AS_ERROR, AS_ERROR_CONFLICT,
				    "no free name for '%s' after %u attempts", sanitized,
				    (guint)AS_PUBLISH_SUFFIX_MAX + 1);
			close(dir_fd);
			return NULL;
		}
	}

	/*
	 * The file is at its final name now, so a failed sync must not fail the publish.
	 *
	 * One directory fsync per file stays: it is what makes the answer "saved" durable, and
	 * this function cannot know whether more files follow. It is also the largest cost of
	 * many small files: 1000 x 64 KiB daemon to daemon took 3.5-3.7 s with it and 1.1-1.7 s
	 * without it while the bench machine's disk was busy. Callers that publish many files
	 * per request (/upload/batch) instead stage them all, make the data durable once
	 * (syncfs() of the staging folder), rename them all and sync each directory once before
	 * the reply. The data must be durable before the rename; chunked tasks sync it in
	 * as_chunk_task_complete_async(). AsPublishBatch does that for /upload/batch.
	 */
	if (dir_fd_out != NULL) {
		*dir_fd_out = dir_fd;
	} else {
		if (!as_publish_fsync_dir(dir_fd, &error_local))
			g_warning("published '%s' but %s", name, error_local->message);
		close(dir_fd);
	}

	if (dirname[0] == '\0')
		return g_steal_pointer(&name);
	return g_strdup_printf("%s/%s", dirname, name);
}

/**
 * as_publish_file:
 * @staging_dir_fd: the directory holding the staged file
 * @staged_name: the staged file name in @staging_dir_fd
 * @root_fd: the receive directory, on the same filesystem
 * @rel_path: the sanitised destination below @root_fd
 * @overwrite: whether an existing file at @rel_path may be replaced
 * @error: (nullable): optional return location for an error
 *
 * Moves a verified staged file to its final name in one atomic step, creating parent
 * directories without following symlinks. Without @overwrite nothing is ever clobbered: a
 * taken name becomes "stem_1.ext", "stem_2.ext"... up to %AS_PUBLISH_SUFFIX_MAX. With
 * @overwrite a file or symlink is replaced atomically, a directory never.
 * On failure nothing is left at the final name.
 *
 * Returns: (transfer full): the relative path actually used, e.g. "dir/a_1.txt", or %NULL
 **/
gchar *
as_publish_file(int staging_dir_fd,
		const gchar *staged_name,
		int root_fd,
		const gchar *rel_path,
		gboolean overwrite,
		GError **error)
{
	return as_publish_file_with_method(staging_dir_fd, staged_name, root_fd, rel_path,
					   overwrite, AS_PUBLISH_METHOD_RENAME_NOREPLACE, error);
}
