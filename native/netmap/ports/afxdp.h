// AF_XDP port: the kernel moves frames straight into the engine's buffers.
//
//   NIC/veth queue q ──XDP redirect──► socket q: rx ring ──┐
//   NIC/veth queue q+1 ──────────────► socket q+1: rx ring ─┴► rx_burst (no copy, Pkt names the buffer)
//   tx_burst ──► socket q: tx ring ──► one sendto() kick when the kernel asks (need_wakeup)
//
// - Queues: one AF_XDP socket per receive queue, all of one port. "afxdp:IF"
//   opens every rx queue the interface has (ETHTOOL_GCHANNELS rx + combined,
//   else /sys/class/net/IF/queues/rx-*, else 1), at most
//   PortStatus::kMaxQueues; "afxdp:IF@q" opens queue q only. The queues
//   option (KernelPortOptions::queues, 0 = that default) asks for N queues
//   from q (or 0): q..q+N-1, refused when the interface has fewer. Without a
//   socket on a queue, libxdp's program passes that queue's frames to the
//   kernel and the switch never sees them. The range is fixed for the port's
//   life: when the interface returns the same queues are re-opened, and if
//   they no longer fit (another count where every queue was asked for, or
//   too few) the port stays down with an error saying why.
// - rx_burst takes up to `max` frames from the queues in turn, starting one
//   queue further each call so that a busy queue cannot starve the others;
//   PortStatus::queue_rx[k] counts the frames of the port's queue k.
// - tx uses the first queue's socket only: the engine is one thread, and
//   spreading a burst over queues would reorder a flow (one tx queue per
//   polling thread, as OVS does). Only that socket's completion ring is ever
//   reaped and only it is kicked.
// - UMEM = the engine's BufferPool: the whole mmap'd region is registered
//   (chunk = buffer size, no UMEM headroom), so a descriptor address is
//   (buffer index << log2(buffer size)) + offset. Every AF_XDP socket of one
//   pool shares that single UMEM (XDP_SHARED_UMEM, own fill and completion
//   rings per socket): AF_XDP <-> AF_XDP forwarding never copies in userspace.
// - Ownership: buffers posted on a fill ring or the tx ring belong to the
//   kernel until they come back on an rx or the completion ring. Each port
//   remembers which ones it lent, and takes them all back when its sockets
//   are closed. Each queue's fill ring holds rx_ring buffers, so a port lends
//   up to queues x rx_ring buffers.
// - XDP program: libxdp's default XSK program (xsk_def_xdp_prog.o: redirect
//   to the XSKMAP entry of the receive queue, XDP_PASS for other queues), one
//   per port with one XSKMAP entry per queue, loaded and attached by the port
//   itself (native XDP first, then generic, unless told otherwise), only if
//   the interface has no XDP program yet; detached (only if it is still ours)
//   when the port closes.
// - need_wakeup: tx kicks only when the kernel sets the flag on the tx ring;
//   rx calls recvfrom() on a queue only when its fill ring asks for it.
// - Link: as afpacket (port down when the interface is down or gone, every
//   queue re-opened when an interface of that name returns). poll_fd() is an
//   epoll descriptor holding every queue's socket; it stays the same across
//   re-opens. XDP statistics are summed over the sockets.
// - One port per interface.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/buffer_pool.h"
#include "core/offload.h"
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

// XDP also hides a frame's GSO state. A TCP frame (Ethernet, up to two VLAN
// tags, IPv4 or IPv6) whose IP packet is longer than the interface's MTU
// (`if_mtu`; 0: `mtu`) is a TSO batch; so is one longer than `mtu`, or than
// kTsoFloor when `mtu` is larger (a jumbo port, whose guest may cut for a
// narrower path), whose checksum is partial. For a batch, fills *m as the
// sender's kernel had it (GSO TCPv4/v6, segment size = mtu - IP header - TCP
// header with options, checksum-partial at the TCP checksum) and returns
// true. Anything else: false, *m untouched. `mtu` is the smaller of the
// interface's and the port's: segments are never guessed larger than the
// port takes.
constexpr uint32_t kTsoFloor = 1500;
bool infer_tso(const uint8_t* frame, uint32_t len, uint32_t mtu, OffloadMeta* m, uint32_t if_mtu = 0);
// True when a frame longer than the MTU is UDP over IPv4 or IPv6: a sender's
// UDP GSO batch (UDP_SEGMENT) that XDP handed over whole. Unlike a TCP
// stream, its datagram boundaries are the sender's gso_size, which XDP does
// not pass on, so it cannot be cut as meant.
bool udp_batch_without_size(const uint8_t* frame, uint32_t len, uint32_t mtu);

// The queues a port opens: first..first+count-1 of an interface with
// `of_interface` rx queues (0: unknown).
struct XskQueues {
  uint32_t first = 0, count = 1, of_interface = 0;
  bool operator==(const XskQueues&) const = default;
};
// spec_queue: the spec's "@q" (-1: none); requested: KernelPortOptions::queues
// (0: every queue without "@q", one with it); if_queues: the interface's rx
// queues (0: unknown, then a request is not checked against it);
// map_entries: how many queue ids the XSKMAP holds. On failure returns false
// and sets *err to what to change (it names `queues` or the queue).
bool resolve_xsk_queues(const std::string& ifname, int spec_queue, uint32_t requested, uint32_t if_queues,
                        uint32_t map_entries, XskQueues* out, std::string* err);

// True when this build has AF_XDP (libxdp and libbpf were found).
bool afxdp_built();

// The XDP program journal: an afxdp port records the program it attached
// (xdp-<ifname>: ifindex, program id, attach mode) in the offload journal's
// directory (ports/ifutil.h) and deletes the record when it detaches it.
// xdp_recover() at the next start detaches each recorded program that is
// still attached to the same interface (a process killed with kill -9 left
// it, and the interface would refuse the next port) and deletes the records.
// Returns the interfaces it freed.
constexpr char kXdpJournalPrefix[] = "xdp-";
std::vector<std::string> xdp_recover(const std::string& dir);

// Throws PortError (including "not built" when afxdp_built() is false).
std::unique_ptr<Port> open_afxdp_port(const PortSpec& spec, const KernelPortOptions& opts,
                                      std::shared_ptr<BufferPool> pool, std::shared_ptr<PortStatus> status);

}  // namespace vpc
