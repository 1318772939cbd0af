#!/usr/bin/env bash
# TarsWeb v3.0.14, the TARS operators' web console, installed as a test peer.
#
#   scripts/tarsweb.sh DIR    # copies TarsWeb into DIR and installs its npm dependencies
#
# The source is the third-party peer tree kept outside this repository: $TARSWEB_SRC, else
# `../shared/peers/tarsweb-3.0.14` beside the checkout, else /work/shared/peers/tarsweb-3.0.14.
# Its dependencies are pinned by interop/tarsweb/package-lock.json (`npm ci`; no install
# scripts run). A DIR already installed from the same source and lock is left as it is.
#
# The copy's own `config/webConf.js` is kept as `config/webConf.peer.js`: the test
# (tars/tests/tarsweb.rs) writes a `webConf.js` that loads it and points it at the test's
# databases and port.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

dir="${1:?usage: scripts/tarsweb.sh DIR}"
src=""
for c in "${TARSWEB_SRC:-}" "$root/../shared/peers/tarsweb-3.0.14" /work/shared/peers/tarsweb-3.0.14; do
    if [ -n "$c" ] && [ -f "$c/package.json" ] && [ -f "$c/bin/www" ]; then
        src=$(cd "$c" && pwd)
        break
    fi
done
if [ -z "$src" ]; then
    echo "tarsweb.sh: TarsWeb v3.0.14 not found (set TARSWEB_SRC to its source tree)" >&2
    exit 1
fi
lock="$root/interop/tarsweb/package-lock.json"
stamp=$( (cat "$lock"; find "$src" -type f -not -path '*/node_modules/*' -printf '%P %s %T@\n' | sort) | sha256sum | cut -d' ' -f1)
if [ -f "$dir/.installed" ] && [ "$(cat "$dir/.installed")" = "$stamp" ]; then
    echo "tarsweb.sh: $dir is current"
    exit 0
fi
rm -rf "$dir"
mkdir -p "$dir"
(cd "$src" && tar --exclude=./node_modules -cf - .) | tar -xf - -C "$dir"
cp "$lock" "$dir/package-lock.json"
cp "$dir/config/webConf.js" "$dir/config/webConf.peer.js"
(cd "$dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
echo "$stamp" > "$dir/.installed"
echo "tarsweb.sh: installed TarsWeb from $src into $dir"
