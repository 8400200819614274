/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "AsCtlToken"

#include "config.h"

#include <errno.h>
#include <glib/gi18n.h>

#include "as-ctl.h"
#include "as-error.h"
#include "as-keys.h"

/* the daemon refuses shorter prefixes; checking here saves a round trip and gives exit 2 */
#define AS_CTL_TOKEN_PREFIX_MIN 4
/* far enough for "never really", small enough that created + expiry fits in an int64 */
#define AS_CTL_DURATION_MAX_SECONDS ((guint64)100 * 365 * 24 * 60 * 60)

const GOptionEntry as_ctl_token_generate_options[] = {
	AS_CTL_OPTION_VALUE("label",
			    'l',
			    /* TRANSLATORS: --label option of 'token generate' */
			    N_("A name to recognise the token by, e.g. the sender's host"),
			    /* TRANSLATORS: placeholder for the value of --label */
			    N_("LABEL")),
	AS_CTL_OPTION_VALUE("expires",
			    'e',
			    /* TRANSLATORS: --expires option of 'token generate'; keep the
			     * suffixes and 'never' untranslated */
			    N_("Expire after DURATION: 30m, 12h, 7d, 2w, 3600 (seconds) or never "
			       "(the default)"),
			    /* TRANSLATORS: placeholder for the value of --expires */
			    N_("DURATION")),
	{NULL},
};

/* parses "30m", "12h", "7d", "2w", "3600", "3600s" or "never" (0) into seconds */
static gboolean
as_ctl_parse_duration(const gchar *text, guint64 *seconds, GError **error)
{
	guint64 value;
	guint64 multiplier = 1;
	gchar *end = NULL;

	if (g_ascii_strcasecmp(text, "never") == 0) {
		*seconds = 0;
		return TRUE;
	}
	if (!g_ascii_isdigit(text[0]))
		goto invalid;
	errno = 0;
	value = g_ascii_strtoull(text, &end, 10);
	if (errno != 0)
		goto invalid;
	switch (end[0]) {
	case '\0':
	case 's':
		break;
	case 'm':
		multiplier = 60;
		break;
	case 'h':
		multiplier = 60 * 60;
		break;
	case 'd':
		multiplier = 24 * 60 * 60;
		break;
	case 'w':
		multiplier = 7 * 24 * 60 * 60;
		break;
	default:
		goto invalid;
	}
	if (end[0] != '\0' && end[1] != '\0')
		goto invalid;
	if (value == 0) {
		g_set_error(error, AS_CTL_ERROR, AS_CTL_EXIT_USAGE,
			    /* TRANSLATORS: keep --expires and 'never' untranslated */
			    _("invalid --expires value '%s': a token must live longer than "
			      "zero seconds (use 'never' for no expiry)"),
			    text);
		return FALSE;
	}
	if (value > AS_CTL_DURATION_MAX_SECONDS / multiplier) {
		g_set_error(error, AS_CTL_ERROR, AS_CTL_EXIT_USAGE,
			    /* TRANSLATORS: keep --expires and 'never' untranslated */
			    _("invalid --expires value '%s': longer than 100 years (use 'never' "
			      "for no expiry)"),
			    text);
		return FALSE;
	}
	*seconds = value * multiplier;
	return TRUE;
invalid:
	g_set_error(error, AS_CTL_ERROR, AS_CTL_EXIT_USAGE,
		    /* TRANSLATORS: keep --expires, the suffixes and 'never' untranslated */
		    _("invalid --expires value '%s': use a number of seconds, or a number "
		      "followed by m, h, d or w (e.g. 12h), or 'never'"),
		    text);
	return FALSE;
}

static gchar *
as_ctl_token_format_expires(gint64 expires)
{
	if (expires == 0)
		/* TRANSLATORS: a token that does not expire */
		return g_strdup(_("never"));
	return as_ctl_format_time(expires);
}

/* "active", "revoked" or "expired"; untranslated, as JSON uses it too */
static const gchar *
as_ctl_token_status(GVariant *info)
{
	gboolean revoked = FALSE;
	gboolean expired = FALSE;
	gint64 expires = 0;

	g_variant_lookup(info, "revoked", "b", &revoked);
	g_variant_lookup(info, "expired", "b", &expired);
	g_variant_lookup(info, "expires", "x", &expires);
	if (revoked)
		return "revoked";
	/* the daemon's flag was computed when it replied; the clock check covers the gap */
	if (expired || (expires > 0 && expires <= g_get_real_time() / G_USEC_PER_SEC))
		return "expired";
	return "active";
}

