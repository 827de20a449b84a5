/* The jobs window: the user's jobs in a GtkListView (the main window where
 * no tray host exists), each with a thumbnail of its first page, upload and
 * release progress, Preview, Release… and Delete; the page preview; the
 * actions and test state of all of it. */
#define G_LOG_DOMAIN "kcps-tray"

#include "ui/tray-app-private.h"

#include <glib/gi18n-lib.h>
#include <string.h>

#include "ui/tray-job.h"
#include "ui/tray-jobs.h"

/* A thumbnail's width in the list, in pixels. */
#define THUMB_WIDTH 48
/* A page's width in the preview. */
#define PREVIEW_WIDTH 560

typedef struct jobs_ui_s {
  KcpsTrayApp *app;
  GtkWidget *banner;
  GtkWidget *who;
  GtkWidget *account;
  GtkWidget *stack;
  GtkWidget *spinner;
  GtkWidget *search_bar;
  GtkWidget *search_entry;
  GtkWidget *no_match;
  GtkFilter *filter;         /* owned by shown */
  GtkFilterListModel *shown; /* the jobs the search lets through (owned by the list) */
  char **words;              /* the search's, NULL: all jobs */
} jobs_ui_t;

static void jobs_ui_free(jobs_ui_t *ui)
{
  g_strfreev(ui->words);
  g_free(ui);
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
  /* The first page, drawn off the main thread; a fixed box, so rows do not
   * jump when it arrives. Decorative for screen readers: the row says it all. */
  GtkWidget *thumb = g_object_new(GTK_TYPE_PICTURE, "accessible-role",
                                  GTK_ACCESSIBLE_ROLE_PRESENTATION, NULL);
  gtk_widget_set_size_request(thumb, THUMB_WIDTH, THUMB_WIDTH * 4 / 3);
  gtk_picture_set_can_shrink(GTK_PICTURE(thumb), TRUE);
  gtk_widget_set_valign(thumb, GTK_ALIGN_CENTER);
  GtkWidget *texts = gtk_box_new(GTK_ORIENTATION_VERTICAL, 2);
  gtk_widget_set_hexpand(texts, TRUE);
  GtkWidget *name = gtk_label_new(NULL);
  gtk_label_set_xalign(GTK_LABEL(name), 0);
  gtk_label_set_ellipsize(GTK_LABEL(name), PANGO_ELLIPSIZE_MIDDLE);
  gtk_widget_add_css_class(name, "heading");
  GtkWidget *details = gtk_label_new(NULL);
  gtk_label_set_xalign(GTK_LABEL(details), 0);
  /* A narrow window shortens the line, never pushes the row's buttons out. */
  gtk_label_set_ellipsize(GTK_LABEL(details), PANGO_ELLIPSIZE_END);
  gtk_widget_add_css_class(details, "dim-label");
  /* Upload or release progress, when one runs. */
  GtkWidget *progress = gtk_progress_bar_new();
  gtk_progress_bar_set_show_text(GTK_PROGRESS_BAR(progress), TRUE);
  gtk_widget_set_visible(progress, FALSE);
  GtkWidget *state = gtk_label_new(NULL);
  gtk_label_set_xalign(GTK_LABEL(state), 1);
  gtk_label_set_justify(GTK_LABEL(state), GTK_JUSTIFY_RIGHT);
  gtk_box_append(GTK_BOX(texts), name);
  gtk_box_append(GTK_BOX(texts), details);
  gtk_box_append(GTK_BOX(texts), progress);
  /* Preview, Release…, Delete…: buttons of the row, reached with Tab. */
  GtkWidget *preview = gtk_button_new_from_icon_name("document-print-preview-symbolic");
  gtk_widget_set_valign(preview, GTK_ALIGN_CENTER);
  gtk_widget_add_css_class(preview, "flat");
  gtk_actionable_set_action_target(GTK_ACTIONABLE(preview), "s", ""); /* the id comes at bind */
  gtk_actionable_set_action_name(GTK_ACTIONABLE(preview), "app.preview-job");
  GtkWidget *release = gtk_button_new_from_icon_name("printer-symbolic");
  gtk_widget_set_valign(release, GTK_ALIGN_CENTER);
  gtk_widget_add_css_class(release, "flat");
  gtk_actionable_set_action_target(GTK_ACTIONABLE(release), "s", ""); /* the id comes at bind */
  gtk_actionable_set_action_name(GTK_ACTIONABLE(release), "app.release-job");
  GtkWidget *remove = gtk_button_new_from_icon_name("user-trash-symbolic");
  gtk_widget_set_valign(remove, GTK_ALIGN_CENTER);
  gtk_widget_add_css_class(remove, "flat");
  gtk_actionable_set_action_target(GTK_ACTIONABLE(remove), "s", ""); /* the id comes at bind */
  gtk_actionable_set_action_name(GTK_ACTIONABLE(remove), "app.delete-job");
  gtk_box_append(GTK_BOX(row), thumb);
  gtk_box_append(GTK_BOX(row), texts);
  gtk_box_append(GTK_BOX(row), state);
  gtk_box_append(GTK_BOX(row), preview);
  gtk_box_append(GTK_BOX(row), release);
  gtk_box_append(GTK_BOX(row), remove);
  g_object_set_data(G_OBJECT(row), "thumb", thumb);
  g_object_set_data(G_OBJECT(row), "progress", progress);
  g_object_set_data(G_OBJECT(row), "preview", preview);
  g_object_set_data(G_OBJECT(row), "release", release);
  g_object_set_data(G_OBJECT(row), "delete", remove);
  g_object_set_data(G_OBJECT(row), "name", name);
  g_object_set_data(G_OBJECT(row), "details", details);
  g_object_set_data(G_OBJECT(row), "state", state);
  gtk_list_item_set_child(item, row);
}

