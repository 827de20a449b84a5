/* DNS-SD discovery: the TXT record of an IPP printer service and the URI
 * made of it. Everything here is untrusted input (fuzzed: fuzz-discover). */
#include "client/discover.h"

#include <arpa/inet.h>
#include <string.h>

#include "client/release.h"

#define TXT_KEY_MAX 16

void kcps_discover_txt_clear(kcps_discover_txt_t *txt)
{
  g_free(txt->rp);
  g_free(txt->ty);
  g_free(txt->note);
  g_free(txt->pdl);
  g_free(txt->uuid);
  memset(txt, 0, sizeof(*txt));
  txt->color = -1;
  txt->duplex = -1;
}

/* A copy of the value when it is UTF-8 without control characters, else NULL. */
static char *clean_value(const uint8_t *value, size_t len)
{
  if (!g_utf8_validate_len((const char *)value, len, NULL))
    return NULL;
  for (size_t i = 0; i < len; i++)
    if (value[i] < 0x20 || value[i] == 0x7f)
      return NULL;
  return g_strndup((const char *)value, len);
}

/* Whether rp can stand as the path of a printer URI: RFC 3986 path
 * characters only, no "..", no query or fragment. */
static bool rp_ok(const char *rp)
{
  static const char allowed[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                "0123456789-._~/!$&'()*+,;=:@";
  return strlen(rp) <= 255 && strspn(rp, allowed) == strlen(rp) && strstr(rp, "..") == NULL
         && strstr(rp, "//") == NULL;
}

/* T/F (and true/false) of a boolean key; -1 when neither. */
static int tf_value(const char *value)
{
  if (value == NULL)
    return -1;
  if (g_ascii_strcasecmp(value, "T") == 0 || g_ascii_strcasecmp(value, "true") == 0)
    return 1;
  if (g_ascii_strcasecmp(value, "F") == 0 || g_ascii_strcasecmp(value, "false") == 0)
    return 0;
  return -1;
}

bool kcps_discover_parse_txt(const uint8_t *wire, size_t len, kcps_discover_txt_t *txt)
{
  memset(txt, 0, sizeof(*txt));
  txt->color = -1;
  txt->duplex = -1;
  bool seen_color = false, seen_duplex = false, seen_rp = false;
  size_t off = 0;
  while (off < len) {
    size_t n = wire[off++];
    if (n > len - off)
      goto bad; /* a string running past the record */
    const uint8_t *s = wire + off;
    off += n;
    const uint8_t *eq = n > 0 ? memchr(s, '=', n) : NULL;
    size_t klen = eq != NULL ? (size_t)(eq - s) : n;
    if (klen == 0 || klen >= TXT_KEY_MAX)
      continue; /* empty string, no key, or a key we do not know anyway */
    char key[TXT_KEY_MAX];
    for (size_t i = 0; i < klen; i++)
      key[i] = g_ascii_tolower((char)s[i]);
    key[klen] = '\0';
    const uint8_t *value = eq != NULL ? eq + 1 : NULL;
    size_t vlen = eq != NULL ? n - klen - 1 : 0;

    char **field = NULL;
    if (strcmp(key, "rp") == 0) {
      if (seen_rp)
        continue;
      seen_rp = true;
      g_free(txt->rp);
      txt->rp = value != NULL ? clean_value(value, vlen) : g_strdup("");
      if (txt->rp == NULL)
        goto bad;
      continue;
    } else if (strcmp(key, "ty") == 0)
      field = &txt->ty;
    else if (strcmp(key, "note") == 0)
      field = &txt->note;
    else if (strcmp(key, "pdl") == 0)
      field = &txt->pdl;
    else if (strcmp(key, "uuid") == 0)
      field = &txt->uuid;
    else if (strcmp(key, "color") == 0 || strcmp(key, "duplex") == 0) {
      bool *seen = key[0] == 'c' ? &seen_color : &seen_duplex;
      if (*seen)
        continue;
      *seen = true;
      g_autofree char *v = value != NULL ? clean_value(value, vlen) : NULL;
      *(key[0] == 'c' ? &txt->color : &txt->duplex) = tf_value(v);
      continue;
    } else
      continue;
    /* The first occurrence counts; an unreadable value is as if absent. */
    if (*field == NULL && value != NULL && vlen > 0)
      *field = clean_value(value, vlen);
  }
  if (txt->rp == NULL)
    txt->rp = g_strdup("");
  if (txt->rp[0] == '/')
    memmove(txt->rp, txt->rp + 1, strlen(txt->rp));
  if (!rp_ok(txt->rp))
    goto bad;
  return true;

bad:
  kcps_discover_txt_clear(txt);
  return false;
}

char *kcps_discover_make_uri(bool secure, const char *address, const char *ifname, int port,
                             const char *rp)
{
  if (address == NULL || rp == NULL || port <= 0 || port > 65535 || !rp_ok(rp) || rp[0] == '/')
    return NULL;
  unsigned char buf[sizeof(struct in6_addr)];
  g_autofree char *host = NULL;
  if (inet_pton(AF_INET, address, buf) == 1)
    host = g_strdup(address);
  else if (inet_pton(AF_INET6, address, buf) == 1) {
    bool link_local = buf[0] == 0xfe && (buf[1] & 0xc0) == 0x80;
    if (link_local && (ifname == NULL || *ifname == '\0'
                       || strspn(ifname, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                         "0123456789._-") != strlen(ifname)))
      return NULL;
    host = link_local ? g_strdup_printf("[%s%%25%s]", address, ifname)
                      : g_strdup_printf("[%s]", address);
  } else
    return NULL;
  char *uri = g_strdup_printf("%s://%s:%d/%s", secure ? "ipps" : "ipp", host, port, rp);
  if (!kcps_release_check_uri(uri, NULL, NULL)) {
    g_free(uri);
    return NULL;
  }
  return uri;
}