gboolean
as_ctl_token_generate(AsCtl *self, gchar **values, GError **error)
{
	AsDbusManager1 *manager;
	const gchar *label = as_ctl_get_option(self, "label");
	const gchar *expires_str = as_ctl_get_option(self, "expires");
	guint64 expires_in = 0;
	g_auto(GVariantDict) options = G_VARIANT_DICT_INIT(NULL);
	g_autofree gchar *token = NULL;
	g_autoptr(GVariant) info = NULL;
	g_autoptr(GError) error_local = NULL;

	/* check the options before talking to the daemon */
	if (expires_str != NULL && !as_ctl_parse_duration(expires_str, &expires_in, error))
		return FALSE;
	manager = as_ctl_get_manager(self, error);
	if (manager == NULL)
		return FALSE;

	if (label != NULL)
		g_variant_dict_insert(&options, AS_KEY_LABEL, "s", label);
	if (expires_in > 0)
		g_variant_dict_insert(&options, AS_KEY_EXPIRES_IN, "t", expires_in);
	if (!as_dbus_manager1_call_generate_token_sync(manager, g_variant_dict_end(&options),
						       &token, &info, NULL, &error_local)) {
		as_ctl_propagate_dbus_error(self, error, g_steal_pointer(&error_local),
					    /* TRANSLATORS: what failed, followed by why */
					    _("cannot generate a token"));
		return FALSE;
	}

	if (self->json) {
		g_autoptr(JsonBuilder) builder = json_builder_new();
		g_autoptr(JsonNode) root = NULL;
		json_builder_begin_object(builder);
		json_builder_set_member_name(builder, "token");
		json_builder_add_string_value(builder, token);
		as_ctl_json_add_members(builder, info);
		json_builder_end_object(builder);
		root = json_builder_get_root(builder);
		as_ctl_print_json(self, root);
	} else {
		const gchar *id = NULL;
		const gchar *info_label = NULL;
		gint64 expires = 0;
		g_autofree gchar *expires_text = NULL;

		if (!g_variant_lookup(info, "id", "&s", &id))
			id = "?";
		if (!g_variant_lookup(info, "label", "&s", &info_label) || info_label[0] == '\0')
			info_label = "-";
		g_variant_lookup(info, "expires", "x", &expires);
		expires_text = as_ctl_token_format_expires(expires);

		/* only the secret on stdout, so 'token generate > FILE' stores just the token */
		g_print("%s\n", token);
		/* TRANSLATORS: details after a new token; %s are its id, label and expiry */
		g_printerr(_("Token id %s, label %s, expires %s."), id, info_label, expires_text);
		g_printerr("\n");
		g_printerr("%s\n",
			   /* TRANSLATORS: the hint after a new token; keep the command */
			   _("Store the token now, it cannot be shown again; senders use it with "
			     "'aerosyncctl send --token-file FILE …'."));
	}
	return TRUE;
}

