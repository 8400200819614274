/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "AsSendQuicTest"

#include "config.h"

#include <glib/gstdio.h>
#include <string.h>

#include "as-error.h"
#include "as-keys.h"
#include "as-known-peers.h"
#if HAVE_MDNS
#include <unistd.h>

#include "as-mdns-browser.h"
#include "as-mdns-publisher.h"
#endif
#include "as-send-job.h"
#include "as-test-daemon.h"
#include "as-test-send.h"

/*
 * Sending over QUIC end to end: a sender aerosyncd owning org.aerosync on a private bus
 * (GTestDBus) is told to Send() to a receiver aerosyncd (--no-dbus) over loopback, to
 * quic://host:port or to host:port with the protocol negotiated through /health. Two helpers
 * run in this process: a UDP relay in front of the receiver's QUIC port, which counts the
 * QUIC connections (one client socket each), and a TCP proxy in front of its HTTP port that
 * rewrites the quic_port /health announces, to point the sender at a QUIC port where nothing
 * answers.
 */

#define AS_TEST_MIB	   (1024 * 1024)
#define AS_TEST_BUFFER	   (64 * 1024)
#define AS_TEST_TREE_FILES 50

/* a resume after the sender was killed must not wait for the dead connection's idle timeout
 * (30 s) at the receiver. It takes about 7 s on an idle machine and took 18.5 s once under a
 * parallel test load; without the takeover it takes over 30 s */
#define AS_TEST_RESUME_MAX_MS 25000

/* -------- a UDP relay that counts QUIC connections -------- */

typedef struct {
	GSocket *front; /* owned: where the sender sends */
	GSource *front_source;
	guint16 port;
	GInetSocketAddress *target; /* owned: the receiver's QUIC port */
	GHashTable *clients;	    /* "addr:port" -> AsTestRelayClient */
	guint n_clients;
	guint64 up_bytes; /* forwarded towards the receiver */
	guint64 up_limit; /* past this, datagrams towards the receiver are dropped; 0: never */
	guint8 buf[AS_TEST_BUFFER];
} AsTestRelay;

typedef struct {
	AsTestRelay *relay;
	GSocketAddress *client_addr; /* owned */
	GSocket *back;		     /* owned: towards the receiver */
	GSource *back_source;
} AsTestRelayClient;

static void
as_test_relay_client_free(AsTestRelayClient *c)
{
	g_source_destroy(c->back_source);
	g_source_unref(c->back_source);
	g_object_unref(c->back);
	g_object_unref(c->client_addr);
	g_free(c);
}

static gboolean
as_test_relay_back_cb(GSocket *socket, GIOCondition cond, gpointer user_data)
{
	AsTestRelayClient *c = user_data;
	gssize n;

	while ((n = g_socket_receive(socket, (gchar *)c->relay->buf, sizeof(c->relay->buf), NULL,
				     NULL)) > 0)
		(void)g_socket_send_to(c->relay->front, c->client_addr, (gchar *)c->relay->buf,
				       (gsize)n, NULL, NULL);
	return G_SOURCE_CONTINUE;
}

static gboolean
as_test_relay_front_cb(GSocket *socket, GIOCondition cond, gpointer user_data)
{
	AsTestRelay *relay = user_data;
	GSocketAddress *from = NULL;
	gssize n;

	while ((n = g_socket_receive_from(socket, &from, (gchar *)relay->buf, sizeof(relay->buf),
					  NULL, NULL)) > 0) {
		g_autoptr(GSocketAddress) from_owned = from;
		g_autoptr(GInetAddress) any = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
		g_autoptr(GSocketAddress) bind_addr = g_inet_socket_address_new(any, 0);
		g_autofree gchar *key = g_strdup_printf(
			"%u", g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(from)));
		AsTestRelayClient *c = g_hash_table_lookup(relay->clients, key);

		from = NULL;
		if (c == NULL) {
			c = g_new0(AsTestRelayClient, 1);
			c->relay = relay;
			c->client_addr = g_object_ref(from_owned);
			c->back = g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_DATAGRAM,
					       G_SOCKET_PROTOCOL_UDP, NULL);
			g_assert_nonnull(c->back);
			g_socket_set_blocking(c->back, FALSE);
			g_assert_true(g_socket_bind(c->back, bind_addr, FALSE, NULL));
			c->back_source = g_socket_create_source(c->back, G_IO_IN, NULL);
			g_source_set_callback(c->back_source, G_SOURCE_FUNC(as_test_relay_back_cb),
					      c, NULL);
			g_source_attach(c->back_source, NULL);
			g_hash_table_insert(relay->clients, g_steal_pointer(&key), c);
			relay->n_clients++;
		}
		if (relay->up_limit > 0 && relay->up_bytes >= relay->up_limit)
			continue;
		relay->up_bytes += (guint64)n;
		(void)g_socket_send_to(c->back, G_SOCKET_ADDRESS(relay->target),
				       (gchar *)relay->buf, (gsize)n, NULL, NULL);
	}
	return G_SOURCE_CONTINUE;
}

static AsTestRelay *
as_test_relay_new(guint16 target_port)
{
	AsTestRelay *relay = g_new0(AsTestRelay, 1);
	g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
	g_autoptr(GSocketAddress) addr = g_inet_socket_address_new(loopback, 0);
	g_autoptr(GSocketAddress) bound = NULL;
	g_autoptr(GError) error = NULL;

	relay->target = G_INET_SOCKET_ADDRESS(g_inet_socket_address_new(loopback, target_port));
	relay->clients = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
					       (GDestroyNotify)as_test_relay_client_free);
	relay->front = g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_DATAGRAM,
				    G_SOCKET_PROTOCOL_UDP, &error);
	g_assert_no_error(error);
	g_socket_set_blocking(relay->front, FALSE);
	g_assert_true(g_socket_bind(relay->front, addr, FALSE, &error));
	bound = g_socket_get_local_address(relay->front, &error);
	g_assert_no_error(error);
	relay->port = g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(bound));
	relay->front_source = g_socket_create_source(relay->front, G_IO_IN, NULL);
	g_source_set_callback(relay->front_source, G_SOURCE_FUNC(as_test_relay_front_cb), relay,
			      NULL);
	g_source_attach(relay->front_source, NULL);
	return relay;
}

static void
as_test_relay_free(AsTestRelay *relay)
{
	g_source_destroy(relay->front_source);
	g_source_unref(relay->front_source);
	g_hash_table_unref(relay->clients);
	g_object_unref(relay->front);
	g_object_unref(relay->target);
	g_free(relay);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(AsTestRelay, as_test_relay_free)

/* -------- a TCP proxy that changes the quic_port of /health -------- */

/* a relay in front of @quic_port whose own port has as many digits, so that /health can
 * announce it through as_test_health_proxy_new() */
static AsTestRelay *
as_test_relay_like(guint16 quic_port)
{
	g_autofree gchar *b = g_strdup_printf("%u", quic_port);

	for (guint attempt = 0; attempt < 100; attempt++) {
		AsTestRelay *candidate = as_test_relay_new(quic_port);
		g_autofree gchar *a = g_strdup_printf("%u", candidate->port);
		if (strlen(a) == strlen(b))
			return candidate;
		as_test_relay_free(candidate);
	}
	g_error("no UDP relay port with %zu digits", strlen(b));
	return NULL;
}

/* a proxy to @target_port whose /health announces @fake_quic_port instead of @quic_port */
static AsTestProxy *
as_test_health_proxy_new(guint16 target_port, guint16 quic_port, guint16 fake_quic_port)
{
	AsTestProxy *proxy = as_test_proxy_new(target_port);

	proxy->find = g_strdup_printf("\"quic_port\":%u", quic_port);
	proxy->replace = g_strdup_printf("\"quic_port\":%u", fake_quic_port);
	g_assert_cmpuint(strlen(proxy->find), ==, strlen(proxy->replace));
	return proxy;
}

/* a UDP port on loopback that swallows everything: a QUIC handshake there times out, as
 * through a firewall that drops UDP; its number has as many digits as @like */
static GSocket *
as_test_black_hole_new(guint16 like, guint16 *port)
{
	g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
	g_autofree gchar *like_text = g_strdup_printf("%u", like);

	for (guint attempt = 0; attempt < 100; attempt++) {
		g_autoptr(GSocketAddress) addr = g_inet_socket_address_new(loopback, 0);
		g_autoptr(GSocketAddress) bound = NULL;
		g_autoptr(GSocket) socket = g_socket_new(
			G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_DATAGRAM, G_SOCKET_PROTOCOL_UDP, NULL);
		g_autofree gchar *text = NULL;

		g_assert_true(g_socket_bind(socket, addr, FALSE, NULL));
		bound = g_socket_get_local_address(socket, NULL);
		*port = g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(bound));
		text = g_strdup_printf("%u", *port);
		if (strlen(text) == strlen(like_text) && *port != like)
			return g_steal_pointer(&socket);
	}
	g_error("no UDP port with %zu digits", strlen(like_text));
	return NULL;
}

