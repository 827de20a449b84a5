/* Reports: an organization's usage (jobs and pages per user, per device),
 * contract reports going upward (white paper section 3: a provider sees the
 * organizations it created by name, everything further down only as
 * anonymous aggregates), the external admin API with its keys, and reading
 * the audit log. */
#include "server-private.h"

#include "common/crypto.h"

#include <string.h>

/* A granted customer admin's API keys: "kcpsk_" + 256 random bits
 * (base64url), shown once, stored as SHA-256. Withdrawing the grant revokes
 * them all; so does whatever ends her standing as the organization's
 * customer admin (another role, deactivation, a move), whichever route
 * does it: a later grant or reactivation needs new keys. */
const char kcps__server_schema_reports[] =
    "ALTER TABLE users ADD COLUMN api_granted INTEGER NOT NULL DEFAULT 0;"
    "CREATE TABLE api_keys ("
    "  id INTEGER PRIMARY KEY,"
    "  public_id TEXT NOT NULL UNIQUE,"
    "  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    "  name TEXT NOT NULL,"
    "  key_hash TEXT NOT NULL UNIQUE CHECK (length(key_hash) = 64),"
    "  created INTEGER NOT NULL,"
    "  last_used INTEGER,"
    "  revoked INTEGER);"
    "CREATE INDEX api_keys_user ON api_keys(user_id);"
    "CREATE TRIGGER users_api_end AFTER UPDATE OF role, active, org_id ON users"
    "  WHEN NEW.role <> 'customer_admin' OR NEW.active = 0 OR NEW.org_id <> OLD.org_id"
    "  BEGIN"
    "    UPDATE users SET api_granted = 0 WHERE id = NEW.id AND api_granted <> 0;"
    "    UPDATE api_keys SET revoked = CAST(strftime('%s', 'now') AS INTEGER)"
    "      WHERE user_id = NEW.id AND revoked IS NULL;"
    "  END;"
    "CREATE INDEX job_logs_org_created ON job_logs(org_id, created);";

#define KEY_PREFIX "kcpsk_"
#define KEY_BYTES 32
#define KEY_TEXT_LEN 43 /* base64url of 32 bytes, no padding */
#define KEY_NAME_MAX 100
#define KEYS_PER_USER 20
#define AUDIT_LIMIT_DEFAULT 100
#define AUDIT_LIMIT_MAX 500
#define JOB_LOG_LIMIT_DEFAULT 1000
#define JOB_LOG_LIMIT_MAX 10000
#define TREE_DEPTH_MAX 64

/* A time member, null when the column is NULL. */
static void
add_time_col(JsonBuilder *b, const char *name, sqlite3_stmt *stmt, int col)
{
  if (sqlite3_column_type(stmt, col) == SQLITE_NULL) {
    kcps__server_json_string(b, name, NULL);
    return;
  }
  g_autofree char *t = kcps__server_iso_time(sqlite3_column_int64(stmt, col));
  kcps__server_json_string(b, name, t);
}

static void
respond_builder(kcps_http_req_t *req, unsigned status, JsonBuilder *b)
{
  g_autoptr(JsonNode) root = json_builder_get_root(b);
  kcps_http_respond_json(req, status, root);
}

/* Input checks ---------------------------------------------------------- */

bool
kcps__server_parse_month(const char *text, gint64 now, gint64 *start, gint64 *end, char out[8],
                         GError **error)
{
  int year, month;
  if (!text) {
    g_autoptr(GDateTime) dt = g_date_time_new_from_unix_utc(now);
    if (!dt) {
      kcps__server_set_bad(error, "no current month");
      return false;
    }
    year = g_date_time_get_year(dt);
    month = g_date_time_get_month(dt);
  } else {
    bool form = strlen(text) == 7 && text[4] == '-';
    for (size_t i = 0; form && i < 7; i++)
      form = i == 4 || g_ascii_isdigit(text[i]);
    year = form ? (int)g_ascii_strtoll(text, NULL, 10) : 0;
    month = form ? (int)g_ascii_strtoll(text + 5, NULL, 10) : 0;
    if (!form || year < 1970 || month < 1 || month > 12) {
      kcps__server_set_bad(error,
                           "query parameter \"month\" must be a month as YYYY-MM (1970-01 to "
                           "9999-12)");
      return false;
    }
  }
  g_autoptr(GDateTime) first = g_date_time_new_utc(year, month, 1, 0, 0, 0);
  g_autoptr(GDateTime) next = first ? g_date_time_add_months(first, 1) : NULL;
  if (!first || !next) {
    kcps__server_set_bad(error, "query parameter \"month\" is out of range");
    return false;
  }
  *start = g_date_time_to_unix(first);
  *end = g_date_time_to_unix(next);
  g_snprintf(out, 8, "%04d-%02d", year, month);
  return true;
}

bool
kcps__server_parse_count(const char *name, const char *text, gint64 lo, gint64 hi, gint64 dflt,
                         gint64 *out, GError **error)
{
  if (!text) {
    *out = dflt;
    return true;
  }
  gint64 v = 0;
  bool ok = *text && strlen(text) <= 18;
  for (const char *p = text; ok && *p; p++)
    ok = g_ascii_isdigit(*p);
  if (ok) {
    v = g_ascii_strtoll(text, NULL, 10);
    ok = v >= lo && v <= hi;
  }
  if (!ok) {
    kcps__server_set_bad(error,
                         "query parameter \"%s\" must be an integer from %" G_GINT64_FORMAT
                         " to %" G_GINT64_FORMAT,
                         name, lo, hi);
    return false;
  }
  *out = v;
  return true;
}

bool
kcps__server_api_key_form(const char *text)
{
  size_t plen = strlen(KEY_PREFIX);
  if (!text || strlen(text) != plen + KEY_TEXT_LEN || !g_str_has_prefix(text, KEY_PREFIX))
    return false;
  for (const char *p = text + plen; *p; p++)
    if (!g_ascii_isalnum(*p) && *p != '-' && *p != '_')
      return false;
  return true;
}

