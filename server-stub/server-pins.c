/* PINs (white paper 4.4): the two sales-region profiles and the PIN length
 * setting, custom, admin-set and generated PINs, their storage (an HMAC to
 * find the user at a device, a sealed copy for the owner to read), and the
 * masking rule (admins see ****, the owner sees her PIN). */
#include "server-devices-private.h"

#include "common/crypto.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A user whose custom PINs clashed this often in a day is refused further
 * custom PINs until the day is over (each clash tells her some colleague's
 * PIN exists; docs/api.md 1.4). */
#define PIN_CLASH_LIMIT 5
#define PIN_CLASH_WINDOW (24 * 3600)
/* Generation retries when a random PIN is taken already. */
#define PIN_GENERATE_TRIES 200

/* The profiles, in the order of the pin_profile setting's values. */
typedef struct {
  const char *name;
  gint64 min, max;   /* selectable PIN lengths */
  gint64 custom_min; /* custom and admin-set PINs only from this length */
} pin_rule_t;

static const pin_rule_t pin_rules[] = {
    {"other", 4, 12, 4},
    {"kda_g", 6, 12, 8},
};

static const pin_rule_t *
rule_of(gint64 profile)
{
  return profile == 1 ? &pin_rules[1] : &pin_rules[0];
}

static bool set_bad(GError **error, int code, const char *fmt, ...) G_GNUC_PRINTF(3, 4);

static bool
set_bad(GError **error, int code, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  char *msg = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  g_set_error_literal(error, KCPS_SERVER_ERROR, code, msg);
  g_free(msg);
  return false;
}

/* The profile and PIN length in force for org; caller holds the lock. */
static const pin_rule_t *
policy_locked(kcps_server_t *server, gint64 org, gint64 *length)
{
  const pin_rule_t *rule = rule_of(kcps__server_setting_locked(server, org, "pin_profile"));
  /* The settings check keeps them consistent; clamp all the same. */
  *length = CLAMP(kcps__server_setting_locked(server, org, "pin_length"), rule->min, rule->max);
  return rule;
}

bool
kcps__server_pin_length_fits_locked(kcps_server_t *server, gint64 org, size_t len)
{
  const pin_rule_t *rule = rule_of(kcps__server_setting_locked(server, org, "pin_profile"));
  return (gint64)len >= rule->min && (gint64)len <= rule->max;
}

/* Settings -------------------------------------------------------------- */

/* The value of key stored on d or between d and top (top itself excluded):
 * what d would keep if top's value changed. */
static gint64
stored_below_locked(kcps_server_t *server, gint64 d, gint64 top, const char *key, bool *found)
{
  *found = false;
  sqlite3_stmt *stmt = kcps__server_db_prepare(
      server,
      "WITH RECURSIVE up(id, depth) AS (SELECT ?1, 0"
      " UNION ALL SELECT o.parent_id, up.depth + 1 FROM orgs o JOIN up ON o.id = up.id"
      " WHERE o.parent_id IS NOT NULL AND o.id <> ?2)"
      " SELECT s.value FROM up JOIN org_settings s ON s.org_id = up.id AND s.key = ?3"
      " WHERE up.id <> ?2 ORDER BY up.depth LIMIT 1",
      NULL);
  if (!stmt)
    return 0;
  sqlite3_bind_int64(stmt, 1, d);
  sqlite3_bind_int64(stmt, 2, top);
  sqlite3_bind_text(stmt, 3, key, -1, SQLITE_STATIC);
  gint64 v = 0;
  if (kcps__server_db_step(server, stmt, NULL) == SQLITE_ROW) {
    v = sqlite3_column_int64(stmt, 0);
    *found = true;
  }
  sqlite3_finalize(stmt);
  return v;
}

