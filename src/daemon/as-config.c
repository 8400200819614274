/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "AsConfig"

#include "config.h"

#include <errno.h>
#include <gio/gio.h>

#include "as-config.h"
#include "as-error.h"

AsConfig *
as_config_new(void)
{
	AsConfig *self = g_new0(AsConfig, 1);
	self->port = -1;
	self->quic_port = -1;
	self->quic = TRUE;
	self->https_port = -1;
	self->auth = TRUE;
	self->ready_fd = -1;
	self->bus = AS_CONFIG_BUS_SESSION;
	self->listen = TRUE;
	self->mdns = TRUE;
	self->idle_timeout_s = -1;
	return self;
}

void
as_config_free(AsConfig *self)
{
	if (self == NULL)
		return;
	g_free(self->config_path);
	g_free(self->bind);
	g_free(self->tls_cert);
	g_free(self->tls_key);
	g_free(self->save_to);
	g_free(self->auth_token_file);
	g_free(self->legacy_secret_file);
	g_free(self->token_backend);
	g_free(self->audit_log);
	g_free(self->history_log);
	g_free(self->config_dir);
	g_free(self->state_dir);
	g_free(self);
}

/* "512KB", "10MB", "1.5G", "1048576", "100GiB": binary multiples, as 0.x's --max-size takes bytes
 */
gboolean
as_config_parse_size(const gchar *text, guint64 *bytes, GError **error)
{
	gchar *end = NULL;
	gdouble value;
	guint64 mult = 1;
	g_autofree gchar *unit = NULL;

	if (text == NULL || *text == '\0' || *text == '-') {
		g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT, "invalid size '%s'", text);
		return FALSE;
	}
	errno = 0;
	value = g_ascii_strtod(text, &end);
	if (errno != 0 || end == text || value < 0) {
		g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT, "invalid size '%s'", text);
		return FALSE;
	}
	unit = g_ascii_strdown(g_strstrip(g_strdup(end)), -1);
	if (g_str_has_suffix(unit, "/s"))
		unit[strlen(unit) - 2] = '\0';
	if (*unit == '\0' || g_strcmp0(unit, "b") == 0)
		mult = 1;
	else if (g_strv_contains((const gchar *[]){"k", "kb", "kib", NULL}, unit))
		mult = 1024ull;
	else if (g_strv_contains((const gchar *[]){"m", "mb", "mib", NULL}, unit))
		mult = 1024ull * 1024;
	else if (g_strv_contains((const gchar *[]){"g", "gb", "gib", NULL}, unit))
		mult = 1024ull * 1024 * 1024;
	else if (g_strv_contains((const gchar *[]){"t", "tb", "tib", NULL}, unit))
		mult = 1024ull * 1024 * 1024 * 1024;
	else {
		g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
			    "invalid size '%s': unknown unit '%s'", text, unit);
		return FALSE;
	}
	if (value * (gdouble)mult > (gdouble)G_MAXUINT64) {
		g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT, "size '%s' is too large",
			    text);
		return FALSE;
	}
	*bytes = (guint64)(value * (gdouble)mult);
	return TRUE;
}

/* values given on the command line win over the file */
typedef struct {
	gchar *config;
	gchar *bind;
	gint port;
	gint quic_port;
	gboolean http_only;
	gboolean https;
	gint https_port;
	gchar *tls_cert;
	gchar *tls_key;
	gchar *save_to;
	gchar *max_size;
	gboolean overwrite;
	gboolean no_auth;
	gchar *auth_token_file;
	gchar *legacy_secret_file;
	gchar *token_backend;
	gchar *audit_log;
	gboolean one_shot;
	gboolean verbose;
	gboolean session;
	gboolean no_dbus;
	gboolean no_listen;
	gboolean no_mdns;
	gint idle_timeout_s;
	gint ready_fd;
} AsConfigArgs;

static gchar *
as_config_key_string(GKeyFile *kf, const gchar *key)
{
	g_autofree gchar *value = g_key_file_get_string(kf, AS_CONFIG_GROUP, key, NULL);
	if (value == NULL)
		return NULL;
	g_strstrip(value);
	return *value == '\0' ? NULL : g_steal_pointer(&value);
}

static gchar *
as_config_expand_path(const gchar *path)
{
	if (path == NULL)
		return NULL;
	if (g_str_has_prefix(path, "~/"))
		return g_build_filename(g_get_home_dir(), path + 2, NULL);
	return g_canonicalize_filename(path, NULL);
}

