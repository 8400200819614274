/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "AsCtlTransfers"

#include "config.h"

#include <glib/gi18n.h>

#include "as-ctl-transfers.h"
#include "as-keys.h"
#include "as-rate-limit.h"

/* the table shows this many characters of an id; any unique prefix is accepted back */
#define AS_CTL_TRANSFER_ID_SHORT 8
#define AS_CTL_PERCENT		 100

/* one transfer as read from GetManagedObjects */
typedef struct {
	gchar *path;	   /* (owned) */
	GVariant *props;   /* (owned): a{sv} of org.aerosync.Transfer1 */
	gint64 started_at; /* for sorting */
} AsCtlTransferInfo;

static void
as_ctl_transfer_info_free(AsCtlTransferInfo *info)
{
	g_free(info->path);
	g_variant_unref(info->props);
	g_free(info);
}

static const gchar *
as_ctl_transfer_interface_name(void)
{
	return as_dbus_transfer1_interface_info()->name;
}

static const gchar *
as_ctl_transfer_get_string(GVariant *props, const gchar *key)
{
	const gchar *value = NULL;
	if (!g_variant_lookup(props, key, "&s", &value))
		return "";
	return value;
}

static guint64
as_ctl_transfer_get_uint64(GVariant *props, const gchar *key)
{
	guint64 value = 0;
	g_variant_lookup(props, key, "t", &value);
	return value;
}

static guint32
as_ctl_transfer_get_uint32(GVariant *props, const gchar *key)
{
	guint32 value = 0;
	g_variant_lookup(props, key, "u", &value);
	return value;
}

static gint64
as_ctl_transfer_get_int64(GVariant *props, const gchar *key, gint64 fallback)
{
	gint64 value = fallback;
	g_variant_lookup(props, key, "x", &value);
	return value;
}

static gint
as_ctl_transfer_info_cmp(gconstpointer a, gconstpointer b)
{
	const AsCtlTransferInfo *info_a = *(const AsCtlTransferInfo **)a;
	const AsCtlTransferInfo *info_b = *(const AsCtlTransferInfo **)b;
	if (info_a->started_at != info_b->started_at)
		return info_a->started_at < info_b->started_at ? -1 : 1;
	return g_strcmp0(info_a->path, info_b->path);
}

/* every transfer object of the daemon, oldest first; the call activates the daemon if needed */
static GPtrArray *
as_ctl_transfers_list(AsCtl *self, GError **error)
{
	g_autoptr(GPtrArray) infos =
		g_ptr_array_new_with_free_func((GDestroyNotify)as_ctl_transfer_info_free);
	g_autoptr(GVariant) reply = NULL;
	g_autoptr(GVariant) objects = NULL;
	g_autoptr(GError) error_local = NULL;
	GVariantIter iter;
	const gchar *path = NULL;
	GVariant *interfaces = NULL;

	if (as_ctl_get_manager(self, error) == NULL)
		return NULL;
	reply = g_dbus_connection_call_sync(
		self->connection, AS_DBUS_NAME, AS_DBUS_PATH, "org.freedesktop.DBus.ObjectManager",
		"GetManagedObjects", NULL, G_VARIANT_TYPE("(a{oa{sa{sv}}})"),
		G_DBUS_CALL_FLAGS_NONE, AS_CTL_DBUS_TIMEOUT_MS, NULL, &error_local);
	if (reply == NULL) {
		as_ctl_propagate_dbus_error(self, error, g_steal_pointer(&error_local),
					    /* TRANSLATORS: what failed, followed by why */
					    _("cannot list the transfers"));
		return NULL;
	}
	objects = g_variant_get_child_value(reply, 0);
	g_variant_iter_init(&iter, objects);
	while (g_variant_iter_loop(&iter, "{&o@a{sa{sv}}}", &path, &interfaces)) {
		AsCtlTransferInfo *info;
		GVariant *props = g_variant_lookup_value(
			interfaces, as_ctl_transfer_interface_name(), G_VARIANT_TYPE_VARDICT);
		if (props == NULL)
			continue;
		info = g_new0(AsCtlTransferInfo, 1);
		info->path = g_strdup(path);
		info->props = props;
		info->started_at = as_ctl_transfer_get_int64(props, "StartedAt", 0);
		g_ptr_array_add(infos, info);
	}
	g_ptr_array_sort(infos, as_ctl_transfer_info_cmp);
	return g_steal_pointer(&infos);
}

