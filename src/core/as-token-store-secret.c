/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "AsTokenStoreSecret"

#include "config.h"

#include <gio/gio.h>

#if HAVE_LIBSECRET
#include <libsecret/secret.h>
#endif

#include "as-error.h"
#include "as-token-store-secret.h"

#define AS_TOKEN_STORE_SECRET_ATTR_STORE   "store"
#define AS_TOKEN_STORE_SECRET_ATTR_ID	   "id"
#define AS_TOKEN_STORE_SECRET_ATTR_LABEL   "label"
#define AS_TOKEN_STORE_SECRET_ATTR_CREATED "created"
#define AS_TOKEN_STORE_SECRET_ATTR_EXPIRES "expires"
#define AS_TOKEN_STORE_SECRET_ATTR_REVOKED "revoked"

#define AS_TOKEN_STORE_SECRET_BUS_NAME "org.freedesktop.secrets"

struct _AsTokenStoreSecret {
	AsTokenStore parent_instance;
	gchar *store_key; /* owned: keeps daemons with different config dirs apart */
	guint timeout_ms; /* bound on each backend call, 0 for none */
};

G_DEFINE_TYPE(AsTokenStoreSecret, as_token_store_secret, AS_TYPE_TOKEN_STORE)

/**
 * as_token_store_secret_set_timeout:
 * @self: an #AsTokenStoreSecret
 * @timeout_ms: bound on each load or save, or 0 to wait forever
 *
 * A locked keyring may show an unlock prompt that nobody answers; the call then fails.
 */
void
as_token_store_secret_set_timeout(AsTokenStoreSecret *self, guint timeout_ms)
{
	g_return_if_fail(AS_IS_TOKEN_STORE_SECRET(self));
	self->timeout_ms = timeout_ms;
}

#if HAVE_LIBSECRET

/* libsecret's sync calls run their own main context, so the timeout needs its own thread */
typedef struct {
	GMutex mutex;
	GCond cond;
	gboolean done;
	gint64 deadline_us; /* monotonic */
	GCancellable *cancellable;
	GThread *thread;
} AsTokenStoreSecretDeadline;

static gpointer
as_token_store_secret_deadline_thread_cb(gpointer user_data)
{
	AsTokenStoreSecretDeadline *self = user_data;
	gboolean expired = FALSE;

	g_mutex_lock(&self->mutex);
	while (!self->done) {
		if (!g_cond_wait_until(&self->cond, &self->mutex, self->deadline_us)) {
			expired = !self->done;
			break;
		}
	}
	g_mutex_unlock(&self->mutex);

	/* outside the lock: cancellation handlers run in this thread */
	if (expired)
		g_cancellable_cancel(self->cancellable);
	return NULL;
}

static AsTokenStoreSecretDeadline *
as_token_store_secret_deadline_new(GCancellable *cancellable, guint timeout_ms)
{
	AsTokenStoreSecretDeadline *self = g_new0(AsTokenStoreSecretDeadline, 1);

	g_mutex_init(&self->mutex);
	g_cond_init(&self->cond);
	self->cancellable = g_object_ref(cancellable);
	if (timeout_ms > 0) {
		self->deadline_us = g_get_monotonic_time() + (gint64)timeout_ms * 1000;
		self->thread = g_thread_new("as-secret-deadline",
					    as_token_store_secret_deadline_thread_cb, self);
	}
	return self;
}

