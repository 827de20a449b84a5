/* kcps: the command-line twin of the tray, a thin client of kcpsd's local
 * API on loopback. Exit status: 0 success, 1 refused (kcpsd's message on
 * stderr), 2 usage error, 3 kcpsd unreachable. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <gio/gio.h>
#include <glib.h>
#include <json-glib/json-glib.h>

#include "client/keyring.h"
#include "common/sso-loopback.h"
#include "common/http-client.h"
#include "common/json-util.h"

enum { EXIT_OK = 0, EXIT_REFUSED = 1, EXIT_USAGE = 2, EXIT_UNREACHABLE = 3 };

#define DEFAULT_PORT 5572
/* A login waits for kcpsd, which waits for the server. */
#define CALL_TIMEOUT_S 60

static const char usage_text[] =
  "Usage: kcps [--port N] COMMAND\n"
  "\n"
  "Commands:\n"
  "  login EMAIL     log in to the KCPS server (the password is read from the\n"
  "                  terminal, or one line from standard input; then the mailed\n"
  "                  code when the organization asks for one); the session is\n"
  "                  kept in your keyring, shared with the tray\n"
  "  login --resume  log in again with the session kept in your keyring\n"
  "  login --sso EMAIL [--no-browser]\n"
  "                  sign in with your organization's single sign-on (Microsoft,\n"
  "                  Google, ...) in the web browser; the organization is found by\n"
  "                  the address's domain; --no-browser only prints the address\n"
  "  logout          log out (on the server too) and forget the kept session\n"
  "  status          show who is logged in and to which server\n"
  "  jobs [--json]   list your spooled jobs (--json: a JSON array)\n"
  "  delete JOB      delete a job: from this computer, and from the printers'\n"
  "                  and the cloud's lists\n"
  "  release JOB --printer URI [--copies N] [--color|--mono] [--duplex] [--wait]\n"
  "                  print JOB directly on an IPP (ipp://) or IPPS (ipps://)\n"
  "                  printer; --wait follows it to its end (exit 1 unless completed)\n"
  "  printers [--json]\n"
  "                  list the IPP/IPPS printers found on the network (DNS-SD)\n"
  "  printer show URI [--json]\n"
  "                  ask a printer (found or not) what it can do\n"
  "  printer forget URI\n"
  "                  forget the pinned certificate of an IPPS printer\n"
  "  spool-mode [local|cloud|default]\n"
  "                  show your spool mode and where it comes from, or choose\n"
  "                  one (default: follow your organization's)\n"
  "\n"
  "--port N talks to kcpsd's local API on 127.0.0.1:N (default: $KCPS_LOCAL_PORT,\n"
  "else 5572).\n"
  "Exit status: 0 success, 1 refused, 2 usage error, 3 kcpsd unreachable.\n";

static int usage_error(const char *fmt, ...) G_GNUC_PRINTF(1, 2);
static int usage_error(const char *fmt, ...)
{
  va_list args;
  va_start(args, fmt);
  fputs("kcps: ", stderr);
  vfprintf(stderr, fmt, args);
  fputs("\nTry 'kcps --help'.\n", stderr);
  va_end(args);
  return EXIT_USAGE;
}

static bool parse_port(const char *text, int *port)
{
  char *end = NULL;
  errno = 0;
  long value = text != NULL ? strtol(text, &end, 10) : 0;
  if (text == NULL || *text == '\0' || *end != '\0' || errno != 0 || value < 1 || value > 65535)
    return false;
  *port = (int)value;
  return true;
}

/* --- talking to kcpsd ------------------------------------------------------- */

typedef struct call_s {
  int port;
  long status;
  JsonNode *response;
} call_t;

/* "too many failed attempts; try again after 15:42" (local time; with the
 * date when not today) for an account_locked answer, else NULL (g_free). */
static char *locked_text(JsonNode *response)
{
  gint64 until = kcps_json_locked_until(response, NULL);
  g_autoptr(GDateTime) when = until > 0 ? g_date_time_new_from_unix_local(until) : NULL;
  if (when == NULL)
    return NULL;
  g_autoptr(GDateTime) now = g_date_time_new_now_local();
  bool today = g_date_time_get_year(when) == g_date_time_get_year(now)
               && g_date_time_get_day_of_year(when) == g_date_time_get_day_of_year(now);
  g_autofree char *text = g_date_time_format(when, today ? "%H:%M" : "%Y-%m-%d %H:%M");
  return g_strdup_printf("too many failed attempts; try again after %s", text);
}

/* Calls kcpsd; on failure prints why and returns the exit status to use. */
static int call(call_t *c, const char *method, const char *path, JsonNode *body)
{
  g_autofree char *url = g_strdup_printf("http://127.0.0.1:%d%s", c->port, path);
  kcps_http_opts_t opts = {.timeout_s = CALL_TIMEOUT_S};
  g_autoptr(GError) error = NULL;
  c->status = 0;
  kcps_net_status_t net = kcps_http_call_json(method, url, &opts, body, &c->status,
                                              &c->response, &error);
  if (net == KCPS_NET_OK)
    return EXIT_OK;
  if (c->status == 0) {
    fprintf(stderr, "kcps: cannot reach kcpsd on 127.0.0.1:%d (is it running?): %s\n", c->port,
            error != NULL ? error->message : "no answer");
    return EXIT_UNREACHABLE;
  }
  /* A lock: when to try again, in the user's time. */
  g_autofree char *locked = locked_text(c->response);
  if (locked != NULL) {
    fprintf(stderr, "kcps: %s\n", locked);
    return EXIT_REFUSED;
  }
  /* kcpsd's own words, when it sent some. */
  const char *message = NULL;
  if (c->response != NULL && JSON_NODE_HOLDS_OBJECT(c->response))
    message = kcps_json_string(json_node_get_object(c->response), "message");
  if (message == NULL && error != NULL)
    message = error->message;
  fprintf(stderr, "kcps: %s\n", message != NULL ? message : "refused");
  return EXIT_REFUSED;
}

