/* Unit tests of the spool mode (issue 5): the precedence user > organization
 * > kcpsd, GET/PUT /v1/settings on 5572 (own settings only, bad bodies
 * named, null), the choice kept across restarts (0600), /v1/jobs showing
 * it, and `kcps spool-mode`. The daemon runs in-process on
 * free ports; its server is an address nobody listens on (the organization's
 * default is injected as if read at login). */
#include "client/daemon-private.h"
#include "common/json-util.h"

#include <check.h>
#include <curl/curl.h>
#include <gio/gio.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define TESTPAGE "/usr/share/cups/data/default-testpage.pdf"

static char *tmp;
static char *server_url;
static kcps_daemon_t *dmn;

/* A loopback port nobody listens on (bound, then released). */
static int closed_port(void)
{
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  ck_assert_int_ge(fd, 0);
  struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, sizeof sin), 0);
  socklen_t len = sizeof sin;
  ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
  close(fd);
  return ntohs(sin.sin_port);
}

/* A daemon on tmp's folders; with_server: the (unreachable) server URL;
 * served: the one account it serves. */
static kcps_daemon_t *start_daemon(bool with_server, bool cloud, uid_t served)
{
  g_autofree char *spool = g_build_filename(tmp, "spool", NULL);
  g_autofree char *state = g_build_filename(tmp, "state", NULL);
  kcps_daemon_config_t config;
  kcps_daemon_config_init(&config);
  config.user_mode = true;
  config.user_uid = served;
  config.server_url = with_server ? server_url : NULL;
  config.spool_dir = spool;
  config.state_dir = state;
  config.ipp_port = 0;
  config.pull_port = 0;
  config.pull_listen = "127.0.0.1";
  config.pull_host = "127.0.0.1";
  config.local_port = 0;
  config.cloud_spool = cloud;
  g_autoptr(GError) error = NULL;
  kcps_daemon_t *daemon = kcps_daemon_new(&config, &error);
  ck_assert_msg(daemon != NULL, "kcps_daemon_new: %s", error != NULL ? error->message : "?");
  return daemon;
}

static void setup(void)
{
  curl_global_init(CURL_GLOBAL_DEFAULT);
  tmp = g_dir_make_tmp("kcps-test-settings-XXXXXX", NULL);
  ck_assert_ptr_nonnull(tmp);
  server_url = g_strdup_printf("https://127.0.0.1:%d", closed_port());
  dmn = start_daemon(true, false, getuid());
}

static void teardown(void)
{
  kcps_daemon_free(dmn);
  dmn = NULL;
  g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", tmp);
  ck_assert_int_eq(system(cmd), 0);
  g_clear_pointer(&tmp, g_free);
  g_clear_pointer(&server_url, g_free);
}

typedef struct resp_s {
  long status;
  GString *body;
} resp_t;

static void resp_free(resp_t *resp)
{
  if (resp == NULL)
    return;
  g_string_free(resp->body, TRUE);
  g_free(resp);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(resp_t, resp_free)

static size_t on_body(char *ptr, size_t size, size_t n, void *data)
{
  g_string_append_len(data, ptr, (gssize)(size * n));
  return size * n;
}

/* One call to the daemon's local API; body NULL: none. */
static resp_t *local(const char *method, const char *path, const char *body)
{
  resp_t *resp = g_new0(resp_t, 1);
  resp->body = g_string_new(NULL);
  g_autofree char *url = g_strdup_printf("http://127.0.0.1:%d%s", kcps_daemon_local_port(dmn),
                                         path);
  CURL *curl = curl_easy_init();
  struct curl_slist *list = curl_slist_append(NULL, "Content-Type: application/json");
  curl_easy_setopt(curl, CURLOPT_URL, url);
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, resp->body);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, 60L);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  if (body != NULL)
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
  curl_easy_perform(curl);
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &resp->status);
  curl_easy_cleanup(curl);
  curl_slist_free_all(list);
  return resp;
}

