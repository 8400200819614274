/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "AsCtlSend"

#include "config.h"

#include <glib-unix.h>
#include <glib/gi18n.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "as-ctl-send.h"
#include "as-ctl-transfers.h"
#include "as-keys.h"
#include "as-rate-limit.h"
#include "as-sha256.h"

/* Send() a{sv} keys, as documented in data/org.aerosync.xml */
#define AS_CTL_SEND_KEY_TOKEN	   "Token"
#define AS_CTL_SEND_KEY_TOKEN_FILE "TokenFile"
#define AS_CTL_SEND_KEY_RECURSIVE  "Recursive"
#define AS_CTL_SEND_KEY_PROTOCOL   "Protocol"
#define AS_CTL_SEND_KEY_PARALLEL   "Parallel"
#define AS_CTL_SEND_KEY_RATE_LIMIT "RateLimit"
#define AS_CTL_SEND_KEY_VERIFY	   "Verify"
#define AS_CTL_SEND_KEY_PREFLIGHT  "Preflight"
#define AS_CTL_SEND_KEY_TAG	   "Tag"
#define AS_CTL_SEND_KEY_PIN	   "Pin"
#define AS_CTL_SEND_KEY_INSECURE   "Insecure"

/* chunks or files in flight: more than this only adds contention on one link */
#define AS_CTL_SEND_PARALLEL_MAX 64
/* X-AeroSync-Tag is a header: keep it short and printable */
#define AS_CTL_SEND_TAG_MAX 256

/* the live display is redrawn at most this often; --json progress is rarer */
#define AS_CTL_FOLLOW_REDRAW_MS	       100
#define AS_CTL_FOLLOW_JSON_INTERVAL_US (500 * G_TIME_SPAN_MILLISECOND)
/* without a terminal, a progress line this often at most, so logs stay readable */
#define AS_CTL_FOLLOW_PLAIN_INTERVAL_US (5 * G_TIME_SPAN_SECOND)
#define AS_CTL_FOLLOW_BAR_WIDTH_MIN	10
#define AS_CTL_FOLLOW_BAR_WIDTH_MAX	30
#define AS_CTL_FOLLOW_BAR_EXTRA		3
#define AS_CTL_FOLLOW_TERM_WIDTH	80
#define AS_CTL_FOLLOW_PERCENT		100
/* a failed send that moved nothing: is the receiver there at all? */
#define AS_CTL_FOLLOW_PROBE_TIMEOUT_S 3
#define AS_CTL_SECONDS_PER_MINUTE     60
#define AS_CTL_SECONDS_PER_HOUR	      3600

const GOptionEntry as_ctl_send_options[] = {
	AS_CTL_OPTION_VALUE("token-file",
			    '\0',
			    /* TRANSLATORS: --token-file option of 'send' */
			    N_("Authenticate with the token in FILE (aerosyncd reads it)"),
			    /* TRANSLATORS: placeholder for the value of --token-file */
			    N_("FILE")),
	AS_CTL_OPTION_VALUE("token",
			    '\0',
			    /* TRANSLATORS: --token option of 'send' */
			    N_("Authenticate with TOKEN (other users can see it in ps)"),
			    /* TRANSLATORS: placeholder for the value of --token */
			    N_("TOKEN")),
	/* TRANSLATORS: --recursive option of 'send' */
	AS_CTL_OPTION_FLAG("recursive", 'r', N_("Send directories with all they contain")),
	AS_CTL_OPTION_VALUE("protocol",
			    '\0',
			    /* TRANSLATORS: --protocol option of 'send'; keep the values */
			    N_("auto (default), http, https or quic"),
			    /* TRANSLATORS: placeholder for the value of --protocol */
			    N_("PROTOCOL")),
	AS_CTL_OPTION_VALUE("limit",
			    '\0',
			    /* TRANSLATORS: --limit option of 'send' */
			    N_("Send at most RATE, e.g. 512KB, 10MB/s or 1.5M"),
			    /* TRANSLATORS: placeholder for the value of --limit */
			    N_("RATE")),
	AS_CTL_OPTION_VALUE("parallel",
			    '\0',
			    /* TRANSLATORS: --parallel option of 'send' */
			    N_("Chunks or files in flight at once (1 to 64)"),
			    /* TRANSLATORS: placeholder for the value of --parallel */
			    N_("N")),
	/* TRANSLATORS: --no-verify option of 'send' */
	AS_CTL_OPTION_FLAG("no-verify", '\0', N_("Do not wait for the receiver to check SHA-256")),
	/* TRANSLATORS: --no-preflight option of 'send' */
	AS_CTL_OPTION_FLAG("no-preflight", '\0', N_("Skip the receiver's free space check")),
	AS_CTL_OPTION_VALUE("tag",
			    '\0',
			    /* TRANSLATORS: --tag option of 'send' */
			    N_("Tag for the receiver's routing rules (X-AeroSync-Tag)"),
			    /* TRANSLATORS: placeholder for the value of --tag */
			    N_("TAG")),
	AS_CTL_OPTION_VALUE("pin",
			    '\0',
			    /* TRANSLATORS: --pin option of 'send' */
			    N_("Trust only the receiver certificate with this SHA-256"),
			    /* TRANSLATORS: placeholder for the value of --pin */
			    N_("SHA256")),
	/* TRANSLATORS: --insecure option of 'send' */
	AS_CTL_OPTION_FLAG("insecure", '\0', N_("Do not check the receiver's certificate")),
	/* TRANSLATORS: --detach option of 'send' */
	AS_CTL_OPTION_FLAG("detach", '\0', N_("Print the transfer id and return at once")),
	{NULL},
};

static gboolean
as_ctl_send_usage_error(GError **error, const gchar *message)
{
	g_set_error(error, AS_CTL_ERROR, AS_CTL_EXIT_USAGE,
		    /* TRANSLATORS: %s says what is wrong with the command line */
		    _("%s (see 'aerosyncctl help send')"), message);
	return FALSE;
}

static gboolean
as_ctl_send_text_is_printable(const gchar *text)
{
	for (const gchar *p = text; *p != '\0'; p++) {
		if (!g_ascii_isprint(*p))
			return FALSE;
	}
	return TRUE;
}