static JsonObject *response_object(call_t *c)
{
  return c->response != NULL && JSON_NODE_HOLDS_OBJECT(c->response)
           ? json_node_get_object(c->response) : NULL;
}

/* --- password input --------------------------------------------------------- */

/* The terminal state to put back if a signal interrupts the password
 * prompt; a signal handler has nowhere else to find it. */
static struct termios saved_termios;
static volatile sig_atomic_t tty_fd = -1;

static void restore_tty_and_die(int sig)
{
  if (tty_fd >= 0)
    tcsetattr(tty_fd, TCSAFLUSH, &saved_termios);
  signal(sig, SIG_DFL);
  raise(sig);
}

static void strip_newline(char *line)
{
  line[strcspn(line, "\r\n")] = '\0';
}

/* Reads a line after prompt from the terminal (echo off unless echo), or
 * one line from a non-terminal stdin. NULL with a message printed on
 * failure (what names it). The caller wipes and frees the result. */
static char *read_line(const char *prompt, bool echo, const char *what)
{
  char *line = NULL;
  size_t cap = 0;
  ssize_t got;
  if (!isatty(STDIN_FILENO)) {
    got = getline(&line, &cap, stdin);
  } else {
    int fd = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
    FILE *tty = fd >= 0 ? fdopen(fd, "r+") : NULL;
    if (tty == NULL) {
      fprintf(stderr, "kcps: cannot open the terminal to read the password: %s\n",
              g_strerror(errno));
      if (fd >= 0)
        close(fd);
      return NULL;
    }
    fputs(prompt, tty);
    fflush(tty);
    struct termios quiet;
    bool changed = false;
    if (!echo && tcgetattr(fd, &saved_termios) == 0) {
      quiet = saved_termios;
      quiet.c_lflag &= ~(tcflag_t)ECHO;
      quiet.c_lflag |= ECHONL;
      tty_fd = fd;
      signal(SIGINT, restore_tty_and_die);
      signal(SIGTERM, restore_tty_and_die);
      signal(SIGTSTP, restore_tty_and_die);
      changed = tcsetattr(fd, TCSAFLUSH, &quiet) == 0;
    }
    got = getline(&line, &cap, tty);
    if (changed)
      tcsetattr(fd, TCSAFLUSH, &saved_termios);
    tty_fd = -1;
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGTSTP, SIG_DFL);
    fclose(tty);
  }
  if (got < 0) {
    if (line != NULL)
      explicit_bzero(line, cap);
    free(line);
    fprintf(stderr, "kcps: no %s given\n", what);
    return NULL;
  }
  strip_newline(line);
  char *text = g_strdup(line);
  explicit_bzero(line, cap);
  free(line);
  if (*text == '\0') {
    g_free(text);
    fprintf(stderr, "kcps: the %s is empty\n", what);
    return NULL;
  }
  return text;
}

static char *read_password(const char *email)
{
  g_autofree char *prompt = g_strdup_printf("Password for %s: ", email);
  return read_line(prompt, false, "password");
}

static void wipe_free(char *secret)
{
  if (secret != NULL) {
    explicit_bzero(secret, strlen(secret));
    g_free(secret);
  }
}

/* --- the session in the keyring ------------------------------------------------ */

/* kcpsd's server URL (GET /v1/status), the keyring item's "server"; NULL
 * when kcpsd has none. *logged_in: whether kcpsd holds a session for us. */
static int server_of_kcpsd(call_t *c, char **server, bool *logged_in)
{
  g_clear_pointer(&c->response, json_node_unref);
  int rc = call(c, "GET", "/v1/status", NULL);
  if (rc != EXIT_OK)
    return rc;
  JsonObject *obj = response_object(c);
  const char *url = obj != NULL ? kcps_json_string(obj, "server") : NULL;
  *server = g_strdup(url);
  *logged_in = obj != NULL && json_object_has_member(obj, "logged_in")
               && JSON_NODE_HOLDS_VALUE(json_object_get_member(obj, "logged_in"))
               && json_object_get_boolean_member(obj, "logged_in");
  return EXIT_OK;
}

static void say_not_kept(const char *why)
{
  fprintf(stderr,
          "kcps: the session cannot be kept (%s): it lasts only in kcpsd's memory and ends "
          "when kcpsd restarts or its access token expires (1 hour)\n",
          why);
}

/* Said each time the file stands in for the keyring. */
static void say_file(void)
{
  fprintf(stderr,
          "kcps: no keyring (no session D-Bus or no Secret Service on it): the session is "
          "kept in %s instead (mode 0600: readable by you alone, but not encrypted)\n",
          kcps_keyring_file_path());
}

/* POSTs {"name1":"value1","name2":"value2"} (a login's fields, secrets
 * among them) to kcpsd; the body's copies are wiped once sent (the caller
 * wipes its own). */
static int post_secret_pair(call_t *c, const char *path, const char *name1, const char *value1,
                            const char *name2, const char *value2)
{
  g_autoptr(JsonBuilder) builder = json_builder_new();
  json_builder_begin_object(builder);
  json_builder_set_member_name(builder, name1);
  json_builder_add_string_value(builder, value1);
  json_builder_set_member_name(builder, name2);
  json_builder_add_string_value(builder, value2);
  json_builder_end_object(builder);
  g_autoptr(JsonNode) body = json_builder_get_root(builder);
  g_clear_pointer(&c->response, json_node_unref);
  int rc = call(c, "POST", path, body);
  const char *names[] = {name1, name2};
  for (size_t i = 0; i < G_N_ELEMENTS(names); i++) {
    /* The node's own string, in place: json-glib has no call to wipe it. */
    char *copy = (char *)kcps_json_string(json_node_get_object(body), names[i]);
    if (copy != NULL)
      explicit_bzero(copy, strlen(copy));
  }
  return rc;
}

/* Keeps the refresh token of kcpsd's answer in the keyring, and wipes it
 * from the answer. */
