/* kcps-server: the organization tree, users and roles, print quotas
 * (server-orgs.c). Each route's success and refusals, bad input, and that a
 * refused request changes nothing stored. */
#include "server-fixture.h"

#include <string.h>

#define GOOD_PW "Good-pass1!x"

/* Small helpers ----------------------------------------------------------- */

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
  ck_assert_msg(id != NULL, "no user %s", email);
  return id;
}

/* Audit rows with this event (and subject, when not NULL). */
static gint64
audit_count(const char *event, const char *subject)
{
  g_mutex_lock(&sfx.server->lock);
  sqlite3_stmt *stmt = kcps__server_db_prepare(
      sfx.server, "SELECT count(*) FROM audit WHERE event = ? AND (?2 IS NULL OR subject = ?2)",
      NULL);
  gint64 n = -1;
  if (stmt) {
    sqlite3_bind_text(stmt, 1, event, -1, SQLITE_STATIC);
    if (subject)
      sqlite3_bind_text(stmt, 2, subject, -1, SQLITE_STATIC);
    if (kcps__server_db_step(sfx.server, stmt, NULL) == SQLITE_ROW)
      n = sqlite3_column_int64(stmt, 0);
  }
  sqlite3_finalize(stmt);
  g_mutex_unlock(&sfx.server->lock);
  return n;
}

/* The detail of the newest audit row with this event, or NULL; g_free. */
static char *
audit_detail(const char *event)
{
  g_mutex_lock(&sfx.server->lock);
  sqlite3_stmt *stmt = kcps__server_db_prepare(
      sfx.server, "SELECT detail FROM audit WHERE event = ? ORDER BY id DESC LIMIT 1", NULL);
  char *detail = NULL;
  if (stmt) {
    sqlite3_bind_text(stmt, 1, event, -1, SQLITE_STATIC);
    if (kcps__server_db_step(sfx.server, stmt, NULL) == SQLITE_ROW)
      detail = kcps__server_db_dup_text(stmt, 0);
  }
  sqlite3_finalize(stmt);
  g_mutex_unlock(&sfx.server->lock);
  return detail;
}

/* Stored counts that a refused request must leave alone. */
typedef struct {
  gint64 orgs, users, audit, sessions;
} counts_t;

static counts_t
counts(void)
{
  return (counts_t){kcps__server_db_count_rows(sfx.server, "orgs"),
                    kcps__server_db_count_rows(sfx.server, "users"),
                    kcps__server_db_count_rows(sfx.server, "audit"),
                    kcps__server_db_count_rows(sfx.server, "sessions")};
}

static void
expect_unchanged(counts_t before, const char *what)
{
  counts_t now = counts();
  ck_assert_msg(now.orgs == before.orgs && now.users == before.users && now.audit == before.audit,
                "%s changed what is stored: orgs %" G_GINT64_FORMAT " -> %" G_GINT64_FORMAT
                ", users %" G_GINT64_FORMAT " -> %" G_GINT64_FORMAT ", audit %" G_GINT64_FORMAT
                " -> %" G_GINT64_FORMAT,
                what, before.orgs, now.orgs, before.users, now.users, before.audit, now.audit);
}

static char *
rhq_login(void)
{
  g_autofree char *pw = sfx_credential("rhq@a.test password: ");
  ck_assert_msg(pw != NULL, "no rhq@a.test line in the demo credentials");
  return sfx_login("rhq@a.test", pw);
}

static char *
path_of(const char *fmt, const char *id)
{
  return g_strdup_printf(fmt, id);
}

/* Asserts status, naming the call. */
static void
expect_status(long got, long want, const char *what, JsonNode *answer)
{
  const char *msg = sfx_str(answer, "message");
  ck_assert_msg(got == want, "%s: got %ld (%s), expected %ld", what, got, msg ? msg : "-", want);
}

/* Calls and asserts the error answer (status, code, part of the message). */
static void
expect_error(const char *method, const char *path, const char *bearer, const char *body, bool raw,
             long status, const char *code, const char *in_message)
{
  g_autoptr(JsonNode) err = NULL;
  long got = raw ? sfx_call_raw(method, path, bearer, body, -1, NULL, NULL, &err)
                 : sfx_call(method, path, bearer, body, &err);
  sfx_expect_error(got, err, status, code, in_message);
}

/* A body with one string member, built so any text is escaped right. */
static char *
body_with(const char *name, const char *value, const char *extra_json_members)
{
  g_autoptr(JsonBuilder) b = json_builder_new();
  json_builder_begin_object(b);
  json_builder_set_member_name(b, name);
  json_builder_add_string_value(b, value);
  json_builder_end_object(b);
  g_autoptr(JsonNode) root = json_builder_get_root(b);
  g_autofree char *text = json_to_string(root, FALSE);
  if (!extra_json_members)
    return g_steal_pointer(&text);
  text[strlen(text) - 1] = '\0';
  return g_strdup_printf("%s,%s}", text, extra_json_members);
}

/* Organizations ------------------------------------------------------------ */

/* Organizations ------------------------------------------------------------ */

START_TEST(test_demo_rhq)
{
  /* The RHQ's provider admin comes with the demo, in the same file. */
  g_autofree char *rhq = rhq_login();
  g_autoptr(JsonNode) me = NULL;
  ck_assert_int_eq(sfx_call("GET", "/api/v1/me", rhq, NULL, &me), 200);
  ck_assert_str_eq(sfx_str(me, "role"), "provider_admin");
  ck_assert_str_eq(sfx_str(me, "org"), "RHQ");
  g_autofree char *pw = sfx_credential("rhq@a.test password: ");
  ck_assert_int_eq(strlen(pw), 16);
  ck_assert_str_ne(pw, sfx.admin_pw);
  ck_assert_str_ne(pw, sfx.alice_pw);
  const char *hidden[] = {"password_hash", "pin", "hash"};
  for (size_t i = 0; i < G_N_ELEMENTS(hidden); i++)
    ck_assert_msg(sfx_member(me, hidden[i]) == NULL, "/me shows %s", hidden[i]);
}
END_TEST

