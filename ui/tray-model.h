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
} kcps_tray_job_info_t;

/* The icon's state, from the status and the jobs. */
typedef enum {
  KCPS_TRAY_ICON_LOGGED_OUT,
  KCPS_TRAY_ICON_IDLE,
  KCPS_TRAY_ICON_JOBS_WAITING,
  KCPS_TRAY_ICON_ERROR /* kcpsd unreachable or failing */
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

/* The icon state for a status and the number of jobs waiting. */
kcps_tray_icon_state_t kcps_tray_icon_state(const kcps_tray_status_t *status, guint waiting);
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

/* The message the login window shows for a failed POST /v1/login: http_status
 * 0 means kcpsd could not be reached. It never tells an unknown account from
 * a wrong password or a locked account (kcpsd's message is not shown, as it
 * comes from the server's wording). Static or translated string. */
const char *kcps_tray_login_message(long http_status);

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

/* How long before a job's `expires` the tray warns. */
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

G_END_DECLS
