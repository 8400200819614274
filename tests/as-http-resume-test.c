/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "AsHttpResumeTest"

#include "config.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <sched.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#include "as-test-daemon.h"

#define AS_TEST_MIB (1024 * 1024)
/* the crash test: 48 chunks of 1 MiB, killed while chunk AS_TEST_CRASH_CHUNK is half sent */
#define AS_TEST_CRASH_SIZE	 (48 * AS_TEST_MIB)
#define AS_TEST_CRASH_CHUNK_SIZE AS_TEST_MIB
#define AS_TEST_CRASH_CHUNKS	 48
#define AS_TEST_CRASH_CHUNK	 20
/* the concurrency test: 16 chunks of 256 KiB, 4 in flight */
#define AS_TEST_CONC_CHUNK_SIZE (256 * 1024)
#define AS_TEST_CONC_CHUNKS	16
#define AS_TEST_CONC_SIZE	(AS_TEST_CONC_CHUNKS * AS_TEST_CONC_CHUNK_SIZE - 77)
#define AS_TEST_CONC_IN_FLIGHT	4
/* the disk-full test: a tmpfs smaller than the upload */
#define AS_TEST_TMPFS_OPTIONS "size=16m,mode=0700"
#define AS_TEST_TMPFS_SIZE    (16 * AS_TEST_MIB)
#define AS_TEST_FULL_UPLOAD   (32 * AS_TEST_MIB)
#define AS_TEST_SETTLE_MS     5000

static AsTestDaemon *
as_test_started(AsTestDaemon *d)
{
	g_autoptr(GError) error = NULL;
	as_test_daemon_start(d, &error);
	g_assert_no_error(error);
	return d;
}

static JsonObject *
as_test_obj(AsTestReply *reply, guint status)
{
	if (reply->status != status)
		g_error("expected HTTP %u, got %u: %s", status, reply->status,
			as_test_reply_text(reply));
	return as_test_reply_object(reply);
}

static void
as_test_assert_ranges(JsonObject *obj, const gchar *key, const guint *pairs, guint n_pairs)
{
	JsonArray *ranges = json_object_get_array_member(obj, key);
	g_assert_nonnull(ranges);
	if (json_array_get_length(ranges) != n_pairs) {
		g_autoptr(JsonNode) node = json_node_new(JSON_NODE_ARRAY);
		g_autofree gchar *text = NULL;
		json_node_set_array(node, ranges);
		text = json_to_string(node, FALSE);
		g_error("%s: expected %u ranges, got %s", key, n_pairs, text);
	}
	for (guint i = 0; i < n_pairs; i++) {
		JsonArray *pair = json_array_get_array_element(ranges, i);
		g_assert_cmpint(json_array_get_int_element(pair, 0), ==, pairs[2 * i]);
		g_assert_cmpint(json_array_get_int_element(pair, 1), ==, pairs[2 * i + 1]);
	}
}

static gboolean
as_test_staging_has_suffix(AsTestDaemon *d, const gchar *suffix)
{
	g_autoptr(GDir) dir = g_dir_open(as_test_daemon_get_staging_dir(d), 0, NULL);
	const gchar *name;
	while (dir != NULL && (name = g_dir_read_name(dir)) != NULL) {
		if (g_str_has_suffix(name, suffix))
			return TRUE;
	}
	return FALSE;
}

static gchar *
as_test_saved_path(AsTestDaemon *d, const gchar *rel)
{
	return g_build_filename(as_test_daemon_get_save_dir(d), rel, NULL);
}

static void
as_test_crash_status(AsTestDaemon *d, guint expected_done)
{
	g_autoptr(AsTestReply) reply = as_test_daemon_get(d, "/upload/status?task_id=crash");
	JsonObject *obj = as_test_obj(reply, SOUP_STATUS_OK);
	const guint received[] = {0, expected_done - 1};
	const guint missing[] = {expected_done, AS_TEST_CRASH_CHUNKS - 1};

	g_assert_false(json_object_get_boolean_member(obj, "complete"));
	g_assert_cmpstr(json_object_get_string_member(obj, "filename"), ==, "crash.bin");
	g_assert_cmpint(json_object_get_int_member(obj, "total_size"), ==, AS_TEST_CRASH_SIZE);
	g_assert_cmpint(json_object_get_int_member(obj, "chunk_size"), ==,
			AS_TEST_CRASH_CHUNK_SIZE);
	g_assert_cmpint(json_object_get_int_member(obj, "total_chunks"), ==, AS_TEST_CRASH_CHUNKS);
	g_assert_cmpint(json_object_get_int_member(obj, "received_chunks"), ==, expected_done);
	g_assert_cmpint(json_object_get_int_member(obj, "received_bytes"), ==,
			(gint64)expected_done * AS_TEST_CRASH_CHUNK_SIZE);
	as_test_assert_ranges(obj, "received", received, 1);
	as_test_assert_ranges(obj, "missing", missing, 1);
}

/* how many chunks the saved running hash of a task covers (the .hash record, see
 * as-chunk-store.c: magic "ASCHKHS1", then hashed_chunks as u32 little-endian), -1 if none */
static gint64
as_test_hashed_chunks(AsTestDaemon *d, const gchar *task_id)
{
	g_autofree gchar *name = g_strconcat(task_id, ".hash", NULL);
	g_autofree gchar *path = g_build_filename(as_test_daemon_get_staging_dir(d), name, NULL);
	g_autofree gchar *record = NULL;
	gsize len = 0;

	if (!g_file_get_contents(path, &record, &len, NULL) || len < 12 ||
	    memcmp(record, "ASCHKHS1", 8) != 0)
		return -1;
	return (guint8)record[8] | (guint8)record[9] << 8 | (guint8)record[10] << 16 |
	       (gint64)(guint8)record[11] << 24;
}

