// Microbenchmark for the split-virtqueue code of vhost-user ports
// (ports/virtio_ring.h): what one frame costs the engine on a vhost-user
// port, both directions, single thread, without a front end or a scheduler
// in the way. A guest's transmit queue is refilled with a burst of frames,
// vq_dequeue() copies them into pool buffers, vq_enqueue() copies them into
// the guest's receive buffers (mergeable, EVENT_IDX, VERSION_1 as QEMU and
// testpmd negotiate), and vq_notify() runs after each as in rx_burst and
// tx_burst (no call eventfd: notification cost is a system call when the
// guest wants one). Prints figures and asserts nothing about time.
//
//   virtio_bench [--seconds S] [--only CASE]
//
// Cases: rxtx-64 (64-byte frames), rxtx-1518, rxtx-9000 (large buffers on
// the way in, six merged receive buffers on the way out).
//
//   virtio_bench --callgrind [--only CASE] [--frames N]
//
// The engine's whole path between a pipe port and a vhost-user port, for
// callgrind (npm run bench -- vhost --callgrind, bench/callgrind.ts): a real
// Engine stepped on this thread (Engine::run_once), a real VhostUserPort
// whose front end is a guest played here (the protocol over the port's
// socket, the rings in a shared memfd), and a fixed number of frames, so that
//   valgrind --tool=callgrind --toggle-collect='vpc::Engine::iterate*' virtio_bench --callgrind
// counts what one frame costs the engine on that path: both ports' rx_burst
// and tx_burst (the copy out of or into the guest's ring included),
// classification, learning, lookup and the tx flush. One flow, learned
// beforehand (unicast). The guest polls, as testpmd does: no call eventfd.
//   pipe-vhost-64, pipe-vhost-1518   pipe -> engine -> the guest's receive queue
//   vhost-pipe-64, vhost-pipe-1518   the guest's transmit queue -> engine -> pipe
//   pipe-pipe-64                     pipe -> engine -> pipe, the reference
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "core/bench_util.h"
#include "core/engine.h"
#include "ports/vhost_user.h"
#include "ports/vhost_user_request.h"
#include "ports/virtio_ring.h"
#include "proto/ethernet.h"

using namespace vpc;
using Clock = std::chrono::steady_clock;

namespace {

constexpr uint32_t kQ = 256;
constexpr uint64_t kGpa = 0x40000000;

struct Guest {
  std::vector<uint8_t> mem;
  GuestMemory gm;
  VirtQueue tx, rx;
  VirtqCounters ctr_tx, ctr_rx;
  uint64_t tx_bufs = 1 << 20, rx_bufs = 0;
  explicit Guest(uint32_t frame_len) : mem(64 << 20) {
    gm.add(GuestRegion{kGpa, mem.size(), uint64_t(uintptr_t(mem.data())), mem.data()});
    rx_bufs = tx_bufs + uint64_t(kQ) * 10240;
    setup(tx, ctr_tx, 0);
    setup(rx, ctr_rx, 0x10000);
    for (uint32_t i = 0; i < kQ; ++i) {
      uint8_t* b = mem.data() + tx_bufs + uint64_t(i) * 10240;
      std::memset(b, 0, 12);
      for (uint32_t k = 0; k < frame_len; ++k) b[12 + k] = uint8_t(k * 7 + i);
      b[12] = 0x02;  // unicast destination
      tx.desc[i] = VringDesc{kGpa + tx_bufs + uint64_t(i) * 10240, 12 + frame_len, 0, 0};
      rx.desc[i] = VringDesc{kGpa + rx_bufs + uint64_t(i) * 2048, 2048, kDescWrite, 0};
      tx.avail[2 + i] = uint16_t(i);
      rx.avail[2 + i] = uint16_t(i);
    }
  }
  void setup(VirtQueue& q, VirtqCounters& c, uint64_t at) {
    q.ctr = &c;
    q.num = kQ;
    q.desc_uva = uint64_t(uintptr_t(mem.data())) + at;
    q.avail_uva = q.desc_uva + 16 * kQ;
    q.used_uva = q.desc_uva + 0x2000;
    q.addr_set = q.enabled = q.started = true;
    std::string err;
    if (!q.map(gm, &err)) {
      std::fprintf(stderr, "map: %s\n", err.c_str());
      std::exit(1);
    }
  }
  // The guest hands the device a ring's worth of frames and of buffers.
  void refill(uint32_t n) {
    __atomic_store_n(&tx.avail[1], uint16_t(tx.avail[1] + n), __ATOMIC_RELEASE);
    __atomic_store_n(&rx.avail[1], uint16_t(rx.avail[1] + n), __ATOMIC_RELEASE);
  }
};

void run_case(const char* name, uint32_t frame_len, double seconds) {
  BufferPoolOptions po;
  po.count = 8192;
  po.large_count = 300;
  po.hugepages = false;
  auto pool = BufferPool::create(po);
  BufferCache cache(pool);
  Guest g(frame_len);
  VirtioNetCtx c;
  c.mem = &g.gm;
  c.pool = pool.get();
  c.cache = &cache;
  c.hdr_len = kVnetHdrMrgLen;
  c.mrg_rxbuf = c.event_idx = c.indirect = true;
  // 9000-byte frames take 5 receive buffers each: a ring holds 51.
  const uint32_t burst = frame_len > 2000 ? 48 : kQ;
  Pkt pkts[kMaxBurst];
  std::vector<double> windows;
  const auto end = Clock::now() + std::chrono::duration<double>(seconds);
  uint64_t total = 0;
  while (Clock::now() < end) {
    const auto t0 = Clock::now();
    uint64_t n = 0;
    for (int r = 0; r < 64; ++r) {
      g.refill(burst);
      const uint16_t got = vq_dequeue(g.tx, c, pkts, uint16_t(burst));
      vq_notify(g.tx, c);
      const uint16_t put = vq_enqueue(g.rx, c, pkts, got);
      vq_notify(g.rx, c);
      for (uint16_t k = put; k < got; ++k) cache.free(pkts[k].buf);
      // The guest takes what it received and gives the buffers back as they were.
      g.rx.last_avail = g.rx.avail[1];
      g.rx.used_idx = g.rx.avail[1];
      n += put;
    }
    const double s = std::chrono::duration<double>(Clock::now() - t0).count();
    windows.push_back(double(n) / s / 1e6);
    total += n;
  }
  std::sort(windows.begin(), windows.end());
  uint64_t dtx = 0, drx = 0;
  for (size_t i = 0; i < kVirtqDrops; ++i) {
    dtx += g.ctr_tx.drops[i];
    drx += g.ctr_rx.drops[i];
  }
  std::printf("%-10s %5u B  best %6.2f Mpps  median %6.2f Mpps  (%.0f ns/frame best, both directions; %llu frames, drops tx %llu rx %llu)\n",
              name, frame_len, windows.back(), windows[windows.size() / 2], 1e3 / windows.back(),
              static_cast<unsigned long long>(total),
              static_cast<unsigned long long>(dtx), static_cast<unsigned long long>(drx));
}

// ---- the engine's path to and from a guest, for callgrind

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "virtio_bench: %s\n", what.c_str());
  std::exit(1);
}

