/* Email multi-factor authentication (white paper 4.6): a 6-digit code
 * mailed through the configured relay, valid 5 minutes, single use, bound
 * to one login attempt (user, client, source address). Only an HMAC of the
 * code (keyed with the pepper, bound to the attempt) and a SHA-256 of the
 * attempt's token are stored. */
#include "server-private.h"
#include "server-lockout.h"
#include "server-smtp.h"

#include "common/crypto.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <string.h>

#define MFA_TTL 300         /* seconds a code is valid (4.6) */
#define MFA_DIGITS 6
#define MFA_MAX_LIVE 5      /* live attempts a user may have; older ones end */
#define MFA_MAX_TOKEN 128   /* bytes of an mfa_token in a request */

const char kcps__server_schema_mfa[] =
    "CREATE TABLE mfa_attempts ("
    "  token_hash TEXT PRIMARY KEY,"
    "  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    "  client TEXT NOT NULL CHECK (client IN ('web', 'desktop')),"
    "  source TEXT NOT NULL,"
    "  code_hmac TEXT NOT NULL CHECK (length(code_hmac) = 64),"
    "  failures INTEGER NOT NULL DEFAULT 0,"
    "  created INTEGER NOT NULL,"
    "  expires INTEGER NOT NULL);"
    "CREATE INDEX mfa_attempts_user ON mfa_attempts(user_id, created);"
    "CREATE INDEX mfa_attempts_expires ON mfa_attempts(expires);";

static void route_verify(kcps_server_t *server, kcps_http_req_t *req,
                         const kcps_server_session_t *session, const char *id);

const kcps_server_route_t kcps__server_routes_mfa[] = {
  {"POST", "/api/v1/login/mfa", KCPS_NEED_NONE, route_verify},
  {NULL, NULL, KCPS_NEED_NONE, NULL},
};

bool
kcps__server_mfa_required_locked(kcps_server_t *server, gint64 user_id)
{
  sqlite3_stmt *stmt =
      kcps__server_db_prepare(server, "SELECT org_id FROM users WHERE id = ?", NULL);
  if (!stmt)
    return true; /* fail closed: without the database no login succeeds anyway */
  sqlite3_bind_int64(stmt, 1, user_id);
  gint64 org = 0;
  if (kcps__server_db_step(server, stmt, NULL) == SQLITE_ROW)
    org = sqlite3_column_int64(stmt, 0);
  sqlite3_finalize(stmt);
  return org > 0 && kcps__server_setting_locked(server, org, "mfa_email") != 0;
}

/* A uniform code of MFA_DIGITS digits: 32-bit draws above the largest
 * multiple of 10^6 are thrown away, so no value is likelier (no modulo
 * bias). False when OpenSSL has no randomness. */
static bool
make_code(char out[MFA_DIGITS + 1])
{
  const guint32 range = 1000000;
  const guint64 limit = (G_GUINT64_CONSTANT(1) << 32) / range * range;
  guint32 v;
  do {
    if (RAND_bytes((unsigned char *)&v, sizeof v) != 1)
      return false;
  } while ((guint64)v >= limit);
  g_snprintf(out, MFA_DIGITS + 1, "%06u", v % range);
  OPENSSL_cleanse(&v, sizeof v);
  return true;
}

/* HMAC(pepper, "mfa:" token_hash ":" code): the stored form of a code.
 * The attempt's token is part of the message, so a code is worth nothing
 * with any other attempt, and without the pepper file the 10^6 codes
 * cannot be tried against a copy of the database. */
static void
code_hmac(const kcps_server_t *server, const char *token_hash, const char *code, char out[65])
{
  g_autofree char *msg = g_strdup_printf("mfa:%s:%s", token_hash, code);
  kcps_crypto_hmac_sha256_hex(server->pepper, sizeof server->pepper, msg, strlen(msg), out);
  OPENSSL_cleanse(msg, strlen(msg));
}

static void
respond_unavailable(kcps_http_req_t *req)
{
  kcps_http_respond_error(req, 503, "mail_unavailable",
                          "the one-time code could not be mailed; try again later or ask "
                          "your administrator");
}

