/* Devices (white paper section 7 and 4.5): registration by an admin, the
 * device's own credential, its login options (simple, ID card, PIN) and
 * the logins at the device they allow, and users' ID cards. PINs live in
 * server-pins.c. */
#include "server-devices-private.h"

#include "common/crypto.h"

#include <openssl/crypto.h>
#include <string.h>

/* A lower-case v4 UUID made by SQLite (rows inserted without one). */
#define SQL_UUID                                                                                   \
  "lower(hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4'"                                  \
  " || substr(hex(randomblob(2)), 2) || '-a' || substr(hex(randomblob(2)), 2) || '-'"              \
  " || hex(randomblob(6)))"

/* Devices get a public id, a serial number (unique; NULL for devices made
 * before registration existed, and once deleted), their login options (all
 * three on unless set) and a deletion mark (a device with job logs stays for
 * the reports). Users get a sealed copy of their PIN. Cards are stored as
 * HMACs per organization, with the last four characters for display. */
const char kcps__server_schema_devices[] =
    "ALTER TABLE devices ADD COLUMN public_id TEXT;"
    "ALTER TABLE devices ADD COLUMN serial TEXT;"
    "ALTER TABLE devices ADD COLUMN login_options INTEGER NOT NULL DEFAULT 7"
    "  CHECK (login_options BETWEEN 0 AND 7);"
    "ALTER TABLE devices ADD COLUMN deleted INTEGER;"
    "UPDATE devices SET public_id = " SQL_UUID " WHERE public_id IS NULL;"
    "CREATE UNIQUE INDEX devices_public_id ON devices(public_id);"
    "CREATE UNIQUE INDEX devices_serial ON devices(serial);"
    "CREATE INDEX devices_org ON devices(org_id);"
    "CREATE TRIGGER devices_public_id AFTER INSERT ON devices WHEN NEW.public_id IS NULL"
    " BEGIN UPDATE devices SET public_id = " SQL_UUID " WHERE id = NEW.id; END;"
    "ALTER TABLE users ADD COLUMN pin_sealed TEXT;"
    "CREATE TABLE cards ("
    "  id INTEGER PRIMARY KEY,"
    "  public_id TEXT NOT NULL UNIQUE,"
    "  org_id INTEGER NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,"
    "  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    "  card_hmac TEXT NOT NULL,"
    "  last4 TEXT NOT NULL,"
    "  label TEXT NOT NULL,"
    "  created INTEGER NOT NULL,"
    "  UNIQUE (org_id, card_hmac));"
    "CREATE INDEX cards_user ON cards(user_id);";

static const char *const option_names[] = {"simple", "card", "pin"};

/* Shared helpers ---------------------------------------------------------- */

bool
kcps__server_body_none(kcps_http_req_t *req)
{
  size_t len = 0;
  const char *body = kcps_http_req_body(req, &len);
  if (!body || len == 0)
    return true;
  JsonObject *obj = kcps__server_req_object(req);
  if (!obj)
    return false;
  static const char *const none[] = {NULL};
  g_autoptr(GError) error = NULL;
  if (!kcps__server_check_fields(obj, none, &error)) {
    kcps__server_respond_bad(req, error);
    return false;
  }
  return true;
}

gint64
kcps__server_user_for_admin(kcps_server_t *server, kcps_http_req_t *req,
                            const kcps_server_session_t *session, const char *public_id, bool write,
                            gint64 *org_out, char **email_out)
{
  gint64 user_id = 0, org = 0;
  char *email = NULL;
  bool visible = false, may = false;
  g_mutex_lock(&server->lock);
  sqlite3_stmt *stmt =
      kcps__server_is_uuid(public_id)
          ? kcps__server_db_prepare(server,
                                    "SELECT id, org_id, email FROM users WHERE public_id = ?", NULL)
          : NULL;
  if (stmt) {
    sqlite3_bind_text(stmt, 1, public_id, -1, SQLITE_STATIC);
    if (kcps__server_db_step(server, stmt, NULL) == SQLITE_ROW) {
      user_id = sqlite3_column_int64(stmt, 0);
      org = sqlite3_column_int64(stmt, 1);
      email = kcps__server_db_dup_text(stmt, 2);
    }
  }
  sqlite3_finalize(stmt);
  /* Users the caller has no business with look absent. */
  visible = user_id > 0 && kcps__server_org_within_locked(server, session->user_org_id, org);
  may = visible && kcps__server_may_locked(server, session, KCPS_DATA_USERS, org, write);
  g_mutex_unlock(&server->lock);
  if (!visible || !may) {
    g_free(email);
    if (!visible)
      kcps_http_respond_error(req, 404, "not_found", "no such user");
    else
      kcps_http_respond_error(req, 403, "forbidden", "your role may not %s this user's data",
                              write ? "change" : "see");
    return 0;
  }
  *org_out = org;
  if (email_out)
    *email_out = email;
  else
    g_free(email);
  return user_id;
}

bool
kcps__server_device_source_locked(kcps_server_t *server, gint64 device_id, char *buf, size_t len,
                                  gint64 *options_out)
{
  sqlite3_stmt *stmt = kcps__server_db_prepare(server,
                                               "SELECT public_id, login_options FROM devices"
                                               " WHERE id = ? AND active = 1 AND deleted IS NULL",
                                               NULL);
  if (!stmt)
    return false;
  sqlite3_bind_int64(stmt, 1, device_id);
  bool found = kcps__server_db_step(server, stmt, NULL) == SQLITE_ROW;
  if (found) {
    g_snprintf(buf, len, "device:%s", (const char *)sqlite3_column_text(stmt, 0));
    *options_out = sqlite3_column_int64(stmt, 1);
  }
  sqlite3_finalize(stmt);
  return found;
}

/* Device records ------------------------------------------------------------ */

#define DEVICE_COLUMNS                                                                             \
  "d.id, d.org_id, d.public_id, d.serial, d.name, d.login_options, d.created,"                     \
  " o.public_id"
#define DEVICE_FROM " FROM devices d JOIN orgs o ON o.id = d.org_id"

typedef struct {
  gint64 id;
  gint64 org;
  char *public_id;
  char *serial;
  char *name;
  gint64 options;
  gint64 created;
  char *org_public_id;
} device_t;

