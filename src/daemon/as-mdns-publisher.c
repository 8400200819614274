/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "AsMdnsPublisher"

#include "config.h"

#include <avahi-client/client.h>
#include <avahi-client/publish.h>
#include <avahi-common/alternative.h>
#include <avahi-common/error.h>
#include <avahi-common/malloc.h>
#include <avahi-glib/glib-watch.h>
#include <string.h>

#include "as-mdns-browser.h"
#include "as-mdns-publisher.h"

/* a DNS label: the instance name is one */
#define AS_MDNS_PUBLISHER_NAME_MAX 63
/* 0.x falls back to this when the host has no usable name */
#define AS_MDNS_PUBLISHER_NAME_FALLBACK "aerosync"
/* one TXT entry, "key=value", is at most 255 bytes on the wire */
#define AS_MDNS_PUBLISHER_TXT_ENTRY_MAX 255
/* "name #2", "name #3", ...: a network that takes this many is not going to free one */
#define AS_MDNS_PUBLISHER_RENAMES_MAX 100

struct _AsMdnsPublisher {
	GObject parent_instance;
	gchar *name;	 /* (owned): may become "name #2" after a collision */
	guint16 port;	 /* the HTTP port */
	GHashTable *txt; /* (owned) (element-type utf8 utf8) */
	AsMdnsPublisherState state;
	guint retry_ms;
	gboolean warned;	   /* Avahi's absence was reported since the last success */
	GMainContext *context;	   /* (owned) (nullable): the thread-default one of start() */
	AvahiGLibPoll *poll;	   /* (owned) (nullable): set while started */
	AvahiClient *client;	   /* (owned) (nullable) */
	AvahiEntryGroup *group;	   /* (owned) (nullable): belongs to client */
	gboolean group_filled;	   /* the service is in the group, committed */
	GSource *reconnect_source; /* (owned) (nullable) */
};

G_DEFINE_TYPE(AsMdnsPublisher, as_mdns_publisher, G_TYPE_OBJECT)

enum {
	PROP_0,
	PROP_NAME,
	PROP_STATE,
	PROP_LAST,
};

static GParamSpec *as_mdns_publisher_props[PROP_LAST] = {NULL};

static void as_mdns_publisher_register(AsMdnsPublisher *self);

/* TXT keys are printable ASCII without '=' (RFC 6763 section 6.4) */
static gboolean
as_mdns_publisher_txt_key_is_valid(const gchar *key)
{
	if (key == NULL || key[0] == '\0')
		return FALSE;
	for (const gchar *p = key; *p != '\0'; p++) {
		if (*p < 0x20 || *p > 0x7e || *p == '=')
			return FALSE;
	}
	return TRUE;
}

static GHashTable *
as_mdns_publisher_txt_copy(GHashTable *txt)
{
	GHashTable *copy = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	GHashTableIter iter;
	const gchar *key;
	const gchar *value;

	if (txt == NULL)
		return copy;
	g_hash_table_iter_init(&iter, txt);
	while (g_hash_table_iter_next(&iter, (gpointer *)&key, (gpointer *)&value)) {
		if (!as_mdns_publisher_txt_key_is_valid(key) || value == NULL ||
		    !g_utf8_validate(value, -1, NULL) ||
		    strlen(key) + 1 + strlen(value) > AS_MDNS_PUBLISHER_TXT_ENTRY_MAX) {
			g_warning("not publishing invalid TXT entry '%s'", key != NULL ? key : "");
			continue;
		}
		g_hash_table_insert(copy, g_strdup(key), g_strdup(value));
	}
	return copy;
}

/* sorted, so the record is the same whatever the hash order */
static AvahiStringList *
as_mdns_publisher_build_txt(AsMdnsPublisher *self)
{
	g_autoptr(GList) keys = g_hash_table_get_keys(self->txt);
	AvahiStringList *strlst = NULL;

	keys = g_list_sort(keys, (GCompareFunc)g_strcmp0);
	for (GList *l = keys; l != NULL; l = l->next) {
		strlst = avahi_string_list_add_pair(strlst, l->data,
						    g_hash_table_lookup(self->txt, l->data));
	}
	/* add_pair() prepends */
	return avahi_string_list_reverse(strlst);
}

