/* kcps-mfp-sim: a simulated HyPAS MFP for tests and demos. It logs in as a
 * device, lets a user log in by PIN, lists their jobs, pulls one from the
 * desktop with a server-signed ticket and prints it to an IPP printer. */
#include "mfp-sim-private.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/crypto.h"

/* Command-line options; every command takes the same set. */
typedef struct options_s {
  char *server;
  char *server_ca;
  char *device;
  char *secret_file;
  char *pin;
  char *to;
  char *save_ticket;
  char *ticket_file;
  char *out;
  char *pull_url;
  char *pull_pin;
  int timeout_s;
  int pull_attempts;
  gint64 pull_rate;
} options_t;

static void
options_clear(options_t *o)
{
  if (o->pin)
    explicit_bzero(o->pin, strlen(o->pin));
  g_free(o->server);
  g_free(o->server_ca);
  g_free(o->device);
  g_free(o->secret_file);
  g_free(o->pin);
  g_free(o->to);
  g_free(o->save_ticket);
  g_free(o->ticket_file);
  g_free(o->out);
  g_free(o->pull_url);
  g_free(o->pull_pin);
}

/* A small secret file's contents, trimmed; NULL + error when unreadable or
 * empty. */
static char *
read_secret_file(const char *path, const char *what, GError **error)
{
  char *text = NULL;
  gsize len = 0;

  if (!g_file_get_contents(path, &text, &len, error)) {
    g_prefix_error(error, "cannot read the %s: ", what);
    return NULL;
  }
  g_strstrip(text);
  if (!*text) {
    g_free(text);
    g_set_error(error, KCPS_MFP_ERROR, KCPS_MFP_ERROR_USAGE, "the %s %s is empty", what, path);
    return NULL;
  }
  return text;
}

/* Fills the session from the options: the device secret comes from
 * --secret-file or KCPS_DEVICE_SECRET, never from argv. */
static bool
session_init(kcps_mfp_t *mfp, const options_t *o, GError **error)
{
  if (!o->server || !o->device) {
    g_set_error(error, KCPS_MFP_ERROR, KCPS_MFP_ERROR_USAGE, "--server and --device are needed");
    return false;
  }
  mfp->server = g_strdup(o->server);
  while (g_str_has_suffix(mfp->server, "/"))
    mfp->server[strlen(mfp->server) - 1] = '\0';
  mfp->server_ca = g_strdup(o->server_ca);
  mfp->device = g_strdup(o->device);
  mfp->timeout_s = 30;
  if (o->secret_file) {
    mfp->secret = read_secret_file(o->secret_file, "device secret file", error);
    return mfp->secret != NULL;
  }
  const char *env = g_getenv("KCPS_DEVICE_SECRET");
  if (env && *env) {
    mfp->secret = g_strstrip(g_strdup(env));
    return true;
  }
  g_set_error(error, KCPS_MFP_ERROR, KCPS_MFP_ERROR_USAGE,
              "no device secret: give --secret-file FILE or set KCPS_DEVICE_SECRET");
  return false;
}

/* The PIN from --pin or KCPS_PIN; NULL + error when neither is set. */
static const char *
pin_of(const options_t *o, GError **error)
{
  const char *pin = o->pin ? o->pin : g_getenv("KCPS_PIN");

  if (!pin || !*pin) {
    g_set_error(error, KCPS_MFP_ERROR, KCPS_MFP_ERROR_USAGE,
                "no PIN: give --pin PIN or set KCPS_PIN");
    return NULL;
  }
  return pin;
}

/* Device + PIN login and the job list, which every command starts with. */
static GPtrArray *
login_and_list(kcps_mfp_t *mfp, const options_t *o, GError **error)
{
  const char *pin = pin_of(o, error);

  if (!pin || !kcps__mfp_login(mfp, pin, error))
    return NULL;
  return kcps__mfp_list_jobs(mfp, error);
}

static kcps_mfp_job_t *
find_job(GPtrArray *jobs, const char *id)
{
  for (guint i = 0; i < jobs->len; i++) {
    kcps_mfp_job_t *job = g_ptr_array_index(jobs, i);
    if (strcmp(job->id, id) == 0)
      return job;
  }
  return NULL;
}

/* A job name fit for one tab-separated line. */
static char *
printable_name(const char *name)
{
  char *copy = g_strdup(name ? name : "");

  for (char *p = copy; *p; p++)
    if ((unsigned char)*p < 0x20 || *p == 0x7f)
      *p = ' ';
  return copy;
}

