/* Unit tests of the tray's view model (ui/tray-model.c): parsing kcpsd's
 * answers, formatting sizes, pages, times and states, the icon state and the
 * login messages. No display needed. */
#include "common/json-util.h"
#include "ui/tray-model.h"

#include <check.h>
#include <glib/gstdio.h>
#include <locale.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static JsonNode *parse(const char *text)
{
  g_autoptr(GError) error = NULL;
  JsonNode *node = json_from_string(text, &error);
  ck_assert_msg(node != NULL, "test JSON %s: %s", text, error != NULL ? error->message : "");
  return node;
}

/* 2026-11-28 12:00 at +01:00, the "now" of the time tests. */
static GDateTime *test_now(void)
{
  g_autoptr(GTimeZone) zone = g_time_zone_new_offset(3600);
  return g_date_time_new(zone, 2026, 11, 28, 12, 0, 0);
}

static gint64 unix_at(int year, int month, int day, int hour, int minute, int offset_s)
{
  g_autoptr(GTimeZone) zone = g_time_zone_new_offset(offset_s);
  g_autoptr(GDateTime) t = g_date_time_new(zone, year, month, day, hour, minute, 0);
  return g_date_time_to_unix(t);
}

/* --- formatting ------------------------------------------------------------ */

START_TEST(test_format_size)
{
  static const struct {
    gint64 bytes;
    const char *expected;
  } cases[] = {
    {-1, "\u2014"},      {0, "0 bytes"},        {1, "1 byte"},
    {999, "999 bytes"},  {1000, "1.0\u00a0kB"}, {12345, "12.3\u00a0kB"},
    {1500000, "1.5\u00a0MB"}, {3000000000LL, "3.0\u00a0GB"},
  };
  for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
    g_autofree char *got = kcps_tray_format_size(cases[i].bytes);
    /* GLib puts a no-break space before the unit; older ones a space. */
    g_autofree char *want_plain = g_strdup(cases[i].expected);
    char *nbsp = strstr(want_plain, "\u00a0");
    if (nbsp != NULL)
      memmove(nbsp + 1, nbsp + 2, strlen(nbsp + 2) + 1), *nbsp = ' ';
    ck_assert_msg(strcmp(got, cases[i].expected) == 0 || strcmp(got, want_plain) == 0,
                  "size %" G_GINT64_FORMAT ": got '%s', expected '%s'", cases[i].bytes, got,
                  cases[i].expected);
  }
}
END_TEST

START_TEST(test_format_pages)
{
  static const struct {
    gint64 pages;
    const char *expected;
  } cases[] = {
    {-1, "\u2014"}, {0, "0 pages"}, {1, "1 page"}, {2, "2 pages"}, {1000, "1000 pages"},
  };
  for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
    g_autofree char *got = kcps_tray_format_pages(cases[i].pages);
    ck_assert_msg(strcmp(got, cases[i].expected) == 0, "pages %" G_GINT64_FORMAT
                  ": got '%s', expected '%s'", cases[i].pages, got, cases[i].expected);
  }
}
END_TEST

START_TEST(test_format_time)
{
  g_autoptr(GDateTime) now = test_now();
  const struct {
    gint64 when;
    const char *expected;
  } cases[] = {
    /* Shown in now's zone: 09:42 UTC is 10:42 at +01:00. */
    {unix_at(2026, 11, 28, 9, 42, 0), "Today, 10:42"},
    {unix_at(2026, 11, 28, 0, 0, 3600), "Today, 00:00"},
    /* 23:30 UTC on the 27th is already the 28th at +01:00. */
    {unix_at(2026, 11, 27, 23, 30, 0), "Today, 00:30"},
    {unix_at(2026, 11, 27, 18, 5, 3600), "Yesterday, 18:05"},
    {unix_at(2026, 11, 26, 23, 59, 3600), "26 Nov, 23:59"},
    {unix_at(2026, 1, 3, 9, 12, 3600), "3 Jan, 09:12"},
    {unix_at(2025, 12, 31, 23, 0, 3600), "31 Dec 2025"},
    {0, "\u2014"},
    {-5, "\u2014"},
  };
  for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
    g_autofree char *got = kcps_tray_format_time(cases[i].when, now);
    ck_assert_msg(strcmp(got, cases[i].expected) == 0, "time %" G_GINT64_FORMAT
                  ": got '%s', expected '%s'", cases[i].when, got, cases[i].expected);
  }
  /* Yesterday across a year's end. */
  g_autoptr(GTimeZone) zone = g_time_zone_new_offset(0);
  g_autoptr(GDateTime) new_year = g_date_time_new(zone, 2026, 1, 1, 0, 30, 0);
  g_autofree char *got = kcps_tray_format_time(unix_at(2025, 12, 31, 23, 0, 0), new_year);
  ck_assert_str_eq(got, "Yesterday, 23:00");
  g_autofree char *no_now = kcps_tray_format_time(unix_at(2025, 12, 31, 23, 0, 0), NULL);
  ck_assert_str_eq(no_now, "\u2014");
}
END_TEST

START_TEST(test_state_labels)
{
  static const struct {
    const char *state;
    const char *label;
    bool waiting;
  } cases[] = {
    {"spooled", "Waiting to register", true},
    {"registered", "Ready to print", true},
    {"pulled", "Printing", true},
    {"printed", "Printed", false},
    {"deleted", "Deleted", false},
    /* A state kcpsd learns later is shown as it is, never hidden. */
    {"uploading", "uploading", false},
    {NULL, "\u2014", false},
  };
  for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
    const char *got = kcps_tray_state_label(cases[i].state);
    ck_assert_msg(strcmp(got, cases[i].label) == 0, "state %s: got '%s', expected '%s'",
                  cases[i].state, got, cases[i].label);
    ck_assert_msg(kcps_tray_job_is_waiting(cases[i].state) == cases[i].waiting,
                  "state %s: waiting got %d, expected %d", cases[i].state,
                  !cases[i].waiting, cases[i].waiting);
  }
}
END_TEST

START_TEST(test_job_summary)
{
  g_autoptr(GDateTime) now = test_now();
  kcps_tray_job_info_t job = {.id = "1", .name = "report.pdf", .state = "registered",
                              .pages = 2, .size = 12345,
                              .created = unix_at(2026, 11, 28, 10, 42, 3600)};
  g_autofree char *got = kcps_tray_job_summary(&job, now);
  g_autofree char *size = kcps_tray_format_size(12345);
  g_autofree char *expected = g_strdup_printf("report.pdf, 2 pages, %s, Today, 10:42, "
                                              "Ready to print", size);
  ck_assert_str_eq(got, expected);
  job.name = NULL;
  g_autofree char *untitled = kcps_tray_job_summary(&job, now);
  ck_assert_msg(g_str_has_prefix(untitled, "Untitled, "), "got '%s'", untitled);
}
END_TEST

/* --- parsing ------------------------------------------------------------- */

