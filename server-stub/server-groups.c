/* User groups of a customer organization (white paper 6.1.4: "usage reports
 * ... by user, user group, device ..."): its customer admin makes, renames
 * and deletes them and puts the organization's users in and out. A user may
 * be in several groups; the month's usage report (server-usage.c) counts
 * each member's prints once in every group she is in. Groups are users data
 * of Table 2-1 (KCPS_DATA_USERS); every change is audited. */
#include "server-private.h"

#include <string.h>

#define GROUPS_PER_ORG 1000

/* Members follow their users (deleted with them, and dropped by a trigger
 * when a user leaves the organization); groups go with their organization. */
const char kcps__server_schema_groups[] =
    "CREATE TABLE user_groups ("
    "  id INTEGER PRIMARY KEY,"
    "  public_id TEXT NOT NULL UNIQUE,"
    "  org_id INTEGER NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,"
    "  name TEXT NOT NULL COLLATE NOCASE,"
    "  created INTEGER NOT NULL,"
    "  UNIQUE (org_id, name));"
    "CREATE TABLE group_members ("
    "  group_id INTEGER NOT NULL REFERENCES user_groups(id) ON DELETE CASCADE,"
    "  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    "  added INTEGER NOT NULL,"
    "  PRIMARY KEY (group_id, user_id));"
    "CREATE INDEX group_members_user ON group_members(user_id);"
    "CREATE TRIGGER users_groups_leave AFTER UPDATE OF org_id ON users"
    "  WHEN NEW.org_id <> OLD.org_id"
    "  BEGIN"
    "    DELETE FROM group_members WHERE user_id = NEW.id;"
    "  END;";

/* A group name: 1..255 bytes of UTF-8, no control characters, not blank. */
bool
kcps__server_check_group(JsonObject *obj, const char **name, GError **error)
{
  static const char *const fields[] = {"name", NULL};
  if (!kcps__server_check_fields(obj, fields, error) ||
      !kcps__server_field_string(obj, "name", 1, KCPS_SERVER_MAX_NAME, KCPS_TEXT_PLAIN, name,
                                 error))
    return false;
  bool blank = true;
  for (const char *p = *name; *p && blank; p++)
    blank = *p == ' ';
  return blank ? kcps__server_set_bad(error, "field \"name\" must not be blank") : true;
}

static bool
is_constraint(kcps_server_t *server)
{
  return (sqlite3_extended_errcode(server->db) & 0xff) == SQLITE_CONSTRAINT;
}

/* A group seen through its public id. */
typedef struct {
  gint64 id;
  gint64 org;
  char *name;
} group_t;

static void
group_clear(group_t *g)
{
  g_free(g->name);
}

/* Looks the group up and asks Table 2-1 (users data of its organization).
 * Answers 404 (unknown, not a UUID, or outside the caller's subtree) or 403
 * itself; true with *out filled when the caller may. */
static bool
require_group(kcps_server_t *server, kcps_http_req_t *req, const kcps_server_session_t *session,
              const char *public_id, bool write, group_t *out)
{
  memset(out, 0, sizeof *out);
  if (!kcps__server_is_uuid(public_id)) {
    kcps_http_respond_error(req, 404, "not_found", "no such group");
    return false;
  }
  g_mutex_lock(&server->lock);
  sqlite3_stmt *stmt = kcps__server_db_prepare(
      server, "SELECT id, org_id, name FROM user_groups WHERE public_id = ?", NULL);
  if (stmt) {
    sqlite3_bind_text(stmt, 1, public_id, -1, SQLITE_STATIC);
    if (kcps__server_db_step(server, stmt, NULL) == SQLITE_ROW) {
      out->id = sqlite3_column_int64(stmt, 0);
      out->org = sqlite3_column_int64(stmt, 1);
      out->name = kcps__server_db_dup_text(stmt, 2);
    }
  }
  sqlite3_finalize(stmt);
  bool visible = out->id > 0 && kcps__server_org_within_locked(server, session->user_org_id,
                                                                 out->org);
  bool may = visible && kcps__server_may_locked(server, session, KCPS_DATA_USERS, out->org, write);
  g_mutex_unlock(&server->lock);
  if (!visible) {
    kcps_http_respond_error(req, 404, "not_found", "no such group");
    group_clear(out);
    return false;
  }
  if (!may) {
    kcps_http_respond_error(req, 403, "forbidden", "your role may not %s this group",
                            write ? "change" : "see");
    group_clear(out);
    return false;
  }
  return true;
}

