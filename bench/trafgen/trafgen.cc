// trafgen: the benchmark's own traffic generator and sink (npm run bench -- e2e).
//
//   trafgen --tx SPEC --rx SPEC [--seconds S] [--size N] [--flows F] [--macs M]
//           [--rate PPS] [--probe-rate P] [--batch B] [--gen-cpu C] [--sink-cpu C]
//           [--max-seconds S]
//
//   SPEC = afpacket:IFNAME[@NETNS]   TPACKET_V2 rings: the generator fills an
//                                    mmap'd TX ring and makes one sendto() per
//                                    batch; the sink reads an mmap'd RX ring
//        | tapfd:IFNAME[@NETNS]      the "VM" end of a tap device (the fd):
//                                    one write()/read() per frame, as a VM
//                                    without vhost does
//
// One process, two threads: the generator (pinned to --gen-cpu) sends for
// --seconds, the sink (pinned to --sink-cpu) counts until the traffic has
// drained. Both ends can live in different network namespaces (the sockets
// are opened after setns() into /run/netns/NETNS), so one process sees both
// the sent and the received sequence numbers and one CLOCK_MONOTONIC.
//
// Frames: Ethernet + IPv4 + UDP, --size bytes including the 4-byte FCS that a
// veth does not carry (a "64-byte frame" is 60 bytes in the ring). --flows
// distinct 5-tuples over --macs source MACs (02:76:00:..) and --macs
// destination MACs (02:76:01:..), addresses from 198.18.0.0/15. The 18 bytes
// after the UDP header: a 16-bit magic (data or probe), a 64-bit sequence
// number and, in probes, a CLOCK_MONOTONIC timestamp taken just before the
// batch is kicked. The sink keeps a bitmap of the sequence numbers it saw:
// delivered = distinct numbers, loss = sent - delivered, duplicates counted.
// Before the run each side sends one learning frame per MAC so that learning
// switches know both ends (the numbers are not counted).
//
// --rate 0 (default) sends as fast as the ring drains; --rate N paces batches
// with a token bucket (at most --batch frames per kick). --probe-rate P marks P
// frames per second as probes (latency p50/p99/p99.9 in microseconds).
//
// Prints one JSON object on stdout. Every run is bounded: the generator stops
// after --seconds, the sink at most 2 s later, the process at --max-seconds.
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

constexpr uint16_t kMagicData = 0x7601;
constexpr uint16_t kMagicProbe = 0x7602;
constexpr uint16_t kMagicLearn = 0x7600;
constexpr uint32_t kPayloadOff = 14 + 20 + 8;  // Ethernet + IPv4 + UDP
constexpr uint32_t kFrameSlot = 2048;
constexpr uint32_t kSllOff = TPACKET_ALIGN(sizeof(tpacket2_hdr));
constexpr uint32_t kTxDataOff = TPACKET_ALIGN(sizeof(tpacket2_hdr));

[[noreturn]] void die(const std::string& msg) {
  std::fprintf(stderr, "trafgen: %s\n", msg.c_str());
  std::printf("{\"error\":\"%s\"}\n", msg.c_str());
  std::fflush(stdout);
  std::_Exit(1);
}

uint64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

