/* Self-signed certificates (P-256) and public-key pins, with OpenSSL 3. */
#include "common/tls.h"
#include "common/common-private.h"
#include "common/crypto.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

static bool
set_openssl_error(GError **error, const char *step)
{
  char buf[256] = "";
  unsigned long e = ERR_get_error();

  if (e)
    ERR_error_string_n(e, buf, sizeof(buf));
  ERR_clear_error();
  g_set_error(error, KCPS_CRYPTO_ERROR, KCPS_CRYPTO_ERROR_OPENSSL, "%s failed%s%s", step,
              *buf ? ": " : "", buf);
  return false;
}

/* Writes what a PEM writer put into a memory BIO to path, 0600, durably
 * (GLib writes beside, fsyncs, renames). */
bool
kcps__write_private_pem(const char *path, BIO *bio, GError **error)
{
  char *data = NULL;
  long len = BIO_get_mem_data(bio, &data);
  return g_file_set_contents_full(path, data, len, G_FILE_SET_CONTENTS_CONSISTENT |
                                  G_FILE_SET_CONTENTS_DURABLE, 0600, error);
}

static char *
san_list(const char *const *names)
{
  GString *san = g_string_new(NULL);

  for (const char *const *n = names; n && *n; n++) {
    unsigned char addr[16];
    const char *kind = (inet_pton(AF_INET, *n, addr) == 1 || inet_pton(AF_INET6, *n, addr) == 1)
                           ? "IP"
                           : "DNS";
    g_string_append_printf(san, "%s%s:%s", san->len ? "," : "", kind, *n);
  }
  return g_string_free(san, FALSE);
}

bool
kcps_tls_ensure_self_signed(const char *cert_path, const char *key_path,
                            const char *const *names, GError **error)
{
  if (g_file_test(cert_path, G_FILE_TEST_EXISTS) && g_file_test(key_path, G_FILE_TEST_EXISTS))
    return true;

  const char *cn = (names && names[0]) ? names[0] : "localhost";
  EVP_PKEY *key = EVP_EC_gen("P-256");
  X509 *cert = NULL;
  X509_EXTENSION *ext = NULL;
  BIO *key_bio = NULL, *cert_bio = NULL;
  bool ok = false;
  char *san = NULL;

  if (!key) {
    set_openssl_error(error, "EC key generation");
    goto out;
  }

  cert = X509_new();
  X509_set_version(cert, 2);

  /* A random 127-bit serial, as RFC 5280 wants serials unique. */
  unsigned char serial[16];
  if (RAND_bytes(serial, sizeof(serial)) != 1) {
    set_openssl_error(error, "serial generation");
    goto out;
  }
  serial[0] &= 0x7f;
  BIGNUM *bn = BN_bin2bn(serial, sizeof(serial), NULL);
  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert));
  BN_free(bn);

  X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert), 825L * 24 * 3600);
  X509_set_pubkey(cert, key);

  X509_NAME *subject = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(subject, "O", MBSTRING_UTF8, (const unsigned char *)"KCPS", -1,
                             -1, 0);
  X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1,
                             0);
  X509_set_issuer_name(cert, subject);

  /* It is its own CA (so a client can trust it as its CA file) and names
   * every host and address it answers on. */
  X509V3_CTX v3;
  X509V3_set_ctx_nodb(&v3);
  X509V3_set_ctx(&v3, cert, cert, NULL, NULL, 0);
  san = san_list(names);
  const struct {
    int nid;
    const char *value;
  } exts[] = {
      {NID_basic_constraints, "critical,CA:TRUE,pathlen:0"},
      {NID_key_usage, "critical,digitalSignature,keyCertSign"},
      {NID_ext_key_usage, "serverAuth"},
      {NID_subject_key_identifier, "hash"},
      {NID_subject_alt_name, *san ? san : "DNS:localhost"},
  };
  for (size_t i = 0; i < G_N_ELEMENTS(exts); i++) {
    ext = X509V3_EXT_conf_nid(NULL, &v3, exts[i].nid, exts[i].value);
    if (!ext || !X509_add_ext(cert, ext, -1)) {
      set_openssl_error(error, "certificate extension");
      goto out;
    }
    X509_EXTENSION_free(ext);
    ext = NULL;
  }

  if (!X509_sign(cert, key, EVP_sha256())) {
    set_openssl_error(error, "certificate signing");
    goto out;
  }

  key_bio = BIO_new(BIO_s_mem());
  cert_bio = BIO_new(BIO_s_mem());
  if (!PEM_write_bio_PrivateKey(key_bio, key, NULL, NULL, 0, NULL, NULL) ||
      !PEM_write_bio_X509(cert_bio, cert)) {
    set_openssl_error(error, "encoding the key and certificate");
    goto out;
  }
  ok = kcps__write_private_pem(key_path, key_bio, error) &&
       kcps__write_private_pem(cert_path, cert_bio, error);

out:
  BIO_free(key_bio);
  BIO_free(cert_bio);
  X509_EXTENSION_free(ext);
  X509_free(cert);
  EVP_PKEY_free(key);
  g_free(san);
  return ok;
}

char *
kcps_tls_spki_pin(const char *cert_path, GError **error)
{
  FILE *fp = fopen(cert_path, "re");
  if (!fp) {
    int e = errno;
    g_set_error(error, KCPS_CRYPTO_ERROR, KCPS_CRYPTO_ERROR_IO, "cannot open %s: %s", cert_path,
                g_strerror(e));
    return NULL;
  }
  X509 *cert = PEM_read_X509(fp, NULL, NULL, NULL);
  fclose(fp);
  if (!cert) {
    set_openssl_error(error, "reading the certificate");
    return NULL;
  }

  unsigned char *der = NULL;
  int len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &der);
  X509_free(cert);
  if (len <= 0) {
    set_openssl_error(error, "encoding the public key");
    return NULL;
  }

  unsigned char md[32];
  unsigned int mdlen = sizeof(md);
  EVP_Digest(der, (size_t)len, md, &mdlen, EVP_sha256(), NULL);
  OPENSSL_free(der);

  /* curl wants standard base64 (with padding) after "sha256//". */
  char *b64 = g_base64_encode(md, sizeof(md));
  char *pin = g_strconcat("sha256//", b64, NULL);
  g_free(b64);
  return pin;
}