/* The answer as a JSON object, asserting the status. */
static JsonNode *answer(const resp_t *resp, long status)
{
  ck_assert_msg(resp->status == status, "got HTTP %ld, expected %ld: %s", resp->status, status,
                resp->body->str);
  g_autoptr(GError) error = NULL;
  JsonNode *node = kcps_json_parse_object(resp->body->str, (gssize)resp->body->len, &error);
  ck_assert_msg(node != NULL, "not a JSON object: %s", resp->body->str);
  return node;
}

/* A string member or "null". */
static const char *member(JsonNode *node, const char *name)
{
  JsonObject *obj = json_node_get_object(node);
  ck_assert_msg(json_object_has_member(obj, name), "no member %s", name);
  const char *value = kcps_json_string(obj, name);
  return value != NULL ? value : "null";
}

/* GET /v1/settings: asserts own choice, effective mode and its source. */
static void expect_settings(const char *own, const char *effective, const char *source)
{
  g_autoptr(resp_t) resp = local("GET", "/v1/settings", NULL);
  g_autoptr(JsonNode) node = answer(resp, 200);
  ck_assert_str_eq(member(node, "spool_mode"), own);
  ck_assert_str_eq(member(node, "effective_spool_mode"), effective);
  ck_assert_str_eq(member(node, "spool_mode_source"), source);
}

static char *user_file(void)
{
  g_autofree char *name = g_strdup_printf("%u.json", (unsigned)getuid());
  return g_build_filename(tmp, "state", "users", name, NULL);
}

START_TEST(test_precedence_table)
{
#define U KCPS_SPOOL_MODE_UNSET
#define L KCPS_SPOOL_MODE_LOCAL
#define C KCPS_SPOOL_MODE_CLOUD
  static const struct {
    kcps_spool_mode_t user, org;
    bool kcpsd_cloud;
    kcps_spool_mode_t want;
    kcps_spool_mode_source_t from;
  } cases[] = {
    {U, U, false, L, KCPS_SPOOL_MODE_FROM_KCPSD},
    {U, U, true, C, KCPS_SPOOL_MODE_FROM_KCPSD},
    {U, C, false, C, KCPS_SPOOL_MODE_FROM_ORGANIZATION},
    {U, L, true, L, KCPS_SPOOL_MODE_FROM_ORGANIZATION},
    {L, C, true, L, KCPS_SPOOL_MODE_FROM_USER},
    {C, L, false, C, KCPS_SPOOL_MODE_FROM_USER},
    {C, U, false, C, KCPS_SPOOL_MODE_FROM_USER},
    {L, U, true, L, KCPS_SPOOL_MODE_FROM_USER},
  };
  for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
    kcps_spool_mode_source_t from = KCPS_SPOOL_MODE_FROM_KCPSD;
    kcps_spool_mode_t got =
        kcps__settings_resolve(cases[i].user, cases[i].org, cases[i].kcpsd_cloud, &from);
    ck_assert_msg(got == cases[i].want && from == cases[i].from,
                  "case %zu: got %s from %s, expected %s from %s", i,
                  kcps__spool_mode_string(got), kcps__spool_mode_source_string(from),
                  kcps__spool_mode_string(cases[i].want),
                  kcps__spool_mode_source_string(cases[i].from));
  }
#undef U
#undef L
#undef C
}
END_TEST

