// Every counter and drop reason of the dataplane, declared once.
//
// Each X-macro row gives the identifier, the kind and the help text. The same
// rows feed the enums below, the name tables the addon hands to JavaScript,
// and (through them) the Prometheus metric names and types, so a counter, its
// name, its kind and its help cannot drift apart.
//
// Kind: `counter` only grows while its object lives (Prometheus counter,
// exported as <name>_total); `gauge` goes up and down (a current level, such
// as table occupancy or free buffers; exported as <name>).
//
// Concurrency: the engine thread is the only writer. Readers on other threads
// (stats, metrics) load with relaxed atomics through std::atomic_ref and never
// stop the engine; a reader may see one counter a batch newer than another.
#pragma once

#include <atomic>
#include <cstdint>

namespace vpc {

#define VPC_PORT_COUNTERS(X)                                      \
  X(rx_packets, counter, "Frames received on the port")                    \
  X(rx_bytes, counter, "Bytes received on the port")                       \
  X(tx_packets, counter, "Frames transmitted on the port")                 \
  X(tx_bytes, counter, "Bytes transmitted on the port")                    \
  X(rx_drops, counter, "Received frames dropped, all reasons")             \
  X(tx_drops, counter, "Frames that could not be transmitted, all reasons") \
  X(fdb_learned, gauge, "FDB entries currently learned on this port")    \
  X(link_changes, counter, "Times the link went up or down")               \
  X(link_up, gauge, "1 while the port's link is up, else 0")             \
  X(tx_gso_frames, counter, "Super-frames (GSO) segmented in software for this port") \
  X(tx_gso_segments, counter, "Segments produced by software segmentation for this port") \
  X(tx_csum_completed, counter, "Checksum-partial frames whose checksum the switch completed for this port") \
  X(rx_kernel_path, counter, "Frames received on this port that the kernel fast path switched (also in rx_packets)") \
  X(tx_kernel_path, counter, "Frames the kernel fast path transmitted on this port (also in tx_packets)")

#define VPC_SWITCH_COUNTERS(X)                                                     \
  X(fdb_entries, gauge, "MAC entries in the forwarding table (learned and static)")      \
  X(fdb_static, gauge, "Static MAC entries in the forwarding table")                     \
  X(rx_packets, counter, "Frames switched in this switch")                                 \
  X(learned, counter, "MAC addresses learned")                                             \
  X(moved, counter, "Learned MAC addresses that moved to another port")                    \
  X(aged, counter, "Learned MAC addresses removed by aging")                               \
  X(flooded, counter, "Frames flooded (broadcast, multicast and unknown unicast)")         \
  X(flooded_unknown, counter, "Unknown-unicast frames flooded")                            \
  X(flood_copies, counter, "Extra frame copies made for flooding (recipients minus one per flooded frame)")                               \
  X(learn_table_full, counter, "Source MACs not learned because the switch MAC limit was reached") \
  X(learn_port_limit, counter, "Source MACs not learned because the port MAC limit was reached") \
  X(evicted, counter, "Learned MACs evicted, oldest first, from the source holding the most entries, to make room for a source below its fair share of a full table") \
  X(drops, counter, "Frames dropped in this switch, all reasons")

#define VPC_ENGINE_COUNTERS(X)                                                 \
  X(iterations, counter, "Poll loop iterations")                                        \
  X(busy_iterations, counter, "Iterations that moved at least one frame")              \
  X(batches, counter, "Non-empty receive bursts processed")                            \
  X(packets, counter, "Frames the engine received from all ports (not those the kernel fast path switched: rx_kernel_path)") \
  X(busy_ns, counter, "Nanoseconds spent in iterations that moved frames")             \
  X(idle_ns, counter, "Nanoseconds spent in iterations that moved nothing, sleep included") \
  X(sleeps, counter, "Times the engine slept (epoll_wait(2))")                         \
  X(commands, counter, "Control commands applied")                                     \
  X(events, counter, "Events delivered to the control plane")                          \
  X(events_dropped, counter, "Events lost because the event ring was full")            \
  X(buffers_free, gauge, "Buffers free in the pool (not counting per-thread caches)") \
  X(large_buffers_free, gauge, "Large (64 KiB) buffers free in the pool (not counting per-thread caches)") \
  X(aging_scanned, counter, "FDB slots visited by the aging sweep")                    \
  X(icmp_too_big_sent, counter, "ICMP Fragmentation Needed / ICMPv6 Packet Too Big answers sent") \
  X(icmp_too_big_limited, counter, "Too-big answers not sent because of the rate limit") \
  X(icmp_too_big_skipped, counter, "Too-big frames not answered: no DF, ICMP errors, multicast, bad source (proto/too_big.h)") \
  X(kernel_path_entries, gauge, "MAC entries the kernel fast path holds (docs/design/kernel-path.md)") \
  X(kernel_path_full, counter, "MAC entries not given to the kernel fast path because its table was full (their frames go through the engine)") \
  X(kernel_path_paused, gauge, "1 while a capture or trace runs: the kernel fast path is off so that they see every frame, and every frame goes through the engine") \
  X(capture_ring_full, counter, "Frames not captured because a capture's ring was full (the capture reader fell behind)") \
  X(link_checks, counter, "Port link checks (a kernel port's costs a few system calls)") \
  X(link_messages, counter, "Kernel link messages read (netlink RTM_NEWLINK/RTM_DELLINK); a port whose interface one names is checked at once") \
  X(link_messages_lost, counter, "Times kernel link messages were lost (netlink receive buffer full); every watched port was checked") \
  X(link_watch, gauge, "Kernel link messages followed: 2 in the switch's namespace and those it has an id for, 1 in its own only, 0 none (netlink refused; every port is checked in turn)") \
  X(iteration_max_ns, gauge, "Longest poll-loop iteration in the previous housekeeping period (idle_poll_ms), its sleep excluded")

// Drop reasons, shared by ports and switches: a frame dropped after it was
// mapped to a switch counts at both its ingress (or egress) port and there.
#define VPC_DROP_REASONS(X)                                                         \
  X(runt, counter, "Frame shorter than an Ethernet header (14 bytes)")                     \
  X(vlan_truncated, counter, "802.1Q-tagged frame shorter than 18 bytes")                 \
  X(oversize, counter, "Frame longer than the port MTU allows")                           \
  X(src_mac_multicast, counter, "Source MAC is multicast or broadcast")                   \
  X(src_mac_zero, counter, "Source MAC is 00:00:00:00:00:00")                             \
  X(vlan_not_member, counter, "Frame's VLAN (or untagged frame) is not mapped to a switch on this port") \
  X(vlan_reserved, counter, "VLAN ID 4095 is reserved")                                   \
  X(port_security, counter, "Source MAC is not in the port's locked MAC list")            \
  X(static_mac_conflict, counter, "Source MAC is a static entry on another port")         \
  X(same_port, counter, "Destination MAC is behind the ingress port")                     \
  X(link_down, counter, "Egress port link is down (vhost-user: also a guest receive queue that is not set up or broken)") \
  X(tx_ring_full, counter, "Egress ring full (vhost-user: also a guest that took no receive buffer for a second, guest_stalled)") \
  X(egress_too_big, counter, "Frame longer than the egress interface's MTU (the kernel would refuse it) or than a vhost-user guest's receive buffers") \
  X(no_buffer, counter, "No free buffer in the pool (for a flood copy, a software segment or a copy out of a large buffer)")                                \
  X(no_headroom, counter, "Too little buffer headroom to push a VLAN tag or VXLAN headers") \
  X(member_table_full, counter, "No free switch membership for a remote VTEP (too many memberships)") \
  X(port_deleted, counter, "Frames queued for a port that was deleted")                    \
  X(outer_dst_mac, counter, "Uplink frame addressed to another host's MAC")               \
  X(outer_ip_header, counter, "Outer IP version or header length invalid")              \
  X(outer_ip_checksum, counter, "Outer IPv4 header checksum wrong")                       \
  X(outer_ip_length, counter, "Outer IP length does not match the frame")                 \
  X(outer_ip_fragment, counter, "Outer IP packet is a fragment (never reassembled)")     \
  X(outer_udp_length, counter, "Outer UDP length invalid")                                \
  X(outer_udp_checksum, counter, "Outer UDP checksum wrong (or zero over IPv6 when not allowed)") \
  X(vxlan_flags, counter, "VXLAN header without the I flag")                              \
  X(vxlan_vni_unknown, counter, "VXLAN VNI not configured on any switch")                 \
  X(vxlan_inner_runt, counter, "Decapsulated frame shorter than an Ethernet header")      \
  X(vxlan_peer_denied, counter, "VXLAN from a VTEP that is not a peer of the VNI's switch (and the switch does not allow unknown peers)") \
  X(vxlan_vtep_table_full, counter, "VXLAN from a new VTEP while no learned-VTEP slot is free (maxLearnedVteps or maxVteps)") \
  X(vxlan_peer_invalid, counter, "VXLAN from an address that cannot be a VTEP (unspecified, multicast, loopback or our own)") \
  X(vxlan_too_big, counter, "Frame too big to encapsulate within the uplink MTU")         \
  X(neighbor_unresolved, counter, "Next hop of a remote VTEP not resolved by ARP/ND")     \
  X(remote_to_remote, counter, "Frame from a remote VTEP addressed to another remote VTEP (split horizon)") \
  X(no_uplink, counter, "Frame for a remote VTEP but no uplink is up")                  \
  X(mtu_exceeded, counter, "Frame longer than the egress port's MTU (answered with ICMP too big when DF or IPv6)") \
  X(gso_unsupported, counter, "Offloaded frame the switch cannot segment or complete: UFO, unknown GSO type, not TCP/UDP over IPv4/IPv6, fragments, unsupported IPv6 extension headers") \
  X(gso_malformed, counter, "Offloaded frame whose state disagrees with its headers: checksum offsets outside the frame, GSO type not matching, bad lengths") \
  X(kernel_path_error, counter, "Frame the kernel fast path took but could not encapsulate or decapsulate (the kernel was out of memory), or that the uplink's XDP or GRO stage decapsulated and TC ingress found no longer fit the tables (its port left meanwhile, or forged metadata), or that the uplink's GRO stage lost (its ring full, an end down; counted at the uplink's link checks)")

// Per remote VTEP (peer).
#define VPC_PEER_COUNTERS(X)                                          \
  X(rx_packets, counter, "VXLAN packets received from this VTEP")              \
  X(rx_bytes, counter, "Inner bytes received from this VTEP")                  \
  X(tx_packets, counter, "VXLAN packets sent to this VTEP")                    \
  X(tx_bytes, counter, "Inner bytes sent to this VTEP")                        \
  X(drops, counter, "Frames from or to this VTEP that were dropped")           \
  X(fdb_learned, gauge, "FDB entries currently learned behind this VTEP")

// Per switch and peer: one switch's VNI with one remote VTEP (a remote
// member, overlay/switch_peer_counters.h). The peer's own counters above are its
// totals over every switch; these say which VNI the traffic belonged to.
#define VPC_SWITCH_PEER_COUNTERS(X)                                                  \
  X(rx_packets, counter, "VXLAN packets received from this peer for this switch's VNI") \
  X(rx_bytes, counter, "Inner bytes received from this peer for this switch's VNI")     \
  X(tx_packets, counter, "VXLAN packets sent to this peer for this switch's VNI")       \
  X(tx_bytes, counter, "Inner bytes sent to this peer for this switch's VNI")           \
  X(drops, counter, "Frames of this switch from or to this peer that were dropped")

// Per uplink: the underlay side of the VTEP.
#define VPC_UPLINK_COUNTERS(X)                                                  \
  X(vxlan_rx, counter, "VXLAN packets decapsulated")                                     \
  X(vxlan_tx, counter, "VXLAN packets encapsulated")                                     \
  X(vxlan_tx_batched, counter, "VXLAN packets handed to the uplink in UDP GSO super-frames (several per frame)") \
  X(vxlan_rx_coalesced, counter, "VXLAN packets received in UDP GSO super-frames whose inner TCP segments became one frame") \
  X(vxlan_rx_gro, counter, "VXLAN packets received one by one whose inner TCP segments were coalesced into super-frames (GRO)") \
  X(vxlan_rx_gro_frames, counter, "Super-frames made by coalescing inner TCP segments received one VXLAN packet each (GRO)") \
  X(arp_requests_sent, counter, "ARP requests sent to resolve next hops")                \
  X(arp_replies_sent, counter, "ARP replies sent for the VTEP address")                  \
  X(nd_solicits_sent, counter, "Neighbor Solicitations sent to resolve next hops")       \
  X(nd_adverts_sent, counter, "Neighbor Advertisements sent for the VTEP address")       \
  X(echo_replies_sent, counter, "ICMP/ICMPv6 echo replies sent for the VTEP address")    \
  X(neighbors_resolved, counter, "Next hops resolved (or refreshed)")                    \
  X(neighbors_failed, counter, "Next hop resolutions that gave up")                      \
  X(neighbor_queue_drops, counter, "Frames dropped while waiting for a next hop")        \
  X(to_host, counter, "Uplink frames for the host, not the switch (other addresses, protocols or UDP ports; left to the host stack, not drops)")

// Per virtqueue of a vhost-user port (ports/virtio_ring.h): what moved, and
// why frames were dropped there. The ring_* reasons are a guest breaking the
// virtio rules: the queue is marked broken (lastError) until the front end
// sets it up again.
#define VPC_VIRTQ_COUNTERS(X)                                                     \
  X(packets, counter, "Frames moved through the virtqueue")                               \
  X(bytes, counter, "Frame bytes moved through the virtqueue (virtio-net headers not counted)") \
  X(notifies, counter, "Interrupts sent to the guest through the call eventfd")         \
  X(guest_full, counter, "Frames for the guest that found no free receive buffer and waited in the port's backlog (a full backlog: the port's tx_ring_full)")

#define VPC_VIRTQ_DROPS(X)                                                        \
  X(ring_bad_avail_idx, counter, "Avail index moved by more than the queue size")         \
  X(ring_bad_head, counter, "Avail ring entry names a descriptor beyond the queue size")  \
  X(ring_bad_next, counter, "Descriptor's next index beyond its table")                  \
  X(ring_desc_loop, counter, "Descriptor chain longer than its table (a loop)")          \
  X(ring_bad_addr, counter, "Descriptor or ring address outside the guest memory regions") \
  X(ring_bad_indirect, counter, "Indirect table not negotiated, nested, empty, misaligned in length or combined with NEXT") \
  X(ring_wrong_direction, counter, "Device-writable descriptor in a transmit chain, or read-only one in a receive chain") \
  X(ring_short_buffer, counter, "Mergeable receive buffer shorter than the virtio-net header") \
  X(short_chain, counter, "Transmit chain shorter than the virtio-net header, or with no frame") \
  X(too_big, counter, "Transmit chain longer than the largest frame (65,535 bytes) or than a buffer when large buffers are off") \
  X(bad_vnet_hdr, counter, "Invalid virtio-net header (UFO, unknown GSO type, checksum offsets outside the frame)") \
  X(no_buffer, counter, "No free engine buffer for a frame from the guest")              \
  X(guest_buffer_small, counter, "Frame longer than the guest's receive chain (no mergeable buffers), or than all its receive buffers together (mergeable buffers)") \
  X(offload_refused, counter, "Frame with GSO state for a guest that did not negotiate that offload, or whose checksum could not be completed") \
  X(not_ready, counter, "Frame for a queue that is broken, disabled or not set up")                  \
  X(guest_stalled, counter, "Frame that waited in the port's backlog while the guest took no receive buffer for a second")

#define VPC_ENUM_ROW(name, kind, help) name,
enum class PortCounter : uint16_t { VPC_PORT_COUNTERS(VPC_ENUM_ROW) kCount };
enum class SwitchCounter : uint16_t { VPC_SWITCH_COUNTERS(VPC_ENUM_ROW) kCount };
enum class EngineCounter : uint16_t { VPC_ENGINE_COUNTERS(VPC_ENUM_ROW) kCount };
enum class Drop : uint16_t { VPC_DROP_REASONS(VPC_ENUM_ROW) kCount };
enum class PeerCounter : uint16_t { VPC_PEER_COUNTERS(VPC_ENUM_ROW) kCount };
enum class SwitchPeerCounter : uint16_t { VPC_SWITCH_PEER_COUNTERS(VPC_ENUM_ROW) kCount };
enum class UplinkCounter : uint16_t { VPC_UPLINK_COUNTERS(VPC_ENUM_ROW) kCount };
enum class VirtqCounter : uint16_t { VPC_VIRTQ_COUNTERS(VPC_ENUM_ROW) kCount };
enum class VirtqDrop : uint16_t { VPC_VIRTQ_DROPS(VPC_ENUM_ROW) kCount };
#undef VPC_ENUM_ROW

constexpr size_t kPortCounters = size_t(PortCounter::kCount);
constexpr size_t kSwitchCounters = size_t(SwitchCounter::kCount);
constexpr size_t kEngineCounters = size_t(EngineCounter::kCount);
constexpr size_t kDrops = size_t(Drop::kCount);
constexpr size_t kPeerCounters = size_t(PeerCounter::kCount);
constexpr size_t kSwitchPeerCounters = size_t(SwitchPeerCounter::kCount);
constexpr size_t kUplinkCounters = size_t(UplinkCounter::kCount);
constexpr size_t kVirtqCounters = size_t(VirtqCounter::kCount);
constexpr size_t kVirtqDrops = size_t(VirtqDrop::kCount);

enum class CounterKind : uint8_t { counter, gauge };

struct CounterInfo {
  const char* name;
  CounterKind kind;
  const char* help;
};
const char* counter_kind_name(CounterKind k);  // "counter", "gauge"
extern const CounterInfo kPortCounterInfo[kPortCounters];
extern const CounterInfo kSwitchCounterInfo[kSwitchCounters];
extern const CounterInfo kEngineCounterInfo[kEngineCounters];
extern const CounterInfo kDropInfo[kDrops];
extern const CounterInfo kPeerCounterInfo[kPeerCounters];
extern const CounterInfo kSwitchPeerCounterInfo[kSwitchPeerCounters];
extern const CounterInfo kUplinkCounterInfo[kUplinkCounters];
extern const CounterInfo kVirtqCounterInfo[kVirtqCounters];
extern const CounterInfo kVirtqDropInfo[kVirtqDrops];

// Single-writer counter cell helpers.
inline void cnt_add(uint64_t& c, uint64_t n) {
  std::atomic_ref<uint64_t>(c).store(c + n, std::memory_order_relaxed);
}
inline void cnt_set(uint64_t& c, uint64_t v) {
  std::atomic_ref<uint64_t>(c).store(v, std::memory_order_relaxed);
}
inline uint64_t cnt_read(const uint64_t& c) {
  return std::atomic_ref<uint64_t>(const_cast<uint64_t&>(c)).load(std::memory_order_relaxed);
}

// One block per object. `in_use` tells readers which slots hold a live object;
// `generation` changes every time a slot is reused.
struct alignas(64) PortCounterBlock {
  uint64_t in_use;
  uint64_t generation;
  uint64_t c[kPortCounters];
  uint64_t drops[kDrops];
  void add(PortCounter k, uint64_t n) { cnt_add(c[size_t(k)], n); }
  void set(PortCounter k, uint64_t v) { cnt_set(c[size_t(k)], v); }
  void drop_rx(Drop r, uint64_t n = 1) {
    cnt_add(drops[size_t(r)], n);
    cnt_add(c[size_t(PortCounter::rx_drops)], n);
  }
  void drop_tx(Drop r, uint64_t n = 1) {
    cnt_add(drops[size_t(r)], n);
    cnt_add(c[size_t(PortCounter::tx_drops)], n);
  }
};

struct alignas(64) SwitchCounterBlock {
  uint64_t in_use;
  uint64_t generation;
  uint64_t c[kSwitchCounters];
  uint64_t drops[kDrops];
  void add(SwitchCounter k, uint64_t n) { cnt_add(c[size_t(k)], n); }
  void set(SwitchCounter k, uint64_t v) { cnt_set(c[size_t(k)], v); }
  void drop(Drop r, uint64_t n = 1) {
    cnt_add(drops[size_t(r)], n);
    cnt_add(c[size_t(SwitchCounter::drops)], n);
  }
};

// rx_*/tx_* here hold only what no live (switch, peer) block does: closed
// memberships' traffic and frames no membership owned. Totals: read them
// with Engine::peer_snapshot() (overlay/switch_peer_counters.h).
struct alignas(64) PeerCounterBlock {
  uint64_t in_use;
  uint64_t generation;
  uint8_t ip[16];  // the VTEP's address (IPv4-mapped for IPv4), set when in_use
  uint64_t c[kPeerCounters];
  void add(PeerCounter k, uint64_t n) { cnt_add(c[size_t(k)], n); }
  void set(PeerCounter k, uint64_t v) { cnt_set(c[size_t(k)], v); }
};

// One cache line: `owner` is the switch id (high 32 bits) and the peer's slot
// (low 32 bits, its PeerCounterBlock index), set while in_use.
struct alignas(64) SwitchPeerCounterBlock {
  uint64_t in_use;
  uint64_t generation;
  uint64_t owner;
  uint64_t c[kSwitchPeerCounters];
  void add(SwitchPeerCounter k, uint64_t n) { cnt_add(c[size_t(k)], n); }
};
static_assert(sizeof(SwitchPeerCounterBlock) == 64, "one cache line per switch and peer");

struct alignas(64) UplinkCounterBlock {
  uint64_t c[kUplinkCounters];
  void add(UplinkCounter k, uint64_t n) { cnt_add(c[size_t(k)], n); }
};

struct alignas(64) EngineCounterBlock {
  uint64_t c[kEngineCounters];
  void add(EngineCounter k, uint64_t n) { cnt_add(c[size_t(k)], n); }
  void set(EngineCounter k, uint64_t v) { cnt_set(c[size_t(k)], v); }
};

}  // namespace vpc
