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
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "core/bench_util.h"
#include "ports/virtio_ring.h"

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

}  // namespace

int main(int argc, char** argv) {
  bench::Args a = bench::parse_args(argc, argv);
  struct Case {
    const char* name;
    uint32_t len;
  } cases[] = {{"rxtx-64", 60}, {"rxtx-1518", 1514}, {"rxtx-9000", 9014}};
  for (const Case& k : cases)
    if (a.only.empty() || a.only == k.name) run_case(k.name, k.len, a.seconds);
  return 0;
}
