/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "AsSha256State"

#include "config.h"

#include <nettle/sha2.h>
#include <string.h>

#include "as-error.h"
#include "as-sha256-ni.h"
#include "as-sha256-state.h"
#include "as-sha256.h"

/*
 * GnuTLS cannot export a hash context, so a resumable whole-file hash uses nettle directly:
 * struct sha256_ctx is a plain struct whose fields (state words, block count, partial block)
 * are all there is to a running SHA-256. A saved blob is 160 bytes, integers little-endian:
 *
 *   0  magic "ASSHA256"          64  partial block, 64 bytes; bytes from index on are zero
 *   8  u32 version (1)          128  SHA-256 of bytes 0..127
 *  12  u32 reserved, zero
 *  16  u64 count of 64-byte blocks compressed
 *  24  u32 index: bytes in the partial block (< 64)
 *  28  u32 reserved, zero
 *  32  u32[8] state words
 *
 * The fields are written one by one, so the blob does not depend on the struct's layout or
 * on the host's byte order, and the trailing digest catches truncation and bit rot.
 */
#define AS_SHA256_STATE_MAGIC	      "ASSHA256"
#define AS_SHA256_STATE_MAGIC_LEN     8
#define AS_SHA256_STATE_OFF_VERSION   8
#define AS_SHA256_STATE_OFF_RESERVED1 12
#define AS_SHA256_STATE_OFF_COUNT     16
#define AS_SHA256_STATE_OFF_INDEX     24
#define AS_SHA256_STATE_OFF_RESERVED2 28
#define AS_SHA256_STATE_OFF_STATE     32
#define AS_SHA256_STATE_OFF_BLOCK     64
#define AS_SHA256_STATE_OFF_DIGEST    128
#define AS_SHA256_STATE_STATE_WORDS   8

/* SHA-256 is defined for messages below 2^64 bits; refusing more blocks also keeps
 * count * 64 + index within a guint64 */
#define AS_SHA256_STATE_MAX_BLOCKS (G_GUINT64_CONSTANT(1) << 55)

G_STATIC_ASSERT(AS_SHA256_STATE_OFF_DIGEST + SHA256_DIGEST_SIZE == AS_SHA256_STATE_BLOB_SIZE);
G_STATIC_ASSERT(AS_SHA256_STATE_OFF_BLOCK + SHA256_BLOCK_SIZE == AS_SHA256_STATE_OFF_DIGEST);
G_STATIC_ASSERT(_SHA256_DIGEST_LENGTH == AS_SHA256_STATE_STATE_WORDS);

struct _AsSha256State {
	struct sha256_ctx ctx;
};

static void
as_sha256_state_put_u32(guint8 *p, guint32 value)
{
	for (guint i = 0; i < 4; i++)
		p[i] = (guint8)(value >> (8 * i));
}

static void
as_sha256_state_put_u64(guint8 *p, guint64 value)
{
	for (guint i = 0; i < 8; i++)
		p[i] = (guint8)(value >> (8 * i));
}

static guint32
as_sha256_state_get_u32(const guint8 *p)
{
	guint32 value = 0;
	for (guint i = 0; i < 4; i++)
		value |= (guint32)p[i] << (8 * i);
	return value;
}

static guint64
as_sha256_state_get_u64(const guint8 *p)
{
	guint64 value = 0;
	for (guint i = 0; i < 8; i++)
		value |= (guint64)p[i] << (8 * i);
	return value;
}

static gchar *
as_sha256_state_to_hex(const guint8 *digest)
{
	static const gchar hexdigits[] = "0123456789abcdef";
	gchar *hex = g_new(gchar, AS_SHA256_HEX_LEN + 1);

	for (guint i = 0; i < AS_SHA256_DIGEST_SIZE; i++) {
		hex[i * 2] = hexdigits[digest[i] >> 4];
		hex[i * 2 + 1] = hexdigits[digest[i] & 0x0f];
	}
	hex[AS_SHA256_HEX_LEN] = '\0';
	return hex;
}

