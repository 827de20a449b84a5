/* kcps-server reports: an organization's usage report, contract reports
 * going upward anonymized (white paper section 3, its Sales B / Customer C
 * and D example as written), the external admin API with its keys, and
 * reading the audit log. */
#include "server-fixture.h"

#include "common/crypto.h"

#include <string.h>

#define PW "Aa1!report-tests"

/* Test data ------------------------------------------------------------- */

static void
db_exec(const char *sql)
{
  g_autoptr(GError) error = NULL;
  g_mutex_lock(&sfx.server->lock);
  bool ok = kcps__server_db_exec(sfx.server, sql, &error);
  g_mutex_unlock(&sfx.server->lock);
  ck_assert_msg(ok, "%s: %s", sql, error ? error->message : "?");
}

/* The first column of the first row of sql with one text parameter (or
 * none), as an integer; -1 when no row. */
static gint64
db_int(const char *sql, const char *param)
{
  g_mutex_lock(&sfx.server->lock);
  sqlite3_stmt *stmt = kcps__server_db_prepare(sfx.server, sql, NULL);
  gint64 v = -1;
  if (stmt) {
    if (param)
      sqlite3_bind_text(stmt, 1, param, -1, SQLITE_STATIC);
    if (kcps__server_db_step(sfx.server, stmt, NULL) == SQLITE_ROW)
      v = sqlite3_column_int64(stmt, 0);
  }
  sqlite3_finalize(stmt);
  g_mutex_unlock(&sfx.server->lock);
  ck_assert_msg(stmt != NULL, "%s does not prepare", sql);
  return v;
}

/* Every text of every row of a table, one string (to look for leaks). */
static char *
db_table_text(const char *table)
{
  g_autofree char *sql = g_strdup_printf("SELECT * FROM %s", table);
  GString *all = g_string_new(NULL);
  g_mutex_lock(&sfx.server->lock);
  sqlite3_stmt *stmt = kcps__server_db_prepare(sfx.server, sql, NULL);
  while (stmt && kcps__server_db_step(sfx.server, stmt, NULL) == SQLITE_ROW)
    for (int i = 0; i < sqlite3_column_count(stmt); i++) {
      const unsigned char *t = sqlite3_column_text(stmt, i);
      g_string_append_printf(all, "%s|", t ? (const char *)t : "");
    }
  sqlite3_finalize(stmt);
  g_mutex_unlock(&sfx.server->lock);
  return g_string_free(all, FALSE);
}

static gint64
add_device(const char *org, const char *name)
{
  gint64 org_id = sfx_org_id(org);
  ck_assert_msg(org_id > 0, "no organization %s", org);
  g_mutex_lock(&sfx.server->lock);
  sqlite3_stmt *stmt = kcps__server_db_prepare(
      sfx.server, "INSERT INTO devices (org_id, name, secret_hash, created) VALUES (?, ?, ?, ?)",
      NULL);
  gint64 id = 0;
  if (stmt) {
    sqlite3_bind_int64(stmt, 1, org_id);
    sqlite3_bind_text(stmt, 2, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 3, "0000000000000000000000000000000000000000000000000000000000000000",
                      -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 4, kcps__server_now());
    if (kcps__server_db_step(sfx.server, stmt, NULL) == SQLITE_DONE)
      id = sqlite3_last_insert_rowid(sfx.server->db);
  }
  sqlite3_finalize(stmt);
  g_mutex_unlock(&sfx.server->lock);
  ck_assert_msg(id > 0, "add device %s failed", name);
  return id;
}

static gint64
user_id(const char *email)
{
  return db_int("SELECT id FROM users WHERE email = ?", email);
}

static char *
user_public_id(const char *email)
{
  g_autofree char *sql = NULL;
  g_mutex_lock(&sfx.server->lock);
  sqlite3_stmt *stmt =
      kcps__server_db_prepare(sfx.server, "SELECT public_id FROM users WHERE email = ?", NULL);
  char *id = NULL;
  if (stmt) {
    sqlite3_bind_text(stmt, 1, email, -1, SQLITE_STATIC);
    if (kcps__server_db_step(sfx.server, stmt, NULL) == SQLITE_ROW)
      id = kcps__server_db_dup_text(stmt, 0);
  }
  sqlite3_finalize(stmt);
  g_mutex_unlock(&sfx.server->lock);
  ck_assert_msg(id != NULL, "no user %s", email);
  return id;
}

static gint64
device_id(const char *name)
{
  return db_int("SELECT id FROM devices WHERE name = ?", name);
}

/* A printed job of user at device (the device's organization), logged at
 * time t. */
