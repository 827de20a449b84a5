/* KcpsTrayApp: one instance per user session (GtkApplication's bus name),
 * the tray icon, the actions its menu and windows use, and the state read
 * from kcpsd. Nothing here polls: the state is read on start, on each event
 * kcpsd pushes (GET /v1/events), when the menu or a window opens, on
 * Refresh, and after each action. */
#define G_LOG_DOMAIN "kcps-tray"

#include "ui/tray-app-private.h"

#include <glib/gi18n-lib.h>
#include <string.h>

#include "common/json-util.h"
#include "ui/tray-client.h"
#include "ui/tray-job.h"
#include "ui/tray-jobs.h"
#include "ui/tray-session.h"

#define DEFAULT_PORT 5572
#define STATE_PATH "/org/kcps/Tray/Test"
#define STATE_IFACE "org.kcps.Tray1.Test"

G_DEFINE_FINAL_TYPE(KcpsTrayApp, kcps_tray_app, GTK_TYPE_APPLICATION)

/* --- the tray's own settings -------------------------------------------- */

/* ~/.config/kcps/tray.ini: the tray's own switches (not kcpsd's settings). */
static char *settings_path(void)
{
  return g_build_filename(g_get_user_config_dir(), "kcps", "tray.ini", NULL);
}

static void settings_load(KcpsTrayApp *app)
{
  g_autofree char *path = settings_path();
  g_autoptr(GKeyFile) file = g_key_file_new();
  g_autoptr(GError) error = NULL;
  app->notify = true;
  if (!g_key_file_load_from_file(file, path, G_KEY_FILE_NONE, &error)) {
    if (!g_error_matches(error, G_FILE_ERROR, G_FILE_ERROR_NOENT))
      g_warning("%s is not read: %s", path, error->message);
    return;
  }
  g_clear_error(&error);
  gboolean notify = g_key_file_get_boolean(file, "tray", "notifications", &error);
  if (error == NULL)
    app->notify = notify;
}

static void settings_save(KcpsTrayApp *app)
{
  g_autofree char *path = settings_path();
  g_autofree char *dir = g_path_get_dirname(path);
  g_autoptr(GKeyFile) file = g_key_file_new();
  g_autoptr(GError) error = NULL;
  /* Keep keys another version may have written. */
  (void)g_key_file_load_from_file(file, path, G_KEY_FILE_KEEP_COMMENTS, NULL);
  g_key_file_set_boolean(file, "tray", "notifications", app->notify);
  gsize length = 0;
  g_autofree char *text = g_key_file_to_data(file, &length, NULL);
  if (g_mkdir_with_parents(dir, 0700) != 0)
    g_warning("cannot make %s", dir);
  else if (!g_file_set_contents_full(path, text, (gssize)length, G_FILE_SET_CONTENTS_CONSISTENT,
                                     0600, &error))
    g_warning("%s is not saved: %s", path, error->message);
}

/* --- notifications ------------------------------------------------------- */

/* One desktop notification, unless they are switched off. */
static void send_notice(KcpsTrayApp *app, const kcps_tray_notice_t *notice)
{
  if (!app->notify)
    return;
  g_autoptr(GNotification) n = g_notification_new(notice->title);
  g_notification_set_body(n, notice->body);
  g_notification_set_default_action(n, "app.jobs");
  g_notification_set_priority(n, notice->kind == KCPS_TRAY_NOTICE_FAILED ||
                                     notice->kind == KCPS_TRAY_NOTICE_QUOTA_LOW
                                   ? G_NOTIFICATION_PRIORITY_HIGH
                                   : G_NOTIFICATION_PRIORITY_NORMAL);
  g_application_send_notification(G_APPLICATION(app), notice->id, n);
  app->notices_sent++;
}

/* What changed between the last read of the jobs and this one, as desktop
 * notifications (GNotification: the portal, org.gtk.Notifications or
 * org.freedesktop.Notifications, as GLib finds). */
static void notify_changes(KcpsTrayApp *app, GPtrArray *jobs)
{
  g_autoptr(GDateTime) now = g_date_time_new_now_local();
  g_autoptr(GPtrArray) notices = kcps_tray_notices(app->last_jobs, jobs, app->warned, now);
  g_clear_pointer(&app->last_jobs, g_ptr_array_unref);
  app->last_jobs = g_ptr_array_ref(jobs);
  for (guint i = 0; i < notices->len; i++)
    send_notice(app, g_ptr_array_index(notices, i));
}

