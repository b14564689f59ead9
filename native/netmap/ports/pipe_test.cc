// Tests for ports/pipe.h, driven directly (no engine): the test thread plays
// both the engine side (PipePort) and the outside (PipePeer).
#include "ports/pipe.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <memory>
#include <vector>

#include "core/test_util.h"

namespace vpc {
namespace {

using testutil::Bytes;
using testutil::make_frame;

std::shared_ptr<BufferPool> small_pool(uint32_t large = 0) {
  BufferPoolOptions o;
  o.count = 1024;
  o.large_count = large;
  o.hugepages = false;
  return BufferPool::create(o);
}

uint32_t send_frames(PipePeer& peer, const std::vector<Bytes>& frames) {
  std::vector<const uint8_t*> ptrs;
  std::vector<uint16_t> lens;
  for (const Bytes& f : frames) {
    ptrs.push_back(f.data());
    lens.push_back(uint16_t(f.size()));
  }
  return peer.send_copy(ptrs.data(), lens.data(), uint32_t(frames.size()));
}

TEST(Pipe, SendRecvBothDirections) {
  auto pool = small_pool();
  auto pair = make_pipe(pool, 64);
  EXPECT_STREQ(pair.port->kind(), "pipe");
  EXPECT_EQ(pair.port->poll_fd(), -1);
  std::vector<Bytes> frames;
  for (int i = 0; i < 5; ++i) frames.push_back(make_frame(testutil::host_mac(1), testutil::host_mac(2), uint16_t(60 + i), -1, kEtherTypeIpv4, 0, uint8_t(i)));
  ASSERT_EQ(send_frames(*pair.peer, frames), 5u);

  Pkt rx[16];
  ASSERT_EQ(pair.port->rx_burst(rx, 16), 5);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(rx[i].off, pool->headroom());
    EXPECT_EQ(rx[i].len, 60 + i);
    EXPECT_EQ(Bytes(pool->frame(rx[i]), pool->frame(rx[i]) + rx[i].len), frames[i]) << i;
  }
  EXPECT_EQ(pair.port->rx_burst(rx, 16), 0);

  // The engine side hands the same buffers back out (zero copy).
  ASSERT_EQ(pair.port->tx_burst(rx, 5), 5);
  Pkt back[16];
  ASSERT_EQ(pair.peer->recv(back, 16), 5u);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(back[i].buf, rx[i].buf);
    EXPECT_EQ(Bytes(pool->frame(back[i]), pool->frame(back[i]) + back[i].len), frames[i]);
    pair.peer->cache().free(back[i].buf);
  }
  EXPECT_EQ(pair.peer->recv(back, 16), 0u);
  pair.peer->cache().flush();
  EXPECT_EQ(pool->available(), pool->count());
}

// An empty frame may come with a null pointer (an empty vector's data()):
// send_copy must not hand it to memcpy (undefined behaviour; UBSan reports it).
TEST(Pipe, EmptyFrameWithNullDataIsSent) {
  auto pool = small_pool();
  auto pair = make_pipe(pool, 8);
  const uint8_t* ptr = nullptr;
  uint16_t len = 0;
  ASSERT_EQ(pair.peer->send_copy(&ptr, &len, 1), 1u);
  Pkt rx[4];
  ASSERT_EQ(pair.port->rx_burst(rx, 4), 1);
  EXPECT_EQ(rx[0].len, 0);
  pair.peer->cache().free(rx[0].buf);
  pair.peer->cache().flush();
  EXPECT_EQ(pool->available(), pool->count());
}

TEST(Pipe, RingFullAcceptsPartially) {
  auto pool = small_pool();
  auto pair = make_pipe(pool, 8);
  std::vector<Bytes> frames(12, make_frame(kMacBroadcast, testutil::host_mac(1), 64));
  EXPECT_EQ(send_frames(*pair.peer, frames), 8u);
  EXPECT_EQ(send_frames(*pair.peer, frames), 0u);
  Pkt rx[16];
  ASSERT_EQ(pair.port->rx_burst(rx, 16), 8);
  // tx side: only 8 fit towards the peer; the rest stay the caller's.
  Pkt extra[4];
  BufferCache mine(pool);
  for (auto& p : extra) {
    ASSERT_TRUE(mine.alloc(&p.buf));
    p.off = pool->headroom();
    p.len = 60;
  }
  ASSERT_EQ(pair.port->tx_burst(rx, 8), 8);
  EXPECT_EQ(pair.port->tx_burst(extra, 4), 0);
  for (auto& p : extra) mine.free(p.buf);
  mine.flush();
  Pkt back[16];
  uint32_t n = pair.peer->recv(back, 16);
  EXPECT_EQ(n, 8u);
  for (uint32_t i = 0; i < n; ++i) pair.peer->cache().free(back[i].buf);
  pair.peer->cache().flush();
  EXPECT_EQ(pool->available(), pool->count());
}

