/* Unit tests of kcps-server: each test starts the real server in-process on
 * a free loopback port with a fresh demo data folder and drives it over
 * HTTPS, trusting the certificate it generated. */
#include "server-stub/server-private.h"

#include "common/crypto.h"
#include "common/http-client.h"
#include "common/json-util.h"
#include "common/ticket.h"

#include <check.h>
#include <curl/curl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>

#define SHA_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define SHA_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define PIN_OK "sha256//47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="

typedef struct {
  char *tmp;      /* the test's temporary folder */
  char *data;     /* tmp/data: the server's data folder */
  kcps_server_t *server;
  char *ca;
  char *admin_pw;
  char *alice_pw;
  char *secret;
} fixture_t;

static fixture_t fx;

static void
remove_tree(const char *path)
{
  GDir *dir = g_dir_open(path, 0, NULL);
  if (dir) {
    const char *name;
    while ((name = g_dir_read_name(dir))) {
      g_autofree char *child = g_build_filename(path, name, NULL);
      remove_tree(child);
    }
    g_dir_close(dir);
  }
  g_remove(path);
}

/* The value after "<prefix>" on its line of the credentials text. */
static char *
credential(const char *text, const char *prefix)
{
  const char *p = strstr(text, prefix);
  if (!p)
    return NULL;
  p += strlen(prefix);
  return g_strndup(p, strcspn(p, "\n"));
}

static kcps_server_t *
start_server(bool demo)
{
  kcps_server_config_t config = {.listen = "127.0.0.1:0", .data_dir = fx.data, .demo = demo};
  g_autoptr(GError) error = NULL;
  kcps_server_t *server = kcps_server_new(&config, &error);
  ck_assert_msg(server != NULL, "server start failed: %s", error ? error->message : "?");
  return server;
}

static void
setup(void)
{
  memset(&fx, 0, sizeof fx);
  fx.tmp = g_dir_make_tmp("kcps-test-server-XXXXXX", NULL);
  ck_assert_ptr_nonnull(fx.tmp);
  fx.data = g_build_filename(fx.tmp, "data", NULL);
  fx.server = start_server(true);
  ck_assert_int_gt(kcps_server_get_port(fx.server), 0);
  fx.ca = g_strdup(kcps_server_get_cert_path(fx.server));

  g_autofree char *path = g_build_filename(fx.data, "demo-credentials.txt", NULL);
  g_autofree char *text = NULL;
  ck_assert_msg(g_file_get_contents(path, &text, NULL, NULL), "no %s", path);
  ck_assert_str_eq(text, kcps_server_get_demo_credentials(fx.server));
  fx.admin_pw = credential(text, "admin@a.test password: ");
  fx.alice_pw = credential(text, "alice@a.test password: ");
  fx.secret = credential(text, "MFP-1 device secret: ");
  ck_assert_msg(fx.admin_pw && fx.alice_pw && fx.secret, "credentials file incomplete:\n%s",
                text);
}

static void
teardown(void)
{
  kcps_server_free(fx.server);
  remove_tree(fx.tmp);
  g_free(fx.tmp);
  g_free(fx.data);
  g_free(fx.ca);
  g_free(fx.admin_pw);
  g_free(fx.alice_pw);
  g_free(fx.secret);
}

/* HTTP helpers ---------------------------------------------------------- */

/* method path with an optional JSON body text; returns the status, *out the
 * answer (may be NULL). */
static long
call(const char *method, const char *path, const char *bearer, const char *body,
     JsonNode **out)
{
  g_autofree char *url = g_strconcat(kcps_server_get_url(fx.server), path, NULL);
  kcps_http_opts_t opts = {.ca_file = fx.ca, .bearer = bearer, .timeout_s = 30};
  g_autoptr(JsonNode) node = NULL;
  if (body) {
    g_autoptr(GError) perr = NULL;
    node = json_from_string(body, &perr);
    ck_assert_msg(node != NULL, "test body does not parse: %s", body);
  }
  long status = 0;
  JsonNode *answer = NULL;
  g_autoptr(GError) error = NULL;
  kcps_http_call_json(method, url, &opts, node, &status, &answer, &error);
  ck_assert_msg(status != 0, "%s %s: no HTTP answer: %s", method, path,
                error ? error->message : "?");
  if (out)
    *out = answer;
  else if (answer)
    json_node_unref(answer);
  return status;
}

static size_t
collect(char *ptr, size_t size, size_t n, void *data)
{
  g_string_append_len(data, ptr, (gssize)(size * n));
  return size * n;
}

/* POST of raw bytes (for bodies that are not JSON); *out gets the answer. */
static long
raw_post(const char *path, const char *bearer, const char *body, JsonNode **out)
{
  g_autofree char *url = g_strconcat(kcps_server_get_url(fx.server), path, NULL);
  g_autofree char *auth = bearer ? g_strconcat("Authorization: Bearer ", bearer, NULL) : NULL;
  g_autoptr(GString) answer = g_string_new(NULL);
  CURL *curl = curl_easy_init();
  struct curl_slist *headers = curl_slist_append(NULL, "Content-Type: application/json");
  if (auth)
    headers = curl_slist_append(headers, auth);
  curl_easy_setopt(curl, CURLOPT_URL, url);
  curl_easy_setopt(curl, CURLOPT_CAINFO, fx.ca);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
  curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, answer);
  CURLcode rc = curl_easy_perform(curl);
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  ck_assert_msg(rc == CURLE_OK, "POST %s: %s", path, curl_easy_strerror(rc));
  *out = json_from_string(answer->str, NULL);
  return status;
}

static const char *
member_str(JsonNode *node, const char *name)
{
  if (!node || !JSON_NODE_HOLDS_OBJECT(node))
    return NULL;
  return kcps_json_string(json_node_get_object(node), name);
}

static gint64
member_int(JsonNode *node, const char *name)
{
  gint64 v = -1;
  if (node && JSON_NODE_HOLDS_OBJECT(node))
    kcps_json_int(json_node_get_object(node), name, &v);
  return v;
}

static JsonArray *
member_array(JsonNode *node, const char *name)
{
  if (!node || !JSON_NODE_HOLDS_OBJECT(node))
    return NULL;
  JsonObject *obj = json_node_get_object(node);
  return json_object_has_member(obj, name) ? json_object_get_array_member(obj, name) : NULL;
}

static char *
login(const char *email, const char *password)
{
  g_autofree char *body =
      g_strdup_printf("{\"email\":\"%s\",\"password\":\"%s\"}", email, password);
  g_autoptr(JsonNode) answer = NULL;
  long status = call("POST", "/api/v1/login", NULL, body, &answer);
  ck_assert_msg(status == 200, "login %s: got %ld, expected 200", email, status);
  const char *token = member_str(answer, "token");
  ck_assert_ptr_nonnull(token);
  return g_strdup(token);
}

