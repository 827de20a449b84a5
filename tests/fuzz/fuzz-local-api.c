/* Fuzz target: what a local process or a web page controls on 5572 and an
 * MFP on 5571 before any ticket check: the Host and Origin headers, the
 * login and settings bodies, and the pull path. Input:
 * "host\norigin\npath\nbody" (the body goes to both body parsers). */
#include "client/daemon-private.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The next '\n'-terminated field of *text (NUL-free copy), advancing it. */
static char *next_field(const char **text, const char *end)
{
  const char *nl = memchr(*text, '\n', (size_t)(end - *text));
  const char *stop = nl != NULL ? nl : end;
  char *field = g_strndup(*text, (gsize)(stop - *text));
  *text = nl != NULL ? nl + 1 : end;
  return field;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  const char *text = (const char *)data;
  const char *end = text + size;
  char *host = next_field(&text, end);
  char *origin = next_field(&text, end);
  char *path = next_field(&text, end);

  /* Whatever is accepted must really be loopback. */
  if (kcps__local_host_ok(host)
      && !(g_str_has_prefix(host, "127.0.0.1") || g_str_has_prefix(host, "[::1]")
           || g_ascii_strncasecmp(host, "localhost", 9) == 0))
    __builtin_trap();
  (void)origin; /* any Origin is refused now; the field stays for the corpus's format */

  char *job_id = kcps__pull_job_id_from_path(path);
  if (job_id != NULL && (strchr(job_id, '/') != NULL || strstr(job_id, "..") != NULL))
    __builtin_trap();
  g_free(job_id);

  char *email = NULL, *password = NULL;
  GError *error = NULL;
  if (kcps__local_parse_login(text, (size_t)(end - text), &email, &password, &error)) {
    if (*email == '\0' || *password == '\0' || error != NULL)
      __builtin_trap();
  } else if (error == NULL || error->message[0] == '\0') {
    __builtin_trap();
  }
  g_clear_error(&error);

  /* PUT /v1/settings: one of the three modes, or an error that says why. */
  kcps_spool_mode_t mode = (kcps_spool_mode_t)-1;
  if (kcps__settings_parse_put(text, (size_t)(end - text), &mode, &error)) {
    if (error != NULL || (mode != KCPS_SPOOL_MODE_UNSET && mode != KCPS_SPOOL_MODE_LOCAL
                          && mode != KCPS_SPOOL_MODE_CLOUD))
      __builtin_trap();
  } else if (error == NULL || error->message[0] == '\0' || mode != (kcps_spool_mode_t)-1) {
    __builtin_trap();
  }
  g_clear_error(&error);
  g_free(email);
  kcps__secret_free(password);
  g_free(host);
  g_free(origin);
  g_free(path);
  return 0;
}
