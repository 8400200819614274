/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "AsChunkStore"

#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "as-chunk-store.h"
#include "as-error.h"
#include "as-path.h"
#include "as-publish.h"
#include "as-sha256-state.h"
#include "as-sha256.h"
#include "as-write-behind.h"

/* modes of what we create: the receive dir is shared, staging is private */
#define AS_CHUNK_STORE_RECEIVE_DIR_MODE 0755
#define AS_CHUNK_STORE_STAGING_DIR_MODE 0700
/* the umask applies; staged files are private anyway because the staging dir is 0700,
 * and a published file must end up with the mode any new file of the user gets */
#define AS_CHUNK_STORE_FILE_MODE 0666

/* largest .meta or .done key file we agree to read */
#define AS_CHUNK_STORE_KEYFILE_MAX (64 * 1024)

/* attempts at finding a free random temp name */
#define AS_CHUNK_STORE_TEMP_ATTEMPTS 100

#define AS_CHUNK_STORE_TEMP_PREFIX "upload-"
#define AS_CHUNK_STORE_TEMP_SUFFIX ".part"
#define AS_CHUNK_STORE_SUFFIX_DATA ".data"
#define AS_CHUNK_STORE_SUFFIX_MAP  ".map"
#define AS_CHUNK_STORE_SUFFIX_META ".meta"
#define AS_CHUNK_STORE_SUFFIX_DONE ".done"
#define AS_CHUNK_STORE_SUFFIX_HASH ".hash"
#define AS_CHUNK_STORE_SUFFIX_TMP  ".tmp"

#define AS_CHUNK_STORE_GROUP_TASK "task"
#define AS_CHUNK_STORE_GROUP_DONE "done"

/*
 * The .hash file: the running SHA-256 of the chunks [0, hashed_chunks), so /upload/complete
 * only hashes what is left instead of reading the whole file again. One fixed record at
 * offset 0, rewritten with pwrite() after each chunk the hash advances over, integers
 * little-endian:
 *
 *   0  magic "ASCHKHS1"                 56  AsSha256State blob (AS_SHA256_STATE_BLOB_SIZE)
 *   8  u32 hashed_chunks               216  SHA-256 of bytes 0..215
 *  12  u32 reserved, zero
 *  16  boot id, 36 characters and four zero bytes
 *
 * It is not synced, and neither are the data and the map: within one boot the page cache
 * holds what the daemon wrote even if the daemon was killed, so a saved prefix is trusted only
 * when the boot id matches. After a reboot the data may have lost what the record covers,
 * so the hash starts again from the first byte, which also catches such a loss.
 */
#define AS_CHUNK_HASH_MAGIC	   "ASCHKHS1"
#define AS_CHUNK_HASH_MAGIC_LEN	   8
#define AS_CHUNK_HASH_OFF_HASHED   8
#define AS_CHUNK_HASH_OFF_RESERVED 12
#define AS_CHUNK_HASH_OFF_BOOT_ID  16
#define AS_CHUNK_HASH_BOOT_ID_LEN  36
#define AS_CHUNK_HASH_OFF_STATE	   56
#define AS_CHUNK_HASH_OFF_DIGEST   (AS_CHUNK_HASH_OFF_STATE + AS_SHA256_STATE_BLOB_SIZE)
#define AS_CHUNK_HASH_RECORD_SIZE  (AS_CHUNK_HASH_OFF_DIGEST + AS_SHA256_DIGEST_SIZE)

/* the hash workers of all tasks share a pool of at least this many threads; a task waiting
 * for a thread only hashes later, and complete waits for it */
/* how long a chunk to verify waits for the whole-file hash to reach it, see
 * as_chunk_task_take_hash_for() */
#define AS_CHUNK_FUSE_WAIT_MS	  250
#define AS_CHUNK_HASH_MIN_THREADS 2

/* values of one .map byte */
#define AS_CHUNK_MAP_MISSING 0
#define AS_CHUNK_MAP_DONE    1

typedef enum {
	AS_CHUNK_TASK_STATE_RECEIVING,
	AS_CHUNK_TASK_STATE_COMPLETING,
	AS_CHUNK_TASK_STATE_COMPLETED,
	AS_CHUNK_TASK_STATE_DISCARDED,
} AsChunkTaskState;

struct _AsChunkStore {
	GObject parent_instance;
	gchar *receive_dir;
	int root_fd;
	int staging_fd;
	guint64 max_file_size; /* 0 means no limit */
	GMutex open_mutex;     /* serialises finding or creating a task */
	GMutex tasks_mutex;
	GHashTable *tasks; /* (element-type utf8 GWeakRef) owned, protected by tasks_mutex */
	GHashTable
		*temps; /* (element-type utf8) names of our live temps, protected by tasks_mutex */
};

struct _AsChunkTask {
	GObject parent_instance;
	AsChunkStore *store; /* owned */
	gchar *id;
	gchar *rel_path;
	guint64 total_size;
	guint64 chunk_size;
	guint32 total_chunks;
	int data_fd; /* kept open until finalize, also after the file is published */
	int map_fd;  /* -1 for an ephemeral task */
	int hash_fd; /* the .hash record, -1 if it could not be opened: then nothing is saved */

	/*
	 * A task of one chunk is ephemeral: it has its .data file and nothing else, no map, no
	 * .hash, no .meta. Resuming it would mean sending its only chunk again anyway, and the
	 * resume state made up most of the cost of a small file (three more files, a synced key
	 * file, the hash worker reading the chunk back). After a restart it is simply not found.
	 */
	gboolean ephemeral;
	gboolean ephemeral_done; /* the map of an ephemeral task; protected by mutex */
	gchar *ephemeral_sha256; /* nullable: the digest its writer computed; protected by mutex */

	/* protected by mutex */
	GMutex mutex;
	AsChunkTaskState state;
	guint32 done_count;
	guint64 bytes_done;
	GHashTable *in_flight; /* (element-type guint AsChunkClaimRec) owned, bounded by
				  AS_CHUNK_TASK_MAX_IN_FLIGHT */
	guint n_stale;	       /* claims taken over and not ended, in all records */
	guint64 last_claim_id;
	gchar *published_rel_path; /* nullable */
	gchar *sha256;		   /* nullable */
	gchar *computed_sha256;	   /* nullable, what a failed verification found */

	/* written behind the hash: only the thread hashing touches it */
	AsWriteBehind behind;
	gboolean behind_ready;

	/* the whole-file SHA-256 follows the chunks as they land: a worker advances it over
	 * every chunk that is done and next in order, reading it back from the page cache */
	AsSha256State *prefix_hash; /* owned: SHA-256 of the chunks [0, hashed_chunks) */
	guint32 hashed_chunks;
	gboolean hash_busy; /* one thread owns prefix_hash and advances it */
	GCond hash_cond;    /* signalled when hash_busy drops */
};

/*
 * A chunk being received. A request claims it with as_chunk_task_begin_chunk() and releases it
 * with as_chunk_task_end_chunk(). A sender that died mid-chunk may leave its claim behind for a
 * long time (a QUIC connection lingers until its idle timeout), so a new claim for the same
 * chunk takes it over: the old owner is cancelled and its claim becomes stale.
 *
 * Why a takeover cannot corrupt the chunk: the old owner's writer may be inside a pwrite() of
 * the same range at that very moment, and nothing can interrupt that. Cancelling tells the old
 * owner to stop (it aborts its writer, or shuts its socket) and to end its claim once no write
 * of it can still reach the file; its success never counts. The new owner was told to hash what
 * it writes (AsChunkClaim.verify); its end counts only once no stale claim of the chunk is left,
 * and after the chunk is read back from the disk and matches that digest. A late write of the
 * old owner therefore either happened before that read or not at all. This only costs a read of
 * the chunk after a takeover; chunks received normally are never read back.
 */
typedef struct {
	guint64 owner;		   /* claim id of the current owner, 0 for none */
	GCancellable *cancellable; /* owned, nullable: the current owner's */
	gboolean tainted;	   /* the owner began while a stale claim was left */
	GArray *stale; /* (element-type guint64) owned, nullable: taken over, not ended */
} AsChunkClaimRec;

static void
as_chunk_claim_rec_free(gpointer data)
{
	AsChunkClaimRec *rec = data;
	g_clear_object(&rec->cancellable);
	if (rec->stale != NULL)
		g_array_unref(rec->stale);
	g_free(rec);
}

G_DEFINE_TYPE(AsChunkStore, as_chunk_store, G_TYPE_OBJECT)
G_DEFINE_TYPE(AsChunkTask, as_chunk_task, G_TYPE_OBJECT)

/* task file suffixes, for removal and cleanup */
static const gchar *const as_chunk_store_task_suffixes[] = {
	AS_CHUNK_STORE_SUFFIX_DATA, AS_CHUNK_STORE_SUFFIX_MAP,
	AS_CHUNK_STORE_SUFFIX_META, AS_CHUNK_STORE_SUFFIX_META AS_CHUNK_STORE_SUFFIX_TMP,
	AS_CHUNK_STORE_SUFFIX_HASH,
};

static void as_chunk_store_set_error_errno(GError **error, int errsv, const gchar *format, ...)
	G_GNUC_PRINTF(3, 4);

/* maps an errno onto AS_ERROR; the message is "<format>: <strerror>" */
static void
as_chunk_store_set_error_errno(GError **error, int errsv, const gchar *format, ...)
{
	va_list args;
	g_autofree gchar *what = NULL;
	AsError code;

	va_start(args, format);
	what = g_strdup_vprintf(format, args);
	va_end(args);
	switch (errsv) {
	case ENOSPC:
	case EDQUOT:
		g_set_error(error, AS_ERROR, AS_ERROR_NO_SPACE,
			    "%s: no space left on the receiving disk", what);
		return;
	case ENOENT:
		code = AS_ERROR_NOT_FOUND;
		break;
	case EACCES:
	case EPERM:
		code = AS_ERROR_PERMISSION_DENIED;
		break;
	case EFBIG:
		code = AS_ERROR_TOO_LARGE;
		break;
	default:
		code = AS_ERROR_IO;
		break;
	}
	g_set_error(error, AS_ERROR, code, "%s: %s", what, g_strerror(errsv));
}

/**
 * as_chunk_store_task_id_is_valid:
 * @task_id: (nullable): a client-supplied task id
 *
 * Task ids become file names in the staging folder, so they are restricted to 1 to
 * %AS_CHUNK_STORE_TASK_ID_MAX characters of [A-Za-z0-9_-] (a UUID fits).
 *
 * Returns: %TRUE if @task_id is acceptable
 **/
gboolean
as_chunk_store_task_id_is_valid(const gchar *task_id)
{
	gsize len = 0;

	if (task_id == NULL)
		return FALSE;
	for (const gchar *p = task_id; *p != '\0'; p++, len++) {
		if (len >= AS_CHUNK_STORE_TASK_ID_MAX)
			return FALSE;
		if (!g_ascii_isalnum(*p) && *p != '_' && *p != '-')
			return FALSE;
	}
	return len > 0;
}

static gboolean
as_chunk_store_check_task_id(const gchar *task_id, GError **error)
{
	if (as_chunk_store_task_id_is_valid(task_id))
		return TRUE;
	g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
		    "task id must be 1 to %u characters of A-Z, a-z, 0-9, '_' and '-'",
		    (guint)AS_CHUNK_STORE_TASK_ID_MAX);
	return FALSE;
}

static gchar *
as_chunk_store_task_file(const gchar *task_id, const gchar *suffix)
{
	return g_strconcat(task_id, suffix, NULL);
}

static void
as_chunk_store_unlink(AsChunkStore *self, const gchar *name)
{
	if (unlinkat(self->staging_fd, name, 0) < 0 && errno != ENOENT)
		g_debug("failed to remove staging file %s: %s", name, g_strerror(errno));
}

static void
as_chunk_store_remove_task_files(AsChunkStore *self, const gchar *task_id)
{
	for (guint i = 0; i < G_N_ELEMENTS(as_chunk_store_task_suffixes); i++) {
		g_autofree gchar *name =
			as_chunk_store_task_file(task_id, as_chunk_store_task_suffixes[i]);
		as_chunk_store_unlink(self, name);
	}
}

static gboolean
as_chunk_store_write_all(int fd, const gchar *data, gsize len, GError **error)
{
	while (len > 0) {
		gssize n = write(fd, data, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			as_chunk_store_set_error_errno(error, errno, "failed to write");
			return FALSE;
		}
		data += n;
		len -= (gsize)n;
	}
	return TRUE;
}

/* write to "<name>.tmp", sync, rename: readers see the old or the new file, never a torn one */
static gboolean
as_chunk_store_write_keyfile(AsChunkStore *self,
			     const gchar *name,
			     GKeyFile *keyfile,
			     GError **error)
{
	g_autofree gchar *tmp_name = g_strconcat(name, AS_CHUNK_STORE_SUFFIX_TMP, NULL);
	g_autofree gchar *data = NULL;
	gsize len = 0;
	int fd;

	data = g_key_file_to_data(keyfile, &len, NULL);
	fd = openat(self->staging_fd, tmp_name,
		    O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
		    AS_CHUNK_STORE_FILE_MODE);
	if (fd < 0) {
		as_chunk_store_set_error_errno(error, errno, "failed to create %s", tmp_name);
		return FALSE;
	}
	if (!as_chunk_store_write_all(fd, data, len, error) || fdatasync(fd) < 0) {
		if (error != NULL && *error == NULL)
			as_chunk_store_set_error_errno(error, errno, "failed to sync");
		g_prefix_error(error, "%s: ", tmp_name);
		close(fd);
		as_chunk_store_unlink(self, tmp_name);
		return FALSE;
	}
	close(fd);
	if (renameat(self->staging_fd, tmp_name, self->staging_fd, name) < 0) {
		as_chunk_store_set_error_errno(error, errno, "failed to rename %s", tmp_name);
		as_chunk_store_unlink(self, tmp_name);
		return FALSE;
	}
	return TRUE;
}

