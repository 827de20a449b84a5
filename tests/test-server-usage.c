/* kcps-server's usage records and quotas (server-usage.c) over real HTTPS:
 * idempotent records, 409 on a reused key, offline records in their own
 * month, one count per print between records and MFP job logs, the quota
 * check and its message, the signed quota statement (verifies; tampered or
 * expired does not), the organization's month report and who may see it. */
#include "server-fixture.h"

#include "common/crypto.h"

#include <curl/curl.h>
#include <string.h>

#define PRINTER "ipps://printer.example:443/ipp/print"

/* RFC 3339 of a unix time (g_free). */
static char *
iso(gint64 t)
{
  return kcps__server_iso_time(t);
}

/* POST /api/v1/usage with the fields given (job_id may be NULL). */
static long
post_usage(const char *token, const char *key, const char *printer, gint64 t, gint64 pages,
           gint64 copies, bool color, const char *job_id, JsonNode **out)
{
  g_autofree char *when = iso(t);
  g_autofree char *job = job_id ? g_strdup_printf(",\"job_id\":\"%s\"", job_id) : g_strdup("");
  g_autofree char *body = g_strdup_printf(
      "{\"idempotency_key\":\"%s\",\"printer\":\"%s\",\"time\":\"%s\",\"job_type\":\"print\","
      "\"pages\":%" G_GINT64_FORMAT ",\"copies\":%" G_GINT64_FORMAT
      ",\"color\":%s,\"duplex\":true%s}",
      key, printer, when, pages, copies, color ? "true" : "false", job);
  return sfx_call("POST", "/api/v1/usage", token, body, out);
}

static void
expect_status(long got, long want, JsonNode *answer, const char *what)
{
  g_autofree char *text = answer ? json_to_string(answer, FALSE) : g_strdup("(none)");
  ck_assert_msg(got == want, "%s: got %ld, expected %ld (%s)", what, got, want, text);
}

static void
expect_int(JsonNode *node, const char *name, gint64 want, const char *what)
{
  gint64 got = sfx_int(node, name);
  ck_assert_msg(got == want, "%s: %s is %" G_GINT64_FORMAT ", expected %" G_GINT64_FORMAT, what,
                name, got, want);
}

static bool
is_null(JsonNode *node, const char *name)
{
  JsonNode *m = sfx_member(node, name);
  return m && JSON_NODE_HOLDS_NULL(m);
}