START_TEST(test_status_parse)
{
  g_autoptr(JsonNode) good = parse("{\"user\":\"ann\",\"logged_in\":true,"
                                   "\"email\":\"alice@a.test\",\"server\":\"https://s:1\"}");
  kcps_tray_status_t status;
  g_autoptr(GError) error = NULL;
  ck_assert(kcps_tray_status_parse(good, &status, &error));
  ck_assert(status.reachable);
  ck_assert(status.logged_in);
  ck_assert_str_eq(status.user, "ann");
  ck_assert_str_eq(status.email, "alice@a.test");
  ck_assert_str_eq(status.server, "https://s:1");
  ck_assert_ptr_null(status.spool_mode);
  kcps_tray_status_clear(&status);

  g_autoptr(JsonNode) logged_out = parse("{\"user\":\"ann\",\"logged_in\":false,\"email\":null,"
                                         "\"server\":null,\"spool_mode\":\"cloud\"}");
  ck_assert(kcps_tray_status_parse(logged_out, &status, &error));
  ck_assert(!status.logged_in);
  ck_assert_ptr_null(status.email);
  ck_assert_str_eq(status.spool_mode, "cloud");
  kcps_tray_status_clear(&status);

  static const struct {
    const char *json;
    const char *error;
  } bad[] = {
    {"{\"user\":\"ann\"}", "logged_in"},
    {"{\"logged_in\":\"yes\"}", "logged_in"},
    {"{\"logged_in\":true,\"email\":5}", "email"},
    {"{\"logged_in\":true,\"server\":[]}", "server"},
    {"[true]", "not a JSON object"},
  };
  for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
    g_autoptr(JsonNode) node = parse(bad[i].json);
    g_autoptr(GError) e = NULL;
    ck_assert_msg(!kcps_tray_status_parse(node, &status, &e), "%s was accepted", bad[i].json);
    ck_assert_msg(strstr(e->message, bad[i].error) != NULL, "%s: got '%s', expected it to name %s",
                  bad[i].json, e->message, bad[i].error);
    ck_assert(!status.reachable);
    ck_assert_ptr_null(status.user);
  }
  ck_assert(!kcps_tray_status_parse(NULL, &status, NULL));
}
END_TEST

START_TEST(test_jobs_parse)
{
  g_autoptr(JsonNode) good = parse(
    "{\"jobs\":[{\"id\":\"a\",\"name\":\"one\",\"pages\":2,\"size\":100,\"state\":\"spooled\","
    "\"created\":1764324000,\"server_id\":null},"
    "{\"id\":\"b\",\"name\":null,\"pages\":1,\"size\":5,\"state\":\"printed\","
    "\"created\":1764324001,\"server_id\":\"s-1\"}]}");
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) jobs = kcps_tray_jobs_parse(good, &error);
  ck_assert_msg(jobs != NULL, "%s", error != NULL ? error->message : "");
  ck_assert_uint_eq(jobs->len, 2);
  const kcps_tray_job_info_t *a = g_ptr_array_index(jobs, 0);
  const kcps_tray_job_info_t *b = g_ptr_array_index(jobs, 1);
  ck_assert_str_eq(a->id, "a");
  ck_assert_str_eq(a->name, "one");
  ck_assert_int_eq(a->pages, 2);
  ck_assert_int_eq(a->size, 100);
  ck_assert_str_eq(a->state, "spooled");
  ck_assert_int_eq(a->created, 1764324000);
  ck_assert_ptr_null(a->server_id);
  ck_assert_ptr_null(b->name);
  ck_assert_str_eq(b->server_id, "s-1");
  /* spool and expires: absent is fine (kcpsd does not send them yet). */
  ck_assert_ptr_null(a->spool);
  ck_assert_int_eq(a->expires, 0);
  g_autoptr(JsonNode) newer = parse(
    "{\"jobs\":[{\"id\":\"a\",\"pages\":2,\"size\":100,\"state\":\"spooled\","
    "\"created\":1,\"spool\":\"cloud\",\"expires\":1764924000,"
    "\"upload\":{\"state\":\"uploading\",\"sent\":10,\"size\":100}}]}");
  g_autoptr(GPtrArray) newer_jobs = kcps_tray_jobs_parse(newer, &error);
  ck_assert_msg(newer_jobs != NULL, "%s", error != NULL ? error->message : "");
  const kcps_tray_job_info_t *c = g_ptr_array_index(newer_jobs, 0);
  ck_assert_str_eq(c->spool, "cloud");
  ck_assert_int_eq(c->expires, 1764924000);

  g_autoptr(JsonNode) none = parse("{\"jobs\":[]}");
  g_autoptr(GPtrArray) empty = kcps_tray_jobs_parse(none, NULL);
  ck_assert_ptr_nonnull(empty);
  ck_assert_uint_eq(empty->len, 0);

  static const struct {
    const char *json;
    const char *error;
  } bad[] = {
    {"{}", "no \"jobs\" array"},
    {"{\"jobs\":{}}", "no \"jobs\" array"},
    {"[]", "no \"jobs\" array"},
    {"{\"jobs\":[1]}", "jobs[0]: not an object"},
    {"{\"jobs\":[{\"id\":\"a\",\"pages\":1,\"size\":1,\"state\":\"spooled\",\"created\":1},"
     "{\"id\":\"b\",\"pages\":\"1\",\"size\":1,\"state\":\"spooled\",\"created\":1}]}",
     "jobs[1]: pages"},
    {"{\"jobs\":[{\"pages\":1,\"size\":1,\"state\":\"spooled\",\"created\":1}]}", "jobs[0]: id"},
    {"{\"jobs\":[{\"id\":\"\",\"pages\":1,\"size\":1,\"state\":\"spooled\",\"created\":1}]}",
     "jobs[0]: id"},
    {"{\"jobs\":[{\"id\":\"a\",\"pages\":1,\"size\":1,\"created\":1}]}", "jobs[0]: state"},
    {"{\"jobs\":[{\"id\":\"a\",\"pages\":1,\"state\":\"x\",\"created\":1}]}", "jobs[0]: size"},
    {"{\"jobs\":[{\"id\":\"a\",\"pages\":1,\"size\":1,\"state\":\"x\"}]}", "jobs[0]: created"},
    {"{\"jobs\":[{\"id\":\"a\",\"name\":7,\"pages\":1,\"size\":1,\"state\":\"x\","
     "\"created\":1}]}", "jobs[0]: name"},
    {"{\"jobs\":[{\"id\":\"a\",\"pages\":1,\"size\":1,\"state\":\"x\",\"created\":1,"
     "\"spool\":1}]}", "jobs[0]: spool"},
    {"{\"jobs\":[{\"id\":\"a\",\"pages\":1,\"size\":1,\"state\":\"x\",\"created\":1,"
     "\"expires\":\"soon\"}]}", "jobs[0]: expires"},
    {"{\"jobs\":[{\"id\":\"a\",\"pages\":1,\"size\":1,\"state\":\"x\",\"created\":1,"
     "\"expires\":-5}]}", "jobs[0]: expires"},
  };
  for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
    g_autoptr(JsonNode) node = parse(bad[i].json);
    g_autoptr(GError) e = NULL;
    g_autoptr(GPtrArray) got = kcps_tray_jobs_parse(node, &e);
    ck_assert_msg(got == NULL, "%s was accepted", bad[i].json);
    ck_assert_msg(strstr(e->message, bad[i].error) != NULL,
                  "%s: got '%s', expected it to name '%s'", bad[i].json, e->message,
                  bad[i].error);
  }
  ck_assert_ptr_null(kcps_tray_jobs_parse(NULL, NULL));
}
END_TEST

