/* The tray's windows: jobs (the main window where no tray host exists),
 * login and settings. Built in code; every control has an accessible name
 * and a keyboard path (mnemonics, default buttons, Escape closes). */
#define G_LOG_DOMAIN "kcps-tray"

#include "ui/tray-app-private.h"

#include <glib/gi18n-lib.h>
#include <glib/gstdio.h>

#include "ui/tray-job.h"

/* Widgets of a window that updates need, kept on the window. */
typedef struct jobs_ui_s {
  GtkWidget *banner;
  GtkWidget *who;
  GtkWidget *account;
  GtkWidget *stack;
  GtkWidget *spinner;
} jobs_ui_t;

typedef struct login_ui_s {
  GtkWidget *email;
  GtkWidget *password;
  GtkWidget *message;
  GtkWidget *submit;
  GtkWidget *spinner;
} login_ui_t;

typedef struct settings_ui_s {
  GtkWidget *server;
  GtkWidget *user;
  GtkWidget *spool_mode;
} settings_ui_t;

static void set_label(GtkWidget *widget, const char *label)
{
  gtk_accessible_update_property(GTK_ACCESSIBLE(widget), GTK_ACCESSIBLE_PROPERTY_LABEL, label,
                                 -1);
}

static void on_visible(GObject *window, GParamSpec *pspec, gpointer data)
{
  (void)window, (void)pspec;
  kcps__tray_state_changed(data);
}

/* A window of the app, hidden (not destroyed) on close, named for the tests
 * and the state. Escape closes it. */
static GtkWindow *new_window(KcpsTrayApp *app, const char *name, const char *title)
{
  GtkWidget *window = gtk_application_window_new(GTK_APPLICATION(app));
  gtk_window_set_title(GTK_WINDOW(window), title);
  gtk_window_set_hide_on_close(GTK_WINDOW(window), TRUE);
  g_object_set_data(G_OBJECT(window), "kcps-name", (gpointer)name);
  g_signal_connect(window, "notify::visible", G_CALLBACK(on_visible), app);
  GtkEventController *keys = gtk_shortcut_controller_new();
  gtk_shortcut_controller_add_shortcut(
    GTK_SHORTCUT_CONTROLLER(keys),
    gtk_shortcut_new(gtk_keyval_trigger_new(GDK_KEY_Escape, 0),
                     gtk_named_action_new("window.close")));
  gtk_widget_add_controller(window, keys);
  return GTK_WINDOW(window);
}

/* A text label with a mnemonic for widget, which it names to screen readers. */
static GtkWidget *label_for(const char *text, GtkWidget *widget)
{
  GtkWidget *label = gtk_label_new_with_mnemonic(text);
  gtk_label_set_xalign(GTK_LABEL(label), 0);
  gtk_label_set_mnemonic_widget(GTK_LABEL(label), widget);
  gtk_accessible_update_relation(GTK_ACCESSIBLE(widget), GTK_ACCESSIBLE_RELATION_LABELLED_BY,
                                 label, NULL, -1);
  return label;
}

/* --- jobs ---------------------------------------------------------------- */

