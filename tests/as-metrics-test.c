/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "AsMetricsTest"

#include "config.h"

#include <glib/gstdio.h>
#include <string.h>

#include "as-metrics.h"

static const gchar *as_test_histogram_suffixes[] = {"_bucket", "_sum", "_count"};

/* sample lines "name{labels} value" into a table; also checks each sample has HELP and TYPE */
static GHashTable *
as_test_parse_samples(const gchar *text)
{
	g_autoptr(GHashTable) samples =
		g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	g_autoptr(GHashTable) typed =
		g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	g_auto(GStrv) lines = g_strsplit(text, "\n", -1);

	g_assert_true(g_str_has_suffix(text, "\n"));
	for (guint i = 0; lines[i] != NULL; i++) {
		const gchar *line = lines[i];
		const gchar *space;
		g_autofree gchar *key = NULL;
		g_autofree gchar *family = NULL;

		if (line[0] == '\0')
			continue;
		if (g_str_has_prefix(line, "# TYPE ")) {
			g_auto(GStrv) parts = g_strsplit(line + 7, " ", 2);
			g_assert_nonnull(parts[1]);
			g_assert_false(g_hash_table_contains(typed, parts[0]));
			/* HELP comes first */
			g_assert_true(g_str_has_prefix(lines[i - 1], "# HELP "));
			g_hash_table_insert(typed, g_strdup(parts[0]), g_strdup(parts[1]));
			continue;
		}
		if (g_str_has_prefix(line, "# HELP "))
			continue;
		space = strrchr(line, ' ');
		g_assert_nonnull(space);
		key = g_strndup(line, space - line);
		family = g_strndup(key, strcspn(key, "{"));
		if (!g_hash_table_contains(typed, family)) {
			/* histogram series belong to their family */
			for (guint j = 0; j < G_N_ELEMENTS(as_test_histogram_suffixes); j++) {
				const gchar *suffix = as_test_histogram_suffixes[j];
				if (g_str_has_suffix(family, suffix)) {
					family[strlen(family) - strlen(suffix)] = '\0';
					break;
				}
			}
			g_assert_cmpstr(g_hash_table_lookup(typed, family), ==, "histogram");
		}
		g_assert_false(g_hash_table_contains(samples, key));
		g_hash_table_insert(samples, g_steal_pointer(&key), g_strdup(space + 1));
	}
	return g_steal_pointer(&samples);
}

static void
as_test_assert_sample(GHashTable *samples, const gchar *key, const gchar *value)
{
	const gchar *actual = g_hash_table_lookup(samples, key);
	if (actual == NULL)
		g_error("no sample %s", key);
	g_assert_cmpstr(actual, ==, value);
}

static void
as_metrics_initial_func(void)
{
	g_autoptr(AsMetrics) metrics = as_metrics_new();
	g_autofree gchar *text = as_metrics_render(metrics, 1024, 4096, 0, 0);
	g_autoptr(GHashTable) samples = as_test_parse_samples(text);
	const gchar *zero[] = {
		"aerosync_files_received_total",
		"aerosync_bytes_received_total",
		"aerosync_upload_errors_total",
		"aerosync_ws_connections_total",
		"aerosync_ws_active_connections",
		"aerosync_active_transfers",
		"aerosync_queue_depth",
		"aerosync_files_sent_total",
		"aerosync_bytes_sent_total",
		"aerosync_send_errors_total",
		"aerosync_auth_failures_total",
		"aerosync_files_sent_by_protocol_total{protocol=\"http\"}",
		"aerosync_files_sent_by_protocol_total{protocol=\"quic\"}",
		"aerosync_file_size_bucket{le=\"1024\"}",
		"aerosync_file_size_bucket{le=\"+Inf\"}",
		"aerosync_file_size_sum",
		"aerosync_file_size_count",
	};

	for (guint i = 0; i < G_N_ELEMENTS(zero); i++)
		as_test_assert_sample(samples, zero[i], "0");
	as_test_assert_sample(samples, "aerosync_disk_free_bytes", "1024");
	as_test_assert_sample(samples, "aerosync_disk_total_bytes", "4096");
	/* 13 single samples, 2 protocols, 6 buckets, sum and count */
	g_assert_cmpuint(g_hash_table_size(samples), ==, 13 + 2 + 6 + 2);
	g_assert_nonnull(strstr(text, "# TYPE aerosync_file_size histogram\n"));
	g_assert_nonnull(strstr(text, "# TYPE aerosync_files_received_total counter\n"));
	g_assert_nonnull(strstr(text, "# TYPE aerosync_queue_depth gauge\n"));
}

