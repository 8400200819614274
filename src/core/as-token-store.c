/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "AsTokenStore"

#include "config.h"

#include <string.h>

#include "as-error.h"
#include "as-token-store-file.h"
#include "as-token-store-secret.h"
#include "as-token-store.h"

/* shortest id prefix accepted by as_token_store_revoke() */
#define AS_TOKEN_STORE_PREFIX_MIN 4
/* ids are 48 bits, so a collision is already unlikely; retrying bounds the loop anyway */
#define AS_TOKEN_STORE_GENERATE_ATTEMPTS 8
/* how long "auto" waits for the Secret Service before using the file */
#define AS_TOKEN_STORE_PROBE_TIMEOUT_MS 3000
#define AS_TOKEN_STORE_LEGACY_LABEL	"legacy token"

typedef struct {
	GMutex mutex;		  /* protects infos, static_hashes and legacy_secret */
	GMutex write_mutex;	  /* serializes backend calls so backends need no locking */
	GHashTable *infos;	  /* (element-type utf8 AsTokenInfo): id -> info, owned */
	GPtrArray *static_hashes; /* (element-type utf8): SHA-256 hex of static tokens */
	gchar *legacy_secret;	  /* owned, wiped on free, nullable */
} AsTokenStorePrivate;

enum { SIGNAL_CHANGED, SIGNAL_LAST };

static guint signals[SIGNAL_LAST] = {0};

G_DEFINE_TYPE_WITH_PRIVATE(AsTokenStore, as_token_store, G_TYPE_OBJECT)

#define GET_PRIVATE(o) (as_token_store_get_instance_private(o))

static void
as_token_store_wipe_free(gchar *str)
{
	if (str == NULL)
		return;
	explicit_bzero(str, strlen(str));
	g_free(str);
}

static GHashTable *
as_token_store_table_new(void)
{
	return g_hash_table_new_full(g_str_hash, g_str_equal, NULL,
				     (GDestroyNotify)as_token_info_free);
}

/* the key is the id owned by the info itself */
static void
as_token_store_table_insert(GHashTable *table, AsTokenInfo *info)
{
	g_hash_table_replace(table, info->id, info);
}

/**
 * as_token_store_get_backend_name:
 * @self: an #AsTokenStore
 *
 * Returns: "file" or "secret-service"
 */
const gchar *
as_token_store_get_backend_name(AsTokenStore *self)
{
	AsTokenStoreClass *klass;

	g_return_val_if_fail(AS_IS_TOKEN_STORE(self), NULL);
	klass = AS_TOKEN_STORE_GET_CLASS(self);
	if (klass->get_backend_name == NULL)
		return NULL;
	return klass->get_backend_name(self);
}

static gboolean
as_token_store_save(AsTokenStore *self, const AsTokenInfo *info, GError **error)
{
	AsTokenStoreClass *klass = AS_TOKEN_STORE_GET_CLASS(self);

	if (klass->save == NULL) {
		g_set_error_literal(error, AS_ERROR, AS_ERROR_NOT_SUPPORTED,
				    "the token backend cannot save");
		return FALSE;
	}
	if (!klass->save(self, info, error)) {
		g_prefix_error(error, "failed to save token %s to the %s backend: ", info->id,
			       as_token_store_get_backend_name(self));
		return FALSE;
	}
	return TRUE;
}

/**
 * as_token_store_load:
 * @self: an #AsTokenStore
 * @error: (nullable): optional return location for an error
 *
 * Reads every entry of the backend and replaces the table in memory. Entries that are not
 * valid are skipped with a warning, so they are rejected rather than trusted.
 *
 * Returns: %TRUE on success
 */
