#!/bin/bash
# Integration test of the lockout's answer (issue 6: "a locked account is
# told when to retry", without telling whether it exists), through kcpsd's
# desktop login against a real kcps-server --demo, on free loopback ports:
#  - two wrong passwords through kcpsd's POST /v1/login: 401
#    invalid_credentials; the third, by `kcps login`, says "too many failed
#    attempts; try again after HH:MM" (exit 1);
#  - then even the right password: kcpsd answers 401 account_locked with
#    retry_after (30 min at most), retry_at (RFC 3339) and Retry-After;
#  - an unknown address locks the same way after three tries, with an
#    answer of the same shape and words; another unknown address is not
#    locked by it;
#  - the unknown address is in neither log in clear.
# Usage: lockout.sh BUILD_DIR SOURCE_DIR. Exit 0 pass, 1 fail.
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
  [ -x "$bin" ] || { echo "lockout: FAIL: $bin is not built" >&2; exit 1; }
done
for tool in curl jq; do
  command -v "$tool" >/dev/null || { echo "lockout: FAIL: $tool is not installed" >&2; exit 1; }
done

lib_test_begin lockout

# No keyring here: kcps must not find the caller's session bus.
export HOME=$TMP/home XDG_RUNTIME_DIR=$TMP/run XDG_STATE_HOME=$TMP/home/.local/state
mkdir -p "$HOME" "$XDG_RUNTIME_DIR"
chmod 0700 "$HOME" "$XDG_RUNTIME_DIR"
unset DBUS_SESSION_BUS_ADDRESS DISPLAY WAYLAND_DISPLAY

DATA=$TMP/server
start_kcps_server "$SERVER_BIN" "$DATA" "$TMP/kcps-server.log" ||
  abort "kcps-server prints its listening line"
ALICE_PASSWORD=$(demo_credential "$DATA" "alice@a.test password")
[ -n "$ALICE_PASSWORD" ] || abort "alice's demo password"
start_kcpsd "$KCPSD_BIN" "$TMP/kcpsd" "$KCPS_SERVER_URL" "$DATA/server.crt" ||
  abort "kcpsd prints its ready line"
pass "kcps-server and kcpsd ready"

kcps() { "$KCPS_BIN" --port "$KCPSD_LOCAL_PORT" "$@"; }
# login EMAIL PASSWORD: POST /v1/login to kcpsd; prints the status; the
# answer goes to $TMP/answer, the headers to $TMP/headers.
login() {
  jq -cn --arg e "$1" --arg p "$2" '{email: $e, password: $p}' |
    curl -sS -o "$TMP/answer" -D "$TMP/headers" -w '%{http_code}' \
      -H 'Content-Type: application/json' --data-binary @- \
      "http://127.0.0.1:$KCPSD_LOCAL_PORT/v1/login"
}
retry_after_header() {
  sed -n 's/^[Rr]etry-[Aa]fter: *\([0-9]*\).*$/\1/p' "$TMP/headers" | head -n1
}
# check_locked WHAT: the last answer is kcpsd's lock, fully formed.
check_locked() {
  local after at header
  check_eq "$1: account_locked" "$(jq -r .error "$TMP/answer")" account_locked
  after=$(jq -r '.retry_after | numbers' "$TMP/answer")
  if [ -n "$after" ] && [ "$after" -ge 1 ] && [ "$after" -le 1800 ]; then
    pass "$1: retry_after $after s (30 min at most)"
  else
    fail "$1: retry_after '$after', expected 1..1800"
  fi
  header=$(retry_after_header)
  check_eq "$1: Retry-After equals retry_after" "$header" "$after"
  at=$(jq -r '.retry_at | strings' "$TMP/answer")
  if [[ "$at" =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$ ]] &&
    [ "$(date -u -d "$at" +%s)" -gt "$(date -u +%s)" ]; then
    pass "$1: retry_at $at (RFC 3339, in the future)"
  else
    fail "$1: retry_at '$at'"
  fi
  check_eq "$1: the message names the time" "$(jq -r .message "$TMP/answer")" \
    "too many failed attempts; try again after $at"
}
# The answer with its times blanked: what known and unknown must share.
shape() { jq -cS '.retry_after = 0 | .retry_at = "" | .message |= sub("after .*"; "after")' \
  "$TMP/answer"; }

# A known account: two wrong passwords through kcpsd, the third by kcps.
for i in 1 2; do
  check_eq "alice, wrong password $i: 401" "$(login alice@a.test Wrong-passw0rd!)" 401
  check_eq "alice, wrong password $i: invalid_credentials" "$(jq -r .error "$TMP/answer")" \
    invalid_credentials
  check_eq "alice, wrong password $i: no Retry-After" "$(retry_after_header)" ""
done
out=$(printf '%s\n' 'Wrong-passw0rd!' | kcps login alice@a.test 2>&1)
check_eq "kcps login, third wrong password: exit 1" "$?" 1
if [[ "$out" =~ kcps:\ too\ many\ failed\ attempts\;\ try\ again\ after\ ([0-9]{4}-[0-9]{2}-[0-9]{2}\ )?[0-9]{2}:[0-9]{2}$ ]]; then
  pass "kcps login says when to try again ($out)"
else
  fail "kcps login's words: '$out'"
fi

check_eq "alice, the right password while locked: 401" \
  "$(login alice@a.test "$ALICE_PASSWORD")" 401
check_locked "alice while locked"
KNOWN_SHAPE=$(shape)
out=$(printf '%s\n' "$ALICE_PASSWORD" | kcps login alice@a.test 2>&1)
check_eq "kcps login, right password while locked: exit 1" "$?" 1
case "$out" in *"try again after"*) pass "kcps login while locked says when" ;;
  *) fail "kcps login while locked: '$out'" ;; esac

# An unknown address: the same three steps, the same answer.
for i in 1 2; do
  check_eq "unknown, try $i: 401" "$(login nobody@x.test Wrong-passw0rd!)" 401
  check_eq "unknown, try $i: invalid_credentials" "$(jq -r .error "$TMP/answer")" \
    invalid_credentials
done
check_eq "unknown, try 3: 401" "$(login nobody@x.test Wrong-passw0rd!)" 401
check_locked "unknown after three tries"
check_eq "unknown and known locks answer alike (times aside)" "$(shape)" "$KNOWN_SHAPE"
check_eq "another unknown address is not locked by it" \
  "$(login somebody@x.test Wrong-passw0rd!; jq -r .error "$TMP/answer")" \
  "401invalid_credentials"

if grep -qiF "nobody@x.test" "$TMP/kcps-server.log" "$TMP/kcpsd/kcpsd.log"; then
  fail "the unknown address is in a log in clear"
else
  pass "the unknown address is in no log"
fi
