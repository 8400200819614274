/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>
#include <gnutls/gnutls.h>

G_BEGIN_DECLS

/*
 * AsTlsIdentity: the daemon's TLS certificate and key, given with --tls-cert/--tls-key or
 * generated once (self-signed ECDSA P-256, 10 years) into the state directory and reused. Its
 * SHA-256 fingerprint is what peers pin (`/health` cert_sha256, the D-Bus Manager, mDNS TXT).
 * The GnuTLS credentials serve QUIC; the file names serve GTlsCertificate for HTTPS.
 */

#define AS_TYPE_TLS_IDENTITY (as_tls_identity_get_type())
G_DECLARE_FINAL_TYPE(AsTlsIdentity, as_tls_identity, AS, TLS_IDENTITY, GObject)

/* file names of a generated identity inside the state directory */
#define AS_TLS_IDENTITY_CERT_FILENAME "cert.pem"
#define AS_TLS_IDENTITY_KEY_FILENAME  "key.pem"
/* validity of a generated certificate */
#define AS_TLS_IDENTITY_VALIDITY_DAYS (10 * 365)
/* length of as_tls_identity_derive_secret() output */
#define AS_TLS_IDENTITY_SECRET_SIZE 32

AsTlsIdentity *
as_tls_identity_new_from_files(const gchar *cert_file, const gchar *key_file, GError **error);
AsTlsIdentity *as_tls_identity_load_or_generate(const gchar *state_dir, GError **error);
AsTlsIdentity *as_tls_identity_new_for_options(const gchar *cert_file,
					       const gchar *key_file,
					       const gchar *state_dir,
					       GError **error);

const gchar *as_tls_identity_get_fingerprint(AsTlsIdentity *self);
gchar *as_tls_certificate_dup_sha256(GTlsCertificate *certificate);
gnutls_certificate_credentials_t as_tls_identity_get_credentials(AsTlsIdentity *self);
const gchar *as_tls_identity_get_cert_file(AsTlsIdentity *self);
const gchar *as_tls_identity_get_key_file(AsTlsIdentity *self);
gboolean as_tls_identity_get_generated(AsTlsIdentity *self);
GTlsCertificate *as_tls_identity_new_gtls_certificate(AsTlsIdentity *self, GError **error);
void as_tls_identity_derive_secret(AsTlsIdentity *self,
				   const gchar *label,
				   guint8 *secret,
				   gsize secret_size);

G_END_DECLS
