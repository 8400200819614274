/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#include "as-chunk-store.h"
#include "as-error.h"
#include "as-quic-client.h"
#include "as-quic-server.h"
#include "as-quic-v2-store.h"
#include "as-quic-v2.h"
#include "as-sha256.h"
#include "as-test-daemon.h"
#include "as-tls-identity.h"

/* every wait in this file is bounded by this */
#define TEST_TIMEOUT_MS 20000
#define TEST_TOKEN	"s3cret-token"
#define TEST_CHUNK_SIZE AS_QUIC_V2_MIN_CHUNK_SIZE

typedef struct {
	gchar *tmpdir;
	gchar *recv_dir;
	AsTlsIdentity *identity;
	AsChunkStore *store;
	AsQuicServer *server;
	guint16 port;
	guint n_started;
	guint n_completed;
	guint n_failed;
	guint n_chunk_failed;
	guint n_closed;
	guint64 last_bytes_done;
	/* closes this client once the task has that many chunks */
	AsQuicClient *kill_client;
	guint kill_after_chunks;
	gboolean killed;
	/* the holding ingest: chunk replies wait in here while hold is set */
	gboolean hold;
	GPtrArray *held; /* (element-type HeldReply) */
	guint64 hold_bytes;
	guint32 hold_chunks;
} Fixture;

typedef struct {
	AsQuicV2ChunkReplyFunc reply;
	gpointer reply_data;
} HeldReply;

typedef struct {
	gboolean done;
	AsQuicV2UploadResult *result;
	GError *error;
} UploadWait;

/* ---- helpers ---- */

static gboolean
wake_cb(gpointer user_data)
{
	return G_SOURCE_CONTINUE;
}

static void
wait_for(gboolean *flag)
{
	gint64 deadline = g_get_monotonic_time() + TEST_TIMEOUT_MS * 1000;
	guint wake = g_timeout_add(20, wake_cb, NULL);

	while (!*flag) {
		g_assert_cmpint(g_get_monotonic_time(), <, deadline);
		g_main_context_iteration(NULL, TRUE);
	}
	g_source_remove(wake);
}

static void
wait_count(guint *count, guint want)
{
	gint64 deadline = g_get_monotonic_time() + TEST_TIMEOUT_MS * 1000;
	guint wake = g_timeout_add(20, wake_cb, NULL);

	while (*count < want) {
		g_assert_cmpint(g_get_monotonic_time(), <, deadline);
		g_main_context_iteration(NULL, TRUE);
	}
	g_source_remove(wake);
}

/* writes @bytes to a file in the fixture's dir and opens it */
static int
write_source(Fixture *fx, const gchar *name, GBytes *bytes, gchar **sha256)
{
	g_autofree gchar *path = g_build_filename(fx->tmpdir, name, NULL);
	g_autoptr(GError) error = NULL;
	gsize len = 0;
	gconstpointer data = g_bytes_get_data(bytes, &len);
	int fd;

	g_assert_true(g_file_set_contents(path, data, (gssize)len, &error));
	g_assert_no_error(error);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	g_assert_cmpint(fd, >=, 0);
	*sha256 = as_sha256_data_hex(data, len);
	return fd;
}

static void
assert_received(Fixture *fx, const gchar *rel, GBytes *expected)
{
	g_autofree gchar *path = g_build_filename(fx->recv_dir, rel, NULL);
	g_autofree gchar *contents = NULL;
	gsize len = 0;
	g_autoptr(GError) error = NULL;

	g_assert_true(g_file_get_contents(path, &contents, &len, &error));
	g_assert_no_error(error);
	g_assert_cmpmem(contents, len, g_bytes_get_data(expected, NULL),
			g_bytes_get_size(expected));
}

/* ---- the receiver: the real chunk store behind the v2 store ingest ---- */

static gboolean
hook_authenticate(gpointer user_data, const gchar *token, const gchar *peer, GError **error)
{
	if (g_strcmp0(token, TEST_TOKEN) != 0) {
		g_set_error_literal(error, AS_ERROR, AS_ERROR_PERMISSION_DENIED, "Unauthorized");
		return FALSE;
	}
	return TRUE;
}

static gpointer
hook_file_started(gpointer user_data, AsChunkTask *task, const gchar *peer)
{
	Fixture *fx = user_data;
	fx->n_started++;
	return fx;
}

static void
hook_file_progress(gpointer user_data, gpointer cookie, guint64 bytes_done, guint64 chunk_bytes)
{
	Fixture *fx = user_data;

	fx->last_bytes_done = bytes_done;
	if (fx->kill_client != NULL && !fx->killed &&
	    bytes_done >= (guint64)fx->kill_after_chunks * TEST_CHUNK_SIZE) {
		/* the sender dies mid-file: CONNECTION_CLOSE, nothing more */
		fx->killed = TRUE;
		as_quic_client_close(fx->kill_client);
	}
}

static void
hook_file_completed(gpointer user_data,
		    gpointer cookie,
		    AsChunkTask *task,
		    const gchar *saved_as,
		    const gchar *sha256)
{
	Fixture *fx = user_data;
	fx->n_completed++;
}

static void
hook_file_failed(gpointer user_data, gpointer cookie, const GError *error)
{
	Fixture *fx = user_data;
	fx->n_failed++;
}

static void
hook_chunk_failed(
	gpointer user_data, gpointer cookie, AsChunkTask *task, guint32 index, const GError *error)
{
	Fixture *fx = user_data;
	fx->n_chunk_failed++;
}

