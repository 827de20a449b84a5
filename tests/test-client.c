/* Unit tests of client/: the pull port's ticket checks, the local API's
 * guards and routes, and the kcps CLI and kcpsd programs, over real HTTP(S)
 * against a daemon started in-process on free ports. Server-dependent paths
 * (login, registration) are covered by the integration test; here the server
 * is an address nobody listens on, and the ticket key is injected. */
#include "client/daemon-private.h"
#include "common/crypto.h"
#include "common/json-util.h"
#include "common/tls.h"
#include "platform/platform.h"

#include <check.h>
#include <cups/cups.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <glib/gstdio.h>
#include <netinet/in.h>
#include <signal.h>
#include <sqlite3.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define TESTPAGE "/usr/share/cups/data/default-testpage.pdf"
#define SERVER_JOB "srv-job-1"
#define OWNER_EMAIL "alice@a.test"

/* --- helpers -------------------------------------------------------------- */

static void rm_rf(const char *dir)
{
  g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", dir);
  ck_assert_int_eq(system(cmd), 0);
}

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

typedef struct resp_s {
  long status;
  GString *body;
  GString *headers;
} resp_t;

static void resp_free(resp_t *resp)
{
  if (resp == NULL)
    return;
  g_string_free(resp->body, TRUE);
  g_string_free(resp->headers, TRUE);
  g_free(resp);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(resp_t, resp_free)

static size_t on_body(char *ptr, size_t size, size_t n, void *data)
{
  g_string_append_len(data, ptr, (gssize)(size * n));
  return size * n;
}

/* One request with libcurl, so tests control every header. headers is
 * NULL-terminated ("Host: x"; "Host:" removes it). cainfo: trust this
 * certificate (the pull port). status 0 means no HTTP answer. */
static resp_t *request(const char *method, const char *url, const char *const *headers,
                       const char *body, const char *cainfo)
{
  resp_t *resp = g_new0(resp_t, 1);
  resp->body = g_string_new(NULL);
  resp->headers = g_string_new(NULL);
  CURL *curl = curl_easy_init();
  struct curl_slist *list = NULL;
  for (const char *const *h = headers; h != NULL && *h != NULL; h++)
    list = curl_slist_append(list, *h);
  curl_easy_setopt(curl, CURLOPT_URL, url);
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, resp->body);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_body);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, resp->headers);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, 60L);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  if (body != NULL)
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
  if (cainfo != NULL)
    curl_easy_setopt(curl, CURLOPT_CAINFO, cainfo);
  curl_easy_perform(curl);
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &resp->status);
  curl_easy_cleanup(curl);
  curl_slist_free_all(list);
  return resp;
}

/* The body for a failure message: JSON answers whole (they are short),
 * documents only by size. */
static const char *excerpt(const resp_t *resp)
{
  static _Thread_local char text[512];
  if (resp->body->len > 0 && resp->body->str[0] == '{' && resp->body->len < sizeof text)
    g_strlcpy(text, resp->body->str, sizeof text);
  else
    g_snprintf(text, sizeof text, "(a body of %zu bytes)", resp->body->len);
  return text;
}

/* The response body as a JSON object (asserts it is one). */
static JsonNode *resp_json(const resp_t *resp)
{
  g_autoptr(GError) error = NULL;
  JsonNode *node = kcps_json_parse_object(resp->body->str, (gssize)resp->body->len, &error);
  ck_assert_msg(node != NULL, "answer is not a JSON object (%s): %s",
                error != NULL ? error->message : "?", excerpt(resp));
  return node;
}

/* Asserts an error answer: status, code, and a message containing what. */
static void assert_error(const resp_t *resp, long status, const char *code, const char *what)
{
  ck_assert_msg(resp->status == status, "got HTTP %ld, expected %ld (body %s)", resp->status,
                status, excerpt(resp));
  g_autoptr(JsonNode) node = resp_json(resp);
  JsonObject *obj = json_node_get_object(node);
  const char *got_code = kcps_json_string(obj, "error");
  const char *message = kcps_json_string(obj, "message");
  ck_assert_msg(g_strcmp0(got_code, code) == 0, "got error %s, expected %s", got_code, code);
  ck_assert_msg(message != NULL && strstr(message, what) != NULL,
                "got message \"%s\", expected it to mention \"%s\"", message, what);
}

static bool has_header(const resp_t *resp, const char *name, const char *value)
{
  g_autofree char *line = g_strdup_printf("\n%s: %s\r\n", name, value);
  g_autofree char *lower_headers = g_ascii_strdown(resp->headers->str, -1);
  g_autofree char *lower_line = g_ascii_strdown(line, -1);
  return strstr(lower_headers, lower_line) != NULL;
}

/* --- the daemon fixture ------------------------------------------------------- */

static char *tmp;
static char *server_url;
static kcps_daemon_t *dmn;
static kcps_ticket_key_t *server_key; /* what the fake "server" signs with */
static char *pull_crt;

static void daemon_setup(void)
{
  curl_global_init(CURL_GLOBAL_DEFAULT);
  tmp = g_dir_make_tmp("kcps-test-client-XXXXXX", NULL);
  ck_assert_ptr_nonnull(tmp);
  g_autofree char *spool = g_build_filename(tmp, "spool", NULL);
  g_autofree char *state = g_build_filename(tmp, "state", NULL);
  server_url = g_strdup_printf("https://127.0.0.1:%d", closed_port());

  kcps_daemon_config_t config;
  kcps_daemon_config_init(&config);
  config.user_mode = true;
  config.user_uid = getuid();
  config.server_url = server_url;
  config.spool_dir = spool;
  config.state_dir = state;
  config.ipp_port = 0;
  config.pull_port = 0;
  config.pull_listen = "127.0.0.1";
  config.pull_host = "127.0.0.1";
  config.local_port = 0;
  config.retention_s = 5400; /* each job's "expires" in /v1/jobs */
  g_autoptr(GError) error = NULL;
  dmn = kcps_daemon_new(&config, &error);
  ck_assert_msg(dmn != NULL, "kcps_daemon_new: %s", error != NULL ? error->message : "?");
  ck_assert_int_gt(kcps_daemon_pull_port(dmn), 0);
  ck_assert_int_gt(kcps_daemon_local_port(dmn), 0);

  g_autofree char *key_path = g_build_filename(tmp, "server-ticket.key", NULL);
  server_key = kcps_ticket_key_load_or_create(key_path, &error);
  ck_assert_msg(server_key != NULL, "ticket key: %s", error != NULL ? error->message : "?");
  /* kcpsd gets only the public half, as from GET /api/v1/ticket-key. */
  g_autofree char *public_b64 = kcps_ticket_key_public_b64(server_key);
  kcps_ticket_key_t *public_key = kcps_ticket_key_from_public(public_b64, &error);
  ck_assert_ptr_nonnull(public_key);
  kcps__daemon_set_ticket_key(dmn, public_key);
  pull_crt = g_build_filename(state, "pull.crt", NULL);
}

static void daemon_teardown(void)
{
  kcps_daemon_free(dmn);
  dmn = NULL;
  kcps_ticket_key_free(server_key);
  server_key = NULL;
  rm_rf(tmp);
  g_clear_pointer(&tmp, g_free);
  g_clear_pointer(&server_url, g_free);
  g_clear_pointer(&pull_crt, g_free);
}

/* Spools the CUPS test page for owner through the spool API. */
static kcps_job_t *spool_testpage(uid_t owner, const char *name)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *data = NULL;
  gsize len = 0;
  ck_assert_msg(g_file_get_contents(TESTPAGE, &data, &len, &error), "%s", TESTPAGE);
  g_autofree char *owner_name = kcps_platform_user_name(owner);
  kcps_spool_writer_t *writer =
    kcps_spool_writer_new(kcps__daemon_spool(dmn), owner,
                          owner_name != NULL ? owner_name : "someone", name, "application/pdf",
                          &error);
  ck_assert_msg(writer != NULL, "writer: %s", error != NULL ? error->message : "?");
  ck_assert(kcps_spool_writer_write(writer, data, len, &error));
  kcps_job_t *job = kcps_spool_writer_commit(writer, &error);
  ck_assert_msg(job != NULL, "commit: %s", error != NULL ? error->message : "?");
  return job;
}

static kcps_job_t *spool_registered_testpage(void)
{
  kcps_job_t *job = spool_testpage(getuid(), "report.pdf");
  g_autoptr(GError) error = NULL;
  ck_assert(kcps_spool_set_registered(kcps__daemon_spool(dmn), job->id, SERVER_JOB,
                                      OWNER_EMAIL, &error));
  return job;
}

static kcps_job_state_t job_state(const char *id)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(kcps_job_t) job = kcps_spool_get_job(kcps__daemon_spool(dmn), id, &error);
  ck_assert_msg(job != NULL, "job %s: %s", id, error != NULL ? error->message : "?");
  return job->state;
}

/* --- pull port ------------------------------------------------------------------ */

/* A ticket as the server would issue it for cjob; the caller may change
 * fields before signing. */
static kcps_ticket_t valid_ticket(const char *cjob, const char *tid)
{
  kcps_ticket_t t = {
    .tid = (char *)tid,
    .job = (char *)SERVER_JOB,
    .cjob = (char *)cjob,
    .user = (char *)OWNER_EMAIL,
    .device = (char *)"MFP-1",
    .exp = g_get_real_time() / G_USEC_PER_SEC + 120,
  };
  return t;
}

static char *sign(const kcps_ticket_key_t *key, const kcps_ticket_t *t)
{
  g_autoptr(GError) error = NULL;
  char *text = kcps_ticket_sign(key, t, &error);
  ck_assert_msg(text != NULL, "sign: %s", error != NULL ? error->message : "?");
  return text;
}

static resp_t *pull(const char *job_id, const char *authorization)
{
  g_autofree char *url = g_strdup_printf("https://127.0.0.1:%d/jobs/%s/document",
                                         kcps_daemon_pull_port(dmn), job_id);
  g_autofree char *header =
    authorization != NULL ? g_strdup_printf("Authorization: %s", authorization) : NULL;
  const char *headers[] = {header, NULL};
  return request("GET", url, headers, NULL, pull_crt);
}

static resp_t *pull_with_ticket(const char *job_id, const char *ticket)
{
  g_autofree char *auth = g_strdup_printf("KCPS-Ticket %s", ticket);
  return pull(job_id, auth);
}

