/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "AsTransfer"

#include "config.h"

#include "as-error.h"
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
	gchar *destination;
	guint files;
	guint files_done;
	guint files_failed;
	guint64 rate; /* bytes per second, smoothed */
	gint64 eta_s; /* -1 = unknown */
	guint64 rate_limit;
	gint64 rate_sample_us; /* when bytes_done was last sampled */
	guint64 rate_sample_bytes;
	const AsTransferControl *control; /* nullable */
	gpointer control_data;
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
	PROP_DESTINATION,
	PROP_FILES,
	PROP_FILES_DONE,
	PROP_FILES_FAILED,
	PROP_RATE,
	PROP_ETA,
	PROP_RATE_LIMIT,
	PROP_LAST
};

static GParamSpec *props[PROP_LAST];

static const gchar *as_transfer_state_names[] = {"queued",    "connecting", "running", "paused",
						 "verifying", "completed",  "failed",  "cancelled"};

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
	case PROP_DESTINATION:
		g_value_set_string(value, self->destination != NULL ? self->destination : "");
		break;
	case PROP_FILES:
		g_value_set_uint(value, self->files);
		break;
	case PROP_FILES_DONE:
		g_value_set_uint(value, self->files_done);
		break;
	case PROP_FILES_FAILED:
		g_value_set_uint(value, self->files_failed);
		break;
	case PROP_RATE:
		g_value_set_uint64(value, self->rate);
		break;
	case PROP_ETA:
		g_value_set_int64(value, self->eta_s);
		break;
	case PROP_RATE_LIMIT:
		g_value_set_uint64(value, self->rate_limit);
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
	g_free(self->destination);
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
	props[PROP_DESTINATION] = g_param_spec_string("destination", NULL, NULL, NULL, flags);
	props[PROP_FILES] = g_param_spec_uint("files", NULL, NULL, 0, G_MAXUINT, 0, flags);
	props[PROP_FILES_DONE] =
		g_param_spec_uint("files-done", NULL, NULL, 0, G_MAXUINT, 0, flags);
	props[PROP_FILES_FAILED] =
		g_param_spec_uint("files-failed", NULL, NULL, 0, G_MAXUINT, 0, flags);
	props[PROP_RATE] = g_param_spec_uint64("rate", NULL, NULL, 0, G_MAXUINT64, 0, flags);
	props[PROP_ETA] = g_param_spec_int64("eta", NULL, NULL, -1, G_MAXINT64, -1, flags);
	props[PROP_RATE_LIMIT] =
		g_param_spec_uint64("rate-limit", NULL, NULL, 0, G_MAXUINT64, 0, flags);
	g_object_class_install_properties(object_class, PROP_LAST, props);
}

