/* What the tray's own files share: the application's fields and the
 * window builders (tray-windows.c). */
#pragma once

#include "ui/tray-app.h"
#include "ui/tray-model.h"
#include "ui/tray-sni.h"

G_BEGIN_DECLS

struct _KcpsTrayApp {
  GtkApplication parent;
  /* Options. */
  int port;          /* kcpsd's local API */
  char *test_dir;    /* --test-dir: test hooks on, screenshots go here */
  /* State, as kcpsd last said. */
  kcps_tray_status_t status;
  bool status_known; /* kcpsd answered (or failed to) at least once */
  GListStore *jobs;  /* KcpsTrayJob */
  guint waiting;
  guint uploading; /* jobs on their way to the cloud spool (the icon) */
  bool refreshing;
  bool refresh_again;
  char *login_message; /* what the login window shows, or NULL */
  bool login_busy;
  guint login_attempts; /* answers to login calls so far (test state) */
  /* Notifications: the previous jobs read (NULL before the first) to see
   * what changed, the jobs already warned about expiry, the switch (kept in
   * ~/.config/kcps/tray.ini) and how many were sent (test state). */
  GPtrArray *last_jobs;
  GHashTable *warned;
  bool notify;
  guint notices_sent;
  /* kcpsd's push channel: the stream (NULL while waiting to reconnect),
   * whether it said ready, the reconnect timer and its backoff, how many
   * streams became ready (test state). */
  struct kcps_tray_events_s *events;
  bool events_ready;
  guint reconnect_source;
  guint reconnect_delay_s;
  guint events_readies;
  bool quota_warned; /* the quota-low notice was sent since the quota was last fine */
  guint deletes_done; /* DELETE answers so far (test state) */
  GtkWindow *delete_dialog; /* the open confirmation, or NULL */
  /* The icon; has_host false: no tray, the main window stands in. */
  kcps_tray_sni_t *sni;
  bool has_host;
  bool activated;    /* activate ran once (the first start) */
  /* Windows (NULL until first shown). */
  GtkWindow *jobs_window;
  GtkWindow *login_window;
  GtkWindow *settings_window;
  /* Test hooks' D-Bus object. */
  guint state_registration;
  GDBusNodeInfo *state_info;
};

/* Asks kcpsd for status and jobs now (coalesces overlapping calls). */
void kcps__tray_refresh(KcpsTrayApp *app);
/* Logs in with email and password (the password is wiped after the call). */
void kcps__tray_login(KcpsTrayApp *app, const char *email, const char *password);
/* Something shown changed: the icon, the windows and the test state follow. */
void kcps__tray_state_changed(KcpsTrayApp *app);

/* The windows (tray-windows.c): each created on first use, then presented. */
GtkWindow *kcps__tray_jobs_window(KcpsTrayApp *app);
GtkWindow *kcps__tray_login_window(KcpsTrayApp *app);
GtkWindow *kcps__tray_settings_window(KcpsTrayApp *app);
/* The settings window's actions (app.spool-mode s, app.default-printer s), once
 * at startup; kcpsd's settings read again (GET /v1/settings) when it is open. */
void kcps__tray_settings_startup(KcpsTrayApp *app);
void kcps__tray_settings_reload(KcpsTrayApp *app);
/* The spool mode the settings window shows: "organization", "local", "cloud",
 * or "" before kcpsd's settings were read (test state). */
const char *kcps__tray_settings_choice(KcpsTrayApp *app);
/* Asks whether to delete job id (name for the question), then deletes it
 * (tray-windows.c); kcps__tray_delete_job does it without asking. */
void kcps__tray_ask_delete(KcpsTrayApp *app, const char *id, const char *name);
void kcps__tray_delete_job(KcpsTrayApp *app, const char *id);
/* Brings the windows' texts in line with the app's state. */
void kcps__tray_windows_update(KcpsTrayApp *app);
/* Each window's part of kcps__tray_windows_update (tray-jobs.c, tray-login.c). */
void kcps__tray_jobs_update(KcpsTrayApp *app);
void kcps__tray_login_update(KcpsTrayApp *app);
/* What the login window's email field holds ("" without the window; test state). */
const char *kcps__tray_login_email_field(KcpsTrayApp *app);
/* Shared by the windows (tray-windows.c): an accessible label; a window of
 * the app, hidden (not destroyed) on close, named for the tests, Escape
 * closes it; a text label with a mnemonic for widget, naming it to screen
 * readers. */
void kcps__tray_set_label(GtkWidget *widget, const char *label);
GtkWindow *kcps__tray_new_window(KcpsTrayApp *app, const char *name, const char *title);
GtkWidget *kcps__tray_label_for(const char *text, GtkWidget *widget);
/* A button with a mnemonic ("_Log in"), or one relabelled so: GTK 4.8
 * names it to screen readers by its raw label and then its text ("_Log in
 * Log in"); this leaves the text alone ("Log in"). Again after each
 * gtk_button_set_label. */
GtkWidget *kcps__tray_mnemonic_button(const char *mnemonic);
void kcps__tray_name_by_label(GtkWidget *button);
/* Fills the login form and submits it, as a person would (test hook). */
void kcps__tray_login_window_submit(KcpsTrayApp *app, const char *email, const char *password);
/* Saves window as a PNG at path once it has been drawn (test hook). */
void kcps__tray_window_screenshot(GtkWindow *window, const char *path);
/* The jobs window's actions and state (tray-jobs.c), once at startup. */
void kcps__tray_jobs_startup(KcpsTrayApp *app);

G_END_DECLS
