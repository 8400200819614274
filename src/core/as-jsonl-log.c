/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "AsJsonlLog"

#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "as-error.h"
#include "as-jsonl-log.h"

#define AS_JSONL_LOG_FILE_MODE 0600
#define AS_JSONL_LOG_DIR_MODE  0700
#define AS_JSONL_LOG_READ_SIZE (64 * 1024)

struct _AsJsonlLog {
	GObject parent_instance;
	GMutex mutex; /* protects path, fd, dev and ino; held across each write */
	gchar *path;  /* owned, nullable: NULL means disabled */
	gint fd;      /* -1 until the first append */
	dev_t dev;    /* identity of the open file, to notice rotation */
	ino_t ino;
};

G_DEFINE_TYPE(AsJsonlLog, as_jsonl_log, G_TYPE_OBJECT)

static void
as_jsonl_log_set_errno_error(GError **error, gint errsv, const gchar *what, const gchar *path)
{
	g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errsv), "failed to %s %s: %s", what,
		    path, g_strerror(errsv));
	as_error_convert(error);
}

static gint
as_jsonl_log_open_fd(const gchar *path, dev_t *dev, ino_t *ino, GError **error)
{
	g_autofree gchar *dirname = g_path_get_dirname(path);
	struct stat st;
	gint fd;

	if (g_mkdir_with_parents(dirname, AS_JSONL_LOG_DIR_MODE) != 0) {
		as_jsonl_log_set_errno_error(error, errno, "create directory", dirname);
		return -1;
	}
	fd = g_open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY,
		    AS_JSONL_LOG_FILE_MODE);
	if (fd < 0) {
		as_jsonl_log_set_errno_error(error, errno, "open", path);
		return -1;
	}
	if (fstat(fd, &st) != 0) {
		as_jsonl_log_set_errno_error(error, errno, "stat", path);
		g_close(fd, NULL);
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT, "%s is not a regular file",
			    path);
		g_close(fd, NULL);
		return -1;
	}
	/* history and audit lines name files and peers: an older, wider mode is tightened */
	if ((st.st_mode & 0077) != 0 && fchmod(fd, AS_JSONL_LOG_FILE_MODE) != 0)
		g_warning("failed to restrict mode of %s: %s", path, g_strerror(errno));
	*dev = st.st_dev;
	*ino = st.st_ino;
	return fd;
}

static void
as_jsonl_log_close_locked(AsJsonlLog *self)
{
	if (self->fd >= 0) {
		g_close(self->fd, NULL);
		self->fd = -1;
	}
}

/* opens the file on first use, and again when it was moved away (e.g. by logrotate) */
static gboolean
as_jsonl_log_ensure_open_locked(AsJsonlLog *self, GError **error)
{
	struct stat st;
	dev_t dev;
	ino_t ino;
	gint fd;

	if (self->fd >= 0) {
		if (g_stat(self->path, &st) == 0 && st.st_dev == self->dev &&
		    st.st_ino == self->ino)
			return TRUE;
		g_debug("%s was moved or removed, reopening", self->path);
	}
	fd = as_jsonl_log_open_fd(self->path, &dev, &ino, error);
	if (fd < 0)
		return FALSE;
	as_jsonl_log_close_locked(self);
	self->fd = fd;
	self->dev = dev;
	self->ino = ino;
	return TRUE;
}

/**
 * as_jsonl_log_set_path:
 * @self: a #AsJsonlLog
 * @path: (nullable): the new file, or %NULL to disable logging
 * @error: (nullable): optional return location for an error
 *
 * Switches to @path, opening it at once so a bad path is reported now; used on live reload.
 * On failure the previous file stays in use.
 *
 * Returns: %TRUE on success
 **/
gboolean
as_jsonl_log_set_path(AsJsonlLog *self, const gchar *path, GError **error)
{
	g_autoptr(GMutexLocker) locker = NULL;
	dev_t dev = 0;
	ino_t ino = 0;
	gint fd = -1;

	g_return_val_if_fail(AS_IS_JSONL_LOG(self), FALSE);
	g_return_val_if_fail(error == NULL || *error == NULL, FALSE);

	if (path != NULL) {
		fd = as_jsonl_log_open_fd(path, &dev, &ino, error);
		if (fd < 0)
			return FALSE;
	}
	locker = g_mutex_locker_new(&self->mutex);
	as_jsonl_log_close_locked(self);
	g_free(self->path);
	self->path = g_strdup(path);
	self->fd = fd;
	self->dev = dev;
	self->ino = ino;
	return TRUE;
}

/**
 * as_jsonl_log_dup_path:
 * @self: a #AsJsonlLog
 *
 * Returns: (transfer full) (nullable): the current path, or %NULL when disabled
 **/
gchar *
as_jsonl_log_dup_path(AsJsonlLog *self)
{
	g_autoptr(GMutexLocker) locker = NULL;
	g_return_val_if_fail(AS_IS_JSONL_LOG(self), NULL);
	locker = g_mutex_locker_new(&self->mutex);
	return g_strdup(self->path);
}

