/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "AsAudit"

#include "config.h"

#include "as-audit.h"

/**
 * as_audit_event_to_string:
 * @event: an #AsAuditEvent
 *
 * Returns: the 0.x `event.type` string, e.g. "transfer_completed"
 **/
const gchar *
as_audit_event_to_string(AsAuditEvent event)
{
	switch (event) {
	case AS_AUDIT_TRANSFER_STARTED:
		return "transfer_started";
	case AS_AUDIT_TRANSFER_COMPLETED:
		return "transfer_completed";
	case AS_AUDIT_TRANSFER_FAILED:
		return "transfer_failed";
	case AS_AUDIT_AUTH_FAILED:
		return "auth_failed";
	case AS_AUDIT_CHUNK_UPLOADED:
		return "chunk_uploaded";
	default:
		return NULL;
	}
}

/**
 * as_audit_entry_new:
 * @event: what happened
 * @direction: "send" or "receive"
 * @protocol: e.g. "http", "http-chunk", "quic"
 * @filename: (nullable): the file; %NULL is written as "" as 0.x did for auth failures
 * @size: bytes concerned
 * @sha256: (nullable): hex digest
 * @remote_ip: (nullable): the peer
 * @error: (nullable): why it failed; %NULL records `"result":"ok"`
 *
 * Builds an audit line in the 0.x AuditRecord shape and key order, stamped with the current
 * time: `{"timestamp","event":{"type"},"direction","protocol","filename","size","sha256",
 * "remote_ip","result"}` where result is "ok" or `{"err":msg}`.
 *
 * Returns: (transfer full): a new object
 **/
JsonObject *
as_audit_entry_new(AsAuditEvent event,
		   const gchar *direction,
		   const gchar *protocol,
		   const gchar *filename,
		   guint64 size,
		   const gchar *sha256,
		   const gchar *remote_ip,
		   const gchar *error)
{
	const gchar *type = as_audit_event_to_string(event);
	JsonObject *obj;
	JsonObject *ev;

	g_return_val_if_fail(type != NULL, NULL);
	g_return_val_if_fail(direction != NULL, NULL);
	g_return_val_if_fail(protocol != NULL, NULL);

	obj = json_object_new();
	json_object_set_int_member(obj, "timestamp", g_get_real_time() / G_USEC_PER_SEC);
	ev = json_object_new();
	json_object_set_string_member(ev, "type", type);
	json_object_set_object_member(obj, "event", ev);
	json_object_set_string_member(obj, "direction", direction);
	json_object_set_string_member(obj, "protocol", protocol);
	json_object_set_string_member(obj, "filename", filename != NULL ? filename : "");
	json_object_set_int_member(obj, "size", (gint64)MIN(size, (guint64)G_MAXINT64));
	if (sha256 != NULL)
		json_object_set_string_member(obj, "sha256", sha256);
	else
		json_object_set_null_member(obj, "sha256");
	if (remote_ip != NULL)
		json_object_set_string_member(obj, "remote_ip", remote_ip);
	else
		json_object_set_null_member(obj, "remote_ip");
	if (error == NULL) {
		json_object_set_string_member(obj, "result", "ok");
	} else {
		JsonObject *result = json_object_new();
		json_object_set_string_member(result, "err", error);
		json_object_set_object_member(obj, "result", result);
	}
	return obj;
}

/**
 * as_audit_entry_set_chunk:
 * @entry: an entry from as_audit_entry_new() with %AS_AUDIT_CHUNK_UPLOADED
 * @index: the chunk index
 * @total: the number of chunks
 *
 * Adds `index` and `total` inside the event object, as 0.x's ChunkUploaded did.
 **/
void
as_audit_entry_set_chunk(JsonObject *entry, guint32 index, guint32 total)
{
	JsonObject *ev;

	g_return_if_fail(entry != NULL);
	ev = json_object_get_object_member(entry, "event");
	g_return_if_fail(ev != NULL);
	json_object_set_int_member(ev, "index", index);
	json_object_set_int_member(ev, "total", total);
}
