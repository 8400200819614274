/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "AsDiskUsage"

#include "config.h"

#include <errno.h>
#include <sys/statvfs.h>

#include "as-disk-usage.h"
#include "as-error.h"

static void
as_disk_usage_from_statvfs(const struct statvfs *st, guint64 *free_bytes, guint64 *total_bytes)
{
	/* f_bavail, not f_bfree: blocks reserved for root are not ours to fill */
	if (free_bytes != NULL)
		*free_bytes = (guint64)st->f_bavail * (guint64)st->f_frsize;
	if (total_bytes != NULL)
		*total_bytes = (guint64)st->f_blocks * (guint64)st->f_frsize;
}

/**
 * as_disk_usage_get:
 * @path: a directory, normally the receive dir (not the working directory, as 0.x did)
 * @free_bytes: (out) (optional): space available to unprivileged users
 * @total_bytes: (out) (optional): size of the filesystem
 * @error: (nullable): optional return location for an error
 *
 * Returns: %TRUE on success
 **/
gboolean
as_disk_usage_get(const gchar *path, guint64 *free_bytes, guint64 *total_bytes, GError **error)
{
	struct statvfs st;

	g_return_val_if_fail(path != NULL, FALSE);
	g_return_val_if_fail(error == NULL || *error == NULL, FALSE);

	if (statvfs(path, &st) < 0) {
		int errsv = errno;
		g_set_error(error, AS_ERROR, errsv == ENOENT ? AS_ERROR_NOT_FOUND : AS_ERROR_IO,
			    "failed to get disk usage of '%s': %s", path, g_strerror(errsv));
		return FALSE;
	}
	as_disk_usage_from_statvfs(&st, free_bytes, total_bytes);
	return TRUE;
}

/**
 * as_disk_usage_get_fd:
 * @fd: an open file or directory on the filesystem of interest
 * @free_bytes: (out) (optional): space available to unprivileged users
 * @total_bytes: (out) (optional): size of the filesystem
 * @error: (nullable): optional return location for an error
 *
 * Like as_disk_usage_get() for an already open receive dir.
 *
 * Returns: %TRUE on success
 **/
gboolean
as_disk_usage_get_fd(int fd, guint64 *free_bytes, guint64 *total_bytes, GError **error)
{
	struct statvfs st;

	g_return_val_if_fail(fd >= 0, FALSE);
	g_return_val_if_fail(error == NULL || *error == NULL, FALSE);

	if (fstatvfs(fd, &st) < 0) {
		g_set_error(error, AS_ERROR, AS_ERROR_IO, "failed to get disk usage: %s",
			    g_strerror(errno));
		return FALSE;
	}
	as_disk_usage_from_statvfs(&st, free_bytes, total_bytes);
	return TRUE;
}
