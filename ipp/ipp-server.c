/* The virtual printer's sockets, threads and HTTP: listens on 127.0.0.1
 * and [::1], one thread per connection (keep-alive), reads IPP requests
 * with libcups and writes the responses. Operations live in ipp-ops.c. */
#include "ipp/ipp-private.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gio/gio.h>

#include "platform/platform.h"

#define IDLE_TIMEOUT_MS 30000 /* an idle keep-alive connection is closed */
#define WAIT_STEP_MS 200      /* how often an idle connection checks for stop */
#define IO_TIMEOUT_S 30.0     /* a stalled read or write fails */

/* ---- job ids --------------------------------------------------------- */

int kcps__ipp_job_id(kcps_ipp_server_t *server, const char *spool_id) {
  g_mutex_lock(&server->lock);
  int id = GPOINTER_TO_INT(g_hash_table_lookup(server->ipp_id_of, spool_id));
  if (id == 0) {
    g_ptr_array_add(server->spool_id_of, g_strdup(spool_id));
    id = (int)server->spool_id_of->len;
    g_hash_table_insert(server->ipp_id_of, g_strdup(spool_id), GINT_TO_POINTER(id));
  }
  g_mutex_unlock(&server->lock);
  return id;
}

char *kcps__ipp_spool_id(kcps_ipp_server_t *server, int ipp_id) {
  char *id = NULL;
  g_mutex_lock(&server->lock);
  if (ipp_id >= 1 && (guint)ipp_id <= server->spool_id_of->len)
    id = g_strdup(g_ptr_array_index(server->spool_id_of, (guint)ipp_id - 1));
  g_mutex_unlock(&server->lock);
  return id;
}

/* ---- HTTP responses -------------------------------------------------- */

/* Sends an HTTP response with a small body (or a status text for errors).
 * False when the connection must close. */
static bool respond_http_bytes(kcps__ipp_client_t *client, http_status_t code,
                               const char *type, const char *body, size_t len) {
  http_t *http = client->http;
  char message[128];
  if (body == NULL && code != HTTP_STATUS_OK) {
    snprintf(message, sizeof message, "%d - %s\n", (int)code, httpStatus(code));
    body = message;
    type = "text/plain";
    len = strlen(message);
  }
  httpClearFields(http);
  if (code == HTTP_STATUS_METHOD_NOT_ALLOWED || client->method == HTTP_STATE_OPTIONS)
    httpSetField(http, HTTP_FIELD_ALLOW, "GET, HEAD, OPTIONS, POST");
  if (type != NULL)
    httpSetField(http, HTTP_FIELD_CONTENT_TYPE, type);
  /* httpSetLength(0) would mean chunked: an empty body says its length. */
  if (len == 0)
    httpSetField(http, HTTP_FIELD_CONTENT_LENGTH, "0");
  else
    httpSetLength(http, len);
  if (httpWriteResponse(http, code) < 0)
    return false;
  if (len > 0 && client->method != HTTP_STATE_HEAD) {
    if (httpWrite2(http, body, len) < 0)
      return false;
    httpFlushWrite(http);
  }
  /* libcups ends keep-alive on errors (Connection: close); so do we. */
  return code < HTTP_STATUS_BAD_REQUEST;
}

/* The same with a text body (NULL: none, or the status text for errors). */
static bool respond_http(kcps__ipp_client_t *client, http_status_t code, const char *type,
                         const char *body) {
  return respond_http_bytes(client, code, type, body, body != NULL ? strlen(body) : 0);
}

static bool respond_ipp_http(kcps__ipp_client_t *client) {
  http_t *http = client->http;
  httpClearFields(http);
  httpSetField(http, HTTP_FIELD_CONTENT_TYPE, "application/ipp");
  httpSetLength(http, ippLength(client->response));
  if (httpWriteResponse(http, HTTP_STATUS_OK) < 0)
    return false;
  ippSetState(client->response, IPP_STATE_IDLE);
  return ippWrite(http, client->response) == IPP_STATE_DATA;
}

/* A response that also ends the connection. */
static bool respond_and_close(kcps__ipp_client_t *client, http_status_t code) {
  httpSetKeepAlive(client->http, HTTP_KEEPALIVE_OFF);
  respond_http(client, code, NULL, NULL);
  return false;
}

bool kcps__ipp_send_continue(kcps__ipp_client_t *client) {
  if (client->sent_continue || httpGetExpect(client->http) != HTTP_STATUS_CONTINUE ||
      httpGetState(client->http) != HTTP_STATE_POST_RECV)
    return true;
  client->sent_continue = true;
  return httpWriteResponse(client->http, HTTP_STATUS_CONTINUE) == 0;
}