START_TEST(test_pull_streams_once)
{
  g_autoptr(kcps_job_t) job = spool_registered_testpage();
  kcps_ticket_t t = valid_ticket(job->id, "tid-once");
  g_autofree char *ticket = sign(server_key, &t);

  g_autoptr(resp_t) first = pull_with_ticket(job->id, ticket);
  ck_assert_msg(first->status == 200, "got HTTP %ld, expected 200: %s", first->status,
                excerpt(first));
  g_autofree char *expected = NULL;
  gsize expected_len = 0;
  ck_assert(g_file_get_contents(TESTPAGE, &expected, &expected_len, NULL));
  ck_assert_msg(first->body->len == expected_len, "got %zu bytes, expected %zu",
                first->body->len, (size_t)expected_len);
  ck_assert_msg(memcmp(first->body->str, expected, expected_len) == 0,
                "pulled bytes differ from the spooled document");
  ck_assert_msg(has_header(first, "X-KCPS-SHA256", job->sha256), "no X-KCPS-SHA256 %s in: %s",
                job->sha256, first->headers->str);
  ck_assert_msg(has_header(first, "Content-Type", "application/pdf"), "headers: %s",
                first->headers->str);
  ck_assert_msg(job_state(job->id) == KCPS_JOB_STATE_PULLED, "got state %s, expected pulled",
                kcps_job_state_string(job_state(job->id)));

  /* Single use: the same ticket again is refused. */
  g_autoptr(resp_t) second = pull_with_ticket(job->id, ticket);
  assert_error(second, 401, "invalid_ticket", "used before");
  ck_assert(strstr(second->body->str, ticket) == NULL); /* never echoed */

  /* A new ticket for a pulled job still works (a reprint). */
  kcps_ticket_t t2 = valid_ticket(job->id, "tid-again");
  g_autofree char *ticket2 = sign(server_key, &t2);
  g_autoptr(resp_t) third = pull_with_ticket(job->id, ticket2);
  ck_assert_msg(third->status == 200, "got HTTP %ld, expected 200", third->status);
}
END_TEST

/* What an MFP does: the common client pinning the registered key. */
START_TEST(test_pull_with_pinned_key)
{
  g_autoptr(kcps_job_t) job = spool_registered_testpage();
  kcps_ticket_t t = valid_ticket(job->id, "tid-pin");
  g_autofree char *ticket = sign(server_key, &t);
  g_autofree char *auth = g_strdup_printf("KCPS-Ticket %s", ticket);
  g_autofree char *url = kcps__daemon_pull_url(dmn, job->id);
  g_autoptr(GError) error = NULL;
  g_autofree char *pin = kcps_tls_spki_pin(pull_crt, &error);
  ck_assert_ptr_nonnull(pin);
  ck_assert_str_eq(pin, dmn->pull_pin);

  /* A wrong pin fails before any ticket is shown. */
  kcps_http_opts_t wrong = {.pinned_key = "sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
                            .authorization = auth};
  g_autofree char *out_path = g_build_filename(tmp, "pulled.pdf", NULL);
  int fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  ck_assert_int_ge(fd, 0);
  long status = 0;
  kcps_net_status_t net = kcps_http_download(url, &wrong, fd, &status, &error);
  ck_assert_msg(net == KCPS_NET_FATAL, "wrong pin: got net status %d, expected FATAL", net);
  g_clear_error(&error);
  ck_assert_int_eq(job_state(job->id), KCPS_JOB_STATE_REGISTERED);

  kcps_http_opts_t opts = {.pinned_key = pin, .authorization = auth};
  net = kcps_http_download(url, &opts, fd, &status, &error);
  close(fd);
  ck_assert_msg(net == KCPS_NET_OK, "got %d (%s), HTTP %ld", net,
                error != NULL ? error->message : "", status);
  g_autofree char *sha = g_malloc(65);
  ck_assert(kcps_crypto_sha256_file(out_path, sha, &error));
  ck_assert_str_eq(sha, job->sha256);
}
END_TEST

/* Every way a ticket can be wrong: 401 naming the check, nothing changed,
 * and the ticket id not spent (the genuine ticket with it works after). */
START_TEST(test_pull_refusals)
{
  g_autoptr(kcps_job_t) job = spool_registered_testpage();
  g_autoptr(kcps_job_t) other = spool_registered_testpage();
  g_autoptr(GError) error = NULL;
  g_autofree char *forger_path = g_build_filename(tmp, "forger.key", NULL);
  g_autoptr(kcps_ticket_key_t) forger = kcps_ticket_key_load_or_create(forger_path, &error);
  ck_assert_ptr_nonnull(forger);
  const char *tid = "tid-shared";

  kcps_ticket_t forged = valid_ticket(job->id, tid);
  kcps_ticket_t expired = valid_ticket(job->id, tid);
  expired.exp = g_get_real_time() / G_USEC_PER_SEC - 5;
  kcps_ticket_t other_cjob = valid_ticket(other->id, tid);
  kcps_ticket_t other_server_job = valid_ticket(job->id, tid);
  other_server_job.job = (char *)"srv-job-2";
  kcps_ticket_t other_user = valid_ticket(job->id, tid);
  other_user.user = (char *)"mallory@a.test";

  g_autofree char *forged_text = sign(forger, &forged);
  g_autofree char *expired_text = sign(server_key, &expired);
  g_autofree char *other_cjob_text = sign(server_key, &other_cjob);
  g_autofree char *other_server_job_text = sign(server_key, &other_server_job);
  g_autofree char *other_user_text = sign(server_key, &other_user);
  /* The genuine payload with the forger's signature glued on. */
  g_autofree char *genuine = sign(server_key, &forged);
  g_autofree char *spliced = g_strconcat(genuine, NULL);
  strcpy(strchr(spliced, '.') + 1, strchr(forged_text, '.') + 1);

  static const char *const no_ticket = "no ticket";
  const struct {
    const char *what;
    const char *authorization; /* whole header value, NULL: none */
    const char *expect;
  } cases[] = {
    {"no header", NULL, no_ticket},
    {"other scheme", "Bearer abc", no_ticket},
    {"empty ticket", "KCPS-Ticket ", no_ticket},
    {"malformed", "KCPS-Ticket not-a-ticket", "malformed"},
    {"malformed parts", "KCPS-Ticket abc.def", "malformed"},
    {"forged", g_strconcat("KCPS-Ticket ", forged_text, NULL), "signature"},
    {"spliced", g_strconcat("KCPS-Ticket ", spliced, NULL), "signature"},
    {"expired", g_strconcat("KCPS-Ticket ", expired_text, NULL), "expired"},
    {"other client job", g_strconcat("KCPS-Ticket ", other_cjob_text, NULL), "another job"},
    {"other server job", g_strconcat("KCPS-Ticket ", other_server_job_text, NULL),
     "another server job"},
    {"other user", g_strconcat("KCPS-Ticket ", other_user_text, NULL), "another user"},
  };
  for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
    g_autoptr(resp_t) resp = pull(job->id, cases[i].authorization);
    ck_assert_msg(resp->status == 401, "%s: got HTTP %ld, expected 401 (%s)", cases[i].what,
                  resp->status, excerpt(resp));
    assert_error(resp, 401, "invalid_ticket", cases[i].expect);
    ck_assert_msg(job_state(job->id) == KCPS_JOB_STATE_REGISTERED,
                  "%s: state changed to %s", cases[i].what,
                  kcps_job_state_string(job_state(job->id)));
  }
  for (size_t i = 5; i < G_N_ELEMENTS(cases); i++)
    g_free((char *)cases[i].authorization);
  ck_assert_int_eq(job_state(other->id), KCPS_JOB_STATE_REGISTERED);

  /* None of the refusals spent the ticket id. */
  g_autoptr(resp_t) ok = pull_with_ticket(job->id, genuine);
  ck_assert_msg(ok->status == 200, "genuine ticket after refusals: got HTTP %ld (%s)",
                ok->status, excerpt(ok));
}
END_TEST

START_TEST(test_pull_unregistered_and_unknown)
{
  /* Spooled but not registered: refused, stays spooled. */
  g_autoptr(kcps_job_t) job = spool_testpage(getuid(), "draft.pdf");
  kcps_ticket_t t = valid_ticket(job->id, "tid-unreg");
  g_autofree char *ticket = sign(server_key, &t);
  g_autoptr(resp_t) resp = pull_with_ticket(job->id, ticket);
  assert_error(resp, 401, "invalid_ticket", "not registered");
  ck_assert_int_eq(job_state(job->id), KCPS_JOB_STATE_SPOOLED);

  /* A valid ticket for a job that is not here. */
  const char *missing = "0b7c3f0e-1111-4222-8333-944455556666";
  kcps_ticket_t t2 = valid_ticket(missing, "tid-missing");
  g_autofree char *ticket2 = sign(server_key, &t2);
  g_autoptr(resp_t) resp2 = pull_with_ticket(missing, ticket2);
  assert_error(resp2, 404, "not_found", "no such job");

  /* Without a valid ticket, a missing job is not revealed as missing. */
  g_autoptr(resp_t) resp3 = pull(missing, "KCPS-Ticket x.y");
  ck_assert_msg(resp3->status == 401, "got HTTP %ld, expected 401", resp3->status);
}
END_TEST

START_TEST(test_pull_only_get)
{
  g_autoptr(kcps_job_t) job = spool_registered_testpage();
  kcps_ticket_t t = valid_ticket(job->id, "tid-post");
  g_autofree char *ticket = sign(server_key, &t);
  g_autofree char *url = g_strdup_printf("https://127.0.0.1:%d/jobs/%s/document",
                                         kcps_daemon_pull_port(dmn), job->id);
  g_autofree char *auth = g_strdup_printf("Authorization: KCPS-Ticket %s", ticket);
  const char *headers[] = {auth, NULL};
  static const char *const methods[] = {"POST", "PUT", "DELETE"};
  for (size_t i = 0; i < G_N_ELEMENTS(methods); i++) {
    g_autoptr(resp_t) resp = request(methods[i], url, headers, NULL, pull_crt);
    ck_assert_msg(resp->status == 405, "%s: got HTTP %ld, expected 405", methods[i],
                  resp->status);
  }
  static const char *const bad_paths[] = {"/jobs/%s", "/jobs/%s/document/x", "/jobs//document",
                                          "/jobs/..%%2F/document", "/", "/jobs/%s/Document"};
  for (size_t i = 0; i < G_N_ELEMENTS(bad_paths); i++) {
    g_autofree char *path = g_strdup_printf(bad_paths[i], job->id);
    g_autofree char *bad = g_strdup_printf("https://127.0.0.1:%d%s",
                                           kcps_daemon_pull_port(dmn), path);
    g_autoptr(resp_t) resp = request("GET", bad, headers, NULL, pull_crt);
    ck_assert_msg(resp->status == 404, "%s: got HTTP %ld, expected 404", path, resp->status);
  }
  /* The ticket was never spent on the refusals. */
  ck_assert_int_eq(job_state(job->id), KCPS_JOB_STATE_REGISTERED);
  g_autoptr(resp_t) ok = pull_with_ticket(job->id, ticket);
  ck_assert_msg(ok->status == 200, "got HTTP %ld, expected 200", ok->status);
}
END_TEST

