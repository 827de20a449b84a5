/* The kcpsd context: configuration, sessions, and starting and stopping the
 * three ports and the sync worker in the right order. */
#define G_LOG_DOMAIN "kcpsd"

#include "client/daemon-private.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "common/crypto.h"
#include "common/tls.h"

G_DEFINE_QUARK(kcps-daemon-error-quark, kcps_daemon_error)

void kcps_daemon_config_init(kcps_daemon_config_t *config)
{
  memset(config, 0, sizeof(*config));
  config->user_mode = true;
  config->user_uid = getuid();
  config->ipp_port = 5570;
  config->pull_port = 5571;
  config->local_port = 5572;
}

void kcps__secret_free(char *secret)
{
  if (secret == NULL)
    return;
  explicit_bzero(secret, strlen(secret));
  g_free(secret);
}

static void session_free(void *data)
{
  kcps__session_t *session = data;
  g_free(session->email);
  kcps__secret_free(session->token);
  g_free(session);
}

char *kcps__daemon_session_set(kcps_daemon_t *daemon, uid_t uid, const char *email,
                               const char *token)
{
  kcps__session_t *session = g_new0(kcps__session_t, 1);
  session->email = g_strdup(email);
  session->token = g_strdup(token);
  g_mutex_lock(&daemon->lock);
  kcps__session_t *old = g_hash_table_lookup(daemon->sessions, GUINT_TO_POINTER(uid));
  char *old_token = old != NULL ? g_steal_pointer(&old->token) : NULL;
  g_hash_table_replace(daemon->sessions, GUINT_TO_POINTER(uid), session);
  g_mutex_unlock(&daemon->lock);
  kcps__usage_kick(daemon); /* usage records waiting for this login */
  return old_token;
}

bool kcps__daemon_session_get(kcps_daemon_t *daemon, uid_t uid, char **email, char **token)
{
  g_mutex_lock(&daemon->lock);
  kcps__session_t *session = g_hash_table_lookup(daemon->sessions, GUINT_TO_POINTER(uid));
  if (session != NULL) {
    if (email != NULL)
      *email = g_strdup(session->email);
    if (token != NULL)
      *token = g_strdup(session->token);
  }
  g_mutex_unlock(&daemon->lock);
  return session != NULL;
}

char *kcps__daemon_session_drop(kcps_daemon_t *daemon, uid_t uid, const char *only_token)
{
  char *token = NULL;
  g_mutex_lock(&daemon->lock);
  kcps__session_t *session = g_hash_table_lookup(daemon->sessions, GUINT_TO_POINTER(uid));
  /* A worker that saw an old token refused must not end a newer login. */
  if (session != NULL && (only_token == NULL || kcps_crypto_streq(only_token, session->token))) {
    token = g_steal_pointer(&session->token);
    g_hash_table_remove(daemon->sessions, GUINT_TO_POINTER(uid));
  }
  g_mutex_unlock(&daemon->lock);
  /* Whoever ended it (a logout, a worker the server refused): the tray
   * learns at once that it should resume or show "logged out". */
  if (token != NULL)
    kcps__events_emit(daemon, uid, "session", NULL);
  return token;
}

void kcps__daemon_server_opts(const kcps_daemon_t *daemon, kcps_http_opts_t *opts,
                              const char *bearer, long timeout_s)
{
  memset(opts, 0, sizeof(*opts));
  opts->ca_file = daemon->server_ca;
  opts->bearer = bearer;
  opts->timeout_s = timeout_s;
}

char *kcps__daemon_pull_url(const kcps_daemon_t *daemon, const char *job_id)
{
  /* An IPv6 literal needs brackets in a URL. */
  bool bracket = strchr(daemon->pull_host, ':') != NULL && daemon->pull_host[0] != '[';
  return g_strdup_printf("https://%s%s%s:%d/jobs/%s/document", bracket ? "[" : "",
                         daemon->pull_host, bracket ? "]" : "", daemon->pull_port, job_id);
}

kcps_spool_t *kcps__daemon_spool(kcps_daemon_t *daemon)
{
  return daemon->spool;
}

int kcps_daemon_ipp_port(const kcps_daemon_t *daemon)
{
  return kcps_ipp_server_port(daemon->ipp);
}

int kcps_daemon_pull_port(const kcps_daemon_t *daemon)
{
  return daemon->pull_port;
}

int kcps_daemon_local_port(const kcps_daemon_t *daemon)
{
  return daemon->local_port;
}

