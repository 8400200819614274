/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "AsMdnsTest"

#include "config.h"

#include <gio/gio.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "as-error.h"
#include "as-mdns-browser.h"
#include "as-mdns-publisher.h"
#include "as-test-send.h"

/* tests/avahi/avahi-daemon.conf: host-name */
#define TEST_HOST	"aerosync-test.local"
#define TEST_ADDR	"127.0.0.1"
#define TEST_HTTP_PORT	7788
#define TEST_QUIC_PORT	7789
#define TEST_FP		"ab12"
#define TEST_HTTPS_PORT 7793
#define TEST_NAME	"as-test"
#define TEST_DUP_NAME	"as-dup"
#define TEST_LATE_NAME	"as-late"
#define TEST_DUP_PORT_A 7790
#define TEST_DUP_PORT_B 7791
#define TEST_LATE_PORT	7792

/* probing a name takes ~1 s; a restarted avahi-daemon announces its host first */
#define TEST_PUBLISH_WAIT_MS 20000
/* avahi-env.sh bounds its own steps: 5 s for the bus, 15 s for avahi-daemon, 5 s per stop */
#define TEST_HELPER_WAIT_MS  40000
#define TEST_PROCESS_WAIT_MS 30000
/* loopback answers at once; avahi-browse -t alone takes ~1 s */
#define TEST_BROWSE_MS	1500
#define TEST_RESOLVE_MS 5000
#define TEST_RETRY_MS	200
/* after a TXT update, browse until the new record shows, at most this often */
#define TEST_TXT_ATTEMPTS 20

/* g_test_expect_message() does not see structured logging, so expected warnings are
 * swallowed by this writer; anything else goes to the default writer (and is fatal) */
typedef struct {
	gchar *domain;
	gchar *pattern;
} TestExpectedLog;

static GQueue test_log_expected = G_QUEUE_INIT;

static void
test_expect_warning(const gchar *domain, const gchar *pattern)
{
	TestExpectedLog *expected = g_new0(TestExpectedLog, 1);
	expected->domain = g_strdup(domain);
	expected->pattern = g_strdup(pattern);
	g_queue_push_tail(&test_log_expected, expected);
}

static void
test_assert_expected_warnings(void)
{
	g_assert_cmpuint(g_queue_get_length(&test_log_expected), ==, 0);
}

static GLogWriterOutput
test_log_writer_cb(GLogLevelFlags log_level,
		   const GLogField *fields,
		   gsize n_fields,
		   gpointer user_data)
{
	const gchar *domain = NULL;
	const gchar *message = NULL;
	TestExpectedLog *expected = g_queue_peek_head(&test_log_expected);

	for (gsize i = 0; i < n_fields; i++) {
		if (g_strcmp0(fields[i].key, "GLIB_DOMAIN") == 0)
			domain = fields[i].value;
		else if (g_strcmp0(fields[i].key, "MESSAGE") == 0)
			message = fields[i].value;
	}
	if ((log_level & G_LOG_LEVEL_WARNING) != 0 && expected != NULL &&
	    g_strcmp0(domain, expected->domain) == 0 && message != NULL &&
	    g_pattern_match_simple(expected->pattern, message)) {
		g_test_message("expected warning: %s", message);
		g_queue_pop_head(&test_log_expected);
		g_free(expected->domain);
		g_free(expected->pattern);
		g_free(expected);
		return G_LOG_WRITER_HANDLED;
	}
	return g_log_writer_default(log_level, fields, n_fields, user_data);
}

/* waiting on the default main context, always bounded */

typedef gboolean (*TestPredicate)(gpointer data);

static gboolean
test_timeout_cb(gpointer user_data)
{
	gboolean *timed_out = user_data;
	*timed_out = TRUE;
	return G_SOURCE_REMOVE;
}

static gboolean
test_wait_for(TestPredicate predicate, gpointer data, guint timeout_ms)
{
	gboolean timed_out = FALSE;
	guint id = g_timeout_add(timeout_ms, test_timeout_cb, &timed_out);

	while (!predicate(data) && !timed_out)
		g_main_context_iteration(NULL, TRUE);
	if (!timed_out)
		g_source_remove(id);
	return predicate(data);
}

/* runs the main context for @duration_ms whatever happens */
static gboolean
test_never(gpointer data)
{
	return FALSE;
}

static void
test_spin(guint duration_ms)
{
	test_wait_for(test_never, NULL, duration_ms);
}

static gboolean
test_result_is_set(gpointer data)
{
	return *(GAsyncResult **)data != NULL;
}

static void
test_async_result_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	GAsyncResult **result = user_data;
	*result = g_object_ref(res);
}

static GAsyncResult *
test_wait_for_result(GAsyncResult **result, guint timeout_ms)
{
	g_assert_true(test_wait_for(test_result_is_set, result, timeout_ms));
	return *result;
}

/* the private system bus and avahi-daemon of tests/avahi/avahi-env.sh */

typedef struct {
	gchar *dir;		   /* (owned): the helper's directory, holds the bus socket */
	GSubprocess *process;	   /* (owned) (nullable): while it runs */
	GDataInputStream *replies; /* (owned) (nullable) */
	GOutputStream *commands;   /* (owned) (nullable) */
	gchar *skip_reason;	   /* (owned) (nullable): why it cannot run here */
} TestAvahi;

static TestAvahi test_avahi = {NULL};

static gchar *
test_avahi_read_line(void)
{
	g_autoptr(GAsyncResult) result = NULL;
	g_autoptr(GError) error = NULL;
	gchar *line;

	g_data_input_stream_read_line_async(test_avahi.replies, G_PRIORITY_DEFAULT, NULL,
					    test_async_result_cb, &result);
	test_wait_for_result(&result, TEST_HELPER_WAIT_MS);
	line = g_data_input_stream_read_line_finish_utf8(test_avahi.replies, result, NULL, &error);
	g_assert_no_error(error);
	g_test_message("avahi-env.sh: %s", line != NULL ? line : "(end of output)");
	return line;
}

