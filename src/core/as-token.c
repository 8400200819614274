/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "AsToken"

#include "config.h"

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <string.h>

#include "as-error.h"
#include "as-token.h"

#define AS_TOKEN_SHA256_SIZE 32
/* longest decimal representation of a non-negative gint64 */
#define AS_TOKEN_LEGACY_TIME_MAX_DIGITS 19
#define AS_TOKEN_LEGACY_FIELDS		4
#define AS_TOKEN_WHITESPACE		" \t\r\n"
#define AS_TOKEN_SCHEME_BEARER		"Bearer"
#define AS_TOKEN_SCHEME_BASIC		"Basic"

G_DEFINE_BOXED_TYPE(AsTokenInfo, as_token_info, as_token_info_copy, as_token_info_free)

/**
 * as_token_info_new:
 *
 * Returns: (transfer full): a zeroed #AsTokenInfo
 */
AsTokenInfo *
as_token_info_new(void)
{
	return g_new0(AsTokenInfo, 1);
}

/**
 * as_token_info_copy:
 * @info: an #AsTokenInfo
 *
 * Returns: (transfer full): a deep copy of @info
 */
AsTokenInfo *
as_token_info_copy(const AsTokenInfo *info)
{
	AsTokenInfo *copy;

	g_return_val_if_fail(info != NULL, NULL);

	copy = as_token_info_new();
	copy->id = g_strdup(info->id);
	copy->hash = g_strdup(info->hash);
	copy->label = g_strdup(info->label);
	copy->created = info->created;
	copy->expires = info->expires;
	copy->revoked = info->revoked;
	return copy;
}

/**
 * as_token_info_free:
 * @info: (nullable): an #AsTokenInfo
 */
void
as_token_info_free(AsTokenInfo *info)
{
	if (info == NULL)
		return;
	g_free(info->id);
	g_free(info->hash);
	g_free(info->label);
	g_free(info);
}

/**
 * as_token_info_is_expired:
 * @info: an #AsTokenInfo
 * @now_s: the current time in seconds since the epoch
 *
 * Returns: %TRUE if @info has an expiry time and it is not after @now_s
 */
gboolean
as_token_info_is_expired(const AsTokenInfo *info, gint64 now_s)
{
	g_return_val_if_fail(info != NULL, TRUE);
	return info->expires != 0 && info->expires <= now_s;
}

/* strings holding a secret are zeroed before they go back to the allocator */
static void
as_token_wipe_free(gchar *str)
{
	if (str == NULL)
		return;
	explicit_bzero(str, strlen(str));
	g_free(str);
}

/* timing does not depend on where the buffers differ */
static gboolean
as_token_memeq(const guint8 *a, const guint8 *b, gsize len)
{
	guint8 acc = 0;

	for (gsize i = 0; i < len; i++)
		acc |= a[i] ^ b[i];
	return acc == 0;
}

/**
 * as_token_secure_equal:
 * @a: (nullable): a string
 * @b: (nullable): a string
 *
 * Compares two secrets (or hashes of secrets) in time that depends only on their length.
 *
 * Returns: %TRUE if both are non-%NULL and equal
 */
gboolean
as_token_secure_equal(const gchar *a, const gchar *b)
{
	gsize len;

	if (a == NULL || b == NULL)
		return FALSE;
	len = strlen(a);
	if (len != strlen(b))
		return FALSE;
	return as_token_memeq((const guint8 *)a, (const guint8 *)b, len);
}

/* NULL if GnuTLS cannot hash: callers must then reject, never fall back to a constant */
static gchar *
as_token_sha256_hex(const gchar *data, gsize len)
{
	guint8 digest[AS_TOKEN_SHA256_SIZE] = {0};
	GString *hex;

	if (gnutls_hash_fast(GNUTLS_DIG_SHA256, data, len, digest) < 0) {
		g_warning("SHA-256 is not available from GnuTLS");
		return NULL;
	}
	hex = g_string_sized_new(AS_TOKEN_HASH_LENGTH);
	for (gsize i = 0; i < sizeof(digest); i++)
		g_string_append_printf(hex, "%02x", digest[i]);
	return g_string_free(hex, FALSE);
}

/**
 * as_token_generate:
 *
 * Creates a new random token, "as1_" followed by the base64url encoding (no padding) of 32
 * bytes from the GnuTLS key generator.
 *
 * Returns: (transfer full) (nullable): the token, or %NULL if the system RNG failed
 */
