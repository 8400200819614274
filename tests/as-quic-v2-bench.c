/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * as-quic-v2-bench: aerosync/2 on its own, for measurements (not a test); the counterpart of
 * as-quic-bench, which measures the 0.x framing (aerosync/1).
 *
 *   as-quic-v2-bench server --out DIR [--address A] [--port P] [--state DIR]
 *       receives into a chunk store at DIR exactly as aerosyncd does (chunk files written and
 *       hashed by a disk-writer thread, then the whole file hashed again, fdatasync()ed and
 *       published), prints "port <n> sha256 <fingerprint>", serves until SIGINT/SIGTERM, then
 *       prints "server cpu_s <s> peak_rss_kib <k> ...".
 *   as-quic-v2-bench client HOST PORT FILE --pin SHA256 [--count N] [--chunk-size B]
 *       [--sha256 HEX]
 *       hashes FILE (timed apart, skipped with --sha256), uploads it N times as N tasks on
 *       parallel streams of one connection and prints MB/s, CPU seconds and peak RSS.
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
#include "as-chunk-store.h"
#include "as-error.h"
#include "as-quic-client.h"
#include "as-quic-server.h"
#include "as-quic-v2-store.h"
#include "as-sha256.h"
#include "as-tls-identity.h"

/* ---- server ---- */

static gboolean
bench_v1_begin(gpointer user_data, const AsQuicUploadInfo *info, gpointer *handle, GError **error)
{
	g_set_error_literal(error, AS_ERROR, AS_ERROR_NOT_SUPPORTED, "use as-quic-bench");
	return FALSE;
}

static gboolean
bench_v1_data(gpointer user_data, gpointer handle, const guint8 *data, gsize len)
{
	return FALSE;
}

static void
bench_v1_end(gpointer user_data, gpointer handle, AsQuicReplyFunc reply, gpointer reply_data)
{
	reply(reply_data, FALSE, "unexpected");
}

static void
bench_v1_abort(gpointer user_data, gpointer handle, const gchar *reason)
{
}

static const AsQuicIngest bench_v1_ingest = {
	.begin = bench_v1_begin,
	.data = bench_v1_data,
	.end = bench_v1_end,
	.abort = bench_v1_abort,
};

static void
bench_completed(gpointer user_data,
		gpointer cookie,
		AsChunkTask *task,
		const gchar *saved_as,
		const gchar *sha256)
{
	guint *uploads = user_data;
	(*uploads)++;
}

static int
bench_server(int argc, char **argv)
{
	g_autofree gchar *address = NULL;
	g_autofree gchar *state = NULL;
	g_autofree gchar *out = NULL;
	gint port = 0;
	GOptionEntry entries[] = {
		{"address", 0, 0, G_OPTION_ARG_STRING, &address, "bind address", "A"},
		{"port", 0, 0, G_OPTION_ARG_INT, &port, "UDP port", "P"},
		{"state", 0, 0, G_OPTION_ARG_FILENAME, &state, "TLS identity directory", "DIR"},
		{"out", 0, 0, G_OPTION_ARG_FILENAME, &out, "receive dir (chunk store)", "DIR"},
		{NULL}};
	g_autoptr(GOptionContext) octx = g_option_context_new("server");
	g_autoptr(GError) error = NULL;
	g_autoptr(AsTlsIdentity) identity = NULL;
	g_autoptr(AsChunkStore) store = NULL;
	g_autoptr(AsQuicServer) server = NULL;
	g_autoptr(AsQuicV2Store) v2 = NULL;
	g_autoptr(GMainLoop) loop = g_main_loop_new(NULL, FALSE);
	AsQuicV2StoreHooks hooks = {.file_completed = bench_completed};
	guint uploads = 0;
	gdouble cpu0;

	g_option_context_add_main_entries(octx, entries, NULL);
	if (!g_option_context_parse(octx, &argc, &argv, &error) || out == NULL) {
		g_printerr("usage: as-quic-v2-bench server --out DIR\n");
		return 2;
	}
	if (state == NULL)
		state = g_build_filename(g_get_tmp_dir(), "as-quic-bench-state", NULL);
	identity = as_tls_identity_load_or_generate(state, &error);
	if (identity == NULL) {
		g_printerr("%s\n", error->message);
		return 1;
	}
	store = as_chunk_store_new(out, 0, &error);
	if (store == NULL) {
		g_printerr("%s\n", error->message);
		return 1;
	}
	server = as_quic_server_new(identity, &bench_v1_ingest, NULL, NULL);
	v2 = as_quic_v2_store_new(store, &hooks, &uploads, NULL);
	as_quic_v2_store_set_overwrite(v2, TRUE);
	as_quic_v2_store_attach(v2, server);
	if (!as_quic_server_listen(server, address, (guint16)port, &error)) {
		g_printerr("%s\n", error->message);
		return 1;
	}
	g_print("port %u sha256 %s\n", as_quic_server_get_port(server),
		as_tls_identity_get_fingerprint(identity));
	fflush(stdout);
	g_unix_signal_add(SIGINT, bench_quit_cb, loop);
	g_unix_signal_add(SIGTERM, bench_quit_cb, loop);
	cpu0 = bench_cpu_seconds();
	g_main_loop_run(loop);
	{
		AsQuicServerStats stats;
		as_quic_server_get_stats(server, &stats);
		g_print("server cpu_s %.2f peak_rss_kib %ld uploads %u failed %" G_GUINT64_FORMAT
			" chunks %" G_GUINT64_FORMAT "\n",
			bench_cpu_seconds() - cpu0, bench_peak_rss_kib(), uploads,
			stats.uploads_failed, stats.v2_chunks_received);
	}
	return 0;
}

