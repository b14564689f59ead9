// The virtio_net_hdr that AF_PACKET (PACKET_VNET_HDR) and tap (IFF_VNET_HDR)
// put in front of every frame, checked on receive before the engine trusts
// it. The conversion itself is core/offload.h's offload_from_vnet() and
// offload_to_vnet().
//
// Receive side: vnet_read() refuses a header (the frame is dropped and the
// caller counts rx_bad_vnet) when
// - offload_from_vnet() refuses it (UFO, an unknown GSO type, GSO with a
//   zero segment size),
// - its flags carry bits other than NEEDS_CSUM and DATA_VALID,
// - the ECN flag comes without a GSO type,
// - its checksum position does not fit inside the frame.
// A header that leaves nothing to do (no NEEDS_CSUM, no GSO) gives a plain
// frame: the caller does not mark the descriptor, so the 64-byte path never
// touches the pool's side table.
// Transmit side: vnet_write() writes the header for a frame's state (without
// DATA_VALID, which means nothing on transmit), or a zero header
// (VIRTIO_NET_HDR_GSO_NONE, no flags) for a plain frame. Multi-byte fields
// are little endian: the kernel's vnet_hdr byte order for packet sockets, and
// what the tap is told with TUNSETVNETLE.
#pragma once

#include <cstdint>

#include "core/offload.h"

namespace vpc {

enum class VnetVerdict : uint8_t {
  kPlain,    // nothing pending: a complete frame
  kOffload,  // *meta holds checksum and/or segmentation state
  kInvalid,  // refused (see above)
};

// `hdr` points at kVnetHdrLen bytes; `frame_len` is the frame's length
// without the header (offsets in the header count from the frame's first
// byte).
VnetVerdict vnet_read(const uint8_t* hdr, uint32_t frame_len, OffloadMeta* meta);
// Writes kVnetHdrLen bytes at `hdr`; meta null: a plain frame.
void vnet_write(const OffloadMeta* meta, uint8_t* hdr);

}  // namespace vpc