/**
 * as_ctl_transfer_find:
 * @self: the invocation
 * @id_or_prefix: a transfer id, or the start of one
 * @error: a #GError, or %NULL
 *
 * An exact id wins; otherwise the prefix must match exactly one transfer.
 *
 * Returns: (transfer full): the object path of the transfer, or %NULL
 */
gchar *
as_ctl_transfer_find(AsCtl *self, const gchar *id_or_prefix, GError **error)
{
	g_autoptr(GPtrArray) infos = NULL;
	const gchar *match = NULL;
	guint n_matches = 0;

	if (id_or_prefix[0] == '\0') {
		g_set_error_literal(error, AS_CTL_ERROR, AS_CTL_EXIT_USAGE,
				    /* TRANSLATORS: the ID argument was an empty string */
				    _("the transfer ID is empty (see 'aerosyncctl transfers')"));
		return NULL;
	}
	infos = as_ctl_transfers_list(self, error);
	if (infos == NULL)
		return NULL;
	for (guint i = 0; i < infos->len; i++) {
		AsCtlTransferInfo *info = g_ptr_array_index(infos, i);
		const gchar *id = as_ctl_transfer_get_string(info->props, "Id");
		if (g_strcmp0(id, id_or_prefix) == 0)
			return g_strdup(info->path);
		if (g_str_has_prefix(id, id_or_prefix)) {
			match = info->path;
			n_matches++;
		}
	}
	if (n_matches == 0) {
		g_autofree gchar *safe = as_ctl_sanitize_text(id_or_prefix);
		g_set_error(error, AS_CTL_ERROR, AS_CTL_EXIT_NOT_FOUND,
			    /* TRANSLATORS: %s is what the user typed as a transfer id */
			    _("no transfer matches '%s' (see 'aerosyncctl transfers')"), safe);
		return NULL;
	}
	if (n_matches > 1) {
		g_autofree gchar *safe = as_ctl_sanitize_text(id_or_prefix);
		g_set_error(
			error, AS_CTL_ERROR, AS_CTL_EXIT_USAGE,
			/* TRANSLATORS: %s is a prefix, %u how many transfer ids start with it */
			ngettext("'%s' matches %u transfer: give more of the id",
				 "'%s' matches %u transfers: give more of the id", n_matches),
			safe, n_matches);
		return NULL;
	}
	return g_strdup(match);
}

/* 'transfers' */

static void
as_ctl_transfers_print_json(AsCtl *self, GPtrArray *infos)
{
	g_autoptr(JsonBuilder) builder = json_builder_new();
	g_autoptr(JsonNode) root = NULL;
	const struct {
		const gchar *property;
		const gchar *member;
	} members[] = {
		{"Id", "id"},
		{"Direction", "direction"},
		{"State", "state"},
		{"Filename", "filename"},
		{"SavedPath", "saved_path"},
		{"Peer", "peer"},
		{"Destination", "destination"},
		{"Protocol", "protocol"},
		{"BytesDone", "bytes_done"},
		{"BytesTotal", "bytes_total"},
		{"Rate", "rate"},
		{"Eta", "eta"},
		{"Files", "files"},
		{"FilesDone", "files_done"},
		{"FilesFailed", "files_failed"},
		{"RateLimit", "rate_limit"},
		{"Sha256", "sha256"},
		{"StartedAt", "started_at"},
		{"Error", "error"},
	};

	json_builder_begin_array(builder);
	for (guint i = 0; i < infos->len; i++) {
		AsCtlTransferInfo *info = g_ptr_array_index(infos, i);
		json_builder_begin_object(builder);
		for (guint j = 0; j < G_N_ELEMENTS(members); j++) {
			g_autoptr(GVariant) value =
				g_variant_lookup_value(info->props, members[j].property, NULL);
			if (value == NULL)
				continue;
			json_builder_set_member_name(builder, members[j].member);
			json_builder_add_value(builder, json_gvariant_serialize(value));
		}
		json_builder_set_member_name(builder, "path");
		json_builder_add_string_value(builder, info->path);
		json_builder_end_object(builder);
	}
	json_builder_end_array(builder);
	root = json_builder_get_root(builder);
	as_ctl_print_json(self, root);
}

