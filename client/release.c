/* Direct printing: the releaser. Each release runs on its own worker
 * thread: connect (IPPS: certificate checked, or pinned on first use),
 * Get-Printer-Attributes, Create-Job (retried while the printer is busy or
 * unreachable: no document has gone yet, so nothing can print twice),
 * Send-Document (PDF, or raster made page by page), then Get-Job-Attributes
 * until the printer job ends. Only "completed" marks the spool job printed
 * and records usage; anything else leaves it held. */
#define G_LOG_DOMAIN "kcpsd"

#include "client/release.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "platform/platform.h"

#define RETRY_ATTEMPTS 6      /* Create-Job tries before giving up */
#define RETRY_MAX_MS 8000     /* backoff cap */
#define GONE_MS 15000         /* printer unreachable this long while followed: gone */
#define POLL_MAX_MS 2000      /* Get-Job-Attributes interval cap */
#define CONNECT_TIMEOUT_MS 10000
#define IO_TIMEOUT_S 60.0

typedef struct release_s {
  struct kcps_releaser_s *releaser;
  char *id;
  uid_t uid;
  char *job_id;
  char *printer;
  char *pin_key;
  int copies;
  kcps_color_t color;
  bool duplex;
  gint64 created;
  int job_pages;       /* the job's pages (charged per copy) */
  bool create_job;     /* Create-Job + Send-Document, else Print-Job */
  bool journaled;      /* a record of it is in the journal (worker thread only) */
  bool resumed;        /* loaded from the journal at start */
  char *account;       /* the server account at the start (worker thread only), or NULL */
  GThread *thread;
  /* Guarded by the releaser's lock. */
  const char *state;   /* pending, retrying, sending, printing, completed, aborted,
                          canceled, failed */
  char *message;
  const char *format;
  int printer_job_id;
  int attempts;
  int pages;           /* pages sent (or of the job, for PDF) */
  gint64 finished;
} release_t;

struct kcps_releaser_s {
  GMutex lock;          /* guards releases, active, and each release's state */
  GCond wake;           /* signalled on stop */
  GHashTable *releases; /* id -> release_t* */
  GHashTable *active;   /* job id -> release_t* while running */
  GHashTable *latest;   /* job id -> release_t* */
  GMutex pin_lock;      /* one pins file writer at a time */
  kcps_spool_t *spool;
  char *pins_path;
  char *usage_path;
  kcps_release_journal_t *journal;
  GPtrArray *to_resume; /* release_t* loaded from the journal, not yet followed */
  gint stopping;
  int gone_ms;
  int retry_ms;
  kcps_release_hooks_t hooks; /* set before the first release, then read only */
  kcps_release_changed_cb_t changed; /* likewise */
  void *changed_data;
};

static void release_free(void *data)
{
  release_t *rel = data;
  g_free(rel->id);
  g_free(rel->job_id);
  g_free(rel->printer);
  g_free(rel->pin_key);
  g_free(rel->message);
  g_free(rel->account);
  g_free(rel);
}

kcps_releaser_t *kcps_releaser_new(kcps_spool_t *spool, const char *state_dir)
{
  kcps_releaser_t *r = g_new0(kcps_releaser_t, 1);
  g_mutex_init(&r->lock);
  g_mutex_init(&r->pin_lock);
  g_cond_init(&r->wake);
  r->releases = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, release_free);
  r->active = g_hash_table_new(g_str_hash, g_str_equal);
  r->latest = g_hash_table_new(g_str_hash, g_str_equal);
  r->spool = spool;
  r->pins_path = g_build_filename(state_dir, "printer-pins", NULL);
  r->usage_path = g_build_filename(state_dir, "usage.jsonl", NULL);
  r->gone_ms = GONE_MS;
  r->retry_ms = 500;
  r->to_resume = g_ptr_array_new();

  /* The releases kcpsd was running when it stopped or was killed: shown and
   * blocking a new release of their jobs from now on, followed once
   * kcps_releaser_resume is called. */
  g_autofree char *journal_path = g_build_filename(state_dir, "releases.jsonl", NULL);
  g_autoptr(GPtrArray) unfinished = NULL;
  r->journal = kcps_release_journal_open(journal_path, &unfinished);
  for (guint i = 0; i < unfinished->len; i++) {
    kcps_release_record_t *rec = unfinished->pdata[i];
    if (g_hash_table_contains(r->releases, rec->id)
        || g_hash_table_contains(r->active, rec->job_id)) {
      /* Cannot happen by our own writing; ended so that it is not met again. */
      g_warning("release journal: job %s has a second unfinished release %s; ended as failed",
                rec->job_id, rec->id);
      g_free(rec->state);
      rec->state = g_strdup("failed");
      g_autoptr(GError) error = NULL;
      if (!kcps_release_journal_write(r->journal, rec, &error))
        g_warning("%s", error->message);
      continue;
    }
    release_t *rel = g_new0(release_t, 1);
    rel->releaser = r;
    rel->id = g_strdup(rec->id);
    rel->uid = rec->uid;
    rel->job_id = g_strdup(rec->job_id);
    rel->printer = g_strdup(rec->printer);
    if (!kcps_release_check_uri(rel->printer, &rel->pin_key, NULL))
      rel->pin_key = g_strdup(rel->printer);
    rel->copies = rec->copies;
    rel->color = rec->color;
    rel->duplex = rec->duplex;
    rel->created = rec->created;
    rel->job_pages = rec->pages;
    rel->pages = rec->pages;
    rel->create_job = rec->create_job;
    rel->journaled = true;
    rel->resumed = true;
    rel->state = strcmp(rec->state, "printing") == 0 ? "printing" : "sending";
    rel->message = g_strdup("kcpsd restarted while this release ran; following it again");
    rel->format = rec->format == NULL ? NULL
                  : strcmp(rec->format, "application/pdf") == 0 ? "application/pdf"
                  : strcmp(rec->format, "image/urf") == 0 ? "image/urf" : "image/pwg-raster";
    rel->printer_job_id = rec->printer_job_id;
    rel->account = g_strdup(rec->user);
    g_hash_table_insert(r->releases, rel->id, rel);
    g_hash_table_insert(r->active, rel->job_id, rel);
    g_hash_table_insert(r->latest, rel->job_id, rel);
    g_ptr_array_add(r->to_resume, rel);
  }
  return r;
}