START_TEST(test_get_org)
{
  g_autofree char *rhq = rhq_login();
  g_autofree char *root_id = sfx_org_public_id("RHQ");
  g_autofree char *sales_id = sfx_org_public_id("Sales A");
  g_autofree char *cust_id = sfx_org_public_id("Customer A");

  g_autoptr(JsonNode) root = NULL;
  g_autofree char *path = path_of("/api/v1/orgs/%s", root_id);
  expect_status(sfx_call("GET", path, rhq, NULL, &root), 200, "GET RHQ as rhq", root);
  ck_assert_str_eq(sfx_str(root, "id"), root_id);
  ck_assert_str_eq(sfx_str(root, "name"), "RHQ");
  ck_assert_str_eq(sfx_str(root, "type"), "root");
  JsonNode *parent = sfx_member(root, "parent");
  ck_assert_msg(parent && JSON_NODE_HOLDS_NULL(parent), "the root's parent should be null");
  ck_assert_msg(sfx_str(root, "created") && strlen(sfx_str(root, "created")) == 20,
                "created: got %s, expected an RFC 3339 UTC time", sfx_str(root, "created"));

  /* Any user sees her own organization. */
  g_autofree char *alice = sfx_login("alice@a.test", sfx.alice_pw);
  g_autoptr(JsonNode) mine = NULL;
  ck_assert_int_eq(sfx_call("GET", "/api/v1/me/org", alice, NULL, &mine), 200);
  ck_assert_str_eq(sfx_str(mine, "id"), cust_id);
  ck_assert_str_eq(sfx_str(mine, "type"), "customer");
  ck_assert_str_eq(sfx_str(mine, "parent"), sales_id);

  /* The parent is not hers to look at: it looks absent. */
  g_autofree char *up = path_of("/api/v1/orgs/%s", sales_id);
  expect_error("GET", up, alice, NULL, false, 404, "not_found", NULL);
  ck_assert_int_eq(sfx_call("GET", up, NULL, NULL, NULL), 401);
}
END_TEST

START_TEST(test_bad_ids)
{
  /* Ids that are not public ids (row numbers, traversal, SQL) name nothing. */
  g_autofree char *rhq = rhq_login();
  const char *ids[] = {
      "1",
      "..",
      "%2e%2e",
      "..%2F..%2Fetc%2Fpasswd",
      "%27%20OR%201%3D1%20--",
      "00000000-0000-4000-8000-000000000000",
      "ABCDEFAB-0000-4000-8000-000000000000",
      "%00",
      "x%0Ay",
  };
  const char *fmts[] = {"/api/v1/orgs/%s", "/api/v1/orgs/%s/children", "/api/v1/orgs/%s/users",
                        "/api/v1/orgs/%s/quotas", "/api/v1/users/%s"};
  counts_t before = counts();
  for (size_t i = 0; i < G_N_ELEMENTS(ids); i++)
    for (size_t j = 0; j < G_N_ELEMENTS(fmts); j++) {
      g_autofree char *path = path_of(fmts[j], ids[i]);
      long st = sfx_call("GET", path, rhq, NULL, NULL);
      ck_assert_msg(st == 404, "GET %s: got %ld, expected 404", path, st);
      st = sfx_call("DELETE", path, rhq, NULL, NULL);
      ck_assert_msg(st == 404 || st == 405, "DELETE %s: got %ld, expected 404 or 405", path, st);
    }
  expect_unchanged(before, "requests with bad ids");
  ck_assert_int_eq(kcps__server_db_count_rows(sfx.server, "orgs"), 3);
}
END_TEST

START_TEST(test_create_child)
{
  g_autofree char *rhq = rhq_login();
  g_autofree char *root_id = sfx_org_public_id("RHQ");
  g_autofree char *path = path_of("/api/v1/orgs/%s/children", root_id);

  g_autoptr(JsonNode) sales = NULL;
  expect_status(sfx_call("POST", path, rhq, "{\"name\":\"Sales B\",\"type\":\"provider\"}", &sales),
                201, "create Sales B", sales);
  ck_assert_str_eq(sfx_str(sales, "name"), "Sales B");
  ck_assert_str_eq(sfx_str(sales, "type"), "provider");
  ck_assert_str_eq(sfx_str(sales, "parent"), root_id);
  ck_assert_int_eq(strlen(sfx_str(sales, "id")), 36);
  ck_assert_int_eq(audit_count("org.created", "Sales B"), 1);

  g_autoptr(JsonNode) list = NULL;
  ck_assert_int_eq(sfx_call("GET", path, rhq, NULL, &list), 200);
  JsonArray *orgs = sfx_array(list, "orgs");
  ck_assert_msg(orgs && json_array_get_length(orgs) == 2, "RHQ should have 2 children");
  ck_assert_str_eq(json_object_get_string_member(json_array_get_object_element(orgs, 0), "name"),
                   "Sales A");
  ck_assert_str_eq(json_object_get_string_member(json_array_get_object_element(orgs, 1), "name"),
                   "Sales B");

  /* A customer under the new provider, with its first admin. */
  g_autofree char *sales_path = path_of("/api/v1/orgs/%s/children", sfx_str(sales, "id"));
  g_autoptr(JsonNode) cust = NULL;
  expect_status(sfx_call("POST", sales_path, rhq,
                         "{\"name\":\"Customer B\",\"type\":\"customer\",\"admin\":"
                         "{\"email\":\"boss@b.test\",\"name\":\"Boss\",\"password\":\"" GOOD_PW
                         "\"}}",
                         &cust),
                201, "create Customer B with an admin", cust);
  g_autofree char *boss = sfx_login("boss@b.test", GOOD_PW);
  g_autoptr(JsonNode) me = NULL;
  ck_assert_int_eq(sfx_call("GET", "/api/v1/me", boss, NULL, &me), 200);
  ck_assert_str_eq(sfx_str(me, "role"), "customer_admin");
  ck_assert_str_eq(sfx_str(me, "org"), "Customer B");
  ck_assert_int_eq(audit_count("user.created", "boss@b.test"), 1);

  /* The first admin of a provider is a provider admin. */
  g_autoptr(JsonNode) dealer = NULL;
  expect_status(sfx_call("POST", sales_path, rhq,
                         "{\"name\":\"Dealer A\",\"type\":\"provider\",\"admin\":"
                         "{\"email\":\"dealer@d.test\",\"name\":\"D\",\"password\":\"" GOOD_PW
                         "\"}}",
                         &dealer),
                201, "create Dealer A", dealer);
  g_autofree char *d = sfx_login("dealer@d.test", GOOD_PW);
  g_autoptr(JsonNode) dme = NULL;
  ck_assert_int_eq(sfx_call("GET", "/api/v1/me", d, NULL, &dme), 200);
  ck_assert_str_eq(sfx_str(dme, "role"), "provider_admin");

  /* The dealer's admin creates its own children. */
  g_autofree char *dealer_path = path_of("/api/v1/orgs/%s/children", sfx_str(dealer, "id"));
  ck_assert_int_eq(
      sfx_call("POST", dealer_path, d, "{\"name\":\"Customer C\",\"type\":\"customer\"}", NULL),
      201);

  /* Refusals, each leaving everything as it was. */
  g_autofree char *a = sfx_login("admin@a.test", sfx.admin_pw);
  counts_t before = counts();
  g_autofree char *cust_path = path_of("/api/v1/orgs/%s/children", sfx_str(cust, "id"));
  expect_error("POST", cust_path, rhq, "{\"name\":\"Leaf\",\"type\":\"customer\"}", false, 409,
               "conflict", "leaf");
  expect_error("POST", sales_path, rhq, "{\"name\":\"customer b\",\"type\":\"customer\"}", false,
               409, "conflict", "customer b");
  g_autoptr(JsonNode) e3 = NULL;
  long st = sfx_call("POST", sales_path, rhq,
                     "{\"name\":\"Customer X\",\"type\":\"customer\",\"admin\":"
                     "{\"email\":\"BOSS@b.test\",\"name\":\"B\",\"password\":\"" GOOD_PW "\"}}",
                     &e3);
  sfx_expect_error(st, e3, 409, "conflict", "taken");
  ck_assert_msg(!strstr(sfx_str(e3, "message"), "Customer B"),
                "a taken email must not say where it is used");
  expect_error("POST", sales_path, rhq,
               "{\"name\":\"Customer X\",\"type\":\"customer\",\"admin\":"
               "{\"email\":\"x@x.test\",\"name\":\"X\",\"password\":\"short\"}}",
               false, 400, "bad_request", "password");
  /* A customer admin does not create organizations; nor anyone outside. */
  g_autofree char *a_id = sfx_org_public_id("Customer A");
  g_autofree char *a_path = path_of("/api/v1/orgs/%s/children", a_id);
  expect_error("POST", a_path, a, "{\"name\":\"Z\",\"type\":\"customer\"}", false, 403, "forbidden",
               NULL);
  expect_error("POST", path, d, "{\"name\":\"Z\",\"type\":\"customer\"}", false, 404, "not_found",
               NULL);
  expect_unchanged(before, "refused creations");
}
END_TEST