#define GROUP_COLUMNS                                                                              \
  "g.public_id, g.name, g.created,"                                                                \
  " (SELECT count(*) FROM group_members m WHERE m.group_id = g.id)"

static void
add_group(JsonBuilder *b, sqlite3_stmt *stmt)
{
  json_builder_begin_object(b);
  kcps__server_json_string(b, "id", (const char *)sqlite3_column_text(stmt, 0));
  kcps__server_json_string(b, "name", (const char *)sqlite3_column_text(stmt, 1));
  g_autofree char *created = kcps__server_iso_time(sqlite3_column_int64(stmt, 2));
  kcps__server_json_string(b, "created", created);
  kcps__server_json_int(b, "members", sqlite3_column_int64(stmt, 3));
  json_builder_end_object(b);
}

static void
respond_group(kcps_server_t *server, kcps_http_req_t *req, unsigned status, gint64 group)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) node = NULL;
  g_mutex_lock(&server->lock);
  sqlite3_stmt *stmt = kcps__server_db_prepare(
      server, "SELECT " GROUP_COLUMNS " FROM user_groups g WHERE g.id = ?", &error);
  if (stmt) {
    sqlite3_bind_int64(stmt, 1, group);
    if (kcps__server_db_step(server, stmt, &error) == SQLITE_ROW) {
      g_autoptr(JsonBuilder) b = json_builder_new();
      add_group(b, stmt);
      node = json_builder_get_root(b);
    }
  }
  sqlite3_finalize(stmt);
  g_mutex_unlock(&server->lock);
  kcps__server_respond_found(req, error, node, status, "no such group");
}

/* The organization of a groups route; 404 for anything but a UUID. */
static gint64
require_org(kcps_server_t *server, kcps_http_req_t *req, const kcps_server_session_t *session,
            bool write, const char *id)
{
  if (!kcps__server_is_uuid(id)) {
    kcps_http_respond_error(req, 404, "not_found", "no such organization");
    return 0;
  }
  return kcps__server_require(server, req, session, KCPS_DATA_USERS, write, id);
}

void
kcps__server_route_list_groups(kcps_server_t *server, kcps_http_req_t *req,
                               const kcps_server_session_t *session, const char *id)
{
  gint64 org = require_org(server, req, session, false, id);
  if (org > 0)
    kcps__server_respond_rows(server, req, "groups",
                              "SELECT " GROUP_COLUMNS " FROM user_groups g WHERE g.org_id = ?"
                              " ORDER BY g.name, g.id",
                              org, add_group);
}

