/* The demo tree (--demo): RHQ → Sales A → Customer A with an admin, a user
 * with a PIN and one device, and the RHQ's provider admin (who builds the
 * rest of a tree through the API), all with freshly generated secrets that
 * are handed out once (stdout and DATA/demo-credentials.txt). */
#include "server-private.h"

#include "common/crypto.h"

#include <glib/gstdio.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <string.h>

#define DEMO_PIN "4321"

/* A password of len characters with at least one digit, upper-case and
 * lower-case letter and symbol (the white paper's policy, section 4.2).
 * Characters are drawn without modulo bias. NULL when OpenSSL has no
 * randomness. g_free. */
static char *
random_password(size_t len)
{
  static const char symbols[] = "!#%+-.:=?@_";
  static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                 "0123456789!#%+-.:=?@_";
  const unsigned n = sizeof alphabet - 1;
  const unsigned limit = 256 - 256 % n;
  char *pw = g_malloc0(len + 1);

  for (int attempt = 0; attempt < 1000; attempt++) {
    for (size_t i = 0; i < len;) {
      unsigned char byte;
      if (RAND_bytes(&byte, 1) != 1) {
        g_free(pw);
        return NULL;
      }
      if (byte < limit)
        pw[i++] = alphabet[byte % n];
    }
    bool digit = false, upper = false, lower = false, symbol = false;
    for (size_t i = 0; i < len; i++) {
      digit = digit || g_ascii_isdigit(pw[i]);
      upper = upper || g_ascii_isupper(pw[i]);
      lower = lower || g_ascii_islower(pw[i]);
      symbol = symbol || strchr(symbols, pw[i]) != NULL;
    }
    if (digit && upper && lower && symbol)
      return pw;
  }
  g_free(pw);
  return NULL;
}

static void
wipe_free(char *s)
{
  if (s) {
    OPENSSL_cleanse(s, strlen(s));
    g_free(s);
  }
}

static gint64
insert_org_locked(kcps_server_t *server, const char *name, const char *type, gint64 parent,
                  GError **error)
{
  sqlite3_stmt *stmt = kcps__server_db_prepare(
      server, "INSERT INTO orgs (name, type, parent_id, created, public_id) VALUES (?, ?, ?, ?, ?)",
      error);
  if (!stmt)
    return 0;
  g_autofree char *public_id = g_uuid_string_random();
  sqlite3_bind_text(stmt, 5, public_id, -1, SQLITE_STATIC);
  sqlite3_bind_text(stmt, 1, name, -1, SQLITE_STATIC);
  sqlite3_bind_text(stmt, 2, type, -1, SQLITE_STATIC);
  if (parent > 0)
    sqlite3_bind_int64(stmt, 3, parent);
  sqlite3_bind_int64(stmt, 4, kcps__server_now());
  gint64 id = kcps__server_db_step(server, stmt, error) == SQLITE_DONE
                  ? sqlite3_last_insert_rowid(server->db) : 0;
  sqlite3_finalize(stmt);
  return id;
}

static bool
insert_user_locked(kcps_server_t *server, gint64 org, const char *email, const char *name,
                   const char *role, const char *hash, const char *pin_hmac, GError **error)
{
  sqlite3_stmt *stmt = kcps__server_db_prepare(
      server,
      "INSERT INTO users (public_id, org_id, email, name, role, password_hash, pin_hmac,"
      " created) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
      error);
  if (!stmt)
    return false;
  g_autofree char *public_id = g_uuid_string_random();
  sqlite3_bind_text(stmt, 1, public_id, -1, SQLITE_STATIC);
  sqlite3_bind_int64(stmt, 2, org);
  sqlite3_bind_text(stmt, 3, email, -1, SQLITE_STATIC);
  sqlite3_bind_text(stmt, 4, name, -1, SQLITE_STATIC);
  sqlite3_bind_text(stmt, 5, role, -1, SQLITE_STATIC);
  sqlite3_bind_text(stmt, 6, hash, -1, SQLITE_STATIC);
  if (pin_hmac)
    sqlite3_bind_text(stmt, 7, pin_hmac, -1, SQLITE_STATIC);
  sqlite3_bind_int64(stmt, 8, kcps__server_now());
  bool ok = kcps__server_db_step(server, stmt, error) == SQLITE_DONE;
  sqlite3_finalize(stmt);
  return ok;
}

static bool
insert_device_locked(kcps_server_t *server, gint64 org, const char *name,
                     const char *secret_hash, GError **error)
{
  sqlite3_stmt *stmt = kcps__server_db_prepare(
      server, "INSERT INTO devices (org_id, name, secret_hash, created) VALUES (?, ?, ?, ?)",
      error);
  if (!stmt)
    return false;
  sqlite3_bind_int64(stmt, 1, org);
  sqlite3_bind_text(stmt, 2, name, -1, SQLITE_STATIC);
  sqlite3_bind_text(stmt, 3, secret_hash, -1, SQLITE_STATIC);
  sqlite3_bind_int64(stmt, 4, kcps__server_now());
  bool ok = kcps__server_db_step(server, stmt, error) == SQLITE_DONE;
  sqlite3_finalize(stmt);
  return ok;
}

/* The three password hashes, made before the lock is taken (Argon2 must
 * not hold up other requests). */