START_TEST(test_create_child_bad_input)
{
  g_autofree char *rhq = rhq_login();
  g_autofree char *root_id = sfx_org_public_id("RHQ");
  g_autofree char *path = path_of("/api/v1/orgs/%s/children", root_id);
  g_autofree char *long_name = g_strnfill(256, 'n');
  g_autofree char *long_body = body_with("name", long_name, "\"type\":\"provider\"");
  g_autofree char *ok_long_name = g_strnfill(255, 'n');
  static const struct {
    const char *body;
    const char *in_message;
  } cases[] = {
      {"{\"name\":\"S\",\"type\":\"provider\",\"colour\":\"red\"}", "unknown field \"colour\""},
      {"{\"name\":5,\"type\":\"provider\"}", "\"name\""},
      {"{\"name\":null,\"type\":\"provider\"}", "\"name\""},
      {"{\"name\":\"S\"}", "\"type\""},
      {"{\"type\":\"provider\"}", "\"name\""},
      {"{\"name\":\"S\",\"type\":\"dealer\"}", "\"type\""},
      {"{\"name\":\"S\",\"type\":\"root\"}", "\"type\""},
      {"{\"name\":\"\",\"type\":\"provider\"}", "\"name\""},
      {"{\"name\":\"   \",\"type\":\"provider\"}", "\"name\""},
      {"{\"name\":\"a\\nb\",\"type\":\"provider\"}", "\"name\""},
      {"{\"name\":\"a\\u0007b\",\"type\":\"provider\"}", "\"name\""},
      {"{\"name\":\"S\",\"type\":\"customer\",\"admin\":\"boss\"}", "admin"},
      {"{\"name\":\"S\",\"type\":\"customer\",\"admin\":{\"email\":\"b@b.test\"}}", "admin"},
      {"{\"name\":\"S\",\"type\":\"customer\",\"admin\":{\"email\":\"b@b.test\",\"name\":\"B\","
       "\"password\":\"" GOOD_PW "\",\"role\":\"provider_admin\"}}",
       "unknown field \"role\""},
      {"{\"name\":\"S\",\"type\":\"customer\",\"admin\":{\"email\":\"not-an-email\",\"name\":\"B\","
       "\"password\":\"" GOOD_PW "\"}}",
       "email"},
      {"[]", NULL},
      {"\"S\"", NULL},
      {"{\"name\":\"S\",\"type\":\"provider\"", NULL},
  };
  counts_t before = counts();
  for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
    g_autoptr(JsonNode) err = NULL;
    long st = sfx_call_raw("POST", path, rhq, cases[i].body, -1, NULL, NULL, &err);
    const char *msg = sfx_str(err, "message");
    ck_assert_msg(st == 400, "case %zu (%s): got %ld (%s), expected 400", i, cases[i].body, st,
                  msg ? msg : "-");
    ck_assert_str_eq(sfx_str(err, "error"), "bad_request");
    if (cases[i].in_message)
      ck_assert_msg(msg && strstr(msg, cases[i].in_message),
                    "case %zu: message \"%s\" should name %s", i, msg ? msg : "(none)",
                    cases[i].in_message);
  }
  expect_error("POST", path, rhq, long_body, true, 400, "bad_request", "\"name\"");
  /* Not UTF-8 (a Latin-1 é), raw in the body. */
  static const char latin1[] = "{\"name\":\"Caf\xe9\",\"type\":\"provider\"}";
  expect_error("POST", path, rhq, latin1, true, 400, "bad_request", NULL);
  expect_unchanged(before, "bad bodies");

  /* 255 bytes is fine, and SQL meta-characters are just characters. */
  g_autofree char *ok_body = body_with("name", ok_long_name, "\"type\":\"provider\"");
  ck_assert_int_eq(sfx_call("POST", path, rhq, ok_body, NULL), 201);
  static const char *const odd[] = {"x'); DROP TABLE orgs;--", "\" OR 1=1 --", "%_\\*",
                                    "Caf\xc3\xa9 \xe2\x98\x95 \xe6\x97\xa5\xe6\x9c\xac"};
  for (size_t i = 0; i < G_N_ELEMENTS(odd); i++) {
    g_autofree char *body = body_with("name", odd[i], "\"type\":\"customer\"");
    g_autoptr(JsonNode) made = NULL;
    expect_status(sfx_call("POST", path, rhq, body, &made), 201, odd[i], made);
    ck_assert_str_eq(sfx_str(made, "name"), odd[i]);
    g_autofree char *get = path_of("/api/v1/orgs/%s", sfx_str(made, "id"));
    g_autoptr(JsonNode) again = NULL;
    ck_assert_int_eq(sfx_call("GET", get, rhq, NULL, &again), 200);
    ck_assert_str_eq(sfx_str(again, "name"), odd[i]);
  }
  ck_assert_int_eq(kcps__server_db_count_rows(sfx.server, "orgs"), before.orgs + 5);
}
END_TEST

