/* StatusNotifierItem + dbusmenu over GDBus (see tray-sni.h). The menu is a
 * fixed table; only labels and visibility change, and each change bumps the
 * layout revision and says so (LayoutUpdated), so hosts never need to poll. */
#define G_LOG_DOMAIN "kcps-tray"

#include "ui/tray-sni.h"

#include <glib/gi18n-lib.h>
#include <gtk/gtk.h>
#include <string.h>
#include <unistd.h>

#define ITEM_PATH "/StatusNotifierItem"
#define MENU_PATH "/MenuBar"
#define WATCHER_NAME "org.kde.StatusNotifierWatcher"
#define WATCHER_PATH "/StatusNotifierWatcher"

static const char item_xml[] =
  "<node>"
  " <interface name='org.kde.StatusNotifierItem'>"
  "  <property name='Category' type='s' access='read'/>"
  "  <property name='Id' type='s' access='read'/>"
  "  <property name='Title' type='s' access='read'/>"
  "  <property name='Status' type='s' access='read'/>"
  "  <property name='WindowId' type='i' access='read'/>"
  "  <property name='IconName' type='s' access='read'/>"
  "  <property name='IconPixmap' type='a(iiay)' access='read'/>"
  "  <property name='OverlayIconName' type='s' access='read'/>"
  "  <property name='OverlayIconPixmap' type='a(iiay)' access='read'/>"
  "  <property name='AttentionIconName' type='s' access='read'/>"
  "  <property name='AttentionIconPixmap' type='a(iiay)' access='read'/>"
  "  <property name='AttentionMovieName' type='s' access='read'/>"
  "  <property name='ToolTip' type='(sa(iiay)ss)' access='read'/>"
  "  <property name='ItemIsMenu' type='b' access='read'/>"
  "  <property name='Menu' type='o' access='read'/>"
  "  <property name='IconThemePath' type='s' access='read'/>"
  "  <method name='ContextMenu'><arg name='x' type='i' direction='in'/>"
  "   <arg name='y' type='i' direction='in'/></method>"
  "  <method name='Activate'><arg name='x' type='i' direction='in'/>"
  "   <arg name='y' type='i' direction='in'/></method>"
  "  <method name='SecondaryActivate'><arg name='x' type='i' direction='in'/>"
  "   <arg name='y' type='i' direction='in'/></method>"
  "  <method name='Scroll'><arg name='delta' type='i' direction='in'/>"
  "   <arg name='orientation' type='s' direction='in'/></method>"
  "  <signal name='NewTitle'/>"
  "  <signal name='NewIcon'/>"
  "  <signal name='NewAttentionIcon'/>"
  "  <signal name='NewOverlayIcon'/>"
  "  <signal name='NewToolTip'/>"
  "  <signal name='NewStatus'><arg name='status' type='s'/></signal>"
  " </interface>"
  "</node>";

static const char menu_xml[] =
  "<node>"
  " <interface name='com.canonical.dbusmenu'>"
  "  <property name='Version' type='u' access='read'/>"
  "  <property name='TextDirection' type='s' access='read'/>"
  "  <property name='Status' type='s' access='read'/>"
  "  <property name='IconThemePath' type='as' access='read'/>"
  "  <method name='GetLayout'>"
  "   <arg name='parentId' type='i' direction='in'/>"
  "   <arg name='recursionDepth' type='i' direction='in'/>"
  "   <arg name='propertyNames' type='as' direction='in'/>"
  "   <arg name='revision' type='u' direction='out'/>"
  "   <arg name='layout' type='(ia{sv}av)' direction='out'/>"
  "  </method>"
  "  <method name='GetGroupProperties'>"
  "   <arg name='ids' type='ai' direction='in'/>"
  "   <arg name='propertyNames' type='as' direction='in'/>"
  "   <arg name='properties' type='a(ia{sv})' direction='out'/>"
  "  </method>"
  "  <method name='GetProperty'>"
  "   <arg name='id' type='i' direction='in'/>"
  "   <arg name='name' type='s' direction='in'/>"
  "   <arg name='value' type='v' direction='out'/>"
  "  </method>"
  "  <method name='Event'>"
  "   <arg name='id' type='i' direction='in'/>"
  "   <arg name='eventId' type='s' direction='in'/>"
  "   <arg name='data' type='v' direction='in'/>"
  "   <arg name='timestamp' type='u' direction='in'/>"
  "  </method>"
  "  <method name='EventGroup'>"
  "   <arg name='events' type='a(isvu)' direction='in'/>"
  "   <arg name='idErrors' type='ai' direction='out'/>"
  "  </method>"
  "  <method name='AboutToShow'>"
  "   <arg name='id' type='i' direction='in'/>"
  "   <arg name='needUpdate' type='b' direction='out'/>"
  "  </method>"
  "  <method name='AboutToShowGroup'>"
  "   <arg name='ids' type='ai' direction='in'/>"
  "   <arg name='updatesNeeded' type='ai' direction='out'/>"
  "   <arg name='idErrors' type='ai' direction='out'/>"
  "  </method>"
  "  <signal name='ItemsPropertiesUpdated'>"
  "   <arg name='updatedProps' type='a(ia{sv})'/>"
  "   <arg name='removedProps' type='a(ias)'/>"
  "  </signal>"
  "  <signal name='LayoutUpdated'>"
  "   <arg name='revision' type='u'/><arg name='parent' type='i'/>"
  "  </signal>"
  "  <signal name='ItemActivationRequested'>"
  "   <arg name='id' type='i'/><arg name='timestamp' type='u'/>"
  "  </signal>"
  " </interface>"
  "</node>";

