/* The access matrix of kcps-server (white paper section 3, Table 2-1;
 * docs/access.md says the same in words). The section-3 tree is built
 * through the API as rhq@a.test, then every route of every feature table is
 * called by every kind of caller (no session, an API key, a device, a user
 * at a device, and each role) on data of its own organization, a child, a
 * sibling, the parent and another tree, and the status is compared with the
 * table below. A route no row covers fails the test: a new route needs its
 * rows here (and its line in docs/access.md) before it passes. */
#include "server-fixture.h"

#include "common/crypto.h"

#include <stdio.h>
#include <string.h>

#define PW "Matrix-pass1!"

/* The callers, in the order of the table's columns. */
enum {
  A_NONE,  /* no Authorization header */
  A_KEY,   /* an external admin API key (Customer C's admin, granted) */
  A_DEV,   /* MFP-1's device session (Customer A) */
  A_ATDEV, /* alice at MFP-1 (user-at-device session, PIN) */
  A_RHQ,   /* provider admin of RHQ (the root) */
  A_PA,    /* provider admin of Sales B */
  A_PS,    /* provider support of Sales B */
  A_CA,    /* customer admin of Customer C */
  A_PM,    /* print manager of Customer C */
  A_CU,    /* customer user of Customer C */
  A_GU,    /* guest user of Customer C */
  N_ACTORS
};

static const char *const actor_names[N_ACTORS] = {
    "no session",
    "API key",
    "device",
    "user at device",
    "provider admin (RHQ)",
    "provider admin (Sales B)",
    "provider support (Sales B)",
    "customer admin (Customer C)",
    "print manager (Customer C)",
    "customer user (Customer C)",
    "guest user (Customer C)",
};

/* Emails of the user actors (NULL for the others). */
static const char *const actor_emails[N_ACTORS] = {
    NULL,        NULL,        NULL,        "alice@a.test", "rhq@a.test", "pa@b.test",
    "ps@b.test", "ca@c.test", "pm@c.test", "cu@c.test",    "gu@c.test",
};

/* A cell not called, with the reason in the row's comment. */
#define SKIP 0
/* The first four columns of a route that needs a user session: no token;
 * an API key is no session token; device and user-at-device sessions are
 * the wrong kind. */
#define USER_ONLY 401, 401, 403, 403
#define W(...)                                                                                     \
  {                                                                                                \
    __VA_ARGS__                                                                                    \
  }

enum {
  F_FRESH = 1 << 0,    /* each caller uses a fresh session (the route ends it) */
  F_OWN_JOBS = 1 << 1, /* a 200 answer lists the caller's own jobs only */
};

/* One route on one target. target names what "*" of the pattern becomes:
 *   ""                 no "*" in the pattern
 *   "org:NAME"         the organization's public id
 *   "user:EMAIL"       the user's public id
 *   "new-user:ORG"     a fresh user of ORG (customer_user or provider_support),
 *                      made for each cell (routes that change or delete it)
 *   "new-admin:ORG"    a fresh admin of ORG (customer_admin or provider_admin)
 *   "new-org:PARENT"   a fresh customer organization under PARENT, each cell
 *   "job:EMAIL"        the job registered for that user before the walk
 *   "new-job:EMAIL"    a fresh job of that user, each cell
 *   "key:"             a fresh API key of Customer C's admin, each cell
 *   "new-group:ORG"    a fresh user group of ORG (a customer), each cell
 *   "new-member:ORG"   a fresh group of ORG with a fresh member: fills the
 *                      two ids of DELETE .../members/{user} in turn
 *   "bad:"             a well-formed id that names nothing
 * body may hold {uniq} (a number new for each cell), {role} (the role of a
 * new user that fits the target organization) and {name} (the target
 * organization's current name); {now}: the server's time, RFC 3339. */
typedef struct {
  const char *kind; /* the data kind (docs/access.md) */
  const char *method;
  const char *pattern; /* exactly as in the route table */
  const char *target;
  const char *body;
  int want[N_ACTORS];
  unsigned flags;
} row_t;

#define JOB_BODY                                                                                   \
  "{\"client_job_id\":\"m{uniq}\",\"name\":\"doc\",\"pages\":1,\"size\":10,"                       \
  "\"sha256\":\"0000000000000000000000000000000000000000000000000000000000000000\","               \
  "\"pull_url\":\"https://127.0.0.1:5571/jobs/m{uniq}\","                                          \
  "\"pull_pin\":\"sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"}"
#define UPLOAD_BODY                                                                                \
  "{\"idempotency_key\":\"m{uniq}\",\"size\":10,"                                                  \
  "\"sha256\":\"0000000000000000000000000000000000000000000000000000000000000000\"}"
#define USAGE_BODY                                                                                 \
  "{\"idempotency_key\":\"m{uniq}\",\"printer\":\"ipp://127.0.0.1:631/ipp/print\","                 \
  "\"time\":\"{now}\",\"pages\":1}"
#define DEVICE_BODY "{\"serial\":\"SN{uniq}\",\"name\":\"DEV{uniq}\"}"
#define SSO_BODY                                                                                   \
  "{\"preset\":\"generic\",\"issuer\":\"https://idp.example\",\"client_id\":\"kcps\","             \
  "\"client_secret\":\"s3cret\"}"
/* The white paper's value again: changes nothing that matters here. */
#define SETTINGS_BODY "{\"idle_logout_minutes\":30}"
#define GROUP_BODY "{\"name\":\"G{uniq}\"}"
/* {cu}: the public id of cu@c.test (a user of Customer C). */
#define MEMBER_BODY "{\"user\":\"{cu}\"}"
#define USER_BODY                                                                                  \
  "{\"email\":\"m{uniq}@m.test\",\"name\":\"M\",\"role\":\"{role}\",\"password\":\"" PW "\"}"

