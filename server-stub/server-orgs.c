/* The organization tree and its people (white paper section 3): child
 * organizations, users and roles, print quota settings. (Skeleton: the
 * orgs helper fills this in.) */
#include "server-private.h"

const char kcps__server_schema_orgs[] = "";

const kcps_server_route_t kcps__server_routes_orgs[] = {
  {NULL, NULL, KCPS_NEED_NONE, NULL},
};