/* The quota-low notice once each time the quota becomes low. */
static void notify_quota(KcpsTrayApp *app)
{
  kcps_tray_notice_t *notice = kcps_tray_quota_notice(&app->status);
  if (notice == NULL) {
    /* Unknown (e.g. kcpsd restarting) is not "fine again". */
    if (app->status.quota_known)
      app->quota_warned = false;
    return;
  }
  if (!app->quota_warned) {
    app->quota_warned = true;
    send_notice(app, notice);
  }
  kcps_tray_notice_free(notice);
}

/* --- talking to kcpsd ---------------------------------------------------- */

static void refresh_done(KcpsTrayApp *app)
{
  app->refreshing = false;
  kcps__tray_state_changed(app);
  if (app->refresh_again) {
    app->refresh_again = false;
    kcps__tray_refresh(app);
  }
}

static void got_jobs(GObject *source, GAsyncResult *result, gpointer data)
{
  (void)source;
  KcpsTrayApp *app = data;
  g_autoptr(kcps_tray_reply_t) reply = kcps_tray_call_finish(result);
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) jobs = NULL;
  if (reply->status == 200)
    jobs = kcps_tray_jobs_parse(reply->body, &error);
  if (jobs == NULL) {
    if (error != NULL)
      g_warning("kcpsd's job list is not understood: %s", error->message);
    else if (reply->status == 0)
      /* kcpsd went away between the two calls: its event stream's end
       * shows it. */
      g_info("kcpsd did not answer for the jobs");
    else
      g_warning("kcpsd did not list the jobs (HTTP %ld)", reply->status);
    jobs = g_ptr_array_new();
  } else {
    notify_changes(app, jobs);
  }
  /* Newest first, as people look for what they just printed. */
  g_autoptr(GDateTime) now = g_date_time_new_now_local();
  g_autoptr(GPtrArray) items = g_ptr_array_new_with_free_func(g_object_unref);
  app->waiting = 0;
  app->uploading = 0;
  for (guint i = jobs->len; i > 0; i--) {
    const kcps_tray_job_info_t *info = g_ptr_array_index(jobs, i - 1);
    if (kcps_tray_job_is_waiting(info->state))
      app->waiting++;
    if (kcps_tray_job_uploading(info->state, info->upload_done, info->upload_total))
      app->uploading++;
    g_ptr_array_add(items, kcps_tray_job_new(info, now));
  }
  g_list_store_splice(app->jobs, 0, g_list_model_get_n_items(G_LIST_MODEL(app->jobs)),
                      items->pdata, items->len);
  refresh_done(app);
  g_application_release(G_APPLICATION(app));
}

static void got_status(GObject *source, GAsyncResult *result, gpointer data)
{
  (void)source;
  KcpsTrayApp *app = data;
  g_autoptr(kcps_tray_reply_t) reply = kcps_tray_call_finish(result);
  g_autoptr(GError) error = NULL;
  kcps_tray_status_clear(&app->status);
  app->status_known = true;
  if (reply->status == 0) {
    g_info("kcpsd is not reachable on 127.0.0.1:%d", app->port);
  } else if (reply->status != 200 || !kcps_tray_status_parse(reply->body, &app->status, &error)) {
    g_warning("kcpsd's status is not usable (HTTP %ld%s%s)", reply->status,
              error != NULL ? ": " : "", error != NULL ? error->message : "");
    kcps_tray_status_clear(&app->status);
  }
  notify_quota(app);
  kcps__tray_session_status(app); /* resume from the keyring when logged out */
  if (!app->status.reachable) {
    g_list_store_remove_all(app->jobs);
    app->waiting = 0;
    app->uploading = 0;
    refresh_done(app);
    g_application_release(G_APPLICATION(app));
    return;
  }
  kcps_tray_call_async(app->port, "GET", "/v1/jobs", NULL, NULL, got_jobs, app);
}

void kcps__tray_refresh(KcpsTrayApp *app)
{
  if (app->refreshing) {
    app->refresh_again = true;
    return;
  }
  app->refreshing = true;
  /* Keep the app alive until the answers are in. */
  g_application_hold(G_APPLICATION(app));
  kcps_tray_call_async(app->port, "GET", "/v1/status", NULL, NULL, got_status, app);
  kcps__tray_state_changed(app);
}

