/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* what the QUIC bench programs (as-quic-bench, as-quic-v2-bench) report about themselves */

#include <glib.h>
#include <sys/resource.h>

G_BEGIN_DECLS

/* user + system CPU of this process so far */
static inline gdouble
bench_cpu_seconds(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (gdouble)ru.ru_utime.tv_sec + (gdouble)ru.ru_utime.tv_usec / 1e6 +
	       (gdouble)ru.ru_stime.tv_sec + (gdouble)ru.ru_stime.tv_usec / 1e6;
}

static inline glong
bench_peak_rss_kib(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss;
}

/* a GSourceFunc for SIGINT/SIGTERM: stops the main loop given as user data */
static inline gboolean
bench_quit_cb(gpointer user_data)
{
	g_main_loop_quit(user_data);
	return G_SOURCE_REMOVE;
}

G_END_DECLS
