/* kcps-server's user groups (server-groups.c) and the reports by group
 * (server-usage.c, server-reports.c) over real HTTPS: a customer admin
 * makes, renames and deletes groups and moves users in and out (bad input
 * 400 naming the field, duplicates 409, other organizations' users 404,
 * every change audited); the month's usage report counts each member's
 * prints once in each group she is in (a record linked to a job with a
 * completed job log only once, through the log); the contract reports going
 * upward keep counting each print once and name no user, group or printer
 * (white paper section 3). */
#include "server-fixture.h"

#include <string.h>

#define PRINTER "ipps://printer.example:443/ipp/print"
#define PW "Groups-pass1!"

static void
expect_status(long got, long want, JsonNode *answer, const char *what)
{
  g_autofree char *text = answer ? json_to_string(answer, FALSE) : g_strdup("(none)");
  ck_assert_msg(got == want, "%s: got %ld, expected %ld (%s)", what, got, want, text);
}

/* The call first, then its answer (an argument list has no order). */
#define EXPECT_STATUS(call, ...)                                                                   \
  do {                                                                                             \
    long st_ = (call);                                                                             \
    expect_status(st_, __VA_ARGS__);                                                               \
  } while (0)
#define EXPECT_ERROR(call, ...)                                                                    \
  do {                                                                                             \
    long st_ = (call);                                                                             \
    sfx_expect_error(st_, __VA_ARGS__);                                                            \
  } while (0)

static void
expect_int(JsonNode *node, const char *name, gint64 want, const char *what)
{
  gint64 got = sfx_int(node, name);
  ck_assert_msg(got == want, "%s: %s is %" G_GINT64_FORMAT ", expected %" G_GINT64_FORMAT, what,
                name, got, want);
}

static char *
user_public_id(const char *email)
{
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
  ck_assert_msg(id, "no user %s", email);
  return id;
}

/* How many audit events of that kind the organization has. */
static gint64
audit_count(const char *org, const char *event)
{
  gint64 n = -1, org_id = sfx_org_id(org);
  g_mutex_lock(&sfx.server->lock);
  sqlite3_stmt *stmt = kcps__server_db_prepare(
      sfx.server, "SELECT count(*) FROM audit WHERE org_id = ? AND event = ?", NULL);
  if (stmt) {
    sqlite3_bind_int64(stmt, 1, org_id);
    sqlite3_bind_text(stmt, 2, event, -1, SQLITE_STATIC);
    if (kcps__server_db_step(sfx.server, stmt, NULL) == SQLITE_ROW)
      n = sqlite3_column_int64(stmt, 0);
  }
  sqlite3_finalize(stmt);
  g_mutex_unlock(&sfx.server->lock);
  return n;
}

/* POST /api/v1/orgs/{Customer A}/groups {"name"}; asserts 201; the id. */
static char *
make_group(const char *token, const char *name)
{
  g_autofree char *org = sfx_org_public_id("Customer A");
  g_autofree char *path = g_strdup_printf("/api/v1/orgs/%s/groups", org);
  g_autofree char *body = g_strdup_printf("{\"name\":\"%s\"}", name);
  g_autoptr(JsonNode) a = NULL;
  EXPECT_STATUS(sfx_call("POST", path, token, body, &a), 201, a, name);
  ck_assert_str_eq(sfx_str(a, "name"), name);
  expect_int(a, "members", 0, "a new group");
  return g_strdup(sfx_str(a, "id"));
}

static long
add_member(const char *token, const char *group, const char *email, JsonNode **out)
{
  g_autofree char *uid = user_public_id(email);
  g_autofree char *path = g_strdup_printf("/api/v1/groups/%s/members", group);
  g_autofree char *body = g_strdup_printf("{\"user\":\"%s\"}", uid);
  return sfx_call("POST", path, token, body, out);
}

/* The time of every record of a test (a retry must repeat it exactly). */
static gint64 record_time;

