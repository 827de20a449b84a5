#!/usr/bin/env bash
# `make bench`: each figure is measured side by side with its anchor in the
# same run and printed as a ratio, because this machine is shared and noisy
# (absolute figures from different runs do not compare). One line a figure:
#   bench: NAME ours=… anchor=… ratio=… goal=…
# The goals are what we aim at, not assertions: a figure below its goal is
# printed (with "below goal"), never a failure; the script fails only when a
# benchmark cannot run. Usage: tools/bench.sh BUILD_DIR
set -euo pipefail

build=${1:?usage: tools/bench.sh BUILD_DIR}
src=$(cd "$(dirname "$0")/.." && pwd)
case "$build" in /*) ;; *) build="$src/$build" ;; esac

# Sizes: each round runs each side for a fraction of a second to a few
# seconds; `make bench` stays well under a minute. Ours and the anchor run
# alternately, ROUNDS times each, both servers up throughout, and each side
# keeps its best round: other tenants' load only ever slows a round down,
# and alternating gives both sides the same chances (every round is logged).
ROUNDS=${BENCH_ROUNDS:-3}
IPP_JOBS=${BENCH_IPP_JOBS:-500}
IPP_CONCURRENCY=${BENCH_IPP_CONCURRENCY:-4}
PULL_TRANSFERS=${BENCH_PULL_TRANSFERS:-64}
PULL_PARALLEL=${BENCH_PULL_PARALLEL:-8}
PDF=/usr/share/cups/data/default-testpage.pdf

if [ "$(id -u)" -ne 0 ]; then
  echo "tools/bench.sh: needs root (the cupsd anchor runs a private cupsd); run it as root" >&2
  exit 1
fi
"$src/tools/install-deps.sh" nginx-light curl cups-daemon cups-client

# shellcheck source=../tests/integration/lib.sh
. "$src/tests/integration/lib.sh"

for prog in ipp/kcps-ipp-serve tests/bench/bench-ipp-ingest tests/bench/bench-https-serve \
  tests/bench/bench-login-storm tests/bench/bench-raster-pdf; do
  [ -x "$build/$prog" ] || { echo "tools/bench.sh: $build/$prog is not built" >&2; exit 1; }
done
[ -r "$PDF" ] || { echo "tools/bench.sh: $PDF is missing (package cups-daemon)" >&2; exit 1; }

# On the disk, not tmpfs: our spool's fsyncs must cost what they cost.
tmp=$(mktemp -d /var/tmp/kcps-bench.XXXXXX)
chmod 0700 "$tmp"
cleanup() {
  local rc=$?
  [ "$rc" -ne 0 ] && lib_dump_logs
  lib_stop_all
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# best A B: the larger of two figures ("" counts as none).
best() { awk -v a="$1" -v b="$2" 'BEGIN { print (a == "" || b + 0 > a + 0) ? b : a }'; }

# ratio OURS ANCHOR: OURS/ANCHOR with two decimals.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "nan" }'; }

# report NAME OURS ANCHOR GOAL_MIN: the bench line; "below goal" when ratio < GOAL_MIN.
report() {
  local r note=""
  r=$(ratio "$2" "$3")
  awk -v r="$r" -v g="$4" 'BEGIN { exit !(r + 0 < g + 0) }' && note=" (below goal)"
  echo "bench: $1 ours=$2 anchor=$3 ratio=$r goal=>=$4$note"
}

# ingest SIDE URI: runs the client, prints jobs_per_s (its whole line is logged on stderr).
ingest() {
  local out
  out=$("$build/tests/bench/bench-ipp-ingest" "$2" "$PDF" "$IPP_JOBS" "$IPP_CONCURRENCY") || return 1
  lib_log "  $1: $out"
  printf '%s\n' "$out" | sed -n 's/.*jobs_per_s=\([0-9.]*\).*/\1/p'
}

# ---- 1. IPP ingest: Print-Job of a 110 KB PDF, accepted and answered -----
# Ours: the virtual printer alone (kcps-ipp-serve) answers each Print-Job
# only once the document is written, fsync'd (file and folder), checked by
# poppler and recorded in the spool database. Anchor: cupsd taking the same
# jobs into a stopped queue, its cheapest path (no filter runs), and it
# does not fsync (SyncOnClose defaults to No). So the anchor does strictly
# less work per job; the goal asks ours to keep at least half its rate:
# durability and the PDF check may cost, but not more than cupsd's whole
# request handling again. Same client, same document, same concurrency.
mkdir -p "$tmp/ours"
lib_start kcps-ipp-serve "$tmp/ours/serve.log" \
  "$build/ipp/kcps-ipp-serve" --spool "$tmp/ours/spool" --port 0
