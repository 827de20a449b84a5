/* Unit tests of direct printing (client/release*.c): the release request and
 * printer URIs, capabilities and the plan chosen from them, the certificate
 * pins, the rasterizer (read back with libcups), and the releaser's refusals
 * and its handling of a printer nobody answers for, the release journal
 * (lines, compaction, damage, resuming). The real printers
 * (ippeveprinter PDF, raster, IPPS) are in tests/integration/direct-print.sh. */
#include "client/release.h"

#include <check.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define TESTPAGE "/usr/share/cups/data/default-testpage.pdf"

static void rm_rf(const char *dir)
{
  g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", dir);
  ck_assert_int_eq(system(cmd), 0);
}

/* A loopback port nobody listens on (bound, then released). */
static int closed_port(void)
{
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  ck_assert_int_eq(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
  socklen_t len = sizeof(addr);
  ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&addr, &len), 0);
  close(fd);
  return ntohs(addr.sin_port);
}

/* --- the request and URIs ------------------------------------------------------ */

static const struct {
  const char *body;
  bool ok;
  const char *in_message; /* for refusals: what the message must name */
  int copies;
  kcps_color_t color;
  bool duplex;
} requests[] = {
  {"{\"printer\":\"ipp://p.local/ipp/print\"}", true, NULL, 1, KCPS_COLOR_AUTO, false},
  {"{\"printer\":\"ipps://10.0.0.5:443/ipp/print\",\"copies\":3,\"color\":false,"
   "\"duplex\":true}", true, NULL, 3, KCPS_COLOR_MONO, true},
  {"{\"printer\":\"ipp://p/x\",\"color\":true}", true, NULL, 1, KCPS_COLOR_COLOR, false},
  {"{\"printer\":\"ipp://p/x\",\"color\":null}", true, NULL, 1, KCPS_COLOR_AUTO, false},
  {"", false, "empty", 0, 0, false},
  {"[]", false, "object", 0, 0, false},
  {"{\"copies\":2}", false, "printer", 0, 0, false},
  {"{\"printer\":\"http://p/ipp/print\"}", false, "printer", 0, 0, false},
  {"{\"printer\":\"ipp://user:pw@p/ipp/print\"}", false, "printer", 0, 0, false},
  {"{\"printer\":\"ipp:///ipp/print\"}", false, "printer", 0, 0, false},
  {"{\"printer\":42}", false, "printer", 0, 0, false},
  {"{\"printer\":\"ipp://p/x\",\"copies\":0}", false, "copies", 0, 0, false},
  {"{\"printer\":\"ipp://p/x\",\"copies\":1000}", false, "copies", 0, 0, false},
  {"{\"printer\":\"ipp://p/x\",\"copies\":\"2\"}", false, "copies", 0, 0, false},
  {"{\"printer\":\"ipp://p/x\",\"color\":\"yes\"}", false, "color", 0, 0, false},
  {"{\"printer\":\"ipp://p/x\",\"duplex\":1}", false, "duplex", 0, 0, false},
  {"{\"printer\":\"ipp://p/x\",\"quota\":1}", false, "quota", 0, 0, false},
};

START_TEST(test_parse_request)
{
  const char *body = requests[_i].body;
  kcps_release_opts_t opts;
  JsonNode *keep = NULL;
  g_autoptr(GError) error = NULL;
  bool ok = kcps_release_parse_request(body, strlen(body), &opts, &keep, &error);
  ck_assert_msg(ok == requests[_i].ok, "%s: got %s, expected %s (%s)", body,
                ok ? "accepted" : "refused", requests[_i].ok ? "accepted" : "refused",
                error != NULL ? error->message : "");
  if (ok) {
    ck_assert_int_eq(opts.copies, requests[_i].copies);
    ck_assert_int_eq(opts.color, requests[_i].color);
    ck_assert_int_eq(opts.duplex, requests[_i].duplex);
    ck_assert_ptr_nonnull(opts.printer);
    json_node_unref(keep);
  } else {
    ck_assert(g_error_matches(error, KCPS_RELEASE_ERROR, KCPS_RELEASE_ERROR_BAD_REQUEST));
    ck_assert_msg(strstr(error->message, requests[_i].in_message) != NULL,
                  "%s: message \"%s\" does not name %s", body, error->message,
                  requests[_i].in_message);
  }
}
END_TEST

START_TEST(test_uri_key)
{
  static const struct {
    const char *uri, *key;
  } table[] = {
    {"ipp://Printer.Example/ipp/print", "printer.example:631"},
    {"ipps://printer.example:443/ipp/print", "printer.example:443"},
    {"ipp://127.0.0.1:8631/ipp/print", "127.0.0.1:8631"},
    {"ipps://[::1]:9443/ipp/print", "::1:9443"},
  };
  for (size_t i = 0; i < G_N_ELEMENTS(table); i++) {
    g_autofree char *key = NULL;
    g_autoptr(GError) error = NULL;
    ck_assert_msg(kcps_release_check_uri(table[i].uri, &key, &error), "%s refused: %s",
                  table[i].uri, error != NULL ? error->message : "");
    ck_assert_msg(g_strcmp0(key, table[i].key) == 0, "%s: key %s, expected %s", table[i].uri,
                  key, table[i].key);
  }
}
END_TEST

/* --- capabilities and the plan ----------------------------------------------------- */

