/* kcps-tray: the KCPS tray application (see docs/ui.md). */
#include <glib/gi18n-lib.h>
#include <locale.h>

#include "ui/tray-app.h"

int main(int argc, char **argv)
{
  setlocale(LC_ALL, "");
  bindtextdomain(GETTEXT_PACKAGE, KCPS_LOCALEDIR);
  bind_textdomain_codeset(GETTEXT_PACKAGE, "UTF-8");
  textdomain(GETTEXT_PACKAGE);
  g_set_application_name(_("KCPS Printing"));
  g_autoptr(KcpsTrayApp) app = kcps_tray_app_new();
  return g_application_run(G_APPLICATION(app), argc, argv);
}
