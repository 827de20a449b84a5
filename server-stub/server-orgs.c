/* The organization tree and its people (white paper section 3): child
 * organizations, users and roles, print quota settings. Who may do what is
 * asked of server-access.c (Table 2-1); every change lands in the audit log. */
#include "server-private.h"

#include <openssl/crypto.h>
#include <string.h>

/* Print quotas are columns of users: NULL means unlimited. (Issue 5
 * enforces them at the device.) */
const char kcps__server_schema_orgs[] =
    "ALTER TABLE users ADD COLUMN quota_pages INTEGER"
    "  CHECK (quota_pages IS NULL OR quota_pages >= 0);"
    "ALTER TABLE users ADD COLUMN quota_color_pages INTEGER"
    "  CHECK (quota_color_pages IS NULL OR quota_color_pages >= 0);"
    "CREATE INDEX IF NOT EXISTS users_org ON users(org_id);";

/* Body checks (the shared readers of server-validate.h, plus the rules
 * of this file) ------------------------------------------------------------ */

/* A name (of an organization or a person): 1..255 bytes of UTF-8 without
 * control characters, not only spaces. Optional: absent gives *out NULL. */
static bool
get_name(JsonObject *obj, bool required, const char **out, GError **error)
{
  if (!kcps__server_field_string(obj, "name", 1, KCPS_SERVER_MAX_NAME,
                                 required ? KCPS_TEXT_PLAIN : KCPS_TEXT_OPTIONAL, out, error))
    return false;
  bool blank = *out != NULL;
  for (const char *p = *out; p && *p && blank; p++)
    blank = *p == ' ';
  return blank ? kcps__server_set_bad(error, "field \"name\" must not be blank") : true;
}

/* A quota member: null (unlimited) as -1, or 0..KCPS_SERVER_MAX_PAGES. Required. */
static bool
get_quota(JsonObject *obj, const char *name, gint64 *out, GError **error)
{
  JsonNode *node = json_object_get_member(obj, name);
  if (!node)
    return kcps__server_set_bad(error, "missing field \"%s\" (null for unlimited)", name);
  if (JSON_NODE_HOLDS_NULL(node)) {
    *out = -1;
    return true;
  }
  return kcps__server_field_int(obj, name, true, 0, KCPS_SERVER_MAX_PAGES, 0, out, error);
}

/* Roles an organization of that type may hold. */
static bool
role_fits(const char *org_type, kcps_server_role_t role)
{
  if (g_strcmp0(org_type, "customer") == 0)
    return role == KCPS_ROLE_CUSTOMER_ADMIN || role == KCPS_ROLE_PRINT_MANAGER ||
           role == KCPS_ROLE_CUSTOMER_USER || role == KCPS_ROLE_GUEST_USER;
  return role == KCPS_ROLE_PROVIDER_ADMIN || role == KCPS_ROLE_PROVIDER_SUPPORT;
}

static const char *
admin_role(const char *org_type)
{
  return g_strcmp0(org_type, "customer") == 0 ? "customer_admin" : "provider_admin";
}

static const char *
roles_text(const char *org_type)
{
  return g_strcmp0(org_type, "customer") == 0
             ? "customer_admin, print_manager, customer_user or guest_user"
             : "provider_admin or provider_support";
}

/* A role member that fits org_type; *out the parsed role. */
static bool
get_role(JsonObject *obj, bool required, const char *org_type, kcps_server_role_t *out,
         GError **error)
{
  const char *text;
  if (!kcps__server_field_string(obj, "role", 1, 32,
                                 required ? KCPS_TEXT_PLAIN : KCPS_TEXT_OPTIONAL, &text, error))
    return false;
  *out = KCPS_ROLE_NONE;
  if (!text)
    return true;
  kcps_server_role_t role = kcps__server_role_parse(text);
  if (role == KCPS_ROLE_NONE || !role_fits(org_type, role))
    return kcps__server_set_bad(error, "field \"role\" must be %s in a %s organization",
                                roles_text(org_type),
                                g_strcmp0(org_type, "customer") == 0 ? "customer" : "provider");
  *out = role;
  return true;
}

static void
add_time(JsonBuilder *b, const char *name, gint64 t)
{
  g_autofree char *text = kcps__server_iso_time(t);
  kcps__server_json_string(b, name, text);
}

static void
add_quota(JsonBuilder *b, const char *name, sqlite3_stmt *stmt, int col)
{
  json_builder_set_member_name(b, name);
  if (sqlite3_column_type(stmt, col) == SQLITE_NULL)
    json_builder_add_null_value(b);
  else
    json_builder_add_int_value(b, sqlite3_column_int64(stmt, col));
}

static bool
is_constraint(kcps_server_t *server, int primary)
{
  int rc = sqlite3_extended_errcode(server->db);
  return (rc & 0xff) == SQLITE_CONSTRAINT && (primary == 0 || rc == primary);
}

/* Argon2id in one of the server's hash slots, never under server->lock. */
static char *
hash_password(kcps_server_t *server, const char *password, GError **error)
{
  kcps__server_hash_enter(server);
  char *hash = kcps__server_password_hash(password, error);
  kcps__server_hash_leave(server);
  return hash;
}

/* Organizations ------------------------------------------------------------ */

#define ORG_COLUMNS "o.public_id, o.name, o.type, p.public_id, o.created"
#define ORG_FROM " FROM orgs o LEFT JOIN orgs p ON p.id = o.parent_id"

static void
add_org(JsonBuilder *b, sqlite3_stmt *stmt)
{
  json_builder_begin_object(b);
  kcps__server_json_string(b, "id", (const char *)sqlite3_column_text(stmt, 0));
  kcps__server_json_string(b, "name", (const char *)sqlite3_column_text(stmt, 1));
  kcps__server_json_string(b, "type", (const char *)sqlite3_column_text(stmt, 2));
  kcps__server_json_string(b, "parent", (const char *)sqlite3_column_text(stmt, 3));
  add_time(b, "created", sqlite3_column_int64(stmt, 4));
  json_builder_end_object(b);
}

