/* JPEG and PNG to a one-page PDF. JPEG: libjpeg(-turbo) reads the header and
 * decodes the whole image once to prove it is intact, then the original
 * bytes are embedded as /DCTDecode (no re-encoding, no quality loss). PNG:
 * libpng decodes row by row (whole image only when interlaced), alpha is
 * composited on white, rows are deflated into the PDF. */
#include "convert/convert-private.h"

#include <stdio.h> /* before jpeglib.h, which uses FILE */

#include <jpeglib.h>
#include <math.h>
#include <png.h>
#include <setjmp.h>
#include <string.h>

/* Resolution for an image without one: 72 dpi, more if the page would
 * otherwise exceed the page bound (so a big photo still makes a page). */
static double default_dpi(const kcps_convert_limits_t *limits, unsigned width, unsigned height) {
  double max_inches = limits->max_side_m / 0.0254;
  double need = ceil(MAX(width, height) / max_inches);
  return MAX(72.0, need);
}

static bool image_dpi(const kcps_convert_limits_t *limits, const char *format, unsigned width,
                      unsigned height, double xdpi, double ydpi, kcps_pdf_page_t *page,
                      GError **error) {
  if (!(xdpi >= 1 && ydpi >= 1 && xdpi <= limits->max_dpi && ydpi <= limits->max_dpi))
    xdpi = ydpi = default_dpi(limits, width, height);
  if (!kcps__convert_check_page(limits, format, width, height, (uint64_t)ceil(xdpi),
                                (uint64_t)ceil(ydpi), error))
    return false;
  page->width = width;
  page->height = height;
  page->xdpi = xdpi;
  page->ydpi = ydpi;
  return true;
}

/* ---- JPEG ---- */

typedef struct {
  struct jpeg_error_mgr pub;
  jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
} jpeg_err_t;

static void jpeg_fail(j_common_ptr cinfo) {
  jpeg_err_t *err = (jpeg_err_t *)cinfo->err;
  err->pub.format_message(cinfo, err->message);
  longjmp(err->jump, 1);
}

/* Warnings (premature end of data, corrupt data) are failures too. */
static void jpeg_warn(j_common_ptr cinfo, int level) {
  if (level < 0)
    jpeg_fail(cinfo);
}

typedef struct {
  struct jpeg_decompress_struct cinfo;
  jpeg_err_t err;
  JSAMPARRAY row;
  unsigned width, height, components;
  bool adobe;
  double xdpi, ydpi;
} jpeg_probe_t;

/* Header, then a full decode; false with P->err.message on any error. */
static bool jpeg_probe(jpeg_probe_t *p, const unsigned char *data, size_t len,
                       const kcps_convert_limits_t *limits, bool *too_big) {
  p->cinfo.err = jpeg_std_error(&p->err.pub);
  p->err.pub.error_exit = jpeg_fail;
  p->err.pub.emit_message = jpeg_warn;
  if (setjmp(p->err.jump)) {
    jpeg_destroy_decompress(&p->cinfo);
    return false;
  }
  jpeg_create_decompress(&p->cinfo);
  /* A progressive JPEG holds all its coefficients: bound that memory. */
  p->cinfo.mem->max_memory_to_use = 512L << 20;
  jpeg_mem_src(&p->cinfo, data, (unsigned long)len);
  jpeg_read_header(&p->cinfo, TRUE);
  p->width = p->cinfo.image_width;
  p->height = p->cinfo.image_height;
  p->components = (unsigned)p->cinfo.num_components;
  p->adobe = p->cinfo.saw_Adobe_marker;
  p->xdpi = p->ydpi = 0;
  if (p->cinfo.density_unit == 1 || p->cinfo.density_unit == 2) {
    double f = p->cinfo.density_unit == 2 ? 2.54 : 1.0;
    p->xdpi = p->cinfo.X_density * f;
    p->ydpi = p->cinfo.Y_density * f;
  }
  if ((uint64_t)p->width * p->height > limits->max_pixels) {
    *too_big = true;
    jpeg_destroy_decompress(&p->cinfo);
    return false;
  }
  /* Decode at 1/8 scale: checks every entropy-coded segment cheaply. */
  p->cinfo.scale_num = 1;
  p->cinfo.scale_denom = 8;
  jpeg_start_decompress(&p->cinfo);
  p->row = p->cinfo.mem->alloc_sarray((j_common_ptr)&p->cinfo, JPOOL_IMAGE,
                                      p->cinfo.output_width * (unsigned)p->cinfo.output_components, 1);
  while (p->cinfo.output_scanline < p->cinfo.output_height)
    jpeg_read_scanlines(&p->cinfo, p->row, 1);
  jpeg_finish_decompress(&p->cinfo);
  jpeg_destroy_decompress(&p->cinfo);
  return true;
}

