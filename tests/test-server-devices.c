/* kcps-server devices (white paper section 7, 4.4, 4.5): registration and
 * the device credential, the three login options at a device, PIN rules of
 * both profiles, generated PINs, uniqueness and masking, PIN lockout, ID
 * cards, and bad input that changes nothing. */
#include "server-fixture.h"

#include "common/crypto.h"
#include "common/json-util.h"

#include <string.h>
#include <sys/stat.h>

#define PW "Passw0rd!23"

/* The call runs before its answer is read (argument order is unspecified). */
#define EXPECT_ERROR(call, answer, status, code, in_message)                                       \
  do {                                                                                             \
    long got_ = (call);                                                                            \
    sfx_expect_error(got_, answer, status, code, in_message);                                      \
  } while (0)

/* Helpers ------------------------------------------------------------------ */

/* The first column of the first row of sql as text (NULL when none); g_free. */
static char *
db_text(const char *sql)
{
  g_mutex_lock(&sfx.server->lock);
  sqlite3_stmt *stmt = kcps__server_db_prepare(sfx.server, sql, NULL);
  char *text = NULL;
  if (stmt && kcps__server_db_step(sfx.server, stmt, NULL) == SQLITE_ROW)
    text = kcps__server_db_dup_text(stmt, 0);
  sqlite3_finalize(stmt);
  g_mutex_unlock(&sfx.server->lock);
  return text;
}

static gint64
db_int(const char *sql)
{
  g_autofree char *text = db_text(sql);
  return text ? g_ascii_strtoll(text, NULL, 10) : -1;
}

/* Everything these routes may change, as one text: devices, cards, users'
 * PINs, settings, sessions and the audit log. */
static char *
state(void)
{
  static const char *const parts[] = {
      "SELECT group_concat(id || public_id || coalesce(serial, '-') || name || secret_hash"
      " || login_options || active || coalesce(deleted, '-'), ';') FROM devices",
      "SELECT group_concat(public_id || card_hmac || label, ';') FROM cards",
      "SELECT group_concat(id || coalesce(pin_hmac, '-') || coalesce(pin_sealed, '-'), ';') FROM "
      "users",
      "SELECT group_concat(org_id || key || value, ';') FROM org_settings",
      "SELECT count(*) FROM sessions",
      "SELECT count(*) FROM audit",
  };
  GString *s = g_string_new(NULL);
  for (size_t i = 0; i < G_N_ELEMENTS(parts); i++) {
    g_autofree char *t = db_text(parts[i]);
    g_string_append_printf(s, "%s|", t ? t : "");
  }
  return g_string_free(s, FALSE);
}

static gint64
audit_count(const char *event)
{
  g_autofree char *sql = g_strdup_printf("SELECT count(*) FROM audit WHERE event = '%s'", event);
  return db_int(sql);
}

/* Stores a setting on the organization named org as the settings route
 * would (the route itself is the policy feature's). */
static bool
store_setting(const char *org, const char *key, const char *json, char **message)
{
  gint64 id = sfx_org_id(org);
  g_autoptr(JsonNode) value = json_from_string(json, NULL);
  g_autoptr(GError) error = NULL;
  g_mutex_lock(&sfx.server->lock);
  bool ok = kcps__server_setting_store_locked(sfx.server, id, key, value, &error);
  g_mutex_unlock(&sfx.server->lock);
  if (message)
    *message = error ? g_strdup(error->message) : NULL;
  return ok;
}

static void
must_store(const char *org, const char *key, const char *json)
{
  g_autofree char *msg = NULL;
  ck_assert_msg(store_setting(org, key, json, &msg), "setting %s=%s on %s: %s", key, json, org,
                msg ? msg : "?");
}

static char *
user_public_id(const char *email)
{
  g_autofree char *sql = g_strdup_printf("SELECT public_id FROM users WHERE email = '%s'", email);
  char *id = db_text(sql);
  ck_assert_msg(id != NULL, "no user %s", email);
  return id;
}

static char *
admin_token(void)
{
  return sfx_login("admin@a.test", sfx.admin_pw);
}

/* Registers a device in Customer A as its admin; secret_out gets the
 * secret (g_free); the device's public id (g_free). */
static char *
register_device(const char *serial, const char *name, const char *options, char **secret_out)
{
  g_autofree char *admin = admin_token();
  g_autofree char *org = sfx_org_public_id("Customer A");
  g_autofree char *path = g_strdup_printf("/api/v1/orgs/%s/devices", org);
  g_autofree char *body =
      options ? g_strdup_printf("{\"serial\":\"%s\",\"name\":\"%s\",\"login_options\":%s}", serial,
                                name, options)
              : g_strdup_printf("{\"serial\":\"%s\",\"name\":\"%s\"}", serial, name);
  g_autoptr(JsonNode) answer = NULL;
  long status = sfx_call("POST", path, admin, body, &answer);
  ck_assert_msg(status == 201, "register %s: got %ld (%s), expected 201", name, status,
                sfx_str(answer, "message") ? sfx_str(answer, "message") : "-");
  if (secret_out)
    *secret_out = g_strdup(sfx_str(answer, "secret"));
  return g_strdup(sfx_str(answer, "id"));
}

static long
device_login_as(const char *name, const char *secret, char **token)
{
  g_autofree char *body = g_strdup_printf("{\"device\":\"%s\",\"secret\":\"%s\"}", name, secret);
  g_autoptr(JsonNode) answer = NULL;
  long status = sfx_call("POST", "/api/v1/device/login", NULL, body, &answer);
  if (token)
    *token = status == 200 ? g_strdup(sfx_str(answer, "token")) : NULL;
  return status;
}

/* A login at the device; returns the status, *answer the answer. */
static long
at_device(const char *device, const char *route, const char *body, JsonNode **answer)
{
  g_autofree char *path = g_strdup_printf("/api/v1/device/%s", route);
  return sfx_call("POST", path, device, body, answer);
}

static void
set_options(const char *device_id, const char *options)
{
  g_autofree char *admin = admin_token();
  g_autofree char *path = g_strdup_printf("/api/v1/devices/%s", device_id);
  g_autofree char *body = g_strdup_printf("{\"login_options\":%s}", options);
  g_autoptr(JsonNode) answer = NULL;
  long status = sfx_call("PATCH", path, admin, body, &answer);
  ck_assert_msg(status == 200, "PATCH options %s: got %ld (%s)", options, status,
                sfx_str(answer, "message") ? sfx_str(answer, "message") : "-");
}

static char *
mfp1_id(void)
{
  char *id = db_text("SELECT public_id FROM devices WHERE name = 'MFP-1'");
  ck_assert_msg(id && strlen(id) == 36, "MFP-1 has no public id");
  return id;
}

static char *
answer_text(JsonNode *node)
{
  return node ? kcps_json_to_string(node) : g_strdup("(none)");
}

/* Registration --------------------------------------------------------------- */

