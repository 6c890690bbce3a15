#!/usr/bin/env bash
# Builds what the IPIP VM boots: a Debian stock kernel and an initramfs.
#
#   e2e/vm/build.sh OUTDIR      -> OUTDIR/vmlinuz, OUTDIR/initrd.gz
#
# The initramfs is two concatenated gzip'd cpio (newc) archives, which the
# kernel unpacks in order:
#   base  (cached in ~/.cache/calicoctl/vm-<kernel version>/): busybox-static,
#         the kernel modules the scenarios need (ipip and its deps, vxlan, veth,
#         bridge, nf_tables NAT) in dependency order, the nft CLI (the agent's
#         NAT writer runs it) and iproute2's ip with their shared libraries,
#         and /init;
#   app   (built every run): our static calicoctl (+ calico, calico-ipam links)
#         and the static guest test binary (go test -c ./e2e/vm/guest).
#
# Needs: linux-image-amd64 (a /boot/vmlinuz-* with /lib/modules/<ver>/modules.dep),
# busybox-static, cpio, gzip, nftables, iproute2, go. Exit 2 = a prerequisite is
# missing (the message says which).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${1:?usage: build.sh OUTDIR}
mkdir -p "$out"
out=$(cd "$out" && pwd)

missing() { echo "vm: missing prerequisite: $*" >&2; exit 2; }

# The newest kernel that has both an image and its modules.
kver=${VM_KERNEL_VERSION:-}
if [ -z "$kver" ]; then
  for k in $(ls /boot/vmlinuz-* 2>/dev/null | sed 's|^/boot/vmlinuz-||' | sort -V); do
    [ -f "/lib/modules/$k/modules.dep" ] && kver=$k
  done
fi
[ -n "$kver" ] || missing "a kernel with modules (apt-get install linux-image-amd64)"
[ -e "/boot/vmlinuz-$kver" ] || missing "/boot/vmlinuz-$kver (apt-get install linux-image-amd64)"
[ -r "/boot/vmlinuz-$kver" ] || missing "/boot/vmlinuz-$kver is not readable (run as root)"
busybox=
for b in $(command -v busybox || true) /bin/busybox /usr/bin/busybox; do
  if [ -x "$b" ] && ! ldd "$b" >/dev/null 2>&1; then busybox=$b; break; fi
done
[ -n "$busybox" ] || missing "a static busybox (apt-get install busybox-static)"
for t in cpio gzip nft ip ldd; do command -v $t >/dev/null || missing "$t"; done
moddir=/lib/modules/$kver

# Modules wanted (their dependencies are added from modules.dep).
# crc32c_generic backs libcrc32c (a soft dependency modules.dep does not list).
# xfrm_user: vishvananda/netlink's NewHandleAt(ns) with no families opens a
# NETLINK_XFRM socket too; a real host autoloads xfrm_user on demand, this
# initramfs has no modprobe, so it is loaded up front.
wanted="crc32c_generic ip_tunnel tunnel4 ipip udp_tunnel ip6_udp_tunnel vxlan veth bridge
  nf_tables nf_conntrack nf_nat nft_ct nft_nat nft_masq nft_chain_nat xfrm_user
  nft_log nft_reject nft_reject_inet nf_reject_ipv4 nf_reject_ipv6"

cache=${VM_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/calicoctl/vm-$kver}
stamp=$(cat "$here/build.sh" "$here/init" | sha256sum | cut -c1-16)
base=$cache/base-$stamp.cpio.gz