static void
device_clear(device_t *d)
{
  g_free(d->public_id);
  g_free(d->serial);
  g_free(d->name);
  g_free(d->org_public_id);
  memset(d, 0, sizeof *d);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(device_t, device_clear)

static void
device_read(sqlite3_stmt *stmt, device_t *d)
{
  d->id = sqlite3_column_int64(stmt, 0);
  d->org = sqlite3_column_int64(stmt, 1);
  d->public_id = kcps__server_db_dup_text(stmt, 2);
  d->serial = kcps__server_db_dup_text(stmt, 3);
  d->name = kcps__server_db_dup_text(stmt, 4);
  d->options = sqlite3_column_int64(stmt, 5);
  d->created = sqlite3_column_int64(stmt, 6);
  d->org_public_id = kcps__server_db_dup_text(stmt, 7);
}

/* A registered (not deleted) device by public id; caller holds the lock. */
static bool
device_find_locked(kcps_server_t *server, const char *public_id, device_t *out, GError **error)
{
  if (!kcps__server_is_uuid(public_id))
    return false;
  sqlite3_stmt *stmt = kcps__server_db_prepare(
      server, "SELECT " DEVICE_COLUMNS DEVICE_FROM " WHERE d.public_id = ? AND d.deleted IS NULL",
      error);
  if (!stmt)
    return false;
  sqlite3_bind_text(stmt, 1, public_id, -1, SQLITE_STATIC);
  bool found = kcps__server_db_step(server, stmt, error) == SQLITE_ROW;
  if (found)
    device_read(stmt, out);
  sqlite3_finalize(stmt);
  return found;
}

static void
add_options(JsonBuilder *b, gint64 options)
{
  json_builder_set_member_name(b, "login_options");
  json_builder_begin_array(b);
  for (size_t i = 0; i < G_N_ELEMENTS(option_names); i++)
    if (options & (1 << i))
      json_builder_add_string_value(b, option_names[i]);
  json_builder_end_array(b);
}

/* The device as JSON (never its secret; secret only when just made). */
static JsonNode *
device_json(const device_t *d, const char *secret)
{
  g_autoptr(JsonBuilder) b = json_builder_new();
  json_builder_begin_object(b);
  kcps__server_json_string(b, "id", d->public_id);
  kcps__server_json_string(b, "serial", d->serial);
  kcps__server_json_string(b, "name", d->name);
  add_options(b, d->options);
  kcps__server_json_string(b, "org", d->org_public_id);
  g_autofree char *created = kcps__server_iso_time(d->created);
  kcps__server_json_string(b, "created", created);
  if (secret)
    kcps__server_json_string(b, "secret", secret);
  json_builder_end_object(b);
  return json_builder_get_root(b);
}

/* The device of a /api/v1/devices/{id} route when the session may reach
 * it: 404 when absent or outside the caller's tree, 403 when seen but not
 * allowed (Table 2-1: devices of customers, for their admin and the
 * providers above). Answers itself and returns false otherwise. */
static bool
device_for_session(kcps_server_t *server, kcps_http_req_t *req,
                   const kcps_server_session_t *session, const char *public_id, bool write,
                   device_t *out)
{
  g_autoptr(GError) error = NULL;
  g_mutex_lock(&server->lock);
  bool found = device_find_locked(server, public_id, out, &error);
  bool visible = found && kcps__server_org_within_locked(server, session->user_org_id, out->org);
  bool may =
      visible && kcps__server_may_locked(server, session, KCPS_DATA_DEVICES, out->org, write);
  g_mutex_unlock(&server->lock);
  if (error)
    kcps__server_respond_internal(req, error);
  else if (!visible)
    kcps_http_respond_error(req, 404, "not_found", "no such device");
  else if (!may)
    kcps_http_respond_error(req, 403, "forbidden", "your role may not %s this device",
                            write ? "change" : "see");
  return !error && may;
}

/* Body fields of devices ---------------------------------------------------- */

/* "login_options": an array of distinct "simple", "card", "pin" (may be
 * empty: no one logs in at that device). present false when absent. */
static bool
check_options(JsonObject *obj, gint64 *out, bool *present, GError **error)
{
  JsonNode *node = json_object_get_member(obj, "login_options");
  *present = node != NULL;
  if (!node)
    return true;
  static const char rule[] =
      "field \"login_options\" must be an array of distinct \"simple\", \"card\", \"pin\"";
  if (!JSON_NODE_HOLDS_ARRAY(node))
    return kcps__server_set_bad(error, "%s", rule);
  JsonArray *array = json_node_get_array(node);
  gint64 bits = 0;
  for (guint i = 0; i < json_array_get_length(array); i++) {
    JsonNode *e = json_array_get_element(array, i);
    const char *name = JSON_NODE_HOLDS_VALUE(e) && json_node_get_value_type(e) == G_TYPE_STRING
                           ? json_node_get_string(e)
                           : NULL;
    gint64 bit = 0;
    for (size_t k = 0; name && k < G_N_ELEMENTS(option_names); k++)
      if (strcmp(name, option_names[k]) == 0)
        bit = 1 << k;
    if (!bit || (bits & bit))
      return kcps__server_set_bad(error, "%s", rule);
    bits |= bit;
  }
  *out = bits;
  return true;
}

/* A serial number: 1-64 letters, digits and - . _ */
static bool
check_serial(JsonObject *obj, bool required, const char **out, GError **error)
{
  if (!kcps__server_field_string(obj, "serial", 1, KCPS_SERVER_MAX_SERIAL,
                                 required ? KCPS_TEXT_PLAIN : KCPS_TEXT_OPTIONAL, out, error))
    return false;
  for (const char *p = *out; p && *p; p++)
    if (!g_ascii_isalnum(*p) && !strchr("-._", *p))
      return kcps__server_set_bad(error,
                                  "field \"serial\" may hold only letters, digits and - . _");
  return true;
}

bool
kcps__server_check_device(JsonObject *obj, bool patch, kcps_server_device_req_t *out,
                          GError **error)
{
  static const char *const reg_fields[] = {"serial", "name", "login_options", NULL};
  static const char *const patch_fields[] = {"name", "login_options", NULL};
  kcps_server_device_req_t r = {.options = KCPS_LOGIN_ALL};
  if (!kcps__server_check_fields(obj, patch ? patch_fields : reg_fields, error) ||
      (!patch && !check_serial(obj, true, &r.serial, error)) ||
      !kcps__server_field_string(obj, "name", 1, KCPS_SERVER_MAX_DEVICE,
                                 patch ? KCPS_TEXT_OPTIONAL : KCPS_TEXT_PLAIN, &r.name, error) ||
      !check_options(obj, &r.options, &r.has_options, error))
    return false;
  if (patch && !r.name && !r.has_options)
    return kcps__server_set_bad(error, "nothing to change: give \"name\" and/or \"login_options\"");
  *out = r;
  return true;
}

/* Registration and management ----------------------------------------------- */

/* Which of name and serial another device holds already ("name",
 * "serial" or NULL). Caller holds the lock. */
static const char *
device_clash_locked(kcps_server_t *server, gint64 except, const char *name, const char *serial,
                    GError **error)
{
  sqlite3_stmt *stmt = kcps__server_db_prepare(
      server,
      "SELECT name = ?1, serial IS ?2 FROM devices"
      " WHERE id <> ?3 AND (name = ?1 OR (?2 IS NOT NULL AND serial = ?2)) LIMIT 1",
      error);
  if (!stmt)
    return NULL;
  sqlite3_bind_text(stmt, 1, name ? name : "", -1, SQLITE_STATIC);
  if (serial)
    sqlite3_bind_text(stmt, 2, serial, -1, SQLITE_STATIC);
  sqlite3_bind_int64(stmt, 3, except);
  const char *which = NULL;
  if (kcps__server_db_step(server, stmt, error) == SQLITE_ROW)
    which = sqlite3_column_int(stmt, 1) && serial ? "serial" : "name";
  sqlite3_finalize(stmt);
  return which;
}

static void
route_register_device(kcps_server_t *server, kcps_http_req_t *req,
                      const kcps_server_session_t *session, const char *id)
{
  JsonObject *obj = kcps__server_req_object(req);
  if (!obj)
    return;
  g_autoptr(GError) error = NULL;
  kcps_server_device_req_t in;
  if (!kcps__server_check_device(obj, false, &in, &error)) {
    kcps__server_respond_bad(req, error);
    return;
  }
  const char *serial = in.serial, *name = in.name;
  gint64 options = in.options;
  gint64 org = kcps__server_require(server, req, session, KCPS_DATA_DEVICES, true, id);
  if (!org)
    return;

  g_autofree char *secret = kcps_crypto_random_token(32);
  if (!secret) {
    g_set_error_literal(&error, KCPS_SERVER_ERROR, KCPS_SERVER_ERROR_CRYPTO, "no randomness");
    kcps__server_respond_internal(req, error);
    return;
  }
  char secret_hash[65];
  kcps_crypto_sha256_hex(secret, strlen(secret), secret_hash);
  g_autofree char *public_id = g_uuid_string_random();

  g_auto(device_t) d = {0};
  const char *clash = NULL;
  g_mutex_lock(&server->lock);
  g_autofree char *type = kcps__server_org_type_locked(server, org);
  bool customer = g_strcmp0(type, "customer") == 0;
  if (customer)
    clash = device_clash_locked(server, 0, name, serial, &error);
  if (customer && !clash && !error) {
    sqlite3_stmt *stmt = kcps__server_db_prepare(
        server,
        "INSERT INTO devices (org_id, name, secret_hash, created, public_id, serial, login_options)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        &error);
    if (stmt) {
      sqlite3_bind_int64(stmt, 1, org);
      sqlite3_bind_text(stmt, 2, name, -1, SQLITE_STATIC);
      sqlite3_bind_text(stmt, 3, secret_hash, -1, SQLITE_STATIC);
      sqlite3_bind_int64(stmt, 4, kcps__server_now());
      sqlite3_bind_text(stmt, 5, public_id, -1, SQLITE_STATIC);
      sqlite3_bind_text(stmt, 6, serial, -1, SQLITE_STATIC);
      sqlite3_bind_int64(stmt, 7, options);
      kcps__server_db_step(server, stmt, &error);
    }
    sqlite3_finalize(stmt);
    if (!error && device_find_locked(server, public_id, &d, &error)) {
      g_autofree char *detail = g_strdup_printf("serial %s", serial);
      kcps__server_audit_locked(server, org, session->user_id, "device.registered", name,
                                session->source, detail);
    }
  }
  g_mutex_unlock(&server->lock);

  if (error)
    kcps__server_respond_internal(req, error);
  else if (!customer)
    kcps_http_respond_error(req, 409, "conflict",
                            "devices belong to customer organizations; this one is a %s", type);
  else if (clash)
    kcps_http_respond_error(req, 409, "conflict", "a device with this %s is registered already",
                            clash);
  else if (!d.id)
    kcps_http_respond_error(req, 500, "internal", "the device vanished after registration");
  else {
    g_autoptr(JsonNode) node = device_json(&d, secret);
    kcps_http_respond_json(req, 201, node);
  }
  OPENSSL_cleanse(secret, strlen(secret));
}

static void
route_list_devices(kcps_server_t *server, kcps_http_req_t *req,
                   const kcps_server_session_t *session, const char *id)
{
  gint64 org = kcps__server_require(server, req, session, KCPS_DATA_DEVICES, false, id);
  if (!org)
    return;
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonBuilder) b = json_builder_new();
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "devices");
  json_builder_begin_array(b);
  g_mutex_lock(&server->lock);
  sqlite3_stmt *stmt =
      kcps__server_db_prepare(server,
                              "SELECT " DEVICE_COLUMNS DEVICE_FROM
                              " WHERE d.org_id = ? AND d.deleted IS NULL ORDER BY d.id",
                              &error);
  if (stmt) {
    sqlite3_bind_int64(stmt, 1, org);
    while (kcps__server_db_step(server, stmt, &error) == SQLITE_ROW) {
      g_auto(device_t) d = {0};
      device_read(stmt, &d);
      json_builder_add_value(b, device_json(&d, NULL));
    }
  }
  sqlite3_finalize(stmt);
  g_mutex_unlock(&server->lock);
  json_builder_end_array(b);
  json_builder_end_object(b);
  if (error) {
    kcps__server_respond_internal(req, error);
    return;
  }
  g_autoptr(JsonNode) root = json_builder_get_root(b);
  kcps_http_respond_json(req, 200, root);
}

