#!/usr/bin/env bash
# `make run`: the demo on this machine. Starts kcps-server (demo tree) on
# 127.0.0.1:8443, kcpsd --user for the invoking account on 5570-5572, the
# system cupsd when it is installed but not running, and the driverless queue
# KCPS. Stays in the foreground; Ctrl-C stops what it started. Data stays in
# run/ (spooled jobs are never removed).
set -u
build=${1:-build}
top=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "$build" && pwd)
run="$top/run"
# shellcheck source=../tests/integration/lib.sh
. "$top/tests/integration/lib.sh"

server_bin="$build/server-stub/kcps-server"
kcpsd_bin="$build/client/kcpsd"
kcps_bin="$build/client/kcps"
mfp_bin="$build/server-stub/mfp/kcps-mfp-sim"

stop() {
  echo
  lib_log "stopping what make run started (spooled jobs and data stay in $run)"
  lib_stop_all
  exit 0
}
trap stop INT TERM

fail() {
  echo "make run: $*" >&2
  lib_dump_logs
  lib_stop_all
  exit 1
}

for port in 8443 5570 5571 5572; do
  port_in_use "$port" && fail "port $port is already in use (another make run?)"
done

mkdir -p "$run/server" "$run/client"
chmod 0700 "$run/server" "$run/client"
chmod 0711 "$run"

# 1. The reference server with its demo organization.
lib_log "starting kcps-server on https://127.0.0.1:8443 (data in $run/server)"
start_kcps_server "$server_bin" "$run/server" "$run/server/kcps-server.log" 127.0.0.1:8443 ||
  fail "kcps-server did not start"
creds=$(grep -E '(password|device secret): ' "$run/server/kcps-server.log" || true)
if [ -n "$creds" ]; then
  echo "Demo accounts (generated now, shown once; also in $run/server/demo-credentials.txt):"
  printf '%s\n' "$creds" | grep -v 'device secret' | sed 's/^/  /'
else
  echo "Demo accounts exist already: their passwords are in $run/server/demo-credentials.txt"
fi

# 2. The service for the invoking account (under sudo: the account that ran
# sudo, not root), on the fixed ports. It trusts the server's certificate,
# copied beside its own folders (the server's folder is root's alone).
account=$(id -un)
cp "$run/server/server.crt" "$run/server-ca.crt"
chmod 0644 "$run/server-ca.crt"
if [ "$(id -u)" -eq 0 ] && [ -n "${SUDO_USER:-}" ] && [ "$SUDO_USER" != root ]; then
  account=$SUDO_USER
  mkdir -p "$run/client/spool" "$run/client/state"
  chown -R "$SUDO_USER:" "$run/client"
  # exec keeps the pid, so stopping the wrapper stops kcpsd.
  printf '#!/bin/sh\nexec setpriv --reuid=%s --regid=%s --init-groups %s "$@"\n' \
    "$SUDO_USER" "$(id -g "$SUDO_USER")" "$kcpsd_bin" >"$run/kcpsd-as-user"
  chmod 0700 "$run/kcpsd-as-user"
  kcpsd_bin="$run/kcpsd-as-user"
fi
kcpsd_admin=$(dirname "$kcps_bin")/kcpsd   # the queue is installed with the caller's rights
lib_log "starting kcpsd --user for $account on 5570 (IPP), 5571 (pull), 5572 (local API)"
start_kcpsd "$kcpsd_bin" "$run/client" "$KCPS_SERVER_URL" "$run/server-ca.crt" \
  5570 5571 5572 || fail "kcpsd did not start"

# 3. The system's cupsd, and the driverless queue KCPS on our printer.
unset CUPS_SERVER
system_cupsd_ready() { lpstat -r 2>/dev/null | grep -q "is running"; }
if command -v cupsd >/dev/null && ! system_cupsd_ready; then
  if [ "$(id -u)" -eq 0 ]; then
    lib_log "starting cupsd (installed but not running)"
    mkdir -p /run/cups
    lib_start cupsd "$run/cupsd.log" cupsd -f
    wait_for 20 "cupsd" system_cupsd_ready || fail "cupsd did not start"
  else
    echo "cupsd is not running; start it as root (cupsd), then: $kcpsd_admin --install-queue"
  fi
fi
if system_cupsd_ready; then
  # Through libcups (CUPS-Add-Modify-Printer), as lpadmin -m everywhere would.
  if "$kcpsd_admin" --install-queue --ipp-port 5570 2>"$run/install-queue.log"; then
    lib_log "queue KCPS -> ipp://localhost:5570/ipp/print is ready"
  else
    echo "kcpsd --install-queue could not add the queue KCPS: $(cat "$run/install-queue.log")" >&2
  fi
fi

cat <<EOT

Ready. Try, in another terminal:
  $kcps_bin login alice@a.test          # her password is above
  lp -d KCPS /usr/share/cups/data/default-testpage.pdf
  $kcps_bin jobs
  $(dirname "$(dirname "$kcps_bin")")/ui/kcps-tray &   # the tray, in a desktop session
  $mfp_bin --server $KCPS_SERVER_URL --server-ca $run/server/server.crt \\
      --device MFP-1 --secret-file $run/server/MFP-1.secret jobs --pin 4321
  $mfp_bin --server $KCPS_SERVER_URL --server-ca $run/server/server.crt \\
      --device MFP-1 --secret-file $run/server/MFP-1.secret print JOB --pin 4321 \\
      --to ipp://HOST:PORT/ipp/print      # a real printer, or: ippeveprinter -p 8631 Test
Ctrl-C stops everything started here.
EOT

# Stay in the foreground until Ctrl-C, or until one of ours dies.
while :; do
  for pid in "${LIB_PIDS[@]}"; do
    kill -0 "$pid" 2>/dev/null || fail "a process stopped unexpectedly (pid $pid)"
  done
  sleep 1 &
  wait $!
done
