/* kcps-server's cloud spool (server-uploads.c) over real HTTPS: resumable
 * uploads, idempotent create, sha256 and size checks, the size limit, owner
 * only, the device fetch with a single-use ticket and Range, retention. */
#include "server-fixture.h"

#include <curl/curl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>

#include "common/crypto.h"

#define CHUNK (64 * 1024)
#define CHUNK_MAX (8 * 1024 * 1024) /* the server's chunk_max */

/* A document of n pseudo-random bytes (seeded: the same n, the same bytes). */
static GBytes *
make_doc(gsize n, guint32 seed)
{
  guchar *data = g_malloc(n);
  GRand *r = g_rand_new_with_seed(seed);
  for (gsize i = 0; i < n; i++)
    data[i] = (guchar)g_rand_int_range(r, 0, 256);
  g_rand_free(r);
  return g_bytes_new_take(data, n);
}

static void
hex_of(GBytes *doc, char out[65])
{
  gsize n;
  const void *p = g_bytes_get_data(doc, &n);
  kcps_crypto_sha256_hex(p, n, out);
}

/* POST /api/v1/uploads; returns the status, *out the answer. */
static long
create(const char *token, const char *key, gint64 size, const char *sha, JsonNode **out)
{
  g_autofree char *body = g_strdup_printf(
      "{\"idempotency_key\":\"%s\",\"name\":\"doc.pdf\",\"pages\":2,\"size\":%" G_GINT64_FORMAT
      ",\"sha256\":\"%s\"}",
      key, size, sha);
  return sfx_call("POST", "/api/v1/uploads", token, body, out);
}

static long
put_chunk(const char *token, const char *upload, GBytes *doc, gint64 off, gint64 len,
          JsonNode **out)
{
  g_autofree char *path = g_strdup_printf("/api/v1/uploads/%s?offset=%" G_GINT64_FORMAT, upload,
                                          off);
  const char *data = (const char *)g_bytes_get_data(doc, NULL) + off;
  return sfx_call_raw("PUT", path, token, data, len, "application/octet-stream", NULL, out);
}

/* Sends [from, end) in CHUNK pieces, asserting 200 each. */
static void
put_range(const char *token, const char *upload, GBytes *doc, gint64 from, gint64 size)
{
  for (gint64 off = from; off < size; off += CHUNK) {
    g_autoptr(JsonNode) a = NULL;
    long st = put_chunk(token, upload, doc, off, MIN(CHUNK, size - off), &a);
    ck_assert_msg(st == 200, "PUT at %" G_GINT64_FORMAT ": got %ld, expected 200", off, st);
  }
}

static void
put_rest(const char *token, const char *upload, GBytes *doc, gint64 from)
{
  put_range(token, upload, doc, from, (gint64)g_bytes_get_size(doc));
}

static long
complete(const char *token, const char *upload, JsonNode **out)
{
  g_autofree char *path = g_strdup_printf("/api/v1/uploads/%s/complete", upload);
  return sfx_call("POST", path, token, NULL, out);
}

/* A whole upload for alice; returns the job id (g_free). */
static char *
upload_whole(const char *token, const char *key, GBytes *doc)
{
  char sha[65];
  hex_of(doc, sha);
  g_autoptr(JsonNode) a = NULL;
  ck_assert_int_eq(create(token, key, (gint64)g_bytes_get_size(doc), sha, &a), 201);
  g_autofree char *id = g_strdup(sfx_str(a, "id"));
  put_rest(token, id, doc, 0);
  g_autoptr(JsonNode) done = NULL;
  long st = complete(token, id, &done);
  ck_assert_msg(st == 201, "complete: got %ld, expected 201", st);
  ck_assert_str_eq(sfx_str(done, "state"), "complete");
  return g_strdup(sfx_str(done, "job_id"));
}

static guint
count_files(const char *sub)
{
  g_autofree char *dir = g_build_filename(sfx.data, "cloud", sub, NULL);
  g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
  guint n = 0;
  while (d && g_dir_read_name(d))
    n++;
  return n;
}

static JsonObject *
find_job(JsonNode *list, const char *id)
{
  JsonArray *jobs = sfx_array(list, "jobs");
  for (guint i = 0; jobs && i < json_array_get_length(jobs); i++) {
    JsonObject *o = json_array_get_object_element(jobs, i);
    if (g_strcmp0(json_object_get_string_member(o, "id"), id) == 0)
      return o;
  }
  return NULL;
}

