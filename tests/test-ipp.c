/* Tests of the virtual printer, driven in-process with libcups's client
 * API: printer attributes, Print-Job into the spool, every accepted format
 * becoming a PDF, refusals of bad documents and bad requests, Create-Job /
 * Send-Document / Close-Job / Cancel-My-Jobs, job queries, owners and user
 * mode. */
#include <arpa/inet.h>
#include <check.h>
#include <cups/cups.h>
#include <errno.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ipp/ipp-private.h"
#include "ipp/ipp-server.h"

#define TEST_PDF "/usr/share/cups/data/default-testpage.pdf"

/* ---- fixture: a spool and a server on a free port --------------------- */

static char *tmp_root; /* made in the parent process for a TCase */
static char *tmp_dir;  /* one test's folder inside tmp_root */
static kcps_spool_t *spool;
static kcps_ipp_server_t *server;
static char *mounted_spool; /* a tmpfs a test mounted over the spool */
static GMutex cb_lock;
static int cb_count;
static kcps_job_t *cb_last;

static void on_job(const kcps_job_t *job, void *data) {
  ck_assert_ptr_eq(data, &cb_count);
  g_mutex_lock(&cb_lock);
  cb_count++;
  kcps_job_free(cb_last);
  cb_last = kcps_job_copy(job);
  g_mutex_unlock(&cb_lock);
}

static void start_server(bool user_mode, uid_t user_uid) {
  GError *error = NULL;
  kcps_ipp_config_t config = {.port = 0, .name = "KCPS", .user_mode = user_mode,
                              .user_uid = user_uid};
  server = kcps_ipp_server_new(&config, spool, on_job, &cb_count, &error);
  ck_assert_msg(server != NULL, "server: %s", error ? error->message : "?");
  ck_assert_int_gt(kcps_ipp_server_port(server), 0);
}

static void setup_spool(void) {
  tmp_dir = g_build_filename(tmp_root, "test-XXXXXX", NULL);
  ck_assert_ptr_nonnull(g_mkdtemp(tmp_dir));
  g_autofree char *dir = g_build_filename(tmp_dir, "spool", NULL);
  GError *error = NULL;
  spool = kcps_spool_open(dir, &error);
  ck_assert_msg(spool != NULL, "spool: %s", error ? error->message : "?");
  cb_count = 0;
  cb_last = NULL;
}

static void setup(void) {
  setup_spool();
  start_server(false, 0);
}

static void remove_tree(const char *path) {
  GDir *d = g_dir_open(path, 0, NULL);
  if (d != NULL) {
    const char *name;
    while ((name = g_dir_read_name(d)) != NULL) {
      g_autofree char *child = g_build_filename(path, name, NULL);
      if (g_file_test(child, G_FILE_TEST_IS_DIR) && !g_file_test(child, G_FILE_TEST_IS_SYMLINK))
        remove_tree(child);
      else
        g_unlink(child);
    }
    g_dir_close(d);
  }
  g_rmdir(path);
}

/* The TCase's folder, made and removed in the parent process: removed
 * even when a test fails (Check then skips the test's own teardown). */
static void setup_root(void) {
  tmp_root = g_dir_make_tmp("kcps-test-ipp-XXXXXX", NULL);
  g_assert(tmp_root != NULL);
}

static void teardown_root(void) {
  remove_tree(tmp_root);
  g_clear_pointer(&tmp_root, g_free);
}

static void teardown(void) {
  kcps_ipp_server_free(server);
  server = NULL;
  kcps_spool_close(spool);
  spool = NULL;
  if (mounted_spool != NULL) {
    umount2(mounted_spool, MNT_DETACH);
    g_clear_pointer(&mounted_spool, g_free);
  }
  kcps_job_free(cb_last);
  cb_last = NULL;
  remove_tree(tmp_dir);
  g_clear_pointer(&tmp_dir, g_free);
}

/* ---- client helpers --------------------------------------------------- */

static http_t *connect_to(const char *host) {
  http_t *http = httpConnect2(host, kcps_ipp_server_port(server), NULL, AF_UNSPEC,
                              HTTP_ENCRYPTION_NEVER, 1, 10000, NULL);
  ck_assert_msg(http != NULL, "connect to %s:%d failed", host, kcps_ipp_server_port(server));
  return http;
}

static char *printer_uri(void) {
  return g_strdup_printf("ipp://localhost:%d/ipp/print", kcps_ipp_server_port(server));
}

static ipp_t *new_request(ipp_op_t op, const char *user) {
  ipp_t *request = ippNewRequest(op);
  g_autofree char *uri = printer_uri();
  ippAddString(request, IPP_TAG_OPERATION, IPP_TAG_URI, "printer-uri", NULL, uri);
  if (user != NULL)
    ippAddString(request, IPP_TAG_OPERATION, IPP_TAG_NAME, "requesting-user-name", NULL, user);
  return request;
}

/* Sends a Print-Job with data as the document, in chunks, chunked or with
 * a length. Returns the response (caller ippDeletes). */
static ipp_t *print_data(http_t *http, const char *user, const char *format, const void *data,
                         size_t len, bool chunked) {
  ipp_t *request = new_request(IPP_OP_PRINT_JOB, user);
  ippAddString(request, IPP_TAG_OPERATION, IPP_TAG_NAME, "job-name", NULL, "test job");
  if (format != NULL)
    ippAddString(request, IPP_TAG_OPERATION, IPP_TAG_MIMETYPE, "document-format", NULL, format);
  http_status_t status =
    cupsSendRequest(http, request, "/ipp/print",
                    chunked ? CUPS_LENGTH_VARIABLE : ippLength(request) + len);
  const char *p = data;
  for (size_t off = 0; status == HTTP_STATUS_CONTINUE && off < len; off += 8192)
    status = cupsWriteRequestData(http, p + off, MIN(8192, len - off));
  ipp_t *response = cupsGetResponse(http, "/ipp/print");
  ippDelete(request);
  ck_assert_msg(response != NULL, "no IPP response (%s)", cupsLastErrorString());
  return response;
}

static ipp_t *print_file(http_t *http, const char *user, const char *format, const char *path,
                         bool chunked) {
  g_autofree char *data = NULL;
  gsize len = 0;
  ck_assert_msg(g_file_get_contents(path, &data, &len, NULL), "cannot read %s", path);
  return print_data(http, user, format, data, len, chunked);
}

static void assert_status(ipp_t *response, ipp_status_t want) {
  ipp_status_t got = ippGetStatusCode(response);
  ipp_attribute_t *msg = ippFindAttribute(response, "status-message", IPP_TAG_TEXT);
  ck_assert_msg(got == want, "status: got %s (%s), expected %s", ippErrorString(got),
                msg ? ippGetString(msg, 0, NULL) : "", ippErrorString(want));
}

static const char *status_message(ipp_t *response) {
  ipp_attribute_t *msg = ippFindAttribute(response, "status-message", IPP_TAG_TEXT);
  return msg != NULL ? ippGetString(msg, 0, NULL) : "";
}

static guint spooled_jobs(void) {
  GPtrArray *jobs = kcps_spool_list_jobs(spool, (uid_t)-1, NULL);
  ck_assert_ptr_nonnull(jobs);
  guint n = jobs->len;
  g_ptr_array_unref(jobs);
  return n;
}

/* Files left anywhere under the spool folder (besides the index). */
static int spool_files(const char *dir) {
  int n = 0;
  GDir *d = g_dir_open(dir, 0, NULL);
  if (d == NULL)
    return 0;
  const char *name;
  while ((name = g_dir_read_name(d)) != NULL) {
    g_autofree char *child = g_build_filename(dir, name, NULL);
    if (g_file_test(child, G_FILE_TEST_IS_DIR))
      n += spool_files(child);
    else if (!g_str_has_prefix(name, "spool.db"))
      n++;
  }
  g_dir_close(d);
  return n;
}

static int count_spool_files(void) {
  g_autofree char *dir = g_build_filename(tmp_dir, "spool", NULL);
  return spool_files(dir);
}

/* Sends raw bytes on a fresh connection and returns what came back until
 * the server closed (caller g_frees). */
static char *raw_exchange(const void *data, size_t len) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sin = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)kcps_ipp_server_port(server))};
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ck_assert_int_eq(connect(fd, (struct sockaddr *)&sin, sizeof sin), 0);
  ck_assert_int_eq(send(fd, data, len, MSG_NOSIGNAL), (ssize_t)len);
  shutdown(fd, SHUT_WR);
  GString *got = g_string_new(NULL);
  char buf[4096];
  ssize_t n;
  struct timeval tv = {10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  while ((n = recv(fd, buf, sizeof buf, 0)) > 0)
    g_string_append_len(got, buf, n);
  close(fd);
  return g_string_free(got, FALSE);
}

/* ---- Get-Printer-Attributes ------------------------------------------- */

static ipp_t *get_printer_attrs(http_t *http, int n, const char *const *requested) {
  ipp_t *request = new_request(IPP_OP_GET_PRINTER_ATTRIBUTES, NULL);
  if (n > 0)
    ippAddStrings(request, IPP_TAG_OPERATION, IPP_TAG_KEYWORD, "requested-attributes", n, NULL,
                  requested);
  ipp_t *response = cupsDoRequest(http, request, "/ipp/print");
  ck_assert_msg(response != NULL, "no response: %s", cupsLastErrorString());
  assert_status(response, IPP_STATUS_OK);
  return response;
}

START_TEST(test_printer_attributes) {
  http_t *http = connect_to("127.0.0.1");
  ipp_t *r = get_printer_attrs(http, 0, NULL);

  ipp_attribute_t *a = ippFindAttribute(r, "printer-name", IPP_TAG_NAME);
  ck_assert_ptr_nonnull(a);
  ck_assert_str_eq(ippGetString(a, 0, NULL), "KCPS");
  a = ippFindAttribute(r, "document-format-supported", IPP_TAG_MIMETYPE);
  ck_assert_msg(a != NULL && ippContainsString(a, "application/pdf"),
                "document-format-supported lacks application/pdf");
  a = ippFindAttribute(r, "operations-supported", IPP_TAG_ENUM);
  ck_assert(a != NULL && ippContainsInteger(a, IPP_OP_PRINT_JOB) &&
            ippContainsInteger(a, IPP_OP_GET_PRINTER_ATTRIBUTES) &&
            ippContainsInteger(a, IPP_OP_GET_JOBS));
  a = ippFindAttribute(r, "ipp-versions-supported", IPP_TAG_KEYWORD);
  ck_assert(a != NULL && ippContainsString(a, "1.1") && ippContainsString(a, "2.0"));
  a = ippFindAttribute(r, "printer-state", IPP_TAG_ENUM);
  ck_assert(a != NULL && ippGetInteger(a, 0) == IPP_PSTATE_IDLE);
  a = ippFindAttribute(r, "printer-is-accepting-jobs", IPP_TAG_BOOLEAN);
  ck_assert(a != NULL && ippGetBoolean(a, 0));
  a = ippFindAttribute(r, "printer-uri-supported", IPP_TAG_URI);
  g_autofree char *uri = printer_uri();
  ck_assert(a != NULL);
  ck_assert_str_eq(ippGetString(a, 0, NULL), uri);
  a = ippFindAttribute(r, "printer-uuid", IPP_TAG_URI);
  ck_assert(a != NULL && g_str_has_prefix(ippGetString(a, 0, NULL), "urn:uuid:"));
  ck_assert_ptr_nonnull(ippFindAttribute(r, "media-col-default", IPP_TAG_BEGIN_COLLECTION));
  ck_assert_ptr_nonnull(ippFindAttribute(r, "printer-up-time", IPP_TAG_INTEGER));
  /* Exactly what is accepted is advertised. */
  a = ippFindAttribute(r, "document-format-supported", IPP_TAG_MIMETYPE);
  static const char *const accepted[] = {"application/pdf", "application/octet-stream",
                                         "image/jpeg", "image/png", "image/pwg-raster",
                                         "image/urf"};
  ck_assert_msg(ippGetCount(a) == (int)G_N_ELEMENTS(accepted),
                "document-format-supported: got %d values, expected %d", ippGetCount(a),
                (int)G_N_ELEMENTS(accepted));
  for (size_t i = 0; i < G_N_ELEMENTS(accepted); i++)
    ck_assert_msg(ippContainsString(a, accepted[i]), "document-format-supported lacks %s",
                  accepted[i]);
  a = ippFindAttribute(r, "operations-supported", IPP_TAG_ENUM);
  static const int job_ops[] = {IPP_OP_CREATE_JOB, IPP_OP_SEND_DOCUMENT, IPP_OP_CLOSE_JOB,
                                IPP_OP_CANCEL_MY_JOBS, IPP_OP_CANCEL_JOB};
  for (size_t i = 0; i < G_N_ELEMENTS(job_ops); i++)
    ck_assert_msg(ippContainsInteger(a, job_ops[i]), "operations-supported lacks %s",
                  ippOpString(job_ops[i]));
  a = ippFindAttribute(r, "multiple-document-jobs-supported", IPP_TAG_BOOLEAN);
  ck_assert_msg(a != NULL && !ippGetBoolean(a, 0), "multiple-document-jobs-supported: false");
  a = ippFindAttribute(r, "urf-supported", IPP_TAG_KEYWORD);
  ck_assert_msg(a != NULL && ippContainsString(a, "RS150-300") && ippContainsString(a, "W8") &&
                  ippContainsString(a, "SRGB24"),
                "urf-supported lacks the resolutions or colour spaces convert/ takes");
  /* media-col-database only when asked for by name. */
  ck_assert_ptr_null(ippFindAttribute(r, "media-col-database", IPP_TAG_ZERO));
  ippDelete(r);

  static const char *const all_db[] = {"all", "media-col-database"};
  r = get_printer_attrs(http, 2, all_db);
  a = ippFindAttribute(r, "media-col-database", IPP_TAG_BEGIN_COLLECTION);
  ck_assert_msg(a != NULL && ippGetCount(a) >= 2, "media-col-database missing or short");
  ck_assert_ptr_nonnull(ippFindAttribute(r, "printer-name", IPP_TAG_NAME));
  ippDelete(r);

  /* "all" means every attribute, also those libcups's group lists lack. */
  static const char *const all[] = {"all"};
  r = get_printer_attrs(http, 1, all);
  ck_assert_ptr_nonnull(ippFindAttribute(r, "pdl-override-supported", IPP_TAG_KEYWORD));
  ck_assert_ptr_nonnull(ippFindAttribute(r, "copies-default", IPP_TAG_INTEGER));
  ck_assert_ptr_null(ippFindAttribute(r, "media-col-database", IPP_TAG_ZERO));
  ippDelete(r);

  static const char *const desc[] = {"printer-description"};
  r = get_printer_attrs(http, 1, desc);
  ck_assert_ptr_nonnull(ippFindAttribute(r, "printer-make-and-model", IPP_TAG_TEXT));
  ck_assert_msg(ippFindAttribute(r, "copies-default", IPP_TAG_ZERO) == NULL,
                "job-template attribute in a printer-description answer");
  ippDelete(r);

  static const char *const tmpl[] = {"job-template"};
  r = get_printer_attrs(http, 1, tmpl);
  ck_assert_ptr_nonnull(ippFindAttribute(r, "copies-default", IPP_TAG_INTEGER));
  ck_assert_ptr_nonnull(ippFindAttribute(r, "media-supported", IPP_TAG_KEYWORD));
  ck_assert_ptr_null(ippFindAttribute(r, "printer-name", IPP_TAG_ZERO));
  ippDelete(r);

  static const char *const two[] = {"printer-state", "queued-job-count"};
  r = get_printer_attrs(http, 2, two);
  ck_assert_ptr_nonnull(ippFindAttribute(r, "printer-state", IPP_TAG_ENUM));
  ck_assert_ptr_nonnull(ippFindAttribute(r, "queued-job-count", IPP_TAG_INTEGER));
  ck_assert_ptr_null(ippFindAttribute(r, "printer-name", IPP_TAG_ZERO));
  ippDelete(r);
  httpClose(http);
}
END_TEST

