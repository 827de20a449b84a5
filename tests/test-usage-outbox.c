/* The usage outbox (client/usage-outbox.c) and the quota statement verifier
 * (common/quota-statement.c): durable across a restart, retried, dropped on
 * a refusal, counted once by the real server however often it is posted,
 * and statements that verify only when signed as statements by the key. */
#include "client/usage-outbox.h"
#include "common/crypto.h"
#include "common/json-util.h"
#include "common/quota-statement.h"
#include "common/ticket.h"
#include "server-fixture.h"

#include <check.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *make_tmp(void)
{
  g_autoptr(GError) error = NULL;
  char *dir = g_dir_make_tmp("kcps-usage-XXXXXX", &error);
  ck_assert_msg(dir != NULL, "%s", error != NULL ? error->message : "");
  return dir;
}

/* --- statements ------------------------------------------------------------------ */

static char *payload(const char *typ, gint64 iat, gint64 exp, gint64 quota, gint64 used)
{
  return g_strdup_printf("{\"v\":1,\"typ\":\"%s\",\"user\":\"alice@a.test\",\"user_id\":\"u1\","
                         "\"month\":\"2026-11\",\"start\":1793491200,\"end\":1796083200,"
                         "\"quota_pages\":%" G_GINT64_FORMAT ",\"quota_color_pages\":null,"
                         "\"used_pages\":%" G_GINT64_FORMAT ",\"used_color_pages\":0,"
                         "\"iat\":%" G_GINT64_FORMAT ",\"exp\":%" G_GINT64_FORMAT "}",
                         typ, quota, used, iat, exp);
}

typedef struct keys_s {
  char *tmp, *path, *other_path;
  char *pub, *other_pub;
  kcps_ticket_key_t *key;
} keys_t;

static void keys_make(keys_t *k)
{
  g_autoptr(GError) error = NULL;
  k->tmp = make_tmp();
  k->path = g_build_filename(k->tmp, "key.pem", NULL);
  k->other_path = g_build_filename(k->tmp, "other.pem", NULL);
  k->key = kcps_ticket_key_load_or_create(k->path, &error);
  ck_assert_msg(k->key != NULL, "%s", error != NULL ? error->message : "");
  g_autoptr(kcps_ticket_key_t) other = kcps_ticket_key_load_or_create(k->other_path, &error);
  ck_assert(other != NULL);
  k->pub = kcps_ticket_key_public_b64(k->key);
  k->other_pub = kcps_ticket_key_public_b64(other);
}

static void keys_free(keys_t *k)
{
  sfx_remove_tree(k->tmp);
  g_free(k->tmp);
  g_free(k->path);
  g_free(k->other_path);
  g_free(k->pub);
  g_free(k->other_pub);
  kcps_ticket_key_free(k->key);
}