/* --- notifications --------------------------------------------------------- */

static kcps_tray_job_info_t *info(const char *id, const char *name, const char *state,
                                  gint64 expires)
{
  kcps_tray_job_info_t *job = g_new0(kcps_tray_job_info_t, 1);
  job->id = g_strdup(id);
  job->name = g_strdup(name);
  job->state = g_strdup(state);
  job->pages = 1;
  job->size = 10;
  job->created = 1;
  job->expires = expires;
  return job;
}

static GPtrArray *job_list(void)
{
  return g_ptr_array_new_with_free_func((GDestroyNotify)kcps_tray_job_info_free);
}

static const kcps_tray_notice_t *notice_at(GPtrArray *notices, guint i)
{
  return g_ptr_array_index(notices, i);
}

START_TEST(test_notices)
{
  g_autoptr(GDateTime) now = test_now();
  gint64 now_s = g_date_time_to_unix(now);
  g_autoptr(GHashTable) warned = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  g_autoptr(GPtrArray) first = job_list();
  g_ptr_array_add(first, info("a", "report.pdf", "spooled", 0));
  g_ptr_array_add(first, info("b", "slides.pdf", "pulled", 0));
  g_ptr_array_add(first, info("c", "memo", "pulled", 0));

  /* The first read tells nothing (no flood at start). */
  g_autoptr(GPtrArray) none = kcps_tray_notices(NULL, first, warned, now);
  ck_assert_uint_eq(none->len, 0);
  /* Nothing changed: nothing to say. */
  g_autoptr(GPtrArray) same = kcps_tray_notices(first, first, warned, now);
  ck_assert_uint_eq(same->len, 0);

  /* One new job, one printed, one failed. */
  g_autoptr(GPtrArray) second = job_list();
  g_ptr_array_add(second, info("a", "report.pdf", "spooled", 0));
  g_ptr_array_add(second, info("b", "slides.pdf", "printed", 0));
  g_ptr_array_add(second, info("c", "memo", "failed", 0));
  g_ptr_array_add(second, info("d", "new.pdf", "spooled", 0));
  g_autoptr(GPtrArray) got = kcps_tray_notices(first, second, warned, now);
  ck_assert_uint_eq(got->len, 3);
  ck_assert_int_eq(notice_at(got, 0)->kind, KCPS_TRAY_NOTICE_PRINTED);
  ck_assert_str_eq(notice_at(got, 0)->title, "Printed");
  ck_assert_str_eq(notice_at(got, 0)->body, "\u201cslides.pdf\u201d was printed.");
  ck_assert_str_eq(notice_at(got, 0)->id, "printed-b");
  ck_assert_int_eq(notice_at(got, 1)->kind, KCPS_TRAY_NOTICE_FAILED);
  ck_assert_str_eq(notice_at(got, 1)->body, "\u201cmemo\u201d could not be printed.");
  ck_assert_int_eq(notice_at(got, 2)->kind, KCPS_TRAY_NOTICE_SPOOLED);
  ck_assert_str_eq(notice_at(got, 2)->title, "Print job received");
  ck_assert_str_eq(notice_at(got, 2)->body, "\u201cnew.pdf\u201d is waiting to be printed.");

  /* Several new jobs in one read: one notice with the count (a plural). */
  g_autoptr(GPtrArray) third = job_list();
  for (int i = 0; i < 3; i++) {
    g_autofree char *id = g_strdup_printf("n%d", i);
    g_ptr_array_add(third, info(id, NULL, "registered", 0));
  }
  g_autoptr(GPtrArray) many = kcps_tray_notices(second, third, warned, now);
  ck_assert_uint_eq(many->len, 1);
  ck_assert_str_eq(notice_at(many, 0)->title, "Print jobs received");
  ck_assert_str_eq(notice_at(many, 0)->body, "3 jobs are waiting to be printed.");
  ck_assert_str_eq(notice_at(many, 0)->id, "spooled");
  /* A new job already printed, or a deleted one: nothing. */
  g_autoptr(GPtrArray) fourth = job_list();
  g_ptr_array_add(fourth, info("p", "done", "printed", 0));
  g_autoptr(GPtrArray) quiet = kcps_tray_notices(third, fourth, warned, now);
  ck_assert_uint_eq(quiet->len, 0);

  /* Expiry: within a day and still waiting, once per job; printed or far
   * away: never; no expires (kcpsd does not say): never. */
  g_autoptr(GPtrArray) expiring = job_list();
  g_ptr_array_add(expiring, info("e1", "soon", "spooled", now_s + 3600));
  g_ptr_array_add(expiring, info("e2", "later", "spooled", now_s + 3 * 86400));
  g_ptr_array_add(expiring, info("e3", "gone", "printed", now_s + 60));
  g_ptr_array_add(expiring, info("e4", "unknown", "spooled", 0));
  g_autoptr(GPtrArray) warn = kcps_tray_notices(expiring, expiring, warned, now);
  ck_assert_uint_eq(warn->len, 1);
  ck_assert_int_eq(notice_at(warn, 0)->kind, KCPS_TRAY_NOTICE_EXPIRING);
  ck_assert_str_eq(notice_at(warn, 0)->id, "expiring-e1");
  ck_assert_str_eq(notice_at(warn, 0)->body,
                   "\u201csoon\u201d will be deleted if it is not printed (deletion: Today, 13:00).");
  g_autoptr(GPtrArray) again = kcps_tray_notices(expiring, expiring, warned, now);
  ck_assert_uint_eq(again->len, 0);
  /* A short retention (kcpsd's default: a day) warns in the last quarter of
   * the job's time: not on arrival, 6 hours before. */
  g_autoptr(GPtrArray) day = job_list();
  kcps_tray_job_info_t *fresh = info("d1", "fresh", "spooled", now_s + 23 * 3600);
  fresh->created = now_s - 3600;
  kcps_tray_job_info_t *old_job = info("d2", "old", "spooled", now_s + 5 * 3600);
  old_job->created = now_s - 19 * 3600;
  g_ptr_array_add(day, fresh);
  g_ptr_array_add(day, old_job);
  g_autoptr(GPtrArray) day_warn = kcps_tray_notices(day, day, warned, now);
  ck_assert_uint_eq(day_warn->len, 1);
  ck_assert_str_eq(notice_at(day_warn, 0)->id, "expiring-d2");
  g_autoptr(GPtrArray) no_after = kcps_tray_notices(first, NULL, warned, now);
  ck_assert_uint_eq(no_after->len, 0);
}
END_TEST

