/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "AsPeerTrust"

#include "config.h"

#include <string.h>

#include "as-error.h"
#include "as-known-peers.h"
#include "as-peer-trust.h"
#include "as-sha256.h"
#include "as-tls-identity.h"

struct _AsPeerTrust {
	GObject parent_instance;
	gchar *host;	     /* owned: the name the certificate must be for (CA verification) */
	guint16 port;	     /* with host, the identity checked */
	gchar *key;	     /* owned: "host:port", the peer's key in known_peers and messages */
	gchar *pin;	     /* owned, nullable: explicit, known_peers is not consulted */
	gboolean insecure;   /* only when asked for */
	gchar *expected;     /* owned, nullable: what the receiver announced (mDNS, /health) */
	gchar *known_peers;  /* owned, nullable: path */
	gboolean allow_ca;   /* HTTPS: a CA-verified certificate needs no record */
	gchar *known_sha256; /* owned, nullable: what known_peers records, once looked up */
	guint known_line;
	gchar *accepted; /* owned, nullable: the certificate accepted (pinned or recorded) */
	AsPeerTrustVerdict verdict; /* of the first acceptance, or the last refusal */
	GError *last_error;	    /* owned, nullable: the last refusal */
	gboolean said_insecure;	    /* the "not checked" line is logged once */
	gboolean said_refusal;	    /* and a refusal is warned about once */
};

G_DEFINE_TYPE(AsPeerTrust, as_peer_trust, G_TYPE_OBJECT)

const gchar *
as_peer_trust_verdict_to_string(AsPeerTrustVerdict verdict)
{
	switch (verdict) {
	case AS_PEER_TRUST_VERDICT_PINNED:
		return "pinned";
	case AS_PEER_TRUST_VERDICT_INSECURE:
		return "not checked (insecure)";
	case AS_PEER_TRUST_VERDICT_CA:
		return "verified by a trusted CA";
	case AS_PEER_TRUST_VERDICT_KNOWN:
		return "known (known_peers)";
	case AS_PEER_TRUST_VERDICT_RECORDED:
		return "trusted on first use (recorded in known_peers)";
	default:
		return "refused";
	}
}

/**
 * as_peer_trust_new:
 * @host: the receiver's host name or address, as the sender reaches it
 * @port: the port of the protocol that presents the certificate
 *
 * Returns: (transfer full): the trust decision for one receiver: nothing is accepted until a
 *   pin, Insecure, CA verification or a known_peers file allows it
 **/
AsPeerTrust *
as_peer_trust_new(const gchar *host, guint16 port)
{
	AsPeerTrust *self;

	g_return_val_if_fail(host != NULL, NULL);

	self = g_object_new(AS_TYPE_PEER_TRUST, NULL);
	self->key = as_known_peers_make_key(host, port);
	/* the identity a CA-signed certificate must name: without brackets */
	if (host[0] == '[' && strlen(host) > 2 && host[strlen(host) - 1] == ']')
		self->host = g_strndup(host + 1, strlen(host) - 2);
	else
		self->host = g_strdup(host);
	self->port = port;
	return self;
}

/* "host:port" as known_peers and the messages write it */
const gchar *
as_peer_trust_get_key(AsPeerTrust *self)
{
	g_return_val_if_fail(AS_IS_PEER_TRUST(self), NULL);
	return self->key;
}

/**
 * as_peer_trust_set_pin:
 * @sha256: (nullable): the SHA-256 the certificate must have (hex, colons allowed)
 **/
void
as_peer_trust_set_pin(AsPeerTrust *self, const gchar *sha256)
{
	g_return_if_fail(AS_IS_PEER_TRUST(self));
	g_free(self->pin);
	self->pin = as_sha256_hex_normalize(sha256);
}

const gchar *
as_peer_trust_get_pin(AsPeerTrust *self)
{
	g_return_val_if_fail(AS_IS_PEER_TRUST(self), NULL);
	return self->pin;
}

