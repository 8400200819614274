/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "AsNotifier"

#include "config.h"

#include <glib/gi18n.h>
#include <stdlib.h>

#include "as-dbus-generated.h"
#include "as-keys.h"
#include "as-notifier.h"

#define AS_NOTIFIER_PROGRAM "aerosync-notifier"

/* notifications reuse this many ids, so a burst of transfers replaces old bubbles and the
 * paths the actions may open stay bounded */
#define AS_NOTIFIER_MAX_SHOWN 32

/* org.freedesktop.FileManager1 may have to be started for ShowItems */
#define AS_NOTIFIER_FILE_MANAGER_NAME	    "org.freedesktop.FileManager1"
#define AS_NOTIFIER_FILE_MANAGER_PATH	    "/org/freedesktop/FileManager1"
#define AS_NOTIFIER_FILE_MANAGER_TIMEOUT_MS 15000

/* the TransferFinished info keys and values, see data/org.aerosync.xml */
#define AS_NOTIFIER_INFO_FILENAME   "filename"
#define AS_NOTIFIER_INFO_DIRECTION  "direction"
#define AS_NOTIFIER_INFO_SIZE	    "size"
#define AS_NOTIFIER_INFO_PEER	    "peer"
#define AS_NOTIFIER_INFO_SAVED_PATH "saved_path"
#define AS_NOTIFIER_INFO_ERROR	    "error"

struct _AsNotifier {
	GApplication parent_instance;
	AsDbusManager1 *manager;	       /* owned: follows org.aerosync, NULL off the bus */
	gchar *offered[AS_NOTIFIER_MAX_SHOWN]; /* owned: the path each shown notification opens */
	guint next_slot;
};

G_DEFINE_TYPE(AsNotifier, as_notifier, G_TYPE_APPLICATION)

/* a string from the daemon's info dictionary, or NULL when absent or of another type */
static gchar *
as_notifier_lookup_string(GVariant *info, const gchar *key)
{
	g_autoptr(GVariant) value = g_variant_lookup_value(info, key, G_VARIANT_TYPE_STRING);
	return value != NULL ? g_variant_dup_string(value, NULL) : NULL;
}

/* the actions take any path from the bus: only open what a notification offered */
static gboolean
as_notifier_is_offered(AsNotifier *self, const gchar *path)
{
	for (guint i = 0; i < AS_NOTIFIER_MAX_SHOWN; i++) {
		if (g_strcmp0(self->offered[i], path) == 0)
			return TRUE;
	}
	return FALSE;
}

static void
as_notifier_launch_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autofree gchar *uri = user_data;
	g_autoptr(GError) error = NULL;

	if (!g_app_info_launch_default_for_uri_finish(res, &error))
		g_warning("cannot open %s: %s", uri, error->message);
}

static void
as_notifier_launch_file(GFile *file)
{
	g_autofree gchar *uri = g_file_get_uri(file);
	g_debug("opening %s", uri);
	/* the callback owns a copy to name the file if it fails */
	g_app_info_launch_default_for_uri_async(uri, NULL, NULL, as_notifier_launch_cb,
						g_strdup(uri));
}

static void
as_notifier_open_cb(GSimpleAction *action, GVariant *parameter, gpointer user_data)
{
	AsNotifier *self = AS_NOTIFIER(user_data);
	const gchar *path = g_variant_get_string(parameter, NULL);
	g_autoptr(GFile) file = NULL;

	if (!as_notifier_is_offered(self, path)) {
		g_warning("refusing to open %s: no notification offered it", path);
		return;
	}
	file = g_file_new_for_path(path);
	as_notifier_launch_file(file);
}

static void
as_notifier_show_items_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GFile) file = G_FILE(user_data);
	g_autoptr(GFile) parent = g_file_get_parent(file);
	g_autoptr(GVariant) reply = NULL;
	g_autoptr(GError) error = NULL;

	reply = g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), res, &error);
	if (reply != NULL)
		return;
	/* no file manager implements the interface: the folder's default handler will do */
	g_debug("%s.ShowItems failed (%s), opening the folder instead",
		AS_NOTIFIER_FILE_MANAGER_NAME, error->message);
	if (parent != NULL)
		as_notifier_launch_file(parent);
}

