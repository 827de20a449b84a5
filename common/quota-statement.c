/* Signed quota statements: signing (the server) and verifying (the server's
 * tests and kcpsd offline), one implementation of the wire form. */
#include "common/quota-statement.h"

#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "common/crypto.h"
#include "common/json-util.h"

char *kcps_quota_statement_sign(const char *key_path, const char *payload_json,
                                GError **error)
{
  FILE *fp = fopen(key_path, "re");
  EVP_PKEY *pkey = fp != NULL ? PEM_read_PrivateKey(fp, NULL, NULL, NULL) : NULL;
  if (fp != NULL)
    fclose(fp);
  if (pkey == NULL || EVP_PKEY_get_id(pkey) != EVP_PKEY_ED25519) {
    EVP_PKEY_free(pkey);
    ERR_clear_error();
    g_set_error(error, KCPS_CRYPTO_ERROR, KCPS_CRYPTO_ERROR_MALFORMED,
                "quota statement: cannot read the Ed25519 key %s", key_path);
    return NULL;
  }
  g_autofree char *head = kcps_base64url_encode(payload_json, strlen(payload_json));
  g_autofree char *signed_text = g_strconcat(KCPS_QUOTA_STATEMENT_CONTEXT, head, NULL);
  unsigned char sig[64];
  size_t siglen = sizeof sig;
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  bool ok = ctx != NULL && EVP_DigestSignInit(ctx, NULL, NULL, NULL, pkey) == 1
            && EVP_DigestSign(ctx, sig, &siglen, (const unsigned char *)signed_text,
                              strlen(signed_text)) == 1;
  EVP_MD_CTX_free(ctx);
  EVP_PKEY_free(pkey);
  if (!ok) {
    ERR_clear_error();
    g_set_error_literal(error, KCPS_CRYPTO_ERROR, KCPS_CRYPTO_ERROR_OPENSSL,
                        "quota statement: Ed25519 signing failed");
    return NULL;
  }
  g_autofree char *tail = kcps_base64url_encode(sig, siglen);
  return g_strconcat(head, ".", tail, NULL);
}

static bool statement_int(JsonObject *obj, const char *name, bool nullable, gint64 *out)
{
  JsonNode *node = json_object_get_member(obj, name);
  if (node == NULL)
    return false;
  if (JSON_NODE_HOLDS_NULL(node)) {
    *out = -1;
    return nullable;
  }
  if (!JSON_NODE_HOLDS_VALUE(node) || json_node_get_value_type(node) != G_TYPE_INT64)
    return false;
  *out = json_node_get_int(node);
  return *out >= 0;
}

bool kcps_quota_statement_verify(const char *public_b64, const char *text, gint64 now,
                                 kcps_quota_statement_t *out, GError **error)
{
  memset(out, 0, sizeof *out);
  const char *dot = text != NULL ? strchr(text, '.') : NULL;
  if (text == NULL || strlen(text) > KCPS_QUOTA_STATEMENT_MAX_LEN || dot == NULL
      || strchr(dot + 1, '.') != NULL) {
    g_set_error_literal(error, KCPS_CRYPTO_ERROR, KCPS_CRYPTO_ERROR_MALFORMED,
                        "quota statement is not of the form payload.signature");
    return false;
  }
  size_t keylen = 0, siglen = 0;
  g_autofree guchar *raw = public_b64 != NULL ? kcps_base64url_decode(public_b64, &keylen)
                                              : NULL;
  g_autofree guchar *sig = kcps_base64url_decode(dot + 1, &siglen);
  EVP_PKEY *pkey = raw != NULL && keylen == 32
                     ? EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, raw, keylen)
                     : NULL;
  if (pkey == NULL || sig == NULL || siglen != 64) {
    EVP_PKEY_free(pkey);
    ERR_clear_error();
    g_set_error_literal(error, KCPS_CRYPTO_ERROR, KCPS_CRYPTO_ERROR_MALFORMED,
                        pkey == NULL ? "public key is not 32 bytes of base64url"
                                     : "quota statement signature is not 64 bytes of base64url");
    return false;
  }
  /* Signature first: nothing of an unsigned payload is parsed. */
  g_autofree char *head = g_strndup(text, (gsize)(dot - text));
  g_autofree char *signed_text = g_strconcat(KCPS_QUOTA_STATEMENT_CONTEXT, head, NULL);
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  bool good = ctx != NULL && EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pkey) == 1
              && EVP_DigestVerify(ctx, sig, siglen, (const unsigned char *)signed_text,
                                  strlen(signed_text)) == 1;
  EVP_MD_CTX_free(ctx);
  EVP_PKEY_free(pkey);
  ERR_clear_error();
  if (!good) {
    g_set_error_literal(error, KCPS_CRYPTO_ERROR, KCPS_CRYPTO_ERROR_SIGNATURE,
                        "quota statement signature does not verify");
    return false;
  }

  size_t plen = 0;
  g_autofree guchar *payload = kcps_base64url_decode(head, &plen);
  g_autoptr(JsonNode) root =
      payload != NULL ? kcps_json_parse_object((const char *)payload, (gssize)plen, NULL)
                      : NULL;
  JsonObject *obj = root != NULL ? json_node_get_object(root) : NULL;
  gint64 v = 0;
  const char *typ = obj != NULL ? kcps_json_string(obj, "typ") : NULL;
  const char *user = obj != NULL ? kcps_json_string(obj, "user") : NULL;
  const char *month = obj != NULL ? kcps_json_string(obj, "month") : NULL;
  bool ok = obj != NULL && statement_int(obj, "v", false, &v) && v == 1
            && g_strcmp0(typ, "kcps-quota") == 0 && user != NULL && *user != '\0'
            && strlen(user) < sizeof out->user && month != NULL && strlen(month) == 7
            && statement_int(obj, "start", false, &out->start)
            && statement_int(obj, "end", false, &out->end) && out->start < out->end
            && statement_int(obj, "quota_pages", true, &out->quota_pages)
            && statement_int(obj, "quota_color_pages", true, &out->quota_color_pages)
            && statement_int(obj, "used_pages", false, &out->used_pages)
            && statement_int(obj, "used_color_pages", false, &out->used_color_pages)
            && statement_int(obj, "iat", false, &out->iat)
            && statement_int(obj, "exp", false, &out->exp);
  if (!ok) {
    memset(out, 0, sizeof *out);
    g_set_error_literal(error, KCPS_CRYPTO_ERROR, KCPS_CRYPTO_ERROR_MALFORMED,
                        "quota statement payload is not a version 1 quota statement");
    return false;
  }
  g_strlcpy(out->user, user, sizeof out->user);
  g_strlcpy(out->month, month, sizeof out->month);
  if (now >= out->exp) {
    g_set_error_literal(error, KCPS_CRYPTO_ERROR, KCPS_CRYPTO_ERROR_EXPIRED,
                        "quota statement has expired");
    return false;
  }
  return true;
}

gint64 kcps_quota_statement_left(const kcps_quota_statement_t *st, bool color, gint64 extra,
                                 gint64 extra_color)
{
  gint64 total = st->quota_pages < 0 ? -1 : MAX(0, st->quota_pages - st->used_pages - extra);
  if (!color || st->quota_color_pages < 0)
    return total;
  gint64 left_color = MAX(0, st->quota_color_pages - st->used_color_pages - extra_color);
  return total < 0 ? left_color : MIN(left_color, total);
}
