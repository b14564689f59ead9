// The VXLAN overlay through pipe ports: the uplink pipe's outside end plays
// the underlay (it reads the ARP/ND requests and VXLAN packets the engine
// sends, and injects replies and VXLAN packets). The engine stays stopped and
// is stepped with run_once(), so every exchange is deterministic; only the
// neighbour retry test waits on real time.
//
// Every header the engine writes is checked with this file's own builders and
// checksum (RFC 1071 words folded one at a time, RFC 8200 pseudo-header laid
// out byte by byte), not with the engine's helpers.
//
// Addresses: 198.18.0.0/15 and 2001:db8::/32 only.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <functional>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/engine.h"
#include "core/test_util.h"
#include "core/trace.h"
#include "proto/gso.h"
#include "proto/inet.h"
#include "proto/test_frames.h"
#include "core/offload_test_util.h"

namespace vpc {
namespace {

using testutil::Bytes;
using testutil::host_mac;
using testutil::make_frame;

// ------------------------------------------------------------ addresses

constexpr uint32_t kVtep4 = 0xC6120001;   // 198.18.0.1 (us)
constexpr uint32_t kPeerA4 = 0xC6120002;  // 198.18.0.2
constexpr uint32_t kPeerB4 = 0xC6120003;  // 198.18.0.3
constexpr uint32_t kStranger4 = 0xC6120009;  // 198.18.0.9, not configured
constexpr uint32_t kGw4 = 0xC61200FE;     // 198.18.0.254
constexpr uint32_t kFar4 = 0xC6130505;    // 198.19.5.5, off-link
constexpr Mac kUpMac = 0x02AA00000001ull;
constexpr Mac kMacA = 0x02BB00000002ull;
constexpr Mac kMacB = 0x02BB00000003ull;
constexpr Mac kMacGw = 0x02BB000000FEull;
constexpr uint32_t kVni = 5000;

IpAddr v4(uint32_t a) { return IpAddr::from_v4(a); }
IpAddr v6(const char* s) {
  IpAddr a;
  EXPECT_TRUE(ip_parse(s, &a)) << s;
  return a;
}
const IpAddr kVtep6 = v6("2001:db8::1");
const IpAddr kPeerA6 = v6("2001:db8::2");
const IpAddr kPeerB6 = v6("2001:db8::3");

// ------------------------------------------------------------ reference checksums

uint32_t ref_sum(const uint8_t* p, size_t n, uint32_t s = 0) {
  for (size_t i = 0; i < n; i += 2) {
    s += uint32_t(p[i]) << 8 | (i + 1 < n ? p[i + 1] : 0);
    s = (s & 0xFFFF) + (s >> 16);
  }
  return s;
}
uint16_t ref_csum(const uint8_t* p, size_t n, uint32_t s = 0) { return uint16_t(~ref_sum(p, n, s) & 0xFFFF); }

// RFC 8200 8.1: src(16) dst(16) upper-layer length(4) zero(3) next header(1).
uint16_t ref_csum6(const uint8_t* src, const uint8_t* dst, const uint8_t* l4, size_t len, uint8_t nh) {
  Bytes ph(40, 0);
  std::memcpy(ph.data(), src, 16);
  std::memcpy(ph.data() + 16, dst, 16);
  ph[32] = uint8_t(len >> 24), ph[33] = uint8_t(len >> 16), ph[34] = uint8_t(len >> 8), ph[35] = uint8_t(len);
  ph[39] = nh;
  return ref_csum(l4, len, ref_sum(ph.data(), 40));
}
uint16_t ref_csum4(const uint8_t* src, const uint8_t* dst, const uint8_t* l4, size_t len, uint8_t proto) {
  uint8_t ph[12] = {src[0], src[1], src[2], src[3], dst[0], dst[1], dst[2], dst[3], 0, proto,
                    uint8_t(len >> 8), uint8_t(len)};
  return ref_csum(l4, len, ref_sum(ph, 12));
}

// ------------------------------------------------------------ frame builders

void put16(Bytes& b, uint16_t v) {
  b.push_back(uint8_t(v >> 8));
  b.push_back(uint8_t(v));
}
void put32(Bytes& b, uint32_t v) {
  put16(b, uint16_t(v >> 16));
  put16(b, uint16_t(v));
}
void put_mac(Bytes& b, Mac m) {
  for (int i = 5; i >= 0; --i) b.push_back(uint8_t(m >> (8 * i)));
}
void put_ip(Bytes& b, const IpAddr& a) { b.insert(b.end(), a.b, a.b + 16); }
uint16_t get16(const Bytes& b, size_t o) { return uint16_t(b[o] << 8 | b[o + 1]); }
uint32_t get32(const Bytes& b, size_t o) { return uint32_t(get16(b, o)) << 16 | get16(b, o + 2); }
Mac get_mac(const Bytes& b, size_t o) { return mac_load(b.data() + o); }
IpAddr get_ip6(const Bytes& b, size_t o) { return IpAddr::from_v6(b.data() + o); }

Bytes eth(Mac dst, Mac src, uint16_t type, const Bytes& payload) {
  Bytes f;
  put_mac(f, dst);
  put_mac(f, src);
  put16(f, type);
  f.insert(f.end(), payload.begin(), payload.end());
  return f;
}

Bytes arp(uint16_t op, Mac sha, uint32_t spa, Mac tha, uint32_t tpa) {
  Bytes a;
  put16(a, 1);
  put16(a, kEtherTypeIpv4);
  a.push_back(6);
  a.push_back(4);
  put16(a, op);
  put_mac(a, sha);
  put32(a, spa);
  put_mac(a, tha);
  put32(a, tpa);
  return a;
}

struct Ip4Opts {
  uint8_t ver_ihl = 0x45;
  uint16_t frag = 0x4000;  // DF
  uint8_t ttl = 64;
  int tot_delta = 0;       // added to the real total length
  bool bad_csum = false;
};
Bytes ipv4(uint32_t src, uint32_t dst, uint8_t proto, const Bytes& payload, const Ip4Opts& o = {}) {
  Bytes h;
  h.push_back(o.ver_ihl);
  h.push_back(0);
  put16(h, uint16_t(20 + payload.size() + o.tot_delta));
  put16(h, 0x1234);
  put16(h, o.frag);
  h.push_back(o.ttl);
  h.push_back(proto);
  put16(h, 0);
  put32(h, src);
  put32(h, dst);
  uint16_t c = ref_csum(h.data(), 20);
  if (o.bad_csum) c ^= 0x0101;
  h[10] = uint8_t(c >> 8);
  h[11] = uint8_t(c);
  h.insert(h.end(), payload.begin(), payload.end());
  return h;
}

Bytes ipv6(const IpAddr& src, const IpAddr& dst, uint8_t nh, uint8_t hop, const Bytes& payload) {
  Bytes h;
  put32(h, 0x60000000u);
  put16(h, uint16_t(payload.size()));
  h.push_back(nh);
  h.push_back(hop);
  put_ip(h, src);
  put_ip(h, dst);
  h.insert(h.end(), payload.begin(), payload.end());
  return h;
}

// A trace record as "stage: text" lines.
std::string trace_text(const TraceRecord& r) {
  std::string s;
  for (uint8_t i = 0; i < r.nlines; ++i) s += std::string(trace_stage_name(r.lines[i].stage)) + ": " + r.lines[i].text + "\n";
  return s;
}

Bytes vxlan_hdr(uint32_t vni, uint8_t flags = 0x08, uint8_t reserved = 0) {
  Bytes v = {flags, reserved, reserved, reserved};
  put32(v, vni << 8 | reserved);
  return v;
}

// UDP datagram (checksum left zero; see the csum modes below).
Bytes udp(uint16_t sport, uint16_t dport, const Bytes& payload, int len_override = -1) {
  Bytes u;
  put16(u, sport);
  put16(u, dport);
  put16(u, uint16_t(len_override >= 0 ? len_override : int(8 + payload.size())));
  put16(u, 0);
  u.insert(u.end(), payload.begin(), payload.end());
  return u;
}

enum class Csum { kZero, kGood, kBad };

struct Vx4 {
  Mac outer_dst = kUpMac;
  Mac outer_src = kMacA;
  uint32_t src = kPeerA4, dst = kVtep4;
  uint8_t proto = kIpProtoUdp;
  Ip4Opts ip;
  uint16_t sport = 50000, dport = 4789;
  int udp_len = -1;
  Csum csum = Csum::kZero;
  uint8_t flags = 0x08, reserved = 0;
  uint32_t vni = kVni;
};
Bytes vx4(const Bytes& inner, const Vx4& o = {}) {
  Bytes u = udp(o.sport, o.dport, [&] {
    Bytes p = vxlan_hdr(o.vni, o.flags, o.reserved);
    p.insert(p.end(), inner.begin(), inner.end());
    return p;
  }(), o.udp_len);
  if (o.csum != Csum::kZero) {
    uint8_t s[4], d[4];
    store_be32(s, o.src);
    store_be32(d, o.dst);
    uint16_t c = ref_csum4(s, d, u.data(), u.size(), kIpProtoUdp);
    if (c == 0) c = 0xFFFF;
    if (o.csum == Csum::kBad) c = uint16_t(c ^ 0x5a5a);
    u[6] = uint8_t(c >> 8);
    u[7] = uint8_t(c);
  }
  return eth(o.outer_dst, o.outer_src, kEtherTypeIpv4, ipv4(o.src, o.dst, o.proto, u, o.ip));
}

struct Vx6 {
  Mac outer_dst = kUpMac;
  Mac outer_src = kMacA;
  IpAddr src = kPeerA6, dst = kVtep6;
  uint8_t hop = 64;
  bool frag_header = false;
  uint16_t sport = 50000, dport = 4789;
  Csum csum = Csum::kGood;
  uint32_t vni = kVni;
};
Bytes vx6(const Bytes& inner, const Vx6& o = {}) {
  Bytes p = vxlan_hdr(o.vni);
  p.insert(p.end(), inner.begin(), inner.end());
  Bytes u = udp(o.sport, o.dport, p);
  if (o.csum != Csum::kZero) {
    uint16_t c = ref_csum6(o.src.b, o.dst.b, u.data(), u.size(), kIpProtoUdp);
    if (c == 0) c = 0xFFFF;
    if (o.csum == Csum::kBad) c = uint16_t(c ^ 0x5a5a);
    u[6] = uint8_t(c >> 8);
    u[7] = uint8_t(c);
  }
  if (o.frag_header) {
    // Fragment header: next header UDP, offset 0, M=1, identification.
    Bytes fh = {kIpProtoUdp, 0, 0x00, 0x01};
    put32(fh, 0xABCD);
    fh.insert(fh.end(), u.begin(), u.end());
    return eth(o.outer_dst, o.outer_src, kEtherTypeIpv6, ipv6(o.src, o.dst, 44, o.hop, fh));
  }
  return eth(o.outer_dst, o.outer_src, kEtherTypeIpv6, ipv6(o.src, o.dst, kIpProtoUdp, o.hop, u));
}

// ICMPv6 message with its checksum.
Bytes icmp6(const IpAddr& src, const IpAddr& dst, Bytes body) {
  body[2] = body[3] = 0;
  uint16_t c = ref_csum6(src.b, dst.b, body.data(), body.size(), kIpProtoIcmpv6);
  body[2] = uint8_t(c >> 8);
  body[3] = uint8_t(c);
  return body;
}
Bytes ns_body(const IpAddr& target, Mac sll) {
  Bytes b = {135, 0, 0, 0, 0, 0, 0, 0};
  put_ip(b, target);
  if (sll) {
    b.push_back(1);
    b.push_back(1);
    put_mac(b, sll);
  }
  return b;
}
Bytes na_body(const IpAddr& target, Mac tll, uint32_t flags = 0x60000000u) {
  Bytes b = {136, 0, 0, 0};
  put32(b, flags);
  put_ip(b, target);
  if (tll) {
    b.push_back(2);
    b.push_back(1);
    put_mac(b, tll);
  }
  return b;
}

// An inner IPv4/UDP frame of `len` bytes: a real flow for the encap hash.
Bytes inner_udp_frame(Mac dst, Mac src, uint32_t sip, uint32_t dip, uint16_t sport, uint16_t dport,
                      uint16_t len = 64) {
  Bytes f = make_frame(dst, src, len);
  Bytes ip = ipv4(sip, dip, kIpProtoUdp, udp(sport, dport, Bytes(len - 14 - 28, 0xEE)));
  std::copy(ip.begin(), ip.end(), f.begin() + 14);
  return f;
}

// A parsed IPv4 VXLAN packet as the engine sent it.
struct Sent4 {
  Mac dst, src;
  uint32_t sip, dip;
  uint16_t sport, dport, udp_len, udp_csum;
  uint32_t vni;
  Bytes inner;
};

// ------------------------------------------------------------ fixture

class VxlanFixture : public testutil::EngineFixture {
 protected:
  static UplinkConfig cfg4() {
    UplinkConfig u;
    u.ip4 = v4(kVtep4);
    u.prefix4 = 24;
    return u;
  }
  static UplinkConfig cfg46() {
    UplinkConfig u = cfg4();
    u.ip6 = kVtep6;
    u.prefix6 = 64;
    return u;
  }
  Result try_uplink(const UplinkConfig& u, uint32_t mtu = 1500, Mac mac = kUpMac) {
    return EngineHarness::try_uplink(u, mac, mtu, 1024, uplink_wrap_);
  }
  // The uplink's port behind a wrapper (an interface MTU, say); setup4's MTU.
  std::unique_ptr<Port> (*uplink_wrap_)(std::unique_ptr<Port>) = nullptr;
  uint32_t uplink_mtu_ = 1500;
  PortId make_uplink(const UplinkConfig& u, uint32_t mtu = 1500) {
    Result r = try_uplink(u, mtu);
    EXPECT_TRUE(r.ok()) << r.message;
    up_ = r.id;
    return r.id;
  }
  Result add_peer(SwitchId s, const IpAddr& ip) {
    auto c = cmd(CmdOp::kAddPeer);
    c->sw = s;
    c->ip = ip;
    return run(std::move(c));
  }
  Result del_peer(SwitchId s, const IpAddr& ip) {
    auto c = cmd(CmdOp::kDeletePeer);
    c->sw = s;
    c->ip = ip;
    return run(std::move(c));
  }
  Result add_remote_mac(SwitchId s, Mac m, const IpAddr& ip) {
    auto c = cmd(CmdOp::kAddRemoteMac);
    c->sw = s;
    c->mac = m;
    c->ip = ip;
    return run(std::move(c));
  }
  Result delete_switch(SwitchId s) {
    auto c = cmd(CmdOp::kDeleteSwitch);
    c->sw = s;
    return run(std::move(c));
  }
  std::vector<NeighborDumpEntry> neighbors() {
    Result r = run(cmd(CmdOp::kDumpNeighbors));
    EXPECT_TRUE(r.ok());
    return r.neighbors;
  }
  const NeighborDumpEntry* neighbor(const std::vector<NeighborDumpEntry>& v, const IpAddr& ip) {
    for (const auto& n : v)
      if (n.ip == ip) return &n;
    return nullptr;
  }
  std::string nstate(const IpAddr& ip) {
    auto v = neighbors();
    const NeighborDumpEntry* n = neighbor(v, ip);
    return n ? n->state : "absent";
  }

  // A copy of the dump entry for mac (the dump itself is a temporary).
  std::optional<FdbDumpEntry> entry(SwitchId s, Mac m) {
    auto d = fdb(s);
    const FdbDumpEntry* e = find_entry(d, m);
    if (!e) return std::nullopt;
    return *e;
  }

  void step(int n = 1) {
    for (int i = 0; i < n; ++i) engine().run_once();
  }
  // Injects frames on the underlay and runs one iteration.
  void wire(const std::vector<Bytes>& frames) {
    send(up_, frames);
    step();
  }
  void wire(const Bytes& f) { wire(std::vector<Bytes>{f}); }
  std::vector<Bytes> wire_out() { return recv(up_); }
  void local(PortId p, const Bytes& f) {
    send(p, {f});
    step();
  }

  uint64_t ucnt(UplinkCounter k) { return cnt_read(engine().uplink_counters().c[size_t(k)]); }
  uint64_t udrop(Drop d) { return pdrop(up_, d); }
  uint64_t peer_cnt(const IpAddr& ip, PeerCounter k) {
    for (const PeerSnapshot& s : engine().peer_snapshot())
      if (s.ip == ip) return s.c[size_t(k)];
    ADD_FAILURE() << "no counters for peer " << ip_format(ip);
    return 0;
  }

  void resolve4(uint32_t ip, Mac mac) {
    wire(eth(kUpMac, mac, kEtherTypeArp, arp(2, mac, ip, kUpMac, kVtep4)));
  }
  void resolve6(const IpAddr& ip, Mac mac) {
    wire(eth(kUpMac, mac, kEtherTypeIpv6, ipv6(ip, kVtep6, kIpProtoIcmpv6, 255, icmp6(ip, kVtep6, na_body(ip, mac)))));
  }

  // A switch with local ports, an uplink and resolved peers A and B (IPv4).
  void setup4(int local_ports = 2, SwitchConfig scfg = {}, UplinkConfig u = cfg4(), bool peer_b = true) {
    sw_ = create_switch(kVni, scfg);
    for (int i = 0; i < local_ports; ++i) locals_.push_back(add_port(sw_));
    make_uplink(u, uplink_mtu_);
    EXPECT_TRUE(add_peer(sw_, v4(kPeerA4)).ok());
    if (peer_b) {
      EXPECT_TRUE(add_peer(sw_, v4(kPeerB4)).ok());
    }
    step();
    wire_out();  // ARP requests
    resolve4(kPeerA4, kMacA);
    if (peer_b) resolve4(kPeerB4, kMacB);
    EXPECT_EQ(nstate(v4(kPeerA4)), "reachable");
    EXPECT_TRUE(wire_out().empty());
  }

  // Checks one IPv4 VXLAN packet thoroughly and returns its fields.
  Sent4 parse4(const Bytes& f, const UplinkConfig& u = cfg4()) {
    Sent4 s{};
    EXPECT_GE(f.size(), 50u);
    if (f.size() < 50) return s;
    s.dst = get_mac(f, 0);
    s.src = get_mac(f, 6);
    EXPECT_EQ(get16(f, 12), kEtherTypeIpv4);
    const uint8_t* ip = f.data() + 14;
    EXPECT_EQ(ip[0], 0x45) << "version 4, IHL 5";
    EXPECT_EQ(get16(f, 16), f.size() - 14) << "total length";
    EXPECT_EQ(get16(f, 20) & 0x4000, u.df ? 0x4000 : 0) << "DF";
    EXPECT_EQ(get16(f, 20) & 0x3FFF, 0) << "not a fragment";
    EXPECT_EQ(ip[8], u.ttl);
    EXPECT_EQ(ip[9], kIpProtoUdp);
    EXPECT_EQ(ref_csum(ip, 20), 0) << "IPv4 header checksum";
    s.sip = get32(f, 26);
    s.dip = get32(f, 30);
    s.sport = get16(f, 34);
    s.dport = get16(f, 36);
    s.udp_len = get16(f, 38);
    s.udp_csum = get16(f, 40);
    EXPECT_EQ(s.udp_len, f.size() - 34);
    EXPECT_EQ(f[42], 0x08) << "VXLAN flags: I";
    EXPECT_EQ(f[43] | f[44] | f[45] | f[49], 0) << "reserved";
    s.vni = get32(f, 46) >> 8;
    s.inner.assign(f.begin() + 50, f.end());
    return s;
  }

  void truncation_sweep(PortId l, PortId up, const Bytes& pkt, const Bytes& inner) {
    for (size_t len = 0; len <= pkt.size(); ++len) {
      uint64_t drops = pc(up, PortCounter::rx_drops);
      wire(Bytes(pkt.begin(), pkt.begin() + len));
      auto r = recv(l);
      if (len == pkt.size()) {
        ASSERT_EQ(r.size(), 1u);
        EXPECT_EQ(r[0], inner);
      } else {
        EXPECT_TRUE(r.empty()) << "truncated to " << len;
        EXPECT_EQ(pc(up, PortCounter::rx_drops), drops + 1) << "truncated to " << len << " counted as a drop";
      }
    }
  }