static void
route_get_device(kcps_server_t *server, kcps_http_req_t *req, const kcps_server_session_t *session,
                 const char *id)
{
  g_auto(device_t) d = {0};
  if (!device_for_session(server, req, session, id, false, &d))
    return;
  g_autoptr(JsonNode) node = device_json(&d, NULL);
  kcps_http_respond_json(req, 200, node);
}

/* Ends every session at a device (its own and its users'); caller holds
 * the lock. */
static bool
end_device_sessions_locked(kcps_server_t *server, gint64 device_id, GError **error)
{
  sqlite3_stmt *stmt =
      kcps__server_db_prepare(server, "DELETE FROM sessions WHERE device_id = ?", error);
  if (!stmt)
    return false;
  sqlite3_bind_int64(stmt, 1, device_id);
  bool ok = kcps__server_db_step(server, stmt, error) == SQLITE_DONE;
  sqlite3_finalize(stmt);
  return ok;
}

static void
route_patch_device(kcps_server_t *server, kcps_http_req_t *req,
                   const kcps_server_session_t *session, const char *id)
{
  JsonObject *obj = kcps__server_req_object(req);
  if (!obj)
    return;
  g_autoptr(GError) error = NULL;
  kcps_server_device_req_t in;
  if (!kcps__server_check_device(obj, true, &in, &error)) {
    kcps__server_respond_bad(req, error);
    return;
  }
  const char *name = in.name;
  gint64 options = in.options;
  bool has_options = in.has_options;
  g_auto(device_t) d = {0};
  if (!device_for_session(server, req, session, id, true, &d))
    return;

  const char *clash = NULL;
  g_mutex_lock(&server->lock);
  if (name)
    clash = device_clash_locked(server, d.id, name, NULL, &error);
  if (!clash && !error) {
    sqlite3_stmt *stmt = kcps__server_db_prepare(
        server,
        "UPDATE devices SET name = coalesce(?, name), login_options = coalesce(?, login_options)"
        " WHERE id = ?",
        &error);
    if (stmt) {
      if (name)
        sqlite3_bind_text(stmt, 1, name, -1, SQLITE_STATIC);
      if (has_options)
        sqlite3_bind_int64(stmt, 2, options);
      sqlite3_bind_int64(stmt, 3, d.id);
      kcps__server_db_step(server, stmt, &error);
    }
    sqlite3_finalize(stmt);
    g_autofree char *public_id = g_strdup(d.public_id);
    device_clear(&d);
    if (!error && device_find_locked(server, public_id, &d, &error)) {
      g_autoptr(GString) detail = g_string_new("login options:");
      for (size_t i = 0; i < G_N_ELEMENTS(option_names); i++)
        if (d.options & (1 << i))
          g_string_append_printf(detail, " %s", option_names[i]);
      kcps__server_audit_locked(server, d.org, session->user_id, "device.changed", d.name,
                                session->source, detail->str);
    }
  }
  g_mutex_unlock(&server->lock);
  if (error)
    kcps__server_respond_internal(req, error);
  else if (clash)
    kcps_http_respond_error(req, 409, "conflict", "a device with this name is registered already");
  else if (!d.id)
    kcps_http_respond_error(req, 404, "not_found", "no such device");
  else {
    g_autoptr(JsonNode) node = device_json(&d, NULL);
    kcps_http_respond_json(req, 200, node);
  }
}