void
kcps__server_route_create_group(kcps_server_t *server, kcps_http_req_t *req,
                                const kcps_server_session_t *session, const char *id)
{
  gint64 org = require_org(server, req, session, true, id);
  if (org <= 0)
    return;
  JsonObject *obj = kcps__server_req_object(req);
  if (!obj)
    return;
  g_autoptr(GError) error = NULL;
  const char *name = NULL;
  if (!kcps__server_check_group(obj, &name, &error)) {
    kcps__server_respond_bad(req, error);
    return;
  }

  const char *refused = NULL;
  gint64 group = 0, count = 0;
  g_mutex_lock(&server->lock);
  g_autofree char *type = kcps__server_org_type_locked(server, org);
  sqlite3_stmt *stmt = kcps__server_db_prepare(
      server, "SELECT count(*) FROM user_groups WHERE org_id = ?", &error);
  if (stmt) {
    sqlite3_bind_int64(stmt, 1, org);
    if (kcps__server_db_step(server, stmt, &error) == SQLITE_ROW)
      count = sqlite3_column_int64(stmt, 0);
  }
  sqlite3_finalize(stmt);
  if (g_strcmp0(type, "customer") != 0)
    refused = "groups belong to customer organizations";
  else if (count >= GROUPS_PER_ORG)
    refused = "this organization has the most groups it may have (1000); delete one first";
  if (!error && !refused) {
    stmt = kcps__server_db_prepare(
        server, "INSERT INTO user_groups (public_id, org_id, name, created) VALUES (?, ?, ?, ?)",
        &error);
    if (stmt) {
      g_autofree char *public_id = g_uuid_string_random();
      sqlite3_bind_text(stmt, 1, public_id, -1, SQLITE_STATIC);
      sqlite3_bind_int64(stmt, 2, org);
      sqlite3_bind_text(stmt, 3, name, -1, SQLITE_STATIC);
      sqlite3_bind_int64(stmt, 4, kcps__server_now());
      if (kcps__server_db_step(server, stmt, &error) == SQLITE_DONE) {
        group = sqlite3_last_insert_rowid(server->db);
        kcps__server_audit_locked(server, org, session->user_id, "group.created", name,
                                  session->source, public_id);
      } else if (is_constraint(server)) {
        refused = "the organization has a group of that name already";
        g_clear_error(&error);
      }
    }
    sqlite3_finalize(stmt);
  }
  g_mutex_unlock(&server->lock);
  if (error)
    kcps__server_respond_internal(req, error);
  else if (refused)
    kcps_http_respond_error(req, 409, "conflict", "%s", refused);
  else
    respond_group(server, req, 201, group);
}

void
kcps__server_route_get_group(kcps_server_t *server, kcps_http_req_t *req,
                             const kcps_server_session_t *session, const char *id)
{
  group_t g;
  if (!require_group(server, req, session, id, false, &g))
    return;
  respond_group(server, req, 200, g.id);
  group_clear(&g);
}

void
kcps__server_route_rename_group(kcps_server_t *server, kcps_http_req_t *req,
                                const kcps_server_session_t *session, const char *id)
{
  group_t g;
  if (!require_group(server, req, session, id, true, &g))
    return;
  JsonObject *obj = kcps__server_req_object(req);
  const char *name = NULL;
  g_autoptr(GError) error = NULL;
  if (!obj) {
    group_clear(&g);
    return;
  }
  if (!kcps__server_check_group(obj, &name, &error)) {
    kcps__server_respond_bad(req, error);
    group_clear(&g);
    return;
  }
  bool dup = false;
  /* The same name again changes and logs nothing. */
  if (strcmp(name, g.name) != 0) {
    g_mutex_lock(&server->lock);
    sqlite3_stmt *stmt =
        kcps__server_db_prepare(server, "UPDATE user_groups SET name = ? WHERE id = ?", &error);
    if (stmt) {
      sqlite3_bind_text(stmt, 1, name, -1, SQLITE_STATIC);
      sqlite3_bind_int64(stmt, 2, g.id);
      if (kcps__server_db_step(server, stmt, &error) == SQLITE_DONE) {
        g_autofree char *detail = g_strdup_printf("was \"%s\"", g.name);
        kcps__server_audit_locked(server, g.org, session->user_id, "group.renamed", name,
                                  session->source, detail);
      } else if (is_constraint(server)) {
        dup = true;
        g_clear_error(&error);
      }
    }
    sqlite3_finalize(stmt);
    g_mutex_unlock(&server->lock);
  }
  if (error)
    kcps__server_respond_internal(req, error);
  else if (dup)
    kcps_http_respond_error(req, 409, "conflict",
                            "the organization has a group of that name already");
  else
    respond_group(server, req, 200, g.id);
  group_clear(&g);
}

