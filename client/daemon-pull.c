/* The pull port (5571, HTTPS on the LAN): an MFP holding a ticket the server
 * signed fetches one spooled document. Every check happens before anything
 * changes; a refused pull leaves the spool as it was. */
#define G_LOG_DOMAIN "kcpsd"

#include "client/daemon-private.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/crypto.h"

#define TICKET_SCHEME "KCPS-Ticket"
/* Far above any real ticket; a longer header is refused unread. */
#define TICKET_MAX_LEN 4096
#define JOB_ID_MAX_LEN 64

/* The job id of "/jobs/<id>/document", or NULL (caller g_frees). Ids are
 * UUIDs; anything outside [A-Za-z0-9-] is not one of ours. */
char *kcps__pull_job_id_from_path(const char *path)
{
  static const char prefix[] = "/jobs/";
  static const char suffix[] = "/document";
  if (path == NULL || !g_str_has_prefix(path, prefix))
    return NULL;
  const char *id = path + strlen(prefix);
  const char *end = strchr(id, '/');
  if (end == NULL || strcmp(end, suffix) != 0)
    return NULL;
  size_t len = (size_t)(end - id);
  if (len == 0 || len > JOB_ID_MAX_LEN)
    return NULL;
  for (size_t i = 0; i < len; i++)
    if (!g_ascii_isalnum(id[i]) && id[i] != '-')
      return NULL;
  return g_strndup(id, len);
}

/* The ticket text of "Authorization: KCPS-Ticket <ticket>", or NULL. */
static const char *ticket_from_header(const char *value)
{
  size_t scheme_len = strlen(TICKET_SCHEME);
  if (value == NULL || g_ascii_strncasecmp(value, TICKET_SCHEME, scheme_len) != 0
      || value[scheme_len] != ' ')
    return NULL;
  const char *ticket = value + scheme_len;
  while (*ticket == ' ')
    ticket++;
  return *ticket != '\0' ? ticket : NULL;
}

/* A byte range of a size-byte document. */
typedef enum { RANGE_NONE, RANGE_OK, RANGE_UNSATISFIABLE } range_result_t;

static bool parse_u64(const char *start, const char *end, guint64 *out)
{
  if (start == end || end - start > 19)
    return false;
  guint64 v = 0;
  for (const char *p = start; p < end; p++) {
    if (!g_ascii_isdigit(*p))
      return false;
    v = v * 10 + (guint64)(*p - '0');
  }
  *out = v;
  return true;
}

/* "Range: bytes=FIRST-[LAST]" or "bytes=-SUFFIX" (RFC 9110 14.2), one range
 * only. Anything else (several ranges, other units, junk) is ignored and
 * the whole document is served, as RFC 9110 allows. */
static range_result_t parse_range(const char *value, guint64 size, guint64 *first,
                                  guint64 *len)
{
  static const char unit[] = "bytes=";
  if (value == NULL || g_ascii_strncasecmp(value, unit, strlen(unit)) != 0)
    return RANGE_NONE;
  const char *spec = value + strlen(unit);
  const char *dash = strchr(spec, '-');
  if (dash == NULL || strchr(spec, ',') != NULL)
    return RANGE_NONE;
  const char *end = spec + strlen(spec);
  guint64 a = 0, b = 0;
  if (dash == spec) {
    /* The last b bytes. */
    if (!parse_u64(dash + 1, end, &b))
      return RANGE_NONE;
    if (b == 0 || size == 0)
      return RANGE_UNSATISFIABLE;
    *len = MIN(b, size);
    *first = size - *len;
    return RANGE_OK;
  }
  if (!parse_u64(spec, dash, &a))
    return RANGE_NONE;
  if (dash + 1 == end) {
    b = size > 0 ? size - 1 : 0;
  } else if (!parse_u64(dash + 1, end, &b) || b < a) {
    return RANGE_NONE;
  }
  if (a >= size)
    return RANGE_UNSATISFIABLE;
  b = MIN(b, size - 1);
  *first = a;
  *len = b - a + 1;
  return RANGE_OK;
}

static void refuse(kcps_http_req_t *req, const char *job_id, const char *why)
{
  /* The ticket itself is never logged or echoed; which check failed is. */
  g_info("pull of job %s refused: %s", job_id != NULL ? job_id : "(none)", why);
  kcps_http_respond_error(req, 401, "invalid_ticket", "%s", why);
}

