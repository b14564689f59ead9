// The bridge owner: switches, members, the FDB, learning and forwarding.
//
// Owns: the switch table (SwitchState: config, FDB, member list, counters),
// the member table, the VNI -> switch map, each local port's memberships and
// learning state (BridgePort), each remote VTEP's memberships, learning state
// and references (BridgePeer), the switch counter blocks.
//
// Stages (bridge/forward.cc), called by the engine's graph (core/engine.cc):
//   classify(): a local port's burst -> frames mapped to members (Burst)
//   forward():  learn the sources, look up the destinations, deliver: local
//               members -> Core::stage (tx); remote members -> Overlay::encap
// The overlay's decap() fills the same Burst for the uplink's frames.
#pragma once

#include <atomic>
#include <string>
#include <unordered_map>
#include <vector>

#include "bridge/kpath.h"
#include "bridge/state.h"
#include "core/core.h"

namespace vpc {

class Overlay;

// A burst on its way through the bridge: each frame with the member it
// entered through, its MACs, and (after lookup) its destination: a member,
// or one of the flood kinds or drop (bridge/forward.cc). pkts points at the
// receive array (frames are rewritten and compacted in place).
struct Burst {
  Pkt* pkts = nullptr;
  uint16_t n = 0;
  MemberId inm[kMaxBurst];
  uint16_t dest[kMaxBurst];
  Mac src[kMaxBurst];
  Mac dst[kMaxBurst];
  bool kpath = false;  // from a kernel-path port (classify)
};

class Bridge {
 public:
  Bridge(Core& core, Overlay& overlay, uint32_t max_switches, uint32_t max_vteps);
  Bridge(const Bridge&) = delete;
  Bridge& operator=(const Bridge&) = delete;

  const SwitchCounterBlock& switch_counters(SwitchId s) const { return switch_ctr_[s]; }

  // ---- stages (bridge/forward.cc)
  // rx -> classify: maps a local port's frames to members, reads their MACs.
  void classify(PortId in, Pkt* pkts, uint16_t n, Burst& b);
  // learn -> lookup -> deliver. `port_ls`: the learn source every frame
  // shares when they came from one local port (classify), or nullptr
  // (decapsulated frames: one source per VTEP).
  void forward(Burst& b, PortCounterBlock* in_ctr, LearnSource* port_ls);
  LearnSource* port_learn(PortId p) { return &ports_[p].learn; }
  // Sends p to member m (an ICMP answer, a flood copy).
  void deliver_to(MemberId m, Pkt p);
  // Answers p with ICMP too big towards `from`, the member it came from
  // (kNoMember: nobody to answer).
  void answer_too_big(Pkt p, uint32_t l3_mtu, MemberId from);

  // ---- what the overlay's decap asks (overlay/decap.cc)
  SwitchId switch_by_vni(uint32_t vni) {
    if (vni == last_vni_ && last_vni_sw_ != kNoId) return last_vni_sw_;
    return switch_by_vni_slow(vni);
  }
  bool allows_unknown_peers(SwitchId s) const { return switches_[s].cfg.allow_unknown_peers; }
  // The member through which VTEP `vt` joins switch `s`; created when
  // `create` (kNoMember: the member table is full).
  MemberId remote_member(SwitchId s, uint32_t vt, bool create) {
    BridgePeer& v = peers_[vt];
    if (v.cache_sw == s) return v.cache_member;
    return remote_member_slow(s, vt, create);
  }
  bool is_peer(MemberId m) const { return members_[m].in_flood; }

  // ---- VTEP lifetime (the overlay creates and releases VTEPs)
  void peer_created(uint32_t vt, uint64_t* learned_gauge);
  bool peer_referenced(uint32_t vt) const { return peers_[vt].referenced(); }
  // Removes the members of a VTEP the overlay releases.
  void peer_released(uint32_t vt);

  // ---- commands (bridge/commands.cc)
  Result create_switch(const SwitchConfig& cfg);
  Result set_switch(SwitchId s, const SwitchConfig& cfg);
  Result delete_switch(SwitchId s);
  // Ports: check_join validates the (VLAN, switch) mappings of a new port
  // before anything changes; join then creates its members.
  Result check_join(const Command& c, std::vector<std::pair<uint16_t, SwitchId>>* maps) const;
  void join(PortId pid, const std::vector<std::pair<uint16_t, SwitchId>>& maps, const PortConfig& pc, bool trunk);
  void set_port_learning(PortId pid, const PortConfig& pc);
  void port_security_changed(PortId pid, const std::vector<Mac>& locked);
  Result check_members_free(size_t wanted) const;
  void uplink_opened(PortId pid);
  void leave(PortId pid);
  Result add_static(SwitchId s, PortId port, Mac mac);
  Result delete_static(SwitchId s, Mac mac, bool evpn = false);  // evpn: only an entry of kind evpn
  Result dump_fdb(SwitchId s) const;
  Result flush_fdb(SwitchId s, PortId port);
  // Peers and remote MACs (for the overlay's commands, which own the VTEPs).
  bool switch_exists(SwitchId s) const { return s < switches_.size() && switches_[s].in_use; }
  Result add_peer(SwitchId s, uint32_t vt);
  // False when vt is not a peer of s.
  bool delete_peer(SwitchId s, uint32_t vt, bool forget_learned);
  Result add_remote_mac(SwitchId s, Mac mac, uint32_t vt, bool evpn = false);
  bool any_peers() const;
  // The uplink goes: learned remote entries go with it.
  void forget_learned_remote();