/* everything the command line says, checked before any bus call */
static gboolean
as_ctl_send_build_options(AsCtl *self, GVariantDict *dict, GError **error)
{
	const gchar *token = as_ctl_get_option(self, "token");
	const gchar *token_file = as_ctl_get_option(self, "token-file");
	const gchar *protocol = as_ctl_get_option(self, "protocol");
	const gchar *limit = as_ctl_get_option(self, "limit");
	const gchar *parallel = as_ctl_get_option(self, "parallel");
	const gchar *tag = as_ctl_get_option(self, "tag");
	const gchar *pin = as_ctl_get_option(self, "pin");

	if (token != NULL && token_file != NULL) {
		return as_ctl_send_usage_error(error,
					       /* TRANSLATORS: keep the options untranslated */
					       _("--token and --token-file exclude each other"));
	}
	if (token != NULL && token[0] == '\0')
		/* TRANSLATORS: keep the option untranslated */
		return as_ctl_send_usage_error(error, _("--token is empty"));
	if (token_file != NULL && token_file[0] == '\0')
		/* TRANSLATORS: keep the option untranslated */
		return as_ctl_send_usage_error(error, _("--token-file is empty"));
	if (token_file != NULL) {
		/* the daemon opens it, from its own working directory */
		g_autofree gchar *absolute = g_canonicalize_filename(token_file, NULL);
		g_variant_dict_insert(dict, AS_CTL_SEND_KEY_TOKEN_FILE, "s", absolute);
	}
	if (token != NULL) {
		g_printerr("%s\n",
			   /* TRANSLATORS: warning; keep the options untranslated */
			   _("aerosyncctl: warning: --token is visible to other users in 'ps'; "
			     "prefer --token-file"));
		g_variant_dict_insert(dict, AS_CTL_SEND_KEY_TOKEN, "s", token);
	}
	if (as_ctl_has_option(self, "recursive"))
		g_variant_dict_insert(dict, AS_CTL_SEND_KEY_RECURSIVE, "b", TRUE);
	if (protocol != NULL) {
		const gchar *protocols[] = {"auto", "http", "https", "quic", NULL};
		if (!g_strv_contains(protocols, protocol)) {
			g_autofree gchar *safe = as_ctl_sanitize_text(protocol);
			g_autofree gchar *message =
				/* TRANSLATORS: %s is the value given; keep the values untranslated
				 */
				g_strdup_printf(_("invalid --protocol '%s': use auto, http, https "
						  "or quic"),
						safe);
			return as_ctl_send_usage_error(error, message);
		}
		g_variant_dict_insert(dict, AS_CTL_SEND_KEY_PROTOCOL, "s", protocol);
	}
	if (limit != NULL) {
		guint64 bytes_per_s = 0;
		g_autoptr(GError) error_local = NULL;
		if (!as_rate_limit_parse(limit, &bytes_per_s, &error_local)) {
			g_autofree gchar *message =
				/* TRANSLATORS: %s says why the rate is wrong */
				g_strdup_printf(_("invalid --limit: %s"), error_local->message);
			return as_ctl_send_usage_error(error, message);
		}
		g_variant_dict_insert(dict, AS_CTL_SEND_KEY_RATE_LIMIT, "t", bytes_per_s);
	}
	if (parallel != NULL) {
		guint64 value = 0;
		if (!g_ascii_string_to_unsigned(parallel, 10, 1, AS_CTL_SEND_PARALLEL_MAX, &value,
						NULL)) {
			g_autofree gchar *safe = as_ctl_sanitize_text(parallel);
			g_autofree gchar *message =
				/* TRANSLATORS: %s is the value given, %d the largest allowed */
				g_strdup_printf(
					_("invalid --parallel '%s': give a number from 1 to "
					  "%d"),
					safe, AS_CTL_SEND_PARALLEL_MAX);
			return as_ctl_send_usage_error(error, message);
		}
		g_variant_dict_insert(dict, AS_CTL_SEND_KEY_PARALLEL, "u", (guint32)value);
	}
	if (as_ctl_has_option(self, "no-verify"))
		g_variant_dict_insert(dict, AS_CTL_SEND_KEY_VERIFY, "b", FALSE);
	if (as_ctl_has_option(self, "no-preflight"))
		g_variant_dict_insert(dict, AS_CTL_SEND_KEY_PREFLIGHT, "b", FALSE);
	if (tag != NULL) {
		if (tag[0] == '\0' || strlen(tag) > AS_CTL_SEND_TAG_MAX ||
		    !as_ctl_send_text_is_printable(tag)) {
			g_autofree gchar *message = g_strdup_printf(
				/* TRANSLATORS: %d is the longest tag allowed */
				_("invalid --tag: give 1 to %d printable ASCII characters"),
				AS_CTL_SEND_TAG_MAX);
			return as_ctl_send_usage_error(error, message);
		}
		g_variant_dict_insert(dict, AS_CTL_SEND_KEY_TAG, "s", tag);
	}
	if (pin != NULL && as_ctl_has_option(self, "insecure")) {
		return as_ctl_send_usage_error(error,
					       /* TRANSLATORS: keep the options untranslated */
					       _("--pin and --insecure exclude each other"));
	}
	if (pin != NULL) {
		g_autofree gchar *hex = as_sha256_hex_normalize(pin);
		if (hex == NULL) {
			return as_ctl_send_usage_error(
				error,
				/* TRANSLATORS: keep the option untranslated */
				_("invalid --pin: give the certificate's SHA-256 as 64 hex "
				  "digits"));
		}
		g_variant_dict_insert(dict, AS_CTL_SEND_KEY_PIN, "s", hex);
	}
	if (as_ctl_has_option(self, "insecure"))
		g_variant_dict_insert(dict, AS_CTL_SEND_KEY_INSECURE, "b", TRUE);
	return TRUE;
}

/* following a transfer */

/* one reading of the org.aerosync.Transfer1 properties */
typedef struct {
	gchar *id;	    /* (owned) */
	gchar *direction;   /* (owned) */
	gchar *state;	    /* (owned) */
	gchar *filename;    /* (owned) */
	gchar *destination; /* (owned) */
	gchar *peer;	    /* (owned) */
	gchar *protocol;    /* (owned) */
	gchar *error;	    /* (owned) */
	guint64 bytes_done;
	guint64 bytes_total;
	guint64 rate;
	gint64 eta;
	gint64 started_at_us;
	guint32 files;
	guint32 files_done;
	guint32 files_failed;
} AsCtlTransferSnapshot;

static void
as_ctl_transfer_snapshot_clear(AsCtlTransferSnapshot *snap)
{
	g_clear_pointer(&snap->id, g_free);
	g_clear_pointer(&snap->direction, g_free);
	g_clear_pointer(&snap->state, g_free);
	g_clear_pointer(&snap->filename, g_free);
	g_clear_pointer(&snap->destination, g_free);
	g_clear_pointer(&snap->peer, g_free);
	g_clear_pointer(&snap->protocol, g_free);
	g_clear_pointer(&snap->error, g_free);
}

static gchar *
as_ctl_lookup_string(GVariant *dict, const gchar *key)
{
	const gchar *value = NULL;
	if (!g_variant_lookup(dict, key, "&s", &value))
		return g_strdup("");
	return g_strdup(value);
}