static void row_setup(GtkSignalListItemFactory *factory, GtkListItem *item, gpointer data)
{
  (void)factory, (void)data;
  GtkWidget *row = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 12);
  gtk_widget_set_margin_start(row, 12);
  gtk_widget_set_margin_end(row, 12);
  gtk_widget_set_margin_top(row, 6);
  gtk_widget_set_margin_bottom(row, 6);
  GtkWidget *texts = gtk_box_new(GTK_ORIENTATION_VERTICAL, 2);
  gtk_widget_set_hexpand(texts, TRUE);
  GtkWidget *name = gtk_label_new(NULL);
  gtk_label_set_xalign(GTK_LABEL(name), 0);
  gtk_label_set_ellipsize(GTK_LABEL(name), PANGO_ELLIPSIZE_MIDDLE);
  gtk_widget_add_css_class(name, "heading");
  GtkWidget *details = gtk_label_new(NULL);
  gtk_label_set_xalign(GTK_LABEL(details), 0);
  gtk_widget_add_css_class(details, "dim-label");
  GtkWidget *state = gtk_label_new(NULL);
  gtk_label_set_xalign(GTK_LABEL(state), 1);
  gtk_box_append(GTK_BOX(texts), name);
  gtk_box_append(GTK_BOX(texts), details);
  /* Delete…: a button of the row, reached with Tab, asks first. */
  GtkWidget *remove = gtk_button_new_from_icon_name("user-trash-symbolic");
  gtk_widget_set_valign(remove, GTK_ALIGN_CENTER);
  gtk_widget_add_css_class(remove, "flat");
  gtk_actionable_set_action_name(GTK_ACTIONABLE(remove), "app.delete-job");
  gtk_box_append(GTK_BOX(row), texts);
  gtk_box_append(GTK_BOX(row), state);
  gtk_box_append(GTK_BOX(row), remove);
  g_object_set_data(G_OBJECT(row), "delete", remove);
  g_object_set_data(G_OBJECT(row), "name", name);
  g_object_set_data(G_OBJECT(row), "details", details);
  g_object_set_data(G_OBJECT(row), "state", state);
  gtk_list_item_set_child(item, row);
}

static void row_bind(GtkSignalListItemFactory *factory, GtkListItem *item, gpointer data)
{
  (void)factory, (void)data;
  KcpsTrayJob *job = gtk_list_item_get_item(item);
  GtkWidget *row = gtk_list_item_get_child(item);
  gtk_label_set_text(g_object_get_data(G_OBJECT(row), "name"), kcps_tray_job_get_name(job));
  gtk_label_set_text(g_object_get_data(G_OBJECT(row), "details"),
                     kcps_tray_job_get_details(job));
  gtk_label_set_text(g_object_get_data(G_OBJECT(row), "state"),
                     kcps_tray_job_get_state_label(job));
  /* One sentence per row for screen readers, rather than three fragments. */
  set_label(row, kcps_tray_job_get_summary(job));
  GtkWidget *remove = g_object_get_data(G_OBJECT(row), "delete");
  gtk_actionable_set_action_target(GTK_ACTIONABLE(remove), "s", kcps_tray_job_get_id(job));
  gtk_widget_set_visible(remove, kcps_tray_job_get_deletable(job));
  /* Translators: %s is a job's name; the label of its Delete button. */
  g_autofree char *what = g_strdup_printf(_("Delete \u201c%s\u201d"),
                                          kcps_tray_job_get_name(job));
  set_label(remove, what);
  gtk_widget_set_tooltip_text(remove, what);
}

/* --- deleting a job ------------------------------------------------------ */

static void delete_response(GtkDialog *dialog, int response, gpointer data)
{
  KcpsTrayApp *app = data;
  const char *id = g_object_get_data(G_OBJECT(dialog), "job-id");
  if (response == GTK_RESPONSE_ACCEPT && id != NULL)
    kcps__tray_delete_job(app, id);
  app->delete_dialog = NULL;
  gtk_window_destroy(GTK_WINDOW(dialog));
  kcps__tray_state_changed(app);
}