static GKeyFile *
as_chunk_store_read_keyfile(AsChunkStore *self, const gchar *name, GError **error)
{
	g_autoptr(GKeyFile) keyfile = g_key_file_new();
	g_autofree gchar *data = NULL;
	struct stat st;
	gsize got = 0;
	int fd;

	fd = openat(self->staging_fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		as_chunk_store_set_error_errno(error, errno, "failed to open %s", name);
		return NULL;
	}
	if (fstat(fd, &st) < 0) {
		as_chunk_store_set_error_errno(error, errno, "failed to stat %s", name);
		close(fd);
		return NULL;
	}
	if (!S_ISREG(st.st_mode) || st.st_size > AS_CHUNK_STORE_KEYFILE_MAX) {
		g_set_error(error, AS_ERROR, AS_ERROR_IO, "%s is not a small regular file", name);
		close(fd);
		return NULL;
	}
	data = g_malloc((gsize)st.st_size + 1);
	while (got < (gsize)st.st_size) {
		gssize n = read(fd, data + got, (gsize)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			as_chunk_store_set_error_errno(error, errno, "failed to read %s", name);
			close(fd);
			return NULL;
		}
		if (n == 0)
			break;
		got += (gsize)n;
	}
	close(fd);
	data[got] = '\0';
	if (!g_key_file_load_from_data(keyfile, data, got, G_KEY_FILE_NONE, error)) {
		as_error_convert(error);
		g_prefix_error(error, "failed to parse %s: ", name);
		return NULL;
	}
	return g_steal_pointer(&keyfile);
}

/* opens (creating if needed) a private directory, refusing symlinks */
static int
as_chunk_store_open_private_dir(int parent_fd, const gchar *name, GError **error)
{
	struct stat st;
	int fd;

	if (mkdirat(parent_fd, name, AS_CHUNK_STORE_STAGING_DIR_MODE) < 0 && errno != EEXIST) {
		as_chunk_store_set_error_errno(error, errno, "failed to create %s", name);
		return -1;
	}
	fd = openat(parent_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		as_chunk_store_set_error_errno(error, errno, "failed to open %s", name);
		return -1;
	}
	/* a folder left by 0.x may be world-readable; staged uploads are nobody else's business */
	if (fstat(fd, &st) == 0 && (st.st_mode & 0777) != AS_CHUNK_STORE_STAGING_DIR_MODE &&
	    fchmod(fd, AS_CHUNK_STORE_STAGING_DIR_MODE) < 0)
		g_debug("failed to make %s private: %s", name, g_strerror(errno));
	return fd;
}

/* a strong reference to the live task with this id, or NULL */
static AsChunkTask *
as_chunk_store_get_live_task(AsChunkStore *self, const gchar *task_id)
{
	AsChunkTask *task = NULL;
	GWeakRef *ref;

	g_mutex_lock(&self->tasks_mutex);
	ref = g_hash_table_lookup(self->tasks, task_id);
	if (ref != NULL)
		task = g_weak_ref_get(ref);
	g_mutex_unlock(&self->tasks_mutex);
	return task;
}

static void
as_chunk_store_weak_ref_free(gpointer data)
{
	GWeakRef *ref = data;
	g_weak_ref_clear(ref);
	g_free(ref);
}

static void
as_chunk_store_register_task(AsChunkStore *self, AsChunkTask *task)
{
	GWeakRef *ref = g_new0(GWeakRef, 1);

	g_weak_ref_init(ref, task);
	g_mutex_lock(&self->tasks_mutex);
	g_hash_table_replace(self->tasks, g_strdup(task->id), ref);
	g_mutex_unlock(&self->tasks_mutex);
}

/* drops the table entry of @task_id unless it points to another live task than @task */
static void
as_chunk_store_unregister_task(AsChunkStore *self, const gchar *task_id, AsChunkTask *task)
{
	AsChunkTask *live = NULL;
	GWeakRef *ref;

	g_mutex_lock(&self->tasks_mutex);
	ref = g_hash_table_lookup(self->tasks, task_id);
	if (ref != NULL) {
		live = g_weak_ref_get(ref);
		if (live == NULL || live == task)
			g_hash_table_remove(self->tasks, task_id);
	}
	g_mutex_unlock(&self->tasks_mutex);

	/* outside the lock: this may be the last reference */
	if (live != NULL)
		g_object_unref(live);
}

static void
as_chunk_task_range_unlocked(AsChunkTask *self, guint32 index, guint64 *offset, guint64 *length)
{
	guint64 start = (guint64)index * self->chunk_size;
	*offset = start;
	*length = MIN(self->chunk_size, self->total_size - start);
}

/* reads one map byte; the map is never held in memory */
static gboolean
as_chunk_task_read_map_byte(AsChunkTask *self, guint32 index, gboolean *done, GError **error)
{
	guint8 value = AS_CHUNK_MAP_MISSING;

	if (self->ephemeral) {
		*done = self->ephemeral_done;
		return TRUE;
	}
	for (;;) {
		gssize n = pread(self->map_fd, &value, 1, (off_t)index);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			as_chunk_store_set_error_errno(
				error, errno, "failed to read the chunk map of task %s", self->id);
			return FALSE;
		}
		if (n == 0) {
			g_set_error(error, AS_ERROR, AS_ERROR_IO,
				    "the chunk map of task %s is truncated", self->id);
			return FALSE;
		}
		break;
	}
	*done = value == AS_CHUNK_MAP_DONE;
	return TRUE;
}

static gboolean
as_chunk_task_write_map_byte(AsChunkTask *self, guint32 index, GError **error)
{
	const guint8 value = AS_CHUNK_MAP_DONE;

	if (self->ephemeral) {
		self->ephemeral_done = TRUE;
		return TRUE;
	}
	for (;;) {
		gssize n = pwrite(self->map_fd, &value, 1, (off_t)index);
		if (n == 1)
			return TRUE;
		if (n < 0 && errno == EINTR)
			continue;
		as_chunk_store_set_error_errno(error, n < 0 ? errno : EIO,
					       "failed to update the chunk map of task %s",
					       self->id);
		return FALSE;
	}
}

/* calls @func for each run of map bytes, read in AS_CHUNK_TASK_MAP_READ_SIZE blocks */
typedef void (*AsChunkTaskMapRunFunc)(
	AsChunkTask *self, guint32 first, guint32 last, gboolean done, gpointer user_data);

static gboolean
as_chunk_task_scan_map(AsChunkTask *self,
		       AsChunkTaskMapRunFunc func,
		       gpointer user_data,
		       GError **error)
{
	g_autofree guint8 *buf = g_malloc(AS_CHUNK_TASK_MAP_READ_SIZE);
	guint32 run_first = 0;
	gboolean run_done = FALSE;
	guint32 pos = 0;

	if (self->ephemeral) {
		g_mutex_lock(&self->mutex);
		run_done = self->ephemeral_done;
		g_mutex_unlock(&self->mutex);
		func(self, 0, 0, run_done, user_data);
		return TRUE;
	}
	while (pos < self->total_chunks) {
		gsize want = MIN((gsize)(self->total_chunks - pos), AS_CHUNK_TASK_MAP_READ_SIZE);
		gssize n = pread(self->map_fd, buf, want, (off_t)pos);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			as_chunk_store_set_error_errno(
				error, errno, "failed to read the chunk map of task %s", self->id);
			return FALSE;
		}
		if (n == 0) {
			g_set_error(error, AS_ERROR, AS_ERROR_IO,
				    "the chunk map of task %s is truncated", self->id);
			return FALSE;
		}
		for (gssize i = 0; i < n; i++, pos++) {
			gboolean done = buf[i] == AS_CHUNK_MAP_DONE;
			if (pos == 0) {
				run_done = done;
				continue;
			}
			if (done != run_done) {
				func(self, run_first, pos - 1, run_done, user_data);
				run_first = pos;
				run_done = done;
			}
		}
	}
	func(self, run_first, self->total_chunks - 1, run_done, user_data);
	return TRUE;
}

static void
as_chunk_task_count_run_cb(
	AsChunkTask *self, guint32 first, guint32 last, gboolean done, gpointer user_data)
{
	guint32 *first_missing = user_data;
	guint64 offset_first, offset_last, length_last;

	if (!done) {
		*first_missing = MIN(*first_missing, first);
		return;
	}
	as_chunk_task_range_unlocked(self, first, &offset_first, &length_last);
	as_chunk_task_range_unlocked(self, last, &offset_last, &length_last);
	self->done_count += last - first + 1;
	self->bytes_done += offset_last + length_last - offset_first;
}

/* the kernel's boot id, or NULL where there is none: then no saved hash is ever trusted */
static const gchar *
as_chunk_store_boot_id(void)
{
	static gsize once = 0;
	static gchar *boot_id = NULL;

	if (g_once_init_enter(&once)) {
		g_autofree gchar *contents = NULL;
		if (g_file_get_contents("/proc/sys/kernel/random/boot_id", &contents, NULL, NULL)) {
			g_strstrip(contents);
			if (strlen(contents) == AS_CHUNK_HASH_BOOT_ID_LEN)
				boot_id = g_steal_pointer(&contents);
		}
		g_once_init_leave(&once, 1);
	}
	return boot_id;
}

/* the record is little-endian on every host */
static void
as_chunk_hash_put_u32(guint8 *p, guint32 value)
{
	guint32 le = GUINT32_TO_LE(value);
	memcpy(p, &le, sizeof(le));
}

static guint32
as_chunk_hash_get_u32(const guint8 *p)
{
	guint32 le;
	memcpy(&le, p, sizeof(le));
	return GUINT32_FROM_LE(le);
}

/* the SHA-256 that closes a .hash record */
static void
as_chunk_hash_record_digest(const guint8 *record, guint8 *digest)
{
	g_autoptr(GChecksum) checksum = g_checksum_new(G_CHECKSUM_SHA256);
	gsize len = AS_SHA256_DIGEST_SIZE;

	g_checksum_update(checksum, record, AS_CHUNK_HASH_OFF_DIGEST);
	g_checksum_get_digest(checksum, digest, &len);
}

/* bytes of the chunks [0, @chunks) */
static guint64
as_chunk_task_prefix_bytes(AsChunkTask *self, guint32 chunks)
{
	return MIN((guint64)chunks * self->chunk_size, self->total_size);
}

/* rewrites the .hash record; called only by the thread owning the hash. A record that fails
 * to be written costs a resumed task some re-reading, nothing else */
static void
as_chunk_task_save_hash(AsChunkTask *self, const AsSha256State *state, guint32 hashed_chunks)
{
	guint8 record[AS_CHUNK_HASH_RECORD_SIZE] = {0};
	const gchar *boot_id = as_chunk_store_boot_id();
	g_autoptr(GBytes) blob = NULL;

	if (self->hash_fd < 0 || boot_id == NULL)
		return;
	blob = as_sha256_state_save(state);
	memcpy(record, AS_CHUNK_HASH_MAGIC, AS_CHUNK_HASH_MAGIC_LEN);
	as_chunk_hash_put_u32(record + AS_CHUNK_HASH_OFF_HASHED, hashed_chunks);
	memcpy(record + AS_CHUNK_HASH_OFF_BOOT_ID, boot_id, AS_CHUNK_HASH_BOOT_ID_LEN);
	memcpy(record + AS_CHUNK_HASH_OFF_STATE, g_bytes_get_data(blob, NULL),
	       AS_SHA256_STATE_BLOB_SIZE);
	as_chunk_hash_record_digest(record, record + AS_CHUNK_HASH_OFF_DIGEST);
	for (;;) {
		gssize n = pwrite(self->hash_fd, record, sizeof(record), 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n != (gssize)sizeof(record))
			g_debug("failed to save the hash of task %s: %s", self->id,
				n < 0 ? g_strerror(errno) : "short write");
		break;
	}
}

/* adopts the .hash record of a resumed task if it can be trusted, else starts from zero;
 * @first_missing is the first chunk the map does not have */
static void
as_chunk_task_load_hash(AsChunkTask *self, guint32 first_missing)
{
	guint8 record[AS_CHUNK_HASH_RECORD_SIZE];
	guint8 digest[AS_SHA256_DIGEST_SIZE];
	const gchar *boot_id = as_chunk_store_boot_id();
	g_autoptr(GBytes) blob = NULL;
	g_autoptr(AsSha256State) state = NULL;
	g_autoptr(GError) error_local = NULL;
	const gchar *why = NULL;
	guint32 hashed;
	gssize n;

	do {
		n = pread(self->hash_fd, record, sizeof(record), 0);
	} while (n < 0 && errno == EINTR);
	if (n == 0)
		return;
	if (n != (gssize)sizeof(record) ||
	    memcmp(record, AS_CHUNK_HASH_MAGIC, AS_CHUNK_HASH_MAGIC_LEN) != 0) {
		why = "damaged record";
		goto out;
	}
	as_chunk_hash_record_digest(record, digest);
	if (memcmp(digest, record + AS_CHUNK_HASH_OFF_DIGEST, sizeof(digest)) != 0 ||
	    as_chunk_hash_get_u32(record + AS_CHUNK_HASH_OFF_RESERVED) != 0) {
		why = "damaged record";
		goto out;
	}
	if (boot_id == NULL ||
	    memcmp(record + AS_CHUNK_HASH_OFF_BOOT_ID, boot_id, AS_CHUNK_HASH_BOOT_ID_LEN) != 0) {
		why = "saved before a reboot";
		goto out;
	}
	hashed = as_chunk_hash_get_u32(record + AS_CHUNK_HASH_OFF_HASHED);
	if (hashed > first_missing || hashed > self->total_chunks) {
		why = "covers chunks the map lacks";
		goto out;
	}
	blob = g_bytes_new(record + AS_CHUNK_HASH_OFF_STATE, AS_SHA256_STATE_BLOB_SIZE);
	state = as_sha256_state_load(blob, &error_local);
	if (state == NULL) {
		why = error_local->message;
		goto out;
	}
	if (as_sha256_state_get_length(state) != as_chunk_task_prefix_bytes(self, hashed)) {
		why = "length does not match";
		goto out;
	}
	as_sha256_state_free(self->prefix_hash);
	self->prefix_hash = g_steal_pointer(&state);
	self->hashed_chunks = hashed;
out:
	if (why != NULL)
		g_debug("task %s: hashing again from the start: saved hash %s", self->id, why);
}

/*
 * The whole-file hash now covers chunk @index too: keep @state (taken) as the prefix and
 * save it. Only the thread that set hash_busy calls this, and only for a done chunk.
 */
static void
as_chunk_task_hash_advanced(AsChunkTask *self, AsSha256State *state, guint32 index)
{
	as_chunk_task_save_hash(self, state, index + 1);
	g_mutex_lock(&self->mutex);
	as_sha256_state_free(self->prefix_hash);
	self->prefix_hash = state;
	self->hashed_chunks = index + 1;
	g_mutex_unlock(&self->mutex);

	/* hashed chunks are never read again: to the disk and out of the page cache */
	if (self->total_size >= AS_WRITE_BEHIND_MIN_BYTES) {
		if (!self->behind_ready) {
			as_write_behind_init(&self->behind, self->data_fd, 0);
			self->behind_ready = TRUE;
		}
		as_write_behind_advance(&self->behind, as_chunk_task_prefix_bytes(self, index + 1));
	}
}