/* @dict: the a{sv} of GetAll, or the proxy's cache */
static void
as_ctl_transfer_snapshot_load(AsCtlTransferSnapshot *snap, GVariant *dict)
{
	as_ctl_transfer_snapshot_clear(snap);
	snap->id = as_ctl_lookup_string(dict, "Id");
	snap->direction = as_ctl_lookup_string(dict, "Direction");
	snap->state = as_ctl_lookup_string(dict, "State");
	snap->filename = as_ctl_lookup_string(dict, "Filename");
	snap->destination = as_ctl_lookup_string(dict, "Destination");
	snap->peer = as_ctl_lookup_string(dict, "Peer");
	snap->protocol = as_ctl_lookup_string(dict, "Protocol");
	snap->error = as_ctl_lookup_string(dict, "Error");
	snap->eta = -1;
	g_variant_lookup(dict, "BytesDone", "t", &snap->bytes_done);
	g_variant_lookup(dict, "BytesTotal", "t", &snap->bytes_total);
	g_variant_lookup(dict, "Rate", "t", &snap->rate);
	g_variant_lookup(dict, "Eta", "x", &snap->eta);
	g_variant_lookup(dict, "StartedAt", "x", &snap->started_at_us);
	g_variant_lookup(dict, "Files", "u", &snap->files);
	g_variant_lookup(dict, "FilesDone", "u", &snap->files_done);
	g_variant_lookup(dict, "FilesFailed", "u", &snap->files_failed);
}

static gboolean
as_ctl_transfer_state_is_final(const gchar *state)
{
	return g_strcmp0(state, "completed") == 0 || g_strcmp0(state, "failed") == 0 ||
	       g_strcmp0(state, "cancelled") == 0;
}

typedef struct {
	AsCtl *ctl;		    /* (unowned) */
	GMainLoop *loop;	    /* (owned) */
	AsDbusTransfer1 *proxy;	    /* (owned) */
	gchar *path;		    /* (owned) */
	AsCtlTransferSnapshot snap; /* the latest reading */
	gchar *last_state;	    /* (owned) (nullable): the state last reported */
	gchar *finished_error;	    /* (owned) (nullable): from TransferFinished */
	gboolean tty;		    /* redraw a live display on stdout */
	gboolean dirty;		    /* the display is behind the snapshot */
	guint lines_drawn;	    /* lines of the live display on screen */
	gint64 last_json_us;	    /* when the last --json progress event went out */
	gint64 last_plain_us;	    /* when the last plain progress line went out */
	guint64 last_plain_bytes;   /* what it said */
	gboolean finished;	    /* the transfer reached a final state */
	gboolean interrupted;	    /* Ctrl-C */
	gboolean daemon_gone;	    /* aerosyncd left the bus */
} AsCtlFollow;

static void
as_ctl_follow_clear(AsCtlFollow *follow)
{
	g_clear_pointer(&follow->loop, g_main_loop_unref);
	g_clear_object(&follow->proxy);
	g_clear_pointer(&follow->path, g_free);
	g_clear_pointer(&follow->last_state, g_free);
	g_clear_pointer(&follow->finished_error, g_free);
	as_ctl_transfer_snapshot_clear(&follow->snap);
}

static GVariant *
as_ctl_follow_cached_properties(AsCtlFollow *follow)
{
	g_auto(GStrv) names = g_dbus_proxy_get_cached_property_names(G_DBUS_PROXY(follow->proxy));
	GVariantBuilder builder;

	g_variant_builder_init(&builder, G_VARIANT_TYPE_VARDICT);
	for (guint i = 0; names != NULL && names[i] != NULL; i++) {
		g_autoptr(GVariant) value =
			g_dbus_proxy_get_cached_property(G_DBUS_PROXY(follow->proxy), names[i]);
		if (value != NULL)
			g_variant_builder_add(&builder, "{sv}", names[i], value);
	}
	return g_variant_ref_sink(g_variant_builder_end(&builder));
}

static void
as_ctl_follow_reload_cache(AsCtlFollow *follow)
{
	g_autoptr(GVariant) dict = as_ctl_follow_cached_properties(follow);
	as_ctl_transfer_snapshot_load(&follow->snap, dict);
}

/* the final numbers: PropertiesChanged is batched, so it may trail TransferFinished */
static void
as_ctl_follow_reload_now(AsCtlFollow *follow)
{
	g_autoptr(GVariant) reply = NULL;
	g_autoptr(GVariant) dict = NULL;
	g_autoptr(GError) error_local = NULL;

	reply = g_dbus_connection_call_sync(
		follow->ctl->connection, AS_DBUS_NAME, follow->path,
		"org.freedesktop.DBus.Properties", "GetAll",
		g_variant_new("(s)", as_dbus_transfer1_interface_info()->name),
		G_VARIANT_TYPE("(a{sv})"), G_DBUS_CALL_FLAGS_NO_AUTO_START, AS_CTL_DBUS_TIMEOUT_MS,
		NULL, &error_local);
	if (reply == NULL) {
		g_debug("keeping the cached properties: %s", error_local->message);
		return;
	}
	g_variant_get(reply, "(@a{sv})", &dict);
	as_ctl_transfer_snapshot_load(&follow->snap, dict);
}

static const gchar *
as_ctl_follow_peer(AsCtlFollow *follow)
{
	if (follow->snap.destination[0] != '\0')
		return follow->snap.destination;
	return follow->snap.peer;
}

static gchar *
as_ctl_format_eta(gint64 seconds)
{
	if (seconds < 0)
		return g_strdup("--:--");
	if (seconds >= AS_CTL_SECONDS_PER_HOUR) {
		return g_strdup_printf(
			"%" G_GINT64_FORMAT ":%02d:%02d", seconds / AS_CTL_SECONDS_PER_HOUR,
			(gint)(seconds % AS_CTL_SECONDS_PER_HOUR / AS_CTL_SECONDS_PER_MINUTE),
			(gint)(seconds % AS_CTL_SECONDS_PER_MINUTE));
	}
	return g_strdup_printf("%d:%02d", (gint)(seconds / AS_CTL_SECONDS_PER_MINUTE),
			       (gint)(seconds % AS_CTL_SECONDS_PER_MINUTE));
}

static guint
as_ctl_follow_percent(AsCtlTransferSnapshot *snap)
{
	if (snap->bytes_total == 0)
		return 0;
	return (guint)(MIN(snap->bytes_done, snap->bytes_total) * AS_CTL_FOLLOW_PERCENT /
		       snap->bytes_total);
}