void kcps__tray_ask_delete(KcpsTrayApp *app, const char *id, const char *name)
{
  if (app->delete_dialog != NULL)
    gtk_window_destroy(app->delete_dialog);
  GtkWindow *parent = app->jobs_window;
  /* Translators: %s is a job's name. */
  GtkWidget *dialog = gtk_message_dialog_new(parent, GTK_DIALOG_MODAL | GTK_DIALOG_DESTROY_WITH_PARENT,
                                             GTK_MESSAGE_QUESTION, GTK_BUTTONS_NONE,
                                             _("Delete \u201c%s\u201d?"), name);
  gtk_message_dialog_format_secondary_text(GTK_MESSAGE_DIALOG(dialog), "%s",
                                           _("The job is removed and cannot be printed any "
                                             "more."));
  gtk_dialog_add_button(GTK_DIALOG(dialog), _("_Cancel"), GTK_RESPONSE_CANCEL);
  GtkWidget *confirm = gtk_dialog_add_button(GTK_DIALOG(dialog), _("_Delete"),
                                             GTK_RESPONSE_ACCEPT);
  gtk_widget_add_css_class(confirm, "destructive-action");
  /* Enter keeps the job: deleting takes a deliberate choice. */
  gtk_dialog_set_default_response(GTK_DIALOG(dialog), GTK_RESPONSE_CANCEL);
  gtk_window_set_title(GTK_WINDOW(dialog), _("Delete Job"));
  g_object_set_data_full(G_OBJECT(dialog), "job-id", g_strdup(id), g_free);
  g_object_set_data(G_OBJECT(dialog), "kcps-name", (gpointer)"delete");
  gtk_window_set_application(GTK_WINDOW(dialog), GTK_APPLICATION(app));
  g_signal_connect(dialog, "response", G_CALLBACK(delete_response), app);
  app->delete_dialog = GTK_WINDOW(dialog);
  gtk_window_present(GTK_WINDOW(dialog));
  kcps__tray_state_changed(app);
}

static gboolean jobs_close_request(GtkWindow *window, gpointer data)
{
  (void)window;
  KcpsTrayApp *app = data;
  /* Without a tray this window is the app: closing it quits. */
  if (!app->has_host)
    g_application_quit(G_APPLICATION(app));
  return FALSE;
}

GtkWindow *kcps__tray_jobs_window(KcpsTrayApp *app)
{
  if (app->jobs_window != NULL)
    return app->jobs_window;
  GtkWindow *window = new_window(app, "jobs", _("KCPS Jobs"));
  gtk_window_set_default_size(window, 640, 420);
  g_signal_connect(window, "close-request", G_CALLBACK(jobs_close_request), app);
  jobs_ui_t *ui = g_new0(jobs_ui_t, 1);
  g_object_set_data_full(G_OBJECT(window), "ui", ui, g_free);

  GtkWidget *header = gtk_header_bar_new();
  GtkWidget *refresh = gtk_button_new_from_icon_name("view-refresh-symbolic");
  gtk_actionable_set_action_name(GTK_ACTIONABLE(refresh), "app.refresh");
  gtk_widget_set_tooltip_text(refresh, _("Refresh (F5)"));
  set_label(refresh, _("Refresh"));
  gtk_header_bar_pack_start(GTK_HEADER_BAR(header), refresh);
  ui->spinner = gtk_spinner_new();
  set_label(ui->spinner, _("Reading from the KCPS service"));
  gtk_header_bar_pack_start(GTK_HEADER_BAR(header), ui->spinner);
  GtkWidget *settings = gtk_button_new_from_icon_name("emblem-system-symbolic");
  gtk_actionable_set_action_name(GTK_ACTIONABLE(settings), "app.settings");
  gtk_widget_set_tooltip_text(settings, _("Settings"));
  set_label(settings, _("Settings"));
  gtk_header_bar_pack_end(GTK_HEADER_BAR(header), settings);
  ui->account = gtk_button_new_with_mnemonic(_("Log _in…"));
  gtk_header_bar_pack_end(GTK_HEADER_BAR(header), ui->account);
  gtk_window_set_titlebar(window, header);

  GtkWidget *box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 6);
  ui->banner = gtk_label_new(_("No system tray was found, so KCPS shows this window instead of "
                               "an icon. Closing it quits KCPS."));
  gtk_label_set_wrap(GTK_LABEL(ui->banner), TRUE);
  gtk_label_set_xalign(GTK_LABEL(ui->banner), 0);
  gtk_widget_add_css_class(ui->banner, "warning");
  gtk_widget_set_margin_start(ui->banner, 12);
  gtk_widget_set_margin_end(ui->banner, 12);
  gtk_widget_set_margin_top(ui->banner, 6);
  gtk_accessible_update_property(GTK_ACCESSIBLE(ui->banner), GTK_ACCESSIBLE_PROPERTY_LABEL,
                                 gtk_label_get_text(GTK_LABEL(ui->banner)), -1);
  gtk_box_append(GTK_BOX(box), ui->banner);
  ui->who = gtk_label_new(NULL);
  gtk_label_set_xalign(GTK_LABEL(ui->who), 0);
  gtk_widget_set_margin_start(ui->who, 12);
  gtk_widget_set_margin_top(ui->who, 6);
  gtk_box_append(GTK_BOX(box), ui->who);

  GtkListItemFactory *factory = gtk_signal_list_item_factory_new();
  g_signal_connect(factory, "setup", G_CALLBACK(row_setup), NULL);
  g_signal_connect(factory, "bind", G_CALLBACK(row_bind), NULL);
  GtkSingleSelection *single = gtk_single_selection_new(g_object_ref(G_LIST_MODEL(app->jobs)));
  /* A row is picked by the user (for release, later), not by the list. */
  gtk_single_selection_set_autoselect(single, FALSE);
  gtk_single_selection_set_can_unselect(single, TRUE);
  GtkSelectionModel *selection = GTK_SELECTION_MODEL(single);
  GtkWidget *list = gtk_list_view_new(selection, factory);
  set_label(list, _("Your print jobs"));
  GtkWidget *scrolled = gtk_scrolled_window_new();
  gtk_scrolled_window_set_child(GTK_SCROLLED_WINDOW(scrolled), list);
  gtk_widget_set_vexpand(scrolled, TRUE);
  GtkWidget *empty = gtk_label_new(_("No jobs. Print to the “KCPS” printer from any "
                                     "application and the job shows here."));
  gtk_label_set_wrap(GTK_LABEL(empty), TRUE);
  gtk_widget_add_css_class(empty, "dim-label");
  gtk_widget_set_vexpand(empty, TRUE);
  ui->stack = gtk_stack_new();
  gtk_stack_add_named(GTK_STACK(ui->stack), scrolled, "list");
  gtk_stack_add_named(GTK_STACK(ui->stack), empty, "empty");
  gtk_box_append(GTK_BOX(box), ui->stack);
  gtk_window_set_child(window, box);

  app->jobs_window = window;
  kcps__tray_windows_update(app);
  return window;
}

