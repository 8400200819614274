/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "AsFileWalker"

#include "config.h"

#include "as-error.h"
#include "as-file-walker.h"

/* everything a decision about one entry needs */
#define AS_FILE_WALKER_ATTRIBUTES                                                                  \
	G_FILE_ATTRIBUTE_STANDARD_NAME                                                             \
	"," G_FILE_ATTRIBUTE_STANDARD_TYPE "," G_FILE_ATTRIBUTE_STANDARD_SIZE                      \
	"," G_FILE_ATTRIBUTE_TIME_MODIFIED "," G_FILE_ATTRIBUTE_TIME_MODIFIED_USEC                 \
	"," G_FILE_ATTRIBUTE_ACCESS_CAN_READ "," G_FILE_ATTRIBUTE_ACCESS_CAN_EXECUTE

/* one path named by the caller, checked by as_file_walker_new() */
typedef struct {
	GFile *file;	 /* owned */
	GFileInfo *info; /* owned, symbolic links followed */
	gchar *name;	 /* owned, relative destination name */
} AsFileWalkerRoot;

/* one open directory on the walk stack */
typedef struct {
	GFile *dir;		     /* owned */
	GFileEnumerator *enumerator; /* owned */
	gchar *name;		     /* owned, relative destination name of the directory */
} AsFileWalkerFrame;

struct _AsFileWalker {
	GObject parent_instance;
	GPtrArray *roots; /* (element-type AsFileWalkerRoot) */
	guint next_root;
	GPtrArray *stack; /* (element-type AsFileWalkerFrame) */
	AsFileWalkerErrorFunc error_func;
	gpointer error_data;
	GDestroyNotify error_destroy;
	guint64 n_skipped;
};

G_DEFINE_TYPE(AsFileWalker, as_file_walker, G_TYPE_OBJECT)

/**
 * as_file_walker_entry_free:
 * @entry: (nullable): a #AsFileWalkerEntry
 *
 * Frees an entry returned by as_file_walker_next().
 **/
void
as_file_walker_entry_free(AsFileWalkerEntry *entry)
{
	if (entry == NULL)
		return;
	g_free(entry->path);
	g_free(entry->name);
	g_free(entry);
}

static void
as_file_walker_root_free(AsFileWalkerRoot *root)
{
	g_object_unref(root->file);
	g_object_unref(root->info);
	g_free(root->name);
	g_free(root);
}

static void
as_file_walker_frame_free(AsFileWalkerFrame *frame)
{
	/* closing only releases the directory fd; it cannot fail in a way worth reporting */
	(void)g_file_enumerator_close(frame->enumerator, NULL, NULL);
	g_object_unref(frame->enumerator);
	g_object_unref(frame->dir);
	g_free(frame->name);
	g_free(frame);
}

static AsFileWalkerEntry *
as_file_walker_entry_new(GFile *file, GFileInfo *info, const gchar *name)
{
	AsFileWalkerEntry *entry = g_new0(AsFileWalkerEntry, 1);

	entry->path = g_file_get_path(file);
	entry->name = g_strdup(name);
	entry->size = (guint64)MAX(g_file_info_get_size(info), 0);
	entry->mtime_us =
		(gint64)g_file_info_get_attribute_uint64(info, G_FILE_ATTRIBUTE_TIME_MODIFIED) *
			G_USEC_PER_SEC +
		g_file_info_get_attribute_uint32(info, G_FILE_ATTRIBUTE_TIME_MODIFIED_USEC);
	return entry;
}

static gboolean
as_file_walker_can_read(GFileInfo *info)
{
	/* a file system that does not say is trusted: opening the file tells later */
	if (!g_file_info_has_attribute(info, G_FILE_ATTRIBUTE_ACCESS_CAN_READ))
		return TRUE;
	return g_file_info_get_attribute_boolean(info, G_FILE_ATTRIBUTE_ACCESS_CAN_READ);
}

static void
as_file_walker_skip(AsFileWalker *self, GFile *file, const gchar *name, GError *error)
{
	g_autofree gchar *path = g_file_get_path(file);

	self->n_skipped++;
	as_error_convert(&error);
	g_debug("skipping %s: %s", path, error->message);
	if (self->error_func != NULL)
		self->error_func(path, name, error, self->error_data);
	g_error_free(error);
}