/* The attributes IPP Everywhere (ipp-everywhere.test, PWG 5100.14) asks
 * for beyond IPP/2.0. */
START_TEST(test_everywhere_attributes) {
  http_t *http = connect_to("127.0.0.1");
  ipp_t *r = get_printer_attrs(http, 0, NULL);
  ipp_attribute_t *a = ippFindAttribute(r, "ipp-features-supported", IPP_TAG_KEYWORD);
  ck_assert(a != NULL && ippContainsString(a, "ipp-everywhere"));
  a = ippFindAttribute(r, "job-ids-supported", IPP_TAG_BOOLEAN);
  ck_assert_msg(a != NULL && ippGetBoolean(a, 0), "job-ids-supported: expected true");
  a = ippFindAttribute(r, "page-ranges-supported", IPP_TAG_BOOLEAN);
  ck_assert_msg(a != NULL && ippGetBoolean(a, 0), "page-ranges-supported: expected true");
  a = ippFindAttribute(r, "overrides-supported", IPP_TAG_KEYWORD);
  ck_assert(a != NULL && ippContainsString(a, "document-number") &&
            ippContainsString(a, "pages"));
  a = ippFindAttribute(r, "job-creation-attributes-supported", IPP_TAG_KEYWORD);
  ck_assert(a != NULL && ippContainsString(a, "page-ranges") &&
            ippContainsString(a, "overrides"));

  /* printer-icons points at the icon this server serves. */
  a = ippFindAttribute(r, "printer-icons", IPP_TAG_URI);
  ck_assert_ptr_nonnull(a);
  g_autofree char *icon = g_strdup_printf("http://localhost:%d/icon.png",
                                          kcps_ipp_server_port(server));
  ck_assert_str_eq(ippGetString(a, 0, NULL), icon);

  /* Supplies: as many printer-supply as descriptions, and an info URI. */
  a = ippFindAttribute(r, "printer-supply", IPP_TAG_STRING);
  ipp_attribute_t *d = ippFindAttribute(r, "printer-supply-description", IPP_TAG_TEXT);
  ck_assert(a != NULL && d != NULL);
  ck_assert_int_eq(ippGetCount(a), ippGetCount(d));
  int len = 0;
  const char *supply = ippGetOctetString(a, 0, &len);
  ck_assert_msg(len > 0 && g_strstr_len(supply, len, "level=-3;") != NULL,
                "printer-supply: %.*s", len, supply);
  ck_assert_ptr_nonnull(ippFindAttribute(r, "printer-supply-info-uri", IPP_TAG_URI));

  /* PWG raster: resolutions convert/ takes (the raster tests of
   * ipp-everywhere.test print at each). */
  a = ippFindAttribute(r, "pwg-raster-document-resolution-supported", IPP_TAG_RESOLUTION);
  ck_assert_ptr_nonnull(a);
  ck_assert_int_eq(ippGetCount(a), 2);
  ipp_res_t units;
  int y;
  ck_assert_int_eq(ippGetResolution(a, 0, &y, &units), 150);
  ck_assert_int_eq(ippGetResolution(a, 1, &y, &units), 300);
  ck_assert_ptr_nonnull(ippFindAttribute(r, "pwg-raster-document-type-supported", IPP_TAG_KEYWORD));
  ck_assert_ptr_nonnull(ippFindAttribute(r, "pwg-raster-document-sheet-back", IPP_TAG_KEYWORD));
  a = ippFindAttribute(r, "printer-uuid", IPP_TAG_URI);
  ck_assert(a != NULL);
  ck_assert_msg(g_regex_match_simple("^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-"
                                     "[0-9a-f]{12}$",
                                     ippGetString(a, 0, NULL), 0, 0),
                "printer-uuid: %s", ippGetString(a, 0, NULL));
  ippDelete(r);
  httpClose(http);

  /* The icon itself: a PNG over plain HTTP GET. */
  static const char get[] = "GET /icon.png HTTP/1.1\r\nHost: localhost\r\n"
                            "Connection: close\r\n\r\n";
  g_autofree char *got = raw_exchange(get, strlen(get));
  ck_assert_msg(g_str_has_prefix(got, "HTTP/1.1 200"), "GET /icon.png: %.40s", got);
  ck_assert_msg(strstr(got, "image/png") != NULL, "no image/png Content-Type");
  ck_assert_msg(strstr(got, "\r\n\r\n\x89PNG\r\n\x1a\n") != NULL, "body is not a PNG");
}
END_TEST


START_TEST(test_ipv6_loopback) {
  http_t *http = httpConnect2("::1", kcps_ipp_server_port(server), NULL, AF_INET6,
                              HTTP_ENCRYPTION_NEVER, 1, 10000, NULL);
  if (http == NULL) {
    fprintf(stderr, "no IPv6 loopback here; skipped\n");
    return;
  }
  ipp_t *r = get_printer_attrs(http, 0, NULL);
  ck_assert_ptr_nonnull(ippFindAttribute(r, "printer-name", IPP_TAG_NAME));
  ippDelete(r);
  /* A job over IPv6 too (the owner lookup reads /proc/net/tcp6). */
  r = print_file(http, NULL, "application/pdf", TEST_PDF, false);
  assert_status(r, IPP_STATUS_OK);
  ippDelete(r);
  ck_assert_uint_eq(spooled_jobs(), 1);
  httpClose(http);
}
END_TEST

/* ---- Print-Job ---------------------------------------------------------- */

START_TEST(test_print_pdf) {
  http_t *http = connect_to("localhost");
  uid_t nobody = 65534;
  /* We run as root, a print system account: requesting-user-name counts. */
  bool as_root = getuid() == 0;
  ipp_t *r = print_file(http, as_root ? "nobody" : NULL, "application/pdf", TEST_PDF, _i == 1);
  assert_status(r, IPP_STATUS_OK);
  ipp_attribute_t *a = ippFindAttribute(r, "job-id", IPP_TAG_INTEGER);
  ck_assert_msg(a != NULL && ippGetInteger(a, 0) >= 1, "no job-id");
  int job_id = ippGetInteger(a, 0);
  a = ippFindAttribute(r, "job-state", IPP_TAG_ENUM);
  ck_assert_msg(a != NULL && ippGetInteger(a, 0) == IPP_JSTATE_COMPLETED,
                "job-state: got %d, expected 9", a ? ippGetInteger(a, 0) : -1);
  a = ippFindAttribute(r, "job-state-reasons", IPP_TAG_KEYWORD);
  ck_assert(a != NULL && ippContainsString(a, "job-completed-successfully"));
  a = ippFindAttribute(r, "job-uri", IPP_TAG_URI);
  g_autofree char *want_uri = g_strdup_printf("ipp://localhost:%d/ipp/print/%d",
                                              kcps_ipp_server_port(server), job_id);
  ck_assert(a != NULL);
  ck_assert_str_eq(ippGetString(a, 0, NULL), want_uri);
  ippDelete(r);

  /* Spooled durably before the answer, and the callback ran. */
  uid_t want_owner = as_root ? nobody : getuid();
  GPtrArray *jobs = kcps_spool_list_jobs(spool, want_owner, NULL);
  ck_assert_msg(jobs->len == 1, "jobs of uid %u: got %u, expected 1", (unsigned)want_owner,
                jobs->len);
  kcps_job_t *job = jobs->pdata[0];
  ck_assert_int_eq(job->pages, 1);
  ck_assert_int_eq(job->size, 110125);
  ck_assert_str_eq(job->name, "test job");
  ck_assert_str_eq(job->format, "application/pdf");
  g_mutex_lock(&cb_lock);
  ck_assert_int_eq(cb_count, 1);
  ck_assert_str_eq(cb_last->id, job->id);
  ck_assert_int_eq(cb_last->owner_uid, want_owner);
  g_mutex_unlock(&cb_lock);
  g_ptr_array_unref(jobs);

  /* Keep-alive: a second job on the same connection. */
  r = print_file(http, as_root ? "nobody" : NULL, NULL, TEST_PDF, _i == 0);
  assert_status(r, IPP_STATUS_OK);
  a = ippFindAttribute(r, "job-id", IPP_TAG_INTEGER);
  ck_assert_int_eq(ippGetInteger(a, 0), job_id + 1);
  ippDelete(r);
  ck_assert_uint_eq(spooled_jobs(), 2);
  httpClose(http);
}
END_TEST

START_TEST(test_print_multipage) {
  g_autofree char *out = g_build_filename(tmp_dir, "three.pdf", NULL);
  g_autofree char *cmd =
    g_strdup_printf("qpdf --empty --pages " TEST_PDF " " TEST_PDF " " TEST_PDF " -- %s", out);
  int status = 0;
  if (!g_spawn_command_line_sync(cmd, NULL, NULL, &status, NULL) || status != 0) {
    fprintf(stderr, "qpdf not usable; skipped\n");
    return;
  }
  http_t *http = connect_to("127.0.0.1");
  ipp_t *r = print_file(http, NULL, "application/octet-stream", out, true);
  assert_status(r, IPP_STATUS_OK);
  ippDelete(r);
  g_mutex_lock(&cb_lock);
  ck_assert_msg(cb_last != NULL && cb_last->pages == 3, "pages: got %d, expected 3",
                cb_last ? cb_last->pages : -1);
  g_mutex_unlock(&cb_lock);
  httpClose(http);
}
END_TEST

