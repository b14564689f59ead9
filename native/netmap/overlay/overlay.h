// The overlay owner: the uplink, remote VTEPs, underlay neighbours, VXLAN
// encapsulation and decapsulation, and the underlay responder (ARP, ND, echo
// for the VTEP address).
//
// Owns: the uplink (UplinkState), the VTEP table (VtepState: address, next
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
#include "core/core.h"
#include "overlay/state.h"

namespace vpc {

class Overlay {
 public:
  Overlay(Core& core, Bridge& bridge, uint32_t max_vteps, uint32_t max_learned_vteps);
  ~Overlay();
  Overlay(const Overlay&) = delete;
  Overlay& operator=(const Overlay&) = delete;

  const PeerCounterBlock& peer_counters(uint32_t v) const { return peer_ctr_[v]; }
  const UplinkCounterBlock& uplink_counters() const { return *uplink_ctr_; }

  // ---- stages
  // rx on the uplink -> outer checks -> responder / host / decap. The
  // decapsulated frames, mapped to their VTEP's member, go to b.
  void decap(Pkt* pkts, uint16_t n, Burst& b);
  // A frame for VTEP vt's member of switch `sw` -> the uplink's tx. `from`:
  // the ingress member (where an ICMP too-big answer goes).
  void encap(uint32_t vt, SwitchState& sw, Pkt p, MemberId from);

  // ---- what the bridge asks
  bool uplink_up() const { return uplink_.active && core_.port(uplink_.port).up; }
  PortId uplink_port() const { return uplink_.active ? uplink_.port : kNoId; }
  const IpAddr& vtep_ip(uint32_t vt) const { return vteps_[vt].ip; }
  bool vtep_in_use(uint32_t vt) const { return vt < vteps_.size() && vteps_[vt].in_use; }

  // ---- commands (overlay/commands.cc)
  Result create_uplink(Command& c);
  Result delete_uplink();
  Result add_peer(SwitchId s, const IpAddr& ip);
  Result delete_peer(SwitchId s, const IpAddr& ip);
  Result add_remote_mac(SwitchId s, Mac mac, const IpAddr& ip, bool evpn = false);  // evpn: the kind kFdbEvpn
  Result dump_neighbors() const;
  // Frees every VTEP the bridge no longer refers to.
  void release_unreferenced_vteps();

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
  // encap.cc
  void encap_offload(uint32_t vt, SwitchState& sw, Pkt p, MemberId from, uint32_t inner_mtu);
  void build_outer(VtepState& v, const Neighbor& nb);
  void transmit_uplink(Pkt p) { core_.stage(uplink_.port, p); }
  // underlay.cc
  bool handle_arp(Pkt& p, uint8_t* f);
  int handle_ipv4_local(Pkt& p, uint8_t* f, uint16_t ihl);
  int handle_ipv6_local(Pkt& p, uint8_t* f);
  void neighbor_learn(const IpAddr& ip, Mac mac, bool solicited);
  uint32_t neighbor_for(const IpAddr& next_hop);
  void neighbor_request(Neighbor& nb);
  void neighbor_tick();
  void neighbor_flush_pending(Neighbor& nb);
  void drop_pending();
  uint32_t vtep_find(const IpAddr& ip);
  void set_last_vtep(uint32_t vt) {
    last_vtep_ = vt;
    last_vtep_is_v4_ = vt != kNoVtep && vteps_[vt].ip.is_v4();
    last_vtep_ip4_ = last_vtep_is_v4_ ? vteps_[vt].ip.v4() : 0;
  }
  uint32_t vtep_get(const IpAddr& ip);    // finds or creates; kNoVtep when full
  uint32_t vtep_learn(const IpAddr& ip);  // creates a learned VTEP; kNoVtep at the learned limit
  void vtep_configure(VtepState& v);      // a learned VTEP is now the operator's (peer, static MAC)
  const char* vtep_ip_refused(const IpAddr& ip) const;  // nullptr: may be a VTEP
  void vtep_route(VtepState& v);
  // commands.cc
  Result check_uplink_config(const UplinkConfig& u) const;

  Core& core_;
  Bridge& bridge_;
  uint32_t max_learned_vteps_;
  UplinkState uplink_;
  std::vector<VtepState> vteps_;
  std::vector<Neighbor> neighbors_;
  // The VTEP the last lookup found (most frames come from the one the
  // previous came from), with its IPv4 address for decap's one compare.
  uint32_t last_vtep_ = kNoVtep;
  bool last_vtep_is_v4_ = false;
  uint32_t last_vtep_ip4_ = 0;
  uint32_t learned_vteps_ = 0;  // VTEPs in use with VtepState::learned_only
  struct IpHash {
    size_t operator()(const IpAddr& a) const {
      uint64_t x, y;
      std::memcpy(&x, a.b, 8);
      std::memcpy(&y, a.b + 8, 8);
      return size_t((x * 0x9E3779B97F4A7C15ull) ^ (y * 0xD6E8FEB86659FD93ull));
    }
  };
  std::unordered_map<IpAddr, uint32_t, IpHash> vtep_index_;
  std::unique_ptr<PeerCounterBlock[]> peer_ctr_;
  std::unique_ptr<UplinkCounterBlock> uplink_ctr_;
};

}  // namespace vpc
