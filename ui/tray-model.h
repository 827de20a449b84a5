/* The tray's view model: what kcpsd's local API (5572) says, parsed, and how
 * it is shown (sizes, times, states, the icon). Plain C over GLib and
 * json-glib, no GTK, so that Check tests run it without a display. */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>
#include <stdbool.h>

G_BEGIN_DECLS

/* What GET /v1/status said, or that kcpsd could not be reached. */
typedef struct kcps_tray_status_s {
  bool reachable;   /* kcpsd answered */
  bool logged_in;
  char *user;       /* OS account, or NULL */
  char *email;      /* server account, or NULL */
  char *server;     /* server URL, or NULL */
  char *spool_mode; /* "local"/"cloud" when kcpsd says so, or NULL */
  /* "quota" (absent or null: not known): unlimited, or pages left of a limit. */
  bool quota_known;
  bool quota_unlimited;
  gint64 quota_pages; /* the month's limit */
  gint64 quota_left;  /* pages left this month */
} kcps_tray_status_t;

/* One job of GET /v1/jobs. */
typedef struct kcps_tray_job_info_s {
  char *id;
  char *name;
  char *state;     /* as kcpsd says: spooled, registered, pulled, printed, ... */
  char *server_id; /* or NULL */
  gint64 pages;
  gint64 size;     /* bytes */
  gint64 created;  /* unix seconds */
  /* Members kcpsd may add (read when present, never required): */
  char *spool;     /* "local" or "cloud", or NULL */
  gint64 expires;  /* unix seconds when the spool deletes it, or 0 */
  char *release_state; /* the state of the job's latest release, or NULL */
  char *release_id;    /* that release's id, or NULL */
  gint64 upload_done;  /* "upload": bytes the server confirmed, or -1 when absent */
  gint64 upload_total;
} kcps_tray_job_info_t;

/* The icon's state, from the status and the jobs. */
typedef enum {
  KCPS_TRAY_ICON_LOGGED_OUT,
  KCPS_TRAY_ICON_IDLE,
  KCPS_TRAY_ICON_JOBS_WAITING,
  KCPS_TRAY_ICON_ERROR, /* kcpsd unreachable or failing */
  KCPS_TRAY_ICON_UPLOADING /* logged in, a job on its way to the cloud spool */
} kcps_tray_icon_state_t;

/* Parses the body of GET /v1/status into *status (cleared first; free with
 * kcps_tray_status_clear). False with an error naming the member when the
 * answer is not what the API promises. */
bool kcps_tray_status_parse(JsonNode *node, kcps_tray_status_t *status, GError **error);
void kcps_tray_status_clear(kcps_tray_status_t *status);

/* Parses the body of GET /v1/jobs: a GPtrArray of kcps_tray_job_info_t
 * (caller unrefs; the array frees its items), or NULL with an error naming
 * the first malformed job and member. */
GPtrArray *kcps_tray_jobs_parse(JsonNode *node, GError **error);
void kcps_tray_job_info_free(kcps_tray_job_info_t *job);

/* True for a job still to print (spooled, registered or pulled). */
bool kcps_tray_job_is_waiting(const char *state);

/* "1 byte", "900 bytes", "12.3 kB", "1.5 MB" (SI units, as GNOME shows
 * files); "—" for a negative size. Caller g_frees. */
char *kcps_tray_format_size(gint64 bytes);

/* "1 page", "12 pages"; "—" when unknown (negative). Caller g_frees. */
char *kcps_tray_format_pages(gint64 pages);

/* When a job was spooled, seen from now (both in now's time zone):
 * "Today, 10:42", "Yesterday, 18:05", "28 Nov, 09:12" (this year),
 * "28 Nov 2025" (before); "—" for 0 or a time that cannot be shown.
 * Caller g_frees. */
char *kcps_tray_format_time(gint64 unix_seconds, GDateTime *now);

/* What a job's state means to a person ("Waiting to upload", ...); the
 * state itself when unknown. Static or translated string, do not free. */