/* A Get-Printer-Attributes answer with the given formats and extras. */
static ipp_t *printer_attrs(const char *formats, bool color, bool duplex, int copies_max)
{
  ipp_t *r = ippNew();
  g_auto(GStrv) list = g_strsplit(formats, ",", -1);
  ippAddStrings(r, IPP_TAG_PRINTER, IPP_TAG_MIMETYPE, "document-format-supported",
                (int)g_strv_length(list), NULL, (const char *const *)list);
  const int ops[] = {IPP_OP_PRINT_JOB, IPP_OP_CREATE_JOB, IPP_OP_SEND_DOCUMENT,
                     IPP_OP_GET_JOB_ATTRIBUTES};
  ippAddIntegers(r, IPP_TAG_PRINTER, IPP_TAG_ENUM, "operations-supported", 4, ops);
  const char *modes[] = {"monochrome", "color"};
  ippAddStrings(r, IPP_TAG_PRINTER, IPP_TAG_KEYWORD, "print-color-mode-supported",
                color ? 2 : 1, NULL, modes);
  const char *sides[] = {"one-sided", "two-sided-long-edge"};
  ippAddStrings(r, IPP_TAG_PRINTER, IPP_TAG_KEYWORD, "sides-supported", duplex ? 2 : 1, NULL,
                sides);
  ippAddRange(r, IPP_TAG_PRINTER, "copies-supported", 1, copies_max);
  int xres[] = {600, 300}, yres[] = {600, 300};
  ippAddResolutions(r, IPP_TAG_PRINTER, "pwg-raster-document-resolution-supported", 2,
                    IPP_RES_PER_INCH, xres, yres);
  const char *types[] = {"sgray_8", "srgb_8"};
  ippAddStrings(r, IPP_TAG_PRINTER, IPP_TAG_KEYWORD, "pwg-raster-document-type-supported",
                color ? 2 : 1, NULL, types);
  const char *urf[] = {"V1.4", "W8", "SRGB24", "RS150-300", "DM1"};
  ippAddStrings(r, IPP_TAG_PRINTER, IPP_TAG_KEYWORD, "urf-supported", color ? 5 : 5, NULL, urf);
  return r;
}

START_TEST(test_plan)
{
  kcps_printer_caps_t caps;
  kcps_raster_plan_t plan;
  kcps_release_opts_t opts = {"ipp://p/x", 1, KCPS_COLOR_AUTO, false};

  ipp_t *r = printer_attrs("application/pdf,image/pwg-raster", true, true, 99);
  kcps_release_caps_from_ipp(r, &caps);
  ippDelete(r);
  ck_assert(caps.pdf && caps.pwg && !caps.urf && caps.create_job && caps.color && caps.duplex);
  ck_assert_int_eq(caps.copies_max, 99);
  ck_assert(kcps_release_plan(&caps, &opts, &plan, NULL));
  ck_assert_str_eq(plan.format, "application/pdf");

  /* Raster only: PWG at the lowest resolution of at least 150 dpi. */
  r = printer_attrs("image/pwg-raster,image/urf", true, false, 1);
  kcps_release_caps_from_ipp(r, &caps);
  ippDelete(r);
  ck_assert(!caps.pdf && caps.pwg && caps.urf);
  ck_assert(kcps_release_plan(&caps, &opts, &plan, NULL));
  ck_assert_str_eq(plan.format, "image/pwg-raster");
  ck_assert_int_eq(plan.dpi, 300);
  ck_assert(plan.color);
  opts.color = KCPS_COLOR_MONO;
  ck_assert(kcps_release_plan(&caps, &opts, &plan, NULL));
  ck_assert(!plan.color);

  /* URF only: RS150-300 gives 150 and 300; 150 is taken. */
  r = printer_attrs("image/urf", false, false, 1);
  kcps_release_caps_from_ipp(r, &caps);
  ippDelete(r);
  ck_assert_int_eq(caps.n_urf_res, 2);
  ck_assert(kcps_release_plan(&caps, &opts, &plan, NULL));
  ck_assert_str_eq(plan.format, "image/urf");
  ck_assert_int_eq(plan.dpi, 150);

  /* Refusals name what the printer lacks. */
  static const struct {
    int copies;
    kcps_color_t color;
    bool duplex;
    const char *in_message;
  } refusals[] = {
    {2, KCPS_COLOR_AUTO, false, "copies"},
    {1, KCPS_COLOR_AUTO, true, "two-sided"},
    {1, KCPS_COLOR_COLOR, false, "monochrome"},
  };
  r = printer_attrs("application/pdf", false, false, 1);
  kcps_release_caps_from_ipp(r, &caps);
  ippDelete(r);
  for (size_t i = 0; i < G_N_ELEMENTS(refusals); i++) {
    kcps_release_opts_t o = {"ipp://p/x", refusals[i].copies, refusals[i].color,
                             refusals[i].duplex};
    g_autoptr(GError) error = NULL;
    ck_assert(!kcps_release_plan(&caps, &o, &plan, &error));
    ck_assert(g_error_matches(error, KCPS_RELEASE_ERROR, KCPS_RELEASE_ERROR_UNSUPPORTED));
    ck_assert_msg(strstr(error->message, refusals[i].in_message) != NULL,
                  "message \"%s\" does not name %s", error->message, refusals[i].in_message);
  }
  /* A printer that takes nothing we make. */
  r = printer_attrs("image/jpeg", true, true, 9);
  kcps_release_caps_from_ipp(r, &caps);
  ippDelete(r);
  g_autoptr(GError) error = NULL;
  ck_assert(!kcps_release_plan(&caps, &opts, &plan, &error));
  ck_assert_ptr_nonnull(strstr(error->message, "document-format-supported"));
  /* No answer at all: nothing supported, nothing crashes. */
  kcps_release_caps_from_ipp(NULL, &caps);
  ck_assert(!caps.pdf && !caps.pwg && !caps.urf);
}
END_TEST

