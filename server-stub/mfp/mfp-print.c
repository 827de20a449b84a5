/* kcps-mfp-sim's printer side: Print-Job of a PDF to an IPP printer with
 * libcups, retried while the printer is busy, then followed with
 * Get-Job-Attributes until the job ends. */
#include "mfp-sim-private.h"

#include <cups/cups.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* How long to wait between two polls of a job, and the busy backoff bounds. */
#define POLL_INTERVAL_US (250 * 1000)
#define BUSY_FIRST_US (200 * 1000)
#define BUSY_MAX_US (2 * 1000 * 1000)
/* Failed polls in a row after which the printer counts as gone. */
#define MAX_FAILED_POLLS 5

/* Statuses after which the same request may succeed a little later. */
static bool
is_temporary(ipp_status_t status)
{
  return status == IPP_STATUS_ERROR_BUSY || status == IPP_STATUS_ERROR_SERVICE_UNAVAILABLE ||
         status == IPP_STATUS_ERROR_TEMPORARY;
}

/* One Print-Job: sends the request and streams the file. Returns the
 * printer's response (caller ippDeletes) or NULL when the exchange itself
 * failed; *status gets the IPP status either way. */
static ipp_t *
send_print_job(http_t *http, const char *uri, const char *resource, const char *path,
               const char *job_name, const char *user_name, ipp_status_t *status, GError **error)
{
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  struct stat st;

  if (fd < 0 || fstat(fd, &st) != 0) {
    g_set_error(error, KCPS_MFP_ERROR, KCPS_MFP_ERROR_IO, "cannot read %s: %s", path,
                g_strerror(errno));
    if (fd >= 0)
      close(fd);
    return NULL;
  }

  ipp_t *request = ippNewRequest(IPP_OP_PRINT_JOB);
  ippAddString(request, IPP_TAG_OPERATION, IPP_TAG_URI, "printer-uri", NULL, uri);
  ippAddString(request, IPP_TAG_OPERATION, IPP_TAG_NAME, "requesting-user-name", NULL, user_name);
  ippAddString(request, IPP_TAG_OPERATION, IPP_TAG_NAME, "job-name", NULL, job_name);
  ippAddString(request, IPP_TAG_OPERATION, IPP_TAG_MIMETYPE, "document-format", NULL,
               "application/pdf");

  /* Stream the document (the length announced covers the IPP message too);
   * a printer that answers early (an error) stops the writing, and its
   * answer is read below all the same. */
  http_status_t http_status =
      cupsSendRequest(http, request, resource, ippLength(request) + (size_t)st.st_size);
  char buf[65536];
  ssize_t n;
  while (http_status == HTTP_STATUS_CONTINUE && (n = read(fd, buf, sizeof buf)) > 0)
    http_status = cupsWriteRequestData(http, buf, (size_t)n);
  close(fd);

  ipp_t *response = cupsGetResponse(http, resource);
  ippDelete(request);
  *status = cupsLastError();
  if (!response && !is_temporary(*status)) {
    g_set_error(error, KCPS_MFP_ERROR, KCPS_MFP_ERROR_PRINTER, "printer refused the job: %s (%s)",
                ippErrorString(*status), cupsLastErrorString());
    return NULL;
  }
  return response;
}

/* One Get-Job-Attributes. Returns false + error when the printer does not
 * answer it; else the job's state and impressions so far. */
static bool
get_job_state(http_t *http, const char *uri, const char *resource, int job_id,
              const char *user_name, ipp_jstate_t *state, int *impressions, char **state_message,
              GError **error)
{
  static const char *const wanted[] = {"job-state", "job-state-reasons", "job-state-message",
                                       "job-impressions-completed"};
  ipp_t *request = ippNewRequest(IPP_OP_GET_JOB_ATTRIBUTES);

  ippAddString(request, IPP_TAG_OPERATION, IPP_TAG_URI, "printer-uri", NULL, uri);
  ippAddInteger(request, IPP_TAG_OPERATION, IPP_TAG_INTEGER, "job-id", job_id);
  ippAddString(request, IPP_TAG_OPERATION, IPP_TAG_NAME, "requesting-user-name", NULL, user_name);
  ippAddStrings(request, IPP_TAG_OPERATION, IPP_TAG_KEYWORD, "requested-attributes",
                (int)G_N_ELEMENTS(wanted), NULL, wanted);

  ipp_t *response = cupsDoRequest(http, request, resource);
  ipp_status_t status = cupsLastError();
  if (!response || status > IPP_STATUS_OK_CONFLICTING) {
    g_set_error(error, KCPS_MFP_ERROR, KCPS_MFP_ERROR_PRINTER,
                "printer did not report job %d: %s (%s)", job_id, ippErrorString(status),
                cupsLastErrorString());
    ippDelete(response);
    return false;
  }
  ipp_attribute_t *attr = ippFindAttribute(response, "job-state", IPP_TAG_ENUM);
  *state = attr ? (ipp_jstate_t)ippGetInteger(attr, 0) : IPP_JSTATE_PENDING;
  attr = ippFindAttribute(response, "job-impressions-completed", IPP_TAG_INTEGER);
  if (attr)
    *impressions = ippGetInteger(attr, 0);
  attr = ippFindAttribute(response, "job-state-message", IPP_TAG_TEXT);
  g_free(*state_message);
  *state_message = attr ? g_strdup(ippGetString(attr, 0, NULL)) : NULL;
  if (!*state_message) {
    attr = ippFindAttribute(response, "job-state-reasons", IPP_TAG_KEYWORD);
    *state_message = attr ? g_strdup(ippGetString(attr, 0, NULL)) : NULL;
  }
  ippDelete(response);
  return true;
}

