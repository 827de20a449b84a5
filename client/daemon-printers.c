/* Printers for direct printing: GET /v1/printers lists what DNS-SD
 * (_ipp._tcp, _ipps._tcp) finds now; GET /v1/printers?uri=URI asks one
 * printer, discovered or not, for its capabilities (Get-Printer-Attributes). */
#define G_LOG_DOMAIN "kcpsd"

#include "client/daemon-private.h"
#include "client/discover.h"

#include <string.h>


#define FIRST_ROUND_MS 3000     /* the first request waits this long for the first browse */
#define CONNECT_TIMEOUT_MS 5000 /* a printer asked for its capabilities */
#define IO_TIMEOUT_S 10.0

/* One discovery for the process, started by the first request (kcpsd
 * never browses when nobody asks) and kept until exit. */
static GMutex discovery_lock;
static kcps_discovery_t *discovery;

/* Whose event subscribers hear of changes. A lock of its own: avahi's
 * thread takes it while discovery_lock may be held by a request waiting
 * for avahi's thread (kcps_discovery_new). */
static GMutex told_lock;
static kcps_daemon_t *told;

/* The list changed (avahi's thread): subscribers of every OS user hear
 * "printers" (queued duplicates collapse, so a burst is one event). */
static void printers_changed(void *data)
{
  (void)data;
  g_mutex_lock(&told_lock);
  if (told != NULL)
    kcps__events_emit_all(told, "printers", NULL);
  g_mutex_unlock(&told_lock);
}

static kcps_discovery_t *get_discovery(kcps_daemon_t *daemon, bool *fresh)
{
  g_mutex_lock(&told_lock);
  told = daemon;
  g_mutex_unlock(&told_lock);
  g_mutex_lock(&discovery_lock);
  *fresh = discovery == NULL;
  if (discovery == NULL)
    discovery = kcps_discovery_new(printers_changed, NULL);
  kcps_discovery_t *d = discovery;
  g_mutex_unlock(&discovery_lock);
  return d;
}

void kcps__local_printers_forget(kcps_daemon_t *daemon)
{
  g_mutex_lock(&told_lock);
  if (told == daemon)
    told = NULL;
  g_mutex_unlock(&told_lock);
}

static void add_string(JsonBuilder *b, const char *name, const char *value)
{
  if (value == NULL)
    return;
  json_builder_set_member_name(b, name);
  json_builder_add_string_value(b, value);
}

static void add_bool(JsonBuilder *b, const char *name, bool value)
{
  json_builder_set_member_name(b, name);
  json_builder_add_boolean_value(b, value);
}

static void respond_built(kcps_http_req_t *req, unsigned status, JsonBuilder *b)
{
  g_autoptr(JsonNode) node = json_builder_get_root(b);
  kcps_http_respond_json(req, status, node);
}

/* --- the list ------------------------------------------------------------------ */

static void add_printer(JsonBuilder *b, const kcps_discovered_t *p)
{
  json_builder_begin_object(b);
  add_string(b, "name", p->name);
  add_string(b, "uri", p->uri);
  add_bool(b, "secure", p->secure);
  add_string(b, "make_and_model", p->make_and_model);
  add_string(b, "location", p->location);
  json_builder_set_member_name(b, "uris");
  json_builder_begin_array(b);
  for (guint i = 0; i < p->uris->len; i++)
    json_builder_add_string_value(b, g_ptr_array_index(p->uris, i));
  json_builder_end_array(b);
  json_builder_end_object(b);
}

static void respond_list(kcps_daemon_t *daemon, kcps_http_req_t *req)
{
  bool fresh = false;
  kcps_discovery_t *d = get_discovery(daemon, &fresh);
  /* The first request waits for the first browse round; later ones see
   * the live list as it is. */
  if (fresh)
    kcps_discovery_wait(d, FIRST_ROUND_MS);
  g_autofree char *why = NULL;
  bool available = kcps_discovery_available(d, &why);
  g_autoptr(GPtrArray) list = kcps_discovery_list(d);

  g_autoptr(JsonBuilder) b = json_builder_new();
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "discovery");
  json_builder_add_string_value(b, available ? "available" : "unavailable");
  if (!available) {
    json_builder_set_member_name(b, "reason");
    g_autofree char *reason = g_strdup_printf(
        "DNS-SD discovery is unavailable (%s); printers can still be used by URI", why);
    json_builder_add_string_value(b, reason);
  }
  json_builder_set_member_name(b, "printers");
  json_builder_begin_array(b);
  for (guint i = 0; i < list->len; i++)
    add_printer(b, g_ptr_array_index(list, i));
  json_builder_end_array(b);
  json_builder_end_object(b);
  respond_built(req, 200, b);
}

/* --- one printer's capabilities ------------------------------------------------ */

/* How far an IPPS printer's certificate is trusted: "trusted" (a system CA
 * vouches for it and the host), "pinned" (the pin matches), "unpinned"
 * (pinned at the first release), "changed" (differs from the pin: releases
 * are refused), or NULL when it sent none. *fp_out (g_free) the SHA-256. */
