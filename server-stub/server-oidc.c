/* Single sign-on (white paper 4.7): OpenID Connect authorization code flow
 * with PKCE (S256) per customer organization. The organization's admin
 * configures its provider (generic, Microsoft Entra ID or Google
 * Workspace); users sign in at the provider, KCPS sees only the code and
 * the signed ID token, never their credentials. docs/api.md 1.6
 * describes the routes and the flow. */
#include "server-private.h"
#include "server-oidc.h"

#include "common/crypto.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define STATE_TTL 600      /* a sign-in must come back within 10 minutes */
#define CODE_TTL 120       /* the one-time code of a desktop client */
#define MAX_PENDING 10000  /* unanswered sign-ins kept at most (all organizations) */
#define MAX_ISSUER 512
#define MAX_CLIENT_ID 255
#define MAX_CLIENT_SECRET 512
#define MAX_CLIENT_REDIRECT 512
#define MAX_CODE 4096
#define MAX_STATE 128
#define MAX_LOGIN_HINT 254
#define SEAL_KEY_FILE "oidc-seal-key"
#define SCOPE "openid email profile"

const char kcps__server_schema_oidc[] =
  /* One provider per customer organization; the client secret sealed. */
  "CREATE TABLE oidc_configs ("
  "  org_id INTEGER PRIMARY KEY REFERENCES orgs(id) ON DELETE CASCADE,"
  "  preset TEXT NOT NULL CHECK (preset IN ('generic', 'entra', 'google')),"
  "  issuer TEXT NOT NULL,"
  "  client_id TEXT NOT NULL,"
  "  secret_sealed TEXT NOT NULL,"
  "  tenant TEXT,"
  "  domain TEXT,"
  "  updated INTEGER NOT NULL);"
  /* Sign-ins under way: the state's hash, what the callback needs. */
  "CREATE TABLE oidc_states ("
  "  state_hash TEXT PRIMARY KEY,"
  "  org_id INTEGER NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,"
  "  issuer TEXT NOT NULL,"
  "  client_id TEXT NOT NULL,"
  "  nonce TEXT NOT NULL,"
  "  verifier_sealed TEXT NOT NULL,"
  "  client_redirect TEXT,"
  "  client_challenge TEXT,"
  "  expires INTEGER NOT NULL);"
  "CREATE INDEX oidc_states_expires ON oidc_states(expires);"
  /* Which provider account is which KCPS user. */
  "CREATE TABLE oidc_identities ("
  "  org_id INTEGER NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,"
  "  issuer TEXT NOT NULL,"
  "  sub TEXT NOT NULL,"
  "  user_id INTEGER NOT NULL UNIQUE REFERENCES users(id) ON DELETE CASCADE,"
  "  created INTEGER NOT NULL,"
  "  PRIMARY KEY (org_id, issuer, sub));"
  /* One-time codes a desktop client trades for its session. */
  "CREATE TABLE oidc_codes ("
  "  code_hash TEXT PRIMARY KEY,"
  "  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
  "  challenge TEXT NOT NULL,"
  "  expires INTEGER NOT NULL);";

/* Email domains look up their organization (GET /api/v1/sso/lookup). */
const char kcps__server_schema_oidc_domain[] =
  "CREATE INDEX oidc_configs_domain ON oidc_configs(domain);";

/* Small helpers ---------------------------------------------------------- */

static void
add_member(JsonBuilder *b, const char *name, const char *value)
{
  json_builder_set_member_name(b, name);
  if (value)
    json_builder_add_string_value(b, value);
  else
    json_builder_add_null_value(b);
}

static bool
bad(GError **error, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

static bool
bad(GError **error, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  g_autofree char *msg = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  g_set_error_literal(error, KCPS_SERVER_ERROR, KCPS_SERVER_ERROR_BAD_REQUEST, msg);
  return false;
}

/* Printable ASCII without spaces, 1..max long. */
static bool
is_token_text(const char *s, size_t max)
{
  size_t n = s ? strlen(s) : 0;
  if (n == 0 || n > max)
    return false;
  for (const char *p = s; *p; p++)
    if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
      return false;
  return true;
}

/* A copy of untrusted text fit for the audit log and answers: printable
 * ASCII only, at most 120 characters. */
static char *
clean_text(const char *s)
{
  GString *out = g_string_new(NULL);
  for (const char *p = s ? s : ""; *p && out->len < 120; p++)
    g_string_append_c(out, (*p >= 0x20 && *p < 0x7f) ? *p : '?');
  return g_string_free(out, FALSE);
}

/* The base64url SHA-256 of text (PKCE S256). */
static char *
s256(const char *text)
{
  guchar md[32];
  unsigned len = 0;
  EVP_Digest(text, strlen(text), md, &len, EVP_sha256(), NULL);
  return kcps_base64url_encode(md, sizeof md);
}

static char *
callback_url(kcps_server_t *server)
{
  return g_strconcat(kcps_server_get_url(server), "/api/v1/sso/callback", NULL);
}

/* Secrets are sealed under DATA/oidc-seal-key (server-seal.c) ------------ */

static void
free_secret(char *s)
{
  if (s) {
    OPENSSL_cleanse(s, strlen(s));
    g_free(s);
  }
}

/* Talking to the provider (never under server->lock) --------------------- */

typedef struct {
  GByteArray *buf;
  bool too_big;
} sink_t;

static size_t
sink_write(char *data, size_t size, size_t n, void *user)
{
  sink_t *sink = user;
  size_t len = size * n;
  if (sink->buf->len + len > KCPS_OIDC_MAX_DOCUMENT) {
    sink->too_big = true;
    return 0;
  }
  g_byte_array_append(sink->buf, (const guint8 *)data, (guint)len);
  return len;
}

/* GET url (form NULL) or POST form to it, over https only, TLS 1.2+ with
 * verification (system store plus server->oidc_ca_file), no redirects.
 * The body (NUL-terminated) goes to *body; false + message on transport
 * failure. basic: a whole "Basic ..." Authorization value or NULL. */
static bool
provider_call(kcps_server_t *server, const char *url, const char *form, const char *basic,
              long *status, GByteArray **body, GError **error)
{
  sink_t sink = {g_byte_array_new(), false};
  CURL *curl = curl_easy_init();
  if (!curl) {
    g_byte_array_unref(sink.buf);
    g_set_error_literal(error, KCPS_OIDC_ERROR, 0, "libcurl did not start");
    return false;
  }
  struct curl_slist *headers = curl_slist_append(NULL, "Accept: application/json");
  g_autofree char *auth = basic ? g_strconcat("Authorization: ", basic, NULL) : NULL;
  if (auth)
    headers = curl_slist_append(headers, auth);
  curl_easy_setopt(curl, CURLOPT_URL, url);
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "https");
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(curl, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
  curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
  if (server->oidc_ca_file) {
    /* An extra CA: the file plus the system's folder of CAs. */
    curl_version_info_data *info = curl_version_info(CURLVERSION_NOW);
    curl_easy_setopt(curl, CURLOPT_CAINFO, server->oidc_ca_file);
    curl_easy_setopt(curl, CURLOPT_CAPATH,
                     info && info->capath ? info->capath : "/etc/ssl/certs");
  }
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, 15L);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 10L);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, sink_write);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &sink);
  curl_easy_setopt(curl, CURLOPT_USERAGENT, "kcps-server");
  if (form)
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, form);
  CURLcode rc = curl_easy_perform(curl);
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, status);
  curl_easy_cleanup(curl);
  curl_slist_free_all(headers);
  if (auth)
    OPENSSL_cleanse(auth, strlen(auth));
  if (rc != CURLE_OK) {
    g_set_error(error, KCPS_OIDC_ERROR, 0, "%s",
                sink.too_big ? "the provider's answer is too large" : curl_easy_strerror(rc));
    g_byte_array_unref(sink.buf);
    return false;
  }
  g_byte_array_append(sink.buf, (const guint8 *)"", 1);
  *body = sink.buf;
  return true;
}

