/* The tray icon: a StatusNotifierItem (org.kde.StatusNotifierItem) with its
 * menu (com.canonical.dbusmenu) on the session bus, registered with the
 * desktop's org.kde.StatusNotifierWatcher whenever one is present. GTK 4 has
 * no tray API; this is the protocol the tray hosts of KDE, GNOME (with the
 * AppIndicator extension), Xfce, LXQt and waybar speak. */
#pragma once

#include <gio/gio.h>
#include <stdbool.h>

G_BEGIN_DECLS

typedef struct kcps_tray_sni_s kcps_tray_sni_t;

/* What the icon tells the app; data is the callbacks' user data. */
typedef struct kcps_tray_sni_callbacks_s {
  /* A menu item was clicked: its action, "jobs", "settings", "login",
   * "logout" or "quit". */
  void (*menu_action)(const char *action, void *data);
  /* The host is about to show the menu (a moment to refresh). */
  void (*menu_opening)(void *data);
  /* The icon was clicked (Activate). */
  void (*activate)(void *data);
  /* A tray host appeared (true) or is gone / was never there (false). */
  void (*host_changed)(bool has_host, void *data);
} kcps_tray_sni_callbacks_t;

/* Exports the item and its menu on connection and starts watching for a
 * watcher. NULL with an error when the objects cannot be exported. */
kcps_tray_sni_t *kcps_tray_sni_new(GDBusConnection *connection,
                                   const kcps_tray_sni_callbacks_t *callbacks, void *data,
                                   GError **error);
/* Unexports everything and drops the bus name; NULL is a no-op. */
void kcps_tray_sni_free(kcps_tray_sni_t *sni);
/* The folder holding hicolor/scalable/status/kcps-tray-*.svg, the icons of
 * the item's states: $KCPS_TRAY_ICON_DIR, else the installed one, else the
 * source tree's (an uninstalled build). */
const char *kcps_tray_icon_dir(void);

/* New icon, SNI status ("Active"/"NeedsAttention"), tooltip and first menu
 * line; logged_in picks "Log in…" or "Log out". Signals only what changed. */
void kcps_tray_sni_update(kcps_tray_sni_t *sni, const char *icon_name, const char *status,
                          const char *tooltip, const char *who_line, const char *quota_line,
                          bool logged_in);

/* True while a watcher accepted the item. */
bool kcps_tray_sni_has_host(const kcps_tray_sni_t *sni);

G_END_DECLS