static http_t *
connect_printer(const char *host, int port, http_encryption_t encryption, GError **error)
{
  http_t *http = httpConnect2(host, port, NULL, AF_UNSPEC, encryption, 1, 30000, NULL);

  if (!http)
    g_set_error(error, KCPS_MFP_ERROR, KCPS_MFP_ERROR_PRINTER,
                "cannot connect to the printer at %s:%d (refused or timed out)", host, port);
  return http;
}

bool
kcps__mfp_print_file(const char *uri, const char *path, const char *job_name, const char *user_name,
                     long timeout_s, kcps_mfp_print_result_t *result, GError **error)
{
  char scheme[32], userpass[256], host[256], resource[1024];
  int port = 0;
  gint64 deadline = g_get_monotonic_time() + (gint64)timeout_s * G_USEC_PER_SEC;

  memset(result, 0, sizeof *result);
  if (httpSeparateURI(HTTP_URI_CODING_ALL, uri, scheme, sizeof scheme, userpass, sizeof userpass,
                      host, sizeof host, &port, resource, sizeof resource) < HTTP_URI_STATUS_OK ||
      (strcmp(scheme, "ipp") != 0 && strcmp(scheme, "ipps") != 0)) {
    g_set_error(error, KCPS_MFP_ERROR, KCPS_MFP_ERROR_USAGE,
                "--to %s is not an ipp:// or ipps:// printer URI", uri);
    return false;
  }

  http_encryption_t encryption =
      strcmp(scheme, "ipps") == 0 ? HTTP_ENCRYPTION_ALWAYS : HTTP_ENCRYPTION_IF_REQUESTED;

  /* Print-Job, again while the printer is busy with another job. Each try
   * has a connection of its own, so that nothing a refused try left unread
   * can confuse the next. */
  http_t *http = NULL;
  ipp_t *response = NULL;
  ipp_status_t status = IPP_STATUS_OK;
  gint64 backoff = BUSY_FIRST_US;
  for (;;) {
    if (!(http = connect_printer(host, port, encryption, error)))
      return false;
    response = send_print_job(http, uri, resource, path, job_name, user_name, &status, error);
    httpClose(http);
    http = NULL;
    if (!is_temporary(status))
      break;
    ippDelete(response);
    response = NULL;
    if (g_get_monotonic_time() + backoff > deadline) {
      g_set_error(error, KCPS_MFP_ERROR, KCPS_MFP_ERROR_PRINTER,
                  "printer stayed busy for %ld s: %s (%s)", timeout_s, ippErrorString(status),
                  cupsLastErrorString());
      return false;
    }
    g_usleep((gulong)backoff);
    backoff = MIN(backoff * 2, BUSY_MAX_US);
  }
  if (!response)
    return false;
  if (status > IPP_STATUS_OK_CONFLICTING) {
    ipp_attribute_t *message = ippFindAttribute(response, "status-message", IPP_TAG_TEXT);
    g_set_error(error, KCPS_MFP_ERROR, KCPS_MFP_ERROR_PRINTER, "printer refused the job: %s (%s)",
                ippErrorString(status),
                message ? ippGetString(message, 0, NULL) : "no status-message");
    ippDelete(response);
    return false;
  }
  ipp_attribute_t *attr = ippFindAttribute(response, "job-id", IPP_TAG_INTEGER);
  result->printer_job_id = attr ? ippGetInteger(attr, 0) : 0;
  ippDelete(response);
  if (result->printer_job_id <= 0) {
    g_set_error(error, KCPS_MFP_ERROR, KCPS_MFP_ERROR_PRINTER,
                "printer accepted the job but sent no job-id");
    return false;
  }

  /* Follow the job to its end, within the same overall time. A few failed
   * polls in a row (a dropped connection) are retried on a new connection:
   * the job prints on regardless. */
  ipp_jstate_t state = IPP_JSTATE_PENDING;
  g_autofree char *state_message = NULL;
  int failed_polls = 0;
  for (;;) {
    GError *poll_error = NULL;
    if (!http)
      http = connect_printer(host, port, encryption, &poll_error);
    if (http && get_job_state(http, uri, resource, result->printer_job_id, user_name, &state,
                              &result->impressions, &state_message, &poll_error)) {
      failed_polls = 0;
      if (state >= IPP_JSTATE_CANCELED)
        break;
    } else {
      g_clear_pointer(&http, httpClose);
      if (++failed_polls >= MAX_FAILED_POLLS) {
        g_propagate_prefixed_error(error, poll_error, "%d polls failed in a row: ", failed_polls);
        return false;
      }
      g_error_free(poll_error);
    }
    if (g_get_monotonic_time() + POLL_INTERVAL_US > deadline) {
      g_set_error(error, KCPS_MFP_ERROR, KCPS_MFP_ERROR_PRINTER,
                  "printer job %d not finished after %ld s (state %s)", result->printer_job_id,
                  timeout_s, ippEnumString("job-state", (int)state));
      if (http)
        httpClose(http);
      return false;
    }
    g_usleep(POLL_INTERVAL_US);
  }
  httpClose(http);
  if (state != IPP_JSTATE_COMPLETED) {
    g_set_error(error, KCPS_MFP_ERROR, KCPS_MFP_ERROR_PRINTER, "printer job %d %s: %s",
                result->printer_job_id, ippEnumString("job-state", (int)state),
                state_message ? state_message : "no message");
    return false;
  }
  return true;
}
