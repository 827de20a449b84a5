#!/bin/bash
# kcpsd --install-queue / --remove-queue against a real (private) cupsd:
# the queue KCPS is made through libcups (CUPS-Add-Modify-Printer with
# ppd-name everywhere), is driverless and points at the virtual printer on
# the port given, `lp` of a PDF through it lands in the spool, installing
# twice is harmless, removing makes it go, removing a missing queue says so,
# and the errors name the cause (printer not answering, cupsd not running,
# account not allowed).
# Usage: queue-install.sh BUILD_DIR SOURCE_DIR. Exit 0 pass, 1 fail, 77 skip.
set -u

if [ $# -ne 2 ]; then
  echo "usage: $0 BUILD_DIR SOURCE_DIR" >&2
  exit 1
fi
BUILD=$(realpath "$1")
SRC=$(realpath "$2")
. "$SRC/tests/integration/lib.sh"

KCPSD_BIN=$BUILD/client/kcpsd
SERVE_BIN=$BUILD/ipp/kcps-ipp-serve
PDF=/usr/share/cups/data/default-testpage.pdf
if [ "$(id -u)" != 0 ]; then
  echo "queue-install: SKIP: a private cupsd needs root here"
  exit 77
fi
for bin in "$KCPSD_BIN" "$SERVE_BIN"; do
  [ -x "$bin" ] || { echo "queue-install: FAIL: $bin is not built" >&2; exit 1; }
done
for tool in cupsd lp lpstat setpriv; do
  command -v "$tool" >/dev/null || { echo "queue-install: FAIL: $tool is not installed" >&2; exit 1; }
done
[ -r "$PDF" ] || { echo "queue-install: FAIL: no $PDF" >&2; exit 1; }

# Traversable: cupsd's backends run as lp; the spool inside is private.
lib_test_begin queue-install 0755
lib_test_show_more() {
  [ -f "$TMP/cups/logs/error_log" ] || return 0
  echo "----- cupsd error_log (last lines) -----"
  grep -v '^D' "$TMP/cups/logs/error_log" | tail -n 30
}

# expect_run WHAT RC REGEX CMD...: CMD exits with RC and its output matches REGEX.
expect_run() {
  local what=$1 want_rc=$2 regex=$3 out rc
  shift 3
  out=$("$@" 2>&1)
  rc=$?
  if [ "$rc" -ne "$want_rc" ]; then
    fail "$what: exit status $rc, expected $want_rc; output: $out"
  elif ! printf '%s\n' "$out" | grep -Eq -- "$regex"; then
    fail "$what: output '$out' does not match /$regex/"
  else
    pass "$what"
    [ -n "${KCPS_QUEUE_VERBOSE:-}" ] && printf '       %s\n' "$out"
  fi
}

# queue_count: how many queues named KCPS the cupsd lists (lpstat -v).
queue_count() { lpstat -v 2>/dev/null | grep -c '^device for KCPS:'; }

# 1. cupsd not running: a clear message, not a hang.
DEAD_PORT=$(free_port) || abort "no free port"
expect_run "install without cupsd says cupsd is not running" 1 \
  'not running or not reachable at 127\.0\.0\.1:'"$DEAD_PORT" \
  env CUPS_SERVER="127.0.0.1:$DEAD_PORT" "$KCPSD_BIN" --remove-queue

# 2. A private cupsd whose admin operations need an account of the system
# group (as the stock policy does); root gets in by its local certificate.
CUPS_PORT=$(free_port) || abort "no free port"
start_cupsd "$TMP" "$CUPS_PORT" || abort "cupsd did not start"
export CUPS_STATEDIR=$TMP/cups/state
IPP_PORT=$(free_port) || abort "no free port"

# 3. Nothing on the port yet: the printer is named as the cause.
expect_run "install with no virtual printer says it does not answer" 1 \
  "printer ipp://localhost:$IPP_PORT/ipp/print does not answer" \
  "$KCPSD_BIN" --install-queue --ipp-port "$IPP_PORT"
[ "$(queue_count)" = 0 ] || fail "a queue was made although the printer did not answer"

# 4. The virtual printer (multi-user, as a system service would be).
mkdir -p "$TMP/spool"
chmod 0700 "$TMP/spool"
lib_start kcps-ipp-serve "$TMP/serve.log" "$SERVE_BIN" --spool "$TMP/spool" --port "$IPP_PORT"
wait_for_line 20 "$TMP/serve.log" '^port ' "$LIB_PID" >/dev/null || abort "kcps-ipp-serve did not start"

# 5. Install, twice: one enabled queue, driverless, to the port given.
# cupsd makes the driver (the PPD) in a background thread after it has
# answered; a job sent before it is done can be aborted. Install returns
# once cupsd says it is done (its event comes a moment before its log line).
PPD=$TMP/cups/root/ppd/KCPS.ppd
ready_count() { grep -c 'Printer "KCPS" is now available' "$TMP/cups/logs/error_log"; }
ready_count_is() { [ "$(ready_count)" = "$1" ]; }
expect_run "install-queue" 0 "print queue KCPS installed .*ipp://localhost:$IPP_PORT/ipp/print" \
  "$KCPSD_BIN" --install-queue --ipp-port "$IPP_PORT"
[ -s "$PPD" ] && pass "the queue's PPD exists when install-queue returns" ||
  fail "no PPD at $PPD when install-queue returned"
expect_run "install-queue again (idempotent)" 0 "print queue KCPS installed" \
  "$KCPSD_BIN" --install-queue --ipp-port "$IPP_PORT"
wait_for 5 "cupsd's log line" ready_count_is 2 && pass "cupsd made the driver once for each install" ||
  fail "cupsd's error_log says the driver was made $(ready_count) times, expected 2"
[ "$(queue_count)" = 1 ] && pass "one queue KCPS" || fail "queues named KCPS: got $(queue_count), expected 1"
URI=$(lpstat -v KCPS 2>/dev/null | sed -n 's/^device for KCPS: //p')
[ "$URI" = "ipp://localhost:$IPP_PORT/ipp/print" ] && pass "device URI $URI" ||
  fail "device URI: got '$URI', expected ipp://localhost:$IPP_PORT/ipp/print"
lpstat -p KCPS 2>/dev/null | grep -q 'enabled' && pass "queue enabled" || fail "queue KCPS is not enabled: $(lpstat -p KCPS 2>&1)"
lpstat -a KCPS 2>/dev/null | grep -q 'accepting requests' && pass "queue accepting" ||
  fail "queue KCPS does not accept jobs: $(lpstat -a KCPS 2>&1)"
# Driverless: the PPD was made by cupsd from the printer's IPP Everywhere answer.
if [ -f "$PPD" ] && grep -q 'IPP Everywhere' "$PPD"; then
  pass "driverless (IPP Everywhere PPD)"
else
  fail "no IPP Everywhere PPD at $PPD: $(grep -m2 'NickName\|ModelName' "$PPD" 2>&1)"
fi
SHARED=$(lpoptions -p KCPS 2>/dev/null | grep -o 'printer-is-shared=[a-z]*')
[ "$SHARED" = "printer-is-shared=false" ] && pass "not shared" || fail "sharing: got '$SHARED', expected printer-is-shared=false"

# 6. An account outside the system group is refused with the reason.
# Only the admin operations are guarded; lpstat still works for everyone.
cat >>"$TMP/cups/cupsd.conf" <<EOF
<Policy guarded>
  <Limit CUPS-Add-Modify-Printer CUPS-Delete-Printer>
    AuthType Default
    Require user @SYSTEM
    Order deny,allow
  </Limit>
  <Limit All>
    Order deny,allow
  </Limit>
</Policy>
DefaultPolicy guarded
EOF
stop_pid "$(lib_pid_of cupsd)"
start_cupsd_again() {
  lib_start cupsd "$TMP/cups/logs/cupsd.out" \
    cupsd -f -c "$TMP/cups/cupsd.conf" -s "$TMP/cups/cups-files.conf"
  wait_for 20 "cupsd on port $CUPS_PORT" cupsd_ready "127.0.0.1:$CUPS_PORT"
}
start_cupsd_again || abort "cupsd did not restart with the guarded policy"
NOBODY_UID=$(id -u nobody) || abort "no account nobody"
NOGROUP=$(id -g nobody)
# nobody may not reach a build folder under a private home (a clone in
# /root): it runs a copy from a folder it can enter.
mkdir -m 0755 "$TMP/bin"
chmod 0755 "$TMP"
install -m 0755 "$KCPSD_BIN" "$TMP/bin/kcpsd"
expect_run "remove-queue as nobody is refused as not allowed" 1 \
  'does not allow this account to remove print queue KCPS \(run as root or as a member of the lpadmin group\)' \
  setpriv --reuid="$NOBODY_UID" --regid="$NOGROUP" --clear-groups \
  env CUPS_SERVER="$CUPS_SERVER" "$TMP/bin/kcpsd" --remove-queue
[ "$(queue_count)" = 1 ] || fail "the refused removal removed the queue"
READY_BEFORE=$(ready_count)
expect_run "install-queue as root with the guarded policy" 0 "installed" \
  "$KCPSD_BIN" --install-queue --ipp-port "$IPP_PORT"
wait_for 5 "cupsd's log line" ready_count_is $((READY_BEFORE + 1)) &&
  pass "cupsd made the driver for the install under the guarded policy" ||
  fail "cupsd's error_log says the driver was made $(ready_count) times, expected $((READY_BEFORE + 1))"

# 7. lp through the queue lands in the spool, owned by the sender.
lpstat -p KCPS 2>/dev/null | grep -q 'enabled' || fail "queue KCPS not enabled after the restart"
OUT=$(lp -U nobody -d KCPS -t "queue-install test" "$PDF" 2>&1) || abort "lp: $OUT"
LINE=$(wait_for_line 60 "$TMP/serve.log" '^job ' "$(lib_pid_of kcps-ipp-serve)") ||
  abort "no job reached the virtual printer through the queue in 60 s"
set -- $LINE
if [ "$6" = "$NOBODY_UID" ] && [ -f "$TMP/spool/$NOBODY_UID/$2.pdf" ] &&
  head -c 5 "$TMP/spool/$NOBODY_UID/$2.pdf" | grep -q '%PDF-'; then
  pass "lp through KCPS spooled a $4-page PDF for nobody"
else
  fail "lp through KCPS: got '$LINE', expected a job of uid $NOBODY_UID with its PDF in the spool"
fi

# 8. Remove: gone; removing again is a clear message, not a failure.
expect_run "remove-queue" 0 "print queue KCPS removed" "$KCPSD_BIN" --remove-queue
[ "$(queue_count)" = 0 ] && pass "queue gone" || fail "lpstat still lists KCPS: $(lpstat -v 2>&1)"
lpstat -p KCPS >/dev/null 2>&1 && fail "lpstat -p KCPS still succeeds"
expect_run "remove-queue again says it is not installed" 0 \
  "print queue KCPS is not installed; nothing to remove" "$KCPSD_BIN" --remove-queue
expect_run "install and remove together are refused" 2 "exclude each other" \
  "$KCPSD_BIN" --install-queue --remove-queue

if [ "$FAILED" -eq 0 ]; then
  echo "queue-install: PASS"
fi
