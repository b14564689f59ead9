// vhost-user ports in the engine: two fake guests (ports/vhost_user_fake.h)
// on one switch, the engine stepped with run_once on the test thread.
#include <gtest/gtest.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/test_harness.h"
#include "ports/vhost_user_fake.h"
#include "proto/inet.h"

namespace vpc {
namespace {

using namespace vhost_fake;
using testutil::host_mac;

// A TCPv4 frame with `payload` bytes after a 20-byte TCP header, from A to B.
Bytes tcp4_frame(uint32_t payload) {
  Bytes f(14 + 20 + 20 + payload);
  mac_store(f.data(), host_mac(2));
  mac_store(f.data() + 6, host_mac(1));
  store_be16(f.data() + 12, kEtherTypeIpv4);
  uint8_t* ip = f.data() + 14;
  ip[0] = 0x45;
  store_be16(ip + 2, uint16_t(20 + 20 + payload));
  ip[6] = 0x40;  // DF
  ip[8] = 64;
  ip[9] = kIpProtoTcp;
  const uint8_t src[4] = {198, 18, 0, 1}, dst[4] = {198, 18, 0, 2};
  std::memcpy(ip + 12, src, 4);
  std::memcpy(ip + 16, dst, 4);
  uint8_t* tcp = ip + 20;
  store_be16(tcp, 40000);
  store_be16(tcp + 2, 5201);
  tcp[12] = 5 << 4;
  tcp[13] = 0x18;  // PSH ACK
  for (uint32_t i = 0; i < payload; ++i) tcp[20 + i] = uint8_t(i * 13 + 1);
  return f;
}

// Guest g transmits f as a TSO super-frame (tso4_meta: gso_size 1448, a
// partial TCP checksum) from descriptor d: one descriptor holding the
// virtio-net header and the frame, far from the rings.
void send_tso(FakeFrontend& g, const Bytes& f, uint16_t d = 0) {
  const uint64_t at = (3 << 20) + uint64_t(d) * 65536;
  std::memset(g.host(at), 0, 12);
  offload_to_vnet(tso4_meta(), g.host(at));
  std::memcpy(g.host(at + 12), f.data(), f.size());
  g.desc(1)[d] = VringDesc{g.gpa(at), uint32_t(12 + f.size()), 0, 0};
  g.publish(1, d);
}

// What guest g's receive queue 0 got in `nbufs` merged buffers from used
// entry `from` on: the frame, and in *m the offload state of its header.
Bytes received_merged(FakeFrontend& g, uint16_t from, uint16_t nbufs, OffloadMeta* m) {
  Bytes got;
  for (uint16_t k = 0; k < nbufs; ++k) {
    uint32_t id, len;
    g.used_elem(0, uint16_t(from + k), &id, &len);
    const uint8_t* p = g.host(g.buf(0, id));
    if (k == 0) {
      EXPECT_TRUE(offload_from_vnet(p, m));
      EXPECT_EQ(p[10] | (p[11] << 8), nbufs) << "num_buffers";
      p += 12;
      len -= 12;
    }
    got.insert(got.end(), p, p + len);
  }
  return got;
}

class VhostEngine : public ::testing::Test {
 protected:
  void SetUp() override {
    EngineOptions o;
    o.pool.count = 4096;
    o.pool.large_count = 32;
    o.pool.hugepages = false;
    h.make_engine(o);
    SwitchConfig sc;
    sc.vni = 7;
    sw = h.try_create_switch(sc).id;
    dir = "/tmp/vpc-vhe-" + std::to_string(getpid());
    mkdir(dir.c_str(), 0700);
  }
  void TearDown() override {
    h.destroy_all();
    rmdir(dir.c_str());
  }
  // Opens a port, sets it up from a fake guest (the test pumps the port),
  // then hands it to the engine with the L3 MTU `mtu`.
  PortId add(const std::string& name, uint64_t features, std::unique_ptr<FakeFrontend>* fe,
             std::shared_ptr<PortStatus>* st, uint32_t mtu = 1500) {
    *st = std::make_shared<PortStatus>();
    VhostUserOptions vo;
    vo.socket = dir + "/" + name;
    auto port = VhostUserPort::open(vo, h.engine().pool(), *st);
    *fe = std::make_unique<FakeFrontend>(vo.socket);
    (*fe)->setup(*port, features);
    auto c = testutil::EngineHarness::cmd(CmdOp::kCreatePort);
    c->new_port = std::move(port);
    c->untagged = sw;
    c->port_cfg.mtu = mtu;
    Result r = h.run(std::move(c));
    EXPECT_TRUE(r.ok()) << r.message;
    return r.id;
  }
  // A guest on port "g.sock" and a pipe port `*sender`, frames to host_mac(1)
  // going to the guest (a static entry).
  PortId guest_and_sender(uint64_t features, std::unique_ptr<FakeFrontend>* fe, std::shared_ptr<PortStatus>* st,
                          PortId* sender) {
    const PortId v = add("g.sock", features, fe, st);
    *sender = h.try_add_port(sw).id;
    EXPECT_TRUE(h.add_static(sw, v, host_mac(1)).ok());
    return v;
  }
  uint64_t ctr(PortId p, PortCounter k) { return cnt_read(h.engine().port_counters(p).c[size_t(k)]); }

