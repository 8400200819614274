/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "AsMdnsBrowser"

#include "config.h"

#include <avahi-client/client.h>
#include <avahi-client/lookup.h>
#include <avahi-common/error.h>
#include <avahi-common/malloc.h>
#include <avahi-glib/glib-watch.h>
#include <net/if.h>
#include <string.h>

#include "as-error.h"
#include "as-mdns-browser.h"

/* a TXT entry is at most 255 bytes on the wire, key included */
#define AS_MDNS_TXT_VALUE_MAX 255
/* SHA-256 in hex */
#define AS_MDNS_FP_HEX_MAX 64
/* "aerosyncctl send FILE NAME.local" */
#define AS_MDNS_LOCAL_SUFFIX ".local"

G_DEFINE_BOXED_TYPE(AsMdnsPeer, as_mdns_peer, as_mdns_peer_copy, as_mdns_peer_free)

/**
 * as_mdns_peer_new:
 *
 * Returns: (transfer full): an empty peer
 */
AsMdnsPeer *
as_mdns_peer_new(void)
{
	return g_new0(AsMdnsPeer, 1);
}

AsMdnsPeer *
as_mdns_peer_copy(const AsMdnsPeer *self)
{
	AsMdnsPeer *copy;

	g_return_val_if_fail(self != NULL, NULL);
	copy = as_mdns_peer_new();
	copy->name = g_strdup(self->name);
	copy->host = g_strdup(self->host);
	copy->port = self->port;
	copy->addr = g_strdup(self->addr);
	copy->version = g_strdup(self->version);
	copy->ws = self->ws;
	copy->auth = self->auth;
	copy->quic = self->quic;
	copy->https = self->https;
	copy->fp = g_strdup(self->fp);
	return copy;
}

void
as_mdns_peer_free(AsMdnsPeer *self)
{
	if (self == NULL)
		return;
	g_free(self->name);
	g_free(self->host);
	g_free(self->addr);
	g_free(self->version);
	g_free(self->fp);
	g_free(self);
}

/* network text becomes a string only when it is UTF-8 without control characters */
static gchar *
as_mdns_dup_text(const gchar *value, gsize value_len)
{
	const gchar *end = value + value_len;

	if (value_len == 0 || value_len > AS_MDNS_TXT_VALUE_MAX ||
	    !g_utf8_validate_len(value, value_len, NULL))
		return NULL;
	for (const gchar *p = value; p < end; p = g_utf8_next_char(p)) {
		if (g_unichar_iscntrl(g_utf8_get_char(p)))
			return NULL;
	}
	return g_strndup(value, value_len);
}

/* a key without a value is boolean true (RFC 6763 section 6.4); 0.x writes "true"/"false" */
static gboolean
as_mdns_parse_bool(const gchar *value, gsize value_len, gboolean *result)
{
	g_autofree gchar *text = NULL;

	if (value == NULL) {
		*result = TRUE;
		return TRUE;
	}
	text = g_strndup(value, value_len);
	if (g_ascii_strcasecmp(text, AS_MDNS_TXT_TRUE) == 0 || g_strcmp0(text, "1") == 0 ||
	    g_ascii_strcasecmp(text, "yes") == 0) {
		*result = TRUE;
		return TRUE;
	}
	if (g_ascii_strcasecmp(text, AS_MDNS_TXT_FALSE) == 0 || g_strcmp0(text, "0") == 0 ||
	    g_ascii_strcasecmp(text, "no") == 0) {
		*result = FALSE;
		return TRUE;
	}
	return FALSE;
}

/* hex with optional colons ("AB:12" or "ab12"), returned lower-case without colons */
static gchar *
as_mdns_parse_fp(const gchar *value, gsize value_len)
{
	g_autoptr(GString) hex = g_string_new(NULL);

	for (gsize i = 0; i < value_len; i++) {
		if (value[i] == ':')
			continue;
		if (!g_ascii_isxdigit(value[i]) || hex->len >= AS_MDNS_FP_HEX_MAX)
			return NULL;
		g_string_append_c(hex, g_ascii_tolower(value[i]));
	}
	if (hex->len == 0 || hex->len % 2 != 0)
		return NULL;
	return g_string_free(g_steal_pointer(&hex), FALSE);
}

