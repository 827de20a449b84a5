/* kcpsd's push channel (client/daemon-events.c): the per-stream queue
 * (coalescing, the collapse into "resync"), the caps on streams, who gets
 * which events, and that a stop or a hang-up ends a blocked reader. */
#include <check.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client/daemon-private.h"

/* Just the fields daemon-events.c uses. */
typedef struct fixture_s {
  kcps_daemon_t daemon;
} fixture_t;

static void fixture_init(fixture_t *f, guint queue_cap, guint per_user, guint total)
{
  memset(f, 0, sizeof *f);
  f->daemon.events = kcps__events_new(queue_cap, per_user, total);
  g_mutex_init(&f->daemon.quota_lock);
  f->daemon.quotas = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, g_free);
}

static void fixture_clear(fixture_t *f)
{
  kcps__events_free(f->daemon.events);
  g_hash_table_destroy(f->daemon.quotas);
  g_mutex_clear(&f->daemon.quota_lock);
}

/* The event types in text, space-separated, e.g. "ready job job". */
static char *types_of(const char *text)
{
  GString *types = g_string_new(NULL);
  g_auto(GStrv) lines = g_strsplit(text != NULL ? text : "", "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++) {
    if (g_str_has_prefix(lines[i], "event: "))
      g_string_append_printf(types, "%s%s", types->len > 0 ? " " : "", lines[i] + 7);
  }
  return g_string_free(types, FALSE);
}

START_TEST(test_events_format_and_ready)
{
  fixture_t f;
  fixture_init(&f, 0, 0, 0);
  g_autoptr(GError) error = NULL;
  kcps__events_sub_t *sub = kcps__events_subscribe(f.daemon.events, 1000, -1, &error);
  ck_assert_msg(sub != NULL, "subscribe: %s", error != NULL ? error->message : "?");
  kcps__events_emit(&f.daemon, 1000, "job", "j1");
  kcps__events_emit(&f.daemon, 1000, "session", NULL);
  g_autofree char *text = kcps__events_next(sub);
  ck_assert_str_eq(text, "event: ready\ndata: {\"type\":\"ready\"}\n\n"
                         "event: job\ndata: {\"type\":\"job\",\"id\":\"j1\"}\n\n"
                         "event: session\ndata: {\"type\":\"session\"}\n\n");
  g_autofree char *none = kcps__events_next(sub);
  ck_assert_msg(none == NULL, "nothing queued: got %s", none);
  kcps__events_unsubscribe(sub);
  fixture_clear(&f);
}
END_TEST

START_TEST(test_events_coalesce)
{
  fixture_t f;
  fixture_init(&f, 0, 0, 0);
  kcps__events_sub_t *sub = kcps__events_subscribe(f.daemon.events, 1000, -1, NULL);
  g_free(kcps__events_next(sub)); /* ready */
  /* The same job's progress 100 times while nobody read: one event. */
  for (int i = 0; i < 100; i++)
    kcps__events_emit(&f.daemon, 1000, "upload", "j1");
  kcps__events_emit(&f.daemon, 1000, "upload", "j2");
  kcps__events_emit(&f.daemon, 1000, "job", "j1");
  kcps__events_emit(&f.daemon, 1000, "upload", "j1");
  g_autofree char *text = kcps__events_next(sub);
  g_autofree char *types = types_of(text);
  ck_assert_str_eq(types, "upload upload job");
  ck_assert_ptr_nonnull(strstr(text, "\"id\":\"j2\""));
  /* Once read, the same event is new again. */
  kcps__events_emit(&f.daemon, 1000, "upload", "j1");
  g_autofree char *again = kcps__events_next(sub);
  g_autofree char *again_types = types_of(again);
  ck_assert_str_eq(again_types, "upload");
  kcps__events_unsubscribe(sub);
  fixture_clear(&f);
}
END_TEST

