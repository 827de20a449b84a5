/* Fuzz target: documents sent to the virtual printer for conversion to PDF
 * (untrusted bytes). The first byte picks the format (PWG raster, URF,
 * JPEG, PNG), the rest is the document; small limits keep each run short. */
#include "convert/convert-private.h"

#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  static const char *const formats[] = {"image/pwg-raster", "image/urf", "image/jpeg",
                                        "image/png"};
  const char *format = formats[data[0] % 4];
  int in_fd = memfd_create("fuzz-in", MFD_CLOEXEC);
  int out_fd = memfd_create("fuzz-out", MFD_CLOEXEC);
  if (in_fd < 0 || out_fd < 0)
    __builtin_trap();
  size_t done = 1;
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
  } else if (error == NULL || error->domain != KCPS_CONVERT_ERROR) {
    __builtin_trap(); /* every failure names its cause */
  }
  g_clear_error(&error);
  close(in_fd);
  close(out_fd);
  return 0;
}