static const char *verify_failure(const GError *error)
{
  if (g_error_matches(error, KCPS_CRYPTO_ERROR, KCPS_CRYPTO_ERROR_EXPIRED))
    return "the ticket has expired";
  if (g_error_matches(error, KCPS_CRYPTO_ERROR, KCPS_CRYPTO_ERROR_SIGNATURE))
    return "the ticket's signature does not verify with the server's key";
  if (error != NULL && error->domain == KCPS_NET_ERROR)
    return "the ticket cannot be verified: the server's ticket key is not available";
  return "the ticket is malformed";
}

static void handle_pull(kcps_http_req_t *req, void *data)
{
  kcps_daemon_t *daemon = data;
  g_autofree char *job_id = kcps__pull_job_id_from_path(kcps_http_req_path(req));
  if (job_id == NULL) {
    kcps_http_respond_error(req, 404, "not_found", "no such resource; pulls use GET /jobs/<id>/document");
    return;
  }
  if (g_strcmp0(kcps_http_req_method(req), "GET") != 0) {
    kcps_http_req_add_header(req, "Allow", "GET");
    kcps_http_respond_error(req, 405, "method_not_allowed", "only GET is served here");
    return;
  }

  /* 1. A ticket the server signed, not expired, for this very job. The
   * signature comes before anything about the job, so that without a
   * ticket nobody learns which jobs exist. */
  const char *text = ticket_from_header(kcps_http_req_header(req, "Authorization"));
  if (text == NULL) {
    refuse(req, job_id, "no ticket: send Authorization: " TICKET_SCHEME " <ticket>");
    return;
  }
  if (strlen(text) > TICKET_MAX_LEN) {
    refuse(req, job_id, "the ticket is malformed (too long)");
    return;
  }
  g_autoptr(GError) error = NULL;
  g_autoptr(kcps_ticket_t) ticket = kcps__sync_verify_ticket(daemon, text, g_get_real_time() / G_USEC_PER_SEC, &error);
  if (ticket == NULL) {
    refuse(req, job_id, verify_failure(error));
    return;
  }
  if (g_strcmp0(ticket->cjob, job_id) != 0) {
    refuse(req, job_id, "the ticket is for another job");
    return;
  }
  /* An MFP names itself; a ticket the server issued to another device is
   * refused (the server issues tickets to the device that asks). */
  const char *device = kcps_http_req_header(req, "X-KCPS-Device");
  if (device != NULL && g_strcmp0(device, ticket->device) != 0) {
    g_info("pull of job %s refused: the ticket was issued to another device", job_id);
    kcps_http_respond_error(req, 403, "forbidden_device",
                            "the ticket was issued to another device");
    return;
  }

  /* 2. The job: here, registered, and registered as the ticket says. */
  g_autoptr(kcps_job_t) job = kcps_spool_get_job(daemon->spool, job_id, &error);
  if (job == NULL || job->state == KCPS_JOB_STATE_DELETED) {
    if (job == NULL && !g_error_matches(error, KCPS_SPOOL_ERROR, KCPS_SPOOL_ERROR_NOT_FOUND))
      g_warning("pull of job %s: cannot read it from the spool: %s", job_id, error->message);
    kcps_http_respond_error(req, 404, "not_found", "no such job");
    return;
  }
  if ((job->state != KCPS_JOB_STATE_REGISTERED && job->state != KCPS_JOB_STATE_PULLED)
      || job->server_id == NULL) {
    refuse(req, job_id, "the job is not registered with the server (or no longer waiting)");
    return;
  }
  if (g_strcmp0(job->server_id, ticket->job) != 0) {
    refuse(req, job_id, "the ticket names another server job");
    return;
  }
  if (g_strcmp0(job->server_user, ticket->user) != 0) {
    refuse(req, job_id, "the ticket names another user than the job's owner");
    return;
  }

  /* 3. The document opens, before the ticket is spent on it. */
  int fd = kcps_spool_open_document(daemon->spool, job, &error);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0) {
    g_warning("pull of job %s: cannot open its document: %s", job_id,
              error != NULL ? error->message : g_strerror(errno));
    if (fd >= 0)
      close(fd);
    kcps_http_respond_error(req, 500, "internal", "the job's document cannot be read");
    return;
  }

  /* 3b. A resumed pull asks for the rest: one byte range, with a fresh
   * ticket (each request spends one). An impossible range is refused before
   * the ticket is spent. */
  guint64 size = (guint64)st.st_size, first = 0, len = size;
  range_result_t range =
    parse_range(kcps_http_req_header(req, "Range"), size, &first, &len);
  if (range == RANGE_UNSATISFIABLE) {
    close(fd);
    g_autofree char *content_range = g_strdup_printf("bytes */%" G_GUINT64_FORMAT, size);
    kcps_http_req_add_header(req, "Content-Range", content_range);
    kcps_http_respond_error(req, 416, "range_not_satisfiable",
                            "the document has %" G_GUINT64_FORMAT " bytes", size);
    return;
  }

  /* 4. Single use: the last check, and the first change. */
  if (!kcps_spool_use_ticket(daemon->spool, ticket->tid, ticket->exp, &error)) {
    close(fd);
    if (g_error_matches(error, KCPS_SPOOL_ERROR, KCPS_SPOOL_ERROR_TICKET_USED)) {
      refuse(req, job_id, "the ticket was used before");
    } else {
      g_warning("pull of job %s: cannot record the ticket: %s", job_id, error->message);
      kcps_http_respond_error(req, 500, "internal", "the ticket cannot be recorded");
    }
    return;
  }

  /* The sha256 is always that of the whole document. */
  kcps_http_req_add_header(req, "X-KCPS-SHA256", job->sha256);
  kcps_http_req_add_header(req, "Accept-Ranges", "bytes");
  if (range == RANGE_OK) {
    g_autofree char *content_range =
      g_strdup_printf("bytes %" G_GUINT64_FORMAT "-%" G_GUINT64_FORMAT "/%" G_GUINT64_FORMAT,
                      first, first + len - 1, size);
    kcps_http_req_add_header(req, "Content-Range", content_range);
    kcps_http_respond_fd_range(req, 206, "application/pdf", fd, first, len);
  } else {
    kcps_http_respond_fd(req, 200, "application/pdf", fd, size);
  }
  if (job->state == KCPS_JOB_STATE_REGISTERED) {
    if (kcps_spool_set_state(daemon->spool, job_id, KCPS_JOB_STATE_PULLED, &error))
      kcps__events_emit(daemon, job->owner_uid, "job", job_id);
    else
      g_warning("job %s: pulled, but cannot record it: %s", job_id, error->message);
  }
  g_info("job %s pulled by device %s", job_id, ticket->device != NULL ? ticket->device : "?");
}

