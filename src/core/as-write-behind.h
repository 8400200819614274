/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* smaller files are left to the page cache: their fdatasync() would cost more than it saves */
#define AS_WRITE_BEHIND_MIN_BYTES (8 * 1024 * 1024)
/* how much of a file written behind may sit in the page cache */
#define AS_WRITE_BEHIND_WINDOW (64 * 1024 * 1024)
/* the unit in which written pages are waited for and dropped */
#define AS_WRITE_BEHIND_STEP (1024 * 1024)

/* a file written front to back from @base, pushed to disk as it goes; used by one thread */
typedef struct {
	int fd;
	guint64 base;
	guint64 started; /* bytes after base whose writeback was started */
	guint64 dropped; /* bytes after base written out and dropped from the page cache */
	gboolean disabled;
} AsWriteBehind;

void as_write_behind_init(AsWriteBehind *self, int fd, guint64 base);
void as_write_behind_advance(AsWriteBehind *self, guint64 written);
gboolean as_write_behind_finish(AsWriteBehind *self, GError **error);

G_END_DECLS