void
as_peer_trust_set_insecure(AsPeerTrust *self, gboolean insecure)
{
	g_return_if_fail(AS_IS_PEER_TRUST(self));
	self->insecure = insecure;
}

gboolean
as_peer_trust_get_insecure(AsPeerTrust *self)
{
	g_return_val_if_fail(AS_IS_PEER_TRUST(self), FALSE);
	return self->insecure;
}

/**
 * as_peer_trust_set_expected:
 * @sha256: (nullable): what the receiver announced: a peer not in known_peers yet must present
 *   it to be recorded
 **/
void
as_peer_trust_set_expected(AsPeerTrust *self, const gchar *sha256)
{
	g_return_if_fail(AS_IS_PEER_TRUST(self));
	g_free(self->expected);
	self->expected = as_sha256_hex_normalize(sha256);
}

/**
 * as_peer_trust_set_known_peers:
 * @path: (nullable): the known_peers file for trust on first use
 **/
void
as_peer_trust_set_known_peers(AsPeerTrust *self, const gchar *path)
{
	g_return_if_fail(AS_IS_PEER_TRUST(self));
	g_free(self->known_peers);
	self->known_peers = g_strdup(path);
}

/* HTTPS: a certificate a CA trusted by this system signed for the host is accepted as it is */
void
as_peer_trust_set_allow_ca(AsPeerTrust *self, gboolean allow_ca)
{
	g_return_if_fail(AS_IS_PEER_TRUST(self));
	self->allow_ca = allow_ca;
}

/* looks the peer up in known_peers, keeping what it records for the messages */
static gboolean
as_peer_trust_lookup(AsPeerTrust *self, AsKnownPeers **peers_out, GError **error)
{
	g_autoptr(AsKnownPeers) peers = as_known_peers_load(self->known_peers, error);
	const gchar *known;

	if (peers == NULL)
		return FALSE;
	g_clear_pointer(&self->known_sha256, g_free);
	self->known_line = 0;
	known = as_known_peers_lookup(peers, self->key, &self->known_line);
	self->known_sha256 = g_strdup(known);
	if (peers_out != NULL)
		*peers_out = g_steal_pointer(&peers);
	return TRUE;
}

/**
 * as_peer_trust_prepare:
 * @self: a #AsPeerTrust
 * @handshake_sha256: (out) (transfer full) (nullable): the fingerprint a handshake that pins
 *   (QUIC) must see, or %NULL when it should only look and leave the decision to
 *   as_peer_trust_check()
 * @error: (nullable): optional return location for an error
 *
 * Before connecting: the pin, else (unless Insecure) what known_peers records for the peer,
 * else what it announced.
 *
 * Returns: %FALSE if known_peers cannot be read
 **/
gboolean
as_peer_trust_prepare(AsPeerTrust *self, gchar **handshake_sha256, GError **error)
{
	g_return_val_if_fail(AS_IS_PEER_TRUST(self), FALSE);

	*handshake_sha256 = NULL;
	if (self->pin != NULL) {
		*handshake_sha256 = g_strdup(self->pin);
		return TRUE;
	}
	if (self->insecure)
		return TRUE;
	if (self->accepted != NULL) {
		*handshake_sha256 = g_strdup(self->accepted);
		return TRUE;
	}
	if (self->known_peers != NULL) {
		if (!as_peer_trust_lookup(self, NULL, error))
			return FALSE;
		if (self->known_sha256 != NULL) {
			*handshake_sha256 = g_strdup(self->known_sha256);
			return TRUE;
		}
	}
	*handshake_sha256 = g_strdup(self->expected);
	return TRUE;
}

/**
 * as_peer_trust_refusal:
 * @self: a #AsPeerTrust
 * @seen_sha256: (nullable): the certificate the peer showed, if known
 *
 * The error for a certificate that is not the one as_peer_trust_prepare() asked the handshake
 * for: the loud known_peers message when the peer's certificate changed.
 *
 * Returns: (transfer full): an %AS_ERROR_PERMISSION_DENIED error
 **/
