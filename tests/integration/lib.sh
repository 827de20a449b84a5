# Reusable pieces for the integration test (e2e.sh) and `make run`: free
# ports, waiting for readiness, and start/stop of the real peers (system D-Bus
# + avahi, ippeveprinter, a private cupsd, kcps-server, kcpsd). Source it from
# bash; it sets no options of its own. Every process it starts is recorded and
# lib_stop_all stops exactly those, newest first.

# Names, pids and logs of the processes started here (parallel arrays).
LIB_NAMES=()
LIB_PIDS=()
LIB_LOGS=()
# Ports handed out by free_port in this shell, so two calls never collide.
LIB_PORTS_TAKEN=" "

# lib_log MSG...: a progress line on stderr, prefixed with the time.
lib_log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# port_in_use PORT: true when something accepts TCP connections on 127.0.0.1:PORT.
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# free_port: prints a loopback TCP port nobody listens on, not handed out
# before, and outside the kernel's ephemeral range (ip_local_port_range:
# an outgoing connection's local port there makes a later bind fail with
# "Address already in use"): 10000 up to that range, or above it.
free_port() {
  local port lo=32768 hi=60999 base span
  read -r lo hi </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null
  if [ "$lo" -gt 12000 ]; then
    base=10000 span=$((lo - 10000))
  elif [ "$hi" -lt 63000 ]; then
    base=$((hi + 1)) span=$((65535 - hi))
  else
    base=20000 span=41000 # no room outside it: the old range
  fi
  for _ in $(seq 1 200); do
    port=$((base + (RANDOM * 32768 + RANDOM) % span))
    case "$LIB_PORTS_TAKEN" in *" $port "*) continue ;; esac
    if ! port_in_use "$port" && ! ss -Htln "sport = :$port" 2>/dev/null | grep -q .; then
      LIB_PORTS_TAKEN="$LIB_PORTS_TAKEN$port "
      echo "$port"
      return 0
    fi
  done
  echo "free_port: no free port found after 200 tries" >&2
  return 1
}

# wait_for SECONDS WHAT CMD...: polls CMD every 0.1 s until it succeeds; fails naming WHAT on timeout.
wait_for() {
  local timeout=$1 what=$2 deadline
  shift 2
  deadline=$(($(date +%s%N) + timeout * 1000000000))
  until "$@" >/dev/null 2>&1; do
    if [ "$(date +%s%N)" -gt "$deadline" ]; then
      echo "timed out after ${timeout}s waiting for $what" >&2
      return 1
    fi
    sleep 0.1
  done
}

# wait_for_port SECONDS PORT: waits until 127.0.0.1:PORT accepts connections.
wait_for_port() { wait_for "$1" "port $2" port_in_use "$2"; }

# wait_for_line SECONDS FILE REGEX [PID]: waits for a line matching REGEX in FILE (fails early when PID dies); prints it.
wait_for_line() {
  local timeout=$1 file=$2 regex=$3 pid=${4:-} deadline line
  deadline=$(($(date +%s%N) + timeout * 1000000000))
  while :; do
    line=$(grep -E -m1 -- "$regex" "$file" 2>/dev/null) && { echo "$line"; return 0; }
    if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
      echo "process $pid exited before printing /$regex/ in $file" >&2
      return 1
    fi
    if [ "$(date +%s%N)" -gt "$deadline" ]; then
      echo "timed out after ${timeout}s waiting for /$regex/ in $file" >&2
      return 1
    fi
    sleep 0.1
  done
}

# lib_start NAME LOG CMD...: starts CMD in the background (stdout+stderr to LOG), records it; sets LIB_PID.
lib_start() {
  local name=$1 log=$2
  shift 2
  # Logs may hold demo credentials: private from the start.
  (umask 077 && : >"$log")
  "$@" </dev/null >>"$log" 2>&1 &
  LIB_PID=$!
  LIB_NAMES+=("$name")
  LIB_PIDS+=("$LIB_PID")
  LIB_LOGS+=("$log")
}

# lib_record NAME PID LOG: records a process started otherwise (a daemon that forked) for lib_stop_all.
lib_record() {
  LIB_NAMES+=("$1")
  LIB_PIDS+=("$2")
  LIB_LOGS+=("$3")
}

# lib_pid_of NAME: prints the pid recorded for NAME (empty when none).
lib_pid_of() {
  local i
  for i in "${!LIB_NAMES[@]}"; do
    [ "${LIB_NAMES[$i]}" = "$1" ] && echo "${LIB_PIDS[$i]}"
  done
  return 0
}

# stop_pid PID [SECONDS]: SIGTERM, then SIGKILL after SECONDS (default 5) if still alive; reaps children.
stop_pid() {
  local pid=$1 timeout=${2:-5} i
  kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; return 0; }
  kill -TERM "$pid" 2>/dev/null
  for i in $(seq 1 $((timeout * 10))); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  return 0
}