/* The organization as JSON, or NULL (error set on failure only). */
static JsonNode *
org_node_locked(kcps_server_t *server, gint64 org, GError **error)
{
  sqlite3_stmt *stmt =
      kcps__server_db_prepare(server, "SELECT " ORG_COLUMNS ORG_FROM " WHERE o.id = ?", error);
  if (!stmt)
    return NULL;
  sqlite3_bind_int64(stmt, 1, org);
  JsonNode *node = NULL;
  if (kcps__server_db_step(server, stmt, error) == SQLITE_ROW) {
    g_autoptr(JsonBuilder) b = json_builder_new();
    add_org(b, stmt);
    node = json_builder_get_root(b);
  }
  sqlite3_finalize(stmt);
  return node;
}

static void
respond_org(kcps_server_t *server, kcps_http_req_t *req, unsigned status, gint64 org)
{
  g_autoptr(GError) error = NULL;
  g_mutex_lock(&server->lock);
  g_autoptr(JsonNode) node = org_node_locked(server, org, &error);
  g_mutex_unlock(&server->lock);
  kcps__server_respond_found(req, error, node, status, "no such organization");
}

/* The org's id when id is a public id the session may reach for data (the
 * answer is given otherwise). */
static gint64
require_org(kcps_server_t *server, kcps_http_req_t *req, const kcps_server_session_t *session,
            kcps_server_data_t data, bool write, const char *id)
{
  if (!kcps__server_is_uuid(id)) {
    kcps_http_respond_error(req, 404, "not_found", "no such organization");
    return 0;
  }
  return kcps__server_require(server, req, session, data, write, id);
}

static void
route_get_org(kcps_server_t *server, kcps_http_req_t *req, const kcps_server_session_t *session,
              const char *id)
{
  gint64 org = require_org(server, req, session, KCPS_DATA_ORGS, false, id);
  if (org > 0)
    respond_org(server, req, 200, org);
}

static void
route_my_org(kcps_server_t *server, kcps_http_req_t *req, const kcps_server_session_t *session,
             const char *id)
{
  (void)id;
  respond_org(server, req, 200, session->user_org_id);
}