static gboolean
as_test_crash_hashed_cb(gpointer user_data)
{
	return as_test_hashed_chunks(user_data, "crash") == AS_TEST_CRASH_CHUNK;
}

/* SIGKILL in the middle of a chunk, restart on the same folders, send only what is missing */
static void
as_test_resume_crash(void)
{
	g_autoptr(AsTestDaemon) d = NULL;
	g_autofree gchar *src = NULL;
	g_autofree gchar *sha = NULL;
	g_autofree gchar *saved = NULL;
	g_autofree gchar *saved_sha = NULL;

	as_test_watchdog_arm();
	d = as_test_started(as_test_daemon_new());
	src = g_build_filename(as_test_daemon_get_root(d), "crash.src", NULL);
	sha = as_test_write_random_file(src, AS_TEST_CRASH_SIZE, 100);
	saved = as_test_saved_path(d, "crash.bin");

	for (guint32 i = 0; i < AS_TEST_CRASH_CHUNK; i++) {
		g_autoptr(AsTestReply) reply =
			as_test_daemon_send_chunk(d, "crash", "crash.bin", src, AS_TEST_CRASH_SIZE,
						  AS_TEST_CRASH_CHUNK_SIZE, i, TRUE);
		as_test_obj(reply, SOUP_STATUS_OK);
	}

	/* the whole-file hash follows the chunks and is saved as it goes */
	g_assert_true(as_test_wait_for(as_test_crash_hashed_cb, d, AS_TEST_SETTLE_MS));

	/* half of the next chunk, then the daemon dies */
	{
		g_autoptr(GSocketConnection) conn = as_test_daemon_raw_connect(d);
		g_autofree gchar *q =
			as_test_chunk_query("crash", "crash.bin", AS_TEST_CRASH_SIZE,
					    AS_TEST_CRASH_CHUNK_SIZE, AS_TEST_CRASH_CHUNK);
		g_autofree gchar *head =
			g_strdup_printf("POST %s HTTP/1.1\r\nHost: 127.0.0.1:%u\r\n"
					"Authorization: Bearer %s\r\n"
					"Content-Length: %u\r\n\r\n",
					q, as_test_daemon_get_port(d), as_test_daemon_get_token(d),
					AS_TEST_CRASH_CHUNK_SIZE);
		g_autoptr(GBytes) half = as_test_read_range(
			src, (guint64)AS_TEST_CRASH_CHUNK * AS_TEST_CRASH_CHUNK_SIZE,
			AS_TEST_CRASH_CHUNK_SIZE / 2);
		as_test_raw_write_all(conn, head, strlen(head));
		as_test_raw_write_all(conn, g_bytes_get_data(half, NULL), g_bytes_get_size(half));
		g_usleep(300 * G_TIME_SPAN_MILLISECOND);
		as_test_daemon_kill(d);
	}
	g_assert_false(g_file_test(saved, G_FILE_TEST_EXISTS));
	g_assert_true(as_test_staging_has_suffix(d, ".data"));
	g_assert_cmpint(as_test_hashed_chunks(d, "crash"), ==, AS_TEST_CRASH_CHUNK);

	/* a new daemon on the same folders knows exactly the finished chunks */
	as_test_started(d);
	as_test_crash_status(d, AS_TEST_CRASH_CHUNK);

	/* a clean restart keeps them too */
	g_assert_cmpint(as_test_daemon_stop(d), ==, 0);
	as_test_started(d);
	as_test_crash_status(d, AS_TEST_CRASH_CHUNK);

	/* the rest, last first */
	for (guint32 i = AS_TEST_CRASH_CHUNKS; i-- > AS_TEST_CRASH_CHUNK;) {
		g_autoptr(AsTestReply) reply =
			as_test_daemon_send_chunk(d, "crash", "crash.bin", src, AS_TEST_CRASH_SIZE,
						  AS_TEST_CRASH_CHUNK_SIZE, i, i % 2 == 0);
		JsonObject *obj = as_test_obj(reply, SOUP_STATUS_OK);
		g_assert_false(json_object_get_boolean_member(obj, "duplicate"));
		g_assert_cmpint(json_object_get_int_member(obj, "chunks_done"), ==,
				AS_TEST_CRASH_CHUNK + (AS_TEST_CRASH_CHUNKS - i));
	}
	{
		g_autofree gchar *q =
			g_strdup_printf("/upload/complete?task_id=crash&filename=crash.bin"
					"&total_chunks=%u&total_size=%u&sha256=%s",
					AS_TEST_CRASH_CHUNKS, AS_TEST_CRASH_SIZE, sha);
		g_autoptr(AsTestReply) reply = as_test_daemon_post_empty(d, q);
		JsonObject *obj = as_test_obj(reply, SOUP_STATUS_OK);
		g_assert_cmpstr(json_object_get_string_member(obj, "saved_as"), ==, "crash.bin");
		g_assert_cmpstr(json_object_get_string_member(obj, "sha256"), ==, sha);
		g_assert_cmpint(json_object_get_int_member(obj, "size"), ==, AS_TEST_CRASH_SIZE);
	}
	saved_sha = as_test_file_sha256(saved);
	g_assert_cmpstr(saved_sha, ==, sha);
	g_assert_false(as_test_staging_has_suffix(d, ".data"));
	g_assert_false(as_test_staging_has_suffix(d, ".map"));
	g_assert_false(as_test_staging_has_suffix(d, ".hash"));

	/* after completion a restart still answers a retried complete from the tombstone */
	g_assert_cmpint(as_test_daemon_stop(d), ==, 0);
	as_test_started(d);
	{
		g_autofree gchar *q = g_strdup_printf(
			"/upload/complete?task_id=crash&filename=crash.bin&sha256=%s", sha);
		g_autoptr(AsTestReply) reply = as_test_daemon_post_empty(d, q);
		JsonObject *obj = as_test_obj(reply, SOUP_STATUS_OK);
		g_assert_cmpstr(json_object_get_string_member(obj, "saved_as"), ==, "crash.bin");
	}
	{
		g_autoptr(GDir) dir = g_dir_open(as_test_daemon_get_save_dir(d), 0, NULL);
		const gchar *name;
		guint files = 0;
		while ((name = g_dir_read_name(dir)) != NULL) {
			if (g_strcmp0(name, ".aerosync") != 0)
				files++;
		}
		g_assert_cmpuint(files, ==, 1);
	}
	g_assert_cmpint(as_test_daemon_stop(d), ==, 0);
}