/* clang-format off */
static const row_t rows[] = {
  /* kind, method, pattern, target, body,
     W(none key  dev  @dev rhq  paB  psB  caC  pmC  cuC  guC), flags */
  /* Sessions and the caller's own data (server-auth.c, server-jobs.c). */
  {"login", "POST", "/api/v1/login", "", "{}",
   W(400, 400, 400, 400, 400, 400, 400, 400, 400, 400, 400), 0},
  {"login", "POST", "/api/v1/logout", "", NULL,
   W(401, 401, 204, 204, 204, 204, 204, 204, 204, 204, 204), F_FRESH},
  {"own account", "GET", "/api/v1/me", "", NULL,
   W(USER_ONLY,          200, 200, 200, 200, 200, 200, 200), 0},
  {"own account", "GET", "/api/v1/me/usage", "", NULL,
   W(USER_ONLY,          200, 200, 200, 200, 200, 200, 200), 0},
  {"public", "GET", "/api/v1/ticket-key", "", NULL,
   W(200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200), 0},
  /* Jobs: everyone with a user session has her own, and only those. */
  {"jobs", "POST", "/api/v1/jobs", "", JOB_BODY,
   W(USER_ONLY,          201, 201, 201, 201, 201, 201, 201), 0},
  {"jobs", "GET", "/api/v1/jobs", "", NULL,
   W(USER_ONLY,          200, 200, 200, 200, 200, 200, 200), F_OWN_JOBS},
  /* One job, and withdrawing it: its owner only; anyone else's is absent. */
  {"jobs", "GET", "/api/v1/jobs/*", "new-job:cu@c.test", NULL,
   W(USER_ONLY,          404, 404, 404, 404, 404, 200, 404), 0},
  {"jobs", "GET", "/api/v1/jobs/*", "bad:", NULL,
   W(USER_ONLY,          404, 404, 404, 404, 404, 404, 404), 0},
  {"jobs", "DELETE", "/api/v1/jobs/*", "new-job:cu@c.test", NULL,
   W(USER_ONLY,          404, 404, 404, 404, 404, 204, 404), 0},
  {"jobs", "DELETE", "/api/v1/jobs/*", "new-job:ca@c.test", NULL,
   W(USER_ONLY,          404, 404, 404, 204, 404, 404, 404), 0},
  {"jobs", "DELETE", "/api/v1/jobs/*", "bad:", NULL,
   W(USER_ONLY,          404, 404, 404, 404, 404, 404, 404), 0},
  {"jobs", "GET", "/api/v1/device/jobs", "", NULL,
   W(401, 401, 403, 200, 403, 403, 403, 403, 403, 403, 403), 0},
  {"jobs", "POST", "/api/v1/device/jobs/*/ticket", "job:alice@a.test", NULL,
   W(401, 401, 403, 201, 403, 403, 403, 403, 403, 403, 403), 0},
  {"jobs", "POST", "/api/v1/device/jobs/*/ticket", "job:cu@c.test", NULL,
   W(401, 401, 403, 404, 403, 403, 403, 403, 403, 403, 403), 0},
  {"jobs", "POST", "/api/v1/device/jobs/*/log", "job:alice@a.test",
   "{\"pages\":1,\"color_pages\":0,\"duplex\":false,\"status\":\"failed\"}",
   W(401, 401, 403, 201, 403, 403, 403, 403, 403, 403, 403), 0},
  {"jobs", "POST", "/api/v1/device/jobs/*/log", "job:cu@c.test",
   "{\"pages\":1,\"color_pages\":0,\"duplex\":false,\"status\":\"failed\"}",
   W(401, 401, 403, 404, 403, 403, 403, 403, 403, 403, 403), 0},
  /* Cloud spool uploads (server-uploads.c): every user her own only; the
   * document fetch authenticates by its ticket alone. */
  {"jobs", "POST", "/api/v1/uploads", "", UPLOAD_BODY,
   W(USER_ONLY,          201, 201, 201, 201, 201, 201, 201), 0},
  {"jobs", "GET", "/api/v1/uploads/*", "bad:", NULL,
   W(USER_ONLY,          404, 404, 404, 404, 404, 404, 404), 0},
  {"jobs", "PUT", "/api/v1/uploads/*", "bad:", NULL,
   W(USER_ONLY,          404, 404, 404, 404, 404, 404, 404), 0},
  {"jobs", "POST", "/api/v1/uploads/*/complete", "bad:", NULL,
   W(USER_ONLY,          404, 404, 404, 404, 404, 404, 404), 0},
  {"jobs", "GET", "/api/v1/device/jobs/*/document", "job:alice@a.test", NULL,
   W(401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 401), 0},
  {"jobs", "GET", "/api/v1/device/jobs/*/document", "bad:", NULL,
   W(401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 401), 0},
  /* Organization info (server-orgs.c): one's own and everything below. */
  {"org info", "GET", "/api/v1/me/org", "", NULL,
   W(USER_ONLY,          200, 200, 200, 200, 200, 200, 200), 0},
  {"org info", "GET", "/api/v1/orgs/*", "org:RHQ", NULL,
   W(USER_ONLY,          200, 404, 404, 404, 404, 404, 404), 0},
  {"org info", "GET", "/api/v1/orgs/*", "org:Sales A", NULL,
   W(USER_ONLY,          200, 404, 404, 404, 404, 404, 404), 0},
  {"org info", "GET", "/api/v1/orgs/*", "org:Customer A", NULL,
   W(USER_ONLY,          200, 404, 404, 404, 404, 404, 404), 0},
  {"org info", "GET", "/api/v1/orgs/*", "org:Sales B", NULL,
   W(USER_ONLY,          200, 200, 200, 404, 404, 404, 404), 0},
  {"org info", "GET", "/api/v1/orgs/*", "org:Customer B", NULL,
   W(USER_ONLY,          200, 200, 200, 404, 404, 404, 404), 0},
  {"org info", "GET", "/api/v1/orgs/*", "org:Dealer A", NULL,
   W(USER_ONLY,          200, 200, 200, 404, 404, 404, 404), 0},
  {"org info", "GET", "/api/v1/orgs/*", "org:Customer C", NULL,
   W(USER_ONLY,          200, 200, 200, 200, 200, 200, 200), 0},
  {"org info", "GET", "/api/v1/orgs/*", "org:Customer D", NULL,
   W(USER_ONLY,          200, 200, 200, 404, 404, 404, 404), 0},
  {"org info", "GET", "/api/v1/orgs/*", "bad:", NULL,
   W(USER_ONLY,          404, 404, 404, 404, 404, 404, 404), 0},
  {"org info", "GET", "/api/v1/orgs/*/children", "org:RHQ", NULL,
   W(USER_ONLY,          200, 404, 404, 404, 404, 404, 404), 0},
  {"org info", "GET", "/api/v1/orgs/*/children", "org:Sales A", NULL,
   W(USER_ONLY,          200, 404, 404, 404, 404, 404, 404), 0},
  {"org info", "GET", "/api/v1/orgs/*/children", "org:Sales B", NULL,
   W(USER_ONLY,          200, 200, 200, 404, 404, 404, 404), 0},
  {"org info", "GET", "/api/v1/orgs/*/children", "org:Dealer A", NULL,
   W(USER_ONLY,          200, 200, 200, 404, 404, 404, 404), 0},
  {"org info", "GET", "/api/v1/orgs/*/children", "org:Customer C", NULL,
   W(USER_ONLY,          200, 200, 200, 200, 200, 200, 200), 0},
  {"org info", "GET", "/api/v1/orgs/*/children", "org:Customer D", NULL,
   W(USER_ONLY,          200, 200, 200, 404, 404, 404, 404), 0},
  /* Creating children: provider admins above; customers are leaves (409). */
  {"org tree", "POST", "/api/v1/orgs/*/children", "org:RHQ",
   "{\"name\":\"M{uniq}\",\"type\":\"customer\"}",
   W(USER_ONLY,          201, 404, 404, 404, 404, 404, 404), 0},
  {"org tree", "POST", "/api/v1/orgs/*/children", "org:Sales A",
   "{\"name\":\"M{uniq}\",\"type\":\"customer\"}",
   W(USER_ONLY,          201, 404, 404, 404, 404, 404, 404), 0},
  {"org tree", "POST", "/api/v1/orgs/*/children", "org:Customer A",
   "{\"name\":\"M{uniq}\",\"type\":\"customer\"}",
   W(USER_ONLY,          409, 404, 404, 404, 404, 404, 404), 0},
  {"org tree", "POST", "/api/v1/orgs/*/children", "org:Sales B",
   "{\"name\":\"M{uniq}\",\"type\":\"provider\"}",
   W(USER_ONLY,          201, 201, 403, 404, 404, 404, 404), 0},
  {"org tree", "POST", "/api/v1/orgs/*/children", "org:Customer B",
   "{\"name\":\"M{uniq}\",\"type\":\"customer\"}",
   W(USER_ONLY,          409, 409, 403, 404, 404, 404, 404), 0},
  {"org tree", "POST", "/api/v1/orgs/*/children", "org:Dealer A",
   "{\"name\":\"M{uniq}\",\"type\":\"customer\"}",
   W(USER_ONLY,          201, 201, 403, 404, 404, 404, 404), 0},
  {"org tree", "POST", "/api/v1/orgs/*/children", "org:Customer C",
   "{\"name\":\"M{uniq}\",\"type\":\"customer\"}",
   W(USER_ONLY,          409, 409, 403, 403, 403, 403, 403), 0},
  {"org tree", "POST", "/api/v1/orgs/*/children", "org:Customer D",
   "{\"name\":\"M{uniq}\",\"type\":\"customer\"}",
   W(USER_ONLY,          409, 409, 403, 404, 404, 404, 404), 0},
  /* Renaming (to the same name here) and deleting: only from a provider
   * above, never the organization's own admins, never the root. */
  {"org tree", "PATCH", "/api/v1/orgs/*", "org:RHQ", "{\"name\":\"{name}\"}",
   W(USER_ONLY,          403, 404, 404, 404, 404, 404, 404), 0},
  {"org tree", "PATCH", "/api/v1/orgs/*", "org:Sales A", "{\"name\":\"{name}\"}",
   W(USER_ONLY,          200, 404, 404, 404, 404, 404, 404), 0},
  {"org tree", "PATCH", "/api/v1/orgs/*", "org:Customer A", "{\"name\":\"{name}\"}",
   W(USER_ONLY,          200, 404, 404, 404, 404, 404, 404), 0},
  {"org tree", "PATCH", "/api/v1/orgs/*", "org:Sales B", "{\"name\":\"{name}\"}",
   W(USER_ONLY,          200, 403, 403, 404, 404, 404, 404), 0},
  {"org tree", "PATCH", "/api/v1/orgs/*", "org:Customer B", "{\"name\":\"{name}\"}",
   W(USER_ONLY,          200, 200, 403, 404, 404, 404, 404), 0},
  {"org tree", "PATCH", "/api/v1/orgs/*", "org:Dealer A", "{\"name\":\"{name}\"}",
   W(USER_ONLY,          200, 200, 403, 404, 404, 404, 404), 0},
  {"org tree", "PATCH", "/api/v1/orgs/*", "org:Customer C", "{\"name\":\"{name}\"}",
   W(USER_ONLY,          200, 200, 403, 403, 403, 403, 403), 0},
  {"org tree", "PATCH", "/api/v1/orgs/*", "org:Customer D", "{\"name\":\"{name}\"}",
   W(USER_ONLY,          200, 200, 403, 404, 404, 404, 404), 0},
  {"org tree", "DELETE", "/api/v1/orgs/*", "org:RHQ", NULL,
   W(USER_ONLY,          403, 404, 404, 404, 404, 404, 404), 0},
  {"org tree", "DELETE", "/api/v1/orgs/*", "org:Sales A", NULL,
   W(USER_ONLY,          409, 404, 404, 404, 404, 404, 404), 0},
  {"org tree", "DELETE", "/api/v1/orgs/*", "org:Sales B", NULL,
   W(USER_ONLY,          409, 403, 403, 404, 404, 404, 404), 0},
  {"org tree", "DELETE", "/api/v1/orgs/*", "org:Dealer A", NULL,
   W(USER_ONLY,          409, 409, 403, 404, 404, 404, 404), 0},
  /* (rhq and Sales B's admin would delete the callers' own organization:
   * the fresh customers below show that they may.) */
  {"org tree", "DELETE", "/api/v1/orgs/*", "org:Customer C", NULL,
   W(USER_ONLY,         SKIP,SKIP, 403, 403, 403, 403, 403), 0},
  {"org tree", "DELETE", "/api/v1/orgs/*", "new-org:Sales A", NULL,
   W(USER_ONLY,          204, 404, 404, 404, 404, 404, 404), 0},
  {"org tree", "DELETE", "/api/v1/orgs/*", "new-org:Sales B", NULL,
   W(USER_ONLY,          204, 204, 403, 404, 404, 404, 404), 0},
  {"org tree", "DELETE", "/api/v1/orgs/*", "new-org:Dealer A", NULL,
   W(USER_ONLY,          204, 204, 403, 404, 404, 404, 404), 0},
  /* Users (Table 2-1 column 1): a customer admin her organization's; a
   * provider admin her own provider organization's staff; nobody else. */
  {"users", "GET", "/api/v1/orgs/*/users", "org:RHQ", NULL,
   W(USER_ONLY,          200, 404, 404, 404, 404, 404, 404), 0},
  {"users", "GET", "/api/v1/orgs/*/users", "org:Sales A", NULL,
   W(USER_ONLY,          403, 404, 404, 404, 404, 404, 404), 0},
  {"users", "GET", "/api/v1/orgs/*/users", "org:Customer A", NULL,
   W(USER_ONLY,          403, 404, 404, 404, 404, 404, 404), 0},
  {"users", "GET", "/api/v1/orgs/*/users", "org:Sales B", NULL,
   W(USER_ONLY,          403, 200, 403, 404, 404, 404, 404), 0},
  {"users", "GET", "/api/v1/orgs/*/users", "org:Customer B", NULL,
   W(USER_ONLY,          403, 403, 403, 404, 404, 404, 404), 0},
  {"users", "GET", "/api/v1/orgs/*/users", "org:Dealer A", NULL,
   W(USER_ONLY,          403, 403, 403, 404, 404, 404, 404), 0},
  {"users", "GET", "/api/v1/orgs/*/users", "org:Customer C", NULL,
   W(USER_ONLY,          403, 403, 403, 200, 403, 403, 403), 0},
  {"users", "GET", "/api/v1/orgs/*/users", "org:Customer D", NULL,
   W(USER_ONLY,          403, 403, 403, 404, 404, 404, 404), 0},
  {"users", "POST", "/api/v1/orgs/*/users", "org:RHQ", USER_BODY,
   W(USER_ONLY,          201, 404, 404, 404, 404, 404, 404), 0},
  {"users", "POST", "/api/v1/orgs/*/users", "org:Customer A", USER_BODY,
   W(USER_ONLY,          403, 404, 404, 404, 404, 404, 404), 0},
  {"users", "POST", "/api/v1/orgs/*/users", "org:Sales B", USER_BODY,
   W(USER_ONLY,          403, 201, 403, 404, 404, 404, 404), 0},
  {"users", "POST", "/api/v1/orgs/*/users", "org:Dealer A", USER_BODY,
   W(USER_ONLY,          403, 403, 403, 404, 404, 404, 404), 0},
  {"users", "POST", "/api/v1/orgs/*/users", "org:Customer C", USER_BODY,
   W(USER_ONLY,          403, 403, 403, 201, 403, 403, 403), 0},
  {"users", "POST", "/api/v1/orgs/*/users", "org:Customer D", USER_BODY,
   W(USER_ONLY,          403, 403, 403, 404, 404, 404, 404), 0},
  {"users", "GET", "/api/v1/users/*", "new-user:RHQ", NULL,
   W(USER_ONLY,          200, 404, 404, 404, 404, 404, 404), 0},
  {"users", "GET", "/api/v1/users/*", "new-user:Customer A", NULL,
   W(USER_ONLY,          403, 404, 404, 404, 404, 404, 404), 0},
  {"users", "GET", "/api/v1/users/*", "new-user:Sales B", NULL,
   W(USER_ONLY,          403, 200, 403, 404, 404, 404, 404), 0},
  {"users", "GET", "/api/v1/users/*", "new-user:Customer B", NULL,
   W(USER_ONLY,          403, 403, 403, 404, 404, 404, 404), 0},
  {"users", "GET", "/api/v1/users/*", "new-user:Customer C", NULL,
   W(USER_ONLY,          403, 403, 403, 200, 403, 403, 403), 0},
  {"users", "GET", "/api/v1/users/*", "new-user:Customer D", NULL,
   W(USER_ONLY,          403, 403, 403, 404, 404, 404, 404), 0},
  {"users", "GET", "/api/v1/users/*", "user:cu@c.test", NULL,
   W(USER_ONLY,          403, 403, 403, 200, 403, 403, 403), 0},
  {"users", "GET", "/api/v1/users/*", "bad:", NULL,
   W(USER_ONLY,          404, 404, 404, 404, 404, 404, 404), 0},
  {"users", "PATCH", "/api/v1/users/*", "new-user:RHQ", "{\"name\":\"N\"}",
   W(USER_ONLY,          200, 404, 404, 404, 404, 404, 404), 0},
  {"users", "PATCH", "/api/v1/users/*", "new-user:Customer A", "{\"name\":\"N\"}",
   W(USER_ONLY,          403, 404, 404, 404, 404, 404, 404), 0},
  {"users", "PATCH", "/api/v1/users/*", "new-user:Sales B", "{\"role\":\"provider_admin\"}",
   W(USER_ONLY,          403, 200, 403, 404, 404, 404, 404), 0},
  {"users", "PATCH", "/api/v1/users/*", "new-user:Dealer A", "{\"name\":\"N\"}",
   W(USER_ONLY,          403, 403, 403, 404, 404, 404, 404), 0},
  {"users", "PATCH", "/api/v1/users/*", "new-user:Customer C", "{\"active\":false}",
   W(USER_ONLY,          403, 403, 403, 200, 403, 403, 403), 0},
  {"users", "PATCH", "/api/v1/users/*", "new-user:Customer D", "{\"name\":\"N\"}",
   W(USER_ONLY,          403, 403, 403, 404, 404, 404, 404), 0},
  {"users", "DELETE", "/api/v1/users/*", "new-user:RHQ", NULL,
   W(USER_ONLY,          204, 404, 404, 404, 404, 404, 404), 0},
  {"users", "DELETE", "/api/v1/users/*", "new-user:Customer A", NULL,
   W(USER_ONLY,          403, 404, 404, 404, 404, 404, 404), 0},
  {"users", "DELETE", "/api/v1/users/*", "new-user:Sales B", NULL,
   W(USER_ONLY,          403, 204, 403, 404, 404, 404, 404), 0},
  {"users", "DELETE", "/api/v1/users/*", "new-user:Customer B", NULL,
   W(USER_ONLY,          403, 403, 403, 404, 404, 404, 404), 0},
  {"users", "DELETE", "/api/v1/users/*", "new-user:Customer C", NULL,
   W(USER_ONLY,          403, 403, 403, 204, 403, 403, 403), 0},
  {"users", "DELETE", "/api/v1/users/*", "new-user:Customer D", NULL,
   W(USER_ONLY,          403, 403, 403, 404, 404, 404, 404), 0},
  /* User groups (server-groups.c): users data of a customer organization,
   * so its customer admin's only; providers' organizations hold none (409
   * for the provider admin who manages her own staff). */
  {"users", "GET", "/api/v1/orgs/*/groups", "org:RHQ", NULL,
   W(USER_ONLY,          200, 404, 404, 404, 404, 404, 404), 0},
  {"users", "GET", "/api/v1/orgs/*/groups", "org:Sales B", NULL,
   W(USER_ONLY,          403, 200, 403, 404, 404, 404, 404), 0},
  {"users", "GET", "/api/v1/orgs/*/groups", "org:Customer B", NULL,
   W(USER_ONLY,          403, 403, 403, 404, 404, 404, 404), 0},
  {"users", "GET", "/api/v1/orgs/*/groups", "org:Customer C", NULL,
   W(USER_ONLY,          403, 403, 403, 200, 403, 403, 403), 0},
  {"users", "GET", "/api/v1/orgs/*/groups", "org:Customer D", NULL,
   W(USER_ONLY,          403, 403, 403, 404, 404, 404, 404), 0},
  {"users", "GET", "/api/v1/orgs/*/groups", "bad:", NULL,
   W(USER_ONLY,          404, 404, 404, 404, 404, 404, 404), 0},
  {"users", "POST", "/api/v1/orgs/*/groups", "org:RHQ", GROUP_BODY,
   W(USER_ONLY,          409, 404, 404, 404, 404, 404, 404), 0},
  {"users", "POST", "/api/v1/orgs/*/groups", "org:Customer A", GROUP_BODY,
   W(USER_ONLY,          403, 404, 404, 404, 404, 404, 404), 0},
  {"users", "POST", "/api/v1/orgs/*/groups", "org:Sales B", GROUP_BODY,
   W(USER_ONLY,          403, 409, 403, 404, 404, 404, 404), 0},
  {"users", "POST", "/api/v1/orgs/*/groups", "org:Customer B", GROUP_BODY,
   W(USER_ONLY,          403, 403, 403, 404, 404, 404, 404), 0},
  {"users", "POST", "/api/v1/orgs/*/groups", "org:Customer C", GROUP_BODY,
   W(USER_ONLY,          403, 403, 403, 201, 403, 403, 403), 0},
  {"users", "POST", "/api/v1/orgs/*/groups", "org:Customer D", GROUP_BODY,
   W(USER_ONLY,          403, 403, 403, 404, 404, 404, 404), 0},
  {"users", "GET", "/api/v1/groups/*", "new-group:Customer A", NULL,
   W(USER_ONLY,          403, 404, 404, 404, 404, 404, 404), 0},
  {"users", "GET", "/api/v1/groups/*", "new-group:Customer B", NULL,
   W(USER_ONLY,          403, 403, 403, 404, 404, 404, 404), 0},
  {"users", "GET", "/api/v1/groups/*", "new-group:Customer C", NULL,
   W(USER_ONLY,          403, 403, 403, 200, 403, 403, 403), 0},
  {"users", "GET", "/api/v1/groups/*", "new-group:Customer D", NULL,
   W(USER_ONLY,          403, 403, 403, 404, 404, 404, 404), 0},
  {"users", "GET", "/api/v1/groups/*", "bad:", NULL,
   W(USER_ONLY,          404, 404, 404, 404, 404, 404, 404), 0},
  {"users", "PATCH", "/api/v1/groups/*", "new-group:Customer A", GROUP_BODY,
   W(USER_ONLY,          403, 404, 404, 404, 404, 404, 404), 0},
  {"users", "PATCH", "/api/v1/groups/*", "new-group:Customer B", GROUP_BODY,
   W(USER_ONLY,          403, 403, 403, 404, 404, 404, 404), 0},
  {"users", "PATCH", "/api/v1/groups/*", "new-group:Customer C", GROUP_BODY,
   W(USER_ONLY,          403, 403, 403, 200, 403, 403, 403), 0},
  {"users", "PATCH", "/api/v1/groups/*", "new-group:Customer D", GROUP_BODY,
   W(USER_ONLY,          403, 403, 403, 404, 404, 404, 404), 0},
  {"users", "DELETE", "/api/v1/groups/*", "new-group:Customer A", NULL,
   W(USER_ONLY,          403, 404, 404, 404, 404, 404, 404), 0},
  {"users", "DELETE", "/api/v1/groups/*", "new-group:Customer B", NULL,
   W(USER_ONLY,          403, 403, 403, 404, 404, 404, 404), 0},
  {"users", "DELETE", "/api/v1/groups/*", "new-group:Customer C", NULL,
   W(USER_ONLY,          403, 403, 403, 204, 403, 403, 403), 0},
  {"users", "DELETE", "/api/v1/groups/*", "bad:", NULL,
   W(USER_ONLY,          404, 404, 404, 404, 404, 404, 404), 0},
  {"users", "GET", "/api/v1/groups/*/members", "new-group:Customer B", NULL,
   W(USER_ONLY,          403, 403, 403, 404, 404, 404, 404), 0},
  {"users", "GET", "/api/v1/groups/*/members", "new-group:Customer C", NULL,
   W(USER_ONLY,          403, 403, 403, 200, 403, 403, 403), 0},
  {"users", "GET", "/api/v1/groups/*/members", "new-group:Customer D", NULL,
   W(USER_ONLY,          403, 403, 403, 404, 404, 404, 404), 0},
  {"users", "POST", "/api/v1/groups/*/members", "new-group:Customer A", MEMBER_BODY,
   W(USER_ONLY,          403, 404, 404, 404, 404, 404, 404), 0},
  {"users", "POST", "/api/v1/groups/*/members", "new-group:Customer B", MEMBER_BODY,
   W(USER_ONLY,          403, 403, 403, 404, 404, 404, 404), 0},
  {"users", "POST", "/api/v1/groups/*/members", "new-group:Customer C", MEMBER_BODY,
   W(USER_ONLY,          403, 403, 403, 201, 403, 403, 403), 0},
  {"users", "POST", "/api/v1/groups/*/members", "new-group:Customer D", MEMBER_BODY,
   W(USER_ONLY,          403, 403, 403, 404, 404, 404, 404), 0},
  {"users", "DELETE", "/api/v1/groups/*/members/*", "new-member:Customer A", NULL,
   W(USER_ONLY,          403, 404, 404, 404, 404, 404, 404), 0},
  {"users", "DELETE", "/api/v1/groups/*/members/*", "new-member:Customer B", NULL,
   W(USER_ONLY,          403, 403, 403, 404, 404, 404, 404), 0},
  {"users", "DELETE", "/api/v1/groups/*/members/*", "new-member:Customer C", NULL,
   W(USER_ONLY,          403, 403, 403, 204, 403, 403, 403), 0},
  {"users", "DELETE", "/api/v1/groups/*/members/*", "new-member:Customer D", NULL,
   W(USER_ONLY,          403, 403, 403, 404, 404, 404, 404), 0},
  /* Print quotas: the customer admin and the print manager (all a print
   * manager may touch). */
  {"quota", "GET", "/api/v1/orgs/*/quotas", "org:RHQ", NULL,
   W(USER_ONLY,          403, 404, 404, 404, 404, 404, 404), 0},
  {"quota", "GET", "/api/v1/orgs/*/quotas", "org:Customer A", NULL,
   W(USER_ONLY,          403, 404, 404, 404, 404, 404, 404), 0},
  {"quota", "GET", "/api/v1/orgs/*/quotas", "org:Sales B", NULL,
   W(USER_ONLY,          403, 403, 403, 404, 404, 404, 404), 0},
  {"quota", "GET", "/api/v1/orgs/*/quotas", "org:Customer B", NULL,
   W(USER_ONLY,          403, 403, 403, 404, 404, 404, 404), 0},
  {"quota", "GET", "/api/v1/orgs/*/quotas", "org:Customer C", NULL,
   W(USER_ONLY,          403, 403, 403, 200, 200, 403, 403), 0},
  {"quota", "GET", "/api/v1/orgs/*/quotas", "org:Customer D", NULL,
   W(USER_ONLY,          403, 403, 403, 404, 404, 404, 404), 0},
  {"quota", "PUT", "/api/v1/users/*/quota", "new-user:Customer A",
   "{\"pages\":10,\"color_pages\":null}",
   W(USER_ONLY,          403, 404, 404, 404, 404, 404, 404), 0},
  {"quota", "PUT", "/api/v1/users/*/quota", "new-user:Sales B",
   "{\"pages\":10,\"color_pages\":null}",
   W(USER_ONLY,          403, 403, 403, 404, 404, 404, 404), 0},
  {"quota", "PUT", "/api/v1/users/*/quota", "new-user:Customer B",
   "{\"pages\":10,\"color_pages\":null}",
   W(USER_ONLY,          403, 403, 403, 404, 404, 404, 404), 0},
  {"quota", "PUT", "/api/v1/users/*/quota", "user:cu@c.test", "{\"pages\":10,\"color_pages\":null}",
   W(USER_ONLY,          403, 403, 403, 200, 200, 403, 403), 0},
  {"quota", "PUT", "/api/v1/users/*/quota", "new-user:Customer D",
   "{\"pages\":10,\"color_pages\":null}",
   W(USER_ONLY,          403, 403, 403, 404, 404, 404, 404), 0},
  /* Reports (server-reports.c): a customer's usage to its admin only. */
  {"reports", "GET", "/api/v1/orgs/*/report", "org:RHQ", NULL,
   W(USER_ONLY,          403, 404, 404, 404, 404, 404, 404), 0},
  {"reports", "GET", "/api/v1/orgs/*/report", "org:Customer A", NULL,
   W(USER_ONLY,          403, 404, 404, 404, 404, 404, 404), 0},
  {"reports", "GET", "/api/v1/orgs/*/report", "org:Sales B", NULL,
   W(USER_ONLY,          403, 403, 403, 404, 404, 404, 404), 0},
  {"reports", "GET", "/api/v1/orgs/*/report", "org:Customer B", NULL,
   W(USER_ONLY,          403, 403, 403, 404, 404, 404, 404), 0},
  {"reports", "GET", "/api/v1/orgs/*/report", "org:Customer C", NULL,
   W(USER_ONLY,          403, 403, 403, 200, 403, 403, 403), 0},
  {"reports", "GET", "/api/v1/orgs/*/report", "org:Customer D", NULL,
   W(USER_ONLY,          403, 403, 403, 404, 404, 404, 404), 0},
  /* Usage and quota (server-usage.c): every user records and sees her own;
   * the month's usage of an organization to its customer admin (reports)
   * and its print manager (quota data). */
  {"own account", "POST", "/api/v1/usage", "", USAGE_BODY,
   W(USER_ONLY,          201, 201, 201, 201, 201, 201, 201), 0},
  {"own account", "GET", "/api/v1/me/quota", "", NULL,
   W(USER_ONLY,          200, 200, 200, 200, 200, 200, 200), 0},
  {"own account", "POST", "/api/v1/me/quota/check", "", "{\"pages\":1}",
   W(USER_ONLY,          200, 200, 200, 200, 200, 200, 200), 0},
  {"reports", "GET", "/api/v1/orgs/*/usage", "org:RHQ", NULL,
   W(USER_ONLY,          403, 404, 404, 404, 404, 404, 404), 0},
  {"reports", "GET", "/api/v1/orgs/*/usage", "org:Customer A", NULL,
   W(USER_ONLY,          403, 404, 404, 404, 404, 404, 404), 0},
  {"reports", "GET", "/api/v1/orgs/*/usage", "org:Sales B", NULL,
   W(USER_ONLY,          403, 403, 403, 404, 404, 404, 404), 0},
  {"reports", "GET", "/api/v1/orgs/*/usage", "org:Customer B", NULL,
   W(USER_ONLY,          403, 403, 403, 404, 404, 404, 404), 0},
  {"reports", "GET", "/api/v1/orgs/*/usage", "org:Customer C", NULL,
   W(USER_ONLY,          403, 403, 403, 200, 200, 403, 403), 0},
  {"reports", "GET", "/api/v1/orgs/*/usage", "org:Customer D", NULL,
   W(USER_ONLY,          403, 403, 403, 404, 404, 404, 404), 0},
  {"reports", "GET", "/api/v1/orgs/*/usage", "bad:", NULL,
   W(USER_ONLY,          404, 404, 404, 404, 404, 404, 404), 0},
  /* Contract reports go upward: one's own, and each child one made by
   * name; deeper ones only inside the parent's aggregate (403). */
  {"contracts", "GET", "/api/v1/orgs/*/contracts", "org:RHQ", NULL,
   W(USER_ONLY,          200, 404, 404, 404, 404, 404, 404), 0},
  {"contracts", "GET", "/api/v1/orgs/*/contracts", "org:Sales A", NULL,
   W(USER_ONLY,          200, 404, 404, 404, 404, 404, 404), 0},
  {"contracts", "GET", "/api/v1/orgs/*/contracts", "org:Customer A", NULL,
   W(USER_ONLY,          403, 404, 404, 404, 404, 404, 404), 0},
  {"contracts", "GET", "/api/v1/orgs/*/contracts", "org:Sales B", NULL,
   W(USER_ONLY,          200, 200, 200, 404, 404, 404, 404), 0},
  {"contracts", "GET", "/api/v1/orgs/*/contracts", "org:Customer B", NULL,
   W(USER_ONLY,          403, 200, 200, 404, 404, 404, 404), 0},
  {"contracts", "GET", "/api/v1/orgs/*/contracts", "org:Dealer A", NULL,
   W(USER_ONLY,          403, 200, 200, 404, 404, 404, 404), 0},
  {"contracts", "GET", "/api/v1/orgs/*/contracts", "org:Customer C", NULL,
   W(USER_ONLY,          403, 403, 403, 200, 403, 403, 403), 0},
  {"contracts", "GET", "/api/v1/orgs/*/contracts", "org:Customer D", NULL,
   W(USER_ONLY,          403, 403, 403, 404, 404, 404, 404), 0},
  /* The audit log: each organization's admin reads her own. */
  {"audit", "GET", "/api/v1/orgs/*/audit", "org:RHQ", NULL,
   W(USER_ONLY,          200, 404, 404, 404, 404, 404, 404), 0},
  {"audit", "GET", "/api/v1/orgs/*/audit", "org:Customer A", NULL,
   W(USER_ONLY,          403, 404, 404, 404, 404, 404, 404), 0},
  {"audit", "GET", "/api/v1/orgs/*/audit", "org:Sales B", NULL,
   W(USER_ONLY,          403, 200, 403, 404, 404, 404, 404), 0},
  {"audit", "GET", "/api/v1/orgs/*/audit", "org:Dealer A", NULL,
   W(USER_ONLY,          403, 403, 403, 404, 404, 404, 404), 0},
  {"audit", "GET", "/api/v1/orgs/*/audit", "org:Customer C", NULL,
   W(USER_ONLY,          403, 403, 403, 200, 403, 403, 403), 0},
  {"audit", "GET", "/api/v1/orgs/*/audit", "org:Customer D", NULL,
   W(USER_ONLY,          403, 403, 403, 404, 404, 404, 404), 0},
  /* Granting the external admin API: provider admins above a customer, and
   * its customer admin; only a customer admin can hold it (409). */
  {"API grant", "PUT", "/api/v1/users/*/api-access", "new-admin:Customer C", "{\"granted\":true}",
   W(USER_ONLY,          200, 200, 403, 200, 403, 403, 403), 0},
  /* Customer C's admin granting it to herself: "only if permitted", so
   * someone else must. */
  {"API grant", "PUT", "/api/v1/users/*/api-access", "user:ca@c.test", "{\"granted\":true}",
   W(USER_ONLY,          200, 200, 403, 403, 403, 403, 403), 0},
  {"API grant", "PUT", "/api/v1/users/*/api-access", "new-user:Customer C", "{\"granted\":true}",
   W(USER_ONLY,          409, 409, 403, 409, 403, 403, 403), 0},
  {"API grant", "PUT", "/api/v1/users/*/api-access", "new-admin:Customer D", "{\"granted\":true}",
   W(USER_ONLY,          200, 200, 403, 404, 404, 404, 404), 0},
  {"API grant", "PUT", "/api/v1/users/*/api-access", "new-admin:Customer A", "{\"granted\":true}",
   W(USER_ONLY,          200, 404, 404, 404, 404, 404, 404), 0},
  {"API grant", "PUT", "/api/v1/users/*/api-access", "new-admin:Sales B", "{\"granted\":true}",
   W(USER_ONLY,          403, 403, 403, 404, 404, 404, 404), 0},
  {"API grant", "PUT", "/api/v1/users/*/api-access", "user:rhq@a.test", "{\"granted\":true}",
   W(USER_ONLY,          403, 404, 404, 404, 404, 404, 404), 0},
  /* API keys: only a customer admin who holds the grant. */
  {"API grant", "POST", "/api/v1/api-keys", "", "{\"name\":\"k{uniq}\"}",
   W(USER_ONLY,          403, 403, 403, 201, 403, 403, 403), 0},
  {"API grant", "GET", "/api/v1/api-keys", "", NULL,
   W(USER_ONLY,          403, 403, 403, 200, 403, 403, 403), 0},
  {"API grant", "DELETE", "/api/v1/api-keys/*", "key:", NULL,
   W(USER_ONLY,          404, 404, 404, 204, 404, 404, 404), 0},
  /* The external admin API answers to its keys only. */
  {"API grant", "GET", "/api/v1/external/users", "", NULL,
   W(401, 200, 401, 401, 401, 401, 401, 401, 401, 401, 401), 0},
  {"API grant", "GET", "/api/v1/external/job-log", "", NULL,
   W(401, 200, 401, 401, 401, 401, 401, 401, 401, 401, 401), 0},
  /* Devices of customers (server-devices.c, Table 2-1 column 2): their
   * admin and the providers above (support only looks); nobody else. */
  {"devices", "POST", "/api/v1/orgs/*/devices", "org:RHQ", DEVICE_BODY,
   W(USER_ONLY,          403, 404, 404, 404, 404, 404, 404), 0},
  {"devices", "POST", "/api/v1/orgs/*/devices", "org:Customer A", DEVICE_BODY,
   W(USER_ONLY,          201, 404, 404, 404, 404, 404, 404), 0},
  {"devices", "POST", "/api/v1/orgs/*/devices", "org:Sales B", DEVICE_BODY,
   W(USER_ONLY,          403, 403, 403, 404, 404, 404, 404), 0},
  {"devices", "POST", "/api/v1/orgs/*/devices", "org:Customer B", DEVICE_BODY,
   W(USER_ONLY,          201, 201, 403, 404, 404, 404, 404), 0},
  {"devices", "POST", "/api/v1/orgs/*/devices", "org:Customer C", DEVICE_BODY,
   W(USER_ONLY,          201, 201, 403, 201, 403, 403, 403), 0},
  {"devices", "POST", "/api/v1/orgs/*/devices", "org:Customer D", DEVICE_BODY,
   W(USER_ONLY,          201, 201, 403, 404, 404, 404, 404), 0},
  {"devices", "GET", "/api/v1/orgs/*/devices", "org:RHQ", NULL,
   W(USER_ONLY,          403, 404, 404, 404, 404, 404, 404), 0},
  {"devices", "GET", "/api/v1/orgs/*/devices", "org:Customer A", NULL,
   W(USER_ONLY,          200, 404, 404, 404, 404, 404, 404), 0},
  {"devices", "GET", "/api/v1/orgs/*/devices", "org:Sales B", NULL,
   W(USER_ONLY,          403, 403, 403, 404, 404, 404, 404), 0},
  {"devices", "GET", "/api/v1/orgs/*/devices", "org:Customer B", NULL,
   W(USER_ONLY,          200, 200, 200, 404, 404, 404, 404), 0},
  {"devices", "GET", "/api/v1/orgs/*/devices", "org:Customer C", NULL,
   W(USER_ONLY,          200, 200, 200, 200, 403, 403, 403), 0},
  {"devices", "GET", "/api/v1/orgs/*/devices", "org:Customer D", NULL,
   W(USER_ONLY,          200, 200, 200, 404, 404, 404, 404), 0},
  {"devices", "GET", "/api/v1/devices/*", "new-device:Customer A", NULL,
   W(USER_ONLY,          200, 404, 404, 404, 404, 404, 404), 0},
  {"devices", "GET", "/api/v1/devices/*", "new-device:Customer B", NULL,
   W(USER_ONLY,          200, 200, 200, 404, 404, 404, 404), 0},
  {"devices", "GET", "/api/v1/devices/*", "new-device:Customer C", NULL,
   W(USER_ONLY,          200, 200, 200, 200, 403, 403, 403), 0},
  {"devices", "GET", "/api/v1/devices/*", "new-device:Customer D", NULL,
   W(USER_ONLY,          200, 200, 200, 404, 404, 404, 404), 0},
  {"devices", "GET", "/api/v1/devices/*", "bad:", NULL,
   W(USER_ONLY,          404, 404, 404, 404, 404, 404, 404), 0},
  {"devices", "PATCH", "/api/v1/devices/*", "new-device:Customer A", "{\"name\":\"DEV{uniq}\"}",
   W(USER_ONLY,          200, 404, 404, 404, 404, 404, 404), 0},
  {"devices", "PATCH", "/api/v1/devices/*", "new-device:Customer B", "{\"name\":\"DEV{uniq}\"}",
   W(USER_ONLY,          200, 200, 403, 404, 404, 404, 404), 0},
  {"devices", "PATCH", "/api/v1/devices/*", "new-device:Customer C", "{\"name\":\"DEV{uniq}\"}",
   W(USER_ONLY,          200, 200, 403, 200, 403, 403, 403), 0},
  {"devices", "DELETE", "/api/v1/devices/*", "new-device:Customer A", NULL,
   W(USER_ONLY,          204, 404, 404, 404, 404, 404, 404), 0},
  {"devices", "DELETE", "/api/v1/devices/*", "new-device:Customer B", NULL,
   W(USER_ONLY,          204, 204, 403, 404, 404, 404, 404), 0},
  {"devices", "DELETE", "/api/v1/devices/*", "new-device:Customer C", NULL,
   W(USER_ONLY,          204, 204, 403, 204, 403, 403, 403), 0},
  {"devices", "DELETE", "/api/v1/devices/*", "new-device:Customer D", NULL,
   W(USER_ONLY,          204, 204, 403, 404, 404, 404, 404), 0},
  {"devices", "POST", "/api/v1/devices/*/secret", "new-device:Customer A", NULL,
   W(USER_ONLY,          200, 404, 404, 404, 404, 404, 404), 0},
  {"devices", "POST", "/api/v1/devices/*/secret", "new-device:Customer B", NULL,
   W(USER_ONLY,          200, 200, 403, 404, 404, 404, 404), 0},
  {"devices", "POST", "/api/v1/devices/*/secret", "new-device:Customer C", NULL,
   W(USER_ONLY,          200, 200, 403, 200, 403, 403, 403), 0},
  /* At the device: the device's session first, then its user's. */
  {"device login", "POST", "/api/v1/device/login", "", "{}",
   W(400, 400, 400, 400, 400, 400, 400, 400, 400, 400, 400), 0},
  {"device login", "POST", "/api/v1/device/user-login", "", "{}",
   W(401, 401, 400, 403, 403, 403, 403, 403, 403, 403, 403), 0},
  {"device login", "POST", "/api/v1/device/pin-login", "", "{}",
   W(401, 401, 400, 403, 403, 403, 403, 403, 403, 403, 403), 0},
  {"device login", "POST", "/api/v1/device/card-login", "", "{}",
   W(401, 401, 400, 403, 403, 403, 403, 403, 403, 403, 403), 0},
  {"device login", "POST", "/api/v1/device/cards", "", "{}",
   W(401, 401, 403, 400, 403, 403, 403, 403, 403, 403, 403), 0},
  /* PINs and ID cards: one's own always; other users' as users data. */
  {"own account", "GET", "/api/v1/me/pin", "", NULL,
   W(USER_ONLY,          200, 200, 200, 200, 200, 200, 200), 0},
  {"own account", "PUT", "/api/v1/me/pin", "", "{\"pin\":\"{pin4}\"}",
   W(USER_ONLY,          200, 200, 200, 200, 200, 200, 200), 0},
  {"own account", "POST", "/api/v1/me/pin/generate", "", NULL,
   W(USER_ONLY,          200, 200, 200, 200, 200, 200, 200), 0},
  {"own account", "GET", "/api/v1/me/cards", "", NULL,
   W(USER_ONLY,          200, 200, 200, 200, 200, 200, 200), 0},
  {"own account", "POST", "/api/v1/me/cards", "", "{\"card_id\":\"CARD{uniq}\"}",
   W(USER_ONLY,          201, 201, 201, 201, 201, 201, 201), 0},
  {"users", "GET", "/api/v1/users/*/pin", "new-user:RHQ", NULL,
   W(USER_ONLY,          200, 404, 404, 404, 404, 404, 404), 0},
  {"users", "GET", "/api/v1/users/*/pin", "new-user:Sales B", NULL,
   W(USER_ONLY,          403, 200, 403, 404, 404, 404, 404), 0},
  {"users", "GET", "/api/v1/users/*/pin", "new-user:Customer B", NULL,
   W(USER_ONLY,          403, 403, 403, 404, 404, 404, 404), 0},
  {"users", "GET", "/api/v1/users/*/pin", "new-user:Customer C", NULL,
   W(USER_ONLY,          403, 403, 403, 200, 403, 403, 403), 0},
  {"users", "GET", "/api/v1/users/*/pin", "new-user:Customer D", NULL,
   W(USER_ONLY,          403, 403, 403, 404, 404, 404, 404), 0},
  {"users", "PUT", "/api/v1/users/*/pin", "new-user:Customer A", "{\"generate\":true}",
   W(USER_ONLY,          403, 404, 404, 404, 404, 404, 404), 0},
  {"users", "PUT", "/api/v1/users/*/pin", "new-user:Sales B", "{\"generate\":true}",
   W(USER_ONLY,          403, 200, 403, 404, 404, 404, 404), 0},
  {"users", "PUT", "/api/v1/users/*/pin", "new-user:Customer C", "{\"generate\":true}",
   W(USER_ONLY,          403, 403, 403, 200, 403, 403, 403), 0},
  {"users", "PUT", "/api/v1/users/*/pin", "new-user:Customer D", "{\"generate\":true}",
   W(USER_ONLY,          403, 403, 403, 404, 404, 404, 404), 0},
  {"own account", "DELETE", "/api/v1/me/pin", "", NULL,
   W(USER_ONLY,          204, 204, 204, 204, 204, 204, 204), 0},
  {"users", "DELETE", "/api/v1/users/*/pin", "new-user:Customer A", NULL,
   W(USER_ONLY,          403, 404, 404, 404, 404, 404, 404), 0},
  {"users", "DELETE", "/api/v1/users/*/pin", "new-user:Sales B", NULL,
   W(USER_ONLY,          403, 204, 403, 404, 404, 404, 404), 0},
  {"users", "DELETE", "/api/v1/users/*/pin", "new-user:Customer C", NULL,
   W(USER_ONLY,          403, 403, 403, 204, 403, 403, 403), 0},
  {"users", "DELETE", "/api/v1/users/*/pin", "new-user:Customer D", NULL,
   W(USER_ONLY,          403, 403, 403, 404, 404, 404, 404), 0},
  {"users", "GET", "/api/v1/users/*/cards", "new-user:RHQ", NULL,
   W(USER_ONLY,          200, 404, 404, 404, 404, 404, 404), 0},
  {"users", "GET", "/api/v1/users/*/cards", "new-user:Customer A", NULL,
   W(USER_ONLY,          403, 404, 404, 404, 404, 404, 404), 0},
  {"users", "GET", "/api/v1/users/*/cards", "new-user:Sales B", NULL,
   W(USER_ONLY,          403, 200, 403, 404, 404, 404, 404), 0},
  {"users", "GET", "/api/v1/users/*/cards", "new-user:Customer C", NULL,
   W(USER_ONLY,          403, 403, 403, 200, 403, 403, 403), 0},
  {"users", "GET", "/api/v1/users/*/cards", "new-user:Customer D", NULL,
   W(USER_ONLY,          403, 403, 403, 404, 404, 404, 404), 0},
  {"users", "POST", "/api/v1/users/*/cards", "new-user:Customer A", "{\"card_id\":\"CARD{uniq}\"}",
   W(USER_ONLY,          403, 404, 404, 404, 404, 404, 404), 0},
  {"users", "POST", "/api/v1/users/*/cards", "new-user:Sales B", "{\"card_id\":\"CARD{uniq}\"}",
   W(USER_ONLY,          403, 201, 403, 404, 404, 404, 404), 0},
  {"users", "POST", "/api/v1/users/*/cards", "new-user:Customer C", "{\"card_id\":\"CARD{uniq}\"}",
   W(USER_ONLY,          403, 403, 403, 201, 403, 403, 403), 0},
  {"users", "POST", "/api/v1/users/*/cards", "new-user:Customer D", "{\"card_id\":\"CARD{uniq}\"}",
   W(USER_ONLY,          403, 403, 403, 404, 404, 404, 404), 0},
  /* A card: its owner, or an admin who may see and change its owner. */
  {"users", "DELETE", "/api/v1/cards/*", "new-card:cu@c.test", NULL,
   W(USER_ONLY,          404, 404, 404, 204, 404, 204, 404), 0},
  {"users", "DELETE", "/api/v1/cards/*", "new-card:ca@c.test", NULL,
   W(USER_ONLY,          404, 404, 404, 204, 404, 404, 404), 0},
  {"users", "DELETE", "/api/v1/cards/*", "new-card:pa@b.test", NULL,
   W(USER_ONLY,          404, 204, 404, 404, 404, 404, 404), 0},
  {"users", "DELETE", "/api/v1/cards/*", "bad:", NULL,
   W(USER_ONLY,          404, 404, 404, 404, 404, 404, 404), 0},
  /* Single sign-on of a customer organization (server-oidc.c): part of its
   * login policy (every user may read her organization's; its admin and
   * the provider admins above change it). */
  {"policy", "GET", "/api/v1/orgs/*/sso", "org:Customer A", NULL,
   W(USER_ONLY,          200, 404, 404, 404, 404, 404, 404), 0},
  {"policy", "GET", "/api/v1/orgs/*/sso", "org:Customer B", NULL,
   W(USER_ONLY,          200, 200, 200, 404, 404, 404, 404), 0},
  {"policy", "GET", "/api/v1/orgs/*/sso", "org:Customer C", NULL,
   W(USER_ONLY,          200, 200, 200, 200, 200, 200, 200), 0},
  {"policy", "GET", "/api/v1/orgs/*/sso", "org:Customer D", NULL,
   W(USER_ONLY,          200, 200, 200, 404, 404, 404, 404), 0},
  {"policy", "PUT", "/api/v1/orgs/*/sso", "org:RHQ", SSO_BODY,
   W(USER_ONLY,          400, 404, 404, 404, 404, 404, 404), 0},
  {"policy", "PUT", "/api/v1/orgs/*/sso", "org:Sales B", SSO_BODY,
   W(USER_ONLY,          400, 400, 403, 404, 404, 404, 404), 0},
  {"policy", "PUT", "/api/v1/orgs/*/sso", "org:Customer A", SSO_BODY,
   W(USER_ONLY,          200, 404, 404, 404, 404, 404, 404), 0},
  {"policy", "PUT", "/api/v1/orgs/*/sso", "org:Customer B", SSO_BODY,
   W(USER_ONLY,          200, 200, 403, 404, 404, 404, 404), 0},
  {"policy", "PUT", "/api/v1/orgs/*/sso", "org:Customer C", SSO_BODY,
   W(USER_ONLY,          200, 200, 403, 200, 403, 403, 403), 0},
  {"policy", "PUT", "/api/v1/orgs/*/sso", "org:Customer D", SSO_BODY,
   W(USER_ONLY,          200, 200, 403, 404, 404, 404, 404), 0},
  /* Starting a sign-in is public and says nothing of organizations without
   * single sign-on; the rest of the flow is the provider's redirect. */
  {"login", "GET", "/api/v1/sso/*/start", "bad:", NULL,
   W(404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404), 0},
  {"login", "GET", "/api/v1/sso/*/start", "org:Sales B", NULL,
   W(404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404), 0},
  {"login", "GET", "/api/v1/sso/lookup", "", NULL,
   W(400, 400, 400, 400, 400, 400, 400, 400, 400, 400, 400), 0},
  {"login", "GET", "/api/v1/sso/callback", "", NULL,
   W(400, 400, 400, 400, 400, 400, 400, 400, 400, 400, 400), 0},
  {"login", "POST", "/api/v1/sso/exchange", "", "{}",
   W(400, 400, 400, 400, 400, 400, 400, 400, 400, 400, 400), 0},
  {"policy", "DELETE", "/api/v1/orgs/*/sso", "sso-org:Customer A", NULL,
   W(USER_ONLY,          204, 404, 404, 404, 404, 404, 404), 0},
  {"policy", "DELETE", "/api/v1/orgs/*/sso", "sso-org:Customer B", NULL,
   W(USER_ONLY,          204, 204, 403, 404, 404, 404, 404), 0},
  {"policy", "DELETE", "/api/v1/orgs/*/sso", "sso-org:Customer C", NULL,
   W(USER_ONLY,          204, 204, 403, 204, 403, 403, 403), 0},
  /* Login policies (server-policy.c): every user reads her organization's
   * settings and her own; the admins of it and above change them. */
  {"policy", "GET", "/api/v1/orgs/*/settings", "org:RHQ", NULL,
   W(USER_ONLY,          200, 404, 404, 404, 404, 404, 404), 0},
  {"policy", "GET", "/api/v1/orgs/*/settings", "org:Sales A", NULL,
   W(USER_ONLY,          200, 404, 404, 404, 404, 404, 404), 0},
  {"policy", "GET", "/api/v1/orgs/*/settings", "org:Sales B", NULL,
   W(USER_ONLY,          200, 200, 200, 404, 404, 404, 404), 0},
  {"policy", "GET", "/api/v1/orgs/*/settings", "org:Customer B", NULL,
   W(USER_ONLY,          200, 200, 200, 404, 404, 404, 404), 0},
  {"policy", "GET", "/api/v1/orgs/*/settings", "org:Dealer A", NULL,
   W(USER_ONLY,          200, 200, 200, 404, 404, 404, 404), 0},
  {"policy", "GET", "/api/v1/orgs/*/settings", "org:Customer C", NULL,
   W(USER_ONLY,          200, 200, 200, 200, 200, 200, 200), 0},
  {"policy", "GET", "/api/v1/orgs/*/settings", "org:Customer D", NULL,
   W(USER_ONLY,          200, 200, 200, 404, 404, 404, 404), 0},
  {"policy", "PATCH", "/api/v1/orgs/*/settings", "org:RHQ", SETTINGS_BODY,
   W(USER_ONLY,          200, 404, 404, 404, 404, 404, 404), 0},
  {"policy", "PATCH", "/api/v1/orgs/*/settings", "org:Customer A", SETTINGS_BODY,
   W(USER_ONLY,          200, 404, 404, 404, 404, 404, 404), 0},
  {"policy", "PATCH", "/api/v1/orgs/*/settings", "org:Sales B", SETTINGS_BODY,
   W(USER_ONLY,          200, 200, 403, 404, 404, 404, 404), 0},
  {"policy", "PATCH", "/api/v1/orgs/*/settings", "org:Customer B", SETTINGS_BODY,
   W(USER_ONLY,          200, 200, 403, 404, 404, 404, 404), 0},
  {"policy", "PATCH", "/api/v1/orgs/*/settings", "org:Dealer A", SETTINGS_BODY,
   W(USER_ONLY,          200, 200, 403, 404, 404, 404, 404), 0},
  {"policy", "PATCH", "/api/v1/orgs/*/settings", "org:Customer C", SETTINGS_BODY,
   W(USER_ONLY,          200, 200, 403, 200, 403, 403, 403), 0},
  {"policy", "PATCH", "/api/v1/orgs/*/settings", "org:Customer D", SETTINGS_BODY,
   W(USER_ONLY,          200, 200, 403, 404, 404, 404, 404), 0},
  {"own account", "GET", "/api/v1/me/policy", "", NULL,
   W(USER_ONLY,          200, 200, 200, 200, 200, 200, 200), 0},
  /* (An empty body: every user reaches the route; changing a password
   * ends the caller's sessions, which test-server-policy.c covers.) */
  {"own account", "POST", "/api/v1/me/password", "", "{}",
   W(USER_ONLY,          400, 400, 400, 400, 400, 400, 400), 0},
  {"login", "POST", "/api/v1/token/refresh", "", "{}",
   W(400, 400, 400, 400, 400, 400, 400, 400, 400, 400, 400), 0},
  /* The email code step of a login (server-mfa.c): public, bound to its
   * own mfa_token. */
  {"login", "POST", "/api/v1/login/mfa", "", "{}",
   W(400, 400, 400, 400, 400, 400, 400, 400, 400, 400, 400), 0},
};
/* clang-format on */