START_TEST(test_statement_verify)
{
  keys_t k;
  keys_make(&k);
  gint64 now = 1794000000;
  g_autofree char *p = payload("kcps-quota", now, now + 86400, 50, 12);
  g_autoptr(GError) error = NULL;
  g_autofree char *text = kcps_quota_statement_sign(k.path, p, &error);
  ck_assert_msg(text != NULL, "%s", error != NULL ? error->message : "");

  /* Valid. */
  kcps_quota_statement_t st;
  ck_assert_msg(kcps_quota_statement_verify(k.pub, text, now, &st, &error), "%s",
                error != NULL ? error->message : "");
  ck_assert_str_eq(st.user, "alice@a.test");
  ck_assert_str_eq(st.month, "2026-11");
  ck_assert_int_eq(st.quota_pages, 50);
  ck_assert_int_eq(st.quota_color_pages, -1);
  ck_assert_int_eq(st.used_pages, 12);
  ck_assert_int_eq(st.iat, now);
  ck_assert_int_eq(kcps_quota_statement_left(&st, false, 0, 0), 38);
  ck_assert_int_eq(kcps_quota_statement_left(&st, true, 30, 30), 8);
  ck_assert_int_eq(kcps_quota_statement_left(&st, false, 100, 0), 0);

  /* Tampered: one payload character changed (the used figure). */
  g_autofree char *tampered = g_strdup(text);
  size_t plen = 0;
  g_autofree char *head = g_strndup(text, (gsize)(strchr(text, '.') - text));
  g_autofree guchar *raw = kcps_base64url_decode(head, &plen);
  g_autofree char *forged_payload = g_strndup((const char *)raw, plen);
  char *used = strstr(forged_payload, "\"used_pages\":12");
  ck_assert(used != NULL);
  used[strlen("\"used_pages\":1")] = '0'; /* 12 -> 10 */
  g_autofree char *forged_head = kcps_base64url_encode(forged_payload, strlen(forged_payload));
  g_autofree char *forged = g_strconcat(forged_head, strchr(text, '.'), NULL);
  g_clear_error(&error);
  ck_assert(!kcps_quota_statement_verify(k.pub, forged, now, &st, &error));
  ck_assert(g_error_matches(error, KCPS_CRYPTO_ERROR, KCPS_CRYPTO_ERROR_SIGNATURE));
  ck_assert_int_eq(st.used_pages, 0);
  /* A flipped signature character. */
  size_t last = strlen(tampered) - 2;
  tampered[last] = tampered[last] == 'A' ? 'B' : 'A';
  g_clear_error(&error);
  ck_assert(!kcps_quota_statement_verify(k.pub, tampered, now, &st, &error));
  ck_assert(error->domain == KCPS_CRYPTO_ERROR);

  /* Wrong key. */
  g_clear_error(&error);
  ck_assert(!kcps_quota_statement_verify(k.other_pub, text, now, &st, &error));
  ck_assert(g_error_matches(error, KCPS_CRYPTO_ERROR, KCPS_CRYPTO_ERROR_SIGNATURE));
  g_clear_error(&error);
  ck_assert(!kcps_quota_statement_verify("not-a-key", text, now, &st, &error));
  ck_assert(g_error_matches(error, KCPS_CRYPTO_ERROR, KCPS_CRYPTO_ERROR_MALFORMED));

  /* Expired: at exp and after; the figures are still told. */
  g_clear_error(&error);
  ck_assert(!kcps_quota_statement_verify(k.pub, text, now + 86400, &st, &error));
  ck_assert(g_error_matches(error, KCPS_CRYPTO_ERROR, KCPS_CRYPTO_ERROR_EXPIRED));
  ck_assert_int_eq(st.quota_pages, 50);

  /* A pull ticket signed by the same key is no statement, nor the other way. */
  kcps_ticket_t ticket = {.tid = "t1", .job = "j1", .cjob = "c1", .user = "alice@a.test",
                          .device = "MFP-1", .exp = now + 60};
  g_autofree char *ticket_text = kcps_ticket_sign(k.key, &ticket, &error);
  ck_assert(ticket_text != NULL);
  g_clear_error(&error);
  ck_assert(!kcps_quota_statement_verify(k.pub, ticket_text, now, &st, &error));
  ck_assert(g_error_matches(error, KCPS_CRYPTO_ERROR, KCPS_CRYPTO_ERROR_SIGNATURE));
  g_clear_error(&error);
  kcps_ticket_t *as_ticket = kcps_ticket_verify(k.key, text, now, &error);
  ck_assert(as_ticket == NULL);
  ck_assert(error != NULL);

  /* Signed, but not a version 1 quota statement. */
  g_autofree char *other_typ = payload("kcps-ticket", now, now + 86400, 50, 12);
  g_autofree char *other_text = kcps_quota_statement_sign(k.path, other_typ, NULL);
  g_clear_error(&error);
  ck_assert(!kcps_quota_statement_verify(k.pub, other_text, now, &st, &error));
  ck_assert(g_error_matches(error, KCPS_CRYPTO_ERROR, KCPS_CRYPTO_ERROR_MALFORMED));
  /* Not of the form a.b. */
  static const char *const bad[] = {"", "abc", "a.b.c", "..", "a."};
  for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
    g_clear_error(&error);
    ck_assert(!kcps_quota_statement_verify(k.pub, bad[i], now, &st, &error));
    ck_assert(error != NULL && error->domain == KCPS_CRYPTO_ERROR);
  }
  /* A signing key that is not there. */
  g_autofree char *missing = g_build_filename(k.tmp, "none.pem", NULL);
  g_clear_error(&error);
  ck_assert(kcps_quota_statement_sign(missing, p, &error) == NULL);
  ck_assert(error != NULL);
  keys_free(&k);
}
END_TEST

