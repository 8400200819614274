/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "AsSendState"

#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "as-error.h"
#include "as-send-state.h"
#include "as-sha256-state.h"
#include "as-sha256.h"

/*
 * The resume record of one outgoing transfer is three files in the state directory:
 *
 *   <id>.state  a key file, rewritten atomically by as_send_state_save(): the [transfer]
 *               group, and one [file N] group per file being sent right now (task id, chunk
 *               layout, saved hash state). Its size is bounded by the files in flight, not
 *               by the size of the batch, so saving four times a second stays cheap.
 *   <id>.files  every file of the transfer, one line per file in index order, appended while
 *               the caller walks the sources and only ever read sequentially:
 *                 index TAB size TAB mtime_us TAB source TAB name
 *   <id>.done   a journal of finished files, one line each in the order they finished:
 *                 index TAB size TAB mtime_us TAB source TAB name TAB state TAB sha256|error
 *
 * Paths and messages are escaped with g_strescape(), so lines hold neither tabs nor newlines
 * and the key file stays ASCII whatever bytes the file names have. Both lists are append-only;
 * the key file records how many bytes of each belong to the saved snapshot, and a load cuts
 * off whatever was appended after it, so a crash at any point leaves a consistent state.
 * In memory there is only the key file's content and two bits per file.
 */

#define AS_SEND_STATE_DIR_MODE	    0700
#define AS_SEND_STATE_FILE_MODE	    0600
#define AS_SEND_STATE_SUFFIX_STATE  ".state"
#define AS_SEND_STATE_SUFFIX_FILES  ".files"
#define AS_SEND_STATE_SUFFIX_DONE   ".done"
#define AS_SEND_STATE_READ_SIZE	    (2 * AS_SEND_STATE_LINE_MAX)
#define AS_SEND_STATE_LIST_FIELDS   5
#define AS_SEND_STATE_DONE_FIELDS   7
#define AS_SEND_STATE_GROUP	    "transfer"
#define AS_SEND_STATE_FILE_GROUP    "file "
#define AS_SEND_STATE_KEY_VERSION   "Version"
#define AS_SEND_STATE_KEY_ID	    "Id"
#define AS_SEND_STATE_KEY_DEST	    "Destination"
#define AS_SEND_STATE_KEY_OPTIONS   "Options"
#define AS_SEND_STATE_KEY_CREATED   "Created"
#define AS_SEND_STATE_KEY_FILES	    "Files"
#define AS_SEND_STATE_KEY_FILES_LEN "FilesBytes"
#define AS_SEND_STATE_KEY_COMPLETE  "FilesComplete"
#define AS_SEND_STATE_KEY_TOTAL	    "BytesTotal"
#define AS_SEND_STATE_KEY_FINISHED  "Finished"
#define AS_SEND_STATE_KEY_DONE_LEN  "FinishedBytes"
#define AS_SEND_STATE_KEY_SOURCE    "Source"
#define AS_SEND_STATE_KEY_NAME	    "Name"
#define AS_SEND_STATE_KEY_SIZE	    "Size"
#define AS_SEND_STATE_KEY_MTIME	    "Mtime"
#define AS_SEND_STATE_KEY_STATE	    "State"
#define AS_SEND_STATE_KEY_TASK_ID   "TaskId"
#define AS_SEND_STATE_KEY_CHUNK	    "ChunkSize"
#define AS_SEND_STATE_KEY_CHUNKS    "TotalChunks"
#define AS_SEND_STATE_KEY_HASH	    "HashState"
#define AS_SEND_STATE_KEY_HASHED    "HashedChunks"

/* an append-only list file and what of it is on disk */
typedef struct {
	const gchar *suffix;
	int fd;
	GString *pending; /* appended, not yet written */
	guint64 written;  /* bytes written to fd */
	guint64 synced;	  /* bytes known to be on disk */
} AsSendStateList;

struct _AsSendState {
	GObject parent_instance;
	gchar *dir;
	gchar *transfer_id;
	gchar *destination;
	GVariant *options; /* owned, a{sv} in normal form */
	gint64 created_us;
	gboolean files_complete;
	guint64 n_files;
	guint64 bytes_total;
	guint64 n_done;
	guint64 n_failed;
	guint64 bytes_done;
	GByteArray *finished; /* one bit per file: done or failed */
	GByteArray *failed;   /* one bit per file: failed */
	GHashTable *sending;  /* (element-type guint64 AsSendFile): key points into the value */
	AsSendStateList files;
	AsSendStateList done;
	gboolean dirty;
	gint64 last_save_us;
};

G_DEFINE_TYPE(AsSendState, as_send_state, G_TYPE_OBJECT)

/* sequential reader of one list file, never holding more than AS_SEND_STATE_READ_SIZE */
typedef struct {
	int fd; /* owned */
	const gchar *suffix;
	guint64 pos; /* offset of the next read */
	guint8 *buf; /* owned, AS_SEND_STATE_READ_SIZE */
	gsize start; /* first byte not returned yet */
	gsize len;   /* bytes in buf */
	guint64 line_no;
} AsSendStateReader;

struct _AsSendStateFileIter {
	AsSendState *state; /* owned ref */
	AsSendStateIterKind kind;
	AsSendStateReader reader;
	guint64 next_index;
};

/**
 * as_send_file_state_to_string:
 * @state: #AsSendFileState
 *
 * Returns: `pending`, `sending`, `done` or `failed`
 **/
const gchar *
as_send_file_state_to_string(AsSendFileState state)
{
	switch (state) {
	case AS_SEND_FILE_STATE_PENDING:
		return "pending";
	case AS_SEND_FILE_STATE_SENDING:
		return "sending";
	case AS_SEND_FILE_STATE_DONE:
		return "done";
	case AS_SEND_FILE_STATE_FAILED:
		return "failed";
	default:
		return NULL;
	}
}

/**
 * as_send_file_copy:
 * @file: a #AsSendFile
 *
 * Returns: (transfer full): a deep copy of @file
 **/
AsSendFile *
as_send_file_copy(const AsSendFile *file)
{
	AsSendFile *copy;

	g_return_val_if_fail(file != NULL, NULL);

	copy = g_memdup2(file, sizeof(*file));
	copy->source = g_strdup(file->source);
	copy->name = g_strdup(file->name);
	copy->task_id = g_strdup(file->task_id);
	copy->hash_state = file->hash_state != NULL ? g_bytes_ref(file->hash_state) : NULL;
	copy->sha256 = g_strdup(file->sha256);
	copy->error = g_strdup(file->error);
	return copy;
}

/**
 * as_send_file_free:
 * @file: (nullable): a #AsSendFile
 *
 * Frees a record and everything it holds.
 **/
void
as_send_file_free(AsSendFile *file)
{
	if (file == NULL)
		return;
	g_free(file->source);
	g_free(file->name);
	g_free(file->task_id);
	if (file->hash_state != NULL)
		g_bytes_unref(file->hash_state);
	g_free(file->sha256);
	g_free(file->error);
	g_free(file);
}

/**
 * as_send_state_id_is_valid:
 * @transfer_id: (nullable): a string
 *
 * Returns: %TRUE if @transfer_id is 1 to %AS_SEND_STATE_ID_MAX characters of [A-Za-z0-9_-],
 *   so it is safe as a file name
 **/
gboolean
as_send_state_id_is_valid(const gchar *transfer_id)
{
	gsize len;

	if (transfer_id == NULL)
		return FALSE;
	len = strlen(transfer_id);
	if (len == 0 || len > AS_SEND_STATE_ID_MAX)
		return FALSE;
	for (gsize i = 0; i < len; i++) {
		if (!g_ascii_isalnum(transfer_id[i]) && transfer_id[i] != '-' &&
		    transfer_id[i] != '_')
			return FALSE;
	}
	return TRUE;
}

static gboolean
as_send_state_check_id(const gchar *transfer_id, GError **error)
{
	if (!as_send_state_id_is_valid(transfer_id)) {
		g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT, "invalid transfer id '%s'",
			    transfer_id != NULL ? transfer_id : "");
		return FALSE;
	}
	return TRUE;
}

static gchar *
as_send_state_path(AsSendState *self, const gchar *suffix)
{
	g_autofree gchar *basename = g_strconcat(self->transfer_id, suffix, NULL);
	return g_build_filename(self->dir, basename, NULL);
}

static gboolean as_send_state_corrupt(GError **error, const gchar *format, ...) G_GNUC_PRINTF(2, 3);

static gboolean
as_send_state_corrupt(GError **error, const gchar *format, ...)
{
	va_list args;
	g_autofree gchar *message = NULL;

	va_start(args, format);
	message = g_strdup_vprintf(format, args);
	va_end(args);
	g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT, "corrupt: %s", message);
	return FALSE;
}