static void
as_mdns_publisher_set_state(AsMdnsPublisher *self, AsMdnsPublisherState state)
{
	if (self->state == state)
		return;
	self->state = state;
	g_object_notify_by_pspec(G_OBJECT(self), as_mdns_publisher_props[PROP_STATE]);
}

static void
as_mdns_publisher_destroy_reconnect(AsMdnsPublisher *self)
{
	if (self->reconnect_source == NULL)
		return;
	g_source_destroy(self->reconnect_source);
	g_clear_pointer(&self->reconnect_source, g_source_unref);
}

/* the group belongs to the client: it goes first */
static void
as_mdns_publisher_disconnect(AsMdnsPublisher *self)
{
	g_clear_pointer(&self->group, avahi_entry_group_free);
	g_clear_pointer(&self->client, avahi_client_free);
	self->group_filled = FALSE;
}

static void as_mdns_publisher_connect(AsMdnsPublisher *self);

static gboolean
as_mdns_publisher_reconnect_cb(gpointer user_data)
{
	AsMdnsPublisher *self = user_data;

	g_clear_pointer(&self->reconnect_source, g_source_unref);
	as_mdns_publisher_disconnect(self);
	as_mdns_publisher_connect(self);
	return G_SOURCE_REMOVE;
}

/* avahi objects must not be freed inside their own callbacks: start again from a source */
static void
as_mdns_publisher_schedule_reconnect(AsMdnsPublisher *self, guint delay_ms)
{
	if (self->reconnect_source != NULL)
		return;
	self->reconnect_source =
		delay_ms == 0 ? g_idle_source_new() : g_timeout_source_new(delay_ms);
	g_source_set_callback(self->reconnect_source, as_mdns_publisher_reconnect_cb, self, NULL);
	g_source_attach(self->reconnect_source, self->context);
}

/* one warning while Avahi stays unavailable; publishing is never worth failing the daemon */
static void
as_mdns_publisher_set_unavailable(AsMdnsPublisher *self, const gchar *reason)
{
	as_mdns_publisher_set_state(self, AS_MDNS_PUBLISHER_STATE_WAITING);
	if (self->warned) {
		g_debug("still cannot publish on mDNS: %s", reason);
		return;
	}
	self->warned = TRUE;
	g_warning("cannot publish on mDNS: %s; AeroSync is announced once Avahi is available",
		  reason);
}

static void
as_mdns_publisher_fail(AsMdnsPublisher *self, const gchar *reason)
{
	as_mdns_publisher_set_unavailable(self, reason);
	as_mdns_publisher_schedule_reconnect(self, self->retry_ms);
}

static void
as_mdns_publisher_rename(AsMdnsPublisher *self)
{
	char *alternative = avahi_alternative_service_name(self->name);

	g_message("mDNS name '%s' is taken, using '%s'", self->name, alternative);
	g_free(self->name);
	self->name = g_strdup(alternative);
	avahi_free(alternative);
	g_object_notify_by_pspec(G_OBJECT(self), as_mdns_publisher_props[PROP_NAME]);
}

static void
as_mdns_publisher_group_cb(AvahiEntryGroup *group, AvahiEntryGroupState state, void *user_data)
{
	AsMdnsPublisher *self = user_data;

	/* called from inside avahi_entry_group_new() too, before it returns */
	if (self->group == NULL)
		self->group = group;

	switch (state) {
	case AVAHI_ENTRY_GROUP_ESTABLISHED:
		self->warned = FALSE;
		g_info("published %s as '%s' on port %u", AS_MDNS_SERVICE_TYPE, self->name,
		       self->port);
		as_mdns_publisher_set_state(self, AS_MDNS_PUBLISHER_STATE_ESTABLISHED);
		break;
	case AVAHI_ENTRY_GROUP_COLLISION:
		/* another host announced the name while we were probing */
		as_mdns_publisher_rename(self);
		avahi_entry_group_reset(group);
		self->group_filled = FALSE;
		as_mdns_publisher_register(self);
		break;
	case AVAHI_ENTRY_GROUP_FAILURE:
		as_mdns_publisher_fail(self, avahi_strerror(avahi_client_errno(
						     avahi_entry_group_get_client(group))));
		break;
	case AVAHI_ENTRY_GROUP_UNCOMMITED:
	case AVAHI_ENTRY_GROUP_REGISTERING:
	default:
		break;
	}
}

