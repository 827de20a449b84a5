/* TLS material: self-signed certificates for kcps-server and for the 5571
 * pull port, and the public-key pin the MFP uses for 5571. */
#pragma once

#include <glib.h>
#include <stdbool.h>

G_BEGIN_DECLS

/* Makes sure cert_path and key_path exist. When either is missing, creates
 * a P-256 key (file 0600) and a self-signed certificate valid 825 days for
 * the names given (NULL-terminated; entries that parse as IPv4/IPv6 become
 * IP subjectAltNames, others DNS names; the first is the CN). Existing files
 * are left alone. */
bool kcps_tls_ensure_self_signed(const char *cert_path, const char *key_path,
                                 const char *const *names, GError **error);

/* The libcurl CURLOPT_PINNEDPUBLICKEY form of the certificate's public key:
 * "sha256//" + base64 of SHA-256 over the DER SubjectPublicKeyInfo.
 * Caller g_frees. */
char *kcps_tls_spki_pin(const char *cert_path, GError **error);

G_END_DECLS
