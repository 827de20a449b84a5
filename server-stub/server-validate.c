/* Request body checks: every field's presence, type and range, so that a
 * route either gets a complete, sane request or answers 400 naming the field
 * before anything is stored. */
#include "server-validate.h"

#include "server.h"

#include <string.h>

typedef enum {
  TEXT_PLAIN = 0,       /* no control characters */
  TEXT_ANY = 1 << 0,    /* control characters allowed (passwords) */
} text_flags_t;

static void
set_bad(GError **error, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

static void
set_bad(GError **error, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  char *msg = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  g_set_error_literal(error, KCPS_SERVER_ERROR, KCPS_SERVER_ERROR_BAD_REQUEST, msg);
  g_free(msg);
}

/* The member node, or NULL with "missing field" when required. */
static JsonNode *
member(JsonObject *obj, const char *name, bool required, bool *present, GError **error)
{
  JsonNode *node = obj ? json_object_get_member(obj, name) : NULL;
  *present = node != NULL;
  if (!node && required)
    set_bad(error, "missing field \"%s\"", name);
  return node;
}

static bool
has_control(const char *s)
{
  for (const unsigned char *p = (const unsigned char *)s; *p; p++)
    if (*p < 0x20 || *p == 0x7f)
      return true;
  return false;
}

/* A required string member of min..max bytes, valid UTF-8. */
static bool
get_string(JsonObject *obj, const char *name, size_t min, size_t max, text_flags_t flags,
           const char **out, GError **error)
{
  bool present;
  JsonNode *node = member(obj, name, true, &present, error);
  if (!node)
    return false;
  if (!JSON_NODE_HOLDS_VALUE(node) || json_node_get_value_type(node) != G_TYPE_STRING) {
    set_bad(error, "field \"%s\" must be a string", name);
    return false;
  }
  const char *s = json_node_get_string(node);
  size_t len = s ? strlen(s) : 0;
  if (!s || len < min || len > max) {
    if (min > 0)
      set_bad(error, "field \"%s\" must be %zu to %zu bytes long", name, min, max);
    else
      set_bad(error, "field \"%s\" must be at most %zu bytes long", name, max);
    return false;
  }
  if (!g_utf8_validate(s, (gssize)len, NULL)) {
    set_bad(error, "field \"%s\" is not valid UTF-8", name);
    return false;
  }
  if (!(flags & TEXT_ANY) && has_control(s)) {
    set_bad(error, "field \"%s\" must not contain control characters", name);
    return false;
  }
  *out = s;
  return true;
}

/* An integer member in lo..hi; when optional and absent, *out = dflt. */
static bool
get_int(JsonObject *obj, const char *name, bool required, gint64 lo, gint64 hi, gint64 dflt,
        gint64 *out, GError **error)
{
  bool present;
  JsonNode *node = member(obj, name, required, &present, error);
  if (!present) {
    *out = dflt;
    return !required;
  }
  if (!JSON_NODE_HOLDS_VALUE(node) || json_node_get_value_type(node) != G_TYPE_INT64) {
    set_bad(error, "field \"%s\" must be an integer", name);
    return false;
  }
  gint64 v = json_node_get_int(node);
  if (v < lo || v > hi) {
    set_bad(error, "field \"%s\" must be an integer from %" G_GINT64_FORMAT " to %" G_GINT64_FORMAT,
            name, lo, hi);
    return false;
  }
  *out = v;
  return true;
}

static bool
get_bool(JsonObject *obj, const char *name, bool dflt, bool *out, GError **error)
{
  bool present;
  JsonNode *node = member(obj, name, false, &present, error);
  if (!present) {
    *out = dflt;
    return true;
  }
  if (!JSON_NODE_HOLDS_VALUE(node) || json_node_get_value_type(node) != G_TYPE_BOOLEAN) {
    set_bad(error, "field \"%s\" must be true or false", name);
    return false;
  }
  *out = json_node_get_boolean(node);
  return true;
}

static bool
check_email(const char *email, GError **error)
{
  const char *at = strchr(email, '@');
  bool ok = at && at != email && at[1] != '\0' && !strchr(at + 1, '@');
  for (const char *p = email; ok && *p; p++)
    if (*p == ' ')
      ok = false;
  if (!ok)
    set_bad(error, "field \"email\" must be an email address (name@domain)");
  return ok;
}

bool
kcps__server_check_login(JsonObject *obj, kcps_server_login_req_t *out, GError **error)
{
  kcps_server_login_req_t r = {0};
  if (!get_string(obj, "email", 3, KCPS_SERVER_MAX_EMAIL, TEXT_PLAIN, &r.email, error) ||
      !check_email(r.email, error) ||
      !get_string(obj, "password", 1, KCPS_SERVER_MAX_PASSWORD, TEXT_ANY, &r.password, error))
    return false;
  *out = r;
  return true;
}

/* Client job ids end up in pull URLs: URL-unreserved characters only. */
static bool
is_client_job_id(const char *s)
{
  for (; *s; s++)
    if (!g_ascii_isalnum(*s) && !strchr("-._~", *s))
      return false;
  return true;
}

static bool
check_https_url(const char *url, GError **error)
{
  g_autoptr(GError) local = NULL;
  g_autoptr(GUri) uri = g_uri_parse(url, G_URI_FLAGS_NONE, &local);
  if (!uri) {
    set_bad(error, "field \"pull_url\" is not a URL: %s", local->message);
    return false;
  }
  const char *host = g_uri_get_host(uri);
  /* The literal lower-case prefix: consumers may compare it as text. */
  if (g_strcmp0(g_uri_get_scheme(uri), "https") != 0 || !g_str_has_prefix(url, "https://")) {
    set_bad(error, "field \"pull_url\" must be an https:// URL");
    return false;
  }
  if (!host || !*host) {
    set_bad(error, "field \"pull_url\" has no host");
    return false;
  }
  if (g_uri_get_userinfo(uri)) {
    set_bad(error, "field \"pull_url\" must not carry user information");
    return false;
  }
  for (const char *p = url; *p; p++)
    if (g_ascii_isspace(*p)) {
      set_bad(error, "field \"pull_url\" must not contain spaces");
      return false;
    }
  return true;
}

/* "sha256//" + standard base64 of a 32-byte SHA-256 (44 characters). */
static bool
check_pin_form(const char *pin, GError **error)
{
  static const char prefix[] = "sha256//";
  const char *b64 = pin + strlen(prefix);
  bool ok = g_str_has_prefix(pin, prefix) && strlen(b64) == 44 && b64[43] == '=';
  for (size_t i = 0; ok && i < 43; i++)
    ok = g_ascii_isalnum(b64[i]) || b64[i] == '+' || b64[i] == '/';
  if (ok) {
    gsize len = 0;
    g_autofree guchar *raw = g_base64_decode(b64, &len);
    ok = len == 32;
  }
  if (!ok)
    set_bad(error, "field \"pull_pin\" must be sha256// and the base64 of 32 bytes");
  return ok;
}

bool
kcps__server_check_job(JsonObject *obj, kcps_server_job_req_t *out, GError **error)
{
  kcps_server_job_req_t r = {0};
  const char *sha = NULL;

  if (!get_string(obj, "client_job_id", 1, KCPS_SERVER_MAX_CLIENT_JOB_ID, TEXT_PLAIN,
                  &r.client_job_id, error))
    return false;
  if (!is_client_job_id(r.client_job_id)) {
    set_bad(error, "field \"client_job_id\" may hold only letters, digits and - . _ ~");
    return false;
  }
  /* An empty name is allowed: not every application names its documents. */
  if (!get_string(obj, "name", 0, KCPS_SERVER_MAX_NAME, TEXT_PLAIN, &r.name, error) ||
      !get_int(obj, "pages", true, 1, KCPS_SERVER_MAX_PAGES, 0, &r.pages, error) ||
      !get_int(obj, "size", true, 0, KCPS_SERVER_MAX_SIZE, 0, &r.size, error) ||
      !get_string(obj, "sha256", 64, 64, TEXT_PLAIN, &sha, error))
    return false;
  for (size_t i = 0; i < 64; i++) {
    if (!g_ascii_isxdigit(sha[i])) {
      set_bad(error, "field \"sha256\" must be 64 hexadecimal characters");
      return false;
    }
    r.sha256[i] = g_ascii_tolower(sha[i]);
  }
  r.sha256[64] = '\0';
  if (!get_string(obj, "pull_url", 9, KCPS_SERVER_MAX_URL, TEXT_PLAIN, &r.pull_url, error) ||
      !check_https_url(r.pull_url, error) ||
      !get_string(obj, "pull_pin", 1, 64, TEXT_PLAIN, &r.pull_pin, error) ||
      !check_pin_form(r.pull_pin, error))
    return false;
  *out = r;
  return true;
}

bool
kcps__server_check_device_login(JsonObject *obj, kcps_server_device_login_req_t *out,
                                GError **error)
{
  kcps_server_device_login_req_t r = {0};
  if (!get_string(obj, "device", 1, KCPS_SERVER_MAX_DEVICE, TEXT_PLAIN, &r.device, error) ||
      !get_string(obj, "secret", 1, KCPS_SERVER_MAX_SECRET, TEXT_PLAIN, &r.secret, error))
    return false;
  *out = r;
  return true;
}

bool
kcps__server_check_pin(JsonObject *obj, kcps_server_pin_req_t *out, GError **error)
{
  kcps_server_pin_req_t r = {0};
  if (!get_string(obj, "pin", 4, 12, TEXT_PLAIN, &r.pin, error))
    return false;
  for (const char *p = r.pin; *p; p++)
    if (!g_ascii_isdigit(*p)) {
      set_bad(error, "field \"pin\" must be 4 to 12 digits");
      return false;
    }
  *out = r;
  return true;
}

bool
kcps__server_check_log(JsonObject *obj, kcps_server_log_req_t *out, GError **error)
{
  kcps_server_log_req_t r = {0};
  const char *status = NULL;
  if (!get_int(obj, "pages", true, 0, KCPS_SERVER_MAX_PAGES, 0, &r.pages, error) ||
      !get_int(obj, "color_pages", false, 0, KCPS_SERVER_MAX_PAGES, 0, &r.color_pages, error) ||
      !get_bool(obj, "duplex", false, &r.duplex, error) ||
      !get_string(obj, "status", 1, 16, TEXT_PLAIN, &status, error))
    return false;
  if (r.color_pages > r.pages) {
    set_bad(error, "field \"color_pages\" must not exceed \"pages\"");
    return false;
  }
  if (strcmp(status, "completed") == 0)
    r.completed = true;
  else if (strcmp(status, "failed") == 0)
    r.completed = false;
  else {
    set_bad(error, "field \"status\" must be \"completed\" or \"failed\"");
    return false;
  }
  *out = r;
  return true;
}

bool
kcps__server_is_job_id(const char *text)
{
  if (!text || strlen(text) != 36)
    return false;
  for (size_t i = 0; i < 36; i++) {
    bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? text[i] != '-' : !(g_ascii_isdigit(text[i]) || (text[i] >= 'a' && text[i] <= 'f')))
      return false;
  }
  return true;
}
