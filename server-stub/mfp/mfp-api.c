/* kcps-mfp-sim's side of the server API (docs/api.md, section 1, device
 * routes) and of the desktop's pull port (section 2). */
#include "mfp-sim-private.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "common/json-util.h"

GQuark
kcps__mfp_error_quark(void)
{
  return g_quark_from_static_string("kcps-mfp-error-quark");
}

void
kcps__mfp_clear(kcps_mfp_t *mfp)
{
  if (mfp->secret)
    explicit_bzero(mfp->secret, strlen(mfp->secret));
  g_clear_pointer(&mfp->server, g_free);
  g_clear_pointer(&mfp->server_ca, g_free);
  g_clear_pointer(&mfp->device, g_free);
  g_clear_pointer(&mfp->secret, g_free);
  g_clear_pointer(&mfp->device_token, g_free);
  g_clear_pointer(&mfp->user_token, g_free);
  g_clear_pointer(&mfp->user_email, g_free);
}

void
kcps__mfp_job_free(kcps_mfp_job_t *job)
{
  if (!job)
    return;
  g_free(job->id);
  g_free(job->name);
  g_free(job->sha256);
  g_free(job->pull_url);
  g_free(job->pull_pin);
  g_free(job);
}

/* One JSON call to the server. On anything but 2xx with a JSON object, the
 * error says what was refused, the HTTP status and the server's message;
 * *code gets the server's error code when there is one. Returns the answer's
 * node (caller unrefs). */
static JsonNode *
call(kcps_mfp_t *mfp, const char *method, const char *path, const char *bearer, JsonNode *body,
     const char *what, GError **error)
{
  g_autofree char *url = g_strconcat(mfp->server, path, NULL);
  kcps_http_opts_t opts = {
      .ca_file = mfp->server_ca,
      .bearer = bearer,
      .timeout_s = mfp->timeout_s,
  };
  long status = 0;
  JsonNode *answer = NULL;
  GError *local = NULL;
  kcps_net_status_t net = kcps_http_call_json(method, url, &opts, body, &status, &answer, &local);

  if (net != KCPS_NET_OK) {
    /* The error code (e.g. invalid_pin) tells which refusal it was. */
    g_autofree char *code = NULL;
    if (answer && JSON_NODE_HOLDS_OBJECT(answer)) {
      const char *c = kcps_json_string(json_node_get_object(answer), "error");
      code = c ? g_strdup_printf(" (%s)", c) : NULL;
    }
    if (answer)
      json_node_unref(answer);
    if (status == 0 && net == KCPS_NET_RETRY)
      g_set_error(error, KCPS_MFP_ERROR, KCPS_MFP_ERROR_SERVER,
                  "%s failed: server %s unreachable: %s", what, mfp->server,
                  local ? local->message : "no answer");
    else if (status == 0)
      g_set_error(error, KCPS_MFP_ERROR, KCPS_MFP_ERROR_SERVER, "%s failed: %s", what,
                  local ? local->message : "no answer");
    else
      g_set_error(error, KCPS_MFP_ERROR, KCPS_MFP_ERROR_SERVER, "%s refused (HTTP %ld): %s%s", what,
                  status, local ? local->message : "no message", code ? code : "");
    g_clear_error(&local);
    return NULL;
  }
  g_clear_error(&local);
  if (!answer || !JSON_NODE_HOLDS_OBJECT(answer)) {
    if (answer)
      json_node_unref(answer);
    g_set_error(error, KCPS_MFP_ERROR, KCPS_MFP_ERROR_SERVER,
                "%s: the server's answer (HTTP %ld) is not a JSON object", what, status);
    return NULL;
  }
  return answer;
}

/* A JSON object node with string members from name/value pairs (NULL-ended). */
static JsonNode *
object_of_strings(const char *first_name, ...)
{
  JsonObject *obj = json_object_new();
  va_list ap;

  va_start(ap, first_name);
  for (const char *name = first_name; name; name = va_arg(ap, const char *))
    json_object_set_string_member(obj, name, va_arg(ap, const char *));
  va_end(ap);
  JsonNode *node = json_node_new(JSON_NODE_OBJECT);
  json_node_take_object(node, obj);
  return node;
}

/* A required string member of an answer, or an error naming it. */
static char *
required_string(JsonObject *obj, const char *name, const char *what, GError **error)
{
  const char *value = kcps_json_string(obj, name);

  if (!value || !*value) {
    g_set_error(error, KCPS_MFP_ERROR, KCPS_MFP_ERROR_SERVER,
                "%s: the server's answer lacks \"%s\"", what, name);
    return NULL;
  }
  return g_strdup(value);
}