/* An integer query parameter in lo..hi (dflt when absent). */
static bool
query_int(kcps_http_req_t *req, const char *name, gint64 lo, gint64 hi, gint64 dflt, gint64 *out,
          GError **error)
{
  return kcps__server_parse_count(name, kcps_http_req_query(req, name), lo, hi, dflt, out, error);
}

bool
kcps__server_month_of_req(kcps_http_req_t *req, gint64 *start, gint64 *end, char out[8])
{
  g_autoptr(GError) error = NULL;
  if (kcps__server_parse_month(kcps_http_req_query(req, "month"), kcps__server_now(), start, end,
                               out, &error))
    return true;
  kcps__server_respond_bad(req, error);
  return false;
}

/* Usage report of one organization -------------------------------------- */

/* The figures every usage row carries, from five columns at col: completed
 * jobs, their pages, color pages, duplex jobs, failed jobs. */
#define USAGE_COLUMNS                                                                              \
  " coalesce(sum(l.status = 'completed'), 0),"                                                     \
  " coalesce(sum(CASE WHEN l.status = 'completed' THEN l.pages ELSE 0 END), 0),"                   \
  " coalesce(sum(CASE WHEN l.status = 'completed' THEN l.color_pages ELSE 0 END), 0),"             \
  " coalesce(sum(l.status = 'completed' AND l.duplex <> 0), 0),"                                   \
  " coalesce(sum(l.status = 'failed'), 0)"
#define USAGE_WHERE " WHERE l.org_id = ?1 AND l.created >= ?2 AND l.created < ?3"

static void
add_usage(JsonBuilder *b, sqlite3_stmt *stmt, int col)
{
  kcps__server_json_int(b, "jobs", sqlite3_column_int64(stmt, col));
  kcps__server_json_int(b, "pages", sqlite3_column_int64(stmt, col + 1));
  kcps__server_json_int(b, "color_pages", sqlite3_column_int64(stmt, col + 2));
  kcps__server_json_int(b, "duplex_jobs", sqlite3_column_int64(stmt, col + 3));
  kcps__server_json_int(b, "failed_jobs", sqlite3_column_int64(stmt, col + 4));
}

bool
kcps__server_report_rows_locked(kcps_server_t *server, JsonBuilder *b, const char *member,
                                const char *sql, const char *const *names, int ncols, gint64 org,
                                gint64 start, gint64 end, kcps__server_figures_fn figures,
                                GError **error)
{
  sqlite3_stmt *stmt = kcps__server_db_prepare(server, sql, error);
  if (!stmt)
    return false;
  sqlite3_bind_int64(stmt, 1, org);
  sqlite3_bind_int64(stmt, 2, start);
  sqlite3_bind_int64(stmt, 3, end);
  json_builder_set_member_name(b, member);
  json_builder_begin_array(b);
  int rc;
  while ((rc = kcps__server_db_step(server, stmt, error)) == SQLITE_ROW) {
    json_builder_begin_object(b);
    for (int i = 0; i < ncols; i++) {
      if (names[i][0] == '#') {
        /* A limit: -1 (NULL in the table) is unlimited. */
        gint64 v = sqlite3_column_type(stmt, i) == SQLITE_NULL ? -1
                                                                : sqlite3_column_int64(stmt, i);
        json_builder_set_member_name(b, names[i] + 1);
        if (v < 0)
          json_builder_add_null_value(b);
        else
          json_builder_add_int_value(b, v);
      } else {
        kcps__server_json_string(b, names[i], (const char *)sqlite3_column_text(stmt, i));
      }
    }
    figures(b, stmt, ncols);
    json_builder_end_object(b);
  }
  json_builder_end_array(b);
  sqlite3_finalize(stmt);
  return rc == SQLITE_DONE;
}

bool
kcps__server_report_totals_locked(kcps_server_t *server, JsonBuilder *b, const char *sql,
                                  gint64 org, gint64 start, gint64 end,
                                  kcps__server_figures_fn figures, GError **error)
{
  sqlite3_stmt *stmt = kcps__server_db_prepare(server, sql, error);
  if (!stmt)
    return false;
  sqlite3_bind_int64(stmt, 1, org);
  sqlite3_bind_int64(stmt, 2, start);
  sqlite3_bind_int64(stmt, 3, end);
  int rc = kcps__server_db_step(server, stmt, error);
  if (rc == SQLITE_ROW) {
    json_builder_set_member_name(b, "totals");
    json_builder_begin_object(b);
    figures(b, stmt, 0);
    json_builder_end_object(b);
  }
  sqlite3_finalize(stmt);
  return rc >= 0;
}

static void
route_org_report(kcps_server_t *server, kcps_http_req_t *req, const kcps_server_session_t *session,
                 const char *id)
{
  gint64 org = kcps__server_require(server, req, session, KCPS_DATA_REPORTS, false, id);
  if (!org)
    return;
  gint64 start, end;
  char month[8];
  if (!kcps__server_month_of_req(req, &start, &end, month))
    return;

  static const char *const user_names[] = {"id", "email", "name"};
  static const char *const device_names[] = {"name"};
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonBuilder) b = json_builder_new();
  json_builder_begin_object(b);
  kcps__server_json_string(b, "org", id);
  kcps__server_json_string(b, "month", month);

  g_mutex_lock(&server->lock);
  kcps__server_report_totals_locked(server, b,
                                    "SELECT" USAGE_COLUMNS " FROM job_logs l" USAGE_WHERE,
                                    org, start, end, add_usage, &error);
  if (!error)
    kcps__server_report_rows_locked(server, b, "users",
                          "SELECT u.public_id, u.email, u.name," USAGE_COLUMNS
                          " FROM job_logs l JOIN users u ON u.id = l.user_id" USAGE_WHERE
                          " GROUP BY l.user_id ORDER BY u.email",
                          user_names, 3, org, start, end, add_usage, &error);
  if (!error)
    kcps__server_report_rows_locked(server, b, "devices",
                          "SELECT d.name," USAGE_COLUMNS
                          " FROM job_logs l JOIN devices d ON d.id = l.device_id" USAGE_WHERE
                          " GROUP BY l.device_id ORDER BY d.name",
                          device_names, 1, org, start, end, add_usage, &error);
  /* Each user group (server-groups.c) with its present members' job logs:
   * a log once per group; groups may overlap. */
  static const char *const group_names[] = {"id", "name", "#members"};
  if (!error)
    kcps__server_report_rows_locked(server, b, "groups",
                          "SELECT g.public_id, g.name,"
                          " (SELECT count(*) FROM group_members m2 WHERE m2.group_id = g.id),"
                          USAGE_COLUMNS
                          " FROM user_groups g LEFT JOIN group_members m ON m.group_id = g.id"
                          " LEFT JOIN job_logs l ON l.user_id = m.user_id AND l.org_id = g.org_id"
                          "  AND l.created >= ?2 AND l.created < ?3"
                          " WHERE g.org_id = ?1 GROUP BY g.id ORDER BY g.name, g.id",
                          group_names, 3, org, start, end, add_usage, &error);
  g_mutex_unlock(&server->lock);
  json_builder_end_object(b);

  if (error)
    kcps__server_respond_internal(req, error);
  else
    respond_builder(req, 200, b);
}

