// Egress adaptation: what happens to a frame on its way to a port that cannot
// take it as it is. Reached from the bridge's enqueue() (bridge/forward.cc)
// for frames with kPktMeta set (offload state, or a large buffer) and for
// frames longer than the egress port's MTU (Bridge::egress_slow: the MTU and
// the VLAN tag, then Core::egress_offload here), and from the overlay's
// encap() for frames with offload state; plain frames never come here (one
// bit test and one compare in enqueue).
//
//   GSO frame of one segment that fits the port: sent whole (as below)
//   GSO super-frame, port takes it (tx_offloads, tx_max_frame, large buffers):
//       passed on, gso_size lowered to the port's MTU if the sender's is larger
//   GSO super-frame, anything else: segmented (proto/gso.h) into regular
//       buffers, each segment complete (checksums computed), staged in place
//       of the super-frame, so the port gets them in the same tx burst
//   checksum-partial, port without kOffCsum: checksum completed in place
//   a frame in a large buffer for a port without large buffers: copied
//   longer than the MTU without GSO: ICMP too big to the sender (if DF or
//       IPv6), dropped and counted (mtu_exceeded)
// Nothing is dropped without a counter: what cannot be segmented or completed
// is gso_unsupported / gso_malformed, a buffer the pool cannot give is
// no_buffer (and nothing else is).
#include <algorithm>

#include "core/core.h"
#include "core/egress.h"
#include "proto/too_big.h"

namespace vpc {


void Core::egress_offload(PortId out, PortState& ps, Pkt p, SwitchCounterBlock* sw) {
  BufferPool& pool = *pool_;
  OffloadMeta& m = pool.meta(p.buf);
  PortCounterBlock* pc = ps.counters;
  const bool large = pool.is_large(p.buf);
  if (m.gso() && p.len <= ps.tx_max_frame && (!large || ps.tx_large) &&
      gso_single_segment(pool.frame(p), p.len, m, ps.cfg.mtu)) {
    // one segment: on below as a checksum-partial frame
  } else if (m.gso()) {
    const bool as_is = (offload_needs(m) & ~ps.tx_offloads) == 0 && p.len <= ps.tx_max_frame &&
                       (!large || ps.tx_large);
    if (!as_is) {
      segment(p, m, ps.cfg.mtu, pc, sw, [&](Pkt q) { stage(out, ps, q); });
      return;
    }
    // The port segments; its segments must still fit its MTU.
    FrameLayout L;
    OffloadError err = OffloadError::none;
    if (!frame_layout(pool.frame(p), p.len, &L, &err)) {
      drop_frame(p, offload_drop(err), pc, sw);
      return;
    }
    const uint16_t mss = gso_mss_for_mtu(L, ps.cfg.mtu);
    if (mss == 0) {
      drop_frame(p, Drop::mtu_exceeded, pc, sw);
      return;
    }
    if (m.gso_size > mss) m.gso_size = mss;
    stage(out, ps, p);
    return;
  }
  if (!(ps.tx_offloads & kOffCsum)) {
    if (m.needs_csum()) {
      OffloadError err = OffloadError::none;
      if (!csum_complete(pool.frame(p), p.len, m, &err)) {
        drop_frame(p, offload_drop(err), pc, sw);
        return;
      }
      pc->add(PortCounter::tx_csum_completed, 1);
    }
    m.flags = 0;  // DATA_VALID means nothing to a port that takes no offloads
  }
  if (large && (!ps.tx_large || p.len > ps.tx_max_frame) && !to_regular(p, pc, sw)) return;
  if (p.len > ps.tx_max_frame) {
    drop_frame(p, Drop::mtu_exceeded, pc, sw);
    return;
  }
  if (!pool.is_large(p.buf) && pool.meta(p.buf).flags == 0) pkt_set_meta(p, false);
  stage(out, ps, p);
}

// Moves a frame out of a large buffer into a regular one (it fits: callers
// checked it is within an MTU). Keeps its offload state. False: dropped.
bool Core::to_regular(Pkt& p, PortCounterBlock* pc, SwitchCounterBlock* sw) {
  BufferPool& pool = *pool_;
  uint32_t idx;
  if (p.len > pool.max_frame()) {
    drop_frame(p, Drop::mtu_exceeded, pc, sw);
    return false;
  }
  if (!cache_->alloc(&idx)) {
    drop_frame(p, Drop::no_buffer, pc, sw);
    return false;
  }
  Pkt q{idx, pool.headroom(), p.len};
  std::memcpy(pool.frame(q), pool.frame(p), p.len);
  pool.meta(idx) = pool.meta(p.buf);
  pkt_set_meta(q, true);
  cache_->free(p.buf);
  p = q;
  return true;
}

// ICMP Fragmentation Needed / Packet Too Big for a frame that does not fit a
// path of l3_mtu bytes (proto/too_big.h decides whether it may be answered);
// the bridge sends it back to the member the frame came from. Rate-limited
// per switch by a token bucket of icmp_too_big_per_s tokens a second (and as
// many in a burst).
bool Core::too_big_reply(Pkt p, uint32_t l3_mtu, TooBigBucket& b, Pkt* reply) {
  const uint32_t rate = opts_.icmp_too_big_per_s;
  if (rate == 0) return false;
  EngineCounterBlock& ec = *engine_ctr_;
  // Tokens in thousandths: rate per second is rate thousandths per ms.
  const uint64_t cap = uint64_t(rate) * 1000;
  b.tokens = b.tokens >= cap ? cap : std::min<uint64_t>(cap, b.tokens + uint64_t(now_ms_ - b.ms) * rate);
  b.ms = now_ms_;
  if (b.tokens < 1000) {
    ec.add(EngineCounter::icmp_too_big_limited, 1);
    return false;
  }
  BufferPool& pool = *pool_;
  uint32_t idx;
  if (!cache_->alloc(&idx)) {
    ec.add(EngineCounter::icmp_too_big_skipped, 1);
    return false;
  }
  Pkt q{idx, pool.headroom(), 0};
  TooBigSkip why = TooBigSkip::none;
  uint32_t k = icmp_too_big(pool.frame(p), p.len, l3_mtu, pool.frame(q), pool.max_frame(), &why);
  if (k == 0) {
    cache_->free(idx);
    ec.add(EngineCounter::icmp_too_big_skipped, 1);
    return false;
  }
  b.tokens -= 1000;
  ec.add(EngineCounter::icmp_too_big_sent, 1);
  q.len = uint16_t(k);
  *reply = q;
  return true;
}

}  // namespace vpc
