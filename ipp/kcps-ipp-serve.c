/* A development tool: serves the virtual printer alone on a spool folder,
 * for ipptool, a private cupsd and the integration tests. Prints
 * "port <n>" once listening and "job <id> pages <n> uid <u> format <mime>"
 * per job (format: as the sender sent it; the spooled file is a PDF). */
#include <glib-unix.h>
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>

#include "ipp/ipp-server.h"

static void on_job(const kcps_job_t *job, void *data) {
  (void)data;
  printf("job %s pages %d uid %u format %s\n", job->id, job->pages, (unsigned)job->owner_uid,
         job->format != NULL ? job->format : "unknown");
  fflush(stdout);
}

static gboolean on_signal(gpointer loop) {
  g_main_loop_quit(loop);
  return G_SOURCE_REMOVE;
}

int main(int argc, char **argv) {
  int port = 0, user_uid = -1;
  char *spool_dir = NULL, *name = NULL;
  GOptionEntry entries[] = {
    {"port", 'p', 0, G_OPTION_ARG_INT, &port, "Port (0: a free one)", "N"},
    {"spool", 's', 0, G_OPTION_ARG_FILENAME, &spool_dir, "Spool folder", "DIR"},
    {"name", 'n', 0, G_OPTION_ARG_STRING, &name, "Printer name", "NAME"},
    {"user", 'u', 0, G_OPTION_ARG_INT, &user_uid, "Serve only this uid (user mode)", "UID"},
    {NULL, 0, 0, 0, NULL, NULL, NULL}};
  GError *error = NULL;
  GOptionContext *ctx = g_option_context_new("- serve the KCPS virtual printer");
  g_option_context_add_main_entries(ctx, entries, NULL);
  if (!g_option_context_parse(ctx, &argc, &argv, &error) || spool_dir == NULL) {
    fprintf(stderr, "kcps-ipp-serve: %s\n", error ? error->message : "--spool DIR is required");
    return 2;
  }
  g_option_context_free(ctx);

  kcps_spool_t *spool = kcps_spool_open(spool_dir, &error);
  if (spool == NULL) {
    fprintf(stderr, "kcps-ipp-serve: %s\n", error->message);
    return 1;
  }
  kcps_ipp_config_t config = {.port = port, .name = name, .user_mode = user_uid >= 0,
                              .user_uid = (uid_t)(user_uid >= 0 ? user_uid : 0)};
  kcps_ipp_server_t *server = kcps_ipp_server_new(&config, spool, on_job, NULL, &error);
  if (server == NULL) {
    fprintf(stderr, "kcps-ipp-serve: %s\n", error->message);
    return 1;
  }
  printf("port %d\n", kcps_ipp_server_port(server));
  fflush(stdout);

  GMainLoop *loop = g_main_loop_new(NULL, FALSE);
  g_unix_signal_add(SIGINT, on_signal, loop);
  g_unix_signal_add(SIGTERM, on_signal, loop);
  g_main_loop_run(loop);
  g_main_loop_unref(loop);
  kcps_ipp_server_free(server);
  kcps_spool_close(spool);
  g_free(spool_dir);
  g_free(name);
  return 0;
}