/**
 * as_mdns_peer_set_txt_value:
 * @self: a #AsMdnsPeer
 * @key: a TXT key, compared without case
 * @value: (nullable) (array length=value_len): the value as received, not NUL-terminated,
 *   or %NULL for a key without "="
 * @value_len: the length of @value in bytes
 *
 * Applies one TXT entry. This is a pure parser over network data: unknown keys and values
 * that do not parse leave @self unchanged.
 *
 * Returns: %TRUE if the entry was understood and applied
 */
/* a port number, 1 to 65535, in decimal */
static gboolean
as_mdns_parse_port(const gchar *value, gsize value_len, guint16 *port)
{
	g_autofree gchar *text = NULL;
	guint64 number = 0;

	if (value == NULL)
		return FALSE;
	text = g_strndup(value, value_len);
	if (!g_ascii_string_to_unsigned(text, 10, 1, G_MAXUINT16, &number, NULL))
		return FALSE;
	*port = (guint16)number;
	return TRUE;
}

gboolean
as_mdns_peer_set_txt_value(AsMdnsPeer *self, const gchar *key, const gchar *value, gsize value_len)
{
	g_return_val_if_fail(self != NULL, FALSE);
	g_return_val_if_fail(key != NULL, FALSE);

	if (value != NULL && value_len > AS_MDNS_TXT_VALUE_MAX)
		return FALSE;
	if (g_ascii_strcasecmp(key, AS_MDNS_TXT_VERSION) == 0) {
		gchar *version = value != NULL ? as_mdns_dup_text(value, value_len) : NULL;
		if (version == NULL)
			return FALSE;
		g_free(self->version);
		self->version = version;
		return TRUE;
	}
	if (g_ascii_strcasecmp(key, AS_MDNS_TXT_WS) == 0)
		return as_mdns_parse_bool(value, value_len, &self->ws);
	if (g_ascii_strcasecmp(key, AS_MDNS_TXT_AUTH) == 0)
		return as_mdns_parse_bool(value, value_len, &self->auth);
	if (g_ascii_strcasecmp(key, AS_MDNS_TXT_QUIC) == 0)
		return as_mdns_parse_port(value, value_len, &self->quic);
	if (g_ascii_strcasecmp(key, AS_MDNS_TXT_HTTPS) == 0)
		return as_mdns_parse_port(value, value_len, &self->https);
	if (g_ascii_strcasecmp(key, AS_MDNS_TXT_FP) == 0) {
		gchar *fp = value != NULL ? as_mdns_parse_fp(value, value_len) : NULL;
		if (fp == NULL)
			return FALSE;
		g_free(self->fp);
		self->fp = fp;
		return TRUE;
	}
	return FALSE;
}

/* "NAME.local" (a host), or "@instance" (a service name) */
static gboolean
as_mdns_target_is_host(const gchar *target)
{
	gsize len = strlen(target);
	gsize suffix_len = strlen(AS_MDNS_LOCAL_SUFFIX);

	/* a fully qualified "NAME.local." too */
	if (len > 0 && target[len - 1] == '.')
		len--;
	return len > suffix_len &&
	       g_ascii_strncasecmp(target + len - suffix_len, AS_MDNS_LOCAL_SUFFIX, suffix_len) ==
		       0 &&
	       target[len - suffix_len - 1] != '.';
}

/* @prefix, the announced address (an IPv6 one in brackets) or host name, and @port */
static gchar *
as_mdns_peer_dup_address(const AsMdnsPeer *self, const gchar *prefix, guint16 port)
{
	const gchar *host = self->addr != NULL ? self->addr : self->host;

	g_return_val_if_fail(host != NULL, NULL);
	if (strchr(host, ':') != NULL)
		return g_strdup_printf("%s[%s]:%u", prefix, host, port);
	return g_strdup_printf("%s%s:%u", prefix, host, port);
}

/**
 * as_mdns_peer_dup_destination:
 * @self: a resolved peer
 *
 * Where to reach the peer's HTTP side: its announced address (IPv4 when it has one, IPv6 in
 * brackets) or, without one, its host name, and the announced port. The QUIC port and the
 * certificate to pin are @self->quic and @self->fp.
 *
 * Returns: (transfer full): e.g. `192.0.2.5:7788` or `[2001:db8::5]:7788`
 */