START_TEST(test_create_idempotent)
{
  g_autofree char *alice = sfx_login("alice@a.test", sfx.alice_pw);
  g_autoptr(GBytes) doc = make_doc(3 * CHUNK + 100, 1);
  char sha[65];
  hex_of(doc, sha);
  g_autoptr(JsonNode) a = NULL, b = NULL, c = NULL, d = NULL;
  ck_assert_int_eq(create(alice, "job-1", (gint64)g_bytes_get_size(doc), sha, &a), 201);
  ck_assert_int_eq(create(alice, "job-1", (gint64)g_bytes_get_size(doc), sha, &b), 200);
  ck_assert_str_eq(sfx_str(a, "id"), sfx_str(b, "id"));
  ck_assert_int_eq(sfx_int(b, "offset"), 0);
  ck_assert_int_eq(sfx_int(b, "chunk_max"), CHUNK_MAX);
  /* The same key for another document is a conflict, not a second upload. */
  long st = create(alice, "job-1", 5, sha, &c);
  sfx_expect_error(st, c, 409, "conflict", "idempotency_key");
  ck_assert_int_eq(kcps__server_db_count_rows(sfx.server, "uploads"), 1);
  /* Unknown fields and bad keys are refused. */
  st = sfx_call("POST", "/api/v1/uploads", alice,
                "{\"idempotency_key\":\"k\",\"size\":1,\"sha256\":\"" /* 64 zeros */
                "0000000000000000000000000000000000000000000000000000000000000000\","
                "\"x\":1}",
                &d);
  sfx_expect_error(st, d, 400, "bad_request", "unknown field \"x\"");
  g_autoptr(JsonNode) e = NULL;
  st = create(alice, "a/b", 1, sha, &e);
  sfx_expect_error(st, e, 400, "bad_request", "idempotency_key");
}
END_TEST

START_TEST(test_resume_from_server_offset)
{
  g_autofree char *alice = sfx_login("alice@a.test", sfx.alice_pw);
  g_autoptr(GBytes) doc = make_doc(4 * CHUNK + 7, 2);
  gint64 size = (gint64)g_bytes_get_size(doc);
  char sha[65];
  hex_of(doc, sha);
  g_autoptr(JsonNode) a = NULL;
  ck_assert_int_eq(create(alice, "resume-1", size, sha, &a), 201);
  g_autofree char *id = g_strdup(sfx_str(a, "id"));

  /* Two chunks, then the client "restarts": it asks what the server has. */
  put_range(alice, id, doc, 0, 2 * CHUNK);
  g_autofree char *path = g_strdup_printf("/api/v1/uploads/%s", id);
  g_autoptr(JsonNode) s = NULL;
  ck_assert_int_eq(sfx_call("GET", path, alice, NULL, &s), 200);
  ck_assert_int_eq(sfx_int(s, "offset"), 2 * CHUNK);
  ck_assert_str_eq(sfx_str(s, "state"), "open");

  /* A gap is refused; the same bytes again are accepted; other bytes at an
   * offset the server has are refused. */
  g_autoptr(JsonNode) g = NULL, same = NULL, diff = NULL;
  long st = put_chunk(alice, id, doc, 3 * CHUNK, CHUNK, &g);
  sfx_expect_error(st, g, 409, "conflict", "gap");
  ck_assert_int_eq(put_chunk(alice, id, doc, CHUNK, CHUNK, &same), 200);
  ck_assert_int_eq(sfx_int(same, "offset"), 2 * CHUNK);
  g_autoptr(GBytes) other = make_doc(2 * CHUNK, 99);
  st = put_chunk(alice, id, other, CHUNK, CHUNK, &diff);
  sfx_expect_error(st, diff, 409, "conflict", "differs");
  /* Content-Range that disagrees with the body is refused. */
  g_autoptr(JsonNode) cr = NULL;
  st = sfx_call_raw("PUT", path, alice, "abc", 3, "application/octet-stream",
                    "Content-Range: bytes 131072-131079/262151", &cr);
  sfx_expect_error(st, cr, 400, "bad_request", "offset");
  /* Completing early is refused. */
  g_autoptr(JsonNode) early = NULL;
  st = complete(alice, id, &early);
  sfx_expect_error(st, early, 409, "conflict", "not whole");

  put_rest(alice, id, doc, 2 * CHUNK);
  g_autoptr(JsonNode) done = NULL;
  ck_assert_int_eq(complete(alice, id, &done), 201);
  const char *job = sfx_str(done, "job_id");
  ck_assert_ptr_nonnull(job);
  /* Received: the whole once, plus the chunk sent twice. */
  ck_assert_int_eq(sfx_int(done, "received"), size + CHUNK);

  g_autoptr(JsonNode) list = NULL;
  ck_assert_int_eq(sfx_call("GET", "/api/v1/jobs", alice, NULL, &list), 200);
  JsonObject *o = find_job(list, job);
  ck_assert_msg(o != NULL, "the cloud job is not listed");
  ck_assert_str_eq(json_object_get_string_member(o, "spool"), "cloud");
  ck_assert_str_eq(json_object_get_string_member(o, "sha256"), sha);
  ck_assert_int_eq(json_object_get_int_member(o, "size"), size);

  /* The document: 0600 in a 0700 folder, the bytes uploaded. */
  g_autofree char *name = g_strconcat(job, ".pdf", NULL);
  g_autofree char *file = g_build_filename(sfx.data, "cloud", "documents", name, NULL);
  g_autofree char *dir = g_build_filename(sfx.data, "cloud", NULL);
  struct stat st1, st2;
  ck_assert_int_eq(stat(file, &st1), 0);
  ck_assert_int_eq(stat(dir, &st2), 0);
  ck_assert_int_eq(st1.st_mode & 0777, 0600);
  ck_assert_int_eq(st2.st_mode & 0777, 0700);
  g_autofree char *stored = NULL;
  gsize stored_len = 0;
  ck_assert(g_file_get_contents(file, &stored, &stored_len, NULL));
  ck_assert_int_eq(stored_len, size);
  ck_assert(memcmp(stored, g_bytes_get_data(doc, NULL), stored_len) == 0);
  ck_assert_uint_eq(count_files("uploads"), 0);

  /* Create and complete again: the same job, never a second one. */
  g_autoptr(JsonNode) again = NULL, again2 = NULL;
  ck_assert_int_eq(create(alice, "resume-1", size, sha, &again), 200);
  ck_assert_str_eq(sfx_str(again, "state"), "complete");
  ck_assert_str_eq(sfx_str(again, "job_id"), job);
  ck_assert_int_eq(complete(alice, id, &again2), 200);
  ck_assert_str_eq(sfx_str(again2, "job_id"), job);
  ck_assert_int_eq(kcps__server_db_count_rows(sfx.server, "jobs"), 1);
  /* A chunk after completion is refused. */
  g_autoptr(JsonNode) late = NULL;
  st = put_chunk(alice, id, doc, 0, CHUNK, &late);
  sfx_expect_error(st, late, 409, "conflict", "complete already");
}
END_TEST

