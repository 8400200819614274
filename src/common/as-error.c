/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "AsError"

#include "config.h"

#include <gio/gio.h>

#include "as-error.h"

static const GDBusErrorEntry as_error_entries[] = {
	{AS_ERROR_FAILED, "org.aerosync.Error.Failed"},
	{AS_ERROR_INVALID_ARGUMENT, "org.aerosync.Error.InvalidArgument"},
	{AS_ERROR_NOT_FOUND, "org.aerosync.Error.NotFound"},
	{AS_ERROR_AMBIGUOUS, "org.aerosync.Error.Ambiguous"},
	{AS_ERROR_PERMISSION_DENIED, "org.aerosync.Error.PermissionDenied"},
	{AS_ERROR_NOT_SUPPORTED, "org.aerosync.Error.NotSupported"},
	{AS_ERROR_IO, "org.aerosync.Error.Io"},
	{AS_ERROR_NO_SPACE, "org.aerosync.Error.NoSpace"},
	{AS_ERROR_TOO_LARGE, "org.aerosync.Error.TooLarge"},
	{AS_ERROR_HASH_MISMATCH, "org.aerosync.Error.HashMismatch"},
	{AS_ERROR_CONFLICT, "org.aerosync.Error.Conflict"},
	{AS_ERROR_INCOMPLETE, "org.aerosync.Error.Incomplete"},
};

G_STATIC_ASSERT(G_N_ELEMENTS(as_error_entries) == AS_ERROR_LAST);

GQuark
as_error_quark(void)
{
	static gsize quark = 0;
	g_dbus_error_register_error_domain("as-error-quark", &quark, as_error_entries,
					   G_N_ELEMENTS(as_error_entries));
	return (GQuark)quark;
}

const gchar *
as_error_to_dbus_name(AsError code)
{
	g_return_val_if_fail(code < AS_ERROR_LAST, NULL);
	return as_error_entries[code].dbus_error_name;
}

/* map GIO errors onto AS_ERROR so only one domain reaches the bus */
void
as_error_convert(GError **error)
{
	GError *e;

	if (error == NULL || *error == NULL)
		return;
	e = *error;
	if (e->domain == AS_ERROR)
		return;
	if (e->domain == G_IO_ERROR) {
		switch (e->code) {
		case G_IO_ERROR_NOT_FOUND:
			e->code = AS_ERROR_NOT_FOUND;
			break;
		case G_IO_ERROR_PERMISSION_DENIED:
			e->code = AS_ERROR_PERMISSION_DENIED;
			break;
		case G_IO_ERROR_NO_SPACE:
			e->code = AS_ERROR_NO_SPACE;
			break;
		case G_IO_ERROR_INVALID_ARGUMENT:
		case G_IO_ERROR_INVALID_FILENAME:
			e->code = AS_ERROR_INVALID_ARGUMENT;
			break;
		case G_IO_ERROR_NOT_SUPPORTED:
			e->code = AS_ERROR_NOT_SUPPORTED;
			break;
		case G_IO_ERROR_EXISTS:
			e->code = AS_ERROR_CONFLICT;
			break;
		default:
			e->code = AS_ERROR_IO;
			break;
		}
	} else if (e->domain == G_FILE_ERROR) {
		e->code = e->code == G_FILE_ERROR_NOSPC	  ? AS_ERROR_NO_SPACE
			  : e->code == G_FILE_ERROR_NOENT ? AS_ERROR_NOT_FOUND
			  : e->code == G_FILE_ERROR_ACCES ? AS_ERROR_PERMISSION_DENIED
							  : AS_ERROR_IO;
	} else if (e->domain == G_KEY_FILE_ERROR || e->domain == G_OPTION_ERROR) {
		e->code = AS_ERROR_INVALID_ARGUMENT;
	} else {
		e->code = AS_ERROR_FAILED;
	}
	e->domain = AS_ERROR;
}
