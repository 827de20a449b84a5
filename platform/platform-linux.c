/* Linux side of platform.h: the owner of a loopback TCP peer from
 * /proc/net/tcp{,6}, user names from the password database, default folders. */
#include "platform/platform.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

G_DEFINE_QUARK(kcps-platform-error-quark, kcps_platform_error)

/* /proc/net/tcp states that belong to no process: their uid column reads
 * 0 and must not be taken for root. */
#define TCP_STATE_TIME_WAIT 0x06
#define TCP_STATE_LISTEN 0x0A

/* An address and port in one comparable form: IPv4 as IPv4-mapped IPv6. */
typedef struct {
  struct in6_addr addr;
  unsigned port;
} endpoint_t;

static bool endpoint_from_sockaddr(const struct sockaddr_storage *ss, endpoint_t *ep) {
  memset(ep, 0, sizeof *ep);
  if (ss->ss_family == AF_INET) {
    const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
    ep->addr.s6_addr[10] = 0xff;
    ep->addr.s6_addr[11] = 0xff;
    memcpy(&ep->addr.s6_addr[12], &sin->sin_addr, 4);
    ep->port = ntohs(sin->sin_port);
    return true;
  }
  if (ss->ss_family == AF_INET6) {
    const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
    ep->addr = sin6->sin6_addr;
    ep->port = ntohs(sin6->sin6_port);
    return true;
  }
  return false;
}

/* Parses "HEX:PORT" as the kernel prints it: the address as 32-bit words,
 * each in host byte order (so the words' memory bytes are the network
 * bytes), 8 hex digits for IPv4 and 32 for IPv6; the port in plain hex. */
static bool parse_endpoint(const char *text, endpoint_t *ep) {
  const char *colon = strchr(text, ':');
  if (colon == NULL)
    return false;
  size_t hex_len = (size_t)(colon - text);
  if (hex_len != 8 && hex_len != 32)
    return false;
  uint32_t words[4] = {0};
  for (size_t w = 0; w < hex_len / 8; w++) {
    char word[9];
    memcpy(word, text + w * 8, 8);
    word[8] = '\0';
    char *end = NULL;
    unsigned long v = strtoul(word, &end, 16);
    if (end != word + 8)
      return false;
    words[w] = (uint32_t)v;
  }
  memset(ep, 0, sizeof *ep);
  if (hex_len == 8) {
    ep->addr.s6_addr[10] = 0xff;
    ep->addr.s6_addr[11] = 0xff;
    memcpy(&ep->addr.s6_addr[12], &words[0], 4);
  } else {
    memcpy(ep->addr.s6_addr, words, 16);
  }
  char *end = NULL;
  unsigned long port = strtoul(colon + 1, &end, 16);
  if (end == colon + 1 || port > 65535)
    return false;
  ep->port = (unsigned)port;
  return true;
}

static bool endpoint_equal(const endpoint_t *a, const endpoint_t *b) {
  return a->port == b->port && memcmp(&a->addr, &b->addr, sizeof a->addr) == 0;
}

/* Looks for the socket whose local end is want_local and remote end
 * want_remote in one /proc/net file. Returns 1 found, 0 not, -1 unreadable. */
static int find_in_table(const char *path, const endpoint_t *want_local,
                         const endpoint_t *want_remote, uid_t *uid) {
  FILE *f = fopen(path, "re");
  if (f == NULL)
    return errno == ENOENT ? 0 : -1;
  char line[512];
  int found = 0;
  bool header = true;
  while (found == 0 && fgets(line, sizeof line, f) != NULL) {
    if (header) {
      header = false;
      continue;
    }
    /* sl local rem st tx:rx tr:when retrnsmt uid timeout inode ... */
    char local[64], remote[64];
    unsigned state = 0;
    unsigned long row_uid = 0, inode = 0;
    if (sscanf(line, " %*[^:]: %63s %63s %x %*s %*s %*s %lu %*s %lu", local, remote, &state,
               &row_uid, &inode) != 5)
      continue;
    /* A socket its process has closed (inode 0) reads as uid 0: it must
     * not pass for root, or a sender could send as someone else and hang
     * up before we look. */
    if (state == TCP_STATE_TIME_WAIT || state == TCP_STATE_LISTEN || inode == 0)
      continue;
    endpoint_t l, r;
    if (!parse_endpoint(local, &l) || !parse_endpoint(remote, &r))
      continue;
    if (endpoint_equal(&l, want_local) && endpoint_equal(&r, want_remote)) {
      *uid = (uid_t)row_uid;
      found = 1;
    }
  }
  fclose(f);
  return found;
}