static void
route_rotate_secret(kcps_server_t *server, kcps_http_req_t *req,
                    const kcps_server_session_t *session, const char *id)
{
  if (!kcps__server_body_none(req))
    return;
  g_auto(device_t) d = {0};
  if (!device_for_session(server, req, session, id, true, &d))
    return;
  g_autoptr(GError) error = NULL;
  g_autofree char *secret = kcps_crypto_random_token(32);
  if (!secret) {
    g_set_error_literal(&error, KCPS_SERVER_ERROR, KCPS_SERVER_ERROR_CRYPTO, "no randomness");
    kcps__server_respond_internal(req, error);
    return;
  }
  char secret_hash[65];
  kcps_crypto_sha256_hex(secret, strlen(secret), secret_hash);

  /* The new credential and the end of every session made with the old one
   * commit together. */
  g_mutex_lock(&server->lock);
  if (kcps__server_db_begin(server, &error)) {
    sqlite3_stmt *stmt =
        kcps__server_db_prepare(server, "UPDATE devices SET secret_hash = ? WHERE id = ?", &error);
    if (stmt) {
      sqlite3_bind_text(stmt, 1, secret_hash, -1, SQLITE_STATIC);
      sqlite3_bind_int64(stmt, 2, d.id);
      kcps__server_db_step(server, stmt, &error);
    }
    sqlite3_finalize(stmt);
    if (!error)
      end_device_sessions_locked(server, d.id, &error);
    if (!error) {
      kcps__server_audit_locked(server, d.org, session->user_id, "device.secret_rotated", d.name,
                                session->source, "device sessions ended");
      kcps__server_db_commit(server, &error);
    } else {
      kcps__server_db_rollback(server);
    }
  }
  g_mutex_unlock(&server->lock);
  if (error) {
    kcps__server_respond_internal(req, error);
  } else {
    g_autoptr(JsonBuilder) b = json_builder_new();
    json_builder_begin_object(b);
    kcps__server_json_string(b, "id", d.public_id);
    kcps__server_json_string(b, "secret", secret);
    json_builder_end_object(b);
    g_autoptr(JsonNode) root = json_builder_get_root(b);
    kcps_http_respond_json(req, 200, root);
  }
  OPENSSL_cleanse(secret, strlen(secret));
}

static void
route_delete_device(kcps_server_t *server, kcps_http_req_t *req,
                    const kcps_server_session_t *session, const char *id)
{
  g_auto(device_t) d = {0};
  if (!device_for_session(server, req, session, id, true, &d))
    return;
  g_autoptr(GError) error = NULL;
  g_mutex_lock(&server->lock);
  if (kcps__server_db_begin(server, &error)) {
    end_device_sessions_locked(server, d.id, &error);
    /* A device that printed has job logs the reports need: it is retired
     * instead (no credential, no serial, a name no one will choose). */
    sqlite3_stmt *stmt =
        error ? NULL : kcps__server_db_prepare(server, "DELETE FROM devices WHERE id = ?", &error);
    if (stmt) {
      sqlite3_bind_int64(stmt, 1, d.id);
      int rc = sqlite3_step(stmt);
      if (rc != SQLITE_DONE && (rc & 0xff) != SQLITE_CONSTRAINT)
        g_set_error(&error, KCPS_SERVER_ERROR, KCPS_SERVER_ERROR_DB, "database: %s",
                    sqlite3_errmsg(server->db));
      sqlite3_finalize(stmt);
      stmt = NULL;
      if (!error && rc != SQLITE_DONE) {
        stmt = kcps__server_db_prepare(
            server,
            "UPDATE devices SET active = 0, deleted = ?, serial = NULL, secret_hash = '-',"
            " login_options = 0, name = name || ' [deleted ' || public_id || ']' WHERE id = ?",
            &error);
        if (stmt) {
          sqlite3_bind_int64(stmt, 1, kcps__server_now());
          sqlite3_bind_int64(stmt, 2, d.id);
          kcps__server_db_step(server, stmt, &error);
        }
        sqlite3_finalize(stmt);
      }
    }
    if (!error) {
      g_autofree char *detail = g_strdup_printf("serial %s", d.serial ? d.serial : "-");
      kcps__server_audit_locked(server, d.org, session->user_id, "device.deleted", d.name,
                                session->source, detail);
      kcps__server_db_commit(server, &error);
    } else {
      kcps__server_db_rollback(server);
    }
  }
  g_mutex_unlock(&server->lock);
  if (error)
    kcps__server_respond_internal(req, error);
  else
    kcps_http_respond_empty(req, 204);
}

