/* The tray's windows: what they share, and the settings window (jobs:
 * tray-jobs.c, login: tray-login.c). Built in code; every control has an accessible name
 * and a keyboard path (mnemonics, default buttons, Escape closes). */
#define G_LOG_DOMAIN "kcps-tray"

#include "ui/tray-app-private.h"

#include <glib/gi18n-lib.h>
#include <glib/gstdio.h>

#include "ui/tray-job.h"
#include "ui/tray-session.h"

/* Widgets of a window that updates need, kept on the window. */
typedef struct settings_ui_s {
  GtkWidget *server;
  GtkWidget *user;
  GtkWidget *spool_mode;
  GtkWidget *idle;      /* automatic logout, minutes (0: the organization's) */
  GtkWidget *idle_note; /* the organization's limit */
} settings_ui_t;

void kcps__tray_set_label(GtkWidget *widget, const char *label)
{
  gtk_accessible_update_property(GTK_ACCESSIBLE(widget), GTK_ACCESSIBLE_PROPERTY_LABEL, label,
                                 -1);
}

static void on_visible(GObject *window, GParamSpec *pspec, gpointer data)
{
  (void)window, (void)pspec;
  kcps__tray_state_changed(data);
}

static gboolean on_any_event(GtkEventControllerLegacy *controller, GdkEvent *event,
                             gpointer data)
{
  (void)controller, (void)event;
  kcps__tray_session_activity(data);
  return GDK_EVENT_PROPAGATE;
}

/* A window of the app, hidden (not destroyed) on close, named for the tests
 * and the state. Escape closes it. */
GtkWindow *kcps__tray_new_window(KcpsTrayApp *app, const char *name, const char *title)
{
  GtkWidget *window = gtk_application_window_new(GTK_APPLICATION(app));
  gtk_window_set_title(GTK_WINDOW(window), title);
  gtk_window_set_hide_on_close(GTK_WINDOW(window), TRUE);
  g_object_set_data(G_OBJECT(window), "kcps-name", (gpointer)name);
  g_signal_connect(window, "notify::visible", G_CALLBACK(on_visible), app);
  /* Any input in a window counts as the user's activity (idle logout). */
  GtkEventController *activity = gtk_event_controller_legacy_new();
  g_signal_connect(activity, "event", G_CALLBACK(on_any_event), app);
  gtk_widget_add_controller(window, activity);
  GtkEventController *keys = gtk_shortcut_controller_new();
  gtk_shortcut_controller_add_shortcut(
    GTK_SHORTCUT_CONTROLLER(keys),
    gtk_shortcut_new(gtk_keyval_trigger_new(GDK_KEY_Escape, 0),
                     gtk_named_action_new("window.close")));
  gtk_widget_add_controller(window, keys);
  return GTK_WINDOW(window);
}

/* A text label with a mnemonic for widget, which it names to screen readers. */
GtkWidget *kcps__tray_label_for(const char *text, GtkWidget *widget)
{
  GtkWidget *label = gtk_label_new_with_mnemonic(text);
  gtk_label_set_xalign(GTK_LABEL(label), 0);
  gtk_label_set_mnemonic_widget(GTK_LABEL(label), widget);
  gtk_accessible_update_relation(GTK_ACCESSIBLE(widget), GTK_ACCESSIBLE_RELATION_LABELLED_BY,
                                 label, NULL, -1);
  return label;
}

/* --- settings ------------------------------------------------------------ */

/* A read-only row: a label and a value that can be selected and copied. */
static GtkWidget *settings_row(GtkGrid *grid, int row, const char *name)
{
  GtkWidget *value = gtk_label_new(NULL);
  gtk_label_set_xalign(GTK_LABEL(value), 0);
  gtk_label_set_selectable(GTK_LABEL(value), TRUE);
  gtk_label_set_wrap(GTK_LABEL(value), TRUE);
  GtkWidget *label = kcps__tray_label_for(name, value);
  gtk_widget_add_css_class(label, "dim-label");
  gtk_grid_attach(grid, label, 0, row, 1, 1);
  gtk_grid_attach(grid, value, 1, row, 1, 1);
  return value;
}