static void
as_mdns_publisher_register(AsMdnsPublisher *self)
{
	AvahiStringList *strlst;
	int rc = AVAHI_OK;

	if (self->client == NULL || avahi_client_get_state(self->client) != AVAHI_CLIENT_S_RUNNING)
		return;
	if (self->group == NULL) {
		AvahiEntryGroup *group =
			avahi_entry_group_new(self->client, as_mdns_publisher_group_cb, self);
		if (group == NULL) {
			as_mdns_publisher_fail(self,
					       avahi_strerror(avahi_client_errno(self->client)));
			return;
		}
		self->group = group;
	}
	if (self->group_filled)
		return;

	strlst = as_mdns_publisher_build_txt(self);
	for (guint i = 0; i <= AS_MDNS_PUBLISHER_RENAMES_MAX; i++) {
		rc = avahi_entry_group_add_service_strlst(
			self->group, AVAHI_IF_UNSPEC, AVAHI_PROTO_UNSPEC, 0, self->name,
			AS_MDNS_SERVICE_TYPE, NULL, NULL, self->port, strlst);
		/* a local collision: this avahi-daemon already has the name */
		if (rc != AVAHI_ERR_COLLISION)
			break;
		as_mdns_publisher_rename(self);
		avahi_entry_group_reset(self->group);
	}
	avahi_string_list_free(strlst);
	if (rc >= 0)
		rc = avahi_entry_group_commit(self->group);
	if (rc < 0) {
		g_autofree gchar *reason =
			g_strdup_printf("cannot add '%s': %s", self->name, avahi_strerror(rc));
		avahi_entry_group_reset(self->group);
		as_mdns_publisher_fail(self, reason);
		return;
	}
	self->group_filled = TRUE;
	as_mdns_publisher_set_state(self, AS_MDNS_PUBLISHER_STATE_REGISTERING);
}

static void
as_mdns_publisher_client_cb(AvahiClient *client, AvahiClientState state, void *user_data)
{
	AsMdnsPublisher *self = user_data;
	int error_code;

	/* called from inside avahi_client_new() too, before it returns */
	if (self->client == NULL)
		self->client = client;

	switch (state) {
	case AVAHI_CLIENT_S_RUNNING:
		as_mdns_publisher_register(self);
		break;
	case AVAHI_CLIENT_S_COLLISION:
	case AVAHI_CLIENT_S_REGISTERING:
		/* the host name is changing: withdraw, and announce again once it settles */
		if (self->group != NULL)
			avahi_entry_group_reset(self->group);
		self->group_filled = FALSE;
		as_mdns_publisher_set_state(self, AS_MDNS_PUBLISHER_STATE_REGISTERING);
		break;
	case AVAHI_CLIENT_CONNECTING:
		/* AVAHI_CLIENT_NO_FAIL: the client waits on the bus for the daemon to appear */
		as_mdns_publisher_set_unavailable(self, "avahi-daemon is not running");
		break;
	case AVAHI_CLIENT_FAILURE:
	default:
		error_code = avahi_client_errno(client);
		if (error_code == AVAHI_ERR_DISCONNECTED) {
			/* avahi-daemon (or the bus) went away: a new client waits for it */
			if (self->state == AS_MDNS_PUBLISHER_STATE_ESTABLISHED ||
			    self->state == AS_MDNS_PUBLISHER_STATE_REGISTERING) {
				g_message(
					"avahi-daemon went away; publishing again when it is back");
				self->warned = TRUE;
			}
			as_mdns_publisher_set_unavailable(self, avahi_strerror(error_code));
			as_mdns_publisher_schedule_reconnect(self, 0);
			break;
		}
		as_mdns_publisher_fail(self, avahi_strerror(error_code));
		break;
	}
}

