/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "AsKnownPeers"

#include "config.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <string.h>

#include "as-error.h"
#include "as-known-peers.h"
#include "as-sha256.h"

/* one line of the file: a peer, or text kept as it is (comments, blank lines) */
typedef struct {
	gchar *text;   /* owned: the line as read, or as written for a new peer */
	gchar *key;    /* owned, nullable: "host:port" */
	gchar *sha256; /* owned, nullable: lower-case hex */
} AsKnownPeersLine;

struct _AsKnownPeers {
	gchar *path;
	GPtrArray *lines; /* (element-type AsKnownPeersLine) */
};

static void
as_known_peers_line_free(AsKnownPeersLine *line)
{
	g_free(line->text);
	g_free(line->key);
	g_free(line->sha256);
	g_free(line);
}

/**
 * as_known_peers_make_key:
 * @host: a host name or address; IPv6 addresses with or without brackets
 * @port: the port the peer was reached on
 *
 * Returns: (transfer full): the key of the peer in the file: `host:port`, lower case, IPv6
 *   in brackets
 **/
gchar *
as_known_peers_make_key(const gchar *host, guint16 port)
{
	g_autofree gchar *lower = NULL;
	gsize len;

	g_return_val_if_fail(host != NULL, NULL);

	lower = g_ascii_strdown(host, -1);
	len = strlen(lower);
	if (len >= 2 && lower[0] == '[' && lower[len - 1] == ']') {
		memmove(lower, lower + 1, len - 2);
		lower[len - 2] = '\0';
		len -= 2;
	}
	/* "laptop.local." and "laptop.local" are the same host */
	if (len > 1 && lower[len - 1] == '.')
		lower[len - 1] = '\0';
	if (strchr(lower, ':') != NULL)
		return g_strdup_printf("[%s]:%u", lower, port);
	return g_strdup_printf("%s:%u", lower, port);
}

/* "host:port" or "[v6]:port" with a port of 1 to 65535 and nothing odd in the host */
static gboolean
as_known_peers_key_is_valid(const gchar *key)
{
	const gchar *colon = strrchr(key, ':');
	const gchar *host_end = colon;
	guint64 port = 0;

	if (colon == NULL || colon == key || colon[1] == '\0')
		return FALSE;
	if (!g_ascii_string_to_unsigned(colon + 1, 10, 1, G_MAXUINT16, &port, NULL))
		return FALSE;
	if (key[0] == '[') {
		if (colon[-1] != ']' || colon - key < 3)
			return FALSE;
		host_end = colon - 1;
		key++;
	} else if (memchr(key, ':', (gsize)(colon - key)) != NULL) {
		return FALSE;
	}
	for (const gchar *p = key; p < host_end; p++) {
		if (!g_ascii_isgraph(*p) || *p == '[' || *p == ']' || *p == '#')
			return FALSE;
	}
	return TRUE;
}

/**
 * as_known_peers_new:
 * @path: the file the peers are saved to
 *
 * Returns: (transfer full): an empty list
 **/
AsKnownPeers *
as_known_peers_new(const gchar *path)
{
	AsKnownPeers *self = g_new0(AsKnownPeers, 1);

	g_return_val_if_fail(path != NULL, NULL);
	self->path = g_strdup(path);
	self->lines = g_ptr_array_new_with_free_func((GDestroyNotify)as_known_peers_line_free);
	return self;
}

void
as_known_peers_free(AsKnownPeers *self)
{
	if (self == NULL)
		return;
	g_ptr_array_unref(self->lines);
	g_free(self->path);
	g_free(self);
}

const gchar *
as_known_peers_get_path(AsKnownPeers *self)
{
	g_return_val_if_fail(self != NULL, NULL);
	return self->path;
}