/* Contract reports ------------------------------------------------------ */

/* License figures of one organization, or summed over several. */
typedef struct {
  gint64 orgs, users, devices, jobs, pages, color_pages;
} figures_t;

static void
figures_add(figures_t *sum, const figures_t *f)
{
  sum->orgs += f->orgs;
  sum->users += f->users;
  sum->devices += f->devices;
  sum->jobs += f->jobs;
  sum->pages += f->pages;
  sum->color_pages += f->color_pages;
}

static void
add_figures(JsonBuilder *b, const figures_t *f, bool aggregate)
{
  if (aggregate)
    kcps__server_json_int(b, "organizations", f->orgs);
  kcps__server_json_int(b, "users", f->users);
  kcps__server_json_int(b, "devices", f->devices);
  kcps__server_json_int(b, "jobs", f->jobs);
  kcps__server_json_int(b, "pages", f->pages);
  kcps__server_json_int(b, "color_pages", f->color_pages);
}

/* A direct child: shown by name with its own figures and, without names,
 * the sum of everything under it. */
typedef struct {
  gint64 id;
  char *public_id;
  char *name;
  char *type;
  figures_t own;
  figures_t below;
} child_t;

static void
child_clear(gpointer data)
{
  child_t *c = data;
  g_free(c->public_id);
  g_free(c->name);
  g_free(c->type);
}

/* The contract report of org. Its direct children are named only when
 * named_children (org is the caller's own: it created them); everything
 * else under org is only summed. Caller holds the lock. */
static JsonNode *
contract_report_locked(kcps_server_t *server, gint64 org, bool named_children, const char *month,
                       gint64 start, gint64 end, GError **error)
{
  sqlite3_stmt *stmt = kcps__server_db_prepare(
      server,
      "WITH RECURSIVE sub(id, depth, top) AS ("
      "  SELECT id, 0, 0 FROM orgs WHERE id = ?1"
      "  UNION ALL"
      "  SELECT o.id, s.depth + 1, CASE WHEN s.depth = 0 THEN o.id ELSE s.top END"
      "  FROM orgs o JOIN sub s ON o.parent_id = s.id WHERE s.depth < ?4)"
      " SELECT s.id, s.depth, s.top, o.public_id, o.name, o.type,"
      "  (SELECT count(*) FROM users u WHERE u.org_id = s.id AND u.active = 1),"
      "  (SELECT count(*) FROM devices d WHERE d.org_id = s.id AND d.active = 1),"
      /* usage_counted (server-usage.c): completed job logs and usage
       * records from every other route, each print once. */
      "  (SELECT count(*) FROM usage_counted l WHERE l.org_id = s.id"
      "     AND l.time >= ?2 AND l.time < ?3),"
      "  (SELECT coalesce(sum(l.pages), 0) FROM usage_counted l WHERE l.org_id = s.id"
      "     AND l.time >= ?2 AND l.time < ?3),"
      "  (SELECT coalesce(sum(l.color_pages), 0) FROM usage_counted l WHERE l.org_id = s.id"
      "     AND l.time >= ?2 AND l.time < ?3)"
      " FROM sub s JOIN orgs o ON o.id = s.id ORDER BY s.depth, o.name, s.id",
      error);
  if (!stmt)
    return NULL;
  sqlite3_bind_int64(stmt, 1, org);
  sqlite3_bind_int64(stmt, 2, start);
  sqlite3_bind_int64(stmt, 3, end);
  sqlite3_bind_int64(stmt, 4, TREE_DEPTH_MAX);

  g_autoptr(GArray) children = g_array_new(FALSE, TRUE, sizeof(child_t));
  g_array_set_clear_func(children, child_clear);
  figures_t own = {0}, below = {0};
  g_autofree char *own_public = NULL, *own_name = NULL, *own_type = NULL;
  int rc;
  while ((rc = kcps__server_db_step(server, stmt, error)) == SQLITE_ROW) {
    gint64 depth = sqlite3_column_int64(stmt, 1);
    figures_t f = {
        .orgs = 1,
        .users = sqlite3_column_int64(stmt, 6),
        .devices = sqlite3_column_int64(stmt, 7),
        .jobs = sqlite3_column_int64(stmt, 8),
        .pages = sqlite3_column_int64(stmt, 9),
        .color_pages = sqlite3_column_int64(stmt, 10),
    };
    if (depth == 0) {
      own = f;
      own_public = kcps__server_db_dup_text(stmt, 3);
      own_name = kcps__server_db_dup_text(stmt, 4);
      own_type = kcps__server_db_dup_text(stmt, 5);
      continue;
    }
    /* Rows come by depth: a child is indexed before anything under it. */
    figures_add(&below, &f);
    if (!named_children)
      continue;
    if (depth == 1) {
      child_t c = {
          .id = sqlite3_column_int64(stmt, 0),
          .public_id = kcps__server_db_dup_text(stmt, 3),
          .name = kcps__server_db_dup_text(stmt, 4),
          .type = kcps__server_db_dup_text(stmt, 5),
          .own = f,
      };
      g_array_append_val(children, c);
      continue;
    }
    gint64 top = sqlite3_column_int64(stmt, 2);
    for (guint i = 0; i < children->len; i++) {
      child_t *c = &g_array_index(children, child_t, i);
      if (c->id == top) {
        figures_add(&c->below, &f);
        break;
      }
    }
  }
  sqlite3_finalize(stmt);
  if (rc < 0)
    return NULL;

  /* "below" at the top is everything under the children (the named ones
   * are listed with their own figures, not summed into it). */
  figures_t deep = below;
  for (guint i = 0; i < children->len; i++) {
    const child_t *c = &g_array_index(children, child_t, i);
    deep.orgs -= c->own.orgs;
    deep.users -= c->own.users;
    deep.devices -= c->own.devices;
    deep.jobs -= c->own.jobs;
    deep.pages -= c->own.pages;
    deep.color_pages -= c->own.color_pages;
  }

  g_autoptr(JsonBuilder) b = json_builder_new();
  json_builder_begin_object(b);
  kcps__server_json_string(b, "month", month);
  json_builder_set_member_name(b, "org");
  json_builder_begin_object(b);
  kcps__server_json_string(b, "id", own_public);
  kcps__server_json_string(b, "name", own_name);
  kcps__server_json_string(b, "type", own_type);
  add_figures(b, &own, false);
  json_builder_end_object(b);
  json_builder_set_member_name(b, "children");
  json_builder_begin_array(b);
  for (guint i = 0; i < children->len; i++) {
    const child_t *c = &g_array_index(children, child_t, i);
    json_builder_begin_object(b);
    kcps__server_json_string(b, "id", c->public_id);
    kcps__server_json_string(b, "name", c->name);
    kcps__server_json_string(b, "type", c->type);
    add_figures(b, &c->own, false);
    json_builder_set_member_name(b, "below");
    json_builder_begin_object(b);
    add_figures(b, &c->below, true);
    json_builder_end_object(b);
    json_builder_end_object(b);
  }
  json_builder_end_array(b);
  json_builder_set_member_name(b, "below");
  json_builder_begin_object(b);
  add_figures(b, &deep, true);
  json_builder_end_object(b);
  json_builder_end_object(b);
  return json_builder_get_root(b);
}