/* The menu, in order, under the root (id 0). */
enum {
  MENU_ROOT = 0,
  MENU_WHO,
  MENU_QUOTA,
  MENU_SEP1,
  MENU_JOBS,
  MENU_RELEASE,
  MENU_SETTINGS,
  MENU_SEP2,
  MENU_LOGIN,
  MENU_LOGOUT,
  MENU_SEP3,
  MENU_QUIT,
  MENU_COUNT
};

static const struct {
  int id;
  const char *label;  /* NULL: a separator, or the who or quota line */
  const char *action; /* what a click does, or NULL */
} menu_items[] = {
  {MENU_WHO, NULL, NULL},
  {MENU_QUOTA, NULL, NULL},
  {MENU_SEP1, NULL, NULL},
  {MENU_JOBS, N_("_Jobs…"), "jobs"},
  {MENU_RELEASE, N_("_Release…"), "release"},
  {MENU_SETTINGS, N_("_Settings…"), "settings"},
  {MENU_SEP2, NULL, NULL},
  {MENU_LOGIN, N_("Log _in…"), "login"},
  {MENU_LOGOUT, N_("Log _out"), "logout"},
  {MENU_SEP3, NULL, NULL},
  {MENU_QUIT, N_("_Quit"), "quit"},
};

struct kcps_tray_sni_s {
  GDBusConnection *connection;
  kcps_tray_sni_callbacks_t callbacks;
  void *data;
  GDBusNodeInfo *item_info;
  GDBusNodeInfo *menu_info;
  guint item_registration;
  guint menu_registration;
  guint name_owner;
  guint watcher_watch;
  char *bus_name;
  GCancellable *cancellable;
  bool has_host;
  bool host_known; /* host_changed was called at least once */
  /* What is shown. */
  char *icon_name;
  GVariant *icon_pixmaps; /* of icon_name, drawn when first asked */
  char *status;
  char *tooltip;
  char *who_line;
  char *quota_line; /* "" when the quota is not known */
  bool logged_in;
  guint revision;
};

/* --- the item -------------------------------------------------------------- */

static GVariant *empty_pixmaps(void)
{
  return g_variant_new_array(G_VARIANT_TYPE("(iiay)"), NULL, 0);
}

const char *kcps_tray_icon_dir(void)
{
  static gsize once;
  static char *dir;
  if (g_once_init_enter(&once)) {
    const char *env = g_getenv("KCPS_TRAY_ICON_DIR");
    g_autofree char *probe =
      g_build_filename(KCPS_TRAY_ICON_DIR, "hicolor", "scalable", "status", "kcps-tray-idle.svg",
                       NULL);
    dir = g_strdup(env != NULL && *env != '\0' ? env
                           : g_file_test(probe, G_FILE_TEST_EXISTS)
                             ? KCPS_TRAY_ICON_DIR
                             : KCPS_TRAY_SOURCE_ICON_DIR); /* not installed: the build's */
    g_once_init_leave(&once, 1);
  }
  return dir;
}

/* The icon as pixels too (22, 32 and 48 px, ARGB32 in network byte order),
 * for hosts that do not look in IconThemePath; empty when it cannot be
 * drawn (then IconName alone). */