bool
kcps__server_pin_setting_check_locked(kcps_server_t *server, gint64 org, const char *key,
                                      gint64 value, GError **error)
{
  bool profile_key = g_strcmp0(key, "pin_profile") == 0;
  if (!profile_key && g_strcmp0(key, "pin_length") != 0)
    return true;

  /* The organization and every one below it that inherits the new value
   * must end up with a length its profile allows. */
  sqlite3_stmt *stmt = kcps__server_db_prepare(
      server,
      "WITH RECURSIVE down(id, depth) AS (SELECT ?, 0"
      " UNION ALL SELECT o.id, down.depth + 1 FROM orgs o JOIN down ON o.parent_id = down.id)"
      " SELECT down.id, o.name FROM down JOIN orgs o ON o.id = down.id ORDER BY down.depth",
      error);
  if (!stmt)
    return false;
  sqlite3_bind_int64(stmt, 1, org);
  g_autoptr(GArray) ids = g_array_new(FALSE, FALSE, sizeof(gint64));
  g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
  int rc;
  while ((rc = kcps__server_db_step(server, stmt, error)) == SQLITE_ROW) {
    gint64 id = sqlite3_column_int64(stmt, 0);
    g_array_append_val(ids, id);
    g_ptr_array_add(names, kcps__server_db_dup_text(stmt, 1));
  }
  sqlite3_finalize(stmt);
  if (rc < 0)
    return false;

  for (guint i = 0; i < ids->len; i++) {
    gint64 d = g_array_index(ids, gint64, i);
    bool found = false;
    gint64 own = d == org ? value : stored_below_locked(server, d, org, key, &found);
    if (d != org && !found)
      own = value;
    gint64 profile = profile_key ? own : kcps__server_setting_locked(server, d, "pin_profile");
    gint64 length = profile_key ? kcps__server_setting_locked(server, d, "pin_length") : own;
    const pin_rule_t *rule = rule_of(profile);
    if (length >= rule->min && length <= rule->max)
      continue;
    g_autofree char *where = d == org
                                 ? g_strdup("")
                                 : g_strdup_printf(" (organization \"%s\" below has its own %s)",
                                                   (const char *)g_ptr_array_index(names, i),
                                                   profile_key ? "pin_length" : "pin_profile");
    if (profile_key)
      return set_bad(error, KCPS_SERVER_ERROR_BAD_REQUEST,
                     "setting \"pin_profile\": the %s profile allows PIN lengths %" G_GINT64_FORMAT
                     " to %" G_GINT64_FORMAT ", but pin_length is %" G_GINT64_FORMAT
                     "%s; change pin_length first",
                     rule->name, rule->min, rule->max, length, where);
    return set_bad(error, KCPS_SERVER_ERROR_BAD_REQUEST,
                   "setting \"pin_length\" must be %" G_GINT64_FORMAT " to %" G_GINT64_FORMAT
                   " under the %s profile%s",
                   rule->min, rule->max, rule->name, where);
  }
  return true;
}

/* The sealing key and the sealed copies -------------------------------- */

/* The key sealing PINs; caller holds the lock (which also keeps two first
 * uses from both creating it). */
static bool
pin_key_locked(kcps_server_t *server, guchar key[KCPS_SERVER_KEY_LEN], GError **error)
{
  return kcps__server_key_file(server, "pin-key", key, error);
}

/* What a sealed PIN is bound to: its user (a copy moved to another row
 * does not open). */
static char *
seal_aad(gint64 user_id)
{
  return g_strdup_printf("kcps-pin-v1:%" G_GINT64_FORMAT, user_id);
}

/* The sealed copy of pin, bound to its user; g_free. */
static char *
pin_seal(const guchar key[KCPS_SERVER_KEY_LEN], gint64 user_id, const char *pin, GError **error)
{
  g_autofree char *aad = seal_aad(user_id);
  return kcps__server_seal(key, aad, pin, error);
}

/* The PIN of a sealed copy, or NULL when it does not open; g_free (wipe). */
static char *
pin_open(const guchar key[KCPS_SERVER_KEY_LEN], gint64 user_id, const char *sealed)
{
  g_autofree char *aad = seal_aad(user_id);
  return kcps__server_unseal(key, aad, sealed, NULL);
}