/* --- pins ---------------------------------------------------------------------- */

START_TEST(test_pins)
{
  g_autofree char *dir = g_dir_make_tmp("kcps-pins-XXXXXX", NULL);
  g_autofree char *path = g_build_filename(dir, "printer-pins", NULL);
  const char *a = "aa11", *b = "bb22";
  kcps_pin_result_t result;
  ck_assert(kcps_release_pin_check(path, "p1:631", a, &result, NULL));
  ck_assert_int_eq(result, KCPS_PIN_NEW);
  ck_assert(kcps_release_pin_check(path, "p2:443", b, &result, NULL));
  ck_assert_int_eq(result, KCPS_PIN_NEW);
  ck_assert(kcps_release_pin_check(path, "p1:631", a, &result, NULL));
  ck_assert_int_eq(result, KCPS_PIN_MATCH);
  ck_assert(kcps_release_pin_check(path, "p1:631", b, &result, NULL));
  ck_assert_int_eq(result, KCPS_PIN_CHANGED);
  /* A key that is a prefix of another is not the other. */
  ck_assert(kcps_release_pin_check(path, "p1:63", b, &result, NULL));
  ck_assert_int_eq(result, KCPS_PIN_NEW);
  GStatBuf st;
  ck_assert_int_eq(g_stat(path, &st), 0);
  ck_assert_int_eq(st.st_mode & 0777, 0600);

  bool removed = false;
  ck_assert(kcps_release_pin_forget(path, "p1:631", &removed, NULL));
  ck_assert(removed);
  ck_assert(kcps_release_pin_forget(path, "p1:631", &removed, NULL));
  ck_assert(!removed);
  ck_assert(kcps_release_pin_check(path, "p1:631", b, &result, NULL));
  ck_assert_int_eq(result, KCPS_PIN_NEW);
  /* The other printers' pins stayed. */
  ck_assert(kcps_release_pin_check(path, "p2:443", b, &result, NULL));
  ck_assert_int_eq(result, KCPS_PIN_MATCH);
  rm_rf(dir);
}
END_TEST

/* --- rasterizing ------------------------------------------------------------------ */

typedef struct {
  GByteArray *bytes;
  size_t pos;
} membuf_t;

static ssize_t mem_write(void *ctx, unsigned char *buf, size_t len)
{
  g_byte_array_append(((membuf_t *)ctx)->bytes, buf, (guint)len);
  return (ssize_t)len;
}

static ssize_t mem_read(void *ctx, unsigned char *buf, size_t len)
{
  membuf_t *m = ctx;
  size_t n = MIN(len, m->bytes->len - m->pos);
  memcpy(buf, m->bytes->data + m->pos, n);
  m->pos += n;
  return (ssize_t)n;
}

START_TEST(test_rasterize)
{
  static const struct {
    const char *format;
    bool color;
    const char *magic;
  } table[] = {
    {"image/pwg-raster", true, "RaS2"},
    {"image/pwg-raster", false, "RaS2"},
    {"image/urf", true, "UNIRAST"},
  };
  const kcps_raster_plan_t plan = {table[_i].format, 150, table[_i].color};
  int fd = open(TESTPAGE, O_RDONLY | O_CLOEXEC);
  ck_assert_int_ge(fd, 0);
  membuf_t m = {g_byte_array_new(), 0};
  int pages = 0;
  g_autoptr(GError) error = NULL;
  ck_assert_msg(kcps_release_rasterize(fd, &plan, false, mem_write, &m, &pages, &error), "%s",
                error != NULL ? error->message : "");
  ck_assert_int_eq(pages, 1);
  ck_assert_msg(memcmp(m.bytes->data, table[_i].magic, strlen(table[_i].magic)) == 0,
                "stream does not start with %s", table[_i].magic);
  if (strcmp(table[_i].format, "image/pwg-raster") == 0) {
    /* Read it back as a printer would: one page, the resolution and size asked. */
    cups_raster_t *ras = cupsRasterOpenIO(mem_read, &m, CUPS_RASTER_READ);
    cups_page_header2_t h;
    ck_assert(cupsRasterReadHeader2(ras, &h));
    ck_assert_int_eq(h.HWResolution[0], 150);
    ck_assert_int_eq(h.cupsBitsPerPixel, table[_i].color ? 24 : 8);
    ck_assert_int_gt(h.cupsWidth, 1000);
    ck_assert_int_gt(h.cupsHeight, 1000);
    g_autofree unsigned char *line = g_malloc(h.cupsBytesPerLine);
    for (unsigned y = 0; y < h.cupsHeight; y++)
      ck_assert_uint_eq(cupsRasterReadPixels(ras, line, h.cupsBytesPerLine),
                        h.cupsBytesPerLine);
    ck_assert(!cupsRasterReadHeader2(ras, &h));
    cupsRasterClose(ras);
  } else {
    /* URF's file header carries the page count (big-endian). */
    const guint8 *p = m.bytes->data + 8;
    ck_assert_int_eq((p[0] << 24) | (p[1] << 16) | (p[2] << 8) | p[3], 1);
  }
  g_byte_array_unref(m.bytes);
}
END_TEST