/* The real server's statement verifies with the common verifier. */
START_TEST(test_statement_from_server)
{
  g_autofree char *alice = sfx_login("alice@a.test", sfx.alice_pw);
  g_autoptr(JsonNode) q = NULL;
  ck_assert_int_eq(sfx_call("GET", "/api/v1/me/quota", alice, NULL, &q), 200);
  g_autoptr(JsonNode) k = NULL;
  ck_assert_int_eq(sfx_call("GET", "/api/v1/ticket-key", NULL, NULL, &k), 200);
  kcps_quota_statement_t st;
  g_autoptr(GError) error = NULL;
  ck_assert_msg(kcps_quota_statement_verify(sfx_str(k, "public_key"), sfx_str(q, "statement"),
                                            g_get_real_time() / G_USEC_PER_SEC, &st, &error),
                "%s", error != NULL ? error->message : "");
  ck_assert_str_eq(st.user, "alice@a.test");
}
END_TEST

/* --- the outbox -------------------------------------------------------------------- */

static kcps_usage_record_t record(const char *key, int pages, int copies, bool color)
{
  kcps_usage_record_t rec = {
    .key = (char *)key,
    .uid = 1000,
    .user = (char *)"alice@a.test",
    .printer = (char *)"ipp://127.0.0.1:8631/ipp/print",
    .job_id = (char *)"0b7c1e4e-1111-4222-8333-944455556666",
    .time = g_get_real_time() / G_USEC_PER_SEC - 5,
    .pages = pages,
    .copies = copies,
    .color = color,
    .duplex = false,
  };
  return rec;
}

/* A scripted poster: each call pops the next answer for its key. */
typedef struct script_s {
  GHashTable *answers; /* key -> GQueue of GINT_TO_POINTER(kcps_usage_post_t + 1) */
  GHashTable *calls;   /* key -> count */
  GMutex lock;
} script_t;

static void script_init(script_t *s)
{
  s->answers = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                     (GDestroyNotify)g_queue_free);
  s->calls = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  g_mutex_init(&s->lock);
}

static void script_clear(script_t *s)
{
  g_hash_table_destroy(s->answers);
  g_hash_table_destroy(s->calls);
  g_mutex_clear(&s->lock);
}

static void script_add(script_t *s, const char *key, kcps_usage_post_t answer)
{
  GQueue *q = g_hash_table_lookup(s->answers, key);
  if (q == NULL) {
    q = g_queue_new();
    g_hash_table_insert(s->answers, g_strdup(key), q);
  }
  g_queue_push_tail(q, GINT_TO_POINTER(answer + 1));
}

static int script_calls(script_t *s, const char *key)
{
  g_mutex_lock(&s->lock);
  int n = GPOINTER_TO_INT(g_hash_table_lookup(s->calls, key));
  g_mutex_unlock(&s->lock);
  return n;
}

static kcps_usage_post_t scripted_post(void *data, const kcps_usage_record_t *rec)
{
  script_t *s = data;
  g_mutex_lock(&s->lock);
  int n = GPOINTER_TO_INT(g_hash_table_lookup(s->calls, rec->key));
  g_hash_table_replace(s->calls, g_strdup(rec->key), GINT_TO_POINTER(n + 1));
  GQueue *q = g_hash_table_lookup(s->answers, rec->key);
  int answer = q != NULL && !g_queue_is_empty(q) ? GPOINTER_TO_INT(g_queue_pop_head(q)) - 1
                                                 : KCPS_USAGE_POST_DONE;
  g_mutex_unlock(&s->lock);
  return (kcps_usage_post_t)answer;
}

