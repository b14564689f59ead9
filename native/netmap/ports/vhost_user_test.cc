// Tests for ports/vhost_user.h and ports/virtio_ring.h with a fake front end:
// the test connects to the port's socket, speaks the vhost-user protocol,
// shares a memfd as guest memory, and plays the guest's virtio-net driver
// on split rings laid out in it. The test thread is also the engine
// (rx_burst handles the messages the watcher thread flags).
#include "ports/vhost_user.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <vector>

#include "core/test_util.h"
#include "ports/flow_hash.h"
#include "ports/vhost_user_fake.h"
#include "ports/vhost_user_request.h"

namespace vpc {
namespace {

using testutil::Bytes;
using testutil::make_frame;
using namespace vfeat;
using namespace vhost_fake;


class VhostUser : public ::testing::Test {
 protected:
  void SetUp() override {
    pool = test_pool();
    dir = "/tmp/vpc-vhu-" + std::to_string(getpid()) + "-" + std::to_string(seq++);
    mkdir(dir.c_str(), 0700);
    status = std::make_shared<PortStatus>();
    VhostUserOptions o;
    o.socket = dir + "/s.sock";
    port = VhostUserPort::open(o, pool, status);
    cache = std::make_unique<BufferCache>(pool);
  }
  void TearDown() override {
    if (port) port->detach();
    port.reset();
    cache.reset();
    rmdir(dir.c_str());
  }
  std::unique_ptr<FakeFrontend> connect_and_setup(uint64_t features, uint32_t queues = 2) {
    auto fe = std::make_unique<FakeFrontend>(dir + "/s.sock");
    EXPECT_TRUE(fe->connected());
    fe->setup(*port, features, queues);
    return fe;
  }
  // The port opened again with these queue pairs, attached to `w` (a fresh
  // eventfd): the engine's side of sleeping and waking.
  void reopen(uint32_t pairs, Waker* w) {
    port->detach();
    port.reset();
    VhostUserOptions o;
    o.socket = dir + "/s.sock";
    o.queue_pairs = pairs;
    port = VhostUserPort::open(o, pool, status);
    w->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    port->attach(w);
  }
  // The frames the guest's receive queue q got from used entry `from` on
  // are `want`, in order (each in one buffer).
  static void expect_received(FakeFrontend& fe, uint32_t q, uint16_t from, const std::vector<Bytes>& want) {
    ASSERT_GE(uint16_t(fe.used_idx(q) - from), want.size());
    for (uint16_t i = 0; i < want.size(); ++i) {
      uint32_t id, len;
      fe.used_elem(q, uint16_t(from + i), &id, &len);
      const uint8_t* b = fe.host(fe.buf(q, id));
      EXPECT_EQ(Bytes(b + 12, b + len), want[i]) << "queue " << q << ", frame " << i;
    }
  }
  uint16_t rx(Pkt* out, int tries = 50) {
    for (int i = 0; i < tries; ++i) {
      uint16_t n = port->rx_burst(out, kMaxBurst);
      if (n) return n;
    }
    return 0;
  }
  Pkt pkt_of(const Bytes& f) {
    uint32_t idx = 0;
    EXPECT_TRUE(cache->alloc(&idx));
    std::memcpy(pool->data(idx) + pool->headroom(), f.data(), f.size());
    return Pkt{idx, pool->headroom(), uint16_t(f.size())};
  }
  // n frames told apart by their source MACs (first_mac, first_mac + 1, ...).
  static std::vector<Bytes> frames_from(uint32_t first_mac, uint32_t n, uint16_t len = 60) {
    std::vector<Bytes> v;
    for (uint32_t i = 0; i < n; ++i) v.push_back(make_frame(testutil::host_mac(2), testutil::host_mac(first_mac + i), len));
    return v;
  }
  std::vector<Pkt> pkts_of(const std::vector<Bytes>& frames) {
    std::vector<Pkt> v;
    for (const Bytes& f : frames) v.push_back(pkt_of(f));
    return v;
  }
  const VirtqCounters& qc(uint32_t q) { return status->vhost->q[q]; }
  // The engine about to sleep looks once more (taking the kicks so far);
  // true if its poll fd is then quiet.
  bool sleeps(Waker& w) {
    Pkt out[kMaxBurst];
    w.sleeping.store(true);
    port->rx_burst(out, kMaxBurst);
    pollfd pf{port->poll_fd(), POLLIN, 0};
    return poll(&pf, 1, 0) == 0;
  }
  // A kick on `kick_fd`: true if it wakes the sleeping engine within 100 ms;
  // the engine then looks, awake.
  bool kick_wakes(Waker& w, int kick_fd) {
    uint64_t one = 1;
    EXPECT_EQ(write(kick_fd, &one, 8), 8);
    pollfd pf{port->poll_fd(), POLLIN, 0};
    if (poll(&pf, 1, 100) != 1) return false;
    Pkt out[kMaxBurst];
    w.sleeping.store(false);
    port->rx_burst(out, kMaxBurst);
    return true;
  }
  // The guest's side of EVENT_IDX (virtio 1.x, 2.7.10): having published
  // buffers from avail index `old` to its index now, it kicks only when the
  // device's avail_event lies in [old, now).
  static bool guest_would_kick(FakeFrontend& fe, uint32_t q, uint16_t old) {
    const uint16_t now = fe.avail(q)[1];
    const uint16_t ev = *reinterpret_cast<uint16_t*>(fe.used(q) + 4 + 8 * kQ);
    return uint16_t(now - ev - 1) < uint16_t(now - old);
  }

