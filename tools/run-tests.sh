#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# run-tests.sh: install what is missing, configure the build directory and run the whole test
# suite. AEROSYNC_BUILDDIR picks the build directory (default: build). Exit status is meson's.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
builddir=${AEROSYNC_BUILDDIR:-build}

./tools/install-deps.sh --build --test

if [ -f "$builddir/meson-private/coredata.dat" ]; then
  # a tree set up by another meson version cannot be reconfigured: start it again
  meson setup --reconfigure "$builddir" || meson setup --wipe "$builddir"
else
  meson setup "$builddir"
fi

# build everything (man pages, catalogues, tools), not only what the tests depend on
meson compile -C "$builddir"

testlog=$builddir/meson-logs/testlog.json
rm -f "$testlog"
rc=0
meson test -C "$builddir" --print-errorlogs --num-processes 2 || rc=$?

# one plain closing line, counted over the test programs meson ran
if [ -f "$testlog" ]; then
  /usr/bin/python3 - "$testlog" <<'PY'
import json, sys

passed = failed = skipped = 0
with open(sys.argv[1], encoding="utf-8") as log:
    for line in log:
        if not line.strip():
            continue
        result = json.loads(line).get("result")
        if result in ("OK", "EXPECTEDFAIL"):
            passed += 1
        elif result == "SKIP":
            skipped += 1
        else:
            failed += 1
print(f"tests: {passed} passed, {failed} failed, {skipped} skipped")
PY
else
  echo "tests: no test ran (did the build fail?)"
  [ "$rc" != 0 ] || rc=1
fi
exit "$rc"
