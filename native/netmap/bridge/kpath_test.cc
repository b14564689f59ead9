// The kernel fast path (bridge/kpath.h, ports/kpath.h) with real interfaces:
// two afpacket ports on veths in a private network namespace, the guests'
// ends driven with raw sockets, the engine stepped on the test thread.
#include <gtest/gtest.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#ifdef VPC_HAVE_KPATH
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <sched.h>
#endif

#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <thread>

#include "core/capture.h"
#include "core/test_harness.h"
#include "ports/kpath.h"
#include "ports/spec.h"
#include "ports/test_netns.h"
#include "proto/ethernet.h"
#include "proto/inet.h"
#include "proto/test_frames.h"

namespace vpc {
namespace {

using testutil::host_mac;

const Mac kA = host_mac(1), kB = host_mac(2);

// A frame of a local experimental ethertype (nothing in the kernel answers
// it), its first payload byte a tag the receiver reports.
std::vector<uint8_t> tagged_frame(Mac dst, Mac src, uint8_t tag) {
  std::vector<uint8_t> f(200, tag);
  mac_store(f.data(), dst);
  mac_store(f.data() + 6, src);
  f[12] = 0x88;
  f[13] = 0xb5;
  return f;
}

// The tags of the frames `fd` gives within `ms`, in order; `rd` reads one
// frame (0 or less: none now).
template <class Read>
std::vector<uint8_t> tags_within(int fd, int ms, Read rd) {
  std::vector<uint8_t> tags;
  auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  for (;;) {
    uint8_t b[2048];
    ssize_t n = rd(b, sizeof b);
    if (n > 14 && b[12] == 0x88 && b[13] == 0xb5) tags.push_back(b[14]);
    if (n > 0) continue;
    if (std::chrono::steady_clock::now() >= end) return tags;
    pollfd p{fd, POLLIN, 0};
    poll(&p, 1, 5);
  }
}

// A raw socket on a guest's end of a veth.
struct Guest {
  int fd = -1;
  explicit Guest(const char* ifname) {
    fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK, htons(ETH_P_ALL));
    sockaddr_ll sll{};
    sll.sll_family = AF_PACKET;
    sll.sll_protocol = htons(ETH_P_ALL);
    sll.sll_ifindex = int(if_nametoindex(ifname));
    bind(fd, reinterpret_cast<sockaddr*>(&sll), sizeof sll);
  }
  ~Guest() { close(fd); }
  void send(Mac dst, Mac src, uint8_t tag) {
    std::vector<uint8_t> f = tagged_frame(dst, src, tag);
    ASSERT_EQ(::send(fd, f.data(), f.size(), 0), ssize_t(f.size()));
  }
  std::vector<uint8_t> recv(int ms = 100) {
    return tags_within(fd, ms, [&](uint8_t* b, size_t len) {
      sockaddr_ll from{};
      socklen_t fl = sizeof from;
      ssize_t n = recvfrom(fd, b, len, 0, reinterpret_cast<sockaddr*>(&from), &fl);
      if (n > 0 && from.sll_pkttype == PACKET_OUTGOING) b[12] = 0;  // our own: not counted
      return n;
    });
  }
};

// A VM as QEMU plugs it in: a tap whose descriptor the "hypervisor" (this
// test) holds; the switch's afpacket port is on the tap's interface.
struct TapVm {
  int fd = -1;
  explicit TapVm(const char* ifname) {
    fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    ifreq ifr{};
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
    std::strncpy(ifr.ifr_name, ifname, IFNAMSIZ - 1);
    EXPECT_EQ(ioctl(fd, TUNSETIFF, &ifr), 0) << strerror(errno);
    EXPECT_EQ(system((std::string("ip link set ") + ifname + " up").c_str()), 0);
  }
  ~TapVm() { close(fd); }
  void send(Mac dst, Mac src, uint8_t tag) {
    std::vector<uint8_t> f = tagged_frame(dst, src, tag);
    ASSERT_EQ(write(fd, f.data(), f.size()), ssize_t(f.size()));
  }
  std::vector<uint8_t> recv(int ms = 100) {
    return tags_within(fd, ms, [&](uint8_t* b, size_t len) { return read(fd, b, len); });
  }
};

// In the test's own namespace: veths kpa/kpa-g and kpb/kpb-g, up, with no
// IPv6 on them (its neighbour discovery and MLD frames would be counted with
// the test's own).
bool make_veths() {
  return system("sysctl -qw net.ipv6.conf.default.disable_ipv6=1 && ip link add kpa type veth peer name kpa-g && "
                "ip link add kpb type veth peer name kpb-g && for i in kpa kpa-g kpb kpb-g; do ip link set $i up; done") == 0;
}

struct Pair {
  std::shared_ptr<PortStatus> sa, sb;
  PortId pa = kNoId, pb = kNoId;
  std::unique_ptr<Guest> ga, gb;
};

class KernelPath : public ::testing::Test {
 protected:
  void SetUp() override {
    EngineOptions o;
    o.pool.count = 4096;
    o.pool.large_count = 16;
    o.pool.hugepages = false;
    h.make_engine(o);
    SwitchConfig sc;
    sc.vni = 5;
    sc.aging_ms = aging_ms_;
    sw = h.try_create_switch(sc).id;
  }
  PortId add(const char* ifname, std::shared_ptr<PortStatus>* st, bool kernel_path = true) {
    PortSpec spec;
    std::string err;
    EXPECT_TRUE(parse_port_spec(std::string("afpacket:") + ifname, &spec, &err)) << err;
    KernelPortOptions ko;
    ko.kernel_path = kernel_path;
    *st = std::make_shared<PortStatus>();
    auto c = testutil::EngineHarness::cmd(CmdOp::kCreatePort);
    c->new_port = open_port(spec, ko, h.engine().pool(), *st);
    c->untagged = sw;
    Result r = h.run(std::move(c));
    EXPECT_TRUE(r.ok()) << r.message;
    return r.id;
  }
  // Runs the engine for `ms` (housekeeping included).
  void pump(int ms = 30) {
    auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    while (std::chrono::steady_clock::now() < end) {
      h.engine().run_once();
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  }
  uint64_t ctr(PortId p, PortCounter k) { return cnt_read(h.engine().port_counters(p).c[size_t(k)]); }
  // Frames the engine itself read from port p.
  uint64_t engine_rx(PortId p) { return ctr(p, PortCounter::rx_packets) - ctr(p, PortCounter::rx_kernel_path); }
  bool start(Pair* p, std::string* skip, bool b_kernel_path);
  // Runs `body` in a namespace of its own with the pair set up (skipped,
  // with the reason, where the kernel path cannot be had).
  void with_pair(bool b_kernel_path, const std::function<void(Pair&, Guest&, Guest&)>& body);

  testutil::EngineHarness h;
  SwitchId sw = 0;
  uint32_t aging_ms_ = 300000;
};

// In the test's own namespace: two veths, an afpacket port on each (the
// second without the kernel path when `b_kernel_path` is false), the guests'
// raw sockets, and -- when both ports have the path -- one frame each way
// through the engine, so the kernel holds both entries. False (with the
// reason in *skip) where the kernel path cannot be had.
bool KernelPath::start(Pair* p, std::string* skip, bool b_kernel_path) {
  if (!make_veths()) {
    *skip = "cannot create veths";
    return false;
  }
  p->pa = add("kpa", &p->sa);
  p->pb = add("kpb", &p->sb, b_kernel_path);
  if (p->sa->kernel_path().rfind("on", 0) != 0) {
    // Where the kernel path cannot be had (not built in, an older kernel, no
    // privilege) the tests skip; programs the verifier refuses are a failure.
    EXPECT_EQ(p->sa->kernel_path().find("verifier"), std::string::npos) << p->sa->kernel_path();
    *skip = "kernel path: " + p->sa->kernel_path();
    return false;
  }
  p->ga = std::make_unique<Guest>("kpa-g");
  p->gb = std::make_unique<Guest>("kpb-g");
  pump(150);  // housekeeping: the ports' interfaces reach the kernel's table
  p->ga->send(kB, kA, 1);  // B unknown: flooded by the engine
  pump();
  p->gb->send(kA, kB, 2);  // known: forwarded by the engine, both entries noted
  pump();
  EXPECT_EQ(p->gb->recv(0), std::vector<uint8_t>{1});
  EXPECT_EQ(p->ga->recv(0), std::vector<uint8_t>{2});
  return true;
}

void KernelPath::with_pair(bool b_kernel_path, const std::function<void(Pair&, Guest&, Guest&)>& body) {
  std::string why;
  std::string skip = in_own_netns([&] {
    Pair p;
    if (start(&p, &why, b_kernel_path)) body(p, *p.ga, *p.gb);
  });
  if (skip.empty()) skip = why;
  if (!skip.empty()) GTEST_SKIP() << skip;
}

std::vector<uint8_t> tags(uint8_t from, uint8_t to) {
  std::vector<uint8_t> v;
  for (uint8_t t = from; t < to; ++t) v.push_back(t);
  return v;
}

// Known unicast between the two ports goes through the kernel once the engine
// has forwarded one frame each way: the engine no longer reads those frames,
// the guest still gets every one of them exactly once, and the ports'
// counters include them after a housekeeping tick.
TEST_F(KernelPath, KnownUnicastBetweenAccessPortsIsSwitchedInTheKernel) {
  with_pair(true, [&](Pair& p, Guest& ga, Guest& gb) {
    for (uint8_t t = 10; t < 20; ++t) ga.send(kB, kA, t);
    EXPECT_EQ(gb.recv(), tags(10, 20));  // nobody ran the engine: the kernel switched them
    pump(150);
    EXPECT_EQ(ctr(p.pa, PortCounter::rx_kernel_path), 10u);
    EXPECT_EQ(ctr(p.pb, PortCounter::tx_kernel_path), 10u);
    EXPECT_EQ(engine_rx(p.pa), 1u);  // the engine saw only the first
    EXPECT_EQ(cnt_read(h.engine().engine_counters().c[size_t(EngineCounter::kernel_path_entries)]), 2u);
  });
}

// Removing entries voids what the kernel holds at once (the switch's
// generation): after a flush, A -> B is unknown again and the engine floods
// it; a port deleted gets nothing from the kernel.
TEST_F(KernelPath, AFlushOrADeletedPortSendsFramesBackToTheEngine) {
  with_pair(true, [&](Pair& p, Guest& ga, Guest& gb) {
    ga.send(kB, kA, 3);
    EXPECT_EQ(gb.recv(), std::vector<uint8_t>{3});
    pump(150);
    EXPECT_EQ(engine_rx(p.pa), 1u);

    auto c = testutil::EngineHarness::cmd(CmdOp::kFlushFdb);
    c->sw = sw;
    c->port = kNoId;
    ASSERT_TRUE(h.run(std::move(c)).ok());
    pump();  // the new generation reaches the kernel
    ga.send(kB, kA, 4);
    pump();
    EXPECT_EQ(gb.recv(), std::vector<uint8_t>{4});
    EXPECT_EQ(engine_rx(p.pa), 2u);  // the engine read it
    EXPECT_EQ(cnt_read(h.engine().switch_counters(sw).c[size_t(SwitchCounter::flooded_unknown)]), 2u);

    // Both entries again, then B's port goes.
    gb.send(kA, kB, 5);
    pump();
    ga.recv(0);
    ga.send(kB, kA, 6);
    EXPECT_EQ(gb.recv(), std::vector<uint8_t>{6});
    ASSERT_TRUE(h.delete_port(p.pb).ok());
    pump();
    ga.send(kB, kA, 7);
    EXPECT_TRUE(gb.recv().empty());
    pump();
    EXPECT_EQ(engine_rx(p.pa), 3u);  // 1, 4 and 7
    EXPECT_EQ(ctr(p.pa, PortCounter::rx_kernel_path), 2u);  // 3 and 6
  });
}

// Port security tightened on a port whose flows the kernel switches: the
// kernel's entries are void at once and what the port learned from a MAC
// the list no longer allows is forgotten, so the next frame from that MAC
// meets the engine's check (port_security) instead of passing in the kernel
// until it ages out. Loosened again, the flow comes back.
TEST_F(KernelPath, LockingAPortsMacsStopsItsFlowsInTheKernelAtOnce) {
  with_pair(true, [&](Pair& p, Guest& ga, Guest& gb) {
    ga.send(kB, kA, 3);
    EXPECT_EQ(gb.recv(), std::vector<uint8_t>{3});
    pump(150);
    EXPECT_EQ(engine_rx(p.pa), 1u);  // 3 went through the kernel
    auto lock = [&](std::vector<Mac> macs) {
      auto c = testutil::EngineHarness::cmd(CmdOp::kSetPort);
      c->port = p.pa;
      c->port_cfg.locked_macs = std::move(macs);
      ASSERT_TRUE(h.run(std::move(c)).ok());
      pump();  // the new generation reaches the kernel
    };
    auto learned = [&](Mac m) {
      Result r = h.dump_fdb(sw);
      return testutil::EngineHarness::find_entry(r.entries, m) != nullptr;
    };
    const uint64_t secured = cnt_read(h.engine().port_counters(p.pa).drops[size_t(Drop::port_security)]);
    EXPECT_TRUE(learned(kA));
    lock({host_mac(9)});
    EXPECT_FALSE(learned(kA)) << "learned from a MAC the port may no longer send from";
    ga.send(kB, kA, 4);
    pump();
    EXPECT_TRUE(gb.recv(0).empty());
    EXPECT_EQ(cnt_read(h.engine().port_counters(p.pa).drops[size_t(Drop::port_security)]), secured + 1);
    EXPECT_EQ(engine_rx(p.pa), 2u);
    lock({kA, host_mac(9)});
    ga.send(kB, kA, 5);
    pump();
    EXPECT_EQ(gb.recv(), std::vector<uint8_t>{5});
    EXPECT_TRUE(learned(kA));
  });
}

// A capture must see every frame: while one runs, the kernel takes none.
TEST_F(KernelPath, ACaptureSeesEveryFrame) {
  with_pair(true, [&](Pair& p, Guest& ga, Guest& gb) {
    CaptureFilter f;
    f.port = p.pa;
    auto cap = std::make_shared<CaptureSession>(f, 64, 128);
    auto c = testutil::EngineHarness::cmd(CmdOp::kStartCapture);
    c->capture = cap;
    const auto paused = [&] { return cnt_read(h.engine().engine_counters().c[size_t(EngineCounter::kernel_path_paused)]); };
    EXPECT_EQ(paused(), 0u);
    ASSERT_TRUE(h.run(std::move(c)).ok());
    pump();  // the kernel path goes off
    EXPECT_EQ(paused(), 1u);
    for (uint8_t t = 5; t < 8; ++t) ga.send(kB, kA, t);
    pump();
    EXPECT_EQ(gb.recv(), tags(5, 8));
    EXPECT_EQ(cap->captured.load(), 3u);
    c = testutil::EngineHarness::cmd(CmdOp::kStopCapture);
    c->capture = cap;
    ASSERT_TRUE(h.run(std::move(c)).ok());
    pump();
    EXPECT_EQ(paused(), 0u);
    ga.send(kB, kA, 8);
    EXPECT_EQ(gb.recv(), std::vector<uint8_t>{8});  // back in the kernel: nobody ran the engine
    pump(150);
    EXPECT_EQ(ctr(p.pa, PortCounter::rx_kernel_path), 1u);
  });
}

// A port that asks for no kernel path (kernelPath: false) gets none, and its
// switch partner then has nobody to redirect to: every frame is the engine's.
TEST_F(KernelPath, APortCanTurnItOff) {
  with_pair(false, [&](Pair& p, Guest& ga, Guest& gb) {
    EXPECT_EQ(p.sb->kernel_path(), "off: turned off (kernelPath: false)");
    for (uint8_t t = 3; t < 6; ++t) ga.send(kB, kA, t);
    pump();
    EXPECT_EQ(gb.recv(), tags(3, 6));
    pump(150);
    EXPECT_EQ(ctr(p.pa, PortCounter::rx_kernel_path), 0u);
    EXPECT_EQ(ctr(p.pa, PortCounter::rx_packets), 4u);
    EXPECT_EQ(ctr(p.pb, PortCounter::tx_packets), 4u);
  });
}

// A VM's tap held by its hypervisor, on an afpacket port: the kernel path
// takes its frames to another VM's tap as well (redirected to the tap's
// egress, where the hypervisor reads it), with no copy through the engine.
TEST_F(KernelPath, VmsOnTapsHeldByTheirHypervisorTakeThePathToo) {
  std::string skip = in_own_netns([&] {
    ASSERT_EQ(system("sysctl -qw net.ipv6.conf.default.disable_ipv6=1"), 0);
    TapVm va("kta"), vb("ktb");
    std::shared_ptr<PortStatus> sa, sb;
    PortId pa = add("kta", &sa), pb = add("ktb", &sb);
    if (sa->kernel_path().rfind("on", 0) != 0) GTEST_SKIP() << "kernel path: " << sa->kernel_path();
    pump(150);
    va.send(kB, kA, 1);
    pump();
    EXPECT_EQ(vb.recv(), std::vector<uint8_t>{1});
    vb.send(kA, kB, 2);
    pump();
    EXPECT_EQ(va.recv(), std::vector<uint8_t>{2});
    for (uint8_t t = 10; t < 20; ++t) va.send(kB, kA, t);
    EXPECT_EQ(vb.recv(), tags(10, 20));  // nobody ran the engine
    pump(150);
    EXPECT_EQ(ctr(pa, PortCounter::rx_kernel_path), 10u);
    EXPECT_EQ(ctr(pb, PortCounter::tx_kernel_path), 10u);
    EXPECT_EQ(engine_rx(pa), 1u);
  }, "/dev/net/tun");
  if (!skip.empty()) GTEST_SKIP() << skip;
}

// Loading the BPF object takes tens of milliseconds in the verifier, and
// attaching a port's TC link milliseconds more: the command that first wants
// the object carries it, loaded on the submitting thread, and each access
// port comes hooked by its submitter once the engine holds the programs, so
// the running engine thread stalls on neither. Ports added to a running
// engine: one load, all on the path, and the kernel switches their frames.
TEST_F(KernelPath, TheBpfObjectIsLoadedAndPortsHookedByTheSubmitterNotTheRunningEngine) {
  std::string skip = in_own_netns([&] {
    ASSERT_TRUE(make_veths());
    h.engine().start();
    std::shared_ptr<PortStatus> sa, sb;
    const auto t0 = std::chrono::steady_clock::now();
    PortId pa = add("kpa", &sa);
    const auto t1 = std::chrono::steady_clock::now();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // the engine adopts the programs
    PortId pb = add("kpb", &sb);
    const auto t2 = std::chrono::steady_clock::now();
    if (sa->kernel_path().rfind("on", 0) != 0) {
      h.engine().stop();
      EXPECT_EQ(sa->kernel_path().find("verifier"), std::string::npos) << sa->kernel_path();
      GTEST_SKIP() << "kernel path: " << sa->kernel_path();
    }
    EXPECT_EQ(sb->kernel_path().rfind("on", 0), 0u) << sb->kernel_path();
    Guest ga("kpa-g"), gb("kpb-g");
    std::this_thread::sleep_for(std::chrono::milliseconds(250));  // a housekeeping tick: the interfaces
    ga.send(kB, kA, 1);
    EXPECT_EQ(gb.recv(500), std::vector<uint8_t>{1});
    gb.send(kA, kB, 2);
    EXPECT_EQ(ga.recv(500), std::vector<uint8_t>{2});
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // the engine writes both entries
    for (uint8_t t = 10; t < 20; ++t) ga.send(kB, kA, t);
    EXPECT_EQ(gb.recv(500), tags(10, 20));
    std::this_thread::sleep_for(std::chrono::milliseconds(250));  // a tick: the kernel's counters
    h.engine().stop();
    EXPECT_TRUE(h.engine().kernel_path_preloaded());
    EXPECT_EQ(h.engine().kernel_path_engine_hooks(), 0u);
    EXPECT_EQ(ctr(pa, PortCounter::rx_kernel_path), 10u);
    EXPECT_EQ(ctr(pb, PortCounter::tx_kernel_path), 10u);
    // For the record (not asserted: timing): the first command paid for the
    // load on this thread, the second did not.
    auto ms = [](auto d) { return std::chrono::duration<double, std::milli>(d).count(); };
    std::printf("creating the first kernel-path port took %.1f ms (the load, on the submitter), the second %.1f ms\n",
                ms(t1 - t0), ms(t2 - t1) - 50);
    ASSERT_TRUE(h.delete_port(pa).ok());
    ASSERT_TRUE(h.delete_port(pb).ok());
  });
  if (!skip.empty()) GTEST_SKIP() << skip;
}

// The engine no longer sees the frames of a pair the kernel switches, yet
// their MACs must not age out of its table (a flood and an EVPN withdrawal
// every aging period): the kernel's last-use stamps refresh them.
class KernelPathAging : public KernelPath {
 protected:
  KernelPathAging() { aging_ms_ = 2000; }
};

TEST_F(KernelPathAging, MacsTheKernelKeepsSwitchingDoNotAge) {
  with_pair(true, [&](Pair& p, Guest& ga, Guest& gb) {
    for (int i = 0; i < 35; ++i) {  // 3.5 s: almost twice the aging time
      ga.send(kB, kA, 3);
      gb.send(kA, kB, 4);
      pump(100);
    }
    EXPECT_EQ(cnt_read(h.engine().switch_counters(sw).c[size_t(SwitchCounter::aged)]), 0u);
    EXPECT_EQ(engine_rx(p.pa), 1u);
    EXPECT_EQ(ctr(p.pa, PortCounter::rx_kernel_path), 35u);
    // Quiet: now they age, as any MAC does.
    pump(2600);
    EXPECT_EQ(cnt_read(h.engine().switch_counters(sw).c[size_t(SwitchCounter::aged)]), 2u);
  });
}

#ifdef VPC_HAVE_KPATH
// Mirrors struct kp_last of kpath.bpf.c: the socket filter's verdict, left
// for the TC program.
struct KpLast {
  uint32_t ifindex, len, gso_size, kind;
  uint32_t in, out, member, to_ifindex, inner_v6, shrink, peer, merge;
  uint8_t seen[32];
};
// Per-CPU values are copied 8-byte aligned each: the size must stay a multiple of 8.
static_assert(sizeof(KpLast) == 80 && sizeof(KpLast) % 8 == 0, "the layout of struct kp_last");
constexpr uint32_t kKpNone = 0, kKpLocal = 1;
constexpr int kTcActOk = 0, kTcActShot = 2, kTcActRedirect = 7;

// The programs alone, for BPF_PROG_TEST_RUN (the tables written by hand);
// nullptr with the reason where they cannot be had here. A verifier's
// refusal is a failure, not a reason to skip.
std::unique_ptr<vpc::KernelPath> load_programs(std::string* why) {
  std::unique_ptr<vpc::KernelPath> kp = vpc::KernelPath::load(4, 2, 64, 2, why);
  if (!kp) {
    EXPECT_EQ(why->find("verifier"), std::string::npos) << *why;
  }
  return kp;
}

// kp_tc's return code for `pkt` arriving on `ifindex` (a super-frame when
// gso_size is set).
int run_tc(const vpc::KernelPath& kp, int ifindex, const std::vector<uint8_t>& pkt, uint32_t gso_size = 0) {
  __sk_buff ctx{};
  ctx.ifindex = uint32_t(ifindex);
  ctx.gso_size = gso_size;
  ctx.gso_segs = gso_size ? 2 : 0;
  LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = pkt.data(), .data_size_in = uint32_t(pkt.size()), .ctx_in = &ctx,
              .ctx_size_in = sizeof ctx);
  EXPECT_EQ(bpf_prog_test_run_opts(kp.tc_prog(), &o), 0) << strerror(errno);
  return int(o.retval);
}

// The two programs decide once per frame: the socket filter (packet taps run
// first) decides and leaves its verdict; the TC program, next on the same CPU
// for the same frame, follows it rather than deciding again, so a table
// update between the two cannot make them disagree (the engine and the
// kernel would both forward the frame, or neither). The TC program is run
// here through BPF_PROG_TEST_RUN on one CPU, with the verdict put in place by
// hand and the tables changed behind it.
TEST(KernelPathPrograms, TheTcProgramFollowsTheSocketFiltersVerdictOnTheSameFrame) {
  std::string why;
  std::string skip = in_own_netns([&] {
    ASSERT_TRUE(make_veths());
    std::unique_ptr<vpc::KernelPath> kp = load_programs(&why);
    if (!kp) return;
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(0, &one);
    ASSERT_EQ(sched_setaffinity(0, sizeof one, &one), 0);  // the verdict is per CPU
    const int ia = int(if_nametoindex("kpa")), ib = int(if_nametoindex("kpb"));
    KpathGlobal g;
    g.on = 1;
    ASSERT_TRUE(kp->set_global(g));
    ASSERT_TRUE(kp->set_port(0, KpathPort{uint32_t(ia), 0, 1500, 1, 0, 0}));
    ASSERT_TRUE(kp->set_port(1, KpathPort{uint32_t(ib), 0, 1500, 1, 0, 0}));
    ASSERT_TRUE(kp->set_ifindex(ia, 0) && kp->set_ifindex(ib, 1) && kp->set_gen(0, 1));
    ASSERT_TRUE(kp->set_entry(0, kA, 0, 1) && kp->set_entry(0, kB, 1, 1));
    const int last = kp->map_fd("kp_last");
    ASSERT_GE(last, 0);
    const std::vector<uint8_t> frame = tagged_frame(kB, kA, 7);
    // The filter's verdict on `frame` as it came in on kpa (len: a
    // different frame's), on every CPU.
    auto leave = [&](uint32_t kind, uint32_t len) {
      KpLast l{};
      l.ifindex = uint32_t(ia);
      l.len = len;
      l.kind = kind;
      l.in = 0;
      l.out = 1;
      l.to_ifindex = uint32_t(ib);
      std::memcpy(l.seen, frame.data(), sizeof l.seen);
      std::vector<KpLast> all(size_t(libbpf_num_possible_cpus()), l);
      uint32_t zero = 0;
      ASSERT_EQ(bpf_map_update_elem(last, &zero, all.data(), BPF_ANY), 0);
    };
    auto tc = [&] { return run_tc(*kp, ia, frame); };
    // No verdict waiting: the TC program decides for itself, by the tables.
    EXPECT_EQ(tc(), kTcActRedirect);
    // B's entry leaves between the filter (which took the frame) and the TC
    // program: the frame is still redirected, not lost.
    ASSERT_TRUE(kp->erase_entry(0, kB));
    leave(kKpLocal, uint32_t(frame.size()));
    EXPECT_EQ(tc(), kTcActRedirect);
    // The verdict is taken once: the next frame is decided by the tables.
    EXPECT_EQ(tc(), kTcActOk);
    // B's entry comes back after the filter gave the frame to the engine:
    // the kernel does not forward it a second time.
    ASSERT_TRUE(kp->set_entry(0, kB, 1, 1));
    leave(kKpNone, uint32_t(frame.size()));
    EXPECT_EQ(tc(), kTcActOk);
    // A verdict on another frame is not this one's.
    leave(kKpNone, uint32_t(frame.size()) + 1);
    EXPECT_EQ(tc(), kTcActRedirect);
  });
  if (skip.empty()) skip = why.empty() ? "" : "kernel path: " + why;
  if (!skip.empty()) GTEST_SKIP() << skip;
}

// A VXLAN packet from 198.18.5.2 to our VTEP 198.18.5.1 (UDP source port
// `sport`, VNI 5000, no UDP checksum) around a TCP frame from kB (behind
// that VTEP) to kA, built by proto/test_frames.h (`in`: its other fields).
std::vector<uint8_t> vxlan_packet(const uint8_t* vtep_mac, uint16_t sport, testframes::Spec in = {}) {
  in.dst = kA;
  in.src = kB;
  const testframes::Bytes inner = testframes::build(in).f;
  std::vector<uint8_t> f(kEthHeaderLen + kIpv4HeaderLen + 8 + 8, 0);
  f.insert(f.end(), inner.begin(), inner.end());
  std::memcpy(f.data(), vtep_mac, 6);
  mac_store(f.data() + 6, host_mac(9));
  store_be16(f.data() + 12, kEtherTypeIpv4);
  uint8_t* ip = f.data() + kEthHeaderLen;
  ip[0] = 0x45;
  store_be16(ip + 2, uint16_t(f.size() - kEthHeaderLen));
  store_be16(ip + 6, 0x4000);  // DF
  ip[8] = 64;
  ip[9] = kIpProtoUdp;
  store_be32(ip + 12, 0xC6120502);  // 198.18.5.2
  store_be32(ip + 16, 0xC6120501);  // 198.18.5.1
  store_be16(ip + 10, uint16_t(~testframes::ref_sum(ip, kIpv4HeaderLen)));
  uint8_t* udp = ip + kIpv4HeaderLen;
  store_be16(udp, sport);
  store_be16(udp + 2, 4789);
  store_be16(udp + 4, uint16_t(f.size() - kEthHeaderLen - kIpv4HeaderLen));
  udp[8] = 0x08;                     // VXLAN flags: I
  store_be32(udp + 12, 5000u << 8);  // VNI
  return f;
}

// The tables of a host with one access port (kpa) and the uplink (kpb,
// VTEP 198.18.5.1 and 2001:db8:5::1, MAC vtep_mac), kB behind the remote
// VTEP 198.18.5.2 in the switch of VNI 5000, kA on the access port.
constexpr uint8_t kVtepMac[6] = {0x02, 0, 0x5e, 0x10, 0, 0x99};
void set_vtep_tables(vpc::KernelPath& kp, int ia, int iu) {
  KpathGlobal g;
  g.on = 1;
  g.uplink = 1;
  const uint8_t ours[4] = {198, 18, 5, 1}, peer[4] = {198, 18, 5, 2};
  const uint8_t ours6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  std::memcpy(&g.ip4, ours, 4);
  std::memcpy(g.ip6, ours6, 16);
  g.udp_port = 4789;
  std::memcpy(g.mac, kVtepMac, 6);
  ASSERT_TRUE(kp.set_global(g));
  ASSERT_TRUE(kp.set_port(0, KpathPort{uint32_t(ia), 0, 1500, 1, 0, 0}));
  ASSERT_TRUE(kp.set_port(1, KpathPort{uint32_t(iu), 0, 1600, 1, 1, 0}));
  ASSERT_TRUE(kp.set_ifindex(ia, 0) && kp.set_ifindex(iu, 1) && kp.set_gen(0, 1) && kp.set_vni(5000, 0));
  KpathRemote r;
  r.sw = 0;
  r.ifindex = uint32_t(iu);
  r.mtu = 1450;
  r.on = 1;
  std::memcpy(&r.peer_ip4, peer, 4);
  ASSERT_TRUE(kp.set_remote(0, r));
  ASSERT_TRUE(kp.set_entry(0, kB, kKpathRemote | 0, 1) && kp.set_entry(0, kA, 0, 1));
}

// Runs body(programs, kpa's index, kpb's index) in a namespace of its own
// with the veths made and set_vtep_tables() written; returns why it could
// not (then the test skips).
std::string with_vtep_programs(const std::function<void(vpc::KernelPath&, int, int)>& body) {
  std::string why;
  std::string skip = in_own_netns([&] {
    ASSERT_TRUE(make_veths());
    std::unique_ptr<vpc::KernelPath> kp = load_programs(&why);
    if (!kp) return;
    const int ia = int(if_nametoindex("kpa")), iu = int(if_nametoindex("kpb"));
    set_vtep_tables(*kp, ia, iu);
    body(*kp, ia, iu);
  });
  if (skip.empty() && !why.empty()) skip = "kernel path: " + why;
  return skip;
}

// A received tunnel super-frame (a VTEP on this host, over a veth underlay)
// is decapsulated by the kernel only into the guest's end of a veth
// (kp_port.peer), and only a TCP one whose segments fit; any other stays
// with the engine, and so, for a second, do the plain packets of its flow
// (outer source, UDP source port, VNI), so no flow runs on two paths at
// once; other flows are decapsulated by the kernel. A super-frame the
// kernel takes ends its flow's hold at once. kp_tc is run through
// BPF_PROG_TEST_RUN on the uplink's interface, a super-frame being a packet
// with a GSO size. A test run cannot give a frame its GSO type, and without
// one the helper refuses to strip a super-frame: so one the kernel took
// shows as a counted error (kernel_path_error) here, one left to the
// engine as a drop without it.
TEST(KernelPathPrograms, ASuperFrameIsTheKernelsIntoAGuestsVethElseItsFlowStaysWithTheEngineForASecond) {
  const std::string skip = with_vtep_programs([&](vpc::KernelPath& kp, int ia, int iu) {
    auto tc = [&](uint16_t sport, uint32_t gso_size) { return run_tc(kp, iu, vxlan_packet(kVtepMac, sport), gso_size); };
    // A super-frame: 3,000 bytes of TCP data inside, more than one segment.
    auto big = [](auto change) {
      testframes::Spec in;
      in.payload = 3000;
      change(in);
      return in;
    };
    auto super = [&](uint16_t sport, uint32_t gso_size, const testframes::Spec& in) { return run_tc(kp, iu, vxlan_packet(kVtepMac, sport, in), gso_size); };
    const testframes::Spec plain_big = big([](testframes::Spec&) {});
    auto errors = [&] { return kp.stats(1).errors; };
    // The access port kpa is a veth's end without a peer in another
    // namespace (kp_port.peer 0) first.
    // The engine's frames are not handed to the host's stack as well
    // (VxlanTheEngineTakesIsNotAlsoTheHostStacks, below).
    EXPECT_EQ(tc(50000, 0), kTcActRedirect);                // plain: decapsulated in the kernel
    EXPECT_EQ(super(50000, 1400, plain_big), kTcActShot);   // a super-frame of that flow: the engine's
    EXPECT_EQ(errors(), 0u);
    EXPECT_EQ(tc(50000, 0), kTcActShot);                    // and its plain packets follow it there
    EXPECT_EQ(tc(50001, 0), kTcActRedirect);                // another flow stays in the kernel
    // Into the guest's end of a veth: what is not one inner TCP super-frame
    // that fits goes to the engine still (errors unchanged).
    ASSERT_TRUE(kp.set_port(0, KpathPort{uint32_t(ia), 0, 1500, 1, 0, 1}));
    EXPECT_EQ(super(50000, 1461, plain_big), kTcActShot) << "its segments (40 bytes of headers and 1,461 of data) would not fit the port's MTU";
    EXPECT_EQ(super(50000, 1400, big([](testframes::Spec& in) { in.payload = 1400; })), kTcActShot) << "one segment";
    EXPECT_EQ(super(50000, 1400, big([](testframes::Spec& in) { in.frag = 0x2000; })), kTcActShot) << "a fragment inside";
    EXPECT_EQ(super(50000, 1400, big([](testframes::Spec& in) { in.ip_opt = 4; })), kTcActShot) << "IPv4 options inside";
    EXPECT_EQ(super(50000, 1400, big([](testframes::Spec& in) { in.proto = kIpProtoUdp; })), kTcActShot) << "UDP inside";
    std::vector<uint8_t> longer = vxlan_packet(kVtepMac, 50000, plain_big);
    store_be16(longer.data() + 64 + 2, uint16_t(load_be16(longer.data() + 64 + 2) + 1));
    EXPECT_EQ(run_tc(kp, iu, longer, 1400), kTcActShot) << "an inner length beyond the frame";
    ASSERT_TRUE(kp.set_port(1, KpathPort{uint32_t(iu), 0, 1480, 1, 1, 0}));
    EXPECT_EQ(super(50000, 1400, plain_big), kTcActShot) << "its outer packets (1,490 bytes) would not fit the uplink's MTU of 1,480";
    ASSERT_TRUE(kp.set_port(1, KpathPort{uint32_t(iu), 0, 1600, 1, 1, 0}));
    EXPECT_EQ(errors(), 0u);
    EXPECT_EQ(tc(50000, 0), kTcActShot) << "still held";
    EXPECT_EQ(super(50000, 1400, plain_big), kTcActShot);
    EXPECT_EQ(errors(), 1u) << "the kernel took it";
    EXPECT_EQ(tc(50000, 0), kTcActRedirect) << "and its flow's hold ended";
    EXPECT_EQ(super(50003, 1400, big([](testframes::Spec& in) { in.v6 = true; })), kTcActShot);
    EXPECT_EQ(errors(), 2u) << "IPv6 inside: taken";
    EXPECT_EQ(super(50003, 1400, big([](testframes::Spec& in) { in.tcp_opt = 12; })), kTcActShot);
    EXPECT_EQ(errors(), 3u) << "TCP options (timestamps): taken";
    // A UDP GSO batch of VXLAN packets (this switch's own: each segment an
    // inner frame of its own) is not one inner frame: the engine's.
    std::vector<uint8_t> batch = vxlan_packet(kVtepMac, 50002);
    const std::vector<uint8_t> chunk(batch.begin() + 42, batch.end());  // VXLAN header and inner frame
    batch.insert(batch.end(), chunk.begin(), chunk.end());
    store_be16(batch.data() + kEthHeaderLen + 2, uint16_t(batch.size() - kEthHeaderLen));
    store_be16(batch.data() + kEthHeaderLen + 10, 0);
    store_be16(batch.data() + kEthHeaderLen + 10, uint16_t(~testframes::ref_sum(batch.data() + kEthHeaderLen, kIpv4HeaderLen)));
    store_be16(batch.data() + kEthHeaderLen + kIpv4HeaderLen + 4, uint16_t(batch.size() - kEthHeaderLen - kIpv4HeaderLen));
    EXPECT_EQ(run_tc(kp, iu, batch, uint32_t(chunk.size())), kTcActShot);
    EXPECT_EQ(errors(), 3u) << "left to the engine";
    EXPECT_EQ(tc(50002, 0), kTcActShot) << "and its flow follows it";
  });
  if (!skip.empty()) GTEST_SKIP() << skip;
}

// The uplink's GRO stage (a veth pair, kpm into kpm-g here): a plain
// packet the kernel decapsulates for the guest's end of a veth goes into the
// stage's sending end with its port in the mark; the frame (merged by the
// stage's GRO) comes back at the receiving end's TC ingress, which is in
// kp_ifx as the uplink's, and goes on to its port, checked against the
// tables again. A frame there without the mark is not switched (nothing of
// ours sends one), one whose port or MACs no longer fit is a counted drop. Only TCP
// with data takes the stage: GRO merges nothing else.
TEST(KernelPathPrograms, PlainDecapsulatedFramesGoThroughTheGroStageIntoAGuestsVeth) {
  const std::string skip = with_vtep_programs([&](vpc::KernelPath& kp, int ia, int iu) {
    ASSERT_EQ(system("ip link add kpm type veth peer name kpm-g && ip link set kpm up && ip link set kpm-g up"), 0);
    const int im = int(if_nametoindex("kpm")), ig = int(if_nametoindex("kpm-g"));
    ASSERT_TRUE(kp.set_ifindex(ig, 1));
    KpathPort up{uint32_t(iu), 0, 1600, 1, 1, 0};
    up.merge = uint32_t(im);
    ASSERT_TRUE(kp.set_port(1, up));
    constexpr uint32_t kTag = 0x6b000000u;
    auto run = [&](int ifindex, const std::vector<uint8_t>& pkt, uint32_t mark, uint32_t* mark_out) {
      __sk_buff ctx{}, out{};
      ctx.ifindex = uint32_t(ifindex);
      ctx.mark = mark;
      LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = pkt.data(), .data_size_in = uint32_t(pkt.size()), .ctx_in = &ctx,
                  .ctx_out = &out, .ctx_size_in = sizeof ctx, .ctx_size_out = sizeof out);
      EXPECT_EQ(bpf_prog_test_run_opts(kp.tc_prog(), &o), 0) << strerror(errno);
      *mark_out = out.mark;
      return int(o.retval);
    };
    auto errors = [&] { return kp.stats(1).errors; };
    uint32_t mark = 0;
    EXPECT_EQ(run(iu, vxlan_packet(kVtepMac, 50000), 0, &mark), kTcActRedirect);
    EXPECT_EQ(mark, 0u) << "the port is not the guest's end of a veth: delivered packet by packet, as before";
    ASSERT_TRUE(kp.set_port(0, KpathPort{uint32_t(ia), 0, 1500, 1, 0, 1}));
    EXPECT_EQ(run(iu, vxlan_packet(kVtepMac, 50000), 0, &mark), kTcActRedirect);
    EXPECT_EQ(mark, kTag | 0u) << "into the stage, for port 0";
    testframes::Spec ack;
    ack.payload = 0;
    ack.tcp_flags = 0x10;
    EXPECT_EQ(run(iu, vxlan_packet(kVtepMac, 50000, ack), 0, &mark), kTcActRedirect);
    EXPECT_EQ(mark, 0u) << "a pure ACK: nothing to merge, straight into the guest's end";
    testframes::Spec udp;
    udp.proto = kIpProtoUdp;
    EXPECT_EQ(run(iu, vxlan_packet(kVtepMac, 50000, udp), 0, &mark), kTcActRedirect);
    EXPECT_EQ(mark, 0u) << "UDP: GRO merges none, straight into the guest's end";
    // Back from the stage: the inner frame, kB to kA.
    std::vector<uint8_t> inner = vxlan_packet(kVtepMac, 50000);
    inner.erase(inner.begin(), inner.begin() + 50);
    EXPECT_EQ(run(ig, inner, kTag | 0u, &mark), kTcActRedirect);
    EXPECT_EQ(mark, 0u) << "the mark goes before the frame does";
    EXPECT_EQ(errors(), 0u);
    EXPECT_EQ(run(ig, inner, 0, &mark), kTcActOk) << "not sent by kp_tc: the host's, which drops it (for another host)";
    EXPECT_EQ(errors(), 0u);
    EXPECT_EQ(run(ig, inner, kTag | 3u, &mark), kTcActShot) << "a port that is not there";
    EXPECT_EQ(errors(), 1u);
    ASSERT_TRUE(kp.erase_entry(0, kB));
    EXPECT_EQ(run(ig, inner, kTag | 0u, &mark), kTcActShot) << "its source no longer behind the VTEP";
    EXPECT_EQ(errors(), 2u);
    // Without a stage, the same packet goes straight into the guest's end.
    ASSERT_TRUE(kp.set_entry(0, kB, kKpathRemote | 0, 1));
    ASSERT_TRUE(kp.set_port(1, KpathPort{uint32_t(iu), 0, 1600, 1, 1, 0}));
    EXPECT_EQ(run(iu, vxlan_packet(kVtepMac, 50000), 0, &mark), kTcActRedirect);
    EXPECT_EQ(mark, 0u);
  });
  if (!skip.empty()) GTEST_SKIP() << skip;
}

