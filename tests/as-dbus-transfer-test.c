/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "AsDbusTransferTest"

#include "config.h"

#include <string.h>

#include "as-keys.h"
#include "as-test-daemon.h"

#define AS_TEST_MIB (1024 * 1024)
/* big enough that progress is seen on the bus several times */
#define AS_TEST_PROGRESS_SIZE	(64 * AS_TEST_MIB)
#define AS_TEST_PROGRESS_CHUNK	AS_TEST_MIB
#define AS_TEST_PROGRESS_CHUNKS 64
/* pace the sender so the 10 Hz property updates have something to show */
#define AS_TEST_PROGRESS_PAUSE_US (15 * G_TIME_SPAN_MILLISECOND)
#define AS_TEST_NAME_TIMEOUT_MS	  10000
#define AS_TEST_SIGNAL_TIMEOUT_MS 5000
#define AS_TEST_CALL_TIMEOUT_MS	  10000
/* a token generated with ExpiresIn 1 is surely dead after this */
#define AS_TEST_EXPIRY_WAIT_US (2200 * G_TIME_SPAN_MILLISECOND)
#define AS_TEST_TRANSFER1      "org.aerosync.Transfer1"
#define AS_TEST_MANAGER1       "org.aerosync.Manager1"

static GTestDBus *as_test_bus = NULL;

static GDBusConnection *
as_test_connection(void)
{
	g_autoptr(GError) error = NULL;
	GDBusConnection *conn = g_bus_get_sync(G_BUS_TYPE_SESSION, NULL, &error);
	g_assert_no_error(error);
	return conn;
}

static gboolean
as_test_name_owned_cb(gpointer user_data)
{
	GDBusConnection *conn = user_data;
	g_autoptr(GVariant) ret = g_dbus_connection_call_sync(
		conn, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
		"NameHasOwner", g_variant_new("(s)", AS_DBUS_NAME), G_VARIANT_TYPE("(b)"),
		G_DBUS_CALL_FLAGS_NONE, AS_TEST_CALL_TIMEOUT_MS, NULL, NULL);
	gboolean owned = FALSE;
	if (ret != NULL)
		g_variant_get(ret, "(b)", &owned);
	return owned;
}

static AsTestDaemon *
as_test_bus_daemon(GDBusConnection *conn)
{
	AsTestDaemon *d = as_test_daemon_new();
	g_autoptr(GError) error = NULL;

	as_test_daemon_set_dbus_address(d, g_test_dbus_get_bus_address(as_test_bus));
	as_test_daemon_start(d, &error);
	g_assert_no_error(error);
	g_assert_true(as_test_wait_for(as_test_name_owned_cb, conn, AS_TEST_NAME_TIMEOUT_MS));
	return d;
}

static GVariant *
as_test_call(GDBusConnection *conn,
	     const gchar *path,
	     const gchar *iface,
	     const gchar *method,
	     GVariant *args,
	     const gchar *reply_type,
	     GError **error)
{
	return g_dbus_connection_call_sync(conn, AS_DBUS_NAME, path, iface, method, args,
					   reply_type != NULL ? G_VARIANT_TYPE(reply_type) : NULL,
					   G_DBUS_CALL_FLAGS_NO_AUTO_START, AS_TEST_CALL_TIMEOUT_MS,
					   NULL, error);
}

static guint
as_test_status_with(AsTestDaemon *d, const gchar *method, const gchar *path, const gchar *token)
{
	g_autoptr(SoupMessage) msg = as_test_daemon_message(d, method, path, token);
	g_autoptr(GBytes) body = g_bytes_new_static("data", 4);
	g_autoptr(AsTestReply) reply = as_test_daemon_send(
		d, msg, g_strcmp0(method, SOUP_METHOD_GET) == 0 ? NULL : body, NULL);
	if (reply->status == SOUP_STATUS_UNAUTHORIZED)
		g_assert_cmpstr(as_test_reply_header(reply, "WWW-Authenticate"), ==,
				"Bearer realm=\"aerosync\"");
	return reply->status;
}

/* the WebSocket handshake, by hand: 101 or a refusal */
static guint
as_test_ws_handshake(AsTestDaemon *d, const gchar *token)
{
	g_autofree gchar *head = g_strdup_printf("GET /ws HTTP/1.1\r\n"
						 "Upgrade: websocket\r\n"
						 "Connection: Upgrade\r\n"
						 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
						 "Sec-WebSocket-Version: 13\r\n"
						 "Authorization: Bearer %s\r\n",
						 token);
	g_autoptr(AsTestReply) reply = as_test_daemon_raw_request(d, head, NULL);
	return reply->status;
}

