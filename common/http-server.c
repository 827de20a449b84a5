/* JSON/file HTTP(S) servers on libmicrohttpd: one thread a connection, the
 * handler sees each request once, whole and bounded, or with its body
 * streamed to a sink the headers_fn chose. */
#include "common/http-server.h"
#include "common/json-util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_MAX_BODY (1024 * 1024)
#define TLS_PRIORITIES "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"

struct kcps_http_server_s {
  GPtrArray *daemons;          /* struct MHD_Daemon * */
  GArray *ports;               /* int, one per daemon */
  kcps_http_handler_t handler;
  kcps_http_headers_fn headers_fn;
  void *data;
  size_t max_body;
  unsigned timeout_s;
  char *cert_pem;
  char *key_pem;
};

struct kcps_http_req_s {
  kcps_http_server_t *server;
  struct MHD_Connection *conn;
  char *method;
  char *path;
  GString *body;
  bool too_large;
  kcps_http_sink_fn sink_fn;   /* the body goes here instead of body */
  void *sink;
  GDestroyNotify sink_free;
  guint64 sink_max;
  guint64 sink_received;
  bool sink_stopped;
  bool answered_early;         /* answered from the headers_fn */
  JsonNode *json;              /* parsed body, owned */
  GPtrArray *headers;          /* name, value pairs for the response */
  struct MHD_Response *response;
  unsigned status;
};

static void
req_free(kcps_http_req_t *req)
{
  if (!req)
    return;
  if (req->sink_free)
    req->sink_free(req->sink);
  g_free(req->method);
  g_free(req->path);
  g_string_free(req->body, TRUE);
  if (req->json)
    json_node_unref(req->json);
  g_ptr_array_unref(req->headers);
  if (req->response)
    MHD_destroy_response(req->response);
  g_free(req);
}

/* Parses "host:port" / "[v6]:port" into a socket address. */
static bool
parse_listen(const char *text, struct sockaddr_storage *ss, socklen_t *len, bool *v6)
{
  const char *colon;
  char *host;

  if (text[0] == '[') {
    const char *end = strchr(text, ']');
    if (!end || end[1] != ':')
      return false;
    host = g_strndup(text + 1, (gsize)(end - text - 1));
    colon = end + 1;
  } else {
    colon = strrchr(text, ':');
    if (!colon)
      return false;
    host = g_strndup(text, (gsize)(colon - text));
  }

  char *endp = NULL;
  long port = strtol(colon + 1, &endp, 10);
  bool ok = endp && *endp == '\0' && colon[1] && port >= 0 && port <= 65535;

  memset(ss, 0, sizeof(*ss));
  if (ok) {
    struct sockaddr_in *sin = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
      sin->sin_family = AF_INET;
      sin->sin_port = htons((uint16_t)port);
      *len = sizeof(*sin);
      *v6 = false;
    } else if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
      sin6->sin6_family = AF_INET6;
      sin6->sin6_port = htons((uint16_t)port);
      *len = sizeof(*sin6);
      *v6 = true;
    } else {
      ok = false;
    }
  }
  g_free(host);
  return ok;
}

static enum MHD_Result
queue_plain(struct MHD_Connection *conn, unsigned status, const char *code, const char *message)
{
  char *text = g_strdup_printf("{\"error\":\"%s\",\"message\":\"%s\"}", code, message);
  struct MHD_Response *r =
      MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
  MHD_add_response_header(r, "Content-Type", "application/json");
  MHD_add_response_header(r, "Cache-Control", "no-store");
  enum MHD_Result ret = MHD_queue_response(conn, status, r);
  MHD_destroy_response(r);
  return ret;
}

/* Decodes %XX in the path and query in place, as libmicrohttpd does by
 * default, except %00: a NUL would cut the path short ("/a%00/b" read as
 * "/a"), so it stays as the three characters and matches nothing. */
static size_t
unescape(void *cls, struct MHD_Connection *conn, char *s)
{
  (void)cls;
  (void)conn;
  char *out = s;
  for (const char *in = s; *in; in++) {
    int hi = in[0] == '%' ? g_ascii_xdigit_value(in[1]) : -1;
    int lo = hi >= 0 ? g_ascii_xdigit_value(in[2]) : -1;
    if (lo >= 0 && (hi | lo) != 0) {
      *out++ = (char)(hi * 16 + lo);
      in += 2;
    } else {
      *out++ = *in;
    }
  }
  *out = '\0';
  return (size_t)(out - s);
}

