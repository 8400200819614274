/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "AsCtl"

#include "config.h"

#include <glib/gi18n.h>
#include <locale.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "as-ctl-discover.h"
#include "as-ctl-receive.h"
#include "as-ctl-send.h"
#include "as-ctl-transfers.h"
#include "as-ctl-watch.h"
#include "as-ctl.h"
#include "as-error.h"
#include "as-keys.h"

#define AS_CTL_PROGRAM	       "aerosyncctl"
#define AS_CTL_ENV_BUS_ADDRESS "AEROSYNC_BUS_ADDRESS"
#define AS_CTL_VERB_WORDS_MAX  3    /* "help" takes a verb name of up to this many words */
#define AS_CTL_HELP_INDENT     2    /* columns before verb and option names in --help */
#define AS_CTL_COLUMN_GAP      2    /* columns between table cells */
#define AS_CTL_SI_STEP	       1000 /* decimal units, as disks and network speeds are sold */
#define AS_CTL_ROUND_UP_LIMIT  999.5

G_DEFINE_QUARK(as - ctl - error - quark, as_ctl_error)

static gboolean as_ctl_help(AsCtl *self, gchar **values, GError **error);

/* the verb table: adding a verb is one row here and a function in an as-ctl-*.c file */
static const AsCtlVerb as_ctl_verbs[] = {
	{
		.name = "status",
		.aliases = (const gchar *const[]){"st", NULL},
		.min_args = 0,
		.max_args = 1,
		/* TRANSLATORS: placeholder for the argument of 'status' */
		.arguments = N_("[HOST[:PORT]]"),
		/* TRANSLATORS: summary of 'aerosyncctl status' in --help */
		.summary = N_("Show the daemon's state, listening port and free disk space"),
		/* TRANSLATORS: details in 'aerosyncctl help status'; keep the JSON keys */
		.description =
			N_("With HOST[:PORT] (port 7788 by default, or an http:// or https://\n"
			   "URL) the receiver's /health is fetched over HTTP instead, without\n"
			   "D-Bus; exit status 101 when it cannot be reached. With --json the\n"
			   "reply is printed as one object, plus 'address'. An https://\n"
			   "receiver's certificate is trusted as 'send' trusts it: --pin, or\n"
			   "--insecure, or a trusted CA, or the fingerprint known_peers\n"
			   "recorded when this user's daemon first sent to it."),
		.func = as_ctl_status,
		.options = as_ctl_status_options,
	},
	{
		.name = "send",
		.aliases = (const gchar *const[]){"put", NULL},
		.min_args = 2,
		.max_args = AS_CTL_SEND_ARGS_MAX,
		/* TRANSLATORS: placeholder for the arguments of 'send' */
		.arguments = N_("PATH… DEST"),
		/* TRANSLATORS: summary of 'aerosyncctl send' in --help */
		.summary = N_("Send files to a receiver and follow the transfer"),
		/* TRANSLATORS: details in 'aerosyncctl help send'; keep commands, JSON keys */
		.description =
			N_("DEST is HOST[:PORT] (port 7788), http://, https:// or quic://\n"
			   "HOST:PORT. aerosyncd does the sending, so the transfer goes on\n"
			   "if this command stops: Ctrl-C detaches (exit status 130) and\n"
			   "'aerosyncctl follow ID' shows it again. The exit status is 0 only\n"
			   "when every file was sent and verified.\n"
			   "With --json one object is printed per line: {\"event\":\"started\"},\n"
			   "{\"event\":\"state\"}, {\"event\":\"progress\"} (at most twice a\n"
			   "second: bytes_done, bytes_total, rate, eta, files_done, files),\n"
			   "then one of {\"event\":\"completed\"|\"failed\"|\"cancelled\"}\n"
			   "with 'error' when there is one."),
		.options = as_ctl_send_options,
		.func = as_ctl_send,
	},
	{
		.name = "follow",
		.aliases = (const gchar *const[]){"attach", NULL},
		.min_args = 1,
		.max_args = 1,
		/* TRANSLATORS: placeholder for the argument of 'follow' */
		.arguments = N_("ID"),
		/* TRANSLATORS: summary of 'aerosyncctl follow' in --help */
		.summary = N_("Follow a transfer until it ends, as 'send' does"),
		/* TRANSLATORS: details in 'aerosyncctl help follow' */
		.description = N_("ID is a transfer id or a unique prefix of one. Output and exit\n"
				  "status are those of 'send'."),
		.func = as_ctl_follow,
	},
	{
		.name = "transfers",
		.aliases = (const gchar *const[]){"ls", NULL},
		.min_args = 0,
		.max_args = 0,
		/* TRANSLATORS: summary of 'aerosyncctl transfers' in --help */
		.summary = N_("List the transfers aerosyncd is running or just finished"),
		/* TRANSLATORS: details in 'aerosyncctl help transfers'; keep the JSON keys */
		.description =
			N_("Finished transfers stay listed for a short while. With --json a\n"
			   "JSON array is printed, one object per transfer: id, direction,\n"
			   "state, filename, peer, destination, protocol, bytes_done,\n"
			   "bytes_total, rate, eta, files, files_done, files_failed,\n"
			   "rate_limit and error."),
		.func = as_ctl_transfers,
	},
	{
		.name = "pause",
		.min_args = 1,
		.max_args = 1,
		/* TRANSLATORS: placeholder for the argument of 'pause', 'resume' and 'cancel' */
		.arguments = N_("ID"),
		/* TRANSLATORS: summary of 'aerosyncctl pause' in --help */
		.summary = N_("Pause a send; nothing sent so far is lost"),
		.func = as_ctl_transfer_pause,
	},
	{
		.name = "resume",
		.min_args = 1,
		.max_args = 1,
		/* TRANSLATORS: placeholder for the argument of 'pause', 'resume' and 'cancel' */
		.arguments = N_("ID"),
		/* TRANSLATORS: summary of 'aerosyncctl resume' in --help */
		.summary = N_("Resume a paused send"),
		.func = as_ctl_transfer_resume,
	},
	{
		.name = "cancel",
		.min_args = 1,
		.max_args = 1,
		/* TRANSLATORS: placeholder for the argument of 'pause', 'resume' and 'cancel' */
		.arguments = N_("ID"),
		/* TRANSLATORS: summary of 'aerosyncctl cancel' in --help */
		.summary = N_("Stop a send for good"),
		.func = as_ctl_transfer_cancel,
	},
	{
		.name = "limit",
		.min_args = 2,
		.max_args = 2,
		/* TRANSLATORS: placeholder for the arguments of 'limit' */
		.arguments = N_("ID RATE"),
		/* TRANSLATORS: summary of 'aerosyncctl limit' in --help */
		.summary = N_("Change the speed limit of a send while it runs"),
		/* TRANSLATORS: details in 'aerosyncctl help limit' */
		.description = N_("RATE is bytes per second with an optional unit and /s, e.g.\n"
				  "512KB, 10MB/s or 1.5M (units are binary); a bare number means\n"
				  "KB/s, and 0 or 'unlimited' removes the limit."),
		.func = as_ctl_transfer_limit,
	},
	{
		.name = "receive",
		.aliases = (const gchar *const[]){"recv", NULL},
		.min_args = 0,
		.max_args = 0,
		/* TRANSLATORS: summary of 'aerosyncctl receive' in --help */
		.summary = N_("Start receiving (aerosyncd) and print the files as they arrive"),
		/* TRANSLATORS: details in 'aerosyncctl help receive'; keep the JSON keys */
		.description =
			N_("A running aerosyncd is used as it is; options that disagree with\n"
			   "it are an error, never ignored. Without one, D-Bus activation\n"
			   "starts it when no option is given, else aerosyncd is started\n"
			   "with these options and stopped again on Ctrl-C. Each file prints\n"
			   "'  [+] NAME (SIZE) sha256=PREFIX'. With --json one object per\n"
			   "line: {\"event\":\"listening\"} (port, receive_directory,\n"
			   "auth_required, started), then {\"event\":\"received\"} or\n"
			   "{\"event\":\"failed\"} per file (filename, size, sha256,\n"
			   "saved_path, peer, error)."),
		.options = as_ctl_receive_options,
		.func = as_ctl_receive,
	},
	{
		.name = "watch",
		.min_args = 0,
		.max_args = 1,
		/* TRANSLATORS: placeholder for the argument of 'watch' */
		.arguments = N_("[HOST[:PORT]|ws://…]"),
		/* TRANSLATORS: summary of 'aerosyncctl watch' in --help */
		.summary = N_("Print a receiver's live events from its WebSocket"),
		/* TRANSLATORS: details in 'aerosyncctl help watch' */
		.description =
			N_("Connects to ws://HOST:PORT/ws (localhost:7788 by default); no\n"
			   "D-Bus. In pretty format 'completed' lines go to standard output\n"
			   "and every other event to standard error; --format json prints\n"
			   "each event as one JSON line on standard output. With --reconnect\n"
			   "a lost connection, or a receiver shutting down (close code 1001),\n"
			   "is retried after DELAY·2^(n-1) seconds, at most 60; a normal\n"
			   "close by the receiver ends the watch with status 0. When the\n"
			   "retries run out the exit status is 101."),
		.options = as_ctl_watch_options,
		.func = as_ctl_watch,
	},
	{
		.name = "token generate",
		.aliases = (const gchar *const[]){"token new", "token create", NULL},
		.min_args = 0,
		.max_args = 0,
		/* TRANSLATORS: summary of 'aerosyncctl token generate' in --help */
		.summary = N_("Create an access token for senders and print it once"),
		/* TRANSLATORS: details in 'aerosyncctl help token generate' */
		.description = N_("The token goes to standard output and the details to standard\n"
				  "error, so 'aerosyncctl token generate > FILE' stores only the\n"
				  "token. It cannot be shown again. With --json one object is\n"
				  "printed: token, id, label, created and expires (unix seconds,\n"
				  "0 for never)."),
		.options = as_ctl_token_generate_options,
		.func = as_ctl_token_generate,
	},
	{
		.name = "token list",
		.aliases = (const gchar *const[]){"token ls", "tokens", NULL},
		.min_args = 0,
		.max_args = 0,
		/* TRANSLATORS: summary of 'aerosyncctl token list' in --help */
		.summary = N_("List the access tokens: active, revoked or expired"),
		/* TRANSLATORS: details in 'aerosyncctl help token list' */
		.description = N_("With --json a JSON array is printed, one object per token: id,\n"
				  "label, created, expires (unix seconds, 0 for never), revoked,\n"
				  "expired and status."),
		.func = as_ctl_token_list,
	},
	{
		.name = "token revoke",
		.aliases = (const gchar *const[]){"token rm", "token delete", NULL},
		.min_args = 1,
		.max_args = 1,
		/* TRANSLATORS: placeholder for the argument of 'token revoke' */
		.arguments = N_("PREFIX"),
		/* TRANSLATORS: summary of 'aerosyncctl token revoke' in --help */
		.summary = N_("Revoke the token whose id starts with PREFIX (4+ characters)"),
		.func = as_ctl_token_revoke,
	},
	{
		.name = "history",
		.aliases = (const gchar *const[]){"log", NULL},
		.min_args = 0,
		.max_args = 0,
		/* TRANSLATORS: summary of 'aerosyncctl history' in --help */
		.summary = N_("Show the most recent transfers, newest first"),
		/* TRANSLATORS: details in 'aerosyncctl help history' */
		.description = N_("With --json a JSON array is printed, one object per transfer\n"
				  "with the keys of the history file (completed_at in unix\n"
				  "seconds, sizes in bytes)."),
		.options = as_ctl_history_options,
		.func = as_ctl_history,
	},
	{
		.name = "discover",
		.aliases = (const gchar *const[]){"browse", NULL},
		.min_args = 0,
		.max_args = 0,
		/* TRANSLATORS: summary of 'aerosyncctl discover' in --help */
		.summary = N_("List the AeroSync receivers on the local network (mDNS)"),
		/* TRANSLATORS: details in 'aerosyncctl help discover'; keep the JSON keys */
		.description = N_("Browses for _aerosync._tcp services through avahi-daemon;\n"
				  "aerosyncd need not run. With --json a JSON array is printed,\n"
				  "one object per receiver: name, host, port, addr, version,\n"
				  "ws_enabled, auth_required, quic (port or null) and fp (the\n"
				  "certificate's SHA-256, or null)."),
		.options = as_ctl_discover_options,
		.func = as_ctl_discover,
	},
	{
		.name = "help",
		.min_args = 0,
		.max_args = AS_CTL_VERB_WORDS_MAX,
		/* TRANSLATORS: placeholder for the argument of 'help' */
		.arguments = N_("[VERB]"),
		/* TRANSLATORS: summary of 'aerosyncctl help' in --help */
		.summary = N_("Show the verbs, or the options of one verb"),
		.func = as_ctl_help,
	},
};