void kcps_releaser_set_timing(kcps_releaser_t *releaser, int gone_ms, int retry_ms)
{
  releaser->gone_ms = gone_ms;
  releaser->retry_ms = retry_ms;
}

void kcps_releaser_set_changed(kcps_releaser_t *releaser, kcps_release_changed_cb_t cb,
                               void *data)
{
  releaser->changed = cb;
  releaser->changed_data = data;
}

void kcps_releaser_set_hooks(kcps_releaser_t *releaser, const kcps_release_hooks_t *hooks)
{
  releaser->hooks = *hooks;
}

void kcps_releaser_free(kcps_releaser_t *releaser)
{
  if (releaser == NULL)
    return;
  g_mutex_lock(&releaser->lock);
  g_atomic_int_set(&releaser->stopping, 1);
  g_cond_broadcast(&releaser->wake);
  GList *all = g_hash_table_get_values(releaser->releases);
  g_mutex_unlock(&releaser->lock);
  for (GList *l = all; l != NULL; l = l->next) {
    release_t *rel = l->data;
    if (rel->thread != NULL)
      g_thread_join(rel->thread);
  }
  g_list_free(all);
  g_ptr_array_free(releaser->to_resume, TRUE);
  kcps_release_journal_free(releaser->journal);
  g_hash_table_destroy(releaser->active);
  g_hash_table_destroy(releaser->latest);
  g_hash_table_destroy(releaser->releases);
  g_free(releaser->pins_path);
  g_free(releaser->usage_path);
  g_mutex_clear(&releaser->lock);
  g_mutex_clear(&releaser->pin_lock);
  g_cond_clear(&releaser->wake);
  g_free(releaser);
}

/* Sleeps ms unless the releaser stops; false when it stops. */
static bool pause_ms(kcps_releaser_t *r, int ms)
{
  gint64 until = g_get_monotonic_time() + (gint64)ms * 1000;
  g_mutex_lock(&r->lock);
  while (!g_atomic_int_get(&r->stopping) && g_cond_wait_until(&r->wake, &r->lock, until))
    ;
  bool go_on = !g_atomic_int_get(&r->stopping);
  g_mutex_unlock(&r->lock);
  return go_on;
}

static void set_state(kcps_releaser_t *r, release_t *rel, const char *state, const char *fmt,
                      ...) G_GNUC_PRINTF(4, 5);
static void set_state(kcps_releaser_t *r, release_t *rel, const char *state, const char *fmt,
                      ...)
{
  g_autofree char *message = NULL;
  if (fmt != NULL) {
    va_list args;
    va_start(args, fmt);
    message = g_strdup_vprintf(fmt, args);
    va_end(args);
  }
  g_mutex_lock(&r->lock);
  rel->state = state;
  g_free(rel->message);
  rel->message = g_steal_pointer(&message);
  g_mutex_unlock(&r->lock);
  g_info("release %s of job %s: %s%s%s", rel->id, rel->job_id, state,
         rel->message != NULL ? ": " : "", rel->message != NULL ? rel->message : "");
  if (r->changed != NULL)
    r->changed(rel->uid, rel->job_id, rel->id, state, r->changed_data);
}

/* Writes rel's journal record in state (the newest line of its id wins). */
static bool journal(kcps_releaser_t *r, release_t *rel, const char *state, GError **error)
{
  g_mutex_lock(&r->lock);
  kcps_release_record_t rec = {
    .id = rel->id,
    .uid = rel->uid,
    .job_id = rel->job_id,
    .printer = rel->printer,
    .copies = rel->copies,
    .color = rel->color,
    .duplex = rel->duplex,
    .pages = rel->job_pages,
    .format = (char *)rel->format,
    .create_job = rel->create_job,
    .created = rel->created,
    .state = (char *)state,
    .printer_job_id = rel->printer_job_id,
    .user = rel->account,
  };
  g_mutex_unlock(&r->lock);
  if (!kcps_release_journal_write(r->journal, &rec, error))
    return false;
  rel->journaled = true;
  return true;
}

/* Like journal, for the states after the first: a failure is only logged
 * (the record written before says at least as much). */
static void journal_update(kcps_releaser_t *r, release_t *rel, const char *state)
{
  if (!rel->journaled)
    return;
  g_autoptr(GError) error = NULL;
  if (!journal(r, rel, state, &error))
    g_warning("release %s: %s", rel->id, error->message);
}

/* --- the printer connection ----------------------------------------------------- */

typedef struct printer_s {
  char host[256];
  char resource[1024];
  int port;
  bool tls;
  http_t *http;
} printer_t;

/* The printer of a release (its URI was checked when the release began),
 * not connected yet. */
static void printer_init(printer_t *p, const char *uri)
{
  memset(p, 0, sizeof *p);
  char scheme[32], userpass[256];
  httpSeparateURI(HTTP_URI_CODING_ALL, uri, scheme, sizeof(scheme), userpass, sizeof(userpass),
                  p->host, sizeof(p->host), &p->port, p->resource, sizeof(p->resource));
  p->tls = strcmp(scheme, "ipps") == 0;
}

/* The OS account name sent as requesting-user-name (the uid when it has
 * none). */
static char *request_user(uid_t uid)
{
  char *user = kcps_platform_user_name(uid);
  return user != NULL ? user : g_strdup_printf("%u", (unsigned)uid);
}

/* The certificate of an IPPS printer: trusted when it chains to the system
 * store and names the host; otherwise pinned on first use by the SHA-256
 * of the certificate, and refused when it differs from the pin later. */
