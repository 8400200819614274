/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <json-glib/json-glib.h>
#include <libsoup/soup.h>

G_BEGIN_DECLS

/* raw bodies at least this large bypass libsoup's 8 KiB body reads */
#define AS_HTTP_PUMP_MIN_BYTES (1024 * 1024)
/* one read(), hash update and pwrite() per block */
#define AS_HTTP_PUMP_BLOCK_SIZE (1024 * 1024)
/* the pump sleeps until this much of the body is queued on the socket (SO_RCVLOWAT) */
#define AS_HTTP_PUMP_RCVLOWAT (256 * 1024)
/* below that mark the pump still looks at the socket this often, for slow senders */
#define AS_HTTP_PUMP_WAIT_S 1
/* a sender that sends nothing for this long is dropped; progress, not total time, counts */
#define AS_HTTP_PUMP_IDLE_TIMEOUT_S 60

typedef struct _AsHttpPump AsHttpPump;

typedef enum {
	AS_HTTP_PUMP_FLAG_NONE = 0,
	AS_HTTP_PUMP_FLAG_HASH = 1 << 0,	 /* SHA-256 of the body */
	AS_HTTP_PUMP_FLAG_WRITE_BEHIND = 1 << 1, /* on disk as it arrives, page cache dropped */
} AsHttpPumpFlags;

typedef void (*AsHttpPumpProgressFunc)(AsHttpPump *pump, guint64 bytes_done, gpointer user_data);
/* @sha256 is "" when hashing was off, NULL on error */
typedef void (*AsHttpPumpDoneFunc)(AsHttpPump *pump,
				   const gchar *sha256,
				   const GError *error,
				   gpointer user_data);

gboolean as_http_pump_can_take(SoupServerMessage *msg, guint64 length);
AsHttpPump *as_http_pump_start(SoupServerMessage *msg,
			       int fd,
			       guint64 offset,
			       guint64 length,
			       gboolean hash,
			       AsHttpPumpProgressFunc progress_func,
			       AsHttpPumpDoneFunc done_func,
			       gpointer user_data);
AsHttpPump *as_http_pump_start_full(SoupServerMessage *msg,
				    int fd,
				    guint64 offset,
				    guint64 length,
				    AsHttpPumpFlags flags,
				    AsHttpPumpProgressFunc progress_func,
				    AsHttpPumpDoneFunc done_func,
				    gpointer user_data);
void as_http_pump_reply_json(AsHttpPump *pump, guint status, JsonObject *obj);
void as_http_pump_reply_error(AsHttpPump *pump, guint status, const gchar *message);
const gchar *as_http_pump_get_peer(AsHttpPump *pump);
guint as_http_pump_get_active(void);
guint as_http_pump_get_stolen_total(void);

G_END_DECLS
