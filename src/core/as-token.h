/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib-object.h>

G_BEGIN_DECLS

/* "as1_" + base64url without padding of AS_TOKEN_RANDOM_SIZE random bytes */
#define AS_TOKEN_PREFIX	     "as1_"
#define AS_TOKEN_RANDOM_SIZE 32
#define AS_TOKEN_LENGTH	     47

/* the id is the start of SHA-256(token) in lower-case hex, the stored hash all of it */
#define AS_TOKEN_ID_LENGTH   12
#define AS_TOKEN_HASH_LENGTH 64

/* a presented token longer than this is rejected before hashing */
#define AS_TOKEN_MAX_LENGTH 1024

/* 0.x tokens: "{uuid}.{created}.{expires}.{sig16}" */
#define AS_TOKEN_LEGACY_UUID_LENGTH 36
#define AS_TOKEN_LEGACY_SIG_LENGTH  16
#define AS_TOKEN_LEGACY_MAX_LENGTH  128
/* clock skew tolerated for the creation time of a legacy token */
#define AS_TOKEN_LEGACY_CLOCK_SKEW_S 300
/* id of the revoked entry that keeps a legacy token rejected */
#define AS_TOKEN_LEGACY_ID_PREFIX "legacy-"

/**
 * AsTokenInfo:
 * @id: AS_TOKEN_ID_LENGTH lower-case hex chars, or "legacy-<uuid>" for a revoked 0.x token
 * @hash: SHA-256 of the token string in lower-case hex; the token itself is never stored
 * @label: free text given at creation, or %NULL
 * @created: creation time, seconds since the epoch
 * @expires: expiry time, seconds since the epoch, or 0 for never
 * @revoked: %TRUE once revoked
 *
 * What the token store keeps about one token.
 */
typedef struct {
	gchar *id;
	gchar *hash;
	gchar *label;
	gint64 created;
	gint64 expires;
	gboolean revoked;
} AsTokenInfo;

#define AS_TYPE_TOKEN_INFO (as_token_info_get_type())

GType as_token_info_get_type(void);
AsTokenInfo *as_token_info_new(void);
AsTokenInfo *as_token_info_copy(const AsTokenInfo *info);
void as_token_info_free(AsTokenInfo *info);
gboolean as_token_info_is_expired(const AsTokenInfo *info, gint64 now_s);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(AsTokenInfo, as_token_info_free)

gchar *as_token_generate(void);
gchar *as_token_hash(const gchar *token);
gchar *as_token_id(const gchar *token);
gboolean as_token_id_is_valid(const gchar *id);
gboolean as_token_hash_is_valid(const gchar *hash);
gboolean as_token_secure_equal(const gchar *a, const gchar *b);
const gchar *as_token_from_headers(const gchar *authorization, const gchar *x_auth_token);

gboolean as_token_legacy_parse(const gchar *token,
			       gchar **uuid_out,
			       gint64 *created_out,
			       gint64 *expires_out,
			       GError **error);
gboolean as_token_legacy_verify(
	const gchar *token, const gchar *secret, gint64 now_s, gchar **uuid_out, GError **error);
gchar *as_token_legacy_generate(const gchar *secret, gint64 created, gint64 expires);
gboolean as_token_looks_legacy(const gchar *token);

G_END_DECLS