gboolean
as_ctl_token_list(AsCtl *self, gchar **values, GError **error)
{
	AsDbusManager1 *manager = as_ctl_get_manager(self, error);
	g_autoptr(GVariant) tokens = NULL;
	g_autoptr(GError) error_local = NULL;
	GVariantIter iter;
	GVariant *info;

	if (manager == NULL)
		return FALSE;
	if (!as_dbus_manager1_call_list_tokens_sync(manager, &tokens, NULL, &error_local)) {
		as_ctl_propagate_dbus_error(self, error, g_steal_pointer(&error_local),
					    /* TRANSLATORS: what failed, followed by why */
					    _("cannot list tokens"));
		return FALSE;
	}

	if (self->json) {
		g_autoptr(JsonBuilder) builder = json_builder_new();
		g_autoptr(JsonNode) root = NULL;
		json_builder_begin_array(builder);
		g_variant_iter_init(&iter, tokens);
		while ((info = g_variant_iter_next_value(&iter)) != NULL) {
			json_builder_begin_object(builder);
			as_ctl_json_add_members(builder, info);
			json_builder_set_member_name(builder, "status");
			json_builder_add_string_value(builder, as_ctl_token_status(info));
			json_builder_end_object(builder);
			g_variant_unref(info);
		}
		json_builder_end_array(builder);
		root = json_builder_get_root(builder);
		as_ctl_print_json(self, root);
		return TRUE;
	}

	if (g_variant_n_children(tokens) == 0) {
		/* TRANSLATORS: 'token list' with no tokens; keep the command untranslated */
		g_print("%s\n", _("No tokens; create one with 'aerosyncctl token generate'."));
		return TRUE;
	}
	{
		const gchar *headers[] = {
			/* TRANSLATORS: column header in 'token list' */
			_("ID"),
			/* TRANSLATORS: column header in 'token list' */
			_("LABEL"),
			/* TRANSLATORS: column header in 'token list' */
			_("CREATED"),
			/* TRANSLATORS: column header in 'token list' */
			_("EXPIRES"),
			/* TRANSLATORS: column header in 'token list' */
			_("STATUS"),
			NULL,
		};
		g_autoptr(AsCtlTable) table = as_ctl_table_new(headers);

		g_variant_iter_init(&iter, tokens);
		while ((info = g_variant_iter_next_value(&iter)) != NULL) {
			const gchar *id = "?";
			const gchar *label = NULL;
			const gchar *status = as_ctl_token_status(info);
			gint64 created = 0;
			gint64 expires = 0;
			g_autofree gchar *created_text = NULL;
			g_autofree gchar *expires_text = NULL;
			AsCtlColour colour = AS_CTL_COLOUR_GREEN;
			const gchar *status_text;

			g_variant_lookup(info, "id", "&s", &id);
			g_variant_lookup(info, "label", "&s", &label);
			g_variant_lookup(info, "created", "x", &created);
			g_variant_lookup(info, "expires", "x", &expires);
			created_text = as_ctl_format_time(created);
			expires_text = as_ctl_token_format_expires(expires);
			if (g_strcmp0(status, "revoked") == 0) {
				colour = AS_CTL_COLOUR_RED;
				/* TRANSLATORS: token status in 'token list' */
				status_text = _("revoked");
			} else if (g_strcmp0(status, "expired") == 0) {
				colour = AS_CTL_COLOUR_YELLOW;
				/* TRANSLATORS: token status in 'token list' */
				status_text = _("expired");
			} else {
				/* TRANSLATORS: token status in 'token list' */
				status_text = _("active");
			}
			as_ctl_table_add_row(table);
			as_ctl_table_add_cell(table, id, AS_CTL_COLOUR_NONE);
			as_ctl_table_add_cell(table,
					      label != NULL && label[0] != '\0' ? label : "-",
					      AS_CTL_COLOUR_NONE);
			as_ctl_table_add_cell(table, created_text, AS_CTL_COLOUR_NONE);
			as_ctl_table_add_cell(table, expires_text, AS_CTL_COLOUR_NONE);
			as_ctl_table_add_cell(table, status_text, colour);
			g_variant_unref(info);
		}
		as_ctl_table_print(self, table);
	}
	return TRUE;
}

gboolean
as_ctl_token_revoke(AsCtl *self, gchar **values, GError **error)
{
	const gchar *prefix = values[0];
	AsDbusManager1 *manager;
	g_autoptr(GError) error_local = NULL;

	if (g_utf8_strlen(prefix, -1) < AS_CTL_TOKEN_PREFIX_MIN) {
		g_set_error(error, AS_CTL_ERROR, AS_CTL_EXIT_USAGE,
			    /* TRANSLATORS: %s is what the user gave, %d the minimum length */
			    _("token prefix '%s' is too short: give at least %d characters of the "
			      "id (see 'aerosyncctl token list')"),
			    prefix, AS_CTL_TOKEN_PREFIX_MIN);
		return FALSE;
	}
	manager = as_ctl_get_manager(self, error);
	if (manager == NULL)
		return FALSE;
	if (!as_dbus_manager1_call_revoke_token_sync(manager, prefix, NULL, &error_local)) {
		g_autoptr(GError) error_call = NULL;
		as_ctl_propagate_dbus_error(self, &error_call, g_steal_pointer(&error_local),
					    /* TRANSLATORS: what failed, followed by why */
					    _("cannot revoke token"));
		if (g_error_matches(error_call, AS_ERROR, AS_ERROR_NOT_FOUND)) {
			as_ctl_error_add_hint(error_call,
					      /* TRANSLATORS: hint; keep the command untranslated */
					      _("see 'aerosyncctl token list'"));
		} else if (g_error_matches(error_call, AS_ERROR, AS_ERROR_AMBIGUOUS)) {
			as_ctl_error_add_hint(error_call,
					      /* TRANSLATORS: hint when a prefix matches tokens */
					      _("give more characters of the id"));
		}
		g_propagate_error(error, g_steal_pointer(&error_call));
		return FALSE;
	}

	if (self->json) {
		g_autoptr(JsonBuilder) builder = json_builder_new();
		g_autoptr(JsonNode) root = NULL;
		/* the argument may be a whole token: never echo it */
		json_builder_begin_object(builder);
		json_builder_set_member_name(builder, "revoked");
		json_builder_add_boolean_value(builder, TRUE);
		json_builder_end_object(builder);
		root = json_builder_get_root(builder);
		as_ctl_print_json(self, root);
	} else {
		/* TRANSLATORS: 'token revoke' succeeded */
		g_print("%s\n", _("Token revoked; it is refused from now on."));
	}
	return TRUE;
}
