/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "AsRateLimit"

#include "config.h"

#include <string.h>

#include "as-error.h"
#include "as-rate-limit.h"

/* the bucket counts micro-bytes so that refilling by elapsed_us * rate needs no division */
#define AS_RATE_LIMITER_MICRO G_GINT64_CONSTANT(1000000)

/* deepest debt kept; far beyond anything real, it only keeps the arithmetic from wrapping */
#define AS_RATE_LIMITER_MIN_TOKENS (G_MININT64 / 2)

/* longest number accepted by as_rate_limit_parse(), digits and dot */
#define AS_RATE_LIMIT_NUMBER_MAX 32

struct _AsRateLimiter {
	GObject parent_instance;
	GMutex mutex;	     /* protects everything below */
	guint64 rate;	     /* bytes per second, 0 = unlimited */
	guint64 burst;	     /* bucket size in bytes */
	gboolean burst_auto; /* burst follows the rate */
	gint64 tokens_ub;    /* micro-bytes; negative while callers are in debt */
	gint64 last_us;	     /* time of the last refill, -1 before the first use */
};

G_DEFINE_TYPE(AsRateLimiter, as_rate_limiter, G_TYPE_OBJECT)

typedef struct {
	const gchar *suffix;
	guint64 multiplier;
} AsRateLimitUnit;

/* units as AeroSync 0.x parse_limit(): case-insensitive, binary multiples, always bytes; a bare
 * number is KB/s; the single letters and the KiB spellings are accepted on top */
static const AsRateLimitUnit as_rate_limit_units[] = {
	{"", 1024},
	{"b", 1},
	{"k", 1024},
	{"kb", 1024},
	{"kib", 1024},
	{"m", 1024 * 1024},
	{"mb", 1024 * 1024},
	{"mib", 1024 * 1024},
	{"g", 1024 * 1024 * 1024},
	{"gb", 1024 * 1024 * 1024},
	{"gib", 1024 * 1024 * 1024},
};

static gboolean
as_rate_limit_parse_failed(const gchar *text, GError **error)
{
	g_set_error(
		error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
		"invalid rate limit '%s': expected a number with an optional unit B, KB, MB "
		"or GB and an optional /s (e.g. 512KB, 10MB/s, 1.5M); a bare number means KB/s, "
		"0 or 'unlimited' means no limit",
		text);
	return FALSE;
}

/**
 * as_rate_limit_parse:
 * @text: a rate as typed by the user, e.g. `512KB`, `10MB/s`, `1.5M` or `100`
 * @bytes_per_s: (out): the rate in bytes per second, 0 for no limit
 * @error: (nullable): optional return location for an error
 *
 * Parses the `--limit` syntax of AeroSync 0.x: a decimal number, optional spaces, an optional
 * unit and an optional `/s` or `/sec`, all case-insensitive. Units are bytes in binary
 * multiples: `B`; `K`, `KB`, `KiB` = 1024; `M`, `MB`, `MiB` = 1024²; `G`, `GB`, `GiB` = 1024³. As
 * in 0.x a bare number means KB/s and a lower-case `b` still means bytes, not bits. `0` (in any
 * unit), `unlimited` and `off` mean no limit. Unlike 0.x, which turned garbage such as `-5`
 * into 0 (no limit), negative numbers, exponents and rates that round to less than one byte per
 * second are rejected, as are rates above %AS_RATE_LIMIT_MAX_BYTES_PER_S.
 *
 * Returns: %TRUE on success
 **/