# lib_test_begin NAME [MODE]: a test script's bookkeeping. Makes TMP, a
# folder of its own (MODE, default 0700), and defines pass WHAT, fail WHAT
# (one result line each; fail counts), check_eq WHAT GOT EXPECTED and abort
# WHAT (fail, then exit: later steps depend on this one). At exit, whatever
# the cause: on a failure the peers' logs (before lib_stop_all forgets them)
# and, when the script defines it, lib_test_show_more; then the peers stop,
# the script's lib_test_cleanup runs when defined, "NAME: P passed, F failed"
# is printed and TMP is removed, except after a failure (its path is
# printed) or with KCPS_TEST_KEEP=1. Exit 0, 1 on any failure, 77 skip.
lib_test_begin() {
  LIB_TEST_NAME=$1
  TMP=$(mktemp -d "/tmp/kcps-$1.XXXXXX") || { echo "FAIL - a folder under /tmp"; exit 1; }
  chmod "${2:-0700}" "$TMP"
  PASSED=0
  FAILED=0
  pass() { PASSED=$((PASSED + 1)); echo "ok   - $*"; }
  fail() { FAILED=$((FAILED + 1)); echo "FAIL - $*"; }
  check_eq() {
    if [ "$2" = "$3" ]; then pass "$1"; else fail "$1: got '$2', expected '$3'"; fi
  }
  abort() {
    fail "$*"
    exit 1
  }
  trap lib_test_finish EXIT
  trap 'exit 1' INT TERM
}

# lib_test_finish: lib_test_begin's exit trap (above).
lib_test_finish() {
  local rc=$?
  if [ "$FAILED" -gt 0 ] || { [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ]; }; then
    rc=1
    lib_dump_logs all
    if declare -F lib_test_show_more >/dev/null; then lib_test_show_more >&2; fi
  fi
  lib_stop_all
  if declare -F lib_test_cleanup >/dev/null; then lib_test_cleanup; fi
  echo "$LIB_TEST_NAME: $PASSED passed, $FAILED failed"
  if [ "$rc" -eq 1 ] || [ -n "${KCPS_TEST_KEEP:-}" ]; then
    echo "$LIB_TEST_NAME: logs kept in $TMP"
  else
    rm -rf "$TMP"
  fi
  exit "$rc"
}

# lib_start_desktop DIR [WxH]: what a desktop session gives the tray, in DIR:
# Xvfb (DISPLAY), a private session bus (DBUS_SESSION_BUS_ADDRESS; it can
# activate services such as the AT-SPI bus), private HOME and XDG folders,
# software rendering on X11. The accessibility bridge is left as the caller
# wants it (the tray tests set NO_AT_BRIDGE=1 GTK_A11Y=none). False (said
# on stderr) when a piece does not start.
lib_start_desktop() {
  local dir=$1 size=${2:-1024x768}
  lib_start Xvfb "$dir/xvfb.log" Xvfb -displayfd 3 -screen 0 "${size}x24" -nolisten tcp \
    3>"$dir/display"
  wait_for 30 "Xvfb's display number" test -s "$dir/display" || return 1
  export DISPLAY=:$(head -n1 "$dir/display")
  dbus-daemon --session --fork --print-address=3 --print-pid=4 3>"$dir/bus" 4>"$dir/bus.pid" \
    2>"$dir/dbus-session.log" || { cat "$dir/dbus-session.log" >&2; return 1; }
  lib_record dbus-session "$(head -n1 "$dir/bus.pid")" "$dir/dbus-session.log"
  export DBUS_SESSION_BUS_ADDRESS=$(head -n1 "$dir/bus")
  wait_for 10 "the session bus" gdbus call --session -d org.freedesktop.DBus \
    -o /org/freedesktop/DBus -m org.freedesktop.DBus.GetId || return 1
  mkdir -p "$dir/home" "$dir/runtime"
  chmod 0700 "$dir/home" "$dir/runtime"
  export HOME=$dir/home XDG_RUNTIME_DIR=$dir/runtime XDG_CONFIG_HOME=$dir/home/.config
  export XDG_CACHE_HOME=$dir/home/.cache XDG_DATA_HOME=$dir/home/.local/share
  export XDG_STATE_HOME=$dir/home/.local/state
  export GDK_BACKEND=x11 GSK_RENDERER=cairo
}