static bool endpoint_is_v4(const endpoint_t *ep) {
  static const unsigned char prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  return memcmp(ep->addr.s6_addr, prefix, sizeof prefix) == 0;
}

/* Asks the kernel (sock_diag, one exact lookup) for the socket whose local
 * end is want_local and remote end want_remote: no scan of every TCP
 * socket of the machine per connection, as reading /proc/net/tcp is.
 * Returns 1 found (a live socket a process holds), 0 not found, -1 when
 * the kernel cannot answer this way (the caller reads /proc instead). */
static int find_by_sock_diag(const endpoint_t *want_local, const endpoint_t *want_remote,
                             uid_t *uid) {
  int nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  if (nl < 0)
    return -1;
  struct {
    struct nlmsghdr nlh;
    struct inet_diag_req_v2 req;
  } msg;
  memset(&msg, 0, sizeof msg);
  msg.nlh.nlmsg_len = sizeof msg;
  msg.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  msg.nlh.nlmsg_flags = NLM_F_REQUEST;
  bool v4 = endpoint_is_v4(want_local) && endpoint_is_v4(want_remote);
  msg.req.sdiag_family = v4 ? AF_INET : AF_INET6;
  msg.req.sdiag_protocol = IPPROTO_TCP;
  msg.req.idiag_states = ~0U;
  msg.req.id.idiag_sport = htons((uint16_t)want_local->port);
  msg.req.id.idiag_dport = htons((uint16_t)want_remote->port);
  if (v4) {
    memcpy(msg.req.id.idiag_src, &want_local->addr.s6_addr[12], 4);
    memcpy(msg.req.id.idiag_dst, &want_remote->addr.s6_addr[12], 4);
  } else {
    memcpy(msg.req.id.idiag_src, want_local->addr.s6_addr, 16);
    memcpy(msg.req.id.idiag_dst, want_remote->addr.s6_addr, 16);
  }
  msg.req.id.idiag_cookie[0] = INET_DIAG_NOCOOKIE;
  msg.req.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;

  struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
  ssize_t n;
  do
    n = sendto(nl, &msg, sizeof msg, 0, (struct sockaddr *)&kernel, sizeof kernel);
  while (n < 0 && errno == EINTR);
  if (n != (ssize_t)sizeof msg) {
    close(nl);
    return -1;
  }
  union {
    struct nlmsghdr nlh;
    char bytes[8192];
  } answer;
  do
    n = recv(nl, &answer, sizeof answer, 0);
  while (n < 0 && errno == EINTR);
  close(nl);
  if (n < (ssize_t)sizeof(struct nlmsghdr))
    return -1;

  int found = -1;
  for (struct nlmsghdr *h = &answer.nlh; NLMSG_OK(h, (unsigned)n); h = NLMSG_NEXT(h, n)) {
    if (h->nlmsg_type == NLMSG_ERROR) {
      const struct nlmsgerr *e = NLMSG_DATA(h);
      if (h->nlmsg_len < NLMSG_LENGTH(sizeof *e))
        return -1;
      /* ENOENT: no such socket; anything else: this kernel cannot say. */
      return e->error == -ENOENT ? 0 : -1;
    }
    if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY ||
        h->nlmsg_len < NLMSG_LENGTH(sizeof(struct inet_diag_msg)))
      continue;
    const struct inet_diag_msg *m = NLMSG_DATA(h);
    /* As in /proc/net/tcp: a socket no process holds (inode 0, time-wait)
     * reads as uid 0 and must not pass for root. */
    if (m->idiag_state == TCP_STATE_TIME_WAIT || m->idiag_state == TCP_STATE_LISTEN ||
        m->idiag_inode == 0)
      return 0;
    *uid = (uid_t)m->idiag_uid;
    found = 1;
    break;
  }
  return found;
}

