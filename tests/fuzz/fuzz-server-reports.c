/* Fuzz target: the query text of the report, audit and external API
 * routes (untrusted, from any HTTPS client) and the form check of API keys.
 * The input is up to three lines: a month, a count, a bearer token. An
 * accepted month is a real UTC calendar month; an accepted count is within
 * its bounds; a refusal names the parameter. */
#include "server-stub/server-private.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_refusal(bool ok, GError *error, const char *name)
{
  if (ok && error)
    __builtin_trap();
  if (!ok && (!error || !strstr(error->message, name)))
    __builtin_trap();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  char *text = g_strndup((const char *)data, size);
  char **lines = g_strsplit(text, "\n", 3);
  const char *month = lines[0];
  const char *count = month ? lines[1] : NULL;
  const char *key = count ? lines[2] : NULL;

  GError *error = NULL;
  gint64 start = 0, end = 0;
  char out[8] = "";
  bool ok = kcps__server_parse_month(month, 1700000000, &start, &end, out, &error);
  check_refusal(ok, error, "\"month\"");
  /* 28 to 31 days, written back as the same YYYY-MM. */
  if (ok && (end - start < 28 * 86400 || end - start > 31 * 86400 || strlen(out) != 7 ||
             (month && strcmp(out, month) != 0)))
    __builtin_trap();
  g_clear_error(&error);

  gint64 v = -1;
  ok = kcps__server_parse_count("limit", count, 1, 500, 100, &v, &error);
  check_refusal(ok, error, "\"limit\"");
  if (ok && (v < 1 || v > 500))
    __builtin_trap();
  g_clear_error(&error);

  if (kcps__server_api_key_form(key) &&
      (strlen(key) != 49 || strncmp(key, "kcpsk_", 6) != 0 || strpbrk(key, " \t\r\"'\\")))
    __builtin_trap();

  g_strfreev(lines);
  g_free(text);
  return 0;
}
