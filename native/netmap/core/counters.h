// Every counter and drop reason of the dataplane, declared once.
//
// Each X-macro row gives the identifier and the help text. The same rows feed
// the enums below, the name tables the addon hands to JavaScript, and (through
// them) the Prometheus metric names, so a counter, its name and its help
// cannot drift apart.
//
// Concurrency: the engine thread is the only writer. Readers on other threads
// (stats, metrics) load with relaxed atomics through std::atomic_ref and never
// stop the engine; a reader may see one counter a batch newer than another.
#pragma once

#include <atomic>
#include <cstdint>

namespace vpc {

#define VPC_PORT_COUNTERS(X)                                      \
  X(rx_packets, "Frames received on the port")                    \
  X(rx_bytes, "Bytes received on the port")                       \
  X(tx_packets, "Frames transmitted on the port")                 \
  X(tx_bytes, "Bytes transmitted on the port")                    \
  X(rx_drops, "Received frames dropped, all reasons")             \
  X(tx_drops, "Frames that could not be transmitted, all reasons") \
  X(fdb_learned, "FDB entries currently learned on this port")    \
  X(link_changes, "Times the link went up or down")               \
  X(link_up, "1 while the port's link is up, else 0")             \
  X(tx_gso_frames, "Super-frames (GSO) segmented in software for this port") \
  X(tx_gso_segments, "Segments produced by software segmentation for this port") \
  X(tx_csum_completed, "Checksum-partial frames whose checksum the switch completed for this port")

#define VPC_SWITCH_COUNTERS(X)                                                     \
  X(fdb_entries, "MAC entries in the forwarding table (learned and static)")      \
  X(fdb_static, "Static MAC entries in the forwarding table")                     \
  X(rx_packets, "Frames switched in this switch")                                 \
  X(learned, "MAC addresses learned")                                             \
  X(moved, "Learned MAC addresses that moved to another port")                    \
  X(aged, "Learned MAC addresses removed by aging")                               \
  X(flooded, "Frames flooded (broadcast, multicast and unknown unicast)")         \
  X(flooded_unknown, "Unknown-unicast frames flooded")                            \
  X(flood_copies, "Extra frame copies made for flooding (recipients minus one per flooded frame)")                               \
  X(learn_table_full, "Source MACs not learned because the switch MAC limit was reached") \
  X(learn_port_limit, "Source MACs not learned because the port MAC limit was reached") \
  X(evicted, "Learned MACs evicted, oldest first, from the source holding the most entries, to make room for a source below its fair share of a full table") \
  X(drops, "Frames dropped in this switch, all reasons")

#define VPC_ENGINE_COUNTERS(X)                                                 \
  X(iterations, "Poll loop iterations")                                        \
  X(busy_iterations, "Iterations that moved at least one frame")              \
  X(batches, "Non-empty receive bursts processed")                            \
  X(packets, "Frames received from all ports")                                \
  X(busy_ns, "Nanoseconds spent in iterations that moved frames")             \
  X(idle_ns, "Nanoseconds spent in iterations that moved nothing, sleep included") \
  X(sleeps, "Times the engine slept in poll(2)")                              \
  X(commands, "Control commands applied")                                     \
  X(events, "Events delivered to the control plane")                          \
  X(events_dropped, "Events lost because the event ring was full")            \
  X(buffers_free, "Buffers free in the pool (not counting per-thread caches)") \
  X(large_buffers_free, "Large (64 KiB) buffers free in the pool (not counting per-thread caches)") \
  X(aging_scanned, "FDB slots visited by the aging sweep")                    \
  X(icmp_too_big_sent, "ICMP Fragmentation Needed / ICMPv6 Packet Too Big answers sent") \
  X(icmp_too_big_limited, "Too-big answers not sent because of the rate limit") \
  X(icmp_too_big_skipped, "Too-big frames not answered: no DF, ICMP errors, multicast, bad source (proto/too_big.h)") \
  X(iteration_max_ns, "Longest poll-loop iteration in the previous housekeeping period (idle_poll_ms), its sleep in poll(2) excluded")

// Drop reasons, shared by ports and switches: a frame dropped after it was
// mapped to a switch counts at both its ingress (or egress) port and there.
#define VPC_DROP_REASONS(X)                                                         \
  X(runt, "Frame shorter than an Ethernet header (14 bytes)")                     \
  X(vlan_truncated, "802.1Q-tagged frame shorter than 18 bytes")                 \
  X(oversize, "Frame longer than the port MTU allows")                           \
  X(src_mac_multicast, "Source MAC is multicast or broadcast")                   \
  X(src_mac_zero, "Source MAC is 00:00:00:00:00:00")                             \
  X(vlan_not_member, "Frame's VLAN (or untagged frame) is not mapped to a switch on this port") \
  X(vlan_reserved, "VLAN ID 4095 is reserved")                                   \
  X(port_security, "Source MAC is not in the port's locked MAC list")            \
  X(static_mac_conflict, "Source MAC is a static entry on another port")         \
  X(same_port, "Destination MAC is behind the ingress port")                     \
  X(link_down, "Egress port link is down")                                       \
  X(tx_ring_full, "Egress ring full")                                            \
  X(egress_too_big, "Frame longer than the egress interface's MTU (the kernel would refuse it)") \
  X(no_buffer, "No free buffer for a flood copy")                                \
  X(no_headroom, "Too little buffer headroom to push a VLAN tag or VXLAN headers") \
  X(member_table_full, "No free switch membership for a remote VTEP (too many memberships)") \
  X(port_deleted, "Frames queued for a port that was deleted")                    \
  X(outer_dst_mac, "Uplink frame addressed to another host's MAC")               \
  X(outer_ip_header, "Outer IP version or header length invalid")              \
  X(outer_ip_checksum, "Outer IPv4 header checksum wrong")                       \
  X(outer_ip_length, "Outer IP length does not match the frame")                 \
  X(outer_ip_fragment, "Outer IP packet is a fragment (never reassembled)")     \
  X(outer_udp_length, "Outer UDP length invalid")                                \
  X(outer_udp_checksum, "Outer UDP checksum wrong (or zero over IPv6 when not allowed)") \
  X(vxlan_flags, "VXLAN header without the I flag")                              \
  X(vxlan_vni_unknown, "VXLAN VNI not configured on any switch")                 \
  X(vxlan_inner_runt, "Decapsulated frame shorter than an Ethernet header")      \
  X(vxlan_peer_denied, "VXLAN from a VTEP that is not a peer of the VNI's switch (and the switch does not allow unknown peers)") \
  X(vxlan_vtep_table_full, "VXLAN from a new VTEP while no learned-VTEP slot is free (maxLearnedVteps or maxVteps)") \
  X(vxlan_peer_invalid, "VXLAN from an address that cannot be a VTEP (unspecified, multicast, loopback or our own)") \
  X(vxlan_too_big, "Frame too big to encapsulate within the uplink MTU")         \
  X(neighbor_unresolved, "Next hop of a remote VTEP not resolved by ARP/ND")     \
  X(remote_to_remote, "Frame from a remote VTEP addressed to another remote VTEP (split horizon)") \
  X(no_uplink, "Frame for a remote VTEP but no uplink is up")                  \
  X(mtu_exceeded, "Frame longer than the egress port's MTU (answered with ICMP too big when DF or IPv6)") \
  X(gso_unsupported, "Offloaded frame the switch cannot segment or complete: UFO, unknown GSO type, not TCP/UDP over IPv4/IPv6, fragments, unsupported IPv6 extension headers") \
  X(gso_malformed, "Offloaded frame whose state disagrees with its headers: checksum offsets outside the frame, GSO type not matching, bad lengths")

// Per remote VTEP (peer).
#define VPC_PEER_COUNTERS(X)                                          \
  X(rx_packets, "VXLAN packets received from this VTEP")              \
  X(rx_bytes, "Inner bytes received from this VTEP")                  \
  X(tx_packets, "VXLAN packets sent to this VTEP")                    \
  X(tx_bytes, "Inner bytes sent to this VTEP")                        \
  X(drops, "Frames from or to this VTEP that were dropped")           \
  X(fdb_learned, "FDB entries currently learned behind this VTEP")

// Per uplink: the underlay side of the VTEP.
#define VPC_UPLINK_COUNTERS(X)                                                  \
  X(vxlan_rx, "VXLAN packets decapsulated")                                     \
  X(vxlan_tx, "VXLAN packets encapsulated")                                     \
  X(arp_requests_sent, "ARP requests sent to resolve next hops")                \
  X(arp_replies_sent, "ARP replies sent for the VTEP address")                  \
  X(nd_solicits_sent, "Neighbor Solicitations sent to resolve next hops")       \
  X(nd_adverts_sent, "Neighbor Advertisements sent for the VTEP address")       \
  X(echo_replies_sent, "ICMP/ICMPv6 echo replies sent for the VTEP address")    \
  X(neighbors_resolved, "Next hops resolved (or refreshed)")                    \
  X(neighbors_failed, "Next hop resolutions that gave up")                      \
  X(neighbor_queue_drops, "Frames dropped while waiting for a next hop")        \
  X(to_host, "Uplink frames for the host, not the switch (other addresses, protocols or UDP ports; left to the host stack, not drops)")

#define VPC_ENUM_ROW(name, help) name,
enum class PortCounter : uint16_t { VPC_PORT_COUNTERS(VPC_ENUM_ROW) kCount };
enum class SwitchCounter : uint16_t { VPC_SWITCH_COUNTERS(VPC_ENUM_ROW) kCount };
enum class EngineCounter : uint16_t { VPC_ENGINE_COUNTERS(VPC_ENUM_ROW) kCount };
enum class Drop : uint16_t { VPC_DROP_REASONS(VPC_ENUM_ROW) kCount };
enum class PeerCounter : uint16_t { VPC_PEER_COUNTERS(VPC_ENUM_ROW) kCount };
enum class UplinkCounter : uint16_t { VPC_UPLINK_COUNTERS(VPC_ENUM_ROW) kCount };
#undef VPC_ENUM_ROW

constexpr size_t kPortCounters = size_t(PortCounter::kCount);
constexpr size_t kSwitchCounters = size_t(SwitchCounter::kCount);
constexpr size_t kEngineCounters = size_t(EngineCounter::kCount);
constexpr size_t kDrops = size_t(Drop::kCount);
constexpr size_t kPeerCounters = size_t(PeerCounter::kCount);
constexpr size_t kUplinkCounters = size_t(UplinkCounter::kCount);

struct CounterInfo {
  const char* name;
  const char* help;
};
extern const CounterInfo kPortCounterInfo[kPortCounters];
extern const CounterInfo kSwitchCounterInfo[kSwitchCounters];
extern const CounterInfo kEngineCounterInfo[kEngineCounters];
extern const CounterInfo kDropInfo[kDrops];
extern const CounterInfo kPeerCounterInfo[kPeerCounters];
extern const CounterInfo kUplinkCounterInfo[kUplinkCounters];

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

struct alignas(64) PeerCounterBlock {
  uint64_t in_use;
  uint64_t generation;
  uint8_t ip[16];  // the VTEP's address (IPv4-mapped for IPv4), set when in_use
  uint64_t c[kPeerCounters];
  void add(PeerCounter k, uint64_t n) { cnt_add(c[size_t(k)], n); }
  void set(PeerCounter k, uint64_t v) { cnt_set(c[size_t(k)], v); }
};

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