/* why the helper cannot work here, checked before anything that needs it */
static const gchar *
test_avahi_precondition(void)
{
	g_autofree gchar *browse = g_find_program_in_path("avahi-browse");
	g_autofree gchar *daemon = g_find_program_in_path("avahi-daemon");

	if (test_avahi.skip_reason != NULL)
		return test_avahi.skip_reason;
	if (getuid() != 0)
		return "needs root to run avahi-daemon";
	if (daemon == NULL && !g_file_test("/usr/sbin/avahi-daemon", G_FILE_TEST_IS_EXECUTABLE))
		return "avahi-daemon is not installed";
	if (browse == NULL)
		return "avahi-browse (avahi-utils) is not installed";
	return NULL;
}

/* starts the helper once; FALSE (and the test skipped) where it cannot run */
static gboolean
test_avahi_ensure(void)
{
	g_autoptr(GSubprocessLauncher) launcher = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *script = NULL;
	g_autofree gchar *line = NULL;
	const gchar *reason;

	if (test_avahi.process != NULL)
		return TRUE;
	reason = test_avahi_precondition();
	if (reason != NULL) {
		g_test_skip(reason);
		return FALSE;
	}
	script = g_test_build_filename(G_TEST_DIST, "avahi", "avahi-env.sh", NULL);
	launcher = g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_STDIN_PIPE |
					     G_SUBPROCESS_FLAGS_STDOUT_PIPE);
	test_avahi.process =
		g_subprocess_launcher_spawn(launcher, &error, script, test_avahi.dir, NULL);
	g_assert_no_error(error);
	test_avahi.replies =
		g_data_input_stream_new(g_subprocess_get_stdout_pipe(test_avahi.process));
	test_avahi.commands = g_object_ref(g_subprocess_get_stdin_pipe(test_avahi.process));

	line = test_avahi_read_line();
	g_assert_nonnull(line);
	if (g_str_has_prefix(line, "skip ")) {
		test_avahi.skip_reason = g_strdup(line + strlen("skip "));
		g_assert_true(g_subprocess_wait(test_avahi.process, NULL, NULL));
		g_clear_object(&test_avahi.replies);
		g_clear_object(&test_avahi.commands);
		g_clear_object(&test_avahi.process);
		g_test_skip(test_avahi.skip_reason);
		return FALSE;
	}
	g_assert_cmpstr(line, ==, "ready");
	return TRUE;
}

static void
test_avahi_command(const gchar *command)
{
	g_autofree gchar *text = g_strdup_printf("%s\n", command);
	g_autofree gchar *reply = NULL;
	g_autoptr(GError) error = NULL;

	g_assert_nonnull(test_avahi.process);
	g_test_message("avahi-env.sh < %s", command);
	g_output_stream_write_all(test_avahi.commands, text, strlen(text), NULL, NULL, &error);
	g_assert_no_error(error);
	g_output_stream_flush(test_avahi.commands, NULL, &error);
	g_assert_no_error(error);
	reply = test_avahi_read_line();
	g_assert_cmpstr(reply, ==, "ok");
}

/* end of input: the helper stops both daemons by PID and exits */
static void
test_avahi_stop(void)
{
	g_autoptr(GAsyncResult) result = NULL;
	g_autoptr(GError) error = NULL;

	if (test_avahi.process == NULL)
		return;
	g_output_stream_close(test_avahi.commands, NULL, NULL);
	g_subprocess_wait_async(test_avahi.process, NULL, test_async_result_cb, &result);
	if (!test_wait_for(test_result_is_set, &result, TEST_HELPER_WAIT_MS)) {
		g_printerr("avahi-env.sh did not stop, sending SIGTERM\n");
		g_subprocess_send_signal(test_avahi.process, SIGTERM);
		test_wait_for_result(&result, TEST_HELPER_WAIT_MS);
	}
	g_assert_true(g_subprocess_wait_finish(test_avahi.process, result, &error));
	g_assert_no_error(error);
	g_assert_cmpint(g_subprocess_get_exit_status(test_avahi.process), ==, 0);
	g_clear_object(&test_avahi.replies);
	g_clear_object(&test_avahi.commands);
	g_clear_object(&test_avahi.process);
}

/* subprocesses: avahi-browse and aerosyncctl */

static gint
test_run(const gchar *const *argv, gchar **stdout_text, gchar **stderr_text)
{
	g_autoptr(GSubprocessLauncher) launcher = g_subprocess_launcher_new(
		G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE);
	g_autoptr(GSubprocess) process = NULL;
	g_autoptr(GAsyncResult) result = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *command = g_strjoinv(" ", (gchar **)argv);

	/* discover must not need the daemon's bus: there is none to find */
	g_subprocess_launcher_setenv(launcher, "AEROSYNC_BUS_ADDRESS",
				     "unix:path=/nonexistent/aerosync-bus", TRUE);
	g_subprocess_launcher_unsetenv(launcher, "DBUS_SESSION_BUS_ADDRESS");
	g_test_message("running %s", command);
	process = g_subprocess_launcher_spawnv(launcher, argv, &error);
	g_assert_no_error(error);
	g_subprocess_communicate_utf8_async(process, NULL, NULL, test_async_result_cb, &result);
	if (!test_wait_for(test_result_is_set, &result, TEST_PROCESS_WAIT_MS)) {
		g_subprocess_force_exit(process);
		g_error("%s did not finish in %u ms", command, (guint)TEST_PROCESS_WAIT_MS);
	}
	g_subprocess_communicate_utf8_finish(process, result, stdout_text, stderr_text, &error);
	g_assert_no_error(error);
	g_test_message("exit %d, stdout:\n%s\nstderr:\n%s", g_subprocess_get_exit_status(process),
		       *stdout_text, *stderr_text);
	return g_subprocess_get_exit_status(process);
}

static const gchar *
test_ctl_path(void)
{
	const gchar *path = g_getenv("AEROSYNCCTL_PATH");
	g_assert_nonnull(path);
	return path;
}

/* avahi-browse -p escapes names as DNS labels: "\DDD" for a byte, "\X" for X */
static gchar *
test_unescape_label(const gchar *label)
{
	GString *text = g_string_new(NULL);

	for (const gchar *p = label; *p != '\0'; p++) {
		if (*p == '\\' && g_ascii_isdigit(p[1]) && g_ascii_isdigit(p[2]) &&
		    g_ascii_isdigit(p[3])) {
			g_string_append_c(text, (gchar)((p[1] - '0') * 100 + (p[2] - '0') * 10 +
							(p[3] - '0')));
			p += 3;
		} else if (*p == '\\' && p[1] != '\0') {
			g_string_append_c(text, *++p);
		} else {
			g_string_append_c(text, *p);
		}
	}
	return g_string_free(text, FALSE);
}

