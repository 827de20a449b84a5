/* KcpsTrayJob (see tray-job.h). */
#include "ui/tray-job.h"

#include <glib/gi18n-lib.h>

struct _KcpsTrayJob {
  GObject parent;
  char *id;
  char *name;
  char *details;
  char *state_label;
  char *summary;
  gboolean waiting;
  gboolean deletable; /* kcpsd holds it (an uploaded job is the server's) */
  gint64 size;
  gboolean releasable;
  char *release_id;
  char *release_state;
  gint64 upload_done;
  gint64 upload_total;
  gboolean has_document;
};

G_DEFINE_FINAL_TYPE(KcpsTrayJob, kcps_tray_job, G_TYPE_OBJECT)

static void kcps_tray_job_finalize(GObject *object)
{
  KcpsTrayJob *job = KCPS_TRAY_JOB(object);
  g_free(job->id);
  g_free(job->name);
  g_free(job->details);
  g_free(job->state_label);
  g_free(job->summary);
  g_free(job->release_id);
  g_free(job->release_state);
  G_OBJECT_CLASS(kcps_tray_job_parent_class)->finalize(object);
}

static void kcps_tray_job_class_init(KcpsTrayJobClass *klass)
{
  G_OBJECT_CLASS(klass)->finalize = kcps_tray_job_finalize;
}

static void kcps_tray_job_init(KcpsTrayJob *job)
{
  (void)job;
}

KcpsTrayJob *kcps_tray_job_new(const kcps_tray_job_info_t *info, GDateTime *now)
{
  KcpsTrayJob *job = g_object_new(KCPS_TYPE_TRAY_JOB, NULL);
  job->id = g_strdup(info->id);
  job->name = g_strdup(info->name != NULL && *info->name != '\0' ? info->name : _("Untitled"));
  g_autofree char *pages = kcps_tray_format_pages(info->pages);
  g_autofree char *size = kcps_tray_format_size(info->size);
  g_autofree char *when = kcps_tray_format_time(info->created, now);
  if (info->expires > 0 && kcps_tray_job_is_waiting(info->state)) {
    g_autofree char *expires = kcps_tray_format_time(info->expires, now);
    /* Translators: pages, size and time of a job in the list, then when it
     * is deleted unless printed ("Tomorrow, 14:20"). */
    job->details = g_strdup_printf(_("%s \u00b7 %s \u00b7 %s \u00b7 expires %s"), pages, size,
                                   when, expires);
  } else {
    /* Translators: pages, size and time of a job in the list. */
    job->details = g_strdup_printf(_("%s \u00b7 %s \u00b7 %s"), pages, size, when);
  }
  /* Where the job is kept, on a line of its own under its state. */
  const char *where = g_strcmp0(info->spool, "cloud") == 0   ? _("In the cloud")
                      : g_strcmp0(info->spool, "local") == 0 ? _("On this computer (local)")
                                                             : NULL;
  const char *state = kcps_tray_state_label(info->state);
  job->state_label = where != NULL ? g_strdup_printf("%s\n%s", state, where) : g_strdup(state);
  job->summary = kcps_tray_job_summary(info, now);
  job->waiting = kcps_tray_job_is_waiting(info->state);
  job->deletable = g_strcmp0(info->state, "uploaded") != 0;
  job->size = info->size;
  job->releasable = kcps_tray_job_releasable(info);
  job->release_id = g_strdup(info->release_id);
  job->release_state = g_strdup(info->release_state);
  job->upload_done = info->upload_done;
  job->upload_total = info->upload_total;
  job->has_document = job->deletable && g_strcmp0(info->state, "deleted") != 0;
  return job;
}

const char *kcps_tray_job_get_id(KcpsTrayJob *job) { return job->id; }
const char *kcps_tray_job_get_name(KcpsTrayJob *job) { return job->name; }
const char *kcps_tray_job_get_details(KcpsTrayJob *job) { return job->details; }
const char *kcps_tray_job_get_state_label(KcpsTrayJob *job) { return job->state_label; }
const char *kcps_tray_job_get_summary(KcpsTrayJob *job) { return job->summary; }
gboolean kcps_tray_job_get_waiting(KcpsTrayJob *job) { return job->waiting; }
gboolean kcps_tray_job_get_deletable(KcpsTrayJob *job) { return job->deletable; }
gint64 kcps_tray_job_get_size(KcpsTrayJob *job) { return job->size; }
gboolean kcps_tray_job_get_releasable(KcpsTrayJob *job) { return job->releasable; }
const char *kcps_tray_job_get_release_id(KcpsTrayJob *job) { return job->release_id; }
const char *kcps_tray_job_get_release_state(KcpsTrayJob *job) { return job->release_state; }
gint64 kcps_tray_job_get_upload_done(KcpsTrayJob *job) { return job->upload_done; }
gint64 kcps_tray_job_get_upload_total(KcpsTrayJob *job) { return job->upload_total; }
gboolean kcps_tray_job_get_has_document(KcpsTrayJob *job) { return job->has_document; }
