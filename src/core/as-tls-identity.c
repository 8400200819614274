/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "AsTlsIdentity"

#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <glib/gstdio.h>
#include <gnutls/crypto.h>
#include <gnutls/x509.h>
#include <string.h>

#include "as-error.h"
#include "as-sha256.h"
#include "as-tls-identity.h"

/* serial numbers are positive 16-byte integers (RFC 5280 allows up to 20 octets) */
#define AS_TLS_IDENTITY_SERIAL_SIZE 16
/* backdate a generated certificate so a peer with a slightly slow clock accepts it */
#define AS_TLS_IDENTITY_BACKDATE_SECONDS (60 * 60)
/* label of the master secret derived from the private key */
#define AS_TLS_IDENTITY_MASTER_LABEL "aerosync identity secret v1"

struct _AsTlsIdentity {
	GObject parent_instance;
	gchar *cert_file;			    /* owned */
	gchar *key_file;			    /* owned */
	gchar *fingerprint;			    /* owned, lower-case hex */
	gnutls_certificate_credentials_t creds;	    /* owned */
	guint8 master[AS_TLS_IDENTITY_SECRET_SIZE]; /* wiped in finalize */
	gboolean generated;
};

G_DEFINE_TYPE(AsTlsIdentity, as_tls_identity, G_TYPE_OBJECT)

G_DEFINE_AUTO_CLEANUP_FREE_FUNC(gnutls_x509_crt_t, gnutls_x509_crt_deinit, NULL)
G_DEFINE_AUTO_CLEANUP_FREE_FUNC(gnutls_x509_privkey_t, gnutls_x509_privkey_deinit, NULL)