/* Fetches and checks the discovery document of issuer. */
static bool
discover(kcps_server_t *server, const char *issuer, kcps_oidc_discovery_t *d, GError **error)
{
  g_autofree char *url = g_strconcat(issuer, g_str_has_suffix(issuer, "/") ? "" : "/",
                                     ".well-known/openid-configuration", NULL);
  long status = 0;
  GByteArray *body = NULL;
  g_autoptr(GError) local = NULL;
  if (!provider_call(server, url, NULL, NULL, &status, &body, &local)) {
    g_set_error(error, KCPS_OIDC_ERROR, KCPS_OIDC_ERROR_DISCOVERY,
                "the provider's discovery document could not be fetched: %s", local->message);
    return false;
  }
  bool ok = false;
  if (status != 200)
    g_set_error(error, KCPS_OIDC_ERROR, KCPS_OIDC_ERROR_DISCOVERY,
                "the provider answered %ld for its discovery document", status);
  else
    ok = kcps__oidc_parse_discovery((const char *)body->data, body->len - 1, issuer, d, error);
  g_byte_array_unref(body);
  return ok;
}

/* Answers a failure of the flow: {"error":"sso_failed","step","message"}. */
static void
respond_step(kcps_http_req_t *req, unsigned status, const char *step, const char *message)
{
  g_autoptr(JsonBuilder) b = json_builder_new();
  json_builder_begin_object(b);
  add_member(b, "error", status == 502 ? "sso_provider_failed" : "sso_failed");
  add_member(b, "step", step);
  g_autofree char *msg = g_strdup_printf("%s: %s", step, message);
  add_member(b, "message", msg);
  json_builder_end_object(b);
  g_autoptr(JsonNode) root = json_builder_get_root(b);
  kcps_http_respond_json(req, status, root);
}

/* The configuration routes ---------------------------------------------- */

typedef struct {
  const char *preset;
  char *issuer;        /* owned */
  const char *client_id;
  const char *client_secret; /* NULL: keep the stored one */
  char *tenant;        /* owned, lower case */
  char *domain;        /* owned, lower case */
} sso_config_t;

static void
sso_config_clear(sso_config_t *c)
{
  g_free(c->issuer);
  g_free(c->tenant);
  g_free(c->domain);
}

static bool
is_uuid(const char *s)
{
  if (!s || strlen(s) != 36)
    return false;
  for (int i = 0; i < 36; i++) {
    bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? s[i] != '-' : !g_ascii_isxdigit(s[i]))
      return false;
  }
  return true;
}

static bool
is_domain(const char *s)
{
  size_t n = s ? strlen(s) : 0;
  if (n < 3 || n > 253 || !strchr(s, '.') || s[0] == '.' || s[0] == '-' || s[n - 1] == '.')
    return false;
  for (const char *p = s; *p; p++)
    if (!g_ascii_isalnum(*p) && *p != '-' && *p != '.')
      return false;
  return strstr(s, "..") == NULL;
}

/* An https issuer URL: no user, query or fragment. */
static bool
is_issuer(const char *s)
{
  if (!is_token_text(s, MAX_ISSUER) || !g_str_has_prefix(s, "https://"))
    return false;
  const char *host = s + 8;
  size_t hlen = strcspn(host, "/");
  if (hlen == 0 || memchr(host, '@', hlen))
    return false;
  return !strpbrk(s, "?#\\\"<>");
}

/* The string member name of obj into *out (NULL when absent). False +
 * BAD_REQUEST when it is there but not a string. */
static bool
opt_string(JsonObject *obj, const char *name, const char **out, GError **error)
{
  *out = NULL;
  JsonNode *n = json_object_get_member(obj, name);
  if (!n)
    return true;
  if (!JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_STRING)
    return bad(error, "field \"%s\" must be a string", name);
  *out = json_node_get_string(n);
  return true;
}

/* Checks a PUT body field by field. had_config: a secret is stored already. */
static bool
check_config(JsonObject *obj, bool had_config, sso_config_t *out, GError **error)
{
  static const char *const known[] = {"preset", "issuer", "client_id", "client_secret",
                                      "tenant", "domain"};
  memset(out, 0, sizeof *out);
  g_autoptr(GList) members = json_object_get_members(obj);
  for (GList *l = members; l; l = l->next) {
    bool ok = false;
    for (size_t i = 0; i < G_N_ELEMENTS(known) && !ok; i++)
      ok = strcmp(l->data, known[i]) == 0;
    if (!ok) {
      g_autofree char *name = clean_text(l->data);
      return bad(error, "unknown field \"%s\"", name);
    }
  }
  const char *preset, *issuer, *client_id, *secret, *tenant, *domain;
  if (!opt_string(obj, "preset", &preset, error) || !opt_string(obj, "issuer", &issuer, error) ||
      !opt_string(obj, "client_id", &client_id, error) ||
      !opt_string(obj, "client_secret", &secret, error) ||
      !opt_string(obj, "tenant", &tenant, error) || !opt_string(obj, "domain", &domain, error))
    return false;

  if (!preset)
    return bad(error, "missing field \"preset\"");
  bool generic = strcmp(preset, "generic") == 0, entra = strcmp(preset, "entra") == 0,
       google = strcmp(preset, "google") == 0;
  if (!generic && !entra && !google)
    return bad(error, "field \"preset\" must be \"generic\", \"entra\" or \"google\"");
  out->preset = generic ? "generic" : entra ? "entra" : "google";

  if (tenant && !entra)
    return bad(error, "field \"tenant\" is only for preset \"entra\"");
  /* domain: the email domain whose users sign in here ("Sign in with
   * Microsoft/Google" finds the organization by it); for google also the
   * Workspace domain the ID token's hd claim must name. */
  if (domain && !is_domain(domain))
    return bad(error, "field \"domain\" must be a domain name such as example.com");
  if (domain)
    out->domain = g_ascii_strdown(domain, -1);
  if (entra) {
    if (!tenant)
      return bad(error, "missing field \"tenant\" (the Entra ID directory (tenant) id)");
    if (!is_uuid(tenant))
      return bad(error, "field \"tenant\" must be the directory (tenant) id, a UUID");
    out->tenant = g_ascii_strdown(tenant, -1);
    out->issuer = g_strdup_printf("https://login.microsoftonline.com/%s/v2.0", out->tenant);
  } else if (google) {
    if (!domain)
      return bad(error, "missing field \"domain\" (the Google Workspace domain)");
    out->issuer = g_strdup("https://accounts.google.com");
  }
  if (generic) {
    if (!issuer)
      return bad(error, "missing field \"issuer\"");
    if (!is_issuer(issuer))
      return bad(error, "field \"issuer\" must be an https URL without user, query or fragment"
                        " (at most %d characters)", MAX_ISSUER);
    out->issuer = g_strdup(issuer);
  } else if (issuer && strcmp(issuer, out->issuer) != 0) {
    return bad(error, "field \"issuer\" is set by preset \"%s\" (%s); leave it out", preset,
               out->issuer);
  }

  if (!client_id)
    return bad(error, "missing field \"client_id\"");
  if (!is_token_text(client_id, MAX_CLIENT_ID))
    return bad(error, "field \"client_id\" must be 1 to %d printable characters without spaces",
               MAX_CLIENT_ID);
  out->client_id = client_id;
  if (!secret && !had_config)
    return bad(error, "missing field \"client_secret\"");
  if (secret && !is_token_text(secret, MAX_CLIENT_SECRET))
    return bad(error,
               "field \"client_secret\" must be 1 to %d printable characters without spaces",
               MAX_CLIENT_SECRET);
  out->client_secret = secret;
  return true;
}

/* The stored configuration of org as the answer of GET (never the secret),
 * or NULL when there is none. Caller holds the lock. */
