/* Pages of jobs as pictures (see tray-thumb.h). */
#define G_LOG_DOMAIN "kcps-tray"

#include "ui/tray-thumb.h"

#include <errno.h>
#include <fcntl.h>
#include <poppler.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include "common/http-client.h"

/* A thumbnail is never taller than this many times its width (a
 * receipt-roll page would be a sliver otherwise), nor a page wider than
 * this. */
#define MAX_ASPECT 4
#define MAX_WIDTH 2048
/* Documents above this are not drawn (their first page would be, but the
 * whole file is read first). */
#define MAX_DOCUMENT (512 * 1024 * 1024)
/* The previewed document is kept (in memory) up to this size, so that
 * turning its pages does not fetch it again. */
#define MAX_KEPT (64 * 1024 * 1024)

struct kcps_tray_thumbs_s {
  gatomicrefcount refs;
  int port;
  char *file; /* set_file */
  GThreadPool *pool;
  GMutex lock;     /* counters and seq, from the workers */
  guint64 seq;     /* requests so far: the newest runs first */
  guint rendered;
  guint skipped;
  guint fetched;   /* documents read from kcpsd */
  /* The document kept for the preview (keep_document): its job and size,
   * and its memfd, -1 until fetched. Under lock. */
  char *kept_job;
  gint64 kept_size;
  int kept_fd;
  guint pending; /* main thread: requests not yet delivered */
  /* The cache (main thread only). */
  guint cache_cap;
  GHashTable *cache; /* key -> GList link in order (data: entry_t) */
  GQueue order;      /* most recent at the head */
};

typedef struct entry_s {
  char *key;
  GdkTexture *texture;
} entry_t;

typedef struct request_s {
  kcps_tray_thumbs_t *thumbs; /* a reference */
  guint64 seq;
  char *job_id;
  gint64 size;
  int page;
  int width;
  bool cache;
  GCancellable *cancellable;
  kcps_tray_thumb_cb_t cb;
  gpointer data;
  /* The result (worker -> main). */
  GBytes *pixels;
  int w, h, stride;
  int n_pages;
} request_t;

static kcps_tray_thumbs_t *thumbs_ref(kcps_tray_thumbs_t *thumbs)
{
  g_atomic_ref_count_inc(&thumbs->refs);
  return thumbs;
}

static void entry_free(entry_t *entry)
{
  g_free(entry->key);
  g_clear_object(&entry->texture);
  g_free(entry);
}

static void thumbs_unref(kcps_tray_thumbs_t *thumbs)
{
  if (!g_atomic_ref_count_dec(&thumbs->refs))
    return;
  g_hash_table_destroy(thumbs->cache);
  g_queue_clear_full(&thumbs->order, (GDestroyNotify)entry_free);
  g_mutex_clear(&thumbs->lock);
  g_free(thumbs->file);
  g_free(thumbs->kept_job);
  if (thumbs->kept_fd >= 0)
    close(thumbs->kept_fd);
  g_free(thumbs);
}

static void request_free(request_t *r)
{
  thumbs_unref(r->thumbs);
  g_free(r->job_id);
  g_clear_object(&r->cancellable);
  g_clear_pointer(&r->pixels, g_bytes_unref);
  g_free(r);
}

static char *cache_key(const char *job_id, gint64 size, int page, int width)
{
  return g_strdup_printf("%s/%" G_GINT64_FORMAT "/%d/%d", job_id, size, page, width);
}

/* --- on a worker ------------------------------------------------------------ */

/* A descriptor of its own (own offset) on the kept document, or -1. */
static int kept_open(kcps_tray_thumbs_t *thumbs, const request_t *r)
{
  int fd = -1;
  g_mutex_lock(&thumbs->lock);
  if (thumbs->kept_fd >= 0 && g_strcmp0(thumbs->kept_job, r->job_id) == 0 &&
      thumbs->kept_size == r->size) {
    g_autofree char *self = g_strdup_printf("/proc/self/fd/%d", thumbs->kept_fd);
    fd = open(self, O_RDONLY | O_CLOEXEC);
  }
  g_mutex_unlock(&thumbs->lock);
  return fd;
}