TEST(Pipe, OversizeFrameStopsSendCopy) {
  auto pool = small_pool();
  auto pair = make_pipe(pool, 64);
  std::vector<Bytes> frames = {make_frame(kMacBroadcast, testutil::host_mac(1), 64),
                               Bytes(pool->max_frame() + 1, 0xAB),
                               make_frame(kMacBroadcast, testutil::host_mac(1), 64)};
  EXPECT_EQ(send_frames(*pair.peer, frames), 1u);
  Bytes biggest(pool->max_frame(), 0xCD);
  EXPECT_EQ(send_frames(*pair.peer, {biggest}), 1u);
  Pkt rx[4];
  ASSERT_EQ(pair.port->rx_burst(rx, 4), 2);
  EXPECT_EQ(rx[1].len, pool->max_frame());
  for (int i = 0; i < 2; ++i) pair.peer->cache().free(rx[i].buf);
}

TEST(Pipe, SendAfterPortDestroyedReturnsZero) {
  auto pool = small_pool();
  auto pair = make_pipe(pool, 64);
  EXPECT_FALSE(pair.peer->port_gone());
  pair.port.reset();
  EXPECT_TRUE(pair.peer->port_gone());
  std::vector<Bytes> frames(3, make_frame(kMacBroadcast, testutil::host_mac(1), 64));
  EXPECT_EQ(send_frames(*pair.peer, frames), 0u);
  Pkt p;
  ASSERT_TRUE(pair.peer->cache().alloc(&p.buf));
  p.off = pool->headroom();
  p.len = 64;
  EXPECT_EQ(pair.peer->send(&p, 1), 0u);
  pair.peer->cache().free(p.buf);
  pair.peer.reset();
  EXPECT_EQ(pool->available(), pool->count()) << "refused sends keep no buffer";
}

TEST(Pipe, DetachReturnsUnreadFramesAndRefusesMore) {
  auto pool = small_pool();
  auto pair = make_pipe(pool, 64);
  std::vector<Bytes> frames(10, make_frame(kMacBroadcast, testutil::host_mac(1), 64));
  ASSERT_EQ(send_frames(*pair.peer, frames), 10u);
  pair.peer->cache().flush();
  EXPECT_EQ(pool->available(), pool->count() - 10);
  pair.port->detach();
  EXPECT_TRUE(pair.peer->port_gone());
  EXPECT_EQ(pool->available(), pool->count()) << "detach gives back what the engine never read";
  EXPECT_EQ(send_frames(*pair.peer, frames), 0u);
  pair.port.reset();
  pair.peer.reset();
  EXPECT_EQ(pool->available(), pool->count());
}

TEST(Pipe, PeerDestructionFreesQueuedFrames) {
  auto pool = small_pool();
  auto pair = make_pipe(pool, 64);
  BufferCache engine_side(pool);
  Pkt tx[20];
  for (auto& p : tx) {
    ASSERT_TRUE(engine_side.alloc(&p.buf));
    p.off = pool->headroom();
    p.len = 64;
  }
  ASSERT_EQ(pair.port->tx_burst(tx, 20), 20);
  engine_side.flush();
  EXPECT_EQ(pool->available(), pool->count() - 20);
  pair.peer.reset();  // never received: the destructor frees them
  EXPECT_EQ(pool->available(), pool->count());
  pair.port->detach();
  pair.port.reset();
  EXPECT_EQ(pool->available(), pool->count());
}

// The peer goes away first (e.g. the addon object is released) while the
// port stays attached: the engine keeps transmitting into to_peer, which
// nobody drains any more. Once the port is detached and destroyed too, those
// buffers must be back in the pool.
TEST(Pipe, PeerDestroyedBeforePortLeaksNoBuffers) {
  auto pool = small_pool();
  auto pair = make_pipe(pool, 64);
  pair.peer.reset();
  BufferCache engine_side(pool);
  Pkt tx[20];
  for (auto& p : tx) {
    ASSERT_TRUE(engine_side.alloc(&p.buf));
    p.off = pool->headroom();
    p.len = 64;
  }
  uint16_t accepted = pair.port->tx_burst(tx, 20);
  for (uint16_t i = accepted; i < 20; ++i) engine_side.free(tx[i].buf);
  engine_side.flush();
  pair.port->detach();
  pair.port.reset();  // last owner of the shared rings
  EXPECT_EQ(pool->available(), pool->count())
      << accepted << " frames transmitted after the peer was destroyed were never freed";
}

TEST(Pipe, LinkStateFollowsPeer) {
  auto pool = small_pool();
  auto pair = make_pipe(pool, 8);
  EXPECT_EQ(pair.port->link_state(), LinkState::kUp);
  pair.peer->set_link(false);
  EXPECT_EQ(pair.port->link_state(), LinkState::kDown);
  pair.peer->set_link(true);
  EXPECT_EQ(pair.port->link_state(), LinkState::kUp);
}

