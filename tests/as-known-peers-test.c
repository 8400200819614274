/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "AsKnownPeersTest"

#include "config.h"

#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>

#include "as-error.h"
#include "as-known-peers.h"

#define FP_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define FP_B "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

typedef struct {
	gchar *tmpdir;
	gchar *path; /* tmpdir/state/aerosync/known_peers: the folders do not exist yet */
} TestFixture;

static void
test_rmtree(const gchar *path)
{
	GDir *dir = g_dir_open(path, 0, NULL);
	const gchar *name;

	if (dir == NULL) {
		(void)g_unlink(path);
		return;
	}
	while ((name = g_dir_read_name(dir)) != NULL) {
		g_autofree gchar *child = g_build_filename(path, name, NULL);
		test_rmtree(child);
	}
	g_dir_close(dir);
	(void)g_rmdir(path);
}

static void
test_setup(TestFixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	fx->tmpdir = g_dir_make_tmp("as-known-peers-XXXXXX", &error);
	g_assert_no_error(error);
	fx->path = g_build_filename(fx->tmpdir, "state", "aerosync", AS_KNOWN_PEERS_FILENAME, NULL);
}

static void
test_teardown(TestFixture *fx, gconstpointer data)
{
	test_rmtree(fx->tmpdir);
	g_free(fx->tmpdir);
	g_free(fx->path);
}

static gchar *
test_read(const gchar *path)
{
	g_autoptr(GError) error = NULL;
	gchar *contents = NULL;
	g_file_get_contents(path, &contents, NULL, &error);
	g_assert_no_error(error);
	return contents;
}

static void
test_write(const gchar *path, const gchar *text)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *dir = g_path_get_dirname(path);
	g_assert_cmpint(g_mkdir_with_parents(dir, 0700), ==, 0);
	g_file_set_contents(path, text, -1, &error);
	g_assert_no_error(error);
}

static void
test_known_peers_key(void)
{
	struct {
		const gchar *host;
		guint16 port;
		const gchar *key;
	} cases[] = {
		{"127.0.0.1", 7789, "127.0.0.1:7789"},
		{"Laptop.Local.", 7789, "laptop.local:7789"},
		{"::1", 7789, "[::1]:7789"},
		{"[::1]", 1, "[::1]:1"},
		{"FE80::1%eth0", 65535, "[fe80::1%eth0]:65535"},
	};
	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autofree gchar *key = as_known_peers_make_key(cases[i].host, cases[i].port);
		g_assert_cmpstr(key, ==, cases[i].key);
	}
}

/* first use records the peer in a new 0600 file; the same fingerprint passes after */
static void
test_known_peers_tofu(TestFixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *contents = NULL;
	gboolean recorded = FALSE;
	GStatBuf st;

	g_assert_true(as_known_peers_check(fx->path, "127.0.0.1:7789", FP_A, &recorded, &error));
	g_assert_no_error(error);
	g_assert_true(recorded);
	g_assert_cmpint(g_stat(fx->path, &st), ==, 0);
	g_assert_cmpint(st.st_mode & 0777, ==, 0600);
	contents = test_read(fx->path);
	g_assert_cmpstr(contents, ==, "127.0.0.1:7789 " FP_A "\n");

	/* upper-case hex is the same fingerprint */
	g_assert_true(as_known_peers_check(
		fx->path, "127.0.0.1:7789",
		"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", &recorded,
		&error));
	g_assert_no_error(error);
	g_assert_false(recorded);

	/* another port is another peer */
	g_assert_true(as_known_peers_check(fx->path, "127.0.0.1:7790", FP_B, &recorded, &error));
	g_assert_no_error(error);
	g_assert_true(recorded);
	g_clear_pointer(&contents, g_free);
	contents = test_read(fx->path);
	g_assert_cmpstr(contents, ==, "127.0.0.1:7789 " FP_A "\n127.0.0.1:7790 " FP_B "\n");
}