static GVariant *icon_pixmaps(const char *icon_name)
{
  static const int sizes[] = {22, 32, 48};
  g_autofree char *file = g_strconcat(icon_name, ".svg", NULL);
  g_autofree char *path =
    g_build_filename(kcps_tray_icon_dir(), "hicolor", "scalable", "status", file, NULL);
  GVariantBuilder builder;
  g_variant_builder_init(&builder, G_VARIANT_TYPE("a(iiay)"));
  for (size_t i = 0; i < G_N_ELEMENTS(sizes); i++) {
    g_autoptr(GError) error = NULL;
    g_autoptr(GdkPixbuf) pixbuf = gdk_pixbuf_new_from_file_at_size(path, sizes[i], sizes[i],
                                                                   &error);
    if (pixbuf == NULL) {
      g_debug("no pixels for %s: %s", icon_name, error->message);
      break;
    }
    if (!gdk_pixbuf_get_has_alpha(pixbuf) || gdk_pixbuf_get_n_channels(pixbuf) != 4) {
      GdkPixbuf *with_alpha = gdk_pixbuf_add_alpha(pixbuf, FALSE, 0, 0, 0);
      g_object_unref(pixbuf);
      pixbuf = with_alpha;
    }
    int width = gdk_pixbuf_get_width(pixbuf), height = gdk_pixbuf_get_height(pixbuf);
    int stride = gdk_pixbuf_get_rowstride(pixbuf);
    const guchar *pixels = gdk_pixbuf_read_pixels(pixbuf);
    gsize size = (gsize)width * (gsize)height * 4;
    guchar *argb = g_malloc(size);
    for (int y = 0; y < height; y++)
      for (int x = 0; x < width; x++) {
        const guchar *rgba = pixels + (gsize)y * (gsize)stride + (gsize)x * 4;
        guchar *out = argb + ((gsize)y * (gsize)width + (gsize)x) * 4;
        out[0] = rgba[3], out[1] = rgba[0], out[2] = rgba[1], out[3] = rgba[2];
      }
    g_variant_builder_add(&builder, "(ii@ay)", width, height,
                          g_variant_new_from_data(G_VARIANT_TYPE("ay"), argb, size, TRUE, g_free,
                                                  argb));
  }
  return g_variant_builder_end(&builder);
}

static GVariant *item_get_property(GDBusConnection *connection, const char *sender,
                                   const char *path, const char *interface, const char *name,
                                   GError **error, gpointer data)
{
  (void)connection, (void)sender, (void)path, (void)interface;
  kcps_tray_sni_t *sni = data;
  if (strcmp(name, "Category") == 0)
    return g_variant_new_string("ApplicationStatus");
  if (strcmp(name, "Id") == 0)
    return g_variant_new_string("kcps-tray");
  if (strcmp(name, "Title") == 0)
    return g_variant_new_string(_("KCPS Printing"));
  if (strcmp(name, "Status") == 0)
    return g_variant_new_string(sni->status);
  if (strcmp(name, "WindowId") == 0)
    return g_variant_new_int32(0);
  if (strcmp(name, "IconName") == 0)
    return g_variant_new_string(sni->icon_name);
  if (strcmp(name, "IconThemePath") == 0)
    return g_variant_new_string(kcps_tray_icon_dir());
  if (strcmp(name, "IconPixmap") == 0) {
    if (sni->icon_pixmaps == NULL)
      sni->icon_pixmaps = g_variant_ref_sink(icon_pixmaps(sni->icon_name));
    return g_variant_ref(sni->icon_pixmaps);
  }
  if (strcmp(name, "AttentionIconName") == 0)
    return g_variant_new_string("kcps-tray-error");
  if (strcmp(name, "OverlayIconName") == 0 || strcmp(name, "AttentionMovieName") == 0)
    return g_variant_new_string("");
  if (g_str_has_suffix(name, "Pixmap"))
    return empty_pixmaps();
  if (strcmp(name, "ToolTip") == 0)
    return g_variant_new("(s@a(iiay)ss)", sni->icon_name, empty_pixmaps(), _("KCPS Printing"),
                         sni->tooltip);
  if (strcmp(name, "ItemIsMenu") == 0)
    return g_variant_new_boolean(FALSE);
  if (strcmp(name, "Menu") == 0)
    return g_variant_new_object_path(MENU_PATH);
  g_set_error(error, G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_PROPERTY, "no property %s", name);
  return NULL;
}