gchar *
as_mdns_peer_dup_destination(const AsMdnsPeer *self)
{
	g_return_val_if_fail(self != NULL, NULL);
	return as_mdns_peer_dup_address(self, "", self->port);
}

/**
 * as_mdns_peer_dup_https_destination:
 * @self: a resolved peer
 *
 * Where to reach the peer over HTTPS, at the same address as as_mdns_peer_dup_destination(),
 * when its announcement has an `https` port; the certificate to expect is @self->fp.
 *
 * Returns: (transfer full) (nullable): e.g. `https://192.0.2.5:7790`, or %NULL
 */
gchar *
as_mdns_peer_dup_https_destination(const AsMdnsPeer *self)
{
	g_return_val_if_fail(self != NULL, NULL);
	if (self->https == 0)
		return NULL;
	return as_mdns_peer_dup_address(self, "https://", self->https);
}

/**
 * as_mdns_target_is_mdns:
 * @target: a destination as the user wrote it
 *
 * Returns: %TRUE for "NAME.local" (a host on the local network) and "@instance" (an AeroSync
 *   service name), the two forms as_mdns_resolve_async() accepts
 */
gboolean
as_mdns_target_is_mdns(const gchar *target)
{
	g_return_val_if_fail(target != NULL, FALSE);
	if (target[0] == '@')
		return target[1] != '\0';
	return as_mdns_target_is_host(target);
}

/* one browse or resolve: a client, a service browser and one resolver per announcement */

typedef enum {
	AS_MDNS_MATCH_ALL,	/* browse: every peer */
	AS_MDNS_MATCH_INSTANCE, /* "@instance" */
	AS_MDNS_MATCH_HOST,	/* "NAME.local" */
} AsMdnsMatch;

typedef struct AsMdnsBrowse AsMdnsBrowse;

/* one announcement (a service name seen on one interface over one protocol) resolved to one
 * address family: asking avahi for "any" address may give ::1 first where 127.0.0.1 exists,
 * so both families are asked for and IPv4 wins */
typedef struct {
	AsMdnsBrowse *browse;		/* (unowned) */
	AvahiServiceResolver *resolver; /* (owned) (nullable): until it answers */
	AsMdnsPeer *peer;		/* (owned) (nullable): once resolved */
	gboolean ipv4;			/* peer->addr is IPv4 */
	AvahiIfIndex interface;
} AsMdnsEntry;

struct AsMdnsBrowse {
	GTask *task;		      /* (owned) (nullable): until it returns */
	GMainContext *context;	      /* (owned) */
	AvahiGLibPoll *poll;	      /* (owned) (nullable) */
	AvahiClient *client;	      /* (owned) (nullable) */
	AvahiServiceBrowser *browser; /* (owned) (nullable) */
	GHashTable *entries;	      /* (owned) (element-type utf8 AsMdnsEntry) */
	GSource *timeout_source;      /* (owned) (nullable) */
	GSource *cancel_source;	      /* (owned) (nullable) */
	GSource *finish_source;	      /* (owned) (nullable) */
	GError *error;		      /* (owned) (nullable): the first failure */
	AsMdnsMatch match;
	gchar *match_name; /* (owned) (nullable): instance or host name */
	gboolean all_for_now;
};

static void
as_mdns_entry_free(AsMdnsEntry *entry)
{
	if (entry->resolver != NULL)
		avahi_service_resolver_free(entry->resolver);
	as_mdns_peer_free(entry->peer);
	g_free(entry);
}

static void
as_mdns_browse_destroy_source(GSource **source)
{
	if (*source == NULL)
		return;
	g_source_destroy(*source);
	g_clear_pointer(source, g_source_unref);
}

/* the resolvers and the browser belong to the client, so they go first */
static void
as_mdns_browse_teardown(AsMdnsBrowse *self)
{
	as_mdns_browse_destroy_source(&self->timeout_source);
	as_mdns_browse_destroy_source(&self->cancel_source);
	as_mdns_browse_destroy_source(&self->finish_source);
	g_hash_table_remove_all(self->entries);
	g_clear_pointer(&self->browser, avahi_service_browser_free);
	g_clear_pointer(&self->client, avahi_client_free);
	g_clear_pointer(&self->poll, avahi_glib_poll_free);
}

