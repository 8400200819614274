/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "AsTestSend"

#include "config.h"

#include <glib/gstdio.h>
#include <string.h>

#include "as-keys.h"
#include "as-known-peers.h"
#include "as-send-job.h"
#include "as-test-send.h"

#define AS_TEST_PROXY_BUFFER (64 * 1024)

/* the private bus of the sender; one per test process */
static GTestDBus *as_test_bus = NULL;

/* -------- the TCP proxy -------- */

typedef struct {
	AsTestProxy *proxy;
	GSocketConnection *client; /* owned */
	GSocketConnection *server; /* owned, NULL until connected */
	guint8 up[AS_TEST_PROXY_BUFFER];
	guint8 down[AS_TEST_PROXY_BUFFER];
	gint refs;
	gboolean closed;
} AsTestPipe;

static void
as_test_pipe_unref(AsTestPipe *pipe)
{
	if (--pipe->refs > 0)
		return;
	g_clear_object(&pipe->client);
	g_clear_object(&pipe->server);
	g_free(pipe);
}

static void
as_test_pipe_close(AsTestPipe *pipe)
{
	if (pipe->closed)
		return;
	pipe->closed = TRUE;
	if (pipe->client != NULL)
		g_io_stream_close(G_IO_STREAM(pipe->client), NULL, NULL);
	if (pipe->server != NULL)
		g_io_stream_close(G_IO_STREAM(pipe->server), NULL, NULL);
}

static void as_test_pipe_read(AsTestPipe *pipe, gboolean up);

static void
as_test_pipe_wrote_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	AsTestPipe *pipe = user_data;
	gboolean up = g_object_get_data(G_OBJECT(source), "as-test-up") != NULL;

	if (!g_output_stream_write_all_finish(G_OUTPUT_STREAM(source), res, NULL, NULL) ||
	    pipe->closed) {
		as_test_pipe_close(pipe);
		as_test_pipe_unref(pipe);
		return;
	}
	/* over the limit: the upload waits here (with its ref) until the test cuts it */
	if (up && pipe->proxy->up_limit > 0 && pipe->proxy->up_bytes >= pipe->proxy->up_limit) {
		g_ptr_array_add(pipe->proxy->stalled, pipe);
		return;
	}
	as_test_pipe_read(pipe, up);
	as_test_pipe_unref(pipe);
}

static void
as_test_pipe_read_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	AsTestPipe *pipe = user_data;
	gboolean up = g_object_get_data(G_OBJECT(source), "as-test-up") != NULL;
	gssize n = g_input_stream_read_finish(G_INPUT_STREAM(source), res, NULL);
	GOutputStream *out;

	if (n <= 0 || pipe->closed) {
		as_test_pipe_close(pipe);
		as_test_pipe_unref(pipe);
		return;
	}
	if (up)
		pipe->proxy->up_bytes += (guint64)n;
	/* replies are small: a /health JSON comes in one read */
	if (!up && pipe->proxy->find != NULL) {
		gsize find_len = strlen(pipe->proxy->find);
		for (gsize i = 0; i + find_len <= (gsize)n; i++) {
			if (memcmp(pipe->down + i, pipe->proxy->find, find_len) == 0)
				memcpy(pipe->down + i, pipe->proxy->replace, find_len);
		}
	}
	out = g_io_stream_get_output_stream(G_IO_STREAM(up ? pipe->server : pipe->client));
	g_object_set_data(G_OBJECT(out), "as-test-up", GINT_TO_POINTER(up));
	g_output_stream_write_all_async(out, up ? pipe->up : pipe->down, (gsize)n,
					G_PRIORITY_DEFAULT, NULL, as_test_pipe_wrote_cb, pipe);
}

static void
as_test_pipe_read(AsTestPipe *pipe, gboolean up)
{
	GInputStream *in =
		g_io_stream_get_input_stream(G_IO_STREAM(up ? pipe->client : pipe->server));

	pipe->refs++;
	g_object_set_data(G_OBJECT(in), "as-test-up", GINT_TO_POINTER(up));
	g_input_stream_read_async(in, up ? pipe->up : pipe->down, AS_TEST_PROXY_BUFFER,
				  G_PRIORITY_DEFAULT, NULL, as_test_pipe_read_cb, pipe);
}