/* bitmaps: one bit per file index */
static void
as_send_state_bits_grow(GByteArray *bits, guint64 n)
{
	guint old = bits->len;
	guint want = (guint)((n + 7) / 8);

	if (want <= old)
		return;
	g_byte_array_set_size(bits, want);
	memset(bits->data + old, 0, want - old);
}

static gboolean
as_send_state_bits_get(GByteArray *bits, guint64 index)
{
	if (index / 8 >= bits->len)
		return FALSE;
	return (bits->data[index / 8] >> (index % 8)) & 1;
}

static void
as_send_state_bits_set(GByteArray *bits, guint64 index)
{
	as_send_state_bits_grow(bits, index + 1);
	bits->data[index / 8] |= (guint8)(1u << (index % 8));
}

/* the inverse of g_strescape(), refusing what g_strcompress() would warn about */
static gchar *
as_send_state_unescape(const gchar *text, const gchar *what, GError **error)
{
	for (const gchar *p = text; *p != '\0'; p++) {
		if (*p == '\\') {
			p++;
			if (*p == '\0') {
				as_send_state_corrupt(error, "%s ends in a lone backslash", what);
				return NULL;
			}
		}
	}
	return g_strcompress(text);
}

static gboolean
as_send_state_parse_u64(
	const gchar *text, guint64 max, guint64 *out, const gchar *what, GError **error)
{
	if (text == NULL || !g_ascii_string_to_unsigned(text, 10, 0, max, out, NULL))
		return as_send_state_corrupt(error, "%s is not a valid number", what);
	return TRUE;
}

static gboolean
as_send_state_parse_i64(const gchar *text, gint64 *out, const gchar *what, GError **error)
{
	if (text == NULL || !g_ascii_string_to_signed(text, 10, G_MININT64, G_MAXINT64, out, NULL))
		return as_send_state_corrupt(error, "%s is not a valid number", what);
	return TRUE;
}

static gboolean
as_send_state_check_paths(const gchar *source, const gchar *name, GError **error)
{
	if (source == NULL || !g_path_is_absolute(source) ||
	    strlen(source) > AS_SEND_STATE_PATH_MAX) {
		g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
			    "source '%s' is not an absolute path of at most %u bytes",
			    source != NULL ? source : "", (guint)AS_SEND_STATE_PATH_MAX);
		return FALSE;
	}
	if (name == NULL || name[0] == '\0' || name[0] == '/' ||
	    strlen(name) > AS_SEND_STATE_PATH_MAX) {
		g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
			    "destination name '%s' is not a relative path of at most %u bytes",
			    name != NULL ? name : "", (guint)AS_SEND_STATE_PATH_MAX);
		return FALSE;
	}
	return TRUE;
}

/* cuts @text to at most @max bytes, not inside a UTF-8 sequence, so the message stays valid
 * UTF-8 for D-Bus if it was */
static gchar *
as_send_state_truncate(const gchar *text, gsize max)
{
	gsize len = strlen(text);

	if (len <= max)
		return g_strdup(text);
	len = max;
	while (len > 0 && ((guchar)text[len] & 0xc0) == 0x80)
		len--;
	return g_strndup(text, len);
}

/* writes out what was appended to a list, without syncing */
static gboolean
as_send_state_list_flush(AsSendState *self, AsSendStateList *list, GError **error)
{
	gsize done = 0;

	while (done < list->pending->len) {
		gssize n = write(list->fd, list->pending->str + done, list->pending->len - done);
		if (n < 0) {
			int errsv = errno;
			if (errsv == EINTR)
				continue;
			/* keep the rest: a later flush continues exactly where this one stopped */
			g_string_erase(list->pending, 0, (gssize)done);
			list->written += done;
			g_set_error(error, AS_ERROR,
				    errsv == ENOSPC ? AS_ERROR_NO_SPACE : AS_ERROR_IO,
				    "failed to write %s%s: %s", self->transfer_id, list->suffix,
				    g_strerror(errsv));
			return FALSE;
		}
		done += (gsize)n;
	}
	list->written += done;
	g_string_truncate(list->pending, 0);
	return TRUE;
}

static gboolean
as_send_state_list_sync(AsSendState *self, AsSendStateList *list, GError **error)
{
	if (!as_send_state_list_flush(self, list, error))
		return FALSE;
	if (list->synced == list->written)
		return TRUE;
	if (fdatasync(list->fd) != 0) {
		int errsv = errno;
		g_set_error(error, AS_ERROR, errsv == ENOSPC ? AS_ERROR_NO_SPACE : AS_ERROR_IO,
			    "failed to sync %s%s: %s", self->transfer_id, list->suffix,
			    g_strerror(errsv));
		return FALSE;
	}
	list->synced = list->written;
	return TRUE;
}

static gboolean
as_send_state_list_append(AsSendState *self,
			  AsSendStateList *list,
			  const GString *line,
			  GError **error)
{
	g_string_append_len(list->pending, line->str, (gssize)line->len);
	if (list->pending->len >= AS_SEND_STATE_BUFFER_SIZE)
		return as_send_state_list_flush(self, list, error);
	return TRUE;
}

/* opens a list and cuts off what was appended after the last save */
static gboolean
as_send_state_list_open(AsSendState *self,
			AsSendStateList *list,
			guint64 saved_len,
			gboolean truncate,
			GError **error)
{
	g_autofree gchar *path = as_send_state_path(self, list->suffix);
	struct stat st;
	int flags = O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | (truncate ? O_TRUNC : 0);

	list->fd = g_open(path, flags, AS_SEND_STATE_FILE_MODE);
	if (list->fd < 0) {
		int errsv = errno;
		g_set_error(error, AS_ERROR, errsv == ENOSPC ? AS_ERROR_NO_SPACE : AS_ERROR_IO,
			    "failed to open %s: %s", path, g_strerror(errsv));
		return FALSE;
	}
	if (fstat(list->fd, &st) != 0) {
		int errsv = errno;
		g_set_error(error, AS_ERROR, AS_ERROR_IO, "failed to stat %s: %s", path,
			    g_strerror(errsv));
		return FALSE;
	}
	if ((guint64)st.st_size < saved_len)
		return as_send_state_corrupt(error,
					     "%s has %" G_GUINT64_FORMAT
					     " bytes, the saved state needs %" G_GUINT64_FORMAT,
					     path, (guint64)st.st_size, saved_len);
	if ((guint64)st.st_size > saved_len && ftruncate(list->fd, (off_t)saved_len) != 0) {
		int errsv = errno;
		g_set_error(error, AS_ERROR, AS_ERROR_IO, "failed to truncate %s: %s", path,
			    g_strerror(errsv));
		return FALSE;
	}
	list->written = saved_len;
	list->synced = saved_len;
	return TRUE;
}

static void
as_send_state_reader_init(AsSendStateReader *reader, int fd, const gchar *suffix)
{
	reader->fd = fd;
	reader->suffix = suffix;
	reader->buf = g_malloc(AS_SEND_STATE_READ_SIZE);
}

static void
as_send_state_reader_clear(AsSendStateReader *reader)
{
	if (reader->fd >= 0)
		g_close(reader->fd, NULL);
	reader->fd = -1;
	g_clear_pointer(&reader->buf, g_free);
}

/* returns the next line, NUL-terminated in place and valid until the next call, or NULL at
 * @limit, the end of what belongs to the state */
static gboolean
as_send_state_reader_next(AsSendStateReader *reader, guint64 limit, gchar **line, GError **error)
{
	*line = NULL;
	while (TRUE) {
		guint8 *newline =
			memchr(reader->buf + reader->start, '\n', reader->len - reader->start);
		gssize n;
		gsize want;

		if (newline != NULL) {
			*newline = '\0';
			*line = (gchar *)reader->buf + reader->start;
			reader->start = (gsize)(newline - reader->buf) + 1;
			reader->line_no++;
			return TRUE;
		}
		if (reader->len - reader->start > AS_SEND_STATE_LINE_MAX)
			return as_send_state_corrupt(error,
						     "line %" G_GUINT64_FORMAT " of %s is too long",
						     reader->line_no + 1, reader->suffix);
		memmove(reader->buf, reader->buf + reader->start, reader->len - reader->start);
		reader->len -= reader->start;
		reader->start = 0;
		if (reader->pos >= limit) {
			if (reader->len > 0)
				return as_send_state_corrupt(
					error, "%s ends inside line %" G_GUINT64_FORMAT,
					reader->suffix, reader->line_no + 1);
			return TRUE;
		}
		want = (gsize)MIN((guint64)(AS_SEND_STATE_READ_SIZE - reader->len),
				  limit - reader->pos);
		n = pread(reader->fd, reader->buf + reader->len, want, (off_t)reader->pos);
		if (n < 0) {
			int errsv = errno;
			if (errsv == EINTR)
				continue;
			g_set_error(error, AS_ERROR, AS_ERROR_IO, "failed to read %s: %s",
				    reader->suffix, g_strerror(errsv));
			return FALSE;
		}
		if (n == 0)
			return as_send_state_corrupt(error, "%s is shorter than recorded",
						     reader->suffix);
		reader->len += (gsize)n;
		reader->pos += (guint64)n;
	}
}