line=$(wait_for_line 20 "$tmp/ours/serve.log" '^port [0-9]+' "$LIB_PID")
ours_uri="ipp://127.0.0.1:${line#port }/ipp/print"

cups_port=$(free_port)
start_cupsd "$tmp/anchor" "$cups_port"
# start_cupsd logs at debug level (for tests), which more than halves
# cupsd's rate here; a benchmark anchor runs as deployed, so restart it at
# the default level.
stop_pid "$(lib_pid_of cupsd)"
sed -i 's/^LogLevel .*/LogLevel warn/' "$tmp/anchor/cups/cupsd.conf"
lib_start cupsd "$tmp/anchor/cups/logs/cupsd.out" \
  cupsd -f -c "$tmp/anchor/cups/cupsd.conf" -s "$tmp/anchor/cups/cups-files.conf"
wait_for 20 "cupsd on port $cups_port" cupsd_ready "127.0.0.1:$cups_port"
# A raw queue to a port nobody listens on, disabled: jobs are accepted and
# wait; no backend or filter ever runs.
dead_port=$(free_port)
lpadmin -h "127.0.0.1:$cups_port" -p bench -E -v "ipp://127.0.0.1:$dead_port/ipp/print" -m raw \
  2>"$tmp/anchor/lpadmin.err" || { cat "$tmp/anchor/lpadmin.err" >&2; exit 1; }
cupsdisable -h "127.0.0.1:$cups_port" bench
anchor_uri="ipp://127.0.0.1:$cups_port/printers/bench"

ours_ipp="" anchor_ipp=""
for ((round = 1; round <= ROUNDS; round++)); do
  lib_log "ipp-ingest round $round/$ROUNDS: $IPP_JOBS jobs, concurrency $IPP_CONCURRENCY"
  r=$(ingest ours "$ours_uri")
  ours_ipp=$(best "$ours_ipp" "$r")
  r=$(ingest anchor "$anchor_uri")
  anchor_ipp=$(best "$anchor_ipp" "$r")
done
# Every job must really have been taken, on both sides.
spooled=$(grep -c '^job ' "$tmp/ours/serve.log" || true)
[ "$spooled" -eq $((ROUNDS * IPP_JOBS)) ] || {
  echo "tools/bench.sh: our printer reported $spooled spooled jobs, expected $((ROUNDS * IPP_JOBS))" >&2
  exit 1
}
queued=$(lpstat -h "127.0.0.1:$cups_port" -o bench | wc -l)
[ "$queued" -eq $((ROUNDS * IPP_JOBS)) ] || {
  echo "tools/bench.sh: cupsd holds $queued jobs, expected $((ROUNDS * IPP_JOBS))" >&2
  exit 1
}
lib_stop_all
report ipp-ingest-jobs-per-s "$ours_ipp" "$anchor_ipp" 0.5

# ---- 2. Pull: a 10 MiB document streamed over TLS -------------------------
# Ours: kcps_http_server answering with kcps_http_respond_fd (the 5571 pull
# path, TLS from libmicrohttpd/GnuTLS). Anchor: nginx-light over TLS
# (OpenSSL, sendfile off under TLS) serving the same file. Same client:
# one curl running PULL_TRANSFERS GETs, PULL_PARALLEL at a time, on TLS 1.3
# with the same P-256 certificate. Figure: MB/s (10^6 bytes) of bodies
# received. Goal 0.8: a pull is one file to one printer, so nginx's speed
# is far more than needed, but a server that streams much slower than a
# plain file server wastes the printer's time on large jobs.
mkdir -p "$tmp/pull"
head -c $((10 * 1024 * 1024)) /dev/urandom >"$tmp/pull/doc.pdf"
chmod 0644 "$tmp/pull/doc.pdf"

