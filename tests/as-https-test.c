/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * HTTPS: a receiver with --https serves its routes over TLS with the certificate QUIC presents,
 * and a sender sends to https:// destinations with the certificate checked as the options say
 * (a pin, Insecure, a trusted CA, or known_peers on first use). Real daemons on loopback, a
 * private bus, real curl.
 */

#include "config.h"

#include <gnutls/abstract.h>
#include <gnutls/x509.h>
#include <string.h>
#include <sys/wait.h>

#include "as-error.h"
#include "as-keys.h"
#include "as-known-peers.h"
#include "as-send-job.h"
#include "as-test-daemon.h"
#include "as-test-send.h"
#include "as-tls-identity.h"

/* a chunk size that puts a few chunks in a small file, each large enough for the raw writer */
#define AS_TEST_HTTPS_CHUNK_SIZE (1024 * 1024)

/* -------- helpers -------- */

static AsTestDaemon *
as_test_https_receiver_new(const gchar *const *extra_args)
{
	AsTestDaemon *receiver = as_test_daemon_new();
	g_autoptr(GError) error = NULL;

	as_test_daemon_set_https(receiver, TRUE);
	for (guint i = 0; extra_args != NULL && extra_args[i] != NULL; i++)
		as_test_daemon_add_arg(receiver, extra_args[i]);
	as_test_daemon_start(receiver, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(as_test_daemon_get_https_port(receiver), >, 0);
	g_assert_cmpuint(as_test_daemon_get_https_port(receiver), !=,
			 as_test_daemon_get_port(receiver));
	return receiver;
}

static gchar *
as_test_https_dest(AsTestDaemon *receiver)
{
	return g_strdup_printf("https://127.0.0.1:%u", as_test_daemon_get_https_port(receiver));
}

/* nothing of a send arrived: no file, no temp in the staging area, no history */
static void
as_test_https_assert_nothing_received(AsTestDaemon *receiver, const gchar *name)
{
	g_autofree gchar *path =
		g_build_filename(as_test_daemon_get_save_dir(receiver), name, NULL);

	g_assert_false(g_file_test(path, G_FILE_TEST_EXISTS));
	g_assert_cmpuint(as_test_count_staging_temps(receiver), ==, 0);
	g_assert_cmpuint(as_test_count_history(receiver, "receive", "http"), ==, 0);
}

/* the certificate a receiver generated for itself */
static gchar *
as_test_https_cert_file(AsTestDaemon *receiver)
{
	return g_build_filename(as_test_daemon_get_root(receiver), "state", "aerosync",
				AS_TLS_IDENTITY_CERT_FILENAME, NULL);
}

/* curl's --pinnedpubkey: sha256// and the base64 SHA-256 of the DER public key */
static gchar *
as_test_https_pubkey_pin(const gchar *cert_file)
{
	g_autofree gchar *pem = NULL;
	gsize pem_len = 0;
	gnutls_datum_t datum;
	gnutls_datum_t der = {NULL, 0};
	gnutls_x509_crt_t crt = NULL;
	gnutls_pubkey_t pubkey = NULL;
	guint8 digest[32];
	gsize digest_len = sizeof(digest);
	g_autoptr(GChecksum) checksum = g_checksum_new(G_CHECKSUM_SHA256);
	g_autofree gchar *b64 = NULL;

	g_assert_true(g_file_get_contents(cert_file, &pem, &pem_len, NULL));
	datum.data = (unsigned char *)pem;
	datum.size = (unsigned int)pem_len;
	g_assert_cmpint(gnutls_x509_crt_init(&crt), ==, 0);
	g_assert_cmpint(gnutls_x509_crt_import(crt, &datum, GNUTLS_X509_FMT_PEM), ==, 0);
	g_assert_cmpint(gnutls_pubkey_init(&pubkey), ==, 0);
	g_assert_cmpint(gnutls_pubkey_import_x509(pubkey, crt, 0), ==, 0);
	g_assert_cmpint(gnutls_pubkey_export2(pubkey, GNUTLS_X509_FMT_DER, &der), ==, 0);
	g_checksum_update(checksum, der.data, der.size);
	g_checksum_get_digest(checksum, digest, &digest_len);
	gnutls_free(der.data);
	gnutls_pubkey_deinit(pubkey);
	gnutls_x509_crt_deinit(crt);
	b64 = g_base64_encode(digest, digest_len);
	return g_strdup_printf("sha256//%s", b64);
}

/* runs a command; returns its stdout, and its stderr in @err_out */
static gchar *
as_test_https_run_err(const gchar *const *argv, gchar **envp, gint *exit_status, gchar **err_out)
{
	g_autofree gchar *out = NULL;
	g_autofree gchar *err = NULL;
	g_autoptr(GError) error = NULL;
	gint wait_status = 0;

	g_spawn_sync(NULL, (gchar **)argv, envp, G_SPAWN_SEARCH_PATH, NULL, NULL, &out, &err,
		     &wait_status, &error);
	g_assert_no_error(error);
	g_test_message("%s -> %d\n%s%s", argv[0], wait_status, out, err);
	*exit_status = WIFEXITED(wait_status) ? WEXITSTATUS(wait_status) : -1;
	if (err_out != NULL)
		*err_out = g_steal_pointer(&err);
	return g_steal_pointer(&out);
}

static gchar *
as_test_https_run(const gchar *const *argv, gchar **envp, gint *exit_status)
{
	return as_test_https_run_err(argv, envp, exit_status, NULL);
}

static JsonObject *
as_test_https_parse_object(const gchar *text)
{
	g_autoptr(JsonParser) parser = json_parser_new();
	JsonNode *root;

	g_assert_true(json_parser_load_from_data(parser, text, -1, NULL));
	root = json_parser_get_root(parser);
	g_assert_true(JSON_NODE_HOLDS_OBJECT(root));
	return json_object_ref(json_node_get_object(root));
}

/* -------- the cases -------- */

/* the receiver side: ports, /health, D-Bus-free checks with curl over TLS */
static void
as_test_https_receiver(void)
{
	g_autoptr(AsTestDaemon) receiver = NULL;
	g_autoptr(AsTestDaemon) plain = NULL;
	g_autoptr(AsTestReply) reply = NULL;
	g_autofree gchar *curl = g_find_program_in_path("curl");
	g_autofree gchar *cert = NULL;
	g_autofree gchar *fp = NULL;
	g_autofree gchar *src = NULL;
	g_autofree gchar *sha = NULL;
	g_autofree gchar *auth = NULL;
	g_autofree gchar *pin = NULL;
	JsonObject *obj;
	JsonArray *protocols;
	gboolean has_https = FALSE;
	gint status = 0;

	as_test_watchdog_arm();
	receiver = as_test_https_receiver_new(NULL);
	/* /health over plain HTTP announces the HTTPS port and the certificate */
	reply = as_test_daemon_get(receiver, "/health");
	as_test_reply_assert_status(reply, 200);
	obj = as_test_reply_object(reply);
	g_assert_cmpint(json_object_get_int_member(obj, "https_port"), ==,
			as_test_daemon_get_https_port(receiver));
	protocols = json_object_get_array_member(obj, "protocols");
	for (guint i = 0; i < json_array_get_length(protocols); i++)
		has_https |= g_strcmp0(json_array_get_string_element(protocols, i), "https") == 0;
	g_assert_true(has_https);
	fp = g_strdup(json_object_get_string_member(obj, "cert_sha256"));
	g_assert_true(strlen(fp) == 64);

	/* without --https: no port, no "https" */
	plain = as_test_daemon_new();
	{
		g_autoptr(GError) error = NULL;
		g_autoptr(AsTestReply) reply2 = NULL;
		JsonObject *obj2;
		JsonArray *protocols2;
		as_test_daemon_start(plain, &error);
		g_assert_no_error(error);
		g_assert_cmpuint(as_test_daemon_get_https_port(plain), ==, 0);
		reply2 = as_test_daemon_get(plain, "/health");
		obj2 = as_test_reply_object(reply2);
		g_assert_false(json_object_has_member(obj2, "https_port"));
		protocols2 = json_object_get_array_member(obj2, "protocols");
		for (guint i = 0; i < json_array_get_length(protocols2); i++)
			g_assert_cmpstr(json_array_get_string_element(protocols2, i), !=, "https");
	}

	if (curl == NULL) {
		g_test_skip("curl is not installed");
		return;
	}
	cert = as_test_https_cert_file(receiver);
	/* the generated certificate names 127.0.0.1: it verifies as its own CA */
	{
		g_autofree gchar *url = g_strdup_printf("https://127.0.0.1:%u/health",
							as_test_daemon_get_https_port(receiver));
		const gchar *argv[] = {curl, "-sS", "-f", "-i", "--cacert", cert, url, NULL};
		g_autofree gchar *out = as_test_https_run(argv, NULL, &status);
		g_assert_cmpint(status, ==, 0);
		g_assert_nonnull(strstr(out, "X-AeroSync: true"));
		g_assert_nonnull(strstr(out, fp));
	}
	/* the public key pinned: the right one passes, another is refused by curl */
	pin = as_test_https_pubkey_pin(cert);
	{
		g_autofree gchar *url = g_strdup_printf("https://127.0.0.1:%u/health",
							as_test_daemon_get_https_port(receiver));
		const gchar *argv[] = {curl, "-sS", "-f", "-k", "--pinnedpubkey", pin, url, NULL};
		const gchar *wrong = "sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
		const gchar *argv2[] = {curl,  "-sS", "-f", "-k", "--pinnedpubkey",
					wrong, url,   NULL};
		g_autofree gchar *out = as_test_https_run(argv, NULL, &status);
		g_autofree gchar *out2 = NULL;
		g_assert_cmpint(status, ==, 0);
		out2 = as_test_https_run(argv2, NULL, &status);
		g_assert_cmpint(status, ==, 90); /* CURLE_SSL_PINNEDPUBKEYNOTMATCH */
	}
	/* curl -k -T: a PUT over TLS, verified by the receiver, bodies through libsoup */
	src = g_build_filename(as_test_daemon_get_root(receiver), "curl.bin", NULL);
	sha = as_test_write_random_file(src, 3 * 1024 * 1024 + 17, 3);
	auth = g_strdup_printf("Authorization: Bearer %s", as_test_daemon_get_token(receiver));
	{
		g_autofree gchar *url = g_strdup_printf("https://127.0.0.1:%u/upload/over-tls.bin",
							as_test_daemon_get_https_port(receiver));
		g_autofree gchar *hash = g_strdup_printf("X-File-Hash: %s", sha);
		const gchar *argv[] = {curl, "-sS", "-f", "-k", "-T", src,
				       "-H", auth,  "-H", hash, url,  NULL};
		g_autofree gchar *out = as_test_https_run(argv, NULL, &status);
		g_autoptr(JsonObject) put = NULL;
		g_assert_cmpint(status, ==, 0);
		put = as_test_https_parse_object(out);
		g_assert_true(json_object_get_boolean_member(put, "success"));
		g_assert_cmpstr(json_object_get_string_member(put, "sha256"), ==, sha);
		as_test_assert_received(receiver, "over-tls.bin", sha);
	}
	/* no token, no upload, over TLS too */
	{
		g_autofree gchar *url = g_strdup_printf("https://127.0.0.1:%u/upload/nope.bin",
							as_test_daemon_get_https_port(receiver));
		const gchar *argv[] = {curl, "-s", "-o", "/dev/null", "-w", "%{http_code}",
				       "-k", "-T", src,	 url,	      NULL};
		g_autofree gchar *out = as_test_https_run(argv, NULL, &status);
		g_assert_cmpstr(out, ==, "401");
	}
}

/* every kind of send over https:// with the certificate pinned: one file by PUT, one in
 * chunks, a directory in batches; and the daemon's HTTPS side on the bus */
static void
as_test_https_send(void)
{
	g_autoptr(GDBusConnection) conn = as_test_connection();
	g_autoptr(AsTestDaemon) sender = NULL;
	g_autoptr(AsTestDaemon) receiver = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) https_port = NULL;
	g_autofree gchar *dest = NULL;
	g_autofree gchar *fp = NULL;
	g_autofree gchar *single = NULL;
	g_autofree gchar *single_sha = NULL;
	g_autofree gchar *chunked = NULL;
	g_autofree gchar *chunked_sha = NULL;
	g_autofree gchar *dir = NULL;
	g_autofree gchar *known = NULL;
	g_autofree gchar *small_sha[5] = {NULL};

	as_test_watchdog_arm();
	/* the sender receives over HTTPS too, for its bus properties */
	sender = as_test_daemon_new();
	as_test_daemon_set_https(sender, TRUE);
	as_test_daemon_set_dbus_address(sender, g_getenv("DBUS_SESSION_BUS_ADDRESS"));
	as_test_sender_start(sender, conn);
	https_port = g_dbus_connection_call_sync(
		conn, AS_DBUS_NAME, AS_DBUS_PATH, "org.freedesktop.DBus.Properties", "Get",
		g_variant_new("(ss)", AS_TEST_MANAGER1, "HttpsPort"), G_VARIANT_TYPE("(v)"),
		G_DBUS_CALL_FLAGS_NO_AUTO_START, AS_TEST_CALL_TIMEOUT_MS, NULL, &error);
	g_assert_no_error(error);
	{
		g_autoptr(GVariant) v = NULL;
		g_variant_get(https_port, "(v)", &v);
		g_assert_cmpuint(g_variant_get_uint16(v), ==,
				 as_test_daemon_get_https_port(sender));
	}

	receiver = as_test_https_receiver_new(NULL);
	fp = as_test_daemon_dup_cert_sha256(receiver);
	dest = as_test_https_dest(receiver);

	/* one file between the batch limit and the chunk size: a single PUT, raw over TLS */
	single = as_test_one_file(sender, "single.bin", 1536 * 1024 + 5, 1);
	single_sha = as_test_file_sha256(single);
	{
		g_autoptr(GVariantBuilder) options = as_test_options_with_token(sender, receiver);
		g_autoptr(GVariant) props = NULL;
		g_autofree gchar *object = NULL;
		g_autofree gchar *protocol = NULL;
		const gchar *paths[] = {single, NULL};
		g_variant_builder_add(options, "{sv}", AS_SEND_KEY_PIN, g_variant_new_string(fp));
		object = as_test_send(conn, paths, dest, options, &error);
		g_assert_no_error(error);
		props = as_test_wait_completed(conn, object);
		protocol = as_test_prop_string(props, "Protocol");
		g_assert_cmpstr(protocol, ==, "https");
	}
	as_test_assert_received(receiver, "single.bin", single_sha);
	g_assert_cmpuint(as_test_count_history(sender, "send", "https"), ==, 1);

	/* chunks with /upload/status and /upload/complete, Protocol https and HOST:PORT */
	chunked = as_test_one_file(sender, "chunked.bin", 3 * AS_TEST_HTTPS_CHUNK_SIZE + 99, 2);
	chunked_sha = as_test_file_sha256(chunked);
	{
		g_autoptr(GVariantBuilder) options = as_test_options_with_token(sender, receiver);
		g_autoptr(GVariant) props = NULL;
		g_autofree gchar *object = NULL;
		g_autofree gchar *host_port =
			g_strdup_printf("127.0.0.1:%u", as_test_daemon_get_https_port(receiver));
		const gchar *paths[] = {chunked, NULL};
		g_variant_builder_add(options, "{sv}", AS_SEND_KEY_PIN, g_variant_new_string(fp));
		g_variant_builder_add(options, "{sv}", AS_SEND_KEY_PROTOCOL,
				      g_variant_new_string("https"));
		g_variant_builder_add(options, "{sv}", AS_SEND_KEY_CHUNK_SIZE,
				      g_variant_new_uint64(AS_TEST_HTTPS_CHUNK_SIZE));
		object = as_test_send(conn, paths, host_port, options, &error);
		g_assert_no_error(error);
		props = as_test_wait_completed(conn, object);
	}
	as_test_assert_received(receiver, "chunked.bin", chunked_sha);
	g_assert_cmpuint(as_test_count_history(sender, "send", "https-chunk"), ==, 1);

	/* a directory of small files: /upload/batch */
	dir = as_test_mkdir(sender, "src/tree");
	for (guint i = 0; i < G_N_ELEMENTS(small_sha); i++) {
		g_autofree gchar *name = g_strdup_printf("f%u.txt", i);
		g_autofree gchar *path = g_build_filename(dir, name, NULL);
		small_sha[i] = as_test_write_random_file(path, 100 + i * 1000, 10 + i);
	}
	{
		g_autoptr(GVariantBuilder) options = as_test_options_with_token(sender, receiver);
		g_autoptr(GVariant) props = NULL;
		g_autofree gchar *object = NULL;
		const gchar *paths[] = {dir, NULL};
		g_variant_builder_add(options, "{sv}", AS_SEND_KEY_PIN, g_variant_new_string(fp));
		g_variant_builder_add(options, "{sv}", AS_SEND_KEY_RECURSIVE,
				      g_variant_new_boolean(TRUE));
		object = as_test_send(conn, paths, dest, options, &error);
		g_assert_no_error(error);
		props = as_test_wait_completed(conn, object);
		g_assert_cmpuint(as_test_prop_u32(props, "FilesDone"), ==, G_N_ELEMENTS(small_sha));
	}
	for (guint i = 0; i < G_N_ELEMENTS(small_sha); i++) {
		g_autofree gchar *name = g_strdup_printf("tree/f%u.txt", i);
		as_test_assert_received(receiver, name, small_sha[i]);
	}
	g_assert_cmpuint(as_test_count_history(sender, "send", "https-batch"), ==,
			 G_N_ELEMENTS(small_sha));
	/* a pin is no first use: nothing recorded */
	known = as_test_known_peers_path(sender);
	g_assert_false(g_file_test(known, G_FILE_TEST_EXISTS));
}