void
kcps__server_route_delete_group(kcps_server_t *server, kcps_http_req_t *req,
                                const kcps_server_session_t *session, const char *id)
{
  group_t g;
  if (!require_group(server, req, session, id, true, &g))
    return;
  g_autoptr(GError) error = NULL;
  g_mutex_lock(&server->lock);
  sqlite3_stmt *stmt =
      kcps__server_db_prepare(server, "DELETE FROM user_groups WHERE id = ?", &error);
  if (stmt) {
    sqlite3_bind_int64(stmt, 1, g.id);
    if (kcps__server_db_step(server, stmt, &error) == SQLITE_DONE)
      kcps__server_audit_locked(server, g.org, session->user_id, "group.deleted", g.name,
                                session->source, id);
  }
  sqlite3_finalize(stmt);
  g_mutex_unlock(&server->lock);
  if (error)
    kcps__server_respond_internal(req, error);
  else
    kcps_http_respond_empty(req, 204);
  group_clear(&g);
}

/* Members ---------------------------------------------------------------- */

static void
add_member(JsonBuilder *b, sqlite3_stmt *stmt)
{
  json_builder_begin_object(b);
  kcps__server_json_string(b, "id", (const char *)sqlite3_column_text(stmt, 0));
  kcps__server_json_string(b, "email", (const char *)sqlite3_column_text(stmt, 1));
  kcps__server_json_string(b, "name", (const char *)sqlite3_column_text(stmt, 2));
  kcps__server_json_bool(b, "active", sqlite3_column_int(stmt, 3) != 0);
  json_builder_end_object(b);
}

void
kcps__server_route_list_members(kcps_server_t *server, kcps_http_req_t *req,
                                const kcps_server_session_t *session, const char *id)
{
  group_t g;
  if (!require_group(server, req, session, id, false, &g))
    return;
  kcps__server_respond_rows(server, req, "members",
                            "SELECT u.public_id, u.email, u.name, u.active FROM group_members m"
                            " JOIN users u ON u.id = m.user_id WHERE m.group_id = ?"
                            " ORDER BY u.email",
                            g.id, add_member);
  group_clear(&g);
}

/* A user of the group's organization by public id: her id and email, 0
 * when there is none there (another organization's users look absent).
 * Caller holds the lock. */
static gint64
member_user_locked(kcps_server_t *server, const char *public_id, gint64 org, char **email,
                   GError **error)
{
  sqlite3_stmt *stmt = kcps__server_db_prepare(
      server, "SELECT id, email FROM users WHERE public_id = ? AND org_id = ?", error);
  if (!stmt)
    return 0;
  sqlite3_bind_text(stmt, 1, public_id, -1, SQLITE_STATIC);
  sqlite3_bind_int64(stmt, 2, org);
  gint64 id = 0;
  if (kcps__server_db_step(server, stmt, error) == SQLITE_ROW) {
    id = sqlite3_column_int64(stmt, 0);
    *email = kcps__server_db_dup_text(stmt, 1);
  }
  sqlite3_finalize(stmt);
  return id;
}

/* POST /api/v1/groups/{id}/members {"user": public id}: 201 when added,
 * 200 when she was a member already (nothing changes, nothing is logged). */