START_TEST(test_rename_org)
{
  g_autofree char *rhq = rhq_login();
  g_autofree char *cust = sfx_org_public_id("Customer A");
  g_autofree char *path = path_of("/api/v1/orgs/%s", cust);
  g_autoptr(JsonNode) renamed = NULL;
  expect_status(sfx_call("PATCH", path, rhq, "{\"name\":\"Customer A2\"}", &renamed), 200,
                "rename Customer A", renamed);
  ck_assert_str_eq(sfx_str(renamed, "name"), "Customer A2");
  ck_assert_str_eq(sfx_str(renamed, "id"), cust);
  ck_assert_int_eq(audit_count("org.renamed", "Customer A2"), 1);
  g_autofree char *detail = audit_detail("org.renamed");
  ck_assert_str_eq(detail, "was \"Customer A\"");
  /* The same name again changes and logs nothing. */
  ck_assert_int_eq(sfx_call("PATCH", path, rhq, "{\"name\":\"Customer A2\"}", NULL), 200);
  ck_assert_int_eq(audit_count("org.renamed", NULL), 1);

  sfx_add_org("Sales A", "Customer Q", "customer");
  g_autofree char *admin = sfx_login("admin@a.test", sfx.admin_pw);
  counts_t before = counts();
  expect_error("PATCH", path, rhq, "{\"name\":\"CUSTOMER Q\"}", false, 409, "conflict", NULL);
  /* Its own admin may not rename it; nor rhq the root. */
  expect_error("PATCH", path, admin, "{\"name\":\"Mine\"}", false, 403, "forbidden", NULL);
  g_autofree char *root_id = sfx_org_public_id("RHQ");
  g_autofree char *root = path_of("/api/v1/orgs/%s", root_id);
  expect_error("PATCH", root, rhq, "{\"name\":\"HQ\"}", false, 403, "forbidden", NULL);
  static const char *const bad[] = {"{}", "{\"name\":\"\"}", "{\"name\":1}",
                                    "{\"name\":\"x\",\"type\":\"provider\"}",
                                    "{\"name\":\"x\",\"parent\":null}"};
  for (size_t i = 0; i < G_N_ELEMENTS(bad); i++)
    expect_error("PATCH", path, rhq, bad[i], false, 400, "bad_request", NULL);
  expect_unchanged(before, "refused renames");
  ck_assert_int_gt(sfx_org_id("Customer A2"), 0);
  ck_assert_int_eq(sfx_org_id("Customer A"), 0);
}
END_TEST

START_TEST(test_delete_org)
{
  g_autofree char *rhq = rhq_login();
  g_autofree char *alice = sfx_login("alice@a.test", sfx.alice_pw);
  g_autofree char *admin = sfx_login("admin@a.test", sfx.admin_pw);
  g_autofree char *sales_id = sfx_org_public_id("Sales A");
  g_autofree char *cust_id = sfx_org_public_id("Customer A");
  g_autofree char *root_id = sfx_org_public_id("RHQ");
  g_autofree char *sales = path_of("/api/v1/orgs/%s", sales_id);
  g_autofree char *cust = path_of("/api/v1/orgs/%s", cust_id);
  g_autofree char *root = path_of("/api/v1/orgs/%s", root_id);

  counts_t before = counts();
  expect_error("DELETE", sales, rhq, NULL, false, 409, "conflict", "child");
  expect_error("DELETE", root, rhq, NULL, false, 403, "forbidden", NULL);
  expect_error("DELETE", cust, admin, NULL, false, 403, "forbidden", NULL);
  expect_error("DELETE", sales, alice, NULL, false, 404, "not_found", NULL);
  expect_unchanged(before, "refused deletions");

  /* A leaf goes with its users, devices, their sessions and everything
   * other features keep for them (jobs, cards, single sign-on). */
  ck_assert_int_eq(
      sfx_call("POST", "/api/v1/jobs", alice,
               "{\"client_job_id\":\"j1\",\"name\":\"doc\",\"pages\":1,\"size\":1,"
               "\"sha256\":\"0000000000000000000000000000000000000000000000000000000000000000\","
               "\"pull_url\":\"https://127.0.0.1:5571/jobs/j1\","
               "\"pull_pin\":\"sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"}",
               NULL),
      201);
  ck_assert_int_eq(sfx_call("POST", "/api/v1/me/cards", alice, "{\"card_id\":\"CARD0001\"}", NULL),
                   201);
  g_autofree char *devices = path_of("/api/v1/orgs/%s/devices", cust_id);
  ck_assert_int_eq(
      sfx_call("POST", devices, admin, "{\"serial\":\"SN1\",\"name\":\"MFP-2\"}", NULL), 201);
  g_autofree char *sso = path_of("/api/v1/orgs/%s/sso", cust_id);
  ck_assert_int_eq(sfx_call("PUT", sso, admin,
                            "{\"preset\":\"generic\",\"issuer\":\"https://idp.example\","
                            "\"client_id\":\"c\",\"client_secret\":\"s\"}",
                            NULL),
                   200);
  ck_assert_int_eq(sfx_call("DELETE", cust, rhq, NULL, NULL), 204);
  static const char *const gone[] = {"jobs", "cards", "oidc_configs", "devices"};
  for (size_t i = 0; i < G_N_ELEMENTS(gone); i++)
    ck_assert_msg(kcps__server_db_count_rows(sfx.server, gone[i]) <= 0,
                  "%s of the deleted organization remain", gone[i]);
  ck_assert_int_eq(sfx_call("GET", "/api/v1/me", alice, NULL, NULL), 401);
  ck_assert_int_eq(kcps__server_db_count_rows(sfx.server, "users"), 1);
  ck_assert_int_eq(audit_count("org.deleted", "Customer A"), 1);
  ck_assert_int_eq(sfx_call("GET", cust, rhq, NULL, NULL), 404);
  ck_assert_int_eq(sfx_call("DELETE", cust, rhq, NULL, NULL), 404);
  /* Then its parent, now childless. */
  ck_assert_int_eq(sfx_call("DELETE", sales, rhq, NULL, NULL), 204);
  ck_assert_int_eq(kcps__server_db_count_rows(sfx.server, "orgs"), 1);
}
END_TEST

