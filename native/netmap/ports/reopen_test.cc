// A kernel port whose interface goes away and comes back closes and opens
// it off the engine thread (ports/off_thread.h): the engine's link check
// (link_state()) never waits for those system calls, so the other ports of
// the switch go on meanwhile. Each test runs alone in a network namespace of
// its own; needs root, skipped with the reason otherwise.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "ports/afxdp.h"
#include "ports/off_thread.h"
#include "ports/spec.h"
#include "ports/test_netns.h"

namespace vpc {
namespace {

using Clock = std::chrono::steady_clock;

bool make_veth() {
  return system("ip link add vtroa type veth peer name vtrob && ip link set vtroa up && ip link set vtrob up") == 0;
}

// Holds every OffThread job at its start until release(); counts them.
class Gate {
 public:
  Gate() {
    off_thread_test_gate() = [this] {
      std::unique_lock<std::mutex> g(mu_);
      ++held_;
      cv_.notify_all();
      cv_.wait(g, [this] { return open_; });
    };
  }
  ~Gate() {
    release();
    off_thread_test_gate() = nullptr;  // the test waited for its jobs (detach) before this
  }
  void release() {
    std::lock_guard<std::mutex> g(mu_);
    open_ = true;
    cv_.notify_all();
  }
  bool wait_held(int n) {
    std::unique_lock<std::mutex> g(mu_);
    return cv_.wait_for(g, std::chrono::seconds(5), [&] { return held_ >= n; });
  }
  int held() {
    std::lock_guard<std::mutex> g(mu_);
    return held_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int held_ = 0;
  bool open_ = false;
};

// Calls link_state() as the engine's housekeeping does (every 20 ms here)
// until the port is up; false after 5 s.
bool comes_up(Port& port) {
  const auto end = Clock::now() + std::chrono::seconds(5);
  while (Clock::now() < end) {
    if (port.link_state() == LinkState::kUp) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

// A broadcast frame sent on the veth's other end reaches the port's rx_burst.
bool receives(Port& port, BufferPool& pool) {
  int s = socket(AF_PACKET, SOCK_RAW, 0);
  if (s < 0) return false;
  sockaddr_ll sll{};
  sll.sll_family = AF_PACKET;
  sll.sll_ifindex = int(if_nametoindex("vtrob"));
  uint8_t f[60] = {};
  std::memset(f, 0xff, 6);
  f[6] = 0x02, f[11] = 0x42;
  f[12] = 0x88, f[13] = 0xb5;  // local experimental EtherType
  BufferCache cache(std::shared_ptr<BufferPool>(&pool, [](BufferPool*) {}));
  bool got = false;
  const auto end = Clock::now() + std::chrono::seconds(3);
  while (!got && Clock::now() < end) {
    sendto(s, f, sizeof f, 0, reinterpret_cast<sockaddr*>(&sll), sizeof sll);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    Pkt pkts[kMaxBurst];
    for (uint16_t n = port.rx_burst(pkts, kMaxBurst), i = 0; i < n; ++i) {
      got = got || (pkts[i].len >= 14 && pool.frame(pkts[i])[11] == 0x42);
      cache.free(pkts[i].buf);
    }
  }
  cache.flush();
  close(s);
  return got;
}

void interface_comes_and_goes_off_the_engine_thread(const char* spec_text) {
  std::string skip = in_own_netns([&] {
    ASSERT_TRUE(make_veth());
    BufferPoolOptions po;
    po.count = 8192;
    po.large_count = 16;
    po.hugepages = false;
    auto pool = BufferPool::create(po);
    const uint32_t free0 = pool->available();
    auto st = std::make_shared<PortStatus>();
    PortSpec spec;
    std::string err;
    ASSERT_TRUE(parse_port_spec(spec_text, &spec, &err)) << err;
    auto port = open_port(spec, KernelPortOptions{}, pool, st);
    ASSERT_TRUE(comes_up(*port));
    ASSERT_TRUE(receives(*port, *pool));

    Gate gate;
    // Gone: the link check lets go of the sockets at once; closing them
    // (held here) happens on the job's thread.
    ASSERT_EQ(system("ip link del vtroa"), 0);
    EXPECT_EQ(port->link_state(), LinkState::kDown);
    ASSERT_TRUE(gate.wait_held(1));
    EXPECT_FALSE(st->attached.load());
    // Back, while the close is still held: every link check returns at once
    // (down), and no second job starts beside the first.
    ASSERT_TRUE(make_veth());
    // (On a thread of their own: link checks that waited for the held job
    // would never return; then the gate opens and the test fails instead of
    // hanging.)
    std::atomic<int> downs{0};
    std::atomic<bool> checked{false};
    std::thread checks([&] {
      for (int i = 0; i < 10; ++i) downs += port->link_state() == LinkState::kDown;
      checked = true;
    });
    const auto end = Clock::now() + std::chrono::seconds(5);
    while (!checked && Clock::now() < end) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    const bool waited = !checked;
    if (waited) gate.release();
    checks.join();
    ASSERT_FALSE(waited) << "link checks waited for the held job";
    EXPECT_EQ(downs.load(), 10);
    EXPECT_EQ(gate.held(), 1);
    EXPECT_EQ(st->c[PortStatus::reopens].load(), 0u);

    // Released: the next checks adopt the closed state, open the interface
    // again (another job) and adopt that; frames flow.
    gate.release();
    ASSERT_TRUE(comes_up(*port)) << st->error();
    EXPECT_EQ(gate.held(), 2);
    EXPECT_EQ(st->c[PortStatus::reopens].load(), 1u);
    EXPECT_TRUE(st->attached.load());
    EXPECT_EQ(st->ifindex.load(), int(if_nametoindex("vtroa")));
    EXPECT_TRUE(receives(*port, *pool));

    // Deleted once more and the port closed while that job runs: detach
    // waits for it, and every buffer comes back.
    ASSERT_EQ(system("ip link del vtroa"), 0);
    EXPECT_EQ(port->link_state(), LinkState::kDown);
    port->detach();
    port.reset();
    EXPECT_EQ(pool->available(), free0);
  });
  if (!skip.empty()) GTEST_SKIP() << skip;
}

TEST(OffThread, OneJobAtATimeItsResultTakenOnceWithoutWaiting) {
  Gate gate;
  OffThread<std::string> job;
  EXPECT_FALSE(job.busy());
  std::string out;
  EXPECT_FALSE(job.take(&out));
  std::thread::id ran_on;
  job.start([&] {
    ran_on = std::this_thread::get_id();
    return std::string("opened");
  });
  ASSERT_TRUE(gate.wait_held(1));
  EXPECT_TRUE(job.busy());
  EXPECT_FALSE(job.take(&out)) << "take() waited for a running job";
  gate.release();
  const auto end = Clock::now() + std::chrono::seconds(5);
  while (!job.take(&out) && Clock::now() < end) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_EQ(out, "opened");
  EXPECT_NE(ran_on, std::this_thread::get_id());
  EXPECT_FALSE(job.busy());
  EXPECT_FALSE(job.take(&out));

  // wait() keeps the result for take(); one nobody takes goes with the OffThread.
  job.start([] { return std::string("again"); });
  job.wait();
  EXPECT_TRUE(job.busy());
  EXPECT_TRUE(job.take(&out));
  EXPECT_EQ(out, "again");
  auto alive = std::make_shared<int>(1);
  std::weak_ptr<int> watch = alive;
  {
    OffThread<std::shared_ptr<int>> left;
    left.start([a = std::move(alive)] { return a; });
  }
  EXPECT_TRUE(watch.expired()) << "an untaken result outlived its OffThread";
}

TEST(Reopen, AfPacketClosesAndOpensItsInterfaceOffTheEngineThread) {
  interface_comes_and_goes_off_the_engine_thread("afpacket:vtroa");
}

TEST(Reopen, AfXdpClosesAndOpensItsInterfaceOffTheEngineThread) {
  if (!afxdp_built()) GTEST_SKIP() << "AF_XDP not built (libxdp/libbpf missing)";
  interface_comes_and_goes_off_the_engine_thread("afxdp:vtroa");
}

}  // namespace
}  // namespace vpc