static JsonNode *
config_json_locked(kcps_server_t *server, gint64 org, const char *org_public_id,
                   GError **error)
{
  sqlite3_stmt *stmt = kcps__server_db_prepare(
      server, "SELECT preset, issuer, client_id, tenant, domain, updated FROM oidc_configs"
              " WHERE org_id = ?", error);
  if (!stmt)
    return NULL;
  sqlite3_bind_int64(stmt, 1, org);
  JsonNode *root = NULL;
  if (kcps__server_db_step(server, stmt, error) == SQLITE_ROW) {
    g_autoptr(JsonBuilder) b = json_builder_new();
    json_builder_begin_object(b);
    add_member(b, "preset", (const char *)sqlite3_column_text(stmt, 0));
    add_member(b, "issuer", (const char *)sqlite3_column_text(stmt, 1));
    add_member(b, "client_id", (const char *)sqlite3_column_text(stmt, 2));
    if (sqlite3_column_type(stmt, 3) != SQLITE_NULL)
      add_member(b, "tenant", (const char *)sqlite3_column_text(stmt, 3));
    if (sqlite3_column_type(stmt, 4) != SQLITE_NULL)
      add_member(b, "domain", (const char *)sqlite3_column_text(stmt, 4));
    json_builder_set_member_name(b, "client_secret_set");
    json_builder_add_boolean_value(b, TRUE);
    g_autofree char *cb = callback_url(server);
    add_member(b, "redirect_uri", cb);
    g_autofree char *start =
        g_strdup_printf("%s/api/v1/sso/%s/start", kcps_server_get_url(server), org_public_id);
    add_member(b, "start_url", start);
    json_builder_set_member_name(b, "updated");
    json_builder_add_int_value(b, sqlite3_column_int64(stmt, 5));
    json_builder_end_object(b);
    root = json_builder_get_root(b);
  }
  sqlite3_finalize(stmt);
  return root;
}

static void
route_sso_get(kcps_server_t *server, kcps_http_req_t *req, const kcps_server_session_t *session,
              const char *id)
{
  gint64 org = kcps__server_require(server, req, session, KCPS_DATA_POLICY, false, id);
  if (org <= 0)
    return;
  g_autoptr(GError) error = NULL;
  g_mutex_lock(&server->lock);
  g_autoptr(JsonNode) root = config_json_locked(server, org, id, &error);
  g_mutex_unlock(&server->lock);
  if (error)
    kcps__server_respond_internal(req, error);
  else if (!root)
    kcps_http_respond_error(req, 404, "not_found", "this organization has no single sign-on");
  else
    kcps_http_respond_json(req, 200, root);
}

static bool
has_config_locked(kcps_server_t *server, gint64 org, GError **error)
{
  sqlite3_stmt *stmt =
      kcps__server_db_prepare(server, "SELECT 1 FROM oidc_configs WHERE org_id = ?", error);
  if (!stmt)
    return false;
  sqlite3_bind_int64(stmt, 1, org);
  bool found = kcps__server_db_step(server, stmt, error) == SQLITE_ROW;
  sqlite3_finalize(stmt);
  return found;
}

/* Is domain free for org (no other organization signs in by it)? False
 * with *error on a database error. Caller holds the lock. */
static bool
domain_free_locked(kcps_server_t *server, gint64 org, const char *domain, bool *taken,
                   GError **error)
{
  sqlite3_stmt *stmt = kcps__server_db_prepare(
      server, "SELECT 1 FROM oidc_configs WHERE domain = ? AND org_id <> ?", error);
  if (!stmt)
    return false;
  sqlite3_bind_text(stmt, 1, domain, -1, SQLITE_STATIC);
  sqlite3_bind_int64(stmt, 2, org);
  int rc = kcps__server_db_step(server, stmt, error);
  sqlite3_finalize(stmt);
  *taken = rc == SQLITE_ROW;
  return rc == SQLITE_ROW || rc == SQLITE_DONE;
}

static void
route_sso_put(kcps_server_t *server, kcps_http_req_t *req, const kcps_server_session_t *session,
              const char *id)
{
  gint64 org = kcps__server_require(server, req, session, KCPS_DATA_POLICY, true, id);
  if (org <= 0)
    return;
  JsonObject *obj = kcps__server_req_object(req);
  if (!obj)
    return;

  g_autoptr(GError) error = NULL;
  g_mutex_lock(&server->lock);
  g_autofree char *type = kcps__server_org_type_locked(server, org);
  bool had = has_config_locked(server, org, &error);
  g_mutex_unlock(&server->lock);
  if (error) {
    kcps__server_respond_internal(req, error);
    return;
  }
  if (g_strcmp0(type, "customer") != 0) {
    kcps_http_respond_error(req, 400, "bad_request",
                            "single sign-on is configured on customer organizations only");
    return;
  }
  sso_config_t in;
  if (!check_config(obj, had, &in, &error)) {
    sso_config_clear(&in);
    kcps__server_respond_bad(req, error);
    return;
  }

  /* Store in one transaction; a new secret is sealed, else the old kept. */
  g_autoptr(JsonNode) root = NULL;
  guchar key[32];
  g_autofree char *aad = g_strdup_printf("kcps-oidc-secret:%s", id);
  bool missing_secret = false, domain_taken = false;
  g_mutex_lock(&server->lock);
  g_autofree char *sealed = NULL;
  bool ok = !in.domain || domain_free_locked(server, org, in.domain, &domain_taken, &error);
  ok = ok && !domain_taken;
  ok = ok && (!in.client_secret ||
            (kcps__server_key_file(server, SEAL_KEY_FILE, key, &error) &&
             (sealed = kcps__server_seal(key, aad, in.client_secret, &error)) != NULL));
  OPENSSL_cleanse(key, sizeof key);
  if (ok)
    ok = kcps__server_db_begin(server, &error);
  if (ok) {
    /* Without a new secret only the other columns change. */
    sqlite3_stmt *stmt = kcps__server_db_prepare(
        server,
        sealed ? "INSERT INTO oidc_configs (org_id, preset, issuer, client_id, secret_sealed,"
                 " tenant, domain, updated) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
                 " ON CONFLICT (org_id) DO UPDATE SET preset = ?2, issuer = ?3,"
                 " client_id = ?4, secret_sealed = ?5, tenant = ?6, domain = ?7, updated = ?8"
               : "UPDATE oidc_configs SET preset = ?2, issuer = ?3, client_id = ?4,"
                 " tenant = ?6, domain = ?7, updated = ?8 WHERE org_id = ?1",
        &error);
    if (stmt) {
      sqlite3_bind_int64(stmt, 1, org);
      sqlite3_bind_text(stmt, 2, in.preset, -1, SQLITE_STATIC);
      sqlite3_bind_text(stmt, 3, in.issuer, -1, SQLITE_STATIC);
      sqlite3_bind_text(stmt, 4, in.client_id, -1, SQLITE_STATIC);
      if (sealed)
        sqlite3_bind_text(stmt, 5, sealed, -1, SQLITE_STATIC);
      sqlite3_bind_text(stmt, 6, in.tenant, -1, SQLITE_STATIC);
      sqlite3_bind_text(stmt, 7, in.domain, -1, SQLITE_STATIC);
      sqlite3_bind_int64(stmt, 8, kcps__server_now());
      ok = kcps__server_db_step(server, stmt, &error) == SQLITE_DONE;
      if (ok && sqlite3_changes(server->db) == 0) {
        /* Removed since the check above: a secret is needed again. */
        ok = false;
        missing_secret = true;
      }
    } else {
      ok = false;
    }
    sqlite3_finalize(stmt);
    /* Sign-ins begun under the old settings are void. */
    stmt = ok ? kcps__server_db_prepare(server, "DELETE FROM oidc_states WHERE org_id = ?",
                                        &error)
              : NULL;
    if (stmt) {
      sqlite3_bind_int64(stmt, 1, org);
      ok = kcps__server_db_step(server, stmt, &error) == SQLITE_DONE;
    } else {
      ok = false;
    }
    sqlite3_finalize(stmt);
    if (ok) {
      g_autofree char *detail = g_strdup_printf("sso %s %s%s%s", in.preset, in.issuer,
                                                in.domain ? " domain " : "",
                                                in.domain ? in.domain : "");
      kcps__server_audit_locked(server, org, session->user_id, "policy.changed", "sso",
                                session->source, detail);
      ok = kcps__server_db_commit(server, &error);
    }
    if (!ok)
      kcps__server_db_rollback(server);
  }
  if (ok)
    root = config_json_locked(server, org, id, &error);
  g_mutex_unlock(&server->lock);
  g_autofree char *in_domain = g_strdup(in.domain);
  sso_config_clear(&in);
  if (domain_taken)
    kcps_http_respond_error(req, 409, "conflict",
                            "the domain %s is used for single sign-on by another organization",
                            in_domain);
  else if (missing_secret)
    kcps_http_respond_error(req, 400, "bad_request", "missing field \"client_secret\"");
  else if (!ok || !root)
    kcps__server_respond_internal(req, error);
  else
    kcps_http_respond_json(req, 200, root);
}