/* a wrong pin: refused before anything is sent, never retried, never over plain HTTP */
static void
as_test_https_pin_mismatch(void)
{
	g_autoptr(GDBusConnection) conn = as_test_connection();
	g_autoptr(AsTestDaemon) sender = NULL;
	g_autoptr(AsTestDaemon) receiver = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariantBuilder) options = NULL;
	g_autofree gchar *path = NULL;
	g_autofree gchar *dest = NULL;
	g_autofree gchar *fp = NULL;
	g_autofree gchar *object = NULL;
	g_autofree gchar *message = NULL;
	const gchar *wrong = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
	gint64 start_us;

	as_test_watchdog_arm();
	sender = as_test_sender_new(conn);
	receiver = as_test_https_receiver_new(NULL);
	fp = as_test_daemon_dup_cert_sha256(receiver);
	path = as_test_one_file(sender, "pinned.bin", 5000, 6);
	dest = as_test_https_dest(receiver);
	options = as_test_options_with_token(sender, receiver);
	g_variant_builder_add(options, "{sv}", AS_SEND_KEY_PIN, g_variant_new_string(wrong));
	start_us = g_get_monotonic_time();
	{
		const gchar *paths[] = {path, NULL};
		object = as_test_send(conn, paths, dest, options, &error);
	}
	g_assert_no_error(error);
	message = as_test_wait_failed(conn, object);
	g_assert_nonnull(strstr(message, "REFUSED"));
	g_assert_nonnull(strstr(message, wrong));
	g_assert_nonnull(strstr(message, fp));
	g_assert_nonnull(strstr(message, "--pin"));
	/* at once: no retries with backoff */
	g_assert_cmpint(g_get_monotonic_time() - start_us, <, 5 * G_USEC_PER_SEC);
	as_test_https_assert_nothing_received(receiver, "pinned.bin");
}

