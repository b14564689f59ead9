// AF_XDP port: the kernel moves frames straight into the engine's buffers.
//
//   NIC/veth ──XDP redirect──► rx ring ──► rx_burst (no copy, Pkt names the buffer)
//   tx_burst ──► tx ring ──► one sendto() kick when the kernel asks (need_wakeup)
//
// - UMEM = the engine's BufferPool: the whole mmap'd region is registered
//   (chunk = buffer size, no UMEM headroom), so a descriptor address is
//   (buffer index << log2(buffer size)) + offset. Every AF_XDP port of one
//   pool shares that single UMEM (XDP_SHARED_UMEM, own fill and completion
//   rings per socket): AF_XDP <-> AF_XDP forwarding never copies in userspace.
// - Ownership: buffers posted on the fill ring or the tx ring belong to the
//   kernel until they come back on the rx or the completion ring. Each port
//   remembers which ones it lent, and takes them all back when its socket is
//   closed.
// - XDP program: libxdp's default XSK program (xsk_def_xdp_prog.o: redirect
//   to the XSKMAP entry of the receive queue, XDP_PASS for other queues),
//   loaded and attached by the port itself (native XDP first, then generic,
//   unless told otherwise), only if the interface has no XDP program yet;
//   detached (only if it is still ours) when the port closes.
// - need_wakeup: tx kicks only when the kernel sets the flag on the tx ring;
//   rx calls recvfrom() only when the fill ring asks for it.
// - Link: as afpacket (port down when the interface is down or gone, re-open
//   when an interface of that name returns). poll_fd() is an epoll
//   descriptor that stays the same across re-opens.
// - One queue per port ("afxdp:IF@q", default 0) and one port per interface.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "core/buffer_pool.h"
#include "core/types.h"
#include "ports/port.h"
#include "ports/spec.h"

namespace vpc {

// Descriptor address <-> Pkt, for a UMEM whose chunk is 1 << shift bytes.
inline uint64_t xsk_addr_of(uint32_t buf, uint32_t off, uint32_t shift) { return (uint64_t(buf) << shift) + off; }
inline Pkt xsk_pkt_of(uint64_t addr, uint32_t len, uint32_t shift) {
  const uint64_t mask = (uint64_t(1) << shift) - 1;
  return Pkt{uint32_t(addr >> shift), uint16_t(addr & mask), uint16_t(len)};
}

// XDP hides whether a received frame carries a partial (offloaded) checksum
// (Linux CHECKSUM_PARTIAL: the TCP/UDP field holds only the folded
// pseudo-header sum). This finds such frames without trusting a flag: only a
// frame whose field equals that sum AND whose full checksum does not verify
// is completed, so a correct frame is never changed. Ethernet (+ one 802.1Q
// tag) / IPv4 (unfragmented) or IPv6 (no extension headers) / TCP or UDP.
// Returns true when it completed the checksum.
bool complete_hidden_partial_checksum(uint8_t* frame, uint32_t len);

// True when this build has AF_XDP (libxdp and libbpf were found).
bool afxdp_built();

// Throws PortError (including "not built" when afxdp_built() is false).
std::unique_ptr<Port> open_afxdp_port(const PortSpec& spec, const KernelPortOptions& opts,
                                      std::shared_ptr<BufferPool> pool, std::shared_ptr<PortStatus> status);

}  // namespace vpc