/* A row's thumbnail arrived (test state: the job's name). */
static void thumb_shown(GtkPicture *picture, gpointer data)
{
  KcpsTrayApp *app = data;
  const char *name = g_object_get_data(G_OBJECT(picture), "kcps-job-name");
  kcps__jobs_state_t *st = kcps__tray_jobs_state(app);
  if (name != NULL && !g_hash_table_contains(st->thumbnailed, name)) {
    g_hash_table_add(st->thumbnailed, g_strdup(name));
    g_debug("thumbnail of \u201c%s\u201d drawn", name);
  }
}

static void row_progress(GtkWidget *row, KcpsTrayJob *job)
{
  GtkProgressBar *bar = g_object_get_data(G_OBJECT(row), "progress");
  const char *release = kcps_tray_job_get_release_state(job);
  g_autofree char *upload = kcps_tray_upload_progress(kcps_tray_job_get_upload_done(job),
                                                      kcps_tray_job_get_upload_total(job));
  if (kcps_tray_release_running(release)) {
    gtk_progress_bar_set_fraction(bar, kcps_tray_release_fraction(release));
    gtk_progress_bar_set_text(bar, kcps_tray_release_label(release));
    gtk_widget_set_visible(GTK_WIDGET(bar), TRUE);
  } else if (upload != NULL) {
    gtk_progress_bar_set_fraction(bar, kcps_tray_progress_fraction(
                                         kcps_tray_job_get_upload_done(job),
                                         kcps_tray_job_get_upload_total(job)));
    gtk_progress_bar_set_text(bar, upload);
    gtk_widget_set_visible(GTK_WIDGET(bar), TRUE);
  } else {
    gtk_widget_set_visible(GTK_WIDGET(bar), FALSE);
  }
  kcps__tray_set_label(GTK_WIDGET(bar), gtk_progress_bar_get_text(bar));
}

static void row_bind(GtkSignalListItemFactory *factory, GtkListItem *item, gpointer data)
{
  (void)factory;
  KcpsTrayApp *app = data;
  KcpsTrayJob *job = gtk_list_item_get_item(item);
  GtkWidget *row = gtk_list_item_get_child(item);
  const char *id = kcps_tray_job_get_id(job), *job_name = kcps_tray_job_get_name(job);
  gtk_label_set_text(g_object_get_data(G_OBJECT(row), "name"), job_name);
  GtkWidget *details = g_object_get_data(G_OBJECT(row), "details");
  gtk_label_set_text(GTK_LABEL(details), kcps_tray_job_get_details(job));
  /* The whole line, also when the row is too narrow for it. */
  gtk_widget_set_tooltip_text(details, kcps_tray_job_get_details(job));
  gtk_label_set_text(g_object_get_data(G_OBJECT(row), "state"),
                     kcps_tray_job_get_state_label(job));
  /* One sentence per row for screen readers, rather than three fragments. */
  kcps__tray_set_label(row, kcps_tray_job_get_summary(job));
  row_progress(row, job);
  GtkWidget *remove = g_object_get_data(G_OBJECT(row), "delete");
  gtk_actionable_set_action_target(GTK_ACTIONABLE(remove), "s", id);
  gtk_widget_set_visible(remove, kcps_tray_job_get_deletable(job));
  /* Translators: %s is a job's name; the label of its Delete button. */
  g_autofree char *what = g_strdup_printf(_("Delete \u201c%s\u201d"), job_name);
  kcps__tray_set_label(remove, what);
  gtk_widget_set_tooltip_text(remove, what);
  GtkWidget *release = g_object_get_data(G_OBJECT(row), "release");
  gtk_actionable_set_action_target(GTK_ACTIONABLE(release), "s", id);
  gtk_widget_set_visible(release, kcps_tray_job_get_releasable(job));
  /* Translators: %s is a job's name; the label of its Release button. */
  g_autofree char *release_label = g_strdup_printf(_("Print \u201c%s\u201d on a printer…"),
                                                   job_name);
  kcps__tray_set_label(release, release_label);
  gtk_widget_set_tooltip_text(release, release_label);
  GtkWidget *preview = g_object_get_data(G_OBJECT(row), "preview");
  gtk_actionable_set_action_target(GTK_ACTIONABLE(preview), "s", id);
  gtk_widget_set_visible(preview, kcps_tray_job_get_has_document(job));
  /* Translators: %s is a job's name; the label of its Preview button. */
  g_autofree char *preview_label = g_strdup_printf(_("Preview \u201c%s\u201d"), job_name);
  kcps__tray_set_label(preview, preview_label);
  gtk_widget_set_tooltip_text(preview, preview_label);

  /* The thumbnail: from the cache, or drawn on a worker while the row is
   * on screen. */
  GtkPicture *thumb = g_object_get_data(G_OBJECT(row), "thumb");
  g_object_set_data_full(G_OBJECT(thumb), "kcps-job-name", g_strdup(job_name), g_free);
  if (kcps_tray_job_get_has_document(job))
    kcps_tray_thumb_bind(kcps__tray_jobs_state(app)->thumbs, thumb, id,
                         kcps_tray_job_get_size(job), THUMB_WIDTH, thumb_shown, app);
  else
    kcps_tray_thumb_unbind(thumb);
  if (!kcps_tray_job_get_has_document(job))
    gtk_picture_set_paintable(thumb, NULL);
}

