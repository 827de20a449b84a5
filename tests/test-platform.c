/* Tests of platform/: the uid behind a loopback TCP connection (IPv4 and
 * IPv6), user lookups, print-system accounts and default folders. */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "platform/platform.h"

/* A connected pair over loopback: fds[0] the client, fds[1] the accepted
 * end. False when the family is not available here. */
static bool loopback_pair(int family, int fds[2]) {
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof ss);
  socklen_t len;
  if (family == AF_INET) {
    struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
    sin->sin_family = AF_INET;
    sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    len = sizeof *sin;
  } else {
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
    sin6->sin6_family = AF_INET6;
    sin6->sin6_addr = in6addr_loopback;
    len = sizeof *sin6;
  }
  int lfd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (lfd < 0)
    return false;
  if (bind(lfd, (struct sockaddr *)&ss, len) != 0 || listen(lfd, 4) != 0) {
    close(lfd);
    return false;
  }
  ck_assert_int_eq(getsockname(lfd, (struct sockaddr *)&ss, &len), 0);
  fds[0] = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ck_assert_int_ge(fds[0], 0);
  ck_assert_msg(connect(fds[0], (struct sockaddr *)&ss, len) == 0, "connect: %s",
                strerror(errno));
  fds[1] = accept(lfd, NULL, NULL);
  ck_assert_int_ge(fds[1], 0);
  close(lfd);
  return true;
}

static void check_peer(int family) {
  int fds[2];
  if (!loopback_pair(family, fds)) {
    fprintf(stderr, "family %d not available on loopback; skipped\n", family);
    return;
  }
  for (int side = 0; side < 2; side++) {
    uid_t uid = (uid_t)-2;
    GError *error = NULL;
    bool ok = kcps_platform_socket_peer_uid(fds[side], &uid, &error);
    ck_assert_msg(ok, "family %d side %d: %s", family, side, error ? error->message : "?");
    ck_assert_msg(uid == getuid(), "family %d side %d: uid got %u, expected %u", family, side,
                  (unsigned)uid, (unsigned)getuid());
  }
  close(fds[0]);
  close(fds[1]);
}

START_TEST(test_peer_ipv4) { check_peer(AF_INET); }
END_TEST

START_TEST(test_peer_ipv6) { check_peer(AF_INET6); }
END_TEST

/* As root: a child that dropped to another uid connects; its uid, not
 * ours, must be found (a same-uid check alone could pass by accident). */
static void check_other_uid(int family, bool mapped) {
  if (getuid() != 0) {
    fprintf(stderr, "not root: other-uid case skipped\n");
    return;
  }
  const uid_t other = 65534;
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof ss);
  socklen_t len;
  if (family == AF_INET) {
    struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
    sin->sin_family = AF_INET;
    sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    len = sizeof *sin;
  } else {
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
    sin6->sin6_family = AF_INET6;
    sin6->sin6_addr = mapped ? in6addr_any : in6addr_loopback;
    len = sizeof *sin6;
  }
  int lfd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int off = 0;
  if (mapped && lfd >= 0)
    setsockopt(lfd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
  if (lfd < 0 || bind(lfd, (struct sockaddr *)&ss, len) != 0) {
    fprintf(stderr, "family %d not available; skipped\n", family);
    if (lfd >= 0)
      close(lfd);
    return;
  }
  ck_assert_int_eq(listen(lfd, 4), 0);
  ck_assert_int_eq(getsockname(lfd, (struct sockaddr *)&ss, &len), 0);
  if (mapped) {
    /* Connect over IPv4 to the dual-stack listener: the accepted socket
     * sees ::ffff:127.0.0.1 while the peer sits in /proc/net/tcp. */
    struct sockaddr_in sin = {.sin_family = AF_INET,
                              .sin_port = ((struct sockaddr_in6 *)&ss)->sin6_port,
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    memcpy(&ss, &sin, sizeof sin);
    len = sizeof sin;
    family = AF_INET;
  }
  int done[2];
  ck_assert_int_eq(pipe(done), 0);
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    /* The child keeps its connection open until the parent has looked. */
    if (setgid(other) != 0 || setuid(other) != 0)
      _exit(2);
    int c = socket(family, SOCK_STREAM, 0);
    if (c < 0 || connect(c, (struct sockaddr *)&ss, len) != 0)
      _exit(3);
    char b;
    close(done[1]);
    (void)!read(done[0], &b, 1);
    _exit(0);
  }
  close(done[0]);
  int afd = accept(lfd, NULL, NULL);
  ck_assert_int_ge(afd, 0);
  uid_t uid = 0;
  GError *error = NULL;
  bool ok = kcps_platform_socket_peer_uid(afd, &uid, &error);
  close(done[1]);
  int status = 0;
  waitpid(pid, &status, 0);
  ck_assert_msg(ok, "family %d: %s", family, error ? error->message : "?");
  ck_assert_msg(uid == other, "family %d: uid got %u, expected %u", family, (unsigned)uid,
                (unsigned)other);
  close(afd);
  close(lfd);
}