/* Header value of name in a response's headers, or NULL (caller g_frees). */
static char *header_value(const resp_t *resp, const char *name)
{
  g_auto(GStrv) lines = g_strsplit(resp->headers->str, "\r\n", -1);
  size_t n = strlen(name);
  for (char **l = lines; *l != NULL; l++)
    if (g_ascii_strncasecmp(*l, name, n) == 0 && (*l)[n] == ':')
      return g_strstrip(g_strdup(*l + n + 1));
  return NULL;
}

static resp_t *pull_range(const char *job_id, const char *ticket, const char *range)
{
  g_autofree char *url = g_strdup_printf("https://127.0.0.1:%d/jobs/%s/document",
                                         kcps_daemon_pull_port(dmn), job_id);
  g_autofree char *auth = g_strdup_printf("Authorization: KCPS-Ticket %s", ticket);
  g_autofree char *rh = g_strdup_printf("Range: %s", range);
  const char *headers[] = {auth, rh, NULL};
  return request("GET", url, headers, NULL, pull_crt);
}

/* A resumed pull: the first part with one ticket, the rest by Range with a
 * fresh one; together exactly the document, sha256 as announced. An
 * impossible range is 416 and does not spend the ticket. */
START_TEST(test_pull_range_resume)
{
  g_autoptr(kcps_job_t) job = spool_registered_testpage();
  g_autofree char *expected = NULL;
  gsize size = 0;
  ck_assert(g_file_get_contents(TESTPAGE, &expected, &size, NULL));
  ck_assert_uint_gt(size, 100);
  gsize cut = size / 3;

  kcps_ticket_t t1 = valid_ticket(job->id, "tid-range-1");
  g_autofree char *ticket1 = sign(server_key, &t1);
  g_autofree char *r1 = g_strdup_printf("bytes=0-%zu", (size_t)cut - 1);
  g_autoptr(resp_t) head = pull_range(job->id, ticket1, r1);
  ck_assert_msg(head->status == 206, "first part: HTTP %ld (%s)", head->status, excerpt(head));
  ck_assert_uint_eq(head->body->len, cut);

  /* The same ticket again: single use, also for a resume. */
  g_autofree char *r2 = g_strdup_printf("bytes=%zu-", (size_t)cut);
  g_autoptr(resp_t) again = pull_range(job->id, ticket1, r2);
  assert_error(again, 401, "invalid_ticket", "used before");

  /* Past the end: 416 with the size, and the fresh ticket is not spent. */
  kcps_ticket_t t2 = valid_ticket(job->id, "tid-range-2");
  g_autofree char *ticket2 = sign(server_key, &t2);
  g_autofree char *past = g_strdup_printf("bytes=%zu-", (size_t)size);
  g_autoptr(resp_t) bad = pull_range(job->id, ticket2, past);
  ck_assert_msg(bad->status == 416, "past the end: HTTP %ld, expected 416", bad->status);
  g_autofree char *cr_bad = header_value(bad, "Content-Range");
  g_autofree char *cr_bad_expected = g_strdup_printf("bytes */%zu", (size_t)size);
  ck_assert_msg(g_strcmp0(cr_bad, cr_bad_expected) == 0, "Content-Range %s", cr_bad);

  g_autoptr(resp_t) tail = pull_range(job->id, ticket2, r2);
  ck_assert_msg(tail->status == 206, "the rest: HTTP %ld (%s)", tail->status, excerpt(tail));
  ck_assert_uint_eq(tail->body->len, size - cut);
  g_autofree char *cr = header_value(tail, "Content-Range");
  g_autofree char *cr_expected =
    g_strdup_printf("bytes %zu-%zu/%zu", (size_t)cut, (size_t)size - 1, (size_t)size);
  ck_assert_msg(g_strcmp0(cr, cr_expected) == 0, "Content-Range %s, expected %s", cr,
                cr_expected);

  g_autoptr(GString) whole = g_string_new_len(head->body->str, (gssize)head->body->len);
  g_string_append_len(whole, tail->body->str, (gssize)tail->body->len);
  ck_assert(whole->len == size && memcmp(whole->str, expected, size) == 0);
  g_autofree char *sha = g_compute_checksum_for_data(G_CHECKSUM_SHA256, (const guchar *)whole->str,
                                                     whole->len);
  ck_assert_str_eq(sha, job->sha256);
  ck_assert_msg(has_header(tail, "X-KCPS-SHA256", job->sha256), "%s", tail->headers->str);

  /* A suffix range, and junk ignored (the whole document). */
  kcps_ticket_t t3 = valid_ticket(job->id, "tid-range-3");
  g_autofree char *ticket3 = sign(server_key, &t3);
  g_autoptr(resp_t) suffix = pull_range(job->id, ticket3, "bytes=-10");
  ck_assert_int_eq(suffix->status, 206);
  ck_assert(suffix->body->len == 10 && memcmp(suffix->body->str, expected + size - 10, 10) == 0);
  kcps_ticket_t t4 = valid_ticket(job->id, "tid-range-4");
  g_autofree char *ticket4 = sign(server_key, &t4);
  g_autoptr(resp_t) junk = pull_range(job->id, ticket4, "bytes=5-2,x");
  ck_assert_int_eq(junk->status, 200);
  ck_assert_uint_eq(junk->body->len, size);
}
END_TEST

/* A ticket issued to another device (the MFP names itself) is refused and
 * not spent. */
START_TEST(test_pull_other_device)
{
  g_autoptr(kcps_job_t) job = spool_registered_testpage();
  kcps_ticket_t t = valid_ticket(job->id, "tid-device");
  g_autofree char *ticket = sign(server_key, &t);
  g_autofree char *url = g_strdup_printf("https://127.0.0.1:%d/jobs/%s/document",
                                         kcps_daemon_pull_port(dmn), job->id);
  g_autofree char *auth = g_strdup_printf("Authorization: KCPS-Ticket %s", ticket);
  const char *other[] = {auth, "X-KCPS-Device: MFP-2", NULL};
  g_autoptr(resp_t) refused = request("GET", url, other, NULL, pull_crt);
  assert_error(refused, 403, "forbidden_device", "another device");
  ck_assert_int_eq(job_state(job->id), KCPS_JOB_STATE_REGISTERED);
  const char *mine[] = {auth, "X-KCPS-Device: MFP-1", NULL};
  g_autoptr(resp_t) ok = request("GET", url, mine, NULL, pull_crt);
  ck_assert_msg(ok->status == 200, "own device: HTTP %ld (%s)", ok->status, excerpt(ok));
}
END_TEST

/* TLS 1.1 (offered for real: security level 0) is refused; 1.2 works. */
static CURLcode tls_probe(long version)
{
  g_autofree char *url = g_strdup_printf("https://127.0.0.1:%d/", kcps_daemon_pull_port(dmn));
  CURL *curl = curl_easy_init();
  curl_easy_setopt(curl, CURLOPT_URL, url);
  curl_easy_setopt(curl, CURLOPT_CAINFO, pull_crt);
  curl_easy_setopt(curl, CURLOPT_SSLVERSION, version);
  curl_easy_setopt(curl, CURLOPT_SSL_CIPHER_LIST, "DEFAULT@SECLEVEL=0");
  curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, 60L);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  CURLcode rc = curl_easy_perform(curl);
  curl_easy_cleanup(curl);
  return rc;
}

START_TEST(test_pull_tls_versions)
{
  CURLcode old = tls_probe(CURL_SSLVERSION_TLSv1_1 | CURL_SSLVERSION_MAX_TLSv1_1);
  ck_assert_msg(old != CURLE_OK, "a TLS 1.1 handshake succeeded");
  CURLcode v12 = tls_probe(CURL_SSLVERSION_TLSv1_2 | CURL_SSLVERSION_MAX_TLSv1_2);
  ck_assert_msg(v12 == CURLE_OK, "TLS 1.2: %s", curl_easy_strerror(v12));
}
END_TEST

/* Many MFPs at once: 50 pulls in parallel, each with its own ticket. */
typedef struct {
  char *job_id;
  char *ticket;
  long status;
  size_t len;
} parallel_pull_t;

static void *parallel_pull(void *data)
{
  parallel_pull_t *p = data;
  resp_t *resp = pull_with_ticket(p->job_id, p->ticket);
  p->status = resp->status;
  p->len = resp->body->len;
  resp_free(resp);
  return NULL;
}

START_TEST(test_pull_many_at_once)
{
  enum { N = 50 };
  g_autoptr(kcps_job_t) job = spool_registered_testpage();
  parallel_pull_t pulls[N];
  GThread *threads[N];
  for (int i = 0; i < N; i++) {
    g_autofree char *tid = g_strdup_printf("tid-many-%d", i);
    kcps_ticket_t t = valid_ticket(job->id, tid);
    pulls[i] = (parallel_pull_t){.job_id = job->id, .ticket = sign(server_key, &t)};
  }
  for (int i = 0; i < N; i++)
    threads[i] = g_thread_new("pull", parallel_pull, &pulls[i]);
  for (int i = 0; i < N; i++) {
    g_thread_join(threads[i]);
    ck_assert_msg(pulls[i].status == 200 && pulls[i].len == (size_t)job->size,
                  "pull %d: HTTP %ld, %zu bytes", i, pulls[i].status, pulls[i].len);
    g_free(pulls[i].ticket);
  }
}
END_TEST

/* The CVE-2025-58436 class: clients that stall (connect and send nothing,
 * half a TLS record, half an HTTP request) hold up no other pull, and are
 * closed once the pull timeout (2 s here) has passed. */
static int connect_pull_port(void)
{
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  ck_assert_int_ge(fd, 0);
  struct sockaddr_in sin = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)kcps_daemon_pull_port(dmn)),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  ck_assert_int_eq(connect(fd, (struct sockaddr *)&sin, sizeof sin), 0);
  return fd;
}

