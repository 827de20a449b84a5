/* kcps-server's context: the data folder and its key material, the HTTPS
 * listener, and the route table every request goes through (method, path,
 * the session kind it needs). */
#include "server-private.h"

#include "common/crypto.h"
#include "common/tls.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

G_DEFINE_QUARK(kcps-server-error-quark, kcps_server_error)

#define MAX_BODY (64 * 1024)

gint64 kcps__server_clock_skew;

gint64
kcps__server_now(void)
{
  return g_get_real_time() / G_USEC_PER_SEC + __atomic_load_n(&kcps__server_clock_skew, __ATOMIC_RELAXED);
}

static bool
io_error(GError **error, const char *what, const char *path, int err)
{
  g_set_error(error, KCPS_SERVER_ERROR, KCPS_SERVER_ERROR_IO, "%s %s: %s", what, path,
              g_strerror(err));
  return false;
}

bool
kcps__server_write_private_file(const char *path, const void *data, size_t len, GError **error)
{
  /* GLib writes beside, fsyncs and renames: a crash never leaves half a file. */
  return g_file_set_contents_full(path, data, (gssize)len,
                                  G_FILE_SET_CONTENTS_CONSISTENT | G_FILE_SET_CONTENTS_DURABLE,
                                  0600, error);
}

/* The folder exists, is a folder, and only its owner may enter it. */
static bool
prepare_data_dir(const char *dir, GError **error)
{
  if (g_mkdir_with_parents(dir, 0700) != 0)
    return io_error(error, "cannot create data folder", dir, errno);
  struct stat st;
  if (stat(dir, &st) != 0)
    return io_error(error, "cannot read data folder", dir, errno);
  if (!S_ISDIR(st.st_mode))
    return io_error(error, "data folder", dir, ENOTDIR);
  if ((st.st_mode & 077) != 0) {
    if (chmod(dir, 0700) != 0)
      return io_error(error, "cannot restrict data folder", dir, errno);
    g_message("kcps-server: %s was open to other accounts; now 0700", dir);
  }
  return true;
}

/* The server's keys live in files of their own beside the database: a copy
 * of the database alone opens no PIN, card or sealed secret. */
bool
kcps__server_key_file(kcps_server_t *server, const char *name, guchar key[KCPS_SERVER_KEY_LEN],
                      GError **error)
{
  g_autofree char *path = g_build_filename(server->data_dir, name, NULL);
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0 && errno == ENOENT) {
    guchar fresh[KCPS_SERVER_KEY_LEN];
    if (RAND_bytes(fresh, sizeof fresh) != 1) {
      g_set_error(error, KCPS_SERVER_ERROR, KCPS_SERVER_ERROR_CRYPTO,
                  "%s: no randomness from OpenSSL", name);
      return false;
    }
    bool ok = kcps__server_write_private_file(path, fresh, sizeof fresh, error);
    OPENSSL_cleanse(fresh, sizeof fresh);
    if (!ok)
      return false;
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  }
  if (fd < 0)
    return io_error(error, "cannot open", path, errno);
  struct stat st;
  ssize_t n = -1;
  if (fstat(fd, &st) == 0 && st.st_size == KCPS_SERVER_KEY_LEN)
    n = read(fd, key, KCPS_SERVER_KEY_LEN);
  if (n == KCPS_SERVER_KEY_LEN && (st.st_mode & 077) != 0)
    (void)fchmod(fd, 0600);
  close(fd);
  if (n != KCPS_SERVER_KEY_LEN) {
    OPENSSL_cleanse(key, KCPS_SERVER_KEY_LEN);
    g_set_error(error, KCPS_SERVER_ERROR, KCPS_SERVER_ERROR_IO, "%s must hold exactly %d bytes",
                path, KCPS_SERVER_KEY_LEN);
    return false;
  }
  return true;
}

/* Values to check against when the account or device does not exist. */
static bool
make_dummies(kcps_server_t *server, GError **error)
{
  g_autofree char *junk = kcps_crypto_random_token(16);
  if (!junk) {
    g_set_error_literal(error, KCPS_SERVER_ERROR, KCPS_SERVER_ERROR_CRYPTO, "no randomness");
    return false;
  }
  server->dummy_hash = kcps__server_password_hash(junk, error);
  if (!server->dummy_hash)
    return false;
  char hex[65];
  kcps_crypto_sha256_hex(junk, strlen(junk), hex);
  server->dummy_secret_hash = g_strdup(hex);
  return true;
}

