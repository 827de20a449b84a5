/* The virtual printer: an IPP Everywhere printer on loopback (port 5570 by
 * default) written on libcups's server-side http_t/ipp_t. It never prints:
 * each document is streamed into the spool and is durable before the
 * request succeeds; the job then reads as completed over IPP. */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <sys/types.h>

#include "spool/spool.h"

G_BEGIN_DECLS

typedef struct kcps_ipp_server_s kcps_ipp_server_t;

/* Called (on a connection thread) after each job is durably spooled. */
typedef void (*kcps_ipp_job_cb_t)(const kcps_job_t *job, void *data);

typedef struct kcps_ipp_config_s {
  int port;               /* 0 picks a free port (see kcps_ipp_server_port) */
  const char *name;       /* printer-name / printer-info, default "KCPS" */
  bool user_mode;         /* serve only user_uid (its own processes, or the
                             print system sending with its user name) */
  uid_t user_uid;
} kcps_ipp_config_t;

/* Binds 127.0.0.1 and [::1] and starts serving on threads of its own. */
kcps_ipp_server_t *kcps_ipp_server_new(const kcps_ipp_config_t *config, kcps_spool_t *spool,
                                       kcps_ipp_job_cb_t job_cb, void *job_cb_data,
                                       GError **error);
int kcps_ipp_server_port(const kcps_ipp_server_t *server);
/* Stops accepting, waits for running requests, frees. NULL is a no-op. */
void kcps_ipp_server_free(kcps_ipp_server_t *server);

G_END_DECLS
