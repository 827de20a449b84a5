/* Single sign-on (white paper 4.7): OpenID Connect authorization code flow
 * with PKCE per customer organization. (Skeleton: the OIDC helper fills
 * this in.) */
#include "server-private.h"

const char kcps__server_schema_oidc[] = "";

const kcps_server_route_t kcps__server_routes_oidc[] = {
  {NULL, NULL, KCPS_NEED_NONE, NULL},
};
