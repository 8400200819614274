/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib-object.h>

#include "as-token.h"

G_BEGIN_DECLS

#define AS_TYPE_TOKEN_STORE (as_token_store_get_type())
G_DECLARE_DERIVABLE_TYPE(AsTokenStore, as_token_store, AS, TOKEN_STORE, GObject)

/* names accepted by as_token_store_new_auto() */
#define AS_TOKEN_STORE_BACKEND_AUTO	      "auto"
#define AS_TOKEN_STORE_BACKEND_FILE	      "file"
#define AS_TOKEN_STORE_BACKEND_SECRET_SERVICE "secret-service"

/* file name of the file backend inside the config dir */
#define AS_TOKEN_STORE_FILE_NAME "tokens"

/* a label is free text for humans, bounded so the store stays small */
#define AS_TOKEN_STORE_LABEL_MAX 256

/**
 * AsTokenStoreClass:
 * @load: read every entry of the backend into @infos_out (element AsTokenInfo, transfer full)
 * @save: insert or update one entry
 * @get_backend_name: "file" or "secret-service"
 *
 * Backends only persist; the base class keeps the table in memory, serializes calls to the
 * backend and answers as_token_store_check() without I/O.
 */
struct _AsTokenStoreClass {
	GObjectClass parent_class;
	gboolean (*load)(AsTokenStore *self, GPtrArray *infos_out, GError **error);
	gboolean (*save)(AsTokenStore *self, const AsTokenInfo *info, GError **error);
	const gchar *(*get_backend_name)(AsTokenStore *self);
	gpointer padding[8];
};

AsTokenStore *
as_token_store_new_auto(const gchar *config_dir, const gchar *backend, GError **error);
const gchar *as_token_store_get_backend_name(AsTokenStore *self);
gboolean as_token_store_load(AsTokenStore *self, GError **error);
gchar *as_token_store_generate(AsTokenStore *self,
			       const gchar *label,
			       guint64 expires_in_s,
			       AsTokenInfo **info_out,
			       GError **error);
GPtrArray *as_token_store_list(AsTokenStore *self);
gboolean as_token_store_revoke(AsTokenStore *self,
			       const gchar *prefix_or_token,
			       AsTokenInfo **info_out,
			       GError **error);
void as_token_store_set_legacy_secret(AsTokenStore *self, const gchar *secret);
void as_token_store_add_static_token(AsTokenStore *self, const gchar *token);
void as_token_store_clear_static_tokens(AsTokenStore *self);
gboolean as_token_store_check(AsTokenStore *self, const gchar *token, gint64 now_s, GError **error);
guint as_token_store_get_count(AsTokenStore *self);

G_END_DECLS