/* ---- HTTP requests --------------------------------------------------- */

/* Only loopback names are accepted in Host: a web page reaching this port
 * through DNS rebinding carries its own domain name. */
static bool host_is_local(const char *field) {
  char host[256];
  if (field == NULL || *field == '\0' || strlen(field) >= sizeof host)
    return false;
  if (field[0] == '[') {
    const char *end = strchr(field, ']');
    if (end == NULL)
      return false;
    g_strlcpy(host, field + 1, (size_t)(end - field));
  } else {
    g_strlcpy(host, field, sizeof host);
    char *colon = strrchr(host, ':');
    if (colon != NULL)
      *colon = '\0';
  }
  if (g_ascii_strcasecmp(host, "localhost") == 0 || g_ascii_strcasecmp(host, "localhost.") == 0 ||
      g_ascii_strcasecmp(host, "ip6-localhost") == 0 || strcmp(host, "::1") == 0)
    return true;
  struct in_addr a4;
  if (inet_pton(AF_INET, host, &a4) == 1)
    return (ntohl(a4.s_addr) >> 24) == 127;
  const char *me = g_get_host_name();
  if (g_ascii_strcasecmp(host, me) == 0)
    return true;
  g_autofree char *me_local = g_strconcat(me, ".local", NULL);
  return g_ascii_strcasecmp(host, me_local) == 0;
}

/* The printer, or one of its jobs (clients POST to a job-uri's path). */
static bool is_ipp_resource(const char *path) {
  size_t len = strlen(KCPS__IPP_RESOURCE);
  if (strncmp(path, KCPS__IPP_RESOURCE, len) != 0)
    return false;
  if (path[len] == '\0')
    return true;
  if (path[len] != '/' || path[len + 1] == '\0')
    return false;
  for (const char *p = path + len + 1; *p != '\0'; p++)
    if (!g_ascii_isdigit(*p))
      return false;
  return true;
}

static const char status_page[] =
  "<!DOCTYPE html>\n<html><head><title>KCPS</title></head><body>\n"
  "<h1>KCPS virtual printer</h1>\n<p>Print to ipp://localhost/ipp/print on this port. "
  "Jobs are held in the KCPS spool until released at a printer.</p>\n</body></html>\n";

/* printer-icons: a 48x48 PNG of a page (RGBA). */
static const char icon_png[] =
  "\x89\x50\x4e\x47\x0d\x0a\x1a\x0a\x00\x00\x00\x0d\x49\x48\x44\x52\x00\x00\x00\x30\x00\x00\x00\x30"
  "\x08\x06\x00\x00\x00\x57\x02\xf9\x87\x00\x00\x00\x5b\x49\x44\x41\x54\x78\xda\xed\xd9\x51\x0d\x00"
  "\x20\x08\x05\x40\x82\x19\x82\x24\xe6\xb4\x95\x36\xf0\x4b\x27\x6e\xf7\x36\x02\xdc\xe0\x7d\x11\x21"
  "\x72\x37\x99\x39\x5f\xce\x11\xc0\xab\x00\x00\x00\x00\x00\xd4\x04\xb4\x3e\xae\x8c\x0d\x00\x00\x28"
  "\xb1\x13\x02\x00\x50\x62\x27\x04\xa0\xc4\x4a\x0c\x00\xa0\xc4\x36\x00\x00\x00\x00\x00\x00\x00\x50"
  "\x07\xf0\xf5\xa3\x5b\x64\x9f\x05\x00\xdb\x1b\x14\x58\x49\x4c\x12\x00\x00\x00\x00\x49\x45\x4e\x44"
  "\xae\x42\x60\x82";

