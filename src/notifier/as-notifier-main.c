/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "AsNotifier"

#include "config.h"

#include <glib-unix.h>
#include <glib/gi18n.h>
#include <locale.h>
#include <signal.h>

#include "as-notifier.h"

static gboolean
as_notifier_main_quit_cb(gpointer user_data)
{
	/* systemd stops the unit with SIGTERM: leave the bus cleanly */
	g_application_quit(G_APPLICATION(user_data));
	return G_SOURCE_CONTINUE;
}

int
main(int argc, char *argv[])
{
	g_autoptr(AsNotifier) notifier = NULL;

	setlocale(LC_ALL, "");
	/* AEROSYNC_LOCALEDIR lets tests use the catalogues of the build tree */
	bindtextdomain(GETTEXT_PACKAGE, g_getenv("AEROSYNC_LOCALEDIR") ?: LOCALEDIR);
	bind_textdomain_codeset(GETTEXT_PACKAGE, "UTF-8");
	textdomain(GETTEXT_PACKAGE);
	g_set_prgname("aerosync-notifier");
	/* TRANSLATORS: the application name, as notification servers may show it */
	g_set_application_name(_("AeroSync"));

	notifier = as_notifier_new();
	g_unix_signal_add(SIGTERM, as_notifier_main_quit_cb, notifier);
	g_unix_signal_add(SIGINT, as_notifier_main_quit_cb, notifier);
	return g_application_run(G_APPLICATION(notifier), argc, argv);
}
