// The bridge's stages: classify, learn + look up, deliver.
//
// A received burst goes through three passes (the VALE two-pass shape, with
// the lookup split off so FDB cache misses overlap):
//   0. classify every frame and read its MACs (local ports: classify() here,
//      with classify.h; the uplink: the overlay's outer checks and
//      decapsulation, overlay/decap.cc, which fill the same Burst);
//   1. learn the source, look up the destination: each frame gets a member,
//      FLOOD_* or DROP (forward());
//   2. deliver: stage unicast frames on their egress port's queue (the core's
//      tx), or hand them to the overlay's encap for a remote member;
//      replicate floods, free drops.
// Egress queues are flushed once per engine iteration (or when one fills), so
// a port sees one tx_burst per iteration, not one per frame.
#include "bridge/bridge.h"
#include "bridge/classify.h"
#include "bridge/dest.h"
#include "bridge/learn.h"
#include "overlay/overlay.h"

namespace vpc {


// Frames ahead whose header is prefetched in pass 0, and whose FDB slots are
// prefetched in pass 1. Short distances on purpose: a core keeps only a dozen
// or so misses in flight, and prefetches issued further ahead are lost.
constexpr uint16_t kFramePrefetch = 4;
constexpr uint16_t kFdbPrefetch = 8;

void Bridge::deliver_to(MemberId m, Pkt p) { enqueue(members_[m].port, members_[m], p, kNoMember); }

void Bridge::answer_too_big(Pkt p, uint32_t l3_mtu, MemberId from) {
  if (from == kNoMember) return;
  Pkt q;
  if (core_.too_big_reply(p, l3_mtu, switches_[members_[from].sw].too_big, &q)) deliver_to(from, q);
}

// `from` is the ingress member: where an ICMP "too big" answer goes.
// Inlined into the delivery loop: every call it makes is on a cold path, so
// the common case (a local port, a plain frame) costs no call at all.
[[gnu::always_inline]] inline void Bridge::enqueue(PortId out, const Member& mem, Pkt p, MemberId from) {
  if (mem.remote()) [[unlikely]] {
    overlay_.encap(mem.vtep, switches_[mem.sw], p, from, MemberId(&mem - members_.data()));
    return;
  }
  PortState& ps = tx_ports_[out];
  // Frames with offload state (or in a large buffer), frames longer than this
  // port's MTU, and tagged frames without headroom take the egress slow path
  // (core/egress.cc): one bit test and one compare for everything else.
  if (pkt_has_meta(p) || p.len > ps.max_len || (mem.vlan && pkt_off(p) < kVlanTagLen)) [[unlikely]] {
    egress_slow(out, mem, p, from);
    return;
  }
  if (mem.vlan) vlan_push(core_.pool().data(p.buf), p, mem.vlan);
  core_.stage(out, ps, p);
}

// Frames that enqueue() cannot stage as they are: longer than the port's MTU
// (ICMP too big to the sender), tagged without headroom, or with offload
// state (the core's egress adaptation, core/egress.cc).
void Bridge::egress_slow(PortId out, const Member& mem, Pkt p, MemberId from) {
  PortState& ps = core_.port(out);
  SwitchCounterBlock* sw = switches_[mem.sw].counters;
  BufferPool& pool = core_.pool();
  const bool meta = pkt_has_meta(p);
  if (p.len > ps.max_len && !(meta && pool.meta(p.buf).gso())) {
    // Longer than this port's MTU, and not a super-frame that segments to fit.
    answer_too_big(p, ps.cfg.mtu, from);
    core_.drop_frame(p, Drop::mtu_exceeded, ps.counters, sw);
    return;
  }
  if (mem.vlan) {
    if (pkt_off(p) < kVlanTagLen) [[unlikely]] {
      core_.drop_frame(p, Drop::no_headroom, ps.counters, sw);
      return;
    }
    vlan_push(pool.data(p.buf), p, mem.vlan);
    if (meta) offload_shift(pool.meta(p.buf), kVlanTagLen);
  }
  if (!meta) {
    core_.stage(out, ps, p);
    return;
  }
  core_.egress_offload(out, ps, p, sw);
}

// Pass 0 for a local port: rx -> members.
void Bridge::classify(PortId pid, Pkt* pkts, uint16_t n, Burst& b) {
  const PortState& in = core_.port(pid);
  const BridgePort& bp = ports_[pid];
  const BufferPool& pool = core_.pool();
  OffloadMeta* const meta = pool.meta_table();
  MemberId* inm = b.inm;
  uint16_t* dest = b.dest;
  Mac* src = b.src;
  Mac* dst = b.dst;
  uint64_t bytes = 0;

  // Pass 0: classify and read the MACs.
  for (uint16_t i = 0; i < n && i < kFramePrefetch; ++i) __builtin_prefetch(pool.frame(pkts[i]));
  for (uint16_t i = 0; i < n; ++i) {
    if (i + kFramePrefetch < n) __builtin_prefetch(pool.frame(pkts[i + kFramePrefetch]));
    Pkt& p = pkts[i];
    bytes += p.len;
    Drop why;
    if (!vpc::classify(bp, in.max_len, pool.data(p.buf), p, &inm[i], &why, meta)) [[unlikely]] {
      // Longer than this port's MTU (a guest whose interface MTU is larger
      // than the port's): answered like a frame too big for its egress, so
      // the sender's TCP learns the path MTU instead of losing every full
      // segment.
      if (why == Drop::oversize) answer_too_big(p, in.cfg.mtu, inm[i]);
      in.counters->drop_rx(why);
      if (core_.observer().tracing()) [[unlikely]] core_.observer().drop(p.buf, why);
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
  b.pkts = pkts;
  b.n = n;
  b.kpath = bp.kpath;
}

// Passes 1 and 2 for frames already mapped to members (dest[i] is kDestDrop
// for frames to skip, anything else otherwise). Frames may come from local
// ports or from remote VTEPs; in_ctr is the receiving port's counter block.
void Bridge::forward(Burst& b, PortCounterBlock* in_ctr, LearnSource* port_ls) {
  Pkt* const pkts = b.pkts;
  const uint16_t n = b.n;
  MemberId* const inm = b.inm;
  uint16_t* const dest = b.dest;
  const Mac* const src = b.src;
  const Mac* const dst = b.dst;
  const uint32_t now_ms = core_.now_ms();
  const Member* members = members_.data();
  SwitchState* switches = switches_.data();
  const Mac cached_src = port_ls ? port_ls->cache_src : ~0ull;
  const bool tracing = core_.observer().tracing();  // capture and trace (core/observe.h)

  // Pass 1: learn the source, look up the destination.
  auto prefetch_fdb = [&](uint16_t j) {
    if (dest[j] == kDestDrop) return;
    const Fdb& fdb = switches[members[inm[j]].sw].fdb;
    if (!mac_is_multicast(dst[j])) fdb.prefetch(dst[j]);
    if (src[j] != cached_src) fdb.prefetch(src[j]);
  };
  for (uint16_t j = 0; j < n && j < kFdbPrefetch; ++j) prefetch_fdb(j);
  if (tracing) [[unlikely]] trace_before(b);
  SwitchId run_sw = kNoId;
  uint64_t run_len = 0;
  for (uint16_t i = 0; i < n; ++i) {
    if (i + kFdbPrefetch < n) prefetch_fdb(uint16_t(i + kFdbPrefetch));
    if (dest[i] == kDestDrop) continue;
    MemberId m = inm[i];
    const Member& mem = members[m];
    SwitchId s = mem.sw;
    SwitchState& sw = switches[s];
    if (s != run_sw) {
      if (run_len) switches[run_sw].counters->add(SwitchCounter::rx_packets, run_len);
      run_sw = s;
      run_len = 0;
    }
    ++run_len;
    Drop why;
    LearnSource& ls = port_ls ? *port_ls : source_of(m);
    if (!learn_cache_hit(ls, m, src[i], sw, now_ms) &&
        !learn(ls, mem.remote() ? nullptr : &core_.port(mem.port).cfg.locked_macs, m, src[i], &why)) [[unlikely]] {
      in_ctr->drop_rx(why);
      sw.counters->drop(why);
      if (tracing) [[unlikely]] core_.observer().drop(pkts[i].buf, why);
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
      in_ctr->drop_rx(Drop::same_port);
      sw.counters->drop(Drop::same_port);
      if (tracing) [[unlikely]] core_.observer().drop(pkts[i].buf, Drop::same_port);
      dest[i] = kDestDrop;
    } else if (mem.remote() && members[e->member].remote()) [[unlikely]] {
      // Split horizon: what came from one VTEP never goes on to another.
      in_ctr->drop_rx(Drop::remote_to_remote);
      sw.counters->drop(Drop::remote_to_remote);
      if (tracing) [[unlikely]] core_.observer().drop(pkts[i].buf, Drop::remote_to_remote);
      dest[i] = kDestDrop;
    } else {
      dest[i] = e->member;
    }
  }
  if (run_len) switches[run_sw].counters->add(SwitchCounter::rx_packets, run_len);
  if (tracing) [[unlikely]] trace_after(b);
  if (b.kpath) [[unlikely]] kpath_note(b);  // from a port the kernel fast path serves (bridge/kpath.h)

  // Pass 2: deliver.
  for (uint16_t i = 0; i < n; ++i) {
    uint16_t d = dest[i];
    if (d < kDestFirstSpecial) [[likely]] {
      const Member& mem = members[d];
      enqueue(mem.port, mem, pkts[i], inm[i]);
    } else if (d == kDestDrop) {
      core_.cache().free(pkts[i].buf);
    } else {
      SwitchState& sw = switches[members[inm[i]].sw];
      sw.counters->add(SwitchCounter::flooded, 1);
      if (d == kDestFloodUnknown) sw.counters->add(SwitchCounter::flooded_unknown, 1);
      flood(sw, inm[i], pkts[i], d == kDestFloodBcast);
    }
  }
}

void Bridge::flood(SwitchState& sw, MemberId in_member, Pkt p, bool is_bcast) {
  // Collect the recipients first so the original buffer can go to the last
  // one and only the others need a copy. Head-end replication: every remote
  // VTEP in the flood list gets one copy, except when the frame itself came
  // from a VTEP (split horizon: decapsulated floods stay local).
  const bool from_remote = members_[in_member].remote();
  const bool uplink_up = overlay_.uplink_up();
  MemberId to[64];
  uint32_t k = 0;
  auto copy_to = [&](MemberId m) {
    Pkt q;
    if (!core_.copy_frame(p, &q)) [[unlikely]] {
      const Member& mem = members_[m];
      PortId out = mem.remote() ? overlay_.uplink_port() : mem.port;
      Core::drop_frame_count(Drop::no_buffer, out == kNoId ? nullptr : tx_ports_[out].counters, sw.counters);
      return;
    }
    sw.counters->add(SwitchCounter::flood_copies, 1);
    enqueue(members_[m].port, members_[m], q, in_member);
  };
  for (MemberId m : sw.members) {
    if (m == in_member) continue;  // never back out the ingress port
    const Member& mem = members_[m];
    if (mem.remote()) {
      if (from_remote || !mem.in_flood || !uplink_up) continue;
    } else {
      const PortState& ps = tx_ports_[mem.port];
      if (!ps.up) continue;
      if (!is_bcast && !ps.cfg.flood) continue;
    }
    if (k == 64) {
      // Large switches: deliver what we have as copies and keep collecting.
      for (uint32_t c = 0; c < k; ++c) copy_to(to[c]);
      k = 0;
    }
    to[k++] = m;
  }
  if (k == 0) {
    core_.cache().free(p.buf);
    return;
  }
  for (uint32_t c = 0; c + 1 < k; ++c) copy_to(to[c]);
  enqueue(members_[to[k - 1]].port, members_[to[k - 1]], p, in_member);
}

}  // namespace vpc