static void
route_sso_delete(kcps_server_t *server, kcps_http_req_t *req,
                 const kcps_server_session_t *session, const char *id)
{
  gint64 org = kcps__server_require(server, req, session, KCPS_DATA_POLICY, true, id);
  if (org <= 0)
    return;
  g_autoptr(GError) error = NULL;
  g_mutex_lock(&server->lock);
  int changed = 0;
  sqlite3_stmt *stmt =
      kcps__server_db_prepare(server, "DELETE FROM oidc_configs WHERE org_id = ?", &error);
  if (stmt) {
    sqlite3_bind_int64(stmt, 1, org);
    if (kcps__server_db_step(server, stmt, &error) == SQLITE_DONE)
      changed = sqlite3_changes(server->db);
  }
  sqlite3_finalize(stmt);
  if (changed > 0) {
    stmt = kcps__server_db_prepare(server, "DELETE FROM oidc_states WHERE org_id = ?", &error);
    if (stmt) {
      sqlite3_bind_int64(stmt, 1, org);
      kcps__server_db_step(server, stmt, &error);
    }
    sqlite3_finalize(stmt);
    kcps__server_audit_locked(server, org, session->user_id, "policy.changed", "sso",
                              session->source, "sso removed");
  }
  g_mutex_unlock(&server->lock);
  if (error)
    kcps__server_respond_internal(req, error);
  else if (changed == 0)
    kcps_http_respond_error(req, 404, "not_found", "this organization has no single sign-on");
  else
    kcps_http_respond_empty(req, 204);
}

/* The sign-in flow ------------------------------------------------------- */

/* The stored provider of an organization, secret still sealed. */
typedef struct {
  gint64 org;
  char *org_public_id;
  char *preset;
  char *issuer;
  char *client_id;
  char *secret_sealed;
  char *domain;
} provider_t;

static void
provider_clear(provider_t *p)
{
  g_free(p->org_public_id);
  g_free(p->preset);
  g_free(p->issuer);
  g_free(p->client_id);
  g_free(p->secret_sealed);
  g_free(p->domain);
}

/* Loads the provider of org (by id), false when none. Caller holds the lock. */
static bool
provider_load_locked(kcps_server_t *server, gint64 org, provider_t *p, GError **error)
{
  memset(p, 0, sizeof *p);
  sqlite3_stmt *stmt = kcps__server_db_prepare(
      server,
      "SELECT o.id, o.public_id, c.preset, c.issuer, c.client_id, c.secret_sealed, c.domain"
      " FROM oidc_configs c JOIN orgs o ON o.id = c.org_id WHERE c.org_id = ?"
      " AND o.type = 'customer'",
      error);
  if (!stmt)
    return false;
  sqlite3_bind_int64(stmt, 1, org);
  bool found = kcps__server_db_step(server, stmt, error) == SQLITE_ROW;
  if (found) {
    p->org = sqlite3_column_int64(stmt, 0);
    p->org_public_id = kcps__server_db_dup_text(stmt, 1);
    p->preset = kcps__server_db_dup_text(stmt, 2);
    p->issuer = kcps__server_db_dup_text(stmt, 3);
    p->client_id = kcps__server_db_dup_text(stmt, 4);
    p->secret_sealed = kcps__server_db_dup_text(stmt, 5);
    p->domain = kcps__server_db_dup_text(stmt, 6);
  }
  sqlite3_finalize(stmt);
  return found;
}

/* A desktop client's redirect (RFC 8252 section 7.3): http on the loopback
 * address with an explicit port, a path and an optional query. */
static bool
is_loopback_redirect(const char *s)
{
  if (!s || strlen(s) > MAX_CLIENT_REDIRECT)
    return false;
  const char *p;
  if (g_str_has_prefix(s, "http://127.0.0.1:"))
    p = s + strlen("http://127.0.0.1:");
  else if (g_str_has_prefix(s, "http://[::1]:"))
    p = s + strlen("http://[::1]:");
  else
    return false;
  unsigned port = 0, digits = 0;
  while (g_ascii_isdigit(*p) && digits < 6) {
    port = port * 10 + (unsigned)(*p++ - '0');
    digits++;
  }
  if (digits == 0 || port == 0 || port > 65535 || *p != '/')
    return false;
  for (; *p; p++)
    if (!g_ascii_isalnum(*p) && !strchr("-._~/?=&%", *p))
      return false;
  return true;
}

/* An email address as a login_hint: local@domain, printable, no spaces. */
static bool
is_login_hint(const char *s)
{
  const char *at = s ? strchr(s, '@') : NULL;
  return at && at != s && !strchr(at + 1, '@') && is_domain(at + 1) &&
         is_token_text(s, MAX_LOGIN_HINT) && !strpbrk(s, "\"<>\\");
}

static bool
is_challenge(const char *s)
{
  if (!s || strlen(s) != 43)
    return false;
  for (const char *p = s; *p; p++)
    if (!g_ascii_isalnum(*p) && *p != '-' && *p != '_')
      return false;
  return true;
}