/**
 * as_jsonl_log_append:
 * @self: a #AsJsonlLog
 * @object: the record to append
 * @error: (nullable): optional return location for an error
 *
 * Appends @object as one line. The line is written with a single write() on an O_APPEND
 * descriptor, so lines from other threads and other processes never interleave. Does
 * nothing when no path is set.
 *
 * Returns: %TRUE on success
 **/
gboolean
as_jsonl_log_append(AsJsonlLog *self, JsonObject *object, GError **error)
{
	g_autoptr(JsonGenerator) generator = json_generator_new();
	g_autoptr(JsonNode) node = json_node_new(JSON_NODE_OBJECT);
	g_autoptr(GMutexLocker) locker = NULL;
	g_autofree gchar *text = NULL;
	gsize len = 0;
	gsize written = 0;

	g_return_val_if_fail(AS_IS_JSONL_LOG(self), FALSE);
	g_return_val_if_fail(object != NULL, FALSE);
	g_return_val_if_fail(error == NULL || *error == NULL, FALSE);

	json_node_set_object(node, object);
	json_generator_set_root(generator, node);
	json_generator_set_pretty(generator, FALSE);
	text = json_generator_to_data(generator, &len);
	/* not pretty-printed and strings are escaped, so a newline can only be a bug */
	if (memchr(text, '\n', len) != NULL) {
		g_set_error_literal(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
				    "serialized record contains a newline");
		return FALSE;
	}
	if (len + 1 > AS_JSONL_LOG_LINE_MAX) {
		g_set_error(error, AS_ERROR, AS_ERROR_TOO_LARGE,
			    "record of %" G_GSIZE_FORMAT " bytes exceeds %u", len,
			    (guint)AS_JSONL_LOG_LINE_MAX);
		return FALSE;
	}
	text = g_realloc(text, len + 1);
	text[len++] = '\n';

	locker = g_mutex_locker_new(&self->mutex);
	if (self->path == NULL)
		return TRUE;
	if (!as_jsonl_log_ensure_open_locked(self, error))
		return FALSE;
	/* one write() for the line; a short write (disk full) is completed rather than left as
	 * a torn line, and the lock keeps this process's other lines out of the gap */
	while (written < len) {
		gssize n = write(self->fd, text + written, len - written);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			as_jsonl_log_set_errno_error(error, errno, "append to", self->path);
			return FALSE;
		}
		written += n;
	}
	return TRUE;
}

/* a ring of the last @limit matches: memory is bounded however long the file is */
typedef struct {
	GPtrArray *items; /* owned: (element-type JsonObject), grows up to limit */
	guint limit;
	guint head;	    /* oldest entry, overwritten next, once the ring is full */
	JsonParser *parser; /* owned */
	AsJsonlFilterFunc filter;
	gpointer user_data;
	guint64 line_no;
} AsJsonlTail;

static void
as_jsonl_tail_take_line(AsJsonlTail *tail, const gchar *line, gsize len)
{
	g_autoptr(GError) error_local = NULL;
	JsonNode *root;
	JsonObject *obj;

	tail->line_no++;
	while (len > 0 && g_ascii_isspace(line[len - 1]))
		len--;
	if (len == 0)
		return;
	if (!json_parser_load_from_data(tail->parser, line, len, &error_local)) {
		g_debug("skipping malformed line %" G_GUINT64_FORMAT ": %s", tail->line_no,
			error_local->message);
		return;
	}
	root = json_parser_get_root(tail->parser);
	if (root == NULL || !JSON_NODE_HOLDS_OBJECT(root)) {
		g_debug("skipping line %" G_GUINT64_FORMAT ": not an object", tail->line_no);
		return;
	}
	obj = json_node_get_object(root);
	if (tail->filter != NULL && !tail->filter(obj, tail->user_data))
		return;
	/* grown on demand, so a huge limit over a short file costs nothing */
	if (tail->items->len < tail->limit) {
		g_ptr_array_add(tail->items, json_object_ref(obj));
		return;
	}
	json_object_unref(g_ptr_array_index(tail->items, tail->head));
	g_ptr_array_index(tail->items, tail->head) = json_object_ref(obj);
	tail->head = (tail->head + 1) % tail->limit;
}