/* Queues the answer the handler (or headers_fn) gave, with its headers. */
static enum MHD_Result
queue_answer(kcps_http_req_t *req)
{
  if (!req->response)
    return queue_plain(req->conn, 500, "internal", "the request was not answered");
  for (guint i = 0; i + 1 < req->headers->len; i += 2)
    MHD_add_response_header(req->response, g_ptr_array_index(req->headers, i),
                            g_ptr_array_index(req->headers, i + 1));
  return MHD_queue_response(req->conn, req->status, req->response);
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
           const char *version, const char *upload_data, size_t *upload_data_size,
           void **con_cls)
{
  kcps_http_server_t *server = cls;
  kcps_http_req_t *req = *con_cls;
  (void)version;

  /* First call: headers only. The headers_fn may answer or choose a sink;
   * oversize bodies are refused before they are read. */
  if (!req) {
    req = g_new0(kcps_http_req_t, 1);
    req->server = server;
    req->conn = conn;
    req->method = g_strdup(method);
    req->path = g_strdup(url);
    req->body = g_string_new(NULL);
    req->headers = g_ptr_array_new_with_free_func(g_free);
    *con_cls = req;

    if (server->headers_fn) {
      server->headers_fn(req, server->data);
      if (req->response) {
        req->answered_early = true;
        return queue_answer(req);
      }
    }
    guint64 limit = req->sink_fn ? req->sink_max : (guint64)server->max_body;
    const char *clen = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
    if (clen && g_ascii_strtoull(clen, NULL, 10) > limit)
      return queue_plain(conn, 413, "too_large", "request body is too large");
    return MHD_YES;
  }

  /* Middle calls: the body, in pieces. */
  if (*upload_data_size > 0) {
    size_t n = *upload_data_size;
    *upload_data_size = 0;
    if (req->sink_fn) {
      if (req->sink_received + n > req->sink_max)
        req->too_large = true;
      else if (!req->too_large && !req->sink_stopped) {
        if (req->sink_fn(req->sink, upload_data, n))
          req->sink_received += n;
        else
          req->sink_stopped = true;
      }
    } else if (req->body->len + n > server->max_body) {
      req->too_large = true;
    } else {
      g_string_append_len(req->body, upload_data, (gssize)n);
    }
    return MHD_YES;
  }

  /* Last call: the whole request is here. */
  if (req->too_large)
    return queue_plain(conn, 413, "too_large", "request body is too large");

  server->handler(req, server->data);
  return queue_answer(req);
}

static void
on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
              enum MHD_RequestTerminationCode toe)
{
  (void)cls;
  (void)conn;
  (void)toe;
  req_free(*con_cls);
  *con_cls = NULL;
}

kcps_http_server_t *
kcps_http_server_new(const kcps_http_config_t *config, kcps_http_handler_t handler, void *data,
                     GError **error)
{
  kcps_http_server_t *server = g_new0(kcps_http_server_t, 1);
  server->daemons = g_ptr_array_new();
  server->ports = g_array_new(FALSE, FALSE, sizeof(int));
  server->handler = handler;
  server->headers_fn = config->headers_fn;
  server->data = data;
  server->max_body = config->max_body ? config->max_body : DEFAULT_MAX_BODY;
  server->timeout_s = config->timeout_s ? config->timeout_s : 60;

  if (config->cert_path || config->key_path) {
    gsize len;
    if (!g_file_get_contents(config->cert_path, &server->cert_pem, &len, error) ||
        !g_file_get_contents(config->key_path, &server->key_pem, &len, error)) {
      kcps_http_server_free(server);
      return NULL;
    }
  }

  for (const char *const *addr = config->listen; addr && *addr; addr++) {
    struct sockaddr_storage ss;
    socklen_t sslen = 0;
    bool v6 = false;

    if (!parse_listen(*addr, &ss, &sslen, &v6)) {
      g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                  "listen address \"%s\" is not HOST:PORT", *addr);
      kcps_http_server_free(server);
      return NULL;
    }

    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                     MHD_USE_POLL | (v6 ? MHD_USE_IPv6 : 0);
    struct MHD_Daemon *d;
    if (server->cert_pem) {
      d = MHD_start_daemon(flags | MHD_USE_TLS, 0, NULL, NULL, on_request, server,
                           MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
                           MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
                           MHD_OPTION_UNESCAPE_CALLBACK, unescape, NULL,
                           MHD_OPTION_CONNECTION_TIMEOUT, server->timeout_s,
                           MHD_OPTION_CONNECTION_LIMIT, (unsigned)512,
                           MHD_OPTION_HTTPS_MEM_CERT, server->cert_pem,
                           MHD_OPTION_HTTPS_MEM_KEY, server->key_pem,
                           MHD_OPTION_HTTPS_PRIORITIES, TLS_PRIORITIES, MHD_OPTION_END);
    } else {
      d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, server, MHD_OPTION_SOCK_ADDR,
                           (struct sockaddr *)&ss, MHD_OPTION_NOTIFY_COMPLETED, on_completed,
                           NULL, MHD_OPTION_UNESCAPE_CALLBACK, unescape, NULL,
                           MHD_OPTION_CONNECTION_TIMEOUT, server->timeout_s,
                           MHD_OPTION_CONNECTION_LIMIT, (unsigned)512, MHD_OPTION_END);
    }
    if (!d) {
      int e = errno;
      g_set_error(error, G_IO_ERROR, g_io_error_from_errno(e), "cannot listen on %s: %s", *addr,
                  e ? g_strerror(e) : "libmicrohttpd refused the settings");
      kcps_http_server_free(server);
      return NULL;
    }
    g_ptr_array_add(server->daemons, d);

    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    int port = info ? (int)info->port : 0;
    g_array_append_val(server->ports, port);
  }
  return server;
}