/* the resolved line of `avahi-browse -rpt _aerosync._tcp` for @name, unless a later "-" line
 * removed it (a withdrawn service stays in the cache until its goodbye packet is seen):
 * "=;lo;IPv4;NAME;_aerosync._tcp;local;HOST;ADDRESS;PORT;TXT", or NULL */
static gchar **
test_avahi_browse_find(const gchar *name)
{
	const gchar *argv[] = {"avahi-browse", "-rpt", AS_MDNS_SERVICE_TYPE, NULL};
	g_autofree gchar *out = NULL;
	g_autofree gchar *err = NULL;
	g_auto(GStrv) lines = NULL;
	g_auto(GStrv) found = NULL;

	g_assert_cmpint(test_run(argv, &out, &err), ==, 0);
	lines = g_strsplit(out, "\n", -1);
	for (guint i = 0; lines[i] != NULL; i++) {
		g_auto(GStrv) fields = g_strsplit(lines[i], ";", 10);
		g_autofree gchar *field_name = NULL;
		if (g_strv_length(fields) < 4)
			continue;
		field_name = test_unescape_label(fields[3]);
		if (g_strcmp0(field_name, name) != 0)
			continue;
		if (g_strcmp0(fields[0], "-") == 0)
			g_clear_pointer(&found, g_strfreev);
		else if (g_strcmp0(fields[0], "=") == 0 && g_strv_length(fields) == 10) {
			g_strfreev(found);
			found = g_steal_pointer(&fields);
		}
	}
	return g_steal_pointer(&found);
}

/* the publisher */

typedef struct {
	AsMdnsPublisher *publisher;
	AsMdnsPublisherState state;
} TestStateWait;

static gboolean
test_publisher_in_state(gpointer data)
{
	TestStateWait *wait = data;
	return as_mdns_publisher_get_state(wait->publisher) == wait->state;
}

static void
test_publisher_wait_state(AsMdnsPublisher *publisher, AsMdnsPublisherState state)
{
	TestStateWait wait = {publisher, state};
	if (!test_wait_for(test_publisher_in_state, &wait, TEST_PUBLISH_WAIT_MS)) {
		g_error("'%s' is in state %u, not %u after %u ms",
			as_mdns_publisher_get_name(publisher),
			as_mdns_publisher_get_state(publisher), state, (guint)TEST_PUBLISH_WAIT_MS);
	}
}

static AsMdnsPublisher *
test_publisher_new(const gchar *name, guint16 port)
{
	g_autoptr(GHashTable) txt = as_mdns_publisher_txt_new(TRUE, TRUE, TEST_QUIC_PORT, TEST_FP);
	AsMdnsPublisher *publisher = NULL;

	as_mdns_publisher_txt_add_https(txt, TEST_HTTPS_PORT);
	publisher = as_mdns_publisher_new(name, port, txt);
	as_mdns_publisher_set_retry_interval(publisher, TEST_RETRY_MS);
	return publisher;
}

/* kept from /publish to the end, so restarts must bring it back */
static AsMdnsPublisher *test_publisher = NULL;

/* "as-test" on the network, whichever test runs first (a single one with -p, too) */
static AsMdnsPublisher *
test_publisher_ensure(void)
{
	if (test_publisher == NULL)
		test_publisher = test_publisher_new(TEST_NAME, TEST_HTTP_PORT);
	as_mdns_publisher_start(test_publisher);
	test_publisher_wait_state(test_publisher, AS_MDNS_PUBLISHER_STATE_ESTABLISHED);
	return test_publisher;
}

/* the browser */

static GPtrArray *
test_browse(GError **error)
{
	g_autoptr(GAsyncResult) result = NULL;

	as_mdns_browse_async(TEST_BROWSE_MS, NULL, test_async_result_cb, &result);
	test_wait_for_result(&result, TEST_BROWSE_MS + TEST_PROCESS_WAIT_MS);
	return as_mdns_browse_finish(result, error);
}

static AsMdnsPeer *
test_resolve(const gchar *target, guint timeout_ms, GError **error)
{
	g_autoptr(GAsyncResult) result = NULL;

	as_mdns_resolve_async(target, timeout_ms, NULL, test_async_result_cb, &result);
	test_wait_for_result(&result, timeout_ms + TEST_PROCESS_WAIT_MS);
	return as_mdns_resolve_finish(result, error);
}

static AsMdnsPeer *
test_find_peer(GPtrArray *peers, const gchar *name)
{
	for (guint i = 0; i < peers->len; i++) {
		AsMdnsPeer *peer = g_ptr_array_index(peers, i);
		if (g_strcmp0(peer->name, name) == 0)
			return peer;
	}
	return NULL;
}

static void
test_assert_test_peer(const AsMdnsPeer *peer)
{
	g_assert(peer != NULL);
	g_assert_cmpstr(peer->name, ==, TEST_NAME);
	g_assert_cmpstr(peer->host, ==, TEST_HOST);
	g_assert_cmpstr(peer->addr, ==, TEST_ADDR);
	g_assert_cmpuint(peer->port, ==, TEST_HTTP_PORT);
	g_assert_cmpstr(peer->version, ==, PACKAGE_VERSION);
	g_assert_true(peer->ws);
	g_assert_true(peer->auth);
	g_assert_cmpuint(peer->quic, ==, TEST_QUIC_PORT);
	g_assert_cmpstr(peer->fp, ==, TEST_FP);
	g_assert_cmpuint(peer->https, ==, TEST_HTTPS_PORT);
}

/* tests */