static void
as_metrics_values_func(void)
{
	g_autoptr(AsMetrics) metrics = as_metrics_new();
	g_autofree gchar *text = NULL;
	g_autoptr(GHashTable) samples = NULL;

	as_metrics_file_received(metrics, 100);
	as_metrics_file_received(metrics, 200);
	as_metrics_bytes_received(metrics, 300);
	as_metrics_bytes_received(metrics, G_GUINT64_CONSTANT(10000000000));
	as_metrics_upload_error(metrics);
	as_metrics_ws_connected(metrics);
	as_metrics_ws_connected(metrics);
	as_metrics_ws_connected(metrics);
	as_metrics_ws_disconnected(metrics);
	as_metrics_file_sent(metrics, "http", 10);
	as_metrics_file_sent(metrics, "quic", 20);
	as_metrics_file_sent(metrics, "quic", 30);
	as_metrics_file_sent(metrics, "we\"ird\\", 1);
	as_metrics_send_error(metrics);
	as_metrics_send_error(metrics);
	as_metrics_auth_failure(metrics);
	text = as_metrics_render(metrics, G_GUINT64_CONSTANT(18000000000000000000), 7, 3, 2);
	samples = as_test_parse_samples(text);

	as_test_assert_sample(samples, "aerosync_files_received_total", "2");
	as_test_assert_sample(samples, "aerosync_bytes_received_total", "10000000300");
	as_test_assert_sample(samples, "aerosync_upload_errors_total", "1");
	as_test_assert_sample(samples, "aerosync_ws_connections_total", "3");
	as_test_assert_sample(samples, "aerosync_ws_active_connections", "2");
	as_test_assert_sample(samples, "aerosync_disk_free_bytes", "18000000000000000000");
	as_test_assert_sample(samples, "aerosync_disk_total_bytes", "7");
	as_test_assert_sample(samples, "aerosync_active_transfers", "3");
	as_test_assert_sample(samples, "aerosync_queue_depth", "2");
	as_test_assert_sample(samples, "aerosync_files_sent_total", "4");
	as_test_assert_sample(samples, "aerosync_bytes_sent_total", "61");
	as_test_assert_sample(samples, "aerosync_send_errors_total", "2");
	as_test_assert_sample(samples, "aerosync_auth_failures_total", "1");
	as_test_assert_sample(samples, "aerosync_files_sent_by_protocol_total{protocol=\"http\"}",
			      "1");
	as_test_assert_sample(samples, "aerosync_files_sent_by_protocol_total{protocol=\"quic\"}",
			      "2");
	as_test_assert_sample(
		samples, "aerosync_files_sent_by_protocol_total{protocol=\"we\\\"ird\\\\\"}", "1");
}

static void
as_metrics_ws_saturate_func(void)
{
	g_autoptr(AsMetrics) metrics = as_metrics_new();
	g_autofree gchar *text = NULL;
	g_autoptr(GHashTable) samples = NULL;

	as_metrics_ws_disconnected(metrics);
	as_metrics_ws_connected(metrics);
	as_metrics_ws_disconnected(metrics);
	as_metrics_ws_disconnected(metrics);
	text = as_metrics_render(metrics, 0, 0, 0, 0);
	samples = as_test_parse_samples(text);
	as_test_assert_sample(samples, "aerosync_ws_active_connections", "0");
	as_test_assert_sample(samples, "aerosync_ws_connections_total", "1");
}

