#!/usr/bin/env bash
# The direct-print benchmark (issue 5): a 10-page PDF printed on an
# ippeveprinter, timed from the order to the printer's "completed".
#   ours:   a job held in kcpsd, `kcps release JOB --printer URI` until kcpsd
#           marks it printed (the printer said completed: Get-Job-Attributes);
#   anchor: `lp` of the same PDF to a private cupsd's driverless queue
#           (lpadmin -m everywhere) on the same ippeveprinter, until cupsd
#           lists the job completed (its ipp backend waits for the printer's
#           completed before it exits).
# Both are timed by the same 20 ms poll loop. The printer "prints" with a
# command that reads the document and exits (ippeveprinter's own simulation
# sleeps several random seconds a job, which would drown both figures).
# Rounds alternate, best of ROUNDS each (this machine is shared: load only
# slows a round down). Prints one line:
#   bench: direct-print-10-pages-s ours=S anchor=S ratio=R goal=<=0.8
# Runs in its own network and mount namespaces (loopback only; its own
# system D-Bus and avahi-daemon, which ippeveprinter needs). Needs root.
# Usage: tools/bench-direct.sh BUILD_DIR   (BENCH_ROUNDS, default 3)
set -uo pipefail

build=${1:?usage: tools/bench-direct.sh BUILD_DIR}
src=$(cd "$(dirname "$0")/.." && pwd)
case "$build" in /*) ;; *) build="$src/$build" ;; esac
ROUNDS=${BENCH_ROUNDS:-3}
PDF=/usr/share/cups/data/default-testpage.pdf
KCPSD="$build/client/kcpsd"
KCPS="$build/client/kcps"

if [ "$(id -u)" -ne 0 ]; then
  echo "tools/bench-direct.sh: needs root (namespaces, D-Bus, avahi and a private cupsd)" >&2
  exit 1
fi
for prog in "$KCPSD" "$KCPS"; do
  [ -x "$prog" ] || { echo "tools/bench-direct.sh: $prog is not built" >&2; exit 1; }
done
for tool in ippeveprinter ipptool cupsd lpadmin lp lpstat qpdf jq avahi-daemon dbus-daemon; do
  command -v "$tool" >/dev/null 2>&1 ||
    { echo "tools/bench-direct.sh: $tool is missing (make test installs it)" >&2; exit 1; }
done

if [ -z "${BENCH_DIRECT_NS:-}" ]; then
  BENCH_DIRECT_NS=1 exec unshare -n -m --propagation private "$0" "$@"
fi
ip link set lo up || exit 1
mkdir -p /run/dbus /run/avahi-daemon
mount -t tmpfs -o mode=0755 kcps-bench-dbus /run/dbus || exit 1
mount -t tmpfs -o mode=0755 kcps-bench-avahi /run/avahi-daemon || exit 1

# shellcheck source=../tests/integration/lib.sh
. "$src/tests/integration/lib.sh"

# On the disk, not tmpfs, as a real spool.
tmp=$(mktemp -d /var/tmp/kcps-bench-direct.XXXXXX)
# 0711: cupsd's filters run as lp and must get through to its TempDir and
# PPD below (kcpsd's own folder stays 0700).
chmod 0711 "$tmp"
cleanup() {
  local rc=$?
  [ "$rc" -ne 0 ] && lib_dump_logs
  lib_stop_all
  [ -f /run/avahi-daemon/pid ] && stop_pid "$(cat /run/avahi-daemon/pid)"
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
die() { echo "tools/bench-direct.sh: $*" >&2; exit 1; }

least() { awk -v a="$1" -v b="$2" 'BEGIN { print (a == "" || b + 0 < a + 0) ? b : a }'; }
now_ns() { date +%s%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b - a) / 1e9 }'; }

start_dbus_avahi "$tmp" || die "D-Bus/avahi did not start"

# The 10-page PDF.
qpdf --empty --pages "$PDF" "$PDF" "$PDF" "$PDF" "$PDF" "$PDF" "$PDF" "$PDF" "$PDF" "$PDF" -- \
  "$tmp/ten.pdf" || die "qpdf"
[ "$(qpdf --show-npages "$tmp/ten.pdf")" = 10 ] || die "the PDF has not 10 pages"

# The printer: takes PDF (and PWG raster), two-sided; "prints" by reading
# the document.
printf '#!/bin/sh\ncat "$1" >/dev/null\n' >"$tmp/print.sh"
chmod 0755 "$tmp/print.sh"
PP=$(free_port) || die "no free port"
mkdir -p "$tmp/printer/keys"
lib_start ippeveprinter "$tmp/printer/log" ippeveprinter -f application/pdf,image/pwg-raster -2 \
  -c "$tmp/print.sh" -K "$tmp/printer/keys" -p "$PP" -d "$tmp/printer" -n localhost kcps-bench
URI="ipp://127.0.0.1:$PP/ipp/print"
wait_for 30 "ippeveprinter" ipp_printer_ready "$URI" || die "ippeveprinter not ready"
# A second one that takes PWG raster only: both sides must rasterize.
PR=$(free_port) || die "no free port"
mkdir -p "$tmp/raster/keys"
lib_start ippeveprinter-raster "$tmp/raster/log" ippeveprinter -f image/pwg-raster \
  -c "$tmp/print.sh" -K "$tmp/raster/keys" -p "$PR" -d "$tmp/raster" -n localhost kcps-bench-raster
URI_R="ipp://127.0.0.1:$PR/ipp/print"
wait_for 30 "raster ippeveprinter" ipp_printer_ready "$URI_R" || die "raster ippeveprinter not ready"

# The anchor: a private cupsd with a driverless queue to it.
CP=$(free_port) || die "no free port"
start_cupsd "$tmp" "$CP" || die "cupsd did not start"
lpadmin -p BENCH -E -v "$URI" -m everywhere || die "lpadmin -m everywhere"
lpadmin -p BENCHR -E -v "$URI_R" -m everywhere || die "lpadmin -m everywhere (raster)"

# Ours: kcpsd without a server (direct printing needs none).
mkdir -p "$tmp/kcpsd/spool" "$tmp/kcpsd/state"
chmod 0700 "$tmp/kcpsd" "$tmp/kcpsd/spool" "$tmp/kcpsd/state"
lib_start kcpsd "$tmp/kcpsd/log" "$KCPSD" --user --spool "$tmp/kcpsd/spool" \
  --state "$tmp/kcpsd/state" --ipp-port 0 --pull-port 0 --pull-listen 127.0.0.1 \
  --pull-host 127.0.0.1 --local-port 0
line=$(wait_for_line 30 "$tmp/kcpsd/log" 'kcpsd: ready ipp=' "$LIB_PID") || die "kcpsd did not start"
IPP_PORT=$(printf '%s\n' "$line" | sed -n 's/.*ipp=\([0-9]*\).*/\1/p')
export KCPS_LOCAL_PORT
KCPS_LOCAL_PORT=$(printf '%s\n' "$line" | sed -n 's/.*local=\([0-9]*\).*/\1/p')

