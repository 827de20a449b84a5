/* Usage and quota (issue 5; white paper 2, 3, 6.1.4): one usage record for
 * every print from any route (idempotent), a monthly page quota per user
 * with an Ed25519-signed statement kcpsd can check offline, the check before
 * a release, and the month's usage report of an organization. */
#include "server-private.h"

#include "common/crypto.h"
#include "common/json-util.h"
#include "common/quota-statement.h"

#include <string.h>

#define MAX_IDEMPOTENCY_KEY 128
#define MAX_PRINTER 512
#define MAX_COPIES 9999
/* An offline record may come this late (a month of 31 days, twice) and its
 * clock may run this far ahead of the server's. */
#define USAGE_MAX_AGE (62 * 24 * 3600)
#define USAGE_MAX_SKEW 300
#define STATEMENT_TTL (24 * 3600)

/* A usage record counts pages x copies pages, all of them colour pages when
 * color is true. job_logs (MFP pulls) and usage_records meet in one view,
 * usage_counted; a record naming a job that has a completed job log is not
 * counted there (the device's log is the one count of that print). */
const char kcps__server_schema_usage[] =
    "CREATE TABLE usage_records ("
    "  id INTEGER PRIMARY KEY,"
    "  public_id TEXT NOT NULL UNIQUE,"
    "  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    "  org_id INTEGER NOT NULL REFERENCES orgs(id),"
    "  idempotency_key TEXT NOT NULL,"
    "  printer TEXT NOT NULL,"
    "  device_id INTEGER REFERENCES devices(id) ON DELETE SET NULL,"
    "  time INTEGER NOT NULL,"
    "  job_type TEXT NOT NULL CHECK (job_type IN ('print')),"
    "  pages INTEGER NOT NULL CHECK (pages >= 1),"
    "  copies INTEGER NOT NULL CHECK (copies >= 1),"
    "  color INTEGER NOT NULL,"
    "  duplex INTEGER NOT NULL,"
    "  job_id INTEGER REFERENCES jobs(id) ON DELETE SET NULL,"
    "  job_public_id TEXT,"
    "  created INTEGER NOT NULL,"
    "  UNIQUE (user_id, idempotency_key));"
    "CREATE INDEX usage_records_user_time ON usage_records(user_id, time);"
    "CREATE INDEX usage_records_org_time ON usage_records(org_id, time);"
    "CREATE INDEX usage_records_job ON usage_records(job_id);"
    "CREATE INDEX job_logs_job ON job_logs(job_id, status);"
    "CREATE VIEW usage_counted AS"
    "  SELECT l.user_id AS user_id, l.org_id AS org_id, d.name AS printer, l.created AS time,"
    "    l.pages AS pages, l.color_pages AS color_pages, l.duplex AS duplex"
    "  FROM job_logs l JOIN devices d ON d.id = l.device_id WHERE l.status = 'completed'"
    "  UNION ALL"
    "  SELECT r.user_id, r.org_id, r.printer, r.time, r.pages * r.copies,"
    "    CASE WHEN r.color <> 0 THEN r.pages * r.copies ELSE 0 END, r.duplex"
    "  FROM usage_records r WHERE r.job_id IS NULL OR NOT EXISTS ("
    "    SELECT 1 FROM job_logs l2 WHERE l2.job_id = r.job_id AND l2.status = 'completed');";

static void
respond_builder(kcps_http_req_t *req, unsigned status, JsonBuilder *b)
{
  g_autoptr(JsonNode) root = json_builder_get_root(b);
  kcps_http_respond_json(req, status, root);
}

/* Input checks ----------------------------------------------------------- */

static bool
idempotency_key_ok(const char *key)
{
  for (const char *p = key; *p; p++)
    if (!g_ascii_isalnum(*p) && *p != '-' && *p != '_' && *p != '.')
      return false;
  return true;
}