  static inline int seq = 0;
  std::shared_ptr<BufferPool> pool;
  std::shared_ptr<PortStatus> status;
  std::unique_ptr<VhostUserPort> port;
  std::unique_ptr<BufferCache> cache;
  std::string dir;
};

const uint64_t kBase = bit(kVersion1) | bit(kNetMrgRxbuf) | bit(kRingEventIdx) | bit(kRingIndirect) |
                       bit(kNetCsum) | bit(kNetGuestCsum) | bit(kNetHostTso4) | bit(kNetGuestTso4);

TEST_F(VhostUser, NegotiatesAndComesUp) {
  EXPECT_EQ(port->link_state(), LinkState::kDown);
  auto fe = connect_and_setup(kBase);
  EXPECT_EQ(port->link_state(), LinkState::kUp);
  EXPECT_TRUE(status->vhost->connected.load());
  EXPECT_EQ(status->vhost->features.load() & kBase, kBase);
  EXPECT_EQ(port->tx_offloads(), uint32_t(kOffCsum | kOffTso4));
  std::vector<VhostStatus::Queue> qs;
  std::vector<VhostStatus::Region> rs;
  status->vhost->layout(&qs, &rs);
  ASSERT_EQ(rs.size(), 1u);
  EXPECT_EQ(rs[0].gpa, kGpaBase);
  EXPECT_EQ(rs[0].size, kMemSize);
  ASSERT_EQ(qs.size(), 2u);
  EXPECT_TRUE(qs[0].ready && qs[1].ready);
  EXPECT_EQ(fe->get_u64(*port, kVuGetQueueNum), 1u);
  EXPECT_EQ(virtio_feature_names(bit(kVersion1) | bit(kNetMrgRxbuf)), "mrg_rxbuf version_1");
}

TEST_F(VhostUser, RefusesWhatItDoesNotSupport) {
  auto fe = connect_and_setup(kBase);
  // Not offered: an ack with an error, the port says why.
  uint64_t ufo = bit(kNetHostUfo) | bit(kVersion1);
  EXPECT_NE(fe->ack(*port, kVuSetFeatures, &ufo, 8), 0u);
  EXPECT_NE(status->error().find("host_ufo"), std::string::npos) << status->error();
  // An unsupported message with REPLY_ACK: refused, not ignored.
  uint8_t mac[8] = {};
  EXPECT_EQ(fe->ack(*port, kVuSendRarp, mac, 8), 1u);
  EXPECT_NE(status->error().find("SEND_RARP"), std::string::npos);
  // An unsupported request that expects its own reply gets an empty one.
  EXPECT_TRUE(fe->call(*port, kVuGetConfig, nullptr, 0).empty());
  // A queue that does not exist.
  uint32_t num[2] = {7, 256};
  EXPECT_EQ(fe->ack(*port, kVuSetVringNum, num, 8), 1u);
  // A queue size that is not a power of two.
  uint32_t odd[2] = {0, 100};
  EXPECT_EQ(fe->ack(*port, kVuSetVringNum, odd, 8), 1u);
  EXPECT_GE(status->vhost->refused.load(), 5u);
  EXPECT_EQ(port->link_state(), LinkState::kUp) << "a refusal does not break the device";
}

TEST_F(VhostUser, GuestTransmitReachesTheEngine) {
  auto fe = connect_and_setup(kBase);
  std::vector<Bytes> frames;
  for (int i = 0; i < 5; ++i) frames.push_back(make_frame(testutil::host_mac(1), testutil::host_mac(2), uint16_t(60 + i * 100)));
  for (auto& f : frames) fe->send(f);
  Pkt out[kMaxBurst];
  ASSERT_EQ(rx(out), 5);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(Bytes(pool->frame(out[i]), pool->frame(out[i]) + out[i].len), frames[i]) << i;
    EXPECT_FALSE(pkt_has_meta(out[i]));
    cache->free(out[i].buf);
  }
  EXPECT_EQ(fe->used_idx(1), 5);
  uint32_t id, len;
  fe->used_elem(1, 4, &id, &len);
  EXPECT_EQ(id, 4u);
  EXPECT_EQ(cnt_read(qc(1).c[size_t(VirtqCounter::packets)]), 5u);
}


// A memory table whose region runs past the end of its file mapped without
// complaint, and the first look at a ring there was a SIGBUS that took the
// whole switch down. Such a table, and one whose fd is not a file at all, is
// refused with the reason; the table in force stays, and so do the queues.
TEST_F(VhostUser, AMemoryTableThatCannotBeMappedSafelyIsRefused) {
  auto fe = connect_and_setup(kBase);
  auto table = [&](uint64_t size, uint64_t offset, int fd) {
    uint8_t mt[8 + 32] = {};
    uint32_t n = 1;
    std::memcpy(mt, &n, 4);
    uint64_t reg[4] = {kGpaBase, size, fe->uva(0), offset};
    std::memcpy(mt + 8, reg, 32);
    return fe->ack(*port, kVuSetMemTable, mt, sizeof mt, {fd});
  };
  const int small = memfd_create("small", MFD_CLOEXEC);
  ASSERT_EQ(ftruncate(small, 4096), 0);
  EXPECT_NE(table(kMemSize, 0, small), 0u);
  EXPECT_NE(status->error().find("region 0 (4194304 bytes at offset 0): ends beyond its file's 4096 bytes"),
            std::string::npos)
      << status->error();
  const int whole = memfd_create("whole", MFD_CLOEXEC);
  ASSERT_EQ(ftruncate(whole, kMemSize), 0);
  EXPECT_NE(table(kMemSize, 4096, whole), 0u) << "the offset pushes the region past the end";
  EXPECT_NE(status->error().find("ends beyond its file's"), std::string::npos) << status->error();
  const int efd = eventfd(0, EFD_CLOEXEC);
  EXPECT_NE(table(kMemSize, 0, efd), 0u);
  EXPECT_NE(status->error().find("not a regular file"), std::string::npos) << status->error();
  EXPECT_NE(table(0, 0, whole), 0u);
  EXPECT_NE(status->error().find("size or offset out of range"), std::string::npos) << status->error();
  for (int fd : {small, whole, efd}) close(fd);

  EXPECT_EQ(port->link_state(), LinkState::kUp);
  std::vector<VhostStatus::Queue> qs;
  std::vector<VhostStatus::Region> rs;
  status->vhost->layout(&qs, &rs);
  ASSERT_EQ(rs.size(), 1u);
  EXPECT_EQ(rs[0].size, kMemSize);
  const Bytes f = make_frame(testutil::host_mac(1), testutil::host_mac(2), 60);
  fe->send(f);
  Pkt out[kMaxBurst];
  ASSERT_EQ(rx(out), 1) << "the table in force still serves the queues";
  EXPECT_EQ(Bytes(pool->frame(out[0]), pool->frame(out[0]) + out[0].len), f);
  cache->free(out[0].buf);
}
// The table was sound when accepted, then the front end shrank the file
// under it (a memfd it did not seal; tmpfs and hugetlbfs files cannot be
// sealed). The engine's next touch of a ring page is a SIGBUS: before, the
// whole process died of it (this test binary with it). Now the fault is
// caught, that front end loses its connection, counted with the reason, and
// the switch goes on: the next front end works.
TEST_F(VhostUser, AFrontEndThatShrinksItsMemoryLosesItsConnectionNotTheSwitch) {
  const Bytes f = make_frame(testutil::host_mac(1), testutil::host_mac(2), 60);
  Pkt out[kMaxBurst];
  {
    auto fe = connect_and_setup(kBase);
    fe->send(f);
    ASSERT_EQ(rx(out), 1);
    cache->free(out[0].buf);
    fe->send(f);  // published; then the file goes
    ASSERT_EQ(ftruncate(fe->memfd(), 0), 0);
    EXPECT_EQ(rx(out), 0) << "nothing read from a faulted page goes on";
    EXPECT_EQ(status->vhost->drops[size_t(VhostDrop::memory_shrunk)].load(), 1u);
    EXPECT_NE(status->error().find("faulted: the front end shrank its memory file"), std::string::npos)
        << status->error();
    EXPECT_EQ(port->link_state(), LinkState::kDown);
    // Frames for the port now are dropped as for any port without a guest,
    // and touch nothing.
    Pkt in[1] = {pkt_of(f)};
    EXPECT_EQ(port->tx_burst(in, 1), 1);
    // The switch closed the connection: the front end reads its end.
    char b;
    ssize_t r = -1;
    for (int i = 0; i < 200 && r != 0; ++i) {
      port->rx_burst(out, kMaxBurst);  // the watcher raised the hang-up: the engine closes
      r = ::recv(fe->fd(), &b, 1, MSG_DONTWAIT);
      if (r != 0) usleep(5000);
    }
    EXPECT_EQ(r, 0) << "the connection ended";
    // The front end sees the end as soon as the port shuts its socket down;
    // the engine lets the connection go at its next look. A front end that
    // connected before that would be a second one, closed at once (under
    // the sanitizers, 1 run in 40 did).
    for (int i = 0; i < 400 && status->vhost->connected.load(); ++i) {
      port->rx_burst(out, kMaxBurst);
      usleep(5000);
    }
    ASSERT_FALSE(status->vhost->connected.load()) << "the engine let the connection go";
    EXPECT_NE(status->error().find("(memory_shrunk)"), std::string::npos) << "lastError keeps the reason: " << status->error();
  }
  // A new front end, with a sound memory file, is served as before.
  auto fe2 = connect_and_setup(kBase);
  EXPECT_EQ(port->link_state(), LinkState::kUp);
  fe2->send(f);
  ASSERT_EQ(rx(out), 1);
  EXPECT_EQ(Bytes(pool->frame(out[0]), pool->frame(out[0]) + out[0].len), f);
  cache->free(out[0].buf);
  EXPECT_EQ(status->vhost->drops[size_t(VhostDrop::memory_shrunk)].load(), 1u);
  // Every buffer came back, the dropped burst's included.
  fe2.reset();
  port->detach();
  port.reset();
  cache.reset();
  EXPECT_EQ(pool->available(), pool->count());
  EXPECT_EQ(pool->large_available(), pool->large_count());
}
TEST_F(VhostUser, ChecksumPartialAndTsoFromTheGuestKeepTheirState) {
  auto fe = connect_and_setup(kBase);
  // A 3000-byte TCPv4 super-frame split over a chain: header alone, then
  // two data descriptors in an indirect table.
  Bytes f = make_frame(testutil::host_mac(1), testutil::host_mac(2), 3000);
  uint8_t vnet[10];
  offload_to_vnet(tso4_meta(), vnet);
  const uint64_t hb = fe->buf(1, 10), d1 = fe->buf(1, 11), d2 = fe->buf(1, 12), it = fe->buf(1, 13);
  std::memset(fe->host(hb), 0, 12);
  std::memcpy(fe->host(hb), vnet, 10);
  std::memcpy(fe->host(d1), f.data(), 2000);
  std::memcpy(fe->host(d2), f.data() + 2000, 1000);
  VringDesc* table = reinterpret_cast<VringDesc*>(fe->host(it));
  table[0] = VringDesc{fe->gpa(hb), 12, kDescNext, 1};
  table[1] = VringDesc{fe->gpa(d1), 2000, kDescNext, 2};
  table[2] = VringDesc{fe->gpa(d2), 1000, 0, 0};
  fe->desc(1)[0] = VringDesc{fe->gpa(it), 3 * 16, kDescIndirect, 0};
  fe->publish(1, 0);
  Pkt out[kMaxBurst];
  ASSERT_EQ(rx(out), 1);
  ASSERT_TRUE(pkt_has_meta(out[0]));
  EXPECT_TRUE(pool->is_large(out[0].buf)) << "a frame longer than a buffer lands in a large one";
  EXPECT_EQ(Bytes(pool->frame(out[0]), pool->frame(out[0]) + out[0].len), f);
  const OffloadMeta& got = pool->meta(out[0].buf);
  EXPECT_EQ(got.gso_type, OffloadMeta::kGsoTcpv4);
  EXPECT_EQ(got.gso_size, 1448);
  EXPECT_EQ(got.csum_start, 34);
  cache->free(out[0].buf);
}

// A kick descriptor the engine cannot wait on (here a regular file) would
// leave a sleeping engine deaf to the guest's transmit queue: refused with
// the reason. The queue comes back with an eventfd.
TEST_F(VhostUser, AKickDescriptorThatCannotBeWaitedOnIsRefused) {
  auto fe = connect_and_setup(kBase);
  const int file = memfd_create("not-an-eventfd", MFD_CLOEXEC);
  uint64_t idx = 1;
  EXPECT_NE(fe->ack(*port, kVuSetVringKick, &idx, 8, {file}), 0u);
  close(file);
  EXPECT_NE(status->error().find("virtqueue 1: the kick descriptor cannot be waited on (epoll: Operation not permitted)"),
            std::string::npos)
      << status->error();
  const int kick = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  EXPECT_EQ(fe->ack(*port, kVuSetVringKick, &idx, 8, {kick}), 0u);
  close(kick);
  const Bytes f = make_frame(testutil::host_mac(1), testutil::host_mac(2), 60);
  fe->send(f);
  Pkt out[kMaxBurst];
  ASSERT_EQ(rx(out), 1) << "the queue works again";
  cache->free(out[0].buf);
}

TEST_F(VhostUser, EngineFramesReachTheGuestInMergedBuffers) {
  auto fe = connect_and_setup(kBase);
  fe->post_rx(8, 1024);
  Bytes small = make_frame(testutil::host_mac(2), testutil::host_mac(1), 60);
  Bytes big = make_frame(testutil::host_mac(2), testutil::host_mac(1), 1900);
  Pkt in[2] = {pkt_of(small), pkt_of(big)};
  ASSERT_EQ(port->tx_burst(in, 2), 2);
  ASSERT_EQ(fe->used_idx(0), 3) << "60 bytes in one buffer, 12 + 1900 in two";
  uint32_t id, len;
  fe->used_elem(0, 0, &id, &len);
  EXPECT_EQ(len, 72u);
  const uint8_t* b0 = fe->host(fe->buf(0, id));
  EXPECT_EQ(b0[10], 1);
  EXPECT_EQ(Bytes(b0 + 12, b0 + 72), small);
  Bytes got;
  fe->used_elem(0, 1, &id, &len);
  const uint8_t* h = fe->host(fe->buf(0, id));
  EXPECT_EQ(h[10], 2) << "num_buffers";
  got.insert(got.end(), h + 12, h + len);
  for (uint16_t k = 2; k < 3; ++k) {
    fe->used_elem(0, k, &id, &len);
    got.insert(got.end(), fe->host(fe->buf(0, id)), fe->host(fe->buf(0, id)) + len);
  }
  EXPECT_EQ(got, big);
  // EVENT_IDX: used_event 0 was passed, so the guest was notified once.
  uint64_t v = 0;
  EXPECT_EQ(read(fe->call_fd(0), &v, 8), 8);
  // Out of buffers: the rest waits in the port's backlog (next test).
  Pkt more[4];
  for (auto& p : more) p = pkt_of(big);
  EXPECT_EQ(port->tx_burst(more, 4), 4) << "five buffers left: two frames of two buffers, two held";
  EXPECT_EQ(fe->used_idx(0), 7);
  EXPECT_EQ(cnt_read(qc(0).c[size_t(VirtqCounter::guest_full)]), 2u);
  // One buffer is left, too few for the next frame: the guest must kick
  // when it adds the next one, though the device has not taken the one
  // it has (avail_event at the avail index, not at last_avail).
  fe->post_rx(1, 1024);
  EXPECT_TRUE(guest_would_kick(*fe, 0, 8)) << "avail_event " << *reinterpret_cast<uint16_t*>(fe->used(0) + 4 + 8 * kQ);
  Pkt out[kMaxBurst];
  port->rx_burst(out, kMaxBurst);
  EXPECT_EQ(fe->used_idx(0), 9) << "the first held frame, in the old buffer and the new one";
  fe->post_rx(2, 1024);
  EXPECT_TRUE(guest_would_kick(*fe, 0, 9));
  port->rx_burst(out, kMaxBurst);
  EXPECT_EQ(fe->used_idx(0), 11) << "the second";
}

// A guest slower than its sender: frames that find its receive queue full
// wait in the port's backlog, in order, and go as soon as it adds buffers,
// as a tap's queue holds what its reader has not taken yet. Only while
// frames wait is the guest asked to kick that queue, so a sleeping engine
// wakes for its buffers and an idle one is not woken by them. What the
// backlog cannot hold stays with the engine (tx_ring_full); what it holds
// when the guest goes is counted (not_ready) and its buffers go back.
TEST_F(VhostUser, AFullGuestReceiveQueueHoldsFramesUntilTheGuestAddsBuffers) {
  // A pool with 64 large buffers: a backlog holds 32 at most, and none
  // while 16 or fewer are free.
  port->detach();
  port.reset();
  cache.reset();
  BufferPoolOptions po;
  po.count = 2048;
  po.large_count = 64;
  po.hugepages = false;
  pool = BufferPool::create(po);
  cache = std::make_unique<BufferCache>(pool);
  VhostUserOptions vo;
  vo.socket = dir + "/s.sock";
  port = VhostUserPort::open(vo, pool, status);
  auto fe = connect_and_setup(kBase);
  Waker w;
  w.fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  port->attach(&w);
  Pkt out[kMaxBurst];
  const uint32_t free0 = pool->available() + uint32_t(cache->cached());
  std::vector<Bytes> frames;
  for (int i = 0; i < 8; ++i) frames.push_back(make_frame(testutil::host_mac(2), testutil::host_mac(1), uint16_t(60 + i)));
  fe->post_rx(2, 1024);
  Pkt in[5];
  for (int i = 0; i < 5; ++i) in[i] = pkt_of(frames[i]);
  ASSERT_EQ(port->tx_burst(in, 5), 5) << "two delivered, three held: none back to the engine";
  EXPECT_EQ(fe->used_idx(0), 2);
  EXPECT_EQ(cnt_read(qc(0).c[size_t(VirtqCounter::guest_full)]), 3u);
  EXPECT_EQ(*reinterpret_cast<uint16_t*>(fe->used(0) + 4 + 8 * kQ), 2) << "avail_event: kick at the next buffer";

  // The engine about to sleep looks once more, then its poll fd is quiet
  // until the guest adds buffers and kicks the receive queue.
  EXPECT_TRUE(sleeps(w));
  fe->post_rx(2, 1024);
  ASSERT_TRUE(guest_would_kick(*fe, 0, 2)) << "the guest is asked to kick for its next buffer";
  EXPECT_TRUE(kick_wakes(w, fe->kick_fd(0))) << "the guest's kick wakes the engine";
  EXPECT_EQ(fe->used_idx(0), 4) << "the backlog goes first";
  // A frame behind the one still waiting waits too, though nothing else is
  // in its way: order is kept.
  Pkt late[2] = {pkt_of(frames[5]), pkt_of(frames[6])};
  EXPECT_EQ(port->tx_burst(late, 2), 2);
  fe->post_rx(8, 1024);
  port->rx_burst(out, kMaxBurst);
  ASSERT_EQ(fe->used_idx(0), 7);
  for (uint16_t i = 0; i < 7; ++i) {
    uint32_t id, len;
    fe->used_elem(0, i, &id, &len);
    const uint8_t* b = fe->host(fe->buf(0, id));
    EXPECT_EQ(Bytes(b + 12, b + len), frames[i]) << "frame " << i << " in order";
  }
  // Nothing waits: no more kicks wanted, and one that comes wakes nobody.
  EXPECT_FALSE(kick_wakes(w, fe->kick_fd(0)));
  // Frames that find the queue empty again go straight in.
  Pkt now = pkt_of(frames[7]);
  EXPECT_EQ(port->tx_burst(&now, 1), 1);
  EXPECT_EQ(fe->used_idx(0), 8);
  EXPECT_EQ(cnt_read(qc(0).c[size_t(VirtqCounter::guest_full)]), 5u);

  // The backlog is bounded: 1024 frames, half the pool's large buffers,
  // and none of the pool's last quarter. The first frame it cannot take
  // and all after it go back to the engine.
  std::vector<Pkt> flood;
  for (int i = 0; i < 1100; ++i) flood.push_back(pkt_of(frames[0]));
  uint32_t held = 0;
  for (size_t at = 0; at < flood.size(); at += kMaxBurst) {
    const uint16_t n = uint16_t(std::min<size_t>(kMaxBurst, flood.size() - at));
    const uint16_t took = port->tx_burst(flood.data() + at, n);
    held += took;
    for (uint16_t i = took; i < n; ++i) cache->free(flood[at + i].buf);
  }
  EXPECT_EQ(fe->used_idx(0), 12) << "the four buffers left in the ring";
  EXPECT_EQ(held, 4u + 1024) << "then 1024 held";
  Pkt large[44];
  for (auto& l : large) {
    ASSERT_TRUE(cache->alloc_large(&l.buf));
    l.off = pool->headroom();
    l.len = 3000;
  }
  EXPECT_EQ(port->tx_burst(large, 44), 0) << "the backlog is full";
  fe->post_rx(40, 1024);
  port->rx_burst(out, kMaxBurst);
  EXPECT_EQ(fe->used_idx(0), 52);
  ASSERT_EQ(pool->large_available(), 16u) << "the test's cache took 48";
  EXPECT_EQ(port->tx_burst(large, 44), 0) << "a quarter of the large buffers left: the backlog takes none";
  for (int i = 36; i < 44; ++i) cache->free(large[i].buf);
  cache->flush();
  ASSERT_EQ(pool->large_available(), 28u);
  EXPECT_EQ(port->tx_burst(large, 36), 32) << "room for 40 frames, but 32 large buffers at most";
  for (int i = 32; i < 36; ++i) cache->free(large[i].buf);

  // The guest goes: what waited is counted and every buffer comes back.
  const uint64_t not_ready0 = cnt_read(qc(0).drops[size_t(VirtqDrop::not_ready)]);
  fe.reset();
  for (int i = 0; i < 200 && port->link_state() == LinkState::kUp; ++i) {
    port->rx_burst(out, kMaxBurst);
    usleep(5000);
  }
  ASSERT_EQ(port->link_state(), LinkState::kDown);
  EXPECT_EQ(cnt_read(qc(0).drops[size_t(VirtqDrop::not_ready)]) - not_ready0, 1024u - 40 + 32);
  cache->flush();
  port->detach();
  EXPECT_EQ(pool->available(), free0) << "every held buffer went back to the pool";
  EXPECT_EQ(pool->large_available(), 64u) << "and every large one";
  close(w.fd);
}

// A guest that takes no buffer for a second while frames wait for it (hung,
// paused) loses them: counted guest_stalled, buffers back. A guest that
// takes some keeps its backlog. The link checks (link_state(), the engine's
// housekeeping) judge, and drain first.
TEST_F(VhostUser, AGuestThatTakesNoBufferForASecondLosesWhatWaited) {
  using Clock = std::chrono::steady_clock;
  auto fe = connect_and_setup(kBase);
  const uint32_t free0 = pool->available() + cache->cached();
  Pkt in[6];
  const Bytes f = make_frame(testutil::host_mac(2), testutil::host_mac(1), 60);
  for (auto& p : in) p = pkt_of(f);
  ASSERT_EQ(port->tx_burst(in, 6), 6) << "no buffers: all six held";
  auto checks_until = [&](Clock::time_point end) {
    while (Clock::now() < end) {
      port->link_state();
      usleep(50'000);
    }
  };
  checks_until(Clock::now() + std::chrono::milliseconds(600));
  fe->post_rx(2, 1024);  // the guest takes two: the clock starts again
  const auto progress = Clock::now();
  port->link_state();  // the check drains them, kick or not
  EXPECT_EQ(fe->used_idx(0), 2);
  checks_until(progress + std::chrono::milliseconds(600));
  EXPECT_EQ(cnt_read(qc(0).drops[size_t(VirtqDrop::guest_stalled)]), 0u) << "1.2 s in all, but the guest took two at 0.6 s";
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  while (cnt_read(qc(0).drops[size_t(VirtqDrop::guest_stalled)]) == 0 && Clock::now() < deadline) {
    port->link_state();
    usleep(50'000);
  }
  EXPECT_EQ(cnt_read(qc(0).drops[size_t(VirtqDrop::guest_stalled)]), 4u);
  EXPECT_GE(Clock::now() - progress, std::chrono::seconds(1)) << "not before a second without a buffer taken";
  fe->post_rx(4, 1024);
  Pkt out[kMaxBurst];
  port->rx_burst(out, kMaxBurst);
  EXPECT_EQ(fe->used_idx(0), 2) << "nothing waits any more";
  port->detach();
  cache->flush();
  EXPECT_EQ(pool->available(), free0) << "all six buffers went back: two delivered, four dropped";
}

// A frame that cannot fit even the whole ring of the guest's buffers (tiny
// buffers) would hold every frame behind it until the stall check: it is
// dropped (guest_buffer_small) and the next one goes.
TEST_F(VhostUser, AFrameThatCanNeverFitTheGuestsBuffersIsDroppedNotHeld) {
  auto fe = connect_and_setup(kBase);
  fe->post_rx(kQ, 64);  // 256 buffers of 64 bytes: 16 KiB in all
  uint32_t big = 0;
  ASSERT_TRUE(cache->alloc_large(&big));
  Pkt in[2] = {{big, pool->headroom(), 20000}, pkt_of(make_frame(testutil::host_mac(2), testutil::host_mac(1), 60))};
  EXPECT_EQ(port->tx_burst(in, 2), 2);
  EXPECT_EQ(cnt_read(qc(0).drops[size_t(VirtqDrop::guest_buffer_small)]), 1u);
  EXPECT_EQ(fe->used_idx(0), 2) << "the small frame, in two 64-byte buffers";
}

// Without EVENT_IDX the guest is asked to kick by the used ring's flags:
// on while frames wait, off (NO_NOTIFY) once they are gone.
TEST_F(VhostUser, WithoutEventIdxTheBacklogAsksByTheUsedFlags) {
  auto fe = connect_and_setup(kBase & ~bit(kRingEventIdx));
  const uint16_t* flags = reinterpret_cast<const uint16_t*>(fe->used(0));
  EXPECT_EQ(*flags, kUsedNoNotify) << "an idle receive queue asks for no kick";
  Pkt in[3];
  for (auto& p : in) p = pkt_of(make_frame(testutil::host_mac(2), testutil::host_mac(1), 60));
  EXPECT_EQ(port->tx_burst(in, 3), 3);
  EXPECT_EQ(*flags, 0) << "frames wait: kick for the next buffer";
  pollfd pf{port->poll_fd(), POLLIN, 0};
  fe->post_rx(3, 1024);
  uint64_t one = 1;
  ASSERT_EQ(write(fe->kick_fd(0), &one, 8), 8);
  EXPECT_EQ(poll(&pf, 1, 100), 1);
  Pkt out[kMaxBurst];
  port->rx_burst(out, kMaxBurst);
  EXPECT_EQ(fe->used_idx(0), 3);
  EXPECT_EQ(*flags, kUsedNoNotify) << "nothing waits: no kicks";
}

// Two queue pairs: each receive queue has a backlog of its own. Frames wait
// only for their own queue's buffers and keep their order there; a queue's
// kick wakes the engine for its own frames; a guest that stops taking
// buffers on one queue loses that queue's frames only (the stall clock is
// per queue).
TEST_F(VhostUser, EachReceiveQueueHasABacklogOfItsOwn) {
  Waker w;
  reopen(2, &w);
  auto fe = connect_and_setup(kBase, 4);
  const uint32_t free0 = pool->available() + uint32_t(cache->cached());
  std::vector<Bytes> flows[2];  // frames the port's flow hash puts on queue pair 0 and 1
  for (uint32_t m = 1; flows[0].size() < 16 || flows[1].size() < 16; ++m) {
    Bytes f = make_frame(testutil::host_mac(2), testutil::host_mac(m), 60);
    auto& v = flows[flow_queue(f.data(), uint32_t(f.size()), 2)];
    if (v.size() < 16) v.push_back(f);
  }
  auto send = [&](uint32_t pair, uint32_t from, uint32_t n) {
    std::vector<Pkt> in;
    for (uint32_t i = from; i < from + n; ++i) in.push_back(pkt_of(flows[pair][i]));
    return port->tx_burst(in.data(), uint16_t(n));
  };
  fe->post_rx(2, 1024, 0);
  fe->post_rx(2, 1024, 2);
  Pkt in[8];
  for (uint32_t i = 0; i < 4; ++i) {
    in[2 * i] = pkt_of(flows[0][i]);
    in[2 * i + 1] = pkt_of(flows[1][i]);
  }
  ASSERT_EQ(port->tx_burst(in, 8), 8) << "two delivered and two held on each queue";
  EXPECT_EQ(fe->used_idx(0), 2);
  EXPECT_EQ(fe->used_idx(2), 2);
  EXPECT_EQ(cnt_read(qc(0).c[size_t(VirtqCounter::guest_full)]), 2u);
  EXPECT_EQ(cnt_read(qc(2).c[size_t(VirtqCounter::guest_full)]), 2u);

  EXPECT_TRUE(sleeps(w));
  fe->post_rx(4, 1024, 2);
  ASSERT_TRUE(guest_would_kick(*fe, 2, 2)) << "the second queue is asked to kick for its next buffer";
  EXPECT_TRUE(kick_wakes(w, fe->kick_fd(2))) << "its kick wakes the engine";
  EXPECT_EQ(fe->used_idx(2), 4) << "the second queue's backlog went";
  EXPECT_EQ(fe->used_idx(0), 2) << "the first queue's waits for its own buffers";
  expect_received(*fe, 2, 0, {flows[1].begin(), flows[1].begin() + 4});
  EXPECT_EQ(send(1, 4, 1), 1);
  EXPECT_EQ(fe->used_idx(2), 5) << "nothing waits on the second queue: straight in";
  EXPECT_EQ(send(0, 4, 1), 1);
  EXPECT_EQ(fe->used_idx(0), 2) << "behind the first queue's backlog";

  // Both wait; the guest takes a buffer on the second queue every 200 ms
  // and none on the first. Only the first loses its frames, after a second.
  EXPECT_EQ(send(1, 5, 10), 10) << "one delivered, nine held";
  EXPECT_EQ(fe->used_idx(2), 6);
  using Clock = std::chrono::steady_clock;
  Clock::time_point first{};  // the first link check: the stall clocks start there
  for (int i = 0; i < 8; ++i) {
    usleep(200'000);
    fe->post_rx(1, 1024, 2);
    if (i == 0) first = Clock::now();
    port->link_state();  // the engine's link checks drain, then judge
    if (Clock::now() - first < std::chrono::milliseconds(950)) {
      EXPECT_EQ(cnt_read(qc(0).drops[size_t(VirtqDrop::guest_stalled)]), 0u) << "not before a second without a buffer (check " << i << ")";
    }
  }
  EXPECT_EQ(cnt_read(qc(0).drops[size_t(VirtqDrop::guest_stalled)]), 3u) << "the first queue's three frames";
  EXPECT_EQ(cnt_read(qc(2).drops[size_t(VirtqDrop::guest_stalled)]), 0u);
  EXPECT_EQ(fe->used_idx(2), 14);
  expect_received(*fe, 2, 4, {flows[1].begin() + 4, flows[1].begin() + 14});
  fe->post_rx(1, 1024, 2);
  port->link_state();
  EXPECT_EQ(fe->used_idx(2), 15);
  port->detach();
  cache->flush();
  EXPECT_EQ(pool->available(), free0) << "every frame delivered or dropped gave its buffer back";
  close(w.fd);
}

// A front end that gives a receive queue a new kick descriptor while frames
// wait (a guest driver restarting the queue) is heard on the new one.
TEST_F(VhostUser, AKickDescriptorReplacedWhileFramesWaitIsTheOneThatWakes) {
  Waker w;
  reopen(1, &w);
  auto fe = connect_and_setup(kBase);
  const std::vector<Bytes> frames = frames_from(10, 3);
  std::vector<Pkt> in = pkts_of(frames);
  ASSERT_EQ(port->tx_burst(in.data(), 3), 3) << "no buffers: all held";
  const int old_kick = fe->kick_fd(0);
  fe->new_kick(*port, 0);
  EXPECT_TRUE(sleeps(w));
  fe->post_rx(3, 1024);
  ASSERT_TRUE(guest_would_kick(*fe, 0, 0));
  EXPECT_FALSE(kick_wakes(w, old_kick)) << "the old descriptor is no longer listened to";
  EXPECT_TRUE(kick_wakes(w, fe->kick_fd(0))) << "the new one wakes the engine";
  EXPECT_EQ(fe->used_idx(0), 3);
  expect_received(*fe, 0, 0, frames);
  close(w.fd);
}

// QEMU sends the memory table again when the guest's memory layout changes
// (hotplug); the rings are mapped again. Frames waiting meanwhile stay, in
// order, and the guest is still asked to kick for its next buffer, with or
// without EVENT_IDX.
TEST_F(VhostUser, ANewMemoryTableWhileFramesWaitKeepsThemAndTheKick) {
  for (const uint64_t features : {kBase, kBase & ~bit(kRingEventIdx)}) {
    SCOPED_TRACE(features & bit(kRingEventIdx) ? "EVENT_IDX" : "used flags");
    Waker w;
    reopen(1, &w);
    auto fe = connect_and_setup(features);
    const std::vector<Bytes> frames = frames_from(20, 4);
    std::vector<Pkt> in = pkts_of(frames);
    fe->post_rx(1, 1024);
    ASSERT_EQ(port->tx_burst(in.data(), 4), 4) << "one delivered, three held";
    fe->send_mem_table(*port);
    EXPECT_TRUE(sleeps(w));
    fe->post_rx(3, 1024);
    if (features & bit(kRingEventIdx)) EXPECT_TRUE(guest_would_kick(*fe, 0, 1));
    else EXPECT_EQ(*reinterpret_cast<const uint16_t*>(fe->used(0)), 0) << "no NO_NOTIFY: kick";
    EXPECT_TRUE(kick_wakes(w, fe->kick_fd(0)));
    EXPECT_EQ(fe->used_idx(0), 4);
    expect_received(*fe, 0, 0, frames);
    fe.reset();
    for (int i = 0; i < 200 && port->link_state() == LinkState::kUp; ++i) {
      Pkt out[kMaxBurst];
      port->rx_burst(out, kMaxBurst);
      usleep(5000);
    }
    close(w.fd);
  }
}

// The ring walk's budget can end a backlog's burst while the guest's
// buffers are still there (buffers of many small pieces). The engine then
// wakes itself: the rest goes without another kick from the guest.
TEST_F(VhostUser, ABacklogStoppedByTheWalkBudgetWakesTheEngineItself) {
  Waker w;
  reopen(1, &w);
  auto fe = connect_and_setup(kBase);
  constexpr uint32_t kFrames = 20, kLen = 1000, kPieces = 1 + kLen;  // a header piece, then one byte each
  const std::vector<Bytes> frames = frames_from(30, kFrames, kLen);
  std::vector<Pkt> in = pkts_of(frames);
  ASSERT_EQ(port->tx_burst(in.data(), kFrames), kFrames) << "no buffers: all held";
  ASSERT_TRUE(sleeps(w));
  // Each receive buffer: an indirect table of a 12-byte piece and 1000
  // one-byte pieces, all contiguous in guest memory.
  const uint64_t tables = 2 << 20, data = (2 << 20) + (1 << 19);
  for (uint32_t i = 0; i < kFrames; ++i) {
    auto* t = reinterpret_cast<VringDesc*>(fe->host(tables + uint64_t(i) * kPieces * 16));
    const uint64_t d = data + uint64_t(i) * 1024;
    t[0] = VringDesc{fe->gpa(d), 12, uint16_t(kDescWrite | kDescNext), 1};
    for (uint32_t j = 1; j < kPieces; ++j)
      t[j] = VringDesc{fe->gpa(d + 11 + j), 1, uint16_t(kDescWrite | (j + 1 < kPieces ? kDescNext : 0)), uint16_t(j + 1)};
    fe->desc(0)[i] = VringDesc{fe->gpa(tables + uint64_t(i) * kPieces * 16), kPieces * 16, kDescIndirect, 0};
    fe->publish(0, uint16_t(i));
  }
  uint64_t one = 1;
  ASSERT_EQ(write(fe->kick_fd(0), &one, 8), 8);
  // Each look is the engine's last before it would sleep: it takes the
  // kicks so far, drains, and sleeps unless its poll fd says otherwise.
  Pkt out[kMaxBurst];
  pollfd pf{port->poll_fd(), POLLIN, 0};
  int rounds = 0;
  while (fe->used_idx(0) < kFrames && rounds < 10) {
    ASSERT_EQ(poll(&pf, 1, 0), 1) << "woken (round " << rounds << "): by the guest's kick, then by itself";
    port->rx_burst(out, kMaxBurst);
    if (!rounds++) {
      EXPECT_LT(fe->used_idx(0), kFrames) << "the walk budget ended the first burst";
    }
  }
  EXPECT_EQ(fe->used_idx(0), kFrames);
  EXPECT_GT(rounds, 2);
  for (uint32_t i = 0; i < kFrames; ++i) {
    uint32_t id, len;
    fe->used_elem(0, uint16_t(i), &id, &len);
    ASSERT_EQ(len, 12 + kLen);
    const uint8_t* b = fe->host(data + uint64_t(id) * 1024);
    EXPECT_EQ(Bytes(b + 12, b + 12 + kLen), frames[i]) << "frame " << i << " in order";
  }
  EXPECT_EQ(poll(&pf, 1, 0), 0) << "nothing waits: the kick descriptor is out of the engine's poll set";
  close(w.fd);
}

TEST_F(VhostUser, EventIdxSuppressesNotifications) {
  auto fe = connect_and_setup(kBase);
  // used_event (after the avail ring) = 5: notify only when used crosses 5.
  fe->avail(0)[2 + kQ] = 5;
  fe->post_rx(16, 1024);
  uint64_t v;
  for (int i = 0; i < 4; ++i) {
    Pkt p = pkt_of(make_frame(testutil::host_mac(2), testutil::host_mac(1), 60));
    ASSERT_EQ(port->tx_burst(&p, 1), 1);
    if (i == 0) {
      EXPECT_EQ(read(fe->call_fd(0), &v, 8), 8) << "the first interrupt is always sent";
    }
  }
  EXPECT_EQ(read(fe->call_fd(0), &v, 8), -1) << "used 2..4 do not pass used_event 5";
  Pkt p[2] = {pkt_of(make_frame(testutil::host_mac(2), testutil::host_mac(1), 60)),
              pkt_of(make_frame(testutil::host_mac(2), testutil::host_mac(1), 60))};
  ASSERT_EQ(port->tx_burst(p, 2), 2);
  EXPECT_EQ(read(fe->call_fd(0), &v, 8), 8) << "used moved past 5";
}

TEST_F(VhostUser, HostileChainsBreakTheQueueNotTheSwitch) {
  struct Case {
    const char* name;
    VirtqDrop reason;
    std::function<void(FakeFrontend&)> make;
  };
  std::vector<Case> cases = {
      {"head beyond the queue", VirtqDrop::ring_bad_head, [](FakeFrontend& fe) { fe.publish(1, kQ + 3); }},
      {"chain that loops", VirtqDrop::ring_desc_loop,
       [](FakeFrontend& fe) {
         fe.desc(1)[0] = VringDesc{fe.gpa(fe.buf(1, 0)), 100, kDescNext, 1};
         fe.desc(1)[1] = VringDesc{fe.gpa(fe.buf(1, 1)), 100, kDescNext, 0};
         fe.publish(1, 0);
       }},
      {"address outside memory", VirtqDrop::ring_bad_addr,
       [](FakeFrontend& fe) {
         fe.desc(1)[0] = VringDesc{kGpaBase + kMemSize - 10, 100, 0, 0};
         fe.publish(1, 0);
       }},
      {"length that wraps", VirtqDrop::ring_bad_addr,
       [](FakeFrontend& fe) {
         fe.desc(1)[0] = VringDesc{~0ull - 5, 0xFFFFFFFF, 0, 0};
         fe.publish(1, 0);
       }},
      {"avail index far ahead", VirtqDrop::ring_bad_avail_idx,
       [](FakeFrontend& fe) { fe.avail(1)[1] = uint16_t(kQ + 7); }},
      {"next beyond the table", VirtqDrop::ring_bad_next,
       [](FakeFrontend& fe) {
         fe.desc(1)[0] = VringDesc{fe.gpa(fe.buf(1, 0)), 100, kDescNext, uint16_t(kQ + 1)};
         fe.publish(1, 0);
       }},
      {"nested indirect", VirtqDrop::ring_bad_indirect,
       [](FakeFrontend& fe) {
         auto* t = reinterpret_cast<VringDesc*>(fe.host(fe.buf(1, 5)));
         t[0] = VringDesc{fe.gpa(fe.buf(1, 5)), 32, kDescIndirect, 0};
         fe.desc(1)[0] = VringDesc{fe.gpa(fe.buf(1, 5)), 32, kDescIndirect, 0};
         fe.publish(1, 0);
       }},
      {"writable descriptor in a transmit chain", VirtqDrop::ring_wrong_direction,
       [](FakeFrontend& fe) {
         fe.desc(1)[0] = VringDesc{fe.gpa(fe.buf(1, 0)), 100, kDescWrite, 0};
         fe.publish(1, 0);
       }},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    TearDown();
    SetUp();
    auto fe = connect_and_setup(kBase);
    c.make(*fe);
    Pkt out[kMaxBurst];
    EXPECT_EQ(rx(out, 5), 0);
    EXPECT_EQ(cnt_read(qc(1).drops[size_t(c.reason)]), 1u);
    EXPECT_EQ(port->link_state(), LinkState::kUp) << "the receive queue still works";
    std::vector<VhostStatus::Queue> qs;
    std::vector<VhostStatus::Region> rs;
    status->vhost->layout(&qs, &rs);
    ASSERT_EQ(qs.size(), 2u);
    EXPECT_TRUE(qs[1].broken);
    EXPECT_FALSE(qs[1].error.empty());
    EXPECT_NE(status->error().find("broken"), std::string::npos) << status->error();
    // The other direction goes on.
    fe->post_rx(2, 1024);
    Pkt p = pkt_of(make_frame(testutil::host_mac(2), testutil::host_mac(1), 60));
    EXPECT_EQ(port->tx_burst(&p, 1), 1);
    EXPECT_EQ(fe->used_idx(0), 1);
    // Setting the ring up again (a new kick) clears it.
    int kick = eventfd(0, EFD_CLOEXEC);
    uint64_t idx = 1;
    uint32_t base[2] = {1, fe->avail(1)[1]};
    EXPECT_EQ(fe->ack(*port, kVuSetVringBase, base, 8), 0u);
    EXPECT_EQ(fe->ack(*port, kVuSetVringKick, &idx, 8, {kick}), 0u);
    close(kick);
    fe->send(make_frame(testutil::host_mac(1), testutil::host_mac(2), 60));
    EXPECT_EQ(rx(out), 1);
    cache->free(out[0].buf);
  }
}

// Chains of 1,000 descriptors are valid, but a burst stops walking after the
// frame that crosses the budget: the rest waits for the next burst, so a
// guest cannot make one rx_burst hold the engine up for long.
TEST_F(VhostUser, LongChainsAreTakenAFewPerBurst) {
  auto fe = connect_and_setup(kBase);
  constexpr uint32_t kFrames = 20, kLinks = 1000;
  const uint64_t data = 3 << 20;  // 12 zero bytes of header, then the frame's bytes
  std::memset(fe->host(data), 0, 12);
  std::memset(fe->host(data + 12), 0x5A, kLinks);
  for (uint32_t f = 0; f < kFrames; ++f) {
    const uint64_t t = (2 << 20) + uint64_t(f) * kLinks * 16;
    auto* table = reinterpret_cast<VringDesc*>(fe->host(t));
    table[0] = VringDesc{fe->gpa(data), 12, kDescNext, 1};
    for (uint32_t i = 1; i < kLinks; ++i)
      table[i] = VringDesc{fe->gpa(data + 12 + i), 1, uint16_t(i + 1 < kLinks ? kDescNext : 0), uint16_t(i + 1)};
    fe->desc(1)[f] = VringDesc{fe->gpa(t), kLinks * 16, kDescIndirect, 0};
    fe->publish(1, uint16_t(f));
  }
  Pkt out[kMaxBurst];
  const uint16_t first = port->rx_burst(out, kMaxBurst);
  EXPECT_GT(first, 0);
  EXPECT_LT(first, kFrames) << "the walk budget ends the burst early";
  uint32_t total = first;
  for (uint16_t i = 0; i < first; ++i) {
    EXPECT_EQ(out[i].len, kLinks - 1);
    cache->free(out[i].buf);
  }
  for (int round = 0; round < 10 && total < kFrames; ++round) {
    const uint16_t n = port->rx_burst(out, kMaxBurst);
    for (uint16_t i = 0; i < n; ++i) cache->free(out[i].buf);
    total += n;
  }
  EXPECT_EQ(total, kFrames) << "every frame arrives, a few bursts later";
  EXPECT_FALSE(status->vhost->q[1].drops[size_t(VirtqDrop::ring_desc_loop)]);
}

// A receive buffer of zero bytes cannot even hold the header: the guest's
// receive queue breaks, its transmit queue goes on.
TEST_F(VhostUser, EmptyMergeableReceiveBufferBreaksTheReceiveQueue) {
  auto fe = connect_and_setup(kBase);
  fe->desc(0)[0] = VringDesc{fe->gpa(fe->buf(0, 0)), 0, kDescWrite, 0};
  fe->desc(0)[1] = VringDesc{fe->gpa(fe->buf(0, 1)), 1024, kDescWrite, 0};
  fe->publish(0, 0);
  fe->publish(0, 1);
  Pkt p[2] = {pkt_of(make_frame(testutil::host_mac(2), testutil::host_mac(1), 60)),
              pkt_of(make_frame(testutil::host_mac(2), testutil::host_mac(1), 60))};
  EXPECT_EQ(port->tx_burst(p, 2), 2) << "taken: one counted as the breaking drop, one as not_ready";
  EXPECT_EQ(cnt_read(qc(0).drops[size_t(VirtqDrop::ring_short_buffer)]), 1u);
  EXPECT_EQ(cnt_read(qc(0).drops[size_t(VirtqDrop::not_ready)]), 1u);
  EXPECT_EQ(fe->used_idx(0), 0) << "nothing published into a broken ring";
  EXPECT_EQ(port->link_state(), LinkState::kUp);
  std::vector<VhostStatus::Queue> qs;
  std::vector<VhostStatus::Region> rs;
  status->vhost->layout(&qs, &rs);
  EXPECT_TRUE(qs[0].broken);
  fe->send(make_frame(testutil::host_mac(1), testutil::host_mac(2), 60));
  Pkt out[kMaxBurst];
  ASSERT_EQ(rx(out), 1);
  cache->free(out[0].buf);
}

size_t open_fds() {
  size_t n = 0;
  for (const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) {
    (void)e;
    ++n;
  }
  return n;
}

TEST_F(VhostUser, DisconnectReleasesEverythingAndReconnectWorks) {
  const size_t fds_before = open_fds();
  {
    auto fe = connect_and_setup(kBase);
    EXPECT_EQ(port->link_state(), LinkState::kUp);
    fe->hang_up();
    Pkt out[kMaxBurst];
    for (int i = 0; i < 200 && status->vhost->connected.load(); ++i) {
      port->rx_burst(out, kMaxBurst);
      usleep(1000);
    }
  }
  EXPECT_FALSE(status->vhost->connected.load());
  EXPECT_EQ(port->link_state(), LinkState::kDown);
  EXPECT_EQ(open_fds(), fds_before) << "the connection, the memory fd and every eventfd closed";
  {
    std::ifstream maps("/proc/self/maps");
    std::string line;
    while (std::getline(maps, line)) EXPECT_EQ(line.find("memfd:guest"), std::string::npos) << "still mapped: " << line;
  }
  std::vector<VhostStatus::Queue> qs;
  std::vector<VhostStatus::Region> rs;
  status->vhost->layout(&qs, &rs);
  EXPECT_TRUE(rs.empty());
  for (auto& q : qs) EXPECT_FALSE(q.ready);
  // Frames for a port without a guest receive queue are counted drops.
  Pkt p = pkt_of(make_frame(testutil::host_mac(2), testutil::host_mac(1), 60));
  EXPECT_EQ(port->tx_burst(&p, 1), 1);
  EXPECT_EQ(cnt_read(qc(0).drops[size_t(VirtqDrop::not_ready)]), 1u);
  // The next front end gets a fresh device.
  auto fe2 = connect_and_setup(kBase);
  EXPECT_EQ(port->link_state(), LinkState::kUp);
  EXPECT_EQ(status->vhost->connects.load(), 2u);
}

// The socket is 0660 with its directory's group: a front end run as another
// user (libvirt's QEMU) connects as a member of that group.
TEST(VhostUserSocket, IsGroupWritableWithItsDirectorysGroup) {
  const std::string dir = "/tmp/vpc-vhu-group-" + std::to_string(getpid());
  ASSERT_EQ(mkdir(dir.c_str(), 0750), 0);
  const gid_t group = 65534;  // nogroup: not the owner's
  if (chown(dir.c_str(), uid_t(-1), group) != 0) {
    rmdir(dir.c_str());
    GTEST_SKIP() << "cannot give the directory another group (not root)";
  }
  VhostUserOptions o;
  o.socket = dir + "/vm.sock";
  auto port = VhostUserPort::open(o, test_pool(), std::make_shared<PortStatus>());
  struct stat ss;
  ASSERT_EQ(::stat(o.socket.c_str(), &ss), 0);
  EXPECT_EQ(ss.st_mode & 0777, 0660u);
  EXPECT_EQ(ss.st_gid, group);
  port->detach();
  port.reset();
  rmdir(dir.c_str());
}

// A second front end given the same socket (another VM, a typo) is closed
// at once and said, not left in the listen backlog to take the port over
// when the first one goes; the first keeps its device.
TEST_F(VhostUser, ASecondFrontEndIsClosedAtOnceAndSaid) {
  auto fe = connect_and_setup(kBase);
  EXPECT_EQ(port->link_state(), LinkState::kUp);
  FakeFrontend second(dir + "/s.sock");
  ASSERT_TRUE(second.connected());
  pollfd pf{second.fd(), POLLIN, 0};
  ASSERT_EQ(poll(&pf, 1, 2000), 1) << "closed by the port, not left waiting";
  char b;
  EXPECT_LE(read(second.fd(), &b, 1), 0);
  EXPECT_EQ(status->vhost->refused.load(), 1u);
  EXPECT_NE(status->error().find("a second front end connected"), std::string::npos) << status->error();
  EXPECT_EQ(port->link_state(), LinkState::kUp);
  EXPECT_TRUE(status->vhost->connected.load());
  EXPECT_EQ(status->vhost->connects.load(), 1u);
}

// vpcd restores a port whose socket's directory is gone (a service's
// runtime directory is removed when it stops): the port waits for it,
// down, and listens once it is made.
TEST(VhostUserWait, AMissingSocketDirectoryIsWaitedForWhenAskedAndRefusedOtherwise) {
  auto pool = test_pool();
  const std::string dir = "/tmp/vpc-vhu-wait-" + std::to_string(getpid());
  VhostUserOptions o;
  o.socket = dir + "/vms/s.sock";
  try {
    VhostUserPort::open(o, pool, std::make_shared<PortStatus>());
    ADD_FAILURE() << "a missing directory was not refused";
  } catch (const PortError& e) {
    EXPECT_EQ(e.status, Status::kNotFound);
  }
  o.wait_for_directory = true;
  auto st = std::make_shared<PortStatus>();
  auto port = VhostUserPort::open(o, pool, st);
  EXPECT_EQ(port->link_state(), LinkState::kDown);
  EXPECT_NE(st->error().find("the socket's directory does not exist (yet)"), std::string::npos) << st->error();
  ASSERT_EQ(mkdir(dir.c_str(), 0700), 0);
  ASSERT_EQ(mkdir((dir + "/vms").c_str(), 0700), 0);
  struct stat sb;
  bool listening = false;
  // The socket file appears at bind, the error goes right after: wait for both.
  for (int i = 0; i < 300 && !listening; ++i) {
    listening = ::stat(o.socket.c_str(), &sb) == 0 && S_ISSOCK(sb.st_mode) && st->error().empty();
    if (!listening) usleep(10000);
  }
  ASSERT_TRUE(listening) << st->error();
  auto cache = std::make_unique<BufferCache>(pool);
  FakeFrontend fe(o.socket);
  EXPECT_TRUE(fe.connected());
  fe.setup(*port, kBase);
  EXPECT_EQ(port->link_state(), LinkState::kUp);
  port->detach();
  port.reset();
  rmdir((dir + "/vms").c_str());
  rmdir(dir.c_str());
}

// A path through a file ("/tmp/x.img/../vm.sock"): the kernel walks it as
// written, so the file on the way is an error in the path (invalid
// argument, named as such), not a failed system call.
TEST(VhostUserSocket, APathThroughAFileIsAnInvalidArgument) {
  auto pool = test_pool();
  const std::string file = "/tmp/vpc-vhu-file-" + std::to_string(getpid());
  FILE* f = std::fopen(file.c_str(), "w");
  ASSERT_NE(f, nullptr);
  std::fclose(f);
  for (bool wait : {false, true}) {
    VhostUserOptions o;
    o.socket = file + "/../s.sock";
    o.wait_for_directory = wait;
    try {
      VhostUserPort::open(o, pool, std::make_shared<PortStatus>());
      ADD_FAILURE() << "a path through a file was taken";
    } catch (const PortError& e) {
      EXPECT_EQ(e.status, Status::kInvalidArgument) << e.what();
      EXPECT_NE(std::string(e.what()).find("is a file, not a directory"), std::string::npos) << e.what();
    }
  }
  std::remove(file.c_str());
}

// Client mode on a path where nothing listens (a typo, a VM not started)
// says so in lastError, and keeps trying.
TEST(VhostUserWait, AClientThatCannotConnectSaysWhy) {
  auto pool = test_pool();
  VhostUserOptions o;
  o.socket = "/tmp/vpc-vhu-nowhere-" + std::to_string(getpid()) + "/vm.sock";
  o.client = true;
  auto st = std::make_shared<PortStatus>();
  auto port = VhostUserPort::open(o, pool, st);
  bool said = false;
  for (int i = 0; i < 300 && !said; ++i) {
    said = st->error().find("connecting to " + o.socket + ": No such file or directory") != std::string::npos;
    if (!said) usleep(10000);
  }
  EXPECT_TRUE(said) << st->error();
  EXPECT_EQ(port->link_state(), LinkState::kDown);
  port->detach();
}

// The socket file removed while the port listens (rm, or its directory
// removed and made again): within about a second the port makes it again
// and says so, and a front end connects as before. A file of that name put
// there by someone else is left alone, and said.
TEST_F(VhostUser, ARemovedSocketFileIsMadeAgain) {
  const std::string sock = dir + "/s.sock";
  ASSERT_EQ(unlink(sock.c_str()), 0);
  struct stat ss;
  ASSERT_TRUE(testutil::wait_until([&] { return stat(sock.c_str(), &ss) == 0 && S_ISSOCK(ss.st_mode); }, 5000))
      << "made again";
  EXPECT_NE(status->error().find("was removed while the port listened; made again"), std::string::npos) << status->error();
  FakeFrontend fe(sock);
  ASSERT_TRUE(fe.connected());
  fe.setup(*port, kBase);
  EXPECT_EQ(port->link_state(), LinkState::kUp) << status->error();
}

// A front end that closes every connection at once (QEMU asking for more
// queue pairs than the port has closes after GET_QUEUE_NUM): the client port
// connects once a second, not thousands of times, and lastError says what
// such a front end usually is.
TEST(VhostUserWait, AFrontEndThatClosesAtOnceIsTriedOnceASecond) {
  const std::string path = "/tmp/vpc-vhu-flap-" + std::to_string(getpid()) + ".sock";
  unlink(path.c_str());
  const int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(lfd, 0);
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::strncpy(sa.sun_path, path.c_str(), sizeof sa.sun_path - 1);
  ASSERT_EQ(bind(lfd, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  ASSERT_EQ(listen(lfd, 16), 0);
  std::atomic<int> accepted{0};
  std::atomic<bool> stop{false};
  std::thread front([&] {
    while (!stop.load()) {
      pollfd pf{lfd, POLLIN, 0};
      if (poll(&pf, 1, 20) <= 0) continue;
      const int c = accept(lfd, nullptr, nullptr);
      if (c >= 0) {
        accepted.fetch_add(1);
        ::close(c);
      }
    }
  });
  auto pool = test_pool();
  VhostUserOptions o;
  o.socket = path;
  o.client = true;
  auto st = std::make_shared<PortStatus>();
  auto port = VhostUserPort::open(o, pool, st);
  Pkt out[kMaxBurst];
  const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(4500);
  while (std::chrono::steady_clock::now() < end) {
    port->rx_burst(out, kMaxBurst);  // the engine's part: it sees each close
    usleep(1000);
  }
  const int n = accepted.load();
  // Said while it waits between connections (each close says only that it
  // closed, for the moment it takes the watcher to come back).
  for (int i = 0; i < 150 && st->error().find("closed each of its last") == std::string::npos; ++i) {
    port->rx_burst(out, kMaxBurst);
    usleep(10000);
  }
  EXPECT_GE(n, 3) << "it keeps trying";
  EXPECT_LE(n, 6) << "once a second, not at once";
  EXPECT_NE(st->error().find("closed each of its last"), std::string::npos) << st->error();
  EXPECT_NE(st->error().find("more queue pairs than the port's queues: 1"), std::string::npos) << st->error();
  port->detach();
  stop.store(true);
  front.join();
  ::close(lfd);
  unlink(path.c_str());
}

// A reply the port cannot send (here: a front end that asks and never reads,
// until the socket is full) would leave the reply stream one short: the
// front end would wait forever for it, or take the next reply for it. The
// port drops the connection instead, says why, and the next front end
// comes up as usual.
TEST_F(VhostUser, AReplyThatCannotBeSentDropsTheConnection) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  ASSERT_GE(fd, 0);
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::strncpy(sa.sun_path, (dir + "/s.sock").c_str(), sizeof sa.sun_path - 1);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  Pkt out[kMaxBurst];
  uint64_t sent = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline &&
         !(status->vhost->disconnects.load() && !status->vhost->connected.load())) {
    for (int i = 0; i < 64; ++i)
      if (vu_send_request(fd, kVuGetFeatures, kVuVersion, nullptr, 0) == 12) ++sent;
    port->rx_burst(out, kMaxBurst);
  }
  EXPECT_FALSE(status->vhost->connected.load()) << sent << " requests, " << status->vhost->messages.load()
                                                << " handled; " << status->error();
  EXPECT_EQ(status->vhost->disconnects.load(), 1u);
  EXPECT_NE(status->error().find("the reply to GET_FEATURES could not be sent"), std::string::npos) << status->error();
  // The front end sees the connection closed after the replies it left (a
  // reset: the port closed it with requests still unread).
  char buf[4096];
  ssize_t r;
  while ((r = recv(fd, buf, sizeof buf, MSG_DONTWAIT)) > 0) {
  }
  EXPECT_TRUE(r == 0 || errno == ECONNRESET) << "the connection is closed: " << strerror(errno);
  close(fd);
  auto fe = connect_and_setup(kBase);
  EXPECT_EQ(port->link_state(), LinkState::kUp);
  EXPECT_EQ(status->vhost->connects.load(), 2u);
}

// A message that arrives in pieces (here: five bytes of header with the file
// descriptor, the rest of the header, half the payload, the other half) is
// kept between bursts and handled when whole. The engine, here the test
// thread, never waits for the rest: a port that waited would hold the test
// thread until it gave up and dropped the connection.
TEST_F(VhostUser, AMessageInPiecesIsTakenBetweenBurstsWithoutWaiting) {
  auto fe = connect_and_setup(kBase);
  const uint64_t handled = status->vhost->messages.load();
  int call = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  const uint64_t queue0 = 0;  // and an fd
  const std::vector<uint8_t> msg = vu_message(kVuSetVringCall, kVuVersion | kVuFlagNeedReply, &queue0, 8);
  const size_t cuts[] = {0, 5, 12, 16, 20};
  Pkt out[kMaxBurst];
  for (size_t k = 0; k + 1 < std::size(cuts); ++k) {
    ASSERT_EQ(fe->send_raw(msg.data() + cuts[k], cuts[k + 1] - cuts[k], k == 0 ? std::vector<int>{call} : std::vector<int>{}),
              ssize_t(cuts[k + 1] - cuts[k]));
    if (k + 2 == std::size(cuts)) break;
    // Until the port has taken the piece, then some more bursts: no reply,
    // no drop, the rings still served.
    ASSERT_TRUE(fe->wait_taken(*port)) << "the port took the piece ending at byte " << cuts[k + 1];
    for (int i = 0; i < 20; ++i) EXPECT_EQ(port->rx_burst(out, kMaxBurst), 0);
    pollfd pf{fe->fd(), POLLIN, 0};
    EXPECT_EQ(poll(&pf, 1, 0), 0) << "no reply before the message is whole";
    EXPECT_TRUE(status->vhost->connected.load()) << status->error();
    EXPECT_EQ(status->vhost->messages.load(), handled);
  }
  ASSERT_TRUE(fe->wait_reply(*port));
  std::vector<uint8_t> ack;
  ASSERT_TRUE(fe->read_reply(kVuSetVringCall, &ack));
  ASSERT_EQ(ack.size(), 8u);
  EXPECT_EQ(ack[0], 0) << "the queue index and the fd were put together: " << status->error();
  EXPECT_EQ(status->vhost->messages.load(), handled + 1);
  EXPECT_EQ(status->vhost->disconnects.load(), 0u);
  // The new call eventfd is the one the port signals.
  fe->post_rx(2, 1024);
  Pkt p = pkt_of(make_frame(testutil::host_mac(2), testutil::host_mac(1), 60));
  ASSERT_EQ(port->tx_burst(&p, 1), 1);
  uint64_t v = 0;
  EXPECT_EQ(read(call, &v, 8), 8);
  close(call);
}

// What cannot be vhost-user drops the connection at once (the header is
// judged before any payload is waited for), counted by reason and named in
// lastError; the next front end comes up as usual.
TEST_F(VhostUser, GarbageDropsTheConnectionWithItsReason) {
  struct Case {
    const char* name;
    VhostDrop reason;
    const char* says;
    std::function<void(FakeFrontend&)> send;
  };
  auto header = [](uint32_t req, uint32_t flags, uint32_t size) {
    std::vector<uint8_t> h = vu_message(req, flags);
    std::memcpy(h.data() + 8, &size, 4);  // a payload announced, not sent
    return h;
  };
  const std::vector<Case> cases = {
      {"not vhost-user", VhostDrop::bad_version, "protocol version 3",
       [&](FakeFrontend& fe) {
         const char junk[] = "GET / HTTP/1.1\r\n\r\n";
         fe.send_raw(junk, sizeof junk - 1);
       }},
      {"a payload of 1 MiB announced", VhostDrop::too_big, "announces 1048576 bytes",
       [&](FakeFrontend& fe) {
         auto h = header(kVuSetMemTable, kVuVersion, 1 << 20);
         fe.send_raw(h.data(), h.size());
       }},
      {"ten fds over two pieces", VhostDrop::too_many_fds, "more than 8 file descriptors",
       [&](FakeFrontend& fe) {
         std::vector<int> five;
         for (int i = 0; i < 5; ++i) five.push_back(eventfd(0, EFD_CLOEXEC));
         auto h = header(kVuSetMemTable, kVuVersion, 8 + 32 * 5);
         fe.send_raw(h.data(), 6, five);
         EXPECT_TRUE(fe.wait_taken(*port));
         fe.send_raw(h.data() + 6, 6, five);
         for (int f : five) close(f);
       }},
      {"closed after half a header", VhostDrop::closed_mid_message, "in the middle of a message (7 of the 12",
       [&](FakeFrontend& fe) {
         auto h = header(kVuGetFeatures, kVuVersion, 0);
         fe.send_raw(h.data(), 7);
         EXPECT_TRUE(fe.wait_taken(*port));
         fe.hang_up();
       }},
  };
  const size_t fds_before = open_fds();
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const uint64_t disconnects = status->vhost->disconnects.load();
    {
      FakeFrontend fe(dir + "/s.sock");
      ASSERT_TRUE(fe.connected());
      c.send(fe);
      Pkt out[kMaxBurst];
      for (int i = 0; i < 5000 && status->vhost->disconnects.load() == disconnects; ++i) {
        port->rx_burst(out, kMaxBurst);
        usleep(200);
      }
    }
    EXPECT_EQ(status->vhost->disconnects.load(), disconnects + 1);
    EXPECT_FALSE(status->vhost->connected.load());
    EXPECT_EQ(status->vhost->drops[size_t(c.reason)].load(), 1u);
    EXPECT_NE(status->error().find(c.says), std::string::npos) << status->error();
    EXPECT_NE(status->error().find(kVhostDropNames[size_t(c.reason)]), std::string::npos) << status->error();
  }
  EXPECT_EQ(open_fds(), fds_before) << "the fds of a dropped message are closed";
  auto fe = connect_and_setup(kBase);
  EXPECT_EQ(port->link_state(), LinkState::kUp);
}

// poll(2) failing in the watcher thread (injected: ENOMEM three times on
// each of its waits) used to end the thread silently: the port would never
// accept or read again. The watcher says which call failed and why, pauses,
// retries, and the front end is served once poll works again.
TEST_F(VhostUser, TheWatcherOutlivesFailingPollsAndSaysWhy) {
  std::atomic<int> listening{3}, connection{3}, engine{3};
  VhostUserOptions o;
  o.socket = dir + "/p.sock";
  o.poll_for_test = [&](pollfd* pf, nfds_t n, int timeout) {
    // Which wait this is: the listening socket, the connection, or the
    // engine's acknowledgement (an eventfd, not a socket).
    int acc = 0;
    socklen_t len = sizeof acc;
    const bool sock = getsockopt(pf[0].fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &len) == 0;
    std::atomic<int>& left = !sock ? engine : acc ? listening : connection;
    if (left.fetch_sub(1) > 0) {
      errno = ENOMEM;
      return -1;
    }
    return ::poll(pf, n, timeout);
  };
  auto st = std::make_shared<PortStatus>();
  auto p = VhostUserPort::open(o, pool, st);
  ASSERT_TRUE(testutil::wait_until([&] { return listening.load() < 3; }, 10000)) << "the first poll failed";
  FakeFrontend fe(o.socket);
  ASSERT_TRUE(fe.connected());
  fe.setup(*p, kBase);
  EXPECT_EQ(listening.load(), -1) << "three failures, then a poll that worked";
  EXPECT_EQ(p->link_state(), LinkState::kUp) << st->error();
  EXPECT_EQ(st->vhost->watcher_errors.load(), 9u);
  // The waits fail in order (the listening socket, the engine's first
  // acknowledgement, the connection): lastError shows the last one.
  EXPECT_NE(st->error().find("vhost-user watcher: poll (connection) failed: Cannot allocate memory (ENOMEM); "
                             "retrying in 40 ms"),
            std::string::npos)
      << st->error();
  p->detach();
}

// accept() failing while the connection stays queued (the process is out of
// file descriptors) used to be retried at once, for ever, without a word: a
// watcher spinning on a core. It says so, pauses, and accepts the front end
// once descriptors are free again.
TEST_F(VhostUser, AcceptFailingForLackOfDescriptorsIsShownAndRetried) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  rlimit saved{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &saved), 0);
  {
    // The lowest free descriptor number becomes the limit: the port's next
    // accept() fails with EMFILE. Restored however the block ends.
    const int lowest = eventfd(0, EFD_CLOEXEC);
    ASSERT_GE(lowest, 0);
    close(lowest);
    struct Restore {
      rlimit r;
      ~Restore() { setrlimit(RLIMIT_NOFILE, &r); }
    } restore{saved};
    rlimit low = saved;
    low.rlim_cur = rlim_t(lowest);
    ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::strncpy(sa.sun_path, (dir + "/s.sock").c_str(), sizeof sa.sun_path - 1);
    ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0) << "queued until accepted";
    EXPECT_TRUE(testutil::wait_until([&] { return status->vhost->watcher_errors.load() >= 2; }, 10000));
    EXPECT_NE(status->error().find("vhost-user watcher: accept failed: Too many open files (EMFILE); retrying in"),
              std::string::npos)
        << status->error();
    EXPECT_FALSE(status->vhost->connected.load());
  }
  Pkt out[kMaxBurst];
  for (int i = 0; i < 5000 && !status->vhost->connected.load(); ++i) {
    port->rx_burst(out, kMaxBurst);
    usleep(1000);
  }
  ASSERT_TRUE(status->vhost->connected.load()) << status->error();
  ASSERT_EQ(vu_send_request(fd, kVuGetQueueNum, kVuVersion, nullptr, 0), 12);
  pollfd pf{fd, POLLIN, 0};
  for (int i = 0; i < 5000 && poll(&pf, 1, 0) == 0; ++i) {
    port->rx_burst(out, kMaxBurst);
    usleep(1000);
  }
  uint8_t reply[20];
  EXPECT_EQ(recv(fd, reply, sizeof reply, MSG_DONTWAIT), 20) << "GET_QUEUE_NUM answered on the accepted connection";
  close(fd);
}

