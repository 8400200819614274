/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "AsTokenTest"

#include "config.h"

#include <glib/gstdio.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <string.h>
#include <sys/stat.h>

#if HAVE_LIBSECRET
#include <libsecret/secret.h>
#endif

#include "as-error.h"
#include "as-token-store-file.h"
#include "as-token-store-secret.h"
#include "as-token-store.h"
#include "as-token.h"

#define TEST_NOW_S	      ((gint64)1700000000)
#define TEST_LEGACY_SECRET    "correct horse battery staple"
#define TEST_LEGACY_UUID      "3f2b8c1e-4d5a-4b6c-8e7f-0123456789ab"
#define TEST_LEGACY_CREATED   "1700000000"
#define TEST_LEGACY_EXPIRES   "1700086400"
#define TEST_THREADS	      4
#define TEST_THREAD_CHECKS    2000
#define TEST_UNIQUE_TOKENS    200
#define TEST_SECRET_KEY_OTHER "/nonexistent/other-config-dir"

/* the file keyring of libsecret, set up in main() before any libsecret call */
static gchar *test_secret_dir = NULL;

/* g_test_expect_message() does not see structured logging, so expected warnings are
 * swallowed by this writer; anything else goes to the default writer (and is fatal) */
typedef struct {
	gchar *domain;
	gchar *pattern;
} TestExpectedLog;

static GMutex test_log_mutex;
static GQueue test_log_expected = G_QUEUE_INIT;

static void
test_expect_warning(const gchar *domain, const gchar *pattern)
{
	TestExpectedLog *expected = g_new0(TestExpectedLog, 1);

	expected->domain = g_strdup(domain);
	expected->pattern = g_strdup(pattern);
	g_mutex_lock(&test_log_mutex);
	g_queue_push_tail(&test_log_expected, expected);
	g_mutex_unlock(&test_log_mutex);
}

static void
test_assert_expected_warnings(void)
{
	guint left;

	g_mutex_lock(&test_log_mutex);
	left = g_queue_get_length(&test_log_expected);
	g_mutex_unlock(&test_log_mutex);
	g_assert_cmpuint(left, ==, 0);
}

static GLogWriterOutput
test_log_writer_cb(GLogLevelFlags log_level,
		   const GLogField *fields,
		   gsize n_fields,
		   gpointer user_data)
{
	const gchar *domain = NULL;
	const gchar *message = NULL;
	gboolean swallowed = FALSE;

	for (gsize i = 0; i < n_fields; i++) {
		if (g_strcmp0(fields[i].key, "GLIB_DOMAIN") == 0)
			domain = fields[i].value;
		else if (g_strcmp0(fields[i].key, "MESSAGE") == 0)
			message = fields[i].value;
	}
	g_mutex_lock(&test_log_mutex);
	if ((log_level & G_LOG_LEVEL_WARNING) != 0 && !g_queue_is_empty(&test_log_expected)) {
		TestExpectedLog *expected = g_queue_peek_head(&test_log_expected);
		if (g_strcmp0(expected->domain, domain) == 0 && message != NULL &&
		    g_pattern_match_simple(expected->pattern, message)) {
			g_queue_pop_head(&test_log_expected);
			g_free(expected->domain);
			g_free(expected->pattern);
			g_free(expected);
			swallowed = TRUE;
		}
	}
	g_mutex_unlock(&test_log_mutex);
	if (swallowed)
		return G_LOG_WRITER_HANDLED;
	return g_log_writer_default(log_level, fields, n_fields, user_data);
}

static void
test_rm_rf(const gchar *path)
{
	GDir *dir = g_dir_open(path, 0, NULL);

	if (dir != NULL) {
		const gchar *name;
		while ((name = g_dir_read_name(dir)) != NULL) {
			g_autofree gchar *child = g_build_filename(path, name, NULL);
			if (g_file_test(child, G_FILE_TEST_IS_DIR) &&
			    !g_file_test(child, G_FILE_TEST_IS_SYMLINK))
				test_rm_rf(child);
			else
				g_assert_cmpint(g_unlink(child), ==, 0);
		}
		g_dir_close(dir);
	}
	g_assert_cmpint(g_rmdir(path), ==, 0);
}

static gchar *
test_sha256_hex(const gchar *str)
{
	guint8 digest[32];
	GString *hex = g_string_new(NULL);

	g_assert_cmpint(gnutls_hash_fast(GNUTLS_DIG_SHA256, str, strlen(str), digest), ==, 0);
	for (guint i = 0; i < sizeof(digest); i++)
		g_string_append_printf(hex, "%02x", digest[i]);
	return g_string_free(hex, FALSE);
}

/* the 0.x signature, computed here independently of as-token.c */
static gchar *
test_legacy_token(const gchar *uuid, const gchar *created, const gchar *expires)
{
	g_autofree gchar *msg =
		g_strdup_printf("%s.%s.%s.%s", uuid, created, expires, TEST_LEGACY_SECRET);
	g_autofree gchar *hex = test_sha256_hex(msg);

	hex[16] = '\0';
	return g_strdup_printf("%s.%s.%s.%s", uuid, created, expires, hex);
}

static void
test_assert_denied(AsTokenStore *store, const gchar *token, gint64 now_s, const gchar *reason)
{
	g_autoptr(GError) error = NULL;

	g_assert_false(as_token_store_check(store, token, now_s, &error));
	g_assert_error(error, AS_ERROR, AS_ERROR_PERMISSION_DENIED);
	g_assert_cmpstr(error->message, ==, reason);
	if (token != NULL && token[0] != '\0')
		g_assert_null(strstr(error->message, token));
}

static void
test_assert_accepted(AsTokenStore *store, const gchar *token, gint64 now_s)
{
	g_autoptr(GError) error = NULL;

	g_assert_true(as_token_store_check(store, token, now_s, &error));
	g_assert_no_error(error);
}

static gint64
test_now_s(void)
{
	return g_get_real_time() / G_USEC_PER_SEC;
}

