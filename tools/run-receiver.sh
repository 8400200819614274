#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# run-receiver.sh [AEROSYNCD-OPTION...]: install what is missing, build the tree and run aerosyncd
# in the foreground. Uploads need a token. Arguments are passed to aerosyncd (e.g. --port 8000);
# $XDG_CONFIG_HOME/aerosync/aerosyncd.conf is read as usual. AEROSYNC_BUILDDIR picks the build
# directory (default: build).
#
# With a D-Bus session bus aerosyncd owns org.aerosync and aerosyncctl manages the tokens. Without
# one (ssh, containers) it serves HTTP only: this script then keeps one random token in
# $XDG_CONFIG_HOME/aerosync/receiver-token (mode 600) and passes it with --auth-token-file.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
builddir=${AEROSYNC_BUILDDIR:-build}
config_dir=${XDG_CONFIG_HOME:-$HOME/.config}/aerosync
TOKEN_BYTES=32

say() { printf 'run-receiver: %s\n' "$*" >&2; }

./tools/install-deps.sh --build
[ -f "$builddir/meson-private/coredata.dat" ] || meson setup "$builddir"
meson compile -C "$builddir"

# GLib finds the session bus through DBUS_SESSION_BUS_ADDRESS or $XDG_RUNTIME_DIR/bus; ask it
session_bus_works() {
  if [ -z "${DBUS_SESSION_BUS_ADDRESS:-}" ] && ! [ -S "${XDG_RUNTIME_DIR:-/nonexistent}/bus" ]; then
    return 1
  fi
  gdbus call --session --timeout 5 --dest org.freedesktop.DBus --object-path /org/freedesktop/DBus \
    --method org.freedesktop.DBus.GetId >/dev/null 2>&1
}

args=(--verbose)
if session_bus_works; then
  say "D-Bus session bus found: aerosyncd will own org.aerosync there."
  say "Create a token for a sender with (in another terminal):"
  say "  $builddir/src/cli/aerosyncctl token generate --label laptop"
else
  token_file=$config_dir/receiver-token
  if [ ! -s "$token_file" ]; then
    mkdir -p "$config_dir"
    (
      umask 077
      od -An -tx1 -N"$TOKEN_BYTES" /dev/urandom | tr -d ' \n' >"$token_file"
    )
  fi
  say "No D-Bus session bus: aerosyncd receives over HTTP and QUIC without its D-Bus API, so aerosyncctl cannot reach it."
  say "Uploads must carry the token stored in $token_file, e.g.:"
  say "  curl -H \"Authorization: Bearer \$(cat $token_file)\" -T FILE http://HOST:7788/upload/FILE"
  say "(aerosyncctl talks to aerosyncd over the session bus that a desktop login provides.)"
  args+=(--no-dbus --auth-token-file "$token_file")
fi

exec "$builddir/src/daemon/aerosyncd" "${args[@]}" "$@"
