/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "as-engine.h"
#include "as-file-walker.h"
#include "as-rate-limit.h"
#include "as-send-state.h"

G_BEGIN_DECLS

/* a{sv} keys of Manager1.Send() */
#define AS_SEND_KEY_TOKEN      "Token"	   /* s */
#define AS_SEND_KEY_TOKEN_FILE "TokenFile" /* s, read by the daemon */
#define AS_SEND_KEY_RECURSIVE  "Recursive" /* b */
#define AS_SEND_KEY_PROTOCOL   "Protocol"  /* s: auto, http, https, quic */
#define AS_SEND_KEY_PARALLEL   "Parallel"  /* u */
#define AS_SEND_KEY_CHUNK_SIZE "ChunkSize" /* t */
#define AS_SEND_KEY_RATE_LIMIT "RateLimit" /* t, bytes per second */
#define AS_SEND_KEY_VERIFY     "Verify"	   /* b */
#define AS_SEND_KEY_PREFLIGHT  "Preflight" /* b */
#define AS_SEND_KEY_TAG	       "Tag"	   /* s */
#define AS_SEND_KEY_PIN	       "Pin"	   /* s, SHA-256 of the certificate (QUIC) */
#define AS_SEND_KEY_INSECURE   "Insecure"  /* b, accept any certificate (QUIC) */
/* kept in the resume record only: the paths, to walk them again after a crash */
#define AS_SEND_KEY_PATHS "Paths" /* as */

/* requests (chunks, files or batches) in flight per transfer */
#define AS_SEND_JOB_DEFAULT_PARALLEL 4
#define AS_SEND_JOB_MAX_PARALLEL     64

/*
 * The default chunk size, measured on loopback: 1 GiB between two aerosyncd on one 2-core
 * machine (both hashing every byte, Parallel 4, median of 3 runs, twice): 4 MiB took 5.5 and
 * 5.8 s (about 190 MB/s), 8 MiB 4.5 and 4.8 s (about 235 MB/s), 16 MiB 4.5 and 4.8 s. Below
 * 8 MiB the per-chunk round trips and the receiver's chunk-map updates show; above it nothing
 * is gained while the Parallel + 1 buffers in memory double. A chunk is also what a broken
 * connection costs to send again.
 */
#define AS_SEND_JOB_DEFAULT_CHUNK_SIZE (8 * 1024 * 1024)
#define AS_SEND_JOB_MIN_CHUNK_SIZE     (64 * 1024)
#define AS_SEND_JOB_MAX_CHUNK_SIZE     (256 * 1024 * 1024)

/* files up to this size go together in POST /upload/batch */
#define AS_SEND_JOB_BATCH_FILE_MAX (64 * 1024)
/* at most this many files, and about this many bytes, per batch request */
#define AS_SEND_JOB_BATCH_FILES_MAX 64
#define AS_SEND_JOB_BATCH_BYTES_MAX (4 * 1024 * 1024)

/* retries after network trouble: exponential backoff with jitter, for about ten minutes */
#define AS_SEND_JOB_RETRY_INITIAL_MS 500
#define AS_SEND_JOB_RETRY_MAX_MS     30000
#define AS_SEND_JOB_RETRY_BUDGET_S   600
/* 409 "chunk in flight" answers for one file before it is given up */
#define AS_SEND_JOB_CONFLICT_RETRIES 8
/* rounds of re-sending chunks a receiver reports missing at completion */
#define AS_SEND_JOB_REPAIR_ROUNDS 3
/* how often a receiver still hashing a completed file is asked again */
#define AS_SEND_JOB_COMPLETE_POLL_MS 1000
/* saves skipped by the throttle and stalled progress are caught up this often */
#define AS_SEND_JOB_TICK_MS 1000
/* a TokenFile holds one token */
#define AS_SEND_JOB_TOKEN_FILE_MAX 4096

/* the Send() options, checked */
typedef struct {
	gchar *token;
	gchar *token_file;
	gboolean recursive;
	gchar *protocol;
	guint parallel;
	guint64 chunk_size;
	guint64 rate_limit;
	gboolean verify;
	gboolean preflight;
	gchar *tag;
	gchar *pin; /* lower-case hex, no colons */
	gboolean insecure;
	GStrv paths; /* only in the resume record */
} AsSendOptions;

gboolean as_send_options_parse(AsSendOptions *self, GVariant *options, GError **error);
GVariant *as_send_options_to_variant(const AsSendOptions *self);
gchar *as_send_options_load_token(const AsSendOptions *self, GError **error);
void as_send_options_clear(AsSendOptions *self);

gboolean as_send_job_parse_destination(const gchar *destination,
				       const gchar *protocol,
				       gchar **base_url,
				       gchar **host_port,
				       gchar **quic_host,
				       guint16 *quic_port,
				       gboolean *mdns,
				       GError **error);

#define AS_TYPE_SEND_JOB (as_send_job_get_type())
G_DECLARE_FINAL_TYPE(AsSendJob, as_send_job, AS, SEND_JOB, GObject)

AsSendJob *as_send_job_new(AsEngine *engine,
			   AsSendState *state,
			   const gchar *token,
			   AsRateLimiter *global_limiter,
			   AsFileWalker *walker,
			   gboolean resumed,
			   GError **error);
void as_send_job_start(AsSendJob *self);
void as_send_job_shutdown(AsSendJob *self);
const gchar *as_send_job_get_id(AsSendJob *self);
AsTransfer *as_send_job_get_transfer(AsSendJob *self);
gboolean as_send_job_is_finished(AsSendJob *self);

G_END_DECLS