/* Uploads and releases: reaching the cloud, a release that failed. */
START_TEST(test_notices_upload_and_release)
{
  g_autoptr(GDateTime) now = test_now();
  g_autoptr(GPtrArray) before = job_list();
  g_ptr_array_add(before, info("u", "cloud.pdf", "spooled", 0));
  g_ptr_array_add(before, info("r", "held.pdf", "spooled", 0));
  g_autoptr(GPtrArray) after = job_list();
  g_ptr_array_add(after, info("u", "cloud.pdf", "uploaded", 0));
  kcps_tray_job_info_t *held = info("r", "held.pdf", "spooled", 0);
  held->release_state = g_strdup("aborted");
  g_ptr_array_add(after, held);
  g_autoptr(GPtrArray) got = kcps_tray_notices(before, after, NULL, now);
  ck_assert_uint_eq(got->len, 2);
  ck_assert_int_eq(notice_at(got, 0)->kind, KCPS_TRAY_NOTICE_UPLOADED);
  ck_assert_str_eq(notice_at(got, 0)->id, "uploaded-u");
  ck_assert_str_eq(notice_at(got, 0)->title, "Uploaded");
  ck_assert_int_eq(notice_at(got, 1)->kind, KCPS_TRAY_NOTICE_FAILED);
  ck_assert_str_eq(notice_at(got, 1)->id, "failed-r");
  ck_assert_str_eq(notice_at(got, 1)->body, "\u201cheld.pdf\u201d could not be printed.");
  /* The same failed release read again: nothing new. */
  g_autoptr(GPtrArray) again = kcps_tray_notices(after, after, NULL, now);
  ck_assert_uint_eq(again->len, 0);
}
END_TEST

/* The quota in /v1/status: parsed, shown, and when it is low. */
START_TEST(test_quota)
{
  static const struct {
    const char *json;
    bool ok;
    const char *line; /* NULL: no line */
    bool low;
  } cases[] = {
    {"{\"logged_in\":true}", true, NULL, false},
    {"{\"logged_in\":true,\"quota\":null}", true, NULL, false},
    {"{\"logged_in\":true,\"quota\":{\"month\":\"2026-11\",\"quota_pages\":null,"
     "\"remaining_pages\":null}}", true, "No page limit this month", false},
    {"{\"logged_in\":true,\"quota\":{\"quota_pages\":500,\"remaining_pages\":120}}", true,
     "120 pages left this month", false},
    {"{\"logged_in\":true,\"quota\":{\"quota_pages\":500,\"remaining_pages\":50}}", true,
     "50 pages left this month", true},  /* a tenth */
    {"{\"logged_in\":true,\"quota\":{\"quota_pages\":40,\"remaining_pages\":10}}", true,
     "10 pages left this month", true},  /* ten pages */
    {"{\"logged_in\":true,\"quota\":{\"quota_pages\":40,\"remaining_pages\":11}}", true,
     "11 pages left this month", false},
    {"{\"logged_in\":true,\"quota\":{\"quota_pages\":40,\"remaining_pages\":1}}", true,
     "1 page left this month", true},
    {"{\"logged_in\":false,\"quota\":{\"quota_pages\":40,\"remaining_pages\":1}}", true,
     NULL, false},  /* logged out: not shown */
    {"{\"logged_in\":true,\"quota\":7}", false, NULL, false},
    {"{\"logged_in\":true,\"quota\":{\"quota_pages\":40}}", false, NULL, false},
    {"{\"logged_in\":true,\"quota\":{\"quota_pages\":40,\"remaining_pages\":\"x\"}}", false,
     NULL, false},
    {"{\"logged_in\":true,\"quota\":{\"quota_pages\":40,\"remaining_pages\":-1}}", false,
     NULL, false},
  };
  for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
    g_autoptr(JsonNode) node = parse(cases[i].json);
    kcps_tray_status_t status;
    g_autoptr(GError) error = NULL;
    bool ok = kcps_tray_status_parse(node, &status, &error);
    ck_assert_msg(ok == cases[i].ok, "%s: parse got %d, expected %d (%s)", cases[i].json, ok,
                  cases[i].ok, error != NULL ? error->message : "");
    if (!ok)
      continue;
    g_autofree char *line = kcps_tray_quota_line(&status);
    ck_assert_msg(g_strcmp0(line, cases[i].line) == 0, "%s: line got %s, expected %s",
                  cases[i].json, line, cases[i].line);
    ck_assert_msg(kcps_tray_quota_low(&status) == cases[i].low, "%s: low got %d", cases[i].json,
                  !cases[i].low);
    kcps_tray_notice_t *notice = kcps_tray_quota_notice(&status);
    ck_assert_msg((notice != NULL) == cases[i].low, "%s: notice", cases[i].json);
    if (notice != NULL) {
      ck_assert_int_eq(notice->kind, KCPS_TRAY_NOTICE_QUOTA_LOW);
      ck_assert_str_eq(notice->title, "Few pages left");
      ck_assert_str_eq(notice->body, cases[i].line);
      kcps_tray_notice_free(notice);
    }
    kcps_tray_status_clear(&status);
  }
}
END_TEST

/* --- the icon and the menu ------------------------------------------------ */

START_TEST(test_icon_state)
{
  kcps_tray_status_t unreachable = {0};
  kcps_tray_status_t out = {.reachable = true, .user = "ann"};
  kcps_tray_status_t in = {.reachable = true, .logged_in = true, .email = "alice@a.test"};
  const struct {
    const kcps_tray_status_t *status;
    guint waiting;
    kcps_tray_icon_state_t state;
    const char *id;
    const char *icon;
    const char *sni;
  } cases[] = {
    {NULL, 0, KCPS_TRAY_ICON_ERROR, "error", "kcps-tray-error", "NeedsAttention"},
    {&unreachable, 3, KCPS_TRAY_ICON_ERROR, "error", "kcps-tray-error", "NeedsAttention"},
    {&out, 0, KCPS_TRAY_ICON_LOGGED_OUT, "logged-out", "kcps-tray-logged-out", "Active"},
    /* Logged out wins over jobs: the user must log in first. */
    {&out, 2, KCPS_TRAY_ICON_LOGGED_OUT, "logged-out", "kcps-tray-logged-out", "Active"},
    {&in, 0, KCPS_TRAY_ICON_IDLE, "idle", "kcps-tray-idle", "Active"},
    {&in, 1, KCPS_TRAY_ICON_JOBS_WAITING, "jobs-waiting", "kcps-tray-jobs-waiting", "Active"},
  };
  for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
    kcps_tray_icon_state_t got = kcps_tray_icon_state(cases[i].status, cases[i].waiting);
    ck_assert_msg(got == cases[i].state, "case %zu: got %s, expected %s", i,
                  kcps_tray_icon_state_id(got), cases[i].id);
    ck_assert_str_eq(kcps_tray_icon_state_id(got), cases[i].id);
    ck_assert_str_eq(kcps_tray_icon_name(got), cases[i].icon);
    ck_assert_str_eq(kcps_tray_icon_sni_status(got), cases[i].sni);
  }
}
END_TEST

