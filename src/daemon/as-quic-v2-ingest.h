/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "as-engine.h"
#include "as-quic-server.h"

G_BEGIN_DECLS

void as_quic_v2_ingest_attach(AsEngine *engine, AsQuicServer *server);

G_END_DECLS
