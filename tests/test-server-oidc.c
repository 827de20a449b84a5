/* Single sign-on (white paper 4.7): the ID token verifier with tokens
 * signed here, the per-organization configuration routes, and the whole
 * authorization code flow with PKCE against a real OpenID provider
 * (oidc-provider on Node.js, tests/oidc/) over HTTPS on 127.0.0.1. */
#include "server-fixture.h"
#include "server-stub/server-oidc.h"

#include "common/crypto.h"

#include <curl/curl.h>
#include <errno.h>
#include <glib/gstdio.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define CLIENT_ID "kcps-test-client"

/* Everything the server logged in this test process. */
static GString *server_log;
/* The provider's installation (set up once in main), or NULL + why not. */
static char *provider_dir;
static char *provider_missing;

static GLogWriterOutput
log_writer(GLogLevelFlags level, const GLogField *fields, gsize n, gpointer data)
{
  for (gsize i = 0; i < n; i++)
    if (strcmp(fields[i].key, "MESSAGE") == 0 && fields[i].length < 0)
      g_string_append_printf(server_log, "%s\n", (const char *)fields[i].value);
  return g_log_writer_default(level, fields, n, data);
}

/* Signing test tokens ---------------------------------------------------- */

static EVP_PKEY *rsa_key, *rsa_small, *ec_key;

static char *
b64_bn(EVP_PKEY *key, const char *param, size_t pad)
{
  BIGNUM *bn = NULL;
  ck_assert(EVP_PKEY_get_bn_param(key, param, &bn) == 1);
  size_t len = pad ? pad : (size_t)BN_num_bytes(bn);
  g_autofree guchar *buf = g_malloc(len);
  ck_assert(BN_bn2binpad(bn, buf, (int)len) == (int)len);
  BN_free(bn);
  return kcps_base64url_encode(buf, len);
}

static char *
jwk_json(EVP_PKEY *key, const char *kid)
{
  if (EVP_PKEY_is_a(key, "RSA")) {
    g_autofree char *n = b64_bn(key, OSSL_PKEY_PARAM_RSA_N, 0);
    g_autofree char *e = b64_bn(key, OSSL_PKEY_PARAM_RSA_E, 0);
    return g_strdup_printf("{\"kty\":\"RSA\",\"kid\":\"%s\",\"use\":\"sig\",\"alg\":\"RS256\","
                           "\"n\":\"%s\",\"e\":\"%s\"}",
                           kid, n, e);
  }
  g_autofree char *x = b64_bn(key, OSSL_PKEY_PARAM_EC_PUB_X, 32);
  g_autofree char *y = b64_bn(key, OSSL_PKEY_PARAM_EC_PUB_Y, 32);
  return g_strdup_printf("{\"kty\":\"EC\",\"kid\":\"%s\",\"crv\":\"P-256\",\"x\":\"%s\","
                         "\"y\":\"%s\"}",
                         kid, x, y);
}

/* The JWKS with the RSA key "r1" and the EC key "e1". */
static char *
test_jwks(void)
{
  g_autofree char *r = jwk_json(rsa_key, "r1");
  g_autofree char *e = jwk_json(ec_key, "e1");
  return g_strdup_printf("{\"keys\":[%s,%s]}", r, e);
}

/* header.payload signed with key (RS256 or ES256 by key type). */
static char *
sign_jwt(const char *header, const char *payload, EVP_PKEY *key)
{
  g_autofree char *h = kcps_base64url_encode(header, strlen(header));
  g_autofree char *p = kcps_base64url_encode(payload, strlen(payload));
  g_autofree char *input = g_strconcat(h, ".", p, NULL);
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  size_t len = 0;
  ck_assert(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) == 1);
  ck_assert(EVP_DigestSign(md, NULL, &len, (const guchar *)input, strlen(input)) == 1);
  g_autofree guchar *sig = g_malloc(len);
  ck_assert(EVP_DigestSign(md, sig, &len, (const guchar *)input, strlen(input)) == 1);
  EVP_MD_CTX_free(md);
  g_autofree char *s = NULL;
  if (EVP_PKEY_is_a(key, "EC")) {
    /* DER to r || s */
    const guchar *q = sig;
    ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &q, (long)len);
    guchar raw[64];
    BN_bn2binpad(ECDSA_SIG_get0_r(es), raw, 32);
    BN_bn2binpad(ECDSA_SIG_get0_s(es), raw + 32, 32);
    ECDSA_SIG_free(es);
    s = kcps_base64url_encode(raw, 64);
  } else {
    s = kcps_base64url_encode(sig, len);
  }
  return g_strconcat(input, ".", s, NULL);
}

/* Claims with each member replaceable: NULL means the good default. */
typedef struct {
  const char *iss, *aud, *nonce, *sub, *extra;
  gint64 exp_delta, iat_delta;
} claims_t;

static char *
claims_text(const claims_t *c, gint64 now)
{
  return g_strdup_printf(
      "{\"iss\":\"%s\",\"aud\":%s,\"sub\":\"%s\",\"nonce\":\"%s\",\"exp\":%" G_GINT64_FORMAT
      ",\"iat\":%" G_GINT64_FORMAT ",\"email\":\"t@idp.test\"%s}",
      c->iss ? c->iss : "https://idp.test", c->aud ? c->aud : "\"" CLIENT_ID "\"",
      c->sub ? c->sub : "user-1", c->nonce ? c->nonce : "n-123",
      now + (c->exp_delta ? c->exp_delta : 300), now + c->iat_delta, c->extra ? c->extra : "");
}

/* Verifies token against the test JWKS; the error code, or -1 when good. */
static int
verify(const char *token, const char *jwks, gint64 now)
{
  kcps_oidc_expect_t expect = {"https://idp.test", CLIENT_ID, "n-123", now};
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) claims = kcps__oidc_verify_id_token(token, jwks, strlen(jwks), &expect,
                                                          &error);
  if (claims) {
    ck_assert_ptr_null(error);
    return -1;
  }
  ck_assert_msg(error && error->domain == KCPS_OIDC_ERROR, "no KCPS_OIDC_ERROR");
  return error->code;
}

static void
check_claims(const claims_t *c, const char *header, EVP_PKEY *key, int want, const char *what)
{
  gint64 now = g_get_real_time() / G_USEC_PER_SEC;
  g_autofree char *jwks = test_jwks();
  g_autofree char *payload = claims_text(c, now);
  g_autofree char *token =
      sign_jwt(header ? header : "{\"alg\":\"RS256\",\"kid\":\"r1\"}", payload, key);
  int got = verify(token, jwks, now);
  ck_assert_msg(got == want, "%s: got %s (%d), expected %s (%d)", what,
                got < 0 ? "accepted" : kcps__oidc_step_name(got), got,
                want < 0 ? "accepted" : kcps__oidc_step_name(want), want);
}

START_TEST(test_verify_good)
{
  claims_t c = {0};
  check_claims(&c, NULL, rsa_key, -1, "RS256 token");
  check_claims(&c, "{\"alg\":\"ES256\",\"kid\":\"e1\"}", ec_key, -1, "ES256 token");
  check_claims(&c, "{\"alg\":\"RS256\"}", rsa_key, -1, "RS256 without kid (one RSA key)");
  claims_t azp = {.aud = "[\"" CLIENT_ID "\",\"other\"]", .extra = ",\"azp\":\"" CLIENT_ID "\""};
  check_claims(&azp, NULL, rsa_key, -1, "two audiences with azp");
  claims_t leeway = {.exp_delta = -30};
  check_claims(&leeway, NULL, rsa_key, -1, "expired 30 s ago (within leeway)");

  /* The claims come back. */
  gint64 now = g_get_real_time() / G_USEC_PER_SEC;
  g_autofree char *jwks = test_jwks();
  g_autofree char *payload = claims_text(&c, now);
  g_autofree char *token = sign_jwt("{\"alg\":\"RS256\",\"kid\":\"r1\"}", payload, rsa_key);
  kcps_oidc_expect_t expect = {"https://idp.test", CLIENT_ID, "n-123", now};
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) claims =
      kcps__oidc_verify_id_token(token, jwks, strlen(jwks), &expect, &error);
  ck_assert_msg(claims, "good token refused: %s", error ? error->message : "?");
  ck_assert_str_eq(sfx_str(claims, "sub"), "user-1");
  ck_assert_str_eq(sfx_str(claims, "email"), "t@idp.test");
}
END_TEST