/*
 * Advances the whole-file hash over every chunk that is done and next in order. Only the
 * thread that set hash_busy calls this. Done chunks are never rewritten, so they are read
 * without the lock. Returns FALSE on a read error, with the hash still at a chunk boundary.
 */
static gboolean
as_chunk_task_hash_done_chunks(AsChunkTask *self, GCancellable *cancellable, GError **error)
{
	for (;;) {
		g_autoptr(AsSha256State) state = NULL;
		guint64 offset, length;
		gboolean done = FALSE;
		guint32 index;

		g_mutex_lock(&self->mutex);
		index = self->hashed_chunks;
		if (index < self->total_chunks && self->state != AS_CHUNK_TASK_STATE_DISCARDED &&
		    !as_chunk_task_read_map_byte(self, index, &done, error)) {
			g_mutex_unlock(&self->mutex);
			return FALSE;
		}
		g_mutex_unlock(&self->mutex);
		if (!done)
			return TRUE;

		as_chunk_task_range_unlocked(self, index, &offset, &length);
		state = as_sha256_state_copy(self->prefix_hash);
		if (!as_sha256_state_update_fd_range(state, self->data_fd, offset, length,
						     cancellable, error)) {
			g_prefix_error(error, "failed to hash chunk %u of task %s: ", index,
				       self->id);
			return FALSE;
		}
		as_chunk_task_hash_advanced(self, g_steal_pointer(&state), index);
	}
}

/* TRUE if the chunk the hash waits for is done, so a worker has something to do */
static gboolean
as_chunk_task_hash_has_work_locked(AsChunkTask *self)
{
	gboolean done = FALSE;

	if (self->state != AS_CHUNK_TASK_STATE_RECEIVING ||
	    self->hashed_chunks >= self->total_chunks)
		return FALSE;
	return as_chunk_task_read_map_byte(self, self->hashed_chunks, &done, NULL) && done;
}

/* the worker: owns the hash from as_chunk_task_kick_hash_locked() on, holds a reference */
static void
as_chunk_task_hash_worker_cb(gpointer data, gpointer user_data)
{
	AsChunkTask *self = AS_CHUNK_TASK(data);

	for (;;) {
		g_autoptr(GError) error_local = NULL;
		gboolean ok = as_chunk_task_hash_done_chunks(self, NULL, &error_local);

		/* after an error, /upload/complete tries again from the prefix and reports it */
		if (!ok)
			g_debug("%s", error_local->message);
		/* a chunk that landed while we were busy did not start a worker: look again,
		 * under the lock that end_chunk() holds while it looks at hash_busy */
		g_mutex_lock(&self->mutex);
		if (ok && as_chunk_task_hash_has_work_locked(self)) {
			g_mutex_unlock(&self->mutex);
			continue;
		}
		self->hash_busy = FALSE;
		g_cond_broadcast(&self->hash_cond);
		g_mutex_unlock(&self->mutex);
		break;
	}
	g_object_unref(self);
}

/* one pool for the hash workers of all tasks, so threads (and their malloc arenas) are reused */
static GThreadPool *
as_chunk_store_get_hash_pool(void)
{
	static gsize pool_once = 0;
	static GThreadPool *pool = NULL;

	if (g_once_init_enter(&pool_once)) {
		gint max_threads = MAX((gint)g_get_num_processors(), AS_CHUNK_HASH_MIN_THREADS);
		/* a shared pool never fails to be created */
		pool = g_thread_pool_new(as_chunk_task_hash_worker_cb, NULL, max_threads, FALSE,
					 NULL);
		g_once_init_leave(&pool_once, 1);
	}
	return pool;
}

/* starts a worker if the next chunk for the hash is done and no thread owns the hash */
static void
as_chunk_task_kick_hash_locked(AsChunkTask *self)
{
	g_autoptr(GError) error_local = NULL;

	if (self->hash_busy || !as_chunk_task_hash_has_work_locked(self))
		return;
	self->hash_busy = TRUE;
	if (!g_thread_pool_push(as_chunk_store_get_hash_pool(), g_object_ref(self), &error_local)) {
		/* complete hashes whatever is left */
		g_debug("task %s: %s", self->id, error_local->message);
		self->hash_busy = FALSE;
		g_object_unref(self);
	}
}

/* waits until no worker owns the hash, then owns it; with the lock held */
static void
as_chunk_task_take_hash_locked(AsChunkTask *self)
{
	while (self->hash_busy)
		g_cond_wait(&self->hash_cond, &self->mutex);
	self->hash_busy = TRUE;
}

static void
as_chunk_task_release_hash(AsChunkTask *self)
{
	g_mutex_lock(&self->mutex);
	self->hash_busy = FALSE;
	g_cond_broadcast(&self->hash_cond);
	g_mutex_unlock(&self->mutex);
}

static guint32
as_chunk_store_expected_chunks(guint64 total_size, guint64 chunk_size)
{
	guint64 n = total_size / chunk_size + (total_size % chunk_size != 0 ? 1 : 0);
	return (guint32)MIN(MAX(n, 1), (guint64)G_MAXUINT32);
}

/* checks the parameters a client announces, before anything touches the disk */
static gboolean
as_chunk_store_check_params(AsChunkStore *self,
			    guint64 total_size,
			    guint64 chunk_size,
			    guint32 total_chunks,
			    GError **error)
{
	guint64 expected;

	if (chunk_size == 0) {
		g_set_error_literal(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
				    "chunk size must be at least 1 byte");
		return FALSE;
	}
	if (total_size > (guint64)G_MAXINT64) {
		g_set_error(error, AS_ERROR, AS_ERROR_TOO_LARGE,
			    "total size %" G_GUINT64_FORMAT " is not a possible file size",
			    total_size);
		return FALSE;
	}
	if (self->max_file_size != 0 && total_size > self->max_file_size) {
		g_set_error(error, AS_ERROR, AS_ERROR_TOO_LARGE,
			    "file of %" G_GUINT64_FORMAT
			    " bytes exceeds the limit of %" G_GUINT64_FORMAT " bytes",
			    total_size, self->max_file_size);
		return FALSE;
	}
	expected = total_size / chunk_size + (total_size % chunk_size != 0 ? 1 : 0);
	expected = MAX(expected, 1);
	if (expected > AS_CHUNK_STORE_MAX_CHUNKS) {
		g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
			    "%" G_GUINT64_FORMAT " chunks of %" G_GUINT64_FORMAT
			    " bytes exceed the limit of %u chunks: use larger chunks",
			    expected, chunk_size, (guint)AS_CHUNK_STORE_MAX_CHUNKS);
		return FALSE;
	}
	if (total_chunks != expected) {
		g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
			    "%" G_GUINT64_FORMAT " bytes in chunks of %" G_GUINT64_FORMAT
			    " bytes make %" G_GUINT64_FORMAT " chunks, not %u",
			    total_size, chunk_size, expected, total_chunks);
		return FALSE;
	}
	return TRUE;
}

static AsChunkTask *
as_chunk_task_new(AsChunkStore *store,
		  const gchar *task_id,
		  const gchar *rel_path,
		  guint64 total_size,
		  guint64 chunk_size,
		  guint32 total_chunks)
{
	AsChunkTask *self = g_object_new(AS_TYPE_CHUNK_TASK, NULL);
	self->store = g_object_ref(store);
	self->id = g_strdup(task_id);
	self->rel_path = g_strdup(rel_path);
	self->total_size = total_size;
	self->chunk_size = chunk_size;
	self->total_chunks = total_chunks;
	return self;
}

/* opens a task file that must exist with exactly @size bytes */
static int
as_chunk_store_open_sized(AsChunkStore *self, const gchar *name, guint64 size, GError **error)
{
	struct stat st;
	int fd = openat(self->staging_fd, name, O_RDWR | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0) {
		as_chunk_store_set_error_errno(error, errno, "failed to open %s", name);
		return -1;
	}
	if (fstat(fd, &st) < 0) {
		as_chunk_store_set_error_errno(error, errno, "failed to stat %s", name);
		close(fd);
		return -1;
	}
	if (!S_ISREG(st.st_mode) || (guint64)st.st_size != size) {
		g_set_error(error, AS_ERROR, AS_ERROR_IO,
			    "%s has %" G_GUINT64_FORMAT " bytes, expected %" G_GUINT64_FORMAT, name,
			    (guint64)st.st_size, size);
		close(fd);
		return -1;
	}
	return fd;
}

/* loads a task persisted before a restart; AS_ERROR_NOT_FOUND if there is none */
static AsChunkTask *
as_chunk_store_load_task(AsChunkStore *self, const gchar *task_id, GError **error)
{
	g_autofree gchar *meta_name = NULL;
	g_autofree gchar *data_name = NULL;
	g_autofree gchar *map_name = NULL;
	g_autofree gchar *hash_name = NULL;
	g_autofree gchar *id = NULL;
	g_autofree gchar *raw_path = NULL;
	g_autofree gchar *rel_path = NULL;
	g_autoptr(GKeyFile) keyfile = NULL;
	g_autoptr(AsChunkTask) task = NULL;
	g_autoptr(GError) error_local = NULL;
	guint64 total_size = 0, chunk_size = 0, total_chunks = 0;
	guint32 first_missing;

	meta_name = as_chunk_store_task_file(task_id, AS_CHUNK_STORE_SUFFIX_META);
	keyfile = as_chunk_store_read_keyfile(self, meta_name, &error_local);
	if (keyfile == NULL) {
		if (g_error_matches(error_local, AS_ERROR, AS_ERROR_NOT_FOUND)) {
			g_set_error(error, AS_ERROR, AS_ERROR_NOT_FOUND, "no task %s", task_id);
			return NULL;
		}
		g_propagate_prefixed_error(error, g_steal_pointer(&error_local),
					   "task %s is unusable: ", task_id);
		return NULL;
	}
	id = g_key_file_get_string(keyfile, AS_CHUNK_STORE_GROUP_TASK, "task_id", NULL);
	raw_path = g_key_file_get_string(keyfile, AS_CHUNK_STORE_GROUP_TASK, "rel_path", NULL);
	total_size = g_key_file_get_uint64(keyfile, AS_CHUNK_STORE_GROUP_TASK, "total_size",
					   &error_local);
	if (error_local == NULL)
		chunk_size = g_key_file_get_uint64(keyfile, AS_CHUNK_STORE_GROUP_TASK, "chunk_size",
						   &error_local);
	if (error_local == NULL)
		total_chunks = g_key_file_get_uint64(keyfile, AS_CHUNK_STORE_GROUP_TASK,
						     "total_chunks", &error_local);
	if (error_local != NULL || g_strcmp0(id, task_id) != 0 || raw_path == NULL ||
	    chunk_size == 0 || total_chunks == 0 || total_chunks > AS_CHUNK_STORE_MAX_CHUNKS ||
	    total_size > (guint64)G_MAXINT64 ||
	    as_chunk_store_expected_chunks(total_size, chunk_size) != total_chunks) {
		g_set_error(error, AS_ERROR, AS_ERROR_IO, "task %s is unusable: %s is damaged",
			    task_id, meta_name);
		return NULL;
	}
	rel_path = as_path_sanitize(raw_path, error);
	if (rel_path == NULL) {
		g_prefix_error(error, "task %s is unusable: ", task_id);
		return NULL;
	}

	task = as_chunk_task_new(self, task_id, rel_path, total_size, chunk_size,
				 (guint32)total_chunks);
	data_name = as_chunk_store_task_file(task_id, AS_CHUNK_STORE_SUFFIX_DATA);
	task->data_fd = as_chunk_store_open_sized(self, data_name, total_size, &error_local);
	if (task->data_fd < 0) {
		/* a crash after publishing, before .meta was removed: the data has moved on */
		if (g_error_matches(error_local, AS_ERROR, AS_ERROR_NOT_FOUND)) {
			g_debug("removing leftovers of task %s: %s", task_id, error_local->message);
			as_chunk_store_remove_task_files(self, task_id);
			g_set_error(error, AS_ERROR, AS_ERROR_NOT_FOUND, "no task %s", task_id);
			return NULL;
		}
		g_propagate_prefixed_error(error, g_steal_pointer(&error_local),
					   "task %s is unusable: ", task_id);
		return NULL;
	}
	map_name = as_chunk_store_task_file(task_id, AS_CHUNK_STORE_SUFFIX_MAP);
	task->map_fd = as_chunk_store_open_sized(self, map_name, total_chunks, error);
	if (task->map_fd < 0) {
		g_prefix_error(error, "task %s is unusable: ", task_id);
		return NULL;
	}

	/* only counters stay in memory; the map itself is read on demand */
	first_missing = task->total_chunks;
	if (!as_chunk_task_scan_map(task, as_chunk_task_count_run_cb, &first_missing, error))
		return NULL;

	/* a task from before the .hash file existed gets one now */
	hash_name = as_chunk_store_task_file(task_id, AS_CHUNK_STORE_SUFFIX_HASH);
	task->hash_fd = openat(self->staging_fd, hash_name,
			       O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, AS_CHUNK_STORE_FILE_MODE);
	if (task->hash_fd >= 0)
		as_chunk_task_load_hash(task, first_missing);
	else
		g_debug("task %s: cannot open %s: %s", task_id, hash_name, g_strerror(errno));
	g_debug("resumed task %s: %u of %u chunks present, %u hashed", task_id, task->done_count,
		task->total_chunks, task->hashed_chunks);

	/* catch the hash up over what arrived after the saved prefix */
	g_mutex_lock(&task->mutex);
	as_chunk_task_kick_hash_locked(task);
	g_mutex_unlock(&task->mutex);
	return g_steal_pointer(&task);
}

/* creates and sizes one task file; @reserve allocates the blocks now so a full disk shows up
 * before the first byte arrives */
static int
as_chunk_store_create_sized(
	AsChunkStore *self, const gchar *name, guint64 size, gboolean reserve, GError **error)
{
	int fd = openat(self->staging_fd, name, O_RDWR | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
			AS_CHUNK_STORE_FILE_MODE);

	if (fd < 0) {
		as_chunk_store_set_error_errno(error, errno, "failed to create %s", name);
		return -1;
	}
	if (ftruncate(fd, (off_t)size) < 0) {
		as_chunk_store_set_error_errno(error, errno, "failed to size %s", name);
		close(fd);
		return -1;
	}

	/* fallocate(2) rather than posix_fallocate(3): where the filesystem cannot reserve,
	 * glibc would emulate it by writing every block, blocking the caller for the whole
	 * file; a sparse file is fine there and a full disk shows up on write instead */
	while (reserve && size > 0 && fallocate(fd, 0, 0, (off_t)size) < 0) {
		int errsv = errno;
		if (errsv == EINTR)
			continue;
		if (errsv == EOPNOTSUPP || errsv == ENOSYS)
			break;
		as_chunk_store_set_error_errno(error, errsv, "failed to reserve %s", name);
		close(fd);
		return -1;
	}
	return fd;
}