/* The parent of org (0 for the root or an unknown org); caller holds the lock. */
static gint64
org_parent_locked(kcps_server_t *server, gint64 org)
{
  sqlite3_stmt *stmt =
      kcps__server_db_prepare(server, "SELECT parent_id FROM orgs WHERE id = ?", NULL);
  if (!stmt)
    return 0;
  sqlite3_bind_int64(stmt, 1, org);
  gint64 parent =
      kcps__server_db_step(server, stmt, NULL) == SQLITE_ROW ? sqlite3_column_int64(stmt, 0) : 0;
  sqlite3_finalize(stmt);
  return parent;
}

static void
route_contracts(kcps_server_t *server, kcps_http_req_t *req, const kcps_server_session_t *session,
                const char *id)
{
  gint64 org = kcps__server_require(server, req, session, KCPS_DATA_CONTRACTS, false, id);
  if (!org)
    return;
  gint64 start, end;
  char month[8];
  if (!kcps__server_month_of_req(req, &start, &end, month))
    return;

  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) root = NULL;
  bool own = org == session->user_org_id;
  g_mutex_lock(&server->lock);
  /* Section 3: names are known one level down only (the caller's org made
   * those). A direct child's report is given with its own name and the rest
   * summed; anything deeper is not reported one by one at all. */
  bool direct = !own && org_parent_locked(server, org) == session->user_org_id;
  if (own || direct)
    root = contract_report_locked(server, org, own, month, start, end, &error);
  g_mutex_unlock(&server->lock);

  if (error)
    kcps__server_respond_internal(req, error);
  else if (!own && !direct)
    kcps_http_respond_error(req, 403, "forbidden",
                            "organizations further down than your own children are reported "
                            "only in aggregate (ask for your own organization)");
  else if (!root)
    kcps_http_respond_error(req, 404, "not_found", "no such organization");
  else
    kcps_http_respond_json(req, 200, root);
}

/* Audit log --------------------------------------------------------------- */

static void
route_audit(kcps_server_t *server, kcps_http_req_t *req, const kcps_server_session_t *session,
            const char *id)
{
  gint64 org = kcps__server_require(server, req, session, KCPS_DATA_AUDIT, false, id);
  if (!org)
    return;
  g_autoptr(GError) error = NULL;
  gint64 limit, before;
  if (!query_int(req, "limit", 1, AUDIT_LIMIT_MAX, AUDIT_LIMIT_DEFAULT, &limit, &error) ||
      !query_int(req, "before", 1, G_MAXINT64, G_MAXINT64, &before, &error)) {
    kcps__server_respond_bad(req, error);
    return;
  }

  g_autoptr(JsonBuilder) b = json_builder_new();
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "events");
  json_builder_begin_array(b);
  gint64 last = 0, n = 0;
  g_mutex_lock(&server->lock);
  sqlite3_stmt *stmt = kcps__server_db_prepare(
      server,
      "SELECT a.id, a.created, a.event, u.email, a.subject, a.source, a.detail"
      " FROM audit a LEFT JOIN users u ON u.id = a.user_id"
      " WHERE a.org_id = ? AND a.id < ? ORDER BY a.id DESC LIMIT ?",
      &error);
  if (stmt) {
    sqlite3_bind_int64(stmt, 1, org);
    sqlite3_bind_int64(stmt, 2, before);
    sqlite3_bind_int64(stmt, 3, limit);
    while (kcps__server_db_step(server, stmt, &error) == SQLITE_ROW) {
      last = sqlite3_column_int64(stmt, 0);
      n++;
      json_builder_begin_object(b);
      kcps__server_json_int(b, "id", last);
      add_time_col(b, "time", stmt, 1);
      kcps__server_json_string(b, "event", (const char *)sqlite3_column_text(stmt, 2));
      kcps__server_json_string(b, "user", (const char *)sqlite3_column_text(stmt, 3));
      kcps__server_json_string(b, "subject", (const char *)sqlite3_column_text(stmt, 4));
      kcps__server_json_string(b, "source", (const char *)sqlite3_column_text(stmt, 5));
      kcps__server_json_string(b, "detail", (const char *)sqlite3_column_text(stmt, 6));
      json_builder_end_object(b);
    }
  }
  sqlite3_finalize(stmt);
  g_mutex_unlock(&server->lock);
  json_builder_end_array(b);
  /* Where the next page starts (null when this one was not full). */
  json_builder_set_member_name(b, "next_before");
  if (n == limit && last > 1)
    json_builder_add_int_value(b, last);
  else
    json_builder_add_null_value(b);
  json_builder_end_object(b);

  if (error)
    kcps__server_respond_internal(req, error);
  else
    respond_builder(req, 200, b);
}