START_TEST(test_rasterize_not_pdf)
{
  g_autofree char *dir = g_dir_make_tmp("kcps-ras-XXXXXX", NULL);
  g_autofree char *path = g_build_filename(dir, "junk.pdf", NULL);
  ck_assert(g_file_set_contents(path, "%PDF-1.4 not really", -1, NULL));
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  const kcps_raster_plan_t plan = {"image/pwg-raster", 150, false};
  membuf_t m = {g_byte_array_new(), 0};
  int pages = 0;
  g_autoptr(GError) error = NULL;
  ck_assert(!kcps_release_rasterize(fd, &plan, false, mem_write, &m, &pages, &error));
  ck_assert(g_error_matches(error, KCPS_RELEASE_ERROR, KCPS_RELEASE_ERROR_IO));
  ck_assert_int_eq(pages, 0);
  g_byte_array_unref(m.bytes);
  rm_rf(dir);
}
END_TEST

/* --- the releaser ------------------------------------------------------------------- */

typedef struct {
  char *dir;
  kcps_spool_t *spool;
  kcps_releaser_t *releaser;
  char *job_id;
} fixture_t;

static void fixture_open(fixture_t *f)
{
  f->dir = g_dir_make_tmp("kcps-release-XXXXXX", NULL);
  g_autofree char *spool_dir = g_build_filename(f->dir, "spool", NULL);
  f->spool = kcps_spool_open(spool_dir, NULL);
  ck_assert_ptr_nonnull(f->spool);
  f->releaser = kcps_releaser_new(f->spool, f->dir);
  kcps_releaser_set_timing(f->releaser, 1000, 200);
  kcps_spool_writer_t *w = kcps_spool_writer_new(f->spool, getuid(), "me", "page",
                                                 "application/pdf", NULL);
  g_autofree char *pdf = NULL;
  gsize len = 0;
  ck_assert(g_file_get_contents(TESTPAGE, &pdf, &len, NULL));
  ck_assert(kcps_spool_writer_write(w, pdf, len, NULL));
  g_autoptr(kcps_job_t) job = kcps_spool_writer_commit(w, NULL);
  ck_assert_ptr_nonnull(job);
  f->job_id = g_strdup(job->id);
}

static void fixture_close(fixture_t *f)
{
  kcps_releaser_free(f->releaser);
  kcps_spool_close(f->spool);
  rm_rf(f->dir);
  g_free(f->dir);
  g_free(f->job_id);
}

static const char *state_of(JsonNode *node)
{
  return json_object_get_string_member(json_node_get_object(node), "state");
}

START_TEST(test_releaser_refusals)
{
  fixture_t f;
  fixture_open(&f);
  kcps_release_opts_t opts = {"ipp://127.0.0.1:1/ipp/print", 1, KCPS_COLOR_AUTO, false};
  g_autoptr(GError) error = NULL;
  /* Another account's job does not exist for the caller. */
  ck_assert_ptr_null(kcps_releaser_start(f.releaser, getuid() + 1, f.job_id, &opts, &error));
  ck_assert(g_error_matches(error, KCPS_RELEASE_ERROR, KCPS_RELEASE_ERROR_NOT_FOUND));
  g_clear_error(&error);
  ck_assert_ptr_null(kcps_releaser_start(f.releaser, getuid(), "no-such-job", &opts, &error));
  ck_assert(g_error_matches(error, KCPS_RELEASE_ERROR, KCPS_RELEASE_ERROR_NOT_FOUND));
  g_clear_error(&error);
  opts.printer = "lpd://127.0.0.1/queue";
  ck_assert_ptr_null(kcps_releaser_start(f.releaser, getuid(), f.job_id, &opts, &error));
  ck_assert(g_error_matches(error, KCPS_RELEASE_ERROR, KCPS_RELEASE_ERROR_BAD_REQUEST));
  g_clear_error(&error);
  /* A printed job is not released again. */
  ck_assert(kcps_spool_set_state(f.spool, f.job_id, KCPS_JOB_STATE_PRINTED, NULL));
  opts.printer = "ipp://127.0.0.1:1/ipp/print";
  ck_assert_ptr_null(kcps_releaser_start(f.releaser, getuid(), f.job_id, &opts, &error));
  ck_assert(g_error_matches(error, KCPS_RELEASE_ERROR, KCPS_RELEASE_ERROR_CONFLICT));
  fixture_close(&f);
}
END_TEST