/* "45%  12.3 MB of 100 MB  8.1 MB/s  ETA 0:11  3/10 files", or the state when not running */
static gchar *
as_ctl_follow_format_progress(AsCtlFollow *follow)
{
	AsCtlTransferSnapshot *snap = &follow->snap;
	g_autoptr(GString) line = g_string_new(NULL);
	g_autofree gchar *done = as_ctl_format_size(snap->bytes_done);

	if (snap->bytes_total > 0) {
		g_autofree gchar *total = as_ctl_format_size(snap->bytes_total);
		/* TRANSLATORS: live progress: percent, bytes done, bytes in all */
		g_string_append_printf(line, _("%3u%%  %s of %s"), as_ctl_follow_percent(snap),
				       done, total);
	} else {
		g_string_append(line, done);
	}
	if (g_strcmp0(snap->state, "running") == 0) {
		g_autofree gchar *rate = as_ctl_format_rate(snap->rate);
		g_autofree gchar *eta = as_ctl_format_eta(snap->eta);
		/* TRANSLATORS: live progress: speed, then the time left (H:MM:SS or M:SS) */
		g_string_append_printf(line, _("  %s  ETA %s"), rate, eta);
	} else {
		g_autofree gchar *state = as_ctl_sanitize_text(snap->state);
		g_string_append_printf(line, "  %s", state);
	}
	if (snap->files > 0) {
		g_string_append(line, "  ");
		/* TRANSLATORS: live progress: files done of files in all */
		g_string_append_printf(line, ngettext("%u/%u file", "%u/%u files", snap->files),
				       snap->files_done, snap->files);
		if (snap->files_failed > 0) {
			g_string_append(line, ", ");
			/* TRANSLATORS: live progress: files that failed so far */
			g_string_append_printf(
				line, ngettext("%u failed", "%u failed", snap->files_failed),
				snap->files_failed);
		}
	}
	return g_string_free(g_steal_pointer(&line), FALSE);
}

static guint
as_ctl_follow_terminal_width(void)
{
	struct winsize ws = {0};
	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
		return ws.ws_col;
	return AS_CTL_FOLLOW_TERM_WIDTH;
}

/* cuts @text to @width columns, keeping the end (the file name) when @keep_end */
static gchar *
as_ctl_follow_fit(const gchar *text, guint width, gboolean keep_end)
{
	const gchar *ellipsis = g_get_charset(NULL) ? "…" : "~";
	glong n_chars = g_utf8_strlen(text, -1);

	if (as_ctl_display_width(text) <= width)
		return g_strdup(text);
	/* drop characters until it fits with the ellipsis */
	for (glong keep = n_chars - 1; keep > 0; keep--) {
		g_autofree gchar *part = keep_end ? g_utf8_substring(text, n_chars - keep, n_chars)
						  : g_utf8_substring(text, 0, keep);
		if (as_ctl_display_width(part) + 1 <= width) {
			return keep_end ? g_strconcat(ellipsis, part, NULL)
					: g_strconcat(part, ellipsis, NULL);
		}
	}
	return g_strdup(ellipsis);
}

/* "[####------] " in what room the text leaves, or nothing on a narrow terminal */
static gchar *
as_ctl_follow_bar(AsCtlTransferSnapshot *snap, guint room)
{
	guint width = MIN(room, AS_CTL_FOLLOW_BAR_WIDTH_MAX);
	guint filled;
	GString *bar;

	if (snap->bytes_total == 0 || width < AS_CTL_FOLLOW_BAR_WIDTH_MIN)
		return g_strdup("");
	filled = as_ctl_follow_percent(snap) * width / AS_CTL_FOLLOW_PERCENT;
	bar = g_string_new("[");
	for (guint i = 0; i < width; i++)
		g_string_append_c(bar, i < filled ? '#' : '-');
	g_string_append(bar, "] ");
	return g_string_free(bar, FALSE);
}

/* the live display: the whole transfer, then the current file; rewritten in place */
static void
as_ctl_follow_redraw(AsCtlFollow *follow)
{
	guint width = as_ctl_follow_terminal_width();
	/* a line as wide as the terminal wraps on some terminals: stay one column short */
	guint fit = width > 1 ? width - 1 : width;
	g_autofree gchar *progress = as_ctl_follow_format_progress(follow);
	guint progress_width = as_ctl_display_width(progress);
	/* the brackets and the space around the bar take AS_CTL_FOLLOW_BAR_EXTRA columns */
	g_autofree gchar *bar = as_ctl_follow_bar(
		&follow->snap, fit > progress_width + AS_CTL_FOLLOW_BAR_EXTRA
				       ? fit - progress_width - AS_CTL_FOLLOW_BAR_EXTRA
				       : 0);
	g_autofree gchar *line1 = g_strdup_printf("%s%s", bar, progress);
	g_autofree gchar *name = as_ctl_sanitize_text(follow->snap.filename);
	g_autofree gchar *line2 =
		g_strdup_printf("  %s %s", g_get_charset(NULL) ? "→" : "->", name);
	g_autofree gchar *fitted1 = as_ctl_follow_fit(line1, fit, FALSE);
	g_autofree gchar *fitted2 = as_ctl_follow_fit(line2, fit, TRUE);
	const gchar *lines[] = {fitted1, name[0] != '\0' ? fitted2 : "", NULL};
	g_autoptr(GString) out = g_string_new(NULL);

	if (follow->lines_drawn > 0)
		g_string_append_printf(out, "\033[%uA", follow->lines_drawn);
	for (guint i = 0; lines[i] != NULL; i++) {
		g_autofree gchar *coloured = NULL;
		AsCtlColour colour = AS_CTL_COLOUR_NONE;
		if (i == 0 && g_strcmp0(follow->snap.state, "paused") == 0)
			colour = AS_CTL_COLOUR_YELLOW;
		coloured = as_ctl_colourise(follow->ctl, lines[i], colour);
		g_string_append_printf(out, "\r\033[2K%s\n", coloured);
	}
	follow->lines_drawn = G_N_ELEMENTS(lines) - 1;
	fputs(out->str, stdout);
	fflush(stdout);
	follow->dirty = FALSE;
}

static JsonBuilder *
as_ctl_follow_json_begin(AsCtlFollow *follow, const gchar *event)
{
	JsonBuilder *builder = json_builder_new();
	json_builder_begin_object(builder);
	json_builder_set_member_name(builder, "event");
	json_builder_add_string_value(builder, event);
	json_builder_set_member_name(builder, "id");
	json_builder_add_string_value(builder, follow->snap.id);
	return builder;
}

static void
as_ctl_follow_json_end(AsCtlFollow *follow, JsonBuilder *builder)
{
	g_autoptr(JsonNode) root = NULL;
	json_builder_end_object(builder);
	root = json_builder_get_root(builder);
	as_ctl_print_json_line(follow->ctl, root);
}

