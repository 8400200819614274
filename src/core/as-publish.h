/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* highest "_N" suffix tried before giving up on a free name */
#define AS_PUBLISH_SUFFIX_MAX 9999

/**
 * AsPublishMethod:
 * @AS_PUBLISH_METHOD_RENAME_NOREPLACE: renameat2(RENAME_NOREPLACE)
 * @AS_PUBLISH_METHOD_LINK: linkat() then unlinkat() of the staged name
 * @AS_PUBLISH_METHOD_PLACEHOLDER: reserve the name with O_CREAT|O_EXCL, then renameat() over it
 *
 * How a file is published without clobbering. Each method falls back to the next one
 * when the filesystem does not support it.
 */
typedef enum {
	AS_PUBLISH_METHOD_RENAME_NOREPLACE,
	AS_PUBLISH_METHOD_LINK,
	AS_PUBLISH_METHOD_PLACEHOLDER,
} AsPublishMethod;

gchar *as_publish_file(int staging_dir_fd,
		       const gchar *staged_name,
		       int root_fd,
		       const gchar *rel_path,
		       gboolean overwrite,
		       GError **error);
gchar *as_publish_file_with_method(int staging_dir_fd,
				   const gchar *staged_name,
				   int root_fd,
				   const gchar *rel_path,
				   gboolean overwrite,
				   AsPublishMethod method,
				   GError **error);
gchar *as_publish_file_full(int staging_dir_fd,
			    const gchar *staged_name,
			    int root_fd,
			    const gchar *rel_path,
			    gboolean overwrite,
			    AsPublishMethod method,
			    int *dir_fd_out,
			    GError **error);
gchar *as_publish_candidate_name(const gchar *basename, guint n);
gboolean as_publish_fsync_dir(int dir_fd, GError **error);

G_END_DECLS