static char *
device_login(void)
{
  g_autofree char *body =
      g_strdup_printf("{\"device\":\"MFP-1\",\"secret\":\"%s\"}", fx.secret);
  g_autoptr(JsonNode) answer = NULL;
  long status = call("POST", "/api/v1/device/login", NULL, body, &answer);
  ck_assert_msg(status == 200, "device login: got %ld, expected 200", status);
  ck_assert_int_eq(member_int(answer, "expires_in"), KCPS_SERVER_DEVICE_TTL);
  return g_strdup(member_str(answer, "token"));
}

/* A user-at-device token for alice at MFP-1. */
static char *
pin_login(void)
{
  g_autofree char *device = device_login();
  g_autoptr(JsonNode) answer = NULL;
  long status = call("POST", "/api/v1/device/pin-login", device, "{\"pin\":\"4321\"}", &answer);
  ck_assert_msg(status == 200, "pin login: got %ld, expected 200", status);
  return g_strdup(member_str(answer, "token"));
}

static char *
job_body(const char *cjob, const char *sha, gint64 pages)
{
  return g_strdup_printf("{\"client_job_id\":\"%s\",\"name\":\"Report.pdf\",\"pages\":%" G_GINT64_FORMAT
                         ",\"size\":12345,\"sha256\":\"%s\","
                         "\"pull_url\":\"https://192.0.2.7:5571/jobs/%s/document\","
                         "\"pull_pin\":\"" PIN_OK "\"}",
                         cjob, pages, sha, cjob);
}

/* Registers a job; returns its server id. */
static char *
register_job(const char *token, const char *cjob, long expect)
{
  g_autofree char *body = job_body(cjob, SHA_A, 3);
  g_autoptr(JsonNode) answer = NULL;
  long status = call("POST", "/api/v1/jobs", token, body, &answer);
  ck_assert_msg(status == expect, "register %s: got %ld, expected %ld", cjob, status, expect);
  ck_assert_msg(kcps__server_is_job_id(member_str(answer, "id")), "job id %s",
                member_str(answer, "id"));
  return g_strdup(member_str(answer, "id"));
}

static void
expect_error(long status, JsonNode **answerp, long want_status, const char *code,
             const char *in_message)
{
  /* Takes the node's address: the call filling it is an argument too, and
   * arguments are evaluated in no set order. */
  JsonNode *answer = *answerp;
  const char *msg = member_str(answer, "message");
  ck_assert_msg(status == want_status, "got %ld (%s), expected %ld", status, msg ? msg : "-",
                want_status);
  ck_assert_msg(g_strcmp0(member_str(answer, "error"), code) == 0, "error code: got %s, expected %s",
                member_str(answer, "error"), code);
  if (in_message)
    ck_assert_msg(msg && strstr(msg, in_message), "message \"%s\" should name \"%s\"",
                  msg ? msg : "(none)", in_message);
}

/* Login and sessions ------------------------------------------------------ */

START_TEST(test_login_ok)
{
  g_autofree char *body =
      g_strdup_printf("{\"email\":\"alice@a.test\",\"password\":\"%s\"}", fx.alice_pw);
  g_autoptr(JsonNode) answer = NULL;
  ck_assert_int_eq(call("POST", "/api/v1/login", NULL, body, &answer), 200);
  ck_assert_int_eq(strlen(member_str(answer, "token")), 43); /* 32 bytes base64url */
  ck_assert_int_eq(member_int(answer, "expires_in"), 12 * 3600);
  JsonObject *user = json_object_get_object_member(json_node_get_object(answer), "user");
  ck_assert_str_eq(kcps_json_string(user, "email"), "alice@a.test");
  ck_assert_str_eq(kcps_json_string(user, "role"), "customer_user");
  ck_assert_str_eq(kcps_json_string(user, "org"), "Customer A");

  /* /me answers the same account; the email is case-insensitive. */
  g_autofree char *token = login("ADMIN@a.test", fx.admin_pw);
  g_autoptr(JsonNode) me = NULL;
  ck_assert_int_eq(call("GET", "/api/v1/me", token, NULL, &me), 200);
  ck_assert_str_eq(member_str(me, "email"), "admin@a.test");
  ck_assert_str_eq(member_str(me, "role"), "customer_admin");
  ck_assert_str_eq(member_str(me, "org"), "Customer A");
  ck_assert_ptr_nonnull(member_str(me, "id"));
}
END_TEST

START_TEST(test_login_refused_alike)
{
  g_autoptr(JsonNode) wrong = NULL;
  g_autoptr(JsonNode) unknown = NULL;
  long s1 = call("POST", "/api/v1/login", NULL,
                 "{\"email\":\"alice@a.test\",\"password\":\"Wrong-pass-1\"}", &wrong);
  long s2 = call("POST", "/api/v1/login", NULL,
                 "{\"email\":\"nobody@a.test\",\"password\":\"Wrong-pass-1\"}", &unknown);
  expect_error(s1, &wrong, 401, "invalid_credentials", NULL);
  expect_error(s2, &unknown, 401, "invalid_credentials", NULL);
  g_autofree char *a = kcps_json_to_string(wrong);
  g_autofree char *b = kcps_json_to_string(unknown);
  ck_assert_msg(strcmp(a, b) == 0, "wrong password answered %s, unknown account %s", a, b);
  ck_assert_int_eq(kcps__server_db_count_rows(fx.server, "sessions"), 0);
}
END_TEST

START_TEST(test_logout)
{
  g_autofree char *token = login("alice@a.test", fx.alice_pw);
  ck_assert_int_eq(call("GET", "/api/v1/me", token, NULL, NULL), 200);
  ck_assert_int_eq(call("POST", "/api/v1/logout", token, NULL, NULL), 204);
  g_autoptr(JsonNode) answer = NULL;
  long status = call("GET", "/api/v1/me", token, NULL, &answer);
  expect_error(status, &answer, 401, "unauthorized", NULL);
  ck_assert_int_eq(kcps__server_db_count_rows(fx.server, "sessions"), 0);
}
END_TEST

START_TEST(test_no_or_bad_token)
{
  g_autoptr(JsonNode) a1 = NULL;
  g_autoptr(JsonNode) a2 = NULL;
  g_autoptr(JsonNode) a3 = NULL;
  g_autoptr(JsonNode) a4 = NULL;
  expect_error(call("GET", "/api/v1/jobs", NULL, NULL, &a1), &a1, 401, "unauthorized", NULL);
  expect_error(call("GET", "/api/v1/jobs", "not-a-token", NULL, &a2), &a2, 401, "unauthorized",
               NULL);
  expect_error(call("GET", "/api/v1/login", NULL, NULL, &a3), &a3, 405, "method_not_allowed",
               "POST");
  expect_error(call("GET", "/api/v1/nothing", NULL, NULL, &a4), &a4, 404, "not_found", NULL);
}
END_TEST