START_TEST(test_releaser_unreachable)
{
  fixture_t f;
  fixture_open(&f);
  g_autofree char *uri = g_strdup_printf("ipp://127.0.0.1:%d/ipp/print", closed_port());
  kcps_release_opts_t opts = {uri, 1, KCPS_COLOR_AUTO, false};
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) started = kcps_releaser_start(f.releaser, getuid(), f.job_id, &opts,
                                                    &error);
  ck_assert_ptr_nonnull(started);
  const char *rid = json_object_get_string_member(json_node_get_object(started), "id");
  /* A second release of the same job while the first runs (its retries
   * take 6 s) is refused. */
  g_autoptr(JsonNode) again = kcps_releaser_start(f.releaser, getuid(), f.job_id, &opts,
                                                  &error);
  ck_assert_ptr_null(again);
  ck_assert(g_error_matches(error, KCPS_RELEASE_ERROR, KCPS_RELEASE_ERROR_CONFLICT));
  g_autoptr(JsonNode) latest = kcps_releaser_latest_for_job(f.releaser, f.job_id);
  ck_assert_str_eq(json_object_get_string_member(json_node_get_object(latest), "id"), rid);
  /* Another account does not see the release. */
  ck_assert_ptr_null(kcps_releaser_get(f.releaser, getuid() + 1, rid));

  /* Wait for its end: retried, then failed; the job stays held. */
  JsonNode *now = NULL;
  for (int i = 0; i < 1200; i++) {
    now = kcps_releaser_get(f.releaser, getuid(), rid);
    if (strcmp(state_of(now), "failed") == 0)
      break;
    json_node_unref(now);
    now = NULL;
    g_usleep(50 * 1000);
  }
  ck_assert_msg(now != NULL, "the release to a closed port did not fail");
  JsonObject *o = json_node_get_object(now);
  ck_assert_int_eq(json_object_get_int_member(o, "attempts"), 6);
  ck_assert_ptr_nonnull(strstr(json_object_get_string_member(o, "message"), "attempts"));
  json_node_unref(now);
  g_autoptr(kcps_job_t) job = kcps_spool_get_job(f.spool, f.job_id, NULL);
  ck_assert_int_eq(job->state, KCPS_JOB_STATE_SPOOLED);
  g_autofree char *usage = g_build_filename(f.dir, "usage.jsonl", NULL);
  ck_assert(!g_file_test(usage, G_FILE_TEST_EXISTS));
  fixture_close(&f);
}
END_TEST

/* The quota hook: a refusal ends the release failed with its message before
 * the printer is even asked (a closed port: no attempt is made), with the
 * pages x copies and colour of the request; nothing is recorded. */
typedef struct hook_calls_s {
  int checks, used;
  int pages, copies;
  bool color;
} hook_calls_t;

static bool refuse_check(void *data, uid_t uid, const kcps_job_t *job, int copies, bool color,
                         char **message)
{
  hook_calls_t *calls = data;
  (void)uid;
  calls->checks++;
  calls->pages = job->pages;
  calls->copies = copies;
  calls->color = color;
  *message = g_strdup("quota exceeded: this job needs 6 pages and 1 of your monthly 4 pages "
                      "are left (2026-11)");
  return false;
}

static void count_used(void *data, kcps_usage_record_t *rec)
{
  (void)rec;
  ((hook_calls_t *)data)->used++;
}

START_TEST(test_releaser_quota_refused)
{
  fixture_t f;
  fixture_open(&f);
  hook_calls_t calls = {0};
  kcps_release_hooks_t hooks = {.check = refuse_check, .used = count_used, .data = &calls};
  kcps_releaser_set_hooks(f.releaser, &hooks);
  g_autofree char *uri = g_strdup_printf("ipp://127.0.0.1:%d/ipp/print", closed_port());
  kcps_release_opts_t opts = {uri, 2, KCPS_COLOR_MONO, false};
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) started = kcps_releaser_start(f.releaser, getuid(), f.job_id, &opts,
                                                    &error);
  ck_assert_ptr_nonnull(started);
  const char *rid = json_object_get_string_member(json_node_get_object(started), "id");
  JsonNode *now = NULL;
  for (;;) {
    now = kcps_releaser_get(f.releaser, getuid(), rid);
    if (strcmp(state_of(now), "failed") == 0)
      break;
    json_node_unref(now);
    g_usleep(10 * 1000);
  }
  JsonObject *o = json_node_get_object(now);
  ck_assert_str_eq(json_object_get_string_member(o, "message"),
                   "quota exceeded: this job needs 6 pages and 1 of your monthly 4 pages "
                   "are left (2026-11)");
  ck_assert_int_eq(json_object_get_int_member(o, "attempts"), 0);
  json_node_unref(now);
  ck_assert_int_eq(calls.checks, 1);
  ck_assert_int_eq(calls.copies, 2);
  ck_assert(!calls.color);
  ck_assert_int_ge(calls.pages, 1);
  ck_assert_int_eq(calls.used, 0);
  g_autoptr(kcps_job_t) job = kcps_spool_get_job(f.spool, f.job_id, NULL);
  ck_assert_int_eq(job->state, KCPS_JOB_STATE_SPOOLED);
  g_autofree char *usage = g_build_filename(f.dir, "usage.jsonl", NULL);
  ck_assert(!g_file_test(usage, G_FILE_TEST_EXISTS));
  fixture_close(&f);
}
END_TEST

/* --- the release journal --------------------------------------------------------- */

static kcps_release_record_t *make_record(const char *id, const char *job, const char *state,
                                          int printer_job_id)
{
  kcps_release_record_t *rec = g_new0(kcps_release_record_t, 1);
  rec->id = g_strdup(id);
  rec->uid = 1000;
  rec->job_id = g_strdup(job);
  rec->printer = g_strdup("ipp://127.0.0.1:631/ipp/print");
  rec->copies = 2;
  rec->color = KCPS_COLOR_MONO;
  rec->duplex = true;
  rec->pages = 3;
  rec->format = g_strdup("image/pwg-raster");
  rec->create_job = true;
  rec->created = 1764000000;
  rec->state = g_strdup(state);
  rec->printer_job_id = printer_job_id;
  return rec;
}

static void append_text(const char *path, const char *text)
{
  FILE *f = fopen(path, "a");
  ck_assert_ptr_nonnull(f);
  ck_assert_int_eq(fputs(text, f) >= 0, 1);
  ck_assert_int_eq(fclose(f), 0);
}

