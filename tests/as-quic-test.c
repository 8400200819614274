/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <gio/gunixinputstream.h>
#include <glib/gstdio.h>
#include <gnutls/crypto.h>
#include <gnutls/x509.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "as-error.h"
#include "as-quic-client.h"
#include "as-quic-framing.h"
#include "as-quic-server.h"
#include "as-sha256.h"
#include "as-test-daemon.h"
#include "as-tls-identity.h"

/* every wait in this file is bounded by this */
#define TEST_TIMEOUT_MS 20000

typedef struct _Fixture Fixture;

typedef struct {
	Fixture *fx;
	gchar *name;
	gchar *path;
	gchar *expected;
	int fd;
	AsSha256 *sha;
	guint64 size;
	guint64 received;
} TestStream;

typedef struct {
	gchar *sha256;
	guint64 size;
	gchar *alpn;
	gchar *peer;
	guint64 connection_id;
} TestFile;

struct _Fixture {
	gchar *tmpdir;
	AsTlsIdentity *identity;
	AsQuicServer *server;
	guint16 port;
	GHashTable *files; /* name -> TestFile, for uploads that ended */
	guint n_begin;
	guint n_end;
	guint n_abort;
	guint n_streams;
	gchar *last_abort_reason;
	gboolean reply_later; /* reply from an idle, as a verifying daemon would */
	guint reply_delay_ms; /* ...or that much later */
	gboolean pause;	      /* data() asks the server to stop granting credit */
	guint64 bytes_received;
	GPtrArray *paused; /* (element-type TestStream) while pause is set */
};

/* ---- helpers ---- */

static gboolean
wake_cb(gpointer user_data)
{
	return G_SOURCE_CONTINUE;
}

/* iterates the default context until *flag, failing the test after TEST_TIMEOUT_MS */
static void
wait_for(gboolean *flag)
{
	gint64 deadline = g_get_monotonic_time() + TEST_TIMEOUT_MS * 1000;
	guint wake = g_timeout_add(50, wake_cb, NULL);

	while (!*flag) {
		g_assert_cmpint(g_get_monotonic_time(), <, deadline);
		g_main_context_iteration(NULL, TRUE);
	}
	g_source_remove(wake);
}

/* runs the loop for @ms */
static void
spin_ms(guint ms)
{
	gint64 end = g_get_monotonic_time() + (gint64)ms * 1000;
	guint wake = g_timeout_add(10, wake_cb, NULL);

	while (g_get_monotonic_time() < end)
		g_main_context_iteration(NULL, TRUE);
	g_source_remove(wake);
}

static gchar *
bytes_sha256(GBytes *bytes)
{
	gsize len = 0;
	gconstpointer data = g_bytes_get_data(bytes, &len);
	return as_sha256_data_hex(data, len);
}

static void
test_file_free(TestFile *f)
{
	g_free(f->sha256);
	g_free(f->alpn);
	g_free(f->peer);
	g_free(f);
}

static void
test_stream_free(TestStream *ts)
{
	if (ts->fd >= 0)
		close(ts->fd);
	if (ts->sha != NULL)
		as_sha256_free(ts->sha);
	g_free(ts->name);
	g_free(ts->path);
	g_free(ts->expected);
	g_free(ts);
}

/* ---- the in-test ingest: a temp file per stream, hashed as it is written ---- */

static gboolean
ingest_begin(gpointer user_data,
	     const AsQuicUploadInfo *info,
	     gpointer *stream_handle,
	     GError **error)
{
	Fixture *fx = user_data;
	TestStream *ts;

	fx->n_begin++;
	if (g_strcmp0(info->token, "bad") == 0) {
		g_set_error_literal(error, AS_ERROR, AS_ERROR_PERMISSION_DENIED, "token rejected");
		return FALSE;
	}
	if (info->size > 1024 * 1024 * 1024) {
		g_set_error(error, AS_ERROR, AS_ERROR_TOO_LARGE, "%" G_GUINT64_FORMAT, info->size);
		return FALSE;
	}
	ts = g_new0(TestStream, 1);
	ts->fx = fx;
	ts->name = g_strdup(info->name);
	ts->path = g_strdup_printf("%s/recv-%u", fx->tmpdir, ++fx->n_streams);
	ts->expected = g_strdup(info->sha256);
	ts->size = info->size;
	ts->fd = open(ts->path, O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0600);
	g_assert_cmpint(ts->fd, >=, 0);
	ts->sha = as_sha256_new();
	{
		TestFile *f = g_new0(TestFile, 1);
		f->alpn = g_strdup(info->alpn);
		f->peer = g_strdup(info->peer);
		f->connection_id = info->connection_id;
		g_hash_table_replace(fx->files, g_strdup_printf("begin:%s", info->name), f);
	}
	*stream_handle = ts;
	return TRUE;
}

static gboolean
ingest_data(gpointer user_data, gpointer stream_handle, const guint8 *data, gsize len)
{
	Fixture *fx = user_data;
	TestStream *ts = stream_handle;
	gsize done = 0;

	while (done < len) {
		ssize_t n = write(ts->fd, data + done, len - done);
		g_assert_cmpint(n, >, 0);
		done += (gsize)n;
	}
	as_sha256_update(ts->sha, data, len);
	ts->received += len;
	fx->bytes_received += len;
	g_assert_cmpuint(ts->received, <=, ts->size);
	if (fx->pause) {
		g_ptr_array_add(fx->paused, ts);
		return FALSE;
	}
	return TRUE;
}

typedef struct {
	AsQuicReplyFunc reply;
	gpointer reply_data;
	gboolean success;
	gchar *message;
} TestReply;

static gboolean
ingest_reply_later_cb(gpointer user_data)
{
	TestReply *r = user_data;
	r->reply(r->reply_data, r->success, r->message);
	g_free(r->message);
	g_free(r);
	return G_SOURCE_REMOVE;
}

static void
ingest_end(gpointer user_data, gpointer stream_handle, AsQuicReplyFunc reply, gpointer reply_data)
{
	Fixture *fx = user_data;
	TestStream *ts = stream_handle;
	g_autofree gchar *actual = as_sha256_finish_hex(ts->sha);
	g_autoptr(GError) error = NULL;
	g_autofree gchar *message = NULL;
	g_autofree gchar *key = g_strdup_printf("begin:%s", ts->name);
	TestFile *begun = g_hash_table_lookup(fx->files, key);
	TestFile *f = g_new0(TestFile, 1);

	fx->n_end++;
	g_assert_cmpuint(ts->received, ==, ts->size);
	if (ts->expected != NULL && !as_sha256_hex_equal(ts->expected, actual)) {
		g_set_error(&error, AS_ERROR, AS_ERROR_HASH_MISMATCH, "expected %s, got %s",
			    ts->expected, actual);
		message = as_quic_framing_error_message(error);
	}
	f->sha256 = g_strdup(actual);
	f->size = ts->received;
	f->alpn = g_strdup(begun != NULL ? begun->alpn : NULL);
	f->peer = g_strdup(begun != NULL ? begun->peer : NULL);
	f->connection_id = begun != NULL ? begun->connection_id : 0;
	g_hash_table_replace(fx->files, g_strdup(ts->name), f);
	g_unlink(ts->path);
	test_stream_free(ts);

	if (fx->reply_later) {
		TestReply *r = g_new0(TestReply, 1);
		r->reply = reply;
		r->reply_data = reply_data;
		r->success = message == NULL;
		r->message = g_steal_pointer(&message);
		if (fx->reply_delay_ms > 0)
			g_timeout_add(fx->reply_delay_ms, ingest_reply_later_cb, r);
		else
			g_idle_add(ingest_reply_later_cb, r);
		return;
	}
	reply(reply_data, message == NULL, message);
}

static void
ingest_abort(gpointer user_data, gpointer stream_handle, const gchar *reason)
{
	Fixture *fx = user_data;
	TestStream *ts = stream_handle;

	fx->n_abort++;
	g_free(fx->last_abort_reason);
	fx->last_abort_reason = g_strdup(reason);
	if (fx->paused != NULL)
		g_ptr_array_remove(fx->paused, ts);
	g_unlink(ts->path);
	test_stream_free(ts);
}

static const AsQuicIngest test_ingest = {
	.begin = ingest_begin,
	.data = ingest_data,
	.end = ingest_end,
	.abort = ingest_abort,
};

/* ---- fixture ---- */

