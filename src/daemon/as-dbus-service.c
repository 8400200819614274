/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "AsDbusService"

#include "config.h"

#include "as-dbus-generated.h"
#include "as-dbus-service.h"
#include "as-error.h"
#include "as-history.h"
#include "as-keys.h"
#include "as-sender.h"
#include "as-token.h"

#define AS_DBUS_HISTORY_DEFAULT_LIMIT 20
#define AS_DBUS_HISTORY_MAX_LIMIT     10000
#define AS_DBUS_REVOKE_MIN_PREFIX     4

struct _AsDbusService {
	GObject parent_instance;
	AsEngine *engine;			  /* owned */
	GDBusConnection *connection;		  /* owned */
	AsDbusManager1 *manager;		  /* owned skeleton */
	GDBusObjectManagerServer *object_manager; /* owned */
	GHashTable *objects;			  /* AsTransfer* -> AsDbusObjectSkeleton* */
	AsSender *sender;			  /* owned ref, nullable: Send() */
};

G_DEFINE_TYPE(AsDbusService, as_dbus_service, G_TYPE_OBJECT)

/* object paths only take [A-Za-z0-9_]: escape everything else as _XX */
gchar *
as_dbus_service_transfer_path(const gchar *transfer_id)
{
	GString *str = g_string_new(AS_DBUS_TRANSFERS_PATH "/t");
	for (const gchar *p = transfer_id; *p != '\0'; p++) {
		if (g_ascii_isalnum(*p))
			g_string_append_c(str, *p);
		else
			g_string_append_printf(str, "_%02x", (guint8)*p);
	}
	return g_string_free(str, FALSE);
}

static GVariant *
as_dbus_token_info_to_variant(const AsTokenInfo *info)
{
	GVariantBuilder b;
	gint64 now = g_get_real_time() / G_USEC_PER_SEC;

	g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
	g_variant_builder_add(&b, "{sv}", "id", g_variant_new_string(info->id));
	g_variant_builder_add(&b, "{sv}", "label",
			      g_variant_new_string(info->label != NULL ? info->label : ""));
	g_variant_builder_add(&b, "{sv}", "created", g_variant_new_int64(info->created));
	g_variant_builder_add(&b, "{sv}", "expires", g_variant_new_int64(info->expires));
	g_variant_builder_add(&b, "{sv}", "revoked", g_variant_new_boolean(info->revoked));
	g_variant_builder_add(&b, "{sv}", "expired",
			      g_variant_new_boolean(as_token_info_is_expired(info, now)));
	return g_variant_builder_end(&b);
}

static void
as_dbus_return_error(GDBusMethodInvocation *invocation, GError *error)
{
	as_error_convert(&error);
	g_dbus_method_invocation_return_gerror(invocation, error);
}

static gboolean
as_dbus_handle_get_status_cb(AsDbusManager1 *manager,
			     GDBusMethodInvocation *invocation,
			     gpointer user_data)
{
	AsDbusService *self = AS_DBUS_SERVICE(user_data);
	AsConfig *config = as_engine_get_config(self->engine);
	g_autoptr(JsonObject) health = as_engine_get_health(self->engine);
	GVariantBuilder b;

	g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
	g_variant_builder_add(&b, "{sv}", "status", g_variant_new_string("ok"));
	g_variant_builder_add(&b, "{sv}", "received_files",
			      g_variant_new_uint64(as_engine_get_received_files(self->engine)));
	g_variant_builder_add(
		&b, "{sv}", "free_bytes",
		g_variant_new_uint64((guint64)json_object_get_int_member(health, "free_bytes")));
	g_variant_builder_add(
		&b, "{sv}", "total_bytes",
		g_variant_new_uint64((guint64)json_object_get_int_member(health, "total_bytes")));
	g_variant_builder_add(&b, "{sv}", "active_transfers",
			      g_variant_new_uint32(as_engine_get_active_transfers(self->engine)));
	g_variant_builder_add(&b, "{sv}", "queue_depth", g_variant_new_uint32(0));
	g_variant_builder_add(&b, "{sv}", "protocols",
			      g_variant_new_strv(as_engine_get_protocols(self->engine), -1));
	g_variant_builder_add(&b, "{sv}", "version", g_variant_new_string(PACKAGE_VERSION));
	g_variant_builder_add(&b, "{sv}", "receive_directory",
			      g_variant_new_string(config->save_to));
	g_variant_builder_add(&b, "{sv}", "http_port",
			      g_variant_new_uint16(as_engine_get_http_port(self->engine)));
	g_variant_builder_add(&b, "{sv}", "quic_port",
			      g_variant_new_uint16(as_engine_get_quic_port(self->engine)));
	g_variant_builder_add(&b, "{sv}", "https_port",
			      g_variant_new_uint16(as_engine_get_https_port(self->engine)));
	if (as_engine_get_cert_sha256(self->engine) != NULL)
		g_variant_builder_add(
			&b, "{sv}", "cert_sha256",
			g_variant_new_string(as_engine_get_cert_sha256(self->engine)));
	g_variant_builder_add(&b, "{sv}", "auth_required", g_variant_new_boolean(config->auth));
	g_variant_builder_add(&b, "{sv}", "token_backend",
			      g_variant_new_string(as_token_store_get_backend_name(
				      as_engine_get_token_store(self->engine))));
	as_dbus_manager1_complete_get_status(manager, invocation, g_variant_builder_end(&b));
	return G_DBUS_METHOD_INVOCATION_HANDLED;
}