static gboolean
as_config_key_bool(GKeyFile *kf, const gchar *key, gboolean *value, GError **error)
{
	g_autoptr(GError) error_local = NULL;
	gboolean tmp;

	if (!g_key_file_has_key(kf, AS_CONFIG_GROUP, key, NULL))
		return TRUE;
	tmp = g_key_file_get_boolean(kf, AS_CONFIG_GROUP, key, &error_local);
	if (error_local != NULL) {
		g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT, "key '%s': %s", key,
			    error_local->message);
		return FALSE;
	}
	*value = tmp;
	return TRUE;
}

/* leaves *port alone when the key is absent */
static gboolean
as_config_key_port(GKeyFile *kf, const gchar *path, const gchar *key, gint *port, GError **error)
{
	g_autoptr(GError) error_local = NULL;
	gint value;

	if (!g_key_file_has_key(kf, AS_CONFIG_GROUP, key, NULL))
		return TRUE;
	value = g_key_file_get_integer(kf, AS_CONFIG_GROUP, key, &error_local);
	if (error_local != NULL || value < 0 || value > 65535) {
		g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
			    "config %s: invalid %s (0 to 65535)", path, key);
		return FALSE;
	}
	*port = value;
	return TRUE;
}

static const gchar *as_config_known_keys[] = {"bind",
					      "port",
					      "quic-port",
					      "quic",
					      "https",
					      "https-port",
					      "tls-cert",
					      "tls-key",
					      "save-to",
					      "max-size",
					      "overwrite",
					      "auth",
					      "auth-token-file",
					      "legacy-secret-file",
					      "token-backend",
					      "audit-log",
					      "history-log",
					      "one-shot",
					      "verbose",
					      "listen",
					      "idle-timeout",
					      "mdns",
					      NULL};

static gboolean
as_config_check_idle_timeout(gint idle_timeout_s, GError **error)
{
	if (idle_timeout_s < 0 || idle_timeout_s > AS_CONFIG_IDLE_TIMEOUT_MAX_S) {
		g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
			    "idle-timeout must be 0 (never) to %d seconds, not %d",
			    AS_CONFIG_IDLE_TIMEOUT_MAX_S, idle_timeout_s);
		return FALSE;
	}
	return TRUE;
}

