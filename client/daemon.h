/* kcpsd as a library: the virtual printer (5570), the pull port (5571), the
 * local API (5572) and the sync with the server, started and stopped as one
 * object so that kcpsd.c and the tests drive the same code. */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <sys/types.h>

G_BEGIN_DECLS

typedef struct kcps_daemon_s kcps_daemon_t;

typedef struct kcps_daemon_config_s {
  bool user_mode;          /* serve only user_uid (kcpsd --user) */
  uid_t user_uid;          /* the one account served in user_mode */
  const char *server_url;  /* e.g. "https://127.0.0.1:8443"; NULL: no server */
  const char *server_ca;   /* CA/certificate file to trust for the server; NULL:
                              the system store */
  const char *spool_dir;   /* required */
  const char *state_dir;   /* required: pull.crt / pull.key live here */
  int ipp_port;            /* 0 picks a free port */
  int pull_port;           /* 0 picks a free port */
  const char *pull_listen; /* address 5571 binds; NULL: "0.0.0.0" */
  const char *pull_host;   /* host name put into pull URLs; NULL: the host name */
  int local_port;          /* 0 picks a free port */
  gint64 max_document_size; /* bytes; 0: the spool's default (2 GiB) */
  bool cloud_spool;        /* spool mode cloud: upload each job to the server */
  gint64 upload_chunk_size; /* bytes a chunk; 0: 8 MiB (capped by the server) */
  gint64 upload_max_rate;  /* bytes/s of an upload; 0: no limit */
  gint64 retention_s;      /* jobs are deleted this long after they were spooled
                              (kcpsd --retention-hours; the caller runs the expiry);
                              shown as each job's "expires"; 0: kept */
} kcps_daemon_config_t;

#define KCPS_DAEMON_ERROR (kcps_daemon_error_quark())
GQuark kcps_daemon_error_quark(void);

typedef enum {
  KCPS_DAEMON_ERROR_CONFIG, /* a configuration value is missing or invalid */
  KCPS_DAEMON_ERROR_IO,     /* a folder or file could not be made */
  KCPS_DAEMON_ERROR_BAD_REQUEST /* a local API request is malformed (message says how) */
} kcps_daemon_error_t;

/* Fills config with the defaults of the fixed ports (5570-5572) and no server;
 * spool_dir and state_dir stay NULL for the caller to set. */
void kcps_daemon_config_init(kcps_daemon_config_t *config);

/* Opens the spool, makes the pull certificate when missing, binds every
 * port and starts the sync worker. The strings of config are copied.
 * NULL + error (naming the folder, file or address) when anything fails;
 * nothing keeps running then. */
kcps_daemon_t *kcps_daemon_new(const kcps_daemon_config_t *config, GError **error);

/* Stops serving (waits for running requests and the worker), forgets every
 * session and frees. NULL is a no-op. */
void kcps_daemon_free(kcps_daemon_t *daemon);

/* The ports actually bound (useful when the configuration asked for 0). */
int kcps_daemon_ipp_port(const kcps_daemon_t *daemon);
int kcps_daemon_pull_port(const kcps_daemon_t *daemon);
int kcps_daemon_local_port(const kcps_daemon_t *daemon);

/* Retention: deletes the spooled jobs created at or before now - max_age
 * (unix seconds; see kcps_spool_expire). n (may be NULL) gets how many.
 * kcpsd calls it at start and then periodically. */
bool kcps_daemon_expire_jobs(kcps_daemon_t *daemon, gint64 now, gint64 max_age, guint *n,
                             GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(kcps_daemon_t, kcps_daemon_free)

G_END_DECLS
