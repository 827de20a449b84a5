/* The IPP operations of the virtual printer: request checks, who the job
 * owner is, and Print-Job, Validate-Job, Get-Printer-Attributes, Get-Jobs,
 * Get-Job-Attributes, Cancel-Job and Identify-Printer. Create-Job and the
 * jobs waiting for a document are in ipp-jobs.c; reading a document into
 * the spool in ipp-document.c. */
#include "ipp/ipp-private.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "platform/platform.h"

void kcps__ipp_respond(ipp_t *response, ipp_status_t status, const char *format, ...) {
  ippSetStatusCode(response, status);
  if (format == NULL)
    return;
  va_list ap;
  va_start(ap, format);
  ipp_attribute_t *attr = ippFindAttribute(response, "status-message", IPP_TAG_TEXT);
  if (attr != NULL)
    ippSetStringfv(response, &attr, 0, format, ap);
  else
    ippAddStringfv(response, IPP_TAG_OPERATION, IPP_TAG_TEXT, "status-message", NULL, format,
                   ap);
  va_end(ap);
}

/* Answers with status and echoes the offending attribute in the
 * unsupported-attributes group. */
void kcps__ipp_respond_unsupported(ipp_t *response, ipp_attribute_t *attr, ipp_status_t status,
                                   const char *message) {
  kcps__ipp_respond(response, status, "%s", message);
  ipp_attribute_t *copy = ippCopyAttribute(response, attr, 0);
  if (copy != NULL)
    ippSetGroupTag(response, &copy, IPP_TAG_UNSUPPORTED_GROUP);
}

/* ---- request checks -------------------------------------------------- */

/* The resource of a URI attribute, or false when it does not parse. */
static bool uri_resource(ipp_attribute_t *attr, char *resource, int size) {
  char scheme[32], userpass[64], host[256];
  int port;
  const char *uri = ippGetString(attr, 0, NULL);
  return uri != NULL && httpSeparateURI(HTTP_URI_CODING_ALL, uri, scheme, sizeof scheme,
                                        userpass, sizeof userpass, host, sizeof host, &port,
                                        resource, size) >= HTTP_URI_STATUS_OK;
}

/* Parses "/ipp/print/<n>" into n; 0 when it is not a job resource. */
static int job_id_of_resource(const char *resource) {
  static const char prefix[] = KCPS__IPP_RESOURCE "/";
  if (strncmp(resource, prefix, sizeof prefix - 1) != 0)
    return 0;
  const char *digits = resource + sizeof prefix - 1;
  char *end = NULL;
  errno = 0;
  long id = strtol(digits, &end, 10);
  if (end == digits || *end != '\0' || errno != 0 || id < 1 || id > G_MAXINT)
    return 0;
  return (int)id;
}