/* The device's own login --------------------------------------------------- */

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
  char source[64];
  kcps__server_req_source(req, source, sizeof source);

  gint64 device_id = 0, org = 0;
  g_autofree char *stored = NULL;
  g_mutex_lock(&server->lock);
  sqlite3_stmt *stmt = kcps__server_db_prepare(
      server,
      "SELECT id, secret_hash, org_id FROM devices WHERE name = ? AND active = 1"
      " AND deleted IS NULL",
      &error);
  if (stmt) {
    sqlite3_bind_text(stmt, 1, in.device, -1, SQLITE_STATIC);
    if (kcps__server_db_step(server, stmt, &error) == SQLITE_ROW) {
      device_id = sqlite3_column_int64(stmt, 0);
      stored = kcps__server_db_dup_text(stmt, 1);
      org = sqlite3_column_int64(stmt, 2);
    }
  }
  sqlite3_finalize(stmt);

  /* Compare against a dummy for unknown devices: same work either way. */
  bool ok = kcps_crypto_streq(given, stored ? stored : server->dummy_secret_hash) && stored &&
            device_id > 0;
  char token_hash[65];
  g_autofree char *token =
      ok && !error ? kcps__server_session_create_locked(server, KCPS_SESSION_DEVICE, 0, device_id,
                                                        KCPS_SERVER_DEVICE_TTL, token_hash, &error)
                   : NULL;
  if (!ok && device_id > 0)
    kcps__server_audit_locked(server, org, 0, "device.login_failed", in.device, source,
                              "wrong device secret");
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

/* Logins at the device ----------------------------------------------------- */

/* Is the option on at the session's device? Answers 403 itself when not
 * (and 401 when the device is gone). Fills the lockout source. */
static bool
option_on(kcps_server_t *server, kcps_http_req_t *req, const kcps_server_session_t *session,
          gint64 option, const char *what, char *source, size_t len)
{
  gint64 options = 0;
  g_mutex_lock(&server->lock);
  bool found = kcps__server_device_source_locked(server, session->device_id, source, len, &options);
  g_mutex_unlock(&server->lock);
  if (!found) {
    kcps_http_respond_error(req, 401, "unauthorized", "the device is no longer registered");
    return false;
  }
  if (!(options & option)) {
    kcps_http_respond_error(req, 403, "forbidden", "%s is off at this device", what);
    return false;
  }
  return true;
}

/* A user-at-device session for user_id at the session's device; caller
 * holds the lock. email and name get the user's. */
static char *
at_device_locked(kcps_server_t *server, const kcps_server_session_t *session, gint64 user_id,
                 const char *how, char **email, char **name, GError **error)
{
  char token_hash[65];
  char *token = kcps__server_session_create_locked(server, KCPS_SESSION_USER_DEVICE, user_id,
                                                   session->device_id, KCPS_SERVER_USER_DEVICE_TTL,
                                                   token_hash, error);
  if (!token)
    return NULL;
  sqlite3_stmt *stmt =
      kcps__server_db_prepare(server, "SELECT email, name FROM users WHERE id = ?", error);
  if (stmt) {
    sqlite3_bind_int64(stmt, 1, user_id);
    if (kcps__server_db_step(server, stmt, error) == SQLITE_ROW) {
      *email = kcps__server_db_dup_text(stmt, 0);
      *name = kcps__server_db_dup_text(stmt, 1);
    }
  }
  sqlite3_finalize(stmt);
  if (!*email) {
    if (error && !*error)
      g_set_error_literal(error, KCPS_SERVER_ERROR, KCPS_SERVER_ERROR_DB,
                          "user vanished during login");
    OPENSSL_cleanse(token, strlen(token));
    g_free(token);
    return NULL;
  }
  g_autofree char *detail = g_strdup_printf("%s at device %s", how, session->device_name);
  kcps__server_audit_locked(server, session->device_org_id, user_id, "login.ok", *email,
                            session->source, detail);
  return token;
}

static void
respond_at_device(kcps_http_req_t *req, char *token, const char *email, const char *name)
{
  g_autoptr(JsonBuilder) b = json_builder_new();
  json_builder_begin_object(b);
  kcps__server_json_string(b, "email", email);
  kcps__server_json_string(b, "name", name);
  json_builder_end_object(b);
  kcps__server_respond_token(req, 200, token, KCPS_SERVER_USER_DEVICE_TTL,
                             json_builder_get_root(b));
  OPENSSL_cleanse(token, strlen(token));
}

/* A failed login at a device: counted (on the account when known, else on
 * the device) and audited. Caller holds the lock. */
static void
failed_at_device_locked(kcps_server_t *server, const kcps_server_session_t *session, gint64 user_id,
                        const char *lock_source, bool locked, const char *subject, const char *how)
{
  if (!locked)
    kcps__server_lockout_failed_locked(server, user_id, lock_source);
  g_autofree char *detail =
      g_strdup_printf("%s at device %s%s", how, session->device_name, locked ? " (locked)" : "");
  kcps__server_audit_locked(server, session->device_org_id, user_id, "login.failed", subject,
                            session->source, detail);
}

/* Simple login: email and password at the panel. The same answer for an
 * unknown account, a wrong password, a locked account and a user of
 * another organization (who is unknown here). */