const char *kcps_tray_state_label(const char *state);

/* One line for a screen reader or a row: "report.pdf, 2 pages, 12.3 kB,
 * Today, 10:42, Waiting at the printer". Caller g_frees. */
char *kcps_tray_job_summary(const kcps_tray_job_info_t *job, GDateTime *now);

/* The jobs window's search: text as compared (NFKC, case-folded, split into
 * words at white space; NULL for no word or invalid UTF-8: all match).
 * Caller g_strfreevs. */
char **kcps_tray_search_words(const char *text);
/* Whether a job matches: every word is in its name or its state label,
 * compared as kcps_tray_search_words compares. */
bool kcps_tray_job_matches(char *const *words, const char *name, const char *state_label);

/* The icon state for a status and the number of jobs waiting. */
kcps_tray_icon_state_t kcps_tray_icon_state(const kcps_tray_status_t *status, guint waiting);
/* The same, knowing how many jobs are uploading (uploading wins over jobs
 * waiting; logged out and error win over both). */
kcps_tray_icon_state_t kcps_tray_icon_state_jobs(const kcps_tray_status_t *status, guint waiting,
                                                 guint uploading);
/* Whether a job is on its way to the cloud spool: spooled or uploading, with
 * an upload of which the server confirmed less than all (done < total). */
bool kcps_tray_job_uploading(const char *state, gint64 upload_done, gint64 upload_total);
/* The theme icon name for a state (freedesktop / Adwaita names). */
const char *kcps_tray_icon_name(kcps_tray_icon_state_t state);
/* The StatusNotifierItem Status for a state: "Active" or "NeedsAttention". */
const char *kcps_tray_icon_sni_status(kcps_tray_icon_state_t state);
/* A short word for the state, stable, for tests and logs ("logged-out"...). */
const char *kcps_tray_icon_state_id(kcps_tray_icon_state_t state);

/* The first, disabled line of the menu: who is logged in and the spool
 * mode where known ("alice@a.test · local spool"), "Not logged in", or
 * "KCPS service not running". Caller g_frees. */
char *kcps_tray_who_line(const kcps_tray_status_t *status);

/* The tooltip for the icon: the who line and, when any, how many jobs wait.
 * Caller g_frees. */
char *kcps_tray_tooltip(const kcps_tray_status_t *status, guint waiting);
/* The same with a line for the jobs uploading, when any. Caller g_frees. */
char *kcps_tray_tooltip_jobs(const kcps_tray_status_t *status, guint waiting, guint uploading);

/* The message the login window shows for a failed POST /v1/login: http_status
 * 0 means kcpsd could not be reached. It never tells an unknown account from
 * a wrong password or a locked account (kcpsd's message is not shown, as it
 * comes from the server's wording). Static or translated string. */
const char *kcps_tray_login_message(long http_status);

/* "Too many failed attempts. Try again after 15:42." with retry_at_unix in
 * the local time zone, with its date when it is not now_unix's day; the
 * refusal of kcps_tray_login_message(401) when retry_at_unix is 0 or not a
 * time. Translated; caller g_frees. */
char *kcps_tray_locked_message(gint64 retry_at_unix, gint64 now_unix);

/* A desktop notification the tray would show, decided by comparing two
 * reads of /v1/jobs. */
typedef enum {
  KCPS_TRAY_NOTICE_SPOOLED, /* new jobs to print (one notice for all of a read) */
  KCPS_TRAY_NOTICE_PRINTED,
  KCPS_TRAY_NOTICE_FAILED,  /* the job's (or its release's) state became failed, aborted
                               or canceled */
  KCPS_TRAY_NOTICE_EXPIRING, /* waiting, and the spool deletes it within a day */
  KCPS_TRAY_NOTICE_UPLOADED, /* the job reached the cloud spool */
  KCPS_TRAY_NOTICE_QUOTA_LOW /* few pages left this month */
} kcps_tray_notice_kind_t;

