/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* length of a SHA-256 digest in bytes and as hex text */
#define AS_SHA256_DIGEST_SIZE 32
#define AS_SHA256_HEX_LEN     64

/* read size of as_sha256_fd_range() */
#define AS_SHA256_BLOCK_SIZE (1024 * 1024)

typedef struct _AsSha256 AsSha256;

AsSha256 *as_sha256_new(void);
void as_sha256_update(AsSha256 *self, const void *data, gsize len);
typedef void (*AsFdBlockFunc)(const guint8 *data, gsize len, gpointer user_data);
gboolean as_fd_read_range(int fd,
			  guint64 offset,
			  guint64 length,
			  AsFdBlockFunc func,
			  gpointer user_data,
			  GCancellable *cancellable,
			  GError **error);
gboolean as_sha256_update_fd_range(AsSha256 *self,
				   int fd,
				   guint64 offset,
				   guint64 length,
				   GCancellable *cancellable,
				   GError **error);
gchar *as_sha256_finish_hex(AsSha256 *self);
void as_sha256_free(AsSha256 *self);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(AsSha256, as_sha256_free)

gchar *as_sha256_data_hex(const void *data, gsize len);
gboolean as_sha256_hex_is_valid(const gchar *hex);
gchar *as_sha256_hex_normalize(const gchar *text);
gboolean as_sha256_hex_equal(const gchar *a, const gchar *b);
gchar *as_sha256_fd_range(
	int fd, guint64 offset, guint64 length, GCancellable *cancellable, GError **error);
gboolean as_memeq_const_time(const void *a, const void *b, gsize len);

G_END_DECLS
