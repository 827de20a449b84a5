/* bench-tray-list: how long the tray's jobs list takes to show 1,000 jobs —
 * from kcpsd's parsed answer to the first frame drawn with them: the rows'
 * texts formatted (KcpsTrayJob), one g_list_store_splice (one items-changed,
 * counted), and GTK's GtkListView laying out the visible rows. The anchor is
 * GTK's own listing of 1,000 plain strings (GtkStringList, one splice, one
 * label a row) in the same window. Median of 7 rounds each.
 * Needs a display (make bench runs it under xvfb-run).
 * Prints: bench: tray-list-1000-ms ours=N anchor=N ratio=R goal=<100 (...) */
#include <gtk/gtk.h>
#include <stdio.h>
#include <stdlib.h>

#include "ui/tray-job.h"

#define JOBS 1000
#define ROUNDS 7

typedef struct {
  GtkWidget *window;
  gint64 painted;    /* when the last frame was drawn */
  guint changes;     /* items-changed emissions of the store */
} bench_t;

static void after_paint(GdkFrameClock *clock, gpointer data)
{
  (void)clock;
  ((bench_t *)data)->painted = g_get_monotonic_time();
}

static void on_items_changed(GListModel *model, guint pos, guint removed, guint added,
                             gpointer data)
{
  (void)model, (void)pos, (void)removed, (void)added;
  ((bench_t *)data)->changes++;
}

/* Runs the main loop until a frame has been drawn after since. */
static void wait_frame(bench_t *b, gint64 since)
{
  gtk_widget_queue_draw(b->window);
  while (b->painted <= since)
    g_main_context_iteration(NULL, TRUE);
}

static void job_setup(GtkSignalListItemFactory *f, GtkListItem *item, gpointer data)
{
  (void)f, (void)data;
  /* The tray's row: name and details over each other, the state beside. */
  GtkWidget *row = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 12);
  GtkWidget *texts = gtk_box_new(GTK_ORIENTATION_VERTICAL, 2);
  gtk_widget_set_hexpand(texts, TRUE);
  GtkWidget *name = gtk_label_new(NULL), *details = gtk_label_new(NULL);
  GtkWidget *state = gtk_label_new(NULL);
  gtk_label_set_ellipsize(GTK_LABEL(name), PANGO_ELLIPSIZE_MIDDLE);
  gtk_box_append(GTK_BOX(texts), name);
  gtk_box_append(GTK_BOX(texts), details);
  gtk_box_append(GTK_BOX(row), texts);
  gtk_box_append(GTK_BOX(row), state);
  g_object_set_data(G_OBJECT(row), "name", name);
  g_object_set_data(G_OBJECT(row), "details", details);
  g_object_set_data(G_OBJECT(row), "state", state);
  gtk_list_item_set_child(item, row);
}

static void job_bind(GtkSignalListItemFactory *f, GtkListItem *item, gpointer data)
{
  (void)f, (void)data;
  KcpsTrayJob *job = gtk_list_item_get_item(item);
  GtkWidget *row = gtk_list_item_get_child(item);
  gtk_label_set_text(g_object_get_data(G_OBJECT(row), "name"), kcps_tray_job_get_name(job));
  gtk_label_set_text(g_object_get_data(G_OBJECT(row), "details"), kcps_tray_job_get_details(job));
  gtk_label_set_text(g_object_get_data(G_OBJECT(row), "state"),
                     kcps_tray_job_get_state_label(job));
  gtk_accessible_update_property(GTK_ACCESSIBLE(row), GTK_ACCESSIBLE_PROPERTY_LABEL,
                                 kcps_tray_job_get_summary(job), -1);
}

static void string_setup(GtkSignalListItemFactory *f, GtkListItem *item, gpointer data)
{
  (void)f, (void)data;
  gtk_list_item_set_child(item, gtk_label_new(NULL));
}

static void string_bind(GtkSignalListItemFactory *f, GtkListItem *item, gpointer data)
{
  (void)f, (void)data;
  gtk_label_set_text(GTK_LABEL(gtk_list_item_get_child(item)),
                     gtk_string_object_get_string(gtk_list_item_get_item(item)));
}

static GtkWidget *list_view(GListModel *model, GCallback setup, GCallback bind)
{
  GtkListItemFactory *factory = gtk_signal_list_item_factory_new();
  g_signal_connect(factory, "setup", setup, NULL);
  g_signal_connect(factory, "bind", bind, NULL);
  GtkWidget *scroll = gtk_scrolled_window_new();
  gtk_scrolled_window_set_child(
    GTK_SCROLLED_WINDOW(scroll),
    gtk_list_view_new(GTK_SELECTION_MODEL(gtk_no_selection_new(g_object_ref(model))), factory));
  return scroll;
}