START_TEST(test_verify_refused)
{
  claims_t c = {0};
  claims_t wrong_aud = {.aud = "\"someone-else\""};
  check_claims(&wrong_aud, NULL, rsa_key, KCPS_OIDC_ERROR_AUD, "wrong aud");
  claims_t two_aud = {.aud = "[\"" CLIENT_ID "\",\"other\"]"};
  check_claims(&two_aud, NULL, rsa_key, KCPS_OIDC_ERROR_AUD, "two audiences, no azp");
  claims_t bad_azp = {.extra = ",\"azp\":\"other\""};
  check_claims(&bad_azp, NULL, rsa_key, KCPS_OIDC_ERROR_AUD, "azp of another client");
  claims_t wrong_iss = {.iss = "https://evil.test"};
  check_claims(&wrong_iss, NULL, rsa_key, KCPS_OIDC_ERROR_ISS, "wrong iss");
  claims_t expired = {.exp_delta = -120};
  check_claims(&expired, NULL, rsa_key, KCPS_OIDC_ERROR_EXP, "expired 2 min ago");
  claims_t future = {.iat_delta = 600};
  check_claims(&future, NULL, rsa_key, KCPS_OIDC_ERROR_EXP, "issued in the future");
  claims_t nbf = {.extra = ",\"nbf\":99999999999"};
  check_claims(&nbf, NULL, rsa_key, KCPS_OIDC_ERROR_EXP, "not valid yet");
  claims_t nonce = {.nonce = "n-999"};
  check_claims(&nonce, NULL, rsa_key, KCPS_OIDC_ERROR_NONCE, "wrong nonce");
  claims_t no_sub = {.sub = ""};
  check_claims(&no_sub, NULL, rsa_key, KCPS_OIDC_ERROR_CLAIMS, "empty sub");
  check_claims(&c, "{\"alg\":\"RS256\",\"kid\":\"r9\"}", rsa_key, KCPS_OIDC_ERROR_KID,
               "unknown kid");
  check_claims(&c, "{\"alg\":\"RS256\",\"kid\":\"r1\"}", ec_key, KCPS_OIDC_ERROR_SIGNATURE,
               "RS256 header, signed by another key");
  check_claims(&c, "{\"alg\":\"ES256\",\"kid\":\"e1\"}", rsa_key, KCPS_OIDC_ERROR_SIGNATURE,
               "ES256 header, RSA signature");
  check_claims(&c, "{\"alg\":\"RS256\",\"kid\":\"r1\",\"crit\":[\"x\"]}", rsa_key,
               KCPS_OIDC_ERROR_MALFORMED, "crit header");

  gint64 now = g_get_real_time() / G_USEC_PER_SEC;
  g_autofree char *jwks = test_jwks();
  g_autofree char *payload = claims_text(&c, now);
  g_autofree char *good = sign_jwt("{\"alg\":\"RS256\",\"kid\":\"r1\"}", payload, rsa_key);
  ck_assert_int_eq(verify(good, jwks, now), -1);

  /* A flipped bit in the signature, and claims swapped under a good one. */
  g_autofree char *tampered = g_strdup(good);
  char *last = tampered + strlen(tampered) - 5;
  *last = *last == 'A' ? 'B' : 'A';
  ck_assert_int_eq(verify(tampered, jwks, now), KCPS_OIDC_ERROR_SIGNATURE);
  claims_t other = {.sub = "admin"};
  g_autofree char *other_payload = claims_text(&other, now);
  g_autofree char *p64 = kcps_base64url_encode(other_payload, strlen(other_payload));
  char **parts = g_strsplit(good, ".", 3);
  g_autofree char *swapped = g_strjoin(".", parts[0], p64, parts[2], NULL);
  g_strfreev(parts);
  ck_assert_int_eq(verify(swapped, jwks, now), KCPS_OIDC_ERROR_SIGNATURE);

  /* alg none, with and without a signature part. */
  g_autofree char *h_none = kcps_base64url_encode("{\"alg\":\"none\"}", 14);
  g_autofree char *p_good = kcps_base64url_encode(payload, strlen(payload));
  g_autofree char *none1 = g_strdup_printf("%s.%s.", h_none, p_good);
  g_autofree char *none2 = g_strdup_printf("%s.%s.AAAA", h_none, p_good);
  ck_assert_int_eq(verify(none1, jwks, now), KCPS_OIDC_ERROR_MALFORMED);
  ck_assert_int_eq(verify(none2, jwks, now), KCPS_OIDC_ERROR_ALG);

  /* HS256 keyed with the RSA public key's text (the classic confusion). */
  const char *hs_header = "{\"alg\":\"HS256\",\"kid\":\"r1\"}";
  g_autofree char *hh = kcps_base64url_encode(hs_header, strlen(hs_header));
  g_autofree char *hs_input = g_strconcat(hh, ".", p_good, NULL);
  guchar mac[32];
  unsigned maclen = 0;
  HMAC(EVP_sha256(), jwks, (int)strlen(jwks), (const guchar *)hs_input, strlen(hs_input), mac,
       &maclen);
  g_autofree char *mac64 = kcps_base64url_encode(mac, maclen);
  g_autofree char *hs = g_strconcat(hs_input, ".", mac64, NULL);
  ck_assert_int_eq(verify(hs, jwks, now), KCPS_OIDC_ERROR_ALG);

  /* Not a JWT at all; a 1024-bit RSA key is refused as too weak. */
  ck_assert_int_eq(verify("abc", jwks, now), KCPS_OIDC_ERROR_MALFORMED);
  ck_assert_int_eq(verify("a.b.c.d", jwks, now), KCPS_OIDC_ERROR_MALFORMED);
  g_autofree char *small = jwk_json(rsa_small, "s1");
  g_autofree char *small_jwks = g_strdup_printf("{\"keys\":[%s]}", small);
  g_autofree char *small_tok = sign_jwt("{\"alg\":\"RS256\",\"kid\":\"s1\"}", payload, rsa_small);
  ck_assert_int_eq(verify(small_tok, small_jwks, now), KCPS_OIDC_ERROR_JWKS);
  ck_assert_int_eq(verify(good, "{\"keys\":5}", now), KCPS_OIDC_ERROR_JWKS);
}
END_TEST

START_TEST(test_discovery_parse)
{
  static const struct {
    const char *doc;
    bool ok;
  } cases[] = {
    {"{\"issuer\":\"https://idp.test\",\"authorization_endpoint\":\"https://idp.test/a\","
     "\"token_endpoint\":\"https://idp.test/t\",\"jwks_uri\":\"https://idp.test/k\","
     "\"code_challenge_methods_supported\":[\"S256\"]}", true},
    {"{\"issuer\":\"https://idp.test/\",\"authorization_endpoint\":\"https://idp.test/a\","
     "\"token_endpoint\":\"https://idp.test/t\",\"jwks_uri\":\"https://idp.test/k\"}", false},
    {"{\"issuer\":\"https://idp.test\",\"authorization_endpoint\":\"http://idp.test/a\","
     "\"token_endpoint\":\"https://idp.test/t\",\"jwks_uri\":\"https://idp.test/k\"}", false},
    {"{\"issuer\":\"https://idp.test\",\"authorization_endpoint\":\"https://idp.test/a\","
     "\"token_endpoint\":\"https://idp.test/t\",\"jwks_uri\":\"https://idp.test/k\","
     "\"code_challenge_methods_supported\":[\"plain\"]}", false},
    {"{\"issuer\":\"https://idp.test\",\"token_endpoint\":\"https://idp.test/t\"}", false},
    {"[]", false},
    {"", false},
  };
  for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
    kcps_oidc_discovery_t d;
    g_autoptr(GError) error = NULL;
    bool ok = kcps__oidc_parse_discovery(cases[i].doc, strlen(cases[i].doc), "https://idp.test",
                                         &d, &error);
    ck_assert_msg(ok == cases[i].ok, "case %zu: got %s, expected %s (%s)", i,
                  ok ? "accepted" : "refused", cases[i].ok ? "accepted" : "refused",
                  error ? error->message : "");
    if (ok)
      ck_assert_str_eq(d.token_endpoint, "https://idp.test/t");
    kcps__oidc_discovery_clear(&d);
  }
}
END_TEST

/* Configuration routes ---------------------------------------------------- */

static gint64
db_int(const char *sql)
{
  g_mutex_lock(&sfx.server->lock);
  sqlite3_stmt *stmt = NULL;
  gint64 v = -1;
  if (sqlite3_prepare_v2(sfx.server->db, sql, -1, &stmt, NULL) == SQLITE_OK &&
      sqlite3_step(stmt) == SQLITE_ROW)
    v = sqlite3_column_int64(stmt, 0);
  sqlite3_finalize(stmt);
  g_mutex_unlock(&sfx.server->lock);
  return v;
}

