/* Direct printing to printers without PDF: poppler renders each page with
 * cairo at the printer's resolution, and libcups writes it as PWG raster or
 * URF. One page in memory at a time. */
#define G_LOG_DOMAIN "kcpsd"

#include "client/release.h"

#include <math.h>
#include <string.h>
#include <unistd.h>

#include <cairo.h>
#include <poppler.h>

/* Page sizes beyond this are not paper (A0 is 33.1 x 46.8 in). */
#define MAX_PAGE_INCHES 50.0

/* One page into the raster stream. */
static bool write_page(cups_raster_t *ras, PopplerPage *page, const kcps_raster_plan_t *plan,
                       bool duplex, int index, int total, GError **error)
{
  double w_pt = 0, h_pt = 0;
  poppler_page_get_size(page, &w_pt, &h_pt);
  if (!(w_pt > 0 && h_pt > 0 && w_pt <= MAX_PAGE_INCHES * 72 && h_pt <= MAX_PAGE_INCHES * 72)) {
    g_set_error(error, KCPS_RELEASE_ERROR, KCPS_RELEASE_ERROR_IO,
                "page %d has a size the printer cannot take (%.0f x %.0f pt)", index + 1, w_pt,
                h_pt);
    return false;
  }
  /* Media of the page's own size (PWG names it when it is a known one). */
  pwg_media_t *media = pwgMediaForSize((int)lround(w_pt * 2540.0 / 72.0),
                                       (int)lround(h_pt * 2540.0 / 72.0));
  cups_page_header2_t header;
  if (media == NULL
      || !cupsRasterInitPWGHeader(&header, media, plan->color ? "srgb_8" : "sgray_8", plan->dpi,
                                  plan->dpi, duplex ? "two-sided-long-edge" : "one-sided",
                                  "normal")) {
    g_set_error(error, KCPS_RELEASE_ERROR, KCPS_RELEASE_ERROR_IO,
                "cannot make a raster header for page %d: %s", index + 1, cupsLastErrorString());
    return false;
  }
  /* The page count goes into URF's file header (PWG: TotalPageCount). */
  header.cupsInteger[CUPS_RASTER_PWG_TotalPageCount] = (unsigned)total;
  unsigned width = header.cupsWidth, height = header.cupsHeight;

  cairo_surface_t *surface = cairo_image_surface_create(CAIRO_FORMAT_RGB24, (int)width,
                                                        (int)height);
  if (cairo_surface_status(surface) != CAIRO_STATUS_SUCCESS) {
    cairo_surface_destroy(surface);
    g_set_error(error, KCPS_RELEASE_ERROR, KCPS_RELEASE_ERROR_IO,
                "no memory for page %d (%u x %u pixels)", index + 1, width, height);
    return false;
  }
  cairo_t *cr = cairo_create(surface);
  cairo_set_source_rgb(cr, 1, 1, 1);
  cairo_paint(cr);
  cairo_scale(cr, plan->dpi / 72.0, plan->dpi / 72.0);
  poppler_page_render_for_printing(page, cr);
  cairo_destroy(cr);
  cairo_surface_flush(surface);

  bool ok = cupsRasterWriteHeader2(ras, &header) != 0;
  const unsigned char *pixels = cairo_image_surface_get_data(surface);
  int stride = cairo_image_surface_get_stride(surface);
  unsigned bpp = plan->color ? 3 : 1;
  g_autofree unsigned char *line = g_malloc(width * bpp);
  for (unsigned y = 0; ok && y < height; y++) {
    const guint32 *row = (const guint32 *)(const void *)(pixels + (size_t)y * (size_t)stride);
    for (unsigned x = 0; x < width; x++) {
      guint32 px = row[x];
      unsigned r = (px >> 16) & 0xff, g = (px >> 8) & 0xff, b = px & 0xff;
      if (plan->color) {
        line[x * 3] = (unsigned char)r;
        line[x * 3 + 1] = (unsigned char)g;
        line[x * 3 + 2] = (unsigned char)b;
      } else {
        line[x] = (unsigned char)((r * 299 + g * 587 + b * 114 + 500) / 1000);
      }
    }
    ok = cupsRasterWritePixels(ras, line, width * bpp) == width * bpp;
  }
  cairo_surface_destroy(surface);
  if (!ok)
    g_set_error(error, KCPS_RELEASE_ERROR, KCPS_RELEASE_ERROR_IO,
                "sending page %d to the printer failed", index + 1);
  return ok;
}

bool kcps_release_rasterize(int pdf_fd, const kcps_raster_plan_t *plan, bool duplex,
                            cups_raster_iocb_t write_cb, void *data, int *pages,
                            GError **error)
{
  *pages = 0;
  GError *local = NULL;
  /* poppler owns the descriptor from here on. */
  g_autoptr(GObject) doc_obj = NULL;
  PopplerDocument *doc = poppler_document_new_from_fd(pdf_fd, NULL, &local);
  doc_obj = (GObject *)doc;
  if (doc == NULL) {
    g_set_error(error, KCPS_RELEASE_ERROR, KCPS_RELEASE_ERROR_IO,
                "the spooled document does not open: %s", local->message);
    g_error_free(local);
    return false;
  }
  bool urf = g_strcmp0(plan->format, "image/urf") == 0;
  cups_raster_t *ras = cupsRasterOpenIO(write_cb, data,
                                        urf ? CUPS_RASTER_WRITE_APPLE : CUPS_RASTER_WRITE_PWG);
  if (ras == NULL) {
    g_set_error(error, KCPS_RELEASE_ERROR, KCPS_RELEASE_ERROR_IO,
                "cannot start the raster stream: %s", cupsLastErrorString());
    return false;
  }
  int n = poppler_document_get_n_pages(doc);
  bool ok = n > 0;
  if (!ok)
    g_set_error_literal(error, KCPS_RELEASE_ERROR, KCPS_RELEASE_ERROR_IO,
                        "the spooled document has no pages");
  for (int i = 0; ok && i < n; i++) {
    PopplerPage *page = poppler_document_get_page(doc, i);
    bool loaded = page != NULL;
    ok = loaded && write_page(ras, page, plan, duplex, i, n, error);
    g_clear_object(&page);
    if (!loaded)
      g_set_error(error, KCPS_RELEASE_ERROR, KCPS_RELEASE_ERROR_IO, "page %d does not load",
                  i + 1);
    if (ok)
      (*pages)++;
  }
  cupsRasterClose(ras);
  return ok;
}
