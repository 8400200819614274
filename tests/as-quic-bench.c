/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * as-quic-bench: the QUIC transport on its own, for measurements (not a test).
 *
 *   as-quic-bench server [--address A] [--port P] [--state DIR] [--out DIR]
 *       prints "port <n> sha256 <fingerprint>" and serves until SIGINT/SIGTERM, then prints
 *       "server cpu_s <s> peak_rss_kib <k> uploads <n>". Uploads are written to DIR (default:
 *       discarded) and hashed by a writer thread, with backpressure, as aerosyncd does.
 *   as-quic-bench client HOST PORT FILE [--pin SHA256|--insecure] [--cc ALGO] [--count N]
 *       hashes FILE (SHA-256, timed apart), uploads it N times on parallel streams of one
 *       connection and prints MB/s, CPU seconds and peak RSS.
 */
#include "config.h"

#include <fcntl.h>
#include <glib-unix.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "as-bench-util.h"
#include "as-error.h"
#include "as-quic-client.h"
#include "as-quic-framing.h"
#include "as-quic-server.h"
#include "as-sha256.h"
#include "as-tls-identity.h"

/* the writer thread's queue: pause senders above HIGH, resume below LOW; data is handed over
 * in blocks of BLOCK bytes */
#define BENCH_QUEUE_HIGH (16 * 1024 * 1024)
#define BENCH_QUEUE_LOW	 (8 * 1024 * 1024)
#define BENCH_BLOCK	 (256 * 1024)

/* ---- server ---- */

typedef struct {
	AsQuicServer *server;
	GMainContext *context;
	gchar *out_dir;
	GAsyncQueue *queue;
	GThread *thread;
	gssize queued;	   /* bytes in the queue, atomic */
	gint want_resume;  /* atomic: some stream is paused */
	GPtrArray *paused; /* main thread only */
	guint uploads;
	guint n_streams;
} BenchServer;

typedef struct {
	BenchServer *bs;
	int fd;
	AsSha256 *sha;
	gchar *expected;
	GByteArray *block; /* main thread: data not handed over yet */
	AsQuicReplyFunc reply;
	gpointer reply_data;
	gchar *error_message;
} BenchStream;

typedef struct {
	BenchStream *stream;
	GByteArray *data;
	gboolean end;
	gboolean abort;
} BenchItem;

static gboolean
bench_resume_cb(gpointer user_data)
{
	BenchServer *bs = user_data;

	for (guint i = 0; i < bs->paused->len; i++)
		as_quic_server_resume_stream(bs->server, g_ptr_array_index(bs->paused, i));
	g_ptr_array_set_size(bs->paused, 0);
	return G_SOURCE_REMOVE;
}

static gboolean
bench_reply_cb(gpointer user_data)
{
	BenchStream *st = user_data;
	st->bs->uploads++;
	st->reply(st->reply_data, st->error_message == NULL, st->error_message);
	g_free(st->error_message);
	g_free(st->expected);
	g_free(st);
	return G_SOURCE_REMOVE;
}

static gpointer
bench_writer_thread(gpointer user_data)
{
	BenchServer *bs = user_data;

	for (;;) {
		BenchItem *item = g_async_queue_pop(bs->queue);
		BenchStream *st = item->stream;

		if (st == NULL) {
			g_free(item);
			return NULL;
		}
		if (item->data != NULL) {
			gsize done = 0;
			gsize len = item->data->len;
			as_sha256_update(st->sha, item->data->data, len);
			while (st->fd >= 0 && done < len) {
				ssize_t n = write(st->fd, item->data->data + done, len - done);
				if (n <= 0)
					g_error("write: %s", g_strerror(errno));
				done += (gsize)n;
			}
			g_byte_array_unref(item->data);
			if (g_atomic_pointer_add(&bs->queued, -(gssize)len) - (gssize)len <
				    BENCH_QUEUE_LOW &&
			    g_atomic_int_compare_and_exchange(&bs->want_resume, 1, 0))
				g_main_context_invoke(bs->context, bench_resume_cb, bs);
		}
		if (item->end || item->abort) {
			g_autofree gchar *actual = as_sha256_finish_hex(st->sha);
			if (st->fd >= 0)
				close(st->fd);
			st->sha = NULL;
			if (item->abort) {
				g_free(st->expected);
				g_free(st);
			} else {
				if (st->expected != NULL &&
				    !as_sha256_hex_equal(st->expected, actual))
					st->error_message = g_strdup("Hash mismatch");
				g_main_context_invoke(bs->context, bench_reply_cb, st);
			}
		}
		g_free(item);
	}
}