static bool check_certificate(kcps_releaser_t *r, release_t *rel, printer_t *p, GError **error)
{
  g_autofree char *fingerprint = NULL;
  bool ca_ok = false;
  if (!kcps_release_certificate(p->http, p->host, &fingerprint, &ca_ok)) {
    g_set_error(error, KCPS_RELEASE_ERROR, KCPS_RELEASE_ERROR_TLS,
                "the printer %s sent no certificate", rel->pin_key);
    return false;
  }
  if (ca_ok)
    return true;

  kcps_pin_result_t result = KCPS_PIN_NEW;
  g_mutex_lock(&r->pin_lock);
  bool ok = kcps_release_pin_check(r->pins_path, rel->pin_key, fingerprint, &result, error);
  g_mutex_unlock(&r->pin_lock);
  if (!ok)
    return false;
  if (result == KCPS_PIN_NEW)
    g_message("printer %s: certificate sha256 %s pinned on first use", rel->pin_key,
              fingerprint);
  if (result == KCPS_PIN_CHANGED) {
    g_set_error(error, KCPS_RELEASE_ERROR, KCPS_RELEASE_ERROR_TLS,
                "the certificate of printer %s changed since it was pinned (now sha256 %s); "
                "if the printer got a new certificate on purpose, run 'kcps printer forget %s' "
                "(or delete its line in %s) and release again",
                rel->pin_key, fingerprint, rel->printer, r->pins_path);
    return false;
  }
  return true;
}

/* Connects; false + error. *retry tells whether trying later may help
 * (the printer did not answer), as opposed to a refused certificate. */
static bool printer_connect(kcps_releaser_t *r, release_t *rel, printer_t *p, bool *retry,
                            GError **error)
{
  *retry = false;
  p->http = httpConnect2(p->host, p->port, NULL, AF_UNSPEC,
                         p->tls ? HTTP_ENCRYPTION_ALWAYS : HTTP_ENCRYPTION_IF_REQUESTED, 1,
                         CONNECT_TIMEOUT_MS, NULL);
  if (p->http == NULL) {
    *retry = true;
    g_set_error(error, KCPS_RELEASE_ERROR, KCPS_RELEASE_ERROR_IO,
                "cannot connect to the printer %s: %s", rel->pin_key, cupsLastErrorString());
    return false;
  }
  httpSetTimeout(p->http, IO_TIMEOUT_S, NULL, NULL);
  if (p->tls && !check_certificate(r, rel, p, error)) {
    httpClose(p->http);
    p->http = NULL;
    return false;
  }
  return true;
}

static void printer_close(printer_t *p)
{
  if (p->http != NULL)
    httpClose(p->http);
  p->http = NULL;
}

/* A request carrying printer-uri and requesting-user-name. */
static ipp_t *new_request(ipp_op_t op, release_t *rel, const char *user)
{
  ipp_t *req = ippNewRequest(op);
  ippAddString(req, IPP_TAG_OPERATION, IPP_TAG_URI, "printer-uri", NULL, rel->printer);
  ippAddString(req, IPP_TAG_OPERATION, IPP_TAG_NAME, "requesting-user-name", NULL, user);
  return req;
}

/* Whether an IPP failure means "the printer did not take it; later may
 * work": busy, temporarily unavailable, or no answer at all. */
static bool is_retryable(ipp_status_t status)
{
  return status == IPP_STATUS_ERROR_BUSY || status == IPP_STATUS_ERROR_SERVICE_UNAVAILABLE
         || status == IPP_STATUS_ERROR_TEMPORARY
         || status == IPP_STATUS_ERROR_NOT_ACCEPTING_JOBS
         || status == IPP_STATUS_ERROR_INTERNAL /* libcups: connection failed */;
}

/* --- sending --------------------------------------------------------------------- */

static ssize_t raster_write(void *ctx, unsigned char *buffer, size_t length)
{
  http_t *http = ctx;
  return cupsWriteRequestData(http, (const char *)buffer, length) == HTTP_STATUS_CONTINUE
           ? (ssize_t)length : -1;
}

/* Streams the document as the body of req; returns the response. */
static ipp_t *send_with_document(printer_t *p, ipp_t *req, int doc_fd,
                                 const kcps_raster_plan_t *plan, bool duplex, int *pages,
                                 GError **error)
{
  http_status_t st = cupsSendRequest(p->http, req, p->resource, CUPS_LENGTH_VARIABLE);
  ippDelete(req);
  bool ok = st == HTTP_STATUS_CONTINUE;
  if (!ok) {
    close(doc_fd);
    g_set_error(error, KCPS_RELEASE_ERROR, KCPS_RELEASE_ERROR_IO,
                "the printer did not take the document: %s", cupsLastErrorString());
    return NULL;
  }
  if (strcmp(plan->format, "application/pdf") == 0) {
    char buf[65536];
    ssize_t got;
    while (ok && (got = read(doc_fd, buf, sizeof(buf))) != 0) {
      if (got < 0) {
        if (errno == EINTR)
          continue;
        g_set_error(error, KCPS_RELEASE_ERROR, KCPS_RELEASE_ERROR_IO,
                    "cannot read the spooled document: %s", g_strerror(errno));
        ok = false;
        break;
      }
      ok = cupsWriteRequestData(p->http, buf, (size_t)got) == HTTP_STATUS_CONTINUE;
      if (!ok)
        g_set_error(error, KCPS_RELEASE_ERROR, KCPS_RELEASE_ERROR_IO,
                    "sending the document to the printer failed: %s", cupsLastErrorString());
    }
    close(doc_fd);
  } else {
    ok = kcps_release_rasterize(doc_fd, plan, duplex, raster_write, p->http, pages, error);
  }
  if (!ok) {
    /* The body is cut short: the printer sees a broken request. */
    httpShutdown(p->http);
    return NULL;
  }
  ipp_t *resp = cupsGetResponse(p->http, p->resource);
  if (resp == NULL)
    g_set_error(error, KCPS_RELEASE_ERROR, KCPS_RELEASE_ERROR_IO,
                "the printer did not answer after the document: %s", cupsLastErrorString());
  return resp;
}

static void add_job_template(ipp_t *req, release_t *rel, const kcps_raster_plan_t *plan,
                             const kcps_job_t *job)
{
  /* The release id's tag in the name: after a kcpsd kill before the
   * printer's answer, Get-Jobs finds the job by it (docs/decisions.md). */
  g_autofree char *name = kcps_release_job_name(job->name, rel->id);
  ippAddString(req, IPP_TAG_OPERATION, IPP_TAG_NAME, "job-name", NULL, name);
  if (rel->copies > 1)
    ippAddInteger(req, IPP_TAG_JOB, IPP_TAG_INTEGER, "copies", rel->copies);
  if (rel->duplex)
    ippAddString(req, IPP_TAG_JOB, IPP_TAG_KEYWORD, "sides", NULL, "two-sided-long-edge");
  if (rel->color != KCPS_COLOR_AUTO)
    ippAddString(req, IPP_TAG_JOB, IPP_TAG_KEYWORD, "print-color-mode", NULL,
                 plan->color ? "color" : "monochrome");
}

