/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "AsCtlStatus"

#include "config.h"

#include <glib/gi18n.h>
#include <libsoup/soup.h>
#include <string.h>

#include "as-ctl.h"
#include "as-known-peers.h"
#include "as-sha256.h"
#include "as-tls-identity.h"

/* 'status HOST': /health is small, a bigger reply is not an AeroSync receiver's */
#define AS_CTL_HEALTH_REPLY_MAX (64 * 1024)
#define AS_CTL_HEALTH_TIMEOUT_S 5

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
	guint16 quic_port = 0;
	guint16 https_port = 0;
	const gchar *cert_sha256 = NULL;
	g_autofree gchar *quic_str = NULL;
	g_autofree gchar *https_str = NULL;
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
	g_variant_lookup(status, "quic_port", "q", &quic_port);
	g_variant_lookup(status, "https_port", "q", &https_port);
	/* the fingerprint senders pin, whole: it is meant to be compared or copied */
	if (!g_variant_lookup(status, "cert_sha256", "&s", &cert_sha256) || *cert_sha256 == '\0')
		cert_sha256 = NULL;
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
	if (quic_port != 0)
		quic_str = g_strdup_printf("%u", quic_port);
	else
		/* TRANSLATORS: 'status' when the QUIC receiver is off */
		quic_str = g_strdup(_("off"));
	if (https_port != 0)
		https_str = g_strdup_printf("%u", https_port);
	else
		/* TRANSLATORS: 'status' when the HTTPS receiver is off */
		https_str = g_strdup(_("off"));
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
			/* TRANSLATORS: label in 'status': the UDP port of the QUIC receiver */
			_("QUIC port"),
			/* TRANSLATORS: label in 'status': the TCP port of the HTTPS receiver */
			_("HTTPS port"),
			/* TRANSLATORS: label in 'status': the SHA-256 fingerprint of the QUIC
			 * certificate, which senders pin */
			_("Certificate SHA-256"),
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
			version,       state,
			port_str,      quic_str,
			https_str,     cert_sha256 != NULL ? cert_sha256 : off_text,
			protocols_str, receive_directory,
			auth_text,     token_backend,
			received_str,  active_str,
			disk_str,      NULL,
		};
		as_ctl_print_fields(self, labels, values);
	}
}

/* 'status HOST[:PORT]': GET /health of a receiver over HTTP, no D-Bus */

const GOptionEntry as_ctl_status_options[] = {
	AS_CTL_OPTION_VALUE("pin",
			    '\0',
			    /* TRANSLATORS: --pin option of 'status' */
			    N_("With https://, trust only the certificate with this SHA-256"),
			    /* TRANSLATORS: placeholder for the value of --pin */
			    N_("SHA256")),
	/* TRANSLATORS: --insecure option of 'status' */
	AS_CTL_OPTION_FLAG("insecure", '\0', N_("With https://, do not check the certificate")),
	{NULL},
};

/*
 * How 'status https://…' trusts a certificate, in the order 'send' uses: the --pin, then
 * --insecure, then the system's CAs, then the sending daemon's known_peers. It only reads
 * known_peers: a first contact is recorded by a send, not by a look.
 */
typedef struct {
	gchar *pin; /* normalised, nullable */
	gboolean insecure;
	gchar *key;	     /* the known_peers key of the host and port */
	gchar *known_path;   /* the daemon's known_peers file */
	gchar *known_sha256; /* what it records for key, nullable */
	guint known_line;    /* where */
	gchar *seen_sha256;  /* what the handshake showed, once it did */
} AsCtlStatusTrust;