/* -------- daemons and the bus -------- */

/* a receiver with QUIC on; @quic_port 0 for any free port */
static AsTestDaemon *
as_test_receiver_new(guint16 quic_port)
{
	AsTestDaemon *receiver = as_test_daemon_new();
	g_autoptr(GError) error = NULL;

	if (quic_port != 0) {
		g_autofree gchar *port = g_strdup_printf("%u", quic_port);
		as_test_daemon_add_arg(receiver, "--quic-port");
		as_test_daemon_add_arg(receiver, port);
	}
	as_test_daemon_start(receiver, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(as_test_daemon_get_quic_port(receiver), >, 0);
	return receiver;
}

static gboolean
as_test_staging_empty_cb(gpointer user_data)
{
	return as_test_count_staging_temps(AS_TEST_DAEMON(user_data)) == 0;
}

/* -------- the cases -------- */

static void
as_test_send_quic_parse(void)
{
	struct {
		const gchar *destination;
		const gchar *protocol;
		const gchar *host_port;
		const gchar *quic_host;
		guint16 quic_port;
		gboolean mdns;
		gint code; /* -1: success */
	} cases[] = {
		{"quic://10.0.0.5:9000", NULL, "10.0.0.5:9000", "10.0.0.5", 9000, FALSE, -1},
		{"quic://host.example", "quic", "host.example:7789", "host.example", 7789, FALSE,
		 -1},
		{"QUIC://[::1]:7000", "auto", "[::1]:7000", "::1", 7000, FALSE, -1},
		{"10.0.0.5", "quic", "10.0.0.5:7788", NULL, 0, FALSE, -1},
		{"laptop.local", NULL, "laptop.local", NULL, 0, TRUE, -1},
		{"@living room", "quic", "@living room", NULL, 0, TRUE, -1},
		{"laptop.local", "https", "laptop.local", NULL, 0, TRUE, -1},
		{"quic://10.0.0.5:9000", "http", NULL, NULL, 0, FALSE, AS_ERROR_INVALID_ARGUMENT},
		{"quic://10.0.0.5:0", NULL, NULL, NULL, 0, FALSE, AS_ERROR_INVALID_ARGUMENT},
		{"quic://10.0.0.5/path", NULL, NULL, NULL, 0, FALSE, AS_ERROR_INVALID_ARGUMENT},
		{"quic://", NULL, NULL, NULL, 0, FALSE, AS_ERROR_INVALID_ARGUMENT},
		{"laptop.local", "carrier-pigeon", NULL, NULL, 0, FALSE, AS_ERROR_INVALID_ARGUMENT},
	};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(GError) error = NULL;
		g_autofree gchar *base_url = NULL;
		g_autofree gchar *host_port = NULL;
		g_autofree gchar *quic_host = NULL;
		guint16 quic_port = 0;
		gboolean mdns = FALSE;
		gboolean ok = as_send_job_parse_destination(cases[i].destination, cases[i].protocol,
							    &base_url, &host_port, &quic_host,
							    &quic_port, &mdns, &error);
		g_test_message("%s -> %s", cases[i].destination, ok ? host_port : error->message);
		if (cases[i].code >= 0) {
			g_assert_error(error, AS_ERROR, cases[i].code);
			continue;
		}
		g_assert_no_error(error);
		g_assert_cmpstr(host_port, ==, cases[i].host_port);
		g_assert_cmpstr(quic_host, ==, cases[i].quic_host);
		g_assert_cmpuint(quic_port, ==, cases[i].quic_port);
		g_assert_cmpint(mdns, ==, cases[i].mdns);
		/* only a plain host has an HTTP side before anything is looked up */
		g_assert_true((base_url != NULL) == (quic_host == NULL && !mdns));
	}
}

#if HAVE_MDNS
/* what an announcement leads to: its address and port for /health, its quic and fp TXT for
 * the connection and the pin (the mDNS lookup itself is covered by as-mdns-test) */
static void
as_test_send_quic_mdns_mapping(void)
{
	const gchar *fp = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
	g_autoptr(AsMdnsPeer) peer = as_mdns_peer_new();
	g_autofree gchar *dest = NULL;

	peer->name = g_strdup("living room");
	peer->host = g_strdup("nas.local");
	peer->port = 7788;
	g_assert_true(as_mdns_peer_set_txt_value(peer, AS_MDNS_TXT_QUIC, "7789", 4));
	g_assert_true(as_mdns_peer_set_txt_value(peer, AS_MDNS_TXT_FP, fp, strlen(fp)));
	g_assert_false(as_mdns_peer_set_txt_value(peer, AS_MDNS_TXT_QUIC, "70000", 5));
	g_assert_cmpuint(peer->quic, ==, 7789);
	g_assert_cmpstr(peer->fp, ==, fp);
	/* without an address: the host name */
	dest = as_mdns_peer_dup_destination(peer);
	g_assert_cmpstr(dest, ==, "nas.local:7788");
	g_clear_pointer(&dest, g_free);
	peer->addr = g_strdup("192.0.2.5");
	dest = as_mdns_peer_dup_destination(peer);
	g_assert_cmpstr(dest, ==, "192.0.2.5:7788");
	g_clear_pointer(&dest, g_free);
	g_free(peer->addr);
	peer->addr = g_strdup("2001:db8::5");
	dest = as_mdns_peer_dup_destination(peer);
	g_assert_cmpstr(dest, ==, "[2001:db8::5]:7788");
	/* and it is a destination the sender takes */
	{
		g_autoptr(GError) error = NULL;
		g_autofree gchar *base_url = NULL;
		g_autofree gchar *host_port = NULL;
		g_assert_true(as_send_job_parse_destination(dest, "auto", &base_url, &host_port,
							    NULL, NULL, NULL, &error));
		g_assert_no_error(error);
		g_assert_cmpstr(base_url, ==, "http://[2001:db8::5]:7788");
	}
	/* with Protocol https: its announced HTTPS port, the same address */
	g_clear_pointer(&dest, g_free);
	dest = as_mdns_peer_dup_https_destination(peer);
	g_assert_null(dest);
	g_assert_true(as_mdns_peer_set_txt_value(peer, AS_MDNS_TXT_HTTPS, "7790", 4));
	dest = as_mdns_peer_dup_https_destination(peer);
	g_assert_cmpstr(dest, ==, "https://[2001:db8::5]:7790");
	{
		g_autoptr(GError) error = NULL;
		g_autofree gchar *base_url = NULL;
		g_autofree gchar *host_port = NULL;
		g_assert_true(as_send_job_parse_destination(dest, "https", &base_url, &host_port,
							    NULL, NULL, NULL, &error));
		g_assert_no_error(error);
		g_assert_cmpstr(base_url, ==, "https://[2001:db8::5]:7790");
	}
}

#endif

/* quic:// and one file: trust on first use records the receiver, the receiver files it as
 * a QUIC upload, both histories agree */
