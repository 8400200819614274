/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "as-engine.h"
#include "as-quic-server.h"
#include "as-tls-identity.h"

G_BEGIN_DECLS

#define AS_TYPE_QUIC_RECEIVER (as_quic_receiver_get_type())
G_DECLARE_FINAL_TYPE(AsQuicReceiver, as_quic_receiver, AS, QUIC_RECEIVER, GObject)

AsQuicReceiver *as_quic_receiver_new(AsEngine *engine, AsTlsIdentity *identity);
gboolean
as_quic_receiver_listen(AsQuicReceiver *self, const gchar *address, guint16 port, GError **error);
guint16 as_quic_receiver_get_port(AsQuicReceiver *self);
AsQuicServer *as_quic_receiver_get_server(AsQuicReceiver *self);
void as_quic_receiver_stop(AsQuicReceiver *self);

G_END_DECLS
