// Capture and trace commands, and what a switch capture takes: the parts of
// capture and trace that need more than one owner (core/observe.h holds the
// rest).
#include "core/engine.h"
#include "proto/ethernet.h"
#include "proto/inet.h"

namespace vpc {

Result Engine::do_observe(Command& c) {
  Observer& o = core_.observer();
  auto port_ok = [&](PortId p) { return p < core_.max_ports() && core_.port(p).in_use; };
  switch (c.op) {
    case CmdOp::kStartCapture: {
      if (!c.capture) return Result::error(Status::kInvalidArgument, "capture: missing");
      const CaptureFilter& f = c.capture->filter;
      if ((f.port == kNoId) == (f.sw == kNoId))
        return Result::error(Status::kInvalidArgument, "capture: give a port or a switch (one of them)");
      if (f.port != kNoId && !port_ok(f.port)) return Result::error(Status::kNotFound, "port: no such port");
      if (f.sw != kNoId && !bridge_.switch_exists(f.sw)) return Result::error(Status::kNotFound, "switch: no such switch");
      if (f.dirs < kCaptureIn || f.dirs > kCaptureBoth)
        return Result::error(Status::kInvalidArgument, "direction: must be in, out or both");
      return o.start_capture(c.capture);
    }
    case CmdOp::kStopCapture:
      return o.stop_capture(c.capture);
    case CmdOp::kStartTrace:
      if (!c.trace) return Result::error(Status::kInvalidArgument, "trace: missing");
      if (c.trace->port() != kNoId && !port_ok(c.trace->port())) return Result::error(Status::kNotFound, "port: no such port");
      o.start_trace(c.trace);  // replaces a running trace
      return Result{};
    case CmdOp::kStopTrace:
      o.stop_trace();
      return Result{};
    default:
      return Result::error(Status::kInternal, "not a capture or trace command");
  }
}

// The rows of VPC_COMMAND_OPS (core/command.h) for capture and trace.
Result Engine::do_start_capture(Command& c) { return do_observe(c); }
Result Engine::do_stop_capture(Command& c) { return do_observe(c); }
Result Engine::do_start_trace(Command& c) { return do_observe(c); }
Result Engine::do_stop_trace(Command& c) { return do_observe(c); }

// The VNI of a VXLAN packet on the uplink (outer IPv4 or IPv6, untagged).
static bool outer_vni(const uint8_t* f, uint32_t len, uint16_t udp_port, uint32_t* vni) {
  if (len < kEthHeaderLen) return false;
  const uint16_t et = load_be16(f + 12);
  const uint8_t* ip = f + kEthHeaderLen;
  uint32_t avail = len - kEthHeaderLen;
  const uint8_t* udp;
  if (et == kEtherTypeIpv4) {
    if (avail < kIpv4HeaderLen || (ip[0] >> 4) != 4 || ip[9] != kIpProtoUdp) return false;
    const uint32_t ihl = (ip[0] & 0x0Fu) * 4;
    if (ihl < kIpv4HeaderLen || avail < ihl) return false;
    udp = ip + ihl;
    avail -= ihl;
  } else if (et == kEtherTypeIpv6) {
    if (avail < kIpv6HeaderLen || ip[6] != kIpProtoUdp) return false;
    udp = ip + kIpv6HeaderLen;
    avail -= kIpv6HeaderLen;
  } else {
    return false;
  }
  if (avail < kUdpHeaderLen + kVxlanHeaderLen || load_be16(udp + 2) != udp_port) return false;
  *vni = load_be32(udp + kUdpHeaderLen + 4) >> 8;
  return true;
}

// A switch capture takes, on a local port, the frames of the port's member
// of that switch (by their 802.1Q tag on a trunk), and on the uplink the
// VXLAN packets of the switch's VNI.
bool Engine::capture_carries(SwitchId s, PortId port, const uint8_t* frame, uint32_t len) {
  if (core_.port(port).is_uplink) {
    uint32_t vni;
    return outer_vni(frame, len, overlay_.udp_port(), &vni) && vni == bridge_.vni_of(s);
  }
  return bridge_.carries(s, port, frame, len);
}

}  // namespace vpc
