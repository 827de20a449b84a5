/* server-policy.c: when a lock ends, and the answer that tells the caller
 * (docs/api.md 1.2 "Lockout"). Shared by the password, code and password
 * change routes; the rest of the lockout is in server-private.h. */
#pragma once

#include "server-private.h"

/* "email:" and the first 56 hex digits (224 bits) of the SHA-256 of the
 * address: fits a lockout slot's key (63 characters). */
#define KCPS_SERVER_LOCKOUT_EMAIL_KEY 63

/* The in-memory key of an unknown account's login failures: the SHA-256
 * of the email as the login lookup matches it (trimmed, ASCII lower-case),
 * so that each unknown address locks as an account would, and the address
 * itself is never kept. */
void kcps__server_lockout_email_key(const char *email, char out[KCPS_SERVER_LOCKOUT_EMAIL_KEY]);

/* When the lock of this account (user_id; 0: the unknown account or source
 * named by source) ends, or 0 when it is not locked now. Caller holds the
 * lock. */
gint64 kcps__server_lockout_until_locked(kcps_server_t *server, gint64 user_id,
                                         const char *source);

/* Counts a failure as kcps__server_lockout_failed_locked does; returns when
 * the lock ends if the account is locked after it (this failure reached the
 * threshold, or a lock was running), else 0. Caller holds the lock. */
gint64 kcps__server_lockout_fail_until_locked(kcps_server_t *server, gint64 user_id,
                                              const char *source);

/* Answers status (401 or 403) {"error":"account_locked","message":"too many
 * failed attempts; try again after <RFC 3339>","retry_after":SECONDS,
 * "retry_at":"<RFC 3339 UTC>"} with the header Retry-After: SECONDS. The
 * same bytes for every account with the same lock end. */
void kcps__server_respond_locked(kcps_http_req_t *req, unsigned status, gint64 until);
