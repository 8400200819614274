/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "AsQuicConn"

#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <gnutls/crypto.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <ngtcp2/ngtcp2_crypto_gnutls.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "as-error.h"
#include "as-quic-conn.h"

/* ---- helpers ---- */

guint64
as_quic_now_ns(void)
{
	struct timespec ts;

	/* the clock g_get_monotonic_time() and GSource ready times use */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (guint64)ts.tv_sec * G_GUINT64_CONSTANT(1000000000) + (guint64)ts.tv_nsec;
}

/* address validation tokens outlive the process, so they carry wall-clock time */
guint64
as_quic_wall_clock_ns(void)
{
	return (guint64)g_get_real_time() * 1000;
}

void
as_quic_random(void *buf, gsize len)
{
	/* the nonce generator is the fast one and unpredictable, which is all CIDs and padding
	 * need; it only fails if the library failed its self-tests, which aborts elsewhere too */
	if (gnutls_rnd(GNUTLS_RND_NONCE, buf, len) != 0)
		g_error("gnutls_rnd failed");
}

void
as_quic_rand_cb(uint8_t *dest, size_t destlen, const ngtcp2_rand_ctx *rand_ctx)
{
	as_quic_random(dest, destlen);
}

ngtcp2_cc_algo
as_quic_cc_algo_to_ngtcp2(AsQuicCcAlgo algo)
{
	switch (algo) {
	case AS_QUIC_CC_ALGO_BBR:
		return NGTCP2_CC_ALGO_BBR;
	case AS_QUIC_CC_ALGO_BBR2:
		return NGTCP2_CC_ALGO_BBR2;
	case AS_QUIC_CC_ALGO_RENO:
		return NGTCP2_CC_ALGO_RENO;
	case AS_QUIC_CC_ALGO_CUBIC:
	default:
		return NGTCP2_CC_ALGO_CUBIC;
	}
}

static const gchar *const as_quic_cc_algo_names[] = {"cubic", "bbr", "bbr2", "reno"};

/**
 * as_quic_peer_host:
 * @host_port: (nullable): e.g. `192.0.2.1:5000` or `[2001:db8::1]:5000`, as the QUIC server
 *   gives peers
 *
 * Tokens, routing rules and the history know peers by address, without the port.
 *
 * Returns: (transfer full): `192.0.2.1` or `2001:db8::1`; "unknown" for %NULL
 **/
gchar *
as_quic_peer_host(const gchar *host_port)
{
	const gchar *colon;

	if (host_port == NULL)
		return g_strdup("unknown");
	if (host_port[0] == '[') {
		const gchar *end = strchr(host_port, ']');
		if (end != NULL)
			return g_strndup(host_port + 1, end - host_port - 1);
		return g_strdup(host_port);
	}
	colon = strrchr(host_port, ':');
	return colon != NULL ? g_strndup(host_port, colon - host_port) : g_strdup(host_port);
}

/**
 * as_quic_cc_algo_from_string:
 * @str: "cubic", "bbr", "bbr2" or "reno"
 * @algo: (out): the algorithm
 *
 * Returns: %TRUE if @str names an algorithm
 **/
gboolean
as_quic_cc_algo_from_string(const gchar *str, AsQuicCcAlgo *algo)
{
	g_return_val_if_fail(algo != NULL, FALSE);
	for (guint i = 0; str != NULL && i < G_N_ELEMENTS(as_quic_cc_algo_names); i++) {
		if (g_ascii_strcasecmp(str, as_quic_cc_algo_names[i]) == 0) {
			*algo = (AsQuicCcAlgo)i;
			return TRUE;
		}
	}
	return FALSE;
}

/**
 * as_quic_cc_algo_to_string:
 * @algo: a #AsQuicCcAlgo
 *
 * Returns: the lower-case name of @algo
 **/
const gchar *
as_quic_cc_algo_to_string(AsQuicCcAlgo algo)
{
	if ((guint)algo >= G_N_ELEMENTS(as_quic_cc_algo_names))
		return "unknown";
	return as_quic_cc_algo_names[algo];
}

gchar *
as_quic_sockaddr_to_string(const struct sockaddr *sa, socklen_t len)
{
	gchar buf[INET6_ADDRSTRLEN] = "";

	if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof(buf));
		return g_strdup_printf("%s:%u", buf, ntohs(sin->sin_port));
	}
	if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
		inet_ntop(AF_INET6, &sin6->sin6_addr, buf, sizeof(buf));
		return g_strdup_printf("[%s]:%u", buf, ntohs(sin6->sin6_port));
	}
	return g_strdup("unknown");
}

gboolean
as_quic_sockaddr_from_inet(GInetSocketAddress *addr,
			   struct sockaddr_storage *ss,
			   socklen_t *len,
			   GError **error)
{
	gssize native_len = g_socket_address_get_native_size(G_SOCKET_ADDRESS(addr));

	if (native_len <= 0 || (gsize)native_len > sizeof(*ss) ||
	    !g_socket_address_to_native(G_SOCKET_ADDRESS(addr), ss, sizeof(*ss), error))
		return FALSE;
	*len = (socklen_t)native_len;
	return TRUE;
}

/* ---- UDP socket ---- */

typedef struct {
	AsQuicSocketWritableFunc func;
	gpointer waiter;
} AsQuicSocketWaiter;

/* room for GRO segment size, ECN and the destination address of a datagram */
#define AS_QUIC_RX_CONTROL_SIZE                                                                    \
	(CMSG_SPACE(sizeof(int)) + CMSG_SPACE(sizeof(int)) + CMSG_SPACE(sizeof(struct in6_pktinfo)))

struct _AsQuicSocket {
	GSocket *gsocket; /* owned, owns the fd */
	int fd;
	int family;
	struct sockaddr_storage local; /* bound address, the port filled in */
	socklen_t local_len;
	gboolean wildcard;  /* bound to "any": the destination comes from IP_PKTINFO */
	gboolean connected; /* a client socket: no destination per datagram */
	gboolean gso;	    /* UDP_SEGMENT works; cleared on the first refusal */
	gboolean gro;
	GMainContext *context; /* owned */
	GSource *in_source;    /* owned */
	GSource *out_source;   /* owned, only while someone waits for G_IO_OUT */
	GQueue waiters;	       /* (element-type AsQuicSocketWaiter) */
	AsQuicSocketRecvFunc recv_func;
	AsQuicSocketErrorFunc error_func;
	gpointer user_data;
	/* receive batch */
	guint8 *rxbuf; /* owned, AS_QUIC_RX_BATCH * AS_QUIC_RX_BUF_SIZE */
	struct mmsghdr msgs[AS_QUIC_RX_BATCH];
	struct iovec iovs[AS_QUIC_RX_BATCH];
	struct sockaddr_storage names[AS_QUIC_RX_BATCH];
	guint8 controls[AS_QUIC_RX_BATCH][AS_QUIC_RX_CONTROL_SIZE];
};

static void
as_quic_socket_setsockopt_int(int fd, int level, int name, int value)
{
	/* best effort: each option only improves ECN, offload or buffering */
	if (setsockopt(fd, level, name, &value, sizeof(value)) != 0)
		g_debug("setsockopt(%d, %d): %s", level, name, g_strerror(errno));
}

static void
as_quic_socket_set_buffers(int fd)
{
	int size = AS_QUIC_SOCKET_BUFFER_SIZE;

	/* the *FORCE variants pass rmem_max with CAP_NET_ADMIN, the plain ones are capped */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) != 0)
		as_quic_socket_setsockopt_int(fd, SOL_SOCKET, SO_RCVBUF, size);
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof(size)) != 0)
		as_quic_socket_setsockopt_int(fd, SOL_SOCKET, SO_SNDBUF, size);
}

