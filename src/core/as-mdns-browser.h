/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* the DNS-SD service type of AeroSync receivers, as in 0.x */
#define AS_MDNS_SERVICE_TYPE "_aerosync._tcp"

/* TXT keys: version, ws and auth are AeroSync 0.x's; quic and fp are new */
#define AS_MDNS_TXT_VERSION "version"
#define AS_MDNS_TXT_WS	    "ws"
#define AS_MDNS_TXT_AUTH    "auth"
#define AS_MDNS_TXT_QUIC    "quic"
#define AS_MDNS_TXT_FP	    "fp"
#define AS_MDNS_TXT_HTTPS   "https"

/* TXT boolean values, as 0.x writes them */
#define AS_MDNS_TXT_TRUE  "true"
#define AS_MDNS_TXT_FALSE "false"

/* how long 'aerosyncctl discover' browses unless told otherwise, as in 0.x */
#define AS_MDNS_BROWSE_TIMEOUT_DEFAULT_MS 3000

/**
 * AsMdnsPeer:
 * @name: the service instance name, e.g. "laptop" or "laptop #2"
 * @host: the mDNS host name, e.g. "laptop.local"
 * @port: the HTTP port
 * @addr: (nullable): the numeric address, IPv4 when the peer has one, else IPv6 (link-local
 *   ones carry a "%interface" scope)
 * @version: (nullable): the AeroSync version the peer announces
 * @ws: the peer serves WebSocket events
 * @auth: the peer requires a token
 * @quic: the QUIC port, or 0 when the peer has QUIC off
 * @fp: (nullable): the SHA-256 of the peer's TLS certificate, lower-case hex without colons
 *
 * One AeroSync receiver found on the local network. TXT data comes from the network: every
 * string is valid UTF-8 and bounded, values that do not parse are left unset.
 */
typedef struct {
	gchar *name;
	gchar *host;
	guint16 port;
	gchar *addr;
	gchar *version;
	gboolean ws;
	gboolean auth;
	guint16 quic;
	gchar *fp;
	guint16 https; /* the HTTPS port, 0 when the receiver has none */
} AsMdnsPeer;

#define AS_TYPE_MDNS_PEER (as_mdns_peer_get_type())
GType as_mdns_peer_get_type(void);
AsMdnsPeer *as_mdns_peer_new(void);
AsMdnsPeer *as_mdns_peer_copy(const AsMdnsPeer *self);
void as_mdns_peer_free(AsMdnsPeer *self);
gboolean
as_mdns_peer_set_txt_value(AsMdnsPeer *self, const gchar *key, const gchar *value, gsize value_len);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(AsMdnsPeer, as_mdns_peer_free)

gchar *as_mdns_peer_dup_destination(const AsMdnsPeer *self);
gchar *as_mdns_peer_dup_https_destination(const AsMdnsPeer *self);
gboolean as_mdns_target_is_mdns(const gchar *target);

void as_mdns_browse_async(guint timeout_ms,
			  GCancellable *cancellable,
			  GAsyncReadyCallback callback,
			  gpointer user_data);
GPtrArray *as_mdns_browse_finish(GAsyncResult *res, GError **error);

void as_mdns_resolve_async(const gchar *target,
			   guint timeout_ms,
			   GCancellable *cancellable,
			   GAsyncReadyCallback callback,
			   gpointer user_data);
AsMdnsPeer *as_mdns_resolve_finish(GAsyncResult *res, GError **error);

G_END_DECLS