static void
test_mdns_txt(void)
{
	g_autoptr(GHashTable) txt = as_mdns_publisher_txt_new(TRUE, FALSE, TEST_QUIC_PORT, "AB:12");
	g_autoptr(GHashTable) txt_plain = as_mdns_publisher_txt_new(FALSE, TRUE, 0, NULL);
	g_autoptr(AsMdnsPeer) peer = as_mdns_peer_new();
	g_autoptr(AsMdnsPeer) copy = NULL;
	g_autofree gchar *fp_too_long = g_strnfill(66, 'a');
	GHashTableIter iter;
	const gchar *key;
	const gchar *value;

	/* the 0.x keys, then quic and fp only when there is something to say */
	g_assert_cmpuint(g_hash_table_size(txt), ==, 5);
	g_assert_cmpstr(g_hash_table_lookup(txt, "version"), ==, PACKAGE_VERSION);
	g_assert_cmpstr(g_hash_table_lookup(txt, "ws"), ==, "true");
	g_assert_cmpstr(g_hash_table_lookup(txt, "auth"), ==, "false");
	g_assert_cmpstr(g_hash_table_lookup(txt, "quic"), ==, "7789");
	g_assert_cmpstr(g_hash_table_lookup(txt, "fp"), ==, "AB:12");
	g_assert_cmpuint(g_hash_table_size(txt_plain), ==, 3);
	g_assert_false(g_hash_table_contains(txt_plain, "quic"));
	g_assert_false(g_hash_table_contains(txt_plain, "fp"));
	g_assert_cmpstr(g_hash_table_lookup(txt_plain, "auth"), ==, "true");

	/* what the publisher writes, the browser reads */
	g_hash_table_iter_init(&iter, txt);
	while (g_hash_table_iter_next(&iter, (gpointer *)&key, (gpointer *)&value))
		g_assert_true(as_mdns_peer_set_txt_value(peer, key, value, strlen(value)));
	g_assert_cmpstr(peer->version, ==, PACKAGE_VERSION);
	g_assert_true(peer->ws);
	g_assert_false(peer->auth);
	g_assert_cmpuint(peer->quic, ==, TEST_QUIC_PORT);
	g_assert_cmpstr(peer->fp, ==, "ab12");

	/* values that do not parse change nothing */
	g_assert_false(as_mdns_peer_set_txt_value(peer, "quic", "0", 1));
	g_assert_false(as_mdns_peer_set_txt_value(peer, "quic", "70000", 5));
	g_assert_false(as_mdns_peer_set_txt_value(peer, "quic", "77x", 3));
	g_assert_false(as_mdns_peer_set_txt_value(peer, "quic", NULL, 0));
	g_assert_cmpuint(peer->quic, ==, TEST_QUIC_PORT);
	g_assert_false(as_mdns_peer_set_txt_value(peer, "fp", "xyz", 3));
	g_assert_false(as_mdns_peer_set_txt_value(peer, "fp", "abc", 3));
	g_assert_false(as_mdns_peer_set_txt_value(peer, "fp", ":", 1));
	g_assert_false(as_mdns_peer_set_txt_value(peer, "fp", fp_too_long, 66));
	g_assert_cmpstr(peer->fp, ==, "ab12");
	g_assert_false(as_mdns_peer_set_txt_value(peer, "ws", "maybe", 5));
	g_assert_true(peer->ws);
	g_assert_false(as_mdns_peer_set_txt_value(peer, "version", "1.0\x1b[31m", 9));
	g_assert_false(as_mdns_peer_set_txt_value(peer, "version", "\xff\xfe", 2));
	g_assert_false(as_mdns_peer_set_txt_value(peer, "version", "", 0));
	g_assert_cmpstr(peer->version, ==, PACKAGE_VERSION);
	g_assert_false(as_mdns_peer_set_txt_value(peer, "colour", "blue", 4));

	/* keys without case, a bare key is true (RFC 6763), values need no NUL */
	g_assert_true(as_mdns_peer_set_txt_value(peer, "AUTH", NULL, 0));
	g_assert_true(peer->auth);
	g_assert_true(as_mdns_peer_set_txt_value(peer, "ws", "FALSEjunk", 5));
	g_assert_false(peer->ws);
	g_assert_true(as_mdns_peer_set_txt_value(peer, "quic", "4433junk", 4));
	g_assert_cmpuint(peer->quic, ==, 4433);
	g_assert_true(as_mdns_peer_set_txt_value(peer, "Fp", "DE:AD:BE:EF", 11));
	g_assert_cmpstr(peer->fp, ==, "deadbeef");

	/* the HTTPS port: where `send --protocol https NAME.local` goes, at the same address */
	{
		g_autofree gchar *no_https = NULL;
		g_autofree gchar *https = NULL;
		g_autofree gchar *https6 = NULL;
		peer->host = g_strdup("nas.local");
		no_https = as_mdns_peer_dup_https_destination(peer);
		g_assert_null(no_https);
		as_mdns_publisher_txt_add_https(txt_plain, 7790);
		g_assert_cmpstr(g_hash_table_lookup(txt_plain, "https"), ==, "7790");
		g_assert_true(as_mdns_peer_set_txt_value(peer, "https", "7790", 4));
		g_assert_false(as_mdns_peer_set_txt_value(peer, "https", "0", 1));
		g_assert_false(as_mdns_peer_set_txt_value(peer, "https", "65536", 5));
		g_assert_cmpuint(peer->https, ==, 7790);
		https = as_mdns_peer_dup_https_destination(peer);
		g_assert_cmpstr(https, ==, "https://nas.local:7790");
		peer->addr = g_strdup("fe80::1");
		https6 = as_mdns_peer_dup_https_destination(peer);
		g_assert_cmpstr(https6, ==, "https://[fe80::1]:7790");
	}

	copy = as_mdns_peer_copy(peer);
	g_assert_cmpstr(copy->fp, ==, "deadbeef");
	g_assert_cmpuint(copy->quic, ==, 4433);
	g_assert_cmpuint(copy->https, ==, 7790);
	g_assert_true(copy->auth);

	/* the destinations `send` hands to as_mdns_resolve_async() */
	g_assert_true(as_mdns_target_is_mdns("laptop.local"));
	g_assert_true(as_mdns_target_is_mdns("LAPTOP.LOCAL."));
	g_assert_true(as_mdns_target_is_mdns("@Living room"));
	g_assert_false(as_mdns_target_is_mdns("@"));
	g_assert_false(as_mdns_target_is_mdns(".local"));
	g_assert_false(as_mdns_target_is_mdns("a..local"));
	g_assert_false(as_mdns_target_is_mdns("local"));
	g_assert_false(as_mdns_target_is_mdns("192.168.1.20"));
	g_assert_false(as_mdns_target_is_mdns("host.example.com"));
}