static void
add_log(const char *email, const char *device, gint64 pages, gint64 color, bool duplex,
        const char *status, gint64 t)
{
  static int seq;
  gint64 user = user_id(email), dev = device_id(device);
  ck_assert_msg(user > 0 && dev > 0, "add_log: no user %s or device %s", email, device);
  gint64 org = db_int("SELECT org_id FROM devices WHERE name = ?", device);
  g_autofree char *public_id = g_uuid_string_random();
  g_autofree char *cjob = g_strdup_printf("cjob-%d", ++seq);
  g_autoptr(GError) error = NULL;
  g_mutex_lock(&sfx.server->lock);
  sqlite3_stmt *stmt = kcps__server_db_prepare(
      sfx.server,
      "INSERT INTO jobs (public_id, user_id, org_id, client_job_id, name, pages, size, sha256,"
      " state, created, updated) VALUES (?, ?, ?, ?, 'secret-document.pdf', ?, 100,"
      " '0000000000000000000000000000000000000000000000000000000000000000', 'printed', ?, ?)",
      &error);
  gint64 job = 0;
  if (stmt) {
    sqlite3_bind_text(stmt, 1, public_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 2, user);
    sqlite3_bind_int64(stmt, 3, org);
    sqlite3_bind_text(stmt, 4, cjob, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 5, pages > 0 ? pages : 1);
    sqlite3_bind_int64(stmt, 6, t);
    sqlite3_bind_int64(stmt, 7, t);
    if (kcps__server_db_step(sfx.server, stmt, &error) == SQLITE_DONE)
      job = sqlite3_last_insert_rowid(sfx.server->db);
  }
  sqlite3_finalize(stmt);
  stmt = job ? kcps__server_db_prepare(
                   sfx.server,
                   "INSERT INTO job_logs (job_id, device_id, user_id, org_id, pages, color_pages,"
                   " duplex, status, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   &error)
             : NULL;
  bool ok = false;
  if (stmt) {
    sqlite3_bind_int64(stmt, 1, job);
    sqlite3_bind_int64(stmt, 2, dev);
    sqlite3_bind_int64(stmt, 3, user);
    sqlite3_bind_int64(stmt, 4, org);
    sqlite3_bind_int64(stmt, 5, pages);
    sqlite3_bind_int64(stmt, 6, color);
    sqlite3_bind_int(stmt, 7, duplex ? 1 : 0);
    sqlite3_bind_text(stmt, 8, status, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 9, t);
    ok = kcps__server_db_step(sfx.server, stmt, &error) == SQLITE_DONE;
  }
  sqlite3_finalize(stmt);
  g_mutex_unlock(&sfx.server->lock);
  ck_assert_msg(ok, "add_log: %s", error ? error->message : "?");
}

/* The first second of this UTC month, and its "YYYY-MM". */
static gint64
month_start(char out[8])
{
  g_autoptr(GDateTime) now = g_date_time_new_from_unix_utc(kcps__server_now());
  g_autoptr(GDateTime) first =
      g_date_time_new_utc(g_date_time_get_year(now), g_date_time_get_month(now), 1, 0, 0, 0);
  if (out)
    g_snprintf(out, 8, "%04d-%02d", g_date_time_get_year(now), g_date_time_get_month(now));
  return g_date_time_to_unix(first);
}

/* JSON helpers ----------------------------------------------------------- */

static char *
to_text(JsonNode *node)
{
  return node ? json_to_string(node, FALSE) : g_strdup("");
}

/* The element of array whose member name equals value, or NULL. */
static JsonNode *
find_by(JsonArray *array, const char *name, const char *value)
{
  for (guint i = 0; array && i < json_array_get_length(array); i++) {
    JsonNode *el = json_array_get_element(array, i);
    if (g_strcmp0(sfx_str(el, name), value) == 0)
      return el;
  }
  return NULL;
}

static void
expect_int(JsonNode *node, const char *name, gint64 want, const char *where)
{
  gint64 got = sfx_int(node, name);
  ck_assert_msg(got == want, "%s.%s: got %" G_GINT64_FORMAT ", expected %" G_GINT64_FORMAT, where,
                name, got, want);
}

static void
expect_status(long got, long want, JsonNode *answer, const char *what)
{
  const char *msg = sfx_str(answer, "message");
  ck_assert_msg(got == want, "%s: got %ld (%s), expected %ld", what, got, msg ? msg : "-", want);
}

static void
expect_absent(const char *text, const char *needle, const char *what)
{
  ck_assert_msg(!strstr(text, needle), "%s must not contain \"%s\": %s", what, needle, text);
}

/* GET path with token; answers the status and *out. */
static long
get(const char *path, const char *token, JsonNode **out)
{
  return sfx_call("GET", path, token, NULL, out);
}

/* Usage report ------------------------------------------------------------ */

START_TEST(test_org_report)
{
  char month[8];
  gint64 t0 = month_start(month);
  add_device("Customer A", "MFP-2");
  add_log("alice@a.test", "MFP-1", 10, 4, true, "completed", t0 + 3600);
  add_log("alice@a.test", "MFP-2", 3, 0, false, "completed", t0 + 7200);
  add_log("alice@a.test", "MFP-2", 5, 0, false, "failed", t0 + 7300);
  add_log("admin@a.test", "MFP-1", 2, 2, false, "completed", t0 + 7400);
  /* Last month: not in this month's report. */
  add_log("alice@a.test", "MFP-1", 100, 0, false, "completed", t0 - 10);

  g_autofree char *org = sfx_org_public_id("Customer A");
  g_autofree char *admin = sfx_login("admin@a.test", sfx.admin_pw);
  g_autofree char *path = g_strdup_printf("/api/v1/orgs/%s/report?month=%s", org, month);
  g_autoptr(JsonNode) r = NULL;
  expect_status(get(path, admin, &r), 200, r, "admin's report");
  ck_assert_str_eq(sfx_str(r, "month"), month);
  JsonNode *totals = sfx_member(r, "totals");
  expect_int(totals, "jobs", 3, "totals");
  expect_int(totals, "pages", 15, "totals");
  expect_int(totals, "color_pages", 6, "totals");
  expect_int(totals, "duplex_jobs", 1, "totals");
  expect_int(totals, "failed_jobs", 1, "totals");

  JsonNode *alice = find_by(sfx_array(r, "users"), "email", "alice@a.test");
  JsonNode *adm = find_by(sfx_array(r, "users"), "email", "admin@a.test");
  ck_assert_msg(alice && adm, "users of the report: both alice and admin expected");
  g_autofree char *alice_pub = user_public_id("alice@a.test");
  ck_assert_str_eq(sfx_str(alice, "id"), alice_pub);
  expect_int(alice, "jobs", 2, "alice");
  expect_int(alice, "pages", 13, "alice");
  expect_int(alice, "failed_jobs", 1, "alice");
  expect_int(adm, "jobs", 1, "admin");
  expect_int(adm, "pages", 2, "admin");

  JsonNode *m1 = find_by(sfx_array(r, "devices"), "name", "MFP-1");
  JsonNode *m2 = find_by(sfx_array(r, "devices"), "name", "MFP-2");
  ck_assert_msg(m1 && m2, "devices of the report: MFP-1 and MFP-2 expected");
  expect_int(m1, "jobs", 2, "MFP-1");
  expect_int(m1, "pages", 12, "MFP-1");
  expect_int(m2, "jobs", 1, "MFP-2");
  expect_int(m2, "pages", 3, "MFP-2");
  /* Document names are the users' own data, never in a report. */
  g_autofree char *text = to_text(r);
  expect_absent(text, "secret-document", "the report");

  /* The previous month holds only the old job. */
  g_autoptr(GDateTime) prev = g_date_time_new_from_unix_utc(t0 - 10);
  g_autofree char *pm = g_date_time_format(prev, "%Y-%m");
  g_autofree char *ppath = g_strdup_printf("/api/v1/orgs/%s/report?month=%s", org, pm);
  g_autoptr(JsonNode) p = NULL;
  expect_status(get(ppath, admin, &p), 200, p, "last month's report");
  expect_int(sfx_member(p, "totals"), "pages", 100, "last month");

  /* Without month: the current one. */
  g_autofree char *dpath = g_strdup_printf("/api/v1/orgs/%s/report", org);
  g_autoptr(JsonNode) d = NULL;
  expect_status(get(dpath, admin, &d), 200, d, "report without month");
  ck_assert_str_eq(sfx_str(d, "month"), month);

  /* A month from another year with no logs: zeros, empty lists. */
  g_autofree char *epath = g_strdup_printf("/api/v1/orgs/%s/report?month=1999-02", org);
  g_autoptr(JsonNode) e = NULL;
  expect_status(get(epath, admin, &e), 200, e, "empty month");
  expect_int(sfx_member(e, "totals"), "jobs", 0, "empty month");
  ck_assert_uint_eq(json_array_get_length(sfx_array(e, "users")), 0);
}
END_TEST

START_TEST(test_org_report_bad_month)
{
  g_autofree char *org = sfx_org_public_id("Customer A");
  g_autofree char *admin = sfx_login("admin@a.test", sfx.admin_pw);
  static const char *const bad[] = {"2026-13", "2026-00", "26-01",    "2026-1",     "abcd-ef", "",
                                    "2026/01", "1969-12", "2026-011", "%2B2026-01", "2026-1a"};
  for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
    g_autofree char *path = g_strdup_printf("/api/v1/orgs/%s/report?month=%s", org, bad[i]);
    g_autoptr(JsonNode) r = NULL;
    long st = get(path, admin, &r);
    ck_assert_msg(st == 400, "month \"%s\": got %ld, expected 400", bad[i], st);
    sfx_expect_error(st, r, 400, "bad_request", "\"month\"");
    g_autofree char *cpath = g_strdup_printf("/api/v1/orgs/%s/contracts?month=%s", org, bad[i]);
    g_autoptr(JsonNode) c = NULL;
    long cst = get(cpath, admin, &c);
    sfx_expect_error(cst, c, 400, "bad_request", "\"month\"");
  }
}
END_TEST