  testutil::EngineHarness h;
  SwitchId sw = 0;
  std::string dir;
};

const uint64_t kFeatures = bit(kVersion1) | bit(kNetMrgRxbuf) | bit(kRingEventIdx) | bit(kRingIndirect) |
                           bit(kNetCsum) | bit(kNetGuestCsum) | bit(kNetHostTso4) | bit(kNetGuestTso4) |
                           bit(kNetHostTso6) | bit(kNetGuestTso6);

// A guest's TSO super-frame reaches a guest that negotiated GUEST_TSO4 as
// one frame with its virtio-net header, in merged buffers; nothing is
// segmented on the way.
TEST_F(VhostEngine, TsoFrameReachesAnotherGuestWhole) {
  std::unique_ptr<FakeFrontend> ga, gb;
  std::shared_ptr<PortStatus> sa, sb;
  PortId a = add("a.sock", kFeatures, &ga, &sa), b = add("b.sock", kFeatures, &gb, &sb);
  gb->post_rx(32, 4096);
  const Bytes f = tcp4_frame(20000);
  send_tso(*ga, f);
  for (int i = 0; i < 20 && gb->used_idx(0) == 0; ++i) h.engine().run_once();
  ASSERT_EQ(ctr(a, PortCounter::rx_packets), 1u) << sa->error();
  ASSERT_EQ(ctr(b, PortCounter::tx_packets), 1u) << sb->error();
  EXPECT_EQ(ctr(b, PortCounter::tx_gso_frames), 0u) << "not segmented";
  const uint16_t nbufs = uint16_t((12 + f.size() + 4095) / 4096);
  ASSERT_EQ(gb->used_idx(0), nbufs);
  OffloadMeta seen;
  EXPECT_EQ(received_merged(*gb, 0, nbufs, &seen), f);
  EXPECT_EQ(seen.gso_type, OffloadMeta::kGsoTcpv4);
  EXPECT_EQ(seen.gso_size, 1448);
  EXPECT_TRUE(seen.needs_csum());
  EXPECT_EQ(seen.csum_start, 34);
  EXPECT_EQ(seen.csum_offset, 16);
}

// The same super-frame to a guest that did not negotiate GUEST_TSO4 or
// GUEST_CSUM: the engine cuts it into complete segments first.
TEST_F(VhostEngine, TsoFrameIsSegmentedForAGuestWithoutTso) {
  std::unique_ptr<FakeFrontend> ga, gb;
  std::shared_ptr<PortStatus> sa, sb;
  PortId a = add("a.sock", kFeatures, &ga, &sa);
  PortId b = add("b.sock", bit(kVersion1) | bit(kNetMrgRxbuf) | bit(kRingEventIdx), &gb, &sb);
  gb->post_rx(64, 2048);
  const Bytes f = tcp4_frame(5000);
  send_tso(*ga, f);
  for (int i = 0; i < 20 && gb->used_idx(0) < 4; ++i) h.engine().run_once();
  EXPECT_EQ(ctr(a, PortCounter::rx_packets), 1u);
  EXPECT_EQ(ctr(b, PortCounter::tx_gso_frames), 1u);
  EXPECT_EQ(ctr(b, PortCounter::tx_packets), 4u) << "5000 bytes in segments of 1448";
  ASSERT_EQ(gb->used_idx(0), 4);
  for (uint16_t k = 0; k < 4; ++k) {
    uint32_t id, len;
    gb->used_elem(0, k, &id, &len);
    const uint8_t* p = gb->host(gb->buf(0, id));
    EXPECT_EQ(p[0], 0) << "no offload flags for this guest";
    EXPECT_EQ(p[1], 0);
    EXPECT_LE(len - 12, 14u + 20 + 20 + 1448);
  }
}

// A port whose MTU (1000) is below the sender's (1500): a guest's TSO
// super-frame (gso_size 1448) reaches the guest behind it in segments that
// fit that MTU, as at every other port (docs/design/offload.md, "Egress
// adaptation"). A guest that takes TSO gets it whole, as a tap's or an
// afpacket port's guest does, with gso_size lowered to 960 (IP packets of
// 1000 bytes); one that does not gets complete segments of at most 1014
// bytes. A plain frame over that MTU is dropped (mtu_exceeded) and answered
// with ICMP Fragmentation Needed carrying it.
TEST_F(VhostEngine, ASuperFrameForAPortWithASmallerMtuIsCutToThatMtu) {
  std::unique_ptr<FakeFrontend> ga, gb, gc;
  std::shared_ptr<PortStatus> sa, sb, sc;
  const PortId a = add("a.sock", kFeatures, &ga, &sa);
  const PortId b = add("b.sock", kFeatures, &gb, &sb, 1000);
  const PortId c = add("c.sock", bit(kVersion1) | bit(kNetMrgRxbuf) | bit(kRingEventIdx), &gc, &sc, 1000);
  ASSERT_TRUE(h.add_static(sw, b, host_mac(2)).ok());
  ASSERT_TRUE(h.add_static(sw, c, host_mac(3)).ok());
  ga->post_rx(8, 2048);  // for the ICMP answer
  gb->post_rx(32, 4096);
  gc->post_rx(64, 2048);
  const Bytes to_b = tcp4_frame(20000);
  Bytes to_c = to_b;
  mac_store(to_c.data(), host_mac(3));
  send_tso(*ga, to_b, 0);
  send_tso(*ga, to_c, 1);
  const uint16_t segments = (20000 + 959) / 960;  // 21
  for (int i = 0; i < 50 && (gb->used_idx(0) == 0 || gc->used_idx(0) < segments); ++i) h.engine().run_once();
  ASSERT_EQ(ctr(a, PortCounter::rx_packets), 2u) << sa->error();

  // b takes TSO: one super-frame, its segment size cut to the port's MTU.
  const uint16_t nbufs = uint16_t((12 + to_b.size() + 4095) / 4096);
  ASSERT_EQ(gb->used_idx(0), nbufs) << sb->error();
  OffloadMeta seen;
  EXPECT_EQ(received_merged(*gb, 0, nbufs, &seen), to_b);
  EXPECT_EQ(seen.gso_type, OffloadMeta::kGsoTcpv4);
  EXPECT_EQ(seen.gso_size, 1000 - 20 - 20) << "each segment's IP packet exactly the port's MTU";
  EXPECT_EQ(ctr(b, PortCounter::tx_packets), 1u);
  EXPECT_EQ(ctr(b, PortCounter::tx_drops), 0u);

  // c does not: segmented by the engine to the port's MTU.
  ASSERT_EQ(gc->used_idx(0), segments) << sc->error();
  EXPECT_EQ(ctr(c, PortCounter::tx_gso_segments), segments);
  uint32_t payload = 0;
  for (uint16_t k = 0; k < segments; ++k) {
    uint32_t id, len;
    gc->used_elem(0, k, &id, &len);
    const uint8_t* p = gc->host(gc->buf(0, id));
    EXPECT_EQ(p[1], OffloadMeta::kGsoNone) << "segment " << k;
    EXPECT_LE(len - 12, 14u + 1000) << "segment " << k;
    payload += len - 12 - 54;
  }
  EXPECT_EQ(payload, 20000u);

  // A plain 1514-byte frame (DF) to b: over its MTU, dropped and answered.
  ga->send(tcp4_frame(1460));
  for (int i = 0; i < 50 && ga->used_idx(0) == 0; ++i) h.engine().run_once();
  EXPECT_EQ(h.pdrop(b, Drop::mtu_exceeded), 1u);
  EXPECT_EQ(gb->used_idx(0), nbufs) << "nothing more reached b";
  ASSERT_EQ(ga->used_idx(0), 1) << "the sender got an answer";
  uint32_t id, len;
  ga->used_elem(0, 0, &id, &len);
  const uint8_t* icmp = ga->host(ga->buf(0, id)) + 12 + 14 + 20;
  EXPECT_EQ(icmp[0], 3) << "destination unreachable";
  EXPECT_EQ(icmp[1], 4) << "fragmentation needed";
  EXPECT_EQ(load_be16(icmp + 6), 1000) << "the port's MTU";
}

// A front end that sends the header of a message and then nothing (hostile,
// or stopped in a debugger) must cost the engine nothing: frames between
// two pipe ports keep crossing in every iteration while the port holds the
// incomplete message, and the message is handled when the rest comes. A
// port that waited for the rest would hold the engine (here the test
// thread) until it gave up and dropped the connection.
TEST_F(VhostEngine, AFrontEndStalledMidMessageDoesNotHoldTheEngine) {
  std::unique_ptr<FakeFrontend> g;
  std::shared_ptr<PortStatus> st;
  add("g.sock", kFeatures, &g, &st);
  const PortId p1 = h.try_add_port(sw).id, p2 = h.try_add_port(sw).id;
  ASSERT_TRUE(h.add_static(sw, p2, host_mac(2)).ok());
  const uint64_t handled = st->vhost->messages.load();
  int call = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  const uint64_t queue0 = 0;  // and an fd
  const std::vector<uint8_t> msg = vu_message(kVuSetVringCall, kVuVersion | kVuFlagNeedReply, &queue0, 8);
  ASSERT_EQ(g->send_raw(msg.data(), 12, {call}), 12);
  auto step = [&] {
    EXPECT_EQ(h.send_frames(p1, {testutil::make_frame(host_mac(2), host_mac(1), 64)}), 1u);
    h.engine().run_once();
  };
  ASSERT_TRUE(g->wait_taken(step)) << "the port took the header";
  // The header is with the port, the payload is not coming: every further
  // iteration still forwards.
  constexpr int kIterations = 200;
  for (int i = 0; i < kIterations; ++i) step();
  const uint64_t sent = h.pc(p1, PortCounter::rx_packets);
  EXPECT_GE(sent, uint64_t(kIterations));
  EXPECT_EQ(h.recv(p2).size(), sent) << "every frame crossed while the message was incomplete";
  EXPECT_TRUE(st->vhost->connected.load()) << st->error();
  EXPECT_EQ(st->vhost->disconnects.load(), 0u);
  EXPECT_EQ(st->vhost->messages.load(), handled);
  // The rest arrives: the message is handled whole.
  ASSERT_EQ(g->send_raw(msg.data() + 12, 8), 8);
  ASSERT_TRUE(g->wait_reply(step));
  std::vector<uint8_t> ack;
  ASSERT_TRUE(g->read_reply(kVuSetVringCall, &ack));
  ASSERT_EQ(ack.size(), 8u);
  EXPECT_EQ(ack[0], 0) << st->error();
  EXPECT_EQ(st->vhost->messages.load(), handled + 1);
  close(call);
}

// Server mode across a restart of the switch's side: the port is deleted
// (its socket goes) and created again on the same path, once cleanly and
// once over the socket file a killed switch leaves behind, while the front
// end reconnects as QEMU's client chardev does. Frames cross both ways
// before and after each time.
TEST_F(VhostEngine, ServerPortDeletedAndCreatedAgainServesTheReconnectingFrontEnd) {
  std::unique_ptr<FakeFrontend> g;
  std::shared_ptr<PortStatus> st;
  PortId v = add("r.sock", kFeatures, &g, &st);
  const std::string path = dir + "/r.sock";
  const PortId p = h.try_add_port(sw).id;
  g->post_rx(64, 2048);
  uint32_t to_guest = 0;
  // One frame each way: guest (host_mac(1)) -> pipe, pipe -> guest.
  auto traffic = [&](PortId vp, const char* when) {
    SCOPED_TRACE(when);
    const uint64_t pipe_in = h.pc(p, PortCounter::tx_packets);
    g->send(testutil::make_frame(host_mac(2), host_mac(1), 64));
    std::vector<Bytes> got;
    for (int i = 0; i < 100 && got.empty(); ++i) {
      h.engine().run_once();
      auto r = h.recv(p);
      got.insert(got.end(), r.begin(), r.end());
    }
    ASSERT_EQ(got.size(), 1u) << "guest to pipe: " << st->error();
    EXPECT_EQ(h.pc(p, PortCounter::tx_packets), pipe_in + 1);
    EXPECT_EQ(h.send_frames(p, {testutil::make_frame(host_mac(1), host_mac(2), 64)}), 1u);
    ++to_guest;
    for (int i = 0; i < 100 && g->used_idx(0) != to_guest; ++i) h.engine().run_once();
    EXPECT_EQ(g->used_idx(0), to_guest) << "pipe to guest: " << st->error();
    EXPECT_EQ(ctr(vp, PortCounter::tx_packets), 1u);
  };
  traffic(v, "first port");
  // The switch side goes and comes back; the front end reconnects.
  auto recreate = [&](const char* when) {
    SCOPED_TRACE(when);
    const size_t seen = h.events().size();
    st = std::make_shared<PortStatus>();
    VhostUserOptions vo;
    vo.socket = path;
    std::unique_ptr<VhostUserPort> port;
    try {
      port = VhostUserPort::open(vo, h.engine().pool(), st);
    } catch (const PortError& e) {
      ADD_FAILURE() << e.what();
      return PortId(0);
    }
    auto c = testutil::EngineHarness::cmd(CmdOp::kCreatePort);
    c->new_port = std::move(port);
    c->untagged = sw;
    Result r = h.run(std::move(c));
    EXPECT_TRUE(r.ok()) << r.message;
    EXPECT_TRUE(g->reconnect(path)) << strerror(errno);
    g->setup([&] { h.engine().run_once(); }, kFeatures, 2, /*resume=*/true);
    EXPECT_EQ(st->vhost->connects.load(), 1u);
    // The engine reads the link with its housekeeping: until then frames for
    // the port count as link_down.
    auto up = [&] {
      const std::vector<Event>& ev = h.events();
      for (size_t i = seen; i < ev.size(); ++i)
        if (ev[i].type == EventType::kLink && ev[i].port == r.id && ev[i].up) return true;
      return false;
    };
    for (int i = 0; i < 5000 && !up(); ++i) {
      h.engine().run_once();
      usleep(1000);
    }
    EXPECT_TRUE(up()) << st->error();
    return r.id;
  };
  ASSERT_TRUE(h.delete_port(v).ok());
  struct stat sb;
  EXPECT_NE(lstat(path.c_str(), &sb), 0) << "the deleted port removed its socket";
  EXPECT_FALSE(g->reconnect(path, 1)) << "nothing listens while the port is gone";
  v = recreate("created again after a delete");
  traffic(v, "second port");
  // A killed switch leaves its socket file: the next port replaces it.
  ASSERT_TRUE(h.delete_port(v).ok());
  {
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::strncpy(sa.sun_path, path.c_str(), sizeof sa.sun_path - 1);
    ASSERT_EQ(bind(s, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
    ASSERT_EQ(listen(s, 1), 0);
    close(s);  // the file stays, nobody answers
    ASSERT_EQ(lstat(path.c_str(), &sb), 0);
  }
  EXPECT_FALSE(g->reconnect(path, 1)) << "a stale socket refuses connections";
  v = recreate("created again over a stale socket file");
  traffic(v, "third port");
  ASSERT_TRUE(h.delete_port(v).ok());
}


// A frame waiting in a vhost-user port's backlog (the guest's receive queue
// was full) is neither transmitted nor dropped yet: the port's tx_packets
// counts it when it reaches the guest's ring, and one the backlog loses is
// the port's tx drop (what vpcctl stats and vpc_port_drops_total show), not
// a transmitted frame. A stalled guest's (guest_stalled on its queue) are
// tx_ring_full, as the frames a full backlog refuses; those still waiting
// when the guest goes (not_ready) are link_down. Transmit-time drops: on the
// port only, not on the switch.
TEST_F(VhostEngine, FramesTheBacklogLosesAreThePortsTxDropsNotItsTransmissions) {
  std::unique_ptr<FakeFrontend> g;
  std::shared_ptr<PortStatus> st;
  PortId p;
  const PortId v = guest_and_sender(kFeatures, &g, &st, &p);
  const VirtqCounters& q0 = st->vhost->q[0];
  auto qdrop = [&](VirtqDrop d) { return cnt_read(q0.drops[size_t(d)]); };
  auto to_guest = [&](uint32_t n) {
    std::vector<Bytes> f(n, testutil::make_frame(host_mac(1), host_mac(2), 100));
    EXPECT_EQ(h.send_frames(p, f), n);
    h.engine().run_once();
  };
  to_guest(4);  // no receive buffer yet: all four wait
  ASSERT_EQ(cnt_read(q0.c[size_t(VirtqCounter::guest_full)]), 4u);
  EXPECT_EQ(ctr(v, PortCounter::tx_packets), 0u) << "held, not transmitted yet";
  EXPECT_EQ(ctr(v, PortCounter::tx_drops), 0u) << "held, not dropped";
  g->post_rx(1, 2048);
  for (int i = 0; i < 100 && g->used_idx(0) == 0; ++i) h.engine().run_once();
  ASSERT_EQ(g->used_idx(0), 1);
  EXPECT_EQ(ctr(v, PortCounter::tx_packets), 1u) << "the one that reached the guest";
  EXPECT_EQ(ctr(v, PortCounter::tx_bytes), 100u);

  // The guest takes no more: after a second the three left are lost.
  for (int i = 0; i < 1000 && qdrop(VirtqDrop::guest_stalled) == 0; ++i) {
    h.engine().run_once();
    usleep(10'000);
  }
  ASSERT_EQ(qdrop(VirtqDrop::guest_stalled), 3u) << st->error();
  EXPECT_EQ(ctr(v, PortCounter::tx_packets), 1u) << "a lost frame was never transmitted";
  EXPECT_EQ(ctr(v, PortCounter::tx_bytes), 100u);
  EXPECT_EQ(ctr(v, PortCounter::tx_drops), 3u);
  EXPECT_EQ(h.pdrop(v, Drop::tx_ring_full), 3u);
  EXPECT_EQ(h.sdrop(sw, Drop::tx_ring_full), 0u);

  // Two more wait; the guest goes.
  to_guest(2);
  ASSERT_EQ(cnt_read(q0.c[size_t(VirtqCounter::guest_full)]), 6u);
  g->hang_up();
  for (int i = 0; i < 1000 && st->vhost->connected.load(); ++i) {
    h.engine().run_once();
    usleep(1000);
  }
  ASSERT_FALSE(st->vhost->connected.load());
  EXPECT_EQ(qdrop(VirtqDrop::not_ready), 2u);
  EXPECT_EQ(h.pdrop(v, Drop::link_down), 2u);
  EXPECT_EQ(ctr(v, PortCounter::tx_drops), 5u);
  EXPECT_EQ(ctr(v, PortCounter::tx_packets) + ctr(v, PortCounter::tx_drops), 6u) << "every frame for the guest, once";
}

// Frames still waiting when the port is deleted are its port_deleted drops,
// as the frames staged for it are.
TEST_F(VhostEngine, FramesWaitingWhenThePortIsDeletedAreItsPortDeletedDrops) {
  std::unique_ptr<FakeFrontend> g;
  std::shared_ptr<PortStatus> st;
  PortId p;
  const PortId v = guest_and_sender(kFeatures, &g, &st, &p);
  std::vector<Bytes> f(3, testutil::make_frame(host_mac(1), host_mac(2), 100));
  ASSERT_EQ(h.send_frames(p, f), 3u);
  h.engine().run_once();
  ASSERT_EQ(cnt_read(st->vhost->q[0].c[size_t(VirtqCounter::guest_full)]), 3u);
  const uint32_t free0 = h.engine().pool()->available();
  ASSERT_TRUE(h.delete_port(v).ok());
  EXPECT_EQ(h.pdrop(v, Drop::port_deleted), 3u);
  EXPECT_EQ(ctr(v, PortCounter::tx_drops), 3u);
  EXPECT_EQ(ctr(v, PortCounter::tx_packets), 0u);
  EXPECT_GE(h.engine().pool()->available(), free0 + 3) << "their buffers went back";
}


// A frame the guest's receive queue drops on the spot is the port's tx drop
// too, by the port's reason: one longer than a guest without mergeable
// buffers has room for (guest_buffer_small) is egress_too_big, and only the
// frame that reached the guest is in tx_packets.
TEST_F(VhostEngine, AFrameTheGuestHasNoRoomForIsThePortsTxDrop) {
  std::unique_ptr<FakeFrontend> g;
  std::shared_ptr<PortStatus> st;
  PortId p;
  const PortId v = guest_and_sender(bit(kVersion1) | bit(kRingEventIdx), &g, &st, &p);
  g->post_rx(4, 128);
  ASSERT_EQ(h.send_frames(p, {testutil::make_frame(host_mac(1), host_mac(2), 200),
                              testutil::make_frame(host_mac(1), host_mac(2), 100)}),
            2u);
  for (int i = 0; i < 100 && g->used_idx(0) == 0; ++i) h.engine().run_once();
  ASSERT_EQ(g->used_idx(0), 1) << st->error();
  EXPECT_EQ(cnt_read(st->vhost->q[0].drops[size_t(VirtqDrop::guest_buffer_small)]), 1u);
  EXPECT_EQ(h.pdrop(v, Drop::egress_too_big), 1u);
  EXPECT_EQ(ctr(v, PortCounter::tx_drops), 1u);
  EXPECT_EQ(ctr(v, PortCounter::tx_packets), 1u);
  EXPECT_EQ(ctr(v, PortCounter::tx_bytes), 100u);
}

}  // namespace
}  // namespace vpc
