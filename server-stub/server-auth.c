/* Who is calling: password hashes (Argon2id), PIN HMACs, device secrets,
 * bearer sessions, and the login/logout/me/ticket-key routes. */
#include "server-private.h"
#include "server-lockout.h"

#include "common/crypto.h"

#include <argon2.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <string.h>

#define SALT_LEN 16
#define HASH_LEN 32

char *
kcps__server_password_hash(const char *password, GError **error)
{
  guchar salt[SALT_LEN];
  if (RAND_bytes(salt, sizeof salt) != 1) {
    g_set_error_literal(error, KCPS_SERVER_ERROR, KCPS_SERVER_ERROR_CRYPTO,
                        "password hash: no random salt from OpenSSL");
    return NULL;
  }
  size_t len = argon2_encodedlen(KCPS_SERVER_ARGON2_T, KCPS_SERVER_ARGON2_M,
                                 KCPS_SERVER_ARGON2_P, SALT_LEN, HASH_LEN, Argon2_id);
  char *encoded = g_malloc0(len);
  int rc = argon2id_hash_encoded(KCPS_SERVER_ARGON2_T, KCPS_SERVER_ARGON2_M,
                                 KCPS_SERVER_ARGON2_P, password, strlen(password), salt,
                                 SALT_LEN, HASH_LEN, encoded, len);
  if (rc != ARGON2_OK) {
    g_set_error(error, KCPS_SERVER_ERROR, KCPS_SERVER_ERROR_CRYPTO, "password hash: %s",
                argon2_error_message(rc));
    g_free(encoded);
    return NULL;
  }
  return encoded;
}

bool
kcps__server_password_verify(const char *encoded, const char *password)
{
  if (!encoded || !password || !g_str_has_prefix(encoded, "$argon2id$"))
    return false;
  return argon2id_verify(encoded, password, strlen(password)) == ARGON2_OK;
}

void
kcps__server_pin_hmac(const kcps_server_t *server, gint64 org_id, const char *pin,
                      char out[65])
{
  /* The organization is part of the message so that equal PINs in two
   * organizations do not share a stored value. */
  g_autofree char *msg = g_strdup_printf("%" G_GINT64_FORMAT ":%s", org_id, pin);
  kcps_crypto_hmac_sha256_hex(server->pepper, sizeof server->pepper, msg, strlen(msg), out);
  OPENSSL_cleanse(msg, strlen(msg));
}

void
kcps__server_session_free(kcps_server_session_t *session)
{
  if (!session)
    return;
  g_free(session->user_public_id);
  g_free(session->email);
  g_free(session->user_name);
  g_free(session->role);
  g_free(session->org_name);
  g_free(session->device_name);
  g_free(session->org_type);
  g_free(session->client);
  g_free(session);
}

static const char *const kind_names[] = {"user", "device", "user_device"};

/* Desktop clients hold a refresh token; their access tokens are short. */
#define DESKTOP_ACCESS_TTL 3600
/* sessions.last_seen is written at most this often (seconds); an idle
 * session therefore ends between its idle time and a minute later. */
#define TOUCH_INTERVAL 60

void
kcps__server_hash_enter(kcps_server_t *server)
{
  g_mutex_lock(&server->hash_lock);
  while (server->hash_busy >= server->hash_max)
    g_cond_wait(&server->hash_cond, &server->hash_lock);
  server->hash_busy++;
  g_mutex_unlock(&server->hash_lock);
}

void
kcps__server_hash_leave(kcps_server_t *server)
{
  g_mutex_lock(&server->hash_lock);
  server->hash_busy--;
  g_cond_signal(&server->hash_cond);
  g_mutex_unlock(&server->hash_lock);
}

/* Seconds a user session of this organization and client may stay unused
 * (white paper 4.3). */
static gint64
idle_limit_locked(kcps_server_t *server, gint64 org, const char *client)
{
  bool desktop = g_strcmp0(client, "desktop") == 0;
  return 60 * kcps__server_setting_locked(server, org, desktop ? "desktop_idle_logout_minutes"
                                                               : "idle_logout_minutes");
}

