/* HTTPS client calls on libcurl: TLS 1.2+, verification always on. */
#include "common/http-client.h"
#include "common/json-util.h"

#include <curl/curl.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

G_DEFINE_QUARK(kcps-net-error-quark, kcps_net_error)

#define MAX_JSON_RESPONSE (8 * 1024 * 1024)

static void
global_init(void)
{
  static gsize done = 0;

  if (g_once_init_enter(&done)) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    g_once_init_leave(&done, 1);
  }
}

typedef struct {
  GString *buf;  /* JSON answers, and error answers of downloads */
  int fd;        /* downloads, or -1 */
  CURL *curl;    /* downloads: to learn the status before writing */
  bool overflow;
  int write_errno;
} sink_t;

static size_t
on_data(char *ptr, size_t size, size_t nmemb, void *userdata)
{
  sink_t *sink = userdata;
  size_t len = size * nmemb;

  long code = 0;
  if (sink->fd >= 0)
    curl_easy_getinfo(sink->curl, CURLINFO_RESPONSE_CODE, &code);
  if (sink->fd >= 0 && code >= 200 && code < 300) {
    size_t off = 0;
    while (off < len) {
      ssize_t n = write(sink->fd, ptr + off, len - off);
      if (n < 0) {
        if (errno == EINTR)
          continue;
        sink->write_errno = errno;
        return 0;
      }
      off += (size_t)n;
    }
    return len;
  }
  if (sink->buf->len + len > MAX_JSON_RESPONSE) {
    sink->overflow = true;
    return 0;
  }
  g_string_append_len(sink->buf, ptr, (gssize)len);
  return len;
}

/* Sets up TLS and auth on an easy handle. The returned list is the
 * caller's to free after the transfer. */
static struct curl_slist *
prepare(CURL *curl, const char *url, const kcps_http_opts_t *opts)
{
  struct curl_slist *headers = NULL;

  curl_easy_setopt(curl, CURLOPT_URL, url);
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 10L);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, opts && opts->timeout_s > 0 ? opts->timeout_s : 30L);
  curl_easy_setopt(curl, CURLOPT_USERAGENT, "kcps/0.1");

  if (opts && opts->pinned_key) {
    /* The key is the identity: a self-signed peer whose key matches. */
    curl_easy_setopt(curl, CURLOPT_PINNEDPUBLICKEY, opts->pinned_key);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 0L);
  } else {
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
    if (opts && opts->ca_file)
      curl_easy_setopt(curl, CURLOPT_CAINFO, opts->ca_file);
  }

  if (opts && opts->authorization) {
    char *h = g_strconcat("Authorization: ", opts->authorization, NULL);
    headers = curl_slist_append(headers, h);
    g_free(h);
  } else if (opts && opts->bearer) {
    char *h = g_strconcat("Authorization: Bearer ", opts->bearer, NULL);
    headers = curl_slist_append(headers, h);
    g_free(h);
  }
  return headers;
}

static kcps_net_status_t
status_for_http(long code)
{
  if (code >= 200 && code < 300)
    return KCPS_NET_OK;
  if (code == 401 || code == 403)
    return KCPS_NET_AUTH;
  if (code == 429 || code >= 500)
    return KCPS_NET_RETRY;
  return KCPS_NET_FATAL;
}

static kcps_net_status_t
status_for_curl(CURLcode rc)
{
  switch (rc) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
      return KCPS_NET_RETRY;
    default:
      return KCPS_NET_FATAL;
  }
}