/* Every text of the audit log in one string. */
static char *
audit_text(void)
{
  GString *out = g_string_new(NULL);
  g_mutex_lock(&sfx.server->lock);
  sqlite3_stmt *stmt = NULL;
  sqlite3_prepare_v2(sfx.server->db,
                     "SELECT event, coalesce(subject, ''), coalesce(detail, '') FROM audit", -1,
                     &stmt, NULL);
  while (stmt && sqlite3_step(stmt) == SQLITE_ROW)
    g_string_append_printf(out, "%s|%s|%s\n", sqlite3_column_text(stmt, 0),
                           sqlite3_column_text(stmt, 1), sqlite3_column_text(stmt, 2));
  sqlite3_finalize(stmt);
  g_mutex_unlock(&sfx.server->lock);
  return g_string_free(out, FALSE);
}

/* The answer as text (for "the secret never appears"). */
static char *
node_text(JsonNode *node)
{
  return node ? json_to_string(node, FALSE) : g_strdup("");
}

/* Does any file of the data folder hold needle in clear? */
static bool
data_holds(const char *needle)
{
  g_autoptr(GDir) dir = g_dir_open(sfx.data, 0, NULL);
  const char *name;
  while (dir && (name = g_dir_read_name(dir))) {
    g_autofree char *path = g_build_filename(sfx.data, name, NULL);
    g_autofree char *data = NULL;
    gsize len = 0;
    if (g_file_get_contents(path, &data, &len, NULL) &&
        memmem(data, len, needle, strlen(needle)))
      return true;
  }
  return false;
}

static void
put_sso(const char *org_public_id, const char *token, const char *body, long want,
        JsonNode **out)
{
  g_autofree char *path = g_strdup_printf("/api/v1/orgs/%s/sso", org_public_id);
  long st = sfx_call("PUT", path, token, body, out);
  ck_assert_msg(st == want, "PUT %s: got %ld, expected %ld", body, st, want);
}

START_TEST(test_config_routes)
{
  g_autofree char *admin = sfx_login("admin@a.test", sfx.admin_pw);
  g_autofree char *org = sfx_org_public_id("Customer A");
  g_autofree char *path = g_strdup_printf("/api/v1/orgs/%s/sso", org);
  const char *secret = "Cl13nt-S3cret-value-XYZ";

  JsonNode *ans = NULL;
  ck_assert_int_eq(sfx_call("GET", path, admin, NULL, &ans), 404);
  json_node_unref(ans);

  put_sso(org, admin,
          "{\"preset\":\"generic\",\"issuer\":\"https://idp.example.com\",\"client_id\":\"c1\","
          "\"client_secret\":\"Cl13nt-S3cret-value-XYZ\"}",
          200, &ans);
  g_autofree char *t1 = node_text(ans);
  ck_assert_msg(!strstr(t1, secret), "PUT answer shows the secret: %s", t1);
  ck_assert_str_eq(sfx_str(ans, "issuer"), "https://idp.example.com");
  ck_assert(json_node_get_boolean(sfx_member(ans, "client_secret_set")));
  g_autofree char *cb = g_strconcat(kcps_server_get_url(sfx.server), "/api/v1/sso/callback", NULL);
  ck_assert_str_eq(sfx_str(ans, "redirect_uri"), cb);
  json_node_unref(ans);

  ck_assert_int_eq(sfx_call("GET", path, admin, NULL, &ans), 200);
  g_autofree char *t2 = node_text(ans);
  ck_assert_msg(!strstr(t2, secret), "GET answer shows the secret: %s", t2);
  ck_assert_msg(!sfx_member(ans, "client_secret"), "GET has client_secret: %s", t2);
  ck_assert_str_eq(sfx_str(ans, "client_id"), "c1");
  json_node_unref(ans);

  /* Sealed at rest, key file 0600. */
  ck_assert_msg(!data_holds(secret), "the client secret is in the data folder in clear");
  g_autofree char *key = g_build_filename(sfx.data, "oidc-seal-key", NULL);
  struct stat st;
  ck_assert_int_eq(stat(key, &st), 0);
  ck_assert_msg((st.st_mode & 0777) == 0600, "seal key mode %o, expected 600", st.st_mode & 0777);

  /* Changing without a secret keeps the sealed one. */
  put_sso(org, admin,
          "{\"preset\":\"generic\",\"issuer\":\"https://idp.example.com\",\"client_id\":\"c2\"}",
          200, NULL);

  /* Presets fill the issuer. */
  put_sso(org, admin,
          "{\"preset\":\"entra\",\"tenant\":\"0B1C2D3E-0000-4000-8000-123456789ABC\","
          "\"client_id\":\"c3\",\"client_secret\":\"x\"}",
          200, &ans);
  ck_assert_str_eq(sfx_str(ans, "issuer"),
                   "https://login.microsoftonline.com/0b1c2d3e-0000-4000-8000-123456789abc/v2.0");
  json_node_unref(ans);
  put_sso(org, admin,
          "{\"preset\":\"google\",\"domain\":\"Example.COM\",\"client_id\":\"c4.apps\"}", 200,
          &ans);
  ck_assert_str_eq(sfx_str(ans, "issuer"), "https://accounts.google.com");
  ck_assert_str_eq(sfx_str(ans, "domain"), "example.com");
  json_node_unref(ans);

  g_autofree char *audit = audit_text();
  ck_assert_msg(strstr(audit, "policy.changed|sso|"), "no policy.changed audit: %s", audit);
  ck_assert_msg(!strstr(audit, secret), "the audit log holds the secret");

  ck_assert_int_eq(sfx_call("DELETE", path, admin, NULL, NULL), 204);
  ck_assert_int_eq(sfx_call("GET", path, admin, NULL, NULL), 404);
  ck_assert_int_eq(sfx_call("DELETE", path, admin, NULL, NULL), 404);
  ck_assert_msg(!strstr(server_log->str, secret), "the log holds the secret");
}
END_TEST

START_TEST(test_config_access)
{
  g_autofree char *org = sfx_org_public_id("Customer A");
  g_autofree char *path = g_strdup_printf("/api/v1/orgs/%s/sso", org);
  const char *body = "{\"preset\":\"generic\",\"issuer\":\"https://idp.example.com\","
                     "\"client_id\":\"c1\",\"client_secret\":\"s\"}";
  g_autofree char *alice = sfx_login("alice@a.test", sfx.alice_pw);
  JsonNode *ans = NULL;
  long st = sfx_call("PUT", path, alice, body, &ans);
  sfx_expect_error(st, ans, 403, "forbidden", NULL);
  json_node_unref(ans);

  /* Another customer's admin does not even see Customer A. */
  sfx_add_org("Sales A", "Customer B", "customer");
  sfx_add_user("Customer B", "admin@b.test", "customer_admin", "Passw0rd-B-123");
  g_autofree char *bob = sfx_login("admin@b.test", "Passw0rd-B-123");
  ck_assert_int_eq(sfx_call("PUT", path, bob, body, NULL), 404);
  ck_assert_int_eq(sfx_call("GET", path, bob, NULL, NULL), 404);
  ck_assert_int_eq(sfx_call("DELETE", path, bob, NULL, NULL), 404);
  ck_assert_int_eq(sfx_call("GET", path, NULL, NULL, NULL), 401);
  ck_assert_int_eq(db_int("SELECT count(*) FROM oidc_configs"), 0);

  /* Not on a provider organization. */
  g_autofree char *sales = sfx_org_public_id("Sales A");
  sfx_add_user("Sales A", "padmin@s.test", "provider_admin", "Passw0rd-S-123");
  g_autofree char *padmin = sfx_login("padmin@s.test", "Passw0rd-S-123");
  put_sso(sales, padmin, body, 400, &ans);
  sfx_expect_error(400, ans, 400, "bad_request", "customer organizations");
  json_node_unref(ans);
}
END_TEST

