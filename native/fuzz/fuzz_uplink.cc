// Fuzz target: uplink ingress. The underlay side of the VTEP through a pipe
// port: VXLAN over IPv4 and IPv6 (any source, VNI, flags, checksum, length),
// ARP, Neighbor Discovery and echo for the VTEP addresses, raw frames; local
// traffic that must be encapsulated (and waits for ARP/ND); the clock driving
// neighbour retries, expiry and aging.
//
// Input: variant(u8: uplink options, see OverlayWorld) then operations, each
// starting with one byte (op % 4):
//   0 underlay: count(u8, 1..16) frames from underlay_frame() (fuzz_overlay.h)
//   1 local:    port(u8) count(u8, 1..16) frames from host_frame()
//   2 clock:    u16 milliseconds to advance
//   3 link:     the uplink's cable up or down (bit 7 of the next byte)
#include "fuzz_overlay.h"

using namespace vpc;
using namespace vpc::fuzz;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Input in(data, size);
  OverlayWorld w(in.u8());
  for (int ops = 0; !in.done() && ops < 256; ++ops) {
    switch (in.u8() % 4) {
      case 0: {
        uint32_t n = in.u8() % 16 + 1;
        std::vector<Bytes> frames;
        for (uint32_t i = 0; i < n && !in.done(); ++i) frames.push_back(underlay_frame(in));
        w.inject(w.uplink, std::move(frames));
        w.step();
        break;
      }
      case 1: {
        PortId p = w.locals[in.u8() % w.locals.size()];
        uint32_t n = in.u8() % 16 + 1;
        std::vector<Bytes> frames;
        for (uint32_t i = 0; i < n && !in.done(); ++i) frames.push_back(host_frame(in));
        w.inject(p, std::move(frames));
        w.step();
        break;
      }
      case 2: w.step(in.u16()); break;
      case 3:
        w.peer(w.uplink).set_link(in.u8() & 0x80);
        w.step(w.engine().options().idle_poll_ms);
        break;
    }
    w.take_out();
  }
  return 0;
}