  SwitchId sw_ = kNoId;
  PortId up_ = kNoId;
  std::vector<PortId> locals_;
};

class UnderlayTest : public VxlanFixture {};
class VxlanEncapTest : public VxlanFixture {};
class VxlanDecapTest : public VxlanFixture {};
class VxlanMalformedTest : public VxlanFixture {
 protected:
  // One local port, a dual-stack uplink, peer A over IPv4 and IPv6, both
  // resolved.
  void setup_dual() {
    setup4(1, {}, cfg46());
    ASSERT_TRUE(add_peer(sw_, kPeerA6).ok());
    step();
    wire_out();
    resolve6(kPeerA6, kMacA);
  }
};
class VxlanCommandsTest : public VxlanFixture {};

// ============================================================ ARP

TEST_F(UnderlayTest, AnswersArpForVtepAddress) {
  create_switch(kVni);
  make_uplink(cfg4());
  step();
  wire(eth(kMacBroadcast, kMacA, kEtherTypeArp, arp(1, kMacA, kPeerA4, 0, kVtep4)));
  auto out = wire_out();
  ASSERT_EQ(out.size(), 1u);
  const Bytes& r = out[0];
  ASSERT_GE(r.size(), 42u);
  EXPECT_GE(r.size(), 60u) << "padded to the Ethernet minimum";
  EXPECT_EQ(get_mac(r, 0), kMacA);
  EXPECT_EQ(get_mac(r, 6), kUpMac);
  EXPECT_EQ(get16(r, 12), kEtherTypeArp);
  Bytes want = arp(2, kUpMac, kVtep4, kMacA, kPeerA4);
  EXPECT_EQ(Bytes(r.begin() + 14, r.begin() + 42), want);
  EXPECT_EQ(ucnt(UplinkCounter::arp_replies_sent), 1u);

  // A request for someone else's address is not ours.
  uint64_t host0 = ucnt(UplinkCounter::to_host);
  wire(eth(kMacBroadcast, kMacA, kEtherTypeArp, arp(1, kMacA, kPeerA4, 0, kPeerB4)));
  EXPECT_TRUE(wire_out().empty());
  EXPECT_EQ(ucnt(UplinkCounter::to_host), host0 + 1);
  EXPECT_EQ(ucnt(UplinkCounter::arp_replies_sent), 1u);
}

// Issue 10 #11: the reply to a 42-byte request is padded to 60 bytes; the
// padding must be zeros, not what the buffer held before.
TEST_F(UnderlayTest, ArpReplyPaddingIsZero) {
  create_switch(kVni);
  make_uplink(cfg4());
  step();
  // Dirty the buffers the next request will be copied into (LIFO cache).
  BufferCache& c = peer(up_).cache();
  std::vector<uint32_t> bufs(8);
  for (uint32_t& b : bufs) {
    ASSERT_TRUE(c.alloc(&b));
    std::memset(engine().pool()->data(b), 0xAB, engine().pool()->buf_size());
  }
  for (auto it = bufs.rbegin(); it != bufs.rend(); ++it) c.free(*it);
  Bytes req = eth(kMacBroadcast, kMacA, kEtherTypeArp, arp(1, kMacA, kPeerA4, 0, kVtep4));
  ASSERT_EQ(req.size(), 42u);
  wire(req);
  auto out = wire_out();
  ASSERT_EQ(out.size(), 1u);
  ASSERT_EQ(out[0].size(), 60u);
  EXPECT_EQ(Bytes(out[0].begin() + 42, out[0].end()), Bytes(18, 0)) << "bytes 42..59";
}

TEST_F(UnderlayTest, PeerIsResolvedWithArp) {
  SwitchId s = create_switch(kVni);
  make_uplink(cfg4());
  ASSERT_TRUE(add_peer(s, v4(kPeerA4)).ok());
  EXPECT_EQ(nstate(v4(kPeerA4)), "incomplete");
  step();
  auto out = wire_out();
  ASSERT_EQ(out.size(), 1u) << "one ARP request right away";
  const Bytes& q = out[0];
  ASSERT_EQ(q.size(), 60u);
  EXPECT_EQ(get_mac(q, 0), kMacBroadcast);
  EXPECT_EQ(get_mac(q, 6), kUpMac);
  EXPECT_EQ(get16(q, 12), kEtherTypeArp);
  EXPECT_EQ(Bytes(q.begin() + 14, q.begin() + 42), arp(1, kUpMac, kVtep4, 0, kPeerA4));
  EXPECT_EQ(ucnt(UplinkCounter::arp_requests_sent), 1u);

  resolve4(kPeerA4, kMacA);
  auto nb = neighbors();
  const NeighborDumpEntry* n = neighbor(nb, v4(kPeerA4));
  ASSERT_NE(n, nullptr);
  EXPECT_STREQ(n->state, "reachable");
  EXPECT_EQ(n->mac, kMacA);
  EXPECT_EQ(ucnt(UplinkCounter::neighbors_resolved), 1u);
  EXPECT_TRUE(wire_out().empty()) << "no reply to a reply";
}

// Regression (found by fuzz_uplink's check_invariants): creating a second
// VTEP released a use of neighbour 0 that the new VTEP never held, so the
// first peer's next hop counted no users and was left to fail at its next
// timer instead of being refreshed.
TEST_F(UnderlayTest, ASecondVtepKeepsTheFirstPeersNeighbourInUse) {
  SwitchId s = create_switch(kVni);
  make_uplink(cfg46());
  ASSERT_TRUE(add_peer(s, v4(kPeerA4)).ok());
  ASSERT_TRUE(add_peer(s, kPeerA6).ok());
  EXPECT_EQ(engine().check_invariants(), "");
  step();
  wire_out();
  resolve4(kPeerA4, kMacA);
  ASSERT_EQ(nstate(v4(kPeerA4)), "reachable");
  // Past the reachable time, then past the retry time (caller's clock).
  const uint64_t kSec = 1000000000ull;
  engine().run_once_at(31 * kSec);
  engine().run_once_at(33 * kSec);
  engine().run_once_at(33 * kSec + 1000000);  // flushes what housekeeping staged
  EXPECT_EQ(nstate(v4(kPeerA4)), "stale") << "a next hop in use is refreshed, not failed";
  size_t refreshes = 0;
  for (const Bytes& f : wire_out())
    if (get16(f, 12) == kEtherTypeArp && get32(f, 38) == kPeerA4) ++refreshes;
  EXPECT_EQ(refreshes, 2u) << "one request when it went stale, one at the retry";
  EXPECT_EQ(engine().check_invariants(), "");
}

TEST_F(UnderlayTest, FramesQueuedWhileIncompleteAreSentAfterResolution) {
  SwitchId s = create_switch(kVni);
  PortId l = add_port(s);
  make_uplink(cfg4());
  ASSERT_TRUE(add_peer(s, v4(kPeerA4)).ok());
  step();
  ASSERT_EQ(wire_out().size(), 1u);  // the ARP request
  std::vector<Bytes> frames;
  for (int i = 0; i < 20; ++i) frames.push_back(make_frame(kMacBroadcast, host_mac(1), 64, -1, kEtherTypeIpv4, 0, uint8_t(i)));
  send(l, frames);
  step();
  EXPECT_TRUE(wire_out().empty()) << "nothing leaves before the next hop is known";
  EXPECT_EQ(ucnt(UplinkCounter::neighbor_queue_drops), 4u) << "the queue holds 16 frames";
  EXPECT_EQ(udrop(Drop::neighbor_unresolved), 4u);
  EXPECT_EQ(peer_cnt(v4(kPeerA4), PeerCounter::drops), 4u);
  resolve4(kPeerA4, kMacA);
  auto out = wire_out();
  ASSERT_EQ(out.size(), 16u);
  // The 4 frames dropped for want of queue space never left: they are drops,
  // not transmissions.
  EXPECT_EQ(peer_cnt(v4(kPeerA4), PeerCounter::tx_packets), 16u);
  EXPECT_EQ(ucnt(UplinkCounter::vxlan_tx), 16u);
  for (size_t i = 0; i < out.size(); ++i) {
    Sent4 p = parse4(out[i]);
    EXPECT_EQ(p.dst, kMacA) << "pending frame " << i << " got the resolved MAC";
    EXPECT_EQ(p.src, kUpMac);
    EXPECT_EQ(p.dip, kPeerA4);
    EXPECT_EQ(p.inner, frames[i]) << "in order, unchanged";
  }
}

TEST_F(UnderlayTest, ThreeUnansweredRequestsFailAndDropPending) {
  EngineOptions o = testutil::small_engine_options();
  o.idle_poll_ms = 5;
  make_engine(o);
  SwitchId s = create_switch(kVni);
  PortId l = add_port(s);
  UplinkConfig u = cfg4();
  u.neighbor_retry_ms = 100;
  make_uplink(u);
  ASSERT_TRUE(add_peer(s, v4(kPeerA4)).ok());
  send(l, {make_frame(kMacBroadcast, host_mac(1), 64), make_frame(kMacBroadcast, host_mac(1), 65),
           make_frame(kMacBroadcast, host_mac(1), 66)});
  size_t requests = 0;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  while (nstate(v4(kPeerA4)) != "failed" && std::chrono::steady_clock::now() < deadline) {
    step();
    for (const Bytes& f : wire_out()) {
      EXPECT_EQ(get16(f, 12), kEtherTypeArp) << "only ARP while unresolved";
      ++requests;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_EQ(nstate(v4(kPeerA4)), "failed");
  for (const Bytes& f : wire_out()) (void)f, ++requests;
  EXPECT_EQ(requests, 3u);
  EXPECT_EQ(ucnt(UplinkCounter::arp_requests_sent), 3u);
  EXPECT_EQ(ucnt(UplinkCounter::neighbors_failed), 1u);
  EXPECT_EQ(ucnt(UplinkCounter::neighbor_queue_drops), 3u);
  EXPECT_EQ(udrop(Drop::neighbor_unresolved), 3u);
  EXPECT_EQ(peer_cnt(v4(kPeerA4), PeerCounter::drops), 3u) << "per-peer drops include frames that never resolved";
  EXPECT_EQ(peer_cnt(v4(kPeerA4), PeerCounter::tx_packets), 0u) << "nothing was sent to the peer";

  // The next frame starts over: a new request, and a late reply delivers it.
  local(l, make_frame(kMacBroadcast, host_mac(1), 70));
  auto out = wire_out();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(get16(out[0], 12), kEtherTypeArp);
  resolve4(kPeerA4, kMacA);
  out = wire_out();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(parse4(out[0]).inner.size(), 70u);
}

// The neighbour listing: an entry's age counts from when it was made (an
// operator saw a never-resolved entry as old as the daemon), and a failed
// next hop no peer uses any more is not listed.
TEST_F(UnderlayTest, NeighbourAgesFromItsMakingAndAFailedUnusedOneIsNotListed) {
  EngineOptions o = testutil::small_engine_options();
  o.idle_poll_ms = 5;
  make_engine(o);
  SwitchId s = create_switch(kVni);
  UplinkConfig u = cfg4();
  u.neighbor_retry_ms = 100;
  make_uplink(u);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  step();
  ASSERT_TRUE(add_peer(s, v4(kPeerA4)).ok());
  step();
  auto v = neighbors();
  const NeighborDumpEntry* n = neighbor(v, v4(kPeerA4));
  ASSERT_NE(n, nullptr);
  EXPECT_LT(n->age_ms, 200u) << "made just now, not when the engine started";
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  while (nstate(v4(kPeerA4)) != "failed" && std::chrono::steady_clock::now() < deadline) {
    step();
    wire_out();
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_EQ(nstate(v4(kPeerA4)), "failed") << "still listed while its peer is there";
  ASSERT_TRUE(del_peer(s, v4(kPeerA4)).ok());
  step();
  EXPECT_EQ(nstate(v4(kPeerA4)), "absent");
}

TEST_F(UnderlayTest, OffLinkPeerResolvesTheGateway) {
  SwitchId s = create_switch(kVni);
  PortId l = add_port(s);
  UplinkConfig u = cfg4();
  u.gateway4 = v4(kGw4);
  make_uplink(u);
  ASSERT_TRUE(add_peer(s, v4(kFar4)).ok());
  step();
  auto out = wire_out();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(Bytes(out[0].begin() + 14, out[0].begin() + 42), arp(1, kUpMac, kVtep4, 0, kGw4))
      << "ARP for the gateway, not for the off-link VTEP";
  EXPECT_EQ(neighbor(neighbors(), v4(kFar4)), nullptr);
  resolve4(kGw4, kMacGw);
  Bytes f = make_frame(kMacBroadcast, host_mac(1), 64);
  local(l, f);
  out = wire_out();
  ASSERT_EQ(out.size(), 1u);
  Sent4 p = parse4(out[0]);
  EXPECT_EQ(p.dst, kMacGw);
  EXPECT_EQ(p.dip, kFar4);
  EXPECT_EQ(p.inner, f);
}

TEST_F(UnderlayTest, OffLinkPeerWithoutGatewayIsUnresolved) {
  SwitchId s = create_switch(kVni);
  PortId l = add_port(s);
  make_uplink(cfg4());
  ASSERT_TRUE(add_peer(s, v4(kFar4)).ok());
  step();
  EXPECT_TRUE(wire_out().empty()) << "nothing to ask";
  local(l, make_frame(kMacBroadcast, host_mac(1), 64));
  EXPECT_TRUE(wire_out().empty());
  EXPECT_EQ(udrop(Drop::neighbor_unresolved), 1u);
  EXPECT_EQ(sdrop(s, Drop::neighbor_unresolved), 1u);
  EXPECT_EQ(peer_cnt(v4(kFar4), PeerCounter::drops), 1u);
}

// ============================================================ ND

TEST_F(UnderlayTest, AnswersNeighborSolicitationForVtep) {
  create_switch(kVni);
  make_uplink(cfg46());
  step();
  IpAddr group = v6("ff02::1:ff00:1");
  Bytes ns = icmp6(kPeerA6, group, ns_body(kVtep6, kMacA));
  wire(eth(0x3333FF000001ull, kMacA, kEtherTypeIpv6, ipv6(kPeerA6, group, kIpProtoIcmpv6, 255, ns)));
  auto out = wire_out();
  ASSERT_EQ(out.size(), 1u);
  const Bytes& r = out[0];
  ASSERT_EQ(r.size(), 14u + 40 + 32);
  EXPECT_EQ(get_mac(r, 0), kMacA);
  EXPECT_EQ(get_mac(r, 6), kUpMac);
  EXPECT_EQ(get16(r, 12), kEtherTypeIpv6);
  EXPECT_EQ(r[14] >> 4, 6);
  EXPECT_EQ(get16(r, 18), 32) << "payload length";
  EXPECT_EQ(r[20], kIpProtoIcmpv6);
  EXPECT_EQ(r[21], 255) << "hop limit";
  EXPECT_EQ(get_ip6(r, 22), kVtep6);
  EXPECT_EQ(get_ip6(r, 38), kPeerA6);
  const uint8_t* icmp = r.data() + 54;
  EXPECT_EQ(icmp[0], 136);
  EXPECT_EQ(icmp[1], 0);
  EXPECT_EQ(get32(r, 58), 0x60000000u) << "S and O set, R clear";
  EXPECT_EQ(get_ip6(r, 62), kVtep6) << "target";
  EXPECT_EQ(icmp[24], 2) << "target link-layer address option";
  EXPECT_EQ(icmp[25], 1);
  EXPECT_EQ(get_mac(r, 80), kUpMac);
  EXPECT_EQ(ref_csum6(r.data() + 22, r.data() + 38, icmp, 32, kIpProtoIcmpv6), 0) << "ICMPv6 checksum";
  EXPECT_EQ(ucnt(UplinkCounter::nd_adverts_sent), 1u);
}

TEST_F(UnderlayTest, NeighborSolicitationWithHopLimitBelow255IsIgnored) {
  create_switch(kVni);
  make_uplink(cfg46());
  step();
  IpAddr group = v6("ff02::1:ff00:1");
  Bytes ns = icmp6(kPeerA6, group, ns_body(kVtep6, kMacA));
  wire(eth(0x3333FF000001ull, kMacA, kEtherTypeIpv6, ipv6(kPeerA6, group, kIpProtoIcmpv6, 64, ns)));
  EXPECT_TRUE(wire_out().empty());
  EXPECT_EQ(ucnt(UplinkCounter::nd_adverts_sent), 0u);
  // Bad ICMPv6 checksum: ignored too.
  ns[2] ^= 0xFF;
  wire(eth(0x3333FF000001ull, kMacA, kEtherTypeIpv6, ipv6(kPeerA6, group, kIpProtoIcmpv6, 255, ns)));
  EXPECT_TRUE(wire_out().empty());
  // NS for another target: not ours.
  Bytes other = icmp6(kPeerA6, group, ns_body(kPeerB6, kMacA));
  wire(eth(0x3333FF000003ull, kMacA, kEtherTypeIpv6, ipv6(kPeerA6, group, kIpProtoIcmpv6, 255, other)));
  EXPECT_TRUE(wire_out().empty());
}

TEST_F(UnderlayTest, PeerIsResolvedWithNeighborDiscovery) {
  SwitchId s = create_switch(kVni);
  make_uplink(cfg46());
  ASSERT_TRUE(add_peer(s, kPeerA6).ok());
  step();
  auto out = wire_out();
  ASSERT_EQ(out.size(), 1u);
  const Bytes& q = out[0];
  ASSERT_EQ(q.size(), 14u + 40 + 32);
  IpAddr group = v6("ff02::1:ff00:2");
  EXPECT_EQ(get_mac(q, 0), 0x3333FF000002ull);
  EXPECT_EQ(get_mac(q, 6), kUpMac);
  EXPECT_EQ(get16(q, 12), kEtherTypeIpv6);
  EXPECT_EQ(get32(q, 14), 0x60000000u);
  EXPECT_EQ(get16(q, 18), 32);
  EXPECT_EQ(q[20], kIpProtoIcmpv6);
  EXPECT_EQ(q[21], 255);
  EXPECT_EQ(get_ip6(q, 22), kVtep6);
  EXPECT_EQ(get_ip6(q, 38), group);
  EXPECT_EQ(q[54], 135);
  EXPECT_EQ(q[55], 0);
  EXPECT_EQ(get32(q, 58), 0u) << "reserved";
  EXPECT_EQ(get_ip6(q, 62), kPeerA6);
  EXPECT_EQ(q[78], 1) << "source link-layer address option";
  EXPECT_EQ(q[79], 1);
  EXPECT_EQ(get_mac(q, 80), kUpMac);
  EXPECT_EQ(ref_csum6(q.data() + 22, q.data() + 38, q.data() + 54, 32, kIpProtoIcmpv6), 0);
  EXPECT_EQ(ucnt(UplinkCounter::nd_solicits_sent), 1u);

  // An NA with hop limit 64 is ignored.
  Bytes na = icmp6(kPeerA6, kVtep6, na_body(kPeerA6, kMacA));
  wire(eth(kUpMac, kMacA, kEtherTypeIpv6, ipv6(kPeerA6, kVtep6, kIpProtoIcmpv6, 64, na)));
  EXPECT_EQ(nstate(kPeerA6), "incomplete");
  resolve6(kPeerA6, kMacA);
  auto nb = neighbors();
  const NeighborDumpEntry* n = neighbor(nb, kPeerA6);
  ASSERT_NE(n, nullptr);
  EXPECT_STREQ(n->state, "reachable");
  EXPECT_EQ(n->mac, kMacA);
  EXPECT_TRUE(wire_out().empty());
}

// ============================================================ echo

TEST_F(UnderlayTest, AnswersIcmpEchoToVtep) {
  create_switch(kVni);
  make_uplink(cfg4());
  step();
  Bytes icmp = {8, 0, 0, 0, 0x12, 0x34, 0x00, 0x07};
  for (int i = 0; i < 37; ++i) icmp.push_back(uint8_t(i * 3));  // odd length
  uint16_t c = ref_csum(icmp.data(), icmp.size());
  icmp[2] = uint8_t(c >> 8), icmp[3] = uint8_t(c);
  Ip4Opts io;
  io.ttl = 61;
  wire(eth(kUpMac, kMacA, kEtherTypeIpv4, ipv4(kPeerA4, kVtep4, kIpProtoIcmp, icmp, io)));
  auto out = wire_out();
  ASSERT_EQ(out.size(), 1u);
  const Bytes& r = out[0];
  ASSERT_EQ(r.size(), 14 + 20 + icmp.size());
  EXPECT_EQ(get_mac(r, 0), kMacA);
  EXPECT_EQ(get_mac(r, 6), kUpMac);
  EXPECT_EQ(get16(r, 12), kEtherTypeIpv4);
  EXPECT_EQ(ref_csum(r.data() + 14, 20), 0) << "IPv4 header checksum";
  EXPECT_EQ(get16(r, 16), 20 + icmp.size());
  EXPECT_EQ(r[23], kIpProtoIcmp);
  EXPECT_EQ(get32(r, 26), kVtep4);
  EXPECT_EQ(get32(r, 30), kPeerA4);
  EXPECT_EQ(r[34], 0) << "echo reply";
  EXPECT_EQ(r[35], 0);
  EXPECT_EQ(ref_csum(r.data() + 34, icmp.size()), 0) << "ICMP checksum";
  EXPECT_EQ(Bytes(r.begin() + 38, r.end()), Bytes(icmp.begin() + 4, icmp.end())) << "id, seq, data echoed";
  EXPECT_EQ(ucnt(UplinkCounter::echo_replies_sent), 1u);

  // Echo to another address: not answered.
  wire(eth(kUpMac, kMacA, kEtherTypeIpv4, ipv4(kPeerA4, kPeerB4, kIpProtoIcmp, icmp)));
  EXPECT_TRUE(wire_out().empty());
  EXPECT_EQ(ucnt(UplinkCounter::to_host), 1u) << "the host's business, not a drop";
  EXPECT_EQ(pc(up_, PortCounter::rx_drops), 0u);
  // Echo with a bad ICMP checksum: not answered.
  Bytes bad = icmp;
  bad[5] ^= 1;
  wire(eth(kUpMac, kMacA, kEtherTypeIpv4, ipv4(kPeerA4, kVtep4, kIpProtoIcmp, bad)));
  EXPECT_TRUE(wire_out().empty());
  EXPECT_EQ(ucnt(UplinkCounter::echo_replies_sent), 1u);
}

TEST_F(UnderlayTest, AnswersIcmpv6EchoToVtep) {
  create_switch(kVni);
  make_uplink(cfg46());
  step();
  Bytes body = {128, 0, 0, 0, 0xAB, 0xCD, 0x00, 0x01};
  for (int i = 0; i < 33; ++i) body.push_back(uint8_t(0xF0 + i));
  Bytes req = icmp6(kPeerA6, kVtep6, body);
  wire(eth(kUpMac, kMacA, kEtherTypeIpv6, ipv6(kPeerA6, kVtep6, kIpProtoIcmpv6, 64, req)));
  auto out = wire_out();
  ASSERT_EQ(out.size(), 1u);
  const Bytes& r = out[0];
  ASSERT_EQ(r.size(), 54 + req.size());
  EXPECT_EQ(get_mac(r, 0), kMacA);
  EXPECT_EQ(get_mac(r, 6), kUpMac);
  EXPECT_EQ(get16(r, 18), req.size());
  EXPECT_EQ(r[20], kIpProtoIcmpv6);
  EXPECT_EQ(get_ip6(r, 22), kVtep6);
  EXPECT_EQ(get_ip6(r, 38), kPeerA6);
  EXPECT_EQ(r[54], 129);
  EXPECT_EQ(r[55], 0);
  EXPECT_EQ(ref_csum6(r.data() + 22, r.data() + 38, r.data() + 54, req.size(), kIpProtoIcmpv6), 0);
  EXPECT_EQ(Bytes(r.begin() + 58, r.end()), Bytes(req.begin() + 4, req.end()));

  // To another address: not answered (left to the host).
  Bytes other = icmp6(kPeerA6, kPeerB6, body);
  wire(eth(kUpMac, kMacA, kEtherTypeIpv6, ipv6(kPeerA6, kPeerB6, kIpProtoIcmpv6, 64, other)));
  EXPECT_TRUE(wire_out().empty());
  EXPECT_EQ(ucnt(UplinkCounter::echo_replies_sent), 1u);
}

// ============================================================ encapsulation

TEST_F(VxlanEncapTest, BroadcastReachesEachPeerOnceWithCorrectHeaders) {
  setup4(2);
  Bytes f = make_frame(kMacBroadcast, host_mac(1), 64);
  local(locals_[0], f);
  EXPECT_EQ(recv(locals_[1]).size(), 1u);
  auto out = wire_out();
  ASSERT_EQ(out.size(), 2u) << "head-end replication: one copy per peer";
  std::multiset<uint32_t> dips;
  for (const Bytes& o : out) {
    ASSERT_EQ(o.size(), 50u + 64);
    Sent4 p = parse4(o);
    dips.insert(p.dip);
    EXPECT_EQ(p.dst, p.dip == kPeerA4 ? kMacA : kMacB);
    EXPECT_EQ(p.src, kUpMac);
    EXPECT_EQ(p.sip, kVtep4);
    EXPECT_EQ(p.dport, 4789);
    EXPECT_GE(p.sport, 49152);
    EXPECT_EQ(p.udp_csum, 0) << "IPv4: UDP checksum zero";
    EXPECT_EQ(p.udp_len, 8 + 8 + 64);
    EXPECT_EQ(p.vni, kVni);
    EXPECT_EQ(p.inner, f);
    EXPECT_EQ(get16(o, 18), 0) << "identification 0 with DF";
  }
  EXPECT_EQ(dips, (std::multiset<uint32_t>{kPeerA4, kPeerB4}));
  EXPECT_EQ(ucnt(UplinkCounter::vxlan_tx), 2u);
  EXPECT_EQ(peer_cnt(v4(kPeerA4), PeerCounter::tx_packets), 1u);
  EXPECT_EQ(peer_cnt(v4(kPeerB4), PeerCounter::tx_packets), 1u);
  EXPECT_EQ(peer_cnt(v4(kPeerA4), PeerCounter::tx_bytes), 64u);
  EXPECT_EQ(pc(up_, PortCounter::tx_packets), 2u + 2u) << "two ARP requests, two VXLAN packets";
}

TEST_F(VxlanEncapTest, DfOffAndTtlAreConfigurable) {
  UplinkConfig u = cfg4();
  u.df = false;
  u.ttl = 9;
  setup4(1, {}, u, false);
  local(locals_[0], make_frame(kMacBroadcast, host_mac(1), 64));
  local(locals_[0], make_frame(kMacBroadcast, host_mac(1), 65));
  auto out = wire_out();
  ASSERT_EQ(out.size(), 2u);
  parse4(out[0], u);
  parse4(out[1], u);
  EXPECT_NE(get16(out[0], 18), get16(out[1], 18)) << "identification varies without DF";
}

TEST_F(VxlanEncapTest, SourcePortIsAStableFlowHashInTheRange) {
  UplinkConfig u = cfg4();
  u.src_port_min = 50000;
  u.src_port_max = 50099;
  setup4(1, {}, u, false);
  PortId l = locals_[0];
  std::set<uint16_t> ports;
  for (uint16_t i = 0; i < 300; ++i) {
    Bytes f = inner_udp_frame(kMacBroadcast, host_mac(1), 0xC6120A01, 0xC6120A02, uint16_t(1000 + i), 7);
    local(l, f);
    local(l, f);
    auto out = wire_out();
    ASSERT_EQ(out.size(), 2u);
    uint16_t a = get16(out[0], 34), b = get16(out[1], 34);
    EXPECT_EQ(a, b) << "same flow, same source port";
    EXPECT_GE(a, 50000);
    EXPECT_LE(a, 50099);
    ports.insert(a);
  }
  EXPECT_GE(ports.size(), 60u) << "300 flows over 100 ports should use most of them";
  // Different MACs alone also change the port.
  std::set<uint16_t> by_mac;
  for (uint32_t i = 0; i < 50; ++i) {
    local(l, make_frame(kMacBroadcast, host_mac(100 + i), 64));
    auto out = wire_out();
    ASSERT_EQ(out.size(), 1u);
    by_mac.insert(get16(out[0], 34));
  }
  EXPECT_GE(by_mac.size(), 20u);
}

TEST_F(VxlanEncapTest, Ipv6HeadersAndUdpChecksum) {
  for (bool zero : {false, true}) {
    SCOPED_TRACE(zero ? "udp6_zero_checksum" : "checksum computed");
    make_engine(testutil::small_engine_options());
    SwitchId s = create_switch(kVni);
    PortId l = add_port(s);
    UplinkConfig u = cfg46();
    u.udp6_zero_checksum = zero;
    u.ttl = 33;
    make_uplink(u);
    ASSERT_TRUE(add_peer(s, kPeerA6).ok());
    step();
    wire_out();
    resolve6(kPeerA6, kMacA);
    for (uint16_t len : {64, 65, 333}) {
      Bytes f = inner_udp_frame(kMacBroadcast, host_mac(1), 0xC6120A01, 0xC6120A02, len, 9, len);
      local(l, f);
      auto out = wire_out();
      ASSERT_EQ(out.size(), 1u);
      const Bytes& o = out[0];
      ASSERT_EQ(o.size(), 70u + len);
      EXPECT_EQ(get_mac(o, 0), kMacA);
      EXPECT_EQ(get_mac(o, 6), kUpMac);
      EXPECT_EQ(get16(o, 12), kEtherTypeIpv6);
      EXPECT_EQ(get32(o, 14) >> 28, 6u);
      EXPECT_EQ(get16(o, 18), 16 + len) << "payload length";
      EXPECT_EQ(o[20], kIpProtoUdp);
      EXPECT_EQ(o[21], 33) << "hop limit";
      EXPECT_EQ(get_ip6(o, 22), kVtep6);
      EXPECT_EQ(get_ip6(o, 38), kPeerA6);
      EXPECT_EQ(get16(o, 56), 4789);
      EXPECT_EQ(get16(o, 58), 16 + len);
      uint16_t c = get16(o, 60);
      if (zero) {
        EXPECT_EQ(c, 0);
      } else {
        EXPECT_NE(c, 0);
        EXPECT_EQ(ref_csum6(o.data() + 22, o.data() + 38, o.data() + 54, 16 + len, kIpProtoUdp), 0)
            << "UDP checksum over the RFC 8200 pseudo-header";
      }
      EXPECT_EQ(o[62], 0x08);
      EXPECT_EQ(get32(o, 66) >> 8, kVni);
      EXPECT_EQ(Bytes(o.begin() + 70, o.end()), f);
    }
  }
}

TEST_F(VxlanEncapTest, LargestFrameThatFitsPassesOneMoreIsDropped) {
  SwitchId s = create_switch(kVni);
  PortId l = add_port(s);
  make_uplink(cfg46(), 1500);
  ASSERT_TRUE(add_peer(s, v4(kPeerA4)).ok());
  step();
  wire_out();
  resolve4(kPeerA4, kMacA);
  // IPv4: 1500 - 20 - 8 - 8 = 1464-byte inner frame (inner L3 1450).
  local(l, make_frame(kMacBroadcast, host_mac(1), 1464));
  auto out = wire_out();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].size(), 1514u);
  EXPECT_EQ(get16(out[0], 16), 1500) << "outer IP packet exactly the uplink MTU";
  local(l, make_frame(kMacBroadcast, host_mac(1), 1465));
  EXPECT_TRUE(wire_out().empty());
  EXPECT_EQ(udrop(Drop::vxlan_too_big), 1u);
  EXPECT_EQ(sdrop(s, Drop::vxlan_too_big), 1u);
  EXPECT_EQ(peer_cnt(v4(kPeerA4), PeerCounter::drops), 1u);

  // IPv6: 1500 - 40 - 8 - 8 = 1444-byte inner frame (inner L3 1430).
  ASSERT_TRUE(del_peer(s, v4(kPeerA4)).ok());
  ASSERT_TRUE(add_peer(s, kPeerA6).ok());
  step();
  wire_out();
  resolve6(kPeerA6, kMacA);
  local(l, make_frame(kMacBroadcast, host_mac(1), 1444));
  out = wire_out();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].size(), 1514u);
  EXPECT_EQ(get16(out[0], 18), 1460) << "IPv6 payload: 1500 minus the fixed header";
  local(l, make_frame(kMacBroadcast, host_mac(1), 1445));
  EXPECT_TRUE(wire_out().empty());
  EXPECT_EQ(udrop(Drop::vxlan_too_big), 2u);
}

// ============================================================ decapsulation

TEST_F(VxlanDecapTest, DeliversInnerFrameAndLearnsBehindTheVtep) {
  setup4(2);
  Mac remote = host_mac(0x500);
  Bytes inner = make_frame(kMacBroadcast, remote, 64);
  wire(vx4(inner));
  for (PortId p : locals_) {
    auto r = recv(p);
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0], inner);
  }
  EXPECT_TRUE(wire_out().empty()) << "split horizon: not re-flooded to peer B";
  EXPECT_EQ(ucnt(UplinkCounter::vxlan_rx), 1u);
  EXPECT_EQ(peer_cnt(v4(kPeerA4), PeerCounter::rx_packets), 1u);
  EXPECT_EQ(peer_cnt(v4(kPeerA4), PeerCounter::rx_bytes), 64u);
  EXPECT_EQ(peer_cnt(v4(kPeerA4), PeerCounter::fdb_learned), 1u);

  auto d = fdb(sw_);
  const FdbDumpEntry* e = find_entry(d, remote);
  ASSERT_TRUE(e);
  EXPECT_TRUE(e->remote);
  EXPECT_EQ(e->vtep, v4(kPeerA4));
  EXPECT_EQ(e->port, up_);
  EXPECT_FALSE(e->is_static);
  auto learned = events_of(EventType::kLearned);
  ASSERT_EQ(learned.size(), 1u);
  EXPECT_EQ(learned[0].mac, remote);
  EXPECT_EQ(learned[0].vtep, v4(kPeerA4));
  EXPECT_EQ(learned[0].port, up_);

  // Unicast to it goes to peer A only, encapsulated.
  Bytes to = make_frame(remote, host_mac(1), 80);
  local(locals_[0], to);
  auto out = wire_out();
  ASSERT_EQ(out.size(), 1u);
  Sent4 p = parse4(out[0]);
  EXPECT_EQ(p.dip, kPeerA4);
  EXPECT_EQ(p.dst, kMacA);
  EXPECT_EQ(p.inner, to);
  EXPECT_TRUE(recv(locals_[1]).empty());

  // And a unicast reply from A to the local host goes only to its port.
  Bytes back = make_frame(host_mac(1), remote, 70);
  wire(vx4(back));
  auto r0 = recv(locals_[0]);
  ASSERT_EQ(r0.size(), 1u);
  EXPECT_EQ(r0[0], back);
  EXPECT_TRUE(recv(locals_[1]).empty());
}