static void
route_list_children(kcps_server_t *server, kcps_http_req_t *req,
                    const kcps_server_session_t *session, const char *id)
{
  gint64 org = require_org(server, req, session, KCPS_DATA_ORGS, false, id);
  if (org <= 0)
    return;
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonBuilder) b = json_builder_new();
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "orgs");
  json_builder_begin_array(b);
  g_mutex_lock(&server->lock);
  sqlite3_stmt *stmt = kcps__server_db_prepare(
      server, "SELECT " ORG_COLUMNS ORG_FROM " WHERE o.parent_id = ? ORDER BY o.name, o.id",
      &error);
  if (stmt) {
    sqlite3_bind_int64(stmt, 1, org);
    while (kcps__server_db_step(server, stmt, &error) == SQLITE_ROW)
      add_org(b, stmt);
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

/* Is another child of parent named name (ASCII case ignored)? except: an
 * org not to count (a rename to its own name). -1 on failure. */
static int
sibling_named_locked(kcps_server_t *server, gint64 parent, const char *name, gint64 except,
                     GError **error)
{
  sqlite3_stmt *stmt = kcps__server_db_prepare(
      server, "SELECT 1 FROM orgs WHERE parent_id = ? AND name = ? COLLATE NOCASE AND id <> ?",
      error);
  if (!stmt)
    return -1;
  sqlite3_bind_int64(stmt, 1, parent);
  sqlite3_bind_text(stmt, 2, name, -1, SQLITE_STATIC);
  sqlite3_bind_int64(stmt, 3, except);
  int rc = kcps__server_db_step(server, stmt, error);
  sqlite3_finalize(stmt);
  return rc < 0 ? -1 : rc == SQLITE_ROW;
}

static int
email_taken_locked(kcps_server_t *server, const char *email, GError **error)
{
  sqlite3_stmt *stmt =
      kcps__server_db_prepare(server, "SELECT 1 FROM users WHERE email = ?", error);
  if (!stmt)
    return -1;
  sqlite3_bind_text(stmt, 1, email, -1, SQLITE_STATIC);
  int rc = kcps__server_db_step(server, stmt, error);
  sqlite3_finalize(stmt);
  return rc < 0 ? -1 : rc == SQLITE_ROW;
}

/* Inserts an org; its id, 0 with error (or a constraint) on failure. */
static gint64
insert_org_locked(kcps_server_t *server, gint64 parent, const char *name, const char *type,
                  GError **error)
{
  sqlite3_stmt *stmt = kcps__server_db_prepare(
      server, "INSERT INTO orgs (public_id, name, type, parent_id, created) VALUES (?, ?, ?, ?, ?)",
      error);
  if (!stmt)
    return 0;
  g_autofree char *public_id = g_uuid_string_random();
  sqlite3_bind_text(stmt, 1, public_id, -1, SQLITE_STATIC);
  sqlite3_bind_text(stmt, 2, name, -1, SQLITE_STATIC);
  sqlite3_bind_text(stmt, 3, type, -1, SQLITE_STATIC);
  sqlite3_bind_int64(stmt, 4, parent);
  sqlite3_bind_int64(stmt, 5, kcps__server_now());
  gint64 id = kcps__server_db_step(server, stmt, error) == SQLITE_DONE
                  ? sqlite3_last_insert_rowid(server->db)
                  : 0;
  sqlite3_finalize(stmt);
  return id;
}

/* Inserts a user; its id, 0 with error on failure. public_out (may be
 * NULL) gets the public id (g_free). */
static gint64
insert_user_locked(kcps_server_t *server, gint64 org, const char *email, const char *name,
                   const char *role, const char *hash, char **public_out, GError **error)
{
  sqlite3_stmt *stmt = kcps__server_db_prepare(
      server,
      "INSERT INTO users (public_id, org_id, email, name, role, password_hash, created)"
      " VALUES (?, ?, ?, ?, ?, ?, ?)",
      error);
  if (!stmt)
    return 0;
  char *public_id = g_uuid_string_random();
  sqlite3_bind_text(stmt, 1, public_id, -1, SQLITE_STATIC);
  sqlite3_bind_int64(stmt, 2, org);
  sqlite3_bind_text(stmt, 3, email, -1, SQLITE_STATIC);
  sqlite3_bind_text(stmt, 4, name, -1, SQLITE_STATIC);
  sqlite3_bind_text(stmt, 5, role, -1, SQLITE_STATIC);
  sqlite3_bind_text(stmt, 6, hash, -1, SQLITE_STATIC);
  sqlite3_bind_int64(stmt, 7, kcps__server_now());
  gint64 id = kcps__server_db_step(server, stmt, error) == SQLITE_DONE
                  ? sqlite3_last_insert_rowid(server->db)
                  : 0;
  sqlite3_finalize(stmt);
  if (id > 0 && public_out)
    *public_out = public_id;
  else
    g_free(public_id);
  return id;
}

/* POST /api/v1/orgs/{id}/children {"name","type"[,"admin":{"email","name",
 * "password"}]}: a parent creates and names its children; customers are
 * leaves. The optional admin becomes the first admin of the new
 * organization (Table 2-1 keeps a provider out of a customer's users
 * afterwards, so this is the one moment it may name one). */
static void
route_create_child(kcps_server_t *server, kcps_http_req_t *req,
                   const kcps_server_session_t *session, const char *id)
{
  gint64 parent = require_org(server, req, session, KCPS_DATA_ORGS, true, id);
  if (parent <= 0)
    return;
  JsonObject *obj = kcps__server_req_object(req);
  if (!obj)
    return;

  /* Every field first, before anything is looked up or stored. */
  g_autoptr(GError) error = NULL;
  static const char *const fields[] = {"name", "type", "admin", NULL};
  static const char *const admin_fields[] = {"email", "name", "password", NULL};
  const char *name = NULL, *type, *admin_email = NULL, *admin_name = NULL, *admin_pw = NULL;
  JsonNode *admin = json_object_get_member(obj, "admin");
  static const char *const types[] = {"provider", "customer", NULL};
  int type_index = 0;
  bool ok = kcps__server_check_fields(obj, fields, &error) && get_name(obj, true, &name, &error) &&
            kcps__server_field_enum(obj, "type", true, types, 0, &type_index, &error);
  type = types[type_index];
  if (ok && admin && !JSON_NODE_HOLDS_NULL(admin)) {
    if (!JSON_NODE_HOLDS_OBJECT(admin))
      ok = kcps__server_set_bad(
          &error, "field \"admin\" must be an object {\"email\",\"name\",\"password\"}");
    else {
      JsonObject *a = json_node_get_object(admin);
      ok = kcps__server_check_fields(a, admin_fields, &error) &&
           kcps__server_field_email(a, "email", true, &admin_email, &error) &&
           get_name(a, true, &admin_name, &error) &&
           kcps__server_field_string(a, "password", 1, KCPS_SERVER_MAX_PASSWORD, KCPS_TEXT_CONTROL,
                                     &admin_pw, &error);
      if (!ok)
        g_prefix_error(&error, "in \"admin\": ");
    }
  }
  if (!ok) {
    kcps__server_respond_bad(req, error);
    return;
  }

  /* The parent's kind and the names already taken. */
  g_mutex_lock(&server->lock);
  g_autofree char *parent_type = kcps__server_org_type_locked(server, parent);
  int dup = sibling_named_locked(server, parent, name, 0, &error);
  int taken = admin_email && dup == 0 ? email_taken_locked(server, admin_email, &error) : 0;
  g_mutex_unlock(&server->lock);
  if (error) {
    kcps__server_respond_internal(req, error);
    return;
  }
  if (g_strcmp0(parent_type, "customer") == 0) {
    kcps_http_respond_error(req, 409, "conflict",
                            "a customer organization is a leaf: it has no children");
    return;
  }
  if (dup) {
    kcps_http_respond_error(req, 409, "conflict",
                            "this organization has a child named \"%s\" already", name);
    return;
  }
  if (taken) {
    kcps_http_respond_error(req, 409, "conflict",
                            "in \"admin\": field \"email\": the address is taken");
    return;
  }

  /* The new organization has no settings of its own yet: the parent's
   * policy is the one its admin's password must meet. */
  g_autofree char *hash = NULL;
  if (admin_pw) {
    if (!kcps__server_password_acceptable_for(server, parent, admin_email, admin_pw, &error)) {
      g_prefix_error(&error, "in \"admin\": field \"password\": ");
      kcps__server_respond_bad(req, error);
      return;
    }
    hash = hash_password(server, admin_pw, &error);
    if (!hash) {
      kcps__server_respond_internal(req, error);
      return;
    }
  }

  gint64 org = 0, admin_id = 0;
  bool conflict = false;
  g_mutex_lock(&server->lock);
  if (kcps__server_db_begin(server, &error)) {
    org = insert_org_locked(server, parent, name, type, &error);
    if (org > 0 && hash)
      admin_id = insert_user_locked(server, org, admin_email, admin_name, admin_role(type), hash,
                                    NULL, &error);
    if (org > 0 && (!hash || admin_id > 0)) {
      kcps__server_audit_locked(server, parent, session->user_id, "org.created", name,
                                session->source, type);
      if (admin_id > 0)
        kcps__server_audit_locked(server, org, session->user_id, "user.created", admin_email,
                                  session->source, admin_role(type));
      kcps__server_db_commit(server, &error);
    } else {
      /* A race with another request for the same name, email or parent. */
      conflict = is_constraint(server, 0);
      kcps__server_db_rollback(server);
    }
  }
  g_mutex_unlock(&server->lock);
  if (hash)
    OPENSSL_cleanse(hash, strlen(hash));
  if (conflict)
    kcps_http_respond_error(req, 409, "conflict",
                            "the name, the admin's email or the parent changed meanwhile");
  else if (error)
    kcps__server_respond_internal(req, error);
  else
    respond_org(server, req, 201, org);
}

/* Renaming and deleting an organization belong to a provider above it: an
 * admin never changes her own organization's place in the tree. */
static gint64
require_org_above(kcps_server_t *server, kcps_http_req_t *req, const kcps_server_session_t *session,
                  const char *id)
{
  gint64 org = require_org(server, req, session, KCPS_DATA_ORGS, true, id);
  if (org > 0 && org == session->user_org_id) {
    kcps_http_respond_error(req, 403, "forbidden",
                            "only an admin of a provider above may rename or delete an "
                            "organization, not its own admins");
    return 0;
  }
  return org;
}

static void
route_rename_org(kcps_server_t *server, kcps_http_req_t *req, const kcps_server_session_t *session,
                 const char *id)
{
  gint64 org = require_org_above(server, req, session, id);
  if (org <= 0)
    return;
  JsonObject *obj = kcps__server_req_object(req);
  if (!obj)
    return;
  g_autoptr(GError) error = NULL;
  static const char *const fields[] = {"name", NULL};
  const char *name;
  if (!kcps__server_check_fields(obj, fields, &error) || !get_name(obj, true, &name, &error)) {
    kcps__server_respond_bad(req, error);
    return;
  }

  bool dup = false, conflict = false;
  g_autofree char *old = NULL;
  g_mutex_lock(&server->lock);
  gint64 parent = 0;
  sqlite3_stmt *stmt =
      kcps__server_db_prepare(server, "SELECT parent_id, name FROM orgs WHERE id = ?", &error);
  if (stmt) {
    sqlite3_bind_int64(stmt, 1, org);
    if (kcps__server_db_step(server, stmt, &error) == SQLITE_ROW) {
      parent = sqlite3_column_int64(stmt, 0);
      old = kcps__server_db_dup_text(stmt, 1);
    }
  }
  sqlite3_finalize(stmt);
  int taken = parent > 0 && !error ? sibling_named_locked(server, parent, name, org, &error) : -1;
  dup = taken == 1;
  /* The same name again changes nothing and logs nothing. */
  if (taken == 0 && g_strcmp0(old, name) != 0) {
    stmt = kcps__server_db_prepare(server, "UPDATE orgs SET name = ? WHERE id = ?", &error);
    if (stmt) {
      sqlite3_bind_text(stmt, 1, name, -1, SQLITE_STATIC);
      sqlite3_bind_int64(stmt, 2, org);
      if (kcps__server_db_step(server, stmt, &error) == SQLITE_DONE) {
        g_autofree char *detail = g_strdup_printf("was \"%s\"", old);
        kcps__server_audit_locked(server, parent, session->user_id, "org.renamed", name,
                                  session->source, detail);
      } else if (is_constraint(server, SQLITE_CONSTRAINT_UNIQUE)) {
        conflict = true; /* a sibling took the name meanwhile */
        g_clear_error(&error);
      }
    }
    sqlite3_finalize(stmt);
  }
  g_mutex_unlock(&server->lock);
  if (dup || conflict)
    kcps_http_respond_error(req, 409, "conflict",
                            "the parent organization has a child named \"%s\" already", name);
  else if (error)
    kcps__server_respond_internal(req, error);
  else
    respond_org(server, req, 200, org);
}

/* Deletes org's own data (not its children: there are none) and the org;
 * caller holds the lock inside a transaction. Tables of other features
 * that point at users, devices or the org without ON DELETE CASCADE make
 * this fail with a foreign key constraint. */
static bool
delete_org_data_locked(kcps_server_t *server, gint64 org, GError **error)
{
  /* Its people's sessions (and refresh tokens) end first. */
  sqlite3_stmt *users =
      kcps__server_db_prepare(server, "SELECT id FROM users WHERE org_id = ?", error);
  if (!users)
    return false;
  sqlite3_bind_int64(users, 1, org);
  g_autoptr(GArray) ids = g_array_new(FALSE, FALSE, sizeof(gint64));
  int rc;
  while ((rc = kcps__server_db_step(server, users, error)) == SQLITE_ROW) {
    gint64 id = sqlite3_column_int64(users, 0);
    g_array_append_val(ids, id);
  }
  sqlite3_finalize(users);
  if (rc < 0)
    return false;
  for (guint i = 0; i < ids->len; i++)
    if (!kcps__server_sessions_end_user_locked(server, g_array_index(ids, gint64, i), error))
      return false;
  static const char *const steps[] = {
      /* Sessions and tickets go with their users and devices (cascade);
       * job logs point at devices without a cascade, so they go first. */
      ("DELETE FROM job_logs WHERE org_id = ?1 OR device_id IN"
       " (SELECT id FROM devices WHERE org_id = ?1)"),
      "DELETE FROM jobs WHERE org_id = ?1 OR user_id IN (SELECT id FROM users WHERE org_id = ?1)",
      "DELETE FROM users WHERE org_id = ?1",
      "DELETE FROM devices WHERE org_id = ?1",
      "DELETE FROM orgs WHERE id = ?1",
  };
  for (size_t i = 0; i < G_N_ELEMENTS(steps); i++) {
    sqlite3_stmt *stmt = kcps__server_db_prepare(server, steps[i], error);
    if (!stmt)
      return false;
    sqlite3_bind_int64(stmt, 1, org);
    rc = kcps__server_db_step(server, stmt, error);
    sqlite3_finalize(stmt);
    if (rc < 0)
      return false;
  }
  return true;
}

static void
route_delete_org(kcps_server_t *server, kcps_http_req_t *req, const kcps_server_session_t *session,
                 const char *id)
{
  gint64 org = require_org_above(server, req, session, id);
  if (org <= 0)
    return;
  g_autoptr(GError) error = NULL;
  gint64 children = 0, users = 0, devices = 0;
  bool held = false;
  g_mutex_lock(&server->lock);
  sqlite3_stmt *stmt = kcps__server_db_prepare(
      server,
      "SELECT (SELECT count(*) FROM orgs WHERE parent_id = ?1),"
      " (SELECT count(*) FROM users WHERE org_id = ?1),"
      " (SELECT count(*) FROM devices WHERE org_id = ?1),"
      " (SELECT name FROM orgs WHERE id = ?1), (SELECT parent_id FROM orgs WHERE id = ?1)",
      &error);
  g_autofree char *name = NULL;
  gint64 parent = 0;
  if (stmt) {
    sqlite3_bind_int64(stmt, 1, org);
    if (kcps__server_db_step(server, stmt, &error) == SQLITE_ROW) {
      children = sqlite3_column_int64(stmt, 0);
      users = sqlite3_column_int64(stmt, 1);
      devices = sqlite3_column_int64(stmt, 2);
      name = kcps__server_db_dup_text(stmt, 3);
      parent = sqlite3_column_int64(stmt, 4);
    }
  }
  sqlite3_finalize(stmt);
  if (!error && children == 0 && kcps__server_db_begin(server, &error)) {
    if (delete_org_data_locked(server, org, &error)) {
      g_autofree char *detail = g_strdup_printf(
          "with %" G_GINT64_FORMAT " users and %" G_GINT64_FORMAT " devices", users, devices);
      kcps__server_audit_locked(server, parent, session->user_id, "org.deleted", name,
                                session->source, detail);
      kcps__server_db_commit(server, &error);
    } else {
      held = is_constraint(server, SQLITE_CONSTRAINT_FOREIGNKEY);
      kcps__server_db_rollback(server);
    }
  }
  g_mutex_unlock(&server->lock);
  if (held) {
    g_warning("kcps-server: deleting organization %s: %s", id, error ? error->message : "?");
    kcps_http_respond_error(req, 409, "conflict",
                            "the organization still holds data that must be removed first");
  } else if (error)
    kcps__server_respond_internal(req, error);
  else if (children > 0)
    kcps_http_respond_error(req, 409, "conflict",
                            "the organization has %" G_GINT64_FORMAT
                            " child organizations; delete them first",
                            children);
  else
    kcps_http_respond_empty(req, 204);
}

/* Users ------------------------------------------------------------------ */

#define USER_COLUMNS "u.public_id, u.email, u.name, u.role, u.active, u.created"

static void
add_user(JsonBuilder *b, sqlite3_stmt *stmt)
{
  json_builder_begin_object(b);
  kcps__server_json_string(b, "id", (const char *)sqlite3_column_text(stmt, 0));
  kcps__server_json_string(b, "email", (const char *)sqlite3_column_text(stmt, 1));
  kcps__server_json_string(b, "name", (const char *)sqlite3_column_text(stmt, 2));
  kcps__server_json_string(b, "role", (const char *)sqlite3_column_text(stmt, 3));
  json_builder_set_member_name(b, "active");
  json_builder_add_boolean_value(b, sqlite3_column_int64(stmt, 4) != 0);
  add_time(b, "created", sqlite3_column_int64(stmt, 5));
  json_builder_end_object(b);
}

static void
respond_user(kcps_server_t *server, kcps_http_req_t *req, unsigned status, gint64 user)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) node = NULL;
  g_mutex_lock(&server->lock);
  sqlite3_stmt *stmt = kcps__server_db_prepare(
      server, "SELECT " USER_COLUMNS " FROM users u WHERE u.id = ?", &error);
  if (stmt) {
    sqlite3_bind_int64(stmt, 1, user);
    if (kcps__server_db_step(server, stmt, &error) == SQLITE_ROW) {
      g_autoptr(JsonBuilder) b = json_builder_new();
      add_user(b, stmt);
      node = json_builder_get_root(b);
    }
  }
  sqlite3_finalize(stmt);
  g_mutex_unlock(&server->lock);
  kcps__server_respond_found(req, error, node, status, "no such user");
}

