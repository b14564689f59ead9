// Fuzz target: guest offloads. What a guest's virtio-net header may claim
// (checksum-partial offsets, GSO type and segment size, ECN, header length)
// on frames of up to 64 KiB, through six pipe ports that take different
// offloads and MTUs, a VLAN trunk, and the VXLAN uplink (encapsulation of
// super-frames, segmentation to the inner MTU), with full tx rings and the
// clock. The header goes through vnet_read() first, as on an AF_PACKET or
// tap port, so only what a real port lets in reaches the engine.
//
// Input: variant(u8) then operations, each starting with one byte (op % 6):
//   variant: bits 0-1 the uplink's offloads (none, checksum, + TSO4/6, all),
//            bit 2 uplink MTU 1600 (else 1500), bit 3 DF off
//   0 burst: port(u8 % 6) count(u8 % 8 + 1), then per frame guest_frame()
//   1 clock: u16 milliseconds to advance
//   2 arp:   the peer VTEP answers ARP for its address again
//   3 hold:  the next burst's output is left in the rings for one more step
//   4 super: a tunnel super-frame from the peer VTEP (underlay_super())
//   5 observe: sel(u8 % 4): 0 start a capture (bit 4: of the switch, else
//            of a port: bit 3 the uplink, else local u8 % 6; dirs (sel >> 5)
//            % 3 + 1; slots 2 << (u8 % 6); snaplen u16 % 65535 + 1),
//            1 stop it, 2 start a trace (count u8 % 40 + 1; bit 2: of local
//            port u8 % 6), 3 read what both recorded
//
// guest_frame(): sel(u8: bit 0 IPv6, bit 1 UDP, bits 2-4 destination: host
// 0..5 behind port 0..5, 6 behind the peer VTEP, 7 broadcast), kind(u8 % 8),
// payload length (u16 % 65400), a 4-byte payload pattern, the segment size
// (u8 < 128: 1448/1428, else u16 % 9001), TCP option words (u8 % 11), then
// what the kind reads:
//   0 plain, checksum complete      4 every header field raw (6 fields)
//   1 checksum-partial              5 GSO of the other IP version
//   2 GSO (TSO4/6, USO), partial    6 GSO, then 1-4 header bytes overwritten
//   3 GSO with ECN                  7 GSO, then a lying IP length (u16)
//
// Checks after every burst and every super-frame, on top of fuzz_common.h's
// (those run after every step): no port gets offload state it did not
// announce, a frame longer than its tx_max_frame, a large buffer it cannot
// take, or a frame without GSO longer than its MTU; and when every frame of
// the burst was well formed (kinds 0-3), every TCP and
// UDP frame without pending offload state that reaches a port, or is
// encapsulated towards the peer, has correct IPv4 and transport checksums.
// What a capture or a trace recorded is read as vpcctl reads it: records
// within their bounds, captured bytes never stale, trace lines terminated.
#include <map>
#include <memory>

#include "fuzz_overlay.h"
#include "ports/vnet.h"
#include "proto/gso.h"

namespace vpc::fuzz {
namespace {

constexpr uint32_t kLocals = 6;
constexpr uint16_t kTrunkVlan = 30;
constexpr Mac kPeerMac = 0x02BB00000001ull;

Mac lmac(uint32_t i) { return i == 7 ? kMacBroadcast : i == 6 ? host(6) : 0x020000000100ull | i; }

struct PortInfo {
  PipeOptions po;
  uint32_t mtu = 1500;
  uint32_t tags = 0;
};

struct OffloadWorld : World {
  SwitchId sa = kNoId;
  PortId locals[kLocals] = {};
  PortId uplink = kNoId;
  std::map<PortId, PortInfo> info;