/* a small async pump: sends chunks in a given order, at most N at once */

typedef struct {
	AsTestDaemon *daemon;
	const gchar *task_id;
	const gchar *filename;
	const gchar *src;
	guint64 total_size;
	guint64 chunk_size;
	const guint32 *order;
	guint n_order;
	guint next;
	guint in_flight;
	guint max_in_flight;
	guint max_seen_in_flight;
	guint done;
	GPtrArray *replies; /* (element-type JsonObject) */
} AsTestPump;

typedef struct {
	AsTestPump *pump;
	SoupMessage *msg;
	guint32 index;
} AsTestPumpRequest;

static void as_test_pump_fill(AsTestPump *pump);

static void
as_test_pump_done_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	AsTestPumpRequest *req = user_data;
	AsTestPump *pump = req->pump;
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) body =
		soup_session_send_and_read_finish(SOUP_SESSION(source), res, &error);
	g_autoptr(JsonParser) parser = json_parser_new();
	JsonObject *obj;

	g_assert_no_error(error);
	if (soup_message_get_status(req->msg) != SOUP_STATUS_OK)
		g_error("chunk %u: HTTP %u: %.*s", req->index, soup_message_get_status(req->msg),
			(int)g_bytes_get_size(body), (const gchar *)g_bytes_get_data(body, NULL));
	g_assert_true(json_parser_load_from_data(parser, g_bytes_get_data(body, NULL),
						 (gssize)g_bytes_get_size(body), NULL));
	obj = json_node_get_object(json_parser_get_root(parser));
	g_assert_cmpint(json_object_get_int_member(obj, "chunk_index"), ==, req->index);
	g_ptr_array_add(pump->replies, json_object_ref(obj));
	g_object_unref(req->msg);
	g_free(req);
	pump->in_flight--;
	pump->done++;
	as_test_pump_fill(pump);
}

static void
as_test_pump_fill(AsTestPump *pump)
{
	while (pump->in_flight < pump->max_in_flight && pump->next < pump->n_order) {
		AsTestPumpRequest *req = g_new0(AsTestPumpRequest, 1);
		guint32 index = pump->order[pump->next++];
		guint64 offset = (guint64)index * pump->chunk_size;
		guint64 length = MIN(pump->chunk_size, pump->total_size - offset);
		g_autofree gchar *q = as_test_chunk_query(
			pump->task_id, pump->filename, pump->total_size, pump->chunk_size, index);
		g_autoptr(GBytes) data = as_test_read_range(pump->src, offset, length);
		g_autofree gchar *hex = as_test_bytes_sha256(data);

		req->pump = pump;
		req->index = index;
		req->msg = as_test_daemon_message(pump->daemon, SOUP_METHOD_POST, q,
						  as_test_daemon_get_token(pump->daemon));
		soup_message_headers_replace(soup_message_get_request_headers(req->msg),
					     "X-Chunk-Hash", hex);
		soup_message_set_request_body_from_bytes(req->msg, "application/octet-stream",
							 data);
		soup_session_send_and_read_async(as_test_daemon_get_session(pump->daemon), req->msg,
						 G_PRIORITY_DEFAULT, NULL, as_test_pump_done_cb,
						 req);
		pump->in_flight++;
		pump->max_seen_in_flight = MAX(pump->max_seen_in_flight, pump->in_flight);
	}
}

static void
as_test_pump_run(AsTestPump *pump)
{
	pump->replies = g_ptr_array_new_with_free_func((GDestroyNotify)json_object_unref);
	as_test_pump_fill(pump);
	while (pump->done < pump->n_order)
		g_main_context_iteration(NULL, TRUE);
}

static gint64
as_test_received_chunks(AsTestDaemon *d, const gchar *task_id)
{
	g_autofree gchar *q = g_strdup_printf("/upload/status?task_id=%s", task_id);
	g_autoptr(AsTestReply) reply = as_test_daemon_get(d, q);
	return json_object_get_int_member(as_test_obj(reply, SOUP_STATUS_OK), "received_chunks");
}

