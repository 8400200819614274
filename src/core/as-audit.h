/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/**
 * AsAuditEvent:
 * @AS_AUDIT_TRANSFER_STARTED: a transfer began
 * @AS_AUDIT_TRANSFER_COMPLETED: a transfer finished and verified
 * @AS_AUDIT_TRANSFER_FAILED: a transfer failed
 * @AS_AUDIT_AUTH_FAILED: a request was refused for its token
 * @AS_AUDIT_CHUNK_UPLOADED: one chunk was stored, see as_audit_entry_set_chunk()
 *
 * The `event.type` of an audit line, as in 0.x.
 */
typedef enum {
	AS_AUDIT_TRANSFER_STARTED,
	AS_AUDIT_TRANSFER_COMPLETED,
	AS_AUDIT_TRANSFER_FAILED,
	AS_AUDIT_AUTH_FAILED,
	AS_AUDIT_CHUNK_UPLOADED,
} AsAuditEvent;

const gchar *as_audit_event_to_string(AsAuditEvent event);
JsonObject *as_audit_entry_new(AsAuditEvent event,
			       const gchar *direction,
			       const gchar *protocol,
			       const gchar *filename,
			       guint64 size,
			       const gchar *sha256,
			       const gchar *remote_ip,
			       const gchar *error);
void as_audit_entry_set_chunk(JsonObject *entry, guint32 index, guint32 total);

G_END_DECLS