# pull SIDE URL: runs the transfers, prints MB/s.
pull() {
  local side=$1
  shift
  local i out bytes seconds t0 t1
  # One output per URL: curl's -o applies to a single URL.
  for ((i = 0; i < PULL_TRANSFERS; i++)); do
    printf 'url = "%s"\noutput = "/dev/null"\n' "$1"
  done >"$tmp/pull/curl.conf"
  t0=$(date +%s%N)
  out=$(curl -sS -k --fail --parallel --parallel-max "$PULL_PARALLEL" --parallel-immediate \
    -w '%{size_download}\n' -K "$tmp/pull/curl.conf" 2>"$tmp/pull/curl.err") || {
    echo "tools/bench.sh: curl failed on $1: $(head -n3 "$tmp/pull/curl.err")" >&2
    return 1
  }
  t1=$(date +%s%N)
  bytes=$(printf '%s\n' "$out" | awk '{ s += $1 } END { printf "%d", s }')
  [ "$bytes" -eq $((PULL_TRANSFERS * 10 * 1024 * 1024)) ] || {
    echo "tools/bench.sh: got $bytes bytes from $1, expected $((PULL_TRANSFERS * 10 * 1024 * 1024))" >&2
    return 1
  }
  seconds=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
  lib_log "  $side: transfers=$PULL_TRANSFERS bytes=$bytes seconds=$seconds"
  awk -v b="$bytes" -v s="$seconds" 'BEGIN { printf "%.1f", b / s / 1e6 }'
}

lib_start bench-https-serve "$tmp/pull/serve.log" \
  "$build/tests/bench/bench-https-serve" "$tmp/pull/doc.pdf" "$tmp/pull/cert.pem" "$tmp/pull/key.pem"
line=$(wait_for_line 20 "$tmp/pull/serve.log" '^port [0-9]+' "$LIB_PID")
ours_url="https://127.0.0.1:${line#port }/doc.pdf"

nginx_port=$(free_port)
mkdir -p "$tmp/nginx/www" "$tmp/nginx/logs" "$tmp/nginx/tmp"
ln "$tmp/pull/doc.pdf" "$tmp/nginx/www/doc.pdf"
# nginx's workers (user nobody) read the file; its master (root) reads the key.
chmod 0755 "$tmp" "$tmp/nginx" "$tmp/nginx/www"
cat >"$tmp/nginx/nginx.conf" <<EOF
worker_processes auto;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/logs/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $tmp/nginx/tmp/body;
  proxy_temp_path $tmp/nginx/tmp/proxy;
  fastcgi_temp_path $tmp/nginx/tmp/fastcgi;
  uwsgi_temp_path $tmp/nginx/tmp/uwsgi;
  scgi_temp_path $tmp/nginx/tmp/scgi;
  sendfile on;
  server {
    listen 127.0.0.1:$nginx_port ssl;
    ssl_certificate $tmp/pull/cert.pem;
    ssl_certificate_key $tmp/pull/key.pem;
    ssl_protocols TLSv1.2 TLSv1.3;
    root $tmp/nginx/www;
    default_type application/pdf;
  }
}
EOF
lib_start nginx "$tmp/nginx/logs/nginx.out" \
  nginx -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" -g 'daemon off;'
wait_for_port 20 "$nginx_port"
anchor_url="https://127.0.0.1:$nginx_port/doc.pdf"

ours_pull="" anchor_pull=""
for ((round = 1; round <= ROUNDS; round++)); do
  lib_log "pull round $round/$ROUNDS: $PULL_TRANSFERS x 10 MiB, $PULL_PARALLEL at a time"
  r=$(pull ours "$ours_url")
  ours_pull=$(best "$ours_pull" "$r")
  r=$(pull anchor "$anchor_url")
  anchor_pull=$(best "$anchor_pull" "$r")
done
lib_stop_all
report pull-10MiB-MB-per-s "$ours_pull" "$anchor_pull" 0.8

# ---- 3. Job lists under a login storm (issue 3) ----------------------------
# kcps-server in-process; 200 clients hammer POST /api/v1/login with wrong
# passwords (a quarter at real accounts, which lock) from 200 loopback
# addresses, while another user lists her jobs on a keep-alive connection.
# Anchor: the same job lists with no storm, alternating in the same run. The
# program prints its own bench lines (p99 and p50; goal: p99 under 50 ms).
lib_log "login storm: 200 clients, $ROUNDS rounds"
"$build/tests/bench/bench-login-storm" 200 500 "$ROUNDS" 5 2>"$tmp/storm.log" || {
  cat "$tmp/storm.log" >&2
  exit 1
}
lib_log "$(cat "$tmp/storm.log")"

# ---- 4. Raster to PDF (issue 4) ---------------------------------------------
# A 20-page 300 dpi sRGB PWG raster made by gs; our convert/ module against
# cups-filters' rastertopdf on the same file, each in its own child (wait4
# gives each one's peak RSS), best of 3 runs. Prints its own bench lines.
lib_log "raster to PDF: 20 pages, 300 dpi sRGB, best of 3 runs"
"$build/tests/bench/bench-raster-pdf" 2>"$tmp/raster.log" || {
  cat "$tmp/raster.log" >&2
  exit 1
}
lib_log "$(cat "$tmp/raster.log")"