static void
as_mdns_publisher_connect(AsMdnsPublisher *self)
{
	AvahiClient *client;
	int error_code = AVAHI_OK;

	/* AVAHI_CLIENT_NO_FAIL: succeed without a daemon and follow it coming and going; only a
	 * missing system bus makes this fail */
	client = avahi_client_new(avahi_glib_poll_get(self->poll), AVAHI_CLIENT_NO_FAIL,
				  as_mdns_publisher_client_cb, self, &error_code);
	if (client == NULL) {
		self->client = NULL;
		self->group = NULL;
		as_mdns_publisher_fail(self, avahi_strerror(error_code));
		return;
	}
	self->client = client;
}

/**
 * as_mdns_publisher_txt_new:
 * @ws_enabled: WebSocket events are served
 * @auth_required: senders need a token
 * @quic_port: the QUIC port, or 0 when QUIC is off
 * @fp: (nullable): the SHA-256 of the TLS certificate in hex, or %NULL without TLS
 *
 * Builds the TXT data of an AeroSync receiver: `version`, `ws` and `auth` as in 0.x, plus
 * `quic` and `fp` when there is something to say.
 *
 * Returns: (transfer full) (element-type utf8 utf8): the TXT keys and values
 */
GHashTable *
as_mdns_publisher_txt_new(gboolean ws_enabled,
			  gboolean auth_required,
			  guint16 quic_port,
			  const gchar *fp)
{
	GHashTable *txt = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);

	g_hash_table_insert(txt, g_strdup(AS_MDNS_TXT_VERSION), g_strdup(PACKAGE_VERSION));
	g_hash_table_insert(txt, g_strdup(AS_MDNS_TXT_WS),
			    g_strdup(ws_enabled ? AS_MDNS_TXT_TRUE : AS_MDNS_TXT_FALSE));
	g_hash_table_insert(txt, g_strdup(AS_MDNS_TXT_AUTH),
			    g_strdup(auth_required ? AS_MDNS_TXT_TRUE : AS_MDNS_TXT_FALSE));
	if (quic_port != 0)
		g_hash_table_insert(txt, g_strdup(AS_MDNS_TXT_QUIC),
				    g_strdup_printf("%u", quic_port));
	if (fp != NULL && fp[0] != '\0')
		g_hash_table_insert(txt, g_strdup(AS_MDNS_TXT_FP), g_strdup(fp));
	return txt;
}

/**
 * as_mdns_publisher_txt_add_https:
 * @txt: from as_mdns_publisher_txt_new()
 * @https_port: the HTTPS port, or 0 when HTTPS is off
 *
 * Adds `https=<port>` when HTTPS is on: a sender can then go there and pin `fp`.
 */
void
as_mdns_publisher_txt_add_https(GHashTable *txt, guint16 https_port)
{
	g_return_if_fail(txt != NULL);
	if (https_port != 0)
		g_hash_table_insert(txt, g_strdup(AS_MDNS_TXT_HTTPS),
				    g_strdup_printf("%u", https_port));
}

/* the host name as 0.x used it, cut to one DNS label on a character boundary */
static gchar *
as_mdns_publisher_make_name(const gchar *instance_name)
{
	const gchar *host = g_get_host_name();
	g_autofree gchar *name = NULL;
	gchar *end;

	if (instance_name != NULL && instance_name[0] != '\0')
		name = g_utf8_make_valid(instance_name, -1);
	else if (host != NULL && host[0] != '\0' && g_strcmp0(host, "localhost") != 0)
		name = g_utf8_make_valid(host, -1);
	else
		name = g_strdup(AS_MDNS_PUBLISHER_NAME_FALLBACK);
	if (strlen(name) > AS_MDNS_PUBLISHER_NAME_MAX) {
		end = g_utf8_find_prev_char(name, name + AS_MDNS_PUBLISHER_NAME_MAX + 1);
		*end = '\0';
	}
	return g_steal_pointer(&name);
}

