/* Per-organization settings (login policies and the like). Each has the
 * white paper's value as its default; a value set on an organization
 * applies below it too, until set again. Stored as integers (bools 0/1,
 * enums by index) in org_settings. */
#include "server-private.h"

#include <string.h>

static const char *const password_policies[] = {"kcps", "nist", NULL};
static const char *const lockout_scopes[] = {"account", "account_source", NULL};
static const char *const pin_profiles[] = {"other", "kda_g", NULL};
static const char *const spool_modes[] = {"local", "cloud", NULL};

const kcps_server_setting_t kcps__server_settings[] = {
  {"password_policy", KCPS_SETTING_ENUM, 0, 0, 0, password_policies,
   "kcps (white paper 4.2: 8-64 characters, digit, upper, lower, symbol) or nist "
   "(SP 800-63B: 15-64 characters, not a common password)"},
  {"lockout_threshold", KCPS_SETTING_INT, 3, 1, 100, NULL,
   "consecutive failed logins (password, OTP, PIN) that lock the account (4.1)"},
  {"lockout_minutes", KCPS_SETTING_INT, 30, 1, 1440, NULL,
   "minutes a locked account stays locked (4.1)"},
  {"lockout_scope", KCPS_SETTING_ENUM, 0, 0, 0, lockout_scopes,
   "account (failures from anywhere add up) or account_source (counted per account and "
   "source address, so a stranger cannot lock a user out from elsewhere)"},
  {"mfa_email", KCPS_SETTING_BOOL, 0, 0, 1, NULL,
   "email one-time code after the password (4.6)"},
  {"idle_logout_minutes", KCPS_SETTING_INT, 30, 1, 1440, NULL,
   "idle minutes after which a web session ends (4.3)"},
  {"desktop_idle_logout_minutes", KCPS_SETTING_INT, 30, 1, 43200, NULL,
   "idle minutes after which a desktop client's session ends (4.3)"},
  {"pin_profile", KCPS_SETTING_ENUM, 0, 0, 0, pin_profiles,
   "PIN rules of the sales region: other (4-12 digits) or kda_g (6-12 digits; custom and "
   "admin-set PINs only at 8-12) (4.4)"},
  {"pin_length", KCPS_SETTING_INT, 4, 4, 12, NULL,
   "length of the organization's PINs, within the profile's range (4.4)"},
  {"cloud_max_document_mb", KCPS_SETTING_INT, 2048, 1, 1048576, NULL,
   "largest document a user may upload to the cloud spool, in MiB (issue 5)"},
  {"cloud_retention_hours", KCPS_SETTING_INT, 24, 1, 8760, NULL,
   "hours a cloud document (or an unfinished upload) is kept before it is deleted (6.1.4)"},
  {"default_spool_mode", KCPS_SETTING_ENUM, 0, 0, 0, spool_modes,
   "where the desktop client keeps a user's jobs unless she chose herself: local (on the "
   "desktop until an MFP pulls them) or cloud (uploaded to this server) (issue 5)"},
  {NULL, 0, 0, 0, 0, NULL, NULL},
};

const kcps_server_setting_t *
kcps__server_setting_find(const char *key)
{
  for (const kcps_server_setting_t *s = kcps__server_settings; key && s->key; s++)
    if (strcmp(s->key, key) == 0)
      return s;
  return NULL;
}

/* The nearest stored value for key on org or above; *found false when none. */
static gint64
stored_locked(kcps_server_t *server, gint64 org, const char *key, bool *found)
{
  *found = false;
  sqlite3_stmt *stmt = kcps__server_db_prepare(
      server,
      "WITH RECURSIVE up(id, depth) AS (SELECT ?, 0"
      " UNION ALL SELECT o.parent_id, up.depth + 1 FROM orgs o JOIN up ON o.id = up.id"
      " WHERE o.parent_id IS NOT NULL)"
      " SELECT s.value FROM up JOIN org_settings s ON s.org_id = up.id AND s.key = ?"
      " ORDER BY up.depth LIMIT 1",
      NULL);
  if (!stmt)
    return 0;
  sqlite3_bind_int64(stmt, 1, org);
  sqlite3_bind_text(stmt, 2, key, -1, SQLITE_STATIC);
  gint64 value = 0;
  if (kcps__server_db_step(server, stmt, NULL) == SQLITE_ROW) {
    value = sqlite3_column_int64(stmt, 0);
    *found = true;
  }
  sqlite3_finalize(stmt);
  return value;
}

gint64
kcps__server_setting_locked(kcps_server_t *server, gint64 org, const char *key)
{
  const kcps_server_setting_t *s = kcps__server_setting_find(key);
  if (!s) {
    g_critical("kcps-server: unknown setting %s", key);
    return 0;
  }
  bool found;
  gint64 v = stored_locked(server, org, key, &found);
  return found ? v : s->def;
}