/* Documents that must be refused with nothing spooled. */
static const struct {
  const char *what;
  const char *format;
  const char *data;
  ipp_status_t want;
  const char *message_part;
} bad_documents[] = {
  {"text as PDF", "application/pdf", "Hello, printer. SECRET-LINE\n",
   IPP_STATUS_ERROR_DOCUMENT_FORMAT_ERROR, "not a PDF"},
  {"damaged PDF", "application/pdf", "%PDF-1.4\n1 0 obj garbage SECRET-LINE\n%%EOF\n",
   IPP_STATUS_ERROR_DOCUMENT_FORMAT_ERROR, "PDF"},
  {"empty document", "application/pdf", "", IPP_STATUS_ERROR_DOCUMENT_FORMAT_ERROR, "empty"},
  {"auto-typed text", "application/octet-stream", "just text SECRET-LINE\n",
   IPP_STATUS_ERROR_DOCUMENT_FORMAT_NOT_SUPPORTED, "not a PDF"},
  {"text/plain", "text/plain", "plain text SECRET-LINE\n",
   IPP_STATUS_ERROR_DOCUMENT_FORMAT_NOT_SUPPORTED, "application/pdf"},
  {"PostScript", "application/postscript", "%!PS-Adobe-3.0\n",
   IPP_STATUS_ERROR_DOCUMENT_FORMAT_NOT_SUPPORTED, "application/pdf"},
};

START_TEST(test_refuse_document) {
  http_t *http = connect_to("127.0.0.1");
  const char *data = bad_documents[_i].data;
  ipp_t *r = print_data(http, NULL, bad_documents[_i].format, data, strlen(data), false);
  assert_status(r, bad_documents[_i].want);
  const char *msg = status_message(r);
  ck_assert_msg(strstr(msg, bad_documents[_i].message_part) != NULL,
                "%s: status-message \"%s\" lacks \"%s\"", bad_documents[_i].what, msg,
                bad_documents[_i].message_part);
  ck_assert_msg(strstr(msg, "SECRET") == NULL, "status-message echoes the document: %s", msg);
  ippDelete(r);
  ck_assert_uint_eq(spooled_jobs(), 0);
  ck_assert_int_eq(count_spool_files(), 0);
  ck_assert_int_eq(cb_count, 0);

  /* The connection still works afterwards. */
  r = print_file(http, NULL, "application/pdf", TEST_PDF, false);
  assert_status(r, IPP_STATUS_OK);
  ippDelete(r);
  httpClose(http);
}
END_TEST

START_TEST(test_too_large) {
  kcps_spool_set_max_size(spool, 50000);
  http_t *http = connect_to("127.0.0.1");
  ipp_t *r = print_file(http, NULL, "application/pdf", TEST_PDF, false);
  assert_status(r, IPP_STATUS_ERROR_REQUEST_ENTITY);
  ippDelete(r);
  ck_assert_uint_eq(spooled_jobs(), 0);
  ck_assert_int_eq(count_spool_files(), 0);
  httpClose(http);
}
END_TEST

START_TEST(test_clean_job_name) {
  char long_name[400];
  memset(long_name, 'a', sizeof long_name - 1);
  long_name[sizeof long_name - 1] = '\0';
  /* 254 ASCII bytes then a 2-byte character: the cut may not split it. */
  char split[300];
  memset(split, 'b', 254);
  strcpy(split + 254, "\xc3\xa9tail");

  static const struct {
    const char *raw;
    bool from_print_system;
    const char *expected;
  } table[] = {
    {"Report.pdf", false, "Report.pdf"},
    {"12 - Report.pdf", true, "Report.pdf"},
    {"12 - Report.pdf", false, "12 - Report.pdf"}, /* only CUPS's prefix is CUPS's */
    {"12 - ", true, "12 -"},
    {"12-Report", true, "12-Report"},
    {"a\tb\nc\x7f", false, "a b c"},
    {"  padded  ", false, "padded"},
    {"bad \xff utf8", false, "bad \xef\xbf\xbd utf8"},
    {"", false, "Untitled"},
    {NULL, false, "Untitled"},
    {"\n\r", false, "Untitled"},
  };
  for (size_t i = 0; i < G_N_ELEMENTS(table); i++) {
    g_autofree char *got = kcps__ipp_clean_job_name(table[i].raw, table[i].from_print_system);
    ck_assert_msg(strcmp(got, table[i].expected) == 0, "clean(\"%s\"): got \"%s\", expected \"%s\"",
                  table[i].raw ? table[i].raw : "(null)", got, table[i].expected);
  }

  g_autofree char *cut = kcps__ipp_clean_job_name(long_name, false);
  ck_assert_uint_eq(strlen(cut), 255);
  g_autofree char *cut2 = kcps__ipp_clean_job_name(split, false);
  ck_assert_uint_eq(strlen(cut2), 254);
  ck_assert(g_utf8_validate(cut2, -1, NULL));
}
END_TEST

START_TEST(test_validate_job) {
  http_t *http = connect_to("127.0.0.1");
  ipp_t *request = new_request(IPP_OP_VALIDATE_JOB, NULL);
  ippAddString(request, IPP_TAG_OPERATION, IPP_TAG_MIMETYPE, "document-format", NULL,
               "application/pdf");
  ipp_t *r = cupsDoRequest(http, request, "/ipp/print");
  assert_status(r, IPP_STATUS_OK);
  ippDelete(r);

  request = new_request(IPP_OP_VALIDATE_JOB, NULL);
  ippAddString(request, IPP_TAG_OPERATION, IPP_TAG_MIMETYPE, "document-format", NULL,
               "image/gif");
  r = cupsDoRequest(http, request, "/ipp/print");
  assert_status(r, IPP_STATUS_ERROR_DOCUMENT_FORMAT_NOT_SUPPORTED);
  ck_assert_ptr_nonnull(ippFindAttribute(r, "document-format", IPP_TAG_MIMETYPE));
  ippDelete(r);

  request = new_request(IPP_OP_VALIDATE_JOB, NULL);
  ippAddString(request, IPP_TAG_OPERATION, IPP_TAG_KEYWORD, "compression", NULL, "gzip");
  r = cupsDoRequest(http, request, "/ipp/print");
  assert_status(r, IPP_STATUS_ERROR_ATTRIBUTES_OR_VALUES);
  ippDelete(r);
  ck_assert_uint_eq(spooled_jobs(), 0);
  httpClose(http);
}
END_TEST

/* ---- bad requests ------------------------------------------------------- */

/* Requests built by hand to miss what every request needs. */
static ipp_t *request_without(const char *missing) {
  ipp_t *request = ippNew();
  ippSetOperation(request, IPP_OP_GET_PRINTER_ATTRIBUTES);
  ippSetRequestId(request, 1);
  ippSetVersion(request, 2, 0);
  if (strcmp(missing, "charset") != 0)
    ippAddString(request, IPP_TAG_OPERATION, IPP_TAG_CHARSET, "attributes-charset", NULL,
                 "utf-8");
  if (strcmp(missing, "language") != 0)
    ippAddString(request, IPP_TAG_OPERATION, IPP_TAG_LANGUAGE, "attributes-natural-language",
                 NULL, "en");
  if (strcmp(missing, "printer-uri") != 0) {
    g_autofree char *uri = printer_uri();
    ippAddString(request, IPP_TAG_OPERATION, IPP_TAG_URI, "printer-uri", NULL, uri);
  }
  return request;
}

START_TEST(test_missing_attributes) {
  static const char *const cases[] = {"charset", "language", "printer-uri"};
  http_t *http = connect_to("127.0.0.1");
  for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
    ipp_t *r = cupsDoRequest(http, request_without(cases[i]), "/ipp/print");
    ck_assert_msg(r != NULL, "%s: no response", cases[i]);
    ck_assert_msg(ippGetStatusCode(r) == IPP_STATUS_ERROR_BAD_REQUEST,
                  "without %s: got %s, expected client-error-bad-request", cases[i],
                  ippErrorString(ippGetStatusCode(r)));
    ippDelete(r);
  }

  /* Print-Job without printer-uri: refused, nothing spooled. */
  ipp_t *request = request_without("printer-uri");
  ippSetOperation(request, IPP_OP_PRINT_JOB);
  ipp_t *r = cupsDoFileRequest(http, request, "/ipp/print", TEST_PDF);
  assert_status(r, IPP_STATUS_ERROR_BAD_REQUEST);
  ippDelete(r);

  /* Another printer, an unsupported operation, a bad version. */
  request = ippNewRequest(IPP_OP_GET_PRINTER_ATTRIBUTES);
  ippAddString(request, IPP_TAG_OPERATION, IPP_TAG_URI, "printer-uri", NULL,
               "ipp://localhost/printers/other");
  r = cupsDoRequest(http, request, "/ipp/print");
  assert_status(r, IPP_STATUS_ERROR_NOT_FOUND);
  ippDelete(r);
  r = cupsDoRequest(http, new_request(IPP_OP_PAUSE_PRINTER, NULL), "/ipp/print");
  assert_status(r, IPP_STATUS_ERROR_OPERATION_NOT_SUPPORTED);
  ippDelete(r);
  request = new_request(IPP_OP_GET_PRINTER_ATTRIBUTES, NULL);
  ippSetVersion(request, 3, 0);
  r = cupsDoRequest(http, request, "/ipp/print");
  assert_status(r, IPP_STATUS_ERROR_VERSION_NOT_SUPPORTED);
  ippDelete(r);
  ck_assert_uint_eq(spooled_jobs(), 0);
  httpClose(http);
}
END_TEST

/* Raw exchanges that must end in an HTTP error and a closed connection. */
static const struct {
  const char *what;
  const char *head;      /* sent first */
  size_t body_len;       /* then this many bytes of body */
  const char *body;
  const char *want;      /* start of the answer */
} raw_cases[] = {
  {"binary garbage", "\x16\x03\x01\x02garbage\x01\x02\r\n\r\n", 0, NULL, "HTTP/1.1 400"},
  {"no version", "GET /\r\n\r\n", 0, NULL, "HTTP/1.1 400"},
  {"unknown method", "FROB /ipp/print HTTP/1.1\r\nHost: localhost\r\n\r\n", 0, NULL,
   "HTTP/1.1 400"},
  {"garbage IPP body",
   "POST /ipp/print HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/ipp\r\n"
   "Content-Length: 24\r\n\r\n",
   24, "this is not IPP at all!!", "HTTP/1.1 400"},
  {"truncated IPP",
   "POST /ipp/print HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/ipp\r\n"
   "Content-Length: 20\r\n\r\n",
   20, "\x02\x00\x00\x02\x00\x00\x00\x01\x01\x47\x00\x12" "attributes-", "HTTP/1.1 400"},
  {"wrong content type",
   "POST /ipp/print HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/plain\r\n"
   "Content-Length: 4\r\n\r\n",
   4, "%PDF", "HTTP/1.1 400"},
  {"other resource",
   "POST /printers/x HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/ipp\r\n"
   "Content-Length: 0\r\n\r\n",
   0, NULL, "HTTP/1.1 404"},
  {"job resource other than a number",
   "POST /ipp/print/x HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/ipp\r\n"
   "Content-Length: 0\r\n\r\n",
   0, NULL, "HTTP/1.1 404"},
  {"foreign Host (DNS rebinding)", "GET / HTTP/1.1\r\nHost: evil.example:5570\r\n\r\n", 0, NULL,
   "HTTP/1.1 400"},
  {"status page", "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", 0, NULL,
   "HTTP/1.1 200"},
  {"OPTIONS", "OPTIONS * HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", 0, NULL,
   "HTTP/1.1 200"},
  {"unknown page", "GET /admin HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", 0,
   NULL, "HTTP/1.1 404"},
};

START_TEST(test_raw_http) {
  GString *msg = g_string_new(raw_cases[_i].head);
  if (raw_cases[_i].body != NULL)
    g_string_append_len(msg, raw_cases[_i].body, (gssize)raw_cases[_i].body_len);
  g_autofree char *answer = raw_exchange(msg->str, msg->len);
  g_string_free(msg, TRUE);
  ck_assert_msg(g_str_has_prefix(answer, raw_cases[_i].want), "%s: got \"%.40s\", expected %s",
                raw_cases[_i].what, answer, raw_cases[_i].want);
  ck_assert_uint_eq(spooled_jobs(), 0);
  ck_assert_int_eq(count_spool_files(), 0);

  /* The server still serves others. */
  http_t *http = connect_to("127.0.0.1");
  ipp_t *r = get_printer_attrs(http, 0, NULL);
  ippDelete(r);
  httpClose(http);
}
END_TEST