static bool
store_attempt_locked(kcps_server_t *server, const char *token_hash, gint64 user_id,
                     const char *client, const char *source, const char *hmac, GError **error)
{
  gint64 now = kcps__server_now();
  static const char *const sql[] = {
    /* Ended attempts are useless; dropping them keeps the table small. */
    "DELETE FROM mfa_attempts WHERE expires <= ?2",
    "INSERT INTO mfa_attempts (token_hash, user_id, client, source, code_hmac, created,"
    " expires) VALUES (?1, ?3, ?4, ?5, ?6, ?2, ?2 + ?7)",
    /* A user asking again and again keeps only her newest few codes. */
    "DELETE FROM mfa_attempts WHERE user_id = ?3 AND token_hash NOT IN"
    " (SELECT token_hash FROM mfa_attempts WHERE user_id = ?3"
    "  ORDER BY created DESC, rowid DESC LIMIT ?8)",
  };
  if (!kcps__server_db_begin(server, error))
    return false;
  for (size_t i = 0; i < G_N_ELEMENTS(sql); i++) {
    sqlite3_stmt *stmt = kcps__server_db_prepare(server, sql[i], error);
    if (!stmt) {
      kcps__server_db_rollback(server);
      return false;
    }
    sqlite3_bind_text(stmt, 1, token_hash, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 2, now);
    sqlite3_bind_int64(stmt, 3, user_id);
    sqlite3_bind_text(stmt, 4, client, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 5, source, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 6, hmac, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 7, MFA_TTL);
    sqlite3_bind_int64(stmt, 8, MFA_MAX_LIVE);
    int rc = kcps__server_db_step(server, stmt, error);
    sqlite3_finalize(stmt);
    if (rc < 0) {
      kcps__server_db_rollback(server);
      return false;
    }
  }
  return kcps__server_db_commit(server, error);
}

void
kcps__server_mfa_begin(kcps_server_t *server, kcps_http_req_t *req, gint64 user_id,
                       const char *client, const char *source)
{
  g_autoptr(GError) error = NULL;
  if (g_strcmp0(client, "web") != 0 && g_strcmp0(client, "desktop") != 0) {
    g_set_error(&error, KCPS_SERVER_ERROR, KCPS_SERVER_ERROR_CONFIG,
                "MFA: unknown client kind \"%s\"", client ? client : "(null)");
    kcps__server_respond_internal(req, error);
    return;
  }

  /* Who gets the mail. */
  g_autofree char *email = NULL;
  gint64 org = 0;
  g_mutex_lock(&server->lock);
  sqlite3_stmt *stmt = kcps__server_db_prepare(
      server, "SELECT email, org_id FROM users WHERE id = ? AND active = 1", &error);
  if (stmt) {
    sqlite3_bind_int64(stmt, 1, user_id);
    if (kcps__server_db_step(server, stmt, &error) == SQLITE_ROW) {
      email = kcps__server_db_dup_text(stmt, 0);
      org = sqlite3_column_int64(stmt, 1);
    }
  }
  sqlite3_finalize(stmt);
  g_mutex_unlock(&server->lock);
  if (error) {
    kcps__server_respond_internal(req, error);
    return;
  }
  if (!email) { /* deleted or disabled since the password was checked */
    kcps_http_respond_error(req, 401, "invalid_credentials", "wrong email or password");
    return;
  }

  /* The code and the attempt's token; the mail goes out before anything is
   * stored, so a failed mail leaves nothing behind that could be used. */
  char code[MFA_DIGITS + 1];
  g_autofree char *token = kcps_crypto_random_token(32);
  if (!token || !make_code(code)) {
    g_set_error_literal(&error, KCPS_SERVER_ERROR, KCPS_SERVER_ERROR_CRYPTO,
                        "MFA: no randomness from OpenSSL");
    kcps__server_respond_internal(req, error);
    return;
  }
  char token_hash[65], hmac[65];
  kcps_crypto_sha256_hex(token, strlen(token), token_hash);
  code_hmac(server, token_hash, code, hmac);
  g_autofree char *body = g_strdup_printf(
      "Your KCPS sign-in code is:\n"
      "\n"
      "    %s\n"
      "\n"
      "It is valid for %d minutes and works once, for the sign-in that asked for it.\n"
      "\n"
      "If you did not just sign in to KCPS, someone else knows your password:\n"
      "change it and tell your administrator.\n",
      code, MFA_TTL / 60);
  OPENSSL_cleanse(code, sizeof code);
  bool sent = kcps__server_smtp_send(server, email, "Your KCPS sign-in code", body, &error);
  OPENSSL_cleanse(body, strlen(body));
  if (!sent) {
    g_warning("kcps-server: MFA mail for user %" G_GINT64_FORMAT " not sent: %s", user_id,
              error->message);
    kcps__server_audit(server, org, user_id, "mfa.mail_failed", email, source,
                       "the one-time code could not be mailed");
    respond_unavailable(req);
    OPENSSL_cleanse(token, strlen(token));
    return;
  }

  g_mutex_lock(&server->lock);
  bool stored = store_attempt_locked(server, token_hash, user_id, client, source, hmac, &error);
  if (stored) {
    g_autofree char *detail = g_strdup_printf("client %s", client);
    kcps__server_audit_locked(server, org, user_id, "mfa.sent", email, source, detail);
  }
  g_mutex_unlock(&server->lock);
  if (!stored) {
    kcps__server_respond_internal(req, error);
    OPENSSL_cleanse(token, strlen(token));
    return;
  }

  g_autoptr(JsonBuilder) b = json_builder_new();
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "mfa_required");
  json_builder_add_boolean_value(b, TRUE);
  json_builder_set_member_name(b, "mfa_token");
  json_builder_add_string_value(b, token);
  json_builder_set_member_name(b, "expires_in");
  json_builder_add_int_value(b, MFA_TTL);
  json_builder_end_object(b);
  g_autoptr(JsonNode) root = json_builder_get_root(b);
  kcps_http_respond_json(req, 200, root);
  OPENSSL_cleanse(token, strlen(token));
}