gboolean
as_rate_limit_parse(const gchar *text, guint64 *bytes_per_s, GError **error)
{
	g_autofree gchar *lower = NULL;
	g_autofree gchar *number = NULL;
	const gchar *p;
	const gchar *unit;
	const gchar *slash;
	gsize number_len = 0;
	guint digits = 0;
	gboolean seen_dot = FALSE;
	gdouble value;
	gdouble result;

	g_return_val_if_fail(bytes_per_s != NULL, FALSE);
	g_return_val_if_fail(error == NULL || *error == NULL, FALSE);

	if (text == NULL)
		return as_rate_limit_parse_failed("", error);
	lower = g_strstrip(g_ascii_strdown(text, -1));
	if (g_strcmp0(lower, "unlimited") == 0 || g_strcmp0(lower, "off") == 0) {
		*bytes_per_s = 0;
		return TRUE;
	}

	/* optional per-second suffix */
	slash = strchr(lower, '/');
	if (slash != NULL) {
		if (g_strcmp0(slash, "/s") != 0 && g_strcmp0(slash, "/sec") != 0)
			return as_rate_limit_parse_failed(text, error);
		lower[slash - lower] = '\0';
		g_strchomp(lower);
	}

	/* digits with at most one dot; no sign, no exponent, no hex, no inf/nan */
	for (p = lower; g_ascii_isdigit(*p) || *p == '.'; p++) {
		if (*p == '.') {
			if (seen_dot)
				return as_rate_limit_parse_failed(text, error);
			seen_dot = TRUE;
		} else {
			digits++;
		}
	}
	number_len = (gsize)(p - lower);
	if (digits == 0 || number_len > AS_RATE_LIMIT_NUMBER_MAX)
		return as_rate_limit_parse_failed(text, error);
	number = g_strndup(lower, number_len);
	value = g_ascii_strtod(number, NULL);

	unit = p;
	while (g_ascii_isspace(*unit))
		unit++;
	for (guint i = 0; i < G_N_ELEMENTS(as_rate_limit_units); i++) {
		if (g_strcmp0(unit, as_rate_limit_units[i].suffix) != 0)
			continue;
		result = value * (gdouble)as_rate_limit_units[i].multiplier;
		if (result > (gdouble)AS_RATE_LIMIT_MAX_BYTES_PER_S) {
			g_autofree gchar *max = as_rate_limit_format(AS_RATE_LIMIT_MAX_BYTES_PER_S);
			g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
				    "rate limit '%s' is above the maximum of %s", text, max);
			return FALSE;
		}
		if (value > 0 && result < 0.5) {
			g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
				    "rate limit '%s' is below 1 byte per second", text);
			return FALSE;
		}
		*bytes_per_s = (guint64)(result + 0.5);
		return TRUE;
	}
	return as_rate_limit_parse_failed(text, error);
}

/**
 * as_rate_limit_format:
 * @bytes_per_s: a rate, 0 for no limit
 *
 * Formats a rate for people, in the binary units as_rate_limit_parse() reads back: `unlimited`,
 * `100 B/s`, `512 KB/s`, `1.5 MB/s`. Values keep one decimal, dropped when it is zero.
 *
 * Returns: (transfer full): the text
 **/
gchar *
as_rate_limit_format(guint64 bytes_per_s)
{
	static const gchar *const unit_names[] = {"KB", "MB", "GB", "TB"};
	gdouble value = (gdouble)bytes_per_s;
	guint unit = 0;
	g_autofree gchar *text = NULL;

	if (bytes_per_s == 0)
		return g_strdup("unlimited");
	if (bytes_per_s < 1024)
		return g_strdup_printf("%" G_GUINT64_FORMAT " B/s", bytes_per_s);

	value /= 1024.0;
	/* 1023.96 KB would print as 1024.0 KB: move up a unit before rounding gets there */
	while (value >= 1023.95 && unit + 1 < G_N_ELEMENTS(unit_names)) {
		value /= 1024.0;
		unit++;
	}
	text = g_strdup_printf("%.1f", value);
	if (g_str_has_suffix(text, ".0"))
		text[strlen(text) - 2] = '\0';
	return g_strdup_printf("%s %s/s", text, unit_names[unit]);
}

static guint64
as_rate_limiter_auto_burst(guint64 rate)
{
	return MAX(rate / AS_RATE_LIMITER_BURST_DIVISOR, (guint64)AS_RATE_LIMITER_MIN_BURST);
}