bool
kcps__server_parse_usage_time(const char *text, gint64 now, gint64 *out, GError **error)
{
  /* RFC 3339 with a zone ("Z" or an offset); nothing looser. */
  bool form = text && strlen(text) >= 20 && strlen(text) <= 35 && text[4] == '-' &&
              text[7] == '-' && (text[10] == 'T' || text[10] == 't');
  g_autoptr(GTimeZone) utc = g_time_zone_new_utc();
  g_autoptr(GDateTime) dt = form ? g_date_time_new_from_iso8601(text, utc) : NULL;
  bool zoned = form && (g_str_has_suffix(text, "Z") || g_str_has_suffix(text, "z") ||
                        strchr(text + 19, '+') || strchr(text + 19, '-'));
  if (!dt || !zoned)
    return kcps__server_set_bad(error, "field \"time\" must be an RFC 3339 time with a zone, "
                                       "e.g. 2026-11-28T10:00:00Z");
  gint64 t = g_date_time_to_unix(dt);
  if (t > now + USAGE_MAX_SKEW)
    return kcps__server_set_bad(error, "field \"time\" lies in the future (more than %d s "
                                       "ahead of the server's clock)",
                                USAGE_MAX_SKEW);
  if (t < now - USAGE_MAX_AGE)
    return kcps__server_set_bad(error, "field \"time\" is older than %d days; such records "
                                       "are no longer accepted",
                                USAGE_MAX_AGE / (24 * 3600));
  *out = t;
  return true;
}

bool
kcps__server_check_usage(JsonObject *obj, gint64 now, kcps_server_usage_req_t *out,
                         GError **error)
{
  static const char *const allowed[] = {"idempotency_key", "printer", "time",  "job_type",
                                        "pages",           "copies",  "color", "duplex",
                                        "job_id",          NULL};
  static const char *const types[] = {"print", NULL};
  const char *time_text = NULL;
  int type = 0;
  memset(out, 0, sizeof *out);
  if (!kcps__server_check_fields(obj, allowed, error) ||
      !kcps__server_field_string(obj, "idempotency_key", 1, MAX_IDEMPOTENCY_KEY,
                                 KCPS_TEXT_PLAIN, &out->key, error))
    return false;
  if (!idempotency_key_ok(out->key))
    return kcps__server_set_bad(error, "field \"idempotency_key\" may hold only letters, digits, "
                                       "'-', '_' and '.'");
  if (!kcps__server_field_string(obj, "printer", 1, MAX_PRINTER, KCPS_TEXT_PLAIN, &out->printer,
                                 error) ||
      !kcps__server_field_string(obj, "time", 1, 64, KCPS_TEXT_PLAIN, &time_text, error) ||
      !kcps__server_parse_usage_time(time_text, now, &out->time, error) ||
      !kcps__server_field_enum(obj, "job_type", false, types, 0, &type, error) ||
      !kcps__server_field_int(obj, "pages", true, 1, KCPS_SERVER_MAX_PAGES, 0, &out->pages,
                              error) ||
      !kcps__server_field_int(obj, "copies", false, 1, MAX_COPIES, 1, &out->copies, error) ||
      !kcps__server_field_bool(obj, "color", false, false, &out->color, error) ||
      !kcps__server_field_bool(obj, "duplex", false, false, &out->duplex, error) ||
      !kcps__server_field_string(obj, "job_id", 1, KCPS_SERVER_MAX_CLIENT_JOB_ID,
                                 KCPS_TEXT_PLAIN | KCPS_TEXT_OPTIONAL, &out->job_id, error))
    return false;
  out->job_type = types[type];
  return true;
}

bool
kcps__server_check_quota_check(JsonObject *obj, gint64 *pages, gint64 *copies, bool *color,
                               GError **error)
{
  static const char *const allowed[] = {"pages", "copies", "color", NULL};
  return kcps__server_check_fields(obj, allowed, error) &&
         kcps__server_field_int(obj, "pages", true, 1, KCPS_SERVER_MAX_PAGES, 0, pages, error) &&
         kcps__server_field_int(obj, "copies", false, 1, MAX_COPIES, 1, copies, error) &&
         kcps__server_field_bool(obj, "color", false, false, color, error);
}

/* Quota figures ---------------------------------------------------------- */

typedef struct {
  char *email;
  char *user_public_id;
  gint64 quota_pages;        /* -1: unlimited */
  gint64 quota_color_pages;  /* -1: unlimited */
  gint64 used_pages;
  gint64 used_color_pages;
} quota_t;

