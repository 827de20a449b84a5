/* Fuzz target: what a printer and a local caller control in direct
 * printing. Input: a release request body (5572), a '\0', then a
 * Get-Printer-Attributes response as IPP bytes from the printer. The body's
 * printer URI goes through the URI check too. */
#include "client/release.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct {
  const uint8_t *data;
  size_t len, pos;
} reader_t;

static ssize_t read_cb(void *ctx, ipp_uchar_t *buf, size_t len)
{
  reader_t *r = ctx;
  size_t n = MIN(len, r->len - r->pos);
  memcpy(buf, r->data + r->pos, n);
  r->pos += n;
  return (ssize_t)n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  const uint8_t *nul = memchr(data, 0, size);
  size_t body_len = nul != NULL ? (size_t)(nul - data) : size;

  kcps_release_opts_t opts;
  JsonNode *keep = NULL;
  GError *error = NULL;
  if (kcps_release_parse_request((const char *)data, body_len, &opts, &keep, &error)) {
    char *key = NULL;
    if (opts.copies < 1 || opts.copies > 999 || !kcps_release_check_uri(opts.printer, &key, NULL)
        || key == NULL || strchr(key, ':') == NULL)
      __builtin_trap();
    g_free(key);
    json_node_unref(keep);
  } else if (error == NULL || error->message[0] == '\0') {
    __builtin_trap();
  }
  g_clear_error(&error);

  if (nul != NULL) {
    reader_t r = {nul + 1, size - body_len - 1, 0};
    ipp_t *resp = ippNew();
    ipp_state_t st;
    while ((st = ippReadIO(&r, read_cb, 1, NULL, resp)) != IPP_STATE_DATA && st != IPP_STATE_ERROR)
      if (r.pos >= r.len)
        break;
    kcps_printer_caps_t caps;
    kcps_release_caps_from_ipp(resp, &caps);
    ippDelete(resp);
    if (caps.n_pwg_res > 8 || caps.n_urf_res > 8 || caps.copies_max < 1 || caps.copies_max > 999)
      __builtin_trap();
    kcps_release_opts_t o = {"ipp://p/x", 2, KCPS_COLOR_COLOR, true};
    kcps_raster_plan_t plan;
    if (kcps_release_plan(&caps, &o, &plan, &error)) {
      if (plan.format == NULL || (strcmp(plan.format, "application/pdf") != 0 && plan.dpi < 72))
        __builtin_trap();
    } else if (error == NULL) {
      __builtin_trap();
    }
    g_clear_error(&error);
  }
  return 0;
}