static void
route_list_users(kcps_server_t *server, kcps_http_req_t *req, const kcps_server_session_t *session,
                 const char *id)
{
  gint64 org = require_org(server, req, session, KCPS_DATA_USERS, false, id);
  if (org <= 0)
    return;
  kcps__server_respond_rows(
      server, req, "users",
      "SELECT " USER_COLUMNS " FROM users u WHERE u.org_id = ? ORDER BY u.email", org, add_user);
}

static void
route_create_user(kcps_server_t *server, kcps_http_req_t *req, const kcps_server_session_t *session,
                  const char *id)
{
  gint64 org = require_org(server, req, session, KCPS_DATA_USERS, true, id);
  if (org <= 0)
    return;
  JsonObject *obj = kcps__server_req_object(req);
  if (!obj)
    return;

  g_autoptr(GError) error = NULL;
  g_mutex_lock(&server->lock);
  g_autofree char *type = kcps__server_org_type_locked(server, org);
  g_mutex_unlock(&server->lock);
  static const char *const fields[] = {"email", "name", "role", "password", NULL};
  const char *email, *name, *password;
  kcps_server_role_t role;
  if (!kcps__server_check_fields(obj, fields, &error) ||
      !kcps__server_field_email(obj, "email", true, &email, &error) ||
      !get_name(obj, true, &name, &error) || !get_role(obj, true, type, &role, &error) ||
      !kcps__server_field_string(obj, "password", 1, KCPS_SERVER_MAX_PASSWORD, KCPS_TEXT_CONTROL,
                                 &password, &error)) {
    kcps__server_respond_bad(req, error);
    return;
  }

  /* A taken address answers before the costly hash; which organization
   * holds it is not said. */
  g_mutex_lock(&server->lock);
  int taken = email_taken_locked(server, email, &error);
  g_mutex_unlock(&server->lock);
  if (error) {
    kcps__server_respond_internal(req, error);
    return;
  }
  if (taken) {
    kcps_http_respond_error(req, 409, "conflict", "field \"email\": the address is taken");
    return;
  }
  if (!kcps__server_password_acceptable_for(server, org, email, password, &error)) {
    g_prefix_error(&error, "field \"password\": ");
    kcps__server_respond_bad(req, error);
    return;
  }
  g_autofree char *hash = hash_password(server, password, &error);
  if (!hash) {
    kcps__server_respond_internal(req, error);
    return;
  }

  bool conflict = false;
  gint64 user = 0;
  g_mutex_lock(&server->lock);
  if (kcps__server_db_begin(server, &error)) {
    user = insert_user_locked(server, org, email, name, kcps__server_role_name(role), hash, NULL,
                              &error);
    if (user > 0) {
      kcps__server_audit_locked(server, org, session->user_id, "user.created", email,
                                session->source, kcps__server_role_name(role));
      kcps__server_db_commit(server, &error);
    } else {
      conflict = is_constraint(server, 0);
      kcps__server_db_rollback(server);
    }
  }
  g_mutex_unlock(&server->lock);
  OPENSSL_cleanse(hash, strlen(hash));
  if (conflict)
    kcps_http_respond_error(req, 409, "conflict", "field \"email\": the address is taken");
  else if (error)
    kcps__server_respond_internal(req, error);
  else
    respond_user(server, req, 201, user);
}