static void
quota_clear(quota_t *q)
{
  g_free(q->email);
  g_free(q->user_public_id);
}

/* What is left: -1 when unlimited. Colour pages are pages too, so colour's
 * remainder is bounded by the total's. */
static gint64
remaining_pages(const quota_t *q)
{
  return q->quota_pages < 0 ? -1 : MAX(0, q->quota_pages - q->used_pages);
}

static gint64
remaining_color(const quota_t *q)
{
  gint64 total = remaining_pages(q);
  if (q->quota_color_pages < 0)
    return total;
  gint64 color = MAX(0, q->quota_color_pages - q->used_color_pages);
  return total < 0 ? color : MIN(color, total);
}

/* The user's limits and what counts against them in [start, end). Caller
 * holds the lock. False with no error when the user does not exist. */
static bool
quota_locked(kcps_server_t *server, gint64 user_id, gint64 start, gint64 end, quota_t *out,
             GError **error)
{
  sqlite3_stmt *stmt = kcps__server_db_prepare(
      server,
      "SELECT u.email, u.public_id, coalesce(u.quota_pages, -1),"
      " coalesce(u.quota_color_pages, -1),"
      " (SELECT coalesce(sum(c.pages), 0) FROM usage_counted c"
      "   WHERE c.user_id = u.id AND c.time >= ?2 AND c.time < ?3),"
      " (SELECT coalesce(sum(c.color_pages), 0) FROM usage_counted c"
      "   WHERE c.user_id = u.id AND c.time >= ?2 AND c.time < ?3)"
      " FROM users u WHERE u.id = ?1",
      error);
  if (!stmt)
    return false;
  sqlite3_bind_int64(stmt, 1, user_id);
  sqlite3_bind_int64(stmt, 2, start);
  sqlite3_bind_int64(stmt, 3, end);
  bool found = kcps__server_db_step(server, stmt, error) == SQLITE_ROW;
  if (found) {
    out->email = kcps__server_db_dup_text(stmt, 0);
    out->user_public_id = kcps__server_db_dup_text(stmt, 1);
    out->quota_pages = sqlite3_column_int64(stmt, 2);
    out->quota_color_pages = sqlite3_column_int64(stmt, 3);
    out->used_pages = sqlite3_column_int64(stmt, 4);
    out->used_color_pages = sqlite3_column_int64(stmt, 5);
  }
  sqlite3_finalize(stmt);
  return found;
}

/* A limit or remainder member: null when unlimited. */
static void
add_limit(JsonBuilder *b, const char *name, gint64 v)
{
  json_builder_set_member_name(b, name);
  if (v < 0)
    json_builder_add_null_value(b);
  else
    json_builder_add_int_value(b, v);
}

static void
add_quota_members(JsonBuilder *b, const quota_t *q)
{
  add_limit(b, "quota_pages", q->quota_pages);
  add_limit(b, "quota_color_pages", q->quota_color_pages);
  kcps__server_json_int(b, "used_pages", q->used_pages);
  kcps__server_json_int(b, "used_color_pages", q->used_color_pages);
  add_limit(b, "remaining_pages", remaining_pages(q));
  add_limit(b, "remaining_color_pages", remaining_color(q));
}

/* Signed quota statements ----------------------------------------------- */

/* A statement (common/quota-statement.h) of q for month, signed now. */
static char *
statement_sign(kcps_server_t *server, const quota_t *q, const char *month, gint64 start,
               gint64 end, gint64 now, GError **error)
{
  g_autoptr(JsonBuilder) b = json_builder_new();
  json_builder_begin_object(b);
  kcps__server_json_int(b, "v", 1);
  kcps__server_json_string(b, "typ", "kcps-quota");
  kcps__server_json_string(b, "user", q->email);
  kcps__server_json_string(b, "user_id", q->user_public_id);
  kcps__server_json_string(b, "month", month);
  kcps__server_json_int(b, "start", start);
  kcps__server_json_int(b, "end", end);
  add_limit(b, "quota_pages", q->quota_pages);
  add_limit(b, "quota_color_pages", q->quota_color_pages);
  kcps__server_json_int(b, "used_pages", q->used_pages);
  kcps__server_json_int(b, "used_color_pages", q->used_color_pages);
  kcps__server_json_int(b, "iat", now);
  kcps__server_json_int(b, "exp", now + STATEMENT_TTL);
  json_builder_end_object(b);
  g_autoptr(JsonNode) root = json_builder_get_root(b);
  g_autofree char *payload = kcps_json_to_string(root);
  /* The server's ticket key (DATA/ticket-key.pem) is read for each signing,
   * so that no second copy of the private key lives in the server struct. */
  g_autofree char *path = g_build_filename(server->data_dir, "ticket-key.pem", NULL);
  g_autoptr(GError) local = NULL;
  char *text = kcps_quota_statement_sign(path, payload, &local);
  if (!text)
    g_set_error_literal(error, KCPS_SERVER_ERROR, KCPS_SERVER_ERROR_CRYPTO, local->message);
  return text;
}