// A call descriptor that is a pipe nobody reads, not an eventfd: once it is
// full, a blocking write() would stop the engine for good. The port makes
// every descriptor it signals non-blocking; notifications beyond what the
// pipe holds are lost, the engine goes on.
TEST_F(VhostUser, ACallDescriptorThatFillsUpNeverBlocksTheEngine) {
  auto fe = connect_and_setup(kBase & ~bit(kRingEventIdx));  // a notification per burst
  int p[2];
  ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
  ASSERT_EQ(fcntl(p[1], F_SETPIPE_SZ, 4096), 4096);
  uint64_t idx = 0;
  ASSERT_EQ(fe->ack(*port, kVuSetVringCall, &idx, 8, {p[1]}), 0u);
  ASSERT_TRUE(fcntl(p[1], F_GETFL) & O_NONBLOCK) << "the port made the call descriptor non-blocking";
  constexpr int kBursts = 4096 / 8 + 100;  // 100 more than the pipe holds
  for (int i = 0; i < kBursts; ++i) {
    fe->post_rx(1, 1024);
    Pkt one = pkt_of(make_frame(testutil::host_mac(2), testutil::host_mac(1), 60));
    ASSERT_EQ(port->tx_burst(&one, 1), 1);
  }
  EXPECT_EQ(fe->used_idx(0), uint16_t(kBursts));
  EXPECT_EQ(cnt_read(qc(0).c[size_t(VirtqCounter::notifies)]), uint64_t(kBursts));
  int queued = 0;
  ASSERT_EQ(ioctl(p[0], FIONREAD, &queued), 0);
  EXPECT_EQ(queued, 4096) << "the pipe is full; the notifications after that were dropped";
  close(p[0]);
  close(p[1]);
}

