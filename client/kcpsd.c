/* kcpsd: the KCPS service. Parses options, starts the daemon, prints one
 * "ready" line once every port listens, and stops cleanly on SIGINT/SIGTERM. */
#define G_LOG_DOMAIN "kcpsd"

#include <locale.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <glib-unix.h>

#include "client/daemon.h"
#include "platform/platform.h"

static gboolean on_signal(void *data)
{
  g_main_loop_quit(data);
  return G_SOURCE_CONTINUE;
}

int main(int argc, char **argv)
{
  setlocale(LC_ALL, "");
  gboolean user_mode = FALSE;
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
  printf("kcpsd: ready ipp=%d pull=%d local=%d\n", kcps_daemon_ipp_port(daemon),
         kcps_daemon_pull_port(daemon), kcps_daemon_local_port(daemon));
  fflush(stdout);

  g_main_loop_run(loop);
  g_message("stopping");
  kcps_daemon_free(daemon);
  return 0;
}
