/* Fuzz target: the password rules of both presets (white paper 4.2 and
 * NIST SP 800-63B) on untrusted text. Input: one byte choosing the preset
 * (low bit), then the account's email up to the first newline, then the
 * password. Checks that an accepted password really meets its rules and
 * that a refusal names one. */
#include "server-stub/server-private.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* What the kcps preset promises of an accepted password. */
static bool
meets_kcps(const char *pw)
{
  static const char symbols[] = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";
  size_t len = strlen(pw);
  bool digit = false, upper = false, lower = false, symbol = false;
  for (const char *p = pw; *p; p++) {
    if (*p >= '0' && *p <= '9')
      digit = true;
    else if (*p >= 'A' && *p <= 'Z')
      upper = true;
    else if (*p >= 'a' && *p <= 'z')
      lower = true;
    else if (strchr(symbols, *p))
      symbol = true;
    else
      return false;
  }
  return len >= 8 && len <= 64 && digit && upper && lower && symbol;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size < 1)
    return 0;
  int preset = data[0] & 1;
  const char *rest = (const char *)data + 1;
  size_t n = size - 1;
  const char *nl = memchr(rest, '\n', n);
  char *email = nl ? g_strndup(rest, (gsize)(nl - rest)) : NULL;
  char *password = nl ? g_strndup(nl + 1, n - (size_t)(nl - rest) - 1) : g_strndup(rest, n);

  GError *error = NULL;
  bool ok = kcps__server_password_check(preset, email, password, &error);
  if (ok) {
    if (error)
      __builtin_trap();
    if (preset == 0 && !meets_kcps(password))
      __builtin_trap();
    if (preset == 1) {
      glong chars = g_utf8_strlen(password, -1);
      if (!g_utf8_validate(password, -1, NULL) || chars < 15 || chars > 64)
        __builtin_trap();
    }
  } else if (!error || !g_str_has_prefix(error->message, "password rule \"")) {
    __builtin_trap();
  }
  g_clear_error(&error);
  g_free(email);
  g_free(password);
  return 0;
}
