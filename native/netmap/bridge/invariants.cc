// The bridge's consistency check (a test seam, see Engine::check_invariants):
// every member points back at its port or VTEP and sits in exactly one live
// switch's list; switch, port and VTEP counts match what the FDBs hold.
#include <string>
#include <vector>

#include "bridge/bridge.h"
#include "core/invariants.h"
#include "overlay/overlay.h"

namespace vpc {

std::string Bridge::check_invariants() const {
  std::vector<uint32_t> learned_port(ports_.size(), 0), learned_vtep(vteps_.size(), 0),
      statics_vtep(vteps_.size(), 0), configured_vtep(vteps_.size(), 0);
  // Ports: every member of a port points back at it.
  for (PortId p = 0; p < ports_.size(); ++p) {
    const PortState& ps = core_.port(p);
    if (!ps.in_use) continue;
    const BridgePort& bp = ports_[p];
    if (ps.is_uplink && !bp.members.empty()) return invariant_at("port", p) + "the uplink has local members";
    for (MemberId mid : bp.members) {
      if (mid >= members_.size()) return invariant_at("port", p) + "member id out of range";
      const Member& m = members_[mid];
      if (!m.in_use || m.port != p || m.remote())
        return invariant_at("port", p) + "member " + std::to_string(mid) + " does not point back";
      if (m.vlan == 0 ? bp.untagged != mid : (!bp.vlan_map || bp.vlan_map[m.vlan] != mid))
        return invariant_at("port", p) + "member " + std::to_string(mid) + " missing from the VLAN map";
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
    if (it == vni_map_.end() || it->second != s) return invariant_at("switch", s) + "not in the VNI map";
    uint32_t local = 0, peers = 0;
    for (MemberId mid : sw.members) {
      if (mid >= members_.size() || !members_[mid].in_use || members_[mid].sw != s)
        return invariant_at("switch", s) + "lists member " + std::to_string(mid) + " that is not its own";
      if (listed[mid]++) return invariant_at("switch", s) + "member " + std::to_string(mid) + " listed twice";
      const Member& m = members_[mid];
      if (m.remote()) {
        if (m.in_flood) ++peers, ++configured_vtep[m.vtep];
      } else {
        ++local;
      }
    }
    if (local != sw.local_members)
      return invariant_at("switch", s) + "local_members is " + std::to_string(sw.local_members) + ", counted " +
             std::to_string(local);
    if (peers != sw.peers)
      return invariant_at("switch", s) + "peers is " + std::to_string(sw.peers) + ", counted " + std::to_string(peers);
    if (!sw.fdb.validate()) return invariant_at("switch", s) + "FDB probing invariant broken";
    std::string bad;
    uint32_t statics = 0;
    sw.fdb.for_each([&](const FdbEntry& e) {
      if (!bad.empty()) return;
      if (e.member >= members_.size() || !members_[e.member].in_use || members_[e.member].sw != s) {
        bad = invariant_at("switch", s) + "FDB entry for " + std::to_string(e.mac) + " points at a dead member";
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
    if (statics != sw.static_entries)
      return invariant_at("switch", s) + "static_entries is " + std::to_string(sw.static_entries) + ", counted " +
             std::to_string(statics);
  }
  if (vni_map_.size() != switches_in_use)
    return "vni_map: " + std::to_string(vni_map_.size()) + " entries for " + std::to_string(switches_in_use) +
           " switches";
  for (MemberId mid = 0; mid < members_.size(); ++mid)
    if (members_[mid].in_use && listed[mid] != 1) return invariant_at("member", mid) + "in use but in no switch's list";
  for (PortId p = 0; p < ports_.size(); ++p) {
    if (!core_.port(p).in_use) continue;
    if (ports_[p].learn.learned != learned_port[p])
      return invariant_at("port", p) + "learned is " + std::to_string(ports_[p].learn.learned) + ", counted " +
             std::to_string(learned_port[p]);
  }
  // VTEPs: their reference counts match the FDB entries and switch
  // memberships that point at them; only VTEPs the overlay holds are used.
  for (uint32_t v = 0; v < vteps_.size(); ++v) {
    const BridgeVtep& vt = vteps_[v];
    if (!overlay_.vtep_in_use(v)) {
      if (learned_vtep[v] || statics_vtep[v] || configured_vtep[v]) return invariant_at("vtep", v) + "referenced but not in use";
      continue;
    }
    if (vt.statics != statics_vtep[v])
      return invariant_at("vtep", v) + "statics is " + std::to_string(vt.statics) + ", counted " + std::to_string(statics_vtep[v]);
    if (vt.learn.learned != learned_vtep[v])
      return invariant_at("vtep", v) + "learned is " + std::to_string(vt.learn.learned) + ", counted " +
             std::to_string(learned_vtep[v]);
    if (vt.configured != configured_vtep[v])
      return invariant_at("vtep", v) + "configured is " + std::to_string(vt.configured) + ", counted " +
             std::to_string(configured_vtep[v]);
    for (auto& [s, mid] : vt.members)
      if (mid >= members_.size() || !members_[mid].in_use || members_[mid].vtep != v || members_[mid].sw != s)
        return invariant_at("vtep", v) + "lists a member that is not its own";
  }
  for (MemberId mid = 0; mid < members_.size(); ++mid) {
    const Member& m = members_[mid];
    if (!m.in_use || !m.remote()) continue;
    if (m.vtep >= vteps_.size() || !overlay_.vtep_in_use(m.vtep)) return invariant_at("member", mid) + "remote member of a dead VTEP";
    bool found = false;
    for (auto& [s, x] : vteps_[m.vtep].members) found |= x == mid;
    if (!found) return invariant_at("member", mid) + "missing from its VTEP's list";
  }
  return "";
}

}  // namespace vpc
