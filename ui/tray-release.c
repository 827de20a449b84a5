/* The Release… dialog: a job (given, or picked when opened from the menu),
 * a printer (discovered, GET /v1/printers, or typed as a URI), copies within
 * the printer's range, colour or black and white only when it prints colour,
 * both sides only when it can; then POST /v1/jobs/{id}/release, and the
 * release's progress (GET /v1/releases/{id} after each of kcpsd's events). */
#define G_LOG_DOMAIN "kcps-tray"

#include <glib/gi18n-lib.h>
#include <string.h>

#include "ui/tray-client.h"
#include "ui/tray-job.h"
#include "ui/tray-jobs.h"

typedef struct release_ui_s {
  KcpsTrayApp *app;
  char *job_id;           /* given, or NULL: picked in jobs */
  GPtrArray *job_ids;     /* the jobs offered when picked */
  GtkWidget *jobs;        /* GtkDropDown, or NULL */
  GPtrArray *printers;    /* kcps_tray_printer_t, from kcpsd */
  GtkWidget *printer;     /* GtkDropDown of printers */
  GtkWidget *uri;         /* GtkEntry */
  GtkWidget *copies;      /* GtkSpinButton */
  GtkWidget *color_row, *color; /* GtkDropDown: colour / black and white */
  GtkWidget *duplex;      /* GtkCheckButton */
  GtkWidget *status;
  GtkWidget *progress;
  GtkWidget *release_button;
  GCancellable *cancellable; /* the dialog's calls */
  GCancellable *caps_call;   /* the capabilities asked last */
  bool started;
  bool quiet; /* the printer list is being filled: no pick */
  guint printers_listed; /* answers of GET /v1/printers so far (test state) */
} release_ui_t;

static void release_ui_free(release_ui_t *ui)
{
  g_cancellable_cancel(ui->cancellable);
  g_clear_object(&ui->cancellable);
  if (ui->caps_call != NULL)
    g_cancellable_cancel(ui->caps_call);
  g_clear_object(&ui->caps_call);
  g_free(ui->job_id);
  g_clear_pointer(&ui->job_ids, g_ptr_array_unref);
  g_clear_pointer(&ui->printers, g_ptr_array_unref);
  g_free(ui);
}

static release_ui_t *dialog_ui(KcpsTrayApp *app)
{
  kcps__jobs_state_t *st = kcps__tray_jobs_state(app);
  return st->release != NULL ? g_object_get_data(G_OBJECT(st->release), "ui") : NULL;
}

static const char *chosen_job(release_ui_t *ui)
{
  if (ui->job_id != NULL)
    return ui->job_id;
  guint i = ui->jobs != NULL ? gtk_drop_down_get_selected(GTK_DROP_DOWN(ui->jobs))
                             : GTK_INVALID_LIST_POSITION;
  return ui->job_ids != NULL && i < ui->job_ids->len ? g_ptr_array_index(ui->job_ids, i) : NULL;
}

static void update_sensitive(release_ui_t *ui)
{
  bool ok = !ui->started && chosen_job(ui) != NULL &&
            kcps_tray_printer_uri_ok(gtk_editable_get_text(GTK_EDITABLE(ui->uri)));
  gtk_widget_set_sensitive(ui->release_button, ok);
}

/* The controls for caps (NULL: unknown); remembered for the tests as
 * "color=0 duplex=1 copies=1-99". */
static void apply_controls(release_ui_t *ui, const kcps_tray_caps_t *caps)
{
  kcps_tray_release_controls_t c;
  kcps_tray_release_controls(caps, &c);
  gtk_widget_set_visible(ui->color_row, c.show_color);
  gtk_widget_set_visible(ui->duplex, c.show_duplex);
  if (!c.show_duplex)
    gtk_check_button_set_active(GTK_CHECK_BUTTON(ui->duplex), FALSE);
  gtk_spin_button_set_range(GTK_SPIN_BUTTON(ui->copies), c.copies_min, c.copies_max);
  g_autofree char *text = g_strdup_printf("color=%d duplex=%d copies=%d-%d", c.show_color,
                                          c.show_duplex, c.copies_min, c.copies_max);
  kcps__jobs_state_t *st = kcps__tray_jobs_state(ui->app);
  g_object_set_data_full(G_OBJECT(st->release), "controls", g_steal_pointer(&text), g_free);
  g_object_set_data(G_OBJECT(st->release), "ready", caps != NULL ? GINT_TO_POINTER(1) : NULL);
  kcps__tray_state_changed(ui->app);
}

