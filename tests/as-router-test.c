/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include "as-error.h"
#include "as-router.h"

static AsRouter *
as_test_router(const gchar *text)
{
	g_autoptr(GKeyFile) kf = g_key_file_new();
	g_autoptr(GError) error = NULL;
	AsRouter *router = as_router_new();

	g_assert_true(g_key_file_load_from_data(kf, text, -1, G_KEY_FILE_NONE, &error));
	g_assert_no_error(error);
	g_assert_true(as_router_load_key_file(router, kf, &error));
	g_assert_no_error(error);
	return router;
}

static void
as_test_check(AsRouter *router,
	      const gchar *rel,
	      const gchar *tag,
	      const gchar *ip,
	      const gchar *expected)
{
	g_autofree gchar *routed = as_router_route(router, rel, tag, ip, NULL);
	g_assert_cmpstr(routed, ==, expected);
}

static void
as_router_criteria_func(void)
{
	g_autoptr(AsRouter) router = as_test_router("[daemon]\nport=1\n"
						    "[route raw-photos]\n"
						    "tag=camera\n"
						    "extension=CR2;nef\n"
						    "destination=photos/raw\n"
						    "[route lan]\n"
						    "sender-ip=10.0.0.0/8;fd00::/8;192.168.1.7\n"
						    "destination=lan\n"
						    "[route images]\n"
						    "extension=.jpg;PNG\n"
						    "destination=images\n");

	g_assert_cmpuint(as_router_get_count(router), ==, 3);
	/* all given criteria must match: the tag alone is not enough */
	as_test_check(router, "a/IMG_1.cr2", "camera", NULL, "photos/raw/a/IMG_1.cr2");
	as_test_check(router, "IMG_1.cr2", "phone", NULL, "IMG_1.cr2");
	as_test_check(router, "notes.txt", "camera", NULL, "notes.txt");
	/* CIDR v4 and v6, exact address, IPv4-mapped IPv6 peers */
	as_test_check(router, "x.bin", NULL, "10.1.2.3", "lan/x.bin");
	as_test_check(router, "x.bin", NULL, "fd12::1", "lan/x.bin");
	as_test_check(router, "x.bin", NULL, "192.168.1.7", "lan/x.bin");
	as_test_check(router, "x.bin", NULL, "192.168.1.8", "x.bin");
	as_test_check(router, "x.bin", NULL, "::ffff:10.9.9.9", "lan/x.bin");
	/* first match wins: a LAN jpg goes to lan, not images */
	as_test_check(router, "p.JPG", NULL, "10.0.0.1", "lan/p.JPG");
	as_test_check(router, "p.JPG", NULL, "127.0.0.1", "images/p.JPG");
	as_test_check(router, "d/p.png", NULL, NULL, "images/d/p.png");
	/* the extension is the last dot of the base name, never of a folder */
	as_test_check(router, "a.jpg/readme", NULL, NULL, "a.jpg/readme");
	as_test_check(router, ".jpg", NULL, NULL, ".jpg");
}

static void
as_router_invalid_func(void)
{
	const gchar *bad[] = {
		"[route a]\nextension=jpg\n",			     /* no destination */
		"[route a]\ndestination=../out\n",		     /* escapes */
		"[route a]\ndestination=/etc\n",		     /* absolute */
		"[route a]\ndestination=.aerosync/x\n",		     /* staging */
		"[route a]\ndestination=x\nsender-ip=10.0.0.0/99\n", /* bad mask */
		"[route a]\ndestination=x\nsender_ip=10.0.0.1\n",    /* unknown key */
	};
	g_autoptr(AsRouter) router = as_test_router("[route keep]\ndestination=kept\n");

	for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
		g_autoptr(GKeyFile) kf = g_key_file_new();
		g_autoptr(GError) error = NULL;
		g_assert_true(g_key_file_load_from_data(kf, bad[i], -1, G_KEY_FILE_NONE, NULL));
		g_assert_false(as_router_load_key_file(router, kf, &error));
		g_assert_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT);
		/* a rejected set leaves the rules in force untouched */
		as_test_check(router, "f", NULL, NULL, "kept/f");
	}
}

static void
as_router_empty_func(void)
{
	g_autoptr(AsRouter) router = as_router_new();
	as_test_check(router, "a/b.txt", "t", "10.0.0.1", "a/b.txt");
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/aerosync/router/criteria", as_router_criteria_func);
	g_test_add_func("/aerosync/router/invalid", as_router_invalid_func);
	g_test_add_func("/aerosync/router/empty", as_router_empty_func);
	return g_test_run();
}
