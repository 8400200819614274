/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "AsSender"

#include "config.h"

#include <string.h>

#include "as-error.h"
#include "as-file-walker.h"
#include "as-peer-client.h"
#include "as-rate-limit.h"
#include "as-send-job.h"
#include "as-send-state.h"
#include "as-sender.h"

/* a Send() names at most this many paths; directories hold any number of files */
#define AS_SENDER_PATHS_MAX 4096

struct _AsSender {
	GObject parent_instance;
	AsEngine *engine;	       /* owned ref */
	gchar *state_dir;	       /* $XDG_STATE_HOME/aerosync/sending */
	AsRateLimiter *global_limiter; /* owned: shared by every transfer, 0 = unlimited */
	GHashTable *jobs;	       /* (element-type utf8 AsSendJob) owned, running ones */
	gboolean shut_down;
};

G_DEFINE_TYPE(AsSender, as_sender, G_TYPE_OBJECT)

static gboolean
as_sender_release_job_cb(gpointer user_data)
{
	g_object_unref(user_data);
	return G_SOURCE_REMOVE;
}

static void
as_sender_job_finished_cb(AsSendJob *job, gpointer user_data)
{
	AsSender *self = AS_SENDER(user_data);
	gpointer key = NULL;
	gpointer value = NULL;

	/* the job may still be on the stack that told us: let it go from an idle */
	if (g_hash_table_steal_extended(self->jobs, as_send_job_get_id(job), &key, &value)) {
		g_signal_handlers_disconnect_by_data(job, self);
		g_free(key);
		g_idle_add_full(G_PRIORITY_LOW, as_sender_release_job_cb, value, NULL);
	}
}

static void
as_sender_add_job(AsSender *self, AsSendJob *job)
{
	g_hash_table_insert(self->jobs, g_strdup(as_send_job_get_id(job)), g_object_ref(job));
	g_signal_connect(job, "finished", G_CALLBACK(as_sender_job_finished_cb), self);
	as_send_job_start(job);
}

/* what the worker thread of a Send() hands back */
typedef struct {
	GStrv paths;
	gchar *destination;
	AsSendOptions opts;
	gchar *state_dir;
	gchar *id;
	AsFileWalker *walker; /* result */
	AsSendState *state;   /* result */
	gchar *token;	      /* result */
} AsSenderSendData;

static void
as_sender_send_data_free(AsSenderSendData *data)
{
	g_strfreev(data->paths);
	g_free(data->destination);
	as_send_options_clear(&data->opts);
	g_free(data->state_dir);
	g_free(data->id);
	g_clear_object(&data->walker);
	g_clear_object(&data->state);
	if (data->token != NULL)
		memset(data->token, 0, strlen(data->token));
	g_free(data->token);
	g_free(data);
}

/* the blocking part of Send(): check the sources, read the token, write the resume record */
static void
as_sender_send_thread(GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
	AsSenderSendData *data = task_data;
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) options = NULL;

	data->walker = as_file_walker_new((const gchar *const *)data->paths,
					  data->opts.recursive ? AS_FILE_WALKER_FLAG_RECURSIVE
							       : AS_FILE_WALKER_FLAG_NONE,
					  &error);
	if (data->walker == NULL) {
		g_task_return_error(task, g_steal_pointer(&error));
		return;
	}
	data->token = as_send_options_load_token(&data->opts, &error);
	if (error != NULL) {
		g_task_return_error(task, g_steal_pointer(&error));
		return;
	}
	options = g_variant_ref_sink(as_send_options_to_variant(&data->opts));
	data->state =
		as_send_state_new(data->state_dir, data->id, data->destination, options, &error);
	if (data->state == NULL) {
		g_prefix_error(&error, "cannot write the resume record: ");
		g_task_return_error(task, g_steal_pointer(&error));
		return;
	}
	g_task_return_boolean(task, TRUE);
}

static void
as_sender_send_thread_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = G_TASK(user_data);
	AsSender *self = g_task_get_source_object(task);
	AsSenderSendData *data = g_task_get_task_data(task);
	g_autoptr(GError) error = NULL;
	g_autoptr(AsSendJob) job = NULL;

	if (!g_task_propagate_boolean(G_TASK(res), &error)) {
		/* a path in the message may be any bytes; the bus takes UTF-8 */
		if (!g_utf8_validate(error->message, -1, NULL)) {
			gchar *valid = g_utf8_make_valid(error->message, -1);
			g_free(error->message);
			error->message = valid;
		}
		g_task_return_error(task, g_steal_pointer(&error));
		return;
	}
	if (self->shut_down) {
		g_task_return_new_error(
			task, AS_ERROR, AS_ERROR_FAILED,
			"the daemon is shutting down; the send starts with it next time");
		return;
	}
	job = as_send_job_new(self->engine, data->state, data->token, self->global_limiter,
			      data->walker, FALSE, &error);
	if (job == NULL) {
		(void)as_send_state_delete(data->state, NULL);
		g_task_return_error(task, g_steal_pointer(&error));
		return;
	}
	g_message("send %s: %u paths to %s", data->id, g_strv_length(data->paths),
		  data->destination);
	as_sender_add_job(self, job);
	g_task_return_pointer(task, g_strdup(data->id), g_free);
}