gboolean
as_token_store_load(AsTokenStore *self, GError **error)
{
	AsTokenStorePrivate *priv;
	AsTokenStoreClass *klass;
	g_autoptr(GPtrArray) infos =
		g_ptr_array_new_with_free_func((GDestroyNotify)as_token_info_free);
	g_autoptr(GHashTable) table = as_token_store_table_new();
	g_autoptr(GMutexLocker) write_locker = NULL;

	g_return_val_if_fail(AS_IS_TOKEN_STORE(self), FALSE);
	g_return_val_if_fail(error == NULL || *error == NULL, FALSE);

	priv = GET_PRIVATE(self);
	klass = AS_TOKEN_STORE_GET_CLASS(self);
	if (klass->load == NULL) {
		g_set_error_literal(error, AS_ERROR, AS_ERROR_NOT_SUPPORTED,
				    "the token backend cannot load");
		return FALSE;
	}

	write_locker = g_mutex_locker_new(&priv->write_mutex);
	if (!klass->load(self, infos, error)) {
		g_prefix_error(error, "failed to load tokens from the %s backend: ",
			       as_token_store_get_backend_name(self));
		return FALSE;
	}
	for (guint i = 0; i < infos->len; i++) {
		AsTokenInfo *info = g_ptr_array_index(infos, i);
		AsTokenInfo *existing;

		if (!as_token_id_is_valid(info->id) || !as_token_hash_is_valid(info->hash)) {
			g_warning("ignoring a token entry with an invalid id or hash");
			continue;
		}

		/* a duplicate left by an interrupted update: a revocation must win */
		existing = g_hash_table_lookup(table, info->id);
		if (existing != NULL && existing->revoked && !info->revoked)
			continue;
		as_token_store_table_insert(table, as_token_info_copy(info));
	}

	g_mutex_lock(&priv->mutex);
	g_hash_table_unref(priv->infos);
	priv->infos = g_steal_pointer(&table);
	g_mutex_unlock(&priv->mutex);
	g_clear_pointer(&write_locker, g_mutex_locker_free);

	g_debug("loaded %u token entries from the %s backend", as_token_store_get_count(self),
		as_token_store_get_backend_name(self));
	g_signal_emit(self, signals[SIGNAL_CHANGED], 0);
	return TRUE;
}

static gboolean
as_token_store_label_is_valid(const gchar *label, GError **error)
{
	if (label == NULL)
		return TRUE;
	if (!g_utf8_validate(label, -1, NULL)) {
		g_set_error_literal(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
				    "token label is not valid UTF-8");
		return FALSE;
	}
	if (strlen(label) > AS_TOKEN_STORE_LABEL_MAX) {
		g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
			    "token label is longer than %u bytes", (guint)AS_TOKEN_STORE_LABEL_MAX);
		return FALSE;
	}
	return TRUE;
}

/**
 * as_token_store_generate:
 * @self: an #AsTokenStore
 * @label: (nullable): free text to recognize the token by
 * @expires_in_s: lifetime in seconds, or 0 for a token that never expires
 * @info_out: (out) (optional) (transfer full): what was stored
 * @error: (nullable): optional return location for an error
 *
 * Creates a token and saves its hash to the backend. The token is returned once and kept
 * nowhere.
 *
 * Returns: (transfer full): the token, or %NULL on error
 */
gchar *
as_token_store_generate(AsTokenStore *self,
			const gchar *label,
			guint64 expires_in_s,
			AsTokenInfo **info_out,
			GError **error)
{
	AsTokenStorePrivate *priv;
	g_autoptr(AsTokenInfo) info = NULL;
	g_autoptr(GMutexLocker) write_locker = NULL;
	gchar *token = NULL;
	gint64 now_us = g_get_real_time();
	gint64 now_s = now_us / G_USEC_PER_SEC;

	g_return_val_if_fail(AS_IS_TOKEN_STORE(self), NULL);
	g_return_val_if_fail(error == NULL || *error == NULL, NULL);

	priv = GET_PRIVATE(self);
	if (!as_token_store_label_is_valid(label, error))
		return NULL;
	if (expires_in_s > (guint64)(G_MAXINT64 - now_s - 1)) {
		g_set_error_literal(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
				    "token lifetime is too long");
		return NULL;
	}

	write_locker = g_mutex_locker_new(&priv->write_mutex);
	for (guint i = 0; i < AS_TOKEN_STORE_GENERATE_ATTEMPTS && info == NULL; i++) {
		g_autofree gchar *id = NULL;
		gboolean taken;

		token = as_token_generate();
		if (token == NULL) {
			g_set_error_literal(error, AS_ERROR, AS_ERROR_FAILED,
					    "failed to get random bytes for a token");
			return NULL;
		}
		id = as_token_id(token);
		if (id == NULL) {
			as_token_store_wipe_free(token);
			g_set_error_literal(error, AS_ERROR, AS_ERROR_FAILED,
					    "failed to hash a token");
			return NULL;
		}
		g_mutex_lock(&priv->mutex);
		taken = g_hash_table_contains(priv->infos, id);
		g_mutex_unlock(&priv->mutex);
		if (taken) {
			g_clear_pointer(&token, as_token_store_wipe_free);
			continue;
		}
		info = as_token_info_new();
		info->id = g_steal_pointer(&id);
		info->hash = as_token_hash(token);
		info->label = label != NULL && label[0] != '\0' ? g_strdup(label) : NULL;
		info->created = now_s;
		/* whole seconds rounded up: a token lives at least what was asked, even when it
		 * is made at the end of a second */
		info->expires = expires_in_s > 0 ? now_s + (gint64)expires_in_s +
							   (now_us % G_USEC_PER_SEC != 0 ? 1 : 0)
						 : 0;
	}
	if (info == NULL) {
		g_set_error_literal(error, AS_ERROR, AS_ERROR_FAILED,
				    "failed to find an unused token id");
		return NULL;
	}
	if (!as_token_store_save(self, info, error)) {
		as_token_store_wipe_free(token);
		return NULL;
	}

	g_mutex_lock(&priv->mutex);
	as_token_store_table_insert(priv->infos, as_token_info_copy(info));
	g_mutex_unlock(&priv->mutex);
	g_clear_pointer(&write_locker, g_mutex_locker_free);

	g_info("generated token %s", info->id);
	g_signal_emit(self, signals[SIGNAL_CHANGED], 0);
	if (info_out != NULL)
		*info_out = g_steal_pointer(&info);
	return token;
}