bool kcps__convert_jpeg(kcps_reader_t *r, kcps_pdf_t *pdf, const kcps_convert_limits_t *limits,
                        GError **error) {
  /* The DCT stream is copied whole, so the JPEG is held whole (one page). */
  GByteArray *buf = g_byte_array_new();
  unsigned char chunk[65536];
  size_t n;
  bool ok = false;
  while ((n = kcps__reader_read(r, chunk, sizeof chunk)) > 0) {
    if (buf->len + n > limits->max_image_bytes) {
      g_set_error(error, KCPS_CONVERT_ERROR, KCPS_CONVERT_ERROR_BAD_HEADER,
                  "the JPEG document is larger than %zu bytes", limits->max_image_bytes);
      goto out;
    }
    g_byte_array_append(buf, chunk, (guint)n);
  }
  if (r->failed) {
    kcps__reader_short(r, "the JPEG image", error);
    goto out;
  }
  if (buf->len < 3 || buf->data[0] != 0xff || buf->data[1] != 0xd8 || buf->data[2] != 0xff) {
    g_set_error(error, KCPS_CONVERT_ERROR, KCPS_CONVERT_ERROR_GARBAGE,
                "not a JPEG document (no SOI marker)");
    goto out;
  }
  jpeg_probe_t *p = g_new0(jpeg_probe_t, 1);
  bool too_big = false;
  bool probed = jpeg_probe(p, buf->data, buf->len, limits, &too_big);
  if (!probed) {
    if (too_big)
      g_set_error(error, KCPS_CONVERT_ERROR, KCPS_CONVERT_ERROR_BAD_HEADER,
                  "JPEG image of %ux%u pixels is too large", p->width, p->height);
    else
      g_set_error(error, KCPS_CONVERT_ERROR,
                  strstr(p->err.message, "Premature end") ? KCPS_CONVERT_ERROR_TRUNCATED
                                                          : KCPS_CONVERT_ERROR_GARBAGE,
                  "bad JPEG image: %s", p->err.message);
    g_free(p);
    goto out;
  }
  kcps_pdf_page_t page = {.bpc = 8, .dct = true};
  if (p->components == 1)
    page.space = KCPS_PDF_GRAY;
  else if (p->components == 3)
    page.space = KCPS_PDF_RGB;
  else if (p->components == 4)
    page.space = KCPS_PDF_CMYK, page.invert = p->adobe; /* Adobe writes CMYK inverted */
  else {
    g_set_error(error, KCPS_CONVERT_ERROR, KCPS_CONVERT_ERROR_UNSUPPORTED,
                "JPEG image with %u components is not supported", p->components);
    g_free(p);
    goto out;
  }
  bool dims = image_dpi(limits, "JPEG", p->width, p->height, p->xdpi, p->ydpi, &page, error);
  g_free(p);
  ok = dims && kcps__pdf_page_begin(pdf, &page, error) &&
       kcps__pdf_page_write(pdf, buf->data, buf->len, error) && kcps__pdf_page_end(pdf, error);
out:
  g_byte_array_free(buf, TRUE);
  return ok;
}

/* ---- PNG ---- */

typedef struct {
  kcps_reader_t *r;
  char message[256];
  bool truncated;
} png_ctx_t;

static void png_read_fd(png_structp png, png_bytep data, size_t len) {
  png_ctx_t *ctx = png_get_io_ptr(png);
  if (kcps__reader_read(ctx->r, data, len) != len) {
    ctx->truncated = true;
    png_error(png, "the PNG image ends early");
  }
}

static void png_fail(png_structp png, png_const_charp msg) {
  png_ctx_t *ctx = png_get_error_ptr(png);
  g_strlcpy(ctx->message, msg, sizeof ctx->message);
  png_longjmp(png, 1);
}

static void png_warn(png_structp png, png_const_charp msg) {
  (void)png;
  (void)msg;
}

/* Composites a row of gray+alpha or RGBA (8-bit) on white, in place. */
static void flatten(png_bytep row, unsigned width, unsigned channels) {
  unsigned color = channels - 1;
  png_bytep out = row;
  for (unsigned x = 0; x < width; x++, row += channels) {
    unsigned a = row[color];
    for (unsigned c = 0; c < color; c++)
      *out++ = (png_byte)((row[c] * a + 255 * (255 - a) + 127) / 255);
  }
}

typedef struct {
  png_structp png;
  png_infop info;
  png_bytep image; /* interlaced only */
  png_bytep row;
} png_state_t;