static void
as_send_state_append_common(GString *line, const AsSendFile *file)
{
	g_autofree gchar *source = g_strescape(file->source, NULL);
	g_autofree gchar *name = g_strescape(file->name, NULL);

	g_string_append_printf(
		line, "%" G_GUINT64_FORMAT "\t%" G_GUINT64_FORMAT "\t%" G_GINT64_FORMAT "\t%s\t%s",
		file->index, file->size, file->mtime_us, source, name);
}

/* parses the fields both lists start with */
static AsSendFile *
as_send_state_parse_common(gchar **fields, GError **error)
{
	g_autoptr(AsSendFile) file = g_new0(AsSendFile, 1);

	if (!as_send_state_parse_u64(fields[0], G_MAXUINT64, &file->index, "index", error) ||
	    !as_send_state_parse_u64(fields[1], G_MAXUINT64, &file->size, "size", error) ||
	    !as_send_state_parse_i64(fields[2], &file->mtime_us, "mtime", error))
		return NULL;
	file->source = as_send_state_unescape(fields[3], "source", error);
	if (file->source == NULL)
		return NULL;
	file->name = as_send_state_unescape(fields[4], "name", error);
	if (file->name == NULL)
		return NULL;
	if (!as_send_state_check_paths(file->source, file->name, error))
		return NULL;
	return g_steal_pointer(&file);
}

static AsSendFile *
as_send_state_parse_line(gchar *line, AsSendStateIterKind kind, GError **error)
{
	g_auto(GStrv) fields = g_strsplit(line, "\t", -1);
	guint n_fields = g_strv_length(fields);
	g_autoptr(AsSendFile) file = NULL;

	if (n_fields != (kind == AS_SEND_STATE_ITER_PENDING ? AS_SEND_STATE_LIST_FIELDS
							    : AS_SEND_STATE_DONE_FIELDS)) {
		as_send_state_corrupt(error, "a line has %u fields", n_fields);
		return NULL;
	}
	file = as_send_state_parse_common(fields, error);
	if (file == NULL)
		return NULL;
	if (kind == AS_SEND_STATE_ITER_PENDING)
		return g_steal_pointer(&file);

	if (g_strcmp0(fields[5], "done") == 0) {
		if (!as_sha256_hex_is_valid(fields[6])) {
			as_send_state_corrupt(error,
					      "file %" G_GUINT64_FORMAT " has an invalid SHA-256",
					      file->index);
			return NULL;
		}
		file->state = AS_SEND_FILE_STATE_DONE;
		file->sha256 = g_ascii_strdown(fields[6], -1);
	} else if (g_strcmp0(fields[5], "failed") == 0) {
		file->state = AS_SEND_FILE_STATE_FAILED;
		file->error = as_send_state_unescape(fields[6], "error", error);
		if (file->error == NULL)
			return NULL;
	} else {
		as_send_state_corrupt(error,
				      "file %" G_GUINT64_FORMAT " has an unknown final state",
				      file->index);
		return NULL;
	}
	return g_steal_pointer(&file);
}

/* checks a record handed in by the caller or read from the key file */
static gboolean
as_send_state_check_sending(const AsSendFile *file, GError **error)
{
	if (!as_send_state_id_is_valid(file->task_id)) {
		g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
			    "file %" G_GUINT64_FORMAT " has an invalid task id", file->index);
		return FALSE;
	}
	if (file->chunk_size == 0) {
		g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
			    "file %" G_GUINT64_FORMAT " has a chunk size of 0", file->index);
		return FALSE;
	}
	if (file->hashed_chunks > file->total_chunks ||
	    (file->hashed_chunks > 0 && file->hash_state == NULL)) {
		g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
			    "file %" G_GUINT64_FORMAT
			    " has %u of %u chunks hashed without a matching hash state",
			    file->index, file->hashed_chunks, file->total_chunks);
		return FALSE;
	}
	if (file->hash_state != NULL) {
		g_autoptr(AsSha256State) hash = as_sha256_state_load(file->hash_state, error);
		guint64 expected = file->size;

		if (hash == NULL) {
			g_prefix_error(error, "file %" G_GUINT64_FORMAT ": ", file->index);
			return FALSE;
		}
		/* chunks are hashed whole and in order: the state covers exactly those */
		if (file->hashed_chunks == 0 ||
		    file->chunk_size <= file->size / file->hashed_chunks)
			expected = MIN(expected, (guint64)file->hashed_chunks * file->chunk_size);
		if (as_sha256_state_get_length(hash) != expected) {
			g_set_error(
				error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
				"file %" G_GUINT64_FORMAT " has a hash state of %" G_GUINT64_FORMAT
				" bytes for %u chunks",
				file->index, as_sha256_state_get_length(hash), file->hashed_chunks);
			return FALSE;
		}
	}
	return TRUE;
}

static gint
as_send_state_cmp_index_cb(gconstpointer a, gconstpointer b)
{
	const AsSendFile *fa = *(AsSendFile *const *)a;
	const AsSendFile *fb = *(AsSendFile *const *)b;
	return fa->index < fb->index ? -1 : fa->index > fb->index;
}

static gchar *
as_send_state_to_data(AsSendState *self, gsize *len)
{
	g_autoptr(GKeyFile) kf = g_key_file_new();
	g_autoptr(GBytes) options = g_variant_get_data_as_bytes(self->options);
	g_autofree gchar *options_b64 =
		g_base64_encode(g_bytes_get_data(options, NULL), g_bytes_get_size(options));
	g_autoptr(GPtrArray) sending = g_ptr_array_new();
	GHashTableIter it;
	gpointer value = NULL;

	g_key_file_set_integer(kf, AS_SEND_STATE_GROUP, AS_SEND_STATE_KEY_VERSION,
			       AS_SEND_STATE_VERSION);
	g_key_file_set_string(kf, AS_SEND_STATE_GROUP, AS_SEND_STATE_KEY_ID, self->transfer_id);
	g_key_file_set_string(kf, AS_SEND_STATE_GROUP, AS_SEND_STATE_KEY_DEST, self->destination);
	g_key_file_set_string(kf, AS_SEND_STATE_GROUP, AS_SEND_STATE_KEY_OPTIONS, options_b64);
	g_key_file_set_int64(kf, AS_SEND_STATE_GROUP, AS_SEND_STATE_KEY_CREATED, self->created_us);
	g_key_file_set_uint64(kf, AS_SEND_STATE_GROUP, AS_SEND_STATE_KEY_FILES, self->n_files);
	g_key_file_set_uint64(kf, AS_SEND_STATE_GROUP, AS_SEND_STATE_KEY_FILES_LEN,
			      self->files.written);
	g_key_file_set_boolean(kf, AS_SEND_STATE_GROUP, AS_SEND_STATE_KEY_COMPLETE,
			       self->files_complete);
	g_key_file_set_uint64(kf, AS_SEND_STATE_GROUP, AS_SEND_STATE_KEY_TOTAL, self->bytes_total);
	g_key_file_set_uint64(kf, AS_SEND_STATE_GROUP, AS_SEND_STATE_KEY_FINISHED,
			      self->n_done + self->n_failed);
	g_key_file_set_uint64(kf, AS_SEND_STATE_GROUP, AS_SEND_STATE_KEY_DONE_LEN,
			      self->done.written);

	/* in index order, so equal states give equal files */
	g_hash_table_iter_init(&it, self->sending);
	while (g_hash_table_iter_next(&it, NULL, &value))
		g_ptr_array_add(sending, value);
	g_ptr_array_sort(sending, as_send_state_cmp_index_cb);
	for (guint i = 0; i < sending->len; i++) {
		const AsSendFile *file = g_ptr_array_index(sending, i);
		g_autofree gchar *group =
			g_strdup_printf(AS_SEND_STATE_FILE_GROUP "%" G_GUINT64_FORMAT, file->index);
		g_autofree gchar *source = g_strescape(file->source, NULL);
		g_autofree gchar *name = g_strescape(file->name, NULL);

		g_key_file_set_string(kf, group, AS_SEND_STATE_KEY_SOURCE, source);
		g_key_file_set_string(kf, group, AS_SEND_STATE_KEY_NAME, name);
		g_key_file_set_uint64(kf, group, AS_SEND_STATE_KEY_SIZE, file->size);
		g_key_file_set_int64(kf, group, AS_SEND_STATE_KEY_MTIME, file->mtime_us);
		g_key_file_set_string(kf, group, AS_SEND_STATE_KEY_STATE,
				      as_send_file_state_to_string(file->state));
		g_key_file_set_string(kf, group, AS_SEND_STATE_KEY_TASK_ID, file->task_id);
		g_key_file_set_uint64(kf, group, AS_SEND_STATE_KEY_CHUNK, file->chunk_size);
		g_key_file_set_uint64(kf, group, AS_SEND_STATE_KEY_CHUNKS, file->total_chunks);
		g_key_file_set_uint64(kf, group, AS_SEND_STATE_KEY_HASHED, file->hashed_chunks);
		if (file->hash_state != NULL) {
			g_autofree gchar *hash =
				g_base64_encode(g_bytes_get_data(file->hash_state, NULL),
						g_bytes_get_size(file->hash_state));
			g_key_file_set_string(kf, group, AS_SEND_STATE_KEY_HASH, hash);
		}
	}
	return g_key_file_to_data(kf, len, NULL);
}