static void
as_transfer_init(AsTransfer *self)
{
	self->started_at_us = g_get_real_time();
	self->started_mono_us = g_get_monotonic_time();
	self->rate_sample_us = self->started_mono_us;
	self->eta_s = -1;
	self->files = 1;
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
	void as_transfer_set_##field(AsTransfer *self, const gchar *value)                         \
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
AS_TRANSFER_STR_SETTER(protocol, PROP_PROTOCOL)

void
as_transfer_set_state(AsTransfer *self, AsTransferState state)
{
	g_return_if_fail(AS_IS_TRANSFER(self));
	if (self->state == state)
		return;
	self->state = state;
	g_object_notify_by_pspec(G_OBJECT(self), props[PROP_STATE]);
}

/* an exponentially weighted rate over about AS_TRANSFER_RATE_TAU_US, and the ETA from it */
static void
as_transfer_update_rate(AsTransfer *self, guint64 bytes_done)
{
	gint64 now = g_get_monotonic_time();
	gint64 dt = now - self->rate_sample_us;
	gdouble instant, alpha;
	guint64 rate;
	gint64 eta = -1;

	if (dt <= 0 || bytes_done < self->rate_sample_bytes)
		return;
	instant = (gdouble)(bytes_done - self->rate_sample_bytes) * G_USEC_PER_SEC / (gdouble)dt;
	alpha = MIN(1.0, (gdouble)dt / AS_TRANSFER_RATE_TAU_US);
	rate = self->rate == 0 ? (guint64)instant
			       : (guint64)(alpha * instant + (1.0 - alpha) * (gdouble)self->rate);
	self->rate_sample_us = now;
	self->rate_sample_bytes = bytes_done;
	if (rate > 0 && self->bytes_total >= bytes_done)
		eta = (gint64)((self->bytes_total - bytes_done) / rate);
	if (rate != self->rate) {
		self->rate = rate;
		g_object_notify_by_pspec(G_OBJECT(self), props[PROP_RATE]);
	}
	if (eta != self->eta_s) {
		self->eta_s = eta;
		g_object_notify_by_pspec(G_OBJECT(self), props[PROP_ETA]);
	}
}

void
as_transfer_set_bytes_done(AsTransfer *self, guint64 bytes_done)
{
	g_return_if_fail(AS_IS_TRANSFER(self));
	if (self->bytes_done == bytes_done)
		return;
	self->bytes_done = bytes_done;
	as_transfer_update_rate(self, bytes_done);
	g_object_notify_by_pspec(G_OBJECT(self), props[PROP_BYTES_DONE]);
}

AS_TRANSFER_STR_SETTER(destination, PROP_DESTINATION)

#define AS_TRANSFER_UINT_SETTER(field, type, prop)                                                 \
	void as_transfer_set_##field(AsTransfer *self, type value)                                 \
	{                                                                                          \
		g_return_if_fail(AS_IS_TRANSFER(self));                                            \
		if (self->field == value)                                                          \
			return;                                                                    \
		self->field = value;                                                               \
		g_object_notify_by_pspec(G_OBJECT(self), props[prop]);                             \
	}

AS_TRANSFER_UINT_SETTER(files, guint, PROP_FILES)
AS_TRANSFER_UINT_SETTER(files_done, guint, PROP_FILES_DONE)
AS_TRANSFER_UINT_SETTER(files_failed, guint, PROP_FILES_FAILED)
AS_TRANSFER_UINT_SETTER(rate_limit, guint64, PROP_RATE_LIMIT)

const gchar *
as_transfer_get_destination(AsTransfer *self)
{
	return self->destination;
}
guint
as_transfer_get_files(AsTransfer *self)
{
	return self->files;
}
guint
as_transfer_get_files_done(AsTransfer *self)
{
	return self->files_done;
}
guint
as_transfer_get_files_failed(AsTransfer *self)
{
	return self->files_failed;
}
guint64
as_transfer_get_rate(AsTransfer *self)
{
	return self->rate;
}
gint64
as_transfer_get_eta(AsTransfer *self)
{
	return self->eta_s;
}
guint64
as_transfer_get_rate_limit(AsTransfer *self)
{
	return self->rate_limit;
}

void
as_transfer_set_control(AsTransfer *self, const AsTransferControl *control, gpointer user_data)
{
	g_return_if_fail(AS_IS_TRANSFER(self));
	self->control = control;
	self->control_data = user_data;
}

static gboolean
as_transfer_no_control(AsTransfer *self, GError **error)
{
	if (self->control != NULL && !as_transfer_state_is_final(self->state))
		return FALSE;
	if (as_transfer_state_is_final(self->state))
		g_set_error(error, AS_ERROR, AS_ERROR_CONFLICT, "the transfer is already %s",
			    as_transfer_state_to_string(self->state));
	else
		g_set_error_literal(error, AS_ERROR, AS_ERROR_NOT_SUPPORTED,
				    "an incoming transfer is paced by its sender");
	return TRUE;
}

gboolean
as_transfer_pause(AsTransfer *self, GError **error)
{
	if (as_transfer_no_control(self, error))
		return FALSE;
	return self->control->pause(self->control_data, error);
}

gboolean
as_transfer_resume(AsTransfer *self, GError **error)
{
	if (as_transfer_no_control(self, error))
		return FALSE;
	return self->control->resume(self->control_data, error);
}

gboolean
as_transfer_cancel(AsTransfer *self, GError **error)
{
	if (as_transfer_no_control(self, error))
		return FALSE;
	return self->control->cancel(self->control_data, error);
}

gboolean
as_transfer_request_rate_limit(AsTransfer *self, guint64 bytes_per_second, GError **error)
{
	if (as_transfer_no_control(self, error))
		return FALSE;
	return self->control->set_rate_limit(self->control_data, bytes_per_second, error);
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