static void
as_ctl_json_add_uint(JsonBuilder *builder, const gchar *name, guint64 value)
{
	json_builder_set_member_name(builder, name);
	json_builder_add_int_value(builder, (gint64)MIN(value, (guint64)G_MAXINT64));
}

static void
as_ctl_json_add_string(JsonBuilder *builder, const gchar *name, const gchar *value)
{
	json_builder_set_member_name(builder, name);
	json_builder_add_string_value(builder, value);
}

static void
as_ctl_follow_json_add_counts(AsCtlFollow *follow, JsonBuilder *builder)
{
	AsCtlTransferSnapshot *snap = &follow->snap;
	as_ctl_json_add_uint(builder, "bytes_done", snap->bytes_done);
	as_ctl_json_add_uint(builder, "bytes_total", snap->bytes_total);
	as_ctl_json_add_uint(builder, "files_done", snap->files_done);
	as_ctl_json_add_uint(builder, "files_failed", snap->files_failed);
	as_ctl_json_add_uint(builder, "files", snap->files);
}

static void
as_ctl_follow_print_started(AsCtlFollow *follow)
{
	AsCtlTransferSnapshot *snap = &follow->snap;

	if (follow->ctl->json) {
		g_autoptr(JsonBuilder) builder = as_ctl_follow_json_begin(follow, "started");
		as_ctl_json_add_string(builder, "path", follow->path);
		as_ctl_json_add_string(builder, "direction", snap->direction);
		as_ctl_json_add_string(builder, "destination", as_ctl_follow_peer(follow));
		as_ctl_json_add_string(builder, "state", snap->state);
		as_ctl_json_add_string(builder, "protocol", snap->protocol);
		as_ctl_follow_json_add_counts(follow, builder);
		as_ctl_follow_json_end(follow, builder);
		return;
	}
	{
		g_autofree gchar *id = as_ctl_sanitize_text(snap->id);
		g_autofree gchar *peer = as_ctl_sanitize_text(as_ctl_follow_peer(follow));
		if (g_strcmp0(snap->direction, "receive") == 0)
			/* TRANSLATORS: first line when following; %s are a transfer id and an
			 * address */
			g_print(_("Receiving transfer %s from %s"), id, peer);
		else
			/* TRANSLATORS: first line when following; %s are a transfer id and an
			 * address */
			g_print(_("Sending transfer %s to %s"), id, peer);
		if (follow->tty) {
			g_print(" ");
			/* TRANSLATORS: after "Sending transfer ID to HOST" on a terminal */
			g_print("%s", _("(Ctrl-C detaches, the transfer goes on)"));
		}
		g_print("\n");
		fflush(stdout);
	}
}

static void
as_ctl_follow_report_state(AsCtlFollow *follow)
{
	AsCtlTransferSnapshot *snap = &follow->snap;

	if (snap->state[0] == '\0' || g_strcmp0(follow->last_state, snap->state) == 0)
		return;
	g_free(follow->last_state);
	follow->last_state = g_strdup(snap->state);
	/* final states get their own report */
	if (as_ctl_transfer_state_is_final(snap->state))
		return;
	if (follow->ctl->json) {
		g_autoptr(JsonBuilder) builder = as_ctl_follow_json_begin(follow, "state");
		as_ctl_json_add_string(builder, "state", snap->state);
		as_ctl_json_add_string(builder, "protocol", snap->protocol);
		as_ctl_follow_json_end(follow, builder);
	} else if (!follow->tty) {
		g_autofree gchar *state = as_ctl_sanitize_text(snap->state);
		if (snap->protocol[0] != '\0') {
			g_autofree gchar *protocol = as_ctl_sanitize_text(snap->protocol);
			g_print("  %s (%s)\n", state, protocol);
		} else {
			g_print("  %s\n", state);
		}
		fflush(stdout);
	}
}

static void
as_ctl_follow_report_progress(AsCtlFollow *follow, gboolean force)
{
	AsCtlTransferSnapshot *snap = &follow->snap;
	gint64 now_us = g_get_monotonic_time();

	if (follow->ctl->json) {
		g_autoptr(JsonBuilder) builder = NULL;
		if (!force && now_us - follow->last_json_us < AS_CTL_FOLLOW_JSON_INTERVAL_US)
			return;
		follow->last_json_us = now_us;
		builder = as_ctl_follow_json_begin(follow, "progress");
		as_ctl_follow_json_add_counts(follow, builder);
		as_ctl_json_add_uint(builder, "rate", snap->rate);
		json_builder_set_member_name(builder, "eta");
		json_builder_add_int_value(builder, snap->eta);
		as_ctl_json_add_string(builder, "file", snap->filename);
		as_ctl_follow_json_end(follow, builder);
		return;
	}
	if (follow->tty) {
		follow->dirty = TRUE;
		return;
	}
	/* in a log, the state lines say enough until data moves */
	if (!force && g_strcmp0(snap->state, "running") != 0)
		return;
	if (!force && now_us - follow->last_plain_us < AS_CTL_FOLLOW_PLAIN_INTERVAL_US)
		return;
	if (snap->bytes_done == follow->last_plain_bytes && follow->last_plain_us != 0)
		return;
	follow->last_plain_us = now_us;
	follow->last_plain_bytes = snap->bytes_done;
	{
		g_autofree gchar *progress = as_ctl_follow_format_progress(follow);
		g_print("  %s\n", progress);
		fflush(stdout);
	}
}

static void
as_ctl_follow_finish(AsCtlFollow *follow)
{
	if (follow->finished)
		return;
	follow->finished = TRUE;
	as_ctl_follow_reload_now(follow);
	g_main_loop_quit(follow->loop);
}

static void
as_ctl_follow_properties_changed_cb(GDBusProxy *proxy,
				    GVariant *changed,
				    const gchar *const *invalidated,
				    gpointer user_data)
{
	AsCtlFollow *follow = user_data;
	g_autofree gchar *owner = g_dbus_proxy_get_name_owner(proxy);

	/* a daemon that left takes its properties with it: keep the last reading */
	if (follow->finished || owner == NULL)
		return;
	as_ctl_follow_reload_cache(follow);
	as_ctl_follow_report_state(follow);
	if (as_ctl_transfer_state_is_final(follow->snap.state)) {
		as_ctl_follow_finish(follow);
		return;
	}
	as_ctl_follow_report_progress(follow, FALSE);
}