static void
wipe_free(char *s)
{
  if (s) {
    OPENSSL_cleanse(s, strlen(s));
    g_free(s);
  }
}

/* Storing ---------------------------------------------------------------- */

/* Another user of org holds this PIN already? -1 on error. */
static int
pin_taken_locked(kcps_server_t *server, gint64 org, gint64 user_id, const char *hmac,
                 GError **error)
{
  sqlite3_stmt *stmt = kcps__server_db_prepare(
      server, "SELECT 1 FROM users WHERE org_id = ? AND pin_hmac = ? AND id <> ?", error);
  if (!stmt)
    return -1;
  sqlite3_bind_int64(stmt, 1, org);
  sqlite3_bind_text(stmt, 2, hmac, -1, SQLITE_STATIC);
  sqlite3_bind_int64(stmt, 3, user_id);
  int rc = kcps__server_db_step(server, stmt, error);
  sqlite3_finalize(stmt);
  return rc < 0 ? -1 : rc == SQLITE_ROW;
}

typedef enum { STORE_ERROR, STORE_OK, STORE_CLASH } store_t;

/* Stores pin as the user's (HMAC + sealed copy); caller holds the lock. */
static store_t
store_pin_locked(kcps_server_t *server, gint64 user_id, gint64 org, const char *pin, GError **error)
{
  char hmac[65];
  kcps__server_pin_hmac(server, org, pin, hmac);
  int taken = pin_taken_locked(server, org, user_id, hmac, error);
  if (taken != 0)
    return taken < 0 ? STORE_ERROR : STORE_CLASH;
  guchar key[KCPS_SERVER_KEY_LEN];
  if (!pin_key_locked(server, key, error))
    return STORE_ERROR;
  g_autofree char *sealed = pin_seal(key, user_id, pin, error);
  OPENSSL_cleanse(key, sizeof key);
  if (!sealed)
    return STORE_ERROR;
  sqlite3_stmt *stmt = kcps__server_db_prepare(
      server, "UPDATE users SET pin_hmac = ?, pin_sealed = ? WHERE id = ?", error);
  if (!stmt)
    return STORE_ERROR;
  sqlite3_bind_text(stmt, 1, hmac, -1, SQLITE_STATIC);
  sqlite3_bind_text(stmt, 2, sealed, -1, SQLITE_STATIC);
  sqlite3_bind_int64(stmt, 3, user_id);
  int rc = sqlite3_step(stmt);
  sqlite3_finalize(stmt);
  if (rc == SQLITE_DONE)
    return STORE_OK;
  if ((rc & 0xff) == SQLITE_CONSTRAINT)
    return STORE_CLASH; /* the unique index (org_id, pin_hmac) */
  set_bad(error, KCPS_SERVER_ERROR_DB, "database: %s", sqlite3_errmsg(server->db));
  return STORE_ERROR;
}

void
kcps__server_pin_backfill_locked(kcps_server_t *server, gint64 user_id, const char *pin)
{
  g_autoptr(GError) error = NULL;
  sqlite3_stmt *stmt = kcps__server_db_prepare(
      server, "SELECT 1 FROM users WHERE id = ? AND pin_sealed IS NULL", &error);
  bool missing = false;
  if (stmt) {
    sqlite3_bind_int64(stmt, 1, user_id);
    missing = kcps__server_db_step(server, stmt, &error) == SQLITE_ROW;
  }
  sqlite3_finalize(stmt);
  guchar key[KCPS_SERVER_KEY_LEN];
  if (missing && pin_key_locked(server, key, &error)) {
    g_autofree char *sealed = pin_seal(key, user_id, pin, &error);
    OPENSSL_cleanse(key, sizeof key);
    stmt = sealed
               ? kcps__server_db_prepare(
                     server, "UPDATE users SET pin_sealed = ? WHERE id = ? AND pin_sealed IS NULL",
                     &error)
               : NULL;
    if (stmt) {
      sqlite3_bind_text(stmt, 1, sealed, -1, SQLITE_STATIC);
      sqlite3_bind_int64(stmt, 2, user_id);
      kcps__server_db_step(server, stmt, &error);
    }
    sqlite3_finalize(stmt);
  }
  if (error)
    g_warning("kcps-server: sealed PIN copy not kept: %s", error->message);
}