START_TEST(test_org_report_access)
{
  sfx_add_user("Sales A", "pa@sales-a.test", "provider_admin", PW);
  sfx_add_user("Sales A", "ps@sales-a.test", "provider_support", PW);
  sfx_add_user("Customer A", "pm@a.test", "print_manager", PW);
  sfx_add_user("Customer A", "guest@a.test", "guest_user", PW);
  sfx_add_org("Sales A", "Customer Z", "customer");
  sfx_add_user("Customer Z", "admin@z.test", "customer_admin", PW);

  g_autofree char *org = sfx_org_public_id("Customer A");
  g_autofree char *path = g_strdup_printf("/api/v1/orgs/%s/report", org);
  struct {
    const char *email;
    const char *password;
    long want;
  } cases[] = {
      {"admin@a.test", sfx.admin_pw, 200}, /* customer admin of that org */
      {"alice@a.test", sfx.alice_pw, 403}, /* customer user */
      {"pm@a.test", PW, 403},              /* print manager */
      {"guest@a.test", PW, 403},           /* guest */
      {"pa@sales-a.test", PW, 403},        /* providers never see reports */
      {"ps@sales-a.test", PW, 403},
      {"admin@z.test", PW, 404}, /* another customer: looks absent */
  };
  for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
    g_autofree char *token = sfx_login(cases[i].email, cases[i].password);
    g_autoptr(JsonNode) r = NULL;
    long st = get(path, token, &r);
    ck_assert_msg(st == cases[i].want, "%s: got %ld, expected %ld", cases[i].email, st,
                  cases[i].want);
  }
  g_autoptr(JsonNode) r = NULL;
  ck_assert_int_eq(get(path, NULL, &r), 401);
  /* A device session is not a user. */
  g_autofree char *device = sfx_device_login();
  g_autoptr(JsonNode) d = NULL;
  ck_assert_int_eq(get(path, device, &d), 403);
  /* An unknown organization. */
  g_autofree char *admin = sfx_login("admin@a.test", sfx.admin_pw);
  g_autoptr(JsonNode) u = NULL;
  ck_assert_int_eq(get("/api/v1/orgs/00000000-0000-4000-8000-000000000000/report", admin, &u), 404);
}
END_TEST

/* Contract reports: section 3 as written -------------------------------- */

/* RHQ → Sales A → Customer A (demo), and RHQ → Sales B → (Customer B;
 * Dealer A → Customer C, Customer D), each with users, devices, logs. */
static void
build_section3(gint64 t)
{
  sfx_add_org("RHQ", "Sales B", "provider");
  sfx_add_org("Sales B", "Customer B", "customer");
  sfx_add_org("Sales B", "Dealer A", "provider");
  sfx_add_org("Dealer A", "Customer C", "customer");
  sfx_add_org("Dealer A", "Customer D", "customer");

  sfx_add_user("RHQ", "admin@rhq.test", "provider_admin", PW);
  sfx_add_user("Sales B", "admin@sales-b.test", "provider_admin", PW);
  sfx_add_user("Dealer A", "admin@dealer-a.test", "provider_admin", PW);
  sfx_add_user("Customer B", "admin@b.test", "customer_admin", PW);
  sfx_add_user("Customer B", "u1@b.test", "customer_user", PW);
  sfx_add_user("Customer C", "admin@c.test", "customer_admin", PW);
  sfx_add_user("Customer C", "u1@c.test", "customer_user", PW);
  sfx_add_user("Customer C", "u2@c.test", "customer_user", PW);
  sfx_add_user("Customer D", "admin@d.test", "customer_admin", PW);

  add_device("Customer B", "MFP-B1");
  add_device("Customer C", "MFP-C1");
  add_device("Customer C", "MFP-C2");
  add_device("Customer D", "MFP-D1");

  /* Customer B: 3 jobs, 10 pages; C: 2 jobs, 7 pages; D: 1 job, 5 pages;
   * A: 1 job, 4 pages. A failed job counts nowhere. */
  add_log("u1@b.test", "MFP-B1", 2, 1, false, "completed", t);
  add_log("u1@b.test", "MFP-B1", 3, 0, false, "completed", t);
  add_log("admin@b.test", "MFP-B1", 5, 0, true, "completed", t);
  add_log("u1@c.test", "MFP-C1", 4, 2, false, "completed", t);
  add_log("u2@c.test", "MFP-C2", 3, 0, false, "completed", t);
  add_log("u2@c.test", "MFP-C2", 9, 0, false, "failed", t);
  add_log("admin@d.test", "MFP-D1", 5, 5, false, "completed", t);
  add_log("alice@a.test", "MFP-1", 4, 0, false, "completed", t);
}

static void
expect_figures(JsonNode *node, const char *where, gint64 orgs, gint64 users, gint64 devices,
               gint64 jobs, gint64 pages)
{
  ck_assert_msg(node != NULL, "%s: missing", where);
  if (orgs >= 0)
    expect_int(node, "organizations", orgs, where);
  expect_int(node, "users", users, where);
  expect_int(node, "devices", devices, where);
  expect_int(node, "jobs", jobs, where);
  expect_int(node, "pages", pages, where);
}

/* The contracts answer for org as seen by token (expects 200). */
static JsonNode *
contracts(const char *org, const char *token, const char *month)
{
  g_autofree char *id = sfx_org_public_id(org);
  g_autofree char *path = g_strdup_printf("/api/v1/orgs/%s/contracts?month=%s", id, month);
  JsonNode *r = NULL;
  long st = get(path, token, &r);
  expect_status(st, 200, r, org);
  return r;
}

/* Neither the name nor the public id of any of orgs is in text. */
static void
expect_anonymous(const char *text, const char *const *orgs, const char *what)
{
  for (size_t i = 0; orgs[i]; i++) {
    g_autofree char *id = sfx_org_public_id(orgs[i]);
    expect_absent(text, orgs[i], what);
    expect_absent(text, id, what);
  }
}

/* Active users and devices of the organization named (the demo's own
 * organizations hold what the demo made). */
static gint64
org_users(const char *org)
{
  return db_int("SELECT count(*) FROM users u JOIN orgs o ON o.id = u.org_id"
                " WHERE o.name = ? AND u.active = 1",
                org);
}

static gint64
org_devices(const char *org)
{
  return db_int("SELECT count(*) FROM devices d JOIN orgs o ON o.id = d.org_id"
                " WHERE o.name = ? AND d.active = 1",
                org);
}

