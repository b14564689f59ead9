// Test seams of the engine: a caller-driven clock, a count of the buffers it
// holds, and a consistency check of its tables (each owner checks its own:
// the core's ports here, bridge/invariants.cc, overlay/invariants.cc). Used
// by the native tests and the fuzzers (native/fuzz); nothing here runs on
// the packet path.
#include <set>
#include <string>

#include "core/engine.h"
#include "core/invariants.h"

namespace vpc {

uint32_t Engine::run_once_at(uint64_t elapsed_ns) {
  std::lock_guard<std::mutex> g(lifecycle_mu_);
  if (running_.load()) return 0;
  manual_clock_ = true;
  manual_now_ns_ = epoch_ns_ + elapsed_ns;
  return iterate(manual_now_ns_);
}

uint32_t Engine::buffers_held() const { return core_.frames_staged() + overlay_.frames_pending(); }

std::string Engine::check_invariants() const {
  std::string bad = core_.check_invariants(overlay_.uplink_port());
  if (bad.empty()) bad = bridge_.check_invariants();
  if (bad.empty()) bad = overlay_.check_invariants();
  return bad;
}

// Ports: the active list names exactly the ports in use; a port with staged
// frames is on the dirty list (housekeeping and commands may stage frames,
// e.g. ARP requests, for the next iteration's flush).
std::string Core::check_invariants(PortId uplink) const {
  std::set<PortId> active(active_ports_.begin(), active_ports_.end());
  if (active.size() != active_ports_.size()) return "active_ports: a port is listed twice";
  std::set<PortId> dirty(dirty_ports_.begin(), dirty_ports_.end());
  if (dirty.size() != dirty_ports_.size()) return "dirty_ports: a port is listed twice";
  for (PortId p = 0; p < ports_.size(); ++p) {
    const PortState& ps = ports_[p];
    if (ps.in_use != (active.count(p) == 1)) return invariant_at("port", p) + "in_use disagrees with the active list";
    if (!ps.in_use) {
      if (dirty.count(p)) return invariant_at("port", p) + "not in use but on the dirty list";
      continue;
    }
    if (!ps.port) return invariant_at("port", p) + "in use without a backend";
    if (ps.tx_dirty != (dirty.count(p) == 1)) return invariant_at("port", p) + "tx_dirty disagrees with the dirty list";
    if (ps.txn && !ps.tx_dirty) return invariant_at("port", p) + "frames staged but the port is not on the dirty list";
    if (ps.txn > kTxQueueLen) return invariant_at("port", p) + "tx queue overrun";
    if (ps.is_uplink != (uplink == p)) return invariant_at("port", p) + "is_uplink disagrees with the uplink";
  }
  return "";
}

}  // namespace vpc
