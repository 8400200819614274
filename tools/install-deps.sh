#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# install-deps.sh [--build] [--test] [--bench] [--all] [--dry-run]: install the Debian 12 packages
# AeroSync needs; the groups add up (--build --test is what the test suite needs).
#   --build    what building the tree and running aerosyncd needs (the default without a group)
#   --test     only the extra packages the test suite needs (and bench/run's receive rows)
#   --bench    only the peers the other bench/run rows compare with: sshd, rsync, gtlsserver, ...
#   --all      all three
#   --dry-run  only print what is missing and the apt-get command that would install it
# Only missing packages are installed: naming an installed package to apt-get upgrades it.
# Runs apt-get as root, or through `sudo -n` when that works without a password; otherwise it prints
# the command to run and exits 1. Exit 0 when everything is installed.
set -euo pipefail

BUILD_PKGS=(
  meson ninja-build pkg-config gcc
  libglib2.0-dev libglib2.0-bin # gdbus-codegen & co come with -dev (libglib2.0-dev-bin); gdbus, gio: -bin
  libsoup-3.0-dev libjson-glib-dev libgnutls28-dev
  libngtcp2-dev libngtcp2-crypto-gnutls-dev # 0.12 on bookworm: the pre-1.0 API
  libavahi-glib-dev libavahi-client-dev libsecret-1-dev
  gettext
  dbus-daemon # dbus-daemon (GTestDBus spawns it) and dbus-run-session
)
TEST_PKGS=(
  curl
  python3-websockets # Debian's: WebSocket clients run with /usr/bin/python3, not a pyenv python3
  python3-dbusmock   # Debian's: the notification server double of tests/as-notifier-test.c
  prometheus         # only for promtool, which checks the /metrics output
  nginx-light libnginx-mod-http-dav-ext # WebDAV PUT peer for bench/run
  man-db groff-base # the docs test renders the man pages and wants no groff warnings
  avahi-daemon avahi-utils # mDNS tests: a private avahi-daemon on lo, avahi-browse cross-check
  ngtcp2-client      # gtlsclient: the QUIC interop check of tests/as-quic-test.c
)
# bench/run only (--bench): the peers of the send and QUIC rows (bench/run starts its own servers)
BENCH_PKGS=(
  openssh-server openssh-client # an own sshd on 127.0.0.1 for scp and rsync -e ssh
  rsync                         # rsync -e ssh and rsync --daemon
  ngtcp2-server                 # gtlsserver: the HTTP/3 upload peer of the QUIC rows
  openssl                       # gtlsserver's key and certificate
  time                          # /usr/bin/time: the clients' CPU time and peak RSS
)
# tools checked by file, not by package: the package is added only when the file is missing
# (systemd is often absent from container images; it is only wanted here for busctl)
TEST_FILES=(
  /usr/bin/busctl:systemd
)

APT_TRIES=3
APT_PAUSE_S=10

log() { printf 'install-deps: %s\n' "$*" >&2; }

usage() {
  sed -n '4,13s/^# \{0,1\}//p' "$0"
}

want_build=0 want_test=0 want_bench=0 dry_run=0
for arg in "$@"; do
  case "$arg" in
  --build) want_build=1 ;;
  --test) want_test=1 ;;
  --bench) want_bench=1 ;;
  --all) want_build=1 want_test=1 want_bench=1 ;;
  -n | --dry-run) dry_run=1 ;;
  -h | --help) usage; exit 0 ;;
  *) log "unknown argument: $arg"; usage >&2; exit 2 ;;
  esac
done
[ $((want_build + want_test + want_bench)) -eq 0 ] && want_build=1

wanted=()
[ "$want_build" = 1 ] && wanted+=("${BUILD_PKGS[@]}")
if [ "$want_test" = 1 ]; then
  wanted+=("${TEST_PKGS[@]}")
  for pair in "${TEST_FILES[@]}"; do
    [ -e "${pair%%:*}" ] || wanted+=("${pair#*:}")
  done
fi
[ "$want_bench" = 1 ] && wanted+=("${BENCH_PKGS[@]}")

if ! command -v dpkg-query >/dev/null || ! command -v apt-get >/dev/null; then
  log "this is not a Debian-like system (no dpkg-query/apt-get); install the equivalents of:"
  printf '  %s\n' "${wanted[*]}" >&2
  exit 1
fi

missing=()
for pkg in "${wanted[@]}"; do
  # "WANT ok installed" is installed whatever WANT (install, hold) says; "deinstall ok
  # config-files", half-installed and unknown packages are missing
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  [[ $status == *" ok installed" ]] || missing+=("$pkg")
done

if [ "${#missing[@]}" = 0 ]; then
  log "all ${#wanted[@]} packages are installed"
  exit 0
fi

apt_opts=(-o DPkg::Lock::Timeout=600 -o Acquire::Retries=3 -o Dpkg::Use-Pty=0 -q -y)
install_cmd=(apt-get "${apt_opts[@]}" install --no-install-recommends "${missing[@]}")
log "missing: ${missing[*]}"

if [ "$dry_run" = 1 ]; then
  printf '%s\n' "apt-get update && ${install_cmd[*]}"
  exit 0
fi

as_root=()
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    as_root=(sudo -n)
  else
    log "root is needed to install packages; run this as root (or with sudo), then run me again:"
    printf '  sudo sh -c "apt-get update && DEBIAN_FRONTEND=noninteractive %s"\n' "${install_cmd[*]}" >&2
    exit 1
  fi
fi

# runs apt-get ARGS as root with the frontend that never asks questions; 3 tries with a pause,
# refreshing the package lists before a retry (a mirror may have moved on since the last update)
apt_retry() {
  local try
  for ((try = 1; try <= APT_TRIES; try++)); do
    if "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" "$@" </dev/null; then
      return 0
    fi
    log "apt-get $1 failed (try $try of $APT_TRIES)"
    if [ "$try" -lt "$APT_TRIES" ]; then
      sleep "$APT_PAUSE_S"
      [ "$1" = update ] || "${as_root[@]}" apt-get "${apt_opts[@]}" update </dev/null || true
    fi
  done
  return 1
}

start_s=$SECONDS
apt_retry update || { log "apt-get update failed"; exit 1; }
apt_retry install --no-install-recommends "${missing[@]}" || { log "apt-get install failed"; exit 1; }
log "installed ${#missing[@]} packages in $((SECONDS - start_s)) s"

# where an init system runs (not in containers, whose policy-rc.d forbids it) Debian starts nginx,
# prometheus and ssh right after installing them; neither the tests nor the bench use those
# services (bench/run starts its own sshd on 127.0.0.1)
if [ -d /run/systemd/system ]; then
  started=()
  [[ " ${missing[*]} " == *" nginx-light "* ]] && started+=(nginx)
  [[ " ${missing[*]} " == *" prometheus "* ]] && started+=(prometheus)
  [[ " ${missing[*]} " == *" openssh-server "* ]] && started+=(ssh)
  if [ "${#started[@]}" -gt 0 ]; then
    log "note: Debian may have started ${started[*]}; AeroSync does not need them" \
      "('sudo systemctl disable --now ${started[*]}' stops them)"
  fi
fi