/**
 * as_send_state_save:
 * @self: a #AsSendState
 * @error: (nullable): optional return location for an error
 *
 * Makes everything recorded so far durable: the lists are synced first, then the key file
 * that says how much of them counts is replaced atomically (written to a temporary file,
 * synced, renamed, mode 0600).
 *
 * Returns: %TRUE on success
 **/
gboolean
as_send_state_save(AsSendState *self, GError **error)
{
	g_autofree gchar *path = NULL;
	g_autofree gchar *data = NULL;
	gsize len = 0;

	g_return_val_if_fail(AS_IS_SEND_STATE(self), FALSE);
	g_return_val_if_fail(error == NULL || *error == NULL, FALSE);

	if (!as_send_state_list_sync(self, &self->files, error) ||
	    !as_send_state_list_sync(self, &self->done, error)) {
		g_prefix_error(error, "failed to save send state %s: ", self->transfer_id);
		return FALSE;
	}
	path = as_send_state_path(self, AS_SEND_STATE_SUFFIX_STATE);
	data = as_send_state_to_data(self, &len);
	if (!g_file_set_contents_full(path, data, (gssize)len, G_FILE_SET_CONTENTS_CONSISTENT,
				      AS_SEND_STATE_FILE_MODE, error)) {
		as_error_convert(error);
		g_prefix_error(error, "failed to save send state %s: ", self->transfer_id);
		return FALSE;
	}
	self->dirty = FALSE;
	self->last_save_us = g_get_monotonic_time();
	return TRUE;
}

/**
 * as_send_state_save_throttled:
 * @self: a #AsSendState
 * @force: save even if the last save was less than %AS_SEND_STATE_SAVE_INTERVAL_MS ago
 * @error: (nullable): optional return location for an error
 *
 * Saves if something changed and the last save is old enough, for calling after each
 * acknowledged chunk. A change skipped here stays pending: force a save when a file finishes
 * and when pausing or stopping, and call this from a periodic timer too, so that a skipped
 * change reaches the disk within a second.
 *
 * Returns: %TRUE on success, including when nothing needed saving yet
 **/
gboolean
as_send_state_save_throttled(AsSendState *self, gboolean force, GError **error)
{
	g_return_val_if_fail(AS_IS_SEND_STATE(self), FALSE);
	g_return_val_if_fail(error == NULL || *error == NULL, FALSE);

	if (!self->dirty)
		return TRUE;
	if (!force && self->last_save_us != 0 &&
	    g_get_monotonic_time() - self->last_save_us <
		    (gint64)AS_SEND_STATE_SAVE_INTERVAL_MS * G_TIME_SPAN_MILLISECOND)
		return TRUE;
	return as_send_state_save(self, error);
}

/**
 * as_send_state_is_dirty:
 * @self: a #AsSendState
 *
 * Returns: %TRUE if something changed since the last save
 **/
gboolean
as_send_state_is_dirty(AsSendState *self)
{
	g_return_val_if_fail(AS_IS_SEND_STATE(self), FALSE);
	return self->dirty;
}

/**
 * as_send_state_add_file:
 * @self: a #AsSendState
 * @source: absolute source path
 * @name: relative destination name
 * @size: size in bytes
 * @mtime_us: modification time in microseconds since the epoch
 * @index: (out) (optional): the index given to the file
 * @error: (nullable): optional return location for an error
 *
 * Appends a pending file, e.g. for each entry of an #AsFileWalker. Only a buffer of
 * %AS_SEND_STATE_BUFFER_SIZE is kept in memory; the file becomes durable with the next save.
 * If the process dies before the walk ended (as_send_state_get_files_complete() is then
 * %FALSE), walk again on resume and skip the first as_send_state_get_n_files() entries.
 *
 * Returns: %TRUE on success
 **/
gboolean
as_send_state_add_file(AsSendState *self,
		       const gchar *source,
		       const gchar *name,
		       guint64 size,
		       gint64 mtime_us,
		       guint64 *index,
		       GError **error)
{
	g_autoptr(GString) line = g_string_new(NULL);
	AsSendFile file = {
		.index = self->n_files,
		.source = (gchar *)source,
		.name = (gchar *)name,
		.size = size,
		.mtime_us = mtime_us,
	};

	g_return_val_if_fail(AS_IS_SEND_STATE(self), FALSE);
	g_return_val_if_fail(error == NULL || *error == NULL, FALSE);

	if (self->files_complete) {
		g_set_error_literal(error, AS_ERROR, AS_ERROR_CONFLICT,
				    "the file list of this transfer is complete");
		return FALSE;
	}
	if (!as_send_state_check_paths(source, name, error))
		return FALSE;
	if (size > G_MAXUINT64 - self->bytes_total) {
		g_set_error_literal(error, AS_ERROR, AS_ERROR_TOO_LARGE,
				    "the transfer is too large");
		return FALSE;
	}
	as_send_state_append_common(line, &file);
	g_string_append_c(line, '\n');
	if (!as_send_state_list_append(self, &self->files, line, error))
		return FALSE;
	if (index != NULL)
		*index = self->n_files;
	self->n_files++;
	self->bytes_total += size;
	as_send_state_bits_grow(self->finished, self->n_files);
	as_send_state_bits_grow(self->failed, self->n_files);
	self->dirty = TRUE;
	return TRUE;
}

/**
 * as_send_state_get_file_state:
 * @self: a #AsSendState
 * @index: a file index
 *
 * Returns: the #AsSendFileState of the file at @index
 **/
AsSendFileState
as_send_state_get_file_state(AsSendState *self, guint64 index)
{
	g_return_val_if_fail(AS_IS_SEND_STATE(self), AS_SEND_FILE_STATE_PENDING);
	g_return_val_if_fail(index < self->n_files, AS_SEND_FILE_STATE_PENDING);

	if (as_send_state_bits_get(self->failed, index))
		return AS_SEND_FILE_STATE_FAILED;
	if (as_send_state_bits_get(self->finished, index))
		return AS_SEND_FILE_STATE_DONE;
	if (g_hash_table_contains(self->sending, &index))
		return AS_SEND_FILE_STATE_SENDING;
	return AS_SEND_FILE_STATE_PENDING;
}

/**
 * as_send_state_lookup_sending:
 * @self: a #AsSendState
 * @index: a file index
 *
 * Returns: (transfer none) (nullable): the record of a file being sent, or %NULL
 **/
const AsSendFile *
as_send_state_lookup_sending(AsSendState *self, guint64 index)
{
	g_return_val_if_fail(AS_IS_SEND_STATE(self), NULL);
	return g_hash_table_lookup(self->sending, &index);
}

/**
 * as_send_state_update_file:
 * @self: a #AsSendState
 * @file: the file's new record, usually one from as_send_state_file_iter_next() changed by
 *   the caller; @file->index, @file->source, @file->name, @file->size and @file->mtime_us must
 *   be those the file was added with
 * @error: (nullable): optional return location for an error
 *
 * Records the progress of one file, by its state:
 * - %AS_SEND_FILE_STATE_SENDING keeps a copy of @file (task id, chunk layout, hash state),
 *   replacing any earlier one; call it when the file starts and when the hash state moves on;
 * - %AS_SEND_FILE_STATE_DONE (with @file->sha256) and %AS_SEND_FILE_STATE_FAILED (with
 *   @file->error, cut to %AS_SEND_STATE_ERROR_MAX bytes) finish the file for good;
 * - %AS_SEND_FILE_STATE_PENDING forgets that the file had started, e.g. when its source
 *   changed and it must start over under a new task id.
 *
 * Nothing is written here: see as_send_state_save_throttled().
 *
 * Returns: %TRUE on success; %AS_ERROR_CONFLICT if the file had already finished
 **/