/* jobs: one line a job waiting for the user at this device. */
static bool
command_jobs(kcps_mfp_t *mfp, const options_t *o, GError **error)
{
  g_autoptr(GPtrArray) jobs = login_and_list(mfp, o, error);

  if (!jobs)
    return false;
  for (guint i = 0; i < jobs->len; i++) {
    kcps_mfp_job_t *job = g_ptr_array_index(jobs, i);
    g_autofree char *name = printable_name(job->name);
    printf("%s\t%s\t%" G_GINT64_FORMAT "\n", job->id, name, job->pages);
  }
  return fflush(stdout) == 0;
}

/* requesting-user-name for the printer: the local part of the email. */
static char *
user_name_of(const char *email)
{
  const char *at = strchr(email, '@');

  return at && at != email ? g_strndup(email, (gsize)(at - email)) : g_strdup(email);
}

/* Posts a failed log after a failure, keeping the first error. */
static void
post_failed_log(kcps_mfp_t *mfp, const char *job_id)
{
  g_autoptr(GError) error = NULL;

  if (!kcps__mfp_post_log(mfp, job_id, 0, false, &error))
    g_printerr("kcps-mfp-sim: also could not post the failed job log: %s\n", error->message);
}

/* Pulls into fd (empty) with *ticket; when the connection fails or breaks
 * off (the desktop restarting, a network cut), asks the server for a fresh
 * ticket and continues with Range from the bytes already held, up to
 * --pull-attempts times, waiting 1, 2, 4, 8, 8 … s in between. A refusal
 * (HTTP 4xx/5xx) ends it at once. Every ticket is wiped after use. */
static bool
pull_resuming(kcps_mfp_t *mfp, const options_t *o, const char *job_id, char **ticket,
              const char *pull_url, const char *pull_pin, int fd, GError **error)
{
  int attempts = o->pull_attempts > 0 ? o->pull_attempts : 5;
  unsigned wait_s = 1;
  for (int attempt = 1;; attempt++) {
    if (*ticket == NULL) {
      g_autofree char *url = NULL, *pin = NULL;
      if (!kcps__mfp_get_ticket(mfp, job_id, ticket, &url, &pin, error))
        return false;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || lseek(fd, 0, SEEK_END) < 0) {
      g_set_error(error, KCPS_MFP_ERROR, KCPS_MFP_ERROR_IO, "the pulled file: %s",
                  g_strerror(errno));
      return false;
    }
    guint64 have = (guint64)st.st_size;
    if (have > 0)
      fprintf(stderr, "kcps-mfp-sim: resuming the pull at byte %" G_GUINT64_FORMAT
                      " with a fresh ticket\n", have);
    long status = 0;
    g_autoptr(GError) local = NULL;
    bool ok = kcps__mfp_pull(pull_url, pull_pin, *ticket, fd, have, o->pull_rate, 300, &status,
                             &local);
    explicit_bzero(*ticket, strlen(*ticket));
    g_clear_pointer(ticket, g_free);
    if (ok) {
      if (have > 0)
        fprintf(stderr, "kcps-mfp-sim: resumed pull done (HTTP %ld)\n", status);
      return true;
    }
    if (status != 0 || attempt >= attempts) {
      g_propagate_error(error, g_steal_pointer(&local));
      return false;
    }
    if (fstat(fd, &st) == 0)
      fprintf(stderr, "kcps-mfp-sim: the pull broke off with %" G_GINT64_FORMAT
                      " bytes (%s); trying again in %u s\n", (gint64)st.st_size, local->message,
              wait_s);
    g_usleep((gulong)wait_s * G_USEC_PER_SEC);
    wait_s = MIN(wait_s * 2, 8u);
  }
}