/* The live session with this token hash; caller holds the lock. NULL when
 * unknown, expired, idle too long, or its user or device is disabled. A
 * session in use has its last_seen moved on (at most once a minute). */
kcps_server_session_t *
kcps__server_session_load_locked(kcps_server_t *server, const char *token_hash, GError **error)
{
  sqlite3_stmt *stmt = kcps__server_db_prepare(
      server,
      "SELECT s.kind, s.user_id, u.public_id, u.email, u.name, u.role, u.org_id, o.name,"
      "       s.device_id, d.name, d.org_id, o.type, s.client, max(s.last_seen, s.created)"
      " FROM sessions s"
      " LEFT JOIN users u ON u.id = s.user_id"
      " LEFT JOIN orgs o ON o.id = u.org_id"
      " LEFT JOIN devices d ON d.id = s.device_id"
      " WHERE s.token_hash = ? AND s.expires > ?"
      "   AND (s.user_id IS NULL OR u.active = 1)"
      "   AND (s.device_id IS NULL OR d.active = 1)",
      error);
  if (!stmt)
    return NULL;
  gint64 now = kcps__server_now();
  sqlite3_bind_text(stmt, 1, token_hash, -1, SQLITE_STATIC);
  sqlite3_bind_int64(stmt, 2, now);
  kcps_server_session_t *s = NULL;
  gint64 last_seen = 0;
  if (kcps__server_db_step(server, stmt, error) == SQLITE_ROW) {
    s = g_new0(kcps_server_session_t, 1);
    const char *kind = (const char *)sqlite3_column_text(stmt, 0);
    for (size_t i = 0; i < G_N_ELEMENTS(kind_names); i++)
      if (g_strcmp0(kind, kind_names[i]) == 0)
        s->kind = (kcps_server_session_kind_t)i;
    g_strlcpy(s->token_hash, token_hash, sizeof s->token_hash);
    s->user_id = sqlite3_column_int64(stmt, 1);
    s->user_public_id = kcps__server_db_dup_text(stmt, 2);
    s->email = kcps__server_db_dup_text(stmt, 3);
    s->user_name = kcps__server_db_dup_text(stmt, 4);
    s->role = kcps__server_db_dup_text(stmt, 5);
    s->user_org_id = sqlite3_column_int64(stmt, 6);
    s->org_name = kcps__server_db_dup_text(stmt, 7);
    s->device_id = sqlite3_column_int64(stmt, 8);
    s->device_name = kcps__server_db_dup_text(stmt, 9);
    s->device_org_id = sqlite3_column_int64(stmt, 10);
    s->org_type = kcps__server_db_dup_text(stmt, 11);
    s->client = kcps__server_db_dup_text(stmt, 12);
    last_seen = sqlite3_column_int64(stmt, 13);
  }
  sqlite3_finalize(stmt);
  if (!s || s->kind == KCPS_SESSION_DEVICE)
    return s;

  /* Automatic logout (4.3): users' sessions (portal, desktop, at a device)
   * end after the idle time of their organization. last_seen may lag the
   * last use by up to TOUCH_INTERVAL, so a session is never ended early. */
  if (now - last_seen > idle_limit_locked(server, s->user_org_id, s->client) + TOUCH_INTERVAL) {
    kcps__server_session_free(s);
    return NULL;
  }
  if (now - last_seen >= TOUCH_INTERVAL) {
    stmt = kcps__server_db_prepare(server, "UPDATE sessions SET last_seen = ? WHERE token_hash = ?",
                                   NULL);
    if (stmt) {
      sqlite3_bind_int64(stmt, 1, now);
      sqlite3_bind_text(stmt, 2, token_hash, -1, SQLITE_STATIC);
      kcps__server_db_step(server, stmt, NULL);
    }
    sqlite3_finalize(stmt);
  }
  return s;
}