TEST_F(VxlanDecapTest, Ipv6UnderlayDecapsulates) {
  SwitchId s = create_switch(kVni);
  PortId l = add_port(s);
  make_uplink(cfg46());
  ASSERT_TRUE(add_peer(s, kPeerA6).ok());
  step();
  wire_out();
  resolve6(kPeerA6, kMacA);
  Bytes inner = make_frame(kMacBroadcast, host_mac(0x600), 64);
  wire(vx6(inner));
  auto r = recv(l);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0], inner);
  auto e = entry(s, host_mac(0x600));
  ASSERT_TRUE(e);
  EXPECT_EQ(e->vtep, kPeerA6);
}

TEST_F(VxlanDecapTest, RemoteLearningOffLearnsNothing) {
  SwitchConfig sc;
  sc.remote_learning = false;
  setup4(1, sc);
  Bytes inner = make_frame(kMacBroadcast, host_mac(0x500), 64);
  wire(vx4(inner));
  wire(vx4(inner));
  EXPECT_EQ(recv(locals_[0]).size(), 2u) << "still delivered";
  EXPECT_FALSE(entry(sw_, host_mac(0x500)));
  EXPECT_EQ(count_events(EventType::kLearned), 0u);
  // Local learning still works.
  local(locals_[0], make_frame(kMacBroadcast, host_mac(1), 64));
  EXPECT_TRUE(entry(sw_, host_mac(1)));
  // The unknown remote MAC floods to both peers.
  wire_out();
  local(locals_[0], make_frame(host_mac(0x500), host_mac(1), 64));
  EXPECT_EQ(wire_out().size(), 2u);
}

TEST_F(VxlanDecapTest, StaticRemoteEntryOverridesLearning) {
  setup4(1);
  Mac m = host_mac(0x700);
  ASSERT_TRUE(add_remote_mac(sw_, m, v4(kPeerA4)).ok());
  // Unicast to it: only A.
  local(locals_[0], make_frame(m, host_mac(1), 64));
  auto out = wire_out();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(parse4(out[0]).dip, kPeerA4);
  // The same MAC arriving from B is a conflict.
  Vx4 fromB;
  fromB.src = kPeerB4;
  fromB.outer_src = kMacB;
  wire(vx4(make_frame(kMacBroadcast, m, 64), fromB));
  EXPECT_TRUE(recv(locals_[0]).empty());
  EXPECT_EQ(udrop(Drop::static_mac_conflict), 1u);
  EXPECT_EQ(sdrop(sw_, Drop::static_mac_conflict), 1u);
  auto e = entry(sw_, m);
  ASSERT_TRUE(e);
  EXPECT_TRUE(e->is_static);
  EXPECT_EQ(e->vtep, v4(kPeerA4));
  // From A itself it is fine.
  wire(vx4(make_frame(kMacBroadcast, m, 64)));
  EXPECT_EQ(recv(locals_[0]).size(), 1u);
}

TEST_F(VxlanDecapTest, DecapsulatedUnicastToAnotherVtepIsDropped) {
  setup4(1);
  Mac behind_b = host_mac(0x800);
  Vx4 fromB;
  fromB.src = kPeerB4;
  fromB.outer_src = kMacB;
  wire(vx4(make_frame(kMacBroadcast, behind_b, 64), fromB));
  recv(locals_[0]);
  ASSERT_EQ(wire_out().size(), 0u);
  wire(vx4(make_frame(behind_b, host_mac(0x500), 64)));
  EXPECT_TRUE(wire_out().empty()) << "never relayed from one VTEP to another";
  EXPECT_TRUE(recv(locals_[0]).empty());
  EXPECT_EQ(udrop(Drop::remote_to_remote), 1u);
  EXPECT_EQ(sdrop(sw_, Drop::remote_to_remote), 1u);
  // Unknown unicast from a VTEP: local flood only.
  wire(vx4(make_frame(host_mac(0x999), host_mac(0x500), 64)));
  EXPECT_EQ(recv(locals_[0]).size(), 1u);
  EXPECT_TRUE(wire_out().empty());
  // Multicast too.
  wire(vx4(make_frame(testutil::kMcastMac, host_mac(0x500), 64)));
  EXPECT_EQ(recv(locals_[0]).size(), 1u);
  EXPECT_TRUE(wire_out().empty());
}