/* Appends the usage record of a completed release (0600, one JSON line),
 * and hands it to the usage hook (the outbox that posts it to the server,
 * with the release id as idempotency key). */
static void record_usage(kcps_releaser_t *r, release_t *rel, const kcps_job_t *job,
                         int impressions)
{
  g_autoptr(JsonBuilder) b = json_builder_new();
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "release");
  json_builder_add_string_value(b, rel->id);
  json_builder_set_member_name(b, "job");
  json_builder_add_string_value(b, rel->job_id);
  json_builder_set_member_name(b, "uid");
  json_builder_add_int_value(b, rel->uid);
  json_builder_set_member_name(b, "printer");
  json_builder_add_string_value(b, rel->printer);
  json_builder_set_member_name(b, "pages");
  json_builder_add_int_value(b, rel->job_pages);
  json_builder_set_member_name(b, "copies");
  json_builder_add_int_value(b, rel->copies);
  json_builder_set_member_name(b, "impressions");
  json_builder_add_int_value(b, impressions);
  json_builder_set_member_name(b, "color");
  json_builder_add_boolean_value(b, rel->color != KCPS_COLOR_MONO);
  json_builder_set_member_name(b, "duplex");
  json_builder_add_boolean_value(b, rel->duplex);
  json_builder_set_member_name(b, "time");
  json_builder_add_int_value(b, g_get_real_time() / G_USEC_PER_SEC);
  json_builder_end_object(b);
  g_autoptr(JsonNode) node = json_builder_get_root(b);
  g_autoptr(JsonGenerator) gen = json_generator_new();
  json_generator_set_root(gen, node);
  g_autofree char *text = json_generator_to_data(gen, NULL);
  g_autofree char *line = g_strconcat(text, "\n", NULL);

  g_mutex_lock(&r->pin_lock);
  /* A resumed release whose record was written before the kill: not twice. */
  g_autofree char *tag = g_strdup_printf("\"release\":\"%s\"", rel->id);
  g_autofree char *have = NULL;
  bool again = rel->resumed && g_file_get_contents(r->usage_path, &have, NULL, NULL)
               && strstr(have, tag) != NULL;
  int fd = again ? -1 : g_open(r->usage_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  size_t len = strlen(line);
  bool ok = again || (fd >= 0 && write(fd, line, len) == (ssize_t)len && fsync(fd) == 0);
  int saved = errno;
  if (fd >= 0)
    close(fd);
  g_mutex_unlock(&r->pin_lock);
  if (!ok)
    g_warning("cannot record the usage of release %s in %s: %s", rel->id, r->usage_path,
              g_strerror(saved));
  if (r->hooks.used != NULL) {
    kcps_usage_record_t rec = {
      .key = rel->id,
      .uid = rel->uid,
      .printer = rel->printer,
      .job_id = job != NULL && job->server_id != NULL ? job->server_id : rel->job_id,
      .time = g_get_real_time() / G_USEC_PER_SEC,
      .pages = MAX(rel->job_pages, 1),
      .copies = rel->copies,
      .color = rel->color != KCPS_COLOR_MONO,
      .duplex = rel->duplex,
      .user = rel->account,
    };
    r->hooks.used(r->hooks.data, &rec);
  }
}

/* --- the worker ------------------------------------------------------------------- */

/* Create-Job (or, on a printer without it, Print-Job with the document) with
 * retries. Returns the printer's job id, 0 on failure (state set). */
