/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "AsTestDaemon"

#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <gio/gio.h>
#include <glib-unix.h>
#include <glib/gstdio.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "as-sha256.h"
#include "as-test-daemon.h"

/* the daemon's reserved folder and the temp files of single uploads in it */
#define AS_TEST_STAGING_REL ".aerosync/inprogress"
#define AS_TEST_TEMP_PREFIX "upload-"
#define AS_TEST_TEMP_SUFFIX ".part"
/* random data is produced and hashed in blocks of this size, so big files cost no memory */
#define AS_TEST_RANDOM_BLOCK (1024 * 1024)
/* a raw reply's head may be at most this long */
#define AS_TEST_RAW_HEAD_MAX (64 * 1024)
/* a raw reply's body may be at most this long (replies are small JSON documents) */
#define AS_TEST_RAW_BODY_MAX	  (16 * 1024 * 1024)
#define AS_TEST_TOKEN_RANDOM_SIZE 32
#define AS_TEST_POLL_INTERVAL_US  (20 * G_TIME_SPAN_MILLISECOND)

struct _AsTestDaemon {
	GObject parent_instance;
	gchar *root;	    /* owned temp dir, removed in finalize */
	gchar *save_dir;    /* --save-to */
	gchar *staging_dir; /* save_dir/.aerosync/inprogress */
	gchar *token;	    /* accepted through --auth-token-file */
	gchar *token_path;
	gchar *history_path;
	gchar *audit_path;
	gchar *dbus_address; /* NULL: --no-dbus */
	gboolean auth;
	GPtrArray *extra_args; /* (element-type utf8) */
	GStrv envp;	       /* the daemon's environment */
	GSubprocess *proc;     /* owned, NULL when not started */
	SoupSession *session;  /* owned */
	guint16 port;
	guint16 quic_port;  /* 0 with --http-only */
	guint16 https_port; /* 0 without --https */
	gboolean https;	    /* start with --https */
	gboolean mdns;	    /* announce itself (only on a test's private avahi-daemon) */
};

G_DEFINE_TYPE(AsTestDaemon, as_test_daemon, G_TYPE_OBJECT)

void
as_test_reply_free(AsTestReply *reply)
{
	if (reply == NULL)
		return;
	g_clear_pointer(&reply->headers, soup_message_headers_unref);
	g_clear_pointer(&reply->body, g_bytes_unref);
	g_clear_pointer(&reply->json, json_node_unref);
	g_free(reply);
}

/* the reply's JSON object; fails the test when the body is not one */
JsonObject *
as_test_reply_object(AsTestReply *reply)
{
	if (reply->json == NULL || !JSON_NODE_HOLDS_OBJECT(reply->json))
		g_error("expected a JSON object (HTTP %u), got: %s", reply->status,
			as_test_reply_text(reply));
	return json_node_get_object(reply->json);
}

/* the body as text: replies are small and NUL-terminated by GBytes from libsoup or us */
const gchar *
as_test_reply_text(AsTestReply *reply)
{
	gsize len = 0;
	const gchar *data = g_bytes_get_data(reply->body, &len);
	return data != NULL ? data : "";
}

const gchar *
as_test_reply_header(AsTestReply *reply, const gchar *name)
{
	return soup_message_headers_get_one(reply->headers, name);
}

/* fails the test with the body, which says why, when the status is not @status */
void
as_test_reply_assert_status(AsTestReply *reply, guint status)
{
	if (reply->status != status)
		g_error("expected HTTP %u, got %u: %s", status, reply->status,
			as_test_reply_text(reply));
}

static AsTestReply *
as_test_reply_new(guint status, SoupMessageHeaders *headers, GBytes *body)
{
	AsTestReply *reply = g_new0(AsTestReply, 1);
	g_autoptr(JsonParser) parser = json_parser_new();
	gsize len = 0;
	const gchar *data;

	reply->status = status;
	reply->headers = soup_message_headers_ref(headers);
	/* keep a NUL after the data so the body can be used as a string */
	data = g_bytes_get_data(body, &len);
	{
		gchar *copy = g_malloc(len + 1);
		if (len > 0)
			memcpy(copy, data, len);
		copy[len] = '\0';
		reply->body = g_bytes_new_with_free_func(copy, len, g_free, copy);
	}
	if (len > 0 &&
	    json_parser_load_from_data(parser, as_test_reply_text(reply), (gssize)len, NULL))
		reply->json = json_node_ref(json_parser_get_root(parser));
	return reply;
}

/* -------- helpers without a daemon -------- */

static void
as_test_watchdog_cb(int signum)
{
	static const char msg[] = "\nwatchdog: a test case ran too long, aborting\n";
	/* only async-signal-safe calls here */
	if (write(STDERR_FILENO, msg, sizeof(msg) - 1) < 0) {
	}
	signal(SIGALRM, SIG_DFL);
	raise(SIGALRM);
}

/* call at the start of every test case: each gets AS_TEST_WATCHDOG_S seconds */
void
as_test_watchdog_arm(void)
{
	signal(SIGALRM, as_test_watchdog_cb);
	alarm(AS_TEST_WATCHDOG_S);
}

