/* Secrets the server must use again (a PIN its owner may look at, an SSO
 * client secret, a PKCE verifier) are kept sealed: AES-256-GCM under a key
 * file of the data folder, the use bound in as associated data, so that a
 * copy of the database alone reveals none of them. */
#include "server-private.h"

#include "common/crypto.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <string.h>

#define IV_LEN 12
#define TAG_LEN 16
#define MAX_PLAIN (64 * 1024)

char *
kcps__server_seal(const guchar key[KCPS_SERVER_KEY_LEN], const char *aad, const char *plain,
                  GError **error)
{
  size_t len = strlen(plain);
  if (len > MAX_PLAIN) {
    g_set_error_literal(error, KCPS_SERVER_ERROR, KCPS_SERVER_ERROR_CRYPTO,
                        "seal: the secret is too long");
    return NULL;
  }
  size_t total = IV_LEN + len + TAG_LEN;
  g_autofree guchar *buf = g_malloc(total);
  int outl = 0, fin = 0;
  EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
  bool ok = ctx && RAND_bytes(buf, IV_LEN) == 1 &&
            EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, buf) == 1 &&
            EVP_EncryptUpdate(ctx, NULL, &outl, (const guchar *)aad, (int)strlen(aad)) == 1 &&
            EVP_EncryptUpdate(ctx, buf + IV_LEN, &outl, (const guchar *)plain, (int)len) == 1 &&
            EVP_EncryptFinal_ex(ctx, buf + IV_LEN + outl, &fin) == 1 &&
            EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG_LEN, buf + IV_LEN + len) == 1;
  EVP_CIPHER_CTX_free(ctx);
  char *out = ok ? kcps_base64url_encode(buf, total) : NULL;
  OPENSSL_cleanse(buf, total);
  if (!out)
    g_set_error_literal(error, KCPS_SERVER_ERROR, KCPS_SERVER_ERROR_CRYPTO, "seal: AES-GCM failed");
  return out;
}

char *
kcps__server_unseal(const guchar key[KCPS_SERVER_KEY_LEN], const char *aad, const char *sealed,
                    GError **error)
{
  size_t len = 0;
  g_autofree guchar *buf = sealed ? kcps_base64url_decode(sealed, &len) : NULL;
  if (!buf || len < IV_LEN + TAG_LEN + 1 || len > IV_LEN + TAG_LEN + MAX_PLAIN) {
    g_set_error_literal(error, KCPS_SERVER_ERROR, KCPS_SERVER_ERROR_CRYPTO,
                        "unseal: a sealed value is malformed");
    return NULL;
  }
  size_t clen = len - IV_LEN - TAG_LEN;
  char *plain = g_malloc0(clen + 1);
  int outl = 0, fin = 0;
  EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
  bool ok = ctx && EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, buf) == 1 &&
            EVP_DecryptUpdate(ctx, NULL, &outl, (const guchar *)aad, (int)strlen(aad)) == 1 &&
            EVP_DecryptUpdate(ctx, (guchar *)plain, &outl, buf + IV_LEN, (int)clen) == 1 &&
            EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG_LEN, buf + IV_LEN + clen) == 1 &&
            EVP_DecryptFinal_ex(ctx, (guchar *)plain + outl, &fin) == 1;
  EVP_CIPHER_CTX_free(ctx);
  OPENSSL_cleanse(buf, len);
  if (!ok) {
    OPENSSL_cleanse(plain, clen);
    g_free(plain);
    g_set_error_literal(error, KCPS_SERVER_ERROR, KCPS_SERVER_ERROR_CRYPTO,
                        "unseal: a sealed value does not open (wrong key file?)");
    return NULL;
  }
  return plain;
}
