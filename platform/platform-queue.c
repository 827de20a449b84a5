/* The OS print queue to the virtual printer, through libcups: the
 * CUPS-Add-Modify-Printer and CUPS-Delete-Printer requests lpadmin would
 * send, sent to the local cupsd (or the one CUPS_SERVER names). */
#include "platform/platform.h"

#include <cups/cups.h>
#include <string.h>

/* How long a request to cupsd or the printer may take; adding an IPP
 * Everywhere queue makes cupsd ask the printer, which takes a moment. */
#define QUEUE_TIMEOUT_MS 30000

/* Never prompt on a terminal: a refusal is reported, not retried. */
static const char *no_password(const char *prompt, http_t *http, const char *method,
                               const char *resource, void *data) {
  (void)prompt;
  (void)http;
  (void)method;
  (void)resource;
  (void)data;
  return NULL;
}

/* "localhost:631" or the domain socket cupsd listens on, for messages. */
static char *server_text(void) {
  const char *server = cupsServer();
  if (server[0] == '/')
    return g_strdup(server);
  return g_strdup_printf("%s:%d", server, ippPort());
}

static http_t *connect_cupsd(GError **error) {
  cupsSetPasswordCB2(no_password, NULL);
  http_t *http = httpConnect2(cupsServer(), ippPort(), NULL, AF_UNSPEC, cupsEncryption(), 1,
                              QUEUE_TIMEOUT_MS, NULL);
  /* httpConnect2 keeps the cause to itself (errno is gone by now). */
  if (http == NULL) {
    g_autofree char *where = server_text();
    g_set_error(error, KCPS_PLATFORM_ERROR, KCPS_PLATFORM_ERROR_NO_PRINT_SYSTEM,
                "the print system (cupsd) is not running or not reachable at %s", where);
  }
  return http;
}

/* Names are what lpadmin accepts: printable, no space, slash or '#'. */
static bool check_name(const char *name, GError **error) {
  bool ok = name != NULL && *name != '\0' && strlen(name) <= 127;
  for (const char *p = name; ok && *p != '\0'; p++)
    ok = (unsigned char)*p > ' ' && (unsigned char)*p < 0x7f && *p != '/' && *p != '#' &&
         *p != '\\' && *p != '?' && *p != '\'' && *p != '"';
  if (!ok)
    g_set_error(error, KCPS_PLATFORM_ERROR, KCPS_PLATFORM_ERROR_FAILED,
                "invalid print queue name \"%s\"", name != NULL ? name : "");
  return ok;
}

/* A request to cupsd about queue name: printer-uri and requesting-user-name set. */
static ipp_t *queue_request(ipp_op_t op, const char *name) {
  char uri[HTTP_MAX_URI];
  httpAssembleURIf(HTTP_URI_CODING_ALL, uri, sizeof uri, "ipp", NULL, "localhost", ippPort(),
                   "/printers/%s", name);
  ipp_t *request = ippNewRequest(op);
  ippAddString(request, IPP_TAG_OPERATION, IPP_TAG_URI, "printer-uri", NULL, uri);
  ippAddString(request, IPP_TAG_OPERATION, IPP_TAG_NAME, "requesting-user-name", NULL,
               cupsUser());
  return request;
}

/* Sends request (consumed) to cupsd's /admin/ and turns a refusal into an
 * error saying what was attempted. */