void
as_test_init(gint *argc, gchar ***argv)
{
	g_test_init(argc, argv, NULL);
	/* a raw client writing to a socket the daemon closed must get EPIPE, not die */
	signal(SIGPIPE, SIG_IGN);
}

gchar *
as_test_random_token(void)
{
	guint8 buf[AS_TEST_TOKEN_RANDOM_SIZE];
	g_autofree gchar *b64 = NULL;
	GString *str;

	for (gsize i = 0; i < sizeof(buf); i++)
		buf[i] = (guint8)g_random_int_range(0, 256);
	b64 = g_base64_encode(buf, sizeof(buf));
	/* base64url without padding: 43 characters */
	str = g_string_new(NULL);
	for (const gchar *p = b64; *p != '\0'; p++) {
		if (*p == '=')
			break;
		g_string_append_c(str, *p == '+' ? '-' : *p == '/' ? '_' : *p);
	}
	return g_string_free(str, FALSE);
}

static void
as_test_fill_random(guint8 *buf, gsize len, guint64 *state)
{
	/* xorshift64*: fast, deterministic per seed, and not compressible */
	for (gsize i = 0; i < len; i += 8) {
		guint64 x = *state;
		x ^= x >> 12;
		x ^= x << 25;
		x ^= x >> 27;
		*state = x;
		x *= 0x2545F4914F6CDD1DULL;
		memcpy(buf + i, &x, MIN(8, len - i));
	}
}

GBytes *
as_test_random_bytes(gsize size, guint32 seed)
{
	guint64 state = 0x9E3779B97F4A7C15ULL ^ seed;
	guint8 *buf = g_malloc(size + 1);
	as_test_fill_random(buf, size, &state);
	return g_bytes_new_take(buf, size);
}

/* writes @size pseudo-random bytes to @path block by block; returns their SHA-256 */
gchar *
as_test_write_random_file(const gchar *path, guint64 size, guint32 seed)
{
	g_autoptr(AsSha256) sha = as_sha256_new();
	g_autofree guint8 *buf = g_malloc(AS_TEST_RANDOM_BLOCK);
	guint64 state = 0x9E3779B97F4A7C15ULL ^ seed;
	FILE *fp = fopen(path, "wb");

	g_assert_nonnull(fp);
	for (guint64 done = 0; done < size;) {
		gsize n = (gsize)MIN((guint64)AS_TEST_RANDOM_BLOCK, size - done);
		as_test_fill_random(buf, n, &state);
		g_assert_cmpuint(fwrite(buf, 1, n, fp), ==, n);
		as_sha256_update(sha, buf, n);
		done += n;
	}
	g_assert_cmpint(fclose(fp), ==, 0);
	return as_sha256_finish_hex(sha);
}

gchar *
as_test_file_sha256(const gchar *path)
{
	g_autoptr(GError) error = NULL;
	GStatBuf st;
	gchar *hex;
	int fd;

	fd = g_open(path, O_RDONLY | O_CLOEXEC, 0);
	if (fd < 0)
		return NULL;
	g_assert_cmpint(fstat(fd, &st), ==, 0);
	hex = as_sha256_fd_range(fd, 0, (guint64)st.st_size, NULL, &error);
	g_assert_no_error(error);
	close(fd);
	return hex;
}

gchar *
as_test_bytes_sha256(GBytes *bytes)
{
	gsize len = 0;
	const guint8 *data = g_bytes_get_data(bytes, &len);
	return as_sha256_data_hex(data, len);
}

GBytes *
as_test_read_range(const gchar *path, guint64 offset, guint64 length)
{
	guint8 *buf = g_malloc(length + 1);
	gsize done = 0;
	int fd = g_open(path, O_RDONLY | O_CLOEXEC, 0);

	g_assert_cmpint(fd, >=, 0);
	while (done < length) {
		gssize n = pread(fd, buf + done, length - done, (off_t)(offset + done));
		g_assert_cmpint(n, >, 0);
		done += (gsize)n;
	}
	close(fd);
	return g_bytes_new_take(buf, length);
}

/* every line of a JSONL file as a JsonObject; missing file = empty array */
GPtrArray *
as_test_read_jsonl(const gchar *path)
{
	GPtrArray *array = g_ptr_array_new_with_free_func((GDestroyNotify)json_object_unref);
	g_autofree gchar *contents = NULL;
	g_auto(GStrv) lines = NULL;

	if (!g_file_get_contents(path, &contents, NULL, NULL))
		return array;
	lines = g_strsplit(contents, "\n", -1);
	for (guint i = 0; lines[i] != NULL; i++) {
		g_autoptr(JsonParser) parser = json_parser_new();
		g_autoptr(GError) error = NULL;
		JsonNode *root;

		if (lines[i][0] == '\0')
			continue;
		if (!json_parser_load_from_data(parser, lines[i], -1, &error))
			g_error("%s:%u is not JSON: %s", path, i + 1, error->message);
		root = json_parser_get_root(parser);
		g_assert_true(JSON_NODE_HOLDS_OBJECT(root));
		g_ptr_array_add(array, json_object_ref(json_node_get_object(root)));
	}
	return array;
}