static void
test_mdns_resolve_invalid(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(AsMdnsPeer) peer = test_resolve("192.168.1.20", TEST_RESOLVE_MS, &error);

	g_assert_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT);
	g_assert_null(peer);
}

/* before the helper starts: the system bus socket does not exist yet */
static void
test_mdns_no_avahi(void)
{
	g_autoptr(AsMdnsPublisher) publisher = test_publisher_new(TEST_LATE_NAME, TEST_LATE_PORT);
	g_autoptr(GPtrArray) peers = NULL;
	g_autoptr(AsMdnsPeer) peer = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GError) error_resolve = NULL;
	g_autofree gchar *out = NULL;
	g_autofree gchar *err = NULL;
	const gchar *argv[] = {test_ctl_path(), "discover", "--json", "--timeout", "1", NULL};

	if (test_avahi.process != NULL) {
		g_test_skip("avahi-daemon is already running");
		return;
	}

	/* one warning, start() returns, nothing is fatal; retries stay quiet */
	test_expect_warning("AsMdnsPublisher", "cannot publish on mDNS: *");
	as_mdns_publisher_start(publisher);
	test_assert_expected_warnings();
	g_assert_cmpuint(as_mdns_publisher_get_state(publisher), ==,
			 AS_MDNS_PUBLISHER_STATE_WAITING);
	test_spin(TEST_RETRY_MS * 5);
	g_assert_cmpuint(as_mdns_publisher_get_state(publisher), ==,
			 AS_MDNS_PUBLISHER_STATE_WAITING);
	as_mdns_publisher_stop(publisher);
	g_assert_cmpuint(as_mdns_publisher_get_state(publisher), ==,
			 AS_MDNS_PUBLISHER_STATE_STOPPED);

	/* browsing says why, at once */
	peers = test_browse(&error);
	g_assert_error(error, AS_ERROR, AS_ERROR_NOT_SUPPORTED);
	g_assert_nonnull(strstr(error->message, "avahi-daemon"));
	g_assert_null(peers);
	peer = test_resolve("@" TEST_NAME, TEST_RESOLVE_MS, &error_resolve);
	g_assert_error(error_resolve, AS_ERROR, AS_ERROR_NOT_SUPPORTED);
	g_assert_null(peer);

	/* the CLI: one clear line, failure, nothing on stdout */
	g_assert_cmpint(test_run(argv, &out, &err), ==, 1);
	g_assert_cmpstr(out, ==, "");
	g_assert_nonnull(strstr(err, "Avahi is not available"));
	g_assert_cmpuint(strlen(err), ==, strcspn(err, "\n") + 1);
}

/* a publisher started before the bus and avahi-daemon exist announces once they come */
static void
test_mdns_late_avahi(void)
{
	g_autoptr(AsMdnsPublisher) publisher = NULL;
	g_auto(GStrv) fields = NULL;
	const gchar *reason = test_avahi_precondition();

	if (reason != NULL) {
		g_test_skip(reason);
		return;
	}
	if (test_avahi.process != NULL) {
		g_test_skip("avahi-daemon is already running");
		return;
	}
	publisher = test_publisher_new(TEST_LATE_NAME, TEST_LATE_PORT);
	test_expect_warning("AsMdnsPublisher", "cannot publish on mDNS: *");
	as_mdns_publisher_start(publisher);
	test_assert_expected_warnings();
	g_assert_cmpuint(as_mdns_publisher_get_state(publisher), ==,
			 AS_MDNS_PUBLISHER_STATE_WAITING);

	if (!test_avahi_ensure())
		return;
	test_publisher_wait_state(publisher, AS_MDNS_PUBLISHER_STATE_ESTABLISHED);
	fields = test_avahi_browse_find(TEST_LATE_NAME);
	g_assert_nonnull(fields);
	g_assert_cmpstr(fields[8], ==, "7792");

	/* stopping withdraws it */
	as_mdns_publisher_stop(publisher);
	g_clear_pointer(&fields, g_strfreev);
	fields = test_avahi_browse_find(TEST_LATE_NAME);
	g_assert_null(fields);
}

static void
test_mdns_publish(void)
{
	g_auto(GStrv) fields = NULL;
	g_auto(GStrv) txt = NULL;
	const gchar *expected_txt[] = {"\"version=" PACKAGE_VERSION "\"",
				       "\"ws=true\"",
				       "\"auth=true\"",
				       "\"quic=7789\"",
				       "\"fp=" TEST_FP "\"",
				       "\"https=7793\"",
				       NULL};

	if (!test_avahi_ensure())
		return;
	test_publisher_ensure();
	g_assert_cmpstr(as_mdns_publisher_get_name(test_publisher), ==, TEST_NAME);

	/* cross-checked with avahi's own tool */
	fields = test_avahi_browse_find(TEST_NAME);
	g_assert_nonnull(fields);
	g_assert_cmpstr(fields[1], ==, "lo");
	g_assert_cmpstr(fields[2], ==, "IPv4");
	g_assert_cmpstr(fields[4], ==, AS_MDNS_SERVICE_TYPE);
	g_assert_cmpstr(fields[5], ==, "local");
	g_assert_cmpstr(fields[6], ==, TEST_HOST);
	g_assert_cmpstr(fields[7], ==, TEST_ADDR);
	g_assert_cmpstr(fields[8], ==, "7788");
	txt = g_strsplit(fields[9], " ", -1);
	for (guint i = 0; expected_txt[i] != NULL; i++)
		g_assert_true(g_strv_contains((const gchar *const *)txt, expected_txt[i]));
	g_assert_cmpuint(g_strv_length(txt), ==, g_strv_length((gchar **)expected_txt));
}