static void keep_session(call_t *c, const char *server)
{
  JsonObject *obj = response_object(c);
  const char *refresh = obj != NULL ? kcps_json_string(obj, "refresh_token") : NULL;
  const char *email = obj != NULL ? kcps_json_string(obj, "email") : NULL;
  if (refresh == NULL || email == NULL || server == NULL)
    return;
  bool keyring = kcps_keyring_available();
  g_autoptr(GError) error = NULL;
  if (!kcps_keyring_store(server, email, refresh, &error))
    say_not_kept(error->message);
  else if (!keyring)
    say_file();
  explicit_bzero((char *)refresh, strlen(refresh));
}

/* POST /v1/session with the refresh token kept for server. EXIT_REFUSED
 * (and the item deleted) when the server ended that login. */
static int resume_session(call_t *c, const char *server, bool quiet)
{
  bool keyring = kcps_keyring_available();
  g_autoptr(GError) error = NULL;
  char *token = kcps_keyring_lookup(server, NULL, &error);
  if (token == NULL) {
    if (!quiet && error != NULL)
      fprintf(stderr, "kcps: cannot read the kept session: %s: log in with kcps login EMAIL\n",
              error->message);
    else if (!quiet)
      fprintf(stderr, "kcps: no session is kept %s%s: log in with kcps login EMAIL\n",
              keyring ? "in the keyring" : "(no keyring) in ",
              keyring ? "" : kcps_keyring_file_path());
    return EXIT_REFUSED;
  }
  if (!keyring && !quiet)
    say_file();
  g_autoptr(JsonBuilder) builder = json_builder_new();
  json_builder_begin_object(builder);
  json_builder_set_member_name(builder, "refresh_token");
  json_builder_add_string_value(builder, token);
  json_builder_end_object(builder);
  kcps_keyring_free(token);
  g_autoptr(JsonNode) body = json_builder_get_root(builder);
  g_clear_pointer(&c->response, json_node_unref);
  int rc = call(c, "POST", "/v1/session", body);
  json_object_set_string_member(json_node_get_object(body), "refresh_token", "");
  if (rc == EXIT_REFUSED && c->status == 401) {
    /* Used up, expired or ended: it is of no use any more. */
    g_autoptr(GError) clear_error = NULL;
    kcps_keyring_clear(server, &clear_error);
    if (!quiet)
      fprintf(stderr, "kcps: the kept session has ended: log in with kcps login EMAIL\n");
  }
  if (rc == EXIT_OK)
    keep_session(c, server); /* the token was rotated */
  return rc;
}

/* --- commands ----------------------------------------------------------------- */

static int cmd_login(call_t *c, const char *email)
{
  g_autofree char *server = NULL;
  bool logged_in = false;
  int rc = server_of_kcpsd(c, &server, &logged_in);
  if (rc != EXIT_OK)
    return rc;
  if (email == NULL) { /* --resume */
    if (server == NULL) {
      fprintf(stderr, "kcps: kcpsd has no server, so no session to resume\n");
      return EXIT_REFUSED;
    }
    rc = resume_session(c, server, false);
    if (rc != EXIT_OK)
      return rc;
    JsonObject *obj = response_object(c);
    const char *logged = obj != NULL ? kcps_json_string(obj, "email") : NULL;
    printf("Logged in as %s (session resumed from the keyring)\n", logged != NULL ? logged : "?");
    return EXIT_OK;
  }

  char *password = read_password(email);
  if (password == NULL)
    return EXIT_REFUSED;
  rc = post_secret_pair(c, "/v1/login", "email", email, "password", password);
  wipe_free(password);
  if (rc != EXIT_OK)
    return rc;
  JsonObject *obj = response_object(c);
  if (obj != NULL && json_object_has_member(obj, "mfa_required")) {
    /* The organization asks for the code mailed to the account. */
    g_autofree char *mfa_token = g_strdup(kcps_json_string(obj, "mfa_token"));
    if (mfa_token == NULL) {
      fprintf(stderr, "kcps: kcpsd asked for a code but gave no mfa_token\n");
      return EXIT_REFUSED;
    }
    g_autofree char *prompt =
      g_strdup_printf("A sign-in code was mailed to %s. Code: ", email);
    char *code = read_line(prompt, true, "code");
    if (code == NULL) {
      explicit_bzero(mfa_token, strlen(mfa_token));
      return EXIT_REFUSED;
    }
    rc = post_secret_pair(c, "/v1/login/mfa", "mfa_token", mfa_token, "code", code);
    explicit_bzero(mfa_token, strlen(mfa_token));
    wipe_free(code);
    if (rc != EXIT_OK)
      return rc;
    obj = response_object(c);
  }
  keep_session(c, server);
  const char *logged = obj != NULL ? kcps_json_string(obj, "email") : NULL;
  printf("Logged in as %s\n", logged != NULL ? logged : email);
  return EXIT_OK;
}

/* --- single sign-on ------------------------------------------------------------- */

#define SSO_WAIT_S 600     /* the sign-in in the browser, at most */
#define SSO_READ_S 5       /* one request to the loopback listener, at most */
#define SSO_READ_MAX 8192

