/* Direct printing: what comes from outside — the printer's capabilities,
 * the release request of 5572, printer URIs — and the certificate pins
 * of IPPS printers (trust on first use). */
#define G_LOG_DOMAIN "kcpsd"

#include "client/release.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <glib/gstdio.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include "common/json-util.h"

G_DEFINE_QUARK(kcps-release-error-quark, kcps_release_error)

#define PRINTER_URI_MAX 1024
#define COPIES_MAX 999

/* --- capabilities ------------------------------------------------------------ */

static bool attr_has_string(ipp_t *response, const char *name, const char *value)
{
  ipp_attribute_t *attr = ippFindAttribute(response, name, IPP_TAG_ZERO);
  return attr != NULL && ippContainsString(attr, value);
}

static void add_res(int *list, int *n, int dpi)
{
  if (dpi < 72 || dpi > 2400 || *n >= 8)
    return;
  for (int i = 0; i < *n; i++)
    if (list[i] == dpi)
      return;
  list[(*n)++] = dpi;
}

void kcps_release_caps_from_ipp(ipp_t *response, kcps_printer_caps_t *caps)
{
  memset(caps, 0, sizeof(*caps));
  caps->copies_max = 1;
  if (response == NULL)
    return;
  caps->pdf = attr_has_string(response, "document-format-supported", "application/pdf");
  caps->pwg = attr_has_string(response, "document-format-supported", "image/pwg-raster");
  caps->urf = attr_has_string(response, "document-format-supported", "image/urf");

  ipp_attribute_t *ops = ippFindAttribute(response, "operations-supported", IPP_TAG_ENUM);
  bool create = false, send = false;
  for (int i = 0; ops != NULL && i < ippGetCount(ops); i++) {
    int op = ippGetInteger(ops, i);
    create = create || op == IPP_OP_CREATE_JOB;
    send = send || op == IPP_OP_SEND_DOCUMENT;
  }
  caps->create_job = create && send;

  caps->color = attr_has_string(response, "print-color-mode-supported", "color");
  caps->duplex = attr_has_string(response, "sides-supported", "two-sided-long-edge");

  ipp_attribute_t *copies = ippFindAttribute(response, "copies-supported", IPP_TAG_RANGE);
  if (copies != NULL && ippGetCount(copies) >= 1) {
    int upper = 0;
    int lower = ippGetRange(copies, 0, &upper);
    if (lower <= 1 && upper >= 1)
      caps->copies_max = MIN(upper, COPIES_MAX);
  }

  ipp_attribute_t *res = ippFindAttribute(response, "pwg-raster-document-resolution-supported",
                                          IPP_TAG_RESOLUTION);
  for (int i = 0; res != NULL && i < ippGetCount(res); i++) {
    ipp_res_t units;
    int y = 0;
    int x = ippGetResolution(res, i, &y, &units);
    if (units == IPP_RES_PER_INCH && x == y)
      add_res(caps->pwg_res, &caps->n_pwg_res, x);
  }
  caps->pwg_srgb8 = attr_has_string(response, "pwg-raster-document-type-supported", "srgb_8");
  caps->pwg_sgray8 = attr_has_string(response, "pwg-raster-document-type-supported", "sgray_8");

  /* urf-supported: keywords such as "W8", "SRGB24", "RS300" or "RS150-300". */
  ipp_attribute_t *urf = ippFindAttribute(response, "urf-supported", IPP_TAG_ZERO);
  for (int i = 0; urf != NULL && i < ippGetCount(urf); i++) {
    const char *kw = ippGetString(urf, i, NULL);
    if (kw == NULL)
      continue;
    if (strcmp(kw, "W8") == 0)
      caps->urf_w8 = true;
    else if (strcmp(kw, "SRGB24") == 0)
      caps->urf_srgb24 = true;
    else if (strncmp(kw, "RS", 2) == 0) {
      const char *p = kw + 2;
      while (*p != '\0') {
        char *end = NULL;
        long dpi = strtol(p, &end, 10);
        if (end == p)
          break;
        add_res(caps->urf_res, &caps->n_urf_res, (int)dpi);
        p = *end == '-' ? end + 1 : end;
      }
    }
  }
}

/* The lowest resolution of at least 150 dpi (enough for office documents,
 * and the least data); else the highest there is. 0 when none. */
static int pick_dpi(const int *list, int n)
{
  int best = 0, highest = 0;
  for (int i = 0; i < n; i++) {
    if (list[i] >= 150 && (best == 0 || list[i] < best))
      best = list[i];
    highest = MAX(highest, list[i]);
  }
  return best != 0 ? best : highest;
}

