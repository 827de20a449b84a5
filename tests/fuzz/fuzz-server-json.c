/* Fuzz target: kcps-server request bodies (untrusted JSON from any HTTPS
 * client) through the strict JSON text check and every body check the
 * routes use. A check must either accept a request whose fields are within
 * the documented bounds, or refuse it with a message that names a field;
 * text the strict check accepts must parse, and a refusal message must be
 * UTF-8 without control characters (it goes back to the caller as JSON). */
#include "server-stub/server-validate.h"

#include "common/json-util.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_refusal(bool ok, GError *error)
{
  /* Refused: a message that names the field (quoted). Accepted: no error. */
  if (!ok && (!error || !strchr(error->message, '"')))
    __builtin_trap();
  if (ok && error)
    __builtin_trap();
}

static void
check_string(const char *s, size_t min, size_t max)
{
  if (!s || strlen(s) < min || strlen(s) > max || !g_utf8_validate(s, -1, NULL))
    __builtin_trap();
}

static void
check_message(const GError *error)
{
  if (!error || !g_utf8_validate(error->message, -1, NULL))
    __builtin_trap();
  for (const char *p = error->message; *p; p++)
    if ((unsigned char)*p < 0x20)
      __builtin_trap();
}

/* No member outside the route's list gets through a check. */
static void
check_only(JsonObject *obj, const char *const *allowed)
{
  g_autoptr(GList) names = json_object_get_members(obj);
  for (GList *l = names; l; l = l->next)
    if (!g_strv_contains(allowed, l->data))
      __builtin_trap();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  char *text = g_strndup((const char *)data, size);
  (void)kcps__server_is_job_id(text);
  GError *error = NULL;
  bool ok = kcps__server_check_content_type(text, &error);
  if (!ok)
    check_message(error);
  g_clear_error(&error);
  g_free(text);

  /* The strict text check first, as the server does; what it accepts is
   * JSON json-glib reads too (an object or not). */
  bool strict = kcps__server_check_json_text((const char *)data, size, &error);
  if (!strict)
    check_message(error);
  g_clear_error(&error);
  if (strict) {
    JsonParser *parser = json_parser_new_immutable();
    if (!json_parser_load_from_data(parser, (const char *)data, (gssize)size, NULL))
      __builtin_trap();
    g_object_unref(parser);
  }

  JsonNode *node = kcps_json_parse_object((const char *)data, (gssize)size, NULL);
  if (!node)
    return 0;
  JsonObject *obj = json_node_get_object(node);

  kcps_server_login_req_t login;
  ok = kcps__server_check_login(obj, &login, &error);
  check_refusal(ok, error);
  if (!ok)
    check_message(error);
  if (ok) {
    static const char *const fields[] = {"email", "password", "client", NULL};
    check_only(obj, fields);
    if (strcmp(login.client, "web") != 0 && strcmp(login.client, "desktop") != 0)
      __builtin_trap();
    check_string(login.email, 3, KCPS_SERVER_MAX_EMAIL);
    check_string(login.password, 1, KCPS_SERVER_MAX_PASSWORD);
    if (!strchr(login.email, '@'))
      __builtin_trap();
  }
  g_clear_error(&error);

  kcps_server_job_req_t job;
  ok = kcps__server_check_job(obj, &job, &error);
  check_refusal(ok, error);
  if (!ok)
    check_message(error);
  if (ok) {
    static const char *const fields[] = {"client_job_id", "name", "pages", "size",
                                         "sha256", "pull_url", "pull_pin", NULL};
    check_only(obj, fields);
    check_string(job.client_job_id, 1, KCPS_SERVER_MAX_CLIENT_JOB_ID);
    check_string(job.name, 0, KCPS_SERVER_MAX_NAME);
    check_string(job.pull_url, 9, KCPS_SERVER_MAX_URL);
    check_string(job.pull_pin, 52, 52);
    if (job.pages < 1 || job.pages > KCPS_SERVER_MAX_PAGES || job.size < 0 ||
        job.size > KCPS_SERVER_MAX_SIZE || strlen(job.sha256) != 64 ||
        !g_str_has_prefix(job.pull_url, "https://") || strchr(job.client_job_id, '/'))
      __builtin_trap();
  }
  g_clear_error(&error);

  kcps_server_device_login_req_t device;
  ok = kcps__server_check_device_login(obj, &device, &error);
  check_refusal(ok, error);
  if (!ok)
    check_message(error);
  if (ok) {
    static const char *const fields[] = {"device", "secret", NULL};
    check_only(obj, fields);
    check_string(device.device, 1, KCPS_SERVER_MAX_DEVICE);
    check_string(device.secret, 1, KCPS_SERVER_MAX_SECRET);
  }
  g_clear_error(&error);

  kcps_server_pin_req_t pin;
  ok = kcps__server_check_pin(obj, &pin, &error);
  check_refusal(ok, error);
  if (!ok)
    check_message(error);
  if (ok) {
    static const char *const fields[] = {"pin", NULL};
    check_only(obj, fields);
    check_string(pin.pin, 4, 12);
    for (const char *p = pin.pin; *p; p++)
      if (!g_ascii_isdigit(*p))
        __builtin_trap();
  }
  g_clear_error(&error);

  kcps_server_log_req_t log;
  ok = kcps__server_check_log(obj, &log, &error);
  check_refusal(ok, error);
  if (!ok)
    check_message(error);
  if (ok && (log.pages < 0 || log.color_pages < 0 || log.color_pages > log.pages))
    __builtin_trap();
  if (ok) {
    static const char *const fields[] = {"pages", "color_pages", "duplex", "status", NULL};
    check_only(obj, fields);
  }
  g_clear_error(&error);

  /* The generic field readers other routes build on. */
  static const char *const colors[] = {"red", "green", "blue", NULL};
  const char *s = NULL;
  gint64 v = 0;
  bool b = false;
  int idx = 0;
  ok = kcps__server_field_string(obj, "name", 1, 16, KCPS_TEXT_OPTIONAL, &s, &error);
  check_refusal(ok, error);
  if (ok && s)
    check_string(s, 1, 16);
  g_clear_error(&error);
  ok = kcps__server_field_int(obj, "pages", false, -5, 5, 0, &v, &error);
  check_refusal(ok, error);
  if (ok && (v < -5 || v > 5))
    __builtin_trap();
  g_clear_error(&error);
  ok = kcps__server_field_bool(obj, "duplex", true, false, &b, &error);
  check_refusal(ok, error);
  g_clear_error(&error);
  ok = kcps__server_field_enum(obj, "status", false, colors, 1, &idx, &error);
  check_refusal(ok, error);
  if (ok && (idx < 0 || idx > 2))
    __builtin_trap();
  g_clear_error(&error);
  ok = kcps__server_field_email(obj, "email", false, &s, &error);
  check_refusal(ok, error);
  g_clear_error(&error);
  ok = kcps__server_check_fields(obj, colors, &error);
  check_refusal(ok, error);
  if (!ok)
    check_message(error);
  g_clear_error(&error);

  json_node_unref(node);
  return 0;
}
