/* kcps-server: runs the reference cloud server until SIGINT or SIGTERM.
 * stdout carries exactly the "listening" line (and, on a first --demo
 * start, the demo credentials) so that scripts can wait for it. */
#include "server-stub/server.h"

#include <glib-unix.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#define EXPIRY_PERIOD_S 300

static gboolean
on_signal(gpointer data)
{
  g_main_loop_quit(data);
  return G_SOURCE_CONTINUE;
}

static gboolean
on_expiry(gpointer data)
{
  kcps_server_expire(data);
  return G_SOURCE_CONTINUE;
}

int
main(int argc, char **argv)
{
  g_autofree char *listen = NULL;
  g_autofree char *data_dir = NULL;
  g_autofree char *cert = NULL;
  g_autofree char *key = NULL;
  g_autofree char *smtp_url = NULL;
  g_autofree char *smtp_from = NULL;
  g_autofree char *smtp_ca = NULL;
  g_autofree char *oidc_ca = NULL;
  gboolean demo = FALSE;
  GOptionEntry entries[] = {
    {"listen", 0, 0, G_OPTION_ARG_STRING, &listen,
     "Address to serve HTTPS on (default 127.0.0.1:8443; port 0 picks one)", "HOST:PORT"},
    {"data", 0, 0, G_OPTION_ARG_FILENAME, &data_dir, "Data folder (created 0700)", "DIR"},
    {"demo", 0, 0, G_OPTION_ARG_NONE, &demo,
     "Create the demo organizations, users and device in an empty data folder", NULL},
    {"cert", 0, 0, G_OPTION_ARG_FILENAME, &cert,
     "PEM certificate (default: self-signed DIR/server.crt)", "FILE"},
    {"key", 0, 0, G_OPTION_ARG_FILENAME, &key, "PEM private key of --cert", "FILE"},
    {"smtp-url", 0, 0, G_OPTION_ARG_STRING, &smtp_url,
     "Mail relay for one-time codes (smtp://HOST:PORT or smtps://...)", "URL"},
    {"smtp-from", 0, 0, G_OPTION_ARG_STRING, &smtp_from,
     "Sender address of one-time code mail (default kcps@localhost)", "ADDRESS"},
    {"smtp-ca", 0, 0, G_OPTION_ARG_FILENAME, &smtp_ca, "Extra CA file for the mail relay",
     "FILE"},
    {"oidc-ca", 0, 0, G_OPTION_ARG_FILENAME, &oidc_ca,
     "Extra CA file for OpenID providers", "FILE"},
    G_OPTION_ENTRY_NULL,
  };
  g_autoptr(GOptionContext) ctx = g_option_context_new("- KCPS reference cloud server");
  g_option_context_add_main_entries(ctx, entries, NULL);
  g_autoptr(GError) error = NULL;
  if (!g_option_context_parse(ctx, &argc, &argv, &error)) {
    fprintf(stderr, "kcps-server: %s\n", error->message);
    return 2;
  }
  if (argc > 1) {
    fprintf(stderr, "kcps-server: unexpected argument \"%s\"\n", argv[1]);
    return 2;
  }
  if (!data_dir) {
    fprintf(stderr, "kcps-server: --data DIR is needed\n");
    return 2;
  }

  kcps_server_config_t config = {
    .listen = listen ? listen : "127.0.0.1:8443",
    .data_dir = data_dir,
    .cert_path = cert,
    .key_path = key,
    .demo = demo,
    .smtp_url = smtp_url,
    .smtp_from = smtp_from,
    .smtp_ca_file = smtp_ca,
    .oidc_ca_file = oidc_ca,
  };
  kcps_server_t *server = kcps_server_new(&config, &error);
  if (!server) {
    fprintf(stderr, "kcps-server: %s\n", error->message);
    return 1;
  }

  g_autoptr(GMainLoop) loop = g_main_loop_new(NULL, FALSE);
  /* Retention does not wait for a request: a document past its period is
   * deleted within 5 minutes even when nobody asks for anything. */
  kcps_server_expire(server);
  guint expiry = g_timeout_add_seconds(EXPIRY_PERIOD_S, on_expiry, server);
  guint sigint = g_unix_signal_add(SIGINT, on_signal, loop);
  guint sigterm = g_unix_signal_add(SIGTERM, on_signal, loop);

  printf("kcps-server: listening on %s\n", kcps_server_get_url(server));
  const char *demo_text = kcps_server_get_demo_credentials(server);
  if (demo_text)
    fputs(demo_text, stdout);
  fflush(stdout);

  g_main_loop_run(loop);

  g_source_remove(expiry);
  g_source_remove(sigint);
  g_source_remove(sigterm);
  kcps_server_free(server);
  return 0;
}
