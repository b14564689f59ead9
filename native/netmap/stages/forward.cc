// Stage 3, forward: the batch driver and the per-destination flush.
//
// A received burst goes through three passes (the VALE two-pass shape, with
// the lookup split off so FDB cache misses overlap):
//   0. classify every frame and prefetch the FDB slots its MACs hash to;
//   1. learn the source, look up the destination: each frame gets a member,
//      FLOOD_* or DROP;
//   2. deliver: stage unicast frames on their egress port's queue, replicate
//      floods, free drops.
// Egress queues are flushed once per engine iteration (or when one fills), so
// a port sees one tx_burst per iteration, not one per frame.
#include "core/engine.h"
#include "stages/classify.h"
#include "stages/learn.h"

namespace vpc {

namespace {
// Destinations above every member id.
constexpr uint16_t kDestDrop = 0xFFFF;
constexpr uint16_t kDestFloodBcast = 0xFFFE;
constexpr uint16_t kDestFloodMcast = 0xFFFD;
constexpr uint16_t kDestFloodUnknown = 0xFFFC;
constexpr uint16_t kDestFirstSpecial = 0xFFFC;
static_assert(kMaxMembers <= kDestFirstSpecial, "member ids stay below the special destinations");
}  // namespace

// Frames ahead whose header is prefetched in pass 0, and whose FDB slots are
// prefetched in pass 1. Short distances on purpose: a core keeps only a dozen
// or so misses in flight, and prefetches issued further ahead are lost.
constexpr uint16_t kFramePrefetch = 4;
constexpr uint16_t kFdbPrefetch = 8;

inline void Engine::enqueue(PortId out, const Member& mem, Pkt p) {
  PortState& ps = ports_[out];
  if (mem.vlan) {
    if (p.off < kVlanTagLen) [[unlikely]] {
      ps.counters->drop_tx(Drop::no_buffer);
      switches_[mem.sw].counters->drop(Drop::no_buffer);
      cache_->free(p.buf);
      return;
    }
    vlan_push(pool_->data(p.buf), p, mem.vlan);
  }
  ps.txq[ps.txn++] = p;
  if (!ps.tx_dirty) [[unlikely]] {
    ps.tx_dirty = true;
    dirty_ports_.push_back(out);
  }
  if (ps.txn == kTxQueueLen) [[unlikely]] flush_port(out);
}

void Engine::process(PortId pid, Pkt* pkts, uint16_t n) {
  PortState& in = ports_[pid];
  const BufferPool& pool = *pool_;
  const Member* members = members_.data();
  SwitchState* switches = switches_.data();
  MemberId inm[kMaxBurst];
  uint16_t dest[kMaxBurst];
  Mac src[kMaxBurst];
  Mac dst[kMaxBurst];
  uint64_t bytes = 0;

  // Pass 0: classify and read the MACs.
  for (uint16_t i = 0; i < n && i < kFramePrefetch; ++i) __builtin_prefetch(pool.frame(pkts[i]));
  for (uint16_t i = 0; i < n; ++i) {
    if (i + kFramePrefetch < n) __builtin_prefetch(pool.frame(pkts[i + kFramePrefetch]));
    Pkt& p = pkts[i];
    bytes += p.len;
    Drop why;
    if (!classify(in, pool.data(p.buf), p, &inm[i], &why)) [[unlikely]] {
      in.counters->drop_rx(why);
      dest[i] = kDestDrop;
      continue;
    }
    const uint8_t* f = pool.frame(p);
    dst[i] = eth_dst(f);
    src[i] = eth_src(f);
    dest[i] = 0;
  }
  in.counters->add(PortCounter::rx_packets, n);
  in.counters->add(PortCounter::rx_bytes, bytes);

  // Pass 1: learn the source, look up the destination.
  auto prefetch_fdb = [&](uint16_t j) {
    if (dest[j] == kDestDrop) return;
    const Fdb& fdb = switches[members[inm[j]].sw].fdb;
    if (!mac_is_multicast(dst[j])) fdb.prefetch(dst[j]);
    if (src[j] != in.cache_src) fdb.prefetch(src[j]);
  };
  for (uint16_t j = 0; j < n && j < kFdbPrefetch; ++j) prefetch_fdb(j);
  SwitchId run_sw = kNoId;
  uint64_t run_len = 0;
  for (uint16_t i = 0; i < n; ++i) {
    if (i + kFdbPrefetch < n) prefetch_fdb(uint16_t(i + kFdbPrefetch));
    if (dest[i] == kDestDrop) continue;
    MemberId m = inm[i];
    SwitchId s = members[m].sw;
    SwitchState& sw = switches[s];
    if (s != run_sw) {
      if (run_len) switches[run_sw].counters->add(SwitchCounter::rx_packets, run_len);
      run_sw = s;
      run_len = 0;
    }
    ++run_len;
    Drop why;
    if (!learn_cache_hit(in, m, src[i], sw.generation, now_ms_) && !learn(in, m, src[i], &why)) [[unlikely]] {
      in.counters->drop_rx(why);
      sw.counters->drop(why);
      dest[i] = kDestDrop;
      continue;
    }
    if (mac_is_multicast(dst[i])) {
      dest[i] = dst[i] == kMacBroadcast ? kDestFloodBcast : kDestFloodMcast;
      continue;
    }
    const FdbEntry* e = sw.fdb.find(dst[i]);
    if (!e) {
      dest[i] = kDestFloodUnknown;
    } else if (e->member == m) [[unlikely]] {
      in.counters->drop_rx(Drop::same_port);
      sw.counters->drop(Drop::same_port);
      dest[i] = kDestDrop;
    } else {
      dest[i] = e->member;
    }
  }
  if (run_len) switches[run_sw].counters->add(SwitchCounter::rx_packets, run_len);

  // Pass 2: deliver.
  for (uint16_t i = 0; i < n; ++i) {
    uint16_t d = dest[i];
    if (d < kDestFirstSpecial) [[likely]] {
      const Member& mem = members[d];
      enqueue(mem.port, mem, pkts[i]);
    } else if (d == kDestDrop) {
      cache_->free(pkts[i].buf);
    } else {
      SwitchState& sw = switches[members[inm[i]].sw];
      sw.counters->add(SwitchCounter::flooded, 1);
      if (d == kDestFloodUnknown) sw.counters->add(SwitchCounter::flooded_unknown, 1);
      flood(sw, inm[i], pkts[i], d == kDestFloodBcast);
    }
  }
}

void Engine::flood(SwitchState& sw, MemberId in_member, Pkt p, bool is_bcast) {
  // Collect the recipients first so the original buffer can go to the last
  // one and only the others need a copy.
  MemberId to[64];
  uint32_t k = 0;
  const std::vector<MemberId>& list = sw.members;
  BufferPool& pool = *pool_;
  for (size_t j = 0; j < list.size(); ++j) {
    MemberId m = list[j];
    if (m == in_member) continue;  // never back out the ingress port
    const PortState& ps = ports_[members_[m].port];
    if (!ps.up) continue;
    if (!is_bcast && !ps.cfg.flood) continue;
    if (k == 64) {
      // Large switches: deliver what we have as copies and keep collecting.
      for (uint32_t c = 0; c < k; ++c) {
        uint32_t idx;
        if (!cache_->alloc(&idx)) {
          sw.counters->drop(Drop::no_buffer);
          continue;
        }
        Pkt q{idx, pool.headroom(), p.len};
        std::memcpy(pool.frame(q), pool.frame(p), p.len);
        sw.counters->add(SwitchCounter::flood_copies, 1);
        enqueue(members_[to[c]].port, members_[to[c]], q);
      }
      k = 0;
    }
    to[k++] = m;
  }
  if (k == 0) {
    cache_->free(p.buf);
    return;
  }
  for (uint32_t c = 0; c + 1 < k; ++c) {
    uint32_t idx;
    if (!cache_->alloc(&idx)) [[unlikely]] {
      sw.counters->drop(Drop::no_buffer);
      ports_[members_[to[c]].port].counters->drop_tx(Drop::no_buffer);
      continue;
    }
    Pkt q{idx, pool.headroom(), p.len};
    std::memcpy(pool.frame(q), pool.frame(p), p.len);
    enqueue(members_[to[c]].port, members_[to[c]], q);
  }
  sw.counters->add(SwitchCounter::flood_copies, k - 1);
  enqueue(members_[to[k - 1]].port, members_[to[k - 1]], p);
}

}  // namespace vpc
