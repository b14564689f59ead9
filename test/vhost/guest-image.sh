#!/usr/bin/env bash
# The tiny QEMU test guest of the vhost-user tests (test/vhost/guest.ts):
# Debian's current linux-image-amd64 kernel and a busybox-static initramfs
# that loads virtio-net and its module dependencies, configures eth0 from the
# kernel command line and then runs the commands the test writes to its
# serial console.
#
#   bash test/vhost/guest-image.sh OUTDIR
#
# Prints two lines: the kernel (the uncompressed vmlinux, booted through its
# PVH entry) and the initramfs paths. The kernel package is
# fetched with `apt-get download` and unpacked with `dpkg -x` into OUTDIR,
# never installed (its maintainer scripts would touch the host's boot setup).
# Results are cached in OUTDIR/<kernel package version>-<hash of this
# script>: a second run prints the cached paths at once.
set -euo pipefail

out="${1:?usage: guest-image.sh OUTDIR}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
here="$(cd "$(dirname "$0")" && pwd)"

for tool in apt-cache apt-get dpkg gzip; do
  command -v "$tool" >/dev/null || { echo "guest-image: $tool not found (Debian/Ubuntu host needed)" >&2; exit 2; }
done
busybox=/bin/busybox
# The initramfs has no libc: only busybox-static's binary runs there.
dpkg -S "$busybox" 2>/dev/null | grep -q '^busybox-static:' || { echo "guest-image: $busybox is not from busybox-static (apt-get install busybox-static)" >&2; exit 2; }

# The kernel linux-image-amd64 depends on now, e.g. linux-image-6.1.0-57-amd64.
pkg="$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')"
[ -n "$pkg" ] || { echo "guest-image: cannot resolve linux-image-amd64's kernel package (apt-get update?)" >&2; exit 2; }
ver="$(apt-cache policy "$pkg" | awk '/Candidate:/ { print $2; exit }')"
stamp="$(cat "$0" "$here/guest-init.sh" | sha256sum | cut -c1-12)"
dir="$out/$pkg-$ver-$stamp"
if [ -f "$dir/vmlinux" ] && [ -f "$dir/initramfs.gz" ]; then
  echo "$dir/vmlinux"
  echo "$dir/initramfs.gz"
  exit 0
fi

work="$(mktemp -d "$out/.work-XXXXXX")"
trap 'rm -rf "$work"' EXIT
chmod 755 "$work" # apt-get download drops privileges to _apt where it can
(cd "$work" && timeout 600 apt-get download -q "$pkg" >/dev/null 2>"$work/apt.err") || { cat "$work/apt.err" >&2; echo "guest-image: apt-get download $pkg failed" >&2; exit 2; }
deb="$(ls "$work"/*.deb)"
kver="${pkg#linux-image-}"
# dpkg -x, but only what the guest uses (the whole package is ~400 MB).
mkdir -p "$work/pkg"
dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$work/pkg" --wildcards \
  "./boot/vmlinuz-$kver" "./boot/config-$kver" "./lib/modules/$kver/kernel/drivers/virtio/*" \
  "./lib/modules/$kver/kernel/drivers/net/*virtio_net*" "./lib/modules/$kver/kernel/drivers/net/*net_failover*" \
  "./lib/modules/$kver/kernel/net/core/*failover*"
mods="$work/pkg/lib/modules/$kver/kernel"
vmlinuz="$work/pkg/boot/vmlinuz-$kver"
[ -f "$vmlinuz" ] || { echo "guest-image: $deb has no boot/vmlinuz-$kver" >&2; exit 2; }

# The kernel QEMU boots: the uncompressed ELF inside the bzImage, entered
# through its PVH note (QEMU's pvh.bin). Under TCG, decompressing the bzImage
# in the guest costs most of a minute; this costs a second here, once.
grep -q '^CONFIG_PVH=y' "$work/pkg/boot/config-$kver" || { echo "guest-image: $pkg is built without CONFIG_PVH: QEMU cannot boot its vmlinux directly" >&2; exit 2; }
case "$(grep -E '^CONFIG_KERNEL_(XZ|GZIP|ZSTD)=y' "$work/pkg/boot/config-$kver")" in
  CONFIG_KERNEL_XZ=y) magic='\xfd7zXZ\x00'; unpack=(xz -dc --single-stream) ;;
  CONFIG_KERNEL_GZIP=y) magic='\x1f\x8b\x08\x00'; unpack=(gzip -dc) ;;
  CONFIG_KERNEL_ZSTD=y) magic='\x28\xb5\x2f\xfd'; unpack=(zstd -dqc) ;;
  *) echo "guest-image: $pkg: unknown kernel compression" >&2; exit 2 ;;
esac
offset="$(LC_ALL=C grep -aobP "$magic" "$vmlinuz" | head -1 | cut -d: -f1)"
[ -n "$offset" ] || { echo "guest-image: no compressed payload found in $vmlinuz" >&2; exit 2; }
tail -c +"$((offset + 1))" "$vmlinuz" | "${unpack[@]}" >"$work/vmlinux" 2>/dev/null || true
head -c 4 "$work/vmlinux" | grep -q 'ELF' || { echo "guest-image: the payload of $vmlinuz is not an ELF kernel" >&2; exit 2; }

# The initramfs tree: busybox, the modules (in load order), /init.
root="$work/root"
mkdir -p "$root"/{bin,dev,proc,sys,tmp,lib/modules}
cp "$busybox" "$root/bin/busybox"
ln -s busybox "$root/bin/sh"
# virtio_net's dependencies first (modinfo -F depends, resolved by hand: the
# package has no modules.dep, depmod runs at install time).
order="net/core/failover drivers/net/net_failover drivers/virtio/virtio_ring drivers/virtio/virtio
       drivers/virtio/virtio_pci_legacy_dev drivers/virtio/virtio_pci_modern_dev drivers/virtio/virtio_pci
       drivers/net/virtio_net"
n=0
for m in $order; do
  src=""
  for ext in ko ko.xz ko.zst ko.gz; do
    [ -f "$mods/$m.$ext" ] && { src="$mods/$m.$ext"; break; }
  done
  [ -n "$src" ] || { echo "guest-image: module $m not found under $mods" >&2; exit 2; }
  n=$((n + 1))
  dst="$root/lib/modules/$(printf '%02d' $n)-$(basename "$m").ko"
  # busybox insmod takes plain .ko files: decompress here if the kernel
  # package ships them compressed.
  case "$src" in
    *.ko) cp "$src" "$dst" ;;
    *.ko.xz) xz -dc "$src" >"$dst" ;;
    *.ko.zst) zstd -dqc "$src" >"$dst" ;;
    *.ko.gz) gzip -dc "$src" >"$dst" ;;
  esac
done

cp "$here/guest-init.sh" "$root/init"
chmod 755 "$root/init"
(cd "$root" && find . | sort | "$busybox" cpio -o -H newc -R 0:0 2>/dev/null | gzip -9n) >"$work/initramfs.gz"

mkdir -p "$dir"
cp "$work/vmlinux" "$dir/vmlinux"
cp "$work/initramfs.gz" "$dir/initramfs.gz"
echo "$pkg $ver" >"$dir/VERSION"
echo "$dir/vmlinux"
echo "$dir/initramfs.gz"