/* POST /api/v1/login/mfa ----------------------------------------------- */

static bool
bad(GError **error, const char *msg)
{
  g_set_error_literal(error, KCPS_SERVER_ERROR, KCPS_SERVER_ERROR_BAD_REQUEST, msg);
  return false;
}

/* {"mfa_token": base64url of 1..128 bytes, "code": 6 ASCII digits}, and
 * nothing else. */
static bool
check_verify(JsonObject *obj, const char **token, const char **code, GError **error)
{
  static const char *const fields[] = {"mfa_token", "code", NULL};
  if (!kcps__server_check_fields(obj, fields, error) ||
      !kcps__server_field_string(obj, "mfa_token", 1, MFA_MAX_TOKEN, KCPS_TEXT_PLAIN, token,
                                 error))
    return false;
  size_t len = strlen(*token);
  if (strspn(*token, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != len)
    return bad(error, "field \"mfa_token\" must be the mfa_token of the login answer "
                      "(letters, digits, - and _)");
  if (!kcps__server_field_string(obj, "code", 1, 64, KCPS_TEXT_PLAIN, code, error))
    return false;
  if (strlen(*code) != MFA_DIGITS || strspn(*code, "0123456789") != MFA_DIGITS)
    return bad(error, "field \"code\" must be a string of 6 digits");
  return true;
}

typedef enum { VERIFY_REFUSED, VERIFY_OK, VERIFY_ERROR, VERIFY_LOCKED } verify_t;

/* Checks code against the attempt of token_hash; caller holds the lock.
 * Every refusal looks the same to the caller, but for a lock (the caller
 * knew the password: existence is not at stake), whose end goes to
 * *locked_until. */
static verify_t
verify_locked(kcps_server_t *server, const char *token_hash, const char *code,
              const char *source, gint64 *user_out, char **client_out, gint64 *locked_until,
              GError **error)
{
  gint64 now = kcps__server_now();
  sqlite3_stmt *stmt = kcps__server_db_prepare(
      server,
      "SELECT a.user_id, a.client, a.source, a.code_hmac, a.failures, a.expires, u.org_id,"
      "       u.email"
      " FROM mfa_attempts a JOIN users u ON u.id = a.user_id AND u.active = 1"
      " WHERE a.token_hash = ?",
      error);
  if (!stmt)
    return VERIFY_ERROR;
  sqlite3_bind_text(stmt, 1, token_hash, -1, SQLITE_STATIC);
  int rc = kcps__server_db_step(server, stmt, error);
  gint64 user_id = 0, failures = 0, expires = 0, org = 0;
  g_autofree char *client = NULL, *bound_source = NULL, *stored = NULL, *email = NULL;
  if (rc == SQLITE_ROW) {
    user_id = sqlite3_column_int64(stmt, 0);
    client = kcps__server_db_dup_text(stmt, 1);
    bound_source = kcps__server_db_dup_text(stmt, 2);
    stored = kcps__server_db_dup_text(stmt, 3);
    failures = sqlite3_column_int64(stmt, 4);
    expires = sqlite3_column_int64(stmt, 5);
    org = sqlite3_column_int64(stmt, 6);
    email = kcps__server_db_dup_text(stmt, 7);
  }
  sqlite3_finalize(stmt);
  if (rc < 0)
    return VERIFY_ERROR;

  /* The HMAC is computed on every path, so timing tells little. */
  char given[65];
  code_hmac(server, token_hash, code, given);
  if (rc != SQLITE_ROW || g_strcmp0(bound_source, source) != 0)
    return VERIFY_REFUSED; /* unknown, used, or another address's attempt */

  /* An expired attempt, or one of a locked account, ends here. */
  bool expired = expires <= now;
  *locked_until = expired ? 0 : kcps__server_lockout_until_locked(server, user_id, source);
  bool locked = *locked_until > 0;
  bool right = !expired && !locked && kcps_crypto_streq(given, stored);
  gint64 threshold = kcps__server_setting_locked(server, org, "lockout_threshold");
  bool end = expired || locked || right || failures + 1 >= threshold;

  stmt = kcps__server_db_prepare(server,
                                 end ? "DELETE FROM mfa_attempts WHERE token_hash = ?"
                                     : "UPDATE mfa_attempts SET failures = failures + 1"
                                       " WHERE token_hash = ?",
                                 error);
  if (!stmt)
    return VERIFY_ERROR;
  sqlite3_bind_text(stmt, 1, token_hash, -1, SQLITE_STATIC);
  rc = kcps__server_db_step(server, stmt, error);
  sqlite3_finalize(stmt);
  if (rc < 0)
    return VERIFY_ERROR;
  /* Two requests with the right code: the lock orders them; the second
   * finds no attempt above. */
  if (right) {
    kcps__server_lockout_succeeded_locked(server, user_id, source);
    *user_out = user_id;
    *client_out = g_steal_pointer(&client);
    return VERIFY_OK;
  }
  if (expired)
    return VERIFY_REFUSED;
  if (locked) {
    kcps__server_audit_locked(server, org, user_id, "mfa.failed", email, source,
                              "code refused: the account is locked");
    return VERIFY_LOCKED;
  }
  *locked_until = kcps__server_lockout_fail_until_locked(server, user_id, source);
  kcps__server_audit_locked(server, org, user_id, "mfa.failed", email, source,
                            end ? "wrong code; the attempt ended" : "wrong code");
  return *locked_until > 0 ? VERIFY_LOCKED : VERIFY_REFUSED;
}

static void
route_verify(kcps_server_t *server, kcps_http_req_t *req, const kcps_server_session_t *session,
             const char *id)
{
  (void)session;
  (void)id;
  JsonObject *obj = kcps__server_req_object(req);
  if (!obj)
    return;
  g_autoptr(GError) error = NULL;
  const char *token = NULL, *code = NULL;
  if (!check_verify(obj, &token, &code, &error)) {
    kcps__server_respond_bad(req, error);
    return;
  }
  char source[64], token_hash[65];
  kcps__server_req_source(req, source, sizeof source);
  kcps_crypto_sha256_hex(token, strlen(token), token_hash);

  gint64 user_id = 0, locked_until = 0;
  g_autofree char *client = NULL;
  g_mutex_lock(&server->lock);
  verify_t v = verify_locked(server, token_hash, code, source, &user_id, &client, &locked_until,
                             &error);
  g_mutex_unlock(&server->lock);
  switch (v) {
  case VERIFY_OK:
    kcps__server_session_respond(server, req, user_id, client, source);
    break;
  case VERIFY_REFUSED:
    kcps_http_respond_error(req, 401, "invalid_code",
                            "the code is wrong or no longer valid");
    break;
  case VERIFY_LOCKED:
    kcps__server_respond_locked(req, 401, locked_until);
    break;
  case VERIFY_ERROR:
    kcps__server_respond_internal(req, error);
    break;
  }
}