static void jobs_update(KcpsTrayApp *app)
{
  if (app->jobs_window == NULL)
    return;
  jobs_ui_t *ui = g_object_get_data(G_OBJECT(app->jobs_window), "ui");
  gtk_widget_set_visible(ui->banner, !app->has_host);
  g_autofree char *who = kcps_tray_who_line(&app->status);
  g_autofree char *quota = kcps_tray_quota_line(&app->status);
  g_autofree char *line = quota != NULL ? g_strdup_printf("%s \u00b7 %s", who, quota)
                                        : g_strdup(who);
  gtk_label_set_text(GTK_LABEL(ui->who), line);
  bool logged_in = app->status.logged_in;
  gtk_button_set_label(GTK_BUTTON(ui->account), logged_in ? _("Log _out") : _("Log _in…"));
  gtk_button_set_use_underline(GTK_BUTTON(ui->account), TRUE);
  gtk_actionable_set_action_name(GTK_ACTIONABLE(ui->account),
                                 logged_in ? "app.logout" : "app.login");
  gtk_widget_set_sensitive(ui->account, app->status.reachable);
  bool empty = g_list_model_get_n_items(G_LIST_MODEL(app->jobs)) == 0;
  gtk_stack_set_visible_child_name(GTK_STACK(ui->stack), empty ? "empty" : "list");
  gtk_spinner_set_spinning(GTK_SPINNER(ui->spinner), app->refreshing);
  gtk_widget_set_visible(ui->spinner, app->refreshing);
}

/* --- login --------------------------------------------------------------- */