static void
test_token_generate(void)
{
	g_autoptr(GHashTable) seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);

	for (guint i = 0; i < TEST_UNIQUE_TOKENS; i++) {
		gchar *token = as_token_generate();

		g_assert_nonnull(token);
		g_assert_cmpuint(strlen(token), ==, AS_TOKEN_LENGTH);
		g_assert_true(g_str_has_prefix(token, "as1_"));
		g_assert_cmpuint(strspn(token + 4,
					"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
					"0123456789-_"),
				 ==, AS_TOKEN_LENGTH - 4);
		g_assert_false(g_hash_table_contains(seen, token));
		g_hash_table_add(seen, token);
	}
	g_assert_cmpuint(g_hash_table_size(seen), ==, TEST_UNIQUE_TOKENS);
}

static void
test_token_id_hash(void)
{
	g_autofree gchar *hash_abc = as_token_hash("abc");
	g_autofree gchar *token = as_token_generate();
	g_autofree gchar *hash = as_token_hash(token);
	g_autofree gchar *expected = test_sha256_hex(token);
	g_autofree gchar *id = as_token_id(token);

	/* FIPS 180-2 test vector */
	g_assert_cmpstr(hash_abc, ==,
			"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	g_assert_cmpstr(hash, ==, expected);
	g_assert_cmpuint(strlen(id), ==, AS_TOKEN_ID_LENGTH);
	g_assert_true(g_str_has_prefix(hash, id));
	g_assert_true(as_token_id_is_valid(id));
	g_assert_true(as_token_hash_is_valid(hash));
	g_assert_true(as_token_id_is_valid("legacy-" TEST_LEGACY_UUID));
	g_assert_false(as_token_id_is_valid("ABCDEF012345"));
	g_assert_false(as_token_id_is_valid("abcdef01234"));
	g_assert_false(as_token_id_is_valid("legacy-nope"));
	g_assert_false(as_token_id_is_valid(NULL));
	g_assert_false(as_token_hash_is_valid(id));
	g_assert_false(as_token_hash_is_valid(NULL));

	g_assert_true(as_token_secure_equal("abc", "abc"));
	g_assert_false(as_token_secure_equal("abc", "abd"));
	g_assert_false(as_token_secure_equal("abc", "abcd"));
	g_assert_false(as_token_secure_equal(NULL, "abc"));
	g_assert_false(as_token_secure_equal(NULL, NULL));
}

static void
test_token_headers(void)
{
	struct {
		const gchar *authorization;
		const gchar *x_auth_token;
		const gchar *expected;
	} cases[] = {
		{"Bearer abc", NULL, "abc"},
		{"bearer abc", NULL, "abc"},
		{"BEARER    abc", NULL, "abc"},
		{"  Bearer \t abc", NULL, "abc"},
		{"abc", NULL, "abc"},
		{"  abc", NULL, "abc"},
		{NULL, "xyz", "xyz"},
		{NULL, "  xyz", "xyz"},
		{"Bearer abc", "xyz", "abc"},
		{"abc", "xyz", "abc"},
		{"Basic dXNlcjpwYXNz", NULL, NULL},
		{"basic dXNlcjpwYXNz", "xyz", "xyz"},
		{"Digest username=x", NULL, NULL},
		{"", NULL, NULL},
		{"   ", NULL, NULL},
		{"", "xyz", "xyz"},
		{"Bearer", NULL, NULL},
		{"Basic", NULL, NULL},
		{"Bearer ", NULL, NULL},
		{"Bearer a b", NULL, NULL},
		{NULL, "", NULL},
		{NULL, "x y", NULL},
		{NULL, NULL, NULL},
	};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		const gchar *got =
			as_token_from_headers(cases[i].authorization, cases[i].x_auth_token);
		g_test_message("case %u: '%s' '%s'", i, cases[i].authorization,
			       cases[i].x_auth_token);
		g_assert_cmpstr(got, ==, cases[i].expected);

		/* a pointer into the given strings, never a copy */
		if (got != NULL) {
			const gchar *a = cases[i].authorization;
			const gchar *x = cases[i].x_auth_token;
			gboolean in_a = a != NULL && got >= a && got < a + strlen(a);
			gboolean in_x = x != NULL && got >= x && got < x + strlen(x);
			g_assert_true(in_a || in_x);
		}
	}
}