START_TEST(test_wrong_sha256_refused)
{
  g_autofree char *alice = sfx_login("alice@a.test", sfx.alice_pw);
  g_autoptr(GBytes) doc = make_doc(2 * CHUNK + 1, 3);
  g_autoptr(JsonNode) a = NULL, done = NULL;
  const char *wrong = "1111111111111111111111111111111111111111111111111111111111111111";
  ck_assert_int_eq(create(alice, "bad-sha", (gint64)g_bytes_get_size(doc), wrong, &a), 201);
  g_autofree char *id = g_strdup(sfx_str(a, "id"));
  put_rest(alice, id, doc, 0);
  long st = complete(alice, id, &done);
  sfx_expect_error(st, done, 422, "sha256_mismatch", "sha256");
  /* Nothing stored: no job, no upload, no file. */
  ck_assert_int_eq(kcps__server_db_count_rows(sfx.server, "jobs"), 0);
  ck_assert_int_eq(kcps__server_db_count_rows(sfx.server, "uploads"), 0);
  ck_assert_int_eq(kcps__server_db_count_rows(sfx.server, "cloud_documents"), 0);
  ck_assert_uint_eq(count_files("uploads"), 0);
  ck_assert_uint_eq(count_files("documents"), 0);
  g_autoptr(JsonNode) gone = NULL;
  g_autofree char *path = g_strdup_printf("/api/v1/uploads/%s", id);
  ck_assert_int_eq(sfx_call("GET", path, alice, NULL, &gone), 404);
}
END_TEST

START_TEST(test_too_large_refused)
{
  g_autofree char *alice = sfx_login("alice@a.test", sfx.alice_pw);
  const char *sha = "2222222222222222222222222222222222222222222222222222222222222222";
  g_autoptr(JsonNode) a = NULL, b = NULL;
  /* The default limit (2048 MiB). */
  long st = create(alice, "big-1", G_GINT64_CONSTANT(3) << 30, sha, &a);
  sfx_expect_error(st, a, 413, "too_large", "cloud_max_document_mb");
  /* The organization's own limit, set on Customer A. */
  gint64 org = sfx_org_id("Customer A");
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) one = json_node_new(JSON_NODE_VALUE);
  json_node_set_int(one, 1);
  g_mutex_lock(&sfx.server->lock);
  bool ok = kcps__server_setting_store_locked(sfx.server, org, "cloud_max_document_mb", one,
                                              &error);
  g_mutex_unlock(&sfx.server->lock);
  ck_assert_msg(ok, "%s", error ? error->message : "");
  st = create(alice, "big-2", 1024 * 1024 + 1, sha, &b);
  sfx_expect_error(st, b, 413, "too_large", "1048577");
  ck_assert_int_eq(kcps__server_db_count_rows(sfx.server, "uploads"), 0);
  g_autoptr(JsonNode) c = NULL;
  ck_assert_int_eq(create(alice, "big-3", 1024 * 1024, sha, &c), 201);
}
END_TEST