/* out of order, 4 at once, with duplicates */
static void
as_test_resume_concurrent(void)
{
	g_autoptr(AsTestDaemon) d = NULL;
	g_autofree gchar *src = NULL;
	g_autofree gchar *sha = NULL;
	const guint32 first_half[] = {13, 2, 9, 0, 15, 6, 11, 4};
	const guint32 second_half[] = {1, 14, 3, 8, 12, 5, 10, 7};
	const guint32 dups[] = {2, 2, 9, 13};
	AsTestPump pump = {0};

	as_test_watchdog_arm();
	d = as_test_started(as_test_daemon_new());
	src = g_build_filename(as_test_daemon_get_root(d), "conc.src", NULL);
	sha = as_test_write_random_file(src, AS_TEST_CONC_SIZE, 200);

	pump.daemon = d;
	pump.task_id = "conc";
	pump.filename = "conc.bin";
	pump.src = src;
	pump.total_size = AS_TEST_CONC_SIZE;
	pump.chunk_size = AS_TEST_CONC_CHUNK_SIZE;
	pump.max_in_flight = AS_TEST_CONC_IN_FLIGHT;
	pump.order = first_half;
	pump.n_order = G_N_ELEMENTS(first_half);
	as_test_pump_run(&pump);
	g_assert_cmpuint(pump.max_seen_in_flight, ==, AS_TEST_CONC_IN_FLIGHT);
	g_clear_pointer(&pump.replies, g_ptr_array_unref);
	g_assert_cmpint(as_test_received_chunks(d, "conc"), ==, 8);
	{
		g_autoptr(AsTestReply) reply = as_test_daemon_get(d, "/upload/status?task_id=conc");
		JsonObject *obj = as_test_obj(reply, SOUP_STATUS_OK);
		const guint received[] = {0, 0, 2, 2, 4, 4, 6, 6, 9, 9, 11, 11, 13, 13, 15, 15};
		const guint missing[] = {1, 1, 3, 3, 5, 5, 7, 8, 10, 10, 12, 12, 14, 14};
		as_test_assert_ranges(obj, "received", received, 8);
		as_test_assert_ranges(obj, "missing", missing, 7);
	}

	/* duplicates, some of them at the same time: counted once, reported as such */
	pump.order = dups;
	pump.n_order = G_N_ELEMENTS(dups);
	pump.next = pump.done = 0;
	as_test_pump_run(&pump);
	for (guint i = 0; i < pump.replies->len; i++) {
		JsonObject *obj = g_ptr_array_index(pump.replies, i);
		g_assert_cmpint(json_object_get_int_member(obj, "chunks_done"), ==, 8);
	}
	g_clear_pointer(&pump.replies, g_ptr_array_unref);
	g_assert_cmpint(as_test_received_chunks(d, "conc"), ==, 8);

	/* complete too early: 409, then carry on */
	{
		g_autoptr(AsTestReply) reply = as_test_daemon_post_empty(
			d, "/upload/complete?task_id=conc&filename=conc.bin");
		as_test_obj(reply, SOUP_STATUS_CONFLICT);
	}
	pump.order = second_half;
	pump.n_order = G_N_ELEMENTS(second_half);
	pump.next = pump.done = 0;
	as_test_pump_run(&pump);
	{
		guint all_done = 0;
		for (guint i = 0; i < pump.replies->len; i++) {
			JsonObject *obj = g_ptr_array_index(pump.replies, i);
			if (json_object_get_boolean_member(obj, "all_chunks_done"))
				all_done++;
		}
		/* the last reply says so; concurrent ones may too */
		g_assert_cmpuint(all_done, >=, 1);
	}
	g_clear_pointer(&pump.replies, g_ptr_array_unref);
	g_assert_cmpint(as_test_received_chunks(d, "conc"), ==, AS_TEST_CONC_CHUNKS);

	{
		g_autofree gchar *q = g_strdup_printf(
			"/upload/complete?task_id=conc&filename=conc.bin&total_chunks=%u"
			"&total_size=%u&sha256=%s",
			AS_TEST_CONC_CHUNKS, AS_TEST_CONC_SIZE, sha);
		g_autoptr(AsTestReply) reply = as_test_daemon_post_empty(d, q);
		g_autofree gchar *saved = as_test_saved_path(d, "conc.bin");
		g_autofree gchar *saved_sha = NULL;
		as_test_obj(reply, SOUP_STATUS_OK);
		saved_sha = as_test_file_sha256(saved);
		g_assert_cmpstr(saved_sha, ==, sha);
	}
	g_assert_cmpint(as_test_daemon_stop(d), ==, 0);
}