START_TEST(test_contracts_section3)
{
  char month[8];
  gint64 t = month_start(month) + 60;
  build_section3(t);
  gint64 rhq_users = org_users("RHQ"), sa_users = org_users("Sales A");
  gint64 ca_users = org_users("Customer A"), ca_devices = org_devices("Customer A");
  ck_assert_int_eq(org_devices("RHQ") + org_devices("Sales A"), 0);

  /* Sales B: Customer B by name, C and D only as one aggregate. */
  g_autofree char *salesb = sfx_login("admin@sales-b.test", PW);
  g_autoptr(JsonNode) sb = contracts("Sales B", salesb, month);
  expect_figures(sfx_member(sb, "org"), "Sales B own", -1, 1, 0, 0, 0);
  JsonArray *kids = sfx_array(sb, "children");
  ck_assert_msg(kids && json_array_get_length(kids) == 2, "Sales B: 2 children expected");
  JsonNode *cb = find_by(kids, "name", "Customer B");
  JsonNode *da = find_by(kids, "name", "Dealer A");
  g_autofree char *cb_id = sfx_org_public_id("Customer B");
  ck_assert_str_eq(sfx_str(cb, "id"), cb_id);
  ck_assert_str_eq(sfx_str(cb, "type"), "customer");
  expect_figures(cb, "Sales B: Customer B", -1, 2, 1, 3, 10);
  expect_figures(sfx_member(cb, "below"), "Sales B: Customer B below", 0, 0, 0, 0, 0);
  expect_figures(da, "Sales B: Dealer A", -1, 1, 0, 0, 0);
  /* C + D: 2 organizations, 4 users, 3 devices, 3 jobs, 12 pages. */
  expect_figures(sfx_member(da, "below"), "Sales B: Dealer A below", 2, 4, 3, 3, 12);
  expect_figures(sfx_member(sb, "below"), "Sales B below", 2, 4, 3, 3, 12);
  g_autofree char *sb_text = to_text(sb);
  static const char *const hidden_from_sb[] = {"Customer C", "Customer D", NULL};
  expect_anonymous(sb_text, hidden_from_sb, "Sales B's contract report");
  expect_absent(sb_text, "c.test", "Sales B's contract report");
  expect_absent(sb_text, "MFP-C", "Sales B's contract report");

  /* Dealer A: C and D one by one. */
  g_autofree char *dealer = sfx_login("admin@dealer-a.test", PW);
  g_autoptr(JsonNode) dr = contracts("Dealer A", dealer, month);
  JsonArray *dk = sfx_array(dr, "children");
  ck_assert_msg(dk && json_array_get_length(dk) == 2, "Dealer A: 2 children expected");
  expect_figures(find_by(dk, "name", "Customer C"), "Dealer A: Customer C", -1, 3, 2, 2, 7);
  expect_figures(find_by(dk, "name", "Customer D"), "Dealer A: Customer D", -1, 1, 1, 1, 5);
  expect_figures(sfx_member(dr, "below"), "Dealer A below", 0, 0, 0, 0, 0);

  /* RHQ: Sales A and Sales B by name; B, C, D (and Dealer A) only summed. */
  g_autofree char *rhq = sfx_login("admin@rhq.test", PW);
  g_autoptr(JsonNode) rr = contracts("RHQ", rhq, month);
  expect_figures(sfx_member(rr, "org"), "RHQ own", -1, rhq_users, 0, 0, 0);
  JsonArray *rk = sfx_array(rr, "children");
  ck_assert_msg(rk && json_array_get_length(rk) == 2, "RHQ: 2 children expected");
  JsonNode *sa = find_by(rk, "name", "Sales A");
  JsonNode *sbn = find_by(rk, "name", "Sales B");
  expect_figures(sa, "RHQ: Sales A", -1, sa_users, 0, 0, 0);
  expect_figures(sfx_member(sa, "below"), "RHQ: Sales A below", 1, ca_users, ca_devices, 1, 4);
  expect_figures(sbn, "RHQ: Sales B", -1, 1, 0, 0, 0);
  /* Customer B + Dealer A + C + D: 4 orgs, 2+1+3+1 users, 1+0+2+1 devices,
   * 3+0+2+1 jobs, 10+0+7+5 pages. */
  expect_figures(sfx_member(sbn, "below"), "RHQ: Sales B below", 4, 7, 4, 6, 22);
  expect_figures(sfx_member(rr, "below"), "RHQ below", 5, 7 + ca_users, 4 + ca_devices, 7, 26);
  g_autofree char *rr_text = to_text(rr);
  static const char *const hidden_from_rhq[] = {"Customer A", "Customer B", "Customer C",
                                                "Customer D", "Dealer A",   NULL};
  expect_anonymous(rr_text, hidden_from_rhq, "RHQ's contract report");

  /* RHQ asking for its child Sales B: Sales B by name, the rest summed. */
  g_autoptr(JsonNode) rsb = contracts("Sales B", rhq, month);
  ck_assert_str_eq(sfx_str(sfx_member(rsb, "org"), "name"), "Sales B");
  ck_assert_uint_eq(json_array_get_length(sfx_array(rsb, "children")), 0);
  expect_figures(sfx_member(rsb, "below"), "RHQ on Sales B below", 4, 7, 4, 6, 22);
  g_autofree char *rsb_text = to_text(rsb);
  static const char *const hidden_below_sb[] = {"Customer B", "Customer C", "Customer D",
                                                "Dealer A", NULL};
  expect_anonymous(rsb_text, hidden_below_sb, "RHQ's report on Sales B");

  /* Sales B asking for Dealer A: same rule one level down. */
  g_autoptr(JsonNode) sbd = contracts("Dealer A", salesb, month);
  expect_figures(sfx_member(sbd, "below"), "Sales B on Dealer A below", 2, 4, 3, 3, 12);
  g_autofree char *sbd_text = to_text(sbd);
  expect_anonymous(sbd_text, hidden_from_sb, "Sales B's report on Dealer A");

  /* Further down than a direct child: refused, never one by one. */
  struct {
    const char *org;
    const char *token;
  } deep[] = {{"Dealer A", rhq},
              {"Customer C", rhq},
              {"Customer B", rhq},
              {"Customer C", salesb},
              {"Customer D", salesb}};
  for (size_t i = 0; i < G_N_ELEMENTS(deep); i++) {
    g_autofree char *id = sfx_org_public_id(deep[i].org);
    g_autofree char *path = g_strdup_printf("/api/v1/orgs/%s/contracts", id);
    g_autoptr(JsonNode) r = NULL;
    long st = get(path, deep[i].token, &r);
    ck_assert_msg(st == 403, "contracts of %s from above its parent: got %ld, expected 403",
                  deep[i].org, st);
    g_autofree char *text = to_text(r);
    expect_absent(text, deep[i].org, "the refusal");
  }

  /* A customer admin: her own figures, nothing else; a sibling looks absent. */
  g_autofree char *cadmin = sfx_login("admin@c.test", PW);
  g_autoptr(JsonNode) cr = contracts("Customer C", cadmin, month);
  expect_figures(sfx_member(cr, "org"), "Customer C own", -1, 3, 2, 2, 7);
  ck_assert_uint_eq(json_array_get_length(sfx_array(cr, "children")), 0);
  g_autofree char *did = sfx_org_public_id("Customer D");
  g_autofree char *dpath = g_strdup_printf("/api/v1/orgs/%s/contracts", did);
  g_autoptr(JsonNode) dd = NULL;
  ck_assert_int_eq(get(dpath, cadmin, &dd), 404);
  /* Dealer A cannot look up to Sales B. */
  g_autofree char *sbid = sfx_org_public_id("Sales B");
  g_autofree char *upath = g_strdup_printf("/api/v1/orgs/%s/contracts", sbid);
  g_autoptr(JsonNode) up = NULL;
  ck_assert_int_eq(get(upath, dealer, &up), 404);
  /* A customer user: no contract reports. */
  g_autofree char *cu = sfx_login("u1@c.test", PW);
  g_autofree char *cid = sfx_org_public_id("Customer C");
  g_autofree char *cpath = g_strdup_printf("/api/v1/orgs/%s/contracts", cid);
  g_autoptr(JsonNode) cur = NULL;
  ck_assert_int_eq(get(cpath, cu, &cur), 403);
  g_autoptr(JsonNode) none = NULL;
  ck_assert_int_eq(get(cpath, NULL, &none), 401);

  /* Another month: the same tree, no jobs. */
  g_autoptr(JsonNode) old = contracts("RHQ", rhq, "2001-01");
  expect_figures(sfx_member(old, "below"), "RHQ below in 2001", 5, 7 + ca_users, 4 + ca_devices, 0,
                 0);
}
END_TEST

/* External admin API ----------------------------------------------------- */

static long
put_access(const char *token, const char *user_public, const char *body, JsonNode **out)
{
  g_autofree char *path = g_strdup_printf("/api/v1/users/%s/api-access", user_public);
  return sfx_call_raw("PUT", path, token, body, -1, NULL, NULL, out);
}