static AsCtlColour
as_ctl_transfer_state_colour(const gchar *state)
{
	if (g_strcmp0(state, "completed") == 0)
		return AS_CTL_COLOUR_GREEN;
	if (g_strcmp0(state, "failed") == 0)
		return AS_CTL_COLOUR_RED;
	if (g_strcmp0(state, "paused") == 0 || g_strcmp0(state, "cancelled") == 0)
		return AS_CTL_COLOUR_YELLOW;
	return AS_CTL_COLOUR_NONE;
}

static gchar *
as_ctl_transfer_format_progress(GVariant *props)
{
	guint64 done = as_ctl_transfer_get_uint64(props, "BytesDone");
	guint64 total = as_ctl_transfer_get_uint64(props, "BytesTotal");
	g_autofree gchar *done_str = as_ctl_format_size(done);
	g_autofree gchar *total_str = NULL;

	if (total == 0)
		return g_steal_pointer(&done_str);
	total_str = as_ctl_format_size(total);
	/* TRANSLATORS: progress in 'transfers': percent, bytes done, bytes in all */
	return g_strdup_printf(_("%u%% %s of %s"),
			       (guint)(MIN(done, total) * AS_CTL_PERCENT / total), done_str,
			       total_str);
}

static void
as_ctl_transfers_print_human(AsCtl *self, GPtrArray *infos)
{
	const gchar *headers[] = {
		/* TRANSLATORS: column of 'transfers' */
		_("ID"),
		/* TRANSLATORS: column of 'transfers': send or receive */
		_("DIRECTION"),
		/* TRANSLATORS: column of 'transfers' */
		_("STATE"),
		/* TRANSLATORS: column of 'transfers' */
		_("PROGRESS"),
		/* TRANSLATORS: column of 'transfers': current speed */
		_("RATE"),
		/* TRANSLATORS: column of 'transfers': files done of files in all */
		_("FILES"),
		/* TRANSLATORS: column of 'transfers': the destination or the sender */
		_("PEER"),
		/* TRANSLATORS: column of 'transfers': the current or only file */
		_("FILE"),
		NULL,
	};
	g_autoptr(AsCtlTable) table = NULL;

	if (infos->len == 0) {
		/* TRANSLATORS: 'transfers' when there is nothing to list */
		g_print("%s\n", _("No transfers."));
		return;
	}
	table = as_ctl_table_new(headers);
	as_ctl_table_set_align_right(table, 3);
	as_ctl_table_set_align_right(table, 4);
	as_ctl_table_set_align_right(table, 5);
	for (guint i = 0; i < infos->len; i++) {
		AsCtlTransferInfo *info = g_ptr_array_index(infos, i);
		GVariant *props = info->props;
		const gchar *id = as_ctl_transfer_get_string(props, "Id");
		const gchar *direction = as_ctl_transfer_get_string(props, "Direction");
		const gchar *state = as_ctl_transfer_get_string(props, "State");
		const gchar *peer = as_ctl_transfer_get_string(props, "Destination");
		g_autofree gchar *id_short = g_utf8_substring(
			id, 0, MIN(g_utf8_strlen(id, -1), AS_CTL_TRANSFER_ID_SHORT));
		g_autofree gchar *progress = as_ctl_transfer_format_progress(props);
		g_autofree gchar *rate = NULL;
		g_autofree gchar *files =
			g_strdup_printf("%u/%u", as_ctl_transfer_get_uint32(props, "FilesDone"),
					as_ctl_transfer_get_uint32(props, "Files"));
		guint64 rate_bps = as_ctl_transfer_get_uint64(props, "Rate");

		if (peer[0] == '\0')
			peer = as_ctl_transfer_get_string(props, "Peer");
		rate = rate_bps > 0 ? as_ctl_format_rate(rate_bps) : g_strdup("-");
		as_ctl_table_add_row(table);
		as_ctl_table_add_cell(table, id_short, AS_CTL_COLOUR_NONE);
		as_ctl_table_add_cell(table, direction, AS_CTL_COLOUR_NONE);
		as_ctl_table_add_cell(table, state, as_ctl_transfer_state_colour(state));
		as_ctl_table_add_cell(table, progress, AS_CTL_COLOUR_NONE);
		as_ctl_table_add_cell(table, rate, AS_CTL_COLOUR_NONE);
		as_ctl_table_add_cell(table, files, AS_CTL_COLOUR_NONE);
		as_ctl_table_add_cell(table, peer, AS_CTL_COLOUR_NONE);
		as_ctl_table_add_cell(table, as_ctl_transfer_get_string(props, "Filename"),
				      AS_CTL_COLOUR_NONE);
	}
	as_ctl_table_print(self, table);
}