typedef struct kcps_tray_notice_s {
  kcps_tray_notice_kind_t kind;
  char *id;    /* stable per job and kind: a repeat replaces, never stacks */
  char *title; /* translated */
  char *body;  /* translated */
} kcps_tray_notice_t;

/* How long before a job's `expires` the tray warns at most (a quarter of the
 * job's time in the spool, from `created`, when that is shorter). */
#define KCPS_TRAY_EXPIRY_WARNING (24 * G_TIME_SPAN_HOUR / G_TIME_SPAN_SECOND)

/* The notices for a change from before to after (arrays of
 * kcps_tray_job_info_t; before NULL: the first read, which tells nothing).
 * warned holds the ids of jobs already warned about expiry (updated here).
 * Returns a GPtrArray of kcps_tray_notice_t (caller unrefs). */
GPtrArray *kcps_tray_notices(GPtrArray *before, GPtrArray *after, GHashTable *warned,
                             GDateTime *now);
void kcps_tray_notice_free(kcps_tray_notice_t *notice);

/* The menu's quota line: "12 pages left this month", "No page limit this
 * month", or NULL when the quota is not known. Caller g_frees. */
char *kcps_tray_quota_line(const kcps_tray_status_t *status);
/* Whether few pages are left: at most KCPS_TRAY_QUOTA_LOW_PAGES, or at most
 * a tenth of the limit. False when unknown or unlimited. */
#define KCPS_TRAY_QUOTA_LOW_PAGES 10
bool kcps_tray_quota_low(const kcps_tray_status_t *status);
/* The quota-low notice for status (caller frees), or NULL when the quota
 * is not low. */
kcps_tray_notice_t *kcps_tray_quota_notice(const kcps_tray_status_t *status);

/* --- the jobs window: previews, releases, progress (tray-jobs.c) --------- */

/* A progress bar's fraction for done of total, in 0..1; -1 when it cannot be
 * known (total not positive or done negative). */
double kcps_tray_progress_fraction(gint64 done, gint64 total);
/* An upload's progress bar text: "Uploading: 1.2 MB of 3.4 MB (35 %)", or
 * NULL when there is nothing to show (done < 0 or total <= 0, or the upload
 * is complete). Caller g_frees. */
char *kcps_tray_upload_progress(gint64 done, gint64 total);
/* A release's state for people ("Sending to the printer…", "Printed", ...),
 * or NULL for NULL. Static or translated string, do not free. */
const char *kcps_tray_release_label(const char *state);
/* Whether a release in that state is still on its way (pending, retrying,
 * sending, printing). */
bool kcps_tray_release_running(const char *state);
/* How far a release is along, for its progress bar: pending 0.1,
 * retrying 0.1, sending 0.4, printing 0.7, any end 1.0; -1 for NULL or an
 * unknown state. */
double kcps_tray_release_fraction(const char *state);
/* Whether a job can be released from the tray: waiting in the local spool
 * (spooled, registered or pulled) and no release of it running. */
bool kcps_tray_job_releasable(const kcps_tray_job_info_t *job);

/* One discovered printer of GET /v1/printers. */
typedef struct kcps_tray_printer_s {
  char *name; /* as announced, or the URI when it has none */
  char *uri;
} kcps_tray_printer_t;
void kcps_tray_printer_free(kcps_tray_printer_t *printer);
/* The printers of GET /v1/printers ({"printers":[{"name","uri",...}]}): a
 * GPtrArray of kcps_tray_printer_t (caller unrefs), or NULL with an error. */
GPtrArray *kcps_tray_printers_parse(JsonNode *node, GError **error);

/* A printer's capabilities (GET /v1/printers?uri=). */
typedef struct kcps_tray_caps_s {
  bool color;
  bool duplex;
  gint64 copies_min;
  gint64 copies_max;
} kcps_tray_caps_t;
/* Parses {"printer":{"capabilities":{"color","duplex","copies":{"min","max"}}}};
 * false with an error naming the member. */
bool kcps_tray_caps_parse(JsonNode *node, kcps_tray_caps_t *caps, GError **error);