/* Creates a session of a client ("web", "desktop"), optionally in a refresh
 * family; caller holds the lock. Returns the token (g_free); only its
 * SHA-256 is stored, and goes to hash_out. */
static char *
session_create_locked(kcps_server_t *server, kcps_server_session_kind_t kind, gint64 user_id,
                      gint64 device_id, gint64 ttl, const char *client, const char *family,
                      char hash_out[65], GError **error)
{
  gint64 now = kcps__server_now();

  /* Expired sessions are useless; dropping them here keeps the table small. */
  sqlite3_stmt *stmt =
      kcps__server_db_prepare(server, "DELETE FROM sessions WHERE expires <= ?", error);
  if (!stmt)
    return NULL;
  sqlite3_bind_int64(stmt, 1, now);
  int rc = kcps__server_db_step(server, stmt, error);
  sqlite3_finalize(stmt);
  if (rc < 0)
    return NULL;

  char *token = kcps_crypto_random_token(32);
  if (!token) {
    g_set_error_literal(error, KCPS_SERVER_ERROR, KCPS_SERVER_ERROR_CRYPTO,
                        "session: no random token");
    return NULL;
  }
  kcps_crypto_sha256_hex(token, strlen(token), hash_out);
  stmt = kcps__server_db_prepare(server,
                                 "INSERT INTO sessions (token_hash, kind, user_id, device_id,"
                                 " created, expires, client, last_seen, refresh_family)"
                                 " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                                 error);
  if (!stmt) {
    g_free(token);
    return NULL;
  }
  sqlite3_bind_text(stmt, 1, hash_out, -1, SQLITE_STATIC);
  sqlite3_bind_text(stmt, 2, kind_names[kind], -1, SQLITE_STATIC);
  if (user_id > 0)
    sqlite3_bind_int64(stmt, 3, user_id);
  if (device_id > 0)
    sqlite3_bind_int64(stmt, 4, device_id);
  sqlite3_bind_int64(stmt, 5, now);
  sqlite3_bind_int64(stmt, 6, now + ttl);
  sqlite3_bind_text(stmt, 7, client ? client : "web", -1, SQLITE_STATIC);
  sqlite3_bind_int64(stmt, 8, now);
  if (family)
    sqlite3_bind_text(stmt, 9, family, -1, SQLITE_STATIC);
  rc = kcps__server_db_step(server, stmt, error);
  sqlite3_finalize(stmt);
  if (rc < 0) {
    g_free(token);
    return NULL;
  }
  return token;
}

char *
kcps__server_session_create_locked(kcps_server_t *server, kcps_server_session_kind_t kind,
                                   gint64 user_id, gint64 device_id, gint64 ttl,
                                   char hash_out[65], GError **error)
{
  return session_create_locked(server, kind, user_id, device_id, ttl, "web", NULL, hash_out,
                               error);
}

/* Issues a refresh token of a family (white paper 4.3: it lives as long as
 * the desktop idle time since its issue); caller holds the lock. The token
 * goes to the caller (g_free), its SHA-256 to the database; *ttl_out gets
 * its lifetime. */
static char *
refresh_issue_locked(kcps_server_t *server, gint64 user_id, gint64 org, const char *family,
                     gint64 *ttl_out, GError **error)
{
  gint64 now = kcps__server_now();
  gint64 ttl = idle_limit_locked(server, org, "desktop");

  /* Families that ran out (used tokens are kept until then, to notice reuse). */
  sqlite3_stmt *stmt =
      kcps__server_db_prepare(server, "DELETE FROM refresh_tokens WHERE expires <= ?", error);
  if (!stmt)
    return NULL;
  sqlite3_bind_int64(stmt, 1, now);
  int rc = kcps__server_db_step(server, stmt, error);
  sqlite3_finalize(stmt);
  if (rc < 0)
    return NULL;

  char *token = kcps_crypto_random_token(32);
  if (!token) {
    g_set_error_literal(error, KCPS_SERVER_ERROR, KCPS_SERVER_ERROR_CRYPTO,
                        "refresh token: no randomness");
    return NULL;
  }
  char hash[65];
  kcps_crypto_sha256_hex(token, strlen(token), hash);
  stmt = kcps__server_db_prepare(server,
                                 "INSERT INTO refresh_tokens (token_hash, family, user_id, issued,"
                                 " expires) VALUES (?, ?, ?, ?, ?)",
                                 error);
  rc = -1;
  if (stmt) {
    sqlite3_bind_text(stmt, 1, hash, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, family, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 3, user_id);
    sqlite3_bind_int64(stmt, 4, now);
    sqlite3_bind_int64(stmt, 5, now + ttl);
    rc = kcps__server_db_step(server, stmt, error);
  }
  sqlite3_finalize(stmt);
  if (rc < 0) {
    g_free(token);
    return NULL;
  }
  *ttl_out = ttl;
  return token;
}

/* Ends a refresh family: its tokens and the sessions issued from it. */
static bool
family_revoke_locked(kcps_server_t *server, const char *family, GError **error)
{
  static const char *const sql[] = {
    "DELETE FROM refresh_tokens WHERE family = ?",
    "DELETE FROM sessions WHERE refresh_family = ?",
  };
  for (size_t i = 0; i < G_N_ELEMENTS(sql); i++) {
    sqlite3_stmt *stmt = kcps__server_db_prepare(server, sql[i], error);
    if (!stmt)
      return false;
    sqlite3_bind_text(stmt, 1, family, -1, SQLITE_STATIC);
    int rc = kcps__server_db_step(server, stmt, error);
    sqlite3_finalize(stmt);
    if (rc < 0)
      return false;
  }
  return true;
}

kcps_server_session_t *
kcps__server_authenticate(kcps_server_t *server, kcps_http_req_t *req)
{
  const char *bearer = kcps_http_req_bearer(req);
  if (!bearer || !*bearer) {
    kcps_http_req_add_header(req, "WWW-Authenticate", "Bearer");
    kcps_http_respond_error(req, 401, "unauthorized", "this route needs a bearer token");
    return NULL;
  }
  char hash[65];
  kcps_crypto_sha256_hex(bearer, strlen(bearer), hash);

  g_autoptr(GError) error = NULL;
  g_mutex_lock(&server->lock);
  kcps_server_session_t *session = kcps__server_session_load_locked(server, hash, &error);
  g_mutex_unlock(&server->lock);
  if (error) {
    kcps__server_respond_internal(req, error);
    return NULL;
  }
  if (!session) {
    kcps_http_req_add_header(req, "WWW-Authenticate", "Bearer error=\"invalid_token\"");
    kcps_http_respond_error(req, 401, "unauthorized", "the token is unknown or has expired");
    return NULL;
  }
  return session;
}

static JsonNode *
user_json(const kcps_server_session_t *s)
{
  g_autoptr(JsonBuilder) b = json_builder_new();
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "id");
  json_builder_add_string_value(b, s->user_public_id);
  json_builder_set_member_name(b, "email");
  json_builder_add_string_value(b, s->email);
  json_builder_set_member_name(b, "name");
  json_builder_add_string_value(b, s->user_name);
  json_builder_set_member_name(b, "role");
  json_builder_add_string_value(b, s->role);
  json_builder_set_member_name(b, "org");
  json_builder_add_string_value(b, s->org_name);
  json_builder_end_object(b);
  return json_builder_get_root(b);
}