bool
kcps__mfp_login(kcps_mfp_t *mfp, const char *pin, GError **error)
{
  g_autoptr(JsonNode) body = NULL;
  g_autoptr(JsonNode) answer = NULL;

  /* The device first: its secret buys a device session. */
  body = object_of_strings("device", mfp->device, "secret", mfp->secret, NULL);
  answer = call(mfp, "POST", "/api/v1/device/login", NULL, body, "device login", error);
  if (!answer)
    return false;
  mfp->device_token = required_string(json_node_get_object(answer), "token", "device login", error);
  if (!mfp->device_token)
    return false;
  g_clear_pointer(&body, json_node_unref);
  g_clear_pointer(&answer, json_node_unref);

  /* Then the user at the panel, by PIN, on the device session. */
  body = object_of_strings("pin", pin, NULL);
  answer =
      call(mfp, "POST", "/api/v1/device/pin-login", mfp->device_token, body, "PIN login", error);
  if (!answer)
    return false;
  JsonObject *obj = json_node_get_object(answer);
  mfp->user_token = required_string(obj, "token", "PIN login", error);
  if (!mfp->user_token)
    return false;
  JsonNode *user = json_object_get_member(obj, "user");
  const char *email = user && JSON_NODE_HOLDS_OBJECT(user)
                          ? kcps_json_string(json_node_get_object(user), "email")
                          : NULL;
  if (!email || !*email) {
    g_set_error(error, KCPS_MFP_ERROR, KCPS_MFP_ERROR_SERVER,
                "PIN login: the server's answer lacks \"user.email\"");
    return false;
  }
  mfp->user_email = g_strdup(email);
  return true;
}

/* A job from its JSON object; NULL + error when a needed member is missing. */
static kcps_mfp_job_t *
job_from_json(JsonObject *obj, GError **error)
{
  g_autoptr(GError) local = NULL;
  kcps_mfp_job_t *job = g_new0(kcps_mfp_job_t, 1);

  job->id = required_string(obj, "id", "job list", &local);
  if (!job->id || !kcps_json_int(obj, "pages", &job->pages)) {
    kcps__mfp_job_free(job);
    g_set_error(error, KCPS_MFP_ERROR, KCPS_MFP_ERROR_SERVER,
                "job list: a job lacks \"id\" or \"pages\"");
    return NULL;
  }
  job->name = g_strdup(kcps_json_string(obj, "name"));
  if (!kcps_json_int(obj, "size", &job->size))
    job->size = -1;
  job->sha256 = g_strdup(kcps_json_string(obj, "sha256"));
  job->pull_url = g_strdup(kcps_json_string(obj, "pull_url"));
  job->pull_pin = g_strdup(kcps_json_string(obj, "pull_pin"));
  return job;
}

GPtrArray *
kcps__mfp_list_jobs(kcps_mfp_t *mfp, GError **error)
{
  g_autoptr(JsonNode) answer =
      call(mfp, "GET", "/api/v1/device/jobs", mfp->user_token, NULL, "job list", error);
  if (!answer)
    return NULL;
  JsonNode *jobs = json_object_get_member(json_node_get_object(answer), "jobs");
  if (!jobs || !JSON_NODE_HOLDS_ARRAY(jobs)) {
    g_set_error(error, KCPS_MFP_ERROR, KCPS_MFP_ERROR_SERVER,
                "job list: the server's answer lacks the \"jobs\" array");
    return NULL;
  }
  JsonArray *array = json_node_get_array(jobs);
  g_autoptr(GPtrArray) list = g_ptr_array_new_with_free_func((GDestroyNotify)kcps__mfp_job_free);
  for (guint i = 0; i < json_array_get_length(array); i++) {
    JsonNode *element = json_array_get_element(array, i);
    if (!JSON_NODE_HOLDS_OBJECT(element)) {
      g_set_error(error, KCPS_MFP_ERROR, KCPS_MFP_ERROR_SERVER,
                  "job list: element %u is not an object", i);
      return NULL;
    }
    kcps_mfp_job_t *job = job_from_json(json_node_get_object(element), error);
    if (!job)
      return NULL;
    g_ptr_array_add(list, job);
  }
  return g_steal_pointer(&list);
}

bool
kcps__mfp_get_ticket(kcps_mfp_t *mfp, const char *job_id, char **ticket, char **pull_url,
                     char **pull_pin, GError **error)
{
  g_autofree char *escaped = g_uri_escape_string(job_id, NULL, false);
  g_autofree char *path = g_strdup_printf("/api/v1/device/jobs/%s/ticket", escaped);
  g_autoptr(JsonNode) body = json_node_new(JSON_NODE_OBJECT);
  json_node_take_object(body, json_object_new());
  g_autoptr(JsonNode) answer = call(mfp, "POST", path, mfp->user_token, body, "ticket", error);
  if (!answer)
    return false;
  JsonObject *obj = json_node_get_object(answer);
  g_autofree char *t = required_string(obj, "ticket", "ticket", error);
  if (!t)
    return false;
  g_autofree char *url = required_string(obj, "pull_url", "ticket", error);
  if (!url)
    return false;
  g_autofree char *pin = required_string(obj, "pull_pin", "ticket", error);
  if (!pin)
    return false;
  *ticket = g_steal_pointer(&t);
  *pull_url = g_steal_pointer(&url);
  *pull_pin = g_steal_pointer(&pin);
  return true;
}