static void
hook_file_closed(gpointer user_data, gpointer cookie)
{
	Fixture *fx = user_data;
	fx->n_closed++;
}

static const AsQuicV2StoreHooks test_hooks = {
	.authenticate = hook_authenticate,
	.file_started = hook_file_started,
	.file_progress = hook_file_progress,
	.file_completed = hook_file_completed,
	.file_failed = hook_file_failed,
	.chunk_failed = hook_chunk_failed,
	.file_closed = hook_file_closed,
};

/* the 0.x framing is not what these tests are about: refuse it */
static gboolean
v1_begin(gpointer user_data, const AsQuicUploadInfo *info, gpointer *handle, GError **error)
{
	g_set_error_literal(error, AS_ERROR, AS_ERROR_NOT_SUPPORTED,
			    "0.x framing off in this test");
	return FALSE;
}

static gboolean
v1_data(gpointer user_data, gpointer handle, const guint8 *data, gsize len)
{
	g_assert_not_reached();
	return FALSE;
}

static void
v1_end(gpointer user_data, gpointer handle, AsQuicReplyFunc reply, gpointer reply_data)
{
	g_assert_not_reached();
}

static void
v1_abort(gpointer user_data, gpointer handle, const gchar *reason)
{
	g_assert_not_reached();
}

static const AsQuicIngest v1_ingest = {
	.begin = v1_begin,
	.data = v1_data,
	.end = v1_end,
	.abort = v1_abort,
};

/* ---- an ingest that stores nothing and answers chunks only when told: backpressure ---- */

static gboolean
hold_authenticate(gpointer user_data, const gchar *token, const gchar *peer, GError **error)
{
	return TRUE;
}

static gboolean
hold_file_begin(gpointer user_data,
		const AsQuicV2FileInfo *info,
		guint8 *have,
		gpointer *file_handle,
		gchar **done_saved_as,
		gchar **done_sha256,
		GError **error)
{
	*file_handle = user_data;
	return TRUE;
}

static gboolean
hold_chunk_begin(gpointer user_data,
		 gpointer file_handle,
		 guint32 index,
		 guint64 offset,
		 guint64 length,
		 gpointer *chunk_handle,
		 GError **error)
{
	*chunk_handle = GUINT_TO_POINTER(index + 1);
	return TRUE;
}

static gboolean
hold_chunk_data(gpointer user_data,
		gpointer file_handle,
		gpointer chunk_handle,
		const guint8 *data,
		gsize len)
{
	Fixture *fx = user_data;
	fx->hold_bytes += len;
	return TRUE;
}

static void
hold_chunk_end(gpointer user_data,
	       gpointer file_handle,
	       gpointer chunk_handle,
	       const gchar *sha256,
	       AsQuicV2ChunkReplyFunc reply,
	       gpointer reply_data)
{
	Fixture *fx = user_data;
	HeldReply *h;

	if (!fx->hold) {
		fx->hold_chunks++;
		reply(reply_data, fx->hold_chunks, fx->hold_bytes, NULL);
		return;
	}
	h = g_new0(HeldReply, 1);
	h->reply = reply;
	h->reply_data = reply_data;
	g_ptr_array_add(fx->held, h);
}

static void
hold_file_end(gpointer user_data,
	      gpointer file_handle,
	      AsQuicV2FileReplyFunc reply,
	      gpointer reply_data)
{
	g_autofree gchar *sha = as_sha256_data_hex("", 0);
	reply(reply_data, "held.bin", sha, NULL);
}

static void
hold_file_abort(gpointer user_data, gpointer file_handle, const gchar *reason)
{
}

static const AsQuicV2Ingest hold_ingest = {
	.authenticate = hold_authenticate,
	.file_begin = hold_file_begin,
	.chunk_begin = hold_chunk_begin,
	.chunk_data = hold_chunk_data,
	.chunk_end = hold_chunk_end,
	.file_end = hold_file_end,
	.file_abort = hold_file_abort,
};

static void
fixture_setup(Fixture *fx, gconstpointer user_data)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *state = NULL;
	g_autoptr(AsQuicV2Store) v2 = NULL;

	fx->tmpdir = g_dir_make_tmp("as-quic-v2-test-XXXXXX", &error);
	g_assert_no_error(error);
	state = g_build_filename(fx->tmpdir, "state", NULL);
	fx->recv_dir = g_build_filename(fx->tmpdir, "recv", NULL);
	fx->identity = as_tls_identity_load_or_generate(state, &error);
	g_assert_no_error(error);
	fx->store = as_chunk_store_new(fx->recv_dir, 0, &error);
	g_assert_no_error(error);
	fx->server = as_quic_server_new(fx->identity, &v1_ingest, fx, NULL);
	fx->held = g_ptr_array_new_with_free_func(g_free);
	if (g_strcmp0(user_data, "hold") == 0) {
		as_quic_server_set_v2_ingest(fx->server, &hold_ingest, fx, NULL);
	} else if (g_strcmp0(user_data, "v1-only") == 0) {
		/* a receiver that predates aerosync/2 */
	} else {
		v2 = as_quic_v2_store_new(fx->store, &test_hooks, fx, NULL);
		as_quic_v2_store_attach(v2, fx->server);
	}
	g_assert_true(as_quic_server_listen(fx->server, "127.0.0.1", 0, &error));
	g_assert_no_error(error);
	fx->port = as_quic_server_get_port(fx->server);
}