static AsChunkTask *
as_chunk_store_create_task(AsChunkStore *self,
			   const gchar *task_id,
			   const gchar *rel_path,
			   guint64 total_size,
			   guint64 chunk_size,
			   guint32 total_chunks,
			   AsChunkStoreOpenFlags flags,
			   GError **error)
{
	g_autofree gchar *data_name = as_chunk_store_task_file(task_id, AS_CHUNK_STORE_SUFFIX_DATA);
	g_autofree gchar *map_name = as_chunk_store_task_file(task_id, AS_CHUNK_STORE_SUFFIX_MAP);
	g_autofree gchar *meta_name = as_chunk_store_task_file(task_id, AS_CHUNK_STORE_SUFFIX_META);
	g_autofree gchar *hash_name = as_chunk_store_task_file(task_id, AS_CHUNK_STORE_SUFFIX_HASH);
	g_autoptr(AsChunkTask) task = NULL;
	g_autoptr(GKeyFile) keyfile = g_key_file_new();

	task = as_chunk_task_new(self, task_id, rel_path, total_size, chunk_size, total_chunks);
	if (total_chunks == 1 && (flags & AS_CHUNK_STORE_OPEN_FLAG_HOLD) != 0) {
		task->ephemeral = TRUE;
		task->data_fd =
			as_chunk_store_create_sized(self, data_name, total_size, TRUE, error);
		if (task->data_fd < 0) {
			g_prefix_error(error, "failed to create task %s: ", task_id);
			as_chunk_store_unlink(self, data_name);
			return NULL;
		}
		g_debug("created ephemeral task %s: %" G_GUINT64_FORMAT " bytes", task_id,
			total_size);
		return g_steal_pointer(&task);
	}

	/* .meta is written last: it is what makes the task exist after a restart */
	task->data_fd = as_chunk_store_create_sized(self, data_name, total_size, TRUE, error);
	if (task->data_fd >= 0)
		task->map_fd =
			as_chunk_store_create_sized(self, map_name, total_chunks, TRUE, error);
	if (task->map_fd >= 0)
		task->hash_fd = as_chunk_store_create_sized(self, hash_name, 0, FALSE, error);
	if (task->hash_fd >= 0) {
		g_key_file_set_string(keyfile, AS_CHUNK_STORE_GROUP_TASK, "task_id", task_id);
		g_key_file_set_string(keyfile, AS_CHUNK_STORE_GROUP_TASK, "rel_path", rel_path);
		g_key_file_set_uint64(keyfile, AS_CHUNK_STORE_GROUP_TASK, "total_size", total_size);
		g_key_file_set_uint64(keyfile, AS_CHUNK_STORE_GROUP_TASK, "chunk_size", chunk_size);
		g_key_file_set_uint64(keyfile, AS_CHUNK_STORE_GROUP_TASK, "total_chunks",
				      total_chunks);
		g_key_file_set_int64(keyfile, AS_CHUNK_STORE_GROUP_TASK, "created",
				     g_get_real_time() / G_USEC_PER_SEC);
	}
	if (task->hash_fd < 0 || !as_chunk_store_write_keyfile(self, meta_name, keyfile, error)) {
		g_prefix_error(error, "failed to create task %s: ", task_id);
		as_chunk_store_remove_task_files(self, task_id);
		return NULL;
	}
	g_debug("created task %s: %" G_GUINT64_FORMAT " bytes in %u chunks", task_id, total_size,
		total_chunks);
	return g_steal_pointer(&task);
}

/* the live task, else the one on disk; registers what it loads */
static AsChunkTask *
as_chunk_store_find_task_locked(AsChunkStore *self, const gchar *task_id, GError **error)
{
	AsChunkTask *task = as_chunk_store_get_live_task(self, task_id);

	if (task != NULL)
		return task;
	task = as_chunk_store_load_task(self, task_id, error);
	if (task != NULL)
		as_chunk_store_register_task(self, task);
	return task;
}

/**
 * as_chunk_store_open_task_full:
 * @self: a #AsChunkStore
 * @task_id: the client's task id, 1 to %AS_CHUNK_STORE_TASK_ID_MAX of [A-Za-z0-9_-]
 * @rel_path: destination below the receive dir, sanitised here again
 * @total_size: size of the whole file
 * @chunk_size: nominal chunk size; the last chunk may be shorter
 * @total_chunks: must be max(1, ceil(@total_size / @chunk_size))
 * @flags: how a new task may be created
 * @error: (nullable): optional return location for an error
 *
 * Finds the task in memory or on disk (after a restart), or creates it: the data file is
 * sized and its blocks are reserved, a one-byte-per-chunk map and a key file describing the
 * task are written to the staging folder. Concurrent requests for one id share one object.
 * With %AS_CHUNK_STORE_OPEN_FLAG_HOLD a new task of one chunk only gets its data file: it
 * lives as long as a reference to it, and is not found after a restart.
 *
 * Returns: (transfer full): the task, or %NULL: %AS_ERROR_TOO_LARGE above the size limit,
 * %AS_ERROR_CONFLICT if the id exists with other parameters or was already completed,
 * %AS_ERROR_NO_SPACE if the file does not fit (nothing is left behind)
 **/
AsChunkTask *
as_chunk_store_open_task_full(AsChunkStore *self,
			      const gchar *task_id,
			      const gchar *rel_path,
			      guint64 total_size,
			      guint64 chunk_size,
			      guint32 total_chunks,
			      AsChunkStoreOpenFlags flags,
			      GError **error)
{
	g_autofree gchar *sanitized = NULL;
	g_autofree gchar *done_name = NULL;
	g_autoptr(AsChunkTask) task = NULL;
	g_autoptr(GError) error_local = NULL;
	g_autoptr(GMutexLocker) locker = NULL;
	struct stat st;

	g_return_val_if_fail(AS_IS_CHUNK_STORE(self), NULL);
	g_return_val_if_fail(error == NULL || *error == NULL, NULL);

	if (!as_chunk_store_check_task_id(task_id, error))
		return NULL;
	sanitized = as_path_sanitize(rel_path, error);
	if (sanitized == NULL)
		return NULL;
	if (!as_chunk_store_check_params(self, total_size, chunk_size, total_chunks, error))
		return NULL;

	locker = g_mutex_locker_new(&self->open_mutex);
	task = as_chunk_store_find_task_locked(self, task_id, &error_local);
	if (task != NULL) {
		if (task->total_size != total_size || task->chunk_size != chunk_size ||
		    task->total_chunks != total_chunks ||
		    g_strcmp0(task->rel_path, sanitized) != 0) {
			g_set_error(error, AS_ERROR, AS_ERROR_CONFLICT,
				    "task %s exists with different parameters", task_id);
			return NULL;
		}
		return g_steal_pointer(&task);
	}
	if (!g_error_matches(error_local, AS_ERROR, AS_ERROR_NOT_FOUND)) {
		g_propagate_error(error, g_steal_pointer(&error_local));
		return NULL;
	}

	/* reusing a finished id would start a second, unrelated file under the same name */
	done_name = as_chunk_store_task_file(task_id, AS_CHUNK_STORE_SUFFIX_DONE);
	if (fstatat(self->staging_fd, done_name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		g_set_error(error, AS_ERROR, AS_ERROR_CONFLICT, "task %s is already complete",
			    task_id);
		return NULL;
	}

	task = as_chunk_store_create_task(self, task_id, sanitized, total_size, chunk_size,
					  total_chunks, flags, error);
	if (task == NULL)
		return NULL;
	as_chunk_store_register_task(self, task);
	return g_steal_pointer(&task);
}

/**
 * as_chunk_store_open_task:
 * @self: a #AsChunkStore
 * @task_id: the client's task id
 * @rel_path: destination below the receive dir
 * @total_size: size of the whole file
 * @chunk_size: nominal chunk size
 * @total_chunks: must be max(1, ceil(@total_size / @chunk_size))
 * @error: (nullable): optional return location for an error
 *
 * as_chunk_store_open_task_full() with no flags: the task survives the request and a restart.
 *
 * Returns: (transfer full): the task, or %NULL
 **/
AsChunkTask *
as_chunk_store_open_task(AsChunkStore *self,
			 const gchar *task_id,
			 const gchar *rel_path,
			 guint64 total_size,
			 guint64 chunk_size,
			 guint32 total_chunks,
			 GError **error)
{
	return as_chunk_store_open_task_full(self, task_id, rel_path, total_size, chunk_size,
					     total_chunks, AS_CHUNK_STORE_OPEN_FLAG_NONE, error);
}

/**
 * as_chunk_store_lookup_task:
 * @self: a #AsChunkStore
 * @task_id: a task id
 * @error: (nullable): optional return location for an error
 *
 * Returns: (transfer full): the task from memory or from disk, or %NULL with
 * %AS_ERROR_NOT_FOUND
 **/
AsChunkTask *
as_chunk_store_lookup_task(AsChunkStore *self, const gchar *task_id, GError **error)
{
	g_autoptr(GMutexLocker) locker = NULL;

	g_return_val_if_fail(AS_IS_CHUNK_STORE(self), NULL);
	g_return_val_if_fail(error == NULL || *error == NULL, NULL);

	if (!as_chunk_store_check_task_id(task_id, error))
		return NULL;
	locker = g_mutex_locker_new(&self->open_mutex);
	return as_chunk_store_find_task_locked(self, task_id, error);
}

/**
 * as_chunk_store_lookup_done:
 * @self: a #AsChunkStore
 * @task_id: a task id
 * @rel_path: (out) (optional) (transfer full): the relative path the file was published to
 * @sha256: (out) (optional) (transfer full): its SHA-256 as hex
 * @size: (out) (optional): its size
 * @error: (nullable): optional return location for an error
 *
 * Reads the tombstone of a completed task, so a retried /upload/complete whose reply was
 * lost gets the same answer.
 *
 * Returns: %TRUE on success; %AS_ERROR_NOT_FOUND if the task was never completed
 **/
gboolean
as_chunk_store_lookup_done(AsChunkStore *self,
			   const gchar *task_id,
			   gchar **rel_path,
			   gchar **sha256,
			   guint64 *size,
			   GError **error)
{
	g_autofree gchar *done_name = NULL;
	g_autofree gchar *path = NULL;
	g_autofree gchar *hex = NULL;
	g_autoptr(GKeyFile) keyfile = NULL;
	g_autoptr(GError) error_local = NULL;
	guint64 bytes;

	g_return_val_if_fail(AS_IS_CHUNK_STORE(self), FALSE);
	g_return_val_if_fail(error == NULL || *error == NULL, FALSE);

	if (!as_chunk_store_check_task_id(task_id, error))
		return FALSE;
	done_name = as_chunk_store_task_file(task_id, AS_CHUNK_STORE_SUFFIX_DONE);
	keyfile = as_chunk_store_read_keyfile(self, done_name, &error_local);
	if (keyfile == NULL) {
		if (g_error_matches(error_local, AS_ERROR, AS_ERROR_NOT_FOUND)) {
			g_set_error(error, AS_ERROR, AS_ERROR_NOT_FOUND,
				    "task %s was not completed", task_id);
			return FALSE;
		}
		g_propagate_error(error, g_steal_pointer(&error_local));
		return FALSE;
	}
	path = g_key_file_get_string(keyfile, AS_CHUNK_STORE_GROUP_DONE, "rel_path", NULL);
	hex = g_key_file_get_string(keyfile, AS_CHUNK_STORE_GROUP_DONE, "sha256", NULL);
	bytes = g_key_file_get_uint64(keyfile, AS_CHUNK_STORE_GROUP_DONE, "size", &error_local);
	if (path == NULL || !as_sha256_hex_is_valid(hex) || error_local != NULL) {
		g_set_error(error, AS_ERROR, AS_ERROR_IO, "%s is damaged", done_name);
		return FALSE;
	}
	if (rel_path != NULL)
		*rel_path = g_steal_pointer(&path);
	if (sha256 != NULL)
		*sha256 = g_steal_pointer(&hex);
	if (size != NULL)
		*size = bytes;
	return TRUE;
}

/**
 * as_chunk_store_create_temp:
 * @self: a #AsChunkStore
 * @name_out: (out) (transfer full): the file name in the staging folder
 * @error: (nullable): optional return location for an error
 *
 * Creates a fresh private file for a single (non-chunked) upload. The caller publishes it
 * with as_publish_file() or removes it with as_chunk_store_remove_temp().
 *
 * Returns: a read-write file descriptor the caller closes, or -1
 **/
int
as_chunk_store_create_temp(AsChunkStore *self, gchar **name_out, GError **error)
{
	g_return_val_if_fail(AS_IS_CHUNK_STORE(self), -1);
	g_return_val_if_fail(name_out != NULL, -1);
	g_return_val_if_fail(error == NULL || *error == NULL, -1);

	for (guint i = 0; i < AS_CHUNK_STORE_TEMP_ATTEMPTS; i++) {
		g_autofree gchar *name = g_strdup_printf(AS_CHUNK_STORE_TEMP_PREFIX
							 "%08x%08x" AS_CHUNK_STORE_TEMP_SUFFIX,
							 g_random_int(), g_random_int());
		int fd = openat(self->staging_fd, name,
				O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
				AS_CHUNK_STORE_FILE_MODE);
		if (fd >= 0) {
			/* the lock tells another process's cleanup that this temp is alive; it
			 * lasts as long as any dup of @fd is open */
			if (flock(fd, LOCK_EX | LOCK_NB) < 0)
				g_debug("cannot lock %s: %s", name, g_strerror(errno));
			g_mutex_lock(&self->tasks_mutex);
			g_hash_table_add(self->temps, g_strdup(name));
			g_mutex_unlock(&self->tasks_mutex);
			*name_out = g_steal_pointer(&name);
			return fd;
		}
		if (errno != EEXIST) {
			as_chunk_store_set_error_errno(error, errno,
						       "failed to create a staging file");
			return -1;
		}
	}
	g_set_error_literal(error, AS_ERROR, AS_ERROR_IO, "no free staging file name");
	return -1;
}

static gboolean
as_chunk_store_is_temp_name(const gchar *name)
{
	return strchr(name, '/') == NULL && g_str_has_prefix(name, AS_CHUNK_STORE_TEMP_PREFIX) &&
	       g_str_has_suffix(name, AS_CHUNK_STORE_TEMP_SUFFIX);
}

/**
 * as_chunk_store_remove_temp:
 * @self: a #AsChunkStore
 * @name: a name returned by as_chunk_store_create_temp()
 *
 * Removes an unpublished temp file; a missing one is fine.
 **/
void
as_chunk_store_remove_temp(AsChunkStore *self, const gchar *name)
{
	g_return_if_fail(AS_IS_CHUNK_STORE(self));
	g_return_if_fail(name != NULL && as_chunk_store_is_temp_name(name));
	as_chunk_store_unlink(self, name);
	g_mutex_lock(&self->tasks_mutex);
	g_hash_table_remove(self->temps, name);
	g_mutex_unlock(&self->tasks_mutex);
}

/**
 * as_chunk_store_remove_own_temps:
 * @self: a #AsChunkStore
 *
 * Removes every temp this store created and did not publish or remove yet: a single
 * upload cannot resume, so at shutdown its partial bytes are garbage.
 *
 * Returns: the number removed
 **/
guint
as_chunk_store_remove_own_temps(AsChunkStore *self)
{
	g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
	GHashTableIter iter;
	gpointer key;

	g_return_val_if_fail(AS_IS_CHUNK_STORE(self), 0);
	g_mutex_lock(&self->tasks_mutex);
	g_hash_table_iter_init(&iter, self->temps);
	while (g_hash_table_iter_next(&iter, &key, NULL))
		g_ptr_array_add(names, g_strdup(key));
	g_mutex_unlock(&self->tasks_mutex);
	for (guint i = 0; i < names->len; i++)
		as_chunk_store_remove_temp(self, g_ptr_array_index(names, i));
	return names->len;
}

/**
 * as_chunk_store_cleanup_temps:
 * @self: a #AsChunkStore
 *
 * Removes temps left by a process that died (their lock is gone); temps of a live
 * process sharing the receive dir are locked and kept, ours are skipped.
 *
 * Returns: the number removed
 **/
guint
as_chunk_store_cleanup_temps(AsChunkStore *self)
{
	struct dirent *entry;
	guint removed = 0;
	DIR *dir;
	int dir_fd;

	g_return_val_if_fail(AS_IS_CHUNK_STORE(self), 0);
	dir_fd = openat(self->staging_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir_fd < 0)
		return 0;
	dir = fdopendir(dir_fd);
	if (dir == NULL) {
		close(dir_fd);
		return 0;
	}
	while ((entry = readdir(dir)) != NULL) {
		gboolean ours;
		int fd;

		if (!as_chunk_store_is_temp_name(entry->d_name))
			continue;
		g_mutex_lock(&self->tasks_mutex);
		ours = g_hash_table_contains(self->temps, entry->d_name);
		g_mutex_unlock(&self->tasks_mutex);
		if (ours)
			continue;
		fd = openat(dirfd(dir), entry->d_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			continue;
		if (flock(fd, LOCK_EX | LOCK_NB) == 0 &&
		    unlinkat(dirfd(dir), entry->d_name, 0) == 0)
			removed++;
		close(fd);
	}
	closedir(dir);
	return removed;
}

typedef struct {
	gint64 newest_mtime;
	GPtrArray *names; /* (element-type utf8) owned */
} AsChunkStoreGroup;

static void
as_chunk_store_group_free(AsChunkStoreGroup *group)
{
	g_ptr_array_unref(group->names);
	g_free(group);
}

/**
 * as_chunk_store_cleanup_stale:
 * @self: a #AsChunkStore
 * @max_age_s: age in seconds after which an untouched entry is garbage
 *
 * Removes temps and tasks (data, map, key files and tombstones) whose files were all left
 * untouched for longer than @max_age_s. Tasks open in memory are kept.
 *
 * Returns: the number of temps and tasks removed
 **/
guint
as_chunk_store_cleanup_stale(AsChunkStore *self, gint64 max_age_s)
{
	g_autoptr(GHashTable) groups = NULL;
	g_autoptr(GMutexLocker) locker = NULL;
	GHashTableIter iter;
	gpointer key, value;
	gint64 now_s = g_get_real_time() / G_USEC_PER_SEC;
	struct dirent *entry;
	guint removed = 0;
	DIR *dir;
	int dir_fd;

	g_return_val_if_fail(AS_IS_CHUNK_STORE(self), 0);

	/* no task may be created or loaded while its files are judged */
	locker = g_mutex_locker_new(&self->open_mutex);
	dir_fd = openat(self->staging_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir_fd < 0) {
		g_warning("failed to list the staging folder: %s", g_strerror(errno));
		return 0;
	}
	dir = fdopendir(dir_fd);
	if (dir == NULL) {
		g_warning("failed to list the staging folder: %s", g_strerror(errno));
		close(dir_fd);
		return 0;
	}

	/* group files by the name before the first '.': a task id or a temp */
	groups = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
				       (GDestroyNotify)as_chunk_store_group_free);
	while ((entry = readdir(dir)) != NULL) {
		const gchar *dot;
		g_autofree gchar *id = NULL;
		AsChunkStoreGroup *group;
		struct stat st;

		if (entry->d_name[0] == '.')
			continue;
		if (fstatat(dirfd(dir), entry->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(st.st_mode))
			continue;
		dot = strchr(entry->d_name, '.');
		id = dot != NULL ? g_strndup(entry->d_name, (gsize)(dot - entry->d_name))
				 : g_strdup(entry->d_name);
		group = g_hash_table_lookup(groups, id);
		if (group == NULL) {
			group = g_new0(AsChunkStoreGroup, 1);
			group->names = g_ptr_array_new_with_free_func(g_free);
			group->newest_mtime = G_MININT64;
			g_hash_table_insert(groups, g_strdup(id), group);
		}
		group->newest_mtime = MAX(group->newest_mtime, (gint64)st.st_mtime);
		g_ptr_array_add(group->names, g_strdup(entry->d_name));
	}

	g_hash_table_iter_init(&iter, groups);
	while (g_hash_table_iter_next(&iter, &key, &value)) {
		AsChunkStoreGroup *group = value;
		g_autoptr(AsChunkTask) live = NULL;

		if (now_s - group->newest_mtime <= max_age_s)
			continue;
		live = as_chunk_store_get_live_task(self, key);
		if (live != NULL)
			continue;
		for (guint i = 0; i < group->names->len; i++) {
			const gchar *name = g_ptr_array_index(group->names, i);
			if (unlinkat(dirfd(dir), name, 0) < 0 && errno != ENOENT)
				g_warning("failed to remove stale %s: %s", name, g_strerror(errno));
		}
		g_debug("removed stale staging entry %s", (const gchar *)key);
		removed++;
	}
	closedir(dir);
	return removed;
}

/**
 * as_chunk_store_get_root_fd:
 * @self: a #AsChunkStore
 *
 * Returns: a directory fd of the receive dir, owned by @self
 **/
int
as_chunk_store_get_root_fd(AsChunkStore *self)
{
	g_return_val_if_fail(AS_IS_CHUNK_STORE(self), -1);
	return self->root_fd;
}

/**
 * as_chunk_store_get_staging_fd:
 * @self: a #AsChunkStore
 *
 * Returns: a directory fd of the staging folder, owned by @self
 **/
int
as_chunk_store_get_staging_fd(AsChunkStore *self)
{
	g_return_val_if_fail(AS_IS_CHUNK_STORE(self), -1);
	return self->staging_fd;
}

/**
 * as_chunk_store_get_receive_dir:
 * @self: a #AsChunkStore
 *
 * Returns: the receive dir path
 **/
const gchar *
as_chunk_store_get_receive_dir(AsChunkStore *self)
{
	g_return_val_if_fail(AS_IS_CHUNK_STORE(self), NULL);
	return self->receive_dir;
}

/**
 * as_chunk_store_set_max_file_size:
 * @self: a #AsChunkStore
 * @max: the largest file accepted by as_chunk_store_open_task(), 0 for no limit
 *
 * Changes the limit for tasks opened from now on.
 **/
void
as_chunk_store_set_max_file_size(AsChunkStore *self, guint64 max)
{
	g_return_if_fail(AS_IS_CHUNK_STORE(self));
	self->max_file_size = max;
}

static void
as_chunk_store_finalize(GObject *object)
{
	AsChunkStore *self = AS_CHUNK_STORE(object);

	if (self->root_fd >= 0)
		close(self->root_fd);
	if (self->staging_fd >= 0)
		close(self->staging_fd);
	g_hash_table_unref(self->tasks);
	g_hash_table_unref(self->temps);
	g_mutex_clear(&self->open_mutex);
	g_mutex_clear(&self->tasks_mutex);
	g_free(self->receive_dir);
	G_OBJECT_CLASS(as_chunk_store_parent_class)->finalize(object);
}

static void
as_chunk_store_class_init(AsChunkStoreClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);
	object_class->finalize = as_chunk_store_finalize;
}

static void
as_chunk_store_init(AsChunkStore *self)
{
	self->root_fd = -1;
	self->staging_fd = -1;
	g_mutex_init(&self->open_mutex);
	g_mutex_init(&self->tasks_mutex);
	self->tasks = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
					    as_chunk_store_weak_ref_free);
	self->temps = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
}