/**
 * as_sha256_state_new:
 *
 * Creates a streaming SHA-256 whose running state can be saved with as_sha256_state_save()
 * and restored with as_sha256_state_load(), so a resumed upload continues its whole-file
 * hash instead of reading the file again. It uses nettle, which picks SHA-NI at run time.
 *
 * Returns: (transfer full): a new #AsSha256State
 **/
AsSha256State *
as_sha256_state_new(void)
{
	AsSha256State *self = g_new0(AsSha256State, 1);
	sha256_init(&self->ctx);
	return self;
}

/**
 * as_sha256_state_copy:
 * @self: a #AsSha256State
 *
 * Returns: (transfer full): an independent copy of @self
 **/
AsSha256State *
as_sha256_state_copy(const AsSha256State *self)
{
	g_return_val_if_fail(self != NULL, NULL);
	return g_memdup2(self, sizeof(*self));
}

/**
 * as_sha256_state_update:
 * @self: a #AsSha256State
 * @data: (array length=len): bytes to add
 * @len: number of bytes
 *
 * Adds bytes to the digest.
 **/
void
as_sha256_state_update(AsSha256State *self, const void *data, gsize len)
{
	g_return_if_fail(self != NULL);
	g_return_if_fail(data != NULL || len == 0);

	if (len == 0)
		return;
	sha256_update(&self->ctx, len, data);
}

/**
 * as_sha256_state_update_pair:
 * @a: a #AsSha256State
 * @b: another #AsSha256State
 * @data: (array length=len): bytes to add to both
 * @len: number of bytes
 *
 * Adds the same bytes to two digests, e.g. a chunk's own hash and the whole file's. When both
 * are at a block boundary (a chunk size that is a multiple of 64 keeps them there) and the
 * CPU has the SHA extensions, both are computed in one pass for about the cost of one.
 **/
void
as_sha256_state_update_pair(AsSha256State *a, AsSha256State *b, const void *data, gsize len)
{
	const guint8 *p = data;

	g_return_if_fail(a != NULL && b != NULL && a != b);
	g_return_if_fail(data != NULL || len == 0);

	if (a->ctx.index == 0 && b->ctx.index == 0 && len >= SHA256_BLOCK_SIZE &&
	    as_sha256_ni_available()) {
		gsize n_blocks = len / SHA256_BLOCK_SIZE;
		as_sha256_ni_compress_pair(a->ctx.state, b->ctx.state, p, n_blocks);
		a->ctx.count += n_blocks;
		b->ctx.count += n_blocks;
		p += n_blocks * SHA256_BLOCK_SIZE;
		len -= n_blocks * SHA256_BLOCK_SIZE;
	}
	if (len == 0)
		return;
	sha256_update(&a->ctx, len, p);
	sha256_update(&b->ctx, len, p);
}

static void
as_sha256_state_block_cb(const guint8 *data, gsize len, gpointer user_data)
{
	as_sha256_state_update(user_data, data, len);
}

/**
 * as_sha256_state_update_fd_range:
 * @self: a #AsSha256State
 * @fd: a readable file descriptor
 * @offset: first byte to hash
 * @length: number of bytes to hash
 * @cancellable: (nullable): a #GCancellable
 * @error: (nullable): optional return location for an error
 *
 * Adds @length bytes of @fd from @offset, read with pread() in %AS_SHA256_BLOCK_SIZE blocks,
 * e.g. to catch the hash up over chunks the receiver already holds. This blocks. On error the
 * state holds a part of the range: restore a saved copy before retrying.
 *
 * Returns: %TRUE on success; %AS_ERROR_INCOMPLETE if the file is shorter than the range
 **/
gboolean
as_sha256_state_update_fd_range(AsSha256State *self,
				int fd,
				guint64 offset,
				guint64 length,
				GCancellable *cancellable,
				GError **error)
{
	g_return_val_if_fail(self != NULL, FALSE);
	return as_fd_read_range(fd, offset, length, as_sha256_state_block_cb, self, cancellable,
				error);
}

static void
as_sha256_state_pair_block_cb(const guint8 *data, gsize len, gpointer user_data)
{
	AsSha256State **pair = user_data;
	as_sha256_state_update_pair(pair[0], pair[1], data, len);
}

