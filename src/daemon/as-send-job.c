/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "AsSendJob"

#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "as-error.h"
#include "as-known-peers.h"
#include "as-peer-client.h"
#include "as-send-job.h"
#if HAVE_QUIC
#include "as-quic-sender.h"
#include "as-quic.h"
#endif
#if HAVE_MDNS
#include "as-mdns-browser.h"
#endif
#include "as-sha256-state.h"
#include "as-sha256.h"

/*
 * One Send(): a walk of the sources into the resume record, a connection to the receiver, then
 * every file in the order of the record. Tiny files go 64 to a POST /upload/batch, files below a
 * chunk in one PUT, larger ones in chunks read by one thread per file, sequentially: that thread
 * computes the whole-file SHA-256 (resumable) and each chunk's SHA-256 in the same pass and hands
 * the chunks to up to Parallel POST /upload/chunk requests. Memory is bounded by a budget of
 * Parallel + 1 buffers of at most a chunk each, shared by every kind of request. Everything but
 * the reading and hashing runs on the main loop. When the receiver is reached over QUIC
 * (quic://, or offered in /health), files go whole on streams of one connection instead, up to
 * Parallel at once (see as-quic-sender.h and the QUIC fields of AsSendJob).
 */

/* a walk reports at most this many unreadable entries one by one; more are only counted */
#define AS_SEND_JOB_WALK_REPORT_MAX 1000
/* a Tag or a token longer than this is refused */
#define AS_SEND_JOB_HEADER_VALUE_MAX 1024
/* how long a NAME.local or @instance destination is looked for on the network */
#define AS_SEND_JOB_MDNS_TIMEOUT_MS 3000

/* -------- replies: JSON from a peer, read without trusting its shape -------- */

static const gchar *
as_send_json_string(JsonObject *obj, const gchar *key)
{
	JsonNode *node = obj != NULL ? json_object_get_member(obj, key) : NULL;
	if (node == NULL || !JSON_NODE_HOLDS_VALUE(node) ||
	    json_node_get_value_type(node) != G_TYPE_STRING)
		return NULL;
	return json_node_get_string(node);
}

static gboolean
as_send_json_boolean(JsonObject *obj, const gchar *key)
{
	JsonNode *node = obj != NULL ? json_object_get_member(obj, key) : NULL;
	if (node == NULL || !JSON_NODE_HOLDS_VALUE(node) ||
	    json_node_get_value_type(node) != G_TYPE_BOOLEAN)
		return FALSE;
	return json_node_get_boolean(node);
}

static gint64
as_send_json_int(JsonNode *node, gint64 fallback)
{
	if (node == NULL || !JSON_NODE_HOLDS_VALUE(node) ||
	    json_node_get_value_type(node) != G_TYPE_INT64)
		return fallback;
	return json_node_get_int(node);
}

static JsonArray *
as_send_json_array(JsonObject *obj, const gchar *key)
{
	JsonNode *node = obj != NULL ? json_object_get_member(obj, key) : NULL;
	if (node == NULL || !JSON_NODE_HOLDS_ARRAY(node))
		return NULL;
	return json_node_get_array(node);
}

/* -------- options -------- */

static gboolean
as_send_options_lookup(GVariant *options,
		       const gchar *key,
		       const GVariantType *type,
		       GVariant **value,
		       GError **error)
{
	g_autoptr(GVariant) v = g_variant_lookup_value(options, key, NULL);

	*value = NULL;
	if (v == NULL)
		return TRUE;
	if (!g_variant_is_of_type(v, type)) {
		g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
			    "option %s must be of type '%.*s', not '%s'", key,
			    (gint)g_variant_type_get_string_length(type),
			    g_variant_type_peek_string(type), g_variant_get_type_string(v));
		return FALSE;
	}
	*value = g_steal_pointer(&v);
	return TRUE;
}

/* header values: printable ASCII, and no spaces at all in a token */
static gboolean
as_send_options_check_header_value(const gchar *key,
				   const gchar *value,
				   gboolean allow_space,
				   GError **error)
{
	gsize len = strlen(value);

	if (len == 0 || len > AS_SEND_JOB_HEADER_VALUE_MAX) {
		g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
			    "%s must be 1 to %u characters", key,
			    (guint)AS_SEND_JOB_HEADER_VALUE_MAX);
		return FALSE;
	}
	for (gsize i = 0; i < len; i++) {
		guchar c = (guchar)value[i];
		if (c < 0x20 || c > 0x7e || (c == ' ' && !allow_space)) {
			g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
				    "%s may only hold printable ASCII characters%s", key,
				    allow_space ? "" : " and no spaces");
			return FALSE;
		}
	}
	return TRUE;
}

/**
 * as_send_options_parse:
 * @self: the options to fill; clear them with as_send_options_clear()
 * @options: (nullable): the `a{sv}` of Send(), or one saved by as_send_options_to_variant()
 * @error: (nullable): optional return location for an error
 *
 * Checks every known option; unknown keys are ignored so clients can be newer than us.
 *
 * Returns: %TRUE on success; %AS_ERROR_INVALID_ARGUMENT for a wrong type or value
 **/
gboolean
as_send_options_parse(AsSendOptions *self, GVariant *options, GError **error)
{
	g_autoptr(GVariant) v = NULL;

	memset(self, 0, sizeof(*self));
	self->protocol = g_strdup("auto");
	self->parallel = AS_SEND_JOB_DEFAULT_PARALLEL;
	self->chunk_size = AS_SEND_JOB_DEFAULT_CHUNK_SIZE;
	self->verify = TRUE;
	self->preflight = TRUE;
	if (options == NULL)
		return TRUE;
	if (!g_variant_is_of_type(options, G_VARIANT_TYPE_VARDICT)) {
		g_set_error_literal(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
				    "options must be an a{sv}");
		return FALSE;
	}

	if (!as_send_options_lookup(options, AS_SEND_KEY_TOKEN, G_VARIANT_TYPE_STRING, &v, error))
		return FALSE;
	if (v != NULL) {
		self->token = g_variant_dup_string(v, NULL);
		if (!as_send_options_check_header_value(AS_SEND_KEY_TOKEN, self->token, FALSE,
							error))
			return FALSE;
		g_clear_pointer(&v, g_variant_unref);
	}
	if (!as_send_options_lookup(options, AS_SEND_KEY_TOKEN_FILE, G_VARIANT_TYPE_STRING, &v,
				    error))
		return FALSE;
	if (v != NULL) {
		self->token_file = g_variant_dup_string(v, NULL);
		g_clear_pointer(&v, g_variant_unref);
		if (!g_path_is_absolute(self->token_file)) {
			g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
				    "TokenFile must be an absolute path, not '%s'",
				    self->token_file);
			return FALSE;
		}
	}
	if (self->token != NULL && self->token_file != NULL) {
		g_set_error_literal(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
				    "give Token or TokenFile, not both");
		return FALSE;
	}
	if (!as_send_options_lookup(options, AS_SEND_KEY_RECURSIVE, G_VARIANT_TYPE_BOOLEAN, &v,
				    error))
		return FALSE;
	if (v != NULL) {
		self->recursive = g_variant_get_boolean(v);
		g_clear_pointer(&v, g_variant_unref);
	}
	if (!as_send_options_lookup(options, AS_SEND_KEY_PROTOCOL, G_VARIANT_TYPE_STRING, &v,
				    error))
		return FALSE;
	if (v != NULL) {
		g_free(self->protocol);
		self->protocol = g_variant_dup_string(v, NULL);
		g_clear_pointer(&v, g_variant_unref);
	}
	if (!as_send_options_lookup(options, AS_SEND_KEY_PARALLEL, G_VARIANT_TYPE_UINT32, &v,
				    error))
		return FALSE;
	if (v != NULL) {
		self->parallel = g_variant_get_uint32(v);
		g_clear_pointer(&v, g_variant_unref);
		if (self->parallel == 0 || self->parallel > AS_SEND_JOB_MAX_PARALLEL) {
			g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
				    "Parallel must be 1 to %u", (guint)AS_SEND_JOB_MAX_PARALLEL);
			return FALSE;
		}
	}
	if (!as_send_options_lookup(options, AS_SEND_KEY_CHUNK_SIZE, G_VARIANT_TYPE_UINT64, &v,
				    error))
		return FALSE;
	if (v != NULL) {
		self->chunk_size = g_variant_get_uint64(v);
		g_clear_pointer(&v, g_variant_unref);
		if (self->chunk_size == 0)
			self->chunk_size = AS_SEND_JOB_DEFAULT_CHUNK_SIZE;
		if (self->chunk_size < AS_SEND_JOB_MIN_CHUNK_SIZE ||
		    self->chunk_size > AS_SEND_JOB_MAX_CHUNK_SIZE) {
			g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
				    "ChunkSize must be %u to %u bytes",
				    (guint)AS_SEND_JOB_MIN_CHUNK_SIZE,
				    (guint)AS_SEND_JOB_MAX_CHUNK_SIZE);
			return FALSE;
		}
	}
	if (!as_send_options_lookup(options, AS_SEND_KEY_RATE_LIMIT, G_VARIANT_TYPE_UINT64, &v,
				    error))
		return FALSE;
	if (v != NULL) {
		self->rate_limit = g_variant_get_uint64(v);
		g_clear_pointer(&v, g_variant_unref);
		if (self->rate_limit > AS_RATE_LIMIT_MAX_BYTES_PER_S) {
			g_set_error_literal(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
					    "RateLimit is too large");
			return FALSE;
		}
	}
	if (!as_send_options_lookup(options, AS_SEND_KEY_VERIFY, G_VARIANT_TYPE_BOOLEAN, &v, error))
		return FALSE;
	if (v != NULL) {
		self->verify = g_variant_get_boolean(v);
		g_clear_pointer(&v, g_variant_unref);
	}
	if (!as_send_options_lookup(options, AS_SEND_KEY_PREFLIGHT, G_VARIANT_TYPE_BOOLEAN, &v,
				    error))
		return FALSE;
	if (v != NULL) {
		self->preflight = g_variant_get_boolean(v);
		g_clear_pointer(&v, g_variant_unref);
	}
	if (!as_send_options_lookup(options, AS_SEND_KEY_TAG, G_VARIANT_TYPE_STRING, &v, error))
		return FALSE;
	if (v != NULL) {
		self->tag = g_variant_dup_string(v, NULL);
		g_clear_pointer(&v, g_variant_unref);
		if (!as_send_options_check_header_value(AS_SEND_KEY_TAG, self->tag, TRUE, error))
			return FALSE;
	}
	/* the receiver's certificate (QUIC, HTTPS): a pin, or Insecure when asked for; never both
	 */
	if (!as_send_options_lookup(options, AS_SEND_KEY_PIN, G_VARIANT_TYPE_STRING, &v, error))
		return FALSE;
	if (v != NULL) {
		g_autofree gchar *lower = g_ascii_strdown(g_variant_get_string(v, NULL), -1);
		g_auto(GStrv) parts = g_strsplit(lower, ":", -1);
		g_clear_pointer(&v, g_variant_unref);
		self->pin = g_strjoinv("", parts);
		if (!as_sha256_hex_is_valid(self->pin)) {
			g_set_error_literal(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
					    "Pin must be a SHA-256: 64 hex digits, colons allowed");
			return FALSE;
		}
	}
	if (!as_send_options_lookup(options, AS_SEND_KEY_INSECURE, G_VARIANT_TYPE_BOOLEAN, &v,
				    error))
		return FALSE;
	if (v != NULL) {
		self->insecure = g_variant_get_boolean(v);
		g_clear_pointer(&v, g_variant_unref);
	}
	if (self->pin != NULL && self->insecure) {
		g_set_error_literal(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
				    "give Pin or Insecure, not both");
		return FALSE;
	}
	if (!as_send_options_lookup(options, AS_SEND_KEY_PATHS, G_VARIANT_TYPE_STRING_ARRAY, &v,
				    error))
		return FALSE;
	if (v != NULL)
		self->paths = g_variant_dup_strv(v, NULL);
	return TRUE;
}

/**
 * as_send_options_to_variant:
 * @self: checked options
 *
 * Returns: (transfer floating): the options in normal form, for the resume record
 **/
GVariant *
as_send_options_to_variant(const AsSendOptions *self)
{
	GVariantBuilder b;

	g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
	/* the token has to survive a restart to resume; the record is 0600 in a 0700 folder */
	if (self->token != NULL)
		g_variant_builder_add(&b, "{sv}", AS_SEND_KEY_TOKEN,
				      g_variant_new_string(self->token));
	if (self->token_file != NULL)
		g_variant_builder_add(&b, "{sv}", AS_SEND_KEY_TOKEN_FILE,
				      g_variant_new_string(self->token_file));
	g_variant_builder_add(&b, "{sv}", AS_SEND_KEY_RECURSIVE,
			      g_variant_new_boolean(self->recursive));
	g_variant_builder_add(&b, "{sv}", AS_SEND_KEY_PROTOCOL,
			      g_variant_new_string(self->protocol));
	g_variant_builder_add(&b, "{sv}", AS_SEND_KEY_PARALLEL,
			      g_variant_new_uint32(self->parallel));
	g_variant_builder_add(&b, "{sv}", AS_SEND_KEY_CHUNK_SIZE,
			      g_variant_new_uint64(self->chunk_size));
	g_variant_builder_add(&b, "{sv}", AS_SEND_KEY_RATE_LIMIT,
			      g_variant_new_uint64(self->rate_limit));
	g_variant_builder_add(&b, "{sv}", AS_SEND_KEY_VERIFY, g_variant_new_boolean(self->verify));
	g_variant_builder_add(&b, "{sv}", AS_SEND_KEY_PREFLIGHT,
			      g_variant_new_boolean(self->preflight));
	if (self->tag != NULL)
		g_variant_builder_add(&b, "{sv}", AS_SEND_KEY_TAG, g_variant_new_string(self->tag));
	if (self->pin != NULL)
		g_variant_builder_add(&b, "{sv}", AS_SEND_KEY_PIN, g_variant_new_string(self->pin));
	if (self->insecure)
		g_variant_builder_add(&b, "{sv}", AS_SEND_KEY_INSECURE,
				      g_variant_new_boolean(self->insecure));
	if (self->paths != NULL)
		g_variant_builder_add(&b, "{sv}", AS_SEND_KEY_PATHS,
				      g_variant_new_strv((const gchar *const *)self->paths, -1));
	return g_variant_builder_end(&b);
}

/**
 * as_send_options_load_token:
 * @self: checked options
 * @error: (nullable): optional return location for an error
 *
 * Gives the Token, or reads the TokenFile (blocking, a few bytes).
 *
 * Returns: (transfer full) (nullable): the token, or %NULL with no error when none was given
 **/
gchar *
as_send_options_load_token(const AsSendOptions *self, GError **error)
{
	g_autofree gchar *contents = NULL;
	gsize len = 0;
	GStatBuf st;

	if (self->token != NULL)
		return g_strdup(self->token);
	if (self->token_file == NULL)
		return NULL;
	if (g_stat(self->token_file, &st) != 0) {
		int errsv = errno;
		g_set_error(error, AS_ERROR, errsv == ENOENT ? AS_ERROR_NOT_FOUND : AS_ERROR_IO,
			    "cannot read TokenFile %s: %s", self->token_file, g_strerror(errsv));
		return NULL;
	}
	if (!S_ISREG(st.st_mode) || st.st_size > AS_SEND_JOB_TOKEN_FILE_MAX) {
		g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
			    "TokenFile %s is not a file of at most %u bytes", self->token_file,
			    (guint)AS_SEND_JOB_TOKEN_FILE_MAX);
		return NULL;
	}
	if (!g_file_get_contents(self->token_file, &contents, &len, error)) {
		as_error_convert(error);
		g_prefix_error(error, "cannot read TokenFile: ");
		return NULL;
	}
	g_strstrip(contents);
	if (!as_send_options_check_header_value("the token in TokenFile", contents, FALSE, error))
		return NULL;
	return g_steal_pointer(&contents);
}

void
as_send_options_clear(AsSendOptions *self)
{
	if (self->token != NULL)
		memset(self->token, 0, strlen(self->token));
	g_clear_pointer(&self->token, g_free);
	g_clear_pointer(&self->token_file, g_free);
	g_clear_pointer(&self->protocol, g_free);
	g_clear_pointer(&self->tag, g_free);
	g_clear_pointer(&self->pin, g_free);
	g_clear_pointer(&self->paths, g_strfreev);
}

/* -------- the buffer budget, shared with reader threads -------- */

/*
 * At most @max request bodies in memory. A unit is taken before a body is read and given back
 * when the last reference to the body's GBytes goes, wherever that is (libsoup may hold it a
 * little longer than the request). Chunk buffers are kept in a pool and reused, so a long
 * transfer neither faults in fresh pages for every chunk nor leaves a fragmented heap behind.
 * The mutex also guards the chunk readers' shared fields.
 */
typedef struct {
	GMutex mutex;
	GCond cond;
	guint alive;
	guint max;
	GPtrArray *pool; /* free buffers of pool_size bytes, at most max */
	gsize pool_size;
} AsSendBudget;

static AsSendBudget *
as_send_budget_new(guint max)
{
	AsSendBudget *budget = g_atomic_rc_box_new0(AsSendBudget);
	g_mutex_init(&budget->mutex);
	g_cond_init(&budget->cond);
	budget->max = max;
	budget->pool = g_ptr_array_new_with_free_func(g_free);
	return budget;
}