# lib_print_job URI FILE NAME: Print-Job of the PDF FILE named NAME to the
# IPP printer at URI with ipptool (as this process's user); true when the
# printer took it (successful-ok and a job-id), else ipptool's last lines.
lib_print_job() {
  local out
  out=$(ipptool -t -T 30 -f "$2" -d "name=$3" "$1" /dev/stdin 2>&1 <<'TEST'
{
  OPERATION Print-Job
  GROUP operation-attributes-tag
  ATTR charset attributes-charset utf-8
  ATTR naturalLanguage attributes-natural-language en
  ATTR uri printer-uri $uri
  ATTR name requesting-user-name $user
  ATTR name job-name $name
  ATTR mimeMediaType document-format application/pdf
  FILE $filename
  STATUS successful-ok
  EXPECT job-id OF-TYPE integer WITH-VALUE >0
}
TEST
  ) || { printf '%s\n' "$out" | tail -n 5; return 1; }
}

# lib_dump_logs [all]: prints the last lines (secrets hidden) of the logs of peers that died (or of all with "all").
lib_dump_logs() {
  local i
  for i in "${!LIB_NAMES[@]}"; do
    if [ "${1:-}" = all ] || ! kill -0 "${LIB_PIDS[$i]}" 2>/dev/null; then
      if [ -s "${LIB_LOGS[$i]}" ]; then
        echo "----- ${LIB_NAMES[$i]} (pid ${LIB_PIDS[$i]}): last lines of ${LIB_LOGS[$i]} -----" >&2
        tail -n 40 "${LIB_LOGS[$i]}" | sed -E 's/((password|secret)[^:]*: ).*/\1[hidden]/I' >&2
      fi
    fi
  done
}