gchar *
as_token_generate(void)
{
	guint8 buf[AS_TOKEN_RANDOM_SIZE];
	gchar *b64;
	gchar *token;
	gsize len;

	if (gnutls_rnd(GNUTLS_RND_KEY, buf, sizeof(buf)) != 0) {
		g_warning("the GnuTLS random generator failed");
		return NULL;
	}
	b64 = g_base64_encode(buf, sizeof(buf));
	explicit_bzero(buf, sizeof(buf));

	/* base64 to base64url, without padding */
	len = strlen(b64);
	while (len > 0 && b64[len - 1] == '=')
		b64[--len] = '\0';
	for (gsize i = 0; i < len; i++) {
		if (b64[i] == '+')
			b64[i] = '-';
		else if (b64[i] == '/')
			b64[i] = '_';
	}
	token = g_strconcat(AS_TOKEN_PREFIX, b64, NULL);
	as_token_wipe_free(b64);
	return token;
}

/**
 * as_token_hash:
 * @token: a token
 *
 * Returns: (transfer full) (nullable): SHA-256 of @token in lower-case hex, what the store
 * keeps, or %NULL if GnuTLS cannot hash
 */
gchar *
as_token_hash(const gchar *token)
{
	g_return_val_if_fail(token != NULL, NULL);
	return as_token_sha256_hex(token, strlen(token));
}

/**
 * as_token_id:
 * @token: a token
 *
 * Returns: (transfer full) (nullable): the public id of @token, the first 12 hex chars of its
 * hash, or %NULL if GnuTLS cannot hash
 */
gchar *
as_token_id(const gchar *token)
{
	g_autofree gchar *hash = NULL;

	g_return_val_if_fail(token != NULL, NULL);
	hash = as_token_hash(token);
	if (hash == NULL)
		return NULL;
	return g_strndup(hash, AS_TOKEN_ID_LENGTH);
}

static gboolean
as_token_is_lower_hex(const gchar *str, gsize len)
{
	for (gsize i = 0; i < len; i++) {
		if (!g_ascii_isxdigit(str[i]) || g_ascii_isupper(str[i]))
			return FALSE;
	}
	return TRUE;
}

static gboolean
as_token_legacy_uuid_is_valid(const gchar *uuid)
{
	if (strlen(uuid) != AS_TOKEN_LEGACY_UUID_LENGTH)
		return FALSE;
	for (gsize i = 0; i < AS_TOKEN_LEGACY_UUID_LENGTH; i++) {
		gboolean dash_position = i == 8 || i == 13 || i == 18 || i == 23;
		if (dash_position ? uuid[i] != '-' : !g_ascii_isxdigit(uuid[i]))
			return FALSE;
	}
	return TRUE;
}

/**
 * as_token_id_is_valid:
 * @id: (nullable): a token id
 *
 * Returns: %TRUE for 12 lower-case hex chars or "legacy-" and a lower-case uuid
 */
gboolean
as_token_id_is_valid(const gchar *id)
{
	const gchar *uuid;

	if (id == NULL)
		return FALSE;
	if (g_str_has_prefix(id, AS_TOKEN_LEGACY_ID_PREFIX)) {
		uuid = id + strlen(AS_TOKEN_LEGACY_ID_PREFIX);
		if (!as_token_legacy_uuid_is_valid(uuid))
			return FALSE;
		for (const gchar *p = uuid; *p != '\0'; p++) {
			if (g_ascii_isupper(*p))
				return FALSE;
		}
		return TRUE;
	}
	return strlen(id) == AS_TOKEN_ID_LENGTH && as_token_is_lower_hex(id, AS_TOKEN_ID_LENGTH);
}

/**
 * as_token_hash_is_valid:
 * @hash: (nullable): a stored hash
 *
 * Returns: %TRUE for 64 lower-case hex chars
 */
gboolean
as_token_hash_is_valid(const gchar *hash)
{
	if (hash == NULL)
		return FALSE;
	return strlen(hash) == AS_TOKEN_HASH_LENGTH &&
	       as_token_is_lower_hex(hash, AS_TOKEN_HASH_LENGTH);
}

static const gchar *
as_token_skip_space(const gchar *str)
{
	while (*str == ' ' || *str == '\t')
		str++;
	return str;
}

/* a credential is one word: anything else is not something we can hand back in place */
static const gchar *
as_token_credential(const gchar *str)
{
	str = as_token_skip_space(str);
	if (*str == '\0' || strpbrk(str, AS_TOKEN_WHITESPACE) != NULL)
		return NULL;
	return str;
}