static void
as_token_store_secret_deadline_free(AsTokenStoreSecretDeadline *self)
{
	g_mutex_lock(&self->mutex);
	self->done = TRUE;
	g_cond_signal(&self->cond);
	g_mutex_unlock(&self->mutex);
	if (self->thread != NULL)
		g_thread_join(self->thread);
	g_object_unref(self->cancellable);
	g_mutex_clear(&self->mutex);
	g_cond_clear(&self->cond);
	g_free(self);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(AsTokenStoreSecretDeadline, as_token_store_secret_deadline_free)

static const SecretSchema *
as_token_store_secret_get_schema(void)
{
	static const SecretSchema schema = {
		AS_TOKEN_STORE_SECRET_SCHEMA,
		SECRET_SCHEMA_NONE,
		{
			{AS_TOKEN_STORE_SECRET_ATTR_STORE, SECRET_SCHEMA_ATTRIBUTE_STRING},
			{AS_TOKEN_STORE_SECRET_ATTR_ID, SECRET_SCHEMA_ATTRIBUTE_STRING},
			{AS_TOKEN_STORE_SECRET_ATTR_LABEL, SECRET_SCHEMA_ATTRIBUTE_STRING},
			{AS_TOKEN_STORE_SECRET_ATTR_CREATED, SECRET_SCHEMA_ATTRIBUTE_STRING},
			{AS_TOKEN_STORE_SECRET_ATTR_EXPIRES, SECRET_SCHEMA_ATTRIBUTE_STRING},
			{AS_TOKEN_STORE_SECRET_ATTR_REVOKED, SECRET_SCHEMA_ATTRIBUTE_STRING},
			{NULL, 0},
		}};
	return &schema;
}

static const gchar *const as_token_store_secret_attr_names[] = {
	AS_TOKEN_STORE_SECRET_ATTR_STORE,   AS_TOKEN_STORE_SECRET_ATTR_ID,
	AS_TOKEN_STORE_SECRET_ATTR_LABEL,   AS_TOKEN_STORE_SECRET_ATTR_CREATED,
	AS_TOKEN_STORE_SECRET_ATTR_EXPIRES, AS_TOKEN_STORE_SECRET_ATTR_REVOKED,
};

/* turn a cancellation by the deadline into something a user understands */
static void
as_token_store_secret_convert_error(AsTokenStoreSecret *self, GError **error)
{
	if (error == NULL || *error == NULL)
		return;
	if (g_error_matches(*error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
		g_clear_error(error);
		g_set_error(error, AS_ERROR, AS_ERROR_IO,
			    "the Secret Service did not answer within %u ms", self->timeout_ms);
		return;
	}
	as_error_convert(error);
}

static GHashTable *
as_token_store_secret_attrs_new(AsTokenStoreSecret *self)
{
	GHashTable *attrs = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, g_free);

	g_hash_table_insert(attrs, (gpointer)AS_TOKEN_STORE_SECRET_ATTR_STORE,
			    g_strdup(self->store_key));
	return attrs;
}

static GHashTable *
as_token_store_secret_attrs_for_info(AsTokenStoreSecret *self, const AsTokenInfo *info)
{
	GHashTable *attrs = as_token_store_secret_attrs_new(self);

	g_hash_table_insert(attrs, (gpointer)AS_TOKEN_STORE_SECRET_ATTR_ID, g_strdup(info->id));
	g_hash_table_insert(attrs, (gpointer)AS_TOKEN_STORE_SECRET_ATTR_LABEL,
			    g_strdup(info->label != NULL ? info->label : ""));
	g_hash_table_insert(attrs, (gpointer)AS_TOKEN_STORE_SECRET_ATTR_CREATED,
			    g_strdup_printf("%" G_GINT64_FORMAT, info->created));
	g_hash_table_insert(attrs, (gpointer)AS_TOKEN_STORE_SECRET_ATTR_EXPIRES,
			    g_strdup_printf("%" G_GINT64_FORMAT, info->expires));
	g_hash_table_insert(attrs, (gpointer)AS_TOKEN_STORE_SECRET_ATTR_REVOKED,
			    g_strdup(info->revoked ? "true" : "false"));
	return attrs;
}

static gboolean
as_token_store_secret_parse_time(GHashTable *attrs, const gchar *key, gint64 *value_out)
{
	const gchar *str = g_hash_table_lookup(attrs, key);
	guint64 value = 0;

	if (str == NULL || !g_ascii_string_to_unsigned(str, 10, 0, G_MAXINT64, &value, NULL))
		return FALSE;
	*value_out = (gint64)value;
	return TRUE;
}

static AsTokenInfo *
as_token_store_secret_parse_item(AsTokenStoreSecret *self,
				 SecretRetrievable *item,
				 GCancellable *cancellable,
				 GError **error)
{
	g_autoptr(GHashTable) attrs = secret_retrievable_get_attributes(item);
	g_autoptr(AsTokenInfo) info = as_token_info_new();
	g_autoptr(SecretValue) value = NULL;
	g_autoptr(GError) error_local = NULL;
	const gchar *label;
	const gchar *revoked;

	info->id = g_strdup(g_hash_table_lookup(attrs, AS_TOKEN_STORE_SECRET_ATTR_ID));
	if (!as_token_id_is_valid(info->id)) {
		g_set_error_literal(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT, "invalid token id");
		return NULL;
	}
	label = g_hash_table_lookup(attrs, AS_TOKEN_STORE_SECRET_ATTR_LABEL);
	if (label != NULL && label[0] != '\0')
		info->label = g_strdup(label);
	if (!as_token_store_secret_parse_time(attrs, AS_TOKEN_STORE_SECRET_ATTR_CREATED,
					      &info->created) ||
	    !as_token_store_secret_parse_time(attrs, AS_TOKEN_STORE_SECRET_ATTR_EXPIRES,
					      &info->expires)) {
		g_set_error_literal(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT, "invalid time");
		return NULL;
	}

	/* only "false" is valid: anything unexpected must not revive a revoked token */
	revoked = g_hash_table_lookup(attrs, AS_TOKEN_STORE_SECRET_ATTR_REVOKED);
	if (g_strcmp0(revoked, "true") == 0) {
		info->revoked = TRUE;
	} else if (g_strcmp0(revoked, "false") != 0) {
		g_set_error_literal(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
				    "invalid revoked attribute");
		return NULL;
	}

	value = secret_retrievable_retrieve_secret_sync(item, cancellable, &error_local);
	if (value == NULL) {
		if (error_local == NULL)
			g_set_error_literal(error, AS_ERROR, AS_ERROR_IO,
					    "the entry has no secret");
		else
			g_propagate_error(error, g_steal_pointer(&error_local));
		return NULL;
	}
	info->hash = g_strdup(secret_value_get_text(value));
	if (!as_token_hash_is_valid(info->hash)) {
		g_set_error_literal(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT, "invalid hash");
		return NULL;
	}
	return g_steal_pointer(&info);
}

static gboolean
as_token_store_secret_load(AsTokenStore *store, GPtrArray *infos_out, GError **error)
{
	AsTokenStoreSecret *self = AS_TOKEN_STORE_SECRET(store);
	g_autoptr(GHashTable) attrs = as_token_store_secret_attrs_new(self);
	g_autoptr(GCancellable) cancellable = g_cancellable_new();
	g_autoptr(AsTokenStoreSecretDeadline) deadline =
		as_token_store_secret_deadline_new(cancellable, self->timeout_ms);
	g_autoptr(GError) error_local = NULL;
	GList *items;

	items = secret_password_searchv_sync(as_token_store_secret_get_schema(), attrs,
					     SECRET_SEARCH_ALL | SECRET_SEARCH_UNLOCK |
						     SECRET_SEARCH_LOAD_SECRETS,
					     cancellable, &error_local);
	if (error_local != NULL) {
		as_token_store_secret_convert_error(self, &error_local);
		g_propagate_prefixed_error(error, g_steal_pointer(&error_local),
					   "failed to search the Secret Service: ");
		return FALSE;
	}
	for (GList *l = items; l != NULL; l = l->next) {
		g_autoptr(GError) error_item = NULL;
		AsTokenInfo *info =
			as_token_store_secret_parse_item(self, l->data, cancellable, &error_item);

		/* an entry we cannot parse is skipped (so rejected); one we cannot read fails the
		 * load, as skipping it could leave an older unrevoked copy in charge */
		if (info == NULL) {
			if (!g_error_matches(error_item, AS_ERROR, AS_ERROR_INVALID_ARGUMENT)) {
				as_token_store_secret_convert_error(self, &error_item);
				g_propagate_prefixed_error(
					error, g_steal_pointer(&error_item),
					"failed to read a Secret Service entry: ");
				g_list_free_full(items, g_object_unref);
				return FALSE;
			}
			g_warning("ignoring a Secret Service entry: %s", error_item->message);
			continue;
		}
		g_ptr_array_add(infos_out, info);
	}
	g_list_free_full(items, g_object_unref);
	return TRUE;
}

/* TRUE when @old holds every schema attribute and differs from @new in at least one */
static gboolean
as_token_store_secret_attrs_superseded(GHashTable *old, GHashTable *new)
{
	gboolean differs = FALSE;

	for (guint i = 0; i < G_N_ELEMENTS(as_token_store_secret_attr_names); i++) {
		const gchar *key = as_token_store_secret_attr_names[i];
		const gchar *value = g_hash_table_lookup(old, key);

		if (value == NULL)
			return FALSE;
		if (g_strcmp0(value, g_hash_table_lookup(new, key)) != 0)
			differs = TRUE;
	}
	return differs;
}

static GHashTable *
as_token_store_secret_attrs_schema_only(GHashTable *attrs)
{
	GHashTable *subset = g_hash_table_new(g_str_hash, g_str_equal);

	for (guint i = 0; i < G_N_ELEMENTS(as_token_store_secret_attr_names); i++) {
		const gchar *key = as_token_store_secret_attr_names[i];
		g_hash_table_insert(subset, (gpointer)key, g_hash_table_lookup(attrs, key));
	}
	return subset;
}

static gboolean
as_token_store_secret_save(AsTokenStore *store, const AsTokenInfo *info, GError **error)
{
	AsTokenStoreSecret *self = AS_TOKEN_STORE_SECRET(store);
	g_autoptr(GHashTable) attrs = as_token_store_secret_attrs_for_info(self, info);
	g_autoptr(GHashTable) attrs_id = as_token_store_secret_attrs_new(self);
	g_autoptr(GCancellable) cancellable = g_cancellable_new();
	g_autoptr(AsTokenStoreSecretDeadline) deadline =
		as_token_store_secret_deadline_new(cancellable, self->timeout_ms);
	g_autoptr(GError) error_local = NULL;
	g_autofree gchar *item_label = NULL;
	GList *items;

	item_label = info->label != NULL
			     ? g_strdup_printf("AeroSync token %s (%s)", info->id, info->label)
			     : g_strdup_printf("AeroSync token %s", info->id);
	if (!secret_password_storev_sync(as_token_store_secret_get_schema(), attrs, NULL,
					 item_label, info->hash, cancellable, &error_local)) {
		as_token_store_secret_convert_error(self, &error_local);
		g_propagate_prefixed_error(error, g_steal_pointer(&error_local),
					   "failed to store in the Secret Service: ");
		return FALSE;
	}

	/* an update is a new item as attributes changed; drop the old one only now, so a
	 * failure leaves a duplicate that load resolves (revoked wins) rather than no entry */
	g_hash_table_insert(attrs_id, (gpointer)AS_TOKEN_STORE_SECRET_ATTR_ID, g_strdup(info->id));
	items = secret_password_searchv_sync(as_token_store_secret_get_schema(), attrs_id,
					     SECRET_SEARCH_ALL, cancellable, &error_local);
	if (error_local != NULL) {
		g_warning("failed to look for older Secret Service entries of token %s: %s",
			  info->id, error_local->message);
		return TRUE;
	}
	for (GList *l = items; l != NULL; l = l->next) {
		g_autoptr(GHashTable) old = secret_retrievable_get_attributes(l->data);
		g_autoptr(GHashTable) old_subset = NULL;
		g_autoptr(GError) error_clear = NULL;

		if (!as_token_store_secret_attrs_superseded(old, attrs))
			continue;
		old_subset = as_token_store_secret_attrs_schema_only(old);
		if (!secret_password_clearv_sync(as_token_store_secret_get_schema(), old_subset,
						 cancellable, &error_clear) &&
		    error_clear != NULL) {
			g_warning("failed to remove an older Secret Service entry of token %s: %s",
				  info->id, error_clear->message);
		}
	}
	g_list_free_full(items, g_object_unref);
	return TRUE;
}

static const gchar *
as_token_store_secret_get_backend_name(AsTokenStore *store)
{
	return AS_TOKEN_STORE_BACKEND_SECRET_SERVICE;
}

/**
 * as_token_store_secret_is_available:
 * @timeout_ms: bound on the D-Bus calls
 * @error: (nullable): optional return location for an error
 *
 * Checks, without starting anything, that a session bus exists and that the Secret Service
 * is running or activatable there. libsecret's own file keyring (SECRET_BACKEND=file) needs
 * no bus and is always reported available.
 *
 * Returns: %TRUE if worth trying
 */
gboolean
as_token_store_secret_is_available(guint timeout_ms, GError **error)
{
	g_autoptr(GCancellable) cancellable = g_cancellable_new();
	g_autoptr(AsTokenStoreSecretDeadline) deadline =
		as_token_store_secret_deadline_new(cancellable, timeout_ms);
	g_autoptr(GDBusConnection) connection = NULL;
	g_autoptr(GVariant) reply = NULL;
	g_autoptr(GVariantIter) iter = NULL;
	gboolean has_owner = FALSE;
	const gchar *name = NULL;

	if (g_strcmp0(g_getenv("SECRET_BACKEND"), "file") == 0)
		return TRUE;

	/* without an address GIO would try to autolaunch a bus through X11 */
	if (g_getenv("DBUS_SESSION_BUS_ADDRESS") == NULL) {
		const gchar *runtime_dir = g_getenv("XDG_RUNTIME_DIR");
		g_autofree gchar *socket = NULL;

		if (runtime_dir != NULL)
			socket = g_build_filename(runtime_dir, "bus", NULL);
		if (socket == NULL || !g_file_test(socket, G_FILE_TEST_EXISTS)) {
			g_set_error_literal(error, AS_ERROR, AS_ERROR_NOT_SUPPORTED,
					    "no session bus");
			return FALSE;
		}
	}

	deadline = as_token_store_secret_deadline_new(cancellable, timeout_ms);
	connection = g_bus_get_sync(G_BUS_TYPE_SESSION, cancellable, error);
	if (connection == NULL) {
		as_error_convert(error);
		g_prefix_error(error, "no session bus: ");
		return FALSE;
	}
	reply = g_dbus_connection_call_sync(
		connection, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
		"NameHasOwner", g_variant_new("(s)", AS_TOKEN_STORE_SECRET_BUS_NAME),
		G_VARIANT_TYPE("(b)"), G_DBUS_CALL_FLAGS_NONE, (gint)timeout_ms, cancellable,
		error);
	if (reply == NULL) {
		as_error_convert(error);
		return FALSE;
	}
	g_variant_get(reply, "(b)", &has_owner);
	if (has_owner)
		return TRUE;
	g_clear_pointer(&reply, g_variant_unref);
	reply = g_dbus_connection_call_sync(
		connection, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
		"ListActivatableNames", NULL, G_VARIANT_TYPE("(as)"), G_DBUS_CALL_FLAGS_NONE,
		(gint)timeout_ms, cancellable, error);
	if (reply == NULL) {
		as_error_convert(error);
		return FALSE;
	}
	g_variant_get(reply, "(as)", &iter);
	while (g_variant_iter_next(iter, "&s", &name)) {
		if (g_strcmp0(name, AS_TOKEN_STORE_SECRET_BUS_NAME) == 0)
			return TRUE;
	}
	g_set_error_literal(error, AS_ERROR, AS_ERROR_NOT_SUPPORTED,
			    AS_TOKEN_STORE_SECRET_BUS_NAME " is neither running nor activatable");
	return FALSE;
}

/**
 * as_token_store_secret_new:
 * @store_key: what tells this daemon's entries apart, usually its config dir
 * @error: (nullable): optional return location for an error
 *
 * A store that keeps token hashes in the Secret Service, schema "org.aerosync.Token". Call
 * as_token_store_load() before use.
 *
 * Returns: (transfer full): a new #AsTokenStore, or %NULL with %AS_ERROR_NOT_SUPPORTED when
 * built without libsecret
 */
AsTokenStore *
as_token_store_secret_new(const gchar *store_key, GError **error)
{
	AsTokenStoreSecret *self;

	g_return_val_if_fail(store_key != NULL, NULL);
	g_return_val_if_fail(error == NULL || *error == NULL, NULL);

	self = g_object_new(AS_TYPE_TOKEN_STORE_SECRET, NULL);
	self->store_key = g_strdup(store_key);
	return AS_TOKEN_STORE(self);
}

#else /* HAVE_LIBSECRET */

gboolean
as_token_store_secret_is_available(guint timeout_ms, GError **error)
{
	g_set_error_literal(error, AS_ERROR, AS_ERROR_NOT_SUPPORTED,
			    "built without Secret Service support");
	return FALSE;
}

AsTokenStore *
as_token_store_secret_new(const gchar *store_key, GError **error)
{
	g_set_error_literal(error, AS_ERROR, AS_ERROR_NOT_SUPPORTED,
			    "built without Secret Service support");
	return NULL;
}

#endif /* HAVE_LIBSECRET */

static void
as_token_store_secret_finalize(GObject *object)
{
	AsTokenStoreSecret *self = AS_TOKEN_STORE_SECRET(object);

	g_free(self->store_key);

	G_OBJECT_CLASS(as_token_store_secret_parent_class)->finalize(object);
}

static void
as_token_store_secret_init(AsTokenStoreSecret *self)
{
	self->timeout_ms = AS_TOKEN_STORE_SECRET_TIMEOUT_MS;
}

static void
as_token_store_secret_class_init(AsTokenStoreSecretClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);

	object_class->finalize = as_token_store_secret_finalize;
#if HAVE_LIBSECRET
	AS_TOKEN_STORE_CLASS(klass)->load = as_token_store_secret_load;
	AS_TOKEN_STORE_CLASS(klass)->save = as_token_store_secret_save;
	AS_TOKEN_STORE_CLASS(klass)->get_backend_name = as_token_store_secret_get_backend_name;
#endif
}