  // ---- housekeeping
  void age_all();

  // ---- the kernel fast path (bridge/kpath.cc; design in bridge/kpath.h)
  // sync() runs between iterations while any port has the path, tick() with
  // housekeeping; port_changed() after a port's settings change.
  bool kpath_active() const { return !kpath_.active.empty(); }
  // The uplink has the kernel path: decapsulated bursts are noted too.
  bool kpath_uplink() const { return kpath_.uplink != kNoId; }
  void kpath_sync();
  void kpath_show_paused();
  void kpath_tick();
  void kpath_port_changed(PortId pid);
  // On the submitter's thread (Engine::submit): a CreatePort or CreateUplink
  // whose port wants the kernel path, before the engine has tried to load
  // it, carries the loaded object. Only the first such command loads it.
  void kpath_preload(Command& c);
  // On the engine thread, first thing in those commands: the carried object
  // becomes the engine's (if it has none yet).
  void kpath_adopt(Command& c);
  bool kpath_preloaded() const { return kpath_.preloaded; }  // test seams
  uint32_t kpath_engine_hooks() const { return kpath_.engine_hooks; }

  // Capture and trace (bridge/observe.cc): whether a frame on `port` belongs
  // to switch `s` (by the port's untagged member or the frame's 802.1Q tag),
  // the switch's VNI, and the trace lines of classify/decap, learn and lookup.
  bool carries(SwitchId s, PortId port, const uint8_t* frame, uint32_t len) const;
  uint32_t vni_of(SwitchId s) const { return switches_[s].cfg.vni; }
  void trace_before(const Burst& b);
  void trace_after(const Burst& b);

  // ---- test seam (core/engine_seams.cc): switches, members, FDBs, learned
  // and reference counts; "" when they hold.
  std::string check_invariants() const;

 private:
  // forward.cc
  LearnSource& source_of(MemberId m) {
    const Member& mem = members_[m];
    return mem.remote() ? peers_[mem.vtep].learn : ports_[mem.port].learn;
  }
  void enqueue(PortId out, const Member& mem, Pkt p, MemberId from);
  [[gnu::noinline]] void egress_slow(PortId out, const Member& mem, Pkt p, MemberId from);
  void flood(SwitchState& sw, MemberId in_member, Pkt p, bool is_bcast);
  // learn.cc
  bool learn(LearnSource& ls, const std::vector<Mac>* locked, MemberId m, Mac src, Drop* why);
  bool evict_for(SwitchState& sw, SwitchId s, const LearnSource& ls);
  Event mac_event(EventType t, SwitchId sw, const Member& m, Mac mac) const;
  Event moved_event(const Member& now, const Member& old, Mac mac) const;
  void learn_over_evpn(SwitchState& sw, FdbEntry& e, LearnSource& ls, MemberId mid);
  void remove_entry_effects(SwitchState& sw, const FdbEntry& e);
  void age_switch(SwitchId s, SwitchState& sw);
  // kpath.cc
  bool kpath_load();
  void kpath_settle(std::unique_ptr<KernelPath> kp, std::string why);
  bool kpath_hook(PortId pid, bool uplink, SwitchId sw, MemberId member);
  void kpath_join(PortId pid);
  void kpath_uplink_opened(PortId pid);
  void kpath_uplink_refresh();
  void kpath_member_closed(MemberId m);
  bool kpath_remote_record(MemberId m, KpathRemote* r);
  bool kpath_remote_ready(SwitchId s, uint32_t port);
  void kpath_collect_remote(MemberId m, KpathState::RemoteRec& rec);
  void kpath_leave(PortId pid);
  void kpath_refresh(PortId pid);
  void kpath_collect(PortId pid);
  [[gnu::noinline]] void kpath_note(const Burst& b);
  // commands.cc
  SwitchId switch_by_vni_slow(uint32_t vni);
  MemberId remote_member_slow(SwitchId s, uint32_t vt, bool create);
  Result insert_static(SwitchState& sw, Mac mac, MemberId mid, uint16_t flags = kFdbStatic);
  MemberId member_of(PortId p, SwitchId s) const;

  Core& core_;
  Overlay& overlay_;
  // The core's port table, for the delivery loops' lookups (the core never
  // moves it: it is sized once, at construction). Read only.
  PortState* const tx_ports_;
  std::vector<SwitchState> switches_;
  std::vector<Member> members_;
  std::vector<BridgePort> ports_;  // indexed by PortId, like the core's
  std::vector<BridgePeer> peers_;  // indexed by VTEP id, like the overlay's
  // VNI -> switch for decapsulation, with a one-entry cache in front. It
  // names exactly the switches in use (an invariant), so loops over them
  // (aging, every housekeeping tick) walk it rather than switches_.
  std::unordered_map<uint32_t, SwitchId> vni_map_;
  uint32_t last_vni_ = 0;
  SwitchId last_vni_sw_ = kNoId;
  std::unique_ptr<SwitchCounterBlock[]> switch_ctr_;
  KpathState kpath_;
  std::atomic<bool> kpath_claimed_{false};  // a submitter has loaded (or the engine tried) it
  // The programs' descriptors once the engine holds them (never closed before
  // the bridge): submitters hook new ports with them.
  std::atomic<int> kpath_tc_fd_{-1}, kpath_sock_fd_{-1}, kpath_xdp_fd_{-1};
  std::atomic<bool> kpath_xdp_refused_{false};
};

}  // namespace vpc