START_TEST(test_outbox_durable)
{
  g_autofree char *tmp = make_tmp();
  g_autofree char *path = g_build_filename(tmp, "usage-outbox.jsonl", NULL);
  g_autoptr(GError) error = NULL;
  kcps_usage_outbox_t *o = kcps_usage_outbox_open(path, &error);
  ck_assert_msg(o != NULL, "%s", error != NULL ? error->message : "");
  kcps_usage_record_t a = record("rel-a", 3, 2, false);
  kcps_usage_record_t b = record("rel-b", 1, 1, true);
  ck_assert(kcps_usage_outbox_add(o, &a, &error));
  ck_assert(kcps_usage_outbox_add(o, &b, &error));
  ck_assert(kcps_usage_outbox_add(o, &a, &error)); /* the same key: not twice */
  ck_assert_uint_eq(kcps_usage_outbox_pending(o), 2);
  kcps_usage_outbox_free(o);

  GStatBuf sb;
  ck_assert_int_eq(g_stat(path, &sb), 0);
  ck_assert_int_eq(sb.st_mode & 0777, 0600);

  /* A crash mid-append leaves a torn line: ignored (and cleaned away). */
  int fd = g_open(path, O_WRONLY | O_APPEND, 0);
  ck_assert_int_ge(fd, 0);
  ck_assert_int_eq(write(fd, "{\"add\":{\"key\":\"rel-c\",\"ui", 25), 25);
  close(fd);

  o = kcps_usage_outbox_open(path, &error);
  ck_assert_msg(o != NULL, "%s", error != NULL ? error->message : "");
  ck_assert_uint_eq(kcps_usage_outbox_pending(o), 2);
  gint64 color = -1;
  ck_assert_int_eq(kcps_usage_outbox_pages_since(o, "ALICE@a.test", 0, &color), 7);
  ck_assert_int_eq(color, 1);
  ck_assert_int_eq(kcps_usage_outbox_pages_since(o, "bob@a.test", 0, &color), 0);
  ck_assert_int_eq(sb.st_mode & 0777, 0600);
  kcps_usage_outbox_free(o);
  ck_assert_int_eq(g_stat(path, &sb), 0);
  ck_assert_int_eq(sb.st_mode & 0777, 0600);
  sfx_remove_tree(tmp);
}
END_TEST

START_TEST(test_outbox_retry_and_drop)
{
  g_autofree char *tmp = make_tmp();
  g_autofree char *path = g_build_filename(tmp, "usage-outbox.jsonl", NULL);
  g_autoptr(GError) error = NULL;
  kcps_usage_outbox_t *o = kcps_usage_outbox_open(path, &error);
  ck_assert(o != NULL);
  kcps_usage_record_t a = record("rel-a", 2, 1, false);
  kcps_usage_record_t b = record("rel-b", 4, 1, false);
  kcps_usage_record_t c = record("rel-c", 5, 1, false);
  ck_assert(kcps_usage_outbox_add(o, &a, &error));
  ck_assert(kcps_usage_outbox_add(o, &b, &error));
  ck_assert(kcps_usage_outbox_add(o, &c, &error));
  script_t s;
  script_init(&s);
  script_add(&s, "rel-a", KCPS_USAGE_POST_RETRY);
  script_add(&s, "rel-a", KCPS_USAGE_POST_RETRY);
  script_add(&s, "rel-b", KCPS_USAGE_POST_DROP);
  script_add(&s, "rel-c", KCPS_USAGE_POST_WAIT);
  ck_assert_uint_eq(kcps_usage_outbox_flush(o, scripted_post, &s), 2);
  ck_assert_uint_eq(kcps_usage_outbox_flush(o, scripted_post, &s), 1);
  ck_assert_uint_eq(kcps_usage_outbox_flush(o, scripted_post, &s), 0);
  ck_assert_int_eq(script_calls(&s, "rel-a"), 3);
  ck_assert_int_eq(script_calls(&s, "rel-b"), 1);
  ck_assert_int_eq(script_calls(&s, "rel-c"), 2);
  /* Sent ones after iat still count for an offline figure; dropped do not. */
  gint64 iat = g_get_real_time() / G_USEC_PER_SEC - 60;
  ck_assert_int_eq(kcps_usage_outbox_pages_since(o, "alice@a.test", iat, NULL), 7);
  ck_assert_int_eq(kcps_usage_outbox_pages_since(o, "alice@a.test", G_MAXINT64, NULL), 0);
  kcps_usage_outbox_free(o);

  /* Settled stays settled after a restart: nothing is posted again. */
  o = kcps_usage_outbox_open(path, &error);
  ck_assert(o != NULL);
  ck_assert_uint_eq(kcps_usage_outbox_pending(o), 0);
  ck_assert_uint_eq(kcps_usage_outbox_flush(o, scripted_post, &s), 0);
  ck_assert_int_eq(script_calls(&s, "rel-a"), 3);
  ck_assert_int_eq(kcps_usage_outbox_pages_since(o, "alice@a.test", iat, NULL), 7);
  kcps_usage_outbox_free(o);
  script_clear(&s);
  sfx_remove_tree(tmp);
}
END_TEST