int
kcps_http_server_port(const kcps_http_server_t *server, unsigned idx)
{
  if (!server || idx >= server->ports->len)
    return 0;
  return g_array_index(server->ports, int, idx);
}

void
kcps_http_server_free(kcps_http_server_t *server)
{
  if (!server)
    return;
  for (guint i = 0; i < server->daemons->len; i++)
    MHD_stop_daemon(g_ptr_array_index(server->daemons, i));
  g_ptr_array_unref(server->daemons);
  g_array_unref(server->ports);
  g_free(server->cert_pem);
  if (server->key_pem) {
    memset(server->key_pem, 0, strlen(server->key_pem));
    g_free(server->key_pem);
  }
  g_free(server);
}

const char *
kcps_http_req_method(const kcps_http_req_t *req)
{
  return req->method;
}

const char *
kcps_http_req_path(const kcps_http_req_t *req)
{
  return req->path;
}

const char *
kcps_http_req_header(const kcps_http_req_t *req, const char *name)
{
  return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *
kcps_http_req_query(const kcps_http_req_t *req, const char *name)
{
  return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *
kcps_http_req_body(const kcps_http_req_t *req, size_t *len)
{
  if (len)
    *len = req->body->len;
  return req->body->str;
}

const char *
kcps_http_req_bearer(const kcps_http_req_t *req)
{
  const char *auth = kcps_http_req_header(req, "Authorization");

  if (!auth || g_ascii_strncasecmp(auth, "Bearer ", 7) != 0)
    return NULL;
  auth += 7;
  while (*auth == ' ')
    auth++;
  return *auth ? auth : NULL;
}

int
kcps_http_req_socket(const kcps_http_req_t *req)
{
  const union MHD_ConnectionInfo *info =
      MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
  return info ? info->connect_fd : -1;
}

const struct sockaddr *
kcps_http_req_peer(const kcps_http_req_t *req)
{
  const union MHD_ConnectionInfo *info =
      MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
  return info ? info->client_addr : NULL;
}

void
kcps_http_req_sink(kcps_http_req_t *req, guint64 max, kcps_http_sink_fn write_fn, void *sink,
                   GDestroyNotify free_fn)
{
  if (req->sink_free)
    req->sink_free(req->sink);
  req->sink_fn = write_fn;
  req->sink = sink;
  req->sink_free = free_fn;
  req->sink_max = max;
}

void *
kcps_http_req_sink_data(const kcps_http_req_t *req)
{
  return req->sink;
}

guint64
kcps_http_req_sink_received(const kcps_http_req_t *req)
{
  return req->sink_received;
}

bool
kcps_http_req_sink_stopped(const kcps_http_req_t *req)
{
  return req->sink_stopped;
}

bool
kcps_http_req_answered(const kcps_http_req_t *req)
{
  return req->answered_early || req->response != NULL;
}

JsonObject *
kcps_http_req_json(kcps_http_req_t *req, GError **error)
{
  if (!req->json) {
    if (req->body->len == 0) {
      g_set_error(error, JSON_PARSER_ERROR, JSON_PARSER_ERROR_INVALID_DATA,
                  "body is empty, a JSON object was expected");
      return NULL;
    }
    req->json = kcps_json_parse_object(req->body->str, (gssize)req->body->len, error);
    if (!req->json)
      return NULL;
  }
  return json_node_get_object(req->json);
}

void
kcps_http_req_add_header(kcps_http_req_t *req, const char *name, const char *value)
{
  g_ptr_array_add(req->headers, g_strdup(name));
  g_ptr_array_add(req->headers, g_strdup(value));
}

static void
set_response(kcps_http_req_t *req, unsigned status, struct MHD_Response *r)
{
  /* A second answer replaces the first: the handler's last word counts. */
  if (req->response)
    MHD_destroy_response(req->response);
  req->response = r;
  req->status = status;
  MHD_add_response_header(r, "Cache-Control", "no-store");
  MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
}

void
kcps_http_respond_json(kcps_http_req_t *req, unsigned status, JsonNode *node)
{
  char *text = kcps_json_to_string(node);
  struct MHD_Response *r =
      MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
  MHD_add_response_header(r, "Content-Type", "application/json");
  set_response(req, status, r);
}

void
kcps_http_respond_error(kcps_http_req_t *req, unsigned status, const char *code,
                        const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  char *message = g_strdup_vprintf(fmt, ap);
  va_end(ap);

  JsonBuilder *b = json_builder_new();
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "error");
  json_builder_add_string_value(b, code);
  json_builder_set_member_name(b, "message");
  json_builder_add_string_value(b, message);
  json_builder_end_object(b);
  JsonNode *root = json_builder_get_root(b);
  kcps_http_respond_json(req, status, root);
  json_node_unref(root);
  g_object_unref(b);
  g_free(message);
}

void
kcps_http_respond_empty(kcps_http_req_t *req, unsigned status)
{
  set_response(req, status, MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT));
}