static void
test_token_legacy(void)
{
	g_autofree gchar *token =
		test_legacy_token(TEST_LEGACY_UUID, TEST_LEGACY_CREATED, TEST_LEGACY_EXPIRES);
	g_autofree gchar *uuid = NULL;
	g_autofree gchar *tampered_sig = g_strdup(token);
	g_autofree gchar *tampered_expires = NULL;
	g_autofree gchar *upper_sig = NULL;
	g_autofree gchar *future = NULL;
	g_autofree gchar *minted = NULL;
	g_autoptr(GError) error = NULL;
	gchar *sig;
	gint64 created = 0;
	gint64 expires = 0;
	const gchar *malformed[] = {
		"",
		"abc",
		TEST_LEGACY_UUID ".1700000000.1700086400",
		TEST_LEGACY_UUID ".1700000000.1700086400.0123456789abcdef.x",
		"3f2b8c1e-4d5a-4b6c-8e7f-0123456789a.1700000000.1700086400.0123456789abcdef",
		"3f2b8c1e44d5a-4b6c-8e7f-0123456789ab.1700000000.1700086400.0123456789abcdef",
		"3f2b8c1e-4d5a-4b6c-8e7f-0123456789ag.1700000000.1700086400.0123456789abcdef",
		TEST_LEGACY_UUID ".+1700000000.1700086400.0123456789abcdef",
		TEST_LEGACY_UUID ".-1.1700086400.0123456789abcdef",
		TEST_LEGACY_UUID ".01700000000.1700086400.0123456789abcdef",
		TEST_LEGACY_UUID ". 1700000000.1700086400.0123456789abcdef",
		TEST_LEGACY_UUID ".1700000000.99999999999999999999.0123456789abcdef",
		TEST_LEGACY_UUID ".1700000000..0123456789abcdef",
		TEST_LEGACY_UUID ".1700000000.1700086400.0123456789abcde",
		TEST_LEGACY_UUID ".1700000000.1700086400.0123456789abcdefa",
		TEST_LEGACY_UUID ".1700000000.1700086400.0123456789abcdeg",
		"as1_abcdefabcdefabcdefabcdefabcdefabcdefabcdefa",
	};

	/* the hand-computed vector verifies */
	g_assert_true(as_token_looks_legacy(token));
	g_assert_true(as_token_legacy_verify(token, TEST_LEGACY_SECRET, TEST_NOW_S, &uuid, &error));
	g_assert_no_error(error);
	g_assert_cmpstr(uuid, ==, TEST_LEGACY_UUID);
	g_assert_true(as_token_legacy_parse(token, NULL, &created, &expires, &error));
	g_assert_no_error(error);
	g_assert_cmpint(created, ==, 1700000000);
	g_assert_cmpint(expires, ==, 1700086400);

	/* a wrong secret */
	g_assert_false(as_token_legacy_verify(token, "other secret", TEST_NOW_S, NULL, &error));
	g_assert_error(error, AS_ERROR, AS_ERROR_PERMISSION_DENIED);
	g_clear_error(&error);
	g_assert_false(as_token_legacy_verify(token, NULL, TEST_NOW_S, NULL, &error));
	g_assert_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT);
	g_clear_error(&error);

	/* a tampered signature */
	sig = strrchr(tampered_sig, '.') + 1;
	sig[0] = sig[0] == '0' ? '1' : '0';
	g_assert_false(
		as_token_legacy_verify(tampered_sig, TEST_LEGACY_SECRET, TEST_NOW_S, NULL, &error));
	g_assert_error(error, AS_ERROR, AS_ERROR_PERMISSION_DENIED);
	g_assert_cmpstr(error->message, ==, "invalid token signature");
	g_clear_error(&error);

	/* the signature in upper case is the same signature */
	upper_sig = g_strdup(token);
	sig = strrchr(upper_sig, '.') + 1;
	for (gchar *p = sig; *p != '\0'; p++)
		*p = g_ascii_toupper(*p);
	g_assert_true(
		as_token_legacy_verify(upper_sig, TEST_LEGACY_SECRET, TEST_NOW_S, NULL, &error));
	g_assert_no_error(error);

	/* a later expiry with the old signature */
	tampered_expires = g_strdup_printf("%s.%s.%s.%s", TEST_LEGACY_UUID, TEST_LEGACY_CREATED,
					   "1800086400", strrchr(token, '.') + 1);
	g_assert_false(as_token_legacy_verify(tampered_expires, TEST_LEGACY_SECRET, TEST_NOW_S,
					      NULL, &error));
	g_assert_error(error, AS_ERROR, AS_ERROR_PERMISSION_DENIED);
	g_assert_cmpstr(error->message, ==, "invalid token signature");
	g_clear_error(&error);

	/* expired: expires <= now */
	g_assert_false(as_token_legacy_verify(token, TEST_LEGACY_SECRET, 1700086400, NULL, &error));
	g_assert_error(error, AS_ERROR, AS_ERROR_PERMISSION_DENIED);
	g_assert_cmpstr(error->message, ==, "token expired");
	g_clear_error(&error);
	g_assert_true(as_token_legacy_verify(token, TEST_LEGACY_SECRET, 1700086399, NULL, &error));
	g_assert_no_error(error);

	/* created more than 300 s ahead of our clock */
	future = test_legacy_token(TEST_LEGACY_UUID, "1700000301", "1700086400");
	g_assert_false(
		as_token_legacy_verify(future, TEST_LEGACY_SECRET, TEST_NOW_S, NULL, &error));
	g_assert_error(error, AS_ERROR, AS_ERROR_PERMISSION_DENIED);
	g_assert_cmpstr(error->message, ==, "token created in the future");
	g_clear_error(&error);
	g_assert_true(
		as_token_legacy_verify(future, TEST_LEGACY_SECRET, TEST_NOW_S + 1, NULL, &error));
	g_assert_no_error(error);

	for (guint i = 0; i < G_N_ELEMENTS(malformed); i++) {
		g_test_message("malformed %u: %s", i, malformed[i]);
		g_assert_false(as_token_looks_legacy(malformed[i]));
		g_assert_false(as_token_legacy_verify(malformed[i], TEST_LEGACY_SECRET, TEST_NOW_S,
						      NULL, &error));
		g_assert_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT);
		g_clear_error(&error);
	}

	/* minting round-trips and uses a fresh uuid */
	minted = as_token_legacy_generate(TEST_LEGACY_SECRET, TEST_NOW_S, TEST_NOW_S + 60);
	g_assert_true(as_token_looks_legacy(minted));
	g_assert_false(g_str_has_prefix(minted, TEST_LEGACY_UUID));
	g_assert_true(
		as_token_legacy_verify(minted, TEST_LEGACY_SECRET, TEST_NOW_S + 59, NULL, &error));
	g_assert_no_error(error);
	g_assert_false(
		as_token_legacy_verify(minted, TEST_LEGACY_SECRET, TEST_NOW_S + 60, NULL, &error));
	g_assert_error(error, AS_ERROR, AS_ERROR_PERMISSION_DENIED);
	g_clear_error(&error);
}

static void
test_changed_cb(AsTokenStore *store, guint *count)
{
	(*count)++;
}

