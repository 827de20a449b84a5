/* The session item in the user's keyring (keyring.h). */
#include "client/keyring.h"

#include <string.h>

#include <gio/gio.h>
#include <libsecret/secret.h>

static const SecretSchema *session_schema(void)
{
  static const SecretSchema schema = {
    "org.kcps.Session",
    SECRET_SCHEMA_NONE,
    {
      {"server", SECRET_SCHEMA_ATTRIBUTE_STRING},
      {"email", SECRET_SCHEMA_ATTRIBUTE_STRING},
      {NULL, 0},
    },
    0, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  };
  return &schema;
}

bool kcps_keyring_available(void)
{
  const char *address = g_getenv("DBUS_SESSION_BUS_ADDRESS");
  if (address == NULL || *address == '\0') {
    const char *runtime = g_getenv("XDG_RUNTIME_DIR");
    if (runtime == NULL || *runtime == '\0')
      return false;
    g_autofree char *bus = g_build_filename(runtime, "bus", NULL);
    if (!g_file_test(bus, G_FILE_TEST_EXISTS))
      return false;
  }
  /* Only a Secret Service the session already runs (a desktop starts its
   * keyring at login): asking would otherwise start one by D-Bus
   * activation, which may prompt for a new keyring's password. */
  g_autoptr(GDBusConnection) bus = g_bus_get_sync(G_BUS_TYPE_SESSION, NULL, NULL);
  if (bus == NULL)
    return false;
  g_autoptr(GVariant) owned = g_dbus_connection_call_sync(
    bus, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
    "NameHasOwner", g_variant_new("(s)", "org.freedesktop.secrets"), G_VARIANT_TYPE("(b)"),
    G_DBUS_CALL_FLAGS_NONE, 5000, NULL, NULL);
  gboolean has_owner = FALSE;
  if (owned != NULL)
    g_variant_get(owned, "(b)", &has_owner);
  return has_owner;
}

void kcps_keyring_free(char *token)
{
  if (token != NULL) {
    explicit_bzero(token, strlen(token));
    g_free(token);
  }
}

char *kcps_keyring_lookup(const char *server, char **email, GError **error)
{
  if (email != NULL)
    *email = NULL;
  g_autoptr(GHashTable) attributes = g_hash_table_new(g_str_hash, g_str_equal);
  g_hash_table_insert(attributes, (gpointer) "server", (gpointer)server);
  GList *items = secret_password_searchv_sync(
    session_schema(), attributes, SECRET_SEARCH_UNLOCK | SECRET_SEARCH_LOAD_SECRETS, NULL,
    error);
  char *token = NULL;
  if (items != NULL) {
    SecretRetrievable *item = items->data;
    SecretValue *value = secret_retrievable_retrieve_secret_sync(item, NULL, error);
    if (value != NULL) {
      const char *text = secret_value_get_text(value);
      if (text != NULL && *text != '\0') {
        token = g_strdup(text);
        if (email != NULL) {
          g_autoptr(GHashTable) attrs = secret_retrievable_get_attributes(item);
          *email = g_strdup(g_hash_table_lookup(attrs, "email"));
        }
      }
      secret_value_unref(value);
    }
  }
  g_list_free_full(items, g_object_unref);
  return token;
}

bool kcps_keyring_clear(const char *server, GError **error)
{
  GError *local = NULL;
  /* Clears every item of the schema with this server (each account). */
  secret_password_clear_sync(session_schema(), NULL, &local, "server", server, NULL);
  if (local != NULL) {
    g_propagate_error(error, local);
    return false;
  }
  return true;
}

bool kcps_keyring_store(const char *server, const char *email, const char *token,
                        GError **error)
{
  /* One session per server: the last login wins. */
  if (!kcps_keyring_clear(server, error))
    return false;
  g_autofree char *label = g_strdup_printf("KCPS session of %s on %s", email, server);
  return secret_password_store_sync(session_schema(), SECRET_COLLECTION_DEFAULT, label, token,
                                    NULL, error, "server", server, "email", email, NULL);
}