static void
fixture_start_server(Fixture *fx, const gchar *address)
{
	g_autoptr(GError) error = NULL;

	fx->server = as_quic_server_new(fx->identity, &test_ingest, fx, NULL);
	g_assert_true(as_quic_server_listen(fx->server, address, 0, &error));
	g_assert_no_error(error);
	fx->port = as_quic_server_get_port(fx->server);
	g_assert_cmpuint(fx->port, >, 0);
}

static void
fixture_setup(Fixture *fx, gconstpointer user_data)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *state = NULL;

	fx->tmpdir = g_dir_make_tmp("as-quic-test-XXXXXX", &error);
	g_assert_no_error(error);
	state = g_build_filename(fx->tmpdir, "state", NULL);
	fx->identity = as_tls_identity_load_or_generate(state, &error);
	g_assert_no_error(error);
	fx->files = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
					  (GDestroyNotify)test_file_free);
	fx->paused = g_ptr_array_new();
	fixture_start_server(fx, user_data != NULL ? user_data : "127.0.0.1");
}

static void
fixture_teardown(Fixture *fx, gconstpointer user_data)
{
	g_clear_object(&fx->server);
	g_clear_object(&fx->identity);
	g_hash_table_unref(fx->files);
	g_ptr_array_unref(fx->paused);
	/* let the idle completions of closed clients run */
	while (g_main_context_iteration(NULL, FALSE))
		;
	as_test_rm_rf(fx->tmpdir);
	g_free(fx->tmpdir);
	g_free(fx->last_abort_reason);
}

static AsQuicClient *
fixture_client(Fixture *fx, const gchar *host)
{
	AsQuicClient *client = as_quic_client_new(host != NULL ? host : "127.0.0.1", fx->port);
	as_quic_client_set_pin(client, as_tls_identity_get_fingerprint(fx->identity));
	/* generous: valgrind runs are slow; the timeout itself is tested on its own */
	as_quic_client_set_handshake_timeout_ms(client, 10000);
	return client;
}

typedef struct {
	gboolean done;
	gchar *reply;
	GError *error;
} Result;

static void
result_clear(Result *r)
{
	g_clear_pointer(&r->reply, g_free);
	g_clear_error(&r->error);
	r->done = FALSE;
}

static void
upload_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	Result *r = user_data;
	r->reply = as_quic_client_upload_finish(AS_QUIC_CLIENT(source), res, &r->error);
	r->done = TRUE;
}

static void
request_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	Result *r = user_data;
	r->reply = as_quic_client_request_finish(AS_QUIC_CLIENT(source), res, &r->error);
	r->done = TRUE;
}

static void
connect_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	Result *r = user_data;
	if (as_quic_client_connect_finish(AS_QUIC_CLIENT(source), res, &r->error))
		r->reply = g_strdup("connected");
	r->done = TRUE;
}

static void
upload_bytes_async(AsQuicClient *client,
		   const gchar *name,
		   GBytes *bytes,
		   const gchar *token,
		   const gchar *sha256,
		   Result *r)
{
	g_autoptr(GInputStream) stream = g_memory_input_stream_new_from_bytes(bytes);
	as_quic_client_upload_async(client, name, stream, g_bytes_get_size(bytes), token, sha256,
				    NULL, upload_cb, r);
}

static void
upload_bytes(AsQuicClient *client,
	     const gchar *name,
	     GBytes *bytes,
	     const gchar *token,
	     const gchar *sha256,
	     Result *r)
{
	upload_bytes_async(client, name, bytes, token, sha256, r);
	wait_for(&r->done);
}

static gchar *
request_bytes(AsQuicClient *client, const gchar *request, gsize len, GError **error)
{
	g_autoptr(GBytes) bytes = g_bytes_new(request, len);
	Result r = {0};

	as_quic_client_request_async(client, bytes, NULL, request_cb, &r);
	wait_for(&r.done);
	if (r.error != NULL)
		g_propagate_error(error, r.error);
	return r.reply;
}

static void
assert_received(Fixture *fx, const gchar *name, GBytes *bytes)
{
	TestFile *f = g_hash_table_lookup(fx->files, name);
	g_autofree gchar *expected = bytes_sha256(bytes);

	g_assert_nonnull(f);
	g_assert_cmpuint(f->size, ==, g_bytes_get_size(bytes));
	g_assert_cmpstr(f->sha256, ==, expected);
}

/* ---- tests ---- */

static void
as_quic_upload_func(Fixture *fx, gconstpointer user_data)
{
	const gchar *alpns[] = {AS_QUIC_ALPN_V1, AS_QUIC_ALPN_LEGACY};

	for (guint i = 0; i < G_N_ELEMENTS(alpns); i++) {
		g_autoptr(AsQuicClient) client = fixture_client(fx, NULL);
		g_autoptr(GBytes) bytes = as_test_random_bytes(3 * 1024 * 1024 + 17, i + 1);
		g_autofree gchar *sha = bytes_sha256(bytes);
		g_autofree gchar *name = g_strdup_printf("file-%u.bin", i);
		TestFile *f;
		Result r = {0};

		as_quic_client_set_alpn(client, alpns[i]);
		upload_bytes(client, name, bytes, "tok", sha, &r);
		g_assert_no_error(r.error);
		g_assert_cmpstr(r.reply, ==, "SUCCESS");
		assert_received(fx, name, bytes);
		f = g_hash_table_lookup(fx->files, name);
		g_assert_cmpstr(f->alpn, ==, alpns[i]);
		g_assert_true(g_str_has_prefix(f->peer, "127.0.0.1:"));
		g_assert_cmpstr(as_quic_client_get_peer_fingerprint(client), ==,
				as_tls_identity_get_fingerprint(fx->identity));
		result_clear(&r);
	}
	g_assert_cmpuint(fx->n_abort, ==, 0);
}

static void
as_quic_tls_identity_func(void)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *tmpdir = g_dir_make_tmp("as-quic-id-XXXXXX", &error);
	g_autofree gchar *state = g_build_filename(tmpdir, "state", NULL);
	g_autofree gchar *cert_pem = NULL;
	g_autofree gchar *key_file = NULL;
	g_autofree gchar *cert_file = NULL;
	g_autofree gchar *fp = NULL;
	g_autoptr(AsTlsIdentity) id1 = NULL;
	g_autoptr(AsTlsIdentity) id2 = NULL;
	g_autoptr(AsTlsIdentity) id3 = NULL;
	g_autoptr(AsTlsIdentity) none = NULL;
	guint8 secret1[32];
	guint8 secret2[32];
	guint8 secret3[32];
	gnutls_x509_crt_t crt;
	gnutls_datum_t datum;
	gnutls_datum_t der = {NULL, 0};
	gsize len = 0;
	struct stat st;

	g_assert_no_error(error);
	id1 = as_tls_identity_load_or_generate(state, &error);
	g_assert_no_error(error);
	g_assert_true(as_tls_identity_get_generated(id1));
	g_assert_true(as_sha256_hex_is_valid(as_tls_identity_get_fingerprint(id1)));
	g_assert_nonnull(as_tls_identity_get_credentials(id1));

	/* the key is private, the directory too */
	key_file = g_build_filename(state, AS_TLS_IDENTITY_KEY_FILENAME, NULL);
	cert_file = g_build_filename(state, AS_TLS_IDENTITY_CERT_FILENAME, NULL);
	g_assert_cmpint(g_stat(key_file, &st), ==, 0);
	g_assert_cmpint(st.st_mode & 0777, ==, 0600);
	g_assert_cmpint(g_stat(state, &st), ==, 0);
	g_assert_cmpint(st.st_mode & 0077, ==, 0);

	/* the fingerprint is SHA-256 over the DER certificate; SANs cover localhost and loopback */
	g_assert_true(g_file_get_contents(cert_file, &cert_pem, &len, &error));
	datum.data = (guchar *)cert_pem;
	datum.size = (guint)len;
	g_assert_cmpint(gnutls_x509_crt_init(&crt), ==, 0);
	g_assert_cmpint(gnutls_x509_crt_import(crt, &datum, GNUTLS_X509_FMT_PEM), ==, 0);
	g_assert_cmpint(gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_DER, &der), ==, 0);
	fp = as_sha256_data_hex(der.data, der.size);
	g_assert_cmpstr(fp, ==, as_tls_identity_get_fingerprint(id1));
	g_assert_true(gnutls_x509_crt_check_hostname(crt, "localhost"));
	g_assert_true(gnutls_x509_crt_check_hostname(crt, "127.0.0.1"));
	g_assert_cmpint(gnutls_x509_crt_get_pk_algorithm(crt, NULL), ==, GNUTLS_PK_ECDSA);
	g_assert_cmpint(gnutls_x509_crt_get_expiration_time(crt) - time(NULL), >,
			(time_t)(AS_TLS_IDENTITY_VALIDITY_DAYS - 1) * 24 * 3600);
	gnutls_free(der.data);
	gnutls_x509_crt_deinit(crt);

	/* generated once: the next start reuses it */
	id2 = as_tls_identity_load_or_generate(state, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(as_tls_identity_get_fingerprint(id1), ==,
			as_tls_identity_get_fingerprint(id2));
	as_tls_identity_derive_secret(id1, "a", secret1, sizeof(secret1));
	as_tls_identity_derive_secret(id2, "a", secret2, sizeof(secret2));
	as_tls_identity_derive_secret(id2, "b", secret3, sizeof(secret3));
	g_assert_cmpmem(secret1, sizeof(secret1), secret2, sizeof(secret2));
	g_assert_true(memcmp(secret2, secret3, sizeof(secret2)) != 0);

	/* the same files given explicitly */
	id3 = as_tls_identity_new_for_options(cert_file, key_file, state, &error);
	g_assert_no_error(error);
	g_assert_false(as_tls_identity_get_generated(id3));
	g_assert_cmpstr(as_tls_identity_get_fingerprint(id3), ==,
			as_tls_identity_get_fingerprint(id1));

	/* only one of the two options */
	none = as_tls_identity_new_for_options(cert_file, NULL, state, &error);
	g_assert_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT);
	g_assert_null(none);
	g_clear_error(&error);

	/* a damaged identity is an error, never silently replaced (that would break every pin) */
	g_assert_true(g_file_set_contents(cert_file, "garbage", -1, &error));
	none = as_tls_identity_load_or_generate(state, &error);
	g_assert_nonnull(error);
	g_assert_null(none);
	g_clear_error(&error);

	as_test_rm_rf(tmpdir);
}