void pin(int cpu) {
  if (cpu < 0) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

struct Endpoint {
  std::string kind;  // afpacket | tapfd
  std::string ifname;
  std::string netns;  // "" = the current one
  std::string text;
  int fd = -1;
  uint8_t* ring = nullptr;
  size_t ring_bytes = 0;
  uint32_t frames = 0;
};

Endpoint parse_spec(const std::string& s) {
  Endpoint e;
  e.text = s;
  auto colon = s.find(':');
  if (colon == std::string::npos) die("bad endpoint '" + s + "': use afpacket:IF[@NS] or tapfd:IF[@NS]");
  e.kind = s.substr(0, colon);
  std::string rest = s.substr(colon + 1);
  auto at = rest.find('@');
  e.ifname = rest.substr(0, at);
  if (at != std::string::npos) e.netns = rest.substr(at + 1);
  if (e.kind != "afpacket" && e.kind != "tapfd") die("bad endpoint kind '" + e.kind + "'");
  if (e.ifname.empty() || e.ifname.size() > 15) die("bad interface name in '" + s + "'");
  return e;
}

// Runs `fn` with the calling thread in network namespace `ns`, then returns.
template <typename F>
void in_netns(const std::string& ns, F fn) {
  if (ns.empty()) {
    fn();
    return;
  }
  int self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  std::string path = "/run/netns/" + ns;
  int target = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (self < 0 || target < 0) die("cannot open " + path + ": " + std::strerror(errno));
  if (setns(target, CLONE_NEWNET) < 0) die("setns(" + ns + "): " + std::strerror(errno));
  fn();
  if (setns(self, CLONE_NEWNET) < 0) die(std::string("setns(back): ") + std::strerror(errno));
  close(self);
  close(target);
}

void open_afpacket(Endpoint& e, bool tx, uint32_t frames) {
  in_netns(e.netns, [&] {
    int fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
    if (fd < 0) die(std::string("socket(AF_PACKET): ") + std::strerror(errno) + " (needs CAP_NET_RAW)");
    int v = TPACKET_V2;
    if (setsockopt(fd, SOL_PACKET, PACKET_VERSION, &v, sizeof(v)) < 0) die("PACKET_VERSION");
    tpacket_req req{};
    req.tp_block_size = 1u << 16;
    req.tp_frame_size = kFrameSlot;
    req.tp_block_nr = frames / (req.tp_block_size / kFrameSlot);
    req.tp_frame_nr = frames;
    if (setsockopt(fd, SOL_PACKET, tx ? PACKET_TX_RING : PACKET_RX_RING, &req, sizeof(req)) < 0)
      die(std::string(tx ? "PACKET_TX_RING: " : "PACKET_RX_RING: ") + std::strerror(errno));
    v = 1;
    if (tx) setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &v, sizeof(v));
    setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &v, sizeof(v));
    e.ring_bytes = size_t(frames) * kFrameSlot;
    void* m = mmap(nullptr, e.ring_bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
    if (m == MAP_FAILED) die(std::string("mmap: ") + std::strerror(errno));
    e.ring = static_cast<uint8_t*>(m);
    e.frames = frames;
    unsigned idx = if_nametoindex(e.ifname.c_str());
    if (idx == 0) die("interface " + e.ifname + " not found in netns '" + e.netns + "'");
    sockaddr_ll sll{};
    sll.sll_family = AF_PACKET;
    sll.sll_protocol = htons(tx ? 0 : ETH_P_ALL);
    sll.sll_ifindex = int(idx);
    if (bind(fd, reinterpret_cast<sockaddr*>(&sll), sizeof(sll)) < 0) die(std::string("bind: ") + std::strerror(errno));
    if (!tx) {
      packet_mreq mr{};
      mr.mr_ifindex = int(idx);
      mr.mr_type = PACKET_MR_PROMISC;
      setsockopt(fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof(mr));
    }
    e.fd = fd;
  });
}

void open_tapfd(Endpoint& e) {
  in_netns(e.netns, [&] {
    int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) die(std::string("/dev/net/tun: ") + std::strerror(errno));
    ifreq ifr{};
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
    std::strncpy(ifr.ifr_name, e.ifname.c_str(), IFNAMSIZ - 1);
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) die("TUNSETIFF " + e.ifname + ": " + std::strerror(errno));
    e.fd = fd;
  });
}

// ------------------------------------------------------------- frames

struct Config {
  double seconds = 3;
  double max_seconds = 30;
  uint32_t size = 64;
  uint32_t flows = 64;
  uint32_t macs = 8;
  double rate = 0;  // 0 = as fast as possible
  double probe_rate = 1000;
  uint32_t batch = 64;
  int gen_cpu = 1;
  int sink_cpu = 0;
  uint32_t tx_frames = 2048;
  uint32_t rx_frames = 8192;
};

void put_mac(uint8_t* p, uint8_t kind, uint32_t i) {
  p[0] = 0x02;
  p[1] = 0x76;
  p[2] = kind;
  p[3] = uint8_t(i >> 16);
  p[4] = uint8_t(i >> 8);
  p[5] = uint8_t(i);
}

uint16_t ip_checksum(const uint8_t* p, size_t n) {
  uint32_t s = 0;
  for (size_t i = 0; i + 1 < n; i += 2) s += uint32_t(p[i] << 8 | p[i + 1]);
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return uint16_t(~s);
}

