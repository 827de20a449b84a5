/* The login window. */
#define G_LOG_DOMAIN "kcps-tray"

#include "ui/tray-app-private.h"

#include <glib/gi18n-lib.h>
#include <string.h>

#include "ui/tray-session.h"

typedef struct login_ui_s {
  GtkWidget *email;
  GtkWidget *password;
  GtkWidget *credentials; /* the email and password rows */
  GtkWidget *code_row;    /* the mailed code's label and field */
  GtkWidget *code;
  GtkWidget *back;
  GtkWidget *sso_box; /* the single sign-on buttons */
  GtkWidget *microsoft;
  GtkWidget *google;
  GtkWidget *sso_other;
  GtkWidget *message;
  GtkWidget *submit;
  GtkWidget *spinner;
} login_ui_t;

/* --- login --------------------------------------------------------------- */

static void login_submit(GtkButton *button, gpointer data)
{
  (void)button;
  KcpsTrayApp *app = data;
  login_ui_t *ui = g_object_get_data(G_OBJECT(app->login_window), "ui");
  if (kcps__tray_session_code_pending(app)) {
    g_autofree char *code = g_strstrip(g_strdup(gtk_editable_get_text(GTK_EDITABLE(ui->code))));
    kcps__tray_session_send_code(app, code);
    gtk_editable_set_text(GTK_EDITABLE(ui->code), "");
    return;
  }
  g_autofree char *email = g_strstrip(g_strdup(gtk_editable_get_text(GTK_EDITABLE(ui->email))));
  /* The password leaves the field for the call only. */
  kcps__tray_login(app, email, gtk_editable_get_text(GTK_EDITABLE(ui->password)));
  gtk_editable_set_text(GTK_EDITABLE(ui->password), "");
}

/* Sign in with the organization's identity provider, in the browser: the
 * organization is found by the email's domain; the button says which
 * provider the user expects ("kcps-preset": "entra", "google", none). */
static void login_sso(GtkButton *button, gpointer data)
{
  KcpsTrayApp *app = data;
  login_ui_t *ui = g_object_get_data(G_OBJECT(app->login_window), "ui");
  g_autofree char *email = g_strstrip(g_strdup(gtk_editable_get_text(GTK_EDITABLE(ui->email))));
  kcps__tray_session_sso_with(app, g_object_get_data(G_OBJECT(button), "kcps-preset"), email);
}

static GtkWidget *sso_button(KcpsTrayApp *app, const char *mnemonic, const char *preset,
                             const char *tooltip)
{
  GtkWidget *button = kcps__tray_mnemonic_button(mnemonic);
  g_object_set_data(G_OBJECT(button), "kcps-preset", (gpointer)preset);
  gtk_widget_set_tooltip_text(button, tooltip);
  g_signal_connect(button, "clicked", G_CALLBACK(login_sso), app);
  return button;
}

/* Back from the code step to the email and password. */
static void login_back(GtkButton *button, gpointer data)
{
  (void)button;
  KcpsTrayApp *app = data;
  kcps__tray_session_cancel_code(app);
  g_clear_pointer(&app->login_message, g_free);
  kcps__tray_state_changed(app);
}