static gboolean
as_jsonl_tail_read_fd(AsJsonlTail *tail, gint fd, const gchar *path, GError **error)
{
	g_autofree gchar *buf = g_malloc(AS_JSONL_LOG_READ_SIZE);
	g_autoptr(GByteArray) partial = g_byte_array_new();
	gboolean oversized = FALSE;

	for (;;) {
		gssize n = read(fd, buf, AS_JSONL_LOG_READ_SIZE);
		const gchar *p = buf;
		const gchar *end;

		if (n < 0) {
			if (errno == EINTR)
				continue;
			as_jsonl_log_set_errno_error(error, errno, "read", path);
			return FALSE;
		}
		if (n == 0)
			break;
		end = buf + n;
		while (p < end) {
			const gchar *nl = memchr(p, '\n', end - p);
			gsize seg = (nl != NULL ? nl : end) - p;

			/* lines longer than the limit are dropped, never buffered whole */
			if (!oversized && partial->len + seg > AS_JSONL_LOG_LINE_MAX) {
				oversized = TRUE;
				g_byte_array_set_size(partial, 0);
			}
			if (!oversized)
				g_byte_array_append(partial, (const guint8 *)p, seg);
			if (nl == NULL)
				break;
			if (oversized) {
				tail->line_no++;
				g_debug("skipping line %" G_GUINT64_FORMAT ": longer than %u bytes",
					tail->line_no, (guint)AS_JSONL_LOG_LINE_MAX);
			} else if (partial->len > 0) {
				as_jsonl_tail_take_line(tail, (const gchar *)partial->data,
							partial->len);
			} else {
				tail->line_no++;
			}
			g_byte_array_set_size(partial, 0);
			oversized = FALSE;
			p = nl + 1;
		}
	}
	/* a last line without newline: a crash mid-write leaves it malformed and it is skipped */
	if (!oversized && partial->len > 0)
		as_jsonl_tail_take_line(tail, (const gchar *)partial->data, partial->len);
	return TRUE;
}

/**
 * as_jsonl_log_read_tail:
 * @self: a #AsJsonlLog
 * @limit: the most records to return
 * @filter: (nullable) (scope call): keeps only records it returns %TRUE for
 * @user_data: passed to @filter
 * @error: (nullable): optional return location for an error
 *
 * Streams the file forward keeping only the last @limit records that pass @filter, so
 * memory is bounded by @limit whatever the file size. Malformed lines are skipped.
 * A missing file or a disabled log gives an empty array.
 *
 * Returns: (transfer full) (element-type JsonObject): up to @limit records, newest first
 **/
GPtrArray *
as_jsonl_log_read_tail(
	AsJsonlLog *self, guint limit, AsJsonlFilterFunc filter, gpointer user_data, GError **error)
{
	g_autoptr(GPtrArray) result =
		g_ptr_array_new_with_free_func((GDestroyNotify)json_object_unref);
	g_autofree gchar *path = NULL;
	g_autoptr(JsonParser) parser = NULL;
	AsJsonlTail tail = {0};
	gboolean ok;
	gint fd;

	g_return_val_if_fail(AS_IS_JSONL_LOG(self), NULL);
	g_return_val_if_fail(error == NULL || *error == NULL, NULL);

	path = as_jsonl_log_dup_path(self);
	if (path == NULL || limit == 0)
		return g_steal_pointer(&result);
	fd = g_open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY, 0);
	if (fd < 0) {
		if (errno == ENOENT)
			return g_steal_pointer(&result);
		as_jsonl_log_set_errno_error(error, errno, "open", path);
		return NULL;
	}

	parser = json_parser_new();
	tail.items = g_ptr_array_new_with_free_func((GDestroyNotify)json_object_unref);
	tail.limit = limit;
	tail.parser = parser;
	tail.filter = filter;
	tail.user_data = user_data;
	ok = as_jsonl_tail_read_fd(&tail, fd, path, error);
	g_close(fd, NULL);

	/* newest first: walk the ring backwards from the last slot written */
	for (guint i = 0; ok && i < tail.items->len; i++) {
		guint idx = (tail.head + tail.items->len - 1 - i) % tail.items->len;
		g_ptr_array_add(result, json_object_ref(g_ptr_array_index(tail.items, idx)));
	}
	g_ptr_array_unref(tail.items);
	if (!ok)
		return NULL;
	return g_steal_pointer(&result);
}

static void
as_jsonl_log_finalize(GObject *object)
{
	AsJsonlLog *self = AS_JSONL_LOG(object);

	as_jsonl_log_close_locked(self);
	g_free(self->path);
	g_mutex_clear(&self->mutex);
	G_OBJECT_CLASS(as_jsonl_log_parent_class)->finalize(object);
}

static void
as_jsonl_log_class_init(AsJsonlLogClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);
	object_class->finalize = as_jsonl_log_finalize;
}

static void
as_jsonl_log_init(AsJsonlLog *self)
{
	g_mutex_init(&self->mutex);
	self->fd = -1;
}

/**
 * as_jsonl_log_new:
 * @path: (nullable): the file, or %NULL for a disabled log
 *
 * Creates a log. The file and its parent directory are created on the first append.
 *
 * Returns: (transfer full): a new #AsJsonlLog
 **/
AsJsonlLog *
as_jsonl_log_new(const gchar *path)
{
	AsJsonlLog *self = g_object_new(AS_TYPE_JSONL_LOG, NULL);
	self->path = g_strdup(path);
	return self;
}
