/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "AsJsonlLogTest"

#include "config.h"

#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>

#include "as-audit.h"
#include "as-error.h"
#include "as-history.h"
#include "as-jsonl-log.h"

typedef struct {
	gchar *tmpdir;
	gchar *path; /* inside a subdirectory that does not exist yet */
} AsTestFixture;

static void
as_test_fixture_setup(AsTestFixture *fx, gconstpointer user_data)
{
	g_autoptr(GError) error = NULL;
	fx->tmpdir = g_dir_make_tmp("as-jsonl-XXXXXX", &error);
	g_assert_no_error(error);
	fx->path = g_build_filename(fx->tmpdir, "state", "history.jsonl", NULL);
}

static void
as_test_rm_rf(const gchar *path)
{
	g_autoptr(GDir) dir = g_dir_open(path, 0, NULL);
	if (dir != NULL) {
		const gchar *name;
		while ((name = g_dir_read_name(dir)) != NULL) {
			g_autofree gchar *child = g_build_filename(path, name, NULL);
			as_test_rm_rf(child);
		}
		g_assert_cmpint(g_rmdir(path), ==, 0);
	} else {
		g_assert_cmpint(g_unlink(path), ==, 0);
	}
}

static void
as_test_fixture_teardown(AsTestFixture *fx, gconstpointer user_data)
{
	as_test_rm_rf(fx->tmpdir);
	g_free(fx->tmpdir);
	g_free(fx->path);
}

static JsonObject *
as_test_record_new(guint thread, guint n)
{
	JsonObject *obj = json_object_new();
	json_object_set_int_member(obj, "thread", thread);
	json_object_set_int_member(obj, "n", n);
	/* long enough that torn or interleaved writes would show */
	json_object_set_string_member(
		obj, "pad",
		"abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz"
		"0123456789abcdefghijklmnopqrstuvwxyz0123456789\xe4\xbd\xa0\"\n");
	return obj;
}

static void
as_test_append(AsJsonlLog *log, JsonObject *obj)
{
	g_autoptr(GError) error = NULL;
	g_assert_true(as_jsonl_log_append(log, obj, &error));
	g_assert_no_error(error);
	json_object_unref(obj);
}

static void
as_test_write_raw(const gchar *path, const gchar *text)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *old = NULL;
	g_autofree gchar *joined = NULL;
	g_file_get_contents(path, &old, NULL, NULL);
	joined = g_strconcat(old != NULL ? old : "", text, NULL);
	g_assert_true(
		g_file_set_contents_full(path, joined, -1, G_FILE_SET_CONTENTS_NONE, 0600, &error));
	g_assert_no_error(error);
}

#define AS_TEST_THREADS		 4
#define AS_TEST_LINES_PER_THREAD 1000

typedef struct {
	AsJsonlLog *log;
	guint thread;
} AsTestWriter;

static gpointer
as_test_writer_thread(gpointer user_data)
{
	AsTestWriter *writer = user_data;
	for (guint i = 0; i < AS_TEST_LINES_PER_THREAD; i++)
		as_test_append(writer->log, as_test_record_new(writer->thread, i));
	return NULL;
}