static void
as_mdns_browse_free(AsMdnsBrowse *self)
{
	as_mdns_browse_teardown(self);
	g_hash_table_unref(self->entries);
	g_clear_error(&self->error);
	g_free(self->match_name);
	g_main_context_unref(self->context);
	g_free(self);
}

static gboolean
as_mdns_browse_entry_matches(AsMdnsBrowse *self, AsMdnsEntry *entry)
{
	g_autofree gchar *host = NULL;
	g_autofree gchar *want = NULL;

	if (entry->peer == NULL)
		return FALSE;
	if (self->match == AS_MDNS_MATCH_ALL)
		return TRUE;
	if (self->match == AS_MDNS_MATCH_INSTANCE)
		return g_strcmp0(entry->peer->name, self->match_name) == 0;

	/* host names compare without case and without the root dot */
	host = g_ascii_strdown(entry->peer->host, -1);
	want = g_ascii_strdown(self->match_name, -1);
	if (g_str_has_suffix(host, "."))
		host[strlen(host) - 1] = '\0';
	if (g_str_has_suffix(want, "."))
		want[strlen(want) - 1] = '\0';
	return g_strcmp0(host, want) == 0;
}

/* IPv4 first, then the lower interface index so the choice is stable */
static gboolean
as_mdns_entry_is_better(AsMdnsEntry *entry, AsMdnsEntry *best)
{
	if (best == NULL)
		return TRUE;
	if (entry->ipv4 != best->ipv4)
		return entry->ipv4;
	return entry->interface < best->interface;
}

/* the best resolved announcement of each matching service name */
static GHashTable *
as_mdns_browse_collect(AsMdnsBrowse *self)
{
	GHashTable *best = g_hash_table_new(g_str_hash, g_str_equal);
	GHashTableIter iter;
	AsMdnsEntry *entry;

	g_hash_table_iter_init(&iter, self->entries);
	while (g_hash_table_iter_next(&iter, NULL, (gpointer *)&entry)) {
		if (!as_mdns_browse_entry_matches(self, entry))
			continue;
		if (as_mdns_entry_is_better(entry, g_hash_table_lookup(best, entry->peer->name)))
			g_hash_table_insert(best, entry->peer->name, entry);
	}
	return best;
}

static gint
as_mdns_peer_compare_cb(gconstpointer a, gconstpointer b)
{
	const AsMdnsPeer *peer_a = *(const AsMdnsPeer *const *)a;
	const AsMdnsPeer *peer_b = *(const AsMdnsPeer *const *)b;
	return g_utf8_collate(peer_a->name, peer_b->name);
}

static gboolean
as_mdns_browse_finish_cb(gpointer user_data)
{
	AsMdnsBrowse *self = user_data;
	g_autoptr(GTask) task = g_steal_pointer(&self->task);
	g_autoptr(GHashTable) best = NULL;
	g_autoptr(GPtrArray) peers =
		g_ptr_array_new_with_free_func((GDestroyNotify)as_mdns_peer_free);
	GHashTableIter iter;
	AsMdnsEntry *entry;

	if (self->error == NULL && g_task_return_error_if_cancelled(task)) {
		as_mdns_browse_teardown(self);
		return G_SOURCE_REMOVE;
	}
	best = as_mdns_browse_collect(self);
	g_hash_table_iter_init(&iter, best);
	while (g_hash_table_iter_next(&iter, NULL, (gpointer *)&entry))
		g_ptr_array_add(peers, as_mdns_peer_copy(entry->peer));
	g_ptr_array_sort(peers, as_mdns_peer_compare_cb);
	g_clear_pointer(&best, g_hash_table_unref);
	as_mdns_browse_teardown(self);

	if (self->error != NULL) {
		g_task_return_error(task, g_steal_pointer(&self->error));
		return G_SOURCE_REMOVE;
	}
	if (self->match == AS_MDNS_MATCH_ALL) {
		g_task_return_pointer(task, g_steal_pointer(&peers),
				      (GDestroyNotify)g_ptr_array_unref);
		return G_SOURCE_REMOVE;
	}
	if (peers->len == 0) {
		g_task_return_new_error(
			task, AS_ERROR, AS_ERROR_NOT_FOUND,
			self->match == AS_MDNS_MATCH_INSTANCE
				? "no AeroSync receiver named '%s' on the local network"
				: "no AeroSync receiver on host %s",
			self->match_name);
		return G_SOURCE_REMOVE;
	}
	/* several receivers on one host: the user has to say which */
	if (peers->len > 1) {
		g_autoptr(GString) names = g_string_new(NULL);
		for (guint i = 0; i < peers->len; i++) {
			const AsMdnsPeer *peer = g_ptr_array_index(peers, i);
			g_string_append_printf(names, "%s@%s", i > 0 ? ", " : "", peer->name);
		}
		g_task_return_new_error(task, AS_ERROR, AS_ERROR_AMBIGUOUS,
					"host %s announces %u AeroSync receivers: %s; name one of "
					"them as @instance",
					self->match_name, peers->len, names->str);
		return G_SOURCE_REMOVE;
	}
	g_task_return_pointer(task, g_steal_pointer(&g_ptr_array_index(peers, 0)),
			      (GDestroyNotify)as_mdns_peer_free);
	return G_SOURCE_REMOVE;
}