/* Uploading: a job on its way to the cloud (done < total) changes the icon,
 * over jobs waiting; logged out and error still win. */
START_TEST(test_icon_uploading)
{
  kcps_tray_status_t unreachable = {0};
  kcps_tray_status_t out = {.reachable = true, .user = "ann"};
  kcps_tray_status_t in = {.reachable = true, .logged_in = true, .email = "alice@a.test"};
  kcps_tray_icon_state_t st = kcps_tray_icon_state_jobs(&in, 2, 1);
  ck_assert_int_eq(st, KCPS_TRAY_ICON_UPLOADING);
  ck_assert_str_eq(kcps_tray_icon_state_id(st), "uploading");
  ck_assert_str_eq(kcps_tray_icon_name(st), "kcps-tray-uploading");
  ck_assert_str_eq(kcps_tray_icon_sni_status(st), "Active");
  ck_assert_int_eq(kcps_tray_icon_state_jobs(&in, 0, 1), KCPS_TRAY_ICON_UPLOADING);
  ck_assert_int_eq(kcps_tray_icon_state_jobs(&in, 2, 0), KCPS_TRAY_ICON_JOBS_WAITING);
  ck_assert_int_eq(kcps_tray_icon_state_jobs(&out, 0, 1), KCPS_TRAY_ICON_LOGGED_OUT);
  ck_assert_int_eq(kcps_tray_icon_state_jobs(&unreachable, 0, 1), KCPS_TRAY_ICON_ERROR);
  ck_assert_int_eq(kcps_tray_icon_state(&in, 1), KCPS_TRAY_ICON_JOBS_WAITING);
  /* Which jobs count. */
  ck_assert(kcps_tray_job_uploading("spooled", 0, 100));
  ck_assert(kcps_tray_job_uploading("uploading", 99, 100));
  ck_assert(!kcps_tray_job_uploading("uploading", 100, 100)); /* all confirmed */
  ck_assert(!kcps_tray_job_uploading("uploaded", 50, 100));
  ck_assert(!kcps_tray_job_uploading("registered", 50, 100));
  ck_assert(!kcps_tray_job_uploading("spooled", -1, -1)); /* no upload */
  ck_assert(!kcps_tray_job_uploading("spooled", 0, 0));
  ck_assert(!kcps_tray_job_uploading(NULL, 0, 100));
  /* From a parsed /v1/jobs. */
  g_autoptr(JsonNode) node = parse(
    "{\"jobs\":[{\"id\":\"a\",\"name\":\"a\",\"pages\":1,\"size\":10,\"state\":\"spooled\","
    "\"created\":1,\"server_id\":null,\"spool\":\"cloud\",\"upload\":{\"done\":4,\"total\":10}},"
    "{\"id\":\"b\",\"name\":\"b\",\"pages\":1,\"size\":10,\"state\":\"uploaded\",\"created\":1,"
    "\"server_id\":\"s\",\"spool\":\"cloud\",\"upload\":{\"done\":10,\"total\":10}}]}");
  g_autoptr(GPtrArray) jobs = kcps_tray_jobs_parse(node, NULL);
  ck_assert_ptr_nonnull(jobs);
  guint uploading = 0;
  for (guint i = 0; i < jobs->len; i++) {
    const kcps_tray_job_info_t *job = g_ptr_array_index(jobs, i);
    uploading += kcps_tray_job_uploading(job->state, job->upload_done, job->upload_total);
  }
  ck_assert_uint_eq(uploading, 1);
  /* The tooltip says so. */
  g_autofree char *tip = kcps_tray_tooltip_jobs(&in, 0, 1);
  ck_assert_str_eq(tip, "Logged in as alice@a.test\n1 job uploading to the cloud");
  g_autofree char *tip2 = kcps_tray_tooltip_jobs(&in, 2, 3);
  ck_assert_str_eq(tip2,
                   "Logged in as alice@a.test\n2 jobs waiting\n3 jobs uploading to the cloud");
  g_autofree char *tip3 = kcps_tray_tooltip_jobs(&unreachable, 2, 3);
  ck_assert_str_eq(tip3, "KCPS service not running");
}
END_TEST

/* GET /v1/settings parsed, the choices' labels, PUT's body, its failures. */
START_TEST(test_settings)
{
  kcps_tray_settings_t st;
  g_autoptr(JsonNode) org = parse(
    "{\"spool_mode\":null,\"effective_spool_mode\":\"cloud\",\"spool_mode_source\":"
    "\"organization\",\"organization_spool_mode\":\"cloud\",\"kcpsd_spool_mode\":\"local\"}");
  ck_assert(kcps_tray_settings_parse(org, &st, NULL));
  ck_assert_ptr_null(st.spool_mode);
  ck_assert_str_eq(st.effective_spool_mode, "cloud");
  ck_assert_int_eq(kcps_tray_spool_choice(&st), KCPS_TRAY_SPOOL_ORGANIZATION);
  g_autofree char *l0 = kcps_tray_spool_choice_label(KCPS_TRAY_SPOOL_ORGANIZATION, &st);
  ck_assert_str_eq(l0, "Organization default (in the cloud)");
  kcps_tray_settings_clear(&st);
  /* Her own choice; the organization's not known: its mode is not guessed. */
  g_autoptr(JsonNode) own = parse(
    "{\"spool_mode\":\"local\",\"effective_spool_mode\":\"local\",\"spool_mode_source\":"
    "\"user\",\"organization_spool_mode\":null,\"kcpsd_spool_mode\":\"local\"}");
  ck_assert(kcps_tray_settings_parse(own, &st, NULL));
  ck_assert_int_eq(kcps_tray_spool_choice(&st), KCPS_TRAY_SPOOL_LOCAL);
  g_autofree char *l1 = kcps_tray_spool_choice_label(KCPS_TRAY_SPOOL_ORGANIZATION, &st);
  ck_assert_str_eq(l1, "Organization default");
  g_autofree char *l2 = kcps_tray_spool_choice_label(KCPS_TRAY_SPOOL_LOCAL, &st);
  ck_assert_str_eq(l2, "On this computer (local)");
  g_autofree char *l3 = kcps_tray_spool_choice_label(KCPS_TRAY_SPOOL_CLOUD, NULL);
  ck_assert_str_eq(l3, "In the cloud");
  g_autofree char *l4 = kcps_tray_spool_choice_label(KCPS_TRAY_SPOOL_ORGANIZATION, NULL);
  ck_assert_str_eq(l4, "Organization default");
  kcps_tray_settings_clear(&st);
  /* Malformed answers name the member. */
  const struct {
    const char *json;
    const char *member;
  } bad[] = {
    {"{\"spool_mode\":\"paper\",\"effective_spool_mode\":\"local\"}", "spool_mode"},
    {"{\"spool_mode\":1,\"effective_spool_mode\":\"local\"}", "spool_mode"},
    {"{\"spool_mode\":null}", "effective_spool_mode"},
    {"{\"spool_mode\":null,\"effective_spool_mode\":\"x\"}", "effective_spool_mode"},
    {"{\"effective_spool_mode\":\"local\",\"organization_spool_mode\":true}",
     "organization_spool_mode"},
    {"[]", "not an object"},
  };
  for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
    g_autoptr(JsonNode) node = parse(bad[i].json);
    g_autoptr(GError) error = NULL;
    ck_assert_msg(!kcps_tray_settings_parse(node, &st, &error), "case %zu parsed", i);
    ck_assert_msg(strstr(error->message, bad[i].member) != NULL, "case %zu: %s", i,
                  error->message);
    ck_assert_ptr_null(st.spool_mode);
    ck_assert_ptr_null(st.effective_spool_mode);
  }
  /* PUT's bodies. */
  const char *bodies[] = {"{\"spool_mode\":null}", "{\"spool_mode\":\"local\"}",
                          "{\"spool_mode\":\"cloud\"}"};
  for (int c = KCPS_TRAY_SPOOL_ORGANIZATION; c <= KCPS_TRAY_SPOOL_CLOUD; c++) {
    g_autoptr(JsonNode) body = kcps_tray_settings_body(c);
    g_autofree char *text = json_to_string(body, FALSE);
    ck_assert_str_eq(text, bodies[c]);
  }
  /* A 409 (the cloud without a server) is told in words, not as a number. */
  const char *conflict = kcps_tray_settings_message(409);
  ck_assert_ptr_nonnull(strstr(conflict, "not connected to a KCPS server"));
  ck_assert_ptr_null(strstr(conflict, "409"));
  ck_assert_str_ne(kcps_tray_settings_message(0), conflict);
  ck_assert_str_ne(kcps_tray_settings_message(400), conflict);
}
END_TEST