START_TEST(test_garbage_after_valid_ipp) {
  /* A Print-Job whose connection dies halfway through the document. */
  g_autofree char *pdf = NULL;
  gsize len = 0;
  ck_assert(g_file_get_contents(TEST_PDF, &pdf, &len, NULL));
  http_t *http = connect_to("127.0.0.1");
  ipp_t *request = new_request(IPP_OP_PRINT_JOB, NULL);
  http_status_t status =
    cupsSendRequest(http, request, "/ipp/print", ippLength(request) + len);
  ck_assert_int_eq(status, HTTP_STATUS_CONTINUE);
  ck_assert_int_eq(cupsWriteRequestData(http, pdf, len / 2), HTTP_STATUS_CONTINUE);
  httpClose(http);
  ippDelete(request);

  /* Wait until the server has dropped the half-written file. */
  for (int i = 0; i < 200 && count_spool_files() > 0; i++)
    g_usleep(10000);
  ck_assert_int_eq(count_spool_files(), 0);
  ck_assert_uint_eq(spooled_jobs(), 0);
  ck_assert_int_eq(cb_count, 0);
}
END_TEST

/* ---- job queries -------------------------------------------------------- */

static int print_ok(http_t *http, const char *user) {
  ipp_t *r = print_file(http, user, "application/pdf", TEST_PDF, false);
  assert_status(r, IPP_STATUS_OK);
  int id = ippGetInteger(ippFindAttribute(r, "job-id", IPP_TAG_INTEGER), 0);
  ippDelete(r);
  return id;
}

static int count_jobs_in(ipp_t *r) {
  int n = 0;
  for (ipp_attribute_t *a = ippFirstAttribute(r); a != NULL; a = ippNextAttribute(r))
    if (ippGetName(a) != NULL && strcmp(ippGetName(a), "job-id") == 0)
      n++;
  return n;
}

static ipp_t *get_jobs(http_t *http, const char *user, const char *which) {
  ipp_t *request = new_request(IPP_OP_GET_JOBS, user);
  if (which != NULL)
    ippAddString(request, IPP_TAG_OPERATION, IPP_TAG_KEYWORD, "which-jobs", NULL, which);
  ipp_t *r = cupsDoRequest(http, request, "/ipp/print");
  ck_assert_ptr_nonnull(r);
  return r;
}

START_TEST(test_jobs) {
  if (getuid() != 0) {
    fprintf(stderr, "not root: owners by requesting-user-name not testable; skipped\n");
    return;
  }
  http_t *http = connect_to("127.0.0.1");
  int a1 = print_ok(http, "nobody");
  int a2 = print_ok(http, "nobody");
  int b1 = print_ok(http, "daemon");

  ipp_t *r = get_jobs(http, "nobody", "completed");
  assert_status(r, IPP_STATUS_OK);
  ck_assert_msg(count_jobs_in(r) == 2, "nobody's jobs: got %d, expected 2", count_jobs_in(r));
  /* Most recent first. */
  ck_assert_int_eq(ippGetInteger(ippFindAttribute(r, "job-id", IPP_TAG_INTEGER), 0), a2);
  ippDelete(r);
  r = get_jobs(http, "nobody", "all");
  ck_assert_int_eq(count_jobs_in(r), 2);
  /* Without requested-attributes: job-id and job-uri only. */
  ck_assert_ptr_nonnull(ippFindAttribute(r, "job-uri", IPP_TAG_URI));
  ck_assert_ptr_null(ippFindAttribute(r, "job-name", IPP_TAG_ZERO));
  ippDelete(r);
  r = get_jobs(http, "daemon", "completed");
  ck_assert_int_eq(count_jobs_in(r), 1);
  ck_assert_int_eq(ippGetInteger(ippFindAttribute(r, "job-id", IPP_TAG_INTEGER), 0), b1);
  ippDelete(r);
  /* Nothing is ever pending: the default which-jobs lists none. */
  r = get_jobs(http, "nobody", NULL);
  assert_status(r, IPP_STATUS_OK);
  ck_assert_int_eq(count_jobs_in(r), 0);
  ippDelete(r);
  r = get_jobs(http, "nobody", "fetchable");
  assert_status(r, IPP_STATUS_ERROR_ATTRIBUTES_OR_VALUES);
  ippDelete(r);

  /* job-ids: those jobs whatever their state, the requester's only. */
  int ids[] = {a1, b1};
  ipp_t *request = new_request(IPP_OP_GET_JOBS, "nobody");
  ippAddIntegers(request, IPP_TAG_OPERATION, IPP_TAG_INTEGER, "job-ids", 2, ids);
  r = cupsDoRequest(http, request, "/ipp/print");
  assert_status(r, IPP_STATUS_OK);
  ck_assert_msg(count_jobs_in(r) == 1, "job-ids {a1, b1} for nobody: got %d jobs, expected 1",
                count_jobs_in(r));
  ck_assert_int_eq(ippGetInteger(ippFindAttribute(r, "job-id", IPP_TAG_INTEGER), 0), a1);
  ippDelete(r);
  request = new_request(IPP_OP_GET_JOBS, "nobody");
  ippAddIntegers(request, IPP_TAG_OPERATION, IPP_TAG_INTEGER, "job-ids", 1, ids);
  ippAddString(request, IPP_TAG_OPERATION, IPP_TAG_KEYWORD, "which-jobs", NULL, "all");
  r = cupsDoRequest(http, request, "/ipp/print");
  assert_status(r, IPP_STATUS_OK);
  ck_assert_int_eq(count_jobs_in(r), 1);
  ippDelete(r);
  request = new_request(IPP_OP_GET_JOBS, "nobody");
  ippAddIntegers(request, IPP_TAG_OPERATION, IPP_TAG_INTEGER, "job-ids", 1, ids);
  ippAddString(request, IPP_TAG_OPERATION, IPP_TAG_KEYWORD, "which-jobs", NULL, "completed");
  r = cupsDoRequest(http, request, "/ipp/print");
  assert_status(r, IPP_STATUS_ERROR_CONFLICTING);
  ippDelete(r);
  request = new_request(IPP_OP_GET_JOBS, "nobody");
  ippAddString(request, IPP_TAG_OPERATION, IPP_TAG_KEYWORD, "job-ids", NULL, "1");
  r = cupsDoRequest(http, request, "/ipp/print");
  assert_status(r, IPP_STATUS_ERROR_BAD_REQUEST);
  ippDelete(r);

  /* Get-Job-Attributes: own job yes, another's no. */
  request = new_request(IPP_OP_GET_JOB_ATTRIBUTES, "nobody");
  ippAddInteger(request, IPP_TAG_OPERATION, IPP_TAG_INTEGER, "job-id", a1);
  r = cupsDoRequest(http, request, "/ipp/print");
  assert_status(r, IPP_STATUS_OK);
  ck_assert_int_eq(ippGetInteger(ippFindAttribute(r, "job-state", IPP_TAG_ENUM), 0),
                   IPP_JSTATE_COMPLETED);
  ck_assert_str_eq(ippGetString(ippFindAttribute(r, "job-originating-user-name", IPP_TAG_NAME),
                                0, NULL),
                   "nobody");
  ck_assert_int_eq(ippGetInteger(ippFindAttribute(r, "job-impressions", IPP_TAG_INTEGER), 0), 1);
  ippDelete(r);

  request = new_request(IPP_OP_GET_JOB_ATTRIBUTES, "daemon");
  ippAddInteger(request, IPP_TAG_OPERATION, IPP_TAG_INTEGER, "job-id", a1);
  r = cupsDoRequest(http, request, "/ipp/print");
  assert_status(r, IPP_STATUS_ERROR_NOT_FOUND);
  ippDelete(r);

  request = new_request(IPP_OP_GET_JOB_ATTRIBUTES, "nobody");
  ippAddInteger(request, IPP_TAG_OPERATION, IPP_TAG_INTEGER, "job-id", 9999);
  r = cupsDoRequest(http, request, "/ipp/print");
  assert_status(r, IPP_STATUS_ERROR_NOT_FOUND);
  ippDelete(r);

  request = new_request(IPP_OP_GET_JOB_ATTRIBUTES, "nobody");
  r = cupsDoRequest(http, request, "/ipp/print");
  assert_status(r, IPP_STATUS_ERROR_BAD_REQUEST);
  ippDelete(r);

  /* By job-uri, posted to the job's own path as ipptool does. */
  request = ippNewRequest(IPP_OP_GET_JOB_ATTRIBUTES);
  g_autofree char *job_uri = g_strdup_printf("ipp://localhost:%d/ipp/print/%d",
                                             kcps_ipp_server_port(server), a2);
  g_autofree char *job_path = g_strdup_printf("/ipp/print/%d", a2);
  ippAddString(request, IPP_TAG_OPERATION, IPP_TAG_URI, "job-uri", NULL, job_uri);
  ippAddString(request, IPP_TAG_OPERATION, IPP_TAG_NAME, "requesting-user-name", NULL, "nobody");
  r = cupsDoRequest(http, request, job_path);
  assert_status(r, IPP_STATUS_OK);
  ck_assert_int_eq(ippGetInteger(ippFindAttribute(r, "job-id", IPP_TAG_INTEGER), 0), a2);
  ippDelete(r);

  /* Cancel-Job: the job is completed already; another user's is not found. */
  request = new_request(IPP_OP_CANCEL_JOB, "nobody");
  ippAddInteger(request, IPP_TAG_OPERATION, IPP_TAG_INTEGER, "job-id", a1);
  r = cupsDoRequest(http, request, "/ipp/print");
  assert_status(r, IPP_STATUS_ERROR_NOT_POSSIBLE);
  ippDelete(r);
  request = new_request(IPP_OP_CANCEL_JOB, "daemon");
  ippAddInteger(request, IPP_TAG_OPERATION, IPP_TAG_INTEGER, "job-id", a1);
  r = cupsDoRequest(http, request, "/ipp/print");
  assert_status(r, IPP_STATUS_ERROR_NOT_FOUND);
  ippDelete(r);
  ck_assert_uint_eq(spooled_jobs(), 3);

  /* An unknown account is not believed. */
  r = print_file(http, "no-such-user-kcps", "application/pdf", TEST_PDF, false);
  assert_status(r, IPP_STATUS_ERROR_NOT_AUTHORIZED);
  ippDelete(r);
  ck_assert_uint_eq(spooled_jobs(), 3);
  httpClose(http);
}
END_TEST

/* ---- who may print ------------------------------------------------------ */

/* Runs a Print-Job from a child process that dropped to uid, sending
 * user as requesting-user-name; returns the IPP status it got. */
static ssize_t append_bytes(void *context, ipp_uchar_t *buffer, size_t bytes) {
  g_byte_array_append(context, buffer, (guint)bytes);
  return (ssize_t)bytes;
}

/* A whole Print-Job of TEST_PDF naming user (or none) as HTTP bytes, built
 * before a fork: the child then only makes system calls. With close, it
 * asks the server to close the connection after its answer. */
static GByteArray *print_job_bytes(const char *user, bool close) {
  g_autofree char *pdf = NULL;
  gsize len = 0;
  ck_assert(g_file_get_contents(TEST_PDF, &pdf, &len, NULL));
  ipp_t *request = new_request(IPP_OP_PRINT_JOB, user);
  GByteArray *ipp = g_byte_array_new();
  ippSetState(request, IPP_STATE_IDLE);
  ck_assert_int_eq(ippWriteIO(ipp, append_bytes, 1, NULL, request), IPP_STATE_DATA);
  ippDelete(request);
  g_autofree char *head = g_strdup_printf(
    "POST /ipp/print HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/ipp\r\n"
    "%sContent-Length: %zu\r\n\r\n", close ? "Connection: close\r\n" : "",
    (size_t)ipp->len + len);
  GByteArray *bytes = g_byte_array_new();
  g_byte_array_append(bytes, (const guint8 *)head, (guint)strlen(head));
  g_byte_array_append(bytes, ipp->data, ipp->len);
  g_byte_array_append(bytes, (const guint8 *)pdf, (guint)len);
  g_byte_array_unref(ipp);
  return bytes;
}

/* Connects to the server as it runs now; -1 when it cannot. System calls only. */
static int connect_raw(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || connect(fd, (struct sockaddr *)&sin, sizeof sin) != 0)
    return -1;
  return fd;
}

/* All of len bytes to fd; false when the peer went. System calls only. */
static bool send_all(int fd, const guint8 *data, size_t len) {
  for (size_t off = 0; off < len;) {
    ssize_t n = send(fd, data + off, len - off, MSG_NOSIGNAL);
    if (n <= 0)
      return false;
    off += (size_t)n;
  }
  return true;
}

/* Whether buf holds a whole HTTP answer: its head, then Content-Length
 * bytes or a chunked body up to its last chunk. No library calls that
 * could take a lock (used in a child of fork()). */