START_TEST(test_peer_other_uid_ipv4) { check_other_uid(AF_INET, false); }
END_TEST

START_TEST(test_peer_other_uid_ipv6) { check_other_uid(AF_INET6, false); }
END_TEST

START_TEST(test_peer_other_uid_mapped) { check_other_uid(AF_INET6, true); }
END_TEST

START_TEST(test_peer_not_tcp) {
  int sv[2];
  ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  GError *error = NULL;
  uid_t uid;
  ck_assert(!kcps_platform_socket_peer_uid(sv[0], &uid, &error));
  ck_assert_ptr_nonnull(error);
  ck_assert(error->domain == KCPS_PLATFORM_ERROR);
  g_clear_error(&error);
  close(sv[0]);
  close(sv[1]);

  /* Not a socket, and a closed descriptor. */
  int pipefd[2];
  ck_assert_int_eq(pipe(pipefd), 0);
  ck_assert(!kcps_platform_socket_peer_uid(pipefd[0], &uid, &error));
  g_clear_error(&error);
  close(pipefd[0]);
  close(pipefd[1]);
  ck_assert(!kcps_platform_socket_peer_uid(sv[0], &uid, &error));
  g_clear_error(&error);
  int s = socket(AF_INET, SOCK_STREAM, 0);
  ck_assert(!kcps_platform_socket_peer_uid(s, &uid, &error)); /* unconnected */
  ck_assert(g_error_matches(error, KCPS_PLATFORM_ERROR, KCPS_PLATFORM_ERROR_NOT_FOUND));
  g_clear_error(&error);
  close(s);
}
END_TEST

/* A peer that sent and hung up: its socket lingers in FIN_WAIT with uid 0
 * and no owner; it must not read as root (a print system account). */