bool kcps_release_plan(const kcps_printer_caps_t *caps, const kcps_release_opts_t *opts,
                       kcps_raster_plan_t *plan, GError **error)
{
  memset(plan, 0, sizeof(*plan));
  if (opts->copies > caps->copies_max) {
    g_set_error(error, KCPS_RELEASE_ERROR, KCPS_RELEASE_ERROR_UNSUPPORTED,
                "the printer prints at most %d copies of a job, %d were asked for",
                caps->copies_max, opts->copies);
    return false;
  }
  if (opts->duplex && !caps->duplex) {
    g_set_error_literal(error, KCPS_RELEASE_ERROR, KCPS_RELEASE_ERROR_UNSUPPORTED,
                        "the printer does not print two-sided (sides-supported has no "
                        "two-sided-long-edge)");
    return false;
  }
  if (caps->pdf) {
    plan->format = "application/pdf";
    plan->color = opts->color != KCPS_COLOR_MONO && caps->color;
  } else if (caps->pwg && (caps->pwg_srgb8 || caps->pwg_sgray8)
             && pick_dpi(caps->pwg_res, caps->n_pwg_res) > 0) {
    plan->format = "image/pwg-raster";
    plan->dpi = pick_dpi(caps->pwg_res, caps->n_pwg_res);
    plan->color = caps->pwg_srgb8 && (opts->color != KCPS_COLOR_MONO || !caps->pwg_sgray8);
    if (opts->color == KCPS_COLOR_MONO && !caps->pwg_sgray8)
      plan->color = true; /* grey pixels in sRGB still print grey */
  } else if (caps->urf && (caps->urf_srgb24 || caps->urf_w8)
             && pick_dpi(caps->urf_res, caps->n_urf_res) > 0) {
    plan->format = "image/urf";
    plan->dpi = pick_dpi(caps->urf_res, caps->n_urf_res);
    plan->color = caps->urf_srgb24 && (opts->color != KCPS_COLOR_MONO || !caps->urf_w8);
  } else {
    g_set_error_literal(error, KCPS_RELEASE_ERROR, KCPS_RELEASE_ERROR_UNSUPPORTED,
                        "the printer takes neither PDF nor PWG raster nor URF at a known "
                        "resolution (document-format-supported)");
    return false;
  }
  if (opts->color == KCPS_COLOR_COLOR && !plan->color) {
    g_set_error_literal(error, KCPS_RELEASE_ERROR, KCPS_RELEASE_ERROR_UNSUPPORTED,
                        "colour was asked for but the printer prints monochrome only");
    return false;
  }
  return true;
}

/* --- the release request and printer URIs ------------------------------------ */

bool kcps_release_check_uri(const char *uri, char **key, GError **error)
{
  if (uri == NULL || *uri == '\0' || strlen(uri) > PRINTER_URI_MAX) {
    g_set_error(error, KCPS_RELEASE_ERROR, KCPS_RELEASE_ERROR_BAD_REQUEST,
                "field printer must be an ipp:// or ipps:// URI of 1 to %d bytes",
                PRINTER_URI_MAX);
    return false;
  }
  char scheme[32], userpass[256], host[256], resource[1024];
  int port = 0;
  http_uri_status_t st = httpSeparateURI(HTTP_URI_CODING_ALL, uri, scheme, sizeof(scheme),
                                         userpass, sizeof(userpass), host, sizeof(host), &port,
                                         resource, sizeof(resource));
  if (st < HTTP_URI_STATUS_OK || (strcmp(scheme, "ipp") != 0 && strcmp(scheme, "ipps") != 0)
      || host[0] == '\0' || userpass[0] != '\0' || port <= 0 || port > 65535) {
    g_set_error(error, KCPS_RELEASE_ERROR, KCPS_RELEASE_ERROR_BAD_REQUEST,
                "field printer: %s is not an ipp:// or ipps:// printer URI "
                "(ipp://host[:port]/path, no user name)",
                g_utf8_validate(uri, -1, NULL) ? uri : "(not UTF-8)");
    return false;
  }
  if (key != NULL) {
    g_autofree char *lower = g_ascii_strdown(host, -1);
    *key = g_strdup_printf("%s:%d", lower, port);
  }
  return true;
}