/* the exit codes, in the order --help lists them */
static const struct {
	AsCtlExit code;
	const gchar *description;
} as_ctl_exit_descriptions[] = {
	/* TRANSLATORS: meaning of exit status 0 in --help */
	{AS_CTL_EXIT_OK, N_("success")},
	/* TRANSLATORS: meaning of exit status 1 in --help */
	{AS_CTL_EXIT_FAILURE, N_("failure")},
	/* TRANSLATORS: meaning of exit status 2 in --help */
	{AS_CTL_EXIT_USAGE, N_("usage error: unknown verb, bad option or argument")},
	/* TRANSLATORS: meaning of exit status 3 in --help */
	{AS_CTL_EXIT_NOT_FOUND, N_("not found, e.g. no token matches the prefix")},
	/* TRANSLATORS: meaning of exit status 4 in --help */
	{AS_CTL_EXIT_UNREACHABLE, N_("aerosyncd cannot be reached on the bus")},
	/* TRANSLATORS: meaning of exit status 5 in --help */
	{AS_CTL_EXIT_PERMISSION, N_("permission denied or authentication failed")},
	/* TRANSLATORS: meaning of exit status 6 in --help */
	{AS_CTL_EXIT_CANCELLED, N_("the transfer was cancelled")},
	/* TRANSLATORS: meaning of exit status 101 in --help */
	{AS_CTL_EXIT_PEER_UNREACHABLE, N_("the remote receiver cannot be reached")},
	/* TRANSLATORS: meaning of exit status 130 in --help; keep 'aerosyncd' */
	{AS_CTL_EXIT_INTERRUPTED,
	 N_("interrupted while following; the transfer goes on in aerosyncd")},
};

static AsCtl *
as_ctl_new(void)
{
	AsCtl *self = g_new0(AsCtl, 1);
	self->options = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	return self;
}

