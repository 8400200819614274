/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "AsCtlHistory"

#include "config.h"

#include <glib/gi18n.h>

#include "as-ctl.h"
#include "as-keys.h"

/* bounds the reply: each entry is a few hundred bytes on the bus */
#define AS_CTL_HISTORY_LIMIT_MAX 10000

/* the numeric columns of the table are right-aligned */
enum {
	AS_CTL_HISTORY_COLUMN_TIME,
	AS_CTL_HISTORY_COLUMN_DIRECTION,
	AS_CTL_HISTORY_COLUMN_PROTOCOL,
	AS_CTL_HISTORY_COLUMN_SIZE,
	AS_CTL_HISTORY_COLUMN_SPEED,
	AS_CTL_HISTORY_COLUMN_RESULT,
	AS_CTL_HISTORY_COLUMN_FILE,
};

const GOptionEntry as_ctl_history_options[] = {
	AS_CTL_OPTION_VALUE("limit",
			    'n',
			    /* TRANSLATORS: --limit option of 'history' */
			    N_("Show at most N transfers (default 20)"),
			    /* TRANSLATORS: placeholder for the value of --limit */
			    N_("N")),
	/* TRANSLATORS: --sent option of 'history' */
	AS_CTL_OPTION_FLAG("sent", '\0', N_("Show only files sent")),
	/* TRANSLATORS: --received option of 'history' */
	AS_CTL_OPTION_FLAG("received", '\0', N_("Show only files received")),
	/* TRANSLATORS: --success-only option of 'history' */
	AS_CTL_OPTION_FLAG("success-only", '\0', N_("Hide failed transfers")),
	{NULL},
};

static gboolean
as_ctl_history_build_filter(AsCtl *self, GVariantDict *filter, GError **error)
{
	const gchar *limit_str = as_ctl_get_option(self, "limit");
	gboolean sent = as_ctl_has_option(self, "sent");
	gboolean received = as_ctl_has_option(self, "received");

	if (limit_str != NULL) {
		guint64 limit = 0;
		g_autoptr(GError) error_local = NULL;
		if (!g_ascii_string_to_unsigned(limit_str, 10, 1, AS_CTL_HISTORY_LIMIT_MAX, &limit,
						&error_local)) {
			g_set_error(error, AS_CTL_ERROR, AS_CTL_EXIT_USAGE,
				    /* TRANSLATORS: %s is the value given, %d the largest allowed */
				    _("invalid --limit value '%s': give a number from 1 to %d"),
				    limit_str, AS_CTL_HISTORY_LIMIT_MAX);
			return FALSE;
		}
		g_variant_dict_insert(filter, AS_KEY_LIMIT, "u", (guint32)limit);
	}
	if (sent && received) {
		g_set_error_literal(error, AS_CTL_ERROR, AS_CTL_EXIT_USAGE,
				    /* TRANSLATORS: keep the options untranslated */
				    _("--sent and --received exclude each other: leave both out to "
				      "see every transfer"));
		return FALSE;
	}
	if (sent)
		g_variant_dict_insert(filter, AS_KEY_DIRECTION, "s", "send");
	if (received)
		g_variant_dict_insert(filter, AS_KEY_DIRECTION, "s", "receive");
	if (as_ctl_has_option(self, "success-only"))
		g_variant_dict_insert(filter, AS_KEY_SUCCESS_ONLY, "b", TRUE);
	return TRUE;
}

static void
as_ctl_history_print_json(AsCtl *self, GVariant *entries)
{
	g_autoptr(JsonBuilder) builder = json_builder_new();
	g_autoptr(JsonNode) root = NULL;
	GVariantIter iter;
	GVariant *entry;

	json_builder_begin_array(builder);
	g_variant_iter_init(&iter, entries);
	while ((entry = g_variant_iter_next_value(&iter)) != NULL) {
		json_builder_begin_object(builder);
		as_ctl_json_add_members(builder, entry);
		json_builder_end_object(builder);
		g_variant_unref(entry);
	}
	json_builder_end_array(builder);
	root = json_builder_get_root(builder);
	as_ctl_print_json(self, root);
}

