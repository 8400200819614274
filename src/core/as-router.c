/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "AsRouter"

#include "config.h"

#include <gio/gio.h>

#include "as-error.h"
#include "as-path.h"
#include "as-router.h"

/*
 * Routing rules with AeroSync 0.x semantics: the first rule whose given criteria all match
 * decides the folder. A destination is a folder *inside* the receive directory, so a routed
 * file is staged, verified and published exactly like any other (same filesystem, same
 * confinement); 0.x took any path relative to its working directory.
 */

typedef struct {
	gchar *name;
	gchar *destination; /* sanitised relative folder */
	gchar *tag;	    /* nullable: X-AeroSync-Tag must equal it */
	GPtrArray *masks;   /* (element-type GInetAddressMask) nullable: any may match */
	GStrv extensions;   /* nullable: lower case, without the dot */
} AsRouteRule;

struct _AsRouter {
	GObject parent_instance;
	GPtrArray *rules; /* (element-type AsRouteRule) owned */
	GMutex mutex;	  /* rules are swapped on reload while other threads route */
};

G_DEFINE_TYPE(AsRouter, as_router, G_TYPE_OBJECT)

static void
as_route_rule_free(AsRouteRule *rule)
{
	g_free(rule->name);
	g_free(rule->destination);
	g_free(rule->tag);
	if (rule->masks != NULL)
		g_ptr_array_unref(rule->masks);
	g_strfreev(rule->extensions);
	g_free(rule);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(AsRouteRule, as_route_rule_free)

/* "::ffff:10.0.0.1" is an IPv4 peer on a dual-stack socket */
static GInetAddress *
as_router_parse_address(const gchar *text)
{
	g_autoptr(GInetAddress) addr = g_inet_address_new_from_string(text);
	if (addr == NULL)
		return NULL;
	if (g_inet_address_get_family(addr) == G_SOCKET_FAMILY_IPV6 &&
	    g_str_has_prefix(text, "::ffff:") && strchr(text + 7, '.') != NULL)
		return g_inet_address_new_from_string(text + 7);
	return g_steal_pointer(&addr);
}

static AsRouteRule *
as_router_parse_rule(GKeyFile *kf, const gchar *group, GError **error)
{
	g_autoptr(AsRouteRule) rule = g_new0(AsRouteRule, 1);
	g_autofree gchar *destination = NULL;
	g_auto(GStrv) keys = g_key_file_get_keys(kf, group, NULL, NULL);
	const gchar *known[] = {"destination", "tag", "sender-ip", "extension", NULL};

	rule->name = g_strdup(group + strlen(AS_ROUTER_GROUP_PREFIX));
	for (guint i = 0; keys != NULL && keys[i] != NULL; i++) {
		if (!g_strv_contains(known, keys[i])) {
			g_set_error(
				error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
				"[%s]: unknown key '%s' (destination, tag, sender-ip, extension)",
				group, keys[i]);
			return NULL;
		}
	}
	destination = g_key_file_get_string(kf, group, "destination", NULL);
	if (destination == NULL) {
		g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT, "[%s]: no destination",
			    group);
		return NULL;
	}
	/* a folder below the receive dir; the sanitiser wants a file name, so judge "dest/x" */
	{
		g_autofree gchar *probe = g_strdup_printf("%s/x", g_strstrip(destination));
		g_autofree gchar *clean = as_path_sanitize(probe, error);
		if (clean == NULL) {
			g_prefix_error(error, "[%s]: destination: ", group);
			return NULL;
		}
		rule->destination = g_strndup(clean, strlen(clean) - 2);
	}
	rule->tag = g_key_file_get_string(kf, group, "tag", NULL);
	if (g_key_file_has_key(kf, group, "sender-ip", NULL)) {
		g_auto(GStrv) ips = g_key_file_get_string_list(kf, group, "sender-ip", NULL, NULL);
		rule->masks = g_ptr_array_new_with_free_func(g_object_unref);
		for (guint i = 0; ips != NULL && ips[i] != NULL; i++) {
			g_autoptr(GError) error_local = NULL;
			GInetAddressMask *mask = g_inet_address_mask_new_from_string(
				g_strstrip(ips[i]), &error_local);
			if (mask == NULL) {
				g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
					    "[%s]: sender-ip '%s': %s", group, ips[i],
					    error_local->message);
				return NULL;
			}
			g_ptr_array_add(rule->masks, mask);
		}
	}
	if (g_key_file_has_key(kf, group, "extension", NULL)) {
		g_auto(GStrv) exts = g_key_file_get_string_list(kf, group, "extension", NULL, NULL);
		g_autoptr(GStrvBuilder) builder = g_strv_builder_new();
		for (guint i = 0; exts != NULL && exts[i] != NULL; i++) {
			const gchar *ext = g_strstrip(exts[i]);
			if (*ext == '.')
				ext++;
			if (*ext != '\0') {
				g_autofree gchar *lower = g_utf8_strdown(ext, -1);
				g_strv_builder_add(builder, lower);
			}
		}
		rule->extensions = g_strv_builder_end(builder);
	}
	return g_steal_pointer(&rule);
}