job_state() { "$KCPS" jobs --json | jq -r --arg id "$1" '.[] | select(.id == $id) | .state'; }
# poll_until SECONDS CMD...: CMD every 20 ms until it succeeds.
poll_until() {
  local deadline=$(($(date +%s) + $1))
  shift
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -gt "$deadline" ] && return 1
    sleep 0.02
  done
}

# round_ours URI: prints the seconds of one release (the job is held first, untimed).
round_ours() {
  local before id t0 t1
  before=$("$KCPS" jobs --json | jq -r '.[].id' | sort)
  ipptool -q -tf "$tmp/ten.pdf" "ipp://127.0.0.1:$IPP_PORT/ipp/print" print-job.test >/dev/null 2>&1 ||
    return 1
  id=$(comm -13 <(echo "$before") <(sort <("$KCPS" jobs --json | jq -r '.[].id')) | head -n1)
  [ -n "$id" ] || return 1
  t0=$(now_ns)
  "$KCPS" release "$id" --printer "$1" >/dev/null || return 1
  poll_until 300 sh -c "[ \"\$(\"$KCPS\" jobs --json | jq -r --arg id $id '.[] | select(.id == \$id) | .state')\" = printed ]" ||
    return 1
  t1=$(now_ns)
  secs "$t0" "$t1"
}

# round_anchor QUEUE: prints the seconds of one `lp` to completed.
round_anchor() {
  local t0 t1 req
  t0=$(now_ns)
  req=$(lp -d "$1" "$tmp/ten.pdf" | sed -n 's/^request id is \([^ ]*\).*/\1/p') || return 1
  [ -n "$req" ] || return 1
  poll_until 300 sh -c "lpstat -W completed -o $1 | grep -q '^$req '" || return 1
  t1=$(now_ns)
  secs "$t0" "$t1"
}

# measure NAME URI QUEUE: one of each first, not counted (filters loaded,
# connections made), then ROUNDS alternating; prints the bench line.
measure() {
  local name=$1 uri=$2 queue=$3 ours="" anchor="" o a r note="" i
  round_ours "$uri" >/dev/null || die "warm-up release to $uri failed (see $tmp/kcpsd/log)"
  round_anchor "$queue" >/dev/null || die "warm-up lp to $queue failed (see $tmp/cups/logs/error_log)"
  for ((i = 1; i <= ROUNDS; i++)); do
    o=$(round_ours "$uri") || die "release round $i to $uri failed"
    a=$(round_anchor "$queue") || die "lp round $i to $queue failed"
    lib_log "$name round $i: ours ${o}s anchor ${a}s"
    ours=$(least "$ours" "$o")
    anchor=$(least "$anchor" "$a")
  done
  r=$(awk -v a="$ours" -v b="$anchor" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "nan" }')
  awk -v r="$r" 'BEGIN { exit !(r + 0 > 0.8) }' && note=" (over goal)"
  echo "bench: $name ours=$ours anchor=$anchor ratio=$r goal=<=0.8$note"
}
# The figure of the issue: a PDF printer (PDF goes as PDF on both sides;
# CUPS runs pdftopdf). Then, for information, a raster-only printer: we
# render with poppler + cairo, CUPS with cups-filters.
measure direct-print-10-pages-s "$URI" BENCH
measure direct-print-raster-10-pages-s "$URI_R" BENCHR