/* Users --------------------------------------------------------------------- */

START_TEST(test_list_users)
{
  g_autofree char *admin = sfx_login("admin@a.test", sfx.admin_pw);
  g_autofree char *cust_id = sfx_org_public_id("Customer A");
  g_autofree char *path = path_of("/api/v1/orgs/%s/users", cust_id);
  g_autoptr(JsonNode) list = NULL;
  ck_assert_int_eq(sfx_call("GET", path, admin, NULL, &list), 200);
  JsonArray *users = sfx_array(list, "users");
  ck_assert_msg(users && json_array_get_length(users) == 2, "Customer A should list 2 users");
  JsonObject *first = json_array_get_object_element(users, 0);
  ck_assert_str_eq(json_object_get_string_member(first, "email"), "admin@a.test");
  /* Exactly these members: never a hash, a PIN or a quota. */
  static const char *const members[] = {"id", "email", "name", "role", "active", "created"};
  for (guint i = 0; i < json_array_get_length(users); i++) {
    JsonObject *u = json_array_get_object_element(users, i);
    ck_assert_int_eq(json_object_get_size(u), G_N_ELEMENTS(members));
    for (size_t m = 0; m < G_N_ELEMENTS(members); m++)
      ck_assert_msg(json_object_has_member(u, members[m]), "user lacks %s", members[m]);
    ck_assert(json_object_get_boolean_member(u, "active"));
  }
  g_autofree char *text = json_to_string(list, FALSE);
  /* The PIN as a JSON string: a random id may well contain the digits. */
  ck_assert_msg(!strstr(text, "argon2") && !strstr(text, "\"4321\""), "the list leaks a secret");

  /* Users and guests never see the list; providers never see customers'. */
  g_autofree char *alice = sfx_login("alice@a.test", sfx.alice_pw);
  expect_error("GET", path, alice, NULL, false, 403, "forbidden", NULL);
  g_autofree char *rhq = rhq_login();
  expect_error("GET", path, rhq, NULL, false, 403, "forbidden", NULL);
  /* The provider admin sees its own staff. */
  g_autofree char *root_id = sfx_org_public_id("RHQ");
  g_autofree char *own = path_of("/api/v1/orgs/%s/users", root_id);
  g_autoptr(JsonNode) staff = NULL;
  ck_assert_int_eq(sfx_call("GET", own, rhq, NULL, &staff), 200);
  ck_assert_int_eq(json_array_get_length(sfx_array(staff, "users")), 1);
}
END_TEST