static void
as_test_send_quic_file(void)
{
	g_autoptr(GDBusConnection) conn = as_test_connection();
	g_autoptr(AsTestDaemon) sender = NULL;
	g_autoptr(AsTestDaemon) receiver = NULL;
	g_autoptr(GVariant) props = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariantBuilder) options = NULL;
	g_autofree gchar *path = NULL;
	g_autofree gchar *sha256 = NULL;
	g_autofree gchar *dest = NULL;
	g_autofree gchar *object = NULL;
	g_autofree gchar *fp = NULL;
	g_autofree gchar *known = NULL;
	g_autofree gchar *expected = NULL;
	g_autofree gchar *known_path = NULL;
	const guint64 size = 3 * AS_TEST_MIB + 17;

	as_test_watchdog_arm();
	sender = as_test_sender_new(conn);
	receiver = as_test_receiver_new(0);
	path = as_test_one_file(sender, "one.bin", size, 1);
	sha256 = as_test_file_sha256(path);
	dest = g_strdup_printf("quic://127.0.0.1:%u", as_test_daemon_get_quic_port(receiver));
	options = as_test_options_with_token(sender, receiver);
	{
		const gchar *paths[] = {path, NULL};
		object = as_test_send(conn, paths, dest, options, &error);
	}
	g_assert_no_error(error);
	props = as_test_wait_completed(conn, object);
	g_assert_cmpuint(as_test_prop_u32(props, "FilesDone"), ==, 1);
	{
		g_autofree gchar *protocol = as_test_prop_string(props, "Protocol");
		g_autofree gchar *got = as_test_prop_string(props, "Sha256");
		g_assert_cmpstr(protocol, ==, "quic");
		g_assert_cmpstr(got, ==, sha256);
	}
	as_test_assert_received(receiver, "one.bin", sha256);
	g_assert_cmpuint(as_test_count_history(receiver, "receive", "quic"), ==, 1);
	g_assert_cmpuint(as_test_count_history(sender, "send", "quic"), ==, 1);

	/* recorded on first use, with the certificate /health shows */
	fp = as_test_daemon_dup_cert_sha256(receiver);
	known_path = as_test_known_peers_path(sender);
	g_assert_true(g_file_get_contents(known_path, &known, NULL, &error));
	g_assert_no_error(error);
	expected = g_strdup_printf("127.0.0.1:%u %s\n", as_test_daemon_get_quic_port(receiver), fp);
	g_assert_cmpstr(known, ==, expected);

	/* a host name: resolved to all its addresses (::1 refuses, 127.0.0.1 answers), and a
	 * peer of its own in known_peers */
	{
		g_autoptr(GVariantBuilder) options2 = as_test_options_with_token(sender, receiver);
		g_autoptr(GVariant) props2 = NULL;
		g_autofree gchar *object2 = NULL;
		g_autofree gchar *by_name = g_strdup_printf("quic://localhost:%u",
							    as_test_daemon_get_quic_port(receiver));
		g_autofree gchar *expected2 =
			g_strdup_printf("%slocalhost:%u %s\n", expected,
					as_test_daemon_get_quic_port(receiver), fp);
		const gchar *paths[] = {path, NULL};

		object2 = as_test_send(conn, paths, by_name, options2, &error);
		g_assert_no_error(error);
		props2 = as_test_wait_completed(conn, object2);
		g_clear_pointer(&known, g_free);
		g_assert_true(g_file_get_contents(known_path, &known, NULL, &error));
		g_assert_cmpstr(known, ==, expected2);
	}
	g_assert_cmpuint(as_test_count_history(receiver, "receive", "quic"), ==, 2);
}

/* the receiver refuses a file over aerosync/2: the transfer's Error is the receiver's own
 * message from its ERROR frame, not a closed stream */
static void
as_test_send_quic_refused(void)
{
	g_autoptr(GDBusConnection) conn = as_test_connection();
	g_autoptr(AsTestDaemon) sender = NULL;
	g_autoptr(AsTestDaemon) receiver = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *path = NULL;
	g_autofree gchar *dest = NULL;

	as_test_watchdog_arm();
	sender = as_test_sender_new(conn);
	receiver = as_test_daemon_new();
	as_test_daemon_add_arg(receiver, "--max-size");
	as_test_daemon_add_arg(receiver, "100000");
	as_test_daemon_start(receiver, &error);
	g_assert_no_error(error);
	path = as_test_one_file(sender, "big.bin", 300000, 7);
	dest = g_strdup_printf("quic://127.0.0.1:%u", as_test_daemon_get_quic_port(receiver));

	/* too large: refused on the file's stream */
	{
		g_autoptr(GVariantBuilder) options = as_test_options_with_token(sender, receiver);
		g_autofree gchar *object = NULL;
		g_autofree gchar *message = NULL;
		const gchar *paths[] = {path, NULL};

		object = as_test_send(conn, paths, dest, options, &error);
		g_assert_no_error(error);
		message = as_test_wait_failed(conn, object);
		g_assert_nonnull(strstr(message, "exceeds the limit of 100000 bytes"));
		g_assert_null(strstr(message, "without a reply"));
	}

	/* a wrong token: refused on the control stream */
	{
		g_autoptr(GVariantBuilder) options = g_variant_builder_new(G_VARIANT_TYPE_VARDICT);
		g_autofree gchar *token_path =
			g_build_filename(as_test_daemon_get_root(sender), "wrong-token", NULL);
		g_autofree gchar *object = NULL;
		g_autofree gchar *message = NULL;
		const gchar *paths[] = {path, NULL};

		g_assert_true(g_file_set_contents_full(token_path, "not-the-token", -1,
						       G_FILE_SET_CONTENTS_CONSISTENT, 0600,
						       &error));
		g_variant_builder_add(options, "{sv}", AS_SEND_KEY_TOKEN_FILE,
				      g_variant_new_string(token_path));
		object = as_test_send(conn, paths, dest, options, &error);
		g_assert_no_error(error);
		message = as_test_wait_failed(conn, object);
		g_assert_nonnull(strstr(message, "refused the connection: unknown token"));
		g_assert_null(strstr(message, "without a reply"));
	}
	g_assert_cmpuint(as_test_count_history(receiver, "receive", "quic"), ==, 0);
}

/* a directory of 50 files over one QUIC connection, several streams at once */
static void
as_test_send_quic_tree(void)
{
	g_autoptr(GDBusConnection) conn = as_test_connection();
	g_autoptr(AsTestDaemon) sender = NULL;
	g_autoptr(AsTestDaemon) receiver = NULL;
	g_autoptr(AsTestRelay) relay = NULL;
	g_autoptr(GVariant) props = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariantBuilder) options = NULL;
	g_autoptr(GPtrArray) shas = g_ptr_array_new_with_free_func(g_free);
	g_autofree gchar *dir = NULL;
	g_autofree gchar *dest = NULL;
	g_autofree gchar *object = NULL;

	as_test_watchdog_arm();
	sender = as_test_sender_new(conn);
	receiver = as_test_receiver_new(0);
	relay = as_test_relay_new(as_test_daemon_get_quic_port(receiver));
	dir = as_test_mkdir(sender, "src/album/sub");
	for (guint i = 0; i < AS_TEST_TREE_FILES; i++) {
		/* sizes from empty to 200 KiB, half of them in a subfolder */
		g_autofree gchar *path =
			g_strdup_printf("%s/%sf%02u.bin", dir, i % 2 == 0 ? "" : "../", i);
		g_ptr_array_add(shas, as_test_write_random_file(path, (guint64)i * 4099, 100 + i));
	}
	dest = g_strdup_printf("quic://127.0.0.1:%u", relay->port);
	options = as_test_options_with_token(sender, receiver);
	g_variant_builder_add(options, "{sv}", AS_SEND_KEY_RECURSIVE, g_variant_new_boolean(TRUE));
	g_variant_builder_add(options, "{sv}", AS_SEND_KEY_PARALLEL, g_variant_new_uint32(8));
	{
		g_autofree gchar *album =
			g_build_filename(as_test_daemon_get_root(sender), "src", "album", NULL);
		const gchar *paths[] = {album, NULL};
		object = as_test_send(conn, paths, dest, options, &error);
	}
	g_assert_no_error(error);
	props = as_test_wait_completed(conn, object);
	g_assert_cmpuint(as_test_prop_u32(props, "Files"), ==, AS_TEST_TREE_FILES);
	g_assert_cmpuint(as_test_prop_u32(props, "FilesDone"), ==, AS_TEST_TREE_FILES);
	for (guint i = 0; i < AS_TEST_TREE_FILES; i++) {
		g_autofree gchar *rel =
			g_strdup_printf("album/%sf%02u.bin", i % 2 == 0 ? "sub/" : "", i);
		as_test_assert_received(receiver, rel, g_ptr_array_index(shas, i));
	}
	g_assert_cmpuint(as_test_count_history(receiver, "receive", "quic"), ==,
			 AS_TEST_TREE_FILES);
	g_assert_cmpuint(as_test_count_history(sender, "send", "quic"), ==, AS_TEST_TREE_FILES);
	/* one client socket, so one connection, carried all 50 */
	g_assert_cmpuint(relay->n_clients, ==, 1);
}

/* host:port with Protocol auto: /health offers QUIC and the receiver speaks aerosync/2, so a
 * file above the chunk size goes over QUIC too, in resumable chunks */