/* Keeps fd's document when it is the one to keep and small enough. */
static void kept_put(kcps_tray_thumbs_t *thumbs, const request_t *r, int fd, off_t length)
{
  g_mutex_lock(&thumbs->lock);
  if (thumbs->kept_fd < 0 && length <= MAX_KEPT && g_strcmp0(thumbs->kept_job, r->job_id) == 0 &&
      thumbs->kept_size == r->size)
    thumbs->kept_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  g_mutex_unlock(&thumbs->lock);
}

/* The job's document as a readable file descriptor (a memfd: nothing of it
 * reaches a disk), or -1. */
static int fetch_document(request_t *r)
{
  kcps_tray_thumbs_t *thumbs = r->thumbs;
  if (thumbs->file != NULL)
    return open(thumbs->file, O_RDONLY | O_CLOEXEC);
  int kept = kept_open(thumbs, r);
  if (kept >= 0)
    return kept;
  g_mutex_lock(&thumbs->lock);
  thumbs->fetched++;
  g_mutex_unlock(&thumbs->lock);
  int fd = memfd_create("kcps-tray-document", MFD_CLOEXEC);
  if (fd < 0)
    return -1;
  g_autofree char *escaped = g_uri_escape_string(r->job_id, NULL, FALSE);
  g_autofree char *url =
    g_strdup_printf("http://127.0.0.1:%d/v1/jobs/%s/document", thumbs->port, escaped);
  kcps_http_opts_t opts = {.timeout_s = 60};
  long status = 0;
  g_autoptr(GError) error = NULL;
  off_t length = -1;
  if (kcps_http_download(url, &opts, fd, &status, &error) != KCPS_NET_OK || status != 200 ||
      (length = lseek(fd, 0, SEEK_END)) > MAX_DOCUMENT || lseek(fd, 0, SEEK_SET) != 0) {
    g_debug("no document for job %s (HTTP %ld)", r->job_id, status);
    close(fd);
    return -1;
  }
  kept_put(thumbs, r, fd, length);
  return fd;
}

static void render(request_t *r)
{
  int fd = fetch_document(r);
  if (fd < 0 || g_cancellable_is_cancelled(r->cancellable)) {
    if (fd >= 0)
      close(fd);
    return;
  }
  g_autoptr(GError) error = NULL;
  /* poppler takes the descriptor. */
  PopplerDocument *doc = poppler_document_new_from_fd(fd, NULL, &error);
  if (doc == NULL) {
    g_debug("job %s is not a PDF poppler reads: %s", r->job_id, error->message);
    return;
  }
  r->n_pages = poppler_document_get_n_pages(doc);
  PopplerPage *page = r->page >= 0 && r->page < r->n_pages
                        ? poppler_document_get_page(doc, r->page) : NULL;
  double pw = 0, ph = 0;
  if (page != NULL)
    poppler_page_get_size(page, &pw, &ph);
  if (pw < 1 || ph < 1) {
    g_clear_object(&page);
    g_object_unref(doc);
    return;
  }
  int w = CLAMP(r->width, 8, MAX_WIDTH);
  double scale = w / pw;
  int h = CLAMP((int)(ph * scale + 0.5), 1, w * MAX_ASPECT);
  cairo_surface_t *surface = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, w, h);
  cairo_t *cr = cairo_create(surface);
  cairo_set_source_rgb(cr, 1, 1, 1);
  cairo_paint(cr);
  cairo_scale(cr, scale, scale);
  poppler_page_render(page, cr);
  cairo_destroy(cr);
  cairo_surface_flush(surface);
  if (cairo_surface_status(surface) == CAIRO_STATUS_SUCCESS) {
    r->w = w;
    r->h = h;
    r->stride = cairo_image_surface_get_stride(surface);
    r->pixels = g_bytes_new(cairo_image_surface_get_data(surface), (gsize)r->stride * h);
  }
  cairo_surface_destroy(surface);
  g_object_unref(page);
  g_object_unref(doc);
}