static void
as_ctl_follow_transfer_finished_cb(GDBusConnection *connection,
				   const gchar *sender_name,
				   const gchar *object_path,
				   const gchar *interface_name,
				   const gchar *signal_name,
				   GVariant *parameters,
				   gpointer user_data)
{
	AsCtlFollow *follow = user_data;
	const gchar *path = NULL;
	const gchar *state = NULL;
	g_autoptr(GVariant) info = NULL;
	const gchar *error = NULL;

	if (!g_variant_is_of_type(parameters, G_VARIANT_TYPE("(osa{sv})")))
		return;
	g_variant_get(parameters, "(&o&s@a{sv})", &path, &state, &info);
	if (g_strcmp0(path, follow->path) != 0)
		return;
	if (g_variant_lookup(info, "error", "&s", &error)) {
		g_free(follow->finished_error);
		follow->finished_error = g_strdup(error);
	}
	g_debug("transfer finished: %s", state);
	as_ctl_follow_finish(follow);
}

static void
as_ctl_follow_name_owner_cb(GObject *object, GParamSpec *pspec, gpointer user_data)
{
	AsCtlFollow *follow = user_data;
	g_autofree gchar *owner = g_dbus_proxy_get_name_owner(G_DBUS_PROXY(object));

	if (owner != NULL || follow->finished)
		return;
	follow->daemon_gone = TRUE;
	g_main_loop_quit(follow->loop);
}

static gboolean
as_ctl_follow_sigint_cb(gpointer user_data)
{
	AsCtlFollow *follow = user_data;
	follow->interrupted = TRUE;
	g_main_loop_quit(follow->loop);
	return G_SOURCE_CONTINUE;
}

static gboolean
as_ctl_follow_tick_cb(gpointer user_data)
{
	AsCtlFollow *follow = user_data;
	if (follow->tty && follow->dirty)
		as_ctl_follow_redraw(follow);
	else if (!follow->tty && !follow->ctl->json &&
		 g_strcmp0(follow->snap.state, "running") == 0)
		as_ctl_follow_report_progress(follow, FALSE);
	return G_SOURCE_CONTINUE;
}

/* the port of https:// destinations without one, as the daemon's (0.x's HTTPS port) */
#define AS_CTL_SEND_DEFAULT_HTTPS_PORT 7790

/* host and port of a destination the CLI can check itself, or FALSE (quic://, mDNS names) */
static gboolean
as_ctl_send_parse_destination(const gchar *destination, gchar **host, guint16 *port)
{
	g_autoptr(GUri) uri = NULL;
	g_autofree gchar *url = NULL;
	gint uri_port;

	if (g_str_has_prefix(destination, "http://") || g_str_has_prefix(destination, "https://"))
		url = g_strdup(destination);
	else if (strstr(destination, "://") != NULL || destination[0] == '@')
		return FALSE;
	else
		url = g_strdup_printf("http://%s", destination);
	uri = g_uri_parse(url, G_URI_FLAGS_NONE, NULL);
	if (uri == NULL || g_uri_get_host(uri) == NULL)
		return FALSE;
	if (g_str_has_suffix(g_uri_get_host(uri), ".local"))
		return FALSE;
	uri_port = g_uri_get_port(uri);
	if (uri_port <= 0) {
		if (g_str_has_prefix(destination, "https://"))
			uri_port = AS_CTL_SEND_DEFAULT_HTTPS_PORT;
		else if (g_str_has_prefix(destination, "http://"))
			uri_port = 80;
		else
			uri_port = AS_CTL_DEFAULT_PORT;
	}
	*host = g_strdup(g_uri_get_host(uri));
	*port = (guint16)uri_port;
	return TRUE;
}

/* whether nothing answers on the receiver's port, as this machine sees it */
static gboolean
as_ctl_send_peer_is_unreachable(const gchar *destination)
{
	g_autoptr(GSocketClient) client = g_socket_client_new();
	g_autoptr(GSocketConnection) connection = NULL;
	g_autoptr(GError) error_local = NULL;
	g_autofree gchar *host = NULL;
	guint16 port = 0;

	if (!as_ctl_send_parse_destination(destination, &host, &port))
		return FALSE;
	g_socket_client_set_timeout(client, AS_CTL_FOLLOW_PROBE_TIMEOUT_S);
	connection = g_socket_client_connect_to_host(client, host, port, NULL, &error_local);
	if (connection == NULL) {
		g_debug("probing %s port %u: %s", host, port, error_local->message);
		return TRUE;
	}
	return FALSE;
}

static void
as_ctl_follow_print_final_json(AsCtlFollow *follow, const gchar *event, const gchar *error)
{
	g_autoptr(JsonBuilder) builder = as_ctl_follow_json_begin(follow, event);
	gint64 now_us = g_get_real_time();

	as_ctl_follow_json_add_counts(follow, builder);
	as_ctl_json_add_string(builder, "destination", as_ctl_follow_peer(follow));
	as_ctl_json_add_string(builder, "protocol", follow->snap.protocol);
	if (follow->snap.started_at_us > 0 && now_us > follow->snap.started_at_us) {
		as_ctl_json_add_uint(builder, "duration_ms",
				     (guint64)(now_us - follow->snap.started_at_us) / 1000);
	}
	if (error != NULL) {
		json_builder_set_member_name(builder, "error");
		json_builder_add_string_value(builder, error);
	}
	as_ctl_follow_json_end(follow, builder);
}

static void
as_ctl_follow_print_summary(AsCtlFollow *follow)
{
	AsCtlTransferSnapshot *snap = &follow->snap;
	g_autofree gchar *size = as_ctl_format_size(snap->bytes_done);
	g_autofree gchar *peer = as_ctl_sanitize_text(as_ctl_follow_peer(follow));
	gint64 now_us = g_get_real_time();
	gint64 elapsed_us = snap->started_at_us > 0 ? now_us - snap->started_at_us : 0;
	g_autofree gchar *duration = as_ctl_format_eta(MAX(elapsed_us / G_USEC_PER_SEC, 0));
	guint files = MAX(snap->files, snap->files_done);

	if (g_strcmp0(snap->direction, "receive") == 0) {
		/* TRANSLATORS: after a receive; %u files, sizes, the sender, the time taken */
		g_print(ngettext("Received %u file (%s) from %s in %s",
				 "Received %u files (%s) from %s in %s", files),
			files, size, peer, duration);
	} else {
		/* TRANSLATORS: after a send; %u files, size, the receiver, the time taken */
		g_print(ngettext("Sent %u file (%s) to %s in %s", "Sent %u files (%s) to %s in %s",
				 files),
			files, size, peer, duration);
	}
	if (elapsed_us > G_USEC_PER_SEC) {
		g_autofree gchar *rate = as_ctl_format_rate((
			guint64)((gdouble)snap->bytes_done * G_USEC_PER_SEC / (gdouble)elapsed_us));
		g_print(" (%s)", rate);
	}
	g_print("\n");
}