static void
as_notifier_show_in_folder_cb(GSimpleAction *action, GVariant *parameter, gpointer user_data)
{
	AsNotifier *self = AS_NOTIFIER(user_data);
	GDBusConnection *connection = g_application_get_dbus_connection(G_APPLICATION(self));
	const gchar *path = g_variant_get_string(parameter, NULL);
	g_autoptr(GFile) file = NULL;
	g_autofree gchar *uri = NULL;
	const gchar *uris[] = {NULL, NULL};

	if (!as_notifier_is_offered(self, path)) {
		g_warning("refusing to show %s: no notification offered it", path);
		return;
	}
	file = g_file_new_for_path(path);
	if (connection == NULL) {
		g_autoptr(GFile) parent = g_file_get_parent(file);
		as_notifier_launch_file(parent);
		return;
	}
	uri = g_file_get_uri(file);
	uris[0] = uri;
	/* file managers select the item in its folder; auto-start so one can be activated */
	g_dbus_connection_call(connection, AS_NOTIFIER_FILE_MANAGER_NAME,
			       AS_NOTIFIER_FILE_MANAGER_PATH, AS_NOTIFIER_FILE_MANAGER_NAME,
			       "ShowItems", g_variant_new("(^ass)", uris, ""), NULL,
			       G_DBUS_CALL_FLAGS_NONE, AS_NOTIFIER_FILE_MANAGER_TIMEOUT_MS, NULL,
			       as_notifier_show_items_cb, g_steal_pointer(&file));
}

static GNotification *
as_notifier_build_notification(const gchar *state,
			       gboolean receive,
			       const gchar *filename,
			       const gchar *peer,
			       guint64 size,
			       const gchar *reason,
			       const gchar *saved_path)
{
	g_autoptr(GNotification) notification = NULL;
	g_autoptr(GIcon) icon = NULL;
	g_autofree gchar *size_text = g_format_size(size);
	g_autofree gchar *body = NULL;

	if (g_strcmp0(state, "completed") == 0 && receive) {
		/* TRANSLATORS: notification title: a file arrived */
		notification = g_notification_new(_("File received"));
		/* TRANSLATORS: notification body: file name, sender address and size,
		 * e.g. "photo.jpg from 192.168.1.20 (2.1 MB)" */
		body = g_strdup_printf(_("%s from %s (%s)"), filename, peer, size_text);
		icon = g_themed_icon_new("folder-download");
		g_notification_set_category(notification, "transfer.complete");
		if (saved_path != NULL) {
			g_autoptr(GVariant) target =
				g_variant_ref_sink(g_variant_new_string(saved_path));
			g_notification_set_default_action_and_target_value(notification, "app.open",
									   target);
			/* TRANSLATORS: button of the "File received" notification */
			g_notification_add_button_with_target_value(notification, _("Open"),
								    "app.open", target);
			/* TRANSLATORS: button of the "File received" notification: show the
			 * file selected in the file manager */
			g_notification_add_button_with_target_value(
				notification, _("Show in folder"), "app.show-in-folder", target);
		}
	} else if (g_strcmp0(state, "completed") == 0) {
		/* TRANSLATORS: notification title: a file was delivered */
		notification = g_notification_new(_("File sent"));
		/* TRANSLATORS: notification body: file name, receiver address and size,
		 * e.g. "photo.jpg to 192.168.1.20 (2.1 MB)" */
		body = g_strdup_printf(_("%s to %s (%s)"), filename, peer, size_text);
		icon = g_themed_icon_new("document-send");
		g_notification_set_category(notification, "transfer.complete");
	} else if (g_strcmp0(state, "failed") == 0) {
		/* TRANSLATORS: notification title */
		notification = g_notification_new(_("Transfer failed"));
		if (reason == NULL) {
			/* TRANSLATORS: reason in the "Transfer failed" notification when the
			 * daemon gave none */
			reason = _("unknown error");
		}
		if (receive) {
			/* TRANSLATORS: notification body: file name, sender address and why,
			 * e.g. "photo.jpg from 192.168.1.20: disk full" */
			body = g_strdup_printf(_("%s from %s: %s"), filename, peer, reason);
		} else {
			/* TRANSLATORS: notification body: file name, receiver address and why,
			 * e.g. "photo.jpg to 192.168.1.20: connection refused" */
			body = g_strdup_printf(_("%s to %s: %s"), filename, peer, reason);
		}
		icon = g_themed_icon_new("dialog-error");
		g_notification_set_category(notification, "transfer.error");
	} else {
		/* cancelled: the user or the sender chose so, nothing to tell */
		return NULL;
	}
	g_notification_set_body(notification, body);
	g_notification_set_icon(notification, icon);
	return g_steal_pointer(&notification);
}