static void
as_send_budget_clear(gpointer data)
{
	AsSendBudget *budget = data;
	g_ptr_array_unref(budget->pool);
	g_mutex_clear(&budget->mutex);
	g_cond_clear(&budget->cond);
}

static AsSendBudget *
as_send_budget_ref(AsSendBudget *budget)
{
	return g_atomic_rc_box_acquire(budget);
}

static void
as_send_budget_unref(AsSendBudget *budget)
{
	g_atomic_rc_box_release_full(budget, as_send_budget_clear);
}

static gboolean
as_send_budget_try_acquire(AsSendBudget *budget)
{
	gboolean ok;

	g_mutex_lock(&budget->mutex);
	ok = budget->alive < budget->max;
	if (ok)
		budget->alive++;
	g_mutex_unlock(&budget->mutex);
	return ok;
}

static void
as_send_budget_release_locked(AsSendBudget *budget)
{
	if (budget->alive > 0)
		budget->alive--;
	g_cond_broadcast(&budget->cond);
}

static void
as_send_budget_release(AsSendBudget *budget)
{
	g_mutex_lock(&budget->mutex);
	as_send_budget_release_locked(budget);
	g_mutex_unlock(&budget->mutex);
}

/* a chunk buffer of @size bytes, from the pool when one is free; called with the lock held */
static guint8 *
as_send_budget_take_buffer_locked(AsSendBudget *budget, gsize size)
{
	if (budget->pool_size != size) {
		g_ptr_array_set_size(budget->pool, 0);
		budget->pool_size = size;
	}
	if (budget->pool->len > 0)
		return g_ptr_array_steal_index_fast(budget->pool, budget->pool->len - 1);
	return g_malloc(size);
}

/* what a body's GBytes gives back when it goes */
typedef struct {
	AsSendBudget *budget; /* owned ref */
	guint8 *buffer;	      /* pooled buffer, or NULL */
	gsize capacity;
	GBytes *inner; /* owned, or NULL */
} AsSendBudgetHold;

static void
as_send_budget_hold_free(gpointer data)
{
	AsSendBudgetHold *hold = data;
	AsSendBudget *budget = hold->budget;

	g_mutex_lock(&budget->mutex);
	if (hold->buffer != NULL && hold->capacity == budget->pool_size &&
	    budget->pool->len < budget->max)
		g_ptr_array_add(budget->pool, g_steal_pointer(&hold->buffer));
	as_send_budget_release_locked(budget);
	g_mutex_unlock(&budget->mutex);
	g_free(hold->buffer);
	if (hold->inner != NULL)
		g_bytes_unref(hold->inner);
	as_send_budget_unref(budget);
	g_free(hold);
}

/* @len bytes of a pooled @buffer, holding the unit taken for it */
static GBytes *
as_send_budget_bytes_new(AsSendBudget *budget, guint8 *buffer, gsize len, gsize capacity)
{
	AsSendBudgetHold *hold = g_new0(AsSendBudgetHold, 1);
	hold->budget = as_send_budget_ref(budget);
	hold->buffer = buffer;
	hold->capacity = capacity;
	return g_bytes_new_with_free_func(buffer, len, as_send_budget_hold_free, hold);
}

/* @inner, holding the unit taken for it */
static GBytes *
as_send_budget_wrap(AsSendBudget *budget, GBytes *inner)
{
	AsSendBudgetHold *hold = g_new0(AsSendBudgetHold, 1);
	gsize len = 0;
	gconstpointer data = g_bytes_get_data(inner, &len);

	hold->budget = as_send_budget_ref(budget);
	hold->inner = inner;
	return g_bytes_new_with_free_func(data, len, as_send_budget_hold_free, hold);
}

/* -------- requests and chunked files -------- */

typedef enum {
	AS_SEND_REQ_SINGLE,
	AS_SEND_REQ_BATCH,
	AS_SEND_REQ_CHUNK,
	AS_SEND_REQ_STATUS,
	AS_SEND_REQ_COMPLETE,
	AS_SEND_REQ_QUIC, /* one whole file on a QUIC stream */
} AsSendReqKind;

typedef struct _AsSendChunked AsSendChunked;

/* one file of a batch request */
typedef struct {
	AsSendFile *file; /* owned */
	gchar *sha256;	  /* owned, nullable */
	gchar *error;	  /* owned: it could not be read */
	gint64 started_us;
} AsSendBatchPart;

/* one request, ready or in flight; its body holds one unit of the budget */
typedef struct {
	AsSendJob *job; /* owned ref while in flight or being read */
	AsSendReqKind kind;
	AsSendBudget *budget;	 /* owned ref while holding a unit no body holds yet */
	GBytes *data;		 /* owned: the body */
	gchar *content_type;	 /* batch */
	gchar *sha256;		 /* X-File-Hash or X-Chunk-Hash */
	AsSendFile *file;	 /* single: owned */
	gint64 started_us;	 /* single */
	GPtrArray *parts;	 /* batch: (element-type AsSendBatchPart) */
	AsSendChunked *chunked;	 /* chunk, status, complete: owned ref */
	guint32 index;		 /* chunk */
	gboolean after_complete; /* status asked because completing failed */
	guint64 sent;		 /* body bytes handed to the socket */
	guint epoch;		 /* of the outage count when it started */
} AsSendReq;

/* a chunk the reader thread made ready */
typedef struct {
	guint32 index;
	GBytes *data;
	gchar *sha256;
} AsSendChunkBuf;

/*
 * A file sent in chunks. The fields marked (locked) are shared with its reader thread under
 * the budget's mutex; the rest belongs to the main thread.
 */
struct _AsSendChunked {
	AsSendJob *job;	      /* not owned; NULL once the job let go of the file */
	AsSendBudget *budget; /* owned ref */
	AsSendFile *rec;      /* owned: the record in the resume state */
	gchar *name;	      /* for the reader's messages */
	gchar *source;
	guint64 size;
	gint64 mtime_us;
	guint64 chunk_size;
	guint32 total_chunks;
	gboolean verify;
	int fd;		 /* opened by the first reader, closed on free */
	GThread *thread; /* the reader, until joined */
	/* (locked) */
	guint8 *want;	 /* per chunk: to be read and sent */
	GQueue produced; /* (element-type AsSendChunkBuf) */
	gboolean stop;
	gboolean reader_done;
	gboolean notify_pending;
	GError *reader_error;
	AsSha256State *hash; /* the whole-file hash; only the reader touches it while it runs */
	guint32 hashed_chunks;
	GBytes *hash_blob; /* a saved copy of hash after hashed_chunks */
	gchar *hash_hex;   /* once every chunk is hashed */
	guint32 reader_first;
	/* main thread */
	guint8 *acked; /* per chunk: the receiver holds it */
	guint32 outstanding;
	guint64 bytes_acked;
	gchar *sha256; /* ours, once known */
	gchar *remote_sha256;
	gchar *remote_saved_as;
	gboolean finished;
	gboolean need_status;
	gboolean status_pending;
	gboolean complete_pending;
	gboolean started;
	guint repair_rounds;
	guint conflicts;
	gint64 started_us;
	gint64 complete_wait_since_us;
	guint poll_id;
};

typedef enum {
	AS_SEND_JOB_PHASE_NEW,
	AS_SEND_JOB_PHASE_CONNECT,
	AS_SEND_JOB_PHASE_WALK,
	AS_SEND_JOB_PHASE_RUN,
	AS_SEND_JOB_PHASE_DONE,
} AsSendJobPhase;

struct _AsSendJob {
	GObject parent_instance;
	AsEngine *engine;     /* owned ref */
	AsTransfer *transfer; /* owned ref */
	AsSendState *state;   /* owned; the walk thread's alone while it runs */
	AsSendOptions opts;
	AsPeerClient *client;	       /* owned */
	AsRateLimiter *limiter;	       /* owned */
	AsRateLimiter *global_limiter; /* owned ref, nullable */
	AsSendBudget *budget;	       /* owned ref */
	AsFileWalker *walker;	       /* owned until the walk starts, nullable */
	gchar *id;
	gchar *display_name;
	gboolean resumed;
	AsSendJobPhase phase;
	GCancellable *cancellable; /* owned: the requests of this run; pause and cancel abort it */
	GCancellable *walk_cancellable; /* owned */
	gboolean paused;
	gboolean cancelling;
	gboolean stopped;
	gboolean connect_wanted;   /* a pause interrupted the connection */
	AsSendStateFileIter *iter; /* owned */
	gboolean iter_done;
	AsSendFile *lookahead; /* owned: next file, waiting for its turn */
	GPtrArray *accum;      /* (element-type AsSendFile): files for the next batch */
	guint64 accum_bytes;
	guint preparing;      /* singles and batches being read in a thread */
	GQueue ready_control; /* (element-type AsSendReq): status and complete */
	GQueue ready_data;    /* (element-type AsSendReq): bodies */
	guint n_in_flight;
	guint n_data_in_flight;
	GPtrArray *chunked;	/* (element-type AsSendChunked) owned refs */
	AsSendChunked *reading; /* the chunked file whose first read pass runs */
	guint64 bytes_base;	/* sizes of the files done */
	gint64 bytes_in_flight; /* body bytes of requests in flight */
	gint64 progress_us;
	gchar *current_name;
	guint files_done;
	guint files_failed;
	gchar *first_error;
	gboolean file_lines; /* a history line was written for a file */
	guint epoch;
	guint backoff_step;
	gint64 outage_since_us;
	guint backoff_id;
	guint tick_id;
	guint64 free_bytes; /* from /health; G_MAXUINT64 when unknown */
	gchar *token;	    /* owned, nullable: for QUIC upload lines */

	/*
	 * QUIC (see as-quic-sender.h). A quic:// destination sends everything over it, with no
	 * HTTP side (client is NULL). Otherwise /health tells whether the receiver offers QUIC:
	 * then files below the chunk size go over it, larger ones stay on HTTP chunks, which can
	 * resume where they stopped; and when QUIC does not connect or breaks down, Protocol auto
	 * goes on over HTTP and says why in the transfer's Protocol ("http (QUIC fallback: ...)").
	 */
#if HAVE_QUIC
	AsQuicSender *quic; /* owned, nullable */
#endif
	gboolean quic_only;
	gchar *quic_host; /* quic:// */
	guint16 quic_port;
	/* NAME.local and @instance: looked up with Avahi at every connect, client NULL before */
	gboolean mdns;
	gchar *mdns_pin;	/* the certificate SHA-256 the announcement carried */
	guint16 mdns_quic_port; /* and its QUIC port, when /health gives none */
	GQueue requeued;	/* (element-type AsSendFile): back from QUIC, to go over HTTP */
};

G_DEFINE_TYPE(AsSendJob, as_send_job, G_TYPE_OBJECT)

enum { SIGNAL_FINISHED, SIGNAL_LAST };
static guint signals[SIGNAL_LAST];

static void as_send_job_pump(AsSendJob *self);
static void as_send_job_fail(AsSendJob *self, const gchar *reason);
static void as_send_job_connect(AsSendJob *self);
static void as_send_chunked_maybe_complete(AsSendChunked *c);
static void as_send_job_connected(AsSendJob *self);

static void
as_send_chunk_buf_free(AsSendChunkBuf *buf)
{
	g_bytes_unref(buf->data);
	g_free(buf->sha256);
	g_free(buf);
}

static void
as_send_batch_part_free(AsSendBatchPart *part)
{
	as_send_file_free(part->file);
	g_free(part->sha256);
	g_free(part->error);
	g_free(part);
}

static AsSendChunked *
as_send_chunked_ref(AsSendChunked *c)
{
	return g_atomic_rc_box_acquire(c);
}

static void
as_send_chunked_clear(gpointer data)
{
	AsSendChunked *c = data;
	AsSendChunkBuf *buf;

	while ((buf = g_queue_pop_head(&c->produced)) != NULL)
		as_send_chunk_buf_free(buf);
	if (c->fd >= 0)
		g_close(c->fd, NULL);
	g_clear_handle_id(&c->poll_id, g_source_remove);
	g_clear_pointer(&c->hash, as_sha256_state_free);
	g_clear_pointer(&c->hash_blob, g_bytes_unref);
	g_clear_error(&c->reader_error);
	as_send_file_free(c->rec);
	as_send_budget_unref(c->budget);
	g_free(c->name);
	g_free(c->source);
	g_free(c->want);
	g_free(c->acked);
	g_free(c->hash_hex);
	g_free(c->sha256);
	g_free(c->remote_sha256);
	g_free(c->remote_saved_as);
}

static void
as_send_chunked_unref(AsSendChunked *c)
{
	g_atomic_rc_box_release_full(c, as_send_chunked_clear);
}

static guint64
as_send_chunked_chunk_len(AsSendChunked *c, guint32 index)
{
	guint64 offset = (guint64)index * c->chunk_size;
	return MIN(c->chunk_size, c->size - offset);
}

static void
as_send_req_free(AsSendReq *req)
{
	if (req->budget != NULL) {
		as_send_budget_release(req->budget);
		as_send_budget_unref(req->budget);
	}
	g_clear_pointer(&req->data, g_bytes_unref);
	g_free(req->content_type);
	g_free(req->sha256);
	as_send_file_free(req->file);
	g_clear_pointer(&req->parts, g_ptr_array_unref);
	if (req->chunked != NULL)
		as_send_chunked_unref(req->chunked);
	g_clear_object(&req->job);
	g_free(req);
}

static AsSendReq *
as_send_req_new(AsSendReqKind kind)
{
	AsSendReq *req = g_new0(AsSendReq, 1);
	req->kind = kind;
	return req;
}

/* -------- reading files -------- */

/* reads exactly @len bytes at @offset; a short file means it changed while we were sending */
static gboolean
as_send_pread_all(int fd, guint8 *buf, gsize len, guint64 offset, const gchar *name, GError **error)
{
	gsize done = 0;

	while (done < len) {
		gssize n = pread(fd, buf + done, len - done, (off_t)(offset + done));
		if (n < 0) {
			int errsv = errno;
			if (errsv == EINTR)
				continue;
			g_set_error(error, AS_ERROR, AS_ERROR_IO, "cannot read %s: %s", name,
				    g_strerror(errsv));
			return FALSE;
		}
		if (n == 0) {
			g_set_error(error, AS_ERROR, AS_ERROR_CONFLICT,
				    "%s shrank while it was being sent", name);
			return FALSE;
		}
		done += (gsize)n;
	}
	return TRUE;
}

/* opens a source and checks it is the file that was listed */
static int
as_send_open_source(
	const gchar *source, const gchar *name, guint64 size, gint64 mtime_us, GError **error)
{
	struct stat st;
	gint64 st_mtime_us;
	int fd = g_open(source, O_RDONLY | O_CLOEXEC, 0);

	if (fd < 0) {
		int errsv = errno;
		g_set_error(error, AS_ERROR,
			    errsv == ENOENT   ? AS_ERROR_NOT_FOUND
			    : errsv == EACCES ? AS_ERROR_PERMISSION_DENIED
					      : AS_ERROR_IO,
			    "cannot open %s: %s", source, g_strerror(errsv));
		return -1;
	}
	if (fstat(fd, &st) != 0) {
		int errsv = errno;
		g_set_error(error, AS_ERROR, AS_ERROR_IO, "cannot stat %s: %s", source,
			    g_strerror(errsv));
		g_close(fd, NULL);
		return -1;
	}
	st_mtime_us = (gint64)st.st_mtim.tv_sec * G_USEC_PER_SEC + st.st_mtim.tv_nsec / 1000;
	if (!S_ISREG(st.st_mode) || (guint64)st.st_size != size || st_mtime_us != mtime_us) {
		g_set_error(error, AS_ERROR, AS_ERROR_CONFLICT, "%s changed since the send started",
			    name);
		g_close(fd, NULL);
		return -1;
	}
	return fd;
}

/* a whole small file in memory, with its SHA-256 */
static GBytes *
as_send_read_small(const AsSendFile *file, gboolean verify, gchar **sha256, GError **error)
{
	g_autofree guint8 *buf = NULL;
	int fd = as_send_open_source(file->source, file->name, file->size, file->mtime_us, error);

	if (fd < 0)
		return NULL;
	buf = g_malloc(MAX(file->size, 1));
	if (!as_send_pread_all(fd, buf, (gsize)file->size, 0, file->name, error)) {
		g_close(fd, NULL);
		return NULL;
	}
	g_close(fd, NULL);
	if (verify)
		*sha256 = as_sha256_data_hex(buf, (gsize)file->size);
	return g_bytes_new_take(g_steal_pointer(&buf), (gsize)file->size);
}

static void
as_send_single_read_thread(GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
	AsSendReq *req = data;
	g_autoptr(GError) error = NULL;
	GBytes *bytes = as_send_read_small(req->file, req->job->opts.verify, &req->sha256, &error);

	if (bytes == NULL) {
		g_task_return_error(task, g_steal_pointer(&error));
		return;
	}
	/* the unit taken for this request goes with the body from now on */
	req->data = as_send_budget_wrap(req->budget, bytes);
	g_clear_pointer(&req->budget, as_send_budget_unref);
	g_task_return_boolean(task, TRUE);
}