/* the exit status of a finished transfer, with the one line that explains it */
static gboolean
as_ctl_follow_result(AsCtlFollow *follow, GError **error)
{
	AsCtlTransferSnapshot *snap = &follow->snap;
	g_autofree gchar *id = as_ctl_sanitize_text(snap->id);
	g_autofree gchar *peer = as_ctl_sanitize_text(as_ctl_follow_peer(follow));
	g_autofree gchar *reason = NULL;
	const gchar *raw_error = snap->error[0] != '\0' ? snap->error : follow->finished_error;

	if (raw_error != NULL && raw_error[0] != '\0')
		reason = as_ctl_sanitize_text(raw_error);
	/* "sending to HOST failed: HOST refused…" says HOST once too often */
	if (reason != NULL && peer[0] != '\0' && g_str_has_prefix(reason, peer) &&
	    reason[strlen(peer)] == ' ') {
		gchar *shorter = g_strdup(reason + strlen(peer) + 1);
		g_free(reason);
		reason = shorter;
	}

	if (g_strcmp0(snap->state, "completed") == 0 && snap->files_failed == 0) {
		if (follow->ctl->json)
			as_ctl_follow_print_final_json(follow, "completed", NULL);
		else
			as_ctl_follow_print_summary(follow);
		return TRUE;
	}
	if (g_strcmp0(snap->state, "cancelled") == 0) {
		if (follow->ctl->json)
			as_ctl_follow_print_final_json(follow, "cancelled", reason);
		g_set_error(error, AS_CTL_ERROR, AS_CTL_EXIT_CANCELLED,
			    /* TRANSLATORS: %s is a transfer id */
			    _("transfer %s was cancelled"), id);
		return FALSE;
	}
	if (reason == NULL && snap->files_failed > 0) {
		reason = g_strdup_printf(
			/* TRANSLATORS: why a batch failed: files failed of files in all */
			ngettext("%u of %u file failed", "%u of %u files failed", snap->files),
			snap->files_failed, snap->files);
	}
	if (reason == NULL)
		/* TRANSLATORS: a transfer failed and the daemon gave no reason */
		reason = g_strdup(_("no reason given"));
	if (follow->ctl->json)
		as_ctl_follow_print_final_json(follow, "failed", reason);

	/* nothing moved: tell an absent receiver apart from one that said no */
	if (snap->bytes_done == 0 && snap->files_done == 0 &&
	    g_strcmp0(snap->direction, "send") == 0 &&
	    as_ctl_send_peer_is_unreachable(snap->destination)) {
		g_set_error(error, AS_CTL_ERROR, AS_CTL_EXIT_PEER_UNREACHABLE,
			    /* TRANSLATORS: first %s is an address, the second why; keep the
			     * command */
			    _("cannot reach the receiver at %s: %s (is 'aerosyncctl receive' "
			      "running there?)"),
			    peer, reason);
		return FALSE;
	}
	if (g_strcmp0(snap->direction, "receive") == 0) {
		g_set_error(error, AS_CTL_ERROR, AS_CTL_EXIT_FAILURE,
			    /* TRANSLATORS: first %s is an address, the second why */
			    _("receiving from %s failed: %s"), peer, reason);
		return FALSE;
	}
	g_set_error(error, AS_CTL_ERROR, AS_CTL_EXIT_FAILURE,
		    /* TRANSLATORS: first %s is an address, the second why */
		    _("sending to %s failed: %s"), peer, reason);
	return FALSE;
}

static gboolean
as_ctl_follow_run(AsCtl *self, const gchar *object_path, GError **error)
{
	AsCtlFollow follow = {
		.ctl = self,
		.path = g_strdup(object_path),
	};
	g_autoptr(GError) error_local = NULL;
	const gchar *term = g_getenv("TERM");
	guint subscription_id;
	guint sigint_id = 0;
	guint tick_id = 0;
	gulong owner_id = 0;
	gulong changed_id = 0;
	gboolean ret = FALSE;

	follow.loop = g_main_loop_new(NULL, FALSE);
	follow.tty = !self->json && isatty(STDOUT_FILENO) && g_strcmp0(term, "dumb") != 0;

	/* subscribe before reading the state, so an end in between is not missed */
	subscription_id = g_dbus_connection_signal_subscribe(
		self->connection, AS_DBUS_NAME, as_dbus_manager1_interface_info()->name,
		"TransferFinished", AS_DBUS_PATH, NULL, G_DBUS_SIGNAL_FLAGS_NONE,
		as_ctl_follow_transfer_finished_cb, &follow, NULL);
	follow.proxy = AS_DBUS_TRANSFER1(as_dbus_transfer1_proxy_new_sync(
		self->connection, G_DBUS_PROXY_FLAGS_DO_NOT_AUTO_START, AS_DBUS_NAME, object_path,
		NULL, &error_local));
	if (follow.proxy == NULL) {
		as_ctl_propagate_dbus_error(self, error, g_steal_pointer(&error_local),
					    /* TRANSLATORS: what failed, followed by why */
					    _("cannot follow the transfer"));
		goto out;
	}
	as_ctl_follow_reload_cache(&follow);
	if (follow.snap.state[0] == '\0') {
		g_autofree gchar *id = g_path_get_basename(object_path);
		g_set_error(error, AS_CTL_ERROR, AS_CTL_EXIT_NOT_FOUND,
			    /* TRANSLATORS: %s is a transfer id */
			    _("transfer %s is gone (see 'aerosyncctl transfers')"), id);
		goto out;
	}
	changed_id = g_signal_connect(follow.proxy, "g-properties-changed",
				      G_CALLBACK(as_ctl_follow_properties_changed_cb), &follow);
	owner_id = g_signal_connect(follow.proxy, "notify::g-name-owner",
				    G_CALLBACK(as_ctl_follow_name_owner_cb), &follow);
	sigint_id = g_unix_signal_add(SIGINT, as_ctl_follow_sigint_cb, &follow);
	tick_id = g_timeout_add(AS_CTL_FOLLOW_REDRAW_MS, as_ctl_follow_tick_cb, &follow);

	as_ctl_follow_print_started(&follow);
	/* the first line already says the state */
	follow.last_state = g_strdup(follow.snap.state);
	if (as_ctl_transfer_state_is_final(follow.snap.state)) {
		as_ctl_follow_finish(&follow);
	} else {
		if (self->json || follow.snap.bytes_done > 0)
			as_ctl_follow_report_progress(&follow, TRUE);
		if (follow.tty)
			as_ctl_follow_redraw(&follow);
		g_main_loop_run(follow.loop);
	}
	if (follow.tty && follow.lines_drawn > 0)
		as_ctl_follow_redraw(&follow);

	if (follow.interrupted) {
		g_autofree gchar *id = as_ctl_sanitize_text(follow.snap.id);
		if (self->json) {
			g_autoptr(JsonBuilder) builder =
				as_ctl_follow_json_begin(&follow, "detached");
			as_ctl_follow_json_add_counts(&follow, builder);
			as_ctl_follow_json_end(&follow, builder);
		}
		g_set_error(error, AS_CTL_ERROR, AS_CTL_EXIT_INTERRUPTED,
			    /* TRANSLATORS: after Ctrl-C; every %s is the same transfer id; keep
			     * the commands */
			    _("detached: transfer %s goes on in aerosyncd; 'aerosyncctl follow %s' "
			      "shows it again, 'aerosyncctl cancel %s' stops it"),
			    id, id, id);
		goto out;
	}
	if (follow.daemon_gone) {
		g_autofree gchar *id = as_ctl_sanitize_text(follow.snap.id);
		g_set_error(error, AS_CTL_ERROR, AS_CTL_EXIT_UNREACHABLE,
			    /* TRANSLATORS: %s is a transfer id */
			    _("aerosyncd left the bus while following transfer %s; a send "
			      "resumes when aerosyncd starts again"),
			    id);
		goto out;
	}
	ret = as_ctl_follow_result(&follow, error);
out:
	if (tick_id != 0)
		g_source_remove(tick_id);
	if (sigint_id != 0)
		g_source_remove(sigint_id);
	if (changed_id != 0)
		g_signal_handler_disconnect(follow.proxy, changed_id);
	if (owner_id != 0)
		g_signal_handler_disconnect(follow.proxy, owner_id);
	g_dbus_connection_signal_unsubscribe(self->connection, subscription_id);
	as_ctl_follow_clear(&follow);
	return ret;
}