gboolean
as_test_wait_for(gboolean (*check)(gpointer), gpointer user_data, guint timeout_ms)
{
	gint64 deadline = g_get_monotonic_time() + (gint64)timeout_ms * 1000;
	while (TRUE) {
		while (g_main_context_iteration(NULL, FALSE))
			;
		if (check(user_data))
			return TRUE;
		if (g_get_monotonic_time() > deadline)
			return FALSE;
		g_usleep(AS_TEST_POLL_INTERVAL_US);
	}
}

gboolean
as_test_dir_is_empty(const gchar *path)
{
	g_autoptr(GDir) dir = g_dir_open(path, 0, NULL);
	if (dir == NULL)
		return TRUE;
	return g_dir_read_name(dir) == NULL;
}

static int
as_test_rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	if (remove(path) != 0 && errno != ENOENT)
		g_warning("cannot remove %s: %s", path, g_strerror(errno));
	return 0;
}

/* never follows symlinks, so a link pointing outside is removed, not its target */
void
as_test_rm_rf(const gchar *path)
{
	if (path == NULL)
		return;
	nftw(path, as_test_rm_cb, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

/* -------- the daemon -------- */

static void
as_test_daemon_child_setup_cb(gpointer user_data)
{
	/* a test that aborts must not leave daemons behind */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
}

static void
as_test_daemon_mkdir(AsTestDaemon *self, const gchar *name, const gchar *env_name)
{
	g_autofree gchar *path = g_build_filename(self->root, name, NULL);
	g_assert_cmpint(g_mkdir_with_parents(path, 0700), ==, 0);
	if (env_name != NULL)
		self->envp = g_environ_setenv(self->envp, env_name, path, TRUE);
}

AsTestDaemon *
as_test_daemon_new(void)
{
	AsTestDaemon *self = g_object_new(AS_TYPE_TEST_DAEMON, NULL);
	g_autoptr(GError) error = NULL;
	g_autofree gchar *state_dir = NULL;

	self->root = g_dir_make_tmp("as-e2e-XXXXXX", &error);
	g_assert_no_error(error);
	self->save_dir = g_build_filename(self->root, "save", NULL);
	self->staging_dir = g_build_filename(self->save_dir, AS_TEST_STAGING_REL, NULL);
	self->token_path = g_build_filename(self->root, "token", NULL);
	self->audit_path = g_build_filename(self->root, "audit.jsonl", NULL);

	/* nothing of the user's session may leak in: own XDG dirs, no bus */
	self->envp = g_get_environ();
	self->envp = g_environ_unsetenv(self->envp, "DBUS_SESSION_BUS_ADDRESS");
	self->envp = g_environ_unsetenv(self->envp, "XDG_CONFIG_DIRS");
	as_test_daemon_mkdir(self, "config", "XDG_CONFIG_HOME");
	as_test_daemon_mkdir(self, "state", "XDG_STATE_HOME");
	as_test_daemon_mkdir(self, "data", "XDG_DATA_HOME");
	as_test_daemon_mkdir(self, "cache", "XDG_CACHE_HOME");
	as_test_daemon_mkdir(self, "runtime", "XDG_RUNTIME_DIR");
	as_test_daemon_mkdir(self, "home", "HOME");
	as_test_daemon_mkdir(self, "save", NULL);
	state_dir = g_build_filename(self->root, "state", NULL);
	self->history_path = g_build_filename(state_dir, "aerosync", "history.jsonl", NULL);

	self->token = as_test_random_token();
	g_assert_true(g_file_set_contents_full(self->token_path, self->token, -1,
					       G_FILE_SET_CONTENTS_CONSISTENT, 0600, &error));
	g_assert_no_error(error);
	return self;
}

void
as_test_daemon_add_arg(AsTestDaemon *self, const gchar *arg)
{
	g_ptr_array_add(self->extra_args, g_strdup(arg));
}

void
as_test_daemon_set_save_to(AsTestDaemon *self, const gchar *path)
{
	g_free(self->save_dir);
	g_free(self->staging_dir);
	self->save_dir = g_strdup(path);
	self->staging_dir = g_build_filename(self->save_dir, AS_TEST_STAGING_REL, NULL);
}

void
as_test_daemon_set_auth(AsTestDaemon *self, gboolean auth)
{
	self->auth = auth;
}

void
as_test_daemon_set_dbus_address(AsTestDaemon *self, const gchar *address)
{
	g_free(self->dbus_address);
	self->dbus_address = g_strdup(address);
	if (address != NULL)
		self->envp =
			g_environ_setenv(self->envp, "DBUS_SESSION_BUS_ADDRESS", address, TRUE);
	else
		self->envp = g_environ_unsetenv(self->envp, "DBUS_SESSION_BUS_ADDRESS");
}

static const gchar *
as_test_daemon_binary(void)
{
	const gchar *path = g_getenv("AEROSYNCD_PATH");
	if (path == NULL)
		g_error("AEROSYNCD_PATH is not set: run this test through meson");
	return path;
}

/* reads "port=H quic_port=Q https_port=S\n" from the --ready-fd pipe */
static gboolean
as_test_daemon_read_ready(AsTestDaemon *self, int fd, GError **error)
{
	gint64 deadline = g_get_monotonic_time() + AS_TEST_DAEMON_READY_TIMEOUT_MS * 1000;
	GString *line = g_string_new(NULL);
	g_autofree gchar *text = NULL;
	g_auto(GStrv) fields = NULL;
	guint64 port = 0;
	guint64 quic_port = 0;
	guint64 https_port = 0;

	while (strchr(line->str, '\n') == NULL) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		gint64 left_ms = (deadline - g_get_monotonic_time()) / 1000;
		gchar buf[64];
		gssize n;
		int rc;

		if (left_ms <= 0) {
			g_set_error(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
				    "aerosyncd never became ready");
			g_string_free(line, TRUE);
			return FALSE;
		}
		rc = poll(&pfd, 1, (int)left_ms);
		if (rc < 0 && errno == EINTR)
			continue;
		if (rc <= 0)
			continue;
		n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			g_set_error(error, G_IO_ERROR, G_IO_ERROR_BROKEN_PIPE,
				    "aerosyncd exited before it became ready");
			g_string_free(line, TRUE);
			return FALSE;
		}
		g_string_append_len(line, buf, n);
	}
	text = g_string_free(line, FALSE);
	g_strstrip(text);
	fields = g_strsplit(text, " ", -1);
	if (g_strv_length(fields) != 3 || !g_str_has_prefix(fields[0], "port=") ||
	    !g_str_has_prefix(fields[1], "quic_port=") ||
	    !g_str_has_prefix(fields[2], "https_port=")) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "bad ready line '%s'",
			    text);
		return FALSE;
	}
	if (!g_ascii_string_to_unsigned(fields[0] + 5, 10, 1, G_MAXUINT16, &port, error) ||
	    !g_ascii_string_to_unsigned(fields[1] + 10, 10, 0, G_MAXUINT16, &quic_port, error) ||
	    !g_ascii_string_to_unsigned(fields[2] + 11, 10, 0, G_MAXUINT16, &https_port, error)) {
		g_prefix_error(error, "bad ready line '%s': ", text);
		return FALSE;
	}
	self->port = (guint16)port;
	self->quic_port = (guint16)quic_port;
	self->https_port = (guint16)https_port;
	return TRUE;
}

