// Ethernet II and IEEE 802.1Q wire formats.
#pragma once

#include <cstdint>
#include <cstring>

#include "core/types.h"

namespace vpc {

constexpr uint16_t kEthHeaderLen = 14;  // dst(6) src(6) ethertype(2)
constexpr uint16_t kVlanTagLen = 4;     // TPID(2) TCI(2)
constexpr uint16_t kEthMinFrame = 60;   // shortest frame on the wire, without the FCS
constexpr uint16_t kEtherTypeVlan = 0x8100;
constexpr uint16_t kEtherTypeIpv4 = 0x0800;
constexpr uint16_t kEtherTypeArp = 0x0806;
constexpr uint16_t kEtherTypeIpv6 = 0x86DD;
constexpr uint16_t kVlanIdMask = 0x0FFF;
constexpr uint16_t kVlanReserved = 4095;

inline uint16_t load_be16(const uint8_t* p) { return uint16_t((p[0] << 8) | p[1]); }
inline void store_be16(uint8_t* p, uint16_t v) {
  p[0] = uint8_t(v >> 8);
  p[1] = uint8_t(v);
}

// The destination and source MACs of a frame of at least 12 bytes, each with
// one unaligned 8-byte load (the two extra bytes read are still inside the
// Ethernet header).
inline Mac eth_dst(const uint8_t* f) {
  uint64_t v;
  std::memcpy(&v, f, 8);
  return __builtin_bswap64(v) >> 16;
}
inline Mac eth_src(const uint8_t* f) {
  uint64_t v;
  std::memcpy(&v, f + 4, 8);
  return __builtin_bswap64(v) & 0xFFFFFFFFFFFFull;
}

// Removes the 802.1Q tag that follows the MAC addresses by sliding the 12
// address bytes forward over it. The caller checked len >= 18. The offset
// arithmetic keeps the descriptor's kPktMeta flag; the caller moves the
// offload offsets (offload_shift) when the frame has any.
inline void vlan_pop(uint8_t* frame, Pkt& p) {
  std::memmove(frame + kVlanTagLen, frame, 12);
  p.off = uint16_t(p.off + kVlanTagLen);
  p.len = uint16_t(p.len - kVlanTagLen);
}

// Inserts an 802.1Q tag (PCP 0, DEI 0) after the MAC addresses, using 4 bytes
// of headroom. The caller checked pkt_off(p) >= 4.
inline void vlan_push(uint8_t* buf, Pkt& p, uint16_t vid) {
  uint8_t* old = buf + pkt_off(p);
  uint8_t* f = old - kVlanTagLen;
  std::memmove(f, old, 12);
  store_be16(f + 12, kEtherTypeVlan);
  store_be16(f + 14, vid);
  p.off = uint16_t(p.off - kVlanTagLen);
  p.len = uint16_t(p.len + kVlanTagLen);
}

}  // namespace vpc