/* print: ticket, pull, checksum, Print-Job, follow, job log. */
static bool
command_print(kcps_mfp_t *mfp, const options_t *o, const char *job_id, GError **error)
{
  if (!o->to) {
    g_set_error(error, KCPS_MFP_ERROR, KCPS_MFP_ERROR_USAGE,
                "print needs --to ipp://HOST:PORT/PATH");
    return false;
  }
  g_autoptr(GPtrArray) jobs = login_and_list(mfp, o, error);
  if (!jobs)
    return false;
  kcps_mfp_job_t *job = find_job(jobs, job_id);
  if (!job) {
    g_set_error(error, KCPS_MFP_ERROR, KCPS_MFP_ERROR_SERVER, "job %s is not waiting for %s at %s",
                job_id, mfp->user_email, mfp->device);
    return false;
  }
  if (!job->sha256 || strlen(job->sha256) != 64) {
    g_set_error(error, KCPS_MFP_ERROR, KCPS_MFP_ERROR_SERVER,
                "the server lists no valid sha256 for job %s", job_id);
    return false;
  }

  /* A ticket for this pull; the test may keep it to try it again. */
  g_autofree char *ticket = NULL, *pull_url = NULL, *pull_pin = NULL;
  if (!kcps__mfp_get_ticket(mfp, job_id, &ticket, &pull_url, &pull_pin, error))
    return false;
  if (o->save_ticket && !g_file_set_contents_full(o->save_ticket, ticket, -1,
                                                  G_FILE_SET_CONTENTS_CONSISTENT, 0600, error)) {
    g_prefix_error(error, "cannot save the ticket: ");
    return false;
  }

  /* Pull into a private temporary file, removed whatever happens. */
  g_autofree char *tmp_path = NULL;
  int fd = g_file_open_tmp("kcps-mfp-XXXXXX.pdf", &tmp_path, error);
  if (fd < 0)
    return false;
  bool ok = pull_resuming(mfp, o, job_id, &ticket, pull_url, pull_pin, fd, error);
  close(fd);

  /* The bytes must be those the desktop registered. */
  char sha256[65];
  if (ok && !kcps_crypto_sha256_file(tmp_path, sha256, error))
    ok = false;
  if (ok && g_ascii_strcasecmp(sha256, job->sha256) != 0) {
    g_set_error(error, KCPS_MFP_ERROR, KCPS_MFP_ERROR_CHECKSUM,
                "checksum mismatch for job %s: pulled %s, registered %s; not printing", job_id,
                sha256, job->sha256);
    unlink(tmp_path);
    post_failed_log(mfp, job_id);
    return false;
  }
  if (!ok) {
    unlink(tmp_path);
    return false;
  }

  /* --to file:PATH: a printer that keeps the document at PATH (0600) and
   * prints the pages the server lists; for tests without an IPP printer. */
  if (g_str_has_prefix(o->to, "file:")) {
    ok = rename(tmp_path, o->to + strlen("file:")) == 0;
    if (!ok) {
      g_set_error(error, KCPS_MFP_ERROR, KCPS_MFP_ERROR_IO, "cannot keep the document at %s: %s",
                  o->to + strlen("file:"), g_strerror(errno));
      unlink(tmp_path);
      post_failed_log(mfp, job_id);
      return false;
    }
    if (!kcps__mfp_post_log(mfp, job_id, job->pages, true, error))
      return false;
    printf("printed %s pages=%" G_GINT64_FORMAT " sha256=ok printer-job=0\n", job_id, job->pages);
    return fflush(stdout) == 0;
  }

  /* Print, then tell the server how it went. */
  g_autofree char *user_name = user_name_of(mfp->user_email);
  kcps_mfp_print_result_t result;
  long timeout_s = o->timeout_s > 0 ? o->timeout_s : 120;
  ok = kcps__mfp_print_file(o->to, tmp_path, job->name && *job->name ? job->name : job_id,
                            user_name, timeout_s, &result, error);
  unlink(tmp_path);
  if (!ok) {
    post_failed_log(mfp, job_id);
    return false;
  }
  gint64 pages = result.impressions > 0 ? result.impressions : job->pages;
  if (!kcps__mfp_post_log(mfp, job_id, pages, true, error))
    return false;
  printf("printed %s pages=%" G_GINT64_FORMAT " sha256=ok printer-job=%d\n", job_id, pages,
         result.printer_job_id);
  return fflush(stdout) == 0;
}

/* ticket: asks for a ticket and only saves it, so a test can present it
 * where it does not belong (another job's pull URL). */