GtkWindow *kcps__tray_login_window(KcpsTrayApp *app)
{
  if (app->login_window != NULL)
    return app->login_window;
  GtkWindow *window = kcps__tray_new_window(app, "login", _("Log in to KCPS"));
  gtk_window_set_resizable(window, FALSE);
  login_ui_t *ui = g_new0(login_ui_t, 1);
  g_object_set_data_full(G_OBJECT(window), "ui", ui, g_free);

  GtkWidget *box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 6);
  gtk_widget_set_margin_start(box, 24);
  gtk_widget_set_margin_end(box, 24);
  gtk_widget_set_margin_top(box, 24);
  gtk_widget_set_margin_bottom(box, 24);
  gtk_widget_set_size_request(box, 360, -1);
  GtkWidget *heading = gtk_label_new(_("Log in with your KCPS account"));
  gtk_widget_add_css_class(heading, "title-4");
  gtk_label_set_xalign(GTK_LABEL(heading), 0);
  gtk_box_append(GTK_BOX(box), heading);

  ui->credentials = gtk_box_new(GTK_ORIENTATION_VERTICAL, 6);
  ui->email = gtk_entry_new();
  gtk_entry_set_input_purpose(GTK_ENTRY(ui->email), GTK_INPUT_PURPOSE_EMAIL);
  gtk_entry_set_activates_default(GTK_ENTRY(ui->email), TRUE);
  gtk_box_append(GTK_BOX(ui->credentials),
                 kcps__tray_label_for(_("_Email address"), ui->email));
  gtk_box_append(GTK_BOX(ui->credentials), ui->email);
  ui->password = gtk_password_entry_new();
  gtk_password_entry_set_show_peek_icon(GTK_PASSWORD_ENTRY(ui->password), TRUE);
  g_object_set(ui->password, "activates-default", TRUE, NULL);
  gtk_box_append(GTK_BOX(ui->credentials), kcps__tray_label_for(_("_Password"), ui->password));
  gtk_box_append(GTK_BOX(ui->credentials), ui->password);
  gtk_box_append(GTK_BOX(box), ui->credentials);

  /* The code step (email MFA): shown instead of the password. */
  ui->code_row = gtk_box_new(GTK_ORIENTATION_VERTICAL, 6);
  ui->code = gtk_entry_new();
  gtk_entry_set_input_purpose(GTK_ENTRY(ui->code), GTK_INPUT_PURPOSE_DIGITS);
  gtk_entry_set_max_length(GTK_ENTRY(ui->code), 6);
  gtk_entry_set_activates_default(GTK_ENTRY(ui->code), TRUE);
  gtk_box_append(GTK_BOX(ui->code_row), kcps__tray_label_for(_("_Code from the email"), ui->code));
  gtk_box_append(GTK_BOX(ui->code_row), ui->code);
  gtk_widget_set_visible(ui->code_row, FALSE);
  gtk_box_append(GTK_BOX(box), ui->code_row);

  /* Or: the organization's own sign-in, found by the email's domain. */
  ui->sso_box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 6);
  gtk_widget_set_margin_top(ui->sso_box, 12);
  gtk_box_append(GTK_BOX(ui->sso_box), gtk_separator_new(GTK_ORIENTATION_HORIZONTAL));
  GtkWidget *or_label = gtk_label_new(_("Or use your work account (type its email above):"));
  gtk_label_set_xalign(GTK_LABEL(or_label), 0);
  gtk_label_set_wrap(GTK_LABEL(or_label), TRUE);
  gtk_widget_add_css_class(or_label, "dim-label");
  gtk_box_append(GTK_BOX(ui->sso_box), or_label);
  GtkWidget *providers = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 6);
  gtk_box_set_homogeneous(GTK_BOX(providers), TRUE);
  ui->microsoft = sso_button(app, _("Sign in with _Microsoft"), "entra",
                             _("Opens your web browser at your organization's Microsoft "
                               "sign-in page"));
  gtk_box_append(GTK_BOX(providers), ui->microsoft);
  ui->google = sso_button(app, _("Sign in with _Google"), "google",
                          _("Opens your web browser at your organization's Google sign-in "
                            "page"));
  gtk_box_append(GTK_BOX(providers), ui->google);
  gtk_box_append(GTK_BOX(ui->sso_box), providers);
  ui->sso_other = sso_button(app, _("Other _single sign-on"), NULL,
                             _("Opens your web browser at your organization's own sign-in "
                               "page"));
  gtk_widget_add_css_class(ui->sso_other, "flat");
  gtk_widget_set_halign(ui->sso_other, GTK_ALIGN_START);
  gtk_box_append(GTK_BOX(ui->sso_box), ui->sso_other);
  gtk_box_append(GTK_BOX(box), ui->sso_box);

  ui->message = gtk_label_new(NULL);
  gtk_label_set_wrap(GTK_LABEL(ui->message), TRUE);
  gtk_label_set_max_width_chars(GTK_LABEL(ui->message), 40);
  gtk_label_set_xalign(GTK_LABEL(ui->message), 0);
  gtk_widget_add_css_class(ui->message, "error");
  gtk_accessible_update_relation(GTK_ACCESSIBLE(ui->password),
                                 GTK_ACCESSIBLE_RELATION_DESCRIBED_BY, ui->message, NULL, -1);
  gtk_box_append(GTK_BOX(box), ui->message);

  GtkWidget *buttons = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 6);
  gtk_widget_set_halign(buttons, GTK_ALIGN_END);
  gtk_widget_set_margin_top(buttons, 12);
  ui->spinner = gtk_spinner_new();
  kcps__tray_set_label(ui->spinner, _("Logging in"));
  gtk_box_append(GTK_BOX(buttons), ui->spinner);
  ui->back = kcps__tray_mnemonic_button(_("_Back"));
  g_signal_connect(ui->back, "clicked", G_CALLBACK(login_back), app);
  gtk_widget_set_visible(ui->back, FALSE);
  gtk_box_append(GTK_BOX(buttons), ui->back);
  GtkWidget *cancel = kcps__tray_mnemonic_button(_("_Cancel"));
  gtk_actionable_set_action_name(GTK_ACTIONABLE(cancel), "window.close");
  gtk_box_append(GTK_BOX(buttons), cancel);
  ui->submit = kcps__tray_mnemonic_button(_("_Log in"));
  gtk_widget_add_css_class(ui->submit, "suggested-action");
  g_signal_connect(ui->submit, "clicked", G_CALLBACK(login_submit), app);
  gtk_box_append(GTK_BOX(buttons), ui->submit);
  gtk_box_append(GTK_BOX(box), buttons);
  gtk_window_set_child(window, box);
  gtk_window_set_default_widget(window, ui->submit);
  /* The address of the last login on this computer, to start with. */
  g_autofree char *last = kcps_tray_ini_get("last_email");
  if (last != NULL && g_utf8_validate(last, -1, NULL) && strlen(last) <= 254) {
    gtk_editable_set_text(GTK_EDITABLE(ui->email), last);
    gtk_window_set_focus(window, ui->password);
  } else {
    gtk_window_set_focus(window, ui->email);
  }

  app->login_window = window;
  kcps__tray_windows_update(app);
  return window;
}