static void
as_tls_identity_datum_clear(gnutls_datum_t *datum)
{
	if (datum->data != NULL) {
		gnutls_memset(datum->data, 0, datum->size);
		gnutls_free(datum->data);
	}
	datum->data = NULL;
	datum->size = 0;
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(gnutls_datum_t, as_tls_identity_datum_clear)

static void
as_tls_identity_set_gnutls_error(GError **error, int rc, const gchar *what)
{
	g_set_error(error, AS_ERROR, AS_ERROR_FAILED, "%s: %s", what, gnutls_strerror(rc));
}

/* parses both PEM blobs, checks they belong together and fills in everything derived */
static gboolean
as_tls_identity_load_pem(AsTlsIdentity *self,
			 const gchar *cert_pem,
			 gsize cert_len,
			 const gchar *key_pem,
			 gsize key_len,
			 GError **error)
{
	gnutls_datum_t cert_datum = {(guchar *)cert_pem, (guint)cert_len};
	gnutls_datum_t key_datum = {(guchar *)key_pem, (guint)key_len};
	g_auto(gnutls_x509_privkey_t) key = NULL;
	g_auto(gnutls_datum_t) key_der = {NULL, 0};
	gnutls_x509_crt_t *crts = NULL;
	guint n_crts = 0;
	guint8 digest[32];
	gsize digest_size = sizeof(digest);
	int rc;

	rc = gnutls_x509_crt_list_import2(&crts, &n_crts, &cert_datum, GNUTLS_X509_FMT_PEM, 0);
	if (rc < 0 || n_crts == 0) {
		as_tls_identity_set_gnutls_error(error, rc < 0 ? rc : GNUTLS_E_NO_CERTIFICATE_FOUND,
						 "cannot parse certificate");
		return FALSE;
	}
	/* the pinned fingerprint is the one of the end-entity certificate, the first in the file */
	rc = gnutls_x509_crt_get_fingerprint(crts[0], GNUTLS_DIG_SHA256, digest, &digest_size);
	for (guint i = 0; i < n_crts; i++)
		gnutls_x509_crt_deinit(crts[i]);
	gnutls_free(crts);
	if (rc < 0) {
		as_tls_identity_set_gnutls_error(error, rc, "cannot hash certificate");
		return FALSE;
	}
	g_free(self->fingerprint);
	self->fingerprint = g_malloc(digest_size * 2 + 1);
	for (gsize i = 0; i < digest_size; i++)
		g_snprintf(self->fingerprint + i * 2, 3, "%02x", digest[i]);

	/* PKCS#8 (unencrypted), PKCS#1 RSA and SEC1 EC keys are all recognised by import2 */
	rc = gnutls_x509_privkey_init(&key);
	if (rc < 0) {
		as_tls_identity_set_gnutls_error(error, rc, "cannot allocate key");
		return FALSE;
	}
	rc = gnutls_x509_privkey_import2(key, &key_datum, GNUTLS_X509_FMT_PEM, NULL, 0);
	if (rc < 0) {
		as_tls_identity_set_gnutls_error(error, rc,
						 "cannot parse private key (PKCS#8 or RSA PEM, "
						 "unencrypted)");
		return FALSE;
	}
	rc = gnutls_x509_privkey_export2(key, GNUTLS_X509_FMT_DER, &key_der);
	if (rc < 0) {
		as_tls_identity_set_gnutls_error(error, rc, "cannot export private key");
		return FALSE;
	}
	rc = gnutls_hmac_fast(GNUTLS_MAC_SHA256, key_der.data, key_der.size,
			      AS_TLS_IDENTITY_MASTER_LABEL, strlen(AS_TLS_IDENTITY_MASTER_LABEL),
			      self->master);
	if (rc < 0) {
		as_tls_identity_set_gnutls_error(error, rc, "cannot derive secret");
		return FALSE;
	}

	if (self->creds == NULL) {
		rc = gnutls_certificate_allocate_credentials(&self->creds);
		if (rc < 0) {
			as_tls_identity_set_gnutls_error(error, rc, "cannot allocate credentials");
			return FALSE;
		}
	}
	/* this also refuses a key that does not match the certificate */
	rc = gnutls_certificate_set_x509_key_mem2(self->creds, &cert_datum, &key_datum,
						  GNUTLS_X509_FMT_PEM, NULL, 0);
	if (rc < 0) {
		as_tls_identity_set_gnutls_error(error, rc, "cannot use certificate and key");
		return FALSE;
	}
	return TRUE;
}

static gboolean
as_tls_identity_load_files(AsTlsIdentity *self,
			   const gchar *cert_file,
			   const gchar *key_file,
			   GError **error)
{
	g_autofree gchar *cert_pem = NULL;
	g_autofree gchar *key_pem = NULL;
	gsize cert_len = 0;
	gsize key_len = 0;
	gboolean ok;

	if (!g_file_get_contents(cert_file, &cert_pem, &cert_len, error)) {
		as_error_convert(error);
		return FALSE;
	}
	if (!g_file_get_contents(key_file, &key_pem, &key_len, error)) {
		as_error_convert(error);
		return FALSE;
	}
	ok = as_tls_identity_load_pem(self, cert_pem, cert_len, key_pem, key_len, error);
	gnutls_memset(key_pem, 0, key_len);
	if (!ok) {
		g_prefix_error(error, "%s, %s: ", cert_file, key_file);
		return FALSE;
	}
	self->cert_file = g_strdup(cert_file);
	self->key_file = g_strdup(key_file);
	return TRUE;
}

/**
 * as_tls_identity_new_from_files:
 * @cert_file: a PEM certificate, optionally followed by its chain
 * @key_file: the PEM private key of the first certificate: PKCS#8 or PKCS#1 RSA, unencrypted
 * @error: (nullable): optional return location for an error
 *
 * Loads a TLS identity supplied by the administrator (`--tls-cert`/`--tls-key`).
 *
 * Returns: (transfer full): a new #AsTlsIdentity, or %NULL if the files cannot be read or parsed,
 * or the key does not match the certificate
 **/
AsTlsIdentity *
as_tls_identity_new_from_files(const gchar *cert_file, const gchar *key_file, GError **error)
{
	g_autoptr(AsTlsIdentity) self = g_object_new(AS_TYPE_TLS_IDENTITY, NULL);

	g_return_val_if_fail(cert_file != NULL, NULL);
	g_return_val_if_fail(key_file != NULL, NULL);

	if (!as_tls_identity_load_files(self, cert_file, key_file, error))
		return NULL;
	return g_steal_pointer(&self);
}

static gboolean
as_tls_identity_add_dns_san(gnutls_x509_crt_t crt, const gchar *name, GError **error)
{
	int rc = gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_DNSNAME, name,
						      (guint)strlen(name), GNUTLS_FSAN_APPEND);
	if (rc < 0) {
		as_tls_identity_set_gnutls_error(error, rc, "cannot add subject alternative name");
		return FALSE;
	}
	return TRUE;
}