TEST_F(VhostUser, SleepingEngineAsksForKicks) {
  auto fe = connect_and_setup(kBase);
  Waker w;
  w.fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  port->attach(&w);
  Pkt out[kMaxBurst];
  port->rx_burst(out, kMaxBurst);  // polling: kicks off
  w.sleeping.store(true);
  port->rx_burst(out, kMaxBurst);  // about to sleep: avail_event = next entry
  const uint16_t avail_event = *reinterpret_cast<uint16_t*>(fe->used(1) + 4 + 8 * kQ);
  EXPECT_EQ(avail_event, 0);
  // The port's poll fd becomes readable on a kick.
  pollfd pf{port->poll_fd(), POLLIN, 0};
  EXPECT_EQ(poll(&pf, 1, 0), 0);
  uint64_t one = 1;
  ASSERT_EQ(write(fe->kick_fd(1), &one, 8), 8);
  EXPECT_EQ(poll(&pf, 1, 100), 1);
  w.sleeping.store(false);
  port->attach(nullptr);
  close(w.fd);
}

// The ring code alone, on a heap buffer: a guest's receive chain without
// mergeable buffers that is too short drops the frame and keeps the buffer.
TEST(VirtioRing, ShortReceiveChainWithoutMergeableBuffers) {
  auto pool = test_pool();
  BufferCache cache(pool);
  std::vector<uint8_t> mem(1 << 16);
  GuestMemory gm;
  ASSERT_TRUE(gm.add(GuestRegion{0x1000, mem.size(), 0x1000, mem.data()}));
  VirtqCounters ctr;
  VirtQueue q;
  q.ctr = &ctr;
  q.num = 8;
  q.desc_uva = 0x1000;
  q.avail_uva = 0x1000 + 128;
  q.used_uva = 0x1000 + 256;
  q.addr_set = q.enabled = q.started = true;
  std::string err;
  ASSERT_TRUE(q.map(gm, &err)) << err;
  VirtioNetCtx c;
  c.mem = &gm;
  c.pool = pool.get();
  c.cache = &cache;
  c.hdr_len = kVnetHdrLen;
  q.desc[0] = VringDesc{0x1000 + 1024, 64, kDescWrite, 0};
  q.avail[2] = 0;
  q.avail[1] = 1;
  uint32_t idx;
  ASSERT_TRUE(cache.alloc(&idx));
  Pkt p{idx, pool->headroom(), 200};
  EXPECT_EQ(vq_enqueue(q, c, &p, 1), 1);
  EXPECT_EQ(cnt_read(ctr.drops[size_t(VirtqDrop::guest_buffer_small)]), 1u);
  EXPECT_EQ(q.last_avail, 0) << "the buffer stays with the device for the next frame";
  EXPECT_FALSE(q.broken);
  // A region wrapping the address space is refused.
  EXPECT_FALSE(gm.add(GuestRegion{~0ull - 10, 100, 0, mem.data()}));
  EXPECT_EQ(gm.gpa(0x1000 + mem.size() - 4, 8), nullptr) << "a range leaving the region is never translated";
}

