/* ID tokens of OpenID providers: the discovery document, JWKS keys (RSA and
 * P-256) and the JWS check of an ID token with its claims. Everything here
 * reads text a remote party wrote, so every member is checked for type and
 * size before use (tests/fuzz/fuzz-oidc.c drives these functions). */
#include "server-oidc.h"

#include "common/crypto.h"

#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <string.h>

G_DEFINE_QUARK(kcps-oidc-error-quark, kcps_oidc_error)

#define MAX_URL 2048
#define MAX_SUB 255
#define MAX_KEYS 64

const char *
kcps__oidc_step_name(int code)
{
  static const char *const names[] = {"discovery", "jwks",      "id_token", "alg",
                                      "kid",       "signature", "iss",      "aud",
                                      "exp",       "nonce",     "claims"};
  return code >= 0 && (size_t)code < G_N_ELEMENTS(names) ? names[code] : "oidc";
}

/* Parses text as a JSON object; NULL when it is not one. */
static JsonNode *
parse_object(const char *text, size_t len)
{
  if (!text || len == 0 || len > KCPS_OIDC_MAX_DOCUMENT)
    return NULL;
  g_autoptr(JsonParser) parser = json_parser_new_immutable();
  if (!json_parser_load_from_data(parser, text, (gssize)len, NULL))
    return NULL;
  JsonNode *root = json_parser_get_root(parser);
  if (!root || !JSON_NODE_HOLDS_OBJECT(root))
    return NULL;
  return json_node_ref(root);
}

/* The member as a string, or NULL when absent or not a string. */
static const char *
get_string(JsonObject *obj, const char *name)
{
  JsonNode *n = json_object_get_member(obj, name);
  if (!n || !JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_STRING)
    return NULL;
  return json_node_get_string(n);
}

/* The member as whole seconds (integer, or a number with no fraction). */
static bool
get_seconds(JsonObject *obj, const char *name, gint64 *out)
{
  JsonNode *n = json_object_get_member(obj, name);
  if (!n || !JSON_NODE_HOLDS_VALUE(n))
    return false;
  GType t = json_node_get_value_type(n);
  if (t == G_TYPE_INT64) {
    *out = json_node_get_int(n);
    return true;
  }
  if (t == G_TYPE_DOUBLE) {
    double d = json_node_get_double(n);
    if (!(d >= 0 && d < 1e12))
      return false;
    *out = (gint64)d;
    return true;
  }
  return false;
}

static bool
is_https_url(const char *s)
{
  if (!s || strlen(s) > MAX_URL || !g_str_has_prefix(s, "https://") || !s[8])
    return false;
  for (const char *p = s; *p; p++)
    if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
      return false;
  return true;
}

void
kcps__oidc_discovery_clear(kcps_oidc_discovery_t *d)
{
  if (!d)
    return;
  g_clear_pointer(&d->authorization_endpoint, g_free);
  g_clear_pointer(&d->token_endpoint, g_free);
  g_clear_pointer(&d->jwks_uri, g_free);
}

bool
kcps__oidc_parse_discovery(const char *text, size_t len, const char *issuer,
                           kcps_oidc_discovery_t *out, GError **error)
{
  memset(out, 0, sizeof *out);
  g_autoptr(JsonNode) root = parse_object(text, len);
  if (!root) {
    g_set_error_literal(error, KCPS_OIDC_ERROR, KCPS_OIDC_ERROR_DISCOVERY,
                        "the discovery document is not a JSON object");
    return false;
  }
  JsonObject *obj = json_node_get_object(root);
  const char *iss = get_string(obj, "issuer");
  if (!iss || !issuer || strcmp(iss, issuer) != 0) {
    g_set_error(error, KCPS_OIDC_ERROR, KCPS_OIDC_ERROR_DISCOVERY,
                "the discovery document names another issuer than the configured \"%s\"",
                issuer ? issuer : "");
    return false;
  }
  static const char *const names[] = {"authorization_endpoint", "token_endpoint", "jwks_uri"};
  const char *values[G_N_ELEMENTS(names)];
  for (size_t i = 0; i < G_N_ELEMENTS(names); i++) {
    values[i] = get_string(obj, names[i]);
    if (!is_https_url(values[i])) {
      g_set_error(error, KCPS_OIDC_ERROR, KCPS_OIDC_ERROR_DISCOVERY,
                  "the discovery document has no https \"%s\"", names[i]);
      return false;
    }
  }
  JsonNode *methods = json_object_get_member(obj, "code_challenge_methods_supported");
  if (methods) {
    bool s256 = false;
    if (JSON_NODE_HOLDS_ARRAY(methods)) {
      JsonArray *a = json_node_get_array(methods);
      for (guint i = 0; i < json_array_get_length(a) && !s256; i++) {
        JsonNode *m = json_array_get_element(a, i);
        s256 = JSON_NODE_HOLDS_VALUE(m) && json_node_get_value_type(m) == G_TYPE_STRING &&
               strcmp(json_node_get_string(m), "S256") == 0;
      }
    }
    if (!s256) {
      g_set_error_literal(error, KCPS_OIDC_ERROR, KCPS_OIDC_ERROR_DISCOVERY,
                          "the provider does not offer PKCE with S256");
      return false;
    }
  }
  out->authorization_endpoint = g_strdup(values[0]);
  out->token_endpoint = g_strdup(values[1]);
  out->jwks_uri = g_strdup(values[2]);
  return true;
}