/**
 * as_chunk_store_new:
 * @receive_dir: where received files go; created with mode 0755 if missing
 * @max_file_size: the largest file accepted, 0 for no limit
 * @error: (nullable): optional return location for an error
 *
 * Opens the receive dir and its private staging folder
 * `<receive_dir>/.aerosync/inprogress` (mode 0700). The directory fds are plain read-only
 * ones rather than O_PATH, so they also serve fsync() and directory listing.
 *
 * Returns: (transfer full): a new #AsChunkStore, or %NULL
 **/
AsChunkStore *
as_chunk_store_new(const gchar *receive_dir, guint64 max_file_size, GError **error)
{
	g_autoptr(AsChunkStore) self = NULL;
	int aerosync_fd;

	g_return_val_if_fail(receive_dir != NULL, NULL);
	g_return_val_if_fail(error == NULL || *error == NULL, NULL);

	self = g_object_new(AS_TYPE_CHUNK_STORE, NULL);
	self->receive_dir = g_strdup(receive_dir);
	self->max_file_size = max_file_size;
	if (g_mkdir_with_parents(receive_dir, AS_CHUNK_STORE_RECEIVE_DIR_MODE) < 0) {
		as_chunk_store_set_error_errno(error, errno, "failed to create %s", receive_dir);
		return NULL;
	}
	self->root_fd = open(receive_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (self->root_fd < 0) {
		as_chunk_store_set_error_errno(error, errno, "failed to open %s", receive_dir);
		return NULL;
	}
	aerosync_fd = as_chunk_store_open_private_dir(self->root_fd, AS_STAGING_DIR_NAME, error);
	if (aerosync_fd < 0)
		return NULL;
	self->staging_fd = as_chunk_store_open_private_dir(
		aerosync_fd, AS_CHUNK_STORE_INPROGRESS_DIR_NAME, error);
	close(aerosync_fd);
	if (self->staging_fd < 0)
		return NULL;
	return g_steal_pointer(&self);
}

/* AsChunkTask */

/**
 * as_chunk_task_get_id:
 * @self: a #AsChunkTask
 *
 * Returns: the task id
 **/
const gchar *
as_chunk_task_get_id(AsChunkTask *self)
{
	g_return_val_if_fail(AS_IS_CHUNK_TASK(self), NULL);
	return self->id;
}

/**
 * as_chunk_task_get_rel_path:
 * @self: a #AsChunkTask
 *
 * Returns: the sanitised destination requested by the client
 **/
const gchar *
as_chunk_task_get_rel_path(AsChunkTask *self)
{
	g_return_val_if_fail(AS_IS_CHUNK_TASK(self), NULL);
	return self->rel_path;
}

/**
 * as_chunk_task_get_total_size:
 * @self: a #AsChunkTask
 *
 * Returns: the size of the whole file
 **/
guint64
as_chunk_task_get_total_size(AsChunkTask *self)
{
	g_return_val_if_fail(AS_IS_CHUNK_TASK(self), 0);
	return self->total_size;
}

/**
 * as_chunk_task_get_chunk_size:
 * @self: a #AsChunkTask
 *
 * Returns: the nominal chunk size
 **/
guint64
as_chunk_task_get_chunk_size(AsChunkTask *self)
{
	g_return_val_if_fail(AS_IS_CHUNK_TASK(self), 0);
	return self->chunk_size;
}

/**
 * as_chunk_task_get_total_chunks:
 * @self: a #AsChunkTask
 *
 * Returns: the number of chunks
 **/
guint32
as_chunk_task_get_total_chunks(AsChunkTask *self)
{
	g_return_val_if_fail(AS_IS_CHUNK_TASK(self), 0);
	return self->total_chunks;
}

/**
 * as_chunk_task_is_ephemeral:
 * @self: a #AsChunkTask
 *
 * Returns: %TRUE for a one-chunk task held in memory (%AS_CHUNK_STORE_OPEN_FLAG_HOLD), whose
 *   chunk's digest is the file's
 **/
gboolean
as_chunk_task_is_ephemeral(AsChunkTask *self)
{
	g_return_val_if_fail(AS_IS_CHUNK_TASK(self), FALSE);
	return self->ephemeral;
}

/**
 * as_chunk_task_get_done_count:
 * @self: a #AsChunkTask
 *
 * Returns: the number of chunks received completely
 **/
guint32
as_chunk_task_get_done_count(AsChunkTask *self)
{
	g_autoptr(GMutexLocker) locker = NULL;
	g_return_val_if_fail(AS_IS_CHUNK_TASK(self), 0);
	locker = g_mutex_locker_new(&self->mutex);
	return self->done_count;
}

/**
 * as_chunk_task_dup_computed_sha256:
 * @self: a #AsChunkTask
 *
 * Returns: (transfer full) (nullable): the SHA-256 a failed verification computed, so the
 * sender can be told what the receiver actually holds
 **/
gchar *
as_chunk_task_dup_computed_sha256(AsChunkTask *self)
{
	gchar *sha256;
	g_return_val_if_fail(AS_IS_CHUNK_TASK(self), NULL);
	g_mutex_lock(&self->mutex);
	sha256 = g_strdup(self->computed_sha256);
	g_mutex_unlock(&self->mutex);
	return sha256;
}

/**
 * as_chunk_task_get_hashed_chunks:
 * @self: a #AsChunkTask
 *
 * The whole-file SHA-256 follows the chunks as they land, in order, in a worker thread, so
 * completing a task only hashes what is left. A chunk that arrives before its predecessors
 * is hashed once they are there.
 *
 * Returns: how many chunks, from the first, the running whole-file hash covers
 **/
guint32
as_chunk_task_get_hashed_chunks(AsChunkTask *self)
{
	g_autoptr(GMutexLocker) locker = NULL;
	g_return_val_if_fail(AS_IS_CHUNK_TASK(self), 0);
	locker = g_mutex_locker_new(&self->mutex);
	return self->hashed_chunks;
}

/**
 * as_chunk_task_get_bytes_done:
 * @self: a #AsChunkTask
 *
 * Returns: the bytes of all chunks received completely
 **/
guint64
as_chunk_task_get_bytes_done(AsChunkTask *self)
{
	g_autoptr(GMutexLocker) locker = NULL;
	g_return_val_if_fail(AS_IS_CHUNK_TASK(self), 0);
	locker = g_mutex_locker_new(&self->mutex);
	return self->bytes_done;
}

/**
 * as_chunk_task_get_fd:
 * @self: a #AsChunkTask
 *
 * Returns: the data file descriptor, owned by @self; give it to as_disk_writer_new()
 **/
int
as_chunk_task_get_fd(AsChunkTask *self)
{
	g_return_val_if_fail(AS_IS_CHUNK_TASK(self), -1);
	return self->data_fd;
}

static gboolean
as_chunk_task_check_index(AsChunkTask *self, guint32 index, GError **error)
{
	if (index < self->total_chunks)
		return TRUE;
	g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
		    "chunk index %u is out of range: task %s has %u chunks", index, self->id,
		    self->total_chunks);
	return FALSE;
}