static void
route_user_login(kcps_server_t *server, kcps_http_req_t *req, const kcps_server_session_t *session,
                 const char *id)
{
  (void)id;
  JsonObject *obj = kcps__server_req_object(req);
  if (!obj)
    return;
  static const char *const allowed[] = {"email", "password", NULL};
  g_autoptr(GError) error = NULL;
  const char *email = NULL, *password = NULL;
  if (!kcps__server_check_fields(obj, allowed, &error) ||
      !kcps__server_field_email(obj, "email", true, &email, &error) ||
      !kcps__server_field_string(obj, "password", 1, KCPS_SERVER_MAX_PASSWORD, KCPS_TEXT_CONTROL,
                                 &password, &error)) {
    kcps__server_respond_bad(req, error);
    return;
  }
  char source[80];
  if (!option_on(server, req, session, KCPS_LOGIN_SIMPLE, "simple login", source, sizeof source))
    return;

  gint64 user_id = 0;
  g_autofree char *hash = NULL;
  g_mutex_lock(&server->lock);
  sqlite3_stmt *stmt = kcps__server_db_prepare(
      server, "SELECT id, password_hash FROM users WHERE email = ? AND org_id = ? AND active = 1",
      &error);
  if (stmt) {
    sqlite3_bind_text(stmt, 1, email, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 2, session->device_org_id);
    if (kcps__server_db_step(server, stmt, &error) == SQLITE_ROW) {
      user_id = sqlite3_column_int64(stmt, 0);
      hash = kcps__server_db_dup_text(stmt, 1);
    }
  }
  sqlite3_finalize(stmt);
  bool locked = kcps__server_lockout_locked(server, user_id, source);
  g_mutex_unlock(&server->lock);
  if (error) {
    kcps__server_respond_internal(req, error);
    return;
  }

  /* Argon2 outside the lock, in one of the bounded slots; an unknown or
   * locked account costs the same verification. */
  kcps__server_hash_enter(server);
  bool ok = kcps__server_password_verify(hash ? hash : server->dummy_hash, password) && hash &&
            user_id > 0;
  kcps__server_hash_leave(server);

  g_autofree char *token = NULL;
  g_autofree char *user_email = NULL;
  g_autofree char *name = NULL;
  g_mutex_lock(&server->lock);
  /* Locked meanwhile (failures elsewhere)? Ask again. */
  locked = locked || kcps__server_lockout_locked(server, user_id, source);
  if (ok && !locked) {
    kcps__server_lockout_succeeded_locked(server, user_id, source);
    token = at_device_locked(server, session, user_id, "password", &user_email, &name, &error);
  } else {
    failed_at_device_locked(server, session, user_id, source, locked, email, "password");
  }
  g_mutex_unlock(&server->lock);

  if (error)
    kcps__server_respond_internal(req, error);
  else if (!token)
    kcps_http_respond_error(req, 401, "invalid_credentials", "wrong email or password");
  else
    respond_at_device(req, token, user_email, name);
}

/* Shared by PIN and card login: the user found by an HMAC (user_id 0 when
 * none), checked against lockout, counted, answered. Takes the lock. */
static void
finish_secret_login(kcps_server_t *server, kcps_http_req_t *req,
                    const kcps_server_session_t *session, const char *source, const char *sql,
                    const char *hmac, const char *how, const char *pin, const char *code,
                    const char *message)
{
  g_autoptr(GError) error = NULL;
  gint64 user_id = 0;
  g_autofree char *token = NULL;
  g_autofree char *email = NULL;
  g_autofree char *name = NULL;
  g_mutex_lock(&server->lock);
  /* The device first: once too many wrong PINs or cards were tried there,
   * nothing is looked up until it unlocks. */
  bool locked = kcps__server_lockout_locked(server, 0, source);
  sqlite3_stmt *stmt = hmac && !locked ? kcps__server_db_prepare(server, sql, &error) : NULL;
  if (stmt) {
    sqlite3_bind_int64(stmt, 1, session->device_org_id);
    sqlite3_bind_text(stmt, 2, hmac, -1, SQLITE_STATIC);
    if (kcps__server_db_step(server, stmt, &error) == SQLITE_ROW)
      user_id = sqlite3_column_int64(stmt, 0);
  }
  sqlite3_finalize(stmt);
  if (!error) {
    /* A correct PIN or card of a locked account is refused like a wrong one. */
    locked = locked || (user_id > 0 && kcps__server_lockout_locked(server, user_id, source));
    if (user_id > 0 && !locked) {
      kcps__server_lockout_succeeded_locked(server, user_id, source);
      kcps__server_lockout_succeeded_locked(server, 0, source);
      token = at_device_locked(server, session, user_id, how, &email, &name, &error);
      if (token && pin)
        kcps__server_pin_backfill_locked(server, user_id, pin);
    } else {
      /* Unknown PIN or card: no account to count on, so the device counts. */
      failed_at_device_locked(server, session, locked ? user_id : 0, source, locked, NULL, how);
    }
  }
  g_mutex_unlock(&server->lock);

  if (error)
    kcps__server_respond_internal(req, error);
  else if (!token)
    kcps_http_respond_error(req, 401, code, "%s", message);
  else
    respond_at_device(req, token, email, name);
}

static void
route_pin_login(kcps_server_t *server, kcps_http_req_t *req, const kcps_server_session_t *session,
                const char *id)
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
  char source[80];
  if (!option_on(server, req, session, KCPS_LOGIN_PIN, "PIN login", source, sizeof source))
    return;

  /* PINs are unique within an organization: the HMAC finds the user. A PIN
   * shorter or longer than the profile allows never matches. */
  g_mutex_lock(&server->lock);
  bool fits = kcps__server_pin_length_fits_locked(server, session->device_org_id, strlen(in.pin));
  g_mutex_unlock(&server->lock);
  char hmac[65];
  kcps__server_pin_hmac(server, session->device_org_id, in.pin, hmac);
  finish_secret_login(server, req, session, source,
                      "SELECT id FROM users WHERE org_id = ? AND pin_hmac = ? AND active = 1",
                      fits ? hmac : NULL, "PIN", in.pin, "invalid_pin", "wrong PIN");
}

/* ID cards ------------------------------------------------------------------ */

/* A card id: 4-64 letters, digits and - : . _ as the reader reports it;
 * letters count without case (readers differ in how they print hex). */
static bool
check_card(JsonObject *obj, char *norm, size_t len, GError **error)
{
  const char *card = NULL;
  if (!kcps__server_field_string(obj, "card_id", KCPS_SERVER_MIN_CARD_ID, KCPS_SERVER_MAX_CARD_ID,
                                 KCPS_TEXT_PLAIN, &card, error))
    return false;
  size_t n = strlen(card);
  for (size_t i = 0; i < n; i++) {
    if (!g_ascii_isalnum(card[i]) && !strchr("-:._", card[i]))
      return kcps__server_set_bad(error,
                                  "field \"card_id\" may hold only letters, digits and - : . _");
  }
  g_assert(n < len);
  for (size_t i = 0; i <= n; i++)
    norm[i] = g_ascii_toupper(card[i]);
  return true;
}

/* HMAC-SHA256(pepper, "card:" org ":" id): cards of two organizations never
 * share a stored value, and a copy of the database alone reveals none. */
static void
card_hmac(const kcps_server_t *server, gint64 org, const char *card, char out[65])
{
  g_autofree char *msg = g_strdup_printf("card:%" G_GINT64_FORMAT ":%s", org, card);
  kcps_crypto_hmac_sha256_hex(server->pepper, sizeof server->pepper, msg, strlen(msg), out);
  OPENSSL_cleanse(msg, strlen(msg));
}