/* Serves one HTTP request; false when the connection must close. */
static bool process_http(kcps__ipp_client_t *client) {
  http_t *http = client->http;
  char uri[1024];
  http_state_t state;

  g_clear_pointer(&client->request, ippDelete);
  g_clear_pointer(&client->response, ippDelete);
  client->sent_continue = false;
  client->method = HTTP_STATE_WAITING;

  while ((state = httpReadRequest(http, uri, sizeof uri)) == HTTP_STATE_WAITING)
    g_usleep(1000);

  if (state == HTTP_STATE_ERROR) {
    /* libcups sets an errno only for connection failures (closed, reset,
     * timed out); a request line that does not parse leaves it 0. */
    if (httpError(http) != 0)
      return false;
    g_info("ipp: %s: bad request line", client->peer);
    return respond_and_close(client, HTTP_STATUS_BAD_REQUEST);
  }
  if (state == HTTP_STATE_UNKNOWN_METHOD || state == HTTP_STATE_UNKNOWN_VERSION) {
    g_info("ipp: %s: unknown HTTP method or version", client->peer);
    return respond_and_close(client, HTTP_STATUS_BAD_REQUEST);
  }

  client->method = state;
  http_status_t status;
  while ((status = httpUpdate(http)) == HTTP_STATUS_CONTINUE)
    ;
  if (status != HTTP_STATUS_OK) {
    g_info("ipp: %s: bad HTTP header", client->peer);
    return respond_and_close(client, HTTP_STATUS_BAD_REQUEST);
  }

  const char *host = httpGetField(http, HTTP_FIELD_HOST);
  if ((host == NULL || *host == '\0') && httpGetVersion(http) < HTTP_VERSION_1_1)
    host = "localhost";
  if (!host_is_local(host)) {
    g_info("ipp: %s: refused Host header that is not a loopback name", client->peer);
    return respond_and_close(client, HTTP_STATUS_BAD_REQUEST);
  }

  char *query = strchr(uri, '?');
  if (query != NULL)
    *query = '\0';

  switch (state) {
  case HTTP_STATE_OPTIONS:
    return respond_http(client, HTTP_STATUS_OK, NULL, NULL);

  case HTTP_STATE_HEAD:
  case HTTP_STATE_GET:
    if (strcmp(uri, "/") == 0)
      return respond_http(client, HTTP_STATUS_OK, "text/html; charset=utf-8", status_page);
    if (strcmp(uri, KCPS__IPP_ICON_PATH) == 0)
      return respond_http_bytes(client, HTTP_STATUS_OK, "image/png", icon_png,
                                sizeof icon_png - 1);
    return respond_http(client, HTTP_STATUS_NOT_FOUND, NULL, NULL);

  case HTTP_STATE_POST:
    break;

  default:
    return respond_and_close(client, HTTP_STATUS_METHOD_NOT_ALLOWED);
  }

  if (!is_ipp_resource(uri)) {
    g_info("ipp: %s: POST to unknown resource", client->peer);
    return respond_and_close(client, HTTP_STATUS_NOT_FOUND);
  }
  const char *type = httpGetField(http, HTTP_FIELD_CONTENT_TYPE);
  if (type == NULL || g_ascii_strncasecmp(type, "application/ipp", 15) != 0 ||
      (type[15] != '\0' && type[15] != ';')) {
    g_info("ipp: %s: POST without Content-Type application/ipp", client->peer);
    return respond_and_close(client, HTTP_STATUS_BAD_REQUEST);
  }

  /* The IPP message; the document (if any) stays in the stream. */
  client->request = ippNew();
  ipp_state_t ipp_state;
  while ((ipp_state = ippRead(http, client->request)) != IPP_STATE_DATA) {
    if (ipp_state == IPP_STATE_ERROR) {
      g_info("ipp: %s: malformed IPP request (%s)", client->peer, cupsLastErrorString());
      return respond_and_close(client, HTTP_STATUS_BAD_REQUEST);
    }
  }

  kcps__ipp_process(client);

  /* Whatever document data the operation did not read is read and
   * discarded, so the connection stays usable and the client (perhaps
   * waiting for 100 Continue before it sends) gets the answer. */
  if (httpGetState(http) != HTTP_STATE_POST_SEND) {
    if (!kcps__ipp_send_continue(client))
      return false;
    httpFlush(http);
  }
  if (httpGetFd(http) < 0)
    return false;
  return respond_ipp_http(client);
}

/* ---- threads --------------------------------------------------------- */

static bool server_stopping(kcps_ipp_server_t *server) {
  g_mutex_lock(&server->lock);
  bool stopping = server->stopping;
  g_mutex_unlock(&server->lock);
  return stopping;
}

static gpointer client_thread(gpointer data) {
  kcps__ipp_client_t *client = data;
  kcps_ipp_server_t *server = client->server;
  int idle_ms = 0;

  httpSetTimeout(client->http, IO_TIMEOUT_S, NULL, NULL);
  while (!server_stopping(server)) {
    if (!httpWait(client->http, WAIT_STEP_MS)) {
      idle_ms += WAIT_STEP_MS;
      if (idle_ms >= IDLE_TIMEOUT_MS)
        break;
      continue;
    }
    idle_ms = 0;
    if (!process_http(client))
      break;
  }

  httpClose(client->http);
  ippDelete(client->request);
  ippDelete(client->response);
  g_free(client);

  g_mutex_lock(&server->lock);
  server->n_clients--;
  g_cond_broadcast(&server->clients_done);
  g_mutex_unlock(&server->lock);
  return NULL;
}