/* A PIN of length digits, each uniform over 0-9 (bytes >= 250 are drawn
 * again, so that no digit is likelier). False when OpenSSL has no
 * randomness. */
static bool
random_pin(char *out, gint64 length)
{
  for (gint64 i = 0; i < length;) {
    guchar bytes[16];
    if (RAND_bytes(bytes, sizeof bytes) != 1)
      return false;
    for (size_t j = 0; j < sizeof bytes && i < length; j++)
      if (bytes[j] < 250)
        out[i++] = (char)('0' + bytes[j] % 10);
    OPENSSL_cleanse(bytes, sizeof bytes);
  }
  out[length] = '\0';
  return true;
}

/* Generates and stores a free PIN; caller holds the lock. out gets it. */
static store_t
generate_pin_locked(kcps_server_t *server, gint64 user_id, gint64 org, gint64 length, char out[16],
                    GError **error)
{
  for (int tries = 0; tries < PIN_GENERATE_TRIES; tries++) {
    if (!random_pin(out, length)) {
      set_bad(error, KCPS_SERVER_ERROR_CRYPTO, "pin: no randomness from OpenSSL");
      return STORE_ERROR;
    }
    store_t st = store_pin_locked(server, user_id, org, out, error);
    if (st != STORE_CLASH)
      return st;
  }
  OPENSSL_cleanse(out, 16);
  return STORE_CLASH;
}

/* Custom PINs that clashed lately for this acting user (the audit log is
 * the record); -1 on error. */
static gint64
recent_clashes_locked(kcps_server_t *server, gint64 actor, GError **error)
{
  sqlite3_stmt *stmt = kcps__server_db_prepare(
      server,
      "SELECT count(*) FROM audit WHERE user_id = ? AND event = 'pin.clash' AND created > ?",
      error);
  if (!stmt)
    return -1;
  sqlite3_bind_int64(stmt, 1, actor);
  sqlite3_bind_int64(stmt, 2, kcps__server_now() - PIN_CLASH_WINDOW);
  gint64 n =
      kcps__server_db_step(server, stmt, error) == SQLITE_ROW ? sqlite3_column_int64(stmt, 0) : -1;
  sqlite3_finalize(stmt);
  return n;
}

/* Routes ----------------------------------------------------------------- */

/* The "pin" member: a string of digits only, at most the field bound. */
static bool
check_pin_text(JsonObject *obj, const char **pin, GError **error)
{
  if (!kcps__server_field_string(obj, "pin", 1, KCPS_SERVER_MAX_PIN_FIELD, KCPS_TEXT_PLAIN, pin,
                                 error))
    return false;
  for (const char *p = *pin; *p; p++)
    if (!g_ascii_isdigit(*p))
      return set_bad(error, KCPS_SERVER_ERROR_BAD_REQUEST,
                     "field \"pin\" must hold digits (0-9) only");
  return true;
}

bool
kcps__server_check_pin_set(JsonObject *obj, bool admin, kcps_server_pin_set_req_t *out,
                           GError **error)
{
  static const char *const own_fields[] = {"pin", NULL};
  static const char *const admin_fields[] = {"pin", "generate", NULL};
  kcps_server_pin_set_req_t r = {0};
  if (!kcps__server_check_fields(obj, admin ? admin_fields : own_fields, error))
    return false;
  if (admin && json_object_has_member(obj, "generate")) {
    if (json_object_has_member(obj, "pin"))
      return set_bad(error, KCPS_SERVER_ERROR_BAD_REQUEST,
                     "give either field \"pin\" or field \"generate\", not both");
    if (!kcps__server_field_bool(obj, "generate", true, false, &r.generate, error))
      return false;
    if (!r.generate)
      return set_bad(error, KCPS_SERVER_ERROR_BAD_REQUEST, "field \"generate\" must be true");
  } else if (!check_pin_text(obj, &r.pin, error)) {
    return false;
  }
  *out = r;
  return true;
}