START_TEST(test_register)
{
  g_autofree char *admin = admin_token();
  g_autofree char *org = sfx_org_public_id("Customer A");
  g_autofree char *path = g_strdup_printf("/api/v1/orgs/%s/devices", org);
  g_autoptr(JsonNode) made = NULL;
  ck_assert_int_eq(sfx_call("POST", path, admin,
                            "{\"serial\":\"SN-0001\",\"name\":\"MFP-2\",\"login_options\":[\"pin\","
                            "\"simple\"]}",
                            &made),
                   201);
  const char *secret = sfx_str(made, "secret");
  const char *id = sfx_str(made, "id");
  ck_assert_msg(secret && strlen(secret) >= 43, "secret: got %s, expected 43+ characters",
                secret ? secret : "none");
  ck_assert_msg(id && kcps__server_is_uuid(id), "id: got %s, expected a UUID", id ? id : "none");
  ck_assert_str_eq(sfx_str(made, "serial"), "SN-0001");
  ck_assert_str_eq(sfx_str(made, "name"), "MFP-2");
  JsonArray *opts = sfx_array(made, "login_options");
  ck_assert_msg(opts && json_array_get_length(opts) == 2, "two login options expected");
  ck_assert_str_eq(json_array_get_string_element(opts, 0), "simple");
  ck_assert_str_eq(json_array_get_string_element(opts, 1), "pin");

  /* Stored as SHA-256 only. */
  char want[65];
  kcps_crypto_sha256_hex(secret, strlen(secret), want);
  g_autofree char *stored = db_text("SELECT secret_hash FROM devices WHERE name = 'MFP-2'");
  ck_assert_str_eq(stored, want);
  g_autofree char *sql = g_strdup_printf(
      "SELECT count(*) FROM devices WHERE secret_hash = '%s' OR name = '%s'", secret, secret);
  ck_assert_int_eq(db_int(sql), 0);

  /* Shown once: never in the list nor the device's own answer. */
  g_autoptr(JsonNode) list = NULL;
  ck_assert_int_eq(sfx_call("GET", path, admin, NULL, &list), 200);
  JsonArray *devices = sfx_array(list, "devices");
  ck_assert_msg(devices && json_array_get_length(devices) == 2, "got %u devices, expected 2",
                devices ? json_array_get_length(devices) : 0);
  g_autofree char *list_text = answer_text(list);
  ck_assert_msg(!strstr(list_text, secret) && !strstr(list_text, "\"secret\""),
                "the list shows a secret: %s", list_text);
  /* The demo's MFP-1 has every option on. */
  JsonObject *first = json_array_get_object_element(devices, 0);
  ck_assert_str_eq(json_object_get_string_member(first, "name"), "MFP-1");
  ck_assert_int_eq(json_array_get_length(json_object_get_array_member(first, "login_options")), 3);

  g_autofree char *one = g_strdup_printf("/api/v1/devices/%s", id);
  g_autoptr(JsonNode) got = NULL;
  ck_assert_int_eq(sfx_call("GET", one, admin, NULL, &got), 200);
  ck_assert_ptr_null(sfx_member(got, "secret"));
  ck_assert_str_eq(sfx_str(got, "serial"), "SN-0001");

  /* The device logs in with it. */
  g_autofree char *token = NULL;
  ck_assert_int_eq(device_login_as("MFP-2", secret, &token), 200);
  ck_assert_int_eq(audit_count("device.registered"), 1);

  /* Serial and name are unique. */
  g_autoptr(JsonNode) dup1 = NULL;
  g_autoptr(JsonNode) dup2 = NULL;
  EXPECT_ERROR(sfx_call("POST", path, admin, "{\"serial\":\"SN-0001\",\"name\":\"MFP-3\"}", &dup1),
               dup1, 409, "conflict", "serial");
  EXPECT_ERROR(sfx_call("POST", path, admin, "{\"serial\":\"SN-0002\",\"name\":\"MFP-2\"}", &dup2),
               dup2, 409, "conflict", "name");
  ck_assert_int_eq(db_int("SELECT count(*) FROM devices"), 2);
}
END_TEST

START_TEST(test_rotate_secret)
{
  g_autofree char *secret = NULL;
  g_autofree char *id = register_device("SN-R", "MFP-R", NULL, &secret);
  g_autofree char *device = NULL;
  ck_assert_int_eq(device_login_as("MFP-R", secret, &device), 200);
  g_autoptr(JsonNode) at = NULL;
  ck_assert_int_eq(at_device(device, "pin-login", "{\"pin\":\"4321\"}", &at), 200);
  g_autofree char *user_at = g_strdup(sfx_str(at, "token"));

  g_autofree char *admin = admin_token();
  g_autofree char *path = g_strdup_printf("/api/v1/devices/%s/secret", id);
  g_autoptr(JsonNode) rotated = NULL;
  ck_assert_int_eq(sfx_call("POST", path, admin, NULL, &rotated), 200);
  const char *fresh = sfx_str(rotated, "secret");
  ck_assert_msg(fresh && strcmp(fresh, secret) != 0, "rotation gave no new secret");

  /* Every session at the device ended, the old secret is dead. */
  g_autoptr(JsonNode) a1 = NULL;
  g_autoptr(JsonNode) a2 = NULL;
  EXPECT_ERROR(at_device(device, "pin-login", "{\"pin\":\"4321\"}", &a1), a1, 401, "unauthorized",
               NULL);
  EXPECT_ERROR(sfx_call("GET", "/api/v1/device/jobs", user_at, NULL, &a2), a2, 401, "unauthorized",
               NULL);
  ck_assert_int_eq(device_login_as("MFP-R", secret, NULL), 401);
  ck_assert_int_eq(device_login_as("MFP-R", fresh, NULL), 200);
  ck_assert_int_eq(audit_count("device.secret_rotated"), 1);
}
END_TEST

START_TEST(test_patch_and_delete)
{
  g_autofree char *secret = NULL;
  g_autofree char *id = register_device("SN-D", "MFP-D", NULL, &secret);
  g_autofree char *admin = admin_token();
  g_autofree char *path = g_strdup_printf("/api/v1/devices/%s", id);
  g_autoptr(JsonNode) patched = NULL;
  ck_assert_int_eq(sfx_call("PATCH", path, admin, "{\"name\":\"MFP-D2\"}", &patched), 200);
  ck_assert_str_eq(sfx_str(patched, "name"), "MFP-D2");
  ck_assert_int_eq(json_array_get_length(sfx_array(patched, "login_options")), 3);
  g_autoptr(JsonNode) taken = NULL;
  EXPECT_ERROR(sfx_call("PATCH", path, admin, "{\"name\":\"MFP-1\"}", &taken), taken, 409,
               "conflict", "name");

  g_autofree char *device = NULL;
  ck_assert_int_eq(device_login_as("MFP-D2", secret, &device), 200);
  ck_assert_int_eq(sfx_call("DELETE", path, admin, NULL, NULL), 204);
  ck_assert_int_eq(device_login_as("MFP-D2", secret, NULL), 401);
  g_autoptr(JsonNode) gone = NULL;
  EXPECT_ERROR(sfx_call("GET", path, admin, NULL, &gone), gone, 404, "not_found", NULL);
  g_autoptr(JsonNode) a1 = NULL;
  EXPECT_ERROR(at_device(device, "pin-login", "{\"pin\":\"4321\"}", &a1), a1, 401, "unauthorized",
               NULL);
  ck_assert_int_eq(audit_count("device.deleted"), 1);
  /* Its serial and name are free again. */
  g_autofree char *again = register_device("SN-D", "MFP-D2", NULL, NULL);
}
END_TEST

START_TEST(test_delete_device_with_logs)
{
  /* MFP-1 printed: its job log stays for the reports, the device retires. */
  g_autofree char *user = sfx_login("alice@a.test", sfx.alice_pw);
  static const char sha[] = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
  g_autofree char *job = g_strdup_printf(
      "{\"client_job_id\":\"j1\",\"name\":\"x\",\"pages\":1,\"size\":1,\"sha256\":\"%s\","
      "\"pull_url\":\"https://h/x\",\"pull_pin\":\"sha256//"
      "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"}",
      sha);
  g_autoptr(JsonNode) made = NULL;
  ck_assert_int_eq(sfx_call("POST", "/api/v1/jobs", user, job, &made), 201);
  g_autofree char *at = sfx_pin_login();
  g_autofree char *tpath = g_strdup_printf("/api/v1/device/jobs/%s/ticket", sfx_str(made, "id"));
  ck_assert_int_eq(sfx_call("POST", tpath, at, NULL, NULL), 201);
  g_autofree char *lpath = g_strdup_printf("/api/v1/device/jobs/%s/log", sfx_str(made, "id"));
  ck_assert_int_eq(sfx_call("POST", lpath, at, "{\"pages\":1,\"status\":\"completed\"}", NULL),
                   201);

  g_autofree char *admin = admin_token();
  g_autofree char *id = mfp1_id();
  g_autofree char *path = g_strdup_printf("/api/v1/devices/%s", id);
  ck_assert_int_eq(sfx_call("DELETE", path, admin, NULL, NULL), 204);
  ck_assert_int_eq(device_login_as("MFP-1", sfx.secret, NULL), 401);
  ck_assert_int_eq(db_int("SELECT count(*) FROM job_logs"), 1);
  ck_assert_int_eq(db_int("SELECT count(*) FROM devices WHERE deleted IS NOT NULL"), 1);
  g_autofree char *org = sfx_org_public_id("Customer A");
  g_autofree char *lpath2 = g_strdup_printf("/api/v1/orgs/%s/devices", org);
  g_autoptr(JsonNode) list = NULL;
  ck_assert_int_eq(sfx_call("GET", lpath2, admin, NULL, &list), 200);
  ck_assert_int_eq(json_array_get_length(sfx_array(list, "devices")), 0);
  g_autofree char *again = register_device("SN-X", "MFP-1", NULL, NULL);
}
END_TEST

