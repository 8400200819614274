/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "AsMetrics"

#include "config.h"

#include "as-metrics.h"

/* upper bounds of the file size histogram, in bytes; +Inf is implicit */
static const guint64 as_metrics_size_bounds[] = {
	1024, 65536, 1048576, 104857600, 1073741824,
};
#define AS_METRICS_SIZE_BUCKETS (G_N_ELEMENTS(as_metrics_size_bounds) + 1)

/* protocol labels come from the daemon, not the network, but keep the series bounded anyway */
#define AS_METRICS_PROTOCOLS_MAX  16
#define AS_METRICS_PROTOCOL_OTHER "other"

struct _AsMetrics {
	GObject parent_instance;
	GMutex mutex; /* protects every field below */
	guint64 files_received;
	guint64 bytes_received;
	guint64 upload_errors;
	guint64 ws_connections;
	guint64 ws_active;
	guint64 files_sent;
	guint64 bytes_sent;
	guint64 send_errors;
	guint64 auth_failures;
	GHashTable *files_sent_by_protocol;	       /* owned: (element-type utf8 guint64) */
	guint64 size_buckets[AS_METRICS_SIZE_BUCKETS]; /* not cumulative; summed at render */
	guint64 size_sum;
	guint64 size_count;
};

G_DEFINE_TYPE(AsMetrics, as_metrics, G_TYPE_OBJECT)

/**
 * as_metrics_file_received:
 * @self: a #AsMetrics
 * @size_bytes: the size of the complete file
 *
 * Counts a successfully received file and records its size in the histogram.
 **/
void
as_metrics_file_received(AsMetrics *self, guint64 size_bytes)
{
	guint idx = G_N_ELEMENTS(as_metrics_size_bounds);
	g_autoptr(GMutexLocker) locker = NULL;

	g_return_if_fail(AS_IS_METRICS(self));

	for (guint i = 0; i < G_N_ELEMENTS(as_metrics_size_bounds); i++) {
		if (size_bytes <= as_metrics_size_bounds[i]) {
			idx = i;
			break;
		}
	}
	locker = g_mutex_locker_new(&self->mutex);
	self->files_received++;
	self->size_buckets[idx]++;
	self->size_sum += size_bytes;
	self->size_count++;
}

/**
 * as_metrics_bytes_received:
 * @self: a #AsMetrics
 * @n: bytes written to disk
 *
 * Counts received bytes as they are written, once; retried chunks must not be counted again.
 **/
void
as_metrics_bytes_received(AsMetrics *self, guint64 n)
{
	g_autoptr(GMutexLocker) locker = NULL;
	g_return_if_fail(AS_IS_METRICS(self));
	locker = g_mutex_locker_new(&self->mutex);
	self->bytes_received += n;
}

/**
 * as_metrics_upload_error:
 * @self: a #AsMetrics
 *
 * Counts a failed upload.
 **/
void
as_metrics_upload_error(AsMetrics *self)
{
	g_autoptr(GMutexLocker) locker = NULL;
	g_return_if_fail(AS_IS_METRICS(self));
	locker = g_mutex_locker_new(&self->mutex);
	self->upload_errors++;
}

/**
 * as_metrics_ws_connected:
 * @self: a #AsMetrics
 *
 * Counts an accepted WebSocket connection.
 **/
void
as_metrics_ws_connected(AsMetrics *self)
{
	g_autoptr(GMutexLocker) locker = NULL;
	g_return_if_fail(AS_IS_METRICS(self));
	locker = g_mutex_locker_new(&self->mutex);
	self->ws_connections++;
	self->ws_active++;
}

/**
 * as_metrics_ws_disconnected:
 * @self: a #AsMetrics
 *
 * Records that a WebSocket connection closed.
 **/
void
as_metrics_ws_disconnected(AsMetrics *self)
{
	g_autoptr(GMutexLocker) locker = NULL;
	g_return_if_fail(AS_IS_METRICS(self));
	locker = g_mutex_locker_new(&self->mutex);
	/* saturate: a gauge below zero would only hide a bookkeeping bug elsewhere */
	if (self->ws_active > 0)
		self->ws_active--;
}

/**
 * as_metrics_file_sent:
 * @self: a #AsMetrics
 * @protocol: the transport, e.g. "http" or "quic"
 * @size_bytes: the size of the file
 *
 * Counts a successfully sent file, its bytes, and the file under its protocol.
 **/