static const gchar *
as_token_from_authorization(const gchar *value)
{
	const gchar *start = as_token_skip_space(value);
	const gchar *space = strpbrk(start, AS_TOKEN_WHITESPACE);
	gsize scheme_len;

	if (*start == '\0')
		return NULL;

	/* 0.x compatibility: a value without a scheme is the token itself */
	if (space == NULL) {
		if (g_ascii_strcasecmp(start, AS_TOKEN_SCHEME_BEARER) == 0 ||
		    g_ascii_strcasecmp(start, AS_TOKEN_SCHEME_BASIC) == 0)
			return NULL;
		return start;
	}

	/* "Basic ..." and any other scheme carry no AeroSync token */
	scheme_len = (gsize)(space - start);
	if (scheme_len != strlen(AS_TOKEN_SCHEME_BEARER) ||
	    g_ascii_strncasecmp(start, AS_TOKEN_SCHEME_BEARER, scheme_len) != 0)
		return NULL;
	return as_token_credential(space);
}

/**
 * as_token_from_headers:
 * @authorization: (nullable): the value of the Authorization header
 * @x_auth_token: (nullable): the value of the X-Auth-Token header
 *
 * Picks the token a client presented: "Bearer <token>" (scheme case-insensitive, extra spaces
 * allowed), a bare Authorization value as 0.x sent it, or else X-Auth-Token. Header values are
 * expected with trailing white space removed, as libsoup delivers them.
 *
 * Returns: (transfer none) (nullable): a pointer into one of the arguments, or %NULL
 */
const gchar *
as_token_from_headers(const gchar *authorization, const gchar *x_auth_token)
{
	const gchar *token = NULL;

	if (authorization != NULL)
		token = as_token_from_authorization(authorization);
	if (token == NULL && x_auth_token != NULL)
		token = as_token_credential(x_auth_token);
	return token;
}

static gboolean
as_token_legacy_parse_time(const gchar *str, gint64 *value_out)
{
	gsize len = strlen(str);
	guint64 value = 0;

	/* strict decimal: no sign, no space, no leading zero */
	if (len == 0 || len > AS_TOKEN_LEGACY_TIME_MAX_DIGITS)
		return FALSE;
	if (len > 1 && str[0] == '0')
		return FALSE;
	for (gsize i = 0; i < len; i++) {
		if (!g_ascii_isdigit(str[i]))
			return FALSE;
	}
	if (!g_ascii_string_to_unsigned(str, 10, 0, G_MAXINT64, &value, NULL))
		return FALSE;
	*value_out = (gint64)value;
	return TRUE;
}

static gboolean
as_token_legacy_split(const gchar *token,
		      gchar **uuid_out,
		      gint64 *created_out,
		      gint64 *expires_out,
		      gchar **sig_out,
		      GError **error)
{
	g_auto(GStrv) parts = NULL;
	gint64 created = 0;
	gint64 expires = 0;

	if (token == NULL || token[0] == '\0') {
		g_set_error_literal(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT, "empty token");
		return FALSE;
	}
	if (strlen(token) > AS_TOKEN_LEGACY_MAX_LENGTH) {
		g_set_error_literal(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
				    "malformed legacy token: too long");
		return FALSE;
	}
	parts = g_strsplit(token, ".", -1);
	if (g_strv_length(parts) != AS_TOKEN_LEGACY_FIELDS) {
		g_set_error_literal(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
				    "malformed legacy token: expected 4 fields");
		return FALSE;
	}
	if (!as_token_legacy_uuid_is_valid(parts[0])) {
		g_set_error_literal(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
				    "malformed legacy token: invalid uuid");
		return FALSE;
	}
	if (!as_token_legacy_parse_time(parts[1], &created)) {
		g_set_error_literal(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
				    "malformed legacy token: invalid creation time");
		return FALSE;
	}
	if (!as_token_legacy_parse_time(parts[2], &expires)) {
		g_set_error_literal(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
				    "malformed legacy token: invalid expiry time");
		return FALSE;
	}
	if (strlen(parts[3]) != AS_TOKEN_LEGACY_SIG_LENGTH ||
	    strspn(parts[3], "0123456789abcdefABCDEF") != AS_TOKEN_LEGACY_SIG_LENGTH) {
		g_set_error_literal(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
				    "malformed legacy token: invalid signature field");
		return FALSE;
	}
	if (uuid_out != NULL)
		*uuid_out = g_strdup(parts[0]);
	if (created_out != NULL)
		*created_out = created;
	if (expires_out != NULL)
		*expires_out = expires;
	if (sig_out != NULL)
		*sig_out = g_ascii_strdown(parts[3], -1);
	return TRUE;
}

/**
 * as_token_legacy_parse:
 * @token: a 0.x token
 * @uuid_out: (out) (optional): the uuid in lower case
 * @created_out: (out) (optional): the creation time the token claims
 * @expires_out: (out) (optional): the expiry time the token claims
 * @error: (nullable): optional return location for an error
 *
 * Parses "{uuid}.{created}.{expires}.{sig16}" strictly, without checking the signature.
 *
 * Returns: %TRUE if @token has the 0.x layout
 */