static bool send_admin(http_t *http, ipp_t *request, const char *what, const char *name,
                       GError **error) {
  ipp_t *response = cupsDoRequest(http, request, "/admin/");
  ipp_status_t status = cupsLastError();
  const char *text = cupsLastErrorString();
  ippDelete(response);
  if (status <= IPP_STATUS_OK_EVENTS_COMPLETE)
    return true;

  g_autofree char *where = server_text();
  switch (status) {
  case IPP_STATUS_ERROR_SERVICE_UNAVAILABLE:
    g_set_error(error, KCPS_PLATFORM_ERROR, KCPS_PLATFORM_ERROR_NO_PRINT_SYSTEM,
                "the print system (cupsd) is not running or not reachable at %s: %s", where,
                text);
    break;
  case IPP_STATUS_ERROR_NOT_AUTHENTICATED:
  case IPP_STATUS_ERROR_NOT_AUTHORIZED:
  case IPP_STATUS_ERROR_FORBIDDEN:
  case IPP_STATUS_ERROR_CUPS_AUTHENTICATION_CANCELED:
    g_set_error(error, KCPS_PLATFORM_ERROR, KCPS_PLATFORM_ERROR_DENIED,
                "the print system at %s does not allow this account to %s print queue %s "
                "(run as root or as a member of the lpadmin group): %s",
                where, what, name, text);
    break;
  case IPP_STATUS_ERROR_NOT_FOUND:
    g_set_error(error, KCPS_PLATFORM_ERROR, KCPS_PLATFORM_ERROR_NOT_FOUND,
                "there is no print queue %s at %s", name, where);
    break;
  default:
    g_set_error(error, KCPS_PLATFORM_ERROR, KCPS_PLATFORM_ERROR_FAILED,
                "the print system at %s refused to %s print queue %s: %s (%s)", where, what, name,
                text, ippErrorString(status));
    break;
  }
  return false;
}

/* --- waiting for the queue's driver --------------------------------------
 * cupsd (2.4) answers CUPS-Add-Modify-Printer with ppd-name "everywhere" at
 * once and makes the PPD in a background thread; a job that comes meanwhile
 * can be aborted ("Unable to convert file 0 to printable format"). The
 * thread ends with a printer-config-changed event for the queue ("Printer
 * … is now available."): install waits for it through a pull (ippget)
 * subscription made before the request, so the event cannot be missed. */

/* How long cupsd may take to make the driver (it asks the printer). */
#define DRIVER_TIMEOUT_MS 60000
#define EVENT_POLL_MS 50

/* A request about cupsd's subscriptions: server-wide printer-uri. */
static ipp_t *server_request(ipp_op_t op) {
  char uri[HTTP_MAX_URI];
  httpAssembleURI(HTTP_URI_CODING_ALL, uri, sizeof uri, "ipp", NULL, "localhost", ippPort(), "/");
  ipp_t *request = ippNewRequest(op);
  ippAddString(request, IPP_TAG_OPERATION, IPP_TAG_URI, "printer-uri", NULL, uri);
  ippAddString(request, IPP_TAG_OPERATION, IPP_TAG_NAME, "requesting-user-name", NULL,
               cupsUser());
  return request;
}

/* Subscribes to every printer's printer-config-changed events (the queue
 * may not exist yet): the subscription's id, 0 when cupsd refuses (then
 * install cannot wait; it says so). */
static int subscribe_config(http_t *http) {
  ipp_t *request = server_request(IPP_OP_CREATE_PRINTER_SUBSCRIPTIONS);
  ippAddString(request, IPP_TAG_SUBSCRIPTION, IPP_TAG_KEYWORD, "notify-pull-method", NULL,
               "ippget");
  ippAddString(request, IPP_TAG_SUBSCRIPTION, IPP_TAG_KEYWORD, "notify-events", NULL,
               "printer-config-changed");
  ippAddInteger(request, IPP_TAG_SUBSCRIPTION, IPP_TAG_INTEGER, "notify-lease-duration",
                DRIVER_TIMEOUT_MS / 1000 + 60);
  ipp_t *response = cupsDoRequest(http, request, "/");
  ipp_attribute_t *attr = ippFindAttribute(response, "notify-subscription-id", IPP_TAG_INTEGER);
  int id = cupsLastError() <= IPP_STATUS_OK_EVENTS_COMPLETE && attr != NULL
             ? ippGetInteger(attr, 0) : 0;
  ippDelete(response);
  return id;
}