/* an RSA key in PKCS#1 PEM ("BEGIN RSA PRIVATE KEY") and a self-signed certificate for it */
static void
write_rsa_identity(const gchar *cert_file, const gchar *key_file)
{
	gnutls_x509_privkey_t key;
	gnutls_x509_crt_t crt;
	gnutls_datum_t key_pem = {NULL, 0};
	gnutls_datum_t cert_pem = {NULL, 0};
	guint8 serial[8] = {1, 2, 3, 4, 5, 6, 7, 8};
	g_autoptr(GError) error = NULL;

	g_assert_cmpint(gnutls_x509_privkey_init(&key), ==, 0);
	g_assert_cmpint(gnutls_x509_privkey_generate(key, GNUTLS_PK_RSA, 2048, 0), ==, 0);
	g_assert_cmpint(gnutls_x509_privkey_export2(key, GNUTLS_X509_FMT_PEM, &key_pem), ==, 0);
	g_assert_nonnull(
		g_strstr_len((const gchar *)key_pem.data, key_pem.size, "RSA PRIVATE KEY"));
	g_assert_cmpint(gnutls_x509_crt_init(&crt), ==, 0);
	g_assert_cmpint(gnutls_x509_crt_set_version(crt, 3), ==, 0);
	g_assert_cmpint(gnutls_x509_crt_set_serial(crt, serial, sizeof(serial)), ==, 0);
	g_assert_cmpint(gnutls_x509_crt_set_activation_time(crt, time(NULL) - 60), ==, 0);
	g_assert_cmpint(gnutls_x509_crt_set_expiration_time(crt, time(NULL) + 3600), ==, 0);
	g_assert_cmpint(
		gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, "rsa", 3), ==,
		0);
	g_assert_cmpint(gnutls_x509_crt_set_key(crt, key), ==, 0);
	g_assert_cmpint(gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA256, 0), ==, 0);
	g_assert_cmpint(gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &cert_pem), ==, 0);
	g_assert_true(
		g_file_set_contents(key_file, (const gchar *)key_pem.data, key_pem.size, &error));
	g_assert_true(g_file_set_contents(cert_file, (const gchar *)cert_pem.data, cert_pem.size,
					  &error));
	gnutls_free(key_pem.data);
	gnutls_free(cert_pem.data);
	gnutls_x509_crt_deinit(crt);
	gnutls_x509_privkey_deinit(key);
}

static void
as_quic_rsa_identity_func(Fixture *fx, gconstpointer user_data)
{
	g_autofree gchar *cert_file = g_build_filename(fx->tmpdir, "rsa-cert.pem", NULL);
	g_autofree gchar *key_file = g_build_filename(fx->tmpdir, "rsa-key.pem", NULL);
	g_autofree gchar *other_key = g_build_filename(fx->tmpdir, "state", "key.pem", NULL);
	g_autoptr(GError) error = NULL;
	g_autoptr(AsTlsIdentity) rsa = NULL;
	g_autoptr(AsTlsIdentity) mismatched = NULL;
	g_autoptr(AsQuicClient) client = NULL;
	g_autoptr(GBytes) bytes = as_test_random_bytes(100000, 7);
	Result r = {0};

	write_rsa_identity(cert_file, key_file);
	rsa = as_tls_identity_new_from_files(cert_file, key_file, &error);
	g_assert_no_error(error);

	/* a key that belongs to another certificate */
	mismatched = as_tls_identity_new_from_files(cert_file, other_key, &error);
	g_assert_nonnull(error);
	g_assert_null(mismatched);
	g_clear_error(&error);

	/* serve with the RSA identity */
	g_clear_object(&fx->server);
	g_set_object(&fx->identity, rsa);
	fixture_start_server(fx, "127.0.0.1");
	client = fixture_client(fx, NULL);
	upload_bytes(client, "rsa.bin", bytes, NULL, NULL, &r);
	g_assert_no_error(r.error);
	g_assert_cmpstr(r.reply, ==, "SUCCESS");
	g_assert_cmpstr(as_quic_client_get_peer_fingerprint(client), ==,
			as_tls_identity_get_fingerprint(rsa));
	assert_received(fx, "rsa.bin", bytes);
	result_clear(&r);
}

static void
as_quic_hash_split_func(Fixture *fx, gconstpointer user_data)
{
	g_autoptr(AsQuicClient) client = fixture_client(fx, NULL);
	g_autoptr(GBytes) bytes = as_test_random_bytes(3000, 11);
	g_autofree gchar *sha = bytes_sha256(bytes);
	AsQuicServerStats stats;

	/* UPLOAD lines of 1000 to 1500 bytes put the end of the header, and the HASH line, across
	 * the boundary of the first packet of the stream at some point of the sweep */
	for (guint len = 1000; len <= 1500; len += 5) {
		g_autofree gchar *fill = g_strnfill(len, 'n');
		g_autofree gchar *name = g_strdup_printf("%04u-%s", len, fill);
		Result r = {0};

		upload_bytes(client, name, bytes, "tok", sha, &r);
		g_assert_no_error(r.error);
		g_assert_cmpstr(r.reply, ==, "SUCCESS");
		assert_received(fx, name, bytes);
		result_clear(&r);
	}
	as_quic_server_get_stats(fx->server, &stats);
	g_assert_cmpuint(stats.headers_fragmented, >, 0);
	g_assert_cmpuint(stats.uploads_failed, ==, 0);
	g_assert_cmpuint(fx->n_abort, ==, 0);
}

static void
as_quic_header_with_data_func(Fixture *fx, gconstpointer user_data)
{
	g_autoptr(AsQuicClient) client = fixture_client(fx, NULL);
	g_autoptr(GBytes) bytes = as_test_random_bytes(600, 12);
	g_autofree gchar *sha = bytes_sha256(bytes);
	AsQuicServerStats stats;
	Result r = {0};

	/* header, HASH line and the whole body in the first packet of the stream */
	upload_bytes(client, "small.bin", bytes, NULL, sha, &r);
	g_assert_no_error(r.error);
	g_assert_cmpstr(r.reply, ==, "SUCCESS");
	assert_received(fx, "small.bin", bytes);
	as_quic_server_get_stats(fx->server, &stats);
	g_assert_cmpuint(stats.headers_fragmented, ==, 0);
	result_clear(&r);

	/* an empty file */
	{
		g_autoptr(GBytes) empty = g_bytes_new(NULL, 0);
		g_autofree gchar *empty_sha = bytes_sha256(empty);
		upload_bytes(client, "empty", empty, NULL, empty_sha, &r);
		g_assert_no_error(r.error);
		assert_received(fx, "empty", empty);
		result_clear(&r);
	}
}