static void item_method_call(GDBusConnection *connection, const char *sender, const char *path,
                             const char *interface, const char *method, GVariant *params,
                             GDBusMethodInvocation *invocation, gpointer data)
{
  (void)connection, (void)sender, (void)path, (void)interface, (void)params;
  kcps_tray_sni_t *sni = data;
  if (strcmp(method, "Activate") == 0 || strcmp(method, "SecondaryActivate") == 0) {
    if (sni->callbacks.activate != NULL)
      sni->callbacks.activate(sni->data);
  } else if (strcmp(method, "ContextMenu") == 0) {
    /* We export a menu; hosts show it themselves. */
  }
  g_dbus_method_invocation_return_value(invocation, NULL);
}

/* --- the menu -------------------------------------------------------------- */

static bool wants(const char *const *names, const char *name)
{
  return names == NULL || names[0] == NULL || g_strv_contains(names, name);
}

/* The label of an item with its mnemonic underscores (dbusmenu uses them too). */
static const char *item_label(kcps_tray_sni_t *sni, size_t index)
{
  if (menu_items[index].id == MENU_WHO)
    return sni->who_line;
  if (menu_items[index].id == MENU_QUOTA)
    return sni->quota_line;
  return _(menu_items[index].label);
}

static bool item_visible(kcps_tray_sni_t *sni, int id)
{
  if (id == MENU_LOGIN)
    return !sni->logged_in;
  if (id == MENU_LOGOUT)
    return sni->logged_in;
  if (id == MENU_QUOTA)
    return *sni->quota_line != '\0';
  return true;
}

/* The properties of item index (into menu_items), filtered by names. */
static GVariant *item_properties(kcps_tray_sni_t *sni, size_t index, const char *const *names)
{
  GVariantBuilder props;
  g_variant_builder_init(&props, G_VARIANT_TYPE("a{sv}"));
  int id = menu_items[index].id;
  bool info = id == MENU_WHO || id == MENU_QUOTA; /* lines to read, not to click */
  bool separator = menu_items[index].label == NULL && !info;
  if (separator) {
    if (wants(names, "type"))
      g_variant_builder_add(&props, "{sv}", "type", g_variant_new_string("separator"));
  } else {
    if (wants(names, "label"))
      g_variant_builder_add(&props, "{sv}", "label",
                            g_variant_new_string(item_label(sni, index)));
    if (info && wants(names, "enabled"))
      g_variant_builder_add(&props, "{sv}", "enabled", g_variant_new_boolean(FALSE));
    if (wants(names, "visible"))
      g_variant_builder_add(&props, "{sv}", "visible",
                            g_variant_new_boolean(item_visible(sni, id)));
  }
  return g_variant_builder_end(&props);
}

static int index_of(int id)
{
  for (size_t i = 0; i < G_N_ELEMENTS(menu_items); i++)
    if (menu_items[i].id == id)
      return (int)i;
  return -1;
}

static GVariant *layout(kcps_tray_sni_t *sni, int parent, int depth, const char *const *names)
{
  GVariantBuilder children;
  g_variant_builder_init(&children, G_VARIANT_TYPE("av"));
  if (parent != MENU_ROOT) {
    int index = index_of(parent);
    return g_variant_new("(i@a{sv}@av)", parent, item_properties(sni, (size_t)index, names),
                         g_variant_builder_end(&children));
  }
  if (depth != 0) {
    for (size_t i = 0; i < G_N_ELEMENTS(menu_items); i++) {
      GVariant *child = g_variant_new("(i@a{sv}@av)", menu_items[i].id,
                                      item_properties(sni, i, names),
                                      g_variant_new_array(G_VARIANT_TYPE_VARIANT, NULL, 0));
      g_variant_builder_add(&children, "v", child);
    }
  }
  GVariantBuilder root;
  g_variant_builder_init(&root, G_VARIANT_TYPE("a{sv}"));
  g_variant_builder_add(&root, "{sv}", "children-display", g_variant_new_string("submenu"));
  return g_variant_new("(i@a{sv}@av)", MENU_ROOT, g_variant_builder_end(&root),
                       g_variant_builder_end(&children));
}