static void login_done(GObject *source, GAsyncResult *result, gpointer data)
{
  (void)source;
  KcpsTrayApp *app = data;
  g_autoptr(kcps_tray_reply_t) reply = kcps_tray_call_finish(result);
  app->login_busy = false;
  app->login_attempts++;
  g_clear_pointer(&app->login_message, g_free);
  bool code_step = kcps__tray_session_code_pending(app);
  gint64 locked_until = reply->status == 401 || reply->status == 403
                          ? kcps_json_locked_until(reply->body, NULL) : 0;
  if (locked_until > 0) {
    /* Locked (at the password or the code step): say when to try again.
     * The server ended the code's attempt, so the window goes back to the
     * password step. */
    kcps__tray_session_cancel_code(app);
    app->login_message =
      kcps_tray_locked_message(locked_until, g_get_real_time() / G_USEC_PER_SEC);
  } else if (kcps__tray_session_login_reply(app, reply->status, reply->body)) {
    /* The organization asks for the mailed code (or it was not right). */
    app->login_message = g_strdup(
      reply->status == 200 ? _("A sign-in code was mailed to you. Enter it to log in.")
      : reply->status == 400 ? _("Enter the 6-digit code from the email.")
      : reply->status == 401 ? _("The code is not right or no longer valid. Check it, or go "
                                 "back and log in again for a new code.")
                             : kcps_tray_login_message(reply->status));
  } else if (reply->status == 200) {
    g_info("logged in");
    /* The next login window starts with this address (tray.ini). */
    const char *email = reply->body != NULL && JSON_NODE_HOLDS_OBJECT(reply->body)
                          ? kcps_json_string(json_node_get_object(reply->body), "email") : NULL;
    g_autoptr(GError) error = NULL;
    if (email != NULL && !kcps_tray_ini_set("last_email", email, &error))
      g_message("cannot keep the login's address in tray.ini: %s", error->message);
    if (app->login_window != NULL)
      gtk_window_close(app->login_window);
  } else {
    const char *sso = kcps__tray_session_failure(app, reply->status);
    app->login_message =
      g_strdup(sso != NULL ? sso : kcps_tray_login_message(code_step ? 401 : reply->status));
  }
  kcps__tray_refresh(app);
  g_application_release(G_APPLICATION(app));
}

void kcps__tray_login_post(KcpsTrayApp *app, const char *path, JsonNode *body)
{
  if (app->login_busy)
    return;
  g_clear_pointer(&app->login_message, g_free);
  app->login_busy = true;
  g_application_hold(G_APPLICATION(app));
  kcps_tray_call_async(app->port, "POST", path, body, NULL, login_done, app);
  kcps__tray_state_changed(app);
}

void kcps__tray_login(KcpsTrayApp *app, const char *email, const char *password)
{
  if (app->login_busy)
    return;
  g_clear_pointer(&app->login_message, g_free);
  if (email == NULL || *email == '\0' || password == NULL || *password == '\0') {
    app->login_message = g_strdup(kcps_tray_login_message(400));
    kcps__tray_state_changed(app);
    return;
  }
  g_autoptr(JsonBuilder) builder = json_builder_new();
  json_builder_begin_object(builder);
  json_builder_set_member_name(builder, "email");
  json_builder_add_string_value(builder, email);
  json_builder_set_member_name(builder, "password");
  json_builder_add_string_value(builder, password);
  json_builder_end_object(builder);
  g_autoptr(JsonNode) body = json_builder_get_root(builder);
  app->login_busy = true;
  g_application_hold(G_APPLICATION(app));
  kcps_tray_call_async(app->port, "POST", "/v1/login", body, NULL, login_done, app);
  kcps__tray_state_changed(app);
}

static void logout_done(GObject *source, GAsyncResult *result, gpointer data)
{
  (void)source;
  KcpsTrayApp *app = data;
  g_autoptr(kcps_tray_reply_t) reply = kcps_tray_call_finish(result);
  if (reply->status != 204)
    g_warning("kcpsd did not log out (HTTP %ld)", reply->status);
  kcps__tray_session_forget(app); /* the CLI's session too: the same item */
  kcps__tray_refresh(app);
  g_application_release(G_APPLICATION(app));
}

/* --- kcpsd's push channel ------------------------------------------------ */

/* Reconnecting waits 1 s, then twice as long each time, up to this. */
#define RECONNECT_MAX_S 30

static void events_start(KcpsTrayApp *app);

static gboolean reconnect(gpointer data)
{
  KcpsTrayApp *app = data;
  app->reconnect_source = 0;
  events_start(app);
  return G_SOURCE_REMOVE;
}

/* Each event: read status and jobs again (an event says what changed, not
 * how; overlapping reads coalesce). */
static void on_event(const char *type, gpointer data)
{
  KcpsTrayApp *app = data;
  if (type == NULL) {
    /* The stream ended: kcpsd stopped or restarts. Show that, and try
     * again later (only while it is away: a running kcpsd costs nothing). */
    g_clear_pointer(&app->events, kcps_tray_events_free);
    if (app->events_ready)
      g_info("kcpsd's event stream ended; reconnecting");
    app->events_ready = false;
    app->reconnect_delay_s = app->reconnect_delay_s == 0
                               ? 1 : MIN(app->reconnect_delay_s * 2, RECONNECT_MAX_S);
    app->reconnect_source = g_timeout_add_seconds(app->reconnect_delay_s, reconnect, app);
    kcps__tray_refresh(app);
    return;
  }
  if (strcmp(type, "ready") == 0) {
    /* Subscribed: whatever happened before is read now. */
    app->events_ready = true;
    app->events_readies++;
    app->reconnect_delay_s = 0;
  }
  if (strcmp(type, "printers") == 0) {
    /* Only the release dialog shows them. */
    kcps__tray_release_printers_changed(app);
    return;
  }
  if (strcmp(type, "ready") == 0 || strcmp(type, "settings") == 0)
    kcps__tray_settings_reload(app);
  kcps__tray_refresh(app);
}