/* trust on first use; then the receiver comes back on the same port with another
 * certificate: refused loudly, nothing sent */
static void
as_test_https_tofu(void)
{
	g_autoptr(GDBusConnection) conn = as_test_connection();
	g_autoptr(AsTestDaemon) sender = NULL;
	g_autoptr(AsTestDaemon) receiver = NULL;
	g_autoptr(AsTestDaemon) impostor = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(AsTlsIdentity) first = NULL;
	g_autoptr(AsTlsIdentity) second = NULL;
	g_autofree gchar *ids = NULL;
	g_autofree gchar *dir1 = NULL;
	g_autofree gchar *dir2 = NULL;
	g_autofree gchar *path = NULL;
	g_autofree gchar *sha = NULL;
	g_autofree gchar *dest = NULL;
	g_autofree gchar *known = NULL;
	g_autofree gchar *known_text = NULL;
	g_autofree gchar *message = NULL;
	g_autofree gchar *where = NULL;
	g_autofree gchar *port_arg = NULL;
	g_autofree gchar *line = NULL;
	const gchar *fp1;
	const gchar *fp2;

	as_test_watchdog_arm();
	sender = as_test_sender_new(conn);
	/* two identities, as --tls-cert/--tls-key give them */
	ids = as_test_mkdir(sender, "identities");
	dir1 = g_build_filename(ids, "one", NULL);
	dir2 = g_build_filename(ids, "two", NULL);
	first = as_tls_identity_load_or_generate(dir1, &error);
	g_assert_no_error(error);
	second = as_tls_identity_load_or_generate(dir2, &error);
	g_assert_no_error(error);
	fp1 = as_tls_identity_get_fingerprint(first);
	fp2 = as_tls_identity_get_fingerprint(second);
	g_assert_cmpstr(fp1, !=, fp2);
	{
		const gchar *args[] = {"--tls-cert", as_tls_identity_get_cert_file(first),
				       "--tls-key", as_tls_identity_get_key_file(first), NULL};
		receiver = as_test_https_receiver_new(args);
	}
	{
		g_autofree gchar *announced = as_test_daemon_dup_cert_sha256(receiver);
		g_assert_cmpstr(announced, ==, fp1);
	}
	path = as_test_one_file(sender, "tofu.bin", 70000, 7);
	sha = as_test_file_sha256(path);
	dest = as_test_https_dest(receiver);
	{
		g_autoptr(GVariantBuilder) options = as_test_options_with_token(sender, receiver);
		g_autoptr(GVariant) props = NULL;
		g_autofree gchar *object = NULL;
		const gchar *paths[] = {path, NULL};
		object = as_test_send(conn, paths, dest, options, &error);
		g_assert_no_error(error);
		props = as_test_wait_completed(conn, object);
	}
	as_test_assert_received(receiver, "tofu.bin", sha);
	known = as_test_known_peers_path(sender);
	g_assert_true(g_file_get_contents(known, &known_text, NULL, NULL));
	line = g_strdup_printf("127.0.0.1:%u %s", as_test_daemon_get_https_port(receiver), fp1);
	g_assert_nonnull(strstr(known_text, line));

	/* the same port, another certificate */
	port_arg = g_strdup_printf("%u", as_test_daemon_get_https_port(receiver));
	as_test_daemon_stop(receiver);
	{
		const gchar *args[] = {"--https-port",
				       port_arg,
				       "--tls-cert",
				       as_tls_identity_get_cert_file(second),
				       "--tls-key",
				       as_tls_identity_get_key_file(second),
				       NULL};
		impostor = as_test_https_receiver_new(args);
	}
	{
		g_autoptr(GVariantBuilder) options = as_test_options_with_token(sender, impostor);
		g_autofree gchar *object = NULL;
		const gchar *paths[] = {path, NULL};
		object = as_test_send(conn, paths, dest, options, &error);
		g_assert_no_error(error);
		message = as_test_wait_failed(conn, object);
	}
	where = g_strdup_printf("%s line 1", known);
	g_assert_nonnull(strstr(message, "CHANGED"));
	g_assert_nonnull(strstr(message, where));
	g_assert_nonnull(strstr(message, fp1));
	g_assert_nonnull(strstr(message, fp2));
	as_test_https_assert_nothing_received(impostor, "tofu.bin");
}