/* A short page for the browser, then the connection closes. */
static void sso_answer(int fd, unsigned status, const char *text)
{
  g_autofree char *answer = kcps_sso_answer(status, text);
  size_t off = 0, len = strlen(answer);
  while (off < len) {
    ssize_t n = send(fd, answer + off, len - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    off += (size_t)n;
  }
}

/* One request to the listener: what it says (*code or *error, g_free). */
static kcps_sso_result_t sso_read(int fd, const char *state, char **code, char **error)
{
  GString *data = g_string_new(NULL);
  kcps_sso_result_t res = KCPS_SSO_INCOMPLETE;
  gint64 deadline = g_get_monotonic_time() + SSO_READ_S * G_USEC_PER_SEC;
  while (res == KCPS_SSO_INCOMPLETE && data->len < SSO_READ_MAX) {
    gint64 left_ms = (deadline - g_get_monotonic_time()) / 1000;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (left_ms <= 0 || poll(&p, 1, (int)left_ms) <= 0)
      break;
    char buffer[1024];
    ssize_t n = recv(fd, buffer, sizeof buffer, 0);
    if (n <= 0)
      break;
    g_string_append_len(data, buffer, n);
    res = kcps_sso_parse_request(data->str, data->len, state, code, error);
  }
  explicit_bzero(data->str, data->len);
  g_string_free(data, TRUE);
  return res == KCPS_SSO_INCOMPLETE ? KCPS_SSO_BAD : res;
}

/* Waits for the browser to come back to the listener with our state: the
 * one-time code (g_free), or NULL (refused, or the time is up: said). */
static char *sso_wait(int listener, const char *state)
{
  gint64 deadline = g_get_monotonic_time() + SSO_WAIT_S * G_USEC_PER_SEC;
  for (;;) {
    gint64 left_ms = (deadline - g_get_monotonic_time()) / 1000;
    if (left_ms <= 0) {
      fprintf(stderr, "kcps: no sign-in came back within %d minutes\n", SSO_WAIT_S / 60);
      return NULL;
    }
    struct pollfd p = {.fd = listener, .events = POLLIN};
    int ready = poll(&p, 1, (int)MIN(left_ms, INT_MAX));
    if (ready <= 0)
      continue;
    int fd = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0)
      continue;
    char *code = NULL, *error = NULL;
    kcps_sso_result_t res = sso_read(fd, state, &code, &error);
    if (res == KCPS_SSO_CODE) {
      sso_answer(fd, 200, "You are signed in to KCPS. You can close this page.");
      close(fd);
      return code;
    }
    if (res == KCPS_SSO_REFUSED) {
      sso_answer(fd, 200, "Signing in to KCPS did not work. You can close this page.");
      close(fd);
      fprintf(stderr, "kcps: your organization's sign-in refused the login (%s)\n",
              error != NULL ? error : "no reason given");
      g_free(error);
      return NULL;
    }
    /* Not ours (another path, another state, junk): keep waiting. */
    sso_answer(fd, 400, "This is not a KCPS sign-in.");
    close(fd);
    g_free(code);
    g_free(error);
  }
}

/* kcps login --sso EMAIL: the organization of the address's domain, its
 * sign-in page in the browser (PKCE S256, a loopback redirect on
 * 127.0.0.1, RFC 8252), the one-time code traded by kcpsd. */
static int cmd_login_sso(call_t *c, const char *email, bool open_browser)
{
  g_autofree char *server = NULL;
  bool logged_in = false;
  int rc = server_of_kcpsd(c, &server, &logged_in);
  if (rc != EXIT_OK)
    return rc;
  if (server == NULL) {
    fprintf(stderr, "kcps: kcpsd has no server to sign in to\n");
    return EXIT_REFUSED;
  }
  g_autofree char *escaped = g_uri_escape_string(email, NULL, FALSE);
  g_autofree char *path = g_strdup_printf("/v1/sso?email=%s", escaped);
  g_clear_pointer(&c->response, json_node_unref);
  rc = call(c, "GET", path, NULL);
  if (rc != EXIT_OK)
    return rc;
  JsonObject *obj = response_object(c);
  g_autofree char *org = g_strdup(obj != NULL ? kcps_json_string(obj, "org") : NULL);
  if (org == NULL) {
    fprintf(stderr, "kcps: kcpsd named no organization for %s\n", email);
    return EXIT_REFUSED;
  }

  int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = 0,
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t addr_len = sizeof addr;
  if (listener < 0 || bind(listener, (struct sockaddr *)&addr, sizeof addr) != 0 ||
      listen(listener, 4) != 0 ||
      getsockname(listener, (struct sockaddr *)&addr, &addr_len) != 0) {
    fprintf(stderr, "kcps: cannot listen on 127.0.0.1 for the sign-in: %s\n", g_strerror(errno));
    if (listener >= 0)
      close(listener);
    return EXIT_REFUSED;
  }
  char *verifier = kcps_sso_random();
  g_autofree char *state = kcps_sso_random();
  g_autofree char *challenge = verifier != NULL ? kcps_sso_challenge(verifier) : NULL;
  g_autofree char *url =
    challenge != NULL && state != NULL
      ? kcps_sso_start_url(server, org, ntohs(addr.sin_port), state, challenge, email)
      : NULL;
  if (url == NULL) {
    fprintf(stderr, "kcps: the sign-in cannot start (no randomness, or a bad organization id)\n");
    close(listener);
    wipe_free(verifier);
    return EXIT_REFUSED;
  }
  fprintf(stderr, "Sign in in your web browser (this waits up to %d minutes):\n  %s\n",
          SSO_WAIT_S / 60, url);
  if (open_browser && (g_getenv("DISPLAY") != NULL || g_getenv("WAYLAND_DISPLAY") != NULL)) {
    g_autoptr(GError) error = NULL;
    if (!g_app_info_launch_default_for_uri(url, NULL, &error))
      fprintf(stderr, "kcps: no browser could be opened (%s): open the address yourself\n",
              error->message);
  }
  char *code = sso_wait(listener, state);
  close(listener);
  if (code == NULL) {
    wipe_free(verifier);
    return EXIT_REFUSED;
  }
  rc = post_secret_pair(c, "/v1/login/sso", "code", code, "code_verifier", verifier);
  wipe_free(code);
  wipe_free(verifier);
  if (rc != EXIT_OK)
    return rc;
  keep_session(c, server);
  obj = response_object(c);
  const char *logged = obj != NULL ? kcps_json_string(obj, "email") : NULL;
  printf("Logged in as %s\n", logged != NULL ? logged : email);
  return EXIT_OK;
}

