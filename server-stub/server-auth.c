/* Who is calling: password hashes (Argon2id), PIN HMACs, device secrets,
 * bearer sessions, and the login/logout/me/ticket-key routes. */
#include "server-private.h"

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

/* The live session with this token hash; caller holds the lock. NULL when
 * unknown, expired, or its user or device is disabled. */
kcps_server_session_t *
kcps__server_session_load_locked(kcps_server_t *server, const char *token_hash, GError **error)
{
  sqlite3_stmt *stmt = kcps__server_db_prepare(
      server,
      "SELECT s.kind, s.user_id, u.public_id, u.email, u.name, u.role, u.org_id, o.name,"
      "       s.device_id, d.name, d.org_id, o.type, s.client"
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
  sqlite3_bind_text(stmt, 1, token_hash, -1, SQLITE_STATIC);
  sqlite3_bind_int64(stmt, 2, kcps__server_now());
  kcps_server_session_t *s = NULL;
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
  }
  sqlite3_finalize(stmt);
  return s;
}

/* Creates a session; caller holds the lock. The token goes to the caller
 * (g_free) and only its SHA-256 is stored; *hash_out gets that hash. */
char *
kcps__server_session_create_locked(kcps_server_t *server, kcps_server_session_kind_t kind, gint64 user_id,
                      gint64 device_id, gint64 ttl, char hash_out[65], GError **error)
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
                                 " created, expires) VALUES (?, ?, ?, ?, ?, ?)",
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
  rc = kcps__server_db_step(server, stmt, error);
  sqlite3_finalize(stmt);
  if (rc < 0) {
    g_free(token);
    return NULL;
  }
  return token;
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

  /* Fetch the hash under the lock, verify outside it: Argon2 takes tens of
   * milliseconds and must not serialize every other request. */
  gint64 user_id = 0;
  g_autofree char *hash = NULL;
  g_mutex_lock(&server->lock);
  sqlite3_stmt *stmt = kcps__server_db_prepare(
      server, "SELECT id, password_hash FROM users WHERE email = ? AND active = 1", &error);
  if (stmt) {
    sqlite3_bind_text(stmt, 1, in.email, -1, SQLITE_STATIC);
    if (kcps__server_db_step(server, stmt, &error) == SQLITE_ROW) {
      user_id = sqlite3_column_int64(stmt, 0);
      hash = kcps__server_db_dup_text(stmt, 1);
    }
  }
  sqlite3_finalize(stmt);
  g_mutex_unlock(&server->lock);
  if (error) {
    kcps__server_respond_internal(req, error);
    return;
  }

  /* An unknown account (or one without a password) costs one verification
   * too, so the answer's timing does not tell whether the email exists. */
  g_mutex_lock(&server->hash_lock);
  while (server->hash_busy >= server->hash_max)
    g_cond_wait(&server->hash_cond, &server->hash_lock);
  server->hash_busy++;
  g_mutex_unlock(&server->hash_lock);
  bool ok = kcps__server_password_verify(hash ? hash : server->dummy_hash, in.password);
  g_mutex_lock(&server->hash_lock);
  server->hash_busy--;
  g_cond_signal(&server->hash_cond);
  g_mutex_unlock(&server->hash_lock);
  if (!ok || !hash || user_id == 0) {
    kcps_http_respond_error(req, 401, "invalid_credentials", "wrong email or password");
    return;
  }

  char source[64];
  kcps__server_req_source(req, source, sizeof source);
  g_mutex_lock(&server->lock);
  bool mfa = kcps__server_mfa_required_locked(server, user_id);
  g_mutex_unlock(&server->lock);
  if (mfa)
    kcps__server_mfa_begin(server, req, user_id, "web", source);
  else
    kcps__server_session_respond(server, req, user_id, "web", source);
}

void
kcps__server_session_respond(kcps_server_t *server, kcps_http_req_t *req, gint64 user_id,
                             const char *client, const char *source)
{
  (void)client;
  (void)source;
  g_autoptr(GError) error = NULL;
  char token_hash[65];
  g_mutex_lock(&server->lock);
  g_autofree char *token = kcps__server_session_create_locked(
      server, KCPS_SESSION_USER, user_id, 0, KCPS_SERVER_USER_TTL, token_hash, &error);
  g_autoptr(kcps_server_session_t) created =
      token ? kcps__server_session_load_locked(server, token_hash, &error) : NULL;
  g_mutex_unlock(&server->lock);
  if (!token || !created) {
    if (!error)
      g_set_error_literal(&error, KCPS_SERVER_ERROR, KCPS_SERVER_ERROR_DB,
                          "session vanished after creation");
    kcps__server_respond_internal(req, error);
    return;
  }
  kcps__server_respond_token(req, 200, token, KCPS_SERVER_USER_TTL, user_json(created));
  OPENSSL_cleanse(token, strlen(token));
}

void
kcps__server_route_logout(kcps_server_t *server, kcps_http_req_t *req,
                          const kcps_server_session_t *session, const char *id)
{
  (void)id;
  g_autoptr(GError) error = NULL;
  g_mutex_lock(&server->lock);
  sqlite3_stmt *stmt =
      kcps__server_db_prepare(server, "DELETE FROM sessions WHERE token_hash = ?", &error);
  if (stmt) {
    sqlite3_bind_text(stmt, 1, session->token_hash, -1, SQLITE_STATIC);
    kcps__server_db_step(server, stmt, &error);
  }
  sqlite3_finalize(stmt);
  g_mutex_unlock(&server->lock);
  if (error)
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