static gint64
granted(const char *email)
{
  return db_int("SELECT api_granted FROM users WHERE email = ?", email);
}

/* Creates a key as token's user; the key text (g_free). */
static char *
new_key(const char *token, const char *name)
{
  g_autofree char *body = g_strdup_printf("{\"name\":\"%s\"}", name);
  g_autoptr(JsonNode) r = NULL;
  long st = sfx_call("POST", "/api/v1/api-keys", token, body, &r);
  expect_status(st, 201, r, "key creation");
  return g_strdup(sfx_str(r, "key"));
}

START_TEST(test_api_grant)
{
  sfx_add_user("Sales A", "pa@sales-a.test", "provider_admin", PW);
  sfx_add_user("Sales A", "ps@sales-a.test", "provider_support", PW);
  sfx_add_user("RHQ", "admin@rhq.test", "provider_admin", PW);
  sfx_add_org("RHQ", "Sales Z", "provider");
  sfx_add_user("Sales Z", "pa@sales-z.test", "provider_admin", PW);
  sfx_add_org("Sales A", "Customer Z", "customer");
  sfx_add_user("Customer Z", "admin@z.test", "customer_admin", PW);
  sfx_add_user("Customer A", "admin2@a.test", "customer_admin", PW);
  g_autofree char *target = user_public_id("admin@a.test");
  g_autofree char *alice_pub = user_public_id("alice@a.test");

  /* Off by default. */
  ck_assert_int_eq(granted("admin@a.test"), 0);
  g_autofree char *admin = sfx_login("admin@a.test", sfx.admin_pw);
  g_autoptr(JsonNode) k = NULL;
  long kst = sfx_call("POST", "/api/v1/api-keys", admin, "{\"name\":\"x\"}", &k);
  sfx_expect_error(kst, k, 403, "forbidden", "not been granted");

  /* Who may grant: a provider admin above, another customer admin of the org. */
  struct {
    const char *email;
    const char *password;
    long want;
  } cases[] = {
      {"alice@a.test", sfx.alice_pw, 403}, /* customer user of the org */
      {"admin@a.test", sfx.admin_pw, 403}, /* herself: someone else must permit it */
      {"ps@sales-a.test", PW, 403},        /* provider support: looks only */
      {"admin@z.test", PW, 404},           /* another customer's admin */
      {"pa@sales-z.test", PW, 404},        /* a provider of another branch */
      {"pa@sales-a.test", PW, 200},        /* the provider above */
      {"admin@rhq.test", PW, 200},         /* the root provider, further above */
      {"admin2@a.test", PW, 200},          /* a customer admin of the org */
  };
  for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
    db_exec("UPDATE users SET api_granted = 0");
    g_autofree char *token = sfx_login(cases[i].email, cases[i].password);
    g_autoptr(JsonNode) r = NULL;
    long st = put_access(token, target, "{\"granted\":true}", &r);
    ck_assert_msg(st == cases[i].want, "grant by %s: got %ld, expected %ld", cases[i].email, st,
                  cases[i].want);
    ck_assert_int_eq(granted("admin@a.test"), st == 200 ? 1 : 0);
    if (st == 200)
      ck_assert(json_node_get_boolean(sfx_member(r, "api_granted")));
  }
  ck_assert_msg(db_int("SELECT count(*) FROM audit WHERE event = 'api.granted' AND subject = ?",
                       "admin@a.test") == 3,
                "three grants, three api.granted events");

  /* Only a customer admin can hold it. */
  g_autofree char *pa = sfx_login("pa@sales-a.test", PW);
  g_autoptr(JsonNode) c = NULL;
  long cst = put_access(pa, alice_pub, "{\"granted\":true}", &c);
  sfx_expect_error(cst, c, 409, "conflict", "customer admin");
  ck_assert_int_eq(granted("alice@a.test"), 0);
  /* Unknown users; ids that are no UUID. */
  g_autoptr(JsonNode) u = NULL;
  ck_assert_int_eq(put_access(pa, "00000000-0000-4000-8000-000000000000", "{\"granted\":true}", &u),
                   404);
  g_autoptr(JsonNode) u2 = NULL;
  ck_assert_int_eq(put_access(pa, "1%27%20OR%201%3D1", "{\"granted\":true}", &u2), 404);
  g_autoptr(JsonNode) n = NULL;
  ck_assert_int_eq(put_access(NULL, target, "{\"granted\":true}", &n), 401);

  /* Bad bodies change nothing. */
  db_exec("UPDATE users SET api_granted = 0");
  gint64 audits = db_int("SELECT count(*) FROM audit", NULL);
  struct {
    const char *body;
    const char *names;
  } bad[] = {
      {"{}", "\"granted\""},
      {"{\"granted\":\"yes\"}", "\"granted\""},
      {"{\"granted\":1}", "\"granted\""},
      {"{\"granted\":null}", "\"granted\""},
      {"{\"granted\":true,\"role\":\"provider_admin\"}", "unknown field \"role\""},
      {"[true]", NULL},
      {"{\"granted\":tru", NULL},
  };
  for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
    g_autoptr(JsonNode) r = NULL;
    long st = put_access(pa, target, bad[i].body, &r);
    ck_assert_msg(st == 400, "body %s: got %ld, expected 400", bad[i].body, st);
    if (bad[i].names)
      sfx_expect_error(st, r, 400, "bad_request", bad[i].names);
  }
  ck_assert_int_eq(granted("admin@a.test"), 0);
  ck_assert_int_eq(db_int("SELECT count(*) FROM audit", NULL), audits);
}
END_TEST