static void
as_ctl_free(AsCtl *self)
{
	g_clear_object(&self->manager);
	g_clear_object(&self->connection);
	g_hash_table_unref(self->options);
	g_free(self->bus_description);
	g_free(self);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(AsCtl, as_ctl_free)

/* options */

static const GOptionEntry *
as_ctl_verb_find_option(const AsCtlVerb *verb, const gchar *option_name)
{
	if (verb == NULL || verb->options == NULL)
		return NULL;
	for (const GOptionEntry *entry = verb->options; entry->long_name != NULL; entry++) {
		if (g_str_has_prefix(option_name, "--") &&
		    g_strcmp0(option_name + 2, entry->long_name) == 0)
			return entry;
		if (option_name[0] == '-' && option_name[1] == entry->short_name &&
		    entry->short_name != '\0' && option_name[2] == '\0')
			return entry;
	}
	return NULL;
}

gboolean
as_ctl_option_cb(const gchar *option_name, const gchar *value, gpointer data, GError **error)
{
	AsCtl *self = data;
	const GOptionEntry *entry = as_ctl_verb_find_option(self->verb, option_name);

	if (entry == NULL) {
		g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_UNKNOWN_OPTION,
			    /* TRANSLATORS: %s is an option such as --label */
			    _("unknown option %s"), option_name);
		return FALSE;
	}
	/* like other tools, the last occurrence wins */
	g_hash_table_insert(self->options, g_strdup(entry->long_name),
			    g_strdup(value ? value : ""));
	return TRUE;
}

/**
 * as_ctl_get_option:
 * @self: the invocation
 * @long_name: an option of the running verb, without the dashes
 *
 * Returns: (nullable): the value given, "" for a flag, or %NULL if the option was not given
 */
const gchar *
as_ctl_get_option(AsCtl *self, const gchar *long_name)
{
	return g_hash_table_lookup(self->options, long_name);
}

gboolean
as_ctl_has_option(AsCtl *self, const gchar *long_name)
{
	return g_hash_table_contains(self->options, long_name);
}

/* whether @arg is an option that consumes the next word, so it is not read as a verb */
static gboolean
as_ctl_option_takes_value(const gchar *arg)
{
	for (guint i = 0; i < G_N_ELEMENTS(as_ctl_verbs); i++) {
		const GOptionEntry *options = as_ctl_verbs[i].options;
		if (options == NULL)
			continue;
		for (const GOptionEntry *entry = options; entry->long_name != NULL; entry++) {
			if (entry->flags & G_OPTION_FLAG_NO_ARG)
				continue;
			if (g_str_has_prefix(arg, "--") &&
			    g_strcmp0(arg + 2, entry->long_name) == 0)
				return TRUE;
			/* a cluster of short options such as -vn takes the next word too */
			if (arg[1] != '-' && entry->short_name != '\0' &&
			    strchr(arg + 1, entry->short_name) != NULL &&
			    arg[strlen(arg) - 1] == entry->short_name)
				return TRUE;
		}
	}
	return FALSE;
}

/* the words of argv that are not options, in order */
static GPtrArray *
as_ctl_get_positional_words(gint argc, gchar **argv)
{
	GPtrArray *words = g_ptr_array_new();
	for (gint i = 1; i < argc; i++) {
		if (g_strcmp0(argv[i], "--") == 0) {
			for (i++; i < argc; i++)
				g_ptr_array_add(words, argv[i]);
			break;
		}
		if (argv[i][0] == '-' && argv[i][1] != '\0') {
			if (as_ctl_option_takes_value(argv[i]))
				i++;
			continue;
		}
		g_ptr_array_add(words, argv[i]);
	}
	return words;
}

/* how many of @words spell @name, or 0 */
static guint
as_ctl_name_matches(const gchar *name, GPtrArray *words)
{
	g_auto(GStrv) parts = g_strsplit(name, " ", -1);
	guint n_parts = g_strv_length(parts);

	if (n_parts > words->len)
		return 0;
	for (guint i = 0; i < n_parts; i++) {
		if (g_strcmp0(parts[i], g_ptr_array_index(words, i)) != 0)
			return 0;
	}
	return n_parts;
}

/* the verb whose name or alias is the longest run of leading @words */
static const AsCtlVerb *
as_ctl_find_verb(GPtrArray *words, guint *n_words_matched)
{
	const AsCtlVerb *best = NULL;
	guint best_n = 0;

	for (guint i = 0; i < G_N_ELEMENTS(as_ctl_verbs); i++) {
		const AsCtlVerb *verb = &as_ctl_verbs[i];
		guint n = as_ctl_name_matches(verb->name, words);
		for (guint j = 0; verb->aliases != NULL && verb->aliases[j] != NULL; j++)
			n = MAX(n, as_ctl_name_matches(verb->aliases[j], words));
		if (n > best_n) {
			best = verb;
			best_n = n;
		}
	}
	if (n_words_matched != NULL)
		*n_words_matched = best_n;
	return best;
}

static void
as_ctl_set_unknown_verb_error(GPtrArray *words, GError **error)
{
	const gchar *first = g_ptr_array_index(words, 0);
	g_autoptr(GPtrArray) subverbs = g_ptr_array_new_with_free_func(g_free);

	/* "token" alone or "token frob": name the verbs of that group */
	for (guint i = 0; i < G_N_ELEMENTS(as_ctl_verbs); i++) {
		g_auto(GStrv) parts = g_strsplit(as_ctl_verbs[i].name, " ", 2);
		if (parts[1] != NULL && g_strcmp0(parts[0], first) == 0)
			g_ptr_array_add(subverbs, g_strdup(parts[1]));
	}
	if (subverbs->len > 0) {
		g_autofree gchar *choices = NULL;
		g_ptr_array_add(subverbs, NULL);
		choices = g_strjoinv(", ", (gchar **)subverbs->pdata);
		g_set_error(error, AS_CTL_ERROR, AS_CTL_EXIT_USAGE,
			    /* TRANSLATORS: first %s is a verb group such as 'token', then a list
			     * of its verbs; keep the command in quotes untranslated */
			    _("'%s' needs one of: %s (see 'aerosyncctl help')"), first, choices);
		return;
	}
	g_set_error(error, AS_CTL_ERROR, AS_CTL_EXIT_USAGE,
		    /* TRANSLATORS: %s is what the user typed as a verb */
		    _("unknown verb '%s' (see 'aerosyncctl --help')"), first);
}

/* output */

static gboolean
as_ctl_is_utf8(void)
{
	return g_get_charset(NULL);
}

/* terminal columns taken by @text, which is valid UTF-8 */
guint
as_ctl_display_width(const gchar *text)
{
	guint width = 0;
	for (const gchar *p = text; *p != '\0'; p = g_utf8_next_char(p)) {
		gunichar c = g_utf8_get_char(p);
		if (g_unichar_iszerowidth(c))
			continue;
		width += g_unichar_iswide(c) ? 2 : 1;
	}
	return width;
}

/* file names come from remote senders: never let them reach the terminal as control codes */
gchar *
as_ctl_sanitize_text(const gchar *text)
{
	g_autofree gchar *valid = g_utf8_make_valid(text != NULL ? text : "", -1);
	GString *str = g_string_sized_new(strlen(valid));
	for (const gchar *p = valid; *p != '\0'; p = g_utf8_next_char(p)) {
		gunichar c = g_utf8_get_char(p);
		if (g_unichar_iscntrl(c))
			g_string_append_unichar(str, as_ctl_is_utf8() ? 0xfffd : '?');
		else
			g_string_append_unichar(str, c);
	}
	return g_string_free(str, FALSE);
}

static void
as_ctl_append_padding(GString *str, guint n)
{
	for (guint i = 0; i < n; i++)
		g_string_append_c(str, ' ');
}