// The same VXLAN packet over IPv6 (2001:db8:5::2 to 2001:db8:5::1).
std::vector<uint8_t> vxlan_packet6(uint16_t sport) {
  const std::vector<uint8_t> v4 = vxlan_packet(kVtepMac, sport);
  const size_t udp_len = v4.size() - kEthHeaderLen - kIpv4HeaderLen;
  std::vector<uint8_t> f(kEthHeaderLen + 40, 0);
  std::memcpy(f.data(), v4.data(), 12);
  store_be16(f.data() + 12, 0x86dd);
  uint8_t* ip = f.data() + kEthHeaderLen;
  ip[0] = 0x60;
  store_be16(ip + 4, uint16_t(udp_len));
  ip[6] = kIpProtoUdp;
  ip[7] = 64;
  const uint8_t src[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2};
  std::memcpy(ip + 8, src, 16);
  std::memcpy(ip + 24, src, 16);
  ip[39] = 1;
  f.insert(f.end(), v4.begin() + kEthHeaderLen + kIpv4HeaderLen, v4.end());
  return f;
}

// kp_xdp's return code for `pkt` arriving on `ifindex`, and what it leaves:
// its metadata, then the frame.
// `meta_in`: that many bytes at pkt's start are metadata already on it.
int run_xdp(const vpc::KernelPath& kp, int ifindex, const std::vector<uint8_t>& pkt, std::vector<uint8_t>* out,
            uint32_t meta_in = 0) {
  xdp_md ctx{};
  ctx.ingress_ifindex = uint32_t(ifindex);
  ctx.data = meta_in;
  ctx.data_end = uint32_t(pkt.size());
  out->assign(pkt.size() + 64, 0);
  LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = pkt.data(), .data_out = out->data(), .data_size_in = uint32_t(pkt.size()),
              .data_size_out = uint32_t(out->size()), .ctx_in = &ctx, .ctx_size_in = sizeof ctx);
  EXPECT_EQ(bpf_prog_test_run_opts(kp.xdp_prog(), &o), 0) << strerror(errno);
  out->resize(o.data_size_out);
  return int(o.retval);
}

