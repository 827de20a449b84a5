/* Direct printing (issue 5): a spooled job released to an IPP or IPPS
 * printer by kcpsd itself. The releaser runs each release on a worker
 * thread: capabilities (Get-Printer-Attributes), PDF or raster, the printer
 * job followed to its end (Get-Job-Attributes), the spool job marked printed
 * and the usage recorded only when the printer says completed. */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>
#include <stdbool.h>
#include <sys/types.h>

#include <cups/cups.h>
#include <cups/raster.h>

#include "client/usage-outbox.h"
#include "spool/spool.h"

G_BEGIN_DECLS

typedef struct kcps_releaser_s kcps_releaser_t;

#define KCPS_RELEASE_ERROR (kcps_release_error_quark())
GQuark kcps_release_error_quark(void);

typedef enum {
  KCPS_RELEASE_ERROR_BAD_REQUEST,  /* malformed release request (message names the field) */
  KCPS_RELEASE_ERROR_NOT_FOUND,    /* no such job or release for this account */
  KCPS_RELEASE_ERROR_CONFLICT,     /* job printed already, or a release of it is running */
  KCPS_RELEASE_ERROR_UNSUPPORTED,  /* the printer cannot do what was asked */
  KCPS_RELEASE_ERROR_TLS,          /* certificate not trusted or changed since pinned */
  KCPS_RELEASE_ERROR_IO            /* state file, spool or document failure */
} kcps_release_error_t;

/* Colour wish of a release. */
typedef enum {
  KCPS_COLOR_AUTO = 0, /* colour where the printer has it */
  KCPS_COLOR_MONO,
  KCPS_COLOR_COLOR
} kcps_color_t;

/* What a user asks for; strings owned by the caller. */
typedef struct kcps_release_opts_s {
  const char *printer; /* ipp://host[:port]/path or ipps://... */
  int copies;          /* 1 to 999 */
  kcps_color_t color;
  bool duplex;
} kcps_release_opts_t;

/* What a printer says it can do (from Get-Printer-Attributes). */
typedef struct kcps_printer_caps_s {
  bool pdf, pwg, urf;     /* document-format-supported */
  bool create_job;        /* operations-supported has Create-Job and Send-Document */
  bool color;             /* print-color-mode-supported has color (or raster types) */
  bool duplex;            /* sides-supported has two-sided-long-edge */
  int copies_max;         /* copies-supported upper bound; 1 when absent */
  int pwg_res[8];         /* pwg-raster-document-resolution-supported (square, dpi) */
  int n_pwg_res;
  bool pwg_srgb8, pwg_sgray8; /* pwg-raster-document-type-supported */
  int urf_res[8];         /* urf-supported RS values */
  int n_urf_res;
  bool urf_srgb24, urf_w8; /* urf-supported SRGB24 / W8 */
} kcps_printer_caps_t;

/* Reads caps from a Get-Printer-Attributes response (any content: the
 * printer is not trusted). Never fails; missing attributes mean "no". */
void kcps_release_caps_from_ipp(ipp_t *response, kcps_printer_caps_t *caps);

/* The raster plan for a job: NULL format when the printer takes PDF. */
typedef struct kcps_raster_plan_s {
  const char *format;  /* "application/pdf", "image/pwg-raster" or "image/urf" */
  int dpi;
  bool color;          /* srgb_8 / SRGB24 rather than sgray_8 / W8 */
} kcps_raster_plan_t;

/* Picks the format, resolution and colour space for opts on a printer with
 * caps. False + KCPS_RELEASE_ERROR_UNSUPPORTED naming what is missing. */
bool kcps_release_plan(const kcps_printer_caps_t *caps, const kcps_release_opts_t *opts,
                       kcps_raster_plan_t *plan, GError **error);

/* Writes the PDF on pdf_fd (taken: closed in every case) as PWG raster or
 * URF per plan, page by page, through write_cb (returns the bytes written,
 * or -1). Memory: one page. *pages gets the pages written. */
bool kcps_release_rasterize(int pdf_fd, const kcps_raster_plan_t *plan, bool duplex,
                            cups_raster_iocb_t write_cb, void *data, int *pages,
                            GError **error);

/* Parses a release request body {"printer","copies","color","duplex"}.
 * opts->printer points into *keep (json_node_unref it after use). */
bool kcps_release_parse_request(const char *body, size_t len, kcps_release_opts_t *opts,
                                JsonNode **keep, GError **error);