static void
route_card_login(kcps_server_t *server, kcps_http_req_t *req, const kcps_server_session_t *session,
                 const char *id)
{
  (void)id;
  JsonObject *obj = kcps__server_req_object(req);
  if (!obj)
    return;
  g_autoptr(GError) error = NULL;
  kcps_server_card_req_t in;
  if (!kcps__server_check_card(obj, true, &in, &error)) {
    kcps__server_respond_bad(req, error);
    return;
  }
  char *card = in.card_id;
  char source[80];
  if (!option_on(server, req, session, KCPS_LOGIN_CARD, "ID card login", source, sizeof source))
    return;
  char hmac[65];
  card_hmac(server, session->device_org_id, card, hmac);
  OPENSSL_cleanse(in.card_id, sizeof in.card_id);
  finish_secret_login(server, req, session, source,
                      "SELECT u.id FROM cards c JOIN users u ON u.id = c.user_id"
                      " WHERE c.org_id = ? AND c.card_hmac = ? AND u.active = 1",
                      hmac, "ID card", NULL, "invalid_card", "unknown ID card");
}

static void
add_card(JsonBuilder *b, sqlite3_stmt *stmt)
{
  json_builder_begin_object(b);
  kcps__server_json_string(b, "id", (const char *)sqlite3_column_text(stmt, 0));
  kcps__server_json_string(b, "label", (const char *)sqlite3_column_text(stmt, 1));
  kcps__server_json_string(b, "last4", (const char *)sqlite3_column_text(stmt, 2));
  g_autofree char *created = kcps__server_iso_time(sqlite3_column_int64(stmt, 3));
  kcps__server_json_string(b, "created", created);
  json_builder_end_object(b);
}

#define CARD_COLUMNS "public_id, label, last4, created"

bool
kcps__server_check_card(JsonObject *obj, bool login, kcps_server_card_req_t *out, GError **error)
{
  static const char *const reg_fields[] = {"card_id", "label", NULL};
  static const char *const login_fields[] = {"card_id", NULL};
  const char *label = NULL;
  if (!kcps__server_check_fields(obj, login ? login_fields : reg_fields, error) ||
      !check_card(obj, out->card_id, sizeof out->card_id, error) ||
      (!login && !kcps__server_field_string(obj, "label", 1, KCPS_SERVER_MAX_LABEL,
                                            KCPS_TEXT_OPTIONAL, &label, error))) {
    OPENSSL_cleanse(out->card_id, sizeof out->card_id);
    return false;
  }
  out->label = login ? NULL : label ? label : "ID card";
  return true;
}

/* Checks a card registration body; answers 400 itself. */
static bool
card_body(kcps_http_req_t *req, kcps_server_card_req_t *in)
{
  JsonObject *obj = kcps__server_req_object(req);
  if (!obj)
    return false;
  g_autoptr(GError) error = NULL;
  if (!kcps__server_check_card(obj, false, in, &error)) {
    kcps__server_respond_bad(req, error);
    return false;
  }
  return true;
}

/* Registers card for user_id of org and answers 201 or 409 itself. Takes
 * the lock. actor is who did it (the user, or an admin). */
static void
register_card(kcps_server_t *server, kcps_http_req_t *req, const kcps_server_session_t *session,
              gint64 user_id, gint64 org, const char *email, char *card, const char *label,
              const char *how)
{
  g_autoptr(GError) error = NULL;
  char hmac[65];
  card_hmac(server, org, card, hmac);
  size_t n = strlen(card);
  char last4[5];
  g_strlcpy(last4, card + (n > 4 ? n - 4 : 0), sizeof last4);
  OPENSSL_cleanse(card, n);
  g_autofree char *public_id = g_uuid_string_random();
  bool clash = false;
  g_autoptr(JsonBuilder) b = json_builder_new();
  g_mutex_lock(&server->lock);
  sqlite3_stmt *stmt = kcps__server_db_prepare(
      server,
      "INSERT INTO cards (public_id, org_id, user_id, card_hmac, last4, label, created)"
      " VALUES (?, ?, ?, ?, ?, ?, ?)",
      &error);
  if (stmt) {
    sqlite3_bind_text(stmt, 1, public_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 2, org);
    sqlite3_bind_int64(stmt, 3, user_id);
    sqlite3_bind_text(stmt, 4, hmac, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 5, last4, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 6, label, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 7, kcps__server_now());
    int rc = sqlite3_step(stmt);
    if ((rc & 0xff) == SQLITE_CONSTRAINT)
      clash = true;
    else if (rc != SQLITE_DONE)
      g_set_error(&error, KCPS_SERVER_ERROR, KCPS_SERVER_ERROR_DB, "database: %s",
                  sqlite3_errmsg(server->db));
  }
  sqlite3_finalize(stmt);
  if (!error && !clash) {
    stmt = kcps__server_db_prepare(server, "SELECT " CARD_COLUMNS " FROM cards WHERE public_id = ?",
                                   &error);
    if (stmt) {
      sqlite3_bind_text(stmt, 1, public_id, -1, SQLITE_STATIC);
      if (kcps__server_db_step(server, stmt, &error) == SQLITE_ROW)
        add_card(b, stmt);
    }
    sqlite3_finalize(stmt);
    g_autofree char *detail = g_strdup_printf("%s, label \"%s\", ending %s", how, label, last4);
    kcps__server_audit_locked(server, org, session->user_id, "card.registered", email,
                              session->source, detail);
  }
  g_mutex_unlock(&server->lock);
  if (error) {
    kcps__server_respond_internal(req, error);
  } else if (clash) {
    kcps_http_respond_error(req, 409, "conflict",
                            "this ID card is registered already in this organization");
  } else {
    g_autoptr(JsonNode) root = json_builder_get_root(b);
    kcps_http_respond_json(req, 201, root);
  }
}

static void
respond_cards(kcps_server_t *server, kcps_http_req_t *req, gint64 user_id)
{
  kcps__server_respond_rows(server, req, "cards",
                            "SELECT " CARD_COLUMNS " FROM cards WHERE user_id = ? ORDER BY id",
                            user_id, add_card);
}

static void
route_my_cards(kcps_server_t *server, kcps_http_req_t *req, const kcps_server_session_t *session,
               const char *id)
{
  (void)id;
  respond_cards(server, req, session->user_id);
}

static void
route_add_my_card(kcps_server_t *server, kcps_http_req_t *req, const kcps_server_session_t *session,
                  const char *id)
{
  (void)id;
  kcps_server_card_req_t in;
  if (card_body(req, &in))
    register_card(server, req, session, session->user_id, session->user_org_id, session->email,
                  in.card_id, in.label, "by its owner");
}

static void
route_user_cards(kcps_server_t *server, kcps_http_req_t *req, const kcps_server_session_t *session,
                 const char *id)
{
  gint64 org = 0;
  gint64 user_id = kcps__server_user_for_admin(server, req, session, id, false, &org, NULL);
  if (user_id)
    respond_cards(server, req, user_id);
}