// The uplink's XDP stage (an interface with GRO on) decapsulates exactly
// what TC ingress would, leaves the switch and egress port in front of the
// inner frame (the metadata kp_tc redirects by), counts and marks that it
// ran; anything else passes as it came, without metadata it came with. A
// unicast frame on the uplink to another MAC with no metadata (an inner
// frame sent raw on the underlay) is left by TC to the host's stack, not
// switched. (The socket filter's half, refusing such frames once the stage
// has run, and TC's check of forged metadata are tested on real frames in
// test/overlay: a test run of a socket filter starts past the Ethernet
// header, and one of a TC program takes no metadata.)
TEST(KernelPathPrograms, XdpDecapsulatesWhatTcWouldAndLeavesItsPortForTc) {
  constexpr int kXdpPass = 2;
  bool refused = false;
  const std::string skip = with_vtep_programs([&](vpc::KernelPath& kp, int /*ia*/, int iu) {
    if (kp.xdp_prog() < 0) {
      refused = kp.progs().xdp_refused;
      ASSERT_TRUE(refused) << "no XDP program, and no refusal recorded";
      return;
    }
    const std::vector<uint8_t> pkt = vxlan_packet(kVtepMac, 50000);
    const std::vector<uint8_t> inner(pkt.begin() + 50, pkt.end());
    std::vector<uint8_t> out;
    ASSERT_EQ(run_xdp(kp, iu, pkt, &out), kXdpPass);
    ASSERT_EQ(out.size(), 16 + inner.size());
    uint32_t meta[4];
    std::memcpy(meta, out.data(), 16);
    EXPECT_EQ(meta[0], 0x6b707864u) << "kp_meta's magic";
    EXPECT_EQ(meta[1], 0u) << "to the access port";
    EXPECT_EQ(meta[2], 0u) << "of switch 0";
    EXPECT_TRUE(std::equal(inner.begin(), inner.end(), out.begin() + 16)) << "the inner frame, whole";
    const KpathStats up = kp.stats(1), access = kp.stats(0), peer = kp.remote_stats(0);
    EXPECT_EQ(up.rx_packets, 1u);
    EXPECT_EQ(up.rx_bytes, pkt.size());
    EXPECT_EQ(access.tx_packets, 1u);
    EXPECT_EQ(access.tx_bytes, inner.size());
    EXPECT_EQ(peer.rx_packets, 1u);
    KpathGlobal g;
    uint32_t zero = 0;
    ASSERT_EQ(bpf_map_lookup_elem(kp.map_fd("kp_global"), &zero, &g), 0);
    EXPECT_EQ(g.xdp, 1u);
    // What TC ingress would not decapsulate passes untouched.
    for (auto change : std::vector<std::function<void(std::vector<uint8_t>&)>>{
             [](std::vector<uint8_t>& f) { f[kEthHeaderLen + kIpv4HeaderLen + 12 + 2] ^= 1; },  // an unknown VNI
             [](std::vector<uint8_t>& f) { f[0] ^= 0x02; },                                     // to another MAC
             [](std::vector<uint8_t>& f) { store_be16(f.data() + kEthHeaderLen + 6, 0x2000); },  // a fragment
             [](std::vector<uint8_t>& f) { mac_store(f.data() + 50 + 6, kA); },                  // from a local MAC
             [](std::vector<uint8_t>& f) { std::memcpy(f.data() + 50, kVtepMac, 6); }}) {        // to the uplink's own MAC
      std::vector<uint8_t> f = pkt;
      change(f);
      ASSERT_EQ(run_xdp(kp, iu, f, &out), kXdpPass);
      EXPECT_EQ(out, f);
    }
    EXPECT_EQ(kp.stats(1).rx_packets, 1u) << "none of them counted";
    // Metadata a frame came in with (an XDP program beyond a veth underlay
    // redirected it here) goes, whatever it says: only kp_xdp's is on the
    // uplink.
    std::vector<uint8_t> forged = {0x64, 0x78, 0x70, 0x6b, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    forged.insert(forged.end(), inner.begin(), inner.end());
    ASSERT_EQ(run_xdp(kp, iu, forged, &out, 16), kXdpPass);
    EXPECT_EQ(out, inner) << "the frame without the metadata it came with";
    forged.resize(16);
    forged.insert(forged.end(), pkt.begin(), pkt.end());
    ASSERT_EQ(run_xdp(kp, iu, forged, &out, 16), kXdpPass);
    ASSERT_EQ(out.size(), 16 + inner.size()) << "VXLAN that came with metadata: decapsulated, with kp_xdp's own";
    std::memcpy(meta, out.data(), 16);
    EXPECT_EQ(meta[0], 0x6b707864u);
    EXPECT_EQ(run_tc(kp, iu, inner), kTcActOk) << "no metadata: not switched, the host's stack has it";
    EXPECT_EQ(run_tc(kp, iu, pkt), kTcActRedirect) << "VXLAN the XDP stage passed: TC decapsulates it, as before";
  });
  if (!skip.empty()) GTEST_SKIP() << skip;
  if (refused) GTEST_SKIP() << "this kernel gives XDP programs no bpf_xdp_adjust_meta: kp_xdp was left out, the rest loaded";
}

// VXLAN to our VTEP that the engine takes (its packet socket had the frame
// before TC ingress) ends at TC: the address is the engine's, not the
// kernel's, and the host's stack would only drop it after a route lookup
// (IPv4) or answer it with ICMPv6 address unreachable. Everything else on
// the uplink, and everything on an access port the kernel does not take,
// goes on to the host's stack as before.
TEST(KernelPathPrograms, VxlanTheEngineTakesIsNotAlsoTheHostStacks) {
  const std::string skip = with_vtep_programs([&](vpc::KernelPath& kp, int ia, int iu) {
    EXPECT_EQ(run_tc(kp, iu, vxlan_packet6(50000)), kTcActShot) << "IPv6 underlay: the engine decapsulates";
    EXPECT_EQ(run_tc(kp, iu, vxlan_packet6(50000), 1400), kTcActShot) << "an IPv6 super-frame";
    std::vector<uint8_t> f = vxlan_packet6(50000);
    f[kEthHeaderLen + 39] = 2;  // to 2001:db8:5::2: not our VTEP
    EXPECT_EQ(run_tc(kp, iu, f), kTcActOk);
    f = vxlan_packet6(50000);
    store_be16(f.data() + kEthHeaderLen + 40 + 2, 4790);  // another UDP port
    EXPECT_EQ(run_tc(kp, iu, f), kTcActOk);
    f = vxlan_packet6(50000);
    f[0] ^= 0x02;  // to another MAC
    EXPECT_EQ(run_tc(kp, iu, f), kTcActOk);
    f = vxlan_packet(kVtepMac, 50000);
    store_be16(f.data() + kEthHeaderLen + 6, 0x2000);  // an IPv4 fragment (MF): the kernel reassembles or drops
    EXPECT_EQ(run_tc(kp, iu, f), kTcActOk);
    f = vxlan_packet(kVtepMac, 50000);
    store_be16(f.data() + kEthHeaderLen + kIpv4HeaderLen + 2, 53);  // UDP to another port
    EXPECT_EQ(run_tc(kp, iu, f), kTcActOk);
    EXPECT_EQ(run_tc(kp, ia, vxlan_packet6(50000)), kTcActOk) << "not on the uplink";
    // The uplink off in the tables (closing): the host's stack sees it again.
    ASSERT_TRUE(kp.set_port(1, KpathPort{uint32_t(iu), 0, 1600, 0, 1, 0}));
    EXPECT_EQ(run_tc(kp, iu, vxlan_packet6(50000)), kTcActOk);
  });
  if (!skip.empty()) GTEST_SKIP() << skip;
}

// The other half, on real frames: the socket filter leaves its verdict on
// each frame (kind, length, first bytes) and the TC program takes it (the
// slot's interface is cleared). Read from the engine's kp_last, found among
// the host's BPF maps by name.
TEST_F(KernelPath, TheSocketFilterLeavesItsVerdictAndTheTcProgramTakesIt) {
  with_pair(true, [&](Pair&, Guest& ga, Guest& gb) {
    ga.send(kB, kA, 9);
    EXPECT_EQ(gb.recv(), std::vector<uint8_t>{9});
    const std::vector<uint8_t> frame = tagged_frame(kB, kA, 9);
    int found = 0, taken = 0;
    for (uint32_t id = 0; bpf_map_get_next_id(id, &id) == 0;) {
      int fd = bpf_map_get_fd_by_id(id);
      if (fd < 0) continue;
      bpf_map_info info{};
      uint32_t len = sizeof info;
      if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0 && std::string(info.name) == "kp_last") {
        std::vector<KpLast> all(static_cast<size_t>(libbpf_num_possible_cpus()));
        uint32_t zero = 0;
        if (bpf_map_lookup_elem(fd, &zero, all.data()) == 0)
          for (const KpLast& l : all)
            if (l.kind == kKpLocal && l.len == frame.size() && std::memcmp(l.seen, frame.data(), sizeof l.seen) == 0) {
              ++found;
              if (l.ifindex == 0) ++taken;
            }
      }
      close(fd);
    }
    EXPECT_EQ(found, 1) << "the filter's verdict on the frame, on the CPU that received it";
    EXPECT_EQ(taken, 1) << "taken by the TC program";
  });
}
#endif

}  // namespace
}  // namespace vpc