/* ---- client ---- */

typedef struct {
	GMainLoop *loop;
	guint pending;
	guint failed;
	guint64 chunks_sent;
} BenchClient;

static void
bench_upload_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	BenchClient *bc = user_data;
	g_autoptr(GError) error = NULL;
	g_autoptr(AsQuicV2UploadResult) result =
		as_quic_client_v2_upload_finish(AS_QUIC_CLIENT(source), res, &error);

	if (result == NULL) {
		g_printerr("upload failed: %s\n", error->message);
		bc->failed++;
	} else {
		bc->chunks_sent += result->chunks_sent;
	}
	if (--bc->pending == 0)
		g_main_loop_quit(bc->loop);
}

static int
bench_client(int argc, char **argv)
{
	g_autofree gchar *pin = NULL;
	g_autofree gchar *given_sha = NULL;
	gint count = 1;
	gint64 chunk_size = AS_QUIC_V2_DEFAULT_CHUNK_SIZE;
	GOptionEntry entries[] = {
		{"pin", 0, 0, G_OPTION_ARG_STRING, &pin, "certificate SHA-256", "HEX"},
		{"count", 0, 0, G_OPTION_ARG_INT, &count, "parallel uploads of the file", "N"},
		{"chunk-size", 0, 0, G_OPTION_ARG_INT64, &chunk_size, "chunk size", "BYTES"},
		{"sha256", 0, 0, G_OPTION_ARG_STRING, &given_sha, "known SHA-256: no hashing",
		 "HEX"},
		{NULL}};
	g_autoptr(GOptionContext) octx = g_option_context_new("HOST PORT FILE");
	g_autoptr(GError) error = NULL;
	g_autoptr(AsQuicClient) client = NULL;
	g_autofree gchar *sha = NULL;
	g_autofree gchar *name = NULL;
	g_autoptr(GMainLoop) loop = g_main_loop_new(NULL, FALSE);
	BenchClient bc = {loop, 0, 0, 0};
	AsQuicClientStats stats;
	struct stat st;
	gint64 t0, t1, t2;
	gdouble cpu0, cpu1, cpu2;
	int fd;

	g_option_context_add_main_entries(octx, entries, NULL);
	if (!g_option_context_parse(octx, &argc, &argv, &error) || argc != 4 || pin == NULL) {
		g_printerr("usage: as-quic-v2-bench client HOST PORT FILE --pin HEX\n");
		return 2;
	}
	fd = open(argv[3], O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) != 0) {
		g_printerr("%s: %s\n", argv[3], g_strerror(errno));
		return 1;
	}
	name = g_path_get_basename(argv[3]);
	t0 = g_get_monotonic_time();
	cpu0 = bench_cpu_seconds();
	sha = given_sha != NULL ? g_strdup(given_sha)
				: as_sha256_fd_range(fd, 0, (guint64)st.st_size, NULL, &error);
	if (sha == NULL) {
		g_printerr("%s\n", error->message);
		return 1;
	}
	t1 = g_get_monotonic_time();
	cpu1 = bench_cpu_seconds();

	client = as_quic_client_new(argv[1], (guint16)atoi(argv[2]));
	as_quic_client_set_alpn(client, AS_QUIC_ALPN_V2);
	as_quic_client_set_pin(client, pin);
	for (gint i = 0; i < count; i++) {
		g_autofree gchar *upload_name =
			count > 1 ? g_strdup_printf("%s.%d", name, i) : g_strdup(name);
		g_autofree gchar *task_id =
			g_strdup_printf("bench-%" G_GINT64_FORMAT "-%d", g_get_real_time(), i);
		bc.pending++;
		as_quic_client_v2_upload_fd_async(client, upload_name, fd, 0, (guint64)st.st_size,
						  task_id, (guint64)chunk_size, sha, NULL,
						  bench_upload_cb, &bc);
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
			" chunks %" G_GUINT64_FORMAT " failed %u\n",
			(gdouble)(t1 - t0) / 1e6, cpu1 - cpu0, secs, bytes / secs / 1e6,
			cpu2 - cpu1, (cpu2 - cpu1) / (bytes / 1e9), bench_peak_rss_kib(),
			stats.smoothed_rtt_us, bc.chunks_sent, bc.failed);
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
	g_printerr("usage: as-quic-v2-bench server|client ...\n");
	return 2;
}