// One-descriptor buffers (the rings' shortcut) at their edges: a buffer that
// spans two regions, the 10-byte header, a bad virtio-net header, a buffer
// that leaves guest memory. Two adjacent regions, rings in the first.
struct TwoRegionRing {
  std::shared_ptr<BufferPool> pool = test_pool();
  BufferCache cache{pool};
  std::vector<uint8_t> a = std::vector<uint8_t>(1 << 16), b = std::vector<uint8_t>(1 << 16);
  GuestMemory gm;
  VirtqCounters ctr;
  VirtQueue q;
  VirtioNetCtx c;
  static constexpr uint64_t kA = 0x10000, kB = kA + (1 << 16);
  TwoRegionRing() {
    EXPECT_TRUE(gm.add(GuestRegion{kA, a.size(), kA, a.data()}));
    EXPECT_TRUE(gm.add(GuestRegion{kB, b.size(), kB, b.data()}));
    q.ctr = &ctr;
    q.num = 8;
    q.desc_uva = kA;
    q.avail_uva = kA + 128;
    q.used_uva = kA + 256;
    q.addr_set = q.enabled = q.started = true;
    std::string err;
    EXPECT_TRUE(q.map(gm, &err)) << err;
    c.mem = &gm;
    c.pool = pool.get();
    c.cache = &cache;
  }
  uint8_t* host(uint64_t gpa) { return gpa >= kB ? b.data() + (gpa - kB) : a.data() + (gpa - kA); }
  void post(uint16_t at, VringDesc d) {
    q.desc[at] = d;
    q.avail[2 + (q.avail[1] & 7)] = at;
    q.avail[1]++;
  }
  uint16_t used_idx() {
    uint16_t v;
    std::memcpy(&v, q.used + 2, 2);
    return v;
  }
  void used(uint16_t i, uint32_t* id, uint32_t* len) {
    std::memcpy(id, q.used + 4 + 8 * i, 4);
    std::memcpy(len, q.used + 8 + 8 * i, 4);
  }
  Pkt pkt(const Bytes& f) {
    uint32_t idx = 0;
    EXPECT_TRUE(cache.alloc(&idx));
    std::memcpy(pool->data(idx) + pool->headroom(), f.data(), f.size());
    return Pkt{idx, pool->headroom(), uint16_t(f.size())};
  }
};