static void
as_test_send_quic_auto(void)
{
	g_autoptr(GDBusConnection) conn = as_test_connection();
	g_autoptr(AsTestDaemon) sender = NULL;
	g_autoptr(AsTestDaemon) receiver = NULL;
	g_autoptr(GVariant) props = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariantBuilder) options = NULL;
	g_autofree gchar *small = NULL;
	g_autofree gchar *big = NULL;
	g_autofree gchar *small_sha = NULL;
	g_autofree gchar *big_sha = NULL;
	g_autofree gchar *dest = NULL;
	g_autofree gchar *object = NULL;

	as_test_watchdog_arm();
	sender = as_test_sender_new(conn);
	receiver = as_test_receiver_new(0);
	small = as_test_one_file(sender, "small.bin", 300 * 1024, 2);
	big = as_test_one_file(sender, "big.bin", 3 * AS_TEST_MIB, 3);
	small_sha = as_test_file_sha256(small);
	big_sha = as_test_file_sha256(big);
	dest = g_strdup_printf("127.0.0.1:%u", as_test_daemon_get_port(receiver));
	options = as_test_options_with_token(sender, receiver);
	g_variant_builder_add(options, "{sv}", AS_SEND_KEY_CHUNK_SIZE,
			      g_variant_new_uint64(AS_TEST_MIB));
	{
		const gchar *paths[] = {small, big, NULL};
		object = as_test_send(conn, paths, dest, options, &error);
	}
	g_assert_no_error(error);
	props = as_test_wait_completed(conn, object);
	{
		g_autofree gchar *protocol = as_test_prop_string(props, "Protocol");
		g_assert_cmpstr(protocol, ==, "quic");
	}
	as_test_assert_received(receiver, "small.bin", small_sha);
	as_test_assert_received(receiver, "big.bin", big_sha);
	g_assert_cmpuint(as_test_count_history(sender, "send", "quic"), ==, 2);
	g_assert_cmpuint(as_test_count_history(sender, "send", "http-chunk"), ==, 0);
	g_assert_cmpuint(as_test_count_history(receiver, "receive", "quic"), ==, 2);
}

/* /health offers QUIC on a port that swallows UDP: auto goes on over HTTP after the
 * handshake timeout and says why; Protocol quic fails instead, clearly */
static void
as_test_send_quic_fallback(void)
{
	g_autoptr(GDBusConnection) conn = as_test_connection();
	g_autoptr(AsTestDaemon) sender = NULL;
	g_autoptr(AsTestDaemon) receiver = NULL;
	g_autoptr(AsTestProxy) proxy = NULL;
	g_autoptr(GSocket) black_hole = NULL;
	g_autoptr(GVariant) props = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariantBuilder) options = NULL;
	g_autoptr(GVariantBuilder) options2 = NULL;
	g_autofree gchar *path = NULL;
	g_autofree gchar *sha256 = NULL;
	g_autofree gchar *dest = NULL;
	g_autofree gchar *object = NULL;
	g_autofree gchar *object2 = NULL;
	g_autofree gchar *message = NULL;
	g_autofree gchar *dead = NULL;
	guint16 dead_port = 0;

	as_test_watchdog_arm();
	sender = as_test_sender_new(conn);
	receiver = as_test_receiver_new(0);
	black_hole = as_test_black_hole_new(as_test_daemon_get_quic_port(receiver), &dead_port);
	proxy = as_test_health_proxy_new(as_test_daemon_get_port(receiver),
					 as_test_daemon_get_quic_port(receiver), dead_port);
	path = as_test_one_file(sender, "fallback.bin", 100 * 1024, 4);
	sha256 = as_test_file_sha256(path);
	dest = g_strdup_printf("127.0.0.1:%u", proxy->port);
	options = as_test_options_with_token(sender, receiver);
	{
		const gchar *paths[] = {path, NULL};
		object = as_test_send(conn, paths, dest, options, &error);
	}
	g_assert_no_error(error);
	props = as_test_wait_completed(conn, object);
	dead = g_strdup_printf("127.0.0.1:%u", dead_port);
	{
		g_autofree gchar *protocol = as_test_prop_string(props, "Protocol");
		g_test_message("after the fallback: %s", protocol);
		g_assert_true(g_str_has_prefix(protocol, "http (QUIC fallback: "));
		g_assert_nonnull(strstr(protocol, dead));
	}
	as_test_assert_received(receiver, "fallback.bin", sha256);
	g_assert_cmpuint(as_test_count_history(receiver, "receive", "quic"), ==, 0);
	g_assert_cmpuint(as_test_count_history(sender, "send", "quic"), ==, 0);

	/* Protocol quic: no fallback */
	options2 = as_test_options_with_token(sender, receiver);
	g_variant_builder_add(options2, "{sv}", AS_SEND_KEY_PROTOCOL, g_variant_new_string("quic"));
	{
		const gchar *paths[] = {path, NULL};
		object2 = as_test_send(conn, paths, dest, options2, &error);
	}
	g_assert_no_error(error);
	message = as_test_wait_failed(conn, object2);
	g_assert_true(g_str_has_prefix(message, "cannot reach "));
	g_assert_nonnull(strstr(message, dead));
	g_assert_nonnull(strstr(message, "no fallback to HTTP"));
}

/* QUIC breaks down in the middle of a send (its port goes away): auto goes on over HTTP with
 * the files that were left, and says why */
static void
as_test_send_quic_fallback_midway(void)
{
	g_autoptr(GDBusConnection) conn = as_test_connection();
	g_autoptr(AsTestDaemon) sender = NULL;
	g_autoptr(AsTestDaemon) receiver = NULL;
	g_autoptr(AsTestProxy) proxy = NULL;
	AsTestRelay *relay = NULL;
	g_autoptr(GVariant) props = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariantBuilder) options = NULL;
	g_autoptr(GPtrArray) shas = g_ptr_array_new_with_free_func(g_free);
	g_autofree gchar *dir = NULL;
	g_autofree gchar *dest = NULL;
	g_autofree gchar *object = NULL;
	g_autofree gchar *protocol = NULL;
	guint n_quic;
	guint16 quic_port;
	const guint n_files = 20;

	as_test_watchdog_arm();
	sender = as_test_sender_new(conn);
	receiver = as_test_receiver_new(0);
	quic_port = as_test_daemon_get_quic_port(receiver);
	/* /health announces the relay, whose port must be as long as the real one */
	relay = as_test_relay_like(quic_port);
	proxy = as_test_health_proxy_new(as_test_daemon_get_port(receiver), quic_port, relay->port);
	dir = as_test_mkdir(sender, "src/midway");
	for (guint i = 0; i < n_files; i++) {
		g_autofree gchar *path = g_strdup_printf("%s/m%02u.bin", dir, i);
		g_ptr_array_add(shas, as_test_write_random_file(path, 256 * 1024, 200 + i));
	}
	dest = g_strdup_printf("127.0.0.1:%u", proxy->port);
	options = as_test_options_with_token(sender, receiver);
	g_variant_builder_add(options, "{sv}", AS_SEND_KEY_RECURSIVE, g_variant_new_boolean(TRUE));
	/* 5 MiB at 2 MiB/s: the relay goes away in the middle */
	g_variant_builder_add(options, "{sv}", AS_SEND_KEY_RATE_LIMIT,
			      g_variant_new_uint64(2 * AS_TEST_MIB));
	{
		const gchar *paths[] = {dir, NULL};
		object = as_test_send(conn, paths, dest, options, &error);
	}
	g_assert_no_error(error);
	{
		gint64 until = g_get_monotonic_time() + G_USEC_PER_SEC;
		while (g_get_monotonic_time() < until)
			g_main_context_iteration(NULL, FALSE);
	}
	as_test_relay_free(relay);
	props = as_test_wait_completed(conn, object);
	protocol = as_test_prop_string(props, "Protocol");
	g_test_message("after QUIC went away: %s", protocol);
	g_assert_true(g_str_has_prefix(protocol, "http (QUIC fallback: "));
	for (guint i = 0; i < n_files; i++) {
		g_autofree gchar *rel = g_strdup_printf("midway/m%02u.bin", i);
		as_test_assert_received(receiver, rel, g_ptr_array_index(shas, i));
	}
	n_quic = as_test_count_history(sender, "send", "quic");
	g_test_message("%u of %u files went over QUIC", n_quic, n_files);
	g_assert_cmpuint(n_quic, >, 0);
	g_assert_cmpuint(n_quic, <, n_files);
	g_assert_cmpuint(as_test_count_history(receiver, "receive", "quic"), ==, n_quic);
}

static gboolean
as_test_proxy_stalled_cb(gpointer user_data)
{
	AsTestProxy *proxy = user_data;
	return proxy->stalled->len > 0;
}