START_TEST(test_create_user)
{
  g_autofree char *admin = sfx_login("admin@a.test", sfx.admin_pw);
  g_autofree char *cust_id = sfx_org_public_id("Customer A");
  g_autofree char *path = path_of("/api/v1/orgs/%s/users", cust_id);
  g_autoptr(JsonNode) made = NULL;
  expect_status(sfx_call("POST", path, admin,
                         "{\"email\":\"bob@a.test\",\"name\":\"Bob\",\"role\":\"print_manager\","
                         "\"password\":\"" GOOD_PW "\"}",
                         &made),
                201, "create bob", made);
  ck_assert_str_eq(sfx_str(made, "email"), "bob@a.test");
  ck_assert_str_eq(sfx_str(made, "role"), "print_manager");
  ck_assert_int_eq(strlen(sfx_str(made, "id")), 36);
  ck_assert_msg(sfx_member(made, "password") == NULL, "the answer echoes the password");
  g_autofree char *bob = sfx_login("bob@a.test", GOOD_PW);
  ck_assert_int_eq(audit_count("user.created", "bob@a.test"), 1);
  g_autofree char *hash = kcps__server_db_password_hash(sfx.server, "bob@a.test");
  ck_assert_msg(hash && g_str_has_prefix(hash, "$argon2id$"), "bob's password is not Argon2id");

  /* Each role of a customer organization; provider roles do not fit. */
  const char *roles[] = {"customer_admin", "customer_user", "guest_user"};
  for (size_t i = 0; i < G_N_ELEMENTS(roles); i++) {
    g_autofree char *body = g_strdup_printf(
        "{\"email\":\"r%zu@a.test\",\"name\":\"R\",\"role\":\"%s\",\"password\":\"" GOOD_PW "\"}",
        i, roles[i]);
    ck_assert_int_eq(sfx_call("POST", path, admin, body, NULL), 201);
  }

  g_autofree char *alice = sfx_login("alice@a.test", sfx.alice_pw);
  g_autofree char *rhq = rhq_login();
  counts_t before = counts();
  g_autofree char *local = g_strnfill(250, 'e');
  g_autofree char *long_email = g_strdup_printf("%s@a.test", local);
  g_autofree char *long_email_body =
      body_with("email", long_email,
                "\"name\":\"L\",\"role\":\"customer_user\",\"password\":\"" GOOD_PW "\"");
  static const struct {
    const char *body;
    long status;
    const char *in_message;
  } cases[] = {
      {"{\"email\":\"ALICE@a.test\",\"name\":\"A\",\"role\":\"customer_user\",\"password\":"
       "\"" GOOD_PW "\"}",
       409, "taken"},
      {"{\"email\":\"rhq@A.TEST\",\"name\":\"A\",\"role\":\"customer_user\",\"password\":"
       "\"" GOOD_PW "\"}",
       409, "taken"},
      {"{\"email\":\"p@a.test\",\"name\":\"P\",\"role\":\"provider_admin\",\"password\":\"" GOOD_PW
       "\"}",
       400, "\"role\""},
      {"{\"email\":\"p@a.test\",\"name\":\"P\",\"role\":\"root\",\"password\":\"" GOOD_PW "\"}",
       400, "\"role\""},
      {"{\"email\":\"p@a.test\",\"name\":\"P\",\"role\":\"customer_user\",\"password\":\"short\"}",
       400, "password"},
      {"{\"email\":\"p@a.test\",\"name\":\"P\",\"role\":\"customer_user\"}", 400, "\"password\""},
      {"{\"email\":\"p@a.test\",\"name\":\"P\",\"role\":\"customer_user\",\"password\":\"" GOOD_PW
       "\",\"pin\":\"1234\"}",
       400, "unknown field \"pin\""},
      {"{\"email\":\"p@a.test\",\"name\":\"P\",\"role\":\"customer_user\",\"password\":\"" GOOD_PW
       "\",\"active\":true}",
       400, "unknown field \"active\""},
      {"{\"email\":\"no-at\",\"name\":\"P\",\"role\":\"customer_user\",\"password\":\"" GOOD_PW
       "\"}",
       400, "\"email\""},
      {"{\"email\":[\"p@a.test\"],\"name\":\"P\",\"role\":\"customer_user\",\"password\":\"" GOOD_PW
       "\"}",
       400, "\"email\""},
      {"{\"email\":\"p@a.test\",\"name\":\"a\\u0000b\",\"role\":\"customer_user\",\"password\":"
       "\"" GOOD_PW "\"}",
       400, NULL},
      {"{\"email\":\"p@a.test\",\"name\":\"P\",\"role\":\"Customer_User\",\"password\":\"" GOOD_PW
       "\"}",
       400, "\"role\""},
  };
  for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
    g_autoptr(JsonNode) err = NULL;
    long st = sfx_call_raw("POST", path, admin, cases[i].body, -1, NULL, NULL, &err);
    const char *msg = sfx_str(err, "message");
    ck_assert_msg(st == cases[i].status, "case %zu: got %ld (%s), expected %ld", i, st,
                  msg ? msg : "-", cases[i].status);
    if (cases[i].in_message)
      ck_assert_msg(msg && strstr(msg, cases[i].in_message),
                    "case %zu: message \"%s\" should name %s", i, msg ? msg : "(none)",
                    cases[i].in_message);
    ck_assert_msg(!msg || (!strstr(msg, "Customer") && !strstr(msg, "RHQ")),
                  "case %zu: the message names an organization", i);
  }
  expect_error("POST", path, admin, long_email_body, true, 400, "bad_request", "\"email\"");
  static const char latin1[] = "{\"email\":\"q@a.test\",\"name\":\"J\xfcrgen\",\"role\":\"customer_"
                               "user\",\"password\":\"" GOOD_PW "\"}";
  expect_error("POST", path, admin, latin1, true, 400, "bad_request", NULL);

  /* Who may not: a print manager, a user, a provider, a stranger. */
  const char *body =
      "{\"email\":\"z@a.test\",\"name\":\"Z\",\"role\":\"customer_user\",\"password\":\"" GOOD_PW
      "\"}";
  ck_assert_int_eq(sfx_call("POST", path, bob, body, NULL), 403);
  ck_assert_int_eq(sfx_call("POST", path, alice, body, NULL), 403);
  ck_assert_int_eq(sfx_call("POST", path, rhq, body, NULL), 403);
  ck_assert_int_eq(sfx_call("POST", path, NULL, body, NULL), 401);
  g_autofree char *sales_id = sfx_org_public_id("Sales A");
  g_autofree char *other = path_of("/api/v1/orgs/%s/users", sales_id);
  ck_assert_int_eq(sfx_call("POST", other, admin, body, NULL), 404);
  expect_unchanged(before, "refused user creations");

  /* SQL meta-characters in a name are stored as they are. */
  g_autofree char *odd = body_with("name", "Robert'); DROP TABLE users;--",
                                   "\"email\":\"bobby@a.test\",\"role\":\"guest_user\","
                                   "\"password\":\"" GOOD_PW "\"");
  g_autoptr(JsonNode) bobby = NULL;
  ck_assert_int_eq(sfx_call("POST", path, admin, odd, &bobby), 201);
  ck_assert_str_eq(sfx_str(bobby, "name"), "Robert'); DROP TABLE users;--");
  ck_assert_int_eq(kcps__server_db_count_rows(sfx.server, "users"), before.users + 1);
}
END_TEST

START_TEST(test_provider_staff)
{
  /* A provider admin manages her own organization's staff, with provider
   * roles only. */
  g_autofree char *rhq = rhq_login();
  g_autofree char *root_id = sfx_org_public_id("RHQ");
  g_autofree char *path = path_of("/api/v1/orgs/%s/users", root_id);
  g_autoptr(JsonNode) made = NULL;
  expect_status(
      sfx_call("POST", path, rhq,
               "{\"email\":\"help@rhq.test\",\"name\":\"Help\",\"role\":\"provider_support\","
               "\"password\":\"" GOOD_PW "\"}",
               &made),
      201, "create support", made);
  expect_error("POST", path, rhq,
               "{\"email\":\"c@rhq.test\",\"name\":\"C\",\"role\":\"customer_admin\","
               "\"password\":\"" GOOD_PW "\"}",
               false, 400, "bad_request", "provider_admin or provider_support");
  /* Support looks but does not change. */
  g_autofree char *help = sfx_login("help@rhq.test", GOOD_PW);
  ck_assert_int_eq(sfx_call("GET", path, help, NULL, NULL), 403);
  g_autofree char *user = path_of("/api/v1/users/%s", sfx_str(made, "id"));
  ck_assert_int_eq(sfx_call("PATCH", user, help, "{\"name\":\"Me\"}", NULL), 403);
}
END_TEST

START_TEST(test_get_user)
{
  g_autofree char *admin = sfx_login("admin@a.test", sfx.admin_pw);
  g_autofree char *alice_id = user_public_id("alice@a.test");
  g_autofree char *path = path_of("/api/v1/users/%s", alice_id);
  g_autoptr(JsonNode) u = NULL;
  ck_assert_int_eq(sfx_call("GET", path, admin, NULL, &u), 200);
  ck_assert_str_eq(sfx_str(u, "email"), "alice@a.test");
  ck_assert_str_eq(sfx_str(u, "role"), "customer_user");
  ck_assert_int_eq(json_object_get_size(json_node_get_object(u)), 6);

  g_autofree char *alice = sfx_login("alice@a.test", sfx.alice_pw);
  g_autofree char *admin_id = user_public_id("admin@a.test");
  g_autofree char *admin_path = path_of("/api/v1/users/%s", admin_id);
  ck_assert_int_eq(sfx_call("GET", admin_path, alice, NULL, NULL), 403);
  g_autofree char *rhq = rhq_login();
  ck_assert_int_eq(sfx_call("GET", path, rhq, NULL, NULL), 403);
  /* Someone of another tree looks absent to her. */
  g_autofree char *rhq_id = user_public_id("rhq@a.test");
  g_autofree char *rhq_path = path_of("/api/v1/users/%s", rhq_id);
  expect_error("GET", rhq_path, admin, NULL, false, 404, "not_found", NULL);
  ck_assert_int_eq(
      sfx_call("GET", "/api/v1/users/4a3c2f7e-0000-4000-8000-000000000000", admin, NULL, NULL),
      404);
}
END_TEST