static void
as_test_generate(
	GDBusConnection *conn, const gchar *label, guint64 expires_in, gchar **token, gchar **id)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) ret = NULL;
	g_autoptr(GVariant) info = NULL;
	GVariantBuilder b;
	const gchar *value = NULL;
	gint64 expires = -1;

	g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
	g_variant_builder_add(&b, "{sv}", AS_KEY_LABEL, g_variant_new_string(label));
	if (expires_in > 0)
		g_variant_builder_add(&b, "{sv}", AS_KEY_EXPIRES_IN,
				      g_variant_new_uint64(expires_in));
	ret = as_test_call(conn, AS_DBUS_PATH, AS_TEST_MANAGER1, "GenerateToken",
			   g_variant_new("(a{sv})", &b), "(sa{sv})", &error);
	g_assert_no_error(error);
	g_variant_get(ret, "(s@a{sv})", token, &info);
	g_assert_cmpuint(strlen(*token), >=, 32);
	g_assert_true(g_variant_lookup(info, "id", "&s", &value));
	*id = g_strdup(value);
	g_assert_true(g_variant_lookup(info, "label", "&s", &value));
	g_assert_cmpstr(value, ==, label);
	g_assert_true(g_variant_lookup(info, "expires", "x", &expires));
	if (expires_in > 0)
		g_assert_cmpint(expires, >, 0);
	else
		g_assert_cmpint(expires, ==, 0);
}