static AsQuicSocket *
as_quic_socket_new_for_family(int family, GError **error)
{
	g_autoptr(AsQuicSocket) self = g_new0(AsQuicSocket, 1);
	int fd;
	int value = 0;
	socklen_t value_len = sizeof(value);

	fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_UDP);
	if (fd < 0) {
		int errsv = errno;
		g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errsv),
			    "cannot create UDP socket: %s", g_strerror(errsv));
		return NULL;
	}
	self->fd = fd;
	self->family = family;
	self->gsocket = g_socket_new_from_fd(fd, error);
	if (self->gsocket == NULL) {
		close(fd);
		return NULL;
	}
	if (family == AF_INET6) {
		/* one socket per family: no v4-mapped addresses to translate */
		as_quic_socket_setsockopt_int(fd, IPPROTO_IPV6, IPV6_V6ONLY, 1);
		as_quic_socket_setsockopt_int(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, 1);
		as_quic_socket_setsockopt_int(fd, IPPROTO_IPV6, IPV6_RECVTCLASS, 1);
		as_quic_socket_setsockopt_int(fd, IPPROTO_IPV6, IPV6_MTU_DISCOVER,
					      IPV6_PMTUDISC_PROBE);
	} else {
		as_quic_socket_setsockopt_int(fd, IPPROTO_IP, IP_PKTINFO, 1);
		as_quic_socket_setsockopt_int(fd, IPPROTO_IP, IP_RECVTOS, 1);
		/* QUIC does its own path MTU discovery; never let the kernel fragment */
		as_quic_socket_setsockopt_int(fd, IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_PROBE);
	}
	as_quic_socket_set_buffers(fd);
	self->gso = getsockopt(fd, SOL_UDP, UDP_SEGMENT, &value, &value_len) == 0;
	self->gro = setsockopt(fd, SOL_UDP, UDP_GRO, &(int){1}, sizeof(int)) == 0;
	if (g_getenv("AS_QUIC_NO_GSO") != NULL)
		self->gso = FALSE;
	if (g_getenv("AS_QUIC_NO_GRO") != NULL && self->gro) {
		as_quic_socket_setsockopt_int(fd, SOL_UDP, UDP_GRO, 0);
		self->gro = FALSE;
	}
	g_debug("UDP socket family %d: GSO %s, GRO %s", family, self->gso ? "on" : "off",
		self->gro ? "on" : "off");
	return g_steal_pointer(&self);
}

static gboolean
as_quic_socket_update_local(AsQuicSocket *self, GError **error)
{
	self->local_len = sizeof(self->local);
	if (getsockname(self->fd, (struct sockaddr *)&self->local, &self->local_len) != 0) {
		int errsv = errno;
		g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errsv), "getsockname: %s",
			    g_strerror(errsv));
		return FALSE;
	}
	return TRUE;
}

/**
 * as_quic_socket_new_bound:
 * @address: the local address and port (0 picks one)
 * @error: (nullable): optional return location for an error
 *
 * A server socket bound to @address. An IPv6 socket is IPv6-only.
 *
 * Returns: (transfer full): a new socket, not yet watched
 **/
AsQuicSocket *
as_quic_socket_new_bound(GInetSocketAddress *address, GError **error)
{
	g_autoptr(AsQuicSocket) self = NULL;
	struct sockaddr_storage ss;
	socklen_t ss_len = 0;
	GInetAddress *inet = g_inet_socket_address_get_address(address);

	if (!as_quic_sockaddr_from_inet(address, &ss, &ss_len, error))
		return NULL;
	self = as_quic_socket_new_for_family(ss.ss_family, error);
	if (self == NULL)
		return NULL;
	if (bind(self->fd, (struct sockaddr *)&ss, ss_len) != 0) {
		int errsv = errno;
		g_autofree gchar *str = as_quic_sockaddr_to_string((struct sockaddr *)&ss, ss_len);
		g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errsv),
			    "cannot bind UDP %s: %s", str, g_strerror(errsv));
		return NULL;
	}
	if (!as_quic_socket_update_local(self, error))
		return NULL;
	self->wildcard = g_inet_address_get_is_any(inet);
	return g_steal_pointer(&self);
}

/**
 * as_quic_socket_new_connected:
 * @remote: the peer
 * @error: (nullable): optional return location for an error
 *
 * A client socket connect()ed to @remote, so the kernel filters other senders and an ICMP
 * port-unreachable surfaces as %ECONNREFUSED at once instead of a handshake timeout.
 *
 * Returns: (transfer full): a new socket, not yet watched
 **/
AsQuicSocket *
as_quic_socket_new_connected(GInetSocketAddress *remote, GError **error)
{
	g_autoptr(AsQuicSocket) self = NULL;
	struct sockaddr_storage ss;
	socklen_t ss_len = 0;

	if (!as_quic_sockaddr_from_inet(remote, &ss, &ss_len, error))
		return NULL;
	self = as_quic_socket_new_for_family(ss.ss_family, error);
	if (self == NULL)
		return NULL;
	if (connect(self->fd, (struct sockaddr *)&ss, ss_len) != 0) {
		int errsv = errno;
		g_autofree gchar *str = as_quic_sockaddr_to_string((struct sockaddr *)&ss, ss_len);
		g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errsv), "cannot reach %s: %s",
			    str, g_strerror(errsv));
		return NULL;
	}
	if (!as_quic_socket_update_local(self, error))
		return NULL;
	self->connected = TRUE;
	return g_steal_pointer(&self);
}

static void
as_quic_socket_parse_control(AsQuicSocket *self,
			     struct msghdr *msg,
			     struct sockaddr_storage *local,
			     guint32 *ecn,
			     gsize *gso_size)
{
	for (struct cmsghdr *cmsg = CMSG_FIRSTHDR(msg); cmsg != NULL;
	     cmsg = CMSG_NXTHDR(msg, cmsg)) {
		if (cmsg->cmsg_level == SOL_UDP && cmsg->cmsg_type == UDP_GRO) {
			int size;
			memcpy(&size, CMSG_DATA(cmsg), sizeof(size));
			if (size > 0)
				*gso_size = (gsize)size;
		} else if (cmsg->cmsg_level == IPPROTO_IP && cmsg->cmsg_type == IP_TOS) {
			guint8 tos;
			memcpy(&tos, CMSG_DATA(cmsg), sizeof(tos));
			*ecn = tos & NGTCP2_ECN_MASK;
		} else if (cmsg->cmsg_level == IPPROTO_IPV6 && cmsg->cmsg_type == IPV6_TCLASS) {
			int tclass;
			memcpy(&tclass, CMSG_DATA(cmsg), sizeof(tclass));
			*ecn = (guint32)tclass & NGTCP2_ECN_MASK;
		} else if (self->wildcard && cmsg->cmsg_level == IPPROTO_IP &&
			   cmsg->cmsg_type == IP_PKTINFO) {
			struct in_pktinfo pktinfo;
			struct sockaddr_in *sin = (struct sockaddr_in *)local;
			memcpy(&pktinfo, CMSG_DATA(cmsg), sizeof(pktinfo));
			sin->sin_addr = pktinfo.ipi_addr;
		} else if (self->wildcard && cmsg->cmsg_level == IPPROTO_IPV6 &&
			   cmsg->cmsg_type == IPV6_PKTINFO) {
			struct in6_pktinfo pktinfo;
			struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)local;
			memcpy(&pktinfo, CMSG_DATA(cmsg), sizeof(pktinfo));
			sin6->sin6_addr = pktinfo.ipi6_addr;
		}
	}
}