/* Routes no row can reach, each with the reason (printed by the test). */
static const struct {
  const char *method;
  const char *pattern;
  const char *why;
} exempt[] = {
    {NULL, NULL, NULL},
};

/* Table 2-1 itself, asked of kcps__server_may() for every kind of data,
 * including kinds whose routes a caller cannot reach otherwise. One
 * character a role: w (see and change), r (see only), - (neither); the
 * roles in column order rhq, paB, psB, caC, pmC, cuC, guC. No session, a
 * device and a user at a device: never. */
static const struct {
  kcps_server_data_t data;
  const char *kind;
  const char *org;
  const char *rw;
} table21[] = {
    {KCPS_DATA_ORGS, "org info", "RHQ", "w------"},
    {KCPS_DATA_ORGS, "org info", "Sales A", "w------"},
    {KCPS_DATA_ORGS, "org info", "Customer A", "w------"},
    {KCPS_DATA_ORGS, "org info", "Sales B", "wwr----"},
    {KCPS_DATA_ORGS, "org info", "Customer B", "wwr----"},
    {KCPS_DATA_ORGS, "org info", "Dealer A", "wwr----"},
    {KCPS_DATA_ORGS, "org info", "Customer C", "wwrrrrr"},
    {KCPS_DATA_ORGS, "org info", "Customer D", "wwr----"},
    {KCPS_DATA_USERS, "users", "RHQ", "w------"},
    {KCPS_DATA_USERS, "users", "Sales A", "-------"},
    {KCPS_DATA_USERS, "users", "Customer A", "-------"},
    {KCPS_DATA_USERS, "users", "Sales B", "-w-----"},
    {KCPS_DATA_USERS, "users", "Customer B", "-------"},
    {KCPS_DATA_USERS, "users", "Dealer A", "-------"},
    {KCPS_DATA_USERS, "users", "Customer C", "---w---"},
    {KCPS_DATA_USERS, "users", "Customer D", "-------"},
    {KCPS_DATA_USER_QUOTA, "quota", "RHQ", "-------"},
    {KCPS_DATA_USER_QUOTA, "quota", "Customer A", "-------"},
    {KCPS_DATA_USER_QUOTA, "quota", "Sales B", "-------"},
    {KCPS_DATA_USER_QUOTA, "quota", "Customer B", "-------"},
    {KCPS_DATA_USER_QUOTA, "quota", "Customer C", "---ww--"},
    {KCPS_DATA_USER_QUOTA, "quota", "Customer D", "-------"},
    {KCPS_DATA_DEVICES, "devices", "RHQ", "-------"},
    {KCPS_DATA_DEVICES, "devices", "Sales A", "-------"},
    {KCPS_DATA_DEVICES, "devices", "Customer A", "w------"},
    {KCPS_DATA_DEVICES, "devices", "Sales B", "-------"},
    {KCPS_DATA_DEVICES, "devices", "Customer B", "wwr----"},
    {KCPS_DATA_DEVICES, "devices", "Dealer A", "-------"},
    {KCPS_DATA_DEVICES, "devices", "Customer C", "wwrw---"},
    {KCPS_DATA_DEVICES, "devices", "Customer D", "wwr----"},
    {KCPS_DATA_REPORTS, "reports", "RHQ", "-------"},
    {KCPS_DATA_REPORTS, "reports", "Customer A", "-------"},
    {KCPS_DATA_REPORTS, "reports", "Sales B", "-------"},
    {KCPS_DATA_REPORTS, "reports", "Customer B", "-------"},
    {KCPS_DATA_REPORTS, "reports", "Customer C", "---r---"},
    {KCPS_DATA_REPORTS, "reports", "Customer D", "-------"},
    {KCPS_DATA_CONTRACTS, "contracts", "RHQ", "w------"},
    {KCPS_DATA_CONTRACTS, "contracts", "Sales A", "w------"},
    {KCPS_DATA_CONTRACTS, "contracts", "Customer A", "w------"},
    {KCPS_DATA_CONTRACTS, "contracts", "Sales B", "wwr----"},
    {KCPS_DATA_CONTRACTS, "contracts", "Customer B", "wwr----"},
    {KCPS_DATA_CONTRACTS, "contracts", "Dealer A", "wwr----"},
    {KCPS_DATA_CONTRACTS, "contracts", "Customer C", "wwrr---"},
    {KCPS_DATA_CONTRACTS, "contracts", "Customer D", "wwr----"},
    {KCPS_DATA_POLICY, "policy", "RHQ", "w------"},
    {KCPS_DATA_POLICY, "policy", "Sales A", "w------"},
    {KCPS_DATA_POLICY, "policy", "Customer A", "w------"},
    {KCPS_DATA_POLICY, "policy", "Sales B", "wwr----"},
    {KCPS_DATA_POLICY, "policy", "Customer B", "wwr----"},
    {KCPS_DATA_POLICY, "policy", "Dealer A", "wwr----"},
    {KCPS_DATA_POLICY, "policy", "Customer C", "wwrwrrr"},
    {KCPS_DATA_POLICY, "policy", "Customer D", "wwr----"},
    {KCPS_DATA_AUDIT, "audit", "RHQ", "r------"},
    {KCPS_DATA_AUDIT, "audit", "Sales A", "-------"},
    {KCPS_DATA_AUDIT, "audit", "Customer A", "-------"},
    {KCPS_DATA_AUDIT, "audit", "Sales B", "-r-----"},
    {KCPS_DATA_AUDIT, "audit", "Customer B", "-------"},
    {KCPS_DATA_AUDIT, "audit", "Dealer A", "-------"},
    {KCPS_DATA_AUDIT, "audit", "Customer C", "---r---"},
    {KCPS_DATA_AUDIT, "audit", "Customer D", "-------"},
    {KCPS_DATA_API, "API grant", "RHQ", "-------"},
    {KCPS_DATA_API, "API grant", "Sales A", "-------"},
    {KCPS_DATA_API, "API grant", "Customer A", "w------"},
    {KCPS_DATA_API, "API grant", "Sales B", "-------"},
    {KCPS_DATA_API, "API grant", "Customer B", "ww-----"},
    {KCPS_DATA_API, "API grant", "Dealer A", "-------"},
    {KCPS_DATA_API, "API grant", "Customer C", "ww-w---"},
    {KCPS_DATA_API, "API grant", "Customer D", "ww-----"},
};

