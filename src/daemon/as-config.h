/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define AS_CONFIG_GROUP		    "daemon"
#define AS_CONFIG_DEFAULT_MAX_SIZE  (100ull * 1024 * 1024 * 1024) /* 100 GiB, as 0.x */
#define AS_CONFIG_STAGING_MAX_AGE_S (7 * 24 * 3600)
/* longest accepted idle-timeout: beyond a day an idle exit saves nothing worth having */
#define AS_CONFIG_IDLE_TIMEOUT_MAX_S (24 * 3600)
/* the HTTPS port of 0.x */
#define AS_CONFIG_DEFAULT_HTTPS_PORT 7790

typedef enum {
	AS_CONFIG_BUS_SESSION,
	AS_CONFIG_BUS_NONE,
} AsConfigBus;

/* everything aerosyncd can be told; file keys are the long option names in [daemon] */
typedef struct {
	gchar *config_path; /* the file read, or NULL */
	gchar *bind;	    /* "0.0.0.0", "::", "127.0.0.1" */
	gint port;	    /* 0 = ephemeral */
	gint quic_port;	    /* 0 = ephemeral; default: HTTP port + 1 */
	gboolean quic;	    /* FALSE with --http-only or a build without ngtcp2 */
	gboolean https;	    /* --https: the same routes over TLS, off by default */
	gint https_port;    /* 0 = ephemeral; default 7790, or ephemeral with port 0 */
	gchar *tls_cert;    /* PEM; with tls_key, else a generated identity */
	gchar *tls_key;
	gchar *save_to;		   /* absolute */
	guint64 max_size;	   /* bytes per file */
	gboolean overwrite;	   /* else rename on collision: name_1.ext */
	gboolean auth;		   /* FALSE with --no-auth */
	gchar *auth_token_file;	   /* one extra accepted token, read from a file */
	gchar *legacy_secret_file; /* 0.x signed tokens accepted when set */
	gchar *token_backend;	   /* "auto" | "file" | "secret-service" */
	gchar *audit_log;	   /* JSONL path or NULL */
	gchar *history_log;	   /* JSONL path */
	gboolean one_shot;
	gboolean verbose;
	AsConfigBus bus;
	gboolean listen;     /* FALSE with --no-listen: no HTTP port, D-Bus only */
	gboolean mdns;	     /* FALSE with --no-mdns: not published with Avahi */
	gint idle_timeout_s; /* exit after this long idle when not listening; 0 = never */
	gint ready_fd; /* "port=H quic_port=Q https_port=S\n" when ready (0: off); -1 = none */
	gchar *config_dir;
	gchar *state_dir;
} AsConfig;

AsConfig *as_config_new(void);
void as_config_free(AsConfig *self);
gboolean as_config_parse_args(AsConfig *self, gint *argc, gchar ***argv, GError **error);
gboolean
as_config_load_file(AsConfig *self, const gchar *path, gboolean must_exist, GError **error);
gboolean as_config_finalize(AsConfig *self, GError **error);
gboolean as_config_parse_size(const gchar *text, guint64 *bytes, GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(AsConfig, as_config_free)

G_END_DECLS