bool kcps__ipp_check_request(ipp_t *request, ipp_t *response) {
  int minor = 0;
  int major = ippGetVersion(request, &minor);
  if (major < 1 || major > 2) {
    kcps__ipp_respond(response, IPP_STATUS_ERROR_VERSION_NOT_SUPPORTED,
                      "IPP version %d.%d is not supported (1.1 and 2.0 are).", major, minor);
    return false;
  }
  if (ippGetRequestId(request) <= 0) {
    kcps__ipp_respond(response, IPP_STATUS_ERROR_BAD_REQUEST, "Bad request-id %d.",
                      ippGetRequestId(request));
    return false;
  }
  ipp_attribute_t *first = ippFirstAttribute(request);
  if (first == NULL) {
    kcps__ipp_respond(response, IPP_STATUS_ERROR_BAD_REQUEST, "The request has no attributes.");
    return false;
  }

  /* Groups come in order and each only once. */
  ipp_tag_t group = ippGetGroupTag(first);
  for (ipp_attribute_t *attr = first; attr != NULL; attr = ippNextAttribute(request)) {
    ipp_tag_t g = ippGetGroupTag(attr);
    if (g == IPP_TAG_ZERO)
      continue;
    if (g < group) {
      kcps__ipp_respond(response, IPP_STATUS_ERROR_BAD_REQUEST,
                        "Attribute groups are out of order (%s after %s).", ippTagString(g),
                        ippTagString(group));
      return false;
    }
    group = g;
  }

  /* attributes-charset, attributes-natural-language, then the target. */
  first = ippFirstAttribute(request);
  ipp_attribute_t *second = ippNextAttribute(request);
  const char *name = ippGetName(first);
  if (name == NULL || strcmp(name, "attributes-charset") != 0 ||
      ippGetValueTag(first) != IPP_TAG_CHARSET || ippGetCount(first) != 1) {
    kcps__ipp_respond(response, IPP_STATUS_ERROR_BAD_REQUEST,
                      "The first attribute must be attributes-charset.");
    return false;
  }
  name = second != NULL ? ippGetName(second) : NULL;
  if (name == NULL || strcmp(name, "attributes-natural-language") != 0 ||
      ippGetValueTag(second) != IPP_TAG_LANGUAGE || ippGetCount(second) != 1) {
    kcps__ipp_respond(response, IPP_STATUS_ERROR_BAD_REQUEST,
                      "The second attribute must be attributes-natural-language.");
    return false;
  }
  const char *charset = ippGetString(first, 0, NULL);
  if (charset == NULL ||
      (g_ascii_strcasecmp(charset, "utf-8") != 0 && g_ascii_strcasecmp(charset, "us-ascii") != 0)) {
    kcps__ipp_respond_unsupported(response, first, IPP_STATUS_ERROR_CHARSET,
                        "Only the utf-8 and us-ascii character sets are supported.");
    return false;
  }

  ipp_attribute_t *target = ippFindAttribute(request, "printer-uri", IPP_TAG_URI);
  bool is_job_uri = false;
  if (target == NULL) {
    target = ippFindAttribute(request, "job-uri", IPP_TAG_URI);
    is_job_uri = target != NULL;
  }
  if (target == NULL || ippGetGroupTag(target) != IPP_TAG_OPERATION ||
      ippGetCount(target) != 1) {
    kcps__ipp_respond(response, IPP_STATUS_ERROR_BAD_REQUEST,
                      "The request names no printer-uri or job-uri.");
    return false;
  }
  char resource[256];
  if (!uri_resource(target, resource, sizeof resource)) {
    kcps__ipp_respond_unsupported(response, target, IPP_STATUS_ERROR_ATTRIBUTES_OR_VALUES,
                        "The printer-uri or job-uri is not a valid URI.");
    return false;
  }
  bool ours = is_job_uri ? job_id_of_resource(resource) > 0
                         : strcmp(resource, KCPS__IPP_RESOURCE) == 0 ||
                             (strcmp(resource, "/") == 0 &&
                              ippGetOperation(request) == IPP_OP_GET_PRINTER_ATTRIBUTES);
  if (!ours) {
    kcps__ipp_respond(response, IPP_STATUS_ERROR_NOT_FOUND, "%s %s is not served here.",
                      is_job_uri ? "Job" : "Printer", ippGetString(target, 0, NULL));
    return false;
  }
  return true;
}