START_TEST(test_peer_gone) {
  int fds[2];
  if (!loopback_pair(_i == 1 ? AF_INET6 : AF_INET, fds)) {
    fprintf(stderr, "no IPv6 loopback; skipped\n");
    return;
  }
  ck_assert_int_eq(send(fds[0], "request", 7, 0), 7);
  if (_i == 2) {
    /* Reset instead: the peer's row disappears. */
    struct linger lg = {1, 0};
    setsockopt(fds[0], SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  }
  close(fds[0]);
  GError *error = NULL;
  uid_t uid = 12345;
  bool ok = kcps_platform_socket_peer_uid(fds[1], &uid, &error);
  ck_assert_msg(!ok, "a closed peer was found with uid %u", (unsigned)uid);
  ck_assert_msg(g_error_matches(error, KCPS_PLATFORM_ERROR, KCPS_PLATFORM_ERROR_NOT_FOUND),
                "got %s", error ? error->message : "(none)");
  g_clear_error(&error);
  close(fds[1]);
}
END_TEST

START_TEST(test_users) {
  char *name = kcps_platform_user_name(getuid());
  ck_assert_msg(name != NULL, "no name for our uid %u", (unsigned)getuid());
  uid_t uid = (uid_t)-2;
  ck_assert(kcps_platform_user_uid(name, &uid));
  ck_assert_msg(uid == getuid(), "round trip: got %u, expected %u", (unsigned)uid,
                (unsigned)getuid());
  g_free(name);

  char *root = kcps_platform_user_name(0);
  ck_assert_str_eq(root, "root");
  g_free(root);
  ck_assert(!kcps_platform_user_uid("no-such-user-kcps-test", &uid));
  ck_assert(!kcps_platform_user_uid("", &uid));
  ck_assert(!kcps_platform_user_uid(NULL, &uid));
  ck_assert_ptr_null(kcps_platform_user_name((uid_t)4000000000u));
}
END_TEST

START_TEST(test_print_system) {
  ck_assert(kcps_platform_is_print_system_uid(0));
  uid_t lp;
  if (kcps_platform_user_uid("lp", &lp))
    ck_assert(kcps_platform_is_print_system_uid(lp));
  ck_assert(!kcps_platform_is_print_system_uid(65534)); /* nobody */
  ck_assert(!kcps_platform_is_print_system_uid(1000));
}
END_TEST

START_TEST(test_default_dirs) {
  g_setenv("XDG_DATA_HOME", "/tmp/kcps-xdg-data", TRUE);
  g_setenv("XDG_CONFIG_HOME", "/tmp/kcps-xdg-config", TRUE);
  char *d = kcps_platform_default_spool_dir(true);
  /* GLib caches the XDG folders; only check the shape when it did not. */
  ck_assert(g_str_has_suffix(d, "/kcps/spool"));
  g_free(d);
  d = kcps_platform_default_spool_dir(false);
  ck_assert_str_eq(d, "/var/spool/kcps");
  g_free(d);
  d = kcps_platform_default_state_dir(true);
  ck_assert(g_str_has_suffix(d, "/kcps"));
  g_free(d);
  d = kcps_platform_default_state_dir(false);
  ck_assert_str_eq(d, "/var/lib/kcps");
  g_free(d);
}
END_TEST

/* The queue functions' errors that need no cupsd: names lpadmin would
 * refuse, a printer that does not answer (checked before cupsd is asked),
 * a URI that is not IPP, and a print system that is not there (CUPS_SERVER
 * naming a socket that does not exist). Installing and removing for real is
 * tests/integration/queue-install.sh, against a private cupsd. */
START_TEST(test_queue_errors) {
  /* Before the first libcups call: libcups reads it once. */
  g_setenv("CUPS_SERVER", "/nonexistent/kcps-test/cups.sock", TRUE);
  GError *error = NULL;

  const char *bad_names[] = {"", "two words", "a/b", "a#b", "tab\there"};
  for (size_t i = 0; i < G_N_ELEMENTS(bad_names); i++) {
    ck_assert_msg(!kcps_platform_queue_install(bad_names[i], "ipp://localhost:5570/ipp/print",
                                               NULL, &error),
                  "name \"%s\" accepted", bad_names[i]);
    ck_assert_msg(g_error_matches(error, KCPS_PLATFORM_ERROR, KCPS_PLATFORM_ERROR_FAILED) &&
                    strstr(error->message, "invalid print queue name") != NULL,
                  "name \"%s\": got %s", bad_names[i], error->message);
    g_clear_error(&error);
    ck_assert(!kcps_platform_queue_remove(bad_names[i], &error));
    g_clear_error(&error);
  }

  /* A port that is bound but does not listen: the connection is refused. */
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ck_assert_int_ge(fd, 0);
  struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof sin;
  ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, len), 0);
  ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
  char *uri = g_strdup_printf("ipp://127.0.0.1:%u/ipp/print", ntohs(sin.sin_port));
  ck_assert(!kcps_platform_queue_install("KCPS", uri, NULL, &error));
  ck_assert_msg(g_error_matches(error, KCPS_PLATFORM_ERROR, KCPS_PLATFORM_ERROR_UNREACHABLE) &&
                  strstr(error->message, uri) != NULL &&
                  strstr(error->message, "start kcpsd") != NULL,
                "silent printer: got %s", error->message);
  g_clear_error(&error);
  g_free(uri);
  close(fd);

  ck_assert(!kcps_platform_queue_install("KCPS", "http://localhost/x", NULL, &error));
  ck_assert_msg(g_error_matches(error, KCPS_PLATFORM_ERROR, KCPS_PLATFORM_ERROR_FAILED) &&
                  strstr(error->message, "not an ipp://") != NULL,
                "http URI: got %s", error->message);
  g_clear_error(&error);

  ck_assert(!kcps_platform_queue_remove("KCPS", &error));
  ck_assert_msg(g_error_matches(error, KCPS_PLATFORM_ERROR, KCPS_PLATFORM_ERROR_NO_PRINT_SYSTEM) &&
                  strstr(error->message, "/nonexistent/kcps-test/cups.sock") != NULL,
                "no cupsd: got %s", error->message);
  g_clear_error(&error);
}
END_TEST

int main(void) {
  Suite *s = suite_create("platform");
  TCase *tc = tcase_create("peer");
  tcase_add_test(tc, test_peer_ipv4);
  tcase_add_test(tc, test_peer_ipv6);
  tcase_add_test(tc, test_peer_other_uid_ipv4);
  tcase_add_test(tc, test_peer_other_uid_ipv6);
  tcase_add_test(tc, test_peer_other_uid_mapped);
  tcase_add_test(tc, test_peer_not_tcp);
  tcase_add_loop_test(tc, test_peer_gone, 0, 3);
  suite_add_tcase(s, tc);
  tc = tcase_create("users");
  tcase_add_test(tc, test_users);
  tcase_add_test(tc, test_print_system);
  tcase_add_test(tc, test_default_dirs);
  suite_add_tcase(s, tc);
  tc = tcase_create("queue");
  tcase_add_test(tc, test_queue_errors);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