static gboolean deliver(gpointer data);

static void work(gpointer data, gpointer pool_data)
{
  (void)pool_data;
  request_t *r = data;
  /* Drawing gives way to the main thread (Linux: nice is per thread). */
  static _Thread_local bool niced = false;
  if (!niced) {
    niced = true;
    if (setpriority(PRIO_PROCESS, (id_t)gettid(), 10) != 0)
      g_debug("worker keeps its priority: %s", g_strerror(errno));
  }
  bool skip = g_cancellable_is_cancelled(r->cancellable);
  if (!skip)
    render(r);
  g_mutex_lock(&r->thumbs->lock);
  if (skip)
    r->thumbs->skipped++;
  else if (r->pixels != NULL)
    r->thumbs->rendered++;
  g_mutex_unlock(&r->thumbs->lock);
  g_idle_add_full(G_PRIORITY_DEFAULT_IDLE, deliver, r, NULL);
}

/* Newest first. */
static gint by_newest(gconstpointer a, gconstpointer b, gpointer data)
{
  (void)data;
  guint64 sa = ((const request_t *)a)->seq, sb = ((const request_t *)b)->seq;
  return sa > sb ? -1 : sa < sb ? 1 : 0;
}

/* --- on the main thread ------------------------------------------------------ */

static void cache_put(kcps_tray_thumbs_t *thumbs, char *key, GdkTexture *texture)
{
  GList *old = g_hash_table_lookup(thumbs->cache, key);
  if (old != NULL) {
    g_hash_table_remove(thumbs->cache, key);
    entry_free(old->data);
    g_queue_delete_link(&thumbs->order, old);
  }
  entry_t *entry = g_new0(entry_t, 1);
  entry->key = key;
  entry->texture = g_object_ref(texture);
  g_queue_push_head(&thumbs->order, entry);
  g_hash_table_insert(thumbs->cache, entry->key, thumbs->order.head);
  while (thumbs->order.length > thumbs->cache_cap) {
    entry_t *last = g_queue_pop_tail(&thumbs->order);
    g_hash_table_remove(thumbs->cache, last->key);
    entry_free(last);
  }
}

static gboolean deliver(gpointer data)
{
  request_t *r = data;
  g_autoptr(GdkTexture) texture = NULL;
  if (r->pixels != NULL)
    texture = gdk_memory_texture_new(r->w, r->h, GDK_MEMORY_DEFAULT, r->pixels,
                                     (gsize)r->stride);
  if (texture != NULL && r->cache)
    cache_put(r->thumbs, cache_key(r->job_id, r->size, r->page, r->width), texture);
  bool cancelled = g_cancellable_is_cancelled(r->cancellable);
  r->thumbs->pending--;
  r->cb(cancelled ? NULL : texture, r->n_pages, r->data);
  request_free(r);
  return G_SOURCE_REMOVE;
}

kcps_tray_thumbs_t *kcps_tray_thumbs_new(int port, guint cache_cap)
{
  kcps_tray_thumbs_t *thumbs = g_new0(kcps_tray_thumbs_t, 1);
  g_atomic_ref_count_init(&thumbs->refs);
  thumbs->port = port;
  thumbs->cache_cap = cache_cap > 0 ? cache_cap : KCPS_TRAY_THUMB_CACHE;
  thumbs->cache = g_hash_table_new(g_str_hash, g_str_equal);
  g_queue_init(&thumbs->order);
  g_mutex_init(&thumbs->lock);
  thumbs->kept_fd = -1;
  thumbs->pool = g_thread_pool_new(work, thumbs, KCPS_TRAY_THUMB_WORKERS, FALSE, NULL);
  g_thread_pool_set_sort_function(thumbs->pool, by_newest, NULL);
  return thumbs;
}

void kcps_tray_thumbs_free(kcps_tray_thumbs_t *thumbs)
{
  if (thumbs == NULL)
    return;
  /* Queued requests still run (cancelled ones return at once) and are
   * delivered later; they hold references. */
  g_thread_pool_free(thumbs->pool, FALSE, TRUE);
  thumbs->pool = NULL;
  thumbs_unref(thumbs);
}

