// Which queue of a multi-queue port a frame leaves on: one flow, one queue,
// so that a multi-queue guest sees each flow in order. Used by tap and
// vhost-user ports.
#pragma once

#include <cstdint>

#include "proto/inet.h"

namespace vpc {

// A hash of the MACs and, for untagged IPv4, the addresses and (unfragmented,
// no options) the TCP/UDP ports, reduced to 0..nq-1. `len` >= 14.
inline uint8_t flow_queue(const uint8_t* f, uint32_t len, uint32_t nq) {
  auto mix = [](uint32_t h, const uint8_t* p) { return (h ^ load_be32(p)) * 0x9E3779B1u; };
  uint32_t h = mix(mix(mix(0, f), f + 4), f + 8);
  if (len >= 38 && f[12] == 0x08 && f[13] == 0x00 && f[14] == 0x45) {
    h = mix(mix(h, f + 26), f + 30);
    const bool first_fragment_only = (f[20] & 0x3F) == 0 && f[21] == 0;
    if (first_fragment_only && (f[23] == kIpProtoTcp || f[23] == kIpProtoUdp)) h = mix(h, f + 34);
  }
  return uint8_t((h >> 16) % nq);
}

}  // namespace vpc