/* opens a directory and pushes it on the stack; problems are reported, not fatal */
static gboolean
as_file_walker_push(AsFileWalker *self,
		    GFile *dir,
		    const gchar *name,
		    GCancellable *cancellable,
		    GError **error)
{
	g_autoptr(GFileEnumerator) enumerator = NULL;
	GError *error_local = NULL;
	AsFileWalkerFrame *frame;

	if (self->stack->len >= AS_FILE_WALKER_MAX_DEPTH) {
		as_file_walker_skip(self, dir, name,
				    g_error_new(AS_ERROR, AS_ERROR_NOT_SUPPORTED,
						"%s: directories nested deeper than %u levels are "
						"not sent",
						name, (guint)AS_FILE_WALKER_MAX_DEPTH));
		return TRUE;
	}
	enumerator = g_file_enumerate_children(dir, AS_FILE_WALKER_ATTRIBUTES,
					       G_FILE_QUERY_INFO_NOFOLLOW_SYMLINKS, cancellable,
					       &error_local);
	if (enumerator == NULL) {
		if (g_error_matches(error_local, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
			g_propagate_error(error, error_local);
			return FALSE;
		}
		as_file_walker_skip(self, dir, name, error_local);
		return TRUE;
	}
	frame = g_new0(AsFileWalkerFrame, 1);
	frame->dir = g_object_ref(dir);
	frame->enumerator = g_steal_pointer(&enumerator);
	frame->name = g_strdup(name);
	g_ptr_array_add(self->stack, frame);
	return TRUE;
}

/* decides about one directory entry: returns an entry to yield, or NULL having pushed,
 * skipped or reported it */
static AsFileWalkerEntry *
as_file_walker_visit(AsFileWalker *self,
		     AsFileWalkerFrame *frame,
		     GFileInfo *info,
		     GCancellable *cancellable,
		     GError **error)
{
	g_autoptr(GFile) child = g_file_enumerator_get_child(frame->enumerator, info);
	g_autofree gchar *name = g_strdup_printf("%s/%s", frame->name, g_file_info_get_name(info));
	g_autoptr(GFileInfo) target = NULL;
	GError *error_local = NULL;

	switch (g_file_info_get_file_type(info)) {
	case G_FILE_TYPE_DIRECTORY:
		/* only cancellation fails the push, and it comes back through @error */
		(void)as_file_walker_push(self, child, name, cancellable, error);
		return NULL;
	case G_FILE_TYPE_REGULAR:
		if (!as_file_walker_can_read(info)) {
			as_file_walker_skip(self, child, name,
					    g_error_new(AS_ERROR, AS_ERROR_PERMISSION_DENIED,
							"%s: permission denied", name));
			return NULL;
		}
		return as_file_walker_entry_new(child, info, name);
	case G_FILE_TYPE_SYMBOLIC_LINK:
		/* links to files are sent as the content they point to; links to directories
		 * are never followed, so the walk cannot loop or leave the tree */
		target = g_file_query_info(child, AS_FILE_WALKER_ATTRIBUTES, G_FILE_QUERY_INFO_NONE,
					   cancellable, &error_local);
		if (target == NULL) {
			if (g_error_matches(error_local, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
				g_propagate_error(error, error_local);
				return NULL;
			}
			g_prefix_error(&error_local, "%s: broken symbolic link: ", name);
			as_file_walker_skip(self, child, name, error_local);
			return NULL;
		}
		/* GIO describes a dangling link as the link itself rather than failing */
		if (g_file_info_get_file_type(target) == G_FILE_TYPE_SYMBOLIC_LINK) {
			as_file_walker_skip(self, child, name,
					    g_error_new(AS_ERROR, AS_ERROR_NOT_FOUND,
							"%s: broken symbolic link", name));
			return NULL;
		}
		if (g_file_info_get_file_type(target) == G_FILE_TYPE_DIRECTORY) {
			as_file_walker_skip(self, child, name,
					    g_error_new(AS_ERROR, AS_ERROR_NOT_SUPPORTED,
							"%s: symbolic link to a directory, not "
							"followed",
							name));
			return NULL;
		}
		if (g_file_info_get_file_type(target) != G_FILE_TYPE_REGULAR) {
			as_file_walker_skip(self, child, name,
					    g_error_new(AS_ERROR, AS_ERROR_NOT_SUPPORTED,
							"%s: symbolic link to a special file, not "
							"sent",
							name));
			return NULL;
		}
		if (!as_file_walker_can_read(target)) {
			as_file_walker_skip(self, child, name,
					    g_error_new(AS_ERROR, AS_ERROR_PERMISSION_DENIED,
							"%s: permission denied", name));
			return NULL;
		}
		return as_file_walker_entry_new(child, target, name);
	case G_FILE_TYPE_SPECIAL:
	default:
		as_file_walker_skip(self, child, name,
				    g_error_new(AS_ERROR, AS_ERROR_NOT_SUPPORTED,
						"%s: not a regular file (socket, FIFO or device), "
						"not sent",
						name));
		return NULL;
	}
}

/**
 * as_file_walker_next:
 * @self: a #AsFileWalker
 * @entry: (out) (transfer full) (nullable): the next file, or %NULL when the walk is over
 * @cancellable: (nullable): a #GCancellable
 * @error: (nullable): optional return location for an error
 *
 * Finds the next regular file. Files named directly come as their base name; files inside a
 * directory named with %AS_FILE_WALKER_FLAG_RECURSIVE come as that directory's base name and
 * their path below it (`photos/sub/b.jpg`), depth first, in directory order: the order is the
 * same on every walk of an unchanged tree. Directories themselves, empty ones included, are
 * not yielded. Entries that cannot be sent are reported to the #AsFileWalkerErrorFunc and
 * skipped. This does blocking I/O: run the walk in a worker thread.
 *
 * Returns: %FALSE only when cancelled (a %G_IO_ERROR_CANCELLED error); %TRUE otherwise,
 *   including at the end, where *@entry is %NULL
 **/
gboolean
as_file_walker_next(AsFileWalker *self,
		    AsFileWalkerEntry **entry,
		    GCancellable *cancellable,
		    GError **error)
{
	g_return_val_if_fail(AS_IS_FILE_WALKER(self), FALSE);
	g_return_val_if_fail(entry != NULL, FALSE);
	g_return_val_if_fail(cancellable == NULL || G_IS_CANCELLABLE(cancellable), FALSE);
	g_return_val_if_fail(error == NULL || *error == NULL, FALSE);

	*entry = NULL;
	while (TRUE) {
		AsFileWalkerFrame *frame;
		AsFileWalkerEntry *found;
		g_autoptr(GFileInfo) info = NULL;
		g_autoptr(GError) error_local = NULL;

		if (g_cancellable_set_error_if_cancelled(cancellable, error))
			return FALSE;

		/* the next top-level path */
		if (self->stack->len == 0) {
			AsFileWalkerRoot *root;

			if (self->next_root >= self->roots->len)
				return TRUE;
			root = g_ptr_array_index(self->roots, self->next_root++);
			if (g_file_info_get_file_type(root->info) != G_FILE_TYPE_DIRECTORY) {
				*entry = as_file_walker_entry_new(root->file, root->info,
								  root->name);
				return TRUE;
			}
			if (!as_file_walker_push(self, root->file, root->name, cancellable, error))
				return FALSE;
			continue;
		}

		/* the next entry of the innermost directory */
		frame = g_ptr_array_index(self->stack, self->stack->len - 1);
		info = g_file_enumerator_next_file(frame->enumerator, cancellable, &error_local);
		if (info == NULL) {
			if (g_error_matches(error_local, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
				g_propagate_error(error, g_steal_pointer(&error_local));
				return FALSE;
			}
			if (error_local != NULL) {
				g_prefix_error(&error_local, "%s: ", frame->name);
				as_file_walker_skip(self, frame->dir, frame->name,
						    g_steal_pointer(&error_local));
			}
			g_ptr_array_remove_index(self->stack, self->stack->len - 1);
			continue;
		}
		found = as_file_walker_visit(self, frame, info, cancellable, &error_local);
		if (error_local != NULL) {
			g_propagate_error(error, g_steal_pointer(&error_local));
			return FALSE;
		}
		if (found != NULL) {
			*entry = found;
			return TRUE;
		}
	}
}

/**
 * as_file_walker_set_error_func:
 * @self: a #AsFileWalker
 * @func: (nullable): called for each skipped entry
 * @user_data: data for @func
 * @destroy: (nullable): frees @user_data with the walker
 *
 * Sets where skipped entries are reported. They are counted either way.
 **/
void
as_file_walker_set_error_func(AsFileWalker *self,
			      AsFileWalkerErrorFunc func,
			      gpointer user_data,
			      GDestroyNotify destroy)
{
	g_return_if_fail(AS_IS_FILE_WALKER(self));

	if (self->error_destroy != NULL)
		self->error_destroy(self->error_data);
	self->error_func = func;
	self->error_data = user_data;
	self->error_destroy = destroy;
}

/**
 * as_file_walker_get_n_skipped:
 * @self: a #AsFileWalker
 *
 * Returns: the number of entries skipped so far
 **/
guint64
as_file_walker_get_n_skipped(AsFileWalker *self)
{
	g_return_val_if_fail(AS_IS_FILE_WALKER(self), 0);
	return self->n_skipped;
}

static void
as_file_walker_finalize(GObject *object)
{
	AsFileWalker *self = AS_FILE_WALKER(object);

	if (self->error_destroy != NULL)
		self->error_destroy(self->error_data);
	g_ptr_array_unref(self->stack);
	g_ptr_array_unref(self->roots);
	G_OBJECT_CLASS(as_file_walker_parent_class)->finalize(object);
}

static void
as_file_walker_class_init(AsFileWalkerClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);
	object_class->finalize = as_file_walker_finalize;
}

static void
as_file_walker_init(AsFileWalker *self)
{
	self->roots = g_ptr_array_new_with_free_func((GDestroyNotify)as_file_walker_root_free);
	self->stack = g_ptr_array_new_with_free_func((GDestroyNotify)as_file_walker_frame_free);
}

/* checks one top-level path; errors name it as the user typed it */
static AsFileWalkerRoot *
as_file_walker_root_new(const gchar *path, AsFileWalkerFlags flags, GError **error)
{
	g_autoptr(GFile) file = NULL;
	g_autoptr(GFileInfo) info = NULL;
	g_autofree gchar *name = NULL;
	AsFileWalkerRoot *root;

	if (path == NULL || path[0] == '\0') {
		g_set_error_literal(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT, "empty path");
		return NULL;
	}

	/* paths the user named are followed when they are symbolic links, as scp and cp -r do */
	file = g_file_new_for_path(path);
	info = g_file_query_info(file, AS_FILE_WALKER_ATTRIBUTES, G_FILE_QUERY_INFO_NONE, NULL,
				 error);
	if (info == NULL) {
		as_error_convert(error);
		if (error != NULL && (*error)->code == AS_ERROR_NOT_FOUND) {
			g_clear_error(error);
			g_set_error(error, AS_ERROR, AS_ERROR_NOT_FOUND,
				    "%s: no such file or directory", path);
		}
		return NULL;
	}
	name = g_file_get_basename(file);
	switch (g_file_info_get_file_type(info)) {
	case G_FILE_TYPE_REGULAR:
		if (!as_file_walker_can_read(info)) {
			g_set_error(error, AS_ERROR, AS_ERROR_PERMISSION_DENIED,
				    "%s: permission denied", path);
			return NULL;
		}
		break;
	case G_FILE_TYPE_DIRECTORY:
		if ((flags & AS_FILE_WALKER_FLAG_RECURSIVE) == 0) {
			g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
				    "%s is a directory (use -r)", path);
			return NULL;
		}
		/* the root has no name to put its files under */
		if (g_file_has_parent(file, NULL) == FALSE) {
			g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
				    "%s: cannot send the root directory", path);
			return NULL;
		}
		if (!as_file_walker_can_read(info) ||
		    (g_file_info_has_attribute(info, G_FILE_ATTRIBUTE_ACCESS_CAN_EXECUTE) &&
		     !g_file_info_get_attribute_boolean(info,
							G_FILE_ATTRIBUTE_ACCESS_CAN_EXECUTE))) {
			g_set_error(error, AS_ERROR, AS_ERROR_PERMISSION_DENIED,
				    "%s: permission denied", path);
			return NULL;
		}
		break;
	case G_FILE_TYPE_SYMBOLIC_LINK:
		g_set_error(error, AS_ERROR, AS_ERROR_NOT_FOUND, "%s: broken symbolic link", path);
		return NULL;
	default:
		g_set_error(error, AS_ERROR, AS_ERROR_NOT_SUPPORTED,
			    "%s is not a regular file or directory", path);
		return NULL;
	}

	root = g_new0(AsFileWalkerRoot, 1);
	root->file = g_steal_pointer(&file);
	root->info = g_steal_pointer(&info);
	root->name = g_steal_pointer(&name);
	return root;
}

