/* The jobs window's parts beyond the list (tray-jobs.c, tray-release.c):
 * thumbnails, the page preview, the Release… dialog and their actions. */
#pragma once

#include "ui/tray-app-private.h"
#include "ui/tray-thumb.h"

G_BEGIN_DECLS

/* What the jobs window keeps (on the app, as object data "kcps-jobs"). */
typedef struct kcps__jobs_state_s {
  kcps_tray_thumbs_t *thumbs;
  GHashTable *thumbnailed; /* names of jobs whose row shows a thumbnail (test state) */
  GtkWindow *preview;
  GtkWindow *release;
  /* The last release started from the tray: its id and state, message. */
  char *release_id;
  char *release_state;
  char *release_message;
  guint releases_started;
  GCancellable *release_poll; /* the GET /v1/releases/{id} in flight, or NULL */
  guint test_registration;
  GDBusNodeInfo *test_info;
} kcps__jobs_state_t;

/* kcps__tray_jobs_startup (tray-app-private.h) registers the actions
 * (release, release-job, preview-job and the test hooks) and the test
 * state. */
kcps__jobs_state_t *kcps__tray_jobs_state(KcpsTrayApp *app);

/* The Release… dialog (tray-release.c) for job id, or for a job picked in
 * it (id NULL: the menu's Release…). */
void kcps__tray_release_dialog(KcpsTrayApp *app, const char *job_id);
/* kcpsd said the discovered printers changed: the open dialog lists them
 * again (the printer chosen stays chosen). */
void kcps__tray_release_printers_changed(KcpsTrayApp *app);
/* Test state: how often the open dialog got the printer list (0: no
 * dialog), and *count printers in it now. */
guint kcps__tray_release_printers_listed(KcpsTrayApp *app, guint *count);
/* The release started last follows kcpsd (GET /v1/releases/{id}) after an
 * event; the dialog shows its progress. */
void kcps__tray_release_update(KcpsTrayApp *app);
/* Test hook: types uri into the open dialog and presses Release. */
void kcps__tray_release_submit(KcpsTrayApp *app, const char *uri);

G_END_DECLS
