/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <json-glib/json-glib.h>

#include "as-dbus-generated.h"

G_BEGIN_DECLS

/**
 * AsCtlExit:
 * @AS_CTL_EXIT_OK: the verb succeeded
 * @AS_CTL_EXIT_FAILURE: the verb failed for another reason
 * @AS_CTL_EXIT_USAGE: the command line is wrong (unknown verb, bad option or argument)
 * @AS_CTL_EXIT_NOT_FOUND: the named object (e.g. a token) does not exist
 * @AS_CTL_EXIT_UNREACHABLE: aerosyncd could not be reached on the bus
 * @AS_CTL_EXIT_PERMISSION: the daemon refused the request (permission or authentication)
 * @AS_CTL_EXIT_CANCELLED: the transfer being followed was cancelled ('aerosyncctl cancel' or
 *   another client)
 * @AS_CTL_EXIT_PEER_UNREACHABLE: the remote receiver could not be reached (send, watch,
 *   status HOST)
 * @AS_CTL_EXIT_INTERRUPTED: Ctrl-C while following a transfer: the CLI detached and the
 *   transfer goes on inside aerosyncd (128 + SIGINT, as shells report an interrupted command)
 *
 * The exit status of aerosyncctl. The only place these numbers are defined; --help lists them.
 */
typedef enum {
	AS_CTL_EXIT_OK = 0,
	AS_CTL_EXIT_FAILURE = 1,
	AS_CTL_EXIT_USAGE = 2,
	AS_CTL_EXIT_NOT_FOUND = 3,
	AS_CTL_EXIT_UNREACHABLE = 4,
	AS_CTL_EXIT_PERMISSION = 5,
	AS_CTL_EXIT_CANCELLED = 6,
	AS_CTL_EXIT_PEER_UNREACHABLE = 101,
	AS_CTL_EXIT_INTERRUPTED = 130,
} AsCtlExit;

/* errors raised by the CLI itself; the code is the AsCtlExit to leave with */
#define AS_CTL_ERROR (as_ctl_error_quark())
GQuark as_ctl_error_quark(void);

/* how long one call to the daemon may take; GetHistory streams a file so allow some slack */
#define AS_CTL_DBUS_TIMEOUT_MS 30000

/* the receiver's HTTP port when HOST is given without one, as in AeroSync 0.x */
#define AS_CTL_DEFAULT_PORT 7788

typedef enum {
	AS_CTL_COLOUR_NONE,
	AS_CTL_COLOUR_BOLD,
	AS_CTL_COLOUR_RED,
	AS_CTL_COLOUR_GREEN,
	AS_CTL_COLOUR_YELLOW,
	AS_CTL_COLOUR_DIM,
} AsCtlColour;

typedef struct AsCtlVerb AsCtlVerb;

/* the state of one invocation, shared by the verb implementations */
typedef struct {
	gboolean json;		     /* --json: machine-readable output, no colour */
	gboolean colour;	     /* stdout is a TTY and NO_COLOR is unset */
	gboolean verbose;	     /* --verbose */
	gboolean help;		     /* --help */
	gboolean version;	     /* --version */
	const AsCtlVerb *verb;	     /* (unowned): the verb being run */
	GHashTable *options;	     /* (owned) (element-type utf8 utf8): long name -> value */
	gchar *bus_description;	     /* (owned): "the session bus" or the override address */
	GDBusConnection *connection; /* (owned) (nullable): set on first use */
	AsDbusManager1 *manager;     /* (owned) (nullable): set on first use */
} AsCtl;

/**
 * AsCtlVerbFunc:
 * @self: the invocation
 * @values: (array zero-terminated=1): the positional arguments after the verb words, already
 *   counted against the verb's limits
 * @error: a #GError, or %NULL
 *
 * Runs one verb. Errors are reported by the caller as one line on stderr and mapped to an
 * #AsCtlExit by as_ctl_exit_for_error().
 */
typedef gboolean (*AsCtlVerbFunc)(AsCtl *self, gchar **values, GError **error);