static void events_start(KcpsTrayApp *app)
{
  if (app->events != NULL || app->reconnect_source != 0)
    return;
  app->events = kcps_tray_events_new(app->port, on_event, app);
}

static void events_stop(KcpsTrayApp *app)
{
  g_clear_pointer(&app->events, kcps_tray_events_free);
  if (app->reconnect_source != 0)
    g_source_remove(app->reconnect_source);
  app->reconnect_source = 0;
}

/* --- deleting a job ------------------------------------------------------- */

static void delete_done(GObject *source, GAsyncResult *result, gpointer data)
{
  (void)source;
  KcpsTrayApp *app = data;
  g_autoptr(kcps_tray_reply_t) reply = kcps_tray_call_finish(result);
  if (reply->status != 204)
    g_warning("kcpsd did not delete the job (HTTP %ld)", reply->status);
  app->deletes_done++;
  kcps__tray_refresh(app);
  g_application_release(G_APPLICATION(app));
}

/* Deletes job id at kcpsd (the confirmation was given). */
void kcps__tray_delete_job(KcpsTrayApp *app, const char *id)
{
  g_autofree char *escaped = g_uri_escape_string(id, NULL, FALSE);
  g_autofree char *path = g_strconcat("/v1/jobs/", escaped, NULL);
  g_application_hold(G_APPLICATION(app));
  kcps_tray_call_async(app->port, "DELETE", path, NULL, NULL, delete_done, app);
}

/* --- what is shown ------------------------------------------------------- */

static GVariant *visible_windows(KcpsTrayApp *app)
{
  GVariantBuilder names;
  g_variant_builder_init(&names, G_VARIANT_TYPE_STRING_ARRAY);
  for (GList *l = gtk_application_get_windows(GTK_APPLICATION(app)); l != NULL; l = l->next) {
    const char *name = g_object_get_data(l->data, "kcps-name");
    if (name != NULL && gtk_widget_get_visible(l->data))
      g_variant_builder_add(&names, "s", name);
  }
  return g_variant_builder_end(&names);
}

/* "name=title" of every window made so far (the test of the languages). */
static GVariant *window_titles(KcpsTrayApp *app)
{
  GVariantBuilder titles;
  g_variant_builder_init(&titles, G_VARIANT_TYPE_STRING_ARRAY);
  for (GList *l = gtk_application_get_windows(GTK_APPLICATION(app)); l != NULL; l = l->next) {
    const char *name = g_object_get_data(l->data, "kcps-name");
    if (name != NULL) {
      const char *title = gtk_window_get_title(l->data);
      g_autofree char *item = g_strdup_printf("%s=%s", name, title != NULL ? title : "");
      g_variant_builder_add(&titles, "s", item);
    }
  }
  return g_variant_builder_end(&titles);
}

static GVariant *job_names(KcpsTrayApp *app)
{
  GVariantBuilder names;
  g_variant_builder_init(&names, G_VARIANT_TYPE_STRING_ARRAY);
  guint n = g_list_model_get_n_items(G_LIST_MODEL(app->jobs));
  for (guint i = 0; i < n; i++) {
    g_autoptr(KcpsTrayJob) job = g_list_model_get_item(G_LIST_MODEL(app->jobs), i);
    g_variant_builder_add(&names, "s", kcps_tray_job_get_name(job));
  }
  return g_variant_builder_end(&names);
}