static gboolean
as_known_peers_parse_line(AsKnownPeersLine *line, const gchar *path, guint lineno, GError **error)
{
	g_autofree gchar *copy = g_strdup(line->text);
	g_auto(GStrv) fields = NULL;
	g_autofree gchar *sha256 = NULL;

	g_strstrip(copy);
	if (copy[0] == '\0' || copy[0] == '#')
		return TRUE;
	fields = g_strsplit_set(copy, " \t", -1);
	/* several blanks in a row give empty fields: squeeze them out */
	{
		guint n = 0;
		for (guint i = 0; fields[i] != NULL; i++) {
			if (fields[i][0] == '\0') {
				g_free(fields[i]);
				continue;
			}
			fields[n++] = fields[i];
		}
		fields[n] = NULL;
	}
	if (g_strv_length(fields) != 2 || !as_known_peers_key_is_valid(fields[0])) {
		g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
			    "%s line %u is not 'HOST:PORT SHA256': fix or delete it", path, lineno);
		return FALSE;
	}
	sha256 = g_ascii_strdown(fields[1], -1);
	if (!as_sha256_hex_is_valid(sha256)) {
		g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
			    "%s line %u: '%s' is not a SHA-256 (64 hex digits): fix or delete it",
			    path, lineno, fields[1]);
		return FALSE;
	}
	line->key = g_ascii_strdown(fields[0], -1);
	line->sha256 = g_steal_pointer(&sha256);
	return TRUE;
}

/**
 * as_known_peers_load:
 * @path: the file to read; a missing file is an empty list
 * @error: (nullable): optional return location for an error
 *
 * Returns: (transfer full): the peers, or %NULL with %AS_ERROR_INVALID_ARGUMENT naming the
 *   line that does not parse, or %AS_ERROR_IO when the file cannot be read
 **/
AsKnownPeers *
as_known_peers_load(const gchar *path, GError **error)
{
	g_autoptr(AsKnownPeers) self = as_known_peers_new(path);
	g_autofree gchar *contents = NULL;
	g_auto(GStrv) texts = NULL;
	GStatBuf st;
	gsize len = 0;
	guint n;

	if (g_stat(path, &st) != 0) {
		int errsv = errno;
		if (errsv == ENOENT)
			return g_steal_pointer(&self);
		g_set_error(error, AS_ERROR, AS_ERROR_IO, "cannot read %s: %s", path,
			    g_strerror(errsv));
		return NULL;
	}
	if (st.st_size > AS_KNOWN_PEERS_MAX_SIZE) {
		g_set_error(error, AS_ERROR, AS_ERROR_TOO_LARGE,
			    "%s is larger than %u bytes: it is not a list of peers", path,
			    (guint)AS_KNOWN_PEERS_MAX_SIZE);
		return NULL;
	}
	if (!g_file_get_contents(path, &contents, &len, error)) {
		as_error_convert(error);
		g_prefix_error(error, "cannot read the known peers: ");
		return NULL;
	}
	if (memchr(contents, '\0', len) != NULL || !g_utf8_validate(contents, (gssize)len, NULL)) {
		g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
			    "%s is not a text file: fix or delete it", path);
		return NULL;
	}
	texts = g_strsplit(contents, "\n", -1);
	n = g_strv_length(texts);
	/* the final newline leaves an empty last piece that is no line */
	if (n > 0 && texts[n - 1][0] == '\0')
		n--;
	for (guint i = 0; i < n; i++) {
		AsKnownPeersLine *line = g_new0(AsKnownPeersLine, 1);
		gsize text_len = strlen(texts[i]);

		if (text_len > 0 && texts[i][text_len - 1] == '\r')
			texts[i][text_len - 1] = '\0';
		line->text = g_strdup(texts[i]);
		g_ptr_array_add(self->lines, line);
		if (!as_known_peers_parse_line(line, path, i + 1, error))
			return NULL;
	}
	return g_steal_pointer(&self);
}

/**
 * as_known_peers_lookup:
 * @self: the peers
 * @key: a key from as_known_peers_make_key()
 * @line: (out) (optional): the line number of the peer, from 1
 *
 * Returns: (nullable): the recorded SHA-256 of the first line for @key, or %NULL
 **/
const gchar *
as_known_peers_lookup(AsKnownPeers *self, const gchar *key, guint *line)
{
	g_return_val_if_fail(self != NULL, NULL);
	g_return_val_if_fail(key != NULL, NULL);

	for (guint i = 0; i < self->lines->len; i++) {
		AsKnownPeersLine *l = g_ptr_array_index(self->lines, i);
		if (l->key != NULL && g_ascii_strcasecmp(l->key, key) == 0) {
			if (line != NULL)
				*line = i + 1;
			return l->sha256;
		}
	}
	if (line != NULL)
		*line = 0;
	return NULL;
}