START_TEST(test_events_queue_cap_resync)
{
  fixture_t f;
  fixture_init(&f, 4, 0, 0);
  kcps__events_sub_t *sub = kcps__events_subscribe(f.daemon.events, 1000, -1, NULL);
  g_free(kcps__events_next(sub));
  for (int i = 0; i < 4; i++) {
    g_autofree char *id = g_strdup_printf("j%d", i);
    kcps__events_emit(&f.daemon, 1000, "job", id);
  }
  /* The fifth distinct event does not fit: one resync replaces them all,
   * and nothing after it is queued until it is read. */
  kcps__events_emit(&f.daemon, 1000, "job", "j4");
  kcps__events_emit(&f.daemon, 1000, "release", "r1");
  g_autofree char *text = kcps__events_next(sub);
  g_autofree char *types = types_of(text);
  ck_assert_str_eq(types, "resync");
  ck_assert_str_eq(text, "event: resync\ndata: {\"type\":\"resync\"}\n\n");
  kcps__events_emit(&f.daemon, 1000, "job", "j5");
  g_autofree char *after = kcps__events_next(sub);
  g_autofree char *after_types = types_of(after);
  ck_assert_str_eq(after_types, "job");
  kcps__events_unsubscribe(sub);
  fixture_clear(&f);
}
END_TEST

START_TEST(test_events_only_own_user)
{
  fixture_t f;
  fixture_init(&f, 0, 0, 0);
  kcps__events_sub_t *a = kcps__events_subscribe(f.daemon.events, 1000, -1, NULL);
  kcps__events_sub_t *b = kcps__events_subscribe(f.daemon.events, 1001, -1, NULL);
  g_free(kcps__events_next(a));
  g_free(kcps__events_next(b));
  kcps__events_emit(&f.daemon, 1000, "job", "secret-of-a");
  g_autofree char *for_b = kcps__events_next(b);
  ck_assert_msg(for_b == NULL, "uid 1001 got uid 1000's event: %s", for_b);
  g_autofree char *for_a = kcps__events_next(a);
  ck_assert_ptr_nonnull(for_a);
  ck_assert_ptr_nonnull(strstr(for_a, "secret-of-a"));
  kcps__events_unsubscribe(a);
  kcps__events_unsubscribe(b);
  fixture_clear(&f);
}
END_TEST

START_TEST(test_events_stream_caps)
{
  fixture_t f;
  fixture_init(&f, 0, 2, 3);
  g_autoptr(GError) error = NULL;
  kcps__events_sub_t *a1 = kcps__events_subscribe(f.daemon.events, 1000, -1, NULL);
  kcps__events_sub_t *a2 = kcps__events_subscribe(f.daemon.events, 1000, -1, NULL);
  ck_assert(a1 != NULL && a2 != NULL);
  kcps__events_sub_t *a3 = kcps__events_subscribe(f.daemon.events, 1000, -1, &error);
  ck_assert_msg(a3 == NULL, "a third stream of one account was accepted (cap 2)");
  ck_assert(g_error_matches(error, G_IO_ERROR, G_IO_ERROR_BUSY));
  g_clear_error(&error);
  kcps__events_sub_t *b1 = kcps__events_subscribe(f.daemon.events, 1001, -1, NULL);
  ck_assert_ptr_nonnull(b1);
  kcps__events_sub_t *c1 = kcps__events_subscribe(f.daemon.events, 1002, -1, &error);
  ck_assert_msg(c1 == NULL, "a fourth stream in all was accepted (cap 3)");
  ck_assert(g_error_matches(error, G_IO_ERROR, G_IO_ERROR_BUSY));
  g_clear_error(&error);
  ck_assert_uint_eq(kcps__events_count(f.daemon.events, 1000), 2);
  /* Closing one frees its place. */
  kcps__events_unsubscribe(a1);
  ck_assert_uint_eq(kcps__events_count(f.daemon.events, 1000), 1);
  c1 = kcps__events_subscribe(f.daemon.events, 1002, -1, &error);
  ck_assert_msg(c1 != NULL, "a place freed is taken: %s", error != NULL ? error->message : "");
  kcps__events_unsubscribe(a2);
  kcps__events_unsubscribe(b1);
  kcps__events_unsubscribe(c1);
  ck_assert_uint_eq(kcps__events_count(f.daemon.events, 1000), 0);
  fixture_clear(&f);
}
END_TEST