static void
as_metrics_histogram_func(void)
{
	g_autoptr(AsMetrics) metrics = as_metrics_new();
	g_autofree gchar *text = NULL;
	g_autoptr(GHashTable) samples = NULL;
	const guint64 sizes[] = {
		0,
		1024,
		1025,
		65536,
		1048577,
		104857600,
		G_GUINT64_CONSTANT(1073741824),
		G_GUINT64_CONSTANT(2147483648),
		G_GUINT64_CONSTANT(5000000000),
	};
	guint64 sum = 0;
	g_autofree gchar *sum_str = NULL;

	for (guint i = 0; i < G_N_ELEMENTS(sizes); i++) {
		as_metrics_file_received(metrics, sizes[i]);
		sum += sizes[i];
	}
	text = as_metrics_render(metrics, 0, 0, 0, 0);
	samples = as_test_parse_samples(text);

	/* le is inclusive and the buckets are cumulative */
	as_test_assert_sample(samples, "aerosync_file_size_bucket{le=\"1024\"}", "2");
	as_test_assert_sample(samples, "aerosync_file_size_bucket{le=\"65536\"}", "4");
	as_test_assert_sample(samples, "aerosync_file_size_bucket{le=\"1048576\"}", "4");
	as_test_assert_sample(samples, "aerosync_file_size_bucket{le=\"104857600\"}", "6");
	as_test_assert_sample(samples, "aerosync_file_size_bucket{le=\"1073741824\"}", "7");
	as_test_assert_sample(samples, "aerosync_file_size_bucket{le=\"+Inf\"}", "9");
	as_test_assert_sample(samples, "aerosync_file_size_count", "9");
	sum_str = g_strdup_printf("%" G_GUINT64_FORMAT, sum);
	as_test_assert_sample(samples, "aerosync_file_size_sum", sum_str);
	as_test_assert_sample(samples, "aerosync_files_received_total", "9");

	/* the buckets appear in ascending order, +Inf last */
	g_assert_true(strstr(text, "le=\"1024\"") < strstr(text, "le=\"65536\""));
	g_assert_true(strstr(text, "le=\"1073741824\"") < strstr(text, "le=\"+Inf\""));
	g_assert_true(strstr(text, "le=\"+Inf\"") < strstr(text, "aerosync_file_size_sum"));
}

#define AS_TEST_THREADS		  4
#define AS_TEST_THREAD_ITERATIONS 20000

static gpointer
as_test_hammer_thread(gpointer user_data)
{
	AsMetrics *metrics = user_data;
	for (guint i = 0; i < AS_TEST_THREAD_ITERATIONS; i++) {
		as_metrics_bytes_received(metrics, 3);
		as_metrics_file_received(metrics, i % 2 == 0 ? 10 : 100000);
		as_metrics_file_sent(metrics, i % 2 == 0 ? "http" : "quic", 1);
		as_metrics_ws_connected(metrics);
		as_metrics_ws_disconnected(metrics);
	}
	return NULL;
}

