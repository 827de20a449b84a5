/* PKCE, the start address and the loopback redirect's request (sso-loopback.h). */
#include "common/sso-loopback.h"

#include <string.h>
#include <sys/random.h>

#define REQUEST_MAX 8192
#define CODE_MAX 512

/* base64url without padding. */
static char *base64url(const guchar *data, gsize len)
{
  char *text = g_base64_encode(data, len);
  for (char *p = text; *p != '\0'; p++) {
    if (*p == '+')
      *p = '-';
    else if (*p == '/')
      *p = '_';
    else if (*p == '=') {
      *p = '\0';
      break;
    }
  }
  return text;
}

char *kcps_sso_random(void)
{
  guchar bytes[32];
  size_t got = 0;
  while (got < sizeof bytes) {
    ssize_t n = getrandom(bytes + got, sizeof bytes - got, 0);
    if (n <= 0)
      return NULL;
    got += (size_t)n;
  }
  char *text = base64url(bytes, sizeof bytes);
  explicit_bzero(bytes, sizeof bytes);
  return text;
}

char *kcps_sso_challenge(const char *verifier)
{
  guchar digest[32];
  gsize digest_len = sizeof digest;
  GChecksum *sha = g_checksum_new(G_CHECKSUM_SHA256);
  g_checksum_update(sha, (const guchar *)verifier, (gssize)strlen(verifier));
  g_checksum_get_digest(sha, digest, &digest_len);
  g_checksum_free(sha);
  return base64url(digest, digest_len);
}

char *kcps_sso_start_url(const char *server, const char *org, guint16 port,
                              const char *state, const char *challenge, const char *login_hint)
{
  if (server == NULL || org == NULL || *org == '\0' || strlen(org) > 64 || port == 0)
    return NULL;
  for (const char *p = org; *p != '\0'; p++)
    if (!g_ascii_isalnum(*p) && strchr("-_.", *p) == NULL)
      return NULL;
  g_autofree char *redirect =
    g_strdup_printf("http://127.0.0.1:%u" KCPS_SSO_PATH "?state=%s", port, state);
  g_autofree char *redirect_q = g_uri_escape_string(redirect, NULL, FALSE);
  g_autofree char *challenge_q = g_uri_escape_string(challenge, NULL, FALSE);
  size_t len = strlen(server);
  while (len > 0 && server[len - 1] == '/')
    len--;
  g_autofree char *hint_q =
    login_hint != NULL && *login_hint != '\0' ? g_uri_escape_string(login_hint, NULL, FALSE)
                                               : NULL;
  return g_strdup_printf("%.*s/api/v1/sso/%s/start?redirect_uri=%s&code_challenge=%s"
                         "&code_challenge_method=S256%s%s",
                         (int)len, server, org, redirect_q, challenge_q,
                         hint_q != NULL ? "&login_hint=" : "", hint_q != NULL ? hint_q : "");
}

bool kcps_sso_preset_fits(const char *wanted, const char *preset)
{
  static const char *const known[] = {"entra", "google", "generic"};
  bool is_known = false;
  for (size_t i = 0; i < G_N_ELEMENTS(known) && !is_known; i++)
    is_known = g_strcmp0(preset, known[i]) == 0;
  return is_known && (wanted == NULL || strcmp(wanted, preset) == 0);
}

/* Constant-time equality of two strings of the same length. */
static bool same_secret(const char *a, const char *b)
{
  size_t la = strlen(a), lb = strlen(b);
  unsigned char diff = la != lb;
  for (size_t i = 0; i < la && i < lb; i++)
    diff |= (unsigned char)(a[i] ^ b[i]);
  return diff == 0;
}

kcps_sso_result_t kcps_sso_parse_request(const char *data, size_t len,
                                                   const char *state, char **code,
                                                   char **error)
{
  *code = NULL;
  *error = NULL;
  if (len > REQUEST_MAX)
    len = REQUEST_MAX;
  const char *end = memchr(data, '\n', len);
  if (end == NULL)
    return len >= REQUEST_MAX ? KCPS_SSO_BAD : KCPS_SSO_INCOMPLETE;
  size_t line_len = (size_t)(end - data);
  if (line_len > 0 && data[line_len - 1] == '\r')
    line_len--;
  if (memchr(data, '\0', line_len) != NULL)
    return KCPS_SSO_BAD;
  g_autofree char *line = g_strndup(data, line_len);
  /* "GET <target> HTTP/1.x" */
  g_auto(GStrv) parts = g_strsplit(line, " ", 4);
  if (g_strv_length(parts) != 3 || strcmp(parts[0], "GET") != 0
      || !g_str_has_prefix(parts[2], "HTTP/1."))
    return KCPS_SSO_BAD;
  const char *target = parts[1];
  const char *query = strchr(target, '?');
  size_t path_len = query != NULL ? (size_t)(query - target) : strlen(target);
  if (path_len != strlen(KCPS_SSO_PATH)
      || strncmp(target, KCPS_SSO_PATH, path_len) != 0 || query == NULL)
    return KCPS_SSO_BAD;

  g_autofree char *got_state = NULL, *got_code = NULL, *got_error = NULL;
  g_auto(GStrv) params = g_strsplit(query + 1, "&", 32);
  for (char **p = params; *p != NULL; p++) {
    char *eq = strchr(*p, '=');
    if (eq == NULL)
      continue;
    *eq = '\0';
    char **slot = strcmp(*p, "state") == 0 ? &got_state
                  : strcmp(*p, "code") == 0 ? &got_code
                  : strcmp(*p, "error") == 0 ? &got_error : NULL;
    if (slot == NULL)
      continue;
    if (*slot != NULL)
      return KCPS_SSO_BAD; /* twice: ambiguous */
    *slot = g_uri_unescape_string(eq + 1, NULL);
    if (*slot == NULL || strlen(*slot) > CODE_MAX)
      return KCPS_SSO_BAD;
  }
  if (got_state == NULL || state == NULL || !same_secret(got_state, state))
    return KCPS_SSO_BAD;
  if (got_error != NULL) {
    /* Only printable ASCII of it goes on (it is shown to the user). */
    for (char *c = got_error; *c != '\0'; c++)
      if (!g_ascii_isprint(*c))
        *c = '?';
    *error = g_steal_pointer(&got_error);
    return KCPS_SSO_REFUSED;
  }
  if (got_code == NULL || *got_code == '\0')
    return KCPS_SSO_BAD;
  for (const char *c = got_code; *c != '\0'; c++)
    if (!g_ascii_isgraph(*c))
      return KCPS_SSO_BAD;
  *code = g_steal_pointer(&got_code);
  return KCPS_SSO_CODE;
}

char *kcps_sso_answer(unsigned status, const char *text)
{
  g_autofree char *escaped = g_markup_escape_text(text, -1);
  g_autofree char *page = g_strdup_printf(
    "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>KCPS</title></head>"
    "<body><p>%s</p></body></html>", escaped);
  return g_strdup_printf(
    "HTTP/1.1 %u %s\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: %zu\r\n"
    "Cache-Control: no-store\r\nConnection: close\r\n\r\n%s",
    status, status == 200 ? "OK" : "Bad Request", strlen(page), page);
}