START_TEST(test_ticket_key)
{
  g_autoptr(JsonNode) answer = NULL;
  ck_assert_int_eq(call("GET", "/api/v1/ticket-key", NULL, NULL, &answer), 200);
  ck_assert_str_eq(member_str(answer, "alg"), "Ed25519");
  size_t len = 0;
  g_autofree guchar *raw = kcps_base64url_decode(member_str(answer, "public_key"), &len);
  ck_assert_msg(raw && len == 32, "public key: got %zu bytes, expected 32", len);
}
END_TEST

/* Validation -------------------------------------------------------------- */

typedef struct {
  const char *path;
  const char *body;
  const char *names; /* what the 400 message must mention */
} bad_case_t;

static const bad_case_t bad_cases[] = {
  {"/api/v1/jobs", "{", "JSON"},
  {"/api/v1/jobs", "", "JSON"},
  {"/api/v1/jobs", "[1,2]", "object"},
  {"/api/v1/jobs", "{}", "client_job_id"},
  {"/api/v1/jobs", "{\"client_job_id\":5}", "client_job_id"},
  {"/api/v1/jobs", "{\"client_job_id\":\"a/b\"}", "client_job_id"},
  {"/api/v1/jobs", "{\"client_job_id\":\"j1\",\"name\":\"x\",\"pages\":0,\"size\":1,"
                   "\"sha256\":\"" SHA_A "\",\"pull_url\":\"https://h/x\",\"pull_pin\":\"" PIN_OK "\"}",
   "pages"},
  {"/api/v1/jobs", "{\"client_job_id\":\"j1\",\"name\":\"x\",\"pages\":\"3\",\"size\":1,"
                   "\"sha256\":\"" SHA_A "\",\"pull_url\":\"https://h/x\",\"pull_pin\":\"" PIN_OK "\"}",
   "pages"},
  {"/api/v1/jobs", "{\"client_job_id\":\"j1\",\"name\":\"x\",\"pages\":2.5,\"size\":1,"
                   "\"sha256\":\"" SHA_A "\",\"pull_url\":\"https://h/x\",\"pull_pin\":\"" PIN_OK "\"}",
   "pages"},
  {"/api/v1/jobs", "{\"client_job_id\":\"j1\",\"name\":\"x\",\"pages\":1,\"size\":-1,"
                   "\"sha256\":\"" SHA_A "\",\"pull_url\":\"https://h/x\",\"pull_pin\":\"" PIN_OK "\"}",
   "size"},
  {"/api/v1/jobs", "{\"client_job_id\":\"j1\",\"name\":\"x\",\"pages\":1,\"size\":1,"
                   "\"sha256\":\"abc\",\"pull_url\":\"https://h/x\",\"pull_pin\":\"" PIN_OK "\"}",
   "sha256"},
  {"/api/v1/jobs", "{\"client_job_id\":\"j1\",\"name\":\"x\",\"pages\":1,\"size\":1,"
                   "\"sha256\":\"" SHA_A "\",\"pull_url\":\"http://h/x\",\"pull_pin\":\"" PIN_OK "\"}",
   "pull_url"},
  {"/api/v1/jobs", "{\"client_job_id\":\"j1\",\"name\":\"x\",\"pages\":1,\"size\":1,"
                   "\"sha256\":\"" SHA_A "\",\"pull_url\":\"https://h/x\",\"pull_pin\":\"sha256//x\"}",
   "pull_pin"},
  {"/api/v1/jobs", "{\"client_job_id\":\"j1\",\"name\":\"x\",\"pages\":1,\"size\":1,"
                   "\"sha256\":\"" SHA_A "\",\"pull_url\":\"https://h/x\"}",
   "pull_pin"},
  {"/api/v1/jobs", "{\"client_job_id\":\"j1\",\"name\":null,\"pages\":1,\"size\":1,"
                   "\"sha256\":\"" SHA_A "\",\"pull_url\":\"https://h/x\",\"pull_pin\":\"" PIN_OK "\"}",
   "name"},
  {"/api/v1/login", "{\"email\":\"alice@a.test\"}", "password"},
  {"/api/v1/login", "{\"email\":true,\"password\":\"x\"}", "email"},
  {"/api/v1/login", "{\"email\":\"no-at-sign\",\"password\":\"x\"}", "email"},
  {"/api/v1/device/login", "{\"device\":\"MFP-1\"}", "secret"},
  {"/api/v1/device/login", "{\"device\":[],\"secret\":\"x\"}", "device"},
};

START_TEST(test_bad_bodies)
{
  g_autofree char *token = login("alice@a.test", fx.alice_pw);
  gint64 sessions = kcps__server_db_count_rows(fx.server, "sessions");
  const bad_case_t *c = &bad_cases[_i];
  g_autoptr(JsonNode) answer = NULL;
  long status = raw_post(c->path, token, c->body, &answer);
  ck_assert_msg(status == 400, "%s %s: got %ld, expected 400", c->path, c->body, status);
  expect_error(status, &answer, 400, "bad_request", c->names);
  ck_assert_int_eq(kcps__server_db_count_rows(fx.server, "jobs"), 0);
  ck_assert_int_eq(kcps__server_db_count_rows(fx.server, "sessions"), sessions);
}
END_TEST

START_TEST(test_bad_device_bodies)
{
  g_autofree char *device = device_login();
  g_autoptr(JsonNode) a1 = NULL;
  g_autoptr(JsonNode) a2 = NULL;
  expect_error(raw_post("/api/v1/device/pin-login", device, "{\"pin\":4321}", &a1), &a1, 400,
               "bad_request", "pin");
  expect_error(raw_post("/api/v1/device/pin-login", device, "{\"pin\":\"12ab\"}", &a2), &a2, 400,
               "bad_request", "pin");

  /* A bad job log stores nothing and leaves the job waiting. */
  g_autofree char *user = login("alice@a.test", fx.alice_pw);
  g_autofree char *id = register_job(user, "log-1", 201);
  g_autofree char *alice = pin_login();
  g_autofree char *ticket_path = g_strdup_printf("/api/v1/device/jobs/%s/ticket", id);
  ck_assert_int_eq(call("POST", ticket_path, alice, NULL, NULL), 201);
  g_autofree char *log_path = g_strdup_printf("/api/v1/device/jobs/%s/log", id);
  static const char *const logs[][2] = {
    {"{\"pages\":3}", "status"},
    {"{\"pages\":3,\"status\":\"done\"}", "status"},
    {"{\"pages\":-1,\"status\":\"completed\"}", "pages"},
    {"{\"pages\":2,\"color_pages\":3,\"status\":\"completed\"}", "color_pages"},
    {"{\"pages\":2,\"duplex\":\"yes\",\"status\":\"completed\"}", "duplex"},
  };
  for (size_t i = 0; i < G_N_ELEMENTS(logs); i++) {
    g_autoptr(JsonNode) answer = NULL;
    expect_error(raw_post(log_path, alice, logs[i][0], &answer), &answer, 400, "bad_request",
                 logs[i][1]);
  }
  ck_assert_int_eq(kcps__server_db_count_rows(fx.server, "job_logs"), 0);
  g_autoptr(JsonNode) usage = NULL;
  ck_assert_int_eq(call("GET", "/api/v1/me/usage", user, NULL, &usage), 200);
  ck_assert_int_eq(member_int(usage, "pages"), 0);
}
END_TEST