static void
test_mdns_browse(void)
{
	g_autoptr(GPtrArray) peers = NULL;
	g_autoptr(AsMdnsPeer) by_instance = NULL;
	g_autoptr(AsMdnsPeer) by_host = NULL;
	g_autoptr(AsMdnsPeer) missing = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GError) error_missing = NULL;
	g_autoptr(GCancellable) cancellable = g_cancellable_new();
	g_autoptr(GAsyncResult) result = NULL;
	g_autoptr(GPtrArray) cancelled = NULL;
	gint64 start_us;

	if (!test_avahi_ensure())
		return;
	test_publisher_ensure();

	peers = test_browse(&error);
	g_assert_no_error(error);
	test_assert_test_peer(test_find_peer(peers, TEST_NAME));

	/* what `send @instance` and `send NAME.local` use; found well before the timeout */
	start_us = g_get_monotonic_time();
	by_instance = test_resolve("@" TEST_NAME, TEST_RESOLVE_MS, &error);
	g_assert_no_error(error);
	test_assert_test_peer(by_instance);
	g_assert_cmpint(g_get_monotonic_time() - start_us, <, TEST_RESOLVE_MS * 1000 / 2);
	by_host = test_resolve(TEST_HOST, TEST_RESOLVE_MS, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(by_host->host, ==, TEST_HOST);
	g_assert_cmpstr(by_host->addr, ==, TEST_ADDR);
	missing = test_resolve("@as-missing", TEST_BROWSE_MS, &error_missing);
	g_assert_error(error_missing, AS_ERROR, AS_ERROR_NOT_FOUND);
	g_assert_null(missing);

	/* cancelled: returns at once, not after the timeout */
	start_us = g_get_monotonic_time();
	as_mdns_browse_async(TEST_PUBLISH_WAIT_MS, cancellable, test_async_result_cb, &result);
	g_cancellable_cancel(cancellable);
	test_wait_for_result(&result, TEST_PUBLISH_WAIT_MS);
	cancelled = as_mdns_browse_finish(result, &error);
	g_assert_error(error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
	g_assert_null(cancelled);
	g_assert_cmpint(g_get_monotonic_time() - start_us, <, TEST_PUBLISH_WAIT_MS * 1000 / 2);
}

static JsonObject *
test_json_find(JsonArray *array, const gchar *name)
{
	for (guint i = 0; i < json_array_get_length(array); i++) {
		JsonObject *object = json_array_get_object_element(array, i);
		if (g_strcmp0(json_object_get_string_member(object, "name"), name) == 0)
			return object;
	}
	return NULL;
}

static void
test_mdns_discover_cli(void)
{
	const gchar *argv_json[] = {test_ctl_path(), "discover", "--json",
				    "--timeout",     "1.5",	 NULL};
	const gchar *argv_human[] = {test_ctl_path(), "discover", "--timeout", "1", NULL};
	const gchar *argv_bad[] = {test_ctl_path(), "discover", "--timeout", "0", NULL};
	const gchar *keys[] = {"name",		"host", "port", "addr",	 "version", "ws_enabled",
			       "auth_required", "quic", "fp",	"https", NULL};
	g_autoptr(JsonParser) parser = json_parser_new();
	g_autoptr(GError) error = NULL;
	g_autofree gchar *out = NULL;
	g_autofree gchar *err = NULL;
	g_autofree gchar *out_human = NULL;
	g_autofree gchar *err_human = NULL;
	g_autofree gchar *out_bad = NULL;
	g_autofree gchar *err_bad = NULL;
	JsonObject *object;

	if (!test_avahi_ensure())
		return;
	g_assert_cmpint(test_run(argv_json, &out, &err), ==, 0);
	json_parser_load_from_data(parser, out, -1, &error);
	g_assert_no_error(error);
	g_assert_true(JSON_NODE_HOLDS_ARRAY(json_parser_get_root(parser)));
	object = test_json_find(json_node_get_array(json_parser_get_root(parser)), TEST_NAME);
	g_assert_nonnull(object);
	for (guint i = 0; keys[i] != NULL; i++)
		g_assert_true(json_object_has_member(object, keys[i]));
	g_assert_cmpuint(json_object_get_size(object), ==, g_strv_length((gchar **)keys));
	g_assert_cmpstr(json_object_get_string_member(object, "host"), ==, TEST_HOST);
	g_assert_cmpint(json_object_get_int_member(object, "port"), ==, TEST_HTTP_PORT);
	g_assert_cmpstr(json_object_get_string_member(object, "addr"), ==, TEST_ADDR);
	g_assert_cmpstr(json_object_get_string_member(object, "version"), ==, PACKAGE_VERSION);
	g_assert_true(json_object_get_boolean_member(object, "ws_enabled"));
	g_assert_true(json_object_get_boolean_member(object, "auth_required"));
	g_assert_cmpint(json_object_get_int_member(object, "quic"), ==, TEST_QUIC_PORT);
	g_assert_cmpstr(json_object_get_string_member(object, "fp"), ==, TEST_FP);
	g_assert_cmpint(json_object_get_int_member(object, "https"), ==, TEST_HTTPS_PORT);

	g_assert_cmpint(test_run(argv_human, &out_human, &err_human), ==, 0);
	g_assert_nonnull(strstr(out_human, TEST_NAME));
	g_assert_nonnull(strstr(out_human, TEST_ADDR));
	g_assert_nonnull(strstr(out_human, TEST_HOST));

	g_assert_cmpint(test_run(argv_bad, &out_bad, &err_bad), ==, 2);
	g_assert_nonnull(strstr(err_bad, "--timeout"));
}

static gboolean
test_peer_txt_updated(gpointer data)
{
	g_autoptr(GPtrArray) peers = NULL;
	g_autoptr(GError) error = NULL;
	AsMdnsPeer *peer;

	peers = test_browse(&error);
	g_assert_no_error(error);
	peer = test_find_peer(peers, TEST_NAME);
	return peer != NULL && !peer->auth && !peer->ws && peer->quic == 0 && peer->fp == NULL &&
	       peer->https == 0;
}

static void
test_mdns_update_txt(void)
{
	g_autoptr(GHashTable) txt_off = as_mdns_publisher_txt_new(FALSE, FALSE, 0, NULL);
	g_autoptr(GHashTable) txt_on =
		as_mdns_publisher_txt_new(TRUE, TRUE, TEST_QUIC_PORT, TEST_FP);
	g_autoptr(GPtrArray) peers = NULL;
	g_autoptr(GError) error = NULL;
	gboolean updated = FALSE;

	as_mdns_publisher_txt_add_https(txt_on, TEST_HTTPS_PORT);
	if (!test_avahi_ensure())
		return;
	test_publisher_ensure();
	as_mdns_publisher_update_txt(test_publisher, txt_off);
	for (guint i = 0; i < TEST_TXT_ATTEMPTS && !updated; i++)
		updated = test_peer_txt_updated(NULL);
	g_assert_true(updated);
	g_assert_cmpuint(as_mdns_publisher_get_state(test_publisher), ==,
			 AS_MDNS_PUBLISHER_STATE_ESTABLISHED);
	g_assert_cmpstr(as_mdns_publisher_get_name(test_publisher), ==, TEST_NAME);

	as_mdns_publisher_update_txt(test_publisher, txt_on);
	for (guint i = 0; i < TEST_TXT_ATTEMPTS; i++) {
		AsMdnsPeer *peer;
		g_clear_pointer(&peers, g_ptr_array_unref);
		peers = test_browse(&error);
		g_assert_no_error(error);
		peer = test_find_peer(peers, TEST_NAME);
		if (peer != NULL && peer->fp != NULL)
			break;
	}
	test_assert_test_peer(test_find_peer(peers, TEST_NAME));
}

static void
test_name_notify_cb(GObject *object, GParamSpec *pspec, gpointer user_data)
{
	guint *count = user_data;
	(*count)++;
}

static void
test_mdns_collision(void)
{
	g_autoptr(AsMdnsPublisher) first = NULL;
	g_autoptr(AsMdnsPublisher) second = NULL;
	g_autoptr(GPtrArray) peers = NULL;
	g_autoptr(GError) error = NULL;
	g_auto(GStrv) fields_first = NULL;
	g_auto(GStrv) fields_second = NULL;
	g_autofree gchar *second_name = g_strdup_printf("%s #2", TEST_DUP_NAME);
	guint renames = 0;
	AsMdnsPeer *peer;

	if (!test_avahi_ensure())
		return;
	first = test_publisher_new(TEST_DUP_NAME, TEST_DUP_PORT_A);
	as_mdns_publisher_start(first);
	test_publisher_wait_state(first, AS_MDNS_PUBLISHER_STATE_ESTABLISHED);

	/* the same name again: avahi_alternative_service_name() picks the next free one */
	second = test_publisher_new(TEST_DUP_NAME, TEST_DUP_PORT_B);
	g_signal_connect(second, "notify::name", G_CALLBACK(test_name_notify_cb), &renames);
	as_mdns_publisher_start(second);
	test_publisher_wait_state(second, AS_MDNS_PUBLISHER_STATE_ESTABLISHED);
	g_assert_cmpstr(as_mdns_publisher_get_name(first), ==, TEST_DUP_NAME);
	g_assert_cmpstr(as_mdns_publisher_get_name(second), ==, second_name);
	g_assert_cmpuint(renames, ==, 1);

	fields_first = test_avahi_browse_find(TEST_DUP_NAME);
	g_assert_nonnull(fields_first);
	g_assert_cmpstr(fields_first[8], ==, "7790");
	fields_second = test_avahi_browse_find(second_name);
	g_assert_nonnull(fields_second);
	g_assert_cmpstr(fields_second[8], ==, "7791");

	peers = test_browse(&error);
	g_assert_no_error(error);
	peer = test_find_peer(peers, TEST_DUP_NAME);
	g_assert(peer != NULL);
	g_assert_cmpuint(peer->port, ==, TEST_DUP_PORT_A);
	peer = test_find_peer(peers, second_name);
	g_assert(peer != NULL);
	g_assert_cmpuint(peer->port, ==, TEST_DUP_PORT_B);
}

static void
test_state_notify_cb(GObject *object, GParamSpec *pspec, gpointer user_data)
{
	guint *waiting_seen = user_data;
	if (as_mdns_publisher_get_state(AS_MDNS_PUBLISHER(object)) ==
	    AS_MDNS_PUBLISHER_STATE_WAITING)
		(*waiting_seen)++;
}

static gboolean
test_counter_is_set(gpointer data)
{
	return *(guint *)data > 0;
}

static void
test_mdns_restart(void)
{
	g_autoptr(GPtrArray) peers_gone = NULL;
	g_autoptr(GPtrArray) peers_back = NULL;
	g_autoptr(GPtrArray) peers_restarted = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GError) error_gone = NULL;
	guint waiting_seen = 0;
	gulong handler;

	if (!test_avahi_ensure())
		return;
	test_publisher_ensure();
	handler = g_signal_connect(test_publisher, "notify::state",
				   G_CALLBACK(test_state_notify_cb), &waiting_seen);

	/* avahi-daemon vanishes: the publisher waits (a message, no warning) */
	test_avahi_command("stop-avahi");
	test_publisher_wait_state(test_publisher, AS_MDNS_PUBLISHER_STATE_WAITING);
	peers_gone = test_browse(&error_gone);
	g_assert_error(error_gone, AS_ERROR, AS_ERROR_NOT_SUPPORTED);
	g_assert_null(peers_gone);

	/* it comes back: the service is announced again, same name */
	test_avahi_command("start-avahi");
	test_publisher_wait_state(test_publisher, AS_MDNS_PUBLISHER_STATE_ESTABLISHED);
	g_assert_cmpstr(as_mdns_publisher_get_name(test_publisher), ==, TEST_NAME);
	peers_back = test_browse(&error);
	g_assert_no_error(error);
	test_assert_test_peer(test_find_peer(peers_back, TEST_NAME));

	/* killed and started again at once */
	waiting_seen = 0;
	test_avahi_command("restart-avahi");
	g_assert_true(test_wait_for(test_counter_is_set, &waiting_seen, TEST_PUBLISH_WAIT_MS));
	test_publisher_wait_state(test_publisher, AS_MDNS_PUBLISHER_STATE_ESTABLISHED);
	peers_restarted = test_browse(&error);
	g_assert_no_error(error);
	test_assert_test_peer(test_find_peer(peers_restarted, TEST_NAME));
	g_signal_handler_disconnect(test_publisher, handler);
}