/* The walk ----------------------------------------------------------------- */

typedef struct {
  char *tokens[N_ACTORS];
  char *passwords[N_ACTORS];
  GHashTable *jobs; /* email -> job public id */
  unsigned uniq;
} world_t;

static world_t world;

static char *
expect_created(const char *what, const char *method, const char *path, const char *bearer,
               const char *body, const char *member)
{
  g_autoptr(JsonNode) answer = NULL;
  long st = sfx_call(method, path, bearer, body, &answer);
  const char *msg = sfx_str(answer, "message");
  ck_assert_msg(st == 201, "%s: got %ld (%s), expected 201", what, st, msg ? msg : "-");
  return member ? g_strdup(sfx_str(answer, member)) : NULL;
}

/* Creates a child organization through the API with its first admin. */
static char *
make_org(const char *token, const char *parent_id, const char *name, const char *type,
         const char *admin_email)
{
  g_autofree char *path = g_strdup_printf("/api/v1/orgs/%s/children", parent_id);
  g_autofree char *body = g_strdup_printf(
      "{\"name\":\"%s\",\"type\":\"%s\",\"admin\":{\"email\":\"%s\",\"name\":\"Admin\","
      "\"password\":\"" PW "\"}}",
      name, type, admin_email);
  return expect_created(name, "POST", path, token, body, "id");
}