static AsKnownPeersLine *
as_known_peers_line_new(const gchar *key, const gchar *sha256)
{
	AsKnownPeersLine *line = g_new0(AsKnownPeersLine, 1);

	line->key = g_ascii_strdown(key, -1);
	line->sha256 = g_ascii_strdown(sha256, -1);
	line->text = g_strdup_printf("%s %s", line->key, line->sha256);
	return line;
}

/**
 * as_known_peers_add:
 * @self: the peers
 * @key: a key from as_known_peers_make_key()
 * @sha256: the certificate's SHA-256 in hex
 *
 * Appends a peer that is not known yet (in memory; see as_known_peers_save()).
 *
 * Returns: %TRUE if added, %FALSE when @key is already known or the arguments are malformed
 **/
gboolean
as_known_peers_add(AsKnownPeers *self, const gchar *key, const gchar *sha256)
{
	g_return_val_if_fail(self != NULL, FALSE);
	g_return_val_if_fail(key != NULL && as_known_peers_key_is_valid(key), FALSE);
	g_return_val_if_fail(as_sha256_hex_is_valid(sha256), FALSE);

	if (as_known_peers_lookup(self, key, NULL) != NULL)
		return FALSE;
	g_ptr_array_add(self->lines, as_known_peers_line_new(key, sha256));
	return TRUE;
}

/**
 * as_known_peers_replace:
 * @self: the peers
 * @key: a key from as_known_peers_make_key()
 * @sha256: the certificate's SHA-256 in hex
 *
 * Records a new fingerprint for @key on the line of the old one (every other line of the
 * same key goes), or appends it.
 *
 * Returns: %TRUE if a line was replaced, %FALSE if the peer was appended
 **/
gboolean
as_known_peers_replace(AsKnownPeers *self, const gchar *key, const gchar *sha256)
{
	gboolean replaced = FALSE;

	g_return_val_if_fail(self != NULL, FALSE);
	g_return_val_if_fail(key != NULL && as_known_peers_key_is_valid(key), FALSE);
	g_return_val_if_fail(as_sha256_hex_is_valid(sha256), FALSE);

	for (guint i = 0; i < self->lines->len;) {
		AsKnownPeersLine *l = g_ptr_array_index(self->lines, i);
		if (l->key == NULL || g_ascii_strcasecmp(l->key, key) != 0) {
			i++;
			continue;
		}
		if (replaced) {
			g_ptr_array_remove_index(self->lines, i);
			continue;
		}
		self->lines->pdata[i] = as_known_peers_line_new(key, sha256);
		as_known_peers_line_free(l);
		replaced = TRUE;
		i++;
	}
	if (!replaced)
		g_ptr_array_add(self->lines, as_known_peers_line_new(key, sha256));
	return replaced;
}

/**
 * as_known_peers_remove:
 * @self: the peers
 * @key: a key from as_known_peers_make_key()
 *
 * Returns: %TRUE if @key was known
 **/
gboolean
as_known_peers_remove(AsKnownPeers *self, const gchar *key)
{
	gboolean removed = FALSE;

	g_return_val_if_fail(self != NULL, FALSE);
	g_return_val_if_fail(key != NULL, FALSE);

	for (guint i = 0; i < self->lines->len;) {
		AsKnownPeersLine *l = g_ptr_array_index(self->lines, i);
		if (l->key != NULL && g_ascii_strcasecmp(l->key, key) == 0) {
			g_ptr_array_remove_index(self->lines, i);
			removed = TRUE;
			continue;
		}
		i++;
	}
	return removed;
}

/**
 * as_known_peers_save:
 * @self: the peers
 * @error: (nullable): optional return location for an error
 *
 * Writes the file atomically (a new file renamed over the old one), mode 0600, creating its
 * folder (0700) when needed.
 *
 * Returns: %TRUE on success
 **/