static void
as_test_dbus_tokens(void)
{
	g_autoptr(GDBusConnection) conn = as_test_connection();
	g_autoptr(AsTestDaemon) d = NULL;
	g_autofree gchar *short_token = NULL;
	g_autofree gchar *short_id = NULL;
	g_autofree gchar *token = NULL;
	g_autofree gchar *id = NULL;
	g_autofree gchar *prefix = NULL;

	as_test_watchdog_arm();
	d = as_test_bus_daemon(conn);

	/* a token that lives one second: good at once, dead after two */
	as_test_generate(conn, "t", 1, &short_token, &short_id);
	g_assert_cmpuint(as_test_status_with(d, SOUP_METHOD_GET, "/status", short_token), ==,
			 SOUP_STATUS_OK);
	g_usleep(AS_TEST_EXPIRY_WAIT_US);
	g_assert_cmpuint(as_test_status_with(d, SOUP_METHOD_GET, "/status", short_token), ==,
			 SOUP_STATUS_UNAUTHORIZED);
	g_assert_cmpuint(
		as_test_status_with(d, SOUP_METHOD_PUT, "/upload/expired.txt", short_token), ==,
		SOUP_STATUS_UNAUTHORIZED);

	/* a lasting one, listed without its secret */
	as_test_generate(conn, "lasting", 0, &token, &id);
	g_assert_cmpuint(as_test_status_with(d, SOUP_METHOD_GET, "/status", token), ==,
			 SOUP_STATUS_OK);
	g_assert_cmpuint(as_test_status_with(d, SOUP_METHOD_GET, "/metrics", token), ==,
			 SOUP_STATUS_OK);
	g_assert_cmpuint(as_test_status_with(d, SOUP_METHOD_PUT, "/upload/before.txt", token), ==,
			 SOUP_STATUS_OK);
	g_assert_cmpuint(as_test_ws_handshake(d, token), ==, SOUP_STATUS_SWITCHING_PROTOCOLS);
	{
		g_autoptr(GError) error = NULL;
		g_autoptr(GVariant) ret = as_test_call(conn, AS_DBUS_PATH, AS_TEST_MANAGER1,
						       "ListTokens", NULL, "(aa{sv})", &error);
		g_autoptr(GVariant) list = NULL;
		g_autofree gchar *text = NULL;
		gboolean found_short = FALSE, found = FALSE;
		g_assert_no_error(error);
		list = g_variant_get_child_value(ret, 0);
		text = g_variant_print(ret, FALSE);
		g_assert_null(strstr(text, token));
		for (gsize i = 0; i < g_variant_n_children(list); i++) {
			g_autoptr(GVariant) entry = g_variant_get_child_value(list, i);
			const gchar *eid = NULL;
			gboolean expired = FALSE, revoked = TRUE;
			g_assert_true(g_variant_lookup(entry, "id", "&s", &eid));
			g_assert_true(g_variant_lookup(entry, "expired", "b", &expired));
			g_assert_true(g_variant_lookup(entry, "revoked", "b", &revoked));
			if (g_strcmp0(eid, short_id) == 0) {
				found_short = TRUE;
				g_assert_true(expired);
			} else if (g_strcmp0(eid, id) == 0) {
				found = TRUE;
				g_assert_false(expired);
				g_assert_false(revoked);
			}
		}
		g_assert_true(found_short);
		g_assert_true(found);
	}

	/* bad revocations */
	{
		g_autoptr(GError) error = NULL;
		g_autoptr(GVariant) ret =
			as_test_call(conn, AS_DBUS_PATH, AS_TEST_MANAGER1, "RevokeToken",
				     g_variant_new("(s)", "ab"), NULL, &error);
		g_autofree gchar *name = NULL;
		g_assert_null(ret);
		g_assert_nonnull(error);
		name = g_dbus_error_get_remote_error(error);
		g_assert_cmpstr(name, ==, "org.aerosync.Error.InvalidArgument");
	}
	{
		g_autoptr(GError) error = NULL;
		g_autoptr(GVariant) ret =
			as_test_call(conn, AS_DBUS_PATH, AS_TEST_MANAGER1, "RevokeToken",
				     g_variant_new("(s)", "zzzzzzzz"), NULL, &error);
		g_autofree gchar *name = NULL;
		g_assert_null(ret);
		g_assert_nonnull(error);
		name = g_dbus_error_get_remote_error(error);
		g_assert_cmpstr(name, ==, "org.aerosync.Error.InvalidArgument");
	}
	{
		/* well-formed, but no such id: the two ids made above start otherwise */
		const gchar *nothing =
			g_str_has_prefix(short_id, "0f0f") || g_str_has_prefix(id, "0f0f")
				? "f0f0f0f0f0f0"
				: "0f0f0f0f0f0f";
		g_autoptr(GError) error = NULL;
		g_autoptr(GVariant) ret =
			as_test_call(conn, AS_DBUS_PATH, AS_TEST_MANAGER1, "RevokeToken",
				     g_variant_new("(s)", nothing), NULL, &error);
		g_autofree gchar *name = NULL;
		g_assert_null(ret);
		g_assert_nonnull(error);
		name = g_dbus_error_get_remote_error(error);
		g_assert_cmpstr(name, ==, "org.aerosync.Error.NotFound");
	}

	/* revoked by an id prefix: refused everywhere at once */
	prefix = g_strndup(id, 6);
	{
		g_autoptr(GError) error = NULL;
		g_autoptr(GVariant) ret =
			as_test_call(conn, AS_DBUS_PATH, AS_TEST_MANAGER1, "RevokeToken",
				     g_variant_new("(s)", prefix), NULL, &error);
		g_assert_no_error(error);
	}
	g_assert_cmpuint(as_test_status_with(d, SOUP_METHOD_PUT, "/upload/after.txt", token), ==,
			 SOUP_STATUS_UNAUTHORIZED);
	g_assert_cmpuint(as_test_status_with(d, SOUP_METHOD_GET, "/status", token), ==,
			 SOUP_STATUS_UNAUTHORIZED);
	g_assert_cmpuint(as_test_status_with(d, SOUP_METHOD_GET, "/metrics", token), ==,
			 SOUP_STATUS_UNAUTHORIZED);
	g_assert_cmpuint(as_test_ws_handshake(d, token), ==, SOUP_STATUS_UNAUTHORIZED);
	{
		g_autofree gchar *after =
			g_build_filename(as_test_daemon_get_save_dir(d), "after.txt", NULL);
		g_assert_false(g_file_test(after, G_FILE_TEST_EXISTS));
	}
	/* the test's own token still works */
	g_assert_cmpuint(
		as_test_status_with(d, SOUP_METHOD_GET, "/status", as_test_daemon_get_token(d)), ==,
		SOUP_STATUS_OK);

	/* and the revocation outlives a restart */
	g_assert_cmpint(as_test_daemon_stop(d), ==, 0);
	{
		g_autoptr(GError) error = NULL;
		as_test_daemon_start(d, &error);
		g_assert_no_error(error);
		g_assert_true(
			as_test_wait_for(as_test_name_owned_cb, conn, AS_TEST_NAME_TIMEOUT_MS));
	}
	g_assert_cmpuint(as_test_status_with(d, SOUP_METHOD_GET, "/status", token), ==,
			 SOUP_STATUS_UNAUTHORIZED);
	g_assert_cmpint(as_test_daemon_stop(d), ==, 0);
}

/* what the bus showed while a transfer ran */
typedef struct {
	gchar *expected_path;
	GArray *bytes_done; /* guint64 values of BytesDone seen, in order */
	GPtrArray *states;  /* State values seen */
	gchar *sha256;	    /* last Sha256 seen */
	guint added;	    /* InterfacesAdded for expected_path */
	guint finished;	    /* TransferFinished for expected_path */
	gchar *finished_state;
	GVariant *finished_info;
	guint other_paths; /* PropertiesChanged for other transfer objects */
} AsTestWatch;