gboolean
as_ctl_transfers(AsCtl *self, gchar **values, GError **error)
{
	g_autoptr(GPtrArray) infos = as_ctl_transfers_list(self, error);

	if (infos == NULL)
		return FALSE;
	if (self->json)
		as_ctl_transfers_print_json(self, infos);
	else
		as_ctl_transfers_print_human(self, infos);
	return TRUE;
}

/* 'pause', 'resume', 'cancel' and 'limit' */

typedef enum {
	AS_CTL_TRANSFER_ACTION_PAUSE,
	AS_CTL_TRANSFER_ACTION_RESUME,
	AS_CTL_TRANSFER_ACTION_CANCEL,
	AS_CTL_TRANSFER_ACTION_LIMIT,
} AsCtlTransferAction;

static const gchar *
as_ctl_transfer_action_to_string(AsCtlTransferAction action)
{
	switch (action) {
	case AS_CTL_TRANSFER_ACTION_PAUSE:
		return "pause";
	case AS_CTL_TRANSFER_ACTION_RESUME:
		return "resume";
	case AS_CTL_TRANSFER_ACTION_CANCEL:
		return "cancel";
	case AS_CTL_TRANSFER_ACTION_LIMIT:
		return "limit";
	default:
		return NULL;
	}
}

static gboolean
as_ctl_transfer_call(AsCtl *self,
		     AsDbusTransfer1 *proxy,
		     AsCtlTransferAction action,
		     guint64 rate_limit,
		     GError **error)
{
	switch (action) {
	case AS_CTL_TRANSFER_ACTION_PAUSE:
		return as_dbus_transfer1_call_pause_sync(proxy, NULL, error);
	case AS_CTL_TRANSFER_ACTION_RESUME:
		return as_dbus_transfer1_call_resume_sync(proxy, NULL, error);
	case AS_CTL_TRANSFER_ACTION_CANCEL:
		return as_dbus_transfer1_call_cancel_sync(proxy, NULL, error);
	case AS_CTL_TRANSFER_ACTION_LIMIT:
		return as_dbus_transfer1_call_set_rate_limit_sync(proxy, rate_limit, NULL, error);
	default:
		g_assert_not_reached();
	}
}

static gchar *
as_ctl_transfer_action_failed(AsCtlTransferAction action, const gchar *id)
{
	switch (action) {
	case AS_CTL_TRANSFER_ACTION_PAUSE:
		/* TRANSLATORS: what failed, followed by why; %s is a transfer id */
		return g_strdup_printf(_("cannot pause transfer %s"), id);
	case AS_CTL_TRANSFER_ACTION_RESUME:
		/* TRANSLATORS: what failed, followed by why; %s is a transfer id */
		return g_strdup_printf(_("cannot resume transfer %s"), id);
	case AS_CTL_TRANSFER_ACTION_CANCEL:
		/* TRANSLATORS: what failed, followed by why; %s is a transfer id */
		return g_strdup_printf(_("cannot cancel transfer %s"), id);
	case AS_CTL_TRANSFER_ACTION_LIMIT:
		/* TRANSLATORS: what failed, followed by why; %s is a transfer id */
		return g_strdup_printf(_("cannot change the speed limit of transfer %s"), id);
	default:
		g_assert_not_reached();
	}
}