/* chunk 0 last and again: the others survive; an existing file of that name survives too */
static void
as_test_resume_chunk0_and_existing(void)
{
	g_autoptr(AsTestDaemon) d = NULL;
	g_autofree gchar *src = NULL;
	g_autofree gchar *sha = NULL;
	g_autofree gchar *existing = NULL;
	g_autofree gchar *existing_sha = NULL;
	const guint64 chunk_size = 64 * 1024;
	const guint64 total = 8 * chunk_size;
	const gchar *old_text = "precious data the 0.x receiver would have clobbered";

	as_test_watchdog_arm();
	d = as_test_started(as_test_daemon_new());
	src = g_build_filename(as_test_daemon_get_root(d), "zero.src", NULL);
	sha = as_test_write_random_file(src, total, 300);
	existing = as_test_saved_path(d, "same name.bin");
	g_assert_true(g_file_set_contents(existing, old_text, -1, NULL));
	existing_sha = as_test_file_sha256(existing);

	for (guint32 i = 1; i < 8; i++) {
		g_autoptr(AsTestReply) reply = as_test_daemon_send_chunk(
			d, "zero", "same name.bin", src, total, chunk_size, i, TRUE);
		as_test_obj(reply, SOUP_STATUS_OK);
	}
	/* the old file is untouched while the task runs */
	{
		g_autofree gchar *now_sha = as_test_file_sha256(existing);
		g_assert_cmpstr(now_sha, ==, existing_sha);
	}
	for (guint i = 0; i < 3; i++) {
		g_autoptr(AsTestReply) reply = as_test_daemon_send_chunk(
			d, "zero", "same name.bin", src, total, chunk_size, 0, i != 1);
		JsonObject *obj = as_test_obj(reply, SOUP_STATUS_OK);
		g_assert_cmpint(json_object_get_int_member(obj, "chunks_done"), ==, 8);
		g_assert_true(json_object_get_boolean_member(obj, "all_chunks_done"));
		g_assert_cmpint(json_object_get_boolean_member(obj, "duplicate"), ==, i > 0);
	}
	g_assert_cmpint(as_test_received_chunks(d, "zero"), ==, 8);
	{
		g_autofree gchar *q = g_strdup_printf(
			"/upload/complete?task_id=zero&filename=same%%20name.bin"
			"&total_chunks=8&total_size=%" G_GUINT64_FORMAT "&sha256=%s",
			total, sha);
		g_autoptr(AsTestReply) reply = as_test_daemon_post_empty(d, q);
		JsonObject *obj = as_test_obj(reply, SOUP_STATUS_OK);
		g_autofree gchar *saved = as_test_saved_path(d, "same name_1.bin");
		g_autofree gchar *saved_sha = NULL;
		g_autofree gchar *old_sha = NULL;
		g_assert_cmpstr(json_object_get_string_member(obj, "saved_as"), ==,
				"same name_1.bin");
		g_assert_cmpstr(json_object_get_string_member(obj, "filename"), ==,
				"same name.bin");
		saved_sha = as_test_file_sha256(saved);
		g_assert_cmpstr(saved_sha, ==, sha);
		old_sha = as_test_file_sha256(existing);
		g_assert_cmpstr(old_sha, ==, existing_sha);
	}
	/* the status of the finished task names the real file */
	{
		g_autoptr(AsTestReply) reply = as_test_daemon_get(d, "/upload/status?task_id=zero");
		JsonObject *obj = as_test_obj(reply, SOUP_STATUS_OK);
		g_assert_true(json_object_get_boolean_member(obj, "complete"));
		g_assert_cmpstr(json_object_get_string_member(obj, "saved_as"), ==,
				"same name_1.bin");
	}
	/* after a finished task a chunk for it does not start it over silently */
	{
		g_autoptr(AsTestReply) reply = as_test_daemon_send_chunk(
			d, "zero", "same name.bin", src, total, chunk_size, 3, TRUE);
		g_autofree gchar *third = as_test_saved_path(d, "same name_2.bin");
		g_test_message("chunk after completion -> %u %s", reply->status,
			       as_test_reply_text(reply));
		g_assert_false(g_file_test(third, G_FILE_TEST_EXISTS));
	}
	g_assert_cmpint(as_test_daemon_stop(d), ==, 0);
}

/* half of a single PUT, then the daemon goes away */
static void
as_test_half_put(AsTestDaemon *d, GSocketConnection *conn, GBytes *half, guint declared)
{
	g_autofree gchar *head =
		g_strdup_printf("PUT /upload/single.bin HTTP/1.1\r\nHost: 127.0.0.1:%u\r\n"
				"Authorization: Bearer %s\r\nContent-Length: %u\r\n\r\n",
				as_test_daemon_get_port(d), as_test_daemon_get_token(d), declared);
	as_test_raw_write_all(conn, head, strlen(head));
	as_test_raw_write_all(conn, g_bytes_get_data(half, NULL), g_bytes_get_size(half));
	g_usleep(300 * G_TIME_SPAN_MILLISECOND);
	g_assert_cmpuint(as_test_count_staging_temps(d), ==, 1);
}

/*
 * A single (not chunked) upload cannot be resumed, so its temp is garbage once the daemon
 * that wrote it is gone: a stop removes it, and so does the start after a crash, or every
 * crash would hide up to --max-size bytes in the staging folder for a week.
 */
static void
as_test_resume_single_temp(void)
{
	g_autoptr(AsTestDaemon) d = NULL;
	g_autoptr(GBytes) half = as_test_random_bytes(AS_TEST_MIB, 600);
	g_autofree gchar *saved = NULL;

	as_test_watchdog_arm();
	d = as_test_started(as_test_daemon_new());
	saved = as_test_saved_path(d, "single.bin");

	/* SIGKILL, then a new daemon */
	{
		g_autoptr(GSocketConnection) conn = as_test_daemon_raw_connect(d);
		as_test_half_put(d, conn, half, 4 * AS_TEST_MIB);
		as_test_daemon_kill(d);
	}
	g_assert_cmpuint(as_test_count_staging_temps(d), ==, 1);
	as_test_started(d);
	g_assert_cmpuint(as_test_count_staging_temps(d), ==, 0);
	g_assert_false(g_file_test(saved, G_FILE_TEST_EXISTS));

	/* SIGTERM */
	{
		g_autoptr(GSocketConnection) conn = as_test_daemon_raw_connect(d);
		as_test_half_put(d, conn, half, 4 * AS_TEST_MIB);
		g_assert_cmpint(as_test_daemon_stop(d), ==, 0);
		g_assert_cmpuint(as_test_count_staging_temps(d), ==, 0);
	}
	as_test_started(d);
	g_assert_false(g_file_test(saved, G_FILE_TEST_EXISTS));
	g_assert_cmpint(as_test_daemon_stop(d), ==, 0);
}

/* -------- a retried complete while the task is still in memory -------- */

static guint
as_test_history_count(AsTestDaemon *d, const gchar *filename)
{
	g_autoptr(GPtrArray) lines = as_test_read_jsonl(as_test_daemon_get_history_path(d));
	guint n = 0;

	for (guint i = 0; i < lines->len; i++) {
		JsonObject *obj = g_ptr_array_index(lines, i);
		if (g_strcmp0(json_object_get_string_member_with_default(obj, "filename", ""),
			      filename) == 0)
			n++;
	}
	return n;
}