struct AsCtlVerb {
	const gchar *name;	     /* one or more words, e.g. "token generate" */
	const gchar *const *aliases; /* (nullable) (array zero-terminated=1) */
	guint min_args;
	guint max_args;
	const gchar *arguments;	     /* (nullable): synopsis of the positional arguments */
	const gchar *summary;	     /* N_() marked, one line */
	const gchar *description;    /* (nullable): N_() marked, more for 'help VERB' */
	const GOptionEntry *options; /* (nullable): verb options, see AS_CTL_OPTION_FLAG */
	AsCtlVerbFunc func;
};

gboolean
as_ctl_option_cb(const gchar *option_name, const gchar *value, gpointer data, GError **error);

/* verb options are collected into AsCtl.options by name, so verb files keep no mutable state */
#define AS_CTL_OPTION_FLAG(long_name, short_name, description)                                     \
	{                                                                                          \
		long_name, short_name, G_OPTION_FLAG_NO_ARG, G_OPTION_ARG_CALLBACK,                \
			(gpointer)as_ctl_option_cb, description, NULL                              \
	}
#define AS_CTL_OPTION_VALUE(long_name, short_name, description, arg_description)                   \
	{                                                                                          \
		long_name, short_name, G_OPTION_FLAG_NONE, G_OPTION_ARG_CALLBACK,                  \
			(gpointer)as_ctl_option_cb, description, arg_description                   \
	}

/* options */
const gchar *as_ctl_get_option(AsCtl *self, const gchar *long_name);
gboolean as_ctl_has_option(AsCtl *self, const gchar *long_name);

/* errors */
AsCtlExit as_ctl_exit_for_error(const GError *error);
void as_ctl_error_add_hint(GError *error, const gchar *hint);
void
as_ctl_propagate_dbus_error(AsCtl *self, GError **error, GError *error_local, const gchar *what);

/* the daemon */
AsDbusManager1 *as_ctl_get_manager(AsCtl *self, GError **error);
GVariant *as_ctl_get_manager_property(AsCtl *self, const gchar *name, GError **error);

/* output */
void as_ctl_print_json(AsCtl *self, JsonNode *root);
void as_ctl_print_json_line(AsCtl *self, JsonNode *root);
void as_ctl_json_add_members(JsonBuilder *builder, GVariant *dict);
gchar *as_ctl_colourise(AsCtl *self, const gchar *text, AsCtlColour colour);
gchar *as_ctl_format_size(guint64 size_bytes);
gchar *as_ctl_format_rate(guint64 bytes_per_s);
guint as_ctl_display_width(const gchar *text);
gchar *as_ctl_sanitize_text(const gchar *text);
gchar *as_ctl_format_time(gint64 unix_seconds);
void as_ctl_print_fields(AsCtl *self, const gchar *const *labels, const gchar *const *values);

typedef struct AsCtlTable AsCtlTable;
AsCtlTable *as_ctl_table_new(const gchar *const *headers);
void as_ctl_table_free(AsCtlTable *table);
void as_ctl_table_set_align_right(AsCtlTable *table, guint column);
void as_ctl_table_add_row(AsCtlTable *table);
void as_ctl_table_add_cell(AsCtlTable *table, const gchar *text, AsCtlColour colour);
void as_ctl_table_print(AsCtl *self, AsCtlTable *table);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(AsCtlTable, as_ctl_table_free)

/* verbs: one file per group */
gboolean as_ctl_status(AsCtl *self, gchar **values, GError **error);

extern const GOptionEntry as_ctl_token_generate_options[];
gboolean as_ctl_token_generate(AsCtl *self, gchar **values, GError **error);
gboolean as_ctl_token_list(AsCtl *self, gchar **values, GError **error);
gboolean as_ctl_token_revoke(AsCtl *self, gchar **values, GError **error);

extern const GOptionEntry as_ctl_status_options[];

extern const GOptionEntry as_ctl_history_options[];
gboolean as_ctl_history(AsCtl *self, gchar **values, GError **error);

G_END_DECLS