gboolean
as_known_peers_save(AsKnownPeers *self, GError **error)
{
	g_autoptr(GString) text = g_string_new(NULL);
	g_autofree gchar *dir = NULL;

	g_return_val_if_fail(self != NULL, FALSE);

	for (guint i = 0; i < self->lines->len; i++) {
		AsKnownPeersLine *l = g_ptr_array_index(self->lines, i);
		g_string_append(text, l->text);
		g_string_append_c(text, '\n');
	}
	dir = g_path_get_dirname(self->path);
	if (g_mkdir_with_parents(dir, 0700) != 0) {
		int errsv = errno;
		g_set_error(error, AS_ERROR, AS_ERROR_IO, "cannot create %s: %s", dir,
			    g_strerror(errsv));
		return FALSE;
	}
	if (!g_file_set_contents_full(self->path, text->str, (gssize)text->len,
				      G_FILE_SET_CONTENTS_CONSISTENT, 0600, error)) {
		as_error_convert(error);
		g_prefix_error(error, "cannot save the known peers: ");
		return FALSE;
	}
	return TRUE;
}

/**
 * as_known_peers_changed_message:
 * @path: the known peers file
 * @line: the line of the peer
 * @key: the peer
 * @known_sha256: the recorded fingerprint
 * @seen_sha256: (nullable): the one the peer presented, if known
 *
 * Returns: (transfer full): the text of the refusal when a peer's certificate changed: both
 *   fingerprints, where the old one is kept, and how to accept the new one
 **/
gchar *
as_known_peers_changed_message(const gchar *path,
			       guint line,
			       const gchar *key,
			       const gchar *known_sha256,
			       const gchar *seen_sha256)
{
	return g_strdup_printf(
		"REFUSED: the certificate of %s has CHANGED: it now has SHA-256 %s, but %s line "
		"%u records %s. Someone may be intercepting the connection, or the receiver got a "
		"new certificate. If you trust the new one, delete line %u of %s (or send with "
		"--pin %s) and send again.",
		key, seen_sha256 != NULL ? seen_sha256 : "(unknown)", path, line, known_sha256,
		line, path, seen_sha256 != NULL ? seen_sha256 : "SHA256");
}

/**
 * as_known_peers_check:
 * @path: the known peers file
 * @key: a key from as_known_peers_make_key()
 * @sha256: the SHA-256 of the certificate the peer presented
 * @recorded: (out) (optional): set when the peer was not known and has been recorded now
 * @error: (nullable): optional return location for an error
 *
 * Trust on first use: a known peer must present its recorded fingerprint; an unknown one is
 * recorded. The file is read again at every check, so edits apply at once.
 *
 * Returns: %TRUE if the peer may be trusted; %FALSE with %AS_ERROR_PERMISSION_DENIED (see
 *   as_known_peers_changed_message()) when its certificate changed, or another error when
 *   the file cannot be read or written
 **/
gboolean
as_known_peers_check(const gchar *path,
		     const gchar *key,
		     const gchar *sha256,
		     gboolean *recorded,
		     GError **error)
{
	g_autoptr(AsKnownPeers) self = NULL;
	const gchar *known;
	guint line = 0;

	g_return_val_if_fail(path != NULL, FALSE);
	g_return_val_if_fail(key != NULL, FALSE);
	g_return_val_if_fail(as_sha256_hex_is_valid(sha256), FALSE);

	if (recorded != NULL)
		*recorded = FALSE;
	self = as_known_peers_load(path, error);
	if (self == NULL)
		return FALSE;
	known = as_known_peers_lookup(self, key, &line);
	if (known != NULL) {
		g_autofree gchar *message = NULL;
		if (as_sha256_hex_equal(known, sha256))
			return TRUE;
		message = as_known_peers_changed_message(path, line, key, known, sha256);
		g_set_error_literal(error, AS_ERROR, AS_ERROR_PERMISSION_DENIED, message);
		return FALSE;
	}
	if (!as_known_peers_add(self, key, sha256)) {
		g_set_error(error, AS_ERROR, AS_ERROR_INVALID_ARGUMENT,
			    "'%s' cannot be recorded as a peer", key);
		return FALSE;
	}
	if (!as_known_peers_save(self, error))
		return FALSE;
	if (recorded != NULL)
		*recorded = TRUE;
	return TRUE;
}
