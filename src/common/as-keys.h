/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* a{sv} option keys of org.aerosync.Manager1, shared by the daemon and the CLI */
#define AS_KEY_LIMIT	    "Limit"	  /* u */
#define AS_KEY_DIRECTION    "Direction"	  /* s: "send" | "receive" */
#define AS_KEY_SUCCESS_ONLY "SuccessOnly" /* b */
#define AS_KEY_LABEL	    "Label"	  /* s */
#define AS_KEY_EXPIRES_IN   "ExpiresIn"	  /* t, seconds */

#define AS_DBUS_NAME	       "org.aerosync"
#define AS_DBUS_PATH	       "/org/aerosync"
#define AS_DBUS_TRANSFERS_PATH "/org/aerosync/transfers"