static void accept_one(kcps_ipp_server_t *server, int listen_fd) {
  http_t *http = httpAcceptConnection(listen_fd, 1);
  if (http == NULL) {
    g_warning("ipp: accept failed: %s", cupsLastErrorString());
    return;
  }

  g_mutex_lock(&server->lock);
  bool full = server->n_clients >= KCPS__IPP_MAX_CLIENTS;
  if (!full)
    server->n_clients++;
  g_mutex_unlock(&server->lock);
  if (full) {
    g_warning("ipp: %d connections open; refusing another", KCPS__IPP_MAX_CLIENTS);
    httpClose(http);
    return;
  }

  kcps__ipp_client_t *client = g_new0(kcps__ipp_client_t, 1);
  client->server = server;
  client->http = http;
  httpGetHostname(http, client->peer, (int)sizeof client->peer);

  GError *error = NULL;
  GThread *thread = g_thread_try_new("kcps-ipp-client", client_thread, client, &error);
  if (thread == NULL) {
    g_warning("ipp: cannot start a connection thread: %s", error->message);
    g_error_free(error);
    httpClose(http);
    g_free(client);
    g_mutex_lock(&server->lock);
    server->n_clients--;
    g_cond_broadcast(&server->clients_done);
    g_mutex_unlock(&server->lock);
    return;
  }
  g_thread_unref(thread); /* runs detached; counted in n_clients */
}

static gpointer accept_thread(gpointer data) {
  kcps_ipp_server_t *server = data;
  struct pollfd fds[3];
  int n = 0;
  for (int i = 0; i < server->n_listen; i++)
    fds[n++] = (struct pollfd){.fd = server->listen_fds[i], .events = POLLIN};
  fds[n++] = (struct pollfd){.fd = server->wake_fds[0], .events = POLLIN};

  for (;;) {
    int r = poll(fds, (nfds_t)n, -1);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0) {
      g_warning("ipp: poll failed: %s", g_strerror(errno));
      break;
    }
    if (fds[n - 1].revents != 0 || server_stopping(server))
      break;
    for (int i = 0; i < n - 1; i++)
      if (fds[i].revents & POLLIN)
        accept_one(server, fds[i].fd);
  }
  return NULL;
}

/* ---- listening ------------------------------------------------------- */

/* Binds one loopback socket; port 0 lets the kernel pick. Returns the fd or
 * -1 with errno set. */
static int bind_loopback(int family, int port) {
  int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -1;
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  int rc;
  if (family == AF_INET) {
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    rc = bind(fd, (struct sockaddr *)&sin, sizeof sin);
  } else {
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port)};
    sin6.sin6_addr = in6addr_loopback;
    rc = bind(fd, (struct sockaddr *)&sin6, sizeof sin6);
  }
  if (rc != 0 || listen(fd, 64) != 0) {
    int err = errno;
    close(fd);
    errno = err;
    return -1;
  }
  return fd;
}

static int bound_port(int fd) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
    return -1;
  if (ss.ss_family == AF_INET)
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
  return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

/* Binds 127.0.0.1 and then [::1] on the same port. With port 0 the IPv6
 * port may be taken by someone else: then try another. A machine without
 * IPv6 loopback is served on IPv4 only. */
static bool listen_both(kcps_ipp_server_t *server, int port, GError **error) {
  for (int attempt = 0; attempt < 20; attempt++) {
    int fd4 = bind_loopback(AF_INET, port);
    if (fd4 < 0) {
      g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno),
                  "cannot listen on 127.0.0.1:%d: %s", port, g_strerror(errno));
      return false;
    }
    int actual = bound_port(fd4);
    int fd6 = bind_loopback(AF_INET6, actual);
    if (fd6 < 0 && errno == EADDRINUSE) {
      close(fd4);
      if (port == 0)
        continue;
      g_set_error(error, G_IO_ERROR, G_IO_ERROR_ADDRESS_IN_USE,
                  "cannot listen on [::1]:%d: %s", actual, g_strerror(EADDRINUSE));
      return false;
    }
    if (fd6 < 0)
      g_info("ipp: no IPv6 loopback (%s); serving 127.0.0.1 only", g_strerror(errno));
    server->listen_fds[server->n_listen++] = fd4;
    if (fd6 >= 0)
      server->listen_fds[server->n_listen++] = fd6;
    server->port = actual;
    return true;
  }
  g_set_error(error, G_IO_ERROR, G_IO_ERROR_ADDRESS_IN_USE,
              "cannot find a port free on both 127.0.0.1 and [::1]");
  return false;
}