START_TEST(test_other_user_not_found)
{
  g_autofree char *alice = sfx_login("alice@a.test", sfx.alice_pw);
  g_autofree char *admin = sfx_login("admin@a.test", sfx.admin_pw);
  g_autoptr(GBytes) doc = make_doc(CHUNK, 4);
  char sha[65];
  hex_of(doc, sha);
  g_autoptr(JsonNode) a = NULL, b = NULL, c = NULL, d = NULL, e = NULL;
  ck_assert_int_eq(create(alice, "mine", CHUNK, sha, &a), 201);
  const char *id = sfx_str(a, "id");
  g_autofree char *path = g_strdup_printf("/api/v1/uploads/%s", id);
  long st = sfx_call("GET", path, admin, NULL, &b);
  sfx_expect_error(st, b, 404, "not_found", NULL);
  st = put_chunk(admin, id, doc, 0, CHUNK, &c);
  sfx_expect_error(st, c, 404, "not_found", NULL);
  st = complete(admin, id, &d);
  sfx_expect_error(st, d, 404, "not_found", NULL);
  /* The same key of another user is another upload. */
  ck_assert_int_eq(create(admin, "mine", CHUNK, sha, &e), 201);
  ck_assert_str_ne(sfx_str(e, "id"), id);
  /* Nothing of alice's upload moved. */
  g_autoptr(JsonNode) f = NULL;
  ck_assert_int_eq(sfx_call("GET", path, alice, NULL, &f), 200);
  ck_assert_int_eq(sfx_int(f, "offset"), 0);
}
END_TEST

/* GET url with optional Authorization and Range; body into *out. */
static long
fetch(const char *path, const char *ticket, const char *range, GByteArray **out)
{
  g_autofree char *url = g_strconcat(kcps_server_get_url(sfx.server), path, NULL);
  g_autofree char *auth = ticket ? g_strconcat("Authorization: KCPS-Ticket ", ticket, NULL) : NULL;
  g_autofree char *rh = range ? g_strconcat("Range: ", range, NULL) : NULL;
  GByteArray *body = g_byte_array_new();
  CURL *curl = curl_easy_init();
  struct curl_slist *headers = NULL;
  if (auth)
    headers = curl_slist_append(headers, auth);
  if (rh)
    headers = curl_slist_append(headers, rh);
  curl_easy_setopt(curl, CURLOPT_URL, url);
  curl_easy_setopt(curl, CURLOPT_CAINFO, sfx.ca);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, (curl_write_callback)NULL);
  FILE *mem = NULL;
  char *buf = NULL;
  size_t len = 0;
  mem = open_memstream(&buf, &len);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, mem);
  CURLcode rc = curl_easy_perform(curl);
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  fclose(mem);
  g_byte_array_append(body, (const guint8 *)buf, (guint)len);
  free(buf);
  ck_assert_msg(rc == CURLE_OK, "GET %s: %s", path, curl_easy_strerror(rc));
  *out = body;
  return status;
}

static char *
get_ticket(const char *pin_token, const char *job, char **pull_url)
{
  g_autofree char *path = g_strdup_printf("/api/v1/device/jobs/%s/ticket", job);
  g_autoptr(JsonNode) t = NULL;
  long st = sfx_call("POST", path, pin_token, NULL, &t);
  ck_assert_msg(st == 201, "ticket: got %ld, expected 201", st);
  if (pull_url)
    *pull_url = g_strdup(sfx_str(t, "pull_url"));
  return g_strdup(sfx_str(t, "ticket"));
}

START_TEST(test_device_fetch)
{
  g_autofree char *alice = sfx_login("alice@a.test", sfx.alice_pw);
  g_autoptr(GBytes) doc = make_doc(2 * CHUNK + 33, 5);
  gsize size = g_bytes_get_size(doc);
  const guint8 *bytes = g_bytes_get_data(doc, NULL);
  g_autofree char *job = upload_whole(alice, "dev-1", doc);
  g_autofree char *pin = sfx_pin_login();

  /* The device sees the cloud job like a local one. */
  g_autoptr(JsonNode) list = NULL;
  ck_assert_int_eq(sfx_call("GET", "/api/v1/device/jobs", pin, NULL, &list), 200);
  ck_assert_msg(find_job(list, job) != NULL, "the device does not list the cloud job");

  g_autofree char *pull_url = NULL;
  g_autofree char *ticket = get_ticket(pin, job, &pull_url);
  g_autofree char *path = g_strdup_printf("/api/v1/device/jobs/%s/document", job);
  ck_assert_msg(g_str_has_suffix(pull_url, path), "pull_url %s does not name %s", pull_url, path);

  /* No ticket, a ticket for another path: refused. */
  g_autoptr(GByteArray) none = NULL, other = NULL, part = NULL, again = NULL, whole = NULL,
                        bad = NULL;
  ck_assert_int_eq(fetch(path, NULL, NULL, &none), 401);
  g_autofree char *other_path = g_strdup_printf(
      "/api/v1/device/jobs/%s/document", "00000000-0000-4000-8000-000000000000");
  ck_assert_int_eq(fetch(other_path, ticket, NULL, &other), 401);

  /* A range, once. */
  ck_assert_int_eq(fetch(path, ticket, "bytes=100-199", &part), 206);
  ck_assert_uint_eq(part->len, 100);
  ck_assert(memcmp(part->data, bytes + 100, 100) == 0);
  ck_assert_int_eq(fetch(path, ticket, NULL, &again), 401);

  /* A new ticket: the whole document. */
  g_autofree char *ticket2 = get_ticket(pin, job, NULL);
  ck_assert_int_eq(fetch(path, ticket2, NULL, &whole), 200);
  ck_assert_uint_eq(whole->len, size);
  ck_assert(memcmp(whole->data, bytes, size) == 0);

  /* A range beyond the end. */
  g_autofree char *ticket3 = get_ticket(pin, job, NULL);
  g_autofree char *beyond = g_strdup_printf("bytes=%zu-", size);
  ck_assert_int_eq(fetch(path, ticket3, beyond, &bad), 416);
}
END_TEST

