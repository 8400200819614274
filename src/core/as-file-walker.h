/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* deepest directory nesting walked: each level holds one open directory */
#define AS_FILE_WALKER_MAX_DEPTH 256

/**
 * AsFileWalkerFlags:
 * @AS_FILE_WALKER_FLAG_NONE: only files may be named
 * @AS_FILE_WALKER_FLAG_RECURSIVE: directories are walked, as `scp -r` does
 *
 * How as_file_walker_new() treats the paths it is given.
 */
typedef enum {
	AS_FILE_WALKER_FLAG_NONE = 0,
	AS_FILE_WALKER_FLAG_RECURSIVE = 1 << 0,
} AsFileWalkerFlags;

/**
 * AsFileWalkerEntry:
 * @path: absolute path of the source file; for a symbolic link, the link itself
 * @name: relative destination name, '/'-separated, e.g. `photos/sub/b.jpg`
 * @size: size in bytes
 * @mtime_us: modification time in microseconds since the epoch
 *
 * One regular file found by as_file_walker_next().
 */
typedef struct {
	gchar *path;
	gchar *name;
	guint64 size;
	gint64 mtime_us;
} AsFileWalkerEntry;

void as_file_walker_entry_free(AsFileWalkerEntry *entry);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(AsFileWalkerEntry, as_file_walker_entry_free)

/**
 * AsFileWalkerErrorFunc:
 * @path: absolute path of the entry that was skipped
 * @name: its relative destination name
 * @error: why: %AS_ERROR_NOT_SUPPORTED for what is skipped by design (sockets, FIFOs,
 *   devices, symbolic links to directories, nesting deeper than %AS_FILE_WALKER_MAX_DEPTH),
 *   another #AsError code when it could not be read
 * @user_data: data given to as_file_walker_set_error_func()
 *
 * Receives each entry inside a walked directory that as_file_walker_next() skips.
 */
typedef void (*AsFileWalkerErrorFunc)(const gchar *path,
				      const gchar *name,
				      const GError *error,
				      gpointer user_data);

#define AS_TYPE_FILE_WALKER (as_file_walker_get_type())
G_DECLARE_FINAL_TYPE(AsFileWalker, as_file_walker, AS, FILE_WALKER, GObject)

AsFileWalker *
as_file_walker_new(const gchar *const *paths, AsFileWalkerFlags flags, GError **error);
void as_file_walker_set_error_func(AsFileWalker *self,
				   AsFileWalkerErrorFunc func,
				   gpointer user_data,
				   GDestroyNotify destroy);
gboolean as_file_walker_next(AsFileWalker *self,
			     AsFileWalkerEntry **entry,
			     GCancellable *cancellable,
			     GError **error);
guint64 as_file_walker_get_n_skipped(AsFileWalker *self);

G_END_DECLS