static bool
command_ticket(kcps_mfp_t *mfp, const options_t *o, const char *job_id, GError **error)
{
  if (!o->save_ticket) {
    g_set_error(error, KCPS_MFP_ERROR, KCPS_MFP_ERROR_USAGE, "ticket needs --save-ticket FILE");
    return false;
  }
  const char *pin = pin_of(o, error);
  if (!pin || !kcps__mfp_login(mfp, pin, error))
    return false;
  g_autofree char *ticket = NULL, *pull_url = NULL, *pull_pin = NULL;
  if (!kcps__mfp_get_ticket(mfp, job_id, &ticket, &pull_url, &pull_pin, error))
    return false;
  bool ok = g_file_set_contents_full(o->save_ticket, ticket, -1, G_FILE_SET_CONTENTS_CONSISTENT,
                                     0600, error);
  explicit_bzero(ticket, strlen(ticket));
  if (!ok) {
    g_prefix_error(error, "cannot save the ticket: ");
    return false;
  }
  printf("ticket for %s saved to %s (pull_url %s)\n", job_id, o->save_ticket, pull_url);
  return fflush(stdout) == 0;
}

/* pull: one pull with a given ticket into --out, for the single-use test. */
static bool
command_pull(kcps_mfp_t *mfp, const options_t *o, const char *job_id, GError **error)
{
  if (!o->ticket_file || !o->out) {
    g_set_error(error, KCPS_MFP_ERROR, KCPS_MFP_ERROR_USAGE,
                "pull needs --ticket-file FILE and --out FILE");
    return false;
  }
  g_autofree char *ticket = read_secret_file(o->ticket_file, "ticket file", error);
  if (!ticket)
    return false;

  /* Where to pull from: given, or as the server lists the job. */
  g_autofree char *pull_url = g_strdup(o->pull_url);
  g_autofree char *pull_pin = g_strdup(o->pull_pin);
  g_autofree char *sha256_expected = NULL;
  if (!pull_url || !pull_pin) {
    g_autoptr(GPtrArray) jobs = login_and_list(mfp, o, error);
    if (!jobs)
      return false;
    kcps_mfp_job_t *job = find_job(jobs, job_id);
    if (!job || !job->pull_url || !job->pull_pin) {
      g_set_error(error, KCPS_MFP_ERROR, KCPS_MFP_ERROR_SERVER,
                  "job %s is not waiting for %s at %s; give --pull-url and --pull-pin", job_id,
                  mfp->user_email, mfp->device);
      return false;
    }
    g_free(pull_url);
    g_free(pull_pin);
    pull_url = g_strdup(job->pull_url);
    pull_pin = g_strdup(job->pull_pin);
    sha256_expected = g_strdup(job->sha256);
  }

  /* Into a temporary file beside --out, renamed only when complete. */
  g_autofree char *tmp_path = g_strconcat(o->out, ".XXXXXX", NULL);
  int fd = g_mkstemp_full(tmp_path, O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0) {
    g_set_error(error, KCPS_MFP_ERROR, KCPS_MFP_ERROR_IO, "cannot create %s: %s", tmp_path,
                g_strerror(errno));
    return false;
  }
  bool ok = kcps__mfp_pull(pull_url, pull_pin, ticket, fd, 0, 0, 300, NULL, error);
  explicit_bzero(ticket, strlen(ticket));
  if (ok && fsync(fd) != 0) {
    g_set_error(error, KCPS_MFP_ERROR, KCPS_MFP_ERROR_IO, "cannot write %s: %s", tmp_path,
                g_strerror(errno));
    ok = false;
  }
  close(fd);
  char sha256[65];
  if (ok && !kcps_crypto_sha256_file(tmp_path, sha256, error))
    ok = false;
  if (ok && sha256_expected && g_ascii_strcasecmp(sha256, sha256_expected) != 0) {
    g_set_error(error, KCPS_MFP_ERROR, KCPS_MFP_ERROR_CHECKSUM,
                "checksum mismatch for job %s: pulled %s, registered %s", job_id, sha256,
                sha256_expected);
    ok = false;
  }
  if (ok && rename(tmp_path, o->out) != 0) {
    g_set_error(error, KCPS_MFP_ERROR, KCPS_MFP_ERROR_IO, "cannot rename into %s: %s", o->out,
                g_strerror(errno));
    ok = false;
  }
  if (!ok) {
    unlink(tmp_path);
    return false;
  }
  printf("pulled %s sha256=%s\n", job_id, sha256);
  return fflush(stdout) == 0;
}