/* ---- public ---------------------------------------------------------- */

kcps_ipp_server_t *kcps_ipp_server_new(const kcps_ipp_config_t *config, kcps_spool_t *spool,
                                       kcps_ipp_job_cb_t job_cb, void *job_cb_data,
                                       GError **error) {
  g_return_val_if_fail(config != NULL && spool != NULL, NULL);
  if (config->port < 0 || config->port > 65535) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "invalid IPP port %d",
                config->port);
    return NULL;
  }

  kcps_ipp_server_t *server = g_new0(kcps_ipp_server_t, 1);
  g_mutex_init(&server->lock);
  g_cond_init(&server->clients_done);
  server->ipp_id_of = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  server->spool_id_of = g_ptr_array_new_with_free_func(g_free);
  kcps__ipp_jobs_init(server);
  server->name = g_strdup(config->name != NULL && *config->name ? config->name : "KCPS");
  server->user_mode = config->user_mode;
  server->user_uid = config->user_uid;
  server->spool = spool;
  server->job_cb = job_cb;
  server->job_cb_data = job_cb_data;
  server->wake_fds[0] = server->wake_fds[1] = -1;
  server->start_time = time(NULL);

  if (server->user_mode) {
    server->user_name = kcps_platform_user_name(server->user_uid);
    if (server->user_name == NULL) {
      g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, "no account has uid %u",
                  (unsigned)server->user_uid);
      kcps_ipp_server_free(server);
      return NULL;
    }
  }

  if (!listen_both(server, config->port, error)) {
    kcps_ipp_server_free(server);
    return NULL;
  }
  if (pipe2(server->wake_fds, O_CLOEXEC) != 0) {
    g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "cannot create a pipe: %s",
                g_strerror(errno));
    kcps_ipp_server_free(server);
    return NULL;
  }

  snprintf(server->printer_uri, sizeof server->printer_uri, "ipp://localhost:%d%s",
           server->port, KCPS__IPP_RESOURCE);
  /* A stable UUID from the printer's name and port (version 5 layout), so
   * that print systems recognise the printer after a restart. */
  g_autofree char *seed = g_strdup_printf("kcps-ipp-printer:%s:%d", server->name, server->port);
  g_autofree char *hex = g_compute_checksum_for_string(G_CHECKSUM_SHA256, seed, -1);
  hex[12] = '5';
  hex[16] = "89ab"[g_ascii_xdigit_value(hex[16]) & 3];
  snprintf(server->uuid, sizeof server->uuid, "urn:uuid:%.8s-%.4s-%.4s-%.4s-%.12s", hex,
           hex + 8, hex + 12, hex + 16, hex + 20);
  server->attrs = kcps__ipp_printer_attrs_new(server);

  server->accept_thread = g_thread_try_new("kcps-ipp-accept", accept_thread, server, error);
  if (server->accept_thread == NULL) {
    kcps_ipp_server_free(server);
    return NULL;
  }
  g_info("ipp: printer %s listening on %s", server->name, server->printer_uri);
  return server;
}

int kcps_ipp_server_port(const kcps_ipp_server_t *server) {
  g_return_val_if_fail(server != NULL, -1);
  return server->port;
}

void kcps_ipp_server_free(kcps_ipp_server_t *server) {
  if (server == NULL)
    return;

  /* Stop accepting, then let each connection finish its request. */
  g_mutex_lock(&server->lock);
  server->stopping = true;
  g_mutex_unlock(&server->lock);
  if (server->accept_thread != NULL) {
    ssize_t w;
    do
      w = write(server->wake_fds[1], "x", 1);
    while (w < 0 && errno == EINTR);
    g_thread_join(server->accept_thread);
  }
  for (int i = 0; i < server->n_listen; i++)
    close(server->listen_fds[i]);
  g_mutex_lock(&server->lock);
  while (server->n_clients > 0)
    g_cond_wait(&server->clients_done, &server->lock);
  g_mutex_unlock(&server->lock);

  for (int i = 0; i < 2; i++)
    if (server->wake_fds[i] >= 0)
      close(server->wake_fds[i]);
  ippDelete(server->attrs);
  g_hash_table_unref(server->ipp_id_of);
  g_ptr_array_unref(server->spool_id_of);
  kcps__ipp_jobs_free(server);
  g_free(server->name);
  g_free(server->user_name);
  g_mutex_clear(&server->lock);
  g_cond_clear(&server->clients_done);
  g_free(server);
}