static void
make_user(const char *token, const char *org_id, const char *email, const char *role)
{
  g_autofree char *path = g_strdup_printf("/api/v1/orgs/%s/users", org_id);
  g_autofree char *body =
      g_strdup_printf("{\"email\":\"%s\",\"name\":\"%s\",\"role\":\"%s\",\"password\":\"" PW "\"}",
                      email, email, role);
  g_free(expect_created(email, "POST", path, token, body, NULL));
}

/* The session token of the user caller with this email. */
static const char *
token_of(const char *email)
{
  for (int a = A_RHQ; a < N_ACTORS; a++)
    if (strcmp(actor_emails[a], email) == 0)
      return world.tokens[a];
  ck_abort_msg("no caller %s", email);
  return NULL;
}

static char *
register_job(const char *token, const char *what)
{
  g_autofree char *id = g_strdup_printf("%u", ++world.uniq);
  g_autofree char *body = g_strdup(JOB_BODY);
  g_autofree char *filled = NULL;
  {
    g_auto(GStrv) parts = g_strsplit(body, "{uniq}", -1);
    filled = g_strjoinv(id, parts);
  }
  return expect_created(what, "POST", "/api/v1/jobs", token, filled, "id");
}

static void
configure_sso(const char *org_id)
{
  g_autofree char *path = g_strdup_printf("/api/v1/orgs/%s/sso", org_id);
  g_autoptr(JsonNode) answer = NULL;
  long st = sfx_call("PUT", path, world.tokens[A_RHQ], SSO_BODY, &answer);
  ck_assert_msg(st == 200, "single sign-on for %s: got %ld (%s), expected 200", org_id, st,
                sfx_str(answer, "message") ? sfx_str(answer, "message") : "-");
}

