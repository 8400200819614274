/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <signal.h>

#include "as-test-daemon.h"

/* routing rules and live reload: SIGHUP and Manager1.Reload re-read the config and the
 * running server follows at once; a broken config is refused and the old one stays */

static void
as_test_write_config(const gchar *path, const gchar *text)
{
	g_autoptr(GError) error = NULL;
	g_file_set_contents(path, text, -1, &error);
	g_assert_no_error(error);
}

static void
as_test_put(
	AsTestDaemon *d, const gchar *name, const gchar *tag, guint status, const gchar *saved_as)
{
	g_autofree gchar *path = g_strdup_printf("/upload/%s", name);
	g_autoptr(SoupMessage) msg =
		as_test_daemon_message(d, "PUT", path, as_test_daemon_get_token(d));
	g_autoptr(GBytes) body = g_bytes_new_static("routed", 6);
	g_autoptr(AsTestReply) reply = NULL;

	if (tag != NULL)
		soup_message_headers_replace(soup_message_get_request_headers(msg),
					     "X-AeroSync-Tag", tag);
	reply = as_test_daemon_send(d, msg, body, "application/octet-stream");
	as_test_reply_assert_status(reply, status);
	if (saved_as != NULL) {
		g_autofree gchar *file =
			g_build_filename(as_test_daemon_get_save_dir(d), saved_as, NULL);
		g_assert_cmpstr(
			json_object_get_string_member(as_test_reply_object(reply), "filename"), ==,
			saved_as);
		g_assert_true(g_file_test(file, G_FILE_TEST_IS_REGULAR));
	}
}

static gboolean
as_test_history_has_reload_cb(gpointer user_data)
{
	AsTestDaemon *d = user_data;
	g_autofree gchar *name = g_strdup("reloaded.jpg");
	g_autofree gchar *file =
		g_build_filename(as_test_daemon_get_save_dir(d), "cam", name, NULL);
	g_autoptr(SoupMessage) msg = as_test_daemon_message(d, "PUT", "/upload/reloaded.jpg",
							    as_test_daemon_get_token(d));
	g_autoptr(GBytes) body = g_bytes_new_static("x", 1);
	g_autoptr(AsTestReply) reply = NULL;

	soup_message_headers_replace(soup_message_get_request_headers(msg), "X-AeroSync-Tag",
				     "camera");
	reply = as_test_daemon_send(d, msg, body, "application/octet-stream");
	return reply->status == SOUP_STATUS_OK && g_file_test(file, G_FILE_TEST_IS_REGULAR);
}

static void
as_reload_sighup_func(void)
{
	g_autoptr(AsTestDaemon) d = as_test_daemon_new();
	g_autofree gchar *conf =
		g_build_filename(as_test_daemon_get_root(d), "aerosyncd.conf", NULL);
	g_autoptr(GError) error = NULL;
	g_autofree gchar *config_arg = NULL;

	as_test_write_config(conf, "[daemon]\nmax-size=1MiB\n"
				   "[route images]\nextension=jpg;png\ndestination=images\n");
	config_arg = g_strdup_printf("--config=%s", conf);
	as_test_daemon_add_arg(d, config_arg);
	g_assert_true(as_test_daemon_start(d, &error));
	g_assert_no_error(error);

	/* routing applies to uploads as configured at start */
	as_test_put(d, "a.JPG", NULL, SOUP_STATUS_OK, "images/a.JPG");
	as_test_put(d, "b.txt", "camera", SOUP_STATUS_OK, "b.txt");

	/* a new rule and a new route order arrive with SIGHUP */
	as_test_write_config(conf, "[daemon]\nmax-size=1MiB\n"
				   "[route camera]\ntag=camera\ndestination=cam\n"
				   "[route images]\nextension=jpg\ndestination=images\n");
	as_test_daemon_send_signal(d, SIGHUP);
	g_assert_true(as_test_wait_for(as_test_history_has_reload_cb, d, 10000));
	as_test_put(d, "c.jpg", NULL, SOUP_STATUS_OK, "images/c.jpg");
	as_test_put(d, "d.png", NULL, SOUP_STATUS_OK, "d.png");

	/* a config that does not parse is refused: the rules in force stay */
	as_test_write_config(conf, "[daemon]\nmax-size=lots\n[route x]\ndestination=../../etc\n");
	as_test_daemon_send_signal(d, SIGHUP);
	g_usleep(500 * 1000);
	g_assert_true(as_test_daemon_is_running(d));
	as_test_put(d, "e.txt", "camera", SOUP_STATUS_OK, "cam/e.txt");

	/* routed folders stay confined: a hostile name under a route is still refused */
	as_test_put(d, "..%2Fescape.jpg", NULL, SOUP_STATUS_BAD_REQUEST, NULL);
	g_assert_cmpint(as_test_daemon_stop(d), ==, 0);
}