static void menu_event(kcps_tray_sni_t *sni, int id, const char *event)
{
  if (strcmp(event, "clicked") != 0)
    return;
  int index = index_of(id);
  if (index < 0 || menu_items[index].action == NULL || !item_visible(sni, id))
    return;
  if (sni->callbacks.menu_action != NULL)
    sni->callbacks.menu_action(menu_items[index].action, sni->data);
}

static void menu_opening(kcps_tray_sni_t *sni)
{
  if (sni->callbacks.menu_opening != NULL)
    sni->callbacks.menu_opening(sni->data);
}

static void menu_method_call(GDBusConnection *connection, const char *sender, const char *path,
                             const char *interface, const char *method, GVariant *params,
                             GDBusMethodInvocation *invocation, gpointer data)
{
  (void)connection, (void)sender, (void)path, (void)interface;
  kcps_tray_sni_t *sni = data;

  if (strcmp(method, "GetLayout") == 0) {
    gint32 parent = 0, depth = 0;
    g_autofree const char **names = NULL;
    g_variant_get(params, "(ii^a&s)", &parent, &depth, &names);
    if (parent != MENU_ROOT && index_of(parent) < 0) {
      g_dbus_method_invocation_return_error(invocation, G_DBUS_ERROR, G_DBUS_ERROR_INVALID_ARGS,
                                            "no menu item %d", parent);
      return;
    }
    g_dbus_method_invocation_return_value(
      invocation, g_variant_new("(u@(ia{sv}av))", sni->revision, layout(sni, parent, depth, names)));
  } else if (strcmp(method, "GetGroupProperties") == 0) {
    g_autoptr(GVariantIter) ids = NULL;
    g_autofree const char **names = NULL;
    g_variant_get(params, "(ai^a&s)", &ids, &names);
    GVariantBuilder out;
    g_variant_builder_init(&out, G_VARIANT_TYPE("a(ia{sv})"));
    gint32 id = 0;
    while (g_variant_iter_next(ids, "i", &id)) {
      int index = index_of(id);
      if (index >= 0)
        g_variant_builder_add(&out, "(i@a{sv})", id, item_properties(sni, (size_t)index, names));
    }
    g_dbus_method_invocation_return_value(invocation, g_variant_new("(@a(ia{sv}))",
                                                                    g_variant_builder_end(&out)));
  } else if (strcmp(method, "GetProperty") == 0) {
    gint32 id = 0;
    const char *name = NULL;
    g_variant_get(params, "(i&s)", &id, &name);
    int index = index_of(id);
    const char *names[] = {name, NULL};
    g_autoptr(GVariant) props = index >= 0 ? item_properties(sni, (size_t)index, names) : NULL;
    g_autoptr(GVariant) value = props != NULL ? g_variant_lookup_value(props, name, NULL) : NULL;
    if (value == NULL) {
      g_dbus_method_invocation_return_error(invocation, G_DBUS_ERROR, G_DBUS_ERROR_INVALID_ARGS,
                                            "no property %s on item %d", name, id);
      return;
    }
    g_dbus_method_invocation_return_value(invocation, g_variant_new("(v)", value));
  } else if (strcmp(method, "Event") == 0) {
    gint32 id = 0;
    const char *event = NULL;
    g_variant_get(params, "(i&svu)", &id, &event, NULL, NULL);
    /* Answer first: the action may open a window or quit. */
    g_dbus_method_invocation_return_value(invocation, NULL);
    if (id == MENU_ROOT && strcmp(event, "opened") == 0)
      menu_opening(sni);
    else
      menu_event(sni, id, event);
  } else if (strcmp(method, "EventGroup") == 0) {
    g_autoptr(GVariantIter) events = NULL;
    g_variant_get(params, "(a(isvu))", &events);
    GVariantBuilder errors;
    g_variant_builder_init(&errors, G_VARIANT_TYPE("ai"));
    g_autoptr(GPtrArray) todo = g_ptr_array_new_with_free_func(g_free);
    gint32 id = 0;
    const char *event = NULL;
    while (g_variant_iter_next(events, "(i&svu)", &id, &event, NULL, NULL)) {
      if (id != MENU_ROOT && index_of(id) < 0)
        g_variant_builder_add(&errors, "i", id);
      else
        g_ptr_array_add(todo, g_strdup_printf("%d %s", id, event));
    }
    g_dbus_method_invocation_return_value(invocation,
                                          g_variant_new("(@ai)", g_variant_builder_end(&errors)));
    for (guint i = 0; i < todo->len; i++) {
      char *space = NULL;
      int item = (int)g_ascii_strtoll(g_ptr_array_index(todo, i), &space, 10);
      menu_event(sni, item, space + 1);
    }
  } else if (strcmp(method, "AboutToShow") == 0) {
    menu_opening(sni);
    /* The layout changes come as LayoutUpdated once kcpsd has answered. */
    g_dbus_method_invocation_return_value(invocation, g_variant_new("(b)", FALSE));
  } else if (strcmp(method, "AboutToShowGroup") == 0) {
    menu_opening(sni);
    g_dbus_method_invocation_return_value(
      invocation, g_variant_new("(@ai@ai)", g_variant_new_array(G_VARIANT_TYPE_INT32, NULL, 0),
                                g_variant_new_array(G_VARIANT_TYPE_INT32, NULL, 0)));
  } else {
    g_dbus_method_invocation_return_error(invocation, G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_METHOD,
                                          "no method %s", method);
  }
}