/* Jobs -------------------------------------------------------------------- */

START_TEST(test_register_idempotent)
{
  g_autofree char *token = login("alice@a.test", fx.alice_pw);
  g_autofree char *first = register_job(token, "spool-0001", 201);
  g_autofree char *again = register_job(token, "spool-0001", 200);
  ck_assert_str_eq(first, again);
  ck_assert_int_eq(kcps__server_db_count_rows(fx.server, "jobs"), 1);

  /* The same client id for another document is a conflict, not a new job. */
  g_autofree char *other = job_body("spool-0001", SHA_B, 3);
  g_autoptr(JsonNode) answer = NULL;
  expect_error(call("POST", "/api/v1/jobs", token, other, &answer), &answer, 409, "conflict",
               NULL);
  ck_assert_int_eq(kcps__server_db_count_rows(fx.server, "jobs"), 1);

  /* Documents without a name are printable too. */
  g_autofree char *unnamed = job_body("spool-0002", SHA_B, 1);
  char *name = strstr(unnamed, "Report.pdf");
  memmove(name, name + 10, strlen(name + 10) + 1);
  ck_assert_int_eq(call("POST", "/api/v1/jobs", token, unnamed, NULL), 201);
  ck_assert_int_eq(kcps__server_db_count_rows(fx.server, "jobs"), 2);

  /* A retry from a new desktop address moves the pull URL along. */
  g_autofree char *moved = job_body("spool-0001", SHA_A, 3);
  char *at = strstr(moved, "192.0.2.7");
  memcpy(at, "192.0.2.8", 9);
  g_autoptr(JsonNode) moved_answer = NULL;
  ck_assert_int_eq(call("POST", "/api/v1/jobs", token, moved, &moved_answer), 200);
  ck_assert_str_eq(member_str(moved_answer, "id"), first);
  ck_assert_str_eq(member_str(moved_answer, "pull_url"),
                   "https://192.0.2.8:5571/jobs/spool-0001/document");

  g_autoptr(JsonNode) list = NULL;
  ck_assert_int_eq(call("GET", "/api/v1/jobs", token, NULL, &list), 200);
  JsonArray *jobs = member_array(list, "jobs");
  ck_assert_msg(jobs && json_array_get_length(jobs) == 2, "alice's jobs: got %u, expected 2",
                jobs ? json_array_get_length(jobs) : 0);
  JsonObject *job = json_array_get_object_element(jobs, 0);
  ck_assert_str_eq(kcps_json_string(job, "id"), first);
  ck_assert_str_eq(kcps_json_string(job, "client_job_id"), "spool-0001");
  ck_assert_str_eq(kcps_json_string(job, "name"), "Report.pdf");
  ck_assert_str_eq(kcps_json_string(job, "state"), "waiting");
  ck_assert_str_eq(kcps_json_string(job, "spool"), "local");
  ck_assert_str_eq(kcps_json_string(job, "owner"), "alice@a.test");
  ck_assert_str_eq(kcps_json_string(job, "sha256"), SHA_A);
  ck_assert_str_eq(kcps_json_string(job, "pull_pin"), PIN_OK);
  gint64 pages = 0;
  ck_assert(kcps_json_int(job, "pages", &pages));
  ck_assert_int_eq(pages, 3);
  ck_assert_ptr_nonnull(kcps_json_string(job, "created"));
}
END_TEST

START_TEST(test_jobs_are_private)
{
  g_autofree char *alice = login("alice@a.test", fx.alice_pw);
  g_autofree char *admin = login("admin@a.test", fx.admin_pw);
  g_autofree char *alice_job = register_job(alice, "same-id", 201);
  g_autofree char *admin_job = register_job(admin, "same-id", 201); /* own namespace */
  ck_assert_str_ne(alice_job, admin_job);

  g_autoptr(JsonNode) list = NULL;
  ck_assert_int_eq(call("GET", "/api/v1/jobs", admin, NULL, &list), 200);
  JsonArray *jobs = member_array(list, "jobs");
  ck_assert_int_eq(json_array_get_length(jobs), 1);
  ck_assert_str_eq(kcps_json_string(json_array_get_object_element(jobs, 0), "id"), admin_job);

  /* At the device, alice sees only hers; the admin's job is "not found". */
  g_autofree char *at_device = pin_login();
  g_autoptr(JsonNode) dlist = NULL;
  ck_assert_int_eq(call("GET", "/api/v1/device/jobs", at_device, NULL, &dlist), 200);
  jobs = member_array(dlist, "jobs");
  ck_assert_int_eq(json_array_get_length(jobs), 1);
  ck_assert_str_eq(kcps_json_string(json_array_get_object_element(jobs, 0), "id"), alice_job);

  g_autofree char *path = g_strdup_printf("/api/v1/device/jobs/%s/ticket", admin_job);
  g_autoptr(JsonNode) a1 = NULL;
  expect_error(call("POST", path, at_device, NULL, &a1), &a1, 404, "not_found", NULL);
  g_autofree char *log = g_strdup_printf("/api/v1/device/jobs/%s/log", admin_job);
  g_autoptr(JsonNode) a2 = NULL;
  expect_error(call("POST", log, at_device, "{\"pages\":1,\"status\":\"completed\"}", &a2), &a2,
               404, "not_found", NULL);
  g_autoptr(JsonNode) a3 = NULL;
  expect_error(call("POST", "/api/v1/device/jobs/../ticket", at_device, NULL, &a3), &a3, 404,
               "not_found", NULL);
  ck_assert_int_eq(kcps__server_db_count_rows(fx.server, "tickets"), 0);
}
END_TEST