static void
bench_push(BenchStream *st, gboolean end, gboolean abort)
{
	BenchServer *bs = st->bs;
	BenchItem *item = g_new0(BenchItem, 1);

	item->stream = st;
	item->end = end;
	item->abort = abort;
	if (st->block != NULL && st->block->len > 0) {
		g_atomic_pointer_add(&bs->queued, (gssize)st->block->len);
		item->data = g_steal_pointer(&st->block);
	}
	g_clear_pointer(&st->block, g_byte_array_unref);
	g_async_queue_push(bs->queue, item);
}

static gboolean
bench_begin(gpointer user_data, const AsQuicUploadInfo *info, gpointer *handle, GError **error)
{
	BenchServer *bs = user_data;
	BenchStream *st = g_new0(BenchStream, 1);

	st->bs = bs;
	st->fd = -1;
	if (bs->out_dir != NULL) {
		g_autofree gchar *path =
			g_strdup_printf("%s/upload-%u", bs->out_dir, ++bs->n_streams);
		st->fd = open(path, O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0644);
		if (st->fd < 0) {
			g_set_error(error, AS_ERROR, AS_ERROR_IO, "%s: %s", path,
				    g_strerror(errno));
			g_free(st);
			return FALSE;
		}
	}
	st->sha = as_sha256_new();
	st->expected = g_strdup(info->sha256);
	*handle = st;
	return TRUE;
}

static gboolean
bench_data(gpointer user_data, gpointer handle, const guint8 *data, gsize len)
{
	BenchServer *bs = user_data;
	BenchStream *st = handle;

	if (st->block == NULL)
		st->block = g_byte_array_sized_new(BENCH_BLOCK);
	g_byte_array_append(st->block, data, (guint)len);
	if (st->block->len >= BENCH_BLOCK)
		bench_push(st, FALSE, FALSE);
	if (g_atomic_pointer_get(&bs->queued) > BENCH_QUEUE_HIGH) {
		g_ptr_array_add(bs->paused, st);
		g_atomic_int_set(&bs->want_resume, 1);
		return FALSE;
	}
	return TRUE;
}

static void
bench_end(gpointer user_data, gpointer handle, AsQuicReplyFunc reply, gpointer reply_data)
{
	BenchServer *bs = user_data;
	BenchStream *st = handle;

	g_ptr_array_remove(bs->paused, st);
	st->reply = reply;
	st->reply_data = reply_data;
	bench_push(st, TRUE, FALSE);
}

static void
bench_abort(gpointer user_data, gpointer handle, const gchar *reason)
{
	BenchServer *bs = user_data;
	BenchStream *st = handle;

	g_ptr_array_remove(bs->paused, st);
	bench_push(st, FALSE, TRUE);
}

static const AsQuicIngest bench_ingest = {
	.begin = bench_begin,
	.data = bench_data,
	.end = bench_end,
	.abort = bench_abort,
};