static void
as_quic_wrong_hash_func(Fixture *fx, gconstpointer user_data)
{
	g_autoptr(AsQuicClient) client = fixture_client(fx, NULL);
	g_autoptr(GBytes) bytes = as_test_random_bytes(200000, 13);
	g_autoptr(GBytes) other = as_test_random_bytes(200000, 14);
	g_autofree gchar *wrong = bytes_sha256(other);
	Result r = {0};

	fx->reply_later = TRUE;
	upload_bytes(client, "wrong.bin", bytes, NULL, wrong, &r);
	g_assert_error(r.error, AS_ERROR, AS_ERROR_HASH_MISMATCH);
	g_assert_null(r.reply);
	g_assert_cmpuint(fx->n_end, ==, 1);
	g_assert_cmpuint(fx->n_abort, ==, 0);
	result_clear(&r);
}

static void
as_quic_truncated_func(Fixture *fx, gconstpointer user_data)
{
	g_autoptr(AsQuicClient) client = fixture_client(fx, NULL);
	g_autoptr(GError) error = NULL;
	g_autofree gchar *x50 = g_strnfill(50, 'x');
	g_autofree gchar *y20 = g_strnfill(20, 'y');
	g_autofree gchar *short_req = g_strdup_printf("UPLOAD:t.bin:100\n%s", x50);
	g_autofree gchar *long_req = g_strdup_printf("UPLOAD:l.bin:10\n%s", y20);
	g_autofree gchar *hello_sha = as_sha256_data_hex("hello", 5);
	g_autofree gchar *hash_req =
		g_strdup_printf("UPLOAD:h.bin:5:tok:rcpt\nHASH:%s\nhello", hello_sha);
	g_autofree gchar *reply = NULL;
	TestFile *f;

	/* FIN before the announced size */
	reply = request_bytes(client, short_req, strlen(short_req), &error);
	g_assert_no_error(error);
	g_assert_true(g_str_has_prefix(reply, "ERROR:Incomplete"));
	g_assert_cmpuint(fx->n_abort, ==, 1);
	g_assert_nonnull(strstr(fx->last_abort_reason, "50 of 100"));
	g_assert_cmpuint(fx->n_end, ==, 0);
	g_clear_pointer(&reply, g_free);

	/* more than announced */
	reply = request_bytes(client, long_req, strlen(long_req), &error);
	g_assert_no_error(error);
	g_assert_true(g_str_has_prefix(reply, "ERROR:Invalid request"));
	g_assert_cmpuint(fx->n_abort, ==, 2);
	g_clear_pointer(&reply, g_free);

	/* not our protocol: refused before the ingest sees anything */
	reply = request_bytes(client, "GET / HTTP/1.1\r\n\r\n", 18, &error);
	g_assert_no_error(error);
	g_assert_true(g_str_has_prefix(reply, "ERROR:Invalid request"));
	g_assert_cmpuint(fx->n_begin, ==, 2);
	g_clear_pointer(&reply, g_free);

	/* FIN inside the header */
	reply = request_bytes(client, "UPLOAD:x:5", 10, &error);
	g_assert_no_error(error);
	g_assert_true(g_str_has_prefix(reply, "ERROR:Invalid request"));
	g_assert_cmpuint(fx->n_begin, ==, 2);
	g_clear_pointer(&reply, g_free);

	/* the exact bytes of a 0.2+ sender: the HASH line is checked and never stored */
	reply = request_bytes(client, hash_req, strlen(hash_req), &error);
	g_assert_no_error(error);
	g_assert_cmpstr(reply, ==, "SUCCESS");
	f = g_hash_table_lookup(fx->files, "h.bin");
	g_assert_nonnull(f);
	g_assert_cmpuint(f->size, ==, 5);
	g_assert_cmpstr(f->sha256, ==, hello_sha);
	g_clear_pointer(&reply, g_free);

	/* the ingest's size limit, with the 0.x text */
	reply = request_bytes(client, "UPLOAD:big:2000000000\n", 22, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(reply, ==, "ERROR:File too large: 2000000000");
}

static void
as_quic_bad_token_func(Fixture *fx, gconstpointer user_data)
{
	g_autoptr(AsQuicClient) client = fixture_client(fx, NULL);
	g_autoptr(GBytes) bytes = as_test_random_bytes(8 * 1024 * 1024, 15);
	g_autoptr(GBytes) small = as_test_random_bytes(1000, 16);
	AsQuicClientStats stats;
	Result r = {0};

	upload_bytes(client, "secret.bin", bytes, "bad", NULL, &r);
	g_assert_error(r.error, AS_ERROR, AS_ERROR_PERMISSION_DENIED);
	g_assert_nonnull(strstr(r.error->message, "Unauthorized"));
	/* refused at the header: nothing reached the ingest, no handle to abort */
	g_assert_cmpuint(fx->bytes_received, ==, 0);
	g_assert_cmpuint(fx->n_abort, ==, 0);
	result_clear(&r);

	/* the sender was told to stop: far less than the file crossed */
	as_quic_client_get_stats(client, &stats);
	g_assert_cmpuint(stats.body_bytes_sent, <, 8 * 1024 * 1024);

	/* the connection is still good for the next upload */
	upload_bytes(client, "ok.bin", small, "tok", NULL, &r);
	g_assert_no_error(r.error);
	assert_received(fx, "ok.bin", small);
	as_quic_client_get_stats(client, &stats);
	g_assert_cmpuint(stats.connections, ==, 1);
	result_clear(&r);
}

#define MANY_FILES 50

static void
as_quic_many_files_func(Fixture *fx, gconstpointer user_data)
{
	g_autoptr(AsQuicClient) client = fixture_client(fx, NULL);
	g_autoptr(GPtrArray) blobs = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
	Result results[MANY_FILES] = {{0}};
	AsQuicClientStats stats;
	AsQuicServerStats server_stats;
	guint64 connection_id = 0;

	fx->reply_later = TRUE;
	for (guint i = 0; i < MANY_FILES; i++) {
		gsize len = i % 10 == 0 ? 2 * 1024 * 1024 + i : (i * 7919) % 300000;
		GBytes *bytes = as_test_random_bytes(len, 100 + i);
		g_autofree gchar *name = g_strdup_printf("many-%02u", i);
		g_autofree gchar *sha = i % 2 == 0 ? bytes_sha256(bytes) : NULL;

		g_ptr_array_add(blobs, bytes);
		upload_bytes_async(client, name, bytes, "tok", sha, &results[i]);
	}
	for (guint i = 0; i < MANY_FILES; i++) {
		g_autofree gchar *name = g_strdup_printf("many-%02u", i);
		TestFile *f;

		wait_for(&results[i].done);
		g_assert_no_error(results[i].error);
		g_assert_cmpstr(results[i].reply, ==, "SUCCESS");
		assert_received(fx, name, g_ptr_array_index(blobs, i));
		f = g_hash_table_lookup(fx->files, name);
		if (connection_id == 0)
			connection_id = f->connection_id;
		g_assert_cmpuint(f->connection_id, ==, connection_id);
		result_clear(&results[i]);
	}
	/* one connection, many streams */
	as_quic_client_get_stats(client, &stats);
	g_assert_cmpuint(stats.connections, ==, 1);
	g_assert_cmpuint(stats.uploads_completed, ==, MANY_FILES);
	as_quic_server_get_stats(fx->server, &server_stats);
	g_assert_cmpuint(server_stats.connections_accepted, ==, 1);
	g_assert_cmpuint(server_stats.uploads_completed, ==, MANY_FILES);
}

static void
as_quic_pin_func(Fixture *fx, gconstpointer user_data)
{
	g_autoptr(AsQuicClient) wrong = as_quic_client_new("127.0.0.1", fx->port);
	g_autoptr(AsQuicClient) system_ca = as_quic_client_new("127.0.0.1", fx->port);
	g_autoptr(AsQuicClient) own_ca = as_quic_client_new("localhost", fx->port);
	g_autoptr(AsQuicClient) insecure = as_quic_client_new("127.0.0.1", fx->port);
	g_autoptr(GBytes) bytes = as_test_random_bytes(1000, 17);
	g_autofree gchar *cert_file = g_build_filename(fx->tmpdir, "state", "cert.pem", NULL);
	Result r = {0};

	as_quic_client_set_handshake_timeout_ms(wrong, 10000);
	as_quic_client_set_handshake_timeout_ms(system_ca, 10000);
	as_quic_client_set_handshake_timeout_ms(own_ca, 10000);
	as_quic_client_set_handshake_timeout_ms(insecure, 10000);

	/* a pin that does not match: refused, nothing uploaded */
	as_quic_client_set_pin(wrong, "00000000000000000000000000000000"
				      "00000000000000000000000000000000");
	as_quic_client_connect_async(wrong, NULL, connect_cb, &r);
	wait_for(&r.done);
	g_assert_error(r.error, AS_ERROR, AS_ERROR_PERMISSION_DENIED);
	g_assert_nonnull(strstr(r.error->message, as_tls_identity_get_fingerprint(fx->identity)));
	result_clear(&r);
	upload_bytes(wrong, "never.bin", bytes, NULL, NULL, &r);
	g_assert_error(r.error, AS_ERROR, AS_ERROR_PERMISSION_DENIED);
	g_assert_cmpuint(fx->n_begin, ==, 0);
	result_clear(&r);

	/* no pin, no CA that signed it: the default is to verify, so refused */
	as_quic_client_connect_async(system_ca, NULL, connect_cb, &r);
	wait_for(&r.done);
	g_assert_error(r.error, AS_ERROR, AS_ERROR_PERMISSION_DENIED);
	result_clear(&r);

	/* CA verification with the certificate as trust anchor, by name */
	as_quic_client_set_ca_file(own_ca, cert_file);
	upload_bytes(own_ca, "ca.bin", bytes, NULL, NULL, &r);
	g_assert_no_error(r.error);
	assert_received(fx, "ca.bin", bytes);
	result_clear(&r);

	/* insecure only when asked, and the fingerprint is still reported */
	as_quic_client_set_insecure(insecure, TRUE);
	{
		/* it logs a warning for every such connection: not fatal here */
		GLogLevelFlags fatal =
			g_log_set_always_fatal(G_LOG_FATAL_MASK | G_LOG_LEVEL_CRITICAL);
		as_quic_client_connect_async(insecure, NULL, connect_cb, &r);
		wait_for(&r.done);
		g_log_set_always_fatal(fatal);
	}
	g_assert_no_error(r.error);
	g_assert_cmpstr(as_quic_client_get_peer_fingerprint(insecure), ==,
			as_tls_identity_get_fingerprint(fx->identity));
	result_clear(&r);
}

static void
as_quic_alpn_refused_func(Fixture *fx, gconstpointer user_data)
{
	g_autoptr(AsQuicClient) h3 = fixture_client(fx, NULL);
	g_autoptr(AsQuicClient) good = fixture_client(fx, NULL);
	g_autoptr(GBytes) bytes = as_test_random_bytes(1000, 18);
	Result r = {0};

	as_quic_client_set_alpn(h3, "h3");
	as_quic_client_connect_async(h3, NULL, connect_cb, &r);
	wait_for(&r.done);
	g_assert_error(r.error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED);
	result_clear(&r);
	upload_bytes(good, "after.bin", bytes, NULL, NULL, &r);
	g_assert_no_error(r.error);
	result_clear(&r);
}

static void
as_quic_unreachable_func(void)
{
	g_autoptr(GSocket) silent = NULL;
	g_autoptr(GSocketAddress) any = NULL;
	g_autoptr(GSocketAddress) bound = NULL;
	g_autoptr(GInetAddress) lo = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
	g_autoptr(GError) error = NULL;
	g_autoptr(AsQuicClient) refused = NULL;
	g_autoptr(AsQuicClient) timeout = NULL;
	guint16 port;
	gint64 t0;
	Result r = {0};

	/* a UDP port where something is bound but never answers (a firewall that drops) */
	silent = g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_DATAGRAM, G_SOCKET_PROTOCOL_UDP,
			      &error);
	g_assert_no_error(error);
	any = g_inet_socket_address_new(lo, 0);
	g_assert_true(g_socket_bind(silent, any, FALSE, &error));
	bound = g_socket_get_local_address(silent, &error);
	port = g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(bound));

	timeout = as_quic_client_new("127.0.0.1", port);
	as_quic_client_set_insecure(timeout, TRUE);
	as_quic_client_set_handshake_timeout_ms(timeout, 500);
	t0 = g_get_monotonic_time();
	as_quic_client_connect_async(timeout, NULL, connect_cb, &r);
	wait_for(&r.done);
	g_assert_error(r.error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
	g_assert_cmpint(g_get_monotonic_time() - t0, >=, 400 * 1000);
	g_assert_cmpint(g_get_monotonic_time() - t0, <, 3 * G_USEC_PER_SEC);
	result_clear(&r);

	/* nothing bound at all: the ICMP error ends it at once */
	g_clear_object(&silent);
	refused = as_quic_client_new("127.0.0.1", port);
	as_quic_client_set_insecure(refused, TRUE);
	t0 = g_get_monotonic_time();
	as_quic_client_connect_async(refused, NULL, connect_cb, &r);
	wait_for(&r.done);
	g_assert_error(r.error, G_IO_ERROR, G_IO_ERROR_CONNECTION_REFUSED);
	g_assert_cmpint(g_get_monotonic_time() - t0, <, 2 * G_USEC_PER_SEC);
	result_clear(&r);

	/* a name that does not resolve: refused by the resolver, or, with no DNS reachable, given
	 * up at the deadline, which covers the lookup too */
	{
		g_autoptr(AsQuicClient) nxdomain = as_quic_client_new("does-not-exist.invalid", 1);
		as_quic_client_set_handshake_timeout_ms(nxdomain, 2000);
		t0 = g_get_monotonic_time();
		as_quic_client_connect_async(nxdomain, NULL, connect_cb, &r);
		wait_for(&r.done);
		g_assert_nonnull(r.error);
		g_assert_true(g_error_matches(r.error, G_IO_ERROR, G_IO_ERROR_HOST_NOT_FOUND) ||
			      g_error_matches(r.error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT));
		g_assert_cmpint(g_get_monotonic_time() - t0, <, 3 * G_USEC_PER_SEC);
		result_clear(&r);
	}
}

