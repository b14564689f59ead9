// Fuzz target: command sequences applied while traffic runs. Starts from the
// overlay world (fuzz_overlay.h) and interleaves every engine command, with
// arguments the input chooses (valid, invalid, stale ids), with local and
// underlay traffic that is already queued in the rings when the command
// applies, and with the clock. Ports, switches, peers, static MACs and the
// uplink come and go while frames for them are in flight.
//
// Input: variant(u8) then operations, each starting with one byte:
//   low 2 bits 0: a command, chosen by the next byte % 18 (15 capture, 16
//              trace, 17 barrier), arguments follow
//              1: local traffic: port(u8) count(u8, 1..8) host_frame()s
//              2: underlay traffic: count(u8, 1..8) underlay_frame()s
//              3: clock: u16 milliseconds
//   bit 6 set on traffic: queue only; the engine runs after the next command.
#include "fuzz_overlay.h"

namespace vpc::fuzz {
namespace {

struct CommandWorld : OverlayWorld {
  using OverlayWorld::OverlayWorld;

  SwitchId sw_sel(Input& in) {
    uint8_t s = in.u8() % 9;
    return s == 8 ? kNoId : s;
  }
  PortId port_sel(Input& in) {
    uint8_t s = in.u8() % 9;
    return s == 8 ? 100 : s;
  }
  IpAddr ip_sel(Input& in) {
    uint8_t s = in.u8();
    return (s & 0x80) ? addr6(s) : addr4(s);
  }
  SwitchConfig switch_cfg(Input& in) {
    SwitchConfig c;
    c.vni = 5000 + in.u8() % 8 * 1000;  // 5000 and 6000 exist already
    uint8_t f = in.u8();
    c.mac_limit = f & 0x80 ? 0 : 1 + in.u8() % 32;  // 0 is invalid
    c.aging_ms = f & 0x40 ? 500 : 1000 + in.u8() * 100u;  // 500 is invalid
    c.learning = !(f & 1);
    c.remote_learning = !(f & 2);
    c.fdb_capacity = 16;
    return c;
  }
  PortConfig port_cfg(Input& in) {
    PortConfig c;
    uint8_t f = in.u8();
    c.mtu = f & 0x80 ? 60 : 68 + in.u16() % 1600;  // 60 is invalid
    c.mac_limit = f & 0x40 ? in.u8() % 5 : 0;
    c.flood = !(f & 1);
    c.learning = !(f & 2);
    if (f & 4) c.locked_macs = {host(0), host(1)};
    if (f & 8) c.locked_macs.push_back(host(7));  // multicast: invalid
    return c;
  }