bool kcps_platform_socket_peer_uid(int fd, uid_t *uid, GError **error) {
  struct sockaddr_storage ours, theirs;
  socklen_t ours_len = sizeof ours, theirs_len = sizeof theirs;
  if (getsockname(fd, (struct sockaddr *)&ours, &ours_len) != 0 ||
      getpeername(fd, (struct sockaddr *)&theirs, &theirs_len) != 0) {
    int err = errno;
    g_set_error(error, KCPS_PLATFORM_ERROR, KCPS_PLATFORM_ERROR_NOT_FOUND,
                "socket %d has no TCP peer: %s", fd, g_strerror(err));
    return false;
  }
  endpoint_t local, peer;
  if (!endpoint_from_sockaddr(&ours, &local) || !endpoint_from_sockaddr(&theirs, &peer)) {
    g_set_error(error, KCPS_PLATFORM_ERROR, KCPS_PLATFORM_ERROR_UNSUPPORTED,
                "socket %d is not an IPv4 or IPv6 socket", fd);
    return false;
  }

  /* The peer's own socket has our ends swapped. The kernel's exact lookup
   * first; when it finds nothing (or cannot be asked), the tables, where
   * the peer sits in tcp or tcp6 by its family, which may differ from
   * ours (IPv4-mapped addresses). */
  if (find_by_sock_diag(&peer, &local, uid) == 1)
    return true;
  static const char *const tables[] = {"/proc/net/tcp", "/proc/net/tcp6"};
  bool unreadable = false;
  for (size_t i = 0; i < G_N_ELEMENTS(tables); i++) {
    int r = find_in_table(tables[i], &peer, &local, uid);
    if (r == 1)
      return true;
    if (r < 0)
      unreadable = true;
  }
  if (unreadable)
    g_set_error(error, KCPS_PLATFORM_ERROR, KCPS_PLATFORM_ERROR_IO,
                "cannot read the kernel's TCP tables (/proc/net/tcp, tcp6): %s",
                g_strerror(errno));
  else
    g_set_error(error, KCPS_PLATFORM_ERROR, KCPS_PLATFORM_ERROR_NOT_FOUND,
                "the peer of socket %d is not a local process (or has gone)", fd);
  return false;
}

/* Calls getpwuid_r/getpwnam_r with a buffer that grows as needed; fills
 * *pw and returns the buffer to g_free, or NULL when there is no entry. */
static char *lookup_passwd(const char *name, uid_t uid, struct passwd *pw) {
  long hint = sysconf(_SC_GETPW_R_SIZE_MAX);
  size_t size = hint > 0 ? (size_t)hint : 1024;
  for (;;) {
    char *buf = g_malloc(size);
    struct passwd *result = NULL;
    int rc = name != NULL ? getpwnam_r(name, pw, buf, size, &result)
                          : getpwuid_r(uid, pw, buf, size, &result);
    if (rc == ERANGE && size < 1024 * 1024) {
      g_free(buf);
      size *= 2;
      continue;
    }
    if (rc != 0 || result == NULL) {
      g_free(buf);
      return NULL;
    }
    return buf;
  }
}

char *kcps_platform_user_name(uid_t uid) {
  struct passwd pw;
  g_autofree char *buf = lookup_passwd(NULL, uid, &pw);
  return buf != NULL ? g_strdup(pw.pw_name) : NULL;
}

bool kcps_platform_user_uid(const char *name, uid_t *uid) {
  if (name == NULL || *name == '\0')
    return false;
  struct passwd pw;
  g_autofree char *buf = lookup_passwd(name, 0, &pw);
  if (buf == NULL)
    return false;
  *uid = pw.pw_uid;
  return true;
}

bool kcps_platform_is_print_system_uid(uid_t uid) {
  if (uid == 0)
    return true;
  uid_t lp;
  return kcps_platform_user_uid("lp", &lp) && lp == uid;
}

char *kcps_platform_default_spool_dir(bool user_mode) {
  if (user_mode)
    return g_build_filename(g_get_user_data_dir(), "kcps", "spool", NULL);
  return g_strdup("/var/spool/kcps");
}

char *kcps_platform_default_state_dir(bool user_mode) {
  if (user_mode)
    return g_build_filename(g_get_user_config_dir(), "kcps", NULL);
  return g_strdup("/var/lib/kcps");
}