typedef struct {
  char *rhq;
  char *admin;
  char *alice;
} demo_hashes_t;

/* Inserts the tree; caller holds the lock and an open transaction. */
static bool
insert_tree_locked(kcps_server_t *server, const demo_hashes_t *hashes, const char *secret,
                   GError **error)
{
  gint64 root = insert_org_locked(server, "RHQ", "root", 0, error);
  gint64 sales = root ? insert_org_locked(server, "Sales A", "provider", root, error) : 0;
  gint64 customer = sales ? insert_org_locked(server, "Customer A", "customer", sales, error) : 0;
  if (!customer)
    return false;

  char pin_hmac[65];
  kcps__server_pin_hmac(server, customer, DEMO_PIN, pin_hmac);
  char secret_hash[65];
  kcps_crypto_sha256_hex(secret, strlen(secret), secret_hash);

  return insert_user_locked(server, root, "rhq@a.test", "RHQ Admin", "provider_admin",
                            hashes->rhq, NULL, error) &&
         insert_user_locked(server, customer, "admin@a.test", "Customer A Admin",
                            "customer_admin", hashes->admin, NULL, error) &&
         insert_user_locked(server, customer, "alice@a.test", "Alice", "customer_user",
                            hashes->alice, pin_hmac, error) &&
         insert_device_locked(server, customer, "MFP-1", secret_hash, error);
}

/* How many organizations exist; -1 with error. Takes the lock. */
static gint64
count_orgs(kcps_server_t *server, GError **error)
{
  g_mutex_lock(&server->lock);
  sqlite3_stmt *stmt = kcps__server_db_prepare(server, "SELECT count(*) FROM orgs", error);
  gint64 orgs = -1;
  if (stmt && kcps__server_db_step(server, stmt, error) == SQLITE_ROW)
    orgs = sqlite3_column_int64(stmt, 0);
  sqlite3_finalize(stmt);
  g_mutex_unlock(&server->lock);
  return orgs;
}

bool
kcps__server_demo_create(kcps_server_t *server, GError **error)
{
  g_autofree char *cred_path = g_build_filename(server->data_dir, "demo-credentials.txt", NULL);
  g_autofree char *secret_path = g_build_filename(server->data_dir, "MFP-1.secret", NULL);
  char *rhq_pw = NULL, *admin_pw = NULL, *alice_pw = NULL, *secret = NULL, *text = NULL;
  demo_hashes_t hashes = {0};
  bool ok = false;

  /* Only an empty folder gets the demo: a second start changes nothing. */
  gint64 orgs = count_orgs(server, error);
  if (orgs != 0)
    return orgs > 0;

  rhq_pw = random_password(16);
  admin_pw = random_password(16);
  alice_pw = random_password(16);
  secret = kcps_crypto_random_token(32);
  if (!rhq_pw || !admin_pw || !alice_pw || !secret) {
    g_set_error_literal(error, KCPS_SERVER_ERROR, KCPS_SERVER_ERROR_CRYPTO,
                        "demo: no randomness for the credentials");
    goto out;
  }
  hashes.rhq = kcps__server_password_hash(rhq_pw, error);
  hashes.admin = hashes.rhq ? kcps__server_password_hash(admin_pw, error) : NULL;
  hashes.alice = hashes.admin ? kcps__server_password_hash(alice_pw, error) : NULL;
  if (!hashes.alice)
    goto out;
  text = g_strdup_printf("admin@a.test password: %s\n"
                         "alice@a.test password: %s\n"
                         "MFP-1 device secret: %s\n"
                         "rhq@a.test password: %s\n",
                         admin_pw, alice_pw, secret, rhq_pw);

  g_mutex_lock(&server->lock);
  if (!kcps__server_db_begin(server, error))
    goto out_unlock;
  /* Checked again inside the transaction: the listener is already up. */
  sqlite3_stmt *stmt = kcps__server_db_prepare(server, "SELECT count(*) FROM orgs", error);
  orgs = stmt && kcps__server_db_step(server, stmt, error) == SQLITE_ROW
             ? sqlite3_column_int64(stmt, 0) : -1;
  sqlite3_finalize(stmt);
  if (orgs != 0) {
    kcps__server_db_rollback(server);
    ok = orgs > 0;
    goto out_unlock;
  }

  /* The files are written inside the transaction and removed if it does
   * not commit, so credentials are never lost nor stale. */
  if (!insert_tree_locked(server, &hashes, secret, error) ||
      !kcps__server_write_private_file(cred_path, text, strlen(text), error) ||
      !kcps__server_write_private_file(secret_path, secret, strlen(secret), error)) {
    kcps__server_db_rollback(server);
    goto out_unlink;
  }
  if (!kcps__server_db_commit(server, error))
    goto out_unlink;

  server->demo_text = text;
  text = NULL;
  ok = true;
  goto out_unlock;

out_unlink:
  g_unlink(cred_path);
  g_unlink(secret_path);
out_unlock:
  g_mutex_unlock(&server->lock);
out:
  wipe_free(rhq_pw);
  wipe_free(admin_pw);
  wipe_free(alice_pw);
  wipe_free(secret);
  wipe_free(text);
  g_free(hashes.rhq);
  g_free(hashes.admin);
  g_free(hashes.alice);
  return ok;
}