bool
kcps__server_setting_is_set_locked(kcps_server_t *server, gint64 org, const char *key)
{
  bool found;
  (void)stored_locked(server, org, key, &found);
  return found;
}

gint64
kcps__server_setting(kcps_server_t *server, gint64 org, const char *key)
{
  g_mutex_lock(&server->lock);
  gint64 v = kcps__server_setting_locked(server, org, key);
  g_mutex_unlock(&server->lock);
  return v;
}

static bool
bad(GError **error, const kcps_server_setting_t *s, const char *rule)
{
  g_set_error(error, KCPS_SERVER_ERROR, KCPS_SERVER_ERROR_BAD_REQUEST,
              "setting \"%s\" must be %s", s->key, rule);
  return false;
}

bool
kcps__server_setting_store_locked(kcps_server_t *server, gint64 org, const char *key,
                                  JsonNode *value, GError **error)
{
  const kcps_server_setting_t *s = kcps__server_setting_find(key);
  if (!s) {
    g_set_error(error, KCPS_SERVER_ERROR, KCPS_SERVER_ERROR_BAD_REQUEST,
                "unknown setting \"%s\"", key ? key : "");
    return false;
  }
  GType type = value && JSON_NODE_HOLDS_VALUE(value) ? json_node_get_value_type(value)
                                                     : G_TYPE_INVALID;
  gint64 v = 0;
  switch (s->type) {
  case KCPS_SETTING_INT: {
    if (type != G_TYPE_INT64) {
      g_autofree char *rule = g_strdup_printf("an integer from %" G_GINT64_FORMAT
                                              " to %" G_GINT64_FORMAT, s->min, s->max);
      return bad(error, s, rule);
    }
    v = json_node_get_int(value);
    if (v < s->min || v > s->max) {
      g_autofree char *rule = g_strdup_printf("from %" G_GINT64_FORMAT " to %" G_GINT64_FORMAT,
                                              s->min, s->max);
      return bad(error, s, rule);
    }
    break;
  }
  case KCPS_SETTING_BOOL:
    if (type != G_TYPE_BOOLEAN)
      return bad(error, s, "true or false");
    v = json_node_get_boolean(value) ? 1 : 0;
    break;
  case KCPS_SETTING_ENUM: {
    g_autofree char *names = g_strjoinv(", ", (char **)s->values);
    g_autofree char *rule = g_strdup_printf("one of %s", names);
    if (type != G_TYPE_STRING)
      return bad(error, s, rule);
    const char *text = json_node_get_string(value);
    v = -1;
    for (gint64 i = 0; s->values[i]; i++)
      if (g_strcmp0(text, s->values[i]) == 0)
        v = i;
    if (v < 0)
      return bad(error, s, rule);
    break;
  }
  }
  if (g_str_has_prefix(key, "pin_") &&
      !kcps__server_pin_setting_check_locked(server, org, key, v, error))
    return false;

  sqlite3_stmt *stmt = kcps__server_db_prepare(
      server,
      "INSERT INTO org_settings (org_id, key, value) VALUES (?, ?, ?)"
      " ON CONFLICT (org_id, key) DO UPDATE SET value = excluded.value",
      error);
  if (!stmt)
    return false;
  sqlite3_bind_int64(stmt, 1, org);
  sqlite3_bind_text(stmt, 2, key, -1, SQLITE_STATIC);
  sqlite3_bind_int64(stmt, 3, v);
  bool ok = kcps__server_db_step(server, stmt, error) == SQLITE_DONE;
  sqlite3_finalize(stmt);
  return ok;
}

JsonNode *
kcps__server_settings_json_locked(kcps_server_t *server, gint64 org)
{
  g_autoptr(JsonBuilder) b = json_builder_new();
  json_builder_begin_object(b);
  for (const kcps_server_setting_t *s = kcps__server_settings; s->key; s++) {
    gint64 v = kcps__server_setting_locked(server, org, s->key);
    json_builder_set_member_name(b, s->key);
    switch (s->type) {
    case KCPS_SETTING_INT:
      json_builder_add_int_value(b, v);
      break;
    case KCPS_SETTING_BOOL:
      json_builder_add_boolean_value(b, v != 0);
      break;
    case KCPS_SETTING_ENUM: {
      gint64 n = 0;
      while (s->values[n])
        n++;
      json_builder_add_string_value(b, v >= 0 && v < n ? s->values[v] : s->values[0]);
      break;
    }
    }
  }
  json_builder_end_object(b);
  return json_builder_get_root(b);
}