static int cmd_logout(call_t *c)
{
  g_autofree char *server = NULL;
  bool logged_in = false;
  int rc = server_of_kcpsd(c, &server, &logged_in);
  if (rc != EXIT_OK)
    return rc;
  /* A login kept in the keyring but not in kcpsd (restarted) is ended on
   * the server too: resumed, then logged out. */
  if (!logged_in && server != NULL)
    resume_session(c, server, true);
  g_clear_pointer(&c->response, json_node_unref);
  rc = call(c, "POST", "/v1/logout", NULL);
  if (rc != EXIT_OK)
    return rc;
  if (server != NULL) {
    g_autoptr(GError) error = NULL;
    if (!kcps_keyring_clear(server, &error)) {
      fprintf(stderr, "kcps: logged out, but the keyring item stays: %s\n", error->message);
      return EXIT_REFUSED;
    }
  }
  printf("Logged out\n");
  return EXIT_OK;
}

static int cmd_status(call_t *c)
{
  int rc = call(c, "GET", "/v1/status", NULL);
  if (rc != EXIT_OK)
    return rc;
  JsonObject *obj = response_object(c);
  if (obj == NULL) {
    fprintf(stderr, "kcps: kcpsd's status answer is not a JSON object\n");
    return EXIT_REFUSED;
  }
  bool logged_in = false;
  kcps_json_bool(obj, "logged_in", &logged_in);
  const char *user = kcps_json_string(obj, "user");
  const char *email = kcps_json_string(obj, "email");
  const char *server = kcps_json_string(obj, "server");
  printf("user:      %s\n", user != NULL ? user : "?");
  if (logged_in)
    printf("logged in: yes, as %s\n", email != NULL ? email : "?");
  else
    printf("logged in: no\n");
  printf("server:    %s\n", server != NULL ? server : "(none configured)");
  const char *mode = kcps_json_string(obj, "spool_mode");
  const char *source = kcps_json_string(obj, "spool_mode_source");
  if (mode != NULL)
    printf("spool:     %s%s%s%s\n", mode, source != NULL ? " (from " : "",
           source != NULL ? source : "", source != NULL ? ")" : "");
  return EXIT_OK;
}

/* Where the effective spool mode comes from, in words. */
static const char *source_words(const char *source)
{
  if (g_strcmp0(source, "user") == 0)
    return "your own choice";
  if (g_strcmp0(source, "organization") == 0)
    return "your organization's default";
  if (g_strcmp0(source, "kcpsd") == 0)
    return "this computer's default (kcpsd --spool-mode)";
  return "?";
}

/* kcps spool-mode [local|cloud|default]: GET or PUT /v1/settings. */
static int cmd_spool_mode(call_t *c, const char *choice)
{
  int rc;
  if (choice == NULL) {
    rc = call(c, "GET", "/v1/settings", NULL);
  } else {
    g_autoptr(JsonBuilder) builder = json_builder_new();
    json_builder_begin_object(builder);
    json_builder_set_member_name(builder, "spool_mode");
    if (strcmp(choice, "default") == 0)
      json_builder_add_null_value(builder);
    else
      json_builder_add_string_value(builder, choice);
    json_builder_end_object(builder);
    g_autoptr(JsonNode) body = json_builder_get_root(builder);
    rc = call(c, "PUT", "/v1/settings", body);
  }
  if (rc != EXIT_OK)
    return rc;
  JsonObject *obj = response_object(c);
  const char *mode = obj != NULL ? kcps_json_string(obj, "effective_spool_mode") : NULL;
  if (mode == NULL) {
    fprintf(stderr, "kcps: kcpsd's settings answer has no effective_spool_mode\n");
    return EXIT_REFUSED;
  }
  const char *org = kcps_json_string(obj, "organization_spool_mode");
  printf("spool mode: %s (%s)\n", mode,
         source_words(kcps_json_string(obj, "spool_mode_source")));
  printf("organization's default: %s\n", org != NULL ? org : "not known (log in)");
  return EXIT_OK;
}

/* Cuts text to at most width characters (UTF-8 aware) for the table. */
static char *fit(const char *text, glong width)
{
  if (text == NULL)
    return g_strdup("");
  if (!g_utf8_validate(text, -1, NULL))
    return g_strdup("?");
  if (g_utf8_strlen(text, -1) <= width)
    return g_strdup(text);
  g_autofree char *cut = g_utf8_substring(text, 0, width - 1);
  return g_strconcat(cut, "…", NULL);
}

static int cmd_jobs(call_t *c, bool as_json)
{
  int rc = call(c, "GET", "/v1/jobs", NULL);
  if (rc != EXIT_OK)
    return rc;
  JsonObject *obj = response_object(c);
  JsonNode *jobs_node = obj != NULL ? json_object_get_member(obj, "jobs") : NULL;
  if (jobs_node == NULL || !JSON_NODE_HOLDS_ARRAY(jobs_node)) {
    fprintf(stderr, "kcps: kcpsd's jobs answer has no jobs array\n");
    return EXIT_REFUSED;
  }
  if (as_json) {
    g_autofree char *text = kcps_json_to_string(jobs_node);
    printf("%s\n", text);
    return EXIT_OK;
  }
  JsonArray *jobs = json_node_get_array(jobs_node);
  guint n = json_array_get_length(jobs);
  if (n == 0) {
    printf("No jobs.\n");
    return EXIT_OK;
  }
  printf("%-36s  %-30s  %5s  %10s  %s\n", "ID", "NAME", "PAGES", "SIZE", "STATE");
  for (guint i = 0; i < n; i++) {
    JsonNode *node = json_array_get_element(jobs, i);
    if (!JSON_NODE_HOLDS_OBJECT(node))
      continue;
    JsonObject *job = json_node_get_object(node);
    gint64 pages = 0, size = 0;
    kcps_json_int(job, "pages", &pages);
    kcps_json_int(job, "size", &size);
    g_autofree char *name = fit(kcps_json_string(job, "name"), 30);
    /* printf pads by bytes; pad by characters so columns line up. */
    glong pad = 30 - g_utf8_strlen(name, -1);
    const char *id = kcps_json_string(job, "id");
    const char *state = kcps_json_string(job, "state");
    JsonNode *rel_node = json_object_get_member(job, "release");
    const char *rel_state = rel_node != NULL && JSON_NODE_HOLDS_OBJECT(rel_node)
                              ? kcps_json_string(json_node_get_object(rel_node), "state")
                              : NULL;
    /* Cloud spool: "uploading 45%" while it goes, "(cloud)" otherwise. */
    JsonNode *up_node = json_object_get_member(job, "upload");
    gint64 done = 0, total = 0;
    bool uploading = up_node != NULL && JSON_NODE_HOLDS_OBJECT(up_node)
                     && kcps_json_int(json_node_get_object(up_node), "done", &done)
                     && kcps_json_int(json_node_get_object(up_node), "total", &total)
                     && total > 0 && done < total;
    bool cloud = g_strcmp0(kcps_json_string(job, "spool"), "cloud") == 0;
    g_autofree char *where = uploading
                               ? g_strdup_printf("uploading %d%%", (int)(done * 100 / total))
                               : g_strdup_printf("%s%s", state != NULL ? state : "?",
                                                 cloud ? " (cloud)" : "");
    g_autofree char *shown = rel_state != NULL
                               ? g_strdup_printf("%s (release: %s)", where, rel_state)
                               : g_strdup(where);
    state = shown;
    printf("%-36s  %s%*s  %5" G_GINT64_FORMAT "  %10" G_GINT64_FORMAT "  %s\n",
           id != NULL ? id : "?", name, (int)MAX(pad, 0), "", pages, size,
           state != NULL ? state : "?");
  }
  return EXIT_OK;
}

