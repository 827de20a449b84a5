#!/bin/bash
# Printer discovery (issue 5): kcpsd lists the IPP and IPPS printers that
# DNS-SD announces (GET /v1/printers, `kcps printers`), asks one for its
# capabilities (`kcps printer show`), follows printers that go away, says
# "unavailable" (not an error) while avahi-daemon is down, and a job
# released to a discovered URI prints. Runs in a private network and mount
# namespace of its own (only its loopback; its own system D-Bus and
# avahi-daemon), so that no other test's printers are seen and none of
# ours leave the machine.
# Usage: discover.sh BUILD_DIR [SOURCE_DIR]. Exit 0 pass, 1 fail, 77 skip.
set -u

BUILD=${1:?usage: discover.sh BUILD_DIR}
KCPSD="$BUILD/client/kcpsd"
KCPS="$BUILD/client/kcps"
PDF=/usr/share/cups/data/default-testpage.pdf
. "$(dirname "$0")/lib.sh"

for tool in ippeveprinter ipptool avahi-daemon dbus-daemon jq; do
  command -v "$tool" >/dev/null 2>&1 || { echo "FAIL: $tool not installed (make test installs it)"; exit 1; }
done
[ -x "$KCPSD" ] && [ -x "$KCPS" ] || { echo "SKIP: kcpsd/kcps not built"; exit 77; }
[ "$(id -u)" = 0 ] || { echo "SKIP: a private network namespace, D-Bus and avahi need root"; exit 77; }
[ -r "$PDF" ] || { echo "SKIP: no $PDF"; exit 77; }

# Into private network + mount namespaces: loopback up, /run/dbus and
# /run/avahi-daemon our own tmpfs.
if [ -z "${DISCOVER_NS:-}" ]; then
  unshare -n -m --propagation private true 2>/dev/null ||
    { echo "SKIP: cannot create network namespaces here"; exit 77; }
  DISCOVER_NS=1 exec unshare -n -m --propagation private "$0" "$@"
fi
ip link set lo up || { echo "FAIL: cannot bring up lo in the namespace"; exit 1; }
mkdir -p /run/dbus /run/avahi-daemon
mount -t tmpfs -o mode=0755 kcps-disc-dbus /run/dbus &&
  mount -t tmpfs -o mode=0755 kcps-disc-avahi /run/avahi-daemon ||
  { echo "FAIL: cannot mount private /run/dbus and /run/avahi-daemon"; exit 1; }

