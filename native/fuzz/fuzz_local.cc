// Fuzz target: local-port ingress. Bursts of frames through the pipe ports of
// two switches (access ports with a MAC limit, port security, no-flood, a
// small MTU, and two VLAN trunks mapping VLANs differently), with link flaps
// and the clock advancing so learning, moves, aging and floods all run.
//
// Input: a sequence of operations, each starting with one byte (op % 4):
//   0 burst:  port(u8) count(u8, 1..32) then per frame: hdr(u8) len(u16 % 1600)
//             and len bytes. hdr bit 7 set: the frame's MACs are replaced by
//             dst host (hdr & 7) (7: broadcast) and src host ((hdr >> 3) & 7),
//             so frames talk to each other; bit 6 set with bit 7: an 802.1Q
//             tag with VLAN 10 or 20 (by bit 5) is written after the MACs.
//   1 clock:  u16 milliseconds to advance (aging, learning refresh).
//   2 link:   port(u8); bit 7 of the next byte: up or down.
//   3 hold:   the next burst's output is left in the rings for one more step.
#include "fuzz_common.h"

namespace vpc::fuzz {
namespace {

Mac host(uint32_t i) { return i == 7 ? kMacBroadcast : testutil::host_mac(i + 1); }

struct LocalWorld : World {
  std::vector<PortId> ports;
  LocalWorld() {
    SwitchConfig a;
    a.vni = 100;
    a.mac_limit = 12;
    a.aging_ms = 2000;
    SwitchConfig b;
    b.vni = 200;
    b.aging_ms = 5000;
    SwitchId sa = try_create_switch(a).id, sb = try_create_switch(b).id;
    PortConfig plain;
    PortConfig limited;
    limited.mac_limit = 3;
    limited.flood = false;
    PortConfig secure;
    secure.locked_macs = {testutil::host_mac(1), testutil::host_mac(2)};
    secure.mtu = 200;
    ports.push_back(try_add_port(sa, plain).id);
    ports.push_back(try_add_port(sa, limited, {}, 64).id);
    ports.push_back(try_add_port(kNoId, plain, {{10, sa}, {20, sb}}).id);
    ports.push_back(try_add_port(sb, secure).id);
    ports.push_back(try_add_port(sb, plain, {{20, sa}}).id);
    for (PortId p : ports)
      if (p == kNoId) fail("setup: a port could not be created");
  }
};

Bytes frame(Input& in) {
  uint8_t hdr = in.u8();
  Bytes f = in.bytes(in.u16() % 1600);
  if ((hdr & 0x80) && f.size() >= 12) {
    mac_store(f.data(), host(hdr & 7));
    mac_store(f.data() + 6, host((hdr >> 3) & 7));
    if ((hdr & 0x40) && f.size() >= 16) {
      store_be16(f.data() + 12, kEtherTypeVlan);
      store_be16(f.data() + 14, (hdr & 0x20) ? 20 : 10);
    }
  }
  return f;
}

}  // namespace
}  // namespace vpc::fuzz

using namespace vpc;
using namespace vpc::fuzz;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Input in(data, size);
  LocalWorld w;
  bool hold = false;
  for (int ops = 0; !in.done() && ops < 256; ++ops) {
    switch (in.u8() % 4) {
      case 0: {
        PortId p = w.ports[in.u8() % w.ports.size()];
        uint32_t n = in.u8() % 32 + 1;
        std::vector<Bytes> frames;
        for (uint32_t i = 0; i < n && !in.done(); ++i) frames.push_back(frame(in));
        w.inject(p, std::move(frames));
        if (hold) {
          // Leave the output in the rings: the engine meets full rings.
          w.engine().run_once_at(w.now_ns());
          hold = false;
        }
        w.step();
        break;
      }
      case 1: w.step(in.u16()); break;
      case 2: {
        PortId p = w.ports[in.u8() % w.ports.size()];
        w.peer(p).set_link(in.u8() & 0x80);
        w.step(w.engine().options().idle_poll_ms);  // housekeeping sees it
        break;
      }
      case 3: hold = true; break;
    }
    w.take_out();
  }
  return 0;
}