/**
 * as_chunk_task_chunk_range:
 * @self: a #AsChunkTask
 * @index: a chunk index
 * @offset: (out) (optional): where the chunk starts in the file
 * @length: (out) (optional): its length; the last chunk may be shorter
 * @error: (nullable): optional return location for an error
 *
 * Returns: %TRUE on success; %AS_ERROR_INVALID_ARGUMENT if @index is out of range
 **/
gboolean
as_chunk_task_chunk_range(
	AsChunkTask *self, guint32 index, guint64 *offset, guint64 *length, GError **error)
{
	guint64 offset_tmp, length_tmp;

	g_return_val_if_fail(AS_IS_CHUNK_TASK(self), FALSE);
	g_return_val_if_fail(error == NULL || *error == NULL, FALSE);

	if (!as_chunk_task_check_index(self, index, error))
		return FALSE;
	as_chunk_task_range_unlocked(self, index, &offset_tmp, &length_tmp);
	if (offset != NULL)
		*offset = offset_tmp;
	if (length != NULL)
		*length = length_tmp;
	return TRUE;
}

static gboolean
as_chunk_task_check_not_discarded_locked(AsChunkTask *self, GError **error)
{
	if (self->state != AS_CHUNK_TASK_STATE_DISCARDED)
		return TRUE;
	g_set_error(error, AS_ERROR, AS_ERROR_NOT_FOUND,
		    "task %s was discarded after a failed verification", self->id);
	return FALSE;
}

/**
 * as_chunk_task_begin_chunk:
 * @self: a #AsChunkTask
 * @index: a chunk index
 * @body_length: the length of the request body
 * @cancellable: (nullable): the request's; cancelled if another request takes the chunk over
 * @claim: (out caller-allocates): the claim, for as_chunk_task_end_chunk()
 * @error: (nullable): optional return location for an error
 *
 * Claims a chunk before its body is written. A chunk received before is never rewritten:
 * @claim->already_done is set and the caller discards the body. Otherwise the caller writes
 * the body at the chunk's offset and then calls as_chunk_task_end_chunk() with @claim.
 *
 * A chunk claimed by another request is taken over: a sender that died mid-chunk must not
 * hold it until its connection times out. The other request's @cancellable is cancelled; it
 * must stop writing and end its claim once none of its writes can still reach the file
 * (as_chunk_task_abandon_chunk() does that for an #AsDiskWriter). Its end no longer counts.
 * If @claim->verify is set, the caller must hash what it writes for as_chunk_task_end_chunk().
 *
 * Returns: %TRUE if the caller may proceed; %AS_ERROR_INVALID_ARGUMENT for a bad index or
 * length, %AS_ERROR_CONFLICT over the limits of chunks in flight or taken over
 **/
gboolean
as_chunk_task_begin_chunk(AsChunkTask *self,
			  guint32 index,
			  guint64 body_length,
			  GCancellable *cancellable,
			  AsChunkClaim *claim,
			  GError **error)
{
	g_autoptr(GMutexLocker) locker = NULL;
	g_autoptr(GCancellable) previous = NULL;
	AsChunkClaimRec *rec;
	guint64 offset, length;
	gboolean done = FALSE;

	g_return_val_if_fail(AS_IS_CHUNK_TASK(self), FALSE);
	g_return_val_if_fail(cancellable == NULL || G_IS_CANCELLABLE(cancellable), FALSE);
	g_return_val_if_fail(claim != NULL, FALSE);
	g_return_val_if_fail(error == NULL || *error == NULL, FALSE);

	memset(claim, 0, sizeof(*claim));
	claim->index = index;
	if (!as_chunk_task_check_index(self, index, error))
		return FALSE;
	as_chunk_task_range_unlocked(self, index, &offset, &length);
	if (body_length != length) {
		g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
			    "chunk %u must be %" G_GUINT64_FORMAT " bytes, got %" G_GUINT64_FORMAT,
			    index, length, body_length);
		return FALSE;
	}

	locker = g_mutex_locker_new(&self->mutex);
	if (!as_chunk_task_check_not_discarded_locked(self, error))
		return FALSE;
	if (self->state == AS_CHUNK_TASK_STATE_COMPLETED) {
		claim->already_done = TRUE;
		return TRUE;
	}
	if (!as_chunk_task_read_map_byte(self, index, &done, error))
		return FALSE;
	if (done) {
		claim->already_done = TRUE;
		return TRUE;
	}
	rec = g_hash_table_lookup(self->in_flight, GUINT_TO_POINTER(index));
	if (rec == NULL) {
		if (g_hash_table_size(self->in_flight) >= AS_CHUNK_TASK_MAX_IN_FLIGHT) {
			g_set_error(error, AS_ERROR, AS_ERROR_CONFLICT,
				    "task %s already receives %u chunks at once", self->id,
				    (guint)AS_CHUNK_TASK_MAX_IN_FLIGHT);
			return FALSE;
		}
		rec = g_new0(AsChunkClaimRec, 1);
		g_hash_table_insert(self->in_flight, GUINT_TO_POINTER(index), rec);
	} else if (rec->owner != 0) {
		/* each stale claim stands for a request that has yet to stop: bound them */
		if (self->n_stale >= AS_CHUNK_TASK_MAX_STALE_CLAIMS) {
			g_set_error(error, AS_ERROR, AS_ERROR_CONFLICT,
				    "chunk %u of task %s is already being received", index,
				    self->id);
			return FALSE;
		}
		if (rec->stale == NULL)
			rec->stale = g_array_new(FALSE, FALSE, sizeof(guint64));
		g_array_append_val(rec->stale, rec->owner);
		self->n_stale++;
		previous = g_steal_pointer(&rec->cancellable);
		g_debug("task %s: chunk %u taken over from claim %" G_GUINT64_FORMAT, self->id,
			index, rec->owner);
	}
	rec->owner = ++self->last_claim_id;
	rec->cancellable = cancellable != NULL ? g_object_ref(cancellable) : NULL;
	rec->tainted = rec->stale != NULL && rec->stale->len > 0;
	claim->id = rec->owner;
	claim->verify = rec->tainted;
	g_clear_pointer(&locker, g_mutex_locker_free);

	/* unlocked: the old owner's handlers may end its claim right away */
	if (previous != NULL)
		g_cancellable_cancel(previous);
	return TRUE;
}

/* drops @rec once it holds neither an owner nor a stale claim */
static void
as_chunk_task_maybe_free_rec_locked(AsChunkTask *self, guint32 index, AsChunkClaimRec *rec)
{
	if (rec->owner == 0 && (rec->stale == NULL || rec->stale->len == 0))
		g_hash_table_remove(self->in_flight, GUINT_TO_POINTER(index));
}

static void
as_chunk_task_release_owner_locked(AsChunkTask *self, guint32 index, AsChunkClaimRec *rec)
{
	rec->owner = 0;
	rec->tainted = FALSE;
	g_clear_object(&rec->cancellable);
	as_chunk_task_maybe_free_rec_locked(self, index, rec);
}

/* removes @id from the stale claims of @rec; FALSE if it is not one of them */
static gboolean
as_chunk_task_remove_stale_locked(AsChunkTask *self,
				  guint32 index,
				  AsChunkClaimRec *rec,
				  guint64 id)
{
	if (rec->stale == NULL)
		return FALSE;
	for (guint i = 0; i < rec->stale->len; i++) {
		if (g_array_index(rec->stale, guint64, i) != id)
			continue;
		g_array_remove_index_fast(rec->stale, i);
		self->n_stale--;
		as_chunk_task_maybe_free_rec_locked(self, index, rec);
		return TRUE;
	}
	return FALSE;
}

/* the claim was released before: a repeated end, or one for a chunk nobody began */
static gboolean
as_chunk_task_end_released_locked(AsChunkTask *self,
				  guint32 index,
				  gboolean success,
				  GError **error)
{
	gboolean done = FALSE;

	if (!success || self->state == AS_CHUNK_TASK_STATE_COMPLETED)
		return TRUE;
	if (!as_chunk_task_check_not_discarded_locked(self, error))
		return FALSE;
	if (!as_chunk_task_read_map_byte(self, index, &done, error))
		return FALSE;
	if (done)
		return TRUE;
	g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT, "chunk %u of task %s was not begun",
		    index, self->id);
	return FALSE;
}

/*
 * After a takeover: reads the chunk back and compares it with what the owner wrote. Called
 * without the lock (it reads up to a chunk); the caller checks afterwards that the claim is
 * still the owner.
 */
static gboolean
as_chunk_task_verify_range(AsChunkTask *self, guint32 index, const gchar *sha256, GError **error)
{
	g_autofree gchar *on_disk = NULL;
	guint64 offset, length;

	if (sha256 == NULL || !as_sha256_hex_is_valid(sha256)) {
		g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
			    "chunk %u of task %s was taken over and needs the digest of what "
			    "was written",
			    index, self->id);
		return FALSE;
	}
	as_chunk_task_range_unlocked(self, index, &offset, &length);
	on_disk = as_sha256_fd_range(self->data_fd, offset, length, NULL, error);
	if (on_disk == NULL) {
		g_prefix_error(error, "failed to read back chunk %u of task %s: ", index, self->id);
		return FALSE;
	}
	if (!as_sha256_hex_equal(on_disk, sha256)) {
		g_set_error(error, AS_ERROR, AS_ERROR_CONFLICT,
			    "chunk %u of task %s was overwritten by the request it was taken "
			    "over from; send it again",
			    index, self->id);
		return FALSE;
	}
	return TRUE;
}

static gboolean as_chunk_task_end_chunk_full(AsChunkTask *self,
					     const AsChunkClaim *claim,
					     gboolean success,
					     const gchar *sha256,
					     gboolean *recorded,
					     GError **error);

/**
 * as_chunk_task_end_chunk:
 * @self: a #AsChunkTask
 * @claim: what as_chunk_task_begin_chunk() gave
 * @success: whether the whole body was written to the data file
 * @sha256: (nullable): the SHA-256 of the body as written, lower-case hex; required with
 *   @success when @claim->verify is set
 * @error: (nullable): optional return location for an error
 *
 * Releases a claimed chunk. On success the chunk is recorded as done in the map file, unless
 * the claim was taken over meanwhile (%AS_ERROR_CONFLICT, nothing recorded). Call it only once
 * none of the claim's writes can still reach the file. Calling it again for a chunk already
 * released does nothing; for a claim with no id (an already done chunk) it does nothing.
 *
 * Returns: %TRUE on success
 **/
gboolean
as_chunk_task_end_chunk(AsChunkTask *self,
			const AsChunkClaim *claim,
			gboolean success,
			const gchar *sha256,
			GError **error)
{
	return as_chunk_task_end_chunk_full(self, claim, success, sha256, NULL, error);
}

/* as_chunk_task_end_chunk(); @recorded (nullable) tells whether this call marked it done */
static gboolean
as_chunk_task_end_chunk_full(AsChunkTask *self,
			     const AsChunkClaim *claim,
			     gboolean success,
			     const gchar *sha256,
			     gboolean *recorded,
			     GError **error)
{
	g_autoptr(GMutexLocker) locker = NULL;
	AsChunkClaimRec *rec;
	guint64 offset, length;
	guint32 index;
	gboolean done = FALSE;

	g_return_val_if_fail(AS_IS_CHUNK_TASK(self), FALSE);
	g_return_val_if_fail(claim != NULL, FALSE);
	g_return_val_if_fail(error == NULL || *error == NULL, FALSE);

	index = claim->index;
	if (!as_chunk_task_check_index(self, index, error))
		return FALSE;
	if (claim->id == 0)
		return TRUE;
	locker = g_mutex_locker_new(&self->mutex);
	rec = g_hash_table_lookup(self->in_flight, GUINT_TO_POINTER(index));
	if (rec == NULL)
		return as_chunk_task_end_released_locked(self, index, success, error);
	if (rec->owner != claim->id) {
		if (!as_chunk_task_remove_stale_locked(self, index, rec, claim->id))
			return as_chunk_task_end_released_locked(self, index, success, error);
		if (!success)
			return TRUE;
		g_set_error(error, AS_ERROR, AS_ERROR_CONFLICT,
			    "chunk %u of task %s was taken over by another request", index,
			    self->id);
		return FALSE;
	}
	if (!success || self->state == AS_CHUNK_TASK_STATE_COMPLETED) {
		as_chunk_task_release_owner_locked(self, index, rec);
		return TRUE;
	}
	if (!as_chunk_task_check_not_discarded_locked(self, error) ||
	    !as_chunk_task_read_map_byte(self, index, &done, error)) {
		as_chunk_task_release_owner_locked(self, index, rec);
		return FALSE;
	}
	if (done) {
		as_chunk_task_release_owner_locked(self, index, rec);
		return TRUE;
	}
	if (rec->tainted) {
		gboolean verified;

		if (rec->stale != NULL && rec->stale->len > 0) {
			as_chunk_task_release_owner_locked(self, index, rec);
			g_set_error(error, AS_ERROR, AS_ERROR_CONFLICT,
				    "chunk %u of task %s is still being written by the request it "
				    "was taken over from; send it again",
				    index, self->id);
			return FALSE;
		}
		g_clear_pointer(&locker, g_mutex_locker_free);
		verified = as_chunk_task_verify_range(self, index, sha256, error);
		locker = g_mutex_locker_new(&self->mutex);

		/* taken over again while reading: now a stale claim itself */
		rec = g_hash_table_lookup(self->in_flight, GUINT_TO_POINTER(index));
		if (rec == NULL || rec->owner != claim->id) {
			if (rec != NULL)
				as_chunk_task_remove_stale_locked(self, index, rec, claim->id);
			if (verified)
				g_set_error(error, AS_ERROR, AS_ERROR_CONFLICT,
					    "chunk %u of task %s was taken over by another request",
					    index, self->id);
			return FALSE;
		}
		if (!verified || !as_chunk_task_check_not_discarded_locked(self, error)) {
			as_chunk_task_release_owner_locked(self, index, rec);
			return FALSE;
		}
	}

	/* the data reaches the disk in the background too: a crash may lose either, and the
	 * final SHA-256 check catches a map byte that got ahead of its data */
	if (!as_chunk_task_write_map_byte(self, index, error)) {
		as_chunk_task_release_owner_locked(self, index, rec);
		return FALSE;
	}
	as_chunk_task_release_owner_locked(self, index, rec);
	as_chunk_task_range_unlocked(self, index, &offset, &length);
	self->done_count++;
	self->bytes_done += length;
	if (recorded != NULL)
		*recorded = TRUE;
	/* a chunk waiting in as_chunk_task_take_hash_for() may have waited for this one */
	g_cond_broadcast(&self->hash_cond);
	/* the only chunk of an ephemeral task is the whole file: its writer's digest is the
	 * file's, nothing needs reading back */
	if (self->ephemeral && sha256 != NULL && as_sha256_hex_is_valid(sha256)) {
		g_free(self->ephemeral_sha256);
		self->ephemeral_sha256 = g_ascii_strdown(sha256, -1);
		return TRUE;
	}
	as_chunk_task_kick_hash_locked(self);
	return TRUE;
}