/* a resolver that never answers, as with no DNS server reachable */
typedef struct {
	GResolver parent_instance;
} TestSlowResolver;

typedef struct {
	GResolverClass parent_class;
} TestSlowResolverClass;

static GType test_slow_resolver_get_type(void);
G_DEFINE_TYPE(TestSlowResolver, test_slow_resolver, G_TYPE_RESOLVER)

static void
test_slow_resolver_cancelled_cb(GCancellable *cancellable, GTask *task)
{
	g_task_return_error_if_cancelled(task);
}

static void
test_slow_resolver_lookup_by_name_async(GResolver *resolver,
					const gchar *hostname,
					GCancellable *cancellable,
					GAsyncReadyCallback callback,
					gpointer user_data)
{
	GTask *task = g_task_new(resolver, cancellable, callback, user_data);

	g_assert_nonnull(cancellable);
	g_cancellable_connect(cancellable, G_CALLBACK(test_slow_resolver_cancelled_cb), task,
			      g_object_unref);
}

static GList *
test_slow_resolver_lookup_by_name_finish(GResolver *resolver, GAsyncResult *res, GError **error)
{
	return g_task_propagate_pointer(G_TASK(res), error);
}

static void
test_slow_resolver_class_init(TestSlowResolverClass *klass)
{
	GResolverClass *resolver_class = G_RESOLVER_CLASS(klass);
	resolver_class->lookup_by_name_async = test_slow_resolver_lookup_by_name_async;
	resolver_class->lookup_by_name_finish = test_slow_resolver_lookup_by_name_finish;
}

static void
test_slow_resolver_init(TestSlowResolver *self)
{
}