/* {"token","expires_in"} plus an optional "user" member (taken). */
void
kcps__server_respond_token(kcps_http_req_t *req, unsigned status, const char *token, gint64 ttl,
                           JsonNode *user)
{
  g_autoptr(JsonBuilder) b = json_builder_new();
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "token");
  json_builder_add_string_value(b, token);
  json_builder_set_member_name(b, "expires_in");
  json_builder_add_int_value(b, ttl);
  if (user) {
    json_builder_set_member_name(b, "user");
    json_builder_add_value(b, user);
  }
  json_builder_end_object(b);
  g_autoptr(JsonNode) root = json_builder_get_root(b);
  kcps_http_respond_json(req, status, root);
}

/* POST /api/v1/login. Every refusal costs one Argon2 run: wrong password,
 * unknown account, locked account (whose password is not even checked). A
 * wrong password and an unknown account get the same 401
 * invalid_credentials; a locked account, and the failure that locks it,
 * 401 account_locked with the time to retry. Unknown addresses lock as
 * accounts of the default policy do (counted in memory per address hash),
 * so that answer does not tell whether the account exists either. */
void
kcps__server_route_login(kcps_server_t *server, kcps_http_req_t *req,
                         const kcps_server_session_t *session, const char *id)
{
  (void)session;
  (void)id;
  JsonObject *obj = kcps__server_req_object(req);
  if (!obj)
    return;
  g_autoptr(GError) error = NULL;
  kcps_server_login_req_t in;
  if (!kcps__server_check_login(obj, &in, &error)) {
    kcps__server_respond_bad(req, error);
    return;
  }
  char source[64];
  kcps__server_req_source(req, source, sizeof source);

  /* Fetch the hash and the lock state under the lock, verify outside it:
   * Argon2 takes tens of milliseconds and must not serialize every other
   * request. */
  gint64 user_id = 0, org = 0;
  g_autofree char *hash = NULL;
  g_autofree char *email = NULL;
  bool locked = false;
  g_mutex_lock(&server->lock);
  sqlite3_stmt *stmt = kcps__server_db_prepare(
      server, "SELECT id, password_hash, org_id, email FROM users WHERE email = ? AND active = 1",
      &error);
  if (stmt) {
    sqlite3_bind_text(stmt, 1, in.email, -1, SQLITE_STATIC);
    if (kcps__server_db_step(server, stmt, &error) == SQLITE_ROW) {
      user_id = sqlite3_column_int64(stmt, 0);
      hash = kcps__server_db_dup_text(stmt, 1);
      org = sqlite3_column_int64(stmt, 2);
      email = kcps__server_db_dup_text(stmt, 3);
    }
  }
  sqlite3_finalize(stmt);
  /* An unknown account's failures count per address (its hash), not per
   * source: it locks as an account would. */
  char email_key[KCPS_SERVER_LOCKOUT_EMAIL_KEY];
  const char *key = source;
  if (!error && user_id <= 0) {
    kcps__server_lockout_email_key(in.email, email_key);
    key = email_key;
  }
  gint64 locked_until = 0;
  if (!error)
    locked_until = kcps__server_lockout_until_locked(server, user_id, key);
  locked = locked_until > 0;
  g_mutex_unlock(&server->lock);
  if (error) {
    kcps__server_respond_internal(req, error);
    return;
  }

  /* An unknown account, one without a password, or a locked one costs one
   * verification too, so the answer's timing tells none of these apart. */
  kcps__server_hash_enter(server);
  bool ok = kcps__server_password_verify(hash && !locked ? hash : server->dummy_hash,
                                         in.password);
  kcps__server_hash_leave(server);
  ok = ok && hash && user_id > 0 && !locked;
  if (!ok) {
    /* Count it (a locked account and an unknown one write nothing to the
     * database); audit it in the account's organization when there is one. */
    if (!locked) {
      g_mutex_lock(&server->lock);
      bool txn = user_id > 0 && kcps__server_db_begin(server, NULL);
      if (user_id > 0)
        kcps__server_audit_locked(server, org, user_id, "login.failed", email, source,
                                  "wrong password");
      locked_until = kcps__server_lockout_fail_until_locked(server, user_id, key);
      if (txn && !kcps__server_db_commit(server, &error))
        g_warning("kcps-server: login failure not recorded: %s", error->message);
      g_mutex_unlock(&server->lock);
    }
    if (locked_until > 0)
      kcps__server_respond_locked(req, 401, locked_until);
    else
      kcps_http_respond_error(req, 401, "invalid_credentials", "wrong email or password");
    return;
  }

  g_mutex_lock(&server->lock);
  bool mfa = kcps__server_mfa_required_locked(server, user_id);
  g_mutex_unlock(&server->lock);
  if (mfa)
    kcps__server_mfa_begin(server, req, user_id, in.client, source);
  else
    kcps__server_session_respond(server, req, user_id, in.client, source);
}