static void
fixture_teardown(Fixture *fx, gconstpointer user_data)
{
	g_clear_object(&fx->server);
	while (g_main_context_iteration(NULL, FALSE))
		;
	g_clear_object(&fx->store);
	g_clear_object(&fx->identity);
	g_ptr_array_unref(fx->held);
	as_test_rm_rf(fx->tmpdir);
	g_free(fx->recv_dir);
	g_free(fx->tmpdir);
}

static AsQuicClient *
new_client(Fixture *fx, const gchar *token)
{
	AsQuicClient *client = as_quic_client_new("127.0.0.1", fx->port);
	as_quic_client_set_alpn(client, AS_QUIC_ALPN_V2);
	as_quic_client_set_pin(client, as_tls_identity_get_fingerprint(fx->identity));
	as_quic_client_set_token(client, token);
	return client;
}

static void
upload_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	UploadWait *w = user_data;
	w->result = as_quic_client_v2_upload_finish(AS_QUIC_CLIENT(source), res, &w->error);
	w->done = TRUE;
}

static void
upload_wait_clear(UploadWait *w)
{
	g_clear_pointer(&w->result, as_quic_v2_upload_result_free);
	g_clear_error(&w->error);
	w->done = FALSE;
}

static void
start_upload(AsQuicClient *client,
	     const gchar *path,
	     int fd,
	     guint64 size,
	     const gchar *task_id,
	     const gchar *sha256,
	     UploadWait *w)
{
	as_quic_client_v2_upload_fd_async(client, path, fd, 0, size, task_id, TEST_CHUNK_SIZE,
					  sha256, NULL, upload_cb, w);
}

/* ---- tests ---- */