static void caps_done(GObject *source, GAsyncResult *result, gpointer data)
{
  (void)source;
  GCancellable *call = data;
  g_autoptr(kcps_tray_reply_t) reply = kcps_tray_call_finish(result);
  bool cancelled = g_cancellable_is_cancelled(call);
  release_ui_t *ui = g_object_get_data(G_OBJECT(call), "ui");
  g_object_unref(call);
  if (cancelled)
    return;
  kcps_tray_caps_t caps;
  if (reply->status == 200 && kcps_tray_caps_parse(reply->body, &caps, NULL)) {
    apply_controls(ui, &caps);
    gtk_label_set_text(GTK_LABEL(ui->status), "");
    GObject *window = G_OBJECT(kcps__tray_jobs_state(ui->app)->release);
    if (g_object_get_data(window, "submit") != NULL) {
      g_object_set_data(window, "submit", NULL);
      gtk_widget_activate(ui->release_button);
    }
  } else {
    apply_controls(ui, NULL);
    gtk_label_set_text(GTK_LABEL(ui->status),
                       reply->status == 0 ? _("The KCPS service is not running.")
                                          : _("The printer does not answer."));
  }
}

/* Asks kcpsd what the printer at the typed URI can do. */
static void ask_caps(release_ui_t *ui)
{
  if (ui->caps_call != NULL)
    g_cancellable_cancel(ui->caps_call);
  g_clear_object(&ui->caps_call);
  const char *uri = gtk_editable_get_text(GTK_EDITABLE(ui->uri));
  update_sensitive(ui);
  if (!kcps_tray_printer_uri_ok(uri)) {
    apply_controls(ui, NULL);
    return;
  }
  gtk_label_set_text(GTK_LABEL(ui->status), _("Asking the printer what it can do…"));
  ui->caps_call = g_cancellable_new();
  g_object_set_data(G_OBJECT(ui->caps_call), "ui", ui);
  g_autofree char *escaped = g_uri_escape_string(uri, NULL, FALSE);
  g_autofree char *path = g_strdup_printf("/v1/printers?uri=%s", escaped);
  kcps_tray_call_async(ui->app->port, "GET", path, NULL, ui->caps_call, caps_done,
                       g_object_ref(ui->caps_call));
}

static void printer_picked(GObject *drop, GParamSpec *pspec, gpointer data)
{
  (void)pspec;
  release_ui_t *ui = data;
  guint i = gtk_drop_down_get_selected(GTK_DROP_DOWN(drop));
  if (ui->quiet || ui->printers == NULL || i >= ui->printers->len)
    return;
  kcps_tray_printer_t *printer = g_ptr_array_index(ui->printers, i);
  gtk_editable_set_text(GTK_EDITABLE(ui->uri), printer->uri);
  ask_caps(ui);
}

