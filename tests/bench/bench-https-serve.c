/* Benchmark server: serves one file over TLS with kcps_http_server and
 * kcps_http_respond_fd, the same path the 5571 pull port takes for a
 * document, without the ticket checks (they cost one HMAC per request, not
 * per byte). Prints "port <n>" once listening; stops on SIGINT/SIGTERM.
 *
 * usage: bench-https-serve FILE CERT.pem KEY.pem (made when missing) */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/http-server.h"
#include "common/tls.h"

static void on_request(kcps_http_req_t *req, void *data) {
  const char *path = data;
  if (strcmp(kcps_http_req_method(req), "GET") != 0) {
    kcps_http_respond_error(req, 405, "method_not_allowed", "only GET is served");
    return;
  }
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0) {
    if (fd >= 0)
      close(fd);
    kcps_http_respond_error(req, 500, "io", "cannot open the benchmark file");
    return;
  }
  kcps_http_respond_fd(req, 200, "application/pdf", fd, (guint64)st.st_size);
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: bench-https-serve FILE CERT.pem KEY.pem\n");
    return 2;
  }
  if (access(argv[1], R_OK) != 0) {
    fprintf(stderr, "bench-https-serve: cannot read %s: %s\n", argv[1], strerror(errno));
    return 2;
  }
  GError *error = NULL;
  const char *const names[] = {"127.0.0.1", NULL};
  if (!kcps_tls_ensure_self_signed(argv[2], argv[3], names, &error)) {
    fprintf(stderr, "bench-https-serve: %s\n", error->message);
    return 1;
  }
  /* Blocked before any thread starts, so every server thread inherits the
   * mask and sigwait below is the only taker. */
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, NULL);

  const char *const listen[] = {"127.0.0.1:0", NULL};
  kcps_http_config_t config = {.listen = listen, .cert_path = argv[2], .key_path = argv[3]};
  kcps_http_server_t *server = kcps_http_server_new(&config, on_request, argv[1], &error);
  if (server == NULL) {
    fprintf(stderr, "bench-https-serve: %s\n", error->message);
    return 1;
  }
  printf("port %d\n", kcps_http_server_port(server, 0));
  fflush(stdout);
  int sig = 0;
  sigwait(&set, &sig);
  kcps_http_server_free(server);
  return 0;
}