gboolean
as_config_load_file(AsConfig *self, const gchar *path, gboolean must_exist, GError **error)
{
	g_autoptr(GKeyFile) kf = g_key_file_new();
	g_autoptr(GError) error_local = NULL;
	g_auto(GStrv) keys = NULL;
	g_autofree gchar *tmp = NULL;

	if (!g_key_file_load_from_file(kf, path, G_KEY_FILE_NONE, &error_local)) {
		if (!must_exist && g_error_matches(error_local, G_FILE_ERROR, G_FILE_ERROR_NOENT))
			return TRUE;
		g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT, "cannot read config %s: %s",
			    path, error_local->message);
		return FALSE;
	}
	g_free(self->config_path);
	self->config_path = g_strdup(path);

	/* a typo must not silently fall back to a default */
	keys = g_key_file_get_keys(kf, AS_CONFIG_GROUP, NULL, NULL);
	for (guint i = 0; keys != NULL && keys[i] != NULL; i++) {
		if (!g_strv_contains(as_config_known_keys, keys[i])) {
			g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
				    "config %s: unknown key '%s' in [%s]", path, keys[i],
				    AS_CONFIG_GROUP);
			return FALSE;
		}
	}

	if (self->bind == NULL)
		self->bind = as_config_key_string(kf, "bind");
	if (self->port < 0 && !as_config_key_port(kf, path, "port", &self->port, error))
		return FALSE;
	if (self->quic_port < 0 &&
	    !as_config_key_port(kf, path, "quic-port", &self->quic_port, error))
		return FALSE;
	if (self->quic && !as_config_key_bool(kf, "quic", &self->quic, error))
		return FALSE;
	if (!self->https && !as_config_key_bool(kf, "https", &self->https, error))
		return FALSE;
	if (self->https_port < 0 &&
	    !as_config_key_port(kf, path, "https-port", &self->https_port, error))
		return FALSE;
	if (self->tls_cert == NULL) {
		tmp = as_config_key_string(kf, "tls-cert");
		self->tls_cert = as_config_expand_path(tmp);
		g_clear_pointer(&tmp, g_free);
	}
	if (self->tls_key == NULL) {
		tmp = as_config_key_string(kf, "tls-key");
		self->tls_key = as_config_expand_path(tmp);
		g_clear_pointer(&tmp, g_free);
	}
	if (self->save_to == NULL) {
		tmp = as_config_key_string(kf, "save-to");
		self->save_to = as_config_expand_path(tmp);
		g_clear_pointer(&tmp, g_free);
	}
	if (self->max_size == 0) {
		tmp = as_config_key_string(kf, "max-size");
		if (tmp != NULL && !as_config_parse_size(tmp, &self->max_size, error)) {
			g_prefix_error(error, "config %s: max-size: ", path);
			return FALSE;
		}
		g_clear_pointer(&tmp, g_free);
	}
	if (!self->overwrite && !as_config_key_bool(kf, "overwrite", &self->overwrite, error))
		return FALSE;
	if (self->auth && !as_config_key_bool(kf, "auth", &self->auth, error))
		return FALSE;
	if (!self->one_shot && !as_config_key_bool(kf, "one-shot", &self->one_shot, error))
		return FALSE;
	if (!self->verbose && !as_config_key_bool(kf, "verbose", &self->verbose, error))
		return FALSE;
	if (self->mdns && !as_config_key_bool(kf, "mdns", &self->mdns, error))
		return FALSE;
	if (self->listen && !as_config_key_bool(kf, "listen", &self->listen, error))
		return FALSE;
	if (self->idle_timeout_s < 0 &&
	    g_key_file_has_key(kf, AS_CONFIG_GROUP, "idle-timeout", NULL)) {
		gint idle_timeout_s =
			g_key_file_get_integer(kf, AS_CONFIG_GROUP, "idle-timeout", &error_local);
		if (error_local != NULL) {
			g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
				    "config %s: key 'idle-timeout': %s", path,
				    error_local->message);
			return FALSE;
		}
		if (!as_config_check_idle_timeout(idle_timeout_s, error)) {
			g_prefix_error(error, "config %s: ", path);
			return FALSE;
		}
		self->idle_timeout_s = idle_timeout_s;
	}
	if (self->auth_token_file == NULL) {
		tmp = as_config_key_string(kf, "auth-token-file");
		self->auth_token_file = as_config_expand_path(tmp);
		g_clear_pointer(&tmp, g_free);
	}
	if (self->legacy_secret_file == NULL) {
		tmp = as_config_key_string(kf, "legacy-secret-file");
		self->legacy_secret_file = as_config_expand_path(tmp);
		g_clear_pointer(&tmp, g_free);
	}
	if (self->token_backend == NULL)
		self->token_backend = as_config_key_string(kf, "token-backend");
	if (self->audit_log == NULL) {
		tmp = as_config_key_string(kf, "audit-log");
		self->audit_log = as_config_expand_path(tmp);
		g_clear_pointer(&tmp, g_free);
	}
	if (self->history_log == NULL) {
		tmp = as_config_key_string(kf, "history-log");
		self->history_log = as_config_expand_path(tmp);
		g_clear_pointer(&tmp, g_free);
	}
	return TRUE;
}