static gboolean
as_test_relay_blocked_cb(gpointer user_data)
{
	AsTestRelay *relay = user_data;
	return relay->up_bytes >= relay->up_limit;
}

/* what a relay passed for a file of @remaining chunks of @chunk bytes, and up to @extra more
 * in flight: the data, QUIC's headers and acknowledgements, and the handshake */
static guint64
as_test_quic_bound(guint64 remaining, guint64 extra, guint64 chunk)
{
	return (remaining + extra) * chunk / 100 * 106 + 256 * 1024;
}

/* quic:// to an aerosync/2 receiver, the sending daemon killed mid-file (kill -9) and started
 * again: it picks the transfer up from its record and sends only the chunks the receiver's HAVE
 * says are missing (counted by the relay in front of the receiver) */
static void
as_test_send_quic_resume_sender_killed(void)
{
	g_autoptr(GDBusConnection) conn = as_test_connection();
	g_autoptr(AsTestDaemon) sender = NULL;
	g_autoptr(AsTestDaemon) receiver = NULL;
	g_autoptr(AsTestRelay) relay = NULL;
	g_autoptr(GVariant) props = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariantBuilder) options = NULL;
	g_autofree gchar *path = NULL;
	g_autofree gchar *sha256 = NULL;
	g_autofree gchar *dest = NULL;
	g_autofree gchar *object = NULL;
	g_autofree gchar *id = NULL;
	g_autofree gchar *task_id = NULL;
	const guint64 chunk = AS_TEST_MIB;
	const guint64 size = 24 * AS_TEST_MIB + 99;
	const guint64 total = (size + chunk - 1) / chunk;
	guint64 chunks_at_kill;
	gint64 restart_us, resume_ms;

	as_test_watchdog_arm();
	sender = as_test_sender_new(conn);
	receiver = as_test_receiver_new(0);
	relay = as_test_relay_new(as_test_daemon_get_quic_port(receiver));
	path = as_test_one_file(sender, "resume.bin", size, 31);
	sha256 = as_test_file_sha256(path);
	dest = g_strdup_printf("quic://127.0.0.1:%u", relay->port);
	options = as_test_options_with_token(sender, receiver);
	g_variant_builder_add(options, "{sv}", AS_SEND_KEY_CHUNK_SIZE, g_variant_new_uint64(chunk));
	/* the relay stops passing data a third of the way in: the send stalls there */
	relay->up_limit = 8 * chunk;
	{
		const gchar *paths[] = {path, NULL};
		object = as_test_send(conn, paths, dest, options, &error);
	}
	g_assert_no_error(error);
	id = as_test_transfer_id(conn, object);
	task_id = g_strdup_printf("%s-0", id);
	g_assert_true(as_test_wait_for(as_test_relay_blocked_cb, relay, AS_TEST_FINISH_TIMEOUT_MS));
	as_test_run_for(300);
	as_test_daemon_kill(sender);
	chunks_at_kill = as_test_received_chunks(receiver, task_id);
	g_test_message("killed the sender with %" G_GUINT64_FORMAT " of %" G_GUINT64_FORMAT
		       " chunks received",
		       chunks_at_kill, total);
	g_assert_cmpuint(chunks_at_kill, >=, 1);
	g_assert_cmpuint(chunks_at_kill, <, total);

	/* same state directory: it goes on by itself, over a new connection. The dead sender's
	 * connection still holds the chunk it was sending at the receiver (until its idle
	 * timeout, 30 s): the new connection takes that chunk over at once */
	relay->up_limit = 0;
	relay->up_bytes = 0;
	restart_us = g_get_monotonic_time();
	as_test_sender_start(sender, conn);
	props = as_test_wait_completed(conn, object);
	resume_ms = (g_get_monotonic_time() - restart_us) / 1000;
	g_test_message("resumed and finished in %" G_GINT64_FORMAT " ms", resume_ms);
	g_assert_cmpint(resume_ms, <, AS_TEST_RESUME_MAX_MS);
	as_test_assert_received(receiver, "resume.bin", sha256);
	g_assert_cmpuint(as_test_prop_u64(props, "BytesDone"), ==, size);
	{
		g_autofree gchar *protocol = as_test_prop_string(props, "Protocol");
		g_autofree gchar *got = as_test_prop_string(props, "Sha256");
		g_assert_cmpstr(protocol, ==, "quic");
		g_assert_cmpstr(got, ==, sha256);
	}
	g_test_message("after the restart %" G_GUINT64_FORMAT " bytes went through the relay for "
		       "%" G_GUINT64_FORMAT " missing chunks",
		       relay->up_bytes, total - chunks_at_kill);
	/* the chunks the receiver held did not go again */
	g_assert_cmpuint(relay->up_bytes, >=, (total - chunks_at_kill - 1) * chunk);
	g_assert_cmpuint(relay->up_bytes, <=, as_test_quic_bound(total - chunks_at_kill, 1, chunk));
	g_assert_cmpuint(relay->up_bytes, <, size);
	g_assert_cmpuint(as_test_count_history(receiver, "receive", "quic"), ==, 1);
}

/* a file started over HTTP chunks (Protocol auto while QUIC did not get through) and the
 * sending daemon killed mid-file; restarted, it finds QUIC working and finishes the same task
 * over aerosync/2, sending only the chunks the receiver's HAVE lacks */
static void
as_test_send_quic_http_then_quic(void)
{
	g_autoptr(GDBusConnection) conn = as_test_connection();
	g_autoptr(AsTestDaemon) sender = NULL;
	g_autoptr(AsTestDaemon) receiver = NULL;
	g_autoptr(AsTestProxy) proxy = NULL;
	g_autoptr(AsTestRelay) relay = NULL;
	g_autoptr(GVariant) props = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariantBuilder) options = NULL;
	g_autofree gchar *path = NULL;
	g_autofree gchar *sha256 = NULL;
	g_autofree gchar *dest = NULL;
	g_autofree gchar *object = NULL;
	g_autofree gchar *protocol = NULL;
	g_autofree gchar *id = NULL;
	g_autofree gchar *task_id = NULL;
	const guint64 chunk = AS_TEST_MIB;
	const guint64 size = 16 * AS_TEST_MIB + 5;
	const guint64 total = (size + chunk - 1) / chunk;
	guint64 chunks_by_http;
	guint16 quic_port;

	as_test_watchdog_arm();
	sender = as_test_sender_new(conn);
	receiver = as_test_receiver_new(0);
	quic_port = as_test_daemon_get_quic_port(receiver);
	/* /health announces the relay, whose port must be as long as the real one */
	relay = as_test_relay_like(quic_port);
	proxy = as_test_health_proxy_new(as_test_daemon_get_port(receiver), quic_port, relay->port);
	path = as_test_one_file(sender, "handover.bin", size, 33);
	sha256 = as_test_file_sha256(path);
	dest = g_strdup_printf("127.0.0.1:%u", proxy->port);
	options = as_test_options_with_token(sender, receiver);
	g_variant_builder_add(options, "{sv}", AS_SEND_KEY_CHUNK_SIZE, g_variant_new_uint64(chunk));
	/* UDP gets nowhere at first (the handshake times out: HTTP), and HTTP stalls after six
	 * chunks' worth */
	relay->up_limit = 1;
	proxy->up_limit = 6 * chunk;
	{
		const gchar *paths[] = {path, NULL};
		object = as_test_send(conn, paths, dest, options, &error);
	}
	g_assert_no_error(error);
	id = as_test_transfer_id(conn, object);
	task_id = g_strdup_printf("%s-0", id);
	g_assert_true(as_test_wait_for(as_test_proxy_stalled_cb, proxy, AS_TEST_FINISH_TIMEOUT_MS));
	as_test_run_for(300);
	{
		g_autoptr(GVariant) props_before = as_test_props(conn, object);
		protocol = as_test_prop_string(props_before, "Protocol");
	}
	g_assert_true(g_str_has_prefix(protocol, "http (QUIC fallback: "));
	as_test_daemon_kill(sender);
	/* the dead sender's TCP connections close: the receiver drops the chunk under way */
	as_test_proxy_cut_stalled(proxy);
	as_test_run_for(300);
	chunks_by_http = as_test_received_chunks(receiver, task_id);
	g_test_message("killed the sender with %" G_GUINT64_FORMAT " of %" G_GUINT64_FORMAT
		       " chunks received over HTTP",
		       chunks_by_http, total);
	g_assert_cmpuint(chunks_by_http, >=, 1);
	g_assert_cmpuint(chunks_by_http, <, total);

	/* QUIC gets through now: the resumed send negotiates it and goes on with the task */
	relay->up_limit = 0;
	relay->up_bytes = 0;
	as_test_sender_start(sender, conn);
	props = as_test_wait_completed(conn, object);
	g_clear_pointer(&protocol, g_free);
	protocol = as_test_prop_string(props, "Protocol");
	g_test_message("after the restart: %s, %" G_GUINT64_FORMAT
		       " bytes through the relay for %" G_GUINT64_FORMAT " missing chunks",
		       protocol, relay->up_bytes, total - chunks_by_http);
	g_assert_cmpstr(protocol, ==, "quic");
	as_test_assert_received(receiver, "handover.bin", sha256);
	g_assert_cmpuint(as_test_count_history(sender, "send", "quic"), ==, 1);
	/* one file received, under the protocol its task began with */
	g_assert_cmpuint(as_test_count_history(receiver, "receive", "quic") +
				 as_test_count_history(receiver, "receive", "http-chunk"),
			 ==, 1);
	g_assert_cmpuint(relay->up_bytes, >=, (total - chunks_by_http - 1) * chunk);
	g_assert_cmpuint(relay->up_bytes, <=, as_test_quic_bound(total - chunks_by_http, 1, chunk));
	g_assert_cmpuint(relay->up_bytes, <, size);
}