gboolean
as_test_daemon_start(AsTestDaemon *self, GError **error)
{
	g_autoptr(GSubprocessLauncher) launcher = NULL;
	g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func(g_free);
	int fds[2];
	gboolean ok;

	g_return_val_if_fail(self->proc == NULL, FALSE);

	g_ptr_array_add(argv, g_strdup(as_test_daemon_binary()));
	g_ptr_array_add(argv, g_strdup(self->dbus_address != NULL ? "--session" : "--no-dbus"));
	g_ptr_array_add(argv, g_strdup("--bind"));
	g_ptr_array_add(argv, g_strdup("127.0.0.1"));
	g_ptr_array_add(argv, g_strdup("--port"));
	g_ptr_array_add(argv, g_strdup("0"));
	g_ptr_array_add(argv, g_strdup("--save-to"));
	g_ptr_array_add(argv, g_strdup(self->save_dir));
	/* tests never announce themselves on a LAN, only to as-mdns-test's own avahi-daemon */
	if (!self->mdns)
		g_ptr_array_add(argv, g_strdup("--no-mdns"));
	g_ptr_array_add(argv, g_strdup("--token-backend"));
	g_ptr_array_add(argv, g_strdup("file"));
	g_ptr_array_add(argv, g_strdup("--ready-fd"));
	g_ptr_array_add(argv, g_strdup("3"));
	g_ptr_array_add(argv, g_strdup("--verbose"));
	if (self->auth) {
		g_ptr_array_add(argv, g_strdup("--auth-token-file"));
		g_ptr_array_add(argv, g_strdup(self->token_path));
	} else {
		g_ptr_array_add(argv, g_strdup("--no-auth"));
	}
	if (self->https)
		g_ptr_array_add(argv, g_strdup("--https"));
	for (guint i = 0; i < self->extra_args->len; i++)
		g_ptr_array_add(argv, g_strdup(g_ptr_array_index(self->extra_args, i)));
	g_ptr_array_add(argv, NULL);

	if (!g_unix_open_pipe(fds, FD_CLOEXEC, error))
		return FALSE;
	launcher = g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_NONE);
	g_subprocess_launcher_set_environ(launcher, self->envp);
	g_subprocess_launcher_take_fd(launcher, fds[1], 3);
	/* the daemon's log goes to our stderr: stdout carries TAP */
	g_subprocess_launcher_take_stdout_fd(launcher, dup(STDERR_FILENO));
	g_subprocess_launcher_set_child_setup(launcher, as_test_daemon_child_setup_cb, NULL, NULL);
	self->proc =
		g_subprocess_launcher_spawnv(launcher, (const gchar *const *)argv->pdata, error);
	/* drop our copy of the write end, so a daemon that dies gives EOF */
	g_subprocess_launcher_close(launcher);
	if (self->proc == NULL) {
		close(fds[0]);
		return FALSE;
	}
	ok = as_test_daemon_read_ready(self, fds[0], error);
	close(fds[0]);
	if (!ok) {
		as_test_daemon_kill(self);
		return FALSE;
	}
	g_test_message("aerosyncd pid %s listening on 127.0.0.1:%u",
		       g_subprocess_get_identifier(self->proc), self->port);
	return TRUE;
}