static gboolean
as_tls_identity_add_ip_san(gnutls_x509_crt_t crt, int family, const gchar *text, GError **error)
{
	guint8 addr[16];
	int rc;

	if (inet_pton(family, text, addr) != 1) {
		g_set_error(error, AS_ERROR, AS_ERROR_FAILED, "bad address %s", text);
		return FALSE;
	}
	rc = gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_IPADDRESS, addr,
						  family == AF_INET ? 4 : 16, GNUTLS_FSAN_APPEND);
	if (rc < 0) {
		as_tls_identity_set_gnutls_error(error, rc, "cannot add subject alternative name");
		return FALSE;
	}
	return TRUE;
}

/* names a peer may reasonably use for this host; the certificate is pinned, so they are only
 * there for tools that also check names */
static GPtrArray *
as_tls_identity_host_names(void)
{
	GPtrArray *names = g_ptr_array_new_with_free_func(g_free);
	const gchar *host = g_get_host_name();

	g_ptr_array_add(names, g_strdup("localhost"));
	if (host != NULL && host[0] != '\0' && g_ascii_strcasecmp(host, "localhost") != 0 &&
	    g_hostname_is_ascii_encoded(host) && !g_hostname_is_ip_address(host)) {
		g_ptr_array_add(names, g_ascii_strdown(host, -1));
		if (strchr(host, '.') == NULL)
			g_ptr_array_add(names, g_strdup_printf("%s.local", host));
	}
	return names;
}

static gboolean
as_tls_identity_generate_pem(gchar **cert_pem, gchar **key_pem, GError **error)
{
	g_auto(gnutls_x509_privkey_t) key = NULL;
	g_auto(gnutls_x509_crt_t) crt = NULL;
	g_auto(gnutls_datum_t) cert_datum = {NULL, 0};
	g_auto(gnutls_datum_t) key_datum = {NULL, 0};
	g_autoptr(GPtrArray) names = as_tls_identity_host_names();
	guint8 serial[AS_TLS_IDENTITY_SERIAL_SIZE];
	guint8 key_id[64];
	gsize key_id_size = sizeof(key_id);
	time_t now = time(NULL);
	const gchar *cn = g_ptr_array_index(names, names->len > 1 ? 1 : 0);
	int rc;

	rc = gnutls_x509_privkey_init(&key);
	if (rc >= 0) {
		rc = gnutls_x509_privkey_generate2(key, GNUTLS_PK_ECDSA,
						   GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1),
						   0, NULL, 0);
	}
	if (rc < 0) {
		as_tls_identity_set_gnutls_error(error, rc, "cannot generate key");
		return FALSE;
	}
	rc = gnutls_rnd(GNUTLS_RND_NONCE, serial, sizeof(serial));
	if (rc < 0) {
		as_tls_identity_set_gnutls_error(error, rc, "cannot generate serial");
		return FALSE;
	}
	/* positive and non-zero */
	serial[0] = (serial[0] & 0x7f) | 0x01;

	rc = gnutls_x509_crt_init(&crt);
	if (rc >= 0)
		rc = gnutls_x509_crt_set_version(crt, 3);
	if (rc >= 0)
		rc = gnutls_x509_crt_set_serial(crt, serial, sizeof(serial));
	if (rc >= 0)
		rc = gnutls_x509_crt_set_activation_time(crt,
							 now - AS_TLS_IDENTITY_BACKDATE_SECONDS);
	if (rc >= 0) {
		rc = gnutls_x509_crt_set_expiration_time(
			crt, now + (time_t)AS_TLS_IDENTITY_VALIDITY_DAYS * 24 * 60 * 60);
	}
	if (rc >= 0) {
		rc = gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, cn,
						   (guint)strlen(cn));
	}
	if (rc >= 0)
		rc = gnutls_x509_crt_set_key(crt, key);
	if (rc >= 0)
		rc = gnutls_x509_crt_set_basic_constraints(crt, 0, -1);
	if (rc >= 0)
		rc = gnutls_x509_crt_set_key_usage(crt, GNUTLS_KEY_DIGITAL_SIGNATURE);
	if (rc >= 0)
		rc = gnutls_x509_crt_set_key_purpose_oid(crt, GNUTLS_KP_TLS_WWW_SERVER, 0);
	if (rc >= 0) {
		rc = gnutls_x509_privkey_get_key_id(key, GNUTLS_KEYID_USE_SHA1, key_id,
						    &key_id_size);
	}
	if (rc >= 0)
		rc = gnutls_x509_crt_set_subject_key_id(crt, key_id, key_id_size);
	if (rc < 0) {
		as_tls_identity_set_gnutls_error(error, rc, "cannot build certificate");
		return FALSE;
	}
	for (guint i = 0; i < names->len; i++) {
		if (!as_tls_identity_add_dns_san(crt, g_ptr_array_index(names, i), error))
			return FALSE;
	}
	if (!as_tls_identity_add_ip_san(crt, AF_INET, "127.0.0.1", error))
		return FALSE;
	if (!as_tls_identity_add_ip_san(crt, AF_INET6, "::1", error))
		return FALSE;

	rc = gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA256, 0);
	if (rc < 0) {
		as_tls_identity_set_gnutls_error(error, rc, "cannot sign certificate");
		return FALSE;
	}
	rc = gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &cert_datum);
	if (rc >= 0) {
		rc = gnutls_x509_privkey_export2_pkcs8(key, GNUTLS_X509_FMT_PEM, NULL,
						       GNUTLS_PKCS_PLAIN, &key_datum);
	}
	if (rc < 0) {
		as_tls_identity_set_gnutls_error(error, rc, "cannot export certificate");
		return FALSE;
	}
	*cert_pem = g_strndup((const gchar *)cert_datum.data, cert_datum.size);
	*key_pem = g_strndup((const gchar *)key_datum.data, key_datum.size);
	return TRUE;
}