/**
 * as_mdns_publisher_new:
 * @instance_name: (nullable): the service name to announce, or %NULL for the host name
 * @http_port: the HTTP port, announced as the service port
 * @txt: (nullable) (element-type utf8 utf8): TXT data, usually from
 *   as_mdns_publisher_txt_new(); copied
 *
 * Returns: (transfer full): a publisher of `_aerosync._tcp`; nothing happens until
 *   as_mdns_publisher_start()
 */
AsMdnsPublisher *
as_mdns_publisher_new(const gchar *instance_name, guint16 http_port, GHashTable *txt)
{
	AsMdnsPublisher *self = g_object_new(AS_TYPE_MDNS_PUBLISHER, NULL);

	self->name = as_mdns_publisher_make_name(instance_name);
	self->port = http_port;
	g_hash_table_unref(self->txt);
	self->txt = as_mdns_publisher_txt_copy(txt);
	return self;
}

/**
 * as_mdns_publisher_start:
 * @self: a #AsMdnsPublisher
 *
 * Announces the service through avahi-daemon, on the thread-default main context. Never
 * fails: without Avahi one warning is logged and the service is announced when avahi-daemon
 * appears; a name taken on the network becomes "name #2"; a restarted avahi-daemon gets the
 * service again.
 */
void
as_mdns_publisher_start(AsMdnsPublisher *self)
{
	g_return_if_fail(AS_IS_MDNS_PUBLISHER(self));

	if (self->poll != NULL)
		return;
	self->context = g_main_context_ref_thread_default();
	self->poll = avahi_glib_poll_new(self->context, G_PRIORITY_DEFAULT);
	as_mdns_publisher_connect(self);
}

/**
 * as_mdns_publisher_update_txt:
 * @self: a #AsMdnsPublisher
 * @txt: (element-type utf8 utf8): the new TXT data, replacing the old; copied
 *
 * Changes the TXT record, in place when the service is announced (e.g. after a reload
 * turned auth on).
 */
void
as_mdns_publisher_update_txt(AsMdnsPublisher *self, GHashTable *txt)
{
	AvahiStringList *strlst;
	int rc;

	g_return_if_fail(AS_IS_MDNS_PUBLISHER(self));
	g_return_if_fail(txt != NULL);

	g_hash_table_unref(self->txt);
	self->txt = as_mdns_publisher_txt_copy(txt);
	if (self->group == NULL || !self->group_filled)
		return;
	strlst = as_mdns_publisher_build_txt(self);
	rc = avahi_entry_group_update_service_txt_strlst(self->group, AVAHI_IF_UNSPEC,
							 AVAHI_PROTO_UNSPEC, 0, self->name,
							 AS_MDNS_SERVICE_TYPE, NULL, strlst);
	avahi_string_list_free(strlst);
	if (rc < 0) {
		g_debug("cannot update the TXT record in place (%s): announcing again",
			avahi_strerror(rc));
		avahi_entry_group_reset(self->group);
		self->group_filled = FALSE;
		as_mdns_publisher_register(self);
	}
}

/**
 * as_mdns_publisher_stop:
 * @self: a #AsMdnsPublisher
 *
 * Withdraws the service (avahi-daemon sends the goodbye packets). as_mdns_publisher_start()
 * may be called again.
 */
void
as_mdns_publisher_stop(AsMdnsPublisher *self)
{
	g_return_if_fail(AS_IS_MDNS_PUBLISHER(self));

	as_mdns_publisher_destroy_reconnect(self);
	as_mdns_publisher_disconnect(self);
	g_clear_pointer(&self->poll, avahi_glib_poll_free);
	g_clear_pointer(&self->context, g_main_context_unref);
	self->warned = FALSE;
	as_mdns_publisher_set_state(self, AS_MDNS_PUBLISHER_STATE_STOPPED);
}