bool
kcps__mfp_post_log(kcps_mfp_t *mfp, const char *job_id, gint64 pages, bool completed,
                   GError **error)
{
  g_autofree char *escaped = g_uri_escape_string(job_id, NULL, false);
  g_autofree char *path = g_strdup_printf("/api/v1/device/jobs/%s/log", escaped);
  JsonObject *obj = json_object_new();
  json_object_set_int_member(obj, "pages", pages);
  json_object_set_int_member(obj, "color_pages", 0);
  json_object_set_boolean_member(obj, "duplex", false);
  json_object_set_string_member(obj, "status", completed ? "completed" : "failed");
  g_autoptr(JsonNode) body = json_node_new(JSON_NODE_OBJECT);
  json_node_take_object(body, obj);

  /* A 201 may come without a body: only the status matters here. */
  g_autofree char *url = g_strconcat(mfp->server, path, NULL);
  kcps_http_opts_t opts = {
      .ca_file = mfp->server_ca,
      .bearer = mfp->user_token,
      .timeout_s = mfp->timeout_s,
  };
  long status = 0;
  g_autoptr(JsonNode) answer = NULL;
  GError *local = NULL;
  if (kcps_http_call_json("POST", url, &opts, body, &status, &answer, &local) != KCPS_NET_OK) {
    g_set_error(error, KCPS_MFP_ERROR, KCPS_MFP_ERROR_SERVER, "job log refused (HTTP %ld): %s",
                status, local ? local->message : "no message");
    g_clear_error(&local);
    return false;
  }
  g_clear_error(&local);
  return true;
}

/* The "message" of a small JSON error body left in fd by a refused pull;
 * NULL when the body is not one. Never returns document bytes: only a
 * JSON object's message member. */
static char *
error_body_message(int fd)
{
  char buf[4096];
  off_t end = lseek(fd, 0, SEEK_END);

  if (end <= 0 || end >= (off_t)sizeof buf || lseek(fd, 0, SEEK_SET) != 0)
    return NULL;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  if (n <= 0)
    return NULL;
  buf[n] = '\0';
  g_autoptr(JsonNode) node = kcps_json_parse_object(buf, n, NULL);
  if (!node)
    return NULL;
  JsonObject *obj = json_node_get_object(node);
  const char *code = kcps_json_string(obj, "error");
  const char *message = kcps_json_string(obj, "message");
  if (!message)
    return NULL;
  return code ? g_strdup_printf("%s (%s)", message, code) : g_strdup(message);
}

bool
kcps__mfp_pull(const char *pull_url, const char *pull_pin, const char *ticket, int fd,
               guint64 from, gint64 max_rate, long timeout_s, long *status_out,
               GError **error)
{
  g_autofree char *authorization = g_strconcat("KCPS-Ticket ", ticket, NULL);
  kcps_http_opts_t opts = {
      .pinned_key = pull_pin,
      .authorization = authorization,
      .timeout_s = timeout_s,
      .range_from = from,
      .max_recv_rate = max_rate,
  };
  long status = 0;
  GError *local = NULL;
  kcps_net_status_t net = kcps_http_download(pull_url, &opts, fd, &status, &local);

  explicit_bzero(authorization, strlen(authorization));
  if (status_out)
    *status_out = status;
  if (net == KCPS_NET_OK && from > 0 && status != 206) {
    /* Whole document again after our part: the file is no longer one PDF. */
    g_clear_error(&local);
    g_set_error(error, KCPS_MFP_ERROR, KCPS_MFP_ERROR_PULL,
                "the desktop answered HTTP %ld to a resumed pull (Range), not 206", status);
    return false;
  }
  if (net == KCPS_NET_OK && status >= 200 && status < 300) {
    g_clear_error(&local);
    return true;
  }
  /* Say the desktop's own words when it sent a JSON error body. */
  g_autofree char *message = status >= 400 ? error_body_message(fd) : NULL;
  const char *detail = local ? local->message : "no message";
  if (message && (!local || !strstr(local->message, message)))
    detail = message;
  if (status == 0)
    g_set_error(error, KCPS_MFP_ERROR, KCPS_MFP_ERROR_PULL, "pull from %s failed: %s", pull_url,
                detail);
  else
    g_set_error(error, KCPS_MFP_ERROR, KCPS_MFP_ERROR_PULL, "pull refused (HTTP %ld): %s", status,
                detail);
  g_clear_error(&local);
  return false;
}
