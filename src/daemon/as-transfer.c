/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "AsTransfer"

#include "config.h"

#include "as-transfer.h"

struct _AsTransfer {
	GObject parent_instance;
	gchar *id;
	gchar *direction;
	gchar *protocol;
	gchar *filename;
	gchar *peer;
	gchar *sha256;
	gchar *saved_path;
	gchar *error;
	AsTransferState state;
	guint64 bytes_done;
	guint64 bytes_total;
	gint64 started_at_us;	/* wall clock, for display */
	gint64 started_mono_us; /* for durations */
};

G_DEFINE_TYPE(AsTransfer, as_transfer, G_TYPE_OBJECT)

enum {
	PROP_0,
	PROP_ID,
	PROP_DIRECTION,
	PROP_PROTOCOL,
	PROP_FILENAME,
	PROP_PEER,
	PROP_STATE,
	PROP_BYTES_DONE,
	PROP_BYTES_TOTAL,
	PROP_SHA256,
	PROP_SAVED_PATH,
	PROP_ERROR,
	PROP_STARTED_AT,
	PROP_LAST
};

static GParamSpec *props[PROP_LAST];

static const gchar *as_transfer_state_names[] = {
    "queued", "connecting", "running", "paused", "verifying", "completed", "failed", "cancelled"};

const gchar *
as_transfer_state_to_string(AsTransferState state)
{
	if ((guint)state >= G_N_ELEMENTS(as_transfer_state_names))
		return "unknown";
	return as_transfer_state_names[state];
}

gboolean
as_transfer_state_is_final(AsTransferState state)
{
	return state == AS_TRANSFER_STATE_COMPLETED || state == AS_TRANSFER_STATE_FAILED ||
	       state == AS_TRANSFER_STATE_CANCELLED;
}

static void
as_transfer_get_property(GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
	AsTransfer *self = AS_TRANSFER(object);
	switch (prop_id) {
	case PROP_ID:
		g_value_set_string(value, self->id);
		break;
	case PROP_DIRECTION:
		g_value_set_string(value, self->direction);
		break;
	case PROP_PROTOCOL:
		g_value_set_string(value, self->protocol);
		break;
	case PROP_FILENAME:
		g_value_set_string(value, self->filename != NULL ? self->filename : "");
		break;
	case PROP_PEER:
		g_value_set_string(value, self->peer != NULL ? self->peer : "");
		break;
	case PROP_STATE:
		g_value_set_string(value, as_transfer_state_to_string(self->state));
		break;
	case PROP_BYTES_DONE:
		g_value_set_uint64(value, self->bytes_done);
		break;
	case PROP_BYTES_TOTAL:
		g_value_set_uint64(value, self->bytes_total);
		break;
	case PROP_SHA256:
		g_value_set_string(value, self->sha256 != NULL ? self->sha256 : "");
		break;
	case PROP_SAVED_PATH:
		g_value_set_string(value, self->saved_path != NULL ? self->saved_path : "");
		break;
	case PROP_ERROR:
		g_value_set_string(value, self->error != NULL ? self->error : "");
		break;
	case PROP_STARTED_AT:
		g_value_set_int64(value, self->started_at_us);
		break;
	default:
		G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
		break;
	}
}

static void
as_transfer_finalize(GObject *object)
{
	AsTransfer *self = AS_TRANSFER(object);
	g_free(self->id);
	g_free(self->direction);
	g_free(self->protocol);
	g_free(self->filename);
	g_free(self->peer);
	g_free(self->sha256);
	g_free(self->saved_path);
	g_free(self->error);
	G_OBJECT_CLASS(as_transfer_parent_class)->finalize(object);
}

static void
as_transfer_class_init(AsTransferClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);
	GParamFlags flags = G_PARAM_READABLE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY;

	object_class->get_property = as_transfer_get_property;
	object_class->finalize = as_transfer_finalize;

	/* property names match org.aerosync.Transfer1 so they bind 1:1 to the skeleton */
	props[PROP_ID] = g_param_spec_string("id", NULL, NULL, NULL, flags);
	props[PROP_DIRECTION] = g_param_spec_string("direction", NULL, NULL, NULL, flags);
	props[PROP_PROTOCOL] = g_param_spec_string("protocol", NULL, NULL, NULL, flags);
	props[PROP_FILENAME] = g_param_spec_string("filename", NULL, NULL, NULL, flags);
	props[PROP_PEER] = g_param_spec_string("peer", NULL, NULL, NULL, flags);
	props[PROP_STATE] = g_param_spec_string("state", NULL, NULL, NULL, flags);
	props[PROP_BYTES_DONE] =
	    g_param_spec_uint64("bytes-done", NULL, NULL, 0, G_MAXUINT64, 0, flags);
	props[PROP_BYTES_TOTAL] =
	    g_param_spec_uint64("bytes-total", NULL, NULL, 0, G_MAXUINT64, 0, flags);
	props[PROP_SHA256] = g_param_spec_string("sha256", NULL, NULL, NULL, flags);
	props[PROP_SAVED_PATH] = g_param_spec_string("saved-path", NULL, NULL, NULL, flags);
	props[PROP_ERROR] = g_param_spec_string("error", NULL, NULL, NULL, flags);
	props[PROP_STARTED_AT] =
	    g_param_spec_int64("started-at", NULL, NULL, 0, G_MAXINT64, 0, flags);
	g_object_class_install_properties(object_class, PROP_LAST, props);
}