static void printers_done(GObject *source, GAsyncResult *result, gpointer data)
{
  (void)source;
  GCancellable *cancellable = data;
  g_autoptr(kcps_tray_reply_t) reply = kcps_tray_call_finish(result);
  bool cancelled = g_cancellable_is_cancelled(cancellable);
  release_ui_t *ui = g_object_get_data(G_OBJECT(cancellable), "ui");
  g_object_unref(cancellable);
  if (cancelled)
    return;
  GPtrArray *printers = reply->status == 200 ? kcps_tray_printers_parse(reply->body, NULL)
                                             : NULL;
  g_clear_pointer(&ui->printers, g_ptr_array_unref);
  ui->printers_listed++;
  if (printers == NULL || printers->len == 0) {
    g_clear_pointer(&printers, g_ptr_array_unref);
    ui->quiet = true;
    gtk_drop_down_set_model(GTK_DROP_DOWN(ui->printer), NULL);
    ui->quiet = false;
    gtk_widget_set_sensitive(ui->printer, FALSE);
    return;
  }
  ui->printers = printers;
  GtkStringList *names = gtk_string_list_new(NULL);
  for (guint i = 0; i < printers->len; i++)
    gtk_string_list_append(names, ((kcps_tray_printer_t *)g_ptr_array_index(printers, i))->name);
  /* A printer already typed (or picked) stays: the list does not pick one
   * over it, and shows it when it is in the list. */
  const char *current = gtk_editable_get_text(GTK_EDITABLE(ui->uri));
  bool typed = *current != '\0';
  guint selected = kcps_tray_default_printer_index(printers);
  for (guint i = 0; typed && i < printers->len; i++)
    if (g_strcmp0(((kcps_tray_printer_t *)g_ptr_array_index(printers, i))->uri, current) == 0)
      selected = i;
  ui->quiet = true;
  gtk_drop_down_set_model(GTK_DROP_DOWN(ui->printer), G_LIST_MODEL(names));
  gtk_drop_down_set_selected(GTK_DROP_DOWN(ui->printer), selected);
  ui->quiet = false;
  g_object_unref(names);
  gtk_widget_set_sensitive(ui->printer, TRUE);
  if (!typed)
    printer_picked(G_OBJECT(ui->printer), NULL, ui);
}

static void uri_changed(GtkEditable *editable, gpointer data)
{
  (void)editable;
  update_sensitive(data);
}

static void uri_activated(GtkEntry *entry, gpointer data)
{
  (void)entry;
  ask_caps(data);
}

/* --- releasing ------------------------------------------------------------ */

static void show_release(release_ui_t *ui, const char *state, const char *message)
{
  double fraction = kcps_tray_release_fraction(state);
  gtk_progress_bar_set_fraction(GTK_PROGRESS_BAR(ui->progress), MAX(fraction, 0));
  const char *label = kcps_tray_release_label(state);
  gtk_progress_bar_set_text(GTK_PROGRESS_BAR(ui->progress), label);
  gtk_widget_set_visible(ui->progress, TRUE);
  kcps__tray_set_label(ui->progress, label != NULL ? label : "");
  gtk_label_set_text(GTK_LABEL(ui->status),
                     message != NULL && !kcps_tray_release_running(state) &&
                         g_strcmp0(state, "completed") != 0 ? message : "");
}

static void set_release(KcpsTrayApp *app, const char *id, const char *state, const char *message)
{
  kcps__jobs_state_t *st = kcps__tray_jobs_state(app);
  if (id != NULL && g_strcmp0(st->release_id, id) != 0) {
    g_free(st->release_id);
    st->release_id = g_strdup(id);
  }
  g_free(st->release_state);
  st->release_state = g_strdup(state);
  g_free(st->release_message);
  st->release_message = g_strdup(message);
  release_ui_t *ui = dialog_ui(app);
  if (ui != NULL && ui->started)
    show_release(ui, state, message);
  g_info("release %s: %s", st->release_id, state);
}

static void post_done(GObject *source, GAsyncResult *result, gpointer data)
{
  (void)source;
  KcpsTrayApp *app = data;
  g_autoptr(kcps_tray_reply_t) reply = kcps_tray_call_finish(result);
  g_autofree char *id = NULL, *state = NULL, *message = NULL;
  if (reply->status == 202 && kcps_tray_release_parse(reply->body, &id, &state, &message)) {
    kcps__tray_jobs_state(app)->releases_started++;
    set_release(app, id, state, message);
  } else {
    release_ui_t *ui = dialog_ui(app);
    const char *why = reply->status == 0 ? _("The KCPS service is not running.")
                      : reply->status == 409 ? _("The job was printed already, or is printing.")
                      : reply->status == 404 ? _("The job is gone.")
                                             : _("The KCPS service refused the release.");
    g_warning("release refused (HTTP %ld)", reply->status);
    if (ui != NULL) {
      ui->started = false;
      gtk_label_set_text(GTK_LABEL(ui->status), why);
      update_sensitive(ui);
    }
  }
  kcps__tray_refresh(app);
  g_application_release(G_APPLICATION(app));
}

