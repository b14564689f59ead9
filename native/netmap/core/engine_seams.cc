// Test seams of the engine: a caller-driven clock, a count of the buffers it
// holds, and a consistency check of its tables. Used by the native tests and
// the fuzzers (native/fuzz); nothing here runs on the packet path.
#include <set>
#include <string>

#include "core/engine.h"

namespace vpc {

uint32_t Engine::run_once_at(uint64_t elapsed_ns) {
  std::lock_guard<std::mutex> g(lifecycle_mu_);
  if (running_.load()) return 0;
  manual_clock_ = true;
  manual_now_ns_ = epoch_ns_ + elapsed_ns;
  return iterate(manual_now_ns_);
}

uint32_t Engine::buffers_held() const {
  uint32_t n = 0;
  for (PortId p : active_ports_) n += ports_[p].txn;
  for (const Neighbor& nb : neighbors_) n += uint32_t(nb.pending.size());
  return n;
}

namespace {
std::string at(const char* what, uint64_t i) { return std::string(what) + " " + std::to_string(i) + ": "; }
}  // namespace

std::string Engine::check_invariants() const {
  // Ports: the active list names exactly the ports in use; a port with
  // staged frames is on the dirty list (housekeeping and commands may stage
  // frames, e.g. ARP requests, for the next iteration's flush); every member
  // of a port points back at it.
  std::set<PortId> active(active_ports_.begin(), active_ports_.end());
  if (active.size() != active_ports_.size()) return "active_ports: a port is listed twice";
  std::set<PortId> dirty(dirty_ports_.begin(), dirty_ports_.end());
  if (dirty.size() != dirty_ports_.size()) return "dirty_ports: a port is listed twice";
  std::vector<uint32_t> learned_port(ports_.size(), 0), learned_vtep(vteps_.size(), 0),
      statics_vtep(vteps_.size(), 0), configured_vtep(vteps_.size(), 0);
  for (PortId p = 0; p < ports_.size(); ++p) {
    const PortState& ps = ports_[p];
    if (ps.in_use != (active.count(p) == 1)) return at("port", p) + "in_use disagrees with the active list";
    if (!ps.in_use) {
      if (dirty.count(p)) return at("port", p) + "not in use but on the dirty list";
      continue;
    }
    if (!ps.port) return at("port", p) + "in use without a backend";
    if (ps.tx_dirty != (dirty.count(p) == 1)) return at("port", p) + "tx_dirty disagrees with the dirty list";
    if (ps.txn && !ps.tx_dirty) return at("port", p) + "frames staged but the port is not on the dirty list";
    if (ps.txn > kTxQueueLen) return at("port", p) + "tx queue overrun";
    if (ps.is_uplink != (uplink_.active && uplink_.port == p)) return at("port", p) + "is_uplink disagrees with the uplink";
    if (ps.is_uplink && !ps.members.empty()) return at("port", p) + "the uplink has local members";
    for (MemberId mid : ps.members) {
      if (mid >= members_.size()) return at("port", p) + "member id out of range";
      const Member& m = members_[mid];
      if (!m.in_use || m.port != p || m.remote()) return at("port", p) + "member " + std::to_string(mid) + " does not point back";
      if (m.vlan == 0 ? ps.untagged != mid : (!ps.vlan_map || ps.vlan_map[m.vlan] != mid))
        return at("port", p) + "member " + std::to_string(mid) + " missing from the VLAN map";
    }
  }
  // Members: each one in use belongs to exactly one live switch's list, and
  // a remote one to its VTEP's list.
  std::vector<uint32_t> listed(members_.size(), 0);
  size_t switches_in_use = 0;
  for (SwitchId s = 0; s < switches_.size(); ++s) {
    const SwitchState& sw = switches_[s];
    if (!sw.in_use) continue;
    ++switches_in_use;
    auto it = vni_map_.find(sw.cfg.vni);
    if (it == vni_map_.end() || it->second != s) return at("switch", s) + "not in the VNI map";
    uint32_t local = 0, peers = 0;
    for (MemberId mid : sw.members) {
      if (mid >= members_.size() || !members_[mid].in_use || members_[mid].sw != s)
        return at("switch", s) + "lists member " + std::to_string(mid) + " that is not its own";
      if (listed[mid]++) return at("switch", s) + "member " + std::to_string(mid) + " listed twice";
      const Member& m = members_[mid];
      if (m.remote()) {
        if (m.in_flood) ++peers, ++configured_vtep[m.vtep];
      } else {
        ++local;
      }
    }
    if (local != sw.local_members) return at("switch", s) + "local_members is " + std::to_string(sw.local_members) + ", counted " + std::to_string(local);
    if (peers != sw.peers) return at("switch", s) + "peers is " + std::to_string(sw.peers) + ", counted " + std::to_string(peers);
    if (!sw.fdb.validate()) return at("switch", s) + "FDB probing invariant broken";
    std::string bad;
    uint32_t statics = 0;
    sw.fdb.for_each([&](const FdbEntry& e) {
      if (!bad.empty()) return;
      if (e.member >= members_.size() || !members_[e.member].in_use || members_[e.member].sw != s) {
        bad = at("switch", s) + "FDB entry for " + std::to_string(e.mac) + " points at a dead member";
        return;
      }
      const Member& m = members_[e.member];
      if (e.flags & kFdbStatic) {
        ++statics;
        if (m.remote()) ++statics_vtep[m.vtep];
      } else if (m.remote()) {
        ++learned_vtep[m.vtep];
      } else {
        ++learned_port[m.port];
      }
    });
    if (!bad.empty()) return bad;
    if (statics != sw.static_entries) return at("switch", s) + "static_entries is " + std::to_string(sw.static_entries) + ", counted " + std::to_string(statics);
  }
  if (vni_map_.size() != switches_in_use) return "vni_map: " + std::to_string(vni_map_.size()) + " entries for " + std::to_string(switches_in_use) + " switches";
  for (MemberId mid = 0; mid < members_.size(); ++mid)
    if (members_[mid].in_use && listed[mid] != 1) return at("member", mid) + "in use but in no switch's list";
  for (PortId p = 0; p < ports_.size(); ++p) {
    if (!ports_[p].in_use) continue;
    if (ports_[p].learn.learned != learned_port[p])
      return at("port", p) + "learned is " + std::to_string(ports_[p].learn.learned) + ", counted " + std::to_string(learned_port[p]);
  }
  // VTEPs: the index names exactly the ones in use; their reference counts
  // match the FDB entries and switch memberships that point at them.
  size_t vteps_in_use = 0;
  std::vector<uint32_t> users(neighbors_.size(), 0);
  for (uint32_t v = 0; v < vteps_.size(); ++v) {
    const VtepState& vt = vteps_[v];
    if (!vt.in_use) {
      if (learned_vtep[v] || statics_vtep[v] || configured_vtep[v]) return at("vtep", v) + "referenced but not in use";
      continue;
    }
    ++vteps_in_use;
    auto it = vtep_index_.find(vt.ip);
    if (it == vtep_index_.end() || it->second != v) return at("vtep", v) + "not in the index";
    if (vt.statics != statics_vtep[v]) return at("vtep", v) + "statics is " + std::to_string(vt.statics) + ", counted " + std::to_string(statics_vtep[v]);
    if (vt.learn.learned != learned_vtep[v]) return at("vtep", v) + "learned is " + std::to_string(vt.learn.learned) + ", counted " + std::to_string(learned_vtep[v]);
    if (vt.configured != configured_vtep[v]) return at("vtep", v) + "configured is " + std::to_string(vt.configured) + ", counted " + std::to_string(configured_vtep[v]);
    for (auto& [s, mid] : vt.members)
      if (mid >= members_.size() || !members_[mid].in_use || members_[mid].vtep != v || members_[mid].sw != s)
        return at("vtep", v) + "lists a member that is not its own";
    if (vt.reachable) {
      if (vt.neighbor >= neighbors_.size()) return at("vtep", v) + "reachable through a missing neighbour";
      ++users[vt.neighbor];
    }
  }
  if (vtep_index_.size() != vteps_in_use) return "vtep_index: " + std::to_string(vtep_index_.size()) + " entries for " + std::to_string(vteps_in_use) + " VTEPs";
  for (MemberId mid = 0; mid < members_.size(); ++mid) {
    const Member& m = members_[mid];
    if (!m.in_use || !m.remote()) continue;
    if (m.vtep >= vteps_.size() || !vteps_[m.vtep].in_use) return at("member", mid) + "remote member of a dead VTEP";
    bool found = false;
    for (auto& [s, x] : vteps_[m.vtep].members) found |= x == mid;
    if (!found) return at("member", mid) + "missing from its VTEP's list";
  }
  // Neighbours: `users` counts the VTEPs routed through each; pending queues
  // are bounded and hold frames only while unresolved.
  for (size_t i = 0; i < neighbors_.size(); ++i) {
    const Neighbor& nb = neighbors_[i];
    if (nb.users != users[i]) return at("neighbor", i) + "users is " + std::to_string(nb.users) + ", counted " + std::to_string(users[i]);
    if (nb.pending.size() > 16) return at("neighbor", i) + "more than 16 frames pending";
    if (!nb.pending.empty() && (nb.state == Neighbor::kReachable || nb.state == Neighbor::kStale))
      return at("neighbor", i) + "frames pending on a resolved neighbour";
    for (const Neighbor::Pending& q : nb.pending)
      if (q.pkt.buf >= pool_->count()) return at("neighbor", i) + "pending frame with a bad buffer";
  }
  if (!uplink_.active && !neighbors_.empty()) return "neighbors: present without an uplink";
  return "";
}

}  // namespace vpc
