#!/bin/bash
# Integration test of sessions and secrets (issue 6): the desktop login of
# kcpsd (1 h access token in kcpsd's memory, rotating refresh token handed
# to the caller) and the CLI's keyring item (libsecret, schema
# org.kcps.Session, attributes server + email), with a private session D-Bus,
# gnome-keyring, kcps-server --demo (mail relay: tests/smtp/sink.py) and
# kcpsd --user on free loopback ports:
#  - kcps login stores the refresh token in the keyring (secret-tool finds
#    it); it is nowhere in clear: not in the keyring's files, kcpsd's spool,
#    state or log, the server's data or log;
#  - after a kcpsd restart kcps login --resume logs in again from the
#    keyring and stores the rotated token; the old one is refused by the
#    server (and, being reused, ends the login: --resume then says so and
#    deletes the item);
#  - kcps logout deletes the item and ends the login on the server (also
#    when kcpsd was restarted in between);
#  - without a session bus kcps login works and says no session is kept;
#  - the local routes refuse bad bodies (400), a bad refresh token (401
#    invalid_grant), and answer a wrong password and an unknown account alike;
#  - with email MFA on for the organization, kcps login asks for the code
#    mailed by the server (a real SMTP server) and stores the session after it;
#  - single sign-on through a real OpenID provider (tests/oidc, oidc-provider
#    on Node.js; its login form driven as a browser would): the server's
#    /start with a loopback redirect and PKCE S256, the one-time code to
#    kcpsd's POST /v1/login/sso, which answers a desktop refresh token (the
#    server's exchange gives one) and is logged in; the code works once.
# Usage: session.sh BUILD_DIR SOURCE_DIR. Exit 0 pass, 1 fail, 77 skipped.
set -u