kcps_net_status_t
kcps_http_call_json(const char *method, const char *url, const kcps_http_opts_t *opts,
                    JsonNode *body, long *status, JsonNode **response, GError **error)
{
  global_init();
  if (status)
    *status = 0;
  if (response)
    *response = NULL;

  CURL *curl = curl_easy_init();
  char errbuf[CURL_ERROR_SIZE] = "";
  sink_t sink = {.buf = g_string_new(NULL), .fd = -1};
  struct curl_slist *headers = prepare(curl, url, opts);
  char *payload = NULL;

  headers = curl_slist_append(headers, "Accept: application/json");
  if (body) {
    payload = kcps_json_to_string(body);
    headers = curl_slist_append(headers, "Content-Type: application/json");
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, payload);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, (long)strlen(payload));
  } else if (g_strcmp0(method, "POST") == 0) {
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, "");
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, 0L);
  }
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_data);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &sink);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);

  CURLcode rc = curl_easy_perform(curl);
  long code = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
  curl_easy_cleanup(curl);
  curl_slist_free_all(headers);
  g_free(payload);

  kcps_net_status_t result;
  if (rc != CURLE_OK) {
    result = sink.overflow ? KCPS_NET_FATAL : status_for_curl(rc);
    g_set_error(error, KCPS_NET_ERROR, (int)result, "%s %s: %s", method, url,
                sink.overflow ? "answer too large" : (*errbuf ? errbuf : curl_easy_strerror(rc)));
    g_string_free(sink.buf, TRUE);
    return result;
  }
  if (status)
    *status = code;

  /* Parse any JSON answer, also for errors: it carries the reason. */
  JsonNode *json = NULL;
  GError *parse_error = NULL;
  if (sink.buf->len > 0)
    json = kcps_json_parse_object(sink.buf->str, (gssize)sink.buf->len, &parse_error);
  g_string_free(sink.buf, TRUE);

  result = status_for_http(code);
  if (result == KCPS_NET_OK) {
    if (parse_error) {
      result = KCPS_NET_FATAL;
      g_set_error(error, KCPS_NET_ERROR, (int)result, "%s %s: answer %s", method, url,
                  parse_error->message);
    }
  } else {
    const char *message = json ? kcps_json_string(json_node_get_object(json), "message") : NULL;
    g_set_error(error, KCPS_NET_ERROR, (int)result, "%s", message ? message : "");
    if (!message)
      g_prefix_error(error, "%s %s: HTTP %ld", method, url, code);
  }
  g_clear_error(&parse_error);

  if (response)
    *response = json;
  else if (json)
    json_node_unref(json);
  return result;
}

kcps_net_status_t
kcps_http_download(const char *url, const kcps_http_opts_t *opts, int fd, long *status,
                   GError **error)
{
  global_init();
  if (status)
    *status = 0;

  CURL *curl = curl_easy_init();
  char errbuf[CURL_ERROR_SIZE] = "";
  GString *errbody = g_string_new(NULL);
  sink_t sink = {.buf = errbody, .fd = fd, .curl = curl};
  struct curl_slist *headers = prepare(curl, url, opts);

  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_data);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &sink);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
  char range[32] = "";
  if (opts && opts->range_from > 0) {
    g_snprintf(range, sizeof range, "%" G_GUINT64_FORMAT "-", opts->range_from);
    curl_easy_setopt(curl, CURLOPT_RANGE, range);
  }
  if (opts && opts->max_recv_rate > 0)
    curl_easy_setopt(curl, CURLOPT_MAX_RECV_SPEED_LARGE, (curl_off_t)opts->max_recv_rate);

  CURLcode rc = curl_easy_perform(curl);
  long code = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
  curl_easy_cleanup(curl);
  curl_slist_free_all(headers);

  if (rc != CURLE_OK) {
    g_string_free(errbody, TRUE);
    kcps_net_status_t result = sink.write_errno ? KCPS_NET_FATAL : status_for_curl(rc);
    g_set_error(error, KCPS_NET_ERROR, (int)result, "GET %s: %s", url,
                sink.write_errno ? g_strerror(sink.write_errno)
                                 : (*errbuf ? errbuf : curl_easy_strerror(rc)));
    return result;
  }
  if (status)
    *status = code;

  /* An error answer (JSON) went to errbody, never into the file. */
  kcps_net_status_t result = status_for_http(code);
  if (result != KCPS_NET_OK) {
    JsonNode *json = kcps_json_parse_object(errbody->str, (gssize)errbody->len, NULL);
    const char *message = json ? kcps_json_string(json_node_get_object(json), "message") : NULL;
    if (message)
      g_set_error(error, KCPS_NET_ERROR, (int)result, "%s", message);
    else
      g_set_error(error, KCPS_NET_ERROR, (int)result, "GET %s: HTTP %ld", url, code);
    if (json)
      json_node_unref(json);
  }
  g_string_free(errbody, TRUE);
  return result;
}
