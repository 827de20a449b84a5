/* What the files of kcps-mfp-sim (a simulated HyPAS MFP) share: the session
 * with the server, the job as the device sees it, and the printer side. */
#pragma once

#include <glib.h>
#include <stdbool.h>

#include "common/http-client.h"

G_BEGIN_DECLS

#define KCPS_MFP_ERROR (kcps__mfp_error_quark())
GQuark kcps__mfp_error_quark(void);

typedef enum {
  KCPS_MFP_ERROR_USAGE,    /* bad command line or secret file */
  KCPS_MFP_ERROR_IO,       /* a local file could not be read or written */
  KCPS_MFP_ERROR_SERVER,   /* the server refused or answered nonsense */
  KCPS_MFP_ERROR_PULL,     /* the desktop refused the pull */
  KCPS_MFP_ERROR_CHECKSUM, /* pulled bytes differ from the registered sha256 */
  KCPS_MFP_ERROR_PRINTER   /* the printer refused, aborted or took too long */
} kcps_mfp_error_t;

/* One device's session with the server and, after a PIN login, the user at
 * the panel. Tokens live in memory only. */
typedef struct kcps_mfp_s {
  char *server;       /* base URL, no trailing slash */
  char *server_ca;    /* CA file for the server, or NULL (system store) */
  char *device;       /* device name, e.g. MFP-1 */
  char *secret;       /* device secret (never printed) */
  char *device_token; /* device session */
  char *user_token;   /* user-at-device session */
  char *user_email;   /* the user logged in at the panel */
  long timeout_s;     /* per HTTP call */
} kcps_mfp_t;

/* A job as GET /api/v1/device/jobs lists it. */
typedef struct kcps_mfp_job_s {
  char *id;
  char *name;
  gint64 pages;
  gint64 size;
  char *sha256;
  char *pull_url;
  char *pull_pin;
} kcps_mfp_job_t;

void kcps__mfp_clear(kcps_mfp_t *mfp);
void kcps__mfp_job_free(kcps_mfp_job_t *job);

/* Device login, then the PIN login of the user at the panel. The error
 * names which step was refused and carries the server's message. */
bool kcps__mfp_login(kcps_mfp_t *mfp, const char *pin, GError **error);

/* The user's jobs waiting at this device: GPtrArray of kcps_mfp_job_t*
 * that frees its elements, or NULL + error. */
GPtrArray *kcps__mfp_list_jobs(kcps_mfp_t *mfp, GError **error);

/* Asks for a pull ticket for job_id. On success *ticket, *pull_url and
 * *pull_pin are set (caller g_frees each). */
bool kcps__mfp_get_ticket(kcps_mfp_t *mfp, const char *job_id, char **ticket, char **pull_url,
                          char **pull_pin, GError **error);

/* Posts the job log: completed or failed, with the pages printed. */
bool kcps__mfp_post_log(kcps_mfp_t *mfp, const char *job_id, gint64 pages, bool completed,
                        GError **error);

/* Pulls a document from a desktop's pull port into fd, pinning pull_pin and
 * presenting ticket; from byte `from` on (Range; the answer must then be
 * 206) when from > 0, at most max_rate bytes a second when > 0. The bytes
 * are appended at fd's position. A refusal's error carries the desktop's
 * message; *status is the HTTP status (0: the connection failed or broke
 * off, worth a retry). */
bool kcps__mfp_pull(const char *pull_url, const char *pull_pin, const char *ticket, int fd,
                    guint64 from, gint64 max_rate, long timeout_s, long *status,
                    GError **error);

/* What the printer said about a job it printed. */
typedef struct kcps_mfp_print_result_s {
  int printer_job_id;
  int impressions; /* job-impressions-completed, 0 when not reported */
} kcps_mfp_print_result_t;

/* Sends the PDF at path to the IPP printer at uri with Print-Job (retrying
 * while the printer is busy), then follows the job until it completes.
 * Gives up after timeout_s seconds in all. False + error naming the
 * printer's status and message when it refuses, aborts or cancels. */
bool kcps__mfp_print_file(const char *uri, const char *path, const char *job_name,
                          const char *user_name, long timeout_s, kcps_mfp_print_result_t *result,
                          GError **error);

G_END_DECLS