int
main(int argc, char **argv)
{
  options_t o = {0};
  GOptionEntry entries[] = {
      {"server", 0, 0, G_OPTION_ARG_STRING, &o.server, "Server base URL", "URL"},
      {"server-ca", 0, 0, G_OPTION_ARG_FILENAME, &o.server_ca,
       "Trust this certificate for the server", "FILE"},
      {"device", 0, 0, G_OPTION_ARG_STRING, &o.device, "Device name, e.g. MFP-1", "NAME"},
      {"secret-file", 0, 0, G_OPTION_ARG_FILENAME, &o.secret_file,
       "File holding the device secret (else env KCPS_DEVICE_SECRET)", "FILE"},
      {"pin", 0, 0, G_OPTION_ARG_STRING, &o.pin, "User PIN at the panel (else env KCPS_PIN)",
       "PIN"},
      {"to", 0, 0, G_OPTION_ARG_STRING, &o.to,
       "print: the IPP printer URI, or file:PATH (keep the document there)", "URI"},
      {"save-ticket", 0, 0, G_OPTION_ARG_FILENAME, &o.save_ticket,
       "print, ticket: write the ticket (used) to FILE (0600)", "FILE"},
      {"ticket-file", 0, 0, G_OPTION_ARG_FILENAME, &o.ticket_file, "pull: the ticket to present",
       "FILE"},
      {"out", 0, 0, G_OPTION_ARG_FILENAME, &o.out, "pull: where to write the document", "FILE"},
      {"pull-url", 0, 0, G_OPTION_ARG_STRING, &o.pull_url,
       "pull: the job's pull URL (else as the server lists the job)", "URL"},
      {"pull-pin", 0, 0, G_OPTION_ARG_STRING, &o.pull_pin,
       "pull: the pull port's key pin, sha256//...", "PIN"},
      {"timeout", 0, 0, G_OPTION_ARG_INT, &o.timeout_s,
       "print: give up after this many seconds (default 120)", "SECONDS"},
      {"pull-attempts", 0, 0, G_OPTION_ARG_INT, &o.pull_attempts,
       "print: tries of a pull that breaks off, each with a fresh ticket and Range (default 5)",
       "N"},
      {"pull-rate", 0, 0, G_OPTION_ARG_INT64, &o.pull_rate,
       "print: pull at most this many bytes a second (a slow MFP; default no limit)", "BYTES"},
      G_OPTION_ENTRY_NULL,
  };
  g_autoptr(GOptionContext) context =
      g_option_context_new("jobs | print JOB | pull JOB | ticket JOB");
  g_autoptr(GError) error = NULL;
  kcps_mfp_t mfp = {0};
  bool ok = false;

  g_option_context_set_summary(
      context, "A simulated HyPAS MFP: device login, PIN login, job list, pull with a\n"
               "server-signed ticket, printing to an IPP printer, job log.");
  g_option_context_add_main_entries(context, entries, NULL);
  if (!g_option_context_parse(context, &argc, &argv, &error)) {
    g_printerr("kcps-mfp-sim: %s\n", error->message);
    options_clear(&o);
    return 2;
  }
  const char *command = argc > 1 ? argv[1] : NULL;
  const char *job_id = argc > 2 ? argv[2] : NULL;
  bool needs_job = command && (strcmp(command, "print") == 0 || strcmp(command, "pull") == 0 ||
                               strcmp(command, "ticket") == 0);
  if (!command || (strcmp(command, "jobs") != 0 && !needs_job) || (needs_job && !job_id) ||
      argc > (needs_job ? 3 : 2)) {
    g_printerr("kcps-mfp-sim: usage: kcps-mfp-sim --server URL [--server-ca FILE] "
               "--device NAME --secret-file FILE jobs|print JOB|pull JOB|ticket JOB "
               "[options]\n");
    options_clear(&o);
    return 2;
  }

  if (session_init(&mfp, &o, &error)) {
    if (strcmp(command, "jobs") == 0)
      ok = command_jobs(&mfp, &o, &error);
    else if (strcmp(command, "print") == 0)
      ok = command_print(&mfp, &o, job_id, &error);
    else if (strcmp(command, "ticket") == 0)
      ok = command_ticket(&mfp, &o, job_id, &error);
    else
      ok = command_pull(&mfp, &o, job_id, &error);
  }
  if (!ok)
    g_printerr("kcps-mfp-sim: %s: %s\n", command,
               error ? error->message : "failed for an unknown reason");
  kcps__mfp_clear(&mfp);
  options_clear(&o);
  return ok ? 0 : 1;
}