static int create_printer_job(kcps_releaser_t *r, release_t *rel, printer_t *p,
                              const kcps_job_t *job, const char *user,
                              kcps_raster_plan_t *plan, bool *sent_whole)
{
  *sent_whole = false;
  int delay = r->retry_ms;
  for (int attempt = 1; attempt <= RETRY_ATTEMPTS; attempt++) {
    g_mutex_lock(&r->lock);
    rel->attempts = attempt;
    g_mutex_unlock(&r->lock);
    g_autoptr(GError) error = NULL;
    bool retry = false;
    ipp_status_t status = IPP_STATUS_OK;
    char last[512] = "";

    if (!printer_connect(r, rel, p, &retry, &error)) {
      if (!retry) {
        set_state(r, rel, "failed", "%s", error->message);
        return 0;
      }
      g_strlcpy(last, error->message, sizeof(last));
    } else {
      /* Capabilities, then the plan (the printer may have changed). */
      static const char *const wanted[] = {
        "document-format-supported", "operations-supported", "print-color-mode-supported",
        "sides-supported", "copies-supported", "pwg-raster-document-resolution-supported",
        "pwg-raster-document-type-supported", "urf-supported"};
      ipp_t *req = new_request(IPP_OP_GET_PRINTER_ATTRIBUTES, rel, user);
      ippAddStrings(req, IPP_TAG_OPERATION, IPP_TAG_KEYWORD, "requested-attributes",
                    G_N_ELEMENTS(wanted), NULL, wanted);
      ipp_t *resp = cupsDoRequest(p->http, req, p->resource);
      status = cupsLastError();
      if (resp == NULL || status > IPP_STATUS_OK_CONFLICTING) {
        g_snprintf(last, sizeof(last), "Get-Printer-Attributes: %s", cupsLastErrorString());
        ippDelete(resp);
        if (!is_retryable(status)) {
          set_state(r, rel, "failed", "the printer refused %s", last);
          printer_close(p);
          return 0;
        }
      } else {
        kcps_printer_caps_t caps;
        kcps_release_caps_from_ipp(resp, &caps);
        ippDelete(resp);
        kcps_release_opts_t opts = {rel->printer, rel->copies, rel->color, rel->duplex};
        if (!kcps_release_plan(&caps, &opts, plan, &error)) {
          set_state(r, rel, "failed", "%s", error->message);
          printer_close(p);
          return 0;
        }
        g_mutex_lock(&r->lock);
        rel->format = plan->format;
        rel->create_job = caps.create_job;
        rel->job_pages = job->pages;
        g_mutex_unlock(&r->lock);
        if (rel->account == NULL && r->hooks.account != NULL)
          rel->account = r->hooks.account(r->hooks.data, rel->uid);
        /* Durably before the first byte of the job goes: after a kill from
         * here on, the next start looks for the job at the printer. */
        if (!journal(r, rel, "sending", &error)) {
          set_state(r, rel, "failed", "%s; nothing was sent", error->message);
          printer_close(p);
          return 0;
        }

        if (caps.create_job) {
          req = new_request(IPP_OP_CREATE_JOB, rel, user);
          add_job_template(req, rel, plan, job);
          resp = cupsDoRequest(p->http, req, p->resource);
        } else {
          /* Print-Job carries the document: retried only when the printer
           * answered that it did not take it (busy), never after a lost
           * answer. */
          req = new_request(IPP_OP_PRINT_JOB, rel, user);
          add_job_template(req, rel, plan, job);
          ippAddString(req, IPP_TAG_OPERATION, IPP_TAG_MIMETYPE, "document-format", NULL,
                       plan->format);
          int fd = kcps_spool_open_document(r->spool, job, &error);
          if (fd < 0) {
            set_state(r, rel, "failed", "%s", error->message);
            printer_close(p);
            return 0;
          }
          set_state(r, rel, "sending", NULL);
          int pages = 0;
          resp = send_with_document(p, req, fd, plan, rel->duplex, &pages, &error);
          if (resp == NULL) {
            set_state(r, rel, "failed", "%s", error->message);
            printer_close(p);
            return 0;
          }
          g_mutex_lock(&r->lock);
          rel->pages = pages > 0 ? pages : job->pages;
          g_mutex_unlock(&r->lock);
        }
        status = cupsLastError();
        int job_id = ippGetInteger(ippFindAttribute(resp, "job-id", IPP_TAG_INTEGER), 0);
        ippDelete(resp);
        if (status <= IPP_STATUS_OK_CONFLICTING && job_id > 0) {
          *sent_whole = !caps.create_job;
          g_mutex_lock(&r->lock);
          rel->printer_job_id = job_id;
          g_mutex_unlock(&r->lock);
          /* Create-Job: the job is known but the document is still to go
           * ("sending" with the job id); Print-Job: the printer has it all. */
          journal_update(r, rel, caps.create_job ? "sending" : "printing");
          return job_id;
        }
        g_snprintf(last, sizeof(last), "%s: %s", caps.create_job ? "Create-Job" : "Print-Job",
                   cupsLastErrorString());
        bool lost_answer = !caps.create_job && status != IPP_STATUS_ERROR_BUSY
                           && status != IPP_STATUS_ERROR_SERVICE_UNAVAILABLE;
        if (!is_retryable(status) || lost_answer) {
          set_state(r, rel, "failed", "the printer refused the job (%s)", last);
          printer_close(p);
          return 0;
        }
      }
      printer_close(p);
    }
    if (attempt == RETRY_ATTEMPTS)
      break;
    set_state(r, rel, "retrying", "attempt %d of %d failed (%s); trying again in %d ms",
              attempt, RETRY_ATTEMPTS, last, delay);
    if (!pause_ms(r, delay)) {
      set_state(r, rel, "failed", "kcpsd stopped before the printer took the job");
      return 0;
    }
    delay = MIN(delay * 2, RETRY_MAX_MS);
  }
  set_state(r, rel, "failed", "the printer did not take the job after %d attempts "
            "(busy or unreachable)", RETRY_ATTEMPTS);
  return 0;
}

/* Follows the printer job to its end. Returns the final job-state (9
 * completed, 8 aborted, 7 canceled) or 0 when the printer went away. */
static int follow_job(kcps_releaser_t *r, release_t *rel, printer_t *p, int job_id,
                      const char *user, int *impressions)
{
  gint64 unreachable_since = 0;
  int interval = 100;
  for (;;) {
    if (g_atomic_int_get(&r->stopping))
      return 0;
    bool answered = false;
    if (p->http == NULL) {
      bool retry = false;
      g_autoptr(GError) error = NULL;
      if (!printer_connect(r, rel, p, &retry, &error) && !retry) {
        set_state(r, rel, "failed", "%s", error->message);
        return 0;
      }
    }
    if (p->http != NULL) {
      static const char *const wanted[] = {"job-state", "job-state-reasons",
                                           "job-impressions-completed"};
      ipp_t *req = new_request(IPP_OP_GET_JOB_ATTRIBUTES, rel, user);
      ippAddInteger(req, IPP_TAG_OPERATION, IPP_TAG_INTEGER, "job-id", job_id);
      ippAddStrings(req, IPP_TAG_OPERATION, IPP_TAG_KEYWORD, "requested-attributes",
                    G_N_ELEMENTS(wanted), NULL, wanted);
      ipp_t *resp = cupsDoRequest(p->http, req, p->resource);
      ipp_status_t status = cupsLastError();
      if (resp != NULL && status <= IPP_STATUS_OK_CONFLICTING) {
        answered = true;
        int state = ippGetInteger(ippFindAttribute(resp, "job-state", IPP_TAG_ENUM), 0);
        int done = ippGetInteger(ippFindAttribute(resp, "job-impressions-completed",
                                                  IPP_TAG_INTEGER), 0);
        ippDelete(resp);
        if (state >= IPP_JSTATE_CANCELED) {
          *impressions = done;
          return state;
        }
      } else {
        ippDelete(resp);
        if (status == IPP_STATUS_ERROR_NOT_FOUND) {
          /* A restarted printer that forgot the job: it did not finish it here. */
          set_state(r, rel, "failed", "the printer no longer knows job %d", job_id);
          return 0;
        }
        printer_close(p);
      }
    }
    gint64 now = g_get_monotonic_time();
    if (answered) {
      unreachable_since = 0;
    } else if (unreachable_since == 0) {
      unreachable_since = now;
    } else if (now - unreachable_since > (gint64)r->gone_ms * 1000) {
      set_state(r, rel, "failed", "the printer went away while printing job %d "
                "(no answer for %d s); the job stays held", job_id, r->gone_ms / 1000);
      return 0;
    }
    if (!pause_ms(r, interval))
      return 0;
    interval = MIN(interval * 2, POLL_MAX_MS);
  }
}