/* Granting the external admin API --------------------------------------- */

static void
route_api_access(kcps_server_t *server, kcps_http_req_t *req, const kcps_server_session_t *session,
                 const char *id)
{
  static const char *const fields[] = {"granted", NULL};
  if (!kcps__server_is_uuid(id)) {
    kcps_http_respond_error(req, 404, "not_found", "no such user");
    return;
  }
  JsonObject *obj = kcps__server_req_object(req);
  if (!obj)
    return;
  g_autoptr(GError) error = NULL;
  bool granted = false;
  if (!kcps__server_check_fields(obj, fields, &error) ||
      !kcps__server_field_bool(obj, "granted", true, false, &granted, &error)) {
    kcps__server_respond_bad(req, error);
    return;
  }

  unsigned status = 0;
  g_autofree char *email = NULL;
  g_mutex_lock(&server->lock);
  sqlite3_stmt *stmt = kcps__server_db_prepare(
      server, "SELECT id, org_id, role, email, api_granted FROM users WHERE public_id = ?", &error);
  gint64 user = 0, org = 0;
  bool was = false, admin = false;
  if (stmt) {
    sqlite3_bind_text(stmt, 1, id, -1, SQLITE_STATIC);
    if (kcps__server_db_step(server, stmt, &error) == SQLITE_ROW) {
      user = sqlite3_column_int64(stmt, 0);
      org = sqlite3_column_int64(stmt, 1);
      admin = g_strcmp0((const char *)sqlite3_column_text(stmt, 2), "customer_admin") == 0;
      email = kcps__server_db_dup_text(stmt, 3);
      was = sqlite3_column_int64(stmt, 4) != 0;
    }
  }
  sqlite3_finalize(stmt);
  /* A user outside the caller's part of the tree looks absent. */
  if (!error && (!user || !kcps__server_org_within_locked(server, session->user_org_id, org)))
    status = 404;
  else if (!error && !kcps__server_may_locked(server, session, KCPS_DATA_API, org, true))
    status = 403;
  else if (!error && granted && user == session->user_id)
    status = 403; /* "only if permitted": someone else must permit it */
  else if (!error && !admin)
    status = 409;
  else if (!error && was != granted && kcps__server_db_begin(server, &error)) {
    stmt = kcps__server_db_prepare(server, "UPDATE users SET api_granted = ? WHERE id = ?", &error);
    if (stmt) {
      sqlite3_bind_int(stmt, 1, granted ? 1 : 0);
      sqlite3_bind_int64(stmt, 2, user);
      kcps__server_db_step(server, stmt, &error);
    }
    sqlite3_finalize(stmt);
    /* Withdrawing the grant ends every key: a later grant needs new ones. */
    if (!error && !granted) {
      stmt = kcps__server_db_prepare(
          server, "UPDATE api_keys SET revoked = ? WHERE user_id = ? AND revoked IS NULL", &error);
      if (stmt) {
        sqlite3_bind_int64(stmt, 1, kcps__server_now());
        sqlite3_bind_int64(stmt, 2, user);
        kcps__server_db_step(server, stmt, &error);
      }
      sqlite3_finalize(stmt);
    }
    if (!error)
      kcps__server_audit_locked(server, org, session->user_id, "api.granted", email,
                                session->source, granted ? "granted" : "withdrawn");
    if (error)
      kcps__server_db_rollback(server);
    else
      kcps__server_db_commit(server, &error);
  }
  g_mutex_unlock(&server->lock);

  if (error)
    kcps__server_respond_internal(req, error);
  else if (status == 404)
    kcps_http_respond_error(req, 404, "not_found", "no such user");
  else if (status == 403)
    kcps_http_respond_error(req, 403, "forbidden",
                            "your role may not grant the external admin API here");
  else if (status == 409)
    kcps_http_respond_error(req, 409, "conflict",
                            "only a customer admin can be granted the external admin API");
  else {
    g_autoptr(JsonBuilder) b = json_builder_new();
    json_builder_begin_object(b);
    kcps__server_json_string(b, "id", id);
    kcps__server_json_string(b, "email", email);
    kcps__server_json_bool(b, "api_granted", granted);
    json_builder_end_object(b);
    respond_builder(req, 200, b);
  }
}

/* API keys ---------------------------------------------------------------- */

/* Is the session's user a customer admin holding the grant? Caller holds
 * the lock. */
static bool
granted_locked(kcps_server_t *server, const kcps_server_session_t *session, GError **error)
{
  if (!kcps__server_may_locked(server, session, KCPS_DATA_API, session->user_org_id, true) ||
      kcps__server_role_parse(session->role) != KCPS_ROLE_CUSTOMER_ADMIN)
    return false;
  sqlite3_stmt *stmt = kcps__server_db_prepare(
      server, "SELECT api_granted FROM users WHERE id = ? AND active = 1", error);
  if (!stmt)
    return false;
  sqlite3_bind_int64(stmt, 1, session->user_id);
  bool granted =
      kcps__server_db_step(server, stmt, error) == SQLITE_ROW && sqlite3_column_int64(stmt, 0) != 0;
  sqlite3_finalize(stmt);
  return granted;
}