GError *
as_peer_trust_refusal(AsPeerTrust *self, const gchar *seen_sha256)
{
	const gchar *seen = seen_sha256 != NULL ? seen_sha256 : "(unknown)";

	g_return_val_if_fail(AS_IS_PEER_TRUST(self), NULL);

	if (self->pin != NULL)
		return g_error_new(
			AS_ERROR, AS_ERROR_PERMISSION_DENIED,
			"REFUSED: the certificate of %s has SHA-256 %s, but it is pinned "
			"to %s (--pin); nothing was sent",
			self->key, seen, self->pin);
	if (self->known_sha256 != NULL || self->accepted != NULL) {
		g_autofree gchar *message = as_known_peers_changed_message(
			self->known_peers != NULL ? self->known_peers : AS_KNOWN_PEERS_FILENAME,
			self->known_line, self->key,
			self->known_sha256 != NULL ? self->known_sha256 : self->accepted,
			seen_sha256);
		return g_error_new_literal(AS_ERROR, AS_ERROR_PERMISSION_DENIED, message);
	}
	if (self->expected != NULL)
		return g_error_new(AS_ERROR, AS_ERROR_PERMISSION_DENIED,
				   "REFUSED: the certificate of %s has SHA-256 %s, not the %s it "
				   "announced; nothing was sent",
				   self->key, seen, self->expected);
	return g_error_new(AS_ERROR, AS_ERROR_PERMISSION_DENIED,
			   "REFUSED: the certificate of %s (SHA-256 %s) cannot be checked; send "
			   "with --pin SHA256",
			   self->key, seen);
}

static AsPeerTrustVerdict
as_peer_trust_refuse(AsPeerTrust *self, GError *refusal, GError **error)
{
	if (!self->said_refusal && g_error_matches(refusal, AS_ERROR, AS_ERROR_PERMISSION_DENIED)) {
		g_warning("%s", refusal->message);
		self->said_refusal = TRUE;
	}
	g_clear_error(&self->last_error);
	self->last_error = g_error_copy(refusal);
	self->verdict = AS_PEER_TRUST_VERDICT_REFUSED;
	g_propagate_error(error, refusal);
	return AS_PEER_TRUST_VERDICT_REFUSED;
}

static AsPeerTrustVerdict
as_peer_trust_accept(AsPeerTrust *self, const gchar *seen, AsPeerTrustVerdict verdict)
{
	/* a CA-verified or unchecked certificate is judged again on every connection */
	if (verdict != AS_PEER_TRUST_VERDICT_INSECURE && verdict != AS_PEER_TRUST_VERDICT_CA &&
	    self->accepted == NULL)
		self->accepted = g_strdup(seen);
	if (self->verdict == AS_PEER_TRUST_VERDICT_REFUSED)
		self->verdict = verdict;
	g_clear_error(&self->last_error);
	return verdict;
}

/**
 * as_peer_trust_check:
 * @self: a #AsPeerTrust
 * @seen_sha256: the SHA-256 of the certificate the peer showed
 * @ca_verified: it passed CA verification for the host (only counts with allow-ca)
 * @error: (nullable): optional return location for an error
 *
 * Decides, in the order of the pin, Insecure, CA verification and known_peers. Trust on first
 * use records the peer and says so; a refusal is warned about once and kept for
 * as_peer_trust_dup_last_error(). Nothing may be sent before this returns an acceptance.
 *
 * Returns: the verdict; %AS_PEER_TRUST_VERDICT_REFUSED with @error set
 **/