/* GET /api/v1/me/quota[?month=]; asserts 200. */
static JsonNode *
my_quota(const char *token, const char *month)
{
  g_autofree char *path =
      month ? g_strdup_printf("/api/v1/me/quota?month=%s", month) : g_strdup("/api/v1/me/quota");
  JsonNode *a = NULL;
  long st = sfx_call("GET", path, token, NULL, &a);
  expect_status(st, 200, a, path);
  return a;
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

static void
set_quota(const char *token, const char *email, const char *body)
{
  g_autofree char *uid = user_public_id(email);
  g_autofree char *path = g_strdup_printf("/api/v1/users/%s/quota", uid);
  g_autoptr(JsonNode) a = NULL;
  long st = sfx_call("PUT", path, token, body, &a);
  expect_status(st, 200, a, "PUT quota");
}

/* The first second of the month holding t, UTC. */
static gint64
month_start_of(gint64 t)
{
  g_autoptr(GDateTime) dt = g_date_time_new_from_unix_utc(t);
  g_autoptr(GDateTime) first =
      g_date_time_new_utc(g_date_time_get_year(dt), g_date_time_get_month(dt), 1, 0, 0, 0);
  return g_date_time_to_unix(first);
}

static void
month_text(gint64 t, char out[8])
{
  g_autoptr(GDateTime) dt = g_date_time_new_from_unix_utc(t);
  g_snprintf(out, 8, "%04d-%02d", g_date_time_get_year(dt), g_date_time_get_month(dt));
}

/* Records -------------------------------------------------------------- */

START_TEST(test_record_idempotent)
{
  g_autofree char *alice = sfx_login("alice@a.test", sfx.alice_pw);
  gint64 now = kcps__server_now();
  g_autoptr(JsonNode) first = NULL, again = NULL, other = NULL, changed = NULL;
  long st = post_usage(alice, "rec-1", PRINTER, now - 60, 3, 2, false, NULL, &first);
  expect_status(st, 201, first, "first post");
  expect_int(first, "pages", 3, "first post");
  expect_int(first, "copies", 2, "first post");
  ck_assert_str_eq(sfx_str(first, "printer"), PRINTER);

  /* A retry after a lost answer: the same record, not a second one. */
  st = post_usage(alice, "rec-1", PRINTER, now - 60, 3, 2, false, NULL, &again);
  expect_status(st, 200, again, "retry");
  ck_assert_str_eq(sfx_str(again, "id"), sfx_str(first, "id"));
  ck_assert_int_eq(kcps__server_db_count_rows(sfx.server, "usage_records"), 1);

  /* The key again with other content: 409, nothing stored. */
  st = post_usage(alice, "rec-1", PRINTER, now - 60, 4, 2, false, NULL, &changed);
  sfx_expect_error(st, changed, 409, "conflict", "rec-1");
  ck_assert_int_eq(kcps__server_db_count_rows(sfx.server, "usage_records"), 1);

  /* Another user's key space is her own. */
  g_autofree char *admin = sfx_login("admin@a.test", sfx.admin_pw);
  st = post_usage(admin, "rec-1", PRINTER, now - 60, 1, 1, false, NULL, &other);
  expect_status(st, 201, other, "admin's rec-1");

  g_autoptr(JsonNode) q = my_quota(alice, NULL);
  expect_int(q, "used_pages", 6, "alice's quota after a retry");
  expect_int(q, "used_color_pages", 0, "alice's quota after a retry");
  ck_assert(is_null(q, "quota_pages") && is_null(q, "remaining_pages"));
}
END_TEST

START_TEST(test_record_refused)
{
  g_autofree char *alice = sfx_login("alice@a.test", sfx.alice_pw);
  gint64 now = kcps__server_now();
  g_autoptr(JsonNode) a = NULL, b = NULL, c = NULL, d = NULL, e = NULL, f = NULL;
  long st = post_usage(alice, "r-future", PRINTER, now + 3600, 1, 1, false, NULL, &a);
  sfx_expect_error(st, a, 400, "bad_request", "future");
  st = post_usage(alice, "r-old", PRINTER, now - 63 * 24 * 3600, 1, 1, false, NULL, &b);
  sfx_expect_error(st, b, 400, "bad_request", "older than 62 days");
  st = sfx_call("POST", "/api/v1/usage", alice,
                "{\"idempotency_key\":\"x\",\"printer\":\"p\",\"time\":\"2026-01-01 10:00\","
                "\"pages\":1}",
                &c);
  sfx_expect_error(st, c, 400, "bad_request", "time");
  st = sfx_call("POST", "/api/v1/usage", alice,
                "{\"idempotency_key\":\"x\",\"printer\":\"p\",\"pages\":1,\"user\":\"bob\"}", &d);
  sfx_expect_error(st, d, 400, "bad_request", "unknown field");
  st = post_usage(alice, "r-job", PRINTER, now, 1, 1, false, "bad\\u0001id", &e);
  sfx_expect_error(st, e, 400, "bad_request", "job_id");
  st = post_usage(alice, "r-type", PRINTER, now, 0, 1, false, NULL, &f);
  sfx_expect_error(st, f, 400, "bad_request", "pages");
  ck_assert_int_eq(kcps__server_db_count_rows(sfx.server, "usage_records"), 0);
}
END_TEST

/* Offline records posted late count in the month of their own time; the
 * server's clock is moved to ten minutes after a month began. */
START_TEST(test_month_boundary)
{
  gint64 real = kcps__server_now();
  g_autoptr(GDateTime) dt = g_date_time_new_from_unix_utc(month_start_of(real));
  g_autoptr(GDateTime) next = g_date_time_add_months(dt, 1);
  gint64 boundary = g_date_time_to_unix(next);
  sfx_skew_clock(boundary + 600 - real);
  ck_assert_int_ge(kcps__server_now(), boundary + 600);

  g_autofree char *alice = sfx_login("alice@a.test", sfx.alice_pw);
  g_autoptr(JsonNode) a = NULL, b = NULL, c = NULL;
  expect_status(post_usage(alice, "before", PRINTER, boundary - 1, 5, 1, true, NULL, &a), 201, a,
                "last second of the old month");
  expect_status(post_usage(alice, "after", PRINTER, boundary, 7, 1, false, NULL, &b), 201, b,
                "first second of the new month");
  /* Forty days late, still accepted, in its own month. */
  expect_status(post_usage(alice, "late", PRINTER, boundary - 40 * 24 * 3600, 11, 1, false, NULL,
                           &c),
                201, c, "offline record of 40 days ago");

  char old_month[8], new_month[8], late_month[8];
  month_text(boundary - 1, old_month);
  month_text(boundary, new_month);
  month_text(boundary - 40 * 24 * 3600, late_month);
  g_autoptr(JsonNode) now_q = my_quota(alice, NULL);
  ck_assert_str_eq(sfx_str(now_q, "month"), new_month);
  expect_int(now_q, "used_pages", 7, "the new month");
  expect_int(now_q, "used_color_pages", 0, "the new month");
  g_autoptr(JsonNode) old_q = my_quota(alice, old_month);
  gint64 want_old = 5 + (strcmp(late_month, old_month) == 0 ? 11 : 0);
  expect_int(old_q, "used_pages", want_old, "the old month");
  expect_int(old_q, "used_color_pages", 5, "the old month");
  if (strcmp(late_month, old_month) != 0) {
    g_autoptr(JsonNode) late_q = my_quota(alice, late_month);
    expect_int(late_q, "used_pages", 11, "the late record's month");
  }
}
END_TEST

/* A job pulled at an MFP: its job log and kcpsd's record of it are one. */
START_TEST(test_no_double_count)
{
  g_autofree char *alice = sfx_login("alice@a.test", sfx.alice_pw);
  g_autoptr(JsonNode) job = NULL;
  long st = sfx_call(
      "POST", "/api/v1/jobs", alice,
      "{\"client_job_id\":\"dc-1\",\"name\":\"doc\",\"pages\":4,\"size\":10,"
      "\"sha256\":\"0000000000000000000000000000000000000000000000000000000000000000\","
      "\"pull_url\":\"https://127.0.0.1:5571/jobs/dc-1\","
      "\"pull_pin\":\"sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"}",
      &job);
  expect_status(st, 201, job, "register job");
  const char *job_id = sfx_str(job, "id");
  gint64 now = kcps__server_now();

  /* kcpsd records the print first (it heard of it before the MFP's log). */
  g_autoptr(JsonNode) r = NULL, r2 = NULL;
  expect_status(post_usage(alice, "dc-rec", "MFP-1", now, 4, 1, true, job_id, &r), 201, r,
                "record naming the job");
  ck_assert(sfx_member(r, "device") && json_node_get_boolean(sfx_member(r, "device")));
  ck_assert(json_node_get_boolean(sfx_member(r, "job_linked")));
  g_autoptr(JsonNode) q1 = my_quota(alice, NULL);
  expect_int(q1, "used_pages", 4, "before the job log");

  /* The MFP's log arrives: the log counts, the record no longer does. */
  g_autofree char *at = sfx_pin_login();
  g_autofree char *tpath = g_strdup_printf("/api/v1/device/jobs/%s/ticket", job_id);
  g_autoptr(JsonNode) t = NULL, l = NULL;
  expect_status(sfx_call("POST", tpath, at, NULL, &t), 201, t, "ticket");
  g_autofree char *lpath = g_strdup_printf("/api/v1/device/jobs/%s/log", job_id);
  expect_status(sfx_call("POST", lpath, at,
                         "{\"pages\":4,\"color_pages\":3,\"duplex\":true,\"status\":\"completed\"}",
                         &l),
                201, l, "job log");
  g_autoptr(JsonNode) q2 = my_quota(alice, NULL);
  expect_int(q2, "used_pages", 4, "after the job log");
  expect_int(q2, "used_color_pages", 3, "after the job log (the device's colour count)");

  /* A second record of the same print, named by the client_job_id kcpsd
   * registered it under (another idempotency key): still the log's one
   * count. A job of someone else, or of nobody, links nothing and counts. */
  g_autoptr(JsonNode) rc = NULL, ro = NULL;
  expect_status(post_usage(alice, "dc-rec-2", "MFP-1", now, 4, 1, true, "dc-1", &rc), 201, rc,
                "record naming the client job id");
  ck_assert(json_node_get_boolean(sfx_member(rc, "job_linked")));
  g_autofree char *admin = sfx_login("admin@a.test", sfx.admin_pw);
  expect_status(post_usage(admin, "dc-other", PRINTER, now, 1, 1, false, job_id, &ro), 201, ro,
                "record naming another user's job");
  ck_assert(!json_node_get_boolean(sfx_member(ro, "job_linked")));
  g_autoptr(JsonNode) q25 = my_quota(alice, NULL);
  expect_int(q25, "used_pages", 4, "after a second record of the same job");

  /* A print from another route (no job named) adds. */
  expect_status(post_usage(alice, "direct", PRINTER, now, 2, 3, false, NULL, &r2), 201, r2,
                "direct print");
  g_autoptr(JsonNode) q3 = my_quota(alice, NULL);
  expect_int(q3, "used_pages", 10, "with a direct print");
  /* The old usage route still reads the job logs. */
  g_autoptr(JsonNode) u = NULL;
  expect_status(sfx_call("GET", "/api/v1/me/usage", alice, NULL, &u), 200, u, "me/usage");
  expect_int(u, "pages", 4, "me/usage");
}
END_TEST