/* The one verifier lives in common/ (kcpsd checks statements offline with it). */
bool
kcps__server_quota_statement_verify(const char *public_b64, const char *text, gint64 now,
                                    kcps_server_quota_statement_t *out, GError **error)
{
  kcps_quota_statement_t st;
  bool ok = kcps_quota_statement_verify(public_b64, text, now, &st, error);
  memset(out, 0, sizeof *out);
  g_strlcpy(out->user, st.user, sizeof out->user);
  g_strlcpy(out->month, st.month, sizeof out->month);
  out->start = st.start;
  out->end = st.end;
  out->quota_pages = st.quota_pages;
  out->quota_color_pages = st.quota_color_pages;
  out->used_pages = st.used_pages;
  out->used_color_pages = st.used_color_pages;
  out->iat = st.iat;
  out->exp = st.exp;
  return ok;
}

/* Routes ----------------------------------------------------------------- */

#define RECORD_COLUMNS                                                                             \
  "r.public_id, r.idempotency_key, r.printer, r.time, r.job_type, r.pages, r.copies, r.color,"    \
  " r.duplex, r.job_public_id, r.device_id IS NOT NULL, r.job_id IS NOT NULL"

static void
add_record(JsonBuilder *b, sqlite3_stmt *stmt)
{
  json_builder_begin_object(b);
  kcps__server_json_string(b, "id", (const char *)sqlite3_column_text(stmt, 0));
  kcps__server_json_string(b, "idempotency_key", (const char *)sqlite3_column_text(stmt, 1));
  kcps__server_json_string(b, "printer", (const char *)sqlite3_column_text(stmt, 2));
  g_autofree char *t = kcps__server_iso_time(sqlite3_column_int64(stmt, 3));
  kcps__server_json_string(b, "time", t);
  kcps__server_json_string(b, "job_type", (const char *)sqlite3_column_text(stmt, 4));
  kcps__server_json_int(b, "pages", sqlite3_column_int64(stmt, 5));
  kcps__server_json_int(b, "copies", sqlite3_column_int64(stmt, 6));
  kcps__server_json_bool(b, "color", sqlite3_column_int(stmt, 7) != 0);
  kcps__server_json_bool(b, "duplex", sqlite3_column_int(stmt, 8) != 0);
  kcps__server_json_string(b, "job_id", (const char *)sqlite3_column_text(stmt, 9));
  kcps__server_json_bool(b, "device", sqlite3_column_int(stmt, 10) != 0);
  kcps__server_json_bool(b, "job_linked", sqlite3_column_int(stmt, 11) != 0);
  json_builder_end_object(b);
}

/* The record as JSON by its database id; caller holds the lock. */
static JsonNode *
record_node_locked(kcps_server_t *server, gint64 id, GError **error)
{
  sqlite3_stmt *stmt = kcps__server_db_prepare(
      server, "SELECT " RECORD_COLUMNS " FROM usage_records r WHERE r.id = ?", error);
  if (!stmt)
    return NULL;
  sqlite3_bind_int64(stmt, 1, id);
  JsonNode *node = NULL;
  if (kcps__server_db_step(server, stmt, error) == SQLITE_ROW) {
    g_autoptr(JsonBuilder) b = json_builder_new();
    add_record(b, stmt);
    node = json_builder_get_root(b);
  }
  sqlite3_finalize(stmt);
  return node;
}

/* A record already stored under (user, key): its id, and whether it holds
 * exactly what in says. 0 when none. Caller holds the lock. */
