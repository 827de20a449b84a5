#!/bin/bash
# A real CUPS queue to the virtual printer: a private cupsd builds a
# driverless queue (lpadmin -m everywhere) against kcps-ipp-serve, then
# `lp` of a PDF, a text file, a PNG and a JPEG must each land in the spool
# as a PDF job of the sender (cupsd turns text into one of our formats
# itself; CUPS's ipp backend sends Create-Job + Send-Document).
# Usage: cups-queue.sh BUILD_DIR. Exit 0 pass, 1 fail, 77 skip.
set -u

BUILD=${1:?usage: cups-queue.sh BUILD_DIR}
SERVE="$BUILD/ipp/kcps-ipp-serve"
PDF=/usr/share/cups/data/default-testpage.pdf
# free_port from the shared helpers (bash, no options of its own).
. "$(dirname "$0")/lib.sh"

for tool in cupsd lpadmin lp lpstat gs; do
  command -v "$tool" >/dev/null 2>&1 || { echo "FAIL: $tool not installed (make test installs it)"; exit 1; }
done
[ -x "$SERVE" ] || { echo "SKIP: $SERVE not built"; exit 77; }
[ "$(id -u)" = 0 ] || { echo "SKIP: a private cupsd needs root here"; exit 77; }
[ -r "$PDF" ] || { echo "SKIP: no $PDF"; exit 77; }

D=$(mktemp -d /tmp/kcps-cups-queue.XXXXXX)
SERVE_PID=
CUPSD_PID=
cleanup() {
  [ -n "$CUPSD_PID" ] && kill "$CUPSD_PID" 2>/dev/null && wait "$CUPSD_PID" 2>/dev/null
  [ -n "$SERVE_PID" ] && kill "$SERVE_PID" 2>/dev/null && wait "$SERVE_PID" 2>/dev/null
  rm -rf "$D"
}
trap cleanup EXIT INT TERM
fail() {
  echo "FAIL: $*"
  echo "--- kcps-ipp-serve log"; tail -n 30 "$D/serve.err" 2>/dev/null
  grep -v "^job " "$D/serve.out" 2>/dev/null | tail -n 20
  echo "--- cupsd error_log"; tail -n 40 "$D/log/error_log" 2>/dev/null
  exit 1
}

# Waits up to $1 tenths of a second for the command in $2... to succeed.
poll_for() {
  n=$1; shift
  while [ "$n" -gt 0 ]; do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.1
    n=$((n - 1))
  done
  return 1
}

# 1. The virtual printer on a free port.
# G_MESSAGES_DEBUG: the operations show in serve.out (GLib writes debug
# lines to stdout; checked in step 5).
G_MESSAGES_DEBUG=kcps-ipp "$SERVE" --spool "$D/spool" --port 0 >"$D/serve.out" 2>"$D/serve.err" &
SERVE_PID=$!
poll_for 100 grep -q '^port ' "$D/serve.out" || fail "kcps-ipp-serve did not start"
PORT=$(awk '/^port /{print $2}' "$D/serve.out")

# 2. A private cupsd on another free port.
CPORT=$(free_port) || fail "no free port for cupsd"
mkdir -p "$D/log" "$D/cache" "$D/state/certs" "$D/requests" "$D/tmp" "$D/ppd"
chmod 1777 "$D/tmp"
cat >"$D/cupsd.conf" <<CONF
Listen 127.0.0.1:$CPORT
LogLevel info
MaxJobs 0
DefaultAuthType None
WebInterface No
Browsing No
<Location />
  Order allow,deny
  Allow all
</Location>
<Policy default>
  <Limit All>
    Order deny,allow
  </Limit>
</Policy>
CONF
cat >"$D/cups-files.conf" <<CONF
ServerRoot $D
RequestRoot $D/requests
CacheDir $D/cache
StateDir $D/state
TempDir $D/tmp
AccessLog $D/log/access_log
ErrorLog $D/log/error_log
PageLog $D/log/page_log
Printcap $D/printcap
CONF
cupsd -f -c "$D/cupsd.conf" -s "$D/cups-files.conf" >"$D/log/cupsd.out" 2>&1 &
CUPSD_PID=$!
export CUPS_SERVER="localhost:$CPORT"
poll_for 150 sh -c 'lpstat -r 2>/dev/null | grep -qx "scheduler is running"' ||
  fail "cupsd did not start"

# 3. The driverless queue (CUPS asks the printer for its attributes now).
lpadmin -p KCPS -E -v "ipp://localhost:$PORT/ipp/print" -m everywhere \
  >"$D/lpadmin.out" 2>&1 || { cat "$D/lpadmin.out"; fail "lpadmin -m everywhere refused"; }
lpstat -p KCPS 2>/dev/null | grep -q 'enabled' || fail "queue KCPS is not enabled"

# 4. Print as an ordinary account; each job must reach the spool as that
# user, as a PDF. Samples: the PDF, a text file, a PNG and a JPEG from gs.
USER_NAME=nobody
USER_UID=$(id -u "$USER_NAME") || fail "no account $USER_NAME"
printf 'KCPS cups-queue test\nA second line of plain text.\n' >"$D/text.txt"
gs -q -dBATCH -dNOPAUSE -dSAFER -sDEVICE=png16m -r40 -sOutputFile="$D/image.png" "$PDF" &&
  gs -q -dBATCH -dNOPAUSE -dSAFER -sDEVICE=jpeg -r40 -sOutputFile="$D/image.jpg" "$PDF" ||
  fail "gs could not make the image samples"
chmod 0644 "$D/text.txt" "$D/image.png" "$D/image.jpg"

count=0
for doc in "$PDF" "$D/text.txt" "$D/image.png" "$D/image.jpg"; do
  count=$((count + 1))
  OUT=$(lp -U "$USER_NAME" -d KCPS -t "cups queue test $count" "$doc" 2>&1) || fail "lp $doc: $OUT"
  echo "$OUT"
  poll_for 600 sh -c "[ \$(grep -c '^job ' '$D/serve.out') -ge $count ]" ||
    fail "$(basename "$doc"): no job reached the virtual printer in 60 s"
  LINE=$(grep '^job ' "$D/serve.out" | sed -n "${count}p")
  echo "spooled $(basename "$doc"): $LINE"
  set -- $LINE
  [ "$4" -ge 1 ] || fail "$(basename "$doc"): pages: got $4, expected >= 1"
  [ "$6" = "$USER_UID" ] || fail "$(basename "$doc"): owner uid: got $6, expected $USER_UID ($USER_NAME)"
  [ -f "$D/spool/$USER_UID/$2.pdf" ] || fail "no spooled file $D/spool/$USER_UID/$2.pdf"
  head -c 5 "$D/spool/$USER_UID/$2.pdf" | grep -q '%PDF-' ||
    fail "$(basename "$doc"): spooled file is not a PDF"
done

# 5. CUPS used Create-Job + Send-Document (multiple-operation jobs), and
# sees every job finished (the printer reports them completed).
grep -q "Create-Job -> successful-ok" "$D/serve.out" &&
  grep -q "Send-Document -> successful-ok" "$D/serve.out" ||
  fail "CUPS did not send Create-Job and Send-Document"
poll_for 600 sh -c '[ "$(lpstat -W completed -o KCPS | grep -c KCPS)" -ge 4 ]' ||
  fail "CUPS did not see the 4 jobs completed within 60 s"
if lpstat -o KCPS 2>/dev/null | grep -q KCPS; then
  fail "a job is still queued in CUPS"
fi
echo "PASS: lp -d KCPS delivered a PDF, a text file, a PNG and a JPEG as PDFs owned by $USER_NAME"
exit 0