/* adds the tokens earned since last_us at the current rate; rate must not be 0 */
static void
as_rate_limiter_refill_locked(AsRateLimiter *self, gint64 now_us)
{
	gint64 burst_ub = (gint64)self->burst * AS_RATE_LIMITER_MICRO;
	guint64 elapsed_us;
	guint64 need_ub;

	/* the first use starts with a full bucket */
	if (self->last_us < 0) {
		self->tokens_ub = burst_ub;
		self->last_us = MAX(now_us, 0);
		return;
	}

	/* callers read the clock before taking the lock, so time may appear to go backwards */
	if (now_us <= self->last_us)
		return;
	elapsed_us = (guint64)(now_us - self->last_us);
	self->last_us = now_us;
	if (self->tokens_ub >= burst_ub)
		return;

	/* both fit in gint64: tokens >= AS_RATE_LIMITER_MIN_TOKENS and burst <= 1 TiB */
	need_ub = (guint64)(burst_ub - self->tokens_ub);
	if (elapsed_us >= need_ub / self->rate + 1)
		self->tokens_ub = burst_ub;
	else
		self->tokens_ub += (gint64)(elapsed_us * self->rate);
}

static gint64
as_rate_limiter_delay_locked(AsRateLimiter *self)
{
	if (self->rate == 0 || self->tokens_ub >= 0)
		return 0;
	return (gint64)(((guint64)(-self->tokens_ub) + self->rate - 1) / self->rate);
}

/**
 * as_rate_limiter_reserve:
 * @self: a #AsRateLimiter
 * @bytes: bytes the caller is about to send
 * @now_us: the current monotonic time, from g_get_monotonic_time()
 *
 * Takes @bytes from the bucket and returns how long the caller must wait before sending them.
 * The bytes are charged at once, possibly putting the bucket into debt, so concurrent callers
 * queue behind each other and the long-run average never exceeds the rate, whatever the
 * mix of sizes. Reserve pieces no larger than the burst (one socket write, not a whole chunk)
 * to keep the flow smooth. While waiting, a caller may poll as_rate_limiter_get_delay() so a
 * rate change through as_rate_limiter_set_rate() shortens or lengthens the wait at once.
 *
 * Returns: microseconds to wait, 0 when within budget or when the limiter is unlimited
 **/
gint64
as_rate_limiter_reserve(AsRateLimiter *self, gsize bytes, gint64 now_us)
{
	g_autoptr(GMutexLocker) locker = NULL;
	guint64 charge;

	g_return_val_if_fail(AS_IS_RATE_LIMITER(self), 0);

	locker = g_mutex_locker_new(&self->mutex);
	if (self->rate == 0)
		return 0;
	as_rate_limiter_refill_locked(self, now_us);
	charge = MIN((guint64)bytes, AS_RATE_LIMIT_MAX_BYTES_PER_S);
	self->tokens_ub -= (gint64)charge * AS_RATE_LIMITER_MICRO;
	if (self->tokens_ub < AS_RATE_LIMITER_MIN_TOKENS)
		self->tokens_ub = AS_RATE_LIMITER_MIN_TOKENS;
	return as_rate_limiter_delay_locked(self);
}

/**
 * as_rate_limiter_get_delay:
 * @self: a #AsRateLimiter
 * @now_us: the current monotonic time
 *
 * Returns: microseconds until the bytes reserved so far are paid for at the current rate, 0 if
 * they already are or the limiter is unlimited
 **/
gint64
as_rate_limiter_get_delay(AsRateLimiter *self, gint64 now_us)
{
	g_autoptr(GMutexLocker) locker = NULL;

	g_return_val_if_fail(AS_IS_RATE_LIMITER(self), 0);

	locker = g_mutex_locker_new(&self->mutex);
	if (self->rate == 0)
		return 0;
	as_rate_limiter_refill_locked(self, now_us);
	return as_rate_limiter_delay_locked(self);
}