static long
post_usage(const char *token, const char *key, const char *printer, gint64 pages, gint64 copies,
           bool color, const char *job_id, JsonNode **out)
{
  if (!record_time)
    record_time = kcps__server_now();
  g_autofree char *when = kcps__server_iso_time(record_time);
  g_autofree char *job = job_id ? g_strdup_printf(",\"job_id\":\"%s\"", job_id) : g_strdup("");
  g_autofree char *body = g_strdup_printf(
      "{\"idempotency_key\":\"%s\",\"printer\":\"%s\",\"time\":\"%s\",\"pages\":%" G_GINT64_FORMAT
      ",\"copies\":%" G_GINT64_FORMAT ",\"color\":%s%s}",
      key, printer, when, pages, copies, color ? "true" : "false", job);
  return sfx_call("POST", "/api/v1/usage", token, body, out);
}

/* The row of array member whose key is value, or NULL. */
static JsonObject *
find_row(JsonNode *answer, const char *member, const char *key, const char *value)
{
  JsonArray *rows = sfx_array(answer, member);
  for (guint i = 0; rows && i < json_array_get_length(rows); i++) {
    JsonObject *row = json_array_get_object_element(rows, i);
    if (g_strcmp0(json_object_get_string_member_with_default(row, key, ""), value) == 0)
      return row;
  }
  return NULL;
}

static gint64
row_int(JsonObject *row, const char *name)
{
  return row && json_object_has_member(row, name) ? json_object_get_int_member(row, name) : -1;
}

/* Groups and members ------------------------------------------------------ */