static void
test_codec(void)
{
	AsQuicV2Msg in = {0};
	AsQuicV2Msg out = {0};
	g_autoptr(GByteArray) frame = NULL;
	g_autoptr(GError) error = NULL;
	gsize frame_len = 0;
	guint8 bitmap[2] = {0x05, 0x01};
	g_autofree gchar *sha = as_sha256_data_hex("x", 1);

	/* FILE round trip, then every prefix needs more */
	in.type = AS_QUIC_V2_MSG_FILE;
	in.size = 200000;
	in.chunk_size = TEST_CHUNK_SIZE;
	in.sha256 = sha;
	in.task_id = (gchar *)"task-1";
	in.path = (gchar *)"dir/ünïcode name.bin";
	frame = as_quic_v2_encode(&in, &error);
	g_assert_no_error(error);
	for (gsize i = 0; i < frame->len; i++) {
		g_assert_cmpint(as_quic_v2_decode(frame->data, i, AS_QUIC_V2_MAX_CLIENT_PAYLOAD,
						  &out, &frame_len, &error),
				==, AS_QUIC_FRAMING_RESULT_NEED_MORE);
		g_assert_no_error(error);
	}
	g_assert_cmpint(as_quic_v2_decode(frame->data, frame->len, AS_QUIC_V2_MAX_CLIENT_PAYLOAD,
					  &out, &frame_len, &error),
			==, AS_QUIC_FRAMING_RESULT_COMPLETE);
	g_assert_no_error(error);
	g_assert_cmpuint(frame_len, ==, frame->len);
	g_assert_cmpuint(out.size, ==, 200000);
	g_assert_cmpstr(out.sha256, ==, sha);
	g_assert_cmpstr(out.task_id, ==, "task-1");
	g_assert_cmpstr(out.path, ==, "dir/ünïcode name.bin");
	as_quic_v2_msg_clear(&out);

	/* a trailing byte belongs to the next frame */
	g_byte_array_append(frame, (const guint8 *)"\x05", 1);
	g_assert_cmpint(as_quic_v2_decode(frame->data, frame->len, AS_QUIC_V2_MAX_CLIENT_PAYLOAD,
					  &out, &frame_len, &error),
			==, AS_QUIC_FRAMING_RESULT_COMPLETE);
	g_assert_cmpuint(frame_len, ==, frame->len - 1);
	as_quic_v2_msg_clear(&out);
	g_clear_pointer(&frame, g_byte_array_unref);

	/* HAVE */
	memset(&in, 0, sizeof(in));
	in.type = AS_QUIC_V2_MSG_HAVE;
	in.total_chunks = 9;
	in.bitmap = g_bytes_new_static(bitmap, sizeof(bitmap));
	frame = as_quic_v2_encode(&in, &error);
	g_assert_no_error(error);
	g_bytes_unref(in.bitmap);
	g_assert_cmpint(as_quic_v2_decode(frame->data, frame->len, AS_QUIC_V2_MAX_SERVER_PAYLOAD,
					  &out, &frame_len, &error),
			==, AS_QUIC_FRAMING_RESULT_COMPLETE);
	g_assert_true(as_quic_v2_bitmap_get(out.bitmap, 0));
	g_assert_false(as_quic_v2_bitmap_get(out.bitmap, 1));
	g_assert_true(as_quic_v2_bitmap_get(out.bitmap, 2));
	g_assert_true(as_quic_v2_bitmap_get(out.bitmap, 8));
	g_assert_false(as_quic_v2_bitmap_get(out.bitmap, 9));
	as_quic_v2_msg_clear(&out);
	g_clear_pointer(&frame, g_byte_array_unref);

	/* ERROR keeps its code, and a long message is cut rather than refused */
	{
		g_autofree gchar *longmsg = g_strnfill(5000, 'x');
		g_autoptr(GError) e =
			g_error_new_literal(AS_ERROR, AS_ERROR_HASH_MISMATCH, longmsg);
		g_autoptr(GError) back = NULL;
		frame = as_quic_v2_encode_error(e);
		g_assert_cmpint(as_quic_v2_decode(frame->data, frame->len,
						  AS_QUIC_V2_MAX_SERVER_PAYLOAD, &out, &frame_len,
						  &error),
				==, AS_QUIC_FRAMING_RESULT_COMPLETE);
		back = as_quic_v2_msg_to_error(&out);
		g_assert_error(back, AS_ERROR, AS_ERROR_HASH_MISMATCH);
		g_assert_cmpuint(strlen(out.text), ==, AS_QUIC_V2_MAX_TEXT_LEN);
		as_quic_v2_msg_clear(&out);
		g_clear_pointer(&frame, g_byte_array_unref);
	}

	/* malformed frames are refused with a reason */
	{
		const struct {
			const gchar *data;
			gsize len;
		} bad[] = {
			{"\x00\x00\x00\x00\x00", 5},		 /* type 0 */
			{"\x42", 1},				 /* unknown type, known at once */
			{"\x01\x00\x10\x00\x00", 5},		 /* oversized */
			{"\x05\x00\x00\x00\x02\x00\x00", 7},	 /* truncated CHUNK */
			{"\x02\x00\x00\x00\x01\x00", 6},	 /* stray byte in WELCOME */
			{"\x01\x00\x00\x00\x03\x00\x01\x07", 8}, /* control char in token */
			{"\x01\x00\x00\x00\x03\x00\x01\xff", 8}, /* not UTF-8 */
		};
		for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
			g_autoptr(GError) e = NULL;
			g_assert_cmpint(as_quic_v2_decode((const guint8 *)bad[i].data, bad[i].len,
							  AS_QUIC_V2_MAX_CLIENT_PAYLOAD, &out,
							  &frame_len, &e),
					==, AS_QUIC_FRAMING_RESULT_ERROR);
			g_assert_error(e, AS_ERROR, AS_ERROR_INVALID_ARGUMENT);
		}
	}

	/* a FILE with a bad task id, a tiny chunk size, or too many chunks cannot be written */
	memset(&in, 0, sizeof(in));
	in.type = AS_QUIC_V2_MSG_FILE;
	in.size = 10;
	in.chunk_size = TEST_CHUNK_SIZE;
	in.task_id = (gchar *)"../x";
	in.path = (gchar *)"a";
	g_assert_null(as_quic_v2_encode(&in, &error));
	g_assert_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT);
	g_clear_error(&error);
	in.task_id = (gchar *)"ok";
	in.chunk_size = 1000;
	g_assert_null(as_quic_v2_encode(&in, &error));
	g_assert_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT);
	g_clear_error(&error);
	in.chunk_size = TEST_CHUNK_SIZE;
	in.size = (guint64)TEST_CHUNK_SIZE * AS_QUIC_V2_MAX_CHUNKS + 1;
	g_assert_null(as_quic_v2_encode(&in, &error));
	g_assert_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT);
	g_clear_error(&error);

	/* chunk ranges: only the last one is short, an empty file is one empty chunk */
	{
		guint64 off = 0, len = 0;
		g_assert_true(as_quic_v2_chunk_range(150000, TEST_CHUNK_SIZE, 2, &off, &len));
		g_assert_cmpuint(off, ==, 2 * TEST_CHUNK_SIZE);
		g_assert_cmpuint(len, ==, 150000 - 2 * TEST_CHUNK_SIZE);
		g_assert_false(as_quic_v2_chunk_range(150000, TEST_CHUNK_SIZE, 3, &off, &len));
		g_assert_true(as_quic_v2_chunk_range(0, TEST_CHUNK_SIZE, 0, &off, &len));
		g_assert_cmpuint(len, ==, 0);
	}
}

typedef struct {
	guint completed;
	guint progress;
} EventCount;

static void
v2_event_cb(AsQuicClient *client,
	    const gchar *kind,
	    const gchar *task_id,
	    guint64 bytes_done,
	    guint64 total,
	    const gchar *detail,
	    gpointer user_data)
{
	EventCount *ec = user_data;
	if (g_strcmp0(kind, "completed") == 0)
		ec->completed++;
	else if (g_strcmp0(kind, "progress") == 0)
		ec->progress++;
}

