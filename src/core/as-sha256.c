/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "AsSha256"

#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <unistd.h>

#include "as-error.h"
#include "as-sha256.h"

struct _AsSha256 {
	gnutls_hash_hd_t hd; /* owned */
	gboolean finished;
};

/**
 * as_sha256_new:
 *
 * Creates a streaming SHA-256 context backed by GnuTLS (which uses SHA-NI where present).
 *
 * Returns: (transfer full): a new #AsSha256
 **/
AsSha256 *
as_sha256_new(void)
{
	AsSha256 *self = g_new0(AsSha256, 1);
	int rc = gnutls_hash_init(&self->hd, GNUTLS_DIG_SHA256);

	/* SHA-256 is always compiled in, so this only fails when memory is exhausted, which
	 * g_malloc() treats as fatal too */
	if (rc < 0)
		g_error("failed to initialise SHA-256: %s", gnutls_strerror(rc));
	return self;
}

/**
 * as_sha256_update:
 * @self: a #AsSha256
 * @data: (array length=len): bytes to add
 * @len: number of bytes
 *
 * Adds bytes to the digest.
 **/
void
as_sha256_update(AsSha256 *self, const void *data, gsize len)
{
	g_return_if_fail(self != NULL);
	g_return_if_fail(!self->finished);
	g_return_if_fail(data != NULL || len == 0);

	if (len == 0)
		return;
	/* gnutls never fails an update on an initialised software or SHA-NI hash */
	(void)gnutls_hash(self->hd, data, len);
}

/**
 * as_fd_read_range:
 * @fd: a readable file descriptor
 * @offset: first byte to read
 * @length: number of bytes to read
 * @func: called with each block in order
 * @user_data: for @func
 * @cancellable: (nullable): a #GCancellable
 * @error: (nullable): optional return location for an error
 *
 * Streams @length bytes of @fd from @offset to @func, read with pread() in
 * %AS_SHA256_BLOCK_SIZE blocks so memory stays bounded and the file offset of @fd is
 * untouched. This blocks: run it in a thread.
 *
 * Returns: %TRUE on success; %AS_ERROR_INCOMPLETE if the file is shorter than the range
 **/
gboolean
as_fd_read_range(int fd,
		 guint64 offset,
		 guint64 length,
		 AsFdBlockFunc func,
		 gpointer user_data,
		 GCancellable *cancellable,
		 GError **error)
{
	g_autofree guint8 *buf = NULL;
	guint64 done = 0;

	g_return_val_if_fail(fd >= 0, FALSE);
	g_return_val_if_fail(func != NULL, FALSE);
	g_return_val_if_fail(error == NULL || *error == NULL, FALSE);

	if (offset > G_MAXINT64 || length > (guint64)G_MAXINT64 - offset) {
		g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
			    "range %" G_GUINT64_FORMAT "+%" G_GUINT64_FORMAT " is out of bounds",
			    offset, length);
		return FALSE;
	}
	if (length == 0)
		return TRUE;

	/* only a hint: the kernel may read ahead more aggressively */
	(void)posix_fadvise(fd, (off_t)offset, (off_t)length, POSIX_FADV_SEQUENTIAL);

	buf = g_malloc(MIN(length, (guint64)AS_SHA256_BLOCK_SIZE));
	while (done < length) {
		gsize want = (gsize)MIN(length - done, (guint64)AS_SHA256_BLOCK_SIZE);
		gssize n;

		if (g_cancellable_set_error_if_cancelled(cancellable, error))
			return FALSE;
		n = pread(fd, buf, want, (off_t)(offset + done));
		if (n < 0) {
			int errsv = errno;
			if (errsv == EINTR)
				continue;
			g_set_error(error, AS_ERROR, AS_ERROR_IO,
				    "failed to read at offset %" G_GUINT64_FORMAT ": %s",
				    offset + done, g_strerror(errsv));
			return FALSE;
		}
		if (n == 0) {
			g_set_error(error, AS_ERROR, AS_ERROR_INCOMPLETE,
				    "file ends at %" G_GUINT64_FORMAT
				    ", expected data up to %" G_GUINT64_FORMAT,
				    offset + done, offset + length);
			return FALSE;
		}
		func(buf, (gsize)n, user_data);
		done += (guint64)n;
	}
	return TRUE;
}

static void
as_sha256_block_cb(const guint8 *data, gsize len, gpointer user_data)
{
	as_sha256_update(user_data, data, len);
}

/**
 * as_sha256_update_fd_range:
 * @self: a #AsSha256
 * @fd: a readable file descriptor
 * @offset: first byte to hash
 * @length: number of bytes to hash
 * @cancellable: (nullable): a #GCancellable
 * @error: (nullable): optional return location for an error
 *
 * Adds @length bytes of @fd starting at @offset to the digest (see as_fd_read_range()).
 *
 * Returns: %TRUE on success; %AS_ERROR_INCOMPLETE if the file is shorter than the range
 **/
gboolean
as_sha256_update_fd_range(AsSha256 *self,
			  int fd,
			  guint64 offset,
			  guint64 length,
			  GCancellable *cancellable,
			  GError **error)
{
	g_return_val_if_fail(self != NULL, FALSE);
	g_return_val_if_fail(!self->finished, FALSE);
	return as_fd_read_range(fd, offset, length, as_sha256_block_cb, self, cancellable, error);
}

/**
 * as_sha256_finish_hex:
 * @self: a #AsSha256
 *
 * Completes the digest. Afterwards @self may only be freed.
 *
 * Returns: (transfer full): the digest as 64 lower-case hex digits
 **/