static void
as_test_pipe_connected_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	AsTestPipe *pipe = user_data;

	pipe->server = g_socket_client_connect_finish(G_SOCKET_CLIENT(source), res, NULL);
	if (pipe->server == NULL) {
		/* the receiver is down: the sender sees the connection close */
		as_test_pipe_close(pipe);
		as_test_pipe_unref(pipe);
		return;
	}
	as_test_pipe_read(pipe, TRUE);
	as_test_pipe_read(pipe, FALSE);
	as_test_pipe_unref(pipe);
}

static gboolean
as_test_proxy_incoming_cb(GSocketService *service,
			  GSocketConnection *connection,
			  GObject *source_object,
			  gpointer user_data)
{
	AsTestProxy *proxy = user_data;
	g_autoptr(GSocketClient) client = g_socket_client_new();
	AsTestPipe *pipe = g_new0(AsTestPipe, 1);

	pipe->proxy = proxy;
	pipe->client = g_object_ref(connection);
	pipe->refs = 1;
	proxy->n_conns++;
	g_socket_client_connect_to_host_async(client, "127.0.0.1", proxy->target_port, NULL,
					      as_test_pipe_connected_cb, pipe);
	return TRUE;
}

/* a proxy on a free loopback port to @target_port on loopback */
AsTestProxy *
as_test_proxy_new(guint16 target_port)
{
	AsTestProxy *proxy = g_new0(AsTestProxy, 1);
	g_autoptr(GError) error = NULL;
	g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
	g_autoptr(GSocketAddress) addr = g_inet_socket_address_new(loopback, 0);
	g_autoptr(GSocketAddress) effective = NULL;

	proxy->target_port = target_port;
	proxy->service = g_socket_service_new();
	g_socket_listener_add_address(G_SOCKET_LISTENER(proxy->service), addr, G_SOCKET_TYPE_STREAM,
				      G_SOCKET_PROTOCOL_TCP, NULL, &effective, &error);
	g_assert_no_error(error);
	proxy->port = g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(effective));
	proxy->stalled = g_ptr_array_new();
	g_signal_connect(proxy->service, "incoming", G_CALLBACK(as_test_proxy_incoming_cb), proxy);
	g_socket_service_start(proxy->service);
	return proxy;
}

/* closes the stalled connections (both ends, as a sender that died would leave them) and
 * lets new ones through unlimited */
void
as_test_proxy_cut_stalled(AsTestProxy *proxy)
{
	proxy->up_limit = 0;
	for (guint i = 0; i < proxy->stalled->len; i++) {
		AsTestPipe *pipe = g_ptr_array_index(proxy->stalled, i);
		as_test_pipe_close(pipe);
		as_test_pipe_unref(pipe);
	}
	g_ptr_array_set_size(proxy->stalled, 0);
}

void
as_test_proxy_free(AsTestProxy *proxy)
{
	g_socket_service_stop(proxy->service);
	g_socket_listener_close(G_SOCKET_LISTENER(proxy->service));
	g_object_unref(proxy->service);
	/* pipes still open hold a pointer to us: let them run dry first */
	for (guint i = 0; i < 10; i++)
		while (g_main_context_iteration(NULL, FALSE))
			;
	as_test_proxy_cut_stalled(proxy);
	g_ptr_array_unref(proxy->stalled);
	g_free(proxy->find);
	g_free(proxy->replace);
	g_free(proxy);
}

/* -------- daemons and the bus -------- */

/* the private session bus the senders own org.aerosync on; main() brackets g_test_run() */
void
as_test_send_bus_up(void)
{
	as_test_bus = g_test_dbus_new(G_TEST_DBUS_NONE);
	g_test_dbus_up(as_test_bus);
}

void
as_test_send_bus_down(void)
{
	g_test_dbus_down(as_test_bus);
	g_clear_object(&as_test_bus);
}