/**
 * as_mdns_publisher_get_name:
 * @self: a #AsMdnsPublisher
 *
 * Returns: the instance name announced, which changes after a collision
 */
const gchar *
as_mdns_publisher_get_name(AsMdnsPublisher *self)
{
	g_return_val_if_fail(AS_IS_MDNS_PUBLISHER(self), NULL);
	return self->name;
}

AsMdnsPublisherState
as_mdns_publisher_get_state(AsMdnsPublisher *self)
{
	g_return_val_if_fail(AS_IS_MDNS_PUBLISHER(self), AS_MDNS_PUBLISHER_STATE_STOPPED);
	return self->state;
}

/**
 * as_mdns_publisher_set_retry_interval:
 * @self: a #AsMdnsPublisher
 * @retry_ms: the pause before trying again when the system bus is missing or publishing
 *   failed, default %AS_MDNS_PUBLISHER_RETRY_DEFAULT_MS
 */
void
as_mdns_publisher_set_retry_interval(AsMdnsPublisher *self, guint retry_ms)
{
	g_return_if_fail(AS_IS_MDNS_PUBLISHER(self));
	g_return_if_fail(retry_ms > 0);
	self->retry_ms = retry_ms;
}

static void
as_mdns_publisher_get_property(GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
	AsMdnsPublisher *self = AS_MDNS_PUBLISHER(object);

	switch (prop_id) {
	case PROP_NAME:
		g_value_set_string(value, self->name);
		break;
	case PROP_STATE:
		g_value_set_uint(value, self->state);
		break;
	default:
		G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
		break;
	}
}

static void
as_mdns_publisher_dispose(GObject *object)
{
	AsMdnsPublisher *self = AS_MDNS_PUBLISHER(object);

	as_mdns_publisher_destroy_reconnect(self);
	as_mdns_publisher_disconnect(self);
	g_clear_pointer(&self->poll, avahi_glib_poll_free);
	g_clear_pointer(&self->context, g_main_context_unref);
	G_OBJECT_CLASS(as_mdns_publisher_parent_class)->dispose(object);
}

static void
as_mdns_publisher_finalize(GObject *object)
{
	AsMdnsPublisher *self = AS_MDNS_PUBLISHER(object);

	g_free(self->name);
	g_hash_table_unref(self->txt);
	G_OBJECT_CLASS(as_mdns_publisher_parent_class)->finalize(object);
}

static void
as_mdns_publisher_init(AsMdnsPublisher *self)
{
	self->txt = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	self->retry_ms = AS_MDNS_PUBLISHER_RETRY_DEFAULT_MS;
	self->state = AS_MDNS_PUBLISHER_STATE_STOPPED;
}

static void
as_mdns_publisher_class_init(AsMdnsPublisherClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);

	object_class->get_property = as_mdns_publisher_get_property;
	object_class->dispose = as_mdns_publisher_dispose;
	object_class->finalize = as_mdns_publisher_finalize;

	/**
	 * AsMdnsPublisher:name:
	 *
	 * The instance name announced; "name #2" and so on after a collision.
	 */
	as_mdns_publisher_props[PROP_NAME] = g_param_spec_string(
		"name", NULL, NULL, NULL,
		G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);

	/**
	 * AsMdnsPublisher:state:
	 *
	 * An #AsMdnsPublisherState.
	 */
	as_mdns_publisher_props[PROP_STATE] = g_param_spec_uint(
		"state", NULL, NULL, AS_MDNS_PUBLISHER_STATE_STOPPED,
		AS_MDNS_PUBLISHER_STATE_ESTABLISHED, AS_MDNS_PUBLISHER_STATE_STOPPED,
		G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);

	g_object_class_install_properties(object_class, PROP_LAST, as_mdns_publisher_props);
}