/* A user by public id, with what the user routes need to know. */
typedef struct {
  gint64 id;
  gint64 org;
  char *org_public_id;
  char *org_type;
  char *email;
  char *name;
  char *role;
  bool active;
} user_row_t;

static void
user_row_clear(user_row_t *u)
{
  g_free(u->org_public_id);
  g_free(u->org_type);
  g_free(u->email);
  g_free(u->name);
  g_free(u->role);
  memset(u, 0, sizeof *u);
}

static bool
user_row_load_locked(kcps_server_t *server, const char *public_id, user_row_t *u, GError **error)
{
  sqlite3_stmt *stmt = kcps__server_db_prepare(
      server,
      "SELECT u.id, u.org_id, o.public_id, o.type, u.email, u.name, u.role, u.active"
      " FROM users u JOIN orgs o ON o.id = u.org_id WHERE u.public_id = ?",
      error);
  if (!stmt)
    return false;
  sqlite3_bind_text(stmt, 1, public_id, -1, SQLITE_STATIC);
  bool found = kcps__server_db_step(server, stmt, error) == SQLITE_ROW;
  if (found) {
    u->id = sqlite3_column_int64(stmt, 0);
    u->org = sqlite3_column_int64(stmt, 1);
    u->org_public_id = kcps__server_db_dup_text(stmt, 2);
    u->org_type = kcps__server_db_dup_text(stmt, 3);
    u->email = kcps__server_db_dup_text(stmt, 4);
    u->name = kcps__server_db_dup_text(stmt, 5);
    u->role = kcps__server_db_dup_text(stmt, 6);
    u->active = sqlite3_column_int64(stmt, 7) != 0;
  }
  sqlite3_finalize(stmt);
  return found;
}