gboolean
as_send_state_update_file(AsSendState *self, const AsSendFile *file, GError **error)
{
	g_autoptr(GString) line = NULL;
	g_autofree gchar *message = NULL;
	AsSendFile *copy;

	g_return_val_if_fail(AS_IS_SEND_STATE(self), FALSE);
	g_return_val_if_fail(file != NULL, FALSE);
	g_return_val_if_fail(error == NULL || *error == NULL, FALSE);

	if (file->index >= self->n_files) {
		g_set_error(error, AS_ERROR, AS_ERROR_NOT_FOUND,
			    "transfer %s has no file %" G_GUINT64_FORMAT, self->transfer_id,
			    file->index);
		return FALSE;
	}
	if (as_send_state_bits_get(self->finished, file->index)) {
		g_set_error(error, AS_ERROR, AS_ERROR_CONFLICT,
			    "file %" G_GUINT64_FORMAT " of transfer %s has already finished",
			    file->index, self->transfer_id);
		return FALSE;
	}
	if (!as_send_state_check_paths(file->source, file->name, error))
		return FALSE;

	switch (file->state) {
	case AS_SEND_FILE_STATE_PENDING:
		g_hash_table_remove(self->sending, &file->index);
		break;
	case AS_SEND_FILE_STATE_SENDING:
		if (!as_send_state_check_sending(file, error))
			return FALSE;
		copy = as_send_file_copy(file);
		g_clear_pointer(&copy->sha256, g_free);
		g_clear_pointer(&copy->error, g_free);
		g_hash_table_replace(self->sending, &copy->index, copy);
		break;
	case AS_SEND_FILE_STATE_DONE:
	case AS_SEND_FILE_STATE_FAILED:
		line = g_string_new(NULL);
		as_send_state_append_common(line, file);
		if (file->state == AS_SEND_FILE_STATE_DONE) {
			g_autofree gchar *sha256 = NULL;
			if (!as_sha256_hex_is_valid(file->sha256)) {
				g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
					    "file %" G_GUINT64_FORMAT
					    " is done without a valid SHA-256",
					    file->index);
				return FALSE;
			}
			sha256 = g_ascii_strdown(file->sha256, -1);
			g_string_append_printf(line, "\tdone\t%s\n", sha256);
		} else {
			g_autofree gchar *escaped = NULL;
			if (file->error == NULL) {
				g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
					    "file %" G_GUINT64_FORMAT " failed without an error",
					    file->index);
				return FALSE;
			}
			message = as_send_state_truncate(file->error, AS_SEND_STATE_ERROR_MAX);
			escaped = g_strescape(message, NULL);
			g_string_append_printf(line, "\tfailed\t%s\n", escaped);
		}
		if (!as_send_state_list_append(self, &self->done, line, error))
			return FALSE;
		as_send_state_bits_set(self->finished, file->index);
		if (file->state == AS_SEND_FILE_STATE_DONE) {
			self->n_done++;
			self->bytes_done += file->size;
		} else {
			as_send_state_bits_set(self->failed, file->index);
			self->n_failed++;
		}
		g_hash_table_remove(self->sending, &file->index);
		break;
	default:
		g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
			    "file %" G_GUINT64_FORMAT " has an unknown state %d", file->index,
			    (gint)file->state);
		return FALSE;
	}
	self->dirty = TRUE;
	return TRUE;
}

/**
 * as_send_state_file_iter_new:
 * @self: a #AsSendState
 * @kind: #AsSendStateIterKind
 * @error: (nullable): optional return location for an error
 *
 * Starts reading the file list from disk, a buffer at a time. The iterator sees files added
 * and finished after it was created, as long as it has not reached its end yet. Files that
 * finish while an %AS_SEND_STATE_ITER_PENDING iteration is under way are skipped if it has
 * not passed them.
 *
 * Returns: (transfer full): a new iterator, or %NULL on error
 **/
AsSendStateFileIter *
as_send_state_file_iter_new(AsSendState *self, AsSendStateIterKind kind, GError **error)
{
	AsSendStateFileIter *iter;
	g_autofree gchar *path = NULL;
	const gchar *suffix;
	int fd;

	g_return_val_if_fail(AS_IS_SEND_STATE(self), NULL);
	g_return_val_if_fail(error == NULL || *error == NULL, NULL);

	suffix = kind == AS_SEND_STATE_ITER_PENDING ? AS_SEND_STATE_SUFFIX_FILES
						    : AS_SEND_STATE_SUFFIX_DONE;
	path = as_send_state_path(self, suffix);
	fd = g_open(path, O_RDONLY | O_CLOEXEC, 0);
	if (fd < 0) {
		int errsv = errno;
		g_set_error(error, AS_ERROR, AS_ERROR_IO, "failed to open %s: %s", path,
			    g_strerror(errsv));
		return NULL;
	}
	iter = g_new0(AsSendStateFileIter, 1);
	iter->state = g_object_ref(self);
	iter->kind = kind;
	as_send_state_reader_init(&iter->reader, fd, suffix);
	return iter;
}

/**
 * as_send_state_file_iter_next:
 * @iter: a #AsSendStateFileIter
 * @file: (out) (transfer full) (nullable): the next file, or %NULL at the end
 * @error: (nullable): optional return location for an error
 *
 * Reads the next file. %AS_SEND_STATE_ITER_PENDING gives pending files and, for files being
 * sent, their saved record with task id and hash state; %AS_SEND_STATE_ITER_FINISHED gives done
 * files with their SHA-256 and failed ones with their error.
 *
 * Returns: %TRUE on success, with *@file %NULL at the end; %FALSE if a list is unreadable or
 *   corrupt
 **/
gboolean
as_send_state_file_iter_next(AsSendStateFileIter *iter, AsSendFile **file, GError **error)
{
	AsSendState *self;

	g_return_val_if_fail(iter != NULL, FALSE);
	g_return_val_if_fail(file != NULL, FALSE);
	g_return_val_if_fail(error == NULL || *error == NULL, FALSE);

	self = iter->state;
	*file = NULL;
	while (TRUE) {
		AsSendStateList *list =
			iter->kind == AS_SEND_STATE_ITER_PENDING ? &self->files : &self->done;
		g_autoptr(AsSendFile) found = NULL;
		const AsSendFile *sending;
		gchar *line = NULL;

		/* lines still in the append buffer must be readable too */
		if (!as_send_state_list_flush(self, list, error))
			return FALSE;
		if (!as_send_state_reader_next(&iter->reader, list->written, &line, error)) {
			g_prefix_error(error, "failed to read send state %s: ", self->transfer_id);
			return FALSE;
		}
		if (line == NULL) {
			if (iter->kind == AS_SEND_STATE_ITER_PENDING &&
			    iter->next_index != self->n_files) {
				as_send_state_corrupt(error,
						      "%s lists %" G_GUINT64_FORMAT
						      " files, expected %" G_GUINT64_FORMAT,
						      list->suffix, iter->next_index,
						      self->n_files);
				g_prefix_error(error,
					       "failed to read send state %s: ", self->transfer_id);
				return FALSE;
			}
			return TRUE;
		}
		found = as_send_state_parse_line(line, iter->kind, error);
		if (found == NULL) {
			g_prefix_error(error,
				       "failed to read send state %s: line %" G_GUINT64_FORMAT
				       " of %s: ",
				       self->transfer_id, iter->reader.line_no, list->suffix);
			return FALSE;
		}
		if (iter->kind == AS_SEND_STATE_ITER_FINISHED) {
			*file = g_steal_pointer(&found);
			return TRUE;
		}
		if (found->index != iter->next_index) {
			as_send_state_corrupt(error,
					      "line %" G_GUINT64_FORMAT
					      " of %s is file %" G_GUINT64_FORMAT,
					      iter->reader.line_no, list->suffix, found->index);
			g_prefix_error(error, "failed to read send state %s: ", self->transfer_id);
			return FALSE;
		}
		iter->next_index++;
		if (as_send_state_bits_get(self->finished, found->index))
			continue;
		sending = g_hash_table_lookup(self->sending, &found->index);
		*file = sending != NULL ? as_send_file_copy(sending) : g_steal_pointer(&found);
		return TRUE;
	}
}

/**
 * as_send_state_file_iter_free:
 * @iter: (nullable): a #AsSendStateFileIter
 *
 * Frees the iterator and closes its file.
 **/
void
as_send_state_file_iter_free(AsSendStateFileIter *iter)
{
	if (iter == NULL)
		return;
	as_send_state_reader_clear(&iter->reader);
	g_object_unref(iter->state);
	g_free(iter);
}