D=$(mktemp -d /tmp/kcps-discover.XXXXXX)
chmod 0700 "$D"
cleanup() {
  lib_stop_all
  # avahi-daemon daemonized: stop it by its pid file (our private /run).
  [ -f /run/avahi-daemon/pid ] && stop_pid "$(cat /run/avahi-daemon/pid)"
  rm -rf "$D"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
fail() {
  echo "FAIL: $*"
  lib_dump_logs all
  exit 1
}

start_dbus_avahi "$D" || fail "D-Bus/avahi did not start"

# Printer A: PDF, two-sided, IPPS keys of its own; ippeveprinter announces
# itself as _ipp._tcp and _ipps._tcp. Printer B: PWG raster only, one-sided.
PA=$(free_port) && PB=$(free_port) || fail "no free ports"
mkdir -p "$D/a/keys" "$D/b/keys"
lib_start ippeve-a "$D/a/log" ippeveprinter -f application/pdf,image/pwg-raster -2 \
  -M Kcps -m "Disc A" -l "Room 1" -K "$D/a/keys" -p "$PA" -d "$D/a" -n localhost kcps-disc-a
PRN_A=$LIB_PID
lib_start ippeve-b "$D/b/log" ippeveprinter -f image/pwg-raster \
  -M Kcps -m "Disc B" -K "$D/b/keys" -p "$PB" -d "$D/b" -n localhost kcps-disc-b
PRN_B=$LIB_PID
wait_for 30 "printer A" ipp_printer_ready "ipp://127.0.0.1:$PA/ipp/print" || fail "printer A not ready"
wait_for 30 "printer B" ipp_printer_ready "ipp://127.0.0.1:$PB/ipp/print" || fail "printer B not ready"

# A plain-IPP-only service (_ipp._tcp alone, pointing at B's port) and one
# whose rp is not a URI path (must not be listed), when avahi-publish is here.
PUBLISH=0
if command -v avahi-publish >/dev/null 2>&1; then
  PUBLISH=1
  lib_start publish-plain "$D/plain.log" avahi-publish -s kcps-plain _ipp._tcp "$PB" \
    "rp=ipp/print" "ty=Plain Printer" "note=Hall"
  wait_for_line 20 "$D/plain.log" 'Established' "$LIB_PID" >/dev/null || fail "avahi-publish (plain)"
  lib_start publish-evil "$D/evil.log" avahi-publish -s kcps-evil _ipp._tcp "$PB" \
    "rp=../x?y" "ty=Evil"
  wait_for_line 20 "$D/evil.log" 'Established' "$LIB_PID" >/dev/null || fail "avahi-publish (evil)"
fi

mkdir -p "$D/kcpsd/spool" "$D/kcpsd/state"
chmod 0700 "$D/kcpsd" "$D/kcpsd/spool" "$D/kcpsd/state"
lib_start kcpsd "$D/kcpsd/log" env G_MESSAGES_DEBUG=kcpsd "$KCPSD" --user \
  --spool "$D/kcpsd/spool" --state "$D/kcpsd/state" --ipp-port 0 --pull-port 0 \
  --pull-listen 127.0.0.1 --pull-host 127.0.0.1 --local-port 0
line=$(wait_for_line 30 "$D/kcpsd/log" 'kcpsd: ready ipp=' "$LIB_PID") || fail "kcpsd did not start"
IPP_PORT=$(printf '%s\n' "$line" | sed -n 's/.*ipp=\([0-9]*\).*/\1/p')
export KCPS_LOCAL_PORT=$(printf '%s\n' "$line" | sed -n 's/.*local=\([0-9]*\).*/\1/p')

URI_A="ipps://127.0.0.1:$PA/ipp/print"
URI_A_PLAIN="ipp://127.0.0.1:$PA/ipp/print"
URI_B="ipps://127.0.0.1:$PB/ipp/print"
# printer NAME: the listed printer NAME as JSON ("null" when not listed).
printer() { "$KCPS" printers --json | jq -c --arg n "$1" '[.printers[] | select(.name == $n)][0]'; }
listed() { [ "$(printer "$1")" != null ]; }
not_listed() { "$KCPS" printers --json >/dev/null && ! listed "$1"; }

# 1. Both printers listed, each once, with its IPPS URI (preferred) and both URIs.
wait_for 30 "A and B listed" sh -c "\"$KCPS\" printers --json | jq -e '[.printers[].name] | index(\"kcps-disc-a\") and index(\"kcps-disc-b\")'" ||
  fail "A and B not both listed: $("$KCPS" printers --json)"
"$KCPS" printers --json | jq -e '.discovery == "available"' >/dev/null || fail "discovery is not available: $("$KCPS" printers --json)"
A=$(printer kcps-disc-a)
[ "$(jq -r .uri <<<"$A")" = "$URI_A" ] || fail "A's uri: got $(jq -r .uri <<<"$A"), expected $URI_A"
[ "$(jq -r .secure <<<"$A")" = true ] || fail "A is not secure: $A"
jq -e --arg u "$URI_A_PLAIN" '.uris | index($u)' <<<"$A" >/dev/null || fail "A's ipp:// URI missing: $A"
[ "$(jq -r '.uris | length' <<<"$A")" = 2 ] || fail "A announced with other than 2 URIs: $A"
[ "$(jq -r .make_and_model <<<"$A")" = "Kcps Disc A" ] || fail "A's make_and_model: $A"
[ "$(jq -r .location <<<"$A")" = "Room 1" ] || fail "A's location: $A"
B=$(printer kcps-disc-b)
[ "$(jq -r .uri <<<"$B")" = "$URI_B" ] || fail "B's uri: got $(jq -r .uri <<<"$B"), expected $URI_B"
[ "$("$KCPS" printers --json | jq '[.printers[] | select(.name == "kcps-disc-a")] | length')" = 1 ] ||
  fail "A listed more than once"
"$KCPS" printers | grep -q "kcps-disc-a .*Kcps Disc A .*$URI_A" || fail "kcps printers does not show A: $("$KCPS" printers)"

if [ "$PUBLISH" = 1 ]; then
  wait_for 30 "plain listed" listed kcps-plain || fail "the plain IPP service is not listed: $("$KCPS" printers --json)"
  P=$(printer kcps-plain)
  [ "$(jq -r .uri <<<"$P")" = "ipp://127.0.0.1:$PB/ipp/print" ] && [ "$(jq -r .secure <<<"$P")" = false ] ||
    fail "the plain IPP service: $P"
  [ "$(jq -r .location <<<"$P")" = Hall ] || fail "the plain service's location: $P"
  listed kcps-evil && fail "a service whose rp is not a path was listed: $(printer kcps-evil)"
fi

# 2. Capabilities from Get-Printer-Attributes.
CA=$("$KCPS" printer show "$URI_A" --json) || fail "printer show A"
jq -e '.capabilities.pdf == true and .capabilities.duplex == true and
  (.capabilities.formats | index("application/pdf")) and .capabilities.sends == "application/pdf" and
  .capabilities.copies.min == 1 and .capabilities.copies.max >= 1 and
  (.capabilities.resolutions | length) >= 1 and .discovered == true and
  .certificate == "unpinned" and .name == "kcps-disc-a"' <<<"$CA" >/dev/null ||
  fail "A's capabilities: $CA"
CB=$("$KCPS" printer show "$URI_B" --json) || fail "printer show B"
jq -e '.capabilities.pdf == false and .capabilities.duplex == false and
  .capabilities.sends == "image/pwg-raster" and .capabilities.sends_dpi > 0 and
  (.capabilities.formats | index("application/pdf") | not)' <<<"$CB" >/dev/null ||
  fail "B's capabilities: $CB"
"$KCPS" printer show "$URI_A_PLAIN" | grep -q "Two-sided: *yes" || fail "printer show (text): $("$KCPS" printer show "$URI_A_PLAIN")"
# Not discovered, not there: a clear refusal, no hang.
DEAD=$(free_port) || fail "port"
msg=$("$KCPS" printer show "ipp://127.0.0.1:$DEAD/ipp/print" 2>&1) && fail "an absent printer answered"
echo "$msg" | grep -q "cannot connect" || fail "no clear message for an absent printer: $msg"
msg=$("$KCPS" printer show "http://127.0.0.1/x" 2>&1) && fail "a non-IPP URI was accepted"
echo "$msg" | grep -q "ipp://" || fail "no clear message for a bad URI: $msg"

# 3. A printer that stops disappears; the others stay. Whoever listens on
# kcpsd's push channel (the tray) hears "printers" when the list changes.
lib_start sse "$D/events.sse" curl -sS -N "http://127.0.0.1:$KCPS_LOCAL_PORT/v1/events"
wait_for_line 20 "$D/events.sse" '^event: ready$' "$LIB_PID" >/dev/null ||
  fail "GET /v1/events did not answer ready"
printers_events() { grep -c '^event: printers$' "$D/events.sse"; }
more_printers_events() { [ "$(printers_events)" -gt "$1" ]; }
stop_pid "$PRN_B"
wait_for 30 "B gone" not_listed kcps-disc-b || fail "B is still listed after it stopped: $("$KCPS" printers --json)"
listed kcps-disc-a || fail "A went away with B"
wait_for 20 "a printers event" more_printers_events 0 ||
  fail "no printers event when B went away: $(cat "$D/events.sse")"

# 4. A job released to A's discovered URI completes (IPPS: pinned on first use).
"$KCPS" jobs --json >/dev/null || fail "kcps jobs"
ipptool -q -tf "$PDF" "ipp://127.0.0.1:$IPP_PORT/ipp/print" print-job.test >/dev/null 2>&1 || fail "spooling"
J=$("$KCPS" jobs --json | jq -r '.[0].id')
[ -n "$J" ] && [ "$J" != null ] || fail "no job spooled"
"$KCPS" release "$J" --printer "$(jq -r .uri <<<"$(printer kcps-disc-a)")" --wait || fail "release to A's discovered URI"
[ "$("$KCPS" jobs --json | jq -r --arg id "$J" '.[] | select(.id == $id) | .state')" = printed ] ||
  fail "the job is not printed: $("$KCPS" jobs --json)"
"$KCPS" printer show "$URI_A" --json | jq -e '.certificate == "pinned"' >/dev/null ||
  fail "A's certificate is not reported pinned after the release"

# 5. avahi-daemon stops: an empty list that says discovery is unavailable
# (200, not an error); when it is back, new printers are found.
AVAHI_PID=$(cat /run/avahi-daemon/pid)
stop_pid "$AVAHI_PID"
unavailable() { "$KCPS" printers --json | jq -e '.discovery == "unavailable" and (.printers | length) == 0 and (.reason | length) > 0'; }
wait_for 30 "discovery unavailable" unavailable || fail "not reported unavailable: $("$KCPS" printers --json)"
"$KCPS" printers 2>&1 | grep -q "unavailable" || fail "kcps printers does not say unavailable"
avahi-daemon --daemonize --no-drop-root >"$D/avahi2.log" 2>&1 || fail "avahi-daemon did not start again"
wait_for 10 "avahi-daemon" avahi-daemon --check || fail "avahi-daemon not running again"
# ippeveprinter exits when avahi goes: a new printer, seen by the same kcpsd.
stop_pid "$PRN_A"
PC=$(free_port) || fail "port"
mkdir -p "$D/c/keys"
BEFORE_C=$(printers_events)
lib_start ippeve-c "$D/c/log" ippeveprinter -f application/pdf -M Kcps -m "Disc C" \
  -K "$D/c/keys" -p "$PC" -d "$D/c" -n localhost kcps-disc-c
wait_for 30 "C listed" listed kcps-disc-c || fail "C not found after avahi came back: $("$KCPS" printers --json)"
wait_for 20 "a printers event for C" more_printers_events "$BEFORE_C" ||
  fail "no printers event after C appeared (before: $BEFORE_C)"
[ "$(jq -r .uri <<<"$(printer kcps-disc-c)")" = "ipps://127.0.0.1:$PC/ipp/print" ] ||
  fail "C's uri: $(printer kcps-disc-c)"
"$KCPS" printers --json | jq -e '.discovery == "available"' >/dev/null || fail "discovery not available again"

echo "PASS: discovery (A and B listed with IPPS and IPP URIs, make/model, location$([ "$PUBLISH" = 1 ] && echo ", a plain _ipp service, a bad rp refused"); capabilities of PDF and raster printers; B gone when stopped, a printers event on kcpsd's push channel; release to A's discovered URI printed; unavailable while avahi is down, a new printer found after it came back)"