void
kcps__server_route_add_member(kcps_server_t *server, kcps_http_req_t *req,
                              const kcps_server_session_t *session, const char *id)
{
  group_t g;
  if (!require_group(server, req, session, id, true, &g))
    return;
  JsonObject *obj = kcps__server_req_object(req);
  g_autoptr(GError) error = NULL;
  static const char *const fields[] = {"user", NULL};
  const char *user = NULL;
  if (!obj) {
    group_clear(&g);
    return;
  }
  if (!kcps__server_check_fields(obj, fields, &error) ||
      !kcps__server_field_string(obj, "user", 1, 64, KCPS_TEXT_PLAIN, &user, &error)) {
    kcps__server_respond_bad(req, error);
    group_clear(&g);
    return;
  }
  unsigned status = 0;
  g_autofree char *email = NULL;
  g_mutex_lock(&server->lock);
  gint64 uid = kcps__server_is_uuid(user)
                   ? member_user_locked(server, user, g.org, &email, &error) : 0;
  if (!error && uid > 0) {
    sqlite3_stmt *stmt = kcps__server_db_prepare(
        server, "INSERT OR IGNORE INTO group_members (group_id, user_id, added) VALUES (?, ?, ?)",
        &error);
    if (stmt) {
      sqlite3_bind_int64(stmt, 1, g.id);
      sqlite3_bind_int64(stmt, 2, uid);
      sqlite3_bind_int64(stmt, 3, kcps__server_now());
      if (kcps__server_db_step(server, stmt, &error) == SQLITE_DONE) {
        status = sqlite3_changes(server->db) > 0 ? 201 : 200;
        if (status == 201)
          kcps__server_audit_locked(server, g.org, session->user_id, "group.member_added", email,
                                    session->source, g.name);
      }
    }
    sqlite3_finalize(stmt);
  }
  g_mutex_unlock(&server->lock);
  if (error)
    kcps__server_respond_internal(req, error);
  else if (!status)
    kcps_http_respond_error(req, 404, "not_found",
                            "field \"user\": no such user in the group's organization");
  else
    respond_group(server, req, status, g.id);
  group_clear(&g);
}

/* DELETE /api/v1/groups/{id}/members/{user}: the route table's "*" holds
 * the last segment only, so both ids are read from the path. */
void
kcps__server_route_remove_member(kcps_server_t *server, kcps_http_req_t *req,
                                 const kcps_server_session_t *session, const char *id)
{
  (void)id;
  const char *path = kcps_http_req_path(req);
  const char *prefix = "/api/v1/groups/";
  char group_id[64] = "", user_id[64] = "";
  if (g_str_has_prefix(path, prefix)) {
    const char *p = path + strlen(prefix);
    const char *slash = strchr(p, '/');
    const char *user = slash && g_str_has_prefix(slash, "/members/") ? slash + 9 : NULL;
    if (user && (size_t)(slash - p) < sizeof group_id && strlen(user) < sizeof user_id) {
      memcpy(group_id, p, (size_t)(slash - p));
      group_id[slash - p] = '\0';
      g_strlcpy(user_id, user, sizeof user_id);
    }
  }
  group_t g;
  if (!require_group(server, req, session, group_id, true, &g))
    return;
  g_autoptr(GError) error = NULL;
  bool removed = false;
  g_autofree char *email = NULL;
  g_mutex_lock(&server->lock);
  gint64 uid = kcps__server_is_uuid(user_id)
                   ? member_user_locked(server, user_id, g.org, &email, &error) : 0;
  if (!error && uid > 0) {
    sqlite3_stmt *stmt = kcps__server_db_prepare(
        server, "DELETE FROM group_members WHERE group_id = ? AND user_id = ?", &error);
    if (stmt) {
      sqlite3_bind_int64(stmt, 1, g.id);
      sqlite3_bind_int64(stmt, 2, uid);
      if (kcps__server_db_step(server, stmt, &error) == SQLITE_DONE &&
          sqlite3_changes(server->db) > 0) {
        removed = true;
        kcps__server_audit_locked(server, g.org, session->user_id, "group.member_removed", email,
                                  session->source, g.name);
      }
    }
    sqlite3_finalize(stmt);
  }
  g_mutex_unlock(&server->lock);
  if (error)
    kcps__server_respond_internal(req, error);
  else if (!removed)
    kcps_http_respond_error(req, 404, "not_found", "no such member of this group");
  else
    kcps_http_respond_empty(req, 204);
  group_clear(&g);
}