bool kcps__ipp_check_job_request(ipp_t *request, ipp_t *response, const char **format) {
  ipp_attribute_t *attr;
  *format = "application/pdf";

  if ((attr = ippFindAttribute(request, "document-format", IPP_TAG_ZERO)) != NULL) {
    const char *value = ippGetString(attr, 0, NULL);
    if (ippGetValueTag(attr) != IPP_TAG_MIMETYPE || ippGetCount(attr) != 1 || value == NULL) {
      kcps__ipp_respond_unsupported(response, attr, IPP_STATUS_ERROR_BAD_REQUEST,
                          "document-format must be one mimeMediaType value.");
      return false;
    }
    /* What convert/ takes, PDF as it is, or auto-typing by the first bytes. */
    static const char *const accepted[] = {"application/pdf", "application/octet-stream",
                                           "image/pwg-raster", "image/urf", "image/jpeg",
                                           "image/png"};
    *format = NULL;
    for (size_t i = 0; i < G_N_ELEMENTS(accepted); i++)
      if (g_ascii_strcasecmp(value, accepted[i]) == 0)
        *format = accepted[i];
    if (*format == NULL) {
      kcps__ipp_respond_unsupported(
        response, attr, IPP_STATUS_ERROR_DOCUMENT_FORMAT_NOT_SUPPORTED,
        "This document format is not accepted: print application/pdf, image/pwg-raster, "
        "image/urf, image/jpeg or image/png (or application/octet-stream to have it "
        "recognised).");
      return false;
    }
  }

  if ((attr = ippFindAttribute(request, "compression", IPP_TAG_ZERO)) != NULL) {
    const char *value = ippGetString(attr, 0, NULL);
    if (ippGetValueTag(attr) != IPP_TAG_KEYWORD || ippGetCount(attr) != 1 || value == NULL ||
        strcmp(value, "none") != 0) {
      kcps__ipp_respond_unsupported(response, attr, IPP_STATUS_ERROR_ATTRIBUTES_OR_VALUES,
                          "Only compression none is supported.");
      return false;
    }
  }

  static const char *const names[] = {"job-name", "requesting-user-name", "document-name"};
  for (size_t i = 0; i < G_N_ELEMENTS(names); i++) {
    if ((attr = ippFindAttribute(request, names[i], IPP_TAG_ZERO)) == NULL)
      continue;
    ipp_tag_t tag = ippGetValueTag(attr);
    const char *value = ippGetString(attr, 0, NULL);
    if ((tag != IPP_TAG_NAME && tag != IPP_TAG_NAMELANG) || ippGetCount(attr) != 1 ||
        value == NULL || strlen(value) > 255) {
      kcps__ipp_respond_unsupported(response, attr, IPP_STATUS_ERROR_ATTRIBUTES_OR_VALUES,
                          "A name attribute has a bad value.");
      return false;
    }
  }

  if ((attr = ippFindAttribute(request, "copies", IPP_TAG_ZERO)) != NULL &&
      (ippGetValueTag(attr) != IPP_TAG_INTEGER || ippGetCount(attr) != 1 ||
       ippGetInteger(attr, 0) < 1 || ippGetInteger(attr, 0) > 999)) {
    kcps__ipp_respond_unsupported(response, attr, IPP_STATUS_ERROR_ATTRIBUTES_OR_VALUES,
                        "copies must be between 1 and 999.");
    return false;
  }
  return true;
}

/* ---- who is asking --------------------------------------------------- */

bool kcps__ipp_resolve_owner(kcps__ipp_client_t *client, uid_t *uid, char **name) {
  kcps_ipp_server_t *server = client->server;
  ipp_t *response = client->response;

  if (!client->peer_known) {
    GError *error = NULL;
    if (!kcps_platform_socket_peer_uid(httpGetFd(client->http), &client->peer_uid, &error)) {
      g_warning("ipp: %s: cannot identify the sending process: %s", client->peer,
                error->message);
      g_error_free(error);
      kcps__ipp_respond(response, IPP_STATUS_ERROR_NOT_AUTHORIZED,
                        "The sending process could not be identified.");
      return false;
    }
    client->peer_known = true;
  }

  *uid = client->peer_uid;
  ipp_attribute_t *user = ippFindAttribute(client->request, "requesting-user-name", IPP_TAG_NAME);
  if (user == NULL)
    user = ippFindAttribute(client->request, "requesting-user-name", IPP_TAG_NAMELANG);
  const char *user_name = user != NULL ? ippGetString(user, 0, NULL) : NULL;

  if (kcps_platform_is_print_system_uid(client->peer_uid) && user_name != NULL &&
      *user_name != '\0') {
    if (!kcps_platform_user_uid(user_name, uid)) {
      kcps__ipp_respond(response, IPP_STATUS_ERROR_NOT_AUTHORIZED,
                        "requesting-user-name \"%s\" is not an account on this computer.",
                        user_name);
      return false;
    }
  }

  if (server->user_mode && *uid != server->user_uid) {
    kcps__ipp_respond(response, IPP_STATUS_ERROR_NOT_AUTHORIZED,
                      "This printer accepts jobs of user %s only.", server->user_name);
    return false;
  }

  *name = kcps_platform_user_name(*uid);
  if (*name == NULL)
    *name = g_strdup_printf("uid-%u", (unsigned)*uid);
  return true;
}

/* ---- jobs ------------------------------------------------------------ */

bool kcps__ipp_request_job_id(kcps__ipp_client_t *client, int *ipp_id) {
  ipp_t *request = client->request;
  ipp_attribute_t *attr;
  *ipp_id = 0;
  if ((attr = ippFindAttribute(request, "job-uri", IPP_TAG_URI)) != NULL &&
      ippFindAttribute(request, "printer-uri", IPP_TAG_URI) == NULL) {
    char resource[256];
    if (uri_resource(attr, resource, sizeof resource))
      *ipp_id = job_id_of_resource(resource);
  } else if ((attr = ippFindAttribute(request, "job-id", IPP_TAG_ZERO)) != NULL) {
    if (ippGetValueTag(attr) != IPP_TAG_INTEGER || ippGetCount(attr) != 1 ||
        ippGetGroupTag(attr) != IPP_TAG_OPERATION) {
      kcps__ipp_respond_unsupported(client->response, attr, IPP_STATUS_ERROR_BAD_REQUEST,
                                    "job-id must be one integer.");
      return false;
    }
    *ipp_id = ippGetInteger(attr, 0);
  } else {
    kcps__ipp_respond(client->response, IPP_STATUS_ERROR_BAD_REQUEST,
                      "The request names no job-id.");
    return false;
  }
  return true;
}

