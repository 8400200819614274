/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "AsCtlStatus"

#include "config.h"

#include <glib/gi18n.h>

#include "as-ctl.h"

static void
as_ctl_status_print_json(AsCtl *self, GVariant *status, const gchar *token_backend)
{
	g_autoptr(JsonBuilder) builder = json_builder_new();
	g_autoptr(JsonNode) root = NULL;

	json_builder_begin_object(builder);
	as_ctl_json_add_members(builder, status);
	json_builder_set_member_name(builder, "token_backend");
	json_builder_add_string_value(builder, token_backend);
	json_builder_end_object(builder);
	root = json_builder_get_root(builder);
	as_ctl_print_json(self, root);
}

static void
as_ctl_status_print_human(AsCtl *self, GVariant *status, const gchar *token_backend)
{
	const gchar *version = NULL;
	const gchar *state = NULL;
	const gchar *receive_directory = NULL;
	g_autofree const gchar **protocols = NULL;
	guint16 http_port = 0;
	gboolean auth_required = FALSE;
	guint64 received_files = 0;
	guint32 active_transfers = 0;
	guint32 queue_depth = 0;
	guint64 free_bytes = 0;
	guint64 total_bytes = 0;
	g_autofree gchar *port_str = NULL;
	g_autofree gchar *protocols_str = NULL;
	g_autofree gchar *received_str = NULL;
	g_autofree gchar *active_str = NULL;
	g_autofree gchar *free_str = NULL;
	g_autofree gchar *total_str = NULL;
	g_autofree gchar *disk_str = NULL;
	/* TRANSLATORS: shown by 'status' when a value is missing from the daemon's reply */
	const gchar *unknown = _("unknown");
	const gchar *on_text;
	const gchar *off_text;
	const gchar *auth_text;

	/* TRANSLATORS: 'status' when senders need a token */
	on_text = _("on");
	/* TRANSLATORS: 'status' when senders need no token */
	off_text = _("off");

	/* a missing key shows as unknown rather than failing: the reply may grow or shrink */
	if (!g_variant_lookup(status, "version", "&s", &version))
		version = unknown;
	if (!g_variant_lookup(status, "status", "&s", &state))
		state = unknown;
	if (!g_variant_lookup(status, "receive_directory", "&s", &receive_directory))
		receive_directory = unknown;
	if (g_variant_lookup(status, "protocols", "^a&s", &protocols) && protocols[0] != NULL)
		protocols_str = g_strjoinv(", ", (gchar **)protocols);
	else
		/* TRANSLATORS: 'status' when no ingress protocol is enabled */
		protocols_str = g_strdup(_("none"));
	g_variant_lookup(status, "http_port", "q", &http_port);
	g_variant_lookup(status, "auth_required", "b", &auth_required);
	auth_text = auth_required ? on_text : off_text;
	g_variant_lookup(status, "received_files", "t", &received_files);
	g_variant_lookup(status, "active_transfers", "u", &active_transfers);
	g_variant_lookup(status, "queue_depth", "u", &queue_depth);

	if (http_port != 0)
		port_str = g_strdup_printf("%u", http_port);
	else
		/* TRANSLATORS: 'status' when the HTTP receiver has no port */
		port_str = g_strdup(_("not listening"));
	received_str = g_strdup_printf("%" G_GUINT64_FORMAT, received_files);
	/* TRANSLATORS: 'status': running transfers, then transfers waiting their turn */
	active_str = g_strdup_printf(_("%u (%u queued)"), active_transfers, queue_depth);
	if (g_variant_lookup(status, "free_bytes", "t", &free_bytes) &&
	    g_variant_lookup(status, "total_bytes", "t", &total_bytes)) {
		free_str = as_ctl_format_size(free_bytes);
		total_str = as_ctl_format_size(total_bytes);
		/* TRANSLATORS: disk space in 'status', e.g. "12.3 GB free of 250 GB" */
		disk_str = g_strdup_printf(_("%s free of %s"), free_str, total_str);
	} else {
		disk_str = g_strdup(unknown);
	}

	{
		const gchar *labels[] = {
			/* TRANSLATORS: label in 'status' */
			_("Version"),
			/* TRANSLATORS: label in 'status': "ok" or another health word */
			_("State"),
			/* TRANSLATORS: label in 'status': the TCP port of the HTTP receiver */
			_("Listening port"),
			/* TRANSLATORS: label in 'status' */
			_("Protocols"),
			/* TRANSLATORS: label in 'status': where incoming files are saved */
			_("Receive directory"),
			/* TRANSLATORS: label in 'status': whether senders need a token */
			_("Authentication"),
			/* TRANSLATORS: label in 'status': where tokens are stored */
			_("Token backend"),
			/* TRANSLATORS: label in 'status': files received since the daemon started
			 */
			_("Received files"),
			/* TRANSLATORS: label in 'status' */
			_("Active transfers"),
			/* TRANSLATORS: label in 'status': free space of the receive directory */
			_("Disk space"),
			NULL,
		};
		const gchar *values[] = {
			version,	   state,     port_str,	     protocols_str,
			receive_directory, auth_text, token_backend, received_str,
			active_str,	   disk_str,  NULL,
		};
		as_ctl_print_fields(self, labels, values);
	}
}

gboolean
as_ctl_status(AsCtl *self, gchar **values, GError **error)
{
	AsDbusManager1 *manager = as_ctl_get_manager(self, error);
	g_autoptr(GVariant) status = NULL;
	g_autoptr(GVariant) token_backend = NULL;
	g_autoptr(GError) error_local = NULL;

	if (manager == NULL)
		return FALSE;
	if (!as_dbus_manager1_call_get_status_sync(manager, &status, NULL, &error_local)) {
		as_ctl_propagate_dbus_error(self, error, g_steal_pointer(&error_local),
					    /* TRANSLATORS: what failed, followed by why */
					    _("cannot get the daemon's status"));
		return FALSE;
	}
	/* the token backend is a property, not part of the /health-shaped reply */
	token_backend = as_ctl_get_manager_property(self, "TokenBackend", error);
	if (token_backend == NULL)
		return FALSE;
	if (!g_variant_is_of_type(token_backend, G_VARIANT_TYPE_STRING)) {
		g_set_error(error, AS_CTL_ERROR, AS_CTL_EXIT_FAILURE,
			    /* TRANSLATORS: the daemon sent a property of the wrong D-Bus type */
			    _("cannot get the daemon's status: TokenBackend has type %s, not s"),
			    g_variant_get_type_string(token_backend));
		return FALSE;
	}

	if (self->json)
		as_ctl_status_print_json(self, status, g_variant_get_string(token_backend, NULL));
	else
		as_ctl_status_print_human(self, status, g_variant_get_string(token_backend, NULL));
	return TRUE;
}
