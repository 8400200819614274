/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

#include "as-quic-framing.h"

G_BEGIN_DECLS

/*
 * The messages of the native AeroSync QUIC protocol, ALPN `aerosync/2` (doc/protocol.md).
 *
 * Every message is a frame: a type byte, the payload length as a big-endian 32-bit number, and
 * the payload. Integers are big-endian; strings are a big-endian 16-bit length and that many
 * bytes of UTF-8 without NUL. The only bytes outside frames are a chunk's data and its SHA-256
 * digest, which follow a CHUNK frame. This file is pure: it encodes and decodes buffers, so
 * tests and the fuzzer reach it without sockets.
 */

#define AS_QUIC_ALPN_V2 "aerosync/2"

/* type byte + 32-bit payload length */
#define AS_QUIC_V2_FRAME_HEADER_SIZE 5
/* what a receiver buffers for one frame from a sender (HELLO, FILE, CHUNK) */
#define AS_QUIC_V2_MAX_CLIENT_PAYLOAD 8192
/* chunks of one file; the same bound as the receiver's chunk store */
#define AS_QUIC_V2_MAX_CHUNKS 1048576
/* a HAVE bitmap of AS_QUIC_V2_MAX_CHUNKS chunks plus the other replies' strings */
#define AS_QUIC_V2_MAX_SERVER_PAYLOAD (AS_QUIC_V2_MAX_CHUNKS / 8 + 8192)
#define AS_QUIC_V2_MAX_TOKEN_LEN      1024
#define AS_QUIC_V2_MAX_PATH_LEN	      4096
#define AS_QUIC_V2_MAX_TEXT_LEN	      1024
#define AS_QUIC_V2_TASK_ID_MAX	      64
/* smaller chunks would let a stream window hold too many chunks in flight at the receiver */
#define AS_QUIC_V2_MIN_CHUNK_SIZE     (64 * 1024)
#define AS_QUIC_V2_DEFAULT_CHUNK_SIZE (8 * 1024 * 1024)
/* the SHA-256 digest after each chunk's data */
#define AS_QUIC_V2_DIGEST_SIZE 32

/**
 * AsQuicV2MsgType:
 * @AS_QUIC_V2_MSG_HELLO: sender → receiver, first frame of the control stream: the token
 * @AS_QUIC_V2_MSG_WELCOME: receiver → sender on the control stream: authenticated
 * @AS_QUIC_V2_MSG_FILE: sender → receiver, first frame of a file stream
 * @AS_QUIC_V2_MSG_HAVE: receiver → sender: the chunks the receiver already holds
 * @AS_QUIC_V2_MSG_CHUNK: sender → receiver: a chunk follows (data, then its digest)
 * @AS_QUIC_V2_MSG_CHUNK_OK: receiver → sender: a chunk is verified and stored
 * @AS_QUIC_V2_MSG_DONE: receiver → sender: the file is verified and published
 * @AS_QUIC_V2_MSG_ERROR: receiver → sender: the stream (or, on the control stream, the
 *   connection) failed
 * @AS_QUIC_V2_MSG_EVENT: receiver → sender on the control stream: progress and outcomes
 **/
typedef enum {
	AS_QUIC_V2_MSG_HELLO = 0x01,
	AS_QUIC_V2_MSG_WELCOME = 0x02,
	AS_QUIC_V2_MSG_FILE = 0x03,
	AS_QUIC_V2_MSG_HAVE = 0x04,
	AS_QUIC_V2_MSG_CHUNK = 0x05,
	AS_QUIC_V2_MSG_CHUNK_OK = 0x06,
	AS_QUIC_V2_MSG_DONE = 0x07,
	AS_QUIC_V2_MSG_ERROR = 0x08,
	AS_QUIC_V2_MSG_EVENT = 0x09,
} AsQuicV2MsgType;

/**
 * AsQuicV2EventKind:
 * @AS_QUIC_V2_EVENT_PROGRESS: bytes of a file are stored
 * @AS_QUIC_V2_EVENT_COMPLETED: a file is published
 * @AS_QUIC_V2_EVENT_FAILED: a file failed
 **/
typedef enum {
	AS_QUIC_V2_EVENT_PROGRESS = 1,
	AS_QUIC_V2_EVENT_COMPLETED = 2,
	AS_QUIC_V2_EVENT_FAILED = 3,
} AsQuicV2EventKind;

/* FILE flags */
#define AS_QUIC_V2_FILE_FLAG_SHA256 0x01 /* a whole-file digest follows the sizes */

/**
 * AsQuicV2Msg:
 * @type: the frame type
 * @token: HELLO: the auth token, %NULL when empty
 * @size: FILE, DONE: the file size in bytes
 * @chunk_size: FILE: chunk size (every chunk but the last is this long)
 * @sha256: FILE (optional), DONE: the whole file's SHA-256, lower-case hex
 * @task_id: FILE, EVENT: the resumable task id, `[A-Za-z0-9_-]{1,64}`
 * @path: FILE: the relative path as sent, not confined; DONE: the path saved as
 * @total_chunks: HAVE: the number of chunks of the file
 * @bitmap: HAVE: (total_chunks + 7) / 8 bytes, bit i & 7 of byte i / 8 set when chunk i is held
 * @index: CHUNK, CHUNK_OK: the chunk index
 * @offset: CHUNK: index × chunk_size
 * @length: CHUNK: the data bytes that follow
 * @chunks_done: CHUNK_OK: how many distinct chunks the receiver holds now
 * @code: ERROR: an #AsError code
 * @kind: EVENT: an #AsQuicV2EventKind
 * @bytes_done: EVENT: bytes stored so far
 * @text: ERROR: the message; EVENT: detail (the saved path, or why it failed)
 *
 * One decoded frame; only the fields of its type are set.
 **/
typedef struct {
	AsQuicV2MsgType type;
	gchar *token;
	guint64 size;
	guint64 chunk_size;
	gchar *sha256;
	gchar *task_id;
	gchar *path;
	guint32 total_chunks;
	GBytes *bitmap;
	guint32 index;
	guint64 offset;
	guint64 length;
	guint32 chunks_done;
	guint16 code;
	guint8 kind;
	guint64 bytes_done;
	gchar *text;
} AsQuicV2Msg;

void as_quic_v2_msg_clear(AsQuicV2Msg *msg);

AsQuicFramingResult as_quic_v2_decode(const guint8 *buf,
				      gsize len,
				      gsize max_payload,
				      AsQuicV2Msg *msg,
				      gsize *frame_len,
				      GError **error);
GByteArray *as_quic_v2_encode(const AsQuicV2Msg *msg, GError **error);
GByteArray *as_quic_v2_encode_error(const GError *error);

gboolean as_quic_v2_task_id_is_valid(const gchar *task_id);
gboolean
as_quic_v2_file_check(guint64 size, guint64 chunk_size, guint32 *total_chunks, GError **error);
gboolean as_quic_v2_chunk_range(
	guint64 size, guint64 chunk_size, guint32 index, guint64 *offset, guint64 *length);
gboolean as_quic_v2_bitmap_get(GBytes *bitmap, guint32 index);
void as_quic_v2_bitmap_set(guint8 *bitmap, guint32 index);
GError *as_quic_v2_msg_to_error(const AsQuicV2Msg *msg);
const gchar *as_quic_v2_event_kind_to_string(guint8 kind);

G_END_DECLS
