/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <libsoup/soup.h>

#include "as-engine.h"

G_BEGIN_DECLS

/* called from the early handler, before the body is read */
void as_http_upload_single_begin(AsEngine *engine, SoupServerMessage *msg, const gchar *path_tail);
void as_http_upload_batch_begin(AsEngine *engine, SoupServerMessage *msg);
/* called once the body has been read */
void as_http_upload_finish(AsEngine *engine, SoupServerMessage *msg);

G_END_DECLS