/**
 * as_tls_identity_load_or_generate:
 * @state_dir: a directory private to the daemon, e.g. `$XDG_STATE_HOME/aerosync`
 * @error: (nullable): optional return location for an error
 *
 * Loads the identity kept in @state_dir (`cert.pem` and `key.pem`), or, when there is none yet,
 * generates a self-signed ECDSA P-256 certificate for `localhost`, the host name and the loopback
 * addresses, valid for %AS_TLS_IDENTITY_VALIDITY_DAYS, and stores it there (the key with mode
 * 0600, the directory 0700) so the fingerprint stays the same across restarts and peers can pin
 * it. An existing but unreadable or inconsistent pair is an error rather than silently replaced:
 * a new certificate would break every pin. A key without a certificate is a half-written pair
 * from an interrupted first start and is replaced.
 *
 * Returns: (transfer full): a new #AsTlsIdentity, or %NULL
 **/
AsTlsIdentity *
as_tls_identity_load_or_generate(const gchar *state_dir, GError **error)
{
	g_autoptr(AsTlsIdentity) self = g_object_new(AS_TYPE_TLS_IDENTITY, NULL);
	g_autofree gchar *cert_file = NULL;
	g_autofree gchar *key_file = NULL;
	g_autofree gchar *cert_pem = NULL;
	g_autofree gchar *key_pem = NULL;
	gboolean ok;

	g_return_val_if_fail(state_dir != NULL, NULL);

	cert_file = g_build_filename(state_dir, AS_TLS_IDENTITY_CERT_FILENAME, NULL);
	key_file = g_build_filename(state_dir, AS_TLS_IDENTITY_KEY_FILENAME, NULL);
	if (g_file_test(cert_file, G_FILE_TEST_EXISTS)) {
		if (!g_file_test(key_file, G_FILE_TEST_EXISTS)) {
			g_set_error(
				error, AS_ERROR, AS_ERROR_NOT_FOUND,
				"%s exists but %s is missing; remove the certificate to generate "
				"a new identity (peers that pinned the old one must re-pin)",
				cert_file, key_file);
			return NULL;
		}
		if (!as_tls_identity_load_files(self, cert_file, key_file, error))
			return NULL;
		self->generated = TRUE;
		return g_steal_pointer(&self);
	}

	if (g_mkdir_with_parents(state_dir, 0700) != 0) {
		int errsv = errno;
		g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errsv), "cannot create %s: %s",
			    state_dir, g_strerror(errsv));
		as_error_convert(error);
		return NULL;
	}
	if (!as_tls_identity_generate_pem(&cert_pem, &key_pem, error))
		return NULL;
	/* the key first: a certificate on disk always has its key next to it */
	ok = g_file_set_contents_full(key_file, key_pem, -1, G_FILE_SET_CONTENTS_CONSISTENT, 0600,
				      error);
	if (ok) {
		ok = g_file_set_contents_full(cert_file, cert_pem, -1,
					      G_FILE_SET_CONTENTS_CONSISTENT, 0644, error);
	}
	if (!ok) {
		gnutls_memset(key_pem, 0, strlen(key_pem));
		as_error_convert(error);
		g_prefix_error(error, "cannot store TLS identity: ");
		return NULL;
	}
	ok = as_tls_identity_load_pem(self, cert_pem, strlen(cert_pem), key_pem, strlen(key_pem),
				      error);
	gnutls_memset(key_pem, 0, strlen(key_pem));
	if (!ok)
		return NULL;
	self->cert_file = g_steal_pointer(&cert_file);
	self->key_file = g_steal_pointer(&key_file);
	self->generated = TRUE;
	g_info("generated a self-signed TLS certificate, SHA-256 %s", self->fingerprint);
	return g_steal_pointer(&self);
}