/* tray.ini: the default printer kept 0600 in a 0700 folder beside other
 * keys, and the index the Release… dialog preselects. */
START_TEST(test_default_printer)
{
  g_autofree char *home = g_dir_make_tmp("kcps-ui-model-XXXXXX", NULL);
  ck_assert_ptr_nonnull(home);
  g_setenv("XDG_CONFIG_HOME", home, TRUE); /* this forked test's first use */
  g_autofree char *path = kcps_tray_ini_path();
  g_autofree char *dir = g_path_get_dirname(path);
  g_autofree char *none = kcps_tray_ini_get("default_printer");
  ck_assert(g_mkdir_with_parents(dir, 0700) == 0);
  ck_assert(g_file_set_contents(path, "[tray]\nnotifications=false\n", -1, NULL));
  ck_assert(kcps_tray_ini_set("default_printer", "Office [2nd floor]", NULL));
  g_autofree char *got = kcps_tray_ini_get("default_printer");
  g_autofree char *other = kcps_tray_ini_get("notifications");
  struct stat file_st, dir_st;
  ck_assert(g_stat(path, &file_st) == 0 && g_stat(dir, &dir_st) == 0);
  GPtrArray *printers = g_ptr_array_new_with_free_func((GDestroyNotify)kcps_tray_printer_free);
  const char *names[] = {"Hall", "Office [2nd floor]"};
  for (size_t i = 0; i < G_N_ELEMENTS(names); i++) {
    kcps_tray_printer_t *p = g_new0(kcps_tray_printer_t, 1);
    p->name = g_strdup(names[i]);
    p->uri = g_strdup_printf("ipp://192.0.2.%zu/ipp/print", i + 1);
    g_ptr_array_add(printers, p);
  }
  guint picked = kcps_tray_default_printer_index(printers);
  ck_assert(kcps_tray_ini_set("default_printer", NULL, NULL));
  g_autofree char *removed = kcps_tray_ini_get("default_printer");
  guint unpicked = kcps_tray_default_printer_index(printers);
  guint missing = kcps_tray_printer_index(printers, "Basement");
  g_ptr_array_unref(printers);
  /* Clean up before asserting. */
  (void)g_unlink(path);
  (void)g_rmdir(dir);
  (void)g_rmdir(home);
  ck_assert_ptr_null(none);
  ck_assert_str_eq(got, "Office [2nd floor]");
  ck_assert_str_eq(other, "false");
  ck_assert_uint_eq(file_st.st_mode & 0777, 0600);
  ck_assert_uint_eq(dir_st.st_mode & 0777, 0700);
  ck_assert_uint_eq(picked, 1);
  ck_assert_ptr_null(removed);
  ck_assert_uint_eq(unpicked, 0);
  ck_assert_uint_eq(missing, 0);
  ck_assert_uint_eq(kcps_tray_printer_index(NULL, "Hall"), 0);
}
END_TEST

START_TEST(test_who_line_and_tooltip)
{
  kcps_tray_status_t unreachable = {0};
  kcps_tray_status_t out = {.reachable = true};
  kcps_tray_status_t in = {.reachable = true, .logged_in = true, .email = "alice@a.test"};
  kcps_tray_status_t local = {.reachable = true, .logged_in = true, .email = "alice@a.test",
                              .spool_mode = "local"};
  kcps_tray_status_t cloud = local;
  cloud.spool_mode = "cloud";
  const struct {
    const kcps_tray_status_t *status;
    guint waiting;
    const char *who;
    const char *tooltip;
  } cases[] = {
    {&unreachable, 2, "KCPS service not running", "KCPS service not running"},
    {&out, 0, "Not logged in", "Not logged in"},
    {&out, 1, "Not logged in", "Not logged in\n1 job waiting"},
    {&in, 0, "Logged in as alice@a.test", "Logged in as alice@a.test"},
    {&in, 3, "Logged in as alice@a.test", "Logged in as alice@a.test\n3 jobs waiting"},
    {&local, 0, "alice@a.test \u00b7 local spool", "alice@a.test \u00b7 local spool"},
    {&cloud, 0, "alice@a.test \u00b7 cloud spool", "alice@a.test \u00b7 cloud spool"},
  };
  for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
    g_autofree char *who = kcps_tray_who_line(cases[i].status);
    g_autofree char *tip = kcps_tray_tooltip(cases[i].status, cases[i].waiting);
    ck_assert_msg(strcmp(who, cases[i].who) == 0, "case %zu: who got '%s', expected '%s'", i,
                  who, cases[i].who);
    ck_assert_msg(strcmp(tip, cases[i].tooltip) == 0,
                  "case %zu: tooltip got '%s', expected '%s'", i, tip, cases[i].tooltip);
  }
}
END_TEST

START_TEST(test_login_messages)
{
  /* An unknown account, a wrong password and a locked account all reach the
   * tray as 401 (kcpsd) — and 403 must not tell anything more. */
  const char *refused = kcps_tray_login_message(401);
  ck_assert_str_eq(refused, kcps_tray_login_message(403));
  static const char *const revealing[] = {"exist", "unknown", "no account", "not found",
                                          "locked", "wrong password"};
  for (size_t i = 0; i < G_N_ELEMENTS(revealing); i++)
    ck_assert_msg(strcasestr(refused, revealing[i]) == NULL, "'%s' reveals '%s'", refused,
                  revealing[i]);
  /* The other failures are told apart, as they need other actions. */
  const long others[] = {0, 400, 502, 500};
  for (size_t i = 0; i < G_N_ELEMENTS(others); i++) {
    const char *got = kcps_tray_login_message(others[i]);
    ck_assert_msg(strcmp(got, refused) != 0, "HTTP %ld: same text as a refusal", others[i]);
    ck_assert_msg(*got != '\0', "HTTP %ld: empty message", others[i]);
  }
  ck_assert_str_ne(kcps_tray_login_message(0), kcps_tray_login_message(502));
  ck_assert_str_eq(kcps_tray_login_message(503), kcps_tray_login_message(502));
}
END_TEST