static guint count_lines(const char *path)
{
  g_autofree char *text = NULL;
  ck_assert(g_file_get_contents(path, &text, NULL, NULL));
  guint n = 0;
  for (const char *c = text; *c != '\0'; c++)
    n += *c == '\n';
  return n;
}

/* A line written is read back the same; every field is checked. */
START_TEST(test_journal_line)
{
  g_autoptr(kcps_release_record_t) rec = make_record("0123abcd-1111-2222-3333-444455556666",
                                                      "job-1", "printing", 17);
  rec->user = g_strdup("alice@a.test");
  g_autofree char *line = kcps_release_journal_line(rec);
  size_t len = strlen(line);
  ck_assert_int_eq(line[len - 1], '\n');
  ck_assert_ptr_null(memchr(line, '\n', len - 1));
  g_autoptr(GError) error = NULL;
  g_autoptr(kcps_release_record_t) back = kcps_release_journal_parse_line(line, len - 1, &error);
  ck_assert_msg(back != NULL, "%s", error != NULL ? error->message : "?");
  ck_assert_str_eq(back->id, rec->id);
  ck_assert_int_eq(back->uid, 1000);
  ck_assert_str_eq(back->job_id, "job-1");
  ck_assert_str_eq(back->printer, rec->printer);
  ck_assert_int_eq(back->copies, 2);
  ck_assert_int_eq(back->color, KCPS_COLOR_MONO);
  ck_assert(back->duplex);
  ck_assert_int_eq(back->pages, 3);
  ck_assert_str_eq(back->format, "image/pwg-raster");
  ck_assert(back->create_job);
  ck_assert_int_eq(back->created, 1764000000);
  ck_assert_str_eq(back->state, "printing");
  ck_assert_int_eq(back->printer_job_id, 17);
  ck_assert_str_eq(back->user, "alice@a.test");
  ck_assert(!kcps_release_state_final("sending"));
  ck_assert(!kcps_release_state_final("printing"));
  ck_assert(kcps_release_state_final("completed"));
  ck_assert(kcps_release_state_final("failed"));
}
END_TEST

static const struct {
  const char *line;
  const char *in_message;
} bad_lines[] = {
  {"", "empty"},
  {"{", "JSON"},
  {"[1,2]", "JSON"},
  {"{\"state\":\"sending\"}", "release id"},
  {"{\"id\":\"0123abcd-x\","
   "\"state\":\"sending\",\"uid\":1,\"job\":\"j\",\"printer\":\"ipp://p/x\","
   "\"copies\":1,\"pages\":1,\"created\":1,\"printer_job_id\":0,\"duplex\":false,"
   "\"create_job\":true,\"user\":7}", "user"},
  {"{\"id\":\"0123abcd-x\","
   "\"state\":\"sending\",\"uid\":1,\"job\":\"j\",\"printer\":\"http://p/x\","
   "\"copies\":1,\"pages\":1,\"created\":1,\"printer_job_id\":0,\"duplex\":false,"
   "\"create_job\":true}", "ipp"},
  {"{\"id\":\"0123abcd-x\","
   "\"state\":\"lost\",\"uid\":1,\"job\":\"j\",\"printer\":\"ipp://p/x\","
   "\"copies\":1,\"pages\":1,\"created\":1,\"printer_job_id\":0,\"duplex\":false,"
   "\"create_job\":true}", "state"},
  {"{\"id\":\"0123abcd-x\","
   "\"state\":\"sending\",\"uid\":-4,\"job\":\"j\",\"printer\":\"ipp://p/x\","
   "\"copies\":1,\"pages\":1,\"created\":1,\"printer_job_id\":0,\"duplex\":false,"
   "\"create_job\":true}", "uid"},
  {"{\"id\":\"0123abcd-x\","
   "\"state\":\"sending\",\"uid\":1,\"job\":\"j\",\"printer\":\"ipp://p/x\","
   "\"copies\":0,\"pages\":1,\"created\":1,\"printer_job_id\":0,\"duplex\":false,"
   "\"create_job\":true}", "copies"},
  {"{\"id\":\"0123abcd-x\","
   "\"state\":\"printing\",\"uid\":1,\"job\":\"j\",\"printer\":\"ipp://p/x\","
   "\"copies\":1,\"pages\":1,\"created\":1,\"printer_job_id\":0,\"duplex\":false,"
   "\"create_job\":true}", "printer_job_id"},
  {"{\"id\":\"0123abcd-x\","
   "\"state\":\"sending\",\"uid\":1,\"job\":\"j\",\"printer\":\"ipp://p/x\","
   "\"copies\":1,\"pages\":1,\"created\":1,\"printer_job_id\":0,\"duplex\":false,"
   "\"create_job\":true,\"format\":\"text/plain\"}", "format"},
  {"{\"id\":\"0123abcd-x\","
   "\"state\":\"sending\",\"uid\":1,\"job\":\"j\",\"printer\":\"ipp://p/x\","
   "\"copies\":1,\"pages\":1,\"created\":1,\"printer_job_id\":0,\"duplex\":\"yes\","
   "\"create_job\":true}", "duplex"},
};