if [ $# -ne 2 ]; then
  echo "usage: $0 BUILD_DIR SOURCE_DIR" >&2
  exit 1
fi
BUILD=$(realpath "$1")
SRC=$(realpath "$2")
. "$SRC/tests/integration/lib.sh"

SERVER_BIN=$BUILD/server-stub/kcps-server
KCPSD_BIN=$BUILD/client/kcpsd
KCPS_BIN=$BUILD/client/kcps
for bin in "$SERVER_BIN" "$KCPSD_BIN" "$KCPS_BIN"; do
  [ -x "$bin" ] || { echo "session: FAIL: $bin is not built" >&2; exit 1; }
done
for tool in curl jq sqlite3 openssl dbus-daemon gdbus gnome-keyring-daemon secret-tool; do
  command -v "$tool" >/dev/null || { echo "session: FAIL: $tool is not installed" >&2; exit 1; }
done
PYTHON=/usr/bin/python3
"$PYTHON" -c 'import aiosmtpd' 2>/dev/null ||
  { echo "session: FAIL: python3-aiosmtpd is not installed" >&2; exit 1; }

lib_test_begin session
lib_test_cleanup() { exec 7>&- 2>/dev/null; }

# A session bus and a keyring of our own, in private folders.
export HOME=$TMP/home XDG_RUNTIME_DIR=$TMP/run XDG_DATA_HOME=$TMP/home/.local/share
export XDG_CONFIG_HOME=$TMP/home/.config XDG_CACHE_HOME=$TMP/home/.cache XDG_STATE_HOME=$TMP/home/.local/state
mkdir -p "$HOME" "$XDG_RUNTIME_DIR"
chmod 0700 "$HOME" "$XDG_RUNTIME_DIR"
unset DISPLAY WAYLAND_DISPLAY GNOME_KEYRING_CONTROL SSH_AUTH_SOCK
dbus-daemon --session --fork --print-address=3 --print-pid=4 3>"$TMP/bus" 4>"$TMP/bus.pid" \
  2>"$TMP/dbus.log" || abort "dbus-daemon --session starts: $(cat "$TMP/dbus.log")"
lib_record dbus-session "$(head -n1 "$TMP/bus.pid")" "$TMP/dbus.log"
export DBUS_SESSION_BUS_ADDRESS=$(head -n1 "$TMP/bus")
wait_for 10 "the session bus" gdbus call --session -d org.freedesktop.DBus \
  -o /org/freedesktop/DBus -m org.freedesktop.DBus.GetId || abort "the session bus answers"
printf 'keyring-password' | gnome-keyring-daemon --daemonize --login >"$TMP/keyring.out" \
  2>"$TMP/keyring.log" || abort "gnome-keyring-daemon --login: $(cat "$TMP/keyring.log")"
eval "$(gnome-keyring-daemon --start --components=secrets 2>>"$TMP/keyring.log")"
secrets_pid() {
  gdbus call --session -d org.freedesktop.DBus -o /org/freedesktop/DBus \
    -m org.freedesktop.DBus.GetConnectionUnixProcessID org.freedesktop.secrets |
    sed -n 's/^(uint32 \([0-9][0-9]*\),)$/\1/p'
}
wait_for 10 "the Secret Service on the bus" test -n "$(secrets_pid)" || abort "gnome-keyring serves secrets"
lib_record gnome-keyring "$(secrets_pid)" "$TMP/keyring.log"
pass "a private session bus with gnome-keyring (pid $(secrets_pid))"

# The mail relay for the MFA part: it lives while fd 7 (its stdin) is open.
mkdir -p "$TMP/mail"
mkfifo "$TMP/sink.in"
"$PYTHON" "$SRC/tests/smtp/sink.py" --dir "$TMP/mail" <"$TMP/sink.in" >"$TMP/sink.log" 2>&1 &
lib_record smtp-sink $! "$TMP/sink.log"
exec 7>"$TMP/sink.in"
SMTP_PORT=$(wait_for_line 20 "$TMP/sink.log" '^ready [0-9]+' "$(lib_pid_of smtp-sink)" |
  awk '{print $2}') || abort "the SMTP sink is ready"

# The OpenID provider's CA and certificate (for 127.0.0.1).
(cd "$TMP" &&
  openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 \
    -subj /CN=kcps-test-oidc-ca -addext basicConstraints=critical,CA:true \
    -addext keyUsage=critical,keyCertSign 2>/dev/null &&
  openssl req -newkey rsa:2048 -nodes -keyout idp.key -out idp.csr -subj /CN=127.0.0.1 \
    2>/dev/null &&
  printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >ext.cnf &&
  openssl x509 -req -in idp.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
    -extfile ext.cnf -out idp.pem 2>/dev/null) || abort "openssl makes the provider's CA"

DATA=$TMP/server
mkdir -p "$DATA"
lib_start kcps-server "$TMP/kcps-server.log" "$SERVER_BIN" --demo --data "$DATA" \
  --listen 127.0.0.1:0 --smtp-url "smtp://127.0.0.1:$SMTP_PORT" --oidc-ca "$TMP/ca.pem"
line=$(wait_for_line 30 "$TMP/kcps-server.log" 'kcps-server: listening on https://' \
  "$LIB_PID") || abort "kcps-server prints its listening line"
SERVER=$(printf '%s\n' "$line" | grep -Eo 'https://[^ ]+' | head -n1)
SERVER=${SERVER%/}
ALICE_PASSWORD=$(demo_credential "$DATA" "alice@a.test password")
ADMIN_PASSWORD=$(demo_credential "$DATA" "admin@a.test password")
[ -n "$ALICE_PASSWORD" ] && [ -n "$ADMIN_PASSWORD" ] || abort "demo passwords"

start_kcpsd "$KCPSD_BIN" "$TMP/kcpsd" "$SERVER" "$DATA/server.crt" ||
  abort "kcpsd prints its ready line"
pass "kcps-server and kcpsd ready"

kcps() { "$KCPS_BIN" --port "$KCPSD_LOCAL_PORT" "$@"; }
api() { echo "http://127.0.0.1:$KCPSD_LOCAL_PORT$1"; }
logged_in() { curl -sS "$(api /v1/status)" | jq -r .logged_in; }
kept() { secret-tool lookup server "$SERVER" email alice@a.test 2>/dev/null; }
# refresh_status TOKEN: the server's HTTP status for POST /api/v1/token/refresh.
refresh_status() {
  jq -cn --arg t "$1" '{refresh_token: $t}' |
    curl -sS -o /dev/null -w '%{http_code}' --cacert "$DATA/server.crt" \
      -H 'Content-Type: application/json' --data-binary @- "$SERVER/api/v1/token/refresh"
}
restart_kcpsd() {
  stop_pid "$(lib_pid_of kcpsd | tail -n1)"
  start_kcpsd "$KCPSD_BIN" "$TMP/kcpsd" "$SERVER" "$DATA/server.crt"
}

# 1. Login: the refresh token goes to the keyring, nowhere else.
out=$(printf '%s\n' "$ALICE_PASSWORD" | kcps login alice@a.test 2>&1)
check_eq "kcps login: exit 0" "$?" 0
check_eq "kcps login says who" "$out" "Logged in as alice@a.test"
T1=$(kept)
if [ ${#T1} -ge 40 ]; then pass "secret-tool finds the item (server, email)"; else
  fail "no refresh token in the keyring: '${T1:0:4}...' (${#T1} chars)"; fi
check_eq "the item's schema" \
  "$(secret-tool search --all server "$SERVER" 2>&1 | sed -n 's/^schema = //p')" \
  org.kcps.Session
check_eq "kcpsd is logged in" "$(logged_in)" true
if [ -n "$T1" ] && grep -rqF -- "$T1" "$HOME" "$TMP/kcpsd" "$DATA" "$TMP"/*.log 2>/dev/null; then
  fail "the refresh token is in clear in: $(grep -rlF -- "$T1" "$HOME" "$TMP/kcpsd" "$DATA" "$TMP"/*.log)"
else
  pass "the refresh token is in no file in clear (keyring files, kcpsd, server)"
fi
[ -n "$(find "$XDG_DATA_HOME/keyrings" -type f 2>/dev/null)" ] &&
  pass "the keyring is on disk (encrypted)" || fail "no keyring files under $XDG_DATA_HOME"

# 2. A kcpsd restart forgets the session; --resume brings it back (rotated).
restart_kcpsd || abort "kcpsd restarts"
check_eq "after a restart kcpsd is logged out" "$(logged_in)" false
out=$(kcps login --resume 2>&1)
check_eq "kcps login --resume: exit 0" "$?" 0
check_eq "kcps login --resume says who" "$out" \
  "Logged in as alice@a.test (session resumed from the keyring)"
check_eq "kcpsd is logged in again" "$(logged_in)" true
T2=$(kept)
if [ ${#T2} -ge 40 ] && [ "$T2" != "$T1" ]; then pass "the keyring holds the rotated token"; else
  fail "the token was not rotated (${#T2} chars)"; fi
check_eq "kcps status after resume" "$(kcps status 2>&1 | grep -c alice@a.test)" 1

# 3. The old token is refused; as a copy, it ends the login (refresh family).
check_eq "the old refresh token is refused by the server" "$(refresh_status "$T1")" 401
out=$(kcps login --resume 2>&1)
check_eq "--resume after the login ended: exit 1" "$?" 1
case "$out" in *"has ended"*) pass "--resume says the session ended" ;;
  *) fail "--resume's message: $out" ;; esac
check_eq "the ended item is deleted" "$(kept)" ""
out=$(kcps login --resume 2>&1)
check_eq "--resume with no item: exit 1" "$?" 1

# 4. Logout deletes the item and ends the login on the server.
printf '%s\n' "$ALICE_PASSWORD" | kcps login alice@a.test >/dev/null 2>&1
T3=$(kept)
[ -n "$T3" ] || fail "login again: no item"
out=$(kcps logout 2>&1)
check_eq "kcps logout: exit 0" "$?" 0
check_eq "kcps logout deletes the item" "$(kept)" ""
check_eq "kcpsd is logged out" "$(logged_in)" false
check_eq "the logged-out login's refresh token is refused" "$(refresh_status "$T3")" 401

# ... also when kcpsd restarted in between (it holds nothing then).
printf '%s\n' "$ALICE_PASSWORD" | kcps login alice@a.test >/dev/null 2>&1
T4=$(kept)
restart_kcpsd || abort "kcpsd restarts"
kcps logout >/dev/null 2>&1
check_eq "logout after a restart: exit 0" "$?" 0
check_eq "logout after a restart deletes the item" "$(kept)" ""
check_eq "logout after a restart ends the login on the server" "$(refresh_status "$T4")" 401

# 5. No session bus: no keyring. The session is kept in a 0600 file
# instead, and every use of it says so.
nokeyring() {
  env -u DBUS_SESSION_BUS_ADDRESS XDG_RUNTIME_DIR="$TMP/none" "$KCPS_BIN" \
    --port "$KCPSD_LOCAL_PORT" "$@"
}
SESSION_FILE=$HOME/.local/state/kcps/session
out=$(printf '%s\n' "$ALICE_PASSWORD" | nokeyring login alice@a.test 2>&1)
check_eq "login without a keyring: exit 0" "$?" 0
case "$out" in *"no keyring"*"$SESSION_FILE"*"0600"*"not encrypted"*)
  pass "login without a keyring says where the session is kept" ;;
  *) fail "login without a keyring: $out" ;; esac
check_eq "nothing in the keyring" "$(kept)" ""
check_eq "the session file is 0600" "$(stat -c %a "$SESSION_FILE" 2>&1)" 600
check_eq "its folder is 0700" "$(stat -c %a "$(dirname "$SESSION_FILE")" 2>&1)" 700
F1=$(sed -n 's/^refresh_token=//p' "$SESSION_FILE")
[ ${#F1} -ge 40 ] && pass "the file holds the refresh token" || fail "no token in the file"
restart_kcpsd || abort "kcpsd restarts"
out=$(nokeyring login --resume 2>&1)
check_eq "login --resume from the file: exit 0" "$?" 0
case "$out" in *"no keyring"*) pass "resuming from the file says so" ;;
  *) fail "login --resume without a keyring: $out" ;; esac
check_eq "kcpsd is logged in again" "$(logged_in)" true
F2=$(sed -n 's/^refresh_token=//p' "$SESSION_FILE")
[ ${#F2} -ge 40 ] && [ "$F2" != "$F1" ] && pass "the file holds the rotated token" ||
  fail "the file's token was not rotated"
chmod 0644 "$SESSION_FILE"
out=$(nokeyring login --resume 2>&1)
[ $? -ne 0 ] && case "$out" in *"refusing"*"0600"*) true ;; *) false ;; esac &&
  pass "a session file others can read is refused: $out" ||
  fail "a 0644 session file was used: $out"
chmod 0600 "$SESSION_FILE"
nokeyring logout >/dev/null 2>&1
check_eq "logout without a keyring: exit 0" "$?" 0
[ ! -e "$SESSION_FILE" ] && pass "logout removes the session file" ||
  fail "the session file stays after logout: $(cat "$SESSION_FILE")"
check_eq "the file's last token is refused after logout" "$(refresh_status "$F2")" 401

# 6. The local routes' answers.
post() { curl -sS -o "$TMP/answer" -w '%{http_code}' -H 'Content-Type: application/json' \
  --data-binary "$2" "$(api "$1")"; }
check_eq "POST /v1/session {}: 400" "$(post /v1/session '{}')" 400
check_eq "POST /v1/session with an unknown field: 400" \
  "$(post /v1/session '{"refresh_token":"x","extra":1}')" 400
check_eq "POST /v1/session with a bad token: 401" \
  "$(post /v1/session '{"refresh_token":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}')" 401
check_eq "... invalid_grant" "$(jq -r .error "$TMP/answer")" invalid_grant
check_eq "POST /v1/login/mfa with an unknown token: 401" \
  "$(post /v1/login/mfa '{"mfa_token":"AAAAAAAAAAAAAAAAAAAAAA","code":"123456"}')" 401
check_eq "POST /v1/login/sso with an unknown code: 400" \
  "$(post /v1/login/sso '{"code":"nothing","code_verifier":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}')" 400
check_eq "a wrong password: 401" \
  "$(post /v1/login '{"email":"alice@a.test","password":"Wrong-passw0rd!"}')" 401
wrong=$(jq -c . "$TMP/answer")
check_eq "an unknown account: 401" \
  "$(post /v1/login '{"email":"nobody@a.test","password":"Wrong-passw0rd!"}')" 401
check_eq "the same answer for a wrong password and an unknown account" \
  "$(jq -c . "$TMP/answer")" "$wrong"

# 7. Email MFA: the code comes by mail (the sink), then the session is kept.
ADMIN_TOKEN=$(jq -cn --arg p "$ADMIN_PASSWORD" '{email: "admin@a.test", password: $p}' |
  curl -sS --cacert "$DATA/server.crt" -H 'Content-Type: application/json' \
    --data-binary @- "$SERVER/api/v1/login" | jq -r .token)
ORG=$(sqlite3 -readonly "$DATA/kcps.db" "SELECT public_id FROM orgs WHERE name = 'Customer A'")
check_eq "the admin switches email MFA on" \
  "$(curl -sS -o /dev/null -w '%{http_code}' --cacert "$DATA/server.crt" -X PATCH \
    -H "Authorization: Bearer $ADMIN_TOKEN" -H 'Content-Type: application/json' \
    --data-binary '{"mfa_email":true}' "$SERVER/api/v1/orgs/$ORG/settings")" 200
mkfifo "$TMP/login.in"
kcps login alice@a.test <"$TMP/login.in" >"$TMP/login.out" 2>&1 &
LOGIN_PID=$!
exec 8>"$TMP/login.in"
printf '%s\n' "$ALICE_PASSWORD" >&8
if wait_for 30 "the code mail" test -s "$TMP/mail/1.eml"; then
  pass "the server mailed a code"
  CODE=$(grep -Eo '\b[0-9]{6}\b' "$TMP/mail/1.eml" | head -n1)
  printf '%s\n' "$CODE" >&8
else
  fail "no mail came"
fi
exec 8>&-
wait "$LOGIN_PID"
check_eq "kcps login with the mailed code: exit 0" "$?" 0
check_eq "kcps login with MFA says who" "$(tail -n1 "$TMP/login.out")" "Logged in as alice@a.test"
case "$(cat "$TMP/login.out")" in *"Code:"*) fail "the prompt went to a non-terminal" ;;
  *) pass "no prompt on a non-terminal" ;; esac
T5=$(kept)
if [ ${#T5} -ge 40 ]; then pass "the MFA login's session is in the keyring"; else
  fail "no item after the MFA login"; fi
check_eq "kcpsd is logged in after MFA" "$(logged_in)" true
kcps logout >/dev/null 2>&1
check_eq "logout after MFA deletes the item" "$(kept)" ""

# 8. Single sign-on through a real OpenID provider.
OIDC_DIR=$BUILD/tests/oidc-provider
"$SRC/tests/oidc/setup.sh" "$OIDC_DIR" >"$TMP/oidc-setup.log" 2>&1 ||
  abort "tests/oidc/setup.sh installs the provider: $(tail -n 5 "$TMP/oidc-setup.log")"
CLIENT_SECRET=Idp-Secret-$(openssl rand -hex 16)
OIDC_CERT=$TMP/idp.pem OIDC_KEY=$TMP/idp.key OIDC_CLIENT_ID=kcps-test \
  OIDC_CLIENT_SECRET=$CLIENT_SECRET OIDC_REDIRECT_URI=$SERVER/api/v1/sso/callback \
  lib_start oidc-provider "$TMP/provider.log" "${KCPS_TEST_NODE:-node}" "$OIDC_DIR/provider.mjs"
IDP_PORT=$(wait_for_line 60 "$TMP/provider.log" '^READY [0-9]+' "$LIB_PID" |
  awk '{print $2}') || abort "the OpenID provider is ready"
# (The admin's web session from part 7: with MFA on, a new login would need a code.)
check_eq "GET /v1/sso before any organization signs in idp.test: 404" \
  "$(curl -sS -o "$TMP/answer" -w '%{http_code}' "$(api '/v1/sso?email=sso-user%40idp.test')")" 404
check_eq "the admin configures the provider for Customer A, for addresses at idp.test" \
  "$(jq -cn --arg i "https://127.0.0.1:$IDP_PORT" --arg s "$CLIENT_SECRET" \
    '{preset: "generic", issuer: $i, client_id: "kcps-test", client_secret: $s,
      domain: "idp.test"}' |
    curl -sS -o /dev/null -w '%{http_code}' --cacert "$DATA/server.crt" -X PUT \
      -H "Authorization: Bearer $ADMIN_TOKEN" -H 'Content-Type: application/json' \
      --data-binary @- "$SERVER/api/v1/orgs/$ORG/sso")" 200
cat "$TMP/ca.pem" "$DATA/server.crt" >"$TMP/bundle.pem"
# The desktop client's part: PKCE S256 and a loopback redirect (nobody
# listens there: the "browser" below stops at it and hands us the code).
VERIFIER=$(openssl rand 32 | basenc --base64url | tr -d '=\n')
CHALLENGE=$(printf '%s' "$VERIFIER" | openssl dgst -sha256 -binary | basenc --base64url |
  tr -d '=\n')
LOOPBACK_PORT=$(free_port)
REDIRECT="http://127.0.0.1:$LOOPBACK_PORT/kcps-sso?state=test-state"
# The organization, found by the address's domain (what the tray's sign-in
# buttons ask kcpsd; kcpsd sends the server only the domain).
check_eq "GET /v1/sso?email=sso-user@idp.test: 200" \
  "$(curl -sS -o "$TMP/answer" -w '%{http_code}' "$(api '/v1/sso?email=sso-user%40IDP.test')")" 200
check_eq "... names Customer A and its generic provider" \
  "$(jq -r '[.org, .preset, .domain] | join(" ")' "$TMP/answer")" "$ORG generic idp.test"
START=$(jq -r .start_url "$TMP/answer")
check_eq "... and its start address" "$START" "$SERVER/api/v1/sso/$ORG/start"
START="$START?redirect_uri=$(jq -rn --arg r "$REDIRECT" '$r|@uri')"
START="$START&code_challenge=$CHALLENGE&code_challenge_method=S256&login_hint=sso-user%40idp.test"
# browser START UNTIL: follows redirects with cookies, fills the provider's
# login (any name) and consent forms, prints the first address starting with UNTIL.
cat >"$TMP/browser.py" <<'PY'
import http.cookiejar, ssl, sys, urllib.error, urllib.parse, urllib.request
start, until, bundle = sys.argv[1:4]
class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None
opener = urllib.request.build_opener(
    NoRedirect, urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()),
    urllib.request.HTTPSHandler(context=ssl.create_default_context(cafile=bundle)))
def get(url, form=None):
    data = urllib.parse.urlencode(form).encode() if form is not None else None
    try:
        with opener.open(urllib.request.Request(url, data=data), timeout=30) as r:
            return r.status, r.headers.get("Location"), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Location"), e.read().decode()
url = start
for step in range(12):
    status, location, body = get(url)
    if status == 200 and "/interaction/" in url:
        form = ({"prompt": "login", "login": "sso-user", "password": "irrelevant"}
                if 'name="login"' in body else {"prompt": "consent"})
        status, location, body = get(url, form)
    if not (300 <= status < 400 and location):
        sys.exit("step %d (%s): HTTP %d without a redirect: %s" % (step, url, status, body[:300]))
    url = urllib.parse.urljoin(url, location)
    if url.startswith(until):
        print(url)
        sys.exit(0)
sys.exit("never sent back to " + until)
PY
BACK=$("$PYTHON" "$TMP/browser.py" "$START" "http://127.0.0.1:$LOOPBACK_PORT/" \
  "$TMP/bundle.pem" 2>"$TMP/browser.log")
check_eq "the browser is sent back to the loopback redirect" "$?" 0
SSO_CODE=$(printf '%s' "$BACK" | sed -n 's/.*[?&]code=\([^&]*\).*/\1/p')
check_eq "... with our own state kept" "$(printf '%s' "$BACK" | grep -c '[?&]state=test-state')" 1
[ -n "$SSO_CODE" ] || fail "no code in $BACK"
sso_body() { jq -cn --arg c "$SSO_CODE" --arg v "$1" '{code: $c, code_verifier: $v}'; }
check_eq "a wrong verifier: 400" "$(post /v1/login/sso "$(sso_body "$CHALLENGE")")" 400
check_eq "kcpsd is logged out before the SSO login" "$(logged_in)" false
# A fresh sign-in for the real exchange (the refused one may have used its
# code up).
BACK=$("$PYTHON" "$TMP/browser.py" "$START" "http://127.0.0.1:$LOOPBACK_PORT/" \
  "$TMP/bundle.pem" 2>>"$TMP/browser.log") || fail "the second sign-in: $(cat "$TMP/browser.log")"
SSO_CODE=$(printf '%s' "$BACK" | sed -n 's/.*[?&]code=\([^&]*\).*/\1/p')
check_eq "POST /v1/login/sso with the code and our verifier: 200" \
  "$(post /v1/login/sso "$(sso_body "$VERIFIER")")" 200
check_eq "kcpsd names the SSO account" "$(jq -r .email "$TMP/answer")" "sso-user@idp.test"
SSO_REFRESH=$(jq -r .refresh_token "$TMP/answer")
if [ ${#SSO_REFRESH} -ge 40 ]; then pass "the SSO login gives a desktop refresh token"; else
  fail "no refresh token from the SSO login: $(jq -c 'del(.refresh_token)' "$TMP/answer")"; fi
check_eq "the answer names the organization's desktop idle limit" \
  "$(jq -r .desktop_idle_logout_minutes "$TMP/answer")" 30
check_eq "kcpsd is logged in after SSO" "$(logged_in)" true
check_eq "the SSO refresh token works once (rotation)" "$(refresh_status "$SSO_REFRESH")" 200
check_eq "the code works once" "$(post /v1/login/sso "$(sso_body "$VERIFIER")")" 400

# 8b. kcps login --sso: the same sign-in from the command line. There is no
# browser here (--no-browser): the test plays it with the address kcps prints.
kcps logout >/dev/null 2>&1
check_eq "kcpsd is logged out before kcps login --sso" "$(logged_in)" false
"$KCPS_BIN" --port "$KCPSD_LOCAL_PORT" login --sso sso-user@idp.test --no-browser \
  >"$TMP/cli-sso.out" 2>"$TMP/cli-sso.err" &
CLI_SSO_PID=$!
wait_for 20 "kcps to print the sign-in address" grep -q '^  https://' "$TMP/cli-sso.err" ||
  fail "kcps login --sso printed no address: $(cat "$TMP/cli-sso.err")"
CLI_START=$(sed -n 's/^  //p' "$TMP/cli-sso.err" | head -n 1)
CLI_REDIRECT=$("$PYTHON" -c 'import sys, urllib.parse as u
q = u.parse_qs(u.urlsplit(sys.argv[1]).query)
print(q["redirect_uri"][0], q.get("login_hint", [""])[0], q.get("code_challenge_method", [""])[0])' "$CLI_START")
read -r CLI_BACK_URL CLI_HINT CLI_METHOD <<<"$CLI_REDIRECT"
check_eq "kcps's address starts at Customer A with S256 and the login hint" \
  "$(printf '%s' "$CLI_START" | grep -c "^$SERVER/api/v1/sso/$ORG/start?") $CLI_METHOD $CLI_HINT" \
  "1 S256 sso-user@idp.test"
CLI_PORT=$(printf '%s' "$CLI_BACK_URL" | sed -n 's|^http://127.0.0.1:\([0-9]*\)/kcps-sso?state=.*|\1|p')
[ -n "$CLI_PORT" ] || fail "kcps's redirect is not a loopback one: $CLI_BACK_URL"
check_eq "another state at kcps's listener: 400" \
  "$(curl -sS -o /dev/null -w '%{http_code}' "http://127.0.0.1:$CLI_PORT/kcps-sso?state=other&code=x")" 400
BACK=$("$PYTHON" "$TMP/browser.py" "$CLI_START" "http://127.0.0.1:$CLI_PORT/" \
  "$TMP/bundle.pem" 2>>"$TMP/browser.log") || fail "the CLI's sign-in: $(cat "$TMP/browser.log")"
curl -sS "$BACK" >"$TMP/cli-sso.page" || fail "the loopback redirect to kcps"
grep -q "You are signed in to KCPS" "$TMP/cli-sso.page" &&
  pass "kcps's listener answers the browser" || fail "kcps's page: $(cat "$TMP/cli-sso.page")"
wait "$CLI_SSO_PID"
check_eq "kcps login --sso: exit 0" "$?" 0
check_eq "kcps login --sso says who" "$(cat "$TMP/cli-sso.out")" "Logged in as sso-user@idp.test"
check_eq "kcpsd is logged in after kcps login --sso" "$(logged_in)" true
[ -n "$(secret-tool lookup server "$SERVER" email sso-user@idp.test 2>/dev/null)" ] &&
  pass "kcps login --sso kept the session in the keyring" ||
  fail "no keyring item for sso-user@idp.test"
kcps logout >/dev/null 2>&1
check_eq "an unknown domain: refused" \
  "$("$KCPS_BIN" --port "$KCPSD_LOCAL_PORT" login --sso x@nowhere.test --no-browser 2>&1 >/dev/null |
     grep -c 'no organization signs in users of nowhere.test')" 1
