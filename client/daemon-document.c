/* GET /v1/jobs/<id>/document on the local API: the caller's own spooled
 * PDF, streamed from the spool (the tray draws its thumbnails and page
 * previews from it). kcpsd does not render the document itself: a PDF is
 * untrusted input, and a poppler bug exploited in kcpsd (which may run as a
 * system service for every account) would reach every user's spool, while
 * in the tray it reaches only the account that printed the document. */
#define G_LOG_DOMAIN "kcpsd"

#include "client/daemon-private.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DOCUMENT_PREFIX "/v1/jobs/"
#define DOCUMENT_SUFFIX "/document"

/* The job id of "/v1/jobs/<id>/document" (one segment, 1-64 bytes), or NULL. */
static char *document_job_id(const char *path)
{
  if (path == NULL || !g_str_has_prefix(path, DOCUMENT_PREFIX))
    return NULL;
  const char *start = path + strlen(DOCUMENT_PREFIX);
  size_t seg = strcspn(start, "/");
  if (seg == 0 || seg > 64 || strcmp(start + seg, DOCUMENT_SUFFIX) != 0)
    return NULL;
  return g_strndup(start, seg);
}

static void get_document(kcps_daemon_t *daemon, kcps_http_req_t *req, uid_t uid,
                         const char *job_id)
{
  g_autoptr(GError) error = NULL;
  kcps_job_t *job = kcps_spool_get_job(daemon->spool, job_id, NULL);
  /* Someone else's job answers like a job that does not exist. */
  if (job == NULL || job->owner_uid != uid || job->state == KCPS_JOB_STATE_DELETED) {
    kcps_job_free(job);
    kcps_http_respond_error(req, 404, "not_found", "no such job");
    return;
  }
  int fd = kcps_spool_open_document(daemon->spool, job, &error);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0) {
    /* Gone between the row and the file (expired, deleted): not found. */
    g_message("document of job %s: cannot open it: %s", job_id,
              error != NULL ? error->message : g_strerror(errno));
    if (fd >= 0)
      close(fd);
    kcps_job_free(job);
    kcps_http_respond_error(req, 404, "not_found", "the job's document is gone");
    return;
  }
  if (job->sha256[0] != '\0')
    kcps_http_req_add_header(req, "X-KCPS-SHA256", job->sha256);
  kcps_http_req_add_header(req, "Cache-Control", "no-store");
  kcps_http_respond_fd(req, 200, "application/pdf", fd, (guint64)st.st_size);
  kcps_job_free(job);
}

bool kcps__local_document(kcps_daemon_t *daemon, kcps_http_req_t *req, uid_t uid)
{
  g_autofree char *job_id = document_job_id(kcps_http_req_path(req));
  if (job_id == NULL)
    return false;
  if (g_strcmp0(kcps_http_req_method(req), "GET") != 0)
    kcps_http_respond_error(req, 405, "method_not_allowed", "%s is not allowed on %s",
                            kcps_http_req_method(req), kcps_http_req_path(req));
  else
    get_document(daemon, req, uid, job_id);
  return true;
}
