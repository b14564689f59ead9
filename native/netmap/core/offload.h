// Offload state of a frame: what a virtio_net_hdr says about it.
//
// A guest (a veth with TSO on, a tap with IFF_VNET_HDR, a virtio-net queue)
// hands the switch frames whose L4 checksum is not computed yet
// (checksum-partial) and frames of up to 64 KiB that are to be cut into
// MSS-sized TCP segments (GSO). The switch keeps that state beside the frame
// and lets each egress decide: a port that accepts it as it is gets the frame
// as it is; any other port gets the frame completed (checksum) or segmented in
// software (proto/gso.h) at egress.
//
// Contract
// - A frame carries offload state only when its descriptor says so
//   (pkt_has_meta(p)); the state itself lives in the pool's side table,
//   BufferPool::meta(p.buf), and is read only then. A frame without it is a
//   plain, complete frame: the 64-byte path never touches the side table.
// - Offsets (csum_start, hdr_len) count from the first byte of the frame as the
//   descriptor names it (the Ethernet header). A stage that adds or removes
//   bytes in front of the frame (a VLAN tag) moves them with it
//   (offload_shift()).
// - Fields are in host byte order. Conversion to and from the wire layout of a
//   virtio_net_hdr (little endian for VERSION_1 and vnet_hdr, as the kernel
//   uses them) is in offload_from_vnet()/offload_to_vnet().
#pragma once

#include <cstdint>

namespace vpc {

struct OffloadMeta {
  // VIRTIO_NET_HDR_F_* values.
  static constexpr uint8_t kNeedsCsum = 1;  // csum_start/csum_offset are valid; the L4 checksum field holds the pseudo-header sum
  static constexpr uint8_t kDataValid = 2;  // the L4 checksum was verified (receive side only)
  // VIRTIO_NET_HDR_GSO_* values.
  static constexpr uint8_t kGsoNone = 0;
  static constexpr uint8_t kGsoTcpv4 = 1;
  static constexpr uint8_t kGsoUdp = 3;     // UFO: never produced here, refused on receive
  static constexpr uint8_t kGsoTcpv6 = 4;
  static constexpr uint8_t kGsoUdpL4 = 5;   // USO
  static constexpr uint8_t kGsoEcn = 0x80;  // flag on top of the type: CWR may be set on the first segment

  uint8_t flags = 0;
  uint8_t gso_type = kGsoNone;  // type | kGsoEcn
  uint16_t hdr_len = 0;         // Ethernet + IP + TCP header bytes (a hint; recomputed when segmenting)
  uint16_t gso_size = 0;        // payload bytes per segment (the MSS)
  uint16_t csum_start = 0;      // where the checksummed region starts, from the frame start
  uint16_t csum_offset = 0;     // where the checksum field is, from csum_start

  uint8_t gso_kind() const { return uint8_t(gso_type & ~kGsoEcn); }
  bool gso() const { return gso_kind() != kGsoNone; }
  bool needs_csum() const { return (flags & kNeedsCsum) != 0; }
  // True when a receiver that handles nothing must get the frame changed.
  bool pending() const { return gso() || needs_csum(); }
};
static_assert(sizeof(OffloadMeta) == 10, "OffloadMeta packs like a virtio_net_hdr");

// Wire layout of struct virtio_net_hdr (10 bytes) and, with num_buffers,
// virtio_net_hdr_mrg_rxbuf (12 bytes). Multi-byte fields little endian.
constexpr uint32_t kVnetHdrLen = 10;
constexpr uint32_t kVnetHdrMrgLen = 12;

// Moves the offsets when `delta` bytes are inserted (> 0) or removed (< 0) in
// front of the L3 header (an 802.1Q tag pushed or popped).
inline void offload_shift(OffloadMeta& m, int delta) {
  if (m.needs_csum()) m.csum_start = uint16_t(m.csum_start + delta);
  if (m.hdr_len) m.hdr_len = uint16_t(m.hdr_len + delta);
}

// Reads the 10-byte virtio_net_hdr at `h`. Returns false for state the switch
// does not take: an unknown GSO type, or UFO (kGsoUdp, which the kernel no
// longer produces); the frame is then a counted drop at the receiving port.
inline bool offload_from_vnet(const uint8_t* h, OffloadMeta* m) {
  auto le16 = [h](int o) { return uint16_t(h[o] | (h[o + 1] << 8)); };
  m->flags = h[0];
  m->gso_type = h[1];
  m->hdr_len = le16(2);
  m->gso_size = le16(4);
  m->csum_start = le16(6);
  m->csum_offset = le16(8);
  const uint8_t k = m->gso_kind();
  if (k != OffloadMeta::kGsoNone && k != OffloadMeta::kGsoTcpv4 && k != OffloadMeta::kGsoTcpv6 &&
      k != OffloadMeta::kGsoUdpL4)
    return false;
  if (m->gso() && m->gso_size == 0) return false;
  return true;
}

// Writes `m` as a 10-byte virtio_net_hdr at `h`.
inline void offload_to_vnet(const OffloadMeta& m, uint8_t* h) {
  auto le16 = [h](int o, uint16_t v) {
    h[o] = uint8_t(v);
    h[o + 1] = uint8_t(v >> 8);
  };
  h[0] = m.flags;
  h[1] = m.gso_type;
  le16(2, m.hdr_len);
  le16(4, m.gso_size);
  le16(6, m.csum_start);
  le16(8, m.csum_offset);
}

// Offloads a port accepts on transmit (what it can take as it is), and
// produces on receive. Bit values follow the kernel's TUN_F_* where one exists.
enum PortOffload : uint32_t {
  kOffCsum = 1u << 0,     // checksum-partial frames (TUN_F_CSUM)
  kOffTso4 = 1u << 1,     // GSO TCPv4 (TUN_F_TSO4)
  kOffTso6 = 1u << 2,     // GSO TCPv6 (TUN_F_TSO6)
  kOffTsoEcn = 1u << 3,   // GSO with the ECN flag (TUN_F_TSO_ECN)
  kOffUso = 1u << 5,      // GSO UDP L4 (TUN_F_USO4|USO6)
  kOffAll = kOffCsum | kOffTso4 | kOffTso6 | kOffTsoEcn | kOffUso,
  kOffNever = 1u << 31,   // never announced by a port: state nothing may take as it is (UFO)
};

// The PortOffload bits an egress must accept to take a frame with state `m`
// as it is. GSO implies a partial checksum (the segments' checksums are
// computed by whoever segments), so it needs kOffCsum too.
inline uint32_t offload_needs(const OffloadMeta& m) {
  uint32_t need = m.pending() ? uint32_t(kOffCsum) : 0u;
  switch (m.gso_kind()) {
    case OffloadMeta::kGsoTcpv4: need |= kOffTso4; break;
    case OffloadMeta::kGsoTcpv6: need |= kOffTso6; break;
    case OffloadMeta::kGsoUdpL4: need |= kOffUso; break;
    case OffloadMeta::kGsoNone: break;
    default: need |= kOffNever; break;
  }
  if (m.gso() && (m.gso_type & OffloadMeta::kGsoEcn)) need |= kOffTsoEcn;
  return need;
}

}  // namespace vpc