void kcps_tray_thumbs_set_file(kcps_tray_thumbs_t *thumbs, const char *path)
{
  g_free(thumbs->file);
  thumbs->file = g_strdup(path);
}

GdkTexture *kcps_tray_thumbs_cached(kcps_tray_thumbs_t *thumbs, const char *job_id,
                                    gint64 size, int page, int width)
{
  g_autofree char *key = cache_key(job_id, size, page, width);
  GList *link = g_hash_table_lookup(thumbs->cache, key);
  if (link == NULL)
    return NULL;
  g_queue_unlink(&thumbs->order, link);
  g_queue_push_head_link(&thumbs->order, link);
  return g_object_ref(((entry_t *)link->data)->texture);
}

void kcps_tray_thumbs_render(kcps_tray_thumbs_t *thumbs, const char *job_id, gint64 size,
                             int page, int width, bool cache, GCancellable *cancellable,
                             kcps_tray_thumb_cb_t cb, gpointer data)
{
  request_t *r = g_new0(request_t, 1);
  r->thumbs = thumbs_ref(thumbs);
  r->job_id = g_strdup(job_id);
  r->size = size;
  r->page = page;
  r->width = width;
  r->cache = cache;
  r->cancellable = cancellable != NULL ? g_object_ref(cancellable) : g_cancellable_new();
  r->cb = cb;
  r->data = data;
  g_mutex_lock(&thumbs->lock);
  r->seq = ++thumbs->seq;
  g_mutex_unlock(&thumbs->lock);
  thumbs->pending++;
  g_thread_pool_push(thumbs->pool, r, NULL);
}

guint kcps_tray_thumbs_rendered(kcps_tray_thumbs_t *thumbs)
{
  g_mutex_lock(&thumbs->lock);
  guint n = thumbs->rendered;
  g_mutex_unlock(&thumbs->lock);
  return n;
}

guint kcps_tray_thumbs_skipped(kcps_tray_thumbs_t *thumbs)
{
  g_mutex_lock(&thumbs->lock);
  guint n = thumbs->skipped;
  g_mutex_unlock(&thumbs->lock);
  return n;
}

guint kcps_tray_thumbs_cache_size(kcps_tray_thumbs_t *thumbs)
{
  return thumbs->order.length;
}

/* --- a row's picture ------------------------------------------------------------ */

typedef struct slot_s {
  kcps_tray_thumbs_t *thumbs;
  char *job_id;   /* NULL: unbound */
  gint64 size;
  int width;
  GCancellable *cancellable; /* the request in flight, or NULL */
  bool shown;     /* the picture shows this job's page */
  kcps_tray_thumb_shown_cb_t cb;
  gpointer data;
} slot_t;

typedef struct slot_wait_s {
  GtkPicture *picture; /* a reference */
  GCancellable *cancellable;
} slot_wait_t;

static void slot_free(slot_t *slot)
{
  if (slot->cancellable != NULL)
    g_cancellable_cancel(slot->cancellable);
  g_clear_object(&slot->cancellable);
  g_free(slot->job_id);
  g_free(slot);
}

static void slot_cancel(slot_t *slot)
{
  if (slot->cancellable != NULL)
    g_cancellable_cancel(slot->cancellable);
  g_clear_object(&slot->cancellable);
}

static void slot_done(GdkTexture *texture, int n_pages, gpointer data)
{
  (void)n_pages;
  slot_wait_t *wait = data;
  slot_t *slot = g_object_get_data(G_OBJECT(wait->picture), "kcps-thumb");
  if (slot != NULL && slot->cancellable == wait->cancellable &&
      !g_cancellable_is_cancelled(wait->cancellable)) {
    g_clear_object(&slot->cancellable);
    if (texture != NULL) {
      gtk_picture_set_paintable(wait->picture, GDK_PAINTABLE(texture));
      slot->shown = true;
      if (slot->cb != NULL)
        slot->cb(wait->picture, slot->data);
    }
  }
  g_object_unref(wait->cancellable);
  g_object_unref(wait->picture);
  g_free(wait);
}

