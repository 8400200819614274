/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "AsTokenStoreFile"

#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <glib/gstdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "as-error.h"
#include "as-token-store-file.h"

#define AS_TOKEN_STORE_FILE_MODE     0600
#define AS_TOKEN_STORE_FILE_DIR_MODE 0700
/* group and other permission bits, which a file of hashes must not have */
#define AS_TOKEN_STORE_FILE_MODE_LOOSE 0077
#define AS_TOKEN_STORE_FILE_READ_SIZE  4096

#define AS_TOKEN_STORE_FILE_KEY_HASH	"hash"
#define AS_TOKEN_STORE_FILE_KEY_LABEL	"label"
#define AS_TOKEN_STORE_FILE_KEY_CREATED "created"
#define AS_TOKEN_STORE_FILE_KEY_EXPIRES "expires"
#define AS_TOKEN_STORE_FILE_KEY_REVOKED "revoked"

struct _AsTokenStoreFile {
	AsTokenStore parent_instance;
	gchar *path; /* owned */
};

G_DEFINE_TYPE(AsTokenStoreFile, as_token_store_file, AS_TYPE_TOKEN_STORE)

static void
as_token_store_file_set_errno(GError **error, int errsv, const gchar *action, const gchar *path)
{
	g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errsv), "failed to %s %s: %s", action,
		    path, g_strerror(errsv));
	as_error_convert(error);
}

/* reads at most AS_TOKEN_STORE_FILE_MAX_SIZE bytes of an open fd */
static GString *
as_token_store_file_read_fd(AsTokenStoreFile *self, int fd, GError **error)
{
	g_autoptr(GString) data = g_string_new(NULL);
	gchar buf[AS_TOKEN_STORE_FILE_READ_SIZE];

	for (;;) {
		gssize n = read(fd, buf, sizeof(buf));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			as_token_store_file_set_errno(error, errno, "read", self->path);
			return NULL;
		}
		if (n == 0)
			break;
		if (data->len + (gsize)n > AS_TOKEN_STORE_FILE_MAX_SIZE) {
			g_set_error(error, AS_ERROR, AS_ERROR_TOO_LARGE,
				    "%s is larger than %u bytes", self->path,
				    (guint)AS_TOKEN_STORE_FILE_MAX_SIZE);
			return NULL;
		}
		g_string_append_len(data, buf, n);
	}
	return g_steal_pointer(&data);
}

/* the current file as a key file; a missing file is an empty one */
static GKeyFile *
as_token_store_file_read(AsTokenStoreFile *self, GError **error)
{
	g_autoptr(GKeyFile) kf = g_key_file_new();
	g_autoptr(GString) data = NULL;
	struct stat st = {0};
	int fd;

	fd = g_open(self->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW, 0);
	if (fd < 0) {
		if (errno == ENOENT)
			return g_steal_pointer(&kf);
		if (errno == ELOOP) {
			g_set_error(error, AS_ERROR, AS_ERROR_IO,
				    "%s is a symbolic link, the tokens file must be a regular file",
				    self->path);
			return NULL;
		}
		as_token_store_file_set_errno(error, errno, "open", self->path);
		return NULL;
	}
	if (fstat(fd, &st) != 0) {
		as_token_store_file_set_errno(error, errno, "stat", self->path);
		g_close(fd, NULL);
		return NULL;
	}
	if (!S_ISREG(st.st_mode)) {
		g_set_error(error, AS_ERROR, AS_ERROR_IO, "%s is not a regular file", self->path);
		g_close(fd, NULL);
		return NULL;
	}
	if ((st.st_mode & AS_TOKEN_STORE_FILE_MODE_LOOSE) != 0) {
		if (fchmod(fd, AS_TOKEN_STORE_FILE_MODE) != 0) {
			as_token_store_file_set_errno(error, errno, "chmod", self->path);
			g_close(fd, NULL);
			return NULL;
		}
		g_warning("%s was accessible to other users (mode %04o), changed to %04o",
			  self->path, (guint)(st.st_mode & 07777), (guint)AS_TOKEN_STORE_FILE_MODE);
	}
	data = as_token_store_file_read_fd(self, fd, error);
	g_close(fd, NULL);
	if (data == NULL)
		return NULL;
	if (!g_key_file_load_from_data(kf, data->str, data->len, G_KEY_FILE_KEEP_COMMENTS, error)) {
		as_error_convert(error);
		g_prefix_error(error, "failed to parse %s: ", self->path);
		return NULL;
	}
	return g_steal_pointer(&kf);
}

static AsTokenInfo *
as_token_store_file_parse_group(GKeyFile *kf, const gchar *group, GError **error)
{
	g_autoptr(AsTokenInfo) info = as_token_info_new();
	g_autoptr(GError) error_local = NULL;

	if (!as_token_id_is_valid(group)) {
		g_set_error_literal(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT, "invalid token id");
		return NULL;
	}
	info->id = g_strdup(group);
	info->hash = g_key_file_get_string(kf, group, AS_TOKEN_STORE_FILE_KEY_HASH, error);
	if (info->hash == NULL)
		return NULL;
	if (!as_token_hash_is_valid(info->hash)) {
		g_set_error_literal(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT, "invalid hash");
		return NULL;
	}
	info->label = g_key_file_get_string(kf, group, AS_TOKEN_STORE_FILE_KEY_LABEL, &error_local);
	if (info->label == NULL &&
	    !g_error_matches(error_local, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_KEY_NOT_FOUND)) {
		g_propagate_error(error, g_steal_pointer(&error_local));
		return NULL;
	}
	g_clear_error(&error_local);

	/* every other key is required: an entry we cannot read must not become valid */
	info->created =
		g_key_file_get_int64(kf, group, AS_TOKEN_STORE_FILE_KEY_CREATED, &error_local);
	if (error_local != NULL) {
		g_propagate_error(error, g_steal_pointer(&error_local));
		return NULL;
	}
	info->expires =
		g_key_file_get_int64(kf, group, AS_TOKEN_STORE_FILE_KEY_EXPIRES, &error_local);
	if (error_local != NULL) {
		g_propagate_error(error, g_steal_pointer(&error_local));
		return NULL;
	}
	if (info->created < 0 || info->expires < 0) {
		g_set_error_literal(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT, "negative time");
		return NULL;
	}
	info->revoked =
		g_key_file_get_boolean(kf, group, AS_TOKEN_STORE_FILE_KEY_REVOKED, &error_local);
	if (error_local != NULL) {
		g_propagate_error(error, g_steal_pointer(&error_local));
		return NULL;
	}
	return g_steal_pointer(&info);
}