/* Quotas --------------------------------------------------------------- */

START_TEST(test_quota_check)
{
  g_autofree char *admin = sfx_login("admin@a.test", sfx.admin_pw);
  g_autofree char *alice = sfx_login("alice@a.test", sfx.alice_pw);
  set_quota(admin, "alice@a.test", "{\"pages\":10,\"color_pages\":4}");
  gint64 now = kcps__server_now();
  g_autoptr(JsonNode) r1 = NULL, r2 = NULL;
  expect_status(post_usage(alice, "q-1", PRINTER, now, 7, 1, false, NULL, &r1), 201, r1, "mono");

  g_autoptr(JsonNode) q = my_quota(alice, NULL);
  expect_int(q, "quota_pages", 10, "quota");
  expect_int(q, "quota_color_pages", 4, "quota");
  expect_int(q, "remaining_pages", 3, "quota");
  expect_int(q, "remaining_color_pages", 3, "quota (colour bounded by the total)");

  g_autoptr(JsonNode) ok = NULL, over = NULL, over_color = NULL, bad = NULL;
  long st = sfx_call("POST", "/api/v1/me/quota/check", alice, "{\"pages\":3}", &ok);
  expect_status(st, 200, ok, "3 pages with 3 left");
  ck_assert(json_node_get_boolean(sfx_member(ok, "allowed")));
  st = sfx_call("POST", "/api/v1/me/quota/check", alice, "{\"pages\":2,\"copies\":2}", &over);
  sfx_expect_error(st, over, 409, "quota_exceeded",
                   "needs 4 pages and 3 of your monthly 10 pages are left");
  ck_assert(!json_node_get_boolean(sfx_member(over, "allowed")));
  expect_int(over, "remaining_pages", 3, "refusal");

  /* Colour: 4 allowed, 2 used, so 3 colour pages do not fit. */
  g_autoptr(JsonNode) r3 = NULL;
  expect_status(post_usage(alice, "q-2", PRINTER, now, 1, 2, true, NULL, &r3), 201, r3,
                "colour 2 pages");
  g_autoptr(JsonNode) q2 = my_quota(alice, NULL);
  expect_int(q2, "used_pages", 9, "after colour");
  expect_int(q2, "used_color_pages", 2, "after colour");
  st = sfx_call("POST", "/api/v1/me/quota/check", alice,
                "{\"pages\":1,\"copies\":1,\"color\":true}", &ok);
  ck_assert_int_eq(st, 200);
  st = sfx_call("POST", "/api/v1/me/quota/check", alice, "{\"pages\":1,\"copies\":3,\"color\":true}",
                &over_color);
  sfx_expect_error(st, over_color, 409, "quota_exceeded", "needs 3 pages and 1 of your");
  st = sfx_call("POST", "/api/v1/me/quota/check", alice, "{\"pages\":0}", &bad);
  sfx_expect_error(st, bad, 400, "bad_request", "pages");

  /* Colour limit alone: the total is unlimited. */
  set_quota(admin, "alice@a.test", "{\"pages\":null,\"color_pages\":3}");
  g_autoptr(JsonNode) c1 = NULL, c2 = NULL;
  st = sfx_call("POST", "/api/v1/me/quota/check", alice, "{\"pages\":100}", &c1);
  expect_status(st, 200, c1, "mono without a total limit");
  st = sfx_call("POST", "/api/v1/me/quota/check", alice, "{\"pages\":2,\"color\":true}", &c2);
  sfx_expect_error(st, c2, 409, "quota_exceeded", "1 of your monthly 3 colour pages are left");
}
END_TEST