/* The section-3 tree (Fig. 2-1, 2-3), built as rhq@a.test and the admins it
 * names: RHQ → Sales A → Customer A (the demo); RHQ → Sales B → Customer B;
 * Sales B → Dealer A → Customer C, Customer D. */
static void
build_world(void)
{
  memset(&world, 0, sizeof world);
  g_autofree char *rhq_pw = sfx_credential("rhq@a.test password: ");
  ck_assert_msg(rhq_pw != NULL, "the demo credentials lack rhq@a.test");
  char *rhq = sfx_login("rhq@a.test", rhq_pw);
  g_autofree char *root = sfx_org_public_id("RHQ");

  g_autofree char *sales_b = make_org(rhq, root, "Sales B", "provider", "pa@b.test");
  g_free(make_org(rhq, sales_b, "Customer B", "customer", "cab@b.test"));
  g_autofree char *dealer = make_org(rhq, sales_b, "Dealer A", "provider", "da@d.test");
  g_autofree char *cust_c = make_org(rhq, dealer, "Customer C", "customer", "ca@c.test");
  g_autofree char *cust_d = make_org(rhq, dealer, "Customer D", "customer", "cad@d.test");

  char *pa = sfx_login("pa@b.test", PW);
  make_user(pa, sales_b, "ps@b.test", "provider_support");
  char *ca = sfx_login("ca@c.test", PW);
  make_user(ca, cust_c, "pm@c.test", "print_manager");
  make_user(ca, cust_c, "cu@c.test", "customer_user");
  make_user(ca, cust_c, "gu@c.test", "guest_user");
  g_autofree char *cad = sfx_login("cad@d.test", PW);
  make_user(cad, cust_d, "cud@d.test", "customer_user");

  world.tokens[A_RHQ] = rhq;
  world.tokens[A_PA] = pa;
  world.tokens[A_CA] = ca;
  world.tokens[A_PS] = sfx_login("ps@b.test", PW);
  world.tokens[A_PM] = sfx_login("pm@c.test", PW);
  world.tokens[A_CU] = sfx_login("cu@c.test", PW);
  world.tokens[A_GU] = sfx_login("gu@c.test", PW);
  world.tokens[A_DEV] = sfx_device_login();
  world.tokens[A_ATDEV] = sfx_pin_login();
  world.passwords[A_RHQ] = g_strdup(rhq_pw);
  for (int a = A_PA; a < N_ACTORS; a++)
    world.passwords[a] = g_strdup(PW);

  /* Customer C's admin holds the external admin API and one key. */
  g_autofree char *ca_id = NULL;
  {
    g_autoptr(JsonNode) me = NULL;
    ck_assert_int_eq(sfx_call("GET", "/api/v1/me", ca, NULL, &me), 200);
    ca_id = g_strdup(sfx_str(me, "id"));
  }
  g_autofree char *grant = g_strdup_printf("/api/v1/users/%s/api-access", ca_id);
  ck_assert_int_eq(sfx_call("PUT", grant, pa, "{\"granted\":true}", NULL), 200);
  world.tokens[A_KEY] =
      expect_created("API key", "POST", "/api/v1/api-keys", ca, "{\"name\":\"matrix\"}", "key");

  /* Single sign-on on every customer (so that reading it is 200 where
   * allowed, not "none configured"). */
  const char *customers[] = {"Customer A", "Customer B", "Customer C", "Customer D"};
  for (size_t i = 0; i < G_N_ELEMENTS(customers); i++) {
    g_autofree char *id = sfx_org_public_id(customers[i]);
    configure_sso(id);
  }

  /* A job for each user, and one of alice's for the device rows. */
  world.jobs = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
  g_autofree char *alice = sfx_login("alice@a.test", sfx.alice_pw);
  g_hash_table_insert(world.jobs, g_strdup("alice@a.test"), register_job(alice, "alice's job"));
  for (int a = A_RHQ; a < N_ACTORS; a++)
    g_hash_table_insert(world.jobs, g_strdup(actor_emails[a]),
                        register_job(world.tokens[a], actor_emails[a]));
}

