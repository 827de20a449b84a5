/* kcpsd: the KCPS service. Parses options, starts the daemon, prints one
 * "ready" line once every port listens, and stops cleanly on SIGINT/SIGTERM. */
#define G_LOG_DOMAIN "kcpsd"

#include <errno.h>
#include <locale.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <glib-unix.h>

#include "client/daemon.h"
#include "platform/platform.h"

/* Held jobs are deleted after this many hours unless --retention-hours says otherwise. */
#define DEFAULT_RETENTION_HOURS 24
/* The retention is checked every tenth of it, but at least this often (s). */
#define MAX_EXPIRY_INTERVAL_S 600
/* The name of the OS print queue --install-queue makes. */
#define QUEUE_NAME "KCPS"

static gboolean on_signal(void *data)
{
  g_main_loop_quit(data);
  return G_SOURCE_CONTINUE;
}

typedef struct {
  kcps_daemon_t *daemon;
  gint64 max_age; /* seconds */
} expiry_t;

/* Deletes the jobs older than the retention period; logs what it did. */
static gboolean on_expiry(void *data)
{
  expiry_t *expiry = data;
  guint n = 0;
  g_autoptr(GError) error = NULL;
  if (!kcps_daemon_expire_jobs(expiry->daemon, g_get_real_time() / G_USEC_PER_SEC,
                               expiry->max_age, &n, &error))
    g_warning("cannot delete expired jobs: %s", error->message);
  else if (n > 0)
    g_message("deleted %u job%s older than the retention period", n, n == 1 ? "" : "s");
  return G_SOURCE_CONTINUE;
}

/* "1048576", "512K", "100M", "2G" (binary units) as bytes; false when not a
 * positive size. */
static bool parse_size(const char *text, gint64 *bytes)
{
  char *end = NULL;
  errno = 0;
  gint64 value = g_ascii_strtoll(text, &end, 10);
  if (errno != 0 || end == text || value <= 0)
    return false;
  gint64 unit = 1;
  if (*end != '\0') {
    switch (g_ascii_toupper(*end)) {
    case 'K': unit = 1024; break;
    case 'M': unit = 1024 * 1024; break;
    case 'G': unit = 1024 * 1024 * 1024; break;
    default: return false;
    }
    end++;
    if (g_ascii_toupper(*end) == 'B' || g_ascii_toupper(*end) == 'I')
      end++;
    if (*end != '\0')
      return false;
  }
  if (value > G_MAXINT64 / unit)
    return false;
  *bytes = value * unit;
  return true;
}

/* --install-queue / --remove-queue: talks to the print system only; starts
 * nothing. Returns the exit status. */
static int manage_queue(bool install, int ipp_port)
{
  g_autoptr(GError) error = NULL;
  if (install) {
    if (ipp_port <= 0 || ipp_port > 65535) {
      fprintf(stderr, "kcpsd: --install-queue needs the port kcpsd listens on (--ipp-port "
                      "1-65535), not %d\n", ipp_port);
      return 2;
    }
    g_autofree char *uri = g_strdup_printf("ipp://localhost:%d/ipp/print", ipp_port);
    if (!kcps_platform_queue_install(QUEUE_NAME, uri, "KCPS secure print", &error)) {
      fprintf(stderr, "kcpsd: cannot install the print queue %s: %s\n", QUEUE_NAME,
              error->message);
      return 1;
    }
    printf("kcpsd: print queue %s installed (driverless, to %s)\n", QUEUE_NAME, uri);
    return 0;
  }
  if (!kcps_platform_queue_remove(QUEUE_NAME, &error)) {
    /* Removing what is not there is done already: say so, succeed. */
    if (g_error_matches(error, KCPS_PLATFORM_ERROR, KCPS_PLATFORM_ERROR_NOT_FOUND)) {
      printf("kcpsd: print queue %s is not installed; nothing to remove\n", QUEUE_NAME);
      return 0;
    }
    fprintf(stderr, "kcpsd: cannot remove the print queue %s: %s\n", QUEUE_NAME,
            error->message);
    return 1;
  }
  printf("kcpsd: print queue %s removed\n", QUEUE_NAME);
  return 0;
}