/* A reader thread: reads until the stream ends, keeps what it got. */
typedef struct reader_s {
  kcps__events_sub_t *sub;
  GString *got;
  gssize last;
} reader_t;

static gpointer read_all(gpointer data)
{
  reader_t *r = data;
  char buf[7]; /* small: events are handed out in pieces */
  gssize n;
  while ((n = kcps__events_read(r->sub, buf, sizeof buf)) > 0)
    g_string_append_len(r->got, buf, n);
  r->last = n;
  return NULL;
}

START_TEST(test_events_read_blocks_until_stop)
{
  fixture_t f;
  fixture_init(&f, 0, 0, 0);
  reader_t r = {.got = g_string_new(NULL), .last = 99};
  r.sub = kcps__events_subscribe(f.daemon.events, 1000, -1, NULL);
  GThread *thread = g_thread_new("reader", read_all, &r);
  kcps__events_emit(&f.daemon, 1000, "job", "j1");
  kcps__events_stop(f.daemon.events);
  g_thread_join(thread);
  ck_assert_int_eq(r.last, 0);
  /* Whatever was queued before the stop may or may not have gone out; the
   * ready event always did. */
  ck_assert_msg(g_str_has_prefix(r.got->str, "event: ready\n"), "got %s", r.got->str);
  g_autoptr(GError) error = NULL;
  kcps__events_sub_t *late = kcps__events_subscribe(f.daemon.events, 1000, -1, &error);
  ck_assert_msg(late == NULL, "a stream was accepted after the stop");
  ck_assert(g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CLOSED));
  kcps__events_unsubscribe(r.sub);
  g_string_free(r.got, TRUE);
  fixture_clear(&f);
}
END_TEST

START_TEST(test_events_read_ends_on_hangup)
{
  fixture_t f;
  fixture_init(&f, 0, 0, 0);
  int pair[2];
  ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, pair), 0);
  reader_t r = {.got = g_string_new(NULL), .last = 99};
  r.sub = kcps__events_subscribe(f.daemon.events, 1000, pair[0], NULL);
  GThread *thread = g_thread_new("reader", read_all, &r);
  kcps__events_emit(&f.daemon, 1000, "job", "j1");
  /* The peer goes away: the reader ends by itself, no stop needed. */
  close(pair[1]);
  g_thread_join(thread);
  ck_assert_int_eq(r.last, 0);
  kcps__events_unsubscribe(r.sub);
  close(pair[0]);
  ck_assert_uint_eq(kcps__events_count(f.daemon.events, 1000), 0);
  g_string_free(r.got, TRUE);
  fixture_clear(&f);
}
END_TEST

START_TEST(test_events_no_subscribers)
{
  fixture_t f;
  fixture_init(&f, 0, 0, 0);
  /* Nobody listens: emitting is a no-op, from any thread. */
  kcps__events_emit(&f.daemon, 1000, "job", "j1");
  kcps__events_emit(&f.daemon, 1000, "quota", NULL);
  kcps__events_emit(NULL, 1000, "job", "j1");
  ck_assert_uint_eq(kcps__events_count(f.daemon.events, 1000), 0);
  fixture_clear(&f);
}
END_TEST

static Suite *events_suite(void)
{
  Suite *s = suite_create("events");
  TCase *tc = tcase_create("queue");
  tcase_add_test(tc, test_events_format_and_ready);
  tcase_add_test(tc, test_events_coalesce);
  tcase_add_test(tc, test_events_queue_cap_resync);
  tcase_add_test(tc, test_events_only_own_user);
  tcase_add_test(tc, test_events_no_subscribers);
  suite_add_tcase(s, tc);
  TCase *streams = tcase_create("streams");
  tcase_add_test(streams, test_events_stream_caps);
  tcase_add_test(streams, test_events_read_blocks_until_stop);
  tcase_add_test(streams, test_events_read_ends_on_hangup);
  suite_add_tcase(s, streams);
  return s;
}

int main(void)
{
  SRunner *runner = srunner_create(events_suite());
  srunner_run_all(runner, CK_NORMAL);
  int failed = srunner_ntests_failed(runner);
  srunner_free(runner);
  return failed == 0 ? 0 : 1;
}