bool kcps_release_parse_request(const char *body, size_t len, kcps_release_opts_t *opts,
                                JsonNode **keep, GError **error)
{
  memset(opts, 0, sizeof(*opts));
  opts->copies = 1;
  *keep = NULL;
  if (body == NULL || len == 0) {
    g_set_error_literal(error, KCPS_RELEASE_ERROR, KCPS_RELEASE_ERROR_BAD_REQUEST,
                        "body is empty, a JSON object was expected");
    return false;
  }
  GError *local = NULL;
  g_autoptr(JsonNode) node = kcps_json_parse_object(body, (gssize)len, &local);
  if (node == NULL) {
    g_set_error(error, KCPS_RELEASE_ERROR, KCPS_RELEASE_ERROR_BAD_REQUEST, "%s",
                local->message);
    g_error_free(local);
    return false;
  }
  JsonObject *obj = json_node_get_object(node);
  g_autoptr(GList) members = json_object_get_members(obj);
  for (GList *m = members; m != NULL; m = m->next) {
    const char *name = m->data;
    if (strcmp(name, "printer") != 0 && strcmp(name, "copies") != 0
        && strcmp(name, "color") != 0 && strcmp(name, "duplex") != 0) {
      g_set_error(error, KCPS_RELEASE_ERROR, KCPS_RELEASE_ERROR_BAD_REQUEST,
                  "unknown field: %.64s", g_utf8_validate(name, -1, NULL) ? name : "?");
      return false;
    }
  }
  const char *printer = kcps_json_string(obj, "printer");
  if (printer == NULL) {
    g_set_error_literal(error, KCPS_RELEASE_ERROR, KCPS_RELEASE_ERROR_BAD_REQUEST,
                        "missing or non-string field: printer");
    return false;
  }
  if (!kcps_release_check_uri(printer, NULL, error))
    return false;
  if (json_object_has_member(obj, "copies")) {
    gint64 copies = 0;
    if (!kcps_json_int(obj, "copies", &copies) || copies < 1 || copies > COPIES_MAX) {
      g_set_error(error, KCPS_RELEASE_ERROR, KCPS_RELEASE_ERROR_BAD_REQUEST,
                  "field copies must be an integer from 1 to %d", COPIES_MAX);
      return false;
    }
    opts->copies = (int)copies;
  }
  if (json_object_has_member(obj, "color")) {
    JsonNode *c = json_object_get_member(obj, "color");
    bool color = false;
    if (JSON_NODE_HOLDS_NULL(c))
      opts->color = KCPS_COLOR_AUTO;
    else if (kcps_json_bool(obj, "color", &color))
      opts->color = color ? KCPS_COLOR_COLOR : KCPS_COLOR_MONO;
    else {
      g_set_error_literal(error, KCPS_RELEASE_ERROR, KCPS_RELEASE_ERROR_BAD_REQUEST,
                          "field color must be true, false or null (the printer's choice)");
      return false;
    }
  }
  if (json_object_has_member(obj, "duplex") && !kcps_json_bool(obj, "duplex", &opts->duplex)) {
    g_set_error_literal(error, KCPS_RELEASE_ERROR, KCPS_RELEASE_ERROR_BAD_REQUEST,
                        "field duplex must be true or false");
    return false;
  }
  opts->printer = printer;
  *keep = g_steal_pointer(&node);
  return true;
}

/* --- certificate pins (trust on first use) ------------------------------------ */

/* The pins file as lines; an absent file is empty. */
static char **read_pins(const char *path, GError **error)
{
  g_autofree char *text = NULL;
  GError *local = NULL;
  if (!g_file_get_contents(path, &text, NULL, &local)) {
    if (g_error_matches(local, G_FILE_ERROR, G_FILE_ERROR_NOENT)) {
      g_error_free(local);
      return g_new0(char *, 1);
    }
    g_set_error(error, KCPS_RELEASE_ERROR, KCPS_RELEASE_ERROR_IO,
                "cannot read the printer pins %s: %s", path, local->message);
    g_error_free(local);
    return NULL;
  }
  return g_strsplit(text, "\n", -1);
}

/* Writes lines to path atomically, 0600. */
static bool write_pins(const char *path, GString *text, GError **error)
{
  g_autofree char *tmp = g_strconcat(path, ".tmp", NULL);
  int fd = g_open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  bool ok = fd >= 0 && fchmod(fd, 0600) == 0
            && write(fd, text->str, text->len) == (ssize_t)text->len && fsync(fd) == 0;
  int saved = errno;
  if (fd >= 0)
    close(fd);
  if (ok && g_rename(tmp, path) != 0) {
    saved = errno;
    ok = false;
  }
  if (!ok) {
    g_unlink(tmp);
    g_set_error(error, KCPS_RELEASE_ERROR, KCPS_RELEASE_ERROR_IO,
                "cannot write the printer pins %s: %s", path, g_strerror(saved));
  }
  return ok;
}