static void
as_ctl_transfer_action_print(AsCtl *self,
			     AsCtlTransferAction action,
			     const gchar *id,
			     const gchar *path,
			     guint64 rate_limit)
{
	g_autofree gchar *safe_id = as_ctl_sanitize_text(id);
	g_autofree gchar *rate = NULL;

	if (self->json) {
		g_autoptr(JsonBuilder) builder = json_builder_new();
		g_autoptr(JsonNode) root = NULL;

		json_builder_begin_object(builder);
		json_builder_set_member_name(builder, "id");
		json_builder_add_string_value(builder, id);
		json_builder_set_member_name(builder, "path");
		json_builder_add_string_value(builder, path);
		json_builder_set_member_name(builder, "action");
		json_builder_add_string_value(builder, as_ctl_transfer_action_to_string(action));
		if (action == AS_CTL_TRANSFER_ACTION_LIMIT) {
			json_builder_set_member_name(builder, "rate_limit");
			json_builder_add_int_value(builder, (gint64)rate_limit);
		}
		json_builder_end_object(builder);
		root = json_builder_get_root(builder);
		as_ctl_print_json(self, root);
		return;
	}
	switch (action) {
	case AS_CTL_TRANSFER_ACTION_PAUSE:
		/* TRANSLATORS: %s is a transfer id */
		g_print(_("Paused transfer %s; 'aerosyncctl resume %s' goes on."), safe_id,
			safe_id);
		break;
	case AS_CTL_TRANSFER_ACTION_RESUME:
		/* TRANSLATORS: %s is a transfer id */
		g_print(_("Resumed transfer %s."), safe_id);
		break;
	case AS_CTL_TRANSFER_ACTION_CANCEL:
		/* TRANSLATORS: %s is a transfer id */
		g_print(_("Cancelled transfer %s."), safe_id);
		break;
	case AS_CTL_TRANSFER_ACTION_LIMIT:
		if (rate_limit == 0) {
			/* TRANSLATORS: %s is a transfer id */
			g_print(_("Transfer %s has no speed limit now."), safe_id);
			break;
		}
		rate = as_rate_limit_format(rate_limit);
		/* TRANSLATORS: first %s is a transfer id, the second a speed such as 1 MiB/s */
		g_print(_("Transfer %s is limited to %s now."), safe_id, rate);
		break;
	default:
		g_assert_not_reached();
	}
	g_print("\n");
}

static gboolean
as_ctl_transfer_act(AsCtl *self,
		    const gchar *id_or_prefix,
		    AsCtlTransferAction action,
		    guint64 rate_limit,
		    GError **error)
{
	g_autofree gchar *path = as_ctl_transfer_find(self, id_or_prefix, error);
	g_autoptr(AsDbusTransfer1) proxy = NULL;
	g_autoptr(GError) error_local = NULL;
	g_autofree gchar *id = NULL;

	if (path == NULL)
		return FALSE;
	id = g_path_get_basename(path);
	proxy = AS_DBUS_TRANSFER1(as_dbus_transfer1_proxy_new_sync(
		self->connection,
		G_DBUS_PROXY_FLAGS_DO_NOT_CONNECT_SIGNALS | G_DBUS_PROXY_FLAGS_DO_NOT_AUTO_START,
		AS_DBUS_NAME, path, NULL, &error_local));
	if (proxy != NULL) {
		g_autofree gchar *id_property = as_dbus_transfer1_dup_id(proxy);
		if (id_property != NULL && id_property[0] != '\0') {
			g_free(id);
			id = g_steal_pointer(&id_property);
		}
		g_dbus_proxy_set_default_timeout(G_DBUS_PROXY(proxy), AS_CTL_DBUS_TIMEOUT_MS);
	}
	if (proxy == NULL || !as_ctl_transfer_call(self, proxy, action, rate_limit, &error_local)) {
		g_autofree gchar *safe_id = as_ctl_sanitize_text(id);
		g_autofree gchar *what = as_ctl_transfer_action_failed(action, safe_id);
		as_ctl_propagate_dbus_error(self, error, g_steal_pointer(&error_local), what);
		return FALSE;
	}
	as_ctl_transfer_action_print(self, action, id, path, rate_limit);
	return TRUE;
}

gboolean
as_ctl_transfer_pause(AsCtl *self, gchar **values, GError **error)
{
	return as_ctl_transfer_act(self, values[0], AS_CTL_TRANSFER_ACTION_PAUSE, 0, error);
}

gboolean
as_ctl_transfer_resume(AsCtl *self, gchar **values, GError **error)
{
	return as_ctl_transfer_act(self, values[0], AS_CTL_TRANSFER_ACTION_RESUME, 0, error);
}

gboolean
as_ctl_transfer_cancel(AsCtl *self, gchar **values, GError **error)
{
	return as_ctl_transfer_act(self, values[0], AS_CTL_TRANSFER_ACTION_CANCEL, 0, error);
}

gboolean
as_ctl_transfer_limit(AsCtl *self, gchar **values, GError **error)
{
	guint64 rate_limit = 0;
	g_autoptr(GError) error_local = NULL;

	/* the rate is checked before any bus call */
	if (!as_rate_limit_parse(values[1], &rate_limit, &error_local)) {
		g_set_error_literal(error, AS_CTL_ERROR, AS_CTL_EXIT_USAGE, error_local->message);
		return FALSE;
	}
	return as_ctl_transfer_act(self, values[0], AS_CTL_TRANSFER_ACTION_LIMIT, rate_limit,
				   error);
}