static void
respond_pin(kcps_http_req_t *req, unsigned status, bool set, const char *pin,
            const pin_rule_t *rule, gint64 length)
{
  g_autoptr(JsonBuilder) b = json_builder_new();
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "set");
  json_builder_add_boolean_value(b, set);
  json_builder_set_member_name(b, "pin");
  if (pin)
    json_builder_add_string_value(b, pin);
  else
    json_builder_add_null_value(b);
  if (rule) {
    json_builder_set_member_name(b, "pin_length");
    json_builder_add_int_value(b, length);
    json_builder_set_member_name(b, "pin_profile");
    json_builder_add_string_value(b, rule->name);
    json_builder_set_member_name(b, "custom_allowed");
    json_builder_add_boolean_value(b, length >= rule->custom_min);
  }
  json_builder_end_object(b);
  g_autoptr(JsonNode) root = json_builder_get_root(b);
  kcps_http_respond_json(req, status, root);
}

void
kcps__server_route_my_pin(kcps_server_t *server, kcps_http_req_t *req,
                          const kcps_server_session_t *session, const char *id)
{
  (void)id;
  g_autoptr(GError) error = NULL;
  bool set = false;
  char *pin = NULL;
  gint64 length = 0;
  g_mutex_lock(&server->lock);
  const pin_rule_t *rule = policy_locked(server, session->user_org_id, &length);
  sqlite3_stmt *stmt = kcps__server_db_prepare(
      server, "SELECT pin_hmac IS NOT NULL, pin_sealed FROM users WHERE id = ?", &error);
  if (stmt) {
    sqlite3_bind_int64(stmt, 1, session->user_id);
    if (kcps__server_db_step(server, stmt, &error) == SQLITE_ROW) {
      set = sqlite3_column_int(stmt, 0) != 0;
      const char *sealed = (const char *)sqlite3_column_text(stmt, 1);
      guchar key[KCPS_SERVER_KEY_LEN];
      if (set && sealed && pin_key_locked(server, key, &error)) {
        pin = pin_open(key, session->user_id, sealed);
        OPENSSL_cleanse(key, sizeof key);
      }
    }
  }
  sqlite3_finalize(stmt);
  g_mutex_unlock(&server->lock);
  if (error)
    kcps__server_respond_internal(req, error);
  else
    respond_pin(req, 200, set, pin, rule, length);
  wipe_free(pin);
}

/* Shared by the owner's and the admin's custom PIN: checks the PIN against
 * the organization's length and profile, the clash limit, and stores it.
 * Answers errors itself; true when stored. Takes the lock. */
