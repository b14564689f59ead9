// Tests for ports/tap.h, driven directly (no engine), in a network namespace
// of their own: the test thread unshares one, creates the tap there, and
// plays the kernel's side with an AF_PACKET socket bound to the tap. Needs
// root (CAP_NET_ADMIN); skipped with the reason otherwise.
#include "ports/tap.h"
#include "ports/test_netns.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <gtest/gtest.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <csignal>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <functional>
#include <thread>
#include <vector>

namespace vpc {
namespace {

constexpr uint16_t kTestEtherType = 0x88B5;  // IEEE local experimental: only the test's frames carry it
constexpr uint32_t kFrames = 64;

std::shared_ptr<BufferPool> small_pool() {
  BufferPoolOptions o;
  o.count = 4096;
  o.hugepages = false;
  return BufferPool::create(o);
}

// Frame i: broadcast from a MAC of its own, the test's EtherType, i in the
// payload.
std::vector<uint8_t> test_frame(uint32_t i) {
  std::vector<uint8_t> f(60, 0);
  std::memset(f.data(), 0xFF, 6);
  const uint8_t src[6] = {0x02, 0, 0, 0, uint8_t(i >> 8), uint8_t(i)};
  std::memcpy(f.data() + 6, src, 6);
  f[12] = kTestEtherType >> 8;
  f[13] = kTestEtherType & 0xFF;
  f[14] = uint8_t(i >> 8);
  f[15] = uint8_t(i);
  return f;
}

// Frame i of flow i % flows as IPv4/UDP (198.18.0.x -> 198.18.1.1, the test's
// EtherType value as destination port): the kernel hashes IP flows to tap
// queues, not unknown EtherTypes.
std::vector<uint8_t> udp_frame(uint32_t i, uint32_t flows) {
  std::vector<uint8_t> f(60, 0);
  std::memset(f.data(), 0xFF, 6);
  const uint8_t src[6] = {0x02, 0, 0, 1, 0, uint8_t(i % flows)};
  std::memcpy(f.data() + 6, src, 6);
  f[12] = 0x08;
  f[14] = 0x45;
  f[17] = 46;  // total length
  f[22] = 64;  // TTL
  f[23] = 17;  // UDP
  const uint8_t sip[4] = {198, 18, 0, uint8_t(i % flows)}, dip[4] = {198, 18, 1, 1};
  std::memcpy(f.data() + 26, sip, 4);
  std::memcpy(f.data() + 30, dip, 4);
  f[34] = 0x10;
  f[35] = uint8_t(i % flows);
  f[36] = kTestEtherType >> 8;
  f[37] = kTestEtherType & 0xFF;
  f[39] = 26;  // UDP length
  f[42] = uint8_t(i >> 8);
  f[43] = uint8_t(i);
  return f;
}

struct KernelSide {
  int fd = -1;
  int ifindex = 0;
  explicit KernelSide(const char* ifname) {
    ifindex = int(if_nametoindex(ifname));
    fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
    sockaddr_ll sa{};
    sa.sll_family = AF_PACKET;
    sa.sll_protocol = htons(ETH_P_ALL);
    sa.sll_ifindex = ifindex;
    if (fd >= 0) bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa));
  }
  ~KernelSide() {
    if (fd >= 0) close(fd);
  }
  // The kernel transmits these on the tap: the port receives them.
  void send(uint32_t first, uint32_t n, uint32_t udp_flows = 0) {
    for (uint32_t i = first; i < first + n; ++i) {
      auto f = udp_flows ? udp_frame(i, udp_flows) : test_frame(i);
      ASSERT_EQ(::send(fd, f.data(), f.size(), 0), ssize_t(f.size()));
    }
  }
  // Frames the port wrote into the tap, as the kernel received them.
  std::vector<uint32_t> receive(uint32_t want, int timeout_ms) {
    std::vector<uint32_t> ids;
    while (ids.size() < want) {
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, timeout_ms) <= 0) break;
      uint8_t b[2048];
      sockaddr_ll from{};
      socklen_t fl = sizeof(from);
      ssize_t r = recvfrom(fd, b, sizeof(b), 0, reinterpret_cast<sockaddr*>(&from), &fl);
      if (r < 16 || from.sll_pkttype == PACKET_OUTGOING) continue;
      if (b[12] == (kTestEtherType >> 8) && b[13] == (kTestEtherType & 0xFF)) ids.push_back(uint32_t(b[14] << 8 | b[15]));
      else if (r >= 44 && b[12] == 0x08 && b[23] == 17 && b[36] == (kTestEtherType >> 8) && b[37] == (kTestEtherType & 0xFF))
        ids.push_back(uint32_t(b[42] << 8 | b[43]));
    }
    return ids;
  }
};