static void
as_notifier_transfer_finished_cb(AsDbusManager1 *manager,
				 const gchar *transfer,
				 const gchar *state,
				 GVariant *info,
				 gpointer user_data)
{
	AsNotifier *self = AS_NOTIFIER(user_data);
	g_autofree gchar *filename = as_notifier_lookup_string(info, AS_NOTIFIER_INFO_FILENAME);
	g_autofree gchar *direction = as_notifier_lookup_string(info, AS_NOTIFIER_INFO_DIRECTION);
	g_autofree gchar *peer = as_notifier_lookup_string(info, AS_NOTIFIER_INFO_PEER);
	g_autofree gchar *saved_path = as_notifier_lookup_string(info, AS_NOTIFIER_INFO_SAVED_PATH);
	g_autofree gchar *reason = as_notifier_lookup_string(info, AS_NOTIFIER_INFO_ERROR);
	g_autoptr(GVariant) size =
		g_variant_lookup_value(info, AS_NOTIFIER_INFO_SIZE, G_VARIANT_TYPE_UINT64);
	g_autoptr(GNotification) notification = NULL;
	g_autofree gchar *id = NULL;
	gboolean receive = g_strcmp0(direction, "receive") == 0;
	guint slot;

	if (filename == NULL || (!receive && g_strcmp0(direction, "send") != 0)) {
		g_debug("ignoring %s: no filename or direction", transfer);
		return;
	}
	if (saved_path != NULL && !g_path_is_absolute(saved_path))
		g_clear_pointer(&saved_path, g_free);
	if (peer == NULL) {
		/* TRANSLATORS: stands for the sender or receiver address when it is not known */
		peer = g_strdup(_("unknown peer"));
	}
	notification = as_notifier_build_notification(state, receive, filename, peer,
						      size != NULL ? g_variant_get_uint64(size) : 0,
						      reason, saved_path);
	if (notification == NULL) {
		g_debug("%s %s: nothing to show", transfer, state);
		return;
	}

	slot = self->next_slot++ % AS_NOTIFIER_MAX_SHOWN;
	g_free(self->offered[slot]);
	self->offered[slot] = g_steal_pointer(&saved_path);
	id = g_strdup_printf("transfer-%u", slot);
	g_debug("%s %s: showing %s", transfer, state, id);
	g_application_send_notification(G_APPLICATION(self), id, notification);
}

static void
as_notifier_name_owner_cb(GObject *object, GParamSpec *pspec, gpointer user_data)
{
	g_autofree gchar *owner = g_dbus_proxy_get_name_owner(G_DBUS_PROXY(object));
	/* the daemon comes and goes with its unit: that is no error */
	if (owner != NULL)
		g_debug("aerosyncd is on the bus as %s", owner);
	else
		g_debug("aerosyncd is not on the bus, waiting for it");
}

/* runs before the application id is owned: once the name is visible, the signals are ours */
static gboolean
as_notifier_dbus_register(GApplication *application,
			  GDBusConnection *connection,
			  const gchar *object_path,
			  GError **error)
{
	AsNotifier *self = AS_NOTIFIER(application);

	if (!G_APPLICATION_CLASS(as_notifier_parent_class)
		     ->dbus_register(application, connection, object_path, error))
		return FALSE;

	/* the proxy follows the owner of org.aerosync: no activation, no error while it is
	 * missing, and only the real owner's signals arrive */
	self->manager = as_dbus_manager1_proxy_new_sync(
		connection,
		G_DBUS_PROXY_FLAGS_DO_NOT_AUTO_START | G_DBUS_PROXY_FLAGS_DO_NOT_LOAD_PROPERTIES,
		AS_DBUS_NAME, AS_DBUS_PATH, NULL, error);
	if (self->manager == NULL) {
		g_prefix_error_literal(error, "cannot follow " AS_DBUS_NAME ": ");
		return FALSE;
	}
	g_signal_connect_object(self->manager, "transfer-finished",
				G_CALLBACK(as_notifier_transfer_finished_cb), self, 0);
	g_signal_connect_object(self->manager, "notify::g-name-owner",
				G_CALLBACK(as_notifier_name_owner_cb), self, 0);
	as_notifier_name_owner_cb(G_OBJECT(self->manager), NULL, self);
	return TRUE;
}