static gint
as_token_store_sort_cb(gconstpointer a, gconstpointer b)
{
	const AsTokenInfo *info_a = *((const AsTokenInfo **)a);
	const AsTokenInfo *info_b = *((const AsTokenInfo **)b);

	if (info_a->created != info_b->created)
		return info_a->created < info_b->created ? -1 : 1;
	return g_strcmp0(info_a->id, info_b->id);
}

/**
 * as_token_store_list:
 * @self: an #AsTokenStore
 *
 * Returns: (transfer container) (element-type AsTokenInfo): copies of every entry, revoked and
 * expired ones included, oldest first
 */
GPtrArray *
as_token_store_list(AsTokenStore *self)
{
	AsTokenStorePrivate *priv;
	GPtrArray *infos = g_ptr_array_new_with_free_func((GDestroyNotify)as_token_info_free);
	GHashTableIter iter;
	gpointer value;

	g_return_val_if_fail(AS_IS_TOKEN_STORE(self), infos);

	priv = GET_PRIVATE(self);
	g_mutex_lock(&priv->mutex);
	g_hash_table_iter_init(&iter, priv->infos);
	while (g_hash_table_iter_next(&iter, NULL, &value))
		g_ptr_array_add(infos, as_token_info_copy(value));
	g_mutex_unlock(&priv->mutex);
	g_ptr_array_sort(infos, as_token_store_sort_cb);
	return infos;
}

/* must be called with priv->mutex held */
static AsTokenInfo *
as_token_store_find_locked(AsTokenStore *self, const gchar *prefix_or_token, GError **error)
{
	AsTokenStorePrivate *priv = GET_PRIVATE(self);
	AsTokenInfo *found = NULL;
	GHashTableIter iter;
	gpointer value;
	guint matches = 0;
	g_autofree gchar *prefix = NULL;
	gsize prefix_len;

	/* a whole token: match by id, then prove it is the same token */
	if (g_str_has_prefix(prefix_or_token, AS_TOKEN_PREFIX)) {
		g_autofree gchar *id = as_token_id(prefix_or_token);
		g_autofree gchar *hash = as_token_hash(prefix_or_token);
		AsTokenInfo *info = NULL;

		if (id != NULL)
			info = g_hash_table_lookup(priv->infos, id);
		if (info == NULL || !as_token_secure_equal(info->hash, hash)) {
			g_set_error_literal(error, AS_ERROR, AS_ERROR_NOT_FOUND, "unknown token");
			return NULL;
		}
		return info;
	}

	/* a whole id, including "legacy-<uuid>" */
	found = g_hash_table_lookup(priv->infos, prefix_or_token);
	if (found != NULL)
		return found;

	prefix = g_ascii_strdown(prefix_or_token, -1);
	prefix_len = strlen(prefix);
	if (prefix_len < AS_TOKEN_STORE_PREFIX_MIN || prefix_len > AS_TOKEN_ID_LENGTH ||
	    strspn(prefix, "0123456789abcdef") != prefix_len) {
		g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
			    "expected a token or a token id prefix of %u to %u hex characters",
			    (guint)AS_TOKEN_STORE_PREFIX_MIN, (guint)AS_TOKEN_ID_LENGTH);
		return NULL;
	}
	g_hash_table_iter_init(&iter, priv->infos);
	while (g_hash_table_iter_next(&iter, NULL, &value)) {
		AsTokenInfo *info = value;
		if (g_str_has_prefix(info->id, prefix)) {
			found = info;
			matches++;
		}
	}
	if (matches == 0) {
		g_set_error(error, AS_ERROR, AS_ERROR_NOT_FOUND, "no token id starts with %s",
			    prefix);
		return NULL;
	}
	if (matches > 1) {
		g_set_error(error, AS_ERROR, AS_ERROR_AMBIGUOUS, "%u token ids start with %s",
			    matches, prefix);
		return NULL;
	}
	return found;
}