/* Insecure when asked for: any certificate, and the transfer says so; nothing recorded */
static void
as_test_https_insecure(void)
{
	g_autoptr(GDBusConnection) conn = as_test_connection();
	g_autoptr(AsTestDaemon) sender = NULL;
	g_autoptr(AsTestDaemon) receiver = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariantBuilder) options = NULL;
	g_autoptr(GVariant) props = NULL;
	g_autofree gchar *path = NULL;
	g_autofree gchar *sha = NULL;
	g_autofree gchar *dest = NULL;
	g_autofree gchar *object = NULL;
	g_autofree gchar *protocol = NULL;
	g_autofree gchar *known = NULL;

	as_test_watchdog_arm();
	sender = as_test_sender_new(conn);
	receiver = as_test_https_receiver_new(NULL);
	path = as_test_one_file(sender, "insecure.bin", 200000, 8);
	sha = as_test_file_sha256(path);
	dest = as_test_https_dest(receiver);
	options = as_test_options_with_token(sender, receiver);
	g_variant_builder_add(options, "{sv}", AS_SEND_KEY_INSECURE, g_variant_new_boolean(TRUE));
	{
		const gchar *paths[] = {path, NULL};
		object = as_test_send(conn, paths, dest, options, &error);
	}
	g_assert_no_error(error);
	props = as_test_wait_completed(conn, object);
	protocol = as_test_prop_string(props, "Protocol");
	g_assert_nonnull(strstr(protocol, "https"));
	g_assert_nonnull(strstr(protocol, "not checked"));
	as_test_assert_received(receiver, "insecure.bin", sha);
	known = as_test_known_peers_path(sender);
	g_assert_false(g_file_test(known, G_FILE_TEST_EXISTS));
}