/* The owner deletes a cloud job: its document goes at once, and a ticket
 * taken before no longer fetches it. */
START_TEST(test_withdraw_cloud_job)
{
  g_autofree char *alice = sfx_login("alice@a.test", sfx.alice_pw);
  g_autoptr(GBytes) doc = make_doc(CHUNK + 7, 9);
  g_autofree char *job = upload_whole(alice, "wd-1", doc);
  g_autofree char *keep = upload_whole(alice, "wd-2", doc);
  ck_assert_uint_eq(count_files("documents"), 2);
  g_autofree char *pin = sfx_pin_login();
  g_autofree char *ticket = get_ticket(pin, job, NULL);

  g_autofree char *path = g_strdup_printf("/api/v1/jobs/%s", job);
  ck_assert_int_eq(sfx_call("DELETE", path, alice, NULL, NULL), 204);
  ck_assert_uint_eq(count_files("documents"), 1);
  g_autofree char *doc_path = g_strdup_printf("/api/v1/device/jobs/%s/document", job);
  g_autoptr(GByteArray) got = NULL;
  long st = fetch(doc_path, ticket, NULL, &got);
  ck_assert_msg(st == 401 || st == 404 || st == 410, "fetch after withdrawal: %ld", st);
  g_autoptr(JsonNode) list = NULL;
  ck_assert_int_eq(sfx_call("GET", "/api/v1/device/jobs", pin, NULL, &list), 200);
  ck_assert_msg(find_job(list, job) == NULL, "the device still lists the withdrawn job");
  ck_assert_msg(find_job(list, keep) != NULL, "the other job went too");
}
END_TEST

START_TEST(test_retention)
{
  g_autofree char *alice = sfx_login("alice@a.test", sfx.alice_pw);
  g_autoptr(GBytes) doc = make_doc(CHUNK + 9, 6);
  g_autofree char *job = upload_whole(alice, "old-1", doc);
  /* One a device tried and failed: kept for the reports after expiry. */
  g_autofree char *tried = upload_whole(alice, "old-2", doc);
  g_autofree char *pin = sfx_pin_login();
  g_free(get_ticket(pin, tried, NULL));
  g_autofree char *log = g_strdup_printf("/api/v1/device/jobs/%s/log", tried);
  ck_assert_int_eq(sfx_call("POST", log, pin, "{\"pages\":1,\"status\":\"failed\"}", NULL), 201);
  g_autoptr(GBytes) half = make_doc(2 * CHUNK, 7);
  char sha[65];
  hex_of(half, sha);
  g_autoptr(JsonNode) a = NULL;
  ck_assert_int_eq(create(alice, "open-1", 2 * CHUNK, sha, &a), 201);
  g_autofree char *open_id = g_strdup(sfx_str(a, "id"));
  put_range(alice, open_id, half, 0, CHUNK);
  ck_assert_uint_eq(count_files("documents"), 2);
  ck_assert_uint_eq(count_files("uploads"), 1);

  /* Within the 24 hours nothing goes. */
  sfx_skew_clock(23 * 3600);
  kcps__server_uploads_expire(sfx.server, kcps__server_now());
  ck_assert_uint_eq(count_files("documents"), 2);

  sfx_skew_clock(25 * 3600);
  g_autofree char *token = sfx_login("alice@a.test", sfx.alice_pw);
  g_autofree char *path = g_strdup_printf("/api/v1/uploads/%s", open_id);
  g_autoptr(JsonNode) gone = NULL;
  ck_assert_int_eq(sfx_call("GET", path, token, NULL, &gone), 404);
  ck_assert_uint_eq(count_files("documents"), 0);
  ck_assert_uint_eq(count_files("uploads"), 0);
  ck_assert_int_eq(kcps__server_db_count_rows(sfx.server, "cloud_documents"), 0);
  g_autoptr(JsonNode) list = NULL;
  ck_assert_int_eq(sfx_call("GET", "/api/v1/jobs", token, NULL, &list), 200);
  ck_assert_msg(find_job(list, job) == NULL, "the expired cloud job is still listed");
  ck_assert_msg(find_job(list, tried) != NULL, "the tried job is gone from the reports' rows");
  g_autofree char *pin2 = sfx_pin_login();
  g_autoptr(JsonNode) dlist = NULL;
  ck_assert_int_eq(sfx_call("GET", "/api/v1/device/jobs", pin2, NULL, &dlist), 200);
  ck_assert_msg(find_job(dlist, tried) == NULL, "a device still lists an expired tried job");
}
END_TEST

/* A streamed PUT of [off, off+len) of doc by curl's read callback: stops
 * (aborts the transfer, the connection breaks) after abort_after bytes when
 * that is >= 0; expect sends "Expect: 100-continue". *read is how many body
 * bytes curl took. Returns the status (0 when the transfer broke). */