/* a revoked 0.x token is remembered by its uuid, the only stable part it has */
static AsTokenInfo *
as_token_store_legacy_revocation(AsTokenStore *self, const gchar *token, GError **error)
{
	AsTokenStorePrivate *priv = GET_PRIVATE(self);
	AsTokenInfo *existing;
	g_autoptr(AsTokenInfo) info = NULL;
	g_autofree gchar *uuid = NULL;
	g_autofree gchar *id = NULL;
	gint64 created = 0;
	gint64 expires = 0;

	if (!as_token_legacy_parse(token, &uuid, &created, &expires, error))
		return NULL;
	id = g_strconcat(AS_TOKEN_LEGACY_ID_PREFIX, uuid, NULL);
	g_mutex_lock(&priv->mutex);
	existing = g_hash_table_lookup(priv->infos, id);
	if (existing != NULL)
		info = as_token_info_copy(existing);
	g_mutex_unlock(&priv->mutex);
	if (info != NULL)
		return g_steal_pointer(&info);

	info = as_token_info_new();
	info->id = g_steal_pointer(&id);
	info->hash = as_token_hash(token);
	if (info->hash == NULL) {
		g_set_error_literal(error, AS_ERROR, AS_ERROR_FAILED, "failed to hash the token");
		return NULL;
	}
	info->label = g_strdup(AS_TOKEN_STORE_LEGACY_LABEL);
	info->created = created;
	info->expires = expires;
	return g_steal_pointer(&info);
}

/**
 * as_token_store_revoke:
 * @self: an #AsTokenStore
 * @prefix_or_token: a whole token (new or 0.x), a token id, or an id prefix of at least 4 hex
 * characters
 * @info_out: (out) (optional) (transfer full): the revoked entry
 * @error: (nullable): optional return location for an error
 *
 * Marks one token as revoked, in the backend and at once for as_token_store_check(). A 0.x
 * token is remembered as "legacy-<uuid>" so it stays rejected.
 *
 * Returns: %TRUE on success; %AS_ERROR_NOT_FOUND or %AS_ERROR_AMBIGUOUS unless exactly one
 * entry matches
 */
gboolean
as_token_store_revoke(AsTokenStore *self,
		      const gchar *prefix_or_token,
		      AsTokenInfo **info_out,
		      GError **error)
{
	AsTokenStorePrivate *priv;
	g_autoptr(AsTokenInfo) info = NULL;
	g_autoptr(GMutexLocker) write_locker = NULL;

	g_return_val_if_fail(AS_IS_TOKEN_STORE(self), FALSE);
	g_return_val_if_fail(prefix_or_token != NULL, FALSE);
	g_return_val_if_fail(error == NULL || *error == NULL, FALSE);

	priv = GET_PRIVATE(self);
	write_locker = g_mutex_locker_new(&priv->write_mutex);
	if (!g_str_has_prefix(prefix_or_token, AS_TOKEN_PREFIX) &&
	    as_token_looks_legacy(prefix_or_token)) {
		info = as_token_store_legacy_revocation(self, prefix_or_token, error);
		if (info == NULL)
			return FALSE;
	} else {
		AsTokenInfo *found;

		g_mutex_lock(&priv->mutex);
		found = as_token_store_find_locked(self, prefix_or_token, error);
		if (found != NULL)
			info = as_token_info_copy(found);
		g_mutex_unlock(&priv->mutex);
		if (info == NULL)
			return FALSE;
	}

	info->revoked = TRUE;
	if (!as_token_store_save(self, info, error))
		return FALSE;
	g_mutex_lock(&priv->mutex);
	as_token_store_table_insert(priv->infos, as_token_info_copy(info));
	g_mutex_unlock(&priv->mutex);
	g_clear_pointer(&write_locker, g_mutex_locker_free);

	g_info("revoked token %s", info->id);
	g_signal_emit(self, signals[SIGNAL_CHANGED], 0);
	if (info_out != NULL)
		*info_out = g_steal_pointer(&info);
	return TRUE;
}

