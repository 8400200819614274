#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The systemd user unit and the D-Bus activation file of aerosyncd, as installed: systemd-analyze
# verify --user passes without a single warning (it exits 0 on unknown keys, so stderr is what
# counts), the sandboxing settings take effect, and the two files agree with each other. TAP.
#
# usage: as-systemd-units-test.sh BUILD_TREE_UNIT INSTALLED_UNIT INSTALLED_DBUS_SERVICE MAN_SRC_DIR
#   BUILD_TREE_UNIT is data/aerosyncd.service.in with ExecStart= naming this build's aerosyncd:
#   verify insists that the binary exists.

set -u

unit_build=$1
unit=$2
dbus_service=$3
man_src_dir=$4

# systemd-analyze security --threshold: ten times the exposure (0.0 safest .. 10.0), set a little
# above what the unit reaches today (6.6) so that a lost setting shows
max_exposure_x10=70

n=0
failed=0
ok() {
	n=$((n + 1))
	echo "ok $n - $1"
}
not_ok() {
	n=$((n + 1))
	failed=1
	echo "not ok $n - $1"
}
diag() {
	sed 's/^/# /'
}
# the value of the first KEY= line of FILE
key() {
	sed -n "s/^$2=//p" "$1" | head -n 1
}

if ! command -v systemd-analyze >/dev/null 2>&1; then
	echo "1..0 # SKIP systemd-analyze is not installed"
	exit 0
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/as-systemd-units-XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
# verify --user needs a runtime dir, and must not pick up the real user's units
mkdir -m 700 "$tmp/run" "$tmp/home"
export XDG_RUNTIME_DIR="$tmp/run" HOME="$tmp/home" XDG_CONFIG_HOME="$tmp/home/.config"
export SYSTEMD_LOG_COLOR=0 SYSTEMD_PAGER=

# warnings systemd-analyze prints with exit code 0: unknown keys and sections, bad values
suspicious='unknown|ignoring|failed|invalid|warning|deprecated'

# 1: the unit as it would be installed passes verify, silently
# (the man page is not installed here; test 5 checks it exists in the tree)
if systemd-analyze verify --user --man=no "$unit_build" >"$tmp/out" 2>"$tmp/err" &&
	! grep -Eiq "$suspicious" "$tmp/err" "$tmp/out"; then
	ok "systemd-analyze verify --user $(basename "$unit_build")"
else
	not_ok "systemd-analyze verify --user $(basename "$unit_build")"
	diag <"$tmp/err"
fi

# 2: the check above really fails on a misspelt key and an unknown value
mkdir "$tmp/typo"
sed -e 's/^Restart=/Restrat=/' -e 's/^RestrictAddressFamilies=.*/RestrictAddressFamilies=AF_FOO/' \
	"$unit_build" >"$tmp/typo/aerosyncd.service"
systemd-analyze verify --user --man=no "$tmp/typo/aerosyncd.service" >/dev/null 2>"$tmp/err"
if [ "$(grep -Eic "$suspicious" "$tmp/err")" -ge 2 ]; then
	ok "verify reports a misspelt key and a bad value (self-check)"
else
	not_ok "verify reports a misspelt key and a bad value (self-check)"
	diag <"$tmp/err"
fi

# 3: the installed unit is the verified one, up to the directory of aerosyncd
exec_build=$(key "$unit_build" ExecStart)
exec_installed=$(key "$unit" ExecStart)
if [ "${exec_build#/*/aerosyncd }" = "${exec_installed#/*/aerosyncd }" ] &&
	[ "${exec_installed:0:1}" = / ] &&
	diff <(grep -v '^ExecStart=' "$unit_build") <(grep -v '^ExecStart=' "$unit") >"$tmp/diff"; then
	ok "installed unit matches the verified one (ExecStart=$exec_installed)"
else
	not_ok "installed unit matches the verified one"
	diag <"$tmp/diff"
fi

# 4: the activation file starts the same program, through this unit, for the name it waits for
bus_name=$(key "$unit" BusName)
problems=""
[ "$(grep -v '^#' "$dbus_service" | grep -v '^$' | head -n 1)" = "[D-BUS Service]" ] ||
	problems+=" no-[D-BUS-Service]-group"
[ "$(key "$unit" Type)" = dbus ] || problems+=" Type-is-not-dbus"
[ "$bus_name" = org.aerosync ] || problems+=" BusName=$bus_name"
[ "$(key "$dbus_service" Name)" = "$bus_name" ] || problems+=" Name=$(key "$dbus_service" Name)"
[ "$(key "$dbus_service" SystemdService)" = "$(basename "$unit")" ] ||
	problems+=" SystemdService=$(key "$dbus_service" SystemdService)"
[ "$(key "$dbus_service" Exec)" = "$exec_installed" ] || problems+=" Exec=$(key "$dbus_service" Exec)"
[ "$(key "$unit" WantedBy)" = default.target ] || problems+=" WantedBy=$(key "$unit" WantedBy)"
if [ -z "$problems" ]; then
	ok "activation file and unit agree ($bus_name, $(basename "$unit"))"
else
	not_ok "activation file and unit agree:$problems"
fi

# 5: every man page in Documentation= exists in the tree
problems=""
for doc in $(key "$unit" Documentation); do
	case "$doc" in
	man:*)
		page=${doc#man:}
		name=${page%(*}
		section=${page#*(}
		section=${section%)}
		[ -f "$man_src_dir/$name.$section.in" ] || [ -f "$man_src_dir/$name.$section" ] ||
			problems+=" $doc"
		;;
	esac
done
if [ -z "$problems" ]; then
	ok "Documentation= pages exist"
else
	not_ok "Documentation= pages exist: missing$problems"
fi

# 6: systemd applies every sandboxing setting (a typo'd value would just not show up here)
if systemd-analyze security --help 2>/dev/null | grep -q -- '--offline'; then
	systemd-analyze security --user --offline=true "$unit_build" >"$tmp/security" 2>&1
	problems=""
	for setting in NoNewPrivileges= RestrictRealtime= SystemCallArchitectures= \
		MemoryDenyWriteExecute= LockPersonality= RestrictSUIDSGID= RestrictNamespaces=~user \
		RestrictAddressFamilies=~AF_PACKET SystemCallFilter=~@mount SystemCallFilter=~@module; do
		grep -q "^✓ $setting " "$tmp/security" || problems+=" $setting"
	done
	if [ -z "$problems" ]; then
		ok "sandboxing settings are in effect"
	else
		not_ok "sandboxing settings are in effect: not applied:$problems"
		diag <"$tmp/security"
	fi
	# 7: and the overall exposure does not regress
	exposure=$(grep -o 'exposure level[^:]*: [0-9.]*' "$tmp/security" | grep -o '[0-9.]*$')
	if systemd-analyze security --user --offline=true --threshold=$max_exposure_x10 \
		"$unit_build" >/dev/null 2>&1; then
		ok "exposure ${exposure:-?} within --threshold=$max_exposure_x10"
	else
		not_ok "exposure ${exposure:-?} above --threshold=$max_exposure_x10"
	fi
else
	n=$((n + 1))
	echo "ok $n # SKIP systemd-analyze security --offline needs systemd 250"
	n=$((n + 1))
	echo "ok $n # SKIP systemd-analyze security --offline needs systemd 250"
fi

echo "1..$n"
exit $failed
