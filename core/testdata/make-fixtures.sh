#!/usr/bin/env bash
# Makes the core fixtures of this directory (README says what they are).
# Run as root from anywhere: core/testdata/make-fixtures.sh. It points
# core_pattern at a file for one crash and restores it afterwards.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=/tmp/procmem-fixture # the paths the cores' NT_FILE notes name
rm -rf "$work"
mkdir -p "$work"

# mapped.bin: three pages, the first starting with an ELF magic.
python3 - "$here/mapped.bin" <<'PY'
import sys
page = lambda text, fill: (text + bytes([fill]) * 4096)[:4096]
open(sys.argv[1], "wb").write(page(b"\x7fELF procmem fixture file header", 0) +
                              page(b"procmem fixture file marker", 0x5a) + page(b"", 0xa5))
PY
cp "$here/mapped.bin" "$work/mapped.bin"
touch -d '2000-01-01 00:00:00' "$work/mapped.bin"
cc -O0 -g -pthread -o "$work/corefixture" "$here/corefixture.c"
(cd "$here/../.." && go build -o "$work/procmem" .)

pattern=$(cat /proc/sys/kernel/core_pattern)
uses_pid=$(cat /proc/sys/kernel/core_uses_pid)
restore() {
	echo "$pattern" >/proc/sys/kernel/core_pattern
	echo "$uses_pid" >/proc/sys/kernel/core_uses_pid
}
trap restore EXIT
echo "$work/kernel.core" >/proc/sys/kernel/core_pattern
echo 0 >/proc/sys/kernel/core_uses_pid
ulimit -c unlimited
echo 0x33 >/proc/self/coredump_filter

# One process, three cores: procmem's and gcore's while it runs, then the
# kernel's when it crashes. All three hold the same addresses.
coproc fixture { exec "$work/corefixture" "$work/mapped.bin"; }
: >"$here/fixture.addrs"
while read -r key value <&"${fixture[0]}"; do
	[ "$key" = ready ] && break
	echo "$key $value" >>"$here/fixture.addrs"
done
pid=$(awk '$1 == "pid" {print $2}' "$here/fixture.addrs")
"$work/procmem" -p "$pid" core -o "$work/procmem.core"
gcore -o "$work/gcore" "$pid" >/dev/null
echo crash >&"${fixture[1]}"
wait "$fixture_PID" || true
restore

cp "$work/corefixture" "$here/corefixture"
cp --sparse=always "$work/kernel.core" "$here/kernel.core"
cp --sparse=always "$work/gcore.$pid" "$here/gcore.core"
cp --sparse=always "$work/procmem.core" "$here/procmem.core"
# Compressed as systemd-coredump compresses: one stream, default levels.
zstd -q -f -o "$here/kernel.core.zst" "$here/kernel.core"
lz4 -q -f "$here/kernel.core" "$here/kernel.core.lz4"
xz -q -f -k "$here/kernel.core"
rm -rf "$work"
ls -l "$here"