/* Everything that can longjmp lives here; STATE holds what must be freed. */
static bool png_run(png_state_t *s, png_ctx_t *ctx, kcps_pdf_t *pdf,
                    const kcps_convert_limits_t *limits, GError **error) {
  if (setjmp(png_jmpbuf(s->png)))
    return false;
  png_set_read_fn(s->png, ctx, png_read_fd);
  png_set_user_limits(s->png, 65535, 65535);
  /* A chunk's declared length is allocated before it is read: without a
   * cap, a 4 KB file asking for a 2 GB iCCP chunk takes 2 GB (found by
   * fuzz-convert). No chunk we use needs more than a few MiB; at most 128
   * ancillary chunks are kept. */
  png_set_chunk_malloc_max(s->png, 8 * 1024 * 1024);
  png_set_chunk_cache_max(s->png, 128);
  png_read_info(s->png, s->info);
  png_uint_32 width = png_get_image_width(s->png, s->info);
  png_uint_32 height = png_get_image_height(s->png, s->info);
  int type = png_get_color_type(s->png, s->info);
  png_uint_32 res_x = 0, res_y = 0;
  int unit = 0;
  double xdpi = 0, ydpi = 0;
  if (png_get_pHYs(s->png, s->info, &res_x, &res_y, &unit) && unit == PNG_RESOLUTION_METER) {
    xdpi = res_x * 0.0254;
    ydpi = res_y * 0.0254;
  }
  kcps_pdf_page_t page = {.bpc = 8};
  if (!image_dpi(limits, "PNG", width, height, xdpi, ydpi, &page, error))
    return false;
  /* To 8-bit gray or RGB, with or without alpha. */
  png_set_expand(s->png);
  png_set_strip_16(s->png);
  int passes = png_set_interlace_handling(s->png);
  png_read_update_info(s->png, s->info);
  unsigned channels = png_get_channels(s->png, s->info);
  bool alpha = (type & PNG_COLOR_MASK_ALPHA) || channels == 2 || channels == 4;
  page.space = (channels >= 3) ? KCPS_PDF_RGB : KCPS_PDF_GRAY;
  size_t rowbytes = png_get_rowbytes(s->png, s->info);
  if (rowbytes != (size_t)width * channels) {
    g_set_error(error, KCPS_CONVERT_ERROR, KCPS_CONVERT_ERROR_UNSUPPORTED,
                "PNG image layout not supported");
    return false;
  }
  if (!kcps__pdf_page_begin(pdf, &page, error))
    return false;
  size_t out_bytes = (size_t)width * (alpha ? channels - 1 : channels);
  if (passes > 1) {
    s->image = g_malloc(rowbytes * height);
    for (int pass = 0; pass < passes; pass++)
      for (png_uint_32 y = 0; y < height; y++)
        png_read_row(s->png, s->image + rowbytes * y, NULL);
    for (png_uint_32 y = 0; y < height; y++) {
      png_bytep row = s->image + rowbytes * y;
      if (alpha)
        flatten(row, width, channels);
      if (!kcps__pdf_page_write(pdf, row, out_bytes, error))
        return false;
    }
  } else {
    s->row = g_malloc(rowbytes);
    for (png_uint_32 y = 0; y < height; y++) {
      png_read_row(s->png, s->row, NULL);
      if (alpha)
        flatten(s->row, width, channels);
      if (!kcps__pdf_page_write(pdf, s->row, out_bytes, error))
        return false;
    }
  }
  png_read_end(s->png, NULL);
  return kcps__pdf_page_end(pdf, error);
}

bool kcps__convert_png(kcps_reader_t *r, kcps_pdf_t *pdf, const kcps_convert_limits_t *limits,
                       GError **error) {
  unsigned char sig[8];
  size_t n = kcps__reader_read(r, sig, sizeof sig);
  if (n != sizeof sig || png_sig_cmp(sig, 0, sizeof sig) != 0) {
    if (r->failed)
      kcps__reader_short(r, "the PNG signature", error);
    else
      g_set_error(error, KCPS_CONVERT_ERROR, KCPS_CONVERT_ERROR_GARBAGE,
                  "not a PNG document (no PNG signature)");
    return false;
  }
  png_ctx_t ctx = {.r = r};
  png_state_t s = {0};
  s.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &ctx, png_fail, png_warn);
  s.info = s.png ? png_create_info_struct(s.png) : NULL;
  if (s.info == NULL) {
    png_destroy_read_struct(&s.png, NULL, NULL);
    g_set_error(error, KCPS_CONVERT_ERROR, KCPS_CONVERT_ERROR_IO, "libpng could not start");
    return false;
  }
  png_set_sig_bytes(s.png, sizeof sig);
  GError *local = NULL;
  bool ok = png_run(&s, &ctx, pdf, limits, &local);
  if (!ok) {
    if (local != NULL)
      g_propagate_error(error, local);
    else if (ctx.truncated)
      kcps__reader_short(r, "the PNG image", error);
    else
      g_set_error(error, KCPS_CONVERT_ERROR, KCPS_CONVERT_ERROR_GARBAGE, "bad PNG image: %s",
                  ctx.message);
  }
  g_free(s.image);
  g_free(s.row);
  png_destroy_read_struct(&s.png, &s.info, NULL);
  return ok;
}