# lib_stop_all: stops every recorded process, newest first, and forgets them.
lib_stop_all() {
  local i
  for ((i = ${#LIB_PIDS[@]} - 1; i >= 0; i--)); do
    stop_pid "${LIB_PIDS[$i]}"
  done
  LIB_NAMES=()
  LIB_PIDS=()
  LIB_LOGS=()
}

# lib_isolate_run SCRIPT ARGS...: as root, re-executes SCRIPT in a private mount namespace whose /run/dbus and /run/avahi-daemon are its own (so its D-Bus and avahi never meet another's); inside, mounts them; a no-op where unshare is not allowed.
lib_isolate_run() {
  if [ -z "${LIB_PRIVATE_RUN:-}" ] && [ "$(id -u)" = 0 ] &&
    unshare -m --propagation private true 2>/dev/null; then
    LIB_PRIVATE_RUN=1 exec unshare -m --propagation private "$@"
  fi
  if [ "${LIB_PRIVATE_RUN:-}" = 1 ]; then
    mkdir -p /run/dbus /run/avahi-daemon
    mount -t tmpfs -o mode=0755 kcps-test-dbus /run/dbus || return 1
    mount -t tmpfs -o mode=0755 kcps-test-avahi /run/avahi-daemon || return 1
    LIB_PRIVATE_RUN=mounted
  fi
  return 0
}

# start_dbus_avahi DIR: starts a system D-Bus and avahi-daemon unless running (ippeveprinter needs them); logs in DIR.
start_dbus_avahi() {
  local dir=$1 pid
  if ! avahi-daemon --check 2>/dev/null; then
    if ! dbus-send --system --print-reply --dest=org.freedesktop.DBus / \
        org.freedesktop.DBus.GetId >/dev/null 2>&1; then
      mkdir -p /run/dbus
      # A pid file left by a dead bus blocks a new one.
      if [ -f /run/dbus/pid ] && ! kill -0 "$(cat /run/dbus/pid)" 2>/dev/null; then
        rm -f /run/dbus/pid
      fi
      pid=$(dbus-daemon --system --fork --print-pid 2>"$dir/dbus.log") || {
        cat "$dir/dbus.log" >&2
        return 1
      }
      lib_record dbus "$pid" "$dir/dbus.log"
      wait_for 10 "the system D-Bus" dbus-send --system --print-reply \
        --dest=org.freedesktop.DBus / org.freedesktop.DBus.GetId || return 1
    fi
    avahi-daemon --daemonize --no-drop-root >"$dir/avahi.log" 2>&1 || {
      cat "$dir/avahi.log" >&2
      return 1
    }
    wait_for 10 "avahi-daemon" avahi-daemon --check || return 1
    pid=$(cat /run/avahi-daemon/pid 2>/dev/null)
    [ -n "$pid" ] && lib_record avahi "$pid" "$dir/avahi.log"
  fi
  return 0
}

# ipp_printer_ready URI: true when the IPP printer at URI answers Get-Printer-Attributes.
ipp_printer_ready() { ipptool -q -T 5 "$1" get-printer-attributes.test; }

# start_ippeveprinter DIR PORT NAME [FORMATS]: an ippeveprinter keeping its files in DIR/spool; sets IPPEVE_URI.
start_ippeveprinter() {
  local dir=$1 port=$2 name=$3 formats=${4:-application/pdf}
  mkdir -p "$dir/spool"
  chmod 0700 "$dir"
  lib_start ippeveprinter "$dir/ippeveprinter.log" \
    ippeveprinter -v -k -f "$formats" -p "$port" -d "$dir/spool" -n localhost "$name"
  IPPEVE_URI="ipp://127.0.0.1:$port/ipp/print"
  wait_for 20 "ippeveprinter on port $port" ipp_printer_ready "$IPPEVE_URI"
}

# cupsd_ready HOST:PORT: true when the cupsd at HOST:PORT says it is running.
cupsd_ready() { lpstat -h "$1" -r 2>/dev/null | grep -q "is running"; }

# start_cupsd DIR PORT: a private cupsd for tests listening on 127.0.0.1:PORT; sets CUPS_SERVER (exported).
start_cupsd() {
  local dir=$1 port=$2
  mkdir -p "$dir/cups/root" "$dir/cups/spool" "$dir/cups/cache" "$dir/cups/state/certs" \
    "$dir/cups/logs" "$dir/cups/tmp"
  chmod 1777 "$dir/cups/tmp"
  cat >"$dir/cups/cupsd.conf" <<EOF
Listen 127.0.0.1:$port
LogLevel debug
MaxJobs 0
DefaultAuthType None
Browsing Off
WebInterface No
<Policy default>
  <Limit All>
    Order deny,allow
  </Limit>
</Policy>
<Location />
  Order allow,deny
  Allow all
</Location>
EOF
  cat >"$dir/cups/cups-files.conf" <<EOF
ServerRoot $dir/cups/root
RequestRoot $dir/cups/spool
CacheDir $dir/cups/cache
StateDir $dir/cups/state
TempDir $dir/cups/tmp
AccessLog $dir/cups/logs/access_log
ErrorLog $dir/cups/logs/error_log
PageLog $dir/cups/logs/page_log
Printcap $dir/cups/printcap
EOF
  lib_start cupsd "$dir/cups/logs/cupsd.out" \
    cupsd -f -c "$dir/cups/cupsd.conf" -s "$dir/cups/cups-files.conf"
  export CUPS_SERVER="127.0.0.1:$port"
  wait_for 20 "cupsd on port $port" cupsd_ready "127.0.0.1:$port"
}

# start_kcps_server BIN DATA LOG [LISTEN]: kcps-server --demo on LISTEN (default 127.0.0.1:0), output to LOG; sets KCPS_SERVER_URL.
start_kcps_server() {
  local bin=$1 data=$2 log=$3 listen=${4:-127.0.0.1:0} line
  mkdir -p "$data"
  lib_start kcps-server "$log" "$bin" --demo --data "$data" --listen "$listen"
  line=$(wait_for_line 30 "$log" 'kcps-server: listening on https://' \
    "$LIB_PID") || return 1
  KCPS_SERVER_URL=$(printf '%s\n' "$line" | grep -Eo 'https://[^ ]+' | head -n1)
  KCPS_SERVER_URL=${KCPS_SERVER_URL%/}
  [ -n "$KCPS_SERVER_URL" ]
}

# demo_credential DATA KEY: prints the value after "KEY: " (e.g. "alice@a.test password") in DATA/demo-credentials.txt.
demo_credential() {
  sed -n "s/^$2: //p" "$1/demo-credentials.txt" | head -n1
}

# start_kcpsd BIN DIR SERVER_URL SERVER_CA [IPP PULL LOCAL]: kcpsd --user (ports default 0); sets KCPSD_IPP_PORT, KCPSD_PULL_PORT, KCPSD_LOCAL_PORT.
start_kcpsd() {
  local bin=$1 dir=$2 url=$3 ca=$4 ipp=${5:-0} pull=${6:-0} local_port=${7:-0} line
  mkdir -p "$dir/spool" "$dir/state"
  chmod 0700 "$dir" "$dir/spool" "$dir/state"
  lib_start kcpsd "$dir/kcpsd.log" "$bin" --user --server "$url" --server-ca "$ca" \
    --spool "$dir/spool" --state "$dir/state" --ipp-port "$ipp" --pull-port "$pull" \
    --pull-listen 127.0.0.1 --pull-host 127.0.0.1 --local-port "$local_port"
  line=$(wait_for_line 30 "$dir/kcpsd.log" 'kcpsd: ready ipp=' "$LIB_PID") || return 1
  KCPSD_IPP_PORT=$(printf '%s\n' "$line" | sed -n 's/.*ipp=\([0-9]*\).*/\1/p')
  KCPSD_PULL_PORT=$(printf '%s\n' "$line" | sed -n 's/.*pull=\([0-9]*\).*/\1/p')
  KCPSD_LOCAL_PORT=$(printf '%s\n' "$line" | sed -n 's/.*local=\([0-9]*\).*/\1/p')
  [ -n "$KCPSD_IPP_PORT" ] && [ -n "$KCPSD_PULL_PORT" ] && [ -n "$KCPSD_LOCAL_PORT" ]
}
