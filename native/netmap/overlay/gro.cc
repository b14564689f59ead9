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
// decap() calls this only for a burst whose frames average kCoalesceMinLen
// inner bytes or more (gro_worth, from the byte count it keeps anyway), so
// 64-byte traffic pays nothing per frame. The run loop is core/coalesce.h's.
#include "core/coalesce.h"
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
  return coalesce_tcp_runs(
      core_.pool(), core_.cache(), pkts, n, true, [&](uint16_t i, uint16_t j) { return b.inm[j] == b.inm[i]; },
      [&](uint16_t to, uint16_t from) {
        b.inm[to] = b.inm[from];
        b.dest[to] = b.dest[from];
        b.src[to] = b.src[from];
        b.dst[to] = b.dst[from];
      },
      [&](uint16_t i, uint16_t j, Pkt q) {
        if (core_.observer().trace_open()) [[unlikely]]
          trace_coalesced(core_.observer(), pkts + i, uint32_t(j - i), q.buf, q.len);
        uplink_.counters->add(UplinkCounter::vxlan_rx_gro, uint64_t(j - i));
        uplink_.counters->add(UplinkCounter::vxlan_rx_gro_frames, 1);
      });
}

}  // namespace vpc