GtkWindow *kcps__tray_settings_window(KcpsTrayApp *app)
{
  if (app->settings_window != NULL)
    return app->settings_window;
  GtkWindow *window = kcps__tray_new_window(app, "settings", _("KCPS Settings"));
  gtk_window_set_default_size(window, 420, -1);
  settings_ui_t *ui = g_new0(settings_ui_t, 1);
  g_object_set_data_full(G_OBJECT(window), "ui", ui, g_free);
  GtkWidget *grid = gtk_grid_new();
  gtk_grid_set_row_spacing(GTK_GRID(grid), 6);
  gtk_grid_set_column_spacing(GTK_GRID(grid), 12);
  gtk_widget_set_margin_start(grid, 24);
  gtk_widget_set_margin_end(grid, 24);
  gtk_widget_set_margin_top(grid, 24);
  gtk_widget_set_margin_bottom(grid, 24);
  ui->server = settings_row(GTK_GRID(grid), 0, _("_Server"));
  ui->user = settings_row(GTK_GRID(grid), 1, _("_Computer account"));
  ui->spool_mode = settings_row(GTK_GRID(grid), 2, _("Spool _mode"));
  /* The tray's own switch (tray.ini), through the app's stateful action. */
  GtkWidget *notify = gtk_switch_new();
  gtk_actionable_set_action_name(GTK_ACTIONABLE(notify), "app.notifications");
  gtk_widget_set_halign(notify, GTK_ALIGN_START);
  GtkWidget *notify_label = kcps__tray_label_for(_("_Notifications"), notify);
  gtk_widget_add_css_class(notify_label, "dim-label");
  gtk_accessible_update_property(GTK_ACCESSIBLE(notify), GTK_ACCESSIBLE_PROPERTY_DESCRIPTION,
                                 _("Desktop notifications when a job arrives, prints, fails "
                                   "or is about to expire"),
                                 -1);
  gtk_grid_attach(GTK_GRID(grid), notify_label, 0, 3, 1, 1);
  gtk_grid_attach(GTK_GRID(grid), notify, 1, 3, 1, 1);
  /* Automatic logout: the user's own time, within the organization's. */
  ui->idle = gtk_spin_button_new_with_range(0, 43200, 1);
  gtk_widget_set_halign(ui->idle, GTK_ALIGN_START);
  gtk_spin_button_set_value(GTK_SPIN_BUTTON(ui->idle), kcps__tray_session_idle_user(app));
  g_signal_connect_swapped(ui->idle, "value-changed", G_CALLBACK(kcps__tray_session_idle_changed),
                           app);
  GtkWidget *idle_label = kcps__tray_label_for(_("_Log out after idle minutes"), ui->idle);
  gtk_widget_add_css_class(idle_label, "dim-label");
  gtk_grid_attach(GTK_GRID(grid), idle_label, 0, 4, 1, 1);
  gtk_grid_attach(GTK_GRID(grid), ui->idle, 1, 4, 1, 1);
  ui->idle_note = gtk_label_new(NULL);
  gtk_label_set_wrap(GTK_LABEL(ui->idle_note), TRUE);
  gtk_label_set_xalign(GTK_LABEL(ui->idle_note), 0);
  gtk_widget_add_css_class(ui->idle_note, "dim-label");
  gtk_accessible_update_relation(GTK_ACCESSIBLE(ui->idle), GTK_ACCESSIBLE_RELATION_DESCRIBED_BY,
                                 ui->idle_note, NULL, -1);
  gtk_grid_attach(GTK_GRID(grid), ui->idle_note, 1, 5, 1, 1);
  GtkWidget *note = gtk_label_new(_("The other settings are shown as the KCPS service reports "
                                    "them; changing them here comes in a later version."));
  gtk_label_set_wrap(GTK_LABEL(note), TRUE);
  gtk_label_set_xalign(GTK_LABEL(note), 0);
  gtk_widget_add_css_class(note, "dim-label");
  gtk_grid_attach(GTK_GRID(grid), note, 0, 6, 2, 1);
  GtkWidget *close = gtk_button_new_with_mnemonic(_("_Close"));
  gtk_actionable_set_action_name(GTK_ACTIONABLE(close), "window.close");
  gtk_widget_set_halign(close, GTK_ALIGN_END);
  gtk_grid_attach(GTK_GRID(grid), close, 1, 7, 1, 1);
  gtk_window_set_child(window, grid);
  gtk_window_set_default_widget(window, close);
  /* Not a selectable value: that would start with all its text selected. */
  gtk_window_set_focus(window, close);
  app->settings_window = window;
  kcps__tray_windows_update(app);
  return window;
}