/* The spooled job ipp_id, if it exists and belongs to owner; NULL with the
 * response set otherwise. */
static kcps_job_t *spooled_job(kcps__ipp_client_t *client, uid_t owner, int ipp_id) {
  /* Another user's job is "not found" too: existence is not revealed. */
  g_autofree char *spool_id = kcps__ipp_spool_id(client->server, ipp_id);
  kcps_job_t *job = spool_id != NULL && *spool_id != '\0'
                      ? kcps_spool_get_job(client->server->spool, spool_id, NULL)
                      : NULL;
  if (job == NULL || job->owner_uid != owner) {
    kcps_job_free(job);
    kcps__ipp_respond(client->response, IPP_STATUS_ERROR_NOT_FOUND, "Job #%d does not exist.",
                      ipp_id);
    return NULL;
  }
  return job;
}

static int compare_names(void *a, void *b, void *data) {
  (void)data;
  return strcmp(a, b);
}

char *kcps__ipp_clean_job_name(const char *raw, bool from_print_system) {
  const char *text = raw != NULL ? raw : "";

  /* CUPS's ipp backend sends "<its job id> - <title>". */
  if (from_print_system) {
    size_t digits = strspn(text, "0123456789");
    if (digits > 0 && strncmp(text + digits, " - ", 3) == 0 && text[digits + 3] != '\0')
      text += digits + 3;
  }

  char *name = g_utf8_make_valid(text, -1);
  for (char *p = name; *p != '\0'; p++)
    if ((unsigned char)*p < 0x20 || *p == 0x7f)
      *p = ' ';
  g_strstrip(name);

  if (strlen(name) > 255) {
    /* The start of the character holding byte 255 is where the cut goes. */
    char *cut = g_utf8_find_prev_char(name, name + 256);
    *cut = '\0';
    g_strchomp(name);
  }
  if (*name == '\0') {
    g_free(name);
    name = g_strdup("Untitled");
  }
  return name;
}

void kcps__ipp_respond_spooled(kcps_ipp_server_t *server, const kcps_job_t *job, int ipp_id,
                               ipp_t *response) {
  kcps__ipp_respond(response, IPP_STATUS_OK, NULL);
  cups_array_t *ra = cupsArrayNew(compare_names, NULL);
  cupsArrayAdd(ra, "job-id");
  cupsArrayAdd(ra, "job-uri");
  cupsArrayAdd(ra, "job-state");
  cupsArrayAdd(ra, "job-state-reasons");
  cupsArrayAdd(ra, "job-state-message");
  kcps__ipp_copy_job_attrs(server, job, ipp_id, ra, response);
  cupsArrayDelete(ra);
}

static void print_job(kcps__ipp_client_t *client, bool validate_only) {
  kcps_ipp_server_t *server = client->server;
  ipp_t *request = client->request, *response = client->response;
  const char *format = NULL;
  uid_t owner;
  g_autofree char *owner_name = NULL;

  if (!kcps__ipp_check_job_request(request, response, &format) ||
      !kcps__ipp_resolve_owner(client, &owner, &owner_name))
    return;
  if (validate_only) {
    kcps__ipp_respond(response, IPP_STATUS_OK, NULL);
    return;
  }

  ipp_attribute_t *attr = ippFindAttribute(request, "job-name", IPP_TAG_ZERO);
  g_autofree char *job_name = kcps__ipp_clean_job_name(
    attr != NULL ? ippGetString(attr, 0, NULL) : NULL,
    kcps_platform_is_print_system_uid(client->peer_uid));

  const char *reason = NULL;
  kcps_job_t *job =
    kcps__ipp_receive_document(client, owner, owner_name, job_name, format, &reason);
  if (job == NULL)
    return;

  int ipp_id = kcps__ipp_job_id(server, job->id);
  g_info("ipp: %s: job %d (%s) spooled for uid %u: %d pages, %" G_GINT64_FORMAT " bytes",
         client->peer, ipp_id, job->id, (unsigned)owner, job->pages, job->size);
  if (server->job_cb != NULL)
    server->job_cb(job, server->job_cb_data);

  kcps__ipp_respond_spooled(server, job, ipp_id, response);
  kcps_job_free(job);
}