/* Keys ----------------------------------------------------------------- */

/* Decodes a base64url member into a fresh buffer; NULL when absent/bad. */
static guchar *
get_b64(JsonObject *obj, const char *name, size_t *len)
{
  const char *s = get_string(obj, name);
  if (!s || !*s || strlen(s) > 2048)
    return NULL;
  return kcps_base64url_decode(s, len);
}

/* An RSA public key of at least 2048 bits from n and e. */
static EVP_PKEY *
rsa_from_jwk(JsonObject *jwk)
{
  size_t nlen = 0, elen = 0;
  g_autofree guchar *n = get_b64(jwk, "n", &nlen);
  g_autofree guchar *e = get_b64(jwk, "e", &elen);
  if (!n || !e || nlen < 256 || nlen > 1024 || elen == 0 || elen > 8)
    return NULL;
  EVP_PKEY *pkey = NULL;
  BIGNUM *bn = BN_bin2bn(n, (int)nlen, NULL);
  BIGNUM *be = BN_bin2bn(e, (int)elen, NULL);
  OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
  OSSL_PARAM *params = NULL;
  EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
  if (bn && be && bld && ctx && BN_num_bits(bn) >= 2048 &&
      OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) &&
      OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be) &&
      (params = OSSL_PARAM_BLD_to_param(bld)) && EVP_PKEY_fromdata_init(ctx) > 0)
    if (EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0)
      pkey = NULL;
  EVP_PKEY_CTX_free(ctx);
  OSSL_PARAM_free(params);
  OSSL_PARAM_BLD_free(bld);
  BN_free(bn);
  BN_free(be);
  return pkey;
}

/* A P-256 public key from x and y (checked to be on the curve). */
static EVP_PKEY *
ec_from_jwk(JsonObject *jwk)
{
  if (g_strcmp0(get_string(jwk, "crv"), "P-256") != 0)
    return NULL;
  size_t xlen = 0, ylen = 0;
  g_autofree guchar *x = get_b64(jwk, "x", &xlen);
  g_autofree guchar *y = get_b64(jwk, "y", &ylen);
  if (!x || !y || xlen != 32 || ylen != 32)
    return NULL;
  guchar point[65];
  point[0] = 0x04;
  memcpy(point + 1, x, 32);
  memcpy(point + 33, y, 32);
  char group[] = "prime256v1";
  OSSL_PARAM params[] = {
    OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0),
    OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point, sizeof point),
    OSSL_PARAM_construct_end(),
  };
  EVP_PKEY *pkey = NULL;
  EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
  if (ctx && EVP_PKEY_fromdata_init(ctx) > 0 &&
      EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0)
    pkey = NULL;
  EVP_PKEY_CTX_free(ctx);
  if (pkey) {
    /* fromdata does not prove the point lies on the curve; check it. */
    EVP_PKEY_CTX *check = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
    bool ok = check && EVP_PKEY_public_check(check) == 1;
    EVP_PKEY_CTX_free(check);
    if (!ok) {
      EVP_PKEY_free(pkey);
      pkey = NULL;
    }
  }
  return pkey;
}

/* The key for alg and kid (NULL kid: the only key of that type) from the
 * JWKS text, or NULL + error (JWKS when the set is unusable, KID when no
 * key matches). */