static void login_submit(GtkButton *button, gpointer data)
{
  (void)button;
  KcpsTrayApp *app = data;
  login_ui_t *ui = g_object_get_data(G_OBJECT(app->login_window), "ui");
  g_autofree char *email = g_strstrip(g_strdup(gtk_editable_get_text(GTK_EDITABLE(ui->email))));
  /* The password leaves the field for the call only. */
  kcps__tray_login(app, email, gtk_editable_get_text(GTK_EDITABLE(ui->password)));
  gtk_editable_set_text(GTK_EDITABLE(ui->password), "");
}

GtkWindow *kcps__tray_login_window(KcpsTrayApp *app)
{
  if (app->login_window != NULL)
    return app->login_window;
  GtkWindow *window = new_window(app, "login", _("Log in to KCPS"));
  gtk_window_set_resizable(window, FALSE);
  login_ui_t *ui = g_new0(login_ui_t, 1);
  g_object_set_data_full(G_OBJECT(window), "ui", ui, g_free);

  GtkWidget *box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 6);
  gtk_widget_set_margin_start(box, 24);
  gtk_widget_set_margin_end(box, 24);
  gtk_widget_set_margin_top(box, 24);
  gtk_widget_set_margin_bottom(box, 24);
  gtk_widget_set_size_request(box, 360, -1);
  GtkWidget *heading = gtk_label_new(_("Log in with your KCPS account"));
  gtk_widget_add_css_class(heading, "title-4");
  gtk_label_set_xalign(GTK_LABEL(heading), 0);
  gtk_box_append(GTK_BOX(box), heading);

  ui->email = gtk_entry_new();
  gtk_entry_set_input_purpose(GTK_ENTRY(ui->email), GTK_INPUT_PURPOSE_EMAIL);
  gtk_entry_set_activates_default(GTK_ENTRY(ui->email), TRUE);
  gtk_box_append(GTK_BOX(box), label_for(_("_Email address"), ui->email));
  gtk_box_append(GTK_BOX(box), ui->email);
  ui->password = gtk_password_entry_new();
  gtk_password_entry_set_show_peek_icon(GTK_PASSWORD_ENTRY(ui->password), TRUE);
  g_object_set(ui->password, "activates-default", TRUE, NULL);
  gtk_box_append(GTK_BOX(box), label_for(_("_Password"), ui->password));
  gtk_box_append(GTK_BOX(box), ui->password);

  ui->message = gtk_label_new(NULL);
  gtk_label_set_wrap(GTK_LABEL(ui->message), TRUE);
  gtk_label_set_max_width_chars(GTK_LABEL(ui->message), 40);
  gtk_label_set_xalign(GTK_LABEL(ui->message), 0);
  gtk_widget_add_css_class(ui->message, "error");
  gtk_accessible_update_relation(GTK_ACCESSIBLE(ui->password),
                                 GTK_ACCESSIBLE_RELATION_DESCRIBED_BY, ui->message, NULL, -1);
  gtk_box_append(GTK_BOX(box), ui->message);

  GtkWidget *buttons = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 6);
  gtk_widget_set_halign(buttons, GTK_ALIGN_END);
  gtk_widget_set_margin_top(buttons, 12);
  ui->spinner = gtk_spinner_new();
  set_label(ui->spinner, _("Logging in"));
  gtk_box_append(GTK_BOX(buttons), ui->spinner);
  GtkWidget *cancel = gtk_button_new_with_mnemonic(_("_Cancel"));
  gtk_actionable_set_action_name(GTK_ACTIONABLE(cancel), "window.close");
  gtk_box_append(GTK_BOX(buttons), cancel);
  ui->submit = gtk_button_new_with_mnemonic(_("_Log in"));
  gtk_widget_add_css_class(ui->submit, "suggested-action");
  g_signal_connect(ui->submit, "clicked", G_CALLBACK(login_submit), app);
  gtk_box_append(GTK_BOX(buttons), ui->submit);
  gtk_box_append(GTK_BOX(box), buttons);
  gtk_window_set_child(window, box);
  gtk_window_set_default_widget(window, ui->submit);
  gtk_window_set_focus(window, ui->email);

  app->login_window = window;
  kcps__tray_windows_update(app);
  return window;
}