static void get_jobs(kcps__ipp_client_t *client) {
  kcps_ipp_server_t *server = client->server;
  ipp_t *request = client->request, *response = client->response;
  uid_t owner;
  g_autofree char *owner_name = NULL;

  const char *which = "not-completed";
  ipp_attribute_t *attr = ippFindAttribute(request, "which-jobs", IPP_TAG_ZERO);
  ipp_attribute_t *attr_which = attr;
  if (attr != NULL) {
    which = ippGetString(attr, 0, NULL);
    if (ippGetValueTag(attr) != IPP_TAG_KEYWORD || which == NULL ||
        (strcmp(which, "completed") != 0 && strcmp(which, "not-completed") != 0 &&
         strcmp(which, "all") != 0)) {
      kcps__ipp_respond_unsupported(response, attr, IPP_STATUS_ERROR_ATTRIBUTES_OR_VALUES,
                          "which-jobs must be completed, not-completed or all.");
      return;
    }
  }
  int limit = G_MAXINT;
  if ((attr = ippFindAttribute(request, "limit", IPP_TAG_ZERO)) != NULL) {
    if (ippGetValueTag(attr) != IPP_TAG_INTEGER || ippGetInteger(attr, 0) < 1) {
      kcps__ipp_respond_unsupported(response, attr, IPP_STATUS_ERROR_ATTRIBUTES_OR_VALUES,
                          "limit must be a positive integer.");
      return;
    }
    limit = ippGetInteger(attr, 0);
  }
  /* job-ids (PWG 5100.11): exactly these jobs, whatever their state; with
   * which-jobs other than "all" the request contradicts itself. */
  ipp_attribute_t *job_ids = ippFindAttribute(request, "job-ids", IPP_TAG_ZERO);
  if (job_ids != NULL) {
    if (ippGetValueTag(job_ids) != IPP_TAG_INTEGER ||
        ippGetGroupTag(job_ids) != IPP_TAG_OPERATION) {
      kcps__ipp_respond_unsupported(response, job_ids, IPP_STATUS_ERROR_BAD_REQUEST,
                          "job-ids must be integers.");
      return;
    }
    if (attr_which != NULL && strcmp(which, "all") != 0) {
      kcps__ipp_respond_unsupported(response, attr_which, IPP_STATUS_ERROR_CONFLICTING,
                          "which-jobs cannot be combined with job-ids.");
      return;
    }
    which = "all";
  }
  if (!kcps__ipp_resolve_owner(client, &owner, &owner_name))
    return;

  kcps__ipp_respond(response, IPP_STATUS_OK, NULL);
  bool all = strcmp(which, "all") == 0;
  bool not_completed = all || strcmp(which, "not-completed") == 0;
  bool completed = all || strcmp(which, "completed") == 0;
  cups_array_t *ra = kcps__ipp_requested(request); /* default: job-id, job-uri */
  int count = 0;

  /* Jobs waiting for their document first, then the spooled ones (every
   * spooled job is completed), then Create-Job jobs that ended without a
   * document; each part most recent first. */
  if (not_completed)
    kcps__ipp_list_mem_jobs(client, owner, true, false, job_ids, ra, limit, &count);
  if (completed) {
    GError *error = NULL;
    GPtrArray *jobs = kcps_spool_list_jobs(server->spool, owner, &error);
    if (jobs == NULL) {
      g_warning("ipp: cannot list jobs: %s", error->message);
      g_error_free(error);
      cupsArrayDelete(ra);
      kcps__ipp_respond(response, IPP_STATUS_ERROR_INTERNAL, "The jobs could not be listed.");
      return;
    }
    for (guint i = jobs->len; i > 0 && count < limit; i--) {
      kcps_job_t *job = g_ptr_array_index(jobs, i - 1);
      int ipp_id = kcps__ipp_job_id(server, job->id);
      if (job_ids != NULL && !ippContainsInteger(job_ids, ipp_id))
        continue;
      if (count++ > 0)
        ippAddSeparator(response);
      kcps__ipp_copy_job_attrs(server, job, ipp_id, ra, response);
    }
    g_ptr_array_unref(jobs);
    kcps__ipp_list_mem_jobs(client, owner, false, true, job_ids, ra, limit, &count);
  }
  cupsArrayDelete(ra);
}