/* Seconds a pull connection may stay idle (half a request, an answer not
 * read) before it is closed: 60, or $KCPSD_PULL_TIMEOUT (1-3600; tests). */
static unsigned pull_timeout_s(void)
{
  const char *text = g_getenv("KCPSD_PULL_TIMEOUT");
  guint64 v = 0;
  if (text != NULL && parse_u64(text, text + strlen(text), &v) && v >= 1 && v <= 3600)
    return (unsigned)v;
  return 60;
}

bool kcps__pull_start(kcps_daemon_t *daemon, GError **error)
{
  /* An IPv6 address needs brackets before the port. */
  bool bracket = strchr(daemon->pull_listen, ':') != NULL && daemon->pull_listen[0] != '[';
  g_autofree char *listen = g_strdup_printf("%s%s%s:%d", bracket ? "[" : "", daemon->pull_listen,
                                            bracket ? "]" : "", daemon->pull_port);
  const char *listens[] = {listen, NULL};
  kcps_http_config_t config = {
    .listen = listens,
    .cert_path = daemon->pull_cert_path,
    .key_path = daemon->pull_key_path,
    .max_body = 4096, /* GET only: no body is expected */
    .timeout_s = pull_timeout_s(),
  };
  daemon->pull = kcps_http_server_new(&config, handle_pull, daemon, error);
  if (daemon->pull == NULL)
    return false;
  daemon->pull_port = kcps_http_server_port(daemon->pull, 0);
  return true;
}