static void row_unbind(GtkSignalListItemFactory *factory, GtkListItem *item, gpointer data)
{
  (void)factory, (void)data;
  GtkWidget *row = gtk_list_item_get_child(item);
  kcps_tray_thumb_unbind(g_object_get_data(G_OBJECT(row), "thumb"));
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
  kcps__tray_name_by_label(
    gtk_dialog_add_button(GTK_DIALOG(dialog), _("_Cancel"), GTK_RESPONSE_CANCEL));
  GtkWidget *confirm = gtk_dialog_add_button(GTK_DIALOG(dialog), _("_Delete"),
                                             GTK_RESPONSE_ACCEPT);
  kcps__tray_name_by_label(confirm);
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

/* --- the search ------------------------------------------------------------ */

static gboolean job_shown(gpointer item, gpointer data)
{
  jobs_ui_t *ui = data;
  KcpsTrayJob *job = item;
  return kcps_tray_job_matches(ui->words, kcps_tray_job_get_name(job),
                               kcps_tray_job_get_state_label(job));
}

/* The list, "no jobs" or "none matches" (with the search's text). */
static void jobs_page_update(jobs_ui_t *ui)
{
  const char *page = "list";
  if (g_list_model_get_n_items(G_LIST_MODEL(ui->app->jobs)) == 0) {
    page = "empty";
  } else if (g_list_model_get_n_items(G_LIST_MODEL(ui->shown)) == 0) {
    page = "no-match";
    /* Translators: %s is what the user searched for. */
    g_autofree char *text = g_strdup_printf(
      _("No job matches “%s”."), gtk_editable_get_text(GTK_EDITABLE(ui->search_entry)));
    gtk_label_set_text(GTK_LABEL(ui->no_match), text);
  }
  gtk_stack_set_visible_child_name(GTK_STACK(ui->stack), page);
}

static void shown_changed(GListModel *model, guint position, guint removed, guint added,
                          gpointer data)
{
  (void)model, (void)position, (void)removed, (void)added;
  jobs_page_update(data);
}

static void search_changed(GtkSearchEntry *entry, gpointer data)
{
  jobs_ui_t *ui = data;
  g_auto(GStrv) before = ui->words;
  ui->words = kcps_tray_search_words(gtk_editable_get_text(GTK_EDITABLE(entry)));
  gtk_filter_changed(ui->filter, GTK_FILTER_CHANGE_DIFFERENT);
  jobs_page_update(ui);
}

/* Ctrl+F: the jobs window with its search open and focused; text (test
 * hook) typed into it when not NULL. */
static void jobs_search(KcpsTrayApp *app, const char *text)
{
  GtkWindow *window = kcps__tray_jobs_window(app);
  gtk_window_present(window);
  jobs_ui_t *ui = g_object_get_data(G_OBJECT(window), "ui");
  gtk_search_bar_set_search_mode(GTK_SEARCH_BAR(ui->search_bar), TRUE);
  if (text != NULL) {
    gtk_editable_set_text(GTK_EDITABLE(ui->search_entry), text);
    search_changed(GTK_SEARCH_ENTRY(ui->search_entry), ui); /* now, not after its delay */
  }
  gtk_widget_grab_focus(ui->search_entry);
}

static void on_find_jobs(GSimpleAction *action, GVariant *param, gpointer data)
{
  (void)action, (void)param;
  jobs_search(data, NULL);
}

/* Test hook: the search with this text. */
static void on_search_jobs(GSimpleAction *action, GVariant *param, gpointer data)
{
  (void)action;
  jobs_search(data, g_variant_get_string(param, NULL));
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
  gtk_window_set_default_size(window, 760, 420);
  g_signal_connect(window, "close-request", G_CALLBACK(jobs_close_request), app);
  jobs_ui_t *ui = g_new0(jobs_ui_t, 1);
  ui->app = app;
  g_object_set_data_full(G_OBJECT(window), "ui", ui, (GDestroyNotify)jobs_ui_free);

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
  ui->account = kcps__tray_mnemonic_button(_("Log _in…"));
  gtk_header_bar_pack_end(GTK_HEADER_BAR(header), ui->account);
  GtkWidget *find = gtk_toggle_button_new();
  gtk_button_set_icon_name(GTK_BUTTON(find), "system-search-symbolic");
  gtk_widget_set_tooltip_text(find, _("Search (Ctrl+F)"));
  kcps__tray_set_label(find, _("Search"));
  gtk_header_bar_pack_end(GTK_HEADER_BAR(header), find);
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

  /* The search: Ctrl+F, the header's button, or typing in the window. */
  ui->search_entry = gtk_search_entry_new();
  g_object_set(ui->search_entry, "placeholder-text", _("Search by name or state"), NULL);
  kcps__tray_set_label(ui->search_entry, _("Search your jobs"));
  gtk_widget_set_hexpand(ui->search_entry, TRUE);
  g_signal_connect(ui->search_entry, "search-changed", G_CALLBACK(search_changed), ui);
  ui->search_bar = gtk_search_bar_new();
  gtk_search_bar_set_child(GTK_SEARCH_BAR(ui->search_bar), ui->search_entry);
  gtk_search_bar_connect_entry(GTK_SEARCH_BAR(ui->search_bar), GTK_EDITABLE(ui->search_entry));
  /* No close button: GTK 4.8 gives it no accessible name (Escape and the
   * header's button close the search). */
  gtk_search_bar_set_key_capture_widget(GTK_SEARCH_BAR(ui->search_bar), GTK_WIDGET(window));
  g_object_bind_property(find, "active", ui->search_bar, "search-mode-enabled",
                         G_BINDING_BIDIRECTIONAL | G_BINDING_SYNC_CREATE);
  /* Right under the header bar, where GNOME's applications put it. */
  gtk_box_prepend(GTK_BOX(box), ui->search_bar);
  GtkEventController *keys = gtk_shortcut_controller_new();
  gtk_shortcut_controller_add_shortcut(
    GTK_SHORTCUT_CONTROLLER(keys),
    gtk_shortcut_new(gtk_keyval_trigger_new(GDK_KEY_f, GDK_CONTROL_MASK),
                     gtk_named_action_new("app.find-jobs")));
  gtk_widget_add_controller(GTK_WIDGET(window), keys);

  GtkListItemFactory *factory = gtk_signal_list_item_factory_new();
  g_signal_connect(factory, "setup", G_CALLBACK(row_setup), NULL);
  g_signal_connect(factory, "bind", G_CALLBACK(row_bind), app);
  g_signal_connect(factory, "unbind", G_CALLBACK(row_unbind), app);
  ui->filter = GTK_FILTER(gtk_custom_filter_new(job_shown, ui, NULL));
  ui->shown = gtk_filter_list_model_new(g_object_ref(G_LIST_MODEL(app->jobs)), ui->filter);
  g_signal_connect(ui->shown, "items-changed", G_CALLBACK(shown_changed), ui);
  GtkSingleSelection *single = gtk_single_selection_new(G_LIST_MODEL(ui->shown));
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
  ui->no_match = gtk_label_new(NULL);
  gtk_label_set_wrap(GTK_LABEL(ui->no_match), TRUE);
  gtk_widget_add_css_class(ui->no_match, "dim-label");
  gtk_widget_set_vexpand(ui->no_match, TRUE);
  ui->stack = gtk_stack_new();
  gtk_stack_add_named(GTK_STACK(ui->stack), scrolled, "list");
  gtk_stack_add_named(GTK_STACK(ui->stack), empty, "empty");
  gtk_stack_add_named(GTK_STACK(ui->stack), ui->no_match, "no-match");
  gtk_box_append(GTK_BOX(box), ui->stack);
  gtk_window_set_child(window, box);

  app->jobs_window = window;
  kcps__tray_windows_update(app);
  return window;
}

void kcps__tray_jobs_update(KcpsTrayApp *app)
{
  kcps__tray_release_update(app);
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
  kcps__tray_name_by_label(ui->account);
  gtk_actionable_set_action_name(GTK_ACTIONABLE(ui->account),
                                 logged_in ? "app.logout" : "app.login");
  gtk_widget_set_sensitive(ui->account, app->status.reachable);
  jobs_page_update(ui);
  gtk_spinner_set_spinning(GTK_SPINNER(ui->spinner), app->refreshing);
  gtk_widget_set_visible(ui->spinner, app->refreshing);
}

/* --- the page preview ------------------------------------------------------- */

typedef struct preview_ui_s {
  KcpsTrayApp *app;
  char *job_id;
  gint64 size;
  int page;    /* 0-based, shown or asked for */
  int n_pages; /* 0 until the first page came */
  GtkWidget *picture;
  GtkWidget *label;
  GtkWidget *prev;
  GtkWidget *next;
  GCancellable *cancellable; /* the page being drawn */
} preview_ui_t;

static void preview_ui_free(preview_ui_t *ui)
{
  if (ui->cancellable != NULL)
    g_cancellable_cancel(ui->cancellable);
  g_clear_object(&ui->cancellable);
  g_free(ui->job_id);
  g_free(ui);
}

static void preview_show(preview_ui_t *ui);

static void preview_buttons(preview_ui_t *ui)
{
  gtk_widget_set_sensitive(ui->prev, ui->page > 0);
  gtk_widget_set_sensitive(ui->next, ui->n_pages > 0 && ui->page + 1 < ui->n_pages);
  g_autofree char *text = NULL;
  if (ui->n_pages > 0)
    /* Translators: the preview's page number: page, pages in all. */
    text = g_strdup_printf(_("Page %d of %d"), ui->page + 1, ui->n_pages);
  else
    text = g_strdup(_("Drawing the page…"));
  gtk_label_set_text(GTK_LABEL(ui->label), text);
}

/* A drawn page: the window may be gone (cancelled) — ui is only touched
 * when not cancelled, and then the window holds it. */
static void preview_page_done(GdkTexture *texture, int n_pages, gpointer data)
{
  GCancellable *cancellable = data;
  if (g_cancellable_is_cancelled(cancellable)) {
    g_object_unref(cancellable);
    return;
  }
  preview_ui_t *ui = g_object_get_data(G_OBJECT(cancellable), "ui");
  g_object_unref(cancellable);
  ui->n_pages = n_pages;
  if (texture != NULL)
    gtk_picture_set_paintable(GTK_PICTURE(ui->picture), GDK_PAINTABLE(texture));
  else if (n_pages == 0)
    gtk_label_set_text(GTK_LABEL(ui->label), _("The document cannot be shown."));
  if (texture != NULL || n_pages > 0)
    preview_buttons(ui);
  g_clear_object(&ui->cancellable);
  kcps__tray_state_changed(ui->app);
}

static void preview_show(preview_ui_t *ui)
{
  if (ui->cancellable != NULL)
    g_cancellable_cancel(ui->cancellable);
  g_clear_object(&ui->cancellable);
  ui->cancellable = g_cancellable_new();
  g_object_set_data(G_OBJECT(ui->cancellable), "ui", ui);
  kcps__jobs_state_t *st = kcps__tray_jobs_state(ui->app);
  kcps_tray_thumbs_render(st->thumbs, ui->job_id, ui->size, ui->page, PREVIEW_WIDTH, false,
                          ui->cancellable, preview_page_done, g_object_ref(ui->cancellable));
  preview_buttons(ui);
}

static void preview_step(GtkButton *button, gpointer data)
{
  preview_ui_t *ui = data;
  int step = GPOINTER_TO_INT(g_object_get_data(G_OBJECT(button), "step"));
  int page = ui->page + step;
  if (page < 0 || (ui->n_pages > 0 && page >= ui->n_pages))
    return;
  ui->page = page;
  preview_show(ui);
}

static void preview_closed(GtkWidget *window, gpointer data)
{
  (void)window;
  KcpsTrayApp *app = data;
  kcps__jobs_state_t *st = kcps__tray_jobs_state(app);
  st->preview = NULL;
  kcps_tray_thumbs_keep_document(st->thumbs, NULL, 0); /* its memory goes */
  kcps__tray_state_changed(app);
}

static GtkWidget *preview_button(preview_ui_t *ui, const char *icon, const char *label,
                                 int step)
{
  GtkWidget *button = gtk_button_new_from_icon_name(icon);
  kcps__tray_set_label(button, label);
  gtk_widget_set_tooltip_text(button, label);
  g_object_set_data(G_OBJECT(button), "step", GINT_TO_POINTER(step));
  g_signal_connect(button, "clicked", G_CALLBACK(preview_step), ui);
  return button;
}

/* One page at a time, Previous/Next (also Page Up/Page Down), drawn off the
 * main thread. A new window per preview: closing destroys it. */
static void preview_open(KcpsTrayApp *app, const char *job_id)
{
  KcpsTrayJob *job = NULL;
  GListModel *jobs = G_LIST_MODEL(app->jobs);
  for (guint i = 0; job == NULL && i < g_list_model_get_n_items(jobs); i++) {
    g_autoptr(KcpsTrayJob) j = g_list_model_get_item(jobs, i);
    if (g_strcmp0(kcps_tray_job_get_id(j), job_id) == 0)
      job = j;
  }
  if (job == NULL || !kcps_tray_job_get_has_document(job))
    return;
  kcps__jobs_state_t *st = kcps__tray_jobs_state(app);
  if (st->preview != NULL)
    gtk_window_destroy(st->preview);
  kcps_tray_thumbs_keep_document(st->thumbs, job_id, kcps_tray_job_get_size(job));
  GtkWindow *window = GTK_WINDOW(gtk_window_new());
  /* Translators: %s is a job's name; the preview window's title. */
  g_autofree char *title = g_strdup_printf(_("Preview of \u201c%s\u201d"),
                                           kcps_tray_job_get_name(job));
  gtk_window_set_title(window, title);
  gtk_window_set_default_size(window, PREVIEW_WIDTH + 40, 760);
  gtk_window_set_application(window, GTK_APPLICATION(app));
  if (app->jobs_window != NULL)
    gtk_window_set_transient_for(window, app->jobs_window);
  gtk_window_set_destroy_with_parent(window, TRUE);
  g_object_set_data(G_OBJECT(window), "kcps-name", (gpointer)"preview");
  preview_ui_t *ui = g_new0(preview_ui_t, 1);
  ui->app = app;
  ui->job_id = g_strdup(job_id);
  ui->size = kcps_tray_job_get_size(job);
  g_object_set_data_full(G_OBJECT(window), "ui", ui, (GDestroyNotify)preview_ui_free);

  GtkWidget *header = gtk_header_bar_new();
  ui->prev = preview_button(ui, "go-previous-symbolic", _("Previous page"), -1);
  ui->next = preview_button(ui, "go-next-symbolic", _("Next page"), 1);
  gtk_header_bar_pack_start(GTK_HEADER_BAR(header), ui->prev);
  gtk_header_bar_pack_start(GTK_HEADER_BAR(header), ui->next);
  ui->label = gtk_label_new(NULL);
  gtk_header_bar_pack_end(GTK_HEADER_BAR(header), ui->label);
  gtk_window_set_titlebar(window, header);
  ui->picture = gtk_picture_new();
  gtk_picture_set_can_shrink(GTK_PICTURE(ui->picture), TRUE);
  gtk_accessible_update_property(GTK_ACCESSIBLE(ui->picture), GTK_ACCESSIBLE_PROPERTY_LABEL,
                                 title, -1);
  GtkWidget *scrolled = gtk_scrolled_window_new();
  gtk_scrolled_window_set_child(GTK_SCROLLED_WINDOW(scrolled), ui->picture);
  gtk_window_set_child(window, scrolled);
  /* Keys: Page Down / Page Up turn pages, Escape closes. */
  GtkShortcutController *shortcuts = GTK_SHORTCUT_CONTROLLER(gtk_shortcut_controller_new());
  gtk_shortcut_controller_set_scope(shortcuts, GTK_SHORTCUT_SCOPE_MANAGED);
  gtk_shortcut_controller_add_shortcut(
    shortcuts, gtk_shortcut_new(gtk_keyval_trigger_new(GDK_KEY_Escape, 0),
                                gtk_named_action_new("window.close")));
  gtk_shortcut_controller_add_shortcut(
    shortcuts, gtk_shortcut_new(gtk_keyval_trigger_new(GDK_KEY_Page_Down, 0),
                                gtk_named_action_new("preview.next")));
  gtk_shortcut_controller_add_shortcut(
    shortcuts, gtk_shortcut_new(gtk_keyval_trigger_new(GDK_KEY_Page_Up, 0),
                                gtk_named_action_new("preview.previous")));
  gtk_widget_add_controller(GTK_WIDGET(window), GTK_EVENT_CONTROLLER(shortcuts));
  GSimpleActionGroup *group = g_simple_action_group_new();
  GSimpleAction *next = g_simple_action_new("next", NULL);
  g_signal_connect_swapped(next, "activate", G_CALLBACK(gtk_widget_activate), ui->next);
  GSimpleAction *previous = g_simple_action_new("previous", NULL);
  g_signal_connect_swapped(previous, "activate", G_CALLBACK(gtk_widget_activate), ui->prev);
  g_action_map_add_action(G_ACTION_MAP(group), G_ACTION(next));
  g_action_map_add_action(G_ACTION_MAP(group), G_ACTION(previous));
  g_object_unref(next);
  g_object_unref(previous);
  gtk_widget_insert_action_group(GTK_WIDGET(window), "preview", G_ACTION_GROUP(group));
  g_object_unref(group);
  g_signal_connect(window, "destroy", G_CALLBACK(preview_closed), app);
  st->preview = window;
  preview_show(ui);
  gtk_window_present(window);
  kcps__tray_state_changed(app);
}

/* --- actions and test state ---------------------------------------------------- */

static void on_release(GSimpleAction *action, GVariant *param, gpointer data)
{
  (void)action, (void)param;
  kcps__tray_release_dialog(data, NULL);
}

static void on_release_job(GSimpleAction *action, GVariant *param, gpointer data)
{
  (void)action;
  kcps__tray_release_dialog(data, g_variant_get_string(param, NULL));
}

static void on_preview_job(GSimpleAction *action, GVariant *param, gpointer data)
{
  (void)action;
  preview_open(data, g_variant_get_string(param, NULL));
}

/* Test hooks: press Release in the open dialog with a typed printer; turn
 * the preview's page. */
static void on_release_submit(GSimpleAction *action, GVariant *param, gpointer data)
{
  (void)action;
  kcps__tray_release_submit(data, g_variant_get_string(param, NULL));
}

static void on_preview_next(GSimpleAction *action, GVariant *param, gpointer data)
{
  (void)action, (void)param;
  kcps__jobs_state_t *st = kcps__tray_jobs_state(data);
  if (st->preview != NULL)
    gtk_widget_activate(((preview_ui_t *)g_object_get_data(G_OBJECT(st->preview), "ui"))->next);
}

#define JOBS_TEST_PATH "/org/kcps/Tray/JobsTest"
#define JOBS_TEST_IFACE "org.kcps.Tray1.JobsTest"

static const char jobs_test_xml[] =
  "<node><interface name='" JOBS_TEST_IFACE "'>"
  " <property name='ThumbnailsRendered' type='u' access='read'/>"
  " <property name='ThumbnailJobs' type='as' access='read'/>"
  " <property name='ThumbnailCache' type='u' access='read'/>"
  " <property name='DocumentsFetched' type='u' access='read'/>"
  " <property name='PreviewPage' type='s' access='read'/>"
  " <property name='ReleaseDialog' type='b' access='read'/>"
  " <property name='ReleaseReady' type='b' access='read'/>"
  " <property name='ReleasesStarted' type='u' access='read'/>"
  " <property name='ReleaseState' type='s' access='read'/>"
  " <property name='ReleaseControls' type='s' access='read'/>"
  " <property name='ReleasePrinters' type='(uu)' access='read'/>"
  " <property name='JobsShown' type='u' access='read'/>"
  " <property name='JobsPage' type='s' access='read'/>"
  "</interface></node>";

/* Set by tray-release.c through object data on the dialog. */
static GVariant *jobs_test_property(GDBusConnection *connection, const char *sender,
                                    const char *path, const char *interface, const char *name,
                                    GError **error, gpointer data)
{
  (void)connection, (void)sender, (void)path, (void)interface;
  KcpsTrayApp *app = data;
  kcps__jobs_state_t *st = kcps__tray_jobs_state(app);
  if (strcmp(name, "ThumbnailsRendered") == 0)
    return g_variant_new_uint32(kcps_tray_thumbs_rendered(st->thumbs));
  if (strcmp(name, "DocumentsFetched") == 0)
    return g_variant_new_uint32(kcps_tray_thumbs_fetched(st->thumbs));
  if (strcmp(name, "ThumbnailCache") == 0)
    return g_variant_new_uint32(kcps_tray_thumbs_cache_size(st->thumbs));
  if (strcmp(name, "ThumbnailJobs") == 0) {
    GVariantBuilder b;
    g_variant_builder_init(&b, G_VARIANT_TYPE("as"));
    GHashTableIter iter;
    gpointer key;
    g_hash_table_iter_init(&iter, st->thumbnailed);
    while (g_hash_table_iter_next(&iter, &key, NULL))
      g_variant_builder_add(&b, "s", (const char *)key);
    return g_variant_builder_end(&b);
  }
  if (strcmp(name, "PreviewPage") == 0) {
    preview_ui_t *ui = st->preview != NULL ? g_object_get_data(G_OBJECT(st->preview), "ui")
                                           : NULL;
    g_autofree char *text = ui != NULL ? g_strdup_printf("%d/%d", ui->page + 1, ui->n_pages)
                                       : g_strdup("");
    return g_variant_new_string(text);
  }
  if (strcmp(name, "ReleaseDialog") == 0)
    return g_variant_new_boolean(st->release != NULL);
  if (strcmp(name, "ReleaseReady") == 0)
    return g_variant_new_boolean(st->release != NULL &&
                                 g_object_get_data(G_OBJECT(st->release), "ready") != NULL);
  if (strcmp(name, "ReleasesStarted") == 0)
    return g_variant_new_uint32(st->releases_started);
  if (strcmp(name, "ReleaseState") == 0)
    return g_variant_new_string(st->release_state != NULL ? st->release_state : "");
  if (strcmp(name, "ReleasePrinters") == 0) {
    guint count = 0;
    guint listed = kcps__tray_release_printers_listed(app, &count);
    return g_variant_new("(uu)", listed, count);
  }
  jobs_ui_t *ui = app->jobs_window != NULL ? g_object_get_data(G_OBJECT(app->jobs_window), "ui")
                                           : NULL;
  if (strcmp(name, "JobsShown") == 0)
    return g_variant_new_uint32(ui != NULL ? g_list_model_get_n_items(G_LIST_MODEL(ui->shown))
                                           : 0);
  if (strcmp(name, "JobsPage") == 0) {
    const char *page = ui != NULL ? gtk_stack_get_visible_child_name(GTK_STACK(ui->stack)) : NULL;
    return g_variant_new_string(page != NULL ? page : "");
  }
  if (strcmp(name, "ReleaseControls") == 0) {
    const char *controls = st->release != NULL
                             ? g_object_get_data(G_OBJECT(st->release), "controls") : NULL;
    return g_variant_new_string(controls != NULL ? controls : "");
  }
  g_set_error(error, G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_PROPERTY, "no property %s", name);
  return NULL;
}

static void jobs_state_free(kcps__jobs_state_t *st)
{
  kcps_tray_thumbs_free(st->thumbs);
  g_hash_table_destroy(st->thumbnailed);
  if (st->release_poll != NULL)
    g_cancellable_cancel(st->release_poll);
  g_clear_object(&st->release_poll);
  g_free(st->release_id);
  g_free(st->release_state);
  g_free(st->release_message);
  g_clear_pointer(&st->test_info, g_dbus_node_info_unref);
  g_free(st);
}

kcps__jobs_state_t *kcps__tray_jobs_state(KcpsTrayApp *app)
{
  return g_object_get_data(G_OBJECT(app), "kcps-jobs");
}

static void jobs_shutdown(GApplication *application, gpointer data)
{
  (void)data;
  kcps__jobs_state_t *st = kcps__tray_jobs_state(KCPS_TRAY_APP(application));
  GDBusConnection *connection = g_application_get_dbus_connection(application);
  if (st->test_registration != 0 && connection != NULL)
    g_dbus_connection_unregister_object(connection, st->test_registration);
  st->test_registration = 0;
}

void kcps__tray_jobs_startup(KcpsTrayApp *app)
{
  kcps__jobs_state_t *st = g_new0(kcps__jobs_state_t, 1);
  st->thumbs = kcps_tray_thumbs_new(app->port, KCPS_TRAY_THUMB_CACHE);
  st->thumbnailed = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  g_object_set_data_full(G_OBJECT(app), "kcps-jobs", st, (GDestroyNotify)jobs_state_free);
  static const GActionEntry actions[] = {
    {"release", on_release, NULL, NULL, NULL, {0}},
    {"release-job", on_release_job, "s", NULL, NULL, {0}},
    {"preview-job", on_preview_job, "s", NULL, NULL, {0}},
    {"find-jobs", on_find_jobs, NULL, NULL, NULL, {0}},
  };
  g_action_map_add_action_entries(G_ACTION_MAP(app), actions, G_N_ELEMENTS(actions), app);
  g_signal_connect(app, "shutdown", G_CALLBACK(jobs_shutdown), NULL);
  if (app->test_dir == NULL)
    return;
  static const GActionEntry test_actions[] = {
    {"release-submit", on_release_submit, "s", NULL, NULL, {0}},
    {"preview-next", on_preview_next, NULL, NULL, NULL, {0}},
    {"search-jobs", on_search_jobs, "s", NULL, NULL, {0}},
  };
  g_action_map_add_action_entries(G_ACTION_MAP(app), test_actions, G_N_ELEMENTS(test_actions),
                                  app);
  GDBusConnection *connection = g_application_get_dbus_connection(G_APPLICATION(app));
  g_autoptr(GError) error = NULL;
  st->test_info = g_dbus_node_info_new_for_xml(jobs_test_xml, &error);
  static const GDBusInterfaceVTable vtable = {NULL, jobs_test_property, NULL, {0}};
  if (connection != NULL && st->test_info != NULL)
    st->test_registration = g_dbus_connection_register_object(
      connection, JOBS_TEST_PATH, st->test_info->interfaces[0], &vtable, app, NULL, &error);
  if (st->test_registration == 0)
    g_warning("no jobs test state: %s", error != NULL ? error->message : "no session bus");
}