/**
 * as_token_store_set_legacy_secret:
 * @self: an #AsTokenStore
 * @secret: (nullable): the 0.x secret key, or %NULL (or "") to refuse 0.x tokens
 */
void
as_token_store_set_legacy_secret(AsTokenStore *self, const gchar *secret)
{
	AsTokenStorePrivate *priv;

	g_return_if_fail(AS_IS_TOKEN_STORE(self));

	priv = GET_PRIVATE(self);
	g_mutex_lock(&priv->mutex);
	g_clear_pointer(&priv->legacy_secret, as_token_store_wipe_free);
	if (secret != NULL && secret[0] != '\0')
		priv->legacy_secret = g_strdup(secret);
	g_mutex_unlock(&priv->mutex);
}

/**
 * as_token_store_add_static_token:
 * @self: an #AsTokenStore
 * @token: a token accepted in addition to the stored ones, e.g. from --auth-token-file
 *
 * Only the hash of @token is kept.
 */
void
as_token_store_add_static_token(AsTokenStore *self, const gchar *token)
{
	AsTokenStorePrivate *priv;
	g_autofree gchar *hash = NULL;

	g_return_if_fail(AS_IS_TOKEN_STORE(self));
	g_return_if_fail(token != NULL);

	priv = GET_PRIVATE(self);
	if (token[0] == '\0')
		return;
	if (strlen(token) > AS_TOKEN_MAX_LENGTH) {
		g_warning("ignoring a static token longer than %u bytes",
			  (guint)AS_TOKEN_MAX_LENGTH);
		return;
	}
	hash = as_token_hash(token);
	if (hash == NULL)
		return;
	g_mutex_lock(&priv->mutex);
	if (!g_ptr_array_find_with_equal_func(priv->static_hashes, hash, g_str_equal, NULL))
		g_ptr_array_add(priv->static_hashes, g_steal_pointer(&hash));
	g_mutex_unlock(&priv->mutex);
}

/**
 * as_token_store_clear_static_tokens:
 * @self: an #AsTokenStore
 */
void
as_token_store_clear_static_tokens(AsTokenStore *self)
{
	AsTokenStorePrivate *priv;

	g_return_if_fail(AS_IS_TOKEN_STORE(self));

	priv = GET_PRIVATE(self);
	g_mutex_lock(&priv->mutex);
	g_ptr_array_set_size(priv->static_hashes, 0);
	g_mutex_unlock(&priv->mutex);
}

/* must be called with priv->mutex held */
static gboolean
as_token_store_check_locked(
	AsTokenStore *self, const gchar *token, const gchar *hash, gint64 now_s, GError **error)
{
	AsTokenStorePrivate *priv = GET_PRIVATE(self);
	g_autofree gchar *id = g_strndup(hash, AS_TOKEN_ID_LENGTH);
	AsTokenInfo *info;
	gboolean is_static = FALSE;

	/* look at every static hash so timing does not say which one matched */
	for (guint i = 0; i < priv->static_hashes->len; i++) {
		if (as_token_secure_equal(g_ptr_array_index(priv->static_hashes, i), hash))
			is_static = TRUE;
	}
	if (is_static)
		return TRUE;

	info = g_hash_table_lookup(priv->infos, id);
	if (info != NULL && as_token_secure_equal(info->hash, hash)) {
		if (info->revoked) {
			g_set_error_literal(error, AS_ERROR, AS_ERROR_PERMISSION_DENIED,
					    "token revoked");
			return FALSE;
		}
		if (as_token_info_is_expired(info, now_s)) {
			g_set_error_literal(error, AS_ERROR, AS_ERROR_PERMISSION_DENIED,
					    "token expired");
			return FALSE;
		}
		return TRUE;
	}

	if (priv->legacy_secret != NULL && as_token_looks_legacy(token)) {
		g_autoptr(GError) error_local = NULL;
		g_autofree gchar *uuid = NULL;
		g_autofree gchar *legacy_id = NULL;
		AsTokenInfo *revocation;

		if (!as_token_legacy_verify(token, priv->legacy_secret, now_s, &uuid,
					    &error_local)) {
			/* the reason never contains the token */
			g_set_error_literal(error, AS_ERROR, AS_ERROR_PERMISSION_DENIED,
					    error_local->message);
			return FALSE;
		}
		legacy_id = g_strconcat(AS_TOKEN_LEGACY_ID_PREFIX, uuid, NULL);
		revocation = g_hash_table_lookup(priv->infos, legacy_id);
		if (revocation != NULL && revocation->revoked) {
			g_set_error_literal(error, AS_ERROR, AS_ERROR_PERMISSION_DENIED,
					    "token revoked");
			return FALSE;
		}
		return TRUE;
	}

	g_set_error_literal(error, AS_ERROR, AS_ERROR_PERMISSION_DENIED, "unknown token");
	return FALSE;
}