static bool answer_complete(const guint8 *buf, size_t len) {
  size_t head = 0;
  while (head + 4 <= len && !(buf[head] == '\r' && buf[head + 1] == '\n' &&
                              buf[head + 2] == '\r' && buf[head + 3] == '\n'))
    head++;
  if (head + 4 > len)
    return false;
  static const char key[] = "\ncontent-length:";
  for (size_t i = 0; i + sizeof key - 1 <= head; i++) {
    size_t k = 0;
    while (k < sizeof key - 1 && (buf[i + k] | 0x20) == (key[k] | 0x20))
      k++;
    if (k == sizeof key - 1) {
      size_t at = i + k, length = 0;
      while (at < head && buf[at] == ' ')
        at++;
      while (at < head && buf[at] >= '0' && buf[at] <= '9')
        length = length * 10 + (size_t)(buf[at++] - '0');
      return len >= head + 4 + length;
    }
  }
  /* Chunked: the last chunk is "0" and an empty line. */
  return len >= head + 9 && buf[len - 5] == '0' && buf[len - 4] == '\r' &&
         buf[len - 3] == '\n' && buf[len - 2] == '\r' && buf[len - 1] == '\n';
}

/* The IPP status code of an HTTP answer (body plain or chunked); -3 when
 * there is none. */
static int answer_status(const GByteArray *answer) {
  const char *text = (const char *)answer->data;
  const char *end = g_strstr_len(text, answer->len, "\r\n\r\n");
  if (end == NULL)
    return -3;
  g_autofree char *head = g_ascii_strdown(text, end - text);
  const guint8 *body = (const guint8 *)end + 4;
  const guint8 *stop = answer->data + answer->len;
  if (strstr(head, "transfer-encoding: chunked") != NULL) {
    const guint8 *line = body;
    while (line + 1 < stop && !(line[0] == '\r' && line[1] == '\n'))
      line++;
    body = line + 2; /* past the first chunk's size */
  }
  return body + 4 <= stop ? (body[2] << 8 | body[3]) : -3;
}

/* A process of uid sends a Print-Job naming user (or none): the status the
 * server answers. The child makes system calls only: after fork() in this
 * threaded test, a lock another thread held (malloc's under ASan, libcups's)
 * would never be released in the child. */
static ipp_status_t print_as_uid(uid_t uid, const char *user) {
  GByteArray *request = print_job_bytes(user, true);
  int port = kcps_ipp_server_port(server);
  int fds[2];
  ck_assert_int_eq(pipe(fds), 0);
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    close(fds[0]);
    if (setgid(uid) != 0 || setuid(uid) != 0)
      _exit(2);
    int fd = connect_raw(port);
    if (fd < 0 || !send_all(fd, request->data, request->len))
      _exit(3);
    /* The answer, until it is whole (or the server closes). */
    static guint8 answer[65536];
    size_t got = 0;
    ssize_t n;
    while (!answer_complete(answer, got) &&
           (n = recv(fd, answer + got, sizeof answer - got, 0)) > 0)
      got += (size_t)n;
    if (write(fds[1], answer, got) != (ssize_t)got)
      _exit(4);
    _exit(0);
  }
  close(fds[1]);
  g_byte_array_unref(request);
  GByteArray *answer = g_byte_array_new();
  guint8 buffer[4096];
  ssize_t n;
  while ((n = read(fds[0], buffer, sizeof buffer)) > 0)
    g_byte_array_append(answer, buffer, (guint)n);
  close(fds[0]);
  int status = -1;
  waitpid(pid, &status, 0);
  ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "sender child failed (%d)",
                status);
  int code = answer_status(answer);
  g_byte_array_unref(answer);
  return (ipp_status_t)code;
}

START_TEST(test_peer_is_owner) {
  if (getuid() != 0) {
    fprintf(stderr, "not root: cannot act as another uid; skipped\n");
    return;
  }
  /* An ordinary process cannot claim another user with requesting-user-name. */
  ipp_status_t st = print_as_uid(1, "nobody"); /* uid 1: daemon */
  ck_assert_msg(st == IPP_STATUS_OK, "got %s", ippErrorString(st));
  GPtrArray *jobs = kcps_spool_list_jobs(spool, 1, NULL);
  ck_assert_msg(jobs->len == 1, "jobs of uid 1: got %u, expected 1", jobs->len);
  g_ptr_array_unref(jobs);
  jobs = kcps_spool_list_jobs(spool, 65534, NULL);
  ck_assert_msg(jobs->len == 0, "jobs of nobody: got %u, expected 0", jobs->len);
  g_ptr_array_unref(jobs);
}
END_TEST

/* A child as uid sends a whole Print-Job naming user, then hangs up at
 * once: its socket is left without an owner process (uid 0 in the kernel's
 * table), which must not pass for the print system. */
static void print_and_hang_up(uid_t uid, const char *user) {
  GByteArray *request = print_job_bytes(user, false);
  int port = kcps_ipp_server_port(server);
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    if (setgid(uid) != 0 || setuid(uid) != 0)
      _exit(2);
    int fd = connect_raw(port);
    if (fd < 0)
      _exit(3);
    (void)send_all(fd, request->data, request->len);
    close(fd);
    _exit(0);
  }
  int status = -1;
  waitpid(pid, &status, 0);
  g_byte_array_unref(request);
  ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "sender child failed (%d)",
                status);
}

START_TEST(test_hang_up_is_not_root) {
  if (getuid() != 0) {
    fprintf(stderr, "not root: cannot act as another uid; skipped\n");
    return;
  }
  for (int i = 0; i < 5; i++)
    print_and_hang_up(1, "nobody");
  /* Freeing the server waits for the requests in progress. */
  kcps_ipp_server_free(server);
  server = NULL;
  GPtrArray *jobs = kcps_spool_list_jobs(spool, 65534, NULL);
  ck_assert_msg(jobs->len == 0, "a sender that hung up got %u jobs into nobody's spool",
                jobs->len);
  g_ptr_array_unref(jobs);
}
END_TEST

static void setup_user_mode(void) {
  setup_spool();
  start_server(true, 65534);
}

START_TEST(test_user_mode) {
  if (getuid() != 0) {
    fprintf(stderr, "not root: cannot act as another uid; skipped\n");
    return;
  }
  /* The user itself, and the print system sending with its name: yes. */
  ck_assert_int_eq(print_as_uid(65534, NULL), IPP_STATUS_OK);
  http_t *http = connect_to("127.0.0.1");
  ipp_t *r = print_file(http, "nobody", "application/pdf", TEST_PDF, false);
  assert_status(r, IPP_STATUS_OK);
  ippDelete(r);
  /* The print system for someone else, or without a name: no. */
  r = print_file(http, "daemon", "application/pdf", TEST_PDF, false);
  assert_status(r, IPP_STATUS_ERROR_NOT_AUTHORIZED);
  ck_assert_msg(strstr(status_message(r), "nobody") != NULL, "message: %s", status_message(r));
  ippDelete(r);
  r = print_file(http, NULL, "application/pdf", TEST_PDF, false);
  assert_status(r, IPP_STATUS_ERROR_NOT_AUTHORIZED);
  ippDelete(r);
  httpClose(http);
  /* Another user's process: no, whatever name it sends. */
  ck_assert_int_eq(print_as_uid(1, NULL), IPP_STATUS_ERROR_NOT_AUTHORIZED);
  ck_assert_int_eq(print_as_uid(1, "nobody"), IPP_STATUS_ERROR_NOT_AUTHORIZED);

  ck_assert_uint_eq(spooled_jobs(), 2);
  GPtrArray *jobs = kcps_spool_list_jobs(spool, 65534, NULL);
  ck_assert_uint_eq(jobs->len, 2);
  g_ptr_array_unref(jobs);
}
END_TEST

/* ---- concurrency -------------------------------------------------------- */

#define N_SENDERS 6
#define JOBS_EACH 3

static gpointer sender(gpointer data) {
  int *ok = data;
  http_t *http = httpConnect2("127.0.0.1", kcps_ipp_server_port(server), NULL, AF_INET,
                              HTTP_ENCRYPTION_NEVER, 1, 10000, NULL);
  if (http == NULL)
    return NULL;
  g_autofree char *pdf = NULL;
  gsize len = 0;
  g_file_get_contents(TEST_PDF, &pdf, &len, NULL);
  for (int i = 0; i < JOBS_EACH; i++) {
    ipp_t *request = new_request(IPP_OP_PRINT_JOB, NULL);
    if (cupsSendRequest(http, request, "/ipp/print", ippLength(request) + len) ==
          HTTP_STATUS_CONTINUE &&
        cupsWriteRequestData(http, pdf, len) == HTTP_STATUS_CONTINUE) {
      ipp_t *r = cupsGetResponse(http, "/ipp/print");
      if (r != NULL && ippGetStatusCode(r) == IPP_STATUS_OK)
        (*ok)++;
      ippDelete(r);
    }
    ippDelete(request);
  }
  httpClose(http);
  return NULL;
}

START_TEST(test_concurrent_senders) {
  GThread *threads[N_SENDERS];
  int ok[N_SENDERS] = {0};
  for (int i = 0; i < N_SENDERS; i++)
    threads[i] = g_thread_new("sender", sender, &ok[i]);
  int total = 0;
  for (int i = 0; i < N_SENDERS; i++) {
    g_thread_join(threads[i]);
    total += ok[i];
  }
  ck_assert_msg(total == N_SENDERS * JOBS_EACH, "jobs accepted: got %d, expected %d", total,
                N_SENDERS * JOBS_EACH);
  ck_assert_uint_eq(spooled_jobs(), N_SENDERS * JOBS_EACH);
  ck_assert_int_eq(cb_count, N_SENDERS * JOBS_EACH);
}
END_TEST

START_TEST(test_free_with_idle_connection) {
  /* An idle keep-alive connection must not hold up the shutdown. */
  http_t *http = connect_to("127.0.0.1");
  ipp_t *r = get_printer_attrs(http, 0, NULL);
  ippDelete(r);
  gint64 start = g_get_monotonic_time();
  kcps_ipp_server_free(server);
  server = NULL;
  gint64 took_ms = (g_get_monotonic_time() - start) / 1000;
  ck_assert_msg(took_ms < 5000, "free took %" G_GINT64_FORMAT " ms", took_ms);
  httpClose(http);
}
END_TEST

START_TEST(test_port_in_use) {
  GError *error = NULL;
  kcps_ipp_config_t config = {.port = kcps_ipp_server_port(server)};
  kcps_ipp_server_t *second = kcps_ipp_server_new(&config, spool, NULL, NULL, &error);
  ck_assert_ptr_null(second);
  ck_assert_ptr_nonnull(error);
  ck_assert_msg(strstr(error->message, "listen") != NULL, "message: %s", error->message);
  g_error_free(error);
}
END_TEST

/* ---- formats: each accepted one becomes a PDF in the spool -------------- */

/* Runs gs writing tmp_dir/name from the test page (copies times); options
 * before the input. Returns the path (g_free) or NULL when gs is missing. */
static char *run_gs(const char *name, int copies, const char *const *options) {
  char *out = g_build_filename(tmp_dir, name, NULL);
  GPtrArray *argv = g_ptr_array_new_with_free_func(g_free);
  static const char *const fixed[] = {"gs", "-q", "-dBATCH", "-dNOPAUSE", "-dSAFER"};
  for (size_t i = 0; i < G_N_ELEMENTS(fixed); i++)
    g_ptr_array_add(argv, g_strdup(fixed[i]));
  for (const char *const *o = options; *o != NULL; o++)
    g_ptr_array_add(argv, g_strdup(*o));
  g_ptr_array_add(argv, g_strdup_printf("-sOutputFile=%s", out));
  for (int i = 0; i < copies; i++)
    g_ptr_array_add(argv, g_strdup(TEST_PDF));
  g_ptr_array_add(argv, NULL);
  int status = 0;
  GError *error = NULL;
  gboolean ran = g_spawn_sync(NULL, (char **)argv->pdata, NULL,
                              G_SPAWN_SEARCH_PATH | G_SPAWN_STDOUT_TO_DEV_NULL |
                                G_SPAWN_STDERR_TO_DEV_NULL,
                              NULL, NULL, NULL, NULL, &status, &error);
  g_ptr_array_free(argv, TRUE);
  ck_assert_msg(ran && g_spawn_check_wait_status(status, NULL), "gs for %s failed: %s", name,
                error != NULL ? error->message : "exit status");
  return out;
}

static void put_be32(GByteArray *b, uint32_t v) {
  unsigned char p[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
                        (unsigned char)(v >> 8), (unsigned char)v};
  g_byte_array_append(b, p, 4);
}

/* An Apple raster (URF) of pages white 24-bit sRGB pages, 128x256 pixels at
 * dpi, each line record "repeat 256 lines, 128 pixels of ff ff ff". */