static void print_release(JsonObject *rel)
{
  const char *message = kcps_json_string(rel, "message");
  printf("release %s: %s%s%s\n", kcps_json_string(rel, "id") ? kcps_json_string(rel, "id") : "?",
         kcps_json_string(rel, "state") ? kcps_json_string(rel, "state") : "?",
         message != NULL ? " - " : "", message != NULL ? message : "");
}

static bool release_ended(const char *state)
{
  static const char *const ends[] = {"completed", "aborted", "canceled", "failed"};
  for (size_t i = 0; i < G_N_ELEMENTS(ends); i++)
    if (g_strcmp0(state, ends[i]) == 0)
      return true;
  return false;
}

static int cmd_release(call_t *c, int argc, char **argv)
{
  const char *job = NULL, *printer = NULL;
  int copies = 1;
  int color = -1; /* -1: the printer's choice */
  bool duplex = false, wait = false;
  for (int j = 0; j < argc; j++) {
    const char *arg = argv[j];
    if (strcmp(arg, "--printer") == 0 && j + 1 < argc) {
      printer = argv[++j];
    } else if (strcmp(arg, "--copies") == 0 && j + 1 < argc) {
      char *end = NULL;
      long n = strtol(argv[++j], &end, 10);
      if (*argv[j] == '\0' || *end != '\0' || n < 1 || n > 999)
        return usage_error("--copies %s is not a number from 1 to 999", argv[j]);
      copies = (int)n;
    } else if (strcmp(arg, "--color") == 0) {
      color = 1;
    } else if (strcmp(arg, "--mono") == 0) {
      color = 0;
    } else if (strcmp(arg, "--duplex") == 0) {
      duplex = true;
    } else if (strcmp(arg, "--wait") == 0) {
      wait = true;
    } else if (arg[0] != '-' && job == NULL) {
      job = arg;
    } else {
      return usage_error("release: unexpected argument %s", arg);
    }
  }
  if (job == NULL || printer == NULL)
    return usage_error("usage: kcps release JOB --printer URI [--copies N] [--color|--mono] "
                       "[--duplex] [--wait]");
  if (strchr(job, '/') != NULL || strchr(job, '?') != NULL || strchr(job, '%') != NULL)
    return usage_error("release: %s is not a job id", job);
  g_autoptr(JsonBuilder) builder = json_builder_new();
  json_builder_begin_object(builder);
  json_builder_set_member_name(builder, "printer");
  json_builder_add_string_value(builder, printer);
  json_builder_set_member_name(builder, "copies");
  json_builder_add_int_value(builder, copies);
  json_builder_set_member_name(builder, "color");
  if (color < 0)
    json_builder_add_null_value(builder);
  else
    json_builder_add_boolean_value(builder, color == 1);
  json_builder_set_member_name(builder, "duplex");
  json_builder_add_boolean_value(builder, duplex);
  json_builder_end_object(builder);
  g_autoptr(JsonNode) body = json_builder_get_root(builder);
  g_autofree char *path = g_strdup_printf("/v1/jobs/%s/release", job);
  int rc = call(c, "POST", path, body);
  if (rc != EXIT_OK)
    return rc;
  JsonObject *rel = response_object(c);
  const char *id = rel != NULL ? kcps_json_string(rel, "id") : NULL;
  if (id == NULL) {
    fprintf(stderr, "kcps: kcpsd's release answer has no id\n");
    return EXIT_REFUSED;
  }
  g_autofree char *rid = g_strdup(id);
  print_release(rel);
  if (!wait)
    return EXIT_OK;
  /* Follow the release until it ends; kcpsd does the work. */
  g_autofree char *rpath = g_strdup_printf("/v1/releases/%s", rid);
  g_autofree char *last = NULL;
  for (;;) {
    if (c->response != NULL)
      json_node_unref(c->response);
    c->response = NULL;
    rc = call(c, "GET", rpath, NULL);
    if (rc != EXIT_OK)
      return rc;
    rel = response_object(c);
    const char *state = rel != NULL ? kcps_json_string(rel, "state") : NULL;
    if (state == NULL) {
      fprintf(stderr, "kcps: kcpsd's release answer has no state\n");
      return EXIT_REFUSED;
    }
    if (g_strcmp0(state, last) != 0) {
      print_release(rel);
      g_free(last);
      last = g_strdup(state);
    }
    if (release_ended(state))
      return strcmp(state, "completed") == 0 ? EXIT_OK : EXIT_REFUSED;
    g_usleep(200 * 1000);
  }
}