/* The poster thread retries with backoff until the server takes it. */
START_TEST(test_outbox_thread)
{
  g_autofree char *tmp = make_tmp();
  g_autofree char *path = g_build_filename(tmp, "usage-outbox.jsonl", NULL);
  g_autoptr(GError) error = NULL;
  kcps_usage_outbox_t *o = kcps_usage_outbox_open(path, &error);
  ck_assert(o != NULL);
  script_t s;
  script_init(&s);
  script_add(&s, "rel-a", KCPS_USAGE_POST_RETRY);
  script_add(&s, "rel-a", KCPS_USAGE_POST_RETRY);
  script_add(&s, "rel-w", KCPS_USAGE_POST_WAIT);
  kcps_usage_outbox_start(o, scripted_post, &s, 10, 40);
  kcps_usage_record_t a = record("rel-a", 2, 1, false);
  kcps_usage_record_t w = record("rel-w", 1, 1, false);
  ck_assert(kcps_usage_outbox_add(o, &a, &error));
  ck_assert(kcps_usage_outbox_add(o, &w, &error));
  /* Wait for the outcome (bounded by the test's timeout, not by time). */
  while (kcps_usage_outbox_pending(o) > 0 || script_calls(&s, "rel-a") < 3)
    g_usleep(10000);
  ck_assert_int_eq(script_calls(&s, "rel-a"), 3);
  ck_assert_int_ge(script_calls(&s, "rel-w"), 2);
  kcps_usage_outbox_kick(o);
  kcps_usage_outbox_free(o);
  script_clear(&s);
  sfx_remove_tree(tmp);
}
END_TEST

/* --- against the real server ----------------------------------------------------- */

typedef struct server_poster_s {
  const char *token;
  long last_status;
  char *last_message;
} server_poster_t;

static kcps_usage_post_t server_post(void *data, const kcps_usage_record_t *rec)
{
  server_poster_t *p = data;
  g_autoptr(JsonNode) body = kcps_usage_record_body(rec);
  g_autofree char *text = kcps_json_to_string(body);
  g_autoptr(JsonNode) answer = NULL;
  long st = sfx_call("POST", "/api/v1/usage", p->token, text, &answer);
  p->last_status = st;
  g_free(p->last_message);
  p->last_message = g_strdup(answer != NULL ? sfx_str(answer, "message") : NULL);
  if (st == 200 || st == 201)
    return KCPS_USAGE_POST_DONE;
  if (st >= 400 && st < 500)
    return KCPS_USAGE_POST_DROP;
  return KCPS_USAGE_POST_RETRY;
}

static gint64 used_pages(const char *token)
{
  g_autoptr(JsonNode) q = NULL;
  ck_assert_int_eq(sfx_call("GET", "/api/v1/me/quota", token, NULL, &q), 200);
  return sfx_int(q, "used_pages");
}