typedef struct {
	gboolean done;
	gboolean timed_out;
} AsTestWait;

static void
as_test_daemon_wait_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	AsTestWait *wait = user_data;
	g_autoptr(GError) error = NULL;
	if (!g_subprocess_wait_finish(G_SUBPROCESS(source), res, &error) &&
	    !g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
		g_warning("waiting for aerosyncd: %s", error->message);
	wait->done = TRUE;
}

static gboolean
as_test_daemon_wait_timeout_cb(gpointer user_data)
{
	AsTestWait *wait = user_data;
	wait->timed_out = TRUE;
	return G_SOURCE_REMOVE;
}

/* exit_status: the exit code, or 128 + signal number */
gboolean
as_test_daemon_wait_exit(AsTestDaemon *self, guint timeout_ms, gint *exit_status)
{
	g_autoptr(GCancellable) cancellable = g_cancellable_new();
	g_autoptr(GSubprocess) proc = NULL;
	AsTestWait wait = {FALSE, FALSE};
	guint timeout_id;

	if (self->proc == NULL)
		return TRUE;
	g_subprocess_wait_async(self->proc, cancellable, as_test_daemon_wait_cb, &wait);
	timeout_id = g_timeout_add(timeout_ms, as_test_daemon_wait_timeout_cb, &wait);
	while (!wait.done && !wait.timed_out)
		g_main_context_iteration(NULL, TRUE);
	if (!wait.timed_out)
		g_source_remove(timeout_id);
	if (!wait.done) {
		/* the callback holds &wait: let it run before returning */
		g_cancellable_cancel(cancellable);
		while (!wait.done)
			g_main_context_iteration(NULL, TRUE);
		return FALSE;
	}
	proc = g_steal_pointer(&self->proc);
	if (exit_status != NULL) {
		if (g_subprocess_get_if_exited(proc))
			*exit_status = g_subprocess_get_exit_status(proc);
		else if (g_subprocess_get_if_signaled(proc))
			*exit_status = 128 + g_subprocess_get_term_sig(proc);
		else
			*exit_status = -1;
	}
	return TRUE;
}

gboolean
as_test_daemon_is_running(AsTestDaemon *self)
{
	while (g_main_context_iteration(NULL, FALSE))
		;
	return self->proc != NULL && g_subprocess_get_identifier(self->proc) != NULL;
}

/* the daemon's resident memory, from /proc: to catch bodies buffered in memory */
guint64
as_test_daemon_get_rss_kib(AsTestDaemon *self)
{
	g_autofree gchar *path = NULL;
	g_autofree gchar *contents = NULL;
	const gchar *line;

	g_assert_nonnull(self->proc);
	path = g_strdup_printf("/proc/%s/status", g_subprocess_get_identifier(self->proc));
	g_assert_true(g_file_get_contents(path, &contents, NULL, NULL));
	line = strstr(contents, "\nVmRSS:");
	g_assert_nonnull(line);
	return g_ascii_strtoull(line + strlen("\nVmRSS:"), NULL, 10);
}

/* SIGTERM and wait; returns the exit status (see as_test_daemon_wait_exit) */
gint
as_test_daemon_stop(AsTestDaemon *self)
{
	gint status = -1;

	if (self->proc == NULL)
		return -1;
	g_subprocess_send_signal(self->proc, SIGTERM);
	if (!as_test_daemon_wait_exit(self, AS_TEST_DAEMON_STOP_TIMEOUT_MS, &status)) {
		g_test_message("aerosyncd ignored SIGTERM; killing it");
		as_test_daemon_kill(self);
		return -1;
	}
	/* the next start gets a new port; old connections are useless */
	soup_session_abort(self->session);
	return status;
}

/* SIGKILL: a crash, as far as the daemon's files are concerned */
/* e.g. SIGHUP to make it reload its configuration */
void
as_test_daemon_send_signal(AsTestDaemon *self, gint signum)
{
	g_assert_nonnull(self->proc);
	g_subprocess_send_signal(self->proc, signum);
}

void
as_test_daemon_kill(AsTestDaemon *self)
{
	if (self->proc == NULL)
		return;
	g_subprocess_force_exit(self->proc);
	if (!as_test_daemon_wait_exit(self, AS_TEST_DAEMON_STOP_TIMEOUT_MS, NULL))
		g_error("aerosyncd survived SIGKILL");
	soup_session_abort(self->session);
}