GDBusConnection *
as_test_connection(void)
{
	g_autoptr(GError) error = NULL;
	GDBusConnection *conn = g_bus_get_sync(G_BUS_TYPE_SESSION, NULL, &error);
	g_assert_no_error(error);
	return conn;
}

static gboolean
as_test_name_has_owner(GDBusConnection *conn)
{
	g_autoptr(GVariant) ret = g_dbus_connection_call_sync(
		conn, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
		"NameHasOwner", g_variant_new("(s)", AS_DBUS_NAME), G_VARIANT_TYPE("(b)"),
		G_DBUS_CALL_FLAGS_NONE, AS_TEST_CALL_TIMEOUT_MS, NULL, NULL);
	gboolean owned = FALSE;
	if (ret != NULL)
		g_variant_get(ret, "(b)", &owned);
	return owned;
}

static gboolean
as_test_name_owned_cb(gpointer user_data)
{
	return as_test_name_has_owner(user_data);
}

static gboolean
as_test_name_free_cb(gpointer user_data)
{
	return !as_test_name_has_owner(user_data);
}

/* (re)starts the sender on the bus; a killed predecessor's name must be gone first */
void
as_test_sender_start(AsTestDaemon *sender, GDBusConnection *conn)
{
	g_autoptr(GError) error = NULL;

	g_assert_true(as_test_wait_for(as_test_name_free_cb, conn, AS_TEST_NAME_TIMEOUT_MS));
	as_test_daemon_start(sender, &error);
	g_assert_no_error(error);
	g_assert_true(as_test_wait_for(as_test_name_owned_cb, conn, AS_TEST_NAME_TIMEOUT_MS));
}

AsTestDaemon *
as_test_sender_new(GDBusConnection *conn)
{
	AsTestDaemon *sender = as_test_daemon_new();

	as_test_daemon_set_dbus_address(sender, g_test_dbus_get_bus_address(as_test_bus));
	as_test_sender_start(sender, conn);
	return sender;
}

/* the receiver's token, in a file the sender reads (TokenFile) */
gchar *
as_test_token_file(AsTestDaemon *sender, AsTestDaemon *receiver)
{
	g_autofree gchar *path =
		g_build_filename(as_test_daemon_get_root(sender), "receiver-token", NULL);
	g_autoptr(GError) error = NULL;

	g_assert_true(g_file_set_contents_full(path, as_test_daemon_get_token(receiver), -1,
					       G_FILE_SET_CONTENTS_CONSISTENT, 0600, &error));
	g_assert_no_error(error);
	return g_steal_pointer(&path);
}

GVariantBuilder *
as_test_options_with_token(AsTestDaemon *sender, AsTestDaemon *receiver)
{
	GVariantBuilder *b = g_variant_builder_new(G_VARIANT_TYPE_VARDICT);
	g_autofree gchar *token_file = as_test_token_file(sender, receiver);
	g_variant_builder_add(b, "{sv}", AS_SEND_KEY_TOKEN_FILE, g_variant_new_string(token_file));
	return b;
}

/* Manager1.Send(); @options NULL for none; the new transfer's object path */
gchar *
as_test_send(GDBusConnection *conn,
	     const gchar *const *paths,
	     const gchar *destination,
	     GVariantBuilder *options,
	     GError **error)
{
	g_autoptr(GVariant) ret = NULL;
	GVariantBuilder empty;
	const gchar *path = NULL;

	if (options == NULL) {
		g_variant_builder_init(&empty, G_VARIANT_TYPE_VARDICT);
		options = &empty;
	}
	ret = g_dbus_connection_call_sync(
		conn, AS_DBUS_NAME, AS_DBUS_PATH, AS_TEST_MANAGER1, "Send",
		g_variant_new("(^assa{sv})", paths, destination, options), G_VARIANT_TYPE("(o)"),
		G_DBUS_CALL_FLAGS_NO_AUTO_START, AS_TEST_CALL_TIMEOUT_MS, NULL, error);
	if (ret == NULL)
		return NULL;
	g_variant_get(ret, "(&o)", &path);
	return g_strdup(path);
}