static gint64
find_record_locked(kcps_server_t *server, gint64 user_id, const kcps_server_usage_req_t *in,
                   bool *same, GError **error)
{
  sqlite3_stmt *stmt = kcps__server_db_prepare(
      server,
      "SELECT id, printer = ?3 AND time = ?4 AND job_type = ?5 AND pages = ?6 AND copies = ?7"
      "   AND color = ?8 AND duplex = ?9 AND job_public_id IS ?10"
      " FROM usage_records WHERE user_id = ?1 AND idempotency_key = ?2",
      error);
  if (!stmt)
    return 0;
  sqlite3_bind_int64(stmt, 1, user_id);
  sqlite3_bind_text(stmt, 2, in->key, -1, SQLITE_STATIC);
  sqlite3_bind_text(stmt, 3, in->printer, -1, SQLITE_STATIC);
  sqlite3_bind_int64(stmt, 4, in->time);
  sqlite3_bind_text(stmt, 5, in->job_type, -1, SQLITE_STATIC);
  sqlite3_bind_int64(stmt, 6, in->pages);
  sqlite3_bind_int64(stmt, 7, in->copies);
  sqlite3_bind_int(stmt, 8, in->color ? 1 : 0);
  sqlite3_bind_int(stmt, 9, in->duplex ? 1 : 0);
  if (in->job_id)
    sqlite3_bind_text(stmt, 10, in->job_id, -1, SQLITE_STATIC);
  else
    sqlite3_bind_null(stmt, 10);
  gint64 id = 0;
  if (kcps__server_db_step(server, stmt, error) == SQLITE_ROW) {
    id = sqlite3_column_int64(stmt, 0);
    *same = sqlite3_column_int(stmt, 1) != 0;
  }
  sqlite3_finalize(stmt);
  return id;
}

/* One id column of a lookup by (text, int) (0 when none). Caller holds the lock. */
static gint64
lookup_id_locked(kcps_server_t *server, const char *sql, const char *text, gint64 param,
                 GError **error)
{
  sqlite3_stmt *stmt = kcps__server_db_prepare(server, sql, error);
  if (!stmt)
    return 0;
  sqlite3_bind_text(stmt, 1, text, -1, SQLITE_STATIC);
  sqlite3_bind_int64(stmt, 2, param);
  gint64 id = kcps__server_db_step(server, stmt, error) == SQLITE_ROW
                  ? sqlite3_column_int64(stmt, 0)
                  : 0;
  sqlite3_finalize(stmt);
  return id;
}