bool ours(const BufferPool& pool, const Pkt& p) {
  const uint8_t* f = pool.frame(p);
  if (p.len >= 16 && f[12] == (kTestEtherType >> 8) && f[13] == (kTestEtherType & 0xFF)) return true;
  return p.len >= 44 && f[12] == 0x08 && f[13] == 0 && f[23] == 17 && f[36] == (kTestEtherType >> 8) &&
         f[37] == (kTestEtherType & 0xFF);
}

uint64_t kicks(const PortStatus& st) { return st.c[PortStatus::kicks].load(); }

// io_uring's worker threads of this process: a read the kernel could not run
// inline (and parked on a blocking worker) shows up as one of them.
int iou_workers() {
  int n = 0;
  if (DIR* d = opendir("/proc/self/task")) {
    while (dirent* e = readdir(d)) {
      if (e->d_name[0] == '.') continue;
      char path[300], comm[32] = {};
      std::snprintf(path, sizeof(path), "/proc/self/task/%s/comm", e->d_name);
      if (FILE* f = std::fopen(path, "r")) {
        if (std::fgets(comm, sizeof(comm), f) && std::strncmp(comm, "iou-wrk", 7) == 0) ++n;
        std::fclose(f);
      }
    }
    closedir(d);
  }
  return n;
}

// Waits until the port has something to hand over (its poll descriptor). As
// in the engine, only after rx_burst found nothing: frames already reaped
// but not yet handed out do not make the descriptor readable.
void wait_readable(Port& port) {
  pollfd p{port.poll_fd(), POLLIN, 0};
  poll(&p, 1, 1000);
}

KernelPortOptions options(KernelPortOptions::IoUring io, uint32_t queues = 1) {
  KernelPortOptions o;
  o.io_uring = io;
  o.queues = queues;
  return o;
}