/* reads the key file into @self */
static gboolean
as_send_state_from_keyfile(AsSendState *self,
			   GKeyFile *kf,
			   guint64 *files_len,
			   guint64 *finished,
			   guint64 *done_len,
			   GError **error)
{
	g_auto(GStrv) groups = NULL;
	g_autofree gchar *version = NULL;
	g_autofree gchar *id = NULL;
	g_autofree gchar *options_b64 = NULL;
	g_autofree gchar *created = NULL;
	g_autofree gchar *n_files = NULL;
	g_autofree gchar *files_bytes = NULL;
	g_autofree gchar *total = NULL;
	g_autofree gchar *n_finished = NULL;
	g_autofree gchar *finished_bytes = NULL;
	g_autofree guchar *options_data = NULL;
	g_autoptr(GBytes) options_bytes = NULL;
	g_autoptr(GVariant) options = NULL;
	gsize options_len = 0;
	guint64 version_num = 0;
	GError *error_local = NULL;

	if (!g_key_file_has_group(kf, AS_SEND_STATE_GROUP))
		return as_send_state_corrupt(error, "no [" AS_SEND_STATE_GROUP "] group");
	version = g_key_file_get_string(kf, AS_SEND_STATE_GROUP, AS_SEND_STATE_KEY_VERSION, NULL);
	if (!as_send_state_parse_u64(version, G_MAXUINT32, &version_num, AS_SEND_STATE_KEY_VERSION,
				     error))
		return FALSE;
	if (version_num != AS_SEND_STATE_VERSION) {
		g_set_error(error, AS_ERROR, AS_ERROR_NOT_SUPPORTED,
			    "version %" G_GUINT64_FORMAT ", this build reads version %u",
			    version_num, (guint)AS_SEND_STATE_VERSION);
		return FALSE;
	}
	id = g_key_file_get_string(kf, AS_SEND_STATE_GROUP, AS_SEND_STATE_KEY_ID, NULL);
	if (g_strcmp0(id, self->transfer_id) != 0)
		return as_send_state_corrupt(error, "it belongs to transfer '%s'",
					     id != NULL ? id : "");
	self->destination =
		g_key_file_get_string(kf, AS_SEND_STATE_GROUP, AS_SEND_STATE_KEY_DEST, NULL);
	if (self->destination == NULL || self->destination[0] == '\0')
		return as_send_state_corrupt(error, "no destination");

	options_b64 =
		g_key_file_get_string(kf, AS_SEND_STATE_GROUP, AS_SEND_STATE_KEY_OPTIONS, NULL);
	if (options_b64 == NULL)
		return as_send_state_corrupt(error, "no options");
	options_data = g_base64_decode(options_b64, &options_len);
	options_bytes = g_bytes_new_take(g_steal_pointer(&options_data), options_len);
	options = g_variant_ref_sink(
		g_variant_new_from_bytes(G_VARIANT_TYPE_VARDICT, options_bytes, FALSE));
	if (!g_variant_is_normal_form(options))
		return as_send_state_corrupt(error, "the options are not a valid a{sv}");
	self->options = g_steal_pointer(&options);

	created = g_key_file_get_string(kf, AS_SEND_STATE_GROUP, AS_SEND_STATE_KEY_CREATED, NULL);
	n_files = g_key_file_get_string(kf, AS_SEND_STATE_GROUP, AS_SEND_STATE_KEY_FILES, NULL);
	files_bytes =
		g_key_file_get_string(kf, AS_SEND_STATE_GROUP, AS_SEND_STATE_KEY_FILES_LEN, NULL);
	total = g_key_file_get_string(kf, AS_SEND_STATE_GROUP, AS_SEND_STATE_KEY_TOTAL, NULL);
	n_finished =
		g_key_file_get_string(kf, AS_SEND_STATE_GROUP, AS_SEND_STATE_KEY_FINISHED, NULL);
	finished_bytes =
		g_key_file_get_string(kf, AS_SEND_STATE_GROUP, AS_SEND_STATE_KEY_DONE_LEN, NULL);
	if (!as_send_state_parse_i64(created, &self->created_us, AS_SEND_STATE_KEY_CREATED,
				     error) ||
	    !as_send_state_parse_u64(n_files, G_MAXUINT32 * G_GUINT64_CONSTANT(8), &self->n_files,
				     AS_SEND_STATE_KEY_FILES, error) ||
	    !as_send_state_parse_u64(files_bytes, G_MAXINT64, files_len,
				     AS_SEND_STATE_KEY_FILES_LEN, error) ||
	    !as_send_state_parse_u64(total, G_MAXUINT64, &self->bytes_total,
				     AS_SEND_STATE_KEY_TOTAL, error) ||
	    !as_send_state_parse_u64(n_finished, self->n_files, finished,
				     AS_SEND_STATE_KEY_FINISHED, error) ||
	    !as_send_state_parse_u64(finished_bytes, G_MAXINT64, done_len,
				     AS_SEND_STATE_KEY_DONE_LEN, error))
		return FALSE;
	self->files_complete = g_key_file_get_boolean(kf, AS_SEND_STATE_GROUP,
						      AS_SEND_STATE_KEY_COMPLETE, &error_local);
	if (error_local != NULL) {
		g_error_free(error_local);
		return as_send_state_corrupt(error, AS_SEND_STATE_KEY_COMPLETE " is not a boolean");
	}
	as_send_state_bits_grow(self->finished, self->n_files);
	as_send_state_bits_grow(self->failed, self->n_files);

	/* the files being sent */
	groups = g_key_file_get_groups(kf, NULL);
	for (guint i = 0; groups[i] != NULL; i++) {
		g_autoptr(AsSendFile) file = NULL;
		g_autofree gchar *source = NULL;
		g_autofree gchar *name = NULL;
		g_autofree gchar *size = NULL;
		g_autofree gchar *mtime = NULL;
		g_autofree gchar *state = NULL;
		g_autofree gchar *chunk = NULL;
		g_autofree gchar *chunks = NULL;
		g_autofree gchar *hashed = NULL;
		g_autofree gchar *hash = NULL;
		guint64 value = 0;

		if (g_strcmp0(groups[i], AS_SEND_STATE_GROUP) == 0)
			continue;
		if (!g_str_has_prefix(groups[i], AS_SEND_STATE_FILE_GROUP))
			return as_send_state_corrupt(error, "unknown group [%s]", groups[i]);
		file = g_new0(AsSendFile, 1);
		if (!as_send_state_parse_u64(groups[i] + strlen(AS_SEND_STATE_FILE_GROUP),
					     G_MAXUINT64, &file->index, groups[i], error))
			return FALSE;
		if (file->index >= self->n_files)
			return as_send_state_corrupt(
				error, "[%s] is beyond the %" G_GUINT64_FORMAT " files", groups[i],
				self->n_files);
		if (g_hash_table_contains(self->sending, &file->index))
			return as_send_state_corrupt(error, "[%s] appears twice", groups[i]);
		source = g_key_file_get_string(kf, groups[i], AS_SEND_STATE_KEY_SOURCE, NULL);
		name = g_key_file_get_string(kf, groups[i], AS_SEND_STATE_KEY_NAME, NULL);
		if (source == NULL || name == NULL)
			return as_send_state_corrupt(error, "[%s] has no source or name",
						     groups[i]);
		file->source = as_send_state_unescape(source, "source", error);
		if (file->source == NULL)
			return FALSE;
		file->name = as_send_state_unescape(name, "name", error);
		if (file->name == NULL)
			return FALSE;
		if (!as_send_state_check_paths(file->source, file->name, error))
			return FALSE;
		size = g_key_file_get_string(kf, groups[i], AS_SEND_STATE_KEY_SIZE, NULL);
		mtime = g_key_file_get_string(kf, groups[i], AS_SEND_STATE_KEY_MTIME, NULL);
		chunk = g_key_file_get_string(kf, groups[i], AS_SEND_STATE_KEY_CHUNK, NULL);
		chunks = g_key_file_get_string(kf, groups[i], AS_SEND_STATE_KEY_CHUNKS, NULL);
		hashed = g_key_file_get_string(kf, groups[i], AS_SEND_STATE_KEY_HASHED, NULL);
		if (!as_send_state_parse_u64(size, G_MAXUINT64, &file->size, AS_SEND_STATE_KEY_SIZE,
					     error) ||
		    !as_send_state_parse_i64(mtime, &file->mtime_us, AS_SEND_STATE_KEY_MTIME,
					     error) ||
		    !as_send_state_parse_u64(chunk, G_MAXUINT64, &file->chunk_size,
					     AS_SEND_STATE_KEY_CHUNK, error))
			return FALSE;
		if (!as_send_state_parse_u64(chunks, G_MAXUINT32, &value, AS_SEND_STATE_KEY_CHUNKS,
					     error))
			return FALSE;
		file->total_chunks = (guint32)value;
		if (!as_send_state_parse_u64(hashed, G_MAXUINT32, &value, AS_SEND_STATE_KEY_HASHED,
					     error))
			return FALSE;
		file->hashed_chunks = (guint32)value;
		state = g_key_file_get_string(kf, groups[i], AS_SEND_STATE_KEY_STATE, NULL);
		if (g_strcmp0(state, as_send_file_state_to_string(AS_SEND_FILE_STATE_SENDING)) != 0)
			return as_send_state_corrupt(error, "[%s] is not in state sending",
						     groups[i]);
		file->state = AS_SEND_FILE_STATE_SENDING;
		file->task_id =
			g_key_file_get_string(kf, groups[i], AS_SEND_STATE_KEY_TASK_ID, NULL);
		hash = g_key_file_get_string(kf, groups[i], AS_SEND_STATE_KEY_HASH, NULL);
		if (hash != NULL) {
			gsize hash_len = 0;
			guchar *hash_data = g_base64_decode(hash, &hash_len);
			file->hash_state = g_bytes_new_take(hash_data, hash_len);
		}
		if (!as_send_state_check_sending(file, error)) {
			g_prefix_error(error, "corrupt: ");
			return FALSE;
		}
		g_hash_table_replace(self->sending, &file->index, file);
		(void)g_steal_pointer(&file);
	}
	return TRUE;
}