guint16
as_test_daemon_get_port(AsTestDaemon *self)
{
	return self->port;
}

guint16
as_test_daemon_get_quic_port(AsTestDaemon *self)
{
	return self->quic_port;
}

/* the HTTPS port (an ephemeral one, like the HTTP port), 0 when started without --https */
guint16
as_test_daemon_get_https_port(AsTestDaemon *self)
{
	return self->https_port;
}

/* the next start also receives over HTTPS (--https) */
void
as_test_daemon_set_https(AsTestDaemon *self, gboolean https)
{
	self->https = https;
}

/* only where DBUS_SYSTEM_BUS_ADDRESS leads to a private avahi-daemon on loopback */
void
as_test_daemon_set_mdns(AsTestDaemon *self, gboolean mdns)
{
	self->mdns = mdns;
}

/* the fingerprint of the daemon's QUIC certificate, as /health gives it */
gchar *
as_test_daemon_dup_cert_sha256(AsTestDaemon *self)
{
	g_autoptr(AsTestReply) reply = as_test_daemon_get(self, "/health");
	JsonObject *obj;

	as_test_reply_assert_status(reply, 200);
	obj = as_test_reply_object(reply);
	return g_strdup(json_object_get_string_member_with_default(obj, "cert_sha256", NULL));
}

const gchar *
as_test_daemon_get_token(AsTestDaemon *self)
{
	return self->token;
}

const gchar *
as_test_daemon_get_root(AsTestDaemon *self)
{
	return self->root;
}

const gchar *
as_test_daemon_get_save_dir(AsTestDaemon *self)
{
	return self->save_dir;
}

const gchar *
as_test_daemon_get_staging_dir(AsTestDaemon *self)
{
	return self->staging_dir;
}

const gchar *
as_test_daemon_get_history_path(AsTestDaemon *self)
{
	return self->history_path;
}

const gchar *
as_test_daemon_get_audit_path(AsTestDaemon *self)
{
	return self->audit_path;
}

const gchar *
as_test_daemon_get_env(AsTestDaemon *self, const gchar *name)
{
	return g_environ_getenv(self->envp, name);
}

SoupSession *
as_test_daemon_get_session(AsTestDaemon *self)
{
	return self->session;
}

gchar *
as_test_daemon_url(AsTestDaemon *self, const gchar *path_and_query)
{
	return g_strdup_printf("http://127.0.0.1:%u%s", self->port, path_and_query);
}

/* @path_and_query must already be percent-encoded; @token NULL sends no credentials */
SoupMessage *
as_test_daemon_message(AsTestDaemon *self,
		       const gchar *method,
		       const gchar *path_and_query,
		       const gchar *token)
{
	g_autofree gchar *url = as_test_daemon_url(self, path_and_query);
	SoupMessage *msg = soup_message_new(method, url);

	if (msg == NULL)
		g_error("cannot make a request for %s", url);
	if (token != NULL) {
		g_autofree gchar *value = g_strdup_printf("Bearer %s", token);
		soup_message_headers_replace(soup_message_get_request_headers(msg), "Authorization",
					     value);
	}
	return msg;
}

static AsTestReply *
as_test_daemon_send_internal(AsTestDaemon *self, SoupMessage *msg)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) body = soup_session_send_and_read(self->session, msg, NULL, &error);

	if (body == NULL)
		g_error("%s %s failed: %s", soup_message_get_method(msg),
			g_uri_get_path(soup_message_get_uri(msg)), error->message);
	return as_test_reply_new(soup_message_get_status(msg),
				 soup_message_get_response_headers(msg), body);
}

AsTestReply *
as_test_daemon_send(AsTestDaemon *self, SoupMessage *msg, GBytes *body, const gchar *content_type)
{
	if (body != NULL)
		soup_message_set_request_body_from_bytes(
			msg, content_type != NULL ? content_type : "application/octet-stream",
			body);
	return as_test_daemon_send_internal(self, msg);
}

/* streams the file from disk with a Content-Length */
AsTestReply *
as_test_daemon_send_file(AsTestDaemon *self, SoupMessage *msg, const gchar *path)
{
	g_autoptr(GFile) file = g_file_new_for_path(path);
	g_autoptr(GError) error = NULL;
	g_autoptr(GFileInputStream) stream = g_file_read(file, NULL, &error);
	GStatBuf st;

	g_assert_no_error(error);
	g_assert_cmpint(g_stat(path, &st), ==, 0);
	soup_message_set_request_body(msg, "application/octet-stream", G_INPUT_STREAM(stream),
				      (gssize)st.st_size);
	return as_test_daemon_send_internal(self, msg);
}

AsTestReply *
as_test_daemon_get(AsTestDaemon *self, const gchar *path_and_query)
{
	g_autoptr(SoupMessage) msg =
		as_test_daemon_message(self, SOUP_METHOD_GET, path_and_query, self->token);
	return as_test_daemon_send_internal(self, msg);
}