START_TEST(test_config_bad_input)
{
  g_autofree char *admin = sfx_login("admin@a.test", sfx.admin_pw);
  g_autofree char *org = sfx_org_public_id("Customer A");
  static const struct {
    const char *body, *in_message;
  } cases[] = {
    {"{\"preset\":\"generic\",\"issuer\":\"https://i.test\",\"client_id\":\"c\","
     "\"client_secret\":\"s\",\"extra\":1}", "unknown field \"extra\""},
    {"{\"issuer\":\"https://i.test\",\"client_id\":\"c\",\"client_secret\":\"s\"}",
     "missing field \"preset\""},
    {"{\"preset\":\"okta\",\"issuer\":\"https://i.test\",\"client_id\":\"c\","
     "\"client_secret\":\"s\"}", "\"preset\""},
    {"{\"preset\":5,\"issuer\":\"https://i.test\",\"client_id\":\"c\",\"client_secret\":\"s\"}",
     "\"preset\" must be a string"},
    {"{\"preset\":\"generic\",\"client_id\":\"c\",\"client_secret\":\"s\"}",
     "missing field \"issuer\""},
    {"{\"preset\":\"generic\",\"issuer\":\"http://i.test\",\"client_id\":\"c\","
     "\"client_secret\":\"s\"}", "\"issuer\" must be an https URL"},
    {"{\"preset\":\"generic\",\"issuer\":\"https://u@i.test\",\"client_id\":\"c\","
     "\"client_secret\":\"s\"}", "\"issuer\""},
    {"{\"preset\":\"generic\",\"issuer\":\"https://i.test/?a=b\",\"client_id\":\"c\","
     "\"client_secret\":\"s\"}", "\"issuer\""},
    {"{\"preset\":\"generic\",\"issuer\":\"https://i.test\",\"client_id\":\"c\"}",
     "missing field \"client_secret\""},
    {"{\"preset\":\"generic\",\"issuer\":\"https://i.test\",\"client_secret\":\"s\"}",
     "missing field \"client_id\""},
    {"{\"preset\":\"generic\",\"issuer\":\"https://i.test\",\"client_id\":\"a b\","
     "\"client_secret\":\"s\"}", "\"client_id\""},
    {"{\"preset\":\"generic\",\"issuer\":\"https://i.test\",\"client_id\":\"c\","
     "\"client_secret\":\"s\\u0001\"}", "\"client_secret\""},
    {"{\"preset\":\"generic\",\"issuer\":\"https://i.test\",\"client_id\":\"c\","
     "\"client_secret\":[\"s\"]}", "\"client_secret\" must be a string"},
    {"{\"preset\":\"generic\",\"issuer\":\"https://i.test\",\"client_id\":\"c\","
     "\"client_secret\":\"s\",\"tenant\":\"x\"}", "\"tenant\" is only for preset \"entra\""},
    {"{\"preset\":\"entra\",\"client_id\":\"c\",\"client_secret\":\"s\"}",
     "missing field \"tenant\""},
    {"{\"preset\":\"entra\",\"tenant\":\"common\",\"client_id\":\"c\",\"client_secret\":\"s\"}",
     "\"tenant\" must be the directory (tenant) id"},
    {"{\"preset\":\"entra\",\"tenant\":\"0b1c2d3e-0000-4000-8000-123456789abc\","
     "\"issuer\":\"https://evil.test\",\"client_id\":\"c\",\"client_secret\":\"s\"}",
     "\"issuer\" is set by preset"},
    {"{\"preset\":\"google\",\"client_id\":\"c\",\"client_secret\":\"s\"}",
     "missing field \"domain\""},
    {"{\"preset\":\"google\",\"domain\":\"bad domain\",\"client_id\":\"c\","
     "\"client_secret\":\"s\"}", "\"domain\""},
    {"{\"preset\":\"entra\",\"tenant\":\"0b1c2d3e-0000-4000-8000-123456789abc\","
     "\"client_id\":\"c\",\"client_secret\":\"s\",\"domain\":\"a..test\"}",
     "\"domain\" must be a domain name"},
    {"{\"preset\":\"generic\",\"issuer\":\"https://i.test\",\"client_id\":\"c\","
     "\"client_secret\":\"s\",\"domain\":7}", "\"domain\" must be a string"},
  };
  for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
    JsonNode *ans = NULL;
    put_sso(org, admin, cases[i].body, 400, &ans);
    sfx_expect_error(400, ans, 400, "bad_request", cases[i].in_message);
    json_node_unref(ans);
    ck_assert_msg(db_int("SELECT count(*) FROM oidc_configs") == 0, "case %zu stored", i);
  }
  /* Overlong values. */
  g_autofree char *long_id = g_strnfill(300, 'c');
  g_autofree char *body = g_strdup_printf(
      "{\"preset\":\"generic\",\"issuer\":\"https://i.test\",\"client_id\":\"%s\","
      "\"client_secret\":\"s\"}", long_id);
  JsonNode *ans = NULL;
  put_sso(org, admin, body, 400, &ans);
  sfx_expect_error(400, ans, 400, "bad_request", "\"client_id\"");
  json_node_unref(ans);
  ck_assert_int_eq(db_int("SELECT count(*) FROM oidc_configs"), 0);
}
END_TEST

/* "Sign in with Microsoft/Google": an email domain finds its organization. */
START_TEST(test_lookup)
{
  g_autofree char *admin = sfx_login("admin@a.test", sfx.admin_pw);
  g_autofree char *org = sfx_org_public_id("Customer A");
  JsonNode *ans = NULL;
  ck_assert_int_eq(sfx_call("GET", "/api/v1/sso/lookup?domain=a.test", NULL, NULL, &ans), 404);
  sfx_expect_error(404, ans, 404, "not_found", "no organization signs in users of a.test");
  json_node_unref(ans);

  put_sso(org, admin,
          "{\"preset\":\"entra\",\"tenant\":\"0b1c2d3e-0000-4000-8000-123456789abc\","
          "\"client_id\":\"c\",\"client_secret\":\"s\",\"domain\":\"A.Test\"}",
          200, &ans);
  ck_assert_str_eq(sfx_str(ans, "domain"), "a.test");
  json_node_unref(ans);
  /* No session needed; the domain in any case. */
  ck_assert_int_eq(sfx_call("GET", "/api/v1/sso/lookup?domain=A.TEST", NULL, NULL, &ans), 200);
  ck_assert_str_eq(sfx_str(ans, "org"), org);
  ck_assert_str_eq(sfx_str(ans, "preset"), "entra");
  ck_assert_str_eq(sfx_str(ans, "domain"), "a.test");
  g_autofree char *start =
      g_strdup_printf("%s/api/v1/sso/%s/start", kcps_server_get_url(sfx.server), org);
  ck_assert_str_eq(sfx_str(ans, "start_url"), start);
  ck_assert_msg(!sfx_member(ans, "client_id") && !sfx_member(ans, "tenant"),
                "the lookup tells more than the organization and its provider");
  json_node_unref(ans);
  ck_assert_int_eq(sfx_call("GET", "/api/v1/sso/lookup?domain=b.test", NULL, NULL, NULL), 404);

  /* One domain, one organization: another customer cannot take it. */
  sfx_add_org("Sales A", "Customer B", "customer");
  sfx_add_user("Customer B", "admin@b.test", "customer_admin", "Passw0rd-B-123");
  g_autofree char *bob = sfx_login("admin@b.test", "Passw0rd-B-123");
  g_autofree char *org_b = sfx_org_public_id("Customer B");
  put_sso(org_b, bob,
          "{\"preset\":\"google\",\"domain\":\"a.test\",\"client_id\":\"g\","
          "\"client_secret\":\"s\"}",
          409, &ans);
  sfx_expect_error(409, ans, 409, "conflict", "a.test is used for single sign-on by another");
  json_node_unref(ans);
  ck_assert_int_eq(db_int("SELECT count(*) FROM oidc_configs"), 1);
  ck_assert_int_eq(sfx_call("GET", "/api/v1/sso/lookup?domain=a.test", NULL, NULL, &ans), 200);
  ck_assert_str_eq(sfx_str(ans, "org"), org);
  json_node_unref(ans);
  /* Its own organization may store it again (other settings changed). */
  put_sso(org, admin,
          "{\"preset\":\"google\",\"domain\":\"a.test\",\"client_id\":\"g2\"}", 200,
          NULL);
  ck_assert_int_eq(sfx_call("GET", "/api/v1/sso/lookup?domain=a.test", NULL, NULL, &ans), 200);
  ck_assert_str_eq(sfx_str(ans, "preset"), "google");
  json_node_unref(ans);
  /* Once A lets it go, B may take it. */
  g_autofree char *path = g_strdup_printf("/api/v1/orgs/%s/sso", org);
  ck_assert_int_eq(sfx_call("DELETE", path, admin, NULL, NULL), 204);
  put_sso(org_b, bob,
          "{\"preset\":\"google\",\"domain\":\"a.test\",\"client_id\":\"g\","
          "\"client_secret\":\"s\"}",
          200, NULL);
  ck_assert_int_eq(sfx_call("GET", "/api/v1/sso/lookup?domain=a.test", NULL, NULL, &ans), 200);
  ck_assert_str_eq(sfx_str(ans, "org"), org_b);
  json_node_unref(ans);

  static const char *const bad[] = {
    "/api/v1/sso/lookup", "/api/v1/sso/lookup?domain=", "/api/v1/sso/lookup?domain=a",
    "/api/v1/sso/lookup?domain=alice%40a.test", "/api/v1/sso/lookup?domain=a%20b.test",
    "/api/v1/sso/lookup?domain=.a.test",
  };
  for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
    long st = sfx_call("GET", bad[i], NULL, NULL, &ans);
    sfx_expect_error(st, ans, 400, "bad_request", "domain");
    json_node_unref(ans);
  }
}
END_TEST