build_base() {
  local stage
  stage=$(mktemp -d)
  mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,lib/vm-modules,lib64,proc,sys,dev,run,tmp,etc,root,var/lib/calico,opt/cni/bin}
  ln -s ../run "$stage/var/run"
  cp "$busybox" "$stage/bin/busybox"
  ln -s busybox "$stage/bin/sh"
  install -m 0755 "$here/init" "$stage/init"

  # Modules in dependency order (depth-first, dependencies first).
  declare -A seen=()
  local order=()
  path_of() { { grep -E "(^|/)$1\.ko(\.xz|\.zst|\.gz)?:" "$moddir/modules.dep" || true; } | head -1 | cut -d: -f1; }
  visit() {
    local rel=$1 name dep
    name=$(basename "$rel"); name=${name%%.ko*}
    [ -n "${seen[$name]:-}" ] && return 0
    seen[$name]=1
    for dep in $(grep -E "^$rel:" "$moddir/modules.dep" | cut -d: -f2); do visit "$dep"; done
    case "$rel" in
      *.ko.xz) xz -dc "$moddir/$rel" ;;
      *.ko.zst) zstd -qdc "$moddir/$rel" ;;
      *.ko.gz) gzip -dc "$moddir/$rel" ;;
      *) cat "$moddir/$rel" ;;
    esac >"$stage/lib/vm-modules/$name.ko"
    order+=("$name")
  }
  local m rel
  for m in $wanted; do
    rel=$(path_of "$m")
    if [ -z "$rel" ]; then
      # Built into this kernel (or absent): nothing to load.
      grep -qE "/$m\.ko" "$moddir/modules.builtin" 2>/dev/null ||
        echo "vm: note: module $m not found for $kver" >&2
      continue
    fi
    visit "$rel"
  done
  printf '%s\n' "${order[@]}" >"$stage/lib/vm-modules/order"

  # Dynamic binaries with their libraries at the same paths.
  local b lib
  for b in $(command -v nft) $(command -v ip); do
    cp -L "$b" "$stage/usr/sbin/$(basename "$b")"
    for lib in $(ldd "$b" | grep -oE '/[^ ]+\.so[^ ]*'); do
      mkdir -p "$stage$(dirname "$lib")"
      cp -L "$lib" "$stage$lib"
    done
  done
  [ -d /etc/iproute2 ] && cp -r /etc/iproute2 "$stage/etc/"
  [ -d /usr/share/iproute2 ] && mkdir -p "$stage/usr/share" && cp -r /usr/share/iproute2 "$stage/usr/share/"
  echo "root:x:0:0:root:/root:/bin/sh" >"$stage/etc/passwd"
  echo "root:x:0:" >"$stage/etc/group"
  printf '127.0.0.1 localhost\n' >"$stage/etc/hosts"

  mkdir -p "$cache"
  rm -f "$cache"/base-*.cpio.gz*
  (cd "$stage" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0 | gzip -1) >"$base.tmp.$$"
  cp "/boot/vmlinuz-$kver" "$cache/vmlinuz.tmp.$$"
  mv "$cache/vmlinuz.tmp.$$" "$cache/vmlinuz"
  mv "$base.tmp.$$" "$base"
  rm -rf "$stage"
  echo "vm: built base initramfs for $kver (modules: ${order[*]})" >&2
}

if [ ! -s "$base" ] || [ ! -s "$cache/vmlinuz" ]; then
  build_base
fi

# The application layer: rebuilt every run from the working tree.
app=$(mktemp -d)
trap 'rm -rf "$app"' EXIT
mkdir -p "$app/bin" "$app/opt/cni/bin"
(
  cd "$root"
  export CGO_ENABLED=0
  go build -trimpath -ldflags '-s -w' -o "$app/bin/calicoctl" ./cmd/calicoctl
  go test -c -trimpath -ldflags '-s -w' -o "$app/bin/guest.test" ./e2e/vm/guest
)
ln -s ../../../bin/calicoctl "$app/opt/cni/bin/calico"
ln -s ../../../bin/calicoctl "$app/opt/cni/bin/calico-ipam"
(cd "$app" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0 | gzip -1) >"$out/app.cpio.gz"
cat "$base" "$out/app.cpio.gz" >"$out/initrd.gz"
rm -f "$out/app.cpio.gz"
cp "$cache/vmlinuz" "$out/vmlinuz"
echo "$kver" >"$out/kernel-version"
