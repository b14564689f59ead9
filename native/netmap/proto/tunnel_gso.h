// VXLAN datagrams batched as one UDP GSO (USO) super-frame, and the way back.
//
// A TCP super-frame from a guest, bound for a remote VTEP, is cut into
// segments that fit the overlay's inner MTU (proto/gso.h). Instead of one
// outer packet per segment, the switch can hand the uplink one frame
//
//   outer Ethernet | outer IP | outer UDP | VXLAN | segment 0 | VXLAN | segment 1 | ...
//
// with the state of a UDP GSO frame (VIRTIO_NET_HDR_GSO_UDP_L4, gso_size =
// one VXLAN datagram's UDP payload): whoever segments it (the kernel's
// software GSO, a NIC with USO) produces exactly the VXLAN packets the switch
// would have sent one by one, each with its own outer UDP checksum; a veth
// underlay carries it to the far end whole. Every chunk but the last is
// gso_size bytes; the TCP segments inside are all the same size, so they are.
//
// The far end gets the same frame back (AF_PACKET reports the GSO state).
// uso_coalesce() turns the chunks back into one inner TCP super-frame when
// they are consecutive segments of one flow (what the sender's split makes),
// so the guest gets one TSO frame instead of forty segments, the way Linux's
// GRO would hand it over. Anything else is left to the caller, which then
// decapsulates chunk by chunk.
//
// Wire formats only, like proto/gso.h: reads and writes [p, p + len).
#pragma once

#include <cstdint>

#include "core/offload.h"

namespace vpc {

struct UsoCoalesced {
  uint32_t inner_len = 0;  // the rebuilt inner frame, right after the first VXLAN header
  uint32_t segments = 0;   // how many chunks it was made of
  OffloadMeta meta;        // its state: TCP GSO, checksum partial (offsets from the inner frame's start)
};

// `p` points at the first VXLAN header, `len` bytes of chunks follow, each
// `chunk` bytes (VXLAN header + inner frame) but the last. When every chunk
// has the first one's VXLAN header and carries the next segment of the same
// TCP connection (same headers but for lengths, IPv4 ID, sequence number,
// flags and checksums; sequence numbers contiguous; every segment but the
// last of the first one's size; IPv4 header checksums correct, and with
// `verify` the TCP checksums too; no SYN, RST or URG; PSH and FIN only on the
// last, CWR only on the first), the
// inner frames are rewritten in place as one: the first chunk's headers, the
// payloads one after the other, lengths and IPv4 header checksum set, PSH and
// FIN of the last segment kept, the TCP checksum field seeded with the
// pseudo-header sum. Returns false, with the bytes unchanged, otherwise
// (including a single chunk).
//
// `verify` false: the batch is checksum-partial (its outer UDP checksum not
// yet computed), so it was built on this host and never crossed a wire; its
// segments' TCP checksums are what their sender computed over these very
// bytes, and are trusted as the kernel trusts a checksum-partial frame
// (proto/gro.h). A batch that came off a wire is verified.
bool uso_coalesce(uint8_t* p, uint32_t len, uint32_t chunk, bool verify, UsoCoalesced* out);

}  // namespace vpc