/**
 * as_token_store_check:
 * @self: an #AsTokenStore
 * @token: (nullable): the presented token
 * @now_s: the current time in seconds since the epoch
 * @error: (nullable): optional return location for an error
 *
 * Decides whether a request may proceed: @token is a static token, a stored token that is
 * neither revoked nor expired, or a valid 0.x token when a legacy secret is set. No I/O, safe
 * to call from any thread.
 *
 * Returns: %TRUE if accepted, else %FALSE with %AS_ERROR_PERMISSION_DENIED and a reason
 */
gboolean
as_token_store_check(AsTokenStore *self, const gchar *token, gint64 now_s, GError **error)
{
	AsTokenStorePrivate *priv;
	g_autofree gchar *hash = NULL;
	gboolean ret;

	g_return_val_if_fail(AS_IS_TOKEN_STORE(self), FALSE);
	g_return_val_if_fail(error == NULL || *error == NULL, FALSE);

	priv = GET_PRIVATE(self);
	if (token == NULL || token[0] == '\0') {
		g_set_error_literal(error, AS_ERROR, AS_ERROR_PERMISSION_DENIED, "missing token");
		return FALSE;
	}
	if (strlen(token) > AS_TOKEN_MAX_LENGTH) {
		g_set_error_literal(error, AS_ERROR, AS_ERROR_PERMISSION_DENIED, "unknown token");
		return FALSE;
	}
	/* fail closed if the hash cannot be computed */
	hash = as_token_hash(token);
	if (hash == NULL) {
		g_set_error_literal(error, AS_ERROR, AS_ERROR_PERMISSION_DENIED, "unknown token");
		return FALSE;
	}
	g_mutex_lock(&priv->mutex);
	ret = as_token_store_check_locked(self, token, hash, now_s, error);
	g_mutex_unlock(&priv->mutex);
	return ret;
}

/**
 * as_token_store_get_count:
 * @self: an #AsTokenStore
 *
 * Returns: the number of stored entries, revoked and expired ones included, static tokens not
 */
guint
as_token_store_get_count(AsTokenStore *self)
{
	AsTokenStorePrivate *priv;
	guint count;

	g_return_val_if_fail(AS_IS_TOKEN_STORE(self), 0);

	priv = GET_PRIVATE(self);
	g_mutex_lock(&priv->mutex);
	count = g_hash_table_size(priv->infos);
	g_mutex_unlock(&priv->mutex);
	return count;
}

static AsTokenStore *
as_token_store_new_file_loaded(const gchar *path, const gchar *reason, GError **error)
{
	g_autoptr(AsTokenStore) store = as_token_store_file_new(path);

	if (!as_token_store_load(store, error))
		return NULL;
	if (reason != NULL)
		g_message("tokens are stored in %s (%s)", path, reason);
	else
		g_message("tokens are stored in %s", path);
	return g_steal_pointer(&store);
}

static AsTokenStore *
as_token_store_new_secret_loaded(const gchar *store_key, guint timeout_ms, GError **error)
{
	g_autoptr(AsTokenStore) store = as_token_store_secret_new(store_key, error);

	if (store == NULL)
		return NULL;
	if (timeout_ms > 0)
		as_token_store_secret_set_timeout(AS_TOKEN_STORE_SECRET(store), timeout_ms);
	if (!as_token_store_load(store, error))
		return NULL;
	as_token_store_secret_set_timeout(AS_TOKEN_STORE_SECRET(store),
					  AS_TOKEN_STORE_SECRET_TIMEOUT_MS);
	g_message("tokens are stored in the Secret Service");
	return g_steal_pointer(&store);
}