/* reads the journal of finished files into the bitmaps and counters */
static gboolean
as_send_state_load_finished(AsSendState *self, guint64 finished, GError **error)
{
	g_autoptr(AsSendStateFileIter) iter = NULL;
	guint64 n = 0;

	iter = as_send_state_file_iter_new(self, AS_SEND_STATE_ITER_FINISHED, error);
	if (iter == NULL)
		return FALSE;
	while (TRUE) {
		g_autoptr(AsSendFile) file = NULL;
		if (!as_send_state_file_iter_next(iter, &file, error))
			return FALSE;
		if (file == NULL)
			break;
		if (file->index >= self->n_files ||
		    as_send_state_bits_get(self->finished, file->index) ||
		    g_hash_table_contains(self->sending, &file->index))
			return as_send_state_corrupt(
				error, "file %" G_GUINT64_FORMAT " cannot finish here",
				file->index);
		as_send_state_bits_set(self->finished, file->index);
		if (file->state == AS_SEND_FILE_STATE_DONE) {
			self->n_done++;
			self->bytes_done += file->size;
		} else {
			as_send_state_bits_set(self->failed, file->index);
			self->n_failed++;
		}
		n++;
	}
	if (n != finished)
		return as_send_state_corrupt(error,
					     "%" G_GUINT64_FORMAT
					     " files finished, the state says %" G_GUINT64_FORMAT,
					     n, finished);
	return TRUE;
}

static AsSendState *
as_send_state_new_internal(const gchar *dir, const gchar *transfer_id)
{
	AsSendState *self = g_object_new(AS_TYPE_SEND_STATE, NULL);
	self->dir = g_strdup(dir);
	self->transfer_id = g_strdup(transfer_id);
	return self;
}

/**
 * as_send_state_new:
 * @dir: the state directory, e.g. `$XDG_STATE_HOME/aerosync/sending`; created 0700
 * @transfer_id: a unique id, see as_send_state_id_is_valid()
 * @destination: where the transfer goes, as the user gave it
 * @options: (nullable): the Send() options, an `a{sv}`; floating references are sunk
 * @error: (nullable): optional return location for an error
 *
 * Creates the resume record of a new transfer and saves it at once, with no files yet.
 * The caller then appends files with as_send_state_add_file() and calls
 * as_send_state_set_files_complete() when the walk is over. An #AsSendState is not
 * thread-safe: use it from one thread.
 *
 * Returns: (transfer full): a new #AsSendState, or %NULL; %AS_ERROR_CONFLICT if a state with
 *   that id exists
 **/
AsSendState *
as_send_state_new(const gchar *dir,
		  const gchar *transfer_id,
		  const gchar *destination,
		  GVariant *options,
		  GError **error)
{
	g_autoptr(AsSendState) self = NULL;
	g_autoptr(GVariant) options_ref = NULL;
	g_autofree gchar *path = NULL;

	g_return_val_if_fail(dir != NULL, NULL);
	g_return_val_if_fail(
		options == NULL || g_variant_is_of_type(options, G_VARIANT_TYPE_VARDICT), NULL);
	g_return_val_if_fail(error == NULL || *error == NULL, NULL);

	if (options != NULL)
		options_ref = g_variant_ref_sink(options);
	if (!as_send_state_check_id(transfer_id, error))
		return NULL;
	if (destination == NULL || destination[0] == '\0') {
		g_set_error_literal(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT, "no destination");
		return NULL;
	}
	if (g_mkdir_with_parents(dir, AS_SEND_STATE_DIR_MODE) != 0) {
		int errsv = errno;
		g_set_error(error, AS_ERROR, errsv == ENOSPC ? AS_ERROR_NO_SPACE : AS_ERROR_IO,
			    "failed to create %s: %s", dir, g_strerror(errsv));
		return NULL;
	}

	self = as_send_state_new_internal(dir, transfer_id);
	path = as_send_state_path(self, AS_SEND_STATE_SUFFIX_STATE);
	if (g_file_test(path, G_FILE_TEST_EXISTS)) {
		g_set_error(error, AS_ERROR, AS_ERROR_CONFLICT,
			    "a send state for transfer %s exists already", transfer_id);
		return NULL;
	}
	self->destination = g_strdup(destination);
	self->options = options_ref != NULL ? g_variant_get_normal_form(options_ref)
					    : g_variant_ref_sink(g_variant_new("a{sv}", NULL));
	self->created_us = g_get_real_time();

	/* the key file first: lists without it are never looked at, and ones left from an
	 * interrupted deletion are truncated below */
	if (!as_send_state_save(self, error))
		return NULL;
	if (!as_send_state_list_open(self, &self->files, 0, TRUE, error) ||
	    !as_send_state_list_open(self, &self->done, 0, TRUE, error)) {
		g_prefix_error(error, "failed to create send state %s: ", transfer_id);
		return NULL;
	}
	return g_steal_pointer(&self);
}

/**
 * as_send_state_load:
 * @dir: the state directory
 * @transfer_id: a transfer id from as_send_state_list_dir()
 * @error: (nullable): optional return location for an error
 *
 * Loads the last saved state of a transfer. Files appended or finished after that save are
 * dropped from the lists, so what is loaded is always one consistent snapshot. The list of
 * files itself is not read here, only when iterating, and checked as it is read.
 *
 * Returns: (transfer full): the #AsSendState, or %NULL with %AS_ERROR_NOT_FOUND,
 *   %AS_ERROR_NOT_SUPPORTED for a newer version, or %AS_ERROR_INVALID_ARGUMENT when corrupt
 **/
AsSendState *
as_send_state_load(const gchar *dir, const gchar *transfer_id, GError **error)
{
	g_autoptr(AsSendState) self = NULL;
	g_autoptr(GKeyFile) kf = g_key_file_new();
	g_autofree gchar *path = NULL;
	guint64 files_len = 0, finished = 0, done_len = 0;
	struct stat st;

	g_return_val_if_fail(dir != NULL, NULL);
	g_return_val_if_fail(error == NULL || *error == NULL, NULL);

	if (!as_send_state_check_id(transfer_id, error))
		return NULL;
	self = as_send_state_new_internal(dir, transfer_id);
	path = as_send_state_path(self, AS_SEND_STATE_SUFFIX_STATE);
	if (stat(path, &st) != 0) {
		int errsv = errno;
		g_set_error(error, AS_ERROR, errsv == ENOENT ? AS_ERROR_NOT_FOUND : AS_ERROR_IO,
			    "failed to load send state %s: %s", path, g_strerror(errsv));
		return NULL;
	}
	if (st.st_size > AS_SEND_STATE_KEYFILE_MAX) {
		g_set_error(error, AS_ERROR, AS_ERROR_TOO_LARGE,
			    "failed to load send state %s: larger than %u bytes", path,
			    (guint)AS_SEND_STATE_KEYFILE_MAX);
		return NULL;
	}
	if (!g_key_file_load_from_file(kf, path, G_KEY_FILE_NONE, error)) {
		as_error_convert(error);
		g_prefix_error(error, "failed to load send state %s: corrupt: ", path);
		return NULL;
	}
	if (!as_send_state_from_keyfile(self, kf, &files_len, &finished, &done_len, error) ||
	    !as_send_state_list_open(self, &self->files, files_len, FALSE, error) ||
	    !as_send_state_list_open(self, &self->done, done_len, FALSE, error) ||
	    !as_send_state_load_finished(self, finished, error)) {
		g_prefix_error(error, "failed to load send state %s: ", path);
		return NULL;
	}
	self->last_save_us = g_get_monotonic_time();
	return g_steal_pointer(&self);
}

static gint
as_send_state_cmp_str_cb(gconstpointer a, gconstpointer b)
{
	return g_strcmp0(*(const gchar *const *)a, *(const gchar *const *)b);
}