static void unsubscribe(http_t *http, int id) {
  ipp_t *request = server_request(IPP_OP_CANCEL_SUBSCRIPTION);
  ippAddInteger(request, IPP_TAG_OPERATION, IPP_TAG_INTEGER, "notify-subscription-id", id);
  ippDelete(cupsDoRequest(http, request, "/"));
}

/* Whether cupsd sent a printer-config-changed event for queue name since
 * *next (the sequence number to ask for; moved past what came). */
static bool config_changed(http_t *http, int id, const char *name, int *next) {
  ipp_t *request = server_request(IPP_OP_GET_NOTIFICATIONS);
  ippAddInteger(request, IPP_TAG_OPERATION, IPP_TAG_INTEGER, "notify-subscription-ids", id);
  ippAddInteger(request, IPP_TAG_OPERATION, IPP_TAG_INTEGER, "notify-sequence-numbers", *next);
  ipp_t *response = cupsDoRequest(http, request, "/");
  bool seen = false;
  for (ipp_attribute_t *attr = ippFindAttribute(response, "notify-sequence-number",
                                                 IPP_TAG_INTEGER);
       attr != NULL;
       attr = ippFindNextAttribute(response, "notify-sequence-number", IPP_TAG_INTEGER)) {
    if (ippGetInteger(attr, 0) >= *next)
      *next = ippGetInteger(attr, 0) + 1;
  }
  for (ipp_attribute_t *attr = ippFindAttribute(response, "printer-name", IPP_TAG_NAME);
       attr != NULL && !seen; attr = ippFindNextAttribute(response, "printer-name", IPP_TAG_NAME))
    seen = g_strcmp0(ippGetString(attr, 0, NULL), name) == 0;
  ippDelete(response);
  return seen;
}

/* Waits until cupsd made queue name's driver; false (error set) when it
 * did not within DRIVER_TIMEOUT_MS. */
static bool wait_for_driver(http_t *http, int id, const char *name, GError **error) {
  int next = 1;
  gint64 start = g_get_monotonic_time();
  gint64 deadline = start + (gint64)DRIVER_TIMEOUT_MS * 1000;
  while (!config_changed(http, id, name, &next)) {
    if (g_get_monotonic_time() > deadline) {
      g_autofree char *where = server_text();
      g_set_error(error, KCPS_PLATFORM_ERROR, KCPS_PLATFORM_ERROR_FAILED,
                  "the print system at %s did not finish making print queue %s from the "
                  "printer's answer in %d s (its error_log says why)",
                  where, name, DRIVER_TIMEOUT_MS / 1000);
      return false;
    }
    g_usleep(EVENT_POLL_MS * 1000);
  }
  g_debug("print queue %s: cupsd made its driver %" G_GINT64_FORMAT " ms after the request",
          name, (g_get_monotonic_time() - start) / 1000);
  return true;
}

/* The printer at uri answers Get-Printer-Attributes: cupsd is about to ask
 * it the same, and its own error for a silent printer says little. */