AsPeerTrustVerdict
as_peer_trust_check(AsPeerTrust *self,
		    const gchar *seen_sha256,
		    gboolean ca_verified,
		    GError **error)
{
	g_autoptr(AsKnownPeers) peers = NULL;
	g_autoptr(GError) error_local = NULL;
	g_autofree gchar *seen = as_sha256_hex_normalize(seen_sha256);

	g_return_val_if_fail(AS_IS_PEER_TRUST(self), AS_PEER_TRUST_VERDICT_REFUSED);

	if (seen == NULL && !self->insecure)
		return as_peer_trust_refuse(self,
					    g_error_new(AS_ERROR, AS_ERROR_PERMISSION_DENIED,
							"%s presented no certificate to check",
							self->key),
					    error);
	if (self->pin != NULL) {
		if (!as_sha256_hex_equal(self->pin, seen))
			return as_peer_trust_refuse(self, as_peer_trust_refusal(self, seen), error);
		return as_peer_trust_accept(self, seen, AS_PEER_TRUST_VERDICT_PINNED);
	}
	if (self->insecure) {
		if (!self->said_insecure)
			g_message(
				"NOT checking the certificate of %s (SHA-256 %s): Insecure was "
				"asked for, so anyone on the path can read the token and the files",
				self->key, seen != NULL ? seen : "(none)");
		self->said_insecure = TRUE;
		return as_peer_trust_accept(self, seen, AS_PEER_TRUST_VERDICT_INSECURE);
	}
	/* one connection of this sender already decided: the others must show the same */
	if (self->accepted != NULL) {
		if (!as_sha256_hex_equal(self->accepted, seen))
			return as_peer_trust_refuse(self, as_peer_trust_refusal(self, seen), error);
		return AS_PEER_TRUST_VERDICT_KNOWN;
	}
	if (self->allow_ca && ca_verified)
		return as_peer_trust_accept(self, seen, AS_PEER_TRUST_VERDICT_CA);
	if (self->known_peers == NULL)
		return as_peer_trust_refuse(
			self,
			g_error_new(AS_ERROR, AS_ERROR_PERMISSION_DENIED,
				    "REFUSED: the certificate of %s (SHA-256 %s) is not from a "
				    "trusted CA and cannot be recorded; send with --pin %s if it "
				    "is the receiver's",
				    self->key, seen, seen),
			error);
	if (!as_peer_trust_lookup(self, &peers, &error_local)) {
		g_propagate_error(error, g_steal_pointer(&error_local));
		return AS_PEER_TRUST_VERDICT_REFUSED;
	}
	if (self->known_sha256 != NULL) {
		if (!as_sha256_hex_equal(self->known_sha256, seen))
			return as_peer_trust_refuse(self, as_peer_trust_refusal(self, seen), error);
		return as_peer_trust_accept(self, seen, AS_PEER_TRUST_VERDICT_KNOWN);
	}
	if (self->expected != NULL && !as_sha256_hex_equal(self->expected, seen))
		return as_peer_trust_refuse(self, as_peer_trust_refusal(self, seen), error);
	/* nothing was sent yet: the token only goes out once this has passed */
	if (!as_known_peers_add(peers, self->key, seen)) {
		g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
			    "'%s' cannot be recorded as a peer", self->key);
		return AS_PEER_TRUST_VERDICT_REFUSED;
	}
	if (!as_known_peers_save(peers, error))
		return AS_PEER_TRUST_VERDICT_REFUSED;
	g_message("trusting %s on first use: recorded its certificate SHA-256 %s in %s", self->key,
		  seen, self->known_peers);
	return as_peer_trust_accept(self, seen, AS_PEER_TRUST_VERDICT_RECORDED);
}

