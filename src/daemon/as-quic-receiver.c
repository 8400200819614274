/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "AsQuicReceiver"

#include "config.h"

#include <unistd.h>

#include "as-disk-writer.h"
#include "as-error.h"
#include "as-path.h"
#include "as-quic-framing.h"
#include "as-quic-receiver.h"
#include "as-sha256.h"
#include "as-write-behind.h"

/*
 * The daemon's QUIC ingest: upload streams of the 0.x framing (ALPN aerosync and aerosync/1)
 * go through the same staging, verification, routing and engine calls as an HTTP upload, so a
 * file that came over QUIC is indistinguishable downstream (history, audit, metrics, /ws,
 * D-Bus) except for its protocol, "quic".
 */

struct _AsQuicReceiver {
	GObject parent_instance;
	AsEngine *engine;	 /* owned */
	AsTlsIdentity *identity; /* owned */
	AsQuicServer *server;	 /* owned */
};

G_DEFINE_TYPE(AsQuicReceiver, as_quic_receiver, G_TYPE_OBJECT)

/* one upload stream; owned by the server from begin() to end() or abort(), then by the
 * finish of its disk writer */
typedef struct {
	AsQuicReceiver *self; /* owned ref: the server must outlive a pending reply */
	AsTransfer *transfer; /* owned ref */
	AsDiskWriter *writer; /* owned */
	gchar *temp_name;     /* NULL once published */
	gchar *rel_path;      /* routed */
	gchar *expected_sha256;
	gchar *peer;
	guint64 size;
	guint64 received;
	gboolean paused; /* data() asked the server to stop granting credit */
	AsQuicReplyFunc reply;
	gpointer reply_data;
} AsQuicUpload;

static void
as_quic_upload_free(AsQuicUpload *up)
{
	if (up->writer != NULL)
		as_disk_writer_abort(up->writer);
	g_clear_object(&up->writer);
	if (up->temp_name != NULL) {
		as_chunk_store_remove_temp(as_engine_get_chunk_store(up->self->engine),
					   up->temp_name);
		g_free(up->temp_name);
	}
	g_clear_object(&up->transfer);
	g_free(up->rel_path);
	g_free(up->expected_sha256);
	g_free(up->peer);
	g_object_unref(up->self);
	g_free(up);
}

static void
as_quic_receiver_drain_cb(AsDiskWriter *writer, gpointer user_data)
{
	AsQuicUpload *up = user_data;
	if (up->paused) {
		up->paused = FALSE;
		as_quic_server_resume_stream(up->self->server, up);
	}
}

static gboolean
as_quic_receiver_begin_cb(gpointer user_data,
			  const AsQuicUploadInfo *info,
			  gpointer *stream_handle,
			  GError **error)
{
	AsQuicReceiver *self = AS_QUIC_RECEIVER(user_data);
	AsConfig *config = as_engine_get_config(self->engine);
	g_autofree gchar *host = as_quic_peer_host(info->peer);
	g_autofree gchar *rel = NULL;
	g_autoptr(GError) error_local = NULL;
	AsQuicUpload *up;
	int fd;

	if (!as_engine_check_token(self->engine, info->token, host, "quic", error))
		return FALSE;
	rel = as_path_sanitize(info->name, &error_local);
	if (rel == NULL)
		goto refuse;
	if (info->sha256 != NULL && !as_sha256_hex_is_valid(info->sha256)) {
		g_set_error_literal(&error_local, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
				    "HASH must be 64 hex digits of SHA-256");
		goto refuse;
	}
	if (info->size > config->max_size) {
		g_set_error(&error_local, AS_ERROR, AS_ERROR_TOO_LARGE,
			    "%s: %" G_GUINT64_FORMAT " bytes exceed the limit of %" G_GUINT64_FORMAT
			    " bytes",
			    rel, info->size, config->max_size);
		goto refuse;
	}

	up = g_new0(AsQuicUpload, 1);
	up->self = g_object_ref(self);
	up->rel_path = as_engine_route(self->engine, rel, NULL, host);
	up->expected_sha256 = g_ascii_strdown(info->sha256 != NULL ? info->sha256 : "", -1);
	if (*up->expected_sha256 == '\0')
		g_clear_pointer(&up->expected_sha256, g_free);
	up->peer = g_strdup(host);
	up->size = info->size;
	fd = as_chunk_store_create_temp(as_engine_get_chunk_store(self->engine), &up->temp_name,
					&error_local);
	if (fd < 0) {
		as_quic_upload_free(up);
		goto refuse;
	}
	up->writer = as_disk_writer_new(fd, 0, TRUE);
	if (info->size >= AS_WRITE_BEHIND_MIN_BYTES)
		as_disk_writer_set_write_behind(up->writer);
	close(fd);
	as_disk_writer_set_drain_func(up->writer, as_quic_receiver_drain_cb, up);
	up->transfer = g_object_ref(
		as_engine_receive_begin(self->engine, NULL, "quic", up->rel_path, host, up->size));
	g_debug("%s: receiving %s (%" G_GUINT64_FORMAT " bytes, %s)", info->peer, up->rel_path,
		up->size, info->alpn);
	*stream_handle = up;
	return TRUE;
refuse:
	as_engine_record_failure(self->engine, "quic", rel != NULL ? rel : info->name, host,
				 error_local->message);
	g_propagate_error(error, g_steal_pointer(&error_local));
	return FALSE;
}

static gboolean
as_quic_receiver_data_cb(gpointer user_data, gpointer stream_handle, const guint8 *data, gsize len)
{
	AsQuicUpload *up = stream_handle;

	/* a failed writer drops what it is given; end() reports the failure */
	up->received += len;
	if (as_disk_writer_write(up->writer, data, len))
		up->paused = TRUE;
	as_engine_receive_progress(up->self->engine, up->transfer, up->received);
	return !up->paused;
}

