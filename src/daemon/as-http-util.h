/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <json-glib/json-glib.h>
#include <libsoup/soup.h>

G_BEGIN_DECLS

void as_http_reply_json(SoupServerMessage *msg, guint status, JsonObject *obj);
void as_http_reply_error(SoupServerMessage *msg, guint status, const gchar *message);
JsonObject *as_http_error_json(const GError *error, guint *status);
void as_http_reply_gerror(SoupServerMessage *msg, const GError *error);
guint as_http_status_for_error(const GError *error);
GHashTable *as_http_query_params(SoupServerMessage *msg);
gboolean as_http_param_uint64(GHashTable *params,
			      const gchar *name,
			      gboolean required,
			      guint64 max,
			      guint64 *value,
			      GError **error);
const gchar *
as_http_param_string(GHashTable *params, const gchar *name, gboolean required, GError **error);
const gchar *as_http_peer(SoupServerMessage *msg);
const gchar *as_http_scheme(SoupServerMessage *msg);
const gchar *as_http_presented_token(SoupServerMessage *msg);
gboolean as_http_origin_allowed(SoupServerMessage *msg);

G_END_DECLS