static void slot_request(GtkPicture *picture, slot_t *slot)
{
  if (slot->job_id == NULL || slot->shown || slot->cancellable != NULL)
    return;
  slot->cancellable = g_cancellable_new();
  slot_wait_t *wait = g_new0(slot_wait_t, 1);
  wait->picture = g_object_ref(picture);
  wait->cancellable = g_object_ref(slot->cancellable);
  kcps_tray_thumbs_render(slot->thumbs, slot->job_id, slot->size, 0, slot->width, true,
                          slot->cancellable, slot_done, wait);
}

static void slot_mapped(GtkWidget *picture, gpointer data)
{
  (void)data;
  slot_t *slot = g_object_get_data(G_OBJECT(picture), "kcps-thumb");
  if (slot != NULL)
    slot_request(GTK_PICTURE(picture), slot);
}

static void slot_unmapped(GtkWidget *picture, gpointer data)
{
  (void)data;
  slot_t *slot = g_object_get_data(G_OBJECT(picture), "kcps-thumb");
  if (slot != NULL)
    slot_cancel(slot);
}

void kcps_tray_thumb_bind(kcps_tray_thumbs_t *thumbs, GtkPicture *picture, const char *job_id,
                          gint64 size, int width, kcps_tray_thumb_shown_cb_t shown,
                          gpointer data)
{
  slot_t *slot = g_object_get_data(G_OBJECT(picture), "kcps-thumb");
  if (slot == NULL) {
    slot = g_new0(slot_t, 1);
    g_object_set_data_full(G_OBJECT(picture), "kcps-thumb", slot, (GDestroyNotify)slot_free);
    g_signal_connect(picture, "map", G_CALLBACK(slot_mapped), NULL);
    g_signal_connect(picture, "unmap", G_CALLBACK(slot_unmapped), NULL);
  }
  slot_cancel(slot);
  slot->thumbs = thumbs;
  g_free(slot->job_id);
  slot->job_id = g_strdup(job_id);
  slot->size = size;
  slot->width = width;
  slot->cb = shown;
  slot->data = data;
  g_autoptr(GdkTexture) cached = kcps_tray_thumbs_cached(thumbs, job_id, size, 0, width);
  gtk_picture_set_paintable(picture, cached != NULL ? GDK_PAINTABLE(cached) : NULL);
  slot->shown = cached != NULL;
  if (gtk_widget_get_mapped(GTK_WIDGET(picture)))
    slot_request(picture, slot);
}

void kcps_tray_thumb_unbind(GtkPicture *picture)
{
  slot_t *slot = g_object_get_data(G_OBJECT(picture), "kcps-thumb");
  if (slot == NULL)
    return;
  slot_cancel(slot);
  g_clear_pointer(&slot->job_id, g_free);
  slot->shown = false;
}

guint kcps_tray_thumbs_pending(kcps_tray_thumbs_t *thumbs)
{
  return thumbs->pending;
}

void kcps_tray_thumbs_keep_document(kcps_tray_thumbs_t *thumbs, const char *job_id, gint64 size)
{
  g_mutex_lock(&thumbs->lock);
  if (g_strcmp0(thumbs->kept_job, job_id) != 0 || thumbs->kept_size != size) {
    g_free(thumbs->kept_job);
    thumbs->kept_job = g_strdup(job_id);
    thumbs->kept_size = size;
    if (thumbs->kept_fd >= 0)
      close(thumbs->kept_fd);
    thumbs->kept_fd = -1;
  }
  g_mutex_unlock(&thumbs->lock);
}

guint kcps_tray_thumbs_fetched(kcps_tray_thumbs_t *thumbs)
{
  g_mutex_lock(&thumbs->lock);
  guint n = thumbs->fetched;
  g_mutex_unlock(&thumbs->lock);
  return n;
}