/* A streamed file: its fd and the offset of the first byte served. */
typedef struct {
  int fd;
  guint64 offset;
} fd_stream_t;

/* Reads the next block of a streamed file. */
static ssize_t
read_fd_block(void *cls, uint64_t pos, char *buf, size_t max)
{
  const fd_stream_t *stream = cls;
  ssize_t n;

  do
    n = pread(stream->fd, buf, max, (off_t)(stream->offset + pos));
  while (n < 0 && errno == EINTR);
  if (n < 0)
    return MHD_CONTENT_READER_END_WITH_ERROR;
  return n == 0 ? MHD_CONTENT_READER_END_OF_STREAM : n;
}

static void
close_fd(void *cls)
{
  fd_stream_t *stream = cls;
  close(stream->fd);
  g_free(stream);
}

void
kcps_http_respond_fd_range(kcps_http_req_t *req, unsigned status, const char *content_type,
                           int fd, guint64 offset, guint64 size)
{
  /* 64 KiB blocks: MHD's own fd responses read 4 KiB at a time, and under
   * TLS each read becomes a record of its own (half nginx's rate measured,
   * docs/bench.md); 64 KiB brought it to 0.94 of nginx. */
  fd_stream_t *stream = g_new0(fd_stream_t, 1);
  stream->fd = fd;
  stream->offset = offset;
  struct MHD_Response *r =
      MHD_create_response_from_callback(size, 64 * 1024, read_fd_block, stream, close_fd);
  if (!r) {
    close(fd);
    g_free(stream);
    kcps_http_respond_error(req, 500, "internal", "cannot stream the file");
    return;
  }
  MHD_add_response_header(r, "Content-Type", content_type);
  set_response(req, status, r);
}

void
kcps_http_respond_fd(kcps_http_req_t *req, unsigned status, const char *content_type, int fd,
                     guint64 size)
{
  kcps_http_respond_fd_range(req, status, content_type, fd, 0, size);
}

/* A stream of unknown length: the caller's reader and its data. */
typedef struct {
  kcps_http_stream_fn read_fn;
  void *data;
  GDestroyNotify free_fn;
} user_stream_t;

static ssize_t
read_user_block(void *cls, uint64_t pos, char *buf, size_t max)
{
  user_stream_t *stream = cls;
  (void)pos;
  gssize n = stream->read_fn(stream->data, buf, max);
  if (n < 0)
    return MHD_CONTENT_READER_END_WITH_ERROR;
  return n == 0 ? MHD_CONTENT_READER_END_OF_STREAM : n;
}

static void
free_user_stream(void *cls)
{
  user_stream_t *stream = cls;
  if (stream->free_fn)
    stream->free_fn(stream->data);
  g_free(stream);
}

void
kcps_http_respond_stream(kcps_http_req_t *req, unsigned status, const char *content_type,
                         kcps_http_stream_fn read_fn, void *data, GDestroyNotify free_fn)
{
  user_stream_t *stream = g_new0(user_stream_t, 1);
  stream->read_fn = read_fn;
  stream->data = data;
  stream->free_fn = free_fn;
  /* Small blocks: an event is sent as soon as the reader returns it. */
  struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4 * 1024,
                                                             read_user_block, stream,
                                                             free_user_stream);
  if (!r) {
    free_user_stream(stream);
    kcps_http_respond_error(req, 500, "internal", "cannot start the stream");
    return;
  }
  /* A quiet stream is not a stalled client: the reader blocks by design. */
  MHD_set_connection_option(req->conn, MHD_CONNECTION_OPTION_TIMEOUT, (unsigned int)0);
  MHD_add_response_header(r, "Content-Type", content_type);
  set_response(req, status, r);
}