typedef struct {
  const char *data;
  gint64 len, pos, abort_after;
} feed_t;

static size_t
feed(char *buf, size_t size, size_t n, void *user)
{
  feed_t *f = user;
  if (f->abort_after >= 0 && f->pos >= f->abort_after)
    return CURL_READFUNC_ABORT;
  gint64 want = MIN((gint64)(size * n), f->len - f->pos);
  if (f->abort_after >= 0)
    want = MIN(want, f->abort_after - f->pos);
  memcpy(buf, f->data + f->pos, (size_t)want);
  f->pos += want;
  return (size_t)want;
}

static size_t
collect_answer(char *data, size_t size, size_t n, void *user)
{
  g_string_append_len(user, data, (gssize)(size * n));
  return size * n;
}

static long
put_streamed(const char *token, const char *upload, GBytes *doc, gint64 off, gint64 len,
             gint64 abort_after, bool expect, gint64 *read, JsonNode **out)
{
  g_autofree char *url = g_strdup_printf("%s/api/v1/uploads/%s?offset=%" G_GINT64_FORMAT,
                                         kcps_server_get_url(sfx.server), upload, off);
  g_autofree char *auth = token ? g_strconcat("Authorization: Bearer ", token, NULL) : NULL;
  feed_t f = {(const char *)g_bytes_get_data(doc, NULL) + off, len, 0, abort_after};
  g_autoptr(GString) answer = g_string_new(NULL);
  CURL *curl = curl_easy_init();
  struct curl_slist *headers = curl_slist_append(NULL, "Content-Type: application/octet-stream");
  headers = curl_slist_append(headers, expect ? "Expect: 100-continue" : "Expect:");
  if (auth)
    headers = curl_slist_append(headers, auth);
  curl_easy_setopt(curl, CURLOPT_URL, url);
  curl_easy_setopt(curl, CURLOPT_CAINFO, sfx.ca);
  curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
  curl_easy_setopt(curl, CURLOPT_INFILESIZE_LARGE, (curl_off_t)len);
  curl_easy_setopt(curl, CURLOPT_READFUNCTION, feed);
  curl_easy_setopt(curl, CURLOPT_READDATA, &f);
  /* Long enough that the server's early answer always comes first. */
  curl_easy_setopt(curl, CURLOPT_EXPECT_100_TIMEOUT_MS, 60000L);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect_answer);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, answer);
  CURLcode rc = curl_easy_perform(curl);
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  if (read)
    *read = f.pos;
  if (abort_after >= 0) {
    ck_assert_msg(rc == CURLE_ABORTED_BY_CALLBACK, "the transfer was to break: %s",
                  curl_easy_strerror(rc));
    return 0;
  }
  ck_assert_msg(rc == CURLE_OK, "PUT: %s", curl_easy_strerror(rc));
  if (out)
    *out = answer->len ? json_from_string(answer->str, NULL) : NULL;
  return status;
}

static gint64
part_file_size(const char *upload)
{
  g_autofree char *name = g_strconcat(upload, ".part", NULL);
  g_autofree char *path = g_build_filename(sfx.data, "cloud", "uploads", name, NULL);
  struct stat st;
  return stat(path, &st) == 0 ? (gint64)st.st_size : 0;
}

static JsonNode *
status_of(const char *token, const char *upload)
{
  g_autofree char *path = g_strdup_printf("/api/v1/uploads/%s", upload);
  JsonNode *s = NULL;
  ck_assert_int_eq(sfx_call("GET", path, token, NULL, &s), 200);
  return s;
}

/* Chunks far above the former 64 KiB bound go in whole, streamed to the
 * file; offset, size and chunk_max are checked on the headers. */