static void
test_mdns_stop(void)
{
	g_autoptr(GPtrArray) peers = NULL;
	g_autoptr(GError) error = NULL;

	if (!test_avahi_ensure())
		return;
	test_publisher_ensure();
	as_mdns_publisher_stop(test_publisher);
	g_assert_cmpuint(as_mdns_publisher_get_state(test_publisher), ==,
			 AS_MDNS_PUBLISHER_STATE_STOPPED);
	peers = test_browse(&error);
	g_assert_no_error(error);
	g_assert_null(test_find_peer(peers, TEST_NAME));
}

/* the helper's directory holds only files: its logs, and the socket while it runs */
static void
test_remove_dir(const gchar *path)
{
	g_autoptr(GDir) dir = g_dir_open(path, 0, NULL);
	const gchar *name;

	while (dir != NULL && (name = g_dir_read_name(dir)) != NULL) {
		g_autofree gchar *child = g_build_filename(path, name, NULL);
		g_unlink(child);
	}
	g_rmdir(path);
}

/* the announcement of a daemon under test: the one on its HTTP port, once it says HTTPS too */
static AsMdnsPeer *
test_find_daemon_peer(AsTestDaemon *daemon)
{
	for (guint i = 0; i < TEST_TXT_ATTEMPTS; i++) {
		g_autoptr(GPtrArray) peers = NULL;
		g_autoptr(GError) error = NULL;

		peers = test_browse(&error);
		g_assert_no_error(error);
		for (guint j = 0; j < peers->len; j++) {
			AsMdnsPeer *peer = g_ptr_array_index(peers, j);
			if (peer->port == as_test_daemon_get_port(daemon) && peer->https != 0)
				return as_mdns_peer_copy(peer);
		}
	}
	return NULL;
}