static GByteArray *make_urf(unsigned pages, unsigned dpi) {
  GByteArray *b = g_byte_array_new();
  g_byte_array_append(b, (const guint8 *)"UNIRAST\0", 8);
  put_be32(b, pages);
  for (unsigned i = 0; i < pages; i++) {
    unsigned char h[12] = {24, 1, 0, 4};
    g_byte_array_append(b, h, sizeof h);
    put_be32(b, 128);
    put_be32(b, 256);
    put_be32(b, dpi);
    put_be32(b, 0);
    put_be32(b, 0);
    static const unsigned char line[] = {255, 127, 0xff, 0xff, 0xff};
    g_byte_array_append(b, line, sizeof line);
  }
  return b;
}

/* A PWG raster whose one page header says height lines of 200 sRGB pixels
 * at 100 dpi, followed by data for ten lines only. */
static GByteArray *make_pwg_claiming(uint32_t height) {
  GByteArray *b = g_byte_array_new();
  g_byte_array_append(b, (const guint8 *)"RaS2", 4);
  unsigned char h[1796] = {0};
  memcpy(h + 64, "white", 5);
  const struct {
    unsigned off;
    uint32_t v;
  } f[] = {{276, 100}, {280, 100}, {372, 200}, {376, height}, {384, 8},
           {388, 24},  {392, 600}, {400, 19},  {420, 3}};
  for (size_t i = 0; i < G_N_ELEMENTS(f); i++)
    for (int k = 0; k < 4; k++)
      h[f[i].off + k] = (unsigned char)(f[i].v >> (24 - 8 * k));
  g_byte_array_append(b, h, sizeof h);
  static const unsigned char lines[] = {9, 127, 0xff, 0xff, 0xff, 71, 0xff, 0xff, 0xff};
  g_byte_array_append(b, lines, sizeof lines);
  return b;
}

/* The spooled job the callback saw last (copy; kcps_job_free). */
static kcps_job_t *last_spooled(void) {
  g_mutex_lock(&cb_lock);
  kcps_job_t *job = cb_last != NULL ? kcps_job_copy(cb_last) : NULL;
  g_mutex_unlock(&cb_lock);
  ck_assert_msg(job != NULL, "no job was spooled");
  return job;
}

/* The spooled file of job is a PDF (poppler opened it at commit and
 * counted job->pages). */
static void assert_spooled_pdf(const kcps_job_t *job, uid_t owner, int pages,
                               const char *format) {
  ck_assert_msg(job->owner_uid == owner, "owner: got %u, expected %u", (unsigned)job->owner_uid,
                (unsigned)owner);
  ck_assert_msg(job->pages == pages, "%s: pages %d, expected %d", format, job->pages, pages);
  ck_assert_str_eq(job->format, format);
  GError *error = NULL;
  int fd = kcps_spool_open_document(spool, job, &error);
  ck_assert_msg(fd >= 0, "open spooled document: %s", error ? error->message : "?");
  char head[5] = {0};
  ck_assert_int_eq(read(fd, head, sizeof head), (ssize_t)sizeof head);
  close(fd);
  ck_assert_msg(memcmp(head, "%PDF-", 5) == 0, "%s: spooled file is not a PDF", format);
}

/* Documents of every accepted format, and how many pages they make. */
static const struct {
  const char *what;
  const char *format; /* as sent */
  const char *stored; /* document format the job records */
  int pages;
} formats[] = {
  {"pwg", "image/pwg-raster", "image/pwg-raster", 2},
  {"urf", "image/urf", "image/urf", 3},
  {"jpeg", "image/jpeg", "image/jpeg", 1},
  {"png", "image/png", "image/png", 1},
  {"pdf", "application/pdf", "application/pdf", 1},
  {"pwg", "application/octet-stream", "image/pwg-raster", 2},
  {"urf", "application/octet-stream", "image/urf", 3},
  {"jpeg", "application/octet-stream", "image/jpeg", 1},
  {"png", "application/octet-stream", "image/png", 1},
  {"pdf", "application/octet-stream", "application/pdf", 1},
};

/* The sample document named what (caller g_frees *data). */
static void make_document(const char *what, char **data, gsize *len) {
  g_autofree char *path = NULL;
  if (strcmp(what, "pwg") == 0) {
    const char *o[] = {"-sDEVICE=pwgraster", "-dcupsColorSpace=19", "-dcupsBitsPerColor=8",
                       "-r50", NULL};
    path = run_gs("doc.pwg", 2, o);
  } else if (strcmp(what, "jpeg") == 0) {
    const char *o[] = {"-sDEVICE=jpeg", "-r50", NULL};
    path = run_gs("doc.jpg", 1, o);
  } else if (strcmp(what, "png") == 0) {
    const char *o[] = {"-sDEVICE=png16m", "-r50", NULL};
    path = run_gs("doc.png", 1, o);
  } else if (strcmp(what, "urf") == 0) {
    GByteArray *b = make_urf(3, 300);
    *len = b->len;
    *data = (char *)g_byte_array_free(b, FALSE);
    return;
  } else {
    path = g_strdup(TEST_PDF);
  }
  ck_assert_msg(g_file_get_contents(path, data, len, NULL), "cannot read %s", path);
}

START_TEST(test_print_format) {
  bool as_root = getuid() == 0;
  uid_t owner = as_root ? 65534 : getuid();
  g_autofree char *data = NULL;
  gsize len = 0;
  make_document(formats[_i].what, &data, &len);
  http_t *http = connect_to("127.0.0.1");
  ipp_t *r = print_data(http, as_root ? "nobody" : NULL, formats[_i].format, data, len, _i % 2);
  assert_status(r, IPP_STATUS_OK);
  ck_assert_int_eq(ippGetInteger(ippFindAttribute(r, "job-state", IPP_TAG_ENUM), 0),
                   IPP_JSTATE_COMPLETED);
  ippDelete(r);
  httpClose(http);
  g_autoptr(kcps_job_t) job = last_spooled();
  assert_spooled_pdf(job, owner, formats[_i].pages, formats[_i].stored);
  ck_assert_uint_eq(spooled_jobs(), 1);
  ck_assert_int_eq(count_spool_files(), 1);
}
END_TEST

/* Documents refused: the status, words of the message, nothing spooled. */
typedef enum { DOC_TEXT, DOC_EMPTY, DOC_TRUNCATED_PWG, DOC_LYING_PWG, DOC_SHORT_PWG,
               DOC_ENCRYPTED, DOC_JPEG } bad_doc_t;
static const struct {
  const char *what;
  const char *format;
  bad_doc_t doc;
  ipp_status_t want;
  const char *message_part;
} refusals[] = {
  {"empty PWG raster", "image/pwg-raster", DOC_EMPTY, IPP_STATUS_ERROR_DOCUMENT_FORMAT_ERROR,
   "empty"},
  {"empty auto-typed", "application/octet-stream", DOC_EMPTY,
   IPP_STATUS_ERROR_DOCUMENT_FORMAT_ERROR, "empty"},
  {"garbage as PNG", "image/png", DOC_TEXT, IPP_STATUS_ERROR_DOCUMENT_FORMAT_ERROR, "PNG"},
  {"garbage as URF", "image/urf", DOC_TEXT, IPP_STATUS_ERROR_DOCUMENT_FORMAT_ERROR, "URF"},
  {"garbage as PWG raster", "image/pwg-raster", DOC_TEXT,
   IPP_STATUS_ERROR_DOCUMENT_FORMAT_ERROR, "PWG raster"},
  {"garbage as JPEG", "image/jpeg", DOC_TEXT, IPP_STATUS_ERROR_DOCUMENT_FORMAT_ERROR, "JPEG"},
  {"auto-typed garbage", "application/octet-stream", DOC_TEXT,
   IPP_STATUS_ERROR_DOCUMENT_FORMAT_NOT_SUPPORTED, "not a PDF"},
  {"JPEG sent as PNG", "image/png", DOC_JPEG, IPP_STATUS_ERROR_DOCUMENT_FORMAT_ERROR, "PNG"},
  {"truncated PWG raster", "image/pwg-raster", DOC_TRUNCATED_PWG,
   IPP_STATUS_ERROR_DOCUMENT_FORMAT_ERROR, "ends"},
  {"raster header of height 2^31", "image/pwg-raster", DOC_LYING_PWG,
   IPP_STATUS_ERROR_DOCUMENT_FORMAT_ERROR, "larger than"},
  {"raster header promising more lines", "application/octet-stream", DOC_SHORT_PWG,
   IPP_STATUS_ERROR_DOCUMENT_FORMAT_ERROR, "ends"},
  {"password-protected PDF", "application/pdf", DOC_ENCRYPTED,
   IPP_STATUS_ERROR_DOCUMENT_PASSWORD, "password"},
  {"password-protected PDF auto-typed", "application/octet-stream", DOC_ENCRYPTED,
   IPP_STATUS_ERROR_DOCUMENT_PASSWORD, "password"},
};

/* The bad document of a refusal (caller g_frees *data); false when a tool
 * to make it is missing. */
static bool make_bad_document(bad_doc_t doc, char **data, gsize *len) {
  GByteArray *b = NULL;
  switch (doc) {
  case DOC_TEXT:
    *data = g_strdup("Hello printer, SECRET-LINE of plain text\n");
    *len = strlen(*data);
    return true;
  case DOC_EMPTY:
    *data = g_strdup("");
    *len = 0;
    return true;
  case DOC_JPEG:
    make_document("jpeg", data, len);
    return true;
  case DOC_TRUNCATED_PWG:
    make_document("pwg", data, len);
    *len /= 2;
    return true;
  case DOC_LYING_PWG:
    b = make_pwg_claiming(0x80000000u);
    break;
  case DOC_SHORT_PWG:
    b = make_pwg_claiming(1000);
    break;
  case DOC_ENCRYPTED: {
    g_autofree char *out = g_build_filename(tmp_dir, "locked.pdf", NULL);
    g_autofree char *cmd = g_strdup_printf(
      "qpdf --encrypt user-secret owner-secret 256 -- " TEST_PDF " %s", out);
    int status = 0;
    if (!g_spawn_command_line_sync(cmd, NULL, NULL, &status, NULL) || status != 0)
      return false;
    ck_assert(g_file_get_contents(out, data, len, NULL));
    g_unlink(out);
    return true;
  }
  }
  *len = b->len;
  *data = (char *)g_byte_array_free(b, FALSE);
  return true;
}

static void assert_nothing_spooled(void) {
  ck_assert_uint_eq(spooled_jobs(), 0);
  int files = count_spool_files();
  ck_assert_msg(files == 0, "%d files left in the spool", files);
  ck_assert_int_eq(cb_count, 0);
}

START_TEST(test_refuse_format) {
  g_autofree char *data = NULL;
  gsize len = 0;
  if (!make_bad_document(refusals[_i].doc, &data, &len)) {
    fprintf(stderr, "%s: qpdf not usable; skipped\n", refusals[_i].what);
    return;
  }
  http_t *http = connect_to("127.0.0.1");
  ipp_t *r = print_data(http, NULL, refusals[_i].format, data, len, _i % 2);
  assert_status(r, refusals[_i].want);
  const char *msg = status_message(r);
  ck_assert_msg(strstr(msg, refusals[_i].message_part) != NULL,
                "%s: status-message \"%s\" lacks \"%s\"", refusals[_i].what, msg,
                refusals[_i].message_part);
  ck_assert_msg(strstr(msg, "SECRET") == NULL, "status-message echoes the document: %s", msg);
  ippDelete(r);
  assert_nothing_spooled();
  /* The connection still takes a good document afterwards. */
  r = print_file(http, NULL, "application/pdf", TEST_PDF, false);
  assert_status(r, IPP_STATUS_OK);
  ippDelete(r);
  httpClose(http);
}
END_TEST

/* Over the limit as sent (a JPEG), or only once converted (a small URF of
 * three pages becomes a larger PDF). */
START_TEST(test_too_large_converted) {
  g_autofree char *data = NULL;
  gsize len = 0;
  make_document(_i == 0 ? "jpeg" : "urf", &data, &len);
  gint64 limit = _i == 0 ? 200 : 1000;
  kcps_spool_set_max_size(spool, limit);
  if (_i == 0)
    ck_assert_uint_gt(len, limit);
  else
    ck_assert_uint_lt(len, limit);
  http_t *http = connect_to("127.0.0.1");
  ipp_t *r = print_data(http, NULL, _i == 0 ? "image/jpeg" : "image/urf", data, len, false);
  assert_status(r, IPP_STATUS_ERROR_REQUEST_ENTITY);
  ck_assert_msg(strstr(status_message(r), "limit") != NULL, "message: %s", status_message(r));
  ippDelete(r);
  assert_nothing_spooled();
  httpClose(http);
}
END_TEST