// One template per flow: the frame without FCS, payload zeroed.
std::vector<std::vector<uint8_t>> make_templates(const Config& c) {
  const uint32_t len = c.size - 4;
  std::vector<std::vector<uint8_t>> t(c.flows);
  for (uint32_t f = 0; f < c.flows; ++f) {
    auto& b = t[f];
    b.assign(len, 0);
    put_mac(&b[0], 1, f % c.macs);  // destination: behind the sink
    put_mac(&b[6], 0, f % c.macs);  // source: behind the generator
    b[12] = 0x08;
    b[13] = 0x00;
    uint8_t* ip = &b[14];
    ip[0] = 0x45;
    uint16_t tot = uint16_t(len - 14);
    ip[2] = uint8_t(tot >> 8);
    ip[3] = uint8_t(tot);
    ip[8] = 64;
    ip[9] = 17;
    // 198.18.128.0 + f -> 198.19.128.0 + f (RFC 2544 benchmarking range).
    uint32_t src = (198u << 24) | (18u << 16) | (128u << 8), dst = (198u << 24) | (19u << 16) | (128u << 8);
    src += f & 0x7fff;
    dst += f & 0x7fff;
    for (int i = 0; i < 4; ++i) {
      ip[12 + i] = uint8_t(src >> (24 - 8 * i));
      ip[16 + i] = uint8_t(dst >> (24 - 8 * i));
    }
    uint16_t cs = ip_checksum(ip, 20);
    ip[10] = uint8_t(cs >> 8);
    ip[11] = uint8_t(cs);
    uint8_t* udp = ip + 20;
    uint16_t sport = uint16_t(1024 + f % 60000), dport = 9;
    udp[0] = uint8_t(sport >> 8);
    udp[1] = uint8_t(sport);
    udp[2] = uint8_t(dport >> 8);
    udp[3] = uint8_t(dport);
    uint16_t ulen = uint16_t(tot - 20);
    udp[4] = uint8_t(ulen >> 8);
    udp[5] = uint8_t(ulen);
    b[kPayloadOff] = uint8_t(kMagicData >> 8);
    b[kPayloadOff + 1] = uint8_t(kMagicData);
  }
  return t;
}

inline void stamp(uint8_t* frame, uint64_t seq, uint64_t ts) {
  if (ts) {
    frame[kPayloadOff] = uint8_t(kMagicProbe >> 8);
    frame[kPayloadOff + 1] = uint8_t(kMagicProbe);
  }
  std::memcpy(frame + kPayloadOff + 2, &seq, 8);
  std::memcpy(frame + kPayloadOff + 10, &ts, 8);
}

// A learning frame from `src` kind/index to a broadcast destination.
std::vector<uint8_t> learn_frame(uint8_t kind, uint32_t i) {
  std::vector<uint8_t> b(60, 0);
  std::memset(&b[0], 0xff, 6);
  put_mac(&b[6], kind, i);
  b[12] = 0x88;
  b[13] = 0xb5;  // local experimental EtherType
  b[14] = uint8_t(kMagicLearn >> 8);
  b[15] = uint8_t(kMagicLearn);
  return b;
}

void send_one(Endpoint& e, const std::vector<uint8_t>& f) {
  if (e.kind == "tapfd") {
    (void)!write(e.fd, f.data(), f.size());
    return;
  }
  // A plain socket without rings (not the fast path).
  (void)!send(e.fd, f.data(), f.size(), MSG_DONTWAIT);
}

// ------------------------------------------------------------- generator

struct GenResult {
  uint64_t sent = 0;
  uint64_t errors = 0;
  uint64_t kicks = 0;
  uint64_t start_ns = 0;
  uint64_t end_ns = 0;
};

// Fixed-rate pacing (token bucket per batch): how many frames may go now,
// given `sent` so far since `start`; 0 after a short sleep when none may.
// With no rate set, a whole batch every time.
uint64_t frames_allowed(const Config& c, uint64_t start, uint64_t now, uint64_t sent) {
  if (c.rate <= 0) return c.batch;
  const uint64_t due = uint64_t(double(now - start) * c.rate / 1e9) + 1;
  if (due > sent) return std::min<uint64_t>(due - sent, c.batch);
  const uint64_t wait = uint64_t(double(sent + 1 - due + 1) * 1e9 / c.rate);
  if (wait > 30000) {
    timespec ts{0, long(std::min<uint64_t>(wait - 20000, 1000000))};
    nanosleep(&ts, nullptr);
  }
  return 0;
}