gchar *
as_ctl_colourise(AsCtl *self, const gchar *text, AsCtlColour colour)
{
	const gchar *code = NULL;

	if (!self->colour || colour == AS_CTL_COLOUR_NONE)
		return g_strdup(text);
	switch (colour) {
	case AS_CTL_COLOUR_BOLD:
		code = "1";
		break;
	case AS_CTL_COLOUR_RED:
		code = "31";
		break;
	case AS_CTL_COLOUR_GREEN:
		code = "32";
		break;
	case AS_CTL_COLOUR_YELLOW:
		code = "33";
		break;
	case AS_CTL_COLOUR_DIM:
		code = "2";
		break;
	default:
		return g_strdup(text);
	}
	return g_strdup_printf("\033[%sm%s\033[0m", code, text);
}

/**
 * as_ctl_format_size:
 * @size_bytes: a number of bytes
 *
 * Returns: (transfer full): the size in decimal units, e.g. "12.3 GB" or "250 GB"
 */
gchar *
as_ctl_format_size(guint64 size_bytes)
{
	const gchar *units[] = {
		/* TRANSLATORS: kilobytes (1000 bytes), as in "12.3 kB" */
		N_("kB"),
		/* TRANSLATORS: megabytes (10^6 bytes), as in "12.3 MB" */
		N_("MB"),
		/* TRANSLATORS: gigabytes (10^9 bytes), as in "12.3 GB" */
		N_("GB"),
		/* TRANSLATORS: terabytes (10^12 bytes), as in "12.3 TB" */
		N_("TB"),
		/* TRANSLATORS: petabytes (10^15 bytes), as in "12.3 PB" */
		N_("PB"),
		/* TRANSLATORS: exabytes (10^18 bytes), as in "12.3 EB" */
		N_("EB"),
	};
	gdouble value;
	guint unit = 0;

	if (size_bytes < AS_CTL_SI_STEP) {
		/* TRANSLATORS: a size below one kilobyte */
		return g_strdup_printf(ngettext("%u byte", "%u bytes", (gulong)size_bytes),
				       (guint)size_bytes);
	}
	value = (gdouble)size_bytes / AS_CTL_SI_STEP;
	while (value >= AS_CTL_ROUND_UP_LIMIT && unit + 1 < G_N_ELEMENTS(units)) {
		value /= AS_CTL_SI_STEP;
		unit++;
	}
	/* one decimal helps below 100; above it is noise */
	return g_strdup_printf(value >= 100 ? "%.0f %s" : "%.1f %s", value, _(units[unit]));
}

/**
 * as_ctl_format_rate:
 * @bytes_per_s: a speed
 *
 * Returns: (transfer full): the speed in decimal units, e.g. "8.1 MB/s"
 */
gchar *
as_ctl_format_rate(guint64 bytes_per_s)
{
	g_autofree gchar *size = as_ctl_format_size(bytes_per_s);
	/* TRANSLATORS: a speed; %s is a size such as "8.1 MB" */
	return g_strdup_printf(_("%s/s"), size);
}

/**
 * as_ctl_format_time:
 * @unix_seconds: seconds since the epoch
 *
 * Returns: (transfer full): the local time as "YYYY-MM-DD HH:MM"
 */
gchar *
as_ctl_format_time(gint64 unix_seconds)
{
	g_autoptr(GDateTime) dt = g_date_time_new_from_unix_local(unix_seconds);
	if (dt == NULL)
		return g_strdup("?");
	return g_date_time_format(dt, "%Y-%m-%d %H:%M");
}

/* JSON is UTF-8 by definition: bypass g_print()'s conversion to the locale charset */
void
as_ctl_print_json(AsCtl *self, JsonNode *root)
{
	g_autoptr(JsonGenerator) generator = json_generator_new();
	g_autofree gchar *text = NULL;

	json_generator_set_pretty(generator, TRUE);
	json_generator_set_root(generator, root);
	text = json_generator_to_data(generator, NULL);
	fputs(text, stdout);
	fputc('\n', stdout);
}

/**
 * as_ctl_print_json_line:
 * @self: the invocation
 * @root: a JSON value
 *
 * Prints @root on one line and flushes, for verbs that print one object per event.
 */
void
as_ctl_print_json_line(AsCtl *self, JsonNode *root)
{
	g_autoptr(JsonGenerator) generator = json_generator_new();
	g_autofree gchar *text = NULL;

	json_generator_set_root(generator, root);
	text = json_generator_to_data(generator, NULL);
	fputs(text, stdout);
	fputc('\n', stdout);
	/* a reader on a pipe must see each event as it happens */
	fflush(stdout);
}

/**
 * as_ctl_json_add_members:
 * @builder: a #JsonBuilder inside an object
 * @dict: an a{sv} dictionary
 *
 * Adds every key of @dict as a member, with its value converted to JSON.
 */
void
as_ctl_json_add_members(JsonBuilder *builder, GVariant *dict)
{
	GVariantIter iter;
	const gchar *key = NULL;
	GVariant *value = NULL;

	g_variant_iter_init(&iter, dict);
	while (g_variant_iter_loop(&iter, "{&sv}", &key, &value)) {
		json_builder_set_member_name(builder, key);
		json_builder_add_value(builder, json_gvariant_serialize(value));
	}
}

/**
 * as_ctl_print_fields:
 * @self: the invocation
 * @labels: (array zero-terminated=1): translated labels
 * @values: one value per label
 *
 * Prints "Label:  value" lines with the values aligned.
 */
void
as_ctl_print_fields(AsCtl *self, const gchar *const *labels, const gchar *const *values)
{
	guint width = 0;

	for (guint i = 0; labels[i] != NULL; i++)
		width = MAX(width, as_ctl_display_width(labels[i]) + 1);
	for (guint i = 0; labels[i] != NULL; i++) {
		g_autoptr(GString) line = g_string_new(NULL);
		g_autofree gchar *value = as_ctl_sanitize_text(values[i]);
		g_autofree gchar *label = g_strdup_printf("%s:", labels[i]);
		g_autofree gchar *label_coloured =
			as_ctl_colourise(self, label, AS_CTL_COLOUR_BOLD);
		g_string_append(line, label_coloured);
		as_ctl_append_padding(line,
				      width - as_ctl_display_width(label) + AS_CTL_COLUMN_GAP);
		g_string_append(line, value);
		g_print("%s\n", line->str);
	}
}

/* a table of text cells printed with aligned columns */

typedef struct {
	gchar *text; /* (owned): sanitized */
	AsCtlColour colour;
} AsCtlCell;

struct AsCtlTable {
	GPtrArray *headers;    /* (owned) (element-type utf8) */
	gboolean *align_right; /* (owned): one per column */
	GPtrArray *rows;       /* (owned) (element-type GPtrArray<AsCtlCell>) */
};

static void
as_ctl_cell_free(AsCtlCell *cell)
{
	g_free(cell->text);
	g_free(cell);
}

AsCtlTable *
as_ctl_table_new(const gchar *const *headers)
{
	AsCtlTable *table = g_new0(AsCtlTable, 1);
	table->headers = g_ptr_array_new_with_free_func(g_free);
	for (guint i = 0; headers[i] != NULL; i++)
		g_ptr_array_add(table->headers, g_strdup(headers[i]));
	table->align_right = g_new0(gboolean, table->headers->len);
	table->rows = g_ptr_array_new_with_free_func((GDestroyNotify)g_ptr_array_unref);
	return table;
}

void
as_ctl_table_free(AsCtlTable *table)
{
	g_ptr_array_unref(table->headers);
	g_ptr_array_unref(table->rows);
	g_free(table->align_right);
	g_free(table);
}