TEST_F(VxlanDecapTest, MacMovesBetweenLocalAndRemote) {
  setup4(2);
  Mac m = host_mac(0x42);
  local(locals_[0], make_frame(kMacBroadcast, m, 64));
  wire_out();
  recv(locals_[1]);
  events();
  events_.clear();
  // Local -> remote (the VM migrated to the host behind A).
  wire(vx4(make_frame(kMacBroadcast, m, 64)));
  EXPECT_EQ(sc(sw_, SwitchCounter::moved), 1u);
  auto mv = events_of(EventType::kMoved);
  ASSERT_EQ(mv.size(), 1u);
  EXPECT_EQ(mv[0].mac, m);
  EXPECT_EQ(mv[0].vtep, v4(kPeerA4));
  EXPECT_EQ(mv[0].port, up_);
  EXPECT_EQ(mv[0].old_port, locals_[0]);
  EXPECT_TRUE(mv[0].old_vtep.is_zero());
  auto e = entry(sw_, m);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->vtep, v4(kPeerA4));
  EXPECT_EQ(pc(locals_[0], PortCounter::fdb_learned), 0u);
  EXPECT_EQ(peer_cnt(v4(kPeerA4), PeerCounter::fdb_learned), 1u);
  // Remote A -> remote B.
  Vx4 fromB;
  fromB.src = kPeerB4;
  fromB.outer_src = kMacB;
  wire(vx4(make_frame(kMacBroadcast, m, 64), fromB));
  EXPECT_EQ(sc(sw_, SwitchCounter::moved), 2u);
  EXPECT_EQ(peer_cnt(v4(kPeerA4), PeerCounter::fdb_learned), 0u);
  EXPECT_EQ(peer_cnt(v4(kPeerB4), PeerCounter::fdb_learned), 1u);
  // Remote -> local.
  local(locals_[1], make_frame(kMacBroadcast, m, 64));
  EXPECT_EQ(sc(sw_, SwitchCounter::moved), 3u);
  mv = events_of(EventType::kMoved);
  ASSERT_EQ(mv.size(), 3u);
  EXPECT_EQ(mv[2].port, locals_[1]);
  EXPECT_TRUE(mv[2].vtep.is_zero());
  EXPECT_EQ(mv[2].old_vtep, v4(kPeerB4));
  e = entry(sw_, m);
  ASSERT_TRUE(e);
  EXPECT_FALSE(e->remote);
  EXPECT_EQ(e->port, locals_[1]);
  EXPECT_EQ(peer_cnt(v4(kPeerB4), PeerCounter::fdb_learned), 0u);
}

TEST_F(VxlanDecapTest, UnknownPeerIsLearnedWhenAllowed) {
  SwitchConfig sc;
  sc.allow_unknown_peers = true;
  setup4(1, sc);
  Vx4 o;
  o.src = kStranger4;
  wire(vx4(make_frame(kMacBroadcast, host_mac(0x900), 64), o));
  EXPECT_EQ(recv(locals_[0]).size(), 1u);
  auto e = entry(sw_, host_mac(0x900));
  ASSERT_TRUE(e);
  EXPECT_EQ(e->vtep, v4(kStranger4));
  // It is not in the flood list: a broadcast still goes to A and B only.
  wire_out();
  local(locals_[0], make_frame(kMacBroadcast, host_mac(1), 64));
  std::set<uint32_t> dips;
  for (const Bytes& f : wire_out())
    if (get16(f, 12) == kEtherTypeIpv4) dips.insert(parse4(f).dip);
  EXPECT_EQ(dips, (std::set<uint32_t>{kPeerA4, kPeerB4}));
}


// Issue 10 #12: decapsulation must not create a VTEP for an address addPeer
// refuses: unspecified, multicast, loopback, our own, or IPv4-mapped IPv6.
TEST_F(VxlanDecapTest, SourcesThatCannotBeVtepsAreDropped) {
  SwitchConfig sc;
  sc.allow_unknown_peers = true;
  setup4(1, sc, cfg46());
  const Bytes inner = make_frame(kMacBroadcast, host_mac(0x900), 64);
  uint64_t n = 0;
  for (uint32_t bad : {0u, 0xE0000001u /* 224.0.0.1 */, 0x7F000001u, 0xFFFFFFFFu, kVtep4}) {
    Vx4 o;
    o.src = bad;
    wire(vx4(inner, o));
    EXPECT_EQ(udrop(Drop::vxlan_peer_invalid), ++n) << ip_format(v4(bad));
  }
  for (const char* bad : {"::", "ff02::1", "::1", "2001:db8::1" /* ours */, "::ffff:198.18.0.2"}) {
    Vx6 o;
    o.src = v6(bad);
    wire(vx6(inner, o));
    EXPECT_EQ(udrop(Drop::vxlan_peer_invalid), ++n) << bad;
  }
  EXPECT_TRUE(recv(locals_[0]).empty());
  EXPECT_FALSE(entry(sw_, host_mac(0x900))) << "nothing learned behind them";
  for (uint32_t i = 0; i < engine().options().max_vteps; ++i) {
    const PeerCounterBlock& b = engine().peer_counters(i);
    if (!cnt_read(b.in_use)) continue;
    IpAddr ip = IpAddr::from_v6(b.ip);
    EXPECT_TRUE(ip == v4(kPeerA4) || ip == v4(kPeerB4)) << "unexpected VTEP " << ip_format(ip);
  }
  // addPeer refuses the same addresses, with the same words.
  Result r = add_peer(sw_, v4(kVtep4));
  EXPECT_EQ(r.status, Status::kInvalidArgument);
  EXPECT_NE(r.message.find("own VTEP address"), std::string::npos) << r.message;
  EXPECT_EQ(add_remote_mac(sw_, host_mac(0x901), kVtep6).status, Status::kInvalidArgument);
  // A stranger with a proper address is still learned (allowUnknownPeers).
  Vx4 ok;
  ok.src = kStranger4;
  wire(vx4(inner, ok));
  EXPECT_EQ(recv(locals_[0]).size(), 1u);
}

// Issue 10 #4: by default a VNI takes VXLAN only from its own peers: not
// from strangers, and not from the peers of another tenant's VNI.
// A trace of a refused VXLAN packet says which VNI and which VTEP it came
// with before the drop line (an operator tracing the uplink sees who is
// knocking); a malformed one has only its drop line.
TEST_F(VxlanDecapTest, TraceOfARefusedPacketNamesItsVniAndVtep) {
  setup4(1);
  step();
  wire_out();
  auto t = std::make_shared<TraceSession>(3, up_);
  auto c = cmd(CmdOp::kStartTrace);
  c->trace = t;
  ASSERT_TRUE(run(std::move(c)).ok());
  const Bytes inner = make_frame(kMacBroadcast, host_mac(0x900), 64);
  Vx4 stranger;
  stranger.src = kStranger4;
  Vx4 unknown;
  unknown.vni = kVni + 7;
  Bytes bad = vx4(inner);
  bad[14] = 0x46;  // IPv4 with options the header length does not hold
  ASSERT_EQ(send_frames(up_, {vx4(inner, stranger), vx4(inner, unknown), bad}), 3u);
  step();
  ASSERT_EQ(t->published(), 3u);
  auto text = [&](uint32_t k) { return trace_text(t->record(k)); };
  const std::string denied = text(0), nosw = text(1), malformed = text(2);
  EXPECT_NE(denied.find("decap: vni " + std::to_string(kVni) + " from vtep 198.18.0.9 (switch#" + std::to_string(sw_) + "), refused\ndrop: vxlan_peer_denied"),
            std::string::npos) << denied;
  EXPECT_NE(nosw.find("decap: vni " + std::to_string(kVni + 7) + " from vtep 198.18.0.2 (no switch), refused\ndrop: vxlan_vni_unknown"), std::string::npos) << nosw;
  EXPECT_EQ(malformed.find("decap:"), std::string::npos) << malformed;
  EXPECT_NE(malformed.find("drop: outer_"), std::string::npos) << malformed;
}

TEST_F(VxlanDecapTest, ByDefaultAVniAcceptsOnlyItsOwnPeers) {
  setup4(1);  // switch kVni: peers A and B
  SwitchId other = create_switch(kVni + 1);
  PortId lo = add_port(other);
  const IpAddr kPeerC4 = v4(0xC6120004);
  ASSERT_TRUE(add_peer(other, kPeerC4).ok());
  step();
  wire_out();
  const Bytes inner = make_frame(kMacBroadcast, host_mac(0x900), 64);
  Vx4 stranger;
  stranger.src = kStranger4;
  wire(vx4(inner, stranger));
  EXPECT_EQ(udrop(Drop::vxlan_peer_denied), 1u);
  Vx4 cross;  // tenant kVni+1's peer sends into kVni
  cross.src = 0xC6120004;
  wire(vx4(inner, cross));
  EXPECT_EQ(udrop(Drop::vxlan_peer_denied), 2u);
  EXPECT_EQ(peer_cnt(kPeerC4, PeerCounter::drops), 1u);
  EXPECT_TRUE(recv(locals_[0]).empty());
  EXPECT_FALSE(entry(sw_, host_mac(0x900)));
  // Its own VNI takes it, and A's frames still reach kVni.
  cross.vni = kVni + 1;
  wire(vx4(inner, cross));
  EXPECT_EQ(recv(lo).size(), 1u);
  wire(vx4(inner));
  EXPECT_EQ(recv(locals_[0]).size(), 1u);
  // A static MAC behind a VTEP does not make it a peer.
  ASSERT_TRUE(add_remote_mac(sw_, host_mac(0x901), kPeerC4).ok());
  cross.vni = kVni;
  wire(vx4(inner, cross));
  EXPECT_EQ(udrop(Drop::vxlan_peer_denied), 3u);
  // Opting in (in place) lets it through; opting out again closes it.
  auto set = [&](bool allow) {
    auto c = cmd(CmdOp::kSetSwitch);
    c->sw = sw_;
    c->switch_cfg.allow_unknown_peers = allow;
    ASSERT_TRUE(run(std::move(c)).ok());
  };
  set(true);
  wire(vx4(inner, cross));
  EXPECT_EQ(recv(locals_[0]).size(), 1u);
  set(false);
  wire(vx4(inner, cross));
  EXPECT_TRUE(recv(locals_[0]).empty());
  EXPECT_EQ(udrop(Drop::vxlan_peer_denied), 4u);
}

// Issue 10 #4: VTEPs learned from traffic have their own limit, with their
// own drop reason, and never take the slots configured peers need.
TEST_F(VxlanDecapTest, LearnedVtepsHaveTheirOwnLimit) {
  EngineOptions o = testutil::small_engine_options();
  o.max_vteps = 8;
  o.max_learned_vteps = 2;
  make_engine(o);
  SwitchConfig sc;
  sc.allow_unknown_peers = true;
  setup4(1, sc);  // peers A and B: 2 configured
  const Bytes inner = make_frame(kMacBroadcast, host_mac(0x900), 64);
  for (uint32_t i = 0; i < 6; ++i) {
    Vx4 s;
    s.src = 0xC6120040 + i;
    wire(vx4(make_frame(kMacBroadcast, host_mac(0x900 + i), 64), s));  // a MAC each: each VTEP stays referenced
  }
  EXPECT_EQ(recv(locals_[0]).size(), 2u) << "two strangers learned";
  EXPECT_EQ(udrop(Drop::vxlan_vtep_table_full), 4u);
  EXPECT_EQ(udrop(Drop::vxlan_peer_denied), 0u);
  // The remaining 4 slots are the operator's.
  for (uint32_t i = 0; i < 4; ++i) {
    Result r = add_peer(sw_, v4(0xC6120060 + i));
    EXPECT_TRUE(r.ok()) << "peer #" << i << ": " << r.message;
  }
  EXPECT_EQ(add_peer(sw_, v4(0xC6120070)).status, Status::kLimitExceeded);
  // A learned VTEP the operator configures stops counting as learned.
  ASSERT_TRUE(del_peer(sw_, v4(0xC6120063)).ok());
  ASSERT_TRUE(add_peer(sw_, v4(0xC6120040)).ok());
  Vx4 s;
  s.src = 0xC6120050;
  wire(vx4(inner, s));
  EXPECT_EQ(recv(locals_[0]).size(), 1u) << "a learned slot came free";
  EngineOptions bad = o;
  bad.max_learned_vteps = 9;
  EXPECT_THROW(Engine e(bad), std::invalid_argument);
}

TEST_F(VxlanEncapTest, HeadEndReplicationToManyPeers) {
  // More peers than the flood stage collects in one round (64).
  SwitchId s = create_switch(kVni);
  PortId l = add_port(s);
  make_uplink(cfg4());
  const uint32_t n = 70;
  for (uint32_t i = 0; i < n; ++i) ASSERT_TRUE(add_peer(s, v4(0xC6120010 + i)).ok());
  step();
  EXPECT_EQ(wire_out().size(), n) << "one ARP request per peer";
  for (uint32_t i = 0; i < n; ++i) resolve4(0xC6120010 + i, 0x02BB00001000ull + i);
  Bytes f = make_frame(kMacBroadcast, host_mac(1), 64);
  local(l, f);
  auto out = wire_out();
  ASSERT_EQ(out.size(), n);
  std::set<uint32_t> dips;
  for (const Bytes& o : out) {
    Sent4 p = parse4(o);
    EXPECT_EQ(p.dst, 0x02BB00001000ull + (p.dip - 0xC6120010));
    EXPECT_EQ(p.inner, f);
    dips.insert(p.dip);
  }
  EXPECT_EQ(dips.size(), n) << "each peer exactly once";
}

TEST_F(VxlanEncapTest, VnisStayIsolated) {
  SwitchId s1 = create_switch(kVni), s2 = create_switch(6000);
  PortId l1 = add_port(s1), l2 = add_port(s2);
  make_uplink(cfg4());
  ASSERT_TRUE(add_peer(s1, v4(kPeerA4)).ok());
  ASSERT_TRUE(add_peer(s2, v4(kPeerA4)).ok());
  step();
  EXPECT_EQ(wire_out().size(), 1u) << "one next hop, one request";
  resolve4(kPeerA4, kMacA);
  local(l2, make_frame(kMacBroadcast, host_mac(2), 64));
  auto out = wire_out();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(parse4(out[0]).vni, 6000u);
  EXPECT_TRUE(recv(l1).empty());
  Vx4 o;
  o.vni = 6000;
  Bytes inner = make_frame(kMacBroadcast, host_mac(0x600), 64);
  wire(vx4(inner, o));
  EXPECT_TRUE(recv(l1).empty());
  auto r = recv(l2);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0], inner);
  EXPECT_TRUE(entry(s2, host_mac(0x600)));
  EXPECT_FALSE(entry(s1, host_mac(0x600)));
  // The same MAC may live in both VNIs behind different places.
  wire(vx4(inner));
  EXPECT_EQ(recv(l1).size(), 1u);
  EXPECT_TRUE(entry(s1, host_mac(0x600)));
  EXPECT_EQ(sc(s1, SwitchCounter::moved) + sc(s2, SwitchCounter::moved), 0u);
}

TEST_F(VxlanEncapTest, TrunkPortTagsAreRemovedBeforeEncapAndPushedAfterDecap) {
  SwitchId s = create_switch(kVni);
  PortId t = add_port(kNoId, {}, {{10, s}});
  make_uplink(cfg4());
  ASSERT_TRUE(add_peer(s, v4(kPeerA4)).ok());
  step();
  wire_out();
  resolve4(kPeerA4, kMacA);
  Bytes tagged = make_frame(kMacBroadcast, host_mac(1), 68, 10);
  local(t, tagged);
  auto out = wire_out();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(parse4(out[0]).inner, testutil::strip_tag(tagged)) << "inner frames are untagged";
  Bytes inner = make_frame(host_mac(1), host_mac(0x500), 64);
  wire(vx4(inner));
  auto r = recv(t);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0], testutil::add_tag(inner, 10));
}

TEST_F(VxlanEncapTest, UplinkLinkDownDropsEncapButLocalTrafficFlows) {
  EngineOptions o = testutil::small_engine_options();
  o.idle_poll_ms = 1;
  make_engine(o);
  setup4(2);
  peer(up_).set_link(false);
  std::this_thread::sleep_for(std::chrono::milliseconds(3));
  step();  // housekeeping sees the link go down
  local(locals_[0], make_frame(kMacBroadcast, host_mac(1), 64));
  EXPECT_EQ(recv(locals_[1]).size(), 1u);
  EXPECT_TRUE(wire_out().empty());
  // Unicast to a remote MAC: counted, not sent.
  ASSERT_TRUE(add_remote_mac(sw_, host_mac(0x700), v4(kPeerA4)).ok());
  local(locals_[0], make_frame(host_mac(0x700), host_mac(1), 64));
  EXPECT_TRUE(wire_out().empty());
  EXPECT_EQ(sdrop(sw_, Drop::no_uplink), 1u);
}