  void command(Input& in) {
    switch (in.u8() % 18) {
      case 0: try_create_switch(switch_cfg(in)); break;
      case 1: {
        auto c = cmd(CmdOp::kSetSwitch);
        c->sw = sw_sel(in);
        c->switch_cfg = switch_cfg(in);
        run(std::move(c));
        break;
      }
      case 2: {
        auto c = cmd(CmdOp::kDeleteSwitch);
        c->sw = sw_sel(in);
        run(std::move(c));
        break;
      }
      case 3: {
        SwitchId untagged = sw_sel(in);
        std::vector<VlanMapping> vlans;
        for (uint8_t k = in.u8() % 3; k > 0; --k) vlans.push_back({uint16_t(in.u8() % 8), sw_sel(in)});
        try_add_port(untagged, port_cfg(in), vlans, 64);
        break;
      }
      case 4: {
        auto c = cmd(CmdOp::kSetPort);
        c->port = port_sel(in);
        c->port_cfg = port_cfg(in);
        run(std::move(c));
        break;
      }
      case 5: {
        PortId p = port_sel(in);
        if (delete_port(p).ok()) take_peer(p);  // its peer goes too
        break;
      }
      case 6: {
        SwitchId s = sw_sel(in);
        PortId p = port_sel(in);
        add_static(s, p, host(in.u8()));
        break;
      }
      case 7: {
        auto c = cmd(CmdOp::kDeleteStaticMac);
        c->sw = sw_sel(in);
        c->mac = host(in.u8());
        run(std::move(c));
        break;
      }
      case 8: {
        auto c = cmd(CmdOp::kFlushFdb);
        c->sw = sw_sel(in);
        c->port = in.u8() & 1 ? port_sel(in) : kNoId;
        run(std::move(c));
        break;
      }
      case 9: {
        SwitchId s = sw_sel(in);
        peer_op(CmdOp::kAddPeer, s, ip_sel(in));
        break;
      }
      case 10: {
        SwitchId s = sw_sel(in);
        peer_op(CmdOp::kDeletePeer, s, ip_sel(in));
        break;
      }
      case 11: {
        auto c = cmd(CmdOp::kAddRemoteMac);
        c->sw = sw_sel(in);
        c->mac = host(in.u8());
        c->ip = ip_sel(in);
        run(std::move(c));
        break;
      }
      case 12:
        if (run(cmd(CmdOp::kDeleteUplink)).ok()) {
          take_peer(uplink);
          uplink = kNoId;
        }
        break;
      case 13: {
        Result r = try_uplink(uplink_config(in.u8()), kUpMac, 1500, 256);
        if (r.ok()) uplink = r.id;
        break;
      }
      case 14: {
        auto c = cmd(in.u8() & 1 ? CmdOp::kDumpNeighbors : CmdOp::kDumpFdb);
        c->sw = sw_sel(in);
        run(std::move(c));
        break;
      }
      case 15: {  // vpcctl capture: of a port or a switch (or neither: refused), started or stopped
        const uint8_t f = in.u8();
        if (f & 1) {
          stop_capture();
          break;
        }
        CaptureFilter cf;
        if (f & 2) cf.port = port_sel(in);
        if (f & 4) cf.sw = sw_sel(in);
        cf.dirs = uint8_t(f >> 3) % 4;  // 0 is invalid
        const uint32_t slots = 2u << (in.u8() % 4);
        const uint32_t snaplen = in.u16() % CaptureRing::kMaxSnaplen + 1;
        auto c = cmd(CmdOp::kStartCapture);
        auto s = std::make_shared<CaptureSession>(cf, slots, snaplen);
        c->capture = s;
        if (run(std::move(c)).ok()) {
          stop_capture();
          capture = s;
        }
        break;
      }
      case 16: {  // vpcctl trace: of a port (or any), or stopped
        const uint8_t f = in.u8();
        if (f & 1) {
          run(cmd(CmdOp::kStopTrace));
          break;
        }
        const uint32_t count = in.u8() % 20 + 1;
        const PortId on = (f & 2) ? port_sel(in) : kNoId;
        auto c = cmd(CmdOp::kStartTrace);
        auto t = std::make_shared<TraceSession>(count, on);
        c->trace = t;
        if (run(std::move(c)).ok()) trace = t;
        break;
      }
      default: run(cmd(CmdOp::kBarrier)); break;
    }
  }

  // A capture and a trace, read (as vpcctl reads them) after every step; a
  // capture whose port or switch is deleted ends, and is still read.
  std::shared_ptr<CaptureSession> capture;
  std::shared_ptr<TraceSession> trace;
  void stop_capture() {
    if (!capture) return;
    auto c = cmd(CmdOp::kStopCapture);
    c->capture = capture;
    run(std::move(c));  // not found once it ended: refused, and dropped here all the same
    read_observed();
    capture.reset();
  }
  void read_observed() {
    if (capture) read_capture(*capture, engine().options().max_ports);
    if (trace) read_trace(*trace);
  }

  // A live local port (not the uplink), or kNoId.
  PortId local_port(uint8_t sel) {
    std::vector<PortId> live;
    for (auto& [p, peer] : peers_)
      if (p != uplink) live.push_back(p);
    return live.empty() ? kNoId : live[sel % live.size()];
  }
};

}  // namespace
}  // namespace vpc::fuzz

using namespace vpc;
using namespace vpc::fuzz;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Input in(data, size);
  CommandWorld w(in.u8());
  for (int ops = 0; !in.done() && ops < 256; ++ops) {
    uint8_t op = in.u8();
    bool queue_only = op & 0x40;
    switch (op & 3) {
      case 0:
        w.command(in);
        w.step();
        break;
      case 1: {
        PortId p = w.local_port(in.u8());
        uint32_t n = in.u8() % 8 + 1;
        std::vector<Bytes> frames;
        for (uint32_t i = 0; i < n && !in.done(); ++i) frames.push_back(host_frame(in, 600));
        if (p != kNoId) w.inject(p, std::move(frames));
        if (!queue_only) w.step();
        break;
      }
      case 2: {
        uint32_t n = in.u8() % 8 + 1;
        std::vector<Bytes> frames;
        for (uint32_t i = 0; i < n && !in.done(); ++i) frames.push_back(underlay_frame(in));
        if (w.uplink != kNoId) w.inject(w.uplink, std::move(frames));
        if (!queue_only) w.step();
        break;
      }
      case 3: w.step(in.u16()); break;
    }
    w.read_observed();
    w.take_out();
  }
  w.stop_capture();
  return 0;
}