static void
as_reload_dbus_func(void)
{
	g_autoptr(GTestDBus) bus = g_test_dbus_new(G_TEST_DBUS_NONE);
	g_autoptr(AsTestDaemon) d = NULL;
	g_autoptr(GDBusConnection) conn = NULL;
	g_autoptr(GVariant) ret = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *conf = NULL;
	g_autofree gchar *config_arg = NULL;
	g_autofree const gchar **applied = NULL;
	g_autofree const gchar **restart = NULL;

	g_test_dbus_up(bus);
	d = as_test_daemon_new();
	as_test_daemon_set_dbus_address(d, g_test_dbus_get_bus_address(bus));
	conf = g_build_filename(as_test_daemon_get_root(d), "aerosyncd.conf", NULL);
	as_test_write_config(conf, "[daemon]\nauth=false\n");
	config_arg = g_strdup_printf("--config=%s", conf);
	as_test_daemon_add_arg(d, config_arg);
	g_assert_true(as_test_daemon_start(d, &error));
	g_assert_no_error(error);
	conn = g_dbus_connection_new_for_address_sync(
		g_test_dbus_get_bus_address(bus),
		G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
			G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
		NULL, NULL, &error);
	g_assert_no_error(error);

	/* without auth a request with no token gets through */
	{
		g_autoptr(SoupMessage) msg = as_test_daemon_message(d, "GET", "/status", NULL);
		g_autoptr(AsTestReply) reply = as_test_daemon_send(d, msg, NULL, NULL);
		as_test_reply_assert_status(reply, SOUP_STATUS_OK);
	}

	/* turning auth on applies at once; a port change is only reported */
	as_test_write_config(conf, "[daemon]\nauth=true\nport=1\nquic-port=2\nhttps=true\n"
				   "https-port=3\n[route t]\ntag=t\ndestination=tagged\n");
	ret = g_dbus_connection_call_sync(
		conn, "org.aerosync", "/org/aerosync", "org.aerosync.Manager1", "Reload", NULL,
		G_VARIANT_TYPE("(asas)"), G_DBUS_CALL_FLAGS_NONE, 10000, NULL, &error);
	g_assert_no_error(error);
	g_variant_get(ret, "(^a&s^a&s)", &applied, &restart);
	g_assert_true(g_strv_contains(applied, "auth"));
	g_assert_true(g_strv_contains(applied, "routes"));
	g_assert_false(g_strv_contains(restart, "auth"));
#if HAVE_QUIC
	g_assert_true(g_strv_contains(restart, "quic-port"));
#endif
	/* the HTTPS listener is made at start, like the others */
	g_assert_true(g_strv_contains(restart, "https"));
	g_assert_true(g_strv_contains(restart, "https-port"));
	{
		g_autoptr(SoupMessage) msg = as_test_daemon_message(d, "GET", "/status", NULL);
		g_autoptr(AsTestReply) reply = as_test_daemon_send(d, msg, NULL, NULL);
		as_test_reply_assert_status(reply, SOUP_STATUS_UNAUTHORIZED);
	}
	as_test_put(d, "x.bin", "t", SOUP_STATUS_OK, "tagged/x.bin");

	/* a broken config: an error over the bus, nothing changes */
	g_clear_pointer(&ret, g_variant_unref);
	as_test_write_config(conf, "[daemon]\nauth=maybe\n");
	ret = g_dbus_connection_call_sync(
		conn, "org.aerosync", "/org/aerosync", "org.aerosync.Manager1", "Reload", NULL,
		G_VARIANT_TYPE("(asas)"), G_DBUS_CALL_FLAGS_NONE, 10000, NULL, &error);
	g_assert_null(ret);
	g_assert_nonnull(error);
	{
		g_autofree gchar *name = g_dbus_error_get_remote_error(error);
		g_assert_cmpstr(name, ==, "org.aerosync.Error.InvalidArgument");
	}
	as_test_put(d, "y.bin", "t", SOUP_STATUS_OK, "tagged/y.bin");

	g_assert_cmpint(as_test_daemon_stop(d), ==, 0);
	g_dbus_connection_close_sync(conn, NULL, NULL);
	g_test_dbus_down(bus);
}

int
main(int argc, char **argv)
{
	as_test_init(&argc, &argv);
	g_test_add_func("/aerosync/reload/sighup-routes", as_reload_sighup_func);
	g_test_add_func("/aerosync/reload/dbus", as_reload_dbus_func);
	return g_test_run();
}