/* quic:// where nothing listens: a clear failure, no HTTP */
static void
as_test_send_quic_dead_port(void)
{
	g_autoptr(GDBusConnection) conn = as_test_connection();
	g_autoptr(AsTestDaemon) sender = NULL;
	g_autoptr(GSocket) black_hole = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariantBuilder) options = g_variant_builder_new(G_VARIANT_TYPE_VARDICT);
	g_autofree gchar *path = NULL;
	g_autofree gchar *dest = NULL;
	g_autofree gchar *object = NULL;
	g_autofree gchar *message = NULL;
	guint16 port = 0;
	gint64 start_us;

	as_test_watchdog_arm();
	sender = as_test_sender_new(conn);
	black_hole = as_test_black_hole_new(10000, &port);
	g_clear_object(&black_hole); /* closed: nothing listens there now */
	path = as_test_one_file(sender, "nowhere.bin", 1000, 5);
	dest = g_strdup_printf("quic://127.0.0.1:%u", port);
	start_us = g_get_monotonic_time();
	{
		const gchar *paths[] = {path, NULL};
		object = as_test_send(conn, paths, dest, options, &error);
	}
	g_assert_no_error(error);
	message = as_test_wait_failed(conn, object);
	g_assert_true(g_str_has_prefix(message, "cannot reach 127.0.0.1:"));
	/* within the handshake timeout and a little */
	g_assert_cmpint(g_get_monotonic_time() - start_us, <, 8 * G_USEC_PER_SEC);
}

/* Pin: a wrong one is refused before anything is sent, the right one passes */
static void
as_test_send_quic_pin(void)
{
	g_autoptr(GDBusConnection) conn = as_test_connection();
	g_autoptr(AsTestDaemon) sender = NULL;
	g_autoptr(AsTestDaemon) receiver = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariantBuilder) options = NULL;
	g_autoptr(GVariantBuilder) options2 = NULL;
	g_autoptr(GVariant) props = NULL;
	g_autofree gchar *path = NULL;
	g_autofree gchar *dest = NULL;
	g_autofree gchar *object = NULL;
	g_autofree gchar *object2 = NULL;
	g_autofree gchar *message = NULL;
	g_autofree gchar *fp = NULL;
	g_autofree gchar *known_path = NULL;
	const gchar *wrong = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

	as_test_watchdog_arm();
	sender = as_test_sender_new(conn);
	receiver = as_test_receiver_new(0);
	fp = as_test_daemon_dup_cert_sha256(receiver);
	path = as_test_one_file(sender, "pinned.bin", 5000, 6);
	dest = g_strdup_printf("127.0.0.1:%u", as_test_daemon_get_port(receiver));
	options = as_test_options_with_token(sender, receiver);
	g_variant_builder_add(options, "{sv}", AS_SEND_KEY_PIN, g_variant_new_string(wrong));
	{
		const gchar *paths[] = {path, NULL};
		object = as_test_send(conn, paths, dest, options, &error);
	}
	g_assert_no_error(error);
	/* a pin mismatch is never a reason to fall back to HTTP */
	message = as_test_wait_failed(conn, object);
	g_assert_nonnull(strstr(message, wrong));
	g_assert_nonnull(strstr(message, fp));
	g_assert_nonnull(strstr(message, "pinned"));
	g_assert_cmpuint(as_test_count_history(receiver, "receive", "quic"), ==, 0);
	g_assert_cmpuint(as_test_count_history(receiver, "receive", "http"), ==, 0);

	/* the right pin, with colons and in capitals as tools print it */
	options2 = as_test_options_with_token(sender, receiver);
	{
		g_autoptr(GString) colons = g_string_new(NULL);
		for (guint i = 0; fp[i] != '\0'; i += 2)
			g_string_append_printf(colons, "%s%c%c", i > 0 ? ":" : "",
					       g_ascii_toupper(fp[i]), g_ascii_toupper(fp[i + 1]));
		g_variant_builder_add(options2, "{sv}", AS_SEND_KEY_PIN,
				      g_variant_new_string(colons->str));
	}
	{
		const gchar *paths[] = {path, NULL};
		object2 = as_test_send(conn, paths, dest, options2, &error);
	}
	g_assert_no_error(error);
	props = as_test_wait_completed(conn, object2);
	g_assert_cmpuint(as_test_count_history(receiver, "receive", "quic"), ==, 1);
	/* Insecure, when asked for, takes any certificate */
	{
		g_autoptr(GVariantBuilder) options3 = as_test_options_with_token(sender, receiver);
		g_autoptr(GVariant) props3 = NULL;
		g_autofree gchar *object3 = NULL;
		g_autofree gchar *quic_dest = g_strdup_printf(
			"quic://127.0.0.1:%u", as_test_daemon_get_quic_port(receiver));
		const gchar *paths[] = {path, NULL};

		g_variant_builder_add(options3, "{sv}", AS_SEND_KEY_INSECURE,
				      g_variant_new_boolean(TRUE));
		object3 = as_test_send(conn, paths, quic_dest, options3, &error);
		g_assert_no_error(error);
		props3 = as_test_wait_completed(conn, object3);
	}
	g_assert_cmpuint(as_test_count_history(receiver, "receive", "quic"), ==, 2);
	/* an explicit pin, or Insecure, is no first use: nothing recorded */
	known_path = as_test_known_peers_path(sender);
	g_assert_false(g_file_test(known_path, G_FILE_TEST_EXISTS));
}

/* trust on first use, then the receiver comes back on the same port with another
 * certificate: refused loudly, and nothing goes over HTTP either */
static void
as_test_send_quic_known_peer_changed(void)
{
	g_autoptr(GDBusConnection) conn = as_test_connection();
	g_autoptr(AsTestDaemon) sender = NULL;
	g_autoptr(AsTestDaemon) receiver = NULL;
	g_autoptr(AsTestDaemon) impostor = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariantBuilder) options = NULL;
	g_autoptr(GVariantBuilder) options2 = NULL;
	g_autoptr(GVariant) props = NULL;
	g_autofree gchar *path = NULL;
	g_autofree gchar *dest = NULL;
	g_autofree gchar *object = NULL;
	g_autofree gchar *object2 = NULL;
	g_autofree gchar *message = NULL;
	g_autofree gchar *fp = NULL;
	g_autofree gchar *fp2 = NULL;
	g_autofree gchar *known_path = NULL;
	g_autofree gchar *where = NULL;
	guint16 quic_port;

	as_test_watchdog_arm();
	sender = as_test_sender_new(conn);
	receiver = as_test_receiver_new(0);
	quic_port = as_test_daemon_get_quic_port(receiver);
	fp = as_test_daemon_dup_cert_sha256(receiver);
	path = as_test_one_file(sender, "tofu.bin", 7000, 7);
	dest = g_strdup_printf("quic://127.0.0.1:%u", quic_port);
	options = as_test_options_with_token(sender, receiver);
	{
		const gchar *paths[] = {path, NULL};
		object = as_test_send(conn, paths, dest, options, &error);
	}
	g_assert_no_error(error);
	props = as_test_wait_completed(conn, object);

	/* another daemon, another state directory, another self-signed certificate */
	as_test_daemon_stop(receiver);
	impostor = as_test_receiver_new(quic_port);
	g_assert_cmpuint(as_test_daemon_get_quic_port(impostor), ==, quic_port);
	fp2 = as_test_daemon_dup_cert_sha256(impostor);
	g_assert_cmpstr(fp, !=, fp2);
	options2 = as_test_options_with_token(sender, impostor);
	{
		const gchar *paths[] = {path, NULL};
		object2 = as_test_send(conn, paths, dest, options2, &error);
	}
	g_assert_no_error(error);
	message = as_test_wait_failed(conn, object2);
	known_path = as_test_known_peers_path(sender);
	where = g_strdup_printf("%s line 1", known_path);
	g_assert_nonnull(strstr(message, "CHANGED"));
	g_assert_nonnull(strstr(message, where));
	g_assert_nonnull(strstr(message, fp));
	g_assert_nonnull(strstr(message, fp2));
	g_assert_cmpuint(as_test_count_history(impostor, "receive", "quic"), ==, 0);
}