/*
 * A complete whose reply was lost is retried. While anything still holds the task (here a
 * duplicate chunk whose body is half sent; in the daemon also its hash worker), the retry
 * is answered by the live task instead of the tombstone: it must give the same answer and
 * must not announce the file a second time.
 */
static void
as_test_resume_complete_retry_live(void)
{
	g_autoptr(AsTestDaemon) d = NULL;
	g_autoptr(GSocketConnection) conn = NULL;
	g_autoptr(AsTestReply) dup_reply = NULL;
	g_autofree gchar *src = NULL;
	g_autofree gchar *sha = NULL;
	g_autofree gchar *q = NULL;
	g_autofree gchar *head = NULL;
	g_autofree gchar *complete = NULL;
	const guint32 chunk_size = 64 * 1024, chunks = 3;
	const guint64 size = 3 * 64 * 1024 - 5;

	as_test_watchdog_arm();
	d = as_test_started(as_test_daemon_new());
	src = g_build_filename(as_test_daemon_get_root(d), "retry.src", NULL);
	sha = as_test_write_random_file(src, size, 800);
	for (guint32 i = 0; i < chunks; i++) {
		g_autoptr(AsTestReply) reply = as_test_daemon_send_chunk(
			d, "retry", "retry.bin", src, size, chunk_size, i, TRUE);
		as_test_obj(reply, SOUP_STATUS_OK);
	}

	/* a duplicate of chunk 0, half sent: its request holds the task */
	conn = as_test_daemon_raw_connect(d);
	q = as_test_chunk_query("retry", "retry.bin", size, chunk_size, 0);
	head = g_strdup_printf("POST %s HTTP/1.1\r\nHost: 127.0.0.1:%u\r\n"
			       "Authorization: Bearer %s\r\nContent-Length: %u\r\n\r\n",
			       q, as_test_daemon_get_port(d), as_test_daemon_get_token(d),
			       chunk_size);
	as_test_raw_write_all(conn, head, strlen(head));
	{
		g_autoptr(GBytes) half = as_test_read_range(src, 0, chunk_size / 2);
		as_test_raw_write_all(conn, g_bytes_get_data(half, NULL), chunk_size / 2);
	}
	g_usleep(200 * G_TIME_SPAN_MILLISECOND);

	complete =
		g_strdup_printf("/upload/complete?task_id=retry&filename=retry.bin&sha256=%s", sha);
	for (guint i = 0; i < 2; i++) {
		g_autoptr(AsTestReply) reply = as_test_daemon_post_empty(d, complete);
		JsonObject *obj = as_test_obj(reply, SOUP_STATUS_OK);
		g_assert_cmpstr(json_object_get_string_member(obj, "saved_as"), ==, "retry.bin");
		g_assert_cmpstr(json_object_get_string_member(obj, "sha256"), ==, sha);
	}
	g_assert_cmpuint(as_test_history_count(d, "retry.bin"), ==, 1);

	/* the duplicate ends normally */
	{
		g_autoptr(GBytes) rest = as_test_read_range(src, chunk_size / 2, chunk_size / 2);
		as_test_raw_write_all(conn, g_bytes_get_data(rest, NULL), chunk_size / 2);
	}
	dup_reply = as_test_raw_read_reply(conn);
	g_assert_true(json_object_get_boolean_member(as_test_obj(dup_reply, SOUP_STATUS_OK),
						     "duplicate"));
	g_assert_cmpuint(as_test_history_count(d, "retry.bin"), ==, 1);
	g_assert_cmpint(as_test_daemon_stop(d), ==, 0);
}

/* -------- a sender that dies mid-chunk and comes straight back -------- */

/*
 * The first POST of a chunk sends half its body; then its sender is gone: either its
 * connection closes (a killed process), or it just stops (a network that went away: the
 * receiver sees nothing). The same chunk, posted again at once on a new connection, takes the
 * chunk over: accepted, not 409, and the file verifies. The dead request's end, if it comes,
 * changes nothing. @chunk_size picks the path: below 1 MiB libsoup reads the body, from 1 MiB
 * on the pump does.
 */