START_TEST(test_journal_bad_line)
{
  const char *line = bad_lines[_i].line;
  g_autoptr(GError) error = NULL;
  kcps_release_record_t *rec = kcps_release_journal_parse_line(line, strlen(line), &error);
  ck_assert_msg(rec == NULL, "line %d was taken", _i);
  ck_assert(g_error_matches(error, KCPS_RELEASE_ERROR, KCPS_RELEASE_ERROR_BAD_REQUEST));
  ck_assert_msg(strstr(error->message, bad_lines[_i].in_message) != NULL,
                "line %d: '%s' does not name %s", _i, error->message, bad_lines[_i].in_message);
}
END_TEST

/* Write, update, final; reopen: compaction keeps only the unfinished ones
 * (newest line wins), a torn last line and a malformed line are skipped;
 * the file is 0600. */
START_TEST(test_journal_file)
{
  g_autofree char *dir = g_dir_make_tmp("kcps-journal-XXXXXX", NULL);
  g_autofree char *path = g_build_filename(dir, "releases.jsonl", NULL);
  GPtrArray *unfinished = NULL;
  kcps_release_journal_t *j = kcps_release_journal_open(path, &unfinished);
  ck_assert_ptr_nonnull(j);
  ck_assert_int_eq(unfinished->len, 0);
  g_ptr_array_unref(unfinished);

  g_autoptr(kcps_release_record_t) a = make_record("aaaaaaaa-1", "job-a", "sending", 0);
  g_autoptr(kcps_release_record_t) b = make_record("bbbbbbbb-2", "job-b", "sending", 0);
  g_autoptr(kcps_release_record_t) c = make_record("cccccccc-3", "job-c", "sending", 0);
  g_autoptr(GError) error = NULL;
  ck_assert(kcps_release_journal_write(j, a, &error));
  ck_assert(kcps_release_journal_write(j, b, &error));
  ck_assert(kcps_release_journal_write(j, c, &error));
  /* a: the printer answered with its job id; b: over; c: still sending. */
  a->printer_job_id = 42;
  g_free(a->state);
  a->state = g_strdup("printing");
  ck_assert(kcps_release_journal_write(j, a, &error));
  g_free(b->state);
  b->state = g_strdup("completed");
  ck_assert(kcps_release_journal_write(j, b, &error));
  kcps_release_journal_free(j);
  struct stat st;
  ck_assert_int_eq(stat(path, &st), 0);
  ck_assert_int_eq(st.st_mode & 0777, 0600);
  ck_assert_int_eq(count_lines(path), 5); /* a and c are still open: nothing dropped */

  /* Damage: a malformed line in the middle, a torn last one. */
  append_text(path, "{\"id\":\"nonsense\"}\n");
  g_autoptr(kcps_release_record_t) d = make_record("dddddddd-4", "job-d", "sending", 0);
  g_autofree char *dline = kcps_release_journal_line(d);
  dline[strlen(dline) / 2] = '\0';
  append_text(path, dline);

  j = kcps_release_journal_open(path, &unfinished);
  ck_assert_int_eq(unfinished->len, 2);
  kcps_release_record_t *r0 = unfinished->pdata[0], *r1 = unfinished->pdata[1];
  ck_assert_str_eq(r0->id, "aaaaaaaa-1");
  ck_assert_str_eq(r0->state, "printing");
  ck_assert_int_eq(r0->printer_job_id, 42);
  ck_assert_str_eq(r1->id, "cccccccc-3");
  ck_assert_str_eq(r1->state, "sending");
  g_ptr_array_unref(unfinished);
  /* Compacted: one line per unfinished release, still 0600, no temp left. */
  ck_assert_int_eq(count_lines(path), 2);
  ck_assert_int_eq(stat(path, &st), 0);
  ck_assert_int_eq(st.st_mode & 0777, 0600);
  g_autofree char *tmp = g_strconcat(path, ".tmp", NULL);
  ck_assert(!g_file_test(tmp, G_FILE_TEST_EXISTS));

  /* Both end: the next open finds nothing and leaves an empty file. */
  g_free(a->state);
  a->state = g_strdup("aborted");
  g_free(c->state);
  c->state = g_strdup("failed");
  ck_assert(kcps_release_journal_write(j, a, &error));
  ck_assert(kcps_release_journal_write(j, c, &error));
  /* The last open one ended: the journal is emptied at once (it does not
   * grow while kcpsd runs). */
  ck_assert_int_eq(stat(path, &st), 0);
  ck_assert_int_eq(st.st_size, 0);
  kcps_release_journal_free(j);
  j = kcps_release_journal_open(path, &unfinished);
  ck_assert_int_eq(unfinished->len, 0);
  ck_assert_int_eq(count_lines(path), 0);
  g_ptr_array_unref(unfinished);
  kcps_release_journal_free(j);
  rm_rf(dir);
}
END_TEST

/* The job-name tag and its match, as Get-Jobs sees them. */
START_TEST(test_journal_job_name)
{
  const char *rid = "0123abcd-1111-2222-3333-444455556666";
  g_autofree char *name = kcps_release_job_name("report.pdf", rid);
  ck_assert_str_eq(name, "report.pdf [kcps:0123abcd]");
  g_autofree char *unnamed = kcps_release_job_name(NULL, rid);
  ck_assert_str_eq(unnamed, "KCPS job [kcps:0123abcd]");
  /* A long name in UTF-8 is shortened at a character boundary. */
  GString *longname = g_string_new(NULL);
  for (int i = 0; i < 200; i++)
    g_string_append(longname, "\xc3\xa9"); /* é */
  g_autofree char *shortened = kcps_release_job_name(longname->str, rid);
  g_string_free(longname, TRUE);
  ck_assert_int_le(strlen(shortened), 255);
  ck_assert(g_utf8_validate(shortened, -1, NULL));
  ck_assert(g_str_has_suffix(shortened, " [kcps:0123abcd]"));
  ck_assert(kcps_release_job_matches(rid, "alice", name, "alice"));
  ck_assert(kcps_release_job_matches(rid, "alice", shortened, NULL));
  ck_assert(!kcps_release_job_matches(rid, "alice", name, "bob"));
  ck_assert(!kcps_release_job_matches(rid, "alice", "report.pdf", "alice"));
  ck_assert(!kcps_release_job_matches("99999999-0", "alice", name, "alice"));
  ck_assert(!kcps_release_job_matches(rid, "alice", NULL, "alice"));
}
END_TEST

