/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "AsCtlDiscover"

#include "config.h"

#include <glib/gi18n.h>
#include <string.h>

#include "as-ctl-discover.h"
#include "as-error.h"

#if HAVE_MDNS
#include "as-mdns-browser.h"
#endif

/* long enough for a lossy Wi-Fi, short enough that a typo is not a wait */
#define AS_CTL_DISCOVER_TIMEOUT_MAX_S 60
/* the fingerprint column shows this many hex digits; --json has all of them */
#define AS_CTL_DISCOVER_FP_SHOWN 16

const GOptionEntry as_ctl_discover_options[] = {
	AS_CTL_OPTION_VALUE("timeout",
			    '\0',
			    /* TRANSLATORS: --timeout option of 'discover' */
			    N_("Listen for S seconds (default 3)"),
			    /* TRANSLATORS: placeholder for the value of --timeout, in seconds */
			    N_("S")),
	{NULL},
};

#if HAVE_MDNS

typedef struct {
	GMainLoop *loop;  /* (unowned) */
	GPtrArray *peers; /* (owned) (nullable) (element-type AsMdnsPeer) */
	GError *error;	  /* (owned) (nullable) */
} AsCtlDiscoverHelper;

static void
as_ctl_discover_browse_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	AsCtlDiscoverHelper *helper = user_data;
	helper->peers = as_mdns_browse_finish(res, &helper->error);
	g_main_loop_quit(helper->loop);
}

static gboolean
as_ctl_discover_parse_timeout(AsCtl *self, guint *timeout_ms, GError **error)
{
	const gchar *text = as_ctl_get_option(self, "timeout");
	gchar *end = NULL;
	gdouble seconds;

	*timeout_ms = AS_MDNS_BROWSE_TIMEOUT_DEFAULT_MS;
	if (text == NULL)
		return TRUE;
	seconds = g_ascii_strtod(text, &end);
	if (end == text || *end != '\0' || !(seconds > 0) ||
	    seconds > AS_CTL_DISCOVER_TIMEOUT_MAX_S) {
		g_set_error(error, AS_CTL_ERROR, AS_CTL_EXIT_USAGE,
			    /* TRANSLATORS: %s is the value given, %d the largest allowed */
			    _("invalid --timeout value '%s': give seconds, more than 0 and at "
			      "most %d"),
			    text, AS_CTL_DISCOVER_TIMEOUT_MAX_S);
		return FALSE;
	}
	*timeout_ms = (guint)(seconds * G_TIME_SPAN_MILLISECOND);
	if (*timeout_ms == 0)
		*timeout_ms = 1;
	return TRUE;
}

/* the 0.x keys (name, host, port, addr, version, ws_enabled, auth_required), then quic and fp */
static void
as_ctl_discover_print_json(AsCtl *self, GPtrArray *peers)
{
	g_autoptr(JsonBuilder) builder = json_builder_new();
	g_autoptr(JsonNode) root = NULL;

	json_builder_begin_array(builder);
	for (guint i = 0; i < peers->len; i++) {
		AsMdnsPeer *peer = g_ptr_array_index(peers, i);
		json_builder_begin_object(builder);
		json_builder_set_member_name(builder, "name");
		json_builder_add_string_value(builder, peer->name);
		json_builder_set_member_name(builder, "host");
		json_builder_add_string_value(builder, peer->host);
		json_builder_set_member_name(builder, "port");
		json_builder_add_int_value(builder, peer->port);
		json_builder_set_member_name(builder, "addr");
		if (peer->addr != NULL)
			json_builder_add_string_value(builder, peer->addr);
		else
			json_builder_add_null_value(builder);
		json_builder_set_member_name(builder, "version");
		if (peer->version != NULL)
			json_builder_add_string_value(builder, peer->version);
		else
			json_builder_add_null_value(builder);
		json_builder_set_member_name(builder, "ws_enabled");
		json_builder_add_boolean_value(builder, peer->ws);
		json_builder_set_member_name(builder, "auth_required");
		json_builder_add_boolean_value(builder, peer->auth);
		json_builder_set_member_name(builder, "quic");
		if (peer->quic != 0)
			json_builder_add_int_value(builder, peer->quic);
		else
			json_builder_add_null_value(builder);
		json_builder_set_member_name(builder, "fp");
		if (peer->fp != NULL)
			json_builder_add_string_value(builder, peer->fp);
		else
			json_builder_add_null_value(builder);
		json_builder_set_member_name(builder, "https");
		if (peer->https != 0)
			json_builder_add_int_value(builder, peer->https);
		else
			json_builder_add_null_value(builder);
		json_builder_end_object(builder);
	}
	json_builder_end_array(builder);
	root = json_builder_get_root(builder);
	as_ctl_print_json(self, root);
}

enum {
	AS_CTL_DISCOVER_COLUMN_NAME,
	AS_CTL_DISCOVER_COLUMN_ADDRESS,
	AS_CTL_DISCOVER_COLUMN_PORT,
	AS_CTL_DISCOVER_COLUMN_QUIC,
	AS_CTL_DISCOVER_COLUMN_AUTH,
	AS_CTL_DISCOVER_COLUMN_WS,
	AS_CTL_DISCOVER_COLUMN_VERSION,
	AS_CTL_DISCOVER_COLUMN_FINGERPRINT,
	AS_CTL_DISCOVER_COLUMN_HOST,
};