/* avahi objects must not be freed inside their own callbacks, so finishing waits for an idle */
static void
as_mdns_browse_finish_later(AsMdnsBrowse *self, GError *error)
{
	if (error != NULL) {
		if (self->error == NULL)
			self->error = error;
		else
			g_error_free(error);
	}
	if (self->finish_source != NULL || self->task == NULL)
		return;
	self->finish_source = g_idle_source_new();
	g_source_set_callback(self->finish_source, as_mdns_browse_finish_cb, self, NULL);
	g_source_attach(self->finish_source, self->context);
}

/* a resolve can end as soon as it has its peer with an IPv4 address, or once avahi has said
 * "all for now" and nothing is left to resolve; a browse always lasts its timeout */
static void
as_mdns_browse_check_done(AsMdnsBrowse *self)
{
	GHashTableIter iter;
	AsMdnsEntry *entry;
	gboolean pending = FALSE;
	gboolean found = FALSE;

	if (self->match == AS_MDNS_MATCH_ALL)
		return;
	g_hash_table_iter_init(&iter, self->entries);
	while (g_hash_table_iter_next(&iter, NULL, (gpointer *)&entry)) {
		if (entry->resolver != NULL)
			pending = TRUE;
		if (as_mdns_browse_entry_matches(self, entry)) {
			/* an instance name is unique; a host may announce several receivers, and
			 * "NAME.local" must not pick one of them by chance: it waits for them all
			 */
			if (entry->ipv4 && self->match == AS_MDNS_MATCH_INSTANCE) {
				as_mdns_browse_finish_later(self, NULL);
				return;
			}
			found = TRUE;
		}
	}
	if (self->all_for_now && !pending && found)
		as_mdns_browse_finish_later(self, NULL);
}

static gchar *
as_mdns_address_to_string(const AvahiAddress *address, AvahiIfIndex interface)
{
	gchar text[AVAHI_ADDRESS_STR_MAX] = {'\0'};
	gchar ifname[IF_NAMESIZE] = {'\0'};

	if (avahi_address_snprint(text, sizeof(text), address) == NULL)
		return NULL;
	/* fe80::/10 is only reachable through the interface it was seen on */
	if (address->proto == AVAHI_PROTO_INET6 && address->data.ipv6.address[0] == 0xfe &&
	    (address->data.ipv6.address[1] & 0xc0) == 0x80 && interface > 0 &&
	    if_indextoname((guint)interface, ifname) != NULL)
		return g_strdup_printf("%s%%%s", text, ifname);
	return g_strdup(text);
}

