/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/*
 * AsKnownPeers: the receivers a sender has seen, like ssh's known_hosts. One line per peer,
 * `host:port sha256hex` (the SHA-256 of the peer's DER certificate, lower-case hex), in
 * `$XDG_STATE_HOME/aerosync/known_peers`; `#` comments and blank lines are kept as they are.
 * IPv6 hosts are written in brackets, `[::1]:7789`, and host names in lower case.
 *
 * Trust on first use: a peer not in the file is recorded the first time a connection to it
 * succeeds; from then on its certificate must have that fingerprint, and a different one is
 * refused with an error that names the file, the line and both fingerprints.
 */

/* the file name below the state directory */
#define AS_KNOWN_PEERS_FILENAME "known_peers"
/* a larger file is refused rather than read: it cannot be a list of peers someone keeps */
#define AS_KNOWN_PEERS_MAX_SIZE (4 * 1024 * 1024)

typedef struct _AsKnownPeers AsKnownPeers;

gchar *as_known_peers_make_key(const gchar *host, guint16 port);

AsKnownPeers *as_known_peers_new(const gchar *path);
AsKnownPeers *as_known_peers_load(const gchar *path, GError **error);
const gchar *as_known_peers_get_path(AsKnownPeers *self);
const gchar *as_known_peers_lookup(AsKnownPeers *self, const gchar *key, guint *line);
gboolean as_known_peers_add(AsKnownPeers *self, const gchar *key, const gchar *sha256);
gboolean as_known_peers_replace(AsKnownPeers *self, const gchar *key, const gchar *sha256);
gboolean as_known_peers_remove(AsKnownPeers *self, const gchar *key);
gboolean as_known_peers_save(AsKnownPeers *self, GError **error);
void as_known_peers_free(AsKnownPeers *self);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(AsKnownPeers, as_known_peers_free)

gboolean as_known_peers_check(const gchar *path,
			      const gchar *key,
			      const gchar *sha256,
			      gboolean *recorded,
			      GError **error);
gchar *as_known_peers_changed_message(const gchar *path,
				      guint line,
				      const gchar *key,
				      const gchar *known_sha256,
				      const gchar *seen_sha256);

G_END_DECLS
