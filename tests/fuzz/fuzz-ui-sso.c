/* Fuzz target: the tray's loopback redirect listener (common/sso-loopback.c) reads
 * whatever a local program or a web page sends to 127.0.0.1:PORT. Input: the
 * request's bytes; the state is fixed. A code or an error comes out only for
 * the right state, and is printable. */
#include "common/sso-loopback.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  char *code = NULL, *error = NULL;
  kcps_sso_result_t result =
    kcps_sso_parse_request((const char *)data, size, "S1", &code, &error);
  switch (result) {
  case KCPS_SSO_CODE:
    if (code == NULL || *code == '\0' || error != NULL)
      __builtin_trap();
    for (const char *c = code; *c; c++)
      if (!g_ascii_isgraph(*c))
        __builtin_trap();
    break;
  case KCPS_SSO_REFUSED:
    if (error == NULL || code != NULL)
      __builtin_trap();
    for (const char *c = error; *c; c++)
      if (!g_ascii_isprint(*c))
        __builtin_trap();
    break;
  case KCPS_SSO_INCOMPLETE:
  case KCPS_SSO_BAD:
    if (code != NULL || error != NULL)
      __builtin_trap();
    break;
  }
  g_free(code);
  g_free(error);
  return 0;
}