/* The whole ladder over 5572, and the choice survives a restart. */
START_TEST(test_settings_route)
{
  expect_settings("null", "local", "kcpsd");
  /* The organization's default (as read at login) beats kcpsd's. */
  kcps__settings_set_org_mode(dmn, getuid(), KCPS_SPOOL_MODE_CLOUD);
  expect_settings("null", "cloud", "organization");
  ck_assert(dmn->cloud_spool);

  /* The user's own choice beats the organization's. */
  g_autoptr(resp_t) put = local("PUT", "/v1/settings", "{\"spool_mode\":\"local\"}");
  g_autoptr(JsonNode) put_answer = answer(put, 200);
  ck_assert_str_eq(member(put_answer, "effective_spool_mode"), "local");
  ck_assert_str_eq(member(put_answer, "organization_spool_mode"), "cloud");
  ck_assert_str_eq(member(put_answer, "kcpsd_spool_mode"), "local");
  expect_settings("local", "local", "user");
  ck_assert(!dmn->cloud_spool);

  /* Kept in the state folder, for this account only, private. */
  g_autofree char *path = user_file();
  struct stat st;
  ck_assert_int_eq(stat(path, &st), 0);
  ck_assert_int_eq(st.st_mode & 0777, 0600);
  g_autofree char *dir = g_path_get_dirname(path);
  ck_assert_int_eq(stat(dir, &st), 0);
  ck_assert_int_eq(st.st_mode & 0777, 0700);

  g_autoptr(resp_t) cloud = local("PUT", "/v1/settings", "{\"spool_mode\":\"cloud\"}");
  g_autoptr(JsonNode) cloud_answer = answer(cloud, 200);
  expect_settings("cloud", "cloud", "user");

  /* A restart keeps the choice (the organization's is read again at login). */
  kcps_daemon_free(dmn);
  dmn = start_daemon(true, false, getuid());
  expect_settings("cloud", "cloud", "user");
  ck_assert(dmn->cloud_spool);

  /* null: follow the organization again (kcpsd's here: none known yet). */
  g_autoptr(resp_t) reset = local("PUT", "/v1/settings", "{\"spool_mode\":null}");
  g_autoptr(JsonNode) reset_answer = answer(reset, 200);
  expect_settings("null", "local", "kcpsd");
  ck_assert(!g_file_test(path, G_FILE_TEST_EXISTS));

  /* kcpsd --spool-mode cloud is the machine's default. */
  kcps_daemon_free(dmn);
  dmn = start_daemon(true, true, getuid());
  expect_settings("null", "cloud", "kcpsd");
}
END_TEST

START_TEST(test_settings_bad_bodies)
{
  static const struct {
    const char *body;
    const char *in_message;
  } cases[] = {
    {"", "empty"},
    {"[]", "object"},
    {"{\"spool_mode\":", "JSON"},
    {"{}", "missing field \"spool_mode\""},
    {"{\"spool_mode\":\"Cloud\"}", "\"spool_mode\" must be"},
    {"{\"spool_mode\":\"\"}", "\"spool_mode\" must be"},
    {"{\"spool_mode\":1}", "\"spool_mode\" must be"},
    {"{\"spool_mode\":true}", "\"spool_mode\" must be"},
    {"{\"spool_mode\":[\"cloud\"]}", "\"spool_mode\" must be"},
    {"{\"spool_mode\":\"cloud\",\"uid\":0}", "unknown field \"uid\""},
    {"{\"user\":\"root\",\"spool_mode\":\"cloud\"}", "unknown field \"user\""},
  };
  for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
    g_autoptr(resp_t) resp = local("PUT", "/v1/settings", cases[i].body);
    g_autoptr(JsonNode) node = answer(resp, 400);
    ck_assert_str_eq(member(node, "error"), "bad_request");
    const char *message = member(node, "message");
    ck_assert_msg(strstr(message, cases[i].in_message) != NULL,
                  "body %s: message \"%s\" does not name \"%s\"", cases[i].body, message,
                  cases[i].in_message);
  }
  /* Nothing stored. */
  expect_settings("null", "local", "kcpsd");
  g_autofree char *path = user_file();
  ck_assert(!g_file_test(path, G_FILE_TEST_EXISTS));
  /* Other methods. */
  g_autoptr(resp_t) del = local("DELETE", "/v1/settings", NULL);
  ck_assert_int_eq(del->status, 405);
  g_autoptr(resp_t) post = local("POST", "/v1/settings", "{\"spool_mode\":\"cloud\"}");
  ck_assert_int_eq(post->status, 405);
}
END_TEST