static bool
check_key_name(JsonObject *obj, const char **out, GError **error)
{
  static const char *const fields[] = {"name", NULL};
  return kcps__server_check_fields(obj, fields, error) &&
         kcps__server_field_string(obj, "name", 1, KEY_NAME_MAX, KCPS_TEXT_PLAIN, out, error);
}

static void
route_key_create(kcps_server_t *server, kcps_http_req_t *req, const kcps_server_session_t *session,
                 const char *id)
{
  (void)id;
  JsonObject *obj = kcps__server_req_object(req);
  if (!obj)
    return;
  g_autoptr(GError) error = NULL;
  const char *name = NULL;
  if (!check_key_name(obj, &name, &error)) {
    kcps__server_respond_bad(req, error);
    return;
  }
  /* Made before taking the lock; only its hash is stored. */
  g_autofree char *token = kcps_crypto_random_token(KEY_BYTES);
  if (!token) {
    kcps_http_respond_error(req, 500, "internal", "no randomness for a key");
    return;
  }
  g_autofree char *key = g_strconcat(KEY_PREFIX, token, NULL);
  char hash[65];
  kcps_crypto_sha256_hex(key, strlen(key), hash);
  g_autofree char *public_id = g_uuid_string_random();
  gint64 now = kcps__server_now();

  unsigned status = 201;
  g_mutex_lock(&server->lock);
  if (!granted_locked(server, session, &error))
    status = 403;
  gint64 live = 0;
  sqlite3_stmt *stmt = NULL;
  if (!error && status == 201) {
    stmt = kcps__server_db_prepare(
        server, "SELECT count(*) FROM api_keys WHERE user_id = ? AND revoked IS NULL", &error);
    if (stmt) {
      sqlite3_bind_int64(stmt, 1, session->user_id);
      if (kcps__server_db_step(server, stmt, &error) == SQLITE_ROW)
        live = sqlite3_column_int64(stmt, 0);
    }
    sqlite3_finalize(stmt);
    if (live >= KEYS_PER_USER)
      status = 409;
  }
  if (!error && status == 201) {
    stmt =
        kcps__server_db_prepare(server,
                                "INSERT INTO api_keys (public_id, user_id, name, key_hash, created)"
                                " VALUES (?, ?, ?, ?, ?)",
                                &error);
    if (stmt) {
      sqlite3_bind_text(stmt, 1, public_id, -1, SQLITE_STATIC);
      sqlite3_bind_int64(stmt, 2, session->user_id);
      sqlite3_bind_text(stmt, 3, name, -1, SQLITE_STATIC);
      sqlite3_bind_text(stmt, 4, hash, -1, SQLITE_STATIC);
      sqlite3_bind_int64(stmt, 5, now);
      kcps__server_db_step(server, stmt, &error);
    }
    sqlite3_finalize(stmt);
    if (!error)
      kcps__server_audit_locked(server, session->user_org_id, session->user_id, "apikey.created",
                                name, session->source, public_id);
  }
  g_mutex_unlock(&server->lock);

  if (error)
    kcps__server_respond_internal(req, error);
  else if (status == 403)
    kcps_http_respond_error(req, 403, "forbidden",
                            "the external admin API has not been granted to you");
  else if (status == 409)
    kcps_http_respond_error(req, 409, "conflict", "you hold %d live keys already; revoke one first",
                            KEYS_PER_USER);
  else {
    g_autoptr(JsonBuilder) b = json_builder_new();
    json_builder_begin_object(b);
    kcps__server_json_string(b, "id", public_id);
    kcps__server_json_string(b, "name", name);
    kcps__server_json_string(b, "key", key);
    g_autofree char *created = kcps__server_iso_time(now);
    kcps__server_json_string(b, "created", created);
    json_builder_end_object(b);
    respond_builder(req, 201, b);
  }
}

static void
route_key_list(kcps_server_t *server, kcps_http_req_t *req, const kcps_server_session_t *session,
               const char *id)
{
  (void)id;
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonBuilder) b = json_builder_new();
  json_builder_begin_object(b);
  g_mutex_lock(&server->lock);
  bool may = kcps__server_role_parse(session->role) == KCPS_ROLE_CUSTOMER_ADMIN &&
             kcps__server_may_locked(server, session, KCPS_DATA_API, session->user_org_id, false);
  if (may) {
    kcps__server_json_bool(b, "granted", granted_locked(server, session, &error));
    json_builder_set_member_name(b, "keys");
    json_builder_begin_array(b);
    sqlite3_stmt *stmt =
        kcps__server_db_prepare(server,
                                "SELECT public_id, name, created, last_used, revoked FROM api_keys"
                                " WHERE user_id = ? ORDER BY id",
                                &error);
    if (stmt) {
      sqlite3_bind_int64(stmt, 1, session->user_id);
      while (kcps__server_db_step(server, stmt, &error) == SQLITE_ROW) {
        json_builder_begin_object(b);
        kcps__server_json_string(b, "id", (const char *)sqlite3_column_text(stmt, 0));
        kcps__server_json_string(b, "name", (const char *)sqlite3_column_text(stmt, 1));
        add_time_col(b, "created", stmt, 2);
        add_time_col(b, "last_used", stmt, 3);
        add_time_col(b, "revoked", stmt, 4);
        json_builder_end_object(b);
      }
    }
    sqlite3_finalize(stmt);
    json_builder_end_array(b);
  }
  g_mutex_unlock(&server->lock);
  json_builder_end_object(b);

  if (error)
    kcps__server_respond_internal(req, error);
  else if (!may)
    kcps_http_respond_error(req, 403, "forbidden", "only a customer admin holds API keys");
  else
    respond_builder(req, 200, b);
}