static void
as_send_batch_read_thread(GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
	AsSendReq *req = data;
	g_autoptr(AsPeerBatch) batch = as_peer_batch_new();

	for (guint i = 0; i < req->parts->len; i++) {
		AsSendBatchPart *part = g_ptr_array_index(req->parts, i);
		g_autoptr(GError) error = NULL;
		g_autoptr(GBytes) bytes = NULL;

		part->started_us = g_get_real_time();
		bytes = as_send_read_small(part->file, req->job->opts.verify, &part->sha256,
					   &error);
		if (bytes == NULL) {
			part->error = g_strdup(error->message);
			continue;
		}
		as_peer_batch_add(batch, part->file->name, g_bytes_get_data(bytes, NULL),
				  g_bytes_get_size(bytes), part->sha256);
	}
	if (as_peer_batch_get_n_parts(batch) > 0) {
		req->data = as_send_budget_wrap(req->budget,
						as_peer_batch_end(batch, &req->content_type));
		g_clear_pointer(&req->budget, as_send_budget_unref);
	}
	g_task_return_boolean(task, TRUE);
}

/* tells the main thread; called with the lock held */
static gboolean as_send_chunked_notify_cb(gpointer user_data);

static void
as_send_chunked_notify_locked(AsSendChunked *c)
{
	if (c->notify_pending)
		return;
	c->notify_pending = TRUE;
	g_idle_add_full(G_PRIORITY_DEFAULT, as_send_chunked_notify_cb, as_send_chunked_ref(c),
			(GDestroyNotify)as_send_chunked_unref);
}

/*
 * The reader: one sequential pass over the file from reader_first. Each chunk still wanted is
 * read into a fresh buffer (waiting for the budget first), hashed for X-Chunk-Hash and, in the
 * same pass, added to the whole-file hash; chunks the receiver already holds but that are not
 * hashed yet only go through the whole-file hash. Chunks below hashed_chunks are never hashed
 * again, which is what makes a resumed transfer cheap.
 */
static gpointer
as_send_chunked_reader_thread(gpointer data)
{
	AsSendChunked *c = data;
	AsSendBudget *budget = c->budget;
	g_autoptr(GError) error = NULL;
	guint32 first;

	g_mutex_lock(&budget->mutex);
	first = c->reader_first;
	g_mutex_unlock(&budget->mutex);

	if (c->fd < 0)
		c->fd = as_send_open_source(c->source, c->name, c->size, c->mtime_us, &error);
	for (guint32 i = first; c->fd >= 0 && i < c->total_chunks; i++) {
		guint64 offset = (guint64)i * c->chunk_size;
		gsize len = (gsize)as_send_chunked_chunk_len(c, i);
		g_autoptr(GBytes) bytes = NULL;
		g_autofree gchar *chunk_sha256 = NULL;
		guint8 *buf = NULL;
		gboolean need_send;
		gboolean need_hash;

		g_mutex_lock(&budget->mutex);
		need_send = c->want[i] != 0;
		need_hash = c->hash != NULL && c->hashed_chunks == i;
		if (need_send) {
			while (budget->alive >= budget->max && !c->stop)
				g_cond_wait(&budget->cond, &budget->mutex);
			if (!c->stop) {
				budget->alive++;
				buf = as_send_budget_take_buffer_locked(budget,
									(gsize)c->chunk_size);
			}
		}
		if (c->stop) {
			g_mutex_unlock(&budget->mutex);
			break;
		}
		g_mutex_unlock(&budget->mutex);
		if (!need_send && !need_hash)
			continue;

		if (need_send) {
			/* from here the bytes hold the unit and the buffer, and give both back */
			bytes = as_send_budget_bytes_new(budget, buf, len, (gsize)c->chunk_size);
			if (!as_send_pread_all(c->fd, buf, len, offset, c->name, &error))
				break;
			if (c->verify && need_hash) {
				/* both digests in one pass: about the cost of one */
				g_autoptr(AsSha256State) chunk_hash = as_sha256_state_new();
				as_sha256_state_update_pair(chunk_hash, c->hash, buf, len);
				chunk_sha256 = as_sha256_state_finish_hex(chunk_hash);
			} else if (c->verify) {
				chunk_sha256 = as_sha256_data_hex(buf, len);
			} else if (need_hash) {
				as_sha256_state_update(c->hash, buf, len);
			}
		} else if (!as_sha256_state_update_fd_range(c->hash, c->fd, offset, len, NULL,
							    &error)) {
			g_prefix_error(&error, "cannot read %s: ", c->name);
			break;
		}

		g_mutex_lock(&budget->mutex);
		if (need_hash) {
			c->hashed_chunks = i + 1;
			g_clear_pointer(&c->hash_blob, g_bytes_unref);
			c->hash_blob = as_sha256_state_save(c->hash);
			if (c->hashed_chunks == c->total_chunks)
				c->hash_hex = as_sha256_state_finish_hex(c->hash);
		}
		if (need_send) {
			AsSendChunkBuf *chunk = g_new0(AsSendChunkBuf, 1);
			chunk->index = i;
			chunk->data = g_steal_pointer(&bytes);
			chunk->sha256 = g_steal_pointer(&chunk_sha256);
			c->want[i] = 0;
			g_queue_push_tail(&c->produced, chunk);
		}
		as_send_chunked_notify_locked(c);
		g_mutex_unlock(&budget->mutex);
	}

	g_mutex_lock(&budget->mutex);
	if (error != NULL)
		c->reader_error = g_steal_pointer(&error);
	c->reader_done = TRUE;
	as_send_chunked_notify_locked(c);
	g_mutex_unlock(&budget->mutex);
	as_send_chunked_unref(c);
	return NULL;
}

/* -------- progress, saving, retries -------- */

static guint64
as_send_job_bytes_done(AsSendJob *self)
{
	guint64 total = self->bytes_base + (guint64)MAX(self->bytes_in_flight, 0);
#if HAVE_QUIC
	if (self->quic != NULL)
		total += as_quic_sender_get_bytes_in_flight(self->quic);
#endif
	for (guint i = 0; i < self->chunked->len; i++) {
		AsSendChunked *c = g_ptr_array_index(self->chunked, i);
		total += c->bytes_acked;
	}
	return total;
}

static void
as_send_job_progress(AsSendJob *self, gboolean force)
{
	gint64 now = g_get_monotonic_time();

	if (self->phase == AS_SEND_JOB_PHASE_DONE)
		return;
	if (!force && now - self->progress_us < AS_ENGINE_PROGRESS_INTERVAL_US)
		return;
	self->progress_us = now;
	if (self->current_name != NULL)
		as_transfer_set_filename(self->transfer, self->current_name);
	as_engine_send_progress(self->engine, self->transfer, as_send_job_bytes_done(self), force);
}

static void
as_send_job_set_current(AsSendJob *self, const gchar *name)
{
	g_free(self->current_name);
	self->current_name = g_utf8_make_valid(name, -1);
}

static void
as_send_job_save(AsSendJob *self, gboolean force)
{
	g_autoptr(GError) error_local = NULL;

	/* the walk thread owns the record until it is done */
	if (self->phase == AS_SEND_JOB_PHASE_WALK || self->phase == AS_SEND_JOB_PHASE_DONE)
		return;
	if (!as_send_state_save_throttled(self->state, force, &error_local))
		g_warning("cannot save the resume state of %s: %s", self->id, error_local->message);
}

static void
as_send_job_req_progress_cb(guint64 bytes_sent, gpointer user_data)
{
	AsSendReq *req = user_data;
	AsSendJob *self = req->job;

	self->bytes_in_flight += (gint64)bytes_sent - (gint64)req->sent;
	req->sent = bytes_sent;
	as_send_job_progress(self, FALSE);
}

/* a request is back: its body no longer counts as in flight */
static void
as_send_job_req_landed(AsSendJob *self, AsSendReq *req)
{
	self->bytes_in_flight -= (gint64)req->sent;
	req->sent = 0;
	self->n_in_flight--;
	if (req->kind == AS_SEND_REQ_SINGLE || req->kind == AS_SEND_REQ_BATCH ||
	    req->kind == AS_SEND_REQ_CHUNK || req->kind == AS_SEND_REQ_QUIC)
		self->n_data_in_flight--;
}

static void
as_send_job_network_ok(AsSendJob *self)
{
	self->outage_since_us = 0;
	self->backoff_step = 0;
}

static gboolean
as_send_job_backoff_cb(gpointer user_data)
{
	AsSendJob *self = AS_SEND_JOB(user_data);

	self->backoff_id = 0;
	if (self->phase == AS_SEND_JOB_PHASE_CONNECT)
		as_send_job_connect(self);
	else
		as_send_job_pump(self);
	return G_SOURCE_REMOVE;
}

/*
 * The receiver cannot be reached (or is restarting): stop sending, wait with exponential
 * backoff and jitter, and try again; give up after AS_SEND_JOB_RETRY_BUDGET_S of failures with
 * no success in between. Requests that were already under way when the wait began fail too:
 * their epoch tells they belong to the outage being waited out.
 */
static void
as_send_job_network_trouble(AsSendJob *self, const GError *error, guint epoch)
{
	gint64 now = g_get_monotonic_time();
	guint delay_ms;

	if (epoch != self->epoch || self->phase == AS_SEND_JOB_PHASE_DONE)
		return;
	self->epoch++;
	if (self->outage_since_us == 0) {
		self->outage_since_us = now;
	} else if (now - self->outage_since_us >
		   (gint64)AS_SEND_JOB_RETRY_BUDGET_S * G_USEC_PER_SEC) {
		g_autofree gchar *reason =
			g_strdup_printf("%s (gave up after %d minutes of retrying)", error->message,
					AS_SEND_JOB_RETRY_BUDGET_S / 60);
		as_send_job_fail(self, reason);
		return;
	}
	delay_ms = AS_SEND_JOB_RETRY_INITIAL_MS << MIN(self->backoff_step, 16u);
	delay_ms = MIN(delay_ms, (guint)AS_SEND_JOB_RETRY_MAX_MS);
	self->backoff_step++;
	/* jitter: anywhere in the upper half, so many senders do not retry in step */
	delay_ms = delay_ms / 2 + (guint)g_random_int_range(0, (gint32)(delay_ms / 2) + 1);
	g_message("%s: %s; retrying in %.1f s", self->id, error->message, delay_ms / 1000.0);
	g_clear_handle_id(&self->backoff_id, g_source_remove);
	self->backoff_id = g_timeout_add(delay_ms, as_send_job_backoff_cb, self);
}

/* -------- ending files and the transfer -------- */

static gchar *
as_send_job_file_id(AsSendJob *self, const AsSendFile *file)
{
	return g_strdup_printf("%s-%" G_GUINT64_FORMAT, self->id, file->index);
}

static void
as_send_job_file_finished(AsSendJob *self,
			  AsSendFile *file,
			  const gchar *protocol,
			  const gchar *sha256,
			  const gchar *saved_as,
			  gint64 started_us,
			  const gchar *error)
{
	g_autoptr(GError) error_local = NULL;
	g_autofree gchar *id = as_send_job_file_id(self, file);
	/* names are bytes; history, /ws and the bus take UTF-8 */
	g_autofree gchar *name = g_utf8_make_valid(file->name, -1);
	g_autofree gchar *error_utf8 = error != NULL ? g_utf8_make_valid(error, -1) : NULL;
	/* "http-chunk" over TLS is "https-chunk" in the history */
	g_autofree gchar *tls_protocol =
		g_str_has_prefix(protocol, "http") && self->client != NULL &&
				as_peer_client_get_https(self->client)
			? g_strconcat("https", protocol + strlen("http"), NULL)
			: NULL;
	gint64 duration_us = started_us > 0 ? g_get_real_time() - started_us : 0;
	AsEngineSendResult result = {
		.id = id,
		.filename = name,
		.protocol = tls_protocol != NULL ? tls_protocol : protocol,
		.sha256 = sha256,
		.saved_path = saved_as,
		.size = file->size,
		.duration_ms = (guint64)MAX(duration_us, 0) / 1000,
		.error = error_utf8,
	};

	/* the record needs a digest to call a file done; the receiver always reports one */
	if (error == NULL && !as_sha256_hex_is_valid(sha256)) {
		result.error = error = "the receiver did not report the file's SHA-256";
		result.sha256 = NULL;
	}
	g_free(file->sha256);
	g_free(file->error);
	file->sha256 = g_strdup(result.sha256);
	file->error = g_strdup(error);
	file->state = error == NULL ? AS_SEND_FILE_STATE_DONE : AS_SEND_FILE_STATE_FAILED;
	if (!as_send_state_update_file(self->state, file, &error_local))
		g_warning("cannot record %s: %s", file->name, error_local->message);
	as_engine_send_file_done(self->engine, self->transfer, &result);
	self->file_lines = TRUE;
	if (error == NULL) {
		self->files_done++;
		self->bytes_base += file->size;
		as_transfer_set_files_done(self->transfer, self->files_done);
		/* a one-file send has one digest to show */
		if (as_send_state_get_n_files(self->state) == 1)
			as_transfer_set_sha256(self->transfer, result.sha256);
	} else {
		self->files_failed++;
		if (self->first_error == NULL)
			self->first_error = g_strdup_printf("%s: %s", name, result.error);
		as_transfer_set_files_failed(self->transfer, self->files_failed);
	}
	as_send_job_save(self, FALSE);
	as_send_job_progress(self, FALSE);
}

/* stops the reader of @c, waiting for it to leave */
static void
as_send_chunked_stop_reader(AsSendChunked *c)
{
	g_mutex_lock(&c->budget->mutex);
	c->stop = TRUE;
	g_cond_broadcast(&c->budget->cond);
	g_mutex_unlock(&c->budget->mutex);
	if (c->thread != NULL) {
		g_thread_join(c->thread);
		c->thread = NULL;
	}
}

static void
as_send_job_drop_reqs_of(GQueue *queue, AsSendChunked *c)
{
	GList *l = queue->head;

	while (l != NULL) {
		GList *next = l->next;
		AsSendReq *req = l->data;
		if (req->chunked == c) {
			g_queue_delete_link(queue, l);
			as_send_req_free(req);
		}
		l = next;
	}
}

/* lets go of a chunked file: no more requests, no more reading */
static void
as_send_job_drop_chunked(AsSendJob *self, AsSendChunked *c)
{
	c->finished = TRUE;
	as_send_chunked_stop_reader(c);
	g_clear_handle_id(&c->poll_id, g_source_remove);
	if (self->reading == c)
		self->reading = NULL;
	/* buffers waiting to go are freed at once; those in flight when they come back */
	as_send_job_drop_reqs_of(&self->ready_data, c);
	as_send_job_drop_reqs_of(&self->ready_control, c);
	c->job = NULL;
	g_ptr_array_remove(self->chunked, c);
}

static void
as_send_chunked_finished(AsSendChunked *c,
			 const gchar *sha256,
			 const gchar *saved_as,
			 const gchar *error)
{
	AsSendJob *self = c->job;
	AsSendFile *file = as_send_file_copy(c->rec);
	gint64 started_us = c->started_us;

	/* @sha256 and friends may point into @c, which dropping may free: keep it until done */
	as_send_chunked_ref(c);
	as_send_job_drop_chunked(self, c);
	as_send_job_file_finished(self, file, "http-chunk", sha256, saved_as, started_us, error);
	as_send_file_free(file);
	as_send_chunked_unref(c);
}

static void
as_send_chunked_fail(AsSendChunked *c, const gchar *message)
{
	as_send_chunked_finished(c, NULL, NULL, message);
}

static void
as_send_job_clear_queue(GQueue *queue)
{
	AsSendReq *req;
	while ((req = g_queue_pop_head(queue)) != NULL)
		as_send_req_free(req);
}

/* ends the transfer for good and removes its resume record */
static void
as_send_job_finish(AsSendJob *self,
		   AsTransferState final_state,
		   const gchar *reason,
		   gboolean write_history)
{
	g_autoptr(GError) error_local = NULL;

	if (self->phase == AS_SEND_JOB_PHASE_DONE)
		return;
	as_send_job_progress(self, TRUE);
	self->phase = AS_SEND_JOB_PHASE_DONE;
	g_cancellable_cancel(self->cancellable);
	g_cancellable_cancel(self->walk_cancellable);
	g_clear_handle_id(&self->backoff_id, g_source_remove);
	g_clear_handle_id(&self->tick_id, g_source_remove);
	while (self->chunked->len > 0)
		as_send_job_drop_chunked(self, g_ptr_array_index(self->chunked, 0));
	as_send_job_clear_queue(&self->ready_control);
	as_send_job_clear_queue(&self->ready_data);
	g_clear_pointer(&self->iter, as_send_state_file_iter_free);
	g_clear_pointer(&self->lookahead, as_send_file_free);
	g_queue_clear_full(&self->requeued, (GDestroyNotify)as_send_file_free);
	g_ptr_array_set_size(self->accum, 0);
	if (!as_send_state_delete(self->state, &error_local))
		g_warning("cannot remove the resume state of %s: %s", self->id,
			  error_local->message);
	as_transfer_set_filename(self->transfer, self->display_name);

	switch (final_state) {
	case AS_TRANSFER_STATE_COMPLETED:
		as_engine_send_completed(self->engine, self->transfer);
		break;
	case AS_TRANSFER_STATE_CANCELLED:
		as_engine_send_cancelled(self->engine, self->transfer);
		break;
	default:
		as_engine_send_failed(self->engine, self->transfer, reason, write_history);
		break;
	}
	if (self->client != NULL)
		as_peer_client_abort(self->client);
#if HAVE_QUIC
	if (self->quic != NULL)
		as_quic_sender_close(self->quic);
#endif
	g_signal_emit(self, signals[SIGNAL_FINISHED], 0);
}