static int
bench_server(int argc, char **argv)
{
	g_autofree gchar *address = NULL;
	g_autofree gchar *state = NULL;
	g_autofree gchar *out = NULL;
	g_autofree gchar *cc = NULL;
	gint port = 0;
	GOptionEntry entries[] = {
		{"address", 0, 0, G_OPTION_ARG_STRING, &address, "bind address", "A"},
		{"port", 0, 0, G_OPTION_ARG_INT, &port, "UDP port", "P"},
		{"state", 0, 0, G_OPTION_ARG_FILENAME, &state, "TLS identity directory", "DIR"},
		{"out", 0, 0, G_OPTION_ARG_FILENAME, &out, "write uploads here", "DIR"},
		{"cc", 0, 0, G_OPTION_ARG_STRING, &cc, "congestion control", "ALGO"},
		{NULL}};
	g_autoptr(GOptionContext) octx = g_option_context_new("server");
	g_autoptr(GError) error = NULL;
	g_autoptr(AsTlsIdentity) identity = NULL;
	g_autoptr(GMainLoop) loop = g_main_loop_new(NULL, FALSE);
	BenchServer bs = {0};
	AsQuicCcAlgo algo = AS_QUIC_CC_ALGO_CUBIC;
	gdouble cpu0;

	g_option_context_add_main_entries(octx, entries, NULL);
	if (!g_option_context_parse(octx, &argc, &argv, &error)) {
		g_printerr("%s\n", error->message);
		return 2;
	}
	if (cc != NULL && !as_quic_cc_algo_from_string(cc, &algo)) {
		g_printerr("unknown congestion control %s\n", cc);
		return 2;
	}
	if (state == NULL)
		state = g_build_filename(g_get_tmp_dir(), "as-quic-bench-state", NULL);
	identity = as_tls_identity_load_or_generate(state, &error);
	if (identity == NULL) {
		g_printerr("%s\n", error->message);
		return 1;
	}
	bs.context = g_main_context_default();
	bs.out_dir = out;
	bs.queue = g_async_queue_new();
	bs.paused = g_ptr_array_new();
	bs.thread = g_thread_new("writer", bench_writer_thread, &bs);
	bs.server = as_quic_server_new(identity, &bench_ingest, &bs, NULL);
	as_quic_server_set_cc_algo(bs.server, algo);
	if (!as_quic_server_listen(bs.server, address, (guint16)port, &error)) {
		g_printerr("%s\n", error->message);
		return 1;
	}
	g_print("port %u sha256 %s\n", as_quic_server_get_port(bs.server),
		as_tls_identity_get_fingerprint(identity));
	g_print("cert %s key %s\n", as_tls_identity_get_cert_file(identity),
		as_tls_identity_get_key_file(identity));
	fflush(stdout);
	g_unix_signal_add(SIGINT, bench_quit_cb, loop);
	g_unix_signal_add(SIGTERM, bench_quit_cb, loop);
	cpu0 = bench_cpu_seconds();
	g_main_loop_run(loop);
	{
		AsQuicServerStats stats;
		as_quic_server_get_stats(bs.server, &stats);
		g_print("server cpu_s %.2f peak_rss_kib %ld uploads %u failed %" G_GUINT64_FORMAT
			" datagrams %" G_GUINT64_FORMAT "\n",
			bench_cpu_seconds() - cpu0, bench_peak_rss_kib(), bs.uploads,
			stats.uploads_failed, stats.datagrams_received);
	}
	g_clear_object(&bs.server);
	g_async_queue_push(bs.queue, g_new0(BenchItem, 1));
	g_thread_join(bs.thread);
	g_async_queue_unref(bs.queue);
	return 0;
}

/* ---- client ---- */

typedef struct {
	GMainLoop *loop;
	guint pending;
	guint failed;
} BenchClient;

static void
bench_upload_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	BenchClient *bc = user_data;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *reply = as_quic_client_upload_finish(AS_QUIC_CLIENT(source), res, &error);

	if (reply == NULL) {
		g_printerr("upload failed: %s\n", error->message);
		bc->failed++;
	}
	if (--bc->pending == 0)
		g_main_loop_quit(bc->loop);
}