/* "HOST" of "HOST:PORT" or "[V6]:PORT" (brackets kept, for URLs). */
static char *
listen_host(const char *listen)
{
  if (listen[0] == '[') {
    const char *end = strchr(listen, ']');
    return end ? g_strndup(listen, (gsize)(end - listen + 1)) : NULL;
  }
  const char *colon = strrchr(listen, ':');
  return colon && colon != listen ? g_strndup(listen, (gsize)(colon - listen)) : NULL;
}

static bool
ensure_certificate(kcps_server_t *server, const char *host, GError **error)
{
  server->cert_path = g_build_filename(server->data_dir, "server.crt", NULL);
  server->key_path = g_build_filename(server->data_dir, "server.key", NULL);

  /* The usual loopback names, this machine's name, and the address listened
   * on when it is a specific one. */
  g_autofree char *bare = host[0] == '[' ? g_strndup(host + 1, strlen(host) - 2) : g_strdup(host);
  const char *candidates[] = {"localhost", "127.0.0.1", "::1", g_get_host_name(), bare};
  const char *names[G_N_ELEMENTS(candidates) + 1] = {0};
  size_t n = 0;
  for (size_t i = 0; i < G_N_ELEMENTS(candidates); i++) {
    const char *c = candidates[i];
    bool skip = !c || !*c || strcmp(c, "0.0.0.0") == 0 || strcmp(c, "::") == 0;
    for (size_t j = 0; j < n && !skip; j++)
      skip = g_ascii_strcasecmp(names[j], c) == 0;
    if (!skip)
      names[n++] = c;
  }
  return kcps_tls_ensure_self_signed(server->cert_path, server->key_path, names, error);
}

/* Routing ------------------------------------------------------------- */

const kcps_server_route_t kcps__server_routes_core[] = {
  {"POST", "/api/v1/login", KCPS_NEED_NONE, kcps__server_route_login},
  {"POST", "/api/v1/logout", KCPS_NEED_ANY, kcps__server_route_logout},
  {"GET", "/api/v1/me", KCPS_NEED_USER, kcps__server_route_me},
  {"GET", "/api/v1/me/usage", KCPS_NEED_USER, kcps__server_route_usage},
  {"GET", "/api/v1/ticket-key", KCPS_NEED_NONE, kcps__server_route_ticket_key},
  {"POST", "/api/v1/jobs", KCPS_NEED_USER, kcps__server_route_register_job},
  {"GET", "/api/v1/jobs", KCPS_NEED_USER, kcps__server_route_list_jobs},
  {"GET", "/api/v1/jobs/*", KCPS_NEED_USER, kcps__server_route_get_job},
  {"DELETE", "/api/v1/jobs/*", KCPS_NEED_USER, kcps__server_route_withdraw_job},
  {"GET", "/api/v1/device/jobs", KCPS_NEED_USER_DEVICE, kcps__server_route_device_jobs},
  {"POST", "/api/v1/device/jobs/*/ticket", KCPS_NEED_USER_DEVICE, kcps__server_route_ticket},
  {"POST", "/api/v1/device/jobs/*/log", KCPS_NEED_USER_DEVICE, kcps__server_route_job_log},
  {NULL, NULL, KCPS_NEED_NONE, NULL},
};

/* Every feature's table, walked in this order. */
static const kcps_server_route_t *const route_tables[] = {
  kcps__server_routes_core,    kcps__server_routes_policy,  kcps__server_routes_mfa,
  kcps__server_routes_orgs,    kcps__server_routes_reports, kcps__server_routes_devices,
  kcps__server_routes_oidc,    kcps__server_routes_uploads, kcps__server_routes_usage,
};

/* Matches path against pattern; the "*" segment goes to id (size idlen). */
static bool
match(const char *pattern, const char *path, char *id, size_t idlen)
{
  const char *p = pattern, *s = path;
  while (*p && *s) {
    if (*p == '*') {
      size_t n = strcspn(s, "/");
      if (n == 0 || n >= idlen)
        return false;
      memcpy(id, s, n);
      id[n] = '\0';
      s += n;
      p++;
    } else if (*p++ != *s++)
      return false;
  }
  return *p == '\0' && *s == '\0';
}

static const char *
need_name(kcps_server_need_t need)
{
  switch (need) {
  case KCPS_NEED_USER:
    return "a user session";
  case KCPS_NEED_DEVICE:
    return "a device session";
  case KCPS_NEED_USER_DEVICE:
    return "a user-at-device session (PIN login)";
  default:
    return "a session";
  }
}

static bool
session_fits(const kcps_server_session_t *s, kcps_server_need_t need)
{
  switch (need) {
  case KCPS_NEED_USER:
    return s->kind == KCPS_SESSION_USER;
  case KCPS_NEED_DEVICE:
    return s->kind == KCPS_SESSION_DEVICE;
  case KCPS_NEED_USER_DEVICE:
    return s->kind == KCPS_SESSION_USER_DEVICE;
  default:
    return true;
  }
}