static gboolean
as_quic_socket_on_readable(GSocket *gsocket, GIOCondition condition, gpointer user_data)
{
	AsQuicSocket *self = user_data;

	for (guint round = 0; round < AS_QUIC_RX_ROUNDS; round++) {
		int n;

		for (guint i = 0; i < AS_QUIC_RX_BATCH; i++) {
			struct msghdr *hdr = &self->msgs[i].msg_hdr;
			self->iovs[i].iov_base = self->rxbuf + (gsize)i * AS_QUIC_RX_BUF_SIZE;
			self->iovs[i].iov_len = AS_QUIC_RX_BUF_SIZE;
			hdr->msg_iov = &self->iovs[i];
			hdr->msg_iovlen = 1;
			hdr->msg_name = &self->names[i];
			hdr->msg_namelen = sizeof(self->names[i]);
			hdr->msg_control = self->controls[i];
			hdr->msg_controllen = sizeof(self->controls[i]);
			hdr->msg_flags = 0;
		}
		n = recvmmsg(self->fd, self->msgs, AS_QUIC_RX_BATCH, MSG_DONTWAIT, NULL);
		if (n < 0) {
			int errsv = errno;
			if (errsv != EAGAIN && errsv != EWOULDBLOCK && errsv != EINTR &&
			    self->error_func != NULL)
				self->error_func(self, errsv, self->user_data);
			break;
		}
		for (int i = 0; i < n; i++) {
			struct msghdr *hdr = &self->msgs[i].msg_hdr;
			struct sockaddr_storage local = self->local;
			gsize total = self->msgs[i].msg_len;
			gsize seg = total;
			const guint8 *data = self->iovs[i].iov_base;
			AsQuicDatagram dgram = {0};

			if (hdr->msg_flags & MSG_TRUNC)
				continue;
			as_quic_socket_parse_control(self, hdr, &local, &dgram.ecn, &seg);
			dgram.local = (const struct sockaddr *)&local;
			dgram.local_len = self->local_len;
			dgram.remote = (const struct sockaddr *)&self->names[i];
			dgram.remote_len = hdr->msg_namelen;
			/* a GRO super-datagram is a run of equal segments, the last maybe shorter
			 */
			for (gsize off = 0; off < total; off += seg) {
				dgram.data = data + off;
				dgram.len = MIN(seg, total - off);
				self->recv_func(self, &dgram, self->user_data);
			}
		}
		if (n < AS_QUIC_RX_BATCH)
			break;
	}
	return G_SOURCE_CONTINUE;
}

/**
 * as_quic_socket_start:
 * @self: a socket
 * @context: where to watch it
 * @recv_func: called for every datagram (GRO batches already split)
 * @error_func: (nullable): called when receiving fails, e.g. %ECONNREFUSED on a connected socket
 * @user_data: for both callbacks
 *
 * Starts watching the socket with a #GSocket source.
 **/
void
as_quic_socket_start(AsQuicSocket *self,
		     GMainContext *context,
		     AsQuicSocketRecvFunc recv_func,
		     AsQuicSocketErrorFunc error_func,
		     gpointer user_data)
{
	g_return_if_fail(self->in_source == NULL);

	self->recv_func = recv_func;
	self->error_func = error_func;
	self->user_data = user_data;
	self->context = g_main_context_ref(context);
	self->rxbuf = g_malloc((gsize)AS_QUIC_RX_BATCH * AS_QUIC_RX_BUF_SIZE);
	self->in_source = g_socket_create_source(self->gsocket, G_IO_IN, NULL);
	g_source_set_callback(self->in_source, G_SOURCE_FUNC(as_quic_socket_on_readable), self,
			      NULL);
	g_source_set_name(self->in_source, "AsQuicSocket");
	g_source_attach(self->in_source, context);
}

void
as_quic_socket_free(AsQuicSocket *self)
{
	if (self == NULL)
		return;
	if (self->in_source != NULL) {
		g_source_destroy(self->in_source);
		g_source_unref(self->in_source);
	}
	if (self->out_source != NULL) {
		g_source_destroy(self->out_source);
		g_source_unref(self->out_source);
	}
	g_queue_clear_full(&self->waiters, g_free);
	if (self->context != NULL)
		g_main_context_unref(self->context);
	g_clear_object(&self->gsocket);
	g_free(self->rxbuf);
	g_free(self);
}

const struct sockaddr *
as_quic_socket_get_local(AsQuicSocket *self, socklen_t *len)
{
	*len = self->local_len;
	return (const struct sockaddr *)&self->local;
}

guint16
as_quic_socket_get_port(AsQuicSocket *self)
{
	if (self->local.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&self->local)->sin6_port);
	return ntohs(((struct sockaddr_in *)&self->local)->sin_port);
}

int
as_quic_socket_get_family(AsQuicSocket *self)
{
	return self->family;
}

