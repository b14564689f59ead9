#!/usr/bin/env bash
# bash scripts/setup-deps.sh [run|test]
#
# Installs the Debian packages vpc-switch needs, if any are missing.
# Idempotent; needs root only when something is missing. Nothing is
# downloaded from anywhere but Debian's archive.
#
#   run   the full build (AF_XDP, io_uring and the kernel fast path included) and the demo
#         (sudo npm start)
#   test  run, plus what the tests and benchmarks use (sudo npm test; the
#         default)
#
# `--print` lists the missing packages of the set and exits (0 if none).
set -euo pipefail

RUN_PACKAGES=(
  cmake g++ make      # build
  pkg-config          # finds libxdp/libbpf/liburing
  libxdp-dev          # AF_XDP ports (xdp-tools' libxdp, with its default XSK program)
  libbpf-dev          # AF_XDP ports; the kernel fast path of afpacket ports
  clang               # the kernel fast path's BPF programs (clang -target bpf); fuzz targets (libFuzzer)
  liburing-dev        # tap ports: batched reads and writes through io_uring
  iproute2            # the demo's namespaces and veths; integration tests
  iputils-ping        # the demo's "try it" commands; port integration tests
  curl                # the demo's metrics hint
)
TEST_PACKAGES=(
  libgtest-dev        # native unit tests
  libclang-rt-14-dev  # libFuzzer and the sanitizer runtimes for clang
  valgrind            # callgrind instruction counts (npm run bench -- core --callgrind)
  prometheus          # control-plane test: a real Prometheus scrapes vpcd's /metrics
  iperf3              # port integration tests: TCP through the switch
  tcpdump             # port integration tests: VLAN tags on the wire
  ethtool             # port integration tests: guest offloads, offload restore
  openvswitch-switch  # e2e benchmark: OVS userspace datapath as a peer (private instance; the host service is not used)
  tshark              # overlay integration tests: an independent decoder of the VXLAN underlay
  python3             # overlay integration tests: raw AF_PACKET frames (malformed VXLAN, broadcast counts)
  systemd             # packaging test: systemd-analyze verify of packaging/vpcd.service (only if absent)
  gobgpd              # EVPN: the BGP speaker vpcd drives (managed or external)
  golang-github-osrg-gobgp-dev  # EVPN: gobgpd's v3 API protos (gobgp.proto, attribute.proto)
  frr                 # EVPN integration test: a Linux VTEP host speaking BGP EVPN (FRR bgpd)
  qemu-system-x86     # vhost-user integration tests: tiny TCG guests (kernel fetched with apt-get download, not installed)
  busybox-static      # vhost-user integration tests: the tiny guests' initramfs
  xz-utils            # vhost-user integration tests: the guest kernel taken out of its bzImage (xz)
  dpdk                # vhost-user tests and benchmark: dpdk-testpmd as a virtio-user frontend
  dpdk-dev            # vhost-user tests: librte-net-virtio for testpmd's virtio-user vdev
  openvswitch-switch-dpdk  # e2e vhost benchmark: OVS with DPDK as a peer (private instance)
)

print=false
set_name=test
for a in "$@"; do
  case "$a" in
    run|test) set_name="$a" ;;
    --print) print=true ;;
    *) echo "setup-deps: unknown argument '$a' (expected run, test or --print)" >&2; exit 2 ;;
  esac
done
PACKAGES=("${RUN_PACKAGES[@]}")
[ "$set_name" = test ] && PACKAGES+=("${TEST_PACKAGES[@]}")

missing=()
for p in "${PACKAGES[@]}"; do
  # The tests need systemd-analyze only: present by any means is enough.
  [ "$p" = systemd ] && command -v systemd-analyze >/dev/null && continue
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if $print; then
  [ ${#missing[@]} -eq 0 ] || echo "${missing[*]}"
  exit 0
fi
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" != 0 ]; then
  echo "setup-deps: missing Debian packages: ${missing[*]}" >&2
  echo "setup-deps: install them with: sudo apt-get install ${missing[*]}" >&2
  exit 1
fi
echo "setup-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# tshark pulls in wireshark-common, which asks whether non-root users may
# capture; answer no without a prompt.
echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections 2>/dev/null || true
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