static void
free_world(void)
{
  for (int a = 0; a < N_ACTORS; a++) {
    g_free(world.tokens[a]);
    g_free(world.passwords[a]);
  }
  if (world.jobs)
    g_hash_table_destroy(world.jobs);
  memset(&world, 0, sizeof world);
}

static char *
user_public_id(const char *email)
{
  g_mutex_lock(&sfx.server->lock);
  sqlite3_stmt *stmt =
      kcps__server_db_prepare(sfx.server, "SELECT public_id FROM users WHERE email = ?", NULL);
  char *id = NULL;
  if (stmt) {
    sqlite3_bind_text(stmt, 1, email, -1, SQLITE_STATIC);
    if (kcps__server_db_step(sfx.server, stmt, NULL) == SQLITE_ROW)
      id = kcps__server_db_dup_text(stmt, 0);
  }
  sqlite3_finalize(stmt);
  g_mutex_unlock(&sfx.server->lock);
  ck_assert_msg(id != NULL, "no user %s", email);
  return id;
}

static char *
org_type(const char *name)
{
  gint64 id = sfx_org_id(name);
  g_mutex_lock(&sfx.server->lock);
  char *type = kcps__server_org_type_locked(sfx.server, id);
  g_mutex_unlock(&sfx.server->lock);
  ck_assert_msg(type != NULL, "no organization %s", name);
  return type;
}

/* A user inserted directly (no password: these never log in). */
static char *
fresh_user(const char *org, bool admin)
{
  g_autofree char *type = org_type(org);
  bool customer = strcmp(type, "customer") == 0;
  const char *role = customer ? (admin ? "customer_admin" : "customer_user")
                              : (admin ? "provider_admin" : "provider_support");
  char *public_id = g_uuid_string_random();
  g_autofree char *email = g_strdup_printf("fresh%u@m.test", ++world.uniq);
  gint64 org_id = sfx_org_id(org);
  g_mutex_lock(&sfx.server->lock);
  sqlite3_stmt *stmt = kcps__server_db_prepare(
      sfx.server,
      "INSERT INTO users (public_id, org_id, email, name, role, created) VALUES (?, ?, ?, ?, ?, ?)",
      NULL);
  bool ok = false;
  if (stmt) {
    sqlite3_bind_text(stmt, 1, public_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 2, org_id);
    sqlite3_bind_text(stmt, 3, email, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 4, email, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 5, role, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 6, kcps__server_now());
    ok = kcps__server_db_step(sfx.server, stmt, NULL) == SQLITE_DONE;
  }
  sqlite3_finalize(stmt);
  g_mutex_unlock(&sfx.server->lock);
  ck_assert_msg(ok, "fresh user in %s", org);
  return public_id;
}

/* A group inserted directly into org, with member (a user public id) in it
 * unless NULL; its public id (g_free). */
static char *
fresh_group(const char *org, const char *member)
{
  char *public_id = g_uuid_string_random();
  g_autofree char *name = g_strdup_printf("fresh-group-%u", ++world.uniq);
  gint64 org_id = sfx_org_id(org);
  g_mutex_lock(&sfx.server->lock);
  sqlite3_stmt *stmt = kcps__server_db_prepare(
      sfx.server,
      "INSERT INTO user_groups (public_id, org_id, name, created) VALUES (?, ?, ?, 0)", NULL);
  bool ok = false;
  if (stmt) {
    sqlite3_bind_text(stmt, 1, public_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 2, org_id);
    sqlite3_bind_text(stmt, 3, name, -1, SQLITE_STATIC);
    ok = kcps__server_db_step(sfx.server, stmt, NULL) == SQLITE_DONE;
  }
  sqlite3_finalize(stmt);
  if (ok && member) {
    stmt = kcps__server_db_prepare(
        sfx.server,
        "INSERT INTO group_members (group_id, user_id, added) SELECT g.id, u.id, 0"
        " FROM user_groups g, users u WHERE g.public_id = ? AND u.public_id = ?",
        NULL);
    ok = stmt != NULL;
    if (stmt) {
      sqlite3_bind_text(stmt, 1, public_id, -1, SQLITE_STATIC);
      sqlite3_bind_text(stmt, 2, member, -1, SQLITE_STATIC);
      ok = kcps__server_db_step(sfx.server, stmt, NULL) == SQLITE_DONE &&
           sqlite3_changes(sfx.server->db) == 1;
    }
    sqlite3_finalize(stmt);
  }
  g_mutex_unlock(&sfx.server->lock);
  ck_assert_msg(ok, "fresh group in %s", org);
  return public_id;
}

/* The public id target names (fresh ones made now); g_free. */
static char *
resolve(const char *target)
{
  if (g_str_has_prefix(target, "org:"))
    return sfx_org_public_id(target + 4);
  if (g_str_has_prefix(target, "user:"))
    return user_public_id(target + 5);
  if (g_str_has_prefix(target, "new-user:"))
    return fresh_user(target + 9, false);
  if (g_str_has_prefix(target, "new-admin:"))
    return fresh_user(target + 10, true);
  if (g_str_has_prefix(target, "new-org:")) {
    g_autofree char *name = g_strdup_printf("fresh-org-%u", ++world.uniq);
    sfx_add_org(target + 8, name, "customer");
    return sfx_org_public_id(name);
  }
  if (g_str_has_prefix(target, "job:")) {
    const char *id = g_hash_table_lookup(world.jobs, target + 4);
    ck_assert_msg(id != NULL, "no job of %s", target + 4);
    return g_strdup(id);
  }
  if (g_str_has_prefix(target, "new-device:")) {
    g_autofree char *org = sfx_org_public_id(target + 11);
    g_autofree char *path = g_strdup_printf("/api/v1/orgs/%s/devices", org);
    unsigned n = ++world.uniq;
    g_autofree char *body = g_strdup_printf("{\"serial\":\"NSN%u\",\"name\":\"NDEV%u\"}", n, n);
    return expect_created("fresh device", "POST", path, world.tokens[A_RHQ], body, "id");
  }
  if (g_str_has_prefix(target, "new-job:"))
    return register_job(token_of(target + 8), "fresh job");
  if (g_str_has_prefix(target, "new-card:")) {
    const char *owner = token_of(target + 9);
    g_autofree char *body = g_strdup_printf("{\"card_id\":\"NC%u\"}", ++world.uniq);
    return expect_created("fresh card", "POST", "/api/v1/me/cards", owner, body, "id");
  }
  if (g_str_has_prefix(target, "sso-org:")) {
    char *org = sfx_org_public_id(target + 8);
    configure_sso(org);
    return org;
  }
  if (strcmp(target, "key:") == 0)
    return expect_created("fresh API key", "POST", "/api/v1/api-keys", world.tokens[A_CA],
                          "{\"name\":\"fresh\"}", "id");
  if (g_str_has_prefix(target, "new-group:"))
    return fresh_group(target + 10, NULL);
  if (g_str_has_prefix(target, "new-member:")) {
    g_autofree char *member = fresh_user(target + 11, false);
    g_autofree char *group = fresh_group(target + 11, member);
    return g_strconcat(group, "|", member, NULL);
  }
  if (strcmp(target, "bad:") == 0)
    return g_uuid_string_random();
  ck_abort_msg("unknown target %s", target);
  return NULL;
}