START_TEST(test_start_bad_input)
{
  g_autofree char *admin = sfx_login("admin@a.test", sfx.admin_pw);
  g_autofree char *org = sfx_org_public_id("Customer A");
  /* No SSO configured: 404 for the organization, and for an unknown one. */
  g_autofree char *p1 = g_strdup_printf("/api/v1/sso/%s/start", org);
  ck_assert_int_eq(sfx_call("GET", p1, NULL, NULL, NULL), 404);
  ck_assert_int_eq(sfx_call("GET", "/api/v1/sso/nope/start", NULL, NULL, NULL), 404);
  static const char *const bad[] = {
    "redirect_uri=https%3A%2F%2Fevil.test%2Fcb&code_challenge=" "0123456789012345678901234567890123456789012",
    "redirect_uri=http%3A%2F%2Flocalhost%3A5000%2Fcb&code_challenge=" "0123456789012345678901234567890123456789012",
    "redirect_uri=http%3A%2F%2F127.0.0.1%2Fcb&code_challenge=" "0123456789012345678901234567890123456789012",
    "redirect_uri=http%3A%2F%2F127.0.0.1%3A99999%2Fcb&code_challenge=" "0123456789012345678901234567890123456789012",
    "redirect_uri=http%3A%2F%2F127.0.0.1%3A5000%2Fcb%23frag&code_challenge=" "0123456789012345678901234567890123456789012",
    "redirect_uri=http%3A%2F%2F127.0.0.1%3A5000%2Fcb",
    "redirect_uri=http%3A%2F%2F127.0.0.1%3A5000%2Fcb&code_challenge=short",
    "code_challenge=0123456789012345678901234567890123456789012",
    "redirect_uri=http%3A%2F%2F127.0.0.1%3A5000%2Fcb&code_challenge=" "0123456789012345678901234567890123456789012&code_challenge_method=plain",
    "login_hint=nobody",
    "login_hint=a%20b%40c.test",
    "login_hint=a%40b%40c.test",
    "login_hint=a%22%3E%40c.test",
  };
  for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
    g_autofree char *p = g_strdup_printf("/api/v1/sso/%s/start?%s", org, bad[i]);
    JsonNode *ans = NULL;
    long st = sfx_call("GET", p, NULL, NULL, &ans);
    ck_assert_msg(st == 400, "case %zu (%s): got %ld, expected 400", i, bad[i], st);
    json_node_unref(ans);
  }
  ck_assert_int_eq(db_int("SELECT count(*) FROM oidc_states"), 0);

  /* Callback and exchange with nothing behind them. */
  JsonNode *ans = NULL;
  ck_assert_int_eq(sfx_call("GET", "/api/v1/sso/callback?code=x&state=nope", NULL, NULL, &ans),
                   400);
  ck_assert_str_eq(sfx_str(ans, "step"), "state");
  json_node_unref(ans);
  ck_assert_int_eq(sfx_call("GET", "/api/v1/sso/callback?code=x", NULL, NULL, NULL), 400);
  long st = sfx_call("POST", "/api/v1/sso/exchange", NULL,
                     "{\"code\":\"x\",\"code_verifier\":\"0123456789012345678901234567890123456789012\"}",
                     &ans);
  ck_assert_int_eq(st, 400);
  ck_assert_str_eq(sfx_str(ans, "step"), "exchange");
  json_node_unref(ans);
  st = sfx_call("POST", "/api/v1/sso/exchange", NULL, "{\"code\":\"x\"}", &ans);
  sfx_expect_error(st, ans, 400, "bad_request", "missing field \"code_verifier\"");
  json_node_unref(ans);
  st = sfx_call("POST", "/api/v1/sso/exchange", NULL, "{\"code\":\"x\",\"more\":1}", &ans);
  sfx_expect_error(st, ans, 400, "bad_request", "unknown field \"more\"");
  json_node_unref(ans);
  st = sfx_call("POST", "/api/v1/sso/exchange", NULL, "{\"code\":7}", &ans);
  sfx_expect_error(st, ans, 400, "bad_request", "\"code\" must be a string");
  json_node_unref(ans);
}
END_TEST

/* The real provider -------------------------------------------------------- */

static GPid provider_pid;
static int provider_port;
static char *provider_ca;     /* the test CA the provider's certificate is from */
static char *bundle;          /* the test CA plus the KCPS server's certificate */
static char *client_secret;

static void
run(const char *cmd)
{
  g_autofree char *out = NULL, *err = NULL;
  int status = 0;
  g_autoptr(GError) error = NULL;
  ck_assert_msg(g_spawn_command_line_sync(cmd, &out, &err, &status, &error),
                "%s: %s", cmd, error ? error->message : "?");
  ck_assert_msg(g_spawn_check_wait_status(status, NULL), "%s failed: %s", cmd, err);
}

/* A CA and a certificate for 127.0.0.1 signed by it, in dir. */
static void
make_certificates(const char *dir)
{
  g_autofree char *cmd = g_strdup_printf(
      "sh -c 'cd %s && "
      "openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 "
      "-subj /CN=kcps-test-oidc-ca -addext basicConstraints=critical,CA:true "
      "-addext keyUsage=critical,keyCertSign 2>/dev/null && "
      "openssl req -newkey rsa:2048 -nodes -keyout idp.key -out idp.csr -subj /CN=127.0.0.1 "
      "2>/dev/null && "
      "printf \"subjectAltName=IP:127.0.0.1\\nextendedKeyUsage=serverAuth\\n\" > ext.cnf && "
      "openssl x509 -req -in idp.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 "
      "-extfile ext.cnf -out idp.pem 2>/dev/null'",
      dir);
  run(cmd);
}

/* The provider dies with the test process, even one that failed hard. */
static void
die_with_parent(gpointer data)
{
  (void)data;
  prctl(PR_SET_PDEATHSIG, SIGTERM);
}

static void
flow_setup(void)
{
  ck_assert_msg(provider_dir, "the OpenID provider is not installed: %s", provider_missing);
  sfx_setup();
  make_certificates(sfx.tmp);
  provider_ca = g_build_filename(sfx.tmp, "ca.pem", NULL);
  g_autofree char *cert = g_build_filename(sfx.tmp, "idp.pem", NULL);
  g_autofree char *key = g_build_filename(sfx.tmp, "idp.key", NULL);
  sfx.config.oidc_ca_file = provider_ca;
  sfx_restart();

  /* One bundle for the test's "browser": both servers' CAs. */
  bundle = g_build_filename(sfx.tmp, "bundle.pem", NULL);
  g_autofree char *a = NULL, *b = NULL;
  ck_assert(g_file_get_contents(provider_ca, &a, NULL, NULL));
  ck_assert(g_file_get_contents(sfx.ca, &b, NULL, NULL));
  g_autofree char *both = g_strconcat(a, "\n", b, NULL);
  ck_assert(g_file_set_contents(bundle, both, -1, NULL));

  g_autofree char *token = kcps_crypto_random_token(24);
  client_secret = g_strconcat("Idp-Secret-", token, NULL);
  g_autofree char *cb = g_strconcat(kcps_server_get_url(sfx.server), "/api/v1/sso/callback", NULL);
  const char *node = g_getenv("KCPS_TEST_NODE") ? g_getenv("KCPS_TEST_NODE") : "node";
  g_autofree char *script = g_build_filename(provider_dir, "provider.mjs", NULL);
  const char *argv[] = {node, script, NULL};
  char **envp = g_get_environ();
  envp = g_environ_setenv(envp, "OIDC_CERT", cert, TRUE);
  envp = g_environ_setenv(envp, "OIDC_KEY", key, TRUE);
  envp = g_environ_setenv(envp, "OIDC_CLIENT_ID", CLIENT_ID, TRUE);
  envp = g_environ_setenv(envp, "OIDC_CLIENT_SECRET", client_secret, TRUE);
  envp = g_environ_setenv(envp, "OIDC_REDIRECT_URI", cb, TRUE);
  int out_fd = -1;
  g_autoptr(GError) error = NULL;
  bool ok = g_spawn_async_with_pipes(provider_dir, (char **)argv, envp,
                                     G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD, die_with_parent, NULL,
                                     &provider_pid, NULL, &out_fd, NULL, &error);
  g_strfreev(envp);
  ck_assert_msg(ok, "cannot start %s: %s", node, error ? error->message : "?");

  /* Wait for "READY <port>" (the provider prints it once it listens). */
  GString *line = g_string_new(NULL);
  gint64 deadline = g_get_monotonic_time() + 60 * G_USEC_PER_SEC;
  while (!strchr(line->str, '\n') && g_get_monotonic_time() < deadline) {
    struct pollfd pfd = {out_fd, POLLIN, 0};
    if (poll(&pfd, 1, 1000) <= 0)
      continue;
    char buf[128];
    ssize_t n = read(out_fd, buf, sizeof buf);
    if (n <= 0)
      break;
    g_string_append_len(line, buf, n);
  }
  close(out_fd);
  ck_assert_msg(sscanf(line->str, "READY %d", &provider_port) == 1 && provider_port > 0,
                "the provider did not start: \"%s\"", line->str);
  g_string_free(line, TRUE);
}