/* The end of a release: completed marks the spool job printed and records
 * the usage (keyed by the release id: a resumed release that completed
 * before the kill is not counted twice); the others leave it held. The
 * journal gets the final line, unless kcpsd is stopping while the printer
 * job is not over: then the record stays for the next start. */
static void finish_release(kcps_releaser_t *r, release_t *rel, const kcps_job_t *job, int final,
                           int impressions)
{
  if (final == IPP_JSTATE_COMPLETED) {
    record_usage(r, rel, job, rel->job_pages * rel->copies);
    g_autoptr(GError) set_error = NULL;
    if (job != NULL
        && !kcps_spool_set_state(r->spool, rel->job_id, KCPS_JOB_STATE_PRINTED, &set_error))
      g_warning("release %s: cannot mark job %s printed: %s", rel->id, rel->job_id,
                set_error->message);
    set_state(r, rel, "completed", "%d pages x %d copies printed (printer job %d; "
              "printer says %d impressions)", rel->job_pages, rel->copies, rel->printer_job_id,
              impressions);
  } else if (final == IPP_JSTATE_ABORTED) {
    set_state(r, rel, "aborted", "the printer aborted job %d; the job stays held",
              rel->printer_job_id);
  } else if (final == IPP_JSTATE_CANCELED) {
    set_state(r, rel, "canceled", "job %d was canceled at the printer; the job stays held",
              rel->printer_job_id);
  } else if (strcmp(rel->state, "failed") != 0) {
    /* Only this thread writes the state, so reading it unlocked is safe. */
    set_state(r, rel, "failed", "kcpsd stopped while following the printer job; the job "
              "stays held");
  }
  bool keep = final == 0 && g_atomic_int_get(&r->stopping);
  if (!keep)
    journal_update(r, rel, rel->state);
  g_mutex_lock(&r->lock);
  rel->finished = g_get_real_time() / G_USEC_PER_SEC;
  g_hash_table_remove(r->active, rel->job_id);
  g_mutex_unlock(&r->lock);
}

static gpointer release_worker(gpointer data)
{
  release_t *rel = data;
  kcps_releaser_t *r = rel->releaser;
  g_autoptr(GError) error = NULL;
  g_autoptr(kcps_job_t) job = kcps_spool_get_job(r->spool, rel->job_id, &error);
  g_autofree char *user = request_user(rel->uid);
  printer_t p;
  printer_init(&p, rel->printer);

  int final = 0, impressions = 0;
  g_autofree char *refusal = NULL;
  if (job == NULL) {
    set_state(r, rel, "failed", "the job is gone from the spool: %s", error->message);
  } else if (r->hooks.check != NULL
             && !r->hooks.check(r->hooks.data, rel->uid, job, rel->copies,
                                rel->color != KCPS_COLOR_MONO, &refusal)) {
    /* Nothing has gone to the printer: the job stays held, nothing is charged. */
    set_state(r, rel, "failed", "%s", refusal != NULL ? refusal : "the quota check refused");
  } else {
    kcps_raster_plan_t plan;
    bool sent_whole = false;
    int job_id = create_printer_job(r, rel, &p, job, user, &plan, &sent_whole);
    if (job_id > 0) {
      g_mutex_lock(&r->lock);
      rel->printer_job_id = job_id;
      g_mutex_unlock(&r->lock);
      bool sent = sent_whole;
      if (!sent) {
        set_state(r, rel, "sending", NULL);
        ipp_t *req = new_request(IPP_OP_SEND_DOCUMENT, rel, user);
        ippAddInteger(req, IPP_TAG_OPERATION, IPP_TAG_INTEGER, "job-id", job_id);
        ippAddString(req, IPP_TAG_OPERATION, IPP_TAG_MIMETYPE, "document-format", NULL,
                     plan.format);
        ippAddBoolean(req, IPP_TAG_OPERATION, "last-document", 1);
        int fd = kcps_spool_open_document(r->spool, job, &error);
        ipp_t *resp = NULL;
        int pages = 0;
        if (fd >= 0)
          resp = send_with_document(&p, req, fd, &plan, rel->duplex, &pages, &error);
        else
          ippDelete(req);
        ipp_status_t status = cupsLastError();
        ippDelete(resp);
        if (resp == NULL || status > IPP_STATUS_OK_CONFLICTING) {
          /* Not retried: the printer may hold part of the document. The
           * printer job is cancelled so that it cannot print later. */
          set_state(r, rel, "failed", "sending the document failed (%s); the job stays held",
                    error != NULL ? error->message : cupsLastErrorString());
          printer_close(&p);
          bool retry = false;
          g_autoptr(GError) ignored = NULL;
          if (printer_connect(r, rel, &p, &retry, &ignored)) {
            ipp_t *cancel = new_request(IPP_OP_CANCEL_JOB, rel, user);
            ippAddInteger(cancel, IPP_TAG_OPERATION, IPP_TAG_INTEGER, "job-id", job_id);
            ippDelete(cupsDoRequest(p.http, cancel, p.resource));
          }
        } else {
          sent = true;
          g_mutex_lock(&r->lock);
          rel->pages = pages > 0 ? pages : job->pages;
          g_mutex_unlock(&r->lock);
          journal_update(r, rel, "printing");
        }
      }
      if (sent) {
        set_state(r, rel, "printing", "printer job %d", job_id);
        final = follow_job(r, rel, &p, job_id, user, &impressions);
      }
    }
  }
  printer_close(&p);
  finish_release(r, rel, job, final, impressions);
  return NULL;
}

/* --- resuming after a restart ------------------------------------------------------ */

/* Looks for rel's job at the printer (Get-Jobs, which-jobs all): the job
 * whose name carries rel's tag and whose owner is user. Returns its job id;
 * 0 when the printer has none (state set), -1 when the printer could not be
 * asked or kcpsd stops (state set unless stopping). */
