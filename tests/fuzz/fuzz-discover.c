/* Fuzz target: what anyone on the link controls in printer discovery. Input:
 * a DNS-SD TXT record in wire format (length-prefixed strings), parsed as
 * kcpsd parses a printer's; the URI made of its rp must be a valid printer
 * URI, and every string kept must be UTF-8 without control characters. */
#include "client/discover.h"
#include "client/release.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_text(const char *s)
{
  if (s == NULL)
    return;
  if (!g_utf8_validate(s, -1, NULL))
    __builtin_trap();
  for (const char *p = s; *p != '\0'; p++)
    if ((unsigned char)*p < 0x20 || *p == 0x7f)
      __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  kcps_discover_txt_t txt;
  if (kcps_discover_parse_txt(data, size, &txt)) {
    if (txt.rp == NULL || txt.rp[0] == '/' || strstr(txt.rp, "..") != NULL)
      __builtin_trap();
    check_text(txt.rp);
    check_text(txt.ty);
    check_text(txt.note);
    check_text(txt.pdl);
    check_text(txt.uuid);
    if (txt.color < -1 || txt.color > 1 || txt.duplex < -1 || txt.duplex > 1)
      __builtin_trap();
    const char *addresses[] = {"127.0.0.1", "fd00::2", "fe80::1"};
    for (size_t i = 0; i < G_N_ELEMENTS(addresses); i++) {
      char *uri = kcps_discover_make_uri(i == 1, addresses[i], "eth0", 631, txt.rp);
      char *key = NULL;
      if (uri == NULL || !kcps_release_check_uri(uri, &key, NULL) || key == NULL)
        __builtin_trap();
      g_free(key);
      g_free(uri);
    }
    kcps_discover_txt_clear(&txt);
  } else if (txt.rp != NULL || txt.ty != NULL || txt.note != NULL) {
    __builtin_trap(); /* a refused record leaves nothing behind */
  }
  /* Hostile addresses and zones never make a URI that fails the check. */
  if (size > 0 && size < 64) {
    char *text = g_strndup((const char *)data, size);
    char *uri = kcps_discover_make_uri(false, text, text, 631, "ipp/print");
    if (uri != NULL && !kcps_release_check_uri(uri, NULL, NULL))
      __builtin_trap();
    g_free(uri);
    g_free(text);
  }
  return 0;
}