/**
 * as_file_walker_new:
 * @paths: (array zero-terminated=1): the source paths; relative ones are taken from the
 *   current directory, so a daemon should be given absolute paths
 * @flags: #AsFileWalkerFlags
 * @error: (nullable): optional return location for an error
 *
 * Prepares a walk over @paths, checking each of them first so that a mistake in what the user
 * typed fails the whole request before anything is sent: a missing path, a directory without
 * %AS_FILE_WALKER_FLAG_RECURSIVE ("photos is a directory (use -r)"), something that is neither
 * a file nor a directory, or one that cannot be read. Symbolic links named here are followed;
 * inside directories, links to files are followed and links to directories are not. The tree
 * is never listed in memory: as_file_walker_next() reads directories as it goes.
 *
 * Returns: (transfer full): a new #AsFileWalker, or %NULL with an #AsError
 **/
AsFileWalker *
as_file_walker_new(const gchar *const *paths, AsFileWalkerFlags flags, GError **error)
{
	g_autoptr(AsFileWalker) self = NULL;

	g_return_val_if_fail(paths != NULL, NULL);
	g_return_val_if_fail(error == NULL || *error == NULL, NULL);

	if (paths[0] == NULL) {
		g_set_error_literal(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT, "no paths given");
		return NULL;
	}
	self = g_object_new(AS_TYPE_FILE_WALKER, NULL);
	for (guint i = 0; paths[i] != NULL; i++) {
		AsFileWalkerRoot *root = as_file_walker_root_new(paths[i], flags, error);
		if (root == NULL)
			return NULL;
		g_ptr_array_add(self->roots, root);
	}
	return g_steal_pointer(&self);
}
