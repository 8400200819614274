/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "as-token-store.h"

G_BEGIN_DECLS

/* libsecret schema of the stored entries */
#define AS_TOKEN_STORE_SECRET_SCHEMA "org.aerosync.Token"

/* default bound on one Secret Service call, so an unanswered unlock prompt cannot hang us */
#define AS_TOKEN_STORE_SECRET_TIMEOUT_MS 25000

#define AS_TYPE_TOKEN_STORE_SECRET (as_token_store_secret_get_type())
G_DECLARE_FINAL_TYPE(
	AsTokenStoreSecret, as_token_store_secret, AS, TOKEN_STORE_SECRET, AsTokenStore)

AsTokenStore *as_token_store_secret_new(const gchar *store_key, GError **error);
void as_token_store_secret_set_timeout(AsTokenStoreSecret *self, guint timeout_ms);
gboolean as_token_store_secret_is_available(guint timeout_ms, GError **error);

G_END_DECLS