static void
as_ctl_status_trust_clear(AsCtlStatusTrust *trust)
{
	g_free(trust->pin);
	g_free(trust->key);
	g_free(trust->known_path);
	g_free(trust->known_sha256);
	g_free(trust->seen_sha256);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(AsCtlStatusTrust, as_ctl_status_trust_clear)

/* only called when the CAs did not vouch for the certificate */
static gboolean
as_ctl_status_accept_certificate_cb(SoupMessage *msg,
				    GTlsCertificate *certificate,
				    GTlsCertificateFlags errors,
				    gpointer user_data)
{
	AsCtlStatusTrust *trust = user_data;

	g_free(trust->seen_sha256);
	trust->seen_sha256 = as_tls_certificate_dup_sha256(certificate);
	if (trust->seen_sha256 == NULL)
		return FALSE;
	if (trust->pin != NULL)
		return g_strcmp0(trust->pin, trust->seen_sha256) == 0;
	if (trust->insecure)
		return TRUE;
	return trust->known_sha256 != NULL &&
	       g_ascii_strcasecmp(trust->known_sha256, trust->seen_sha256) == 0;
}

/* why the certificate was refused, as one line that says what to do */
static void
as_ctl_status_trust_refused(AsCtlStatusTrust *trust, const gchar *display, GError **error)
{
	if (trust->pin != NULL) {
		g_set_error(error, AS_CTL_ERROR, AS_CTL_EXIT_FAILURE,
			    /* TRANSLATORS: %s are HOST:PORT and two SHA-256 fingerprints */
			    _("refusing %s: its certificate has SHA-256 %s, not the pinned %s"),
			    display, trust->seen_sha256, trust->pin);
	} else if (trust->known_sha256 != NULL) {
		g_autofree gchar *message = as_known_peers_changed_message(
			trust->known_path, trust->known_line, trust->key, trust->known_sha256,
			trust->seen_sha256);
		g_set_error_literal(error, AS_CTL_ERROR, AS_CTL_EXIT_FAILURE, message);
	} else {
		g_set_error(error, AS_CTL_ERROR, AS_CTL_EXIT_FAILURE,
			    /* TRANSLATORS: %s are HOST:PORT and a SHA-256 fingerprint (twice);
			     * keep the options untranslated */
			    _("refusing %s: no trusted CA signed its certificate and it is not "
			      "in known_peers; if its SHA-256 is %s (the receiver's 'aerosyncctl "
			      "status' shows it), run again with --pin %s"),
			    display, trust->seen_sha256, trust->seen_sha256);
	}
}

/* the /health URL of HOST[:PORT] or of an http:// or https:// URL */
static gchar *
as_ctl_status_health_url(const gchar *address, gchar **display, GError **error)
{
	g_autoptr(GUri) uri = NULL;
	g_autofree gchar *base = NULL;
	gint port;

	if (g_str_has_prefix(address, "http://") || g_str_has_prefix(address, "https://"))
		base = g_strdup(address);
	else if (strstr(address, "://") == NULL && address[0] != '\0')
		base = g_strdup_printf("http://%s", address);
	if (base != NULL)
		uri = g_uri_parse(base, G_URI_FLAGS_NONE, NULL);
	if (uri == NULL || g_uri_get_host(uri) == NULL || g_uri_get_host(uri)[0] == '\0') {
		g_autofree gchar *safe = as_ctl_sanitize_text(address);
		g_set_error(error, AS_CTL_ERROR, AS_CTL_EXIT_USAGE,
			    /* TRANSLATORS: %s is what the user typed */
			    _("invalid address '%s': give HOST, HOST:PORT or an http:// or "
			      "https:// URL (see 'aerosyncctl help status')"),
			    safe);
		return NULL;
	}
	port = g_uri_get_port(uri);
	if (port <= 0 && strstr(address, "://") == NULL)
		port = AS_CTL_DEFAULT_PORT;
	/* https:// alone is an aerosyncd's HTTPS port, as for send */
	if (port <= 0)
		port = g_str_has_prefix(address, "https://") ? 7790 : 80;
	*display = g_strdup_printf(strchr(g_uri_get_host(uri), ':') != NULL ? "[%s]:%d" : "%s:%d",
				   g_uri_get_host(uri), port);
	return g_uri_join(G_URI_FLAGS_NONE, g_uri_get_scheme(uri), NULL, g_uri_get_host(uri), port,
			  "/health", NULL, NULL);
}

/* reads at most AS_CTL_HEALTH_REPLY_MAX bytes of the body */
static GBytes *
as_ctl_status_read_reply(GInputStream *stream, GError **error)
{
	g_autofree guint8 *buf = g_malloc(AS_CTL_HEALTH_REPLY_MAX + 1);
	gsize n_read = 0;

	if (!g_input_stream_read_all(stream, buf, AS_CTL_HEALTH_REPLY_MAX + 1, &n_read, NULL,
				     error))
		return NULL;
	if (n_read > AS_CTL_HEALTH_REPLY_MAX) {
		g_set_error(error, AS_CTL_ERROR, AS_CTL_EXIT_FAILURE,
			    /* TRANSLATORS: %d is a number of bytes */
			    _("the /health reply is larger than %d bytes"),
			    AS_CTL_HEALTH_REPLY_MAX);
		return NULL;
	}
	return g_bytes_new(buf, n_read);
}

static JsonObject *
as_ctl_status_fetch_health(const gchar *url,
			   const gchar *display,
			   AsCtlStatusTrust *trust,
			   GError **error)
{
	g_autoptr(SoupSession) session = NULL;
	g_autoptr(SoupMessage) msg = soup_message_new(SOUP_METHOD_GET, url);
	g_autoptr(GInputStream) stream = NULL;
	g_autoptr(GBytes) body = NULL;
	g_autoptr(JsonParser) parser = json_parser_new();
	g_autoptr(GError) error_local = NULL;
	g_autofree gchar *user_agent = g_strdup_printf("aerosyncctl/%s", PACKAGE_VERSION);
	const gchar *marker;
	JsonNode *root;
	guint status;

	if (msg == NULL) {
		g_set_error(error, AS_CTL_ERROR, AS_CTL_EXIT_USAGE,
			    /* TRANSLATORS: %s is a URL */
			    _("invalid address '%s'"), url);
		return NULL;
	}
	session = soup_session_new_with_options("timeout", AS_CTL_HEALTH_TIMEOUT_S, "user-agent",
						user_agent, NULL);
	g_signal_connect(msg, "accept-certificate", G_CALLBACK(as_ctl_status_accept_certificate_cb),
			 trust);
	stream = soup_session_send(session, msg, NULL, &error_local);
	if (stream == NULL && trust->seen_sha256 != NULL &&
	    g_error_matches(error_local, G_TLS_ERROR, G_TLS_ERROR_BAD_CERTIFICATE)) {
		as_ctl_status_trust_refused(trust, display, error);
		return NULL;
	}
	/* a pin holds even against a certificate the CAs vouch for */
	if (stream != NULL && trust->pin != NULL &&
	    soup_message_get_tls_peer_certificate(msg) != NULL) {
		g_free(trust->seen_sha256);
		trust->seen_sha256 =
			as_tls_certificate_dup_sha256(soup_message_get_tls_peer_certificate(msg));
		if (g_strcmp0(trust->seen_sha256, trust->pin) != 0) {
			as_ctl_status_trust_refused(trust, display, error);
			return NULL;
		}
	}
	if (stream == NULL) {
		/* a certificate problem means someone answered: that is not "unreachable" */
		gboolean tls = error_local->domain == G_TLS_ERROR;
		g_set_error(error, AS_CTL_ERROR,
			    tls ? AS_CTL_EXIT_FAILURE : AS_CTL_EXIT_PEER_UNREACHABLE,
			    /* TRANSLATORS: first %s is HOST:PORT, the second why */
			    _("cannot reach %s: %s"), display, error_local->message);
		return NULL;
	}
	status = soup_message_get_status(msg);
	marker = soup_message_headers_get_one(soup_message_get_response_headers(msg), "X-AeroSync");
	if (marker == NULL || g_ascii_strcasecmp(marker, "true") != 0) {
		g_set_error(error, AS_CTL_ERROR, AS_CTL_EXIT_FAILURE,
			    /* TRANSLATORS: %s is HOST:PORT, %u an HTTP status; keep X-AeroSync */
			    _("%s answers HTTP (status %u) but is not an AeroSync receiver: its "
			      "/health reply has no X-AeroSync header"),
			    display, status);
		return NULL;
	}
	if (status != SOUP_STATUS_OK) {
		g_set_error(error, AS_CTL_ERROR, AS_CTL_EXIT_FAILURE,
			    /* TRANSLATORS: %s is HOST:PORT, %u an HTTP status such as 500 */
			    _("the receiver at %s answered /health with HTTP status %u"), display,
			    status);
		return NULL;
	}
	body = as_ctl_status_read_reply(stream, &error_local);
	if (body == NULL) {
		g_set_error(error, AS_CTL_ERROR, AS_CTL_EXIT_FAILURE,
			    /* TRANSLATORS: first %s is HOST:PORT, the second why */
			    _("cannot read the /health reply of %s: %s"), display,
			    error_local->message);
		return NULL;
	}
	if (!json_parser_load_from_data(parser, g_bytes_get_data(body, NULL),
					(gssize)g_bytes_get_size(body), &error_local) ||
	    (root = json_parser_get_root(parser)) == NULL || !JSON_NODE_HOLDS_OBJECT(root)) {
		g_set_error(error, AS_CTL_ERROR, AS_CTL_EXIT_FAILURE,
			    /* TRANSLATORS: %s is HOST:PORT */
			    _("the /health reply of %s is not a JSON object"), display);
		return NULL;
	}
	return json_object_ref(json_node_get_object(root));
}

static gchar *
as_ctl_status_json_string(JsonObject *health, const gchar *name, const gchar *fallback)
{
	JsonNode *node = json_object_get_member(health, name);
	if (node == NULL || json_node_get_value_type(node) != G_TYPE_STRING)
		return g_strdup(fallback);
	return as_ctl_sanitize_text(json_node_get_string(node));
}

static gboolean
as_ctl_status_json_uint(JsonObject *health, const gchar *name, guint64 *value)
{
	JsonNode *node = json_object_get_member(health, name);
	if (node == NULL || json_node_get_value_type(node) != G_TYPE_INT64 ||
	    json_node_get_int(node) < 0)
		return FALSE;
	*value = (guint64)json_node_get_int(node);
	return TRUE;
}

static void
as_ctl_status_print_remote(AsCtl *self, JsonObject *health, const gchar *display)
{
	/* TRANSLATORS: shown by 'status' when a value is missing from the daemon's reply */
	const gchar *unknown = _("unknown");
	g_autofree gchar *version = as_ctl_status_json_string(health, "version", unknown);
	g_autofree gchar *state = as_ctl_status_json_string(health, "status", unknown);
	g_autofree gchar *protocols = NULL;
	g_autofree gchar *auth = NULL;
	g_autofree gchar *received = NULL;
	g_autofree gchar *active = NULL;
	g_autofree gchar *disk = NULL;
	g_autofree gchar *quic = NULL;
	g_autofree gchar *https = NULL;
	g_autofree gchar *cert = NULL;
	JsonNode *node;
	guint64 value = 0;
	guint64 free_bytes = 0;
	guint64 total_bytes = 0;

	node = json_object_get_member(health, "protocols");
	if (node != NULL && JSON_NODE_HOLDS_ARRAY(node)) {
		JsonArray *array = json_node_get_array(node);
		g_autoptr(GString) str = g_string_new(NULL);
		for (guint i = 0; i < json_array_get_length(array); i++) {
			JsonNode *element = json_array_get_element(array, i);
			g_autofree gchar *name = NULL;
			if (json_node_get_value_type(element) != G_TYPE_STRING)
				continue;
			name = as_ctl_sanitize_text(json_node_get_string(element));
			if (str->len > 0)
				g_string_append(str, ", ");
			g_string_append(str, name);
		}
		protocols = g_strdup(str->str);
	}
	if (protocols == NULL || protocols[0] == '\0') {
		g_free(protocols);
		protocols = g_strdup(unknown);
	}
	node = json_object_get_member(health, "auth_required");
	if (node != NULL && json_node_get_value_type(node) == G_TYPE_BOOLEAN)
		/* TRANSLATORS: 'status' when senders need a token, or not */
		auth = g_strdup(json_node_get_boolean(node) ? _("on") : _("off"));
	else
		auth = g_strdup(unknown);
	/* a receiver without QUIC, or a 0.x one, has neither key */
	if (as_ctl_status_json_uint(health, "quic_port", &value) && value > 0)
		quic = g_strdup_printf("%" G_GUINT64_FORMAT, value);
	else
		quic = g_strdup(_("off"));
	/* only a receiver running with --https has it */
	if (as_ctl_status_json_uint(health, "https_port", &value) && value > 0)
		https = g_strdup_printf("%" G_GUINT64_FORMAT, value);
	else
		/* TRANSLATORS: 'status' when the HTTPS receiver is off */
		https = g_strdup(_("off"));
	cert = as_ctl_status_json_string(health, "cert_sha256", _("off"));
	if (as_ctl_status_json_uint(health, "received_files", &value))
		received = g_strdup_printf("%" G_GUINT64_FORMAT, value);
	else
		received = g_strdup(unknown);
	if (as_ctl_status_json_uint(health, "active_transfers", &value))
		active = g_strdup_printf("%" G_GUINT64_FORMAT, value);
	else
		active = g_strdup(unknown);
	if (as_ctl_status_json_uint(health, "free_bytes", &free_bytes) &&
	    as_ctl_status_json_uint(health, "total_bytes", &total_bytes) && total_bytes > 0) {
		g_autofree gchar *free_str = as_ctl_format_size(free_bytes);
		g_autofree gchar *total_str = as_ctl_format_size(total_bytes);
		/* TRANSLATORS: disk space in 'status', e.g. "12.3 GB free of 250 GB" */
		disk = g_strdup_printf(_("%s free of %s"), free_str, total_str);
	} else {
		disk = g_strdup(unknown);
	}

	{
		const gchar *labels[] = {
			/* TRANSLATORS: label in 'status HOST': the receiver's HOST:PORT */
			_("Address"),
			/* TRANSLATORS: label in 'status' */
			_("Version"),
			/* TRANSLATORS: label in 'status': "ok" or another health word */
			_("State"),
			/* TRANSLATORS: label in 'status' */
			_("Protocols"),
			/* TRANSLATORS: label in 'status': the UDP port of the QUIC receiver */
			_("QUIC port"),
			/* TRANSLATORS: label in 'status': the TCP port of the HTTPS receiver */
			_("HTTPS port"),
			/* TRANSLATORS: label in 'status': the SHA-256 fingerprint of the QUIC
			 * certificate, which senders pin */
			_("Certificate SHA-256"),
			/* TRANSLATORS: label in 'status': whether senders need a token */
			_("Authentication"),
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
			display, version, state,    protocols, quic, https,
			cert,	 auth,	  received, active,    disk, NULL,
		};
		as_ctl_print_fields(self, labels, values);
	}
}

static gboolean
as_ctl_status_remote(AsCtl *self, const gchar *address, GError **error)
{
	g_autofree gchar *display = NULL;
	g_autofree gchar *url = as_ctl_status_health_url(address, &display, error);
	g_autoptr(JsonObject) health = NULL;
	g_auto(AsCtlStatusTrust) trust = {0};
	const gchar *pin = as_ctl_get_option(self, "pin");

	if (url == NULL)
		return FALSE;
	trust.insecure = as_ctl_has_option(self, "insecure");
	if (pin != NULL && trust.insecure) {
		g_set_error_literal(error, AS_CTL_ERROR, AS_CTL_EXIT_USAGE,
				    /* TRANSLATORS: keep the options untranslated */
				    _("--pin and --insecure exclude each other"));
		return FALSE;
	}
	if (pin != NULL) {
		trust.pin = as_sha256_hex_normalize(pin);
		if (trust.pin == NULL) {
			g_set_error_literal(error, AS_CTL_ERROR, AS_CTL_EXIT_USAGE,
					    /* TRANSLATORS: keep the option untranslated */
					    _("invalid --pin: give the certificate's SHA-256 as 64 "
					      "hex digits"));
			return FALSE;
		}
	}
	if (g_str_has_prefix(url, "https://")) {
		g_autoptr(GUri) uri = g_uri_parse(url, G_URI_FLAGS_NONE, NULL);
		g_autoptr(AsKnownPeers) known = NULL;
		/* the file the local daemon records first contacts in when it sends */
		trust.known_path = g_build_filename(g_get_user_state_dir(), "aerosync",
						    AS_KNOWN_PEERS_FILENAME, NULL);
		trust.key =
			as_known_peers_make_key(g_uri_get_host(uri), (guint16)g_uri_get_port(uri));
		known = as_known_peers_load(trust.known_path, NULL);
		if (known != NULL) {
			trust.known_sha256 = g_strdup(
				as_known_peers_lookup(known, trust.key, &trust.known_line));
		}
	}
	g_debug("GET %s", url);
	health = as_ctl_status_fetch_health(url, display, &trust, error);
	if (health == NULL)
		return FALSE;
	if (self->json) {
		g_autoptr(JsonNode) root = json_node_new(JSON_NODE_OBJECT);
		g_autoptr(JsonObject) copy = json_object_new();
		GList *members = json_object_get_members(health);

		/* the reply as it came, plus where it came from */
		json_object_set_string_member(copy, "address", display);
		for (GList *l = members; l != NULL; l = l->next) {
			json_object_set_member(
				copy, l->data,
				json_node_copy(json_object_get_member(health, l->data)));
		}
		g_list_free(members);
		json_node_set_object(root, copy);
		as_ctl_print_json(self, root);
		return TRUE;
	}
	as_ctl_status_print_remote(self, health, display);
	return TRUE;
}

gboolean
as_ctl_status(AsCtl *self, gchar **values, GError **error)
{
	AsDbusManager1 *manager = NULL;
	g_autoptr(GVariant) status = NULL;
	g_autoptr(GVariant) token_backend = NULL;
	g_autoptr(GError) error_local = NULL;

	if (values[0] != NULL)
		return as_ctl_status_remote(self, values[0], error);
	manager = as_ctl_get_manager(self, error);
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