/* The release dialog's controls for a printer (caps NULL: not known yet, a
 * typed URI not asked about): the colour choice only when the printer
 * prints colour, duplex only when it has it, copies within its range
 * (1..999 when unknown, the API's bound). */
typedef struct kcps_tray_release_controls_s {
  bool show_color;
  bool show_duplex;
  int copies_min;
  int copies_max;
} kcps_tray_release_controls_t;
#define KCPS_TRAY_COPIES_MAX 999
void kcps_tray_release_controls(const kcps_tray_caps_t *caps,
                                kcps_tray_release_controls_t *controls);

/* Whether text is a printer URI the release accepts: ipp:// or ipps:// with
 * a host (at most 1024 bytes, no spaces or control characters). */
bool kcps_tray_printer_uri_ok(const char *text);

/* The body of POST /v1/jobs/{id}/release. color: 1 colour, 0 mono, -1 the
 * printer's choice (member left out); copies clamped to 1..999. */
JsonNode *kcps_tray_release_body(const char *printer, int copies, int color, bool duplex);

/* A release object (POST's 202 or GET /v1/releases/{id}): its id and state
 * (g_free), message (may be NULL); false when id or state is missing. */
bool kcps_tray_release_parse(JsonNode *node, char **id, char **state, char **message);

/* GET /v1/settings (and PUT's answer): the user's own spool mode (NULL: the
 * organization's), the one in effect, the organization's (NULL: not set or
 * not known yet). */
typedef struct kcps_tray_settings_s {
  char *spool_mode;
  char *effective_spool_mode;
  char *organization_spool_mode;
} kcps_tray_settings_t;
/* Parses the answer into *settings (cleared first); false with an error
 * naming the member. Free with kcps_tray_settings_clear. */
bool kcps_tray_settings_parse(JsonNode *node, kcps_tray_settings_t *settings, GError **error);
void kcps_tray_settings_clear(kcps_tray_settings_t *settings);
/* The spool mode choices, in the settings window's order. */
typedef enum {
  KCPS_TRAY_SPOOL_ORGANIZATION, /* null: follow the organization */
  KCPS_TRAY_SPOOL_LOCAL,
  KCPS_TRAY_SPOOL_CLOUD,
} kcps_tray_spool_choice_t;
/* The choice a settings answer stands for (settings NULL: the organization). */
kcps_tray_spool_choice_t kcps_tray_spool_choice(const kcps_tray_settings_t *settings);
/* The choice's label: "Organization default (local)" (the organization's mode,
 * else the one in effect, when known), "On this computer (local)", "In the
 * cloud". Caller g_frees. */
char *kcps_tray_spool_choice_label(kcps_tray_spool_choice_t choice,
                                   const kcps_tray_settings_t *settings);
/* The body of PUT /v1/settings for a choice. */
JsonNode *kcps_tray_settings_body(kcps_tray_spool_choice_t choice);
/* What the settings window says when PUT /v1/settings failed (http_status 0:
 * kcpsd not reached; 409: the cloud without a server). Static or translated. */
const char *kcps_tray_settings_message(long http_status);

/* The tray's own settings file, ~/.config/kcps/tray.ini ([tray] group). */
char *kcps_tray_ini_path(void);
/* A string key of it, or NULL when absent or unreadable. Caller g_frees. */
char *kcps_tray_ini_get(const char *key);
/* Sets (value NULL: removes) a string key, keeping the other keys; the file
 * is written 0600 in a 0700 folder. False with an error. */
bool kcps_tray_ini_set(const char *key, const char *value, GError **error);
/* The index of the printer named name in printers (kcps_tray_printer_t), or
 * 0 when it is not there (or name is NULL): the first is picked then. */
guint kcps_tray_printer_index(GPtrArray *printers, const char *name);
/* The same for the default printer kept in tray.ini (key default_printer). */
guint kcps_tray_default_printer_index(GPtrArray *printers);

G_END_DECLS