static EVP_PKEY *
find_key(const char *jwks, size_t jwks_len, const char *alg, const char *kid, GError **error)
{
  g_autoptr(JsonNode) root = parse_object(jwks, jwks_len);
  JsonNode *keys = root ? json_object_get_member(json_node_get_object(root), "keys") : NULL;
  if (!keys || !JSON_NODE_HOLDS_ARRAY(keys) ||
      json_array_get_length(json_node_get_array(keys)) > MAX_KEYS) {
    g_set_error_literal(error, KCPS_OIDC_ERROR, KCPS_OIDC_ERROR_JWKS,
                        "the provider's key set is not a JWKS document");
    return NULL;
  }
  const char *kty = strcmp(alg, "RS256") == 0 ? "RSA" : "EC";
  JsonArray *a = json_node_get_array(keys);
  JsonObject *found = NULL;
  unsigned candidates = 0;
  for (guint i = 0; i < json_array_get_length(a); i++) {
    JsonNode *k = json_array_get_element(a, i);
    if (!JSON_NODE_HOLDS_OBJECT(k))
      continue;
    JsonObject *jwk = json_node_get_object(k);
    const char *use = get_string(jwk, "use");
    const char *kalg = get_string(jwk, "alg");
    if (g_strcmp0(get_string(jwk, "kty"), kty) != 0 || (use && strcmp(use, "sig") != 0) ||
        (kalg && strcmp(kalg, alg) != 0))
      continue;
    if (kid) {
      if (g_strcmp0(get_string(jwk, "kid"), kid) == 0) {
        found = jwk;
        break;
      }
    } else {
      candidates++;
      found = jwk;
    }
  }
  if (!found || (!kid && candidates != 1)) {
    g_set_error(error, KCPS_OIDC_ERROR, KCPS_OIDC_ERROR_KID,
                kid ? "no %s key with the token's kid in the provider's key set"
                    : "the token names no kid and the key set has no single %s key",
                alg);
    return NULL;
  }
  EVP_PKEY *pkey = strcmp(kty, "RSA") == 0 ? rsa_from_jwk(found) : ec_from_jwk(found);
  if (!pkey)
    g_set_error(error, KCPS_OIDC_ERROR, KCPS_OIDC_ERROR_JWKS,
                "the provider's %s key is malformed or too weak", kty);
  return pkey;
}

/* ES256 signatures are r || s (64 bytes); OpenSSL wants DER. */
static guchar *
es256_to_der(const guchar *sig, size_t len, size_t *der_len)
{
  if (len != 64)
    return NULL;
  ECDSA_SIG *es = ECDSA_SIG_new();
  BIGNUM *r = BN_bin2bn(sig, 32, NULL);
  BIGNUM *s = BN_bin2bn(sig + 32, 32, NULL);
  if (!es || !r || !s || ECDSA_SIG_set0(es, r, s) != 1) {
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(es);
    return NULL;
  }
  guchar *der = NULL;
  int n = i2d_ECDSA_SIG(es, &der);
  ECDSA_SIG_free(es);
  if (n <= 0)
    return NULL;
  guchar *copy = g_memdup2(der, (gsize)n);
  OPENSSL_free(der);
  *der_len = (size_t)n;
  return copy;
}

static bool
verify_signature(EVP_PKEY *pkey, const char *alg, const char *input, size_t input_len,
                 const guchar *sig, size_t sig_len)
{
  g_autofree guchar *der = NULL;
  if (strcmp(alg, "ES256") == 0) {
    der = es256_to_der(sig, sig_len, &sig_len);
    if (!der)
      return false;
    sig = der;
  }
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  bool ok = md && EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pkey) == 1 &&
            EVP_DigestVerify(md, sig, sig_len, (const guchar *)input, input_len) == 1;
  EVP_MD_CTX_free(md);
  return ok;
}

/* The ID token ---------------------------------------------------------- */

static JsonNode *
fail(GError **error, kcps_oidc_error_t code, const char *message)
{
  g_set_error_literal(error, KCPS_OIDC_ERROR, code, message);
  return NULL;
}

/* Decodes one base64url part as a JSON object. */
static JsonNode *
decode_part(const char *b64, size_t len)
{
  g_autofree char *copy = g_strndup(b64, len);
  size_t n = 0;
  g_autofree guchar *raw = kcps_base64url_decode(copy, &n);
  return raw ? parse_object((const char *)raw, n) : NULL;
}

static bool
audience_ok(JsonObject *claims, const char *client_id, GError **error)
{
  JsonNode *aud = json_object_get_member(claims, "aud");
  guint count = 0;
  bool ours = false;
  if (aud && JSON_NODE_HOLDS_VALUE(aud) && json_node_get_value_type(aud) == G_TYPE_STRING) {
    count = 1;
    ours = strcmp(json_node_get_string(aud), client_id) == 0;
  } else if (aud && JSON_NODE_HOLDS_ARRAY(aud)) {
    JsonArray *a = json_node_get_array(aud);
    count = json_array_get_length(a);
    for (guint i = 0; i < count; i++) {
      JsonNode *e = json_array_get_element(a, i);
      if (JSON_NODE_HOLDS_VALUE(e) && json_node_get_value_type(e) == G_TYPE_STRING &&
          strcmp(json_node_get_string(e), client_id) == 0)
        ours = true;
    }
  }
  if (!ours) {
    g_set_error_literal(error, KCPS_OIDC_ERROR, KCPS_OIDC_ERROR_AUD,
                        "the ID token's audience (aud) is not this client");
    return false;
  }
  /* Several audiences: the token must say it was issued for us (azp). */
  const char *azp = get_string(claims, "azp");
  if ((count > 1 || json_object_has_member(claims, "azp")) &&
      (!azp || strcmp(azp, client_id) != 0)) {
    g_set_error_literal(error, KCPS_OIDC_ERROR, KCPS_OIDC_ERROR_AUD,
                        "the ID token's authorized party (azp) is not this client");
    return false;
  }
  return true;
}