static gboolean
as_token_store_file_load(AsTokenStore *store, GPtrArray *infos_out, GError **error)
{
	AsTokenStoreFile *self = AS_TOKEN_STORE_FILE(store);
	g_autoptr(GKeyFile) kf = NULL;
	g_auto(GStrv) groups = NULL;

	kf = as_token_store_file_read(self, error);
	if (kf == NULL)
		return FALSE;
	groups = g_key_file_get_groups(kf, NULL);
	for (guint i = 0; groups[i] != NULL; i++) {
		g_autoptr(GError) error_local = NULL;
		AsTokenInfo *info = as_token_store_file_parse_group(kf, groups[i], &error_local);

		/* rejected rather than trusted; the group name is an id, never a token */
		if (info == NULL) {
			g_warning("ignoring entry [%s] of %s: %s", groups[i], self->path,
				  error_local->message);
			continue;
		}
		g_ptr_array_add(infos_out, info);
	}
	return TRUE;
}

static gboolean
as_token_store_file_save(AsTokenStore *store, const AsTokenInfo *info, GError **error)
{
	AsTokenStoreFile *self = AS_TOKEN_STORE_FILE(store);
	g_autoptr(GKeyFile) kf = NULL;
	g_autofree gchar *data = NULL;
	g_autofree gchar *dirname = NULL;
	gsize len = 0;

	/* merge with what is on disk so no entry is lost, whatever was loaded before */
	kf = as_token_store_file_read(self, error);
	if (kf == NULL)
		return FALSE;
	g_key_file_set_string(kf, info->id, AS_TOKEN_STORE_FILE_KEY_HASH, info->hash);
	if (info->label != NULL)
		g_key_file_set_string(kf, info->id, AS_TOKEN_STORE_FILE_KEY_LABEL, info->label);
	else
		g_key_file_remove_key(kf, info->id, AS_TOKEN_STORE_FILE_KEY_LABEL, NULL);
	g_key_file_set_int64(kf, info->id, AS_TOKEN_STORE_FILE_KEY_CREATED, info->created);
	g_key_file_set_int64(kf, info->id, AS_TOKEN_STORE_FILE_KEY_EXPIRES, info->expires);
	g_key_file_set_boolean(kf, info->id, AS_TOKEN_STORE_FILE_KEY_REVOKED, info->revoked);
	data = g_key_file_to_data(kf, &len, error);
	if (data == NULL)
		return FALSE;

	dirname = g_path_get_dirname(self->path);
	if (g_mkdir_with_parents(dirname, AS_TOKEN_STORE_FILE_DIR_MODE) != 0) {
		as_token_store_file_set_errno(error, errno, "create", dirname);
		return FALSE;
	}
	if (!g_file_set_contents_full(self->path, data, (gssize)len, G_FILE_SET_CONTENTS_CONSISTENT,
				      AS_TOKEN_STORE_FILE_MODE, error)) {
		as_error_convert(error);
		return FALSE;
	}
	return TRUE;
}

static const gchar *
as_token_store_file_get_backend_name(AsTokenStore *store)
{
	return AS_TOKEN_STORE_BACKEND_FILE;
}

/**
 * as_token_store_file_get_path:
 * @self: an #AsTokenStoreFile
 *
 * Returns: the path of the tokens file
 */
const gchar *
as_token_store_file_get_path(AsTokenStoreFile *self)
{
	g_return_val_if_fail(AS_IS_TOKEN_STORE_FILE(self), NULL);
	return self->path;
}

/**
 * as_token_store_file_new:
 * @path: the tokens file, usually <config_dir>/tokens
 *
 * A store that keeps token hashes in a key file, one group per token id, written atomically
 * with mode 0600. Call as_token_store_load() before use.
 *
 * Returns: (transfer full): a new #AsTokenStore
 */
AsTokenStore *
as_token_store_file_new(const gchar *path)
{
	AsTokenStoreFile *self;

	g_return_val_if_fail(path != NULL, NULL);

	self = g_object_new(AS_TYPE_TOKEN_STORE_FILE, NULL);
	self->path = g_strdup(path);
	return AS_TOKEN_STORE(self);
}

static void
as_token_store_file_finalize(GObject *object)
{
	AsTokenStoreFile *self = AS_TOKEN_STORE_FILE(object);

	g_free(self->path);

	G_OBJECT_CLASS(as_token_store_file_parent_class)->finalize(object);
}

static void
as_token_store_file_init(AsTokenStoreFile *self)
{
}

static void
as_token_store_file_class_init(AsTokenStoreFileClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);
	AsTokenStoreClass *store_class = AS_TOKEN_STORE_CLASS(klass);

	object_class->finalize = as_token_store_file_finalize;
	store_class->load = as_token_store_file_load;
	store_class->save = as_token_store_file_save;
	store_class->get_backend_name = as_token_store_file_get_backend_name;
}
