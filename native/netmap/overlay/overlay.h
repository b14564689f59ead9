// The overlay owner: the uplink, remote VTEPs, underlay neighbours, VXLAN
// encapsulation and decapsulation, and the underlay responder (ARP, ND, echo
// for the VTEP address).
//
// Owns: the uplink (UplinkState), the VTEP table (PeerState: address, next
// hop, outer-header template) and its address index, the neighbour table with
// the frames waiting for a next hop, the peer and uplink counter blocks.
//
// Stages, called by the engine's graph (core/engine.cc) and the bridge:
//   decap() (overlay/decap.cc): the uplink's burst -> outer checks, the
//       responder's answers (to the core's tx), host traffic (counted,
//       freed), and VXLAN frames, decapsulated, as a Burst for the bridge
//   encap() (overlay/encap.cc): a frame the bridge forwards to a remote
//       member -> outer headers -> the core's tx on the uplink
#pragma once

#include <cstring>
#include <memory>
#include <unordered_map>
#include <vector>

#include "bridge/bridge.h"
#include "core/coalesce.h"
#include "core/core.h"
#include "overlay/switch_peer_counters.h"
#include "overlay/state.h"

namespace vpc {

// The hash of an inner frame that picks its VXLAN UDP source port
// (overlay/encap.cc), for batches to send the flow from the same port.
uint32_t vxlan_flow_hash(const uint8_t* f, uint16_t len);

class Overlay {
 public:
  Overlay(Core& core, Bridge& bridge, uint32_t max_vteps, uint32_t max_learned_vteps);
  ~Overlay();
  Overlay(const Overlay&) = delete;
  Overlay& operator=(const Overlay&) = delete;

  const PeerCounterBlock& peer_counters(uint32_t v) const { return peer_ctr_[v]; }
  // Per switch and peer (overlay/switch_peer_counters.h), indexed by the
  // bridge's remote member ids; peer totals over every switch.
  const SwitchPeerBlocks& switch_peer_counters() const { return switch_peer_ctr_; }
  std::vector<PeerSnapshot> peer_snapshot() const;  // any thread, lock-free
  const UplinkCounterBlock& uplink_counters() const { return *uplink_ctr_; }

  // ---- stages
  // rx on the uplink -> outer checks -> responder / host / decap. The
  // decapsulated frames, mapped to their VTEP's member, go to b.
  void decap(Pkt* pkts, uint16_t n, Burst& b);
  // A frame for VTEP vt's member of switch `sw` -> the uplink's tx. `from`:
  // the ingress member (where an ICMP too-big answer goes).
  // `via`: the remote member (VTEP vt in switch sw) whose counters it counts on.
  void encap(uint32_t vt, SwitchState& sw, Pkt p, MemberId from, MemberId via);

  // ---- what the bridge asks
  bool uplink_up() const { return uplink_.active && core_.port(uplink_.port).up; }
  PortId uplink_port() const { return uplink_.active ? uplink_.port : kNoId; }
  uint16_t udp_port() const { return uplink_.cfg.udp_port; }
  const IpAddr& peer_ip(uint32_t vt) const { return peers_[vt].ip; }
  bool peer_in_use(uint32_t vt) const { return vt < peers_.size() && peers_[vt].in_use; }
  // The bridge created remote member m (VTEP vt joins switch s) / is about
  // to remove it: its (switch, peer) counters open from zero / fold into the
  // peer's totals.
  void member_opened(MemberId m, SwitchId s, uint32_t vt);
  void member_closed(MemberId m, uint32_t vt);

  // ---- commands (overlay/commands.cc)
  Result create_uplink(Command& c);
  Result delete_uplink();
  Result add_peer(SwitchId s, const IpAddr& ip);
  Result delete_peer(SwitchId s, const IpAddr& ip);
  Result add_remote_mac(SwitchId s, Mac mac, const IpAddr& ip, bool evpn = false);  // evpn: the kind kFdbEvpn
  Result dump_neighbors() const;
  // Frees every VTEP the bridge no longer refers to.
  void release_unreferenced_peers();

  // ---- the kernel fast path (overlay/kpath.cc; design in bridge/kpath.h)
  // Our VTEP (address, UDP port, MAC) into g; a remote member's outer
  // headers (false: the kernel cannot encapsulate to VTEP vt now); what the
  // kernel carried for remote member m, counted.
  void kpath_uplink(KpathGlobal* g) const;
  // VTEP vt could be one (an IPv4 VTEP in use): what note() asks per frame.
  bool kpath_vtep(uint32_t vt) const { return vt < peers_.size() && peers_[vt].in_use && peers_[vt].ip.is_v4(); }
  bool kpath_remote(uint32_t vt, uint32_t vni, KpathRemote* r);
  void kpath_count(MemberId m, const KpathStats& d);

  // ---- housekeeping: neighbour timers, unreferenced VTEPs
  void tick();

  // ---- test seams (core/engine_seams.cc)
  uint32_t frames_pending() const;
  std::string check_invariants() const;