/* RateLimit paces QUIC uploads; Pause stops the bytes, Cancel ends the send and the receiver
 * keeps nothing of it */
static void
as_test_send_quic_rate_pause_cancel(void)
{
	g_autoptr(GDBusConnection) conn = as_test_connection();
	g_autoptr(AsTestDaemon) sender = NULL;
	g_autoptr(AsTestDaemon) receiver = NULL;
	g_autoptr(GVariant) props = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariantBuilder) options = NULL;
	g_autoptr(GVariantBuilder) options2 = NULL;
	g_autofree gchar *paced = NULL;
	g_autofree gchar *paced_sha = NULL;
	g_autofree gchar *big = NULL;
	g_autofree gchar *dest = NULL;
	g_autofree gchar *object = NULL;
	g_autofree gchar *object2 = NULL;
	g_autofree gchar *state = NULL;
	g_autofree gchar *received = NULL;
	const guint64 rate = AS_TEST_MIB;
	guint64 before;
	guint64 after;
	gint64 start_us;
	gdouble seconds;

	as_test_watchdog_arm();
	sender = as_test_sender_new(conn);
	receiver = as_test_receiver_new(0);
	paced = as_test_one_file(sender, "paced.bin", 3 * AS_TEST_MIB, 9);
	paced_sha = as_test_file_sha256(paced);
	big = as_test_one_file(sender, "big.bin", 16 * AS_TEST_MIB, 10);
	dest = g_strdup_printf("quic://127.0.0.1:%u", as_test_daemon_get_quic_port(receiver));

	/* 3 MiB at 1 MiB/s: about 3 s, give or take 15% and the handshake */
	options = as_test_options_with_token(sender, receiver);
	g_variant_builder_add(options, "{sv}", AS_SEND_KEY_RATE_LIMIT, g_variant_new_uint64(rate));
	start_us = g_get_monotonic_time();
	{
		const gchar *paths[] = {paced, NULL};
		object = as_test_send(conn, paths, dest, options, &error);
	}
	g_assert_no_error(error);
	props = as_test_wait_completed(conn, object);
	seconds = (gdouble)(g_get_monotonic_time() - start_us) / G_USEC_PER_SEC;
	g_test_message("3 MiB at 1 MiB/s over QUIC took %.2f s", seconds);
	g_assert_cmpfloat(seconds, >=, 3.0 * 0.85);
	g_assert_cmpfloat(seconds, <=, 3.0 * 1.15 + 0.5);
	as_test_assert_received(receiver, "paced.bin", paced_sha);

	/* pause: the bytes stop; cancel: it ends, nothing is kept */
	options2 = as_test_options_with_token(sender, receiver);
	g_variant_builder_add(options2, "{sv}", AS_SEND_KEY_RATE_LIMIT, g_variant_new_uint64(rate));
	{
		const gchar *paths[] = {big, NULL};
		object2 = as_test_send(conn, paths, dest, options2, &error);
	}
	g_assert_no_error(error);
	g_usleep(1500 * 1000);
	as_test_call_transfer(conn, object2, "Pause", NULL, NULL);
	g_usleep(300 * 1000);
	state = as_test_state(conn, object2);
	g_assert_cmpstr(state, ==, "paused");
	/* the upload under way was dropped (it starts again from its first byte): its bytes
	 * leave BytesDone at the next progress report, within a second */
	g_usleep(1200 * 1000);
	g_clear_pointer(&props, g_variant_unref);
	props = as_test_props(conn, object2);
	before = as_test_prop_u64(props, "BytesDone");
	g_usleep(1200 * 1000);
	g_clear_pointer(&props, g_variant_unref);
	props = as_test_props(conn, object2);
	after = as_test_prop_u64(props, "BytesDone");
	g_assert_cmpuint(after, ==, before);
	as_test_call_transfer(conn, object2, "Resume", NULL, NULL);
	g_usleep(500 * 1000);
	as_test_call_transfer(conn, object2, "Cancel", NULL, NULL);
	g_clear_pointer(&props, g_variant_unref);
	props = as_test_wait_state(conn, object2, NULL, AS_TEST_FINISH_TIMEOUT_MS);
	g_clear_pointer(&state, g_free);
	state = as_test_prop_string(props, "State");
	g_assert_cmpstr(state, ==, "cancelled");
	received = g_build_filename(as_test_daemon_get_save_dir(receiver), "big.bin", NULL);
	g_assert_false(g_file_test(received, G_FILE_TEST_EXISTS));
	g_assert_true(as_test_wait_for(as_test_staging_empty_cb, receiver, 5000));
}

#if HAVE_MDNS
/* tests/avahi/avahi-env.sh: a private system bus and an avahi-daemon on loopback, host name
 * aerosync-test.local; the receivers are announced by this process, with the TXT records
 * aerosyncd writes */
#define AS_TEST_MDNS_HOST	"aerosync-test.local"
#define AS_TEST_MDNS_GOOD	"as-send-quic-good"
#define AS_TEST_MDNS_BAD	"as-send-quic-bad"
#define AS_TEST_MDNS_PUBLISH_MS 20000
#define AS_TEST_MDNS_WRONG_FP	"ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100"

static gboolean
as_test_publisher_established_cb(gpointer user_data)
{
	while (g_main_context_iteration(NULL, FALSE))
		;
	return as_mdns_publisher_get_state(AS_MDNS_PUBLISHER(user_data)) ==
	       AS_MDNS_PUBLISHER_STATE_ESTABLISHED;
}

static AsMdnsPublisher *
as_test_publish(const gchar *name, AsTestDaemon *receiver, const gchar *fp)
{
	g_autoptr(GHashTable) txt =
		as_mdns_publisher_txt_new(TRUE, TRUE, as_test_daemon_get_quic_port(receiver), fp);
	AsMdnsPublisher *publisher =
		as_mdns_publisher_new(name, as_test_daemon_get_port(receiver), txt);

	as_mdns_publisher_start(publisher);
	g_assert_true(as_test_wait_for(as_test_publisher_established_cb, publisher,
				       AS_TEST_MDNS_PUBLISH_MS));
	return publisher;
}

/* @instance and NAME.local through a real avahi-daemon: the announced fingerprint is pinned
 * (a wrong one is refused), a host with two receivers is ambiguous */