/* the wrong scheme for a port: a clear error, not a hang or a retry loop */
static void
as_test_https_wrong_scheme(void)
{
	g_autoptr(GDBusConnection) conn = as_test_connection();
	g_autoptr(AsTestDaemon) sender = NULL;
	g_autoptr(AsTestDaemon) receiver = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *path = NULL;
	g_autofree gchar *message = NULL;
	g_autofree gchar *message2 = NULL;

	as_test_watchdog_arm();
	sender = as_test_sender_new(conn);
	receiver = as_test_https_receiver_new(NULL);
	path = as_test_one_file(sender, "scheme.bin", 3000, 9);
	/* plain HTTP to the TLS port */
	{
		g_autoptr(GVariantBuilder) options = as_test_options_with_token(sender, receiver);
		g_autofree gchar *object = NULL;
		g_autofree gchar *dest = g_strdup_printf("http://127.0.0.1:%u",
							 as_test_daemon_get_https_port(receiver));
		const gchar *paths[] = {path, NULL};
		object = as_test_send(conn, paths, dest, options, &error);
		g_assert_no_error(error);
		message = as_test_wait_failed(conn, object);
		g_assert_nonnull(strstr(message, "https://"));
	}
	/* TLS to the plain port */
	{
		g_autoptr(GVariantBuilder) options = as_test_options_with_token(sender, receiver);
		g_autofree gchar *object = NULL;
		g_autofree gchar *dest =
			g_strdup_printf("https://127.0.0.1:%u", as_test_daemon_get_port(receiver));
		const gchar *paths[] = {path, NULL};
		g_variant_builder_add(options, "{sv}", AS_SEND_KEY_INSECURE,
				      g_variant_new_boolean(TRUE));
		object = as_test_send(conn, paths, dest, options, &error);
		g_assert_no_error(error);
		message2 = as_test_wait_failed(conn, object);
		g_assert_nonnull(strstr(message2, "TLS"));
	}
	as_test_https_assert_nothing_received(receiver, "scheme.bin");
}