static void
as_metrics_threads_func(void)
{
	g_autoptr(AsMetrics) metrics = as_metrics_new();
	GThread *threads[AS_TEST_THREADS];
	g_autofree gchar *text = NULL;
	g_autoptr(GHashTable) samples = NULL;
	g_autofree gchar *expected = NULL;

	for (guint i = 0; i < AS_TEST_THREADS; i++)
		threads[i] = g_thread_new("hammer", as_test_hammer_thread, metrics);
	for (guint i = 0; i < AS_TEST_THREADS; i++)
		g_thread_join(threads[i]);
	text = as_metrics_render(metrics, 0, 0, 0, 0);
	samples = as_test_parse_samples(text);

	expected = g_strdup_printf("%u", AS_TEST_THREADS * AS_TEST_THREAD_ITERATIONS * 3);
	as_test_assert_sample(samples, "aerosync_bytes_received_total", expected);
	g_free(expected);
	expected = g_strdup_printf("%u", AS_TEST_THREADS * AS_TEST_THREAD_ITERATIONS);
	as_test_assert_sample(samples, "aerosync_files_received_total", expected);
	as_test_assert_sample(samples, "aerosync_file_size_count", expected);
	as_test_assert_sample(samples, "aerosync_files_sent_total", expected);
	as_test_assert_sample(samples, "aerosync_ws_connections_total", expected);
	as_test_assert_sample(samples, "aerosync_ws_active_connections", "0");
	g_free(expected);
	expected = g_strdup_printf("%u", AS_TEST_THREADS * AS_TEST_THREAD_ITERATIONS / 2);
	as_test_assert_sample(samples, "aerosync_file_size_bucket{le=\"1024\"}", expected);
	as_test_assert_sample(samples, "aerosync_files_sent_by_protocol_total{protocol=\"http\"}",
			      expected);
	as_test_assert_sample(samples, "aerosync_files_sent_by_protocol_total{protocol=\"quic\"}",
			      expected);
}

static void
as_metrics_promtool_func(void)
{
	g_autoptr(AsMetrics) metrics = as_metrics_new();
	g_autofree gchar *promtool = g_find_program_in_path("promtool");
	g_autofree gchar *tmpdir = NULL;
	g_autofree gchar *path = NULL;
	g_autofree gchar *text = NULL;
	g_autofree gchar *out = NULL;
	g_autofree gchar *err = NULL;
	g_autoptr(GError) error = NULL;
	gint status = 0;
	const gchar *argv[] = {"/bin/sh", "-c", "exec \"$0\" check metrics < \"$1\"",
			       NULL,	  NULL, NULL};

	if (promtool == NULL) {
		g_test_skip("promtool not installed");
		return;
	}
	as_metrics_file_received(metrics, 4096);
	as_metrics_file_received(metrics, G_GUINT64_CONSTANT(3000000000));
	as_metrics_bytes_received(metrics, 4096);
	as_metrics_file_sent(metrics, "quic", 5);
	as_metrics_ws_connected(metrics);
	text = as_metrics_render(metrics, 100, 200, 1, 0);

	tmpdir = g_dir_make_tmp("as-metrics-XXXXXX", &error);
	g_assert_no_error(error);
	path = g_build_filename(tmpdir, "metrics.prom", NULL);
	g_assert_true(g_file_set_contents(path, text, -1, &error));
	g_assert_no_error(error);

	argv[3] = promtool;
	argv[4] = path;
	g_assert_true(g_spawn_sync(NULL, (gchar **)argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out,
				   &err, &status, &error));
	g_assert_no_error(error);
	if (!g_spawn_check_wait_status(status, &error))
		g_test_message("promtool stdout: %s\nstderr: %s", out, err);
	g_assert_no_error(error);
	/* lint findings are printed even when the exit code is 0 */
	g_assert_cmpstr(out, ==, "");
	g_assert_cmpstr(err, ==, "");

	g_assert_cmpint(g_unlink(path), ==, 0);
	g_assert_cmpint(g_rmdir(tmpdir), ==, 0);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/aerosync/metrics/initial", as_metrics_initial_func);
	g_test_add_func("/aerosync/metrics/values", as_metrics_values_func);
	g_test_add_func("/aerosync/metrics/ws-saturate", as_metrics_ws_saturate_func);
	g_test_add_func("/aerosync/metrics/histogram", as_metrics_histogram_func);
	g_test_add_func("/aerosync/metrics/threads", as_metrics_threads_func);
	g_test_add_func("/aerosync/metrics/promtool", as_metrics_promtool_func);
	return g_test_run();
}