/* Checks a printer URI: ipp:// or ipps://, a host, at most 1024 bytes.
 * *key (g_free) gets "host:port" (lower case, default port filled in), the
 * name under which an IPPS certificate is pinned. */
bool kcps_release_check_uri(const char *uri, char **key, GError **error);

/* The trust-on-first-use store of printer certificates: lines
 * "host:port sha256-hex" in a 0600 file. */
typedef enum {
  KCPS_PIN_NEW,      /* unknown printer: now pinned */
  KCPS_PIN_MATCH,    /* the pinned certificate */
  KCPS_PIN_CHANGED   /* another certificate than the pinned one: refuse */
} kcps_pin_result_t;

/* Looks key up in the store at path and pins fingerprint when the printer
 * is new. False + KCPS_RELEASE_ERROR_IO when the file cannot be read or
 * written. */
bool kcps_release_pin_check(const char *path, const char *key, const char *fingerprint,
                            kcps_pin_result_t *result, GError **error);
/* The pinned fingerprint of key (g_free), *fingerprint NULL when none;
 * reads only. False + KCPS_RELEASE_ERROR_IO when the file cannot be read. */
bool kcps_release_pin_lookup(const char *path, const char *key, char **fingerprint,
                             GError **error);
/* The certificate an IPPS connection got: *fingerprint (g_free) the SHA-256
 * of the leaf in hex, *ca_ok whether it chains to the system store and names
 * host (a name or an address). False when the printer sent none. */
bool kcps_release_certificate(http_t *http, const char *host, char **fingerprint, bool *ca_ok);
/* Removes key's pin; *removed tells whether there was one. */
bool kcps_release_pin_forget(const char *path, const char *key, bool *removed, GError **error);

/* --- the release journal (release-journal.c) ----------------------------------- */

/* One release that reached the printer or may have, as kept in
 * STATE_DIR/releases.jsonl (0600): one JSON object a line, the newest line
 * of an id wins. state: "sending" (written before the first byte goes to
 * the printer; printer_job_id 0 until Create-Job answered), "printing" (the
 * printer has the whole job), or a final state (completed, aborted,
 * canceled, failed): the release is over and compaction drops it. */
typedef struct kcps_release_record_s {
  char *id;            /* release id (a UUID) */
  uid_t uid;
  char *job_id;        /* spool job id */
  char *printer;       /* printer URI */
  int copies;
  kcps_color_t color;
  bool duplex;
  int pages;           /* the job's pages (what is charged per copy) */
  char *format;        /* the plan's document-format, or NULL */
  bool create_job;     /* Create-Job + Send-Document (else Print-Job) */
  gint64 created;
  char *state;
  int printer_job_id;  /* 0 while unknown */
  char *user;          /* the server account the release was started under, or NULL */
} kcps_release_record_t;

void kcps_release_record_free(kcps_release_record_t *rec);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(kcps_release_record_t, kcps_release_record_free)

/* Whether state ends a release (anything but "sending" and "printing"). */
bool kcps_release_state_final(const char *state);

/* Parses one journal line (no newline; any bytes: the file may be torn or
 * damaged). NULL + KCPS_RELEASE_ERROR_BAD_REQUEST naming what is wrong. */
kcps_release_record_t *kcps_release_journal_parse_line(const char *line, size_t len,
                                                       GError **error);
/* The line of rec, newline included (g_free). */
char *kcps_release_journal_line(const kcps_release_record_t *rec);

typedef struct kcps_release_journal_s kcps_release_journal_t;

/* Opens the journal at path: replays it (a torn last line and malformed
 * lines are skipped with a warning naming them), compacts it (rewritten
 * beside with only the unfinished records, fsynced, renamed, the folder
 * fsynced; 0600) and gives the unfinished records in *unfinished
 * (kcps_release_record_t*, owned by the array). Never NULL: a file that
 * cannot be read is warned about, and later writes create it. */
kcps_release_journal_t *kcps_release_journal_open(const char *path, GPtrArray **unfinished);
/* Appends rec's line and fdatasyncs; when rec ends the last open release,
 * empties the file (nothing in it is needed any more). False +
 * KCPS_RELEASE_ERROR_IO. */
bool kcps_release_journal_write(kcps_release_journal_t *journal,
                                const kcps_release_record_t *rec, GError **error);