static void
as_ctl_history_add_row(AsCtl *self, AsCtlTable *table, GVariant *entry)
{
	const gchar *filename = "?";
	const gchar *protocol = "?";
	const gchar *direction = "";
	const gchar *error_text = NULL;
	const gchar *arrow;
	gint64 completed_at = 0;
	guint64 size = 0;
	guint64 speed_bps = 0;
	gboolean success = FALSE;
	g_autofree gchar *time_text = NULL;
	g_autofree gchar *size_text = NULL;
	g_autofree gchar *speed_text = NULL;
	g_autofree gchar *speed_unit = NULL;
	g_autofree gchar *file_text = NULL;
	gboolean utf8 = g_get_charset(NULL);

	g_variant_lookup(entry, "filename", "&s", &filename);
	g_variant_lookup(entry, "protocol", "&s", &protocol);
	g_variant_lookup(entry, "direction", "&s", &direction);
	g_variant_lookup(entry, "error", "&s", &error_text);
	g_variant_lookup(entry, "completed_at", "x", &completed_at);
	g_variant_lookup(entry, "size", "t", &size);
	g_variant_lookup(entry, "avg_speed_bps", "t", &speed_bps);
	g_variant_lookup(entry, "success", "b", &success);

	if (g_strcmp0(direction, "send") == 0)
		arrow = utf8 ? "↑" : ">";
	else if (g_strcmp0(direction, "receive") == 0)
		arrow = utf8 ? "↓" : "<";
	else
		arrow = "?";
	time_text = as_ctl_format_time(completed_at);
	size_text = as_ctl_format_size(size);
	speed_unit = as_ctl_format_size(speed_bps);
	/* TRANSLATORS: a transfer speed, %s is a size such as "12.3 MB" */
	speed_text = g_strdup_printf(_("%s/s"), speed_unit);
	if (!success && error_text != NULL && error_text[0] != '\0')
		file_text = g_strdup_printf("%s (%s)", filename, error_text);
	else
		file_text = g_strdup(filename);

	as_ctl_table_add_row(table);
	as_ctl_table_add_cell(table, time_text, AS_CTL_COLOUR_NONE);
	as_ctl_table_add_cell(table, arrow, AS_CTL_COLOUR_NONE);
	as_ctl_table_add_cell(table, protocol, AS_CTL_COLOUR_NONE);
	as_ctl_table_add_cell(table, size_text, AS_CTL_COLOUR_NONE);
	as_ctl_table_add_cell(table, speed_text, AS_CTL_COLOUR_NONE);
	if (success) {
		/* TRANSLATORS: result of a transfer in 'history' */
		as_ctl_table_add_cell(table, _("ok"), AS_CTL_COLOUR_GREEN);
	} else {
		/* TRANSLATORS: result of a transfer in 'history' */
		as_ctl_table_add_cell(table, _("failed"), AS_CTL_COLOUR_RED);
	}
	as_ctl_table_add_cell(table, file_text, AS_CTL_COLOUR_NONE);
}

static void
as_ctl_history_print_human(AsCtl *self, GVariant *entries)
{
	const gchar *headers[] = {
		/* TRANSLATORS: column header in 'history': when the transfer ended */
		_("TIME"),
		/* TRANSLATORS: column header in 'history': an arrow, up for sent, down for received
		 */
		_("DIR"),
		/* TRANSLATORS: column header in 'history' */
		_("PROTOCOL"),
		/* TRANSLATORS: column header in 'history' */
		_("SIZE"),
		/* TRANSLATORS: column header in 'history': average speed */
		_("SPEED"),
		/* TRANSLATORS: column header in 'history': ok or failed */
		_("RESULT"),
		/* TRANSLATORS: column header in 'history' */
		_("FILE"),
		NULL,
	};
	g_autoptr(AsCtlTable) table = as_ctl_table_new(headers);
	GVariantIter iter;
	GVariant *entry;

	if (g_variant_n_children(entries) == 0) {
		/* TRANSLATORS: 'history' when nothing matches */
		g_print("%s\n", _("No transfers in the history."));
		return;
	}
	as_ctl_table_set_align_right(table, AS_CTL_HISTORY_COLUMN_SIZE);
	as_ctl_table_set_align_right(table, AS_CTL_HISTORY_COLUMN_SPEED);
	g_variant_iter_init(&iter, entries);
	while ((entry = g_variant_iter_next_value(&iter)) != NULL) {
		as_ctl_history_add_row(self, table, entry);
		g_variant_unref(entry);
	}
	as_ctl_table_print(self, table);
}

gboolean
as_ctl_history(AsCtl *self, gchar **values, GError **error)
{
	AsDbusManager1 *manager;
	g_auto(GVariantDict) filter = G_VARIANT_DICT_INIT(NULL);
	g_autoptr(GVariant) entries = NULL;
	g_autoptr(GError) error_local = NULL;

	/* check the options before talking to the daemon */
	if (!as_ctl_history_build_filter(self, &filter, error))
		return FALSE;
	manager = as_ctl_get_manager(self, error);
	if (manager == NULL)
		return FALSE;
	if (!as_dbus_manager1_call_get_history_sync(manager, g_variant_dict_end(&filter), &entries,
						    NULL, &error_local)) {
		as_ctl_propagate_dbus_error(self, error, g_steal_pointer(&error_local),
					    /* TRANSLATORS: what failed, followed by why */
					    _("cannot read the transfer history"));
		return FALSE;
	}
	if (self->json)
		as_ctl_history_print_json(self, entries);
	else
		as_ctl_history_print_human(self, entries);
	return TRUE;
}