void gen_afpacket(Endpoint& e, const Config& c, const std::vector<std::vector<uint8_t>>& tpl, GenResult& r) {
  pin(c.gen_cpu);
  const uint32_t len = c.size - 4;
  const uint64_t probe_every = c.probe_rate > 0 ? uint64_t(1e9 / c.probe_rate) : UINT64_MAX;
  uint32_t head = 0;
  uint64_t seq = 0;
  uint32_t flow = 0;
  const uint64_t start = now_ns();
  const uint64_t end = start + uint64_t(c.seconds * 1e9);
  uint64_t next_probe = start;
  r.start_ns = start;
  for (;;) {
    uint64_t t = now_ns();
    if (t >= end) break;
    const uint64_t allowed = frames_allowed(c, start, t, seq);
    if (!allowed) continue;
    uint32_t n = 0;
    while (n < allowed) {
      auto* h = reinterpret_cast<tpacket2_hdr*>(e.ring + size_t(head) * kFrameSlot);
      uint32_t st = __atomic_load_n(&h->tp_status, __ATOMIC_ACQUIRE);
      if (st == TP_STATUS_WRONG_FORMAT) {
        ++r.errors;
      } else if (st != TP_STATUS_AVAILABLE) {
        break;
      }
      uint8_t* data = reinterpret_cast<uint8_t*>(h) + kTxDataOff;
      std::memcpy(data, tpl[flow].data(), len);
      uint64_t ts = 0;
      if (t >= next_probe) {
        ts = now_ns();
        next_probe = t + probe_every;
      }
      stamp(data, seq, ts);
      h->tp_len = len;
      __atomic_store_n(&h->tp_status, TP_STATUS_SEND_REQUEST, __ATOMIC_RELEASE);
      if (++head == e.frames) head = 0;
      if (++flow == c.flows) flow = 0;
      ++seq;
      ++n;
    }
    if (n == 0) {
      // The ring is full of frames the kernel still owns. Some may still be
      // waiting to be sent: a device that stopped its queue (a tap whose
      // reader is behind) makes the kernel leave them in SEND_REQUEST, and
      // only another kick sends them. Kick, then wait a little for room.
      ++r.kicks;
      sendto(e.fd, nullptr, 0, MSG_DONTWAIT, nullptr, 0);
      pollfd p{e.fd, POLLOUT, 0};
      poll(&p, 1, 1);
      continue;
    }
    ++r.kicks;
    if (sendto(e.fd, nullptr, 0, 0, nullptr, 0) < 0 && errno != EAGAIN && errno != ENOBUFS) ++r.errors;
  }
  r.end_ns = now_ns();
  // Frames still waiting in SEND_REQUEST (a stopped queue) get a last chance;
  // those the kernel never took were never offered and are not counted.
  uint64_t pending = 0;
  for (int tries = 0; tries < 200; ++tries) {
    sendto(e.fd, nullptr, 0, MSG_DONTWAIT, nullptr, 0);
    pending = 0;
    for (uint32_t i = 0; i < e.frames; ++i) {
      auto* h = reinterpret_cast<tpacket2_hdr*>(e.ring + size_t(i) * kFrameSlot);
      if (__atomic_load_n(&h->tp_status, __ATOMIC_ACQUIRE) == TP_STATUS_SEND_REQUEST) ++pending;
    }
    if (!pending) break;
    usleep(1000);
  }
  r.sent = seq - pending;
}

