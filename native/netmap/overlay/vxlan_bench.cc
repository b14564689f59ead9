// VXLAN overlay benchmark: pipe ports, 64-byte inner frames, one engine
// thread, generation and sinking on one other thread.
//
//   vxlan_bench [--seconds S] [--json FILE] [--only NAME] [--callgrind [--frames N]]
//
// Cases
//   encap-v4  local pipe port -> switch with one IPv4 peer -> uplink pipe.
//             The inner destination is a static remote MAC behind the peer
//             (known unicast); the inner frames are IPv4/UDP over 256 flows,
//             so the outer source-port hash does its full work.
//   decap-v4  uplink pipe -> pre-built IPv4 VXLAN packets (64-byte inner
//             frames, UDP checksum 0) -> local pipe port (static MAC there).
//   encap-v6  as encap-v4 over IPv6 (UDP checksum computed per packet).
//   decap-v6  as decap-v4 over IPv6 (UDP checksum verified per packet).
//
// The benchmark answers the engine's ARP request / Neighbor Solicitation for
// the peer before measuring, as the underlay would.
//
// Throughput mode runs the engine on its own thread (pinned to CPU 0, the
// generator/sink thread to CPU 1) for a fixed time and counts frames the sink
// received. --callgrind runs a fixed number of frames with the engine stepped
// on the main thread (Engine::run_once), so that
//   valgrind --tool=callgrind --toggle-collect='vpc::Engine::process*'
//            --toggle-collect='vpc::Engine::flush_tx*' vxlan_bench --callgrind
// counts exactly the instructions the hot path spends per frame.
//
// Addresses: 198.18.0.0/15 and 2001:db8::/32 (nothing leaves the process).
#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "core/bench_util.h"
#include "core/engine.h"
#include "proto/ethernet.h"
#include "proto/inet.h"

using namespace vpc;
using namespace vpc::bench;