static void
as_quic_resolve_timeout_func(void)
{
	g_autoptr(GResolver) saved = g_resolver_get_default();
	g_autoptr(GResolver) slow = g_object_new(test_slow_resolver_get_type(), NULL);
	g_autoptr(AsQuicClient) client = as_quic_client_new("quic.example", 7789);
	gint64 t0 = g_get_monotonic_time();
	Result r = {0};

	g_resolver_set_default(slow);
	as_quic_client_set_insecure(client, TRUE);
	as_quic_client_set_handshake_timeout_ms(client, 300);
	as_quic_client_connect_async(client, NULL, connect_cb, &r);
	wait_for(&r.done);
	g_resolver_set_default(saved);
	g_assert_error(r.error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
	g_assert_cmpint(g_get_monotonic_time() - t0, >=, 250 * 1000);
	g_assert_cmpint(g_get_monotonic_time() - t0, <, 2 * G_USEC_PER_SEC);
	result_clear(&r);
}

static gboolean
ipv6_available(void)
{
	g_autoptr(GSocket) sock = g_socket_new(G_SOCKET_FAMILY_IPV6, G_SOCKET_TYPE_DATAGRAM,
					       G_SOCKET_PROTOCOL_UDP, NULL);
	g_autoptr(GInetAddress) lo = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV6);
	g_autoptr(GSocketAddress) sa = g_inet_socket_address_new(lo, 0);
	return sock != NULL && g_socket_bind(sock, sa, FALSE, NULL);
}

static void
as_quic_dual_stack_func(Fixture *fx, gconstpointer user_data)
{
	const gchar *hosts[] = {"127.0.0.1", "localhost", "::1", "[::1]"};
	gboolean v6 = ipv6_available();

	for (guint i = 0; i < G_N_ELEMENTS(hosts); i++) {
		g_autoptr(AsQuicClient) client = NULL;
		g_autoptr(GBytes) bytes = as_test_random_bytes(50000, 20 + i);
		g_autofree gchar *name = g_strdup_printf("dual-%u", i);
		Result r = {0};

		if (!v6 && strchr(hosts[i], ':') != NULL)
			continue;
		client = fixture_client(fx, hosts[i]);
		upload_bytes(client, name, bytes, NULL, NULL, &r);
		g_assert_no_error(r.error);
		assert_received(fx, name, bytes);
		if (strchr(hosts[i], ':') != NULL) {
			TestFile *f = g_hash_table_lookup(fx->files, name);
			g_assert_true(g_str_has_prefix(f->peer, "[::1]:"));
		}
		result_clear(&r);
	}
	if (!v6)
		g_test_incomplete("no IPv6 loopback here: only IPv4 was tested");
}

static void
as_quic_retry_func(Fixture *fx, gconstpointer user_data)
{
	g_autoptr(AsQuicClient) client = fixture_client(fx, NULL);
	g_autoptr(GBytes) bytes = as_test_random_bytes(300000, 30);
	AsQuicServerStats stats;
	Result r = {0};

	/* every new client has to prove its address first */
	as_quic_server_set_retry_threshold(fx->server, 0);
	upload_bytes(client, "retry.bin", bytes, NULL, NULL, &r);
	g_assert_no_error(r.error);
	assert_received(fx, "retry.bin", bytes);
	as_quic_server_get_stats(fx->server, &stats);
	g_assert_cmpuint(stats.retries_sent, >=, 1);
	g_assert_cmpuint(stats.connections_accepted, ==, 1);
	result_clear(&r);
}

static GSocket *
raw_udp_socket(void)
{
	g_autoptr(GError) error = NULL;
	GSocket *sock = g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_DATAGRAM,
				     G_SOCKET_PROTOCOL_UDP, &error);
	g_assert_no_error(error);
	g_socket_set_blocking(sock, FALSE);
	return sock;
}

static GSocketAddress *
fixture_server_address(Fixture *fx)
{
	g_autoptr(GInetAddress) lo = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
	return g_inet_socket_address_new(lo, fx->port);
}

/* waits for one datagram on @sock */
static gssize
raw_receive(GSocket *sock, guint8 *buf, gsize len)
{
	gint64 deadline = g_get_monotonic_time() + 2 * G_USEC_PER_SEC;

	while (g_get_monotonic_time() < deadline) {
		gssize n = g_socket_receive(sock, (gchar *)buf, len, NULL, NULL);
		if (n >= 0)
			return n;
		g_main_context_iteration(NULL, FALSE);
		g_usleep(1000);
	}
	return -1;
}

static void
as_quic_stateless_func(Fixture *fx, gconstpointer user_data)
{
	g_autoptr(GSocket) sock = raw_udp_socket();
	g_autoptr(GSocketAddress) server = fixture_server_address(fx);
	guint8 pkt[1200];
	guint8 buf[2048];
	AsQuicServerStats stats;
	gssize n;

	/* an unknown version: Version Negotiation listing version 1 */
	memset(pkt, 0, sizeof(pkt));
	pkt[0] = 0xc0;
	pkt[1] = 0x1a;
	pkt[2] = 0x2a;
	pkt[3] = 0x3a;
	pkt[4] = 0x4a;
	pkt[5] = 8;
	memset(pkt + 6, 0xaa, 8);
	pkt[14] = 8;
	memset(pkt + 15, 0xbb, 8);
	g_assert_cmpint(g_socket_send_to(sock, server, (gchar *)pkt, sizeof(pkt), NULL, NULL), ==,
			sizeof(pkt));
	n = raw_receive(sock, buf, sizeof(buf));
	g_assert_cmpint(n, >, 7);
	g_assert_true(buf[0] & 0x80);
	g_assert_cmpint(buf[1] | buf[2] | buf[3] | buf[4], ==, 0);
	/* its DCID is our SCID */
	g_assert_cmpint(buf[5], ==, 8);
	g_assert_cmpint(buf[6], ==, 0xbb);

	/* a short header for a connection the server does not know: a stateless reset, smaller */
	for (guint i = 0; i < 60; i++)
		pkt[i] = (guint8)g_random_int();
	pkt[0] = (pkt[0] & 0x3f) | 0x40;
	g_assert_cmpint(g_socket_send_to(sock, server, (gchar *)pkt, 60, NULL, NULL), ==, 60);
	n = raw_receive(sock, buf, sizeof(buf));
	g_assert_cmpint(n, >=, 21);
	g_assert_cmpint(n, <, 60);
	g_assert_cmpint(buf[0] & 0xc0, ==, 0x40);

	as_quic_server_get_stats(fx->server, &stats);
	g_assert_cmpuint(stats.version_negotiations_sent, ==, 1);
	g_assert_cmpuint(stats.stateless_resets_sent, ==, 1);
	g_assert_cmpuint(stats.n_connections, ==, 0);
}

static gsize
self_rss_kib(void)
{
	g_autofree gchar *status = NULL;
	const gchar *p;

	g_assert_true(g_file_get_contents("/proc/self/status", &status, NULL, NULL));
	p = strstr(status, "VmRSS:");
	g_assert_nonnull(p);
	return (gsize)g_ascii_strtoull(p + 6, NULL, 10);
}

/* a datagram shaped like a client Initial of version 1, with garbage where the crypto goes */
static gsize
fake_initial(guint8 *pkt, GRand *rand)
{
	gsize len = 1200;
	guint8 dcidlen = (guint8)g_rand_int_range(rand, 8, 21);
	guint8 scidlen = (guint8)g_rand_int_range(rand, 0, 21);
	gsize off = 0;

	for (gsize i = 0; i < len; i++)
		pkt[i] = (guint8)g_rand_int(rand);
	pkt[off++] = 0xc0 | (pkt[0] & 0x03);
	pkt[off++] = 0;
	pkt[off++] = 0;
	pkt[off++] = 0;
	pkt[off++] = 1;
	pkt[off++] = dcidlen;
	off += dcidlen;
	pkt[off++] = scidlen;
	off += scidlen;
	pkt[off++] = 0; /* no token */
	/* two-byte varint length: the rest of the datagram */
	pkt[off] = 0x40 | (guint8)(((len - off - 2) >> 8) & 0x3f);
	pkt[off + 1] = (guint8)((len - off - 2) & 0xff);
	return len;
}