static void get_job_attributes(kcps__ipp_client_t *client) {
  uid_t owner;
  g_autofree char *owner_name = NULL;
  int ipp_id;
  if (!kcps__ipp_resolve_owner(client, &owner, &owner_name) ||
      !kcps__ipp_request_job_id(client, &ipp_id) ||
      kcps__ipp_mem_job_attributes(client, owner, ipp_id))
    return;
  g_autoptr(kcps_job_t) job = spooled_job(client, owner, ipp_id);
  if (job == NULL)
    return;
  kcps__ipp_respond(client->response, IPP_STATUS_OK, NULL);
  cups_array_t *ra = kcps__ipp_requested(client->request);
  kcps__ipp_copy_job_attrs(client->server, job, ipp_id, ra, client->response);
  cupsArrayDelete(ra);
}

/* Cancel-Job: a job still waiting for its document is canceled; a spooled
 * job is completed as far as IPP goes (RFC 8011 4.3.3: not-possible), and
 * is deleted with the KCPS tray or the kcps command (docs/virtual-printer.md
 * says why). */
static void cancel_job(kcps__ipp_client_t *client) {
  uid_t owner;
  g_autofree char *owner_name = NULL;
  int ipp_id;
  if (!kcps__ipp_resolve_owner(client, &owner, &owner_name) ||
      !kcps__ipp_request_job_id(client, &ipp_id) ||
      kcps__ipp_mem_job_cancel(client, owner, ipp_id))
    return;
  g_autoptr(kcps_job_t) job = spooled_job(client, owner, ipp_id);
  if (job == NULL)
    return;
  kcps__ipp_respond(client->response, IPP_STATUS_ERROR_NOT_POSSIBLE,
                    "Job #%d is already completed: it is held in the KCPS spool (delete it "
                    "with the KCPS tray or the kcps command).",
                    ipp_id);
}

void kcps__ipp_process(kcps__ipp_client_t *client) {
  ipp_t *request = client->request;
  client->response = ippNewResponse(request);
  ipp_t *response = client->response;
  ipp_op_t op = ippGetOperation(request);

  if (kcps__ipp_check_request(request, response)) {
    switch (op) {
    case IPP_OP_PRINT_JOB:
      print_job(client, false);
      break;
    case IPP_OP_VALIDATE_JOB:
      print_job(client, true);
      break;
    case IPP_OP_GET_PRINTER_ATTRIBUTES:
      kcps__ipp_respond(response, IPP_STATUS_OK, NULL);
      kcps__ipp_copy_printer_attrs(client->server, request, response);
      break;
    case IPP_OP_GET_JOBS:
      get_jobs(client);
      break;
    case IPP_OP_GET_JOB_ATTRIBUTES:
      get_job_attributes(client);
      break;
    case IPP_OP_CANCEL_JOB:
      cancel_job(client);
      break;
    case IPP_OP_CREATE_JOB:
      kcps__ipp_create_job(client);
      break;
    case IPP_OP_SEND_DOCUMENT:
      kcps__ipp_send_document(client);
      break;
    case IPP_OP_CLOSE_JOB:
      kcps__ipp_close_job(client);
      break;
    case IPP_OP_CANCEL_MY_JOBS:
      kcps__ipp_cancel_my_jobs(client);
      break;
    case IPP_OP_IDENTIFY_PRINTER:
      g_info("ipp: %s: Identify-Printer (nothing to show: a virtual printer)", client->peer);
      kcps__ipp_respond(response, IPP_STATUS_OK, NULL);
      break;
    default:
      kcps__ipp_respond(response, IPP_STATUS_ERROR_OPERATION_NOT_SUPPORTED,
                        "Operation %s is not supported.", ippOpString(op));
      break;
    }
  }

  ipp_attribute_t *message = ippFindAttribute(response, "status-message", IPP_TAG_TEXT);
  g_debug("ipp: %s: %s -> %s%s%s", client->peer, ippOpString(op),
          ippErrorString(ippGetStatusCode(response)), message != NULL ? ": " : "",
          message != NULL ? ippGetString(message, 0, NULL) : "");
}