/* True once the server closed fd (EOF or reset), within a generous bound. */
static bool closed_by_server(int fd)
{
  struct timeval tv = {.tv_sec = 30}; /* the timeout is 2 s; the default 60 would fail */
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  char buf[4096];
  for (;;) {
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n == 0 || (n < 0 && errno == ECONNRESET))
      return true;
    if (n < 0)
      return false; /* the bound passed, or another error */
  }
}

static void stall_setup(void)
{
  g_setenv("KCPSD_PULL_TIMEOUT", "2", TRUE);
  daemon_setup();
  g_unsetenv("KCPSD_PULL_TIMEOUT");
}

START_TEST(test_pull_stalled_clients)
{
  g_autoptr(kcps_job_t) job = spool_registered_testpage();
  int silent = connect_pull_port();
  int half_tls = connect_pull_port();
  /* A TLS handshake record header announcing 512 bytes, then 3 of them. */
  static const unsigned char hello[] = {0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01};
  ck_assert_int_eq(send(half_tls, hello, sizeof hello, 0), (ssize_t)sizeof hello);

  /* Other pulls complete meanwhile. */
  for (int i = 0; i < 5; i++) {
    g_autofree char *tid = g_strdup_printf("tid-stall-%d", i);
    kcps_ticket_t t = valid_ticket(job->id, tid);
    g_autofree char *ticket = sign(server_key, &t);
    g_autoptr(resp_t) resp = pull_with_ticket(job->id, ticket);
    ck_assert_msg(resp->status == 200, "pull %d beside stalled clients: HTTP %ld", i,
                  resp->status);
  }

  /* Half an HTTP request inside TLS: openssl s_client sends it and waits. */
  g_autoptr(GSubprocess) sclient = NULL;
  g_autofree char *openssl = g_find_program_in_path("openssl");
  if (openssl != NULL) {
    g_autofree char *connect_to = g_strdup_printf("127.0.0.1:%d", kcps_daemon_pull_port(dmn));
    g_autoptr(GError) error = NULL;
    sclient = g_subprocess_new(G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE
                                 | G_SUBPROCESS_FLAGS_STDERR_MERGE,
                               &error, openssl, "s_client", "-quiet", "-connect", connect_to,
                               "-CAfile", pull_crt, NULL);
    ck_assert_msg(sclient != NULL, "openssl: %s", error != NULL ? error->message : "?");
    GOutputStream *in = g_subprocess_get_stdin_pipe(sclient);
    const char half[] = "GET /jobs/x/document HTTP/1.1\r\nHost: 127.0.0.1\r\n";
    ck_assert(g_output_stream_write_all(in, half, strlen(half), NULL, NULL, &error));
    ck_assert(g_output_stream_flush(in, NULL, &error));
    /* s_client exits when the server closes the connection. */
    ck_assert_msg(g_subprocess_wait(sclient, NULL, &error), "s_client did not end");
  } else {
    fprintf(stderr, "test_pull_stalled_clients: no openssl program; half-HTTP case skipped\n");
  }

  ck_assert_msg(closed_by_server(silent), "a silent connection was not closed");
  ck_assert_msg(closed_by_server(half_tls), "half a TLS record was not closed");
  close(silent);
  close(half_tls);
}
END_TEST

/* --- local API -------------------------------------------------------------------- */

START_TEST(test_local_host_origin_table)
{
  static const struct {
    const char *value;
    bool host_ok;
  } table[] = {
    {"localhost", true},
    {"LOCALHOST:5572", true},
    {"127.0.0.1", true},
    {"127.0.0.1:5572", true},
    {"[::1]", true},
    {"[::1]:80", true},
    {"localhost:", false},
    {"localhost:123456", false},
    {"localhost:12a", false},
    {"localhost.", false},
    {"localhost.evil.example", false},
    {"127.0.0.1.evil.example", false},
    {"127.0.0.10", false},
    {"evil.example", false},
    {"evil.example:5572", false},
    {"::1", false},
    {"[::2]", false},
    {"", false},
    {"localhost/x", false},
    {"localhost:5572/", false},
  };
  for (size_t i = 0; i < G_N_ELEMENTS(table); i++) {
    bool host = kcps__local_host_ok(table[i].value);
    ck_assert_msg(host == table[i].host_ok, "Host \"%s\": got %d, expected %d", table[i].value,
                  host, table[i].host_ok);
  }
  ck_assert(!kcps__local_host_ok(NULL));
}
END_TEST

static resp_t *local(const char *method, const char *path, const char *const *headers,
                     const char *body)
{
  g_autofree char *url = g_strdup_printf("http://127.0.0.1:%d%s",
                                         kcps_daemon_local_port(dmn), path);
  return request(method, url, headers, body, NULL);
}

START_TEST(test_local_forbidden_origin)
{
  static const struct {
    const char *host;   /* NULL: curl's own */
    const char *origin; /* NULL: none */
    long status;
  } cases[] = {
    {"Host: evil.example", NULL, 403},
    {"Host: 127.0.0.1.evil.example:5572", NULL, 403},
    {"Host: localhost.evil.example", NULL, 403},
    {"Host:", NULL, 403}, /* no Host at all */
    {NULL, "Origin: http://evil.example", 403},
    {NULL, "Origin: null", 403},
    {NULL, "Origin: http://localhost.evil.example:5572", 403},
    /* Even a page on another loopback port: the tray and CLI send no Origin. */
    {"Host: localhost:1", "Origin: http://localhost:3000", 403},
    {"Host: [::1]:5572", "Origin: https://127.0.0.1", 403},
    {"Host: [::1]:5572", NULL, 200},
    {NULL, NULL, 200},
  };
  for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
    const char *headers[3] = {NULL};
    size_t n = 0;
    if (cases[i].host != NULL)
      headers[n++] = cases[i].host;
    if (cases[i].origin != NULL)
      headers[n++] = cases[i].origin;
    g_autoptr(resp_t) resp = local("GET", "/v1/status", headers, NULL);
    ck_assert_msg(resp->status == cases[i].status, "%s / %s: got HTTP %ld, expected %ld (%s)",
                  cases[i].host, cases[i].origin, resp->status, cases[i].status,
                  excerpt(resp));
    if (cases[i].status == 403)
      assert_error(resp, 403, "forbidden_origin", "");
  }
  /* A forbidden origin changes nothing either: a cross-site login is not
   * even attempted. */
  const char *evil[] = {"Origin: http://evil.example", NULL};
  g_autoptr(resp_t) login = local("POST", "/v1/login", evil,
                                  "{\"email\":\"a@b.c\",\"password\":\"x\"}");
  assert_error(login, 403, "forbidden_origin", "Origin");
}
END_TEST

START_TEST(test_local_status_and_routes)
{
  g_autoptr(resp_t) resp = local("GET", "/v1/status", NULL, NULL);
  ck_assert_msg(resp->status == 200, "got HTTP %ld: %s", resp->status, excerpt(resp));
  g_autoptr(JsonNode) node = resp_json(resp);
  JsonObject *obj = json_node_get_object(node);
  g_autofree char *me = kcps_platform_user_name(getuid());
  ck_assert_str_eq(kcps_json_string(obj, "user"), me);
  bool logged_in = true;
  ck_assert(kcps_json_bool(obj, "logged_in", &logged_in));
  ck_assert_msg(!logged_in, "got logged_in true, expected false");
  ck_assert(json_object_has_member(obj, "email"));
  ck_assert(json_node_is_null(json_object_get_member(obj, "email")));
  ck_assert_str_eq(kcps_json_string(obj, "server"), server_url);

  g_autoptr(resp_t) wrong_method = local("GET", "/v1/login", NULL, NULL);
  assert_error(wrong_method, 405, "method_not_allowed", "GET");
  g_autoptr(resp_t) wrong_method2 = local("DELETE", "/v1/jobs", NULL, NULL);
  assert_error(wrong_method2, 405, "method_not_allowed", "DELETE");
  g_autoptr(resp_t) unknown = local("GET", "/v1/nothing", NULL, NULL);
  assert_error(unknown, 404, "not_found", "/v1/nothing");
  g_autoptr(resp_t) logout = local("POST", "/v1/logout", NULL, "");
  ck_assert_msg(logout->status == 204, "logout: got HTTP %ld, expected 204", logout->status);
}
END_TEST

START_TEST(test_local_ipv6)
{
  ck_assert_msg(dmn->local6 != NULL, "no [::1] listener although the host has ::1");
  g_autofree char *url = g_strdup_printf("http://[::1]:%d/v1/status",
                                         kcps_daemon_local_port(dmn));
  g_autoptr(resp_t) resp = request("GET", url, NULL, NULL, NULL);
  ck_assert_msg(resp->status == 200, "[::1]: got HTTP %ld: %s", resp->status, excerpt(resp));
}
END_TEST

START_TEST(test_local_login_bad_requests)
{
  static const struct {
    const char *body;
    const char *expect;
  } cases[] = {
    {"", "empty"},
    {"{not json", "JSON"},
    {"[1,2]", "object"},
    {"{\"email\":\"alice@a.test\"}", "password"},
    {"{\"password\":\"pw\"}", "email"},
    {"{\"email\":5,\"password\":\"pw\"}", "email"},
    {"{\"email\":\"alice@a.test\",\"password\":true}", "password"},
    {"{\"email\":\"\",\"password\":\"pw\"}", "email"},
  };
  for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
    const char *headers[] = {"Content-Type: application/json", NULL};
    g_autoptr(resp_t) resp = local("POST", "/v1/login", headers, cases[i].body);
    ck_assert_msg(resp->status == 400, "body %s: got HTTP %ld, expected 400 (%s)",
                  cases[i].body, resp->status, excerpt(resp));
    assert_error(resp, 400, "bad_request", cases[i].expect);
  }
  g_autofree char *email = NULL;
  ck_assert(!kcps__daemon_session_get(dmn, getuid(), &email, NULL));
}
END_TEST

START_TEST(test_local_login_server_unreachable)
{
  g_autoptr(resp_t) resp = local("POST", "/v1/login", NULL,
                                 "{\"email\":\"alice@a.test\",\"password\":\"pw-secret\"}");
  assert_error(resp, 502, "server_unreachable", "server");
  ck_assert(strstr(resp->body->str, "pw-secret") == NULL);
  ck_assert(!kcps__daemon_session_get(dmn, getuid(), NULL, NULL));
  g_autoptr(resp_t) status = local("GET", "/v1/status", NULL, NULL);
  ck_assert(strstr(status->body->str, "\"logged_in\":false") != NULL);
}
END_TEST

