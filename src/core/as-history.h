/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/**
 * AsHistoryRecord:
 * @id: (nullable): a UUID; %NULL generates one
 * @filename: the file name as sent or received
 * @saved_path: (nullable): where the receiver stored it
 * @size: bytes transferred
 * @sha256: (nullable): lower-case hex digest
 * @remote_ip: (nullable): the peer's address
 * @protocol: "http", "quic", ...
 * @direction: "send" or "receive"
 * @completed_at_s: unix time in seconds
 * @duration_ms: how long the transfer took
 * @success: whether it succeeded
 * @error: (nullable): why it failed
 *
 * One line of history.jsonl, in the 0.x HistoryEntry shape. Strings are borrowed.
 */
typedef struct {
	const gchar *id;
	const gchar *filename;
	const gchar *saved_path;
	guint64 size;
	const gchar *sha256;
	const gchar *remote_ip;
	const gchar *protocol;
	const gchar *direction;
	gint64 completed_at_s;
	guint64 duration_ms;
	gboolean success;
	const gchar *error;
} AsHistoryRecord;

JsonObject *as_history_record_to_json(const AsHistoryRecord *rec);
GVariant *as_history_json_to_variant(JsonObject *obj);

G_END_DECLS