/* a failure of the whole transfer: the receiver is unreachable, refused the token, ... */
static void
as_send_job_fail(AsSendJob *self, const gchar *reason)
{
	g_autofree gchar *reason_utf8 = g_utf8_make_valid(reason, -1);

	if (self->phase == AS_SEND_JOB_PHASE_DONE)
		return;
	/* no file line tells of this: the transfer gets its own */
	as_send_job_finish(self, AS_TRANSFER_STATE_FAILED, reason_utf8, TRUE);
}

static void
as_send_job_maybe_finish(AsSendJob *self)
{
	g_autofree gchar *reason = NULL;

	if (self->phase != AS_SEND_JOB_PHASE_RUN || !self->iter_done || self->lookahead != NULL ||
	    !g_queue_is_empty(&self->requeued) || self->accum->len > 0 || self->preparing > 0 ||
	    self->n_in_flight > 0 || self->chunked->len > 0 ||
	    !g_queue_is_empty(&self->ready_data) || !g_queue_is_empty(&self->ready_control))
		return;
	if (self->files_failed == 0) {
		as_send_job_finish(self, AS_TRANSFER_STATE_COMPLETED, NULL, FALSE);
		return;
	}
	reason = g_strdup_printf("%u of %u files failed; the first: %s", self->files_failed,
				 self->files_failed + self->files_done,
				 self->first_error != NULL ? self->first_error : "unknown");
	/* every failed file has its own history line already */
	as_send_job_finish(self, AS_TRANSFER_STATE_FAILED, reason, !self->file_lines);
}

/* -------- request results -------- */

static gboolean
as_send_job_req_cancelled(AsSendJob *self, AsSendReq *req, const GError *error, GQueue *queue)
{
	if (!g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
		return FALSE;
	/* a pause (perhaps already resumed): the request goes again, with the same buffer */
	if (self->phase == AS_SEND_JOB_PHASE_RUN && !self->stopped) {
		g_clear_object(&req->job);
		g_queue_push_head(queue, req);
	} else {
		as_send_req_free(req);
	}
	return TRUE;
}

static gchar *
as_send_job_refused_message(AsSendJob *self, const GError *error)
{
	return g_strdup_printf("%s refused the token: %s",
			       as_peer_client_get_host_port(self->client), error->message);
}

/* the common part of every failure: TRUE if it was handled here */
static gboolean
as_send_job_req_failed_common(AsSendJob *self, AsSendReq *req, const GError *error, GQueue *queue)
{
	if (as_send_job_req_cancelled(self, req, error, queue))
		return TRUE;
	if (as_peer_client_error_is_auth(error)) {
		g_autofree gchar *reason = as_send_job_refused_message(self, error);
		as_send_req_free(req);
		as_send_job_fail(self, reason);
		return TRUE;
	}
	if (as_peer_client_error_is_retryable(error)) {
		guint epoch = req->epoch;
		if (req->kind == AS_SEND_REQ_CHUNK)
			req->chunked->need_status = TRUE;
		g_clear_object(&req->job);
		g_queue_push_head(queue, req);
		as_send_job_network_trouble(self, error, epoch);
		return TRUE;
	}
	return FALSE;
}

static void
as_send_job_single_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	AsSendReq *req = user_data;
	g_autoptr(AsSendJob) self = g_object_ref(req->job);
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonObject) obj =
		as_peer_client_request_finish(AS_PEER_CLIENT(source), res, &error);

	as_send_job_req_landed(self, req);
	if (self->phase == AS_SEND_JOB_PHASE_DONE) {
		as_send_req_free(req);
		return;
	}
	if (obj != NULL) {
		const gchar *sha256 = as_send_json_string(obj, "sha256");
		const gchar *saved = as_send_json_string(obj, "filename");
		g_autofree gchar *mismatch = NULL;

		as_send_job_network_ok(self);
		if (req->sha256 != NULL && !as_sha256_hex_equal(sha256, req->sha256))
			mismatch = g_strdup_printf("the receiver stored SHA-256 %s, not %s",
						   sha256 != NULL ? sha256 : "(none)", req->sha256);
		as_send_job_file_finished(self, req->file, "http", sha256, saved, req->started_us,
					  mismatch);
		as_send_req_free(req);
	} else if (!as_send_job_req_failed_common(self, req, error, &self->ready_data)) {
		as_send_job_file_finished(self, req->file, "http", NULL, NULL, req->started_us,
					  error->message);
		as_send_req_free(req);
	}
	as_send_job_pump(self);
}

/* which reply entry tells of which part: by name, else in order (a routing rule may rename) */
static void
as_send_job_batch_results(AsSendJob *self, AsSendReq *req, JsonObject *obj)
{
	JsonArray *files = as_send_json_array(obj, "files");
	guint n_results = files != NULL ? json_array_get_length(files) : 0;
	g_autofree JsonObject **matched = g_new0(JsonObject *, req->parts->len);
	g_autofree gboolean *used = g_new0(gboolean, MAX(n_results, 1));
	g_autoptr(GHashTable) by_name = g_hash_table_new(g_str_hash, g_str_equal);
	guint next_free = 0;

	for (guint i = 0; i < req->parts->len; i++) {
		AsSendBatchPart *part = g_ptr_array_index(req->parts, i);
		if (part->error == NULL && !g_hash_table_contains(by_name, part->file->name))
			g_hash_table_insert(by_name, part->file->name, GUINT_TO_POINTER(i + 1));
	}
	for (guint r = 0; r < n_results; r++) {
		JsonNode *node = json_array_get_element(files, r);
		JsonObject *result =
			JSON_NODE_HOLDS_OBJECT(node) ? json_node_get_object(node) : NULL;
		const gchar *name = as_send_json_string(result, "name");
		guint idx;

		if (result == NULL || name == NULL)
			continue;
		idx = GPOINTER_TO_UINT(g_hash_table_lookup(by_name, name));
		if (idx > 0 && matched[idx - 1] == NULL) {
			matched[idx - 1] = result;
			used[r] = TRUE;
		}
	}
	for (guint r = 0; r < n_results; r++) {
		JsonNode *node = json_array_get_element(files, r);
		if (used[r] || !JSON_NODE_HOLDS_OBJECT(node))
			continue;
		while (next_free < req->parts->len &&
		       (matched[next_free] != NULL ||
			((AsSendBatchPart *)g_ptr_array_index(req->parts, next_free))->error !=
				NULL))
			next_free++;
		if (next_free < req->parts->len)
			matched[next_free++] = json_node_get_object(node);
	}

	for (guint i = 0; i < req->parts->len; i++) {
		AsSendBatchPart *part = g_ptr_array_index(req->parts, i);
		JsonObject *result = matched[i];
		const gchar *sha256;
		g_autofree gchar *message = NULL;

		if (part->error != NULL)
			continue;
		if (result == NULL) {
			as_send_job_file_finished(self, part->file, "http-batch", NULL, NULL,
						  part->started_us,
						  "the receiver did not report on this file");
			continue;
		}
		sha256 = as_send_json_string(result, "sha256");
		if (!as_send_json_boolean(result, "ok")) {
			const gchar *why = as_send_json_string(result, "error");
			message = g_strdup_printf("refused: %s",
						  why != NULL ? why : "no reason given");
		} else if (part->sha256 != NULL && !as_sha256_hex_equal(sha256, part->sha256)) {
			message = g_strdup_printf("the receiver stored SHA-256 %s, not %s",
						  sha256 != NULL ? sha256 : "(none)", part->sha256);
		}
		as_send_job_file_finished(self, part->file, "http-batch", sha256,
					  as_send_json_string(result, "saved_as"), part->started_us,
					  message);
	}
}

static void
as_send_job_batch_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	AsSendReq *req = user_data;
	g_autoptr(AsSendJob) self = g_object_ref(req->job);
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonObject) obj =
		as_peer_client_request_finish(AS_PEER_CLIENT(source), res, &error);

	as_send_job_req_landed(self, req);
	if (self->phase == AS_SEND_JOB_PHASE_DONE) {
		as_send_req_free(req);
		return;
	}
	if (obj != NULL) {
		as_send_job_network_ok(self);
		as_send_job_batch_results(self, req, obj);
		as_send_req_free(req);
	} else if (!as_send_job_req_failed_common(self, req, error, &self->ready_data)) {
		for (guint i = 0; i < req->parts->len; i++) {
			AsSendBatchPart *part = g_ptr_array_index(req->parts, i);
			if (part->error == NULL)
				as_send_job_file_finished(self, part->file, "http-batch", NULL,
							  NULL, part->started_us, error->message);
		}
		as_send_req_free(req);
	}
	as_send_job_pump(self);
}

#if HAVE_QUIC
/* the receiver for messages: host:port of HTTP, or of QUIC for quic:// */
static const gchar *
as_send_job_peer_name(AsSendJob *self)
{
	if (self->client != NULL)
		return as_peer_client_get_host_port(self->client);
	if (self->quic != NULL)
		return as_quic_sender_get_host_port(self->quic);
	return as_transfer_get_peer(self->transfer);
}

/* a file that was to go over QUIC goes over HTTP instead, in its turn */
static void
as_send_job_requeue_http(AsSendJob *self, AsSendReq *req)
{
	g_queue_push_tail(&self->requeued, g_steal_pointer(&req->file));
	as_send_req_free(req);
}

/* from now on HTTP: the transfer says so and why, the files waiting for QUIC go there */
static void
as_send_job_quic_fallback(AsSendJob *self, const GError *error)
{
	g_autofree gchar *protocol = NULL;
	GList *l;

	if (self->quic == NULL)
		return;
	protocol = g_strdup_printf("http (QUIC fallback: %s: %s)",
				   as_quic_sender_get_host_port(self->quic), error->message);
	g_message("%s: QUIC to %s failed (%s); going on over HTTP", self->id,
		  as_quic_sender_get_host_port(self->quic), error->message);
	as_transfer_set_protocol(self->transfer, protocol);
	as_quic_sender_close(self->quic);
	g_clear_object(&self->quic);
	l = self->ready_data.head;
	while (l != NULL) {
		GList *next = l->next;
		AsSendReq *req = l->data;
		if (req->kind == AS_SEND_REQ_QUIC) {
			g_queue_delete_link(&self->ready_data, l);
			as_send_job_requeue_http(self, req);
		}
		l = next;
	}
}

/* the whole-file hash of an aerosync/2 upload advanced: the record keeps it, as for HTTP
 * chunks, so neither transport hashes those chunks again after a restart */
static void
as_send_job_quic_v2_hash_cb(guint32 hashed_chunks, GBytes *hash_state, gpointer user_data)
{
	AsSendReq *req = user_data;
	AsSendFile *file = req->file;
	g_autoptr(GError) error_local = NULL;

	if (req->job == NULL || file == NULL || hashed_chunks <= file->hashed_chunks)
		return;
	g_clear_pointer(&file->hash_state, g_bytes_unref);
	file->hash_state = g_bytes_ref(hash_state);
	file->hashed_chunks = hashed_chunks;
	if (!as_send_state_update_file(req->job->state, file, &error_local)) {
		g_warning("cannot record the progress of %s: %s", file->name, error_local->message);
		return;
	}
	as_send_job_save(req->job, FALSE);
}

static void as_send_job_quic_cb(GObject *source, GAsyncResult *res, gpointer user_data);
static guint64 as_send_job_chunk_size_for(AsSendJob *self, guint64 size);

/*
 * A file over aerosync/2 is the very task the HTTP chunk path would send: the same task id and
 * chunk size, recorded before the first byte goes, so a file interrupted here resumes over
 * either transport, and after a restart, from the chunks the receiver says it holds.
 */
static void
as_send_job_quic_v2_dispatch(AsSendJob *self, AsSendReq *req)
{
	g_autoptr(GError) error_local = NULL;
	AsSendFile *file = req->file;

	if (file->task_id == NULL) {
		file->task_id = as_send_job_file_id(self, file);
		file->chunk_size = as_send_job_chunk_size_for(self, file->size);
		file->total_chunks =
			(guint32)((file->size + file->chunk_size - 1) / file->chunk_size);
		file->hashed_chunks = 0;
		g_clear_pointer(&file->hash_state, g_bytes_unref);
	}
	file->state = AS_SEND_FILE_STATE_SENDING;
	if (!as_send_state_update_file(self->state, file, &error_local))
		g_warning("cannot record %s: %s", file->name, error_local->message);
	as_send_job_save(self, FALSE);
	as_quic_sender_v2_upload_async(
		self->quic, file->source, file->name, file->size, file->mtime_us, file->task_id,
		file->chunk_size, self->opts.verify, file->hash_state, file->hashed_chunks,
		as_send_job_quic_v2_hash_cb, req, self->cancellable, as_send_job_quic_cb, req);
}

static void
as_send_job_quic_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	AsSendReq *req = user_data;
	g_autoptr(AsSendJob) self = g_object_ref(req->job);
	g_autoptr(GError) error = NULL;
	g_autofree gchar *saved_as = NULL;
	g_autofree gchar *sha256 = NULL;
	guint32 chunks_sent = 0;
	guint32 chunks_skipped = 0;

	if (g_async_result_is_tagged(res, as_quic_sender_v2_upload_async)) {
		sha256 = as_quic_sender_v2_upload_finish(AS_QUIC_SENDER(source), res, &saved_as,
							 &chunks_sent, &chunks_skipped, &error);
		if (sha256 != NULL && chunks_skipped > 0)
			g_info("%s: %s resumed: %u chunks were at the receiver, %u sent", self->id,
			       req->file->name, chunks_skipped, chunks_sent);
	} else {
		sha256 = as_quic_sender_upload_finish(AS_QUIC_SENDER(source), res, &error);
	}
	as_send_job_req_landed(self, req);
	if (self->phase == AS_SEND_JOB_PHASE_DONE) {
		as_send_req_free(req);
		return;
	}
	/* the job went over to HTTP while this one was under way: it goes again there */
	if (sha256 == NULL && (gpointer)source != (gpointer)self->quic) {
		if (self->stopped)
			as_send_req_free(req);
		else
			as_send_job_requeue_http(self, req);
		as_send_job_pump(self);
		return;
	}
	if (sha256 != NULL) {
		/* SUCCESS after a HASH line: the receiver computed the same digest */
		as_send_job_network_ok(self);
		as_send_job_file_finished(self, req->file, "quic", sha256, saved_as,
					  req->started_us, NULL);
		as_send_req_free(req);
	} else if (as_send_job_req_cancelled(self, req, error, &self->ready_data)) {
		/* paused: the file goes again, from its start (aerosync/2: from the chunks the
		 * receiver lacks) */
	} else if (g_error_matches(error, AS_ERROR, AS_ERROR_PERMISSION_DENIED)) {
		/* a refused token, or a certificate that no longer checks out: nothing gets in */
		g_autofree gchar *reason = g_strdup_printf(
			"%s refused the upload: %s", as_send_job_peer_name(self), error->message);
		as_send_req_free(req);
		as_send_job_fail(self, reason);
	} else if (as_quic_sender_error_is_retryable(error) && self->client != NULL &&
		   g_strcmp0(self->opts.protocol, "auto") == 0) {
		/* QUIC broke down under way: auto goes on over HTTP, as when it never connected */
		as_send_job_quic_fallback(self, error);
		as_send_job_requeue_http(self, req);
	} else if (as_quic_sender_error_is_retryable(error)) {
		guint epoch = req->epoch;
		g_clear_object(&req->job);
		g_queue_push_head(&self->ready_data, req);
		as_send_job_network_trouble(self, error, epoch);
	} else {
		as_send_job_file_finished(self, req->file, "quic", NULL, NULL, req->started_us,
					  error->message);
		as_send_req_free(req);
	}
	as_send_job_pump(self);
}

static void
as_send_job_quic_progress_cb(gpointer user_data)
{
	as_send_job_progress(AS_SEND_JOB(user_data), FALSE);
}
#endif

static void
as_send_chunked_mark_acked(AsSendChunked *c, guint32 index)
{
	if (c->acked[index])
		return;
	c->acked[index] = 1;
	c->outstanding--;
	c->bytes_acked += as_send_chunked_chunk_len(c, index);
}

static void
as_send_chunked_record_hash(AsSendChunked *c, guint32 hashed_chunks, GBytes *blob)
{
	g_autoptr(GError) error_local = NULL;

	if (c->job == NULL || hashed_chunks <= c->rec->hashed_chunks || blob == NULL)
		return;
	g_clear_pointer(&c->rec->hash_state, g_bytes_unref);
	c->rec->hash_state = g_bytes_ref(blob);
	c->rec->hashed_chunks = hashed_chunks;
	if (!as_send_state_update_file(c->job->state, c->rec, &error_local))
		g_warning("cannot record the progress of %s: %s", c->rec->name,
			  error_local->message);
}