typedef struct {
	const gchar *direction;
	gboolean success_only;
} AsHistoryFilter;

static gboolean
as_dbus_history_filter_cb(JsonObject *obj, gpointer user_data)
{
	AsHistoryFilter *filter = user_data;
	if (filter->direction != NULL &&
	    g_strcmp0(json_object_get_string_member_with_default(obj, "direction", ""),
		      filter->direction) != 0)
		return FALSE;
	if (filter->success_only &&
	    !json_object_get_boolean_member_with_default(obj, "success", FALSE))
		return FALSE;
	return TRUE;
}

static gboolean
as_dbus_handle_get_history_cb(AsDbusManager1 *manager,
			      GDBusMethodInvocation *invocation,
			      GVariant *options,
			      gpointer user_data)
{
	AsDbusService *self = AS_DBUS_SERVICE(user_data);
	AsHistoryFilter filter = {NULL, FALSE};
	guint32 limit = AS_DBUS_HISTORY_DEFAULT_LIMIT;
	g_autoptr(GPtrArray) entries = NULL;
	g_autoptr(GError) error = NULL;
	GVariantBuilder b;

	g_variant_lookup(options, AS_KEY_LIMIT, "u", &limit);
	g_variant_lookup(options, AS_KEY_DIRECTION, "&s", &filter.direction);
	g_variant_lookup(options, AS_KEY_SUCCESS_ONLY, "b", &filter.success_only);
	if (filter.direction != NULL && g_strcmp0(filter.direction, "send") != 0 &&
	    g_strcmp0(filter.direction, "receive") != 0) {
		g_dbus_method_invocation_return_error(invocation, AS_ERROR,
						      AS_ERROR_INVALID_ARGUMENT,
						      "Direction must be 'send' or 'receive'");
		return G_DBUS_METHOD_INVOCATION_HANDLED;
	}
	if (limit == 0 || limit > AS_DBUS_HISTORY_MAX_LIMIT)
		limit = AS_DBUS_HISTORY_MAX_LIMIT;

	entries = as_jsonl_log_read_tail(as_engine_get_history(self->engine), limit,
					 as_dbus_history_filter_cb, &filter, &error);
	if (entries == NULL) {
		as_dbus_return_error(invocation, g_steal_pointer(&error));
		return G_DBUS_METHOD_INVOCATION_HANDLED;
	}
	g_variant_builder_init(&b, G_VARIANT_TYPE("aa{sv}"));
	for (guint i = 0; i < entries->len; i++)
		g_variant_builder_add_value(
			&b, as_history_json_to_variant(g_ptr_array_index(entries, i)));
	as_dbus_manager1_complete_get_history(manager, invocation, g_variant_builder_end(&b));
	return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
as_dbus_handle_generate_token_cb(AsDbusManager1 *manager,
				 GDBusMethodInvocation *invocation,
				 GVariant *options,
				 gpointer user_data)
{
	AsDbusService *self = AS_DBUS_SERVICE(user_data);
	const gchar *label = NULL;
	guint64 expires_in = 0;
	g_autoptr(AsTokenInfo) info = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *token = NULL;

	g_variant_lookup(options, AS_KEY_LABEL, "&s", &label);
	g_variant_lookup(options, AS_KEY_EXPIRES_IN, "t", &expires_in);
	token = as_token_store_generate(as_engine_get_token_store(self->engine), label, expires_in,
					&info, &error);
	if (token == NULL) {
		as_dbus_return_error(invocation, g_steal_pointer(&error));
		return G_DBUS_METHOD_INVOCATION_HANDLED;
	}
	g_message("generated token %s (%s)", info->id, label != NULL ? label : "no label");
	as_dbus_manager1_complete_generate_token(manager, invocation, token,
						 as_dbus_token_info_to_variant(info));
	return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
as_dbus_handle_list_tokens_cb(AsDbusManager1 *manager,
			      GDBusMethodInvocation *invocation,
			      gpointer user_data)
{
	AsDbusService *self = AS_DBUS_SERVICE(user_data);
	g_autoptr(GPtrArray) infos = as_token_store_list(as_engine_get_token_store(self->engine));
	GVariantBuilder b;

	g_variant_builder_init(&b, G_VARIANT_TYPE("aa{sv}"));
	for (guint i = 0; i < infos->len; i++)
		g_variant_builder_add_value(
			&b, as_dbus_token_info_to_variant(g_ptr_array_index(infos, i)));
	as_dbus_manager1_complete_list_tokens(manager, invocation, g_variant_builder_end(&b));
	return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
as_dbus_handle_revoke_token_cb(AsDbusManager1 *manager,
			       GDBusMethodInvocation *invocation,
			       const gchar *prefix,
			       gpointer user_data)
{
	AsDbusService *self = AS_DBUS_SERVICE(user_data);
	g_autoptr(AsTokenInfo) info = NULL;
	g_autoptr(GError) error = NULL;

	if (strlen(prefix) < AS_DBUS_REVOKE_MIN_PREFIX) {
		g_dbus_method_invocation_return_error(
			invocation, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
			"give at least %d characters of the token id", AS_DBUS_REVOKE_MIN_PREFIX);
		return G_DBUS_METHOD_INVOCATION_HANDLED;
	}
	if (!as_token_store_revoke(as_engine_get_token_store(self->engine), prefix, &info,
				   &error)) {
		as_dbus_return_error(invocation, g_steal_pointer(&error));
		return G_DBUS_METHOD_INVOCATION_HANDLED;
	}
	g_message("revoked token %s", info != NULL ? info->id : "(legacy)");
	as_dbus_manager1_complete_revoke_token(manager, invocation);
	return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static void
as_dbus_send_done_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GDBusMethodInvocation) invocation = G_DBUS_METHOD_INVOCATION(user_data);
	g_autoptr(GError) error = NULL;
	g_autofree gchar *id = as_sender_send_finish(AS_SENDER(source), res, &error);
	g_autofree gchar *path = NULL;

	if (id == NULL) {
		as_dbus_return_error(invocation, g_steal_pointer(&error));
		return;
	}
	/* the transfer object was exported when the job registered it with the engine */
	path = as_dbus_service_transfer_path(id);
	g_dbus_method_invocation_return_value(invocation, g_variant_new("(o)", path));
}

static gboolean
as_dbus_handle_send_cb(AsDbusManager1 *manager,
		       GDBusMethodInvocation *invocation,
		       const gchar *const *paths,
		       const gchar *destination,
		       GVariant *options,
		       gpointer user_data)
{
	AsDbusService *self = AS_DBUS_SERVICE(user_data);

	if (self->sender == NULL) {
		g_dbus_method_invocation_return_error_literal(
			invocation, AS_ERROR, AS_ERROR_NOT_SUPPORTED, "this daemon does not send");
		return G_DBUS_METHOD_INVOCATION_HANDLED;
	}
	as_sender_send_async(self->sender, paths, destination, options, NULL, as_dbus_send_done_cb,
			     g_object_ref(invocation));
	return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static void
as_dbus_reloaded_cb(AsEngine *engine, gpointer user_data)
{
	AsDbusService *self = AS_DBUS_SERVICE(user_data);
	as_dbus_manager1_set_auth_required(self->manager, as_engine_get_config(engine)->auth);
}

static gboolean
as_dbus_handle_reload_cb(AsDbusManager1 *manager,
			 GDBusMethodInvocation *invocation,
			 gpointer user_data)
{
	AsDbusService *self = AS_DBUS_SERVICE(user_data);
	g_auto(GStrv) applied = NULL;
	g_auto(GStrv) restart = NULL;
	g_autoptr(GError) error = NULL;

	if (!as_engine_reload(self->engine, &applied, &restart, &error)) {
		g_warning("reload refused, the configuration in force stays: %s", error->message);
		as_dbus_return_error(invocation, g_steal_pointer(&error));
		return G_DBUS_METHOD_INVOCATION_HANDLED;
	}
	as_dbus_manager1_complete_reload(manager, invocation, (const gchar *const *)applied,
					 (const gchar *const *)restart);
	return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
as_dbus_handle_pause_cb(AsDbusTransfer1 *iface,
			GDBusMethodInvocation *invocation,
			gpointer user_data)
{
	g_autoptr(GError) error = NULL;
	if (!as_transfer_pause(AS_TRANSFER(user_data), &error))
		as_dbus_return_error(invocation, g_steal_pointer(&error));
	else
		as_dbus_transfer1_complete_pause(iface, invocation);
	return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
as_dbus_handle_resume_cb(AsDbusTransfer1 *iface,
			 GDBusMethodInvocation *invocation,
			 gpointer user_data)
{
	g_autoptr(GError) error = NULL;
	if (!as_transfer_resume(AS_TRANSFER(user_data), &error))
		as_dbus_return_error(invocation, g_steal_pointer(&error));
	else
		as_dbus_transfer1_complete_resume(iface, invocation);
	return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
as_dbus_handle_cancel_cb(AsDbusTransfer1 *iface,
			 GDBusMethodInvocation *invocation,
			 gpointer user_data)
{
	g_autoptr(GError) error = NULL;
	if (!as_transfer_cancel(AS_TRANSFER(user_data), &error))
		as_dbus_return_error(invocation, g_steal_pointer(&error));
	else
		as_dbus_transfer1_complete_cancel(iface, invocation);
	return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
as_dbus_handle_set_rate_limit_cb(AsDbusTransfer1 *iface,
				 GDBusMethodInvocation *invocation,
				 guint64 bytes_per_second,
				 gpointer user_data)
{
	g_autoptr(GError) error = NULL;
	if (!as_transfer_request_rate_limit(AS_TRANSFER(user_data), bytes_per_second, &error))
		as_dbus_return_error(invocation, g_steal_pointer(&error));
	else
		as_dbus_transfer1_complete_set_rate_limit(iface, invocation);
	return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static void
as_dbus_transfer_added_cb(AsEngine *engine, AsTransfer *transfer, gpointer user_data)
{
	AsDbusService *self = AS_DBUS_SERVICE(user_data);
	g_autofree gchar *path = as_dbus_service_transfer_path(as_transfer_get_id(transfer));
	g_autoptr(AsDbusObjectSkeleton) object = as_dbus_object_skeleton_new(path);
	g_autoptr(AsDbusTransfer1) iface = as_dbus_transfer1_skeleton_new();
	const gchar *props[] = {"id",	       "direction", "state",	  "filename",
				"saved-path",  "peer",	    "protocol",	  "bytes-done",
				"bytes-total", "sha256",    "error",	  "started-at",
				"destination", "files",	    "files-done", "files-failed",
				"rate",	       "eta",	    "rate-limit", NULL};

	/* mirror, don't hand-emit: PropertiesChanged comes from the bindings */
	for (guint i = 0; props[i] != NULL; i++)
		g_object_bind_property(transfer, props[i], iface, props[i], G_BINDING_SYNC_CREATE);
	g_signal_connect_object(iface, "handle-pause", G_CALLBACK(as_dbus_handle_pause_cb),
				transfer, 0);
	g_signal_connect_object(iface, "handle-resume", G_CALLBACK(as_dbus_handle_resume_cb),
				transfer, 0);
	g_signal_connect_object(iface, "handle-cancel", G_CALLBACK(as_dbus_handle_cancel_cb),
				transfer, 0);
	g_signal_connect_object(iface, "handle-set-rate-limit",
				G_CALLBACK(as_dbus_handle_set_rate_limit_cb), transfer, 0);
	as_dbus_object_skeleton_set_transfer1(object, iface);
	g_dbus_object_manager_server_export(self->object_manager, G_DBUS_OBJECT_SKELETON(object));
	g_hash_table_insert(self->objects, transfer, g_object_ref(object));
}

static void
as_dbus_transfer_removed_cb(AsEngine *engine, AsTransfer *transfer, gpointer user_data)
{
	AsDbusService *self = AS_DBUS_SERVICE(user_data);
	GDBusObject *object = g_hash_table_lookup(self->objects, transfer);
	if (object == NULL)
		return;
	g_dbus_object_manager_server_unexport(self->object_manager,
					      g_dbus_object_get_object_path(object));
	g_hash_table_remove(self->objects, transfer);
}

static void
as_dbus_transfer_finished_cb(AsEngine *engine, AsTransfer *transfer, gpointer user_data)
{
	AsDbusService *self = AS_DBUS_SERVICE(user_data);
	GDBusObject *object = g_hash_table_lookup(self->objects, transfer);
	GVariantBuilder b;
	const gchar *value;

	if (object == NULL)
		return;
	g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
	g_variant_builder_add(&b, "{sv}", "filename",
			      g_variant_new_string(as_transfer_get_filename(transfer)));
	g_variant_builder_add(&b, "{sv}", "direction",
			      g_variant_new_string(as_transfer_get_direction(transfer)));
	g_variant_builder_add(&b, "{sv}", "size",
			      g_variant_new_uint64(as_transfer_get_bytes_done(transfer)));
	g_variant_builder_add(&b, "{sv}", "peer",
			      g_variant_new_string(as_transfer_get_peer(transfer)));
	if ((value = as_transfer_get_sha256(transfer)) != NULL)
		g_variant_builder_add(&b, "{sv}", "sha256", g_variant_new_string(value));
	if ((value = as_transfer_get_saved_path(transfer)) != NULL)
		g_variant_builder_add(&b, "{sv}", "saved_path", g_variant_new_string(value));
	if ((value = as_transfer_get_error(transfer)) != NULL)
		g_variant_builder_add(&b, "{sv}", "error", g_variant_new_string(value));
	as_dbus_manager1_emit_transfer_finished(
		self->manager, g_dbus_object_get_object_path(object),
		as_transfer_state_to_string(as_transfer_get_state(transfer)),
		g_variant_builder_end(&b));
}

gboolean
as_dbus_service_start(AsDbusService *self, GDBusConnection *connection, GError **error)
{
	AsConfig *config = as_engine_get_config(self->engine);
	AsTokenStore *tokens = as_engine_get_token_store(self->engine);

	self->connection = g_object_ref(connection);
	self->manager = as_dbus_manager1_skeleton_new();
	as_dbus_manager1_set_version(self->manager, PACKAGE_VERSION);
	as_dbus_manager1_set_receive_directory(self->manager, config->save_to);
	as_dbus_manager1_set_auth_required(self->manager, config->auth);
	as_dbus_manager1_set_token_backend(self->manager, as_token_store_get_backend_name(tokens));
	as_dbus_manager1_set_protocols(self->manager, as_engine_get_protocols(self->engine));
	/* fixed for the life of the process, like the listeners */
	as_dbus_manager1_set_quic_port(self->manager, as_engine_get_quic_port(self->engine));
	as_dbus_manager1_set_https_port(self->manager, as_engine_get_https_port(self->engine));
	as_dbus_manager1_set_cert_sha256(self->manager,
					 as_engine_get_cert_sha256(self->engine) != NULL
						 ? as_engine_get_cert_sha256(self->engine)
						 : "");
	g_object_bind_property(self->engine, "http-port", self->manager, "http-port",
			       G_BINDING_SYNC_CREATE);
	g_object_bind_property(self->engine, "active-transfers", self->manager, "active-transfers",
			       G_BINDING_SYNC_CREATE);
	g_object_bind_property(self->engine, "received-files", self->manager, "received-files",
			       G_BINDING_SYNC_CREATE);

	g_signal_connect(self->manager, "handle-get-status",
			 G_CALLBACK(as_dbus_handle_get_status_cb), self);
	g_signal_connect(self->manager, "handle-get-history",
			 G_CALLBACK(as_dbus_handle_get_history_cb), self);
	g_signal_connect(self->manager, "handle-generate-token",
			 G_CALLBACK(as_dbus_handle_generate_token_cb), self);
	g_signal_connect(self->manager, "handle-list-tokens",
			 G_CALLBACK(as_dbus_handle_list_tokens_cb), self);
	g_signal_connect(self->manager, "handle-revoke-token",
			 G_CALLBACK(as_dbus_handle_revoke_token_cb), self);
	g_signal_connect(self->manager, "handle-reload", G_CALLBACK(as_dbus_handle_reload_cb),
			 self);
	g_signal_connect(self->manager, "handle-send", G_CALLBACK(as_dbus_handle_send_cb), self);

	if (!g_dbus_interface_skeleton_export(G_DBUS_INTERFACE_SKELETON(self->manager), connection,
					      AS_DBUS_PATH, error))
		return FALSE;

	/* transfers live below the manager; the ObjectManager sits on /org/aerosync */
	self->object_manager = g_dbus_object_manager_server_new(AS_DBUS_PATH);
	g_dbus_object_manager_server_set_connection(self->object_manager, connection);

	g_signal_connect_object(self->engine, "transfer-added",
				G_CALLBACK(as_dbus_transfer_added_cb), self, 0);
	g_signal_connect_object(self->engine, "reloaded", G_CALLBACK(as_dbus_reloaded_cb), self, 0);
	g_signal_connect_object(self->engine, "transfer-removed",
				G_CALLBACK(as_dbus_transfer_removed_cb), self, 0);
	g_signal_connect_object(self->engine, "transfer-finished",
				G_CALLBACK(as_dbus_transfer_finished_cb), self, 0);
	return TRUE;
}

/**
 * as_dbus_service_set_sender:
 * @sender: (nullable): what Manager1.Send() hands sends to
 *
 * Without a sender, Send() fails with org.aerosync.Error.NotSupported.
 **/
void
as_dbus_service_set_sender(AsDbusService *self, AsSender *sender)
{
	g_return_if_fail(AS_IS_DBUS_SERVICE(self));
	g_set_object(&self->sender, sender);
}

AsDbusService *
as_dbus_service_new(AsEngine *engine)
{
	AsDbusService *self = g_object_new(AS_TYPE_DBUS_SERVICE, NULL);
	self->engine = g_object_ref(engine);
	return self;
}

static void
as_dbus_service_dispose(GObject *object)
{
	AsDbusService *self = AS_DBUS_SERVICE(object);
	if (self->manager != NULL)
		g_dbus_interface_skeleton_unexport(G_DBUS_INTERFACE_SKELETON(self->manager));
	g_clear_object(&self->manager);
	g_clear_object(&self->object_manager);
	g_clear_object(&self->connection);
	g_clear_object(&self->sender);
	g_clear_object(&self->engine);
	G_OBJECT_CLASS(as_dbus_service_parent_class)->dispose(object);
}

static void
as_dbus_service_finalize(GObject *object)
{
	AsDbusService *self = AS_DBUS_SERVICE(object);
	g_hash_table_unref(self->objects);
	G_OBJECT_CLASS(as_dbus_service_parent_class)->finalize(object);
}

static void
as_dbus_service_class_init(AsDbusServiceClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);
	object_class->dispose = as_dbus_service_dispose;
	object_class->finalize = as_dbus_service_finalize;
}

static void
as_dbus_service_init(AsDbusService *self)
{
	self->objects = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, g_object_unref);
}