void
as_ctl_table_set_align_right(AsCtlTable *table, guint column)
{
	g_return_if_fail(column < table->headers->len);
	table->align_right[column] = TRUE;
}

void
as_ctl_table_add_row(AsCtlTable *table)
{
	g_ptr_array_add(table->rows,
			g_ptr_array_new_with_free_func((GDestroyNotify)as_ctl_cell_free));
}

void
as_ctl_table_add_cell(AsCtlTable *table, const gchar *text, AsCtlColour colour)
{
	GPtrArray *row;
	AsCtlCell *cell;

	g_return_if_fail(table->rows->len > 0);
	row = g_ptr_array_index(table->rows, table->rows->len - 1);
	g_return_if_fail(row->len < table->headers->len);
	cell = g_new0(AsCtlCell, 1);
	cell->text = as_ctl_sanitize_text(text);
	cell->colour = colour;
	g_ptr_array_add(row, cell);
}

static void
as_ctl_table_append_cell(AsCtl *self,
			 AsCtlTable *table,
			 GString *line,
			 guint column,
			 guint width,
			 const gchar *text,
			 AsCtlColour colour)
{
	g_autofree gchar *coloured = as_ctl_colourise(self, text, colour);
	guint padding = width - as_ctl_display_width(text);
	gboolean last = column + 1 == table->headers->len;

	if (column > 0)
		as_ctl_append_padding(line, AS_CTL_COLUMN_GAP);
	if (table->align_right[column])
		as_ctl_append_padding(line, padding);
	g_string_append(line, coloured);
	if (!table->align_right[column] && !last)
		as_ctl_append_padding(line, padding);
}

void
as_ctl_table_print(AsCtl *self, AsCtlTable *table)
{
	guint n_columns = table->headers->len;
	g_autofree guint *widths = g_new0(guint, n_columns);
	g_autoptr(GString) line = g_string_new(NULL);

	for (guint c = 0; c < n_columns; c++)
		widths[c] = as_ctl_display_width(g_ptr_array_index(table->headers, c));
	for (guint r = 0; r < table->rows->len; r++) {
		GPtrArray *row = g_ptr_array_index(table->rows, r);
		for (guint c = 0; c < row->len; c++) {
			AsCtlCell *cell = g_ptr_array_index(row, c);
			widths[c] = MAX(widths[c], as_ctl_display_width(cell->text));
		}
	}
	for (guint c = 0; c < n_columns; c++) {
		as_ctl_table_append_cell(self, table, line, c, widths[c],
					 g_ptr_array_index(table->headers, c), AS_CTL_COLOUR_BOLD);
	}
	g_print("%s\n", line->str);
	for (guint r = 0; r < table->rows->len; r++) {
		GPtrArray *row = g_ptr_array_index(table->rows, r);
		g_string_truncate(line, 0);
		for (guint c = 0; c < n_columns; c++) {
			AsCtlCell *cell = c < row->len ? g_ptr_array_index(row, c) : NULL;
			as_ctl_table_append_cell(self, table, line, c, widths[c],
						 cell != NULL ? cell->text : "",
						 cell != NULL ? cell->colour : AS_CTL_COLOUR_NONE);
		}
		g_print("%s\n", line->str);
	}
}

/* errors */

/**
 * as_ctl_exit_for_error:
 * @error: a #GError from a verb or from the daemon
 *
 * The one mapping from errors to exit codes.
 *
 * Returns: the #AsCtlExit to leave with
 */
AsCtlExit
as_ctl_exit_for_error(const GError *error)
{
	if (error->domain == AS_CTL_ERROR)
		return (AsCtlExit)error->code;
	if (error->domain == G_OPTION_ERROR)
		return AS_CTL_EXIT_USAGE;
	if (error->domain == AS_ERROR) {
		switch (error->code) {
		case AS_ERROR_NOT_FOUND:
			return AS_CTL_EXIT_NOT_FOUND;
		case AS_ERROR_PERMISSION_DENIED:
			return AS_CTL_EXIT_PERMISSION;
		case AS_ERROR_INVALID_ARGUMENT:
		case AS_ERROR_AMBIGUOUS:
			return AS_CTL_EXIT_USAGE;
		default:
			return AS_CTL_EXIT_FAILURE;
		}
	}
	if (error->domain == G_DBUS_ERROR) {
		switch (error->code) {
		case G_DBUS_ERROR_ACCESS_DENIED:
		case G_DBUS_ERROR_AUTH_FAILED:
			return AS_CTL_EXIT_PERMISSION;
		case G_DBUS_ERROR_SERVICE_UNKNOWN:
		case G_DBUS_ERROR_NAME_HAS_NO_OWNER:
		case G_DBUS_ERROR_NO_REPLY:
		case G_DBUS_ERROR_NO_SERVER:
		case G_DBUS_ERROR_DISCONNECTED:
		case G_DBUS_ERROR_TIMEOUT:
		case G_DBUS_ERROR_TIMED_OUT:
		case G_DBUS_ERROR_SPAWN_EXEC_FAILED:
		case G_DBUS_ERROR_SPAWN_FORK_FAILED:
		case G_DBUS_ERROR_SPAWN_CHILD_EXITED:
		case G_DBUS_ERROR_SPAWN_CHILD_SIGNALED:
		case G_DBUS_ERROR_SPAWN_FAILED:
		case G_DBUS_ERROR_SPAWN_SETUP_FAILED:
		case G_DBUS_ERROR_SPAWN_CONFIG_INVALID:
		case G_DBUS_ERROR_SPAWN_SERVICE_INVALID:
		case G_DBUS_ERROR_SPAWN_SERVICE_NOT_FOUND:
		case G_DBUS_ERROR_SPAWN_PERMISSIONS_INVALID:
		case G_DBUS_ERROR_SPAWN_FILE_INVALID:
		case G_DBUS_ERROR_SPAWN_NO_MEMORY:
			return AS_CTL_EXIT_UNREACHABLE;
		default:
			return AS_CTL_EXIT_FAILURE;
		}
	}
	/* GDBus reports a call timeout and a closed connection as GIO errors */
	if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT) ||
	    g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CLOSED) ||
	    g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED) ||
	    g_error_matches(error, G_IO_ERROR, G_IO_ERROR_BROKEN_PIPE))
		return AS_CTL_EXIT_UNREACHABLE;
	return AS_CTL_EXIT_FAILURE;
}

/**
 * as_ctl_error_add_hint:
 * @error: (nullable): a #GError
 * @hint: what the user can do about it
 *
 * Appends " (@hint)" to the message, which stays on one line.
 */
void
as_ctl_error_add_hint(GError *error, const gchar *hint)
{
	gchar *message;

	if (error == NULL)
		return;
	message = g_strdup_printf("%s (%s)", error->message, hint);
	g_free(error->message);
	error->message = message;
}

static void
as_ctl_set_unreachable_error(AsCtl *self,
			     GError **error,
			     const GError *error_local,
			     const gchar *hint)
{
	g_set_error(error, AS_CTL_ERROR, AS_CTL_EXIT_UNREACHABLE,
		    /* TRANSLATORS: first %s is "the session bus" or "the bus at ADDRESS", the
		     * second is the reason, the third what to do about it */
		    _("cannot reach aerosyncd on %s: %s (%s)"), self->bus_description,
		    error_local->message, hint);
}

/**
 * as_ctl_propagate_dbus_error:
 * @self: the invocation
 * @error: the error to set, or %NULL
 * @error_local: (transfer full): the error of a call to the daemon
 * @what: translated text saying what failed, e.g. "cannot revoke token"
 *
 * Strips the remote error prefix and adds @what, or says the daemon is unreachable.
 */
