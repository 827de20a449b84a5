/* Fuzz target: kcps-server request bodies (untrusted JSON from any HTTPS
 * client) through every body check the routes use. A check must either
 * accept a request whose fields are within the documented bounds, or refuse
 * it with a message that names a field. */
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

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  char *text = g_strndup((const char *)data, size);
  (void)kcps__server_is_job_id(text);
  g_free(text);

  JsonNode *node = kcps_json_parse_object((const char *)data, (gssize)size, NULL);
  if (!node)
    return 0;
  JsonObject *obj = json_node_get_object(node);
  GError *error = NULL;
  bool ok;

  kcps_server_login_req_t login;
  ok = kcps__server_check_login(obj, &login, &error);
  check_refusal(ok, error);
  if (ok) {
    check_string(login.email, 3, KCPS_SERVER_MAX_EMAIL);
    check_string(login.password, 1, KCPS_SERVER_MAX_PASSWORD);
    if (!strchr(login.email, '@'))
      __builtin_trap();
  }
  g_clear_error(&error);

  kcps_server_job_req_t job;
  ok = kcps__server_check_job(obj, &job, &error);
  check_refusal(ok, error);
  if (ok) {
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
  if (ok) {
    check_string(device.device, 1, KCPS_SERVER_MAX_DEVICE);
    check_string(device.secret, 1, KCPS_SERVER_MAX_SECRET);
  }
  g_clear_error(&error);

  kcps_server_pin_req_t pin;
  ok = kcps__server_check_pin(obj, &pin, &error);
  check_refusal(ok, error);
  if (ok) {
    check_string(pin.pin, 4, 12);
    for (const char *p = pin.pin; *p; p++)
      if (!g_ascii_isdigit(*p))
        __builtin_trap();
  }
  g_clear_error(&error);

  kcps_server_log_req_t log;
  ok = kcps__server_check_log(obj, &log, &error);
  check_refusal(ok, error);
  if (ok && (log.pages < 0 || log.color_pages < 0 || log.color_pages > log.pages))
    __builtin_trap();
  g_clear_error(&error);

  json_node_unref(node);
  return 0;
}
