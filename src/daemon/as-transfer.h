/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib-object.h>

G_BEGIN_DECLS

/* the averaging window of the Rate property */
#define AS_TRANSFER_RATE_TAU_US (2 * G_USEC_PER_SEC)

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

const gchar *as_transfer_state_to_string(AsTransferState state);
gboolean as_transfer_state_is_final(AsTransferState state);

AsTransfer *as_transfer_new(const gchar *id,
			    const gchar *direction,
			    const gchar *protocol,
			    const gchar *filename,
			    const gchar *peer,
			    guint64 bytes_total);

const gchar *as_transfer_get_id(AsTransfer *self);
const gchar *as_transfer_get_direction(AsTransfer *self);
const gchar *as_transfer_get_protocol(AsTransfer *self);
void as_transfer_set_protocol(AsTransfer *self, const gchar *protocol);
const gchar *as_transfer_get_filename(AsTransfer *self);
void as_transfer_set_filename(AsTransfer *self, const gchar *filename);
const gchar *as_transfer_get_peer(AsTransfer *self);
AsTransferState as_transfer_get_state(AsTransfer *self);
void as_transfer_set_state(AsTransfer *self, AsTransferState state);
guint64 as_transfer_get_bytes_done(AsTransfer *self);
void as_transfer_set_bytes_done(AsTransfer *self, guint64 bytes_done);
guint64 as_transfer_get_bytes_total(AsTransfer *self);
void as_transfer_set_bytes_total(AsTransfer *self, guint64 bytes_total);
const gchar *as_transfer_get_sha256(AsTransfer *self);
void as_transfer_set_sha256(AsTransfer *self, const gchar *sha256);
const gchar *as_transfer_get_saved_path(AsTransfer *self);
void as_transfer_set_saved_path(AsTransfer *self, const gchar *saved_path);
const gchar *as_transfer_get_error(AsTransfer *self);
void as_transfer_set_error(AsTransfer *self, const gchar *error);
gint64 as_transfer_get_started_at(AsTransfer *self);
gint64 as_transfer_get_started_mono(AsTransfer *self);
const gchar *as_transfer_get_destination(AsTransfer *self);
void as_transfer_set_destination(AsTransfer *self, const gchar *destination);
guint as_transfer_get_files(AsTransfer *self);
void as_transfer_set_files(AsTransfer *self, guint files);
guint as_transfer_get_files_done(AsTransfer *self);
void as_transfer_set_files_done(AsTransfer *self, guint files_done);
guint as_transfer_get_files_failed(AsTransfer *self);
void as_transfer_set_files_failed(AsTransfer *self, guint files_failed);
guint64 as_transfer_get_rate(AsTransfer *self);
gint64 as_transfer_get_eta(AsTransfer *self);
guint64 as_transfer_get_rate_limit(AsTransfer *self);
void as_transfer_set_rate_limit(AsTransfer *self, guint64 bytes_per_second);

/* who can act on a transfer: the send engine installs one; receives have none */
typedef struct {
	gboolean (*pause)(gpointer user_data, GError **error);
	gboolean (*resume)(gpointer user_data, GError **error);
	gboolean (*cancel)(gpointer user_data, GError **error);
	gboolean (*set_rate_limit)(gpointer user_data, guint64 bytes_per_second, GError **error);
} AsTransferControl;

void
as_transfer_set_control(AsTransfer *self, const AsTransferControl *control, gpointer user_data);
gboolean as_transfer_pause(AsTransfer *self, GError **error);
gboolean as_transfer_resume(AsTransfer *self, GError **error);
gboolean as_transfer_cancel(AsTransfer *self, GError **error);
gboolean as_transfer_request_rate_limit(AsTransfer *self, guint64 bytes_per_second, GError **error);

G_END_DECLS
