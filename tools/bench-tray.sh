#!/bin/bash
# The tray's idle cost and start time (issue 6, "Measured"), under Xvfb with a
# private session bus, a test tray host (a StatusNotifierWatcher) and a real
# kcpsd --user (no server) on free loopback ports:
#   bench: tray-idle-wakeups-per-min ours=… anchor=… ratio=… goal=0
#     wake-ups of an idle kcps-tray (icon registered, event stream open,
#     nothing changing, its threads settled): voluntary + involuntary context
#     switches of all its threads (/proc/PID/task/*/status) over SECONDS
#     (default 20), per minute.
#     Anchor: a GTK4 hello-world window (python3-gi, Gtk 4) measured the same
#     way, i.e. what GTK itself costs at rest.
#   bench: tray-idle-rss-MiB ours=… anchor=… ratio=… goal=<60
#     VmRSS of the idle tray at the end of that time; anchor: the hello-world's.
#   bench: tray-start-to-icon-ms ours=… anchor=… ratio=… goal=<1000
#     from exec to the item's RegisterStatusNotifierItem at the test host.
#     Anchor: the GTK4 hello-world from exec to its window's first map.
# Usage: tools/bench-tray.sh BUILD_DIR [SECONDS]. Needs Xvfb, dbus-daemon,
# gdbus, python3-gi with Gtk 4 (as tests/integration/tray.sh).
set -u
if [ $# -lt 1 ]; then
  echo "usage: $0 BUILD_DIR [SECONDS]" >&2
  exit 2
fi
BUILD=$(realpath "$1")
SECONDS_IDLE=${2:-20}
SRC=$(cd "$(dirname "$0")/.." && pwd)
. "$SRC/tests/integration/lib.sh"
PYTHON=/usr/bin/python3
TRAY_BIN=$BUILD/ui/kcps-tray
KCPSD_BIN=$BUILD/client/kcpsd
for bin in "$TRAY_BIN" "$KCPSD_BIN"; do
  [ -x "$bin" ] || { echo "bench-tray: $bin is not built" >&2; exit 1; }
done

TMP=$(mktemp -d /tmp/kcps-bench-tray.XXXXXX)
cleanup() {
  lib_stop_all
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# snapshot PID: "TID SWITCHES" for each thread (voluntary + involuntary).
snapshot() {
  local task
  for task in /proc/"$1"/task/*; do
    awk -v tid="${task##*/}" '/^(voluntary|nonvoluntary)_ctxt_switches:/ { n += $2 }
      END { print tid, n + 0 }' "$task/status" 2>/dev/null
  done
}
# idle_rate PID: wake-ups per minute over SECONDS_IDLE: each thread's switches
# since the first snapshot (a thread started meanwhile counts whole). A
# thread that ended meanwhile (GLib's pool ends idle workers after 15 s) is
# not seen, so the caller lets those end first.
idle_rate() {
  snapshot "$1" >"$TMP/before"
  sleep "$SECONDS_IDLE"
  snapshot "$1" >"$TMP/after"
  awk -v s="$SECONDS_IDLE" 'NR == FNR { before[$1] = $2; next }
    { d += $2 - (($1 in before) ? before[$1] : 0) }
    END { printf "%.1f", d * 60 / s }' "$TMP/before" "$TMP/after"
}
# settle PID: waits until its thread count stays the same for 16 s (GLib's
# thread pool ends idle workers after 15 s), at most 60 s.
settle() {
  local n last=-1 same=0 i
  for i in $(seq 1 60); do
    n=$(ls /proc/"$1"/task 2>/dev/null | wc -l)
    if [ "$n" = "$last" ]; then same=$((same + 1)); else same=0; last=$n; fi
    [ "$same" -ge 16 ] && return 0
    sleep 1
  done
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "nan" }'; }

# X and a session bus of our own; private folders.
lib_start_desktop "$TMP" || exit 1
export NO_AT_BRIDGE=1 GTK_A11Y=none

# kcpsd --user without a server: the tray reads it and holds its event stream.
mkdir -p "$TMP/kcpsd/spool" "$TMP/kcpsd/state"
chmod 0700 "$TMP/kcpsd" "$TMP/kcpsd/spool" "$TMP/kcpsd/state"
lib_start kcpsd "$TMP/kcpsd.log" "$KCPSD_BIN" --user --spool "$TMP/kcpsd/spool" \
  --state "$TMP/kcpsd/state" --ipp-port 0 --pull-port 0 --pull-listen 127.0.0.1 \
  --pull-host 127.0.0.1 --local-port 0
line=$(wait_for_line 30 "$TMP/kcpsd.log" 'kcpsd: ready ipp=' "$LIB_PID") || exit 1
LOCAL_PORT=$(printf '%s\n' "$line" | sed -n 's/.*local=\([0-9]*\).*/\1/p')

# The test tray host: prints the wall clock (ns) of the item's registration.
cat >"$TMP/host.py" <<'PY'
import sys, time
import gi
gi.require_version("Gio", "2.0")
from gi.repository import Gio, GLib
XML = """<node><interface name='org.kde.StatusNotifierWatcher'>
 <method name='RegisterStatusNotifierItem'><arg name='service' type='s' direction='in'/></method>
 <property name='RegisteredStatusNotifierItems' type='as' access='read'/>
 <property name='IsStatusNotifierHostRegistered' type='b' access='read'/>
 <property name='ProtocolVersion' type='i' access='read'/>
 <signal name='StatusNotifierItemRegistered'><arg type='s'/></signal>
</interface></node>"""
items = []
def call(conn, sender, path, iface, method, params, inv):
    if method == "RegisterStatusNotifierItem" and not items:
        items.append(params.unpack()[0])
        print("registered %d" % time.time_ns(), flush=True)
    inv.return_value(None)
def prop(conn, sender, path, iface, name):
    if name == "RegisteredStatusNotifierItems":
        return GLib.Variant("as", items)
    if name == "IsStatusNotifierHostRegistered":
        return GLib.Variant("b", True)
    return GLib.Variant("i", 0)
bus = Gio.bus_get_sync(Gio.BusType.SESSION)
bus.register_object("/StatusNotifierWatcher", Gio.DBusNodeInfo.new_for_xml(XML).interfaces[0],
                    call, prop, None)
Gio.bus_own_name_on_connection(bus, "org.kde.StatusNotifierWatcher", 0,
                               lambda *a: print("host ready", flush=True), None)
GLib.MainLoop().run()
PY
lib_start host "$TMP/host.log" "$PYTHON" -u "$TMP/host.py"
wait_for_line 30 "$TMP/host.log" '^host ready' "$LIB_PID" >/dev/null || exit 1

# The anchor: a GTK4 hello-world window; prints the wall clock of its first map.
cat >"$TMP/hello.py" <<'PY'
import time
import gi
gi.require_version("Gtk", "4.0")
from gi.repository import Gtk
def activate(app):
    win = Gtk.ApplicationWindow(application=app, title="Hello")
    win.set_child(Gtk.Label(label="Hello, world"))
    win.connect("map", lambda w: print("mapped %d" % time.time_ns(), flush=True))
    win.present()
app = Gtk.Application(application_id="org.kcps.BenchHello")
app.connect("activate", activate)
app.run(None)
PY

# Ours: start to icon, then idle.
start=$(date +%s%N)
lib_start kcps-tray "$TMP/tray.log" "$TRAY_BIN" --local-port "$LOCAL_PORT" \
  --test-dir "$TMP/shots"
TRAY_PID=$LIB_PID
line=$(wait_for_line 60 "$TMP/host.log" '^registered ' "$TRAY_PID") || exit 1
ICON_MS=$(( (${line#registered } - start) / 1000000 ))
tray_prop() {
  gdbus call --session -d org.kcps.Tray -o /org/kcps/Tray/Test \
    -m org.freedesktop.DBus.Properties.Get org.kcps.Tray1.Test "$1" 2>/dev/null
}
# Settled: the event stream is open and nothing is being read.
wait_for 30 "the tray's event stream" bash -c \
  "gdbus call --session -d org.kcps.Tray -o /org/kcps/Tray/Test -m org.freedesktop.DBus.Properties.Get org.kcps.Tray1.Test EventsReady | grep -qv 'uint32 0'" ||
  exit 1
wait_for 30 "the tray to settle" bash -c \
  "gdbus call --session -d org.kcps.Tray -o /org/kcps/Tray/Test -m org.freedesktop.DBus.Properties.Get org.kcps.Tray1.Test Busy | grep -q false" ||
  exit 1
settle "$TRAY_PID"
OURS=$(idle_rate "$TRAY_PID")
rss_mib() { awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }
OURS_RSS=$(rss_mib "$TRAY_PID")

start=$(date +%s%N)
lib_start hello "$TMP/hello.log" "$PYTHON" -u "$TMP/hello.py"
HELLO_PID=$LIB_PID
line=$(wait_for_line 60 "$TMP/hello.log" '^mapped ' "$HELLO_PID") || exit 1
HELLO_MS=$(( (${line#mapped } - start) / 1000000 ))
settle "$HELLO_PID"
ANCHOR=$(idle_rate "$HELLO_PID")
HELLO_RSS=$(rss_mib "$HELLO_PID")

echo "bench: tray-idle-wakeups-per-min ours=$OURS anchor=$ANCHOR ratio=$(ratio "$OURS" "$ANCHOR") goal=0 (over ${SECONDS_IDLE} s; anchor: GTK4 hello-world window in python3-gi)"
echo "bench: tray-idle-rss-MiB ours=$OURS_RSS anchor=$HELLO_RSS ratio=$(ratio "$OURS_RSS" "$HELLO_RSS") goal=<60 (idle, icon registered, no window; anchor: the GTK4 hello-world window, GTK's defaults)"
echo "bench: tray-start-to-icon-ms ours=$ICON_MS anchor=$HELLO_MS ratio=$(ratio "$ICON_MS" "$HELLO_MS") goal=<1000 (anchor: GTK4 hello-world, start to first map)"