/* aerosyncctl: send to https:// with --pin, and status shows the HTTPS port */
static void
as_test_https_ctl(void)
{
	g_autoptr(GDBusConnection) conn = as_test_connection();
	g_autoptr(AsTestDaemon) sender = NULL;
	g_autoptr(AsTestDaemon) receiver = NULL;
	const gchar *ctl = g_getenv("AEROSYNCCTL_PATH");
	g_auto(GStrv) envp = NULL;
	g_autofree gchar *path = NULL;
	g_autofree gchar *sha = NULL;
	g_autofree gchar *dest = NULL;
	g_autofree gchar *fp = NULL;
	g_autofree gchar *token_file = NULL;
	g_autofree gchar *out = NULL;
	g_autofree gchar *expected = NULL;
	const gchar *wrong = "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100";
	gint status = 0;

	if (ctl == NULL) {
		g_test_skip("AEROSYNCCTL_PATH is not set");
		return;
	}
	as_test_watchdog_arm();
	sender = as_test_daemon_new();
	as_test_daemon_set_https(sender, TRUE);
	as_test_daemon_set_dbus_address(sender, g_getenv("DBUS_SESSION_BUS_ADDRESS"));
	as_test_sender_start(sender, conn);
	receiver = as_test_https_receiver_new(NULL);
	fp = as_test_daemon_dup_cert_sha256(receiver);
	path = as_test_one_file(sender, "ctl.bin", 4000, 11);
	sha = as_test_file_sha256(path);
	dest = as_test_https_dest(receiver);
	token_file = as_test_token_file(sender, receiver);
	envp = g_get_environ();
	envp = g_environ_setenv(envp, "NO_COLOR", "1", TRUE);
	envp = g_environ_setenv(envp, "LC_ALL", "C.UTF-8", TRUE);
	{
		const gchar *argv[] = {ctl,	   "send",  path,  dest, "--token-file",
				       token_file, "--pin", wrong, NULL};
		g_autofree gchar *out1 = as_test_https_run(argv, envp, &status);
		g_assert_cmpint(status, !=, 0);
	}
	{
		const gchar *argv[] = {ctl,	   "send",  path, dest, "--token-file",
				       token_file, "--pin", fp,	  NULL};
		g_autofree gchar *out2 = as_test_https_run(argv, envp, &status);
		g_assert_cmpint(status, ==, 0);
	}
	as_test_assert_received(receiver, "ctl.bin", sha);
	{
		const gchar *argv[] = {ctl, "status", NULL};
		out = as_test_https_run(argv, envp, &status);
		g_assert_cmpint(status, ==, 0);
		g_assert_nonnull(strstr(out, "HTTPS port"));
		expected = g_strdup_printf("%u", as_test_daemon_get_https_port(sender));
		g_assert_nonnull(strstr(out, expected));
	}
}