/* whether a CA this system trusts signed @certificate for the host, with no other flaw */
static gboolean
as_peer_trust_verify_ca(AsPeerTrust *self, GTlsCertificate *certificate)
{
	GTlsBackend *backend = g_tls_backend_get_default();
	g_autoptr(GTlsDatabase) database = g_tls_backend_get_default_database(backend);
	g_autoptr(GSocketConnectable) identity = NULL;
	g_autoptr(GError) error_local = NULL;
	GTlsCertificateFlags flags;

	if (database == NULL)
		return FALSE;
	identity = g_network_address_new(self->host, self->port);
	flags = g_tls_database_verify_chain(database, certificate,
					    G_TLS_DATABASE_PURPOSE_AUTHENTICATE_SERVER, identity,
					    NULL, G_TLS_DATABASE_VERIFY_NONE, NULL, &error_local);
	if (error_local != NULL) {
		g_debug("CA verification of %s: %s", self->key, error_local->message);
		return FALSE;
	}
	if (flags != 0)
		g_debug("%s: not CA-verified (flags 0x%x)", self->key, (guint)flags);
	return flags == 0;
}

/**
 * as_peer_trust_check_certificate:
 * @self: a #AsPeerTrust
 * @certificate: what the peer presented in the TLS handshake
 * @error: (nullable): optional return location for an error
 *
 * as_peer_trust_check() for a GIO TLS handshake (HTTPS), with the CA verification done here:
 * the connection's own checks are off so that a pin applies to CA-signed certificates too.
 *
 * Returns: the verdict
 **/
AsPeerTrustVerdict
as_peer_trust_check_certificate(AsPeerTrust *self, GTlsCertificate *certificate, GError **error)
{
	g_autofree gchar *seen = NULL;
	gboolean ca_verified = FALSE;

	g_return_val_if_fail(AS_IS_PEER_TRUST(self), AS_PEER_TRUST_VERDICT_REFUSED);

	if (certificate != NULL)
		seen = as_tls_certificate_dup_sha256(certificate);
	if (certificate != NULL && self->pin == NULL && !self->insecure && self->accepted == NULL &&
	    self->allow_ca)
		ca_verified = as_peer_trust_verify_ca(self, certificate);
	return as_peer_trust_check(self, seen, ca_verified, error);
}

/**
 * as_peer_trust_dup_last_error:
 *
 * Returns: (transfer full) (nullable): the last refusal, to report instead of the TLS
 *   library's "unacceptable certificate"
 **/
GError *
as_peer_trust_dup_last_error(AsPeerTrust *self)
{
	g_return_val_if_fail(AS_IS_PEER_TRUST(self), NULL);
	return self->last_error != NULL ? g_error_copy(self->last_error) : NULL;
}

/* how the certificate was accepted first, or REFUSED while nothing was */
AsPeerTrustVerdict
as_peer_trust_get_verdict(AsPeerTrust *self)
{
	g_return_val_if_fail(AS_IS_PEER_TRUST(self), AS_PEER_TRUST_VERDICT_REFUSED);
	return self->verdict;
}

/* what known_peers records for the peer, once as_peer_trust_prepare() or a check looked */
const gchar *
as_peer_trust_get_known_sha256(AsPeerTrust *self)
{
	g_return_val_if_fail(AS_IS_PEER_TRUST(self), NULL);
	return self->known_sha256;
}

/* the pinned or recorded certificate, once one was accepted */
const gchar *
as_peer_trust_get_accepted(AsPeerTrust *self)
{
	g_return_val_if_fail(AS_IS_PEER_TRUST(self), NULL);
	return self->accepted;
}

static void
as_peer_trust_finalize(GObject *object)
{
	AsPeerTrust *self = AS_PEER_TRUST(object);

	g_free(self->host);
	g_free(self->key);
	g_free(self->pin);
	g_free(self->expected);
	g_free(self->known_peers);
	g_free(self->known_sha256);
	g_free(self->accepted);
	g_clear_error(&self->last_error);
	G_OBJECT_CLASS(as_peer_trust_parent_class)->finalize(object);
}

static void
as_peer_trust_class_init(AsPeerTrustClass *klass)
{
	G_OBJECT_CLASS(klass)->finalize = as_peer_trust_finalize;
}

static void
as_peer_trust_init(AsPeerTrust *self)
{
	self->verdict = AS_PEER_TRUST_VERDICT_REFUSED;
}