START_TEST(test_session_kinds)
{
  g_autofree char *user = login("alice@a.test", fx.alice_pw);
  g_autofree char *device = device_login();
  g_autoptr(JsonNode) a1 = NULL;
  g_autoptr(JsonNode) a2 = NULL;
  g_autoptr(JsonNode) a3 = NULL;
  expect_error(call("GET", "/api/v1/device/jobs", user, NULL, &a1), &a1, 403, "forbidden", NULL);
  expect_error(call("GET", "/api/v1/device/jobs", device, NULL, &a2), &a2, 403, "forbidden", NULL);
  expect_error(call("GET", "/api/v1/jobs", device, NULL, &a3), &a3, 403, "forbidden", NULL);
}
END_TEST

typedef struct {
  const char *token;
  long status;
} racer_t;

static gpointer
race_register(gpointer data)
{
  racer_t *r = data;
  g_autofree char *body = job_body("raced", SHA_A, 2);
  g_autofree char *url = g_strconcat(kcps_server_get_url(fx.server), "/api/v1/jobs", NULL);
  g_autoptr(JsonNode) node = json_from_string(body, NULL);
  kcps_http_opts_t opts = {.ca_file = fx.ca, .bearer = r->token, .timeout_s = 60};
  kcps_http_call_json("POST", url, &opts, node, &r->status, NULL, NULL);
  return NULL;
}

static gpointer
race_login(gpointer data)
{
  racer_t *r = data;
  g_autofree char *body =
      g_strdup_printf("{\"email\":\"alice@a.test\",\"password\":\"%s\"}", fx.alice_pw);
  g_autofree char *url = g_strconcat(kcps_server_get_url(fx.server), "/api/v1/login", NULL);
  g_autoptr(JsonNode) node = json_from_string(body, NULL);
  kcps_http_opts_t opts = {.ca_file = fx.ca, .timeout_s = 60};
  kcps_http_call_json("POST", url, &opts, node, &r->status, NULL, NULL);
  return NULL;
}

/* Simultaneous retries of one registration make one job; simultaneous
 * logins all succeed (Argon2 runs are queued, not refused). */
START_TEST(test_concurrent)
{
  g_autofree char *token = login("alice@a.test", fx.alice_pw);
  enum { N = 12 };
  racer_t racers[N];
  GThread *threads[N];
  for (int i = 0; i < N; i++) {
    racers[i] = (racer_t){.token = token};
    threads[i] = g_thread_new("register", race_register, &racers[i]);
  }
  int created = 0, existing = 0;
  for (int i = 0; i < N; i++) {
    g_thread_join(threads[i]);
    created += racers[i].status == 201;
    existing += racers[i].status == 200;
  }
  ck_assert_msg(created == 1 && existing == N - 1, "got %d created and %d existing, expected 1 and %d",
                created, existing, N - 1);
  ck_assert_int_eq(kcps__server_db_count_rows(fx.server, "jobs"), 1);

  for (int i = 0; i < N; i++) {
    racers[i] = (racer_t){0};
    threads[i] = g_thread_new("login", race_login, &racers[i]);
  }
  for (int i = 0; i < N; i++) {
    g_thread_join(threads[i]);
    ck_assert_msg(racers[i].status == 200, "login %d: got %ld, expected 200", i, racers[i].status);
  }
  ck_assert_int_eq(kcps__server_db_count_rows(fx.server, "sessions"), N + 1);
}
END_TEST

/* Devices ----------------------------------------------------------------- */

START_TEST(test_device_login)
{
  g_autofree char *token = device_login();
  ck_assert_int_eq(strlen(token), 43);

  g_autoptr(JsonNode) bad = NULL;
  g_autoptr(JsonNode) unknown = NULL;
  long s1 = call("POST", "/api/v1/device/login", NULL,
                 "{\"device\":\"MFP-1\",\"secret\":\"not-the-secret\"}", &bad);
  long s2 = call("POST", "/api/v1/device/login", NULL,
                 "{\"device\":\"MFP-9\",\"secret\":\"not-the-secret\"}", &unknown);
  expect_error(s1, &bad, 401, "invalid_credentials", NULL);
  expect_error(s2, &unknown, 401, "invalid_credentials", NULL);
  g_autofree char *a = kcps_json_to_string(bad);
  g_autofree char *b = kcps_json_to_string(unknown);
  ck_assert_str_eq(a, b);
}
END_TEST

START_TEST(test_pin_login)
{
  g_autofree char *device = device_login();
  g_autoptr(JsonNode) wrong = NULL;
  expect_error(call("POST", "/api/v1/device/pin-login", device, "{\"pin\":\"1234\"}", &wrong),
               &wrong, 401, "invalid_pin", NULL);

  g_autoptr(JsonNode) ok = NULL;
  ck_assert_int_eq(call("POST", "/api/v1/device/pin-login", device, "{\"pin\":\"4321\"}", &ok),
                   200);
  ck_assert_int_eq(member_int(ok, "expires_in"), 600);
  JsonObject *user = json_object_get_object_member(json_node_get_object(ok), "user");
  ck_assert_str_eq(kcps_json_string(user, "email"), "alice@a.test");
  ck_assert_str_eq(kcps_json_string(user, "name"), "Alice");

  /* A user session cannot PIN-login: it is a device's step. */
  g_autofree char *user_token = login("alice@a.test", fx.alice_pw);
  g_autoptr(JsonNode) refused = NULL;
  expect_error(call("POST", "/api/v1/device/pin-login", user_token, "{\"pin\":\"4321\"}",
                    &refused), &refused, 403, "forbidden", NULL);
}
END_TEST

