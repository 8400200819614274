/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib-object.h>

G_BEGIN_DECLS

#define AS_TYPE_TRANSFER (as_transfer_get_type())
G_DECLARE_FINAL_TYPE(AsTransfer, as_transfer, AS, TRANSFER, GObject)

typedef enum {
	AS_TRANSFER_STATE_QUEUED,
	AS_TRANSFER_STATE_CONNECTING,
	AS_TRANSFER_STATE_RUNNING,
	AS_TRANSFER_STATE_PAUSED,
	AS_TRANSFER_STATE_VERIFYING,
	AS_TRANSFER_STATE_COMPLETED,
	AS_TRANSFER_STATE_FAILED,
	AS_TRANSFER_STATE_CANCELLED,
} AsTransferState;

const gchar *
as_transfer_state_to_string(AsTransferState state);
gboolean
as_transfer_state_is_final(AsTransferState state);

AsTransfer *
as_transfer_new(const gchar *id,
		const gchar *direction,
		const gchar *protocol,
		const gchar *filename,
		const gchar *peer,
		guint64 bytes_total);

const gchar *
as_transfer_get_id(AsTransfer *self);
const gchar *
as_transfer_get_direction(AsTransfer *self);
const gchar *
as_transfer_get_protocol(AsTransfer *self);
const gchar *
as_transfer_get_filename(AsTransfer *self);
void
as_transfer_set_filename(AsTransfer *self, const gchar *filename);
const gchar *
as_transfer_get_peer(AsTransfer *self);
AsTransferState
as_transfer_get_state(AsTransfer *self);
void
as_transfer_set_state(AsTransfer *self, AsTransferState state);
guint64
as_transfer_get_bytes_done(AsTransfer *self);
void
as_transfer_set_bytes_done(AsTransfer *self, guint64 bytes_done);
guint64
as_transfer_get_bytes_total(AsTransfer *self);
void
as_transfer_set_bytes_total(AsTransfer *self, guint64 bytes_total);
const gchar *
as_transfer_get_sha256(AsTransfer *self);
void
as_transfer_set_sha256(AsTransfer *self, const gchar *sha256);
const gchar *
as_transfer_get_saved_path(AsTransfer *self);
void
as_transfer_set_saved_path(AsTransfer *self, const gchar *saved_path);
const gchar *
as_transfer_get_error(AsTransfer *self);
void
as_transfer_set_error(AsTransfer *self, const gchar *error);
gint64
as_transfer_get_started_at(AsTransfer *self);
gint64
as_transfer_get_started_mono(AsTransfer *self);

G_END_DECLS