/**
 * as_token_store_new_auto:
 * @config_dir: the daemon's config dir; the file backend uses <config_dir>/tokens and the
 * Secret Service entries are keyed by this path
 * @backend: (nullable): "auto" (the default), "file" or "secret-service"
 * @error: (nullable): optional return location for an error
 *
 * Creates and loads the token store. "auto" keeps using an existing tokens file, else tries
 * the Secret Service with a short timeout and falls back to the file.
 *
 * Returns: (transfer full): a loaded store, or %NULL on error
 */
AsTokenStore *
as_token_store_new_auto(const gchar *config_dir, const gchar *backend, GError **error)
{
	g_autofree gchar *store_key = NULL;
	g_autofree gchar *path = NULL;
	g_autoptr(AsTokenStore) store = NULL;
	g_autoptr(GError) error_local = NULL;

	g_return_val_if_fail(config_dir != NULL, NULL);
	g_return_val_if_fail(error == NULL || *error == NULL, NULL);

	if (backend == NULL)
		backend = AS_TOKEN_STORE_BACKEND_AUTO;
	store_key = g_canonicalize_filename(config_dir, NULL);
	path = g_build_filename(store_key, AS_TOKEN_STORE_FILE_NAME, NULL);

	if (g_strcmp0(backend, AS_TOKEN_STORE_BACKEND_FILE) == 0)
		return as_token_store_new_file_loaded(path, NULL, error);
	if (g_strcmp0(backend, AS_TOKEN_STORE_BACKEND_SECRET_SERVICE) == 0)
		return as_token_store_new_secret_loaded(store_key, 0, error);
	if (g_strcmp0(backend, AS_TOKEN_STORE_BACKEND_AUTO) != 0) {
		g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
			    "unknown token backend '%s', expected auto, file or secret-service",
			    backend);
		return NULL;
	}

	/* tokens written while the Secret Service was away must keep working when it is back */
	if (g_file_test(path, G_FILE_TEST_EXISTS))
		return as_token_store_new_file_loaded(path, "existing file", error);

	if (!as_token_store_secret_is_available(AS_TOKEN_STORE_PROBE_TIMEOUT_MS, &error_local)) {
		g_info("not using the Secret Service: %s", error_local->message);
		return as_token_store_new_file_loaded(path, "no Secret Service", error);
	}
	store = as_token_store_new_secret_loaded(store_key, AS_TOKEN_STORE_PROBE_TIMEOUT_MS,
						 &error_local);
	if (store == NULL) {
		g_info("not using the Secret Service: %s", error_local->message);
		return as_token_store_new_file_loaded(path, "no Secret Service", error);
	}
	return g_steal_pointer(&store);
}

static void
as_token_store_finalize(GObject *object)
{
	AsTokenStore *self = AS_TOKEN_STORE(object);
	AsTokenStorePrivate *priv = GET_PRIVATE(self);

	g_hash_table_unref(priv->infos);
	g_ptr_array_unref(priv->static_hashes);
	as_token_store_wipe_free(priv->legacy_secret);
	g_mutex_clear(&priv->mutex);
	g_mutex_clear(&priv->write_mutex);

	G_OBJECT_CLASS(as_token_store_parent_class)->finalize(object);
}

static void
as_token_store_init(AsTokenStore *self)
{
	AsTokenStorePrivate *priv = GET_PRIVATE(self);

	g_mutex_init(&priv->mutex);
	g_mutex_init(&priv->write_mutex);
	priv->infos = as_token_store_table_new();
	priv->static_hashes = g_ptr_array_new_with_free_func(g_free);
}

static void
as_token_store_class_init(AsTokenStoreClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);

	object_class->finalize = as_token_store_finalize;

	/**
	 * AsTokenStore::changed:
	 * @self: the #AsTokenStore
	 *
	 * Emitted after a token is generated or revoked and after the backend is loaded, in the
	 * thread that made the change.
	 */
	signals[SIGNAL_CHANGED] =
		g_signal_new("changed", G_TYPE_FROM_CLASS(object_class), G_SIGNAL_RUN_LAST, 0, NULL,
			     NULL, g_cclosure_marshal_VOID__VOID, G_TYPE_NONE, 0);
}