START_TEST(test_groups_crud)
{
  g_autofree char *admin = sfx_login("admin@a.test", sfx.admin_pw);
  g_autofree char *org = sfx_org_public_id("Customer A");
  g_autofree char *list_path = g_strdup_printf("/api/v1/orgs/%s/groups", org);

  g_autofree char *sales = make_group(admin, "Sales");
  g_autofree char *art = make_group(admin, "Art");

  /* Bad bodies: 400 naming the field; nothing stored. */
  static const struct {
    const char *body;
    const char *field;
  } bad[] = {
      {"{}", "name"},
      {"{\"name\":\"\"}", "name"},
      {"{\"name\":\"   \"}", "name"},
      {"{\"name\":7}", "name"},
      {"{\"name\":null}", "name"},
      {"{\"name\":\"a\\u0007b\"}", "name"},
      {"{\"name\":\"x\",\"colour\":\"red\"}", "colour"},
  };
  for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
    g_autoptr(JsonNode) a = NULL;
    long st = sfx_call("POST", list_path, admin, bad[i].body, &a);
    if (st != 400)
      ck_abort_msg("%s: got %ld", bad[i].body, st);
    sfx_expect_error(st, a, 400, "bad_request", bad[i].field);
  }
  g_autofree char *long_name = g_strnfill(256, 'n');
  g_autofree char *long_body = g_strdup_printf("{\"name\":\"%s\"}", long_name);
  g_autoptr(JsonNode) la = NULL;
  EXPECT_ERROR(sfx_call("POST", list_path, admin, long_body, &la), la, 400, "bad_request",
                   "name");
  /* A name taken (ASCII case ignored): 409. */
  g_autoptr(JsonNode) dup = NULL;
  EXPECT_ERROR(sfx_call("POST", list_path, admin, "{\"name\":\"SALES\"}", &dup), dup, 409,
                   "conflict", NULL);

  g_autoptr(JsonNode) list = NULL;
  EXPECT_STATUS(sfx_call("GET", list_path, admin, NULL, &list), 200, list, "list");
  JsonArray *groups = sfx_array(list, "groups");
  ck_assert_uint_eq(json_array_get_length(groups), 2);
  ck_assert_str_eq(json_object_get_string_member(json_array_get_object_element(groups, 0), "name"),
                   "Art");

  /* Rename: to a taken name 409; the same name again logs nothing. */
  g_autofree char *art_path = g_strdup_printf("/api/v1/groups/%s", art);
  g_autoptr(JsonNode) r1 = NULL, r2 = NULL, r3 = NULL, r4 = NULL;
  EXPECT_STATUS(sfx_call("PATCH", art_path, admin, "{\"name\":\"Design\"}", &r1), 200, r1,
                "rename");
  ck_assert_str_eq(sfx_str(r1, "name"), "Design");
  EXPECT_STATUS(sfx_call("PATCH", art_path, admin, "{\"name\":\"Design\"}", &r2), 200, r2,
                "rename to the same name");
  EXPECT_ERROR(sfx_call("PATCH", art_path, admin, "{\"name\":\"sales\"}", &r3), r3, 409,
                   "conflict", NULL);
  EXPECT_ERROR(sfx_call("PATCH", art_path, admin, "{\"nom\":\"x\"}", &r4), r4, 400,
                   "bad_request", "nom");
  ck_assert_int_eq(audit_count("Customer A", "group.renamed"), 1);

  /* Not a UUID, or a group that does not exist: 404. */
  g_autoptr(JsonNode) n1 = NULL, n2 = NULL;
  EXPECT_ERROR(sfx_call("GET", "/api/v1/groups/1", admin, NULL, &n1), n1, 404, "not_found",
                   NULL);
  g_autofree char *nobody = g_uuid_string_random();
  g_autofree char *nobody_path = g_strdup_printf("/api/v1/groups/%s", nobody);
  EXPECT_ERROR(sfx_call("GET", nobody_path, admin, NULL, &n2), n2, 404, "not_found", NULL);

  /* Another customer's admin: the group is not there for her (404). */
  sfx_add_org("Sales A", "Customer Z", "customer");
  sfx_add_user("Customer Z", "z@z.test", "customer_admin", PW);
  g_autofree char *z = sfx_login("z@z.test", PW);
  g_autoptr(JsonNode) zz = NULL;
  EXPECT_ERROR(sfx_call("GET", art_path, z, NULL, &zz), zz, 404, "not_found", NULL);

  /* Delete: 204, then 404; audited. */
  g_autoptr(JsonNode) d1 = NULL, d2 = NULL;
  EXPECT_STATUS(sfx_call("DELETE", art_path, admin, NULL, &d1), 204, d1, "delete");
  EXPECT_ERROR(sfx_call("DELETE", art_path, admin, NULL, &d2), d2, 404, "not_found", NULL);
  ck_assert_int_eq(audit_count("Customer A", "group.created"), 2);
  ck_assert_int_eq(audit_count("Customer A", "group.deleted"), 1);
  (void)sales;

  /* A provider organization holds no groups (409), its list is empty. */
  g_autofree char *rhq_pw = sfx_credential("rhq@a.test password: ");
  g_autofree char *rhq = sfx_login("rhq@a.test", rhq_pw);
  g_autofree char *root = sfx_org_public_id("RHQ");
  g_autofree char *root_path = g_strdup_printf("/api/v1/orgs/%s/groups", root);
  g_autoptr(JsonNode) p1 = NULL, p2 = NULL;
  EXPECT_ERROR(sfx_call("POST", root_path, rhq, "{\"name\":\"Staff\"}", &p1), p1, 409,
                   "conflict", "customer");
  EXPECT_STATUS(sfx_call("GET", root_path, rhq, NULL, &p2), 200, p2, "provider's groups");
  ck_assert_uint_eq(json_array_get_length(sfx_array(p2, "groups")), 0);
}
END_TEST