TEST_F(VxlanDecapTest, RemoteEntriesAgeLikeLocalOnes) {
  EngineOptions o = testutil::small_engine_options();
  o.idle_poll_ms = 10;
  make_engine(o);
  SwitchConfig sc1;
  sc1.aging_ms = 1000;
  setup4(1, sc1);
  wire(vx4(make_frame(kMacBroadcast, host_mac(0x500), 64)));
  recv(locals_[0]);
  ASSERT_TRUE(entry(sw_, host_mac(0x500)));
  EXPECT_EQ(peer_cnt(v4(kPeerA4), PeerCounter::fdb_learned), 1u);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(4);
  while (entry(sw_, host_mac(0x500)) && std::chrono::steady_clock::now() < deadline) {
    step();
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_FALSE(entry(sw_, host_mac(0x500))) << "aged out";
  EXPECT_EQ(sc(sw_, SwitchCounter::aged), 1u);
  EXPECT_EQ(peer_cnt(v4(kPeerA4), PeerCounter::fdb_learned), 0u);
  auto aged = events_of(EventType::kAged);
  ASSERT_EQ(aged.size(), 1u);
  EXPECT_EQ(aged[0].mac, host_mac(0x500));
  EXPECT_EQ(aged[0].vtep, v4(kPeerA4));
  EXPECT_EQ(aged[0].port, up_) << "events name the uplink's port for remote MACs (command.h)";
}

TEST_F(VxlanCommandsTest, StaticRemoteMacBeforeUplinkWorksOnceItExists) {
  SwitchConfig open;
  open.allow_unknown_peers = true;  // A is no peer: it only holds a static MAC
  SwitchId s = create_switch(kVni, open);
  PortId l = add_port(s);
  ASSERT_TRUE(add_remote_mac(s, host_mac(0x700), v4(kPeerA4)).ok());
  local(l, make_frame(host_mac(0x700), host_mac(1), 64));
  EXPECT_EQ(sdrop(s, Drop::no_uplink), 1u);
  make_uplink(cfg4());
  step();
  auto out = wire_out();
  ASSERT_EQ(out.size(), 1u) << "the uplink resolves VTEPs that already exist";
  EXPECT_EQ(Bytes(out[0].begin() + 14, out[0].begin() + 42), arp(1, kUpMac, kVtep4, 0, kPeerA4));
  resolve4(kPeerA4, kMacA);
  Bytes f = make_frame(host_mac(0x700), host_mac(1), 64);
  local(l, f);
  out = wire_out();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(parse4(out[0]).inner, f);
  // Deleting the uplink keeps static remote entries, drops learned ones.
  wire(vx4(make_frame(kMacBroadcast, host_mac(0x501), 64)));
  recv(l);
  ASSERT_TRUE(entry(s, host_mac(0x501)));
  ASSERT_TRUE(run(cmd(CmdOp::kDeleteUplink)).ok());
  EXPECT_TRUE(entry(s, host_mac(0x700)));
  EXPECT_FALSE(entry(s, host_mac(0x501)));
  EXPECT_EQ(peer_cnt(v4(kPeerA4), PeerCounter::fdb_learned), 0u);
}

// Peers come and go; a VTEP that no switch lists and no FDB entry points at
// must give its slot back, or maxVteps is eventually reached for good.
TEST_F(VxlanCommandsTest, VtepSlotsAreReclaimed) {
  EngineOptions o = testutil::small_engine_options();
  o.max_vteps = 4;
  make_engine(o);
  SwitchId s = create_switch(kVni);
  make_uplink(cfg4());
  for (uint32_t i = 0; i < 8; ++i) {
    IpAddr ip = v4(0xC6120020 + i);
    Result r = add_peer(s, ip);
    ASSERT_TRUE(r.ok()) << "peer #" << i << ": " << r.message;
    ASSERT_TRUE(del_peer(s, ip).ok());
  }
}

// Issue 10 #13: a static remote MAC holds its VTEP; deleting the switch
// must give the slot back, or maxVteps runs out for good.
TEST_F(VxlanCommandsTest, DeletingASwitchReleasesVtepsOfItsStaticRemoteMacs) {
  EngineOptions o = testutil::small_engine_options();
  o.max_vteps = 2;
  make_engine(o);
  make_uplink(cfg4());
  for (uint32_t i = 0; i < 6; ++i) {
    SwitchId s = create_switch(kVni + i);
    Result r = add_remote_mac(s, host_mac(0x700 + i), v4(0xC6120020 + i));
    ASSERT_TRUE(r.ok()) << "round " << i << ": " << r.message;
    ASSERT_TRUE(delete_switch(s).ok());
  }
}

// ============================================================ malformed

struct BadCase {
  const char* name;
  std::function<Bytes()> build;
  Drop why;
};

TEST_F(VxlanMalformedTest, EachDefectHasItsOwnDropAndGoodTrafficContinues) {
  ASSERT_NO_FATAL_FAILURE(setup_dual());
  PortId l = locals_[0];
  const Bytes inner = make_frame(kMacBroadcast, host_mac(0x500), 64);
  auto with = [&](std::function<void(Vx4&)> f) {
    return [=] {
      Vx4 o;
      f(o);
      return vx4(inner, o);
    };
  };
  auto with6 = [&](std::function<void(Vx6&)> f) {
    return [=] {
      Vx6 o;
      f(o);
      return vx6(inner, o);
    };
  };
  std::vector<BadCase> cases = {
      {"runt", [] { return Bytes(10, 0x02); }, Drop::runt},
      {"outer dst MAC of someone else", with([](Vx4& o) { o.outer_dst = 0x02CC00000001ull; }), Drop::outer_dst_mac},
      {"IP version 5", with([](Vx4& o) { o.ip.ver_ihl = 0x55; }), Drop::outer_ip_header},
      {"IHL 4", with([](Vx4& o) { o.ip.ver_ihl = 0x44; }), Drop::outer_ip_header},
      {"IPv4 header too short for the frame",
       [] { return eth(kUpMac, kMacA, kEtherTypeIpv4, Bytes{0x45, 0, 0, 20, 0, 0}); }, Drop::outer_ip_header},
      {"bad IPv4 header checksum", with([](Vx4& o) { o.ip.bad_csum = true; }), Drop::outer_ip_checksum},
      {"total length beyond the frame", with([](Vx4& o) { o.ip.tot_delta = 1; }), Drop::outer_ip_length},
      {"total length shorter than IHL", with([](Vx4& o) { o.ip.tot_delta = -81; }), Drop::outer_ip_length},
      {"MF fragment", with([](Vx4& o) { o.ip.frag = 0x2000; }), Drop::outer_ip_fragment},
      {"non-zero fragment offset", with([](Vx4& o) { o.ip.frag = 0x0010; }), Drop::outer_ip_fragment},
      {"UDP length 7", with([](Vx4& o) { o.udp_len = 7; }), Drop::outer_udp_length},
      {"UDP length beyond the IP payload", with([](Vx4& o) { o.udp_len = 8 + 8 + 64 + 1; }),
       Drop::outer_udp_length},
      {"UDP too short for VXLAN", with([](Vx4& o) { o.udp_len = 12; }), Drop::outer_udp_length},
      {"bad UDP checksum (IPv4)", with([](Vx4& o) { o.csum = Csum::kBad; }), Drop::outer_udp_checksum},
      {"I flag clear", with([](Vx4& o) { o.flags = 0x00; }), Drop::vxlan_flags},
      {"I flag clear, other bits set", with([](Vx4& o) { o.flags = 0xF7; }), Drop::vxlan_flags},
      {"unknown VNI", with([](Vx4& o) { o.vni = 4999; }), Drop::vxlan_vni_unknown},
      {"inner frame of 13 bytes", [&] { return vx4(Bytes(inner.begin(), inner.begin() + 13)); },
       Drop::vxlan_inner_runt},
      {"empty inner frame", [&] { return vx4(Bytes()); }, Drop::vxlan_inner_runt},
      {"bad UDP checksum (IPv6)", with6([](Vx6& o) { o.csum = Csum::kBad; }), Drop::outer_udp_checksum},
      {"zero UDP checksum (IPv6, not allowed)", with6([](Vx6& o) { o.csum = Csum::kZero; }),
       Drop::outer_udp_checksum},
      {"IPv6 fragment header", with6([](Vx6& o) { o.frag_header = true; }), Drop::outer_ip_fragment},
      {"IPv6 unknown VNI", with6([](Vx6& o) { o.vni = 77; }), Drop::vxlan_vni_unknown},
      {"IPv6 payload length beyond the frame",
       [&] {
         Bytes b = vx6(inner);
         store_be16(b.data() + 18, uint16_t(get16(b, 18) + 1));
         return b;
       },
       Drop::outer_ip_length},
      {"IPv6 version 4 in an IPv6 frame",
       [&] {
         Bytes b = vx6(inner);
         b[14] = 0x40;
         return b;
       },
       Drop::outer_ip_header},
  };
  const Bytes good = vx4(inner);
  for (const BadCase& c : cases) {
    SCOPED_TRACE(c.name);
    uint64_t before = udrop(c.why), total = pc(up_, PortCounter::rx_drops);
    wire(c.build());
    EXPECT_EQ(udrop(c.why), before + 1) << "its own reason";
    EXPECT_EQ(pc(up_, PortCounter::rx_drops), total + 1) << "exactly one drop";
    EXPECT_TRUE(recv(l).empty()) << "not delivered";
    EXPECT_TRUE(wire_out().empty()) << "nothing sent back";
    wire(good);
    auto r = recv(l);
    ASSERT_EQ(r.size(), 1u) << "good packet right after still forwarded";
    EXPECT_EQ(r[0], inner);
  }
  EXPECT_EQ(ucnt(UplinkCounter::vxlan_rx), cases.size());
}

// A packet from a Linux VTEP on the same host whose inner checksum was left
// partial, that state lost on the way (AF_XDP on a veth delivers a
// CHECKSUM_PARTIAL frame as plain bytes): Linux sums the outer UDP checksum
// for the packet as it will be once the inner checksum is completed (local
// checksum offload), and the inner field holds only its pseudo-header sum.
// The inner checksum is completed and the packet delivered; with an outer
// checksum that is wrong anyway, it stays an outer_udp_checksum drop. Inner
// TCP over IPv4 and IPv6, inner UDP; outer IPv4 and IPv6.
TEST_F(VxlanMalformedTest, AHiddenPartialInnerChecksumIsCompletedWhenTheOuterChecksumThenVerifies) {
  ASSERT_NO_FATAL_FAILURE(setup_dual());
  PortId l = locals_[0];
  struct Inner {
    const char* name;
    bool v6;
    uint8_t proto;
  };
  for (const Inner& in : {Inner{"TCP/IPv4 inside", false, kIpProtoTcp}, Inner{"TCP/IPv6 inside", true, kIpProtoTcp},
                          Inner{"UDP/IPv4 inside", false, kIpProtoUdp}}) {
    for (bool outer6 : {false, true}) {
      SCOPED_TRACE(std::string(in.name) + (outer6 ? ", IPv6 outer" : ", IPv4 outer"));
      testframes::Spec spec;
      spec.dst = kMacBroadcast;
      spec.src = host_mac(0x501);
      spec.v6 = in.v6;
      spec.proto = in.proto;
      spec.payload = 333;
      const Bytes complete = testframes::build(spec).f;
      spec.full_csum = false;
      const Bytes partial = testframes::build(spec).f;
      ASSERT_NE(complete, partial);
      // The outer checksum summed over the completed packet, then the inner
      // frame as it arrives: with its checksum field still the seed.
      Bytes pkt;
      uint32_t at;
      if (outer6) {
        Vx6 o;
        o.csum = Csum::kGood;
        pkt = vx6(complete, o);
        at = kEthHeaderLen + kIpv6HeaderLen + kUdpHeaderLen + kVxlanHeaderLen;
      } else {
        Vx4 o;
        o.csum = Csum::kGood;
        pkt = vx4(complete, o);
        at = kVxlanOverhead4;
      }
      std::copy(partial.begin(), partial.end(), pkt.begin() + at);
      const uint64_t drops = udrop(Drop::outer_udp_checksum);
      wire(pkt);
      auto r = recv(l);
      ASSERT_EQ(r.size(), 1u) << "delivered";
      EXPECT_EQ(r[0], complete) << "with its inner checksum completed, nothing else changed";
      EXPECT_EQ(udrop(Drop::outer_udp_checksum), drops);
      Bytes bad = pkt;
      bad[at - kVxlanHeaderLen - 2] ^= 0x5a;  // the outer UDP checksum
      wire(bad);
      EXPECT_TRUE(recv(l).empty()) << "an outer checksum that is wrong anyway";
      EXPECT_EQ(udrop(Drop::outer_udp_checksum), drops + 1);
    }
  }
}

// Issue 10 #10: host traffic on the uplink (another of the host's
// addresses, another protocol, another UDP port) is left to the host and
// counted as to_host, never as a drop (docs/design/overlay.md).
TEST_F(VxlanMalformedTest, HostTrafficIsToHostNotADrop) {
  ASSERT_NO_FATAL_FAILURE(setup_dual());
  const Bytes inner = make_frame(kMacBroadcast, host_mac(0x500), 64);
  std::vector<std::pair<const char*, Bytes>> cases;
  Vx4 o;
  o.dst = kPeerB4;
  cases.push_back({"unicast to another address", vx4(inner, o)});
  o = Vx4{};
  o.proto = kIpProtoTcp;
  cases.push_back({"TCP to our VTEP address", vx4(inner, o)});
  o = Vx4{};
  o.dport = 53;
  cases.push_back({"UDP to another port", vx4(inner, o)});
  Vx6 o6;
  o6.dst = kPeerB6;
  cases.push_back({"IPv6 unicast to another address", vx6(inner, o6)});
  o6 = Vx6{};
  o6.dport = 4790;
  cases.push_back({"IPv6 UDP to another port", vx6(inner, o6)});
  cases.push_back({"IPv6 TCP to our address", eth(kUpMac, kMacA, kEtherTypeIpv6, ipv6(kPeerA6, kVtep6, kIpProtoTcp, 64, Bytes(20, 0)))});
  uint64_t host = ucnt(UplinkCounter::to_host);
  for (const auto& [name, frame] : cases) {
    SCOPED_TRACE(name);
    wire(frame);
    EXPECT_EQ(ucnt(UplinkCounter::to_host), ++host);
    EXPECT_EQ(pc(up_, PortCounter::rx_drops), 0u);
    EXPECT_TRUE(recv(locals_[0]).empty());
    EXPECT_TRUE(wire_out().empty());
  }
}

// Issue 10 #2: the uplink enforces its configured MTU on receive: a VXLAN
// packet from a peer on a larger-MTU underlay is a counted drop, however
// well-formed (its inner frame would be larger than the VNI's MTU).
TEST_F(VxlanMalformedTest, UplinkDropsFramesLongerThanItsMtu) {
  setup4(1);  // uplink MTU 1500: frames up to 1514 bytes
  Bytes fits = vx4(make_frame(kMacBroadcast, host_mac(0x500), 1514 - 50));
  ASSERT_EQ(fits.size(), 1514u);
  wire(fits);
  EXPECT_EQ(recv(locals_[0]).size(), 1u);
  Bytes big = vx4(make_frame(kMacBroadcast, host_mac(0x500), 1650 - 50));
  wire(big);
  EXPECT_TRUE(recv(locals_[0]).empty());
  EXPECT_EQ(udrop(Drop::oversize), 1u);
  EXPECT_EQ(pc(up_, PortCounter::rx_drops), 1u);
}

TEST_F(VxlanMalformedTest, AcceptedVariants) {
  ASSERT_NO_FATAL_FAILURE(setup_dual());
  PortId l = locals_[0];
  const Bytes inner = make_frame(kMacBroadcast, host_mac(0x500), 64);
  struct Ok {
    const char* name;
    Bytes pkt;
  };
  Vx4 reserved;
  reserved.flags = 0xFF;  // I plus every reserved bit
  reserved.reserved = 0xA5;
  Vx4 good_csum;
  good_csum.csum = Csum::kGood;
  Vx4 bcast_dst;
  bcast_dst.outer_dst = kMacBroadcast;
  std::vector<Ok> oks = {
      {"reserved bits set with I flag", vx4(inner, reserved)},
      {"valid non-zero UDP checksum over IPv4", vx4(inner, good_csum)},
      {"outer broadcast destination", vx4(inner, bcast_dst)},
      {"IPv6 with checksum", vx6(inner)},
      {"Ethernet padding after the IP packet",
       [&] {
         Bytes b = vx4(inner);
         b.insert(b.end(), 6, 0);
         return b;
       }()},
  };
  for (const Ok& o : oks) {
    SCOPED_TRACE(o.name);
    uint64_t drops = pc(up_, PortCounter::rx_drops);
    wire(o.pkt);
    auto r = recv(l);
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0], inner);
    EXPECT_EQ(pc(up_, PortCounter::rx_drops), drops);
  }
}

TEST_F(VxlanMalformedTest, ZeroUdp6ChecksumAcceptedWhenAllowed) {
  UplinkConfig u = cfg46();
  u.udp6_zero_checksum = true;
  setup4(1, {}, u, false);
  ASSERT_TRUE(add_peer(sw_, kPeerA6).ok());
  Bytes inner = make_frame(kMacBroadcast, host_mac(0x500), 64);
  Vx6 z;
  z.csum = Csum::kZero;
  wire(vx6(inner, z));
  EXPECT_EQ(recv(locals_[0]).size(), 1u);
  Vx6 bad;
  bad.csum = Csum::kBad;
  wire(vx6(inner, bad));
  EXPECT_EQ(recv(locals_[0]).size(), 0u);
  EXPECT_EQ(udrop(Drop::outer_udp_checksum), 1u) << "a non-zero checksum is still verified";
}

TEST_F(VxlanMalformedTest, UnknownPeerDeniedWhenAllowListIsOn) {
  UplinkConfig u = cfg4();
  u.allow_unknown_peers = false;
  setup4(1, {}, u, false);
  Bytes inner = make_frame(kMacBroadcast, host_mac(0x500), 64);
  Vx4 o;
  o.src = kStranger4;
  wire(vx4(inner, o));
  EXPECT_TRUE(recv(locals_[0]).empty());
  EXPECT_EQ(udrop(Drop::vxlan_peer_denied), 1u);
  EXPECT_FALSE(entry(sw_, host_mac(0x500)));
  // A VTEP that only holds a static MAC is not a peer either.
  ASSERT_TRUE(add_remote_mac(sw_, host_mac(0x501), v4(kPeerB4)).ok());
  Vx4 ob;
  ob.src = kPeerB4;
  wire(vx4(inner, ob));
  EXPECT_EQ(udrop(Drop::vxlan_peer_denied), 2u);
  wire(vx4(inner));
  EXPECT_EQ(recv(locals_[0]).size(), 1u) << "the configured peer is fine";
}

TEST_F(VxlanMalformedTest, EveryTruncationIsACountedDrop) {
  ASSERT_NO_FATAL_FAILURE(setup_dual());
  Bytes inner = make_frame(kMacBroadcast, host_mac(0x500), 64);
  {
    SCOPED_TRACE("IPv4");
    truncation_sweep(locals_[0], up_, vx4(inner), inner);
  }
  {
    SCOPED_TRACE("IPv6");
    truncation_sweep(locals_[0], up_, vx6(inner), inner);
  }
  EXPECT_TRUE(wire_out().empty());
}

TEST_F(VxlanMalformedTest, RandomCorruptionNeverCrashesOrLeaks) {
  ASSERT_NO_FATAL_FAILURE(setup_dual());
  std::mt19937 rng(4789);
  Bytes inner = make_frame(kMacBroadcast, host_mac(0x500), 64);
  const Bytes base[2] = {vx4(inner), vx6(inner)};
  uint64_t rx0 = pc(up_, PortCounter::rx_packets);
  for (int i = 0; i < 3000; ++i) {
    Bytes b = base[i & 1];
    int flips = 1 + int(rng() % 4);
    for (int k = 0; k < flips; ++k) b[rng() % 60] ^= uint8_t(1u << (rng() % 8));
    if (rng() % 4 == 0) b.resize(rng() % b.size());
    send(up_, {b});
    if (i % 64 == 63) {
      step();
      recv(locals_[0]);
      wire_out();
    }
  }
  step();
  recv(locals_[0]);
  wire_out();
  EXPECT_EQ(pc(up_, PortCounter::rx_packets), rx0 + 3000);
  wire(base[0]);
  EXPECT_EQ(recv(locals_[0]).size(), 1u);
  // Every buffer comes back: after the engine is destroyed the pool is full.
  destroy_all();
  EXPECT_EQ(pool_->available(), pool_->count());
}

// ============================================================ commands

TEST_F(VxlanCommandsTest, UplinkValidation) {
  UplinkConfig none;
  EXPECT_EQ(try_uplink(none).status, Status::kInvalidArgument) << "no address";
  UplinkConfig p0 = cfg4();
  p0.prefix4 = 0;
  EXPECT_EQ(try_uplink(p0).status, Status::kInvalidArgument);
  UplinkConfig p33 = cfg4();
  p33.prefix4 = 33;
  EXPECT_EQ(try_uplink(p33).status, Status::kInvalidArgument);
  UplinkConfig p129 = cfg46();
  p129.prefix6 = 129;
  EXPECT_EQ(try_uplink(p129).status, Status::kInvalidArgument);
  UplinkConfig gw = cfg4();
  gw.gateway4 = v4(0xC6120101);  // 198.18.1.1, not in 198.18.0.0/24
  Result r = try_uplink(gw);
  EXPECT_EQ(r.status, Status::kInvalidArgument);
  EXPECT_NE(r.message.find("gateway4"), std::string::npos) << r.message;
  UplinkConfig gw6 = cfg46();
  gw6.gateway6 = v6("2001:db8:1::1");
  EXPECT_EQ(try_uplink(gw6).status, Status::kInvalidArgument);
  UplinkConfig fam = cfg4();
  fam.ip6 = v4(kPeerA4);
  EXPECT_EQ(try_uplink(fam).status, Status::kInvalidArgument) << "IPv4 address given as ip6";
  UplinkConfig range = cfg4();
  range.src_port_min = 60000;
  range.src_port_max = 50000;
  EXPECT_EQ(try_uplink(range).status, Status::kInvalidArgument);
  EXPECT_EQ(try_uplink(cfg4(), 1500, kMacBroadcast).status, Status::kInvalidArgument) << "multicast MAC";
  EXPECT_EQ(try_uplink(cfg4(), 1500, 0).status, Status::kInvalidArgument) << "no MAC";
  ASSERT_TRUE(try_uplink(cfg4()).ok());
  EXPECT_EQ(try_uplink(cfg46()).status, Status::kAlreadyExists);

  EngineOptions o = testutil::small_engine_options();
  o.pool.headroom = 64;
  make_engine(o);
  r = try_uplink(cfg4());
  EXPECT_EQ(r.status, Status::kInvalidArgument);
  EXPECT_NE(r.message.find("headroom"), std::string::npos) << r.message;
}

TEST_F(VxlanCommandsTest, DeleteUplinkWithPeersIsInUse) {
  SwitchId s = create_switch(kVni);
  make_uplink(cfg4());
  ASSERT_TRUE(add_peer(s, v4(kPeerA4)).ok());
  Result r = run(cmd(CmdOp::kDeleteUplink));
  EXPECT_EQ(r.status, Status::kInUse);
  ASSERT_TRUE(del_peer(s, v4(kPeerA4)).ok());
  EXPECT_TRUE(run(cmd(CmdOp::kDeleteUplink)).ok());
  EXPECT_EQ(run(cmd(CmdOp::kDeleteUplink)).status, Status::kNotFound);
  // A new uplink can be created afterwards.
  peers_.erase(up_);
  make_uplink(cfg4());
}