START_TEST(test_device_access)
{
  sfx_add_user("Sales A", "pa@s.test", "provider_admin", PW);
  sfx_add_user("Sales A", "ps@s.test", "provider_support", PW);
  sfx_add_org("Sales A", "Customer B", "customer");
  sfx_add_user("Customer B", "badmin@b.test", "customer_admin", PW);
  g_autofree char *org = sfx_org_public_id("Customer A");
  g_autofree char *path = g_strdup_printf("/api/v1/orgs/%s/devices", org);
  g_autofree char *id = mfp1_id();
  g_autofree char *one = g_strdup_printf("/api/v1/devices/%s", id);
  static const char body[] = "{\"serial\":\"SN-P\",\"name\":\"MFP-P\"}";

  g_autofree char *alice = sfx_login("alice@a.test", sfx.alice_pw);
  g_autofree char *pa = sfx_login("pa@s.test", PW);
  g_autofree char *ps = sfx_login("ps@s.test", PW);
  g_autofree char *badmin = sfx_login("badmin@b.test", PW);

  /* A customer user: no devices (Table 2-1). */
  ck_assert_int_eq(sfx_call("GET", path, alice, NULL, NULL), 403);
  ck_assert_int_eq(sfx_call("GET", one, alice, NULL, NULL), 403);
  ck_assert_int_eq(sfx_call("POST", path, alice, body, NULL), 403);
  /* Providers above: accessible; support only looks. */
  ck_assert_int_eq(sfx_call("GET", path, ps, NULL, NULL), 200);
  ck_assert_int_eq(sfx_call("GET", one, ps, NULL, NULL), 200);
  ck_assert_int_eq(sfx_call("POST", path, ps, body, NULL), 403);
  ck_assert_int_eq(sfx_call("PATCH", one, ps, "{\"name\":\"x\"}", NULL), 403);
  ck_assert_int_eq(sfx_call("GET", path, pa, NULL, NULL), 200);
  ck_assert_int_eq(sfx_call("POST", path, pa, body, NULL), 201);
  /* Another customer's admin: not even there. */
  ck_assert_int_eq(sfx_call("GET", path, badmin, NULL, NULL), 404);
  ck_assert_int_eq(sfx_call("GET", one, badmin, NULL, NULL), 404);
  ck_assert_int_eq(sfx_call("DELETE", one, badmin, NULL, NULL), 404);
  g_autofree char *rot = g_strdup_printf("/api/v1/devices/%s/secret", id);
  ck_assert_int_eq(sfx_call("POST", rot, badmin, NULL, NULL), 404);
  /* A device's session is no admin. */
  g_autofree char *device = sfx_device_login();
  ck_assert_int_eq(sfx_call("GET", path, device, NULL, NULL), 403);
  /* Devices belong to customers: not in a provider organization. */
  g_autofree char *sales = sfx_org_public_id("Sales A");
  g_autofree char *spath = g_strdup_printf("/api/v1/orgs/%s/devices", sales);
  ck_assert_int_eq(sfx_call("POST", spath, pa, "{\"serial\":\"SN-Q\",\"name\":\"MFP-Q\"}", NULL),
                   403);
  ck_assert_int_eq(sfx_call("GET", "/api/v1/devices/not-a-uuid", pa, NULL, NULL), 404);
}
END_TEST

/* Login options -------------------------------------------------------------- */

START_TEST(test_options_on_off)
{
  g_autofree char *user = sfx_login("alice@a.test", sfx.alice_pw);
  g_autoptr(JsonNode) card = NULL;
  ck_assert_int_eq(sfx_call("POST", "/api/v1/me/cards", user, "{\"card_id\":\"04A1B2C3\"}", &card),
                   201);
  g_autofree char *id = mfp1_id();
  g_autofree char *device = sfx_device_login();
  g_autofree char *simple =
      g_strdup_printf("{\"email\":\"alice@a.test\",\"password\":\"%s\"}", sfx.alice_pw);
  static const char pin[] = "{\"pin\":\"4321\"}";
  static const char cardbody[] = "{\"card_id\":\"04A1B2C3\"}";

  /* All three on (the demo device's default). */
  ck_assert_int_eq(at_device(device, "user-login", simple, NULL), 200);
  ck_assert_int_eq(at_device(device, "pin-login", pin, NULL), 200);
  ck_assert_int_eq(at_device(device, "card-login", cardbody, NULL), 200);

  /* Each alone. */
  static const struct {
    const char *options;
    long simple, pin, card;
  } cases[] = {
      {"[]", 403, 403, 403},
      {"[\"simple\"]", 200, 403, 403},
      {"[\"pin\"]", 403, 200, 403},
      {"[\"card\"]", 403, 403, 200},
      {"[\"card\",\"pin\"]", 403, 200, 200},
  };
  for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
    set_options(id, cases[i].options);
    g_autoptr(JsonNode) a = NULL;
    g_autoptr(JsonNode) b = NULL;
    g_autoptr(JsonNode) c = NULL;
    long s = at_device(device, "user-login", simple, &a);
    long p = at_device(device, "pin-login", pin, &b);
    long k = at_device(device, "card-login", cardbody, &c);
    ck_assert_msg(s == cases[i].simple && p == cases[i].pin && k == cases[i].card,
                  "options %s: simple/pin/card got %ld/%ld/%ld, expected %ld/%ld/%ld",
                  cases[i].options, s, p, k, cases[i].simple, cases[i].pin, cases[i].card);
    if (p == 403)
      EXPECT_ERROR(p, b, 403, "forbidden", "PIN login is off");
  }
  /* Off, no failure was counted or audited. */
  ck_assert_int_eq(audit_count("login.failed"), 0);
}
END_TEST

START_TEST(test_simple_login)
{
  sfx_add_org("Sales A", "Customer B", "customer");
  sfx_add_user("Customer B", "bob@b.test", "customer_user", PW);
  g_autofree char *device = sfx_device_login();
  g_autofree char *good =
      g_strdup_printf("{\"email\":\"alice@a.test\",\"password\":\"%s\"}", sfx.alice_pw);
  g_autoptr(JsonNode) ok = NULL;
  ck_assert_int_eq(at_device(device, "user-login", good, &ok), 200);
  ck_assert_int_eq(sfx_int(ok, "expires_in"), KCPS_SERVER_USER_DEVICE_TTL);
  ck_assert_str_eq(sfx_str(sfx_member(ok, "user"), "email"), "alice@a.test");
  /* The session is a user-at-device one: it lists her jobs at the device. */
  ck_assert_int_eq(sfx_call("GET", "/api/v1/device/jobs", sfx_str(ok, "token"), NULL, NULL), 200);
  ck_assert_int_eq(sfx_call("GET", "/api/v1/me", sfx_str(ok, "token"), NULL, NULL), 403);

  /* Wrong, unknown, and a user of another organization: one answer. */
  g_autoptr(JsonNode) wrong = NULL;
  g_autoptr(JsonNode) unknown = NULL;
  g_autoptr(JsonNode) other = NULL;
  long s1 = at_device(device, "user-login",
                      "{\"email\":\"alice@a.test\",\"password\":\"Wrong0!wrong\"}", &wrong);
  long s2 = at_device(device, "user-login",
                      "{\"email\":\"nobody@a.test\",\"password\":\"Wrong0!wrong\"}", &unknown);
  long s3 =
      at_device(device, "user-login", "{\"email\":\"bob@b.test\",\"password\":\"" PW "\"}", &other);
  EXPECT_ERROR(s1, wrong, 401, "invalid_credentials", NULL);
  g_autofree char *t1 = answer_text(wrong);
  g_autofree char *t2 = answer_text(unknown);
  g_autofree char *t3 = answer_text(other);
  ck_assert_msg(s2 == 401 && strcmp(t1, t2) == 0, "unknown account: got %ld %s, expected %s", s2,
                t2, t1);
  ck_assert_msg(s3 == 401 && strcmp(t1, t3) == 0, "other org's user: got %ld %s, expected %s", s3,
                t3, t1);
  ck_assert_int_eq(audit_count("login.failed"), 3);

  /* Only a device's session may log a user in there. */
  g_autofree char *user = sfx_login("alice@a.test", sfx.alice_pw);
  ck_assert_int_eq(at_device(user, "user-login", good, NULL), 403);
}
END_TEST

START_TEST(test_card_login_cross_org)
{
  sfx_add_org("Sales A", "Customer B", "customer");
  sfx_add_user("Customer B", "bob@b.test", "customer_user", PW);
  g_autofree char *bob = sfx_login("bob@b.test", PW);
  /* The same card number in another organization is another card. */
  ck_assert_int_eq(sfx_call("POST", "/api/v1/me/cards", bob, "{\"card_id\":\"CARD-B-1\"}", NULL),
                   201);
  ck_assert_int_eq(sfx_call("PUT", "/api/v1/me/pin", bob, "{\"pin\":\"9876\"}", NULL), 200);
  g_autofree char *device = sfx_device_login();
  g_autoptr(JsonNode) c = NULL;
  g_autoptr(JsonNode) p = NULL;
  EXPECT_ERROR(at_device(device, "card-login", "{\"card_id\":\"CARD-B-1\"}", &c), c, 401,
               "invalid_card", NULL);
  EXPECT_ERROR(at_device(device, "pin-login", "{\"pin\":\"9876\"}", &p), p, 401, "invalid_pin",
               NULL);
  /* Bob may hold alice's PIN number in his organization: PINs are per org. */
  ck_assert_int_eq(sfx_call("PUT", "/api/v1/me/pin", bob, "{\"pin\":\"4321\"}", NULL), 200);
  g_autoptr(JsonNode) a = NULL;
  ck_assert_int_eq(at_device(device, "pin-login", "{\"pin\":\"4321\"}", &a), 200);
  ck_assert_str_eq(sfx_str(sfx_member(a, "user"), "email"), "alice@a.test");
}
END_TEST

