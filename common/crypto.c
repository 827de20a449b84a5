/* Random tokens, base64url, SHA-256 and constant-time comparison on OpenSSL. */
#include "common/crypto.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

G_DEFINE_QUARK(kcps-crypto-error-quark, kcps_crypto_error)

static const char b64url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

char *
kcps_crypto_random_token(size_t nbytes)
{
  guchar *buf = g_malloc(nbytes);

  /* RAND_bytes only fails when the OS entropy source is broken: nothing
   * sensible can continue without it. */
  if (RAND_bytes(buf, (int)nbytes) != 1)
    g_error("kcps: RAND_bytes failed: no entropy source");

  char *token = kcps_base64url_encode(buf, nbytes);
  OPENSSL_cleanse(buf, nbytes);
  g_free(buf);
  return token;
}

char *
kcps_base64url_encode(const void *data, size_t len)
{
  const guchar *in = data;
  GString *out = g_string_sized_new((len + 2) / 3 * 4 + 1);
  size_t i;

  for (i = 0; i + 2 < len; i += 3) {
    guint32 v = ((guint32)in[i] << 16) | ((guint32)in[i + 1] << 8) | in[i + 2];
    g_string_append_c(out, b64url_alphabet[(v >> 18) & 63]);
    g_string_append_c(out, b64url_alphabet[(v >> 12) & 63]);
    g_string_append_c(out, b64url_alphabet[(v >> 6) & 63]);
    g_string_append_c(out, b64url_alphabet[v & 63]);
  }
  if (len - i == 1) {
    guint32 v = (guint32)in[i] << 16;
    g_string_append_c(out, b64url_alphabet[(v >> 18) & 63]);
    g_string_append_c(out, b64url_alphabet[(v >> 12) & 63]);
  } else if (len - i == 2) {
    guint32 v = ((guint32)in[i] << 16) | ((guint32)in[i + 1] << 8);
    g_string_append_c(out, b64url_alphabet[(v >> 18) & 63]);
    g_string_append_c(out, b64url_alphabet[(v >> 12) & 63]);
    g_string_append_c(out, b64url_alphabet[(v >> 6) & 63]);
  }
  return g_string_free(out, FALSE);
}

static int
b64url_value(char c)
{
  if (c >= 'A' && c <= 'Z')
    return c - 'A';
  if (c >= 'a' && c <= 'z')
    return c - 'a' + 26;
  if (c >= '0' && c <= '9')
    return c - '0' + 52;
  if (c == '-')
    return 62;
  if (c == '_')
    return 63;
  return -1;
}

guchar *
kcps_base64url_decode(const char *text, size_t *len)
{
  size_t n = strlen(text);

  /* Padding is optional; strip it, and it may only come at the end. */
  while (n > 0 && text[n - 1] == '=')
    n--;
  if (n % 4 == 1)
    return NULL;

  guchar *out = g_malloc(n / 4 * 3 + 3);
  size_t o = 0;
  guint32 acc = 0;
  int bits = 0;

  for (size_t i = 0; i < n; i++) {
    int v = b64url_value(text[i]);
    if (v < 0) {
      g_free(out);
      return NULL;
    }
    acc = (acc << 6) | (guint32)v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (guchar)((acc >> bits) & 0xff);
    }
  }
  /* Leftover bits must be zero, or two texts would decode alike. */
  if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) {
    g_free(out);
    return NULL;
  }
  if (len)
    *len = o;
  return out;
}

bool
kcps_crypto_equal(const void *a, const void *b, size_t len)
{
  return CRYPTO_memcmp(a, b, len) == 0;
}

bool
kcps_crypto_streq(const char *a, const char *b)
{
  if (!a || !b)
    return false;

  size_t alen = strlen(a), blen = strlen(b);
  unsigned char diff = (unsigned char)(alen != blen);

  /* Walk b whole so the time depends on the secret's length only. */
  for (size_t i = 0; i < blen; i++) {
    unsigned char ca = i < alen ? (unsigned char)a[i] : 0;
    diff |= (unsigned char)(ca ^ (unsigned char)b[i]);
  }
  return diff == 0;
}

static void
hex_encode(const unsigned char *md, size_t len, char *out)
{
  static const char hex[] = "0123456789abcdef";
  for (size_t i = 0; i < len; i++) {
    out[2 * i] = hex[md[i] >> 4];
    out[2 * i + 1] = hex[md[i] & 15];
  }
  out[2 * len] = '\0';
}

void
kcps_crypto_sha256_hex(const void *data, size_t len, char out[65])
{
  unsigned char md[32];
  unsigned int mdlen = sizeof(md);

  EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
  hex_encode(md, 32, out);
}

bool
kcps_crypto_sha256_file(const char *path, char out[65], GError **error)
{
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    g_set_error(error, KCPS_CRYPTO_ERROR, KCPS_CRYPTO_ERROR_IO, "cannot open %s: %s", path,
                g_strerror(e));
    return false;
  }

  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);

  unsigned char buf[65536];
  ssize_t n;
  bool ok = true;

  while ((n = read(fd, buf, sizeof(buf))) != 0) {
    if (n < 0) {
      if (errno == EINTR)
        continue;
      int e = errno;
      g_set_error(error, KCPS_CRYPTO_ERROR, KCPS_CRYPTO_ERROR_IO, "cannot read %s: %s", path,
                  g_strerror(e));
      ok = false;
      break;
    }
    EVP_DigestUpdate(ctx, buf, (size_t)n);
  }
  close(fd);

  if (ok) {
    unsigned char md[32];
    unsigned int mdlen = sizeof(md);
    EVP_DigestFinal_ex(ctx, md, &mdlen);
    hex_encode(md, 32, out);
  }
  EVP_MD_CTX_free(ctx);
  return ok;
}

void
kcps_crypto_hmac_sha256_hex(const void *key, size_t key_len, const void *data, size_t len,
                            char out[65])
{
  unsigned char md[32];
  unsigned int mdlen = sizeof(md);

  HMAC(EVP_sha256(), key, (int)key_len, data, len, md, &mdlen);
  hex_encode(md, 32, out);
}