static bool
set_custom_pin(kcps_server_t *server, kcps_http_req_t *req, const kcps_server_session_t *session,
               gint64 user_id, gint64 org, const char *email, const char *pin, bool admin)
{
  g_autoptr(GError) error = NULL;
  gint64 length = 0;
  unsigned status = 0;
  gint64 clashes = 0;
  g_mutex_lock(&server->lock);
  const pin_rule_t *rule = policy_locked(server, org, &length);
  if ((gint64)strlen(pin) != length)
    status = 400;
  else if (length < rule->custom_min)
    status = 403;
  else if ((clashes = recent_clashes_locked(server, session->user_id, &error)) >= PIN_CLASH_LIMIT)
    status = 429;
  else if (clashes >= 0) {
    store_t st = store_pin_locked(server, user_id, org, pin, &error);
    if (st == STORE_OK) {
      status = 200;
      kcps__server_audit_locked(server, org, session->user_id, "pin.set", email, session->source,
                                admin ? "custom PIN set by an administrator" : "custom PIN");
    } else if (st == STORE_CLASH) {
      status = 409;
      kcps__server_audit_locked(server, org, session->user_id, "pin.clash", email, session->source,
                                "a custom PIN was taken already");
    }
  }
  g_mutex_unlock(&server->lock);

  if (error)
    kcps__server_respond_internal(req, error);
  else if (status == 400)
    kcps_http_respond_error(req, 400, "bad_request",
                            "field \"pin\" must be exactly %" G_GINT64_FORMAT
                            " digits (the organization's PIN length)",
                            length);
  else if (status == 403)
    kcps_http_respond_error(
        req, 403, "forbidden",
        "the %s PIN profile allows %s PINs only at a PIN length of %" G_GINT64_FORMAT
        " to %" G_GINT64_FORMAT " (this organization's is %" G_GINT64_FORMAT
        "); generate one instead",
        rule->name, admin ? "administrator-set" : "custom", rule->custom_min, rule->max, length);
  else if (status == 429)
    kcps_http_respond_error(req, 429, "too_many_requests",
                            "too many chosen PINs were taken already today; generate one instead");
  else if (status == 409)
    kcps_http_respond_error(req, 409, "conflict",
                            "this PIN cannot be used; choose another or generate one");
  else if (admin)
    respond_pin(req, 200, true, "****", NULL, 0);
  else
    respond_pin(req, 200, true, pin, rule, length);
  return status == 200;
}

void
kcps__server_route_set_my_pin(kcps_server_t *server, kcps_http_req_t *req,
                              const kcps_server_session_t *session, const char *id)
{
  (void)id;
  JsonObject *obj = kcps__server_req_object(req);
  if (!obj)
    return;
  static const char *const allowed[] = {"pin", NULL};
  g_autoptr(GError) error = NULL;
  const char *pin = NULL;
  if (!kcps__server_check_fields(obj, allowed, &error) || !check_pin_text(obj, &pin, &error)) {
    kcps__server_respond_bad(req, error);
    return;
  }
  set_custom_pin(server, req, session, session->user_id, session->user_org_id, session->email, pin,
                 false);
}

/* Generates and stores a PIN; answers itself (the PIN to the owner, ****
 * to an admin). Takes the lock. */
static void
set_generated_pin(kcps_server_t *server, kcps_http_req_t *req, const kcps_server_session_t *session,
                  gint64 user_id, gint64 org, const char *email, bool admin)
{
  g_autoptr(GError) error = NULL;
  char pin[16] = "";
  gint64 length = 0;
  g_mutex_lock(&server->lock);
  const pin_rule_t *rule = policy_locked(server, org, &length);
  store_t st = generate_pin_locked(server, user_id, org, length, pin, &error);
  if (st == STORE_OK)
    kcps__server_audit_locked(server, org, session->user_id, "pin.set", email, session->source,
                              admin ? "PIN generated by an administrator" : "PIN generated");
  g_mutex_unlock(&server->lock);
  if (st == STORE_ERROR)
    kcps__server_respond_internal(req, error);
  else if (st == STORE_CLASH)
    kcps_http_respond_error(req, 409, "conflict",
                            "no free PIN of %" G_GINT64_FORMAT " digits was found; "
                            "ask an administrator for a longer PIN length",
                            length);
  else if (admin)
    respond_pin(req, 200, true, "****", NULL, 0);
  else
    respond_pin(req, 200, true, pin, rule, length);
  OPENSSL_cleanse(pin, sizeof pin);
}

void
kcps__server_route_generate_my_pin(kcps_server_t *server, kcps_http_req_t *req,
                                   const kcps_server_session_t *session, const char *id)
{
  (void)id;
  if (kcps__server_body_none(req))
    set_generated_pin(server, req, session, session->user_id, session->user_org_id, session->email,
                      false);
}