/* Loads the user named by id when the session may reach data of that kind
 * in the user's organization: 404 for an unknown user or one in an
 * organization the caller cannot see, 403 when seen but not allowed. */
static bool
require_user(kcps_server_t *server, kcps_http_req_t *req, const kcps_server_session_t *session,
             kcps_server_data_t data, bool write, const char *id, user_row_t *u)
{
  g_autoptr(GError) error = NULL;
  memset(u, 0, sizeof *u);
  bool found = false;
  if (kcps__server_is_uuid(id)) {
    g_mutex_lock(&server->lock);
    found = user_row_load_locked(server, id, u, &error);
    g_mutex_unlock(&server->lock);
  }
  if (error) {
    kcps__server_respond_internal(req, error);
    return false;
  }
  if (!found) {
    kcps_http_respond_error(req, 404, "not_found", "no such user");
    return false;
  }
  g_mutex_lock(&server->lock);
  bool visible = kcps__server_org_within_locked(server, session->user_org_id, u->org);
  bool may = visible && kcps__server_may_locked(server, session, data, u->org, write);
  g_mutex_unlock(&server->lock);
  if (!visible)
    kcps_http_respond_error(req, 404, "not_found", "no such user");
  else if (!may)
    kcps_http_respond_error(req, 403, "forbidden", "your role may not %s this here",
                            write ? "change" : "see");
  if (!may)
    user_row_clear(u);
  return may;
}

static void
route_get_user(kcps_server_t *server, kcps_http_req_t *req, const kcps_server_session_t *session,
               const char *id)
{
  user_row_t u;
  if (!require_user(server, req, session, KCPS_DATA_USERS, false, id, &u))
    return;
  respond_user(server, req, 200, u.id);
  user_row_clear(&u);
}

/* Active admins of org other than user (the one about to stop being one). */
static gint64
other_admins_locked(kcps_server_t *server, gint64 org, const char *role, gint64 user,
                    GError **error)
{
  sqlite3_stmt *stmt = kcps__server_db_prepare(
      server, "SELECT count(*) FROM users WHERE org_id = ? AND role = ? AND active = 1 AND id <> ?",
      error);
  if (!stmt)
    return -1;
  sqlite3_bind_int64(stmt, 1, org);
  sqlite3_bind_text(stmt, 2, role, -1, SQLITE_STATIC);
  sqlite3_bind_int64(stmt, 3, user);
  gint64 n =
      kcps__server_db_step(server, stmt, error) == SQLITE_ROW ? sqlite3_column_int64(stmt, 0) : -1;
  sqlite3_finalize(stmt);
  return n;
}