static int compare(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(void)
{
  if (!gtk_init_check()) {
    printf("bench: tray-list-1000-ms skipped (no display)\n");
    return 0;
  }
  bench_t b = {0};
  b.window = gtk_window_new();
  gtk_window_set_default_size(GTK_WINDOW(b.window), 640, 420);
  gtk_window_present(GTK_WINDOW(b.window));
  while (!gtk_widget_get_mapped(b.window))
    g_main_context_iteration(NULL, TRUE);
  g_signal_connect(gtk_widget_get_frame_clock(b.window), "after-paint", G_CALLBACK(after_paint),
                   &b);

  /* What kcpsd's answer parses to: 1,000 jobs. */
  g_autoptr(GPtrArray) infos = g_ptr_array_new_with_free_func(
    (GDestroyNotify)kcps_tray_job_info_free);
  gint64 now_s = g_get_real_time() / G_USEC_PER_SEC;
  for (int i = 0; i < JOBS; i++) {
    kcps_tray_job_info_t *info = g_new0(kcps_tray_job_info_t, 1);
    info->id = g_strdup_printf("%032x", i);
    info->name = g_strdup_printf("Quarterly report %d.pdf", i);
    info->state = g_strdup(i % 3 == 0 ? "printed" : "registered");
    info->pages = 1 + i % 40;
    info->size = 20000 + i * 997;
    info->created = now_s - i * 600;
    g_ptr_array_add(infos, info);
  }
  g_autofree char **strings = g_new0(char *, JOBS + 1);
  for (int i = 0; i < JOBS; i++)
    strings[i] = ((kcps_tray_job_info_t *)g_ptr_array_index(infos, i))->name;

  double ours[ROUNDS], anchor[ROUNDS];
  guint changes_per_update = 0;
  for (int r = 0; r < ROUNDS; r++) {
    /* Ours: format, splice once, draw. */
    GListStore *store = g_list_store_new(KCPS_TYPE_TRAY_JOB);
    g_signal_connect(store, "items-changed", G_CALLBACK(on_items_changed), &b);
    gtk_window_set_child(GTK_WINDOW(b.window),
                         list_view(G_LIST_MODEL(store), G_CALLBACK(job_setup), G_CALLBACK(job_bind)));
    wait_frame(&b, g_get_monotonic_time());
    b.changes = 0;
    gint64 t0 = g_get_monotonic_time();
    g_autoptr(GDateTime) now = g_date_time_new_now_local();
    g_autoptr(GPtrArray) items = g_ptr_array_new_with_free_func(g_object_unref);
    for (guint i = 0; i < infos->len; i++)
      g_ptr_array_add(items, kcps_tray_job_new(g_ptr_array_index(infos, i), now));
    g_list_store_splice(store, 0, 0, items->pdata, items->len);
    wait_frame(&b, t0);
    ours[r] = (double)(b.painted - t0) / 1000.0;
    changes_per_update = b.changes;
    g_object_unref(store);

    /* Anchor: GTK's listing of the same names as plain strings. */
    GtkStringList *list = gtk_string_list_new(NULL);
    gtk_window_set_child(GTK_WINDOW(b.window), list_view(G_LIST_MODEL(list),
                                                         G_CALLBACK(string_setup),
                                                         G_CALLBACK(string_bind)));
    wait_frame(&b, g_get_monotonic_time());
    t0 = g_get_monotonic_time();
    gtk_string_list_splice(list, 0, 0, (const char *const *)strings);
    wait_frame(&b, t0);
    anchor[r] = (double)(b.painted - t0) / 1000.0;
    g_object_unref(list);
  }
  qsort(ours, ROUNDS, sizeof(double), compare);
  qsort(anchor, ROUNDS, sizeof(double), compare);
  /* Goal: the first frame of 1,000 jobs within 100 ms (fluid to a person);
   * the anchor is GTK's own list of 1,000 plain strings. */
  double o = ours[ROUNDS / 2], a = anchor[ROUNDS / 2];
  printf("bench: tray-list-1000-ms ours=%.1f anchor=%.1f ratio=%.2f goal=<100%s "
         "(anchor: GtkStringList of 1,000 strings; items-changed=%u)\n",
         o, a, a > 0 ? o / a : 0.0, o < 100.0 ? "" : " (over goal)", changes_per_update);
  gtk_window_destroy(GTK_WINDOW(b.window));
  return changes_per_update == 1 ? 0 : 1;
}