static void
route_key_delete(kcps_server_t *server, kcps_http_req_t *req, const kcps_server_session_t *session,
                 const char *id)
{
  if (!kcps__server_is_uuid(id)) {
    kcps_http_respond_error(req, 404, "not_found", "no such API key");
    return;
  }
  g_autoptr(GError) error = NULL;
  bool found = false;
  g_mutex_lock(&server->lock);
  sqlite3_stmt *stmt = kcps__server_db_prepare(
      server,
      "SELECT id, name, revoked IS NOT NULL FROM api_keys WHERE public_id = ? AND user_id = ?",
      &error);
  gint64 key = 0;
  bool revoked = false;
  g_autofree char *name = NULL;
  if (stmt) {
    sqlite3_bind_text(stmt, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 2, session->user_id);
    found = kcps__server_db_step(server, stmt, &error) == SQLITE_ROW;
    if (found) {
      key = sqlite3_column_int64(stmt, 0);
      name = kcps__server_db_dup_text(stmt, 1);
      revoked = sqlite3_column_int(stmt, 2) != 0;
    }
  }
  sqlite3_finalize(stmt);
  if (found && !revoked && !error) {
    stmt = kcps__server_db_prepare(server, "UPDATE api_keys SET revoked = ? WHERE id = ?", &error);
    if (stmt) {
      sqlite3_bind_int64(stmt, 1, kcps__server_now());
      sqlite3_bind_int64(stmt, 2, key);
      if (kcps__server_db_step(server, stmt, &error) == SQLITE_DONE)
        kcps__server_audit_locked(server, session->user_org_id, session->user_id, "apikey.revoked",
                                  name, session->source, id);
    }
    sqlite3_finalize(stmt);
  }
  g_mutex_unlock(&server->lock);

  if (error)
    kcps__server_respond_internal(req, error);
  else if (!found)
    kcps_http_respond_error(req, 404, "not_found", "no such API key");
  else
    kcps_http_respond_empty(req, 204);
}

/* The external admin API (key-authenticated) ---------------------------- */

/* The organization and owner a valid key speaks for. */
typedef struct {
  gint64 key_id;
  gint64 user_id;
  gint64 org_id;
  char *key_public_id;
  char *key_name;
} api_caller_t;

static void
api_caller_clear(api_caller_t *c)
{
  g_free(c->key_public_id);
  g_free(c->key_name);
}

/* Checks the request's key. Valid only when known, not revoked, and its
 * owner is an active customer admin of a customer organization who holds
 * the grant. Each use is audited (never the key). Caller holds the lock. */
static bool
key_caller_locked(kcps_server_t *server, kcps_http_req_t *req, const char *hash, api_caller_t *out,
                  GError **error)
{
  sqlite3_stmt *stmt = kcps__server_db_prepare(
      server,
      "SELECT k.id, k.key_hash, k.user_id, u.org_id, k.public_id, k.name FROM api_keys k"
      " JOIN users u ON u.id = k.user_id JOIN orgs o ON o.id = u.org_id"
      " WHERE k.key_hash = ? AND k.revoked IS NULL AND u.active = 1 AND u.api_granted = 1"
      "   AND u.role = 'customer_admin' AND o.type = 'customer'",
      error);
  if (!stmt)
    return false;
  sqlite3_bind_text(stmt, 1, hash, -1, SQLITE_STATIC);
  bool found = kcps__server_db_step(server, stmt, error) == SQLITE_ROW;
  /* Compared in constant time, against a dummy when nothing matched. */
  const char *stored =
      found ? (const char *)sqlite3_column_text(stmt, 1) : server->dummy_secret_hash;
  bool ok = kcps_crypto_streq(stored, hash) && found;
  if (ok) {
    out->key_id = sqlite3_column_int64(stmt, 0);
    out->user_id = sqlite3_column_int64(stmt, 2);
    out->org_id = sqlite3_column_int64(stmt, 3);
    out->key_public_id = kcps__server_db_dup_text(stmt, 4);
    out->key_name = kcps__server_db_dup_text(stmt, 5);
  }
  sqlite3_finalize(stmt);
  if (!ok)
    return false;

  stmt = kcps__server_db_prepare(server, "UPDATE api_keys SET last_used = ? WHERE id = ?", error);
  if (stmt) {
    sqlite3_bind_int64(stmt, 1, kcps__server_now());
    sqlite3_bind_int64(stmt, 2, out->key_id);
    kcps__server_db_step(server, stmt, error);
  }
  sqlite3_finalize(stmt);
  char source[64];
  kcps__server_req_source(req, source, sizeof source);
  g_autofree char *detail = g_strdup_printf("key %s: %s %s", out->key_public_id,
                                            kcps_http_req_method(req), kcps_http_req_path(req));
  kcps__server_audit_locked(server, out->org_id, out->user_id, "apikey.used", out->key_name, source,
                            detail);
  return true;
}

/* SHA-256 of the request's key into hash; false when there is no bearer of
 * the key's form (then nothing is looked up). */
static bool
request_key_hash(kcps_http_req_t *req, char hash[65])
{
  const char *bearer = kcps_http_req_bearer(req);
  if (!kcps__server_api_key_form(bearer))
    return false;
  kcps_crypto_sha256_hex(bearer, strlen(bearer), hash);
  return true;
}

static void
respond_key_refused(kcps_http_req_t *req)
{
  kcps_http_req_add_header(req, "WWW-Authenticate", "Bearer error=\"invalid_token\"");
  kcps_http_respond_error(req, 401, "unauthorized", "the API key is unknown or no longer valid");
}