/* the same behaviour whatever the backend; @reopen makes a fresh object on the same storage */
static void
test_store_common(AsTokenStore *store, AsTokenStore *(*reopen)(gpointer), gpointer reopen_data)
{
	g_autoptr(AsTokenStore) store2 = NULL;
	g_autoptr(AsTokenStore) store3 = NULL;
	g_autoptr(AsTokenInfo) info1 = NULL;
	g_autoptr(AsTokenInfo) info2 = NULL;
	g_autoptr(AsTokenInfo) revoked = NULL;
	g_autoptr(GPtrArray) list = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *token1 = NULL;
	g_autofree gchar *token2 = NULL;
	g_autofree gchar *prefix = NULL;
	g_autofree gchar *bad_token = NULL;
	guint changed = 0;
	gint64 now_s = test_now_s();

	g_signal_connect(store, "changed", G_CALLBACK(test_changed_cb), &changed);
	g_assert_true(as_token_store_load(store, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(changed, ==, 1);
	g_assert_cmpuint(as_token_store_get_count(store), ==, 0);

	token1 = as_token_store_generate(store, "laptop", 0, &info1, &error);
	g_assert_no_error(error);
	g_assert_nonnull(token1);
	g_assert_cmpuint(changed, ==, 2);
	g_assert_cmpuint(strlen(token1), ==, AS_TOKEN_LENGTH);
	g_assert_nonnull(info1);
	g_assert_cmpstr(info1->label, ==, "laptop");
	g_assert_cmpint(info1->expires, ==, 0);
	g_assert_false(info1->revoked);
	g_assert_cmpint(ABS(info1->created - now_s), <=, 5);
	{
		g_autofree gchar *id = as_token_id(token1);
		g_autofree gchar *hash = as_token_hash(token1);
		g_assert_cmpstr(info1->id, ==, id);
		g_assert_cmpstr(info1->hash, ==, hash);
	}
	test_assert_accepted(store, token1, now_s);
	test_assert_denied(store, NULL, now_s, "missing token");
	test_assert_denied(store, "", now_s, "missing token");
	bad_token = as_token_generate();
	test_assert_denied(store, bad_token, now_s, "unknown token");

	/* same id, other token: the hash must match too */
	g_clear_pointer(&bad_token, g_free);
	bad_token = g_strdup(token1);
	bad_token[AS_TOKEN_LENGTH - 1] = bad_token[AS_TOKEN_LENGTH - 1] == 'A' ? 'B' : 'A';
	test_assert_denied(store, bad_token, now_s, "unknown token");

	/* an invalid label is refused before anything is stored */
	g_assert_null(as_token_store_generate(store, "\xff\xfe", 0, NULL, &error));
	g_assert_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT);
	g_clear_error(&error);
	g_assert_cmpuint(as_token_store_get_count(store), ==, 1);

	/* reload from the backend in a new object */
	store2 = reopen(reopen_data);
	g_assert_true(as_token_store_load(store2, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(as_token_store_get_count(store2), ==, 1);
	test_assert_accepted(store2, token1, now_s);
	list = as_token_store_list(store2);
	g_assert_cmpuint(list->len, ==, 1);
	{
		AsTokenInfo *listed = g_ptr_array_index(list, 0);
		g_assert_cmpstr(listed->id, ==, info1->id);
		g_assert_cmpstr(listed->hash, ==, info1->hash);
		g_assert_cmpstr(listed->label, ==, "laptop");
		g_assert_cmpint(listed->created, ==, info1->created);
		g_assert_cmpint(listed->expires, ==, 0);
		g_assert_false(listed->revoked);
	}
	g_clear_pointer(&list, g_ptr_array_unref);

	/* a second token without label, expiring in 1 s */
	token2 = as_token_store_generate(store2, NULL, 1, &info2, &error);
	g_assert_no_error(error);
	g_assert_nonnull(token2);
	g_assert_null(info2->label);
	/* the expiry rounds up to whole seconds: it lives at least the full second asked */
	g_assert_cmpint(info2->expires, >=, info2->created + 1);
	g_assert_cmpint(info2->expires, <=, info2->created + 2);
	test_assert_accepted(store2, token2, info2->created);
	test_assert_denied(store2, token2, info2->created + 2, "token expired");
	list = as_token_store_list(store2);
	g_assert_cmpuint(list->len, ==, 2);
	g_clear_pointer(&list, g_ptr_array_unref);

	/* revoke the first by id prefix, takes effect at once */
	prefix = g_strndup(info1->id, 6);
	g_assert_true(as_token_store_revoke(store2, prefix, &revoked, &error));
	g_assert_no_error(error);
	g_assert_cmpstr(revoked->id, ==, info1->id);
	g_assert_true(revoked->revoked);
	test_assert_denied(store2, token1, now_s, "token revoked");
	test_assert_accepted(store2, token2, info2->created);

	/* revocation is persisted, and did not leave a duplicate */
	store3 = reopen(reopen_data);
	g_assert_true(as_token_store_load(store3, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(as_token_store_get_count(store3), ==, 2);
	test_assert_denied(store3, token1, now_s, "token revoked");
	test_assert_accepted(store3, token2, info2->created);
	list = as_token_store_list(store3);
	g_assert_cmpuint(list->len, ==, 2);
	for (guint i = 0; i < list->len; i++) {
		AsTokenInfo *listed = g_ptr_array_index(list, i);
		g_assert_cmpint(listed->revoked, ==, g_strcmp0(listed->id, info1->id) == 0);
		if (i > 0) {
			AsTokenInfo *prev = g_ptr_array_index(list, i - 1);
			g_assert_cmpint(prev->created, <=, listed->created);
		}
	}
	g_clear_pointer(&list, g_ptr_array_unref);

	/* revoke by whole token */
	g_assert_true(as_token_store_revoke(store3, token2, NULL, &error));
	g_assert_no_error(error);
	test_assert_denied(store3, token2, info2->created, "token revoked");

	/* not found, refused arguments */
	g_assert_false(as_token_store_revoke(store3, bad_token, NULL, &error));
	g_assert_error(error, AS_ERROR, AS_ERROR_NOT_FOUND);
	g_assert_null(strstr(error->message, bad_token));
	g_clear_error(&error);
	g_assert_false(as_token_store_revoke(store3, "abc", NULL, &error));
	g_assert_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT);
	g_clear_error(&error);
	g_assert_false(as_token_store_revoke(store3, "zzzzzz", NULL, &error));
	g_assert_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT);
	g_clear_error(&error);
}

typedef struct {
	gchar *tmpdir;
	gchar *path;
} TestFileFixture;

static void
test_file_fixture_setup(TestFileFixture *fixture, gconstpointer user_data)
{
	g_autoptr(GError) error = NULL;

	fixture->tmpdir = g_dir_make_tmp("as-token-test-XXXXXX", &error);
	g_assert_no_error(error);
	fixture->path = g_build_filename(fixture->tmpdir, "config", "tokens", NULL);
}

static void
test_file_fixture_teardown(TestFileFixture *fixture, gconstpointer user_data)
{
	test_rm_rf(fixture->tmpdir);
	g_free(fixture->tmpdir);
	g_free(fixture->path);
}

static AsTokenStore *
test_file_reopen(gpointer user_data)
{
	TestFileFixture *fixture = user_data;
	return as_token_store_file_new(fixture->path);
}

static void
test_file_store(TestFileFixture *fixture, gconstpointer user_data)
{
	g_autoptr(AsTokenStore) store = as_token_store_file_new(fixture->path);
	g_autoptr(AsTokenStore) store2 = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(AsTokenInfo) info = NULL;
	g_autofree gchar *token = NULL;
	g_autofree gchar *contents = NULL;
	g_autofree gchar *dirname = g_path_get_dirname(fixture->path);
	struct stat st = {0};

	g_assert_cmpstr(as_token_store_get_backend_name(store), ==, "file");
	g_assert_cmpstr(as_token_store_file_get_path(AS_TOKEN_STORE_FILE(store)), ==,
			fixture->path);
	test_store_common(store, test_file_reopen, fixture);

	/* a new token never reaches the disk, only its hash */
	token = as_token_store_generate(store, "desktop", 0, &info, &error);
	g_assert_no_error(error);
	g_assert_true(g_file_get_contents(fixture->path, &contents, NULL, &error));
	g_assert_no_error(error);
	g_assert_null(strstr(contents, token));
	g_assert_null(strstr(contents, token + strlen(AS_TOKEN_PREFIX)));
	g_assert_nonnull(strstr(contents, info->hash));
	g_assert_nonnull(strstr(contents, "desktop"));

	g_assert_cmpint(g_stat(fixture->path, &st), ==, 0);
	g_assert_cmpint(st.st_mode & 0777, ==, 0600);
	g_assert_cmpint(g_stat(dirname, &st), ==, 0);
	g_assert_cmpint(st.st_mode & 0777, ==, 0700);

	/* loose permissions are fixed on load */
	g_assert_cmpint(g_chmod(fixture->path, 0644), ==, 0);
	store2 = as_token_store_file_new(fixture->path);
	test_expect_warning("AsTokenStoreFile", "*accessible to other*");
	g_assert_true(as_token_store_load(store2, &error));
	test_assert_expected_warnings();
	g_assert_no_error(error);
	g_assert_cmpint(g_stat(fixture->path, &st), ==, 0);
	g_assert_cmpint(st.st_mode & 0777, ==, 0600);
	test_assert_accepted(store2, token, test_now_s());
}

static void
test_file_store_hand_written(TestFileFixture *fixture, gconstpointer user_data)
{
	g_autoptr(AsTokenStore) store = as_token_store_file_new(fixture->path);
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) list = NULL;
	g_autofree gchar *dirname = g_path_get_dirname(fixture->path);
	g_autofree gchar *hash = as_token_hash("as1_hand-written");
	g_autofree gchar *data = NULL;
	g_autoptr(AsTokenInfo) revoked = NULL;

	/* two ids sharing a prefix, one entry with a bad hash, one without "revoked" */
	data = g_strdup_printf("# kept as is\n"
			       "[abcd00000001]\nhash=%s\nlabel=one\ncreated=10\nexpires=0\n"
			       "revoked=false\n"
			       "[abcd00000002]\nhash=%s\ncreated=20\nexpires=0\nrevoked=false\n"
			       "[abcd00000003]\nhash=nothex\ncreated=30\nexpires=0\nrevoked=false\n"
			       "[ef0000000004]\nhash=%s\ncreated=40\nexpires=0\n",
			       hash, hash, hash);
	g_assert_cmpint(g_mkdir_with_parents(dirname, 0700), ==, 0);
	g_assert_true(g_file_set_contents_full(fixture->path, data, -1, G_FILE_SET_CONTENTS_NONE,
					       0600, &error));
	g_assert_no_error(error);

	test_expect_warning("AsTokenStoreFile", "*[abcd00000003]*");
	test_expect_warning("AsTokenStoreFile", "*[ef0000000004]*");
	g_assert_true(as_token_store_load(store, &error));
	test_assert_expected_warnings();
	g_assert_no_error(error);
	g_assert_cmpuint(as_token_store_get_count(store), ==, 2);
	list = as_token_store_list(store);
	g_assert_cmpstr(((AsTokenInfo *)g_ptr_array_index(list, 0))->id, ==, "abcd00000001");
	g_assert_cmpstr(((AsTokenInfo *)g_ptr_array_index(list, 1))->id, ==, "abcd00000002");

	g_assert_false(as_token_store_revoke(store, "abcd", NULL, &error));
	g_assert_error(error, AS_ERROR, AS_ERROR_AMBIGUOUS);
	g_clear_error(&error);
	g_assert_false(as_token_store_revoke(store, "ABCD0000000", NULL, &error));
	g_assert_error(error, AS_ERROR, AS_ERROR_AMBIGUOUS);
	g_clear_error(&error);
	g_assert_false(as_token_store_revoke(store, "ffff", NULL, &error));
	g_assert_error(error, AS_ERROR, AS_ERROR_NOT_FOUND);
	g_clear_error(&error);
	g_assert_false(as_token_store_revoke(store, "abcd000000010", NULL, &error));
	g_assert_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT);
	g_clear_error(&error);
	g_assert_true(as_token_store_revoke(store, "ABCD00000002", &revoked, &error));
	g_assert_no_error(error);
	g_assert_cmpstr(revoked->id, ==, "abcd00000002");

	/* the rewrite keeps other entries and comments, and the bad ones stay rejected */
	g_clear_pointer(&data, g_free);
	g_assert_true(g_file_get_contents(fixture->path, &data, NULL, &error));
	g_assert_no_error(error);
	g_assert_nonnull(strstr(data, "# kept as is"));
	g_assert_nonnull(strstr(data, "[abcd00000001]"));
	g_assert_nonnull(strstr(data, "[abcd00000003]"));
	g_assert_nonnull(strstr(data, "revoked=true"));
}

static void
test_file_store_static_and_legacy(TestFileFixture *fixture, gconstpointer user_data)
{
	g_autoptr(AsTokenStore) store = as_token_store_file_new(fixture->path);
	g_autoptr(AsTokenStore) store2 = NULL;
	g_autoptr(AsTokenInfo) info = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *legacy = NULL;
	g_autofree gchar *legacy2 = NULL;
	g_autofree gchar *legacy_id = NULL;
	gint64 now_s = test_now_s();

	g_assert_true(as_token_store_load(store, &error));
	g_assert_no_error(error);

	/* static tokens are accepted as long as they are set, and never stored */
	as_token_store_add_static_token(store, "a-static-token-from-a-file");
	as_token_store_add_static_token(store, "a-static-token-from-a-file");
	as_token_store_add_static_token(store, "");
	test_assert_accepted(store, "a-static-token-from-a-file", now_s);
	test_assert_denied(store, "a-static-token-from-a-fil", now_s, "unknown token");
	g_assert_cmpuint(as_token_store_get_count(store), ==, 0);
	g_assert_false(g_file_test(fixture->path, G_FILE_TEST_EXISTS));
	as_token_store_clear_static_tokens(store);
	test_assert_denied(store, "a-static-token-from-a-file", now_s, "unknown token");

	/* 0.x tokens only with a secret */
	legacy = as_token_legacy_generate(TEST_LEGACY_SECRET, now_s, now_s + 3600);
	legacy2 = as_token_legacy_generate(TEST_LEGACY_SECRET, now_s, now_s + 3600);
	test_assert_denied(store, legacy, now_s, "unknown token");
	as_token_store_set_legacy_secret(store, TEST_LEGACY_SECRET);
	test_assert_accepted(store, legacy, now_s);
	test_assert_accepted(store, legacy2, now_s);
	test_assert_denied(store, legacy, now_s + 3600, "token expired");
	as_token_store_set_legacy_secret(store, "another secret");
	test_assert_denied(store, legacy, now_s, "invalid token signature");
	as_token_store_set_legacy_secret(store, TEST_LEGACY_SECRET);

	/* revoking a whole 0.x token remembers its uuid */
	g_assert_true(as_token_store_revoke(store, legacy, &info, &error));
	g_assert_no_error(error);
	legacy_id = g_strndup(legacy, AS_TOKEN_LEGACY_UUID_LENGTH);
	g_assert_true(g_str_has_prefix(info->id, "legacy-"));
	g_assert_cmpstr(info->id + strlen("legacy-"), ==, legacy_id);
	g_assert_true(info->revoked);
	test_assert_denied(store, legacy, now_s, "token revoked");
	test_assert_accepted(store, legacy2, now_s);

	/* and keeps it after a restart */
	store2 = as_token_store_file_new(fixture->path);
	g_assert_true(as_token_store_load(store2, &error));
	g_assert_no_error(error);
	as_token_store_set_legacy_secret(store2, TEST_LEGACY_SECRET);
	test_assert_denied(store2, legacy, now_s, "token revoked");
	test_assert_accepted(store2, legacy2, now_s);
	as_token_store_set_legacy_secret(store2, NULL);
	test_assert_denied(store2, legacy2, now_s, "unknown token");
}

typedef struct {
	AsTokenStore *store;
	const gchar *token;
	gint failures;
} TestThreadData;

static gpointer
test_check_thread_cb(gpointer user_data)
{
	TestThreadData *data = user_data;

	for (guint i = 0; i < TEST_THREAD_CHECKS; i++) {
		if (!as_token_store_check(data->store, data->token, test_now_s(), NULL))
			g_atomic_int_inc(&data->failures);
	}
	return NULL;
}

static void
test_file_store_threads(TestFileFixture *fixture, gconstpointer user_data)
{
	g_autoptr(AsTokenStore) store = as_token_store_file_new(fixture->path);
	g_autoptr(GError) error = NULL;
	g_autofree gchar *token = NULL;
	GThread *threads[TEST_THREADS];
	TestThreadData data = {0};

	token = as_token_store_generate(store, "threads", 0, NULL, &error);
	g_assert_no_error(error);
	data.store = store;
	data.token = token;
	for (guint i = 0; i < TEST_THREADS; i++)
		threads[i] = g_thread_new("check", test_check_thread_cb, &data);

	/* writers and reloads while readers check */
	for (guint i = 0; i < 10; i++) {
		g_autofree gchar *other = as_token_store_generate(store, NULL, 0, NULL, &error);
		g_assert_no_error(error);
		g_assert_true(as_token_store_revoke(store, other, NULL, &error));
		g_assert_no_error(error);
		g_assert_true(as_token_store_load(store, &error));
		g_assert_no_error(error);
	}
	for (guint i = 0; i < TEST_THREADS; i++)
		g_thread_join(threads[i]);
	g_assert_cmpint(data.failures, ==, 0);
	g_assert_cmpuint(as_token_store_get_count(store), ==, 11);
}

static void
test_store_new_auto(TestFileFixture *fixture, gconstpointer user_data)
{
	g_autoptr(AsTokenStore) store = NULL;
	g_autoptr(AsTokenStore) store_auto = NULL;
	g_autoptr(AsTokenStore) store_file = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *config_dir = g_path_get_dirname(fixture->path);
	g_autofree gchar *token = NULL;

	store = as_token_store_new_auto(config_dir, "bogus", &error);
	g_assert_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT);
	g_assert_null(store);
	g_clear_error(&error);

	/* no tokens file yet: the Secret Service if there is one */
	store_auto = as_token_store_new_auto(config_dir, NULL, &error);
	g_assert_no_error(error);
	g_assert_nonnull(store_auto);
	g_assert_cmpstr(as_token_store_get_backend_name(store_auto), ==,
			HAVE_LIBSECRET ? "secret-service" : "file");

	/* an explicit file store, then auto keeps using that file */
	store_file = as_token_store_new_auto(config_dir, "file", &error);
	g_assert_no_error(error);
	g_assert_cmpstr(as_token_store_get_backend_name(store_file), ==, "file");
	token = as_token_store_generate(store_file, "auto", 0, NULL, &error);
	g_assert_no_error(error);
	g_assert_true(g_file_test(fixture->path, G_FILE_TEST_IS_REGULAR));
	g_clear_object(&store_auto);
	store_auto = as_token_store_new_auto(config_dir, "auto", &error);
	g_assert_no_error(error);
	g_assert_cmpstr(as_token_store_get_backend_name(store_auto), ==, "file");
	test_assert_accepted(store_auto, token, test_now_s());

#if !HAVE_LIBSECRET
	store = as_token_store_new_auto(config_dir, "secret-service", &error);
	g_assert_error(error, AS_ERROR, AS_ERROR_NOT_SUPPORTED);
	g_assert_null(store);
#endif
}