void gen_tapfd(Endpoint& e, const Config& c, const std::vector<std::vector<uint8_t>>& tpl, GenResult& r) {
  pin(c.gen_cpu);
  const uint32_t len = c.size - 4;
  const uint64_t probe_every = c.probe_rate > 0 ? uint64_t(1e9 / c.probe_rate) : UINT64_MAX;
  std::vector<uint8_t> buf(len);
  uint64_t seq = 0;
  uint32_t flow = 0;
  const uint64_t start = now_ns();
  const uint64_t end = start + uint64_t(c.seconds * 1e9);
  uint64_t next_probe = start;
  r.start_ns = start;
  for (;;) {
    uint64_t t = now_ns();
    if (t >= end) break;
    const uint64_t allowed = frames_allowed(c, start, t, seq);
    if (!allowed) continue;
    for (uint64_t i = 0; i < allowed; ++i) {
      std::memcpy(buf.data(), tpl[flow].data(), len);
      uint64_t ts = 0;
      if (t >= next_probe) {
        ts = now_ns();
        next_probe = t + probe_every;
      }
      stamp(buf.data(), seq, ts);
      ++r.kicks;
      ssize_t w = write(e.fd, buf.data(), len);
      if (w < 0) {
        if (errno == EAGAIN) {
          pollfd p{e.fd, POLLOUT, 0};
          poll(&p, 1, 1);
        } else {
          ++r.errors;
        }
        break;
      }
      if (++flow == c.flows) flow = 0;
      ++seq;
    }
  }
  r.end_ns = now_ns();
  r.sent = seq;
}

// ------------------------------------------------------------- sink

struct SinkResult {
  uint64_t frames = 0;    // ours (data + probes), duplicates included
  uint64_t unique = 0;    // distinct sequence numbers
  uint64_t dups = 0;
  uint64_t foreign = 0;   // not ours (learning frames, kernel chatter)
  uint64_t ring_drops = 0;  // the sink's own RX ring overflowed (PACKET_STATISTICS)
  uint64_t bytes = 0;
  std::vector<uint64_t> lat_ns;
};

struct Seen {
  std::vector<uint64_t> bits;
  bool mark(uint64_t seq) {
    uint64_t w = seq >> 6;
    if (w >= (1ull << 22)) return true;  // beyond 268M frames: count, don't track
    if (w >= bits.size()) bits.resize(std::max<size_t>(w + 1, bits.size() * 2), 0);
    uint64_t m = 1ull << (seq & 63);
    if (bits[w] & m) return false;
    bits[w] |= m;
    return true;
  }
};

inline void account(const uint8_t* f, uint32_t len, SinkResult& r, Seen& seen) {
  if (len < kPayloadOff + 18 || f[12] != 0x08 || f[13] != 0x00) {
    ++r.foreign;
    return;
  }
  uint16_t magic = uint16_t(f[kPayloadOff] << 8 | f[kPayloadOff + 1]);
  if (magic != kMagicData && magic != kMagicProbe) {
    ++r.foreign;
    return;
  }
  uint64_t seq;
  std::memcpy(&seq, f + kPayloadOff + 2, 8);
  ++r.frames;
  r.bytes += len;
  if (seen.mark(seq)) ++r.unique;
  else ++r.dups;
  if (magic == kMagicProbe) {
    uint64_t ts;
    std::memcpy(&ts, f + kPayloadOff + 10, 8);
    uint64_t t = now_ns();
    if (ts && t > ts) r.lat_ns.push_back(t - ts);
  }
}

std::atomic<bool> g_gen_done{false};
std::atomic<bool> g_sink_ready{false};