static int
bench_client(int argc, char **argv)
{
	g_autofree gchar *pin = NULL;
	g_autofree gchar *cc = NULL;
	g_autofree gchar *given_sha = NULL;
	gboolean insecure = FALSE;
	gboolean no_hash = FALSE;
	gint count = 1;
	GOptionEntry entries[] = {
		{"pin", 0, 0, G_OPTION_ARG_STRING, &pin, "certificate SHA-256", "HEX"},
		{"insecure", 0, 0, G_OPTION_ARG_NONE, &insecure, "accept any certificate", NULL},
		{"cc", 0, 0, G_OPTION_ARG_STRING, &cc, "congestion control", "ALGO"},
		{"count", 0, 0, G_OPTION_ARG_INT, &count, "parallel uploads of the file", "N"},
		{"sha256", 0, 0, G_OPTION_ARG_STRING, &given_sha, "known SHA-256: no hashing",
		 "HEX"},
		{"no-hash", 0, 0, G_OPTION_ARG_NONE, &no_hash, "send no HASH line", NULL},
		{NULL}};
	g_autoptr(GOptionContext) octx = g_option_context_new("HOST PORT FILE");
	g_autoptr(GError) error = NULL;
	g_autoptr(AsQuicClient) client = NULL;
	g_autofree gchar *sha = NULL;
	g_autofree gchar *name = NULL;
	g_autoptr(GMainLoop) loop = g_main_loop_new(NULL, FALSE);
	BenchClient bc = {loop, 0, 0};
	AsQuicCcAlgo algo = AS_QUIC_CC_ALGO_CUBIC;
	AsQuicClientStats stats;
	struct stat st;
	gint64 t0, t1, t2;
	gdouble cpu0, cpu1, cpu2;
	int fd;

	g_option_context_add_main_entries(octx, entries, NULL);
	if (!g_option_context_parse(octx, &argc, &argv, &error) || argc != 4) {
		g_printerr("usage: as-quic-bench client HOST PORT FILE [--pin HEX|--insecure]\n");
		return 2;
	}
	if (cc != NULL && !as_quic_cc_algo_from_string(cc, &algo)) {
		g_printerr("unknown congestion control %s\n", cc);
		return 2;
	}
	fd = open(argv[3], O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) != 0) {
		g_printerr("%s: %s\n", argv[3], g_strerror(errno));
		return 1;
	}
	name = g_path_get_basename(argv[3]);

	/* the header carries the hash, so it is computed first, as the send engine does */
	t0 = g_get_monotonic_time();
	cpu0 = bench_cpu_seconds();
	if (given_sha != NULL)
		sha = g_strdup(given_sha);
	else if (!no_hash)
		sha = as_sha256_fd_range(fd, 0, (guint64)st.st_size, NULL, &error);
	if (sha == NULL && !no_hash) {
		g_printerr("%s\n", error->message);
		return 1;
	}
	t1 = g_get_monotonic_time();
	cpu1 = bench_cpu_seconds();

	client = as_quic_client_new(argv[1], (guint16)atoi(argv[2]));
	if (pin != NULL)
		as_quic_client_set_pin(client, pin);
	as_quic_client_set_insecure(client, insecure);
	as_quic_client_set_cc_algo(client, algo);
	for (gint i = 0; i < count; i++) {
		g_autofree gchar *upload_name =
			count > 1 ? g_strdup_printf("%s.%d", name, i) : g_strdup(name);
		bc.pending++;
		as_quic_client_upload_fd_async(client, upload_name, fd, 0, (guint64)st.st_size,
					       NULL, sha, NULL, bench_upload_cb, &bc);
	}
	g_main_loop_run(loop);
	t2 = g_get_monotonic_time();
	cpu2 = bench_cpu_seconds();
	as_quic_client_get_stats(client, &stats);
	close(fd);
	{
		gdouble bytes = (gdouble)st.st_size * count;
		gdouble secs = (gdouble)(t2 - t1) / 1e6;
		g_print("hash_s %.2f hash_cpu_s %.2f upload_s %.2f MB/s %.0f cpu_s %.2f "
			"cpu_s_per_GB %.2f peak_rss_kib %ld srtt_us %" G_GUINT64_FORMAT
			" cc %s failed %u\n",
			(gdouble)(t1 - t0) / 1e6, cpu1 - cpu0, secs, bytes / secs / 1e6,
			cpu2 - cpu1, (cpu2 - cpu1) / (bytes / 1e9), bench_peak_rss_kib(),
			stats.smoothed_rtt_us, as_quic_cc_algo_to_string(algo), bc.failed);
	}
	return bc.failed > 0 ? 1 : 0;
}

int
main(int argc, char **argv)
{
	if (argc >= 2 && g_strcmp0(argv[1], "server") == 0)
		return bench_server(argc - 1, argv + 1);
	if (argc >= 2 && g_strcmp0(argv[1], "client") == 0)
		return bench_client(argc - 1, argv + 1);
	g_printerr("usage: as-quic-bench server|client ...\n");
	return 2;
}