void
as_ctl_propagate_dbus_error(AsCtl *self, GError **error, GError *error_local, const gchar *what)
{
	g_autoptr(GError) error_call = error_local;

	g_dbus_error_strip_remote_error(error_call);
	if (as_ctl_exit_for_error(error_call) == AS_CTL_EXIT_UNREACHABLE) {
		as_ctl_set_unreachable_error(
			self, error, error_call,
			/* TRANSLATORS: hint when the daemon is not running; keep 'aerosyncd' */
			_("start it with 'aerosyncd' or enable the user service"));
		return;
	}
	g_prefix_error(&error_call, "%s: ", what);
	g_propagate_error(error, g_steal_pointer(&error_call));
}

/* the daemon */

static gboolean
as_ctl_ensure_connection(AsCtl *self, GError **error)
{
	const gchar *address = g_getenv(AS_CTL_ENV_BUS_ADDRESS);
	g_autoptr(GError) error_local = NULL;

	if (self->connection != NULL)
		return TRUE;
	g_clear_pointer(&self->bus_description, g_free);
	if (address != NULL && address[0] != '\0') {
		/* TRANSLATORS: completes "cannot reach aerosyncd on %s"; %s is a D-Bus address */
		self->bus_description = g_strdup_printf(_("the bus at %s"), address);
		g_debug("connecting to %s", address);
		self->connection = g_dbus_connection_new_for_address_sync(
			address,
			G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
				G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
			NULL, NULL, &error_local);
	} else {
		/* TRANSLATORS: completes "cannot reach aerosyncd on %s" */
		self->bus_description = g_strdup(_("the session bus"));
		self->connection = g_bus_get_sync(G_BUS_TYPE_SESSION, NULL, &error_local);
	}
	if (self->connection == NULL) {
		g_autofree gchar *hint =
			/* TRANSLATORS: hint when the bus itself is missing; %s is a variable name
			 */
			g_strdup_printf(_("check that %s names a running bus"),
					address != NULL && address[0] != '\0'
						? AS_CTL_ENV_BUS_ADDRESS
						: "DBUS_SESSION_BUS_ADDRESS");
		as_ctl_set_unreachable_error(self, error, error_local, hint);
		return FALSE;
	}
	return TRUE;
}

/**
 * as_ctl_get_manager:
 * @self: the invocation
 * @error: a #GError, or %NULL
 *
 * Connects to the bus on first use. Properties are not loaded: the verbs call methods, and
 * read the few properties they need with as_ctl_get_manager_property(). Method calls go to
 * the well-known name, so D-Bus activation still starts the daemon.
 *
 * Returns: (transfer none): the org.aerosync.Manager1 proxy, or %NULL
 */
AsDbusManager1 *
as_ctl_get_manager(AsCtl *self, GError **error)
{
	g_autoptr(GError) error_local = NULL;

	if (self->manager != NULL)
		return self->manager;
	if (!as_ctl_ensure_connection(self, error))
		return NULL;
	self->manager = AS_DBUS_MANAGER1(
		as_dbus_manager1_proxy_new_sync(self->connection,
						G_DBUS_PROXY_FLAGS_DO_NOT_LOAD_PROPERTIES |
							G_DBUS_PROXY_FLAGS_DO_NOT_CONNECT_SIGNALS,
						AS_DBUS_NAME, AS_DBUS_PATH, NULL, &error_local));
	if (self->manager == NULL) {
		as_ctl_propagate_dbus_error(self, error, g_steal_pointer(&error_local),
					    /* TRANSLATORS: a D-Bus proxy could not be set up */
					    _("cannot talk to aerosyncd"));
		return NULL;
	}
	g_dbus_proxy_set_default_timeout(G_DBUS_PROXY(self->manager), AS_CTL_DBUS_TIMEOUT_MS);
	return self->manager;
}

/**
 * as_ctl_get_manager_property:
 * @self: the invocation
 * @name: a property of org.aerosync.Manager1, e.g. "TokenBackend"
 * @error: a #GError, or %NULL
 *
 * Reads one property from the daemon now, rather than from a cache.
 *
 * Returns: (transfer full): the value, or %NULL
 */
GVariant *
as_ctl_get_manager_property(AsCtl *self, const gchar *name, GError **error)
{
	AsDbusManager1 *manager = as_ctl_get_manager(self, error);
	GVariant *value = NULL;
	g_autoptr(GVariant) reply = NULL;
	g_autoptr(GError) error_local = NULL;

	if (manager == NULL)
		return NULL;
	reply = g_dbus_connection_call_sync(
		self->connection, AS_DBUS_NAME, AS_DBUS_PATH, "org.freedesktop.DBus.Properties",
		"Get",
		g_variant_new("(ss)", g_dbus_proxy_get_interface_name(G_DBUS_PROXY(manager)), name),
		G_VARIANT_TYPE("(v)"), G_DBUS_CALL_FLAGS_NONE, AS_CTL_DBUS_TIMEOUT_MS, NULL,
		&error_local);
	if (reply == NULL) {
		g_autofree gchar *what =
			/* TRANSLATORS: %s is a D-Bus property name such as TokenBackend */
			g_strdup_printf(_("cannot read the daemon's %s property"), name);
		as_ctl_propagate_dbus_error(self, error, g_steal_pointer(&error_local), what);
		return NULL;
	}
	g_variant_get(reply, "(v)", &value);
	return value;
}

/* help */

static gchar *
as_ctl_verb_synopsis(const AsCtlVerb *verb)
{
	if (verb->arguments == NULL)
		return g_strdup(verb->name);
	return g_strdup_printf("%s %s", verb->name, _(verb->arguments));
}

static gchar *
as_ctl_option_synopsis(const GOptionEntry *entry)
{
	GString *str = g_string_new(NULL);
	if (entry->short_name != '\0')
		g_string_append_printf(str, "-%c, ", entry->short_name);
	g_string_append_printf(str, "--%s", entry->long_name);
	if (entry->arg_description != NULL)
		g_string_append_printf(str, " %s", _(entry->arg_description));
	return g_string_free(str, FALSE);
}

/* prints "  name    description" rows aligned on the widest name */
static void
as_ctl_print_help_rows(GPtrArray *names, GPtrArray *descriptions)
{
	guint width = 0;

	for (guint i = 0; i < names->len; i++)
		width = MAX(width, as_ctl_display_width(g_ptr_array_index(names, i)));
	for (guint i = 0; i < names->len; i++) {
		const gchar *name = g_ptr_array_index(names, i);
		g_autoptr(GString) line = g_string_new(NULL);
		as_ctl_append_padding(line, AS_CTL_HELP_INDENT);
		g_string_append(line, name);
		as_ctl_append_padding(line, width - as_ctl_display_width(name) + AS_CTL_COLUMN_GAP);
		g_string_append(line, g_ptr_array_index(descriptions, i));
		g_print("%s\n", line->str);
	}
}

static void
as_ctl_add_option_rows(const GOptionEntry *options, GPtrArray *names, GPtrArray *descriptions)
{
	for (const GOptionEntry *entry = options; entry->long_name != NULL; entry++) {
		g_ptr_array_add(names, as_ctl_option_synopsis(entry));
		g_ptr_array_add(descriptions, g_strdup(_(entry->description)));
	}
}