/* a transfer id: a UUID without dashes, safe as a file name and in an object path */
static gchar *
as_sender_new_id(void)
{
	g_autofree gchar *uuid = g_uuid_string_random();
	GString *str = g_string_new(NULL);

	for (const gchar *p = uuid; *p != '\0'; p++) {
		if (*p != '-')
			g_string_append_c(str, *p);
	}
	return g_string_free(str, FALSE);
}

/**
 * as_sender_send_async:
 * @self: a #AsSender
 * @paths: absolute paths of files and, with Recursive, directories
 * @destination: `host[:port]`, `http://host:port`, `quic://host[:port]`, `NAME.local` or
 *   `@instance`
 * @options: (nullable): the `a{sv}` options of Manager1.Send()
 * @cancellable: (nullable): a #GCancellable
 * @callback: called once the send is queued or refused
 * @user_data: data for @callback
 *
 * Queues a send. Mistakes in the arguments (a missing file, a directory without Recursive, a bad
 * destination, https://) fail here; everything after is reported on the transfer.
 * The sources are checked and the resume record written in a worker thread.
 **/
void
as_sender_send_async(AsSender *self,
		     const gchar *const *paths,
		     const gchar *destination,
		     GVariant *options,
		     GCancellable *cancellable,
		     GAsyncReadyCallback callback,
		     gpointer user_data)
{
	g_autoptr(GTask) task = NULL;
	g_autoptr(GTask) inner = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *base_url = NULL;
	g_autofree gchar *host_port = NULL;
	AsSenderSendData *data;
	guint n_paths;

	g_return_if_fail(AS_IS_SENDER(self));
	g_return_if_fail(destination != NULL);

	task = g_task_new(self, cancellable, callback, user_data);
	g_task_set_source_tag(task, as_sender_send_async);
	data = g_new0(AsSenderSendData, 1);
	g_task_set_task_data(task, data, (GDestroyNotify)as_sender_send_data_free);

	if (!as_send_options_parse(&data->opts, options, &error)) {
		g_task_return_error(task, g_steal_pointer(&error));
		return;
	}
	n_paths = paths != NULL ? g_strv_length((gchar **)paths) : 0;
	if (n_paths == 0 || n_paths > AS_SENDER_PATHS_MAX) {
		g_task_return_new_error(task, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
					"give 1 to %u paths to send", (guint)AS_SENDER_PATHS_MAX);
		return;
	}
	for (guint i = 0; i < n_paths; i++) {
		if (!g_path_is_absolute(paths[i])) {
			g_task_return_new_error(task, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
						"'%s' is not an absolute path", paths[i]);
			return;
		}
	}
	if (!as_send_job_parse_destination(destination, data->opts.protocol, &base_url, &host_port,
					   NULL, NULL, NULL, &error)) {
		g_task_return_error(task, g_steal_pointer(&error));
		return;
	}
	data->paths = g_strdupv((gchar **)paths);
	data->opts.paths = g_strdupv((gchar **)paths);
	data->destination = g_strdup(destination);
	data->state_dir = g_strdup(self->state_dir);
	data->id = as_sender_new_id();
	/* the thread has a task of its own: the job is made back on this thread, in its callback */
	inner = g_task_new(self, cancellable, as_sender_send_thread_cb, g_steal_pointer(&task));
	g_task_set_task_data(inner, data, NULL);
	g_task_run_in_thread(inner, as_sender_send_thread);
}

gchar *
as_sender_send_finish(AsSender *self, GAsyncResult *res, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(res, self), NULL);
	return g_task_propagate_pointer(G_TASK(res), error);
}

/**
 * as_sender_resume_all:
 * @self: a #AsSender
 *
 * Picks up every send an earlier run of the daemon left unfinished (stopped, or killed): each
 * asks its receiver what arrived and sends the rest. A record that cannot be read is removed.
 *
 * Returns: the number of sends resumed
 **/