static GVariant *state_property(KcpsTrayApp *app, const char *name)
{
  kcps_tray_icon_state_t icon =
    kcps_tray_icon_state_jobs(&app->status, app->waiting, app->uploading);
  if (strcmp(name, "Windows") == 0)
    return visible_windows(app);
  if (strcmp(name, "LoggedIn") == 0)
    return g_variant_new_boolean(app->status.logged_in);
  if (strcmp(name, "Email") == 0)
    return g_variant_new_string(app->status.email != NULL ? app->status.email : "");
  if (strcmp(name, "JobNames") == 0)
    return job_names(app);
  if (strcmp(name, "IconState") == 0)
    return g_variant_new_string(kcps_tray_icon_state_id(icon));
  if (strcmp(name, "TrayHost") == 0)
    return g_variant_new_boolean(app->has_host);
  if (strcmp(name, "LoginMessage") == 0)
    return g_variant_new_string(app->login_message != NULL ? app->login_message : "");
  if (strcmp(name, "LoginAttempts") == 0)
    return g_variant_new_uint32(app->login_attempts);
  if (strcmp(name, "Busy") == 0)
    return g_variant_new_boolean(app->refreshing || app->login_busy);
  if (strcmp(name, "Titles") == 0)
    return window_titles(app);
  if (strcmp(name, "NoticesSent") == 0)
    return g_variant_new_uint32(app->notices_sent);
  if (strcmp(name, "EventsReady") == 0)
    return g_variant_new_uint32(app->events_readies);
  if (strcmp(name, "DeletesDone") == 0)
    return g_variant_new_uint32(app->deletes_done);
  if (strcmp(name, "DeleteAsked") == 0)
    return g_variant_new_boolean(app->delete_dialog != NULL);
  if (strcmp(name, "SpoolChoice") == 0)
    return g_variant_new_string(kcps__tray_settings_choice(app));
  if (strcmp(name, "LoginEmailField") == 0)
    return g_variant_new_string(kcps__tray_login_email_field(app));
  if (strcmp(name, "QuotaLine") == 0) {
    g_autofree char *line = kcps_tray_quota_line(&app->status);
    return g_variant_new_string(line != NULL ? line : "");
  }
  return NULL;
}

static const char state_xml[] =
  "<node><interface name='" STATE_IFACE "'>"
  " <property name='Windows' type='as' access='read'/>"
  " <property name='LoggedIn' type='b' access='read'/>"
  " <property name='Email' type='s' access='read'/>"
  " <property name='JobNames' type='as' access='read'/>"
  " <property name='IconState' type='s' access='read'/>"
  " <property name='TrayHost' type='b' access='read'/>"
  " <property name='LoginMessage' type='s' access='read'/>"
  " <property name='LoginAttempts' type='u' access='read'/>"
  " <property name='Busy' type='b' access='read'/>"
  " <property name='Titles' type='as' access='read'/>"
  " <property name='NoticesSent' type='u' access='read'/>"
  " <property name='EventsReady' type='u' access='read'/>"
  " <property name='DeletesDone' type='u' access='read'/>"
  " <property name='DeleteAsked' type='b' access='read'/>"
  " <property name='QuotaLine' type='s' access='read'/>"
  " <property name='LoginEmailField' type='s' access='read'/>"
  " <property name='SpoolChoice' type='s' access='read'/>"
  "</interface></node>";

static GVariant *state_get_property(GDBusConnection *connection, const char *sender,
                                    const char *path, const char *interface, const char *name,
                                    GError **error, gpointer data)
{
  (void)connection, (void)sender, (void)path, (void)interface;
  GVariant *value = state_property(data, name);
  if (value == NULL)
    g_set_error(error, G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_PROPERTY, "no property %s", name);
  return value;
}

/* Tells the test hooks' listeners every property again (they are few). */
static void emit_state(KcpsTrayApp *app)
{
  GDBusConnection *connection = g_application_get_dbus_connection(G_APPLICATION(app));
  if (app->state_registration == 0 || connection == NULL)
    return;
  GVariantBuilder changed;
  g_variant_builder_init(&changed, G_VARIANT_TYPE_VARDICT);
  GDBusInterfaceInfo *iface = app->state_info->interfaces[0];
  for (guint i = 0; iface->properties[i] != NULL; i++)
    g_variant_builder_add(&changed, "{sv}", iface->properties[i]->name,
                          state_property(app, iface->properties[i]->name));
  g_dbus_connection_emit_signal(connection, NULL, STATE_PATH, "org.freedesktop.DBus.Properties",
                                "PropertiesChanged",
                                g_variant_new("(sa{sv}as)", STATE_IFACE, &changed, NULL), NULL);
}

void kcps__tray_state_changed(KcpsTrayApp *app)
{
  guint uploading = app->uploading;
  kcps_tray_icon_state_t icon = kcps_tray_icon_state_jobs(&app->status, app->waiting, uploading);
  g_autofree char *who = kcps_tray_who_line(&app->status);
  g_autofree char *tooltip = kcps_tray_tooltip_jobs(&app->status, app->waiting, uploading);
  g_autofree char *quota = kcps_tray_quota_line(&app->status);
  /* Before kcpsd's first answer the icon keeps its neutral look. */
  if (app->sni != NULL && app->status_known)
    kcps_tray_sni_update(app->sni, kcps_tray_icon_name(icon), kcps_tray_icon_sni_status(icon),
                         tooltip, who, quota, app->status.logged_in);
  kcps__tray_windows_update(app);
  emit_state(app);
}