/**
 * as_tls_identity_new_for_options:
 * @cert_file: (nullable): `--tls-cert`
 * @key_file: (nullable): `--tls-key`
 * @state_dir: where a generated identity lives when no files are given
 * @error: (nullable): optional return location for an error
 *
 * What the daemon calls at start-up: the given pair if both files are set, the generated one
 * otherwise. Giving only one of the two files is an error.
 *
 * Returns: (transfer full): a new #AsTlsIdentity, or %NULL
 **/
AsTlsIdentity *
as_tls_identity_new_for_options(const gchar *cert_file,
				const gchar *key_file,
				const gchar *state_dir,
				GError **error)
{
	g_return_val_if_fail(state_dir != NULL, NULL);

	if ((cert_file == NULL) != (key_file == NULL)) {
		g_set_error_literal(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
				    "--tls-cert and --tls-key must be given together");
		return NULL;
	}
	if (cert_file != NULL)
		return as_tls_identity_new_from_files(cert_file, key_file, error);
	return as_tls_identity_load_or_generate(state_dir, error);
}

/**
 * as_tls_certificate_dup_sha256:
 * @certificate: a peer's certificate, as a TLS handshake gives it
 *
 * The fingerprint a sender pins, computed as as_tls_identity_get_fingerprint() is for our own.
 *
 * Returns: (transfer full) (nullable): the SHA-256 of its DER in lower-case hex
 **/
gchar *
as_tls_certificate_dup_sha256(GTlsCertificate *certificate)
{
	g_autoptr(GByteArray) der = NULL;

	g_return_val_if_fail(G_IS_TLS_CERTIFICATE(certificate), NULL);
	g_object_get(certificate, "certificate", &der, NULL);
	if (der == NULL || der->len == 0)
		return NULL;
	return as_sha256_data_hex(der->data, der->len);
}

/**
 * as_tls_identity_get_fingerprint:
 * @self: a #AsTlsIdentity
 *
 * Returns: the SHA-256 of the DER certificate as 64 lower-case hex digits, what clients pin and
 * what `/health` reports as `cert_sha256`
 **/
const gchar *
as_tls_identity_get_fingerprint(AsTlsIdentity *self)
{
	g_return_val_if_fail(AS_IS_TLS_IDENTITY(self), NULL);
	return self->fingerprint;
}

/**
 * as_tls_identity_get_credentials:
 * @self: a #AsTlsIdentity
 *
 * Returns: (transfer none): GnuTLS certificate credentials holding the certificate and key, valid
 * as long as @self
 **/
gnutls_certificate_credentials_t
as_tls_identity_get_credentials(AsTlsIdentity *self)
{
	g_return_val_if_fail(AS_IS_TLS_IDENTITY(self), NULL);
	return self->creds;
}