static void login_update(KcpsTrayApp *app)
{
  if (app->login_window == NULL)
    return;
  login_ui_t *ui = g_object_get_data(G_OBJECT(app->login_window), "ui");
  const char *message = app->login_message != NULL ? app->login_message : "";
  gtk_label_set_text(GTK_LABEL(ui->message), message);
  gtk_widget_set_visible(ui->message, *message != '\0');
  gtk_widget_set_sensitive(ui->email, !app->login_busy);
  gtk_widget_set_sensitive(ui->password, !app->login_busy);
  gtk_widget_set_sensitive(ui->submit, !app->login_busy);
  gtk_spinner_set_spinning(GTK_SPINNER(ui->spinner), app->login_busy);
  gtk_widget_set_visible(ui->spinner, app->login_busy);
}

void kcps__tray_login_window_submit(KcpsTrayApp *app, const char *email, const char *password)
{
  login_ui_t *ui = g_object_get_data(G_OBJECT(kcps__tray_login_window(app)), "ui");
  gtk_editable_set_text(GTK_EDITABLE(ui->email), email);
  gtk_editable_set_text(GTK_EDITABLE(ui->password), password);
  gtk_widget_activate(ui->submit);
}

/* --- settings ------------------------------------------------------------ */

/* A read-only row: a label and a value that can be selected and copied. */
static GtkWidget *settings_row(GtkGrid *grid, int row, const char *name)
{
  GtkWidget *value = gtk_label_new(NULL);
  gtk_label_set_xalign(GTK_LABEL(value), 0);
  gtk_label_set_selectable(GTK_LABEL(value), TRUE);
  gtk_label_set_wrap(GTK_LABEL(value), TRUE);
  GtkWidget *label = label_for(name, value);
  gtk_widget_add_css_class(label, "dim-label");
  gtk_grid_attach(grid, label, 0, row, 1, 1);
  gtk_grid_attach(grid, value, 1, row, 1, 1);
  return value;
}

GtkWindow *kcps__tray_settings_window(KcpsTrayApp *app)
{
  if (app->settings_window != NULL)
    return app->settings_window;
  GtkWindow *window = new_window(app, "settings", _("KCPS Settings"));
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
  GtkWidget *notify_label = label_for(_("_Notifications"), notify);
  gtk_widget_add_css_class(notify_label, "dim-label");
  gtk_accessible_update_property(GTK_ACCESSIBLE(notify), GTK_ACCESSIBLE_PROPERTY_DESCRIPTION,
                                 _("Desktop notifications when a job arrives, prints, fails "
                                   "or is about to expire"),
                                 -1);
  gtk_grid_attach(GTK_GRID(grid), notify_label, 0, 3, 1, 1);
  gtk_grid_attach(GTK_GRID(grid), notify, 1, 3, 1, 1);
  GtkWidget *note = gtk_label_new(_("The other settings are shown as the KCPS service reports "
                                    "them; changing them here comes in a later version."));
  gtk_label_set_wrap(GTK_LABEL(note), TRUE);
  gtk_label_set_xalign(GTK_LABEL(note), 0);
  gtk_widget_add_css_class(note, "dim-label");
  gtk_grid_attach(GTK_GRID(grid), note, 0, 4, 2, 1);
  GtkWidget *close = gtk_button_new_with_mnemonic(_("_Close"));
  gtk_actionable_set_action_name(GTK_ACTIONABLE(close), "window.close");
  gtk_widget_set_halign(close, GTK_ALIGN_END);
  gtk_grid_attach(GTK_GRID(grid), close, 1, 5, 1, 1);
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
}

void kcps__tray_windows_update(KcpsTrayApp *app)
{
  jobs_update(app);
  login_update(app);
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