START_TEST(test_patch_user)
{
  g_autofree char *admin = sfx_login("admin@a.test", sfx.admin_pw);
  g_autofree char *alice = sfx_login("alice@a.test", sfx.alice_pw);
  g_autofree char *alice_id = user_public_id("alice@a.test");
  g_autofree char *path = path_of("/api/v1/users/%s", alice_id);

  g_autoptr(JsonNode) u = NULL;
  ck_assert_int_eq(sfx_call("PATCH", path, admin, "{\"name\":\"Alice B.\"}", &u), 200);
  ck_assert_str_eq(sfx_str(u, "name"), "Alice B.");
  ck_assert_str_eq(sfx_str(u, "role"), "customer_user");
  ck_assert_int_eq(sfx_call("GET", "/api/v1/me", alice, NULL, NULL), 200);

  g_autoptr(JsonNode) u2 = NULL;
  ck_assert_int_eq(sfx_call("PATCH", path, admin, "{\"role\":\"print_manager\"}", &u2), 200);
  ck_assert_str_eq(sfx_str(u2, "role"), "print_manager");
  ck_assert_int_eq(audit_count("role.changed", "alice@a.test"), 1);
  g_autofree char *detail = audit_detail("role.changed");
  ck_assert_str_eq(detail, "customer_user -> print_manager");

  /* Deactivation ends her sessions and her logins. */
  g_autoptr(JsonNode) u3 = NULL;
  ck_assert_int_eq(sfx_call("PATCH", path, admin, "{\"active\":false}", &u3), 200);
  ck_assert(!json_object_get_boolean_member(json_node_get_object(u3), "active"));
  ck_assert_int_eq(audit_count("user.deactivated", "alice@a.test"), 1);
  ck_assert_int_eq(sfx_call("GET", "/api/v1/me", alice, NULL, NULL), 401);
  g_autofree char *login = body_with("password", sfx.alice_pw, "\"email\":\"alice@a.test\"");
  ck_assert_int_eq(sfx_call("POST", "/api/v1/login", NULL, login, NULL), 401);
  ck_assert_int_eq(sfx_call("PATCH", path, admin, "{\"active\":true}", NULL), 200);
  ck_assert_int_eq(audit_count("user.activated", "alice@a.test"), 1);
  g_autofree char *again = sfx_login("alice@a.test", sfx.alice_pw);
  g_autofree char *rhq = rhq_login();

  /* The last active admin stays one. */
  counts_t before = counts();
  g_autofree char *admin_id = user_public_id("admin@a.test");
  g_autofree char *self = path_of("/api/v1/users/%s", admin_id);
  expect_error("PATCH", self, admin, "{\"active\":false}", false, 409, "conflict",
               "last active customer_admin");
  expect_error("PATCH", self, admin, "{\"role\":\"customer_user\"}", false, 409, "conflict", NULL);
  static const char *const bad[] = {
      "{}",
      "{\"active\":\"no\"}",
      "{\"active\":0}",
      "{\"role\":\"provider_admin\"}",
      "{\"role\":null}",
      "{\"email\":\"new@a.test\"}",
      "{\"password\":\"" GOOD_PW "\"}",
      "{\"name\":\"\"}",
      "{\"name\":\"ok\",\"org\":\"x\"}",
  };
  for (size_t i = 0; i < G_N_ELEMENTS(bad); i++)
    expect_error("PATCH", path, admin, bad[i], false, 400, "bad_request", NULL);
  /* Not theirs to change: a user, a provider. */
  ck_assert_int_eq(sfx_call("PATCH", self, again, "{\"name\":\"x\"}", NULL), 403);
  ck_assert_int_eq(sfx_call("PATCH", path, rhq, "{\"name\":\"x\"}", NULL), 403);
  expect_unchanged(before, "refused changes");
  g_autoptr(JsonNode) still = NULL;
  ck_assert_int_eq(sfx_call("GET", path, admin, NULL, &still), 200);
  ck_assert_str_eq(sfx_str(still, "name"), "Alice B.");
  ck_assert_str_eq(sfx_str(still, "role"), "print_manager");

  /* With a second admin, the first may step down. */
  ck_assert_int_eq(sfx_call("PATCH", path, admin, "{\"role\":\"customer_admin\"}", NULL), 200);
  ck_assert_int_eq(sfx_call("PATCH", self, admin, "{\"role\":\"customer_user\"}", NULL), 200);
}
END_TEST

START_TEST(test_delete_user)
{
  g_autofree char *admin = sfx_login("admin@a.test", sfx.admin_pw);
  g_autofree char *alice = sfx_login("alice@a.test", sfx.alice_pw);
  g_autofree char *rhq = rhq_login();
  g_autofree char *alice_id = user_public_id("alice@a.test");
  g_autofree char *admin_id = user_public_id("admin@a.test");
  g_autofree char *path = path_of("/api/v1/users/%s", alice_id);
  g_autofree char *self = path_of("/api/v1/users/%s", admin_id);

  counts_t before = counts();
  ck_assert_int_eq(sfx_call("DELETE", path, alice, NULL, NULL), 403);
  ck_assert_int_eq(sfx_call("DELETE", path, rhq, NULL, NULL), 403);
  expect_error("DELETE", self, admin, NULL, false, 409, "conflict", "last");
  expect_unchanged(before, "refused deletions");

  ck_assert_int_eq(sfx_call("DELETE", path, admin, NULL, NULL), 204);
  ck_assert_int_eq(sfx_call("GET", "/api/v1/me", alice, NULL, NULL), 401);
  ck_assert_int_eq(kcps__server_db_count_rows(sfx.server, "users"), before.users - 1);
  ck_assert_int_eq(audit_count("user.deleted", "alice@a.test"), 1);
  ck_assert_int_eq(sfx_call("DELETE", path, admin, NULL, NULL), 404);
  ck_assert_int_eq(sfx_call("GET", path, admin, NULL, NULL), 404);
}
END_TEST