AsTestReply *
as_test_daemon_post_empty(AsTestDaemon *self, const gchar *path_and_query)
{
	g_autoptr(SoupMessage) msg =
		as_test_daemon_message(self, SOUP_METHOD_POST, path_and_query, self->token);
	return as_test_daemon_send_internal(self, msg);
}

/* PUT /upload/<escaped_rel_path>, with X-File-Hash when @sha256 is given */
AsTestReply *
as_test_daemon_put_bytes(AsTestDaemon *self,
			 const gchar *escaped_rel_path,
			 GBytes *body,
			 const gchar *sha256)
{
	g_autofree gchar *path = g_strdup_printf("/upload/%s", escaped_rel_path);
	g_autoptr(SoupMessage) msg =
		as_test_daemon_message(self, SOUP_METHOD_PUT, path, self->token);
	if (sha256 != NULL)
		soup_message_headers_replace(soup_message_get_request_headers(msg), "X-File-Hash",
					     sha256);
	return as_test_daemon_send(self, msg, body, NULL);
}

gchar *
as_test_chunk_query(const gchar *task_id,
		    const gchar *filename,
		    guint64 total_size,
		    guint64 chunk_size,
		    guint32 index)
{
	g_autofree gchar *name = g_uri_escape_string(filename, NULL, FALSE);
	guint64 total_chunks = (total_size + chunk_size - 1) / chunk_size;
	return g_strdup_printf(
		"/upload/chunk?task_id=%s&chunk_index=%u&total_chunks=%" G_GUINT64_FORMAT
		"&filename=%s&total_size=%" G_GUINT64_FORMAT "&chunk_size=%" G_GUINT64_FORMAT,
		task_id, index, total_chunks, name, total_size, chunk_size);
}

/* POST /upload/chunk with the bytes of chunk @index of @src_path */
AsTestReply *
as_test_daemon_send_chunk(AsTestDaemon *self,
			  const gchar *task_id,
			  const gchar *filename,
			  const gchar *src_path,
			  guint64 total_size,
			  guint64 chunk_size,
			  guint32 index,
			  gboolean with_hash)
{
	g_autofree gchar *query =
		as_test_chunk_query(task_id, filename, total_size, chunk_size, index);
	g_autoptr(SoupMessage) msg =
		as_test_daemon_message(self, SOUP_METHOD_POST, query, self->token);
	guint64 offset = (guint64)index * chunk_size;
	guint64 length = MIN(chunk_size, total_size - offset);
	g_autoptr(GBytes) data = as_test_read_range(src_path, offset, length);

	if (with_hash) {
		g_autofree gchar *hex = as_test_bytes_sha256(data);
		soup_message_headers_replace(soup_message_get_request_headers(msg), "X-Chunk-Hash",
					     hex);
	}
	return as_test_daemon_send(self, msg, data, NULL);
}

/* -------- a raw HTTP/1.1 client, for what libsoup's client would not send -------- */

GSocketConnection *
as_test_daemon_raw_connect(AsTestDaemon *self)
{
	g_autoptr(GSocketClient) client = g_socket_client_new();
	g_autoptr(GError) error = NULL;
	GSocketConnection *conn;

	g_socket_client_set_timeout(client, AS_TEST_HTTP_TIMEOUT_S);
	conn = g_socket_client_connect_to_host(client, "127.0.0.1", self->port, NULL, &error);
	g_assert_no_error(error);
	return conn;
}

void
as_test_raw_write_all(GSocketConnection *conn, const void *data, gsize len)
{
	GOutputStream *out = g_io_stream_get_output_stream(G_IO_STREAM(conn));
	g_autoptr(GError) error = NULL;
	g_output_stream_write_all(out, data, len, NULL, NULL, &error);
	g_assert_no_error(error);
}