START_TEST(test_ticket)
{
  g_autofree char *user = login("alice@a.test", fx.alice_pw);
  g_autofree char *id = register_job(user, "spool-tk", 201);
  g_autofree char *at_device = pin_login();

  g_autoptr(JsonNode) dlist = NULL;
  ck_assert_int_eq(call("GET", "/api/v1/device/jobs", at_device, NULL, &dlist), 200);
  ck_assert_int_eq(json_array_get_length(member_array(dlist, "jobs")), 1);

  g_autofree char *path = g_strdup_printf("/api/v1/device/jobs/%s/ticket", id);
  g_autoptr(JsonNode) answer = NULL;
  ck_assert_int_eq(call("POST", path, at_device, NULL, &answer), 201);
  ck_assert_int_eq(member_int(answer, "expires_in"), 120);
  ck_assert_str_eq(member_str(answer, "pull_url"),
                   "https://192.0.2.7:5571/jobs/spool-tk/document");
  ck_assert_str_eq(member_str(answer, "pull_pin"), PIN_OK);
  const char *text = member_str(answer, "ticket");
  ck_assert_ptr_nonnull(text);

  /* The desktop's check: the key from /ticket-key verifies it. */
  g_autoptr(JsonNode) key_answer = NULL;
  ck_assert_int_eq(call("GET", "/api/v1/ticket-key", NULL, NULL, &key_answer), 200);
  g_autoptr(GError) error = NULL;
  g_autoptr(kcps_ticket_key_t) key =
      kcps_ticket_key_from_public(member_str(key_answer, "public_key"), &error);
  ck_assert_msg(key != NULL, "public key: %s", error ? error->message : "?");
  gint64 now = g_get_real_time() / G_USEC_PER_SEC;
  g_autoptr(kcps_ticket_t) t = kcps_ticket_verify(key, text, now, &error);
  ck_assert_msg(t != NULL, "ticket does not verify: %s", error ? error->message : "?");
  ck_assert_str_eq(t->job, id);
  ck_assert_str_eq(t->cjob, "spool-tk");
  ck_assert_str_eq(t->user, "alice@a.test");
  ck_assert_str_eq(t->device, "MFP-1");
  ck_assert_msg(t->exp > now && t->exp <= now + 121, "exp %" G_GINT64_FORMAT " now %" G_GINT64_FORMAT,
                t->exp, now);
  ck_assert_int_ge(strlen(t->tid), 16);

  /* Expired a second after its exp. */
  g_autoptr(GError) expired = NULL;
  ck_assert_ptr_null(kcps_ticket_verify(key, text, t->exp + 1, &expired));
  ck_assert_msg(g_error_matches(expired, KCPS_CRYPTO_ERROR, KCPS_CRYPTO_ERROR_EXPIRED),
                "expired ticket: got %s", expired ? expired->message : "no error");

  /* Another key does not accept it. */
  g_autofree char *other_path = g_build_filename(fx.tmp, "other-key.pem", NULL);
  g_autoptr(kcps_ticket_key_t) other = kcps_ticket_key_load_or_create(other_path, &error);
  ck_assert_ptr_nonnull(other);
  g_autoptr(GError) forged = NULL;
  ck_assert_ptr_null(kcps_ticket_verify(other, text, now, &forged));
  ck_assert_msg(g_error_matches(forged, KCPS_CRYPTO_ERROR, KCPS_CRYPTO_ERROR_SIGNATURE),
                "other key: got %s", forged ? forged->message : "no error");

  /* Each ticket is new. */
  g_autoptr(JsonNode) second = NULL;
  ck_assert_int_eq(call("POST", path, at_device, NULL, &second), 201);
  ck_assert_str_ne(member_str(second, "ticket"), text);
  ck_assert_int_eq(kcps__server_db_count_rows(fx.server, "tickets"), 2);
}
END_TEST

START_TEST(test_log_counts_usage)
{
  g_autofree char *user = login("alice@a.test", fx.alice_pw);
  g_autofree char *id = register_job(user, "spool-log", 201);
  g_autofree char *unticketed = register_job(user, "spool-noticket", 201);
  g_autofree char *at_device = pin_login();
  g_autofree char *ticket = g_strdup_printf("/api/v1/device/jobs/%s/ticket", id);
  ck_assert_int_eq(call("POST", ticket, at_device, NULL, NULL), 201);

  /* A device cannot log a job it never got a ticket for. */
  g_autofree char *log0 = g_strdup_printf("/api/v1/device/jobs/%s/log", unticketed);
  g_autoptr(JsonNode) refused = NULL;
  expect_error(call("POST", log0, at_device, "{\"pages\":3,\"status\":\"completed\"}", &refused),
               &refused, 409, "conflict", NULL);

  g_autofree char *log = g_strdup_printf("/api/v1/device/jobs/%s/log", id);
  g_autoptr(JsonNode) answer = NULL;
  ck_assert_int_eq(call("POST", log, at_device,
                        "{\"pages\":3,\"color_pages\":1,\"duplex\":true,\"status\":\"completed\"}",
                        &answer),
                   201);
  ck_assert_str_eq(member_str(answer, "state"), "printed");

  g_autoptr(JsonNode) usage = NULL;
  ck_assert_int_eq(call("GET", "/api/v1/me/usage", user, NULL, &usage), 200);
  ck_assert_str_eq(member_str(usage, "email"), "alice@a.test");
  ck_assert_int_eq(member_int(usage, "jobs"), 1);
  ck_assert_int_eq(member_int(usage, "pages"), 3);
  ck_assert_int_eq(member_int(usage, "color_pages"), 1);

  /* Printed: gone from the device list, its state in the owner's list,
   * and not logged twice. */
  g_autoptr(JsonNode) dlist = NULL;
  ck_assert_int_eq(call("GET", "/api/v1/device/jobs", at_device, NULL, &dlist), 200);
  JsonArray *jobs = member_array(dlist, "jobs");
  ck_assert_int_eq(json_array_get_length(jobs), 1);
  ck_assert_str_eq(kcps_json_string(json_array_get_object_element(jobs, 0), "id"), unticketed);
  g_autoptr(JsonNode) again = NULL;
  expect_error(call("POST", log, at_device, "{\"pages\":3,\"status\":\"completed\"}", &again),
               &again, 409, "conflict", NULL);
  g_autoptr(JsonNode) usage2 = NULL;
  ck_assert_int_eq(call("GET", "/api/v1/me/usage", user, NULL, &usage2), 200);
  ck_assert_int_eq(member_int(usage2, "pages"), 3);

  /* The admin's usage is their own: nothing. */
  g_autofree char *admin = login("admin@a.test", fx.admin_pw);
  g_autoptr(JsonNode) usage3 = NULL;
  ck_assert_int_eq(call("GET", "/api/v1/me/usage", admin, NULL, &usage3), 200);
  ck_assert_int_eq(member_int(usage3, "pages"), 0);
}
END_TEST

/* One number from the database. */
static gint64
db_int(const char *sql)
{
  g_mutex_lock(&fx.server->lock);
  sqlite3_stmt *stmt = NULL;
  gint64 value = -1;
  if (sqlite3_prepare_v2(fx.server->db, sql, -1, &stmt, NULL) == SQLITE_OK &&
      sqlite3_step(stmt) == SQLITE_ROW)
    value = sqlite3_column_int64(stmt, 0);
  sqlite3_finalize(stmt);
  g_mutex_unlock(&fx.server->lock);
  return value;
}