static void
as_ctl_discover_print_human(AsCtl *self, GPtrArray *peers)
{
	const gchar *headers[] = {
		/* TRANSLATORS: column of 'discover': the receiver's service name */
		_("NAME"),
		/* TRANSLATORS: column of 'discover': IP address */
		_("ADDRESS"),
		/* TRANSLATORS: column of 'discover': HTTP port */
		_("PORT"),
		/* TRANSLATORS: column of 'discover': QUIC port */
		_("QUIC"),
		/* TRANSLATORS: column of 'discover': whether a token is needed */
		_("AUTH"),
		/* TRANSLATORS: column of 'discover': whether WebSocket events are served */
		_("WS"),
		/* TRANSLATORS: column of 'discover': AeroSync version of the receiver */
		_("VERSION"),
		/* TRANSLATORS: column of 'discover': start of the TLS certificate's SHA-256 */
		_("FINGERPRINT"),
		/* TRANSLATORS: column of 'discover': mDNS host name */
		_("HOST"),
		NULL,
	};
	g_autoptr(AsCtlTable) table = NULL;

	if (peers->len == 0) {
		/* TRANSLATORS: 'discover' found nothing */
		g_print("%s\n", _("No AeroSync receivers found on the local network."));
		return;
	}
	table = as_ctl_table_new(headers);
	as_ctl_table_set_align_right(table, AS_CTL_DISCOVER_COLUMN_PORT);
	as_ctl_table_set_align_right(table, AS_CTL_DISCOVER_COLUMN_QUIC);
	for (guint i = 0; i < peers->len; i++) {
		AsMdnsPeer *peer = g_ptr_array_index(peers, i);
		g_autofree gchar *port = g_strdup_printf("%u", peer->port);
		g_autofree gchar *quic =
			peer->quic != 0 ? g_strdup_printf("%u", peer->quic) : g_strdup("-");
		g_autofree gchar *fp = NULL;

		if (peer->fp != NULL && strlen(peer->fp) > AS_CTL_DISCOVER_FP_SHOWN)
			fp = g_strdup_printf("%.*s%s", AS_CTL_DISCOVER_FP_SHOWN, peer->fp,
					     g_get_charset(NULL) ? "…" : "...");
		else
			fp = g_strdup(peer->fp != NULL ? peer->fp : "-");
		as_ctl_table_add_row(table);
		as_ctl_table_add_cell(table, peer->name, AS_CTL_COLOUR_BOLD);
		as_ctl_table_add_cell(table, peer->addr != NULL ? peer->addr : "-",
				      AS_CTL_COLOUR_NONE);
		as_ctl_table_add_cell(table, port, AS_CTL_COLOUR_NONE);
		as_ctl_table_add_cell(table, quic, AS_CTL_COLOUR_NONE);
		as_ctl_table_add_cell(table,
				      /* TRANSLATORS: 'discover', AUTH column: a token is needed */
				      peer->auth ? _("token")
						 /* TRANSLATORS: 'discover', AUTH column: open */
						 : _("none"),
				      peer->auth ? AS_CTL_COLOUR_NONE : AS_CTL_COLOUR_YELLOW);
		as_ctl_table_add_cell(table,
				      /* TRANSLATORS: 'discover', WS column: events are served */
				      peer->ws ? _("yes")
					       /* TRANSLATORS: 'discover', WS column: no events */
					       : _("no"),
				      AS_CTL_COLOUR_NONE);
		as_ctl_table_add_cell(table, peer->version != NULL ? peer->version : "?",
				      AS_CTL_COLOUR_NONE);
		as_ctl_table_add_cell(table, fp, AS_CTL_COLOUR_DIM);
		as_ctl_table_add_cell(table, peer->host, AS_CTL_COLOUR_DIM);
	}
	as_ctl_table_print(self, table);
}

#endif /* HAVE_MDNS */

/**
 * as_ctl_discover:
 * @self: the invocation
 * @values: no positional arguments
 * @error: a #GError, or %NULL
 *
 * Lists AeroSync receivers on the local network by browsing mDNS through avahi-daemon. It
 * does not need aerosyncd, so it never connects to the daemon's bus.
 */
gboolean
as_ctl_discover(AsCtl *self, gchar **values, GError **error)
{
#if HAVE_MDNS
	AsCtlDiscoverHelper helper = {0};
	g_autoptr(GMainContext) context = g_main_context_new();
	g_autoptr(GMainLoop) loop = g_main_loop_new(context, FALSE);
	g_autoptr(GPtrArray) peers = NULL;
	guint timeout_ms = 0;

	if (!as_ctl_discover_parse_timeout(self, &timeout_ms, error))
		return FALSE;

	/* a private context: nothing else of aerosyncctl runs while browsing */
	helper.loop = loop;
	g_main_context_push_thread_default(context);
	as_mdns_browse_async(timeout_ms, NULL, as_ctl_discover_browse_cb, &helper);
	g_main_loop_run(loop);
	g_main_context_pop_thread_default(context);
	peers = g_steal_pointer(&helper.peers);
	if (peers == NULL) {
		g_propagate_prefixed_error(error, g_steal_pointer(&helper.error), "%s: ",
					   /* TRANSLATORS: 'discover' failed; a reason follows */
					   _("cannot look for receivers on the local network"));
		return FALSE;
	}
	if (self->json)
		as_ctl_discover_print_json(self, peers);
	else
		as_ctl_discover_print_human(self, peers);
	return TRUE;
#else
	g_set_error_literal(error, AS_ERROR, AS_ERROR_NOT_SUPPORTED,
			    /* TRANSLATORS: 'discover' in a build without Avahi */
			    _("this aerosyncctl was built without mDNS (Avahi) support"));
	return FALSE;
#endif
}
