/* Field-by-field checks of kcps-server request bodies: pure functions over
 * parsed JSON (no database), shared by the routes and the fuzz target. */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>
#include <stdbool.h>

G_BEGIN_DECLS

/* Bounds the routes enforce (docs/server.md lists them). */
#define KCPS_SERVER_MAX_EMAIL 254
#define KCPS_SERVER_MAX_PASSWORD 1024
#define KCPS_SERVER_MAX_NAME 255
#define KCPS_SERVER_MAX_CLIENT_JOB_ID 128
#define KCPS_SERVER_MAX_URL 2048
#define KCPS_SERVER_MAX_DEVICE 128
#define KCPS_SERVER_MAX_SECRET 256
#define KCPS_SERVER_MAX_PAGES 1000000
#define KCPS_SERVER_MAX_SIZE (G_GINT64_CONSTANT(1) << 40) /* 1 TiB */

/* Every string in these structs points into the JsonObject checked; they
 * live as long as it does. */
typedef struct kcps_server_login_req_s {
  const char *email;
  const char *password;
} kcps_server_login_req_t;

typedef struct kcps_server_job_req_s {
  const char *client_job_id;
  const char *name;
  gint64 pages;
  gint64 size;
  char sha256[65]; /* lower-cased copy */
  const char *pull_url;
  const char *pull_pin;
} kcps_server_job_req_t;

typedef struct kcps_server_device_login_req_s {
  const char *device;
  const char *secret;
} kcps_server_device_login_req_t;

typedef struct kcps_server_pin_req_s {
  const char *pin;
} kcps_server_pin_req_t;

typedef struct kcps_server_log_req_s {
  gint64 pages;
  gint64 color_pages;
  bool duplex;
  bool completed; /* status "completed" (else "failed") */
} kcps_server_log_req_t;

/* Each checks obj and fills *out; false + KCPS_SERVER_ERROR_BAD_REQUEST with
 * a message naming the field ("missing field \"pages\"", "field \"pages\"
 * must be an integer >= 1") otherwise. Unknown members are ignored. */
bool kcps__server_check_login(JsonObject *obj, kcps_server_login_req_t *out, GError **error);
bool kcps__server_check_job(JsonObject *obj, kcps_server_job_req_t *out, GError **error);
bool kcps__server_check_device_login(JsonObject *obj, kcps_server_device_login_req_t *out,
                                     GError **error);
bool kcps__server_check_pin(JsonObject *obj, kcps_server_pin_req_t *out, GError **error);
bool kcps__server_check_log(JsonObject *obj, kcps_server_log_req_t *out, GError **error);

/* True when text has the form of a server job id (a lower-case UUID). */
bool kcps__server_is_job_id(const char *text);

G_END_DECLS