// A switch that takes VXLAN only from its peers hears no more from a peer it
// removed: the MACs learned behind it go at once, and frames to them flood to
// the peers left (the VTEP may have changed its address, or the guest moved)
// instead of going to the removed VTEP until they age. Static remote entries
// stay: they name their VTEP themselves.
TEST_F(VxlanCommandsTest, DeletingAPeerForgetsTheMacsLearnedBehindIt) {
  setup4(1);
  wire(vx4(make_frame(kMacBroadcast, host_mac(0x500), 64)));
  recv(locals_[0]);
  ASSERT_TRUE(entry(sw_, host_mac(0x500)));
  ASSERT_TRUE(add_remote_mac(sw_, host_mac(0x501), v4(kPeerA4)).ok());
  ASSERT_TRUE(del_peer(sw_, v4(kPeerA4)).ok());
  EXPECT_EQ(del_peer(sw_, v4(kPeerA4)).status, Status::kNotFound);
  EXPECT_FALSE(entry(sw_, host_mac(0x500)));
  auto st = entry(sw_, host_mac(0x501));
  ASSERT_TRUE(st);
  EXPECT_EQ(st->vtep, v4(kPeerA4));
  // The forgotten MAC is unknown unicast now: it floods to B, the peer left.
  local(locals_[0], make_frame(host_mac(0x500), host_mac(1), 64));
  auto out = wire_out();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(parse4(out[0]).dip, kPeerB4);
}

// With unknown peers allowed the removed VTEP may still send: what was
// learned behind it stays until it ages.
TEST_F(VxlanCommandsTest, DeletingAPeerKeepsLearnedEntriesWhereUnknownPeersAreAllowed) {
  SwitchConfig open;
  open.allow_unknown_peers = true;
  setup4(1, open);
  wire(vx4(make_frame(kMacBroadcast, host_mac(0x500), 64)));
  recv(locals_[0]);
  ASSERT_TRUE(del_peer(sw_, v4(kPeerA4)).ok());
  auto e = entry(sw_, host_mac(0x500));
  ASSERT_TRUE(e);
  EXPECT_EQ(e->vtep, v4(kPeerA4));
  // Unicast to the learned MAC still reaches A; broadcasts go to B only.
  local(locals_[0], make_frame(host_mac(0x500), host_mac(1), 64));
  auto out = wire_out();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(parse4(out[0]).dip, kPeerA4);
  local(locals_[0], make_frame(kMacBroadcast, host_mac(1), 64));
  out = wire_out();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(parse4(out[0]).dip, kPeerB4);
}

TEST_F(VxlanCommandsTest, DeletingASwitchWithPeersIsInUse) {
  SwitchId s = create_switch(kVni);
  make_uplink(cfg4());
  ASSERT_TRUE(add_peer(s, v4(kPeerA4)).ok());
  EXPECT_EQ(delete_switch(s).status, Status::kInUse);
  ASSERT_TRUE(del_peer(s, v4(kPeerA4)).ok());
  EXPECT_TRUE(delete_switch(s).ok());
}

TEST_F(VxlanCommandsTest, PeerCannotBeOwnVtepAddress) {
  SwitchId s = create_switch(kVni);
  make_uplink(cfg46());
  EXPECT_EQ(add_peer(s, v4(kVtep4)).status, Status::kInvalidArgument);
  EXPECT_EQ(add_peer(s, kVtep6).status, Status::kInvalidArgument);
  EXPECT_EQ(add_peer(s, IpAddr{}).status, Status::kInvalidArgument) << "zero";
  EXPECT_EQ(add_peer(s, IpAddr::from_v4(0xF0000001u)).status, Status::kInvalidArgument) << "240.0.0.1: reserved";
  const UplinkConfig u = cfg46();
  const uint32_t host = ~(~0u << (32 - u.prefix4));
  EXPECT_EQ(add_peer(s, IpAddr::from_v4(u.ip4.v4() | host)).status, Status::kInvalidArgument) << "the subnet's broadcast";
  EXPECT_EQ(add_peer(s, IpAddr::from_v4(u.ip4.v4() & ~host)).status, Status::kInvalidArgument) << "the subnet's network";
  EXPECT_EQ(add_peer(99, v4(kPeerA4)).status, Status::kNotFound);
  EXPECT_TRUE(add_peer(s, v4(kPeerA4)).ok());
  EXPECT_TRUE(add_peer(s, v4(kPeerA4)).ok()) << "idempotent";
  // Idempotent re-add must not count twice: one delete removes it.
  ASSERT_TRUE(del_peer(s, v4(kPeerA4)).ok());
  EXPECT_TRUE(delete_switch(s).ok());
}

// A switch whose ports and peers are gone may still hold MACs learned behind
// a VTEP (deleting a peer keeps them). Deleting it must not touch freed
// members. Run in a child process so a crash fails this test only.
TEST_F(VxlanCommandsTest, DeleteSwitchWithLearnedRemoteEntries) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  // Unknown peers allowed: the learned entry outlives its peer (otherwise
  // deleting the peer forgets it).
  SwitchConfig open;
  open.allow_unknown_peers = true;
  EXPECT_EXIT(
      {
        setup4(1, open);
        wire(vx4(make_frame(kMacBroadcast, host_mac(0x500), 64)));
        recv(locals_[0]);
        if (!del_peer(sw_, v4(kPeerA4)).ok() || !del_peer(sw_, v4(kPeerB4)).ok()) std::_Exit(10);
        if (!delete_port(locals_[0]).ok()) std::_Exit(11);
        if (fdb(sw_).size() != 1) std::_Exit(12);
        if (!delete_switch(sw_).ok()) std::_Exit(13);
        if (peer_cnt(v4(kPeerA4), PeerCounter::fdb_learned) != 0) std::_Exit(14);
        std::_Exit(0);
      },
      ::testing::ExitedWithCode(0), "");
}

// ============================================================ offloads

class VxlanOffloadTest : public VxlanFixture {
 protected:
  // setup4 plus a remote MAC behind peer A; returns a spec addressed to it.
  testframes::Spec to_remote(uint32_t payload) {
    setup4(1);
    return to_mac_behind_a(payload);
  }
  // A jumbo underlay: uplink MTU 9000 (inner MTU 8950), one local port at
  // 9000, peer A resolved; a remote MAC behind it, as to_remote().
  testframes::Spec to_remote_jumbo(uint32_t payload) {
    sw_ = create_switch(kVni);
    PortConfig pc;
    pc.mtu = 9000;
    locals_.push_back(add_port(sw_, pc));
    make_uplink(cfg4(), 9000);
    EXPECT_TRUE(add_peer(sw_, v4(kPeerA4)).ok());
    step();
    wire_out();
    resolve4(kPeerA4, kMacA);
    return to_mac_behind_a(payload);
  }
  testframes::Spec to_mac_behind_a(uint32_t payload) {
    EXPECT_TRUE(add_remote_mac(sw_, host_mac(0x700), v4(kPeerA4)).ok());
    testframes::Spec sp;
    sp.dst = host_mac(0x700);
    sp.src = host_mac(1);
    sp.payload = payload;
    sp.full_csum = false;
    return sp;
  }
  void local_meta(PortId p, const Bytes& f, const OffloadMeta& m) {
    ASSERT_TRUE(peer(p).send_meta(f.data(), uint32_t(f.size()), m));
    step();
  }
};

TEST_F(VxlanOffloadTest, SuperFrameIsSegmentedToTheInnerMtuThenEncapsulated) {
  uplink_pipe.tx_offloads = kOffAll & ~kOffUso;  // an uplink that takes no UDP GSO
  testframes::Spec sp = to_remote(30000);
  testframes::Built b = testframes::build(sp);
  local_meta(locals_[0], b.f, testutil::tso_meta(b, false, 1448));
  std::vector<Bytes> inner;
  for (const Bytes& o : wire_out()) {
    EXPECT_LE(o.size(), 1514u) << "every outer packet within the uplink MTU";
    Sent4 s = parse4(o);
    EXPECT_EQ(s.dip, kPeerA4);
    EXPECT_EQ(s.vni, kVni);
    inner.push_back(s.inner);
  }
  // Inner MTU 1500 - 50 = 1450: 1410-byte segments, below the sender's 1448.
  testutil::expect_segments(inner, b, false, 1450, 1410);
  EXPECT_EQ(pc(up_, PortCounter::tx_gso_frames), 1u);
  EXPECT_EQ(pc(up_, PortCounter::tx_gso_segments), inner.size());
  EXPECT_EQ(peer_cnt(v4(kPeerA4), PeerCounter::tx_packets), inner.size());
  EXPECT_EQ(ucnt(UplinkCounter::vxlan_tx), inner.size());
}

TEST_F(VxlanOffloadTest, PartialChecksumIsCompletedBeforeEncapsulation) {
  testframes::Spec sp = to_remote(501);
  testframes::Built b = testframes::build(sp);
  OffloadMeta m = testutil::tso_meta(b, false, 0);
  m.gso_type = OffloadMeta::kGsoNone;
  local_meta(locals_[0], b.f, m);
  auto out = wire_out();
  ASSERT_EQ(out.size(), 1u);
  Bytes in = parse4(out[0]).inner;
  ASSERT_EQ(in.size(), b.f.size());
  const uint32_t l4_len = uint32_t(in.size()) - b.l4_off;
  EXPECT_EQ(testframes::ref_sum(in.data() + b.l4_off, l4_len,
                                testframes::ref_pseudo(in.data() + b.l3_off, kIpProtoTcp, l4_len)),
            0xFFFFu);
  EXPECT_EQ(pc(up_, PortCounter::tx_csum_completed), 1u);
}

// Over a jumbo underlay (uplink MTU 9000, inner MTU 8950) a guest's full-
// sized segment with a partial checksum (not a TSO batch) is larger than a
// regular buffer: it is completed and encapsulated where it is, in its
// large buffer. Before, it was answered with ICMP at 8950 (what the guest
// already had) and dropped, and TCP between jumbo guests collapsed. One
// byte more than the inner MTU is still answered and dropped.
TEST_F(VxlanOffloadTest, AJumboFrameLargerThanARegularBufferIsEncapsulatedWhenItFitsTheInnerMtu) {
  testframes::Spec sp = to_remote_jumbo(8950 - 40);  // IP 8950: the inner MTU exactly
  testframes::Built b = testframes::build(sp);
  ASSERT_GT(b.f.size(), engine().pool()->max_frame()) << "the frame needs a large buffer";
  OffloadMeta m = testutil::tso_meta(b, false, 0);
  m.gso_type = OffloadMeta::kGsoNone;
  local_meta(locals_[0], b.f, m);
  auto out = wire_out();
  ASSERT_EQ(out.size(), 1u) << "encapsulated, not dropped";
  EXPECT_EQ(out[0].size(), b.f.size() + kVxlanOverhead4);
  Bytes in = parse4(out[0]).inner;
  ASSERT_EQ(in.size(), b.f.size());
  const uint32_t l4_len = uint32_t(in.size()) - b.l4_off;
  EXPECT_EQ(testframes::ref_sum(in.data() + b.l4_off, l4_len,
                                testframes::ref_pseudo(in.data() + b.l3_off, kIpProtoTcp, l4_len)),
            0xFFFFu)
      << "its checksum completed";
  EXPECT_EQ(udrop(Drop::vxlan_too_big), 0u);
  EXPECT_TRUE(recv(locals_[0]).empty()) << "no ICMP back";

  sp.payload += 1;  // IP 8951
  testframes::Built big = testframes::build(sp);
  OffloadMeta mb = testutil::tso_meta(big, false, 0);
  mb.gso_type = OffloadMeta::kGsoNone;
  local_meta(locals_[0], big.f, mb);
  EXPECT_TRUE(wire_out().empty());
  EXPECT_EQ(udrop(Drop::vxlan_too_big), 1u);
  auto back = recv(locals_[0]);
  ASSERT_EQ(back.size(), 1u) << "Fragmentation Needed back to the guest";
  EXPECT_EQ(get16(back[0], 40), 8950) << "the inner MTU";
}

// A TSO batch of one segment that fits the inner MTU (what an AF_XDP port
// makes of a jumbo TCP frame: ports/afxdp.cc, infer_tso) is encapsulated
// whole, its checksum completed. Before, it went to segmentation, which cuts
// to what a regular buffer holds: three VXLAN packets for one segment.
TEST_F(VxlanOffloadTest, ABatchOfOneSegmentIsEncapsulatedWholeNotCutToABuffer) {
  testframes::Spec sp = to_remote_jumbo(5000);
  sp.full_csum = false;
  testframes::Built b = testframes::build(sp);
  ASSERT_GT(b.f.size(), engine().pool()->max_frame());
  local_meta(locals_[0], b.f, testutil::tso_meta(b, false, 8948));
  auto out = wire_out();
  ASSERT_EQ(out.size(), 1u) << "one segment, one VXLAN packet";
  Bytes in = parse4(out[0]).inner;
  ASSERT_EQ(in.size(), b.f.size());
  EXPECT_TRUE(std::equal(b.f.begin() + b.hdr_len, b.f.end(), in.begin() + b.hdr_len)) << "payload";
  const uint32_t l4_len = uint32_t(in.size()) - b.l4_off;
  EXPECT_EQ(testframes::ref_sum(in.data() + b.l4_off, l4_len,
                                testframes::ref_pseudo(in.data() + b.l3_off, kIpProtoTcp, l4_len)),
            0xFFFFu)
      << "its checksum completed";
  EXPECT_EQ(pc(up_, PortCounter::tx_gso_frames), 0u) << "not segmented";
  EXPECT_EQ(pc(up_, PortCounter::tx_drops), 0u);
}

TEST_F(VxlanOffloadTest, TooBigForTheOverlayIsAnsweredWithTheInnerMtu) {
  testframes::Spec sp = to_remote(1440);  // IP 1480: fits the local MTU, not the overlay (1450)
  sp.full_csum = true;
  local(locals_[0], testframes::build(sp).f);
  EXPECT_TRUE(wire_out().empty());
  EXPECT_EQ(udrop(Drop::vxlan_too_big), 1u);
  auto back = recv(locals_[0]);
  ASSERT_EQ(back.size(), 1u) << "Fragmentation Needed back to the guest";
  const Bytes& a = back[0];
  EXPECT_EQ(get_mac(a, 0), sp.src);
  EXPECT_EQ(a[14 + 9], kIpProtoIcmp);
  EXPECT_EQ(a[34], 3);
  EXPECT_EQ(a[35], 4);
  EXPECT_EQ(get16(a, 40), 1450) << "the overlay's inner MTU, as Linux's vxlan reports it";
  EXPECT_EQ(cnt_read(engine().engine_counters().c[size_t(EngineCounter::icmp_too_big_sent)]), 1u);
}

// An uplink configured above its interface's MTU (1600 on a NIC of 1500)
// goes by what the interface takes: a packet that fits the configured
// overlay (inner 1550) but not the NIC's (1450) is answered with 1450, not
// encapsulated to be dropped at the NIC unanswered (egress_too_big).
class NicMtu1500 : public testutil::WrappedPipe {
 public:
  using WrappedPipe::WrappedPipe;
  const char* kind() const override { return "mtu-pipe"; }
  uint32_t tx_frame_limit() const override { return 1500 + 14; }
};

TEST_F(VxlanOffloadTest, AnUplinkAboveItsInterfacesMtuAnswersWithTheInterfacesInnerMtu) {
  uplink_wrap_ = [](std::unique_ptr<Port> p) -> std::unique_ptr<Port> { return std::make_unique<NicMtu1500>(std::move(p)); };
  uplink_mtu_ = 1600;
  testframes::Spec sp = to_remote(1440);  // IP 1480: within 1550, not within 1450
  sp.full_csum = true;
  local(locals_[0], testframes::build(sp).f);
  EXPECT_TRUE(wire_out().empty());
  EXPECT_EQ(udrop(Drop::vxlan_too_big), 1u);
  EXPECT_EQ(udrop(Drop::egress_too_big), 0u);
  auto back = recv(locals_[0]);
  ASSERT_EQ(back.size(), 1u) << "Fragmentation Needed back to the guest";
  EXPECT_EQ(get16(back[0], 40), 1450) << "the interface's inner MTU";
  // What fits the interface goes.
  sp = to_mac_behind_a(1400);
  sp.full_csum = true;
  local(locals_[0], testframes::build(sp).f);
  EXPECT_EQ(wire_out().size(), 1u);
}

TEST_F(VxlanOffloadTest, DecapsulatedFramesArePlainAndOuterStateIsHonoured) {
  setup4(1);
  Bytes inner = make_frame(kMacBroadcast, host_mac(0x500), 200);
  // A checksum the backend says the kernel verified is not checked again
  // (here it is wrong on purpose).
  Vx4 o;
  o.csum = Csum::kBad;
  Bytes pkt = vx4(inner, o);
  OffloadMeta valid;
  valid.flags = OffloadMeta::kDataValid;
  ASSERT_TRUE(peer(up_).send_meta(pkt.data(), uint32_t(pkt.size()), valid));
  step();
  Pkt pk[4];
  ASSERT_EQ(peer(locals_[0]).recv(pk, 4), 1u);
  EXPECT_FALSE(pkt_has_meta(pk[0])) << "decapsulated frames carry no state";
  EXPECT_EQ(Bytes(pool_->frame(pk[0]), pool_->frame(pk[0]) + pk[0].len), inner);
  peer(locals_[0]).cache().free(pk[0].buf);
  // An outer super-frame is refused, counted.
  OffloadMeta gso;
  gso.gso_type = OffloadMeta::kGsoUdpL4;
  gso.gso_size = 1000;
  ASSERT_TRUE(peer(up_).send_meta(pkt.data(), uint32_t(pkt.size()), gso));
  step();
  EXPECT_TRUE(recv(locals_[0]).empty());
  EXPECT_EQ(udrop(Drop::gso_unsupported), 1u);
}

// A VTEP on the same host over a veth underlay (Linux's vxlan device with tx
// checksumming on) hands over VXLAN whose *inner* TCP checksum is partial:
// the state travels with the decapsulated frame, its offsets moved to the
// inner frame, so the guest's port gets it as a partial checksum (or
// completed, for a port that takes none).
TEST_F(VxlanOffloadTest, AnInnerPartialChecksumTravelsWithTheDecapsulatedFrame) {
  setup4(1);
  testframes::Spec sp;
  sp.dst = kMacBroadcast;
  sp.src = host_mac(0x500);
  sp.payload = 300;
  sp.full_csum = false;
  testframes::Built b = testframes::build(sp);
  Vx4 o;
  Bytes pkt = vx4(b.f, o);
  const uint16_t outer = uint16_t(pkt.size() - b.f.size());
  OffloadMeta partial;
  partial.flags = OffloadMeta::kNeedsCsum;
  partial.csum_start = uint16_t(outer + b.l4_off);
  partial.csum_offset = 16;  // TCP checksum field
  ASSERT_TRUE(peer(up_).send_meta(pkt.data(), uint32_t(pkt.size()), partial));
  step();
  Pkt pk[4];
  ASSERT_EQ(peer(locals_[0]).recv(pk, 4), 1u);
  ASSERT_TRUE(pkt_has_meta(pk[0])) << "the partial checksum goes with the inner frame";
  OffloadMeta m = pool_->meta(pk[0].buf);
  EXPECT_TRUE(m.needs_csum());
  EXPECT_EQ(m.csum_start, b.l4_off) << "moved to the inner frame";
  EXPECT_EQ(m.csum_offset, 16u);
  Bytes in(pool_->frame(pk[0]), pool_->frame(pk[0]) + pk[0].len);
  ASSERT_TRUE(csum_complete(in.data(), uint32_t(in.size()), m));
  const uint32_t l4_len = uint32_t(in.size()) - b.l4_off;
  EXPECT_EQ(testframes::ref_sum(in.data() + b.l4_off, l4_len,
                                testframes::ref_pseudo(in.data() + b.l3_off, kIpProtoTcp, l4_len)),
            0xFFFFu);
  peer(locals_[0]).cache().free(pk[0].buf);
}

// ------------------------------------------------------------ per switch and peer

