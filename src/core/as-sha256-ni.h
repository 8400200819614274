/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

gboolean as_sha256_ni_available(void);
void
as_sha256_ni_compress_pair(guint32 *state_a, guint32 *state_b, const guint8 *data, gsize n_blocks);

G_END_DECLS