gchar *
as_sha256_finish_hex(AsSha256 *self)
{
	static const gchar hexdigits[] = "0123456789abcdef";
	guint8 digest[AS_SHA256_DIGEST_SIZE];
	gchar *hex;

	g_return_val_if_fail(self != NULL, NULL);
	g_return_val_if_fail(!self->finished, NULL);

	gnutls_hash_output(self->hd, digest);
	self->finished = TRUE;
	hex = g_new(gchar, AS_SHA256_HEX_LEN + 1);
	for (guint i = 0; i < AS_SHA256_DIGEST_SIZE; i++) {
		hex[i * 2] = hexdigits[digest[i] >> 4];
		hex[i * 2 + 1] = hexdigits[digest[i] & 0x0f];
	}
	hex[AS_SHA256_HEX_LEN] = '\0';
	return hex;
}

/**
 * as_sha256_free:
 * @self: (nullable): a #AsSha256
 *
 * Frees the context, finished or not.
 **/
void
as_sha256_free(AsSha256 *self)
{
	if (self == NULL)
		return;
	gnutls_hash_deinit(self->hd, NULL);
	g_free(self);
}

/**
 * as_sha256_data_hex:
 * @data: (array length=len): bytes
 * @len: number of bytes
 *
 * Returns: (transfer full): the SHA-256 of @data as 64 lower-case hex digits
 **/
gchar *
as_sha256_data_hex(const void *data, gsize len)
{
	g_autoptr(AsSha256) self = NULL;

	g_return_val_if_fail(data != NULL || len == 0, NULL);

	self = as_sha256_new();
	as_sha256_update(self, data, len);
	return as_sha256_finish_hex(self);
}

/**
 * as_sha256_hex_normalize:
 * @text: (nullable): a SHA-256 as people write it: "AB:CD:..." (as openssl prints it) or "abcd..."
 *
 * Returns: (transfer full) (nullable): 64 lower-case hex digits, or %NULL when @text is no
 *   SHA-256
 **/
gchar *
as_sha256_hex_normalize(const gchar *text)
{
	g_autoptr(GString) hex = NULL;

	if (text == NULL)
		return NULL;
	hex = g_string_new(NULL);
	for (const gchar *p = text; *p != '\0'; p++) {
		if (*p != ':')
			g_string_append_c(hex, g_ascii_tolower(*p));
	}
	if (!as_sha256_hex_is_valid(hex->str))
		return NULL;
	return g_string_free(g_steal_pointer(&hex), FALSE);
}

/**
 * as_sha256_hex_is_valid:
 * @hex: (nullable): a string
 *
 * Returns: %TRUE if @hex is exactly 64 hex digits, in either case
 **/
gboolean
as_sha256_hex_is_valid(const gchar *hex)
{
	if (hex == NULL)
		return FALSE;
	for (guint i = 0; i < AS_SHA256_HEX_LEN; i++) {
		if (!g_ascii_isxdigit(hex[i]))
			return FALSE;
	}
	return hex[AS_SHA256_HEX_LEN] == '\0';
}

/**
 * as_sha256_hex_equal:
 * @a: (nullable): a hex digest
 * @b: (nullable): a hex digest
 *
 * Compares two hex digests case-insensitively in time that does not depend on where they
 * differ, so it can check secrets derived from SHA-256.
 *
 * Returns: %TRUE if both are valid and equal; %FALSE if either is invalid
 **/
gboolean
as_sha256_hex_equal(const gchar *a, const gchar *b)
{
	guint8 diff = 0;

	if (!as_sha256_hex_is_valid(a) || !as_sha256_hex_is_valid(b))
		return FALSE;

	/* setting bit 0x20 lower-cases A-F and leaves 0-9 alone, without a data-dependent branch */
	for (guint i = 0; i < AS_SHA256_HEX_LEN; i++)
		diff |= (guint8)(((guint8)a[i] | 0x20) ^ ((guint8)b[i] | 0x20));
	return diff == 0;
}

/**
 * as_sha256_fd_range:
 * @fd: a readable file descriptor
 * @offset: first byte to hash
 * @length: number of bytes to hash
 * @cancellable: (nullable): a #GCancellable
 * @error: (nullable): optional return location for an error
 *
 * Hashes a range of a file by streaming it in %AS_SHA256_BLOCK_SIZE blocks with pread(), so the
 * file is never held in memory. This blocks: callers run it in a thread.
 *
 * Returns: (transfer full): the digest as 64 lower-case hex digits, or %NULL on error
 **/
gchar *
as_sha256_fd_range(
	int fd, guint64 offset, guint64 length, GCancellable *cancellable, GError **error)
{
	g_autoptr(AsSha256) self = NULL;

	g_return_val_if_fail(fd >= 0, NULL);
	g_return_val_if_fail(error == NULL || *error == NULL, NULL);

	self = as_sha256_new();
	if (!as_sha256_update_fd_range(self, fd, offset, length, cancellable, error))
		return NULL;
	return as_sha256_finish_hex(self);
}

/**
 * as_memeq_const_time:
 * @a: (array length=len): bytes
 * @b: (array length=len): bytes
 * @len: number of bytes
 *
 * Compares two buffers in time that depends only on @len, for secrets such as token MACs.
 *
 * Returns: %TRUE if the buffers are equal
 **/
gboolean
as_memeq_const_time(const void *a, const void *b, gsize len)
{
	const volatile guint8 *pa = a;
	const volatile guint8 *pb = b;
	guint8 diff = 0;

	g_return_val_if_fail(a != NULL || len == 0, FALSE);
	g_return_val_if_fail(b != NULL || len == 0, FALSE);

	/* volatile keeps the compiler from turning this into an early-exit memcmp() */
	for (gsize i = 0; i < len; i++)
		diff |= pa[i] ^ pb[i];
	return diff == 0;
}