static void
test_upload(Fixture *fx, gconstpointer user_data)
{
	g_autoptr(AsQuicClient) client = new_client(fx, TEST_TOKEN);
	const gsize sizes[] = {0, 100000, 3 * TEST_CHUNK_SIZE, 1024 * 1024 + 3};
	const gchar *paths[] = {"empty", "sub/dir/one.bin", "exact.bin", "big file.bin"};
	GBytes *data[G_N_ELEMENTS(sizes)];
	UploadWait w[G_N_ELEMENTS(sizes)] = {0};
	EventCount ec = {0};
	AsQuicClientStats stats;

	g_signal_connect(client, "v2-event", G_CALLBACK(v2_event_cb), &ec);
	for (guint i = 0; i < G_N_ELEMENTS(sizes); i++) {
		g_autofree gchar *sha = NULL;
		g_autofree gchar *name = g_strdup_printf("src-%u", i);
		g_autofree gchar *task = g_strdup_printf("task-%u", i);
		int fd;

		data[i] = as_test_random_bytes(sizes[i], i + 1);
		fd = write_source(fx, name, data[i], &sha);
		start_upload(client, paths[i], fd, sizes[i], task, i == 2 ? NULL : sha, &w[i]);
		close(fd);
	}
	for (guint i = 0; i < G_N_ELEMENTS(sizes); i++) {
		g_autofree gchar *sha = NULL;
		wait_for(&w[i].done);
		g_assert_no_error(w[i].error);
		g_assert_cmpstr(w[i].result->saved_as, ==, paths[i]);
		sha = as_sha256_data_hex(g_bytes_get_data(data[i], NULL), sizes[i]);
		g_assert_cmpstr(w[i].result->sha256, ==, sha);
		g_assert_cmpuint(w[i].result->size, ==, sizes[i]);
		g_assert_cmpuint(w[i].result->chunks_skipped, ==, 0);
		g_assert_cmpuint(w[i].result->chunks_sent, ==, w[i].result->total_chunks);
		assert_received(fx, paths[i], data[i]);
		upload_wait_clear(&w[i]);
		g_bytes_unref(data[i]);
	}
	g_assert_cmpuint(fx->n_completed, ==, G_N_ELEMENTS(sizes));
	/* the completions also came as events on the control stream */
	while (ec.completed < G_N_ELEMENTS(sizes))
		g_main_context_iteration(NULL, TRUE);
	as_quic_client_get_stats(client, &stats);
	g_assert_cmpuint(stats.connections, ==, 1);
}

static void
test_already_complete(Fixture *fx, gconstpointer user_data)
{
	g_autoptr(AsQuicClient) client = new_client(fx, TEST_TOKEN);
	g_autoptr(GBytes) data = as_test_random_bytes(200000, 7);
	g_autofree gchar *sha = NULL;
	UploadWait w = {0};
	int fd = write_source(fx, "src", data, &sha);

	start_upload(client, "again.bin", fd, 200000, "again", sha, &w);
	wait_for(&w.done);
	g_assert_no_error(w.error);
	upload_wait_clear(&w);

	/* the same task again: answered from the tombstone, nothing sent */
	start_upload(client, "again.bin", fd, 200000, "again", sha, &w);
	wait_for(&w.done);
	g_assert_no_error(w.error);
	g_assert_cmpstr(w.result->saved_as, ==, "again.bin");
	g_assert_cmpstr(w.result->sha256, ==, sha);
	g_assert_cmpuint(w.result->chunks_sent, ==, 0);
	upload_wait_clear(&w);
	close(fd);
}

static void
connect_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	UploadWait *w = user_data;
	(void)as_quic_client_connect_finish(AS_QUIC_CLIENT(source), res, &w->error);
	w->done = TRUE;
}

static void
test_bad_token(Fixture *fx, gconstpointer user_data)
{
	g_autoptr(AsQuicClient) client = new_client(fx, "wrong");
	g_autoptr(AsQuicClient) none = new_client(fx, NULL);
	g_autoptr(GBytes) data = as_test_random_bytes(1000, 3);
	g_autofree gchar *sha = NULL;
	UploadWait w = {0};
	AsQuicServerStats stats;
	int fd = write_source(fx, "src", data, &sha);

	as_quic_client_connect_async(client, NULL, connect_cb, &w);
	wait_for(&w.done);
	g_assert_error(w.error, AS_ERROR, AS_ERROR_PERMISSION_DENIED);
	upload_wait_clear(&w);

	start_upload(none, "x.bin", fd, 1000, "tok", sha, &w);
	wait_for(&w.done);
	g_assert_error(w.error, AS_ERROR, AS_ERROR_PERMISSION_DENIED);
	upload_wait_clear(&w);
	close(fd);

	as_quic_server_get_stats(fx->server, &stats);
	g_assert_cmpuint(stats.v2_auth_failures, ==, 2);
	g_assert_cmpuint(fx->n_started, ==, 0);
}

static void
request_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	GBytes **out = user_data;
	g_autoptr(GError) error = NULL;
	*out = as_quic_client_request_bytes_finish(AS_QUIC_CLIENT(source), res, &error);
	g_assert_no_error(error);
}

static void
append_frame(GByteArray *out, const AsQuicV2Msg *msg)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GByteArray) frame = as_quic_v2_encode(msg, &error);
	g_assert_no_error(error);
	g_byte_array_append(out, frame->data, frame->len);
}

static void
append_chunk(GByteArray *out, const guint8 *data, guint32 index, guint64 len, gboolean corrupt)
{
	AsQuicV2Msg msg = {.type = AS_QUIC_V2_MSG_CHUNK};
	g_autofree gchar *hex = as_sha256_data_hex(data, len);
	guint8 digest[AS_QUIC_V2_DIGEST_SIZE];

	msg.index = index;
	msg.offset = (guint64)index * TEST_CHUNK_SIZE;
	msg.length = len;
	append_frame(out, &msg);
	g_byte_array_append(out, data, (guint)len);
	for (guint i = 0; i < AS_QUIC_V2_DIGEST_SIZE; i++)
		digest[i] = (guint8)((g_ascii_xdigit_value(hex[2 * i]) << 4) |
				     g_ascii_xdigit_value(hex[2 * i + 1]));
	if (corrupt)
		digest[0] ^= 0xff;
	g_byte_array_append(out, digest, sizeof(digest));
}