static char *
replace(const char *text, const char *token, const char *value)
{
  g_auto(GStrv) parts = g_strsplit(text, token, -1);
  return g_strjoinv(value, parts);
}

/* The body of a cell: {uniq}, {role} and {name} filled in. */
static char *
fill_body(const row_t *row)
{
  if (!row->body)
    return NULL;
  g_autofree char *n = g_strdup_printf("%u", ++world.uniq);
  char *body = replace(row->body, "{uniq}", n);
  if (strstr(body, "{pin4}")) {
    /* Distinct 4-digit PINs (the default length), never 4321 (alice's). */
    g_autofree char *pin = g_strdup_printf("%04u", 5000 + world.uniq % 4000);
    char *next = replace(body, "{pin4}", pin);
    g_free(body);
    body = next;
  }
  if (strstr(body, "{role}")) {
    const char *org = strchr(row->target, ':') + 1;
    g_autofree char *type = org_type(org);
    char *next = replace(body, "{role}",
                         strcmp(type, "customer") == 0 ? "customer_user" : "provider_support");
    g_free(body);
    body = next;
  }
  if (strstr(body, "{name}")) {
    char *next = replace(body, "{name}", row->target + 4);
    g_free(body);
    body = next;
  }
  if (strstr(body, "{cu}")) {
    g_autofree char *cu = user_public_id("cu@c.test");
    char *next = replace(body, "{cu}", cu);
    g_free(body);
    body = next;
  }
  if (strstr(body, "{now}")) {
    g_autofree char *now = kcps__server_iso_time(kcps__server_now());
    char *next = replace(body, "{now}", now);
    g_free(body);
    body = next;
  }
  return body;
}

/* The pattern with its "*" filled: one id for all, or "A|B" for two in
 * turn (a group and its member). */
static char *
fill_stars(const char *pattern, const char *id)
{
  if (!strchr(id, '|'))
    return replace(pattern, "*", id);
  g_auto(GStrv) ids = g_strsplit(id, "|", -1);
  g_auto(GStrv) parts = g_strsplit(pattern, "*", -1);
  GString *out = g_string_new(parts[0]);
  for (guint i = 1; parts[i]; i++) {
    g_string_append(out, ids[i - 1] ? ids[i - 1] : "");
    g_string_append(out, parts[i]);
  }
  return g_string_free(out, FALSE);
}

static char *
fresh_token(int actor)
{
  switch (actor) {
    case A_NONE:
      return NULL;
    case A_KEY:
      return g_strdup(world.tokens[A_KEY]);
    case A_DEV:
      return sfx_device_login();
    case A_ATDEV:
      return sfx_pin_login();
    default:
      return sfx_login(actor_emails[actor], world.passwords[actor]);
  }
}

/* Does a job list hold only the caller's own jobs, and hers among them? */
static bool
own_jobs_only(JsonNode *answer, int actor, GString *why)
{
  JsonArray *jobs = sfx_array(answer, "jobs");
  const char *mine = g_hash_table_lookup(world.jobs, actor_emails[actor]);
  bool found = false;
  for (guint i = 0; jobs && i < json_array_get_length(jobs); i++) {
    JsonObject *job = json_array_get_object_element(jobs, i);
    const char *owner = json_object_get_string_member_with_default(job, "owner", "");
    if (g_strcmp0(owner, actor_emails[actor]) != 0) {
      g_string_append_printf(why, " (lists a job of %s)", owner);
      return false;
    }
    found =
        found || g_strcmp0(json_object_get_string_member_with_default(job, "id", ""), mine) == 0;
  }
  if (!found)
    g_string_append(why, " (her own job is missing)");
  return found;
}

/* Is (method, pattern) in a route table? Rows may be written before their
 * route lands (the feature's author then finds them waiting). */
static const kcps_server_route_t *const route_tables[] = {
    kcps__server_routes_core, kcps__server_routes_policy,  kcps__server_routes_mfa,
    kcps__server_routes_orgs, kcps__server_routes_reports, kcps__server_routes_devices,
    kcps__server_routes_oidc, kcps__server_routes_uploads, kcps__server_routes_usage,
};
static const char *const route_table_names[] = {"core",    "policy",  "mfa", "orgs",
                                                "reports", "devices", "oidc", "uploads",
                                                "usage"};

static bool
route_exists(const char *method, const char *pattern)
{
  for (size_t t = 0; t < G_N_ELEMENTS(route_tables); t++)
    for (const kcps_server_route_t *r = route_tables[t]; r->method; r++)
      if (strcmp(r->method, method) == 0 && strcmp(r->pattern, pattern) == 0)
        return true;
  return false;
}

static void
walk_row(size_t index, const row_t *row, GString *failures, unsigned *cells)
{
  for (int a = 0; a < N_ACTORS; a++) {
    int want = row->want[a];
    if (want == SKIP)
      continue;
    g_autofree char *id = *row->target ? resolve(row->target) : NULL;
    g_autofree char *path = id ? fill_stars(row->pattern, id) : g_strdup(row->pattern);
    g_autofree char *body = fill_body(row);
    g_autofree char *token = (row->flags & F_FRESH) ? fresh_token(a) : g_strdup(world.tokens[a]);
    g_autoptr(JsonNode) answer = NULL;
    long got = sfx_call_raw(row->method, path, token, body, -1, NULL, NULL, &answer);
    (*cells)++;
    g_autoptr(GString) why = g_string_new(NULL);
    bool ok = got == want;
    if (ok && got == 200 && (row->flags & F_OWN_JOBS))
      ok = own_jobs_only(answer, a, why);
    if (!ok) {
      const char *msg = sfx_str(answer, "message");
      g_string_append_printf(
          failures, "  row %zu [%s] %s %s on %s as %s: got %ld, expected %d%s%s%s\n", index,
          row->kind, row->method, row->pattern, *row->target ? row->target : "-", actor_names[a],
          got, want, why->str, msg ? ": " : "", msg ? msg : "");
    }
  }
}

START_TEST(test_matrix)
{
  build_world();

  /* Every route of the walk, every caller. */
  g_autoptr(GString) failures = g_string_new(NULL);
  unsigned cells = 0, skipped = 0;
  for (size_t i = 0; i < G_N_ELEMENTS(rows); i++) {
    if (!route_exists(rows[i].method, rows[i].pattern)) {
      printf("access matrix: pending (no such route yet): %s %s on %s\n", rows[i].method,
             rows[i].pattern, *rows[i].target ? rows[i].target : "-");
      continue;
    }
    walk_row(i, &rows[i], failures, &cells);
    for (int a = 0; a < N_ACTORS; a++)
      if (rows[i].want[a] == SKIP) {
        printf("access matrix: not called: %s %s on %s as %s (see the row's comment)\n",
               rows[i].method, rows[i].pattern, rows[i].target, actor_names[a]);
        skipped++;
      }
  }
  printf("access matrix: %zu rows, %u calls, %u cells skipped\n", G_N_ELEMENTS(rows), cells,
         skipped);

  /* Table 2-1 for every kind of data, straight from the access function. */
  kcps_server_session_t *sessions[N_ACTORS] = {0};
  g_mutex_lock(&sfx.server->lock);
  for (int a = A_DEV; a < N_ACTORS; a++) {
    char hash[65];
    kcps_crypto_sha256_hex(world.tokens[a], strlen(world.tokens[a]), hash);
    sessions[a] = kcps__server_session_load_locked(sfx.server, hash, NULL);
  }
  g_mutex_unlock(&sfx.server->lock);
  for (int a = A_DEV; a < N_ACTORS; a++)
    ck_assert_msg(sessions[a] != NULL, "no session for %s", actor_names[a]);
  for (size_t i = 0; i < G_N_ELEMENTS(table21); i++) {
    gint64 org = sfx_org_id(table21[i].org);
    ck_assert_int_gt(org, 0);
    for (int a = 0; a < N_ACTORS; a++) {
      char want = a >= A_RHQ ? table21[i].rw[a - A_RHQ] : '-';
      bool read = kcps__server_may(sfx.server, sessions[a], table21[i].data, org, false);
      bool write = kcps__server_may(sfx.server, sessions[a], table21[i].data, org, true);
      char got = write && read ? 'w' : read ? 'r' : write ? '!' : '-';
      if (got != want)
        g_string_append_printf(failures, "  Table 2-1 [%s] in %s for %s: got %c, expected %c\n",
                               table21[i].kind, table21[i].org, actor_names[a], got, want);
    }
  }
  for (int a = 0; a < N_ACTORS; a++)
    kcps__server_session_free(sessions[a]);
  free_world();
  ck_assert_msg(failures->len == 0, "the access matrix does not hold:\n%s", failures->str);
}
END_TEST

/* Every (method, pattern) of every route table has a row (or a stated
 * exemption): a route added later fails here until the matrix covers it. */
START_TEST(test_every_route_covered)
{
  g_autoptr(GString) missing = g_string_new(NULL);
  unsigned routes = 0;
  for (size_t t = 0; t < G_N_ELEMENTS(route_tables); t++)
    for (const kcps_server_route_t *r = route_tables[t]; r->method; r++) {
      routes++;
      bool covered = false;
      for (size_t i = 0; i < G_N_ELEMENTS(rows) && !covered; i++)
        covered =
            strcmp(rows[i].method, r->method) == 0 && strcmp(rows[i].pattern, r->pattern) == 0;
      for (size_t i = 0; exempt[i].method && !covered; i++)
        if (strcmp(exempt[i].method, r->method) == 0 &&
            strcmp(exempt[i].pattern, r->pattern) == 0) {
          printf("access matrix: exempt: %s %s (%s table): %s\n", r->method, r->pattern,
                 route_table_names[t], exempt[i].why);
          covered = true;
        }
      if (!covered)
        g_string_append_printf(missing, "  %s %s (%s table)\n", r->method, r->pattern,
                               route_table_names[t]);
    }
  /* And every kind of data of Table 2-1 (plus jobs) has routes walked. */
  static const char *const kinds[] = {"org info",  "users",  "quota", "devices",   "reports",
                                      "contracts", "policy", "audit", "API grant", "jobs"};
  for (size_t k = 0; k < G_N_ELEMENTS(kinds); k++) {
    bool walked = false;
    for (size_t i = 0; i < G_N_ELEMENTS(rows) && !walked; i++)
      walked = strcmp(rows[i].kind, kinds[k]) == 0;
    if (!walked)
      g_string_append_printf(missing, "  no route of kind \"%s\"\n", kinds[k]);
  }
  printf("access matrix: %u routes in the tables\n", routes);
  ck_assert_msg(missing->len == 0,
                "routes without a row in tests/test-server-access.c (add their rows, with the "
                "statuses Table 2-1 and docs/access.md give):\n%s",
                missing->str);
}
END_TEST

int
main(void)
{
  Suite *s = suite_create("server-access");
  TCase *tc = tcase_create("matrix");
  tcase_add_checked_fixture(tc, sfx_setup, sfx_teardown);
  tcase_set_timeout(tc, 600);
  tcase_add_test(tc, test_matrix);
  suite_add_tcase(s, tc);
  TCase *cover = tcase_create("coverage");
  tcase_add_test(cover, test_every_route_covered);
  suite_add_tcase(s, cover);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
