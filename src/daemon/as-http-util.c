/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "AsHttp"

#include "config.h"

#include "as-error.h"
#include "as-http-util.h"
#include "as-token.h"

void
as_http_reply_json(SoupServerMessage *msg, guint status, JsonObject *obj)
{
	g_autoptr(JsonNode) node = json_node_new(JSON_NODE_OBJECT);
	gchar *text;

	json_node_set_object(node, obj);
	text = json_to_string(node, FALSE);
	soup_server_message_set_status(msg, status, NULL);
	soup_server_message_set_response(msg, "application/json", SOUP_MEMORY_TAKE, text,
					 strlen(text));
}

void
as_http_reply_error(SoupServerMessage *msg, guint status, const gchar *message)
{
	g_autoptr(JsonObject) obj = json_object_new();
	json_object_set_string_member(obj, "error", message);
	as_http_reply_json(msg, status, obj);
}

guint
as_http_status_for_error(const GError *error)
{
	if (error->domain != AS_ERROR)
		return SOUP_STATUS_INTERNAL_SERVER_ERROR;
	switch (error->code) {
	case AS_ERROR_INVALID_ARGUMENT:
	case AS_ERROR_HASH_MISMATCH:
		return SOUP_STATUS_BAD_REQUEST;
	case AS_ERROR_NOT_FOUND:
		return SOUP_STATUS_NOT_FOUND;
	case AS_ERROR_PERMISSION_DENIED:
		return SOUP_STATUS_FORBIDDEN;
	case AS_ERROR_TOO_LARGE:
		return SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE;
	case AS_ERROR_NO_SPACE:
		return SOUP_STATUS_INSUFFICIENT_STORAGE;
	case AS_ERROR_CONFLICT:
	case AS_ERROR_INCOMPLETE:
	case AS_ERROR_AMBIGUOUS:
		return SOUP_STATUS_CONFLICT;
	case AS_ERROR_NOT_SUPPORTED:
		return SOUP_STATUS_NOT_IMPLEMENTED;
	default:
		return SOUP_STATUS_INTERNAL_SERVER_ERROR;
	}
}

/* the JSON body and status of an error reply, for libsoup replies and pump replies alike */
JsonObject *
as_http_error_json(const GError *error, guint *status)
{
	JsonObject *obj = json_object_new();

	*status = as_http_status_for_error(error);
	/* 0.x clients match on this exact text */
	if (*status == SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE) {
		json_object_set_string_member(obj, "error",
					      "Payload Too Large: file exceeds server limit");
		json_object_set_string_member(obj, "detail", error->message);
	} else {
		json_object_set_string_member(obj, "error", error->message);
	}
	return obj;
}

void
as_http_reply_gerror(SoupServerMessage *msg, const GError *error)
{
	guint status = 0;
	g_autoptr(JsonObject) obj = as_http_error_json(error, &status);
	as_http_reply_json(msg, status, obj);
}

GHashTable *
as_http_query_params(SoupServerMessage *msg)
{
	GUri *uri = soup_server_message_get_uri(msg);
	const gchar *query = g_uri_get_query(uri);
	GHashTable *params = NULL;

	if (query != NULL)
		params = g_uri_parse_params(query, -1, "&", G_URI_PARAMS_NONE, NULL);
	if (params == NULL)
		params = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	return params;
}

const gchar *
as_http_param_string(GHashTable *params, const gchar *name, gboolean required, GError **error)
{
	const gchar *value = g_hash_table_lookup(params, name);
	if (value == NULL && required) {
		g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
			    "missing query parameter '%s'", name);
		return NULL;
	}
	return value;
}

gboolean
as_http_param_uint64(GHashTable *params,
		     const gchar *name,
		     gboolean required,
		     guint64 max,
		     guint64 *value,
		     GError **error)
{
	const gchar *text = g_hash_table_lookup(params, name);
	g_autoptr(GError) error_local = NULL;

	if (text == NULL) {
		if (!required)
			return TRUE;
		g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
			    "missing query parameter '%s'", name);
		return FALSE;
	}
	if (!g_ascii_string_to_unsigned(text, 10, 0, max, value, &error_local)) {
		g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT, "query parameter '%s': %s",
			    name, error_local->message);
		return FALSE;
	}
	return TRUE;
}

const gchar *
as_http_peer(SoupServerMessage *msg)
{
	const gchar *host = soup_server_message_get_remote_host(msg);
	return host != NULL ? host : "unknown";
}

/* "https" for a request that came over the TLS listener, else "http": for logs and audit */
const gchar *
as_http_scheme(SoupServerMessage *msg)
{
	GUri *uri = soup_server_message_get_uri(msg);
	return uri != NULL && g_strcmp0(g_uri_get_scheme(uri), "https") == 0 ? "https" : "http";
}

const gchar *
as_http_presented_token(SoupServerMessage *msg)
{
	SoupMessageHeaders *hdrs = soup_server_message_get_request_headers(msg);
	return as_token_from_headers(soup_message_headers_get_one(hdrs, "Authorization"),
				     soup_message_headers_get_one(hdrs, "X-Auth-Token"));
}

/*
 * No CORS at all, and requests that a browser sends on behalf of another site are refused:
 * a multipart POST is a "simple request" that needs no preflight, so without this any web
 * page could write files into the receive directory (0.x's allow_any_origin bug).
 */
gboolean
as_http_origin_allowed(SoupServerMessage *msg)
{
	SoupMessageHeaders *hdrs = soup_server_message_get_request_headers(msg);
	const gchar *origin = soup_message_headers_get_one(hdrs, "Origin");
	const gchar *fetch_site = soup_message_headers_get_one(hdrs, "Sec-Fetch-Site");
	const gchar *host = soup_message_headers_get_one(hdrs, "Host");
	g_autoptr(GUri) origin_uri = NULL;
	g_autofree gchar *origin_host = NULL;
	g_autofree gchar *origin_hostport = NULL;

	if (fetch_site != NULL && g_ascii_strcasecmp(fetch_site, "cross-site") == 0)
		return FALSE;
	if (origin == NULL)
		return TRUE;
	if (host == NULL)
		return FALSE;
	origin_uri = g_uri_parse(origin, G_URI_FLAGS_NONE, NULL);
	if (origin_uri == NULL || g_uri_get_host(origin_uri) == NULL)
		return FALSE;
	/* the Host header brackets IPv6 literals; GUri hands them out bare */
	if (strchr(g_uri_get_host(origin_uri), ':') != NULL)
		origin_host = g_strdup_printf("[%s]", g_uri_get_host(origin_uri));
	else
		origin_host = g_strdup(g_uri_get_host(origin_uri));
	if (g_uri_get_port(origin_uri) > 0)
		origin_hostport = g_strdup_printf("%s:%d", origin_host, g_uri_get_port(origin_uri));
	else
		origin_hostport = g_strdup(origin_host);
	return g_ascii_strcasecmp(origin_hostport, host) == 0;
}
