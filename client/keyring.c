/* The session item in the user's keyring, or the 0600 file where there is
 * no keyring (keyring.h). */
#include "client/keyring.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gio/gio.h>
#include <glib/gstdio.h>
#include <libsecret/secret.h>

#define FILE_MAX (64 * 1024)

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

static char *secret_lookup(const char *server, char **email, GError **error)
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

static bool secret_clear(const char *server, GError **error)
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

static bool secret_store(const char *server, const char *email, const char *token,
                         GError **error)
{
  /* One session per server: the last login wins. */
  if (!secret_clear(server, error))
    return false;
  g_autofree char *label = g_strdup_printf("KCPS session of %s on %s", email, server);
  return secret_password_store_sync(session_schema(), SECRET_COLLECTION_DEFAULT, label, token,
                                    NULL, error, "server", server, "email", email, NULL);
}

/* --- the file, where there is no keyring ----------------------------------- */

const char *kcps_keyring_file_path(void)
{
  static gsize once;
  static char *path;
  if (g_once_init_enter(&once)) {
    path = g_build_filename(g_get_user_state_dir(), "kcps", "session", NULL);
    g_once_init_leave(&once, 1);
  }
  return path;
}

static void wipe_free(char *text)
{
  if (text != NULL) {
    explicit_bzero(text, strlen(text));
    g_free(text);
  }
}

/* The file's sessions: one group a server (email, refresh_token). Only a
 * regular file of this user that nobody else may read is believed. */
static GKeyFile *file_load(GError **error)
{
  const char *path = kcps_keyring_file_path();
  GKeyFile *file = g_key_file_new();
  int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT)
      return file;
    g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno), "cannot open %s: %s",
                path, g_strerror(errno));
    g_key_file_free(file);
    return NULL;
  }
  struct stat st;
  char *data = NULL;
  bool ok = fstat(fd, &st) == 0;
  if (ok && (!S_ISREG(st.st_mode) || st.st_uid != getuid() || (st.st_mode & 077) != 0 ||
             st.st_size > FILE_MAX)) {
    g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_PERM,
                "refusing %s: it must be a file of yours that only you can read (mode 0600, "
                "at most 64 KiB); it is mode %04o, owner %u",
                path, (unsigned)(st.st_mode & 07777), (unsigned)st.st_uid);
    ok = false;
  } else if (ok) {
    data = g_malloc0((gsize)st.st_size + 1);
    ssize_t got = st.st_size > 0 ? read(fd, data, (size_t)st.st_size) : 0;
    ok = got == st.st_size;
    if (!ok)
      g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_IO, "cannot read %s", path);
  } else {
    g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno), "cannot stat %s: %s",
                path, g_strerror(errno));
  }
  close(fd);
  if (ok && !g_key_file_load_from_data(file, data, (gsize)st.st_size, G_KEY_FILE_NONE, error)) {
    g_prefix_error(error, "%s is damaged: ", path);
    ok = false;
  }
  if (data != NULL)
    explicit_bzero(data, (size_t)st.st_size);
  g_free(data);
  if (!ok) {
    g_key_file_free(file);
    return NULL;
  }
  return file;
}

/* Writes file (0600, folder 0700, atomically), or removes it when empty. */
static bool file_save(GKeyFile *file, GError **error)
{
  const char *path = kcps_keyring_file_path();
  gsize n_groups = 0;
  g_strfreev(g_key_file_get_groups(file, &n_groups));
  if (n_groups == 0) {
    if (g_unlink(path) != 0 && errno != ENOENT) {
      g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno), "cannot remove %s: %s",
                  path, g_strerror(errno));
      return false;
    }
    return true;
  }
  g_autofree char *dir = g_path_get_dirname(path);
  if (g_mkdir_with_parents(dir, 0700) != 0 || g_chmod(dir, 0700) != 0) {
    g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno), "cannot make %s: %s", dir,
                g_strerror(errno));
    return false;
  }
  gsize length = 0;
  char *data = g_key_file_to_data(file, &length, NULL);
  bool ok = g_file_set_contents_full(path, data, (gssize)length, G_FILE_SET_CONTENTS_CONSISTENT,
                                     0600, error);
  explicit_bzero(data, length);
  g_free(data);
  return ok;
}

static char *file_lookup(const char *server, char **email, GError **error)
{
  GKeyFile *file = file_load(error);
  if (file == NULL)
    return NULL;
  char *token = g_key_file_get_string(file, server, "refresh_token", NULL);
  if (token != NULL && *token == '\0')
    g_clear_pointer(&token, wipe_free);
  if (token != NULL && email != NULL)
    *email = g_key_file_get_string(file, server, "email", NULL);
  g_key_file_free(file);
  return token;
}

static bool file_change(const char *server, const char *email, const char *token,
                        GError **error)
{
  GKeyFile *file = file_load(error);
  if (file == NULL)
    return false;
  (void)g_key_file_remove_group(file, server, NULL);
  if (token != NULL) {
    g_key_file_set_string(file, server, "email", email != NULL ? email : "");
    g_key_file_set_string(file, server, "refresh_token", token);
  }
  bool ok = file_save(file, error);
  g_key_file_free(file);
  return ok;
}

/* --- either ------------------------------------------------------------------ */

char *kcps_keyring_lookup(const char *server, char **email, GError **error)
{
  if (email != NULL)
    *email = NULL;
  return kcps_keyring_available() ? secret_lookup(server, email, error)
                                  : file_lookup(server, email, error);
}

bool kcps_keyring_store(const char *server, const char *email, const char *token,
                        GError **error)
{
  return kcps_keyring_available() ? secret_store(server, email, token, error)
                                  : file_change(server, email, token, error);
}

bool kcps_keyring_clear(const char *server, GError **error)
{
  /* Both: a session kept in the file before a keyring came goes too. */
  bool ok = !kcps_keyring_available() || secret_clear(server, error);
  GError *file_error = NULL;
  if (!file_change(server, NULL, NULL, ok ? error : &file_error))
    ok = false;
  g_clear_error(&file_error);
  return ok;
}
