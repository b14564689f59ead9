#!/usr/bin/env bash
# Installs the Debian packages that the build, the tests and the benchmarks
# use, if any are missing. Idempotent; needs root only when something is
# missing. Nothing is downloaded from anywhere but Debian's archive.
set -euo pipefail

PACKAGES=(
  cmake g++ make      # build
  libgtest-dev        # native unit tests
  clang               # fuzz targets (libFuzzer): npm run fuzz
  libclang-rt-14-dev  # libFuzzer and the sanitizer runtimes for clang
  pkg-config          # finds libxdp/libbpf
  libxdp-dev          # AF_XDP ports (xdp-tools' libxdp, with its default XSK program)
  libbpf-dev          # AF_XDP ports
  liburing-dev        # tap ports: batched reads and writes through io_uring
  valgrind            # callgrind instruction counts (npm run bench -- core --callgrind)
  iproute2            # namespaces, veth, tap for integration tests
  prometheus          # control-plane test: a real Prometheus scrapes vpcd's /metrics
  iputils-ping        # port integration tests: ping between guests
  iperf3              # port integration tests: TCP through the switch
  tcpdump             # port integration tests: VLAN tags on the wire
  ethtool             # port integration tests: guest offloads, offload restore
  openvswitch-switch  # e2e benchmark: OVS userspace datapath as a peer (private instance; the host service is not used)
  tshark              # overlay integration tests: an independent decoder of the VXLAN underlay
  python3             # overlay integration tests: raw AF_PACKET frames (malformed VXLAN, broadcast counts)
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
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
