/* Small crypto helpers shared by the client and the server: random tokens,
 * base64url, SHA-256, constant-time comparison (OpenSSL underneath). */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>

G_BEGIN_DECLS

/* A random token of nbytes bytes of entropy, base64url without padding.
 * Caller frees with g_free. */
char *kcps_crypto_random_token(size_t nbytes);

/* base64url (RFC 4648 section 5) without padding; caller g_frees. */
char *kcps_base64url_encode(const void *data, size_t len);

/* Decodes base64url (padding optional). NULL on any invalid character.
 * Caller g_frees; *len gets the length. */
guchar *kcps_base64url_decode(const char *text, size_t *len);

/* Constant-time equality of two buffers of the same length. */
bool kcps_crypto_equal(const void *a, const void *b, size_t len);

/* Constant-time equality of two strings (time depends only on the length
 * of b, the secret held by the caller). NULL never equals anything. */
bool kcps_crypto_streq(const char *a, const char *b);

/* SHA-256 of a buffer as 64 lowercase hex characters into out[65]. */
void kcps_crypto_sha256_hex(const void *data, size_t len, char out[65]);

/* SHA-256 of a file's contents (streamed) as hex into out[65]. */
bool kcps_crypto_sha256_file(const char *path, char out[65], GError **error);

/* SHA-256 HMAC of data with key, as hex into out[65]. */
void kcps_crypto_hmac_sha256_hex(const void *key, size_t key_len,
                                 const void *data, size_t len, char out[65]);

#define KCPS_CRYPTO_ERROR (kcps_crypto_error_quark())
GQuark kcps_crypto_error_quark(void);

typedef enum {
  KCPS_CRYPTO_ERROR_IO,        /* a file could not be read or written */
  KCPS_CRYPTO_ERROR_OPENSSL,   /* OpenSSL failed (message names the step) */
  KCPS_CRYPTO_ERROR_MALFORMED, /* a ticket or key is not well-formed */
  KCPS_CRYPTO_ERROR_SIGNATURE, /* a signature does not verify */
  KCPS_CRYPTO_ERROR_EXPIRED    /* a ticket is past its expiry */
} kcps_crypto_error_t;

G_END_DECLS