/* Only the caller's own settings: the body cannot name anyone (unknown
 * fields are refused, above), one account's choice is not another's, and a
 * kcpsd --user for another account refuses the caller outright. */
START_TEST(test_settings_own_only)
{
  uid_t other = getuid() + 1;
  g_autoptr(GError) error = NULL;
  ck_assert(kcps__settings_set_user_mode(dmn, other, KCPS_SPOOL_MODE_CLOUD, &error));
  expect_settings("null", "local", "kcpsd");
  ck_assert_int_eq(kcps__settings_effective(dmn, other, NULL), KCPS_SPOOL_MODE_CLOUD);
  /* The served account (getuid()) is unaffected, so the worker stays local. */
  ck_assert(!dmn->cloud_spool);

  kcps_daemon_free(dmn);
  dmn = start_daemon(true, false, other);
  g_autoptr(resp_t) get = local("GET", "/v1/settings", NULL);
  g_autoptr(JsonNode) get_answer = answer(get, 403);
  ck_assert_str_eq(member(get_answer, "error"), "forbidden_user");
  g_autoptr(resp_t) put = local("PUT", "/v1/settings", "{\"spool_mode\":\"local\"}");
  g_autoptr(JsonNode) put_answer = answer(put, 403);
  ck_assert_str_eq(member(put_answer, "error"), "forbidden_user");
  /* other's choice is untouched. */
  ck_assert_int_eq(kcps__settings_user_mode(dmn, other), KCPS_SPOOL_MODE_CLOUD);
  ck_assert(dmn->cloud_spool);
}
END_TEST

/* Without a server there is no cloud to choose. */
START_TEST(test_settings_no_server)
{
  kcps_daemon_free(dmn);
  dmn = start_daemon(false, false, getuid());
  g_autoptr(resp_t) put = local("PUT", "/v1/settings", "{\"spool_mode\":\"cloud\"}");
  g_autoptr(JsonNode) node = answer(put, 409);
  ck_assert_str_eq(member(node, "error"), "conflict");
  ck_assert(strstr(member(node, "message"), "server") != NULL);
  expect_settings("null", "local", "kcpsd");
}
END_TEST

/* Each job says where it goes: a job still waiting follows its owner's
 * mode; one registered for pulling stays local. */
START_TEST(test_jobs_spool_member)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *data = NULL;
  gsize len = 0;
  ck_assert(g_file_get_contents(TESTPAGE, &data, &len, &error));
  kcps_job_t *jobs[2];
  for (int i = 0; i < 2; i++) {
    kcps_spool_writer_t *writer = kcps_spool_writer_new(kcps__daemon_spool(dmn), getuid(), "me",
                                                        "doc.pdf", "application/pdf", &error);
    ck_assert_ptr_nonnull(writer);
    ck_assert(kcps_spool_writer_write(writer, data, len, &error));
    jobs[i] = kcps_spool_writer_commit(writer, &error);
    ck_assert_ptr_nonnull(jobs[i]);
  }
  ck_assert(kcps_spool_set_registered(kcps__daemon_spool(dmn), jobs[1]->id, "srv-1",
                                      "alice@a.test", &error));
  /* Set the mode directly: a PUT would hand the jobs to the worker. */
  ck_assert(kcps__settings_set_user_mode(dmn, getuid(), KCPS_SPOOL_MODE_CLOUD, &error));
  for (int round = 0; round < 2; round++) {
    g_autoptr(resp_t) resp = local("GET", "/v1/jobs", NULL);
    g_autoptr(JsonNode) node = answer(resp, 200);
    JsonArray *list = json_object_get_array_member(json_node_get_object(node), "jobs");
    ck_assert_int_eq(json_array_get_length(list), 2);
    for (guint i = 0; i < 2; i++) {
      JsonObject *job = json_array_get_object_element(list, i);
      bool registered = g_strcmp0(kcps_json_string(job, "id"), jobs[1]->id) == 0;
      const char *want = round == 0 && !registered ? "cloud" : "local";
      ck_assert_msg(g_strcmp0(kcps_json_string(job, "spool"), want) == 0,
                    "round %d, job %u: spool %s, expected %s", round, i,
                    kcps_json_string(job, "spool"), want);
      /* No upload runs (nobody is logged in). */
      ck_assert(!json_object_has_member(job, "upload"));
    }
    ck_assert(kcps__settings_set_user_mode(dmn, getuid(), KCPS_SPOOL_MODE_LOCAL, &error));
  }
  kcps_job_free(jobs[0]);
  kcps_job_free(jobs[1]);
}
END_TEST