void
kcps__server_route_user_pin(kcps_server_t *server, kcps_http_req_t *req,
                            const kcps_server_session_t *session, const char *id)
{
  gint64 org = 0;
  gint64 user_id = kcps__server_user_for_admin(server, req, session, id, false, &org, NULL);
  if (!user_id)
    return;
  g_autoptr(GError) error = NULL;
  bool set = false;
  g_mutex_lock(&server->lock);
  sqlite3_stmt *stmt = kcps__server_db_prepare(
      server, "SELECT pin_hmac IS NOT NULL FROM users WHERE id = ?", &error);
  if (stmt) {
    sqlite3_bind_int64(stmt, 1, user_id);
    if (kcps__server_db_step(server, stmt, &error) == SQLITE_ROW)
      set = sqlite3_column_int(stmt, 0) != 0;
  }
  sqlite3_finalize(stmt);
  g_mutex_unlock(&server->lock);
  if (error)
    kcps__server_respond_internal(req, error);
  else
    respond_pin(req, 200, set, set ? "****" : NULL, NULL, 0);
}

void
kcps__server_route_set_user_pin(kcps_server_t *server, kcps_http_req_t *req,
                                const kcps_server_session_t *session, const char *id)
{
  JsonObject *obj = kcps__server_req_object(req);
  if (!obj)
    return;
  /* Check the body before looking anything up: bad input changes nothing. */
  g_autoptr(GError) error = NULL;
  kcps_server_pin_set_req_t in;
  if (!kcps__server_check_pin_set(obj, true, &in, &error)) {
    kcps__server_respond_bad(req, error);
    return;
  }
  gint64 org = 0;
  g_autofree char *email = NULL;
  gint64 user_id = kcps__server_user_for_admin(server, req, session, id, true, &org, &email);
  if (!user_id)
    return;
  if (in.generate)
    set_generated_pin(server, req, session, user_id, org, email, true);
  else
    set_custom_pin(server, req, session, user_id, org, email, in.pin, true);
}

/* Removes a user's PIN (both stored forms); answers 204 itself. */
static void
remove_pin(kcps_server_t *server, kcps_http_req_t *req, const kcps_server_session_t *session,
           gint64 user_id, gint64 org, const char *email, bool admin)
{
  g_autoptr(GError) error = NULL;
  g_mutex_lock(&server->lock);
  sqlite3_stmt *stmt = kcps__server_db_prepare(
      server,
      "UPDATE users SET pin_hmac = NULL, pin_sealed = NULL WHERE id = ? AND pin_hmac IS NOT NULL",
      &error);
  if (stmt) {
    sqlite3_bind_int64(stmt, 1, user_id);
    kcps__server_db_step(server, stmt, &error);
  }
  sqlite3_finalize(stmt);
  if (!error && sqlite3_changes(server->db) > 0)
    kcps__server_audit_locked(server, org, session->user_id, "pin.set", email, session->source,
                              admin ? "PIN removed by an administrator" : "PIN removed");
  g_mutex_unlock(&server->lock);
  if (error)
    kcps__server_respond_internal(req, error);
  else
    kcps_http_respond_empty(req, 204);
}

void
kcps__server_route_delete_my_pin(kcps_server_t *server, kcps_http_req_t *req,
                                 const kcps_server_session_t *session, const char *id)
{
  (void)id;
  remove_pin(server, req, session, session->user_id, session->user_org_id, session->email, false);
}

void
kcps__server_route_delete_user_pin(kcps_server_t *server, kcps_http_req_t *req,
                                   const kcps_server_session_t *session, const char *id)
{
  gint64 org = 0;
  g_autofree char *email = NULL;
  gint64 user_id = kcps__server_user_for_admin(server, req, session, id, true, &org, &email);
  if (user_id)
    remove_pin(server, req, session, user_id, org, email, true);
}
