/* What differs between operating systems, behind one header: who is on the
 * other end of a loopback TCP connection, user names, default folders. */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <sys/types.h>

G_BEGIN_DECLS

#define KCPS_PLATFORM_ERROR (kcps_platform_error_quark())
GQuark kcps_platform_error_quark(void);

typedef enum {
  KCPS_PLATFORM_ERROR_NOT_FOUND, /* no such connection or user */
  KCPS_PLATFORM_ERROR_IO,        /* the kernel's tables could not be read */
  KCPS_PLATFORM_ERROR_UNSUPPORTED,
  KCPS_PLATFORM_ERROR_NO_PRINT_SYSTEM, /* cupsd is not running or not reachable */
  KCPS_PLATFORM_ERROR_DENIED,          /* the print system refused: not authorized */
  KCPS_PLATFORM_ERROR_UNREACHABLE,     /* the printer a queue points to does not answer */
  KCPS_PLATFORM_ERROR_FAILED           /* the print system refused for another reason */
} kcps_platform_error_t;

/* The uid owning the other end of an accepted loopback TCP socket fd
 * (Linux: /proc/net/tcp and tcp6). False + error when the peer is not a
 * local process or cannot be found. */
bool kcps_platform_socket_peer_uid(int fd, uid_t *uid, GError **error);

/* The account name of uid; caller g_frees. NULL when unknown. */
char *kcps_platform_user_name(uid_t uid);

/* The uid of an account name; false when unknown. */
bool kcps_platform_user_uid(const char *name, uid_t *uid);

/* True for the accounts the OS print system sends jobs as (root, lp on
 * Linux): only then is an IPP requesting-user-name believed. */
bool kcps_platform_is_print_system_uid(uid_t uid);

/* Default spool folder: per-user ($XDG_DATA_HOME/kcps/spool) when user_mode,
 * else the system one (/var/spool/kcps). Caller g_frees. */
char *kcps_platform_default_spool_dir(bool user_mode);

/* Default state folder for keys and certificates (user: $XDG_CONFIG_HOME/kcps,
 * system: /var/lib/kcps). Caller g_frees. */
char *kcps_platform_default_state_dir(bool user_mode);

/* The OS print queue (platform-queue.c, through libcups; never by running
 * lpadmin). install makes name a driverless (IPP Everywhere) queue to
 * device_uri, enabled, accepting jobs and not shared; installing again
 * updates it. The print system asks the printer for its capabilities at
 * that moment, so the printer at device_uri must answer: it is checked
 * first (KCPS_PLATFORM_ERROR_UNREACHABLE). The local cupsd is used, or the
 * one CUPS_SERVER names. Errors: NO_PRINT_SYSTEM (cupsd not running),
 * DENIED (needs root or the lpadmin group), FAILED (message says why). */
bool kcps_platform_queue_install(const char *name, const char *device_uri, const char *info,
                                 GError **error);

/* Removes the OS print queue name. KCPS_PLATFORM_ERROR_NOT_FOUND when there
 * is no such queue; otherwise the errors of install. */
bool kcps_platform_queue_remove(const char *name, GError **error);

G_END_DECLS