/* PINs ------------------------------------------------------------------------ */

/* Every boundary of both profiles: the PIN length setting, custom and
 * admin-set PINs at that length. */
START_TEST(test_pin_profiles)
{
  static const struct {
    const char *profile;
    int length;
    bool length_ok; /* may pin_length be set to it? */
    bool custom_ok; /* custom / admin-set PINs at that length */
  } cases[] = {
      {"other", 3, false, false},  {"other", 4, true, true},    {"other", 5, true, true},
      {"other", 6, true, true},    {"other", 7, true, true},    {"other", 8, true, true},
      {"other", 12, true, true},   {"other", 13, false, false}, {"kda_g", 3, false, false},
      {"kda_g", 4, false, false},  {"kda_g", 5, false, false},  {"kda_g", 6, true, false},
      {"kda_g", 7, true, false},   {"kda_g", 8, true, true},    {"kda_g", 12, true, true},
      {"kda_g", 13, false, false},
  };
  g_autofree char *admin = admin_token();
  g_autofree char *alice = sfx_login("alice@a.test", sfx.alice_pw);
  g_autofree char *alice_id = user_public_id("alice@a.test");
  g_autofree char *upath = g_strdup_printf("/api/v1/users/%s/pin", alice_id);
  for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
    /* From a length both profiles allow, to the profile, to the length. */
    must_store("Customer A", "pin_profile", "\"other\"");
    must_store("Customer A", "pin_length", "8");
    g_autofree char *pq = g_strdup_printf("\"%s\"", cases[i].profile);
    must_store("Customer A", "pin_profile", pq);
    g_autofree char *len = g_strdup_printf("%d", cases[i].length);
    g_autofree char *msg = NULL;
    bool stored = store_setting("Customer A", "pin_length", len, &msg);
    ck_assert_msg(stored == cases[i].length_ok, "%s length %d: stored %d, expected %d (%s)",
                  cases[i].profile, cases[i].length, stored, cases[i].length_ok, msg ? msg : "-");
    if (!stored) {
      ck_assert_msg(msg && strstr(msg, "pin_length"), "the refusal names no rule: %s",
                    msg ? msg : "-");
      if (cases[i].length >= 4 && cases[i].length <= 12)
        ck_assert_msg(strstr(msg, "6 to 12"), "kda_g refusal: got %s, expected 6 to 12", msg);
      continue;
    }
    char pin[16] = "";
    for (int k = 0; k < cases[i].length; k++)
      pin[k] = (char)('1' + (k + (int)i) % 9);
    g_autofree char *body = g_strdup_printf("{\"pin\":\"%s\"}", pin);
    g_autoptr(JsonNode) own = NULL;
    g_autoptr(JsonNode) set = NULL;
    long s1 = sfx_call("PUT", "/api/v1/me/pin", alice, body, &own);
    long s2 = sfx_call("PUT", upath, admin, body, &set);
    long want = cases[i].custom_ok ? 200 : 403;
    ck_assert_msg(s1 == want && s2 == want,
                  "%s length %d: custom got %ld, admin-set got %ld, expected %ld (%s)",
                  cases[i].profile, cases[i].length, s1, s2, want,
                  sfx_str(own, "message") ? sfx_str(own, "message") : "-");
    if (!cases[i].custom_ok)
      EXPECT_ERROR(s1, own, 403, "forbidden", "8 to 12");
    /* A PIN of another length is refused, naming the length. */
    pin[cases[i].length - 1] = '\0';
    g_autofree char *shorter = g_strdup_printf("{\"pin\":\"%s\"}", pin);
    g_autoptr(JsonNode) bad = NULL;
    g_autofree char *n = g_strdup_printf("exactly %d digits", cases[i].length);
    EXPECT_ERROR(sfx_call("PUT", "/api/v1/me/pin", alice, shorter, &bad), bad, 400, "bad_request",
                 n);
  }
}
END_TEST

START_TEST(test_pin_profile_switch)
{
  /* kda_g over a length of 4 (the default) breaks the profile. */
  g_autofree char *msg = NULL;
  ck_assert(!store_setting("Customer A", "pin_profile", "\"kda_g\"", &msg));
  ck_assert_msg(strstr(msg, "kda_g") && strstr(msg, "6 to 12") && strstr(msg, "pin_length is 4"),
                "message: %s", msg);
  /* On a provider: an organization below with its own short length counts. */
  must_store("Customer A", "pin_length", "5");
  must_store("Sales A", "pin_length", "8");
  g_autofree char *msg2 = NULL;
  ck_assert(!store_setting("Sales A", "pin_profile", "\"kda_g\"", &msg2));
  ck_assert_msg(strstr(msg2, "Customer A"), "message names no organization: %s", msg2);
  must_store("Customer A", "pin_length", "8");
  must_store("Sales A", "pin_profile", "\"kda_g\"");
  /* Now a length of 5 below is refused too. */
  g_autofree char *msg3 = NULL;
  ck_assert(!store_setting("Customer A", "pin_length", "5", &msg3));
  ck_assert_int_eq(db_int("SELECT value FROM org_settings WHERE key = 'pin_length'"
                          " AND org_id = (SELECT id FROM orgs WHERE name = 'Customer A')"),
                   8);
}
END_TEST

/* Through the settings route: the refusal names the rule and stores
 * nothing; both keys in one request work with the length first. */
START_TEST(test_pin_settings_route)
{
  g_autofree char *admin = admin_token();
  g_autofree char *org = sfx_org_public_id("Customer A");
  g_autofree char *path = g_strdup_printf("/api/v1/orgs/%s/settings", org);
  g_autofree char *before = state();
  g_autoptr(JsonNode) refused = NULL;
  EXPECT_ERROR(sfx_call("PATCH", path, admin, "{\"pin_profile\":\"kda_g\"}", &refused), refused,
               400, "bad_request", "6 to 12");
  g_autoptr(JsonNode) both_wrong = NULL;
  EXPECT_ERROR(
      sfx_call("PATCH", path, admin, "{\"pin_length\":6,\"pin_profile\":\"kda-g\"}", &both_wrong),
      both_wrong, 400, "bad_request", NULL);
  g_autofree char *after = state();
  ck_assert_str_eq(before, after);
  g_autoptr(JsonNode) ok = NULL;
  ck_assert_int_eq(
      sfx_call("PATCH", path, admin, "{\"pin_length\":8,\"pin_profile\":\"kda_g\"}", &ok), 200);
  ck_assert_str_eq(sfx_str(ok, "pin_profile"), "kda_g");
  ck_assert_int_eq(sfx_int(ok, "pin_length"), 8);
  g_autoptr(JsonNode) shorter = NULL;
  EXPECT_ERROR(sfx_call("PATCH", path, admin, "{\"pin_length\":5}", &shorter), shorter, 400,
               "bad_request", "kda_g");
}
END_TEST