  explicit OffloadWorld(uint8_t variant) {
    EngineOptions o = options();
    o.pool.count = 2048;
    o.pool.large_count = 24;
    make_engine(o);
    SwitchConfig a;
    a.vni = kVniA;
    sa = try_create_switch(a).id;
    // 0: a virtio guest with every offload; 1: none; 2: checksum only and no
    // large buffers (netmap-like); 3: TSO4 without ECN or TSO6, 16 KiB frames,
    // MTU 9000; 4: a trunk with TSO6 only; 5: none, MTU 1280.
    PortInfo in[kLocals];
    in[1].po.tx_offloads = 0;
    in[2].po.tx_offloads = kOffCsum;
    in[2].po.tx_large_buffers = false;
    in[3].po.tx_offloads = kOffCsum | kOffTso4;
    in[3].po.tx_max_frame = 16384;
    in[3].mtu = 9000;
    in[4].po.tx_offloads = kOffCsum | kOffTso6;
    in[4].tags = 1;
    in[5].po.tx_offloads = 0;
    in[5].mtu = 1280;
    for (uint32_t i = 0; i < kLocals; ++i) {
      PortConfig pc;
      pc.mtu = in[i].mtu;
      Result r = i == 4 ? try_add_port(kNoId, pc, {{kTrunkVlan, sa}}, 256, in[i].po) : try_add_port(sa, pc, {}, 256, in[i].po);
      if (!r.ok()) fail("setup: port " + std::to_string(i) + ": " + r.message);
      locals[i] = r.id;
      info[r.id] = in[i];
    }
    static const uint32_t up_offloads[] = {0, kOffCsum, kOffCsum | kOffTso4 | kOffTso6, kOffAll};
    uplink_pipe.tx_offloads = up_offloads[variant & 3];
    const uint32_t up_mtu = (variant & 4) ? 1600 : 1500;
    UplinkConfig u = OverlayWorld::uplink_config(0);
    u.df = !(variant & 8);
    Result r = try_uplink(u, kUpMac, up_mtu);
    if (!r.ok()) fail("setup: uplink: " + r.message);
    uplink = r.id;
    info[uplink] = PortInfo{uplink_pipe, up_mtu, 0};
    auto c = cmd(CmdOp::kAddPeer);
    c->sw = sa;
    c->ip = addr4(1);
    if (!run(std::move(c)).ok()) fail("setup: peer");
    c = cmd(CmdOp::kAddRemoteMac);
    c->sw = sa;
    c->mac = lmac(6);
    c->ip = addr4(1);
    if (!run(std::move(c)).ok()) fail("setup: remote MAC");
    // Every local host is learned; a frame for the peer's host makes the
    // uplink ask for the peer's MAC, which the peer answers.
    for (uint32_t i = 0; i < kLocals; ++i) inject(locals[i], {tagged(i, eth(kMacBroadcast, lmac(i), 0x88B5, Bytes(46, 1)))});
    inject(locals[0], {eth(lmac(6), lmac(0), 0x88B5, Bytes(46, 2))});
    step();
    answer_arp();
  }

  // A frame from port i, tagged when i is the trunk.
  static Bytes tagged(uint32_t i, Bytes f) {
    if (i != 4) return f;
    Bytes t(f.begin(), f.begin() + 12);
    put16(t, kEtherTypeVlan);
    put16(t, kTrunkVlan);
    t.insert(t.end(), f.begin() + 12, f.end());
    return t;
  }

  void answer_arp() {
    Bytes a;
    put16(a, 1);
    put16(a, kEtherTypeIpv4);
    a.push_back(6);
    a.push_back(4);
    put16(a, 2);
    put_mac(a, kPeerMac);
    IpAddr sip = addr4(1), tip = addr4(0);
    a.insert(a.end(), sip.b + 12, sip.b + 16);
    put_mac(a, kUpMac);
    a.insert(a.end(), tip.b + 12, tip.b + 16);
    inject(uplink, {eth(kUpMac, kPeerMac, kEtherTypeArp, a)});
    step();
  }

  // `vpcctl capture` and `vpcctl trace` while the frames go by.
  std::shared_ptr<CaptureSession> capture;
  std::shared_ptr<TraceSession> trace;

