/* A small streaming PDF writer: each page is one image XObject drawn over
 * the whole page; pixels are deflated (or a JPEG copied) as they arrive, so
 * memory does not grow with the page or the document. */
#include "convert/convert-private.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define ZLIB_LEVEL 3 /* bench: 6 is as small as rastertopdf but ~2x slower; 3 is ~2x faster, ~2x bigger */

void kcps__pdf_init(kcps_pdf_t *pdf, int fd) {
  memset(pdf, 0, sizeof *pdf);
  pdf->fd = fd;
  pdf->offsets = g_array_new(FALSE, TRUE, sizeof(uint64_t));
  pdf->pages = g_array_new(FALSE, FALSE, sizeof(guint));
}

void kcps__pdf_clear(kcps_pdf_t *pdf) {
  if (pdf->deflating)
    deflateEnd(&pdf->z);
  pdf->deflating = false;
  if (pdf->offsets)
    g_array_free(pdf->offsets, TRUE);
  if (pdf->pages)
    g_array_free(pdf->pages, TRUE);
  pdf->offsets = pdf->pages = NULL;
}

unsigned kcps__pdf_page_count(const kcps_pdf_t *pdf) { return pdf->pages->len; }

static bool flush_out(kcps_pdf_t *pdf, GError **error) {
  size_t done = 0;
  while (done < pdf->out_len) {
    ssize_t n = write(pdf->fd, pdf->out + done, pdf->out_len - done);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      int err = n < 0 ? errno : 0;
      g_set_error(error, KCPS_CONVERT_ERROR,
                  err == ENOSPC || err == EDQUOT ? KCPS_CONVERT_ERROR_NO_SPACE
                                                 : KCPS_CONVERT_ERROR_IO,
                  "writing the PDF: %s", err != 0 ? g_strerror(err) : "short write");
      return false;
    }
    done += (size_t)n;
  }
  pdf->out_len = 0;
  return true;
}

static bool put(kcps_pdf_t *pdf, const void *data, size_t len, GError **error) {
  const unsigned char *p = data;
  while (len > 0) {
    if (pdf->out_len == sizeof pdf->out && !flush_out(pdf, error))
      return false;
    size_t take = MIN(len, sizeof pdf->out - pdf->out_len);
    memcpy(pdf->out + pdf->out_len, p, take);
    pdf->out_len += take;
    pdf->offset += take;
    p += take;
    len -= take;
  }
  return true;
}

G_GNUC_PRINTF(3, 4)
static bool putf(kcps_pdf_t *pdf, GError **error, const char *fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = g_vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  g_assert(n >= 0 && (size_t)n < sizeof buf);
  return put(pdf, buf, (size_t)n, error);
}

/* A new object id; its offset is set by start_obj(). */
static guint new_obj(kcps_pdf_t *pdf) {
  uint64_t zero = 0;
  g_array_append_val(pdf->offsets, zero);
  return pdf->offsets->len;
}

static bool start_obj(kcps_pdf_t *pdf, guint id, GError **error) {
  g_array_index(pdf->offsets, uint64_t, id - 1) = pdf->offset;
  return putf(pdf, error, "%u 0 obj\n", id);
}

bool kcps__pdf_begin(kcps_pdf_t *pdf, GError **error) {
  new_obj(pdf); /* 1: catalog, written last */
  new_obj(pdf); /* 2: page tree, written last */
  return put(pdf, "%PDF-1.5\n%\xe2\xe3\xcf\xd3\n", 15, error);
}

static const char *space_name(kcps_pdf_space_t space) {
  switch (space) {
  case KCPS_PDF_GRAY:
    return "/DeviceGray";
  case KCPS_PDF_RGB:
    return "/DeviceRGB";
  case KCPS_PDF_CMYK:
    return "/DeviceCMYK";
  }
  return "/DeviceGray";
}

static unsigned space_components(kcps_pdf_space_t space) {
  return space == KCPS_PDF_CMYK ? 4 : space == KCPS_PDF_RGB ? 3 : 1;
}

bool kcps__pdf_page_begin(kcps_pdf_t *pdf, const kcps_pdf_page_t *page, GError **error) {
  g_assert(!pdf->in_stream);
  pdf->page = *page;
  pdf->image_id = new_obj(pdf);
  guint length_id = new_obj(pdf);
  if (!start_obj(pdf, pdf->image_id, error) ||
      !putf(pdf, error,
            "<< /Type /XObject /Subtype /Image /Width %u /Height %u /ColorSpace %s"
            " /BitsPerComponent %u /Length %u 0 R /Filter %s",
            page->width, page->height, space_name(page->space), page->bpc, length_id,
            page->dct ? "/DCTDecode" : "/FlateDecode"))
    return false;
  if (page->invert) {
    if (!put(pdf, " /Decode [", 10, error))
      return false;
    for (unsigned i = 0; i < space_components(page->space); i++)
      if (!put(pdf, "1 0 ", 4, error))
        return false;
    if (!put(pdf, "]", 1, error))
      return false;
  }
  if (!put(pdf, " >>\nstream\n", 11, error))
    return false;
  pdf->stream_start = pdf->offset;
  pdf->in_stream = true;
  if (!page->dct) {
    memset(&pdf->z, 0, sizeof pdf->z);
    if (deflateInit(&pdf->z, ZLIB_LEVEL) != Z_OK) {
      g_set_error(error, KCPS_CONVERT_ERROR, KCPS_CONVERT_ERROR_IO, "zlib could not start");
      return false;
    }
    pdf->deflating = true;
  }
  return true;
}