TEST(VirtioRing, OneDescriptorReceiveBuffers) {
  TwoRegionRing r;
  r.c.hdr_len = kVnetHdrLen;
  Bytes f = make_frame(testutil::host_mac(2), testutil::host_mac(1), 100);
  // Whole in the first region, 10-byte header: nothing written past it.
  std::memset(r.host(r.kA + 4096), 0xAA, 256);
  r.post(0, VringDesc{r.kA + 4096, 256, kDescWrite, 0});
  // Straddling the two regions: 40 bytes in the first, the rest in the second.
  r.post(1, VringDesc{r.kB - 40, 256, kDescWrite, 0});
  Pkt in[2] = {r.pkt(f), r.pkt(f)};
  ASSERT_EQ(vq_enqueue(r.q, r.c, in, 2), 2);
  ASSERT_EQ(r.used_idx(), 2);
  uint32_t id, len;
  r.used(0, &id, &len);
  EXPECT_EQ(id, 0u);
  EXPECT_EQ(len, 10 + f.size());
  const uint8_t* b0 = r.host(r.kA + 4096);
  EXPECT_EQ(Bytes(b0, b0 + 10), Bytes(10, 0)) << "a 10-byte header has no num_buffers";
  EXPECT_EQ(Bytes(b0 + 10, b0 + 10 + f.size()), f);
  EXPECT_EQ(b0[10 + f.size()], 0xAA);
  r.used(1, &id, &len);
  EXPECT_EQ(id, 1u);
  EXPECT_EQ(len, 10 + f.size());
  Bytes got(r.host(r.kB - 40), r.host(r.kB - 40) + 40);
  got.insert(got.end(), r.host(r.kB), r.host(r.kB) + (10 + f.size() - 40));
  EXPECT_EQ(Bytes(got.begin() + 10, got.end()), f);
  // Whole in the second region, then one that starts there and leaves guest
  // memory: the frame is dropped and the queue broken.
  r.post(2, VringDesc{r.kB + 4096, 256, kDescWrite, 0});
  r.post(3, VringDesc{r.kB + (1 << 16) - 20, 256, kDescWrite, 0});
  Pkt two[2] = {r.pkt(f), r.pkt(f)};
  EXPECT_EQ(vq_enqueue(r.q, r.c, two, 2), 2);
  r.used(2, &id, &len);
  EXPECT_EQ(id, 2u);
  EXPECT_EQ(Bytes(r.host(r.kB + 4096 + 10), r.host(r.kB + 4096 + 10) + f.size()), f);
  EXPECT_EQ(r.used_idx(), 3);
  EXPECT_TRUE(r.q.broken);
  EXPECT_EQ(cnt_read(r.ctr.drops[size_t(VirtqDrop::ring_bad_addr)]), 1u);
}