/* TRUE if every chunk in [first, end) is done; with the lock held */
static gboolean
as_chunk_task_all_done_locked(AsChunkTask *self, guint32 first, guint32 end)
{
	for (guint32 i = first; i < end; i++) {
		gboolean done = FALSE;
		if (!as_chunk_task_read_map_byte(self, i, &done, NULL) || !done)
			return FALSE;
	}
	return TRUE;
}

/*
 * Tries to own the whole-file hash with it standing right before chunk @index, for
 * as_chunk_task_end_chunk_verify(). A hash behind by done chunks only is caught up first;
 * one busy elsewhere, or waiting for a chunk still in flight just before this one, is waited
 * for a little (AS_CHUNK_FUSE_WAIT_MS): chunks that finish slightly out of order would
 * otherwise each be read twice, and the second reads make the hash fall further behind.
 * Returns FALSE (not owning the hash) when the chunk is to be verified on its own.
 */
static gboolean
as_chunk_task_take_hash_for(AsChunkTask *self, guint32 index)
{
	gint64 deadline = g_get_monotonic_time() + AS_CHUNK_FUSE_WAIT_MS * G_TIME_SPAN_MILLISECOND;
	g_autoptr(GError) error_local = NULL;
	gboolean owned = FALSE;

	g_mutex_lock(&self->mutex);
	while (!self->ephemeral && self->prefix_hash != NULL &&
	       self->state == AS_CHUNK_TASK_STATE_RECEIVING && self->hashed_chunks <= index) {
		if (!self->hash_busy &&
		    as_chunk_task_all_done_locked(self, self->hashed_chunks, index)) {
			self->hash_busy = TRUE;
			owned = TRUE;
			break;
		}
		if (!g_cond_wait_until(&self->hash_cond, &self->mutex, deadline))
			break;
	}
	g_mutex_unlock(&self->mutex);
	if (!owned)
		return FALSE;

	/* done chunks before this one: what the worker would have hashed next */
	if (as_chunk_task_hash_done_chunks(self, NULL, &error_local) &&
	    self->hashed_chunks == index)
		return TRUE;
	if (error_local != NULL)
		g_debug("%s", error_local->message);
	as_chunk_task_release_hash(self);
	return FALSE;
}

/**
 * as_chunk_task_end_chunk_verify:
 * @self: a #AsChunkTask
 * @claim: what as_chunk_task_begin_chunk() gave; not one with @claim->verify set
 * @expected_sha256: the SHA-256 the sender gave for the chunk
 * @cancellable: (nullable): a #GCancellable
 * @sha256_out: (out) (optional) (transfer full): the digest of what the disk holds
 * @error: (nullable): optional return location for an error
 *
 * For a chunk written without hashing it on the way in: reads it back, checks it against
 * @expected_sha256 and, if it matches, ends the claim like as_chunk_task_end_chunk() with
 * success. When the whole-file hash stands right before this chunk (the chunks before it are
 * done and hashed, the usual case when chunks arrive in order) the same read advances it, so
 * the receiver reads and hashes the chunk once for both digests instead of twice. This blocks:
 * call it on a worker thread. The claim is released whatever the outcome.
 *
 * Returns: %TRUE if the chunk is now done; %AS_ERROR_HASH_MISMATCH (with @sha256_out set) if
 *   the disk does not hold what the sender hashed
 **/
gboolean
as_chunk_task_end_chunk_verify(AsChunkTask *self,
			       const AsChunkClaim *claim,
			       const gchar *expected_sha256,
			       GCancellable *cancellable,
			       gchar **sha256_out,
			       GError **error)
{
	g_autoptr(AsSha256State) chunk_state = as_sha256_state_new();
	g_autoptr(AsSha256State) prefix_state = NULL;
	g_autofree gchar *sha256 = NULL;
	guint64 offset, length;
	gboolean fused = FALSE;
	gboolean recorded = FALSE;
	gboolean ok;

	g_return_val_if_fail(AS_IS_CHUNK_TASK(self), FALSE);
	g_return_val_if_fail(claim != NULL && !claim->verify, FALSE);
	g_return_val_if_fail(as_sha256_hex_is_valid(expected_sha256), FALSE);
	g_return_val_if_fail(error == NULL || *error == NULL, FALSE);

	if (!as_chunk_task_check_index(self, claim->index, error)) {
		as_chunk_task_end_chunk(self, claim, FALSE, NULL, NULL);
		return FALSE;
	}
	as_chunk_task_range_unlocked(self, claim->index, &offset, &length);

	fused = as_chunk_task_take_hash_for(self, claim->index);

	if (fused) {
		/* only the owner of the hash touches prefix_hash */
		prefix_state = as_sha256_state_copy(self->prefix_hash);
		ok = as_sha256_state_update_pair_fd_range(chunk_state, prefix_state, self->data_fd,
							  offset, length, cancellable, error);
	} else {
		ok = as_sha256_state_update_fd_range(chunk_state, self->data_fd, offset, length,
						     cancellable, error);
	}
	if (!ok) {
		g_prefix_error(error, "failed to read back chunk %u of task %s: ", claim->index,
			       self->id);
	} else {
		sha256 = as_sha256_state_finish_hex(chunk_state);
		if (!as_sha256_hex_equal(sha256, expected_sha256)) {
			g_set_error(error, AS_ERROR, AS_ERROR_HASH_MISMATCH,
				    "chunk %u of task %s: SHA-256 mismatch: expected %s, got %s",
				    claim->index, self->id, expected_sha256, sha256);
			ok = FALSE;
		}
	}
	if (ok) {
		ok = as_chunk_task_end_chunk_full(self, claim, TRUE, sha256, &recorded, error);
	} else {
		as_chunk_task_end_chunk(self, claim, FALSE, NULL, NULL);
	}

	/* what was hashed is what this claim recorded as done: the prefix may cover it */
	if (fused) {
		if (ok && recorded)
			as_chunk_task_hash_advanced(self, g_steal_pointer(&prefix_state),
						    claim->index);
		g_mutex_lock(&self->mutex);
		self->hash_busy = FALSE;
		g_cond_broadcast(&self->hash_cond);
		as_chunk_task_kick_hash_locked(self);
		g_mutex_unlock(&self->mutex);
	}
	if (sha256_out != NULL)
		*sha256_out = g_steal_pointer(&sha256);
	return ok;
}

typedef struct {
	AsChunkClaim claim;
	gchar *expected_sha256;
	gchar *sha256; /* what the disk holds, once read */
} AsChunkTaskVerify;

static void
as_chunk_task_verify_free(AsChunkTaskVerify *verify)
{
	g_free(verify->expected_sha256);
	g_free(verify->sha256);
	g_free(verify);
}

static void
as_chunk_task_verify_thread(GTask *task,
			    gpointer source_object,
			    gpointer task_data,
			    GCancellable *cancellable)
{
	AsChunkTaskVerify *verify = task_data;
	GError *error = NULL;

	if (!as_chunk_task_end_chunk_verify(AS_CHUNK_TASK(source_object), &verify->claim,
					    verify->expected_sha256, cancellable, &verify->sha256,
					    &error)) {
		g_task_return_error(task, error);
		return;
	}
	g_task_return_boolean(task, TRUE);
}

/**
 * as_chunk_task_end_chunk_verify_async:
 * @self: a #AsChunkTask
 * @claim: what as_chunk_task_begin_chunk() gave; not one with @claim->verify set
 * @expected_sha256: the SHA-256 the sender gave for the chunk
 * @cancellable: (nullable): a #GCancellable, e.g. the claim's, so a takeover stops the read
 * @callback: called on the thread-default main context when done
 * @user_data: data for @callback
 *
 * as_chunk_task_end_chunk_verify() on a worker thread.
 **/
void
as_chunk_task_end_chunk_verify_async(AsChunkTask *self,
				     const AsChunkClaim *claim,
				     const gchar *expected_sha256,
				     GCancellable *cancellable,
				     GAsyncReadyCallback callback,
				     gpointer user_data)
{
	g_autoptr(GTask) task = g_task_new(self, cancellable, callback, user_data);
	AsChunkTaskVerify *verify = g_new0(AsChunkTaskVerify, 1);

	verify->claim = *claim;
	verify->expected_sha256 = g_strdup(expected_sha256);
	g_task_set_source_tag(task, as_chunk_task_end_chunk_verify_async);
	/* the outcome is what the thread did, cancelled or not: a recorded chunk stays recorded */
	g_task_set_check_cancellable(task, FALSE);
	g_task_set_task_data(task, verify, (GDestroyNotify)as_chunk_task_verify_free);
	g_task_run_in_thread(task, as_chunk_task_verify_thread);
}

/**
 * as_chunk_task_end_chunk_verify_finish:
 * @sha256_out: (out) (optional) (transfer full): the digest of what the disk holds, also on a
 *   mismatch; %NULL if it could not be read
 *
 * Returns: %TRUE if the chunk is now done, see as_chunk_task_end_chunk_verify()
 **/
gboolean
as_chunk_task_end_chunk_verify_finish(AsChunkTask *self,
				      GAsyncResult *res,
				      gchar **sha256_out,
				      GError **error)
{
	AsChunkTaskVerify *verify;

	g_return_val_if_fail(g_task_is_valid(res, self), FALSE);
	verify = g_task_get_task_data(G_TASK(res));
	if (sha256_out != NULL)
		*sha256_out = g_strdup(verify->sha256);
	return g_task_propagate_boolean(G_TASK(res), error);
}

typedef struct {
	AsChunkTask *task; /* owned */
	AsChunkClaim claim;
} AsChunkTaskAbandon;

static void
as_chunk_task_abandon_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	AsChunkTaskAbandon *abandon = user_data;
	g_autoptr(GError) error_local = NULL;
	g_autofree gchar *ignored = NULL;

	/* the writer is idle now: nothing of it can reach the file any more */
	ignored = as_disk_writer_finish_finish(AS_DISK_WRITER(source), res, &error_local);
	(void)as_chunk_task_end_chunk(abandon->task, &abandon->claim, FALSE, NULL, NULL);
	g_object_unref(abandon->task);
	g_free(abandon);
}

/**
 * as_chunk_task_abandon_chunk:
 * @self: a #AsChunkTask
 * @claim: a claim of as_chunk_task_begin_chunk()
 * @writer: the #AsDiskWriter writing the chunk, on which as_disk_writer_finish_async() was not
 *   called
 *
 * Gives up a chunk: aborts @writer and ends @claim unsuccessfully once the writer is idle, so
 * no write of it can land after the claim is released (a block being written completes
 * first). From the writer's main context.
 **/
void
as_chunk_task_abandon_chunk(AsChunkTask *self, const AsChunkClaim *claim, AsDiskWriter *writer)
{
	AsChunkTaskAbandon *abandon;

	g_return_if_fail(AS_IS_CHUNK_TASK(self));
	g_return_if_fail(claim != NULL);
	g_return_if_fail(AS_IS_DISK_WRITER(writer));

	abandon = g_new0(AsChunkTaskAbandon, 1);
	abandon->task = g_object_ref(self);
	abandon->claim = *claim;
	as_disk_writer_set_drain_func(writer, NULL, NULL);
	as_disk_writer_abort(writer);
	as_disk_writer_finish_async(writer, NULL, as_chunk_task_abandon_cb, abandon);
}

/**
 * as_chunk_task_is_chunk_done:
 * @self: a #AsChunkTask
 * @index: a chunk index
 *
 * Returns: %TRUE if the chunk was received completely
 **/
gboolean
as_chunk_task_is_chunk_done(AsChunkTask *self, guint32 index)
{
	g_autoptr(GMutexLocker) locker = NULL;
	gboolean done = FALSE;

	g_return_val_if_fail(AS_IS_CHUNK_TASK(self), FALSE);

	if (index >= self->total_chunks)
		return FALSE;
	locker = g_mutex_locker_new(&self->mutex);
	if (self->state == AS_CHUNK_TASK_STATE_COMPLETED)
		return TRUE;
	if (self->state == AS_CHUNK_TASK_STATE_DISCARDED)
		return FALSE;
	if (!as_chunk_task_read_map_byte(self, index, &done, NULL))
		return FALSE;
	return done;
}

typedef struct {
	gboolean done;
	AsChunkRangeFunc func;
	gpointer user_data;
} AsChunkTaskForeachHelper;

static void
as_chunk_task_foreach_run_cb(
	AsChunkTask *self, guint32 first, guint32 last, gboolean done, gpointer user_data)
{
	AsChunkTaskForeachHelper *helper = user_data;
	if (done == helper->done)
		helper->func(first, last, helper->user_data);
}

/**
 * as_chunk_task_foreach_range:
 * @self: a #AsChunkTask
 * @done: %TRUE to report received chunks, %FALSE for missing ones
 * @func: (scope call): called once per run of consecutive chunks, in order
 * @user_data: data for @func
 * @error: (nullable): optional return location for an error
 *
 * Reports run-length ranges of the chunk map, reading it in %AS_CHUNK_TASK_MAP_READ_SIZE
 * blocks, e.g. for a status query. Chunks in flight count as missing.
 *
 * Returns: %TRUE on success
 **/