const char *kcps__tray_login_email_field(KcpsTrayApp *app)
{
  if (app->login_window == NULL)
    return "";
  login_ui_t *ui = g_object_get_data(G_OBJECT(app->login_window), "ui");
  return gtk_editable_get_text(GTK_EDITABLE(ui->email));
}

void kcps__tray_login_update(KcpsTrayApp *app)
{
  if (app->login_window == NULL)
    return;
  login_ui_t *ui = g_object_get_data(G_OBJECT(app->login_window), "ui");
  const char *message = app->login_message != NULL ? app->login_message : "";
  gtk_label_set_text(GTK_LABEL(ui->message), message);
  gtk_widget_set_visible(ui->message, *message != '\0');
  bool code_step = kcps__tray_session_code_pending(app);
  bool was_code_step = gtk_widget_get_visible(ui->code_row);
  gtk_widget_set_visible(ui->credentials, !code_step);
  gtk_widget_set_visible(ui->code_row, code_step);
  gtk_widget_set_visible(ui->back, code_step);
  gtk_widget_set_visible(ui->sso_box, !code_step);
  gtk_widget_set_sensitive(ui->sso_box, !app->login_busy);
  if (code_step && !was_code_step)
    gtk_window_set_focus(app->login_window, ui->code);
  gtk_widget_set_sensitive(ui->email, !app->login_busy);
  gtk_widget_set_sensitive(ui->password, !app->login_busy);
  gtk_widget_set_sensitive(ui->code, !app->login_busy);
  gtk_widget_set_sensitive(ui->back, !app->login_busy);
  gtk_widget_set_sensitive(ui->submit, !app->login_busy);
  gtk_spinner_set_spinning(GTK_SPINNER(ui->spinner), app->login_busy);
  gtk_widget_set_visible(ui->spinner, app->login_busy);
}

void kcps__tray_login_window_submit(KcpsTrayApp *app, const char *email, const char *password)
{
  login_ui_t *ui = g_object_get_data(G_OBJECT(kcps__tray_login_window(app)), "ui");
  if (g_str_has_prefix(email, "sso:")) {
    /* SSO: the test gives "sso:microsoft:EMAIL", "sso:google:EMAIL" or
     * "sso:other:EMAIL" (the button and what is in the email field). */
    const char *rest = email + 4;
    GtkWidget *button = g_str_has_prefix(rest, "microsoft:") ? ui->microsoft
                        : g_str_has_prefix(rest, "google:")  ? ui->google
                                                             : ui->sso_other;
    const char *colon = strchr(rest, ':');
    gtk_editable_set_text(GTK_EDITABLE(ui->email), colon != NULL ? colon + 1 : "");
    gtk_widget_activate(button);
    return;
  }
  if (kcps__tray_session_code_pending(app)) {
    /* The code step: the test types the code as the "password". */
    gtk_editable_set_text(GTK_EDITABLE(ui->code), password);
    gtk_widget_activate(ui->submit);
    return;
  }
  gtk_editable_set_text(GTK_EDITABLE(ui->email), email);
  gtk_editable_set_text(GTK_EDITABLE(ui->password), password);
  gtk_widget_activate(ui->submit);
}