/* A locked login: kcpsd's answer to the time, the time to the sentence
 * (local time; today the clock only, another day with the date). */
START_TEST(test_locked_messages)
{
  g_autoptr(GDateTime) noon = g_date_time_new_local(2026, 11, 28, 12, 0, 0);
  gint64 now = g_date_time_to_unix(noon);
  g_autofree char *today = kcps_tray_locked_message(now + 42 * 60, now);
  ck_assert_str_eq(today, "Too many failed attempts. Try again after 12:42.");

  /* Ten to midnight, locked for 30 minutes: tomorrow, so with the date. */
  g_autoptr(GDateTime) late = g_date_time_new_local(2026, 11, 28, 23, 50, 0);
  gint64 late_now = g_date_time_to_unix(late);
  g_autoptr(GDateTime) after = g_date_time_add_minutes(late, 30);
  g_autofree char *day = g_date_time_format(after, "%-d %b, %H:%M");
  g_autofree char *want = g_strdup_printf("Too many failed attempts. Try again after %s.", day);
  g_autofree char *tomorrow = kcps_tray_locked_message(late_now + 30 * 60, late_now);
  ck_assert_str_eq(tomorrow, want);
  ck_assert_msg(strstr(tomorrow, "00:20") != NULL && strstr(tomorrow, "29") != NULL,
                "got '%s', expected 29 Nov, 00:20", tomorrow);

  /* kcpsd's answer read by the tray (kcps_json_locked_until: test-common). */
  g_autoptr(JsonNode) locked = json_from_string(
    "{\"error\":\"account_locked\",\"retry_after\":1800,"
    "\"retry_at\":\"2026-11-28T15:42:00Z\"}", NULL);
  g_autoptr(GDateTime) utc = g_date_time_new_utc(2026, 11, 28, 15, 42, 0);
  ck_assert_int_eq(kcps_json_locked_until(locked, NULL), g_date_time_to_unix(utc));

  /* No usable time: the plain refusal, which tells nothing. */
  g_autofree char *none = kcps_tray_locked_message(0, now);
  ck_assert_str_eq(none, kcps_tray_login_message(401));
  g_autofree char *garbage = kcps_tray_locked_message(G_MAXINT64, now);
  ck_assert_str_eq(garbage, kcps_tray_login_message(401));
}
END_TEST

/* The jobs window's search: words, case, width, state labels. */
START_TEST(test_search)
{
  ck_assert_ptr_null(kcps_tray_search_words(NULL));
  ck_assert_ptr_null(kcps_tray_search_words(""));
  ck_assert_ptr_null(kcps_tray_search_words(" \t\u3000 "));
  ck_assert_ptr_null(kcps_tray_search_words("\xff\xfe"));
  g_auto(GStrv) two = kcps_tray_search_words("  Quarterly\tREPORT ");
  ck_assert_uint_eq(g_strv_length(two), 2);
  ck_assert_str_eq(two[0], "quarterly");
  ck_assert_str_eq(two[1], "report");

  struct {
    const char *search, *name, *state;
    bool match;
  } cases[] = {
    {"", "anything", "Printed", true},
    {"report", "Quarterly Report.pdf", "Waiting at the printer", true},
    {"REPORT quart", "Quarterly Report.pdf", "Waiting at the printer", true},
    {"report memo", "Quarterly Report.pdf", "Waiting at the printer", false},
    {"printed", "Memo", "Printed", true},
    {"memo printed", "Memo", "Printed", true},
    {"memo failed", "Memo", "Printed", false},
    {"ＡＢＣ", "abc-invoice", "Printed", true},
    {"ﬁle", "File 7", "Printed", true},
    {"請求書", "2026年11月 請求書.pdf", "印刷済み", true},
    {"印刷", "2026年11月 請求書.pdf", "印刷済み", true},
    {"résumé", "Résumé.pdf", "Printed", true},
    {"resume", "Résumé.pdf", "Printed", false},
    {"x", NULL, NULL, false},
    {"x", "\xff", "\xfe", false},
  };
  for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
    g_auto(GStrv) words = kcps_tray_search_words(cases[i].search);
    ck_assert_msg(kcps_tray_job_matches(words, cases[i].name, cases[i].state) == cases[i].match,
                  "case %zu (%s in %s / %s): expected %s", i, cases[i].search,
                  cases[i].name != NULL ? cases[i].name : "(null)",
                  cases[i].state != NULL ? cases[i].state : "(null)",
                  cases[i].match ? "a match" : "none");
  }
}
END_TEST

/* The jobs window's view model: upload and release progress, the release
 * dialog's controls from a printer's capabilities, its request. */