/**
 * as_sha256_state_update_pair_fd_range:
 * @a: a #AsSha256State
 * @b: another #AsSha256State
 * @fd: a readable file descriptor
 * @offset: first byte to hash
 * @length: number of bytes to hash
 * @cancellable: (nullable): a #GCancellable
 * @error: (nullable): optional return location for an error
 *
 * as_sha256_state_update_fd_range() into two states from one read, with the cost of about
 * one where the CPU has the SHA extensions (see as_sha256_state_update_pair()).
 *
 * Returns: %TRUE on success; %AS_ERROR_INCOMPLETE if the file is shorter than the range
 **/
gboolean
as_sha256_state_update_pair_fd_range(AsSha256State *a,
				     AsSha256State *b,
				     int fd,
				     guint64 offset,
				     guint64 length,
				     GCancellable *cancellable,
				     GError **error)
{
	AsSha256State *pair[2] = {a, b};

	g_return_val_if_fail(a != NULL && b != NULL, FALSE);
	return as_fd_read_range(fd, offset, length, as_sha256_state_pair_block_cb, pair,
				cancellable, error);
}

/**
 * as_sha256_state_get_length:
 * @self: a #AsSha256State
 *
 * Returns: the number of bytes hashed so far
 **/
guint64
as_sha256_state_get_length(const AsSha256State *self)
{
	g_return_val_if_fail(self != NULL, 0);
	return self->ctx.count * SHA256_BLOCK_SIZE + self->ctx.index;
}

/**
 * as_sha256_state_finish_hex:
 * @self: a #AsSha256State
 *
 * Computes the digest of everything added so far. @self is left as it was, so it can still
 * be updated or saved, and blobs saved earlier stay valid.
 *
 * Returns: (transfer full): the digest as 64 lower-case hex digits
 **/
gchar *
as_sha256_state_finish_hex(const AsSha256State *self)
{
	struct sha256_ctx ctx;
	guint8 digest[SHA256_DIGEST_SIZE];

	g_return_val_if_fail(self != NULL, NULL);

	/* sha256_digest() pads and resets the context it is given: give it a copy */
	ctx = self->ctx;
	sha256_digest(&ctx, sizeof(digest), digest);
	return as_sha256_state_to_hex(digest);
}

/**
 * as_sha256_state_save:
 * @self: a #AsSha256State
 *
 * Serializes the running state into a %AS_SHA256_STATE_BLOB_SIZE byte, versioned and
 * self-checking blob for as_sha256_state_load(). The blob holds a digest-in-progress of the
 * file, so treat it as no more secret than the file's hash.
 *
 * Returns: (transfer full): the blob
 **/
GBytes *
as_sha256_state_save(const AsSha256State *self)
{
	struct sha256_ctx check;
	guint8 *blob;

	g_return_val_if_fail(self != NULL, NULL);

	blob = g_malloc0(AS_SHA256_STATE_BLOB_SIZE);
	memcpy(blob, AS_SHA256_STATE_MAGIC, AS_SHA256_STATE_MAGIC_LEN);
	as_sha256_state_put_u32(blob + AS_SHA256_STATE_OFF_VERSION, AS_SHA256_STATE_BLOB_VERSION);
	as_sha256_state_put_u64(blob + AS_SHA256_STATE_OFF_COUNT, self->ctx.count);
	as_sha256_state_put_u32(blob + AS_SHA256_STATE_OFF_INDEX, self->ctx.index);
	for (guint i = 0; i < AS_SHA256_STATE_STATE_WORDS; i++)
		as_sha256_state_put_u32(blob + AS_SHA256_STATE_OFF_STATE + 4 * i,
					self->ctx.state[i]);
	/* only the filled part of the block is meaningful; the rest stays zero so equal states
	 * give equal blobs */
	memcpy(blob + AS_SHA256_STATE_OFF_BLOCK, self->ctx.block, self->ctx.index);
	sha256_init(&check);
	sha256_update(&check, AS_SHA256_STATE_OFF_DIGEST, blob);
	sha256_digest(&check, SHA256_DIGEST_SIZE, blob + AS_SHA256_STATE_OFF_DIGEST);
	return g_bytes_new_take(blob, AS_SHA256_STATE_BLOB_SIZE);
}