static const char *certificate_trust(http_t *http, const char *host, const char *pins_path,
                                      const char *key, char **fp_out)
{
  bool ca_ok = false;
  if (!kcps_release_certificate(http, host, fp_out, &ca_ok))
    return NULL;
  if (ca_ok)
    return "trusted";
  g_autofree char *pinned = NULL;
  if (!kcps_release_pin_lookup(pins_path, key, &pinned, NULL) || pinned == NULL)
    return "unpinned";
  return g_ascii_strcasecmp(pinned, *fp_out) == 0 ? "pinned" : "changed";
}

static void add_keywords(JsonBuilder *b, const char *name, ipp_t *response, const char *attr)
{
  ipp_attribute_t *a = ippFindAttribute(response, attr, IPP_TAG_ZERO);
  json_builder_set_member_name(b, name);
  json_builder_begin_array(b);
  for (int i = 0; a != NULL && i < ippGetCount(a) && i < 64; i++) {
    const char *s = ippGetString(a, i, NULL);
    if (s != NULL && g_utf8_validate(s, -1, NULL))
      json_builder_add_string_value(b, s);
  }
  json_builder_end_array(b);
}

static void add_ipp_text(JsonBuilder *b, const char *name, ipp_t *response, const char *attr)
{
  ipp_attribute_t *a = ippFindAttribute(response, attr, IPP_TAG_ZERO);
  const char *s = a != NULL ? ippGetString(a, 0, NULL) : NULL;
  if (s != NULL && *s != '\0' && g_utf8_validate(s, -1, NULL))
    add_string(b, name, s);
}

static void add_resolutions(JsonBuilder *b, const kcps_printer_caps_t *caps, ipp_t *response)
{
  int all[32], n = 0;
  ipp_attribute_t *a = ippFindAttribute(response, "printer-resolution-supported",
                                        IPP_TAG_RESOLUTION);
  for (int i = 0; a != NULL && i < ippGetCount(a) && n < 16; i++) {
    ipp_res_t units;
    int y = 0, x = ippGetResolution(a, i, &y, &units);
    if (units == IPP_RES_PER_INCH && x == y && x >= 72 && x <= 2400)
      all[n++] = x;
  }
  for (int i = 0; i < caps->n_pwg_res; i++)
    all[n++] = caps->pwg_res[i];
  for (int i = 0; i < caps->n_urf_res; i++)
    all[n++] = caps->urf_res[i];
  json_builder_set_member_name(b, "resolutions");
  json_builder_begin_array(b);
  /* Distinct values, ascending. */
  int uniq[32], nu = 0;
  for (int i = 0; i < n; i++) {
    bool dup = false;
    for (int j = 0; j < nu && !dup; j++)
      dup = uniq[j] == all[i];
    if (!dup)
      uniq[nu++] = all[i];
  }
  for (int i = 1; i < nu; i++)
    for (int j = i; j > 0 && uniq[j - 1] > uniq[j]; j--) {
      int t = uniq[j];
      uniq[j] = uniq[j - 1];
      uniq[j - 1] = t;
    }
  for (int i = 0; i < nu; i++)
    json_builder_add_int_value(b, uniq[i]);
  json_builder_end_array(b);
}

/* Asks uri for its attributes (ippDelete). NULL + *message (g_free) when it
 * cannot; *trust and *fingerprint as certificate_trust for ipps. */
static ipp_t *get_attributes(const char *uri, const char *pins_path, const char *key,
                             const char **trust, char **fingerprint, char **message)
{
  char scheme[32], userpass[256], host[256], resource[1024];
  int port = 0;
  httpSeparateURI(HTTP_URI_CODING_ALL, uri, scheme, sizeof(scheme), userpass, sizeof(userpass),
                  host, sizeof(host), &port, resource, sizeof(resource));
  bool tls = strcmp(scheme, "ipps") == 0;
  http_t *http = httpConnect2(host, port, NULL, AF_UNSPEC,
                              tls ? HTTP_ENCRYPTION_ALWAYS : HTTP_ENCRYPTION_IF_REQUESTED, 1,
                              CONNECT_TIMEOUT_MS, NULL);
  if (http == NULL) {
    *message = g_strdup_printf("cannot connect to the printer %s: %s", key,
                               cupsLastErrorString());
    return NULL;
  }
  httpSetTimeout(http, IO_TIMEOUT_S, NULL, NULL);
  if (tls)
    *trust = certificate_trust(http, host, pins_path, key, fingerprint);
  ipp_t *request = ippNewRequest(IPP_OP_GET_PRINTER_ATTRIBUTES);
  ippAddString(request, IPP_TAG_OPERATION, IPP_TAG_URI, "printer-uri", NULL, uri);
  ippAddString(request, IPP_TAG_OPERATION, IPP_TAG_NAME, "requesting-user-name", NULL, "kcpsd");
  ippAddString(request, IPP_TAG_OPERATION, IPP_TAG_KEYWORD, "requested-attributes", NULL, "all");
  ipp_t *response = cupsDoRequest(http, request, resource);
  if (response == NULL || ippGetStatusCode(response) > IPP_STATUS_OK_EVENTS_COMPLETE) {
    *message = g_strdup_printf("the printer %s did not answer Get-Printer-Attributes: %s", key,
                               cupsLastErrorString());
    ippDelete(response);
    response = NULL;
  }
  httpClose(http);
  return response;
}

