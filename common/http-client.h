/* HTTPS client calls over libcurl with TLS 1.2+ and verification always on:
 * either against a given CA file (or the system store), or against a pinned
 * public key. One easy handle per call, so any thread may call. */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>
#include <stdbool.h>

G_BEGIN_DECLS

typedef enum {
  KCPS_NET_OK,    /* 2xx */
  KCPS_NET_RETRY, /* connection failure, timeout, 5xx, 429: try again later */
  KCPS_NET_AUTH,  /* 401 or 403: credentials or ticket refused */
  KCPS_NET_FATAL  /* other 4xx, malformed answer, TLS/pin failure */
} kcps_net_status_t;

typedef struct kcps_http_opts_s {
  const char *ca_file;       /* trust exactly this CA/cert; NULL: system store */
  const char *pinned_key;    /* "sha256//<b64>": the peer key must match; the
                                chain is then not checked against a CA */
  const char *bearer;        /* Authorization: Bearer <bearer> */
  const char *authorization; /* a whole Authorization value (wins over bearer) */
  long timeout_s;            /* whole-transfer timeout; 0 = 30 s */
  guint64 range_from;        /* download: ask for bytes range_from- (Range); 0 = all */
  gint64 max_recv_rate;      /* download: bytes a second at most; 0 = no limit */
} kcps_http_opts_t;

#define KCPS_NET_ERROR (kcps_net_error_quark())
GQuark kcps_net_error_quark(void);
/* Error codes in KCPS_NET_ERROR are kcps_net_status_t values. */

/* method + url with an optional JSON body. *response gets the parsed JSON
 * answer when there is one (also for error statuses); caller unrefs.
 * The error message carries the server's "message" when it sent one. */
kcps_net_status_t kcps_http_call_json(const char *method, const char *url,
                                      const kcps_http_opts_t *opts, JsonNode *body,
                                      long *status, JsonNode **response, GError **error);

/* GET url, writing the body to fd. *status gets the HTTP status. */
kcps_net_status_t kcps_http_download(const char *url, const kcps_http_opts_t *opts, int fd,
                                     long *status, GError **error);

G_END_DECLS
