/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/**
 * AsQuicCcAlgo:
 * @AS_QUIC_CC_ALGO_CUBIC: CUBIC, the default
 * @AS_QUIC_CC_ALGO_BBR: BBR (v1)
 * @AS_QUIC_CC_ALGO_BBR2: BBR v2 as in ngtcp2 0.12
 * @AS_QUIC_CC_ALGO_RENO: NewReno
 *
 * Congestion control of a QUIC sender; it matters on the side that sends the file.
 **/
typedef enum {
	AS_QUIC_CC_ALGO_CUBIC,
	AS_QUIC_CC_ALGO_BBR,
	AS_QUIC_CC_ALGO_BBR2,
	AS_QUIC_CC_ALGO_RENO,
} AsQuicCcAlgo;

/* application error codes carried by STOP_SENDING, RESET_STREAM and CONNECTION_CLOSE */
#define AS_QUIC_APP_ERROR_NONE	    0x0 /* orderly close */
#define AS_QUIC_APP_ERROR_REFUSED   0x1 /* upload refused: stop sending, the reply says why */
#define AS_QUIC_APP_ERROR_CANCELLED 0x2 /* the sender gave up on this upload */
#define AS_QUIC_APP_ERROR_SHUTDOWN  0x3 /* the endpoint is going away */

gboolean as_quic_cc_algo_from_string(const gchar *str, AsQuicCcAlgo *algo);
const gchar *as_quic_cc_algo_to_string(AsQuicCcAlgo algo);
gchar *as_quic_peer_host(const gchar *host_port);

G_END_DECLS