/* "yes"/"no" for boolean member name of obj, "?" when absent. */
static const char *yes_no(JsonObject *obj, const char *name)
{
  bool value = false;
  if (obj == NULL || !kcps_json_bool(obj, name, &value))
    return "?";
  return value ? "yes" : "no";
}

static int cmd_printers(call_t *c, bool as_json)
{
  int rc = call(c, "GET", "/v1/printers", NULL);
  if (rc != EXIT_OK)
    return rc;
  JsonObject *obj = response_object(c);
  JsonNode *list_node = obj != NULL ? json_object_get_member(obj, "printers") : NULL;
  if (list_node == NULL || !JSON_NODE_HOLDS_ARRAY(list_node)) {
    fprintf(stderr, "kcps: kcpsd's printers answer has no printers array\n");
    return EXIT_REFUSED;
  }
  if (as_json) {
    g_autofree char *text = kcps_json_to_string(c->response);
    printf("%s\n", text);
    return EXIT_OK;
  }
  const char *discovery = kcps_json_string(obj, "discovery");
  if (g_strcmp0(discovery, "available") != 0) {
    const char *reason = kcps_json_string(obj, "reason");
    g_autofree char *shown = fit(reason != NULL ? reason : "discovery is unavailable", 200);
    fprintf(stderr, "kcps: %s\n", shown);
  }
  JsonArray *list = json_node_get_array(list_node);
  guint n = json_array_get_length(list);
  if (n == 0) {
    printf("No printers found.\n");
    return EXIT_OK;
  }
  printf("%-30s  %-30s  %s\n", "NAME", "MAKE AND MODEL", "URI");
  for (guint i = 0; i < n; i++) {
    JsonNode *node = json_array_get_element(list, i);
    if (!JSON_NODE_HOLDS_OBJECT(node))
      continue;
    JsonObject *p = json_node_get_object(node);
    g_autofree char *name = fit(kcps_json_string(p, "name"), 30);
    g_autofree char *model = fit(kcps_json_string(p, "make_and_model"), 30);
    g_autofree char *uri = fit(kcps_json_string(p, "uri"), 200);
    glong pad1 = 30 - g_utf8_strlen(name, -1), pad2 = 30 - g_utf8_strlen(model, -1);
    printf("%s%*s  %s%*s  %s\n", name, (int)MAX(pad1, 0), "", model, (int)MAX(pad2, 0), "",
           uri);
  }
  return EXIT_OK;
}

/* The strings of array member name of obj, comma separated (g_free). */
static char *joined(JsonObject *obj, const char *name)
{
  JsonNode *node = obj != NULL ? json_object_get_member(obj, name) : NULL;
  GString *out = g_string_new(NULL);
  if (node != NULL && JSON_NODE_HOLDS_ARRAY(node)) {
    JsonArray *a = json_node_get_array(node);
    for (guint i = 0; i < json_array_get_length(a); i++) {
      JsonNode *e = json_array_get_element(a, i);
      if (JSON_NODE_HOLDS_VALUE(e)) {
        if (out->len > 0)
          g_string_append(out, ", ");
        if (json_node_get_value_type(e) == G_TYPE_INT64)
          g_string_append_printf(out, "%" G_GINT64_FORMAT, json_node_get_int(e));
        else if (json_node_get_value_type(e) == G_TYPE_STRING)
          g_string_append(out, json_node_get_string(e));
      }
    }
  }
  return g_string_free(out, FALSE);
}

static int cmd_printer_show(call_t *c, const char *uri, bool as_json)
{
  g_autofree char *escaped = g_uri_escape_string(uri, NULL, FALSE);
  g_autofree char *path = g_strdup_printf("/v1/printers?uri=%s", escaped);
  int rc = call(c, "GET", path, NULL);
  if (rc != EXIT_OK)
    return rc;
  JsonObject *obj = response_object(c);
  JsonNode *pnode = obj != NULL ? json_object_get_member(obj, "printer") : NULL;
  if (pnode == NULL || !JSON_NODE_HOLDS_OBJECT(pnode)) {
    fprintf(stderr, "kcps: kcpsd's answer has no printer\n");
    return EXIT_REFUSED;
  }
  if (as_json) {
    g_autofree char *text = kcps_json_to_string(pnode);
    printf("%s\n", text);
    return EXIT_OK;
  }
  JsonObject *p = json_node_get_object(pnode);
  JsonNode *cnode = json_object_get_member(p, "capabilities");
  JsonObject *caps = cnode != NULL && JSON_NODE_HOLDS_OBJECT(cnode)
                       ? json_node_get_object(cnode) : NULL;
  g_autofree char *name = fit(kcps_json_string(p, "name"), 80);
  g_autofree char *model = fit(kcps_json_string(p, "make_and_model"), 80);
  g_autofree char *location = fit(kcps_json_string(p, "location"), 80);
  g_autofree char *formats = joined(caps, "formats");
  g_autofree char *res = joined(caps, "resolutions");
  gint64 copies_max = 1;
  JsonNode *copies = caps != NULL ? json_object_get_member(caps, "copies") : NULL;
  if (copies != NULL && JSON_NODE_HOLDS_OBJECT(copies))
    kcps_json_int(json_node_get_object(copies), "max", &copies_max);
  printf("Printer:      %s\n", name);
  printf("URI:          %s\n", uri);
  printf("Make/model:   %s\n", model);
  printf("Location:     %s\n", location);
  const char *cert = kcps_json_string(p, "certificate");
  if (cert != NULL)
    printf("Certificate:  %s\n", cert);
  printf("Formats:      %s\n", formats);
  printf("Colour:       %s\n", yes_no(caps, "color"));
  printf("Two-sided:    %s\n", yes_no(caps, "duplex"));
  printf("Copies:       1 to %" G_GINT64_FORMAT "\n", copies_max);
  printf("Resolutions:  %s\n", res[0] != '\0' ? res : "-");
  const char *sends = caps != NULL ? kcps_json_string(caps, "sends") : NULL;
  printf("kcpsd sends:  %s\n", sends != NULL ? sends : "nothing it can print");
  return EXIT_OK;
}

