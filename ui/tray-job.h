/* KcpsTrayJob: one job of the jobs list, as a GObject for GListModel and
 * GtkListView; its texts are formatted once, by the view model. */
#pragma once

#include <glib-object.h>

#include "ui/tray-model.h"

G_BEGIN_DECLS

#define KCPS_TYPE_TRAY_JOB (kcps_tray_job_get_type())
G_DECLARE_FINAL_TYPE(KcpsTrayJob, kcps_tray_job, KCPS, TRAY_JOB, GObject)

/* A job for info (copied) as seen at now. */
KcpsTrayJob *kcps_tray_job_new(const kcps_tray_job_info_t *info, GDateTime *now);

const char *kcps_tray_job_get_id(KcpsTrayJob *job);
const char *kcps_tray_job_get_name(KcpsTrayJob *job);
/* "2 pages · 12.3 kB · Today, 10:42" */
const char *kcps_tray_job_get_details(KcpsTrayJob *job);
const char *kcps_tray_job_get_state_label(KcpsTrayJob *job);
/* All of it in one sentence, for screen readers. */
const char *kcps_tray_job_get_summary(KcpsTrayJob *job);
gboolean kcps_tray_job_get_waiting(KcpsTrayJob *job);
/* Whether kcpsd can delete it (DELETE /v1/jobs/{id}): not once uploaded. */
gboolean kcps_tray_job_get_deletable(KcpsTrayJob *job);

/* For the thumbnails, releases and progress bars (tray-jobs.c): the
 * document's size (with the id, the thumbnail cache's key); whether it can
 * be released; the latest release's id and state (or NULL); the upload's
 * bytes confirmed and in all (-1 when no upload). */
gint64 kcps_tray_job_get_size(KcpsTrayJob *job);
gboolean kcps_tray_job_get_releasable(KcpsTrayJob *job);
const char *kcps_tray_job_get_release_id(KcpsTrayJob *job);
const char *kcps_tray_job_get_release_state(KcpsTrayJob *job);
gint64 kcps_tray_job_get_upload_done(KcpsTrayJob *job);
gint64 kcps_tray_job_get_upload_total(KcpsTrayJob *job);
/* Whether the document is in the local spool (a thumbnail can be drawn). */
gboolean kcps_tray_job_get_has_document(KcpsTrayJob *job);

G_END_DECLS