static void
as_transfer_init(AsTransfer *self)
{
	self->started_at_us = g_get_real_time();
	self->started_mono_us = g_get_monotonic_time();
}

AsTransfer *
as_transfer_new(const gchar *id,
		const gchar *direction,
		const gchar *protocol,
		const gchar *filename,
		const gchar *peer,
		guint64 bytes_total)
{
	AsTransfer *self = g_object_new(AS_TYPE_TRANSFER, NULL);
	self->id = g_strdup(id);
	self->direction = g_strdup(direction);
	self->protocol = g_strdup(protocol);
	self->filename = g_strdup(filename);
	self->peer = g_strdup(peer);
	self->bytes_total = bytes_total;
	self->state = AS_TRANSFER_STATE_RUNNING;
	return self;
}

#define AS_TRANSFER_STR_SETTER(field, prop)                                                        \
	void as_transfer_set_##field(AsTransfer *self, const gchar *value)                        \
	{                                                                                          \
		g_return_if_fail(AS_IS_TRANSFER(self));                                            \
		if (g_strcmp0(self->field, value) == 0)                                            \
			return;                                                                    \
		g_free(self->field);                                                               \
		self->field = g_strdup(value);                                                     \
		g_object_notify_by_pspec(G_OBJECT(self), props[prop]);                             \
	}

AS_TRANSFER_STR_SETTER(filename, PROP_FILENAME)
AS_TRANSFER_STR_SETTER(sha256, PROP_SHA256)
AS_TRANSFER_STR_SETTER(saved_path, PROP_SAVED_PATH)
AS_TRANSFER_STR_SETTER(error, PROP_ERROR)

void
as_transfer_set_state(AsTransfer *self, AsTransferState state)
{
	g_return_if_fail(AS_IS_TRANSFER(self));
	if (self->state == state)
		return;
	self->state = state;
	g_object_notify_by_pspec(G_OBJECT(self), props[PROP_STATE]);
}

void
as_transfer_set_bytes_done(AsTransfer *self, guint64 bytes_done)
{
	g_return_if_fail(AS_IS_TRANSFER(self));
	if (self->bytes_done == bytes_done)
		return;
	self->bytes_done = bytes_done;
	g_object_notify_by_pspec(G_OBJECT(self), props[PROP_BYTES_DONE]);
}

void
as_transfer_set_bytes_total(AsTransfer *self, guint64 bytes_total)
{
	g_return_if_fail(AS_IS_TRANSFER(self));
	if (self->bytes_total == bytes_total)
		return;
	self->bytes_total = bytes_total;
	g_object_notify_by_pspec(G_OBJECT(self), props[PROP_BYTES_TOTAL]);
}

const gchar *
as_transfer_get_id(AsTransfer *self)
{
	return self->id;
}
const gchar *
as_transfer_get_direction(AsTransfer *self)
{
	return self->direction;
}
const gchar *
as_transfer_get_protocol(AsTransfer *self)
{
	return self->protocol;
}
const gchar *
as_transfer_get_filename(AsTransfer *self)
{
	return self->filename;
}
const gchar *
as_transfer_get_peer(AsTransfer *self)
{
	return self->peer;
}
AsTransferState
as_transfer_get_state(AsTransfer *self)
{
	return self->state;
}
guint64
as_transfer_get_bytes_done(AsTransfer *self)
{
	return self->bytes_done;
}
guint64
as_transfer_get_bytes_total(AsTransfer *self)
{
	return self->bytes_total;
}
const gchar *
as_transfer_get_sha256(AsTransfer *self)
{
	return self->sha256;
}
const gchar *
as_transfer_get_saved_path(AsTransfer *self)
{
	return self->saved_path;
}
const gchar *
as_transfer_get_error(AsTransfer *self)
{
	return self->error;
}
gint64
as_transfer_get_started_at(AsTransfer *self)
{
	return self->started_at_us;
}
gint64
as_transfer_get_started_mono(AsTransfer *self)
{
	return self->started_mono_us;
}
