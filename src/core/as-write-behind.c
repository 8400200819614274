/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "AsWriteBehind"

#include "config.h"

#include <errno.h>
#include <fcntl.h>

#include "as-error.h"
#include "as-write-behind.h"

/*
 * Write-behind for a whole file arriving over the network: each block goes to the disk as it
 * is written (sync_file_range) and leaves the page cache once it is on disk, so a large
 * upload keeps at most AS_WRITE_BEHIND_WINDOW of it in memory instead of filling RAM with
 * dirty pages and evicting everything else, and "saved" can mean on disk for the price of a
 * short fdatasync(). It also means the pages the next blocks take are ones just freed: on
 * the 2-vCPU bench VM, where fresh pages cost the guest 2-3 s of CPU per GB (memory handed
 * back to the host), writing 1 GiB this way took 0.33 s of CPU instead of 1.4-2.0 s.
 * The cost elsewhere: a body moves no faster than the disk takes it.
 *
 * Not for chunk files: the whole-file hash reads their chunks back after they land.
 */

/**
 * as_write_behind_init:
 * @self: the state, owned by the caller
 * @fd: a file being written front to back
 * @base: the offset in @fd where the writing starts
 **/
void
as_write_behind_init(AsWriteBehind *self, int fd, guint64 base)
{
	self->fd = fd;
	self->base = base;
	self->started = 0;
	self->dropped = 0;
	self->disabled = FALSE;
}

/**
 * as_write_behind_advance:
 * @self: the state
 * @written: bytes after the base written so far
 *
 * Starts writeback of what was written since the last call, then waits for and drops
 * whatever fell out of the window. A failing call only turns the optimisation off: write
 * errors still surface in as_write_behind_finish().
 **/
void
as_write_behind_advance(AsWriteBehind *self, guint64 written)
{
	if (self->disabled || written <= self->started)
		return;
	if (sync_file_range(self->fd, (off_t)(self->base + self->started),
			    (off_t)(written - self->started), SYNC_FILE_RANGE_WRITE) != 0) {
		g_debug("sync_file_range: %s; writing through the page cache", g_strerror(errno));
		self->disabled = TRUE;
		return;
	}
	self->started = written;
	while (written - self->dropped > AS_WRITE_BEHIND_WINDOW) {
		off_t from = (off_t)(self->base + self->dropped);
		(void)sync_file_range(self->fd, from, AS_WRITE_BEHIND_STEP,
				      SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
					      SYNC_FILE_RANGE_WAIT_AFTER);
		(void)posix_fadvise(self->fd, from, AS_WRITE_BEHIND_STEP, POSIX_FADV_DONTNEED);
		self->dropped += AS_WRITE_BEHIND_STEP;
	}
}

/**
 * as_write_behind_finish:
 * @self: the state
 * @error: (nullable): optional return location for an error
 *
 * Makes everything written durable (fdatasync) and drops the rest from the page cache.
 *
 * Returns: %FALSE if the data could not be written out (a full disk, an I/O error)
 **/
gboolean
as_write_behind_finish(AsWriteBehind *self, GError **error)
{
	while (fdatasync(self->fd) < 0) {
		int errsv = errno;
		if (errsv == EINTR)
			continue;
		if (errsv == ENOSPC || errsv == EDQUOT) {
			g_set_error_literal(error, AS_ERROR, AS_ERROR_NO_SPACE,
					    "no space left on the receiving disk");
		} else {
			g_set_error(error, AS_ERROR, AS_ERROR_IO, "writing to disk failed: %s",
				    g_strerror(errsv));
		}
		return FALSE;
	}
	if (!self->disabled)
		(void)posix_fadvise(self->fd, (off_t)(self->base + self->dropped), 0,
				    POSIX_FADV_DONTNEED);
	return TRUE;
}