gboolean
as_chunk_task_foreach_range(
	AsChunkTask *self, gboolean done, AsChunkRangeFunc func, gpointer user_data, GError **error)
{
	AsChunkTaskForeachHelper helper = {done, func, user_data};
	AsChunkTaskState state;

	g_return_val_if_fail(AS_IS_CHUNK_TASK(self), FALSE);
	g_return_val_if_fail(func != NULL, FALSE);
	g_return_val_if_fail(error == NULL || *error == NULL, FALSE);

	g_mutex_lock(&self->mutex);
	state = self->state;
	g_mutex_unlock(&self->mutex);
	if (state == AS_CHUNK_TASK_STATE_DISCARDED) {
		g_set_error(error, AS_ERROR, AS_ERROR_NOT_FOUND,
			    "task %s was discarded after a failed verification", self->id);
		return FALSE;
	}
	if (state == AS_CHUNK_TASK_STATE_COMPLETED) {
		if (done)
			func(0, self->total_chunks - 1, user_data);
		return TRUE;
	}

	/* without the lock: @func may call back into the task, and pread() on the fd, which
	 * lives as long as @self, is safe next to concurrent updates */
	return as_chunk_task_scan_map(self, as_chunk_task_foreach_run_cb, &helper, error);
}

typedef struct {
	gchar *expected_sha256; /* nullable */
	gboolean overwrite;
} AsChunkTaskCompleteData;

static void
as_chunk_task_complete_data_free(AsChunkTaskCompleteData *data)
{
	g_free(data->expected_sha256);
	g_free(data);
}

typedef struct {
	gchar *rel_path;
	gchar *sha256;
} AsChunkTaskCompleteResult;

static void
as_chunk_task_complete_result_free(AsChunkTaskCompleteResult *result)
{
	g_free(result->rel_path);
	g_free(result->sha256);
	g_free(result);
}

static void
as_chunk_task_return_result(GTask *task, const gchar *rel_path, const gchar *sha256)
{
	AsChunkTaskCompleteResult *result = g_new0(AsChunkTaskCompleteResult, 1);
	result->rel_path = g_strdup(rel_path);
	result->sha256 = g_strdup(sha256);
	g_task_return_pointer(task, result, (GDestroyNotify)as_chunk_task_complete_result_free);
}

static void
as_chunk_task_set_state(AsChunkTask *self, AsChunkTaskState state)
{
	g_mutex_lock(&self->mutex);
	self->state = state;
	g_mutex_unlock(&self->mutex);
}

static void
as_chunk_task_write_tombstone(AsChunkTask *self, const gchar *rel_path, const gchar *sha256)
{
	g_autofree gchar *done_name =
		as_chunk_store_task_file(self->id, AS_CHUNK_STORE_SUFFIX_DONE);
	g_autoptr(GKeyFile) keyfile = g_key_file_new();
	g_autoptr(GError) error_local = NULL;

	g_key_file_set_string(keyfile, AS_CHUNK_STORE_GROUP_DONE, "task_id", self->id);
	g_key_file_set_string(keyfile, AS_CHUNK_STORE_GROUP_DONE, "rel_path", rel_path);
	g_key_file_set_string(keyfile, AS_CHUNK_STORE_GROUP_DONE, "sha256", sha256);
	g_key_file_set_uint64(keyfile, AS_CHUNK_STORE_GROUP_DONE, "size", self->total_size);
	g_key_file_set_int64(keyfile, AS_CHUNK_STORE_GROUP_DONE, "completed",
			     g_get_real_time() / G_USEC_PER_SEC);

	/* the file is published already; only a retried complete would miss the tombstone */
	if (!as_chunk_store_write_keyfile(self->store, done_name, keyfile, &error_local))
		g_warning("task %s completed but %s", self->id, error_local->message);
}

static void
as_chunk_task_complete_thread(GTask *task,
			      gpointer source_object,
			      gpointer task_data,
			      GCancellable *cancellable)
{
	AsChunkTask *self = AS_CHUNK_TASK(source_object);
	AsChunkTaskCompleteData *data = task_data;
	AsChunkStore *store = self->store;
	g_autofree gchar *data_name =
		as_chunk_store_task_file(self->id, AS_CHUNK_STORE_SUFFIX_DATA);
	g_autofree gchar *map_name = as_chunk_store_task_file(self->id, AS_CHUNK_STORE_SUFFIX_MAP);
	g_autofree gchar *meta_name =
		as_chunk_store_task_file(self->id, AS_CHUNK_STORE_SUFFIX_META);
	g_autofree gchar *hash_name =
		as_chunk_store_task_file(self->id, AS_CHUNK_STORE_SUFFIX_HASH);
	g_autofree gchar *sha256 = NULL;
	g_autofree gchar *rel_path = NULL;
	GError *error = NULL;
	gboolean hashed;

	/* the hash followed the chunks as they landed; only the tail, if any, is left */
	g_mutex_lock(&self->mutex);
	as_chunk_task_take_hash_locked(self);
	sha256 = g_strdup(self->ephemeral_sha256);
	g_mutex_unlock(&self->mutex);
	hashed = sha256 != NULL || as_chunk_task_hash_done_chunks(self, cancellable, &error);
	if (sha256 == NULL && hashed && self->hashed_chunks != self->total_chunks) {
		g_set_error(&error, AS_ERROR, AS_ERROR_IO, "chunk %u is not in the chunk map",
			    self->hashed_chunks);
		hashed = FALSE;
	}
	if (hashed && sha256 == NULL)
		sha256 = as_sha256_state_finish_hex(self->prefix_hash);
	as_chunk_task_release_hash(self);
	if (!hashed) {
		as_chunk_task_set_state(self, AS_CHUNK_TASK_STATE_RECEIVING);
		g_prefix_error(&error, "failed to verify task %s: ", self->id);
		g_task_return_error(task, error);
		return;
	}

	/* without per-chunk hashes there is no telling which chunk is wrong, so keeping any of
	 * them would only make a resume converge on the same bad file: start over */
	if (data->expected_sha256 != NULL && !as_sha256_hex_equal(data->expected_sha256, sha256)) {
		g_mutex_lock(&self->mutex);
		g_free(self->computed_sha256);
		self->computed_sha256 = g_strdup(sha256);
		self->state = AS_CHUNK_TASK_STATE_DISCARDED;
		g_hash_table_remove_all(self->in_flight);
		self->n_stale = 0;
		g_mutex_unlock(&self->mutex);
		as_chunk_store_remove_task_files(store, self->id);
		as_chunk_store_unregister_task(store, self->id, self);
		g_task_return_new_error(task, AS_ERROR, AS_ERROR_HASH_MISMATCH,
					"SHA-256 mismatch: expected %s, got %s",
					data->expected_sha256, sha256);
		return;
	}

	/* the name must never point at data that a crash can still lose */
	while (fdatasync(self->data_fd) < 0) {
		if (errno == EINTR)
			continue;
		as_chunk_task_set_state(self, AS_CHUNK_TASK_STATE_RECEIVING);
		as_chunk_store_set_error_errno(&error, errno, "failed to sync task %s", self->id);
		g_task_return_error(task, error);
		return;
	}
	rel_path = as_publish_file(store->staging_fd, data_name, store->root_fd, self->rel_path,
				   data->overwrite, &error);
	if (rel_path == NULL) {
		as_chunk_task_set_state(self, AS_CHUNK_TASK_STATE_RECEIVING);
		g_prefix_error(&error, "failed to publish task %s: ", self->id);
		g_task_return_error(task, error);
		return;
	}

	/* tombstone before removing .meta, so there is always a record of the task */
	as_chunk_task_write_tombstone(self, rel_path, sha256);
	if (!self->ephemeral) {
		as_chunk_store_unlink(store, map_name);
		as_chunk_store_unlink(store, meta_name);
		as_chunk_store_unlink(store, hash_name);
	}

	g_mutex_lock(&self->mutex);
	self->state = AS_CHUNK_TASK_STATE_COMPLETED;
	self->done_count = self->total_chunks;
	self->bytes_done = self->total_size;
	g_free(self->published_rel_path);
	self->published_rel_path = g_strdup(rel_path);
	g_free(self->sha256);
	self->sha256 = g_strdup(sha256);
	g_mutex_unlock(&self->mutex);
	g_debug("task %s published as %s", self->id, rel_path);
	as_chunk_task_return_result(task, rel_path, sha256);
}

/**
 * as_chunk_task_complete_async:
 * @self: a #AsChunkTask
 * @expected_sha256: (nullable): the SHA-256 announced by the client, in either case
 * @overwrite: whether an existing file at the destination may be replaced
 * @cancellable: (nullable): a #GCancellable
 * @callback: called when done
 * @user_data: data for @callback
 *
 * In a worker thread: checks that every chunk is present, hashes the data file by
 * streaming it, and publishes it at the task's relative path (never clobbering unless
 * @overwrite). On a hash mismatch the task is discarded. Completing a completed task gives
 * the same answer again.
 **/
void
as_chunk_task_complete_async(AsChunkTask *self,
			     const gchar *expected_sha256,
			     gboolean overwrite,
			     GCancellable *cancellable,
			     GAsyncReadyCallback callback,
			     gpointer user_data)
{
	g_autoptr(GTask) task = NULL;
	g_autoptr(GMutexLocker) locker = NULL;
	AsChunkTaskCompleteData *data;

	g_return_if_fail(AS_IS_CHUNK_TASK(self));
	g_return_if_fail(cancellable == NULL || G_IS_CANCELLABLE(cancellable));

	task = g_task_new(self, cancellable, callback, user_data);
	g_task_set_source_tag(task, as_chunk_task_complete_async);
	if (expected_sha256 != NULL && expected_sha256[0] == '\0')
		expected_sha256 = NULL;
	if (expected_sha256 != NULL && !as_sha256_hex_is_valid(expected_sha256)) {
		g_task_return_new_error(task, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
					"'%s' is not a SHA-256 in hex", expected_sha256);
		return;
	}

	locker = g_mutex_locker_new(&self->mutex);
	switch (self->state) {
	case AS_CHUNK_TASK_STATE_DISCARDED:
		g_task_return_new_error(task, AS_ERROR, AS_ERROR_NOT_FOUND,
					"task %s was discarded after a failed verification",
					self->id);
		return;
	case AS_CHUNK_TASK_STATE_COMPLETING:
		g_task_return_new_error(task, AS_ERROR, AS_ERROR_CONFLICT,
					"task %s is already being completed", self->id);
		return;
	case AS_CHUNK_TASK_STATE_COMPLETED:
		/* a retry whose first reply was lost: the file is published, never touch it */
		if (expected_sha256 != NULL &&
		    !as_sha256_hex_equal(expected_sha256, self->sha256)) {
			g_task_return_new_error(task, AS_ERROR, AS_ERROR_HASH_MISMATCH,
						"SHA-256 mismatch: expected %s, got %s",
						expected_sha256, self->sha256);
			return;
		}
		as_chunk_task_return_result(task, self->published_rel_path, self->sha256);
		return;
	case AS_CHUNK_TASK_STATE_RECEIVING:
	default:
		break;
	}
	if (self->done_count < self->total_chunks) {
		g_task_return_new_error(task, AS_ERROR, AS_ERROR_INCOMPLETE,
					"%u of %u chunks missing",
					self->total_chunks - self->done_count, self->total_chunks);
		return;
	}

	/* every chunk is done, so begin_chunk() only answers "already done" from now on */
	self->state = AS_CHUNK_TASK_STATE_COMPLETING;
	data = g_new0(AsChunkTaskCompleteData, 1);
	data->expected_sha256 = g_strdup(expected_sha256);
	data->overwrite = overwrite;
	g_task_set_task_data(task, data, (GDestroyNotify)as_chunk_task_complete_data_free);
	g_task_run_in_thread(task, as_chunk_task_complete_thread);
}

/**
 * as_chunk_task_complete_finish:
 * @self: a #AsChunkTask
 * @res: the #GAsyncResult
 * @sha256_out: (out) (optional) (transfer full): the SHA-256 of the file as lower-case hex
 * @error: (nullable): optional return location for an error
 *
 * Returns: (transfer full): the relative path the file was published to, or %NULL:
 * %AS_ERROR_INCOMPLETE "N of M chunks missing", %AS_ERROR_HASH_MISMATCH (the task is gone,
 * the client must start over), %AS_ERROR_CONFLICT while another completion runs
 **/
gchar *
as_chunk_task_complete_finish(AsChunkTask *self,
			      GAsyncResult *res,
			      gchar **sha256_out,
			      GError **error)
{
	AsChunkTaskCompleteResult *result;
	gchar *rel_path;

	g_return_val_if_fail(AS_IS_CHUNK_TASK(self), NULL);
	g_return_val_if_fail(g_task_is_valid(res, self), NULL);
	g_return_val_if_fail(error == NULL || *error == NULL, NULL);

	result = g_task_propagate_pointer(G_TASK(res), error);
	if (result == NULL)
		return NULL;
	rel_path = g_steal_pointer(&result->rel_path);
	if (sha256_out != NULL)
		*sha256_out = g_steal_pointer(&result->sha256);
	as_chunk_task_complete_result_free(result);
	return rel_path;
}

static void
as_chunk_task_finalize(GObject *object)
{
	AsChunkTask *self = AS_CHUNK_TASK(object);

	as_chunk_store_unregister_task(self->store, self->id, self);
	if (self->data_fd >= 0)
		close(self->data_fd);
	if (self->map_fd >= 0)
		close(self->map_fd);
	if (self->hash_fd >= 0)
		close(self->hash_fd);
	g_hash_table_unref(self->in_flight);
	as_sha256_state_free(self->prefix_hash);
	g_cond_clear(&self->hash_cond);
	g_mutex_clear(&self->mutex);
	g_free(self->published_rel_path);
	g_free(self->sha256);
	g_free(self->computed_sha256);
	g_free(self->ephemeral_sha256);
	g_free(self->id);
	g_free(self->rel_path);
	g_object_unref(self->store);
	G_OBJECT_CLASS(as_chunk_task_parent_class)->finalize(object);
}

static void
as_chunk_task_class_init(AsChunkTaskClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);
	object_class->finalize = as_chunk_task_finalize;
}

static void
as_chunk_task_init(AsChunkTask *self)
{
	self->data_fd = -1;
	self->map_fd = -1;
	self->hash_fd = -1;
	self->state = AS_CHUNK_TASK_STATE_RECEIVING;
	g_mutex_init(&self->mutex);
	g_cond_init(&self->hash_cond);
	self->prefix_hash = as_sha256_state_new();
	self->in_flight =
		g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, as_chunk_claim_rec_free);
}