/* Creates dir (and parents) and makes sure only its owner can enter it. */
static bool make_private_dir(const char *dir, GError **error)
{
  if (g_mkdir_with_parents(dir, 0700) != 0 || g_chmod(dir, 0700) != 0) {
    int saved = errno;
    g_set_error(error, KCPS_DAEMON_ERROR, KCPS_DAEMON_ERROR_IO, "cannot create folder %s: %s",
                dir, g_strerror(saved));
    return false;
  }
  return true;
}

/* The IPP server calls this on its connection thread once a job is durable:
 * hand it to the worker so the IPP answer never waits for the network. */
static void on_job_spooled(const kcps_job_t *job, void *data)
{
  kcps__events_emit(data, job->owner_uid, "job", job->id);
  kcps__sync_register_job(data, job->id);
}

static bool check_port(const char *what, int port, GError **error)
{
  if (port < 0 || port > 65535) {
    g_set_error(error, KCPS_DAEMON_ERROR, KCPS_DAEMON_ERROR_CONFIG,
                "%s port %d is out of range (0-65535)", what, port);
    return false;
  }
  return true;
}

/* The pull certificate: made once, kept in STATE so that the pin registered
 * with jobs stays valid across restarts. */
static bool setup_pull_certificate(kcps_daemon_t *daemon, GError **error)
{
  daemon->pull_cert_path = g_build_filename(daemon->state_dir, "pull.crt", NULL);
  daemon->pull_key_path = g_build_filename(daemon->state_dir, "pull.key", NULL);
  /* The names MFPs may use to reach us; each once (the first is the CN). */
  const char *candidates[] = {g_get_host_name(), daemon->pull_host, "localhost", "127.0.0.1"};
  const char *names[G_N_ELEMENTS(candidates) + 1] = {NULL};
  size_t n = 0;
  for (size_t i = 0; i < G_N_ELEMENTS(candidates); i++) {
    bool seen = false;
    for (size_t j = 0; j < n; j++)
      seen = seen || g_ascii_strcasecmp(names[j], candidates[i]) == 0;
    if (!seen)
      names[n++] = candidates[i];
  }
  if (!kcps_tls_ensure_self_signed(daemon->pull_cert_path, daemon->pull_key_path, names, error))
    return false;
  daemon->pull_pin = kcps_tls_spki_pin(daemon->pull_cert_path, error);
  return daemon->pull_pin != NULL;
}