static void
route_patch_user(kcps_server_t *server, kcps_http_req_t *req, const kcps_server_session_t *session,
                 const char *id)
{
  user_row_t u;
  if (!require_user(server, req, session, KCPS_DATA_USERS, true, id, &u))
    return;
  g_autoptr(GError) error = NULL;
  JsonObject *obj = kcps__server_req_object(req);
  static const char *const fields[] = {"name", "role", "active", NULL};
  const char *name = NULL;
  kcps_server_role_t role = KCPS_ROLE_NONE;
  bool active = u.active, ok = obj != NULL;
  if (ok) {
    JsonNode *a = json_object_get_member(obj, "active");
    ok = kcps__server_check_fields(obj, fields, &error) && get_name(obj, false, &name, &error) &&
         get_role(obj, false, u.org_type, &role, &error);
    ok = ok && kcps__server_field_bool(obj, "active", false, u.active, &active, &error);
    if (ok && !name && role == KCPS_ROLE_NONE && !a)
      ok = kcps__server_set_bad(&error, "nothing to change: give \"name\", \"role\" or \"active\"");
    if (!ok)
      kcps__server_respond_bad(req, error);
  }
  if (!ok) {
    user_row_clear(&u);
    return;
  }

  const char *new_role = role != KCPS_ROLE_NONE ? kcps__server_role_name(role) : u.role;
  const char *admin = admin_role(u.org_type);
  bool was_admin = u.active && strcmp(u.role, admin) == 0;
  bool stays_admin = active && strcmp(new_role, admin) == 0;
  bool last = false;
  g_mutex_lock(&server->lock);
  if (was_admin && !stays_admin)
    last = other_admins_locked(server, u.org, admin, u.id, &error) == 0;
  if (!error && !last && kcps__server_db_begin(server, &error)) {
    sqlite3_stmt *stmt = kcps__server_db_prepare(
        server, "UPDATE users SET name = ?, role = ?, active = ? WHERE id = ?", &error);
    if (stmt) {
      sqlite3_bind_text(stmt, 1, name ? name : u.name, -1, SQLITE_STATIC);
      sqlite3_bind_text(stmt, 2, new_role, -1, SQLITE_STATIC);
      sqlite3_bind_int64(stmt, 3, active ? 1 : 0);
      sqlite3_bind_int64(stmt, 4, u.id);
      kcps__server_db_step(server, stmt, &error);
    }
    sqlite3_finalize(stmt);
    /* A deactivated account's sessions end now, not at their expiry. */
    if (!error && u.active && !active)
      kcps__server_sessions_end_user_locked(server, u.id, &error);
    if (!error) {
      if (strcmp(new_role, u.role) != 0) {
        g_autofree char *detail = g_strdup_printf("%s -> %s", u.role, new_role);
        kcps__server_audit_locked(server, u.org, session->user_id, "role.changed", u.email,
                                  session->source, detail);
      }
      if (u.active != active)
        kcps__server_audit_locked(server, u.org, session->user_id,
                                  active ? "user.activated" : "user.deactivated", u.email,
                                  session->source, NULL);
      if (name && strcmp(name, u.name) != 0)
        kcps__server_audit_locked(server, u.org, session->user_id, "user.renamed", u.email,
                                  session->source, NULL);
      kcps__server_db_commit(server, &error);
    } else {
      kcps__server_db_rollback(server);
    }
  }
  g_mutex_unlock(&server->lock);
  if (error)
    kcps__server_respond_internal(req, error);
  else if (last)
    kcps_http_respond_error(req, 409, "conflict",
                            "this is the organization's last active %s; make another one first",
                            admin);
  else
    respond_user(server, req, 200, u.id);
  user_row_clear(&u);
}

static void
route_delete_user(kcps_server_t *server, kcps_http_req_t *req, const kcps_server_session_t *session,
                  const char *id)
{
  user_row_t u;
  if (!require_user(server, req, session, KCPS_DATA_USERS, true, id, &u))
    return;
  g_autoptr(GError) error = NULL;
  const char *admin = admin_role(u.org_type);
  bool last = false, held = false;
  g_mutex_lock(&server->lock);
  if (u.active && strcmp(u.role, admin) == 0)
    last = other_admins_locked(server, u.org, admin, u.id, &error) == 0;
  if (!error && !last && kcps__server_db_begin(server, &error)) {
    bool ok = kcps__server_sessions_end_user_locked(server, u.id, &error);
    sqlite3_stmt *stmt =
        ok ? kcps__server_db_prepare(server, "DELETE FROM users WHERE id = ?", &error) : NULL;
    if (stmt) {
      sqlite3_bind_int64(stmt, 1, u.id);
      ok = kcps__server_db_step(server, stmt, &error) == SQLITE_DONE;
    } else {
      ok = false;
    }
    sqlite3_finalize(stmt);
    if (ok) {
      kcps__server_audit_locked(server, u.org, session->user_id, "user.deleted", u.email,
                                session->source, u.role);
      kcps__server_db_commit(server, &error);
    } else {
      held = is_constraint(server, SQLITE_CONSTRAINT_FOREIGNKEY);
      kcps__server_db_rollback(server);
    }
  }
  g_mutex_unlock(&server->lock);
  if (held) {
    g_warning("kcps-server: deleting user %s: %s", id, error ? error->message : "?");
    kcps_http_respond_error(req, 409, "conflict",
                            "the user still holds data that must be removed first");
  } else if (error)
    kcps__server_respond_internal(req, error);
  else if (last)
    kcps_http_respond_error(req, 409, "conflict",
                            "this is the organization's last active %s; make another one first",
                            admin);
  else
    kcps_http_respond_empty(req, 204);
  user_row_clear(&u);
}