/* The releaser loads the journal's unfinished release at once: shown by
 * GET, its job cannot be released again (409); resumed, its printer
 * cannot be asked (a closed port) for the window: failed, saying the
 * printer may have printed it; job held, nothing counted, journal ended. */
START_TEST(test_releaser_resume_unreachable)
{
  fixture_t f;
  fixture_open(&f);
  kcps_releaser_free(f.releaser);
  g_autofree char *path = g_build_filename(f.dir, "releases.jsonl", NULL);
  g_autoptr(kcps_release_record_t) rec = make_record("0123abcd-1111-2222-3333-444455556666",
                                                      f.job_id, "sending", 0);
  rec->uid = getuid();
  g_free(rec->printer);
  rec->printer = g_strdup_printf("ipp://127.0.0.1:%d/ipp/print", closed_port());
  g_autofree char *line = kcps_release_journal_line(rec);
  append_text(path, line);

  f.releaser = kcps_releaser_new(f.spool, f.dir);
  kcps_releaser_set_timing(f.releaser, 300, 100);
  hook_calls_t calls = {0};
  kcps_release_hooks_t hooks = {.check = NULL, .used = count_used, .data = &calls};
  kcps_releaser_set_hooks(f.releaser, &hooks);
  g_autoptr(JsonNode) loaded = kcps_releaser_get(f.releaser, getuid(), rec->id);
  ck_assert_ptr_nonnull(loaded);
  ck_assert_str_eq(state_of(loaded), "sending");
  kcps_release_opts_t opts = {rec->printer, 1, KCPS_COLOR_AUTO, false};
  g_autoptr(GError) error = NULL;
  ck_assert_ptr_null(kcps_releaser_start(f.releaser, getuid(), f.job_id, &opts, &error));
  ck_assert(g_error_matches(error, KCPS_RELEASE_ERROR, KCPS_RELEASE_ERROR_CONFLICT));

  kcps_releaser_resume(f.releaser);
  JsonNode *now = NULL;
  for (;;) {
    now = kcps_releaser_get(f.releaser, getuid(), rec->id);
    if (strcmp(state_of(now), "failed") == 0)
      break;
    json_node_unref(now);
    g_usleep(20 * 1000);
  }
  const char *message = json_object_get_string_member(json_node_get_object(now), "message");
  ck_assert_msg(strstr(message, "may have printed") != NULL, "%s", message);
  json_node_unref(now);
  ck_assert_int_eq(calls.used, 0);
  g_autoptr(kcps_job_t) job = kcps_spool_get_job(f.spool, f.job_id, NULL);
  ck_assert_int_eq(job->state, KCPS_JOB_STATE_SPOOLED);
  /* Ended: the next start has nothing to resume. */
  kcps_releaser_free(f.releaser);
  f.releaser = kcps_releaser_new(f.spool, f.dir);
  ck_assert_ptr_null(kcps_releaser_get(f.releaser, getuid(), rec->id));
  ck_assert_int_eq(count_lines(path), 0);
  fixture_close(&f);
}
END_TEST

static Suite *release_suite(void)
{
  Suite *s = suite_create("release");
  TCase *tc = tcase_create("request");
  tcase_add_loop_test(tc, test_parse_request, 0, G_N_ELEMENTS(requests));
  tcase_add_test(tc, test_uri_key);
  suite_add_tcase(s, tc);
  tc = tcase_create("caps");
  tcase_add_test(tc, test_plan);
  suite_add_tcase(s, tc);
  tc = tcase_create("pins");
  tcase_add_test(tc, test_pins);
  suite_add_tcase(s, tc);
  tc = tcase_create("raster");
  tcase_add_loop_test(tc, test_rasterize, 0, 3);
  tcase_add_test(tc, test_rasterize_not_pdf);
  suite_add_tcase(s, tc);
  tc = tcase_create("releaser");
  tcase_add_test(tc, test_releaser_refusals);
  tcase_add_test(tc, test_releaser_unreachable);
  tcase_add_test(tc, test_releaser_quota_refused);
  tcase_add_test(tc, test_releaser_resume_unreachable);
  suite_add_tcase(s, tc);
  tc = tcase_create("journal");
  tcase_add_test(tc, test_journal_line);
  tcase_add_loop_test(tc, test_journal_bad_line, 0, G_N_ELEMENTS(bad_lines));
  tcase_add_test(tc, test_journal_file);
  tcase_add_test(tc, test_journal_job_name);
  suite_add_tcase(s, tc);
  return s;
}

int main(void)
{
  SRunner *runner = srunner_create(release_suite());
  srunner_run_all(runner, CK_NORMAL);
  int failed = srunner_ntests_failed(runner);
  srunner_free(runner);
  return failed == 0 ? 0 : 1;
}