START_TEST(test_api_keys)
{
  char month[8];
  gint64 t = month_start(month) + 60;
  sfx_add_org("Sales A", "Customer Z", "customer");
  sfx_add_user("Customer Z", "admin@z.test", "customer_admin", PW);
  sfx_add_user("Customer Z", "zed@z.test", "customer_user", PW);
  sfx_add_user("Sales A", "pa@sales-a.test", "provider_admin", PW);
  add_device("Customer Z", "MFP-Z");
  add_log("zed@z.test", "MFP-Z", 77, 0, false, "completed", t);
  add_log("alice@a.test", "MFP-1", 6, 1, true, "completed", t);
  add_log("admin@a.test", "MFP-1", 2, 0, false, "failed", t + 5);
  db_exec("UPDATE users SET api_granted = 1 WHERE email IN ('admin@a.test', 'admin@z.test')");

  g_autofree char *admin = sfx_login("admin@a.test", sfx.admin_pw);
  g_autoptr(JsonNode) made = NULL;
  expect_status(sfx_call("POST", "/api/v1/api-keys", admin, "{\"name\":\"billing\"}", &made), 201,
                made, "key creation");
  const char *key = sfx_str(made, "key");
  ck_assert_msg(key && g_str_has_prefix(key, "kcpsk_") && strlen(key) == 49,
                "key: got %s, expected kcpsk_ and 43 characters", key ? key : "(none)");
  ck_assert_str_eq(sfx_str(made, "name"), "billing");
  ck_assert_ptr_nonnull(sfx_str(made, "created"));
  const char *key_id = sfx_str(made, "id");
  ck_assert_msg(kcps__server_is_uuid(key_id), "key id %s is no UUID", key_id);

  /* Stored as SHA-256 only. */
  char hash[65];
  kcps_crypto_sha256_hex(key, strlen(key), hash);
  ck_assert_int_eq(db_int("SELECT count(*) FROM api_keys WHERE key_hash = ?", hash), 1);
  g_autofree char *stored = db_table_text("api_keys");
  expect_absent(stored, key + 6, "the api_keys table");

  /* Shown once: the list has no key material. */
  g_autoptr(JsonNode) list = NULL;
  expect_status(get("/api/v1/api-keys", admin, &list), 200, list, "key list");
  g_autofree char *list_text = to_text(list);
  expect_absent(list_text, key + 6, "the key list");
  expect_absent(list_text, hash, "the key list");
  JsonNode *listed = find_by(sfx_array(list, "keys"), "id", key_id);
  ck_assert_msg(listed && !sfx_member(listed, "key"), "listed key without \"key\" expected");
  ck_assert(json_node_get_boolean(sfx_member(list, "granted")));

  /* The user list of that organization only. */
  g_autoptr(JsonNode) users = NULL;
  expect_status(get("/api/v1/external/users", key, &users), 200, users, "external users");
  JsonArray *ua = sfx_array(users, "users");
  ck_assert_uint_eq(json_array_get_length(ua), 2);
  JsonNode *alice = find_by(ua, "email", "alice@a.test");
  g_autofree char *alice_pub = user_public_id("alice@a.test");
  ck_assert_str_eq(sfx_str(alice, "id"), alice_pub);
  ck_assert_str_eq(sfx_str(alice, "role"), "customer_user");
  ck_assert(json_node_get_boolean(sfx_member(alice, "active")));
  g_autofree char *users_text = to_text(users);
  expect_absent(users_text, "z.test", "Customer A's user list");
  expect_absent(users_text, "password", "the user list");
  expect_absent(users_text, "pin", "the user list");

  /* The job log: device, executor, time, type, pages; nothing of Z's. */
  g_autofree char *jpath = g_strdup_printf("/api/v1/external/job-log?month=%s", month);
  g_autoptr(JsonNode) log = NULL;
  expect_status(get(jpath, key, &log), 200, log, "external job log");
  JsonArray *ja = sfx_array(log, "jobs");
  ck_assert_uint_eq(json_array_get_length(ja), 2);
  JsonNode *j0 = json_array_get_element(ja, 0);
  ck_assert_str_eq(sfx_str(j0, "device"), "MFP-1");
  ck_assert_str_eq(sfx_str(j0, "executor_id"), alice_pub);
  ck_assert_str_eq(sfx_str(j0, "executor_email"), "alice@a.test");
  ck_assert_str_eq(sfx_str(j0, "type"), "print");
  expect_int(j0, "pages", 6, "job 0");
  g_autofree char *t_text = NULL;
  {
    g_autoptr(GDateTime) dt = g_date_time_new_from_unix_utc(t);
    t_text = g_date_time_format(dt, "%Y-%m-%dT%H:%M:%SZ");
  }
  ck_assert_str_eq(sfx_str(j0, "time"), t_text);
  ck_assert_str_eq(sfx_str(json_array_get_element(ja, 1), "status"), "failed");
  g_autofree char *log_text = to_text(log);
  expect_absent(log_text, "MFP-Z", "Customer A's job log");
  expect_absent(log_text, "z.test", "Customer A's job log");
  expect_absent(log_text, "secret-document", "the job log");
  /* Paging. */
  g_autofree char *p1 = g_strdup_printf("/api/v1/external/job-log?month=%s&limit=1", month);
  g_autoptr(JsonNode) page = NULL;
  expect_status(get(p1, key, &page), 200, page, "first page");
  ck_assert_uint_eq(json_array_get_length(sfx_array(page, "jobs")), 1);
  expect_int(page, "next_offset", 1, "first page");
  g_autofree char *p2 =
      g_strdup_printf("/api/v1/external/job-log?month=%s&limit=1&offset=1", month);
  g_autoptr(JsonNode) page2 = NULL;
  expect_status(get(p2, key, &page2), 200, page2, "second page");
  ck_assert_str_eq(sfx_str(json_array_get_element(sfx_array(page2, "jobs"), 0), "status"),
                   "failed");
  ck_assert_msg(JSON_NODE_HOLDS_NULL(sfx_member(page2, "next_offset")), "last page: null next");

  /* Z's key sees Z only. */
  g_autofree char *zadmin = sfx_login("admin@z.test", PW);
  g_autofree char *zkey = new_key(zadmin, "z");
  g_autoptr(JsonNode) zl = NULL;
  expect_status(get(jpath, zkey, &zl), 200, zl, "Z's job log");
  g_autofree char *zl_text = to_text(zl);
  ck_assert_uint_eq(json_array_get_length(sfx_array(zl, "jobs")), 1);
  expect_absent(zl_text, "a.test", "Z's job log");

  /* Each use is audited, never with the key. */
  gint64 org_a = sfx_org_id("Customer A");
  g_autofree char *org_a_text = g_strdup_printf("%" G_GINT64_FORMAT, org_a);
  ck_assert_int_ge(
      db_int("SELECT count(*) FROM audit WHERE event = 'apikey.used' AND org_id = ?", org_a_text),
      4);
  ck_assert_int_eq(
      db_int("SELECT count(*) FROM audit WHERE event = 'apikey.created' AND subject = ?",
             "billing"),
      1);
  g_autofree char *audit = db_table_text("audit");
  expect_absent(audit, key + 6, "the audit log");
  expect_absent(audit, hash, "the audit log");

  /* Wrong keys: all the same 401. */
  g_autoptr(JsonNode) ok401 = NULL;
  ck_assert_int_eq(get("/api/v1/external/users", NULL, &ok401), 401);
  g_autofree char *refusal = to_text(ok401);
  g_autofree char *forged = g_strdup(key);
  forged[10] = forged[10] == 'A' ? 'B' : 'A';
  const char *wrong[] = {forged, admin /* a session token */, "kcpsk_", "kcpsk_' OR 1=1 --",
                         "Basic x"};
  for (size_t i = 0; i < G_N_ELEMENTS(wrong); i++) {
    g_autoptr(JsonNode) r = NULL;
    long st = get("/api/v1/external/users", wrong[i], &r);
    ck_assert_msg(st == 401, "wrong key %zu: got %ld, expected 401", i, st);
    g_autofree char *text = to_text(r);
    ck_assert_str_eq(text, refusal);
  }
  /* A key is not a session for the other routes. */
  g_autoptr(JsonNode) me = NULL;
  ck_assert_int_eq(get("/api/v1/me", key, &me), 401);

  /* Revoked: 401 with the same body; audited. */
  g_autofree char *dpath = g_strdup_printf("/api/v1/api-keys/%s", key_id);
  g_autofree char *alice_tok = sfx_login("alice@a.test", sfx.alice_pw);
  g_autoptr(JsonNode) ad = NULL;
  ck_assert_int_eq(sfx_call("DELETE", dpath, alice_tok, NULL, &ad), 404);
  g_autoptr(JsonNode) zd = NULL;
  ck_assert_int_eq(sfx_call("DELETE", dpath, zadmin, NULL, &zd), 404);
  ck_assert_int_eq(sfx_call("DELETE", dpath, admin, NULL, NULL), 204);
  g_autoptr(JsonNode) rv = NULL;
  ck_assert_int_eq(get("/api/v1/external/users", key, &rv), 401);
  g_autofree char *rv_text = to_text(rv);
  ck_assert_str_eq(rv_text, refusal);
  ck_assert_int_eq(db_int("SELECT count(*) FROM audit WHERE event = 'apikey.revoked'", NULL), 1);
  ck_assert_int_eq(sfx_call("DELETE", dpath, admin, NULL, NULL), 204);
  ck_assert_int_eq(db_int("SELECT count(*) FROM audit WHERE event = 'apikey.revoked'", NULL), 1);
  g_autoptr(JsonNode) nk = NULL;
  ck_assert_int_eq(
      sfx_call("DELETE", "/api/v1/api-keys/00000000-0000-4000-8000-000000000000", admin, NULL, &nk),
      404);
  g_autoptr(JsonNode) list2 = NULL;
  expect_status(get("/api/v1/api-keys", admin, &list2), 200, list2, "list after revoking");
  ck_assert_ptr_nonnull(sfx_str(find_by(sfx_array(list2, "keys"), "id", key_id), "revoked"));

  /* Withdrawing the grant disables every key, for good. */
  g_autofree char *k2 = new_key(admin, "second");
  g_autoptr(JsonNode) w0 = NULL;
  expect_status(get("/api/v1/external/users", k2, &w0), 200, w0, "second key");
  g_autofree char *admin_pub = user_public_id("admin@a.test");
  g_autoptr(JsonNode) w = NULL;
  expect_status(put_access(admin, admin_pub, "{\"granted\":false}", &w), 200, w, "withdrawal");
  g_autoptr(JsonNode) w1 = NULL;
  ck_assert_int_eq(get("/api/v1/external/users", k2, &w1), 401);
  g_autoptr(JsonNode) w2 = NULL;
  g_autofree char *pa = sfx_login("pa@sales-a.test", PW);
  expect_status(put_access(pa, admin_pub, "{\"granted\":true}", &w2), 200, w2, "grant again");
  g_autoptr(JsonNode) w3 = NULL;
  ck_assert_int_eq(get("/api/v1/external/users", k2, &w3), 401);

  /* A deactivated owner's keys stop working, also after reactivation. */
  g_autofree char *k3 = new_key(admin, "third");
  g_autoptr(JsonNode) d0 = NULL;
  expect_status(get("/api/v1/external/users", k3, &d0), 200, d0, "third key");
  db_exec("UPDATE users SET active = 0 WHERE email = 'admin@a.test'");
  g_autoptr(JsonNode) d1 = NULL;
  ck_assert_int_eq(get("/api/v1/external/users", k3, &d1), 401);
  g_autofree char *d1_text = to_text(d1);
  ck_assert_str_eq(d1_text, refusal);
  db_exec("UPDATE users SET active = 1 WHERE email = 'admin@a.test'");
  g_autoptr(JsonNode) d2 = NULL;
  ck_assert_int_eq(get("/api/v1/external/users", k3, &d2), 401);
  ck_assert_int_eq(granted("admin@a.test"), 0);

  /* So do those of an owner who stops being a customer admin, for good. */
  g_autofree char *a2 = sfx_login("admin@a.test", sfx.admin_pw);
  g_autoptr(JsonNode) g = NULL;
  expect_status(put_access(pa, admin_pub, "{\"granted\":true}", &g), 200, g, "grant again");
  g_autofree char *k4 = new_key(a2, "fourth");
  db_exec("UPDATE users SET role = 'print_manager' WHERE email = 'admin@a.test'");
  db_exec("UPDATE users SET role = 'customer_admin' WHERE email = 'admin@a.test'");
  g_autoptr(JsonNode) d3 = NULL;
  ck_assert_int_eq(get("/api/v1/external/users", k4, &d3), 401);
  ck_assert_int_eq(granted("admin@a.test"), 0);
  ck_assert_int_eq(db_int("SELECT count(*) FROM api_keys WHERE revoked IS NULL AND user_id = "
                          "(SELECT id FROM users WHERE email = ?)",
                          "admin@a.test"),
                   0);
}
END_TEST