/* The fingerprint of key on line, or NULL. */
static const char *line_pin(const char *line, const char *key)
{
  size_t klen = strlen(key);
  if (strncmp(line, key, klen) == 0 && line[klen] == ' ')
    return line + klen + 1;
  return NULL;
}

bool kcps_release_pin_check(const char *path, const char *key, const char *fingerprint,
                            kcps_pin_result_t *result, GError **error)
{
  g_auto(GStrv) lines = read_pins(path, error);
  if (lines == NULL)
    return false;
  for (size_t i = 0; lines[i] != NULL; i++) {
    const char *pin = line_pin(lines[i], key);
    if (pin != NULL) {
      *result = g_ascii_strcasecmp(pin, fingerprint) == 0 ? KCPS_PIN_MATCH : KCPS_PIN_CHANGED;
      return true;
    }
  }
  g_autoptr(GString) text = g_string_new(NULL);
  for (size_t i = 0; lines[i] != NULL; i++)
    if (lines[i][0] != '\0')
      g_string_append_printf(text, "%s\n", lines[i]);
  g_string_append_printf(text, "%s %s\n", key, fingerprint);
  if (!write_pins(path, text, error))
    return false;
  *result = KCPS_PIN_NEW;
  return true;
}

bool kcps_release_pin_forget(const char *path, const char *key, bool *removed, GError **error)
{
  *removed = false;
  g_auto(GStrv) lines = read_pins(path, error);
  if (lines == NULL)
    return false;
  g_autoptr(GString) text = g_string_new(NULL);
  for (size_t i = 0; lines[i] != NULL; i++) {
    if (line_pin(lines[i], key) != NULL)
      *removed = true;
    else if (lines[i][0] != '\0')
      g_string_append_printf(text, "%s\n", lines[i]);
  }
  return !*removed || write_pins(path, text, error);
}

bool kcps_release_pin_lookup(const char *path, const char *key, char **fingerprint,
                             GError **error)
{
  *fingerprint = NULL;
  g_auto(GStrv) lines = read_pins(path, error);
  if (lines == NULL)
    return false;
  for (size_t i = 0; lines[i] != NULL && *fingerprint == NULL; i++) {
    const char *pin = line_pin(lines[i], key);
    if (pin != NULL)
      *fingerprint = g_strdup(pin);
  }
  return true;
}

bool kcps_release_certificate(http_t *http, const char *host, char **fingerprint, bool *ca_ok)
{
  *fingerprint = NULL;
  *ca_ok = false;
  cups_array_t *creds = NULL;
  if (httpCopyCredentials(http, &creds) != 0 || creds == NULL || cupsArrayCount(creds) < 1) {
    httpFreeCredentials(creds);
    return false;
  }
  STACK_OF(X509) *chain = sk_X509_new_null();
  X509 *leaf = NULL;
  for (http_credential_t *c = cupsArrayFirst(creds); c != NULL; c = cupsArrayNext(creds)) {
    const unsigned char *der = c->data;
    X509 *x = d2i_X509(NULL, &der, (long)c->datalen);
    if (x == NULL)
      continue;
    if (leaf == NULL)
      leaf = x;
    else
      sk_X509_push(chain, x);
  }
  http_credential_t *first = cupsArrayFirst(creds);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int dlen = 0;
  EVP_Digest(first->data, first->datalen, digest, &dlen, EVP_sha256(), NULL);
  httpFreeCredentials(creds);
  GString *fp = g_string_new(NULL);
  for (unsigned i = 0; i < dlen; i++)
    g_string_append_printf(fp, "%02x", digest[i]);
  *fingerprint = g_string_free(fp, FALSE);

  /* A certificate a public or system CA vouches for, for this name. */
  if (leaf != NULL) {
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    if (store != NULL && ctx != NULL && X509_STORE_set_default_paths(store) == 1
        && X509_STORE_CTX_init(ctx, store, leaf, chain) == 1) {
      X509_VERIFY_PARAM *param = X509_STORE_CTX_get0_param(ctx);
      if (strchr(host, ':') != NULL || strspn(host, "0123456789.") == strlen(host))
        X509_VERIFY_PARAM_set1_ip_asc(param, host);
      else
        X509_VERIFY_PARAM_set1_host(param, host, 0);
      *ca_ok = X509_verify_cert(ctx) == 1;
    }
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    X509_free(leaf);
  }
  sk_X509_pop_free(chain, X509_free);
  return true;
}