static void
as_ctl_print_help(AsCtl *self, const GOptionEntry *global_options)
{
	g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GPtrArray) descriptions = g_ptr_array_new_with_free_func(g_free);
	gint exit_width = 0;

	/* TRANSLATORS: --help header; keep 'aerosyncctl' untranslated */
	g_print("%s\n", _("Usage: aerosyncctl [OPTION…] VERB [ARGUMENT…]"));
	g_print("\n");
	/* TRANSLATORS: --help description of the program */
	g_print("%s\n", _("Control aerosyncd, the AeroSync file-transfer daemon, over D-Bus."));
	g_print("\n");
	/* TRANSLATORS: --help section title */
	g_print("%s\n", _("Verbs:"));
	for (guint i = 0; i < G_N_ELEMENTS(as_ctl_verbs); i++) {
		g_ptr_array_add(names, as_ctl_verb_synopsis(&as_ctl_verbs[i]));
		g_ptr_array_add(descriptions, g_strdup(_(as_ctl_verbs[i].summary)));
	}
	as_ctl_print_help_rows(names, descriptions);
	g_print("\n");

	/* TRANSLATORS: --help section title */
	g_print("%s\n", _("Options:"));
	g_ptr_array_set_size(names, 0);
	g_ptr_array_set_size(descriptions, 0);
	as_ctl_add_option_rows(global_options, names, descriptions);
	as_ctl_print_help_rows(names, descriptions);
	g_print("\n");

	/* TRANSLATORS: --help section title */
	g_print("%s\n", _("Output:"));
	g_print("%s\n",
		/* TRANSLATORS: --help text about --json; keep the verbs untranslated */
		_("  With --json every verb prints one JSON value on standard output: a JSON\n"
		  "  array for 'token list', 'history' and 'transfers', an object otherwise;\n"
		  "  'send', 'follow', 'receive' and 'watch' print one object per line, one\n"
		  "  line per event. Errors always go to standard error as one line. Colour\n"
		  "  is used only on a terminal and never when NO_COLOR is set."));
	g_print("\n");

	/* TRANSLATORS: --help section title */
	g_print("%s\n", _("Environment:"));
	g_ptr_array_set_size(names, 0);
	g_ptr_array_set_size(descriptions, 0);
	g_ptr_array_add(names, g_strdup(AS_CTL_ENV_BUS_ADDRESS));
	g_ptr_array_add(descriptions,
			/* TRANSLATORS: --help text for the AEROSYNC_BUS_ADDRESS variable */
			g_strdup(_("D-Bus address to use instead of the session bus")));
	g_ptr_array_add(names, g_strdup("AEROSYNCD_PATH"));
	g_ptr_array_add(descriptions,
			/* TRANSLATORS: --help text for the AEROSYNCD_PATH variable */
			g_strdup(_("the aerosyncd that 'receive' starts when none runs")));
	g_ptr_array_add(names, g_strdup("NO_COLOR"));
	/* TRANSLATORS: --help text for the NO_COLOR variable */
	g_ptr_array_add(descriptions, g_strdup(_("when set, never colour the output")));
	as_ctl_print_help_rows(names, descriptions);
	g_print("\n");

	/* TRANSLATORS: --help section title */
	g_print("%s\n", _("Exit status:"));
	g_ptr_array_set_size(names, 0);
	g_ptr_array_set_size(descriptions, 0);
	/* numbers line up on the right, as in a table */
	for (guint i = 0; i < G_N_ELEMENTS(as_ctl_exit_descriptions); i++) {
		g_autofree gchar *code = g_strdup_printf("%d", as_ctl_exit_descriptions[i].code);
		exit_width = MAX(exit_width, (gint)strlen(code));
	}
	for (guint i = 0; i < G_N_ELEMENTS(as_ctl_exit_descriptions); i++) {
		g_ptr_array_add(names, g_strdup_printf("%*d", exit_width,
						       as_ctl_exit_descriptions[i].code));
		g_ptr_array_add(descriptions, g_strdup(_(as_ctl_exit_descriptions[i].description)));
	}
	as_ctl_print_help_rows(names, descriptions);
	g_print("\n");
	/* TRANSLATORS: last line of --help; keep the command untranslated */
	g_print("%s\n", _("Run 'aerosyncctl help VERB' for the options of a verb."));
}

static void
as_ctl_print_verb_help(AsCtl *self, const AsCtlVerb *verb, const GOptionEntry *global_options)
{
	g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GPtrArray) descriptions = g_ptr_array_new_with_free_func(g_free);
	g_autofree gchar *synopsis = as_ctl_verb_synopsis(verb);

	/* TRANSLATORS: first line of 'aerosyncctl help VERB'; %s is the verb and its arguments */
	g_print(_("Usage: aerosyncctl %s [OPTION…]"), synopsis);
	g_print("\n\n%s\n", _(verb->summary));
	if (verb->description != NULL)
		g_print("\n%s\n", _(verb->description));
	if (verb->aliases != NULL && verb->aliases[0] != NULL) {
		g_autofree gchar *aliases = g_strjoinv(", ", (gchar **)verb->aliases);
		g_print("\n");
		/* TRANSLATORS: %s is a list of other names of the verb */
		g_print(_("Aliases: %s"), aliases);
		g_print("\n");
	}
	g_print("\n");
	/* TRANSLATORS: --help section title */
	g_print("%s\n", _("Options:"));
	if (verb->options != NULL)
		as_ctl_add_option_rows(verb->options, names, descriptions);
	as_ctl_add_option_rows(global_options, names, descriptions);
	as_ctl_print_help_rows(names, descriptions);
}

static void
as_ctl_print_help_json(AsCtl *self)
{
	g_autoptr(JsonBuilder) builder = json_builder_new();
	g_autoptr(JsonNode) root = NULL;

	json_builder_begin_object(builder);
	json_builder_set_member_name(builder, "verbs");
	json_builder_begin_array(builder);
	for (guint i = 0; i < G_N_ELEMENTS(as_ctl_verbs); i++) {
		const AsCtlVerb *verb = &as_ctl_verbs[i];
		json_builder_begin_object(builder);
		json_builder_set_member_name(builder, "name");
		json_builder_add_string_value(builder, verb->name);
		json_builder_set_member_name(builder, "aliases");
		json_builder_begin_array(builder);
		for (guint j = 0; verb->aliases != NULL && verb->aliases[j] != NULL; j++)
			json_builder_add_string_value(builder, verb->aliases[j]);
		json_builder_end_array(builder);
		json_builder_set_member_name(builder, "min_args");
		json_builder_add_int_value(builder, verb->min_args);
		json_builder_set_member_name(builder, "max_args");
		json_builder_add_int_value(builder, verb->max_args);
		json_builder_set_member_name(builder, "options");
		json_builder_begin_array(builder);
		for (const GOptionEntry *entry = verb->options;
		     entry != NULL && entry->long_name != NULL; entry++)
			json_builder_add_string_value(builder, entry->long_name);
		json_builder_end_array(builder);
		json_builder_set_member_name(builder, "summary");
		json_builder_add_string_value(builder, _(verb->summary));
		json_builder_end_object(builder);
	}
	json_builder_end_array(builder);
	json_builder_set_member_name(builder, "exit_codes");
	json_builder_begin_object(builder);
	for (guint i = 0; i < G_N_ELEMENTS(as_ctl_exit_descriptions); i++) {
		g_autofree gchar *code = g_strdup_printf("%d", as_ctl_exit_descriptions[i].code);
		json_builder_set_member_name(builder, code);
		json_builder_add_string_value(builder, _(as_ctl_exit_descriptions[i].description));
	}
	json_builder_end_object(builder);
	json_builder_end_object(builder);
	root = json_builder_get_root(builder);
	as_ctl_print_json(self, root);
}