static void
as_jsonl_threads_func(AsTestFixture *fx, gconstpointer user_data)
{
	/* two objects on one file stand in for two processes: separate descriptors */
	g_autoptr(AsJsonlLog) log_a = as_jsonl_log_new(fx->path);
	g_autoptr(AsJsonlLog) log_b = as_jsonl_log_new(fx->path);
	AsTestWriter writers[AS_TEST_THREADS];
	GThread *threads[AS_TEST_THREADS];
	g_autofree gchar *contents = NULL;
	g_autofree gchar *dirname = g_path_get_dirname(fx->path);
	g_auto(GStrv) lines = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree guint8 *seen = g_new0(guint8, AS_TEST_THREADS * AS_TEST_LINES_PER_THREAD);
	g_autoptr(JsonParser) parser = json_parser_new();
	guint n_lines = 0;
	struct stat st;

	for (guint i = 0; i < AS_TEST_THREADS; i++) {
		writers[i].log = i % 2 == 0 ? log_a : log_b;
		writers[i].thread = i;
		threads[i] = g_thread_new("writer", as_test_writer_thread, &writers[i]);
	}
	for (guint i = 0; i < AS_TEST_THREADS; i++)
		g_thread_join(threads[i]);

	g_assert_cmpint(g_stat(fx->path, &st), ==, 0);
	g_assert_cmpint(st.st_mode & 0777, ==, 0600);
	g_assert_cmpint(g_stat(dirname, &st), ==, 0);
	g_assert_cmpint(st.st_mode & 0777, ==, 0700);

	g_assert_true(g_file_get_contents(fx->path, &contents, NULL, &error));
	g_assert_no_error(error);
	g_assert_true(g_str_has_suffix(contents, "\n"));
	lines = g_strsplit(contents, "\n", -1);
	for (guint i = 0; lines[i] != NULL; i++) {
		JsonObject *obj;
		gint64 thread;
		gint64 n;

		if (lines[i][0] == '\0') {
			g_assert_null(lines[i + 1]);
			break;
		}
		g_assert_true(json_parser_load_from_data(parser, lines[i], -1, &error));
		g_assert_no_error(error);
		obj = json_node_get_object(json_parser_get_root(parser));
		thread = json_object_get_int_member(obj, "thread");
		n = json_object_get_int_member(obj, "n");
		g_assert_cmpint(thread, <, AS_TEST_THREADS);
		g_assert_cmpint(n, <, AS_TEST_LINES_PER_THREAD);
		g_assert_cmpuint(seen[thread * AS_TEST_LINES_PER_THREAD + n], ==, 0);
		seen[thread * AS_TEST_LINES_PER_THREAD + n] = 1;
		n_lines++;
	}
	g_assert_cmpuint(n_lines, ==, AS_TEST_THREADS * AS_TEST_LINES_PER_THREAD);
}

static gboolean
as_test_filter_even_cb(JsonObject *obj, gpointer user_data)
{
	guint *calls = user_data;
	(*calls)++;
	return json_object_get_int_member_with_default(obj, "n", 1) % 2 == 0;
}

static void
as_test_assert_tail(GPtrArray *items, gint64 first, gint64 step, guint count)
{
	g_assert_nonnull(items);
	g_assert_cmpuint(items->len, ==, count);
	for (guint i = 0; i < count; i++) {
		JsonObject *obj = g_ptr_array_index(items, i);
		g_assert_cmpint(json_object_get_int_member(obj, "n"), ==, first - (gint64)i * step);
	}
}

