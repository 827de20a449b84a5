/* Pull tickets: Ed25519-signed, short-lived permissions to pull one job. */
#include "common/ticket.h"
#include "common/common-private.h"
#include "common/crypto.h"
#include "common/json-util.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#define TICKET_MAX_LEN 4096

struct kcps_ticket_key_s {
  EVP_PKEY *pkey;
  bool has_private;
};

static kcps_ticket_key_t *
key_wrap(EVP_PKEY *pkey, bool has_private)
{
  kcps_ticket_key_t *key = g_new0(kcps_ticket_key_t, 1);
  key->pkey = pkey;
  key->has_private = has_private;
  return key;
}

kcps_ticket_key_t *
kcps_ticket_key_load_or_create(const char *path, GError **error)
{
  FILE *fp = fopen(path, "re");

  if (fp) {
    EVP_PKEY *pkey = PEM_read_PrivateKey(fp, NULL, NULL, NULL);
    fclose(fp);
    if (!pkey || EVP_PKEY_get_id(pkey) != EVP_PKEY_ED25519) {
      EVP_PKEY_free(pkey);
      ERR_clear_error();
      g_set_error(error, KCPS_CRYPTO_ERROR, KCPS_CRYPTO_ERROR_MALFORMED,
                  "%s is not an Ed25519 private key", path);
      return NULL;
    }
    return key_wrap(pkey, true);
  }
  if (errno != ENOENT) {
    int e = errno;
    g_set_error(error, KCPS_CRYPTO_ERROR, KCPS_CRYPTO_ERROR_IO, "cannot open %s: %s", path,
                g_strerror(e));
    return NULL;
  }

  EVP_PKEY *pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
  if (!pkey) {
    ERR_clear_error();
    g_set_error(error, KCPS_CRYPTO_ERROR, KCPS_CRYPTO_ERROR_OPENSSL,
                "Ed25519 key generation failed");
    return NULL;
  }

  BIO *bio = BIO_new(BIO_s_mem());
  bool ok = PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL) == 1;
  if (!ok) {
    ERR_clear_error();
    g_set_error(error, KCPS_CRYPTO_ERROR, KCPS_CRYPTO_ERROR_OPENSSL,
                "encoding the Ed25519 key failed");
  } else {
    ok = kcps__write_private_pem(path, bio, error);
  }
  BIO_free(bio);
  if (!ok) {
    EVP_PKEY_free(pkey);
    return NULL;
  }
  return key_wrap(pkey, true);
}

kcps_ticket_key_t *
kcps_ticket_key_from_public(const char *public_b64, GError **error)
{
  size_t len = 0;
  guchar *raw = public_b64 ? kcps_base64url_decode(public_b64, &len) : NULL;

  if (!raw || len != 32) {
    g_free(raw);
    g_set_error(error, KCPS_CRYPTO_ERROR, KCPS_CRYPTO_ERROR_MALFORMED,
                "public key is not 32 bytes of base64url");
    return NULL;
  }
  EVP_PKEY *pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, raw, len);
  g_free(raw);
  if (!pkey) {
    ERR_clear_error();
    g_set_error(error, KCPS_CRYPTO_ERROR, KCPS_CRYPTO_ERROR_MALFORMED,
                "public key is not a valid Ed25519 key");
    return NULL;
  }
  return key_wrap(pkey, false);
}

char *
kcps_ticket_key_public_b64(const kcps_ticket_key_t *key)
{
  unsigned char raw[32];
  size_t len = sizeof(raw);

  if (!EVP_PKEY_get_raw_public_key(key->pkey, raw, &len) || len != 32)
    return NULL;
  return kcps_base64url_encode(raw, len);
}

void
kcps_ticket_key_free(kcps_ticket_key_t *key)
{
  if (!key)
    return;
  EVP_PKEY_free(key->pkey);
  g_free(key);
}