START_TEST(test_members)
{
  g_autofree char *admin = sfx_login("admin@a.test", sfx.admin_pw);
  g_autofree char *g1 = make_group(admin, "One");
  g_autofree char *g2 = make_group(admin, "Two");

  g_autoptr(JsonNode) a1 = NULL, a2 = NULL, a3 = NULL;
  EXPECT_STATUS(add_member(admin, g1, "alice@a.test", &a1), 201, a1, "add alice");
  expect_int(a1, "members", 1, "after adding alice");
  /* Again: 200, nothing changes, nothing logged. */
  EXPECT_STATUS(add_member(admin, g1, "alice@a.test", &a2), 200, a2, "add alice again");
  expect_int(a2, "members", 1, "after adding alice again");
  /* A user may be in several groups. */
  EXPECT_STATUS(add_member(admin, g2, "alice@a.test", &a3), 201, a3, "alice in a second group");
  ck_assert_int_eq(audit_count("Customer A", "group.member_added"), 2);

  /* A user of another organization: 404 (not revealed); bad bodies: 400. */
  sfx_add_org("Sales A", "Customer Y", "customer");
  sfx_add_user("Customer Y", "y@y.test", "customer_user", PW);
  g_autoptr(JsonNode) o = NULL;
  EXPECT_ERROR(add_member(admin, g1, "y@y.test", &o), o, 404, "not_found", "user");
  g_autofree char *mpath = g_strdup_printf("/api/v1/groups/%s/members", g1);
  static const struct {
    const char *body;
    const char *field;
  } bad[] = {
      {"{}", "user"},
      {"{\"user\":1}", "user"},
      {"{\"user\":\"\"}", "user"},
      {"{\"user\":\"x\",\"role\":\"admin\"}", "role"},
  };
  for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
    g_autoptr(JsonNode) a = NULL;
    EXPECT_ERROR(sfx_call("POST", mpath, admin, bad[i].body, &a), a, 400, "bad_request",
                     bad[i].field);
  }
  g_autoptr(JsonNode) nu = NULL;
  EXPECT_ERROR(sfx_call("POST", mpath, admin, "{\"user\":\"1 OR 1=1\"}", &nu), nu, 404,
                   "not_found", NULL);

  /* The member list. */
  g_autoptr(JsonNode) m = NULL;
  EXPECT_STATUS(sfx_call("GET", mpath, admin, NULL, &m), 200, m, "members");
  JsonArray *members = sfx_array(m, "members");
  ck_assert_uint_eq(json_array_get_length(members), 1);
  ck_assert_str_eq(
      json_object_get_string_member(json_array_get_object_element(members, 0), "email"),
      "alice@a.test");

  /* Removing: 204, again 404; other ids 404. */
  g_autofree char *alice_id = user_public_id("alice@a.test");
  g_autofree char *rpath = g_strdup_printf("/api/v1/groups/%s/members/%s", g1, alice_id);
  g_autoptr(JsonNode) r1 = NULL, r2 = NULL, r3 = NULL;
  EXPECT_STATUS(sfx_call("DELETE", rpath, admin, NULL, &r1), 204, r1, "remove alice");
  EXPECT_ERROR(sfx_call("DELETE", rpath, admin, NULL, &r2), r2, 404, "not_found", NULL);
  g_autofree char *bad_path = g_strdup_printf("/api/v1/groups/%s/members/..", g1);
  EXPECT_ERROR(sfx_call("DELETE", bad_path, admin, NULL, &r3), r3, 404, "not_found", NULL);
  ck_assert_int_eq(audit_count("Customer A", "group.member_removed"), 1);

  /* A deleted user leaves her groups. */
  sfx_add_user("Customer A", "bob@a.test", "customer_user", PW);
  g_autoptr(JsonNode) b = NULL, del = NULL, after = NULL;
  EXPECT_STATUS(add_member(admin, g2, "bob@a.test", &b), 201, b, "add bob");
  expect_int(b, "members", 2, "alice and bob");
  g_autofree char *bob_id = user_public_id("bob@a.test");
  g_autofree char *upath = g_strdup_printf("/api/v1/users/%s", bob_id);
  EXPECT_STATUS(sfx_call("DELETE", upath, admin, NULL, &del), 204, del, "delete bob");
  g_autofree char *g2path = g_strdup_printf("/api/v1/groups/%s", g2);
  EXPECT_STATUS(sfx_call("GET", g2path, admin, NULL, &after), 200, after, "group two");
  expect_int(after, "members", 1, "after bob's deletion");

  /* Deleting the group ends its memberships, never the users. */
  g_autoptr(JsonNode) dg = NULL, me = NULL;
  EXPECT_STATUS(sfx_call("DELETE", g2path, admin, NULL, &dg), 204, dg, "delete group two");
  g_autofree char *alice = sfx_login("alice@a.test", sfx.alice_pw);
  EXPECT_STATUS(sfx_call("GET", "/api/v1/me", alice, NULL, &me), 200, me, "alice still there");

  /* A customer user may not touch groups (403), nor read them. */
  g_autoptr(JsonNode) f1 = NULL, f2 = NULL;
  EXPECT_ERROR(add_member(alice, g1, "alice@a.test", &f1), f1, 403, "forbidden", NULL);
  EXPECT_ERROR(sfx_call("GET", mpath, alice, NULL, &f2), f2, 403, "forbidden", NULL);
}
END_TEST