/* Print quotas -------------------------------------------------------------- */

static JsonObject *
quota_row(JsonArray *rows, const char *email)
{
  for (guint i = 0; rows && i < json_array_get_length(rows); i++) {
    JsonObject *row = json_array_get_object_element(rows, i);
    if (g_strcmp0(json_object_get_string_member(row, "email"), email) == 0)
      return row;
  }
  return NULL;
}

START_TEST(test_quotas)
{
  g_autofree char *admin = sfx_login("admin@a.test", sfx.admin_pw);
  g_autofree char *cust_id = sfx_org_public_id("Customer A");
  g_autofree char *users = path_of("/api/v1/orgs/%s/users", cust_id);
  ck_assert_int_eq(sfx_call("POST", users, admin,
                            "{\"email\":\"pm@a.test\",\"name\":\"PM\",\"role\":\"print_manager\","
                            "\"password\":\"" GOOD_PW "\"}",
                            NULL),
                   201);
  g_autofree char *pm = sfx_login("pm@a.test", GOOD_PW);
  g_autofree char *list_path = path_of("/api/v1/orgs/%s/quotas", cust_id);
  g_autofree char *alice_id = user_public_id("alice@a.test");
  g_autofree char *quota = path_of("/api/v1/users/%s/quota", alice_id);

  g_autoptr(JsonNode) list = NULL;
  ck_assert_int_eq(sfx_call("GET", list_path, pm, NULL, &list), 200);
  JsonArray *q = sfx_array(list, "quotas");
  ck_assert_msg(q && json_array_get_length(q) == 3, "3 users in Customer A");
  JsonObject *first = json_array_get_object_element(q, 0);
  ck_assert_int_eq(json_object_get_size(first), 5);
  ck_assert(json_object_get_null_member(first, "quota_pages"));
  ck_assert(json_object_get_null_member(first, "quota_color_pages"));

  g_autoptr(JsonNode) set = NULL;
  ck_assert_int_eq(sfx_call("PUT", quota, pm, "{\"pages\":100,\"color_pages\":10}", &set), 200);
  ck_assert_int_eq(sfx_int(set, "quota_pages"), 100);
  ck_assert_int_eq(sfx_int(set, "quota_color_pages"), 10);
  ck_assert_str_eq(sfx_str(set, "email"), "alice@a.test");
  ck_assert_int_eq(audit_count("quota.changed", "alice@a.test"), 1);
  g_autofree char *detail = audit_detail("quota.changed");
  ck_assert_str_eq(detail, "pages 100, color pages 10");

  /* A print manager touches quotas only (Table 2-1). */
  ck_assert_int_eq(sfx_call("GET", users, pm, NULL, NULL), 403);
  g_autofree char *alice_path = path_of("/api/v1/users/%s", alice_id);
  ck_assert_int_eq(sfx_call("GET", alice_path, pm, NULL, NULL), 403);
  ck_assert_int_eq(sfx_call("PATCH", alice_path, pm, "{\"name\":\"x\"}", NULL), 403);

  g_autofree char *alice = sfx_login("alice@a.test", sfx.alice_pw);
  g_autofree char *rhq = rhq_login();
  counts_t before = counts();
  static const char *const bad[] = {
      "{\"pages\":-1,\"color_pages\":null}",
      "{\"pages\":\"100\",\"color_pages\":null}",
      "{\"pages\":1.5,\"color_pages\":null}",
      "{\"pages\":10,\"color_pages\":11}",
      "{\"pages\":10}",
      "{\"color_pages\":1}",
      "{\"pages\":10,\"color_pages\":1,\"x\":1}",
      "{\"pages\":10000001,\"color_pages\":null}",
      "{\"pages\":true,\"color_pages\":null}",
  };
  for (size_t i = 0; i < G_N_ELEMENTS(bad); i++)
    expect_error("PUT", quota, pm, bad[i], false, 400, "bad_request", NULL);
  ck_assert_int_eq(sfx_call("PUT", quota, alice, "{\"pages\":1,\"color_pages\":1}", NULL), 403);
  ck_assert_int_eq(sfx_call("PUT", quota, rhq, "{\"pages\":1,\"color_pages\":1}", NULL), 403);
  ck_assert_int_eq(sfx_call("GET", list_path, alice, NULL, NULL), 403);
  ck_assert_int_eq(sfx_call("GET", list_path, rhq, NULL, NULL), 403);
  expect_unchanged(before, "refused quota changes");
  g_autoptr(JsonNode) after = NULL;
  ck_assert_int_eq(sfx_call("GET", list_path, admin, NULL, &after), 200);
  JsonObject *row = quota_row(sfx_array(after, "quotas"), "alice@a.test");
  ck_assert_ptr_nonnull(row);
  ck_assert_int_eq(json_object_get_int_member(row, "quota_pages"), 100);

  /* null is unlimited again; the customer admin may set it too. */
  g_autoptr(JsonNode) cleared = NULL;
  ck_assert_int_eq(sfx_call("PUT", quota, admin, "{\"pages\":null,\"color_pages\":null}", &cleared),
                   200);
  ck_assert(JSON_NODE_HOLDS_NULL(sfx_member(cleared, "quota_pages")));
  ck_assert_int_eq(audit_count("quota.changed", "alice@a.test"), 2);
}
END_TEST

int
main(void)
{
  Suite *s = suite_create("server-orgs");
  struct {
    const char *name;
    const TTest *tests[8];
  } cases[] = {
      {"orgs",
       {test_demo_rhq, test_get_org, test_bad_ids, test_create_child, test_create_child_bad_input,
        test_rename_org, test_delete_org, NULL}},
      {"users",
       {test_list_users, test_create_user, test_provider_staff, test_get_user, test_patch_user,
        test_delete_user, NULL}},
      {"quotas", {test_quotas, NULL}},
  };
  for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
    TCase *tc = tcase_create(cases[i].name);
    tcase_add_checked_fixture(tc, sfx_setup, sfx_teardown);
    tcase_set_timeout(tc, 120);
    for (size_t j = 0; cases[i].tests[j]; j++)
      tcase_add_test(tc, cases[i].tests[j]);
    suite_add_tcase(s, tc);
  }
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
