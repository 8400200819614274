/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/*
 * AsPeerTrust: whether a sender may talk to the receiver behind a certificate, the one decision
 * QUIC and HTTPS share:
 *
 * 1. an explicit pin (the Pin option, `--pin`): the certificate's SHA-256 must be that one;
 * 2. Insecure, only when asked for: anything is accepted, and that is said in the log;
 * 3. (HTTPS) a certificate that passes the system's CA verification for the host name;
 * 4. known_peers, trust on first use: a recorded peer must show the recorded certificate, a
 *    changed one is refused loudly; a new peer is recorded (and said so loudly), provided it
 *    shows the fingerprint it announced, when it announced one.
 *
 * A refusal is %AS_ERROR_PERMISSION_DENIED: never retried, never a reason to fall back to
 * another protocol.
 */

typedef enum {
	AS_PEER_TRUST_VERDICT_REFUSED,
	AS_PEER_TRUST_VERDICT_PINNED,	/* the explicit pin matched */
	AS_PEER_TRUST_VERDICT_INSECURE, /* not checked, as asked */
	AS_PEER_TRUST_VERDICT_CA,	/* passed CA verification for the host */
	AS_PEER_TRUST_VERDICT_KNOWN,	/* the certificate known_peers records */
	AS_PEER_TRUST_VERDICT_RECORDED, /* first use: now recorded in known_peers */
} AsPeerTrustVerdict;

#define AS_TYPE_PEER_TRUST (as_peer_trust_get_type())
G_DECLARE_FINAL_TYPE(AsPeerTrust, as_peer_trust, AS, PEER_TRUST, GObject)

const gchar *as_peer_trust_verdict_to_string(AsPeerTrustVerdict verdict);

AsPeerTrust *as_peer_trust_new(const gchar *host, guint16 port);
const gchar *as_peer_trust_get_key(AsPeerTrust *self);
void as_peer_trust_set_pin(AsPeerTrust *self, const gchar *sha256);
const gchar *as_peer_trust_get_pin(AsPeerTrust *self);
void as_peer_trust_set_insecure(AsPeerTrust *self, gboolean insecure);
gboolean as_peer_trust_get_insecure(AsPeerTrust *self);
void as_peer_trust_set_expected(AsPeerTrust *self, const gchar *sha256);
void as_peer_trust_set_known_peers(AsPeerTrust *self, const gchar *path);
void as_peer_trust_set_allow_ca(AsPeerTrust *self, gboolean allow_ca);

gboolean as_peer_trust_prepare(AsPeerTrust *self, gchar **handshake_sha256, GError **error);
AsPeerTrustVerdict as_peer_trust_check(AsPeerTrust *self,
				       const gchar *seen_sha256,
				       gboolean ca_verified,
				       GError **error);
AsPeerTrustVerdict
as_peer_trust_check_certificate(AsPeerTrust *self, GTlsCertificate *certificate, GError **error);
GError *as_peer_trust_refusal(AsPeerTrust *self, const gchar *seen_sha256);
GError *as_peer_trust_dup_last_error(AsPeerTrust *self);
AsPeerTrustVerdict as_peer_trust_get_verdict(AsPeerTrust *self);
const gchar *as_peer_trust_get_accepted(AsPeerTrust *self);
const gchar *as_peer_trust_get_known_sha256(AsPeerTrust *self);

G_END_DECLS