static void
flood(Fixture *fx, GSocket *sock, GSocketAddress *server, guint count, guint32 seed)
{
	GRand *rand = g_rand_new_with_seed(seed);
	guint8 pkt[1500];

	for (guint i = 0; i < count; i++) {
		gsize len;

		switch (i % 4) {
		case 0: /* noise of any size */
			len = (gsize)g_rand_int_range(rand, 1, 1500);
			for (gsize j = 0; j < len; j++)
				pkt[j] = (guint8)g_rand_int(rand);
			break;
		case 1: /* short headers for unknown connections */
			len = (gsize)g_rand_int_range(rand, 20, 1400);
			for (gsize j = 0; j < len; j++)
				pkt[j] = (guint8)g_rand_int(rand);
			pkt[0] = (pkt[0] & 0x3f) | 0x40;
			break;
		default: /* Initials that parse and then fail to decrypt */
			len = fake_initial(pkt, rand);
			break;
		}
		(void)g_socket_send_to(sock, server, (gchar *)pkt, len, NULL, NULL);
		if (i % 64 == 0) {
			while (g_main_context_iteration(NULL, FALSE))
				;
		}
	}
	g_rand_free(rand);
}

static gboolean
server_idle(Fixture *fx)
{
	AsQuicServerStats stats;
	as_quic_server_get_stats(fx->server, &stats);
	return stats.n_connections == 0 && stats.n_handshakes == 0;
}

static void
as_quic_flood_func(Fixture *fx, gconstpointer user_data)
{
	g_autoptr(GSocket) sock = raw_udp_socket();
	g_autoptr(GSocketAddress) server = fixture_server_address(fx);
	g_autoptr(AsQuicClient) client = NULL;
	g_autoptr(GBytes) bytes = as_test_random_bytes(100000, 40);
	AsQuicServerStats stats;
	gsize rss_after_first;
	gsize rss_after_second;
	gint64 deadline;
	Result r = {0};

	/* a low bound, so the flood also exercises stateless Retry */
	as_quic_server_set_retry_threshold(fx->server, 4);

	/* warm up allocator pools with a first flood, then check a second one costs nothing */
	flood(fx, sock, server, 10000, 1);
	deadline = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;
	while (!server_idle(fx) && g_get_monotonic_time() < deadline)
		g_main_context_iteration(NULL, FALSE);
	g_assert_true(server_idle(fx));
	rss_after_first = self_rss_kib();

	flood(fx, sock, server, 10000, 2);
	deadline = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;
	while (!server_idle(fx) && g_get_monotonic_time() < deadline)
		g_main_context_iteration(NULL, FALSE);
	g_assert_true(server_idle(fx));
	rss_after_second = self_rss_kib();
	g_test_message("RSS after floods: %" G_GSIZE_FORMAT " KiB, %" G_GSIZE_FORMAT " KiB",
		       rss_after_first, rss_after_second);
	g_assert_cmpuint(rss_after_second, <, rss_after_first + 2048);

	as_quic_server_get_stats(fx->server, &stats);
	g_test_message("flood: %" G_GUINT64_FORMAT " datagrams, %" G_GUINT64_FORMAT
		       " dropped, %" G_GUINT64_FORMAT " connections, %" G_GUINT64_FORMAT
		       " retries, %" G_GUINT64_FORMAT " resets",
		       stats.datagrams_received, stats.datagrams_dropped,
		       stats.connections_accepted, stats.retries_sent, stats.stateless_resets_sent);
	g_assert_cmpuint(stats.datagrams_received, >, 1000);
	/* the fake Initials went as far as a connection each, and were all thrown away */
	g_assert_cmpuint(stats.connections_accepted, >, 0);
	g_assert_cmpuint(stats.retries_sent, >, 0);
	g_assert_cmpuint(stats.stateless_resets_sent, >, 0);
	g_assert_cmpuint(stats.uploads_completed, ==, 0);
	g_assert_cmpuint(fx->n_begin, ==, 0);

	/* and it still serves */
	client = fixture_client(fx, NULL);
	upload_bytes(client, "after-flood.bin", bytes, NULL, NULL, &r);
	g_assert_no_error(r.error);
	assert_received(fx, "after-flood.bin", bytes);
	result_clear(&r);
}

static gboolean
resume_paused_cb(gpointer user_data)
{
	Fixture *fx = user_data;

	for (guint i = 0; i < fx->paused->len; i++)
		as_quic_server_resume_stream(fx->server, g_ptr_array_index(fx->paused, i));
	g_ptr_array_set_size(fx->paused, 0);
	return G_SOURCE_CONTINUE;
}

static void
as_quic_backpressure_func(Fixture *fx, gconstpointer user_data)
{
	g_autoptr(AsQuicClient) client = fixture_client(fx, NULL);
	g_autofree gchar *path = g_build_filename(fx->tmpdir, "big.bin", NULL);
	g_autoptr(GBytes) bytes = as_test_random_bytes(40 * 1024 * 1024, 50);
	g_autofree gchar *sha = bytes_sha256(bytes);
	g_autoptr(GError) error = NULL;
	guint resumer;
	int fd;
	Result r = {0};

	g_assert_true(g_file_set_contents(path, g_bytes_get_data(bytes, NULL),
					  g_bytes_get_size(bytes), &error));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	g_assert_cmpint(fd, >=, 0);

	/* a disk that takes nothing: the sender stops at the receive window */
	fx->pause = TRUE;
	as_quic_client_upload_fd_async(client, "big.bin", fd, 0, g_bytes_get_size(bytes), NULL, sha,
				       NULL, upload_cb, &r);
	close(fd);
	spin_ms(1000);
	g_assert_false(r.done);
	g_assert_cmpuint(fx->bytes_received, >, 0);
	g_assert_cmpuint(fx->bytes_received, <=, AS_QUIC_SERVER_STREAM_WINDOW);

	/* a slow disk: credit comes back every 5 ms, the upload completes */
	resumer = g_timeout_add(5, resume_paused_cb, fx);
	wait_for(&r.done);
	g_source_remove(resumer);
	g_assert_no_error(r.error);
	assert_received(fx, "big.bin", bytes);
	result_clear(&r);
}

