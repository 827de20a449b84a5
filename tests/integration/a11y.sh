#!/bin/bash
# The tray's windows as a screen reader sees them (issue 6: "every control
# has an accessible label and is reachable by keyboard"), under Xvfb with a
# private session D-Bus and the real AT-SPI bus (at-spi-bus-launcher,
# activated on that bus), against a real kcps-server and kcpsd with two jobs:
# the jobs window (with its search open), the login window, the settings,
# the Release… dialog, the preview and the delete question are opened, then
# tests/integration/a11y-walk.py (pyatspi) walks every one of them, in
# English, German and Japanese (the catalogs of the build): each
# control on screen has a name a person can understand (not empty, not a GTK
# class name, no mnemonic underscore) and can take the keyboard focus. In
# English also with the keyboard itself (xdotool, key presses through XTEST):
# Tab reaches every control of each window, Escape closes each but the main.
# Usage: a11y.sh BUILD_DIR SOURCE_DIR. Exit 0 pass, 1 fail, 77 skip.
set -u

BUILD=$(realpath "${1:?usage: a11y.sh BUILD_DIR SOURCE_DIR}")
SRC=$(realpath "${2:?usage: a11y.sh BUILD_DIR SOURCE_DIR}")
. "$SRC/tests/integration/lib.sh"
SERVER_BIN=$BUILD/server-stub/kcps-server
KCPSD_BIN=$BUILD/client/kcpsd
KCPS_BIN=$BUILD/client/kcps
TRAY_BIN=$BUILD/ui/kcps-tray
PDF=/usr/share/cups/data/default-testpage.pdf
PYTHON=/usr/bin/python3
for tool in Xvfb dbus-daemon gdbus ipptool jq xdotool; do
  command -v "$tool" >/dev/null || { echo "a11y: FAIL: $tool is not installed"; exit 1; }
done
[ -x /usr/libexec/at-spi-bus-launcher ] ||
  { echo "a11y: FAIL: at-spi2-core is not installed (make test installs it)"; exit 1; }
"$PYTHON" -c 'import pyatspi' 2>/dev/null ||
  { echo "a11y: FAIL: python3-pyatspi is not installed (make test installs it)"; exit 1; }
[ -x "$TRAY_BIN" ] || { echo "SKIP: $TRAY_BIN not built"; exit 77; }
[ -r "$PDF" ] || { echo "a11y: FAIL: no $PDF"; exit 1; }

lib_test_begin a11y

# --- peers ---------------------------------------------------------------------
start_kcps_server "$SERVER_BIN" "$TMP/server" "$TMP/kcps-server.log" ||
  abort "kcps-server prints its listening line"
start_kcpsd "$KCPSD_BIN" "$TMP/kcpsd" "$KCPS_SERVER_URL" "$TMP/server/server.crt" ||
  abort "kcpsd prints its ready line"
KCPS() { "$KCPS_BIN" --port "$KCPSD_LOCAL_PORT" "$@"; }
for name in "a11y one" "a11y two"; do
  out=$(lib_print_job "ipp://127.0.0.1:$KCPSD_IPP_PORT/ipp/print" "$PDF" "$name") ||
    abort "Print-Job '$name' to kcpsd: $out"
done
job_id() { KCPS jobs --json | jq -r --arg n "$1" '.[] | select(.name == $n) | .id'; }
J1=$(job_id "a11y one")
J2=$(job_id "a11y two")
[ -n "$J1" ] && [ -n "$J2" ] || abort "the two jobs are spooled: $(KCPS jobs --json)"
pass "kcps-server, kcpsd and two jobs"