TEST(Tap, IoUringBatchesReceiveAndSendNotOneCallPerFrame) {
  auto pool = small_pool();
  const uint32_t free_before = pool->available();
  std::string skip = in_own_netns([&] {
    BufferCache eng(pool);  // the engine's side of the pool
    auto st = std::make_shared<PortStatus>();
    auto port = TapPort::open("vt-uring", options(KernelPortOptions::IoUring::kOn), pool, st);
    EXPECT_NE(st->io().find("io_uring"), std::string::npos) << st->io();
    KernelSide k("vt-uring");
    ASSERT_GE(k.fd, 0);

    // 64 frames queued in the tap: they come in order, with a few
    // io_uring_enter calls (bursts of 1, 2, 4, ... 32 reads as they keep
    // coming back full), not one system call per frame.
    k.send(0, kFrames);
    wait_readable(*port);
    Pkt pkts[kMaxBurst];
    const uint64_t k0 = kicks(*st);
    uint32_t got = 0, received = 0;
    for (int calls = 0; calls < 20 && got < kFrames; ++calls) {
      const uint16_t n = port->rx_burst(pkts, kMaxBurst);
      received += n;
      for (uint16_t i = 0; i < n; ++i) {
        if (ours(*pool, pkts[i])) {
          const uint8_t* f = pool->frame(pkts[i]);
          EXPECT_EQ(uint32_t(f[14] << 8 | f[15]), got) << "in order";
          ++got;
        }
        eng.free(pkts[i].buf);
      }
    }
    EXPECT_EQ(got, kFrames);
    EXPECT_LE(kicks(*st) - k0, 8u) << "a few submits for 64 frames";
    EXPECT_EQ(st->queue_rx[0].load(), received);
    // Idle: nothing arrived, no system call.
    const uint64_t k1 = kicks(*st);
    EXPECT_EQ(port->rx_burst(pkts, kMaxBurst), 0);
    EXPECT_EQ(kicks(*st), k1);

    // 64 frames out in one tx_burst: one io_uring_enter, all delivered.
    for (uint32_t i = 0; i < kFrames; ++i) {
      uint32_t b;
      ASSERT_TRUE(eng.alloc(&b));
      auto f = test_frame(100 + i);
      std::memcpy(pool->data(b) + pool->headroom(), f.data(), f.size());
      pkts[i] = Pkt{b, pool->headroom(), uint16_t(f.size())};
    }
    const uint64_t k2 = kicks(*st);
    ASSERT_EQ(port->tx_burst(pkts, kFrames), kFrames);
    EXPECT_EQ(kicks(*st) - k2, 1u);
    auto ids = k.receive(kFrames, 1000);
    ASSERT_EQ(ids.size(), kFrames);
    for (uint32_t i = 0; i < kFrames; ++i) EXPECT_EQ(ids[i], 100 + i);
    port->rx_burst(pkts, kMaxBurst);  // reaps the write completions
    // Frames one at a time into an idle tap: each wakes the poll, none is
    // left to a blocking kernel worker. As the engine does, rx_burst is called
    // again after each frame. Once the bursts have shrunk to one read (after
    // the first frame or two), the call that hands a lone frame over makes no
    // system call; the next one posts the reads (one submit).
    for (uint32_t i = 0; i < 16; ++i) {
      k.send(200 + i, 1);
      uint16_t m = 0;
      uint64_t before = 0;
      for (int tries = 0; tries < 100 && m == 0; ++tries) {
        before = kicks(*st);
        m = port->rx_burst(pkts, kMaxBurst);
        if (m == 0) wait_readable(*port);
      }
      EXPECT_GE(m, 1) << "frame " << i;
      for (uint16_t j = 0; j < m; ++j) eng.free(pkts[j].buf);
      const uint64_t handed = kicks(*st);
      EXPECT_EQ(port->rx_burst(pkts, kMaxBurst), 0) << "frame " << i;
      if (i < 2) continue;
      EXPECT_EQ(handed, before) << "frame " << i << " handed over without a submit";
      EXPECT_EQ(kicks(*st) - handed, 1u) << "frame " << i << ": the next call posts the reads";
    }
    EXPECT_EQ(iou_workers(), 0) << "reads ran inline, none on io_uring worker threads";
    port->detach();
    port.reset();
    EXPECT_EQ(if_nametoindex("vt-uring"), 0u) << "the tap the port created is gone";
  }, "/dev/net/tun");
  if (!skip.empty()) GTEST_SKIP() << skip;
  // Every buffer a posted read held came back at close.
  EXPECT_EQ(pool->available(), free_before);
}

TEST(Tap, ReadWriteFallbackWorksAndSaysSo) {
  auto pool = small_pool();
  const uint32_t free_before = pool->available();
  std::string skip = in_own_netns([&] {
    BufferCache eng(pool);  // the engine's side of the pool
    auto st = std::make_shared<PortStatus>();
    auto port = TapPort::open("vt-rw", options(KernelPortOptions::IoUring::kOff), pool, st);
    EXPECT_NE(st->io().find("one system call per frame"), std::string::npos) << st->io();
    KernelSide k("vt-rw");
    k.send(0, kFrames);
    wait_readable(*port);
    Pkt pkts[kMaxBurst];
    uint32_t got = 0;
    for (int tries = 0; tries < 100 && got < kFrames; ++tries) {
      uint16_t n = port->rx_burst(pkts, kMaxBurst);
      for (uint16_t i = 0; i < n; ++i) {
        if (ours(*pool, pkts[i])) ++got;
      }
      ASSERT_EQ(port->tx_burst(pkts, n), n);  // and straight back out
      if (!n) usleep(1000);
    }
    EXPECT_EQ(got, kFrames);
    EXPECT_EQ(k.receive(kFrames, 1000).size(), kFrames);
    port->detach();
  }, "/dev/net/tun");
  if (!skip.empty()) GTEST_SKIP() << skip;
  EXPECT_EQ(pool->available(), free_before);
}

