/* What the virtual printer's files share: the server and connection
 * structs, the printer attributes (ipp-attrs.c), the operations
 * (ipp-ops.c), the jobs that wait for their document (ipp-jobs.c) and the
 * document intake (ipp-document.c). ipp-server.c owns sockets, threads and
 * HTTP. */
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
/* A Create-Job job that gets no Send-Document within this is aborted
 * (advertised as multiple-operation-time-out). */
#define KCPS__IPP_INCOMING_TIMEOUT_S 300

/* A job made by Create-Job that is not (yet) in the spool: waiting for its
 * document, or ended without one (canceled, aborted). It lives in memory
 * only; once its document is spooled the spool job replaces it. */
typedef struct {
  int ipp_id;
  uid_t owner_uid;
  char *owner_name;
  char *name;              /* job-name, cleaned */
  char uuid[48];           /* urn:uuid:... */
  ipp_jstate_t state;      /* PENDING, CANCELED or ABORTED */
  const char *reason;      /* job-state-reasons keyword (static) */
  char *message;           /* job-state-message */
  gint64 created;          /* unix seconds */
  gint64 created_mono;     /* g_get_monotonic_time(), for the time-out */
  gint64 ended;            /* unix seconds; 0 while pending */
  bool receiving;          /* a Send-Document is streaming its document */
} kcps__ipp_mem_job_t;

struct kcps_ipp_server_s {
  GMutex lock;              /* guards the fields below it up to the job map */
  GCond clients_done;       /* signalled when n_clients drops */
  int n_clients;
  bool stopping;
  GHashTable *ipp_id_of;    /* spool job id -> GINT_TO_POINTER(ipp job-id) */
  GPtrArray *spool_id_of;   /* ipp job-id - 1 -> spool job id (owned);
                               "" for a job not in the spool */
  GHashTable *mem_jobs;     /* ipp job-id -> kcps__ipp_mem_job_t (owned) */
  gint64 incoming_timeout_us; /* see KCPS__IPP_INCOMING_TIMEOUT_S; tests
                                 may lower it before sending requests */

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

/* The attributes of a job not in the spool, filtered by ra (NULL: all).
 * The caller holds server->lock. */
void kcps__ipp_copy_mem_job_attrs_locked(const kcps_ipp_server_t *server,
                                         const kcps__ipp_mem_job_t *job, cups_array_t *ra,
                                         ipp_t *response);

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
/* Finds the job owner: the kernel's answer for the sending process, or
 * for the print system's own accounts the requesting-user-name it passes
 * on. False (response set to not-authorized) when not allowed; *name is
 * g_freed by the caller. */
bool kcps__ipp_resolve_owner(kcps__ipp_client_t *client, uid_t *uid, char **name);
/* The job-id a job request names (job-id, or job-uri without printer-uri);
 * false with the response set when there is none. */
bool kcps__ipp_request_job_id(kcps__ipp_client_t *client, int *ipp_id);
/* Answers with status and echoes attr in the unsupported-attributes group. */
void kcps__ipp_respond_unsupported(ipp_t *response, ipp_attribute_t *attr, ipp_status_t status,
                                   const char *message);
/* Adds the usual attributes of a job-creation answer (job-id, job-uri,
 * job-state, -reasons, -message) of a spooled job. */
void kcps__ipp_respond_spooled(kcps_ipp_server_t *server, const kcps_job_t *job, int ipp_id,
                               ipp_t *response);
/* Runs the request of a connection: fills client->response. */
void kcps__ipp_process(kcps__ipp_client_t *client);
/* Sets status-code and a formatted status-message on response. */
void kcps__ipp_respond(ipp_t *response, ipp_status_t status, const char *format, ...)
  G_GNUC_PRINTF(3, 4);

/* ipp-document.c */
/* The document format its first bytes show (PDF, PWG raster, URF, JPEG,
 * PNG: a static MIME type), or NULL. */
const char *kcps__ipp_sniff_format(const unsigned char *head, size_t len);
/* Receives the request's document into the spool for owner: a PDF as it
 * is, PWG raster / URF / JPEG / PNG converted to PDF on the way, memory
 * bounded by one page. format is the checked document-format
 * ("application/octet-stream": typed by its first bytes). Returns the
 * durable job (kcps_job_free), or NULL with the response's status and a
 * status-message for a person set, and *reason the job-state-reasons
 * keyword that fits; nothing is left in the spool then. */
kcps_job_t *kcps__ipp_receive_document(kcps__ipp_client_t *client, uid_t owner,
                                       const char *owner_name, const char *job_name,
                                       const char *format, const char **reason);

/* ipp-jobs.c */
void kcps__ipp_jobs_init(kcps_ipp_server_t *server);
void kcps__ipp_jobs_free(kcps_ipp_server_t *server);
void kcps__ipp_create_job(kcps__ipp_client_t *client);
void kcps__ipp_send_document(kcps__ipp_client_t *client);
void kcps__ipp_close_job(kcps__ipp_client_t *client);
void kcps__ipp_cancel_my_jobs(kcps__ipp_client_t *client);
/* Get-Job-Attributes / Cancel-Job of a job not in the spool: true when
 * ipp_id is such a job of owner (the response is then set), false when the
 * spool must be asked. */
bool kcps__ipp_mem_job_attributes(kcps__ipp_client_t *client, uid_t owner, int ipp_id);
bool kcps__ipp_mem_job_cancel(kcps__ipp_client_t *client, uid_t owner, int ipp_id);
/* Adds owner's jobs not in the spool to a Get-Jobs response: pending ones
 * when not_completed, ended ones when completed; most recent first, at
 * most limit - *count, only those in job_ids when given. */
void kcps__ipp_list_mem_jobs(kcps__ipp_client_t *client, uid_t owner, bool not_completed,
                             bool completed, ipp_attribute_t *job_ids, cups_array_t *ra,
                             int limit, int *count);

/* ipp-server.c */
/* Sends "100 Continue" once when the client asked for it; false if the
 * connection failed. */
bool kcps__ipp_send_continue(kcps__ipp_client_t *client);
/* The IPP job-id of a spool job (assigned on first sight). */
int kcps__ipp_job_id(kcps_ipp_server_t *server, const char *spool_id);
/* The spool job id of an IPP job-id; NULL if unknown (caller g_frees). */
char *kcps__ipp_spool_id(kcps_ipp_server_t *server, int ipp_id);