static void
as_mdns_browse_resolver_cb(AvahiServiceResolver *resolver,
			   AvahiIfIndex interface,
			   AvahiProtocol protocol,
			   AvahiResolverEvent event,
			   const char *name,
			   const char *type,
			   const char *domain,
			   const char *host_name,
			   const AvahiAddress *address,
			   uint16_t port,
			   AvahiStringList *txt,
			   AvahiLookupResultFlags flags,
			   void *user_data)
{
	AsMdnsEntry *entry = user_data;
	AsMdnsBrowse *self = entry->browse;
	g_autoptr(AsMdnsPeer) peer = NULL;
	g_autoptr(GHashTable) seen = NULL;

	/* a resolver answers once for us: it is freed here, as avahi's examples do */
	avahi_service_resolver_free(resolver);
	entry->resolver = NULL;

	if (event != AVAHI_RESOLVER_FOUND) {
		g_debug("cannot resolve '%s' on interface %d: %s", name, interface,
			avahi_strerror(avahi_client_errno(self->client)));
		as_mdns_browse_check_done(self);
		return;
	}

	peer = as_mdns_peer_new();
	peer->name = g_utf8_make_valid(name, -1);
	peer->host = g_utf8_make_valid(host_name, -1);
	peer->port = port;
	peer->addr = as_mdns_address_to_string(address, interface);

	/* RFC 6763 section 6.4: only the first occurrence of a key counts */
	seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	for (AvahiStringList *l = txt; l != NULL; l = avahi_string_list_get_next(l)) {
		char *key = NULL;
		char *value = NULL;
		size_t value_len = 0;
		g_autofree gchar *key_lower = NULL;

		if (avahi_string_list_get_pair(l, &key, &value, &value_len) < 0)
			continue;
		key_lower = g_ascii_strdown(key, -1);
		if (!g_hash_table_contains(seen, key_lower)) {
			if (!as_mdns_peer_set_txt_value(peer, key, value, value_len))
				g_debug("'%s' has an unknown or invalid TXT entry '%s'", name, key);
			g_hash_table_add(seen, g_steal_pointer(&key_lower));
		}
		avahi_free(key);
		avahi_free(value);
	}

	g_debug("resolved '%s' on interface %d: %s port %u", peer->name, interface,
		peer->addr != NULL ? peer->addr : "(no address)", port);
	entry->ipv4 = address->proto == AVAHI_PROTO_INET;
	as_mdns_peer_free(entry->peer);
	entry->peer = g_steal_pointer(&peer);
	as_mdns_browse_check_done(self);
}

static const AvahiProtocol as_mdns_address_protocols[] = {AVAHI_PROTO_INET, AVAHI_PROTO_INET6};

static gchar *
as_mdns_entry_key(AvahiIfIndex interface,
		  AvahiProtocol protocol,
		  AvahiProtocol address_protocol,
		  const gchar *name)
{
	return g_strdup_printf("%d/%d/%d/%s", interface, protocol, address_protocol, name);
}

static void
as_mdns_browse_add_entry(AsMdnsBrowse *self,
			 AvahiIfIndex interface,
			 AvahiProtocol protocol,
			 AvahiProtocol address_protocol,
			 const gchar *name,
			 const gchar *type,
			 const gchar *domain)
{
	g_autofree gchar *key = as_mdns_entry_key(interface, protocol, address_protocol, name);
	AsMdnsEntry *entry;

	if (g_hash_table_contains(self->entries, key))
		return;
	entry = g_new0(AsMdnsEntry, 1);
	entry->browse = self;
	entry->interface = interface;
	g_hash_table_insert(self->entries, g_steal_pointer(&key), entry);
	entry->resolver =
		avahi_service_resolver_new(self->client, interface, protocol, name, type, domain,
					   address_protocol, 0, as_mdns_browse_resolver_cb, entry);
	if (entry->resolver == NULL) {
		g_debug("cannot resolve '%s': %s", name,
			avahi_strerror(avahi_client_errno(self->client)));
	}
}