/**
 * as_ctl_follow_transfer:
 * @self: the invocation
 * @object_path: a transfer object under /org/aerosync/transfers/
 * @error: a #GError, or %NULL
 *
 * Shows the transfer until it ends: a live display on a terminal, plain lines otherwise, JSON
 * lines with --json. Ctrl-C detaches and leaves the transfer running.
 *
 * Returns: %TRUE only if the transfer completed with every file
 */
gboolean
as_ctl_follow_transfer(AsCtl *self, const gchar *object_path, GError **error)
{
	return as_ctl_follow_run(self, object_path, error);
}

static void
as_ctl_send_print_detached(AsCtl *self, const gchar *object_path, const gchar *destination)
{
	g_autoptr(AsDbusTransfer1) proxy = NULL;
	g_autofree gchar *id = NULL;

	proxy = AS_DBUS_TRANSFER1(as_dbus_transfer1_proxy_new_sync(
		self->connection,
		G_DBUS_PROXY_FLAGS_DO_NOT_AUTO_START | G_DBUS_PROXY_FLAGS_DO_NOT_CONNECT_SIGNALS,
		AS_DBUS_NAME, object_path, NULL, NULL));
	if (proxy != NULL)
		id = as_dbus_transfer1_dup_id(proxy);
	if (id == NULL || id[0] == '\0') {
		g_free(id);
		id = g_path_get_basename(object_path);
	}
	if (self->json) {
		g_autoptr(JsonBuilder) builder = json_builder_new();
		g_autoptr(JsonNode) root = NULL;
		json_builder_begin_object(builder);
		as_ctl_json_add_string(builder, "event", "started");
		as_ctl_json_add_string(builder, "id", id);
		as_ctl_json_add_string(builder, "path", object_path);
		as_ctl_json_add_string(builder, "destination", destination);
		json_builder_end_object(builder);
		root = json_builder_get_root(builder);
		as_ctl_print_json_line(self, root);
		return;
	}
	{
		g_autofree gchar *safe = as_ctl_sanitize_text(id);
		/* the id alone on stdout, so that ID=$(aerosyncctl send --detach …) works */
		g_print("%s\n", safe);
		g_printerr(
			/* TRANSLATORS: after 'send --detach'; %s is the transfer id */
			_("aerosyncctl: the transfer runs in aerosyncd; 'aerosyncctl follow %s' "
			  "shows it"),
			safe);
		g_printerr("\n");
	}
}

gboolean
as_ctl_send(AsCtl *self, gchar **values, GError **error)
{
	guint n_values = g_strv_length(values);
	const gchar *destination = values[n_values - 1];
	g_autoptr(GPtrArray) paths = g_ptr_array_new_with_free_func(g_free);
	g_auto(GVariantDict) dict = G_VARIANT_DICT_INIT(NULL);
	g_autoptr(GError) error_local = NULL;
	g_autofree gchar *object_path = NULL;
	AsDbusManager1 *manager;

	/* the table guarantees a path and a destination */
	g_return_val_if_fail(n_values >= 2, FALSE);
	if (destination[0] == '\0') {
		/* TRANSLATORS: DEST of 'send' was an empty string */
		return as_ctl_send_usage_error(error, _("the destination is empty"));
	}
	for (guint i = 0; i + 1 < n_values; i++) {
		if (values[i][0] == '\0')
			/* TRANSLATORS: a PATH of 'send' was an empty string */
			return as_ctl_send_usage_error(error, _("a path is empty"));
		/* aerosyncd opens the files, from its own working directory */
		g_ptr_array_add(paths, g_canonicalize_filename(values[i], NULL));
	}
	g_ptr_array_add(paths, NULL);
	if (!as_ctl_send_build_options(self, &dict, error))
		return FALSE;

	manager = as_ctl_get_manager(self, error);
	if (manager == NULL)
		return FALSE;
	if (!as_dbus_manager1_call_send_sync(manager, (const gchar *const *)paths->pdata,
					     destination, g_variant_dict_end(&dict), &object_path,
					     NULL, &error_local)) {
		g_autofree gchar *safe = as_ctl_sanitize_text(destination);
		g_autofree gchar *what =
			/* TRANSLATORS: what failed, followed by why; %s is the destination */
			g_strdup_printf(_("cannot send to %s"), safe);
		as_ctl_propagate_dbus_error(self, error, g_steal_pointer(&error_local), what);
		return FALSE;
	}
	g_debug("transfer %s", object_path);
	if (as_ctl_has_option(self, "detach")) {
		as_ctl_send_print_detached(self, object_path, destination);
		return TRUE;
	}
	return as_ctl_follow_transfer(self, object_path, error);
}

gboolean
as_ctl_follow(AsCtl *self, gchar **values, GError **error)
{
	g_autofree gchar *path = as_ctl_transfer_find(self, values[0], error);
	if (path == NULL)
		return FALSE;
	return as_ctl_follow_transfer(self, path, error);
}