/* decodes every frame of a reply */
static GPtrArray *
decode_reply(GBytes *reply)
{
	GPtrArray *msgs = g_ptr_array_new();
	gsize len = 0;
	const guint8 *p = g_bytes_get_data(reply, &len);

	while (len > 0) {
		AsQuicV2Msg *msg = g_new0(AsQuicV2Msg, 1);
		gsize frame_len = 0;
		g_autoptr(GError) error = NULL;
		g_assert_cmpint(as_quic_v2_decode(p, len, AS_QUIC_V2_MAX_SERVER_PAYLOAD, msg,
						  &frame_len, &error),
				==, AS_QUIC_FRAMING_RESULT_COMPLETE);
		g_ptr_array_add(msgs, msg);
		p += frame_len;
		len -= frame_len;
	}
	return msgs;
}

static void
msg_free(AsQuicV2Msg *msg)
{
	as_quic_v2_msg_clear(msg);
	g_free(msg);
}

static void
test_bad_chunk_hash(Fixture *fx, gconstpointer user_data)
{
	g_autoptr(AsQuicClient) client = new_client(fx, TEST_TOKEN);
	g_autoptr(GBytes) data = as_test_random_bytes(3 * TEST_CHUNK_SIZE, 11);
	g_autoptr(GByteArray) req = g_byte_array_new();
	g_autoptr(GBytes) request = NULL;
	g_autoptr(GBytes) reply = NULL;
	g_autoptr(GPtrArray) msgs = NULL;
	g_autoptr(AsChunkTask) task = NULL;
	g_autoptr(GError) error = NULL;
	const guint8 *d = g_bytes_get_data(data, NULL);
	AsQuicV2Msg file = {.type = AS_QUIC_V2_MSG_FILE};
	AsQuicV2Msg *last;

	file.size = 3 * TEST_CHUNK_SIZE;
	file.chunk_size = TEST_CHUNK_SIZE;
	file.task_id = (gchar *)"badhash";
	file.path = (gchar *)"badhash.bin";
	append_frame(req, &file);
	append_chunk(req, d, 0, TEST_CHUNK_SIZE, FALSE);
	append_chunk(req, d + TEST_CHUNK_SIZE, 1, TEST_CHUNK_SIZE, TRUE);
	request = g_byte_array_free_to_bytes(g_steal_pointer(&req));
	as_quic_client_request_bytes_async(client, request, NULL, request_cb, &reply);
	while (reply == NULL)
		g_main_context_iteration(NULL, TRUE);

	msgs = decode_reply(reply);
	g_ptr_array_set_free_func(msgs, (GDestroyNotify)msg_free);
	g_assert_cmpuint(msgs->len, >=, 2);
	g_assert_cmpint(((AsQuicV2Msg *)msgs->pdata[0])->type, ==, AS_QUIC_V2_MSG_HAVE);
	last = msgs->pdata[msgs->len - 1];
	g_assert_cmpint(last->type, ==, AS_QUIC_V2_MSG_ERROR);
	g_assert_cmpint(last->code, ==, AS_ERROR_HASH_MISMATCH);
	g_assert_nonnull(strstr(last->text, "chunk 1"));
	g_assert_cmpuint(fx->n_chunk_failed, ==, 1);

	/* chunk 0 is kept, chunk 1 is not: the task resumes from there (over QUIC or HTTP) */
	wait_count(&fx->n_closed, 1);
	task = as_chunk_store_lookup_task(fx->store, "badhash", &error);
	g_assert_no_error(error);
	g_assert_true(as_chunk_task_is_chunk_done(task, 0));
	g_assert_false(as_chunk_task_is_chunk_done(task, 1));
	g_assert_cmpuint(as_chunk_task_get_done_count(task), ==, 1);
}

static void
test_protocol_errors(Fixture *fx, gconstpointer user_data)
{
	g_autoptr(AsQuicClient) client = new_client(fx, TEST_TOKEN);
	const struct {
		const gchar *what;
		const gchar *task_id;
		const gchar *path;
		guint64 size;
		guint32 chunk_index;
		guint64 chunk_len;
		gint code;
	} cases[] = {
		{"escaping path", "esc", "../outside.bin", 10, 0, 10, AS_ERROR_INVALID_ARGUMENT},
		{"wrong chunk length", "len", "len.bin", 100000, 0, 100, AS_ERROR_INVALID_ARGUMENT},
		{"chunk past the end", "past", "past.bin", 100, 5, 100, AS_ERROR_INVALID_ARGUMENT},
		{"truncated chunk", "trunc", "trunc.bin", 100, 0, 0, AS_ERROR_INCOMPLETE},
	};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(GByteArray) req = g_byte_array_new();
		g_autoptr(GBytes) request = NULL;
		g_autoptr(GBytes) reply = NULL;
		g_autoptr(GPtrArray) msgs = NULL;
		AsQuicV2Msg file = {.type = AS_QUIC_V2_MSG_FILE};
		AsQuicV2Msg chunk = {.type = AS_QUIC_V2_MSG_CHUNK};
		AsQuicV2Msg *last;

		g_test_message("%s", cases[i].what);
		file.size = cases[i].size;
		file.chunk_size = TEST_CHUNK_SIZE;
		file.task_id = (gchar *)cases[i].task_id;
		file.path = (gchar *)cases[i].path;
		append_frame(req, &file);
		chunk.index = cases[i].chunk_index;
		chunk.offset = (guint64)cases[i].chunk_index * TEST_CHUNK_SIZE;
		chunk.length = cases[i].chunk_len;
		if (cases[i].code == AS_ERROR_INCOMPLETE) {
			/* the frame announces 100 bytes, 10 come, then FIN */
			chunk.length = 100;
			append_frame(req, &chunk);
			g_byte_array_append(req, (const guint8 *)"0123456789", 10);
		} else {
			append_frame(req, &chunk);
		}
		request = g_byte_array_free_to_bytes(g_steal_pointer(&req));
		as_quic_client_request_bytes_async(client, request, NULL, request_cb, &reply);
		while (reply == NULL)
			g_main_context_iteration(NULL, TRUE);
		msgs = decode_reply(reply);
		g_ptr_array_set_free_func(msgs, (GDestroyNotify)msg_free);
		g_assert_cmpuint(msgs->len, >=, 1);
		last = msgs->pdata[msgs->len - 1];
		g_assert_cmpint(last->type, ==, AS_QUIC_V2_MSG_ERROR);
		g_assert_cmpint(last->code, ==, cases[i].code);
	}
	/* nothing escaped the receive dir */
	{
		g_autofree gchar *outside = g_build_filename(fx->tmpdir, "outside.bin", NULL);
		g_assert_false(g_file_test(outside, G_FILE_TEST_EXISTS));
	}
	/* the connection survived every refusal */
	g_assert_true(as_quic_client_is_connected(client));
}

