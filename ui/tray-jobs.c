/* The jobs window: the user's jobs in a GtkListView (the main window where
 * no tray host exists), with delete. */
#define G_LOG_DOMAIN "kcps-tray"

#include "ui/tray-app-private.h"

#include <glib/gi18n-lib.h>

#include "ui/tray-job.h"

typedef struct jobs_ui_s {
  GtkWidget *banner;
  GtkWidget *who;
  GtkWidget *account;
  GtkWidget *stack;
  GtkWidget *spinner;
} jobs_ui_t;

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
  kcps__tray_set_label(row, kcps_tray_job_get_summary(job));
  GtkWidget *remove = g_object_get_data(G_OBJECT(row), "delete");
  gtk_actionable_set_action_target(GTK_ACTIONABLE(remove), "s", kcps_tray_job_get_id(job));
  gtk_widget_set_visible(remove, kcps_tray_job_get_deletable(job));
  /* Translators: %s is a job's name; the label of its Delete button. */
  g_autofree char *what = g_strdup_printf(_("Delete \u201c%s\u201d"),
                                          kcps_tray_job_get_name(job));
  kcps__tray_set_label(remove, what);
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
  GtkWindow *window = kcps__tray_new_window(app, "jobs", _("KCPS Jobs"));
  gtk_window_set_default_size(window, 640, 420);
  g_signal_connect(window, "close-request", G_CALLBACK(jobs_close_request), app);
  jobs_ui_t *ui = g_new0(jobs_ui_t, 1);
  g_object_set_data_full(G_OBJECT(window), "ui", ui, g_free);

  GtkWidget *header = gtk_header_bar_new();
  GtkWidget *refresh = gtk_button_new_from_icon_name("view-refresh-symbolic");
  gtk_actionable_set_action_name(GTK_ACTIONABLE(refresh), "app.refresh");
  gtk_widget_set_tooltip_text(refresh, _("Refresh (F5)"));
  kcps__tray_set_label(refresh, _("Refresh"));
  gtk_header_bar_pack_start(GTK_HEADER_BAR(header), refresh);
  ui->spinner = gtk_spinner_new();
  kcps__tray_set_label(ui->spinner, _("Reading from the KCPS service"));
  gtk_header_bar_pack_start(GTK_HEADER_BAR(header), ui->spinner);
  GtkWidget *settings = gtk_button_new_from_icon_name("emblem-system-symbolic");
  gtk_actionable_set_action_name(GTK_ACTIONABLE(settings), "app.settings");
  gtk_widget_set_tooltip_text(settings, _("Settings"));
  kcps__tray_set_label(settings, _("Settings"));
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
  kcps__tray_set_label(list, _("Your print jobs"));
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

void kcps__tray_jobs_update(KcpsTrayApp *app)
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