/**
 * as_rate_limiter_set_rate:
 * @self: a #AsRateLimiter
 * @bytes_per_s: the new rate, 0 for no limit; clamped to %AS_RATE_LIMIT_MAX_BYTES_PER_S
 * @now_us: the current monotonic time
 *
 * Changes the rate at once: tokens earned until @now_us count at the old rate, everything after
 * at the new one, and any debt is paid off at the new rate. An automatic burst follows the new
 * rate. Switching to unlimited forgives the debt; switching back starts with a full bucket.
 **/
void
as_rate_limiter_set_rate(AsRateLimiter *self, guint64 bytes_per_s, gint64 now_us)
{
	g_autoptr(GMutexLocker) locker = NULL;
	gint64 burst_ub;

	g_return_if_fail(AS_IS_RATE_LIMITER(self));

	locker = g_mutex_locker_new(&self->mutex);
	bytes_per_s = MIN(bytes_per_s, AS_RATE_LIMIT_MAX_BYTES_PER_S);
	if (self->rate != 0 && self->last_us >= 0)
		as_rate_limiter_refill_locked(self, now_us);
	if (self->rate == 0 || bytes_per_s == 0)
		self->last_us = -1;
	self->rate = bytes_per_s;
	if (self->burst_auto)
		self->burst = as_rate_limiter_auto_burst(bytes_per_s);
	burst_ub = (gint64)self->burst * AS_RATE_LIMITER_MICRO;
	if (self->tokens_ub > burst_ub)
		self->tokens_ub = burst_ub;
}

/**
 * as_rate_limiter_get_rate:
 * @self: a #AsRateLimiter
 *
 * Returns: the rate in bytes per second, 0 for no limit
 **/
guint64
as_rate_limiter_get_rate(AsRateLimiter *self)
{
	g_autoptr(GMutexLocker) locker = NULL;

	g_return_val_if_fail(AS_IS_RATE_LIMITER(self), 0);

	locker = g_mutex_locker_new(&self->mutex);
	return self->rate;
}

/**
 * as_rate_limiter_get_burst:
 * @self: a #AsRateLimiter
 *
 * Returns: the bucket size in bytes
 **/
guint64
as_rate_limiter_get_burst(AsRateLimiter *self)
{
	g_autoptr(GMutexLocker) locker = NULL;

	g_return_val_if_fail(AS_IS_RATE_LIMITER(self), 0);

	locker = g_mutex_locker_new(&self->mutex);
	return self->burst;
}

/**
 * as_rate_limiter_reserve_pair:
 * @a: (nullable): a #AsRateLimiter, e.g. the transfer's own
 * @b: (nullable): a #AsRateLimiter, e.g. the daemon-wide one
 * @bytes: bytes the caller is about to send
 * @now_us: the current monotonic time
 *
 * Charges @bytes to both limiters, for a per-transfer limit under a global one. Both are
 * charged even when one alone would make the caller wait, so the global limiter sees every
 * transfer's traffic and shares its rate between them.
 *
 * Returns: the longer of the two delays, in microseconds
 **/
gint64
as_rate_limiter_reserve_pair(AsRateLimiter *a, AsRateLimiter *b, gsize bytes, gint64 now_us)
{
	gint64 delay_a = a != NULL ? as_rate_limiter_reserve(a, bytes, now_us) : 0;
	gint64 delay_b = b != NULL ? as_rate_limiter_reserve(b, bytes, now_us) : 0;
	return MAX(delay_a, delay_b);
}

/**
 * as_rate_limiter_get_delay_pair:
 * @a: (nullable): a #AsRateLimiter
 * @b: (nullable): a #AsRateLimiter
 * @now_us: the current monotonic time
 *
 * Returns: the longer of as_rate_limiter_get_delay() of both, in microseconds
 **/