static void
as_send_chunked_start_reader(AsSendChunked *c)
{
	g_autoptr(GError) error = NULL;
	guint32 first = c->total_chunks;
	gboolean hashing;

	g_mutex_lock(&c->budget->mutex);
	for (guint32 i = 0; i < c->total_chunks; i++) {
		if (c->want[i]) {
			first = i;
			break;
		}
	}
	hashing = c->hash != NULL && c->hashed_chunks < c->total_chunks;
	if (hashing)
		first = MIN(first, c->hashed_chunks);
	c->reader_first = first;
	c->stop = FALSE;
	c->reader_done = FALSE;
	g_mutex_unlock(&c->budget->mutex);

	if (first >= c->total_chunks) {
		as_send_chunked_maybe_complete(c);
		return;
	}
	c->thread = g_thread_try_new("as-send-read", as_send_chunked_reader_thread,
				     as_send_chunked_ref(c), &error);
	if (c->thread == NULL) {
		as_send_chunked_unref(c);
		as_send_chunked_fail(c, error->message);
	}
}

static gboolean
as_send_chunked_notify_cb(gpointer user_data)
{
	AsSendChunked *c = user_data;
	AsSendJob *self = c->job;
	g_autoptr(GBytes) blob = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *hash_hex = NULL;
	GQueue produced = G_QUEUE_INIT;
	AsSendChunkBuf *buf;
	gboolean done;
	gboolean again = FALSE;
	guint32 hashed;

	g_mutex_lock(&c->budget->mutex);
	c->notify_pending = FALSE;
	produced = c->produced;
	g_queue_init(&c->produced);
	done = c->reader_done && c->thread != NULL;
	error = g_steal_pointer(&c->reader_error);
	hashed = c->hashed_chunks;
	blob = c->hash_blob != NULL ? g_bytes_ref(c->hash_blob) : NULL;
	hash_hex = g_strdup(c->hash_hex);
	if (done) {
		for (guint32 i = 0; i < c->total_chunks && !again; i++)
			again = c->want[i] != 0;
	}
	g_mutex_unlock(&c->budget->mutex);

	if (self == NULL || c->finished) {
		while ((buf = g_queue_pop_head(&produced)) != NULL)
			as_send_chunk_buf_free(buf);
		return G_SOURCE_REMOVE;
	}
	g_object_ref(self);
	while ((buf = g_queue_pop_head(&produced)) != NULL) {
		AsSendReq *req = as_send_req_new(AS_SEND_REQ_CHUNK);
		req->chunked = as_send_chunked_ref(c);
		req->index = buf->index;
		req->data = g_steal_pointer(&buf->data);
		req->sha256 = g_steal_pointer(&buf->sha256);
		g_free(buf);
		g_queue_push_tail(&self->ready_data, req);
	}
	as_send_chunked_record_hash(c, hashed, blob);
	if (hash_hex != NULL && c->sha256 == NULL)
		c->sha256 = g_steal_pointer(&hash_hex);
	if (done) {
		g_thread_join(c->thread);
		c->thread = NULL;
		if (self->reading == c)
			self->reading = NULL;
		if (error != NULL) {
			as_send_chunked_fail(c, error->message);
		} else if (again) {
			/* the receiver lost chunks behind the reader: one more pass for those */
			as_send_chunked_start_reader(c);
		} else {
			as_send_chunked_maybe_complete(c);
		}
	}
	as_send_job_pump(self);
	g_object_unref(self);
	return G_SOURCE_REMOVE;
}

static gboolean
as_send_chunked_poll_cb(gpointer user_data)
{
	AsSendChunked *c = user_data;
	AsSendJob *self = c->job;

	c->poll_id = 0;
	if (self == NULL || c->finished)
		return G_SOURCE_REMOVE;
	as_send_chunked_maybe_complete(c);
	as_send_job_pump(self);
	return G_SOURCE_REMOVE;
}

/* the receiver's view of the task: which chunks it holds, or that it is published */
static void
as_send_chunked_apply_status(AsSendChunked *c, JsonObject *obj, gboolean after_complete)
{
	AsSendJob *self = c->job;
	g_autofree guint8 *has = g_new0(guint8, c->total_chunks);
	JsonArray *ranges = NULL;
	guint lost = 0;

	if (as_send_json_boolean(obj, "complete")) {
		const gchar *sha256 = as_send_json_string(obj, "sha256");
		g_free(c->remote_sha256);
		c->remote_sha256 = g_strdup(sha256 != NULL ? sha256 : "");
		g_free(c->remote_saved_as);
		c->remote_saved_as = g_strdup(as_send_json_string(obj, "saved_as"));
		for (guint32 i = 0; i < c->total_chunks; i++)
			as_send_chunked_mark_acked(c, i);
		g_mutex_lock(&c->budget->mutex);
		memset(c->want, 0, c->total_chunks);
		g_mutex_unlock(&c->budget->mutex);
		if (c->thread == NULL && !c->started) {
			c->started = TRUE;
			as_send_chunked_start_reader(c);
		} else {
			as_send_chunked_maybe_complete(c);
		}
		return;
	}
	ranges = as_send_json_array(obj, "received");
	for (guint r = 0; ranges != NULL && r < json_array_get_length(ranges); r++) {
		JsonNode *node = json_array_get_element(ranges, r);
		JsonArray *pair;
		gint64 first, last;

		if (!JSON_NODE_HOLDS_ARRAY(node))
			continue;
		pair = json_node_get_array(node);
		if (json_array_get_length(pair) != 2)
			continue;
		first = as_send_json_int(json_array_get_element(pair, 0), -1);
		last = as_send_json_int(json_array_get_element(pair, 1), -2);
		first = MAX(first, 0);
		last = MIN(last, (gint64)c->total_chunks - 1);
		for (gint64 i = first; i <= last; i++)
			has[i] = 1;
	}

	g_mutex_lock(&c->budget->mutex);
	for (guint32 i = 0; i < c->total_chunks; i++) {
		if (has[i]) {
			c->want[i] = 0;
		} else if (!c->started) {
			c->want[i] = 1;
		} else if (c->acked[i]) {
			/* acknowledged once, gone now (a receiver that lost its disk cache?) */
			c->want[i] = 1;
			lost++;
		}
	}
	g_mutex_unlock(&c->budget->mutex);
	for (guint32 i = 0; i < c->total_chunks; i++) {
		if (has[i]) {
			as_send_chunked_mark_acked(c, i);
		} else if (c->acked[i]) {
			c->acked[i] = 0;
			c->outstanding++;
			c->bytes_acked -= as_send_chunked_chunk_len(c, i);
		}
	}

	if (!c->started) {
		c->started = TRUE;
		if (c->outstanding < c->total_chunks || c->hashed_chunks > 0)
			g_info("%s: resuming %s: the receiver holds %u of %u chunks, %u are hashed",
			       self->id, c->rec->name, c->total_chunks - c->outstanding,
			       c->total_chunks, c->hashed_chunks);
		as_send_chunked_start_reader(c);
		return;
	}
	if (lost > 0) {
		g_message("%s: the receiver lost %u chunks of %s; sending them again", self->id,
			  lost, c->rec->name);
		if (after_complete && ++c->repair_rounds > AS_SEND_JOB_REPAIR_ROUNDS) {
			as_send_chunked_fail(c, "the receiver keeps losing chunks");
			return;
		}
		if (c->thread == NULL)
			as_send_chunked_start_reader(c);
		return;
	}
	if (after_complete) {
		/* nothing is missing: it is still hashing, or its reply was lost; ask again */
		c->poll_id =
			g_timeout_add(AS_SEND_JOB_COMPLETE_POLL_MS, as_send_chunked_poll_cb, c);
		return;
	}
	as_send_chunked_maybe_complete(c);
}

static void
as_send_job_queue_status(AsSendJob *self, AsSendChunked *c, gboolean after_complete)
{
	AsSendReq *req = as_send_req_new(AS_SEND_REQ_STATUS);

	req->chunked = as_send_chunked_ref(c);
	req->after_complete = after_complete;
	c->status_pending = TRUE;
	c->need_status = FALSE;
	g_queue_push_tail(&self->ready_control, req);
}

/* a request of a chunked file came back; FALSE when the job or the file ended meanwhile, and
 * the request was dropped */
static gboolean
as_send_chunked_req_landed(AsSendJob *self, AsSendReq *req)
{
	as_send_job_req_landed(self, req);
	if (self->phase != AS_SEND_JOB_PHASE_DONE && !req->chunked->finished)
		return TRUE;
	as_send_req_free(req);
	as_send_job_pump(self);
	return FALSE;
}

static void
as_send_job_status_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	AsSendReq *req = user_data;
	g_autoptr(AsSendJob) self = g_object_ref(req->job);
	AsSendChunked *c = req->chunked;
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonObject) obj =
		as_peer_client_request_finish(AS_PEER_CLIENT(source), res, &error);

	if (!as_send_chunked_req_landed(self, req))
		return;
	if (obj != NULL || g_error_matches(error, AS_PEER_CLIENT_ERROR, SOUP_STATUS_NOT_FOUND)) {
		gboolean after_complete = req->after_complete;
		/* 404: the receiver never heard of the task, so it holds nothing */
		as_send_job_network_ok(self);
		c->status_pending = FALSE;
		as_send_req_free(req);
		as_send_chunked_apply_status(c, obj, after_complete);
	} else if (!as_send_job_req_failed_common(self, req, error, &self->ready_control)) {
		g_autofree gchar *message =
			g_strdup_printf("asking for its upload status failed: %s", error->message);
		as_send_req_free(req);
		as_send_chunked_fail(c, message);
	}
	as_send_job_pump(self);
}

static void
as_send_job_chunk_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	AsSendReq *req = user_data;
	g_autoptr(AsSendJob) self = g_object_ref(req->job);
	AsSendChunked *c = req->chunked;
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonObject) obj =
		as_peer_client_request_finish(AS_PEER_CLIENT(source), res, &error);

	if (!as_send_chunked_req_landed(self, req))
		return;
	if (obj != NULL) {
		as_send_job_network_ok(self);
		as_send_chunked_mark_acked(c, req->index);
		as_send_req_free(req);
		/* a chunk is acknowledged: the record may move on (throttled) */
		as_send_job_save(self, FALSE);
		as_send_job_progress(self, FALSE);
		as_send_chunked_maybe_complete(c);
	} else if (g_error_matches(error, AS_PEER_CLIENT_ERROR, SOUP_STATUS_CONFLICT)) {
		/* "already being received": our own aborted request is still winding down there */
		guint epoch = req->epoch;
		if (++c->conflicts > AS_SEND_JOB_CONFLICT_RETRIES) {
			as_send_req_free(req);
			as_send_chunked_fail(c, error->message);
		} else {
			c->need_status = TRUE;
			g_clear_object(&req->job);
			g_queue_push_head(&self->ready_data, req);
			as_send_job_network_trouble(self, error, epoch);
		}
	} else if (!as_send_job_req_failed_common(self, req, error, &self->ready_data)) {
		as_send_req_free(req);
		as_send_chunked_fail(c, error->message);
	}
	as_send_job_pump(self);
}

static void
as_send_job_complete_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	AsSendReq *req = user_data;
	g_autoptr(AsSendJob) self = g_object_ref(req->job);
	AsSendChunked *c = req->chunked;
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonObject) obj =
		as_peer_client_request_finish(AS_PEER_CLIENT(source), res, &error);

	if (!as_send_chunked_req_landed(self, req))
		return;
	if (obj != NULL) {
		const gchar *sha256 = as_send_json_string(obj, "sha256");
		g_autofree gchar *saved = g_strdup(as_send_json_string(obj, "saved_as"));
		g_autofree gchar *mismatch = NULL;
		g_autofree gchar *sha256_copy = g_strdup(sha256);

		as_send_job_network_ok(self);
		c->complete_pending = FALSE;
		as_send_req_free(req);
		if (c->sha256 != NULL && !as_sha256_hex_equal(sha256, c->sha256))
			mismatch = g_strdup_printf("the receiver computed SHA-256 %s, not %s",
						   sha256 != NULL ? sha256 : "(none)", c->sha256);
		as_send_chunked_finished(c, sha256_copy, saved, mismatch);
	} else if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
		if (!self->stopped) {
			g_clear_object(&req->job);
			g_queue_push_head(&self->ready_control, req);
		} else {
			c->complete_pending = FALSE;
			as_send_req_free(req);
		}
	} else if (as_peer_client_error_is_auth(error)) {
		g_autofree gchar *reason = as_send_job_refused_message(self, error);
		as_send_req_free(req);
		as_send_job_fail(self, reason);
	} else if (as_peer_client_error_is_retryable(error) ||
		   g_error_matches(error, AS_PEER_CLIENT_ERROR, SOUP_STATUS_CONFLICT)) {
		/* missing chunks, a completion under way, or a lost reply: ask what it holds */
		guint epoch = req->epoch;
		c->complete_pending = FALSE;
		as_send_req_free(req);
		if (c->complete_wait_since_us == 0)
			c->complete_wait_since_us = g_get_monotonic_time();
		as_send_job_queue_status(self, c, TRUE);
		if (as_peer_client_error_is_retryable(error))
			as_send_job_network_trouble(self, error, epoch);
	} else {
		g_autofree gchar *message =
			g_strdup_printf("completing failed: %s", error->message);
		c->complete_pending = FALSE;
		as_send_req_free(req);
		as_send_chunked_fail(c, message);
	}
	as_send_job_pump(self);
}

/* every chunk is with the receiver and the whole-file hash is known: ask it to publish */
static void
as_send_chunked_maybe_complete(AsSendChunked *c)
{
	AsSendJob *self = c->job;
	AsSendReq *req;

	if (self == NULL || c->finished || c->thread != NULL || c->outstanding > 0 ||
	    c->status_pending || c->complete_pending || c->poll_id != 0 || !c->started)
		return;
	/* published already (a resumed transfer): it only needs our hash to compare */
	if (c->remote_sha256 != NULL) {
		g_autofree gchar *mismatch = NULL;
		if (c->verify && c->sha256 == NULL) {
			as_send_chunked_fail(c, "the whole-file SHA-256 could not be computed");
			return;
		}
		if (c->sha256 != NULL && !as_sha256_hex_equal(c->remote_sha256, c->sha256))
			mismatch = g_strdup_printf("the receiver has SHA-256 %s, not %s",
						   c->remote_sha256, c->sha256);
		as_send_chunked_finished(c,
					 c->remote_sha256[0] != '\0' ? c->remote_sha256 : c->sha256,
					 c->remote_saved_as, mismatch);
		return;
	}
	if (c->verify && c->sha256 == NULL) {
		as_send_chunked_fail(c, "the whole-file SHA-256 could not be computed");
		return;
	}
	if (c->complete_wait_since_us != 0) {
		gint64 waited = g_get_monotonic_time() - c->complete_wait_since_us;
		if (waited > (gint64)AS_SEND_JOB_RETRY_BUDGET_S * G_USEC_PER_SEC) {
			as_send_chunked_fail(c, "the receiver never confirmed the file");
			return;
		}
	}
	req = as_send_req_new(AS_SEND_REQ_COMPLETE);
	req->chunked = as_send_chunked_ref(c);
	c->complete_pending = TRUE;
	g_queue_push_tail(&self->ready_control, req);
}

/* -------- scheduling -------- */

static void
as_send_job_single_read_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	AsSendReq *req = user_data;
	g_autoptr(AsSendJob) self = g_steal_pointer(&req->job);
	g_autoptr(GError) error = NULL;

	self->preparing--;
	if (!g_task_propagate_boolean(G_TASK(res), &error)) {
		if (self->phase != AS_SEND_JOB_PHASE_DONE)
			as_send_job_file_finished(self, req->file, "http", NULL, NULL,
						  req->started_us, error->message);
		as_send_req_free(req);
	} else if (self->phase == AS_SEND_JOB_PHASE_DONE) {
		as_send_req_free(req);
	} else {
		g_queue_push_tail(&self->ready_data, req);
	}
	as_send_job_pump(self);
}

static void
as_send_job_batch_read_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	AsSendReq *req = user_data;
	g_autoptr(AsSendJob) self = g_steal_pointer(&req->job);

	self->preparing--;
	g_task_propagate_boolean(G_TASK(res), NULL);
	if (self->phase == AS_SEND_JOB_PHASE_DONE) {
		as_send_req_free(req);
		as_send_job_pump(self);
		return;
	}
	for (guint i = 0; i < req->parts->len; i++) {
		AsSendBatchPart *part = g_ptr_array_index(req->parts, i);
		if (part->error != NULL)
			as_send_job_file_finished(self, part->file, "http-batch", NULL, NULL,
						  part->started_us, part->error);
	}
	if (req->data == NULL)
		as_send_req_free(req);
	else
		g_queue_push_tail(&self->ready_data, req);
	as_send_job_pump(self);
}

/* reads the files gathered so far in a thread, into one batch body */
static gboolean
as_send_job_flush_batch(AsSendJob *self)
{
	g_autoptr(GTask) task = NULL;
	AsSendReq *req;

	if (self->accum->len == 0)
		return TRUE;
	if (!as_send_budget_try_acquire(self->budget))
		return FALSE;
	req = as_send_req_new(AS_SEND_REQ_BATCH);
	req->budget = as_send_budget_ref(self->budget);
	req->parts = g_ptr_array_new_with_free_func((GDestroyNotify)as_send_batch_part_free);
	for (guint i = 0; i < self->accum->len; i++) {
		AsSendBatchPart *part = g_new0(AsSendBatchPart, 1);
		part->file = g_ptr_array_index(self->accum, i);
		g_ptr_array_add(req->parts, part);
	}
	/* the parts own the records now */
	g_ptr_array_set_free_func(self->accum, NULL);
	g_ptr_array_set_size(self->accum, 0);
	g_ptr_array_set_free_func(self->accum, (GDestroyNotify)as_send_file_free);
	self->accum_bytes = 0;
	req->job = g_object_ref(self);
	self->preparing++;
	task = g_task_new(NULL, NULL, as_send_job_batch_read_cb, req);
	g_task_set_task_data(task, req, NULL);
	g_task_run_in_thread(task, as_send_batch_read_thread);
	return TRUE;
}