static void
route_post_usage(kcps_server_t *server, kcps_http_req_t *req,
                 const kcps_server_session_t *session, const char *id)
{
  (void)id;
  JsonObject *obj = kcps__server_req_object(req);
  if (!obj)
    return;
  g_autoptr(GError) error = NULL;
  kcps_server_usage_req_t in;
  gint64 now = kcps__server_now();
  if (!kcps__server_check_usage(obj, now, &in, &error)) {
    kcps__server_respond_bad(req, error);
    return;
  }

  unsigned status = 0;
  g_autoptr(JsonNode) node = NULL;
  g_mutex_lock(&server->lock);
  bool same = false;
  gint64 rid = find_record_locked(server, session->user_id, &in, &same, &error);
  if (!error && rid)
    status = same ? 200 : 409;

  /* The job named (its server id, or the client_job_id kcpsd registered it
   * under) is linked only when it is the caller's own; any other id is kept
   * as text and links nothing (so answers reveal no one else's jobs). */
  gint64 job = 0;
  if (!error && !status && in.job_id)
    job = lookup_id_locked(server,
                           "SELECT id FROM jobs WHERE user_id = ?2"
                           " AND (public_id = ?1 OR client_job_id = ?1)",
                           in.job_id, session->user_id, &error);
  /* A printer that is one of the organization's devices is recorded as it. */
  gint64 device = 0;
  if (!error && !status)
    device = lookup_id_locked(server, "SELECT id FROM devices WHERE name = ?1 AND org_id = ?2",
                              in.printer, session->user_org_id, &error);

  if (!error && !status) {
    g_autofree char *public_id = g_uuid_string_random();
    sqlite3_stmt *stmt = kcps__server_db_prepare(
        server,
        "INSERT INTO usage_records (public_id, user_id, org_id, idempotency_key, printer,"
        " device_id, time, job_type, pages, copies, color, duplex, job_id, job_public_id,"
        " created) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
        &error);
    if (stmt) {
      sqlite3_bind_text(stmt, 1, public_id, -1, SQLITE_STATIC);
      sqlite3_bind_int64(stmt, 2, session->user_id);
      sqlite3_bind_int64(stmt, 3, session->user_org_id);
      sqlite3_bind_text(stmt, 4, in.key, -1, SQLITE_STATIC);
      sqlite3_bind_text(stmt, 5, in.printer, -1, SQLITE_STATIC);
      if (device)
        sqlite3_bind_int64(stmt, 6, device);
      else
        sqlite3_bind_null(stmt, 6);
      sqlite3_bind_int64(stmt, 7, in.time);
      sqlite3_bind_text(stmt, 8, in.job_type, -1, SQLITE_STATIC);
      sqlite3_bind_int64(stmt, 9, in.pages);
      sqlite3_bind_int64(stmt, 10, in.copies);
      sqlite3_bind_int(stmt, 11, in.color ? 1 : 0);
      sqlite3_bind_int(stmt, 12, in.duplex ? 1 : 0);
      if (job)
        sqlite3_bind_int64(stmt, 13, job);
      else
        sqlite3_bind_null(stmt, 13);
      if (in.job_id)
        sqlite3_bind_text(stmt, 14, in.job_id, -1, SQLITE_STATIC);
      else
        sqlite3_bind_null(stmt, 14);
      sqlite3_bind_int64(stmt, 15, now);
      if (kcps__server_db_step(server, stmt, &error) == SQLITE_DONE) {
        status = 201;
        rid = sqlite3_last_insert_rowid(server->db);
      }
    }
    sqlite3_finalize(stmt);
  }
  if (!error && (status == 200 || status == 201))
    node = record_node_locked(server, rid, &error);
  g_mutex_unlock(&server->lock);

  if (error)
    kcps__server_respond_internal(req, error);
  else if (status == 409)
    kcps_http_respond_error(req, 409, "conflict",
                            "idempotency_key \"%s\" was used already for a different record",
                            in.key);
  else if (!node)
    kcps_http_respond_error(req, 500, "internal", "the usage record vanished");
  else
    kcps_http_respond_json(req, status, node);
}

static void
route_my_quota(kcps_server_t *server, kcps_http_req_t *req, const kcps_server_session_t *session,
               const char *id)
{
  (void)id;
  gint64 start, end;
  char month[8];
  if (!kcps__server_month_of_req(req, &start, &end, month))
    return;
  g_autoptr(GError) error = NULL;
  quota_t q = {0};
  gint64 now = kcps__server_now();
  g_mutex_lock(&server->lock);
  bool found = quota_locked(server, session->user_id, start, end, &q, &error);
  g_mutex_unlock(&server->lock);
  g_autofree char *statement =
      found && !error ? statement_sign(server, &q, month, start, end, now, &error) : NULL;

  if (error)
    kcps__server_respond_internal(req, error);
  else if (!found)
    kcps_http_respond_error(req, 404, "not_found", "no such user");
  else {
    g_autoptr(JsonBuilder) b = json_builder_new();
    json_builder_begin_object(b);
    kcps__server_json_string(b, "month", month);
    add_quota_members(b, &q);
    kcps__server_json_string(b, "statement", statement);
    g_autofree char *exp = kcps__server_iso_time(now + STATEMENT_TTL);
    kcps__server_json_string(b, "statement_expires", exp);
    kcps__server_json_string(b, "statement_key", server->ticket_public);
    json_builder_end_object(b);
    respond_builder(req, 200, b);
  }
  quota_clear(&q);
}