static void
as_test_resume_takeover_one(guint32 chunk_size, gboolean close_first)
{
	g_autoptr(AsTestDaemon) d = NULL;
	g_autoptr(GSocketConnection) dead = NULL;
	g_autofree gchar *src = NULL;
	g_autofree gchar *sha = NULL;
	g_autofree gchar *q = NULL;
	g_autofree gchar *head = NULL;
	g_autofree gchar *complete = NULL;
	g_autofree gchar *saved = NULL;
	const guint32 chunks = 3;
	const guint64 size = (guint64)chunks * chunk_size - 5;
	gint64 start_us;

	d = as_test_started(as_test_daemon_new());
	src = g_build_filename(as_test_daemon_get_root(d), "takeover.src", NULL);
	sha = as_test_write_random_file(src, size, 900 + chunk_size + close_first);
	{
		g_autoptr(AsTestReply) reply = as_test_daemon_send_chunk(
			d, "takeover", "takeover.bin", src, size, chunk_size, 0, FALSE);
		as_test_obj(reply, SOUP_STATUS_OK);
	}

	/* chunk 1, half sent, then the sender dies */
	dead = as_test_daemon_raw_connect(d);
	q = as_test_chunk_query("takeover", "takeover.bin", size, chunk_size, 1);
	head = g_strdup_printf("POST %s HTTP/1.1\r\nHost: 127.0.0.1:%u\r\n"
			       "Authorization: Bearer %s\r\nContent-Length: %u\r\n\r\n",
			       q, as_test_daemon_get_port(d), as_test_daemon_get_token(d),
			       chunk_size);
	as_test_raw_write_all(dead, head, strlen(head));
	{
		g_autoptr(GBytes) half = as_test_read_range(src, chunk_size, chunk_size / 2);
		as_test_raw_write_all(dead, g_bytes_get_data(half, NULL), chunk_size / 2);
	}
	/* let the daemon take the half in, so the request holds the chunk */
	g_usleep(200 * G_TIME_SPAN_MILLISECOND);
	if (close_first)
		g_clear_object(&dead);

	/* the same chunk again at once: accepted, fresh bytes (not a duplicate), no wait */
	start_us = g_get_monotonic_time();
	{
		g_autoptr(AsTestReply) reply = as_test_daemon_send_chunk(
			d, "takeover", "takeover.bin", src, size, chunk_size, 1, TRUE);
		JsonObject *obj = as_test_obj(reply, SOUP_STATUS_OK);
		g_assert_false(json_object_get_boolean_member(obj, "duplicate"));
	}
	g_assert_cmpint(g_get_monotonic_time() - start_us, <, 5 * G_USEC_PER_SEC);

	/* the dead request's late bytes and end change nothing */
	if (dead != NULL) {
		g_autoptr(GBytes) rest =
			as_test_read_range(src, chunk_size + chunk_size / 2, chunk_size / 2);
		g_autoptr(AsTestReply) late = NULL;
		as_test_raw_write_all(dead, g_bytes_get_data(rest, NULL), chunk_size / 2);
		late = as_test_raw_read_reply(dead);
		as_test_obj(late, SOUP_STATUS_CONFLICT);
	}
	{
		g_autoptr(AsTestReply) reply = as_test_daemon_send_chunk(
			d, "takeover", "takeover.bin", src, size, chunk_size, 2, TRUE);
		as_test_obj(reply, SOUP_STATUS_OK);
	}
	complete = g_strdup_printf(
		"/upload/complete?task_id=takeover&filename=takeover.bin&sha256=%s", sha);
	{
		g_autoptr(AsTestReply) reply = as_test_daemon_post_empty(d, complete);
		JsonObject *obj = as_test_obj(reply, SOUP_STATUS_OK);
		g_assert_cmpstr(json_object_get_string_member(obj, "sha256"), ==, sha);
	}
	saved = g_build_filename(as_test_daemon_get_save_dir(d), "takeover.bin", NULL);
	{
		g_autofree gchar *got = as_test_file_sha256(saved);
		g_assert_cmpstr(got, ==, sha);
	}
	g_assert_cmpint(as_test_daemon_stop(d), ==, 0);
}

static void
as_test_resume_takeover(void)
{
	as_test_watchdog_arm();
	/* libsoup's body path, and the pump's */
	as_test_resume_takeover_one(64 * 1024, TRUE);
	as_test_resume_takeover_one(64 * 1024, FALSE);
	as_test_resume_takeover_one(AS_TEST_MIB, TRUE);
	as_test_resume_takeover_one(AS_TEST_MIB, FALSE);
}

/* -------- a slow sender through the body pump -------- */

/*
 * The pump sleeps until a low-water mark of body bytes is queued; a sender trickling below
 * that mark, with pauses longer than the pump's wait, must still get through (and a pause
 * is not mistaken for the end), and the file must verify.
 */
static void
as_test_resume_slow_sender(void)
{
	g_autoptr(AsTestDaemon) d = NULL;
	g_autoptr(GBytes) body = as_test_random_bytes(2 * AS_TEST_MIB + 333, 700);
	g_autoptr(GSocketConnection) conn = NULL;
	g_autoptr(AsTestReply) reply = NULL;
	g_autofree gchar *sha256 = as_test_bytes_sha256(body);
	g_autofree gchar *head = NULL;
	g_autofree gchar *saved = NULL;
	g_autofree gchar *saved_sha256 = NULL;
	const guint8 *data = g_bytes_get_data(body, NULL);
	gsize len = g_bytes_get_size(body);
	gsize pos = 0;

	as_test_watchdog_arm();
	d = as_test_started(as_test_daemon_new());
	saved = as_test_saved_path(d, "slow.bin");
	conn = as_test_daemon_raw_connect(d);
	head = g_strdup_printf("PUT /upload/slow.bin HTTP/1.1\r\nHost: 127.0.0.1:%u\r\n"
			       "Authorization: Bearer %s\r\nX-File-Hash: %s\r\n"
			       "Content-Length: %" G_GSIZE_FORMAT "\r\n\r\n",
			       as_test_daemon_get_port(d), as_test_daemon_get_token(d), sha256,
			       len);
	as_test_raw_write_all(conn, head, strlen(head));

	/* a burst, then a trickle with pauses longer than AS_HTTP_PUMP_WAIT_S, then the rest */
	as_test_raw_write_all(conn, data, AS_TEST_MIB);
	pos = AS_TEST_MIB;
	for (guint i = 0; i < 3; i++) {
		as_test_raw_write_all(conn, data + pos, 1000);
		pos += 1000;
		g_usleep(1300 * G_TIME_SPAN_MILLISECOND);
	}
	as_test_raw_write_all(conn, data + pos, len - pos - 10);
	g_usleep(1300 * G_TIME_SPAN_MILLISECOND);
	as_test_raw_write_all(conn, data + len - 10, 10);

	reply = as_test_raw_read_reply(conn);
	as_test_obj(reply, SOUP_STATUS_OK);
	saved_sha256 = as_test_file_sha256(saved);
	g_assert_cmpstr(saved_sha256, ==, sha256);
	g_assert_cmpint(as_test_daemon_stop(d), ==, 0);
}

/* -------- disk full, on a real small file system -------- */

static gboolean
as_test_no_temps_cb(gpointer user_data)
{
	return as_test_count_staging_temps(AS_TEST_DAEMON(user_data)) == 0;
}