static void
test_resume_after_kill(Fixture *fx, gconstpointer user_data)
{
	g_autoptr(AsQuicClient) first = new_client(fx, TEST_TOKEN);
	g_autoptr(AsQuicClient) second = new_client(fx, TEST_TOKEN);
	const gsize size = 48 * 1024 * 1024 + 5;
	g_autoptr(GBytes) data = as_test_random_bytes(size, 99);
	g_autofree gchar *sha = NULL;
	g_autoptr(AsChunkTask) task = NULL;
	g_autoptr(GError) error = NULL;
	UploadWait w = {0};
	guint32 done_before;
	AsQuicServerStats stats;
	int fd = write_source(fx, "src", data, &sha);

	fx->kill_client = first;
	fx->kill_after_chunks = 8;
	start_upload(first, "resumed.bin", fd, size, "resume-1", sha, &w);
	wait_for(&w.done);
	g_assert_nonnull(w.error);
	g_test_message("first upload ended: %s", w.error->message);
	upload_wait_clear(&w);
	fx->kill_client = NULL;

	/* the receiver notices, and keeps what it verified */
	for (gint64 deadline = g_get_monotonic_time() + TEST_TIMEOUT_MS * 1000;;) {
		as_quic_server_get_stats(fx->server, &stats);
		if (stats.n_connections == 0 && fx->n_closed == fx->n_started)
			break;
		g_assert_cmpint(g_get_monotonic_time(), <, deadline);
		g_main_context_iteration(NULL, TRUE);
	}
	task = as_chunk_store_lookup_task(fx->store, "resume-1", &error);
	g_assert_no_error(error);
	done_before = as_chunk_task_get_done_count(task);
	g_test_message("%u of %u chunks stored before the kill", done_before,
		       as_chunk_task_get_total_chunks(task));
	g_assert_cmpuint(done_before, >=, 8);
	g_assert_cmpuint(done_before, <, as_chunk_task_get_total_chunks(task));

	/* a new connection resumes: only the missing chunks travel */
	start_upload(second, "resumed.bin", fd, size, "resume-1", sha, &w);
	wait_for(&w.done);
	g_assert_no_error(w.error);
	g_assert_cmpuint(w.result->chunks_skipped, ==, done_before);
	g_assert_cmpuint(w.result->chunks_sent, ==, w.result->total_chunks - done_before);
	g_assert_cmpstr(w.result->sha256, ==, sha);
	assert_received(fx, "resumed.bin", data);
	upload_wait_clear(&w);
	close(fd);
}

static void
test_many_files(Fixture *fx, gconstpointer user_data)
{
	g_autoptr(AsQuicClient) client = new_client(fx, TEST_TOKEN);
	const guint n = 50;
	g_autofree UploadWait *w = g_new0(UploadWait, n);
	g_autoptr(GPtrArray) data = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
	AsQuicClientStats stats;

	for (guint i = 0; i < n; i++) {
		gsize size = 70000 + i * 1000;
		GBytes *bytes = as_test_random_bytes(size, 1000 + i);
		g_autofree gchar *sha = NULL;
		g_autofree gchar *name = g_strdup_printf("src-%u", i);
		g_autofree gchar *path = g_strdup_printf("many/file-%02u", i);
		g_autofree gchar *task = g_strdup_printf("many-%u", i);
		int fd = write_source(fx, name, bytes, &sha);

		g_ptr_array_add(data, bytes);
		start_upload(client, path, fd, size, task, sha, &w[i]);
		close(fd);
	}
	for (guint i = 0; i < n; i++) {
		g_autofree gchar *path = g_strdup_printf("many/file-%02u", i);
		wait_for(&w[i].done);
		g_assert_no_error(w[i].error);
		g_assert_cmpstr(w[i].result->saved_as, ==, path);
		assert_received(fx, path, data->pdata[i]);
		upload_wait_clear(&w[i]);
	}
	as_quic_client_get_stats(client, &stats);
	g_assert_cmpuint(stats.connections, ==, 1);
	g_assert_cmpuint(stats.uploads_completed, ==, n);
}

