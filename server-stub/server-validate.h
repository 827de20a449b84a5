/* Field-by-field checks of kcps-server request bodies: pure functions over
 * the body text and the parsed JSON (no database), shared by the routes and
 * the fuzz target. Every refusal is KCPS_SERVER_ERROR_BAD_REQUEST with a
 * message that names the field (quoted) and the rule broken. */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>
#include <stdbool.h>

G_BEGIN_DECLS

/* Bounds the routes enforce (docs/api-parts/input.md lists them). */
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
  const char *client; /* "web" (default) or "desktop" */
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
 * must be an integer from 1 to 1000000", "unknown field \"x\"") otherwise.
 * Members the route does not know are refused. */
bool kcps__server_check_login(JsonObject *obj, kcps_server_login_req_t *out, GError **error);
bool kcps__server_check_job(JsonObject *obj, kcps_server_job_req_t *out, GError **error);
bool kcps__server_check_device_login(JsonObject *obj, kcps_server_device_login_req_t *out,
                                     GError **error);
bool kcps__server_check_pin(JsonObject *obj, kcps_server_pin_req_t *out, GError **error);
bool kcps__server_check_log(JsonObject *obj, kcps_server_log_req_t *out, GError **error);

/* True when text has the form of a server job id (a lower-case UUID). */
bool kcps__server_is_job_id(const char *text);

/* Building blocks for every route's own check --------------------------- */

/* The raw body, before any parsing: strict JSON (RFC 8259) only, so that
 * what the server reads is what any other JSON reader would read. Refuses
 * what json-glib would let through or read differently: trailing data after
 * the value, comments, single quotes, raw control characters in strings,
 * "\u0000" (it would cut the string short), unpaired surrogates, invalid
 * UTF-8, duplicate members, non-standard numbers (hex, NaN, leading +/0)
 * and nesting deeper than KCPS_SERVER_MAX_DEPTH. A leading UTF-8 BOM is
 * skipped. The message names the rule and the byte offset. */
#define KCPS_SERVER_MAX_DEPTH 32
bool kcps__server_check_json_text(const char *text, size_t len, GError **error);

/* The request's Content-Type header value (NULL when absent): must be
 * application/json, parameters allowed, charset (if any) utf-8. */
bool kcps__server_check_content_type(const char *value, GError **error);

/* Refuses every member of obj whose name is not in allowed (NULL-terminated):
 * `unknown field "x"` (the name shown printable: other bytes as '?', cut
 * after 64 bytes). Call it first in each route's check. */
bool kcps__server_check_fields(JsonObject *obj, const char *const *allowed, GError **error);

typedef enum {
  KCPS_TEXT_PLAIN = 0,         /* no control characters (C0, DEL, C1) */
  KCPS_TEXT_CONTROL = 1 << 0,  /* control characters allowed (passwords) */
  KCPS_TEXT_OPTIONAL = 1 << 1  /* may be absent: then *out = NULL, true */
} kcps_server_text_t;

/* A string member of min..max bytes, valid UTF-8, no control characters
 * unless KCPS_TEXT_CONTROL. A JSON null is a wrong type, not absence. */
bool kcps__server_field_string(JsonObject *obj, const char *name, size_t min, size_t max,
                               kcps_server_text_t flags, const char **out, GError **error);
/* An integer member in lo..hi (1.0 and "1" are wrong types); when not
 * required and absent, *out = dflt. */
bool kcps__server_field_int(JsonObject *obj, const char *name, bool required, gint64 lo,
                            gint64 hi, gint64 dflt, gint64 *out, GError **error);
/* A true/false member; when not required and absent, *out = dflt. */
bool kcps__server_field_bool(JsonObject *obj, const char *name, bool required, bool dflt,
                             bool *out, GError **error);
/* A string member that must be one of values (NULL-terminated); *out gets
 * its index; when not required and absent, *out = dflt. */
bool kcps__server_field_enum(JsonObject *obj, const char *name, bool required,
                             const char *const *values, int dflt, int *out, GError **error);
/* An email address: 3..254 bytes, one '@' with text on both sides, no
 * spaces or control characters. */
bool kcps__server_field_email(JsonObject *obj, const char *name, bool required, const char **out,
                              GError **error);

/* True when text is a lower-case UUID (8-4-4-4-12 hex), the form of every
 * public id (users, orgs, devices, jobs). Routes answer 404 for anything
 * else in an id path segment, before asking the database. */
bool kcps__server_is_uuid(const char *text);

G_END_DECLS
