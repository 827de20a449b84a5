/* Email multi-factor authentication (white paper 4.6): a 6-digit code
 * mailed through the configured relay, valid 5 minutes, single use, bound
 * to one login attempt. (Skeleton: the MFA helper fills this in.) */
#include "server-private.h"

const char kcps__server_schema_mfa[] = "";

const kcps_server_route_t kcps__server_routes_mfa[] = {
  {NULL, NULL, KCPS_NEED_NONE, NULL},
};

bool
kcps__server_mfa_required_locked(kcps_server_t *server, gint64 user_id)
{
  (void)server;
  (void)user_id;
  return false;
}

void
kcps__server_mfa_begin(kcps_server_t *server, kcps_http_req_t *req, gint64 user_id,
                       const char *client, const char *source)
{
  (void)server;
  (void)user_id;
  (void)client;
  (void)source;
  kcps_http_respond_error(req, 501, "not_implemented", "email codes are not available");
}