static void
route_quota_check(kcps_server_t *server, kcps_http_req_t *req,
                  const kcps_server_session_t *session, const char *id)
{
  (void)id;
  JsonObject *obj = kcps__server_req_object(req);
  if (!obj)
    return;
  g_autoptr(GError) error = NULL;
  gint64 pages = 0, copies = 1;
  bool color = false;
  if (!kcps__server_check_quota_check(obj, &pages, &copies, &color, &error)) {
    kcps__server_respond_bad(req, error);
    return;
  }
  gint64 start, end;
  char month[8];
  if (!kcps__server_parse_month(NULL, kcps__server_now(), &start, &end, month, &error)) {
    kcps__server_respond_internal(req, error);
    return;
  }
  quota_t q = {0};
  g_mutex_lock(&server->lock);
  bool found = quota_locked(server, session->user_id, start, end, &q, &error);
  g_mutex_unlock(&server->lock);
  if (error || !found) {
    if (error)
      kcps__server_respond_internal(req, error);
    else
      kcps_http_respond_error(req, 404, "not_found", "no such user");
    quota_clear(&q);
    return;
  }

  gint64 need = pages * copies;
  gint64 left = remaining_pages(&q), left_color = remaining_color(&q);
  bool over_total = left >= 0 && need > left;
  bool over_color = color && left_color >= 0 && need > left_color;
  g_autofree char *message = NULL;
  if (over_total)
    message = g_strdup_printf("quota exceeded: this job needs %" G_GINT64_FORMAT
                              " pages and %" G_GINT64_FORMAT " of your monthly %" G_GINT64_FORMAT
                              " pages are left (%s)",
                              need, left, q.quota_pages, month);
  else if (over_color)
    message = g_strdup_printf("quota exceeded: this job needs %" G_GINT64_FORMAT
                              " colour pages and %" G_GINT64_FORMAT
                              " of your monthly %" G_GINT64_FORMAT
                              " colour pages are left (%s); printing it in mono may fit",
                              need, left_color, q.quota_color_pages, month);

  g_autoptr(JsonBuilder) b = json_builder_new();
  json_builder_begin_object(b);
  if (message) {
    kcps__server_json_string(b, "error", "quota_exceeded");
    kcps__server_json_string(b, "message", message);
  }
  kcps__server_json_bool(b, "allowed", message == NULL);
  kcps__server_json_string(b, "month", month);
  kcps__server_json_int(b, "pages_needed", need);
  add_quota_members(b, &q);
  json_builder_end_object(b);
  respond_builder(req, message ? 409 : 200, b);
  quota_clear(&q);
}

/* Report of an organization's month ------------------------------------- */

#define REPORT_COLUMNS                                                                             \
  " count(*), coalesce(sum(c.pages), 0), coalesce(sum(c.color_pages), 0),"                        \
  " coalesce(sum(c.duplex <> 0), 0)"
#define REPORT_WHERE " WHERE c.org_id = ?1 AND c.time >= ?2 AND c.time < ?3"

static void
add_report_figures(JsonBuilder *b, sqlite3_stmt *stmt, int col)
{
  kcps__server_json_int(b, "jobs", sqlite3_column_int64(stmt, col));
  kcps__server_json_int(b, "pages", sqlite3_column_int64(stmt, col + 1));
  kcps__server_json_int(b, "color_pages", sqlite3_column_int64(stmt, col + 2));
  kcps__server_json_int(b, "duplex_jobs", sqlite3_column_int64(stmt, col + 3));
}

