/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "as-engine.h"

G_BEGIN_DECLS

/* below the daemon's state directory ($XDG_STATE_HOME/aerosync): one resume record per send */
#define AS_SENDER_STATE_SUBDIR "sending"

#define AS_TYPE_SENDER (as_sender_get_type())
G_DECLARE_FINAL_TYPE(AsSender, as_sender, AS, SENDER, GObject)

AsSender *as_sender_new(AsEngine *engine, guint64 global_rate_limit);
const gchar *as_sender_get_state_dir(AsSender *self);
void as_sender_set_global_rate_limit(AsSender *self, guint64 bytes_per_second);
guint64 as_sender_get_global_rate_limit(AsSender *self);
guint as_sender_get_n_jobs(AsSender *self);

void as_sender_send_async(AsSender *self,
			  const gchar *const *paths,
			  const gchar *destination,
			  GVariant *options,
			  GCancellable *cancellable,
			  GAsyncReadyCallback callback,
			  gpointer user_data);
gchar *as_sender_send_finish(AsSender *self, GAsyncResult *res, GError **error);

guint as_sender_resume_all(AsSender *self);
void as_sender_shutdown(AsSender *self);

G_END_DECLS
