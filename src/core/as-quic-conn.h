/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* internal to AsQuicServer and AsQuicClient: UDP I/O with GSO/GRO, the shared connection core
 * (timer, write pass, closing and draining) and stream send buffers; not for the daemon */

#include <gio/gio.h>
#include <gnutls/gnutls.h>
#include <ngtcp2/ngtcp2.h>
#include <ngtcp2/ngtcp2_crypto.h>
#include <sys/socket.h>

#include "as-quic.h"

G_BEGIN_DECLS

/* connection IDs we issue have this fixed length, so short headers can be demultiplexed */
#define AS_QUIC_SCID_LEN 18
/* one GSO batch (a UDP payload may not exceed 65507 bytes over IPv4) and one tx buffer */
#define AS_QUIC_TX_BATCH_MAX_BYTES 65000
#define AS_QUIC_TX_BUF_SIZE	   65536
#define AS_QUIC_MAX_GSO_SEGMENTS   64
/* receive: datagrams per recvmmsg(), buffer per datagram (room for a GRO super-datagram),
 * recvmmsg() calls per dispatch so timers are not starved by a busy socket */
#define AS_QUIC_RX_BATCH	   16
#define AS_QUIC_RX_BUF_SIZE	   65536
#define AS_QUIC_RX_ROUNDS	   4
#define AS_QUIC_SOCKET_BUFFER_SIZE (8 * 1024 * 1024)
/* stream data handed to ngtcp2 in one writev call */
#define AS_QUIC_MAX_VECS 16
/* ICMP port unreachable in a row that end an established connection */
#define AS_QUIC_CONN_MAX_REFUSED 3
/* CONNECTION_CLOSE is re-sent for at most this many packets received while closing */
#define AS_QUIC_CLOSE_RESEND_MAX 16
/* TLS 1.3 only, no middlebox compat mode (RFC 9001 8.4) */
#define AS_QUIC_TLS_PRIORITY                                                                       \
	"%DISABLE_TLS13_COMPAT_MODE:NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:+AES-128-GCM:"       \
	"+AES-256-GCM:+CHACHA20-POLY1305:+AES-128-CCM:-GROUP-ALL:+GROUP-X25519:+GROUP-SECP256R1:"  \
	"+GROUP-SECP384R1"

guint64 as_quic_now_ns(void);
guint64 as_quic_wall_clock_ns(void);
void as_quic_rand_cb(uint8_t *dest, size_t destlen, const ngtcp2_rand_ctx *rand_ctx);
void as_quic_random(void *buf, gsize len);
ngtcp2_cc_algo as_quic_cc_algo_to_ngtcp2(AsQuicCcAlgo algo);
gchar *as_quic_sockaddr_to_string(const struct sockaddr *sa, socklen_t len);
gboolean as_quic_sockaddr_from_inet(GInetSocketAddress *addr,
				    struct sockaddr_storage *ss,
				    socklen_t *len,
				    GError **error);

/* ---- UDP socket ---- */

typedef struct _AsQuicSocket AsQuicSocket;

typedef struct {
	const struct sockaddr *local;
	socklen_t local_len;
	const struct sockaddr *remote;
	socklen_t remote_len;
	guint32 ecn;
	const guint8 *data;
	gsize len;
} AsQuicDatagram;

/* neither callback may free the socket: defer that to a connection timer */
typedef void (*AsQuicSocketRecvFunc)(AsQuicSocket *sock,
				     const AsQuicDatagram *dgram,
				     gpointer user_data);
typedef void (*AsQuicSocketErrorFunc)(AsQuicSocket *sock, int errsv, gpointer user_data);
typedef void (*AsQuicSocketWritableFunc)(gpointer waiter);

typedef enum {
	AS_QUIC_SEND_OK,
	AS_QUIC_SEND_BLOCKED,
	AS_QUIC_SEND_FAILED,
} AsQuicSendResult;

AsQuicSocket *as_quic_socket_new_bound(GInetSocketAddress *address, GError **error);
AsQuicSocket *as_quic_socket_new_connected(GInetSocketAddress *remote, GError **error);
void as_quic_socket_start(AsQuicSocket *self,
			  GMainContext *context,
			  AsQuicSocketRecvFunc recv_func,
			  AsQuicSocketErrorFunc error_func,
			  gpointer user_data);
void as_quic_socket_free(AsQuicSocket *self);
const struct sockaddr *as_quic_socket_get_local(AsQuicSocket *self, socklen_t *len);
guint16 as_quic_socket_get_port(AsQuicSocket *self);
int as_quic_socket_get_family(AsQuicSocket *self);
AsQuicSendResult as_quic_socket_send(AsQuicSocket *self,
				     const struct sockaddr *remote,
				     socklen_t remote_len,
				     const struct sockaddr *local,
				     guint32 ecn,
				     const guint8 *data,
				     gsize len,
				     gsize gso_size,
				     gsize *sent,
				     int *errsv);
void
as_quic_socket_wait_writable(AsQuicSocket *self, AsQuicSocketWritableFunc func, gpointer waiter);
void as_quic_socket_cancel_wait(AsQuicSocket *self, gpointer waiter);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(AsQuicSocket, as_quic_socket_free)

/* ---- stream send buffers ---- */

typedef struct {
	guint8 *data; /* owned */
	gsize len;
	guint64 offset; /* stream offset of data[0] */
} AsQuicChunk;

