// Egress adaptation: what happens to a frame on its way to a port that cannot
// take it as it is. Reached from enqueue() (bridge/forward.cc) for frames with
// kPktMeta set (offload state, or a large buffer) and for frames longer than
// the egress port's MTU, and from encap() for frames with offload state; plain
// frames never come here (one bit test and one compare in enqueue).
//
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
// is gso_unsupported / gso_malformed, a missing buffer is no_buffer.
#include <algorithm>

#include "core/engine.h"
#include "proto/gso.h"
#include "proto/too_big.h"

namespace vpc {

namespace {

Drop offload_drop(OffloadError e) {
  switch (e) {
    case OffloadError::not_ip:
    case OffloadError::ip_fragment:
    case OffloadError::ipv6_ext:
    case OffloadError::not_tcp_udp:
    case OffloadError::gso_ufo:
    case OffloadError::gso_unknown:
      return Drop::gso_unsupported;
    case OffloadError::no_room:
      return Drop::no_buffer;
    default:
      return Drop::gso_malformed;
  }
}

}  // namespace

void Engine::egress_slow(PortId out, const Member& mem, Pkt p, MemberId from) {
  PortState& ps = ports_[out];
  SwitchState* sw = &switches_[mem.sw];
  BufferPool& pool = *pool_;
  const bool meta = pkt_has_meta(p);
  if (p.len > ps.max_len && !(meta && pool.meta(p.buf).gso())) {
    // Longer than this port's MTU, and not a super-frame that segments to fit.
    answer_too_big(p, ps.cfg.mtu, from);
    drop_frame(p, Drop::mtu_exceeded, ps.counters, sw);
    return;
  }
  if (mem.vlan) {
    if (pkt_off(p) < kVlanTagLen) [[unlikely]] {
      drop_frame(p, Drop::no_headroom, ps.counters, sw);
      return;
    }
    vlan_push(pool.data(p.buf), p, mem.vlan);
    if (meta) offload_shift(pool.meta(p.buf), kVlanTagLen);
  }
  if (!meta) {
    stage(out, ps, p);
    return;
  }
  egress_offload(out, ps, p, sw);
}

void Engine::egress_offload(PortId out, PortState& ps, Pkt p, SwitchState* sw) {
  BufferPool& pool = *pool_;
  OffloadMeta& m = pool.meta(p.buf);
  PortCounterBlock* pc = ps.counters;
  const bool large = pool.is_large(p.buf);
  if (m.gso()) {
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
bool Engine::to_regular(Pkt& p, PortCounterBlock* pc, SwitchState* sw) {
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

// Cuts a super-frame into segments whose IP packets fit `l3_mtu` (and a
// regular buffer), hands each to emit, frees the super-frame. Counts the
// super-frame and its segments on pc; whatever could not be produced is a
// counted drop. Returns true when every segment was emitted.
template <class Emit>
bool Engine::segment(Pkt p, const OffloadMeta& m, uint32_t l3_mtu, PortCounterBlock* pc, SwitchState* sw,
                     Emit&& emit) {
  BufferPool& pool = *pool_;
  const uint8_t* f = pool.frame(p);
  const uint32_t room = pool.max_frame();
  FrameLayout L;
  OffloadError err = OffloadError::none;
  uint32_t n = 0;
  uint16_t mss = 0;
  if (frame_layout(f, p.len, &L, &err)) {
    uint32_t fit = std::min<uint32_t>(gso_mss_for_mtu(L, l3_mtu), room > L.hdr_len ? room - L.hdr_len : 0);
    mss = uint16_t(std::min<uint32_t>(m.gso_size, fit));
    if (mss) n = gso_segments(f, p.len, m, L, mss, &err);
  }
  if (n == 0) {
    drop_frame(p, err == OffloadError::none ? Drop::mtu_exceeded : offload_drop(err), pc, sw);
    return false;
  }
  uint32_t done = 0;
  auto lose_rest = [&](Drop why) {
    pc->drop_tx(why, n - done);
    sw->counters->drop(why, n - done);
  };
  for (; done < n; ++done) {
    uint32_t idx;
    if (!cache_->alloc(&idx)) [[unlikely]] {
      lose_rest(Drop::no_buffer);
      break;
    }
    Pkt q{idx, pool.headroom(), 0};
    uint32_t k = gso_write_segment(f, p.len, L, mss, done, pool.frame(q), room, &err);
    if (k == 0) [[unlikely]] {
      cache_->free(idx);
      lose_rest(offload_drop(err));
      break;
    }
    q.len = uint16_t(k);
    emit(q);
  }
  pc->add(PortCounter::tx_gso_frames, 1);
  pc->add(PortCounter::tx_gso_segments, done);
  cache_->free(p.buf);
  return done == n;
}

// ICMP Fragmentation Needed / Packet Too Big for a frame that does not fit a
// path of l3_mtu bytes, sent back to the member it came from (proto/too_big.h
// decides whether it may be answered). Rate-limited per engine by a token
// bucket of icmp_too_big_per_s tokens a second (and as many in a burst).
void Engine::answer_too_big(Pkt p, uint32_t l3_mtu, MemberId from) {
  const uint32_t rate = opts_.icmp_too_big_per_s;
  if (from == kNoMember || rate == 0) return;
  EngineCounterBlock& ec = *engine_ctr_;
  // Tokens in thousandths: rate per second is rate thousandths per ms.
  const uint64_t cap = uint64_t(rate) * 1000;
  too_big_tokens_ = std::min<uint64_t>(cap, too_big_tokens_ + uint64_t(now_ms_ - too_big_ms_) * rate);
  too_big_ms_ = now_ms_;
  if (too_big_tokens_ < 1000) {
    ec.add(EngineCounter::icmp_too_big_limited, 1);
    return;
  }
  BufferPool& pool = *pool_;
  uint32_t idx;
  if (!cache_->alloc(&idx)) {
    ec.add(EngineCounter::icmp_too_big_skipped, 1);
    return;
  }
  Pkt q{idx, pool.headroom(), 0};
  TooBigSkip why = TooBigSkip::none;
  uint32_t k = icmp_too_big(pool.frame(p), p.len, l3_mtu, pool.frame(q), pool.max_frame(), &why);
  if (k == 0) {
    cache_->free(idx);
    ec.add(EngineCounter::icmp_too_big_skipped, 1);
    return;
  }
  too_big_tokens_ -= 1000;
  ec.add(EngineCounter::icmp_too_big_sent, 1);
  q.len = uint16_t(k);
  deliver_to(from, q);
}

// Encapsulation of a frame with offload state: a super-frame is segmented to
// the overlay's inner MTU (whatever the sender's gso_size) and each segment
// encapsulated; a checksum-partial frame is completed first. What leaves
// through the uplink is always plain.
void Engine::encap_offload(const Member& mem, Pkt p, MemberId from, uint32_t inner_mtu) {
  BufferPool& pool = *pool_;
  OffloadMeta& m = pool.meta(p.buf);
  SwitchState* sw = &switches_[mem.sw];
  VtepState& v = vteps_[mem.vtep];
  PortCounterBlock* pc = ports_[uplink_.port].counters;
  if (m.gso()) {
    if (!segment(p, m, inner_mtu, pc, sw, [&](Pkt q) { encap(mem, q, from); })) v.counters->add(PeerCounter::drops, 1);
    return;
  }
  if (m.needs_csum()) {
    OffloadError err = OffloadError::none;
    if (!csum_complete(pool.frame(p), p.len, m, &err)) {
      v.counters->add(PeerCounter::drops, 1);
      drop_frame(p, offload_drop(err), pc, sw);
      return;
    }
    pc->add(PortCounter::tx_csum_completed, 1);
  }
  if (pool.is_large(p.buf)) {
    if (p.len > pool.max_frame()) {
      // Cannot fit the inner MTU either (it is below a regular buffer).
      answer_too_big(p, inner_mtu, from);
      v.counters->add(PeerCounter::drops, 1);
      drop_frame(p, Drop::vxlan_too_big, pc, sw);
      return;
    }
    if (!to_regular(p, pc, sw)) {
      v.counters->add(PeerCounter::drops, 1);
      return;
    }
  }
  pkt_set_meta(p, false);
  encap(mem, p, from);
}

}  // namespace vpc
