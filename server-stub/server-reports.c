/* Reports (usage of an organization; contract reports going upward,
 * anonymized below the first level), the external admin API and its keys,
 * and reading the audit log. (Skeleton: the reports helper fills this in.) */
#include "server-private.h"

const char kcps__server_schema_reports[] = "";

const kcps_server_route_t kcps__server_routes_reports[] = {
  {NULL, NULL, KCPS_NEED_NONE, NULL},
};
