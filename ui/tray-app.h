/* KcpsTrayApp: the tray application (one instance per user session through
 * GtkApplication): the icon, the windows, and the state read from kcpsd. */
#pragma once

#include <gtk/gtk.h>

G_BEGIN_DECLS

#define KCPS_TYPE_TRAY_APP (kcps_tray_app_get_type())
G_DECLARE_FINAL_TYPE(KcpsTrayApp, kcps_tray_app, KCPS, TRAY_APP, GtkApplication)

KcpsTrayApp *kcps_tray_app_new(void);

G_END_DECLS