static void
route_external_users(kcps_server_t *server, kcps_http_req_t *req,
                     const kcps_server_session_t *session, const char *id)
{
  (void)session;
  (void)id;
  char hash[65];
  if (!request_key_hash(req, hash)) {
    respond_key_refused(req);
    return;
  }
  g_autoptr(GError) error = NULL;
  api_caller_t caller = {0};
  g_autoptr(JsonBuilder) b = json_builder_new();
  g_mutex_lock(&server->lock);
  bool ok = key_caller_locked(server, req, hash, &caller, &error);
  if (ok && !error) {
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "users");
    json_builder_begin_array(b);
    sqlite3_stmt *stmt = kcps__server_db_prepare(
        server,
        "SELECT public_id, email, name, role, active FROM users WHERE org_id = ? ORDER BY email",
        &error);
    if (stmt) {
      sqlite3_bind_int64(stmt, 1, caller.org_id);
      while (kcps__server_db_step(server, stmt, &error) == SQLITE_ROW) {
        json_builder_begin_object(b);
        kcps__server_json_string(b, "id", (const char *)sqlite3_column_text(stmt, 0));
        kcps__server_json_string(b, "email", (const char *)sqlite3_column_text(stmt, 1));
        kcps__server_json_string(b, "name", (const char *)sqlite3_column_text(stmt, 2));
        kcps__server_json_string(b, "role", (const char *)sqlite3_column_text(stmt, 3));
        kcps__server_json_bool(b, "active", sqlite3_column_int(stmt, 4) != 0);
        json_builder_end_object(b);
      }
    }
    sqlite3_finalize(stmt);
    json_builder_end_array(b);
    json_builder_end_object(b);
  }
  g_mutex_unlock(&server->lock);
  api_caller_clear(&caller);

  if (error)
    kcps__server_respond_internal(req, error);
  else if (!ok)
    respond_key_refused(req);
  else
    respond_builder(req, 200, b);
}

static void
route_external_job_log(kcps_server_t *server, kcps_http_req_t *req,
                       const kcps_server_session_t *session, const char *id)
{
  (void)session;
  (void)id;
  char hash[65];
  if (!request_key_hash(req, hash)) {
    respond_key_refused(req);
    return;
  }
  g_autoptr(GError) error = NULL;
  gint64 start = 0, end = 0, limit = 0, offset = 0;
  char month[8] = "";
  g_autoptr(GError) bad = NULL;
  bool valid = kcps__server_parse_month(kcps_http_req_query(req, "month"), kcps__server_now(),
                                        &start, &end, month, &bad) &&
               query_int(req, "limit", 1, JOB_LOG_LIMIT_MAX, JOB_LOG_LIMIT_DEFAULT, &limit, &bad) &&
               query_int(req, "offset", 0, G_MAXINT32, 0, &offset, &bad);

  api_caller_t caller = {0};
  g_autoptr(JsonBuilder) b = json_builder_new();
  g_mutex_lock(&server->lock);
  bool ok = key_caller_locked(server, req, hash, &caller, &error);
  gint64 n = 0;
  if (ok && valid && !error) {
    json_builder_begin_object(b);
    kcps__server_json_string(b, "month", month);
    json_builder_set_member_name(b, "jobs");
    json_builder_begin_array(b);
    /* Metadata only: job names and documents are the users' own (Table 2-1). */
    sqlite3_stmt *stmt = kcps__server_db_prepare(
        server,
        "SELECT l.created, d.name, u.public_id, u.email, l.pages, l.color_pages, l.duplex,"
        " l.status FROM job_logs l JOIN users u ON u.id = l.user_id"
        " JOIN devices d ON d.id = l.device_id"
        " WHERE l.org_id = ? AND l.created >= ? AND l.created < ?"
        " ORDER BY l.created, l.id LIMIT ? OFFSET ?",
        &error);
    if (stmt) {
      sqlite3_bind_int64(stmt, 1, caller.org_id);
      sqlite3_bind_int64(stmt, 2, start);
      sqlite3_bind_int64(stmt, 3, end);
      sqlite3_bind_int64(stmt, 4, limit + 1);
      sqlite3_bind_int64(stmt, 5, offset);
      while (kcps__server_db_step(server, stmt, &error) == SQLITE_ROW && n++ < limit) {
        json_builder_begin_object(b);
        add_time_col(b, "time", stmt, 0);
        kcps__server_json_string(b, "device", (const char *)sqlite3_column_text(stmt, 1));
        kcps__server_json_string(b, "executor_id", (const char *)sqlite3_column_text(stmt, 2));
        kcps__server_json_string(b, "executor_email", (const char *)sqlite3_column_text(stmt, 3));
        kcps__server_json_string(b, "type", "print");
        kcps__server_json_int(b, "pages", sqlite3_column_int64(stmt, 4));
        kcps__server_json_int(b, "color_pages", sqlite3_column_int64(stmt, 5));
        kcps__server_json_bool(b, "duplex", sqlite3_column_int(stmt, 6) != 0);
        kcps__server_json_string(b, "status", (const char *)sqlite3_column_text(stmt, 7));
        json_builder_end_object(b);
      }
    }
    sqlite3_finalize(stmt);
    json_builder_end_array(b);
    json_builder_set_member_name(b, "next_offset");
    if (n > limit)
      json_builder_add_int_value(b, offset + limit);
    else
      json_builder_add_null_value(b);
    json_builder_end_object(b);
  }
  g_mutex_unlock(&server->lock);
  api_caller_clear(&caller);

  if (error)
    kcps__server_respond_internal(req, error);
  else if (!ok)
    respond_key_refused(req);
  else if (!valid)
    kcps__server_respond_bad(req, bad);
  else
    respond_builder(req, 200, b);
}

const kcps_server_route_t kcps__server_routes_reports[] = {
    {"GET", "/api/v1/orgs/*/report", KCPS_NEED_USER, route_org_report},
    {"GET", "/api/v1/orgs/*/contracts", KCPS_NEED_USER, route_contracts},
    {"GET", "/api/v1/orgs/*/audit", KCPS_NEED_USER, route_audit},
    {"PUT", "/api/v1/users/*/api-access", KCPS_NEED_USER, route_api_access},
    {"POST", "/api/v1/api-keys", KCPS_NEED_USER, route_key_create},
    {"GET", "/api/v1/api-keys", KCPS_NEED_USER, route_key_list},
    {"DELETE", "/api/v1/api-keys/*", KCPS_NEED_USER, route_key_delete},
    {"GET", "/api/v1/external/users", KCPS_NEED_NONE, route_external_users},
    {"GET", "/api/v1/external/job-log", KCPS_NEED_NONE, route_external_job_log},
    {NULL, NULL, KCPS_NEED_NONE, NULL},
};
