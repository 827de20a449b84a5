/* The tray's side of the session (tray-session.c): the refresh token in the
 * user's keyring (client/keyring.h, the item the CLI uses too), the email
 * code step of a login, and resuming the session when kcpsd has none. */
#pragma once

#include "ui/tray-app-private.h"

G_BEGIN_DECLS

/* kcpsd answered a login (POST /v1/login or /v1/login/mfa) with reply:
 * keeps the refresh token in the keyring, or, when the organization asks
 * for the mailed code, starts the code step. true when the code step is
 * now what the login window shows. */
bool kcps__tray_session_login_reply(KcpsTrayApp *app, long status, JsonNode *body);
/* The message for a refused login when it was an SSO sign-in's, else
 * NULL (kcps_tray_login_message's then). */
const char *kcps__tray_session_failure(KcpsTrayApp *app, long status);
/* The code step under way (the login window shows the code field). */
bool kcps__tray_session_code_pending(KcpsTrayApp *app);
/* Sends the code the user typed (POST /v1/login/mfa); the answer is
 * handled as a login's. */
void kcps__tray_session_send_code(KcpsTrayApp *app, const char *code);
/* POSTs body to path as a login (tray-app.c: busy, then the answer through
 * kcps__tray_session_login_reply). */
void kcps__tray_login_post(KcpsTrayApp *app, const char *path, JsonNode *body);
/* Single sign-on: listens on 127.0.0.1 (a free port), opens the browser at
 * the server's /api/v1/sso/{org}/start with PKCE S256 and that loopback
 * redirect, and posts the one-time code it brings to /v1/login/sso. */
void kcps__tray_session_sso(KcpsTrayApp *app, const char *org, const char *login_hint);
/* "Sign in with Microsoft" (wanted "entra"), "… Google" ("google") or any
 * single sign-on (NULL): asks kcpsd which organization signs in users of
 * the email's domain (GET /v1/sso); when its provider fits, starts the
 * sign-in above with the email as login_hint, else the login window says
 * which button fits or that the domain has none. */
void kcps__tray_session_sso_with(KcpsTrayApp *app, const char *wanted, const char *email);
/* Stops waiting for the browser (the login window closed). */
void kcps__tray_session_sso_stop(KcpsTrayApp *app);
/* Back to the email and password (Cancel on the code step). */
void kcps__tray_session_cancel_code(KcpsTrayApp *app);
/* After each status: kcpsd has no session for us but the keyring keeps one
 * for its server: POST /v1/session with it (once at a time) and keep the
 * rotated token; a refused one is deleted. */
void kcps__tray_session_status(KcpsTrayApp *app);
/* The user logged out (or the tray did, idle): the keyring item goes. */
void kcps__tray_session_forget(KcpsTrayApp *app);

/* Automatic logout: the user did something in the tray (any window input,
 * the menu); the organization's limit (from the last login answer, 0 when
 * not known) and the user's own setting (0: the organization's), changed in
 * the settings window (kept in tray.ini). */
void kcps__tray_session_activity(KcpsTrayApp *app);
guint kcps__tray_session_idle_org(KcpsTrayApp *app);
guint kcps__tray_session_idle_user(KcpsTrayApp *app);
void kcps__tray_session_idle_changed(KcpsTrayApp *app, GtkSpinButton *spin);
/* Test hooks (with --test-dir): "idle-seconds" (u). Once at startup. */
void kcps__tray_session_startup(KcpsTrayApp *app);

G_END_DECLS
