/* Devices (white paper section 7 and 4.4-4.5): registration, device
 * credentials and login options, PIN rules and PIN login, ID cards.
 * (Skeleton: the devices helper fills this in.) */
#include "server-private.h"

#include "common/crypto.h"

#include <openssl/crypto.h>
#include <string.h>

const char kcps__server_schema_devices[] = "";

bool
kcps__server_pin_setting_check_locked(kcps_server_t *server, gint64 org, const char *key,
                                      gint64 value, GError **error)
{
  (void)server;
  (void)org;
  (void)key;
  (void)value;
  (void)error;
  return true;
}

static void
route_device_login(kcps_server_t *server, kcps_http_req_t *req,
                                const kcps_server_session_t *session, const char *id)
{
  (void)session;
  (void)id;
  JsonObject *obj = kcps__server_req_object(req);
  if (!obj)
    return;
  g_autoptr(GError) error = NULL;
  kcps_server_device_login_req_t in;
  if (!kcps__server_check_device_login(obj, &in, &error)) {
    kcps__server_respond_bad(req, error);
    return;
  }

  char given[65];
  kcps_crypto_sha256_hex(in.secret, strlen(in.secret), given);

  gint64 device_id = 0;
  g_autofree char *stored = NULL;
  g_mutex_lock(&server->lock);
  sqlite3_stmt *stmt = kcps__server_db_prepare(
      server, "SELECT id, secret_hash FROM devices WHERE name = ? AND active = 1", &error);
  if (stmt) {
    sqlite3_bind_text(stmt, 1, in.device, -1, SQLITE_STATIC);
    if (kcps__server_db_step(server, stmt, &error) == SQLITE_ROW) {
      device_id = sqlite3_column_int64(stmt, 0);
      stored = kcps__server_db_dup_text(stmt, 1);
    }
  }
  sqlite3_finalize(stmt);

  /* Compare against a dummy for unknown devices: same work either way. */
  bool ok = kcps_crypto_streq(given, stored ? stored : server->dummy_secret_hash) &&
            stored && device_id > 0;
  char token_hash[65];
  g_autofree char *token =
      ok && !error ? kcps__server_session_create_locked(server, KCPS_SESSION_DEVICE, 0, device_id,
                                            KCPS_SERVER_DEVICE_TTL, token_hash, &error)
                   : NULL;
  g_mutex_unlock(&server->lock);

  if (error)
    kcps__server_respond_internal(req, error);
  else if (!ok)
    kcps_http_respond_error(req, 401, "invalid_credentials", "wrong device name or secret");
  else {
    kcps__server_respond_token(req, 200, token, KCPS_SERVER_DEVICE_TTL, NULL);
    OPENSSL_cleanse(token, strlen(token));
  }
}

static void
route_pin_login(kcps_server_t *server, kcps_http_req_t *req,
                             const kcps_server_session_t *session, const char *id)
{
  (void)id;
  JsonObject *obj = kcps__server_req_object(req);
  if (!obj)
    return;
  g_autoptr(GError) error = NULL;
  kcps_server_pin_req_t in;
  if (!kcps__server_check_pin(obj, &in, &error)) {
    kcps__server_respond_bad(req, error);
    return;
  }

  /* PINs are unique within an organization: the HMAC finds the user. */
  char hmac[65];
  kcps__server_pin_hmac(server, session->device_org_id, in.pin, hmac);

  gint64 user_id = 0;
  g_autofree char *email = NULL;
  g_autofree char *name = NULL;
  g_autofree char *token = NULL;
  char token_hash[65];
  g_mutex_lock(&server->lock);
  sqlite3_stmt *stmt = kcps__server_db_prepare(
      server,
      "SELECT id, email, name FROM users WHERE org_id = ? AND pin_hmac = ? AND active = 1",
      &error);
  if (stmt) {
    sqlite3_bind_int64(stmt, 1, session->device_org_id);
    sqlite3_bind_text(stmt, 2, hmac, -1, SQLITE_STATIC);
    if (kcps__server_db_step(server, stmt, &error) == SQLITE_ROW) {
      user_id = sqlite3_column_int64(stmt, 0);
      email = kcps__server_db_dup_text(stmt, 1);
      name = kcps__server_db_dup_text(stmt, 2);
    }
  }
  sqlite3_finalize(stmt);
  if (user_id > 0 && !error)
    token = kcps__server_session_create_locked(server, KCPS_SESSION_USER_DEVICE, user_id, session->device_id,
                                  KCPS_SERVER_USER_DEVICE_TTL, token_hash, &error);
  g_mutex_unlock(&server->lock);

  if (error) {
    kcps__server_respond_internal(req, error);
    return;
  }
  if (user_id == 0) {
    kcps_http_respond_error(req, 401, "invalid_pin", "wrong PIN");
    return;
  }
  g_autoptr(JsonBuilder) b = json_builder_new();
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "email");
  json_builder_add_string_value(b, email);
  json_builder_set_member_name(b, "name");
  json_builder_add_string_value(b, name);
  json_builder_end_object(b);
  kcps__server_respond_token(req, 200, token, KCPS_SERVER_USER_DEVICE_TTL, json_builder_get_root(b));
  OPENSSL_cleanse(token, strlen(token));
}

const kcps_server_route_t kcps__server_routes_devices[] = {
  {"POST", "/api/v1/device/login", KCPS_NEED_NONE, route_device_login},
  {"POST", "/api/v1/device/pin-login", KCPS_NEED_DEVICE, route_pin_login},
  {NULL, NULL, KCPS_NEED_NONE, NULL},
};