/* reads one reply; the body by Content-Length or else up to EOF */
AsTestReply *
as_test_raw_read_reply(GSocketConnection *conn)
{
	GInputStream *in = g_io_stream_get_input_stream(G_IO_STREAM(conn));
	g_autoptr(GByteArray) buf = g_byte_array_new();
	g_autoptr(SoupMessageHeaders) headers =
		soup_message_headers_new(SOUP_MESSAGE_HEADERS_RESPONSE);
	g_autoptr(GBytes) body = NULL;
	g_autoptr(GError) error = NULL;
	guint status = 0;
	gsize head_len = 0;
	goffset content_length = -1;

	/* the head, byte by byte so nothing of the body is over-read */
	while (TRUE) {
		guint8 c;
		gssize n = g_input_stream_read(in, &c, 1, NULL, &error);
		g_assert_no_error(error);
		if (n == 0)
			g_error("connection closed before a reply head (%u bytes)", buf->len);
		g_byte_array_append(buf, &c, 1);
		if (buf->len >= 4 && memcmp(buf->data + buf->len - 4, "\r\n\r\n", 4) == 0)
			break;
		g_assert_cmpuint(buf->len, <, AS_TEST_RAW_HEAD_MAX);
	}
	head_len = buf->len;
	if (!soup_headers_parse_response((const char *)buf->data, (int)head_len, headers, NULL,
					 &status, NULL))
		g_error("unparsable reply head: %.*s", (int)head_len, buf->data);
	/* skip interim replies */
	if (status == SOUP_STATUS_CONTINUE)
		return as_test_raw_read_reply(conn);
	/* a WebSocket handshake succeeded: the connection stays open, there is no body */
	if (status == SOUP_STATUS_SWITCHING_PROTOCOLS) {
		g_autoptr(GBytes) empty = g_bytes_new(NULL, 0);
		return as_test_reply_new(status, headers, empty);
	}

	g_byte_array_set_size(buf, 0);
	if (soup_message_headers_get_encoding(headers) == SOUP_ENCODING_CONTENT_LENGTH)
		content_length = soup_message_headers_get_content_length(headers);
	while (content_length < 0 || (goffset)buf->len < content_length) {
		guint8 tmp[4096];
		gsize want = sizeof(tmp);
		gssize n;

		if (content_length >= 0)
			want = MIN(want, (gsize)(content_length - buf->len));
		n = g_input_stream_read(in, tmp, want, NULL, &error);
		if (n < 0 && content_length < 0) {
			/* a reset after the reply is as good as EOF here */
			g_clear_error(&error);
			break;
		}
		g_assert_no_error(error);
		if (n == 0)
			break;
		g_byte_array_append(buf, tmp, (guint)n);
		g_assert_cmpuint(buf->len, <, AS_TEST_RAW_BODY_MAX);
	}
	body = g_byte_array_free_to_bytes(g_steal_pointer(&buf));
	return as_test_reply_new(status, headers, body);
}

/*
 * @head: request line and extra header lines, each ending in "\r\n"; Host, Connection: close
 * and, with a body, Content-Length are added unless @head has them.
 */
AsTestReply *
as_test_daemon_raw_request(AsTestDaemon *self, const gchar *head, GBytes *body)
{
	g_autoptr(GSocketConnection) conn = as_test_daemon_raw_connect(self);
	g_autoptr(GString) str = g_string_new(head);
	g_autofree gchar *head_lower = g_ascii_strdown(head, -1);

	if (strstr(head_lower, "\r\nhost:") == NULL)
		g_string_append_printf(str, "Host: 127.0.0.1:%u\r\n", self->port);
	if (strstr(head_lower, "\r\nconnection:") == NULL)
		g_string_append(str, "Connection: close\r\n");
	if (body != NULL && strstr(head_lower, "\r\ncontent-length:") == NULL)
		g_string_append_printf(str, "Content-Length: %" G_GSIZE_FORMAT "\r\n",
				       g_bytes_get_size(body));
	g_string_append(str, "\r\n");
	as_test_raw_write_all(conn, str->str, str->len);
	if (body != NULL && g_bytes_get_size(body) > 0)
		as_test_raw_write_all(conn, g_bytes_get_data(body, NULL), g_bytes_get_size(body));
	return as_test_raw_read_reply(conn);
}

guint
as_test_count_staging_temps(AsTestDaemon *self)
{
	g_autoptr(GDir) dir = g_dir_open(self->staging_dir, 0, NULL);
	const gchar *name;
	guint count = 0;

	if (dir == NULL)
		return 0;
	while ((name = g_dir_read_name(dir)) != NULL) {
		if (g_str_has_prefix(name, AS_TEST_TEMP_PREFIX) &&
		    g_str_has_suffix(name, AS_TEST_TEMP_SUFFIX))
			count++;
	}
	return count;
}

static void
as_test_daemon_dispose(GObject *object)
{
	AsTestDaemon *self = AS_TEST_DAEMON(object);
	if (self->proc != NULL)
		as_test_daemon_stop(self);
	if (self->session != NULL)
		soup_session_abort(self->session);
	g_clear_object(&self->session);
	G_OBJECT_CLASS(as_test_daemon_parent_class)->dispose(object);
}

static void
as_test_daemon_finalize(GObject *object)
{
	AsTestDaemon *self = AS_TEST_DAEMON(object);
	if (g_getenv("AS_TEST_KEEP") == NULL)
		as_test_rm_rf(self->root);
	else
		g_printerr("kept %s\n", self->root);
	g_free(self->root);
	g_free(self->save_dir);
	g_free(self->staging_dir);
	g_free(self->token);
	g_free(self->token_path);
	g_free(self->history_path);
	g_free(self->audit_path);
	g_free(self->dbus_address);
	g_ptr_array_unref(self->extra_args);
	g_strfreev(self->envp);
	G_OBJECT_CLASS(as_test_daemon_parent_class)->finalize(object);
}

static void
as_test_daemon_class_init(AsTestDaemonClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);
	object_class->dispose = as_test_daemon_dispose;
	object_class->finalize = as_test_daemon_finalize;
}

static void
as_test_daemon_init(AsTestDaemon *self)
{
	self->auth = TRUE;
	self->extra_args = g_ptr_array_new_with_free_func(g_free);
	self->session = soup_session_new_with_options(
		"timeout", AS_TEST_HTTP_TIMEOUT_S, "max-conns-per-host", 16, "max-conns", 32, NULL);
}