/* {"token","expires_in"[,"refresh_token","refresh_expires_in"]} plus "user". */
static void
respond_session(kcps_http_req_t *req, const char *token, gint64 ttl, const char *refresh,
                gint64 refresh_ttl, JsonNode *user)
{
  g_autoptr(JsonBuilder) b = json_builder_new();
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "token");
  json_builder_add_string_value(b, token);
  json_builder_set_member_name(b, "expires_in");
  json_builder_add_int_value(b, ttl);
  if (refresh) {
    json_builder_set_member_name(b, "refresh_token");
    json_builder_add_string_value(b, refresh);
    json_builder_set_member_name(b, "refresh_expires_in");
    json_builder_add_int_value(b, refresh_ttl);
  }
  if (user) {
    json_builder_set_member_name(b, "user");
    json_builder_add_value(b, user);
  }
  json_builder_end_object(b);
  g_autoptr(JsonNode) root = json_builder_get_root(b);
  kcps_http_respond_json(req, 200, root);
}

/* Issues a session (and for a desktop client a refresh token of a new or
 * the given family) in one transaction; caller holds the lock. */
static bool
issue_locked(kcps_server_t *server, gint64 user_id, gint64 org, const char *client,
             const char *family, char **token, gint64 *ttl, char **refresh, gint64 *refresh_ttl,
             char token_hash[65], GError **error)
{
  bool desktop = g_strcmp0(client, "desktop") == 0;
  g_autofree char *fresh_family = desktop && !family ? g_uuid_string_random() : NULL;
  if (fresh_family)
    family = fresh_family;
  *ttl = desktop ? DESKTOP_ACCESS_TTL : KCPS_SERVER_USER_TTL;
  *token = session_create_locked(server, KCPS_SESSION_USER, user_id, 0, *ttl,
                                 desktop ? "desktop" : "web", desktop ? family : NULL,
                                 token_hash, error);
  if (!*token)
    return false;
  if (desktop) {
    *refresh = refresh_issue_locked(server, user_id, org, family, refresh_ttl, error);
    if (!*refresh)
      return false;
  }
  return true;
}