kcps_daemon_t *kcps_daemon_new(const kcps_daemon_config_t *config, GError **error)
{
  if (config->spool_dir == NULL || config->state_dir == NULL) {
    g_set_error(error, KCPS_DAEMON_ERROR, KCPS_DAEMON_ERROR_CONFIG,
                "the %s folder is not set", config->spool_dir == NULL ? "spool" : "state");
    return NULL;
  }
  if (config->max_document_size < 0) {
    g_set_error(error, KCPS_DAEMON_ERROR, KCPS_DAEMON_ERROR_CONFIG,
                "the document size limit %" G_GINT64_FORMAT " is negative",
                config->max_document_size);
    return NULL;
  }
  if (!check_port("IPP", config->ipp_port, error) || !check_port("pull", config->pull_port, error)
      || !check_port("local API", config->local_port, error))
    return NULL;
  /* Tokens and passwords travel to the server: never in clear text. */
  if (config->server_url != NULL && !g_str_has_prefix(config->server_url, "https://")) {
    g_set_error(error, KCPS_DAEMON_ERROR, KCPS_DAEMON_ERROR_CONFIG,
                "server URL %s does not start with https://", config->server_url);
    return NULL;
  }
  /* Said now rather than as a TLS failure at the first login. */
  if (config->server_ca != NULL && !g_file_test(config->server_ca, G_FILE_TEST_IS_REGULAR)) {
    g_set_error(error, KCPS_DAEMON_ERROR, KCPS_DAEMON_ERROR_CONFIG,
                "server CA file %s does not exist", config->server_ca);
    return NULL;
  }

  kcps_daemon_t *daemon = g_new0(kcps_daemon_t, 1);
  g_mutex_init(&daemon->lock);
  g_mutex_init(&daemon->key_lock);
  daemon->events = kcps__events_new(0, 0, 0);
  g_mutex_init(&daemon->quota_lock);
  daemon->quotas = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, g_free);
  daemon->sessions = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, session_free);
  daemon->user_mode = config->user_mode;
  daemon->user_uid = config->user_uid;
  if (config->server_url != NULL) {
    daemon->server_url = g_strdup(config->server_url);
    /* Routes are appended as "/api/...". */
    size_t len = strlen(daemon->server_url);
    while (len > 0 && daemon->server_url[len - 1] == '/')
      daemon->server_url[--len] = '\0';
  }
  daemon->server_ca = g_strdup(config->server_ca);
  daemon->spool_dir = g_strdup(config->spool_dir);
  daemon->state_dir = g_strdup(config->state_dir);
  daemon->pull_listen = g_strdup(config->pull_listen != NULL ? config->pull_listen : "0.0.0.0");
  daemon->pull_host = g_strdup(config->pull_host != NULL ? config->pull_host : g_get_host_name());
  daemon->pull_port = config->pull_port;
  daemon->local_port = config->local_port;

  if (!make_private_dir(daemon->state_dir, error) || !setup_pull_certificate(daemon, error))
    goto fail;

  daemon->spool = kcps_spool_open(daemon->spool_dir, error);
  if (daemon->spool == NULL)
    goto fail;
  if (config->max_document_size > 0)
    kcps_spool_set_max_size(daemon->spool, config->max_document_size);
  daemon->releaser = kcps_releaser_new(daemon->spool, daemon->state_dir);
  if (!kcps__usage_start(daemon, error))
    goto fail;

  daemon->cloud_spool = config->cloud_spool;
  daemon->retention_s = config->retention_s > 0 ? config->retention_s : 0;
  /* Any user may switch to the cloud spool (daemon-settings.c). */
  if (daemon->server_url != NULL)
    daemon->uploader = kcps__uploader_new(config->upload_chunk_size, config->upload_max_rate);
  daemon->default_cloud_spool = config->cloud_spool;
  g_mutex_init(&daemon->settings_lock);
  daemon->user_modes = g_hash_table_new(g_direct_hash, g_direct_equal);
  daemon->org_modes = g_hash_table_new(g_direct_hash, g_direct_equal);
  kcps__settings_apply(daemon);

  /* The worker first: the ports may hand it work as soon as they listen. */
  if (!kcps__sync_start(daemon, error))
    goto fail;
  if (!kcps__pull_start(daemon, error) || !kcps__local_start(daemon, error))
    goto fail;
  /* The hooks and the push channel are set: follow the releases the
   * journal says were running when kcpsd last stopped. */
  kcps_releaser_resume(daemon->releaser);

  kcps_ipp_config_t ipp_config = {
    .port = config->ipp_port,
    .name = "KCPS",
    .user_mode = config->user_mode,
    .user_uid = config->user_uid,
  };
  daemon->ipp = kcps_ipp_server_new(&ipp_config, daemon->spool, on_job_spooled, daemon, error);
  if (daemon->ipp == NULL)
    goto fail;
  return daemon;

fail:
  kcps_daemon_free(daemon);
  return NULL;
}

bool kcps_daemon_expire_jobs(kcps_daemon_t *daemon, gint64 now, gint64 max_age, guint *n,
                             GError **error)
{
  return kcps_spool_expire(daemon->spool, now, max_age, n, error);
}

void kcps_daemon_free(kcps_daemon_t *daemon)
{
  if (daemon == NULL)
    return;
  /* Ports first, so no request hands work to a stopped worker; then the
   * worker; the spool last, since all of them use it. */
  kcps_ipp_server_free(daemon->ipp);
  kcps__local_printers_forget(daemon);
  kcps__events_stop(daemon->events); /* event streams end, so the ports can close */
  kcps_http_server_free(daemon->pull);
  kcps_http_server_free(daemon->local4);
  kcps_http_server_free(daemon->local6);
  kcps__sync_stop(daemon);
  kcps__uploader_free(daemon->uploader);
  kcps_releaser_free(daemon->releaser);
  kcps__usage_stop(daemon);
  if (daemon->spool != NULL)
    kcps_spool_close(daemon->spool);

  g_hash_table_destroy(daemon->sessions);
  kcps__events_free(daemon->events);
  g_hash_table_destroy(daemon->quotas);
  g_mutex_clear(&daemon->quota_lock);
  if (daemon->user_modes != NULL) {
    g_hash_table_destroy(daemon->user_modes);
    g_hash_table_destroy(daemon->org_modes);
    g_mutex_clear(&daemon->settings_lock);
  }
  kcps_ticket_key_free(daemon->ticket_key);
  g_free(daemon->server_url);
  g_free(daemon->server_ca);
  g_free(daemon->spool_dir);
  g_free(daemon->state_dir);
  g_free(daemon->pull_listen);
  g_free(daemon->pull_host);
  g_free(daemon->pull_cert_path);
  g_free(daemon->pull_key_path);
  g_free(daemon->pull_pin);
  g_mutex_clear(&daemon->lock);
  g_mutex_clear(&daemon->key_lock);
  g_free(daemon);
}