/* --- actions ------------------------------------------------------------- */

static void present(KcpsTrayApp *app, GtkWindow *window)
{
  gtk_window_present(window);
  kcps__tray_state_changed(app);
}

static void on_jobs(GSimpleAction *action, GVariant *param, gpointer data)
{
  (void)action, (void)param;
  KcpsTrayApp *app = data;
  present(app, kcps__tray_jobs_window(app));
  kcps__tray_refresh(app);
}

static void on_login(GSimpleAction *action, GVariant *param, gpointer data)
{
  (void)action, (void)param;
  KcpsTrayApp *app = data;
  present(app, kcps__tray_login_window(app));
}

static void on_settings(GSimpleAction *action, GVariant *param, gpointer data)
{
  (void)action, (void)param;
  KcpsTrayApp *app = data;
  present(app, kcps__tray_settings_window(app));
  kcps__tray_refresh(app);
}

static void on_logout(GSimpleAction *action, GVariant *param, gpointer data)
{
  (void)action, (void)param;
  KcpsTrayApp *app = data;
  g_application_hold(G_APPLICATION(app));
  kcps_tray_call_async(app->port, "POST", "/v1/logout", NULL, NULL, logout_done, app);
}

static void on_refresh(GSimpleAction *action, GVariant *param, gpointer data)
{
  (void)action, (void)param;
  kcps__tray_refresh(data);
}

/* The notifications switch (settings window): saved at once. */
static void on_notifications(GSimpleAction *action, GVariant *state, gpointer data)
{
  KcpsTrayApp *app = data;
  app->notify = g_variant_get_boolean(state);
  g_simple_action_set_state(action, state);
  settings_save(app);
  if (!app->notify)
    g_info("notifications off");
}

/* Delete… of a job row (its id): asks first. */
static void on_delete_job(GSimpleAction *action, GVariant *param, gpointer data)
{
  (void)action;
  KcpsTrayApp *app = data;
  const char *id = g_variant_get_string(param, NULL);
  const char *name = NULL;
  guint n = g_list_model_get_n_items(G_LIST_MODEL(app->jobs));
  for (guint i = 0; i < n && name == NULL; i++) {
    g_autoptr(KcpsTrayJob) job = g_list_model_get_item(G_LIST_MODEL(app->jobs), i);
    if (g_strcmp0(kcps_tray_job_get_id(job), id) == 0)
      name = kcps_tray_job_get_name(job);
  }
  if (name == NULL) {
    g_info("delete: job %s is no longer listed", id);
    return;
  }
  kcps__tray_ask_delete(app, id, name);
}

/* Test hook: answers the open confirmation as a person would (Delete). */
static void on_confirm_delete(GSimpleAction *action, GVariant *param, gpointer data)
{
  (void)action, (void)param;
  KcpsTrayApp *app = data;
  if (app->delete_dialog != NULL)
    gtk_dialog_response(GTK_DIALOG(app->delete_dialog), GTK_RESPONSE_ACCEPT);
}

static void on_quit(GSimpleAction *action, GVariant *param, gpointer data)
{
  (void)action, (void)param;
  g_application_quit(G_APPLICATION(data));
}

/* Test hook: the login window, filled and submitted. */
static void on_login_with(GSimpleAction *action, GVariant *param, gpointer data)
{
  (void)action;
  KcpsTrayApp *app = data;
  const char *email = NULL, *password = NULL;
  g_variant_get(param, "(&s&s)", &email, &password);
  present(app, kcps__tray_login_window(app));
  kcps__tray_login_window_submit(app, email, password);
}

/* Test hook: a window as a PNG in the test folder. */
static void on_screenshot(GSimpleAction *action, GVariant *param, gpointer data)
{
  (void)action;
  KcpsTrayApp *app = data;
  const char *name = g_variant_get_string(param, NULL);
  for (GList *l = gtk_application_get_windows(GTK_APPLICATION(app)); l != NULL; l = l->next) {
    if (g_strcmp0(g_object_get_data(l->data, "kcps-name"), name) == 0) {
      g_autofree char *file = g_strdup_printf("%s.png", name);
      g_autofree char *path = g_build_filename(app->test_dir, file, NULL);
      kcps__tray_window_screenshot(l->data, path);
      return;
    }
  }
  g_warning("screenshot: no window named %s", name);
}

/* --- the icon's callbacks ------------------------------------------------ */

static void sni_menu_action(const char *action, void *data)
{
  g_action_group_activate_action(G_ACTION_GROUP(data), action, NULL);
}

static void sni_menu_opening(void *data)
{
  kcps__tray_session_activity(data); /* the user is there */
  kcps__tray_refresh(data);
}