START_TEST(test_statement)
{
  g_autofree char *admin = sfx_login("admin@a.test", sfx.admin_pw);
  g_autofree char *alice = sfx_login("alice@a.test", sfx.alice_pw);
  set_quota(admin, "alice@a.test", "{\"pages\":100,\"color_pages\":null}");
  gint64 now = kcps__server_now();
  g_autoptr(JsonNode) r = NULL, key = NULL;
  expect_status(post_usage(alice, "s-1", PRINTER, now, 6, 2, true, NULL, &r), 201, r, "record");
  expect_status(sfx_call("GET", "/api/v1/ticket-key", NULL, NULL, &key), 200, key, "ticket key");
  const char *pub = sfx_str(key, "public_key");

  g_autoptr(JsonNode) q = my_quota(alice, NULL);
  const char *text = sfx_str(q, "statement");
  ck_assert_msg(text && strchr(text, '.'), "no statement in the answer");
  ck_assert_str_eq(sfx_str(q, "statement_key"), pub);

  kcps_server_quota_statement_t st;
  g_autoptr(GError) error = NULL;
  ck_assert_msg(kcps__server_quota_statement_verify(pub, text, now, &st, &error),
                "statement does not verify: %s", error ? error->message : "?");
  ck_assert_str_eq(st.user, "alice@a.test");
  ck_assert_str_eq(st.month, sfx_str(q, "month"));
  ck_assert_int_eq(st.quota_pages, 100);
  ck_assert_int_eq(st.quota_color_pages, -1);
  ck_assert_int_eq(st.used_pages, 12);
  ck_assert_int_eq(st.used_color_pages, 12);
  ck_assert_int_le(st.exp - st.iat, 24 * 3600);
  ck_assert_int_ge(st.exp, now + 24 * 3600 - 5);

  /* Expired a day later. */
  g_clear_error(&error);
  ck_assert(!kcps__server_quota_statement_verify(pub, text, st.exp, &st, &error));
  ck_assert_int_eq(error->code, KCPS_CRYPTO_ERROR_EXPIRED);

  /* A raised limit in the payload breaks the signature. */
  const char *dot = strchr(text, '.');
  g_autofree char *head = g_strndup(text, (gsize)(dot - text));
  size_t plen = 0;
  g_autofree guchar *payload = kcps_base64url_decode(head, &plen);
  g_autofree char *ptext = g_strndup((const char *)payload, plen);
  ck_assert_msg(strstr(ptext, "\"quota_pages\":100"), "payload: %s", ptext);
  g_auto(GStrv) parts = g_strsplit(ptext, "\"quota_pages\":100", 2);
  g_autofree char *forged_payload = g_strjoinv("\"quota_pages\":900", parts);
  g_autofree char *forged_head = kcps_base64url_encode(forged_payload, strlen(forged_payload));
  g_autofree char *forged = g_strconcat(forged_head, dot, NULL);
  g_clear_error(&error);
  ck_assert(!kcps__server_quota_statement_verify(pub, forged, now, &st, &error));
  ck_assert_int_eq(error->code, KCPS_CRYPTO_ERROR_SIGNATURE);

  /* One flipped signature character; another key. */
  g_autofree char *flipped = g_strdup(text);
  size_t last = strlen(flipped) - 2;
  flipped[last] = flipped[last] == 'A' ? 'B' : 'A';
  g_clear_error(&error);
  ck_assert(!kcps__server_quota_statement_verify(pub, flipped, now, &st, &error));
  g_clear_error(&error);
  ck_assert(!kcps__server_quota_statement_verify("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                                                 text, now, &st, &error));
  ck_assert_int_eq(error->code, KCPS_CRYPTO_ERROR_SIGNATURE);
}
END_TEST

/* A pull ticket is no quota statement (domain separation by context). */
START_TEST(test_ticket_is_no_statement)
{
  g_autofree char *alice = sfx_login("alice@a.test", sfx.alice_pw);
  g_autoptr(JsonNode) job = NULL, t = NULL, key = NULL;
  long st = sfx_call(
      "POST", "/api/v1/jobs", alice,
      "{\"client_job_id\":\"tk-1\",\"name\":\"doc\",\"pages\":1,\"size\":10,"
      "\"sha256\":\"0000000000000000000000000000000000000000000000000000000000000000\","
      "\"pull_url\":\"https://127.0.0.1:5571/jobs/tk-1\","
      "\"pull_pin\":\"sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"}",
      &job);
  expect_status(st, 201, job, "register job");
  g_autofree char *at = sfx_pin_login();
  g_autofree char *tpath = g_strdup_printf("/api/v1/device/jobs/%s/ticket", sfx_str(job, "id"));
  expect_status(sfx_call("POST", tpath, at, NULL, &t), 201, t, "ticket");
  expect_status(sfx_call("GET", "/api/v1/ticket-key", NULL, NULL, &key), 200, key, "ticket key");
  kcps_server_quota_statement_t s;
  g_autoptr(GError) error = NULL;
  ck_assert(!kcps__server_quota_statement_verify(sfx_str(key, "public_key"), sfx_str(t, "ticket"),
                                                 kcps__server_now(), &s, &error));
  ck_assert_int_eq(error->code, KCPS_CRYPTO_ERROR_SIGNATURE);
}
END_TEST

/* Reports -------------------------------------------------------------- */

static JsonObject *
find_row(JsonNode *node, const char *member, const char *name, const char *value)
{
  JsonArray *rows = sfx_array(node, member);
  for (guint i = 0; rows && i < json_array_get_length(rows); i++) {
    JsonObject *o = json_array_get_object_element(rows, i);
    if (g_strcmp0(json_object_get_string_member_with_default(o, name, ""), value) == 0)
      return o;
  }
  return NULL;
}

START_TEST(test_org_report)
{
  g_autofree char *admin = sfx_login("admin@a.test", sfx.admin_pw);
  g_autofree char *alice = sfx_login("alice@a.test", sfx.alice_pw);
  sfx_add_user("Customer A", "pm@a.test", "print_manager", "Usage-pass1!");
  g_autofree char *pm = sfx_login("pm@a.test", "Usage-pass1!");
  set_quota(pm, "alice@a.test", "{\"pages\":50,\"color_pages\":10}");
  gint64 now = kcps__server_now();
  g_autoptr(JsonNode) r1 = NULL, r2 = NULL, r3 = NULL;
  expect_status(post_usage(alice, "o-1", PRINTER, now, 2, 2, true, NULL, &r1), 201, r1, "r1");
  expect_status(post_usage(alice, "o-2", "MFP-1", now, 3, 1, false, NULL, &r2), 201, r2, "r2");
  expect_status(post_usage(admin, "o-3", PRINTER, now, 1, 1, false, NULL, &r3), 201, r3, "r3");
  /* Last month's record is not in this month's report. */
  gint64 before = month_start_of(now) - 1;
  g_autoptr(JsonNode) r4 = NULL;
  expect_status(post_usage(admin, "o-4", PRINTER, before, 100, 1, false, NULL, &r4), 201, r4,
                "last month");

  g_autofree char *org = sfx_org_public_id("Customer A");
  g_autofree char *path = g_strdup_printf("/api/v1/orgs/%s/usage", org);
  g_autoptr(JsonNode) rep = NULL, rep_pm = NULL, refused = NULL;
  expect_status(sfx_call("GET", path, admin, NULL, &rep), 200, rep, "admin's report");
  JsonNode *totals = sfx_member(rep, "totals");
  expect_int(totals, "jobs", 3, "totals");
  expect_int(totals, "pages", 8, "totals");
  expect_int(totals, "color_pages", 4, "totals");
  JsonObject *a = find_row(rep, "users", "email", "alice@a.test");
  ck_assert_msg(a, "alice missing from the report");
  ck_assert_int_eq(json_object_get_int_member(a, "pages"), 7);
  ck_assert_int_eq(json_object_get_int_member(a, "quota_pages"), 50);
  JsonObject *p = find_row(rep, "printers", "printer", PRINTER);
  JsonObject *m = find_row(rep, "printers", "printer", "MFP-1");
  ck_assert_msg(p && m, "a printer is missing from the report");
  ck_assert_int_eq(json_object_get_int_member(p, "pages"), 5);
  ck_assert_int_eq(json_object_get_int_member(m, "pages"), 3);

  /* The print manager sees it (quota data); a user does not. */
  expect_status(sfx_call("GET", path, pm, NULL, &rep_pm), 200, rep_pm, "print manager");
  long st = sfx_call("GET", path, alice, NULL, &refused);
  sfx_expect_error(st, refused, 403, "forbidden", NULL);

  /* Upward (section 3): the contract report counts the same pages,
   * without names. */
  g_autoptr(JsonNode) con = NULL;
  g_autofree char *cpath = g_strdup_printf("/api/v1/orgs/%s/contracts", org);
  expect_status(sfx_call("GET", cpath, admin, NULL, &con), 200, con, "contracts");
  JsonNode *own = sfx_member(con, "org");
  expect_int(own, "pages", 8, "contract report");
  expect_int(own, "color_pages", 4, "contract report");
  g_autofree char *ctext = json_to_string(con, FALSE);
  ck_assert_msg(!strstr(ctext, "alice") && !strstr(ctext, PRINTER), "names went upward: %s",
                ctext);

  g_autoptr(JsonNode) badm = NULL;
  g_autofree char *bad = g_strdup_printf("%s?month=2026-13", path);
  long bst = sfx_call("GET", bad, admin, NULL, &badm);
  sfx_expect_error(bst, badm, 400, "bad_request", "month");
}
END_TEST

/* Parsers -------------------------------------------------------------- */

START_TEST(test_parsers)
{
  const gint64 now = 1800000000; /* 2027-01-15T08:00:00Z */
  static const struct {
    const char *body;
    bool ok;
  } cases[] = {
      {"{\"idempotency_key\":\"k\",\"printer\":\"MFP-1\",\"time\":\"2027-01-15T08:00:00Z\","
       "\"pages\":1}",
       true},
      {"{\"idempotency_key\":\"k.1-_\",\"printer\":\"ipp://p/ipp/print\","
       "\"time\":\"2027-01-15T09:00:00+01:00\",\"pages\":2,\"copies\":3,\"color\":true,"
       "\"duplex\":false,\"job_type\":\"print\","
       "\"job_id\":\"0b0e6a4e-8a8e-4c3a-9d2b-3f0a1b2c3d4e\"}",
       true},
      {"{\"idempotency_key\":\"k\",\"printer\":\"p\",\"time\":\"2027-01-15T08:00:00\","
       "\"pages\":1}",
       false}, /* no zone */
      {"{\"idempotency_key\":\"k k\",\"printer\":\"p\",\"time\":\"2027-01-15T08:00:00Z\","
       "\"pages\":1}",
       false},
      {"{\"idempotency_key\":\"k\",\"printer\":\"\",\"time\":\"2027-01-15T08:00:00Z\","
       "\"pages\":1}",
       false},
      {"{\"idempotency_key\":\"k\",\"printer\":\"p\",\"time\":\"2027-01-15T08:00:00Z\","
       "\"pages\":1,\"job_type\":\"copy\"}",
       false},
      {"{\"idempotency_key\":\"k\",\"printer\":\"p\",\"time\":\"2027-01-15T08:00:00Z\","
       "\"pages\":1,\"copies\":0}",
       false},
      {"{\"idempotency_key\":\"k\",\"printer\":\"p\",\"time\":\"2027-01-15T08:00:00Z\","
       "\"pages\":1,\"job_id\":\"\"}",
       false},
      {"{\"idempotency_key\":\"k\",\"printer\":\"p\",\"time\":\"2027-01-15T08:10:00Z\","
       "\"pages\":1}",
       false}, /* ten minutes ahead */
      {"{\"idempotency_key\":\"k\",\"printer\":\"p\",\"time\":1800000000,\"pages\":1}", false},
  };
  for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
    g_autoptr(JsonParser) parser = json_parser_new();
    ck_assert(json_parser_load_from_data(parser, cases[i].body, -1, NULL));
    JsonObject *obj = json_node_get_object(json_parser_get_root(parser));
    kcps_server_usage_req_t in;
    g_autoptr(GError) error = NULL;
    bool ok = kcps__server_check_usage(obj, now, &in, &error);
    ck_assert_msg(ok == cases[i].ok, "case %zu: got %s, expected %s (%s)", i,
                  ok ? "accepted" : "refused", cases[i].ok ? "accepted" : "refused",
                  error ? error->message : "");
  }
  /* The offset form lands on the same instant. */
  gint64 t = 0;
  ck_assert(kcps__server_parse_usage_time("2027-01-15T09:00:00+01:00", now, &t, NULL));
  ck_assert_int_eq(t, now);

  static const char *const garbage[] = {NULL, "", ".", "a.b", "a.b.c", "..", "eyJ2IjoxfQ.AAAA"};
  for (size_t i = 0; i < G_N_ELEMENTS(garbage); i++) {
    kcps_server_quota_statement_t s;
    g_autoptr(GError) error = NULL;
    ck_assert(!kcps__server_quota_statement_verify("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                                                   garbage[i], now, &s, &error));
    ck_assert(error != NULL);
  }
}
END_TEST

int
main(void)
{
  curl_global_init(CURL_GLOBAL_DEFAULT);
  Suite *s = suite_create("server-usage");
  TCase *tc = tcase_create("usage");
  tcase_add_checked_fixture(tc, sfx_setup, sfx_teardown);
  tcase_add_test(tc, test_record_idempotent);
  tcase_add_test(tc, test_record_refused);
  tcase_add_test(tc, test_month_boundary);
  tcase_add_test(tc, test_no_double_count);
  tcase_add_test(tc, test_quota_check);
  tcase_add_test(tc, test_statement);
  tcase_add_test(tc, test_ticket_is_no_statement);
  tcase_add_test(tc, test_org_report);
  suite_add_tcase(s, tc);
  TCase *tp = tcase_create("parsers");
  tcase_add_test(tp, test_parsers);
  suite_add_tcase(s, tp);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  curl_global_cleanup();
  return failed ? 1 : 0;
}