/* kcps spool-mode: shows, sets, resets; a wrong word is a usage error. */
static int run_kcps(char **out, char **err, const char *arg)
{
  g_autofree char *self = g_file_read_link("/proc/self/exe", NULL);
  ck_assert_ptr_nonnull(self);
  g_autofree char *dir = g_path_get_dirname(self);
  g_autofree char *kcps = g_build_filename(dir, "..", "client", "kcps", NULL);
  g_autofree char *port = g_strdup_printf("%d", kcps_daemon_local_port(dmn));
  const char *argv[] = {kcps, "--port", port, "spool-mode", arg, NULL};
  g_autoptr(GError) error = NULL;
  g_autoptr(GSubprocess) proc = g_subprocess_newv(
      argv, G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE, &error);
  ck_assert_msg(proc != NULL, "spawn kcps: %s", error != NULL ? error->message : "?");
  ck_assert(g_subprocess_communicate_utf8(proc, NULL, NULL, out, err, &error));
  ck_assert(g_subprocess_get_if_exited(proc));
  return g_subprocess_get_exit_status(proc);
}

START_TEST(test_cli_spool_mode)
{
  static const struct {
    const char *arg;
    int exit_code;
    const char *in_out;
  } steps[] = {
    {NULL, 0, "spool mode: local (this computer's default (kcpsd --spool-mode))"},
    {"cloud", 0, "spool mode: cloud (your own choice)"},
    {NULL, 0, "spool mode: cloud (your own choice)"},
    {"local", 0, "spool mode: local (your own choice)"},
    {"default", 0, "spool mode: local (this computer's default"},
    {"Cloud", 2, ""},
  };
  for (size_t i = 0; i < G_N_ELEMENTS(steps); i++) {
    g_autofree char *out = NULL, *err = NULL;
    int rc = run_kcps(&out, &err, steps[i].arg);
    ck_assert_msg(rc == steps[i].exit_code && strstr(out, steps[i].in_out) != NULL,
                  "kcps spool-mode %s: exit %d (expected %d), stdout \"%s\" (expected \"%s\"), "
                  "stderr \"%s\"",
                  steps[i].arg != NULL ? steps[i].arg : "", rc, steps[i].exit_code, out,
                  steps[i].in_out, err);
  }
  g_autofree char *path = user_file();
  ck_assert(!g_file_test(path, G_FILE_TEST_EXISTS));
}
END_TEST

int main(void)
{
  Suite *s = suite_create("client-settings");
  TCase *pure = tcase_create("precedence");
  tcase_add_test(pure, test_precedence_table);
  suite_add_tcase(s, pure);
  TCase *tc = tcase_create("settings");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_settings_route);
  tcase_add_test(tc, test_settings_bad_bodies);
  tcase_add_test(tc, test_settings_own_only);
  tcase_add_test(tc, test_settings_no_server);
  tcase_add_test(tc, test_jobs_spool_member);
  tcase_add_test(tc, test_cli_spool_mode);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