START_TEST(test_pin_generate)
{
  g_autofree char *alice = sfx_login("alice@a.test", sfx.alice_pw);
  must_store("Customer A", "pin_length", "12");
  int counts[10] = {0};
  g_autoptr(GHashTable) seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  for (int i = 0; i < 100; i++) {
    g_autoptr(JsonNode) a = NULL;
    ck_assert_int_eq(sfx_call("POST", "/api/v1/me/pin/generate", alice, NULL, &a), 200);
    const char *pin = sfx_str(a, "pin");
    ck_assert_msg(pin && strlen(pin) == 12, "generated %s, expected 12 digits", pin ? pin : "-");
    for (const char *p = pin; *p; p++) {
      ck_assert_msg(g_ascii_isdigit(*p), "generated %s: not digits only", pin);
      counts[*p - '0']++;
    }
    g_hash_table_add(seen, g_strdup(pin));
  }
  ck_assert_int_eq(g_hash_table_size(seen), 100);
  /* 1200 digits: each near 120 (far outside 60..180 means bias). */
  for (int d = 0; d < 10; d++)
    ck_assert_msg(counts[d] > 60 && counts[d] < 180, "digit %d: %d of 1200", d, counts[d]);
  ck_assert_int_eq(audit_count("pin.set"), 100);

  /* The owner reads the last one back; the PIN works at the device. */
  g_autoptr(JsonNode) last = NULL;
  ck_assert_int_eq(sfx_call("POST", "/api/v1/me/pin/generate", alice, "{}", &last), 200);
  g_autoptr(JsonNode) mine = NULL;
  ck_assert_int_eq(sfx_call("GET", "/api/v1/me/pin", alice, NULL, &mine), 200);
  ck_assert_str_eq(sfx_str(mine, "pin"), sfx_str(last, "pin"));
  g_autofree char *device = sfx_device_login();
  g_autofree char *body = g_strdup_printf("{\"pin\":\"%s\"}", sfx_str(last, "pin"));
  ck_assert_int_eq(at_device(device, "pin-login", body, NULL), 200);
  ck_assert_int_eq(sfx_call("POST", "/api/v1/me/pin/generate", alice, "{\"x\":1}", NULL), 400);

  /* Under kda_g at 6 digits custom PINs are refused, generated ones are not. */
  must_store("Customer A", "pin_length", "6");
  must_store("Customer A", "pin_profile", "\"kda_g\"");
  g_autoptr(JsonNode) g6 = NULL;
  ck_assert_int_eq(sfx_call("POST", "/api/v1/me/pin/generate", alice, NULL, &g6), 200);
  ck_assert_int_eq(strlen(sfx_str(g6, "pin")), 6);
  ck_assert(!sfx_member(g6, "custom_allowed") ||
            !json_node_get_boolean(sfx_member(g6, "custom_allowed")));
}
END_TEST

START_TEST(test_pin_generate_unique)
{
  /* Thirty users, four-digit PINs generated by the admin: all different. */
  g_autofree char *admin = admin_token();
  for (int i = 0; i < 30; i++) {
    g_autofree char *email = g_strdup_printf("u%d@a.test", i);
    gint64 uid = sfx_add_user("Customer A", email, "customer_user", PW);
    (void)uid;
    g_autofree char *id = user_public_id(email);
    g_autofree char *path = g_strdup_printf("/api/v1/users/%s/pin", id);
    g_autoptr(JsonNode) a = NULL;
    ck_assert_int_eq(sfx_call("PUT", path, admin, "{\"generate\":true}", &a), 200);
    ck_assert_str_eq(sfx_str(a, "pin"), "****");
  }
  ck_assert_int_eq(db_int("SELECT count(DISTINCT pin_hmac) FROM users WHERE email LIKE 'u%'"), 30);
  /* The admin never saw it; the owner does. */
  g_autofree char *u0 = sfx_login("u0@a.test", PW);
  g_autoptr(JsonNode) mine = NULL;
  ck_assert_int_eq(sfx_call("GET", "/api/v1/me/pin", u0, NULL, &mine), 200);
  const char *pin = sfx_str(mine, "pin");
  ck_assert_msg(pin && strlen(pin) == 4, "owner's PIN: got %s", pin ? pin : "-");
}
END_TEST

START_TEST(test_pin_clash)
{
  sfx_add_user("Customer A", "bob@a.test", "customer_user", PW);
  g_autofree char *bob = sfx_login("bob@a.test", PW);
  g_autofree char *before = db_text("SELECT group_concat(coalesce(pin_hmac, '-')) FROM users");
  g_autoptr(JsonNode) clash = NULL;
  EXPECT_ERROR(sfx_call("PUT", "/api/v1/me/pin", bob, "{\"pin\":\"4321\"}", &clash), clash, 409,
               "conflict", NULL);
  g_autofree char *text = answer_text(clash);
  ck_assert_msg(!strstr(text, "alice") && !strstr(text, "Alice") && !strstr(text, "4321"),
                "the clash reveals whose PIN: %s", text);
  ck_assert(db_int("SELECT pin_hmac IS NULL FROM users WHERE email = 'bob@a.test'") == 1);
  g_autofree char *after = db_text("SELECT group_concat(coalesce(pin_hmac, '-')) FROM users");
  ck_assert_str_eq(before, after);
  ck_assert_int_eq(audit_count("pin.clash"), 1);
  g_autofree char *audit =
      db_text("SELECT group_concat(coalesce(detail, '') || coalesce(subject, ''))"
              " FROM audit WHERE event = 'pin.clash'");
  ck_assert_msg(!strstr(audit, "4321"), "the audit holds the PIN: %s", audit);

  /* Four more clashes, then custom PINs stop for the day; generation works. */
  for (int i = 0; i < 4; i++)
    ck_assert_int_eq(sfx_call("PUT", "/api/v1/me/pin", bob, "{\"pin\":\"4321\"}", NULL), 409);
  g_autoptr(JsonNode) limited = NULL;
  EXPECT_ERROR(sfx_call("PUT", "/api/v1/me/pin", bob, "{\"pin\":\"1111\"}", &limited), limited, 429,
               "too_many_requests", NULL);
  ck_assert_int_eq(sfx_call("POST", "/api/v1/me/pin/generate", bob, NULL, NULL), 200);
  sfx_skew_clock(24 * 3600 + 60);
  g_autofree char *bob2 = sfx_login("bob@a.test", PW);
  ck_assert_int_eq(sfx_call("PUT", "/api/v1/me/pin", bob2, "{\"pin\":\"1111\"}", NULL), 200);
  /* An admin's clash is the same 409. */
  g_autofree char *admin = admin_token();
  g_autofree char *id = user_public_id("alice@a.test");
  g_autofree char *path = g_strdup_printf("/api/v1/users/%s/pin", id);
  ck_assert_int_eq(sfx_call("PUT", path, admin, "{\"pin\":\"1111\"}", NULL), 409);
}
END_TEST

START_TEST(test_pin_masking)
{
  g_autofree char *admin = admin_token();
  g_autofree char *alice = sfx_login("alice@a.test", sfx.alice_pw);
  g_autofree char *id = user_public_id("alice@a.test");
  g_autofree char *path = g_strdup_printf("/api/v1/users/%s/pin", id);

  /* The demo's PIN predates the sealed copy: set, not readable until used. */
  g_autoptr(JsonNode) m0 = NULL;
  ck_assert_int_eq(sfx_call("GET", "/api/v1/me/pin", alice, NULL, &m0), 200);
  ck_assert(json_node_get_boolean(sfx_member(m0, "set")));
  ck_assert(JSON_NODE_HOLDS_NULL(sfx_member(m0, "pin")));
  g_autofree char *at = sfx_pin_login();
  g_autoptr(JsonNode) m1 = NULL;
  ck_assert_int_eq(sfx_call("GET", "/api/v1/me/pin", alice, NULL, &m1), 200);
  ck_assert_str_eq(sfx_str(m1, "pin"), "4321");

  /* Admin sets one: sees ****; the owner sees it. */
  g_autoptr(JsonNode) s = NULL;
  ck_assert_int_eq(sfx_call("PUT", path, admin, "{\"pin\":\"2468\"}", &s), 200);
  ck_assert_str_eq(sfx_str(s, "pin"), "****");
  g_autoptr(JsonNode) g = NULL;
  ck_assert_int_eq(sfx_call("GET", path, admin, NULL, &g), 200);
  ck_assert_str_eq(sfx_str(g, "pin"), "****");
  ck_assert(json_node_get_boolean(sfx_member(g, "set")));
  g_autoptr(JsonNode) m2 = NULL;
  ck_assert_int_eq(sfx_call("GET", "/api/v1/me/pin", alice, NULL, &m2), 200);
  ck_assert_str_eq(sfx_str(m2, "pin"), "2468");
  g_autofree char *admin_view = answer_text(g);
  ck_assert_msg(!strstr(admin_view, "2468"), "admin sees the PIN: %s", admin_view);
  /* A user without a PIN. */
  g_autofree char *admin_id = user_public_id("admin@a.test");
  g_autofree char *apath = g_strdup_printf("/api/v1/users/%s/pin", admin_id);
  g_autoptr(JsonNode) none = NULL;
  ck_assert_int_eq(sfx_call("GET", apath, admin, NULL, &none), 200);
  ck_assert(!json_node_get_boolean(sfx_member(none, "set")));

  /* Stored: an HMAC and a sealed copy, never the digits; the key file 0600. */
  ck_assert_int_eq(db_int("SELECT count(*) FROM users WHERE pin_hmac = '2468'"
                          " OR pin_sealed = '2468'"),
                   0);
  g_autofree char *key = g_build_filename(sfx.data, "pin-key", NULL);
  struct stat st;
  ck_assert_int_eq(stat(key, &st), 0);
  ck_assert_int_eq(st.st_mode & 0777, 0600);
  ck_assert_int_eq(st.st_size, 32);
  ck_assert_int_eq(audit_count("pin.set"), 1);
  /* A restart keeps the key: the owner still reads her PIN. */
  sfx_restart();
  g_autoptr(JsonNode) m3 = NULL;
  ck_assert_int_eq(sfx_call("GET", "/api/v1/me/pin", alice, NULL, &m3), 200);
  ck_assert_str_eq(sfx_str(m3, "pin"), "2468");

  /* Removed: no longer set, no longer logs in. */
  ck_assert_int_eq(sfx_call("DELETE", path, admin, NULL, NULL), 204);
  g_autoptr(JsonNode) m4 = NULL;
  ck_assert_int_eq(sfx_call("GET", "/api/v1/me/pin", alice, NULL, &m4), 200);
  ck_assert(!json_node_get_boolean(sfx_member(m4, "set")));
  g_autofree char *device = sfx_device_login();
  ck_assert_int_eq(at_device(device, "pin-login", "{\"pin\":\"2468\"}", NULL), 401);
  ck_assert_int_eq(sfx_call("PUT", "/api/v1/me/pin", alice, "{\"pin\":\"2468\"}", NULL), 200);
  ck_assert_int_eq(sfx_call("DELETE", "/api/v1/me/pin", alice, NULL, NULL), 204);
  ck_assert_int_eq(db_int("SELECT count(*) FROM users WHERE pin_hmac IS NOT NULL"
                          " OR pin_sealed IS NOT NULL"),
                   0);
  ck_assert_int_eq(audit_count("pin.set"), 4);

  /* Who may: the customer user not, another organization not even see. */
  sfx_add_user("Sales A", "pa@s.test", "provider_admin", PW);
  sfx_add_org("Sales A", "Customer B", "customer");
  sfx_add_user("Customer B", "badmin@b.test", "customer_admin", PW);
  g_autofree char *pa = sfx_login("pa@s.test", PW);
  g_autofree char *badmin = sfx_login("badmin@b.test", PW);
  ck_assert_int_eq(sfx_call("GET", path, alice, NULL, NULL), 403);
  ck_assert_int_eq(sfx_call("PUT", path, alice, "{\"pin\":\"1357\"}", NULL), 403);
  ck_assert_int_eq(sfx_call("GET", path, pa, NULL, NULL), 403);
  ck_assert_int_eq(sfx_call("GET", path, badmin, NULL, NULL), 404);
  ck_assert_int_eq(sfx_call("PUT", path, badmin, "{\"generate\":true}", NULL), 404);
  ck_assert_int_eq(sfx_call("DELETE", path, badmin, NULL, NULL), 404);
  ck_assert_int_eq(sfx_call("DELETE", path, alice, NULL, NULL), 403);
  (void)at;
}
END_TEST

