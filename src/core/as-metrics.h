/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib-object.h>

G_BEGIN_DECLS

#define AS_TYPE_METRICS (as_metrics_get_type())
G_DECLARE_FINAL_TYPE(AsMetrics, as_metrics, AS, METRICS, GObject)

/* Content-Type of as_metrics_render() output */
#define AS_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

AsMetrics *as_metrics_new(void);
void as_metrics_file_received(AsMetrics *self, guint64 size_bytes);
void as_metrics_bytes_received(AsMetrics *self, guint64 n);
void as_metrics_upload_error(AsMetrics *self);
void as_metrics_ws_connected(AsMetrics *self);
void as_metrics_ws_disconnected(AsMetrics *self);
void as_metrics_file_sent(AsMetrics *self, const gchar *protocol, guint64 size_bytes);
void as_metrics_send_error(AsMetrics *self);
void as_metrics_auth_failure(AsMetrics *self);
gchar *as_metrics_render(AsMetrics *self,
			 guint64 disk_free_bytes,
			 guint64 disk_total_bytes,
			 guint active_transfers,
			 guint queue_depth);

G_END_DECLS