  void observe(Input& in) {
    const uint8_t sel = in.u8();
    switch (sel % 4) {
      case 0: {  // a capture of a port or of the switch; any direction, ring and snaplen
        CaptureFilter f;
        if (sel & 16) f.sw = sa;
        else f.port = (sel & 8) ? uplink : locals[in.u8() % kLocals];
        f.dirs = uint8_t(sel >> 5) % 3 + 1;
        const uint32_t slots = 2u << (in.u8() % 6);
        const uint32_t snaplen = in.u16() % CaptureRing::kMaxSnaplen + 1;
        if (capture) stop_capture();
        auto c = cmd(CmdOp::kStartCapture);
        capture = std::make_shared<CaptureSession>(f, slots, snaplen);
        c->capture = capture;
        if (!run(std::move(c)).ok()) capture.reset();  // a filter the engine refuses
        break;
      }
      case 1: stop_capture(); break;
      case 2: {
        auto c = cmd(CmdOp::kStartTrace);
        const uint32_t count = in.u8() % 40 + 1;
        const PortId on = (sel & 4) ? locals[in.u8() % kLocals] : kNoId;
        trace = std::make_shared<TraceSession>(count, on);
        c->trace = trace;
        if (!run(std::move(c)).ok()) trace.reset();
        break;
      }
      default: read_observed(); break;
    }
  }
  void stop_capture() {
    if (!capture) return;
    read_observed();
    auto c = cmd(CmdOp::kStopCapture);
    c->capture = capture;
    run(std::move(c));
    capture.reset();
  }
  void read_observed() {
    if (capture) read_capture(*capture, engine().options().max_ports);
    if (trace) read_trace(*trace);
  }