static void
as_quic_receiver_settled(AsQuicUpload *up, const GError *error)
{
	if (error == NULL) {
		up->reply(up->reply_data, TRUE, NULL);
	} else {
		g_autofree gchar *msg = as_quic_framing_error_message(error);
		up->reply(up->reply_data, FALSE, msg);
	}
	as_quic_upload_free(up);
}

static void
as_quic_receiver_committed_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *published =
		as_engine_receive_commit_finish(AS_ENGINE(source), res, &error);
	as_quic_receiver_settled(user_data, error);
}

static void
as_quic_receiver_finished_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	AsQuicUpload *up = user_data;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *sha256 = NULL;

	sha256 = as_disk_writer_finish_finish(AS_DISK_WRITER(source), res, &error);
	g_clear_object(&up->writer);
	if (sha256 == NULL) {
		g_prefix_error(&error, "writing %s: ", up->rel_path);
		as_engine_receive_failed(up->self->engine, up->transfer, error->message);
		as_quic_receiver_settled(up, error);
		return;
	}
	/* published off the main loop: many small files share their directory fsyncs */
	as_engine_receive_commit_async(up->self->engine, up->transfer, &up->temp_name, up->rel_path,
				       up->expected_sha256, sha256, up->received,
				       as_quic_receiver_committed_cb, up);
}

static void
as_quic_receiver_end_cb(gpointer user_data,
			gpointer stream_handle,
			AsQuicReplyFunc reply,
			gpointer reply_data)
{
	AsQuicUpload *up = stream_handle;

	up->reply = reply;
	up->reply_data = reply_data;
	as_transfer_set_state(up->transfer, AS_TRANSFER_STATE_VERIFYING);
	as_disk_writer_finish_async(up->writer, NULL, as_quic_receiver_finished_cb, up);
}

static void
as_quic_receiver_abort_cb(gpointer user_data, gpointer stream_handle, const gchar *reason)
{
	AsQuicUpload *up = stream_handle;
	g_autofree gchar *msg =
		g_strdup_printf("%s after %" G_GUINT64_FORMAT " of %" G_GUINT64_FORMAT " bytes",
				reason, up->received, up->size);

	as_engine_receive_failed(up->self->engine, up->transfer, msg);
	as_quic_upload_free(up);
}

static const AsQuicIngest as_quic_receiver_ingest = {
	.begin = as_quic_receiver_begin_cb,
	.data = as_quic_receiver_data_cb,
	.end = as_quic_receiver_end_cb,
	.abort = as_quic_receiver_abort_cb,
};

/**
 * as_quic_receiver_listen:
 * @self: a #AsQuicReceiver
 * @address: the bind address; "0.0.0.0" and "::" both take IPv4 and IPv6
 * @port: the UDP port, 0 for any free one
 * @error: (nullable): optional return location for an error
 *
 * Returns: %TRUE when listening
 **/
gboolean
as_quic_receiver_listen(AsQuicReceiver *self, const gchar *address, guint16 port, GError **error)
{
	g_return_val_if_fail(AS_IS_QUIC_RECEIVER(self), FALSE);
	/* the HTTP side's "0.0.0.0" means "everywhere"; QUIC gives v6 senders that too */
	if (g_strcmp0(address, "0.0.0.0") == 0)
		address = "::";
	if (!as_quic_server_listen(self->server, address, port, error)) {
		g_prefix_error(error, "QUIC on UDP port %u: ", port);
		return FALSE;
	}
	return TRUE;
}

guint16
as_quic_receiver_get_port(AsQuicReceiver *self)
{
	g_return_val_if_fail(AS_IS_QUIC_RECEIVER(self), 0);
	return as_quic_server_get_port(self->server);
}

/**
 * as_quic_receiver_get_server:
 * @self: a #AsQuicReceiver
 *
 * Returns: (transfer none): the server, for statistics and settings
 **/
AsQuicServer *
as_quic_receiver_get_server(AsQuicReceiver *self)
{
	g_return_val_if_fail(AS_IS_QUIC_RECEIVER(self), NULL);
	return self->server;
}

/**
 * as_quic_receiver_stop:
 * @self: a #AsQuicReceiver
 *
 * Closes every connection; uploads in progress are aborted and their staging removed.
 **/
void
as_quic_receiver_stop(AsQuicReceiver *self)
{
	g_return_if_fail(AS_IS_QUIC_RECEIVER(self));
	as_quic_server_close(self->server);
}

static void
as_quic_receiver_finalize(GObject *object)
{
	AsQuicReceiver *self = AS_QUIC_RECEIVER(object);

	g_clear_object(&self->server);
	g_clear_object(&self->identity);
	g_clear_object(&self->engine);
	G_OBJECT_CLASS(as_quic_receiver_parent_class)->finalize(object);
}

static void
as_quic_receiver_class_init(AsQuicReceiverClass *klass)
{
	G_OBJECT_CLASS(klass)->finalize = as_quic_receiver_finalize;
}

static void
as_quic_receiver_init(AsQuicReceiver *self)
{
}

/**
 * as_quic_receiver_new:
 * @engine: the engine uploads are registered with
 * @identity: the TLS identity the server presents
 *
 * Returns: (transfer full): a receiver, not yet listening
 **/
AsQuicReceiver *
as_quic_receiver_new(AsEngine *engine, AsTlsIdentity *identity)
{
	AsQuicReceiver *self = g_object_new(AS_TYPE_QUIC_RECEIVER, NULL);

	self->engine = g_object_ref(engine);
	self->identity = g_object_ref(identity);
	/* the server does not own us: we own it */
	self->server = as_quic_server_new(identity, &as_quic_receiver_ingest, self, NULL);
	return self;
}