START_TEST(test_sso_domain_of)
{
  static const struct {
    const char *in, *domain; /* domain NULL: refused */
  } table[] = {
    {"alice@Example.COM", "example.com"},
    {"example.com", "example.com"},
    {"a.b-c.example", "a.b-c.example"},
    {"first.last+tag@sub.example.org", "sub.example.org"},
    {"alice@", NULL},
    {"@example.com", NULL},
    {"a@b@example.com", NULL},
    {"alice@localhost", NULL},
    {"alice@exa mple.com", NULL},
    {"alice@.example.com", NULL},
    {"alice@example.com.", NULL},
    {"alice@example..com", NULL},
    {"alice@-example.com", NULL},
    {"alice@example.com/x", NULL},
    {"alice@ex\xc3\xa4mple.com", NULL},
    {"", NULL},
  };
  for (size_t i = 0; i < G_N_ELEMENTS(table); i++) {
    g_autofree char *got = kcps__sso_domain_of(table[i].in);
    ck_assert_msg(g_strcmp0(got, table[i].domain) == 0, "\"%s\": got %s, expected %s",
                  table[i].in, got, table[i].domain);
  }
  ck_assert_ptr_null(kcps__sso_domain_of(NULL));
}
END_TEST

/* GET /v1/sso: bad input named, the server unreachable said so. */
START_TEST(test_local_sso_lookup_errors)
{
  g_autoptr(resp_t) none = local("GET", "/v1/sso", NULL, NULL);
  assert_error(none, 400, "bad_request", "email");
  g_autoptr(resp_t) bad = local("GET", "/v1/sso?email=alice%40nodot", NULL, NULL);
  assert_error(bad, 400, "bad_request", "domain");
  g_autoptr(resp_t) down = local("GET", "/v1/sso?email=alice%40a.test", NULL, NULL);
  ck_assert_msg(down->status == 502 || down->status == 503, "got %ld: %s", down->status,
                down->body->str);
  ck_assert_msg(strstr(down->body->str, "alice") == NULL, "the answer repeats the address");
}
END_TEST

START_TEST(test_local_jobs_callers_only)
{
  g_autoptr(kcps_job_t) mine1 = spool_testpage(getuid(), "mine-1.pdf");
  g_autoptr(kcps_job_t) theirs = spool_testpage(getuid() + 4242, "theirs.pdf");
  g_autoptr(kcps_job_t) mine2 = spool_registered_testpage();

  g_autoptr(resp_t) resp = local("GET", "/v1/jobs", NULL, NULL);
  ck_assert_msg(resp->status == 200, "got HTTP %ld: %s", resp->status, excerpt(resp));
  g_autoptr(JsonNode) node = resp_json(resp);
  JsonArray *jobs = json_object_get_array_member(json_node_get_object(node), "jobs");
  ck_assert_ptr_nonnull(jobs);
  ck_assert_msg(json_array_get_length(jobs) == 2, "got %u jobs, expected 2: %s",
                json_array_get_length(jobs), excerpt(resp));
  ck_assert(strstr(resp->body->str, theirs->id) == NULL);
  ck_assert(strstr(resp->body->str, "theirs.pdf") == NULL);
  for (guint i = 0; i < 2; i++) {
    JsonObject *job = json_array_get_object_element(jobs, i);
    const char *id = kcps_json_string(job, "id");
    const kcps_job_t *want = g_strcmp0(id, mine1->id) == 0 ? mine1 : mine2;
    ck_assert_msg(g_strcmp0(id, want->id) == 0, "unexpected job %s", id);
    ck_assert_str_eq(kcps_json_string(job, "name"), want->name);
    gint64 pages = 0, size = 0, created = 0;
    ck_assert(kcps_json_int(job, "pages", &pages) && pages == want->pages);
    ck_assert(kcps_json_int(job, "size", &size) && size == want->size);
    ck_assert(kcps_json_int(job, "created", &created) && created == want->created);
    gint64 expires = 0;
    ck_assert(kcps_json_int(job, "expires", &expires) && expires == want->created + 5400);
    const char *state = kcps_json_string(job, "state");
    ck_assert_str_eq(state, want == mine1 ? "spooled" : "registered");
    JsonNode *server_id = json_object_get_member(job, "server_id");
    ck_assert_ptr_nonnull(server_id);
    if (want == mine1)
      ck_assert(json_node_is_null(server_id));
    else
      ck_assert_str_eq(kcps_json_string(job, "server_id"), SERVER_JOB);
  }
}
END_TEST

/* Another OS account is refused in --user mode: curl run as nobody. */
START_TEST(test_local_forbidden_user)
{
  if (getuid() != 0 || !g_file_test("/usr/bin/setpriv", G_FILE_TEST_IS_EXECUTABLE)
      || !g_file_test("/usr/bin/curl", G_FILE_TEST_IS_EXECUTABLE)) {
    fprintf(stderr, "test_local_forbidden_user: skipped (needs root, setpriv and curl)\n");
    return;
  }
  g_autofree char *url = g_strdup_printf("http://127.0.0.1:%d/v1/jobs",
                                         kcps_daemon_local_port(dmn));
  const char *argv[] = {"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                        "/usr/bin/curl", "-s", url, NULL};
  g_autofree char *out = NULL;
  g_autofree char *err = NULL;
  int wait_status = 0;
  g_autoptr(GError) error = NULL;
  ck_assert(g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, &err,
                         &wait_status, &error));
  ck_assert_msg(strstr(out, "forbidden_user") != NULL, "as nobody: got %s (stderr %s)", out,
                err);
}
END_TEST

/* --- the programs ------------------------------------------------------------------- */

/* The built program name, beside this test's folder (build/client/). */
static char *program(const char *name)
{
  g_autofree char *self = g_file_read_link("/proc/self/exe", NULL);
  ck_assert_ptr_nonnull(self);
  g_autofree char *dir = g_path_get_dirname(self);
  char *path = g_build_filename(dir, "..", "client", name, NULL);
  ck_assert_msg(g_file_test(path, G_FILE_TEST_IS_EXECUTABLE), "%s is not built", path);
  return path;
}

typedef struct run_s {
  int exit_code;
  char *out;
  char *err;
} run_t;

static void run_clear(run_t *run)
{
  g_free(run->out);
  g_free(run->err);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(run_t, run_clear)

/* Runs kcps with args (NULL-terminated), stdin_text on its stdin, and
 * KCPS_LOCAL_PORT=env_port when not NULL. */
static run_t run_kcps(const char *stdin_text, const char *env_port, ...)
{
  g_autofree char *kcps = program("kcps");
  g_autoptr(GPtrArray) argv = g_ptr_array_new();
  g_ptr_array_add(argv, kcps);
  va_list ap;
  va_start(ap, env_port);
  for (const char *arg = va_arg(ap, const char *); arg != NULL; arg = va_arg(ap, const char *))
    g_ptr_array_add(argv, (char *)arg);
  va_end(ap);
  g_ptr_array_add(argv, NULL);

  g_autoptr(GSubprocessLauncher) launcher = g_subprocess_launcher_new(
    G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE);
  if (env_port != NULL)
    g_subprocess_launcher_setenv(launcher, "KCPS_LOCAL_PORT", env_port, TRUE);
  else
    g_subprocess_launcher_unsetenv(launcher, "KCPS_LOCAL_PORT");
  g_autoptr(GError) error = NULL;
  g_autoptr(GSubprocess) proc =
    g_subprocess_launcher_spawnv(launcher, (const char *const *)argv->pdata, &error);
  ck_assert_msg(proc != NULL, "spawn kcps: %s", error != NULL ? error->message : "?");
  run_t run = {0};
  ck_assert(g_subprocess_communicate_utf8(proc, stdin_text != NULL ? stdin_text : "", NULL,
                                          &run.out, &run.err, &error));
  ck_assert(g_subprocess_get_if_exited(proc));
  run.exit_code = g_subprocess_get_exit_status(proc);
  return run;
}

#define ASSERT_EXIT(run, code, what)                                                       \
  ck_assert_msg((run).exit_code == (code), "%s: got exit %d, expected %d (stdout %s, stderr %s)", \
                what, (run).exit_code, code, (run).out, (run).err)

START_TEST(test_cli_usage)
{
  const struct {
    const char *args[4];
  } cases[] = {
    {{NULL}},
    {{"login", NULL}},
    {{"login", "alice@a.test", "secret", NULL}},
    {{"login", "--password=x", NULL}},
    {{"frobnicate", NULL}},
    {{"jobs", "--xml", NULL}},
    {{"status", "extra", NULL}},
    {{"--port", "abc", "status"}},
    {{"--port", "70000", "status"}},
    {{"--port", NULL}},
    {{"--verbose", "status", NULL}},
  };
  for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
    g_auto(run_t) run = run_kcps(NULL, NULL, cases[i].args[0], cases[i].args[1],
                                 cases[i].args[2], cases[i].args[3], NULL);
    g_autofree char *what = g_strjoinv(" ", (char **)cases[i].args);
    ASSERT_EXIT(run, 2, what);
    ck_assert_msg(strstr(run.err, "kcps:") != NULL, "%s: no message on stderr", what);
  }
  g_auto(run_t) bad_env = run_kcps(NULL, "nope", "status", NULL);
  ASSERT_EXIT(bad_env, 2, "KCPS_LOCAL_PORT=nope");
  g_auto(run_t) help = run_kcps(NULL, NULL, "--help", NULL);
  ASSERT_EXIT(help, 0, "--help");
  ck_assert(strstr(help.out, "login EMAIL") != NULL);
}
END_TEST

START_TEST(test_cli_unreachable)
{
  g_autofree char *port = g_strdup_printf("%d", closed_port());
  g_auto(run_t) run = run_kcps(NULL, NULL, "--port", port, "status", NULL);
  ASSERT_EXIT(run, 3, "status against a closed port");
  ck_assert_msg(strstr(run.err, "cannot reach kcpsd") != NULL, "stderr: %s", run.err);
  g_auto(run_t) run_env = run_kcps(NULL, port, "jobs", NULL);
  ASSERT_EXIT(run_env, 3, "jobs against a closed port from KCPS_LOCAL_PORT");
}
END_TEST