TEST(Tap, MultiQueueSpreadsFlowsAndKeepsEachInOrder) {
  auto pool = small_pool();
  std::string skip = in_own_netns([&] {
    BufferCache eng(pool);  // the engine's side of the pool
    auto st = std::make_shared<PortStatus>();
    auto port = TapPort::open("vt-mq", options(KernelPortOptions::IoUring::kOn, 4), pool, st);
    KernelSide k("vt-mq");
    // 256 frames of 64 UDP flows: the kernel picks a tap queue per flow.
    k.send(0, 256, 64);
    Pkt pkts[kMaxBurst];
    uint32_t got = 0;
    std::vector<int> last(64, -1);  // per flow, the last frame number seen
    for (int tries = 0; tries < 200 && got < 256; ++tries) {
      uint16_t n = port->rx_burst(pkts, kMaxBurst);
      if (n == 0) wait_readable(*port);  // like the engine: poll only after an empty look
      for (uint16_t i = 0; i < n; ++i) {
        if (ours(*pool, pkts[i])) {
          const uint8_t* f = pool->frame(pkts[i]);
          const int seq = f[42] << 8 | f[43];
          EXPECT_GT(seq, last[seq % 64]) << "flow " << seq % 64 << " out of order";
          last[seq % 64] = seq;
          ++got;
        }
        eng.free(pkts[i].buf);
      }
    }
    EXPECT_EQ(got, 256u);
    uint32_t busy = 0;
    for (uint32_t q = 0; q < 4; ++q) busy += st->queue_rx[q].load() > 0;
    EXPECT_GE(busy, 2u) << "frames arrived on more than one queue";
    for (uint32_t q = 0; q < 4; ++q) std::printf("queue %u: %llu frames\n", q, (unsigned long long)st->queue_rx[q].load());

    // Out again over the four queues (one per flow), still one submit.
    for (uint32_t i = 0; i < kFrames; ++i) {
      uint32_t b;
      ASSERT_TRUE(eng.alloc(&b));
      auto f = udp_frame(1000 + i, 64);
      std::memcpy(pool->data(b) + pool->headroom(), f.data(), f.size());
      pkts[i] = Pkt{b, pool->headroom(), uint16_t(f.size())};
    }
    const uint64_t k0 = kicks(*st);
    ASSERT_EQ(port->tx_burst(pkts, kFrames), kFrames);
    EXPECT_EQ(kicks(*st) - k0, 1u);
    EXPECT_EQ(k.receive(kFrames, 1000).size(), kFrames);
    port->detach();
  }, "/dev/net/tun");
  if (!skip.empty()) GTEST_SKIP() << skip;
}

// A tap moved into a container's namespace: the port follows it (its link
// state read there) without holding anything in that namespace, so when the
// container goes the namespace goes, the tap with it, and the port creates
// its tap again at home. (Until 2026-12-06 the port kept a socket in the
// namespace: the namespace outlived its container, with the tap in it, and
// the port stayed up on a tap nobody could reach.)
TEST(Tap, FollowsATapIntoANamespaceWithoutKeepingThatNamespaceAlive) {
  auto pool = small_pool();
  std::string skip = in_own_netns([&] {
    auto st = std::make_shared<PortStatus>();
    auto port = TapPort::open("vt-ns", options(KernelPortOptions::IoUring::kAuto), pool, st);
    EXPECT_EQ(port->link_state(), LinkState::kUp);
    ContainerNetns container;
    ASSERT_TRUE(container.ok());
    const std::string ns = container.id();
    ASSERT_EQ(system(("ip link set dev vt-ns netns " + ns).c_str()), 0);
    ASSERT_EQ(system(("nsenter -t " + ns + " -n ip link set dev vt-ns up").c_str()), 0);
    EXPECT_EQ(if_nametoindex("vt-ns"), 0u) << "moved away";
    EXPECT_EQ(port->link_state(), LinkState::kUp) << "followed: up in the container's namespace";
    ASSERT_EQ(system(("nsenter -t " + ns + " -n ip link set dev vt-ns down").c_str()), 0);
    EXPECT_EQ(port->link_state(), LinkState::kDown) << "and down there";
    ASSERT_EQ(system(("nsenter -t " + ns + " -n ip link set dev vt-ns up").c_str()), 0);
    EXPECT_EQ(port->link_state(), LinkState::kUp);
    container.end();  // the container is gone: nothing holds its namespace now
    // The kernel dismantles a namespace in the background: the tap goes
    // with it, and the port sees it deleted.
    bool down = false;
    for (int i = 0; i < 500 && !down; ++i) {
      down = port->link_state() == LinkState::kDown;
      if (!down) usleep(10000);
    }
    ASSERT_TRUE(down) << "the namespace (and the tap in it) outlived the container";
    // Soon after the port creates the tap again, here.
    bool back = false;
    for (int i = 0; i < 300 && !back; ++i) {
      back = port->link_state() == LinkState::kUp;
      if (!back) usleep(10000);
    }
    EXPECT_TRUE(back);
    EXPECT_NE(if_nametoindex("vt-ns"), 0u) << "created again in the switch's namespace";
    port->detach();
  }, "/dev/net/tun");
  if (!skip.empty()) GTEST_SKIP() << skip;
}