/* Print quotas (Table 2-1: all a print manager may touch) ------------------ */

#define QUOTA_COLUMNS "u.public_id, u.name, u.email, u.quota_pages, u.quota_color_pages"

static void
add_user_quota(JsonBuilder *b, sqlite3_stmt *stmt)
{
  json_builder_begin_object(b);
  kcps__server_json_string(b, "id", (const char *)sqlite3_column_text(stmt, 0));
  kcps__server_json_string(b, "name", (const char *)sqlite3_column_text(stmt, 1));
  kcps__server_json_string(b, "email", (const char *)sqlite3_column_text(stmt, 2));
  add_quota(b, "quota_pages", stmt, 3);
  add_quota(b, "quota_color_pages", stmt, 4);
  json_builder_end_object(b);
}

static void
route_list_quotas(kcps_server_t *server, kcps_http_req_t *req, const kcps_server_session_t *session,
                  const char *id)
{
  gint64 org = require_org(server, req, session, KCPS_DATA_USER_QUOTA, false, id);
  if (org <= 0)
    return;
  kcps__server_respond_rows(server, req, "quotas",
                            "SELECT " QUOTA_COLUMNS
                            " FROM users u WHERE u.org_id = ? ORDER BY u.email",
                            org, add_user_quota);
}

static void
bind_quota(sqlite3_stmt *stmt, int col, gint64 v)
{
  if (v < 0)
    sqlite3_bind_null(stmt, col);
  else
    sqlite3_bind_int64(stmt, col, v);
}

static char *
quota_text(gint64 v)
{
  return v < 0 ? g_strdup("unlimited") : g_strdup_printf("%" G_GINT64_FORMAT, v);
}

static void
route_put_quota(kcps_server_t *server, kcps_http_req_t *req, const kcps_server_session_t *session,
                const char *id)
{
  user_row_t u;
  if (!require_user(server, req, session, KCPS_DATA_USER_QUOTA, true, id, &u))
    return;
  g_autoptr(GError) error = NULL;
  JsonObject *obj = kcps__server_req_object(req);
  static const char *const fields[] = {"pages", "color_pages", NULL};
  gint64 pages = -1, color = -1;
  bool ok = obj && kcps__server_check_fields(obj, fields, &error) &&
            get_quota(obj, "pages", &pages, &error) &&
            get_quota(obj, "color_pages", &color, &error);
  if (ok && pages >= 0 && color > pages)
    ok = kcps__server_set_bad(
        &error, "field \"color_pages\" must not exceed \"pages\" (%" G_GINT64_FORMAT ")", pages);
  if (!ok) {
    if (obj)
      kcps__server_respond_bad(req, error);
    user_row_clear(&u);
    return;
  }

  g_mutex_lock(&server->lock);
  sqlite3_stmt *stmt = kcps__server_db_prepare(
      server,
      "UPDATE users SET quota_pages = ?1, quota_color_pages = ?2 WHERE id = ?3"
      " AND (quota_pages IS NOT ?1 OR quota_color_pages IS NOT ?2)",
      &error);
  if (stmt) {
    bind_quota(stmt, 1, pages);
    bind_quota(stmt, 2, color);
    sqlite3_bind_int64(stmt, 3, u.id);
    if (kcps__server_db_step(server, stmt, &error) == SQLITE_DONE &&
        sqlite3_changes(server->db) > 0) {
      g_autofree char *p = quota_text(pages);
      g_autofree char *c = quota_text(color);
      g_autofree char *detail = g_strdup_printf("pages %s, color pages %s", p, c);
      kcps__server_audit_locked(server, u.org, session->user_id, "quota.changed", u.email,
                                session->source, detail);
    }
  }
  sqlite3_finalize(stmt);

  /* The answer is the quota row, as the list shows it. */
  g_autoptr(JsonNode) node = NULL;
  stmt = error ? NULL
               : kcps__server_db_prepare(
                     server, "SELECT " QUOTA_COLUMNS " FROM users u WHERE u.id = ?", &error);
  if (stmt) {
    sqlite3_bind_int64(stmt, 1, u.id);
    if (kcps__server_db_step(server, stmt, &error) == SQLITE_ROW) {
      g_autoptr(JsonBuilder) b = json_builder_new();
      add_user_quota(b, stmt);
      node = json_builder_get_root(b);
    }
  }
  sqlite3_finalize(stmt);
  g_mutex_unlock(&server->lock);
  kcps__server_respond_found(req, error, node, 200, "no such user");
  user_row_clear(&u);
}

const kcps_server_route_t kcps__server_routes_orgs[] = {
    {"GET", "/api/v1/me/org", KCPS_NEED_USER, route_my_org},
    {"GET", "/api/v1/orgs/*", KCPS_NEED_USER, route_get_org},
    {"PATCH", "/api/v1/orgs/*", KCPS_NEED_USER, route_rename_org},
    {"DELETE", "/api/v1/orgs/*", KCPS_NEED_USER, route_delete_org},
    {"GET", "/api/v1/orgs/*/children", KCPS_NEED_USER, route_list_children},
    {"POST", "/api/v1/orgs/*/children", KCPS_NEED_USER, route_create_child},
    {"GET", "/api/v1/orgs/*/users", KCPS_NEED_USER, route_list_users},
    {"POST", "/api/v1/orgs/*/users", KCPS_NEED_USER, route_create_user},
    {"GET", "/api/v1/orgs/*/quotas", KCPS_NEED_USER, route_list_quotas},
    {"GET", "/api/v1/users/*", KCPS_NEED_USER, route_get_user},
    {"PATCH", "/api/v1/users/*", KCPS_NEED_USER, route_patch_user},
    {"DELETE", "/api/v1/users/*", KCPS_NEED_USER, route_delete_user},
    {"PUT", "/api/v1/users/*/quota", KCPS_NEED_USER, route_put_quota},
    {NULL, NULL, KCPS_NEED_NONE, NULL},
};