static void
as_jsonl_read_tail_func(AsTestFixture *fx, gconstpointer user_data)
{
	g_autoptr(AsJsonlLog) log = as_jsonl_log_new(fx->path);
	g_autoptr(GPtrArray) items = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GString) huge = g_string_new("{\"n\":1000,\"big\":\"");
	guint calls = 0;

	/* missing file: nothing yet */
	items = as_jsonl_log_read_tail(log, 10, NULL, NULL, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(items->len, ==, 0);
	g_clear_pointer(&items, g_ptr_array_unref);

	for (guint i = 0; i < 20; i++)
		as_test_append(log, as_test_record_new(0, i));
	/* malformed lines of every kind, and an over-long line, among good ones */
	while (huge->len < AS_JSONL_LOG_LINE_MAX + 10)
		g_string_append(huge,
				"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
	g_string_append(huge, "\"}\n");
	as_test_write_raw(fx->path, "not json\n[1,2,3]\n{\"n\":\n\n   \n\"str\"\n");
	as_test_write_raw(fx->path, huge->str);
	as_test_write_raw(fx->path, "{\"n\":20}\r\n\xff\xfe\n");
	for (guint i = 21; i < 30; i++)
		as_test_append(log, as_test_record_new(0, i));
	/* a final line without newline still counts */
	as_test_write_raw(fx->path, "{\"n\":30}");

	items = as_jsonl_log_read_tail(log, 5, NULL, NULL, &error);
	g_assert_no_error(error);
	as_test_assert_tail(items, 30, 1, 5);
	g_clear_pointer(&items, g_ptr_array_unref);

	/* more than there is: all 31 good records, newest first */
	items = as_jsonl_log_read_tail(log, 1000, NULL, NULL, &error);
	g_assert_no_error(error);
	as_test_assert_tail(items, 30, 1, 31);
	g_clear_pointer(&items, g_ptr_array_unref);

	/* memory follows the matches, not the limit */
	items = as_jsonl_log_read_tail(log, G_MAXUINT, NULL, NULL, &error);
	g_assert_no_error(error);
	as_test_assert_tail(items, 30, 1, 31);
	g_clear_pointer(&items, g_ptr_array_unref);

	items = as_jsonl_log_read_tail(log, 4, as_test_filter_even_cb, &calls, &error);
	g_assert_no_error(error);
	as_test_assert_tail(items, 30, 2, 4);
	/* the filter sees every parsed object exactly once */
	g_assert_cmpuint(calls, ==, 31);
	g_clear_pointer(&items, g_ptr_array_unref);

	items = as_jsonl_log_read_tail(log, 1, NULL, NULL, &error);
	g_assert_no_error(error);
	as_test_assert_tail(items, 30, 1, 1);
	g_clear_pointer(&items, g_ptr_array_unref);

	items = as_jsonl_log_read_tail(log, 0, NULL, NULL, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(items->len, ==, 0);
}

static void
as_jsonl_disabled_func(AsTestFixture *fx, gconstpointer user_data)
{
	g_autoptr(AsJsonlLog) log = as_jsonl_log_new(NULL);
	g_autoptr(GPtrArray) items = NULL;
	g_autoptr(GError) error = NULL;

	as_test_append(log, as_test_record_new(0, 1));
	g_assert_null(as_jsonl_log_dup_path(log));
	items = as_jsonl_log_read_tail(log, 10, NULL, NULL, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(items->len, ==, 0);
}

static void
as_jsonl_set_path_func(AsTestFixture *fx, gconstpointer user_data)
{
	g_autoptr(AsJsonlLog) log = as_jsonl_log_new(fx->path);
	g_autofree gchar *other = g_build_filename(fx->tmpdir, "other", "audit.jsonl", NULL);
	g_autofree gchar *blocker = g_build_filename(fx->tmpdir, "blocker", NULL);
	g_autofree gchar *bad = g_build_filename(blocker, "x.jsonl", NULL);
	g_autofree gchar *path = NULL;
	g_autoptr(GPtrArray) items = NULL;
	g_autoptr(GError) error = NULL;

	as_test_append(log, as_test_record_new(0, 1));
	g_assert_true(as_jsonl_log_set_path(log, other, &error));
	g_assert_no_error(error);
	/* opened at once, so the new file exists before any append */
	g_assert_true(g_file_test(other, G_FILE_TEST_IS_REGULAR));
	as_test_append(log, as_test_record_new(0, 2));
	items = as_jsonl_log_read_tail(log, 10, NULL, NULL, &error);
	g_assert_no_error(error);
	as_test_assert_tail(items, 2, 1, 1);
	g_clear_pointer(&items, g_ptr_array_unref);

	/* a parent that is a file cannot work: the error is reported and the old path kept */
	as_test_write_raw(blocker, "x");
	g_assert_false(as_jsonl_log_set_path(log, bad, &error));
	g_assert_error(error, AS_ERROR, AS_ERROR_IO);
	g_clear_error(&error);
	path = as_jsonl_log_dup_path(log);
	g_assert_cmpstr(path, ==, other);
	as_test_append(log, as_test_record_new(0, 3));
	items = as_jsonl_log_read_tail(log, 10, NULL, NULL, &error);
	g_assert_no_error(error);
	as_test_assert_tail(items, 3, 1, 2);
	g_clear_pointer(&items, g_ptr_array_unref);

	/* back to the first file, which kept its line */
	g_assert_true(as_jsonl_log_set_path(log, fx->path, &error));
	g_assert_no_error(error);
	items = as_jsonl_log_read_tail(log, 10, NULL, NULL, &error);
	g_assert_no_error(error);
	as_test_assert_tail(items, 1, 1, 1);
	g_clear_pointer(&items, g_ptr_array_unref);

	g_assert_true(as_jsonl_log_set_path(log, NULL, &error));
	g_assert_no_error(error);
	as_test_append(log, as_test_record_new(0, 4));
	g_assert_true(as_jsonl_log_set_path(log, fx->path, &error));
	g_assert_no_error(error);
	items = as_jsonl_log_read_tail(log, 10, NULL, NULL, &error);
	g_assert_no_error(error);
	as_test_assert_tail(items, 1, 1, 1);
}

static void
as_jsonl_rotate_func(AsTestFixture *fx, gconstpointer user_data)
{
	g_autoptr(AsJsonlLog) log = as_jsonl_log_new(fx->path);
	g_autofree gchar *rotated = g_strconcat(fx->path, ".1", NULL);
	g_autoptr(GPtrArray) items = NULL;
	g_autoptr(GError) error = NULL;
	struct stat st;

	as_test_append(log, as_test_record_new(0, 1));
	g_assert_cmpint(g_rename(fx->path, rotated), ==, 0);
	as_test_append(log, as_test_record_new(0, 2));
	items = as_jsonl_log_read_tail(log, 10, NULL, NULL, &error);
	g_assert_no_error(error);
	as_test_assert_tail(items, 2, 1, 1);
	g_clear_pointer(&items, g_ptr_array_unref);

	/* a file that was world-readable is tightened */
	g_assert_cmpint(g_unlink(fx->path), ==, 0);
	as_test_write_raw(fx->path, "");
	g_assert_cmpint(g_chmod(fx->path, 0644), ==, 0);
	as_test_append(log, as_test_record_new(0, 3));
	g_assert_cmpint(g_stat(fx->path, &st), ==, 0);
	g_assert_cmpint(st.st_mode & 0777, ==, 0600);
	items = as_jsonl_log_read_tail(log, 10, NULL, NULL, &error);
	g_assert_no_error(error);
	as_test_assert_tail(items, 3, 1, 1);
}

static gchar *
as_test_to_json(JsonObject *obj)
{
	g_autoptr(JsonGenerator) generator = json_generator_new();
	g_autoptr(JsonNode) node = json_node_new(JSON_NODE_OBJECT);
	json_node_set_object(node, obj);
	json_generator_set_root(generator, node);
	return json_generator_to_data(generator, NULL);
}

static void
as_history_shape_func(void)
{
	AsHistoryRecord rec = {
		.id = "1b4e28ba-2fa1-11d2-883f-0016d3cca427",
		.filename = "a/b.bin",
		.saved_path = NULL,
		.size = 1048576,
		.sha256 = NULL,
		.remote_ip = "10.0.0.2",
		.protocol = "quic",
		.direction = "send",
		.completed_at_s = 1713400000,
		.duration_ms = 250,
		.success = TRUE,
		.error = NULL,
	};
	g_autoptr(JsonObject) obj = as_history_record_to_json(&rec);
	g_autoptr(JsonObject) obj2 = NULL;
	g_autofree gchar *json = as_test_to_json(obj);
	g_autofree gchar *json2 = NULL;

	/* exactly the keys and order of 0.x's serde HistoryEntry */
	g_assert_cmpstr(
		json, ==,
		"{\"id\":\"1b4e28ba-2fa1-11d2-883f-0016d3cca427\",\"filename\":\"a/b.bin\","
		"\"saved_path\":null,\"size\":1048576,\"sha256\":null,\"remote_ip\":\"10.0.0.2\","
		"\"protocol\":\"quic\",\"direction\":\"send\",\"completed_at\":1713400000,"
		"\"duration_ms\":250,\"avg_speed_bps\":4194304,\"success\":true,\"error\":null}");

	/* a fresh id, and a zero duration counts as 1 ms */
	rec.id = NULL;
	rec.duration_ms = 0;
	rec.size = 7;
	rec.success = FALSE;
	rec.error = "SHA-256 mismatch";
	rec.saved_path = "/srv/in/b.bin";
	rec.sha256 = "ab";
	obj2 = as_history_record_to_json(&rec);
	g_assert_true(g_uuid_string_is_valid(json_object_get_string_member(obj2, "id")));
	g_assert_cmpint(json_object_get_int_member(obj2, "avg_speed_bps"), ==, 7000);
	g_assert_cmpstr(json_object_get_string_member(obj2, "error"), ==, "SHA-256 mismatch");
	g_assert_false(json_object_get_boolean_member(obj2, "success"));
	json_object_remove_member(obj2, "id");
	json2 = as_test_to_json(obj2);
	g_assert_cmpstr(json2, ==,
			"{\"filename\":\"a/b.bin\",\"saved_path\":\"/srv/in/b.bin\",\"size\":7,"
			"\"sha256\":\"ab\",\"remote_ip\":\"10.0.0.2\",\"protocol\":\"quic\","
			"\"direction\":\"send\",\"completed_at\":1713400000,\"duration_ms\":0,"
			"\"avg_speed_bps\":7000,\"success\":false,\"error\":\"SHA-256 mismatch\"}");
}

static void
as_history_speed_func(void)
{
	struct {
		guint64 size;
		guint64 duration_ms;
		gint64 expected;
	} cases[] = {
		{0, 0, 0},
		{1000, 3, 333333},
		{G_GUINT64_CONSTANT(100000000000), 1000, G_GINT64_CONSTANT(100000000000)},
		/* size * 1000 overflows 64 bits; the result does not */
		{G_GUINT64_CONSTANT(40000000000000000), 1000000, G_GINT64_CONSTANT(40000000000000)},
		{G_GUINT64_CONSTANT(40000000000000007), 7001, G_GINT64_CONSTANT(5713469504356521)},
		{G_GUINT64_CONSTANT(40000000000000007), 3, G_MAXINT64},
		{G_MAXUINT64, 1, G_MAXINT64},
	};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		AsHistoryRecord rec = {
			.filename = "f",
			.protocol = "http",
			.direction = "receive",
			.size = cases[i].size,
			.duration_ms = cases[i].duration_ms,
		};
		g_autoptr(JsonObject) obj = as_history_record_to_json(&rec);
		g_assert_cmpint(json_object_get_int_member(obj, "avg_speed_bps"), ==,
				cases[i].expected);
	}
}

static void
as_history_variant_func(void)
{
	/* a line as 0.x HEAD writes it, with an extra key, plus odd values another tool might write
	 */
	const gchar *line =
		"{\"id\":\"1b4e28ba-2fa1-11d2-883f-0016d3cca427\",\"filename\":\"x.bin\","
		"\"saved_path\":null,\"size\":12,\"sha256\":\"abcd\",\"remote_ip\":null,"
		"\"protocol\":\"http\",\"direction\":\"receive\",\"completed_at\":-5,"
		"\"duration_ms\":2.0,\"avg_speed_bps\":6000,\"success\":true,\"error\":null,"
		"\"receipt_id\":\"r\",\"protocol_version\":1}";
	const gchar *bad = "{\"id\":1,\"size\":-1,\"success\":\"yes\",\"filename\":[1],"
			   "\"completed_at\":\"now\",\"duration_ms\":1e300}";
	g_autoptr(JsonParser) parser = json_parser_new();
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) value = NULL;
	g_autoptr(GVariant) value_bad = NULL;
	g_autoptr(GVariantDict) dict = NULL;
	const gchar *str = NULL;
	guint64 t = 0;
	gint64 x = 0;
	gboolean b = FALSE;

	g_assert_true(json_parser_load_from_data(parser, line, -1, &error));
	g_assert_no_error(error);
	value = g_variant_ref_sink(
		as_history_json_to_variant(json_node_get_object(json_parser_get_root(parser))));
	g_assert_cmpstr(g_variant_get_type_string(value), ==, "a{sv}");
	dict = g_variant_dict_new(value);
	g_assert_true(g_variant_dict_lookup(dict, "id", "&s", &str));
	g_assert_cmpstr(str, ==, "1b4e28ba-2fa1-11d2-883f-0016d3cca427");
	g_assert_true(g_variant_dict_lookup(dict, "filename", "&s", &str));
	g_assert_cmpstr(str, ==, "x.bin");
	g_assert_true(g_variant_dict_lookup(dict, "size", "t", &t));
	g_assert_cmpuint(t, ==, 12);
	g_assert_true(g_variant_dict_lookup(dict, "completed_at", "x", &x));
	g_assert_cmpint(x, ==, -5);
	g_assert_true(g_variant_dict_lookup(dict, "duration_ms", "t", &t));
	g_assert_cmpuint(t, ==, 2);
	g_assert_true(g_variant_dict_lookup(dict, "avg_speed_bps", "t", &t));
	g_assert_cmpuint(t, ==, 6000);
	g_assert_true(g_variant_dict_lookup(dict, "success", "b", &b));
	g_assert_true(b);
	g_assert_true(g_variant_dict_lookup(dict, "sha256", "&s", &str));
	g_assert_cmpstr(str, ==, "abcd");
	g_assert_true(g_variant_dict_lookup(dict, "protocol", "&s", &str));
	g_assert_true(g_variant_dict_lookup(dict, "direction", "&s", &str));
	g_assert_cmpstr(str, ==, "receive");
	/* nulls and unknown keys are left out */
	g_assert_false(g_variant_dict_contains(dict, "saved_path"));
	g_assert_false(g_variant_dict_contains(dict, "remote_ip"));
	g_assert_false(g_variant_dict_contains(dict, "error"));
	g_assert_false(g_variant_dict_contains(dict, "receipt_id"));
	g_assert_cmpuint(g_variant_n_children(value), ==, 10);

	/* members of the wrong type are dropped, not mistranslated */
	g_assert_true(json_parser_load_from_data(parser, bad, -1, &error));
	g_assert_no_error(error);
	value_bad = g_variant_ref_sink(
		as_history_json_to_variant(json_node_get_object(json_parser_get_root(parser))));
	g_assert_cmpuint(g_variant_n_children(value_bad), ==, 0);
}

static void
as_audit_shape_func(void)
{
	struct {
		AsAuditEvent event;
		const gchar *filename;
		const gchar *sha256;
		const gchar *remote_ip;
		const gchar *error;
		const gchar *expected;
	} cases[] = {
		{AS_AUDIT_TRANSFER_COMPLETED, "a/b.bin", "abcd", "1.2.3.4", NULL,
		 "{\"event\":{\"type\":\"transfer_completed\"},\"direction\":\"receive\","
		 "\"protocol\":\"http\",\"filename\":\"a/b.bin\",\"size\":123,\"sha256\":\"abcd\","
		 "\"remote_ip\":\"1.2.3.4\",\"result\":\"ok\"}"},
		{AS_AUDIT_TRANSFER_FAILED, "a/b.bin", NULL, NULL, "SHA-256 mismatch",
		 "{\"event\":{\"type\":\"transfer_failed\"},\"direction\":\"receive\","
		 "\"protocol\":\"http\",\"filename\":\"a/b.bin\",\"size\":123,\"sha256\":null,"
		 "\"remote_ip\":null,\"result\":{\"err\":\"SHA-256 mismatch\"}}"},
		{AS_AUDIT_AUTH_FAILED, NULL, NULL, "::1", "invalid token",
		 "{\"event\":{\"type\":\"auth_failed\"},\"direction\":\"receive\","
		 "\"protocol\":\"http\",\"filename\":\"\",\"size\":123,\"sha256\":null,"
		 "\"remote_ip\":\"::1\",\"result\":{\"err\":\"invalid token\"}}"},
		{AS_AUDIT_TRANSFER_STARTED, "x", NULL, NULL, NULL,
		 "{\"event\":{\"type\":\"transfer_started\"},\"direction\":\"receive\","
		 "\"protocol\":\"http\",\"filename\":\"x\",\"size\":123,\"sha256\":null,"
		 "\"remote_ip\":null,\"result\":\"ok\"}"},
	};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		gint64 before = g_get_real_time() / G_USEC_PER_SEC;
		g_autoptr(JsonObject) obj = as_audit_entry_new(
			cases[i].event, "receive", "http", cases[i].filename, 123, cases[i].sha256,
			cases[i].remote_ip, cases[i].error);
		gint64 after = g_get_real_time() / G_USEC_PER_SEC;
		g_autoptr(GList) members = json_object_get_members(obj);
		g_autofree gchar *json = NULL;

		/* timestamp comes first, as in 0.x's flattened AuditRecord */
		g_assert_cmpstr(members->data, ==, "timestamp");
		g_assert_cmpint(json_object_get_int_member(obj, "timestamp"), >=, before);
		g_assert_cmpint(json_object_get_int_member(obj, "timestamp"), <=, after);
		json_object_remove_member(obj, "timestamp");
		json = as_test_to_json(obj);
		g_assert_cmpstr(json, ==, cases[i].expected);
	}
}

