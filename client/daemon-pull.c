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

  kcps_http_req_add_header(req, "X-KCPS-SHA256", job->sha256);
  kcps_http_respond_fd(req, 200, "application/pdf", fd, (guint64)st.st_size);
  if (job->state == KCPS_JOB_STATE_REGISTERED
      && !kcps_spool_set_state(daemon->spool, job_id, KCPS_JOB_STATE_PULLED, &error))
    g_warning("job %s: pulled, but cannot record it: %s", job_id, error->message);
  g_info("job %s pulled by device %s", job_id, ticket->device != NULL ? ticket->device : "?");
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
  };
  daemon->pull = kcps_http_server_new(&config, handle_pull, daemon, error);
  if (daemon->pull == NULL)
    return false;
  daemon->pull_port = kcps_http_server_port(daemon->pull, 0);
  return true;
}