static int
as_quic_socket_sendmsg(AsQuicSocket *self,
		       const struct sockaddr *remote,
		       socklen_t remote_len,
		       const struct sockaddr *local,
		       guint32 ecn,
		       const guint8 *data,
		       gsize len,
		       gsize gso_size)
{
	struct iovec iov = {(void *)data, len};
	struct msghdr msg = {0};
	union {
		guint8 buf[CMSG_SPACE(sizeof(guint16)) + CMSG_SPACE(sizeof(struct in6_pktinfo)) +
			   CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} control;
	struct cmsghdr *cmsg;
	gsize control_len = 0;

	memset(&control, 0, sizeof(control));
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	if (!self->connected) {
		msg.msg_name = (void *)remote;
		msg.msg_namelen = remote_len;
	}
	msg.msg_control = control.buf;
	msg.msg_controllen = sizeof(control.buf);
	cmsg = CMSG_FIRSTHDR(&msg);

	if (gso_size > 0 && len > gso_size) {
		guint16 segment = (guint16)gso_size;
		cmsg->cmsg_level = SOL_UDP;
		cmsg->cmsg_type = UDP_SEGMENT;
		cmsg->cmsg_len = CMSG_LEN(sizeof(segment));
		memcpy(CMSG_DATA(cmsg), &segment, sizeof(segment));
		control_len += CMSG_SPACE(sizeof(segment));
		cmsg = CMSG_NXTHDR(&msg, cmsg);
	}
	/* answer from the address the peer wrote to, not whatever the routing table picks */
	if (self->wildcard && local != NULL) {
		if (self->family == AF_INET6) {
			struct in6_pktinfo pktinfo = {0};
			pktinfo.ipi6_addr = ((const struct sockaddr_in6 *)local)->sin6_addr;
			cmsg->cmsg_level = IPPROTO_IPV6;
			cmsg->cmsg_type = IPV6_PKTINFO;
			cmsg->cmsg_len = CMSG_LEN(sizeof(pktinfo));
			memcpy(CMSG_DATA(cmsg), &pktinfo, sizeof(pktinfo));
			control_len += CMSG_SPACE(sizeof(pktinfo));
		} else {
			struct in_pktinfo pktinfo = {0};
			pktinfo.ipi_spec_dst = ((const struct sockaddr_in *)local)->sin_addr;
			cmsg->cmsg_level = IPPROTO_IP;
			cmsg->cmsg_type = IP_PKTINFO;
			cmsg->cmsg_len = CMSG_LEN(sizeof(pktinfo));
			memcpy(CMSG_DATA(cmsg), &pktinfo, sizeof(pktinfo));
			control_len += CMSG_SPACE(sizeof(pktinfo));
		}
		cmsg = CMSG_NXTHDR(&msg, cmsg);
	}
	if (ecn != 0) {
		int tos = (int)ecn;
		cmsg->cmsg_level = self->family == AF_INET6 ? IPPROTO_IPV6 : IPPROTO_IP;
		cmsg->cmsg_type = self->family == AF_INET6 ? IPV6_TCLASS : IP_TOS;
		cmsg->cmsg_len = CMSG_LEN(sizeof(tos));
		memcpy(CMSG_DATA(cmsg), &tos, sizeof(tos));
		control_len += CMSG_SPACE(sizeof(tos));
	}
	msg.msg_controllen = control_len;
	if (control_len == 0)
		msg.msg_control = NULL;

	for (;;) {
		ssize_t rc = sendmsg(self->fd, &msg, 0);
		if (rc >= 0)
			return 0;
		if (errno != EINTR)
			return errno;
	}
}

/**
 * as_quic_socket_send:
 * @self: a socket
 * @remote: the destination (ignored on a connected socket)
 * @remote_len: its length
 * @local: (nullable): the source address, for a wildcard-bound socket
 * @ecn: the ECN codepoint for every datagram
 * @data: (array length=len): @len bytes of datagrams of @gso_size bytes each, the last maybe
 *   shorter
 * @len: total bytes
 * @gso_size: size of each datagram
 * @sent: (out): bytes that left (a multiple of @gso_size unless all did)
 * @errsv: (out): errno on %AS_QUIC_SEND_FAILED
 *
 * Sends a batch with one sendmsg() and UDP_SEGMENT where the kernel can, else one datagram at a
 * time. The first refusal of GSO turns it off for the socket and the batch goes out unsegmented.
 *
 * Returns: %AS_QUIC_SEND_BLOCKED if the socket buffer is full (*sent bytes left)
 **/
AsQuicSendResult
as_quic_socket_send(AsQuicSocket *self,
		    const struct sockaddr *remote,
		    socklen_t remote_len,
		    const struct sockaddr *local,
		    guint32 ecn,
		    const guint8 *data,
		    gsize len,
		    gsize gso_size,
		    gsize *sent,
		    int *errsv)
{
	*sent = 0;
	*errsv = 0;
	if (len > gso_size && self->gso) {
		int rc = as_quic_socket_sendmsg(self, remote, remote_len, local, ecn, data, len,
						gso_size);
		if (rc == 0) {
			*sent = len;
			return AS_QUIC_SEND_OK;
		}
		if (rc == EAGAIN || rc == EWOULDBLOCK)
			return AS_QUIC_SEND_BLOCKED;
		if (rc != EIO && rc != EINVAL && rc != EOPNOTSUPP && rc != ENOPROTOOPT) {
			*errsv = rc;
			return AS_QUIC_SEND_FAILED;
		}
		/* the route or device cannot segment: fall back for good */
		g_debug("UDP GSO refused (%s), sending datagrams one by one", g_strerror(rc));
		self->gso = FALSE;
	}
	while (*sent < len) {
		gsize n = MIN(gso_size, len - *sent);
		int rc = as_quic_socket_sendmsg(self, remote, remote_len, local, ecn, data + *sent,
						n, 0);
		if (rc == EAGAIN || rc == EWOULDBLOCK)
			return AS_QUIC_SEND_BLOCKED;
		if (rc != 0) {
			*errsv = rc;
			return AS_QUIC_SEND_FAILED;
		}
		*sent += n;
	}
	return AS_QUIC_SEND_OK;
}

static gboolean
as_quic_socket_on_writable(GSocket *gsocket, GIOCondition condition, gpointer user_data)
{
	AsQuicSocket *self = user_data;
	GQueue waiters = G_QUEUE_INIT;

	/* UDP is writable nearly always: watch G_IO_OUT only while someone is blocked */
	g_source_destroy(self->out_source);
	g_clear_pointer(&self->out_source, g_source_unref);
	waiters = self->waiters;
	g_queue_init(&self->waiters);
	for (GList *l = waiters.head; l != NULL; l = l->next) {
		AsQuicSocketWaiter *w = l->data;
		w->func(w->waiter);
	}
	g_queue_clear_full(&waiters, g_free);
	return G_SOURCE_REMOVE;
}

void
as_quic_socket_wait_writable(AsQuicSocket *self, AsQuicSocketWritableFunc func, gpointer waiter)
{
	AsQuicSocketWaiter *w;

	for (GList *l = self->waiters.head; l != NULL; l = l->next) {
		if (((AsQuicSocketWaiter *)l->data)->waiter == waiter)
			return;
	}
	w = g_new0(AsQuicSocketWaiter, 1);
	w->func = func;
	w->waiter = waiter;
	g_queue_push_tail(&self->waiters, w);
	if (self->out_source == NULL && self->context != NULL) {
		self->out_source = g_socket_create_source(self->gsocket, G_IO_OUT, NULL);
		g_source_set_callback(self->out_source, G_SOURCE_FUNC(as_quic_socket_on_writable),
				      self, NULL);
		g_source_attach(self->out_source, self->context);
	}
}

void
as_quic_socket_cancel_wait(AsQuicSocket *self, gpointer waiter)
{
	for (GList *l = self->waiters.head; l != NULL; l = l->next) {
		AsQuicSocketWaiter *w = l->data;
		if (w->waiter == waiter) {
			g_queue_delete_link(&self->waiters, l);
			g_free(w);
			return;
		}
	}
}

/* ---- stream send buffers ---- */

void
as_quic_send_stream_init(AsQuicSendStream *self)
{
	memset(self, 0, sizeof(*self));
	self->id = -1;
	g_queue_init(&self->chunks);
}

static void
as_quic_chunk_free(AsQuicChunk *chunk)
{
	g_free(chunk->data);
	g_free(chunk);
}

void
as_quic_send_stream_clear(AsQuicSendStream *self)
{
	g_queue_clear_full(&self->chunks, (GDestroyNotify)as_quic_chunk_free);
}

/* frees what the peer acknowledged; returns how many bytes that released */
guint64
as_quic_send_stream_ack(AsQuicSendStream *self, guint64 offset, guint64 len)
{
	guint64 released = 0;

	if (offset + len > self->acked)
		self->acked = offset + len;
	while (self->chunks.head != NULL) {
		AsQuicChunk *chunk = self->chunks.head->data;
		if (chunk->offset + chunk->len > self->acked)
			break;
		released += chunk->len;
		g_queue_pop_head(&self->chunks);
		as_quic_chunk_free(chunk);
	}
	return released;
}

/* bytes held in memory: not yet acknowledged */
guint64
as_quic_send_stream_get_buffered(AsQuicSendStream *self)
{
	guint64 total = 0;
	for (GList *l = self->chunks.head; l != NULL; l = l->next)
		total += ((AsQuicChunk *)l->data)->len;
	return total;
}

/* nothing left to hand to ngtcp2 */
gboolean
as_quic_send_stream_is_done(AsQuicSendStream *self)
{
	return self->shut || (self->sent == self->queued && (!self->fin || self->fin_sent));
}

static gboolean
as_quic_send_stream_has_data(AsQuicSendStream *self)
{
	return !self->shut && self->id >= 0 && !self->blocked && !as_quic_send_stream_is_done(self);
}

static gsize
as_quic_send_stream_get_vecs(
	AsQuicSendStream *self, ngtcp2_vec *vecs, gsize max_vecs, gsize *total, gboolean *fin)
{
	gsize n = 0;
	GList *l;

	*total = 0;
	for (l = self->chunks.head; l != NULL && n < max_vecs; l = l->next) {
		AsQuicChunk *chunk = l->data;
		gsize skip;

		if (chunk->offset + chunk->len <= self->sent)
			continue;
		skip = self->sent > chunk->offset ? (gsize)(self->sent - chunk->offset) : 0;
		vecs[n].base = chunk->data + skip;
		vecs[n].len = chunk->len - skip;
		*total += vecs[n].len;
		n++;
	}
	/* FIN rides along only when the vector reaches the end of what was queued */
	*fin = self->fin && !self->fin_sent && self->sent + *total == self->queued;
	return n;
}

/* ---- connection core ---- */

/* the connection timer: a deadline checked in prepare(), so re-arming it from the same thread
 * costs no wakeup write as g_source_set_ready_time() does */
typedef struct {
	GSource source;
	AsQuicConn *conn;
	guint64 deadline_ns; /* 0: now, UINT64_MAX: never */
} AsQuicTimerSource;

typedef struct {
	guint8 *data;
	gsize len;
	gsize gso_size;
	guint32 ecn;
} AsQuicTxBatch;

static void
as_quic_tx_batch_free(AsQuicTxBatch *batch)
{
	g_free(batch->data);
	g_free(batch);
}

static void as_quic_conn_on_timer(AsQuicConn *self);

static gboolean
as_quic_timer_prepare(GSource *source, gint *timeout)
{
	AsQuicTimerSource *timer = (AsQuicTimerSource *)source;
	guint64 now_ns;

	if (timer->deadline_ns == UINT64_MAX) {
		*timeout = -1;
		return FALSE;
	}
	now_ns = (guint64)g_source_get_time(source) * 1000;
	if (timer->deadline_ns <= now_ns) {
		*timeout = 0;
		return TRUE;
	}
	/* poll() counts milliseconds: round up, waking early would only spin */
	*timeout = (gint)MIN((timer->deadline_ns - now_ns + 999999) / 1000000, (guint64)G_MAXINT);
	return FALSE;
}

static gboolean
as_quic_timer_check(GSource *source)
{
	AsQuicTimerSource *timer = (AsQuicTimerSource *)source;
	return timer->deadline_ns != UINT64_MAX &&
	       timer->deadline_ns <= (guint64)g_source_get_time(source) * 1000;
}

static gboolean
as_quic_timer_dispatch(GSource *source, GSourceFunc callback, gpointer user_data)
{
	AsQuicTimerSource *timer = (AsQuicTimerSource *)source;

	/* whatever the dispatch decides replaces this */
	timer->deadline_ns = UINT64_MAX;
	as_quic_conn_on_timer(timer->conn);
	return G_SOURCE_CONTINUE;
}

static GSourceFuncs as_quic_timer_funcs = {
	.prepare = as_quic_timer_prepare,
	.check = as_quic_timer_check,
	.dispatch = as_quic_timer_dispatch,
};

static void
as_quic_conn_set_deadline(AsQuicConn *self, guint64 deadline_ns)
{
	if (self->timer != NULL)
		((AsQuicTimerSource *)self->timer)->deadline_ns = deadline_ns;
}

static ngtcp2_conn *
as_quic_conn_get_conn_cb(ngtcp2_crypto_conn_ref *conn_ref)
{
	AsQuicConn *self = conn_ref->user_data;
	return self->conn;
}

/**
 * as_quic_conn_init:
 *
 * Initialises the core of a connection embedded in a server or client connection. The
 * ngtcp2_conn is created by the owner afterwards (it needs the callbacks), then
 * as_quic_conn_setup_tls().
 **/
void
as_quic_conn_init(AsQuicConn *self,
		  const AsQuicConnVfuncs *vfuncs,
		  AsQuicSocket *sock,
		  GMainContext *context,
		  const struct sockaddr *local,
		  socklen_t local_len,
		  const struct sockaddr *remote,
		  socklen_t remote_len)
{
	AsQuicTimerSource *timer;

	self->conn_ref.get_conn = as_quic_conn_get_conn_cb;
	self->conn_ref.user_data = self;
	self->vfuncs = vfuncs;
	self->sock = sock;
	memcpy(&self->local, local, MIN(local_len, sizeof(self->local)));
	self->local_len = local_len;
	memcpy(&self->remote, remote, MIN(remote_len, sizeof(self->remote)));
	self->remote_len = remote_len;
	g_queue_init(&self->send_queue);
	g_queue_init(&self->tx_pending);
	self->txbuf = g_malloc(AS_QUIC_TX_BUF_SIZE);
	self->state = AS_QUIC_CONN_STATE_OPEN;
	self->timer = g_source_new(&as_quic_timer_funcs, sizeof(AsQuicTimerSource));
	timer = (AsQuicTimerSource *)self->timer;
	timer->conn = self;
	timer->deadline_ns = UINT64_MAX;
	g_source_set_name(self->timer, "AsQuicConn timer");
	g_source_attach(self->timer, context);
}

/**
 * as_quic_conn_setup_tls:
 *
 * Creates the GnuTLS session of the connection and ties it to the ngtcp2_conn. @alpns are
 * offered (client) or accepted (server, in order of preference); either way one must be agreed.
 **/
gboolean
as_quic_conn_setup_tls(AsQuicConn *self,
		       gboolean server,
		       gnutls_certificate_credentials_t creds,
		       const gnutls_datum_t *alpns,
		       guint n_alpns,
		       GError **error)
{
	guint flags = server ? GNUTLS_SERVER : GNUTLS_CLIENT;
	int rc;

	/* no 0-RTT: an upload in early data could be replayed */
	rc = gnutls_init(&self->session, flags | GNUTLS_NO_AUTO_SEND_TICKET);
	if (rc == 0)
		rc = gnutls_priority_set_direct(self->session, AS_QUIC_TLS_PRIORITY, NULL);
	if (rc == 0) {
		rc = server ? ngtcp2_crypto_gnutls_configure_server_session(self->session)
			    : ngtcp2_crypto_gnutls_configure_client_session(self->session);
		if (rc != 0)
			rc = GNUTLS_E_INTERNAL_ERROR;
	}
	if (rc == 0)
		rc = gnutls_credentials_set(self->session, GNUTLS_CRD_CERTIFICATE, creds);
	if (rc == 0) {
		rc = gnutls_alpn_set_protocols(
			self->session, alpns, n_alpns,
			GNUTLS_ALPN_MANDATORY | (server ? GNUTLS_ALPN_SERVER_PRECEDENCE : 0));
	}
	if (rc != 0) {
		g_set_error(error, AS_ERROR, AS_ERROR_FAILED, "cannot set up TLS session: %s",
			    gnutls_strerror(rc));
		return FALSE;
	}
	/* the ngtcp2 GnuTLS hooks find the connection through this */
	gnutls_session_set_ptr(self->session, &self->conn_ref);
	ngtcp2_conn_set_tls_native_handle(self->conn, self->session);
	return TRUE;
}

void
as_quic_conn_clear(AsQuicConn *self)
{
	if (self->sock != NULL)
		as_quic_socket_cancel_wait(self->sock, self);
	if (self->timer != NULL) {
		g_source_destroy(self->timer);
		g_clear_pointer(&self->timer, g_source_unref);
	}
	/* the owner clears its streams; only unlink them here */
	while (self->send_queue.head != NULL) {
		AsQuicSendStream *stream = self->send_queue.head->data;
		as_quic_conn_unqueue_stream(self, stream);
	}
	g_queue_clear_full(&self->tx_pending, (GDestroyNotify)as_quic_tx_batch_free);
	g_clear_pointer(&self->conn, ngtcp2_conn_del);
	if (self->session != NULL) {
		gnutls_deinit(self->session);
		self->session = NULL;
	}
	g_clear_pointer(&self->txbuf, g_free);
	g_clear_pointer(&self->close_pkt, g_bytes_unref);
	g_clear_error(&self->error);
}

/* a write pass soon: coalesces everything one batch of datagrams asked for into one pass */
void
as_quic_conn_schedule(AsQuicConn *self)
{
	if (self->state == AS_QUIC_CONN_STATE_OPEN)
		as_quic_conn_set_deadline(self, 0);
}

gboolean
as_quic_conn_is_open(AsQuicConn *self)
{
	return self->state == AS_QUIC_CONN_STATE_OPEN;
}

/* keeps the first reason only: later errors are usually consequences */
void
as_quic_conn_set_error(AsQuicConn *self, GError *error)
{
	if (self->error == NULL)
		self->error = error;
	else
		g_error_free(error);
}

static const gchar *
as_quic_tls_alert_name(guint8 alert)
{
	const gchar *name = gnutls_alert_get_strname((gnutls_alert_description_t)alert);
	return name != NULL ? name : "unknown alert";
}

/* a GError for how the peer closed the connection, or NULL for an orderly close */
static GError *
as_quic_conn_peer_error(AsQuicConn *self)
{
	ngtcp2_connection_close_error ccerr;
	g_autofree gchar *reason = NULL;

	ngtcp2_conn_get_connection_close_error(self->conn, &ccerr);
	if (ccerr.reasonlen > 0) {
		reason = g_utf8_make_valid((const gchar *)ccerr.reason, (gssize)ccerr.reasonlen);
		g_strdelimit(reason, "\r\n", ' ');
	}
	if (ccerr.type == NGTCP2_CONNECTION_CLOSE_ERROR_CODE_TYPE_APPLICATION) {
		if (ccerr.error_code == AS_QUIC_APP_ERROR_NONE)
			return NULL;
		return g_error_new(
			G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED,
			"peer closed the connection: application error 0x%" G_GINT64_MODIFIER
			"x%s%s",
			ccerr.error_code, reason != NULL ? ": " : "", reason != NULL ? reason : "");
	}
	if (ccerr.error_code == NGTCP2_NO_ERROR)
		return NULL;
	if ((ccerr.error_code & 0xff00) == NGTCP2_CRYPTO_ERROR) {
		guint8 alert = (guint8)(ccerr.error_code & 0xff);
		return g_error_new(G_IO_ERROR,
				   alert == GNUTLS_A_NO_APPLICATION_PROTOCOL
					   ? G_IO_ERROR_NOT_SUPPORTED
					   : G_IO_ERROR_FAILED,
				   "peer refused the TLS handshake: %s (alert %u)",
				   as_quic_tls_alert_name(alert), alert);
	}
	if (ccerr.error_code == NGTCP2_CONNECTION_REFUSED) {
		return g_error_new(G_IO_ERROR, G_IO_ERROR_CONNECTION_REFUSED,
				   "peer refused the QUIC connection%s%s",
				   reason != NULL ? ": " : "", reason != NULL ? reason : "");
	}
	return g_error_new(
		G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED,
		"peer closed the connection: transport error 0x%" G_GINT64_MODIFIER "x%s%s",
		ccerr.error_code, reason != NULL ? ": " : "", reason != NULL ? reason : "");
}

static void
as_quic_conn_enter(AsQuicConn *self, AsQuicConnState state)
{
	ngtcp2_tstamp now = as_quic_now_ns();

	if (self->no_linger_before_handshake && !ngtcp2_conn_get_handshake_completed(self->conn))
		state = AS_QUIC_CONN_STATE_DEAD;
	self->state = state;
	if (state == AS_QUIC_CONN_STATE_DEAD) {
		as_quic_conn_set_deadline(self, 0);
		return;
	}
	/* RFC 9000 10.2: stay three PTO to absorb late packets */
	self->close_deadline = now + 3 * ngtcp2_conn_get_pto(self->conn);
	as_quic_conn_set_deadline(self, self->close_deadline);
}

/**
 * as_quic_conn_refused:
 *
 * An ICMP port unreachable came back on a connected socket. During the handshake nobody is
 * listening: give up at once, so the caller can fall back to HTTP. Afterwards a single one is
 * ignored (unauthenticated, and it can race with the peer's own CONNECTION_CLOSE still queued
 * on the socket); %AS_QUIC_CONN_MAX_REFUSED in a row without a packet from the peer end it.
 **/
void
as_quic_conn_refused(AsQuicConn *self)
{
	if (self->state != AS_QUIC_CONN_STATE_OPEN)
		return;
	if (ngtcp2_conn_get_handshake_completed(self->conn) &&
	    ++self->n_refused < AS_QUIC_CONN_MAX_REFUSED) {
		g_debug("ICMP port unreachable from an established peer, ignored");
		return;
	}
	as_quic_conn_set_error(self, g_error_new(G_IO_ERROR, G_IO_ERROR_CONNECTION_REFUSED,
						 "nothing listens on the QUIC port of the peer"));
	as_quic_conn_drop(self);
}

/* drops the connection without a word: idle timeout, or the library said so */
void
as_quic_conn_drop(AsQuicConn *self)
{
	if (self->state == AS_QUIC_CONN_STATE_DEAD)
		return;
	as_quic_conn_enter(self, AS_QUIC_CONN_STATE_DEAD);
}

static void
as_quic_conn_send_close_pkt(AsQuicConn *self)
{
	gsize sent = 0;
	int errsv = 0;
	gsize len = 0;
	const guint8 *data;

	if (self->close_pkt == NULL)
		return;
	data = g_bytes_get_data(self->close_pkt, &len);
	(void)as_quic_socket_send(self->sock, (const struct sockaddr *)&self->remote,
				  self->remote_len, (const struct sockaddr *)&self->local, 0, data,
				  len, len, &sent, &errsv);
}

/**
 * as_quic_conn_close:
 * @self: a connection
 * @ccerr: what to tell the peer
 *
 * Sends CONNECTION_CLOSE and enters the closing period; the owner's closed() follows after
 * three PTO. Safe to call more than once.
 **/
void
as_quic_conn_close(AsQuicConn *self, const ngtcp2_connection_close_error *ccerr)
{
	ngtcp2_path_storage ps;
	ngtcp2_pkt_info pi = {0};
	ngtcp2_ssize n;

	if (self->state != AS_QUIC_CONN_STATE_OPEN)
		return;
	g_queue_clear_full(&self->tx_pending, (GDestroyNotify)as_quic_tx_batch_free);
	as_quic_socket_cancel_wait(self->sock, self);
	if (ngtcp2_conn_is_in_closing_period(self->conn) ||
	    ngtcp2_conn_is_in_draining_period(self->conn)) {
		as_quic_conn_enter(self, AS_QUIC_CONN_STATE_DRAINING);
		return;
	}
	ngtcp2_path_storage_zero(&ps);
	n = ngtcp2_conn_write_connection_close(self->conn, &ps.path, &pi, self->txbuf,
					       AS_QUIC_TX_BUF_SIZE, ccerr, as_quic_now_ns());
	if (n <= 0) {
		/* nothing can be said before keys exist: just forget the connection */
		as_quic_conn_enter(self, AS_QUIC_CONN_STATE_DEAD);
		return;
	}
	self->close_pkt = g_bytes_new(self->txbuf, (gsize)n);
	as_quic_conn_send_close_pkt(self);
	as_quic_conn_enter(self, AS_QUIC_CONN_STATE_CLOSING);
}

/* closes for a library error: a TLS alert for a failed handshake, else its transport code */
void
as_quic_conn_close_liberr(AsQuicConn *self, int liberr)
{
	ngtcp2_connection_close_error ccerr;

	ngtcp2_connection_close_error_default(&ccerr);
	if (liberr == NGTCP2_ERR_CRYPTO) {
		guint8 alert = ngtcp2_conn_get_tls_alert(self->conn);
		ngtcp2_connection_close_error_set_transport_error_tls_alert(&ccerr, alert, NULL, 0);
		as_quic_conn_set_error(self, g_error_new(G_IO_ERROR,
							 alert == GNUTLS_A_NO_APPLICATION_PROTOCOL
								 ? G_IO_ERROR_NOT_SUPPORTED
								 : G_IO_ERROR_FAILED,
							 "TLS handshake failed: %s (alert %u)",
							 as_quic_tls_alert_name(alert), alert));
	} else {
		ngtcp2_connection_close_error_set_transport_error_liberr(&ccerr, liberr, NULL, 0);
		as_quic_conn_set_error(self, g_error_new(G_IO_ERROR, G_IO_ERROR_FAILED,
							 "QUIC connection failed: %s",
							 ngtcp2_strerror(liberr)));
	}
	as_quic_conn_close(self, &ccerr);
}

/**
 * as_quic_conn_close_now:
 *
 * An application close (going away, or a client finished): CONNECTION_CLOSE is sent at once and
 * the connection is dead at the next dispatch, without waiting for three PTO.
 **/
void
as_quic_conn_close_now(AsQuicConn *self, guint64 app_error_code, const gchar *reason)
{
	ngtcp2_connection_close_error ccerr;

	ngtcp2_connection_close_error_default(&ccerr);
	ngtcp2_connection_close_error_set_application_error(&ccerr, app_error_code,
							    (const uint8_t *)reason,
							    reason != NULL ? strlen(reason) : 0);
	as_quic_conn_close(self, &ccerr);
	as_quic_conn_drop(self);
}

/**
 * as_quic_conn_read:
 * @self: a connection
 * @dgram: a datagram for it
 *
 * Feeds one datagram to ngtcp2 and handles the outcome: a write pass is scheduled, or the
 * connection enters draining, closing or dead. While closing, our CONNECTION_CLOSE is repeated
 * (a bounded number of times) instead.
 *
 * Returns: the ngtcp2 result; %NGTCP2_ERR_RETRY is left for the server to answer
 **/
int
as_quic_conn_read(AsQuicConn *self, const AsQuicDatagram *dgram)
{
	ngtcp2_path path = {
		.local = {(ngtcp2_sockaddr *)dgram->local, dgram->local_len},
		.remote = {(ngtcp2_sockaddr *)dgram->remote, dgram->remote_len},
	};
	ngtcp2_pkt_info pi = {.ecn = dgram->ecn};
	int rv;

	if (self->state == AS_QUIC_CONN_STATE_CLOSING) {
		/* answer 1, 2, 4, 8... packets, so a flood does not turn us into an amplifier */
		self->n_rx_closing++;
		if ((self->n_rx_closing & (self->n_rx_closing - 1)) == 0 &&
		    self->n_close_resent < AS_QUIC_CLOSE_RESEND_MAX) {
			self->n_close_resent++;
			as_quic_conn_send_close_pkt(self);
		}
		return 0;
	}
	if (self->state != AS_QUIC_CONN_STATE_OPEN)
		return 0;

	rv = ngtcp2_conn_read_pkt(self->conn, &path, &pi, dgram->data, dgram->len,
				  as_quic_now_ns());
	switch (rv) {
	case 0:
		self->n_refused = 0;
		as_quic_conn_schedule(self);
		break;
	case NGTCP2_ERR_DRAINING: {
		GError *peer_error = as_quic_conn_peer_error(self);
		if (peer_error != NULL)
			as_quic_conn_set_error(self, peer_error);
	}
		as_quic_conn_enter(self, AS_QUIC_CONN_STATE_DRAINING);
		break;
	case NGTCP2_ERR_RETRY:
		/* the server sends a Retry and drops us */
		break;
	case NGTCP2_ERR_DROP_CONN:
		as_quic_conn_drop(self);
		break;
	default:
		g_debug("read_pkt: %s", ngtcp2_strerror(rv));
		as_quic_conn_close_liberr(self, rv);
		break;
	}
	return rv;
}

void
as_quic_conn_queue_stream(AsQuicConn *self, AsQuicSendStream *stream)
{
	if (stream->link.data != NULL || !as_quic_send_stream_has_data(stream))
		return;
	stream->link.data = stream;
	g_queue_push_tail_link(&self->send_queue, &stream->link);
	as_quic_conn_schedule(self);
}

void
as_quic_conn_unqueue_stream(AsQuicConn *self, AsQuicSendStream *stream)
{
	if (stream->link.data == NULL)
		return;
	g_queue_unlink(&self->send_queue, &stream->link);
	stream->link.data = NULL;
}

/* takes ownership of @data */
void
as_quic_conn_append(AsQuicConn *self, AsQuicSendStream *stream, guint8 *data, gsize len)
{
	AsQuicChunk *chunk;

	if (len == 0 || stream->shut) {
		g_free(data);
		return;
	}
	chunk = g_new0(AsQuicChunk, 1);
	chunk->data = data;
	chunk->len = len;
	chunk->offset = stream->queued;
	stream->queued += len;
	g_queue_push_tail(&stream->chunks, chunk);
	as_quic_conn_queue_stream(self, stream);
}

void
as_quic_conn_finish_stream(AsQuicConn *self, AsQuicSendStream *stream)
{
	stream->fin = TRUE;
	as_quic_conn_queue_stream(self, stream);
}

gchar *
as_quic_conn_get_alpn(AsQuicConn *self)
{
	gnutls_datum_t alpn = {NULL, 0};

	if (self->session == NULL || gnutls_alpn_get_selected_protocol(self->session, &alpn) != 0 ||
	    alpn.size == 0)
		return NULL;
	return g_strndup((const gchar *)alpn.data, alpn.size);
}

static void as_quic_conn_on_writable(gpointer waiter);

/* sends a batch or keeps it for when the socket drains; FALSE if the batch had to wait */
static gboolean
as_quic_conn_flush(AsQuicConn *self,
		   const guint8 *data,
		   gsize len,
		   gsize gso_size,
		   guint32 ecn,
		   const ngtcp2_path *path)
{
	AsQuicSendResult rc;
	gsize sent = 0;
	int errsv = 0;

	if (len == 0)
		return TRUE;
	if (self->tx_pending.length == 0) {
		rc = as_quic_socket_send(self->sock, (const struct sockaddr *)path->remote.addr,
					 path->remote.addrlen,
					 (const struct sockaddr *)path->local.addr, ecn, data, len,
					 gso_size, &sent, &errsv);
		if (rc == AS_QUIC_SEND_OK)
			return TRUE;
		if (rc == AS_QUIC_SEND_FAILED) {
			/* a refused peer is fatal; anything else (EMSGSIZE for a PMTU probe, a
			 * route flap) is loss that QUIC recovers from */
			if (errsv == ECONNREFUSED) {
				as_quic_conn_refused(self);
				return self->state == AS_QUIC_CONN_STATE_OPEN;
			}
			g_debug("sendmsg: %s", g_strerror(errsv));
			return TRUE;
		}
	}
	/* blocked: keep the rest in order; the path is the connection's, which we do not migrate */
	{
		AsQuicTxBatch *batch = g_new0(AsQuicTxBatch, 1);
		batch->data = g_memdup2(data + sent, len - sent);
		batch->len = len - sent;
		batch->gso_size = gso_size;
		batch->ecn = ecn;
		g_queue_push_tail(&self->tx_pending, batch);
	}
	as_quic_socket_wait_writable(self->sock, as_quic_conn_on_writable, self);
	return FALSE;
}

/* TRUE once nothing is pending */
static gboolean
as_quic_conn_flush_pending(AsQuicConn *self)
{
	while (self->tx_pending.head != NULL) {
		AsQuicTxBatch *batch = self->tx_pending.head->data;
		gsize sent = 0;
		int errsv = 0;
		AsQuicSendResult rc = as_quic_socket_send(
			self->sock, (const struct sockaddr *)&self->remote, self->remote_len,
			(const struct sockaddr *)&self->local, batch->ecn, batch->data, batch->len,
			batch->gso_size, &sent, &errsv);
		if (rc == AS_QUIC_SEND_BLOCKED) {
			memmove(batch->data, batch->data + sent, batch->len - sent);
			batch->len -= sent;
			as_quic_socket_wait_writable(self->sock, as_quic_conn_on_writable, self);
			return FALSE;
		}
		g_queue_pop_head(&self->tx_pending);
		as_quic_tx_batch_free(batch);
	}
	return TRUE;
}

static void
as_quic_conn_on_writable(gpointer waiter)
{
	AsQuicConn *self = waiter;
	if (as_quic_conn_flush_pending(self))
		as_quic_conn_schedule(self);
}

static AsQuicSendStream *
as_quic_conn_pick_stream(AsQuicConn *self)
{
	gboolean have_credit = ngtcp2_conn_get_max_data_left(self->conn) > 0;

	for (GList *l = self->send_queue.head; l != NULL;) {
		AsQuicSendStream *stream = l->data;
		GList *next = l->next;

		if (!as_quic_send_stream_has_data(stream)) {
			as_quic_conn_unqueue_stream(self, stream);
		} else if (have_credit || stream->sent == stream->queued) {
			/* a bare FIN needs no connection credit */
			return stream;
		}
		l = next;
	}
	return NULL;
}

static void
as_quic_send_stream_advance(AsQuicSendStream *stream,
			    ngtcp2_ssize ndatalen,
			    gsize offered,
			    gboolean fin)
{
	if (stream == NULL || ndatalen < 0)
		return;
	stream->sent += (guint64)ndatalen;
	if (fin && (gsize)ndatalen == offered)
		stream->fin_sent = TRUE;
}

/* one burst of at most the send quantum; TRUE if it stopped only because of that cap */
static gboolean
as_quic_conn_write_pass(AsQuicConn *self, ngtcp2_tstamp ts)
{
	ngtcp2_path_storage ps;
	ngtcp2_path batch_path = {0};
	struct sockaddr_storage batch_local;
	struct sockaddr_storage batch_remote;
	gsize max_pkt = ngtcp2_conn_get_max_tx_udp_payload_size(self->conn);
	gsize quantum = ngtcp2_conn_get_send_quantum(self->conn);
	guint max_pkts;
	guint n_total = 0;
	guint n_batch = 0;
	gsize off = 0;
	gsize gso_size = 0;
	guint32 batch_ecn = 0;
	gboolean more = FALSE;

	max_pkts = (guint)MAX(quantum / max_pkt, 1);
	max_pkts = MIN(max_pkts, AS_QUIC_MAX_GSO_SEGMENTS);
	max_pkts = MIN(max_pkts, (guint)(AS_QUIC_TX_BATCH_MAX_BYTES / max_pkt));
	ngtcp2_path_storage_zero(&ps);
	batch_path.local.addr = (ngtcp2_sockaddr *)&batch_local;
	batch_path.remote.addr = (ngtcp2_sockaddr *)&batch_remote;

	for (;;) {
		ngtcp2_vec vecs[AS_QUIC_MAX_VECS];
		gsize n_vecs = 0;
		gsize offered = 0;
		gboolean fin = FALSE;
		ngtcp2_ssize ndatalen = -1;
		ngtcp2_ssize nwrite;
		ngtcp2_pkt_info pi = {0};
		guint32 flags = NGTCP2_WRITE_STREAM_FLAG_MORE;
		AsQuicSendStream *stream = as_quic_conn_pick_stream(self);

		if (stream != NULL) {
			n_vecs = as_quic_send_stream_get_vecs(stream, vecs, G_N_ELEMENTS(vecs),
							      &offered, &fin);
			if (fin)
				flags |= NGTCP2_WRITE_STREAM_FLAG_FIN;
		}
		nwrite = ngtcp2_conn_writev_stream(
			self->conn, &ps.path, &pi, self->txbuf + off, max_pkt, &ndatalen, flags,
			stream != NULL ? stream->id : -1, vecs, n_vecs, ts);
		if (nwrite < 0) {
			switch (nwrite) {
			case NGTCP2_ERR_WRITE_MORE:
				as_quic_send_stream_advance(stream, ndatalen, offered, fin);
				continue;
			case NGTCP2_ERR_STREAM_DATA_BLOCKED:
				stream->blocked = TRUE;
				as_quic_conn_unqueue_stream(self, stream);
				continue;
			case NGTCP2_ERR_STREAM_SHUT_WR:
			case NGTCP2_ERR_STREAM_NOT_FOUND:
				stream->shut = TRUE;
				as_quic_conn_unqueue_stream(self, stream);
				continue;
			default:
				g_debug("writev_stream: %s", ngtcp2_strerror((int)nwrite));
				(void)as_quic_conn_flush(self, self->txbuf, off, gso_size,
							 batch_ecn, &batch_path);
				as_quic_conn_close_liberr(self, (int)nwrite);
				return FALSE;
			}
		}
		as_quic_send_stream_advance(stream, ndatalen, offered, fin);
		if (nwrite == 0)
			break;

		/* a GSO batch is equal-sized datagrams on one path with one ECN marking */
		if (n_batch > 0 && (pi.ecn != batch_ecn || (gsize)nwrite > gso_size ||
				    !ngtcp2_path_eq(&ps.path, &batch_path))) {
			if (!as_quic_conn_flush(self, self->txbuf, off, gso_size, batch_ecn,
						&batch_path)) {
				(void)as_quic_conn_flush(self, self->txbuf + off, (gsize)nwrite,
							 (gsize)nwrite, pi.ecn, &ps.path);
				off = 0;
				n_batch = 0;
				break;
			}
			memmove(self->txbuf, self->txbuf + off, (gsize)nwrite);
			off = 0;
			n_batch = 0;
		}
		if (n_batch == 0) {
			gso_size = (gsize)nwrite;
			batch_ecn = pi.ecn;
			ngtcp2_path_copy(&batch_path, &ps.path);
		}
		off += (gsize)nwrite;
		n_batch++;
		n_total++;
		if ((gsize)nwrite < gso_size || n_total >= max_pkts ||
		    off + max_pkt > AS_QUIC_TX_BUF_SIZE) {
			gboolean flushed = as_quic_conn_flush(self, self->txbuf, off, gso_size,
							      batch_ecn, &batch_path);
			off = 0;
			n_batch = 0;
			if (!flushed || self->state != AS_QUIC_CONN_STATE_OPEN)
				break;
			if (n_total >= max_pkts) {
				more = TRUE;
				break;
			}
		}
	}
	if (off > 0)
		(void)as_quic_conn_flush(self, self->txbuf, off, gso_size, batch_ecn, &batch_path);
	if (n_total > 0)
		ngtcp2_conn_update_pkt_tx_time(self->conn, ts);

	/* round robin: the next pass starts with the next stream */
	if (self->send_queue.length > 1) {
		GList *head = g_queue_pop_head_link(&self->send_queue);
		g_queue_push_tail_link(&self->send_queue, head);
	}
	return more && self->tx_pending.length == 0;
}

static void
as_quic_conn_on_timer(AsQuicConn *self)
{
	ngtcp2_tstamp now = as_quic_now_ns();
	ngtcp2_tstamp expiry;
	gboolean more = FALSE;

	switch (self->state) {
	case AS_QUIC_CONN_STATE_DEAD:
		as_quic_conn_set_deadline(self, UINT64_MAX);
		self->vfuncs->closed(self, self->error);
		return;
	case AS_QUIC_CONN_STATE_CLOSING:
	case AS_QUIC_CONN_STATE_DRAINING:
		if (now >= self->close_deadline) {
			as_quic_conn_set_deadline(self, UINT64_MAX);
			self->vfuncs->closed(self, self->error);
			return;
		}
		as_quic_conn_set_deadline(self, self->close_deadline);
		return;
	case AS_QUIC_CONN_STATE_OPEN:
	default:
		break;
	}

	expiry = ngtcp2_conn_get_expiry(self->conn);
	if (expiry <= now) {
		int rv = ngtcp2_conn_handle_expiry(self->conn, now);
		if (rv == NGTCP2_ERR_IDLE_CLOSE) {
			as_quic_conn_set_error(self, g_error_new(G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
								 "QUIC connection idle timeout"));
			as_quic_conn_drop(self);
			return;
		}
		if (rv == NGTCP2_ERR_HANDSHAKE_TIMEOUT) {
			as_quic_conn_set_error(self, g_error_new(G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
								 "QUIC handshake timeout"));
			as_quic_conn_drop(self);
			return;
		}
		if (rv != 0) {
			as_quic_conn_close_liberr(self, rv);
			return;
		}
	}

	if (self->tx_pending.length == 0 || as_quic_conn_flush_pending(self)) {
		self->vfuncs->prepare_write(self);
		if (self->state != AS_QUIC_CONN_STATE_OPEN)
			return;
		more = as_quic_conn_write_pass(self, now);
		if (self->state != AS_QUIC_CONN_STATE_OPEN)
			return;
	}
	if (more) {
		as_quic_conn_set_deadline(self, 0);
		return;
	}
	as_quic_conn_set_deadline(self, ngtcp2_conn_get_expiry(self->conn));
}