void
kcps__server_session_respond(kcps_server_t *server, kcps_http_req_t *req, gint64 user_id,
                             const char *client, const char *source)
{
  g_autoptr(GError) error = NULL;
  char token_hash[65];
  g_autofree char *token = NULL;
  g_autofree char *refresh = NULL;
  gint64 ttl = 0, refresh_ttl = 0;
  g_autoptr(kcps_server_session_t) created = NULL;
  bool desktop = g_strcmp0(client, "desktop") == 0;

  g_mutex_lock(&server->lock);
  gint64 org = 0;
  g_autofree char *email = NULL;
  sqlite3_stmt *stmt =
      kcps__server_db_prepare(server, "SELECT org_id, email FROM users WHERE id = ?", &error);
  if (stmt) {
    sqlite3_bind_int64(stmt, 1, user_id);
    if (kcps__server_db_step(server, stmt, &error) == SQLITE_ROW) {
      org = sqlite3_column_int64(stmt, 0);
      email = kcps__server_db_dup_text(stmt, 1);
    }
  }
  sqlite3_finalize(stmt);
  bool ok = org > 0 && kcps__server_db_begin(server, &error);
  if (ok) {
    /* Every factor was right: the failure count starts again. */
    kcps__server_lockout_succeeded_locked(server, user_id, source);
    ok = issue_locked(server, user_id, org, client, NULL, &token, &ttl, &refresh, &refresh_ttl,
                      token_hash, &error);
    if (ok) {
      kcps__server_audit_locked(server, org, user_id, "login.ok", email, source,
                                desktop ? "client desktop" : "client web");
      ok = kcps__server_db_commit(server, &error);
    } else {
      kcps__server_db_rollback(server);
    }
  }
  if (ok)
    created = kcps__server_session_load_locked(server, token_hash, &error);
  g_mutex_unlock(&server->lock);
  if (!ok || !created) {
    if (!error)
      g_set_error_literal(&error, KCPS_SERVER_ERROR, KCPS_SERVER_ERROR_DB,
                          "session vanished after creation");
    kcps__server_respond_internal(req, error);
    return;
  }
  respond_session(req, token, ttl, refresh, refresh_ttl, user_json(created));
  OPENSSL_cleanse(token, strlen(token));
  if (refresh)
    OPENSSL_cleanse(refresh, strlen(refresh));
}

