/* Document conversion for the virtual printer: the raster and image formats
 * it accepts (PWG raster, Apple URF, JPEG, PNG) become PDF, page by page. */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

G_BEGIN_DECLS

#define KCPS_CONVERT_ERROR (kcps_convert_error_quark())
GQuark kcps_convert_error_quark(void);

/* Why a conversion failed. All but _IO are the sender's fault: the IPP layer
 * maps _FORMAT to client-error-document-format-not-supported and the rest of
 * those to client-error-document-format-error. _IO and _NO_SPACE are ours
 * (read/write). */
typedef enum {
  KCPS_CONVERT_ERROR_FORMAT,      /* MIME type not in kcps_convert_supported() */
  KCPS_CONVERT_ERROR_EMPTY,       /* no bytes, or no page */
  KCPS_CONVERT_ERROR_GARBAGE,     /* not the format it claims to be */
  KCPS_CONVERT_ERROR_TRUNCATED,   /* ends inside a page */
  KCPS_CONVERT_ERROR_BAD_HEADER,  /* header values out of bounds or inconsistent */
  KCPS_CONVERT_ERROR_UNSUPPORTED, /* colour space / depth we do not take */
  KCPS_CONVERT_ERROR_IO,          /* reading in_fd or writing out_fd failed */
  KCPS_CONVERT_ERROR_NO_SPACE,    /* writing out_fd failed: disk or quota full */
} kcps_convert_error_t;

typedef struct {
  unsigned pages;         /* pages written to the PDF */
  uint64_t bytes_written; /* size of the PDF */
} kcps_convert_result_t;

/* The MIME types kcps_convert_to_pdf() takes, NULL-terminated, static. */
const char *const *kcps_convert_supported(void);

/* true when FORMAT (a MIME type, parameters ignored) is one of them. */
bool kcps_convert_is_supported(const char *format);

/* Reads a document of FORMAT from IN_FD to its end and writes it as PDF to
 * OUT_FD (from its current position), each page at its own size and colour
 * space. Memory stays bounded by one page. RESULT may be NULL. On false,
 * ERROR (KCPS_CONVERT_ERROR) names the problem and what was written to
 * OUT_FD is meaningless: the caller deletes it. Neither fd is closed. */
bool kcps_convert_to_pdf(const char *format, int in_fd, int out_fd,
                         kcps_convert_result_t *result, GError **error);

G_END_DECLS