START_TEST(test_sniff_format) {
  static const struct {
    const char *bytes;
    size_t len;
    const char *want;
  } cases[] = {
    {"%PDF-1.7\n", 9, "application/pdf"},
    {"RaS2\0\0\0\0", 8, "image/pwg-raster"},
    {"UNIRAST\0", 8, "image/urf"},
    {"\xff\xd8\xff\xe0\0\x10JF", 8, "image/jpeg"},
    {"\x89PNG\r\n\x1a\n", 8, "image/png"},
    {"\x89PNG\r\n\x1a", 7, NULL}, /* PNG's signature cut short */
    {"%PDF", 4, NULL},
    {"RaS3xxxx", 8, NULL},
    {"%!PS-Adobe-3.0", 14, NULL},
    {"", 0, NULL},
    {"\xff\xd8", 2, NULL},
  };
  for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
    const char *got = kcps__ipp_sniff_format((const unsigned char *)cases[i].bytes, cases[i].len);
    ck_assert_msg(g_strcmp0(got, cases[i].want) == 0, "case %zu: got %s, expected %s", i,
                  got ? got : "NULL", cases[i].want ? cases[i].want : "NULL");
  }
  ck_assert_ptr_null(kcps__ipp_sniff_format(NULL, 0));
}
END_TEST

/* A converted document that does not fit on the spool's disk: the
 * converter's write fails (ENOSPC) and the sender is told the disk is full;
 * nothing is left behind, and with room again the same document goes in.
 * The spool sits on a small tmpfs in a mount namespace of this test's own
 * process (Check runs each test in a child), so nobody else sees it. */
START_TEST(test_disk_full_converted) {
  if (getuid() != 0) {
    fprintf(stderr, "not root: cannot mount a tmpfs; skipped\n");
    return;
  }
  if (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) {
    fprintf(stderr, "no mount namespace here (%s); skipped\n", g_strerror(errno));
    return;
  }
  g_autofree char *data = NULL;
  gsize len = 0;
  const char *o[] = {"-sDEVICE=jpeg", "-r100", NULL};
  g_autofree char *jpeg = run_gs("big.jpg", 1, o);
  ck_assert(g_file_get_contents(jpeg, &data, &len, NULL));

  /* The fixture's spool again, on a 1 MiB tmpfs. */
  kcps_ipp_server_free(server);
  server = NULL;
  kcps_spool_close(spool);
  spool = NULL;
  g_autofree char *dir = g_build_filename(tmp_dir, "spool", NULL);
  remove_tree(dir);
  ck_assert_int_eq(g_mkdir(dir, 0700), 0);
  ck_assert_msg(mount("kcps-test-ipp", dir, "tmpfs", 0, "size=1m,mode=0700") == 0,
                "mount a tmpfs: %s", g_strerror(errno));
  mounted_spool = g_strdup(dir);
  GError *error = NULL;
  spool = kcps_spool_open(dir, &error);
  ck_assert_msg(spool != NULL, "spool: %s", error ? error->message : "?");
  start_server(false, 0);

  /* A filler leaves 16 KiB: less than the JPEG, and than its PDF. */
  g_autofree char *filler = g_build_filename(dir, "filler", NULL);
  struct statvfs vfs;
  ck_assert_int_eq(statvfs(dir, &vfs), 0);
  gint64 free_bytes = (gint64)vfs.f_bavail * (gint64)vfs.f_frsize;
  ck_assert_msg(free_bytes > 16384 && (gint64)len > 16384, "free %" G_GINT64_FORMAT
                ", document %zu", free_bytes, (size_t)len);
  g_autofree char *zeros = g_malloc0((gsize)(free_bytes - 16384));
  ck_assert(g_file_set_contents(filler, zeros, free_bytes - 16384, NULL));

  http_t *http = connect_to("127.0.0.1");
  ipp_t *r = print_data(http, NULL, "image/jpeg", data, len, false);
  assert_status(r, IPP_STATUS_ERROR_INTERNAL);
  ck_assert_msg(strstr(status_message(r), "disk of the print spool is full") != NULL,
                "message: %s", status_message(r));
  ippDelete(r);
  ck_assert_uint_eq(spooled_jobs(), 0);
  ck_assert_int_eq(count_spool_files(), 1); /* the filler alone */
  ck_assert_int_eq(cb_count, 0);

  /* Room again: the same document is spooled. */
  g_unlink(filler);
  r = print_data(http, NULL, "image/jpeg", data, len, false);
  assert_status(r, IPP_STATUS_OK);
  ippDelete(r);
  httpClose(http);
  ck_assert_uint_eq(spooled_jobs(), 1);
  ck_assert_int_eq(count_spool_files(), 1);
}
END_TEST

/* ---- Create-Job, Send-Document, Close-Job, Cancel-My-Jobs -------------- */

static ipp_t *job_request(ipp_op_t op, const char *user, int job_id) {
  ipp_t *request = new_request(op, user);
  ippAddInteger(request, IPP_TAG_OPERATION, IPP_TAG_INTEGER, "job-id", job_id);
  return request;
}

static ipp_t *do_request(http_t *http, ipp_t *request) {
  ipp_t *r = cupsDoRequest(http, request, "/ipp/print");
  ck_assert_msg(r != NULL, "no IPP response (%s)", cupsLastErrorString());
  return r;
}

/* Create-Job for user; returns the job-id after checking it is pending. */
static int create_job(http_t *http, const char *user, const char *name) {
  ipp_t *request = new_request(IPP_OP_CREATE_JOB, user);
  ippAddString(request, IPP_TAG_OPERATION, IPP_TAG_NAME, "job-name", NULL, name);
  ipp_t *r = do_request(http, request);
  assert_status(r, IPP_STATUS_OK);
  ipp_attribute_t *a = ippFindAttribute(r, "job-id", IPP_TAG_INTEGER);
  ck_assert_msg(a != NULL && ippGetInteger(a, 0) > 0, "Create-Job gave no job-id");
  int id = ippGetInteger(a, 0);
  ck_assert_int_eq(ippGetInteger(ippFindAttribute(r, "job-state", IPP_TAG_ENUM), 0),
                   IPP_JSTATE_PENDING);
  a = ippFindAttribute(r, "job-state-reasons", IPP_TAG_KEYWORD);
  ck_assert_msg(a != NULL && ippContainsString(a, "job-incoming"), "no job-incoming reason");
  ck_assert_ptr_nonnull(ippFindAttribute(r, "job-uri", IPP_TAG_URI));
  ippDelete(r);
  return id;
}

/* Send-Document; last < 0 leaves last-document out. */
static ipp_t *send_document(http_t *http, const char *user, int job_id, const char *format,
                            const void *data, size_t len, int last) {
  ipp_t *request = job_request(IPP_OP_SEND_DOCUMENT, user, job_id);
  if (last >= 0)
    ippAddBoolean(request, IPP_TAG_OPERATION, "last-document", (char)last);
  if (format != NULL)
    ippAddString(request, IPP_TAG_OPERATION, IPP_TAG_MIMETYPE, "document-format", NULL, format);
  http_status_t status = cupsSendRequest(http, request, "/ipp/print", ippLength(request) + len);
  const char *p = data;
  for (size_t off = 0; status == HTTP_STATUS_CONTINUE && off < len; off += 8192)
    status = cupsWriteRequestData(http, p + off, MIN(8192, len - off));
  ipp_t *r = cupsGetResponse(http, "/ipp/print");
  ippDelete(request);
  ck_assert_msg(r != NULL, "no IPP response (%s)", cupsLastErrorString());
  return r;
}

/* Get-Job-Attributes of job_id as user: its status, state and message. */
static ipp_status_t job_state(http_t *http, const char *user, int job_id, int *state,
                              char **message) {
  ipp_t *r = do_request(http, job_request(IPP_OP_GET_JOB_ATTRIBUTES, user, job_id));
  ipp_status_t status = ippGetStatusCode(r);
  ipp_attribute_t *a = ippFindAttribute(r, "job-state", IPP_TAG_ENUM);
  *state = a != NULL ? ippGetInteger(a, 0) : 0;
  a = ippFindAttribute(r, "job-state-message", IPP_TAG_TEXT);
  if (message != NULL)
    *message = g_strdup(a != NULL ? ippGetString(a, 0, NULL) : "");
  ippDelete(r);
  return status;
}

static void assert_job_state(http_t *http, const char *user, int job_id, int want) {
  int state = 0;
  g_autofree char *message = NULL;
  ipp_status_t st = job_state(http, user, job_id, &state, &message);
  ck_assert_msg(st == IPP_STATUS_OK, "Get-Job-Attributes of #%d: %s", job_id,
                ippErrorString(st));
  ck_assert_msg(state == want, "job #%d: state %d (%s), expected %d", job_id, state, message,
                want);
}

START_TEST(test_create_send_close) {
  bool as_root = getuid() == 0;
  const char *user = as_root ? "nobody" : NULL;
  uid_t owner = as_root ? 65534 : getuid();
  http_t *http = connect_to("127.0.0.1");
  int id = create_job(http, user, "created job");
  assert_job_state(http, user, id, IPP_JSTATE_PENDING);
  ipp_t *r = get_jobs(http, user, NULL); /* not-completed */
  ck_assert_int_eq(count_jobs_in(r), 1);
  ck_assert_int_eq(ippGetInteger(ippFindAttribute(r, "job-id", IPP_TAG_INTEGER), 0), id);
  ippDelete(r);
  assert_nothing_spooled();

  /* Without last-document: bad request, the job still waits. */
  g_autofree char *png = NULL;
  gsize len = 0;
  make_document("png", &png, &len);
  r = send_document(http, user, id, "image/png", png, len, -1);
  assert_status(r, IPP_STATUS_ERROR_BAD_REQUEST);
  ippDelete(r);
  /* More than one document: refused, the job still waits. */
  r = send_document(http, user, id, "image/png", png, len, 0);
  assert_status(r, IPP_STATUS_ERROR_MULTIPLE_JOBS_NOT_SUPPORTED);
  ippDelete(r);
  assert_job_state(http, user, id, IPP_JSTATE_PENDING);

  r = send_document(http, user, id, "image/png", png, len, 1);
  assert_status(r, IPP_STATUS_OK);
  ck_assert_int_eq(ippGetInteger(ippFindAttribute(r, "job-id", IPP_TAG_INTEGER), 0), id);
  ck_assert_int_eq(ippGetInteger(ippFindAttribute(r, "job-state", IPP_TAG_ENUM), 0),
                   IPP_JSTATE_COMPLETED);
  ippDelete(r);
  g_autoptr(kcps_job_t) job = last_spooled();
  assert_spooled_pdf(job, owner, 1, "image/png");
  ck_assert_str_eq(job->name, "created job");
  ck_assert_uint_eq(spooled_jobs(), 1);
  assert_job_state(http, user, id, IPP_JSTATE_COMPLETED);
  r = get_jobs(http, user, NULL);
  ck_assert_int_eq(count_jobs_in(r), 0);
  ippDelete(r);
  r = get_jobs(http, user, "completed");
  ck_assert_int_eq(count_jobs_in(r), 1);
  ippDelete(r);

  /* A second document: one document a job. Close-Job: fine. */
  r = send_document(http, user, id, "image/png", png, len, 1);
  assert_status(r, IPP_STATUS_ERROR_MULTIPLE_JOBS_NOT_SUPPORTED);
  ippDelete(r);
  r = do_request(http, job_request(IPP_OP_CLOSE_JOB, user, id));
  assert_status(r, IPP_STATUS_OK);
  ippDelete(r);
  ck_assert_uint_eq(spooled_jobs(), 1);

  /* Close-Job before any document: the job ends, aborted. */
  int empty = create_job(http, user, "never sent");
  r = do_request(http, job_request(IPP_OP_CLOSE_JOB, user, empty));
  assert_status(r, IPP_STATUS_OK);
  ippDelete(r);
  assert_job_state(http, user, empty, IPP_JSTATE_ABORTED);
  r = do_request(http, job_request(IPP_OP_CLOSE_JOB, user, empty));
  assert_status(r, IPP_STATUS_ERROR_NOT_POSSIBLE);
  ippDelete(r);
  r = do_request(http, job_request(IPP_OP_CLOSE_JOB, user, 9999));
  assert_status(r, IPP_STATUS_ERROR_NOT_FOUND);
  ippDelete(r);
  ck_assert_uint_eq(spooled_jobs(), 1);
  httpClose(http);
}
END_TEST

/* Send-Document of each refused kind: the job is aborted with the reason
 * in job-state-message, nothing is spooled, no second try. */