static void
route_add_user_card(kcps_server_t *server, kcps_http_req_t *req,
                    const kcps_server_session_t *session, const char *id)
{
  kcps_server_card_req_t in;
  if (!card_body(req, &in))
    return;
  gint64 org = 0;
  g_autofree char *email = NULL;
  gint64 user_id = kcps__server_user_for_admin(server, req, session, id, true, &org, &email);
  if (user_id)
    register_card(server, req, session, user_id, org, email, in.card_id, in.label,
                  "by an administrator");
  OPENSSL_cleanse(in.card_id, sizeof in.card_id);
}

/* Registration at the device, by the user logged in there. */
static void
route_device_add_card(kcps_server_t *server, kcps_http_req_t *req,
                      const kcps_server_session_t *session, const char *id)
{
  (void)id;
  kcps_server_card_req_t in;
  if (!card_body(req, &in))
    return;
  char source[80];
  if (option_on(server, req, session, KCPS_LOGIN_CARD, "ID card login", source, sizeof source)) {
    g_autofree char *how = g_strdup_printf("at device %s", session->device_name);
    register_card(server, req, session, session->user_id, session->device_org_id, session->email,
                  in.card_id, in.label, how);
  }
  OPENSSL_cleanse(in.card_id, sizeof in.card_id);
}

static void
route_delete_card(kcps_server_t *server, kcps_http_req_t *req, const kcps_server_session_t *session,
                  const char *id)
{
  g_autoptr(GError) error = NULL;
  gint64 card_id = 0, user_id = 0, org = 0;
  g_autofree char *email = NULL;
  g_autofree char *label = NULL;
  g_autofree char *last4 = NULL;
  bool visible = false, may = false;
  g_mutex_lock(&server->lock);
  sqlite3_stmt *stmt =
      kcps__server_is_uuid(id)
          ? kcps__server_db_prepare(server,
                                    "SELECT c.id, c.user_id, c.org_id, u.email, c.label, c.last4"
                                    " FROM cards c JOIN users u ON u.id = c.user_id"
                                    " WHERE c.public_id = ?",
                                    &error)
          : NULL;
  if (stmt) {
    sqlite3_bind_text(stmt, 1, id, -1, SQLITE_STATIC);
    if (kcps__server_db_step(server, stmt, &error) == SQLITE_ROW) {
      card_id = sqlite3_column_int64(stmt, 0);
      user_id = sqlite3_column_int64(stmt, 1);
      org = sqlite3_column_int64(stmt, 2);
      email = kcps__server_db_dup_text(stmt, 3);
      label = kcps__server_db_dup_text(stmt, 4);
      last4 = kcps__server_db_dup_text(stmt, 5);
    }
  }
  sqlite3_finalize(stmt);
  /* Her own card, or one an admin of its organization manages. */
  bool own = card_id > 0 && user_id == session->user_id;
  visible =
      own || (card_id > 0 && kcps__server_org_within_locked(server, session->user_org_id, org) &&
              kcps__server_may_locked(server, session, KCPS_DATA_USERS, org, false));
  may = own || (visible && kcps__server_may_locked(server, session, KCPS_DATA_USERS, org, true));
  if (may && !error) {
    stmt = kcps__server_db_prepare(server, "DELETE FROM cards WHERE id = ?", &error);
    if (stmt) {
      sqlite3_bind_int64(stmt, 1, card_id);
      kcps__server_db_step(server, stmt, &error);
    }
    sqlite3_finalize(stmt);
    g_autofree char *detail = g_strdup_printf(
        "%s, label \"%s\", ending %s", own ? "by its owner" : "by an administrator", label, last4);
    if (!error)
      kcps__server_audit_locked(server, org, session->user_id, "card.deleted", email,
                                session->source, detail);
  }
  g_mutex_unlock(&server->lock);
  if (error)
    kcps__server_respond_internal(req, error);
  else if (!visible)
    kcps_http_respond_error(req, 404, "not_found", "no such card");
  else if (!may)
    kcps_http_respond_error(req, 403, "forbidden", "your role may not delete this card");
  else
    kcps_http_respond_empty(req, 204);
}

const kcps_server_route_t kcps__server_routes_devices[] = {
    /* Registration and management (Table 2-1: devices of customers). */
    {"POST", "/api/v1/orgs/*/devices", KCPS_NEED_USER, route_register_device},
    {"GET", "/api/v1/orgs/*/devices", KCPS_NEED_USER, route_list_devices},
    {"GET", "/api/v1/devices/*", KCPS_NEED_USER, route_get_device},
    {"PATCH", "/api/v1/devices/*", KCPS_NEED_USER, route_patch_device},
    {"DELETE", "/api/v1/devices/*", KCPS_NEED_USER, route_delete_device},
    {"POST", "/api/v1/devices/*/secret", KCPS_NEED_USER, route_rotate_secret},
    /* The device, then its users. */
    {"POST", "/api/v1/device/login", KCPS_NEED_NONE, route_device_login},
    {"POST", "/api/v1/device/user-login", KCPS_NEED_DEVICE, route_user_login},
    {"POST", "/api/v1/device/pin-login", KCPS_NEED_DEVICE, route_pin_login},
    {"POST", "/api/v1/device/card-login", KCPS_NEED_DEVICE, route_card_login},
    {"POST", "/api/v1/device/cards", KCPS_NEED_USER_DEVICE, route_device_add_card},
    /* PINs (server-pins.c). */
    {"GET", "/api/v1/me/pin", KCPS_NEED_USER, kcps__server_route_my_pin},
    {"PUT", "/api/v1/me/pin", KCPS_NEED_USER, kcps__server_route_set_my_pin},
    {"DELETE", "/api/v1/me/pin", KCPS_NEED_USER, kcps__server_route_delete_my_pin},
    {"POST", "/api/v1/me/pin/generate", KCPS_NEED_USER, kcps__server_route_generate_my_pin},
    {"GET", "/api/v1/users/*/pin", KCPS_NEED_USER, kcps__server_route_user_pin},
    {"PUT", "/api/v1/users/*/pin", KCPS_NEED_USER, kcps__server_route_set_user_pin},
    {"DELETE", "/api/v1/users/*/pin", KCPS_NEED_USER, kcps__server_route_delete_user_pin},
    /* ID cards. */
    {"GET", "/api/v1/me/cards", KCPS_NEED_USER, route_my_cards},
    {"POST", "/api/v1/me/cards", KCPS_NEED_USER, route_add_my_card},
    {"GET", "/api/v1/users/*/cards", KCPS_NEED_USER, route_user_cards},
    {"POST", "/api/v1/users/*/cards", KCPS_NEED_USER, route_add_user_card},
    {"DELETE", "/api/v1/cards/*", KCPS_NEED_USER, route_delete_card},
    {NULL, NULL, KCPS_NEED_NONE, NULL},
};
