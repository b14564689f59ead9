// Receive coalescing of decapsulated TCP segments (proto/gro.h).
//
// Over a wire, or any underlay that delivers VXLAN packets one by one (a NIC
// without GRO for tunnels, a veth whose sender segmented), a guest's TCP
// stream arrives as one inner segment per packet. Handed on like that, each
// segment costs the receiving guest a frame: a system call or ring slot on
// its port, a pass through its stack, an ACK every other segment. Here, in
// each decapsulated burst, consecutive segments of one connection from one
// VTEP are copied into one super-frame with the state of a TSO frame, as
// Linux's GRO hands over what its vxlan device receives. A port that takes
// TSO gets it whole; any other port gets it cut again at egress
// (core/egress.cc), so nothing depends on the receiver.
//
// What is not coalesced passes on as it was, in order: frames with offload
// state (they were never on a wire as they are), segments whose TCP checksum
// is wrong (the guest drops them, as it would have), anything but a run of
// two or more. When no large buffer is free the segments go on one by one.
// decap() calls this only for a burst whose frames average kGroMinLen inner
// bytes or more (gro_worth, from the byte count it keeps anyway), so 64-byte
// traffic pays nothing per frame.
#include "core/trace.h"
#include "overlay/overlay.h"
#include "proto/gro.h"

namespace vpc {

namespace {

// A trace follows the run into its super-frame: the first traced segment's
// record goes on with the new buffer, the others end with the line saying
// where they went.
void trace_coalesced(Observer& ob, const Pkt* seg, uint32_t n, uint32_t into, uint32_t len) {
  const uint64_t ns = Observer::mono_ns();
  bool followed = false;
  for (uint32_t k = 0; k < n; ++k) {
    TraceRecord* r = ob.traced(seg[k].buf);
    if (!r) continue;
    TraceSession::add(*r, ns, TraceStage::decap, "GRO: segment %u of %u coalesced into one %u-byte TCP super-frame%s", k + 1,
                      n, len, followed ? " (followed by an earlier segment's record)" : "");
    r->buf = followed ? kNoTraceBuf : into;
    followed = true;
  }
}

}  // namespace

uint16_t Overlay::gro(Pkt* pkts, uint16_t n, Burst& b) {
  uint16_t i = 0;
  while (i < n && pkts[i].len < kGroMinLen) ++i;
  if (i + 1 >= n) return n;
  BufferPool& pool = core_.pool();
  BufferCache& cache = core_.cache();
  const uint32_t max_frame = pool.max_large_frame();
  uint16_t w = i;
  auto keep = [&](uint16_t from) {
    if (w != from) {
      pkts[w] = pkts[from];
      b.inm[w] = b.inm[from];
      b.dest[w] = b.dest[from];
      b.src[w] = b.src[from];
      b.dst[w] = b.dst[from];
    }
    ++w;
  };
  while (i < n) {
    const Pkt p = pkts[i];
    uint16_t j = uint16_t(i + 1);
    TcpRun r;
    const uint8_t* f0 = pool.frame(p);
    if (j < n && p.len >= kGroMinLen && !pkt_has_meta(p) && tcp_run_start(f0, p.len, true, &r)) {
      const uint32_t hdr = r.L.hdr_len;
      while (j < n && b.inm[j] == b.inm[i] && !pkt_has_meta(pkts[j]) && pkts[j].len > hdr &&
             hdr + r.payload + (pkts[j].len - hdr) <= max_frame &&
             tcp_run_next(&r, f0, pool.frame(pkts[j]), pkts[j].len, true))
        ++j;
    }
    uint32_t idx;
    if (j - i < 2 || !cache.alloc_large(&idx)) {
      for (; i < j; ++i) keep(i);
      continue;
    }
    // The first segment whole, then the others' payloads.
    const uint32_t hdr = r.L.hdr_len;
    uint8_t* o = pool.data(idx) + pool.headroom();
    std::memcpy(o, f0, p.len);
    uint32_t pos = p.len;
    for (uint16_t k = uint16_t(i + 1); k < j; ++k) {
      std::memcpy(o + pos, pool.frame(pkts[k]) + hdr, pkts[k].len - hdr);
      pos += pkts[k].len - hdr;
    }
    pool.meta(idx) = tcp_run_finish(o, r);
    Pkt q{idx, pool.headroom(), uint16_t(pos)};
    pkt_set_meta(q, true);
    if (core_.observer().trace_open()) [[unlikely]]
      trace_coalesced(core_.observer(), pkts + i, uint32_t(j - i), idx, pos);
    for (uint16_t k = i; k < j; ++k) cache.free(pkts[k].buf);
    uplink_.counters->add(UplinkCounter::vxlan_rx_gro, uint64_t(j - i));
    uplink_.counters->add(UplinkCounter::vxlan_rx_gro_frames, 1);
    pkts[i] = q;
    keep(i);
    i = j;
  }
  return w;
}

}  // namespace vpc