static gboolean
as_send_job_start_single(AsSendJob *self, AsSendFile *file)
{
	g_autoptr(GTask) task = NULL;
	AsSendReq *req;

	if (!as_send_budget_try_acquire(self->budget))
		return FALSE;
	req = as_send_req_new(AS_SEND_REQ_SINGLE);
	req->budget = as_send_budget_ref(self->budget);
	req->file = file;
	req->started_us = g_get_real_time();
	req->job = g_object_ref(self);
	self->preparing++;
	task = g_task_new(NULL, NULL, as_send_job_single_read_cb, req);
	g_task_set_task_data(task, req, NULL);
	g_task_run_in_thread(task, as_send_single_read_thread);
	return TRUE;
}

/* the chunk size of a new file: large files get larger chunks to stay within the receiver's
 * chunk count limit */
static guint64
as_send_job_chunk_size_for(AsSendJob *self, guint64 size)
{
	guint64 chunk_size = self->opts.chunk_size;
	guint64 min_for_count = (size + AS_CHUNK_STORE_MAX_CHUNKS - 1) / AS_CHUNK_STORE_MAX_CHUNKS;
	return MAX(chunk_size, min_for_count);
}

static void
as_send_job_start_chunked(AsSendJob *self, AsSendFile *file)
{
	g_autoptr(GError) error = NULL;
	AsSendChunked *c = g_atomic_rc_box_new0(AsSendChunked);
	/* started before: in an earlier run, or over QUIC before the job went over to HTTP */
	gboolean known_task = file->task_id != NULL;
	guint64 n_chunks;

	c->job = self;
	c->budget = as_send_budget_ref(self->budget);
	c->fd = -1;
	c->verify = self->opts.verify;
	c->started_us = g_get_real_time();
	if (file->task_id == NULL) {
		file->task_id = as_send_job_file_id(self, file);
		file->chunk_size = as_send_job_chunk_size_for(self, file->size);
		n_chunks = (file->size + file->chunk_size - 1) / file->chunk_size;
		file->total_chunks = (guint32)n_chunks;
		file->hashed_chunks = 0;
		g_clear_pointer(&file->hash_state, g_bytes_unref);
	}
	file->state = AS_SEND_FILE_STATE_SENDING;
	c->rec = file;
	c->name = g_strdup(file->name);
	c->source = g_strdup(file->source);
	c->size = file->size;
	c->mtime_us = file->mtime_us;
	c->chunk_size = file->chunk_size;
	c->total_chunks = file->total_chunks;
	c->want = g_new0(guint8, c->total_chunks);
	c->acked = g_new0(guint8, c->total_chunks);
	c->outstanding = c->total_chunks;
	g_ptr_array_add(self->chunked, c);
	self->reading = c;
	as_send_job_set_current(self, file->name);

	if (c->verify) {
		if (file->hash_state != NULL && file->hashed_chunks > 0) {
			c->hash = as_sha256_state_load(file->hash_state, &error);
			if (c->hash == NULL) {
				g_warning("%s: the saved hash of %s is unusable, hashing it again: "
					  "%s",
					  self->id, file->name, error->message);
				g_clear_error(&error);
				file->hashed_chunks = 0;
				g_clear_pointer(&file->hash_state, g_bytes_unref);
			}
		}
		if (c->hash == NULL)
			c->hash = as_sha256_state_new();
		c->hashed_chunks = file->hashed_chunks;
		if (c->hashed_chunks == c->total_chunks)
			c->sha256 = as_sha256_state_finish_hex(c->hash);
	}
	if (!as_send_state_update_file(self->state, file, &error)) {
		as_send_chunked_fail(c, error->message);
		return;
	}
	/* a task started before asks what the receiver holds; a new id cannot be known there */
	if (self->resumed || known_task) {
		as_send_job_queue_status(self, c, FALSE);
		return;
	}
	c->started = TRUE;
	g_mutex_lock(&c->budget->mutex);
	memset(c->want, 1, c->total_chunks);
	g_mutex_unlock(&c->budget->mutex);
	as_send_chunked_start_reader(c);
}

typedef enum {
	AS_SEND_KIND_BATCH,
	AS_SEND_KIND_SINGLE,
	AS_SEND_KIND_CHUNKED,
	AS_SEND_KIND_QUIC,
} AsSendKind;

static AsSendKind
as_send_job_classify(AsSendJob *self, const AsSendFile *file)
{
#if HAVE_QUIC
	/* aerosync/2 resumes like HTTP chunks (the same task): every file goes over it; with the
	 * 0.x framing, whole files, except those HTTP chunks can resume when HTTP is there */
	if (self->quic != NULL && (self->quic_only || as_quic_sender_is_v2(self->quic) ||
				   (file->task_id == NULL && file->size < self->opts.chunk_size)))
		return AS_SEND_KIND_QUIC;
#endif
	if (file->task_id != NULL)
		return AS_SEND_KIND_CHUNKED;
	if (file->size <= AS_SEND_JOB_BATCH_FILE_MAX && as_peer_batch_name_is_safe(file->name))
		return AS_SEND_KIND_BATCH;
	if (file->size < self->opts.chunk_size)
		return AS_SEND_KIND_SINGLE;
	return AS_SEND_KIND_CHUNKED;
}

/* takes files from the record into work, as far as memory and the reader allow */
static void
as_send_job_fill(AsSendJob *self)
{
	gboolean blocked = FALSE;

	while (!blocked) {
		g_autoptr(GError) error = NULL;
		AsSendFile *file;

		if (self->lookahead == NULL && !g_queue_is_empty(&self->requeued))
			self->lookahead = g_queue_pop_head(&self->requeued);
		if (self->lookahead == NULL && !self->iter_done) {
			if (!as_send_state_file_iter_next(self->iter, &self->lookahead, &error)) {
				as_send_job_fail(self, error->message);
				return;
			}
			if (self->lookahead == NULL)
				self->iter_done = TRUE;
		}
		file = self->lookahead;
		if (file == NULL)
			break;
		switch (as_send_job_classify(self, file)) {
		case AS_SEND_KIND_BATCH:
			if (self->accum->len >= AS_SEND_JOB_BATCH_FILES_MAX ||
			    self->accum_bytes + file->size > AS_SEND_JOB_BATCH_BYTES_MAX) {
				if (!as_send_job_flush_batch(self)) {
					blocked = TRUE;
					break;
				}
			}
			g_ptr_array_add(self->accum, g_steal_pointer(&self->lookahead));
			self->accum_bytes += file->size;
			as_send_job_set_current(self, file->name);
			break;
		case AS_SEND_KIND_SINGLE:
			if (!as_send_job_start_single(self, file)) {
				blocked = TRUE;
				break;
			}
			as_send_job_set_current(self, file->name);
			self->lookahead = NULL;
			break;
		case AS_SEND_KIND_QUIC: {
			AsSendReq *req;
			/* the uploads read their files themselves: only keep the queue short */
			if (g_queue_get_length(&self->ready_data) >= self->opts.parallel) {
				blocked = TRUE;
				break;
			}
			as_send_job_set_current(self, file->name);
			req = as_send_req_new(AS_SEND_REQ_QUIC);
			req->file = g_steal_pointer(&self->lookahead);
			req->started_us = g_get_real_time();
			g_queue_push_tail(&self->ready_data, req);
			break;
		}
		case AS_SEND_KIND_CHUNKED:
			/* one file is read at a time, so the disk reads stay sequential */
			if (self->reading != NULL) {
				blocked = TRUE;
				break;
			}
			self->lookahead = NULL;
			as_send_job_start_chunked(self, file);
			break;
		default:
			g_assert_not_reached();
		}
		if (self->phase == AS_SEND_JOB_PHASE_DONE)
			return;
	}
	/* a partial batch goes when nothing more can join it soon */
	if (self->accum->len > 0 &&
	    (self->iter_done || blocked || self->accum->len >= AS_SEND_JOB_BATCH_FILES_MAX))
		as_send_job_flush_batch(self);
}

/* the next request to start, or NULL */
static AsSendReq *
as_send_job_next_req(AsSendJob *self)
{
	AsSendReq *req = g_queue_pop_head(&self->ready_control);

	if (req != NULL)
		return req;
	for (GList *l = self->ready_data.head; l != NULL;) {
		GList *next = l->next;
		AsSendChunked *c;

		req = l->data;
		c = req->chunked;
		if (c == NULL) {
			g_queue_delete_link(&self->ready_data, l);
			return req;
		}
		if (c->finished || c->acked[req->index]) {
			g_queue_delete_link(&self->ready_data, l);
			as_send_req_free(req);
		} else if (c->need_status && !c->status_pending) {
			/* after trouble, first ask what arrived; the chunk waits */
			as_send_job_queue_status(self, c, FALSE);
			return g_queue_pop_head(&self->ready_control);
		} else if (!c->status_pending) {
			g_queue_delete_link(&self->ready_data, l);
			return req;
		}
		l = next;
	}
	return NULL;
}

static void
as_send_job_dispatch(AsSendJob *self, AsSendReq *req)
{
	AsSendChunked *c = req->chunked;

	req->job = g_object_ref(self);
	req->epoch = self->epoch;
	self->n_in_flight++;
	switch (req->kind) {
	case AS_SEND_REQ_SINGLE:
		self->n_data_in_flight++;
		as_send_job_set_current(self, req->file->name);
		as_peer_client_put_async(self->client, req->file->name, req->data, req->sha256,
					 as_send_job_req_progress_cb, req, self->cancellable,
					 as_send_job_single_cb, req);
		break;
	case AS_SEND_REQ_BATCH:
		self->n_data_in_flight++;
		as_peer_client_batch_async(self->client, req->data, req->content_type,
					   as_send_job_req_progress_cb, req, self->cancellable,
					   as_send_job_batch_cb, req);
		break;
	case AS_SEND_REQ_CHUNK:
		self->n_data_in_flight++;
		as_send_job_set_current(self, c->rec->name);
		as_peer_client_chunk_async(self->client, c->rec->task_id, c->rec->name, c->size,
					   c->chunk_size, c->total_chunks, req->index, req->data,
					   req->sha256, as_send_job_req_progress_cb, req,
					   self->cancellable, as_send_job_chunk_cb, req);
		break;
	case AS_SEND_REQ_STATUS:
		as_peer_client_status_async(self->client, c->rec->task_id, self->cancellable,
					    as_send_job_status_cb, req);
		break;
	case AS_SEND_REQ_COMPLETE:
		as_peer_client_complete_async(self->client, c->rec->task_id, c->size,
					      c->total_chunks, c->verify ? c->sha256 : NULL,
					      self->cancellable, as_send_job_complete_cb, req);
		break;
#if HAVE_QUIC
	case AS_SEND_REQ_QUIC:
		/* queued before the job went over to HTTP */
		if (self->quic == NULL) {
			self->n_in_flight--;
			as_send_job_requeue_http(self, req);
			break;
		}
		self->n_data_in_flight++;
		as_send_job_set_current(self, req->file->name);
		if (as_quic_sender_is_v2(self->quic)) {
			as_send_job_quic_v2_dispatch(self, req);
			break;
		}
		as_quic_sender_upload_async(self->quic, req->file->source, req->file->name,
					    req->file->size, req->file->mtime_us, self->opts.verify,
					    self->cancellable, as_send_job_quic_cb, req);
		break;
#endif
	default:
		g_assert_not_reached();
	}
}

static void
as_send_job_update_state(AsSendJob *self)
{
	AsTransferState state;

	if (self->phase == AS_SEND_JOB_PHASE_DONE)
		return;
	if (self->paused)
		state = AS_TRANSFER_STATE_PAUSED;
	else if (self->phase != AS_SEND_JOB_PHASE_RUN)
		state = AS_TRANSFER_STATE_CONNECTING;
	else if (self->iter_done && self->lookahead == NULL && g_queue_is_empty(&self->requeued) &&
		 self->accum->len == 0 && self->preparing == 0 && self->n_data_in_flight == 0 &&
		 g_queue_is_empty(&self->ready_data) && self->reading == NULL &&
		 self->chunked->len > 0)
		/* only the receivers' hash checks are left */
		state = AS_TRANSFER_STATE_VERIFYING;
	else
		state = AS_TRANSFER_STATE_RUNNING;
	as_transfer_set_state(self->transfer, state);
}

static void
as_send_job_pump(AsSendJob *self)
{
	if (self->phase != AS_SEND_JOB_PHASE_RUN)
		return;
	if (!self->paused && self->backoff_id == 0) {
		as_send_job_fill(self);
		if (self->phase != AS_SEND_JOB_PHASE_RUN)
			return;
		while (self->n_in_flight < self->opts.parallel) {
			AsSendReq *req = as_send_job_next_req(self);
			if (req == NULL)
				break;
			as_send_job_dispatch(self, req);
		}
	}
	as_send_job_update_state(self);
	as_send_job_maybe_finish(self);
}

/* -------- connecting and walking -------- */

typedef struct {
	AsSendState *state;   /* owned ref */
	AsFileWalker *walker; /* owned, nullable: walk opts.paths */
	GStrv paths;
	gboolean recursive;
	guint64 skip;	     /* entries already in the record from an earlier walk */
	GPtrArray *failures; /* (element-type utf8) "name: why", at most a few */
	guint64 n_failed;
	GError *error; /* the first error recording a skipped entry */
} AsSendWalk;

static void
as_send_walk_free(AsSendWalk *walk)
{
	g_object_unref(walk->state);
	g_clear_object(&walk->walker);
	g_strfreev(walk->paths);
	g_ptr_array_unref(walk->failures);
	g_clear_error(&walk->error);
	g_free(walk);
}

/* an entry the walker could not take: a failed file, unless it is skipped by design */
static void
as_send_walk_error_cb(const gchar *path, const gchar *name, const GError *error, gpointer user_data)
{
	AsSendWalk *walk = user_data;
	g_autoptr(AsSendFile) file = g_new0(AsSendFile, 1);
	g_autoptr(GError) error_local = NULL;

	if (g_error_matches(error, AS_ERROR, AS_ERROR_NOT_SUPPORTED)) {
		g_info("not sending %s: %s", path, error->message);
		return;
	}
	if (walk->skip > 0) {
		walk->skip--;
		return;
	}
	if (!as_send_state_add_file(walk->state, path, name, 0, 0, &file->index, &error_local)) {
		if (walk->error == NULL)
			walk->error = g_steal_pointer(&error_local);
		return;
	}
	file->source = g_strdup(path);
	file->name = g_strdup(name);
	file->state = AS_SEND_FILE_STATE_FAILED;
	file->error = g_strdup(error->message);
	if (!as_send_state_update_file(walk->state, file, &error_local)) {
		if (walk->error == NULL)
			walk->error = g_steal_pointer(&error_local);
		return;
	}
	walk->n_failed++;
	if (walk->failures->len < AS_SEND_JOB_WALK_REPORT_MAX) {
		g_ptr_array_add(walk->failures, g_utf8_make_valid(name, -1));
		g_ptr_array_add(walk->failures, g_utf8_make_valid(error->message, -1));
	}
}

static void
as_send_walk_thread(GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
	AsSendWalk *walk = data;
	g_autoptr(GError) error = NULL;

	if (walk->walker == NULL) {
		walk->walker = as_file_walker_new((const gchar *const *)walk->paths,
						  walk->recursive ? AS_FILE_WALKER_FLAG_RECURSIVE
								  : AS_FILE_WALKER_FLAG_NONE,
						  &error);
		if (walk->walker == NULL) {
			g_task_return_error(task, g_steal_pointer(&error));
			return;
		}
	}
	as_file_walker_set_error_func(walk->walker, as_send_walk_error_cb, walk, NULL);
	while (TRUE) {
		g_autoptr(AsFileWalkerEntry) entry = NULL;

		if (!as_file_walker_next(walk->walker, &entry, cancellable, &error)) {
			g_task_return_error(task, g_steal_pointer(&error));
			return;
		}
		if (walk->error != NULL) {
			g_task_return_error(task, g_steal_pointer(&walk->error));
			return;
		}
		if (entry == NULL)
			break;
		if (walk->skip > 0) {
			walk->skip--;
			continue;
		}
		if (!as_send_state_add_file(walk->state, entry->path, entry->name, entry->size,
					    entry->mtime_us, NULL, &error)) {
			g_task_return_error(task, g_steal_pointer(&error));
			return;
		}
	}
	as_send_state_set_files_complete(walk->state);
	if (!as_send_state_save(walk->state, &error)) {
		g_task_return_error(task, g_steal_pointer(&error));
		return;
	}
	g_task_return_boolean(task, TRUE);
}

/* "2.1 GB", with a plain space: g_format_size() puts a no-break space there */
static gchar *
as_send_job_format_size(guint64 size)
{
	g_autofree gchar *text = g_format_size(size);
	g_auto(GStrv) parts = g_strsplit(text, "\u00a0", -1);
	return g_strjoinv(" ", parts);
}