static void
as_mdns_browse_browser_cb(AvahiServiceBrowser *browser,
			  AvahiIfIndex interface,
			  AvahiProtocol protocol,
			  AvahiBrowserEvent event,
			  const char *name,
			  const char *type,
			  const char *domain,
			  AvahiLookupResultFlags flags,
			  void *user_data)
{
	AsMdnsBrowse *self = user_data;

	if (self->task == NULL || self->finish_source != NULL)
		return;
	switch (event) {
	case AVAHI_BROWSER_NEW:
		/* "@instance" needs only that one resolved */
		if (self->match == AS_MDNS_MATCH_INSTANCE && g_strcmp0(name, self->match_name) != 0)
			return;
		for (guint i = 0; i < G_N_ELEMENTS(as_mdns_address_protocols); i++) {
			as_mdns_browse_add_entry(self, interface, protocol,
						 as_mdns_address_protocols[i], name, type, domain);
		}
		break;
	case AVAHI_BROWSER_REMOVE:
		for (guint i = 0; i < G_N_ELEMENTS(as_mdns_address_protocols); i++) {
			g_autofree gchar *key = as_mdns_entry_key(
				interface, protocol, as_mdns_address_protocols[i], name);
			g_hash_table_remove(self->entries, key);
		}
		as_mdns_browse_check_done(self);
		break;
	case AVAHI_BROWSER_ALL_FOR_NOW:
		self->all_for_now = TRUE;
		as_mdns_browse_check_done(self);
		break;
	case AVAHI_BROWSER_CACHE_EXHAUSTED:
		break;
	case AVAHI_BROWSER_FAILURE:
	default:
		as_mdns_browse_finish_later(
			self, g_error_new(AS_ERROR, AS_ERROR_FAILED, "browsing for %s failed: %s",
					  AS_MDNS_SERVICE_TYPE,
					  avahi_strerror(avahi_client_errno(self->client))));
		break;
	}
}

static void
as_mdns_browse_client_cb(AvahiClient *client, AvahiClientState state, void *user_data)
{
	AsMdnsBrowse *self = user_data;

	/* without AVAHI_CLIENT_NO_FAIL the only failure left is the daemon going away */
	if (state != AVAHI_CLIENT_FAILURE)
		return;
	as_mdns_browse_finish_later(self, g_error_new(AS_ERROR, AS_ERROR_NOT_SUPPORTED,
						      "lost the connection to avahi-daemon: %s",
						      avahi_strerror(avahi_client_errno(client))));
}

static gboolean
as_mdns_browse_timeout_cb(gpointer user_data)
{
	AsMdnsBrowse *self = user_data;
	g_clear_pointer(&self->timeout_source, g_source_unref);
	as_mdns_browse_finish_later(self, NULL);
	return G_SOURCE_REMOVE;
}

static gboolean
as_mdns_browse_cancelled_cb(GCancellable *cancellable, gpointer user_data)
{
	AsMdnsBrowse *self = user_data;
	as_mdns_browse_finish_later(self, NULL);
	return G_SOURCE_REMOVE;
}

static void
as_mdns_browse_start(AsMdnsBrowse *self, guint timeout_ms, GCancellable *cancellable)
{
	int error_code = AVAHI_OK;

	self->timeout_source = g_timeout_source_new(timeout_ms);
	g_source_set_callback(self->timeout_source, as_mdns_browse_timeout_cb, self, NULL);
	g_source_attach(self->timeout_source, self->context);
	if (cancellable != NULL) {
		self->cancel_source = g_cancellable_source_new(cancellable);
		g_source_set_callback(self->cancel_source,
				      G_SOURCE_FUNC(as_mdns_browse_cancelled_cb), self, NULL);
		g_source_attach(self->cancel_source, self->context);
	}

	/* no AVAHI_CLIENT_NO_FAIL: a missing daemon is an answer, not something to wait for */
	self->poll = avahi_glib_poll_new(self->context, G_PRIORITY_DEFAULT);
	self->client = avahi_client_new(avahi_glib_poll_get(self->poll), 0,
					as_mdns_browse_client_cb, self, &error_code);
	if (self->client == NULL) {
		as_mdns_browse_finish_later(
			self, g_error_new(AS_ERROR, AS_ERROR_NOT_SUPPORTED,
					  "Avahi is not available: %s (is avahi-daemon running?)",
					  avahi_strerror(error_code)));
		return;
	}
	self->browser = avahi_service_browser_new(self->client, AVAHI_IF_UNSPEC, AVAHI_PROTO_UNSPEC,
						  AS_MDNS_SERVICE_TYPE, NULL, 0,
						  as_mdns_browse_browser_cb, self);
	if (self->browser == NULL) {
		as_mdns_browse_finish_later(
			self, g_error_new(AS_ERROR, AS_ERROR_FAILED, "cannot browse for %s: %s",
					  AS_MDNS_SERVICE_TYPE,
					  avahi_strerror(avahi_client_errno(self->client))));
	}
}

