/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* size of a blob from as_sha256_state_save(): header, nettle context, SHA-256 of both */
#define AS_SHA256_STATE_BLOB_SIZE 160

/* version written into new blobs */
#define AS_SHA256_STATE_BLOB_VERSION 1

typedef struct _AsSha256State AsSha256State;

AsSha256State *as_sha256_state_new(void);
AsSha256State *as_sha256_state_copy(const AsSha256State *self);
void as_sha256_state_update(AsSha256State *self, const void *data, gsize len);
void as_sha256_state_update_pair(AsSha256State *a, AsSha256State *b, const void *data, gsize len);
gboolean as_sha256_state_update_fd_range(AsSha256State *self,
					 int fd,
					 guint64 offset,
					 guint64 length,
					 GCancellable *cancellable,
					 GError **error);
gboolean as_sha256_state_update_pair_fd_range(AsSha256State *a,
					      AsSha256State *b,
					      int fd,
					      guint64 offset,
					      guint64 length,
					      GCancellable *cancellable,
					      GError **error);
guint64 as_sha256_state_get_length(const AsSha256State *self);
gchar *as_sha256_state_finish_hex(const AsSha256State *self);
GBytes *as_sha256_state_save(const AsSha256State *self);
AsSha256State *as_sha256_state_load(GBytes *blob, GError **error);
void as_sha256_state_free(AsSha256State *self);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(AsSha256State, as_sha256_state_free)

G_END_DECLS
