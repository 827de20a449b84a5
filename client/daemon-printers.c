/* Printers for direct printing: discovered by DNS-SD (_ipp._tcp, _ipps._tcp)
 * with their capabilities, for GET /v1/printers. */
#define G_LOG_DOMAIN "kcpsd"

#include "client/daemon-private.h"

void kcps__local_get_printers(kcps_daemon_t *daemon, kcps_http_req_t *req, uid_t uid)
{
  (void)daemon;
  (void)uid;
  kcps_http_respond_error(req, 501, "not_implemented", "printer discovery is not built yet");
}