static int find_printer_job(kcps_releaser_t *r, release_t *rel, printer_t *p, const char *user)
{
  gint64 unreachable_since = 0;
  int interval = 100;
  for (;;) {
    if (g_atomic_int_get(&r->stopping))
      return -1;
    g_autoptr(GError) error = NULL;
    bool retry = false;
    if (p->http == NULL && !printer_connect(r, rel, p, &retry, &error) && !retry) {
      set_state(r, rel, "failed", "%s; the printer may have printed the job, which stays held",
                error->message);
      return -1;
    }
    if (p->http != NULL) {
      static const char *const wanted[] = {"job-id", "job-name", "job-state",
                                           "job-originating-user-name"};
      ipp_t *req = new_request(IPP_OP_GET_JOBS, rel, user);
      ippAddString(req, IPP_TAG_OPERATION, IPP_TAG_KEYWORD, "which-jobs", NULL, "all");
      ippAddStrings(req, IPP_TAG_OPERATION, IPP_TAG_KEYWORD, "requested-attributes",
                    G_N_ELEMENTS(wanted), NULL, wanted);
      ipp_t *resp = cupsDoRequest(p->http, req, p->resource);
      ipp_status_t status = cupsLastError();
      if (resp != NULL && status <= IPP_STATUS_OK_CONFLICTING) {
        int found = 0, job_id = 0;
        const char *name = NULL, *owner = NULL;
        /* One group per job; the attributes of a group come before the next
         * separator (NULL name). */
        for (ipp_attribute_t *a = ippFirstAttribute(resp); ; a = ippNextAttribute(resp)) {
          const char *an = a != NULL ? ippGetName(a) : NULL;
          if (a == NULL || an == NULL) {
            if (job_id > 0 && found == 0 && kcps_release_job_matches(rel->id, user, name, owner))
              found = job_id;
            job_id = 0;
            name = owner = NULL;
            if (a == NULL)
              break;
            continue;
          }
          if (ippGetGroupTag(a) != IPP_TAG_JOB)
            continue;
          if (strcmp(an, "job-id") == 0 && ippGetValueTag(a) == IPP_TAG_INTEGER)
            job_id = ippGetInteger(a, 0);
          else if (strcmp(an, "job-name") == 0)
            name = ippGetString(a, 0, NULL);
          else if (strcmp(an, "job-originating-user-name") == 0)
            owner = ippGetString(a, 0, NULL);
        }
        ippDelete(resp);
        if (found > 0)
          return found;
        set_state(r, rel, "failed", "kcpsd stopped before the printer took the job; the job "
                  "stays held");
        return 0;
      }
      ippDelete(resp);
      printer_close(p);
    }
    gint64 now = g_get_monotonic_time();
    if (unreachable_since == 0) {
      unreachable_since = now;
    } else if (now - unreachable_since > (gint64)r->gone_ms * 1000) {
      set_state(r, rel, "failed", "kcpsd stopped while sending the job and the printer did not "
                "answer for %d s since; the printer may have printed it; the job stays held",
                r->gone_ms / 1000);
      return -1;
    }
    if (!pause_ms(r, interval))
      return -1;
    interval = MIN(interval * 2, POLL_MAX_MS);
  }
}

/* Cancels job_id at the printer (its document may be cut short); an answer
 * that it cannot (completed already) is fine: following it tells. */
static void cancel_printer_job(kcps_releaser_t *r, release_t *rel, printer_t *p, int job_id,
                               const char *user)
{
  bool retry = false;
  g_autoptr(GError) error = NULL;
  if (p->http == NULL && !printer_connect(r, rel, p, &retry, &error))
    return;
  ipp_t *cancel = new_request(IPP_OP_CANCEL_JOB, rel, user);
  ippAddInteger(cancel, IPP_TAG_OPERATION, IPP_TAG_INTEGER, "job-id", job_id);
  ippDelete(cupsDoRequest(p->http, cancel, p->resource));
  g_message("release %s: printer job %d cancelled (its document may be incomplete): %s",
            rel->id, job_id, cupsLastErrorString());
}

/* A release from the journal: the printer job followed again, or looked
 * for first when kcpsd was killed before the printer answered. */
static gpointer resume_worker(gpointer data)
{
  release_t *rel = data;
  kcps_releaser_t *r = rel->releaser;
  g_autoptr(GError) error = NULL;
  g_autoptr(kcps_job_t) job = kcps_spool_get_job(r->spool, rel->job_id, &error);
  if (job == NULL)
    g_warning("release %s: job %s is gone from the spool (%s); its printer job is followed "
              "all the same", rel->id, rel->job_id, error->message);
  g_autofree char *user = request_user(rel->uid);
  printer_t p;
  printer_init(&p, rel->printer);

  int job_id = rel->printer_job_id;
  /* Create-Job answered but the document may not have gone whole: the job
   * is cancelled (so that it cannot print later), then followed (it may
   * have completed before). */
  bool cancel = strcmp(rel->state, "sending") == 0 && rel->create_job;
  if (job_id == 0) {
    job_id = find_printer_job(r, rel, &p, user);
    if (job_id > 0) {
      g_message("release %s: the printer has it as job %d", rel->id, job_id);
      g_mutex_lock(&r->lock);
      rel->printer_job_id = job_id;
      g_mutex_unlock(&r->lock);
      journal_update(r, rel, cancel ? "sending" : "printing");
    }
  }
  int final = 0, impressions = 0;
  if (job_id > 0) {
    if (cancel)
      cancel_printer_job(r, rel, &p, job_id, user);
    set_state(r, rel, "printing", "printer job %d, followed again after a kcpsd restart",
              job_id);
    final = follow_job(r, rel, &p, job_id, user, &impressions);
  }
  printer_close(&p);
  finish_release(r, rel, job, final, impressions);
  return NULL;
}

void kcps_releaser_resume(kcps_releaser_t *releaser)
{
  g_mutex_lock(&releaser->lock);
  for (guint i = 0; i < releaser->to_resume->len; i++) {
    release_t *rel = releaser->to_resume->pdata[i];
    g_message("release %s of job %s to %s: resumed (%s, printer job %d)", rel->id, rel->job_id,
              rel->pin_key, rel->state, rel->printer_job_id);
    rel->thread = g_thread_new("kcps-resume", resume_worker, rel);
  }
  g_ptr_array_set_size(releaser->to_resume, 0);
  g_mutex_unlock(&releaser->lock);
}

/* --- the API -------------------------------------------------------------------- */