static void
as_audit_chunk_func(void)
{
	g_autoptr(JsonObject) obj =
		as_audit_entry_new(AS_AUDIT_CHUNK_UPLOADED, "receive", "http-chunk", "big.iso",
				   33554432, NULL, "10.1.1.1", NULL);
	g_autofree gchar *json = NULL;

	as_audit_entry_set_chunk(obj, 3, 12);
	json_object_remove_member(obj, "timestamp");
	json = as_test_to_json(obj);
	g_assert_cmpstr(
		json, ==,
		"{\"event\":{\"type\":\"chunk_uploaded\",\"index\":3,\"total\":12},"
		"\"direction\":\"receive\",\"protocol\":\"http-chunk\",\"filename\":\"big.iso\","
		"\"size\":33554432,\"sha256\":null,\"remote_ip\":\"10.1.1.1\",\"result\":\"ok\"}");
}

/* records go through the log and come back equal */
static void
as_jsonl_roundtrip_func(AsTestFixture *fx, gconstpointer user_data)
{
	g_autoptr(AsJsonlLog) log = as_jsonl_log_new(fx->path);
	AsHistoryRecord rec = {
		.id = "1b4e28ba-2fa1-11d2-883f-0016d3cca427",
		.filename = "\xe4\xbd\xa0\xe5\xa5\xbd \"q\"\n.txt",
		.size = 5,
		.protocol = "http",
		.direction = "receive",
		.completed_at_s = 1,
		.duration_ms = 1,
		.success = TRUE,
	};
	g_autoptr(JsonObject) obj = as_history_record_to_json(&rec);
	g_autoptr(GPtrArray) items = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *a = as_test_to_json(obj);
	g_autofree gchar *b = NULL;

	g_assert_true(as_jsonl_log_append(log, obj, &error));
	g_assert_no_error(error);
	items = as_jsonl_log_read_tail(log, 1, NULL, NULL, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(items->len, ==, 1);
	b = as_test_to_json(g_ptr_array_index(items, 0));
	g_assert_cmpstr(a, ==, b);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add("/aerosync/jsonl/threads", AsTestFixture, NULL, as_test_fixture_setup,
		   as_jsonl_threads_func, as_test_fixture_teardown);
	g_test_add("/aerosync/jsonl/read-tail", AsTestFixture, NULL, as_test_fixture_setup,
		   as_jsonl_read_tail_func, as_test_fixture_teardown);
	g_test_add("/aerosync/jsonl/disabled", AsTestFixture, NULL, as_test_fixture_setup,
		   as_jsonl_disabled_func, as_test_fixture_teardown);
	g_test_add("/aerosync/jsonl/set-path", AsTestFixture, NULL, as_test_fixture_setup,
		   as_jsonl_set_path_func, as_test_fixture_teardown);
	g_test_add("/aerosync/jsonl/rotate", AsTestFixture, NULL, as_test_fixture_setup,
		   as_jsonl_rotate_func, as_test_fixture_teardown);
	g_test_add("/aerosync/jsonl/roundtrip", AsTestFixture, NULL, as_test_fixture_setup,
		   as_jsonl_roundtrip_func, as_test_fixture_teardown);
	g_test_add_func("/aerosync/history/shape", as_history_shape_func);
	g_test_add_func("/aerosync/history/speed", as_history_speed_func);
	g_test_add_func("/aerosync/history/variant", as_history_variant_func);
	g_test_add_func("/aerosync/audit/shape", as_audit_shape_func);
	g_test_add_func("/aerosync/audit/chunk", as_audit_chunk_func);
	return g_test_run();
}