constexpr Mac kGuestMac = 0x02000000b001ull, kPipeMac = 0x02000000b002ull;

// A virtio-net front end with one queue pair in a memfd it shares with the
// port: receive queue 0, transmit queue 1, 1024 entries each (the e2e
// benchmark's queue_size), every descriptor a 2 KiB buffer of its own. The
// guest keeps its receive queue full of buffers and (as a sender) its
// transmit queue full of frames; a descriptor is reused as soon as the
// device has used it, which it does in order.
class BenchGuest {
 public:
  static constexpr uint32_t kQueue = 1024;
  static constexpr uint64_t kMem = 8 << 20, kGpa = 0x40000000, kRxBufs = 1 << 20, kTxBufs = 4 << 20;

  BenchGuest(const std::string& sock, uint32_t frame_len) {
    memfd_ = memfd_create("bench-guest", MFD_CLOEXEC);
    if (memfd_ < 0 || ftruncate(memfd_, kMem) != 0) fail("memfd");
    mem_ = static_cast<uint8_t*>(mmap(nullptr, kMem, PROT_READ | PROT_WRITE, MAP_SHARED, memfd_, 0));
    if (mem_ == MAP_FAILED) fail("mmap");
    std::memset(mem_, 0, kMem);
    for (uint32_t i = 0; i < kQueue; ++i) {
      desc(0)[i] = VringDesc{kGpa + kRxBufs + uint64_t(i) * 2048, 2048, kDescWrite, 0};
      avail(0)[2 + i] = uint16_t(i);
      uint8_t* b = mem_ + kTxBufs + uint64_t(i) * 2048;  // virtio-net header (zero), then the frame
      mac_store(b + kVnetHdrMrgLen, kPipeMac);
      mac_store(b + kVnetHdrMrgLen + 6, kGuestMac);
      store_be16(b + kVnetHdrMrgLen + 12, kEtherTypeIpv4);
      desc(1)[i] = VringDesc{kGpa + kTxBufs + uint64_t(i) * 2048, kVnetHdrMrgLen + frame_len, 0, 0};
      avail(1)[2 + i] = uint16_t(i);
    }
    avail(0)[1] = uint16_t(kQueue);  // every receive buffer posted
    fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::strncpy(sa.sun_path, sock.c_str(), sizeof sa.sun_path - 1);
    if (connect(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) fail("connect " + sock);
  }
  ~BenchGuest() {
    close(fd_);
    munmap(mem_, kMem);
    close(memfd_);
  }

  // The set-up messages, none of which asks for a reply (no protocol
  // features: a ring is enabled by its kick message).
  void setup() {
    using namespace vfeat;
    send(kVuSetOwner, nullptr, 0);
    const uint64_t f = bit(kVersion1) | bit(kNetMrgRxbuf) | bit(kRingEventIdx) | bit(kRingIndirect);
    send(kVuSetFeatures, &f, 8);
    uint8_t mt[8 + 32] = {};
    const uint32_t one = 1;
    const uint64_t region[4] = {kGpa, kMem, uva(0), 0};
    std::memcpy(mt, &one, 4);
    std::memcpy(mt + 8, region, 32);
    send(kVuSetMemTable, mt, sizeof mt, memfd_);
    for (uint32_t q = 0; q < 2; ++q) {
      const uint32_t num[2] = {q, kQueue}, base[2] = {q, 0};
      send(kVuSetVringNum, num, 8);
      send(kVuSetVringBase, base, 8);
      uint8_t addr[40] = {};
      const uint64_t a[3] = {uva(ring(q)), uva(ring(q) + 0x8000), uva(ring(q) + 16 * kQueue)};
      std::memcpy(addr, &q, 4);
      std::memcpy(addr + 8, a, 24);
      send(kVuSetVringAddr, addr, sizeof addr);
      const uint64_t nofd = q | kVuVringNoFd;
      send(kVuSetVringCall, &nofd, 8);
      send(kVuSetVringKick, &nofd, 8);
    }
  }
  // Receive queue: takes what the device delivered and posts the buffers
  // again. Returns the frames delivered.
  uint32_t recycle_rx() { return repost(0, kQueue); }
  // Transmit queue: takes back what the device sent and publishes frames
  // again, up to `limit` in flight (an avail index never moves back).
  // Returns the frames sent.
  uint32_t refill_tx(uint32_t limit) { return repost(1, limit); }

 private:
  static uint64_t ring(uint32_t q) { return uint64_t(q) * 0x10000; }
  uint64_t uva(uint64_t off) const { return uint64_t(uintptr_t(mem_)) + off; }
  VringDesc* desc(uint32_t q) { return reinterpret_cast<VringDesc*>(mem_ + ring(q)); }
  uint16_t* avail(uint32_t q) { return reinterpret_cast<uint16_t*>(mem_ + ring(q) + 16 * kQueue); }
  uint16_t used_idx(uint32_t q) {
    return __atomic_load_n(reinterpret_cast<uint16_t*>(mem_ + ring(q) + 0x8000 + 2), __ATOMIC_ACQUIRE);
  }
  uint32_t repost(uint32_t q, uint32_t limit) {
    const uint16_t used = used_idx(q), next = uint16_t(used + limit);
    const uint32_t done = uint16_t(used - seen_[q]);
    seen_[q] = used;
    if (int16_t(next - avail(q)[1]) > 0) __atomic_store_n(&avail(q)[1], next, __ATOMIC_RELEASE);
    return done;
  }
  void send(uint32_t req, const void* payload, uint32_t size, int pass_fd = -1) {
    if (vu_send_request(fd_, req, kVuVersion, payload, size, &pass_fd, pass_fd >= 0 ? 1 : 0) != ssize_t(12 + size))
      fail("sendmsg: " + std::string(strerror(errno)));
  }

  int memfd_ = -1, fd_ = -1;
  uint8_t* mem_ = nullptr;
  uint16_t seen_[2] = {0, 0};
};

struct PathCase {
  const char* name;
  enum { kPipeToVhost, kVhostToPipe, kPipeToPipe } path;
  uint32_t frame_len;  // without the FCS
};
const PathCase kPathCases[] = {
    {"pipe-vhost-64", PathCase::kPipeToVhost, 60},   {"pipe-vhost-1518", PathCase::kPipeToVhost, 1514},
    {"vhost-pipe-64", PathCase::kVhostToPipe, 60},   {"vhost-pipe-1518", PathCase::kVhostToPipe, 1514},
    {"pipe-pipe-64", PathCase::kPipeToPipe, 60},
};

PortId add_port(Engine& e, SwitchId sw, std::unique_ptr<Port> p) {
  auto c = bench::cmd(CmdOp::kCreatePort);
  c->new_port = std::move(p);
  c->untagged = sw;
  Result r = e.execute(std::move(c));
  if (!r.ok()) fail("create port: " + r.message);
  return r.id;
}

// Sends up to `n` frames of `len` bytes from `src` to `dst` into a pipe.
uint32_t pipe_send(PipePeer& peer, uint32_t n, uint32_t len, Mac src, Mac dst) {
  Pkt pk[kMaxBurst] = {};
  BufferPool& pool = peer.pool();
  uint32_t got = 0;
  for (; got < n && got < kMaxBurst; ++got) {
    uint32_t idx;
    if (!peer.cache().alloc(&idx)) break;
    pk[got] = Pkt{idx, pool.headroom(), uint16_t(len)};
    uint8_t* f = pool.frame(pk[got]);
    mac_store(f, dst);
    mac_store(f + 6, src);
    store_be16(f + 12, kEtherTypeIpv4);
  }
  const uint32_t sent = peer.send(pk, got);
  for (uint32_t i = sent; i < got; ++i) peer.cache().free(pk[i].buf);
  return sent;
}

void run_path(const PathCase& pc, uint64_t frames) {
  EngineOptions o;
  o.pool.count = 16384;
  o.pool.hugepages = false;
  o.busy_poll = true;
  o.event_mask = 0;
  Engine e(o);
  auto cs = bench::cmd(CmdOp::kCreateSwitch);
  cs->switch_cfg.vni = 100;
  Result rs = e.execute(std::move(cs));
  if (!rs.ok()) fail("create switch: " + rs.message);
  const SwitchId sw = rs.id;
  PipePair a = e.new_pipe(1024);
  add_port(e, sw, std::move(a.port));
  std::unique_ptr<PipePeer> b_peer;
  std::unique_ptr<BenchGuest> guest;
  std::string dir;
  PortId far = kNoId;
  if (pc.path == PathCase::kPipeToPipe) {
    PipePair b = e.new_pipe(1024);
    far = add_port(e, sw, std::move(b.port));
    b_peer = std::move(b.peer);
  } else {
    char tmpl[] = "/tmp/vpc-virtio-bench-XXXXXX";
    if (!mkdtemp(tmpl)) fail("mkdtemp");
    dir = tmpl;
    auto st = std::make_shared<PortStatus>();
    VhostUserOptions vo;
    vo.socket = dir + "/guest.sock";
    far = add_port(e, sw, VhostUserPort::open(vo, e.pool(), st));
    guest = std::make_unique<BenchGuest>(vo.socket, pc.frame_len);
    guest->setup();
    // The engine takes the messages in its rx_burst; the link comes up with
    // the next housekeeping.
    const auto deadline = Clock::now() + std::chrono::seconds(20);
    while (!cnt_read(e.port_counters(far).c[size_t(PortCounter::link_up)])) {
      if (Clock::now() > deadline) fail("the vhost-user port did not come up: " + st->error());
      e.run_once();
      usleep(1000);
    }
  }
  // Teach the switch both MACs: one frame each way.
  if (guest) {
    guest->refill_tx(1);
    e.run_once();
    bench::drain(*a.peer);
  } else {
    pipe_send(*b_peer, 1, pc.frame_len, kGuestMac, kPipeMac);
    e.run_once();
    bench::drain(*a.peer);
  }
  pipe_send(*a.peer, 1, pc.frame_len, kPipeMac, kGuestMac);
  e.run_once();
  if (guest) guest->recycle_rx();
  else bench::drain(*b_peer);

  uint64_t done = 0;
  if (pc.path == PathCase::kVhostToPipe) {
    while (done < frames) {
      guest->refill_tx(uint32_t(std::min<uint64_t>(BenchGuest::kQueue, frames - done)));
      e.run_once();
      done += bench::drain(*a.peer);
    }
  } else {
    while (done < frames) {
      pipe_send(*a.peer, uint32_t(std::min<uint64_t>(kMaxBurst, frames - done)), pc.frame_len, kPipeMac, kGuestMac);
      e.run_once();
      done += guest ? guest->recycle_rx() : bench::drain(*b_peer);
    }
  }
  const PortCounterBlock& fc = e.port_counters(far);
  std::printf("%-16s %llu frames stepped (far port: rx %llu, tx %llu)\n", pc.name, static_cast<unsigned long long>(done),
              static_cast<unsigned long long>(cnt_read(fc.c[size_t(PortCounter::rx_packets)])),
              static_cast<unsigned long long>(cnt_read(fc.c[size_t(PortCounter::tx_packets)])));
  guest.reset();
  if (!dir.empty()) rmdir(dir.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  bench::Args a = bench::parse_args(argc, argv);
  if (a.callgrind) {
    bool any = false;
    for (const PathCase& pc : kPathCases)
      if (a.only.empty() || a.only == pc.name) {
        run_path(pc, a.frames);
        any = true;
      }
    if (!any) fail("--only: no such case");
    return 0;
  }
  struct Case {
    const char* name;
    uint32_t len;
  } cases[] = {{"rxtx-64", 60}, {"rxtx-1518", 1514}, {"rxtx-9000", 9014}};
  for (const Case& k : cases)
    if (a.only.empty() || a.only == k.name) run_case(k.name, k.len, a.seconds);
  return 0;
}