START_TEST(test_api_keys_bad_input)
{
  db_exec("UPDATE users SET api_granted = 1 WHERE email = 'admin@a.test'");
  g_autofree char *admin = sfx_login("admin@a.test", sfx.admin_pw);
  g_autofree char *key = new_key(admin, "ok");
  gint64 keys = db_int("SELECT count(*) FROM api_keys", NULL);
  g_autofree char *longname = g_strnfill(101, 'n');
  g_autofree char *longbody = g_strdup_printf("{\"name\":\"%s\"}", longname);
  struct {
    const char *body;
    const char *names;
  } bad[] = {
      {"{}", "\"name\""},
      {"{\"name\":\"\"}", "\"name\""},
      {"{\"name\":5}", "\"name\""},
      {"{\"name\":null}", "\"name\""},
      {"{\"name\":[\"a\"]}", "\"name\""},
      {"{\"name\":\"a\\u0001b\"}", "\"name\""},
      {longbody, "\"name\""},
      {"{\"name\":\"x\",\"key\":\"kcpsk_chosen\"}", "unknown field \"key\""},
      {"{\"name\":\"x\",\"user_id\":1}", "unknown field \"user_id\""},
      {"{\"name\":\"x\"", NULL},
      {"\"x\"", NULL},
  };
  for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
    g_autoptr(JsonNode) r = NULL;
    long st = sfx_call_raw("POST", "/api/v1/api-keys", admin, bad[i].body, -1, NULL, NULL, &r);
    ck_assert_msg(st == 400, "body %s: got %ld, expected 400", bad[i].body, st);
    if (bad[i].names)
      sfx_expect_error(st, r, 400, "bad_request", bad[i].names);
  }
  /* Not UTF-8. */
  g_autoptr(JsonNode) u8 = NULL;
  ck_assert_int_eq(sfx_call_raw("POST", "/api/v1/api-keys", admin, "{\"name\":\"\xff\xfe\"}", -1,
                                NULL, NULL, &u8),
                   400);
  ck_assert_int_eq(db_int("SELECT count(*) FROM api_keys", NULL), keys);

  /* Query parameters of the job log. */
  static const char *const bad_query[] = {
      "month=2026-13", "month=",  "month=x",   "limit=0",  "limit=10001",
      "limit=-1",      "limit=a", "offset=-1", "offset=x", "limit=1e3",
  };
  for (size_t i = 0; i < G_N_ELEMENTS(bad_query); i++) {
    g_autofree char *path = g_strdup_printf("/api/v1/external/job-log?%s", bad_query[i]);
    g_autoptr(JsonNode) r = NULL;
    long st = get(path, key, &r);
    ck_assert_msg(st == 400, "%s: got %ld, expected 400", bad_query[i], st);
    g_autofree char *param =
        g_strdup_printf("\"%.*s\"", (int)strcspn(bad_query[i], "="), bad_query[i]);
    sfx_expect_error(st, r, 400, "bad_request", param);
  }
  /* A bad query with a bad key: the key is refused first. */
  g_autoptr(JsonNode) r = NULL;
  ck_assert_int_eq(get("/api/v1/external/job-log?month=x", "kcpsk_nope", &r), 401);

  /* Twenty live keys at most. */
  for (gint64 n = db_int("SELECT count(*) FROM api_keys WHERE revoked IS NULL", NULL); n < 20;
       n++) {
    g_autofree char *k = new_key(admin, "more");
  }
  g_autoptr(JsonNode) full = NULL;
  long fst = sfx_call("POST", "/api/v1/api-keys", admin, "{\"name\":\"one too many\"}", &full);
  sfx_expect_error(fst, full, 409, "conflict", NULL);

  /* Only customer admins hold keys. */
  g_autofree char *alice = sfx_login("alice@a.test", sfx.alice_pw);
  g_autoptr(JsonNode) al = NULL;
  ck_assert_int_eq(get("/api/v1/api-keys", alice, &al), 403);
  g_autoptr(JsonNode) ac = NULL;
  ck_assert_int_eq(sfx_call("POST", "/api/v1/api-keys", alice, "{\"name\":\"x\"}", &ac), 403);
  sfx_add_user("Sales A", "pa@sales-a.test", "provider_admin", PW);
  g_autofree char *pa = sfx_login("pa@sales-a.test", PW);
  g_autoptr(JsonNode) pc = NULL;
  ck_assert_int_eq(sfx_call("POST", "/api/v1/api-keys", pa, "{\"name\":\"x\"}", &pc), 403);
  g_autoptr(JsonNode) nc = NULL;
  ck_assert_int_eq(sfx_call("POST", "/api/v1/api-keys", NULL, "{\"name\":\"x\"}", &nc), 401);
}
END_TEST