void sink_afpacket(Endpoint& e, const Config& c, SinkResult& r) {
  pin(c.sink_cpu);
  Seen seen;
  uint32_t head = 0;
  uint64_t quiet_since = 0;
  uint64_t hard_stop = 0;
  g_sink_ready = true;
  for (;;) {
    auto* h = reinterpret_cast<tpacket2_hdr*>(e.ring + size_t(head) * kFrameSlot);
    uint32_t st = __atomic_load_n(&h->tp_status, __ATOMIC_ACQUIRE);
    if (st & TP_STATUS_USER) {
      const auto* sll = reinterpret_cast<const sockaddr_ll*>(reinterpret_cast<uint8_t*>(h) + kSllOff);
      if (sll->sll_pkttype != PACKET_OUTGOING) account(reinterpret_cast<uint8_t*>(h) + h->tp_mac, h->tp_snaplen, r, seen);
      __atomic_store_n(&h->tp_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
      if (++head == e.frames) head = 0;
      quiet_since = 0;
      continue;
    }
    if (g_gen_done.load(std::memory_order_relaxed)) {
      uint64_t t = now_ns();
      if (!hard_stop) hard_stop = t + 2000000000ull;
      if (!quiet_since) quiet_since = t;
      if (t - quiet_since > 200000000ull || t > hard_stop) break;
    }
    pollfd p{e.fd, POLLIN, 0};
    poll(&p, 1, 10);
  }
  tpacket_stats s{};
  socklen_t l = sizeof(s);
  if (getsockopt(e.fd, SOL_PACKET, PACKET_STATISTICS, &s, &l) == 0) r.ring_drops = s.tp_drops;
}

void sink_tapfd(Endpoint& e, const Config& c, SinkResult& r) {
  pin(c.sink_cpu);
  Seen seen;
  std::vector<uint8_t> buf(65536);
  uint64_t quiet_since = 0;
  uint64_t hard_stop = 0;
  g_sink_ready = true;
  for (;;) {
    ssize_t n = read(e.fd, buf.data(), buf.size());
    if (n > 0) {
      account(buf.data(), uint32_t(n), r, seen);
      quiet_since = 0;
      continue;
    }
    if (g_gen_done.load(std::memory_order_relaxed)) {
      uint64_t t = now_ns();
      if (!hard_stop) hard_stop = t + 2000000000ull;
      if (!quiet_since) quiet_since = t;
      if (t - quiet_since > 200000000ull || t > hard_stop) break;
    }
    pollfd p{e.fd, POLLIN, 0};
    poll(&p, 1, 10);
  }
}

// Drains what arrived before the run (learning frames, chatter).
void drain(Endpoint& e) {
  if (e.kind == "tapfd") {
    uint8_t b[2048];
    while (read(e.fd, b, sizeof(b)) > 0) {
    }
    return;
  }
  // AF_PACKET: nothing to do. The kernel fills the ring in order from slot
  // 0, so the sink reads from slot 0 and counts the learning frames as
  // foreign (skipping slots here would desynchronise the two heads).
}

double pct(std::vector<uint64_t>& v, double q) {
  if (v.empty()) return 0;
  size_t i = std::min(v.size() - 1, size_t(q * double(v.size())));
  return double(v[i]) / 1000.0;
}

}  // namespace