// A receive queue found full asks the guest to kick at the avail index the
// enqueue last read, not at one read later: a buffer the guest published in
// between was never looked at, and a guest that saw avail_event already at
// its new index would not kick. The ask then says "look again".
TEST(VirtioRing, AKickIsAskedAtTheIndexTheQueueWasFoundFullAt) {
  TwoRegionRing r;
  r.c.hdr_len = kVnetHdrMrgLen;
  r.c.mrg_rxbuf = true;
  r.c.event_idx = true;
  r.post(0, VringDesc{r.kA + 4096, 64, kDescWrite, 0});
  Pkt in = r.pkt(make_frame(testutil::host_mac(2), testutil::host_mac(1), 200));
  EXPECT_EQ(vq_enqueue(r.q, r.c, &in, 1), 0) << "one 64-byte buffer: too few for the frame";
  EXPECT_TRUE(r.q.rx_full);
  EXPECT_EQ(r.q.rx_seen, 1);
  r.post(1, VringDesc{r.kA + 8192, 64, kDescWrite, 0});  // published after the enqueue's look
  EXPECT_FALSE(vq_kick_on_next_buffer(r.q, r.c)) << "the index moved: look again";
  uint16_t avail_event;
  std::memcpy(&avail_event, r.q.used + 4 + 8 * r.q.num, 2);
  EXPECT_EQ(avail_event, 1) << "a guest checking now (old 1, new 2) kicks";
  EXPECT_EQ(vq_enqueue(r.q, r.c, &in, 1), 0);
  EXPECT_EQ(r.q.rx_seen, 2);
  EXPECT_TRUE(vq_kick_on_next_buffer(r.q, r.c)) << "nothing new since: the guest will kick";
  r.c.cache->free(in.buf);
}