TEST(Pipe, SendWakesSleepingEngine) {
  auto pool = small_pool();
  auto pair = make_pipe(pool, 8);
  Waker w;
  w.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  ASSERT_GE(w.fd, 0);
  pair.port->attach(&w);
  auto readable = [&] {
    pollfd pfd{w.fd, POLLIN, 0};
    return poll(&pfd, 1, 0) == 1;
  };
  Bytes f = make_frame(kMacBroadcast, testutil::host_mac(1), 64);
  // Not sleeping: no wake-up write.
  ASSERT_EQ(send_frames(*pair.peer, {f}), 1u);
  EXPECT_FALSE(readable());
  // Sleeping: the send writes the eventfd.
  w.sleeping.store(true);
  ASSERT_EQ(send_frames(*pair.peer, {f}), 1u);
  EXPECT_TRUE(readable());
  pair.port->detach();
  close(w.fd);
  pair.peer.reset();
  pair.port.reset();
  EXPECT_EQ(pool->available(), pool->count());
}

TEST(Pipe, OffloadStateCrossesBothWays) {
  auto pool = small_pool(4);
  PipeOptions po;
  po.tx_offloads = kOffCsum;
  po.tx_max_frame = 9014;
  po.tx_large_buffers = false;
  auto pair = make_pipe(pool, 16, po);
  EXPECT_EQ(pair.port->tx_offloads(), uint32_t(kOffCsum));
  EXPECT_EQ(pair.port->tx_max_frame(), 9014u);
  EXPECT_FALSE(pair.port->tx_large_buffers());
  auto dflt = make_pipe(pool, 4);
  EXPECT_EQ(dflt.port->tx_offloads(), uint32_t(kOffAll)) << "a pipe takes everything by default";
  EXPECT_TRUE(dflt.port->tx_large_buffers());

  // A 30,000-byte super-frame goes into a large buffer, a 100-byte one into a
  // regular buffer; both arrive with the flag and their state.
  Bytes big(30000, 0xAB), small(100, 0xCD);
  OffloadMeta m;
  m.flags = OffloadMeta::kNeedsCsum;
  m.gso_type = OffloadMeta::kGsoTcpv4;
  m.gso_size = 1448;
  m.csum_start = 34;
  m.csum_offset = 16;
  m.hdr_len = 66;
  ASSERT_TRUE(pair.peer->send_meta(big.data(), uint32_t(big.size()), m));
  m.gso_type = OffloadMeta::kGsoNone;
  ASSERT_TRUE(pair.peer->send_meta(small.data(), uint32_t(small.size()), m));
  EXPECT_FALSE(pair.peer->send_meta(big.data(), 70000, m)) << "longer than a descriptor can say";
  Pkt rx[4];
  ASSERT_EQ(pair.port->rx_burst(rx, 4), 2);
  ASSERT_TRUE(pkt_has_meta(rx[0]));
  EXPECT_TRUE(pool->is_large(rx[0].buf));
  EXPECT_EQ(rx[0].len, 30000);
  EXPECT_EQ(pkt_off(rx[0]), pool->headroom());
  EXPECT_EQ(pool->meta(rx[0].buf).gso_size, 1448);
  EXPECT_EQ(pool->meta(rx[0].buf).gso_kind(), OffloadMeta::kGsoTcpv4);
  EXPECT_EQ(Bytes(pool->frame(rx[0]), pool->frame(rx[0]) + rx[0].len), big);
  ASSERT_TRUE(pkt_has_meta(rx[1]));
  EXPECT_FALSE(pool->is_large(rx[1].buf));
  EXPECT_EQ(pool->meta(rx[1].buf).csum_start, 34);
  EXPECT_FALSE(pool->meta(rx[1].buf).gso());

  // Back out to the peer: the flag and the state come along.
  ASSERT_EQ(pair.port->tx_burst(rx, 2), 2);
  Pkt back[4];
  ASSERT_EQ(pair.peer->recv(back, 4), 2u);
  EXPECT_TRUE(pkt_has_meta(back[0]));
  EXPECT_EQ(pool->meta(back[0].buf).gso_size, 1448);
  pair.peer->cache().free_bulk(std::vector<uint32_t>{back[0].buf, back[1].buf}.data(), 2);
  pair.peer->cache().flush();
  EXPECT_EQ(pool->large_available(), 4u);
  EXPECT_EQ(pool->available(), pool->count());
}

TEST(Pipe, LargeBuffersLeftInRingsGoBackToTheirList) {
  auto pool = small_pool(2);
  {
    auto pair = make_pipe(pool, 8);
    Bytes big(5000, 1);
    OffloadMeta m;
    ASSERT_TRUE(pair.peer->send_meta(big.data(), 5000, m));
    ASSERT_TRUE(pair.peer->send_meta(big.data(), 5000, m));
    pair.peer->cache().flush();
    EXPECT_EQ(pool->large_available(), 0u);
  }  // both ends gone with the frames still in the ring
  EXPECT_EQ(pool->large_available(), 2u);
  EXPECT_EQ(pool->available(), pool->count());
}

}  // namespace
}  // namespace vpc