/* The owner deleted the job on her computer: DELETE withdraws it. */
START_TEST(test_withdraw)
{
  g_autofree char *user = login("alice@a.test", fx.alice_pw);
  g_autofree char *plain = register_job(user, "spool-wd1", 201);
  g_autofree char *tried = register_job(user, "spool-wd2", 201);
  g_autofree char *done = register_job(user, "spool-wd3", 201);
  g_autofree char *at_device = pin_login();
  g_autoptr(JsonNode) dlist = NULL;
  ck_assert_int_eq(call("GET", "/api/v1/device/jobs", at_device, NULL, &dlist), 200);
  ck_assert_int_eq(json_array_get_length(member_array(dlist, "jobs")), 3);

  /* A failed attempt at one, a print of another. */
  const char *logs[][2] = {{tried, "failed"}, {done, "completed"}};
  for (size_t i = 0; i < G_N_ELEMENTS(logs); i++) {
    g_autofree char *t = g_strdup_printf("/api/v1/device/jobs/%s/ticket", logs[i][0]);
    ck_assert_int_eq(call("POST", t, at_device, NULL, NULL), 201);
    g_autofree char *l = g_strdup_printf("/api/v1/device/jobs/%s/log", logs[i][0]);
    g_autofree char *body = g_strdup_printf("{\"pages\":1,\"status\":\"%s\"}", logs[i][1]);
    ck_assert_int_eq(call("POST", l, at_device, body, NULL), 201);
  }

  /* Her job, one by one: as the list shows it. */
  g_autofree char *p_plain = g_strdup_printf("/api/v1/jobs/%s", plain);
  g_autoptr(JsonNode) one = NULL;
  ck_assert_int_eq(call("GET", p_plain, user, NULL, &one), 200);
  ck_assert_str_eq(member_str(one, "id"), plain);
  ck_assert_str_eq(member_str(one, "client_job_id"), "spool-wd1");
  ck_assert_str_eq(member_str(one, "state"), "waiting");
  ck_assert_str_eq(member_str(one, "owner"), "alice@a.test");
  ck_assert_ptr_nonnull(member_str(one, "pull_url"));

  /* Nobody else can see or withdraw it: another user, the admin of her
   * organization. */
  g_autofree char *admin = login("admin@a.test", fx.admin_pw);
  g_autoptr(JsonNode) refused = NULL;
  expect_error(call("DELETE", p_plain, admin, NULL, &refused), &refused, 404, "not_found", NULL);
  g_autoptr(JsonNode) unseen = NULL;
  expect_error(call("GET", p_plain, admin, NULL, &unseen), &unseen, 404, "not_found", NULL);
  ck_assert_int_eq(call("DELETE", p_plain, NULL, NULL, NULL), 401);
  ck_assert_int_eq(call("GET", p_plain, NULL, NULL, NULL), 401);
  ck_assert_int_eq(call("DELETE", p_plain, at_device, NULL, NULL), 403);
  ck_assert_int_eq(call("GET", p_plain, at_device, NULL, NULL), 403);

  /* Never tried: gone, with its tickets. */
  ck_assert_int_eq(call("DELETE", p_plain, user, NULL, NULL), 204);
  g_autofree char *q = g_strdup_printf("SELECT count(*) FROM jobs WHERE public_id = '%s'", plain);
  ck_assert_int_eq(db_int(q), 0);
  ck_assert_int_eq(call("DELETE", p_plain, user, NULL, NULL), 404);
  ck_assert_int_eq(call("GET", p_plain, user, NULL, NULL), 404);

  /* Tried and failed: kept for the reports, but no device gets it again. */
  g_autofree char *p_tried = g_strdup_printf("/api/v1/jobs/%s", tried);
  ck_assert_int_eq(call("DELETE", p_tried, user, NULL, NULL), 204);
  g_autofree char *q2 = g_strdup_printf(
      "SELECT count(*) FROM jobs j JOIN job_logs l ON l.job_id = j.id"
      " WHERE j.public_id = '%s' AND j.pull_url IS NULL", tried);
  ck_assert_int_eq(db_int(q2), 1);
  g_autofree char *t_tried = g_strdup_printf("/api/v1/device/jobs/%s/ticket", tried);
  g_autoptr(JsonNode) gone = NULL;
  expect_error(call("POST", t_tried, at_device, NULL, &gone), &gone, 410, "gone", "withdrawn");
  ck_assert_int_eq(call("DELETE", p_tried, user, NULL, NULL), 404);
  g_autoptr(JsonNode) kept = NULL;
  ck_assert_int_eq(call("GET", p_tried, user, NULL, &kept), 200);
  ck_assert_str_eq(member_str(kept, "state"), "failed");
  ck_assert_ptr_null(member_str(kept, "pull_url"));

  /* Printed: stays, and says why. */
  g_autofree char *p_done = g_strdup_printf("/api/v1/jobs/%s", done);
  g_autoptr(JsonNode) printed = NULL;
  expect_error(call("DELETE", p_done, user, NULL, &printed), &printed, 409, "conflict",
               "printed");
  g_autoptr(JsonNode) done_job = NULL;
  ck_assert_int_eq(call("GET", p_done, user, NULL, &done_job), 200);
  ck_assert_str_eq(member_str(done_job, "state"), "printed");

  g_autoptr(JsonNode) after = NULL;
  ck_assert_int_eq(call("GET", "/api/v1/device/jobs", at_device, NULL, &after), 200);
  ck_assert_int_eq(json_array_get_length(member_array(after, "jobs")), 0);
  ck_assert_int_eq(db_int("SELECT count(*) FROM audit WHERE event = 'job.withdrawn'"),
                   2);
  /* The usage counted stays. */
  g_autoptr(JsonNode) usage = NULL;
  ck_assert_int_eq(call("GET", "/api/v1/me/usage", user, NULL, &usage), 200);
  ck_assert_int_eq(member_int(usage, "pages"), 1);
}
END_TEST

/* Storage ----------------------------------------------------------------- */

START_TEST(test_password_hash)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *hash = kcps__server_password_hash("Correct-horse-9", &error);
  ck_assert_msg(hash != NULL, "hash: %s", error ? error->message : "?");
  ck_assert_msg(g_str_has_prefix(hash, "$argon2id$v=19$m=19456,t=2,p=1$"), "hash form: %s", hash);
  ck_assert(kcps__server_password_verify(hash, "Correct-horse-9"));
  ck_assert(!kcps__server_password_verify(hash, "Correct-horse-8"));
  ck_assert(!kcps__server_password_verify(hash, ""));
  g_autofree char *again = kcps__server_password_hash("Correct-horse-9", NULL);
  ck_assert_str_ne(hash, again); /* fresh salt */

  g_autofree char *stored = kcps__server_db_password_hash(fx.server, "alice@a.test");
  ck_assert_ptr_nonnull(stored);
  ck_assert_msg(g_str_has_prefix(stored, "$argon2id$"), "stored: %s", stored);
  ck_assert_ptr_null(strstr(stored, fx.alice_pw));
  ck_assert(kcps__server_password_verify(stored, fx.alice_pw));
}
END_TEST

