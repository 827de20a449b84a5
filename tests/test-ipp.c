/* Tests of the virtual printer, driven in-process with libcups's client
 * API: printer attributes, Print-Job into the spool, refusals of bad
 * documents and bad requests, job queries, owners and user mode. */
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
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ipp/ipp-private.h"
#include "ipp/ipp-server.h"

#define TEST_PDF "/usr/share/cups/data/default-testpage.pdf"

/* ---- fixture: a spool and a server on a free port --------------------- */

static char *tmp_dir;
static kcps_spool_t *spool;
static kcps_ipp_server_t *server;
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
  tmp_dir = g_dir_make_tmp("kcps-test-ipp-XXXXXX", NULL);
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

static void teardown(void) {
  kcps_ipp_server_free(server);
  server = NULL;
  kcps_spool_close(spool);
  spool = NULL;
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
  /* Only what is accepted is advertised: no raster or image formats yet. */
  a = ippFindAttribute(r, "document-format-supported", IPP_TAG_MIMETYPE);
  static const char *const not_accepted[] = {"image/pwg-raster", "image/urf", "image/jpeg",
                                             "image/png", "application/postscript"};
  for (size_t i = 0; i < G_N_ELEMENTS(not_accepted); i++)
    ck_assert_msg(!ippContainsString(a, not_accepted[i]),
                  "document-format-supported lists %s, which is not accepted", not_accepted[i]);
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

  /* PWG raster's description, for when the format is accepted. */
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
  r = cupsDoRequest(http, new_request(IPP_OP_CREATE_JOB, NULL), "/ipp/print");
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
static ipp_status_t print_as_uid(uid_t uid, const char *user) {
  int fds[2];
  ck_assert_int_eq(pipe(fds), 0);
  int port = kcps_ipp_server_port(server);
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    close(fds[0]);
    int status = -1;
    if (setgid(uid) == 0 && setuid(uid) == 0) {
      http_t *http = httpConnect2("127.0.0.1", port, NULL, AF_INET, HTTP_ENCRYPTION_NEVER, 1,
                                  10000, NULL);
      if (http != NULL) {
        ipp_t *request = ippNewRequest(IPP_OP_PRINT_JOB);
        char uri[128];
        snprintf(uri, sizeof uri, "ipp://localhost:%d/ipp/print", port);
        ippAddString(request, IPP_TAG_OPERATION, IPP_TAG_URI, "printer-uri", NULL, uri);
        if (user != NULL)
          ippAddString(request, IPP_TAG_OPERATION, IPP_TAG_NAME, "requesting-user-name", NULL,
                       user);
        ipp_t *r = cupsDoFileRequest(http, request, "/ipp/print", TEST_PDF);
        status = r != NULL ? (int)ippGetStatusCode(r) : -2;
        ippDelete(r);
        httpClose(http);
      }
    }
    (void)!write(fds[1], &status, sizeof status);
    _exit(0);
  }
  close(fds[1]);
  int status = -3;
  ck_assert_int_eq(read(fds[0], &status, sizeof status), (ssize_t)sizeof status);
  close(fds[0]);
  waitpid(pid, NULL, 0);
  return (ipp_status_t)status;
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

static ssize_t append_bytes(void *context, ipp_uchar_t *buffer, size_t bytes) {
  g_byte_array_append(context, buffer, (guint)bytes);
  return (ssize_t)bytes;
}

/* A child as uid sends a whole Print-Job naming user, then hangs up at
 * once: its socket is left without an owner process (uid 0 in the kernel's
 * table), which must not pass for the print system. */
static void print_and_hang_up(uid_t uid, const char *user) {
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
    "Content-Length: %zu\r\n\r\n", (size_t)ipp->len + len);
  int port = kcps_ipp_server_port(server);

  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    if (setgid(uid) != 0 || setuid(uid) != 0)
      _exit(2);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sin, sizeof sin) != 0)
      _exit(3);
    (void)!send(fd, head, strlen(head), MSG_NOSIGNAL);
    (void)!send(fd, ipp->data, ipp->len, MSG_NOSIGNAL);
    (void)!send(fd, pdf, len, MSG_NOSIGNAL);
    close(fd);
    _exit(0);
  }
  int status = -1;
  waitpid(pid, &status, 0);
  g_byte_array_unref(ipp);
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

int main(void) {
  Suite *s = suite_create("ipp");
  TCase *tc = tcase_create("printer");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_printer_attributes);
  tcase_add_test(tc, test_everywhere_attributes);
  tcase_add_test(tc, test_ipv6_loopback);
  tcase_add_test(tc, test_port_in_use);
  tcase_add_test(tc, test_free_with_idle_connection);
  suite_add_tcase(s, tc);

  tc = tcase_create("print-job");
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

  tc = tcase_create("requests");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_missing_attributes);
  tcase_add_loop_test(tc, test_raw_http, 0, G_N_ELEMENTS(raw_cases));
  suite_add_tcase(s, tc);

  tc = tcase_create("jobs");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_jobs);
  tcase_add_test(tc, test_peer_is_owner);
  tcase_add_test(tc, test_hang_up_is_not_root);
  suite_add_tcase(s, tc);

  tc = tcase_create("user-mode");
  tcase_add_checked_fixture(tc, setup_user_mode, teardown);
  tcase_add_test(tc, test_user_mode);
  suite_add_tcase(s, tc);

  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