gboolean
as_config_parse_args(AsConfig *self, gint *argc, gchar ***argv, GError **error)
{
	AsConfigArgs a = {.port = -1,
			  .quic_port = -1,
			  .https_port = -1,
			  .idle_timeout_s = -1,
			  .ready_fd = -1};
	g_autoptr(GOptionContext) ctx = NULL;
	const GOptionEntry entries[] = {
		{"config", 'c', 0, G_OPTION_ARG_FILENAME, &a.config, "Read this config file",
		 "PATH"},
		{"bind", 0, 0, G_OPTION_ARG_STRING, &a.bind, "Address to listen on (0.0.0.0)",
		 "ADDR"},
		{"port", 'p', 0, G_OPTION_ARG_INT, &a.port, "HTTP port (7788, 0 = any free)",
		 "PORT"},
		{"quic-port", 0, 0, G_OPTION_ARG_INT, &a.quic_port,
		 "QUIC port (HTTP port + 1, 0 = any free)", "PORT"},
		{"http-only", 0, 0, G_OPTION_ARG_NONE, &a.http_only, "Do not receive over QUIC",
		 NULL},
		{"https", 0, 0, G_OPTION_ARG_NONE, &a.https,
		 "Also receive over HTTPS, with the certificate of --tls-cert", NULL},
		{"https-port", 0, 0, G_OPTION_ARG_INT, &a.https_port,
		 "HTTPS port (7790, 0 = any free)", "PORT"},
		{"tls-cert", 0, 0, G_OPTION_ARG_FILENAME, &a.tls_cert,
		 "TLS certificate (PEM) for QUIC and HTTPS; default: a generated one", "FILE"},
		{"tls-key", 0, 0, G_OPTION_ARG_FILENAME, &a.tls_key,
		 "Private key (PEM) of --tls-cert", "FILE"},
		{"save-to", 'd', 0, G_OPTION_ARG_FILENAME, &a.save_to, "Receive directory", "DIR"},
		{"max-size", 0, 0, G_OPTION_ARG_STRING, &a.max_size, "Largest accepted file",
		 "SIZE"},
		{"overwrite", 0, 0, G_OPTION_ARG_NONE, &a.overwrite, "Replace existing files",
		 NULL},
		{"no-auth", 0, 0, G_OPTION_ARG_NONE, &a.no_auth, "Accept uploads without a token",
		 NULL},
		{"auth-token-file", 0, 0, G_OPTION_ARG_FILENAME, &a.auth_token_file,
		 "Also accept the token in this file", "FILE"},
		{"legacy-secret-file", 0, 0, G_OPTION_ARG_FILENAME, &a.legacy_secret_file,
		 "Accept AeroSync 0.x signed tokens made with the secret in this file", "FILE"},
		{"token-backend", 0, 0, G_OPTION_ARG_STRING, &a.token_backend,
		 "Token store: auto, file or secret-service", "NAME"},
		{"audit-log", 0, 0, G_OPTION_ARG_FILENAME, &a.audit_log, "Write a JSONL audit log",
		 "PATH"},
		{"one-shot", 0, 0, G_OPTION_ARG_NONE, &a.one_shot, "Exit after one verified file",
		 NULL},
		{"verbose", 'v', 0, G_OPTION_ARG_NONE, &a.verbose, "Log more", NULL},
		{"session", 0, 0, G_OPTION_ARG_NONE, &a.session,
		 "Own org.aerosync on the session bus (default)", NULL},
		{"no-dbus", 0, 0, G_OPTION_ARG_NONE, &a.no_dbus, "Do not use D-Bus", NULL},
		{"no-mdns", 0, 0, G_OPTION_ARG_NONE, &a.no_mdns,
		 "Do not publish this receiver on the LAN (mDNS)", NULL},
		{"no-listen", 0, 0, G_OPTION_ARG_NONE, &a.no_listen,
		 "Open no HTTP port, serve D-Bus only", NULL},
		{"idle-timeout", 0, 0, G_OPTION_ARG_INT, &a.idle_timeout_s,
		 "With --no-listen, exit after this long with nothing to do (0 = never)",
		 "SECONDS"},
		{"ready-fd", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_INT, &a.ready_fd,
		 "Write 'port=H quic_port=Q https_port=S' to this fd when listening", "FD"},
		{NULL}};
	gboolean ret = FALSE;

	ctx = g_option_context_new(NULL);
	g_option_context_set_summary(
		ctx, "AeroSync daemon: receives files over HTTP, serves org.aerosync.");
	g_option_context_add_main_entries(ctx, entries, NULL);
	if (!g_option_context_parse(ctx, argc, argv, error))
		goto out;
	if (a.session && a.no_dbus) {
		g_set_error_literal(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
				    "--session and --no-dbus exclude each other");
		goto out;
	}
	if (a.port > 65535 || a.quic_port > 65535 || a.https_port > 65535 || a.https_port < -1) {
		g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT, "invalid port %d",
			    a.https_port < -1 ? a.https_port
					      : MAX(MAX(a.port, a.quic_port), a.https_port));
		goto out;
	}
	/* -1 is "not given", anything else out of range is a mistake */
	if (a.idle_timeout_s != -1 && !as_config_check_idle_timeout(a.idle_timeout_s, error)) {
		g_prefix_error(error, "--idle-timeout: ");
		goto out;
	}

	self->bind = g_steal_pointer(&a.bind);
	self->port = a.port;
	self->quic_port = a.quic_port;
	self->quic = !a.http_only;
	self->https = a.https;
	self->https_port = a.https_port;
	self->tls_cert = as_config_expand_path(a.tls_cert);
	self->tls_key = as_config_expand_path(a.tls_key);
	self->save_to = as_config_expand_path(a.save_to);
	if (a.max_size != NULL && !as_config_parse_size(a.max_size, &self->max_size, error)) {
		g_prefix_error(error, "--max-size: ");
		goto out;
	}
	self->overwrite = a.overwrite;
	self->auth = !a.no_auth;
	self->auth_token_file = as_config_expand_path(a.auth_token_file);
	self->legacy_secret_file = as_config_expand_path(a.legacy_secret_file);
	self->token_backend = g_steal_pointer(&a.token_backend);
	self->audit_log = as_config_expand_path(a.audit_log);
	self->one_shot = a.one_shot;
	self->verbose = a.verbose;
	self->bus = a.no_dbus ? AS_CONFIG_BUS_NONE : AS_CONFIG_BUS_SESSION;
	self->listen = !a.no_listen;
	self->mdns = !a.no_mdns;
	self->idle_timeout_s = a.idle_timeout_s;
	self->ready_fd = a.ready_fd;

	self->config_dir = g_build_filename(g_get_user_config_dir(), "aerosync", NULL);
	self->state_dir = g_build_filename(g_get_user_state_dir(), "aerosync", NULL);

	if (a.config != NULL) {
		if (!as_config_load_file(self, a.config, TRUE, error))
			goto out;
	} else {
		g_autofree gchar *path =
			g_build_filename(self->config_dir, AS_DEFAULT_CONFIG_NAME, NULL);
		if (!as_config_load_file(self, path, FALSE, error))
			goto out;
	}
	ret = TRUE;