/* POST /api/v1/token/refresh {"refresh_token"}: a new access token and a
 * new refresh token; the one presented is used up. Presenting a used one
 * again means it was copied: the whole family ends (refresh.reused). */
void
kcps__server_route_token_refresh(kcps_server_t *server, kcps_http_req_t *req,
                                 const kcps_server_session_t *session, const char *id)
{
  (void)session;
  (void)id;
  static const char *const fields[] = {"refresh_token", NULL};
  JsonObject *obj = kcps__server_req_object(req);
  if (!obj)
    return;
  g_autoptr(GError) error = NULL;
  const char *given = NULL;
  if (!kcps__server_check_fields(obj, fields, &error) ||
      !kcps__server_field_string(obj, "refresh_token", 1, 256, KCPS_TEXT_PLAIN, &given,
                                 &error)) {
    kcps__server_respond_bad(req, error);
    return;
  }
  char source[64], hash[65], token_hash[65];
  kcps__server_req_source(req, source, sizeof source);
  kcps_crypto_sha256_hex(given, strlen(given), hash);

  g_autofree char *family = NULL;
  g_autofree char *email = NULL;
  g_autofree char *token = NULL;
  g_autofree char *refresh = NULL;
  gint64 user_id = 0, org = 0, expires = 0, used = 0, active = 0, ttl = 0, refresh_ttl = 0;
  enum { REFUSED, REUSED, ISSUED } outcome = REFUSED;
  gint64 now = kcps__server_now();

  g_mutex_lock(&server->lock);
  bool ok = kcps__server_db_begin(server, &error);
  if (ok) {
    sqlite3_stmt *stmt = kcps__server_db_prepare(
        server,
        "SELECT r.family, r.user_id, r.expires, r.used, u.active, u.org_id, u.email"
        " FROM refresh_tokens r JOIN users u ON u.id = r.user_id WHERE r.token_hash = ?",
        &error);
    ok = stmt != NULL;
    if (ok) {
      sqlite3_bind_text(stmt, 1, hash, -1, SQLITE_STATIC);
      int rc = kcps__server_db_step(server, stmt, &error);
      ok = rc >= 0;
      if (rc == SQLITE_ROW) {
        family = kcps__server_db_dup_text(stmt, 0);
        user_id = sqlite3_column_int64(stmt, 1);
        expires = sqlite3_column_int64(stmt, 2);
        used = sqlite3_column_int64(stmt, 3);
        active = sqlite3_column_int64(stmt, 4);
        org = sqlite3_column_int64(stmt, 5);
        email = kcps__server_db_dup_text(stmt, 6);
      }
    }
    sqlite3_finalize(stmt);
  }
  if (ok && family) {
    if (used) {
      outcome = REUSED;
      ok = family_revoke_locked(server, family, &error);
      kcps__server_audit_locked(server, org, user_id, "refresh.reused", email, source,
                                "a used refresh token came back: its family was revoked");
    } else if (expires <= now || !active) {
      ok = family_revoke_locked(server, family, &error);
    } else {
      sqlite3_stmt *stmt = kcps__server_db_prepare(
          server, "UPDATE refresh_tokens SET used = 1 WHERE token_hash = ?", &error);
      ok = stmt != NULL;
      if (ok) {
        sqlite3_bind_text(stmt, 1, hash, -1, SQLITE_STATIC);
        ok = kcps__server_db_step(server, stmt, &error) == SQLITE_DONE;
      }
      sqlite3_finalize(stmt);
      ok = ok && issue_locked(server, user_id, org, "desktop", family, &token, &ttl, &refresh,
                              &refresh_ttl, token_hash, &error);
      outcome = ok ? ISSUED : REFUSED;
    }
  }
  if (ok)
    ok = kcps__server_db_commit(server, &error);
  else
    kcps__server_db_rollback(server);
  g_mutex_unlock(&server->lock);

  if (!ok) {
    kcps__server_respond_internal(req, error);
  } else if (outcome != ISSUED) {
    kcps_http_respond_error(req, 401, "invalid_grant",
                            "the refresh token is unknown, used or expired: log in again");
  } else {
    respond_session(req, token, ttl, refresh, refresh_ttl, NULL);
    OPENSSL_cleanse(token, strlen(token));
    OPENSSL_cleanse(refresh, strlen(refresh));
  }
}