static void
handle_request(kcps_http_req_t *req, void *data)
{
  kcps_server_t *server = data;
  const char *method = kcps_http_req_method(req);
  const char *path = kcps_http_req_path(req);

  /* (common/http-server marks every answer no-store and nosniff.) */
  char id[128];
  const kcps_server_route_t *route = NULL;
  GString *allowed = NULL;
  for (size_t t = 0; t < G_N_ELEMENTS(route_tables) && !route; t++) {
    for (const kcps_server_route_t *r = route_tables[t]; r->method && !route; r++) {
      if (!match(r->pattern, path ? path : "", id, sizeof id))
        continue;
      if (g_strcmp0(r->method, method) == 0) {
        route = r;
      } else {
        if (!allowed)
          allowed = g_string_new(NULL);
        g_string_append_printf(allowed, "%s%s", allowed->len ? ", " : "", r->method);
      }
    }
  }
  if (!route) {
    if (allowed) {
      kcps_http_req_add_header(req, "Allow", allowed->str);
      kcps_http_respond_error(req, 405, "method_not_allowed", "%s is not allowed here (only %s)",
                              method, allowed->str);
    } else {
      kcps_http_respond_error(req, 404, "not_found", "no such route");
    }
    if (allowed)
      g_string_free(allowed, TRUE);
    return;
  }
  if (allowed)
    g_string_free(allowed, TRUE);

  g_autoptr(kcps_server_session_t) session = NULL;
  if (route->need != KCPS_NEED_NONE) {
    session = kcps__server_authenticate(server, req);
    if (!session)
      return;
    kcps__server_req_source(req, session->source, sizeof session->source);
    if (!session_fits(session, route->need)) {
      kcps_http_respond_error(req, 403, "forbidden", "this route needs %s",
                              need_name(route->need));
      return;
    }
  }
  route->fn(server, req, session, strchr(route->pattern, '*') ? id : NULL);
}

/* Before any body byte: the one route whose body is streamed (a chunk of an
 * upload, up to chunk_max) is authenticated and checked on its headers and
 * written to disk as it arrives; every other body is buffered (MAX_BODY). */
static void
handle_headers(kcps_http_req_t *req, void *data)
{
  kcps_server_t *server = data;
  char id[128];
  if (g_strcmp0(kcps_http_req_method(req), "PUT") == 0 &&
      match("/api/v1/uploads/*", kcps_http_req_path(req) ? kcps_http_req_path(req) : "", id,
            sizeof id))
    kcps__server_upload_chunk_headers(server, req, id);
}

JsonObject *
kcps__server_req_object(kcps_http_req_t *req)
{
  g_autoptr(GError) error = NULL;
  /* Strict JSON of the right type first (server-validate.c): json-glib
   * alone lets comments, trailing data and "\u0000" through. */
  size_t len = 0;
  const char *body = kcps_http_req_body(req, &len);
  if (len > 0 && !kcps__server_check_content_type(kcps_http_req_header(req, "Content-Type"),
                                                  &error)) {
    kcps_http_respond_error(req, 415, "unsupported_media_type", "%s", error->message);
    return NULL;
  }
  if (len > 0 && !kcps__server_check_json_text(body, len, &error)) {
    kcps__server_respond_bad(req, error);
    return NULL;
  }
  JsonObject *obj = kcps_http_req_json(req, &error);
  if (!obj)
    kcps_http_respond_error(req, 400, "bad_request", "%s",
                            error ? error->message : "body is not a JSON object");
  return obj;
}

void
kcps__server_respond_bad(kcps_http_req_t *req, const GError *error)
{
  kcps_http_respond_error(req, 400, "bad_request", "%s", error->message);
}

void
kcps__server_respond_internal(kcps_http_req_t *req, const GError *error)
{
  /* The cause goes to the log, not to the caller. */
  g_warning("kcps-server: %s %s: %s", kcps_http_req_method(req), kcps_http_req_path(req),
            error ? error->message : "unknown failure");
  kcps_http_respond_error(req, 500, "internal", "the server failed; see its log");
}

void
kcps__server_respond_found(kcps_http_req_t *req, const GError *error, JsonNode *node,
                           unsigned status, const char *missing_text)
{
  if (error)
    kcps__server_respond_internal(req, error);
  else if (!node)
    kcps_http_respond_error(req, 404, "not_found", "%s", missing_text);
  else
    kcps_http_respond_json(req, status, node);
}

/* Lifecycle ------------------------------------------------------------ */