/* replaces all rules at once, or none when any rule is invalid */
gboolean
as_router_load_key_file(AsRouter *self, GKeyFile *kf, GError **error)
{
	g_autoptr(GPtrArray) rules =
		g_ptr_array_new_with_free_func((GDestroyNotify)as_route_rule_free);
	g_auto(GStrv) groups = g_key_file_get_groups(kf, NULL);

	for (guint i = 0; groups[i] != NULL; i++) {
		AsRouteRule *rule;
		if (!g_str_has_prefix(groups[i], AS_ROUTER_GROUP_PREFIX))
			continue;
		if (rules->len >= AS_ROUTER_MAX_RULES) {
			g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
				    "more than %d routes", AS_ROUTER_MAX_RULES);
			return FALSE;
		}
		rule = as_router_parse_rule(kf, groups[i], error);
		if (rule == NULL)
			return FALSE;
		g_ptr_array_add(rules, rule);
	}
	g_mutex_lock(&self->mutex);
	g_ptr_array_unref(self->rules);
	self->rules = g_steal_pointer(&rules);
	g_mutex_unlock(&self->mutex);
	return TRUE;
}

guint
as_router_get_count(AsRouter *self)
{
	guint count;
	g_mutex_lock(&self->mutex);
	count = self->rules->len;
	g_mutex_unlock(&self->mutex);
	return count;
}

static gboolean
as_route_rule_matches(AsRouteRule *rule,
		      const gchar *rel_path,
		      const gchar *tag,
		      GInetAddress *addr)
{
	if (rule->tag != NULL && g_strcmp0(rule->tag, tag) != 0)
		return FALSE;
	if (rule->masks != NULL) {
		gboolean any = FALSE;
		for (guint i = 0; addr != NULL && i < rule->masks->len && !any; i++)
			any = g_inet_address_mask_matches(g_ptr_array_index(rule->masks, i), addr);
		if (!any)
			return FALSE;
	}
	if (rule->extensions != NULL) {
		const gchar *base = strrchr(rel_path, '/');
		const gchar *dot;
		g_autofree gchar *ext = NULL;

		base = base != NULL ? base + 1 : rel_path;
		dot = strrchr(base, '.');
		if (dot == NULL || dot == base)
			return FALSE;
		ext = g_utf8_strdown(dot + 1, -1);
		if (!g_strv_contains((const gchar *const *)rule->extensions, ext))
			return FALSE;
	}
	return TRUE;
}

/**
 * as_router_route:
 * @rel_path: the sanitised relative path the sender asked for
 * @tag: (nullable): the X-AeroSync-Tag
 * @sender_ip: (nullable): the peer address
 * @rule_name: (out) (optional): the matching rule
 *
 * Returns: (transfer full): @rel_path below the first matching rule's destination, or a
 * copy of @rel_path when no rule matches
 **/
gchar *
as_router_route(AsRouter *self,
		const gchar *rel_path,
		const gchar *tag,
		const gchar *sender_ip,
		gchar **rule_name)
{
	g_autoptr(GInetAddress) addr =
		sender_ip != NULL ? as_router_parse_address(sender_ip) : NULL;
	gchar *routed = NULL;

	g_return_val_if_fail(AS_IS_ROUTER(self), NULL);
	g_return_val_if_fail(rel_path != NULL, NULL);

	g_mutex_lock(&self->mutex);
	for (guint i = 0; i < self->rules->len; i++) {
		AsRouteRule *rule = g_ptr_array_index(self->rules, i);
		if (!as_route_rule_matches(rule, rel_path, tag, addr))
			continue;
		routed = g_build_path("/", rule->destination, rel_path, NULL);
		if (rule_name != NULL)
			*rule_name = g_strdup(rule->name);
		break;
	}
	g_mutex_unlock(&self->mutex);
	return routed != NULL ? routed : g_strdup(rel_path);
}

AsRouter *
as_router_new(void)
{
	return g_object_new(AS_TYPE_ROUTER, NULL);
}

static void
as_router_finalize(GObject *object)
{
	AsRouter *self = AS_ROUTER(object);
	g_ptr_array_unref(self->rules);
	g_mutex_clear(&self->mutex);
	G_OBJECT_CLASS(as_router_parent_class)->finalize(object);
}

static void
as_router_class_init(AsRouterClass *klass)
{
	G_OBJECT_CLASS(klass)->finalize = as_router_finalize;
}

static void
as_router_init(AsRouter *self)
{
	self->rules = g_ptr_array_new_with_free_func((GDestroyNotify)as_route_rule_free);
	g_mutex_init(&self->mutex);
}