/**
 * as_tls_identity_get_cert_file:
 * @self: a #AsTlsIdentity
 *
 * Returns: the PEM certificate file, e.g. for g_tls_certificate_new_from_files()
 **/
const gchar *
as_tls_identity_get_cert_file(AsTlsIdentity *self)
{
	g_return_val_if_fail(AS_IS_TLS_IDENTITY(self), NULL);
	return self->cert_file;
}

/**
 * as_tls_identity_new_gtls_certificate:
 * @self: a #AsTlsIdentity
 * @error: (nullable): optional return location for an error
 *
 * The same certificate and key for GIO's TLS, which HTTPS (libsoup) serves with.
 *
 * Returns: (transfer full): a certificate with its private key, or %NULL
 **/
GTlsCertificate *
as_tls_identity_new_gtls_certificate(AsTlsIdentity *self, GError **error)
{
	g_autoptr(GError) error_local = NULL;
	GTlsCertificate *cert;

	g_return_val_if_fail(AS_IS_TLS_IDENTITY(self), NULL);

	cert = g_tls_certificate_new_from_files(self->cert_file, self->key_file, &error_local);
	if (cert == NULL) {
		g_set_error(error, AS_ERROR, AS_ERROR_FAILED, "cannot use %s and %s for TLS: %s",
			    self->cert_file, self->key_file, error_local->message);
		return NULL;
	}
	return cert;
}

/**
 * as_tls_identity_get_key_file:
 * @self: a #AsTlsIdentity
 *
 * Returns: the PEM private key file
 **/
const gchar *
as_tls_identity_get_key_file(AsTlsIdentity *self)
{
	g_return_val_if_fail(AS_IS_TLS_IDENTITY(self), NULL);
	return self->key_file;
}

/**
 * as_tls_identity_get_generated:
 * @self: a #AsTlsIdentity
 *
 * Returns: %TRUE for the self-signed identity of the state directory, %FALSE for files given by
 * the administrator
 **/
gboolean
as_tls_identity_get_generated(AsTlsIdentity *self)
{
	g_return_val_if_fail(AS_IS_TLS_IDENTITY(self), FALSE);
	return self->generated;
}

/**
 * as_tls_identity_derive_secret:
 * @self: a #AsTlsIdentity
 * @label: what the secret is for, e.g. "quic stateless reset"
 * @secret: (out caller-allocates) (array length=secret_size): the output
 * @secret_size: at most %AS_TLS_IDENTITY_SECRET_SIZE
 *
 * Derives a secret from the private key that is stable across restarts and different for every
 * @label, for things that must survive a restart (QUIC stateless reset and address validation
 * tokens) without another file to keep.
 **/
void
as_tls_identity_derive_secret(AsTlsIdentity *self,
			      const gchar *label,
			      guint8 *secret,
			      gsize secret_size)
{
	guint8 out[AS_TLS_IDENTITY_SECRET_SIZE];

	g_return_if_fail(AS_IS_TLS_IDENTITY(self));
	g_return_if_fail(label != NULL);
	g_return_if_fail(secret != NULL);
	g_return_if_fail(secret_size <= AS_TLS_IDENTITY_SECRET_SIZE);

	/* HMAC-SHA-256 cannot fail on valid arguments */
	(void)gnutls_hmac_fast(GNUTLS_MAC_SHA256, self->master, sizeof(self->master), label,
			       strlen(label), out);
	memcpy(secret, out, secret_size);
	gnutls_memset(out, 0, sizeof(out));
}

static void
as_tls_identity_finalize(GObject *object)
{
	AsTlsIdentity *self = AS_TLS_IDENTITY(object);

	if (self->creds != NULL)
		gnutls_certificate_free_credentials(self->creds);
	gnutls_memset(self->master, 0, sizeof(self->master));
	g_free(self->cert_file);
	g_free(self->key_file);
	g_free(self->fingerprint);
	G_OBJECT_CLASS(as_tls_identity_parent_class)->finalize(object);
}

static void
as_tls_identity_class_init(AsTlsIdentityClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);
	object_class->finalize = as_tls_identity_finalize;
}

static void
as_tls_identity_init(AsTlsIdentity *self)
{
}