#if HAVE_LIBSECRET
static AsTokenStore *
test_secret_reopen(gpointer user_data)
{
	g_autoptr(GError) error = NULL;
	AsTokenStore *store = as_token_store_secret_new(user_data, &error);

	g_assert_no_error(error);
	g_assert_nonnull(store);
	return store;
}

static guint
test_secret_count_items(const gchar *store_key)
{
	const SecretSchema schema = {AS_TOKEN_STORE_SECRET_SCHEMA,
				     SECRET_SCHEMA_NONE,
				     {{"store", SECRET_SCHEMA_ATTRIBUTE_STRING}, {NULL, 0}}};
	g_autoptr(GError) error = NULL;
	GList *items = secret_password_search_sync(&schema, SECRET_SEARCH_ALL, NULL, &error,
						   "store", store_key, NULL);
	guint count = g_list_length(items);

	g_assert_no_error(error);
	g_list_free_full(items, g_object_unref);
	return count;
}
#endif

static void
test_secret_store(void)
{
#if HAVE_LIBSECRET
	g_autofree gchar *store_key = g_build_filename(test_secret_dir, "config", NULL);
	g_autoptr(AsTokenStore) store = NULL;
	g_autoptr(AsTokenStore) other = NULL;
	g_autoptr(GError) error = NULL;

	store = as_token_store_secret_new(store_key, &error);
	g_assert_no_error(error);
	g_assert_nonnull(store);
	g_assert_cmpstr(as_token_store_get_backend_name(store), ==, "secret-service");
	test_store_common(store, test_secret_reopen, store_key);

	/* an update replaced the item instead of adding one */
	g_assert_cmpuint(test_secret_count_items(store_key), ==, 2);

	/* another config dir sees none of these */
	other = as_token_store_secret_new(TEST_SECRET_KEY_OTHER, &error);
	g_assert_no_error(error);
	g_assert_true(as_token_store_load(other, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(as_token_store_get_count(other), ==, 0);
#else
	g_autoptr(GError) error = NULL;
	g_autoptr(AsTokenStore) store = as_token_store_secret_new("/tmp", &error);

	g_assert_error(error, AS_ERROR, AS_ERROR_NOT_SUPPORTED);
	g_assert_null(store);
	g_test_skip("built without libsecret");
#endif
}

#if HAVE_LIBSECRET
/* a Secret Service that owns its name but never answers: its objects are registered from a
 * main context that nobody iterates, so every call stays queued */
static const gchar test_fake_secret_xml[] =
	"<node>"
	"  <interface name='org.freedesktop.Secret.Service'>"
	"    <method name='OpenSession'>"
	"      <arg type='s' direction='in'/><arg type='v' direction='in'/>"
	"      <arg type='v' direction='out'/><arg type='o' direction='out'/>"
	"    </method>"
	"    <method name='SearchItems'>"
	"      <arg type='a{ss}' direction='in'/>"
	"      <arg type='ao' direction='out'/><arg type='ao' direction='out'/>"
	"    </method>"
	"    <property name='Collections' type='ao' access='read'/>"
	"  </interface>"
	"</node>";

static void
test_fake_secret_method_cb(GDBusConnection *connection,
			   const gchar *sender,
			   const gchar *object_path,
			   const gchar *interface_name,
			   const gchar *method_name,
			   GVariant *parameters,
			   GDBusMethodInvocation *invocation,
			   gpointer user_data)
{
	g_assert_not_reached();
}

static void
test_secret_timeout_subprocess(void)
{
	const GDBusInterfaceVTable vtable = {test_fake_secret_method_cb, NULL, NULL};
	g_autoptr(GError) error = NULL;
	g_autoptr(GTestDBus) bus = NULL;
	g_autoptr(GDBusConnection) fake = NULL;
	g_autoptr(GDBusConnection) shared = NULL;
	g_autoptr(GDBusNodeInfo) node = NULL;
	g_autoptr(GMainContext) context = g_main_context_new();
	g_autoptr(GVariant) reply = NULL;
	g_autoptr(AsTokenStore) store = NULL;
	g_autofree gchar *runtime_dir = NULL;
	g_autofree gchar *config_dir = NULL;
	guint32 request_reply = 0;
	gint64 start_us;
	gint64 elapsed_ms;

	/* the real Secret Service protocol, before libsecret picks a backend */
	g_setenv("SECRET_BACKEND", "service", TRUE);

	/* no session bus at all */
	runtime_dir = g_build_filename(test_secret_dir, "runtime", NULL);
	g_assert_cmpint(g_mkdir_with_parents(runtime_dir, 0700), ==, 0);
	g_setenv("XDG_RUNTIME_DIR", runtime_dir, TRUE);
	g_unsetenv("DBUS_SESSION_BUS_ADDRESS");
	g_assert_false(as_token_store_secret_is_available(1000, &error));
	g_assert_error(error, AS_ERROR, AS_ERROR_NOT_SUPPORTED);
	g_clear_error(&error);

	/* a bus without the service */
	bus = g_test_dbus_new(G_TEST_DBUS_NONE);
	g_test_dbus_up(bus);
	g_assert_false(as_token_store_secret_is_available(1000, &error));
	g_assert_error(error, AS_ERROR, AS_ERROR_NOT_SUPPORTED);
	g_clear_error(&error);

	/* a service that hangs */
	fake = g_dbus_connection_new_for_address_sync(
		g_test_dbus_get_bus_address(bus),
		G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
			G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
		NULL, NULL, &error);
	g_assert_no_error(error);
	node = g_dbus_node_info_new_for_xml(test_fake_secret_xml, &error);
	g_assert_no_error(error);
	g_main_context_push_thread_default(context);
	g_assert_cmpuint(g_dbus_connection_register_object(fake, "/org/freedesktop/secrets",
							   node->interfaces[0], &vtable, NULL, NULL,
							   &error),
			 !=, 0);
	g_main_context_pop_thread_default(context);
	g_assert_no_error(error);
	reply = g_dbus_connection_call_sync(
		fake, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
		"RequestName", g_variant_new("(su)", "org.freedesktop.secrets", 0u),
		G_VARIANT_TYPE("(u)"), G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
	g_assert_no_error(error);
	g_variant_get(reply, "(u)", &request_reply);
	g_assert_cmpuint(request_reply, ==, 1);
	g_assert_true(as_token_store_secret_is_available(1000, &error));
	g_assert_no_error(error);

	/* an explicit store gives up after its timeout */
	store = as_token_store_secret_new("/timeout-test", &error);
	g_assert_no_error(error);
	as_token_store_secret_set_timeout(AS_TOKEN_STORE_SECRET(store), 500);
	start_us = g_get_monotonic_time();
	g_assert_false(as_token_store_load(store, &error));
	elapsed_ms = (g_get_monotonic_time() - start_us) / 1000;
	g_assert_error(error, AS_ERROR, AS_ERROR_IO);
	g_assert_nonnull(strstr(error->message, "did not answer within 500 ms"));
	g_assert_cmpint(elapsed_ms, >=, 400);
	g_assert_cmpint(elapsed_ms, <, 5000);
	g_clear_error(&error);
	g_clear_object(&store);

	/* "auto" falls back to the file in about 3 s */
	config_dir = g_build_filename(test_secret_dir, "auto-timeout", NULL);
	start_us = g_get_monotonic_time();
	store = as_token_store_new_auto(config_dir, "auto", &error);
	elapsed_ms = (g_get_monotonic_time() - start_us) / 1000;
	g_assert_no_error(error);
	g_assert_cmpstr(as_token_store_get_backend_name(store), ==, "file");
	g_assert_cmpint(elapsed_ms, >=, 2500);
	g_assert_cmpint(elapsed_ms, <, 15000);

	/* the shared connection must survive the bus going away */
	shared = g_bus_get_sync(G_BUS_TYPE_SESSION, NULL, &error);
	g_assert_no_error(error);
	g_dbus_connection_set_exit_on_close(shared, FALSE);
	g_dbus_connection_set_exit_on_close(fake, FALSE);
	g_test_dbus_stop(bus);
}
#endif

static void
test_secret_timeout(void)
{
#if HAVE_LIBSECRET
	if (g_test_subprocess()) {
		test_secret_timeout_subprocess();
		return;
	}
	g_test_trap_subprocess(NULL, 60 * G_USEC_PER_SEC, G_TEST_SUBPROCESS_DEFAULT);
	g_test_trap_assert_passed();
	g_test_trap_assert_stderr("*tokens are stored in*(no Secret Service)*");
#else
	g_test_skip("built without libsecret");
#endif
}

int
main(int argc, char **argv)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *keyring = NULL;
	int rc;

	/* libsecret's file keyring instead of a keyring daemon, set before any libsecret call */
	test_secret_dir = g_dir_make_tmp("as-token-secret-XXXXXX", &error);
	g_assert_no_error(error);
	keyring = g_build_filename(test_secret_dir, "file.keyring", NULL);
	g_setenv("SECRET_BACKEND", "file", TRUE);
	g_setenv("SECRET_FILE_TEST_PATH", keyring, TRUE);
	g_setenv("SECRET_FILE_TEST_PASSWORD", "pass", TRUE);

	g_log_set_writer_func(test_log_writer_cb, NULL, NULL);
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/aerosync/token/generate", test_token_generate);
	g_test_add_func("/aerosync/token/id-hash", test_token_id_hash);
	g_test_add_func("/aerosync/token/headers", test_token_headers);
	g_test_add_func("/aerosync/token/legacy", test_token_legacy);
	g_test_add("/aerosync/token/file-store", TestFileFixture, NULL, test_file_fixture_setup,
		   test_file_store, test_file_fixture_teardown);
	g_test_add("/aerosync/token/file-store-hand-written", TestFileFixture, NULL,
		   test_file_fixture_setup, test_file_store_hand_written,
		   test_file_fixture_teardown);
	g_test_add("/aerosync/token/file-store-static-legacy", TestFileFixture, NULL,
		   test_file_fixture_setup, test_file_store_static_and_legacy,
		   test_file_fixture_teardown);
	g_test_add("/aerosync/token/file-store-threads", TestFileFixture, NULL,
		   test_file_fixture_setup, test_file_store_threads, test_file_fixture_teardown);
	g_test_add("/aerosync/token/new-auto", TestFileFixture, NULL, test_file_fixture_setup,
		   test_store_new_auto, test_file_fixture_teardown);
	g_test_add_func("/aerosync/token/secret-store", test_secret_store);
	g_test_add_func("/aerosync/token/secret-timeout", test_secret_timeout);
	rc = g_test_run();

	test_rm_rf(test_secret_dir);
	g_free(test_secret_dir);
	return rc;
}