gint64
as_rate_limiter_get_delay_pair(AsRateLimiter *a, AsRateLimiter *b, gint64 now_us)
{
	gint64 delay_a = a != NULL ? as_rate_limiter_get_delay(a, now_us) : 0;
	gint64 delay_b = b != NULL ? as_rate_limiter_get_delay(b, now_us) : 0;
	return MAX(delay_a, delay_b);
}

/**
 * as_rate_limiter_pair_is_limited:
 * @a: (nullable): a #AsRateLimiter
 * @b: (nullable): a #AsRateLimiter
 *
 * Returns: whether either limiter has a rate set now
 **/
gboolean
as_rate_limiter_pair_is_limited(AsRateLimiter *a, AsRateLimiter *b)
{
	return (a != NULL && as_rate_limiter_get_rate(a) > 0) ||
	       (b != NULL && as_rate_limiter_get_rate(b) > 0);
}

/**
 * as_rate_limiter_wait_pair:
 * @a: (nullable): a #AsRateLimiter
 * @b: (nullable): a #AsRateLimiter
 * @bytes: bytes the caller is about to read or send
 * @stop: (nullable): an atomic flag that makes the wait give up when set
 * @cancellable: (nullable): gives up the wait too
 * @recheck_ms: how often the limiters are asked again, so a rate changed meanwhile applies
 *
 * Charges @bytes to both limiters and sleeps until they allow them. Blocks: for worker
 * threads that feed a transfer from disk.
 *
 * Returns: %FALSE when @stop was set or @cancellable cancelled during the wait
 **/
gboolean
as_rate_limiter_wait_pair(AsRateLimiter *a,
			  AsRateLimiter *b,
			  gsize bytes,
			  const gint *stop,
			  GCancellable *cancellable,
			  guint recheck_ms)
{
	gint64 delay = as_rate_limiter_reserve_pair(a, b, bytes, g_get_monotonic_time());

	while (delay > 0) {
		if ((stop != NULL && g_atomic_int_get(stop)) ||
		    g_cancellable_is_cancelled(cancellable))
			return FALSE;
		g_usleep((gulong)MIN(delay, (gint64)recheck_ms * 1000));
		delay = as_rate_limiter_get_delay_pair(a, b, g_get_monotonic_time());
	}
	return TRUE;
}

static void
as_rate_limiter_finalize(GObject *object)
{
	AsRateLimiter *self = AS_RATE_LIMITER(object);

	g_mutex_clear(&self->mutex);
	G_OBJECT_CLASS(as_rate_limiter_parent_class)->finalize(object);
}

static void
as_rate_limiter_class_init(AsRateLimiterClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);
	object_class->finalize = as_rate_limiter_finalize;
}

static void
as_rate_limiter_init(AsRateLimiter *self)
{
	g_mutex_init(&self->mutex);
	self->last_us = -1;
}

/**
 * as_rate_limiter_new:
 * @bytes_per_s: the rate, 0 for no limit; clamped to %AS_RATE_LIMIT_MAX_BYTES_PER_S
 * @burst_bytes: the bucket size, or 0 for the automatic size of
 *   max(rate / %AS_RATE_LIMITER_BURST_DIVISOR, %AS_RATE_LIMITER_MIN_BURST), which then follows
 *   as_rate_limiter_set_rate()
 *
 * Creates a thread-safe token bucket. It reads no clock itself: every call takes the caller's
 * monotonic time, so tests can drive it with a fake clock. The bucket starts full.
 *
 * Returns: (transfer full): a new #AsRateLimiter
 **/
AsRateLimiter *
as_rate_limiter_new(guint64 bytes_per_s, guint64 burst_bytes)
{
	AsRateLimiter *self = g_object_new(AS_TYPE_RATE_LIMITER, NULL);

	self->rate = MIN(bytes_per_s, AS_RATE_LIMIT_MAX_BYTES_PER_S);
	self->burst_auto = burst_bytes == 0;
	self->burst = self->burst_auto ? as_rate_limiter_auto_burst(self->rate)
				       : MIN(burst_bytes, AS_RATE_LIMIT_MAX_BYTES_PER_S);
	return self;
}