START_TEST(test_outbox_server_once)
{
  g_autofree char *alice = sfx_login("alice@a.test", sfx.alice_pw);
  g_autofree char *tmp = make_tmp();
  g_autofree char *path = g_build_filename(tmp, "usage-outbox.jsonl", NULL);
  g_autofree char *copy = g_build_filename(tmp, "copy.jsonl", NULL);
  g_autoptr(GError) error = NULL;
  gint64 before = used_pages(alice);

  kcps_usage_outbox_t *o = kcps_usage_outbox_open(path, &error);
  ck_assert(o != NULL);
  g_autofree char *key = g_uuid_string_random();
  kcps_usage_record_t a = record(key, 3, 2, false);
  ck_assert(kcps_usage_outbox_add(o, &a, &error));
  kcps_usage_outbox_free(o);
  /* The file as it was before the post: what a kcpsd killed after the
   * server took the record, but before it wrote "sent", finds again. */
  g_autofree char *text = NULL;
  gsize len = 0;
  ck_assert(g_file_get_contents(path, &text, &len, NULL));
  ck_assert(g_file_set_contents(copy, text, (gssize)len, NULL));

  server_poster_t p = {.token = alice};
  o = kcps_usage_outbox_open(path, &error);
  ck_assert_uint_eq(kcps_usage_outbox_flush(o, server_post, &p), 0);
  ck_assert_int_eq(p.last_status, 201);
  kcps_usage_outbox_free(o);
  ck_assert_int_eq(used_pages(alice), before + 6);

  /* The retry: posted again, the server answers 200 and counts nothing. */
  o = kcps_usage_outbox_open(copy, &error);
  ck_assert_uint_eq(kcps_usage_outbox_pending(o), 1);
  ck_assert_uint_eq(kcps_usage_outbox_flush(o, server_post, &p), 0);
  ck_assert_int_eq(p.last_status, 200);
  kcps_usage_outbox_free(o);
  ck_assert_int_eq(used_pages(alice), before + 6);

  /* The same key with other content: 409, dropped, not counted. */
  g_autofree char *path2 = g_build_filename(tmp, "other.jsonl", NULL);
  kcps_usage_outbox_t *o2 = kcps_usage_outbox_open(path2, &error);
  kcps_usage_record_t changed = record(key, 9, 1, false);
  ck_assert(kcps_usage_outbox_add(o2, &changed, &error));
  ck_assert_uint_eq(kcps_usage_outbox_flush(o2, server_post, &p), 0);
  ck_assert_int_eq(p.last_status, 409);
  ck_assert_int_eq(used_pages(alice), before + 6);

  /* A field the server refuses (a print older than it accepts): dropped,
   * and the server's message names the field. */
  g_autofree char *old_key = g_uuid_string_random();
  kcps_usage_record_t old = record(old_key, 1, 1, false);
  old.time -= 90 * 24 * 3600;
  ck_assert(kcps_usage_outbox_add(o2, &old, &error));
  ck_assert_uint_eq(kcps_usage_outbox_flush(o2, server_post, &p), 0);
  ck_assert_int_eq(p.last_status, 400);
  ck_assert_msg(p.last_message != NULL && strstr(p.last_message, "time") != NULL, "%s",
                p.last_message);
  ck_assert_int_eq(used_pages(alice), before + 6);
  kcps_usage_outbox_free(o2);
  g_free(p.last_message);
  sfx_remove_tree(tmp);
}
END_TEST

static Suite *usage_suite(void)
{
  Suite *s = suite_create("usage-outbox");
  TCase *tc = tcase_create("statement");
  tcase_add_test(tc, test_statement_verify);
  suite_add_tcase(s, tc);
  tc = tcase_create("outbox");
  tcase_add_test(tc, test_outbox_durable);
  tcase_add_test(tc, test_outbox_retry_and_drop);
  tcase_add_test(tc, test_outbox_thread);
  suite_add_tcase(s, tc);
  tc = tcase_create("server");
  tcase_add_checked_fixture(tc, sfx_setup, sfx_teardown);
  tcase_add_test(tc, test_statement_from_server);
  tcase_add_test(tc, test_outbox_server_once);
  suite_add_tcase(s, tc);
  return s;
}

int main(void)
{
  SRunner *sr = srunner_create(usage_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? 0 : 1;
}
