/* The local spool: each OS user's jobs as PDF files (0600) in a private
 * folder (0700) with a SQLite index (WAL). A job is durable (fsync of file
 * and folder, committed row) before kcps_spool_writer_commit() returns. */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

G_BEGIN_DECLS

typedef struct kcps_spool_s kcps_spool_t;
typedef struct kcps_spool_writer_s kcps_spool_writer_t;

typedef enum {
  KCPS_JOB_STATE_SPOOLED = 1,  /* durable here, not yet known to the server */
  KCPS_JOB_STATE_REGISTERED,   /* server knows it; waiting for a pull */
  KCPS_JOB_STATE_PULLED,       /* an MFP pulled it at least once */
  KCPS_JOB_STATE_PRINTED,      /* the server logged it printed */
  KCPS_JOB_STATE_DELETED
} kcps_job_state_t;

typedef struct kcps_job_s {
  char *id;            /* spool job id (UUID) */
  uid_t owner_uid;
  char *owner_name;    /* OS account */
  char *name;          /* document name (job-name) */
  char *format;        /* as received, e.g. application/pdf */
  int pages;
  gint64 size;         /* bytes of the spooled PDF */
  char sha256[65];     /* of the spooled PDF */
  kcps_job_state_t state;
  gint64 created;      /* unix seconds */
  char *server_id;     /* NULL until registered */
  char *server_user;   /* server account it was registered for, or NULL */
} kcps_job_t;

#define KCPS_SPOOL_ERROR (kcps_spool_error_quark())
GQuark kcps_spool_error_quark(void);

typedef enum {
  KCPS_SPOOL_ERROR_IO,          /* file system failure (message names the path) */
  KCPS_SPOOL_ERROR_DB,          /* index failure */
  KCPS_SPOOL_ERROR_BAD_DOCUMENT,/* not a PDF / unreadable PDF (message says why) */
  KCPS_SPOOL_ERROR_TOO_LARGE,   /* over the configured size limit */
  KCPS_SPOOL_ERROR_NOT_FOUND,   /* no such job (for this owner) */
  KCPS_SPOOL_ERROR_TICKET_USED, /* the ticket id was used before */
  KCPS_SPOOL_ERROR_PASSWORD,    /* a PDF that needs a password to open */
  KCPS_SPOOL_ERROR_NO_SPACE     /* the disk (or the user's disk quota) is full */
} kcps_spool_error_t;

/* Opens (creating, 0700) the spool folder dir and its index. Jobs whose
 * files vanished are marked deleted; stray temporary files are removed. */
kcps_spool_t *kcps_spool_open(const char *dir, GError **error);
void kcps_spool_close(kcps_spool_t *spool);

/* Largest document accepted, in bytes (default 2 GiB). */
void kcps_spool_set_max_size(kcps_spool_t *spool, gint64 max_size);
/* The limit in force (0: none); a converter feeding the spool checks the
 * document it receives against it before the disk fills. */
gint64 kcps_spool_get_max_size(kcps_spool_t *spool);

/* Starts receiving a document for owner into a private temporary file.
 * Thread-safe: many writers may be open at once. */
kcps_spool_writer_t *kcps_spool_writer_new(kcps_spool_t *spool, uid_t owner_uid,
                                           const char *owner_name, const char *job_name,
                                           const char *format, GError **error);
bool kcps_spool_writer_write(kcps_spool_writer_t *writer, const void *data, size_t len,
                             GError **error);
/* The temporary file's descriptor, for a converter that writes the PDF
 * itself (instead of kcps_spool_writer_write; do not mix the two). Commit
 * then reads the file back for its size, SHA-256 and the size limit. The
 * writer keeps owning the descriptor: do not close it. */
int kcps_spool_writer_fd(kcps_spool_writer_t *writer);
/* Checks the document (a PDF that opens, page count), fsyncs, renames it
 * into place and records it. Frees the writer in every case. Returns the
 * job (kcps_job_free) or NULL + error; on error nothing is left behind. */
kcps_job_t *kcps_spool_writer_commit(kcps_spool_writer_t *writer, GError **error);
/* Drops the temporary file and frees the writer. NULL is a no-op. */
void kcps_spool_writer_abort(kcps_spool_writer_t *writer);

/* Jobs of owner_uid ((uid_t)-1: everyone's), oldest first, not deleted.
 * GPtrArray of kcps_job_t* that frees its elements. */
GPtrArray *kcps_spool_list_jobs(kcps_spool_t *spool, uid_t owner_uid, GError **error);
/* owner_uid's deleted jobs that the server still knows (server_id set):
 * the registrations to withdraw there (kcpsd clears server_id once the
 * server has let go). Oldest first, GPtrArray of kcps_job_t*. */
GPtrArray *kcps_spool_list_withdrawals(kcps_spool_t *spool, uid_t owner_uid, GError **error);
/* One job by id, or NULL + KCPS_SPOOL_ERROR_NOT_FOUND. */
kcps_job_t *kcps_spool_get_job(kcps_spool_t *spool, const char *id, GError **error);
/* Opens the job's PDF read-only; caller closes the fd. */
int kcps_spool_open_document(kcps_spool_t *spool, const kcps_job_t *job, GError **error);

bool kcps_spool_set_registered(kcps_spool_t *spool, const char *id, const char *server_id,
                               const char *server_user, GError **error);
bool kcps_spool_set_state(kcps_spool_t *spool, const char *id, kcps_job_state_t state,
                          GError **error);

/* Records a pull ticket id as used until expires (unix s). False with
 * KCPS_SPOOL_ERROR_TICKET_USED when it was used before. Expired entries are
 * purged on the way. */
bool kcps_spool_use_ticket(kcps_spool_t *spool, const char *ticket_id, gint64 expires,
                           GError **error);

/* Retention (spool-expire.c): every job not deleted yet that was created
 * at or before now - max_age (unix seconds) is deleted: its document is
 * removed and its row says deleted. Printed jobs go too: their document has
 * no further use. n (may be NULL) gets how many. max_age <= 0 expires
 * nothing. False + error when the index cannot be updated; jobs already
 * marked stay deleted. */
bool kcps_spool_expire(kcps_spool_t *spool, gint64 now, gint64 max_age, guint *n,
                       GError **error);

const char *kcps_job_state_string(kcps_job_state_t state); /* "spooled", ... */
kcps_job_t *kcps_job_copy(const kcps_job_t *job);
void kcps_job_free(kcps_job_t *job);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(kcps_job_t, kcps_job_free)

G_END_DECLS