static void
as_send_job_run(AsSendJob *self)
{
	g_autoptr(GError) error = NULL;
	guint64 total = as_send_state_get_bytes_total(self->state);
	guint64 needed = total - MIN(total, as_send_state_get_bytes_done(self->state));

	as_transfer_set_files(self->transfer, (guint)as_send_state_get_n_files(self->state));
	as_transfer_set_bytes_total(self->transfer, total);
	self->files_done = (guint)as_send_state_get_n_done(self->state);
	self->files_failed = (guint)as_send_state_get_n_failed(self->state);
	self->bytes_base = as_send_state_get_bytes_done(self->state);
	as_transfer_set_files_done(self->transfer, self->files_done);
	as_transfer_set_files_failed(self->transfer, self->files_failed);

	if (self->opts.preflight && self->free_bytes != G_MAXUINT64 && needed > self->free_bytes) {
		g_autofree gchar *free_text = as_send_job_format_size(self->free_bytes);
		g_autofree gchar *needed_text = as_send_job_format_size(needed);
		g_autofree gchar *reason = g_strdup_printf(
			"receiver %s has %s free, %s needed (use --no-preflight to try "
			"anyway)",
			as_peer_client_get_host_port(self->client), free_text, needed_text);
		as_send_job_fail(self, reason);
		return;
	}
	self->iter = as_send_state_file_iter_new(self->state, AS_SEND_STATE_ITER_PENDING, &error);
	if (self->iter == NULL) {
		as_send_job_fail(self, error->message);
		return;
	}
	self->phase = AS_SEND_JOB_PHASE_RUN;
	as_send_job_progress(self, TRUE);
	as_send_job_pump(self);
}

static void
as_send_job_walk_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(AsSendJob) self = AS_SEND_JOB(user_data);
	AsSendWalk *walk = g_task_get_task_data(G_TASK(res));
	g_autoptr(GError) error = NULL;

	if (!g_task_propagate_boolean(G_TASK(res), &error)) {
		/* the record is ours again, whatever state the walk left it in */
		self->phase = AS_SEND_JOB_PHASE_CONNECT;
		if (self->stopped)
			return;
		if (self->cancelling) {
			as_send_job_finish(self, AS_TRANSFER_STATE_CANCELLED, NULL, FALSE);
			return;
		}
		g_prefix_error(&error, "cannot list the files to send: ");
		as_send_job_fail(self, error->message);
		return;
	}
	self->phase = AS_SEND_JOB_PHASE_CONNECT;
	if (self->stopped)
		return;
	if (self->cancelling) {
		as_send_job_finish(self, AS_TRANSFER_STATE_CANCELLED, NULL, FALSE);
		return;
	}
	/* the unreadable entries are failed files, with their history lines */
	for (guint i = 0; i + 1 < walk->failures->len; i += 2) {
		g_autofree gchar *id = g_strdup_printf("%s-walk%u", self->id, i / 2);
		AsEngineSendResult result = {
			.id = id,
			.filename = g_ptr_array_index(walk->failures, i),
			.protocol = "http",
			.error = g_ptr_array_index(walk->failures, i + 1),
		};
		as_engine_send_file_done(self->engine, self->transfer, &result);
		self->file_lines = TRUE;
		if (self->first_error == NULL)
			self->first_error = g_strdup_printf(
				"%s: %s", (const gchar *)g_ptr_array_index(walk->failures, i),
				(const gchar *)g_ptr_array_index(walk->failures, i + 1));
	}
	if (walk->n_failed > walk->failures->len / 2)
		g_message("%s: %" G_GUINT64_FORMAT " more unreadable files were skipped", self->id,
			  walk->n_failed - walk->failures->len / 2);
	as_send_job_run(self);
}

static void
as_send_job_walk(AsSendJob *self)
{
	g_autoptr(GTask) task = NULL;
	AsSendWalk *walk = g_new0(AsSendWalk, 1);

	walk->state = g_object_ref(self->state);
	walk->walker = g_steal_pointer(&self->walker);
	walk->paths = g_strdupv(self->opts.paths);
	walk->recursive = self->opts.recursive;
	/* a walk cut short by a crash starts again; what it recorded then is skipped */
	walk->skip = as_send_state_get_n_files(self->state);
	walk->failures = g_ptr_array_new_with_free_func(g_free);
	if (walk->walker == NULL && walk->paths == NULL) {
		as_send_walk_free(walk);
		as_send_job_fail(self, "the resume record does not say what to send");
		return;
	}
	self->phase = AS_SEND_JOB_PHASE_WALK;
	task = g_task_new(NULL, self->walk_cancellable, as_send_job_walk_cb, g_object_ref(self));
	g_task_set_task_data(task, walk, (GDestroyNotify)as_send_walk_free);
	g_task_run_in_thread(task, as_send_walk_thread);
}

#if HAVE_QUIC
static void
as_send_job_quic_connected_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(AsSendJob) self = AS_SEND_JOB(user_data);
	g_autoptr(GError) error = NULL;
	g_autofree gchar *peer = NULL;

	if (!as_quic_sender_connect_finish(AS_QUIC_SENDER(source), res, &error)) {
		if (self->phase != AS_SEND_JOB_PHASE_CONNECT || self->stopped ||
		    (gpointer)source != (gpointer)self->quic)
			return;
		peer = g_strdup(as_quic_sender_get_host_port(self->quic));
		g_clear_object(&self->quic);
		if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
			if (self->cancelling)
				as_send_job_finish(self, AS_TRANSFER_STATE_CANCELLED, NULL, FALSE);
			else
				as_send_job_connect(self);
			return;
		}
		/* auto: on over HTTP, saying why; never after a certificate check failed */
		if (!self->quic_only && g_strcmp0(self->opts.protocol, "auto") == 0 &&
		    as_quic_sender_error_allows_fallback(error)) {
			g_autofree gchar *protocol = g_strdup_printf("http (QUIC fallback: %s: %s)",
								     peer, error->message);
			g_message("%s: QUIC to %s failed (%s); sending over HTTP", self->id, peer,
				  error->message);
			as_transfer_set_protocol(self->transfer, protocol);
			as_send_job_connected(self);
			return;
		}
		if (self->resumed && as_quic_sender_error_allows_fallback(error)) {
			as_send_job_network_trouble(self, error, self->epoch);
			return;
		}
		if (g_error_matches(error, AS_ERROR, AS_ERROR_PERMISSION_DENIED)) {
			as_send_job_fail(self, error->message);
		} else {
			g_autofree gchar *reason = g_strdup_printf(
				"cannot reach %s over QUIC: %s%s", peer, error->message,
				self->quic_only ? ""
						: " (Protocol is quic: no fallback to HTTP; use "
						  "--protocol auto to allow it)");
			as_send_job_fail(self, reason);
		}
		return;
	}
	if (self->phase != AS_SEND_JOB_PHASE_CONNECT || self->stopped)
		return;
	as_send_job_network_ok(self);
	as_transfer_set_protocol(self->transfer, "quic");
	g_info("%s: sending to %s over QUIC, certificate SHA-256 %s", self->id,
	       as_quic_sender_get_host_port(self->quic),
	       as_quic_sender_get_peer_fingerprint(self->quic));
	as_send_job_connected(self);
}

/* one QUIC connection for the job, its receiver's identity checked as the options say */
static void
as_send_job_quic_connect(AsSendJob *self,
			 const gchar *host,
			 guint16 port,
			 const gchar *announced_sha256)
{
	g_autofree gchar *known_peers = g_build_filename(
		as_engine_get_config(self->engine)->state_dir, AS_KNOWN_PEERS_FILENAME, NULL);

	g_clear_object(&self->quic);
	self->quic = as_quic_sender_new(host, port, self->token);
	as_quic_sender_set_limiters(self->quic, self->limiter, self->global_limiter);
	as_quic_sender_set_progress_func(self->quic, as_send_job_quic_progress_cb, self);
	if (self->opts.pin != NULL)
		as_quic_sender_set_pin(self->quic, self->opts.pin);
	else if (self->mdns_pin != NULL)
		as_quic_sender_set_pin(self->quic, self->mdns_pin);
	as_quic_sender_set_insecure(self->quic, self->opts.insecure);
	as_quic_sender_set_expected_fingerprint(self->quic, announced_sha256);
	as_quic_sender_set_known_peers(self->quic, known_peers);
	/* resumable aerosync/2 for files named one by one (typically few and big) and for sends
	 * that resume; the cheaper 0.x framing for directory trees, typically many small files,
	 * whose big files still resume over HTTP chunks when Protocol is auto */
	as_quic_sender_set_prefer_v2(self->quic, !self->opts.recursive || self->resumed);
	as_quic_sender_connect_async(self->quic, self->cancellable, as_send_job_quic_connected_cb,
				     g_object_ref(self));
}

#endif

/*
 * Which protocol, from the receiver's /health: QUIC when it offers it (and this build has it)
 * unless Protocol is http. Returns TRUE when it took over (a QUIC connection is under way, or
 * the transfer failed), FALSE to go on over HTTP.
 */
static gboolean
as_send_job_negotiate(AsSendJob *self, JsonObject *health)
{
	JsonArray *protocols = as_send_json_array(health, "protocols");
	gint64 quic_port = as_send_json_int(json_object_get_member(health, "quic_port"), 0);
	gboolean offers_quic = FALSE;

	/* https:// was asked for: it stays on TLS with the certificate checked as asked */
	if (g_strcmp0(self->opts.protocol, "http") == 0 || as_peer_client_get_https(self->client))
		return FALSE;
	for (guint i = 0; protocols != NULL && i < json_array_get_length(protocols); i++) {
		JsonNode *node = json_array_get_element(protocols, i);
		if (JSON_NODE_HOLDS_VALUE(node) &&
		    json_node_get_value_type(node) == G_TYPE_STRING &&
		    g_strcmp0(json_node_get_string(node), "quic") == 0)
			offers_quic = TRUE;
	}
	/* an mDNS announcement says it too */
	if (quic_port <= 0 && self->mdns_quic_port > 0) {
		quic_port = self->mdns_quic_port;
		offers_quic = TRUE;
	}
#if HAVE_QUIC
	if (offers_quic && quic_port > 0 && quic_port <= G_MAXUINT16) {
		g_autofree gchar *host =
			as_quic_peer_host(as_peer_client_get_host_port(self->client));
		as_send_job_quic_connect(self, host, (guint16)quic_port,
					 as_send_json_string(health, "cert_sha256"));
		return TRUE;
	}
#endif
	if (g_strcmp0(self->opts.protocol, "quic") == 0) {
		g_autofree gchar *reason = g_strdup_printf(
#if HAVE_QUIC
			"receiver %s does not offer QUIC (it may run with --http-only); send "
			"with --protocol auto or http",
#else
			"this aerosyncd was built without QUIC, so it cannot send to %s over it; "
			"send with --protocol auto or http",
#endif
			as_peer_client_get_host_port(self->client));
		as_send_job_fail(self, reason);
		return TRUE;
	}
	return FALSE;
}

static void
as_send_job_health_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(AsSendJob) self = AS_SEND_JOB(user_data);
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonObject) obj =
		as_peer_client_request_finish(AS_PEER_CLIENT(source), res, &error);

	if (self->phase != AS_SEND_JOB_PHASE_CONNECT || self->stopped)
		return;
	if (obj == NULL) {
		if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
			/* a pause aborted it; when already resumed, connect again at once */
			if (self->cancelling)
				as_send_job_finish(self, AS_TRANSFER_STATE_CANCELLED, NULL, FALSE);
			else
				as_send_job_connect(self);
			return;
		}
		/* a resumed transfer waits for its receiver; a new one says at once it cannot */
		if (self->resumed && as_peer_client_error_is_retryable(error)) {
			as_send_job_network_trouble(self, error, self->epoch);
			return;
		}
		as_send_job_fail(self, error->message);
		return;
	}
	as_send_job_network_ok(self);
	self->free_bytes = G_MAXUINT64;
	if (json_object_has_member(obj, "free_bytes")) {
		gint64 free_bytes = as_send_json_int(json_object_get_member(obj, "free_bytes"), 0);
		/* 0 is what a receiver that cannot tell reports */
		if (free_bytes > 0)
			self->free_bytes = (guint64)free_bytes;
	}
	if (as_send_job_negotiate(self, obj))
		return;
	if (as_peer_client_get_https(self->client)) {
		AsPeerTrust *trust = as_peer_client_get_trust(self->client);
		AsPeerTrustVerdict verdict = as_peer_trust_get_verdict(trust);
		if (verdict == AS_PEER_TRUST_VERDICT_INSECURE) {
			g_message("%s: sending to %s over HTTPS WITHOUT checking its certificate "
				  "(Insecure)",
				  self->id, as_peer_client_get_host_port(self->client));
			as_transfer_set_protocol(self->transfer,
						 "https (certificate not checked: insecure)");
		} else {
			g_info("%s: sending to %s over HTTPS, certificate %s%s%s", self->id,
			       as_peer_client_get_host_port(self->client),
			       as_peer_trust_verdict_to_string(verdict),
			       as_peer_trust_get_accepted(trust) != NULL ? ", SHA-256 " : "",
			       as_peer_trust_get_accepted(trust) != NULL
				       ? as_peer_trust_get_accepted(trust)
				       : "");
			as_transfer_set_protocol(self->transfer, "https");
		}
		as_send_job_connected(self);
		return;
	}
	g_info("%s: sending to %s over HTTP", self->id, as_peer_client_get_host_port(self->client));
	as_send_job_connected(self);
}

/* the receiver is reached, over whatever protocol: list the files if not done yet, send */
static void
as_send_job_connected(AsSendJob *self)
{
	if (!as_send_state_get_files_complete(self->state)) {
		as_send_job_walk(self);
		return;
	}
	as_send_job_run(self);
}

#if HAVE_MDNS
static void as_send_job_set_https_trust(AsSendJob *self);

static void
as_send_job_mdns_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(AsSendJob) self = AS_SEND_JOB(user_data);
	g_autoptr(GError) error = NULL;
	g_autoptr(AsMdnsPeer) peer = as_mdns_resolve_finish(res, &error);
	g_autofree gchar *destination = NULL;
	g_autofree gchar *base_url = NULL;
	g_autofree gchar *host_port = NULL;
	gboolean https;

	if (self->phase != AS_SEND_JOB_PHASE_CONNECT || self->stopped)
		return;
	if (peer == NULL) {
		if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
			if (self->cancelling)
				as_send_job_finish(self, AS_TRANSFER_STATE_CANCELLED, NULL, FALSE);
			else
				as_send_job_connect(self);
			return;
		}
		/* a resumed transfer waits for its receiver to be announced again */
		if (self->resumed && g_error_matches(error, AS_ERROR, AS_ERROR_NOT_FOUND)) {
			g_autoptr(GError) trouble = g_error_new_literal(
				G_IO_ERROR, G_IO_ERROR_HOST_NOT_FOUND, error->message);
			as_send_job_network_trouble(self, trouble, self->epoch);
			return;
		}
		as_send_job_fail(self, error->message);
		return;
	}
	https = g_strcmp0(self->opts.protocol, "https") == 0;
	destination = https ? as_mdns_peer_dup_https_destination(peer)
			    : as_mdns_peer_dup_destination(peer);
	if (destination == NULL) {
		g_autofree gchar *reason = g_strdup_printf(
			"%s has no HTTPS port in its announcement: start it with --https, or send "
			"with --protocol http or quic",
			as_transfer_get_destination(self->transfer));
		as_send_job_fail(self, reason);
		return;
	}
	if (!as_peer_client_parse_destination(destination, https ? "https" : "http", &base_url,
					      &host_port, &error)) {
		g_autofree gchar *reason = g_strdup_printf(
			"%s was announced with an unusable address: %s",
			as_transfer_get_destination(self->transfer), error->message);
		as_send_job_fail(self, reason);
		return;
	}
	g_info("%s: %s is %s%s%s", self->id, as_transfer_get_destination(self->transfer), host_port,
	       peer->fp != NULL ? ", certificate SHA-256 " : "", peer->fp != NULL ? peer->fp : "");
	g_free(self->mdns_pin);
	self->mdns_pin = g_strdup(peer->fp);
	self->mdns_quic_port = peer->quic;
	g_clear_object(&self->client);
	self->client = as_peer_client_new(base_url, host_port, self->token, self->opts.tag,
					  self->opts.parallel + 1);
	as_peer_client_set_limiters(self->client, self->limiter, self->global_limiter);
	if (https) {
		/* its HTTPS side has the certificate QUIC has: the announced fp, on first use */
		as_send_job_set_https_trust(self);
		as_peer_trust_set_expected(as_peer_client_get_trust(self->client), peer->fp);
	}
	as_peer_client_health_async(self->client, self->cancellable, as_send_job_health_cb,
				    g_object_ref(self));
}
#endif

static void
as_send_job_connect(AsSendJob *self)
{
	self->connect_wanted = FALSE;
	if (self->paused) {
		self->connect_wanted = TRUE;
		return;
	}
#if HAVE_QUIC
	if (self->quic_only) {
		as_send_job_quic_connect(self, self->quic_host, self->quic_port, NULL);
		return;
	}
#endif
#if HAVE_MDNS
	if (self->mdns) {
		as_mdns_resolve_async(as_transfer_get_destination(self->transfer),
				      AS_SEND_JOB_MDNS_TIMEOUT_MS, self->cancellable,
				      as_send_job_mdns_cb, g_object_ref(self));
		return;
	}
#endif
	as_peer_client_health_async(self->client, self->cancellable, as_send_job_health_cb,
				    g_object_ref(self));
}