/* POST /api/v1/logout: ends the session, and for a desktop client the
 * whole login it belongs to (its refresh family and the sessions of it). */
void
kcps__server_route_logout(kcps_server_t *server, kcps_http_req_t *req,
                          const kcps_server_session_t *session, const char *id)
{
  (void)id;
  if (!kcps__server_body_none(req))
    return;
  g_autoptr(GError) error = NULL;
  g_autofree char *family = NULL;
  g_mutex_lock(&server->lock);
  bool ok = kcps__server_db_begin(server, &error);
  sqlite3_stmt *stmt = ok ? kcps__server_db_prepare(
                                server, "SELECT refresh_family FROM sessions WHERE token_hash = ?",
                                &error)
                          : NULL;
  if (stmt) {
    sqlite3_bind_text(stmt, 1, session->token_hash, -1, SQLITE_STATIC);
    if (kcps__server_db_step(server, stmt, &error) == SQLITE_ROW)
      family = kcps__server_db_dup_text(stmt, 0);
  }
  sqlite3_finalize(stmt);
  ok = ok && !error;
  if (ok && family)
    ok = family_revoke_locked(server, family, &error);
  if (ok) {
    stmt = kcps__server_db_prepare(server, "DELETE FROM sessions WHERE token_hash = ?", &error);
    ok = stmt != NULL;
    if (ok) {
      sqlite3_bind_text(stmt, 1, session->token_hash, -1, SQLITE_STATIC);
      ok = kcps__server_db_step(server, stmt, &error) == SQLITE_DONE;
    }
    sqlite3_finalize(stmt);
  }
  if (ok)
    ok = kcps__server_db_commit(server, &error);
  else
    kcps__server_db_rollback(server);
  g_mutex_unlock(&server->lock);
  if (!ok)
    kcps__server_respond_internal(req, error);
  else
    kcps_http_respond_empty(req, 204);
}

void
kcps__server_route_me(kcps_server_t *server, kcps_http_req_t *req,
                      const kcps_server_session_t *session, const char *id)
{
  (void)server;
  (void)id;
  g_autoptr(JsonNode) node = user_json(session);
  kcps_http_respond_json(req, 200, node);
}

void
kcps__server_route_ticket_key(kcps_server_t *server, kcps_http_req_t *req,
                              const kcps_server_session_t *session, const char *id)
{
  (void)session;
  (void)id;
  g_autoptr(JsonBuilder) b = json_builder_new();
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "alg");
  json_builder_add_string_value(b, "Ed25519");
  json_builder_set_member_name(b, "public_key");
  json_builder_add_string_value(b, server->ticket_public);
  json_builder_end_object(b);
  g_autoptr(JsonNode) root = json_builder_get_root(b);
  kcps_http_respond_json(req, 200, root);
}

