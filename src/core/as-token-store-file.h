/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "as-token-store.h"

G_BEGIN_DECLS

/* the tokens file is small; anything larger is not ours */
#define AS_TOKEN_STORE_FILE_MAX_SIZE (4 * 1024 * 1024)

#define AS_TYPE_TOKEN_STORE_FILE (as_token_store_file_get_type())
G_DECLARE_FINAL_TYPE(AsTokenStoreFile, as_token_store_file, AS, TOKEN_STORE_FILE, AsTokenStore)

AsTokenStore *as_token_store_file_new(const gchar *path);
const gchar *as_token_store_file_get_path(AsTokenStoreFile *self);

G_END_DECLS