static gboolean
as_send_job_tick_cb(gpointer user_data)
{
	AsSendJob *self = AS_SEND_JOB(user_data);

	/* saves the throttle skipped reach the disk within a second */
	as_send_job_save(self, FALSE);
	as_send_job_progress(self, TRUE);
	return G_SOURCE_CONTINUE;
}

/* -------- control from the bus -------- */

static void
as_send_job_new_run(AsSendJob *self)
{
	g_cancellable_cancel(self->cancellable);
	g_object_unref(self->cancellable);
	self->cancellable = g_cancellable_new();
}

static gboolean
as_send_job_pause_cb(gpointer user_data, GError **error)
{
	AsSendJob *self = AS_SEND_JOB(user_data);

	if (self->paused)
		return TRUE;
	self->paused = TRUE;
	/* in-flight requests are aborted; their buffers wait in the queue for Resume() */
	as_send_job_new_run(self);
	as_transfer_set_state(self->transfer, AS_TRANSFER_STATE_PAUSED);
	as_send_job_save(self, TRUE);
	g_message("%s: paused", self->id);
	return TRUE;
}

static gboolean
as_send_job_resume_cb(gpointer user_data, GError **error)
{
	AsSendJob *self = AS_SEND_JOB(user_data);

	if (!self->paused)
		return TRUE;
	self->paused = FALSE;
	g_message("%s: resumed", self->id);
	as_send_job_update_state(self);
	if (self->phase == AS_SEND_JOB_PHASE_CONNECT && self->connect_wanted &&
	    self->backoff_id == 0)
		as_send_job_connect(self);
	else
		as_send_job_pump(self);
	return TRUE;
}

static gboolean
as_send_job_cancel_cb(gpointer user_data, GError **error)
{
	g_autoptr(AsSendJob) self = g_object_ref(AS_SEND_JOB(user_data));

	if (self->cancelling)
		return TRUE;
	self->cancelling = TRUE;
	g_message("%s: cancelled", self->id);
	/* the walk thread owns the record: the end waits until it stops */
	if (self->phase == AS_SEND_JOB_PHASE_WALK) {
		g_cancellable_cancel(self->walk_cancellable);
		return TRUE;
	}
	as_send_job_finish(self, AS_TRANSFER_STATE_CANCELLED, NULL, FALSE);
	return TRUE;
}

static gboolean
as_send_job_set_rate_limit_cb(gpointer user_data, guint64 bytes_per_second, GError **error)
{
	AsSendJob *self = AS_SEND_JOB(user_data);

	if (bytes_per_second > AS_RATE_LIMIT_MAX_BYTES_PER_S) {
		g_set_error_literal(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
				    "the rate is too large");
		return FALSE;
	}
	/* waiting body reads look at the bucket again within AS_PEER_CLIENT_RATE_RECHECK_MS */
	as_rate_limiter_set_rate(self->limiter, bytes_per_second, g_get_monotonic_time());
	as_transfer_set_rate_limit(self->transfer, bytes_per_second);
	return TRUE;
}

static const AsTransferControl as_send_job_control = {
	.pause = as_send_job_pause_cb,
	.resume = as_send_job_resume_cb,
	.cancel = as_send_job_cancel_cb,
	.set_rate_limit = as_send_job_set_rate_limit_cb,
};

/* -------- life cycle -------- */

/**
 * as_send_job_start:
 * @self: a #AsSendJob
 *
 * Connects to the receiver (`GET /health`), walks the sources if that is not done yet, checks
 * the free space and sends. A new transfer that cannot reach its receiver fails at once; a
 * resumed one keeps trying for %AS_SEND_JOB_RETRY_BUDGET_S.
 **/
void
as_send_job_start(AsSendJob *self)
{
	g_return_if_fail(AS_IS_SEND_JOB(self));
	g_return_if_fail(self->phase == AS_SEND_JOB_PHASE_NEW);

	self->phase = AS_SEND_JOB_PHASE_CONNECT;
	as_transfer_set_state(self->transfer, AS_TRANSFER_STATE_CONNECTING);
	self->tick_id = g_timeout_add(AS_SEND_JOB_TICK_MS, as_send_job_tick_cb, self);
	as_send_job_connect(self);
}

/**
 * as_send_job_shutdown:
 * @self: a #AsSendJob
 *
 * Stops everything for a daemon exit without ending the transfer: the resume record is saved,
 * so the next start goes on where this one stopped.
 **/
void
as_send_job_shutdown(AsSendJob *self)
{
	g_return_if_fail(AS_IS_SEND_JOB(self));

	if (self->phase == AS_SEND_JOB_PHASE_DONE || self->stopped)
		return;
	self->stopped = TRUE;
	g_cancellable_cancel(self->cancellable);
	g_cancellable_cancel(self->walk_cancellable);
	g_clear_handle_id(&self->backoff_id, g_source_remove);
	g_clear_handle_id(&self->tick_id, g_source_remove);
	for (guint i = 0; i < self->chunked->len; i++)
		as_send_chunked_stop_reader(g_ptr_array_index(self->chunked, i));
	as_send_job_save(self, TRUE);
}

const gchar *
as_send_job_get_id(AsSendJob *self)
{
	g_return_val_if_fail(AS_IS_SEND_JOB(self), NULL);
	return self->id;
}

AsTransfer *
as_send_job_get_transfer(AsSendJob *self)
{
	g_return_val_if_fail(AS_IS_SEND_JOB(self), NULL);
	return self->transfer;
}

gboolean
as_send_job_is_finished(AsSendJob *self)
{
	g_return_val_if_fail(AS_IS_SEND_JOB(self), TRUE);
	return self->phase == AS_SEND_JOB_PHASE_DONE;
}

/* "photos", "a.jpg and 3 more" */
static gchar *
as_send_job_display_name(const gchar *const *paths, const gchar *fallback)
{
	g_autofree gchar *base = NULL;
	guint n = paths != NULL ? g_strv_length((gchar **)paths) : 0;

	if (n == 0)
		return g_strdup(fallback);
	base = g_path_get_basename(paths[0]);
	if (n == 1)
		return g_steal_pointer(&base);
	return g_strdup_printf("%s and %u more", base, n - 1);
}

/**
 * as_send_job_parse_destination:
 * @destination: `host[:port]`, `http://host:port`, `quic://host[:port]`, `NAME.local` or
 *   `@instance`
 * @protocol: (nullable): the Protocol option
 * @base_url: (out) (optional) (transfer full): the HTTP side, %NULL for quic:// and mDNS
 * @host_port: (out) (optional) (transfer full): the receiver for messages
 * @quic_host: (out) (optional) (transfer full): the host of a quic:// destination, or %NULL
 * @quic_port: (out) (optional): its port
 * @mdns: (out) (optional): set for NAME.local and @instance, looked up when connecting
 * @error: (nullable): optional return location for an error
 *
 * Returns: %TRUE when this build can send to @destination with @protocol
 **/
gboolean
as_send_job_parse_destination(const gchar *destination,
			      const gchar *protocol,
			      gchar **base_url,
			      gchar **host_port,
			      gchar **quic_host,
			      guint16 *quic_port,
			      gboolean *mdns,
			      GError **error)
{
	g_autofree gchar *url = NULL;
	g_autofree gchar *hp = NULL;

	g_return_val_if_fail(destination != NULL, FALSE);

	if (base_url != NULL)
		*base_url = NULL;
	if (host_port != NULL)
		*host_port = NULL;
	if (quic_host != NULL)
		*quic_host = NULL;
	if (quic_port != NULL)
		*quic_port = 0;
	if (mdns != NULL)
		*mdns = FALSE;
	if (g_ascii_strncasecmp(destination, "quic://", 7) == 0) {
#if HAVE_QUIC
		g_autofree gchar *host = NULL;
		guint16 port = 0;
		if (protocol != NULL && g_strcmp0(protocol, "auto") != 0 &&
		    g_strcmp0(protocol, "quic") != 0) {
			g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
				    "%s goes over QUIC: drop --protocol %s or use HOST[:PORT]",
				    destination, protocol);
			return FALSE;
		}
		if (!as_quic_sender_parse_destination(destination, &host, &port, error))
			return FALSE;
		if (host_port != NULL)
			*host_port = as_known_peers_make_key(host, port);
		if (quic_port != NULL)
			*quic_port = port;
		if (quic_host != NULL)
			*quic_host = g_steal_pointer(&host);
		return TRUE;
#else
		g_set_error_literal(error, AS_ERROR, AS_ERROR_NOT_SUPPORTED,
				    "this aerosyncd was built without QUIC: send to HOST[:PORT]");
		return FALSE;
#endif
	}
#if HAVE_MDNS
	if (as_mdns_target_is_mdns(destination)) {
		g_autofree gchar *unused_url = NULL;
		g_autofree gchar *unused_hp = NULL;
		/* the protocol is checked as for any other host; https goes to the announced
		 * HTTPS port, see as_send_job_mdns_cb() */
		if (!as_peer_client_parse_destination(
			    "localhost", g_strcmp0(protocol, "quic") == 0 ? "auto" : protocol,
			    &unused_url, &unused_hp, error))
			return FALSE;
		if (host_port != NULL)
			*host_port = g_strdup(destination);
		if (mdns != NULL)
			*mdns = TRUE;
		return TRUE;
	}
#endif
	/* https:// is TLS to that port: it never negotiates QUIC */
	if (g_ascii_strncasecmp(destination, "https://", 8) == 0 &&
	    g_strcmp0(protocol, "quic") == 0) {
		g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
			    "%s goes over HTTPS: drop --protocol quic or use quic://HOST[:PORT]",
			    destination);
		return FALSE;
	}
	/* Protocol quic also starts with GET /health, which gives the QUIC port */
	if (g_strcmp0(protocol, "quic") == 0) {
#if HAVE_QUIC
		protocol = "auto";
#else
		g_set_error_literal(error, AS_ERROR, AS_ERROR_NOT_SUPPORTED,
				    "this aerosyncd was built without QUIC");
		return FALSE;
#endif
	}
	if (!as_peer_client_parse_destination(destination, protocol, &url, &hp, error))
		return FALSE;
	if (base_url != NULL)
		*base_url = g_steal_pointer(&url);
	if (host_port != NULL)
		*host_port = g_steal_pointer(&hp);
	return TRUE;
}

/* the certificate of an https:// receiver: as for QUIC, plus a CA-verified one for its name */
static void
as_send_job_set_https_trust(AsSendJob *self)
{
	AsPeerTrust *trust = as_peer_client_get_trust(self->client);
	g_autofree gchar *known_peers = g_build_filename(
		as_engine_get_config(self->engine)->state_dir, AS_KNOWN_PEERS_FILENAME, NULL);

	as_peer_trust_set_pin(trust, self->opts.pin);
	as_peer_trust_set_insecure(trust, self->opts.insecure);
	as_peer_trust_set_known_peers(trust, known_peers);
	as_peer_trust_set_allow_ca(trust, TRUE);
}

/**
 * as_send_job_new:
 * @engine: the engine the transfer is registered with
 * @state: the transfer's resume record, new or loaded; its options are the Send() options
 * @token: (nullable): the token to present
 * @global_limiter: (nullable): the daemon-wide rate limit
 * @walker: (nullable): a walker over the sources, checked by the caller; %NULL to walk the
 *   Paths of the record when the walk is not complete
 * @resumed: whether the record comes from an earlier run
 * @error: (nullable): optional return location for an error
 *
 * Registers the transfer with the engine (in state `queued`) and installs its control, so it
 * can be paused, resumed, cancelled and limited over the bus. Nothing is sent before
 * as_send_job_start().
 *
 * Returns: (transfer full): the job, or %NULL when the record's destination or options are
 *   not usable
 **/
AsSendJob *
as_send_job_new(AsEngine *engine,
		AsSendState *state,
		const gchar *token,
		AsRateLimiter *global_limiter,
		AsFileWalker *walker,
		gboolean resumed,
		GError **error)
{
	g_autoptr(AsSendJob) self = g_object_new(AS_TYPE_SEND_JOB, NULL);
	g_autofree gchar *base_url = NULL;
	g_autofree gchar *host_port = NULL;
	const gchar *destination;

	g_return_val_if_fail(AS_IS_ENGINE(engine), NULL);
	g_return_val_if_fail(AS_IS_SEND_STATE(state), NULL);

	destination = as_send_state_get_destination(state);
	if (!as_send_options_parse(&self->opts, as_send_state_get_options(state), error))
		return NULL;
	if (!as_send_job_parse_destination(destination, self->opts.protocol, &base_url, &host_port,
					   &self->quic_host, &self->quic_port, &self->mdns, error))
		return NULL;
	self->quic_only = self->quic_host != NULL;
	self->token = g_strdup(token);
	self->engine = g_object_ref(engine);
	self->state = g_object_ref(state);
	self->id = g_strdup(as_send_state_get_transfer_id(state));
	self->resumed = resumed;
	self->walker = walker != NULL ? g_object_ref(walker) : NULL;
	self->display_name =
		as_send_job_display_name((const gchar *const *)self->opts.paths, self->id);
	self->budget = as_send_budget_new(self->opts.parallel + 1);
	self->limiter = as_rate_limiter_new(self->opts.rate_limit, 0);
	self->global_limiter = global_limiter != NULL ? g_object_ref(global_limiter) : NULL;
	/* one connection more than requests, so a status or complete never waits for one */
	if (base_url != NULL) {
		self->client = as_peer_client_new(base_url, host_port, token, self->opts.tag,
						  self->opts.parallel + 1);
		as_peer_client_set_limiters(self->client, self->limiter, self->global_limiter);
		if (as_peer_client_get_https(self->client))
			as_send_job_set_https_trust(self);
	}

	self->transfer = g_object_ref(as_engine_send_begin(
		engine, self->id, destination, host_port,
		self->quic_only							 ? "quic"
		: self->client != NULL && as_peer_client_get_https(self->client) ? "https"
										 : "http",
		self->display_name));
	as_transfer_set_rate_limit(self->transfer, self->opts.rate_limit);
	as_transfer_set_control(self->transfer, &as_send_job_control, self);
	return g_steal_pointer(&self);
}

static void
as_send_job_dispose(GObject *object)
{
	AsSendJob *self = AS_SEND_JOB(object);

	g_clear_handle_id(&self->backoff_id, g_source_remove);
	g_clear_handle_id(&self->tick_id, g_source_remove);
	if (self->chunked != NULL) {
		while (self->chunked->len > 0)
			as_send_job_drop_chunked(self, g_ptr_array_index(self->chunked, 0));
	}
#if HAVE_QUIC
	if (self->quic != NULL)
		as_quic_sender_close(self->quic);
#endif
	/* the transfer lingers on the bus after us: it must not call into a gone job */
	if (self->transfer != NULL)
		as_transfer_set_control(self->transfer, NULL, NULL);
	G_OBJECT_CLASS(as_send_job_parent_class)->dispose(object);
}

static void
as_send_job_finalize(GObject *object)
{
	AsSendJob *self = AS_SEND_JOB(object);

	as_send_job_clear_queue(&self->ready_control);
	as_send_job_clear_queue(&self->ready_data);
	g_queue_clear_full(&self->requeued, (GDestroyNotify)as_send_file_free);
	g_clear_pointer(&self->iter, as_send_state_file_iter_free);
	as_send_file_free(self->lookahead);
	g_ptr_array_unref(self->accum);
	g_ptr_array_unref(self->chunked);
	g_clear_object(&self->transfer);
	g_clear_object(&self->engine);
	g_clear_object(&self->state);
	g_clear_object(&self->client);
	g_clear_object(&self->limiter);
	g_clear_object(&self->global_limiter);
	g_clear_object(&self->walker);
#if HAVE_QUIC
	g_clear_object(&self->quic);
#endif
	g_clear_object(&self->cancellable);
	g_clear_object(&self->walk_cancellable);
	if (self->budget != NULL)
		as_send_budget_unref(self->budget);
	as_send_options_clear(&self->opts);
	if (self->token != NULL)
		memset(self->token, 0, strlen(self->token));
	g_free(self->token);
	g_free(self->quic_host);
	g_free(self->mdns_pin);
	g_free(self->id);
	g_free(self->display_name);
	g_free(self->current_name);
	g_free(self->first_error);
	G_OBJECT_CLASS(as_send_job_parent_class)->finalize(object);
}

static void
as_send_job_class_init(AsSendJobClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);

	object_class->dispose = as_send_job_dispose;
	object_class->finalize = as_send_job_finalize;
	signals[SIGNAL_FINISHED] =
		g_signal_new("finished", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
			     NULL, G_TYPE_NONE, 0);
}

static void
as_send_job_init(AsSendJob *self)
{
	self->cancellable = g_cancellable_new();
	self->walk_cancellable = g_cancellable_new();
	self->accum = g_ptr_array_new_with_free_func((GDestroyNotify)as_send_file_free);
	self->chunked = g_ptr_array_new_with_free_func((GDestroyNotify)as_send_chunked_unref);
	self->free_bytes = G_MAXUINT64;
	g_queue_init(&self->ready_control);
	g_queue_init(&self->ready_data);
	g_queue_init(&self->requeued);
}