int main(int argc, char** argv) {
  Config c;
  std::string tx_spec, rx_spec;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto val = [&]() -> std::string {
      if (i + 1 >= argc) die("missing value for " + a);
      return argv[++i];
    };
    if (a == "--tx") tx_spec = val();
    else if (a == "--rx") rx_spec = val();
    else if (a == "--seconds") c.seconds = std::atof(val().c_str());
    else if (a == "--max-seconds") c.max_seconds = std::atof(val().c_str());
    else if (a == "--size") c.size = uint32_t(std::atoi(val().c_str()));
    else if (a == "--flows") c.flows = uint32_t(std::atoi(val().c_str()));
    else if (a == "--macs") c.macs = uint32_t(std::atoi(val().c_str()));
    else if (a == "--rate") c.rate = std::atof(val().c_str());
    else if (a == "--probe-rate") c.probe_rate = std::atof(val().c_str());
    else if (a == "--batch") c.batch = uint32_t(std::atoi(val().c_str()));
    else if (a == "--gen-cpu") c.gen_cpu = std::atoi(val().c_str());
    else if (a == "--sink-cpu") c.sink_cpu = std::atoi(val().c_str());
    else die("unknown option " + a);
  }
  if (tx_spec.empty() || rx_spec.empty()) die("usage: trafgen --tx SPEC --rx SPEC [options] (see the header of bench/trafgen/trafgen.cc)");
  if (c.size < 64 || c.size > 1518) die("--size must be 64..1518 (bytes, FCS included)");
  if (c.flows < 1 || c.flows > 65536) die("--flows must be 1..65536");
  if (c.macs < 1 || c.macs > c.flows) die("--macs must be 1..flows");
  if (c.seconds <= 0 || c.seconds > 120) die("--seconds must be in (0, 120]");
  if (c.batch < 1 || c.batch > 1024) die("--batch must be 1..1024");
  // Bounded no matter what: the whole process ends by itself.
  alarm(unsigned(std::max(c.max_seconds, c.seconds + 10)));
  prctl(PR_SET_TIMERSLACK, 1000UL);

  Endpoint tx = parse_spec(tx_spec), rx = parse_spec(rx_spec);
  if (rx.kind == "afpacket") open_afpacket(rx, false, c.rx_frames);
  else open_tapfd(rx);
  if (tx.kind == "afpacket") open_afpacket(tx, true, c.tx_frames);
  else open_tapfd(tx);
  // A plain socket on the generator side for learning frames (the TX ring
  // socket sends only through its ring).
  Endpoint tx_plain = tx;
  if (tx.kind == "afpacket") {
    in_netns(tx.netns, [&] {
      tx_plain.fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
      sockaddr_ll sll{};
      sll.sll_family = AF_PACKET;
      sll.sll_ifindex = int(if_nametoindex(tx.ifname.c_str()));
      bind(tx_plain.fd, reinterpret_cast<sockaddr*>(&sll), sizeof(sll));
    });
  }
  Endpoint rx_plain = rx;
  if (rx.kind == "afpacket") {
    in_netns(rx.netns, [&] {
      rx_plain.fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
      sockaddr_ll sll{};
      sll.sll_family = AF_PACKET;
      sll.sll_ifindex = int(if_nametoindex(rx.ifname.c_str()));
      bind(rx_plain.fd, reinterpret_cast<sockaddr*>(&sll), sizeof(sll));
    });
  }
  auto tpl = make_templates(c);

  // Learning: both ends announce their MACs, twice, then a pause.
  for (int round = 0; round < 2; ++round) {
    for (uint32_t m = 0; m < c.macs; ++m) send_one(rx_plain, learn_frame(1, m));
    for (uint32_t m = 0; m < c.macs; ++m) send_one(tx_plain, learn_frame(0, m));
    usleep(100000);
  }
  usleep(100000);
  drain(rx);

  SinkResult sr;
  GenResult gr;
  std::thread sink([&] {
    if (rx.kind == "afpacket") sink_afpacket(rx, c, sr);
    else sink_tapfd(rx, c, sr);
  });
  while (!g_sink_ready) usleep(1000);
  usleep(20000);
  std::thread gen([&] {
    if (tx.kind == "afpacket") gen_afpacket(tx, c, tpl, gr);
    else gen_tapfd(tx, c, tpl, gr);
  });
  gen.join();
  g_gen_done = true;
  sink.join();

  const double secs = double(gr.end_ns - gr.start_ns) / 1e9;
  const uint64_t lost = gr.sent > sr.unique ? gr.sent - sr.unique : 0;
  std::sort(sr.lat_ns.begin(), sr.lat_ns.end());
  const double tx_pps = double(gr.sent) / secs, rx_pps = double(sr.unique) / secs;
  std::printf(
      "{\"tx\":\"%s\",\"rx\":\"%s\",\"size\":%u,\"flows\":%u,\"macs\":%u,\"rate\":%.0f,\"batch\":%u,"
      "\"seconds\":%.4f,\"sent\":%llu,\"tx_errors\":%llu,\"kicks\":%llu,\"tx_pps\":%.0f,"
      "\"received\":%llu,\"delivered\":%llu,\"duplicates\":%llu,\"foreign\":%llu,\"sink_ring_drops\":%llu,"
      "\"lost\":%llu,\"loss_pct\":%.4f,\"rx_pps\":%.0f,\"gbps\":%.4f,"
      "\"latency_us\":{\"probes\":%zu,\"min\":%.2f,\"p50\":%.2f,\"p99\":%.2f,\"p999\":%.2f,\"max\":%.2f}}\n",
      tx.text.c_str(), rx.text.c_str(), c.size, c.flows, c.macs, c.rate, c.batch, secs,
      (unsigned long long)gr.sent, (unsigned long long)gr.errors, (unsigned long long)gr.kicks, tx_pps,
      (unsigned long long)sr.frames, (unsigned long long)sr.unique, (unsigned long long)sr.dups,
      (unsigned long long)sr.foreign, (unsigned long long)sr.ring_drops, (unsigned long long)lost,
      gr.sent ? 100.0 * double(lost) / double(gr.sent) : 0.0, rx_pps, rx_pps * c.size * 8 / 1e9,
      sr.lat_ns.size(), sr.lat_ns.empty() ? 0.0 : double(sr.lat_ns.front()) / 1000.0, pct(sr.lat_ns, 0.5),
      pct(sr.lat_ns, 0.99), pct(sr.lat_ns, 0.999), sr.lat_ns.empty() ? 0.0 : double(sr.lat_ns.back()) / 1000.0);
  return 0;
}
