/* What common/'s own files share and nobody else needs. */
#pragma once

#include <glib.h>
#include <openssl/bio.h>
#include <stdbool.h>

/* Writes a memory BIO's PEM text to path, mode 0600, durably (GLib writes
 * beside, fsyncs and renames: a crash never leaves half a key). */
bool kcps__write_private_pem(const char *path, BIO *bio, GError **error);