START_TEST(test_streamed_chunks)
{
  g_autofree char *alice = sfx_login("alice@a.test", sfx.alice_pw);
  const gint64 big = 3 * 1024 * 1024;
  g_autoptr(GBytes) doc = make_doc((gsize)(2 * big + 12345), 11);
  const gint64 size = (gint64)g_bytes_get_size(doc);
  char sha[65];
  hex_of(doc, sha);
  g_autoptr(JsonNode) a = NULL;
  ck_assert_int_eq(create(alice, "big-1", size, sha, &a), 201);
  const char *id = sfx_str(a, "id");

  g_autoptr(JsonNode) p1 = NULL;
  ck_assert_int_eq(put_streamed(alice, id, doc, 0, big, -1, false, NULL, &p1), 200);
  ck_assert_int_eq(sfx_int(p1, "offset"), big);
  ck_assert_int_eq(part_file_size(id), big);
  /* A gap: refused on the headers, nothing written. */
  g_autoptr(JsonNode) gap = NULL;
  long st = put_streamed(alice, id, doc, big + 1, 1000, -1, false, NULL, &gap);
  sfx_expect_error(st, gap, 409, "conflict", "gap");
  /* Past the declared size; above chunk_max (its body is never stored). */
  g_autoptr(GBytes) huge = make_doc((gsize)CHUNK_MAX + 1, 12);
  g_autoptr(JsonNode) past = NULL;
  st = put_streamed(alice, id, huge, big, size - big + 1, -1, true, NULL, &past);
  sfx_expect_error(st, past, 400, "bad_request", "beyond the declared size");
  g_autoptr(JsonNode) toobig = NULL;
  gint64 took = -1;
  st = put_streamed(alice, id, huge, 0, CHUNK_MAX + 1, -1, true, &took, &toobig);
  sfx_expect_error(st, toobig, 413, "too_large", "chunk_max");
  ck_assert_int_eq(took, 0);
  ck_assert_int_eq(part_file_size(id), big);
  /* Bytes held sent again must be the same: a differing one is refused
   * and nothing beyond is kept. */
  g_autoptr(GBytes) other = make_doc((gsize)size, 13);
  g_autoptr(JsonNode) diff = NULL;
  st = put_streamed(alice, id, other, big - 100, 200, -1, false, NULL, &diff);
  sfx_expect_error(st, diff, 409, "conflict", "differs");
  ck_assert_int_eq(part_file_size(id), big);

  g_autoptr(JsonNode) p2 = NULL, p3 = NULL;
  ck_assert_int_eq(put_streamed(alice, id, doc, big - 100, big + 100, -1, true, NULL, &p2), 200);
  ck_assert_int_eq(sfx_int(p2, "offset"), 2 * big);
  ck_assert_int_eq(put_streamed(alice, id, doc, 2 * big, size - 2 * big, -1, false, NULL, &p3),
                   200);
  ck_assert_int_eq(sfx_int(p3, "offset"), size);
  ck_assert_int_eq(sfx_int(p3, "received"), size + 100);
  g_autoptr(JsonNode) done = NULL;
  ck_assert_int_eq(complete(alice, id, &done), 201);
  ck_assert_str_eq(sfx_str(done, "sha256"), sha);
  g_autofree char *doc_path = g_strdup_printf("%s/cloud/documents/%s.pdf", sfx.data,
                                              sfx_str(done, "job_id"));
  struct stat sb;
  ck_assert_int_eq(stat(doc_path, &sb), 0);
  ck_assert_int_eq(sb.st_mode & 0777, 0600);
}
END_TEST

/* Without a valid session the body is never taken: the answer comes on the
 * headers ("Expect: 100-continue": curl sends no body byte), nothing is
 * stored, and another user's upload is not found the same way. */
START_TEST(test_streamed_unauthenticated)
{
  g_autofree char *alice = sfx_login("alice@a.test", sfx.alice_pw);
  g_autofree char *admin = sfx_login("admin@a.test", sfx.admin_pw);
  const gint64 len = 2 * 1024 * 1024;
  g_autoptr(GBytes) doc = make_doc((gsize)len, 14);
  char sha[65];
  hex_of(doc, sha);
  g_autoptr(JsonNode) a = NULL;
  ck_assert_int_eq(create(alice, "auth-1", len, sha, &a), 201);
  const char *id = sfx_str(a, "id");

  struct {
    const char *token;
    long status;
  } cases[] = {{NULL, 401}, {"not-a-token", 401}, {admin, 404}};
  for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
    gint64 took = -1;
    g_autoptr(JsonNode) r = NULL;
    long st = put_streamed(cases[i].token, id, doc, 0, len, -1, true, &took, &r);
    ck_assert_msg(st == cases[i].status, "case %zu: got %ld, expected %ld", i, st,
                  cases[i].status);
    ck_assert_msg(took == 0, "case %zu: the client was asked for %" G_GINT64_FORMAT
                  " body bytes", i, took);
    ck_assert_int_eq(part_file_size(id), 0);
  }
  /* Without Expect the client sends the body anyway: still refused, still
   * nothing stored. */
  g_autoptr(JsonNode) r = NULL;
  long st = put_streamed(NULL, id, doc, 0, 1000, -1, false, NULL, &r);
  ck_assert_int_eq(st, 401);
  ck_assert_int_eq(part_file_size(id), 0);
  g_autoptr(JsonNode) s = status_of(alice, id);
  ck_assert_int_eq(sfx_int(s, "offset"), 0);
  ck_assert_int_eq(sfx_int(s, "received"), 0);
}
END_TEST

/* A connection that breaks mid-chunk: the server stays at its last whole,
 * fsync'd offset (the partial bytes are cut off again, and counted in
 * received), and the chunk is sent again from there. */