void kcps_release_journal_free(kcps_release_journal_t *journal);

/* Whether a printer job's name and owner (from Get-Jobs) mark it as the job
 * of release_id sent as user: job-name carries "[kcps:" + the release id's
 * first 8 characters + "]", and job-originating-user-name, when the printer
 * gives one, is user. */
bool kcps_release_job_matches(const char *release_id, const char *user, const char *job_name,
                              const char *job_user);
/* The job-name sent for a release: the document's name (or "KCPS job")
 * followed by " [kcps:XXXXXXXX]" (g_free; at most 255 bytes, the name
 * shortened at a character boundary). */
char *kcps_release_job_name(const char *document_name, const char *release_id);

/* The releaser: state_dir holds printer-pins, usage.jsonl and the release
 * journal releases.jsonl (0600). The journal's unfinished releases are
 * loaded at once (GET /v1/releases shows them, their jobs cannot be released
 * again) and followed once kcps_releaser_resume is called. */
kcps_releaser_t *kcps_releaser_new(kcps_spool_t *spool, const char *state_dir);
/* Follows the unfinished releases of the journal again, each on a worker
 * thread: a known printer job to its end; a job the printer may have taken
 * before answering is looked for (Get-Jobs, by its job-name). Call once,
 * after the hooks and the changed callback are set. */
void kcps_releaser_resume(kcps_releaser_t *releaser);
/* Stops following running releases (their jobs stay held, their journal
 * records stay for the next start), joins the workers and frees. NULL is a
 * no-op. */
void kcps_releaser_free(kcps_releaser_t *releaser);

/* Starts releasing job_id of uid per opts on a worker thread. Returns the
 * release as JSON (json_node_unref), or NULL + KCPS_RELEASE_ERROR_NOT_FOUND
 * (not uid's job), _CONFLICT (printed, or being released) or _BAD_REQUEST. */
JsonNode *kcps_releaser_start(kcps_releaser_t *releaser, uid_t uid, const char *job_id,
                              const kcps_release_opts_t *opts, GError **error);
/* One release of uid as JSON, or NULL when uid has none by that id. */
JsonNode *kcps_releaser_get(kcps_releaser_t *releaser, uid_t uid, const char *release_id);
/* The latest release of job_id as JSON, or NULL. */
JsonNode *kcps_releaser_latest_for_job(kcps_releaser_t *releaser, const char *job_id);
/* Forgets the pinned certificate of the printer at uri. */
bool kcps_releaser_forget_printer(kcps_releaser_t *releaser, const char *uri, bool *removed,
                                  GError **error);

/* What kcpsd's server side does for the releaser (release-server.c; set by
 * daemon.c). Both run on the release's worker thread. */
typedef struct kcps_release_hooks_s {
  /* Before anything goes to the printer: the quota check of pages x copies
   * (colour or not). False + *message (g_free): the release fails with it. */
  bool (*check)(void *data, uid_t uid, const kcps_job_t *job, int copies, bool color,
                char **message);
  /* The usage record of a completed release; rec->user is the server
   * account the release was started under (NULL when none): the hook
   * counts it for the account uid is logged in to now, or, when nobody is
   * (kcpsd restarted since), for that one, once it logs in again. */
  void (*used)(void *data, kcps_usage_record_t *rec);
  /* The server account (g_free) uid is logged in to now, or NULL. May be NULL. */
  char *(*account)(void *data, uid_t uid);
  void *data;
} kcps_release_hooks_t;
/* Sets the hooks (copied); call before the first release. */
void kcps_releaser_set_hooks(kcps_releaser_t *releaser, const kcps_release_hooks_t *hooks);

/* Who is told of each state change of a release (kcpsd's push channel),
 * on the thread that changed it, with no lock held; ended: the release is
 * over (completed, aborted, canceled or failed). Call before the first
 * release. */
typedef void (*kcps_release_changed_cb_t)(uid_t uid, const char *job_id,
                                          const char *release_id, const char *state,
                                          void *data);
void kcps_releaser_set_changed(kcps_releaser_t *releaser, kcps_release_changed_cb_t cb,
                               void *data);

/* Testing: the printer-gone window (default 15 s) and the first retry delay
 * (default 500 ms), in milliseconds. */
void kcps_releaser_set_timing(kcps_releaser_t *releaser, int gone_ms, int retry_ms);

G_END_DECLS