static void
as_notifier_dbus_unregister(GApplication *application,
			    GDBusConnection *connection,
			    const gchar *object_path)
{
	AsNotifier *self = AS_NOTIFIER(application);
	g_clear_object(&self->manager);
	G_APPLICATION_CLASS(as_notifier_parent_class)
		->dbus_unregister(application, connection, object_path);
}

static void
as_notifier_startup(GApplication *application)
{
	const GActionEntry actions[] = {
		{.name = "open", .activate = as_notifier_open_cb, .parameter_type = "s"},
		{.name = "show-in-folder",
		 .activate = as_notifier_show_in_folder_cb,
		 .parameter_type = "s"},
	};

	G_APPLICATION_CLASS(as_notifier_parent_class)->startup(application);
	g_action_map_add_action_entries(G_ACTION_MAP(application), actions, G_N_ELEMENTS(actions),
					application);
	/* no windows: the signals keep us busy until the session or the unit ends */
	g_application_hold(application);
}

static void
as_notifier_activate(GApplication *application)
{
	/* no window to present: the first start and every later one land here */
	g_debug("activated");
}

static gint
as_notifier_handle_local_options(GApplication *application, GVariantDict *options)
{
	if (g_variant_dict_contains(options, "version")) {
		g_print("%s %s\n", AS_NOTIFIER_PROGRAM, PACKAGE_VERSION);
		return EXIT_SUCCESS;
	}
	/* GLib spells it --gapplication-replace; systemd units and users expect the short form */
	if (g_variant_dict_contains(options, "replace")) {
		g_application_set_flags(application, g_application_get_flags(application) |
							     G_APPLICATION_REPLACE);
	}
	return -1;
}

static void
as_notifier_finalize(GObject *object)
{
	AsNotifier *self = AS_NOTIFIER(object);
	g_clear_object(&self->manager);
	for (guint i = 0; i < AS_NOTIFIER_MAX_SHOWN; i++)
		g_free(self->offered[i]);
	G_OBJECT_CLASS(as_notifier_parent_class)->finalize(object);
}

static void
as_notifier_class_init(AsNotifierClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);
	GApplicationClass *application_class = G_APPLICATION_CLASS(klass);

	object_class->finalize = as_notifier_finalize;
	application_class->dbus_register = as_notifier_dbus_register;
	application_class->dbus_unregister = as_notifier_dbus_unregister;
	application_class->startup = as_notifier_startup;
	application_class->activate = as_notifier_activate;
	application_class->handle_local_options = as_notifier_handle_local_options;
}

static void
as_notifier_init(AsNotifier *self)
{
	g_application_add_main_option(G_APPLICATION(self), "version", '\0', G_OPTION_FLAG_NONE,
				      G_OPTION_ARG_NONE,
				      /* TRANSLATORS: --version in --help */
				      _("Show the version and exit"), NULL);
	g_application_add_main_option(G_APPLICATION(self), "replace", '\0', G_OPTION_FLAG_NONE,
				      G_OPTION_ARG_NONE,
				      /* TRANSLATORS: --replace in --help */
				      _("Take over from a notifier that is already running"), NULL);
	g_application_set_option_context_summary(
		G_APPLICATION(self),
		/* TRANSLATORS: the summary in --help */
		_("Shows desktop notifications for the files aerosyncd receives and sends."));
}

AsNotifier *
as_notifier_new(void)
{
	/* a newer instance started with --replace takes the name and this one quits */
	return g_object_new(AS_TYPE_NOTIFIER, "application-id", AS_NOTIFIER_APPLICATION_ID, "flags",
			    G_APPLICATION_ALLOW_REPLACEMENT, NULL);
}
