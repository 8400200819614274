/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* RFC 2046 §5.1.1: a boundary is 1 to 70 characters */
#define AS_MULTIPART_BOUNDARY_MAX 70
/* all part headers of one part together, not counting the blank line */
#define AS_MULTIPART_HEADERS_MAX       (16 * 1024)
#define AS_MULTIPART_MAX_PARTS_DEFAULT 100000

/**
 * AsMultipartCallbacks:
 * @part_begin: a part's headers were parsed; @name is the Content-Disposition name=,
 *   @filename the filename*= or filename= value (or %NULL), @content_type the raw Content-Type
 *   header value (or %NULL). All strings are valid UTF-8 and only valid during the call.
 * @part_data: a slice of the current part's body, as large as the fed data allows; never empty
 * @part_end: the current part's body is complete (its closing delimiter was seen)
 * @part_header: each header line of a part as it is parsed, before @part_begin (e.g. a
 *   per-file X-File-Hash in a batch); the value has its leading white space removed
 *
 * Each callback may be %NULL. A callback returning %FALSE aborts parsing: its @error is
 * returned from as_multipart_parser_feed() unchanged, and every later call fails.
 */
typedef struct {
	gboolean (*part_begin)(gpointer user_data,
			       const gchar *name,
			       const gchar *filename,
			       const gchar *content_type,
			       GError **error);
	gboolean (*part_data)(gpointer user_data, const guint8 *data, gsize len, GError **error);
	gboolean (*part_end)(gpointer user_data, GError **error);
	gboolean (*part_header)(gpointer user_data,
				const gchar *name,
				const gchar *value,
				GError **error);
} AsMultipartCallbacks;

typedef struct _AsMultipartParser AsMultipartParser;

AsMultipartParser *as_multipart_parser_new(const gchar *boundary,
					   const AsMultipartCallbacks *callbacks,
					   gpointer user_data);
void as_multipart_parser_set_max_parts(AsMultipartParser *self, guint max_parts);
gboolean
as_multipart_parser_feed(AsMultipartParser *self, const guint8 *data, gsize len, GError **error);
gboolean as_multipart_parser_finish(AsMultipartParser *self, GError **error);
guint as_multipart_parser_get_part_count(AsMultipartParser *self);
void as_multipart_parser_free(AsMultipartParser *self);

gchar *as_multipart_boundary_from_content_type(const gchar *content_type, GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(AsMultipartParser, as_multipart_parser_free)

G_END_DECLS