 private:
  // decap.cc
  enum class Rx : uint8_t;
  struct Outer;
  struct RxSetup;
  Rx rx_outer(const RxSetup& rs, Pkt& p, Outer& o, Drop* why);
  Rx rx_ipv4(Pkt& p, Outer& o, Drop* why);
  Rx rx_ipv6(Pkt& p, Outer& o, Drop* why);
  Rx rx_vxlan(Outer& o, Drop* why);
  bool admit(Outer& o, MemberId* m, Drop* why);
  void trace_drop(Pkt p, Drop why);
  // encap.cc
  void encap_offload(uint32_t vt, SwitchState& sw, Pkt p, MemberId from, MemberId via, uint32_t inner_mtu);
  // A frame to or from a peer through remote member m: counted once, on the
  // switch's traffic with the peer (peer totals are summed from these).
  void peer_tx(MemberId m, uint32_t bytes) {
    SwitchPeerCounterBlock& sp = switch_peer_ctr_.at(m);
    sp.add(SwitchPeerCounter::tx_packets, 1);
    sp.add(SwitchPeerCounter::tx_bytes, bytes);
  }
  void peer_rx(MemberId m, uint32_t bytes) {
    SwitchPeerCounterBlock& sp = switch_peer_ctr_.at(m);
    sp.add(SwitchPeerCounter::rx_packets, 1);
    sp.add(SwitchPeerCounter::rx_bytes, bytes);
  }
  // A frame dropped to or from a peer: on the peer, and on the switch's
  // traffic with it unless no membership owned it (m == kNoMember).
  void peer_drop(PeerState& v, MemberId m) {
    v.counters->add(PeerCounter::drops, 1);
    if (m != kNoMember) switch_peer_ctr_.at(m).add(SwitchPeerCounter::drops, 1);
  }
  void count_pending(const Neighbor::Pending& q, bool sent);
  void build_outer(PeerState& v, const Neighbor& nb);
  // uso.cc: VXLAN super-frames across the underlay
  bool encap_uso(uint32_t vt, SwitchState& sw, Pkt p, MemberId via, uint32_t inner_mtu);
  bool super_fits(Pkt p, uint32_t max_len) const;
  bool take_super(Pkt& p, const OffloadMeta& gso, uint16_t udp_off, uint16_t outer_len, MemberId m, uint32_t vt);
  void transmit_uplink(Pkt p) { core_.stage(uplink_.port, p); }
  // gro.cc: inner TCP segments received one VXLAN packet each, coalesced.
  uint16_t gro(Pkt* pkts, uint16_t n, Burst& b);
  // decap() looks for runs only in a burst whose frames average
  // kCoalesceMinLen inner bytes or more (`bytes` of the first `n` outer
  // frames, VXLAN over IPv4 adds 50): 64-byte traffic pays nothing per frame.
  static bool gro_worth(uint64_t bytes, uint32_t n) { return coalesce_worth(bytes, n, 50); }
  // underlay.cc
  bool handle_arp(Pkt& p, uint8_t* f);
  int handle_ipv4_local(Pkt& p, uint8_t* f, uint16_t ihl);
  int handle_ipv6_local(Pkt& p, uint8_t* f);
  void neighbor_learn(const IpAddr& ip, Mac mac, bool solicited);
  uint32_t neighbor_for(const IpAddr& next_hop);
  void neighbor_request(Neighbor& nb);
  uint16_t arp_request_frame(uint8_t* f, const uint8_t* target) const;
  uint16_t nd_advert_frame(uint8_t* f, const uint8_t* dst, Mac dst_mac, uint32_t flags) const;
  void announce_mac();
  void neighbor_tick();
  void neighbor_flush_pending(Neighbor& nb);
  void drop_pending();
  uint32_t peer_find(const IpAddr& ip);
  void set_last_peer(uint32_t vt) {
    last_peer_ = vt;
    last_peer_is_v4_ = vt != kNoPeer && peers_[vt].ip.is_v4();
    last_peer_ip4_ = last_peer_is_v4_ ? peers_[vt].ip.v4() : 0;
  }
  uint32_t peer_get(const IpAddr& ip);    // finds or creates; kNoPeer when full
  uint32_t peer_learn(const IpAddr& ip);  // creates a learned VTEP; kNoPeer at the learned limit
  void peer_configure(PeerState& v);      // a learned VTEP is now the operator's (peer, static MAC)
  const char* peer_ip_refused(const IpAddr& ip) const;  // nullptr: may be a VTEP
  void peer_route(PeerState& v);
  // commands.cc
  Result check_uplink_config(const UplinkConfig& u) const;
  void adopt_interface_mac();
  void tell_new_mac();

  Core& core_;
  Bridge& bridge_;
  uint32_t max_learned_vteps_;
  UplinkState uplink_;
  SwitchPeerBlocks switch_peer_ctr_;
  std::vector<PeerState> peers_;
  std::vector<Neighbor> neighbors_;
  // The VTEP the last lookup found (most frames come from the one the
  // previous came from), with its IPv4 address for decap's one compare.
  uint32_t last_peer_ = kNoPeer;
  bool last_peer_is_v4_ = false;
  uint32_t last_peer_ip4_ = 0;
  uint32_t learned_peers_ = 0;  // VTEPs in use with PeerState::learned_only
  struct IpHash {
    size_t operator()(const IpAddr& a) const {
      uint64_t x, y;
      std::memcpy(&x, a.b, 8);
      std::memcpy(&y, a.b + 8, 8);
      return size_t((x * 0x9E3779B97F4A7C15ull) ^ (y * 0xD6E8FEB86659FD93ull));
    }
  };
  // IP -> VTEP id; names exactly the VTEPs in use (an invariant), so the
  // housekeeping tick walks it rather than peers_.
  std::unordered_map<IpAddr, uint32_t, IpHash> peer_index_;
  std::unique_ptr<PeerCounterBlock[]> peer_ctr_;
  std::unique_ptr<UplinkCounterBlock> uplink_ctr_;
};

}  // namespace vpc
