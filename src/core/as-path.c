/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "AsPath"

#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "as-error.h"
#include "as-path.h"

/* mode of directories created for a sender-supplied path */
#define AS_PATH_DIR_MODE 0755

/* report an errno in the AS_ERROR domain, with the usual GIO mapping (ENOSPC, EACCES...) */
static void
as_path_set_error_errno(GError **error, int errsv, const gchar *what, const gchar *name)
{
	g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errsv), "failed to %s '%s': %s", what,
		    name, g_strerror(errsv));
	as_error_convert(error);
}

/**
 * as_path_segment_is_reserved:
 * @segment: one path segment
 *
 * Checks whether a top-level segment names the staging folder. The comparison also covers
 * the ways case-folding filesystems (vfat, exfat, ext4 casefold) alias a name: any case,
 * compatibility forms such as U+017F LATIN SMALL LETTER LONG S, and the trailing dots and
 * spaces that vfat strips.
 *
 * Returns: %TRUE if @segment must not be used at the top of the receive dir
 **/
gboolean
as_path_segment_is_reserved(const gchar *segment)
{
	g_autofree gchar *normalized = NULL;
	g_autofree gchar *folded = NULL;
	gsize len;

	g_return_val_if_fail(segment != NULL, FALSE);

	/* cheap ASCII check first, the unicode folding below catches the rest */
	if (g_ascii_strncasecmp(segment, AS_STAGING_DIR_NAME, strlen(AS_STAGING_DIR_NAME)) == 0) {
		const gchar *tail = segment + strlen(AS_STAGING_DIR_NAME);
		while (*tail == '.' || *tail == ' ')
			tail++;
		if (*tail == '\0')
			return TRUE;
	}
	if (!g_utf8_validate(segment, -1, NULL))
		return FALSE;
	normalized = g_utf8_normalize(segment, -1, G_NORMALIZE_NFKD);
	if (normalized == NULL)
		return FALSE;
	folded = g_utf8_casefold(normalized, -1);
	len = strlen(folded);
	while (len > 0 && (folded[len - 1] == '.' || folded[len - 1] == ' '))
		len--;
	folded[len] = '\0';
	return g_strcmp0(folded, AS_STAGING_DIR_NAME) == 0;
}

/**
 * as_path_sanitize:
 * @raw: (nullable): a sender-supplied relative path, already percent-decoded
 * @error: (nullable): optional return location for an error
 *
 * Validates a sender-supplied path so that it stays below the receive dir and outside the
 * staging folder, and normalises it: empty and "." segments are dropped. Names are kept
 * byte for byte otherwise (unicode, spaces, '#', '?', '+', '\').
 *
 * Returns: (transfer full): a '/'-separated relative path ending in a file name, or %NULL
 * with %AS_ERROR_INVALID_ARGUMENT
 **/
gchar *
as_path_sanitize(const gchar *raw, GError **error)
{
	g_autoptr(GString) result = NULL;
	gsize last_len = 0;
	gboolean last_is_dot = FALSE;

	g_return_val_if_fail(error == NULL || *error == NULL, NULL);

	if (raw == NULL || raw[0] == '\0') {
		g_set_error_literal(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT, "path is empty");
		return NULL;
	}
	if (!g_utf8_validate(raw, -1, NULL)) {
		g_set_error_literal(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
				    "path is not valid UTF-8");
		return NULL;
	}
	for (const gchar *p = raw; *p != '\0'; p++) {
		guchar c = (guchar)*p;
		if (c < 0x20 || c == 0x7f) {
			g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
				    "path contains control character 0x%02x", c);
			return NULL;
		}
	}
	if (raw[0] == '/') {
		g_set_error_literal(
			error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
			"path is absolute: it must be relative to the receive directory");
		return NULL;
	}

	/* walk the segments in place: a hostile "////..." must not cost an allocation each */
	result = g_string_new(NULL);
	for (const gchar *seg = raw;; seg++) {
		const gchar *end = strchrnul(seg, '/');
		gsize seglen = (gsize)(end - seg);

		last_len = seglen;
		last_is_dot = seglen == 1 && seg[0] == '.';
		if (seglen == 0 || last_is_dot) {
			if (*end == '\0')
				break;
			seg = end;
			continue;
		}
		if (seglen == 2 && seg[0] == '.' && seg[1] == '.') {
			g_set_error_literal(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
					    "path escapes the receive directory: '..' segment");
			return NULL;
		}
		if (seglen > AS_PATH_SEGMENT_MAX) {
			g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
				    "path segment is %" G_GSIZE_FORMAT " bytes, the limit is %u",
				    seglen, (guint)AS_PATH_SEGMENT_MAX);
			return NULL;
		}
		if (result->len == 0) {
			g_autofree gchar *first = g_strndup(seg, seglen);
			if (as_path_segment_is_reserved(first)) {
				g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
					    "path is inside the reserved folder '%s'",
					    AS_STAGING_DIR_NAME);
				return NULL;
			}
		} else {
			g_string_append_c(result, '/');
		}
		g_string_append_len(result, seg, (gssize)seglen);
		if (result->len > AS_PATH_TOTAL_MAX) {
			g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
				    "path is longer than %u bytes", (guint)AS_PATH_TOTAL_MAX);
			return NULL;
		}
		if (*end == '\0')
			break;
		seg = end;
	}

	/* the last segment must be a name: "dir/" and "dir/." denote directories */
	if (last_len == 0 || last_is_dot || result->len == 0) {
		g_set_error_literal(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
				    "path does not end in a file name");
		return NULL;
	}
	return g_string_free(g_steal_pointer(&result), FALSE);
}

