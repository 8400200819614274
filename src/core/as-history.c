/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "AsHistory"

#include "config.h"

#include "as-history.h"

/* the key types of GetHistory() entries, see data/org.aerosync.xml */
static const struct {
	const gchar *key;
	gchar type;
} as_history_keys[] = {
	{"id", 's'},	       {"filename", 's'},    {"saved_path", 's'},    {"size", 't'},
	{"sha256", 's'},       {"remote_ip", 's'},   {"protocol", 's'},	     {"direction", 's'},
	{"completed_at", 'x'}, {"duration_ms", 't'}, {"avg_speed_bps", 't'}, {"success", 'b'},
	{"error", 's'},
};

/* size * 1000 / duration without overflowing the product; JSON integers are signed */
static guint64
as_history_speed_bps(guint64 size, guint64 duration_ms)
{
	guint64 divisor = MAX(duration_ms, 1);
	guint64 q = size / divisor;
	guint64 r = size % divisor;

	if (q > G_MAXINT64 / 1000 - 1)
		return G_MAXINT64;
	if (r <= G_MAXUINT64 / 1000)
		return q * 1000 + r * 1000 / divisor;
	return q * 1000 + (guint64)((gdouble)r * 1000.0 / (gdouble)divisor);
}

static void
as_history_set_string(JsonObject *obj, const gchar *key, const gchar *value)
{
	if (value != NULL)
		json_object_set_string_member(obj, key, value);
	else
		json_object_set_null_member(obj, key);
}

static void
as_history_set_uint(JsonObject *obj, const gchar *key, guint64 value)
{
	json_object_set_int_member(obj, key, (gint64)MIN(value, (guint64)G_MAXINT64));
}

/**
 * as_history_record_to_json:
 * @rec: a record
 *
 * Builds a history line with the 0.x HistoryEntry keys in their 0.x order. %NULL strings
 * become JSON null, and avg_speed_bps is derived from the size and duration.
 *
 * Returns: (transfer full): a new object
 **/
JsonObject *
as_history_record_to_json(const AsHistoryRecord *rec)
{
	JsonObject *obj;
	g_autofree gchar *uuid = NULL;

	g_return_val_if_fail(rec != NULL, NULL);

	if (rec->id == NULL)
		uuid = g_uuid_string_random();
	obj = json_object_new();
	json_object_set_string_member(obj, "id", rec->id != NULL ? rec->id : uuid);
	as_history_set_string(obj, "filename", rec->filename);
	as_history_set_string(obj, "saved_path", rec->saved_path);
	as_history_set_uint(obj, "size", rec->size);
	as_history_set_string(obj, "sha256", rec->sha256);
	as_history_set_string(obj, "remote_ip", rec->remote_ip);
	as_history_set_string(obj, "protocol", rec->protocol);
	as_history_set_string(obj, "direction", rec->direction);
	json_object_set_int_member(obj, "completed_at", rec->completed_at_s);
	as_history_set_uint(obj, "duration_ms", rec->duration_ms);
	as_history_set_uint(obj, "avg_speed_bps",
			    as_history_speed_bps(rec->size, rec->duration_ms));
	json_object_set_boolean_member(obj, "success", rec->success);
	as_history_set_string(obj, "error", rec->error);
	return obj;
}

static GVariant *
as_history_node_to_variant(JsonNode *node, gchar type)
{
	GType vtype = json_node_get_value_type(node);

	switch (type) {
	case 's':
		if (vtype == G_TYPE_STRING)
			return g_variant_new_string(json_node_get_string(node));
		break;
	case 'b':
		if (vtype == G_TYPE_BOOLEAN)
			return g_variant_new_boolean(json_node_get_boolean(node));
		break;
	case 't':
		if (vtype == G_TYPE_INT64 && json_node_get_int(node) >= 0)
			return g_variant_new_uint64((guint64)json_node_get_int(node));
		/* files written by other tools may carry floats */
		if (vtype == G_TYPE_DOUBLE && json_node_get_double(node) >= 0 &&
		    json_node_get_double(node) < 18446744073709551616.0)
			return g_variant_new_uint64((guint64)json_node_get_double(node));
		break;
	case 'x':
		if (vtype == G_TYPE_INT64)
			return g_variant_new_int64(json_node_get_int(node));
		/* comparisons are false for NaN, so it is rejected too */
		if (vtype == G_TYPE_DOUBLE &&
		    json_node_get_double(node) >= -9223372036854775808.0 &&
		    json_node_get_double(node) < 9223372036854775808.0)
			return g_variant_new_int64((gint64)json_node_get_double(node));
		break;
	default:
		break;
	}
	return NULL;
}

/**
 * as_history_json_to_variant:
 * @obj: a history line
 *
 * Converts a history line to the `a{sv}` of org.aerosync.Manager1.GetHistory(): strings as
 * `s`, size, duration_ms and avg_speed_bps as `t`, completed_at as `x`, success as `b`.
 * Null members, unknown keys and members of the wrong type are left out.
 *
 * Returns: (transfer floating): an `a{sv}` variant
 **/
GVariant *
as_history_json_to_variant(JsonObject *obj)
{
	GVariantBuilder builder;

	g_return_val_if_fail(obj != NULL, NULL);

	g_variant_builder_init(&builder, G_VARIANT_TYPE_VARDICT);
	for (guint i = 0; i < G_N_ELEMENTS(as_history_keys); i++) {
		JsonNode *node = json_object_get_member(obj, as_history_keys[i].key);
		GVariant *value;

		if (node == NULL || JSON_NODE_HOLDS_NULL(node))
			continue;
		if (!JSON_NODE_HOLDS_VALUE(node)) {
			g_debug("ignoring non-scalar history member %s", as_history_keys[i].key);
			continue;
		}
		value = as_history_node_to_variant(node, as_history_keys[i].type);
		if (value == NULL) {
			g_debug("ignoring history member %s of unexpected type %s",
				as_history_keys[i].key,
				g_type_name(json_node_get_value_type(node)));
			continue;
		}
		g_variant_builder_add(&builder, "{sv}", as_history_keys[i].key, value);
	}
	return g_variant_builder_end(&builder);
}