void
as_metrics_file_sent(AsMetrics *self, const gchar *protocol, guint64 size_bytes)
{
	guint64 *count;
	g_autoptr(GMutexLocker) locker = NULL;

	g_return_if_fail(AS_IS_METRICS(self));
	g_return_if_fail(protocol != NULL);

	locker = g_mutex_locker_new(&self->mutex);
	self->files_sent++;
	self->bytes_sent += size_bytes;
	count = g_hash_table_lookup(self->files_sent_by_protocol, protocol);
	if (count == NULL &&
	    g_hash_table_size(self->files_sent_by_protocol) >= AS_METRICS_PROTOCOLS_MAX) {
		count = g_hash_table_lookup(self->files_sent_by_protocol,
					    AS_METRICS_PROTOCOL_OTHER);
		protocol = AS_METRICS_PROTOCOL_OTHER;
	}
	if (count == NULL) {
		count = g_new0(guint64, 1);
		g_hash_table_insert(self->files_sent_by_protocol, g_strdup(protocol), count);
	}
	(*count)++;
}

/**
 * as_metrics_send_error:
 * @self: a #AsMetrics
 *
 * Counts a failed send.
 **/
void
as_metrics_send_error(AsMetrics *self)
{
	g_autoptr(GMutexLocker) locker = NULL;
	g_return_if_fail(AS_IS_METRICS(self));
	locker = g_mutex_locker_new(&self->mutex);
	self->send_errors++;
}

/**
 * as_metrics_auth_failure:
 * @self: a #AsMetrics
 *
 * Counts a request refused for a missing or invalid token.
 **/
void
as_metrics_auth_failure(AsMetrics *self)
{
	g_autoptr(GMutexLocker) locker = NULL;
	g_return_if_fail(AS_IS_METRICS(self));
	locker = g_mutex_locker_new(&self->mutex);
	self->auth_failures++;
}