static void sni_activate(void *data)
{
  g_action_group_activate_action(G_ACTION_GROUP(data), "jobs", NULL);
}

static void sni_host_changed(bool has_host, void *data)
{
  KcpsTrayApp *app = data;
  app->has_host = has_host;
  if (has_host) {
    g_info("the icon is in the tray");
  } else {
    /* No tray: the main window is the way in, and says why it is open. */
    g_message("no system tray (org.kde.StatusNotifierWatcher) found: opening the main window");
    present(app, kcps__tray_jobs_window(app));
  }
  kcps__tray_state_changed(app);
}

/* --- the application ----------------------------------------------------- */

static gboolean kcps_tray_app_dbus_register(GApplication *application,
                                            GDBusConnection *connection, const char *path,
                                            GError **error)
{
  KcpsTrayApp *app = KCPS_TRAY_APP(application);
  if (!G_APPLICATION_CLASS(kcps_tray_app_parent_class)->dbus_register(application, connection,
                                                                       path, error))
    return FALSE;
  if (app->test_dir == NULL)
    return TRUE;
  /* Test hooks only: the state a test reads back. */
  app->state_info = g_dbus_node_info_new_for_xml(state_xml, error);
  if (app->state_info == NULL)
    return FALSE;
  static const GDBusInterfaceVTable vtable = {NULL, state_get_property, NULL, {0}};
  app->state_registration = g_dbus_connection_register_object(
    connection, STATE_PATH, app->state_info->interfaces[0], &vtable, app, NULL, error);
  return app->state_registration != 0;
}

static void kcps_tray_app_dbus_unregister(GApplication *application,
                                          GDBusConnection *connection, const char *path)
{
  KcpsTrayApp *app = KCPS_TRAY_APP(application);
  if (app->state_registration != 0)
    g_dbus_connection_unregister_object(connection, app->state_registration);
  app->state_registration = 0;
  G_APPLICATION_CLASS(kcps_tray_app_parent_class)->dbus_unregister(application, connection,
                                                                    path);
}

static void kcps_tray_app_startup(GApplication *application)
{
  KcpsTrayApp *app = KCPS_TRAY_APP(application);
  G_APPLICATION_CLASS(kcps_tray_app_parent_class)->startup(application);

  static const GActionEntry actions[] = {
    {"jobs", on_jobs, NULL, NULL, NULL, {0}},
    {"login", on_login, NULL, NULL, NULL, {0}},
    {"settings", on_settings, NULL, NULL, NULL, {0}},
    {"logout", on_logout, NULL, NULL, NULL, {0}},
    {"refresh", on_refresh, NULL, NULL, NULL, {0}},
    {"delete-job", on_delete_job, "s", NULL, NULL, {0}},
    {"quit", on_quit, NULL, NULL, NULL, {0}},
  };
  g_action_map_add_action_entries(G_ACTION_MAP(app), actions, G_N_ELEMENTS(actions), app);
  /* Our icons for the windows too (the window manager's and the switcher's). */
  GdkDisplay *display = gdk_display_get_default();
  if (display != NULL) {
    gtk_icon_theme_add_search_path(gtk_icon_theme_get_for_display(display), kcps_tray_icon_dir());
    gtk_window_set_default_icon_name("kcps-tray-idle");
  }
  kcps__tray_jobs_startup(app);
  settings_load(app);
  g_autoptr(GSimpleAction) notifications =
    g_simple_action_new_stateful("notifications", NULL, g_variant_new_boolean(app->notify));
  g_signal_connect(notifications, "change-state", G_CALLBACK(on_notifications), app);
  g_action_map_add_action(G_ACTION_MAP(app), G_ACTION(notifications));
  kcps__tray_settings_startup(app);
  if (app->test_dir != NULL) {
    static const GActionEntry test_actions[] = {
      {"login-with", on_login_with, "(ss)", NULL, NULL, {0}},
      {"screenshot", on_screenshot, "s", NULL, NULL, {0}},
      {"confirm-delete", on_confirm_delete, NULL, NULL, NULL, {0}},
    };
    g_action_map_add_action_entries(G_ACTION_MAP(app), test_actions,
                                    G_N_ELEMENTS(test_actions), app);
  }
  static const char *const quit_accels[] = {"<Control>q", NULL};
  static const char *const refresh_accels[] = {"F5", "<Control>r", NULL};
  gtk_application_set_accels_for_action(GTK_APPLICATION(app), "app.quit", quit_accels);
  gtk_application_set_accels_for_action(GTK_APPLICATION(app), "app.refresh", refresh_accels);

  /* The app lives as long as its icon (or its main window). */
  g_application_hold(application);

  static const kcps_tray_sni_callbacks_t callbacks = {
    .menu_action = sni_menu_action,
    .menu_opening = sni_menu_opening,
    .activate = sni_activate,
    .host_changed = sni_host_changed,
  };
  g_autoptr(GError) error = NULL;
  GDBusConnection *connection = g_application_get_dbus_connection(application);
  if (connection != NULL)
    app->sni = kcps_tray_sni_new(connection, &callbacks, app, &error);
  if (app->sni == NULL) {
    g_warning("no tray icon: %s", error != NULL ? error->message : "no session bus");
    sni_host_changed(false, app);
  }
  kcps__tray_session_startup(app);
  kcps__tray_refresh(app);
  events_start(app);
}