/**
 * as_send_state_list_dir:
 * @dir: the state directory
 * @error: (nullable): optional return location for an error
 *
 * Lists the saved transfers, e.g. to resume them when the daemon starts.
 *
 * Returns: (transfer container) (element-type utf8): transfer ids, sorted; empty when @dir
 *   does not exist
 **/
GPtrArray *
as_send_state_list_dir(const gchar *dir, GError **error)
{
	g_autoptr(GPtrArray) ids = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GDir) gdir = NULL;
	g_autoptr(GError) error_local = NULL;
	const gchar *name;

	g_return_val_if_fail(dir != NULL, NULL);
	g_return_val_if_fail(error == NULL || *error == NULL, NULL);

	gdir = g_dir_open(dir, 0, &error_local);
	if (gdir == NULL) {
		if (g_error_matches(error_local, G_FILE_ERROR, G_FILE_ERROR_NOENT))
			return g_steal_pointer(&ids);
		as_error_convert(&error_local);
		g_propagate_prefixed_error(error, g_steal_pointer(&error_local),
					   "failed to list send states in %s: ", dir);
		return NULL;
	}
	while ((name = g_dir_read_name(gdir)) != NULL) {
		g_autofree gchar *id = NULL;
		if (!g_str_has_suffix(name, AS_SEND_STATE_SUFFIX_STATE))
			continue;
		id = g_strndup(name, strlen(name) - strlen(AS_SEND_STATE_SUFFIX_STATE));
		if (as_send_state_id_is_valid(id))
			g_ptr_array_add(ids, g_steal_pointer(&id));
	}
	g_ptr_array_sort(ids, as_send_state_cmp_str_cb);
	return g_steal_pointer(&ids);
}

/**
 * as_send_state_delete_id:
 * @dir: the state directory
 * @transfer_id: a transfer id
 * @error: (nullable): optional return location for an error
 *
 * Removes the saved state of a transfer, e.g. one that as_send_state_load() found corrupt.
 * The key file goes first, so an interrupted deletion leaves nothing that is listed.
 *
 * Returns: %TRUE on success, also when there was nothing to remove
 **/
gboolean
as_send_state_delete_id(const gchar *dir, const gchar *transfer_id, GError **error)
{
	const gchar *suffixes[] = {AS_SEND_STATE_SUFFIX_STATE, AS_SEND_STATE_SUFFIX_FILES,
				   AS_SEND_STATE_SUFFIX_DONE};

	g_return_val_if_fail(dir != NULL, FALSE);
	g_return_val_if_fail(error == NULL || *error == NULL, FALSE);

	if (!as_send_state_check_id(transfer_id, error))
		return FALSE;
	for (guint i = 0; i < G_N_ELEMENTS(suffixes); i++) {
		g_autofree gchar *basename = g_strconcat(transfer_id, suffixes[i], NULL);
		g_autofree gchar *path = g_build_filename(dir, basename, NULL);
		if (g_unlink(path) != 0 && errno != ENOENT) {
			int errsv = errno;
			g_set_error(error, AS_ERROR, AS_ERROR_IO, "failed to delete %s: %s", path,
				    g_strerror(errsv));
			return FALSE;
		}
	}
	return TRUE;
}

/**
 * as_send_state_delete:
 * @self: a #AsSendState
 * @error: (nullable): optional return location for an error
 *
 * Removes the saved state, e.g. when the transfer completed or was cancelled. @self must not
 * be saved again afterwards.
 *
 * Returns: %TRUE on success
 **/
gboolean
as_send_state_delete(AsSendState *self, GError **error)
{
	g_return_val_if_fail(AS_IS_SEND_STATE(self), FALSE);
	self->dirty = FALSE;
	return as_send_state_delete_id(self->dir, self->transfer_id, error);
}

/**
 * as_send_state_get_transfer_id:
 * @self: a #AsSendState
 *
 * Returns: the transfer id
 **/
const gchar *
as_send_state_get_transfer_id(AsSendState *self)
{
	g_return_val_if_fail(AS_IS_SEND_STATE(self), NULL);
	return self->transfer_id;
}

/**
 * as_send_state_get_destination:
 * @self: a #AsSendState
 *
 * Returns: the destination given at creation
 **/
const gchar *
as_send_state_get_destination(AsSendState *self)
{
	g_return_val_if_fail(AS_IS_SEND_STATE(self), NULL);
	return self->destination;
}

/**
 * as_send_state_get_options:
 * @self: a #AsSendState
 *
 * Returns: (transfer none): the options given at creation, an `a{sv}`
 **/
GVariant *
as_send_state_get_options(AsSendState *self)
{
	g_return_val_if_fail(AS_IS_SEND_STATE(self), NULL);
	return self->options;
}

/**
 * as_send_state_get_created_us:
 * @self: a #AsSendState
 *
 * Returns: when the transfer was created, in microseconds since the epoch
 **/
gint64
as_send_state_get_created_us(AsSendState *self)
{
	g_return_val_if_fail(AS_IS_SEND_STATE(self), 0);
	return self->created_us;
}

/**
 * as_send_state_get_n_files:
 * @self: a #AsSendState
 *
 * Returns: the number of files added
 **/
guint64
as_send_state_get_n_files(AsSendState *self)
{
	g_return_val_if_fail(AS_IS_SEND_STATE(self), 0);
	return self->n_files;
}

/**
 * as_send_state_get_bytes_total:
 * @self: a #AsSendState
 *
 * Returns: the sum of the sizes of the files added
 **/
guint64
as_send_state_get_bytes_total(AsSendState *self)
{
	g_return_val_if_fail(AS_IS_SEND_STATE(self), 0);
	return self->bytes_total;
}

/**
 * as_send_state_get_n_done:
 * @self: a #AsSendState
 *
 * Returns: the number of files done
 **/
guint64
as_send_state_get_n_done(AsSendState *self)
{
	g_return_val_if_fail(AS_IS_SEND_STATE(self), 0);
	return self->n_done;
}

/**
 * as_send_state_get_n_failed:
 * @self: a #AsSendState
 *
 * Returns: the number of files failed
 **/
guint64
as_send_state_get_n_failed(AsSendState *self)
{
	g_return_val_if_fail(AS_IS_SEND_STATE(self), 0);
	return self->n_failed;
}

/**
 * as_send_state_get_bytes_done:
 * @self: a #AsSendState
 *
 * Returns: the sum of the sizes of the files done; partial files are not counted
 **/
guint64
as_send_state_get_bytes_done(AsSendState *self)
{
	g_return_val_if_fail(AS_IS_SEND_STATE(self), 0);
	return self->bytes_done;
}

/**
 * as_send_state_get_files_complete:
 * @self: a #AsSendState
 *
 * Returns: %TRUE once as_send_state_set_files_complete() was called
 **/
gboolean
as_send_state_get_files_complete(AsSendState *self)
{
	g_return_val_if_fail(AS_IS_SEND_STATE(self), FALSE);
	return self->files_complete;
}

/**
 * as_send_state_set_files_complete:
 * @self: a #AsSendState
 *
 * Records that every file of the transfer has been added; no more can be.
 **/
void
as_send_state_set_files_complete(AsSendState *self)
{
	g_return_if_fail(AS_IS_SEND_STATE(self));
	if (self->files_complete)
		return;
	self->files_complete = TRUE;
	self->dirty = TRUE;
}

static void
as_send_state_list_clear(AsSendStateList *list)
{
	if (list->fd >= 0)
		g_close(list->fd, NULL);
	list->fd = -1;
	g_string_free(list->pending, TRUE);
}

static void
as_send_state_finalize(GObject *object)
{
	AsSendState *self = AS_SEND_STATE(object);

	if (self->dirty)
		g_debug("send state %s dropped with unsaved changes", self->transfer_id);
	as_send_state_list_clear(&self->files);
	as_send_state_list_clear(&self->done);
	g_hash_table_unref(self->sending);
	g_byte_array_unref(self->finished);
	g_byte_array_unref(self->failed);
	g_clear_pointer(&self->options, g_variant_unref);
	g_free(self->dir);
	g_free(self->transfer_id);
	g_free(self->destination);
	G_OBJECT_CLASS(as_send_state_parent_class)->finalize(object);
}

static void
as_send_state_class_init(AsSendStateClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);
	object_class->finalize = as_send_state_finalize;
}

static void
as_send_state_init(AsSendState *self)
{
	self->sending = g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL,
					      (GDestroyNotify)as_send_file_free);
	self->finished = g_byte_array_new();
	self->failed = g_byte_array_new();
	self->files.suffix = AS_SEND_STATE_SUFFIX_FILES;
	self->files.fd = -1;
	self->files.pending = g_string_new(NULL);
	self->done.suffix = AS_SEND_STATE_SUFFIX_DONE;
	self->done.fd = -1;
	self->done.pending = g_string_new(NULL);
}