kcps_server_t *
kcps_server_new(const kcps_server_config_t *config, GError **error)
{
  if (!config || !config->listen || !config->data_dir || !*config->data_dir) {
    g_set_error_literal(error, KCPS_SERVER_ERROR, KCPS_SERVER_ERROR_CONFIG,
                        "a listen address and a data folder are needed");
    return NULL;
  }
  if (!config->cert_path != !config->key_path) {
    g_set_error_literal(error, KCPS_SERVER_ERROR, KCPS_SERVER_ERROR_CONFIG,
                        "--cert and --key go together");
    return NULL;
  }
  g_autofree char *host = listen_host(config->listen);
  if (!host) {
    g_set_error(error, KCPS_SERVER_ERROR, KCPS_SERVER_ERROR_CONFIG,
                "listen address \"%s\" is not HOST:PORT", config->listen);
    return NULL;
  }

  kcps_server_t *server = g_new0(kcps_server_t, 1);
  g_mutex_init(&server->lock);
  g_mutex_init(&server->hash_lock);
  g_cond_init(&server->hash_cond);
  server->hash_max = CLAMP(g_get_num_processors(), 2, 8);
  server->data_dir = g_strdup(config->data_dir);
  server->smtp_url = g_strdup(config->smtp_url);
  server->smtp_from = g_strdup(config->smtp_from ? config->smtp_from : "kcps@localhost");
  server->smtp_ca_file = g_strdup(config->smtp_ca_file);
  server->oidc_ca_file = g_strdup(config->oidc_ca_file);
  g_autofree char *db_path = g_build_filename(server->data_dir, "kcps.db", NULL);
  g_autofree char *ticket_path = g_build_filename(server->data_dir, "ticket-key.pem", NULL);

  if (!prepare_data_dir(server->data_dir, error) || !kcps__server_key_file(server, "pin-pepper", server->pepper, error) ||
      !kcps__server_db_open(server, db_path, error))
    goto fail;
  server->ticket_key = kcps_ticket_key_load_or_create(ticket_path, error);
  if (!server->ticket_key)
    goto fail;
  server->ticket_public = kcps_ticket_key_public_b64(server->ticket_key);
  if (!server->ticket_public) {
    g_set_error(error, KCPS_SERVER_ERROR, KCPS_SERVER_ERROR_CRYPTO,
                "%s: no public key", ticket_path);
    goto fail;
  }
  if (!make_dummies(server, error))
    goto fail;

  if (config->cert_path) {
    server->cert_path = g_strdup(config->cert_path);
    server->key_path = g_strdup(config->key_path);
  } else if (!ensure_certificate(server, host, error)) {
    goto fail;
  }

  const char *listen[] = {config->listen, NULL};
  kcps_http_config_t http = {
    .listen = listen,
    .cert_path = server->cert_path,
    .key_path = server->key_path,
    .max_body = MAX_BODY,
    .headers_fn = handle_headers,
  };
  server->http = kcps_http_server_new(&http, handle_request, server, error);
  if (!server->http)
    goto fail;
  server->port = kcps_http_server_port(server->http, 0);
  server->url = g_strdup_printf("https://%s:%d", host, server->port);

  /* After the bind succeeded, so that credentials made are also shown. */
  if (config->demo && !kcps__server_demo_create(server, error))
    goto fail;
  return server;

fail:
  kcps_server_free(server);
  return NULL;
}

int
kcps_server_get_port(const kcps_server_t *server)
{
  return server->port;
}

const char *
kcps_server_get_url(const kcps_server_t *server)
{
  return server->url;
}

const char *
kcps_server_get_cert_path(const kcps_server_t *server)
{
  return server->cert_path;
}

const char *
kcps_server_get_demo_credentials(const kcps_server_t *server)
{
  return server->demo_text;
}

void
kcps_server_free(kcps_server_t *server)
{
  if (!server)
    return;
  /* Stop serving first: no handler may touch the database after this. */
  kcps_http_server_free(server->http);
  kcps__server_db_close(server);
  kcps_ticket_key_free(server->ticket_key);
  OPENSSL_cleanse(server->pepper, sizeof server->pepper);
  if (server->demo_text) {
    OPENSSL_cleanse(server->demo_text, strlen(server->demo_text));
    g_free(server->demo_text);
  }
  g_free(server->ticket_public);
  g_free(server->dummy_hash);
  g_free(server->dummy_secret_hash);
  g_free(server->data_dir);
  g_free(server->smtp_url);
  g_free(server->smtp_from);
  g_free(server->smtp_ca_file);
  g_free(server->oidc_ca_file);
  g_free(server->cert_path);
  g_free(server->key_path);
  g_free(server->url);
  g_mutex_clear(&server->lock);
  g_mutex_clear(&server->hash_lock);
  g_cond_clear(&server->hash_cond);
  g_free(server);
}
