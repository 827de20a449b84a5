/* What the virtual printer's files share: the server and connection
 * structs, the printer attributes (ipp-attrs.c) and the operations
 * (ipp-ops.c). ipp-server.c owns sockets, threads and HTTP. */
#pragma once

#include <cups/cups.h>
#include <cups/ipp.h>
#include <glib.h>
#include <stdbool.h>
#include <sys/types.h>

#include "ipp/ipp-server.h"

#define KCPS__IPP_RESOURCE "/ipp/print"
#define KCPS__IPP_ICON_PATH "/icon.png" /* printer-icons, served by GET */
#define KCPS__IPP_MAX_CLIENTS 64

struct kcps_ipp_server_s {
  GMutex lock;              /* guards the fields below it up to the job map */
  GCond clients_done;       /* signalled when n_clients drops */
  int n_clients;
  bool stopping;
  GHashTable *ipp_id_of;    /* spool job id -> GINT_TO_POINTER(ipp job-id) */
  GPtrArray *spool_id_of;   /* ipp job-id - 1 -> spool job id (owned) */

  /* Read-only once the server runs. */
  char *name;
  bool user_mode;
  uid_t user_uid;
  char *user_name;          /* user_uid's account when user_mode */
  kcps_spool_t *spool;
  kcps_ipp_job_cb_t job_cb;
  void *job_cb_data;
  int listen_fds[2];
  int n_listen;
  int port;
  int wake_fds[2];          /* pipe that ends the accept thread */
  GThread *accept_thread;
  time_t start_time;
  char uuid[48];            /* urn:uuid:... */
  char printer_uri[256];    /* ipp://localhost:PORT/ipp/print */
  ipp_t *attrs;             /* static printer attributes */
};

/* One accepted connection, served by its own thread. */
typedef struct {
  kcps_ipp_server_t *server;
  http_t *http;
  char peer[64];            /* "127.0.0.1:port", for logs */
  bool peer_known;
  uid_t peer_uid;
  ipp_t *request;
  ipp_t *response;
  bool sent_continue;       /* 100 Continue sent for this request */
  http_state_t method;      /* of the current request (GET, POST, ...) */
} kcps__ipp_client_t;

/* ipp-attrs.c */
/* The printer's static attributes (caller ippDeletes). */
ipp_t *kcps__ipp_printer_attrs_new(const kcps_ipp_server_t *server);
/* Adds to response the printer attributes the request asks for, with the
 * ones that change (up time, dates, job count). */
void kcps__ipp_copy_printer_attrs(const kcps_ipp_server_t *server, ipp_t *request,
                                  ipp_t *response);
/* The requested-attributes of a request as a lookup array (groups
 * expanded); NULL means all. Caller cupsArrayDeletes. */
cups_array_t *kcps__ipp_requested(ipp_t *request);
/* Adds a job's attributes filtered by ra (NULL: all). */
void kcps__ipp_copy_job_attrs(const kcps_ipp_server_t *server, const kcps_job_t *job,
                              int ipp_id, cups_array_t *ra, ipp_t *response);

/* ipp-ops.c */
/* Checks what every request must carry (version, request-id, group order,
 * charset, language, printer-uri/job-uri naming our printer). Sets the
 * response's status and message and returns false on a problem. */
bool kcps__ipp_check_request(ipp_t *request, ipp_t *response);
/* Checks the operation attributes of Print-Job/Validate-Job; on success
 * *format is the document format to spool (static string). */
bool kcps__ipp_check_job_request(ipp_t *request, ipp_t *response, const char **format);
/* A job name fit to show and to register with the server (which refuses
 * control characters, bad UTF-8 and over 255 bytes): invalid UTF-8 mended,
 * control characters made spaces, trimmed, cut to 255 bytes on a character
 * boundary, "Untitled" when nothing is left. From the print system, CUPS's
 * "<job-id> - " prefix is dropped. Caller g_frees. */
char *kcps__ipp_clean_job_name(const char *raw, bool from_print_system);
/* Runs the request of a connection: fills client->response. */
void kcps__ipp_process(kcps__ipp_client_t *client);
/* Sets status-code and a formatted status-message on response. */
void kcps__ipp_respond(ipp_t *response, ipp_status_t status, const char *format, ...)
  G_GNUC_PRINTF(3, 4);

/* ipp-server.c */
/* Sends "100 Continue" once when the client asked for it; false if the
 * connection failed. */
bool kcps__ipp_send_continue(kcps__ipp_client_t *client);
/* The IPP job-id of a spool job (assigned on first sight). */
int kcps__ipp_job_id(kcps_ipp_server_t *server, const char *spool_id);
/* The spool job id of an IPP job-id; NULL if unknown (caller g_frees). */
char *kcps__ipp_spool_id(kcps_ipp_server_t *server, int ipp_id);