TEST(VirtioRing, OneDescriptorTransmitBuffers) {
  TwoRegionRing r;
  r.c.hdr_len = kVnetHdrMrgLen;
  Bytes f = make_frame(testutil::host_mac(1), testutil::host_mac(2), 100);
  auto put = [&](uint64_t gpa, const uint8_t* hdr) {
    Bytes all(hdr, hdr + 12);
    all.insert(all.end(), f.begin(), f.end());
    for (size_t i = 0; i < all.size(); ++i) *r.host(gpa + i) = all[i];
  };
  const uint8_t plain[12] = {}, bad[12] = {0x80};
  put(r.kA + 4096, plain);
  put(r.kB - 30, plain);  // straddles the two regions
  put(r.kA + 8192, bad);
  const uint32_t l = 12 + uint32_t(f.size());
  r.post(0, VringDesc{r.kA + 4096, l, 0, 0});
  r.post(1, VringDesc{r.kB - 30, l, 0, 0});
  r.post(2, VringDesc{r.kA + 8192, l, 0, 0});
  Pkt out[4];
  ASSERT_EQ(vq_dequeue(r.q, r.c, out, 4), 2);
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(Bytes(r.pool->frame(out[i]), r.pool->frame(out[i]) + out[i].len), f) << i;
    EXPECT_FALSE(pkt_has_meta(out[i]));
    r.cache.free(out[i].buf);
  }
  EXPECT_EQ(cnt_read(r.ctr.drops[size_t(VirtqDrop::bad_vnet_hdr)]), 1u);
  EXPECT_EQ(r.used_idx(), 3) << "a dropped frame's buffer goes back too";
  EXPECT_FALSE(r.q.broken);
  // Device-writable: the wrong direction breaks the queue.
  r.post(3, VringDesc{r.kA + 4096, l, kDescWrite, 0});
  EXPECT_EQ(vq_dequeue(r.q, r.c, out, 4), 0);
  EXPECT_TRUE(r.q.broken);
  EXPECT_EQ(cnt_read(r.ctr.drops[size_t(VirtqDrop::ring_wrong_direction)]), 1u);
}

}  // namespace
}  // namespace vpc
