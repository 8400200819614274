/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <libsoup/soup.h>

#include "as-engine.h"

G_BEGIN_DECLS

void as_http_chunk_begin(AsEngine *engine, SoupServerMessage *msg);
void as_http_chunk_finish(AsEngine *engine, SoupServerMessage *msg);
void as_http_chunk_complete(AsEngine *engine, SoupServerMessage *msg);
void as_http_chunk_status(AsEngine *engine, SoupServerMessage *msg);

G_END_DECLS