static int cmd_printer_forget(call_t *c, const char *uri)
{
  g_autoptr(JsonBuilder) builder = json_builder_new();
  json_builder_begin_object(builder);
  json_builder_set_member_name(builder, "printer");
  json_builder_add_string_value(builder, uri);
  json_builder_end_object(builder);
  g_autoptr(JsonNode) body = json_builder_get_root(builder);
  int rc = call(c, "POST", "/v1/printers/forget", body);
  if (rc != EXIT_OK)
    return rc;
  JsonObject *obj = response_object(c);
  bool removed = false;
  if (obj != NULL)
    kcps_json_bool(obj, "forgotten", &removed);
  printf(removed ? "Forgot the pinned certificate of %s\n"
                 : "No certificate was pinned for %s\n", uri);
  return EXIT_OK;
}

/* kcps delete JOB: the job goes from the spool, and from the server's
 * lists (kcpsd withdraws it there). */
static int cmd_delete(call_t *c, const char *job)
{
  g_autofree char *escaped = g_uri_escape_string(job, NULL, FALSE);
  g_autofree char *path = g_strconcat("/v1/jobs/", escaped, NULL);
  int rc = call(c, "DELETE", path, NULL);
  if (rc != EXIT_OK)
    return rc;
  printf("Deleted job %s\n", job);
  return EXIT_OK;
}

int main(int argc, char **argv)
{
  call_t c = {.port = DEFAULT_PORT};
  const char *env_port = g_getenv("KCPS_LOCAL_PORT");
  bool port_given = false;

  /* Options before the command. */
  int i = 1;
  for (; i < argc && argv[i][0] == '-'; i++) {
    const char *arg = argv[i];
    if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
      fputs(usage_text, stdout);
      return EXIT_OK;
    }
    const char *value = NULL;
    if (strcmp(arg, "--port") == 0) {
      if (i + 1 >= argc)
        return usage_error("--port needs a value");
      value = argv[++i];
    } else if (g_str_has_prefix(arg, "--port=")) {
      value = arg + strlen("--port=");
    } else {
      return usage_error("unknown option %s", arg);
    }
    if (!parse_port(value, &c.port))
      return usage_error("--port %s is not a port number (1-65535)", value);
    port_given = true;
  }
  if (!port_given && env_port != NULL && *env_port != '\0' && !parse_port(env_port, &c.port))
    return usage_error("KCPS_LOCAL_PORT=%s is not a port number (1-65535)", env_port);

  if (i >= argc)
    return usage_error("no command given");
  const char *command = argv[i++];
  int rest = argc - i;
  char **args = argv + i;

  int rc;
  if (strcmp(command, "login") == 0) {
    bool sso = rest >= 2 && strcmp(args[0], "--sso") == 0;
    bool no_browser = sso && rest == 3 && strcmp(args[2], "--no-browser") == 0;
    if (sso && (rest > 3 || (rest == 3 && !no_browser) || strchr(args[1], '@') == NULL))
      return usage_error("usage: kcps login --sso EMAIL [--no-browser]");
    if (sso)
      rc = cmd_login_sso(&c, args[1], !no_browser);
    else if (rest == 1 && strcmp(args[0], "--resume") == 0)
      rc = cmd_login(&c, NULL);
    else if (rest != 1 || args[0][0] == '-' || strchr(args[0], '@') == NULL)
      return usage_error(rest == 0 ? "login needs the account's email: kcps login EMAIL"
                                   : "usage: kcps login EMAIL | kcps login --resume (the "
                                     "password is never an argument; it is asked for)");
    else
      rc = cmd_login(&c, args[0]);
  } else if (strcmp(command, "logout") == 0) {
    if (rest != 0)
      return usage_error("logout takes no arguments");
    rc = cmd_logout(&c);
  } else if (strcmp(command, "status") == 0) {
    if (rest != 0)
      return usage_error("status takes no arguments");
    rc = cmd_status(&c);
  } else if (strcmp(command, "jobs") == 0) {
    bool as_json = false;
    for (int j = 0; j < rest; j++) {
      if (strcmp(args[j], "--json") == 0)
        as_json = true;
      else
        return usage_error("jobs: unknown argument %s", args[j]);
    }
    rc = cmd_jobs(&c, as_json);
  } else if (strcmp(command, "release") == 0) {
    rc = cmd_release(&c, rest, args);
  } else if (strcmp(command, "delete") == 0) {
    if (rest != 1 || args[0][0] == '-')
      return usage_error("usage: kcps delete JOB (the id kcps jobs shows)");
    rc = cmd_delete(&c, args[0]);
  } else if (strcmp(command, "spool-mode") == 0) {
    if (rest > 1 || (rest == 1 && strcmp(args[0], "local") != 0 &&
                     strcmp(args[0], "cloud") != 0 && strcmp(args[0], "default") != 0))
      return usage_error("usage: kcps spool-mode [local|cloud|default]");
    rc = cmd_spool_mode(&c, rest == 1 ? args[0] : NULL);
  } else if (strcmp(command, "printer") == 0) {
    bool show_json = rest == 3 && strcmp(args[0], "show") == 0 && strcmp(args[2], "--json") == 0;
    if (rest == 2 && strcmp(args[0], "forget") == 0)
      rc = cmd_printer_forget(&c, args[1]);
    else if ((rest == 2 || show_json) && strcmp(args[0], "show") == 0)
      rc = cmd_printer_show(&c, args[1], show_json);
    else
      return usage_error("usage: kcps printer show URI [--json] | kcps printer forget URI");
  } else if (strcmp(command, "printers") == 0) {
    if (rest > 1 || (rest == 1 && strcmp(args[0], "--json") != 0))
      return usage_error("usage: kcps printers [--json]");
    rc = cmd_printers(&c, rest == 1);
  } else {
    return usage_error("unknown command %s", command);
  }
  if (c.response != NULL)
    json_node_unref(c.response);
  return rc;
}