/**
 * as_sha256_state_load:
 * @blob: a blob from as_sha256_state_save()
 * @error: (nullable): optional return location for an error
 *
 * Restores a running SHA-256. Blobs of the wrong size, magic or version, with a bad checksum
 * or with impossible fields are refused.
 *
 * Returns: (transfer full): the restored #AsSha256State, or %NULL with %AS_ERROR_INVALID_ARGUMENT
 *   (%AS_ERROR_NOT_SUPPORTED for a version this build does not know)
 **/
AsSha256State *
as_sha256_state_load(GBytes *blob, GError **error)
{
	g_autoptr(AsSha256State) self = NULL;
	struct sha256_ctx check;
	guint8 digest[SHA256_DIGEST_SIZE];
	const guint8 *data;
	gsize len = 0;
	guint32 version;
	guint64 count;
	guint32 index;

	g_return_val_if_fail(blob != NULL, NULL);
	g_return_val_if_fail(error == NULL || *error == NULL, NULL);

	data = g_bytes_get_data(blob, &len);
	if (len < AS_SHA256_STATE_OFF_RESERVED1 ||
	    memcmp(data, AS_SHA256_STATE_MAGIC, AS_SHA256_STATE_MAGIC_LEN) != 0) {
		g_set_error_literal(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
				    "saved SHA-256 state has a wrong magic");
		return NULL;
	}
	/* the version first, so a blob from a newer build is named as such */
	version = as_sha256_state_get_u32(data + AS_SHA256_STATE_OFF_VERSION);
	if (version != AS_SHA256_STATE_BLOB_VERSION) {
		g_set_error(error, AS_ERROR, AS_ERROR_NOT_SUPPORTED,
			    "saved SHA-256 state has version %u, this build reads version %u",
			    version, (guint)AS_SHA256_STATE_BLOB_VERSION);
		return NULL;
	}
	if (len != AS_SHA256_STATE_BLOB_SIZE) {
		g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
			    "saved SHA-256 state has %" G_GSIZE_FORMAT " bytes, expected %u", len,
			    (guint)AS_SHA256_STATE_BLOB_SIZE);
		return NULL;
	}
	sha256_init(&check);
	sha256_update(&check, AS_SHA256_STATE_OFF_DIGEST, data);
	sha256_digest(&check, sizeof(digest), digest);
	if (memcmp(digest, data + AS_SHA256_STATE_OFF_DIGEST, sizeof(digest)) != 0) {
		g_set_error_literal(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
				    "saved SHA-256 state is corrupt: checksum mismatch");
		return NULL;
	}
	count = as_sha256_state_get_u64(data + AS_SHA256_STATE_OFF_COUNT);
	index = as_sha256_state_get_u32(data + AS_SHA256_STATE_OFF_INDEX);
	if (as_sha256_state_get_u32(data + AS_SHA256_STATE_OFF_RESERVED1) != 0 ||
	    as_sha256_state_get_u32(data + AS_SHA256_STATE_OFF_RESERVED2) != 0 ||
	    index >= SHA256_BLOCK_SIZE || count >= AS_SHA256_STATE_MAX_BLOCKS) {
		g_set_error_literal(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
				    "saved SHA-256 state has impossible fields");
		return NULL;
	}
	for (guint i = index; i < SHA256_BLOCK_SIZE; i++) {
		if (data[AS_SHA256_STATE_OFF_BLOCK + i] != 0) {
			g_set_error_literal(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
					    "saved SHA-256 state has data past its partial block");
			return NULL;
		}
	}

	self = g_new0(AsSha256State, 1);
	self->ctx.count = count;
	self->ctx.index = index;
	for (guint i = 0; i < AS_SHA256_STATE_STATE_WORDS; i++)
		self->ctx.state[i] =
			as_sha256_state_get_u32(data + AS_SHA256_STATE_OFF_STATE + 4 * i);
	memcpy(self->ctx.block, data + AS_SHA256_STATE_OFF_BLOCK, index);
	return g_steal_pointer(&self);
}

/**
 * as_sha256_state_free:
 * @self: (nullable): a #AsSha256State
 *
 * Frees the state.
 **/
void
as_sha256_state_free(AsSha256State *self)
{
	g_free(self);
}