int main(int argc, char **argv)
{
  setlocale(LC_ALL, "");
  gboolean user_mode = FALSE, install_queue = FALSE, remove_queue = FALSE;
  double retention_hours = DEFAULT_RETENTION_HOURS;
  g_autofree char *max_document_size = NULL;
  g_autofree char *spool_mode = NULL, *upload_chunk = NULL, *upload_rate = NULL;
  g_autofree char *server = NULL, *server_ca = NULL, *spool = NULL, *state = NULL;
  g_autofree char *pull_listen = NULL, *pull_host = NULL;
  int ipp_port = 5570, pull_port = 5571, local_port = 5572;
  GOptionEntry entries[] = {
    {"user", 0, 0, G_OPTION_ARG_NONE, &user_mode, "Run for the calling account only", NULL},
    {"server", 0, 0, G_OPTION_ARG_STRING, &server, "The KCPS server", "URL"},
    {"server-ca", 0, 0, G_OPTION_ARG_FILENAME, &server_ca,
     "Trust this CA or certificate for the server (default: the system store)", "FILE"},
    {"spool", 0, 0, G_OPTION_ARG_FILENAME, &spool, "Spool folder", "DIR"},
    {"state", 0, 0, G_OPTION_ARG_FILENAME, &state, "State folder (pull certificate)", "DIR"},
    {"ipp-port", 0, 0, G_OPTION_ARG_INT, &ipp_port, "Virtual printer port (0: any free)", "5570"},
    {"pull-port", 0, 0, G_OPTION_ARG_INT, &pull_port, "Pull port for MFPs (0: any free)", "5571"},
    {"pull-listen", 0, 0, G_OPTION_ARG_STRING, &pull_listen,
     "Address the pull port binds (default 0.0.0.0)", "ADDR"},
    {"pull-host", 0, 0, G_OPTION_ARG_STRING, &pull_host,
     "Host name put into pull URLs (default: this host's name)", "HOST"},
    {"local-port", 0, 0, G_OPTION_ARG_INT, &local_port, "Local API port (0: any free)", "5572"},
    {"retention-hours", 0, 0, G_OPTION_ARG_DOUBLE, &retention_hours,
     "Delete jobs not printed after this many hours (0: keep them; fractions allowed)", "24"},
    {"max-document-size", 0, 0, G_OPTION_ARG_STRING, &max_document_size,
     "Refuse documents larger than this (bytes, or with K, M, G)", "2G"},
    {"spool-mode", 0, 0, G_OPTION_ARG_STRING, &spool_mode,
     "local: documents stay here until an MFP pulls them; cloud: each job is uploaded to "
     "the server (resumable) and deleted here once the server confirmed it", "local"},
    {"upload-chunk-size", 0, 0, G_OPTION_ARG_STRING, &upload_chunk,
     "Cloud spool: bytes a chunk (K, M allowed; the server may ask for less)", "8M"},
    {"upload-max-rate", 0, 0, G_OPTION_ARG_STRING, &upload_rate,
     "Cloud spool: at most this many bytes a second (K, M allowed; default: no limit)", "RATE"},
    {"install-queue", 0, 0, G_OPTION_ARG_NONE, &install_queue,
     "Install the OS print queue KCPS to the virtual printer on --ipp-port and exit "
     "(kcpsd must be running there)", NULL},
    {"remove-queue", 0, 0, G_OPTION_ARG_NONE, &remove_queue,
     "Remove the OS print queue KCPS and exit", NULL},
    {NULL, 0, 0, 0, NULL, NULL, NULL},
  };
  g_autoptr(GOptionContext) context = g_option_context_new("- the KCPS print service");
  g_option_context_add_main_entries(context, entries, NULL);
  g_autoptr(GError) error = NULL;
  if (!g_option_context_parse(context, &argc, &argv, &error)) {
    fprintf(stderr, "kcpsd: %s (see kcpsd --help)\n", error->message);
    return 2;
  }
  if (argc > 1) {
    fprintf(stderr, "kcpsd: unexpected argument %s (see kcpsd --help)\n", argv[1]);
    return 2;
  }
  if (install_queue && remove_queue) {
    fprintf(stderr, "kcpsd: --install-queue and --remove-queue exclude each other\n");
    return 2;
  }
  if (install_queue || remove_queue)
    return manage_queue(install_queue, ipp_port);
  if (!(retention_hours >= 0 && retention_hours <= 24 * 365 * 100)) {
    fprintf(stderr, "kcpsd: --retention-hours %g is out of range (0-876000)\n",
            retention_hours);
    return 2;
  }
  gint64 max_size = 0;
  if (max_document_size != NULL && !parse_size(max_document_size, &max_size)) {
    fprintf(stderr, "kcpsd: --max-document-size %s is not a size (e.g. 104857600, 100M, 2G)\n",
            max_document_size);
    return 2;
  }
  if (spool_mode != NULL && g_strcmp0(spool_mode, "local") != 0 &&
      g_strcmp0(spool_mode, "cloud") != 0) {
    fprintf(stderr, "kcpsd: --spool-mode %s is neither local nor cloud\n", spool_mode);
    return 2;
  }
  gint64 chunk_size = 0, max_rate = 0;
  if ((upload_chunk != NULL && (!parse_size(upload_chunk, &chunk_size) || chunk_size < 1024 ||
                                chunk_size > 64 * 1024 * 1024)) ||
      (upload_rate != NULL && (!parse_size(upload_rate, &max_rate) || max_rate < 1024))) {
    fprintf(stderr, "kcpsd: --upload-chunk-size must be 1K to 64M and --upload-max-rate at "
                    "least 1K\n");
    return 2;
  }
  bool cloud = g_strcmp0(spool_mode, "cloud") == 0;
  if (cloud && server == NULL) {
    fprintf(stderr, "kcpsd: --spool-mode cloud needs --server\n");
    return 2;
  }
  if (!user_mode) {
    if (geteuid() != 0)
      fprintf(stderr, "kcpsd: the system service must start as root; use --user to run "
                      "for your own account\n");
    else
      fprintf(stderr, "kcpsd: only --user mode is implemented so far (the system service, "
                      "running as a dedicated account for every user, is not)\n");
    return 2;
  }

  g_autofree char *default_spool = kcps_platform_default_spool_dir(true);
  g_autofree char *default_state = kcps_platform_default_state_dir(true);
  kcps_daemon_config_t config;
  kcps_daemon_config_init(&config);
  config.user_mode = true;
  config.user_uid = getuid();
  config.server_url = server;
  config.server_ca = server_ca;
  config.spool_dir = spool != NULL ? spool : default_spool;
  config.state_dir = state != NULL ? state : default_state;
  config.ipp_port = ipp_port;
  config.pull_port = pull_port;
  config.pull_listen = pull_listen;
  config.pull_host = pull_host;
  config.local_port = local_port;
  config.max_document_size = max_size;
  config.cloud_spool = cloud;
  config.upload_chunk_size = chunk_size;
  config.upload_max_rate = max_rate;
  /* Rounded up to whole seconds, as the expiry below does. */
  config.retention_s = (gint64)(retention_hours * 3600);
  if ((double)config.retention_s < retention_hours * 3600)
    config.retention_s++;
  if (server == NULL)
    g_message("no --server given: jobs are spooled but not registered anywhere");

  /* A peer that goes away mid-answer must not kill the service. */
  signal(SIGPIPE, SIG_IGN);
  g_autoptr(GMainLoop) loop = g_main_loop_new(NULL, FALSE);
  g_unix_signal_add(SIGINT, on_signal, loop);
  g_unix_signal_add(SIGTERM, on_signal, loop);

  kcps_daemon_t *daemon = kcps_daemon_new(&config, &error);
  if (daemon == NULL) {
    fprintf(stderr, "kcpsd: %s\n", error->message);
    return 1;
  }
  /* Retention: once now, then every tenth of the period (at least every
   * second, at most 10 min apart), so a job outlives it by a tenth at most. */
  expiry_t expiry = {daemon, config.retention_s};
  if (expiry.max_age > 0) {
    on_expiry(&expiry);
    g_timeout_add_seconds((guint)CLAMP(expiry.max_age / 10, 1, MAX_EXPIRY_INTERVAL_S), on_expiry,
                          &expiry);
  }
  printf("kcpsd: ready ipp=%d pull=%d local=%d\n", kcps_daemon_ipp_port(daemon),
         kcps_daemon_pull_port(daemon), kcps_daemon_local_port(daemon));
  fflush(stdout);

  g_main_loop_run(loop);
  g_message("stopping");
  kcps_daemon_free(daemon);
  return 0;
}