START_TEST(test_cli_against_daemon)
{
  g_autoptr(kcps_job_t) job = spool_registered_testpage();
  g_autofree char *port = g_strdup_printf("%d", kcps_daemon_local_port(dmn));

  g_auto(run_t) status = run_kcps(NULL, NULL, "--port", port, "status", NULL);
  ASSERT_EXIT(status, 0, "status");
  ck_assert_msg(strstr(status.out, "logged in: no") != NULL, "status: %s", status.out);
  ck_assert_msg(strstr(status.out, server_url) != NULL, "status: %s", status.out);

  /* The port from the environment; --port= form wins over it. */
  g_auto(run_t) table = run_kcps(NULL, port, "jobs", NULL);
  ASSERT_EXIT(table, 0, "jobs");
  ck_assert_msg(strstr(table.out, job->id) != NULL && strstr(table.out, "registered") != NULL
                  && strstr(table.out, "report.pdf") != NULL,
                "jobs table: %s", table.out);

  g_autofree char *port_opt = g_strdup_printf("--port=%s", port);
  g_auto(run_t) json = run_kcps(NULL, "1", port_opt, "jobs", "--json", NULL);
  ASSERT_EXIT(json, 0, "jobs --json");
  g_autoptr(JsonParser) parser = json_parser_new();
  ck_assert_msg(json_parser_load_from_data(parser, json.out, -1, NULL), "not JSON: %s", json.out);
  JsonNode *root = json_parser_get_root(parser);
  ck_assert_msg(JSON_NODE_HOLDS_ARRAY(root), "not a JSON array: %s", json.out);
  JsonArray *jobs = json_node_get_array(root);
  ck_assert_int_eq(json_array_get_length(jobs), 1);
  JsonObject *first = json_array_get_object_element(jobs, 0);
  static const char *const fields[] = {"id", "name", "pages", "size", "state"};
  for (size_t i = 0; i < G_N_ELEMENTS(fields); i++)
    ck_assert_msg(json_object_has_member(first, fields[i]), "no %s in %s", fields[i], json.out);
  ck_assert_str_eq(kcps_json_string(first, "id"), job->id);

  /* The password comes from stdin (not a terminal here), never argv; the
   * server being unreachable is a refusal with kcpsd's message. */
  g_auto(run_t) login = run_kcps("pw-secret\n", NULL, "--port", port, "login", "alice@a.test",
                                 NULL);
  ASSERT_EXIT(login, 1, "login with the server unreachable");
  ck_assert_msg(strstr(login.err, "cannot log in to the server") != NULL, "stderr: %s",
                login.err);
  ck_assert(strstr(login.err, "pw-secret") == NULL && strstr(login.out, "pw-secret") == NULL);

  g_auto(run_t) no_password = run_kcps("", NULL, "--port", port, "login", "alice@a.test", NULL);
  ASSERT_EXIT(no_password, 1, "login without a password on stdin");

  g_auto(run_t) logout = run_kcps(NULL, NULL, "--port", port, "logout", NULL);
  ASSERT_EXIT(logout, 0, "logout");
}
END_TEST

/* kcpsd itself: refuses system mode; in --user mode prints the ready line
 * and stops cleanly on SIGTERM. */
START_TEST(test_kcpsd_program)
{
  g_autofree char *kcpsd = program("kcpsd");
  g_autoptr(GError) error = NULL;

  const char *system_argv[] = {kcpsd, NULL};
  g_autofree char *err = NULL;
  int wait_status = 0;
  ck_assert(g_spawn_sync(NULL, (char **)system_argv, NULL, G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL,
                         NULL, &err, &wait_status, &error));
  ck_assert_msg(WIFEXITED(wait_status) && WEXITSTATUS(wait_status) == 2,
                "kcpsd without --user: got wait status %d, expected exit 2", wait_status);
  ck_assert_msg(strstr(err, "--user") != NULL, "stderr: %s", err);

  g_autofree char *spool = g_build_filename(tmp, "prog-spool", NULL);
  g_autofree char *state = g_build_filename(tmp, "prog-state", NULL);
  const char *argv[] = {kcpsd, "--user", "--spool", spool, "--state", state, "--ipp-port", "0",
                        "--pull-port", "0", "--pull-listen", "127.0.0.1", "--local-port", "0",
                        NULL};
  g_autoptr(GSubprocess) proc = g_subprocess_newv(argv, G_SUBPROCESS_FLAGS_STDOUT_PIPE, &error);
  ck_assert_msg(proc != NULL, "spawn kcpsd: %s", error != NULL ? error->message : "?");
  g_autoptr(GDataInputStream) lines =
    g_data_input_stream_new(g_subprocess_get_stdout_pipe(proc));
  g_autofree char *line = g_data_input_stream_read_line(lines, NULL, NULL, &error);
  ck_assert_msg(line != NULL, "kcpsd printed no ready line");
  int ipp = 0, pull_port = 0, local_port = 0;
  ck_assert_msg(sscanf(line, "kcpsd: ready ipp=%d pull=%d local=%d", &ipp, &pull_port,
                       &local_port) == 3, "got line \"%s\"", line);
  ck_assert(ipp > 0 && pull_port > 0 && local_port > 0);
  ck_assert(g_file_test(state, G_FILE_TEST_IS_DIR));
  struct stat st;
  g_autofree char *key = g_build_filename(state, "pull.key", NULL);
  ck_assert_int_eq(stat(key, &st), 0);
  ck_assert_msg((st.st_mode & 0077) == 0, "pull.key mode %o", st.st_mode & 0777);
  ck_assert_int_eq(stat(state, &st), 0);
  ck_assert_msg((st.st_mode & 0077) == 0, "state folder mode %o", st.st_mode & 0777);

  g_autofree char *port = g_strdup_printf("%d", local_port);
  g_auto(run_t) status = run_kcps(NULL, NULL, "--port", port, "status", NULL);
  ASSERT_EXIT(status, 0, "status against kcpsd");
  ck_assert(strstr(status.out, "(none configured)") != NULL);

  g_subprocess_send_signal(proc, SIGTERM);
  ck_assert(g_subprocess_wait(proc, NULL, &error));
  ck_assert_msg(g_subprocess_get_if_exited(proc) && g_subprocess_get_exit_status(proc) == 0,
                "kcpsd after SIGTERM: got status %d, expected exit 0",
                g_subprocess_get_status(proc));
}
END_TEST

START_TEST(test_daemon_config_errors)
{
  g_autofree char *dir = g_dir_make_tmp("kcps-test-client-XXXXXX", NULL);
  kcps_daemon_config_t config;
  kcps_daemon_config_init(&config);
  config.spool_dir = dir;
  config.state_dir = dir;
  config.ipp_port = config.pull_port = config.local_port = 0;
  const struct {
    const char *server_url;
    int pull_port;
    const char *expect;
  } cases[] = {
    {"http://server.example", 0, "https://"},
    {"server.example", 0, "https://"},
    {NULL, 70000, "pull port"},
    {NULL, -1, "pull port"},
  };
  for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
    config.server_url = cases[i].server_url;
    config.pull_port = cases[i].pull_port;
    g_autoptr(GError) error = NULL;
    g_autoptr(kcps_daemon_t) d = kcps_daemon_new(&config, &error);
    ck_assert_msg(d == NULL, "case %zu: started anyway", i);
    ck_assert_msg(g_error_matches(error, KCPS_DAEMON_ERROR, KCPS_DAEMON_ERROR_CONFIG)
                    && strstr(error->message, cases[i].expect) != NULL,
                  "case %zu: got \"%s\", expected it to mention %s", i, error->message,
                  cases[i].expect);
  }
  config.server_url = "https://127.0.0.1:1";
  config.pull_port = 0;
  config.server_ca = "/nonexistent/ca.pem";
  {
    g_autoptr(GError) ca_error = NULL;
    g_autoptr(kcps_daemon_t) ca_daemon = kcps_daemon_new(&config, &ca_error);
    ck_assert_msg(ca_daemon == NULL && strstr(ca_error->message, "/nonexistent/ca.pem") != NULL,
                  "missing CA file: got %s", ca_error != NULL ? ca_error->message : "a daemon");
  }
  config.server_ca = NULL;
  config.server_url = NULL;
  config.spool_dir = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(kcps_daemon_t) d = kcps_daemon_new(&config, &error);
  ck_assert(d == NULL && strstr(error->message, "spool") != NULL);
  rm_rf(dir);
}
END_TEST

/* --- settings: retention and the document size limit --------------------------- */

/* Rewrites a job's creation time in the index of the spool in spool_dir,
 * through a connection of its own (the tests' way of ageing a job). */
static void set_created(const char *spool_dir, const char *id, gint64 created)
{
  g_autofree char *path = g_build_filename(spool_dir, "spool.db", NULL);
  sqlite3 *db = NULL;
  ck_assert_int_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
  sqlite3_busy_timeout(db, 10000);
  sqlite3_stmt *st = NULL;
  ck_assert_int_eq(sqlite3_prepare_v2(db, "UPDATE jobs SET created = ? WHERE id = ?", -1, &st,
                                      NULL), SQLITE_OK);
  sqlite3_bind_int64(st, 1, created);
  sqlite3_bind_text(st, 2, id, -1, SQLITE_TRANSIENT);
  ck_assert_int_eq(sqlite3_step(st), SQLITE_DONE);
  ck_assert_int_eq(sqlite3_changes(db), 1);
  sqlite3_finalize(st);
  sqlite3_close(db);
}

/* A job's state as the index holds it, read through a connection of its own
 * (0 when there is no such row). */
static int stored_state(const char *spool_dir, const char *id)
{
  g_autofree char *path = g_build_filename(spool_dir, "spool.db", NULL);
  sqlite3 *db = NULL;
  ck_assert_int_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
  sqlite3_busy_timeout(db, 10000);
  sqlite3_stmt *st = NULL;
  ck_assert_int_eq(sqlite3_prepare_v2(db, "SELECT state FROM jobs WHERE id = ?", -1, &st, NULL),
                   SQLITE_OK);
  sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
  int state = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
  sqlite3_finalize(st);
  sqlite3_close(db);
  return state;
}

static bool document_exists(const char *spool_dir, const kcps_job_t *job)
{
  g_autofree char *path = g_strdup_printf("%s/%u/%s.pdf", spool_dir, (unsigned)job->owner_uid,
                                          job->id);
  return g_file_test(path, G_FILE_TEST_EXISTS);
}

/* Expiry with a fake clock: "at or before now - max_age" goes, one second
 * younger stays, printed jobs go too, a second run finds nothing, and 0
 * keeps everything. */
