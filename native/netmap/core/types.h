// Basic types shared by every part of the dataplane.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace vpc {

// A packet descriptor: a buffer of the engine's pool, named by index, and the
// frame's place inside it. Descriptors are what rings and batches carry; the
// bytes never move unless a stage has to change them.
//
// `off` holds the offset in its low 15 bits and, in bit 15 (kPktMeta), the flag
// "this frame has an entry in the pool's offload side table"
// (BufferPool::meta(buf), core/offload.h): checksum-partial or GSO state, or
// a frame that lives in a large buffer. Read the offset with pkt_off(); adding
// to or subtracting from `off` keeps the flag as long as the offset stays in
// 0..32767, which the pool guarantees (headroom and buffers stay below that
// for regular buffers, and stages only move the offset inside the headroom).
struct Pkt {
  uint32_t buf;  // buffer index in the BufferPool
  uint16_t off;  // offset of the first frame byte inside the buffer | kPktMeta
  uint16_t len;  // frame length in bytes (no FCS)
};
static_assert(sizeof(Pkt) == 8, "a descriptor is 8 bytes");

constexpr uint16_t kPktMeta = 0x8000;
constexpr uint16_t kPktOffMask = 0x7FFF;
inline uint16_t pkt_off(const Pkt& p) { return uint16_t(p.off & kPktOffMask); }
inline bool pkt_has_meta(const Pkt& p) { return (p.off & kPktMeta) != 0; }
inline void pkt_set_meta(Pkt& p, bool on) { p.off = on ? uint16_t(p.off | kPktMeta) : pkt_off(p); }

// Largest burst a port is asked for, and the size of every batch array.
constexpr uint16_t kMaxBurst = 256;

// Index types. A member is one (port, VLAN) attachment to a switch; the FDB
// maps a MAC to a member, so a lookup gives both the port and the tag to use.
using SwitchId = uint32_t;
using PortId = uint32_t;
using MemberId = uint16_t;
constexpr MemberId kNoMember = 0xFFFF;
constexpr uint32_t kNoId = 0xFFFFFFFFu;

// A MAC address as a 48-bit integer: the first byte on the wire is the most
// significant, so the multicast bit (I/G) is bit 40.
using Mac = uint64_t;
constexpr Mac kMacMulticastBit = 1ull << 40;
constexpr Mac kMacBroadcast = 0xFFFFFFFFFFFFull;

inline Mac mac_load(const uint8_t* p) {
  return (Mac(p[0]) << 40) | (Mac(p[1]) << 32) | (Mac(p[2]) << 24) | (Mac(p[3]) << 16) |
         (Mac(p[4]) << 8) | Mac(p[5]);
}

inline void mac_store(uint8_t* p, Mac m) {
  for (int i = 5; i >= 0; --i) {
    p[i] = uint8_t(m & 0xFF);
    m >>= 8;
  }
}

inline bool mac_is_multicast(Mac m) { return (m & kMacMulticastBit) != 0; }

// Parses "aa:bb:cc:dd:ee:ff" (also '-' separated). Returns false on bad input.
bool mac_parse(const char* s, Mac* out);
// Formats into buf (at least 18 bytes), lower-case, colon separated.
void mac_format(Mac m, char* buf);

}  // namespace vpc
