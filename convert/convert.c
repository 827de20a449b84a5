/* Entry points of the convert module: format dispatch, limits, errors. */
#include "convert/convert-private.h"

#include <string.h>

G_DEFINE_QUARK(kcps-convert-error-quark, kcps_convert_error)

typedef bool (*decoder_fn)(kcps_reader_t *, kcps_pdf_t *, const kcps_convert_limits_t *,
                           GError **);

static const struct {
  const char *mime;
  decoder_fn decode;
} decoders[] = {
  {"image/pwg-raster", kcps__convert_pwg},
  {"image/urf", kcps__convert_urf},
  {"image/jpeg", kcps__convert_jpeg},
  {"image/png", kcps__convert_png},
};

static const char *const supported[] = {"image/pwg-raster", "image/urf", "image/jpeg",
                                        "image/png", NULL};

const char *const *kcps_convert_supported(void) { return supported; }

/* The decoder for FORMAT ("image/png; x=y" matches image/png), or NULL. */
static decoder_fn find_decoder(const char *format) {
  if (format == NULL)
    return NULL;
  size_t len = strcspn(format, "; \t");
  for (size_t i = 0; i < G_N_ELEMENTS(decoders); i++)
    if (strlen(decoders[i].mime) == len && g_ascii_strncasecmp(decoders[i].mime, format, len) == 0)
      return decoders[i].decode;
  return NULL;
}

bool kcps_convert_is_supported(const char *format) { return find_decoder(format) != NULL; }

void kcps__convert_default_limits(kcps_convert_limits_t *limits) {
  limits->max_dpi = 1200;
  limits->max_side_m = 1.0;
  limits->max_pixels = (uint64_t)1 << 30;
  limits->max_image_bytes = (size_t)256 << 20;
}

bool kcps__convert_check_page(const kcps_convert_limits_t *limits, const char *format,
                              uint64_t width, uint64_t height, uint64_t xdpi, uint64_t ydpi,
                              GError **error) {
  if (xdpi == 0 || ydpi == 0 || xdpi > limits->max_dpi || ydpi > limits->max_dpi) {
    g_set_error(error, KCPS_CONVERT_ERROR, KCPS_CONVERT_ERROR_BAD_HEADER,
                "%s page resolution %" G_GUINT64_FORMAT "x%" G_GUINT64_FORMAT
                " dpi is outside 1..%u dpi",
                format, xdpi, ydpi, limits->max_dpi);
    return false;
  }
  double max_inches = limits->max_side_m / 0.0254;
  if (width == 0 || height == 0 || (double)width / (double)xdpi > max_inches ||
      (double)height / (double)ydpi > max_inches || width * height > limits->max_pixels) {
    g_set_error(error, KCPS_CONVERT_ERROR, KCPS_CONVERT_ERROR_BAD_HEADER,
                "%s page of %" G_GUINT64_FORMAT "x%" G_GUINT64_FORMAT
                " pixels at %" G_GUINT64_FORMAT "x%" G_GUINT64_FORMAT
                " dpi is empty or larger than %.2f m a side",
                format, width, height, xdpi, ydpi, limits->max_side_m);
    return false;
  }
  return true;
}

bool kcps__convert_to_pdf_limited(const char *format, int in_fd, int out_fd,
                                  const kcps_convert_limits_t *limits,
                                  kcps_convert_result_t *result, GError **error) {
  decoder_fn decode = find_decoder(format);
  if (decode == NULL) {
    g_set_error(error, KCPS_CONVERT_ERROR, KCPS_CONVERT_ERROR_FORMAT,
                "document format %s cannot be converted to PDF", format ? format : "(none)");
    return false;
  }
  kcps_reader_t *r = g_new(kcps_reader_t, 1);
  kcps__reader_init(r, in_fd);
  kcps_pdf_t *pdf = g_new0(kcps_pdf_t, 1);
  kcps__pdf_init(pdf, out_fd);

  /* An empty body is refused before anything is written. */
  bool ok = true;
  if (kcps__reader_byte(r) < 0) {
    if (r->failed)
      g_set_error(error, KCPS_CONVERT_ERROR, KCPS_CONVERT_ERROR_IO, "reading the document: %s",
                  g_strerror(r->errno_saved));
    else
      g_set_error(error, KCPS_CONVERT_ERROR, KCPS_CONVERT_ERROR_EMPTY, "the %s document is empty",
                  format);
    ok = false;
  } else {
    r->pos--; /* un-read the probe byte */
    r->consumed--;
  }
  ok = ok && kcps__pdf_begin(pdf, error) && decode(r, pdf, limits, error);
  if (ok && kcps__pdf_page_count(pdf) == 0) {
    g_set_error(error, KCPS_CONVERT_ERROR, KCPS_CONVERT_ERROR_EMPTY,
                "the %s document has no page", format);
    ok = false;
  }
  ok = ok && kcps__pdf_finish(pdf, error);
  if (ok && result != NULL) {
    result->pages = kcps__pdf_page_count(pdf);
    result->bytes_written = pdf->offset;
  }
  kcps__pdf_clear(pdf);
  g_free(pdf);
  g_free(r);
  return ok;
}

bool kcps_convert_to_pdf(const char *format, int in_fd, int out_fd,
                         kcps_convert_result_t *result, GError **error) {
  kcps_convert_limits_t limits;
  kcps__convert_default_limits(&limits);
  return kcps__convert_to_pdf_limited(format, in_fd, out_fd, &limits, result, error);
}