START_TEST(test_demo_passwords)
{
  const char *pws[] = {fx.admin_pw, fx.alice_pw};
  for (size_t i = 0; i < G_N_ELEMENTS(pws); i++) {
    const char *pw = pws[i];
    ck_assert_int_eq(strlen(pw), 16);
    bool digit = false, upper = false, lower = false, symbol = false;
    for (const char *p = pw; *p; p++) {
      digit = digit || g_ascii_isdigit(*p);
      upper = upper || g_ascii_isupper(*p);
      lower = lower || g_ascii_islower(*p);
      symbol = symbol || strchr("!#%+-.:=?@_", *p);
      ck_assert_msg(g_ascii_isalnum(*p) || strchr("!#%+-.:=?@_", *p), "odd character in a password");
    }
    ck_assert_msg(digit && upper && lower && symbol, "password lacks a character class");
  }
  ck_assert_str_ne(fx.admin_pw, fx.alice_pw);
  ck_assert_int_eq(kcps__server_db_count_rows(fx.server, "orgs"), 3);
  ck_assert_int_eq(kcps__server_db_count_rows(fx.server, "users"), 3);
  ck_assert_int_eq(kcps__server_db_count_rows(fx.server, "devices"), 1);
}
END_TEST

START_TEST(test_files_private)
{
  struct stat st;
  ck_assert_int_eq(stat(fx.data, &st), 0);
  ck_assert_msg((st.st_mode & 0777) == 0700, "data folder mode %o, expected 700",
                st.st_mode & 0777);

  static const char *const expected[] = {"kcps.db", "pin-pepper", "ticket-key.pem", "server.key",
                                         "server.crt", "demo-credentials.txt", "MFP-1.secret"};
  for (size_t i = 0; i < G_N_ELEMENTS(expected); i++) {
    g_autofree char *path = g_build_filename(fx.data, expected[i], NULL);
    ck_assert_msg(g_file_test(path, G_FILE_TEST_IS_REGULAR), "%s is missing", expected[i]);
  }

  /* Everything but the (public) certificate is the owner's alone. */
  GDir *dir = g_dir_open(fx.data, 0, NULL);
  const char *name;
  while ((name = g_dir_read_name(dir))) {
    if (strcmp(name, "server.crt") == 0)
      continue;
    g_autofree char *path = g_build_filename(fx.data, name, NULL);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_msg((st.st_mode & 077) == 0, "%s has mode %o, expected 600", name,
                  st.st_mode & 0777);
  }
  g_dir_close(dir);

  g_autofree char *secret_path = g_build_filename(fx.data, "MFP-1.secret", NULL);
  g_autofree char *secret = NULL;
  ck_assert(g_file_get_contents(secret_path, &secret, NULL, NULL));
  ck_assert_str_eq(secret, fx.secret);
  gsize len = 0;
  g_autofree char *pepper_path = g_build_filename(fx.data, "pin-pepper", NULL);
  g_autofree char *pepper = NULL;
  ck_assert(g_file_get_contents(pepper_path, &pepper, &len, NULL));
  ck_assert_int_eq(len, 32);
}
END_TEST

START_TEST(test_second_start)
{
  g_autofree char *path = g_build_filename(fx.data, "demo-credentials.txt", NULL);
  g_autofree char *before = NULL;
  ck_assert(g_file_get_contents(path, &before, NULL, NULL));
  g_autofree char *user = login("alice@a.test", fx.alice_pw);
  g_autofree char *id = register_job(user, "keep-me", 201);

  kcps_server_free(fx.server);
  fx.server = start_server(true);
  ck_assert_ptr_null(kcps_server_get_demo_credentials(fx.server));
  g_autofree char *after = NULL;
  ck_assert(g_file_get_contents(path, &after, NULL, NULL));
  ck_assert_str_eq(before, after);
  ck_assert_int_eq(kcps__server_db_count_rows(fx.server, "orgs"), 3);
  ck_assert_int_eq(kcps__server_db_count_rows(fx.server, "users"), 3);

  /* Same passwords, same session (tokens survive a restart), same job. */
  g_autofree char *again = login("alice@a.test", fx.alice_pw);
  g_autoptr(JsonNode) list = NULL;
  ck_assert_int_eq(call("GET", "/api/v1/jobs", user, NULL, &list), 200);
  ck_assert_str_eq(kcps_json_string(json_array_get_object_element(member_array(list, "jobs"), 0),
                                    "id"),
                   id);
  g_autofree char *dev = device_login();
}
END_TEST

START_TEST(test_bad_config)
{
  g_autoptr(GError) error = NULL;
  kcps_server_config_t half = {.listen = "127.0.0.1:0", .data_dir = fx.data,
                               .cert_path = "/nonexistent.crt"};
  ck_assert_ptr_null(kcps_server_new(&half, &error));
  ck_assert(g_error_matches(error, KCPS_SERVER_ERROR, KCPS_SERVER_ERROR_CONFIG));
  g_clear_error(&error);
  kcps_server_config_t nohost = {.listen = "8443", .data_dir = fx.data};
  ck_assert_ptr_null(kcps_server_new(&nohost, &error));
  ck_assert_msg(error && strstr(error->message, "8443"), "got %s",
                error ? error->message : "no error");
}
END_TEST

static Suite *
server_suite(void)
{
  Suite *s = suite_create("server");

  TCase *tc = tcase_create("sessions");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_login_ok);
  tcase_add_test(tc, test_login_refused_alike);
  tcase_add_test(tc, test_logout);
  tcase_add_test(tc, test_no_or_bad_token);
  tcase_add_test(tc, test_ticket_key);
  tcase_add_test(tc, test_session_kinds);
  suite_add_tcase(s, tc);

  tc = tcase_create("validation");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_loop_test(tc, test_bad_bodies, 0, G_N_ELEMENTS(bad_cases));
  tcase_add_test(tc, test_bad_device_bodies);
  suite_add_tcase(s, tc);

  tc = tcase_create("jobs");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_register_idempotent);
  tcase_add_test(tc, test_jobs_are_private);
  tcase_add_test(tc, test_concurrent);
  suite_add_tcase(s, tc);

  tc = tcase_create("devices");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_device_login);
  tcase_add_test(tc, test_pin_login);
  tcase_add_test(tc, test_ticket);
  tcase_add_test(tc, test_log_counts_usage);
  tcase_add_test(tc, test_withdraw);
  suite_add_tcase(s, tc);

  tc = tcase_create("storage");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_password_hash);
  tcase_add_test(tc, test_demo_passwords);
  tcase_add_test(tc, test_files_private);
  tcase_add_test(tc, test_second_start);
  tcase_add_test(tc, test_bad_config);
  suite_add_tcase(s, tc);
  return s;
}

int
main(void)
{
  curl_global_init(CURL_GLOBAL_DEFAULT);
  SRunner *runner = srunner_create(server_suite());
  srunner_run_all(runner, CK_NORMAL);
  int failed = srunner_ntests_failed(runner);
  srunner_free(runner);
  curl_global_cleanup();
  return failed == 0 ? 0 : 1;
}