# --- a desktop with an accessibility bus ------------------------------------------
# Its session bus activates at-spi-bus-launcher (org.a11y.Bus), which starts
# the accessibility bus and its registry.
lib_start_desktop "$TMP" 1280x900 || abort "Xvfb and a session bus start"
# The bridge on (GTK's default): no NO_AT_BRIDGE, no GTK_A11Y=none here.
export G_MESSAGES_DEBUG=kcps-tray LC_ALL=C.UTF-8
unset LANGUAGE KCPS_TRAY_LOCALEDIR NO_AT_BRIDGE GTK_A11Y
wait_for 20 "the accessibility bus" gdbus call --session -d org.a11y.Bus -o /org/a11y/bus \
  -m org.a11y.Bus.GetAddress >/dev/null || abort "at-spi-bus-launcher answers on the session bus"
pass "Xvfb, a session bus and the AT-SPI bus"

action() {
  gdbus call --session -d org.kcps.Tray -o /org/kcps/Tray -m org.gtk.Actions.Activate \
    "$1" "${2:-[]}" '{}' >/dev/null
}
app_prop() {
  gdbus call --session -d org.kcps.Tray -o /org/kcps/Tray/Test \
    -m org.freedesktop.DBus.Properties.Get org.kcps.Tray1.Test "$1" 2>/dev/null
}

# --- the windows, in English, German and Japanese ----------------------------------
# walk LANG: the tray in LANG (C: English, the titles known), its six windows
# opened, then read over AT-SPI; the tray quits after.
walk() {
  local lang=$1 out=$TMP/walk-$1.out
  if [ "$lang" = C ]; then
    unset LANGUAGE KCPS_TRAY_LOCALEDIR
  else
    export LANGUAGE=$lang KCPS_TRAY_LOCALEDIR=$BUILD/ui/po
  fi
  # No tray host: the jobs window opens by itself.
  lib_start "kcps-tray-$lang" "$TMP/tray-$lang.log" "$TRAY_BIN" \
    --local-port "$KCPSD_LOCAL_PORT" --test-dir "$TMP/shots"
  local pid=$LIB_PID
  wait_for 30 "the jobs window" bash -c "$(declare -f app_prop); app_prop Windows | grep -q jobs" ||
    { fail "$lang: the jobs window opens: $(app_prop Windows)"; return; }
  action search-jobs "[<'a11y'>]"
  action login
  action settings
  action preview-job "[<'$J1'>]"
  action release-job "[<'$J1'>]"
  action delete-job "[<'$J2'>]"
  local titles=("KCPS Jobs" "Log in to KCPS" "KCPS Settings" "Preview of “a11y one”" \
    "Print a Job" "Delete Job")
  [ "$lang" = C ] || titles=(--windows 6)
  local keyboard=()
  [ "$lang" = C ] && keyboard=(--keyboard)
  if "$PYTHON" "$SRC/tests/integration/a11y-walk.py" "${keyboard[@]}" kcps-tray 60 "${titles[@]}" \
    >"$out" 2>&1; then
    pass "$lang: every control in the six windows has a name and takes the keyboard focus"
  else
    fail "$lang: AT-SPI walk: $(grep -c '^FAIL' "$out") problems"
  fi
  sed "s/^/$lang: /" "$out"
  # Not vacuous: each window showed controls (the jobs window's rows among them).
  local n total
  while read -r n; do
    [ "$n" -gt 0 ] || fail "$lang: a window showed no control over AT-SPI"
  done < <(sed -nE 's/^window - .*: ([0-9]+) controls$/\1/p' "$out")
  [ "$(grep -c '^window - ' "$out")" = 6 ] || fail "$lang: the walk did not report six windows"
  total=$(($(sed -nE 's/^window - .*: ([0-9]+) controls$/\1/p' "$out" | paste -sd+)+0))
  [ "$total" -ge 25 ] && pass "$lang: $total controls checked" || fail "$lang: only $total controls seen"
  action quit
  wait_for 20 "kcps-tray ($lang) to quit" bash -c "! kill -0 $pid 2>/dev/null" ||
    fail "$lang: the tray did not quit"
}
for lang in C de ja; do
  walk "$lang"
done