static void settings_update(KcpsTrayApp *app)
{
  if (app->settings_window == NULL)
    return;
  settings_ui_t *ui = g_object_get_data(G_OBJECT(app->settings_window), "ui");
  const kcps_tray_status_t *status = &app->status;
  const char *unknown = status->reachable ? _("Not reported by the KCPS service")
                                          : _("The KCPS service is not running");
  gtk_label_set_text(GTK_LABEL(ui->server), status->server != NULL ? status->server : unknown);
  gtk_label_set_text(GTK_LABEL(ui->user), status->user != NULL ? status->user : unknown);
  gtk_label_set_text(GTK_LABEL(ui->spool_mode),
                     status->spool_mode != NULL ? status->spool_mode : unknown);
  guint org = kcps__tray_session_idle_org(app);
  if (org > 0) {
    gtk_spin_button_set_range(GTK_SPIN_BUTTON(ui->idle), 0, org);
    g_autofree char *text = g_strdup_printf(
      ngettext("0: your organization's limit, %u minute", "0: your organization's limit, "
               "%u minutes", org), org);
    gtk_label_set_text(GTK_LABEL(ui->idle_note), text);
  } else {
    gtk_label_set_text(GTK_LABEL(ui->idle_note),
                       _("0: your organization's limit (known after you log in here)"));
  }
}

void kcps__tray_windows_update(KcpsTrayApp *app)
{
  kcps__tray_jobs_update(app);
  kcps__tray_login_update(app);
  settings_update(app);
}

/* --- screenshots (test hook) --------------------------------------------- */

static gboolean snapshot_tick(GtkWidget *widget, GdkFrameClock *clock, gpointer data)
{
  (void)clock;
  const char *path = data;
  int width = gtk_widget_get_width(widget), height = gtk_widget_get_height(widget);
  GskRenderer *renderer = gtk_native_get_renderer(GTK_NATIVE(widget));
  /* Not laid out yet: wait for the next frame. */
  if (width <= 0 || height <= 0 || renderer == NULL)
    return G_SOURCE_CONTINUE;
  g_autoptr(GdkPaintable) paintable = gtk_widget_paintable_new(widget);
  GtkSnapshot *snapshot = gtk_snapshot_new();
  gdk_paintable_snapshot(paintable, snapshot, width, height);
  g_autoptr(GskRenderNode) node = gtk_snapshot_free_to_node(snapshot);
  if (node == NULL)
    return G_SOURCE_CONTINUE;
  g_autoptr(GdkTexture) texture =
    gsk_renderer_render_texture(renderer, node, &GRAPHENE_RECT_INIT(0, 0, width, height));
  /* Written beside, then renamed: a reader never sees half a file. */
  g_autofree char *tmp = g_strconcat(path, ".tmp", NULL);
  if (!gdk_texture_save_to_png(texture, tmp) || g_rename(tmp, path) != 0)
    g_warning("cannot save the screenshot %s", path);
  return G_SOURCE_REMOVE;
}

void kcps__tray_window_screenshot(GtkWindow *window, const char *path)
{
  gtk_widget_add_tick_callback(GTK_WIDGET(window), snapshot_tick, g_strdup(path), g_free);
}