static void kcps_tray_app_activate(GApplication *application)
{
  KcpsTrayApp *app = KCPS_TRAY_APP(application);
  /* The first start shows the icon only; starting again opens the jobs. */
  if (!app->activated) {
    app->activated = true;
    return;
  }
  g_action_group_activate_action(G_ACTION_GROUP(app), "jobs", NULL);
}

static void kcps_tray_app_shutdown(GApplication *application)
{
  KcpsTrayApp *app = KCPS_TRAY_APP(application);
  events_stop(app);
  g_clear_pointer(&app->sni, kcps_tray_sni_free);
  G_APPLICATION_CLASS(kcps_tray_app_parent_class)->shutdown(application);
}

static gint kcps_tray_app_handle_local_options(GApplication *application, GVariantDict *options)
{
  KcpsTrayApp *app = KCPS_TRAY_APP(application);
  gint32 port = 0;
  if (g_variant_dict_lookup(options, "local-port", "i", &port)) {
    if (port < 1 || port > 65535) {
      g_printerr("kcps-tray: --local-port must be 1 to 65535\n");
      return 2;
    }
    app->port = port;
  }
  const char *dir = NULL;
  if (g_variant_dict_lookup(options, "test-dir", "^&ay", &dir)) {
    app->test_dir = g_canonicalize_filename(dir, NULL);
    if (g_mkdir_with_parents(app->test_dir, 0700) != 0) {
      g_printerr("kcps-tray: cannot make %s\n", app->test_dir);
      return 2;
    }
  }
  return -1;
}

static void kcps_tray_app_finalize(GObject *object)
{
  KcpsTrayApp *app = KCPS_TRAY_APP(object);
  kcps_tray_status_clear(&app->status);
  g_clear_object(&app->jobs);
  g_clear_pointer(&app->last_jobs, g_ptr_array_unref);
  g_clear_pointer(&app->warned, g_hash_table_unref);
  g_clear_pointer(&app->state_info, g_dbus_node_info_unref);
  g_free(app->login_message);
  g_free(app->test_dir);
  G_OBJECT_CLASS(kcps_tray_app_parent_class)->finalize(object);
}

static void kcps_tray_app_class_init(KcpsTrayAppClass *klass)
{
  GApplicationClass *app_class = G_APPLICATION_CLASS(klass);
  app_class->startup = kcps_tray_app_startup;
  app_class->activate = kcps_tray_app_activate;
  app_class->shutdown = kcps_tray_app_shutdown;
  app_class->handle_local_options = kcps_tray_app_handle_local_options;
  app_class->dbus_register = kcps_tray_app_dbus_register;
  app_class->dbus_unregister = kcps_tray_app_dbus_unregister;
  G_OBJECT_CLASS(klass)->finalize = kcps_tray_app_finalize;
}

static void kcps_tray_app_init(KcpsTrayApp *app)
{
  app->jobs = g_list_store_new(KCPS_TYPE_TRAY_JOB);
  app->warned = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  app->port = DEFAULT_PORT;
  const char *env = g_getenv("KCPS_LOCAL_PORT");
  gint64 port = env != NULL ? g_ascii_strtoll(env, NULL, 10) : 0;
  if (port >= 1 && port <= 65535)
    app->port = (int)port;

  static const GOptionEntry options[] = {
    {"local-port", 0, 0, G_OPTION_ARG_INT, NULL,
     N_("kcpsd's local API port (default: $KCPS_LOCAL_PORT, else 5572)"), N_("PORT")},
    {"test-dir", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_FILENAME, NULL,
     "turn on the test hooks (state on D-Bus, login-with, screenshots into DIR)", "DIR"},
    {NULL, 0, 0, 0, NULL, NULL, NULL},
  };
  g_application_add_main_option_entries(G_APPLICATION(app), options);
}

KcpsTrayApp *kcps_tray_app_new(void)
{
  return g_object_new(KCPS_TYPE_TRAY_APP, "application-id", "org.kcps.Tray", "flags",
                      G_APPLICATION_DEFAULT_FLAGS, NULL);
}