typedef struct {
	int64_t id;	   /* -1 until the stream is open */
	GQueue chunks;	   /* (element-type AsQuicChunk), freed as they are acknowledged */
	guint64 queued;	   /* bytes appended */
	guint64 sent;	   /* bytes handed to ngtcp2 */
	guint64 acked;	   /* bytes acknowledged by the peer */
	gboolean fin;	   /* nothing more will be appended */
	gboolean fin_sent; /* FIN handed to ngtcp2 */
	gboolean blocked;  /* out of stream credit until extend_max_stream_data */
	gboolean shut;	   /* write side reset: never send again */
	GList link;	   /* in AsQuicConn.send_queue while link.data != NULL */
} AsQuicSendStream;

void as_quic_send_stream_init(AsQuicSendStream *self);
void as_quic_send_stream_clear(AsQuicSendStream *self);
guint64 as_quic_send_stream_ack(AsQuicSendStream *self, guint64 offset, guint64 len);
guint64 as_quic_send_stream_get_buffered(AsQuicSendStream *self);
gboolean as_quic_send_stream_is_done(AsQuicSendStream *self);

/* ---- connection core ---- */

typedef struct _AsQuicConn AsQuicConn;

typedef struct {
	/* before each write pass, never inside an ngtcp2 callback: release credit, open streams */
	void (*prepare_write)(AsQuicConn *conn);
	/* the connection is over; called from its timer, so the owner may free it here.
	 * @error is %NULL for an orderly close */
	void (*closed)(AsQuicConn *conn, const GError *error);
} AsQuicConnVfuncs;

typedef enum {
	AS_QUIC_CONN_STATE_OPEN,
	AS_QUIC_CONN_STATE_CLOSING,  /* we sent CONNECTION_CLOSE: repeat it, wait 3 PTO */
	AS_QUIC_CONN_STATE_DRAINING, /* the peer closed: stay silent, wait 3 PTO */
	AS_QUIC_CONN_STATE_DEAD,     /* drop at the next timer dispatch */
} AsQuicConnState;

struct _AsQuicConn {
	ngtcp2_crypto_conn_ref conn_ref; /* what the GnuTLS session points at */
	const AsQuicConnVfuncs *vfuncs;
	ngtcp2_conn *conn;	  /* owned */
	gnutls_session_t session; /* owned */
	AsQuicSocket *sock;	  /* unowned */
	struct sockaddr_storage local;
	socklen_t local_len;
	struct sockaddr_storage remote;
	socklen_t remote_len;
	GSource *timer;	   /* owned */
	GQueue send_queue; /* (element-type AsQuicSendStream) with something to send */
	GQueue tx_pending; /* batches the socket refused with EAGAIN, in order */
	guint8 *txbuf;	   /* owned, AS_QUIC_TX_BUF_SIZE */
	AsQuicConnState state;
	ngtcp2_tstamp close_deadline;
	GBytes *close_pkt; /* our CONNECTION_CLOSE, re-sent while closing */
	guint n_close_resent;
	guint n_rx_closing;
	guint n_refused; /* ICMP port unreachable since the last packet from the peer */
	GError *error;	 /* why the connection ended; the first reason wins */
	/* a client's connection owns its socket: if it closes before the handshake completed
	 * (ALPN refused, TLS alert), nothing is gained by lingering 3 PTO, and a sender that
	 * wants to fall back to HTTP should learn it at once */
	gboolean no_linger_before_handshake;
};

void as_quic_conn_init(AsQuicConn *self,
		       const AsQuicConnVfuncs *vfuncs,
		       AsQuicSocket *sock,
		       GMainContext *context,
		       const struct sockaddr *local,
		       socklen_t local_len,
		       const struct sockaddr *remote,
		       socklen_t remote_len);
gboolean as_quic_conn_setup_tls(AsQuicConn *self,
				gboolean server,
				gnutls_certificate_credentials_t creds,
				const gnutls_datum_t *alpns,
				guint n_alpns,
				GError **error);
void as_quic_conn_clear(AsQuicConn *self);
void as_quic_conn_schedule(AsQuicConn *self);
int as_quic_conn_read(AsQuicConn *self, const AsQuicDatagram *dgram);
void as_quic_conn_set_error(AsQuicConn *self, GError *error);
void as_quic_conn_close(AsQuicConn *self, const ngtcp2_connection_close_error *ccerr);
void as_quic_conn_close_liberr(AsQuicConn *self, int liberr);
void as_quic_conn_close_now(AsQuicConn *self, guint64 app_error_code, const gchar *reason);
void as_quic_conn_drop(AsQuicConn *self);
void as_quic_conn_refused(AsQuicConn *self);
gboolean as_quic_conn_is_open(AsQuicConn *self);
void as_quic_conn_queue_stream(AsQuicConn *self, AsQuicSendStream *stream);
void as_quic_conn_unqueue_stream(AsQuicConn *self, AsQuicSendStream *stream);
void as_quic_conn_append(AsQuicConn *self, AsQuicSendStream *stream, guint8 *data, gsize len);
void as_quic_conn_finish_stream(AsQuicConn *self, AsQuicSendStream *stream);
gchar *as_quic_conn_get_alpn(AsQuicConn *self);

G_END_DECLS