namespace {

struct Case {
  const char* name;
  bool encap;
  bool v6;
};

const Case kCases[] = {
    {"encap-v4", true, false},
    {"decap-v4", false, false},
    {"encap-v6", true, true},
    {"decap-v6", false, true},
};

constexpr uint32_t kVni = 100;
constexpr uint16_t kInnerLen = 64;
constexpr uint32_t kFlows = 256;
constexpr Mac kUplinkMac = 0x02AA00000001ull;
constexpr Mac kPeerMac = 0x02BB00000002ull;
constexpr Mac kLocalHost = 0x020000000001ull;   // behind the local port
constexpr Mac kRemoteHost = 0x020000000002ull;  // behind the peer VTEP
constexpr uint32_t kVtep4 = 0xC6120001, kPeer4 = 0xC6120002;  // 198.18.0.1, .2

IpAddr ip6(const char* s) {
  IpAddr a;
  ip_parse(s, &a);
  return a;
}

struct Figures {
  std::string name;
  double mpps = 0;
  double ns_per_packet = 0;
  double engine_ns_per_packet = 0;
  double mean_batch = 0;
  uint64_t packets = 0;
  uint64_t drops = 0;
};



void check(const vpc::Result& r, const char* what) {
  if (!r.ok()) {
    fprintf(stderr, "%s: %s\n", what, r.message.c_str());
    exit(1);
  }
}

uint16_t csum(const uint8_t* p, size_t n, uint32_t s) { return csum_fold(csum_partial(p, n, s)); }

struct Topology {
  std::unique_ptr<Engine> engine;
  SwitchId sw = 0;
  PortId local = 0, uplink = 0;
  std::unique_ptr<PipePeer> local_peer;   // the local guest
  std::unique_ptr<PipePeer> wire;         // the underlay
  IpAddr vtep, peer;
};


// Reads what the engine sent on the wire and answers its ARP request or
// Neighbor Solicitation for the peer.
bool answer_resolution(Topology& t, bool threaded) {
  for (int tries = 0; tries < 2000; ++tries) {
    if (!threaded) t.engine->run_once();
    Pkt pk[kMaxBurst];
    uint32_t n = t.wire->recv(pk, kMaxBurst);
    bool answered = false;
    for (uint32_t i = 0; i < n; ++i) {
      const uint8_t* f = t.wire->pool().frame(pk[i]);
      uint16_t et = load_be16(f + 12);
      uint8_t reply[86] = {};
      uint16_t len = 0;
      if (et == kEtherTypeArp && load_be16(f + 20) == 1) {
        mac_store(reply, kUplinkMac);
        mac_store(reply + 6, kPeerMac);
        store_be16(reply + 12, kEtherTypeArp);
        uint8_t* a = reply + 14;
        store_be16(a, 1);
        store_be16(a + 2, kEtherTypeIpv4);
        a[4] = 6, a[5] = 4;
        store_be16(a + 6, 2);
        mac_store(a + 8, kPeerMac);
        store_be32(a + 14, kPeer4);
        mac_store(a + 18, kUplinkMac);
        store_be32(a + 24, kVtep4);
        len = 60;
      } else if (et == kEtherTypeIpv6 && f[20] == kIpProtoIcmpv6 && f[54] == 135) {
        mac_store(reply, kUplinkMac);
        mac_store(reply + 6, kPeerMac);
        store_be16(reply + 12, kEtherTypeIpv6);
        uint8_t* ip = reply + 14;
        store_be32(ip, 0x60000000u);
        store_be16(ip + 4, 32);
        ip[6] = kIpProtoIcmpv6;
        ip[7] = 255;
        std::memcpy(ip + 8, t.peer.b, 16);
        std::memcpy(ip + 24, t.vtep.b, 16);
        uint8_t* icmp = ip + 40;
        icmp[0] = 136;
        store_be32(icmp + 4, 0x60000000u);
        std::memcpy(icmp + 8, t.peer.b, 16);
        icmp[24] = 2;
        icmp[25] = 1;
        mac_store(icmp + 26, kPeerMac);
        store_be16(icmp + 2, csum(icmp, 32, csum_pseudo6(ip + 8, ip + 24, 32, kIpProtoIcmpv6)));
        len = 86;
      }
      t.wire->cache().free(pk[i].buf);
      if (len) {
        const uint8_t* fr[1] = {reply};
        t.wire->send_copy(fr, &len, 1);
        answered = true;
      }
    }
    if (answered) {
      // Let the engine read the answer.
      for (int k = 0; k < 2000; ++k) {
        if (!threaded) t.engine->run_once();
        if (cnt_read(t.engine->uplink_counters().c[size_t(UplinkCounter::neighbors_resolved)]) > 0) return true;
        if (threaded) usleep(1000);
      }
      return false;
    }
    if (threaded) usleep(1000);
  }
  return false;
}

Topology build(const Case& c, bool threaded) {
  EngineOptions o;
  o.pool.count = 32768;
  o.busy_poll = true;
  o.cpu = 0;
  o.event_mask = 0;
  Topology t;
  t.engine = std::make_unique<Engine>(o);
  t.vtep = c.v6 ? ip6("2001:db8::1") : IpAddr::from_v4(kVtep4);
  t.peer = c.v6 ? ip6("2001:db8::2") : IpAddr::from_v4(kPeer4);
  auto cs = cmd(CmdOp::kCreateSwitch);
  cs->switch_cfg.vni = kVni;
  vpc::Result r = t.engine->execute(std::move(cs));
  check(r, "create switch");
  t.sw = r.id;

  auto cp = cmd(CmdOp::kCreatePort);
  PipePair lp = t.engine->new_pipe(1024);
  cp->new_port = std::move(lp.port);
  cp->untagged = t.sw;
  r = t.engine->execute(std::move(cp));
  check(r, "create port");
  t.local = r.id;
  t.local_peer = std::move(lp.peer);

  auto cu = cmd(CmdOp::kCreateUplink);
  PipePair up = t.engine->new_pipe(1024);
  cu->new_port = std::move(up.port);
  cu->port_cfg.mac = kUplinkMac;
  cu->port_cfg.mtu = 1500;
  if (c.v6) {
    cu->uplink_cfg.ip6 = t.vtep;
    cu->uplink_cfg.prefix6 = 64;
  } else {
    cu->uplink_cfg.ip4 = t.vtep;
    cu->uplink_cfg.prefix4 = 24;
  }
  r = t.engine->execute(std::move(cu));
  check(r, "create uplink");
  t.uplink = r.id;
  t.wire = std::move(up.peer);

  auto ap = cmd(CmdOp::kAddPeer);
  ap->sw = t.sw;
  ap->ip = t.peer;
  check(t.engine->execute(std::move(ap)), "add peer");
  // Known unicast both ways: the remote host behind the peer, the local host
  // behind the local port.
  auto rm = cmd(CmdOp::kAddRemoteMac);
  rm->sw = t.sw;
  rm->mac = kRemoteHost;
  rm->ip = t.peer;
  check(t.engine->execute(std::move(rm)), "add remote mac");
  auto sm = cmd(CmdOp::kAddStaticMac);
  sm->sw = t.sw;
  sm->port = t.local;
  sm->mac = kLocalHost;
  check(t.engine->execute(std::move(sm)), "add static mac");

  if (threaded) t.engine->start();
  if (!answer_resolution(t, threaded)) {
    fprintf(stderr, "%s: the engine did not resolve the peer\n", c.name);
    exit(1);
  }
  drain(*t.wire);
  return t;
}

// Templates: kFlows inner frames (encap) or VXLAN packets (decap), written
// into each buffer with one memcpy.
struct Templates {
  std::vector<std::vector<uint8_t>> pkt;
  uint32_t next = 0;
};

void inner_frame(uint8_t* f, Mac dst, Mac src, uint32_t flow) {
  std::memset(f, 0, kInnerLen);
  mac_store(f, dst);
  mac_store(f + 6, src);
  store_be16(f + 12, kEtherTypeIpv4);
  uint8_t* ip = f + 14;
  ip[0] = 0x45;
  store_be16(ip + 2, kInnerLen - 14);
  ip[8] = 64;
  ip[9] = kIpProtoUdp;
  store_be32(ip + 12, 0xC6120A00 + (flow & 0xFF));  // 198.18.10.x
  store_be32(ip + 16, 0xC6120B01);                  // 198.18.11.1
  store_be16(ip + 10, csum(ip, 20, 0));
  uint8_t* u = ip + 20;
  store_be16(u, uint16_t(10000 + flow));
  store_be16(u + 2, 5001);
  store_be16(u + 4, kInnerLen - 34);
}

Templates make_templates(const Case& c, const Topology& t) {
  Templates tp;
  for (uint32_t fl = 0; fl < kFlows; ++fl) {
    std::vector<uint8_t> p;
    if (c.encap) {
      p.resize(kInnerLen);
      inner_frame(p.data(), kRemoteHost, kLocalHost, fl);
    } else {
      const uint16_t hdr = c.v6 ? kVxlanOverhead6 : kVxlanOverhead4;
      p.resize(hdr + kInnerLen);
      uint8_t* f = p.data();
      mac_store(f, kUplinkMac);
      mac_store(f + 6, kPeerMac);
      uint8_t* udp;
      const uint16_t udp_len = kUdpHeaderLen + kVxlanHeaderLen + kInnerLen;
      if (c.v6) {
        store_be16(f + 12, kEtherTypeIpv6);
        uint8_t* ip = f + 14;
        store_be32(ip, 0x60000000u);
        store_be16(ip + 4, udp_len);
        ip[6] = kIpProtoUdp;
        ip[7] = 64;
        std::memcpy(ip + 8, t.peer.b, 16);
        std::memcpy(ip + 24, t.vtep.b, 16);
        udp = ip + 40;
      } else {
        store_be16(f + 12, kEtherTypeIpv4);
        uint8_t* ip = f + 14;
        ip[0] = 0x45;
        store_be16(ip + 2, 20 + udp_len);
        store_be16(ip + 6, 0x4000);
        ip[8] = 64;
        ip[9] = kIpProtoUdp;
        store_be32(ip + 12, kPeer4);
        store_be32(ip + 16, kVtep4);
        store_be16(ip + 10, csum(ip, 20, 0));
        udp = ip + 20;
      }
      store_be16(udp, uint16_t(49152 + fl));
      store_be16(udp + 2, kVxlanDefaultPort);
      store_be16(udp + 4, udp_len);
      uint8_t* vx = udp + 8;
      vx[0] = kVxlanFlagI;
      store_be32(vx + 4, kVni << 8);
      inner_frame(vx + 8, kLocalHost, kRemoteHost, fl);
      if (c.v6) {
        uint8_t* ip = f + 14;
        uint16_t s = csum(udp, udp_len, csum_pseudo6(ip + 8, ip + 24, udp_len, kIpProtoUdp));
        store_be16(udp + 6, s ? s : 0xFFFF);
      }
    }
    tp.pkt.push_back(std::move(p));
  }
  return tp;
}

uint32_t fill(PipePeer& peer, Pkt* pk, uint32_t n, Templates& tp) {
  BufferPool& pool = peer.pool();
  uint32_t got = 0;
  for (; got < n; ++got) {
    uint32_t idx;
    if (!peer.cache().alloc(&idx)) break;
    pk[got] = Pkt{idx, pool.headroom(), 0};
  }
  constexpr uint32_t kAhead = 8;
  for (uint32_t i = 0; i < got && i < kAhead; ++i) __builtin_prefetch(pool.frame(pk[i]), 1);
  uint32_t h = tp.next;
  for (uint32_t i = 0; i < got; ++i) {
    if (i + kAhead < got) __builtin_prefetch(pool.frame(pk[i + kAhead]), 1);
    const auto& t = tp.pkt[h];
    std::memcpy(pool.frame(pk[i]), t.data(), t.size());
    pk[i].len = uint16_t(t.size());
    if (++h == tp.pkt.size()) h = 0;
  }
  tp.next = h;
  return got;
}

void unsend(PipePeer& peer, Pkt* pk, uint32_t from, uint32_t to, Templates& tp) {
  for (uint32_t i = from; i < to; ++i) peer.cache().free(pk[i].buf);
  uint32_t n = uint32_t(tp.pkt.size()), back = (to - from) % n;
  tp.next = (tp.next + n - back) % n;
}

uint64_t drop_total(const Topology& t) {
  return cnt_read(t.engine->port_counters(t.uplink).c[size_t(PortCounter::rx_drops)]) +
         cnt_read(t.engine->port_counters(t.uplink).c[size_t(PortCounter::tx_drops)]) +
         cnt_read(t.engine->port_counters(t.local).c[size_t(PortCounter::rx_drops)]) +
         cnt_read(t.engine->port_counters(t.local).c[size_t(PortCounter::tx_drops)]);
}

Figures run_throughput(const Case& c, double seconds) {
  Topology t = build(c, true);
  pin(1);
  Templates tp = make_templates(c, t);
  PipePeer& src = c.encap ? *t.local_peer : *t.wire;
  PipePeer& sink = c.encap ? *t.wire : *t.local_peer;
  Pkt pk[kMaxBurst];
  uint64_t received = 0;
  const EngineCounterBlock& ec = t.engine->engine_counters();
  auto loop = [&](double secs, bool count) {
    auto t0 = std::chrono::steady_clock::now();
    auto end = t0 + std::chrono::duration<double>(secs);
    uint64_t got = 0;
    uint32_t spins = 0;
    while (true) {
      uint32_t n = fill(src, pk, kMaxBurst, tp);
      uint32_t sent = src.send(pk, n);
      if (sent < n) unsend(src, pk, sent, n, tp);
      got += drain(sink);
      drain(src);
      if ((++spins & 63) == 0 && std::chrono::steady_clock::now() >= end) break;
    }
    if (count) received = got;
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  loop(0.3, false);
  uint64_t pk0 = cnt_read(ec.c[size_t(EngineCounter::packets)]);
  uint64_t busy0 = cnt_read(ec.c[size_t(EngineCounter::busy_ns)]);
  uint64_t b0 = cnt_read(ec.c[size_t(EngineCounter::batches)]);
  uint64_t d0 = drop_total(t);
  double elapsed = loop(seconds, true);
  uint64_t pk1 = cnt_read(ec.c[size_t(EngineCounter::packets)]);
  uint64_t busy1 = cnt_read(ec.c[size_t(EngineCounter::busy_ns)]);
  uint64_t b1 = cnt_read(ec.c[size_t(EngineCounter::batches)]);
  Figures r;
  r.name = c.name;
  r.packets = received;
  r.mpps = double(received) / elapsed / 1e6;
  r.ns_per_packet = r.mpps > 0 ? 1e3 / r.mpps : 0;
  r.engine_ns_per_packet = pk1 > pk0 ? double(busy1 - busy0) / double(pk1 - pk0) : 0;
  r.mean_batch = b1 > b0 ? double(pk1 - pk0) / double(b1 - b0) : 0;
  r.drops = drop_total(t) - d0;
  t.engine->stop();
  return r;
}

Figures run_callgrind(const Case& c, uint64_t frames) {
  Topology t = build(c, false);
  Templates tp = make_templates(c, t);
  PipePeer& src = c.encap ? *t.local_peer : *t.wire;
  PipePeer& sink = c.encap ? *t.wire : *t.local_peer;
  Pkt pk[kMaxBurst];
  uint64_t got = 0;
  for (uint64_t done = 0; done < frames;) {
    uint32_t want = uint32_t(std::min<uint64_t>(kMaxBurst, frames - done));
    uint32_t n = fill(src, pk, want, tp);
    uint32_t sent = src.send(pk, n);
    if (sent < n) unsend(src, pk, sent, n, tp);
    done += sent;
    t.engine->run_once();
    got += drain(sink);
    drain(src);
  }
  Figures r;
  r.name = c.name;
  r.packets = got;
  r.drops = drop_total(t);
  if (got != frames) fprintf(stderr, "%s: %llu of %llu frames arrived\n", c.name, (unsigned long long)got,
                             (unsigned long long)frames);
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  const Args args = parse_args(argc, argv);
  const double seconds = args.seconds;
  const std::string& json = args.json;
  const std::string& only = args.only;
  const bool callgrind = args.callgrind;
  const uint64_t cg_frames = args.frames;
  std::vector<Figures> results;
  bool known = only.empty();
  for (const Case& c : kCases) {
    if (!only.empty() && only != c.name) continue;
    known = true;
    if (callgrind) {
      Figures r = run_callgrind(c, cg_frames);
      printf("%-10s %llu frames stepped, %llu delivered, %llu drops\n", r.name.c_str(), (unsigned long long)cg_frames,
             (unsigned long long)r.packets, (unsigned long long)r.drops);
      results.push_back(r);
      continue;
    }
    Figures r = run_throughput(c, seconds);
    printf("%-10s %7.2f Mpps  %6.1f ns/frame  engine %5.1f ns/frame  batch %5.1f  drops %llu\n", r.name.c_str(),
           r.mpps, r.ns_per_packet, r.engine_ns_per_packet, r.mean_batch, (unsigned long long)r.drops);
    fflush(stdout);
    results.push_back(r);
  }
  if (!known) {
    fprintf(stderr, "--only: unknown case '%s'\n", only.c_str());
    return 2;
  }
  if (!json.empty()) {
    FILE* f = fopen(json.c_str(), "w");
    if (!f) {
      perror(json.c_str());
      return 1;
    }
    fprintf(f, "{\n  \"bench\": \"vxlan\",\n  \"mode\": \"%s\",\n  \"frame_bytes\": %u,\n  \"machine\": %s,\n  \"cases\": [\n",
            callgrind ? "callgrind" : "throughput", unsigned(kInnerLen), machine_json().c_str());
    for (size_t i = 0; i < results.size(); ++i) {
      const Figures& r = results[i];
      fprintf(f,
              "    {\"name\": \"%s\", \"mpps\": %.3f, \"ns_per_packet\": %.2f, \"engine_ns_per_packet\": %.2f, "
              "\"mean_batch\": %.1f, \"packets\": %llu, \"drops\": %llu}%s\n",
              r.name.c_str(), r.mpps, r.ns_per_packet, r.engine_ns_per_packet, r.mean_batch,
              (unsigned long long)r.packets, (unsigned long long)r.drops, i + 1 < results.size() ? "," : "");
    }
    fprintf(f, "  ]\n}\n");
    fclose(f);
  }
  return 0;
}