/* Reports by group --------------------------------------------------------- */

START_TEST(test_report_by_group)
{
  g_autofree char *admin = sfx_login("admin@a.test", sfx.admin_pw);
  g_autofree char *alice = sfx_login("alice@a.test", sfx.alice_pw);
  g_autofree char *both = make_group(admin, "Both");   /* alice and admin */
  g_autofree char *solo = make_group(admin, "Alice");  /* alice only */
  g_autofree char *empty = make_group(admin, "Empty"); /* nobody */
  g_autoptr(JsonNode) x1 = NULL, x2 = NULL, x3 = NULL;
  EXPECT_STATUS(add_member(admin, both, "alice@a.test", &x1), 201, x1, "alice in Both");
  EXPECT_STATUS(add_member(admin, both, "admin@a.test", &x2), 201, x2, "admin in Both");
  EXPECT_STATUS(add_member(admin, solo, "alice@a.test", &x3), 201, x3, "alice in Alice");

  /* alice: a direct print (2 x 3 colour), and an MFP job counted by its
   * device log (4 pages, 1 colour) though kcpsd recorded it too; admin: a
   * direct print of 5 mono pages. */
  g_autoptr(JsonNode) u1 = NULL, u2 = NULL, u3 = NULL, job = NULL, t = NULL, l = NULL;
  EXPECT_STATUS(post_usage(alice, "g-1", PRINTER, 2, 3, true, NULL, &u1), 201, u1, "alice's");
  EXPECT_STATUS(post_usage(admin, "g-2", PRINTER, 5, 1, false, NULL, &u2), 201, u2, "admin's");
  EXPECT_STATUS(sfx_call("POST", "/api/v1/jobs", alice,
                         "{\"client_job_id\":\"grp-1\",\"name\":\"doc\",\"pages\":4,\"size\":10,"
                         "\"sha256\":\"00000000000000000000000000000000000000000000000000000000"
                         "00000000\",\"pull_url\":\"https://127.0.0.1:5571/jobs/grp-1\","
                         "\"pull_pin\":\"sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"}",
                         &job),
                201, job, "job");
  const char *job_id = sfx_str(job, "id");
  EXPECT_STATUS(post_usage(alice, "g-3", "MFP-1", 4, 1, true, "grp-1", &u3), 201, u3,
                "kcpsd's record of the MFP job");
  g_autofree char *at = sfx_pin_login();
  g_autofree char *tpath = g_strdup_printf("/api/v1/device/jobs/%s/ticket", job_id);
  EXPECT_STATUS(sfx_call("POST", tpath, at, NULL, &t), 201, t, "ticket");
  g_autofree char *lpath = g_strdup_printf("/api/v1/device/jobs/%s/log", job_id);
  EXPECT_STATUS(sfx_call("POST", lpath, at,
                         "{\"pages\":4,\"color_pages\":1,\"duplex\":true,\"status\":\"completed\"}",
                         &l),
                201, l, "job log");

  /* The usage report: alice 6 + 4 pages, admin 5. */
  g_autofree char *org = sfx_org_public_id("Customer A");
  g_autofree char *path = g_strdup_printf("/api/v1/orgs/%s/usage", org);
  g_autoptr(JsonNode) rep = NULL;
  EXPECT_STATUS(sfx_call("GET", path, admin, NULL, &rep), 200, rep, "usage report");
  expect_int(sfx_member(rep, "totals"), "pages", 15, "totals");
  expect_int(sfx_member(rep, "totals"), "jobs", 3, "totals");
  JsonObject *rb = find_row(rep, "groups", "name", "Both");
  JsonObject *ra = find_row(rep, "groups", "name", "Alice");
  JsonObject *re = find_row(rep, "groups", "name", "Empty");
  ck_assert_msg(rb && ra && re, "a group is missing from the report");
  ck_assert_str_eq(json_object_get_string_member(rb, "id"), both);
  ck_assert_int_eq(row_int(rb, "members"), 2);
  ck_assert_int_eq(row_int(rb, "jobs"), 3);
  ck_assert_int_eq(row_int(rb, "pages"), 15);
  ck_assert_int_eq(row_int(rb, "color_pages"), 7);
  ck_assert_int_eq(row_int(ra, "members"), 1);
  ck_assert_int_eq(row_int(ra, "jobs"), 2);
  ck_assert_int_eq(row_int(ra, "pages"), 10);
  ck_assert_int_eq(row_int(ra, "color_pages"), 7);
  ck_assert_int_eq(row_int(re, "members"), 0);
  ck_assert_int_eq(row_int(re, "jobs"), 0);
  ck_assert_int_eq(row_int(re, "pages"), 0);
  (void)empty;

  /* The print manager reads it too (quota data); last month is empty. */
  sfx_add_user("Customer A", "pm@a.test", "print_manager", PW);
  g_autofree char *pm = sfx_login("pm@a.test", PW);
  g_autoptr(JsonNode) rpm = NULL, old = NULL;
  EXPECT_STATUS(sfx_call("GET", path, pm, NULL, &rpm), 200, rpm, "print manager's report");
  ck_assert_int_eq(row_int(find_row(rpm, "groups", "name", "Both"), "pages"), 15);
  g_autofree char *old_path = g_strdup_printf("%s?month=2001-01", path);
  EXPECT_STATUS(sfx_call("GET", old_path, admin, NULL, &old), 200, old, "2001-01");
  ck_assert_int_eq(row_int(find_row(old, "groups", "name", "Both"), "pages"), 0);

  /* The device report (job logs only): the MFP job in both of alice's groups. */
  g_autofree char *dpath = g_strdup_printf("/api/v1/orgs/%s/report", org);
  g_autoptr(JsonNode) dr = NULL;
  EXPECT_STATUS(sfx_call("GET", dpath, admin, NULL, &dr), 200, dr, "report");
  ck_assert_int_eq(row_int(find_row(dr, "groups", "name", "Both"), "pages"), 4);
  ck_assert_int_eq(row_int(find_row(dr, "groups", "name", "Alice"), "jobs"), 1);
  ck_assert_int_eq(row_int(find_row(dr, "groups", "name", "Empty"), "jobs"), 0);

  /* Upward (section 3): RHQ sees Sales A by name and Customer A only in the
   * sum below it, each print once (15 pages), no user, group, printer or
   * customer name. */
  g_autofree char *rhq_pw = sfx_credential("rhq@a.test password: ");
  g_autofree char *rhq = sfx_login("rhq@a.test", rhq_pw);
  g_autofree char *root = sfx_org_public_id("RHQ");
  g_autofree char *cpath = g_strdup_printf("/api/v1/orgs/%s/contracts", root);
  g_autoptr(JsonNode) con = NULL;
  EXPECT_STATUS(sfx_call("GET", cpath, rhq, NULL, &con), 200, con, "RHQ's contracts");
  expect_int(sfx_member(con, "below"), "pages", 15, "RHQ's aggregate");
  expect_int(sfx_member(con, "below"), "jobs", 3, "RHQ's aggregate");
  expect_int(sfx_member(con, "below"), "color_pages", 7, "RHQ's aggregate");
  JsonObject *sales_a = find_row(con, "children", "name", "Sales A");
  ck_assert_msg(sales_a != NULL, "Sales A by name in RHQ's report");
  JsonObject *below = json_object_get_object_member(sales_a, "below");
  ck_assert_int_eq(json_object_get_int_member(below, "pages"), 15);
  g_autofree char *text = json_to_string(con, FALSE);
  static const char *const hidden[] = {"alice", "admin@", "Customer A", "Both", "Empty",
                                       "printer.example", "MFP-1", "groups"};
  for (size_t i = 0; i < G_N_ELEMENTS(hidden); i++)
    ck_assert_msg(!strstr(text, hidden[i]), "\"%s\" went upward: %s", hidden[i], text);
  /* A retry of a record (same key) and its job log again change nothing. */
  g_autoptr(JsonNode) again = NULL, con2 = NULL;
  EXPECT_STATUS(post_usage(alice, "g-1", PRINTER, 2, 3, true, NULL, &again), 200, again,
                "a retry");
  EXPECT_STATUS(sfx_call("GET", cpath, rhq, NULL, &con2), 200, con2, "RHQ's contracts again");
  expect_int(sfx_member(con2, "below"), "pages", 15, "after a retry");

  /* Bad month: 400 naming it. */
  g_autoptr(JsonNode) bm = NULL;
  g_autofree char *bpath = g_strdup_printf("%s?month=2026-00", path);
  EXPECT_ERROR(sfx_call("GET", bpath, admin, NULL, &bm), bm, 400, "bad_request", "month");
}
END_TEST

