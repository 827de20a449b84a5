/* Pages of the user's jobs as pictures: the thumbnails of the jobs list and
 * the pages of the preview. kcpsd streams the PDF (GET /v1/jobs/{id}/
 * document); poppler + cairo draw it here, in the tray (the account that
 * printed it), on a small worker pool off the main thread — never in kcpsd.
 * Thumbnails are kept in a bounded LRU cache keyed by job id, size, page and
 * width. */
#pragma once

#include <gtk/gtk.h>

G_BEGIN_DECLS

typedef struct kcps_tray_thumbs_s kcps_tray_thumbs_t;

/* Workers drawing at once, and the cache's bound (pictures). */
#define KCPS_TRAY_THUMB_WORKERS 2
#define KCPS_TRAY_THUMB_CACHE 200

/* texture: the page drawn (NULL when it could not be: no document, not a
 * PDF, no such page, cancelled); n_pages: the document's pages (0 when not
 * known). Called on the main thread, also when cancelled (texture NULL). */
typedef void (*kcps_tray_thumb_cb_t)(GdkTexture *texture, int n_pages, gpointer data);

kcps_tray_thumbs_t *kcps_tray_thumbs_new(int port, guint cache_cap);
/* Cancels what is queued and waits for the workers. */
void kcps_tray_thumbs_free(kcps_tray_thumbs_t *thumbs);

/* The cached picture of page (0-based) of job id at width pixels, or NULL
 * (a new reference; the entry becomes the most recent). */
GdkTexture *kcps_tray_thumbs_cached(kcps_tray_thumbs_t *thumbs, const char *job_id,
                                    gint64 size, int page, int width);
/* Draws it on a worker; cb runs on the main thread. cache: keep the result
 * (thumbnails) or not (preview pages). The newest request runs first. */
void kcps_tray_thumbs_render(kcps_tray_thumbs_t *thumbs, const char *job_id, gint64 size,
                             int page, int width, bool cache, GCancellable *cancellable,
                             kcps_tray_thumb_cb_t cb, gpointer data);
/* A list row's picture of page 0 of job (id, size) at width: from the
 * cache at once, else drawn while the picture is on screen — asked for when
 * it maps, cancelled when it unmaps (scrolled away, window closed) or is
 * bound to another job. shown(picture, data) runs when a drawn picture
 * arrives. kcps_tray_thumb_unbind when the row lets go of the job. */
typedef void (*kcps_tray_thumb_shown_cb_t)(GtkPicture *picture, gpointer data);
void kcps_tray_thumb_bind(kcps_tray_thumbs_t *thumbs, GtkPicture *picture, const char *job_id,
                          gint64 size, int width, kcps_tray_thumb_shown_cb_t shown,
                          gpointer data);
void kcps_tray_thumb_unbind(GtkPicture *picture);

/* The preview shows job (id, size): its document, once fetched, is kept
 * (up to 64 MiB, in memory) until another job or NULL is named, so turning
 * the pages does not fetch it again. */
void kcps_tray_thumbs_keep_document(kcps_tray_thumbs_t *thumbs, const char *job_id,
                                    gint64 size);
/* Documents fetched from kcpsd so far (tests). */
guint kcps_tray_thumbs_fetched(kcps_tray_thumbs_t *thumbs);

/* Bench and tests: every job's document is read from path (a PDF) instead
 * of kcpsd. */
void kcps_tray_thumbs_set_file(kcps_tray_thumbs_t *thumbs, const char *path);
/* Counters for the tests and the bench: pictures drawn, requests skipped
 * because they were cancelled first, cache entries. */
guint kcps_tray_thumbs_rendered(kcps_tray_thumbs_t *thumbs);
guint kcps_tray_thumbs_skipped(kcps_tray_thumbs_t *thumbs);
guint kcps_tray_thumbs_cache_size(kcps_tray_thumbs_t *thumbs);
/* Requests not yet delivered (main thread). */
guint kcps_tray_thumbs_pending(kcps_tray_thumbs_t *thumbs);

G_END_DECLS