static void respond_one(kcps_daemon_t *daemon, kcps_http_req_t *req, const char *uri)
{
  g_autofree char *key = NULL;
  GError *error = NULL;
  if (!kcps_release_check_uri(uri, &key, &error)) {
    kcps_http_respond_error(req, 400, "bad_request", error->message);
    g_error_free(error);
    return;
  }
  /* What discovery knows of it, when it is in the list. */
  bool fresh = false;
  kcps_discovery_t *d = get_discovery(daemon, &fresh);
  if (fresh)
    kcps_discovery_wait(d, FIRST_ROUND_MS);
  g_autoptr(GPtrArray) list = kcps_discovery_list(d);
  const kcps_discovered_t *found = NULL;
  for (guint i = 0; i < list->len && found == NULL; i++) {
    const kcps_discovered_t *p = g_ptr_array_index(list, i);
    for (guint j = 0; j < p->uris->len && found == NULL; j++)
      if (strcmp(g_ptr_array_index(p->uris, j), uri) == 0)
        found = p;
  }

  g_autofree char *pins = g_build_filename(daemon->state_dir, "printer-pins", NULL);
  const char *trust = NULL;
  g_autofree char *fingerprint = NULL;
  g_autofree char *message = NULL;
  ipp_t *response = get_attributes(uri, pins, key, &trust, &fingerprint, &message);
  if (response == NULL) {
    kcps_http_respond_error(req, 502, "printer_unreachable", message);
    return;
  }
  kcps_printer_caps_t caps;
  kcps_release_caps_from_ipp(response, &caps);

  g_autoptr(JsonBuilder) b = json_builder_new();
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "printer");
  json_builder_begin_object(b);
  if (found != NULL)
    add_string(b, "name", found->name);
  else
    add_ipp_text(b, "name", response, "printer-name");
  add_string(b, "uri", uri);
  add_bool(b, "secure", g_str_has_prefix(uri, "ipps:"));
  add_bool(b, "discovered", found != NULL);
  add_ipp_text(b, "make_and_model", response, "printer-make-and-model");
  add_ipp_text(b, "location", response, "printer-location");
  if (g_str_has_prefix(uri, "ipps:")) {
    add_string(b, "certificate", trust != NULL ? trust : "none");
    add_string(b, "certificate_sha256", fingerprint);
  }
  ipp_attribute_t *state = ippFindAttribute(response, "printer-state", IPP_TAG_ENUM);
  if (state != NULL) {
    int s = ippGetInteger(state, 0);
    add_string(b, "state", s == IPP_PSTATE_IDLE         ? "idle"
                           : s == IPP_PSTATE_PROCESSING ? "processing"
                           : s == IPP_PSTATE_STOPPED    ? "stopped"
                                                        : "unknown");
  }
  ipp_attribute_t *accepting = ippFindAttribute(response, "printer-is-accepting-jobs",
                                                IPP_TAG_BOOLEAN);
  if (accepting != NULL)
    add_bool(b, "accepting_jobs", ippGetBoolean(accepting, 0));

  json_builder_set_member_name(b, "capabilities");
  json_builder_begin_object(b);
  add_keywords(b, "formats", response, "document-format-supported");
  add_bool(b, "pdf", caps.pdf);
  add_bool(b, "color", caps.color);
  add_bool(b, "duplex", caps.duplex);
  json_builder_set_member_name(b, "copies");
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "min");
  json_builder_add_int_value(b, 1);
  json_builder_set_member_name(b, "max");
  json_builder_add_int_value(b, caps.copies_max);
  json_builder_end_object(b);
  add_resolutions(b, &caps, response);
  add_keywords(b, "sides", response, "sides-supported");
  add_keywords(b, "color_modes", response, "print-color-mode-supported");
  add_keywords(b, "media", response, "media-supported");
  /* How kcpsd would send a PDF with default options. */
  kcps_release_opts_t opts = {.printer = uri, .copies = 1, .color = KCPS_COLOR_AUTO};
  kcps_raster_plan_t plan;
  if (kcps_release_plan(&caps, &opts, &plan, NULL)) {
    add_string(b, "sends", plan.format);
    if (plan.dpi > 0) {
      json_builder_set_member_name(b, "sends_dpi");
      json_builder_add_int_value(b, plan.dpi);
    }
  } else {
    json_builder_set_member_name(b, "sends");
    json_builder_add_null_value(b);
  }
  json_builder_end_object(b);
  json_builder_end_object(b);
  json_builder_end_object(b);
  ippDelete(response);
  respond_built(req, 200, b);
}

void kcps__local_get_printers(kcps_daemon_t *daemon, kcps_http_req_t *req, uid_t uid)
{
  (void)uid;
  const char *uri = kcps_http_req_query(req, "uri");
  if (uri != NULL)
    respond_one(daemon, req, uri);
  else
    respond_list(daemon, req);
}