guint
as_sender_resume_all(AsSender *self)
{
	g_autoptr(GPtrArray) ids = NULL;
	g_autoptr(GError) error = NULL;
	guint resumed = 0;

	g_return_val_if_fail(AS_IS_SENDER(self), 0);

	ids = as_send_state_list_dir(self->state_dir, &error);
	if (ids == NULL) {
		g_warning("cannot list unfinished sends in %s: %s", self->state_dir,
			  error->message);
		return 0;
	}
	for (guint i = 0; i < ids->len; i++) {
		const gchar *id = g_ptr_array_index(ids, i);
		g_autoptr(AsSendState) state = NULL;
		g_autoptr(AsSendJob) job = NULL;
		g_autoptr(GError) error_local = NULL;
		g_autoptr(GError) error_token = NULL;
		g_autofree gchar *token = NULL;
		AsSendOptions opts = {0};

		if (g_hash_table_contains(self->jobs, id))
			continue;
		state = as_send_state_load(self->state_dir, id, &error_local);
		if (state == NULL) {
			if (g_error_matches(error_local, AS_ERROR, AS_ERROR_NOT_SUPPORTED)) {
				g_warning("not resuming send %s: %s", id, error_local->message);
				continue;
			}
			g_warning("removing the unreadable resume record of send %s: %s", id,
				  error_local->message);
			(void)as_send_state_delete_id(self->state_dir, id, NULL);
			continue;
		}
		if (!as_send_options_parse(&opts, as_send_state_get_options(state), &error_local)) {
			g_warning("removing send %s: %s", id, error_local->message);
			(void)as_send_state_delete(state, NULL);
			continue;
		}
		token = as_send_options_load_token(&opts, &error_token);
		as_send_options_clear(&opts);
		/* without its token file the send goes on, and the receiver's refusal says why */
		if (error_token != NULL)
			g_warning("send %s: %s", id, error_token->message);
		job = as_send_job_new(self->engine, state, token, self->global_limiter, NULL, TRUE,
				      &error_local);
		if (job == NULL) {
			g_warning("removing send %s: %s", id, error_local->message);
			(void)as_send_state_delete(state, NULL);
			continue;
		}
		g_message("resuming send %s to %s: %" G_GUINT64_FORMAT " of %" G_GUINT64_FORMAT
			  " files done",
			  id, as_send_state_get_destination(state),
			  as_send_state_get_n_done(state) + as_send_state_get_n_failed(state),
			  as_send_state_get_n_files(state));
		as_sender_add_job(self, job);
		resumed++;
	}
	return resumed;
}

/**
 * as_sender_shutdown:
 * @self: a #AsSender
 *
 * Stops every send for a daemon exit, saving where each stands; they go on after the next
 * as_sender_resume_all(). New sends are refused from now on.
 **/
void
as_sender_shutdown(AsSender *self)
{
	GHashTableIter iter;
	gpointer value;

	g_return_if_fail(AS_IS_SENDER(self));

	self->shut_down = TRUE;
	g_hash_table_iter_init(&iter, self->jobs);
	while (g_hash_table_iter_next(&iter, NULL, &value))
		as_send_job_shutdown(AS_SEND_JOB(value));
}

const gchar *
as_sender_get_state_dir(AsSender *self)
{
	return self->state_dir;
}

/**
 * as_sender_set_global_rate_limit:
 * @bytes_per_second: the limit for all sends together, 0 for none
 *
 * Applies at once to every running send, on top of each one's own limit.
 **/
void
as_sender_set_global_rate_limit(AsSender *self, guint64 bytes_per_second)
{
	g_return_if_fail(AS_IS_SENDER(self));
	as_rate_limiter_set_rate(self->global_limiter, bytes_per_second, g_get_monotonic_time());
}

guint64
as_sender_get_global_rate_limit(AsSender *self)
{
	g_return_val_if_fail(AS_IS_SENDER(self), 0);
	return as_rate_limiter_get_rate(self->global_limiter);
}

guint
as_sender_get_n_jobs(AsSender *self)
{
	g_return_val_if_fail(AS_IS_SENDER(self), 0);
	return g_hash_table_size(self->jobs);
}

/**
 * as_sender_new:
 * @engine: the engine transfers are registered with; its config gives the state directory
 * @global_rate_limit: bytes per second for all sends together, 0 for no limit
 *
 * Returns: (transfer full): the owner of every send of the daemon
 **/
AsSender *
as_sender_new(AsEngine *engine, guint64 global_rate_limit)
{
	AsSender *self = g_object_new(AS_TYPE_SENDER, NULL);

	self->engine = g_object_ref(engine);
	self->state_dir = g_build_filename(as_engine_get_config(engine)->state_dir,
					   AS_SENDER_STATE_SUBDIR, NULL);
	self->global_limiter = as_rate_limiter_new(global_rate_limit, 0);
	return self;
}

static void
as_sender_dispose(GObject *object)
{
	AsSender *self = AS_SENDER(object);
	GHashTableIter iter;
	gpointer value;

	if (self->jobs != NULL) {
		g_hash_table_iter_init(&iter, self->jobs);
		while (g_hash_table_iter_next(&iter, NULL, &value))
			g_signal_handlers_disconnect_by_data(value, self);
		g_hash_table_remove_all(self->jobs);
	}
	g_clear_object(&self->engine);
	G_OBJECT_CLASS(as_sender_parent_class)->dispose(object);
}

static void
as_sender_finalize(GObject *object)
{
	AsSender *self = AS_SENDER(object);

	g_hash_table_unref(self->jobs);
	g_clear_object(&self->global_limiter);
	g_free(self->state_dir);
	G_OBJECT_CLASS(as_sender_parent_class)->finalize(object);
}

static void
as_sender_class_init(AsSenderClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);
	object_class->dispose = as_sender_dispose;
	object_class->finalize = as_sender_finalize;
}

static void
as_sender_init(AsSender *self)
{
	self->jobs = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_object_unref);
}
