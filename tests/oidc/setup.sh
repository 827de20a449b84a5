#!/bin/sh
# Installs the test OpenID provider (oidc-provider, pinned in
# package-lock.json) into DEST (a folder under the build dir, never the
# source tree). Node.js and npm come from Debian (apt-get) when missing.
# Idempotent: does nothing when DEST already holds this lock file's install.
# Usage: tests/oidc/setup.sh DEST
set -eu
here=$(cd "$(dirname "$0")" && pwd)
dest=${1:?usage: setup.sh DEST}

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup.sh: node and npm are missing; run as root or: apt-get install nodejs npm" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y --no-install-recommends nodejs npm >&2 ||
    { apt-get update >&2 && apt-get install -y --no-install-recommends nodejs npm >&2; }
fi

stamp="$dest/.installed"
want=$(cat "$here/package-lock.json" "$here/provider.mjs" | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -d "$dest/node_modules/oidc-provider" ]; then
  exit 0
fi

mkdir -p "$dest"
cp "$here/package.json" "$here/package-lock.json" "$here/provider.mjs" "$dest/"
(cd "$dest" && npm ci --no-audit --no-fund --loglevel=error >&2)
echo "$want" > "$stamp"