JsonNode *
kcps__oidc_verify_id_token(const char *token, const char *jwks, size_t jwks_len,
                           const kcps_oidc_expect_t *expect, GError **error)
{
  if (!token || strlen(token) > KCPS_OIDC_MAX_ID_TOKEN)
    return fail(error, KCPS_OIDC_ERROR_MALFORMED, "the ID token is missing or too long");
  const char *dot1 = strchr(token, '.');
  const char *dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
  if (!dot1 || !dot2 || strchr(dot2 + 1, '.') || dot1 == token || dot2 == dot1 + 1 ||
      !dot2[1])
    return fail(error, KCPS_OIDC_ERROR_MALFORMED, "the ID token is not a signed JWT");

  /* The header decides nothing but which allowed algorithm and key. */
  g_autoptr(JsonNode) header = decode_part(token, (size_t)(dot1 - token));
  if (!header)
    return fail(error, KCPS_OIDC_ERROR_MALFORMED, "the ID token's header is not JSON");
  JsonObject *h = json_node_get_object(header);
  const char *alg = get_string(h, "alg");
  if (!alg || (strcmp(alg, "RS256") != 0 && strcmp(alg, "ES256") != 0))
    return fail(error, KCPS_OIDC_ERROR_ALG,
                "the ID token's algorithm is not RS256 or ES256 (none and HS* are refused)");
  if (json_object_has_member(h, "crit"))
    return fail(error, KCPS_OIDC_ERROR_MALFORMED, "the ID token has critical extensions");
  JsonNode *kid_node = json_object_get_member(h, "kid");
  const char *kid = get_string(h, "kid");
  if (kid_node && (!kid || strlen(kid) > 256))
    return fail(error, KCPS_OIDC_ERROR_MALFORMED, "the ID token's kid is not a short string");

  EVP_PKEY *pkey = find_key(jwks, jwks_len, alg, kid, error);
  if (!pkey)
    return NULL;
  size_t sig_len = 0;
  g_autofree guchar *sig = kcps_base64url_decode(dot2 + 1, &sig_len);
  bool ok = sig && verify_signature(pkey, alg, token, (size_t)(dot2 - token), sig, sig_len);
  EVP_PKEY_free(pkey);
  if (!ok)
    return fail(error, KCPS_OIDC_ERROR_SIGNATURE, "the ID token's signature does not verify");

  /* Signed by the provider: now the claims. */
  JsonNode *payload = decode_part(dot1 + 1, (size_t)(dot2 - dot1 - 1));
  if (!payload)
    return fail(error, KCPS_OIDC_ERROR_MALFORMED, "the ID token's claims are not JSON");
  g_autoptr(JsonNode) claims_node = payload;
  JsonObject *claims = json_node_get_object(payload);

  const char *iss = get_string(claims, "iss");
  if (!iss || !expect->issuer || strcmp(iss, expect->issuer) != 0)
    return fail(error, KCPS_OIDC_ERROR_ISS, "the ID token's issuer (iss) is not the configured one");
  if (!audience_ok(claims, expect->client_id, error))
    return NULL;
  gint64 exp = 0, iat = 0, nbf = 0;
  if (!get_seconds(claims, "exp", &exp) || !get_seconds(claims, "iat", &iat))
    return fail(error, KCPS_OIDC_ERROR_EXP, "the ID token lacks exp or iat");
  if (expect->now > exp + KCPS_OIDC_LEEWAY)
    return fail(error, KCPS_OIDC_ERROR_EXP, "the ID token has expired (exp)");
  if (iat > expect->now + KCPS_OIDC_LEEWAY)
    return fail(error, KCPS_OIDC_ERROR_EXP, "the ID token was issued in the future (iat)");
  if (json_object_has_member(claims, "nbf") &&
      (!get_seconds(claims, "nbf", &nbf) || nbf > expect->now + KCPS_OIDC_LEEWAY))
    return fail(error, KCPS_OIDC_ERROR_EXP, "the ID token is not valid yet (nbf)");
  const char *nonce = get_string(claims, "nonce");
  if (!nonce || !expect->nonce || !kcps_crypto_streq(nonce, expect->nonce))
    return fail(error, KCPS_OIDC_ERROR_NONCE, "the ID token's nonce is not the one sent");
  const char *sub = get_string(claims, "sub");
  if (!sub || !*sub || strlen(sub) > MAX_SUB)
    return fail(error, KCPS_OIDC_ERROR_CLAIMS, "the ID token's subject (sub) is missing or too long");
  return g_steal_pointer(&claims_node);
}
