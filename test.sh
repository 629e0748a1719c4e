#!/usr/bin/env bash
# The test command: install what the tests drive (on Debian, as root, with
# apt-get), then run every test with none allowed to skip (CI=true). Needs
# Go 1.26, root and /dev/fuse. .ci/run runs it last.
set -euo pipefail
cd "$(dirname "$0")"
export PATH="$PATH:/usr/local/go/bin"

# Each tool the tests run, and the Debian package that has it.
missing=()
for tool in xxd:xxd scanmem:scanmem fio:fio hexedit:hexedit bvi:bvi tmux:tmux gdb:gdb lldb:lldb gcore:gdb yara:yara file:file strings:binutils sha256sum:coreutils python3:python3 eu-readelf:elfutils readelf:binutils fusermount3:fuse3 getfattr:attr setpriv:util-linux prlimit:util-linux unshare:util-linux nsenter:util-linux passwd:passwd bash:bash cc:gcc as:binutils ld:binutils mount.fuse3:fuse3 systemd-analyze:systemd zstd:zstd lz4:lz4 xz:xz-utils; do
  command -v "${tool%%:*}" >/dev/null 2>&1 || missing+=("${tool##*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
[ -e /dev/fuse ] || modprobe fuse 2>/dev/null || true
# fusectl: TestAsyncDirectIO counts the requests in flight there.
mountpoint -q /sys/fs/fuse/connections || mount -t fusectl none /sys/fs/fuse/connections 2>/dev/null || true

CI=true go test -count=1 ./...
