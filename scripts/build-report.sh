#!/usr/bin/env bash
# Says, after a build, what it left out because a library was missing, and
# how to get it. cmake prints this too, but among hundreds of lines; this is
# the last thing `npm install` / `npm run build` prints.
#
#   bash scripts/build-report.sh [FEATURES_FILE]   (default build/features.env)
#
# Exit code 0 either way: a build without AF_XDP or io_uring works.
set -euo pipefail
cd "$(dirname "$0")/.."
file="${1:-build/features.env}"
if [ ! -f "$file" ]; then
  echo "build-report: $file not found (run npm run build first)" >&2
  exit 0
fi
afxdp=0 io_uring=0 kpath=0
while IFS='=' read -r k v; do
  case "$k" in afxdp) afxdp="$v" ;; io_uring) io_uring="$v" ;; kpath) kpath="$v" ;; esac
done <"$file"

if [ "$afxdp" = 1 ] && [ "$io_uring" = 1 ] && [ "$kpath" = 1 ]; then
  echo "vpc-switch: built with every port backend (AF_XDP, tap with io_uring) and the kernel fast path."
  exit 0
fi
pkgs=()
{
  echo
  echo "=========================================================== vpc-switch build"
  echo " Built WITHOUT:"
  if [ "$afxdp" != 1 ]; then
    echo "   - AF_XDP ports (type: afxdp): libxdp/libbpf not found"
    pkgs+=(pkg-config libxdp-dev libbpf-dev)
  fi
  if [ "$io_uring" != 1 ]; then
    echo "   - io_uring batching of tap ports (they make one system call per frame): liburing not found"
    pkgs+=(pkg-config liburing-dev)
  fi
  if [ "$kpath" != 1 ]; then
    echo "   - the kernel fast path of afpacket ports (every frame goes through the engine): clang or libbpf not found"
    pkgs+=(pkg-config clang libbpf-dev)
  fi
  read -r -a pkgs <<<"$(printf '%s\n' "${pkgs[@]}" | sort -u | tr '\n' ' ')"
  echo " Everything else works. To build them in:"
  echo "   sudo apt-get install ${pkgs[*]}   (or: sudo bash scripts/setup-deps.sh run)"
  echo "   npm run build"
  echo " (sudo npm start installs them, builds everything and starts the demo.)"
  echo "============================================================================="
  echo
} >&2