START_TEST(test_expire_jobs)
{
  g_autofree char *spool_dir = g_build_filename(tmp, "spool", NULL);
  const gint64 now = 2000000000, day = 24 * 3600;
  g_autoptr(kcps_job_t) at_limit = spool_testpage(getuid(), "at the limit");
  g_autoptr(kcps_job_t) printed = spool_testpage(getuid(), "printed long ago");
  g_autoptr(kcps_job_t) younger = spool_testpage(getuid(), "one second younger");
  set_created(spool_dir, at_limit->id, now - day);
  set_created(spool_dir, printed->id, now - 2 * day);
  set_created(spool_dir, younger->id, now - day + 1);
  g_autoptr(GError) error = NULL;
  ck_assert(kcps_spool_set_state(kcps__daemon_spool(dmn), printed->id, KCPS_JOB_STATE_PRINTED,
                                 &error));

  guint n = 99;
  ck_assert(kcps_daemon_expire_jobs(dmn, now, 0, &n, &error));
  ck_assert_msg(n == 0, "retention 0 expired %u jobs, expected none", n);

  /* A second earlier, only the job printed two days ago is old enough. */
  ck_assert_msg(kcps_daemon_expire_jobs(dmn, now - 1, day, &n, &error), "%s",
                error != NULL ? error->message : "?");
  ck_assert_msg(n == 1, "at now-1: expired %u, expected 1", n);
  ck_assert_int_eq(job_state(printed->id), KCPS_JOB_STATE_DELETED);
  ck_assert_msg(!document_exists(spool_dir, printed), "the expired job's document is still there");
  ck_assert_int_eq(job_state(at_limit->id), KCPS_JOB_STATE_SPOOLED);

  ck_assert(kcps_daemon_expire_jobs(dmn, now, day, &n, &error));
  ck_assert_msg(n == 1, "at now: expired %u, expected 1 (the job exactly at the limit)", n);
  ck_assert_int_eq(job_state(at_limit->id), KCPS_JOB_STATE_DELETED);
  ck_assert(!document_exists(spool_dir, at_limit));
  ck_assert_int_eq(job_state(younger->id), KCPS_JOB_STATE_SPOOLED);
  ck_assert_msg(document_exists(spool_dir, younger), "the younger job lost its document");

  ck_assert(kcps_daemon_expire_jobs(dmn, now, day, &n, &error));
  ck_assert_msg(n == 0, "second run at now: expired %u, expected 0", n);
  g_autoptr(GPtrArray) jobs = kcps_spool_list_jobs(kcps__daemon_spool(dmn), getuid(), &error);
  ck_assert_msg(jobs != NULL && jobs->len == 1 &&
                  strcmp(((kcps_job_t *)g_ptr_array_index(jobs, 0))->id, younger->id) == 0,
                "listed after expiry: %u jobs, expected only the younger one",
                jobs != NULL ? jobs->len : 0);
}
END_TEST