// Counters per switch and peer (issue 15): one VNI's traffic with one remote
// VTEP, beside the peer's totals over every VNI.
class SwitchPeerCountersTest : public VxlanFixture {
 protected:
  // The block of switch s with the peer at ip, or nullptr when none is in use.
  const SwitchPeerCounterBlock* sp_block(SwitchId s, const IpAddr& ip) {
    uint32_t slot = kNoPeer;
    for (uint32_t i = 0; i < engine().options().max_vteps; ++i) {
      const PeerCounterBlock& b = engine().peer_counters(i);
      if (cnt_read(b.in_use) && std::memcmp(b.ip, ip.b, 16) == 0) slot = i;
    }
    if (slot == kNoPeer) return nullptr;
    const SwitchPeerBlocks& all = engine().switch_peer_counters();
    for (MemberId m = 0; m < all.size(); ++m) {
      const SwitchPeerCounterBlock& b = all.at(m);
      if (cnt_read(b.in_use) && cnt_read(b.owner) == (uint64_t(s) << 32 | slot)) return &b;
    }
    return nullptr;
  }
  uint64_t sp(SwitchId s, const IpAddr& ip, SwitchPeerCounter k) {
    const SwitchPeerCounterBlock* b = sp_block(s, ip);
    if (b == nullptr) ADD_FAILURE() << "no counters for switch " << s << " and peer " << ip_format(ip);
    return b == nullptr ? 0 : cnt_read(b->c[size_t(k)]);
  }
};

TEST_F(SwitchPeerCountersTest, TwoVnisToOnePeerCountApart) {
  setup4(1, {}, cfg4(), false);  // switch sw_ (VNI kVni) with peer A
  SwitchId sw2 = create_switch(kVni + 1);
  PortId l2 = add_port(sw2);
  ASSERT_TRUE(add_peer(sw2, v4(kPeerA4)).ok());
  step();
  wire_out();
  Vx4 to2;
  to2.vni = kVni + 1;
  for (int i = 0; i < 3; ++i) wire(vx4(make_frame(kMacBroadcast, host_mac(0x500), 64)));
  for (int i = 0; i < 5; ++i) wire(vx4(make_frame(kMacBroadcast, host_mac(0x600), 100), to2));
  for (int i = 0; i < 2; ++i) local(locals_[0], make_frame(kMacBroadcast, host_mac(1), 80));
  local(l2, make_frame(kMacBroadcast, host_mac(2), 90));
  EXPECT_EQ(wire_out().size(), 3u);
  EXPECT_EQ(recv(locals_[0]).size(), 3u);
  EXPECT_EQ(recv(l2).size(), 5u);

  EXPECT_EQ(sp(sw_, v4(kPeerA4), SwitchPeerCounter::rx_packets), 3u);
  EXPECT_EQ(sp(sw_, v4(kPeerA4), SwitchPeerCounter::rx_bytes), 3u * 64);
  EXPECT_EQ(sp(sw_, v4(kPeerA4), SwitchPeerCounter::tx_packets), 2u);
  EXPECT_EQ(sp(sw_, v4(kPeerA4), SwitchPeerCounter::tx_bytes), 2u * 80);
  EXPECT_EQ(sp(sw2, v4(kPeerA4), SwitchPeerCounter::rx_packets), 5u);
  EXPECT_EQ(sp(sw2, v4(kPeerA4), SwitchPeerCounter::rx_bytes), 5u * 100);
  EXPECT_EQ(sp(sw2, v4(kPeerA4), SwitchPeerCounter::tx_packets), 1u);
  EXPECT_EQ(sp(sw2, v4(kPeerA4), SwitchPeerCounter::tx_bytes), 90u);
  // The peer's own counters stay its totals over both VNIs.
  EXPECT_EQ(peer_cnt(v4(kPeerA4), PeerCounter::rx_packets), 8u);
  EXPECT_EQ(peer_cnt(v4(kPeerA4), PeerCounter::tx_packets), 3u);

  // A drop on the way to the peer counts on the switch it belongs to.
  local(l2, make_frame(kMacBroadcast, host_mac(2), 1480));  // inner 1480 + 36 > uplink MTU 1500
  EXPECT_EQ(sp(sw2, v4(kPeerA4), SwitchPeerCounter::drops), 1u);
  EXPECT_EQ(sp(sw_, v4(kPeerA4), SwitchPeerCounter::drops), 0u);
  EXPECT_EQ(peer_cnt(v4(kPeerA4), PeerCounter::drops), 1u);

  // Deleting a switch closes its block; the other switch's stays, and the
  // peer's totals keep what the closed one carried.
  ASSERT_TRUE(del_peer(sw2, v4(kPeerA4)).ok());
  ASSERT_TRUE(delete_port(l2).ok());
  EXPECT_NE(sp_block(sw2, v4(kPeerA4)), nullptr) << "a MAC learned behind the peer keeps the membership";
  ASSERT_TRUE(delete_switch(sw2).ok());
  EXPECT_EQ(sp_block(sw2, v4(kPeerA4)), nullptr);
  EXPECT_EQ(sp(sw_, v4(kPeerA4), SwitchPeerCounter::rx_packets), 3u);
  EXPECT_EQ(peer_cnt(v4(kPeerA4), PeerCounter::rx_packets), 8u);
  EXPECT_EQ(peer_cnt(v4(kPeerA4), PeerCounter::rx_bytes), 3u * 64 + 5u * 100);
  EXPECT_EQ(peer_cnt(v4(kPeerA4), PeerCounter::tx_packets), 3u);
  EXPECT_EQ(peer_cnt(v4(kPeerA4), PeerCounter::tx_bytes), 2u * 80 + 90u);
}

TEST_F(SwitchPeerCountersTest, AReusedMembershipStartsFromZero) {
  setup4(1, {}, cfg4(), false);
  SwitchId sw2 = create_switch(kVni + 1);  // no local ports: it can be deleted
  ASSERT_TRUE(add_peer(sw2, v4(kPeerA4)).ok());
  Vx4 to2;
  to2.vni = kVni + 1;
  wire(vx4(make_frame(kMacBroadcast, host_mac(0x600), 64), to2));
  const SwitchPeerCounterBlock* old = sp_block(sw2, v4(kPeerA4));
  ASSERT_NE(old, nullptr);
  EXPECT_EQ(cnt_read(old->c[size_t(SwitchPeerCounter::rx_packets)]), 1u);
  const uint64_t gen = cnt_read(old->generation);
  ASSERT_TRUE(del_peer(sw2, v4(kPeerA4)).ok());
  ASSERT_TRUE(delete_switch(sw2).ok());
  EXPECT_EQ(cnt_read(old->in_use), 0u);
  // The next membership takes the freed slot and its block, from zero.
  SwitchId sw3 = create_switch(kVni + 2);
  ASSERT_TRUE(add_peer(sw3, v4(kPeerA4)).ok());
  const SwitchPeerCounterBlock* b = sp_block(sw3, v4(kPeerA4));
  ASSERT_EQ(b, old) << "the member slot is reused";
  EXPECT_EQ(cnt_read(b->c[size_t(SwitchPeerCounter::rx_packets)]), 0u);
  EXPECT_NE(cnt_read(b->generation), gen);
  EXPECT_EQ(sp(sw_, v4(kPeerA4), SwitchPeerCounter::rx_packets), 0u);
}

// ------------------------------------------------------------ super-frames across the underlay

// What the uplink's pipe got, with its state (a batch comes in a large buffer).
struct Out {
  Bytes f;
  bool meta = false;
  OffloadMeta m;
};

class VxlanUsoTest : public VxlanOffloadTest {
 protected:
  std::vector<Out> wire_out_meta() {
    std::vector<Out> out;
    Pkt pk[64];
    uint32_t n;
    while ((n = peer(up_).recv(pk, 64)) > 0) {
      for (uint32_t i = 0; i < n; ++i) {
        Out o;
        o.f.assign(pool_->frame(pk[i]), pool_->frame(pk[i]) + pk[i].len);
        o.meta = pkt_has_meta(pk[i]);
        if (o.meta) o.m = pool_->meta(pk[i].buf);
        out.push_back(o);
        peer(up_).cache().free(pk[i].buf);
      }
    }
    return out;
  }
  // The first n segments of b at mss, as proto/gso.h cuts them.
  static std::vector<Bytes> segments_of(const testframes::Built& b, const FrameLayout& L, uint16_t mss, uint32_t n) {
    std::vector<Bytes> out;
    for (uint32_t i = 0; i < n; ++i) {
      Bytes seg(L.hdr_len + mss);
      seg.resize(gso_write_segment(b.f.data(), uint32_t(b.f.size()), L, mss, i, seg.data(), uint32_t(seg.size())));
      out.push_back(seg);
    }
    return out;
  }
  // The n segments of b at mss, each but the first behind its own VXLAN
  // header: a USO batch after its first VXLAN header (vx4/vx6 write that one).
  static Bytes uso_chunks(const testframes::Built& b, const FrameLayout& L, uint16_t mss, uint32_t n) {
    Bytes rest;
    const Bytes h = vxlan_hdr(kVni);
    for (const Bytes& seg : segments_of(b, L, mss, n)) {
      if (!rest.empty()) rest.insert(rest.end(), h.begin(), h.end());
      rest.insert(rest.end(), seg.begin(), seg.end());
    }
    return rest;
  }
  // One USO batch of the segments of b at mss, as another switch sends it:
  // outer headers from peer A, then VXLAN header + segment, chunk by chunk.
  std::pair<Bytes, OffloadMeta> batch_from_a(const testframes::Built& b, uint16_t mss, uint32_t* chunk,
                                             uint32_t* segments) {
    FrameLayout L;
    EXPECT_TRUE(frame_layout(b.f.data(), uint32_t(b.f.size()), &L));
    OffloadMeta tso = testutil::tso_meta(b, false, mss);
    const uint32_t n = gso_segments(b.f.data(), uint32_t(b.f.size()), tso, L, mss);
    Bytes rest = uso_chunks(b, L, mss, n);  // vx4 writes the first VXLAN header
    *chunk = kVxlanHeaderLen + L.hdr_len + mss;
    *segments = n;
    OffloadMeta m;
    m.flags = OffloadMeta::kNeedsCsum;
    m.gso_type = OffloadMeta::kGsoUdpL4;
    m.gso_size = uint16_t(*chunk);
    m.csum_start = 34;
    m.csum_offset = 6;
    m.hdr_len = 42;
    return {vx4(rest), m};
  }
  // The outer packets a UDP GSO batch becomes, cut as the kernel cuts it
  // (here proto/gso.h, which does the same); empty when it is not one.
  static std::vector<Bytes> cut_batch(const Out& o) {
    std::vector<Bytes> out;
    FrameLayout L;
    if (!frame_layout(o.f.data(), uint32_t(o.f.size()), &L)) return out;
    const uint32_t n = gso_segments(o.f.data(), uint32_t(o.f.size()), o.m, L, o.m.gso_size);
    for (uint32_t i = 0; i < n; ++i) {
      Bytes pkt(L.hdr_len + o.m.gso_size);
      pkt.resize(gso_write_segment(o.f.data(), uint32_t(o.f.size()), L, o.m.gso_size, i, pkt.data(), uint32_t(pkt.size())));
      out.push_back(pkt);
    }
    return out;
  }
  // The inner frames of an IPv4 batch (outer headers, then chunk after
  // chunk of VXLAN header + frame), one by one.
  static std::vector<Bytes> inner_frames(const Bytes& pkt, uint32_t chunk) {
    std::vector<Bytes> out;
    for (size_t at = 42; at < pkt.size(); at += chunk)
      out.emplace_back(pkt.begin() + at + 8, pkt.begin() + std::min(pkt.size(), at + chunk));
    return out;
  }
  // setup4(1) and a guest's TCP super-frame (checksum-partial) that peer A's
  // side sends to a MAC the switch does not know (flooded to the port).
  testframes::Built from_remote(uint32_t payload) {
    setup4(1);
    testframes::Spec sp;
    sp.dst = host_mac(0x600);
    sp.src = host_mac(0x500);
    sp.payload = payload;
    sp.full_csum = false;
    return testframes::build(sp);
  }
  void send_up(const Bytes& f, const OffloadMeta& m) {
    ASSERT_TRUE(peer(up_).send_meta(f.data(), uint32_t(f.size()), m));
    step();
  }
};

// An uplink that takes UDP GSO gets the segments of a super-frame batched:
// one frame with outer headers once and VXLAN header + segment per chunk.
// Cut the way the kernel cuts a UDP GSO frame (here proto/gso.h, which does
// the same), it gives exactly the packets the switch sends one by one.
TEST_F(VxlanUsoTest, SuperFrameLeavesAsOneUdpGsoBatch) {
  testframes::Spec sp = to_remote(30000);
  testframes::Built b = testframes::build(sp);
  local_meta(locals_[0], b.f, testutil::tso_meta(b, false, 1448));
  std::vector<Out> out = wire_out_meta();
  ASSERT_EQ(out.size(), 1u) << "22 segments fit one batch";
  const Out& o = out[0];
  ASSERT_TRUE(o.meta);
  EXPECT_EQ(o.m.gso_kind(), OffloadMeta::kGsoUdpL4);
  EXPECT_TRUE(o.m.needs_csum());
  EXPECT_EQ(o.m.csum_start, 34u) << "the outer UDP header";
  EXPECT_EQ(o.m.csum_offset, 6u);
  EXPECT_EQ(o.m.hdr_len, 42u);
  EXPECT_EQ(o.m.gso_size, 8u + 54u + 1410u) << "VXLAN header + a full segment (inner MTU 1450)";
  const std::vector<Bytes> pkts = cut_batch(o);
  ASSERT_FALSE(pkts.empty());
  std::vector<Bytes> inner;
  uint16_t sport = 0;
  for (uint32_t i = 0; i < pkts.size(); ++i) {
    const Bytes& pkt = pkts[i];
    EXPECT_LE(pkt.size(), 1514u) << "every outer packet within the uplink MTU";
    Sent4 s = parse4(pkt);
    EXPECT_EQ(s.dip, kPeerA4);
    EXPECT_EQ(s.vni, kVni);
    EXPECT_NE(s.udp_csum, 0) << "the segmenter computes each packet's checksum";
    uint8_t sa[4], da[4];
    store_be32(sa, s.sip);
    store_be32(da, s.dip);
    EXPECT_EQ(ref_csum4(sa, da, pkt.data() + 34, pkt.size() - 34, kIpProtoUdp), 0) << "UDP checksum";
    if (i == 0) sport = s.sport;
    EXPECT_EQ(s.sport, sport) << "one flow, one source port";
    inner.push_back(s.inner);
  }
  testutil::expect_segments(inner, b, false, 1450, 1410);
  EXPECT_EQ(pc(up_, PortCounter::tx_gso_frames), 1u);
  EXPECT_EQ(pc(up_, PortCounter::tx_gso_segments), inner.size());
  EXPECT_EQ(peer_cnt(v4(kPeerA4), PeerCounter::tx_packets), inner.size());
  EXPECT_EQ(ucnt(UplinkCounter::vxlan_tx), inner.size());
  EXPECT_EQ(ucnt(UplinkCounter::vxlan_tx_batched), inner.size());
}

// More segments than one 64 KiB frame holds: several batches, the last may
// be a single packet (then checksum-partial, not GSO).
TEST_F(VxlanUsoTest, LargeSuperFramesAreSplitIntoBatchesWithin64KiB) {
  testframes::Spec sp = to_remote(64000);
  testframes::Built b = testframes::build(sp);
  local_meta(locals_[0], b.f, testutil::tso_meta(b, false, 1000));
  std::vector<Out> out = wire_out_meta();
  ASSERT_GE(out.size(), 2u);
  uint32_t segs = 0;
  for (const Out& o : out) {
    EXPECT_LE(o.f.size(), 65535u);
    ASSERT_TRUE(o.meta);
    EXPECT_EQ(get16(o.f, 16), o.f.size() - 14) << "outer IPv4 total length";
    segs += o.m.gso() ? uint32_t((o.f.size() - 42 + o.m.gso_size - 1) / o.m.gso_size) : 1u;
  }
  EXPECT_EQ(segs, 64u) << "64000 bytes at mss 1000";
  EXPECT_EQ(ucnt(UplinkCounter::vxlan_tx), 64u);
}

// The far end: a batch of one connection's segments becomes one TCP
// super-frame for the guest again.
TEST_F(VxlanUsoTest, ReceivedBatchIsCoalescedIntoOneSuperFrame) {
  testframes::Built b = from_remote(20000);
  uint32_t chunk = 0, n = 0;
  auto [pkt, m] = batch_from_a(b, 1410, &chunk, &n);
  ASSERT_GT(pkt.size(), 1514u) << "larger than the uplink MTU: taken as a super-frame";
  send_up(pkt, m);
  Pkt pk[64];
  ASSERT_EQ(peer(locals_[0]).recv(pk, 64), 1u);
  ASSERT_TRUE(pkt_has_meta(pk[0]));
  OffloadMeta im = pool_->meta(pk[0].buf);
  EXPECT_EQ(im.gso_kind(), OffloadMeta::kGsoTcpv4);
  EXPECT_EQ(im.gso_size, 1410u);
  EXPECT_EQ(im.csum_start, b.l4_off);
  Bytes got(pool_->frame(pk[0]), pool_->frame(pk[0]) + pk[0].len);
  peer(locals_[0]).cache().free(pk[0].buf);
  ASSERT_EQ(got.size(), b.f.size());
  EXPECT_TRUE(std::equal(b.f.begin() + b.hdr_len, b.f.end(), got.begin() + b.hdr_len)) << "payload";
  EXPECT_EQ(ucnt(UplinkCounter::vxlan_rx), n);
  EXPECT_EQ(ucnt(UplinkCounter::vxlan_rx_coalesced), n);
  EXPECT_EQ(peer_cnt(v4(kPeerA4), PeerCounter::rx_packets), n);
  EXPECT_EQ(pc(up_, PortCounter::rx_drops), 0u);
}

// Over a jumbo underlay (uplink MTU 9000) the segments are cut to the inner
// MTU, 8950, larger than a regular buffer: written straight into the batch's
// large buffer. Before, a segment had to fit a regular buffer, so the
// super-frame went the ordinary way, cut at 1,866 bytes (what a 2 KiB
// buffer holds): five times the packets, none batched, and TCP between
// jumbo guests over an IPv6 underlay stood near 2 Gbit/s.
TEST_F(VxlanUsoTest, OverAJumboUnderlaySegmentsAreCutToTheInnerMtuNotToABuffer) {
  testframes::Built b = testframes::build(to_remote_jumbo(60000));
  ASSERT_EQ(b.hdr_len, 54u);
  local_meta(locals_[0], b.f, testutil::tso_meta(b, false, 8910));
  std::vector<Out> out = wire_out_meta();
  ASSERT_EQ(out.size(), 1u) << "7 segments of 8,910 bytes fit one 64 KiB batch";
  const Out& o = out[0];
  ASSERT_TRUE(o.meta);
  EXPECT_EQ(o.m.gso_kind(), OffloadMeta::kGsoUdpL4);
  EXPECT_EQ(o.m.gso_size, 8u + 54u + 8910u) << "VXLAN header + a full segment (inner MTU 8950)";
  EXPECT_GT(o.m.gso_size, engine().pool()->max_frame());
  const std::vector<Bytes> pkts = cut_batch(o);
  ASSERT_EQ(pkts.size(), 7u);
  std::vector<Bytes> inner;
  for (uint32_t i = 0; i < pkts.size(); ++i) {
    const Bytes& pkt = pkts[i];
    EXPECT_LE(pkt.size(), 9014u) << "every outer packet within the uplink MTU";
    Sent4 s = parse4(pkt);
    uint8_t sa[4], da[4];
    store_be32(sa, s.sip);
    store_be32(da, s.dip);
    EXPECT_EQ(ref_csum4(sa, da, pkt.data() + 34, pkt.size() - 34, kIpProtoUdp), 0) << "UDP checksum";
    inner.push_back(s.inner);
  }
  testutil::expect_segments(inner, b, false, 8950, 8910);
  EXPECT_EQ(ucnt(UplinkCounter::vxlan_tx), 7u);
  EXPECT_EQ(ucnt(UplinkCounter::vxlan_tx_batched), 7u);
  EXPECT_EQ(pc(up_, PortCounter::tx_drops), 0u);
}

