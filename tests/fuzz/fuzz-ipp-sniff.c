/* Fuzz target: a document sent to the virtual printer as
 * application/octet-stream (untrusted bytes). Its first bytes are typed
 * (kcps__ipp_sniff_format) and the document then converted as that format,
 * as ipp-document.c does; small limits keep each run short. PDFs go to
 * poppler in the spool and are not converted here. */
#include "convert/convert-private.h"
#include "ipp/ipp-private.h"

#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *format = kcps__ipp_sniff_format(data, size);
  if (format == NULL || strcmp(format, "application/pdf") == 0)
    return 0;
  /* Typed means convert/ takes it. */
  if (!kcps_convert_is_supported(format))
    __builtin_trap();
  int in_fd = memfd_create("fuzz-in", MFD_CLOEXEC);
  int out_fd = memfd_create("fuzz-out", MFD_CLOEXEC);
  if (in_fd < 0 || out_fd < 0)
    __builtin_trap();
  size_t done = 0;
  while (done < size) {
    ssize_t n = write(in_fd, data + done, size - done);
    if (n <= 0)
      __builtin_trap();
    done += (size_t)n;
  }
  lseek(in_fd, 0, SEEK_SET);
  kcps_convert_limits_t limits;
  kcps__convert_default_limits(&limits);
  limits.max_pixels = (uint64_t)1 << 18;
  limits.max_image_bytes = (size_t)1 << 20;
  GError *error = NULL;
  kcps_convert_result_t result;
  if (kcps__convert_to_pdf_limited(format, in_fd, out_fd, &limits, &result, &error)) {
    if (result.pages == 0)
      __builtin_trap(); /* success means at least one page */
  } else if (error == NULL || error->domain != KCPS_CONVERT_ERROR ||
             error->code == KCPS_CONVERT_ERROR_FORMAT) {
    __builtin_trap(); /* every failure names its cause; the type was right */
  }
  g_clear_error(&error);
  close(in_fd);
  close(out_fd);
  return 0;
}