/* More expired jobs than one batch: all go, every document removed. */
START_TEST(test_expire_many)
{
  g_autofree char *spool_dir = g_build_filename(tmp, "spool", NULL);
  g_autoptr(kcps_job_t) model = spool_testpage(getuid(), "model");
  g_autofree char *model_path = g_strdup_printf("%s/%u/%s.pdf", spool_dir, (unsigned)getuid(),
                                                model->id);
  /* Rows and (empty) documents made directly: the writer would fsync each. */
  enum { MANY = 1234 };
  g_autofree char *db_path = g_build_filename(spool_dir, "spool.db", NULL);
  sqlite3 *db = NULL;
  ck_assert_int_eq(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
  sqlite3_busy_timeout(db, 10000);
  ck_assert_int_eq(sqlite3_exec(db, "BEGIN", NULL, NULL, NULL), SQLITE_OK);
  for (int i = 0; i < MANY; i++) {
    g_autofree char *id = g_strdup_printf("many-%04d", i);
    char *sql = sqlite3_mprintf(
      "INSERT INTO jobs (id, owner_uid, owner_name, name, format, pages, size, sha256, state, "
      "created) SELECT '%q', owner_uid, owner_name, name, format, pages, size, sha256, state, "
      "%d FROM jobs WHERE id = '%q'", id, 1000 + i, model->id);
    ck_assert_int_eq(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_free(sql);
    g_autofree char *path = g_strdup_printf("%s/%u/%s.pdf", spool_dir, (unsigned)getuid(), id);
    ck_assert(g_file_set_contents(path, "", 0, NULL));
  }
  ck_assert_int_eq(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
  sqlite3_close(db);

  g_autoptr(GError) error = NULL;
  guint n = 0;
  /* The model job is new (real time): it stays. */
  ck_assert_msg(kcps_daemon_expire_jobs(dmn, 1000 + MANY + 3600, 3600, &n, &error), "%s",
                error != NULL ? error->message : "?");
  ck_assert_msg(n == MANY, "expired %u, expected %d", n, MANY);
  g_autofree char *owner_dir = g_strdup_printf("%s/%u", spool_dir, (unsigned)getuid());
  g_autoptr(GDir) dir = g_dir_open(owner_dir, 0, NULL);
  int left = 0;
  for (const char *name; (name = g_dir_read_name(dir)) != NULL;)
    left += g_str_has_prefix(name, "many-");
  ck_assert_msg(left == 0, "%d documents of expired jobs left", left);
  ck_assert(g_file_test(model_path, G_FILE_TEST_EXISTS));
  ck_assert_int_eq(stored_state(spool_dir, "many-0000"), KCPS_JOB_STATE_DELETED);
  ck_assert_int_eq(stored_state(spool_dir, "many-1233"), KCPS_JOB_STATE_DELETED);
  ck_assert_int_eq(stored_state(spool_dir, model->id), KCPS_JOB_STATE_SPOOLED);
}
END_TEST

/* The size limit reaches the spool from the configuration: a document of
 * exactly the limit is taken, one byte over it is not. */
START_TEST(test_daemon_max_document_size)
{
  g_autofree char *data = NULL;
  gsize len = 0;
  ck_assert(g_file_get_contents(TESTPAGE, &data, &len, NULL));
  for (int over = 0; over <= 1; over++) {
    g_autofree char *dir = g_strdup_printf("%s/limit-%d", tmp, over);
    g_autofree char *spool = g_build_filename(dir, "spool", NULL);
    g_autofree char *state = g_build_filename(dir, "state", NULL);
    kcps_daemon_config_t config;
    kcps_daemon_config_init(&config);
    config.spool_dir = spool;
    config.state_dir = state;
    config.ipp_port = config.pull_port = config.local_port = 0;
    config.pull_listen = "127.0.0.1";
    config.max_document_size = (gint64)len - over;
    g_autoptr(GError) error = NULL;
    g_autoptr(kcps_daemon_t) d = kcps_daemon_new(&config, &error);
    ck_assert_msg(d != NULL, "%s", error != NULL ? error->message : "?");
    kcps_spool_writer_t *w = kcps_spool_writer_new(kcps__daemon_spool(d), getuid(), "me",
                                                   "limit", "application/pdf", &error);
    ck_assert_ptr_nonnull(w);
    bool written = kcps_spool_writer_write(w, data, len, &error);
    g_autoptr(kcps_job_t) job = written ? kcps_spool_writer_commit(w, &error) : NULL;
    if (!written)
      kcps_spool_writer_abort(w);
    if (over == 0) {
      ck_assert_msg(job != NULL, "a document of exactly the limit: %s",
                    error != NULL ? error->message : "?");
    } else {
      ck_assert_msg(job == NULL &&
                      g_error_matches(error, KCPS_SPOOL_ERROR, KCPS_SPOOL_ERROR_TOO_LARGE),
                    "one byte over the limit: got %s, expected too large",
                    error != NULL ? error->message : "a job");
    }
  }
  kcps_daemon_config_t config;
  kcps_daemon_config_init(&config);
  config.spool_dir = config.state_dir = tmp;
  config.max_document_size = -1;
  g_autoptr(GError) error = NULL;
  g_autoptr(kcps_daemon_t) d = kcps_daemon_new(&config, &error);
  ck_assert_msg(d == NULL && g_error_matches(error, KCPS_DAEMON_ERROR, KCPS_DAEMON_ERROR_CONFIG),
                "a negative limit was accepted");
}
END_TEST

/* Print-Job of path over IPP to 127.0.0.1:port; returns the status, *message
 * the status-message (g_free). */
static ipp_status_t print_file(int port, const char *path, char **message)
{
  http_t *http = httpConnect2("127.0.0.1", port, NULL, AF_INET, HTTP_ENCRYPTION_IF_REQUESTED, 1,
                              30000, NULL);
  ck_assert_msg(http != NULL, "cannot connect to the IPP port %d", port);
  g_autofree char *uri = g_strdup_printf("ipp://127.0.0.1:%d/ipp/print", port);
  ipp_t *request = ippNewRequest(IPP_OP_PRINT_JOB);
  ippAddString(request, IPP_TAG_OPERATION, IPP_TAG_URI, "printer-uri", NULL, uri);
  ippAddString(request, IPP_TAG_OPERATION, IPP_TAG_NAME, "requesting-user-name", NULL,
               cupsUser());
  ippAddString(request, IPP_TAG_OPERATION, IPP_TAG_MIMETYPE, "document-format", NULL,
               "application/pdf");
  ipp_t *response = cupsDoFileRequest(http, request, "/ipp/print", path);
  ipp_status_t status = cupsLastError();
  *message = g_strdup(cupsLastErrorString());
  ippDelete(response);
  httpClose(http);
  return status;
}

/* kcpsd's settings end to end: bad values refused; at start a job older
 * than --retention-hours is deleted and a young one kept; a document over
 * --max-document-size is refused with client-error-request-entity-too-large. */
START_TEST(test_kcpsd_settings)
{
  g_autofree char *kcpsd = program("kcpsd");
  const struct {
    const char *option, *value, *expect;
  } bad[] = {
    {"--retention-hours", "-1", "out of range"},
    {"--retention-hours", "nan", "out of range"},
    {"--max-document-size", "big", "not a size"},
    {"--max-document-size", "0", "not a size"},
    {"--max-document-size", "10X", "not a size"},
    {"--max-document-size", "99999999999G", "not a size"},
  };
  for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
    const char *argv[] = {kcpsd, "--user", bad[i].option, bad[i].value, NULL};
    g_autofree char *err = NULL;
    int wait_status = 0;
    g_autoptr(GError) error = NULL;
    ck_assert(g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL,
                           NULL, &err, &wait_status, &error));
    ck_assert_msg(WIFEXITED(wait_status) && WEXITSTATUS(wait_status) == 2 &&
                    strstr(err, bad[i].expect) != NULL,
                  "%s %s: got status %d \"%s\", expected exit 2 mentioning %s", bad[i].option,
                  bad[i].value, wait_status, err, bad[i].expect);
  }

  /* A spool with a job 25 hours old and one just made. */
  g_autofree char *spool_dir = g_build_filename(tmp, "settings-spool", NULL);
  g_autofree char *state = g_build_filename(tmp, "settings-state", NULL);
  g_autoptr(GError) error = NULL;
  kcps_spool_t *spool = kcps_spool_open(spool_dir, &error);
  ck_assert_msg(spool != NULL, "%s", error != NULL ? error->message : "?");
  g_autofree char *data = NULL;
  gsize len = 0;
  ck_assert(g_file_get_contents(TESTPAGE, &data, &len, NULL));
  kcps_job_t *jobs[2];
  for (int i = 0; i < 2; i++) {
    kcps_spool_writer_t *w =
      kcps_spool_writer_new(spool, getuid(), "me", i == 0 ? "old" : "young", "application/pdf",
                            &error);
    ck_assert_ptr_nonnull(w);
    ck_assert(kcps_spool_writer_write(w, data, len, &error));
    jobs[i] = kcps_spool_writer_commit(w, &error);
    ck_assert_ptr_nonnull(jobs[i]);
  }
  kcps_spool_close(spool);
  set_created(spool_dir, jobs[0]->id, g_get_real_time() / G_USEC_PER_SEC - 25 * 3600);

  const char *argv[] = {kcpsd, "--user", "--spool", spool_dir, "--state", state, "--ipp-port",
                        "0", "--pull-port", "0", "--pull-listen", "127.0.0.1", "--local-port",
                        "0", "--retention-hours", "24", "--max-document-size", "100K", NULL};
  g_autoptr(GSubprocess) proc = g_subprocess_newv(argv, G_SUBPROCESS_FLAGS_STDOUT_PIPE, &error);
  ck_assert_msg(proc != NULL, "spawn kcpsd: %s", error != NULL ? error->message : "?");
  g_autoptr(GDataInputStream) lines =
    g_data_input_stream_new(g_subprocess_get_stdout_pipe(proc));
  g_autofree char *line = g_data_input_stream_read_line(lines, NULL, NULL, &error);
  int ipp = 0, pull_port = 0, local_port = 0;
  ck_assert_msg(line != NULL && sscanf(line, "kcpsd: ready ipp=%d pull=%d local=%d", &ipp,
                                       &pull_port, &local_port) == 3,
                "kcpsd printed no ready line (got \"%s\")", line != NULL ? line : "");

  /* The start's expiry ran before "ready". */
  ck_assert_msg(stored_state(spool_dir, jobs[0]->id) == KCPS_JOB_STATE_DELETED,
                "the 25-hour-old job: state %d, expected deleted",
                stored_state(spool_dir, jobs[0]->id));
  ck_assert_msg(!document_exists(spool_dir, jobs[0]), "the 25-hour-old job's document is left");
  ck_assert_int_eq(stored_state(spool_dir, jobs[1]->id), KCPS_JOB_STATE_SPOOLED);
  ck_assert(document_exists(spool_dir, jobs[1]));

  /* 110 kB over a 100 KiB limit, then a small PDF under it. */
  g_autofree char *message = NULL;
  ipp_status_t status = print_file(ipp, TESTPAGE, &message);
  ck_assert_msg(status == IPP_STATUS_ERROR_REQUEST_ENTITY &&
                  strstr(message, "102400") != NULL,
                "a %zu-byte PDF over --max-document-size 100K: got %s (%s), expected "
                "client-error-request-entity-too-large naming the limit",
                (size_t)len, ippErrorString(status), message);
  g_clear_pointer(&message, g_free);
  status = print_file(ipp, "/usr/share/cups/data/default.pdf", &message);
  ck_assert_msg(status == IPP_STATUS_OK, "a small PDF: got %s (%s)", ippErrorString(status),
                message);

  g_subprocess_send_signal(proc, SIGTERM);
  ck_assert(g_subprocess_wait(proc, NULL, &error));
  ck_assert_msg(g_subprocess_get_if_exited(proc) && g_subprocess_get_exit_status(proc) == 0,
                "kcpsd after SIGTERM: status %d", g_subprocess_get_status(proc));
  kcps_job_free(jobs[0]);
  kcps_job_free(jobs[1]);
}
END_TEST

/* The periodic expiry: with a retention of 2 seconds (0.0005 h, checked
 * every second) a job spooled after the start is deleted by the timer. */
START_TEST(test_kcpsd_periodic_expiry)
{
  g_autofree char *kcpsd = program("kcpsd");
  g_autofree char *spool_dir = g_build_filename(tmp, "periodic-spool", NULL);
  g_autofree char *state = g_build_filename(tmp, "periodic-state", NULL);
  const char *argv[] = {kcpsd, "--user", "--spool", spool_dir, "--state", state, "--ipp-port",
                        "0", "--pull-port", "0", "--pull-listen", "127.0.0.1", "--local-port",
                        "0", "--retention-hours", "0.0005", NULL};
  g_autoptr(GError) error = NULL;
  g_autoptr(GSubprocess) proc = g_subprocess_newv(argv, G_SUBPROCESS_FLAGS_STDOUT_PIPE, &error);
  ck_assert_msg(proc != NULL, "spawn kcpsd: %s", error != NULL ? error->message : "?");
  g_autoptr(GDataInputStream) lines =
    g_data_input_stream_new(g_subprocess_get_stdout_pipe(proc));
  g_autofree char *line = g_data_input_stream_read_line(lines, NULL, NULL, &error);
  int ipp = 0, pull_port = 0, local_port = 0;
  ck_assert_msg(line != NULL && sscanf(line, "kcpsd: ready ipp=%d pull=%d local=%d", &ipp,
                                       &pull_port, &local_port) == 3,
                "kcpsd printed no ready line (got \"%s\")", line != NULL ? line : "");

  g_autofree char *message = NULL;
  ipp_status_t status = print_file(ipp, "/usr/share/cups/data/default.pdf", &message);
  ck_assert_msg(status == IPP_STATUS_OK, "Print-Job: got %s (%s)", ippErrorString(status),
                message);
  /* The job's id, from the index (deleted or not). */
  g_autofree char *db_path = g_build_filename(spool_dir, "spool.db", NULL);
  sqlite3 *db = NULL;
  ck_assert_int_eq(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
  sqlite3_busy_timeout(db, 10000);
  sqlite3_stmt *st = NULL;
  ck_assert_int_eq(sqlite3_prepare_v2(db, "SELECT id FROM jobs", -1, &st, NULL), SQLITE_OK);
  ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
  g_autofree char *id = g_strdup((const char *)sqlite3_column_text(st, 0));
  sqlite3_finalize(st);
  sqlite3_close(db);

  /* Wait for the state, not for a time: at most 60 s on a loaded machine. */
  int state_now = 0;
  for (int i = 0; i < 600; i++) {
    state_now = stored_state(spool_dir, id);
    if (state_now == KCPS_JOB_STATE_DELETED)
      break;
    g_usleep(100 * 1000);
  }
  ck_assert_msg(state_now == KCPS_JOB_STATE_DELETED,
                "job %s: state %d after 60 s, expected deleted by the periodic expiry", id,
                state_now);
  kcps_job_t job = {.id = id, .owner_uid = getuid()};
  ck_assert_msg(!document_exists(spool_dir, &job), "the expired job's document is left");

  g_subprocess_send_signal(proc, SIGTERM);
  ck_assert(g_subprocess_wait(proc, NULL, &error));
  ck_assert_msg(g_subprocess_get_if_exited(proc) && g_subprocess_get_exit_status(proc) == 0,
                "kcpsd after SIGTERM: status %d", g_subprocess_get_status(proc));
}
END_TEST

static Suite *client_suite(void)
{
  Suite *s = suite_create("client");

  TCase *tc = tcase_create("pull");
  tcase_add_checked_fixture(tc, daemon_setup, daemon_teardown);
  tcase_add_test(tc, test_pull_streams_once);
  tcase_add_test(tc, test_pull_with_pinned_key);
  tcase_add_test(tc, test_pull_refusals);
  tcase_add_test(tc, test_pull_unregistered_and_unknown);
  tcase_add_test(tc, test_pull_only_get);
  tcase_add_test(tc, test_pull_range_resume);
  tcase_add_test(tc, test_pull_other_device);
  tcase_add_test(tc, test_pull_tls_versions);
  tcase_add_test(tc, test_pull_many_at_once);
  suite_add_tcase(s, tc);

  tc = tcase_create("pull-stalls");
  tcase_add_checked_fixture(tc, stall_setup, daemon_teardown);
  tcase_add_test(tc, test_pull_stalled_clients);
  suite_add_tcase(s, tc);

  tc = tcase_create("local");
  tcase_add_test(tc, test_local_host_origin_table);
  tcase_add_test(tc, test_sso_domain_of);
  tcase_add_checked_fixture(tc, daemon_setup, daemon_teardown);
  tcase_add_test(tc, test_local_forbidden_origin);
  tcase_add_test(tc, test_local_status_and_routes);
  tcase_add_test(tc, test_local_ipv6);
  tcase_add_test(tc, test_local_login_bad_requests);
  tcase_add_test(tc, test_local_login_server_unreachable);
  tcase_add_test(tc, test_local_sso_lookup_errors);
  tcase_add_test(tc, test_local_jobs_callers_only);
  tcase_add_test(tc, test_local_forbidden_user);
  suite_add_tcase(s, tc);

  tc = tcase_create("programs");
  tcase_add_checked_fixture(tc, daemon_setup, daemon_teardown);
  tcase_add_test(tc, test_cli_usage);
  tcase_add_test(tc, test_cli_unreachable);
  tcase_add_test(tc, test_cli_against_daemon);
  tcase_add_test(tc, test_kcpsd_program);
  tcase_add_test(tc, test_daemon_config_errors);
  tcase_add_test(tc, test_kcpsd_settings);
  tcase_add_test(tc, test_kcpsd_periodic_expiry);
  suite_add_tcase(s, tc);

  tc = tcase_create("settings");
  tcase_add_checked_fixture(tc, daemon_setup, daemon_teardown);
  tcase_add_test(tc, test_expire_jobs);
  tcase_add_test(tc, test_expire_many);
  tcase_add_test(tc, test_daemon_max_document_size);
  suite_add_tcase(s, tc);
  return s;
}

int main(void)
{
  SRunner *runner = srunner_create(client_suite());
  srunner_run_all(runner, CK_NORMAL);
  int failed = srunner_ntests_failed(runner);
  srunner_free(runner);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
