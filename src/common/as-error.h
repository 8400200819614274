/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define AS_ERROR (as_error_quark())

/**
 * AsError:
 * @AS_ERROR_FAILED: generic failure
 * @AS_ERROR_INVALID_ARGUMENT: a request or option is malformed
 * @AS_ERROR_NOT_FOUND: the named object does not exist
 * @AS_ERROR_AMBIGUOUS: a prefix matched more than one object
 * @AS_ERROR_PERMISSION_DENIED: authentication or confinement refused the request
 * @AS_ERROR_NOT_SUPPORTED: this build or configuration cannot do it
 * @AS_ERROR_IO: reading or writing the disk failed
 * @AS_ERROR_NO_SPACE: the disk is full or the request does not fit
 * @AS_ERROR_TOO_LARGE: the file or body exceeds a configured limit
 * @AS_ERROR_HASH_MISMATCH: data does not match its announced SHA-256
 * @AS_ERROR_CONFLICT: the request conflicts with state (e.g. chunk in flight)
 * @AS_ERROR_INCOMPLETE: not all the data has arrived yet
 *
 * The single error domain of AeroSync. Registered on the bus as `org.aerosync.Error.*`.
 */
typedef enum {
	AS_ERROR_FAILED,
	AS_ERROR_INVALID_ARGUMENT,
	AS_ERROR_NOT_FOUND,
	AS_ERROR_AMBIGUOUS,
	AS_ERROR_PERMISSION_DENIED,
	AS_ERROR_NOT_SUPPORTED,
	AS_ERROR_IO,
	AS_ERROR_NO_SPACE,
	AS_ERROR_TOO_LARGE,
	AS_ERROR_HASH_MISMATCH,
	AS_ERROR_CONFLICT,
	AS_ERROR_INCOMPLETE,
	AS_ERROR_LAST
} AsError;

GQuark as_error_quark(void);
const gchar *as_error_to_dbus_name(AsError code);
void as_error_convert(GError **error);

G_END_DECLS
