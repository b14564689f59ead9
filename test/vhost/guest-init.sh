#!/bin/sh
# /init of the vhost-user tests' QEMU guest (packed by guest-image.sh; runs
# under busybox-static, PID 1). It loads virtio-net, configures eth0 from the
# kernel command line, prints "@@READY <name> <mac> <features>" and then runs
# one command per line read from the serial console:
#
#   host -> guest:  <id> <shell command>
#   guest -> host:  @@BEGIN <id>, the command's output, @@END <id> <exit code>
#
# Kernel command line: vpc.name=NAME vpc.ip=ADDR/PREFIX vpc.deadline=SECONDS
# (the guest powers off by itself after that, so no VM outlives its test).
# eth0 keeps virtio-net's defaults: whatever offloads were negotiated stay on.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
exec </dev/console >/dev/console 2>&1
echo 1 >/proc/sys/kernel/printk # kernel messages stay off the console

name=guest ip= deadline=600
for a in $(cat /proc/cmdline); do
  case "$a" in
    vpc.name=*) name="${a#vpc.name=}" ;;
    vpc.ip=*) ip="${a#vpc.ip=}" ;;
    vpc.deadline=*) deadline="${a#vpc.deadline=}" ;;
  esac
done
(sleep "$deadline"; echo "@@DEADLINE $name"; poweroff -f) &

for m in /lib/modules/*.ko; do
  insmod "$m" || echo "@@FAIL insmod $m"
done
i=0
while [ ! -e /sys/class/net/eth0 ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
[ -e /sys/class/net/eth0 ] || echo "@@FAIL no eth0 after loading virtio_net"
ip link set lo up
ip link set eth0 mtu 1500
[ -n "$ip" ] && ip addr add "$ip" dev eth0
ip link set eth0 up
# The features the driver negotiated: one character per bit, bit 0 first.
feat="$(cat /sys/class/net/eth0/device/features 2>/dev/null)"
stty -echo 2>/dev/null
echo "@@READY $name $(cat /sys/class/net/eth0/address) ${feat:-none}"

while IFS= read -r line; do
  id="${line%% *}"
  cmd="${line#* }"
  echo "@@BEGIN $id"
  sh -c "$cmd" </dev/null 2>&1
  echo "@@END $id $?"
done
poweroff -f
