/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib-object.h>

G_BEGIN_DECLS

#define AS_TYPE_MDNS_PUBLISHER (as_mdns_publisher_get_type())
G_DECLARE_FINAL_TYPE(AsMdnsPublisher, as_mdns_publisher, AS, MDNS_PUBLISHER, GObject)

/**
 * AsMdnsPublisherState:
 * @AS_MDNS_PUBLISHER_STATE_STOPPED: not started, or stopped
 * @AS_MDNS_PUBLISHER_STATE_WAITING: Avahi is unavailable; the service is published when it
 *   comes (back)
 * @AS_MDNS_PUBLISHER_STATE_REGISTERING: the service is being announced (probing for the name)
 * @AS_MDNS_PUBLISHER_STATE_ESTABLISHED: the service is on the network under the current name
 *
 * What the publisher is doing; the #AsMdnsPublisher:state property notifies changes.
 */
typedef enum {
	AS_MDNS_PUBLISHER_STATE_STOPPED,
	AS_MDNS_PUBLISHER_STATE_WAITING,
	AS_MDNS_PUBLISHER_STATE_REGISTERING,
	AS_MDNS_PUBLISHER_STATE_ESTABLISHED,
} AsMdnsPublisherState;

/* how often to try again when not even the system bus is there (avahi-daemon itself is
 * watched on the bus, with no polling) */
#define AS_MDNS_PUBLISHER_RETRY_DEFAULT_MS 30000

GHashTable *as_mdns_publisher_txt_new(gboolean ws_enabled,
				      gboolean auth_required,
				      guint16 quic_port,
				      const gchar *fp);
void as_mdns_publisher_txt_add_https(GHashTable *txt, guint16 https_port);

AsMdnsPublisher *
as_mdns_publisher_new(const gchar *instance_name, guint16 http_port, GHashTable *txt);
void as_mdns_publisher_start(AsMdnsPublisher *self);
void as_mdns_publisher_update_txt(AsMdnsPublisher *self, GHashTable *txt);
void as_mdns_publisher_stop(AsMdnsPublisher *self);

const gchar *as_mdns_publisher_get_name(AsMdnsPublisher *self);
AsMdnsPublisherState as_mdns_publisher_get_state(AsMdnsPublisher *self);
void as_mdns_publisher_set_retry_interval(AsMdnsPublisher *self, guint retry_ms);

G_END_DECLS