/* the global options; --help and --version are ours so help can list verbs and exit codes */
static GOptionEntry *
as_ctl_global_options_new(AsCtl *self)
{
	const GOptionEntry entries[] = {
		{"json", '\0', G_OPTION_FLAG_NONE, G_OPTION_ARG_NONE, &self->json,
		 /* TRANSLATORS: --json option in --help */
		 N_("Print machine-readable JSON, without colour or prompts"), NULL},
		{"verbose", 'v', G_OPTION_FLAG_NONE, G_OPTION_ARG_NONE, &self->verbose,
		 /* TRANSLATORS: --verbose option in --help */
		 N_("Show debugging messages"), NULL},
		{"version", '\0', G_OPTION_FLAG_NONE, G_OPTION_ARG_NONE, &self->version,
		 /* TRANSLATORS: --version option in --help */
		 N_("Show the version of aerosyncctl"), NULL},
		{"help", 'h', G_OPTION_FLAG_NONE, G_OPTION_ARG_NONE, &self->help,
		 /* TRANSLATORS: --help option in --help */
		 N_("Show help, for a verb when one is given"), NULL},
		{NULL},
	};
	return g_memdup2(entries, sizeof(entries));
}

static gboolean
as_ctl_help(AsCtl *self, gchar **values, GError **error)
{
	g_autofree GOptionEntry *global_options = as_ctl_global_options_new(self);
	g_autoptr(GPtrArray) words = g_ptr_array_new();
	const AsCtlVerb *verb;
	guint n_matched = 0;

	if (values[0] == NULL) {
		if (self->json)
			as_ctl_print_help_json(self);
		else
			as_ctl_print_help(self, global_options);
		return TRUE;
	}
	for (guint i = 0; values[i] != NULL; i++)
		g_ptr_array_add(words, values[i]);
	verb = as_ctl_find_verb(words, &n_matched);
	if (verb == NULL || n_matched != words->len) {
		as_ctl_set_unknown_verb_error(words, error);
		return FALSE;
	}
	as_ctl_print_verb_help(self, verb, global_options);
	return TRUE;
}

static gboolean
as_ctl_run(AsCtl *self, gint argc, gchar **argv, GError **error)
{
	g_autofree GOptionEntry *global_options = as_ctl_global_options_new(self);
	g_autoptr(GOptionContext) context = g_option_context_new(NULL);
	g_autoptr(GPtrArray) words = as_ctl_get_positional_words(argc, argv);
	g_auto(GStrv) args = g_new0(gchar *, argc + 1);
	g_autoptr(GError) error_local = NULL;
	GOptionGroup *group;
	const gchar *no_color = g_getenv("NO_COLOR");
	guint n_verb_words = 0;
	guint n_values;
	gchar **values;

	/* the verb decides which options exist, so find it before parsing them */
	if (words->len > 0) {
		self->verb = as_ctl_find_verb(words, &n_verb_words);
		if (self->verb == NULL) {
			as_ctl_set_unknown_verb_error(words, error);
			return FALSE;
		}
	}

	group = g_option_group_new(AS_CTL_PROGRAM, "", "", self, NULL);
	g_option_group_add_entries(group, global_options);
	if (self->verb != NULL && self->verb->options != NULL)
		g_option_group_add_entries(group, self->verb->options);
	g_option_context_set_main_group(context, group);
	g_option_context_set_help_enabled(context, FALSE);
	for (gint i = 0; i < argc; i++)
		args[i] = g_strdup(argv[i]);
	if (!g_option_context_parse_strv(context, &args, &error_local)) {
		g_autofree gchar *help_command =
			self->verb != NULL
				? g_strdup_printf("aerosyncctl help %s", self->verb->name)
				: g_strdup("aerosyncctl --help");
		g_set_error(error, AS_CTL_ERROR, AS_CTL_EXIT_USAGE,
			    /* TRANSLATORS: first %s is GLib's message about a bad option, the
			     * second a command to run for help */
			    _("%s (see '%s')"), error_local->message, help_command);
		return FALSE;
	}

	self->colour = !self->json && isatty(STDOUT_FILENO) &&
		       (no_color == NULL || no_color[0] == '\0') &&
		       g_strcmp0(g_getenv("TERM"), "dumb") != 0;
	if (self->verbose)
		g_log_set_debug_enabled(TRUE);

	if (self->version) {
		g_print("%s %s\n", AS_CTL_PROGRAM, PACKAGE_VERSION);
		return TRUE;
	}
	if (self->verb == NULL) {
		if (self->help)
			return as_ctl_help(self, (gchar *[]){NULL}, error);
		g_set_error_literal(error, AS_CTL_ERROR, AS_CTL_EXIT_USAGE,
				    /* TRANSLATORS: the command line has options but no verb */
				    _("no verb given (see 'aerosyncctl --help')"));
		return FALSE;
	}
	if (self->help) {
		as_ctl_print_verb_help(self, self->verb, global_options);
		return TRUE;
	}

	/* GOption keeps the "--" that ends the options; it is not an argument */
	for (guint i = 1; args[i] != NULL; i++) {
		if (g_strcmp0(args[i], "--") == 0) {
			g_free(args[i]);
			memmove(&args[i], &args[i + 1],
				(g_strv_length(args + i + 1) + 1) * sizeof(gchar *));
			break;
		}
	}

	/* args now holds the program, the verb words, then the verb's arguments */
	n_values = g_strv_length(args) - 1 - n_verb_words;
	values = args + 1 + n_verb_words;
	if (n_values < self->verb->min_args) {
		g_set_error(error, AS_CTL_ERROR, AS_CTL_EXIT_USAGE,
			    /* TRANSLATORS: first %s is a verb, second its arguments, e.g.
			     * 'token revoke' needs PREFIX */
			    _("'%s' needs %s (see 'aerosyncctl help %s')"), self->verb->name,
			    self->verb->arguments != NULL ? _(self->verb->arguments) : "",
			    self->verb->name);
		return FALSE;
	}
	if (n_values > self->verb->max_args) {
		g_set_error(error, AS_CTL_ERROR, AS_CTL_EXIT_USAGE,
			    /* TRANSLATORS: first %s is the extra argument, second the verb */
			    _("unexpected argument '%s' for '%s' (see 'aerosyncctl help %s')"),
			    values[self->verb->max_args], self->verb->name, self->verb->name);
		return FALSE;
	}
	g_debug("running verb '%s' with %u argument(s)", self->verb->name, n_values);
	return self->verb->func(self, values, error);
}

int
main(int argc, char *argv[])
{
	g_autoptr(AsCtl) self = NULL;
	g_autoptr(GError) error = NULL;

	setlocale(LC_ALL, "");
	/* tests point AEROSYNC_LOCALEDIR at the catalogue built in the build tree */
	bindtextdomain(GETTEXT_PACKAGE, g_getenv("AEROSYNC_LOCALEDIR") ?: LOCALEDIR);
	bind_textdomain_codeset(GETTEXT_PACKAGE, "UTF-8");
	textdomain(GETTEXT_PACKAGE);

	/* registers org.aerosync.Error.* so replies from the daemon arrive as AS_ERROR codes */
	(void)as_error_quark();

	self = as_ctl_new();
	if (!as_ctl_run(self, argc, argv, &error)) {
		/* one line, whatever the daemon put in its message */
		g_strdelimit(error->message, "\r\n", ' ');
		g_printerr("%s: %s\n", AS_CTL_PROGRAM, error->message);
		return as_ctl_exit_for_error(error);
	}
	return AS_CTL_EXIT_OK;
}