static GVariant *menu_get_property(GDBusConnection *connection, const char *sender,
                                   const char *path, const char *interface, const char *name,
                                   GError **error, gpointer data)
{
  (void)connection, (void)sender, (void)path, (void)interface, (void)data;
  if (strcmp(name, "Version") == 0)
    return g_variant_new_uint32(3);
  if (strcmp(name, "TextDirection") == 0)
    return g_variant_new_string(gtk_widget_get_default_direction() == GTK_TEXT_DIR_RTL ? "rtl" : "ltr");
  if (strcmp(name, "Status") == 0)
    return g_variant_new_string("normal");
  if (strcmp(name, "IconThemePath") == 0)
    return g_variant_new_strv(NULL, 0);
  g_set_error(error, G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_PROPERTY, "no property %s", name);
  return NULL;
}

/* --- the watcher ----------------------------------------------------------- */

static void set_host(kcps_tray_sni_t *sni, bool has_host)
{
  if (sni->host_known && sni->has_host == has_host)
    return;
  sni->host_known = true;
  sni->has_host = has_host;
  if (sni->callbacks.host_changed != NULL)
    sni->callbacks.host_changed(has_host, sni->data);
}

static void registered(GObject *source, GAsyncResult *result, gpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), result,
                                                            &error);
  if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;
  kcps_tray_sni_t *sni = data;
  if (reply == NULL) {
    g_warning("the tray host refused the icon: %s", error->message);
    set_host(sni, false);
    return;
  }
  g_info("icon registered with %s", WATCHER_NAME);
  set_host(sni, true);
}

static void watcher_appeared(GDBusConnection *connection, const char *name, const char *owner,
                             gpointer data)
{
  (void)name, (void)owner;
  kcps_tray_sni_t *sni = data;
  g_dbus_connection_call(connection, WATCHER_NAME, WATCHER_PATH, WATCHER_NAME,
                         "RegisterStatusNotifierItem", g_variant_new("(s)", sni->bus_name), NULL,
                         G_DBUS_CALL_FLAGS_NONE, -1, sni->cancellable, registered, sni);
}

static void watcher_vanished(GDBusConnection *connection, const char *name, gpointer data)
{
  (void)connection, (void)name;
  set_host(data, false);
}

/* --- life ------------------------------------------------------------------ */