static void
flow_teardown(void)
{
  if (provider_pid > 0) {
    kill(provider_pid, SIGTERM);
    waitpid(provider_pid, NULL, 0);
    provider_pid = 0;
  }
  sfx_teardown();
  g_clear_pointer(&provider_ca, g_free);
  g_clear_pointer(&bundle, g_free);
  g_clear_pointer(&client_secret, g_free);
}

static char *
issuer(void)
{
  return g_strdup_printf("https://127.0.0.1:%d", provider_port);
}

/* Everything KCPS answered in this test, to search for the secret. */
static GString *kcps_answers;

typedef struct {
  long status;
  char *location;
  GString *body;
} web_t;

static void
web_clear(web_t *w)
{
  g_free(w->location);
  if (w->body)
    g_string_free(w->body, TRUE);
  memset(w, 0, sizeof *w);
}

static size_t
web_header(char *ptr, size_t size, size_t n, void *data)
{
  web_t *w = data;
  size_t len = size * n;
  if (len > 9 && g_ascii_strncasecmp(ptr, "Location:", 9) == 0) {
    g_free(w->location);
    w->location = g_strstrip(g_strndup(ptr + 9, len - 9));
  }
  return len;
}

static size_t
web_body(char *ptr, size_t size, size_t n, void *data)
{
  g_string_append_len(((web_t *)data)->body, ptr, (gssize)(size * n));
  return size * n;
}

/* A browser: one handle with a cookie jar; never follows redirects. */
static web_t
web(CURL *curl, const char *url, const char *form)
{
  web_t w = {0, NULL, g_string_new(NULL)};
  curl_easy_setopt(curl, CURLOPT_URL, url);
  curl_easy_setopt(curl, CURLOPT_CAINFO, bundle);
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(curl, CURLOPT_COOKIEFILE, "");
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, web_header);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &w);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, web_body);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &w);
  if (form) {
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, form);
  } else {
    curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
  }
  CURLcode rc = curl_easy_perform(curl);
  ck_assert_msg(rc == CURLE_OK, "%s: %s", url, curl_easy_strerror(rc));
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &w.status);
  if (g_str_has_prefix(url, kcps_server_get_url(sfx.server)))
    g_string_append_printf(kcps_answers, "%s\n%s\n", w.location ? w.location : "", w.body->str);
  return w;
}

/* An absolute URL for a Location relative to the provider. */
static char *
absolute(const char *location)
{
  if (g_str_has_prefix(location, "https://") || g_str_has_prefix(location, "http://"))
    return g_strdup(location);
  return g_strdup_printf("https://127.0.0.1:%d%s", provider_port, location);
}

/* The value of a query parameter of url (unescaped), or NULL. */
static char *
query_param(const char *url, const char *name)
{
  const char *q = strchr(url, '?');
  if (!q)
    return NULL;
  g_autoptr(GHashTable) params = g_uri_parse_params(q + 1, -1, "&", G_URI_PARAMS_NONE, NULL);
  const char *v = params ? g_hash_table_lookup(params, name) : NULL;
  return g_strdup(v);
}

/* Signs in at the provider as login, starting from its authorization URL,
 * until it sends the browser to a URL starting with until; that URL. */
static char *
provider_login(CURL *curl, const char *auth_url, const char *login, const char *until)
{
  g_autofree char *url = g_strdup(auth_url);
  for (int step = 0; step < 12; step++) {
    web_t w = web(curl, url, NULL);
    if (w.status == 200 && strstr(url, "/interaction/")) {
      /* The provider's page: a login form, or the consent form. */
      g_autofree char *form =
          strstr(w.body->str, "name=\"login\"")
              ? g_strdup_printf("prompt=login&login=%s&password=irrelevant", login)
              : g_strdup("prompt=consent");
      web_clear(&w);
      w = web(curl, url, form);
    }
    ck_assert_msg(w.status >= 300 && w.status < 400 && w.location,
                  "provider step %d (%s): got %ld without redirect: %.300s", step, url, w.status,
                  w.body->str);
    g_free(url);
    url = absolute(w.location);
    web_clear(&w);
    if (g_str_has_prefix(url, until))
      return g_steal_pointer(&url);
  }
  ck_abort_msg("the provider never sent the browser back to %s", until);
  return NULL;
}

static void
configure_sso(void)
{
  g_autofree char *admin = sfx_login("admin@a.test", sfx.admin_pw);
  g_autofree char *org = sfx_org_public_id("Customer A");
  g_autofree char *iss = issuer();
  g_autofree char *body = g_strdup_printf(
      "{\"preset\":\"generic\",\"issuer\":\"%s\",\"client_id\":\"" CLIENT_ID "\","
      "\"client_secret\":\"%s\"}", iss, client_secret);
  JsonNode *ans = NULL;
  put_sso(org, admin, body, 200, &ans);
  g_autofree char *text = node_text(ans);
  g_string_append_printf(kcps_answers, "%s\n", text);
  json_node_unref(ans);
}

/* /start → provider login → the callback URL (not yet visited). */
static char *
begin(CURL *curl, const char *login, const char *extra_query)
{
  g_autofree char *org = sfx_org_public_id("Customer A");
  g_autofree char *start = g_strdup_printf("%s/api/v1/sso/%s/start%s%s",
                                           kcps_server_get_url(sfx.server), org,
                                           extra_query ? "?" : "", extra_query ? extra_query : "");
  web_t w = web(curl, start, NULL);
  ck_assert_msg(w.status == 302 && w.location, "start: got %ld, expected 302: %s", w.status,
                w.body->str);
  g_autofree char *iss = issuer();
  ck_assert_msg(g_str_has_prefix(w.location, iss), "start went to %s, not the provider",
                w.location);
  /* What the authorization request carries. */
  static const char *const want[][2] = {
    {"response_type", "code"}, {"client_id", CLIENT_ID}, {"scope", "openid email profile"},
    {"code_challenge_method", "S256"},
  };
  for (size_t i = 0; i < G_N_ELEMENTS(want); i++) {
    g_autofree char *v = query_param(w.location, want[i][0]);
    ck_assert_msg(g_strcmp0(v, want[i][1]) == 0, "%s: got %s, expected %s", want[i][0], v,
                  want[i][1]);
  }
  static const char *const present[] = {"state", "nonce", "code_challenge", "redirect_uri"};
  for (size_t i = 0; i < G_N_ELEMENTS(present); i++) {
    g_autofree char *v = query_param(w.location, present[i]);
    ck_assert_msg(v && strlen(v) >= 20, "%s missing from %s", present[i], w.location);
  }
  /* The address the user typed goes on to the provider's page as is. */
  g_autofree char *given = g_strconcat("http://x/?", extra_query ? extra_query : "", NULL);
  g_autofree char *want_hint = query_param(given, "login_hint");
  g_autofree char *got_hint = query_param(w.location, "login_hint");
  ck_assert_msg(g_strcmp0(want_hint, got_hint) == 0, "login_hint: got %s, expected %s",
                got_hint, want_hint);
  g_autofree char *auth = g_strdup(w.location);
  web_clear(&w);
  g_autofree char *cb = g_strconcat(kcps_server_get_url(sfx.server), "/api/v1/sso/callback", NULL);
  return provider_login(curl, auth, login, cb);
}