/* a changed certificate is refused loudly: file, line, both fingerprints, the way out */
static void
test_known_peers_changed(TestFixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *before = NULL;
	g_autofree gchar *after = NULL;
	g_autofree gchar *where = NULL;
	gboolean recorded = TRUE;

	test_write(fx->path, "# my receivers\n\nnas.local:7789 " FP_A "\n[::1]:7789 " FP_A "\n");
	before = test_read(fx->path);
	g_assert_false(as_known_peers_check(fx->path, "[::1]:7789", FP_B, &recorded, &error));
	g_assert_error(error, AS_ERROR, AS_ERROR_PERMISSION_DENIED);
	g_assert_false(recorded);
	where = g_strdup_printf("%s line 4", fx->path);
	g_assert_nonnull(strstr(error->message, "CHANGED"));
	g_assert_nonnull(strstr(error->message, where));
	g_assert_nonnull(strstr(error->message, FP_A));
	g_assert_nonnull(strstr(error->message, FP_B));
	g_assert_nonnull(strstr(error->message, "[::1]:7789"));
	g_assert_nonnull(strstr(error->message, "delete line 4"));
	/* nothing was written */
	after = test_read(fx->path);
	g_assert_cmpstr(before, ==, after);
}

/* replace and remove keep comments and the order of the other lines */
static void
test_known_peers_edit(TestFixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(AsKnownPeers) peers = NULL;
	g_autofree gchar *contents = NULL;
	guint line = 0;

	test_write(fx->path, "# comment\r\na:1 " FP_A "\n  b:2\t" FP_A "  \nA:1 " FP_B "\n");
	peers = as_known_peers_load(fx->path, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(as_known_peers_lookup(peers, "a:1", &line), ==, FP_A);
	g_assert_cmpuint(line, ==, 2);
	g_assert_cmpstr(as_known_peers_lookup(peers, "b:2", &line), ==, FP_A);
	g_assert_cmpuint(line, ==, 3);
	g_assert_null(as_known_peers_lookup(peers, "c:3", &line));
	g_assert_cmpuint(line, ==, 0);
	g_assert_false(as_known_peers_add(peers, "a:1", FP_B));

	g_assert_true(as_known_peers_replace(peers, "a:1", FP_B));
	g_assert_false(as_known_peers_replace(peers, "c:3", FP_B));
	g_assert_true(as_known_peers_remove(peers, "b:2"));
	g_assert_false(as_known_peers_remove(peers, "b:2"));
	g_assert_true(as_known_peers_add(peers, "[::1]:9", FP_A));
	as_known_peers_save(peers, &error);
	g_assert_no_error(error);
	contents = test_read(fx->path);
	g_assert_cmpstr(contents, ==, "# comment\na:1 " FP_B "\nc:3 " FP_B "\n[::1]:9 " FP_A "\n");
}

/* a broken file is an error that names the line, never an empty list */
static void
test_known_peers_malformed(TestFixture *fx, gconstpointer data)
{
	const gchar *bad[] = {
		"a:1 " FP_A "\nno-port " FP_A "\n", "a:1 " FP_A "\nb:0 " FP_A "\n",
		"a:1 " FP_A "\nb:1 nothex\n",	    "a:1 " FP_A "\nb:1 " FP_A " extra\n",
		"a:1 " FP_A "\n::1:1 " FP_A "\n",   "a:1 " FP_A "\nb:1\n",
	};
	for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(AsKnownPeers) peers = NULL;
		g_autofree gchar *where = g_strdup_printf("%s line 2", fx->path);

		test_write(fx->path, bad[i]);
		peers = as_known_peers_load(fx->path, &error);
		g_assert_null(peers);
		g_assert_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT);
		g_assert_nonnull(strstr(error->message, where));
		g_clear_error(&error);
		g_assert_false(as_known_peers_check(fx->path, "a:1", FP_A, NULL, &error));
		g_assert_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT);
	}
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/aerosync/known-peers/key", test_known_peers_key);
	g_test_add("/aerosync/known-peers/tofu", TestFixture, NULL, test_setup,
		   test_known_peers_tofu, test_teardown);
	g_test_add("/aerosync/known-peers/changed", TestFixture, NULL, test_setup,
		   test_known_peers_changed, test_teardown);
	g_test_add("/aerosync/known-peers/edit", TestFixture, NULL, test_setup,
		   test_known_peers_edit, test_teardown);
	g_test_add("/aerosync/known-peers/malformed", TestFixture, NULL, test_setup,
		   test_known_peers_malformed, test_teardown);
	return g_test_run();
}