char *
kcps_ticket_sign(const kcps_ticket_key_t *key, const kcps_ticket_t *t, GError **error)
{
  if (!key->has_private) {
    g_set_error(error, KCPS_CRYPTO_ERROR, KCPS_CRYPTO_ERROR_OPENSSL,
                "cannot sign a ticket with a public key");
    return NULL;
  }
  if (!t->tid || !t->job || !t->cjob || !t->user || !t->device) {
    g_set_error(error, KCPS_CRYPTO_ERROR, KCPS_CRYPTO_ERROR_MALFORMED,
                "ticket lacks a tid, job, cjob, user or device");
    return NULL;
  }

  JsonBuilder *b = json_builder_new();
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "v");
  json_builder_add_int_value(b, 1);
  json_builder_set_member_name(b, "tid");
  json_builder_add_string_value(b, t->tid);
  json_builder_set_member_name(b, "job");
  json_builder_add_string_value(b, t->job);
  json_builder_set_member_name(b, "cjob");
  json_builder_add_string_value(b, t->cjob);
  json_builder_set_member_name(b, "user");
  json_builder_add_string_value(b, t->user);
  json_builder_set_member_name(b, "device");
  json_builder_add_string_value(b, t->device);
  json_builder_set_member_name(b, "exp");
  json_builder_add_int_value(b, t->exp);
  json_builder_end_object(b);
  JsonNode *root = json_builder_get_root(b);
  char *payload = kcps_json_to_string(root);
  json_node_unref(root);
  g_object_unref(b);

  char *head = kcps_base64url_encode(payload, strlen(payload));
  g_free(payload);

  unsigned char sig[64];
  size_t siglen = sizeof(sig);
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  bool ok = EVP_DigestSignInit(ctx, NULL, NULL, NULL, key->pkey) == 1 &&
            EVP_DigestSign(ctx, sig, &siglen, (const unsigned char *)head, strlen(head)) == 1;
  EVP_MD_CTX_free(ctx);
  if (!ok) {
    ERR_clear_error();
    g_free(head);
    g_set_error(error, KCPS_CRYPTO_ERROR, KCPS_CRYPTO_ERROR_OPENSSL, "Ed25519 signing failed");
    return NULL;
  }

  char *tail = kcps_base64url_encode(sig, siglen);
  char *text = g_strconcat(head, ".", tail, NULL);
  g_free(head);
  g_free(tail);
  return text;
}

static char *
dup_member(JsonObject *obj, const char *name)
{
  const char *s = kcps_json_string(obj, name);
  return (s && *s && strlen(s) <= 512) ? g_strdup(s) : NULL;
}

kcps_ticket_t *
kcps_ticket_verify(const kcps_ticket_key_t *key, const char *text, gint64 now, GError **error)
{
  const char *dot = text ? strchr(text, '.') : NULL;

  if (!text || strlen(text) > TICKET_MAX_LEN || !dot || strchr(dot + 1, '.')) {
    g_set_error(error, KCPS_CRYPTO_ERROR, KCPS_CRYPTO_ERROR_MALFORMED,
                "ticket is not of the form payload.signature");
    return NULL;
  }

  /* Signature first: nothing of an unsigned payload is parsed. */
  size_t siglen = 0;
  guchar *sig = kcps_base64url_decode(dot + 1, &siglen);
  if (!sig || siglen != 64) {
    g_free(sig);
    g_set_error(error, KCPS_CRYPTO_ERROR, KCPS_CRYPTO_ERROR_MALFORMED,
                "ticket signature is not 64 bytes of base64url");
    return NULL;
  }
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  bool good = EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, key->pkey) == 1 &&
              EVP_DigestVerify(ctx, sig, siglen, (const unsigned char *)text,
                               (size_t)(dot - text)) == 1;
  EVP_MD_CTX_free(ctx);
  g_free(sig);
  ERR_clear_error();
  if (!good) {
    g_set_error(error, KCPS_CRYPTO_ERROR, KCPS_CRYPTO_ERROR_SIGNATURE,
                "ticket signature does not verify");
    return NULL;
  }

  char *head = g_strndup(text, (gsize)(dot - text));
  size_t plen = 0;
  guchar *payload = kcps_base64url_decode(head, &plen);
  g_free(head);
  JsonNode *root = payload ? kcps_json_parse_object((const char *)payload, (gssize)plen, NULL)
                           : NULL;
  g_free(payload);
  if (!root) {
    g_set_error(error, KCPS_CRYPTO_ERROR, KCPS_CRYPTO_ERROR_MALFORMED,
                "ticket payload is not a JSON object");
    return NULL;
  }

  JsonObject *obj = json_node_get_object(root);
  gint64 version = 0;
  kcps_ticket_t *t = g_new0(kcps_ticket_t, 1);
  t->tid = dup_member(obj, "tid");
  t->job = dup_member(obj, "job");
  t->cjob = dup_member(obj, "cjob");
  t->user = dup_member(obj, "user");
  t->device = dup_member(obj, "device");
  bool complete = kcps_json_int(obj, "v", &version) && version == 1 &&
                  kcps_json_int(obj, "exp", &t->exp) && t->tid && t->job && t->cjob && t->user &&
                  t->device;
  json_node_unref(root);

  if (!complete) {
    kcps_ticket_free(t);
    g_set_error(error, KCPS_CRYPTO_ERROR, KCPS_CRYPTO_ERROR_MALFORMED,
                "ticket payload lacks v=1, tid, job, cjob, user, device or exp");
    return NULL;
  }
  if (t->exp <= now) {
    kcps_ticket_free(t);
    g_set_error(error, KCPS_CRYPTO_ERROR, KCPS_CRYPTO_ERROR_EXPIRED, "ticket has expired");
    return NULL;
  }
  return t;
}

void
kcps_ticket_free(kcps_ticket_t *t)
{
  if (!t)
    return;
  g_free(t->tid);
  g_free(t->job);
  g_free(t->cjob);
  g_free(t->user);
  g_free(t->device);
  g_free(t);
}