static bool deflate_some(kcps_pdf_t *pdf, int flush, GError **error) {
  int rc;
  do {
    pdf->z.next_out = pdf->zbuf;
    pdf->z.avail_out = sizeof pdf->zbuf;
    rc = deflate(&pdf->z, flush);
    if (rc == Z_STREAM_ERROR) {
      g_set_error(error, KCPS_CONVERT_ERROR, KCPS_CONVERT_ERROR_IO, "zlib failed");
      return false;
    }
    if (!put(pdf, pdf->zbuf, sizeof pdf->zbuf - pdf->z.avail_out, error))
      return false;
  } while (pdf->z.avail_out == 0 || (flush == Z_FINISH && rc != Z_STREAM_END));
  return true;
}

bool kcps__pdf_page_write(kcps_pdf_t *pdf, const void *data, size_t len, GError **error) {
  g_assert(pdf->in_stream);
  if (pdf->page.dct)
    return put(pdf, data, len, error);
  pdf->z.next_in = (Bytef *)(uintptr_t)data;
  while (len > 0) {
    uInt chunk = (uInt)MIN(len, (size_t)1 << 30);
    pdf->z.next_in = (Bytef *)(uintptr_t)data;
    pdf->z.avail_in = chunk;
    if (!deflate_some(pdf, Z_NO_FLUSH, error))
      return false;
    data = (const unsigned char *)data + chunk;
    len -= chunk;
  }
  return true;
}

bool kcps__pdf_page_end(kcps_pdf_t *pdf, GError **error) {
  g_assert(pdf->in_stream);
  if (pdf->deflating) {
    pdf->z.avail_in = 0;
    if (!deflate_some(pdf, Z_FINISH, error))
      return false;
    deflateEnd(&pdf->z);
    pdf->deflating = false;
  }
  pdf->in_stream = false;
  uint64_t length = pdf->offset - pdf->stream_start;
  guint length_id = pdf->image_id + 1;
  guint content_id = new_obj(pdf);
  guint page_id = new_obj(pdf);
  /* Points = pixels * 72 / dpi. */
  double w = pdf->page.width * 72.0 / pdf->page.xdpi;
  double h = pdf->page.height * 72.0 / pdf->page.ydpi;
  char content[256];
  int clen = g_snprintf(content, sizeof content, "q %.4f 0 0 %.4f 0 0 cm /Im0 Do Q\n", w, h);
  if (!put(pdf, "\nendstream\nendobj\n", 18, error) || !start_obj(pdf, length_id, error) ||
      !putf(pdf, error, "%" G_GUINT64_FORMAT "\nendobj\n", length) ||
      !start_obj(pdf, content_id, error) ||
      !putf(pdf, error, "<< /Length %d >>\nstream\n%sendstream\nendobj\n", clen, content) ||
      !start_obj(pdf, page_id, error) ||
      !putf(pdf, error,
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %.4f %.4f]"
            " /Resources << /XObject << /Im0 %u 0 R >> >> /Contents %u 0 R >>\nendobj\n",
            w, h, pdf->image_id, content_id))
    return false;
  g_array_append_val(pdf->pages, page_id);
  return true;
}

bool kcps__pdf_finish(kcps_pdf_t *pdf, GError **error) {
  if (!start_obj(pdf, 2, error) || !putf(pdf, error, "<< /Type /Pages /Count %u /Kids [", pdf->pages->len))
    return false;
  for (guint i = 0; i < pdf->pages->len; i++)
    if (!putf(pdf, error, "%u 0 R ", g_array_index(pdf->pages, guint, i)))
      return false;
  if (!put(pdf, "] >>\nendobj\n", 12, error) || !start_obj(pdf, 1, error) ||
      !putf(pdf, error, "<< /Type /Catalog /Pages 2 0 R >>\nendobj\n"))
    return false;
  uint64_t xref = pdf->offset;
  if (!putf(pdf, error, "xref\n0 %u\n0000000000 65535 f \n", pdf->offsets->len + 1))
    return false;
  for (guint i = 0; i < pdf->offsets->len; i++)
    if (!putf(pdf, error, "%010" G_GUINT64_FORMAT " 00000 n \n",
              g_array_index(pdf->offsets, uint64_t, i)))
      return false;
  if (!putf(pdf, error, "trailer\n<< /Size %u /Root 1 0 R >>\nstartxref\n%" G_GUINT64_FORMAT
                        "\n%%%%EOF\n",
            pdf->offsets->len + 1, xref))
    return false;
  return flush_out(pdf, error);
}