static void
as_quic_cancel_func(Fixture *fx, gconstpointer user_data)
{
	g_autoptr(AsQuicClient) client = fixture_client(fx, NULL);
	g_autoptr(GBytes) bytes = as_test_random_bytes(32 * 1024 * 1024, 60);
	g_autoptr(GCancellable) cancellable = g_cancellable_new();
	g_autoptr(GInputStream) stream = g_memory_input_stream_new_from_bytes(bytes);
	g_autoptr(GBytes) small = as_test_random_bytes(1000, 61);
	gint64 deadline = g_get_monotonic_time() + TEST_TIMEOUT_MS * 1000;
	Result r = {0};

	fx->pause = TRUE;
	as_quic_client_upload_async(client, "cancel.bin", stream, g_bytes_get_size(bytes), NULL,
				    NULL, cancellable, upload_cb, &r);
	while (fx->bytes_received == 0) {
		g_assert_cmpint(g_get_monotonic_time(), <, deadline);
		g_main_context_iteration(NULL, TRUE);
	}
	g_cancellable_cancel(cancellable);
	wait_for(&r.done);
	g_assert_error(r.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
	result_clear(&r);
	/* the receiver learns of it and drops what it staged */
	while (fx->n_abort == 0) {
		g_assert_cmpint(g_get_monotonic_time(), <, deadline);
		g_main_context_iteration(NULL, TRUE);
	}
	g_assert_cmpuint(fx->n_end, ==, 0);

	/* other uploads on the connection are unaffected */
	fx->pause = FALSE;
	upload_bytes(client, "after-cancel.bin", small, NULL, NULL, &r);
	g_assert_no_error(r.error);
	result_clear(&r);
}

static void
as_quic_idle_timeout_func(Fixture *fx, gconstpointer user_data)
{
	g_autoptr(AsQuicClient) client = fixture_client(fx, NULL);
	g_autoptr(GBytes) bytes = as_test_random_bytes(1000, 70);
	AsQuicClientStats stats;
	gint64 deadline;
	Result r = {0};

	/* settings apply to the connections accepted after them */
	as_quic_server_set_idle_timeout_ms(fx->server, 300);
	as_quic_client_set_idle_timeout_ms(client, 300);
	upload_bytes(client, "idle-1", bytes, NULL, NULL, &r);
	g_assert_no_error(r.error);
	result_clear(&r);

	/* both ends forget the connection without a word */
	deadline = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;
	while ((!server_idle(fx) || as_quic_client_is_connected(client)) &&
	       g_get_monotonic_time() < deadline)
		g_main_context_iteration(NULL, TRUE);
	g_assert_true(server_idle(fx));
	g_assert_false(as_quic_client_is_connected(client));

	/* the next upload connects again */
	upload_bytes(client, "idle-2", bytes, NULL, NULL, &r);
	g_assert_no_error(r.error);
	as_quic_client_get_stats(client, &stats);
	g_assert_cmpuint(stats.connections, ==, 2);
	result_clear(&r);
}

static void
as_quic_slow_reply_func(Fixture *fx, gconstpointer user_data)
{
	g_autoptr(AsQuicClient) client = fixture_client(fx, NULL);
	g_autoptr(GBytes) bytes = as_test_random_bytes(100000, 75);
	AsQuicClientStats stats;
	Result r = {0};

	/* the receiver takes three idle timeouts to verify: keep-alives hold the connection */
	as_quic_server_set_idle_timeout_ms(fx->server, 300);
	as_quic_client_set_idle_timeout_ms(client, 300);
	fx->reply_later = TRUE;
	fx->reply_delay_ms = 900;
	upload_bytes(client, "slow.bin", bytes, NULL, NULL, &r);
	g_assert_no_error(r.error);
	g_assert_cmpstr(r.reply, ==, "SUCCESS");
	as_quic_client_get_stats(client, &stats);
	g_assert_cmpuint(stats.connections, ==, 1);
	result_clear(&r);
}

static void
as_quic_no_offload_func(Fixture *fx, gconstpointer user_data)
{
	g_autoptr(AsQuicClient) client = NULL;
	g_autoptr(GBytes) bytes = as_test_random_bytes(8 * 1024 * 1024 + 3, 85);
	g_autofree gchar *sha = bytes_sha256(bytes);
	Result r = {0};

	/* the path for kernels or devices without UDP GSO and GRO: one datagram per syscall */
	g_setenv("AS_QUIC_NO_GSO", "1", TRUE);
	g_setenv("AS_QUIC_NO_GRO", "1", TRUE);
	g_clear_object(&fx->server);
	fixture_start_server(fx, "127.0.0.1");
	client = fixture_client(fx, NULL);
	upload_bytes(client, "no-offload.bin", bytes, NULL, sha, &r);
	g_unsetenv("AS_QUIC_NO_GSO");
	g_unsetenv("AS_QUIC_NO_GRO");
	g_assert_no_error(r.error);
	assert_received(fx, "no-offload.bin", bytes);
	result_clear(&r);
}

static void
as_quic_server_close_func(Fixture *fx, gconstpointer user_data)
{
	g_autoptr(AsQuicClient) client = fixture_client(fx, NULL);
	g_autoptr(GBytes) bytes = as_test_random_bytes(16 * 1024 * 1024, 80);
	gint64 deadline = g_get_monotonic_time() + TEST_TIMEOUT_MS * 1000;
	Result r = {0};

	/* an upload in flight when the server goes away */
	fx->pause = TRUE;
	upload_bytes_async(client, "interrupted.bin", bytes, NULL, NULL, &r);
	while (fx->bytes_received == 0) {
		g_assert_cmpint(g_get_monotonic_time(), <, deadline);
		g_main_context_iteration(NULL, TRUE);
	}
	as_quic_server_close(fx->server);
	g_assert_cmpuint(fx->n_abort, ==, 1);
	wait_for(&r.done);
	g_assert_error(r.error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED);
	g_assert_false(as_quic_client_is_connected(client));
	result_clear(&r);
}

typedef struct {
	gboolean done;
	gchar *out;
	gchar *err;
} SubprocessResult;

static void
communicate_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	SubprocessResult *sr = user_data;
	g_autoptr(GError) error = NULL;

	g_subprocess_communicate_utf8_finish(G_SUBPROCESS(source), res, &sr->out, &sr->err, &error);
	g_assert_no_error(error);
	sr->done = TRUE;
}

static void
as_quic_gtlsclient_func(Fixture *fx, gconstpointer user_data)
{
	g_autofree gchar *gtlsclient = g_find_program_in_path("gtlsclient");
	g_autofree gchar *port = g_strdup_printf("%u", fx->port);
	g_autofree gchar *url = g_strdup_printf("https://127.0.0.1:%u/", fx->port);
	g_autoptr(GError) error = NULL;
	g_autoptr(GSubprocess) proc = NULL;
	g_autoptr(AsQuicClient) client = NULL;
	g_autoptr(GBytes) bytes = as_test_random_bytes(1000, 90);
	SubprocessResult sr = {0};
	AsQuicServerStats stats;
	gint64 deadline;
	Result r = {0};

	if (gtlsclient == NULL) {
		g_test_skip("gtlsclient not installed (Debian package ngtcp2-client)");
		return;
	}
	/* Debian's ngtcp2 0.12 example client speaks only HTTP/3 (ALPN h3): the right outcome is
	 * the server refusing the handshake cleanly, CONNECTION_CLOSE with CRYPTO_ERROR 0x100 + 120
	 * (no_application_protocol), in its first flight */
	proc = g_subprocess_new(G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_MERGE,
				&error, gtlsclient, "--timeout=5s", "--exit-on-first-stream-close",
				"127.0.0.1", port, url, NULL);
	g_assert_no_error(error);
	g_subprocess_communicate_utf8_async(proc, NULL, NULL, communicate_cb, &sr);
	wait_for(&sr.done);
	g_assert_nonnull(strstr(sr.out, "CRYPTO_ERROR(0x178)"));

	/* the refused connection is gone after its closing period, nothing reached the ingest */
	deadline = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;
	while (!server_idle(fx) && g_get_monotonic_time() < deadline)
		g_main_context_iteration(NULL, TRUE);
	g_assert_true(server_idle(fx));
	as_quic_server_get_stats(fx->server, &stats);
	g_assert_cmpuint(stats.connections_accepted, ==, 1);
	g_assert_cmpuint(fx->n_begin, ==, 0);

	/* and the server is healthy */
	client = fixture_client(fx, NULL);
	upload_bytes(client, "after-gtlsclient.bin", bytes, NULL, NULL, &r);
	g_assert_no_error(r.error);
	assert_received(fx, "after-gtlsclient.bin", bytes);
	result_clear(&r);
	g_free(sr.out);
	g_free(sr.err);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/aerosync/quic/tls-identity", as_quic_tls_identity_func);
	g_test_add_func("/aerosync/quic/unreachable", as_quic_unreachable_func);
	g_test_add_func("/aerosync/quic/resolve-timeout", as_quic_resolve_timeout_func);
#define ADD(path, func, address)                                                                   \
	g_test_add(path, Fixture, address, fixture_setup, func, fixture_teardown)
	ADD("/aerosync/quic/upload", as_quic_upload_func, NULL);
	ADD("/aerosync/quic/rsa-identity", as_quic_rsa_identity_func, NULL);
	ADD("/aerosync/quic/hash-split", as_quic_hash_split_func, NULL);
	ADD("/aerosync/quic/header-with-data", as_quic_header_with_data_func, NULL);
	ADD("/aerosync/quic/wrong-hash", as_quic_wrong_hash_func, NULL);
	ADD("/aerosync/quic/truncated", as_quic_truncated_func, NULL);
	ADD("/aerosync/quic/bad-token", as_quic_bad_token_func, NULL);
	ADD("/aerosync/quic/many-files", as_quic_many_files_func, NULL);
	ADD("/aerosync/quic/pin", as_quic_pin_func, NULL);
	ADD("/aerosync/quic/alpn-refused", as_quic_alpn_refused_func, NULL);
	ADD("/aerosync/quic/dual-stack", as_quic_dual_stack_func, "::");
	ADD("/aerosync/quic/retry", as_quic_retry_func, NULL);
	ADD("/aerosync/quic/stateless", as_quic_stateless_func, NULL);
	ADD("/aerosync/quic/flood", as_quic_flood_func, NULL);
	ADD("/aerosync/quic/backpressure", as_quic_backpressure_func, NULL);
	ADD("/aerosync/quic/cancel", as_quic_cancel_func, NULL);
	ADD("/aerosync/quic/idle-timeout", as_quic_idle_timeout_func, NULL);
	ADD("/aerosync/quic/slow-reply", as_quic_slow_reply_func, NULL);
	ADD("/aerosync/quic/no-offload", as_quic_no_offload_func, NULL);
	ADD("/aerosync/quic/server-close", as_quic_server_close_func, NULL);
	ADD("/aerosync/quic/gtlsclient", as_quic_gtlsclient_func, NULL);
#undef ADD
	return g_test_run();
}