static void
route_org_usage(kcps_server_t *server, kcps_http_req_t *req, const kcps_server_session_t *session,
                const char *id)
{
  gint64 start, end;
  char month[8];
  /* Reports (the customer admin) or quota data (the print manager, who
   * sets quotas and so sees what counts against them): Table 2-1. */
  g_mutex_lock(&server->lock);
  gint64 org = kcps__server_org_id_locked(server, id);
  bool visible = org > 0 && kcps__server_org_within_locked(server, session->user_org_id, org);
  bool may = visible &&
             (kcps__server_may_locked(server, session, KCPS_DATA_REPORTS, org, false) ||
              kcps__server_may_locked(server, session, KCPS_DATA_USER_QUOTA, org, false));
  g_mutex_unlock(&server->lock);
  if (!visible) {
    kcps_http_respond_error(req, 404, "not_found", "no such organization");
    return;
  }
  if (!may) {
    kcps_http_respond_error(req, 403, "forbidden", "your role may not see this here");
    return;
  }
  if (!kcps__server_month_of_req(req, &start, &end, month))
    return;

  static const char *const user_names[] = {"id", "email", "name", "#quota_pages",
                                           "#quota_color_pages"};
  static const char *const printer_names[] = {"printer"};
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonBuilder) b = json_builder_new();
  json_builder_begin_object(b);
  kcps__server_json_string(b, "org", id);
  kcps__server_json_string(b, "month", month);
  g_mutex_lock(&server->lock);
  kcps__server_report_totals_locked(server, b,
                                    "SELECT" REPORT_COLUMNS " FROM usage_counted c" REPORT_WHERE,
                                    org, start, end, add_report_figures, &error);
  if (!error)
    kcps__server_report_rows_locked(server, b, "users",
                           "SELECT u.public_id, u.email, u.name, coalesce(u.quota_pages, -1),"
                           " coalesce(u.quota_color_pages, -1)," REPORT_COLUMNS
                           " FROM usage_counted c JOIN users u ON u.id = c.user_id" REPORT_WHERE
                           " GROUP BY c.user_id ORDER BY u.email",
                           user_names, 5, org, start, end, add_report_figures, &error);
  if (!error)
    kcps__server_report_rows_locked(server, b, "printers",
                           "SELECT c.printer," REPORT_COLUMNS
                           " FROM usage_counted c" REPORT_WHERE
                           " GROUP BY c.printer ORDER BY c.printer",
                           printer_names, 1, org, start, end, add_report_figures, &error);
  /* Every group of the organization (server-groups.c), with what its
   * present members printed that month: each record once per group, the
   * same record in every group its user is in (groups may overlap). */
  static const char *const group_names[] = {"id", "name", "#members"};
  if (!error)
    kcps__server_report_rows_locked(server, b, "groups",
                           "SELECT g.public_id, g.name,"
                           " (SELECT count(*) FROM group_members m2 WHERE m2.group_id = g.id),"
                           " count(c.user_id), coalesce(sum(c.pages), 0),"
                           " coalesce(sum(c.color_pages), 0), coalesce(sum(c.duplex <> 0), 0)"
                           " FROM user_groups g LEFT JOIN group_members m ON m.group_id = g.id"
                           " LEFT JOIN usage_counted c ON c.user_id = m.user_id"
                           "  AND c.org_id = g.org_id AND c.time >= ?2 AND c.time < ?3"
                           " WHERE g.org_id = ?1 GROUP BY g.id ORDER BY g.name, g.id",
                           group_names, 3, org, start, end, add_report_figures, &error);
  g_mutex_unlock(&server->lock);
  json_builder_end_object(b);
  if (error)
    kcps__server_respond_internal(req, error);
  else
    respond_builder(req, 200, b);
}

const kcps_server_route_t kcps__server_routes_usage[] = {
    {"POST", "/api/v1/usage", KCPS_NEED_USER, route_post_usage},
    {"GET", "/api/v1/me/quota", KCPS_NEED_USER, route_my_quota},
    {"POST", "/api/v1/me/quota/check", KCPS_NEED_USER, route_quota_check},
    {"GET", "/api/v1/orgs/*/usage", KCPS_NEED_USER, route_org_usage},
    /* User groups (server-groups.c), the report's "groups". */
    {"GET", "/api/v1/orgs/*/groups", KCPS_NEED_USER, kcps__server_route_list_groups},
    {"POST", "/api/v1/orgs/*/groups", KCPS_NEED_USER, kcps__server_route_create_group},
    {"GET", "/api/v1/groups/*", KCPS_NEED_USER, kcps__server_route_get_group},
    {"PATCH", "/api/v1/groups/*", KCPS_NEED_USER, kcps__server_route_rename_group},
    {"DELETE", "/api/v1/groups/*", KCPS_NEED_USER, kcps__server_route_delete_group},
    {"GET", "/api/v1/groups/*/members", KCPS_NEED_USER, kcps__server_route_list_members},
    {"POST", "/api/v1/groups/*/members", KCPS_NEED_USER, kcps__server_route_add_member},
    {"DELETE", "/api/v1/groups/*/members/*", KCPS_NEED_USER, kcps__server_route_remove_member},
    {NULL, NULL, KCPS_NEED_NONE, NULL},
};