START_TEST(test_flow_web)
{
  kcps_answers = g_string_new(NULL);
  configure_sso();
  CURL *curl = curl_easy_init();
  gint64 users = kcps__server_db_count_rows(sfx.server, "users");

  /* First sign-in creates the user from the claims. */
  g_autofree char *cb1 = begin(curl, "carol", NULL);
  web_t w = web(curl, cb1, NULL);
  ck_assert_msg(w.status == 200, "callback: got %ld, expected 200: %s", w.status, w.body->str);
  g_autoptr(JsonNode) a1 = json_from_string(w.body->str, NULL);
  web_clear(&w);
  const char *token = sfx_str(a1, "token");
  ck_assert_ptr_nonnull(token);
  JsonNode *me = NULL;
  ck_assert_int_eq(sfx_call("GET", "/api/v1/me", token, NULL, &me), 200);
  ck_assert_str_eq(sfx_str(me, "email"), "carol@idp.test");
  ck_assert_str_eq(sfx_str(me, "name"), "User carol");
  ck_assert_str_eq(sfx_str(me, "role"), "customer_user");
  ck_assert_str_eq(sfx_str(me, "org"), "Customer A");
  g_autofree char *user_id = g_strdup(sfx_str(me, "id"));
  json_node_unref(me);
  ck_assert_int_eq(kcps__server_db_count_rows(sfx.server, "users"), users + 1);
  ck_assert_int_eq(db_int("SELECT count(*) FROM users WHERE email = 'carol@idp.test'"
                          " AND password_hash IS NULL"),
                   1);
  g_autofree char *iss = issuer();
  g_autofree char *q = g_strdup_printf("SELECT count(*) FROM oidc_identities WHERE sub = 'carol'"
                                       " AND issuer = '%s'", iss);
  ck_assert_int_eq(db_int(q), 1);

  /* Replaying the same callback (state and code) is refused. */
  w = web(curl, cb1, NULL);
  ck_assert_msg(w.status == 400 && strstr(w.body->str, "\"state\""),
                "replayed state: got %ld %s, expected 400 naming state", w.status, w.body->str);
  web_clear(&w);

  /* The second sign-in finds the same user. */
  g_autofree char *cb2 = begin(curl, "carol", NULL);
  w = web(curl, cb2, NULL);
  ck_assert_msg(w.status == 200, "second callback: got %ld: %s", w.status, w.body->str);
  g_autoptr(JsonNode) a2 = json_from_string(w.body->str, NULL);
  web_clear(&w);
  JsonNode *user2 = sfx_member(a2, "user");
  ck_assert_str_eq(sfx_str(user2, "id"), user_id);
  ck_assert_int_eq(kcps__server_db_count_rows(sfx.server, "users"), users + 1);

  /* A state that has expired is refused too. */
  g_autofree char *cb3 = begin(curl, "carol", NULL);
  sfx_skew_clock(601);
  w = web(curl, cb3, NULL);
  ck_assert_msg(w.status == 400 && strstr(w.body->str, "expired"),
                "expired state: got %ld %s", w.status, w.body->str);
  web_clear(&w);
  sfx_skew_clock(0);

  g_autofree char *audit = audit_text();
  ck_assert_msg(strstr(audit, "sso.login|carol@idp.test|web"), "no sso.login: %s", audit);
  ck_assert_msg(strstr(audit, "user.created|carol@idp.test"), "no user.created: %s", audit);
  ck_assert_msg(strstr(audit, "sso.failed||state:"), "no sso.failed: %s", audit);

  /* The IdP's client secret: in no answer, no log, no audit line, not in
   * the data folder in clear. */
  ck_assert_msg(!strstr(kcps_answers->str, client_secret), "an answer holds the client secret");
  ck_assert_msg(!strstr(server_log->str, client_secret), "the log holds the client secret");
  ck_assert_msg(!strstr(audit, client_secret), "the audit log holds the client secret");
  ck_assert_msg(!data_holds(client_secret), "the data folder holds the client secret in clear");
  curl_easy_cleanup(curl);
  g_string_free(kcps_answers, TRUE);
}
END_TEST

START_TEST(test_flow_desktop)
{
  kcps_answers = g_string_new(NULL);
  configure_sso();
  CURL *curl = curl_easy_init();
  g_autofree char *verifier = kcps_crypto_random_token(32);
  guchar md[32];
  unsigned mdlen = 0;
  EVP_Digest(verifier, strlen(verifier), md, &mdlen, EVP_sha256(), NULL);
  g_autofree char *challenge = kcps_base64url_encode(md, 32);
  g_autofree char *query = g_strdup_printf(
      "redirect_uri=http%%3A%%2F%%2F127.0.0.1%%3A5999%%2Fdone%%3Fs%%3Dabc&code_challenge=%s"
      "&code_challenge_method=S256&login_hint=dave%%40idp.test", challenge);
  g_autofree char *cb = begin(curl, "dave", query);
  web_t w = web(curl, cb, NULL);
  ck_assert_msg(w.status == 302 && w.location &&
                    g_str_has_prefix(w.location, "http://127.0.0.1:5999/done?s=abc&code="),
                "desktop callback: got %ld to %s", w.status, w.location ? w.location : "-");
  g_autofree char *code = query_param(w.location, "code");
  web_clear(&w);

  /* Wrong verifier: refused, and the code is spent. */
  g_autofree char *wrong = g_strdup_printf("{\"code\":\"%s\",\"code_verifier\":\"%s\"}", code,
                                           "0123456789012345678901234567890123456789012");
  JsonNode *ans = NULL;
  ck_assert_int_eq(sfx_call("POST", "/api/v1/sso/exchange", NULL, wrong, &ans), 400);
  ck_assert_str_eq(sfx_str(ans, "step"), "exchange");
  json_node_unref(ans);
  g_autofree char *right = g_strdup_printf("{\"code\":\"%s\",\"code_verifier\":\"%s\"}", code,
                                           verifier);
  ck_assert_int_eq(sfx_call("POST", "/api/v1/sso/exchange", NULL, right, NULL), 400);

  /* A fresh sign-in with the right verifier gets a session, once. */
  g_autofree char *cb2 = begin(curl, "dave", query);
  w = web(curl, cb2, NULL);
  ck_assert_int_eq(w.status, 302);
  g_autofree char *code2 = query_param(w.location, "code");
  web_clear(&w);
  g_autofree char *right2 = g_strdup_printf("{\"code\":\"%s\",\"code_verifier\":\"%s\"}", code2,
                                            verifier);
  ck_assert_int_eq(sfx_call("POST", "/api/v1/sso/exchange", NULL, right2, &ans), 200);
  const char *token = sfx_str(ans, "token");
  ck_assert_ptr_nonnull(token);
  JsonNode *me = NULL;
  ck_assert_int_eq(sfx_call("GET", "/api/v1/me", token, NULL, &me), 200);
  ck_assert_str_eq(sfx_str(me, "email"), "dave@idp.test");
  json_node_unref(me);
  json_node_unref(ans);
  ck_assert_int_eq(sfx_call("POST", "/api/v1/sso/exchange", NULL, right2, NULL), 400);
  g_autofree char *audit = audit_text();
  ck_assert_msg(strstr(audit, "sso.login|dave@idp.test|desktop"), "no sso.login: %s", audit);
  ck_assert_msg(strstr(audit, "sso.failed||exchange: code_verifier"), "no sso.failed: %s",
                audit);
  curl_easy_cleanup(curl);
  g_string_free(kcps_answers, TRUE);
}
END_TEST

/* The provider's key set without the token's kid is fetched once more
 * (a rotation); when it still lacks it, the sign-in fails naming kid. */
START_TEST(test_flow_key_rotation)
{
  kcps_answers = g_string_new(NULL);
  configure_sso();
  CURL *curl = curl_easy_init();
  g_autofree char *stale = g_strdup_printf("https://127.0.0.1:%d/test/stale-jwks", provider_port);

  g_autofree char *cb1 = begin(curl, "frank", NULL);
  web_t w = web(curl, stale, "x");
  web_clear(&w);
  w = web(curl, cb1, NULL);
  ck_assert_msg(w.status == 200, "one stale key set: got %ld %s, expected 200", w.status,
                w.body->str);
  web_clear(&w);

  g_autofree char *cb2 = begin(curl, "frank", NULL);
  for (int i = 0; i < 2; i++) {
    w = web(curl, stale, "x");
    web_clear(&w);
  }
  w = web(curl, cb2, NULL);
  ck_assert_msg(w.status == 401 && strstr(w.body->str, "\"step\":\"kid\""),
                "two stale key sets: got %ld %s, expected 401 step kid", w.status, w.body->str);
  web_clear(&w);
  curl_easy_cleanup(curl);
  g_string_free(kcps_answers, TRUE);
}
END_TEST

/* The provider insists on PKCE, and the code it gives KCPS is bound to
 * KCPS's verifier: without it (or without the secret) it is worthless. */