/* a Transfer1 method; with @error NULL it must succeed */
void
as_test_call_transfer(GDBusConnection *conn,
		      const gchar *path,
		      const gchar *method,
		      GVariant *args,
		      GError **error)
{
	g_autoptr(GError) local_error = NULL;
	g_autoptr(GVariant) ret = g_dbus_connection_call_sync(
		conn, AS_DBUS_NAME, path, AS_TEST_TRANSFER1, method, args, NULL,
		G_DBUS_CALL_FLAGS_NO_AUTO_START, AS_TEST_CALL_TIMEOUT_MS, NULL,
		error != NULL ? error : &local_error);
	g_assert_no_error(local_error);
}

/* all Transfer1 properties, or NULL once the object is gone */
GVariant *
as_test_props(GDBusConnection *conn, const gchar *path)
{
	g_autoptr(GVariant) ret = g_dbus_connection_call_sync(
		conn, AS_DBUS_NAME, path, "org.freedesktop.DBus.Properties", "GetAll",
		g_variant_new("(s)", AS_TEST_TRANSFER1), G_VARIANT_TYPE("(a{sv})"),
		G_DBUS_CALL_FLAGS_NO_AUTO_START, AS_TEST_CALL_TIMEOUT_MS, NULL, NULL);
	GVariant *props = NULL;
	if (ret == NULL)
		return NULL;
	g_variant_get(ret, "(@a{sv})", &props);
	return props;
}

gchar *
as_test_prop_string(GVariant *props, const gchar *key)
{
	const gchar *value = NULL;
	g_assert_true(g_variant_lookup(props, key, "&s", &value));
	return g_strdup(value);
}

guint64
as_test_prop_u64(GVariant *props, const gchar *key)
{
	guint64 value = 0;
	g_assert_true(g_variant_lookup(props, key, "t", &value));
	return value;
}

guint32
as_test_prop_u32(GVariant *props, const gchar *key)
{
	guint32 value = 0;
	g_assert_true(g_variant_lookup(props, key, "u", &value));
	return value;
}

gchar *
as_test_state(GDBusConnection *conn, const gchar *path)
{
	g_autoptr(GVariant) props = as_test_props(conn, path);
	return props != NULL ? as_test_prop_string(props, "State") : NULL;
}

/* the id of a transfer from its object path property */
gchar *
as_test_transfer_id(GDBusConnection *conn, const gchar *path)
{
	g_autoptr(GVariant) props = as_test_props(conn, path);
	g_assert_nonnull(props);
	return as_test_prop_string(props, "Id");
}

typedef struct {
	GDBusConnection *conn;
	const gchar *path;
	const gchar *state; /* NULL: any final state */
} AsTestStateWait;

static gboolean
as_test_state_cb(gpointer user_data)
{
	AsTestStateWait *wait = user_data;
	g_autofree gchar *state = as_test_state(wait->conn, wait->path);
	const gchar *finals[] = {"completed", "failed", "cancelled", NULL};

	if (state == NULL)
		return FALSE;
	if (wait->state != NULL)
		return g_strcmp0(state, wait->state) == 0;
	return g_strv_contains(finals, state);
}

/* waits for a state (or any final one, @state NULL) and returns the properties then; the main
 * loop runs meanwhile (as_test_wait_for), so proxies and relays of the test keep working */
GVariant *
as_test_wait_state(GDBusConnection *conn, const gchar *path, const gchar *state, guint timeout_ms)
{
	AsTestStateWait wait = {conn, path, state};
	GVariant *props;

	if (!as_test_wait_for(as_test_state_cb, &wait, timeout_ms)) {
		g_autofree gchar *now = as_test_state(conn, path);
		g_error("%s did not reach state %s in %u ms (it is %s)", path,
			state != NULL ? state : "final", timeout_ms, now != NULL ? now : "gone");
	}
	props = as_test_props(conn, path);
	g_assert_nonnull(props);
	return props;
}

