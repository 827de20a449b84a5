/* The reference cloud server (kcps-server): the REST API of docs/api.md
 * section 1 over HTTPS, with its state in one data folder (SQLite + keys). */
#pragma once

#include <glib.h>
#include <stdbool.h>

G_BEGIN_DECLS

typedef struct kcps_server_s kcps_server_t;

typedef struct kcps_server_config_s {
  const char *listen;    /* "HOST:PORT" ("[::1]:8443" for IPv6); port 0 picks a free port */
  const char *data_dir;  /* created 0700 when missing */
  const char *cert_path; /* PEM certificate and key: both or neither; neither: a */
  const char *key_path;  /* self-signed pair is made in data_dir (server.crt/.key) */
  bool demo;             /* fill an empty data folder with the demo tree */
  const char *smtp_url;  /* "smtp://host:port" or "smtps://..." relay for MFA mail; NULL: none */
  const char *smtp_from; /* sender address of MFA mail (default "kcps@localhost") */
  const char *smtp_ca_file; /* extra CA for smtps/STARTTLS to the relay, or NULL */
  const char *oidc_ca_file; /* extra CA for OpenID providers (tests, private IdPs), or NULL */
} kcps_server_config_t;

#define KCPS_SERVER_ERROR (kcps_server_error_quark())
GQuark kcps_server_error_quark(void);

typedef enum {
  KCPS_SERVER_ERROR_CONFIG,     /* the configuration is incomplete or contradictory */
  KCPS_SERVER_ERROR_IO,         /* a file or folder in the data folder failed */
  KCPS_SERVER_ERROR_DB,         /* SQLite failed (the message names the step) */
  KCPS_SERVER_ERROR_CRYPTO,     /* hashing or key material failed */
  KCPS_SERVER_ERROR_BAD_REQUEST /* a request body is malformed (names the field) */
} kcps_server_error_t;

/* Opens the data folder, prepares keys and certificate, creates the demo
 * data when asked (and the folder is empty) and starts serving on its own
 * threads. NULL + error naming the cause otherwise. */
kcps_server_t *kcps_server_new(const kcps_server_config_t *config, GError **error);

/* The port actually bound. */
int kcps_server_get_port(const kcps_server_t *server);

/* "https://HOST:PORT" with the bound port; belongs to the server. */
const char *kcps_server_get_url(const kcps_server_t *server);

/* The certificate served (clients trust it as their CA file). */
const char *kcps_server_get_cert_path(const kcps_server_t *server);

/* The demo credential lines ("alice@a.test password: ...\n"...) when this
 * start created the demo data, else NULL. Belongs to the server; they are
 * also in DATA/demo-credentials.txt. */
const char *kcps_server_get_demo_credentials(const kcps_server_t *server);

/* Stops serving (waits for running requests), closes the database and
 * frees. NULL is a no-op. */
void kcps_server_free(kcps_server_t *server);

/* Housekeeping that must not wait for a request: deletes cloud documents and
 * unfinished uploads past their organization's cloud_retention_hours (white
 * paper 6.1.4). kcps-server runs it at start and every few minutes. */
void kcps_server_expire(kcps_server_t *server);

G_END_DECLS