START_TEST(test_jobs_window_model)
{
  /* upload {done,total} and the release id come from /v1/jobs. */
  g_autoptr(JsonNode) node = parse(
    "{\"jobs\":[{\"id\":\"a\",\"name\":\"x\",\"pages\":1,\"size\":3000000,\"state\":\"spooled\","
    "\"created\":1,\"upload\":{\"done\":1050000,\"total\":3000000},"
    "\"release\":{\"id\":\"r1\",\"state\":\"sending\"}}]}");
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) jobs = kcps_tray_jobs_parse(node, &error);
  ck_assert_ptr_nonnull(jobs);
  kcps_tray_job_info_t *job = g_ptr_array_index(jobs, 0);
  ck_assert_int_eq(job->upload_done, 1050000);
  ck_assert_int_eq(job->upload_total, 3000000);
  ck_assert_str_eq(job->release_id, "r1");
  ck_assert(!kcps_tray_job_releasable(job)); /* a release runs */
  g_autoptr(JsonNode) odd = parse("{\"jobs\":[{\"id\":\"a\",\"pages\":1,\"size\":1,"
                                  "\"state\":\"spooled\",\"created\":1,\"upload\":{\"done\":-1,"
                                  "\"total\":2}}]}");
  g_autoptr(GPtrArray) odd_jobs = kcps_tray_jobs_parse(odd, NULL);
  ck_assert_ptr_nonnull(odd_jobs); /* an odd upload is left out, not an error */
  ck_assert_int_eq(((kcps_tray_job_info_t *)g_ptr_array_index(odd_jobs, 0))->upload_done, -1);

  /* Progress. */
  ck_assert(kcps_tray_progress_fraction(0, 0) < 0);
  ck_assert(kcps_tray_progress_fraction(-1, 10) < 0);
  ck_assert(kcps_tray_progress_fraction(5, 10) == 0.5);
  ck_assert(kcps_tray_progress_fraction(20, 10) == 1.0);
  g_autofree char *text = kcps_tray_upload_progress(1050000, 3000000);
  ck_assert_msg(g_str_has_prefix(text, "Uploading: 1.1") && g_str_has_suffix(text, "(35 %)") &&
                  strstr(text, " of 3.0") != NULL, "%s", text);
  ck_assert_ptr_null(kcps_tray_upload_progress(3000000, 3000000));
  ck_assert_ptr_null(kcps_tray_upload_progress(-1, -1));
  ck_assert_str_eq(kcps_tray_release_label("sending"), "Sending to the printer…");
  ck_assert_str_eq(kcps_tray_release_label("completed"), "Printed");
  ck_assert_str_eq(kcps_tray_release_label("strange"), "strange");
  ck_assert(kcps_tray_release_running("retrying"));
  ck_assert(!kcps_tray_release_running("failed"));
  ck_assert(!kcps_tray_release_running(NULL));
  ck_assert(kcps_tray_release_fraction("printing") > kcps_tray_release_fraction("sending"));
  ck_assert(kcps_tray_release_fraction(NULL) < 0);

  /* Capabilities -> controls. */
  kcps_tray_release_controls_t c;
  kcps_tray_release_controls(NULL, &c);
  ck_assert(!c.show_color && !c.show_duplex);
  ck_assert_int_eq(c.copies_min, 1);
  ck_assert_int_eq(c.copies_max, KCPS_TRAY_COPIES_MAX);
  g_autoptr(JsonNode) caps_node = parse(
    "{\"printer\":{\"uri\":\"ipp://p/ipp/print\",\"capabilities\":{\"color\":true,"
    "\"duplex\":false,\"copies\":{\"min\":1,\"max\":5000}}}}");
  kcps_tray_caps_t caps;
  ck_assert(kcps_tray_caps_parse(caps_node, &caps, NULL));
  kcps_tray_release_controls(&caps, &c);
  ck_assert(c.show_color && !c.show_duplex);
  ck_assert_int_eq(c.copies_max, KCPS_TRAY_COPIES_MAX); /* the API's bound */
  g_autoptr(JsonNode) mono = parse(
    "{\"printer\":{\"capabilities\":{\"color\":false,\"duplex\":true,"
    "\"copies\":{\"min\":1,\"max\":1}}}}");
  ck_assert(kcps_tray_caps_parse(mono, &caps, NULL));
  kcps_tray_release_controls(&caps, &c);
  ck_assert(!c.show_color && c.show_duplex);
  ck_assert_int_eq(c.copies_max, 1);
  g_autoptr(JsonNode) wrong = parse("{\"printer\":{\"capabilities\":{\"color\":\"yes\"}}}");
  g_clear_error(&error);
  ck_assert(!kcps_tray_caps_parse(wrong, &caps, &error));
  ck_assert_ptr_nonnull(strstr(error->message, "color"));

  /* Printers and URIs. */
  g_autoptr(JsonNode) list = parse(
    "{\"discovery\":\"available\",\"printers\":[{\"name\":\"Office\",\"uri\":\"ipps://o:631/"
    "ipp/print\"},{\"uri\":\"ipp://b/ipp/print\"}]}");
  g_autoptr(GPtrArray) printers = kcps_tray_printers_parse(list, NULL);
  ck_assert_ptr_nonnull(printers);
  ck_assert_int_eq(printers->len, 2);
  ck_assert_str_eq(((kcps_tray_printer_t *)g_ptr_array_index(printers, 0))->name, "Office");
  ck_assert_str_eq(((kcps_tray_printer_t *)g_ptr_array_index(printers, 1))->name,
                   "ipp://b/ipp/print");
  ck_assert(kcps_tray_printer_uri_ok("ipp://127.0.0.1:631/ipp/print"));
  ck_assert(!kcps_tray_printer_uri_ok("http://x/"));
  ck_assert(!kcps_tray_printer_uri_ok("ipp://"));
  ck_assert(!kcps_tray_printer_uri_ok("ipp://a b/"));
  ck_assert(!kcps_tray_printer_uri_ok(NULL));

  /* The request: colour left out for the printer's choice, copies clamped. */
  g_autoptr(JsonNode) body = kcps_tray_release_body("ipp://p/ipp/print", 0, -1, true);
  g_autofree char *json = json_to_string(body, FALSE);
  ck_assert_str_eq(json, "{\"printer\":\"ipp://p/ipp/print\",\"copies\":1,\"duplex\":true}");
  g_autoptr(JsonNode) body2 = kcps_tray_release_body("ipp://p/ipp/print", 5000, 0, false);
  g_autofree char *json2 = json_to_string(body2, FALSE);
  ck_assert_str_eq(json2,
                   "{\"printer\":\"ipp://p/ipp/print\",\"copies\":999,\"color\":false,"
                   "\"duplex\":false}");
  g_autoptr(JsonNode) rel = parse("{\"id\":\"r9\",\"state\":\"failed\",\"message\":\"no paper\"}");
  g_autofree char *id = NULL, *state = NULL, *message = NULL;
  ck_assert(kcps_tray_release_parse(rel, &id, &state, &message));
  ck_assert_str_eq(id, "r9");
  ck_assert_str_eq(message, "no paper");
}
END_TEST

static Suite *ui_suite(void)
{
  Suite *s = suite_create("ui-model");
  TCase *tc = tcase_create("format");
  tcase_add_test(tc, test_format_size);
  tcase_add_test(tc, test_format_pages);
  tcase_add_test(tc, test_format_time);
  tcase_add_test(tc, test_state_labels);
  tcase_add_test(tc, test_job_summary);
  suite_add_tcase(s, tc);
  tc = tcase_create("parse");
  tcase_add_test(tc, test_status_parse);
  tcase_add_test(tc, test_jobs_parse);
  suite_add_tcase(s, tc);
  tc = tcase_create("notices");
  tcase_add_test(tc, test_notices);
  tcase_add_test(tc, test_notices_upload_and_release);
  tcase_add_test(tc, test_quota);
  suite_add_tcase(s, tc);
  tc = tcase_create("icon");
  tcase_add_test(tc, test_icon_state);
  tcase_add_test(tc, test_icon_uploading);
  tcase_add_test(tc, test_settings);
  tcase_add_test(tc, test_default_printer);
  tcase_add_test(tc, test_who_line_and_tooltip);
  tcase_add_test(tc, test_login_messages);
  tcase_add_test(tc, test_locked_messages);
  tcase_add_test(tc, test_jobs_window_model);
  tcase_add_test(tc, test_search);
  suite_add_tcase(s, tc);
  return s;
}

int main(void)
{
  /* The expected texts are the untranslated English ones. */
  setlocale(LC_ALL, "C.UTF-8");
  SRunner *runner = srunner_create(ui_suite());
  srunner_run_all(runner, CK_NORMAL);
  int failed = srunner_ntests_failed(runner);
  srunner_free(runner);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