START_TEST(test_send_document_refused) {
  bool as_root = getuid() == 0;
  const char *user = as_root ? "nobody" : NULL;
  static const struct {
    bad_doc_t doc;
    const char *format;
    ipp_status_t want;
    const char *reason;
  } cases[] = {
    {DOC_TEXT, "application/octet-stream", IPP_STATUS_ERROR_DOCUMENT_FORMAT_NOT_SUPPORTED,
     "unsupported-document-format"},
    {DOC_LYING_PWG, "image/pwg-raster", IPP_STATUS_ERROR_DOCUMENT_FORMAT_ERROR,
     "document-format-error"},
    {DOC_EMPTY, "application/pdf", IPP_STATUS_ERROR_DOCUMENT_FORMAT_ERROR,
     "document-format-error"},
    {DOC_ENCRYPTED, "application/pdf", IPP_STATUS_ERROR_DOCUMENT_PASSWORD,
     "document-password-error"},
  };
  g_autofree char *data = NULL;
  gsize len = 0;
  if (!make_bad_document(cases[_i].doc, &data, &len)) {
    fprintf(stderr, "qpdf not usable; skipped\n");
    return;
  }
  http_t *http = connect_to("127.0.0.1");
  int id = create_job(http, user, "refused");
  ipp_t *r = send_document(http, user, id, cases[_i].format, data, len, 1);
  assert_status(r, cases[_i].want);
  g_autofree char *sent_message = g_strdup(status_message(r));
  ippDelete(r);
  assert_nothing_spooled();

  r = do_request(http, job_request(IPP_OP_GET_JOB_ATTRIBUTES, user, id));
  assert_status(r, IPP_STATUS_OK);
  ck_assert_int_eq(ippGetInteger(ippFindAttribute(r, "job-state", IPP_TAG_ENUM), 0),
                   IPP_JSTATE_ABORTED);
  ipp_attribute_t *a = ippFindAttribute(r, "job-state-reasons", IPP_TAG_KEYWORD);
  ck_assert_msg(a != NULL && ippContainsString(a, cases[_i].reason), "reason: got %s, expected %s",
                a ? ippGetString(a, 0, NULL) : "none", cases[_i].reason);
  a = ippFindAttribute(r, "job-state-message", IPP_TAG_TEXT);
  ck_assert_msg(a != NULL && strcmp(ippGetString(a, 0, NULL), sent_message) == 0,
                "job-state-message \"%s\", expected the refusal \"%s\"",
                a ? ippGetString(a, 0, NULL) : "", sent_message);
  ippDelete(r);
  r = get_jobs(http, user, "completed");
  ck_assert_int_eq(count_jobs_in(r), 1);
  ippDelete(r);

  r = send_document(http, user, id, "application/pdf", "%PDF-", 5, 1);
  assert_status(r, IPP_STATUS_ERROR_NOT_POSSIBLE);
  ippDelete(r);
  r = do_request(http, job_request(IPP_OP_CANCEL_JOB, user, id));
  assert_status(r, IPP_STATUS_ERROR_NOT_POSSIBLE);
  ippDelete(r);
  assert_nothing_spooled();
  httpClose(http);
}
END_TEST

START_TEST(test_cancel_created) {
  bool as_root = getuid() == 0;
  const char *user = as_root ? "nobody" : NULL;
  http_t *http = connect_to("127.0.0.1");
  int a = create_job(http, user, "a");
  int b = create_job(http, user, "b");
  int c = create_job(http, user, "c");
  int spooled = print_ok(http, user);

  /* Cancel-Job of a created job: canceled; twice: not possible. */
  ipp_t *r = do_request(http, job_request(IPP_OP_CANCEL_JOB, user, a));
  assert_status(r, IPP_STATUS_OK);
  ippDelete(r);
  assert_job_state(http, user, a, IPP_JSTATE_CANCELED);
  r = do_request(http, job_request(IPP_OP_CANCEL_JOB, user, a));
  assert_status(r, IPP_STATUS_ERROR_NOT_POSSIBLE);
  ippDelete(r);
  /* A spooled job is completed: Cancel-Job is not possible, it stays. */
  r = do_request(http, job_request(IPP_OP_CANCEL_JOB, user, spooled));
  assert_status(r, IPP_STATUS_ERROR_NOT_POSSIBLE);
  ippDelete(r);
  ck_assert_uint_eq(spooled_jobs(), 1);

  /* Cancel-My-Jobs naming a spooled job: not possible, nothing canceled. */
  ipp_t *request = new_request(IPP_OP_CANCEL_MY_JOBS, user);
  int ids[] = {b, spooled};
  ippAddIntegers(request, IPP_TAG_OPERATION, IPP_TAG_INTEGER, "job-ids", 2, ids);
  r = do_request(http, request);
  assert_status(r, IPP_STATUS_ERROR_NOT_POSSIBLE);
  ippDelete(r);
  assert_job_state(http, user, b, IPP_JSTATE_PENDING);
  /* Naming b: only b. */
  request = new_request(IPP_OP_CANCEL_MY_JOBS, user);
  ippAddIntegers(request, IPP_TAG_OPERATION, IPP_TAG_INTEGER, "job-ids", 1, ids);
  r = do_request(http, request);
  assert_status(r, IPP_STATUS_OK);
  ippDelete(r);
  assert_job_state(http, user, b, IPP_JSTATE_CANCELED);
  assert_job_state(http, user, c, IPP_JSTATE_PENDING);
  /* All of mine: c too. */
  r = do_request(http, new_request(IPP_OP_CANCEL_MY_JOBS, user));
  assert_status(r, IPP_STATUS_OK);
  ippDelete(r);
  assert_job_state(http, user, c, IPP_JSTATE_CANCELED);
  r = get_jobs(http, user, NULL);
  ck_assert_int_eq(count_jobs_in(r), 0);
  ippDelete(r);
  r = get_jobs(http, user, "all");
  ck_assert_int_eq(count_jobs_in(r), 4);
  ippDelete(r);
  /* A canceled job takes no document. */
  r = send_document(http, user, c, "application/pdf", "%PDF-", 5, 1);
  assert_status(r, IPP_STATUS_ERROR_NOT_POSSIBLE);
  ippDelete(r);
  ck_assert_uint_eq(spooled_jobs(), 1);
  httpClose(http);
}
END_TEST

/* Another user can neither see, send to, close nor cancel a created job. */
START_TEST(test_created_job_privacy) {
  if (getuid() != 0) {
    fprintf(stderr, "not root: owners by requesting-user-name not testable; skipped\n");
    return;
  }
  http_t *http = connect_to("127.0.0.1");
  int id = create_job(http, "nobody", "private");
  int state = 0;
  ck_assert_int_eq(job_state(http, "daemon", id, &state, NULL), IPP_STATUS_ERROR_NOT_FOUND);
  ipp_t *r = get_jobs(http, "daemon", "all");
  ck_assert_int_eq(count_jobs_in(r), 0);
  ippDelete(r);
  r = send_document(http, "daemon", id, "application/pdf", "%PDF-", 5, 1);
  assert_status(r, IPP_STATUS_ERROR_NOT_FOUND);
  ippDelete(r);
  r = do_request(http, job_request(IPP_OP_CANCEL_JOB, "daemon", id));
  assert_status(r, IPP_STATUS_ERROR_NOT_FOUND);
  ippDelete(r);
  r = do_request(http, job_request(IPP_OP_CLOSE_JOB, "daemon", id));
  assert_status(r, IPP_STATUS_ERROR_NOT_FOUND);
  ippDelete(r);
  ipp_t *request = new_request(IPP_OP_CANCEL_MY_JOBS, "daemon");
  ippAddInteger(request, IPP_TAG_OPERATION, IPP_TAG_INTEGER, "job-ids", id);
  r = do_request(http, request);
  assert_status(r, IPP_STATUS_ERROR_NOT_FOUND);
  ippDelete(r);
  r = do_request(http, new_request(IPP_OP_CANCEL_MY_JOBS, "daemon"));
  assert_status(r, IPP_STATUS_OK);
  ippDelete(r);
  assert_job_state(http, "nobody", id, IPP_JSTATE_PENDING);

  /* Nor can a process of another uid claim the owner's name. */
  ipp_status_t st = print_as_uid(1, "nobody");
  ck_assert_int_eq(st, IPP_STATUS_OK);
  assert_job_state(http, "nobody", id, IPP_JSTATE_PENDING);

  /* The owner's document lands in the owner's spool. */
  g_autofree char *pdf = NULL;
  gsize len = 0;
  ck_assert(g_file_get_contents(TEST_PDF, &pdf, &len, NULL));
  r = send_document(http, "nobody", id, "application/pdf", pdf, len, 1);
  assert_status(r, IPP_STATUS_OK);
  ippDelete(r);
  GPtrArray *jobs = kcps_spool_list_jobs(spool, 65534, NULL);
  ck_assert_uint_eq(jobs->len, 1);
  g_ptr_array_unref(jobs);
  ck_assert_int_eq(job_state(http, "daemon", id, &state, NULL), IPP_STATUS_ERROR_NOT_FOUND);
  httpClose(http);
}
END_TEST

/* A created job whose document does not come in time is aborted. */
START_TEST(test_created_job_expires) {
  bool as_root = getuid() == 0;
  const char *user = as_root ? "nobody" : NULL;
  g_mutex_lock(&server->lock);
  server->incoming_timeout_us = 0; /* every waiting job is overdue at once */
  g_mutex_unlock(&server->lock);
  http_t *http = connect_to("127.0.0.1");
  int id = create_job(http, user, "late");
  int state = 0;
  g_autofree char *message = NULL;
  ck_assert_int_eq(job_state(http, user, id, &state, &message), IPP_STATUS_OK);
  ck_assert_int_eq(state, IPP_JSTATE_ABORTED);
  ck_assert_msg(strstr(message, "No document arrived") != NULL, "message: %s", message);
  ipp_t *r = send_document(http, user, id, "application/pdf", "%PDF-", 5, 1);
  assert_status(r, IPP_STATUS_ERROR_NOT_POSSIBLE);
  ippDelete(r);
  assert_nothing_spooled();
  httpClose(http);
}
END_TEST

int main(void) {
  Suite *s = suite_create("ipp");
  TCase *tc = tcase_create("printer");
  tcase_add_unchecked_fixture(tc, setup_root, teardown_root);
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_printer_attributes);
  tcase_add_test(tc, test_everywhere_attributes);
  tcase_add_test(tc, test_ipv6_loopback);
  tcase_add_test(tc, test_port_in_use);
  tcase_add_test(tc, test_free_with_idle_connection);
  suite_add_tcase(s, tc);

  tc = tcase_create("print-job");
  tcase_add_unchecked_fixture(tc, setup_root, teardown_root);
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_loop_test(tc, test_print_pdf, 0, 2); /* with a length, then chunked */
  tcase_add_test(tc, test_print_multipage);
  tcase_add_loop_test(tc, test_refuse_document, 0, G_N_ELEMENTS(bad_documents));
  tcase_add_test(tc, test_too_large);
  tcase_add_test(tc, test_validate_job);
  tcase_add_test(tc, test_clean_job_name);
  tcase_add_test(tc, test_garbage_after_valid_ipp);
  tcase_add_test(tc, test_concurrent_senders);
  suite_add_tcase(s, tc);

  tc = tcase_create("formats");
  tcase_add_unchecked_fixture(tc, setup_root, teardown_root);
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 60); /* gs and qpdf make documents, also under load */
  tcase_add_loop_test(tc, test_print_format, 0, G_N_ELEMENTS(formats));
  tcase_add_loop_test(tc, test_refuse_format, 0, G_N_ELEMENTS(refusals));
  tcase_add_loop_test(tc, test_too_large_converted, 0, 2);
  tcase_add_test(tc, test_sniff_format);
  tcase_add_test(tc, test_disk_full_converted);
  suite_add_tcase(s, tc);

  tc = tcase_create("create-job");
  tcase_add_unchecked_fixture(tc, setup_root, teardown_root);
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 60); /* gs and qpdf make documents, also under load */
  tcase_add_test(tc, test_create_send_close);
  tcase_add_loop_test(tc, test_send_document_refused, 0, 4);
  tcase_add_test(tc, test_cancel_created);
  tcase_add_test(tc, test_created_job_privacy);
  tcase_add_test(tc, test_created_job_expires);
  suite_add_tcase(s, tc);

  tc = tcase_create("requests");
  tcase_add_unchecked_fixture(tc, setup_root, teardown_root);
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_missing_attributes);
  tcase_add_loop_test(tc, test_raw_http, 0, G_N_ELEMENTS(raw_cases));
  suite_add_tcase(s, tc);

  tc = tcase_create("jobs");
  tcase_add_unchecked_fixture(tc, setup_root, teardown_root);
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_jobs);
  tcase_add_test(tc, test_peer_is_owner);
  tcase_add_test(tc, test_hang_up_is_not_root);
  suite_add_tcase(s, tc);

  tc = tcase_create("user-mode");
  tcase_add_unchecked_fixture(tc, setup_root, teardown_root);
  tcase_add_checked_fixture(tc, setup_user_mode, teardown);
  tcase_add_test(tc, test_user_mode);
  suite_add_tcase(s, tc);

  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