START_TEST(test_streamed_cut_mid_chunk)
{
  g_autofree char *alice = sfx_login("alice@a.test", sfx.alice_pw);
  const gint64 piece = 2 * 1024 * 1024;
  g_autoptr(GBytes) doc = make_doc((gsize)(2 * piece), 15);
  const gint64 size = (gint64)g_bytes_get_size(doc);
  char sha[65];
  hex_of(doc, sha);
  g_autoptr(JsonNode) a = NULL;
  ck_assert_int_eq(create(alice, "cut-1", size, sha, &a), 201);
  const char *id = sfx_str(a, "id");
  g_autoptr(JsonNode) p1 = NULL;
  ck_assert_int_eq(put_streamed(alice, id, doc, 0, piece, -1, false, NULL, &p1), 200);

  gint64 took = 0;
  put_streamed(alice, id, doc, piece, piece, piece / 2, false, &took, NULL);
  ck_assert_int_eq(took, piece / 2);
  /* Whenever asked, the offset is the last whole one. */
  g_autoptr(JsonNode) s1 = status_of(alice, id);
  ck_assert_int_eq(sfx_int(s1, "offset"), piece);
  /* A chunk of the same upload waits until the broken one is cut back
   * (one at a time), here one that leaves a gap, so is refused. */
  g_autoptr(JsonNode) gap = NULL;
  long st = put_streamed(alice, id, doc, piece + 1, 10, -1, false, NULL, &gap);
  sfx_expect_error(st, gap, 409, "conflict", "gap");
  ck_assert_int_eq(part_file_size(id), piece);
  g_autoptr(JsonNode) s2 = status_of(alice, id);
  ck_assert_int_eq(sfx_int(s2, "offset"), piece);
  gint64 partial = sfx_int(s2, "received") - piece;
  ck_assert_msg(partial >= 0 && partial <= piece / 2, "received counts %" G_GINT64_FORMAT
                " bytes of the broken chunk", partial);

  g_autoptr(JsonNode) p2 = NULL;
  ck_assert_int_eq(put_streamed(alice, id, doc, piece, piece, -1, false, NULL, &p2), 200);
  ck_assert_int_eq(sfx_int(p2, "offset"), size);
  g_autoptr(JsonNode) done = NULL;
  ck_assert_int_eq(complete(alice, id, &done), 201);
  ck_assert_str_eq(sfx_str(done, "sha256"), sha);
}
END_TEST

START_TEST(test_parsers)
{
  gint64 s = 0, e = 0;
  static const struct {
    const char *v;
    gint64 size;
    bool ok;
    gint64 s, e;
  } ranges[] = {
      {"bytes=0-9", 100, true, 0, 9},     {"bytes=90-", 100, true, 90, 99},
      {"bytes=-10", 100, true, 90, 99},   {"bytes=95-200", 100, true, 95, 99},
      {"bytes=100-", 100, false, 0, 0},   {"bytes=5-4", 100, false, 0, 0},
      {"bytes=0-1,3-4", 100, false, 0, 0}, {"bytes=x-1", 100, false, 0, 0},
      {"items=0-1", 100, false, 0, 0},    {"bytes=-0", 100, false, 0, 0},
      {"bytes=-", 100, false, 0, 0},      {NULL, 100, false, 0, 0},
  };
  for (size_t i = 0; i < G_N_ELEMENTS(ranges); i++) {
    bool ok = kcps__server_parse_range(ranges[i].v, ranges[i].size, &s, &e);
    ck_assert_msg(ok == ranges[i].ok, "%s: got %d, expected %d", ranges[i].v, ok, ranges[i].ok);
    if (ok)
      ck_assert_msg(s == ranges[i].s && e == ranges[i].e, "%s: got %ld-%ld", ranges[i].v,
                    (long)s, (long)e);
  }
  ck_assert_int_eq(kcps__server_chunk_offset("10", NULL, 5, 100), 10);
  ck_assert_int_eq(kcps__server_chunk_offset(NULL, "bytes 10-14/100", 5, 100), 10);
  ck_assert_int_eq(kcps__server_chunk_offset("10", "bytes 10-14/100", 5, 100), 10);
  ck_assert_int_eq(kcps__server_chunk_offset("11", "bytes 10-14/100", 5, 100), -1);
  ck_assert_int_eq(kcps__server_chunk_offset(NULL, "bytes 10-14/101", 5, 100), -1);
  ck_assert_int_eq(kcps__server_chunk_offset(NULL, "bytes 10-15/100", 5, 100), -1);
  ck_assert_int_eq(kcps__server_chunk_offset("-1", NULL, 5, 100), -1);
  ck_assert_int_eq(kcps__server_chunk_offset("1x", NULL, 5, 100), -1);
  ck_assert_int_eq(kcps__server_chunk_offset(NULL, NULL, 5, 100), -1);
}
END_TEST

int
main(void)
{
  curl_global_init(CURL_GLOBAL_DEFAULT);
  Suite *s = suite_create("server-uploads");
  TCase *tc = tcase_create("uploads");
  tcase_add_checked_fixture(tc, sfx_setup, sfx_teardown);
  tcase_add_test(tc, test_create_idempotent);
  tcase_add_test(tc, test_resume_from_server_offset);
  tcase_add_test(tc, test_wrong_sha256_refused);
  tcase_add_test(tc, test_too_large_refused);
  tcase_add_test(tc, test_other_user_not_found);
  tcase_add_test(tc, test_device_fetch);
  tcase_add_test(tc, test_withdraw_cloud_job);
  tcase_add_test(tc, test_retention);
  tcase_add_test(tc, test_streamed_chunks);
  tcase_add_test(tc, test_streamed_unauthenticated);
  tcase_add_test(tc, test_streamed_cut_mid_chunk);
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