/**
 * as_path_basename_only:
 * @raw: (nullable): a file name from a multipart part, possibly with a client-side path
 *
 * Keeps only the last segment after '/' or '\' (browsers on Windows send full paths), and
 * checks it like as_path_sanitize().
 *
 * Returns: (transfer full): a single safe file name, or %NULL if nothing usable remains
 **/
gchar *
as_path_basename_only(const gchar *raw)
{
	const gchar *tail;
	g_autoptr(GError) error_local = NULL;
	gchar *result;

	if (raw == NULL)
		return NULL;
	tail = raw;
	for (const gchar *p = raw; *p != '\0'; p++) {
		if (*p == '/' || *p == '\\')
			tail = p + 1;
	}
	result = as_path_sanitize(tail, &error_local);
	if (result == NULL) {
		g_debug("ignoring unusable part file name: %s", error_local->message);
		return NULL;
	}
	return result;
}

/* opens one component of a directory chain, refusing symlinks */
static int
as_path_open_component(int parent_fd, const gchar *name, gboolean create, GError **error)
{
	const int flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
	int fd;

	for (;;) {
		int errsv;
		struct stat st;

		fd = openat(parent_fd, name, flags);
		if (fd >= 0)
			return fd;
		errsv = errno;
		if (errsv == EINTR)
			continue;
		if (errsv == ENOENT && create) {
			/* another receiver may create it at the same time, which is fine */
			if (mkdirat(parent_fd, name, AS_PATH_DIR_MODE) < 0 && errno != EEXIST) {
				as_path_set_error_errno(error, errno, "create directory", name);
				return -1;
			}
			create = FALSE;
			continue;
		}

		/* O_NOFOLLOW|O_DIRECTORY reports a symlink as ELOOP or ENOTDIR: look closer */
		if ((errsv == ELOOP || errsv == ENOTDIR) &&
		    fstatat(parent_fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
			if (S_ISLNK(st.st_mode)) {
				g_set_error(error, AS_ERROR, AS_ERROR_PERMISSION_DENIED,
					    "symlink in path: '%s'", name);
				return -1;
			}
			if (!S_ISDIR(st.st_mode)) {
				g_set_error(error, AS_ERROR, AS_ERROR_CONFLICT,
					    "'%s' exists and is not a directory", name);
				return -1;
			}
		}
		as_path_set_error_errno(error, errsv, "open directory", name);
		return -1;
	}
}

/**
 * as_path_open_dir:
 * @root_fd: a directory file descriptor, usually the receive dir
 * @rel_dir: (nullable): a sanitised relative directory, or "" or %NULL for @root_fd itself
 * @create: whether to create missing components (mode 0755)
 * @error: (nullable): optional return location for an error
 *
 * Opens a directory below @root_fd one component at a time with O_NOFOLLOW, so neither a
 * symlink planted by a sender nor a '..' can lead outside @root_fd.
 *
 * Returns: a directory file descriptor the caller closes, or -1 with @error set;
 * %AS_ERROR_PERMISSION_DENIED if a component is a symlink
 **/
int
as_path_open_dir(int root_fd, const gchar *rel_dir, gboolean create, GError **error)
{
	g_auto(GStrv) segments = NULL;
	int cur_fd;

	g_return_val_if_fail(root_fd >= 0, -1);
	g_return_val_if_fail(error == NULL || *error == NULL, -1);

	cur_fd = fcntl(root_fd, F_DUPFD_CLOEXEC, 3);
	if (cur_fd < 0) {
		as_path_set_error_errno(error, errno, "duplicate", "receive directory");
		return -1;
	}
	if (rel_dir == NULL || rel_dir[0] == '\0')
		return cur_fd;

	segments = g_strsplit(rel_dir, "/", -1);
	for (guint i = 0; segments[i] != NULL; i++) {
		const gchar *seg = segments[i];
		int next_fd;

		if (seg[0] == '\0' || g_strcmp0(seg, ".") == 0)
			continue;
		if (g_strcmp0(seg, "..") == 0) {
			g_set_error_literal(error, AS_ERROR, AS_ERROR_PERMISSION_DENIED,
					    "path escapes the receive directory: '..' segment");
			close(cur_fd);
			return -1;
		}
		next_fd = as_path_open_component(cur_fd, seg, create, error);
		close(cur_fd);
		if (next_fd < 0)
			return -1;
		cur_fd = next_fd;
	}
	return cur_fd;
}

/**
 * as_path_dirname:
 * @rel: a sanitised relative path
 *
 * Returns: (transfer full): everything before the last '/', or "" for a bare name
 **/
gchar *
as_path_dirname(const gchar *rel)
{
	const gchar *slash;

	g_return_val_if_fail(rel != NULL, NULL);

	slash = strrchr(rel, '/');
	if (slash == NULL)
		return g_strdup("");
	return g_strndup(rel, (gsize)(slash - rel));
}

/**
 * as_path_basename:
 * @rel: a sanitised relative path
 *
 * Returns: (transfer full): the part after the last '/'
 **/
gchar *
as_path_basename(const gchar *rel)
{
	const gchar *slash;

	g_return_val_if_fail(rel != NULL, NULL);

	slash = strrchr(rel, '/');
	return g_strdup(slash != NULL ? slash + 1 : rel);
}