START_TEST(test_flow_pkce)
{
  kcps_answers = g_string_new(NULL);
  configure_sso();
  CURL *curl = curl_easy_init();
  g_autofree char *cb = g_strconcat(kcps_server_get_url(sfx.server), "/api/v1/sso/callback", NULL);
  g_autofree char *e_cb = g_uri_escape_string(cb, NULL, FALSE);

  /* An authorization request without code_challenge is refused. */
  g_autofree char *no_pkce = g_strdup_printf(
      "https://127.0.0.1:%d/auth?client_id=" CLIENT_ID "&response_type=code&scope=openid"
      "&redirect_uri=%s&state=s1&nonce=n1", provider_port, e_cb);
  web_t w = web(curl, no_pkce, NULL);
  ck_assert_msg(w.location && strstr(w.location, "error=invalid_request") &&
                    !strstr(w.location, "code="),
                "no PKCE: got %ld to %s, expected an invalid_request error", w.status,
                w.location ? w.location : "-");
  web_clear(&w);

  /* A code meant for KCPS, redeemed without the verifier: refused. */
  g_autofree char *url = begin(curl, "erin", NULL);
  g_autofree char *code = query_param(url, "code");
  g_autofree char *token_url = g_strdup_printf("https://127.0.0.1:%d/token", provider_port);
  g_autofree char *form = g_strdup_printf("grant_type=authorization_code&code=%s&redirect_uri=%s",
                                          code, e_cb);
  curl_easy_setopt(curl, CURLOPT_USERNAME, CLIENT_ID);
  curl_easy_setopt(curl, CURLOPT_PASSWORD, client_secret);
  w = web(curl, token_url, form);
  ck_assert_msg(w.status == 400 && strstr(w.body->str, "invalid_grant"),
                "token without verifier: got %ld %s, expected 400 invalid_grant", w.status,
                w.body->str);
  web_clear(&w);
  curl_easy_setopt(curl, CURLOPT_USERNAME, NULL);
  curl_easy_setopt(curl, CURLOPT_PASSWORD, NULL);

  /* The provider refusing the sign-in (error in the callback) is named. */
  g_autofree char *org = sfx_org_public_id("Customer A");
  g_autofree char *start = g_strdup_printf("%s/api/v1/sso/%s/start",
                                           kcps_server_get_url(sfx.server), org);
  w = web(curl, start, NULL);
  g_autofree char *state = query_param(w.location, "state");
  web_clear(&w);
  g_autofree char *denied = g_strdup_printf("%s?error=access_denied&state=%s", cb, state);
  w = web(curl, denied, NULL);
  ck_assert_msg(w.status == 401 && strstr(w.body->str, "access_denied"),
                "provider refusal: got %ld %s", w.status, w.body->str);
  web_clear(&w);
  curl_easy_cleanup(curl);
  g_string_free(kcps_answers, TRUE);
}
END_TEST

/* Discovery failures name the step: an issuer the provider does not
 * answer for, and a provider whose certificate KCPS does not trust. */
START_TEST(test_flow_discovery)
{
  kcps_answers = g_string_new(NULL);
  g_autofree char *admin = sfx_login("admin@a.test", sfx.admin_pw);
  g_autofree char *org = sfx_org_public_id("Customer A");
  char *body = g_strdup_printf(
      "{\"preset\":\"generic\",\"issuer\":\"https://127.0.0.1:%d/other\",\"client_id\":\"x\","
      "\"client_secret\":\"y\"}", provider_port);
  put_sso(org, admin, body, 200, NULL);
  g_autofree char *start = g_strdup_printf("/api/v1/sso/%s/start", org);
  JsonNode *ans = NULL;
  ck_assert_int_eq(sfx_call("GET", start, NULL, NULL, &ans), 502);
  ck_assert_str_eq(sfx_str(ans, "step"), "discovery");
  json_node_unref(ans);

  /* The provider's own discovery names "https://127.0.0.1:PORT", not this. */
  g_free(body);
  body = g_strdup_printf(
      "{\"preset\":\"generic\",\"issuer\":\"https://127.0.0.1:%d/\",\"client_id\":\"x\","
      "\"client_secret\":\"y\"}", provider_port);
  put_sso(org, admin, body, 200, NULL);
  ck_assert_int_eq(sfx_call("GET", start, NULL, NULL, &ans), 502);
  ck_assert_str_eq(sfx_str(ans, "step"), "discovery");
  ck_assert_msg(strstr(sfx_str(ans, "message"), "another issuer"), "message: %s",
                sfx_str(ans, "message"));
  json_node_unref(ans);

  configure_sso();
  sfx.config.oidc_ca_file = NULL;
  sfx_restart();
  ck_assert_int_eq(sfx_call("GET", start, NULL, NULL, &ans), 502);
  ck_assert_str_eq(sfx_str(ans, "step"), "discovery");
  json_node_unref(ans);
  g_autofree char *audit = audit_text();
  ck_assert_msg(strstr(audit, "sso.failed||discovery:"), "no sso.failed: %s", audit);
  g_free(body);
  g_string_free(kcps_answers, TRUE);
}
END_TEST

/* Installs the provider with tests/oidc/setup.sh into the build dir. */
static void
install_provider(void)
{
  g_autofree char *exe = g_file_read_link("/proc/self/exe", NULL);
  g_autofree char *tests_dir = exe ? g_path_get_dirname(exe) : NULL;
  g_autofree char *build = tests_dir ? g_path_get_dirname(tests_dir) : NULL;
  g_autofree char *info_path = build ? g_build_filename(build, "meson-info", "meson-info.json",
                                                        NULL)
                                     : NULL;
  g_autofree char *info = NULL;
  if (!info_path || !g_file_get_contents(info_path, &info, NULL, NULL)) {
    provider_missing = g_strdup("cannot find the build's meson-info.json");
    return;
  }
  g_autoptr(JsonNode) root = json_from_string(info, NULL);
  JsonNode *dirs = sfx_member(root, "directories");
  const char *source = sfx_str(dirs, "source");
  if (!source) {
    provider_missing = g_strdup("meson-info.json names no source folder");
    return;
  }
  g_autofree char *dest = g_build_filename(build, "tests", "oidc-provider", NULL);
  g_autofree char *script = g_build_filename(source, "tests", "oidc", "setup.sh", NULL);
  const char *argv[] = {"/bin/sh", script, dest, NULL};
  g_autofree char *err = NULL;
  int status = 0;
  g_autoptr(GError) error = NULL;
  if (!g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL, NULL,
                    &err, &status, &error) ||
      !g_spawn_check_wait_status(status, NULL)) {
    /* Check's messages are bounded: keep the end of the output, where
     * apt-get and npm say what went wrong. */
    const char *why = error ? error->message : (err ? err : "");
    size_t len = strlen(why);
    provider_missing = g_strdup_printf("%s failed: %s%s", script, len > 2000 ? "..." : "",
                                       len > 2000 ? why + len - 2000 : why);
    return;
  }
  provider_dir = g_steal_pointer(&dest);
}

int
main(void)
{
  server_log = g_string_new(NULL);
  g_log_set_writer_func(log_writer, NULL, NULL);
  rsa_key = EVP_RSA_gen(2048);
  rsa_small = EVP_RSA_gen(1024);
  ec_key = EVP_EC_gen("P-256");
  curl_global_init(CURL_GLOBAL_DEFAULT);
  install_provider();

  Suite *s = suite_create("server-oidc");
  TCase *tc = tcase_create("verifier");
  tcase_add_test(tc, test_verify_good);
  tcase_add_test(tc, test_verify_refused);
  tcase_add_test(tc, test_discovery_parse);
  suite_add_tcase(s, tc);

  tc = tcase_create("config");
  tcase_add_checked_fixture(tc, sfx_setup, sfx_teardown);
  tcase_add_test(tc, test_config_routes);
  tcase_add_test(tc, test_config_access);
  tcase_add_test(tc, test_config_bad_input);
  tcase_add_test(tc, test_lookup);
  tcase_add_test(tc, test_start_bad_input);
  suite_add_tcase(s, tc);

  tc = tcase_create("provider");
  tcase_add_checked_fixture(tc, flow_setup, flow_teardown);
  tcase_set_timeout(tc, 240);
  tcase_add_test(tc, test_flow_web);
  tcase_add_test(tc, test_flow_desktop);
  tcase_add_test(tc, test_flow_pkce);
  tcase_add_test(tc, test_flow_key_rotation);
  tcase_add_test(tc, test_flow_discovery);
  suite_add_tcase(s, tc);

  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  EVP_PKEY_free(rsa_key);
  EVP_PKEY_free(rsa_small);
  EVP_PKEY_free(ec_key);
  return failed ? 1 : 0;
}