static void
as_test_watch_clear(AsTestWatch *w)
{
	g_free(w->expected_path);
	g_array_unref(w->bytes_done);
	g_ptr_array_unref(w->states);
	g_free(w->sha256);
	g_free(w->finished_state);
	g_clear_pointer(&w->finished_info, g_variant_unref);
}

static void
as_test_properties_changed_cb(GDBusConnection *conn,
			      const gchar *sender,
			      const gchar *path,
			      const gchar *iface,
			      const gchar *signal,
			      GVariant *params,
			      gpointer user_data)
{
	AsTestWatch *w = user_data;
	const gchar *changed_iface = NULL;
	g_autoptr(GVariant) changed = NULL;
	g_autoptr(GVariant) invalidated = NULL;
	guint64 bytes = 0;
	const gchar *value = NULL;

	g_variant_get(params, "(&s@a{sv}@as)", &changed_iface, &changed, &invalidated);
	if (g_strcmp0(changed_iface, AS_TEST_TRANSFER1) != 0)
		return;
	if (g_strcmp0(path, w->expected_path) != 0) {
		w->other_paths++;
		return;
	}
	if (g_variant_lookup(changed, "BytesDone", "t", &bytes))
		g_array_append_val(w->bytes_done, bytes);
	if (g_variant_lookup(changed, "State", "&s", &value))
		g_ptr_array_add(w->states, g_strdup(value));
	if (g_variant_lookup(changed, "Sha256", "&s", &value)) {
		g_free(w->sha256);
		w->sha256 = g_strdup(value);
	}
}

static void
as_test_interfaces_added_cb(GDBusConnection *conn,
			    const gchar *sender,
			    const gchar *path,
			    const gchar *iface,
			    const gchar *signal,
			    GVariant *params,
			    gpointer user_data)
{
	AsTestWatch *w = user_data;
	const gchar *object = NULL;
	g_autoptr(GVariant) ifaces = NULL;

	g_variant_get(params, "(&o@a{sa{sv}})", &object, &ifaces);
	if (g_strcmp0(object, w->expected_path) == 0)
		w->added++;
}

static void
as_test_transfer_finished_cb(GDBusConnection *conn,
			     const gchar *sender,
			     const gchar *path,
			     const gchar *iface,
			     const gchar *signal,
			     GVariant *params,
			     gpointer user_data)
{
	AsTestWatch *w = user_data;
	const gchar *object = NULL;
	const gchar *state = NULL;
	g_autoptr(GVariant) info = NULL;

	g_variant_get(params, "(&o&s@a{sv})", &object, &state, &info);
	if (g_strcmp0(object, w->expected_path) != 0)
		return;
	w->finished++;
	g_free(w->finished_state);
	w->finished_state = g_strdup(state);
	g_clear_pointer(&w->finished_info, g_variant_unref);
	w->finished_info = g_variant_ref(info);
}

static gboolean
as_test_finished_cb(gpointer user_data)
{
	AsTestWatch *w = user_data;
	return w->finished > 0;
}

/* object paths take [A-Za-z0-9_] only: the daemon escapes the rest as _XX */
static gchar *
as_test_transfer_path(const gchar *id)
{
	GString *str = g_string_new(AS_DBUS_TRANSFERS_PATH "/t");
	for (const gchar *p = id; *p != '\0'; p++) {
		if (g_ascii_isalnum(*p))
			g_string_append_c(str, *p);
		else
			g_string_append_printf(str, "_%02x", (guint8)*p);
	}
	return g_string_free(str, FALSE);
}

/* the Transfer1 properties of @path from GetManagedObjects on /org/aerosync, or NULL */
static GVariant *
as_test_managed_transfer(GDBusConnection *conn, const gchar *path)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) ret =
		as_test_call(conn, AS_DBUS_PATH, "org.freedesktop.DBus.ObjectManager",
			     "GetManagedObjects", NULL, "(a{oa{sa{sv}}})", &error);
	g_autoptr(GVariant) objects = NULL;
	g_autoptr(GVariant) ifaces = NULL;

	g_assert_no_error(error);
	objects = g_variant_get_child_value(ret, 0);
	if (!g_variant_lookup(objects, path, "@a{sa{sv}}", &ifaces))
		return NULL;
	return g_variant_lookup_value(ifaces, AS_TEST_TRANSFER1, G_VARIANT_TYPE_VARDICT);
}