static bool check_printer(const char *uri, GError **error) {
  char scheme[32], userpass[256], host[256], resource[1024];
  int port = 0;
  if (httpSeparateURI(HTTP_URI_CODING_ALL, uri, scheme, sizeof scheme, userpass,
                      sizeof userpass, host, sizeof host, &port, resource,
                      sizeof resource) < HTTP_URI_STATUS_OK ||
      (strcmp(scheme, "ipp") != 0 && strcmp(scheme, "ipps") != 0)) {
    g_set_error(error, KCPS_PLATFORM_ERROR, KCPS_PLATFORM_ERROR_FAILED,
                "printer URI %s is not an ipp:// or ipps:// URI", uri);
    return false;
  }
  http_encryption_t encryption =
    strcmp(scheme, "ipps") == 0 ? HTTP_ENCRYPTION_ALWAYS : HTTP_ENCRYPTION_IF_REQUESTED;
  http_t *http =
    httpConnect2(host, port, NULL, AF_UNSPEC, encryption, 1, QUEUE_TIMEOUT_MS, NULL);
  if (http == NULL) {
    g_set_error(error, KCPS_PLATFORM_ERROR, KCPS_PLATFORM_ERROR_UNREACHABLE,
                "the printer %s does not answer: start kcpsd (or the printer) first, "
                "the print system asks it for its capabilities when the queue is made",
                uri);
    return false;
  }
  ipp_t *request = ippNewRequest(IPP_OP_GET_PRINTER_ATTRIBUTES);
  ippAddString(request, IPP_TAG_OPERATION, IPP_TAG_URI, "printer-uri", NULL, uri);
  ippAddString(request, IPP_TAG_OPERATION, IPP_TAG_NAME, "requesting-user-name", NULL,
               cupsUser());
  ippAddString(request, IPP_TAG_OPERATION, IPP_TAG_KEYWORD, "requested-attributes", NULL,
               "printer-state");
  ipp_t *response = cupsDoRequest(http, request, resource);
  ipp_status_t status = cupsLastError();
  bool ok = response != NULL && status <= IPP_STATUS_OK_EVENTS_COMPLETE;
  if (!ok)
    g_set_error(error, KCPS_PLATFORM_ERROR, KCPS_PLATFORM_ERROR_UNREACHABLE,
                "the printer %s does not answer as an IPP printer: %s", uri,
                cupsLastErrorString());
  ippDelete(response);
  httpClose(http);
  return ok;
}

bool kcps_platform_queue_install(const char *name, const char *device_uri, const char *info,
                                 GError **error) {
  g_return_val_if_fail(device_uri != NULL, false);
  if (!check_name(name, error) || !check_printer(device_uri, error))
    return false;
  http_t *http = connect_cupsd(error);
  if (http == NULL)
    return false;

  int subscription = subscribe_config(http);
  /* What `lpadmin -p NAME -E -v URI -m everywhere` sends, in one request:
   * cupsd makes the PPD from the printer's own answer (driverless). */
  ipp_t *request = queue_request(IPP_OP_CUPS_ADD_MODIFY_PRINTER, name);
  ippAddString(request, IPP_TAG_PRINTER, IPP_TAG_URI, "device-uri", NULL, device_uri);
  ippAddString(request, IPP_TAG_PRINTER, IPP_TAG_NAME, "ppd-name", NULL, "everywhere");
  if (info != NULL)
    ippAddString(request, IPP_TAG_PRINTER, IPP_TAG_TEXT, "printer-info", NULL, info);
  ippAddBoolean(request, IPP_TAG_PRINTER, "printer-is-accepting-jobs", 1);
  ippAddInteger(request, IPP_TAG_PRINTER, IPP_TAG_ENUM, "printer-state", IPP_PSTATE_IDLE);
  /* A queue to a loopback printer is for this computer's accounts only. */
  ippAddBoolean(request, IPP_TAG_PRINTER, "printer-is-shared", 0);
  bool ok = send_admin(http, request, "add", name, error);
  if (ok && subscription > 0)
    ok = wait_for_driver(http, subscription, name, error);
  else if (ok)
    g_warning("the print system refused an event subscription: print queue %s may take a "
              "moment before it accepts jobs", name);
  if (subscription > 0)
    unsubscribe(http, subscription);
  httpClose(http);
  return ok;
}

bool kcps_platform_queue_remove(const char *name, GError **error) {
  if (!check_name(name, error))
    return false;
  http_t *http = connect_cupsd(error);
  if (http == NULL)
    return false;
  bool ok = send_admin(http, queue_request(IPP_OP_CUPS_DELETE_PRINTER, name), "remove", name,
                       error);
  httpClose(http);
  return ok;
}
