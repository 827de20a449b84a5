/* What the convert module's files share: the buffered reader, the
 * streaming PDF writer and the limits every decoder checks. */
#pragma once

#include "convert/convert.h"

#include <stddef.h>
#include <zlib.h>

/* Bounds checked on every header before a pixel is read. */
typedef struct {
  unsigned max_dpi;        /* resolution, each direction */
  double max_side_m;       /* page side in metres */
  uint64_t max_pixels;     /* pixels of one page */
  size_t max_image_bytes;  /* a JPEG is held whole: its size */
} kcps_convert_limits_t;

void kcps__convert_default_limits(kcps_convert_limits_t *limits);

/* Same as kcps_convert_to_pdf() with explicit LIMITS (fuzzing uses small ones). */
bool kcps__convert_to_pdf_limited(const char *format, int in_fd, int out_fd,
                                  const kcps_convert_limits_t *limits,
                                  kcps_convert_result_t *result, GError **error);

/* Buffered reader over a fd. */
typedef struct {
  int fd;
  bool eof;
  bool failed; /* read(2) error; errno_saved says which */
  int errno_saved;
  size_t pos, len;
  uint64_t consumed;
  unsigned char buf[65536];
} kcps_reader_t;

void kcps__reader_init(kcps_reader_t *r, int fd);
/* Reads up to N bytes into DST; returns how many (short only at EOF/error). */
size_t kcps__reader_read(kcps_reader_t *r, void *dst, size_t n);
/* Next byte, or -1 at EOF/error. */
int kcps__reader_byte(kcps_reader_t *r);
/* After a short read: sets ERROR to _IO or TRUNCATED (WHAT names the part). */
void kcps__reader_short(kcps_reader_t *r, const char *what, GError **error);

/* Streaming PDF writer: one image XObject a page, objects written in order. */
typedef enum {
  KCPS_PDF_GRAY,
  KCPS_PDF_RGB,
  KCPS_PDF_CMYK,
} kcps_pdf_space_t;

typedef struct {
  unsigned width, height;  /* pixels */
  double xdpi, ydpi;
  kcps_pdf_space_t space;
  unsigned bpc;            /* 1, 8 or 16 */
  bool invert;             /* /Decode [1 0 ...]: 1-bit black, Adobe CMYK JPEG */
  bool dct;                /* data is a JPEG stream, written as is */
} kcps_pdf_page_t;

typedef struct {
  int fd;
  uint64_t offset;       /* bytes written so far */
  GArray *offsets;       /* uint64_t per object id - 1 */
  GArray *pages;         /* guint object ids of the page objects */
  z_stream z;
  bool in_stream, deflating;
  uint64_t stream_start;
  kcps_pdf_page_t page;
  guint image_id;
  size_t out_len;
  unsigned char out[65536];
  unsigned char zbuf[65536];
} kcps_pdf_t;

void kcps__pdf_init(kcps_pdf_t *pdf, int fd);
void kcps__pdf_clear(kcps_pdf_t *pdf);
bool kcps__pdf_begin(kcps_pdf_t *pdf, GError **error);
bool kcps__pdf_page_begin(kcps_pdf_t *pdf, const kcps_pdf_page_t *page, GError **error);
bool kcps__pdf_page_write(kcps_pdf_t *pdf, const void *data, size_t len, GError **error);
bool kcps__pdf_page_end(kcps_pdf_t *pdf, GError **error);
bool kcps__pdf_finish(kcps_pdf_t *pdf, GError **error);
unsigned kcps__pdf_page_count(const kcps_pdf_t *pdf);

/* Decoders: read R to its end, add pages to PDF. */
bool kcps__convert_pwg(kcps_reader_t *r, kcps_pdf_t *pdf, const kcps_convert_limits_t *limits,
                       GError **error);
bool kcps__convert_urf(kcps_reader_t *r, kcps_pdf_t *pdf, const kcps_convert_limits_t *limits,
                       GError **error);
bool kcps__convert_jpeg(kcps_reader_t *r, kcps_pdf_t *pdf, const kcps_convert_limits_t *limits,
                        GError **error);
bool kcps__convert_png(kcps_reader_t *r, kcps_pdf_t *pdf, const kcps_convert_limits_t *limits,
                       GError **error);

/* Checks a page's size against LIMITS; sets BAD_HEADER naming the field. */
bool kcps__convert_check_page(const kcps_convert_limits_t *limits, const char *format,
                              uint64_t width, uint64_t height, uint64_t xdpi, uint64_t ydpi,
                              GError **error);
