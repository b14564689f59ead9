// The overlay's counters per switch and peer (overlay/switch_peer_counters.h):
// a block opens when the bridge creates a remote member and folds into the
// peer's totals when the member goes; readers get the peer totals from
// peer_snapshot().
#include <cstring>
#include <unordered_map>

#include "overlay/overlay.h"

namespace vpc {

namespace {
// The counters a peer's totals sum from its (switch, peer) blocks.
constexpr std::pair<SwitchPeerCounter, PeerCounter> kSummed[] = {
    {SwitchPeerCounter::rx_packets, PeerCounter::rx_packets},
    {SwitchPeerCounter::rx_bytes, PeerCounter::rx_bytes},
    {SwitchPeerCounter::tx_packets, PeerCounter::tx_packets},
    {SwitchPeerCounter::tx_bytes, PeerCounter::tx_bytes},
};
}  // namespace

void Overlay::member_opened(MemberId m, SwitchId s, uint32_t vt) {
  SwitchPeerCounterBlock& sp = switch_peer_ctr_.at(m);
  for (uint64_t& c : sp.c) cnt_set(c, 0);
  cnt_set(sp.owner, uint64_t(s) << 32 | vt);
  cnt_set(sp.generation, sp.generation + 1);
  cnt_set(sp.in_use, 1);
  switch_peer_ctr_.opened(m);
}

// The peer keeps what the closing membership carried: its rx/tx move into
// the peer's own block, in one step for readers (see peer_snapshot).
void Overlay::member_closed(MemberId m, uint32_t vt) {
  SwitchPeerCounterBlock& sp = switch_peer_ctr_.at(m);
  PeerCounterBlock& pc = *peers_[vt].counters;
  switch_peer_ctr_.fold_begin();
  for (auto [from, to] : kSummed) pc.add(to, sp.c[size_t(from)]);
  cnt_set(sp.in_use, 0);
  switch_peer_ctr_.fold_end();
}

// Counts a frame that waited for its next hop, sent or dropped. Its peer and
// its membership may have gone (or been reused) while it waited: it counts
// only on those still the same.
void Overlay::count_pending(const Neighbor::Pending& q, bool sent) {
  PeerState& v = peers_[q.vtep];
  if (!v.in_use) return;
  const SwitchPeerCounterBlock& sp = switch_peer_ctr_.at(q.member);
  const bool member = cnt_read(sp.in_use) && cnt_read(sp.generation) == q.member_gen;
  if (!sent) {
    peer_drop(v, member ? q.member : kNoMember);
  } else if (member) {
    peer_tx(q.member, q.inner_len);
  } else {
    v.counters->add(PeerCounter::tx_packets, 1);
    v.counters->add(PeerCounter::tx_bytes, q.inner_len);
  }
}

std::vector<PeerSnapshot> Overlay::peer_snapshot() const {
  std::vector<PeerSnapshot> out;
  std::unordered_map<uint32_t, size_t> at;  // peer slot -> index in out
  for (;;) {
    const uint64_t start = switch_peer_ctr_.read_begin();
    out.clear();
    at.clear();
    for (uint32_t v = 0; v < peers_.size(); ++v) {
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