static AsMdnsBrowse *
as_mdns_browse_new(GTask *task)
{
	AsMdnsBrowse *self = g_new0(AsMdnsBrowse, 1);
	self->task = task;
	self->context = g_main_context_ref_thread_default();
	self->entries = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
					      (GDestroyNotify)as_mdns_entry_free);
	g_task_set_task_data(task, self, (GDestroyNotify)as_mdns_browse_free);
	return self;
}

/**
 * as_mdns_browse_async:
 * @timeout_ms: how long to listen for announcements
 * @cancellable: (nullable): a #GCancellable
 * @callback: called on the thread-default main context of the caller
 * @user_data: data for @callback
 *
 * Browses the local network for AeroSync receivers (`_aerosync._tcp`) through avahi-daemon
 * and resolves each one, for @timeout_ms. Needs no aerosyncd.
 */
void
as_mdns_browse_async(guint timeout_ms,
		     GCancellable *cancellable,
		     GAsyncReadyCallback callback,
		     gpointer user_data)
{
	GTask *task = g_task_new(NULL, cancellable, callback, user_data);
	AsMdnsBrowse *self;

	g_task_set_source_tag(task, as_mdns_browse_async);
	if (g_task_return_error_if_cancelled(task)) {
		g_object_unref(task);
		return;
	}
	self = as_mdns_browse_new(task);
	self->match = AS_MDNS_MATCH_ALL;
	as_mdns_browse_start(self, timeout_ms, cancellable);
}

/**
 * as_mdns_browse_finish:
 * @res: the #GAsyncResult
 * @error: a #GError, or %NULL
 *
 * Returns: (transfer container) (element-type AsMdnsPeer): the receivers found, sorted by
 *   name and possibly empty, or %NULL with %AS_ERROR_NOT_SUPPORTED when Avahi is unavailable
 */
GPtrArray *
as_mdns_browse_finish(GAsyncResult *res, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(res, NULL), NULL);
	return g_task_propagate_pointer(G_TASK(res), error);
}

/**
 * as_mdns_resolve_async:
 * @target: "NAME.local" for the AeroSync receiver on that host, or "@instance" for the one
 *   with that service name
 * @timeout_ms: how long to look at most
 * @cancellable: (nullable): a #GCancellable
 * @callback: called on the thread-default main context of the caller
 * @user_data: data for @callback
 *
 * Finds one AeroSync receiver, with its port, address and certificate fingerprint. Returns as
 * soon as the receiver is known with an IPv4 address.
 */
void
as_mdns_resolve_async(const gchar *target,
		      guint timeout_ms,
		      GCancellable *cancellable,
		      GAsyncReadyCallback callback,
		      gpointer user_data)
{
	GTask *task;
	AsMdnsBrowse *self;

	g_return_if_fail(target != NULL);

	task = g_task_new(NULL, cancellable, callback, user_data);
	g_task_set_source_tag(task, as_mdns_resolve_async);
	if (!as_mdns_target_is_mdns(target)) {
		g_task_return_new_error(task, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
					"'%s' is not an mDNS name: use NAME.local or @instance",
					target);
		g_object_unref(task);
		return;
	}
	if (g_task_return_error_if_cancelled(task)) {
		g_object_unref(task);
		return;
	}
	self = as_mdns_browse_new(task);
	if (target[0] == '@') {
		self->match = AS_MDNS_MATCH_INSTANCE;
		self->match_name = g_strdup(target + 1);
	} else {
		self->match = AS_MDNS_MATCH_HOST;
		self->match_name = g_strdup(target);
	}
	as_mdns_browse_start(self, timeout_ms, cancellable);
}

/**
 * as_mdns_resolve_finish:
 * @res: the #GAsyncResult
 * @error: a #GError, or %NULL
 *
 * Returns: (transfer full): the receiver, or %NULL with %AS_ERROR_NOT_FOUND when nothing
 *   answered in time, %AS_ERROR_AMBIGUOUS when "NAME.local" announces several receivers,
 *   %AS_ERROR_INVALID_ARGUMENT for a target that is not an mDNS name and
 *   %AS_ERROR_NOT_SUPPORTED when Avahi is unavailable
 */
AsMdnsPeer *
as_mdns_resolve_finish(GAsyncResult *res, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(res, NULL), NULL);
	return g_task_propagate_pointer(G_TASK(res), error);
}
