/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* fastest limit accepted (1 TiB/s): keeps the bucket arithmetic, done in micro-bytes, in gint64 */
#define AS_RATE_LIMIT_MAX_BYTES_PER_S (G_GUINT64_CONSTANT(1) << 40)

/* smallest automatic burst, so small rates still send whole socket writes */
#define AS_RATE_LIMITER_MIN_BURST (64 * 1024)

/* the automatic burst is rate / this, i.e. 100 ms worth of data */
#define AS_RATE_LIMITER_BURST_DIVISOR 10

gboolean as_rate_limit_parse(const gchar *text, guint64 *bytes_per_s, GError **error);
gchar *as_rate_limit_format(guint64 bytes_per_s);

#define AS_TYPE_RATE_LIMITER (as_rate_limiter_get_type())
G_DECLARE_FINAL_TYPE(AsRateLimiter, as_rate_limiter, AS, RATE_LIMITER, GObject)

AsRateLimiter *as_rate_limiter_new(guint64 bytes_per_s, guint64 burst_bytes);
void as_rate_limiter_set_rate(AsRateLimiter *self, guint64 bytes_per_s, gint64 now_us);
guint64 as_rate_limiter_get_rate(AsRateLimiter *self);
guint64 as_rate_limiter_get_burst(AsRateLimiter *self);
gint64 as_rate_limiter_reserve(AsRateLimiter *self, gsize bytes, gint64 now_us);
gint64 as_rate_limiter_get_delay(AsRateLimiter *self, gint64 now_us);
gint64 as_rate_limiter_reserve_pair(AsRateLimiter *a, AsRateLimiter *b, gsize bytes, gint64 now_us);
gint64 as_rate_limiter_get_delay_pair(AsRateLimiter *a, AsRateLimiter *b, gint64 now_us);
gboolean as_rate_limiter_pair_is_limited(AsRateLimiter *a, AsRateLimiter *b);
gboolean as_rate_limiter_wait_pair(AsRateLimiter *a,
				   AsRateLimiter *b,
				   gsize bytes,
				   const gint *stop,
				   GCancellable *cancellable,
				   guint recheck_ms);

G_END_DECLS