static void
as_test_send_quic_mdns(void)
{
	g_autoptr(GDBusConnection) conn = NULL;
	g_autoptr(AsTestDaemon) sender = NULL;
	g_autoptr(AsTestDaemon) receiver = NULL;
	g_autoptr(AsMdnsPublisher) good = NULL;
	g_autoptr(AsMdnsPublisher) bad = NULL;
	g_autoptr(GSubprocessLauncher) launcher = NULL;
	g_autoptr(GSubprocess) helper = NULL;
	g_autoptr(GDataInputStream) replies = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *dir = NULL;
	g_autofree gchar *script = NULL;
	g_autofree gchar *line = NULL;
	g_autofree gchar *address = NULL;
	g_autofree gchar *daemon = g_find_program_in_path("avahi-daemon");
	g_autofree gchar *fp = NULL;
	g_autofree gchar *path = NULL;
	g_autofree gchar *sha256 = NULL;
	g_autofree gchar *known_path = NULL;

	if (getuid() != 0) {
		g_test_skip("needs root to run avahi-daemon");
		return;
	}
	if (daemon == NULL && !g_file_test("/usr/sbin/avahi-daemon", G_FILE_TEST_IS_EXECUTABLE)) {
		g_test_skip("avahi-daemon is not installed");
		return;
	}
	if (g_file_test("/run/avahi-daemon/pid", G_FILE_TEST_EXISTS)) {
		g_test_skip("avahi-daemon is already running");
		return;
	}
	as_test_watchdog_arm();
	dir = g_dir_make_tmp("as-send-quic-avahi-XXXXXX", &error);
	g_assert_no_error(error);
	script = g_test_build_filename(G_TEST_DIST, "avahi", "avahi-env.sh", NULL);
	launcher = g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_STDIN_PIPE |
					     G_SUBPROCESS_FLAGS_STDOUT_PIPE);
	helper = g_subprocess_launcher_spawn(launcher, &error, script, dir, NULL);
	g_assert_no_error(error);
	replies = g_data_input_stream_new(g_subprocess_get_stdout_pipe(helper));
	/* the helper bounds its own start (20 s at most) */
	line = g_data_input_stream_read_line_utf8(replies, NULL, NULL, &error);
	g_assert_no_error(error);
	g_test_message("avahi-env.sh: %s", line != NULL ? line : "(nothing)");
	if (line == NULL || !g_str_equal(line, "ready")) {
		g_output_stream_close(g_subprocess_get_stdin_pipe(helper), NULL, NULL);
		g_subprocess_wait(helper, NULL, NULL);
		if (line != NULL && g_str_has_prefix(line, "skip ")) {
			g_test_skip(line + 5);
			return;
		}
		g_error("avahi-env.sh did not start: %s", line != NULL ? line : "(nothing)");
	}
	/* the daemons started from now on find avahi there */
	address = g_strdup_printf("unix:path=%s/system_bus_socket", dir);
	g_setenv("DBUS_SYSTEM_BUS_ADDRESS", address, TRUE);

	conn = as_test_connection();
	sender = as_test_sender_new(conn);
	receiver = as_test_receiver_new(0);
	fp = as_test_daemon_dup_cert_sha256(receiver);
	good = as_test_publish(AS_TEST_MDNS_GOOD, receiver, fp);
	path = as_test_one_file(sender, "found.bin", 200 * 1024, 11);
	sha256 = as_test_file_sha256(path);

	/* by instance, then by host: found, pinned, over QUIC */
	{
		const gchar *dests[] = {"@" AS_TEST_MDNS_GOOD, AS_TEST_MDNS_HOST};
		for (guint i = 0; i < G_N_ELEMENTS(dests); i++) {
			g_autoptr(GVariantBuilder) options =
				as_test_options_with_token(sender, receiver);
			g_autoptr(GVariant) props = NULL;
			g_autofree gchar *object = NULL;
			g_autofree gchar *protocol = NULL;
			g_autofree gchar *peer = NULL;
			const gchar *paths[] = {path, NULL};

			object = as_test_send(conn, paths, dests[i], options, &error);
			g_assert_no_error(error);
			props = as_test_wait_completed(conn, object);
			protocol = as_test_prop_string(props, "Protocol");
			g_assert_cmpstr(protocol, ==, "quic");
		}
	}
	g_assert_cmpuint(as_test_count_history(receiver, "receive", "quic"), ==, 2);
	/* the announcement's fingerprint was the pin: no first use to record */
	known_path = as_test_known_peers_path(sender);
	g_assert_false(g_file_test(known_path, G_FILE_TEST_EXISTS));

	/* an announcement with a fingerprint the receiver does not have is refused; now the
	 * host announces two receivers and its name no longer says which */
	bad = as_test_publish(AS_TEST_MDNS_BAD, receiver, AS_TEST_MDNS_WRONG_FP);
	{
		g_autoptr(GVariantBuilder) options = as_test_options_with_token(sender, receiver);
		g_autofree gchar *object = NULL;
		g_autofree gchar *message = NULL;
		const gchar *paths[] = {path, NULL};

		object = as_test_send(conn, paths, "@" AS_TEST_MDNS_BAD, options, &error);
		g_assert_no_error(error);
		message = as_test_wait_failed(conn, object);
		g_assert_nonnull(strstr(message, AS_TEST_MDNS_WRONG_FP));
		g_assert_nonnull(strstr(message, fp));
	}
	{
		g_autoptr(GVariantBuilder) options = as_test_options_with_token(sender, receiver);
		g_autofree gchar *object = NULL;
		g_autofree gchar *message = NULL;
		const gchar *paths[] = {path, NULL};

		object = as_test_send(conn, paths, AS_TEST_MDNS_HOST, options, &error);
		g_assert_no_error(error);
		message = as_test_wait_failed(conn, object);
		g_assert_nonnull(strstr(message, "announces 2 AeroSync receivers"));
		g_assert_nonnull(strstr(message, "@" AS_TEST_MDNS_GOOD));
		g_assert_nonnull(strstr(message, "@" AS_TEST_MDNS_BAD));
	}
	g_assert_cmpuint(as_test_count_history(receiver, "receive", "quic"), ==, 2);

	as_mdns_publisher_stop(bad);
	as_mdns_publisher_stop(good);
	as_test_daemon_stop(sender);
	as_test_daemon_stop(receiver);
	g_unsetenv("DBUS_SYSTEM_BUS_ADDRESS");
	g_output_stream_close(g_subprocess_get_stdin_pipe(helper), NULL, NULL);
	g_assert_true(g_subprocess_wait(helper, NULL, &error));
	g_assert_no_error(error);
	as_test_rm_rf(dir);
}
#endif

#if HAVE_MDNS
/* an @instance nobody announces: a clear error within the lookup timeout */
static void
as_test_send_quic_mdns_unknown(void)
{
	g_autoptr(GDBusConnection) conn = as_test_connection();
	g_autoptr(AsTestDaemon) sender = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariantBuilder) options = g_variant_builder_new(G_VARIANT_TYPE_VARDICT);
	g_autofree gchar *path = NULL;
	g_autofree gchar *object = NULL;
	g_autofree gchar *message = NULL;

	as_test_watchdog_arm();
	sender = as_test_sender_new(conn);
	path = as_test_one_file(sender, "mdns.bin", 10, 8);
	{
		const gchar *paths[] = {path, NULL};
		object = as_test_send(conn, paths, "@no-such-receiver-here", options, &error);
	}
	g_assert_no_error(error);
	message = as_test_wait_failed(conn, object);
	/* either avahi answers "not there", or there is no avahi to ask */
	g_assert_true(strstr(message, "no AeroSync receiver named 'no-such-receiver-here'") !=
			      NULL ||
		      strstr(message, "avahi") != NULL || strstr(message, "Avahi") != NULL);
}

#endif

int
main(int argc, char **argv)
{
	gint ret;

	as_test_init(&argc, &argv);
	as_test_send_bus_up();
	g_test_add_func("/aerosync/send-quic/parse-destination", as_test_send_quic_parse);
#if HAVE_MDNS
	g_test_add_func("/aerosync/send-quic/mdns-mapping", as_test_send_quic_mdns_mapping);
#endif
	g_test_add_func("/aerosync/send-quic/file", as_test_send_quic_file);
	g_test_add_func("/aerosync/send-quic/tree", as_test_send_quic_tree);
	g_test_add_func("/aerosync/send-quic/refused", as_test_send_quic_refused);
	g_test_add_func("/aerosync/send-quic/auto", as_test_send_quic_auto);
	g_test_add_func("/aerosync/send-quic/fallback", as_test_send_quic_fallback);
	g_test_add_func("/aerosync/send-quic/fallback-midway", as_test_send_quic_fallback_midway);
	g_test_add_func("/aerosync/send-quic/resume-sender-killed",
			as_test_send_quic_resume_sender_killed);
	g_test_add_func("/aerosync/send-quic/http-then-quic", as_test_send_quic_http_then_quic);
	g_test_add_func("/aerosync/send-quic/dead-port", as_test_send_quic_dead_port);
	g_test_add_func("/aerosync/send-quic/pin", as_test_send_quic_pin);
	g_test_add_func("/aerosync/send-quic/known-peer-changed",
			as_test_send_quic_known_peer_changed);
	g_test_add_func("/aerosync/send-quic/rate-pause-cancel",
			as_test_send_quic_rate_pause_cancel);
#if HAVE_MDNS
	g_test_add_func("/aerosync/send-quic/mdns-unknown", as_test_send_quic_mdns_unknown);
	g_test_add_func("/aerosync/send-quic/mdns", as_test_send_quic_mdns);
#endif
	ret = g_test_run();
	as_test_send_bus_down();
	return ret;
}