  // Sends a frame as a port that read it with a virtio-net header would hand
  // it over: the header through vnet_read(), a frame longer than a regular
  // buffer in a large one. False: the header was refused (rx_bad_vnet on a
  // real port) or no buffer was free.
  bool send_guest(PortId p, const Bytes& f, const OffloadMeta& claimed) {
    uint8_t h[kVnetHdrLen];
    offload_to_vnet(claimed, h);
    OffloadMeta m;
    const VnetVerdict v = vnet_read(h, uint32_t(f.size()), &m);
    if (v == VnetVerdict::kInvalid || f.size() > kMaxLargeFrame || f.size() < 14) return false;
    PipePeer& pp = peer(p);
    BufferPool& pool = pp.pool();
    const bool large = f.size() > pool.max_frame();
    uint32_t idx;
    if (!(large ? pp.cache().alloc_large(&idx) : pp.cache().alloc(&idx))) return false;
    Pkt pk{idx, pool.headroom(), uint16_t(f.size())};
    std::memcpy(pool.frame(pk), f.data(), f.size());
    if (v == VnetVerdict::kOffload || large) {
      pool.meta(idx) = v == VnetVerdict::kOffload ? m : OffloadMeta{};
      pkt_set_meta(pk, true);
    }
    if (pp.send(&pk, 1) == 1) return true;
    pp.cache().free(idx);
    return false;
  }
};

struct Guest {
  Bytes f;
  OffloadMeta m;
  bool sane;
};

// What the harness takes for stale buffer bytes (fuzz_common.h) must not be
// in an input frame. A well-formed frame keeps its few (in a header field:
// its checksums stay right) unless they make a run; any other is scrubbed.
void scrub_unless_sane(Guest& g) {
  size_t run = 0;
  for (uint8_t b : g.f)
    if ((run = b == kFreedByte ? run + 1 : 0) == kLeakRun) g.sane = false;
  if (!g.sane) scrub(g.f);
}

Guest guest_frame(Input& in, uint32_t from) {
  const uint8_t sel = in.u8(), kind = in.u8() % 8;
  const bool v6 = sel & 1, udp = sel & 2;
  const uint32_t dst = (sel >> 2) & 7;
  const uint32_t plen = in.u16() % 65400;
  const uint32_t pattern = in.u32();
  const uint8_t m8 = in.u8();
  const uint16_t mss = m8 < 128 ? (v6 ? 1428 : 1448) : uint16_t(in.u16() % 9001);
  const uint32_t opt_words = udp ? 0 : in.u8() % 11;
  const IpAddr src = v6 ? addr6(1) : addr4(1), dsta = v6 ? addr6(2) : addr4(2);
  const uint8_t proto = udp ? kIpProtoUdp : kIpProtoTcp;

  Bytes l4;
  put16(l4, 40000);
  put16(l4, 5201);
  if (udp) {
    put16(l4, uint16_t(8 + plen));
    put16(l4, 0);
  } else {
    put32(l4, 0x01000000);
    put32(l4, 0x02000000);
    l4.push_back(uint8_t((5 + opt_words) << 4));
    l4.push_back(kind == 3 ? 0x98 : 0x18);  // PSH|ACK (|CWR with ECN)
    put16(l4, 65535);
    put16(l4, 0);
    put16(l4, 0);
    l4.insert(l4.end(), 4 * opt_words, 0x01);  // NOPs
  }
  const uint32_t l4_hdr = uint32_t(l4.size());
  for (uint32_t i = 0; i < plen; ++i) {
    const uint8_t b = uint8_t(pattern >> (8 * (i & 3))) ^ uint8_t(i >> 7);
    l4.push_back(b == kFreedByte ? kFreedByte - 1 : b);  // scrubbed before the checksums, not after
  }
  const uint32_t csum_at = udp ? 6 : 16;
  if (kind == 0) {
    l4_checksum(l4, csum_at, src, dsta, proto);
  } else {  // checksum-partial: the field holds the pseudo-header sum, as Linux leaves it
    const uint32_t ph = v6 ? csum_pseudo6(src.b, dsta.b, uint32_t(l4.size()), proto)
                           : csum_pseudo4(src.b + 12, dsta.b + 12, uint16_t(l4.size()), proto);
    store_be16(l4.data() + csum_at, uint16_t(~csum_fold(ph)));
  }
  Bytes ip = v6 ? ipv6(src, dsta, proto, 64, l4) : ipv4(src, dsta, proto, l4);
  Guest g{OffloadWorld::tagged(from, eth(lmac(dst), lmac(from), v6 ? kEtherTypeIpv6 : kEtherTypeIpv4, ip)), {}, kind <= 3};
  const uint16_t l3 = from == 4 ? 18 : 14, l4_off = uint16_t(l3 + (v6 ? 40 : 20));
  OffloadMeta& m = g.m;
  if (kind >= 1) {
    m.flags = OffloadMeta::kNeedsCsum;
    m.csum_start = l4_off;
    m.csum_offset = uint16_t(csum_at);
  }
  if (kind >= 2) {
    m.gso_type = udp ? OffloadMeta::kGsoUdpL4 : v6 ? OffloadMeta::kGsoTcpv6 : OffloadMeta::kGsoTcpv4;
    m.gso_size = mss;
    m.hdr_len = uint16_t(l4_off + l4_hdr);
  }
  switch (kind) {
    case 3:
      if (!udp) m.gso_type |= OffloadMeta::kGsoEcn;
      break;
    case 4:
      m.flags = in.u8();
      m.gso_type = in.u8();
      m.hdr_len = in.u16();
      m.gso_size = in.u16();
      m.csum_start = in.u16();
      m.csum_offset = in.u16();
      break;
    case 5: m.gso_type = v6 ? OffloadMeta::kGsoTcpv4 : OffloadMeta::kGsoTcpv6; break;
    case 6:
      for (uint32_t n = in.u8() % 4 + 1; n > 0; --n) {
        const uint32_t at = in.u8() % std::min<uint32_t>(uint32_t(g.f.size()), 128);
        g.f[at] = in.u8();
      }
      break;
    case 7: store_be16(g.f.data() + l3 + (v6 ? 4 : 2), in.u16()); break;
  }
  scrub_unless_sane(g);
  return g;
}

// A tunnel super-frame from the peer VTEP, as a veth underlay hands it over
// whole (overlay/uso.cc): form(u8: bit 0 a batch of VXLAN datagrams as UDP
// GSO, else one VXLAN packet around a TCP super-frame with TCP GSO state;
// bit 1 inner IPv6; bit 2 the batch checksum-partial; bit 3 an unknown VNI;
// bit 4 one byte overwritten), segments (u8 % 12 + 1), segment size
// (u16 % 1500 + 1), last segment size (u16 % size + 1), destination host
// (u8 % 8, as guest_frame()).
Guest underlay_super(Input& in) {
  const uint8_t form = in.u8();
  const bool uso = form & 1, v6 = form & 2;
  const uint32_t n = in.u8() % 12 + 1, seg = in.u16() % 1500 + 1, last = in.u16() % seg + 1;
  const uint32_t dst = in.u8() % 8;
  const uint32_t vni = (form & 8) ? 7000 : kVniA;
  const IpAddr src = v6 ? addr6(3) : addr4(3), dsta = v6 ? addr6(2) : addr4(2);
  const Mac from = 0x020000000300ull;  // a guest behind the peer
  auto vxlan = [&](Bytes& b) {
    b.push_back(0x08);
    b.insert(b.end(), 3, 0);
    put32(b, vni << 8);
  };
  // One inner TCP frame: `len` payload bytes from sequence number `seq`,
  // with a full checksum or (partial) the pseudo-header sum.
  auto inner = [&](uint32_t seq, uint32_t len, bool psh, bool partial) {
    Bytes l4;
    put16(l4, 5201);
    put16(l4, 40000);
    put32(l4, seq);
    put32(l4, 0x02000000);
    l4.push_back(0x50);
    l4.push_back(psh ? 0x18 : 0x10);
    put16(l4, 65535);
    put32(l4, 0);
    for (uint32_t i = 0; i < len; ++i) l4.push_back(uint8_t(0x41 + (seq + i) % 26));
    if (partial) {
      const uint32_t ph = v6 ? csum_pseudo6(src.b, dsta.b, uint32_t(l4.size()), kIpProtoTcp)
                             : csum_pseudo4(src.b + 12, dsta.b + 12, uint16_t(l4.size()), kIpProtoTcp);
      store_be16(l4.data() + 16, uint16_t(~csum_fold(ph)));
    } else {
      l4_checksum(l4, 16, src, dsta, kIpProtoTcp);
    }
    return eth(lmac(dst), from, v6 ? kEtherTypeIpv6 : kEtherTypeIpv4,
               v6 ? ipv6(src, dsta, kIpProtoTcp, 64, l4) : ipv4(src, dsta, kIpProtoTcp, l4));
  };
  Bytes udp_payload;
  Guest g{{}, {}, !(form & 16)};
  const uint32_t inner_hdr = 14 + (v6 ? 40 : 20) + 20;
  if (uso) {
    uint32_t chunk = 0;
    for (uint32_t i = 0; i < n; ++i) {
      Bytes c;
      vxlan(c);
      const Bytes f = inner(1000 + i * seg, i + 1 == n ? last : seg, i + 1 == n, false);
      c.insert(c.end(), f.begin(), f.end());
      if (i == 0) chunk = uint32_t(c.size());
      udp_payload.insert(udp_payload.end(), c.begin(), c.end());
    }
    g.m.gso_type = OffloadMeta::kGsoUdpL4;
    g.m.gso_size = uint16_t(chunk);
    g.m.hdr_len = 42;
    if (form & 4) {
      g.m.flags = OffloadMeta::kNeedsCsum;
      g.m.csum_start = 34;
      g.m.csum_offset = 6;
    }
  } else {
    vxlan(udp_payload);
    const Bytes f = inner(1000, (n - 1) * seg + last, true, true);
    udp_payload.insert(udp_payload.end(), f.begin(), f.end());
    g.m.flags = OffloadMeta::kNeedsCsum;
    g.m.gso_type = v6 ? OffloadMeta::kGsoTcpv6 : OffloadMeta::kGsoTcpv4;
    g.m.gso_size = uint16_t(seg);
    g.m.csum_start = uint16_t(50 + inner_hdr - 20);
    g.m.csum_offset = 16;
    g.m.hdr_len = uint16_t(50 + inner_hdr);
  }
  if (udp_payload.size() + 28 > 0xFFFF) udp_payload.resize(0xFFFF - 28);  // the outer IPv4 length holds no more
  Bytes udp;
  put16(udp, 49152);
  put16(udp, 4789);
  put16(udp, uint16_t(8 + udp_payload.size()));
  put16(udp, 0);
  udp.insert(udp.end(), udp_payload.begin(), udp_payload.end());
  g.f = eth(kUpMac, kPeerMac, kEtherTypeIpv4, ipv4(addr4(1), addr4(0), kIpProtoUdp, udp));
  if (form & 16) {
    const uint32_t at = in.u8() % std::min<uint32_t>(uint32_t(g.f.size()), 128);
    g.f[at] = in.u8();
  }
  scrub_unless_sane(g);
  return g;
}

// Checks an IPv4/IPv6 TCP or UDP frame's checksums; "" when right or when it
// is not such a frame (ICMP, ARP, a frame whose headers do not parse).
std::string checksum_error(const uint8_t* f, uint32_t len) {
  FrameLayout L;
  if (!frame_layout(f, len, &L)) return "";
  const uint8_t* ip = f + L.l3_off;
  if (L.ip_version == 4 && !ipv4_checksum_ok(ip, uint16_t(L.l4_off - L.l3_off))) return "bad IPv4 header checksum";
  const uint32_t l4_len = L.ip_end - L.l4_off;
  const uint8_t* l4 = f + L.l4_off;
  if (L.l4_proto == kIpProtoUdp && L.ip_version == 4 && load_be16(l4 + 6) == 0) return "";
  const uint32_t ph = L.ip_version == 4 ? csum_pseudo4(ip + 12, ip + 16, uint16_t(l4_len), L.l4_proto)
                                        : csum_pseudo6(ip + 8, ip + 24, l4_len, L.l4_proto);
  if (csum_fold(csum_partial(l4, l4_len, ph)) != 0) return L.l4_proto == kIpProtoTcp ? "bad TCP checksum" : "bad UDP checksum";
  return "";
}

void check_out(OffloadWorld& w, bool sane) {
  for (const World::OutFrame& o : w.out()) {
    const PortInfo& pi = w.info.at(o.port);
    const std::string at = "port " + std::to_string(o.port) + ", frame of " + std::to_string(o.bytes.size()) + " bytes: ";
    const bool pending = o.has_meta && o.meta.pending();
    if (pending && (offload_needs(o.meta) & ~pi.po.tx_offloads))
      fail(at + "offload state the port does not take (gso_type " + std::to_string(o.meta.gso_type) + ", flags " +
           std::to_string(o.meta.flags) + ")");
    if (o.bytes.size() > pi.po.tx_max_frame) fail(at + "longer than the port's tx_max_frame");
    if (o.large && !pi.po.tx_large_buffers) fail(at + "a large buffer for a port without large buffers");
    if (!(o.has_meta && o.meta.gso()) && o.bytes.size() > pi.mtu + 14 + 4 * pi.tags) fail(at + "longer than the MTU without GSO");
    if (!sane || pending) continue;
    std::string bad = checksum_error(o.bytes.data(), uint32_t(o.bytes.size()));
    // Encapsulated towards the peer: the inner frame (IPv4, no options, VXLAN).
    if (bad.empty() && o.port == w.uplink && o.bytes.size() > 50 && load_be16(o.bytes.data() + 12) == kEtherTypeIpv4 &&
        o.bytes[23] == kIpProtoUdp && load_be16(o.bytes.data() + 36) == 4789)
      bad = checksum_error(o.bytes.data() + 50, uint32_t(o.bytes.size() - 50));
    if (!bad.empty()) fail(at + bad);
  }
}

}  // namespace
}  // namespace vpc::fuzz

using namespace vpc;
using namespace vpc::fuzz;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Input in(data, size);
  OffloadWorld w(in.u8());
  w.take_out();
  bool hold = false;
  for (int ops = 0; !in.done() && ops < 64; ++ops) {
    switch (in.u8() % 6) {
      case 0: {
        const uint32_t from = in.u8() % kLocals, n = in.u8() % 8 + 1;
        bool sane = true;
        for (uint32_t i = 0; i < n && !in.done(); ++i) {
          Guest g = guest_frame(in, from);
          sane = sane && g.sane;
          w.send_guest(w.locals[from], g.f, g.m);
        }
        if (hold) {
          w.engine().run_once_at(w.now_ns());  // the output stays in the rings: the engine meets full rings
          hold = false;
        }
        w.step();
        check_out(w, sane);
        break;
      }
      case 1: w.step(in.u16()); break;
      case 2: w.answer_arp(); break;
      case 3: hold = true; break;
      case 4: {
        Guest g = underlay_super(in);
        w.send_guest(w.uplink, g.f, g.m);
        w.step();
        check_out(w, g.sane);
        break;
      }
      case 5: w.observe(in); break;
    }
    w.take_out();
  }
  w.read_observed();
  return 0;
}