// The far end of a jumbo underlay: a batch it cannot coalesce is
// decapsulated chunk by chunk, each inner frame (larger than a regular
// buffer) in a large buffer. Before, every such chunk was an oversize drop.
TEST_F(VxlanUsoTest, OverAJumboUnderlayABatchDecapsulatedChunkByChunkKeepsItsJumboFrames) {
  testframes::Spec rs = to_remote_jumbo(30000);
  rs.dst = host_mac(0x600);  // unknown: flooded to the port
  rs.src = host_mac(0x500);
  testframes::Built b = testframes::build(rs);
  uint32_t chunk = 0, n = 0;
  auto [pkt, m] = batch_from_a(b, 8910, &chunk, &n);
  ASSERT_EQ(n, 4u);
  ASSERT_GT(chunk, engine().pool()->max_frame());
  pkt[50 + 2 * chunk + 14 + 20 + 7] ^= 0x01;  // the third segment's sequence number: not the next one
  send_up(pkt, m);
  const std::vector<Bytes> r = recv(locals_[0]);
  EXPECT_EQ(r, inner_frames(pkt, chunk)) << "every segment delivered, plain, as it was sent";
  ASSERT_EQ(r.size(), n);
  EXPECT_EQ(r[0].size(), 54u + 8910u);
  EXPECT_EQ(ucnt(UplinkCounter::vxlan_rx), n);
  EXPECT_EQ(pc(up_, PortCounter::rx_drops), 0u);
}

// A batch that is not one connection's consecutive segments is decapsulated
// chunk by chunk, each inner frame as it was sent.
TEST_F(VxlanUsoTest, OtherBatchesAreDecapsulatedChunkByChunk) {
  testframes::Built b = from_remote(5000);
  uint32_t chunk = 0, n = 0;
  auto [pkt, m] = batch_from_a(b, 1000, &chunk, &n);
  ASSERT_EQ(n, 5u);
  // The third segment's sequence number off by one: not the next segment.
  // (A damaged payload would not do: a batch built on a host is
  // checksum-partial, and its TCP checksums are trusted, tunnel_gso.h.)
  pkt[50 + 2 * chunk + 14 + 20 + 7] ^= 0x01;
  send_up(pkt, m);
  const std::vector<Bytes> r = recv(locals_[0]);
  EXPECT_EQ(r, inner_frames(pkt, chunk)) << "every segment delivered, plain, as it was sent";
  EXPECT_EQ(ucnt(UplinkCounter::vxlan_rx), n);
  EXPECT_EQ(ucnt(UplinkCounter::vxlan_rx_coalesced), 0u);
}

// Over a wire a guest's stream arrives one VXLAN packet per segment: the
// segments of one burst become one super-frame (GRO) for a port that takes
// TSO, and the same segments again, cut at egress, for a port that does not.
TEST_F(VxlanUsoTest, SegmentsReceivedOneByOneAreCoalescedForTheGuest) {
  testframes::Built b = from_remote(20000);
  PipeOptions plain;
  plain.tx_offloads = 0;
  Result r = try_add_port(sw_, {}, {}, 256, plain);
  ASSERT_TRUE(r.ok());
  const PortId no_tso = r.id;
  FrameLayout L;
  ASSERT_TRUE(frame_layout(b.f.data(), uint32_t(b.f.size()), &L));
  const uint16_t mss = 1410;
  const uint32_t n = gso_segments(b.f.data(), uint32_t(b.f.size()), testutil::tso_meta(b, false, mss), L, mss);
  const std::vector<Bytes> segs = segments_of(b, L, mss, n);
  std::vector<Bytes> wire;
  for (const Bytes& seg : segs) wire.push_back(vx4(seg));
  ASSERT_EQ(send_frames(up_, wire), n);
  step();
  Pkt pk[64];
  ASSERT_EQ(peer(locals_[0]).recv(pk, 64), 1u) << "one super-frame";
  ASSERT_TRUE(pkt_has_meta(pk[0]));
  const OffloadMeta im = pool_->meta(pk[0].buf);
  EXPECT_EQ(im.gso_kind(), OffloadMeta::kGsoTcpv4);
  EXPECT_EQ(im.gso_size, mss);
  EXPECT_TRUE(im.needs_csum());
  EXPECT_EQ(im.csum_start, b.l4_off);
  Bytes got(pool_->frame(pk[0]), pool_->frame(pk[0]) + pk[0].len);
  peer(locals_[0]).cache().free(pk[0].buf);
  ASSERT_EQ(got.size(), b.f.size());
  EXPECT_TRUE(std::equal(b.f.begin() + b.hdr_len, b.f.end(), got.begin() + b.hdr_len)) << "payload";
  EXPECT_EQ(get16(got, 16), got.size() - 14) << "IPv4 total length";
  EXPECT_TRUE(ipv4_checksum_ok(got.data() + 14, 20));
  EXPECT_EQ(recv(no_tso), segs) << "cut again at egress: the segments as they were sent";
  EXPECT_EQ(pc(no_tso, PortCounter::tx_gso_frames), 1u);
  EXPECT_EQ(ucnt(UplinkCounter::vxlan_rx), n);
  EXPECT_EQ(ucnt(UplinkCounter::vxlan_rx_gro), n);
  EXPECT_EQ(ucnt(UplinkCounter::vxlan_rx_gro_frames), 1u);
  EXPECT_EQ(peer_cnt(v4(kPeerA4), PeerCounter::rx_packets), n);

  // A damaged segment in the middle of the next burst passes on as it came
  // (the guest drops it); the runs on either side are coalesced.
  std::vector<Bytes> wire2;
  for (uint32_t i = 0; i < 5; ++i) {
    Bytes s = segs[i];
    if (i == 2) s[s.size() - 1] ^= 0x55;
    wire2.push_back(vx4(s));
  }
  ASSERT_EQ(send_frames(up_, wire2), 5u);
  step();
  auto r2 = recv(locals_[0]);
  ASSERT_EQ(r2.size(), 3u);
  EXPECT_EQ(r2[0].size(), L.hdr_len + 2u * mss);
  EXPECT_EQ(r2[1].back(), uint8_t(segs[2].back() ^ 0x55)) << "the damaged one, alone";
  EXPECT_EQ(r2[2].size(), L.hdr_len + 2u * mss);
  EXPECT_EQ(ucnt(UplinkCounter::vxlan_rx_gro), n + 4);
  EXPECT_EQ(ucnt(UplinkCounter::vxlan_rx_gro_frames), 3u);
}

// A trace follows a coalesced run: the first segment's record goes on with
// the super-frame to its port, the others say where they went.
TEST_F(VxlanUsoTest, TraceFollowsSegmentsIntoTheirSuperFrame) {
  testframes::Built b = from_remote(3000);
  FrameLayout L;
  ASSERT_TRUE(frame_layout(b.f.data(), uint32_t(b.f.size()), &L));
  const uint16_t mss = 1000;
  std::vector<Bytes> wire;
  for (const Bytes& seg : segments_of(b, L, mss, 3)) wire.push_back(vx4(seg));
  auto t = std::make_shared<TraceSession>(3, up_);
  auto c = cmd(CmdOp::kStartTrace);
  c->trace = t;
  ASSERT_TRUE(run(std::move(c)).ok());
  ASSERT_EQ(send_frames(up_, wire), 3u);
  step();
  ASSERT_EQ(t->published(), 3u);
  auto text = [&](uint32_t k) { return trace_text(t->record(k)); };
  const std::string first = text(0);
  EXPECT_NE(first.find("GRO: segment 1 of 3 coalesced into one " + std::to_string(b.f.size()) + "-byte TCP super-frame"), std::string::npos) << first;
  EXPECT_NE(first.find("tx: port#" + std::to_string(locals_[0])), std::string::npos) << "followed to its port:\n" << first;
  const std::string second = text(1);
  EXPECT_NE(second.find("segment 2 of 3"), std::string::npos) << second;
  EXPECT_EQ(second.find("tx:"), std::string::npos) << "ends where it was coalesced:\n" << second;
  EXPECT_EQ(recv(locals_[0]).size(), 1u);
}

// Linux's vxlan device over a veth underlay hands over its tunnel GSO frames
// unsegmented; AF_PACKET reports them as TCP GSO with the checksum start in
// the inner frame. Decapsulated, the inner frame is a TCP super-frame.
TEST_F(VxlanUsoTest, LinuxTunnelGsoIsDecapsulatedAsATcpSuperFrame) {
  testframes::Built b = from_remote(30000);
  Bytes pkt = vx4(b.f);
  OffloadMeta m;
  m.flags = OffloadMeta::kNeedsCsum;
  m.gso_type = OffloadMeta::kGsoTcpv4;
  m.gso_size = 1398;  // 50 + 66 + 1398 = 1514: each segment fits the uplink
  m.hdr_len = uint16_t(50 + b.hdr_len);
  m.csum_start = uint16_t(50 + b.l4_off);
  m.csum_offset = 16;
  send_up(pkt, m);
  Pkt pk[8];
  ASSERT_EQ(peer(locals_[0]).recv(pk, 8), 1u);
  ASSERT_TRUE(pkt_has_meta(pk[0]));
  OffloadMeta im = pool_->meta(pk[0].buf);
  EXPECT_EQ(im.gso_kind(), OffloadMeta::kGsoTcpv4);
  EXPECT_EQ(im.gso_size, 1398u);
  EXPECT_EQ(im.csum_start, b.l4_off);
  EXPECT_EQ(Bytes(pool_->frame(pk[0]), pool_->frame(pk[0]) + pk[0].len), b.f);
  peer(locals_[0]).cache().free(pk[0].buf);
  // Segments that would not fit the uplink's MTU are still oversize.
  m.gso_size = 1500;
  send_up(pkt, m);
  EXPECT_TRUE(recv(locals_[0]).empty());
  EXPECT_EQ(udrop(Drop::oversize), 1u);
  // TCP GSO whose checksum starts in the outer headers is not a tunnel frame.
  m.gso_size = 1398;
  m.csum_start = 34;
  send_up(pkt, m);
  EXPECT_TRUE(recv(locals_[0]).empty());
  EXPECT_EQ(udrop(Drop::gso_malformed), 1u);
}

// The same both ways over an IPv6 underlay: the batch's checksum starts at
// the outer UDP header behind the 40-byte IPv6 header, every packet cut from
// it has its UDP checksum over the RFC 8200 pseudo-header, and a batch from
// the peer is coalesced.
TEST_F(VxlanUsoTest, OverAnIpv6Underlay) {
  sw_ = create_switch(kVni);
  locals_.push_back(add_port(sw_));
  make_uplink(cfg46());
  ASSERT_TRUE(add_peer(sw_, kPeerA6).ok());
  ASSERT_TRUE(add_remote_mac(sw_, host_mac(0x700), kPeerA6).ok());
  step();
  wire_out();
  resolve6(kPeerA6, kMacA);
  testframes::Spec sp;
  sp.dst = host_mac(0x700);
  sp.src = host_mac(1);
  sp.payload = 12000;
  sp.full_csum = false;
  testframes::Built b = testframes::build(sp);
  local_meta(locals_[0], b.f, testutil::tso_meta(b, false, 1448));
  std::vector<Out> out = wire_out_meta();
  ASSERT_EQ(out.size(), 1u);
  const Out& o = out[0];
  ASSERT_TRUE(o.meta);
  EXPECT_EQ(o.m.gso_kind(), OffloadMeta::kGsoUdpL4);
  EXPECT_EQ(o.m.csum_start, 54u);
  EXPECT_EQ(o.m.hdr_len, 62u);
  EXPECT_EQ(o.m.gso_size, 8u + 54u + 1390u) << "inner MTU 1500 - 70 = 1430";
  const std::vector<Bytes> pkts = cut_batch(o);
  ASSERT_FALSE(pkts.empty());
  std::vector<Bytes> inner;
  for (uint32_t i = 0; i < pkts.size(); ++i) {
    const Bytes& pkt = pkts[i];
    EXPECT_LE(pkt.size(), 1514u);
    EXPECT_EQ(get_ip6(pkt, 38), kPeerA6);
    EXPECT_EQ(ref_csum6(pkt.data() + 22, pkt.data() + 38, pkt.data() + 54, pkt.size() - 54, kIpProtoUdp), 0) << "UDP checksum";
    EXPECT_EQ(get32(pkt, 66) >> 8, kVni);
    inner.emplace_back(pkt.begin() + 70, pkt.end());
  }
  testutil::expect_segments(inner, b, false, 1430, 1390);

  // From the peer: its batch of another connection's segments.
  testframes::Spec rs;
  rs.dst = host_mac(0x600);
  rs.src = host_mac(0x500);
  rs.payload = 7000;
  rs.full_csum = false;
  testframes::Built rb = testframes::build(rs);
  FrameLayout RL;
  ASSERT_TRUE(frame_layout(rb.f.data(), uint32_t(rb.f.size()), &RL));
  const uint16_t mss = 1376;
  const uint32_t rn = gso_segments(rb.f.data(), uint32_t(rb.f.size()), testutil::tso_meta(rb, false, mss), RL, mss);
  Bytes rest = uso_chunks(rb, RL, mss, rn);
  Vx6 vo;
  vo.csum = Csum::kZero;
  Bytes pkt = vx6(rest, vo);
  OffloadMeta m;
  m.flags = OffloadMeta::kNeedsCsum;
  m.gso_type = OffloadMeta::kGsoUdpL4;
  m.gso_size = uint16_t(kVxlanHeaderLen + RL.hdr_len + mss);
  m.csum_start = 54;
  m.csum_offset = 6;
  send_up(pkt, m);
  Pkt pk[8];
  ASSERT_EQ(peer(locals_[0]).recv(pk, 8), 1u);
  ASSERT_TRUE(pkt_has_meta(pk[0]));
  EXPECT_EQ(pool_->meta(pk[0].buf).gso_size, mss);
  EXPECT_EQ(pk[0].len, rb.f.size());
  EXPECT_TRUE(std::equal(rb.f.begin() + rb.hdr_len, rb.f.end(), pool_->frame(pk[0]) + rb.hdr_len));
  peer(locals_[0]).cache().free(pk[0].buf);
  EXPECT_EQ(ucnt(UplinkCounter::vxlan_rx_coalesced), rn);
}

// ---------------------------------------------------------------- EVPN entries
//
// Entries of kind `evpn` (kFdbStatic | kFdbEvpn, installed from BGP EVPN
// routes by the control plane): never aged, replaced by a newer route, and
// moved by local learning (MAC mobility, RFC 7432 section 15).

Result evpn_command(testutil::EngineFixture& f, CmdOp op, SwitchId s, Mac m, const IpAddr& ip) {
  auto c = f.cmd(op);
  c->sw = s;
  c->mac = m;
  c->ip = ip;
  c->evpn = true;
  return f.run(std::move(c));
}

TEST_F(VxlanDecapTest, EvpnEntryNeverAgesAndLocalLearningMovesIt) {
  EngineOptions o = testutil::small_engine_options();
  o.idle_poll_ms = 10;
  make_engine(o);
  SwitchConfig sc1;
  sc1.aging_ms = 1000;
  sc1.remote_learning = false;  // EVPN-managed switches learn from routes
  setup4(1, sc1);
  Mac m = host_mac(0x900);
  ASSERT_TRUE(evpn_command(*this, CmdOp::kAddRemoteMac, sw_, m, v4(kPeerA4)).ok());
  auto e = entry(sw_, m);
  ASSERT_TRUE(e);
  EXPECT_TRUE(e->evpn);
  EXPECT_TRUE(e->is_static);
  EXPECT_EQ(e->vtep, v4(kPeerA4));
  EXPECT_EQ(sc(sw_, SwitchCounter::fdb_static), 1u);
  // Steps the engine for up to `ms` while `more()` holds.
  auto run_for = [&](int ms, auto&& more) {
    for (auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms); more() && std::chrono::steady_clock::now() < until;
         std::this_thread::sleep_for(std::chrono::milliseconds(10)))
      step();
  };
  // Past the aging time (and a sweep period), it is still there.
  run_for(1500, [] { return true; });
  ASSERT_TRUE(entry(sw_, m)) << "EVPN entries do not age";
  EXPECT_EQ(count_events(EventType::kAged), 0u);
  // Unicast to it goes to A only.
  local(locals_[0], make_frame(m, host_mac(1), 64));
  auto out = wire_out();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(parse4(out[0]).dip, kPeerA4);
  events();
  events_.clear();
  // The MAC speaks on a local port: it moved here. The entry becomes a
  // learned one, and the move is reported with the VTEP it left.
  local(locals_[0], make_frame(kMacBroadcast, m, 64));
  auto mv = events_of(EventType::kMoved);
  ASSERT_EQ(mv.size(), 1u);
  EXPECT_EQ(mv[0].mac, m);
  EXPECT_EQ(mv[0].port, locals_[0]);
  EXPECT_TRUE(mv[0].vtep.is_zero());
  EXPECT_EQ(mv[0].old_vtep, v4(kPeerA4));
  e = entry(sw_, m);
  ASSERT_TRUE(e);
  EXPECT_FALSE(e->evpn);
  EXPECT_FALSE(e->is_static);
  EXPECT_EQ(e->port, locals_[0]);
  EXPECT_EQ(sc(sw_, SwitchCounter::fdb_static), 0u);
  EXPECT_EQ(pc(locals_[0], PortCounter::fdb_learned), 2u);  // host_mac(1) and m
  EXPECT_EQ(engine().check_invariants(), "");
  // Now it is an ordinary learned entry: it ages.
  run_for(4000, [&] { return entry(sw_, m).has_value(); });
  EXPECT_FALSE(entry(sw_, m));
}

TEST_F(VxlanDecapTest, EvpnEntriesReplaceEachOtherButNeverAConfiguredStatic) {
  setup4(1);
  Mac m = host_mac(0x901);
  // Learned locally first, then a route says it is behind A (it moved there).
  local(locals_[0], make_frame(kMacBroadcast, m, 64));
  ASSERT_TRUE(evpn_command(*this, CmdOp::kAddRemoteMac, sw_, m, v4(kPeerA4)).ok());
  EXPECT_EQ(entry(sw_, m)->vtep, v4(kPeerA4));
  EXPECT_EQ(pc(locals_[0], PortCounter::fdb_learned), 0u);
  // Idempotent, then behind B (a newer route).
  ASSERT_TRUE(evpn_command(*this, CmdOp::kAddRemoteMac, sw_, m, v4(kPeerA4)).ok());
  ASSERT_TRUE(evpn_command(*this, CmdOp::kAddRemoteMac, sw_, m, v4(kPeerB4)).ok());
  EXPECT_EQ(entry(sw_, m)->vtep, v4(kPeerB4));
  EXPECT_EQ(sc(sw_, SwitchCounter::fdb_static), 1u);
  // A static delete does not remove an EVPN entry, nor the reverse.
  auto del = cmd(CmdOp::kDeleteStaticMac);
  del->sw = sw_;
  del->mac = m;
  EXPECT_EQ(run(std::move(del)).status, Status::kNotFound);
  Mac st = host_mac(0x902);
  ASSERT_TRUE(add_remote_mac(sw_, st, v4(kPeerA4)).ok());
  EXPECT_EQ(evpn_command(*this, CmdOp::kDeleteStaticMac, sw_, st, IpAddr{}).status, Status::kNotFound);
  // A route never replaces a configured static entry.
  EXPECT_EQ(evpn_command(*this, CmdOp::kAddRemoteMac, sw_, st, v4(kPeerB4)).status, Status::kAlreadyExists);
  EXPECT_FALSE(entry(sw_, st)->evpn);
  // A configured static entry replaces an EVPN one.
  ASSERT_TRUE(add_remote_mac(sw_, m, v4(kPeerA4)).ok());
  EXPECT_FALSE(entry(sw_, m)->evpn);
  EXPECT_EQ(evpn_command(*this, CmdOp::kDeleteStaticMac, sw_, m, IpAddr{}).status, Status::kNotFound);
  // Withdrawn: the EVPN delete removes it.
  Mac w = host_mac(0x903);
  ASSERT_TRUE(evpn_command(*this, CmdOp::kAddRemoteMac, sw_, w, v4(kPeerB4)).ok());
  ASSERT_TRUE(evpn_command(*this, CmdOp::kDeleteStaticMac, sw_, w, IpAddr{}).ok());
  EXPECT_FALSE(entry(sw_, w));
  EXPECT_EQ(engine().check_invariants(), "");
}

}  // namespace
}  // namespace vpc