/* aerosyncctl status https://…, which fetches /health itself: --pin, --insecure, known_peers */
static void
as_test_https_ctl_status(void)
{
	g_autoptr(AsTestDaemon) receiver = as_test_https_receiver_new(NULL);
	const gchar *ctl = g_getenv("AEROSYNCCTL_PATH");
	g_autofree gchar *fp = as_test_daemon_dup_cert_sha256(receiver);
	g_autofree gchar *dest = as_test_https_dest(receiver);
	g_autofree gchar *state = NULL;
	g_autofree gchar *known_path = NULL;
	g_autofree gchar *key = NULL;
	g_auto(GStrv) envp = NULL;
	const gchar *wrong = "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100";
	gint status = 0;

	if (ctl == NULL) {
		g_test_skip("AEROSYNCCTL_PATH is not set");
		return;
	}
	/* this user's daemon state, where known_peers lives: empty at first */
	state = g_build_filename(as_test_daemon_get_root(receiver), "ctl-state", NULL);
	known_path = g_build_filename(state, "aerosync", AS_KNOWN_PEERS_FILENAME, NULL);
	key = as_known_peers_make_key("127.0.0.1", as_test_daemon_get_https_port(receiver));
	envp = g_get_environ();
	envp = g_environ_setenv(envp, "NO_COLOR", "1", TRUE);
	envp = g_environ_setenv(envp, "LC_ALL", "C.UTF-8", TRUE);
	envp = g_environ_setenv(envp, "XDG_STATE_HOME", state, TRUE);

	/* a self-signed certificate nobody vouches for: refused, with the way out */
	{
		const gchar *argv[] = {ctl, "status", dest, NULL};
		g_autofree gchar *err = NULL;
		g_autofree gchar *out = as_test_https_run_err(argv, envp, &status, &err);
		g_assert_cmpint(status, ==, 1);
		g_assert_nonnull(strstr(err, "no trusted CA"));
		g_assert_nonnull(strstr(err, fp));
	}
	/* pinned */
	{
		const gchar *argv[] = {ctl, "--json", "status", dest, "--pin", fp, NULL};
		g_autofree gchar *out = as_test_https_run(argv, envp, &status);
		g_autoptr(JsonObject) obj = NULL;
		g_assert_cmpint(status, ==, 0);
		obj = as_test_https_parse_object(out);
		g_assert_cmpint(json_object_get_int_member(obj, "https_port"), ==,
				as_test_daemon_get_https_port(receiver));
		g_assert_cmpstr(json_object_get_string_member(obj, "cert_sha256"), ==, fp);
	}
	/* pinned to another certificate */
	{
		const gchar *argv[] = {ctl, "status", dest, "--pin", wrong, NULL};
		g_autofree gchar *err = NULL;
		g_autofree gchar *out = as_test_https_run_err(argv, envp, &status, &err);
		g_assert_cmpint(status, ==, 1);
		g_assert_nonnull(strstr(err, "not the pinned"));
	}
	/* both, or a pin that is no SHA-256: usage errors */
	{
		const gchar *argv[] = {ctl, "status", dest, "--pin", fp, "--insecure", NULL};
		const gchar *argv2[] = {ctl, "status", dest, "--pin", "abc", NULL};
		g_autofree gchar *out = as_test_https_run(argv, envp, &status);
		g_autofree gchar *out2 = NULL;
		g_assert_cmpint(status, ==, 2);
		out2 = as_test_https_run(argv2, envp, &status);
		g_assert_cmpint(status, ==, 2);
	}
	/* not checked, as asked */
	{
		const gchar *argv[] = {ctl, "status", dest, "--insecure", NULL};
		g_autofree gchar *out = as_test_https_run(argv, envp, &status);
		g_assert_cmpint(status, ==, 0);
		g_assert_nonnull(strstr(out, fp));
	}
	/* known_peers, as a first send records it: trusted; a changed certificate is not */
	{
		g_autoptr(AsKnownPeers) known = as_known_peers_new(known_path);
		g_autoptr(GError) error = NULL;
		const gchar *argv[] = {ctl, "status", dest, NULL};
		g_autofree gchar *out = NULL;
		g_assert_true(as_known_peers_add(known, key, fp));
		g_assert_true(as_known_peers_save(known, &error));
		g_assert_no_error(error);
		out = as_test_https_run(argv, envp, &status);
		g_assert_cmpint(status, ==, 0);
	}
	{
		g_autoptr(AsKnownPeers) known = as_known_peers_new(known_path);
		g_autoptr(GError) error = NULL;
		const gchar *argv[] = {ctl, "status", dest, NULL};
		g_autofree gchar *err = NULL;
		g_autofree gchar *out = NULL;
		g_assert_true(as_known_peers_add(known, key, wrong));
		g_assert_true(as_known_peers_save(known, &error));
		g_assert_no_error(error);
		out = as_test_https_run_err(argv, envp, &status, &err);
		g_assert_cmpint(status, ==, 1);
		g_assert_nonnull(strstr(err, "CHANGED"));
		g_assert_nonnull(strstr(err, fp));
	}
}

int
main(int argc, char **argv)
{
	gint ret;

	as_test_init(&argc, &argv);
	as_test_send_bus_up();
	g_test_add_func("/aerosync/https/receiver", as_test_https_receiver);
	g_test_add_func("/aerosync/https/send", as_test_https_send);
	g_test_add_func("/aerosync/https/pin-mismatch", as_test_https_pin_mismatch);
	g_test_add_func("/aerosync/https/tofu", as_test_https_tofu);
	g_test_add_func("/aerosync/https/insecure", as_test_https_insecure);
	g_test_add_func("/aerosync/https/wrong-scheme", as_test_https_wrong_scheme);
	g_test_add_func("/aerosync/https/ctl", as_test_https_ctl);
	g_test_add_func("/aerosync/https/ctl-status", as_test_https_ctl_status);
	ret = g_test_run();
	as_test_send_bus_down();
	return ret;
}
