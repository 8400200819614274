#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# avahi-env.sh DIR: a private system bus and an avahi-daemon on loopback only, for the mDNS
# tests (tests/as-mdns-test.c) and for trying discovery by hand. Needs root: avahi-daemon drops
# to the avahi user and chroots itself. Nothing under /run/dbus is touched: the bus listens on
# DIR/system_bus_socket, so clients need
#   DBUS_SYSTEM_BUS_ADDRESS=unix:path=DIR/system_bus_socket
# The first line on standard output is "ready", "skip REASON" (exit 77) or "error REASON"
# (exit 1). Then one command per line on standard input, each answered by one line:
#   stop-avahi | start-avahi | restart-avahi   "ok" or "error REASON"
#   quit, or the end of standard input         both daemons are stopped, then exit 0
# Both daemons are children of this script and are stopped by their PID, never by name, also
# on SIGTERM/SIGINT/SIGHUP. Their output goes to DIR/sysbus.log and DIR/avahi.log.
set -u

here=$(cd "$(dirname "$0")" && pwd)
dir=${1:?usage: avahi-env.sh DIR}
socket=$dir/system_bus_socket
# fixed by avahi-daemon, hence one avahi-daemon per machine
avahi_pidfile=/run/avahi-daemon/pid
AVAHI_SERVER_RUNNING=2 # org.freedesktop.Avahi.Server.GetState when the host name is announced
STEP_S=0.1
BUS_READY_STEPS=50    # 5 s
AVAHI_READY_STEPS=150 # 15 s: probing the host name alone takes ~1 s
STOP_STEPS=50         # 5 s, then SIGKILL

PATH=$PATH:/usr/sbin:/sbin
export DBUS_SYSTEM_BUS_ADDRESS=unix:path=$socket
bus_pid=
avahi_pid=
reason=

say() { printf '%s\n' "$*"; }

# whether PID runs; an exited child is a zombie until it is waited for, and counts as gone
running() {
  local stat
  [ -n "$1" ] && stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [ "${stat%% *}" != Z ]
}

# SIGTERM, up to STOP_STEPS for the exit, then SIGKILL; always reaped
stop_pid() {
  local pid=$1 i
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null
  for ((i = 0; i < STOP_STEPS; i++)); do
    running "$pid" || break
    sleep "$STEP_S"
  done
  if running "$pid"; then
    echo "avahi-env: PID $pid ignored SIGTERM, killing it" >&2
    kill -KILL "$pid" 2>/dev/null
  fi
  wait "$pid" 2>/dev/null
  return 0
}

# an avahi-daemon that is not ours, e.g. the host's
other_avahi_pid() {
  local pid
  pid=$(cat "$avahi_pidfile" 2>/dev/null) || return 1
  [ -n "$pid" ] && [ "$pid" != "$avahi_pid" ] && running "$pid" &&
    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = avahi-daemon ] && echo "$pid"
}

start_bus() {
  local i
  rm -f "$socket"
  dbus-daemon --config-file="$here/system-bus.conf" --address="unix:path=$socket" \
    --nofork --nopidfile --nosyslog </dev/null >>"$dir/sysbus.log" 2>&1 &
  bus_pid=$!
  for ((i = 0; i < BUS_READY_STEPS; i++)); do
    [ -S "$socket" ] && return 0
    running "$bus_pid" || break
    sleep "$STEP_S"
  done
  return 1
}

stop_avahi() {
  local pid=$avahi_pid
  stop_pid "$pid"
  avahi_pid=
  # a killed avahi-daemon leaves its pid file, and the next one would refuse to start
  if [ -n "$pid" ] && [ "$(cat "$avahi_pidfile" 2>/dev/null)" = "$pid" ]; then
    rm -f "$avahi_pidfile"
  fi
}

# 0 when running, else 1 with the reason in $reason; not in a subshell, which would lose
# avahi_pid and the child
start_avahi() {
  local i state other
  reason=
  if other=$(other_avahi_pid); then
    reason="another avahi-daemon is running (PID $other)"
    return 1
  fi
  rm -f "$avahi_pidfile"
  avahi-daemon -f "$here/avahi-daemon.conf" --no-rlimits </dev/null >>"$dir/avahi.log" 2>&1 &
  avahi_pid=$!
  for ((i = 0; i < AVAHI_READY_STEPS; i++)); do
    state=$(gdbus call --system --timeout 1 --dest org.freedesktop.Avahi --object-path / \
      --method org.freedesktop.Avahi.Server.GetState 2>/dev/null)
    [ "$state" = "($AVAHI_SERVER_RUNNING,)" ] && return 0
    running "$avahi_pid" || break
    sleep "$STEP_S"
  done
  reason="avahi-daemon did not start: $(tail -n 3 "$dir/avahi.log" | tr '\n' ' ')"
  stop_avahi
  return 1
}

cleanup() {
  stop_avahi
  stop_pid "$bus_pid"
  bus_pid=
  rm -f "$socket"
}

if [ "$(id -u)" != 0 ]; then
  say "skip needs root: avahi-daemon drops to its own user"
  exit 77
fi
for tool in dbus-daemon avahi-daemon gdbus; do
  if ! command -v "$tool" >/dev/null; then
    say "skip $tool is not installed"
    exit 77
  fi
done
if other=$(other_avahi_pid); then
  say "skip another avahi-daemon is running (PID $other)"
  exit 77
fi

trap 'cleanup; exit 0' TERM INT HUP
mkdir -p "$dir"
# both daemons drop root and must still reach the socket
chmod 755 "$dir"
if ! start_bus; then
  say "error dbus-daemon did not start: $(tail -n 3 "$dir/sysbus.log" | tr '\n' ' ')"
  cleanup
  exit 1
fi
if ! start_avahi; then
  say "error $reason"
  cleanup
  exit 1
fi
say ready

while IFS= read -r command; do
  case $command in
  stop-avahi)
    stop_avahi
    say ok
    ;;
  start-avahi | restart-avahi)
    [ "$command" = restart-avahi ] && stop_avahi
    if start_avahi; then say ok; else say "error $reason"; fi
    ;;
  quit) break ;;
  *) say "error unknown command: $command" ;;
  esac
done
cleanup
exit 0
