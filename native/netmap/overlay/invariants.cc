// The overlay's consistency check (a test seam, see Engine::check_invariants):
// the VTEP index names exactly the VTEPs in use, neighbour use counts match
// the VTEPs routed through them, and frames wait only for unresolved ones.
#include <string>
#include <vector>

#include "core/invariants.h"
#include "overlay/overlay.h"

namespace vpc {

std::string Overlay::check_invariants() const {
  size_t vteps_in_use = 0;
  std::vector<uint32_t> users(neighbors_.size(), 0);
  for (uint32_t v = 0; v < vteps_.size(); ++v) {
    const VtepState& vt = vteps_[v];
    if (!vt.in_use) continue;
    ++vteps_in_use;
    auto it = vtep_index_.find(vt.ip);
    if (it == vtep_index_.end() || it->second != v) return invariant_at("vtep", v) + "not in the index";
    if (vt.reachable) {
      if (vt.neighbor >= neighbors_.size()) return invariant_at("vtep", v) + "reachable through a missing neighbour";
      ++users[vt.neighbor];
    }
  }
  if (vtep_index_.size() != vteps_in_use)
    return "vtep_index: " + std::to_string(vtep_index_.size()) + " entries for " + std::to_string(vteps_in_use) +
           " VTEPs";
  // Neighbours: `users` counts the VTEPs routed through each; pending queues
  // are bounded and hold frames only while unresolved.
  for (size_t i = 0; i < neighbors_.size(); ++i) {
    const Neighbor& nb = neighbors_[i];
    if (nb.users != users[i])
      return invariant_at("neighbor", i) + "users is " + std::to_string(nb.users) + ", counted " + std::to_string(users[i]);
    if (nb.pending.size() > 16) return invariant_at("neighbor", i) + "more than 16 frames pending";
    if (!nb.pending.empty() && (nb.state == Neighbor::kReachable || nb.state == Neighbor::kStale))
      return invariant_at("neighbor", i) + "frames pending on a resolved neighbour";
    for (const Neighbor::Pending& q : nb.pending)
      if (q.pkt.buf >= core_.pool().count()) return invariant_at("neighbor", i) + "pending frame with a bad buffer";
  }
  if (!uplink_.active && !neighbors_.empty()) return "neighbors: present without an uplink";
  return "";
}

}  // namespace vpc