START_TEST(test_pin_lockout)
{
  g_autofree char *device = sfx_device_login();
  g_autoptr(JsonNode) first = NULL;
  EXPECT_ERROR(at_device(device, "pin-login", "{\"pin\":\"0000\"}", &first), first, 401,
               "invalid_pin", NULL);
  g_autofree char *want = answer_text(first);
  /* Three wrong PINs at the device: then even the right one is refused. */
  ck_assert_int_eq(at_device(device, "pin-login", "{\"pin\":\"0001\"}", NULL), 401);
  ck_assert_int_eq(at_device(device, "pin-login", "{\"pin\":\"0002\"}", NULL), 401);
  g_autoptr(JsonNode) right = NULL;
  long status = at_device(device, "pin-login", "{\"pin\":\"4321\"}", &right);
  g_autofree char *got = answer_text(right);
  ck_assert_msg(status == 401 && strcmp(got, want) == 0,
                "right PIN at a locked device: got %ld %s, expected 401 %s", status, got, want);
  /* A card is a guess too: refused at the locked device. */
  ck_assert_int_eq(at_device(device, "card-login", "{\"card_id\":\"ABCD\"}", NULL), 401);
  /* 30 minutes later it works again. */
  sfx_skew_clock(31 * 60);
  ck_assert_int_eq(at_device(device, "pin-login", "{\"pin\":\"4321\"}", NULL), 200);
}
END_TEST

START_TEST(test_pin_locked_account)
{
  /* Alice's account locks after three wrong passwords (at another device);
   * her right PIN at MFP-1 is then refused like a wrong one. */
  g_autofree char *secret = NULL;
  g_autofree char *id = register_device("SN-L", "MFP-L", NULL, &secret);
  g_autofree char *other = NULL;
  ck_assert_int_eq(device_login_as("MFP-L", secret, &other), 200);
  for (int i = 0; i < 3; i++)
    ck_assert_int_eq(at_device(other, "user-login",
                               "{\"email\":\"alice@a.test\",\"password\":\"Wrong0!wrong\"}", NULL),
                     401);
  g_autofree char *good =
      g_strdup_printf("{\"email\":\"alice@a.test\",\"password\":\"%s\"}", sfx.alice_pw);
  ck_assert_int_eq(at_device(other, "user-login", good, NULL), 401);
  g_autofree char *device = sfx_device_login();
  g_autoptr(JsonNode) a = NULL;
  EXPECT_ERROR(at_device(device, "pin-login", "{\"pin\":\"4321\"}", &a), a, 401, "invalid_pin",
               NULL);
  sfx_skew_clock(31 * 60);
  ck_assert_int_eq(at_device(device, "pin-login", "{\"pin\":\"4321\"}", NULL), 200);
}
END_TEST

/* ID cards --------------------------------------------------------------------- */

START_TEST(test_cards_api)
{
  g_autofree char *alice = sfx_login("alice@a.test", sfx.alice_pw);
  g_autoptr(JsonNode) made = NULL;
  ck_assert_int_eq(sfx_call("POST", "/api/v1/me/cards", alice,
                            "{\"card_id\":\"04a1b2c3d4\",\"label\":\"Blue badge\"}", &made),
                   201);
  ck_assert_str_eq(sfx_str(made, "label"), "Blue badge");
  ck_assert_str_eq(sfx_str(made, "last4"), "C3D4");
  g_autofree char *text = answer_text(made);
  ck_assert_msg(!strstr(text, "04a1b2c3d4") && !strstr(text, "04A1B2C3D4"),
                "the card id shows: %s", text);
  /* The whole id: a random HMAC may well contain a few of its digits (LIKE
   * ignores ASCII case). */
  ck_assert_int_eq(db_int("SELECT count(*) FROM cards WHERE card_hmac LIKE '%04a1b2c3d4%'"
                          " OR length(card_hmac) <> 64"),
                   0);

  g_autoptr(JsonNode) list = NULL;
  ck_assert_int_eq(sfx_call("GET", "/api/v1/me/cards", alice, NULL, &list), 200);
  JsonArray *cards = sfx_array(list, "cards");
  ck_assert_int_eq(json_array_get_length(cards), 1);

  /* Unique in the organization (any case: readers differ). */
  sfx_add_user("Customer A", "bob@a.test", "customer_user", PW);
  g_autofree char *bob = sfx_login("bob@a.test", PW);
  g_autoptr(JsonNode) dup = NULL;
  EXPECT_ERROR(sfx_call("POST", "/api/v1/me/cards", bob, "{\"card_id\":\"04A1B2C3D4\"}", &dup), dup,
               409, "conflict", NULL);

  /* The card logs alice in at the device. */
  g_autofree char *device = sfx_device_login();
  g_autoptr(JsonNode) at = NULL;
  ck_assert_int_eq(at_device(device, "card-login", "{\"card_id\":\"04A1B2C3D4\"}", &at), 200);
  ck_assert_str_eq(sfx_str(sfx_member(at, "user"), "email"), "alice@a.test");

  /* Bob cannot delete it (not his, no admin); alice can. */
  g_autofree char *path = g_strdup_printf("/api/v1/cards/%s", sfx_str(made, "id"));
  ck_assert_int_eq(sfx_call("DELETE", path, bob, NULL, NULL), 404);
  ck_assert_int_eq(sfx_call("DELETE", path, alice, NULL, NULL), 204);
  ck_assert_int_eq(sfx_call("DELETE", path, alice, NULL, NULL), 404);
  g_autoptr(JsonNode) gone = NULL;
  EXPECT_ERROR(at_device(device, "card-login", "{\"card_id\":\"04A1B2C3D4\"}", &gone), gone, 401,
               "invalid_card", NULL);
  ck_assert_int_eq(audit_count("card.registered"), 1);
  ck_assert_int_eq(audit_count("card.deleted"), 1);
}
END_TEST