/* fails with the Error property when the transfer did not complete */
GVariant *
as_test_wait_completed(GDBusConnection *conn, const gchar *path)
{
	GVariant *props = as_test_wait_state(conn, path, NULL, AS_TEST_FINISH_TIMEOUT_MS);
	g_autofree gchar *state = as_test_prop_string(props, "State");
	g_autofree gchar *error = as_test_prop_string(props, "Error");

	if (g_strcmp0(state, "completed") != 0)
		g_error("%s ended %s: %s", path, state, error);
	return props;
}

/* -------- files -------- */

gchar *
as_test_mkdir(AsTestDaemon *d, const gchar *name)
{
	gchar *path = g_build_filename(as_test_daemon_get_root(d), name, NULL);
	g_assert_cmpint(g_mkdir_with_parents(path, 0700), ==, 0);
	return path;
}

/* the received copy of @name must have @sha256 */
void
as_test_assert_received(AsTestDaemon *receiver, const gchar *name, const gchar *sha256)
{
	g_autofree gchar *path =
		g_build_filename(as_test_daemon_get_save_dir(receiver), name, NULL);
	g_autofree gchar *got = as_test_file_sha256(path);

	if (got == NULL)
		g_error("%s did not arrive", name);
	g_assert_cmpstr(got, ==, sha256);
}

/* how many chunks of a task the receiver holds (QUIC and HTTP share the chunk store) */
guint64
as_test_received_chunks(AsTestDaemon *receiver, const gchar *task_id)
{
	g_autofree gchar *query = g_strdup_printf("/upload/status?task_id=%s", task_id);
	g_autoptr(AsTestReply) reply = as_test_daemon_get(receiver, query);

	if (reply->status != SOUP_STATUS_OK)
		return 0;
	return (guint64)json_object_get_int_member_with_default(as_test_reply_object(reply),
								"received_chunks", 0);
}

/* lets the main loop (the proxy, a relay) run for a while */
void
as_test_run_for(guint ms)
{
	gint64 until = g_get_monotonic_time() + (gint64)ms * 1000;
	while (g_get_monotonic_time() < until) {
		while (g_main_context_iteration(NULL, FALSE))
			;
		g_usleep(1000);
	}
}

/* the Error of a transfer that must fail */
gchar *
as_test_wait_failed(GDBusConnection *conn, const gchar *path)
{
	g_autoptr(GVariant) props = as_test_wait_state(conn, path, NULL, AS_TEST_FINISH_TIMEOUT_MS);
	g_autofree gchar *state = as_test_prop_string(props, "State");
	gchar *error = as_test_prop_string(props, "Error");

	g_test_message("%s failed: %s", path, error);
	g_assert_cmpstr(state, ==, "failed");
	return error;
}

/* how many successful history lines of @direction have @protocol */
guint
as_test_count_history(AsTestDaemon *d, const gchar *direction, const gchar *protocol)
{
	g_autoptr(GPtrArray) history = as_test_read_jsonl(as_test_daemon_get_history_path(d));
	guint n = 0;

	for (guint i = 0; i < history->len; i++) {
		JsonObject *h = g_ptr_array_index(history, i);
		if (g_strcmp0(json_object_get_string_member(h, "direction"), direction) == 0 &&
		    g_strcmp0(json_object_get_string_member(h, "protocol"), protocol) == 0 &&
		    json_object_get_boolean_member(h, "success"))
			n++;
	}
	return n;
}

/* the known_peers file of a sending daemon */
gchar *
as_test_known_peers_path(AsTestDaemon *sender)
{
	return g_build_filename(as_test_daemon_get_root(sender), "state", "aerosync",
				AS_KNOWN_PEERS_FILENAME, NULL);
}

/* a file of @size random bytes in the sender's src folder */
gchar *
as_test_one_file(AsTestDaemon *sender, const gchar *name, guint64 size, guint32 seed)
{
	g_autofree gchar *src = as_test_mkdir(sender, "src");
	g_autofree gchar *path = g_build_filename(src, name, NULL);
	g_free(as_test_write_random_file(path, size, seed));
	return g_steal_pointer(&path);
}