kcps_tray_sni_t *kcps_tray_sni_new(GDBusConnection *connection,
                                   const kcps_tray_sni_callbacks_t *callbacks, void *data,
                                   GError **error)
{
  kcps_tray_sni_t *sni = g_new0(kcps_tray_sni_t, 1);
  sni->connection = g_object_ref(connection);
  sni->callbacks = *callbacks;
  sni->data = data;
  sni->cancellable = g_cancellable_new();
  sni->icon_name = g_strdup("kcps-tray-logged-out");
  sni->status = g_strdup("Active");
  sni->tooltip = g_strdup("");
  sni->who_line = g_strdup("");
  sni->quota_line = g_strdup("");
  sni->revision = 1;
  sni->item_info = g_dbus_node_info_new_for_xml(item_xml, error);
  sni->menu_info = sni->item_info != NULL ? g_dbus_node_info_new_for_xml(menu_xml, error) : NULL;
  if (sni->menu_info == NULL) {
    kcps_tray_sni_free(sni);
    return NULL;
  }
  static const GDBusInterfaceVTable item_vtable = {item_method_call, item_get_property, NULL, {0}};
  static const GDBusInterfaceVTable menu_vtable = {menu_method_call, menu_get_property, NULL, {0}};
  sni->item_registration = g_dbus_connection_register_object(
    connection, ITEM_PATH, sni->item_info->interfaces[0], &item_vtable, sni, NULL, error);
  if (sni->item_registration == 0) {
    kcps_tray_sni_free(sni);
    return NULL;
  }
  sni->menu_registration = g_dbus_connection_register_object(
    connection, MENU_PATH, sni->menu_info->interfaces[0], &menu_vtable, sni, NULL, error);
  if (sni->menu_registration == 0) {
    kcps_tray_sni_free(sni);
    return NULL;
  }
  /* The name the specification asks for; the watcher learns it on register. */
  sni->bus_name = g_strdup_printf("org.kde.StatusNotifierItem-%d-1", (int)getpid());
  sni->name_owner = g_bus_own_name_on_connection(connection, sni->bus_name,
                                                 G_BUS_NAME_OWNER_FLAGS_NONE, NULL, NULL, NULL,
                                                 NULL);
  sni->watcher_watch = g_bus_watch_name_on_connection(connection, WATCHER_NAME,
                                                      G_BUS_NAME_WATCHER_FLAGS_NONE,
                                                      watcher_appeared, watcher_vanished, sni,
                                                      NULL);
  return sni;
}

void kcps_tray_sni_free(kcps_tray_sni_t *sni)
{
  if (sni == NULL)
    return;
  g_cancellable_cancel(sni->cancellable);
  if (sni->watcher_watch != 0)
    g_bus_unwatch_name(sni->watcher_watch);
  if (sni->name_owner != 0)
    g_bus_unown_name(sni->name_owner);
  if (sni->item_registration != 0)
    g_dbus_connection_unregister_object(sni->connection, sni->item_registration);
  if (sni->menu_registration != 0)
    g_dbus_connection_unregister_object(sni->connection, sni->menu_registration);
  g_clear_pointer(&sni->item_info, g_dbus_node_info_unref);
  g_clear_pointer(&sni->menu_info, g_dbus_node_info_unref);
  g_clear_object(&sni->cancellable);
  g_clear_object(&sni->connection);
  g_free(sni->bus_name);
  g_free(sni->icon_name);
  g_clear_pointer(&sni->icon_pixmaps, g_variant_unref);
  g_free(sni->status);
  g_free(sni->tooltip);
  g_free(sni->who_line);
  g_free(sni->quota_line);
  g_free(sni);
}

/* Replaces *field with value; true when it changed. */
static bool replace(char **field, const char *value)
{
  if (g_strcmp0(*field, value) == 0)
    return false;
  g_free(*field);
  *field = g_strdup(value);
  return true;
}

static void emit(kcps_tray_sni_t *sni, const char *path, const char *interface,
                 const char *signal, GVariant *params)
{
  g_dbus_connection_emit_signal(sni->connection, NULL, path, interface, signal, params, NULL);
}

void kcps_tray_sni_update(kcps_tray_sni_t *sni, const char *icon_name, const char *status,
                          const char *tooltip, const char *who_line, const char *quota_line,
                          bool logged_in)
{
  static const char item_iface[] = "org.kde.StatusNotifierItem";
  if (replace(&sni->icon_name, icon_name)) {
    g_clear_pointer(&sni->icon_pixmaps, g_variant_unref);
    emit(sni, ITEM_PATH, item_iface, "NewIcon", NULL);
  }
  if (replace(&sni->status, status))
    emit(sni, ITEM_PATH, item_iface, "NewStatus", g_variant_new("(s)", status));
  if (replace(&sni->tooltip, tooltip))
    emit(sni, ITEM_PATH, item_iface, "NewToolTip", NULL);
  bool menu_changed = replace(&sni->who_line, who_line);
  menu_changed |= replace(&sni->quota_line, quota_line != NULL ? quota_line : "");
  if (sni->logged_in != logged_in) {
    sni->logged_in = logged_in;
    menu_changed = true;
  }
  if (menu_changed) {
    sni->revision++;
    emit(sni, MENU_PATH, "com.canonical.dbusmenu", "LayoutUpdated",
         g_variant_new("(ui)", sni->revision, MENU_ROOT));
  }
}

bool kcps_tray_sni_has_host(const kcps_tray_sni_t *sni)
{
  return sni != NULL && sni->has_host;
}