gboolean
as_token_legacy_parse(const gchar *token,
		      gchar **uuid_out,
		      gint64 *created_out,
		      gint64 *expires_out,
		      GError **error)
{
	g_autofree gchar *uuid = NULL;

	if (!as_token_legacy_split(token, &uuid, created_out, expires_out, NULL, error))
		return FALSE;
	if (uuid_out != NULL)
		*uuid_out = g_ascii_strdown(uuid, -1);
	return TRUE;
}

/* 0.x: first 16 hex chars of SHA-256("{uuid}.{created}.{expires}.{secret}"), not an HMAC */
static gchar *
as_token_legacy_signature(const gchar *uuid, gint64 created, gint64 expires, const gchar *secret)
{
	gchar *msg = g_strdup_printf("%s.%" G_GINT64_FORMAT ".%" G_GINT64_FORMAT ".%s", uuid,
				     created, expires, secret);
	g_autofree gchar *hex = as_token_sha256_hex(msg, strlen(msg));

	as_token_wipe_free(msg);
	if (hex == NULL)
		return NULL;
	return g_strndup(hex, AS_TOKEN_LEGACY_SIG_LENGTH);
}

/**
 * as_token_legacy_verify:
 * @token: a presented token
 * @secret: the 0.x secret key
 * @now_s: the current time in seconds since the epoch
 * @uuid_out: (out) (optional): the uuid of the token in lower case
 * @error: (nullable): optional return location for an error
 *
 * Checks a 0.x token: layout (%AS_ERROR_INVALID_ARGUMENT), signature, then a creation time no
 * more than 5 minutes ahead and an expiry after @now_s (all %AS_ERROR_PERMISSION_DENIED; an
 * expired token reports "token expired").
 *
 * Returns: %TRUE if @token is valid now
 */
gboolean
as_token_legacy_verify(
	const gchar *token, const gchar *secret, gint64 now_s, gchar **uuid_out, GError **error)
{
	g_autofree gchar *uuid = NULL;
	g_autofree gchar *sig = NULL;
	g_autofree gchar *expected = NULL;
	gint64 created = 0;
	gint64 expires = 0;

	if (secret == NULL || secret[0] == '\0') {
		g_set_error_literal(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
				    "no legacy secret configured");
		return FALSE;
	}
	if (!as_token_legacy_split(token, &uuid, &created, &expires, &sig, error))
		return FALSE;
	expected = as_token_legacy_signature(uuid, created, expires, secret);
	if (!as_token_secure_equal(expected, sig)) {
		g_set_error_literal(error, AS_ERROR, AS_ERROR_PERMISSION_DENIED,
				    "invalid token signature");
		return FALSE;
	}
	if (created > now_s + AS_TOKEN_LEGACY_CLOCK_SKEW_S) {
		g_set_error_literal(error, AS_ERROR, AS_ERROR_PERMISSION_DENIED,
				    "token created in the future");
		return FALSE;
	}
	if (expires <= now_s) {
		g_set_error_literal(error, AS_ERROR, AS_ERROR_PERMISSION_DENIED, "token expired");
		return FALSE;
	}
	if (uuid_out != NULL)
		*uuid_out = g_ascii_strdown(uuid, -1);
	return TRUE;
}

/**
 * as_token_legacy_generate:
 * @secret: the 0.x secret key
 * @created: creation time, seconds since the epoch
 * @expires: expiry time, seconds since the epoch
 *
 * Mints a token in the 0.x format with a random v4 uuid, for tests and old senders.
 *
 * Returns: (transfer full) (nullable): the token, or %NULL if GnuTLS cannot hash
 */
gchar *
as_token_legacy_generate(const gchar *secret, gint64 created, gint64 expires)
{
	g_autofree gchar *uuid = NULL;
	g_autofree gchar *sig = NULL;

	g_return_val_if_fail(secret != NULL && secret[0] != '\0', NULL);
	g_return_val_if_fail(created >= 0 && expires >= 0, NULL);

	uuid = g_uuid_string_random();
	sig = as_token_legacy_signature(uuid, created, expires, secret);
	if (sig == NULL)
		return NULL;
	return g_strdup_printf("%s.%" G_GINT64_FORMAT ".%" G_GINT64_FORMAT ".%s", uuid, created,
			       expires, sig);
}

/**
 * as_token_looks_legacy:
 * @token: (nullable): a presented token
 *
 * Returns: %TRUE if @token has the 0.x layout (the signature is not checked)
 */
gboolean
as_token_looks_legacy(const gchar *token)
{
	if (token == NULL)
		return FALSE;
	return as_token_legacy_split(token, NULL, NULL, NULL, NULL, NULL);
}