static void
route_start(kcps_server_t *server, kcps_http_req_t *req, const kcps_server_session_t *session,
            const char *id)
{
  (void)session;
  const char *client_redirect = kcps_http_req_query(req, "redirect_uri");
  const char *client_challenge = kcps_http_req_query(req, "code_challenge");
  const char *method = kcps_http_req_query(req, "code_challenge_method");
  if (client_redirect && !is_loopback_redirect(client_redirect)) {
    kcps_http_respond_error(req, 400, "bad_request",
                            "redirect_uri must be http://127.0.0.1:PORT/... or "
                            "http://[::1]:PORT/... (at most %d characters)",
                            MAX_CLIENT_REDIRECT);
    return;
  }
  if (client_redirect && !is_challenge(client_challenge)) {
    kcps_http_respond_error(req, 400, "bad_request",
                            "code_challenge must be given with redirect_uri: the base64url "
                            "SHA-256 of the client's code_verifier (43 characters)");
    return;
  }
  if (!client_redirect && client_challenge) {
    kcps_http_respond_error(req, 400, "bad_request", "code_challenge needs redirect_uri");
    return;
  }
  if (method && strcmp(method, "S256") != 0) {
    kcps_http_respond_error(req, 400, "bad_request", "code_challenge_method must be S256");
    return;
  }
  /* login_hint: the address the user typed, passed on so the provider's
   * page starts with it (OpenID Connect Core 3.1.2.1). */
  const char *login_hint = kcps_http_req_query(req, "login_hint");
  if (login_hint && !is_login_hint(login_hint)) {
    kcps_http_respond_error(req, 400, "bad_request",
                            "login_hint must be an email address (at most %d characters)",
                            MAX_LOGIN_HINT);
    return;
  }

  g_autoptr(GError) error = NULL;
  provider_t p;
  g_mutex_lock(&server->lock);
  gint64 org = kcps__server_org_id_locked(server, id);
  bool found = org > 0 && provider_load_locked(server, org, &p, &error);
  g_mutex_unlock(&server->lock);
  if (error) {
    kcps__server_respond_internal(req, error);
    return;
  }
  if (!found) {
    kcps_http_respond_error(req, 404, "not_found", "no single sign-on for this organization");
    return;
  }

  kcps_oidc_discovery_t d;
  if (!discover(server, p.issuer, &d, &error)) {
    char source[64];
    kcps__server_req_source(req, source, sizeof source);
    g_autofree char *detail = g_strdup_printf("discovery: %s", error->message);
    kcps__server_audit(server, p.org, 0, "sso.failed", NULL, source, detail);
    respond_step(req, 502, "discovery", error->message);
    provider_clear(&p);
    return;
  }

  /* State, nonce and PKCE verifier: random; state kept hashed, verifier
   * sealed, for one use within STATE_TTL. */
  g_autofree char *state = kcps_crypto_random_token(32);
  g_autofree char *nonce = kcps_crypto_random_token(32);
  char *verifier = kcps_crypto_random_token(32);
  g_autofree char *challenge = verifier ? s256(verifier) : NULL;
  char state_hash[65];
  if (state)
    kcps_crypto_sha256_hex(state, strlen(state), state_hash);
  guchar key[32];
  g_autofree char *sealed = NULL;
  bool busy = false, ok = state && nonce && challenge;
  gint64 now = kcps__server_now();
  g_mutex_lock(&server->lock);
  if (ok)
    ok = kcps__server_key_file(server, SEAL_KEY_FILE, key, &error) &&
         (sealed = kcps__server_seal(key, "kcps-oidc-verifier", verifier, &error)) != NULL;
  OPENSSL_cleanse(key, sizeof key);
  sqlite3_stmt *stmt = ok ? kcps__server_db_prepare(
                                server, "DELETE FROM oidc_states WHERE expires <= ?", &error)
                          : NULL;
  if (stmt) {
    sqlite3_bind_int64(stmt, 1, now);
    ok = kcps__server_db_step(server, stmt, &error) == SQLITE_DONE;
  }
  sqlite3_finalize(stmt);
  stmt = ok ? kcps__server_db_prepare(server, "SELECT count(*) FROM oidc_states", &error) : NULL;
  if (stmt && kcps__server_db_step(server, stmt, &error) == SQLITE_ROW)
    busy = sqlite3_column_int64(stmt, 0) >= MAX_PENDING;
  sqlite3_finalize(stmt);
  stmt = ok && !busy ? kcps__server_db_prepare(
                           server,
                           "INSERT INTO oidc_states (state_hash, org_id, issuer, client_id,"
                           " nonce, verifier_sealed, client_redirect, client_challenge, expires)"
                           " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           &error)
                     : NULL;
  if (stmt) {
    sqlite3_bind_text(stmt, 1, state_hash, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 2, p.org);
    sqlite3_bind_text(stmt, 3, p.issuer, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 4, p.client_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 5, nonce, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 6, sealed, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 7, client_redirect, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 8, client_challenge, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 9, now + STATE_TTL);
    ok = kcps__server_db_step(server, stmt, &error) == SQLITE_DONE;
  }
  sqlite3_finalize(stmt);
  g_mutex_unlock(&server->lock);
  free_secret(verifier);

  if (busy) {
    kcps_http_respond_error(req, 503, "busy", "too many sign-ins under way; try again later");
  } else if (!ok) {
    kcps__server_respond_internal(req, error);
  } else {
    g_autofree char *cb = callback_url(server);
    g_autofree char *e_client = g_uri_escape_string(p.client_id, NULL, FALSE);
    g_autofree char *e_cb = g_uri_escape_string(cb, NULL, FALSE);
    GString *loc = g_string_new(d.authorization_endpoint);
    g_string_append_printf(loc,
                           "%sresponse_type=code&client_id=%s&redirect_uri=%s"
                           "&scope=openid%%20email%%20profile&state=%s&nonce=%s"
                           "&code_challenge=%s&code_challenge_method=S256",
                           strchr(d.authorization_endpoint, '?') ? "&" : "?", e_client, e_cb,
                           state, nonce, challenge);
    if (p.domain && strcmp(p.preset, "google") == 0)
      g_string_append_printf(loc, "&hd=%s", p.domain);
    if (login_hint) {
      g_autofree char *e_hint = g_uri_escape_string(login_hint, NULL, FALSE);
      g_string_append_printf(loc, "&login_hint=%s", e_hint);
    }
    kcps_http_req_add_header(req, "Location", loc->str);
    kcps_http_respond_empty(req, 302);
    g_string_free(loc, TRUE);
  }
  kcps__oidc_discovery_clear(&d);
  provider_clear(&p);
}

/* GET /api/v1/sso/lookup?domain=example.com: which organization signs in
 * users of this email domain, and with which provider ("Sign in with
 * Microsoft/Google" in the clients). Only the domain is sent, never the
 * whole address: nothing about any account is looked at or told. */
static void
route_lookup(kcps_server_t *server, kcps_http_req_t *req, const kcps_server_session_t *session,
             const char *id)
{
  (void)session;
  (void)id;
  const char *given = kcps_http_req_query(req, "domain");
  if (!given || !is_domain(given)) {
    kcps_http_respond_error(req, 400, "bad_request",
                            given ? "domain must be a domain name such as example.com"
                                  : "missing query parameter \"domain\"");
    return;
  }
  g_autofree char *domain = g_ascii_strdown(given, -1);
  g_autoptr(GError) error = NULL;
  g_autofree char *org = NULL, *preset = NULL;
  int rows = 0;
  g_mutex_lock(&server->lock);
  sqlite3_stmt *stmt = kcps__server_db_prepare(
      server,
      "SELECT o.public_id, c.preset FROM oidc_configs c JOIN orgs o ON o.id = c.org_id"
      " WHERE c.domain = ? LIMIT 2",
      &error);
  if (stmt) {
    sqlite3_bind_text(stmt, 1, domain, -1, SQLITE_STATIC);
    while (kcps__server_db_step(server, stmt, &error) == SQLITE_ROW) {
      if (rows++ == 0) {
        org = kcps__server_db_dup_text(stmt, 0);
        preset = kcps__server_db_dup_text(stmt, 1);
      }
    }
  }
  sqlite3_finalize(stmt);
  g_mutex_unlock(&server->lock);
  if (error) {
    kcps__server_respond_internal(req, error);
    return;
  }
  if (rows != 1) {
    /* rows == 2 only in a database from before domains were kept unique. */
    kcps_http_respond_error(req, 404, "not_found",
                            "no organization signs in users of %s with single sign-on", domain);
    return;
  }
  g_autoptr(JsonBuilder) b = json_builder_new();
  json_builder_begin_object(b);
  add_member(b, "domain", domain);
  add_member(b, "org", org);
  add_member(b, "preset", preset);
  g_autofree char *start =
      g_strdup_printf("%s/api/v1/sso/%s/start", kcps_server_get_url(server), org);
  add_member(b, "start_url", start);
  json_builder_end_object(b);
  g_autoptr(JsonNode) root = json_builder_get_root(b);
  kcps_http_respond_json(req, 200, root);
}

/* What a callback knows once its state was found. */
typedef struct {
  gint64 org;
  char *issuer;
  char *client_id;
  char *nonce;
  char *verifier_sealed;
  char *client_redirect;
  char *client_challenge;
  gint64 expires;
} pending_t;

static void
pending_clear(pending_t *s)
{
  g_free(s->issuer);
  g_free(s->client_id);
  g_free(s->nonce);
  g_free(s->verifier_sealed);
  g_free(s->client_redirect);
  g_free(s->client_challenge);
}

/* Takes the state row (single use: deleted whether it is still good or
 * not). False when unknown. Caller holds the lock. */
static bool
pending_take_locked(kcps_server_t *server, const char *state, pending_t *s, GError **error)
{
  memset(s, 0, sizeof *s);
  char hash[65];
  kcps_crypto_sha256_hex(state, strlen(state), hash);
  sqlite3_stmt *stmt = kcps__server_db_prepare(
      server,
      "DELETE FROM oidc_states WHERE state_hash = ? RETURNING org_id, issuer, client_id,"
      " nonce, verifier_sealed, client_redirect, client_challenge, expires",
      error);
  if (!stmt)
    return false;
  sqlite3_bind_text(stmt, 1, hash, -1, SQLITE_STATIC);
  bool found = kcps__server_db_step(server, stmt, error) == SQLITE_ROW;
  if (found) {
    s->org = sqlite3_column_int64(stmt, 0);
    s->issuer = kcps__server_db_dup_text(stmt, 1);
    s->client_id = kcps__server_db_dup_text(stmt, 2);
    s->nonce = kcps__server_db_dup_text(stmt, 3);
    s->verifier_sealed = kcps__server_db_dup_text(stmt, 4);
    s->client_redirect = kcps__server_db_dup_text(stmt, 5);
    s->client_challenge = kcps__server_db_dup_text(stmt, 6);
    s->expires = sqlite3_column_int64(stmt, 7);
    /* RETURNING rows are written when the statement is stepped to its end. */
    while (kcps__server_db_step(server, stmt, error) == SQLITE_ROW)
      ;
  }
  sqlite3_finalize(stmt);
  return found && !(error && *error);
}

/* Trades the code for tokens at the token endpoint; the ID token (g_free)
 * or NULL + message. */
static char *
exchange_code(kcps_server_t *server, const kcps_oidc_discovery_t *d, const char *client_id,
              const char *secret, const char *code, const char *verifier, GError **error)
{
  g_autofree char *cb = callback_url(server);
  g_autofree char *e_code = g_uri_escape_string(code, NULL, FALSE);
  g_autofree char *e_cb = g_uri_escape_string(cb, NULL, FALSE);
  char *form = g_strdup_printf("grant_type=authorization_code&code=%s&redirect_uri=%s"
                               "&code_verifier=%s",
                               e_code, e_cb, verifier);
  /* client_secret_basic: both form-encoded, then base64 (RFC 6749 2.3.1). */
  char *e_id = g_uri_escape_string(client_id, NULL, FALSE);
  char *e_secret = g_uri_escape_string(secret, NULL, FALSE);
  char *pair = g_strconcat(e_id, ":", e_secret, NULL);
  char *b64 = g_base64_encode((const guchar *)pair, strlen(pair));
  char *basic = g_strconcat("Basic ", b64, NULL);
  long status = 0;
  GByteArray *body = NULL;
  g_autoptr(GError) local = NULL;
  bool ok = provider_call(server, d->token_endpoint, form, basic, &status, &body, &local);
  free_secret(form);
  free_secret(e_id);
  free_secret(e_secret);
  free_secret(pair);
  free_secret(b64);
  free_secret(basic);
  if (!ok) {
    g_set_error(error, KCPS_OIDC_ERROR, 0, "the token endpoint could not be reached: %s",
                local->message);
    return NULL;
  }
  g_autoptr(JsonParser) parser = json_parser_new_immutable();
  JsonNode *root = json_parser_load_from_data(parser, (const char *)body->data,
                                              (gssize)body->len - 1, NULL)
                       ? json_parser_get_root(parser)
                       : NULL;
  JsonObject *obj = root && JSON_NODE_HOLDS_OBJECT(root) ? json_node_get_object(root) : NULL;
  char *id_token = NULL;
  if (status != 200) {
    JsonNode *e = obj ? json_object_get_member(obj, "error") : NULL;
    g_autofree char *what = clean_text(e && JSON_NODE_HOLDS_VALUE(e) &&
                                               json_node_get_value_type(e) == G_TYPE_STRING
                                           ? json_node_get_string(e)
                                           : "no error code");
    g_set_error(error, KCPS_OIDC_ERROR, 0, "the provider refused the code (HTTP %ld, %s)",
                status, what);
  } else {
    JsonNode *t = obj ? json_object_get_member(obj, "id_token") : NULL;
    if (t && JSON_NODE_HOLDS_VALUE(t) && json_node_get_value_type(t) == G_TYPE_STRING)
      id_token = g_strdup(json_node_get_string(t));
    else
      g_set_error_literal(error, KCPS_OIDC_ERROR, 0, "the provider's answer has no id_token");
  }
  /* The answer also holds the provider's access token: wipe it. */
  OPENSSL_cleanse(body->data, body->len);
  g_byte_array_unref(body);
  return id_token;
}

/* Fetches the JWKS and verifies the token; an unknown kid fetches the key
 * set once more (the provider may have just rotated its keys). */
static JsonNode *
verify_with_jwks(kcps_server_t *server, const kcps_oidc_discovery_t *d, const char *id_token,
                 const kcps_oidc_expect_t *expect, GError **error)
{
  for (int attempt = 0; attempt < 2; attempt++) {
    long status = 0;
    GByteArray *body = NULL;
    g_autoptr(GError) local = NULL;
    if (!provider_call(server, d->jwks_uri, NULL, NULL, &status, &body, &local) ||
        status != 200) {
      g_set_error(error, KCPS_OIDC_ERROR, KCPS_OIDC_ERROR_JWKS,
                  "the provider's key set could not be fetched (%s)",
                  local ? local->message : "not 200");
      if (body)
        g_byte_array_unref(body);
      return NULL;
    }
    JsonNode *claims = kcps__oidc_verify_id_token(id_token, (const char *)body->data,
                                                  body->len - 1, expect, &local);
    g_byte_array_unref(body);
    if (claims)
      return claims;
    if (attempt == 1 || !g_error_matches(local, KCPS_OIDC_ERROR, KCPS_OIDC_ERROR_KID)) {
      g_propagate_error(error, g_steal_pointer(&local));
      return NULL;
    }
  }
  return NULL;
}

static const char *
claim_string(JsonObject *claims, const char *name)
{
  JsonNode *n = json_object_get_member(claims, name);
  return n && JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == G_TYPE_STRING
             ? json_node_get_string(n)
             : NULL;
}

static bool
is_email(const char *s)
{
  if (!is_token_text(s, KCPS_SERVER_MAX_EMAIL))
    return false;
  const char *at = strchr(s, '@');
  return at && at != s && at[1] && !strchr(at + 1, '@');
}

/* The KCPS user of the provider account: found by the (issuer, sub)
 * binding, else linked to the organization's account of the same
 * (provider-verified) email, else created as a customer_user without a
 * password. 0 with *status and *message when refused. Caller holds the lock. */
static gint64
user_for_claims_locked(kcps_server_t *server, gint64 org, const char *issuer, const char *sub,
                       const char *email, bool email_verified, const char *name,
                       const char *source, unsigned *status, const char **message,
                       GError **error)
{
  gint64 user_id = 0, user_org = 0, active = 0;
  sqlite3_stmt *stmt = kcps__server_db_prepare(
      server,
      "SELECT u.id, u.org_id, u.active FROM oidc_identities i JOIN users u ON u.id = i.user_id"
      " WHERE i.org_id = ? AND i.issuer = ? AND i.sub = ?",
      error);
  if (!stmt)
    return 0;
  sqlite3_bind_int64(stmt, 1, org);
  sqlite3_bind_text(stmt, 2, issuer, -1, SQLITE_STATIC);
  sqlite3_bind_text(stmt, 3, sub, -1, SQLITE_STATIC);
  if (kcps__server_db_step(server, stmt, error) == SQLITE_ROW) {
    user_id = sqlite3_column_int64(stmt, 0);
    user_org = sqlite3_column_int64(stmt, 1);
    active = sqlite3_column_int64(stmt, 2);
  }
  sqlite3_finalize(stmt);
  if (error && *error)
    return 0;
  if (user_id > 0) {
    if (!active || user_org != org) {
      *status = 403;
      *message = "the KCPS account of this sign-in is disabled";
      return 0;
    }
    return user_id;
  }

  /* No binding yet: an account with this email? */
  if (!email) {
    *status = 401;
    *message = "the ID token carries no usable email claim";
    return 0;
  }
  gint64 linked_to = 0, bound = 0;
  stmt = kcps__server_db_prepare(
      server,
      "SELECT u.id, u.org_id, u.active, (SELECT count(*) FROM oidc_identities i"
      " WHERE i.user_id = u.id) FROM users u WHERE u.email = ?",
      error);
  if (!stmt)
    return 0;
  sqlite3_bind_text(stmt, 1, email, -1, SQLITE_STATIC);
  if (kcps__server_db_step(server, stmt, error) == SQLITE_ROW) {
    linked_to = sqlite3_column_int64(stmt, 0);
    user_org = sqlite3_column_int64(stmt, 1);
    active = sqlite3_column_int64(stmt, 2);
    bound = sqlite3_column_int64(stmt, 3);
  }
  sqlite3_finalize(stmt);
  if (error && *error)
    return 0;
  const char *event_detail = "sso user created";
  if (linked_to > 0) {
    /* Only the same organization's account, not yet bound, and only when
     * the provider vouches for the address: else anyone who can name an
     * address at the provider could take over a KCPS account. */
    if (user_org != org || bound > 0 || !email_verified || !active) {
      *status = 409;
      *message = "a KCPS account with this email exists and cannot be linked to this sign-in";
      return 0;
    }
    user_id = linked_to;
    event_detail = "sso linked to existing user";
  } else {
    g_autofree char *public_id = g_uuid_string_random();
    stmt = kcps__server_db_prepare(
        server,
        "INSERT INTO users (public_id, org_id, email, name, role, created)"
        " VALUES (?, ?, ?, ?, 'customer_user', ?)",
        error);
    if (!stmt)
      return 0;
    sqlite3_bind_text(stmt, 1, public_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 2, org);
    sqlite3_bind_text(stmt, 3, email, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 4, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 5, kcps__server_now());
    bool ok = kcps__server_db_step(server, stmt, error) == SQLITE_DONE;
    sqlite3_finalize(stmt);
    if (!ok)
      return 0;
    user_id = sqlite3_last_insert_rowid(server->db);
  }
  stmt = kcps__server_db_prepare(
      server,
      "INSERT INTO oidc_identities (org_id, issuer, sub, user_id, created) VALUES (?, ?, ?, ?, ?)",
      error);
  if (!stmt)
    return 0;
  sqlite3_bind_int64(stmt, 1, org);
  sqlite3_bind_text(stmt, 2, issuer, -1, SQLITE_STATIC);
  sqlite3_bind_text(stmt, 3, sub, -1, SQLITE_STATIC);
  sqlite3_bind_int64(stmt, 4, user_id);
  sqlite3_bind_int64(stmt, 5, kcps__server_now());
  bool ok = kcps__server_db_step(server, stmt, error) == SQLITE_DONE;
  sqlite3_finalize(stmt);
  if (!ok)
    return 0;
  kcps__server_audit_locked(server, org, user_id, linked_to ? "sso.linked" : "user.created",
                            email, source, event_detail);
  return user_id;
}

/* A display name from the claims: "name", else the email; control
 * characters dropped, at most KCPS_SERVER_MAX_NAME bytes of whole
 * characters. */
static char *
display_name(const char *name, const char *email)
{
  const char *src = name && g_utf8_validate(name, -1, NULL) ? name : "";
  GString *out = g_string_new(NULL);
  for (const char *p = src; *p; p = g_utf8_next_char(p)) {
    gunichar c = g_utf8_get_char(p);
    if (g_unichar_iscntrl(c))
      continue;
    size_t len = (size_t)(g_utf8_next_char(p) - p);
    if (out->len + len > KCPS_SERVER_MAX_NAME)
      break;
    g_string_append_len(out, p, (gssize)len);
  }
  g_strstrip(out->str);
  if (!out->str[0]) {
    g_string_free(out, TRUE);
    return g_strdup(email);
  }
  return g_string_free(out, FALSE);
}

/* Audits sso.failed (only for a callback that matched a pending sign-in:
 * anyone can call this route, and garbage must not grow the log) and
 * answers the step that failed. */
static void
callback_fail(kcps_server_t *server, kcps_http_req_t *req, gint64 org, const char *source,
              const char *subject, unsigned status, const char *step, const char *message)
{
  g_autofree char *clean = clean_text(message);
  g_autofree char *detail = g_strdup_printf("%s: %s", step, clean);
  if (org > 0)
    kcps__server_audit(server, org, 0, "sso.failed", subject, source, detail);
  respond_step(req, status, step, clean);
}

static void
route_callback(kcps_server_t *server, kcps_http_req_t *req, const kcps_server_session_t *session,
               const char *id)
{
  (void)session;
  (void)id;
  char source[64];
  kcps__server_req_source(req, source, sizeof source);
  const char *state = kcps_http_req_query(req, "state");
  const char *code = kcps_http_req_query(req, "code");
  const char *idp_error = kcps_http_req_query(req, "error");
  if (!state || !*state || strlen(state) > MAX_STATE) {
    callback_fail(server, req, 0, source, NULL, 400, "state", "missing or overlong state");
    return;
  }

  g_autoptr(GError) error = NULL;
  pending_t s;
  provider_t p = {0};
  g_mutex_lock(&server->lock);
  bool found = pending_take_locked(server, state, &s, &error);
  bool have_provider = found && provider_load_locked(server, s.org, &p, &error);
  guchar key[32];
  char *secret = NULL, *verifier = NULL;
  if (have_provider && kcps__server_key_file(server, SEAL_KEY_FILE, key, &error)) {
    g_autofree char *aad = g_strdup_printf("kcps-oidc-secret:%s", p.org_public_id);
    secret = kcps__server_unseal(key, aad, p.secret_sealed, &error);
    verifier = secret ? kcps__server_unseal(key, "kcps-oidc-verifier", s.verifier_sealed, &error) : NULL;
  }
  OPENSSL_cleanse(key, sizeof key);
  g_mutex_unlock(&server->lock);

  if (error) {
    kcps__server_respond_internal(req, error);
  } else if (!found || s.expires <= kcps__server_now()) {
    callback_fail(server, req, found ? s.org : 0, source, NULL, 400, "state",
                  "unknown, already used or expired (a sign-in must finish within 10 minutes)");
  } else if (!have_provider || strcmp(p.issuer, s.issuer) != 0 ||
             strcmp(p.client_id, s.client_id) != 0) {
    callback_fail(server, req, s.org, source, NULL, 400, "state",
                  "the organization's single sign-on changed during the sign-in");
  } else if (idp_error) {
    g_autofree char *what = clean_text(idp_error);
    g_autofree char *msg = g_strdup_printf("the provider refused the sign-in (%s)", what);
    callback_fail(server, req, s.org, source, NULL, 401, "authorization", msg);
  } else if (!code || !*code || strlen(code) > MAX_CODE) {
    callback_fail(server, req, s.org, source, NULL, 400, "authorization",
                  "the provider sent no code");
  } else {
    /* Discovery, token exchange and the ID token, all outside the lock. */
    kcps_oidc_discovery_t d = {0};
    g_autofree char *id_token = NULL;
    g_autoptr(JsonNode) claims_node = NULL;
    kcps_oidc_expect_t expect = {p.issuer, p.client_id, s.nonce, kcps__server_now()};
    if (!discover(server, p.issuer, &d, &error)) {
      callback_fail(server, req, s.org, source, NULL, 502, "discovery", error->message);
    } else if (!(id_token = exchange_code(server, &d, p.client_id, secret, code, verifier,
                                          &error))) {
      callback_fail(server, req, s.org, source, NULL, 502, "token exchange", error->message);
    } else if (!(claims_node = verify_with_jwks(server, &d, id_token, &expect, &error))) {
      unsigned st = error->code == KCPS_OIDC_ERROR_JWKS ? 502 : 401;
      callback_fail(server, req, s.org, source, NULL, st, kcps__oidc_step_name(error->code),
                    error->message);
    } else {
      JsonObject *claims = json_node_get_object(claims_node);
      const char *sub = claim_string(claims, "sub");
      const char *email = claim_string(claims, "email");
      JsonNode *ev = json_object_get_member(claims, "email_verified");
      bool verified = ev && JSON_NODE_HOLDS_VALUE(ev) &&
                      json_node_get_value_type(ev) == G_TYPE_BOOLEAN && json_node_get_boolean(ev);
      if (!email && g_strcmp0(p.preset, "entra") == 0) {
        /* Entra ID sends the sign-in name when no email is configured. */
        email = claim_string(claims, "preferred_username");
      }
      const char *hd = claim_string(claims, "hd");
      if (email && !is_email(email))
        email = NULL;
      if (p.domain && g_strcmp0(p.preset, "google") == 0 && g_strcmp0(hd, p.domain) != 0) {
        callback_fail(server, req, s.org, source, email, 403, "hd",
                      "the Google account is not of the organization's Workspace domain");
      } else {
        g_autofree char *name = display_name(claim_string(claims, "name"), email);
        unsigned status = 0;
        const char *message = NULL;
        g_mutex_lock(&server->lock);
        gint64 user_id = 0;
        if (kcps__server_db_begin(server, &error)) {
          user_id = user_for_claims_locked(server, s.org, p.issuer, sub, email, verified, name,
                                           source, &status, &message, &error);
          if (user_id > 0 && kcps__server_db_commit(server, &error)) {
            kcps__server_audit_locked(server, s.org, user_id, "sso.login", email, source,
                                      s.client_redirect ? "desktop" : "web");
          } else {
            kcps__server_db_rollback(server);
            user_id = 0;
          }
        }
        /* A desktop client gets a one-time code on its loopback address. */
        g_autofree char *one_time = NULL;
        if (user_id > 0 && s.client_redirect) {
          one_time = kcps_crypto_random_token(32);
          char hash[65];
          sqlite3_stmt *stmt =
              one_time ? kcps__server_db_prepare(server,
                                                 "INSERT INTO oidc_codes (code_hash, user_id,"
                                                 " challenge, expires) VALUES (?, ?, ?, ?)",
                                                 &error)
                       : NULL;
          if (stmt) {
            kcps_crypto_sha256_hex(one_time, strlen(one_time), hash);
            sqlite3_bind_text(stmt, 1, hash, -1, SQLITE_STATIC);
            sqlite3_bind_int64(stmt, 2, user_id);
            sqlite3_bind_text(stmt, 3, s.client_challenge, -1, SQLITE_STATIC);
            sqlite3_bind_int64(stmt, 4, kcps__server_now() + CODE_TTL);
            if (kcps__server_db_step(server, stmt, &error) != SQLITE_DONE)
              g_clear_pointer(&one_time, g_free);
          } else {
            g_clear_pointer(&one_time, g_free);
          }
          sqlite3_finalize(stmt);
        }
        g_mutex_unlock(&server->lock);
        if (error || (user_id > 0 && s.client_redirect && !one_time)) {
          kcps__server_respond_internal(req, error);
        } else if (user_id == 0) {
          callback_fail(server, req, s.org, source, email, status, "claims", message);
        } else if (s.client_redirect) {
          g_autofree char *loc = g_strdup_printf(
              "%s%scode=%s", s.client_redirect, strchr(s.client_redirect, '?') ? "&" : "?",
              one_time);
          kcps_http_req_add_header(req, "Location", loc);
          kcps_http_respond_empty(req, 302);
          OPENSSL_cleanse(loc, strlen(loc));
          OPENSSL_cleanse(one_time, strlen(one_time));
        } else {
          kcps__server_session_respond(server, req, user_id, "web", source);
        }
      }
    }
    kcps__oidc_discovery_clear(&d);
    if (id_token)
      OPENSSL_cleanse(id_token, strlen(id_token));
  }
  free_secret(secret);
  free_secret(verifier);
  if (found)
    pending_clear(&s);
  provider_clear(&p);
}

static void
route_exchange(kcps_server_t *server, kcps_http_req_t *req, const kcps_server_session_t *session,
               const char *id)
{
  (void)session;
  (void)id;
  JsonObject *obj = kcps__server_req_object(req);
  if (!obj)
    return;
  g_autoptr(GError) error = NULL;
  g_autoptr(GList) members = json_object_get_members(obj);
  for (GList *l = members; l; l = l->next)
    if (strcmp(l->data, "code") != 0 && strcmp(l->data, "code_verifier") != 0) {
      g_autofree char *name = clean_text(l->data);
      kcps_http_respond_error(req, 400, "bad_request", "unknown field \"%s\"", name);
      return;
    }
  const char *code, *verifier;
  if (!opt_string(obj, "code", &code, &error) ||
      !opt_string(obj, "code_verifier", &verifier, &error)) {
    kcps__server_respond_bad(req, error);
    return;
  }
  if (!code || !is_token_text(code, 128)) {
    kcps_http_respond_error(req, 400, "bad_request",
                            code ? "field \"code\" must be 1 to 128 printable characters"
                                 : "missing field \"code\"");
    return;
  }
  size_t vlen = verifier ? strlen(verifier) : 0;
  if (!verifier || vlen < 43 || vlen > 128 || !is_token_text(verifier, 128)) {
    kcps_http_respond_error(req, 400, "bad_request",
                            verifier ? "field \"code_verifier\" must be 43 to 128 characters"
                                     : "missing field \"code_verifier\"");
    return;
  }
  char source[64];
  kcps__server_req_source(req, source, sizeof source);
  char hash[65];
  kcps_crypto_sha256_hex(code, strlen(code), hash);
  g_autofree char *challenge = s256(verifier);
  gint64 user_id = 0, org = 0, expires = 0;
  g_autofree char *stored = NULL;
  g_mutex_lock(&server->lock);
  sqlite3_stmt *stmt = kcps__server_db_prepare(
      server,
      "DELETE FROM oidc_codes WHERE code_hash = ? RETURNING user_id, challenge, expires,"
      " (SELECT org_id FROM users WHERE id = user_id)",
      &error);
  if (stmt) {
    sqlite3_bind_text(stmt, 1, hash, -1, SQLITE_STATIC);
    if (kcps__server_db_step(server, stmt, &error) == SQLITE_ROW) {
      user_id = sqlite3_column_int64(stmt, 0);
      stored = kcps__server_db_dup_text(stmt, 1);
      expires = sqlite3_column_int64(stmt, 2);
      org = sqlite3_column_int64(stmt, 3);
      while (kcps__server_db_step(server, stmt, &error) == SQLITE_ROW)
        ;
    }
  }
  sqlite3_finalize(stmt);
  bool good = user_id > 0 && expires > kcps__server_now();
  bool matches = good && kcps_crypto_streq(challenge, stored);
  if (user_id > 0 && !matches)
    kcps__server_audit_locked(server, org, user_id, "sso.failed", NULL, source,
                              good ? "exchange: code_verifier does not match"
                                   : "exchange: code expired");
  g_mutex_unlock(&server->lock);
  if (error)
    kcps__server_respond_internal(req, error);
  else if (!good)
    respond_step(req, 400, "exchange", "the code is unknown, already used or expired");
  else if (!matches)
    respond_step(req, 400, "exchange", "the code_verifier does not match the code_challenge");
  else
    kcps__server_session_respond(server, req, user_id, "desktop", source);
}

const kcps_server_route_t kcps__server_routes_oidc[] = {
  {"GET", "/api/v1/orgs/*/sso", KCPS_NEED_USER, route_sso_get},
  {"PUT", "/api/v1/orgs/*/sso", KCPS_NEED_USER, route_sso_put},
  {"DELETE", "/api/v1/orgs/*/sso", KCPS_NEED_USER, route_sso_delete},
  {"GET", "/api/v1/sso/lookup", KCPS_NEED_NONE, route_lookup},
  {"GET", "/api/v1/sso/*/start", KCPS_NEED_NONE, route_start},
  {"GET", "/api/v1/sso/callback", KCPS_NEED_NONE, route_callback},
  {"POST", "/api/v1/sso/exchange", KCPS_NEED_NONE, route_exchange},
  {NULL, NULL, KCPS_NEED_NONE, NULL},
};
