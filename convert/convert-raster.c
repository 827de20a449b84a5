/* PWG raster (PWG 5102.4) and Apple raster (URF) to PDF pages. Headers are
 * parsed and bounded here, before any pixel is read, rather than trusting
 * libcups' reader (which reads a lying 2^31-line page for a very long time). */
#include "convert/convert-private.h"

#include <string.h>

#define PWG_HEADER_SIZE 1796
#define URF_HEADER_SIZE 32

/* One page as the line decoder needs it. */
typedef struct {
  const char *format;
  unsigned width, height;
  unsigned bits_per_pixel;
  size_t bytes_per_line;
  unsigned char fill; /* white in this colour space (PWG/URF code 128) */
  kcps_pdf_page_t pdf;
} raster_page_t;

static uint32_t be32(const unsigned char *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Decodes HEIGHT lines of (line repeat, PackBits-style runs of whole pixels)
 * and streams them into the PDF page. */
static bool decode_lines(kcps_reader_t *r, kcps_pdf_t *pdf, const raster_page_t *page,
                         GError **error) {
  size_t bpl = page->bytes_per_line;
  size_t unit = page->bits_per_pixel < 8 ? 1 : page->bits_per_pixel / 8;
  unsigned char *line = g_malloc(bpl);
  unsigned char pixel[8];
  bool ok = false;
  for (unsigned y = 0; y < page->height;) {
    int rep = kcps__reader_byte(r);
    if (rep < 0) {
      kcps__reader_short(r, "a page's pixels", error);
      goto out;
    }
    unsigned count = (unsigned)rep + 1;
    if (count > page->height - y) {
      g_set_error(error, KCPS_CONVERT_ERROR, KCPS_CONVERT_ERROR_GARBAGE,
                  "%s line %u repeats %u times, past the page's %u lines", page->format, y, count,
                  page->height);
      goto out;
    }
    for (size_t x = 0; x < bpl;) {
      int c = kcps__reader_byte(r);
      if (c < 0) {
        kcps__reader_short(r, "a page's pixels", error);
        goto out;
      }
      if (c == 128) { /* rest of the line is white */
        memset(line + x, page->fill, bpl - x);
        break;
      }
      size_t n = (c < 128 ? (size_t)c + 1 : 257 - (size_t)c) * unit;
      if (n > bpl - x) {
        g_set_error(error, KCPS_CONVERT_ERROR, KCPS_CONVERT_ERROR_GARBAGE,
                    "%s line %u has a run past its %zu bytes", page->format, y, bpl);
        goto out;
      }
      if (c < 128) { /* one pixel, repeated */
        if (kcps__reader_read(r, pixel, unit) != unit) {
          kcps__reader_short(r, "a page's pixels", error);
          goto out;
        }
        if (unit == 1)
          memset(line + x, pixel[0], n);
        else
          for (size_t i = 0; i < n; i += unit)
            memcpy(line + x + i, pixel, unit);
      } else if (kcps__reader_read(r, line + x, n) != n) {
        kcps__reader_short(r, "a page's pixels", error);
        goto out;
      }
      x += n;
    }
    for (unsigned i = 0; i < count; i++)
      if (!kcps__pdf_page_write(pdf, line, bpl, error))
        goto out;
    y += count;
  }
  ok = true;
out:
  g_free(line);
  return ok;
}

static bool convert_page(kcps_reader_t *r, kcps_pdf_t *pdf, const raster_page_t *page,
                         GError **error) {
  return kcps__pdf_page_begin(pdf, &page->pdf, error) && decode_lines(r, pdf, page, error) &&
         kcps__pdf_page_end(pdf, error);
}

/* Common checks once colour space and depth are known. */
static bool check_depth(raster_page_t *page, unsigned components, unsigned bpc,
                        unsigned bits_per_pixel, GError **error) {
  bool depth_ok = bpc == 8 || bpc == 16 || (bpc == 1 && components == 1);
  if (!depth_ok || bits_per_pixel != bpc * components) {
    g_set_error(error, KCPS_CONVERT_ERROR, KCPS_CONVERT_ERROR_UNSUPPORTED,
                "%s page of %u bits per colour and %u bits per pixel is not supported (8 or 16"
                " bits per colour, or 1-bit gray/black)",
                page->format, bpc, bits_per_pixel);
    return false;
  }
  page->bits_per_pixel = bits_per_pixel;
  page->pdf.bpc = bpc;
  page->bytes_per_line = ((size_t)page->width * bits_per_pixel + 7) / 8;
  return true;
}

/* PWG raster: "RaS2", then per page a 1796-byte big-endian header and
 * compressed lines. Fields: PWG 5102.4 section 4.3 (cups_page_header2_t). */
bool kcps__convert_pwg(kcps_reader_t *r, kcps_pdf_t *pdf, const kcps_convert_limits_t *limits,
                       GError **error) {
  unsigned char sync[4];
  size_t n = kcps__reader_read(r, sync, sizeof sync);
  if (n != sizeof sync || memcmp(sync, "RaS2", 4) != 0) {
    if (r->failed)
      kcps__reader_short(r, "the sync word", error);
    else
      g_set_error(error, KCPS_CONVERT_ERROR, KCPS_CONVERT_ERROR_GARBAGE,
                  "not a PWG raster document (no RaS2 sync word)");
    return false;
  }
  unsigned char *h = g_malloc(PWG_HEADER_SIZE);
  bool ok = true;
  for (unsigned index = 1; ok; index++) {
    n = kcps__reader_read(r, h, PWG_HEADER_SIZE);
    if (n == 0 && !r->failed)
      break; /* end of the document, between pages */
    if (n != PWG_HEADER_SIZE) {
      kcps__reader_short(r, "a page header", error);
      ok = false;
      break;
    }
    raster_page_t page = {.format = "PWG raster"};
    uint32_t xdpi = be32(h + 276), ydpi = be32(h + 280);
    uint32_t width = be32(h + 372), height = be32(h + 376);
    uint32_t bpc = be32(h + 384), bpp = be32(h + 388), bpl = be32(h + 392);
    uint32_t order = be32(h + 396), space = be32(h + 400), ncolors = be32(h + 420);
    if (!kcps__convert_check_page(limits, "PWG raster", width, height, xdpi, ydpi, error)) {
      ok = false;
      break;
    }
    page.width = page.pdf.width = width;
    page.height = page.pdf.height = height;
    page.pdf.xdpi = xdpi;
    page.pdf.ydpi = ydpi;
    unsigned components;
    switch (space) {
    case 0:  /* W */
    case 18: /* sGray */
      page.pdf.space = KCPS_PDF_GRAY, components = 1, page.fill = 0xff;
      break;
    case 3: /* black: 1 is ink */
      page.pdf.space = KCPS_PDF_GRAY, components = 1, page.fill = 0x00, page.pdf.invert = true;
      break;
    case 1:  /* RGB */
    case 19: /* sRGB */
    case 20: /* AdobeRGB, shown as device RGB */
      page.pdf.space = KCPS_PDF_RGB, components = 3, page.fill = 0xff;
      break;
    case 6: /* CMYK */
      page.pdf.space = KCPS_PDF_CMYK, components = 4, page.fill = 0x00;
      break;
    default:
      g_set_error(error, KCPS_CONVERT_ERROR, KCPS_CONVERT_ERROR_UNSUPPORTED,
                  "PWG raster page %u: colour space %u is not supported (sGray, sRGB, AdobeRGB,"
                  " RGB, W, black, CMYK are)",
                  index, space);
      ok = false;
      continue;
    }
    if (order != 0 || (ncolors != 0 && ncolors != components)) {
      g_set_error(error, KCPS_CONVERT_ERROR, KCPS_CONVERT_ERROR_BAD_HEADER,
                  "PWG raster page %u: colour order %u / %u colours do not fit colour space %u",
                  index, order, ncolors, space);
      ok = false;
      break;
    }
    if (!check_depth(&page, components, bpc, bpp, error)) {
      ok = false;
      break;
    }
    if (bpl != page.bytes_per_line) {
      g_set_error(error, KCPS_CONVERT_ERROR, KCPS_CONVERT_ERROR_BAD_HEADER,
                  "PWG raster page %u: %u bytes per line, but %u pixels of %u bits need %zu",
                  index, bpl, width, bpp, page.bytes_per_line);
      ok = false;
      break;
    }
    ok = convert_page(r, pdf, &page, error);
  }
  g_free(h);
  return ok;
}

/* URF (Apple raster): "UNIRAST\0", a big-endian page count, then per page a
 * 32-byte header (bits per pixel, colour space, duplex, quality, 8 unused,
 * width, height, resolution, 8 unused) and compressed lines. */
bool kcps__convert_urf(kcps_reader_t *r, kcps_pdf_t *pdf, const kcps_convert_limits_t *limits,
                       GError **error) {
  unsigned char head[12];
  size_t n = kcps__reader_read(r, head, sizeof head);
  if (n < 8 || memcmp(head, "UNIRAST\0", 8) != 0) {
    if (r->failed)
      kcps__reader_short(r, "the file header", error);
    else
      g_set_error(error, KCPS_CONVERT_ERROR, KCPS_CONVERT_ERROR_GARBAGE,
                  "not a URF document (no UNIRAST signature)");
    return false;
  }
  if (n != sizeof head) {
    kcps__reader_short(r, "the file header", error);
    return false;
  }
  uint32_t declared = be32(head + 8);
  unsigned char h[URF_HEADER_SIZE];
  unsigned index;
  for (index = 1;; index++) {
    n = kcps__reader_read(r, h, sizeof h);
    if (n == 0 && !r->failed)
      break;
    if (n != sizeof h) {
      kcps__reader_short(r, "a page header", error);
      return false;
    }
    raster_page_t page = {.format = "URF"};
    unsigned bpp = h[0], space = h[1];
    uint32_t width = be32(h + 12), height = be32(h + 16), dpi = be32(h + 20);
    if (!kcps__convert_check_page(limits, "URF", width, height, dpi, dpi, error))
      return false;
    page.width = page.pdf.width = width;
    page.height = page.pdf.height = height;
    page.pdf.xdpi = page.pdf.ydpi = dpi;
    unsigned components;
    switch (space) {
    case 0: /* sGray */
    case 4: /* DeviceGray (W) */
      page.pdf.space = KCPS_PDF_GRAY, components = 1, page.fill = 0xff;
      break;
    case 1: /* sRGB */
    case 3: /* AdobeRGB */
    case 5: /* DeviceRGB */
      page.pdf.space = KCPS_PDF_RGB, components = 3, page.fill = 0xff;
      break;
    case 6: /* DeviceCMYK */
      page.pdf.space = KCPS_PDF_CMYK, components = 4, page.fill = 0x00;
      break;
    default:
      g_set_error(error, KCPS_CONVERT_ERROR, KCPS_CONVERT_ERROR_UNSUPPORTED,
                  "URF page %u: colour space %u is not supported (sGray, sRGB, AdobeRGB, gray,"
                  " RGB, CMYK are)",
                  index, space);
      return false;
    }
    if (bpp % components != 0 || bpp / components == 1 ||
        !check_depth(&page, components, bpp / components, bpp, error)) {
      if (error && *error == NULL)
        g_set_error(error, KCPS_CONVERT_ERROR, KCPS_CONVERT_ERROR_UNSUPPORTED,
                    "URF page %u: %u bits per pixel do not fit colour space %u", index, bpp,
                    space);
      return false;
    }
    if (!convert_page(r, pdf, &page, error))
      return false;
  }
  if (declared != 0 && index - 1 < declared) {
    g_set_error(error, KCPS_CONVERT_ERROR, KCPS_CONVERT_ERROR_TRUNCATED,
                "the URF document ends after %u of its %u pages", index - 1, declared);
    return false;
  }
  return true;
}