START_TEST(test_cards_admin)
{
  g_autofree char *admin = admin_token();
  g_autofree char *alice = sfx_login("alice@a.test", sfx.alice_pw);
  g_autofree char *id = user_public_id("alice@a.test");
  g_autofree char *path = g_strdup_printf("/api/v1/users/%s/cards", id);
  g_autoptr(JsonNode) made = NULL;
  ck_assert_int_eq(sfx_call("POST", path, admin, "{\"card_id\":\"CARD-0042\"}", &made), 201);
  ck_assert_str_eq(sfx_str(made, "label"), "ID card");
  g_autoptr(JsonNode) list = NULL;
  ck_assert_int_eq(sfx_call("GET", path, admin, NULL, &list), 200);
  ck_assert_int_eq(json_array_get_length(sfx_array(list, "cards")), 1);
  g_autoptr(JsonNode) mine = NULL;
  ck_assert_int_eq(sfx_call("GET", "/api/v1/me/cards", alice, NULL, &mine), 200);
  ck_assert_int_eq(json_array_get_length(sfx_array(mine, "cards")), 1);
  /* A customer user may not manage others' cards, nor list via users/. */
  ck_assert_int_eq(sfx_call("GET", path, alice, NULL, NULL), 403);
  ck_assert_int_eq(sfx_call("POST", path, alice, "{\"card_id\":\"CARD-0043\"}", NULL), 403);
  /* The admin deletes it. */
  g_autofree char *del = g_strdup_printf("/api/v1/cards/%s", sfx_str(made, "id"));
  ck_assert_int_eq(sfx_call("DELETE", del, admin, NULL, NULL), 204);
  /* Another organization's admin sees nothing. */
  sfx_add_org("Sales A", "Customer B", "customer");
  sfx_add_user("Customer B", "badmin@b.test", "customer_admin", PW);
  g_autofree char *badmin = sfx_login("badmin@b.test", PW);
  ck_assert_int_eq(sfx_call("GET", path, badmin, NULL, NULL), 404);
}
END_TEST

START_TEST(test_cards_device)
{
  g_autofree char *at = sfx_pin_login();
  g_autoptr(JsonNode) made = NULL;
  ck_assert_int_eq(sfx_call("POST", "/api/v1/device/cards", at,
                            "{\"card_id\":\"CARD-777\",\"label\":\"Badge\"}", &made),
                   201);
  ck_assert_str_eq(sfx_str(made, "last4"), "-777");
  g_autofree char *device = sfx_device_login();
  g_autoptr(JsonNode) in = NULL;
  ck_assert_int_eq(at_device(device, "card-login", "{\"card_id\":\"card-777\"}", &in), 200);
  ck_assert_str_eq(sfx_str(sfx_member(in, "user"), "email"), "alice@a.test");
  g_autofree char *audit = db_text("SELECT detail FROM audit WHERE event = 'card.registered'");
  ck_assert_msg(audit && strstr(audit, "MFP-1") && !strstr(audit, "CARD-777"), "audit: %s",
                audit ? audit : "-");
  /* Not from a device session alone, nor a user session, nor with cards off. */
  ck_assert_int_eq(
      sfx_call("POST", "/api/v1/device/cards", device, "{\"card_id\":\"CARD-778\"}", NULL), 403);
  g_autofree char *user = sfx_login("alice@a.test", sfx.alice_pw);
  ck_assert_int_eq(
      sfx_call("POST", "/api/v1/device/cards", user, "{\"card_id\":\"CARD-778\"}", NULL), 403);
  g_autofree char *id = mfp1_id();
  set_options(id, "[\"pin\"]");
  g_autoptr(JsonNode) off = NULL;
  EXPECT_ERROR(sfx_call("POST", "/api/v1/device/cards", at, "{\"card_id\":\"CARD-778\"}", &off),
               off, 403, "forbidden", "card");
  ck_assert_int_eq(db_int("SELECT count(*) FROM cards"), 1);
}
END_TEST

/* Bad input ---------------------------------------------------------------------- */

typedef struct {
  const char *method;
  const char *path; /* %s: Customer A's public id, alice's, or MFP-1's */
  const char *body;
  const char *names; /* in the message */
} bad_case_t;

static const bad_case_t bad_cases[] = {
    {"POST", "/api/v1/orgs/ORG/devices", "{\"serial\":\"S1\",\"name\":\"N\",\"extra\":1}", "extra"},
    {"POST", "/api/v1/orgs/ORG/devices", "{\"name\":\"N\"}", "serial"},
    {"POST", "/api/v1/orgs/ORG/devices", "{\"serial\":\"S 1\",\"name\":\"N\"}", "serial"},
    {"POST", "/api/v1/orgs/ORG/devices",
     "{\"serial\":\"S1';DROP TABLE devices;--\",\"name\":\"N\"}", "serial"},
    {"POST", "/api/v1/orgs/ORG/devices", "{\"serial\":\"S1\",\"name\":\"N\\u0001\"}", "name"},
    {"POST", "/api/v1/orgs/ORG/devices", "{\"serial\":\"S1\",\"name\":\"\"}", "name"},
    {"POST", "/api/v1/orgs/ORG/devices", "{\"serial\":\"S1\",\"name\":5}", "name"},
    {"POST", "/api/v1/orgs/ORG/devices",
     "{\"serial\":\"S1\",\"name\":\"N\",\"login_options\":[\"pin\",\"pin\"]}", "login_options"},
    {"POST", "/api/v1/orgs/ORG/devices",
     "{\"serial\":\"S1\",\"name\":\"N\",\"login_options\":\"pin\"}", "login_options"},
    {"POST", "/api/v1/orgs/ORG/devices",
     "{\"serial\":\"S1\",\"name\":\"N\",\"login_options\":[\"face\"]}", "login_options"},
    {"POST", "/api/v1/orgs/ORG/devices",
     "{\"serial\":\"S1\",\"name\":\"N\",\"login_options\":[null]}", "login_options"},
    {"PATCH", "/api/v1/devices/DEV", "{}", "nothing to change"},
    {"PATCH", "/api/v1/devices/DEV", "{\"secret\":\"x\"}", "secret"},
    {"PATCH", "/api/v1/devices/DEV", "{\"login_options\":[\"simple\",1]}", "login_options"},
    {"POST", "/api/v1/devices/DEV/secret", "{\"secret\":\"mine\"}", "secret"},
    {"PUT", "/api/v1/me/pin", "{\"pin\":\"12a4\"}", "pin"},
    {"PUT", "/api/v1/me/pin", "{\"pin\":\"１２３４\"}", "pin"},
    {"PUT", "/api/v1/me/pin", "{\"pin\":1234}", "pin"},
    {"PUT", "/api/v1/me/pin", "{\"pin\":\"\"}", "pin"},
    {"PUT", "/api/v1/me/pin", "{\"pin\":\"1234\",\"owner\":\"x\"}", "owner"},
    {"PUT", "/api/v1/me/pin", "{\"pin\":\"123\"}", "exactly 4 digits"},
    {"PUT", "/api/v1/me/pin", "{\"pin\":\"1234567890123\"}", "exactly 4 digits"},
    {"PUT", "/api/v1/me/pin",
     "{\"pin\":\"12345678901234567890123456789012345678901234567890123456789012345\"}", "pin"},
    {"PUT", "/api/v1/users/USER/pin", "{\"generate\":false}", "generate"},
    {"PUT", "/api/v1/users/USER/pin", "{\"generate\":\"yes\"}", "generate"},
    {"PUT", "/api/v1/users/USER/pin", "{\"pin\":\"1234\",\"generate\":true}", "not both"},
    {"PUT", "/api/v1/users/USER/pin", "{}", "pin"},
    {"PUT", "/api/v1/users/USER/pin", "{\"pin\":\"98 76\"}", "pin"},
    {"POST", "/api/v1/me/pin/generate", "{\"length\":6}", "length"},
    {"POST", "/api/v1/me/cards", "{\"card_id\":\"abc\"}", "card_id"},
    {"POST", "/api/v1/me/cards", "{\"card_id\":\"ab cd\"}", "card_id"},
    {"POST", "/api/v1/me/cards", "{\"card_id\":\"abcd\",\"label\":\"x\\n\"}", "label"},
    {"POST", "/api/v1/me/cards", "{\"card_id\":\"abcd\",\"label\":\"\"}", "label"},
    {"POST", "/api/v1/me/cards", "{\"card_id\":\"abcd\",\"user\":\"bob\"}", "user"},
    {"POST", "/api/v1/me/cards",
     "{\"card_id\":\"A1234567890123456789012345678901234567890123456789012345678901234\"}",
     "card_id"},
    {"POST", "/api/v1/me/cards", "{\"card_id\":[\"abcd\"]}", "card_id"},
    {"POST", "/api/v1/users/USER/cards", "{\"card_id\":\"../../x\"}", "card_id"},
};

