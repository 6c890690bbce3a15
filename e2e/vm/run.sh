#!/usr/bin/env bash
# Boots Debian's stock kernel under qemu (TCG) with our initramfs and runs the
# IPIP scenarios inside it (see e2e/vm/guest). Prints the serial console and
# exits 0 only when the guest reports `VM-RESULT: PASS`.
#
#   e2e/vm/run.sh                 # all scenarios
#   VM_RUN=IPIPAlways e2e/vm/run.sh   # a -test.run pattern for the guest
#
# Environment: VM_TIMEOUT (seconds, default 600), VM_MEM (MiB, 1024),
# VM_CPUS (2), VM_LOG (console log path), VM_WORK (build dir; temp if unset).
# Exit codes: 0 pass, 1 fail, 2 prerequisites missing (skip).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

qemu=$(command -v qemu-system-x86_64 || true)
if [ -z "$qemu" ]; then
  echo "vm: SKIP: qemu-system-x86_64 not installed (apt-get install qemu-system-x86)" >&2
  exit 2
fi

work=${VM_WORK:-}
if [ -z "$work" ]; then
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
fi
t0=$(date +%s)
rc=0
"$here/build.sh" "$work" || rc=$?
if [ "$rc" = 2 ]; then
  echo "vm: SKIP: prerequisites missing (see above)" >&2
  exit 2
elif [ "$rc" != 0 ]; then
  echo "vm: building the VM failed" >&2
  exit 1
fi
t1=$(date +%s)
log=${VM_LOG:-$work/console.log}
append="console=ttyS0 quiet panic=-1"
[ -n "${VM_RUN:-}" ] && append="$append vm.run=$VM_RUN"
echo "vm: booting $(cat "$work/kernel-version") (build $((t1 - t0))s)" >&2
set +e
timeout --kill-after=10 "${VM_TIMEOUT:-600}" "$qemu" -accel tcg -m "${VM_MEM:-1024}" -smp "${VM_CPUS:-2}" \
  -nographic -no-reboot -nic none \
  -kernel "$work/vmlinuz" -initrd "$work/initrd.gz" -append "$append" </dev/null 2>&1 | tee "$log"
qrc=${PIPESTATUS[0]}
set -e
t2=$(date +%s)
echo "vm: qemu exited $qrc after $((t2 - t1))s" >&2
if grep -q '^VM-RESULT: PASS' "$log"; then
  exit 0
fi
if [ "$qrc" = 124 ]; then
  echo "vm: FAIL: timed out after ${VM_TIMEOUT:-600}s" >&2
else
  echo "vm: FAIL: $(grep -a '^VM-RESULT:' "$log" || echo 'no VM-RESULT line')" >&2
fi
exit 1