/* `send --protocol https @instance`: a real receiver with --https announces its HTTPS port and
 * certificate; a real sender on a private session bus finds it, sends over TLS and records the
 * announced fingerprint on first use */
static void
test_mdns_send_https(void)
{
	g_autoptr(GDBusConnection) conn = NULL;
	g_autoptr(AsTestDaemon) receiver = NULL;
	g_autoptr(AsTestDaemon) sender = NULL;
	g_autoptr(AsMdnsPeer) peer = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) props = NULL;
	g_autofree gchar *fp = NULL;
	g_autofree gchar *dest = NULL;
	g_autofree gchar *path = NULL;
	g_autofree gchar *sha = NULL;
	g_autofree gchar *object = NULL;
	g_autofree gchar *protocol = NULL;
	g_autofree gchar *known = NULL;
	g_autofree gchar *known_text = NULL;
	g_autofree gchar *line = NULL;

	if (!test_avahi_ensure())
		return;
	as_test_send_bus_up();
	conn = as_test_connection();
	receiver = as_test_daemon_new();
	as_test_daemon_set_https(receiver, TRUE);
	as_test_daemon_set_mdns(receiver, TRUE);
	as_test_daemon_start(receiver, &error);
	g_assert_no_error(error);
	fp = as_test_daemon_dup_cert_sha256(receiver);
	peer = test_find_daemon_peer(receiver);
	g_assert_nonnull(peer);
	g_assert_cmpuint(peer->https, ==, as_test_daemon_get_https_port(receiver));
	g_assert_cmpstr(peer->fp, ==, fp);

	sender = as_test_sender_new(conn);
	path = as_test_one_file(sender, "found.bin", 70000, 21);
	sha = as_test_file_sha256(path);
	dest = g_strdup_printf("@%s", peer->name);
	{
		g_autoptr(GVariantBuilder) options = as_test_options_with_token(sender, receiver);
		const gchar *paths[] = {path, NULL};
		g_variant_builder_add(options, "{sv}", "Protocol", g_variant_new_string("https"));
		object = as_test_send(conn, paths, dest, options, &error);
		g_assert_no_error(error);
		props = as_test_wait_completed(conn, object);
	}
	protocol = as_test_prop_string(props, "Protocol");
	g_assert_true(g_str_has_prefix(protocol, "https"));
	as_test_assert_received(receiver, "found.bin", sha);
	known = as_test_known_peers_path(sender);
	g_assert_true(g_file_get_contents(known, &known_text, NULL, NULL));
	line = g_strdup_printf("127.0.0.1:%u %s", as_test_daemon_get_https_port(receiver), fp);
	g_assert_nonnull(strstr(known_text, line));

	g_clear_object(&sender);
	g_clear_object(&receiver);
	g_clear_object(&conn);
	as_test_send_bus_down();
}

int
main(int argc, char **argv)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *address = NULL;
	int rc;

	g_test_init(&argc, &argv, NULL);
	g_log_set_writer_func(test_log_writer_cb, NULL, NULL);

	/* libdbus reads the system bus address once per process: point it at the helper's
	 * socket before anything talks to Avahi, even the tests that run without it */
	test_avahi.dir = g_dir_make_tmp("as-mdns-XXXXXX", &error);
	g_assert_no_error(error);
	address = g_strdup_printf("unix:path=%s/system_bus_socket", test_avahi.dir);
	g_setenv("DBUS_SYSTEM_BUS_ADDRESS", address, TRUE);

	/* in this order: the first ones need the bus to be missing, the rest share the helper */
	g_test_add_func("/aerosync/mdns/txt", test_mdns_txt);
	g_test_add_func("/aerosync/mdns/resolve-invalid", test_mdns_resolve_invalid);
	g_test_add_func("/aerosync/mdns/no-avahi", test_mdns_no_avahi);
	g_test_add_func("/aerosync/mdns/late-avahi", test_mdns_late_avahi);
	g_test_add_func("/aerosync/mdns/publish", test_mdns_publish);
	g_test_add_func("/aerosync/mdns/browse", test_mdns_browse);
	g_test_add_func("/aerosync/mdns/discover-cli", test_mdns_discover_cli);
	g_test_add_func("/aerosync/mdns/update-txt", test_mdns_update_txt);
	g_test_add_func("/aerosync/mdns/collision", test_mdns_collision);
	g_test_add_func("/aerosync/mdns/restart", test_mdns_restart);
	g_test_add_func("/aerosync/mdns/send-https", test_mdns_send_https);
	g_test_add_func("/aerosync/mdns/stop", test_mdns_stop);
	rc = g_test_run();

	g_clear_object(&test_publisher);
	test_avahi_stop();
	/* the helper's logs stay when something failed */
	if (rc == 0)
		test_remove_dir(test_avahi.dir);
	else
		g_printerr("avahi-env.sh logs kept in %s\n", test_avahi.dir);
	g_free(test_avahi.skip_reason);
	g_free(test_avahi.dir);
	return rc;
}