static JsonNode *release_json_locked(const release_t *rel)
{
  g_autoptr(JsonBuilder) b = json_builder_new();
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "id");
  json_builder_add_string_value(b, rel->id);
  json_builder_set_member_name(b, "job");
  json_builder_add_string_value(b, rel->job_id);
  json_builder_set_member_name(b, "printer");
  json_builder_add_string_value(b, rel->printer);
  json_builder_set_member_name(b, "state");
  json_builder_add_string_value(b, rel->state);
  json_builder_set_member_name(b, "message");
  if (rel->message != NULL)
    json_builder_add_string_value(b, rel->message);
  else
    json_builder_add_null_value(b);
  json_builder_set_member_name(b, "format");
  if (rel->format != NULL)
    json_builder_add_string_value(b, rel->format);
  else
    json_builder_add_null_value(b);
  json_builder_set_member_name(b, "copies");
  json_builder_add_int_value(b, rel->copies);
  json_builder_set_member_name(b, "color");
  if (rel->color == KCPS_COLOR_AUTO)
    json_builder_add_null_value(b);
  else
    json_builder_add_boolean_value(b, rel->color == KCPS_COLOR_COLOR);
  json_builder_set_member_name(b, "duplex");
  json_builder_add_boolean_value(b, rel->duplex);
  json_builder_set_member_name(b, "printer_job_id");
  json_builder_add_int_value(b, rel->printer_job_id);
  json_builder_set_member_name(b, "attempts");
  json_builder_add_int_value(b, rel->attempts);
  json_builder_set_member_name(b, "pages");
  json_builder_add_int_value(b, rel->pages);
  json_builder_set_member_name(b, "created");
  json_builder_add_int_value(b, rel->created);
  json_builder_set_member_name(b, "finished");
  if (rel->finished != 0)
    json_builder_add_int_value(b, rel->finished);
  else
    json_builder_add_null_value(b);
  json_builder_end_object(b);
  return json_builder_get_root(b);
}

JsonNode *kcps_releaser_start(kcps_releaser_t *releaser, uid_t uid, const char *job_id,
                              const kcps_release_opts_t *opts, GError **error)
{
  g_autofree char *key = NULL;
  if (!kcps_release_check_uri(opts->printer, &key, error))
    return NULL;
  if (opts->copies < 1 || opts->copies > 999) {
    g_set_error_literal(error, KCPS_RELEASE_ERROR, KCPS_RELEASE_ERROR_BAD_REQUEST,
                        "copies must be 1 to 999");
    return NULL;
  }
  GError *local = NULL;
  g_autoptr(kcps_job_t) job = kcps_spool_get_job(releaser->spool, job_id, &local);
  if (job == NULL || job->owner_uid != uid || job->state == KCPS_JOB_STATE_DELETED) {
    /* Another account's job is "not found" too: existence is not revealed. */
    g_clear_error(&local);
    g_set_error(error, KCPS_RELEASE_ERROR, KCPS_RELEASE_ERROR_NOT_FOUND, "no such job: %s",
                job_id);
    return NULL;
  }
  if (job->state == KCPS_JOB_STATE_PRINTED) {
    g_set_error(error, KCPS_RELEASE_ERROR, KCPS_RELEASE_ERROR_CONFLICT,
                "job %s is printed already", job_id);
    return NULL;
  }
  release_t *rel = g_new0(release_t, 1);
  rel->releaser = releaser;
  rel->id = g_uuid_string_random();
  rel->uid = uid;
  rel->job_id = g_strdup(job_id);
  rel->printer = g_strdup(opts->printer);
  rel->pin_key = g_steal_pointer(&key);
  rel->copies = opts->copies;
  rel->color = opts->color;
  rel->duplex = opts->duplex;
  rel->created = g_get_real_time() / G_USEC_PER_SEC;
  rel->state = "pending";

  g_mutex_lock(&releaser->lock);
  release_t *running = g_hash_table_lookup(releaser->active, job_id);
  if (running != NULL || g_atomic_int_get(&releaser->stopping)) {
    g_mutex_unlock(&releaser->lock);
    g_set_error(error, KCPS_RELEASE_ERROR, KCPS_RELEASE_ERROR_CONFLICT,
                running != NULL ? "job %s is being released already (release %s)"
                                : "kcpsd is stopping; job %s was not released%s",
                job_id, running != NULL ? running->id : "");
    release_free(rel);
    return NULL;
  }
  g_hash_table_insert(releaser->releases, rel->id, rel);
  g_hash_table_insert(releaser->active, rel->job_id, rel);
  g_hash_table_insert(releaser->latest, rel->job_id, rel);
  JsonNode *node = release_json_locked(rel);
  rel->thread = g_thread_new("kcps-release", release_worker, rel);
  g_mutex_unlock(&releaser->lock);
  g_message("uid %u released job %s to %s (release %s)", (unsigned)uid, job_id, rel->pin_key,
            rel->id);
  if (releaser->changed != NULL)
    releaser->changed(uid, job_id, json_object_get_string_member(json_node_get_object(node), "id"),
                      "pending", releaser->changed_data);
  return node;
}

JsonNode *kcps_releaser_get(kcps_releaser_t *releaser, uid_t uid, const char *release_id)
{
  JsonNode *node = NULL;
  g_mutex_lock(&releaser->lock);
  release_t *rel = g_hash_table_lookup(releaser->releases, release_id);
  if (rel != NULL && rel->uid == uid)
    node = release_json_locked(rel);
  g_mutex_unlock(&releaser->lock);
  return node;
}

JsonNode *kcps_releaser_latest_for_job(kcps_releaser_t *releaser, const char *job_id)
{
  JsonNode *node = NULL;
  g_mutex_lock(&releaser->lock);
  release_t *rel = g_hash_table_lookup(releaser->latest, job_id);
  if (rel != NULL)
    node = release_json_locked(rel);
  g_mutex_unlock(&releaser->lock);
  return node;
}

bool kcps_releaser_forget_printer(kcps_releaser_t *releaser, const char *uri, bool *removed,
                                  GError **error)
{
  g_autofree char *key = NULL;
  if (!kcps_release_check_uri(uri, &key, error))
    return false;
  g_mutex_lock(&releaser->pin_lock);
  bool ok = kcps_release_pin_forget(releaser->pins_path, key, removed, error);
  g_mutex_unlock(&releaser->pin_lock);
  if (ok && *removed)
    g_message("printer %s: pinned certificate forgotten", key);
  return ok;
}
