// Peer totals for readers on any thread: a peer's own block plus the
// (switch, peer) blocks of its live memberships (core/switch_peer_counters.h
// explains the split and the sequence counter).
#include <cstring>
#include <unordered_map>

#include "core/engine.h"

namespace vpc {

std::vector<Engine::PeerSnapshot> Engine::peer_snapshot() const {
  constexpr std::pair<SwitchPeerCounter, PeerCounter> kSummed[] = {
      {SwitchPeerCounter::rx_packets, PeerCounter::rx_packets},
      {SwitchPeerCounter::rx_bytes, PeerCounter::rx_bytes},
      {SwitchPeerCounter::tx_packets, PeerCounter::tx_packets},
      {SwitchPeerCounter::tx_bytes, PeerCounter::tx_bytes},
  };
  std::vector<PeerSnapshot> out;
  std::unordered_map<uint32_t, size_t> at;  // peer slot -> index in out
  for (;;) {
    const uint64_t start = switch_peer_ctr_.read_begin();
    out.clear();
    at.clear();
    for (uint32_t v = 0; v < opts_.max_vteps; ++v) {
      const PeerCounterBlock& b = peer_ctr_[v];
      if (!cnt_read(b.in_use)) continue;
      PeerSnapshot s;
      s.slot = v;
      std::memcpy(s.ip.b, b.ip, 16);
      for (size_t k = 0; k < kPeerCounters; ++k) s.c[k] = cnt_read(b.c[k]);
      at[v] = out.size();
      out.push_back(s);
    }
    const uint32_t n = switch_peer_ctr_.size();
    for (MemberId m = 0; m < n; ++m) {
      const SwitchPeerCounterBlock& b = switch_peer_ctr_.at(m);
      if (!cnt_read(b.in_use)) continue;
      auto it = at.find(uint32_t(cnt_read(b.owner)));
      if (it == at.end()) continue;
      for (auto [from, to] : kSummed) out[it->second].c[size_t(to)] += cnt_read(b.c[size_t(from)]);
    }
    if (!switch_peer_ctr_.read_retry(start)) return out;
  }
}

}  // namespace vpc