static gchar *
as_test_run_tool(const gchar *const *argv, gint *exit_status)
{
	g_autofree gchar *out = NULL;
	g_autofree gchar *err = NULL;
	g_autoptr(GError) error = NULL;
	gint wait_status = 0;

	g_spawn_sync(NULL, (gchar **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &out, &err,
		     &wait_status, &error);
	g_assert_no_error(error);
	if (err != NULL && *err != '\0')
		g_test_message("%s: %s", argv[0], err);
	*exit_status = g_spawn_check_wait_status(wait_status, NULL) ? 0 : 1;
	return g_steal_pointer(&out);
}

static void
as_test_dbus_transfer(void)
{
	g_autoptr(GDBusConnection) conn = as_test_connection();
	g_autoptr(AsTestDaemon) d = NULL;
	g_autofree gchar *src = NULL;
	g_autofree gchar *sha = NULL;
	g_autofree gchar *saved = NULL;
	AsTestWatch w = {0};
	guint sub_props, sub_added, sub_finished;
	gboolean seen_on_bus = FALSE;

	as_test_watchdog_arm();
	d = as_test_bus_daemon(conn);
	src = g_build_filename(as_test_daemon_get_root(d), "dbus.src", NULL);
	sha = as_test_write_random_file(src, AS_TEST_PROGRESS_SIZE, 500);
	saved = g_build_filename(as_test_daemon_get_save_dir(d), "dbus file.bin", NULL);

	w.expected_path = as_test_transfer_path("dbus-task_1");
	w.bytes_done = g_array_new(FALSE, FALSE, sizeof(guint64));
	w.states = g_ptr_array_new_with_free_func(g_free);
	sub_props = g_dbus_connection_signal_subscribe(
		conn, AS_DBUS_NAME, "org.freedesktop.DBus.Properties", "PropertiesChanged", NULL,
		AS_TEST_TRANSFER1, G_DBUS_SIGNAL_FLAGS_NONE, as_test_properties_changed_cb, &w,
		NULL);
	sub_added = g_dbus_connection_signal_subscribe(
		conn, AS_DBUS_NAME, "org.freedesktop.DBus.ObjectManager", "InterfacesAdded",
		AS_DBUS_PATH, NULL, G_DBUS_SIGNAL_FLAGS_NONE, as_test_interfaces_added_cb, &w,
		NULL);
	sub_finished = g_dbus_connection_signal_subscribe(
		conn, AS_DBUS_NAME, AS_TEST_MANAGER1, "TransferFinished", AS_DBUS_PATH, NULL,
		G_DBUS_SIGNAL_FLAGS_NONE, as_test_transfer_finished_cb, &w, NULL);
	/* the match rules must be in place before the upload starts */
	{
		g_autoptr(GError) error = NULL;
		g_autoptr(GVariant) ret =
			as_test_call(conn, AS_DBUS_PATH, "org.freedesktop.DBus.Peer", "Ping", NULL,
				     NULL, &error);
		g_assert_no_error(error);
	}

	for (guint32 i = 0; i < AS_TEST_PROGRESS_CHUNKS; i++) {
		g_autoptr(AsTestReply) reply = as_test_daemon_send_chunk(
			d, "dbus-task_1", "dbus file.bin", src, AS_TEST_PROGRESS_SIZE,
			AS_TEST_PROGRESS_CHUNK, i, FALSE);
		as_test_reply_assert_status(reply, SOUP_STATUS_OK);
		while (g_main_context_iteration(NULL, FALSE))
			;
		g_usleep(AS_TEST_PROGRESS_PAUSE_US);

		/* while it runs the transfer is an object below /org/aerosync */
		if (i == AS_TEST_PROGRESS_CHUNKS / 4) {
			g_autoptr(GVariant) props = as_test_managed_transfer(conn, w.expected_path);
			const gchar *value = NULL;
			guint64 n = 0;
			g_assert_nonnull(props);
			seen_on_bus = TRUE;
			g_assert_true(g_variant_lookup(props, "Id", "&s", &value));
			g_assert_cmpstr(value, ==, "dbus-task_1");
			g_assert_true(g_variant_lookup(props, "Filename", "&s", &value));
			g_assert_cmpstr(value, ==, "dbus file.bin");
			g_assert_true(g_variant_lookup(props, "Direction", "&s", &value));
			g_assert_cmpstr(value, ==, "receive");
			g_assert_true(g_variant_lookup(props, "State", "&s", &value));
			g_assert_cmpstr(value, ==, "running");
			g_assert_true(g_variant_lookup(props, "BytesTotal", "t", &n));
			g_assert_cmpuint(n, ==, AS_TEST_PROGRESS_SIZE);
			g_assert_true(g_variant_lookup(props, "BytesDone", "t", &n));
			g_assert_cmpuint(n, >, 0);
			g_assert_cmpuint(n, <=, (guint64)(i + 1) * AS_TEST_PROGRESS_CHUNK);
			g_assert_true(g_variant_lookup(props, "Peer", "&s", &value));
			g_assert_cmpstr(value, ==, "127.0.0.1");
		}
	}
	g_assert_true(seen_on_bus);
	{
		g_autofree gchar *q = g_strdup_printf(
			"/upload/complete?task_id=dbus-task_1&filename=dbus%%20file.bin"
			"&total_chunks=%u&total_size=%u&sha256=%s",
			AS_TEST_PROGRESS_CHUNKS, AS_TEST_PROGRESS_SIZE, sha);
		g_autoptr(AsTestReply) reply = as_test_daemon_post_empty(d, q);
		g_autoptr(AsTestReply) again = NULL;
		as_test_reply_assert_status(reply, SOUP_STATUS_OK);
		/* a retried complete must not finish the transfer a second time */
		again = as_test_daemon_post_empty(d, q);
		as_test_reply_assert_status(again, SOUP_STATUS_OK);
	}
	g_assert_true(as_test_wait_for(as_test_finished_cb, &w, AS_TEST_SIGNAL_TIMEOUT_MS));
	/* a little longer, to catch a second one */
	g_usleep(300 * G_TIME_SPAN_MILLISECOND);
	while (g_main_context_iteration(NULL, FALSE))
		;
	g_assert_cmpuint(w.finished, ==, 1);
	g_assert_cmpuint(w.added, ==, 1);
	g_assert_cmpstr(w.finished_state, ==, "completed");
	{
		const gchar *value = NULL;
		guint64 size = 0;
		g_assert_true(g_variant_lookup(w.finished_info, "sha256", "&s", &value));
		g_assert_cmpstr(value, ==, sha);
		g_assert_true(g_variant_lookup(w.finished_info, "saved_path", "&s", &value));
		g_assert_cmpstr(value, ==, saved);
		g_assert_true(g_variant_lookup(w.finished_info, "size", "t", &size));
		g_assert_cmpuint(size, ==, AS_TEST_PROGRESS_SIZE);
		g_assert_true(g_variant_lookup(w.finished_info, "direction", "&s", &value));
		g_assert_cmpstr(value, ==, "receive");
		g_assert_false(g_variant_lookup(w.finished_info, "error", "&s", &value));
	}

	/* progress: several steps, never backwards, ending at the total */
	g_test_message("BytesDone changed %u times", w.bytes_done->len);
	g_assert_cmpuint(w.bytes_done->len, >=, 3);
	for (guint i = 1; i < w.bytes_done->len; i++)
		g_assert_cmpuint(g_array_index(w.bytes_done, guint64, i), >=,
				 g_array_index(w.bytes_done, guint64, i - 1));
	g_assert_cmpuint(g_array_index(w.bytes_done, guint64, w.bytes_done->len - 1), ==,
			 AS_TEST_PROGRESS_SIZE);
	g_assert_cmpuint(w.states->len, >=, 1);
	g_assert_cmpstr(g_ptr_array_index(w.states, w.states->len - 1), ==, "completed");
	g_assert_cmpstr(w.sha256, ==, sha);
	g_assert_cmpuint(w.other_paths, ==, 0);

	/* the finished object lingers with its outcome */
	{
		g_autoptr(GVariant) props = as_test_managed_transfer(conn, w.expected_path);
		const gchar *value = NULL;
		g_assert_nonnull(props);
		g_assert_true(g_variant_lookup(props, "State", "&s", &value));
		g_assert_cmpstr(value, ==, "completed");
		g_assert_true(g_variant_lookup(props, "Sha256", "&s", &value));
		g_assert_cmpstr(value, ==, sha);
		g_assert_true(g_variant_lookup(props, "SavedPath", "&s", &value));
		g_assert_cmpstr(value, ==, saved);
	}
	{
		g_autofree gchar *saved_sha = as_test_file_sha256(saved);
		g_assert_cmpstr(saved_sha, ==, sha);
	}

	/* the manager's view */
	{
		g_autoptr(GError) error = NULL;
		g_autoptr(GVariant) ret = as_test_call(
			conn, AS_DBUS_PATH, "org.freedesktop.DBus.Properties", "Get",
			g_variant_new("(ss)", AS_TEST_MANAGER1, "ReceivedFiles"), "(v)", &error);
		g_autoptr(GVariant) value = NULL;
		g_assert_no_error(error);
		g_variant_get(ret, "(v)", &value);
		g_assert_cmpuint(g_variant_get_uint64(value), ==, 1);
	}
	{
		g_autoptr(GError) error = NULL;
		g_autoptr(GVariant) ret = as_test_call(conn, AS_DBUS_PATH, AS_TEST_MANAGER1,
						       "GetStatus", NULL, "(a{sv})", &error);
		g_autoptr(GVariant) status = NULL;
		const gchar *dir = NULL;
		guint16 port = 0;
		guint64 received = 0;
		g_assert_no_error(error);
		status = g_variant_get_child_value(ret, 0);
		g_assert_true(g_variant_lookup(status, "receive_directory", "&s", &dir));
		g_assert_cmpstr(dir, ==, as_test_daemon_get_save_dir(d));
		g_assert_true(g_variant_lookup(status, "http_port", "q", &port));
		g_assert_cmpuint(port, ==, as_test_daemon_get_port(d));
		g_assert_true(g_variant_lookup(status, "quic_port", "q", &port));
		g_assert_cmpuint(port, ==, as_test_daemon_get_quic_port(d));
#if HAVE_QUIC
		{
			g_autofree gchar *fp = as_test_daemon_dup_cert_sha256(d);
			g_assert_true(g_variant_lookup(status, "cert_sha256", "&s", &dir));
			g_assert_cmpstr(dir, ==, fp);
		}
#endif
		g_assert_true(g_variant_lookup(status, "received_files", "t", &received));
		g_assert_cmpuint(received, ==, 1);
	}
	{
		g_autoptr(GError) error = NULL;
		GVariantBuilder b;
		g_autoptr(GVariant) ret = NULL;
		g_autoptr(GVariant) entries = NULL;
		g_autoptr(GVariant) first = NULL;
		const gchar *value = NULL;
		g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
		g_variant_builder_add(&b, "{sv}", AS_KEY_LIMIT, g_variant_new_uint32(5));
		ret = as_test_call(conn, AS_DBUS_PATH, AS_TEST_MANAGER1, "GetHistory",
				   g_variant_new("(a{sv})", &b), "(aa{sv})", &error);
		g_assert_no_error(error);
		entries = g_variant_get_child_value(ret, 0);
		g_assert_cmpuint(g_variant_n_children(entries), ==, 1);
		first = g_variant_get_child_value(entries, 0);
		g_assert_true(g_variant_lookup(first, "filename", "&s", &value));
		g_assert_cmpstr(value, ==, "dbus file.bin");
		g_assert_true(g_variant_lookup(first, "sha256", "&s", &value));
		g_assert_cmpstr(value, ==, sha);
	}

	/* plain tools can read it */
	{
		const gchar *argv[] = {"gdbus",	     "introspect",    "--session",  "--dest",
				       AS_DBUS_NAME, "--object-path", AS_DBUS_PATH, NULL};
		gint status = 1;
		g_autofree gchar *out = as_test_run_tool(argv, &status);
		g_assert_cmpint(status, ==, 0);
		g_assert_nonnull(strstr(out, "interface org.aerosync.Manager1"));
		g_assert_nonnull(strstr(out, "GenerateToken"));
		g_assert_nonnull(strstr(out, "org.freedesktop.DBus.ObjectManager"));
	}
	{
		g_autofree gchar *busctl = g_find_program_in_path("busctl");
		if (busctl == NULL) {
			g_test_message("busctl is not installed: skipped");
		} else {
			const gchar *argv[] = {busctl,	     "--user",	   "--no-pager",
					       "introspect", AS_DBUS_NAME, AS_DBUS_PATH,
					       NULL};
			gint status = 1;
			g_autofree gchar *out = as_test_run_tool(argv, &status);
			g_assert_cmpint(status, ==, 0);
			g_assert_nonnull(strstr(out, "org.aerosync.Manager1"));
		}
	}

	g_dbus_connection_signal_unsubscribe(conn, sub_props);
	g_dbus_connection_signal_unsubscribe(conn, sub_added);
	g_dbus_connection_signal_unsubscribe(conn, sub_finished);
	as_test_watch_clear(&w);
	g_assert_cmpint(as_test_daemon_stop(d), ==, 0);
}

/* a failed transfer: one TransferFinished with state "failed" and the error */
static void
as_test_dbus_transfer_failed(void)
{
	g_autoptr(GDBusConnection) conn = as_test_connection();
	g_autoptr(AsTestDaemon) d = NULL;
	AsTestWatch w = {0};
	guint sub;

	as_test_watchdog_arm();
	d = as_test_bus_daemon(conn);
	w.expected_path = as_test_transfer_path("failtask");
	w.bytes_done = g_array_new(FALSE, FALSE, sizeof(guint64));
	w.states = g_ptr_array_new_with_free_func(g_free);
	sub = g_dbus_connection_signal_subscribe(
		conn, AS_DBUS_NAME, AS_TEST_MANAGER1, "TransferFinished", AS_DBUS_PATH, NULL,
		G_DBUS_SIGNAL_FLAGS_NONE, as_test_transfer_finished_cb, &w, NULL);
	{
		g_autoptr(GVariant) ret = as_test_call(
			conn, AS_DBUS_PATH, "org.freedesktop.DBus.Peer", "Ping", NULL, NULL, NULL);
	}
	{
		g_autoptr(GBytes) data = as_test_random_bytes(2000, 501);
		g_autofree gchar *q = as_test_chunk_query("failtask", "fail.bin", 2000, 1000, 0);
		g_autofree gchar *q1 = as_test_chunk_query("failtask", "fail.bin", 2000, 1000, 1);
		g_autoptr(GBytes) c0 = g_bytes_new_from_bytes(data, 0, 1000);
		g_autoptr(GBytes) c1 = g_bytes_new_from_bytes(data, 1000, 1000);
		g_autoptr(SoupMessage) m0 =
			as_test_daemon_message(d, SOUP_METHOD_POST, q, as_test_daemon_get_token(d));
		g_autoptr(SoupMessage) m1 = as_test_daemon_message(d, SOUP_METHOD_POST, q1,
								   as_test_daemon_get_token(d));
		g_autoptr(AsTestReply) r0 = as_test_daemon_send(d, m0, c0, NULL);
		g_autoptr(AsTestReply) r1 = as_test_daemon_send(d, m1, c1, NULL);
		g_autoptr(AsTestReply) rc = as_test_daemon_post_empty(
			d,
			"/upload/complete?task_id=failtask&filename=fail.bin"
			"&sha256=0101010101010101010101010101010101010101010101010101010101010101");
		as_test_reply_assert_status(r0, SOUP_STATUS_OK);
		as_test_reply_assert_status(r1, SOUP_STATUS_OK);
		as_test_reply_assert_status(rc, SOUP_STATUS_BAD_REQUEST);
	}
	g_assert_true(as_test_wait_for(as_test_finished_cb, &w, AS_TEST_SIGNAL_TIMEOUT_MS));
	g_usleep(200 * G_TIME_SPAN_MILLISECOND);
	while (g_main_context_iteration(NULL, FALSE))
		;
	g_assert_cmpuint(w.finished, ==, 1);
	g_assert_cmpstr(w.finished_state, ==, "failed");
	{
		const gchar *value = NULL;
		g_assert_true(g_variant_lookup(w.finished_info, "error", "&s", &value));
		g_assert_cmpuint(strlen(value), >, 0);
	}
	g_dbus_connection_signal_unsubscribe(conn, sub);
	as_test_watch_clear(&w);
	g_assert_cmpint(as_test_daemon_stop(d), ==, 0);
}

/* two daemons in one session would fight over the receive dir: the second one leaves */
static void
as_test_dbus_second_instance(void)
{
	g_autoptr(GDBusConnection) conn = as_test_connection();
	g_autoptr(AsTestDaemon) first = NULL;
	g_autoptr(AsTestDaemon) second = NULL;
	g_autoptr(GError) error = NULL;
	gint status = -1;

	as_test_watchdog_arm();
	first = as_test_bus_daemon(conn);
	second = as_test_daemon_new();
	as_test_daemon_set_dbus_address(second, g_test_dbus_get_bus_address(as_test_bus));
	/* it listens and reports ready, then finds the name taken and leaves */
	as_test_daemon_start(second, &error);
	g_assert_no_error(error);
	g_assert_true(as_test_daemon_wait_exit(second, AS_TEST_NAME_TIMEOUT_MS, &status));
	g_assert_cmpint(status, ==, 1);
	/* the first is unharmed */
	{
		g_autoptr(AsTestReply) reply = as_test_daemon_get(first, "/status");
		as_test_reply_assert_status(reply, SOUP_STATUS_OK);
	}
	g_assert_cmpint(as_test_daemon_stop(first), ==, 0);
}

int
main(int argc, char **argv)
{
	gint ret;

	as_test_init(&argc, &argv);
	as_test_bus = g_test_dbus_new(G_TEST_DBUS_NONE);
	g_test_dbus_up(as_test_bus);
	g_test_add_func("/aerosync/dbus/tokens", as_test_dbus_tokens);
	g_test_add_func("/aerosync/dbus/transfer", as_test_dbus_transfer);
	g_test_add_func("/aerosync/dbus/transfer-failed", as_test_dbus_transfer_failed);
	g_test_add_func("/aerosync/dbus/second-instance", as_test_dbus_second_instance);
	ret = g_test_run();
	g_test_dbus_down(as_test_bus);
	g_clear_object(&as_test_bus);
	return ret;
}
