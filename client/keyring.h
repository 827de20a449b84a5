/* The user's KCPS session in her keyring (the Secret Service, through
 * libsecret): one item per server, schema "org.kcps.Session", attributes
 * "server" (kcpsd's server URL) and "email"; the secret is the desktop
 * refresh token. The tray and the CLI use the same item, so logging out in
 * one logs out the other. In the keyring it is never on disk in clear (the
 * keyring daemon keeps it encrypted); without a keyring, see
 * kcps_keyring_file_path. Blocking calls (D-Bus round trips). */
#pragma once

#include <glib.h>
#include <stdbool.h>

G_BEGIN_DECLS

/* True when a session bus is there (DBUS_SESSION_BUS_ADDRESS, or
 * $XDG_RUNTIME_DIR/bus) and a Secret Service runs on it (someone owns
 * org.freedesktop.secrets). Without (ssh, a service, a session with no
 * keyring) libsecret is not asked: it would try to start a bus or a keyring
 * daemon. Blocking (one D-Bus round trip). */
bool kcps_keyring_available(void);

/* Where there is no keyring (kcps_keyring_available() false), the session
 * is kept instead in this file ($XDG_STATE_HOME/kcps/session: mode 0600, in
 * a 0700 folder, written atomically; one group a server). The token is in
 * clear there, protected by the file's mode only: callers say so loudly
 * whenever they use it. A file that others could read, or not the user's,
 * is refused. */
const char *kcps_keyring_file_path(void);

/* The refresh token kept for server (g_free after wiping: kcps_keyring_free)
 * and the account it is for (*email, g_free; may be NULL). NULL with no
 * error when there is none; NULL with error when the keyring failed. */
char *kcps_keyring_lookup(const char *server, char **email, GError **error);

/* Keeps token for (server, email), replacing what was kept for server. */
bool kcps_keyring_store(const char *server, const char *email, const char *token,
                        GError **error);

/* Forgets what is kept for server; true also when there was nothing. */
bool kcps_keyring_clear(const char *server, GError **error);

/* Wipes and frees a token from kcps_keyring_lookup. */
void kcps_keyring_free(char *token);

G_END_DECLS