static void release_clicked(GtkButton *button, gpointer data)
{
  (void)button;
  release_ui_t *ui = data;
  const char *job = chosen_job(ui);
  const char *uri = gtk_editable_get_text(GTK_EDITABLE(ui->uri));
  if (job == NULL || !kcps_tray_printer_uri_ok(uri) || ui->started)
    return;
  int color = -1;
  if (gtk_widget_get_visible(ui->color_row))
    color = gtk_drop_down_get_selected(GTK_DROP_DOWN(ui->color)) == 0 ? 1 : 0;
  bool duplex = gtk_widget_get_visible(ui->duplex) &&
                gtk_check_button_get_active(GTK_CHECK_BUTTON(ui->duplex));
  int copies = gtk_spin_button_get_value_as_int(GTK_SPIN_BUTTON(ui->copies));
  g_autoptr(JsonNode) body = kcps_tray_release_body(uri, copies, color, duplex);
  g_autofree char *escaped = g_uri_escape_string(job, NULL, FALSE);
  g_autofree char *path = g_strdup_printf("/v1/jobs/%s/release", escaped);
  ui->started = true;
  update_sensitive(ui);
  show_release(ui, "pending", NULL);
  g_application_hold(G_APPLICATION(ui->app));
  kcps_tray_call_async(ui->app->port, "POST", path, body, NULL, post_done, ui->app);
}

static void poll_done(GObject *source, GAsyncResult *result, gpointer data)
{
  (void)source;
  KcpsTrayApp *app = data;
  g_autoptr(kcps_tray_reply_t) reply = kcps_tray_call_finish(result);
  kcps__jobs_state_t *st = kcps__tray_jobs_state(app);
  g_clear_object(&st->release_poll);
  g_autofree char *id = NULL, *state = NULL, *message = NULL;
  if (reply->status == 200 && kcps_tray_release_parse(reply->body, &id, &state, &message) &&
      g_strcmp0(id, st->release_id) == 0 && g_strcmp0(state, st->release_state) != 0) {
    set_release(app, id, state, message);
    kcps__tray_state_changed(app);
  }
  g_application_release(G_APPLICATION(app));
}

void kcps__tray_release_update(KcpsTrayApp *app)
{
  kcps__jobs_state_t *st = kcps__tray_jobs_state(app);
  /* Called after each refresh (kcpsd's events start them): the running
   * release is asked for again, one call at a time. */
  if (st == NULL || st->release_id == NULL || st->release_poll != NULL ||
      !kcps_tray_release_running(st->release_state))
    return;
  st->release_poll = g_cancellable_new();
  g_autofree char *escaped = g_uri_escape_string(st->release_id, NULL, FALSE);
  g_autofree char *path = g_strdup_printf("/v1/releases/%s", escaped);
  g_application_hold(G_APPLICATION(app));
  kcps_tray_call_async(app->port, "GET", path, NULL, st->release_poll, poll_done, app);
}

/* --- the dialog ------------------------------------------------------------- */

static void dialog_destroyed(GtkWidget *window, gpointer data)
{
  (void)window;
  KcpsTrayApp *app = data;
  kcps__tray_jobs_state(app)->release = NULL;
  kcps__tray_state_changed(app);
}

static GtkWidget *row_label(GtkGrid *grid, int row, const char *text, GtkWidget *widget)
{
  GtkWidget *label = kcps__tray_label_for(text, widget);
  gtk_label_set_xalign(GTK_LABEL(label), 1);
  gtk_grid_attach(grid, label, 0, row, 1, 1);
  gtk_widget_set_hexpand(widget, TRUE);
  gtk_grid_attach(grid, widget, 1, row, 1, 1);
  return label;
}