static void
as_test_resume_disk_full(void)
{
	g_autoptr(AsTestDaemon) d = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *mnt = NULL;
	g_autofree gchar *src = NULL;
	g_autofree gchar *saved = NULL;

	if (geteuid() != 0) {
		g_test_skip("mounting a tmpfs needs root");
		return;
	}
	as_test_watchdog_arm();
	mnt = g_dir_make_tmp("as-e2e-tmpfs-XXXXXX", &error);
	g_assert_no_error(error);
	if (mount("tmpfs", mnt, "tmpfs", MS_NOSUID | MS_NODEV, AS_TEST_TMPFS_OPTIONS) != 0) {
		g_autofree gchar *msg =
			g_strdup_printf("cannot mount a tmpfs: %s", g_strerror(errno));
		g_rmdir(mnt);
		g_test_skip(msg);
		return;
	}
	d = as_test_daemon_new();
	as_test_daemon_set_save_to(d, mnt);
	as_test_started(d);
	src = g_build_filename(as_test_daemon_get_root(d), "full.src", NULL);
	g_free(as_test_write_random_file(src, AS_TEST_FULL_UPLOAD, 400));
	saved = g_build_filename(mnt, "full.bin", NULL);

	/* the health figures are the tmpfs's */
	{
		g_autoptr(AsTestReply) reply = as_test_daemon_get(d, "/health");
		JsonObject *obj = as_test_obj(reply, SOUP_STATUS_OK);
		g_assert_cmpint(json_object_get_int_member(obj, "total_bytes"), ==,
				AS_TEST_TMPFS_SIZE);
	}
	/* a single upload that does not fit */
	{
		g_autoptr(SoupMessage) msg = as_test_daemon_message(
			d, SOUP_METHOD_PUT, "/upload/full.bin", as_test_daemon_get_token(d));
		g_autoptr(AsTestReply) reply = as_test_daemon_send_file(d, msg, src);
		JsonObject *obj = as_test_obj(reply, SOUP_STATUS_INSUFFICIENT_STORAGE);
		const gchar *text = json_object_get_string_member(obj, "error");
		g_test_message("507: %s", text);
		g_assert_nonnull(text);
		g_assert_cmpuint(strlen(text), >, 0);
		g_assert_false(g_file_test(saved, G_FILE_TEST_EXISTS));
		g_assert_true(as_test_wait_for(as_test_no_temps_cb, d, AS_TEST_SETTLE_MS));
	}
	/* the space is free again and the daemon fine */
	{
		g_autoptr(AsTestReply) reply = as_test_daemon_get(d, "/health");
		JsonObject *obj = as_test_obj(reply, SOUP_STATUS_OK);
		g_assert_cmpint(json_object_get_int_member(obj, "free_bytes"), >,
				AS_TEST_TMPFS_SIZE / 2);
	}
	{
		g_autoptr(GBytes) small = as_test_random_bytes(4096, 401);
		g_autoptr(AsTestReply) reply =
			as_test_daemon_put_bytes(d, "small.bin", small, NULL);
		as_test_obj(reply, SOUP_STATUS_OK);
	}
	/* a chunked task that cannot fit fails on its first chunk, not at the end */
	{
		g_autoptr(AsTestReply) reply =
			as_test_daemon_send_chunk(d, "fulltask", "full-chunked.bin", src,
						  AS_TEST_FULL_UPLOAD, AS_TEST_MIB, 0, TRUE);
		g_autofree gchar *path = g_build_filename(mnt, "full-chunked.bin", NULL);
		as_test_obj(reply, SOUP_STATUS_INSUFFICIENT_STORAGE);
		g_assert_false(g_file_test(path, G_FILE_TEST_EXISTS));
		g_assert_false(as_test_staging_has_suffix(d, ".data"));
	}
	{
		g_autoptr(AsTestReply) reply = as_test_daemon_get(d, "/health");
		as_test_obj(reply, SOUP_STATUS_OK);
	}
	g_assert_cmpint(as_test_daemon_stop(d), ==, 0);
	g_assert_cmpint(umount2(mnt, MNT_DETACH), ==, 0);
	g_assert_cmpint(g_rmdir(mnt), ==, 0);
}

/*
 * As root, mount in a private namespace of our own (inherited by the daemons we start): a
 * tmpfs left behind by a failed assertion then vanishes with the process, and nothing
 * propagates to the host. Done before any thread exists.
 */
static void
as_test_private_mounts(void)
{
	if (geteuid() != 0)
		return;
	if (unshare(CLONE_NEWNS) != 0) {
		g_printerr("# no private mount namespace (%s): mounting in the host's\n",
			   g_strerror(errno));
		return;
	}
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
		g_printerr("# cannot make / private: %s\n", g_strerror(errno));
}

int
main(int argc, char **argv)
{
	as_test_private_mounts();
	as_test_init(&argc, &argv);
	g_test_add_func("/aerosync/http-resume/crash", as_test_resume_crash);
	g_test_add_func("/aerosync/http-resume/concurrent", as_test_resume_concurrent);
	g_test_add_func("/aerosync/http-resume/chunk0-and-existing",
			as_test_resume_chunk0_and_existing);
	g_test_add_func("/aerosync/http-resume/single-temp", as_test_resume_single_temp);
	g_test_add_func("/aerosync/http-resume/disk-full", as_test_resume_disk_full);
	g_test_add_func("/aerosync/http-resume/slow-sender", as_test_resume_slow_sender);
	g_test_add_func("/aerosync/http-resume/takeover", as_test_resume_takeover);
	g_test_add_func("/aerosync/http-resume/complete-retry-live",
			as_test_resume_complete_retry_live);
	return g_test_run();
}
