/* The tray's windows: what they share, and the settings window (jobs:
 * tray-jobs.c, login: tray-login.c). Built in code; every control has an accessible name
 * and a keyboard path (mnemonics, default buttons, Escape closes). */
#define G_LOG_DOMAIN "kcps-tray"

#include "ui/tray-app-private.h"

#include <glib/gi18n-lib.h>
#include <glib/gstdio.h>

#include "ui/tray-client.h"
#include "ui/tray-job.h"
#include "ui/tray-session.h"

/* Widgets of a window that updates need, kept on the window. */
typedef struct settings_ui_s {
  GtkWidget *server;
  GtkWidget *user;
  GtkWidget *spool_mode;    /* GtkDropDown: organization, local, cloud */
  GtkStringList *spool_choices;
  GtkWidget *spool_note;    /* kcpsd's answer in words (the mode in effect, or why not) */
  GtkWidget *printer;       /* GtkDropDown: None, then the printers */
  GtkStringList *printer_names;
  bool quiet;               /* the controls are being set: no PUT, no save */
  bool picking;             /* the printer dropdown is saving its choice */
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

void kcps__tray_name_by_label(GtkWidget *button)
{
  /* GtkButton puts its raw label in the accessible label, and the name
   * adds the text of the label inside: without it, the text alone. */
  gtk_accessible_reset_property(GTK_ACCESSIBLE(button), GTK_ACCESSIBLE_PROPERTY_LABEL);
}

GtkWidget *kcps__tray_mnemonic_button(const char *mnemonic)
{
  GtkWidget *button = gtk_button_new_with_mnemonic(mnemonic);
  kcps__tray_name_by_label(button);
  return button;
}

/* A text label with a mnemonic for widget, which it names to screen readers. */
GtkWidget *kcps__tray_label_for(const char *text, GtkWidget *widget)
{
  GtkWidget *label = gtk_label_new_with_mnemonic(text);
  gtk_label_set_xalign(GTK_LABEL(label), 0);
  gtk_label_set_mnemonic_widget(GTK_LABEL(label), widget);
  gtk_accessible_update_relation(GTK_ACCESSIBLE(widget), GTK_ACCESSIBLE_RELATION_LABELLED_BY,
                                 label, NULL, -1);
  /* A GtkDropDown takes the focus in the toggle button inside it, which
   * GTK 4.8 leaves nameless ("GtkToggleButton" to a screen reader): the
   * label names that button too. */
  GtkWidget *inner = GTK_IS_DROP_DOWN(widget) ? gtk_widget_get_first_child(widget) : NULL;
  if (inner != NULL && GTK_IS_TOGGLE_BUTTON(inner))
    gtk_accessible_update_relation(GTK_ACCESSIBLE(inner), GTK_ACCESSIBLE_RELATION_LABELLED_BY,
                                   label, NULL, -1);
  return label;
}

/* --- settings ------------------------------------------------------------ */

/* kcpsd's settings as last read, the last failure in words, the printers. */
typedef struct settings_state_s {
  kcps_tray_settings_t settings;
  bool known;
  char *message;
  GPtrArray *printers; /* kcps_tray_printer_t, or NULL */
} settings_state_t;

static void settings_state_free(gpointer data)
{
  settings_state_t *st = data;
  kcps_tray_settings_clear(&st->settings);
  g_free(st->message);
  g_clear_pointer(&st->printers, g_ptr_array_unref);
  g_free(st);
}

static settings_state_t *settings_state(KcpsTrayApp *app)
{
  settings_state_t *st = g_object_get_data(G_OBJECT(app), "kcps-settings");
  if (st == NULL) {
    st = g_new0(settings_state_t, 1);
    g_object_set_data_full(G_OBJECT(app), "kcps-settings", st, settings_state_free);
  }
  return st;
}

static void settings_ui_free(gpointer data)
{
  settings_ui_t *ui = data;
  g_clear_object(&ui->spool_choices);
  g_clear_object(&ui->printer_names);
  g_free(ui);
}

/* The spool mode and printer controls from the state (quietly). */
static void settings_controls_update(KcpsTrayApp *app, settings_ui_t *ui)
{
  settings_state_t *st = settings_state(app);
  ui->quiet = true;
  const kcps_tray_settings_t *settings = st->known ? &st->settings : NULL;
  g_autofree char *org = kcps_tray_spool_choice_label(KCPS_TRAY_SPOOL_ORGANIZATION, settings);
  const char *const first[] = {org, NULL};
  gtk_string_list_splice(ui->spool_choices, 0, 1, first);
  gtk_drop_down_set_selected(GTK_DROP_DOWN(ui->spool_mode), kcps_tray_spool_choice(settings));
  gtk_widget_set_sensitive(ui->spool_mode, st->known);
  if (st->message != NULL) {
    gtk_label_set_text(GTK_LABEL(ui->spool_note), st->message);
  } else if (!st->known) {
    gtk_label_set_text(GTK_LABEL(ui->spool_note), app->status.reachable
                                                    ? _("Not reported by the KCPS service")
                                                    : _("The KCPS service is not running"));
  } else {
    gtk_label_set_text(GTK_LABEL(ui->spool_note),
                       g_strcmp0(st->settings.effective_spool_mode, "cloud") == 0
                         ? _("New jobs are kept in the cloud, ready to print at any printer.")
                         : _("New jobs are kept on this computer until you print them."));
  }
  /* None, the printers kcpsd found, and the saved one even when not found now. */
  g_autofree char *saved = kcps_tray_ini_get("default_printer");
  guint n = g_list_model_get_n_items(G_LIST_MODEL(ui->printer_names));
  gtk_string_list_splice(ui->printer_names, 0, n, NULL);
  gtk_string_list_append(ui->printer_names, _("None"));
  guint selected = 0;
  for (guint i = 0; st->printers != NULL && i < st->printers->len; i++) {
    const kcps_tray_printer_t *printer = g_ptr_array_index(st->printers, i);
    gtk_string_list_append(ui->printer_names, printer->name);
    if (g_strcmp0(printer->name, saved) == 0)
      selected = i + 1;
  }
  if (saved != NULL && *saved != '\0' && selected == 0) {
    gtk_string_list_append(ui->printer_names, saved);
    selected = g_list_model_get_n_items(G_LIST_MODEL(ui->printer_names)) - 1;
  }
  gtk_drop_down_set_selected(GTK_DROP_DOWN(ui->printer), selected);
  ui->quiet = false;
}

static void settings_show(KcpsTrayApp *app)
{
  /* A hidden window is brought up to date when it opens. */
  if (app->settings_window == NULL || !gtk_widget_get_visible(GTK_WIDGET(app->settings_window)))
    return;
  settings_ui_t *ui = g_object_get_data(G_OBJECT(app->settings_window), "ui");
  if (!ui->picking)
    settings_controls_update(app, ui);
}

/* GET or PUT /v1/settings answered. */
static void settings_done(GObject *source, GAsyncResult *result, gpointer data)
{
  (void)source;
  KcpsTrayApp *app = data;
  g_autoptr(kcps_tray_reply_t) reply = kcps_tray_call_finish(result);
  settings_state_t *st = settings_state(app);
  g_autoptr(GError) error = NULL;
  kcps_tray_settings_t settings;
  if (reply->status == 200 && kcps_tray_settings_parse(reply->body, &settings, &error)) {
    kcps_tray_settings_clear(&st->settings);
    st->settings = settings;
    st->known = true;
  } else if (error != NULL) {
    g_warning("kcpsd's settings are not understood: %s", error->message);
  } else if (reply->status == 0) {
    st->known = false;
  }
  kcps__tray_state_changed(app); /* the window and the test state */
  g_application_release(G_APPLICATION(app));
}

static void put_done(GObject *source, GAsyncResult *result, gpointer data)
{
  KcpsTrayApp *app = data;
  settings_state_t *st = settings_state(app);
  g_autoptr(kcps_tray_reply_t) reply = kcps_tray_call_finish(result);
  g_clear_pointer(&st->message, g_free);
  if (reply->status != 200) {
    g_info("kcpsd did not change the spool mode (HTTP %ld)", reply->status);
    st->message = g_strdup(kcps_tray_settings_message(reply->status));
    /* Show what kcpsd has now. */
    kcps__tray_settings_reload(app);
  }
  (void)source;
  /* A 200 carries the settings as GET does. */
  if (reply->status == 200) {
    kcps_tray_settings_t settings;
    if (kcps_tray_settings_parse(reply->body, &settings, NULL)) {
      kcps_tray_settings_clear(&st->settings);
      st->settings = settings;
      st->known = true;
    }
  }
  kcps__tray_refresh(app); /* the menu's spool mode; the window follows */
  g_application_release(G_APPLICATION(app));
}

static void printers_done(GObject *source, GAsyncResult *result, gpointer data)
{
  (void)source;
  KcpsTrayApp *app = data;
  g_autoptr(kcps_tray_reply_t) reply = kcps_tray_call_finish(result);
  settings_state_t *st = settings_state(app);
  GPtrArray *printers = reply->status == 200 ? kcps_tray_printers_parse(reply->body, NULL)
                                             : NULL;
  g_clear_pointer(&st->printers, g_ptr_array_unref);
  st->printers = printers;
  settings_show(app);
  g_application_release(G_APPLICATION(app));
}

void kcps__tray_settings_reload(KcpsTrayApp *app)
{
  /* Only for the open window: nothing is read while nobody looks. */
  if (app->settings_window == NULL || !gtk_widget_get_visible(GTK_WIDGET(app->settings_window)))
    return;
  g_application_hold(G_APPLICATION(app));
  kcps_tray_call_async(app->port, "GET", "/v1/settings", NULL, NULL, settings_done, app);
  g_application_hold(G_APPLICATION(app));
  kcps_tray_call_async(app->port, "GET", "/v1/printers", NULL, NULL, printers_done, app);
}

const char *kcps__tray_settings_choice(KcpsTrayApp *app)
{
  settings_state_t *st = settings_state(app);
  if (!st->known)
    return "";
  static const char *const ids[] = {"organization", "local", "cloud"};
  return ids[kcps_tray_spool_choice(&st->settings)];
}

/* app.spool-mode s ("" the organization's, "local", "cloud"): PUT /v1/settings. */
static void on_spool_mode(GSimpleAction *action, GVariant *param, gpointer data)
{
  (void)action;
  KcpsTrayApp *app = data;
  const char *mode = g_variant_get_string(param, NULL);
  kcps_tray_spool_choice_t choice = g_strcmp0(mode, "local") == 0   ? KCPS_TRAY_SPOOL_LOCAL
                                    : g_strcmp0(mode, "cloud") == 0 ? KCPS_TRAY_SPOOL_CLOUD
                                                                    : KCPS_TRAY_SPOOL_ORGANIZATION;
  g_autoptr(JsonNode) body = kcps_tray_settings_body(choice);
  g_application_hold(G_APPLICATION(app));
  kcps_tray_call_async(app->port, "PUT", "/v1/settings", body, NULL, put_done, app);
}

/* app.default-printer s (a printer's name, "" none): kept in tray.ini. */
static void on_default_printer(GSimpleAction *action, GVariant *state, gpointer data)
{
  KcpsTrayApp *app = data;
  const char *name = g_variant_get_string(state, NULL);
  g_autoptr(GError) error = NULL;
  if (!kcps_tray_ini_set("default_printer", *name != '\0' ? name : NULL, &error))
    g_warning("the default printer is not saved: %s", error->message);
  g_simple_action_set_state(action, state);
  settings_show(app);
}

void kcps__tray_settings_startup(KcpsTrayApp *app)
{
  static const GActionEntry actions[] = {
    {"spool-mode", on_spool_mode, "s", NULL, NULL, {0}},
  };
  g_action_map_add_action_entries(G_ACTION_MAP(app), actions, G_N_ELEMENTS(actions), app);
  g_autofree char *saved = kcps_tray_ini_get("default_printer");
  g_autoptr(GSimpleAction) printer = g_simple_action_new_stateful(
    "default-printer", NULL, g_variant_new_string(saved != NULL ? saved : ""));
  g_signal_connect(printer, "change-state", G_CALLBACK(on_default_printer), app);
  g_action_map_add_action(G_ACTION_MAP(app), G_ACTION(printer));
}

static void spool_picked(GObject *drop, GParamSpec *pspec, gpointer data)
{
  (void)pspec;
  KcpsTrayApp *app = data;
  settings_ui_t *ui = app->settings_window != NULL
                        ? g_object_get_data(G_OBJECT(app->settings_window), "ui")
                        : NULL;
  if (ui == NULL || ui->quiet)
    return;
  static const char *const modes[] = {"", "local", "cloud"};
  guint i = gtk_drop_down_get_selected(GTK_DROP_DOWN(drop));
  if (i < G_N_ELEMENTS(modes))
    g_action_group_activate_action(G_ACTION_GROUP(app), "spool-mode",
                                   g_variant_new_string(modes[i]));
}

static void printer_picked(GObject *drop, GParamSpec *pspec, gpointer data)
{
  (void)pspec;
  KcpsTrayApp *app = data;
  settings_ui_t *ui = app->settings_window != NULL
                        ? g_object_get_data(G_OBJECT(app->settings_window), "ui")
                        : NULL;
  if (ui == NULL || ui->quiet)
    return;
  guint i = gtk_drop_down_get_selected(GTK_DROP_DOWN(drop));
  const char *name = i == 0 || i == GTK_INVALID_LIST_POSITION
                       ? ""
                       : gtk_string_list_get_string(ui->printer_names, i);
  /* The dropdown shows the choice already: not rebuilt from its own signal. */
  ui->picking = true;
  g_action_group_change_action_state(G_ACTION_GROUP(app), "default-printer",
                                     g_variant_new_string(name != NULL ? name : ""));
  ui->picking = false;
}

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
  g_object_set_data_full(G_OBJECT(window), "ui", ui, settings_ui_free);
  GtkWidget *grid = gtk_grid_new();
  gtk_grid_set_row_spacing(GTK_GRID(grid), 6);
  gtk_grid_set_column_spacing(GTK_GRID(grid), 12);
  gtk_widget_set_margin_start(grid, 24);
  gtk_widget_set_margin_end(grid, 24);
  gtk_widget_set_margin_top(grid, 24);
  gtk_widget_set_margin_bottom(grid, 24);
  ui->server = settings_row(GTK_GRID(grid), 0, _("_Server"));
  ui->user = settings_row(GTK_GRID(grid), 1, _("_Computer account"));
  /* The spool mode: kcpsd's setting of this user (GET/PUT /v1/settings). */
  ui->spool_choices = gtk_string_list_new(NULL);
  for (int c = KCPS_TRAY_SPOOL_ORGANIZATION; c <= KCPS_TRAY_SPOOL_CLOUD; c++) {
    g_autofree char *label = kcps_tray_spool_choice_label(c, NULL);
    gtk_string_list_append(ui->spool_choices, label);
  }
  ui->spool_mode = gtk_drop_down_new(G_LIST_MODEL(ui->spool_choices), NULL);
  gtk_widget_set_halign(ui->spool_mode, GTK_ALIGN_START);
  g_signal_connect(ui->spool_mode, "notify::selected", G_CALLBACK(spool_picked), app);
  GtkWidget *spool_label = kcps__tray_label_for(_("Spool _mode"), ui->spool_mode);
  gtk_widget_add_css_class(spool_label, "dim-label");
  gtk_grid_attach(GTK_GRID(grid), spool_label, 0, 2, 1, 1);
  gtk_grid_attach(GTK_GRID(grid), ui->spool_mode, 1, 2, 1, 1);
  ui->spool_note = gtk_label_new(NULL);
  gtk_label_set_wrap(GTK_LABEL(ui->spool_note), TRUE);
  gtk_label_set_xalign(GTK_LABEL(ui->spool_note), 0);
  gtk_widget_add_css_class(ui->spool_note, "dim-label");
  gtk_accessible_update_relation(GTK_ACCESSIBLE(ui->spool_mode),
                                 GTK_ACCESSIBLE_RELATION_DESCRIBED_BY, ui->spool_note, NULL, -1);
  gtk_grid_attach(GTK_GRID(grid), ui->spool_note, 1, 3, 1, 1);
  /* The default printer of the Release… dialog (tray.ini). */
  ui->printer_names = gtk_string_list_new(NULL);
  ui->printer = gtk_drop_down_new(G_LIST_MODEL(ui->printer_names), NULL);
  gtk_widget_set_halign(ui->printer, GTK_ALIGN_START);
  g_signal_connect(ui->printer, "notify::selected", G_CALLBACK(printer_picked), app);
  GtkWidget *printer_label = kcps__tray_label_for(_("Default _printer"), ui->printer);
  gtk_widget_add_css_class(printer_label, "dim-label");
  gtk_grid_attach(GTK_GRID(grid), printer_label, 0, 4, 1, 1);
  gtk_grid_attach(GTK_GRID(grid), ui->printer, 1, 4, 1, 1);
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
  gtk_grid_attach(GTK_GRID(grid), notify_label, 0, 5, 1, 1);
  gtk_grid_attach(GTK_GRID(grid), notify, 1, 5, 1, 1);
  /* Automatic logout: the user's own time, within the organization's. */
  ui->idle = gtk_spin_button_new_with_range(0, 43200, 1);
  gtk_widget_set_halign(ui->idle, GTK_ALIGN_START);
  gtk_spin_button_set_value(GTK_SPIN_BUTTON(ui->idle), kcps__tray_session_idle_user(app));
  g_signal_connect_swapped(ui->idle, "value-changed", G_CALLBACK(kcps__tray_session_idle_changed),
                           app);
  GtkWidget *idle_label = kcps__tray_label_for(_("_Log out after idle minutes"), ui->idle);
  gtk_widget_add_css_class(idle_label, "dim-label");
  gtk_grid_attach(GTK_GRID(grid), idle_label, 0, 6, 1, 1);
  gtk_grid_attach(GTK_GRID(grid), ui->idle, 1, 6, 1, 1);
  ui->idle_note = gtk_label_new(NULL);
  gtk_label_set_wrap(GTK_LABEL(ui->idle_note), TRUE);
  gtk_label_set_xalign(GTK_LABEL(ui->idle_note), 0);
  gtk_widget_add_css_class(ui->idle_note, "dim-label");
  gtk_accessible_update_relation(GTK_ACCESSIBLE(ui->idle), GTK_ACCESSIBLE_RELATION_DESCRIBED_BY,
                                 ui->idle_note, NULL, -1);
  gtk_grid_attach(GTK_GRID(grid), ui->idle_note, 1, 7, 1, 1);
  GtkWidget *close = kcps__tray_mnemonic_button(_("_Close"));
  gtk_actionable_set_action_name(GTK_ACTIONABLE(close), "window.close");
  gtk_widget_set_halign(close, GTK_ALIGN_END);
  gtk_grid_attach(GTK_GRID(grid), close, 1, 8, 1, 1);
  gtk_window_set_child(window, grid);
  gtk_window_set_default_widget(window, close);
  /* Not a selectable value: that would start with all its text selected. */
  gtk_window_set_focus(window, close);
  app->settings_window = window;
  /* kcpsd's settings and printers are read each time it opens. */
  g_signal_connect_swapped(window, "notify::visible", G_CALLBACK(kcps__tray_settings_reload), app);
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
  settings_show(app);
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