static void
test_backpressure(Fixture *fx, gconstpointer user_data)
{
	g_autoptr(AsQuicClient) client = new_client(fx, NULL);
	const gsize size = 64 * 1024 * 1024;
	g_autoptr(GBytes) data = as_test_random_bytes(size, 21);
	g_autofree gchar *sha = NULL;
	UploadWait w = {0};
	guint64 stalled_at;
	int fd = write_source(fx, "src", data, &sha);

	/* the ingest verifies nothing while hold is set: after a few chunks, the server stops
	 * granting credit and the sender stalls within the receive windows */
	fx->hold = TRUE;
	start_upload(client, "held.bin", fd, size, "held", NULL, &w);
	wait_count(&fx->held->len, AS_QUIC_SERVER_V2_MAX_PENDING_CHUNKS);
	for (guint i = 0; i < 20; i++) {
		g_usleep(10 * 1000);
		while (g_main_context_iteration(NULL, FALSE))
			;
	}
	stalled_at = fx->hold_bytes;
	for (guint i = 0; i < 20; i++) {
		g_usleep(10 * 1000);
		while (g_main_context_iteration(NULL, FALSE))
			;
	}
	g_test_message("stalled at %" G_GUINT64_FORMAT " of %" G_GSIZE_FORMAT " bytes with %u "
		       "replies owed",
		       fx->hold_bytes, size, fx->held->len);
	g_assert_cmpuint(fx->hold_bytes, ==, stalled_at);
	g_assert_cmpuint(fx->hold_bytes, <=,
			 (guint64)AS_QUIC_SERVER_V2_MAX_PENDING_CHUNKS * TEST_CHUNK_SIZE +
				 AS_QUIC_SERVER_MAX_STREAM_WINDOW);
	g_assert_false(w.done);

	/* the replies come: everything flows again */
	fx->hold = FALSE;
	for (guint i = 0; i < fx->held->len; i++) {
		HeldReply *h = fx->held->pdata[i];
		fx->hold_chunks++;
		h->reply(h->reply_data, fx->hold_chunks, fx->hold_bytes, NULL);
	}
	g_ptr_array_set_size(fx->held, 0);
	wait_for(&w.done);
	g_assert_no_error(w.error);
	g_assert_cmpuint(fx->hold_bytes, ==, size);
	g_assert_cmpuint(w.result->chunks_sent, ==, size / TEST_CHUNK_SIZE);
	upload_wait_clear(&w);
	close(fd);
}

/* a 0.x-only receiver: no common ALPN, which a sender takes as "fall back", and at once */
static void
test_no_v2(Fixture *fx, gconstpointer user_data)
{
	g_autoptr(AsQuicClient) client = new_client(fx, TEST_TOKEN);
	UploadWait w = {0};
	gint64 start = g_get_monotonic_time();

	as_quic_client_connect_async(client, NULL, connect_cb, &w);
	wait_for(&w.done);
	g_assert_error(w.error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED);
	g_test_message("refused after %" G_GINT64_FORMAT " ms",
		       (g_get_monotonic_time() - start) / 1000);
	g_assert_cmpint(g_get_monotonic_time() - start, <,
			AS_QUIC_CLIENT_DEFAULT_HANDSHAKE_TIMEOUT_MS * 1000 / 2);
	upload_wait_clear(&w);
}

static void
test_v1_refused(Fixture *fx, gconstpointer user_data)
{
	g_autoptr(AsQuicClient) client = new_client(fx, TEST_TOKEN);
	g_autoptr(AsQuicClient) v1 = new_client(fx, NULL);
	g_autoptr(GBytes) data = as_test_random_bytes(1000, 5);
	g_autofree gchar *sha = NULL;
	UploadWait w = {0};
	int fd = write_source(fx, "src", data, &sha);

	/* the 0.x API refuses to run on an aerosync/2 client, and the other way round */
	as_quic_client_upload_fd_async(client, "x", fd, 0, 1000, NULL, NULL, NULL,
				       (GAsyncReadyCallback)connect_cb, &w);
	wait_for(&w.done);
	g_assert_error(w.error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED);
	upload_wait_clear(&w);
	as_quic_client_set_alpn(v1, AS_QUIC_ALPN_V1);
	start_upload(v1, "x", fd, 1000, "x", sha, &w);
	wait_for(&w.done);
	g_assert_error(w.error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED);
	upload_wait_clear(&w);
	close(fd);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/aerosync/quic-v2/codec", test_codec);
#define ADD(path, func) g_test_add(path, Fixture, NULL, fixture_setup, func, fixture_teardown)
	ADD("/aerosync/quic-v2/upload", test_upload);
	ADD("/aerosync/quic-v2/already-complete", test_already_complete);
	ADD("/aerosync/quic-v2/bad-token", test_bad_token);
	ADD("/aerosync/quic-v2/bad-chunk-hash", test_bad_chunk_hash);
	ADD("/aerosync/quic-v2/protocol-errors", test_protocol_errors);
	ADD("/aerosync/quic-v2/resume-after-kill", test_resume_after_kill);
	ADD("/aerosync/quic-v2/many-files", test_many_files);
	ADD("/aerosync/quic-v2/api-mismatch", test_v1_refused);
	g_test_add("/aerosync/quic-v2/backpressure", Fixture, "hold", fixture_setup,
		   test_backpressure, fixture_teardown);
	g_test_add("/aerosync/quic-v2/no-v2", Fixture, "v1-only", fixture_setup, test_no_v2,
		   fixture_teardown);
#undef ADD
	return g_test_run();
}