static void
as_metrics_add_family(GString *str, const gchar *name, const gchar *type, const gchar *help)
{
	g_string_append_printf(str, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void
as_metrics_add_value(
	GString *str, const gchar *name, const gchar *type, const gchar *help, guint64 value)
{
	as_metrics_add_family(str, name, type, help);
	g_string_append_printf(str, "%s %" G_GUINT64_FORMAT "\n", name, value);
}

/* text format 0.0.4 label values escape backslash, double quote and newline */
static void
as_metrics_append_label_value(GString *str, const gchar *value)
{
	for (const gchar *p = value; *p != '\0'; p++) {
		if (*p == '\\')
			g_string_append(str, "\\\\");
		else if (*p == '"')
			g_string_append(str, "\\\"");
		else if (*p == '\n')
			g_string_append(str, "\\n");
		else
			g_string_append_c(str, *p);
	}
}

/**
 * as_metrics_render:
 * @self: a #AsMetrics
 * @disk_free_bytes: free space of the receive directory's file system
 * @disk_total_bytes: size of that file system
 * @active_transfers: transfers in progress now
 * @queue_depth: transfers waiting to start
 *
 * Renders every metric in the Prometheus text exposition format 0.0.4, see
 * %AS_METRICS_CONTENT_TYPE. The gauges that belong to other objects are passed in so they
 * are always current.
 *
 * Returns: (transfer full): the text
 **/
gchar *
as_metrics_render(AsMetrics *self,
		  guint64 disk_free_bytes,
		  guint64 disk_total_bytes,
		  guint active_transfers,
		  guint queue_depth)
{
	GString *str = g_string_sized_new(4096);
	g_autoptr(GList) protocols = NULL;
	g_autoptr(GMutexLocker) locker = NULL;
	guint64 cumulative = 0;

	g_return_val_if_fail(AS_IS_METRICS(self), NULL);

	locker = g_mutex_locker_new(&self->mutex);
	as_metrics_add_value(str, "aerosync_files_received_total", "counter",
			     "Total number of successfully received files", self->files_received);
	as_metrics_add_value(str, "aerosync_bytes_received_total", "counter",
			     "Total bytes received", self->bytes_received);
	as_metrics_add_value(str, "aerosync_upload_errors_total", "counter",
			     "Total number of upload errors", self->upload_errors);
	as_metrics_add_value(str, "aerosync_ws_connections_total", "counter",
			     "Total WebSocket connections accepted", self->ws_connections);
	as_metrics_add_value(str, "aerosync_ws_active_connections", "gauge",
			     "Current active WebSocket connections", self->ws_active);
	as_metrics_add_value(str, "aerosync_disk_free_bytes", "gauge",
			     "Free disk space in bytes at the receive directory", disk_free_bytes);
	as_metrics_add_value(str, "aerosync_disk_total_bytes", "gauge",
			     "Total disk capacity in bytes at the receive directory",
			     disk_total_bytes);
	as_metrics_add_value(str, "aerosync_active_transfers", "gauge",
			     "Current number of in-progress file transfers", active_transfers);
	as_metrics_add_value(str, "aerosync_queue_depth", "gauge",
			     "Number of transfers waiting in queue", queue_depth);
	as_metrics_add_value(str, "aerosync_files_sent_total", "counter",
			     "Total files successfully sent", self->files_sent);
	as_metrics_add_value(str, "aerosync_bytes_sent_total", "counter",
			     "Total bytes successfully sent", self->bytes_sent);
	as_metrics_add_value(str, "aerosync_send_errors_total", "counter", "Total send-side errors",
			     self->send_errors);
	as_metrics_add_value(str, "aerosync_auth_failures_total", "counter",
			     "Total requests refused for a missing or invalid token",
			     self->auth_failures);

	/* 0.x called this aerosync_files_sent_by_protocol; promtool's lint requires the _total
	 * suffix on counters, so the name changed with 1.0 */
	as_metrics_add_family(str, "aerosync_files_sent_by_protocol_total", "counter",
			      "Total files sent per protocol");
	protocols = g_hash_table_get_keys(self->files_sent_by_protocol);
	protocols = g_list_sort(protocols, (GCompareFunc)g_strcmp0);
	for (GList *l = protocols; l != NULL; l = l->next) {
		const guint64 *count = g_hash_table_lookup(self->files_sent_by_protocol, l->data);
		g_string_append(str, "aerosync_files_sent_by_protocol_total{protocol=\"");
		as_metrics_append_label_value(str, l->data);
		g_string_append_printf(str, "\"} %" G_GUINT64_FORMAT "\n", *count);
	}

	/* 0.x rendered aerosync_file_size_bucket as a gauge with per-bucket counts; this is a
	 * real cumulative histogram that keeps the aerosync_file_size_bucket series name */
	as_metrics_add_family(str, "aerosync_file_size", "histogram",
			      "Size distribution of successfully received files in bytes");
	for (guint i = 0; i < G_N_ELEMENTS(as_metrics_size_bounds); i++) {
		cumulative += self->size_buckets[i];
		g_string_append_printf(str,
				       "aerosync_file_size_bucket{le=\"%" G_GUINT64_FORMAT
				       "\"} %" G_GUINT64_FORMAT "\n",
				       as_metrics_size_bounds[i], cumulative);
	}
	cumulative += self->size_buckets[G_N_ELEMENTS(as_metrics_size_bounds)];
	g_string_append_printf(
		str, "aerosync_file_size_bucket{le=\"+Inf\"} %" G_GUINT64_FORMAT "\n", cumulative);
	g_string_append_printf(str,
			       "aerosync_file_size_sum %" G_GUINT64_FORMAT "\n"
			       "aerosync_file_size_count %" G_GUINT64_FORMAT "\n",
			       self->size_sum, self->size_count);
	return g_string_free(str, FALSE);
}

static void
as_metrics_finalize(GObject *object)
{
	AsMetrics *self = AS_METRICS(object);

	g_hash_table_unref(self->files_sent_by_protocol);
	g_mutex_clear(&self->mutex);
	G_OBJECT_CLASS(as_metrics_parent_class)->finalize(object);
}

static void
as_metrics_class_init(AsMetricsClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);
	object_class->finalize = as_metrics_finalize;
}

static void
as_metrics_init(AsMetrics *self)
{
	g_mutex_init(&self->mutex);
	self->files_sent_by_protocol =
		g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	/* the two transports are always present so dashboards see zeros, not gaps */
	g_hash_table_insert(self->files_sent_by_protocol, g_strdup("http"), g_new0(guint64, 1));
	g_hash_table_insert(self->files_sent_by_protocol, g_strdup("quic"), g_new0(guint64, 1));
}

/**
 * as_metrics_new:
 *
 * Returns: (transfer full): a new #AsMetrics with every counter at zero
 **/
AsMetrics *
as_metrics_new(void)
{
	return g_object_new(AS_TYPE_METRICS, NULL);
}