START_TEST(test_check_group)
{
  static const struct {
    const char *body;
    bool ok;
  } cases[] = {
      {"{\"name\":\"A\"}", true},      {"{\"name\":\"Ünïcode grp\"}", true},
      {"{}", false},                   {"{\"name\":\" \"}", false},
      {"{\"name\":[]}", false},        {"{\"name\":\"a\",\"b\":1}", false},
      {"{\"name\":\"\\u001b[31m\"}", false},
  };
  for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
    g_autoptr(JsonParser) p = json_parser_new();
    ck_assert(json_parser_load_from_data(p, cases[i].body, -1, NULL));
    g_autoptr(GError) error = NULL;
    const char *name = NULL;
    bool ok = kcps__server_check_group(json_node_get_object(json_parser_get_root(p)), &name,
                                       &error);
    ck_assert_msg(ok == cases[i].ok, "%s: got %d, expected %d (%s)", cases[i].body, ok,
                  cases[i].ok, error ? error->message : "-");
    if (!ok)
      ck_assert_msg(error && strstr(error->message, "\""), "%s: no field named", cases[i].body);
  }
}
END_TEST

int
main(void)
{
  Suite *s = suite_create("server-groups");
  TCase *tc = tcase_create("groups");
  tcase_add_checked_fixture(tc, sfx_setup, sfx_teardown);
  tcase_add_test(tc, test_groups_crud);
  tcase_add_test(tc, test_members);
  tcase_add_test(tc, test_report_by_group);
  suite_add_tcase(s, tc);
  TCase *tp = tcase_create("parsers");
  tcase_add_test(tp, test_check_group);
  suite_add_tcase(s, tp);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
