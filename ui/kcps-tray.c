/* kcps-tray: the KCPS tray application (see docs/ui.md). */
#include <glib/gi18n-lib.h>
#include <locale.h>

#include "ui/tray-app.h"

int main(int argc, char **argv)
{
  /* No OpenGL: a tray sits idle nearly all its life, and initializing GL
   * maps the driver (with Mesa, LLVM: 44 MiB measured; idle RSS went from
   * 90 to 30 MiB). Its small windows draw fine with cairo. A user's own
   * choice of another renderer, or of GDK_DEBUG, wins. */
  const char *renderer = g_getenv("GSK_RENDERER");
  if (renderer == NULL || g_ascii_strcasecmp(renderer, "cairo") == 0) {
    g_setenv("GSK_RENDERER", "cairo", TRUE);
    if (g_getenv("GDK_DEBUG") == NULL)
      g_setenv("GDK_DEBUG", "gl-disable", TRUE);
  }
  setlocale(LC_ALL, "");
  /* The installed catalogs; KCPS_TRAY_LOCALEDIR points at a build tree's
   * (BUILD/ui/po), for the tests and for trying a build uninstalled. */
  const char *localedir = g_getenv("KCPS_TRAY_LOCALEDIR");
  bindtextdomain(GETTEXT_PACKAGE, localedir != NULL && *localedir != '\0' ? localedir
                                                                          : KCPS_LOCALEDIR);
  bind_textdomain_codeset(GETTEXT_PACKAGE, "UTF-8");
  textdomain(GETTEXT_PACKAGE);
  g_set_application_name(_("KCPS Printing"));
  g_autoptr(KcpsTrayApp) app = kcps_tray_app_new();
  return g_application_run(G_APPLICATION(app), argc, argv);
}