/* Audit log ------------------------------------------------------------------ */

START_TEST(test_audit_read)
{
  sfx_add_user("Sales A", "pa@sales-a.test", "provider_admin", PW);
  sfx_add_user("Sales A", "ps@sales-a.test", "provider_support", PW);
  g_autofree char *admin = sfx_login("admin@a.test", sfx.admin_pw);
  g_autofree char *pa = sfx_login("pa@sales-a.test", PW);
  gint64 org_a = sfx_org_id("Customer A"), sales_a = sfx_org_id("Sales A");
  gint64 alice = user_id("alice@a.test");
  kcps__server_audit(sfx.server, org_a, alice, "test.one", "alice@a.test", "192.0.2.1", "first");
  kcps__server_audit(sfx.server, org_a, 0, "test.two", NULL, "192.0.2.2", NULL);
  kcps__server_audit(sfx.server, sales_a, 0, "test.provider", "Sales A", "192.0.2.3", NULL);
  kcps__server_audit(sfx.server, org_a, alice, "test.three", "MFP-1", "192.0.2.4", "third");

  g_autofree char *org = sfx_org_public_id("Customer A");
  g_autofree char *path = g_strdup_printf("/api/v1/orgs/%s/audit?limit=2", org);
  g_autoptr(JsonNode) r = NULL;
  expect_status(get(path, admin, &r), 200, r, "audit page 1");
  JsonArray *ev = sfx_array(r, "events");
  ck_assert_uint_eq(json_array_get_length(ev), 2);
  JsonNode *e0 = json_array_get_element(ev, 0), *e1 = json_array_get_element(ev, 1);
  ck_assert_str_eq(sfx_str(e0, "event"), "test.three");
  ck_assert_str_eq(sfx_str(e0, "user"), "alice@a.test");
  ck_assert_str_eq(sfx_str(e0, "subject"), "MFP-1");
  ck_assert_str_eq(sfx_str(e0, "source"), "192.0.2.4");
  ck_assert_str_eq(sfx_str(e0, "detail"), "third");
  ck_assert_msg(sfx_str(e0, "time") && strlen(sfx_str(e0, "time")) == 20, "RFC 3339 time");
  ck_assert_str_eq(sfx_str(e1, "event"), "test.two");
  ck_assert_msg(JSON_NODE_HOLDS_NULL(sfx_member(e1, "user")), "no user: null");
  ck_assert_int_gt(sfx_int(e0, "id"), sfx_int(e1, "id"));
  expect_int(r, "next_before", sfx_int(e1, "id"), "page 1");

  g_autofree char *path2 = g_strdup_printf("/api/v1/orgs/%s/audit?limit=1&before=%" G_GINT64_FORMAT,
                                           org, sfx_int(r, "next_before"));
  g_autoptr(JsonNode) r2 = NULL;
  expect_status(get(path2, admin, &r2), 200, r2, "audit page 2");
  ck_assert_str_eq(sfx_str(json_array_get_element(sfx_array(r2, "events"), 0), "event"),
                   "test.one");
  /* The default page holds everything here; nothing of Sales A. */
  g_autofree char *all = g_strdup_printf("/api/v1/orgs/%s/audit", org);
  g_autoptr(JsonNode) r3 = NULL;
  expect_status(get(all, admin, &r3), 200, r3, "audit default");
  g_autofree char *text = to_text(r3);
  expect_absent(text, "test.provider", "Customer A's audit log");
  ck_assert_msg(JSON_NODE_HOLDS_NULL(sfx_member(r3, "next_before")), "short page: null");

  /* Who may read: the org's customer admin; a provider admin its own org's. */
  g_autofree char *sales = sfx_org_public_id("Sales A");
  g_autofree char *spath = g_strdup_printf("/api/v1/orgs/%s/audit", sales);
  g_autoptr(JsonNode) s = NULL;
  expect_status(get(spath, pa, &s), 200, s, "provider admin's own audit");
  g_autofree char *stext = to_text(s);
  ck_assert_msg(strstr(stext, "test.provider"), "Sales A's event expected: %s", stext);
  expect_absent(stext, "test.three", "Sales A's audit log");
  g_autoptr(JsonNode) x = NULL;
  ck_assert_int_eq(get(all, pa, &x), 403);
  g_autofree char *ps = sfx_login("ps@sales-a.test", PW);
  g_autoptr(JsonNode) y = NULL;
  ck_assert_int_eq(get(spath, ps, &y), 403);
  g_autofree char *alice_tok = sfx_login("alice@a.test", sfx.alice_pw);
  g_autoptr(JsonNode) z = NULL;
  ck_assert_int_eq(get(all, alice_tok, &z), 403);
  g_autoptr(JsonNode) w = NULL;
  ck_assert_int_eq(get(spath, admin, &w), 404);
  g_autoptr(JsonNode) v = NULL;
  ck_assert_int_eq(get(all, NULL, &v), 401);

  /* Bad limit or before: 400 naming it. */
  static const char *const bad[] = {"limit=0",   "limit=501",
                                    "limit=-1",  "limit=abc",
                                    "limit=",    "limit=1.5",
                                    "before=0",  "before=x",
                                    "before=-5", "limit=99999999999999999999"};
  for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
    g_autofree char *p = g_strdup_printf("/api/v1/orgs/%s/audit?%s", org, bad[i]);
    g_autoptr(JsonNode) b = NULL;
    long st = get(p, admin, &b);
    g_autofree char *param = g_strdup_printf("\"%.*s\"", (int)strcspn(bad[i], "="), bad[i]);
    ck_assert_msg(st == 400, "%s: got %ld, expected 400", bad[i], st);
    sfx_expect_error(st, b, 400, "bad_request", param);
  }
  g_autofree char *max = g_strdup_printf("/api/v1/orgs/%s/audit?limit=500", org);
  g_autoptr(JsonNode) m = NULL;
  ck_assert_int_eq(get(max, admin, &m), 200);
}
END_TEST

/* One TCase a test: each gets a fresh demo server. */
#define ADD(suite, fn)                                                                             \
  do {                                                                                             \
    TCase *tc = tcase_create(#fn);                                                                 \
    tcase_add_checked_fixture(tc, sfx_setup, sfx_teardown);                                        \
    tcase_add_test(tc, fn);                                                                        \
    suite_add_tcase(suite, tc);                                                                    \
  } while (0)

int
main(void)
{
  Suite *s = suite_create("server-reports");
  ADD(s, test_org_report);
  ADD(s, test_org_report_bad_month);
  ADD(s, test_org_report_access);
  ADD(s, test_contracts_section3);
  ADD(s, test_api_grant);
  ADD(s, test_api_keys);
  ADD(s, test_api_keys_bad_input);
  ADD(s, test_audit_read);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