out:
	g_free(a.config);
	g_free(a.bind);
	g_free(a.tls_cert);
	g_free(a.tls_key);
	g_free(a.save_to);
	g_free(a.max_size);
	g_free(a.auth_token_file);
	g_free(a.legacy_secret_file);
	g_free(a.token_backend);
	g_free(a.audit_log);
	return ret;
}

static gboolean
as_config_finalize_quic(AsConfig *self, GError **error)
{
	if ((self->tls_cert == NULL) != (self->tls_key == NULL)) {
		g_set_error_literal(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
				    "tls-cert and tls-key go together: give both or neither");
		return FALSE;
	}
#if !HAVE_QUIC
	if (self->quic && self->quic_port >= 0)
		g_warning("this aerosyncd was built without QUIC: quic-port is ignored");
	self->quic = FALSE;
#endif
	if (!self->listen)
		self->quic = FALSE;
	if (self->quic_port < 0) {
		/* 0.x's convention, which auto-negotiating senders rely on */
		if (self->port == 0)
			self->quic_port = 0;
		else if (self->port < 65535)
			self->quic_port = self->port + 1;
		else {
			g_set_error_literal(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
					    "port 65535 leaves no default QUIC port: give "
					    "quic-port (or --http-only)");
			return FALSE;
		}
	}
	return TRUE;
}

/* fill the defaults that nothing set */
gboolean
as_config_finalize(AsConfig *self, GError **error)
{
	if (self->bind == NULL)
		self->bind = g_strdup("0.0.0.0");
	if (self->port < 0)
		self->port = AS_DEFAULT_HTTP_PORT;
	if (!as_config_finalize_quic(self, error))
		return FALSE;
	if (!self->listen)
		self->https = FALSE;
	/* like QUIC: a receiver on an ephemeral port (tests) takes an ephemeral HTTPS port */
	if (self->https_port < 0)
		self->https_port = self->port == 0 ? 0 : AS_CONFIG_DEFAULT_HTTPS_PORT;
	if (self->max_size == 0)
		self->max_size = AS_CONFIG_DEFAULT_MAX_SIZE;
	if (self->token_backend == NULL)
		self->token_backend = g_strdup("auto");
	if (!g_strv_contains((const gchar *[]){"auto", "file", "secret-service", NULL},
			     self->token_backend)) {
		g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
			    "token-backend must be auto, file or secret-service, not '%s'",
			    self->token_backend);
		return FALSE;
	}
	if (self->save_to == NULL) {
		const gchar *dl = g_get_user_special_dir(G_USER_DIRECTORY_DOWNLOAD);
		if (dl == NULL)
			dl = g_get_home_dir();
		self->save_to = g_build_filename(dl, "AeroSync", NULL);
	}
	if (self->history_log == NULL)
		self->history_log = g_build_filename(self->state_dir, "history.jsonl", NULL);
	if (self->idle_timeout_s < 0)
		self->idle_timeout_s = 0;
	if (!self->listen && self->bus == AS_CONFIG_BUS_NONE) {
		g_set_error_literal(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
				    "listen=false (--no-listen) and --no-dbus: nothing to serve");
		return FALSE;
	}
	if (!self->listen && self->one_shot) {
		g_set_error_literal(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
				    "one-shot receives over HTTP, not with listen=false");
		return FALSE;
	}
	/* a receiver must stay reachable: idling out would turn the next sender away */
	if (self->listen && self->idle_timeout_s > 0) {
		g_message("idle-timeout only applies with listen=false (--no-listen); ignored");
		self->idle_timeout_s = 0;
	}
	if (self->listen && self->bus == AS_CONFIG_BUS_NONE && self->port == 0 &&
	    self->ready_fd < 0)
		g_warning("--port 0 without D-Bus: nobody can learn the port");
	return TRUE;
}