// After a restart the switch finds a persistent tap of its own where a
// container took it (a process in its own namespace: found through /proc),
// and attaches to it there instead of making a new one in its namespace
// and leaving the container's NIC without carrier.
TEST(Tap, APersistentTapInAContainersNamespaceIsAttachedThereAfterARestart) {
  auto pool = small_pool();
  std::string skip = in_own_netns([&] {
    int ready[2];
    ASSERT_EQ(pipe(ready), 0);
    pid_t child = fork();
    if (child == 0) {  // the container: a process of its own in a namespace of its own
      char c = unshare(CLONE_NEWNET) == 0 ? 'y' : 'n';
      if (write(ready[1], &c, 1) != 1) _exit(1);
      pause();
      _exit(0);
    }
    ASSERT_GT(child, 0);
    char c = 0;
    ASSERT_EQ(read(ready[0], &c, 1), 1);
    close(ready[0]);
    close(ready[1]);
    ASSERT_EQ(c, 'y');
    const std::string ns = std::to_string(child);
    auto in_container = [&](const std::string& cmd) { return system(("nsenter -t " + ns + " -n " + cmd).c_str()); };
    auto carrier = [&] {
      return in_container("ip -o link show dev vt-pers | grep -q LOWER_UP") == 0;
    };
    KernelPortOptions o = options(KernelPortOptions::IoUring::kAuto);
    o.persistent = true;
    {
      auto port = TapPort::open("vt-pers", o, pool, std::make_shared<PortStatus>());
      ASSERT_EQ(system(("ip link set dev vt-pers netns " + ns).c_str()), 0);
      ASSERT_EQ(in_container("ip link set dev vt-pers up"), 0);
      EXPECT_EQ(port->link_state(), LinkState::kUp);
      EXPECT_TRUE(carrier());
      port->detach();  // the switch stops; the tap stays, in the container
    }
    EXPECT_FALSE(carrier()) << "nothing holds the tap while the switch is down";
    auto st = std::make_shared<PortStatus>();
    auto port = TapPort::open("vt-pers", o, pool, st);  // the switch starts again
    EXPECT_EQ(if_nametoindex("vt-pers"), 0u) << "not made again in the switch's namespace";
    EXPECT_TRUE(carrier()) << "the container's tap has the switch on its other end again";
    bool up = false;
    for (int i = 0; i < 100 && !up; ++i) {
      up = port->link_state() == LinkState::kUp;
      if (!up) usleep(10000);
    }
    EXPECT_TRUE(up) << st->error();
    // The port's descriptors were opened in the container's namespace, and
    // a tun descriptor keeps its namespace alive: when the container goes,
    // the port must let go, or the namespace (and the tap in it) would
    // outlive it and the port stay up on a tap nobody can reach.
    kill(child, SIGKILL);
    waitpid(child, nullptr, 0);
    bool down = false;
    for (int i = 0; i < 800 && !down; ++i) {
      down = port->link_state() == LinkState::kDown;
      if (!down) usleep(10000);
    }
    ASSERT_TRUE(down) << "still up on a tap in its container's namespace after the container is gone";
    EXPECT_NE(st->error().find("no process or mount left"), std::string::npos) << st->error();
    bool back = false;
    for (int i = 0; i < 400 && !back; ++i) {
      back = port->link_state() == LinkState::kUp;
      if (!back) usleep(10000);
    }
    EXPECT_TRUE(back) << st->error();
    EXPECT_NE(if_nametoindex("vt-pers"), 0u) << "made again in the switch's namespace";
    port->detach();
    // A persistent tap stays when the port closes: this one is the test's.
    system("ip link del vt-pers 2>/dev/null");
  }, "/dev/net/tun");
  if (!skip.empty()) GTEST_SKIP() << skip;
}

}  // namespace
}  // namespace vpc