void kcps__tray_release_dialog(KcpsTrayApp *app, const char *job_id)
{
  kcps__jobs_state_t *st = kcps__tray_jobs_state(app);
  if (st->release != NULL)
    gtk_window_destroy(st->release);
  release_ui_t *ui = g_new0(release_ui_t, 1);
  ui->app = app;
  ui->cancellable = g_cancellable_new();
  /* The job: the one given, or those that can be released. */
  GtkStringList *job_names = gtk_string_list_new(NULL);
  ui->job_ids = g_ptr_array_new_with_free_func(g_free);
  const char *given_name = NULL;
  GListModel *jobs = G_LIST_MODEL(app->jobs);
  for (guint i = 0; i < g_list_model_get_n_items(jobs); i++) {
    g_autoptr(KcpsTrayJob) job = g_list_model_get_item(jobs, i);
    if (job_id != NULL && g_strcmp0(kcps_tray_job_get_id(job), job_id) == 0)
      given_name = kcps_tray_job_get_name(job); /* the store holds it */
    if (job_id == NULL && kcps_tray_job_get_releasable(job)) {
      g_ptr_array_add(ui->job_ids, g_strdup(kcps_tray_job_get_id(job)));
      gtk_string_list_append(job_names, kcps_tray_job_get_name(job));
    }
  }
  ui->job_id = given_name != NULL ? g_strdup(job_id) : NULL;

  GtkWindow *window = GTK_WINDOW(gtk_window_new());
  gtk_window_set_title(window, _("Print a Job"));
  gtk_window_set_application(window, GTK_APPLICATION(app));
  if (app->jobs_window != NULL && gtk_widget_get_visible(GTK_WIDGET(app->jobs_window)))
    gtk_window_set_transient_for(window, app->jobs_window);
  gtk_window_set_destroy_with_parent(window, TRUE);
  gtk_window_set_default_size(window, 460, -1);
  g_object_set_data(G_OBJECT(window), "kcps-name", (gpointer)"release");
  g_object_set_data_full(G_OBJECT(window), "ui", ui, (GDestroyNotify)release_ui_free);
  st->release = window;

  GtkWidget *grid = gtk_grid_new();
  gtk_grid_set_row_spacing(GTK_GRID(grid), 8);
  gtk_grid_set_column_spacing(GTK_GRID(grid), 12);
  gtk_widget_set_margin_start(grid, 18);
  gtk_widget_set_margin_end(grid, 18);
  gtk_widget_set_margin_top(grid, 18);
  gtk_widget_set_margin_bottom(grid, 18);
  int row = 0;
  if (ui->job_id != NULL) {
    GtkWidget *name = gtk_label_new(given_name);
    gtk_label_set_xalign(GTK_LABEL(name), 0);
    gtk_label_set_ellipsize(GTK_LABEL(name), PANGO_ELLIPSIZE_MIDDLE);
    gtk_label_set_selectable(GTK_LABEL(name), FALSE);
    row_label(GTK_GRID(grid), row++, _("Job:"), name);
    g_object_unref(job_names);
  } else {
    ui->jobs = gtk_drop_down_new(G_LIST_MODEL(job_names), NULL);
    row_label(GTK_GRID(grid), row++, _("_Job:"), ui->jobs);
    g_signal_connect_swapped(ui->jobs, "notify::selected", G_CALLBACK(update_sensitive), ui);
  }
  ui->printer = gtk_drop_down_new(NULL, NULL);
  gtk_widget_set_sensitive(ui->printer, FALSE);
  row_label(GTK_GRID(grid), row++, _("_Printer:"), ui->printer);
  g_signal_connect(ui->printer, "notify::selected", G_CALLBACK(printer_picked), ui);
  ui->uri = gtk_entry_new();
  gtk_entry_set_placeholder_text(GTK_ENTRY(ui->uri), "ipp://printer.local/ipp/print");
  gtk_entry_set_input_purpose(GTK_ENTRY(ui->uri), GTK_INPUT_PURPOSE_URL);
  row_label(GTK_GRID(grid), row++, _("Printer _address:"), ui->uri);
  g_signal_connect(ui->uri, "changed", G_CALLBACK(uri_changed), ui);
  g_signal_connect(ui->uri, "activate", G_CALLBACK(uri_activated), ui);
  ui->copies = gtk_spin_button_new_with_range(1, KCPS_TRAY_COPIES_MAX, 1);
  row_label(GTK_GRID(grid), row++, _("_Copies:"), ui->copies);
  const char *const colors[] = {_("Colour"), _("Black and white"), NULL};
  ui->color = gtk_drop_down_new_from_strings(colors);
  GtkWidget *color_label = row_label(GTK_GRID(grid), row++, _("C_olour:"), ui->color);
  ui->color_row = ui->color;
  g_object_bind_property(ui->color, "visible", color_label, "visible", G_BINDING_SYNC_CREATE);
  ui->duplex = gtk_check_button_new_with_mnemonic(_("Print on _both sides"));
  gtk_grid_attach(GTK_GRID(grid), ui->duplex, 1, row++, 1, 1);
  ui->progress = gtk_progress_bar_new();
  gtk_progress_bar_set_show_text(GTK_PROGRESS_BAR(ui->progress), TRUE);
  gtk_widget_set_visible(ui->progress, FALSE);
  gtk_grid_attach(GTK_GRID(grid), ui->progress, 0, row++, 2, 1);
  ui->status = g_object_new(GTK_TYPE_LABEL, "accessible-role", GTK_ACCESSIBLE_ROLE_STATUS, NULL);
  gtk_label_set_wrap(GTK_LABEL(ui->status), TRUE);
  gtk_label_set_xalign(GTK_LABEL(ui->status), 0);
  gtk_grid_attach(GTK_GRID(grid), ui->status, 0, row++, 2, 1);

  GtkWidget *buttons = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 6);
  gtk_widget_set_halign(buttons, GTK_ALIGN_END);
  GtkWidget *close = kcps__tray_mnemonic_button(_("_Close"));
  g_signal_connect_swapped(close, "clicked", G_CALLBACK(gtk_window_destroy), window);
  ui->release_button = kcps__tray_mnemonic_button(_("_Print"));
  gtk_widget_add_css_class(ui->release_button, "suggested-action");
  g_signal_connect(ui->release_button, "clicked", G_CALLBACK(release_clicked), ui);
  gtk_box_append(GTK_BOX(buttons), close);
  gtk_box_append(GTK_BOX(buttons), ui->release_button);
  gtk_grid_attach(GTK_GRID(grid), buttons, 0, row++, 2, 1);
  gtk_window_set_child(window, grid);
  gtk_window_set_default_widget(window, ui->release_button);
  /* Escape closes. */
  GtkShortcutController *shortcuts = GTK_SHORTCUT_CONTROLLER(gtk_shortcut_controller_new());
  gtk_shortcut_controller_set_scope(shortcuts, GTK_SHORTCUT_SCOPE_MANAGED);
  gtk_shortcut_controller_add_shortcut(
    shortcuts, gtk_shortcut_new(gtk_keyval_trigger_new(GDK_KEY_Escape, 0),
                                gtk_named_action_new("window.close")));
  gtk_widget_add_controller(GTK_WIDGET(window), GTK_EVENT_CONTROLLER(shortcuts));
  g_signal_connect(window, "destroy", G_CALLBACK(dialog_destroyed), app);

  apply_controls(ui, NULL);
  g_object_set_data(G_OBJECT(window), "ready", NULL);
  update_sensitive(ui);
  GCancellable *call = g_object_ref(ui->cancellable);
  g_object_set_data(G_OBJECT(call), "ui", ui);
  kcps_tray_call_async(app->port, "GET", "/v1/printers", NULL, call, printers_done, call);
  gtk_window_present(window);
  kcps__tray_state_changed(app);
}

void kcps__tray_release_printers_changed(KcpsTrayApp *app)
{
  release_ui_t *ui = dialog_ui(app);
  if (ui == NULL)
    return;
  GCancellable *call = g_object_ref(ui->cancellable);
  g_object_set_data(G_OBJECT(call), "ui", ui);
  kcps_tray_call_async(app->port, "GET", "/v1/printers", NULL, call, printers_done, call);
}

guint kcps__tray_release_printers_listed(KcpsTrayApp *app, guint *count)
{
  release_ui_t *ui = dialog_ui(app);
  *count = ui != NULL && ui->printers != NULL ? ui->printers->len : 0;
  return ui != NULL ? ui->printers_listed : 0;
}

void kcps__tray_release_submit(KcpsTrayApp *app, const char *uri)
{
  release_ui_t *ui = dialog_ui(app);
  if (ui == NULL)
    return;
  gtk_editable_set_text(GTK_EDITABLE(ui->uri), uri);
  ask_caps(ui);
  /* Pressed once the printer answered (the controls follow it first). */
  g_object_set_data(G_OBJECT(kcps__tray_jobs_state(app)->release), "submit", GINT_TO_POINTER(1));
}