static char *
fill(const char *path)
{
  g_autofree char *org = sfx_org_public_id("Customer A");
  g_autofree char *user = user_public_id("alice@a.test");
  g_autofree char *dev = mfp1_id();
  g_auto(GStrv) a = g_strsplit(path, "ORG", -1);
  g_autofree char *p1 = g_strjoinv(org, a);
  g_auto(GStrv) b = g_strsplit(p1, "USER", -1);
  g_autofree char *p2 = g_strjoinv(user, b);
  g_auto(GStrv) c = g_strsplit(p2, "DEV", -1);
  return g_strjoinv(dev, c);
}

START_TEST(test_bad_bodies)
{
  const bad_case_t *c = &bad_cases[_i];
  g_autofree char *path = fill(c->path);
  bool own = g_str_has_prefix(c->path, "/api/v1/me/");
  g_autofree char *token = own ? sfx_login("alice@a.test", sfx.alice_pw) : admin_token();
  g_autofree char *before = state();
  g_autoptr(JsonNode) answer = NULL;
  long status = sfx_call_raw(c->method, path, token, c->body, -1, NULL, NULL, &answer);
  const char *msg = sfx_str(answer, "message");
  ck_assert_msg(status == 400, "%s %s %s: got %ld (%s), expected 400", c->method, c->path, c->body,
                status, msg ? msg : "-");
  EXPECT_ERROR(status, answer, 400, "bad_request", c->names);
  g_autofree char *after = state();
  ck_assert_msg(strcmp(before, after) == 0, "%s %s %s changed what is stored", c->method, c->path,
                c->body);
}
END_TEST

START_TEST(test_bad_device_bodies)
{
  g_autofree char *device = sfx_device_login();
  g_autofree char *at = sfx_pin_login();
  static const struct {
    const char *route;
    bool at;
    const char *body;
    const char *names;
  } cases[] = {
      {"pin-login", false, "{\"pin\":\"4321\",\"user\":\"alice\"}", "user"},
      {"pin-login", false, "{\"pin\":\"432\"}", "pin"},
      {"pin-login", false, "{\"pin\":\"1234567890123\"}", "pin"},
      {"pin-login", false, "{\"pin\":\"43x1\"}", "pin"},
      {"card-login", false, "{\"card_id\":\"x\"}", "card_id"},
      {"card-login", false, "{\"card_id\":\"ABCD\",\"pin\":\"1\"}", "pin"},
      {"card-login", false, "{}", "card_id"},
      {"user-login", false, "{\"email\":\"alice@a.test\"}", "password"},
      {"user-login", false, "{\"email\":\"alice\",\"password\":\"x\"}", "email"},
      {"user-login", false,
       "{\"email\":\"alice@a.test\",\"password\":\"x\",\"client\":\"desktop\"}", "client"},
      {"cards", true, "{\"card_id\":\"ABCD\",\"user_id\":1}", "user_id"},
      {"cards", true, "{\"card_id\":\"AB\"}", "card_id"},
  };
  for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
    g_autofree char *before = state();
    g_autofree char *path = g_strdup_printf("/api/v1/device/%s", cases[i].route);
    g_autoptr(JsonNode) answer = NULL;
    long status = sfx_call_raw("POST", path, cases[i].at ? at : device, cases[i].body, -1, NULL,
                               NULL, &answer);
    EXPECT_ERROR(status, answer, 400, "bad_request", cases[i].names);
    g_autofree char *after = state();
    ck_assert_msg(strcmp(before, after) == 0, "%s %s changed what is stored", cases[i].route,
                  cases[i].body);
  }
  /* Non-UTF-8 inside a string, on every kind of route. */
  static const char bad_utf8[] = "{\"card_id\":\"AB\xff\xfe\"}";
  g_autofree char *admin = admin_token();
  g_autofree char *before = state();
  g_autoptr(JsonNode) a1 = NULL;
  g_autoptr(JsonNode) a2 = NULL;
  g_autoptr(JsonNode) a3 = NULL;
  ck_assert_int_eq(
      sfx_call_raw("POST", "/api/v1/device/card-login", device, bad_utf8, -1, NULL, NULL, &a1),
      400);
  ck_assert_int_eq(sfx_call_raw("POST", "/api/v1/device/cards", at, bad_utf8, -1, NULL, NULL, &a2),
                   400);
  g_autofree char *org = sfx_org_public_id("Customer A");
  g_autofree char *dpath = g_strdup_printf("/api/v1/orgs/%s/devices", org);
  ck_assert_int_eq(sfx_call_raw("POST", dpath, admin, "{\"serial\":\"S1\",\"name\":\"\xc3\x28\"}",
                                -1, NULL, NULL, &a3),
                   400);
  g_autofree char *after = state();
  ck_assert_str_eq(before, after);
}
END_TEST

/* One byte over each bound: refused, naming the field; at the bound: fine. */
START_TEST(test_bad_overlong)
{
  g_autofree char *admin = admin_token();
  g_autofree char *alice = sfx_login("alice@a.test", sfx.alice_pw);
  g_autofree char *org = sfx_org_public_id("Customer A");
  g_autofree char *dpath = g_strdup_printf("/api/v1/orgs/%s/devices", org);
  g_autofree char *serial65 = g_strnfill(65, 'S');
  g_autofree char *serial64 = g_strnfill(64, 'S');
  g_autofree char *name129 = g_strnfill(129, 'n');
  g_autofree char *name128 = g_strnfill(128, 'n');
  g_autofree char *label65 = g_strnfill(65, 'l');
  g_autofree char *label64 = g_strnfill(64, 'l');
  g_autofree char *b1 = g_strdup_printf("{\"serial\":\"%s\",\"name\":\"N\"}", serial65);
  g_autofree char *b2 = g_strdup_printf("{\"serial\":\"S1\",\"name\":\"%s\"}", name129);
  g_autofree char *b3 = g_strdup_printf("{\"card_id\":\"ABCD\",\"label\":\"%s\"}", label65);
  g_autofree char *before = state();
  g_autoptr(JsonNode) a1 = NULL;
  g_autoptr(JsonNode) a2 = NULL;
  g_autoptr(JsonNode) a3 = NULL;
  EXPECT_ERROR(sfx_call("POST", dpath, admin, b1, &a1), a1, 400, "bad_request", "serial");
  EXPECT_ERROR(sfx_call("POST", dpath, admin, b2, &a2), a2, 400, "bad_request", "name");
  EXPECT_ERROR(sfx_call("POST", "/api/v1/me/cards", alice, b3, &a3), a3, 400, "bad_request",
               "label");
  g_autofree char *after = state();
  ck_assert_str_eq(before, after);
  g_autofree char *ok1 = g_strdup_printf("{\"serial\":\"%s\",\"name\":\"%s\"}", serial64, name128);
  g_autofree char *ok2 = g_strdup_printf("{\"card_id\":\"ABCD\",\"label\":\"%s\"}", label64);
  ck_assert_int_eq(sfx_call("POST", dpath, admin, ok1, NULL), 201);
  ck_assert_int_eq(sfx_call("POST", "/api/v1/me/cards", alice, ok2, NULL), 201);
}
END_TEST

int
main(void)
{
  Suite *s = suite_create("server-devices");
  struct {
    const char *name;
    const TTest *tests[10];
  } groups[] = {
      {"registration",
       {test_register, test_rotate_secret, test_patch_and_delete, test_delete_device_with_logs,
        test_device_access, NULL}},
      {"login options", {test_options_on_off, test_simple_login, test_card_login_cross_org, NULL}},
      {"pins",
       {test_pin_profiles, test_pin_profile_switch, test_pin_settings_route, test_pin_generate,
        test_pin_generate_unique, test_pin_clash, test_pin_masking, NULL}},
      {"lockout", {test_pin_lockout, test_pin_locked_account, NULL}},
      {"cards", {test_cards_api, test_cards_admin, test_cards_device, NULL}},
      {"bad input", {test_bad_device_bodies, test_bad_overlong, NULL}},
  };
  for (size_t g = 0; g < G_N_ELEMENTS(groups); g++) {
    TCase *tc = tcase_create(groups[g].name);
    tcase_add_checked_fixture(tc, sfx_setup, sfx_teardown);
    tcase_set_timeout(tc, 300);
    for (size_t t = 0; groups[g].tests[t]; t++)
      _tcase_add_test(tc, groups[g].tests[t], 0, 0, 0, 1);
    if (g == G_N_ELEMENTS(groups) - 1)
      tcase_add_loop_test(tc, test_bad_bodies, 0, (int)G_N_ELEMENTS(bad_cases));
    suite_add_tcase(s, tc);
  }
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
