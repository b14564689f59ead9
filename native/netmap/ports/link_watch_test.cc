// The kernel's link messages (ports/link_watch.h) and the engine's use of
// them (Core::link_slices): a port whose interface changes is checked at
// the next slice, not on its turn of the round robin, and a port the watch
// covers is otherwise checked only as often as it asks (a tap every 10 s). The engine tests run alone in a
// network namespace of their own with taps the ports create; they need root
// and /dev/net/tun, and are skipped with the reason otherwise.
#include "ports/link_watch.h"

#include <gtest/gtest.h>
#include <linux/net_namespace.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <fcntl.h>
#include <net/if.h>
#include <linux/capability.h>
#include <linux/if_packet.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/core.h"
#include "core/test_harness.h"
#include "ports/ifutil.h"
#include "ports/tap.h"
#include "ports/test_netns.h"

namespace vpc {
namespace {

constexpr uint64_t kMs = 1000000;

// Appends one netlink message of `type` carrying an ifinfomsg for ifindex
// (and `extra` bytes of attributes after it).
void put_msg(std::vector<uint8_t>* b, uint16_t type, int ifindex, size_t extra = 0) {
  const size_t len = NLMSG_LENGTH(sizeof(ifinfomsg)) + extra;
  const size_t at = b->size();
  b->resize(at + NLMSG_ALIGN(len), 0);
  nlmsghdr h{};
  h.nlmsg_len = uint32_t(len);
  h.nlmsg_type = type;
  std::memcpy(b->data() + at, &h, sizeof(h));
  ifinfomsg ifi{};
  ifi.ifi_index = ifindex;
  std::memcpy(b->data() + at + NLMSG_HDRLEN, &ifi, sizeof(ifi));
}

TEST(LinkWatch, ParsesLinkMessagesAndPassesOverTheRest) {
  using N = LinkName;
  std::vector<uint8_t> b;
  put_msg(&b, RTM_NEWLINK, 7, 3);  // odd length: the next message is aligned
  put_msg(&b, RTM_NEWADDR, 8);
  put_msg(&b, RTM_DELLINK, 9);
  put_msg(&b, RTM_NEWLINK, 0);  // no interface named
  std::vector<N> got;
  EXPECT_TRUE(parse_link_messages(b.data(), b.size(), N::kOwnNamespace, &got));
  EXPECT_EQ(got, (std::vector<N>{{-1, 7}, {-1, 9}}));
  // The same from another namespace (its id came with the datagram).
  got.clear();
  EXPECT_TRUE(parse_link_messages(b.data(), b.size(), 4, &got));
  EXPECT_EQ(got, (std::vector<N>{{4, 7}, {4, 9}}));

  // RTM_DELNSID: every interface of that namespace (id 5 in ours).
  std::vector<uint8_t> d(NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(rtgenmsg)) + NLA_HDRLEN + 4, 0);
  nlmsghdr dh{};
  dh.nlmsg_len = uint32_t(d.size());
  dh.nlmsg_type = RTM_DELNSID;
  std::memcpy(d.data(), &dh, sizeof(dh));
  nlattr at{};
  at.nla_len = NLA_HDRLEN + 4;
  at.nla_type = NETNSA_NSID;
  const int32_t id = 5;
  std::memcpy(d.data() + NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(rtgenmsg)), &at, sizeof(at));
  std::memcpy(d.data() + NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(rtgenmsg)) + NLA_HDRLEN, &id, 4);
  got.clear();
  EXPECT_TRUE(parse_link_messages(d.data(), d.size(), N::kOwnNamespace, &got));
  EXPECT_EQ(got, (std::vector<N>{{5, 0}}));
  // Its attribute claiming more than the message holds: malformed.
  at.nla_len = 64;
  std::memcpy(d.data() + NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(rtgenmsg)), &at, sizeof(at));
  got.clear();
  EXPECT_FALSE(parse_link_messages(d.data(), d.size(), N::kOwnNamespace, &got));
  EXPECT_TRUE(got.empty());

  // A length past the end, or shorter than a header: malformed, what came
  // before is kept.
  std::vector<uint8_t> bad;
  put_msg(&bad, RTM_NEWLINK, 3);
  put_msg(&bad, RTM_NEWLINK, 4);
  uint32_t len = 4096;
  std::memcpy(bad.data() + NLMSG_ALIGN(NLMSG_LENGTH(sizeof(ifinfomsg))), &len, sizeof(len));
  got.clear();
  EXPECT_FALSE(parse_link_messages(bad.data(), bad.size(), N::kOwnNamespace, &got));
  EXPECT_EQ(got, (std::vector<N>{{-1, 3}}));
  len = 4;
  std::memcpy(bad.data(), &len, sizeof(len));
  got.clear();
  EXPECT_FALSE(parse_link_messages(bad.data(), bad.size(), N::kOwnNamespace, &got));
  EXPECT_TRUE(got.empty());
  // A message too short for its ifinfomsg names nothing.
  std::vector<uint8_t> shortmsg(NLMSG_HDRLEN, 0);
  nlmsghdr h{};
  h.nlmsg_len = NLMSG_HDRLEN;
  h.nlmsg_type = RTM_NEWLINK;
  std::memcpy(shortmsg.data(), &h, sizeof(h));
  EXPECT_TRUE(parse_link_messages(shortmsg.data(), shortmsg.size(), N::kOwnNamespace, &got));
  EXPECT_TRUE(got.empty());
}

TEST(LinkWatch, NamesTheInterfaceThatChanged) {
  std::string skip = in_own_netns([] {
    LinkWatch w;
    std::string err;
    ASSERT_TRUE(w.open(&err)) << err;
    EXPECT_NE(w.netns(), 0u);
    int ctl = ctl_socket();
    EXPECT_EQ(socket_netns(ctl), w.netns()) << "same namespace, same identity";
    std::vector<LinkName> got;
    EXPECT_TRUE(w.drain(&got));
    EXPECT_TRUE(got.empty()) << "nothing changed yet";
    ASSERT_EQ(if_set_flags(ctl, "lo", IFF_UP, 0), 0);
    EXPECT_TRUE(w.drain(&got));
    const LinkName lo{LinkName::kOwnNamespace, if_index(ctl, "lo")};
    EXPECT_NE(std::find(got.begin(), got.end(), lo), got.end()) << "lo came up";
    close(ctl);
  });
  if (!skip.empty()) GTEST_SKIP() << skip;
}

// Without CAP_NET_BROADCAST (an unprivileged vpcd) the kernel refuses the
// other namespaces' messages: the watch still follows its own namespace,
// and says why it does no more (vpcd logs it; `vpcctl status` shows it).
TEST(LinkWatch, UnprivilegedItWatchesItsOwnNamespaceAndSaysWhyNoMore) {
  // Capabilities belong to a thread: this one drops CAP_NET_BROADCAST from
  // its effective set (capset(2) itself, which changes only the caller).
  std::string got, skip;
  std::thread t([&] {
    __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[2]{};
    if (syscall(SYS_capget, &hdr, data) != 0) {
      skip = std::string("capget: ") + strerror(errno);
      return;
    }
    data[CAP_TO_INDEX(CAP_NET_BROADCAST)].effective &= ~CAP_TO_MASK(CAP_NET_BROADCAST);
    if (syscall(SYS_capset, &hdr, data) != 0) {
      skip = std::string("capset: ") + strerror(errno);
      return;
    }
    LinkWatch w;
    std::string err;
    if (!w.open(&err)) got = "open: " + err;
    else got = std::string(w.all_namespaces() ? "all" : "own") + "|" + w.all_namespaces_why();
  });
  t.join();
  if (!skip.empty()) GTEST_SKIP() << skip;
  EXPECT_EQ(got, "own|NETLINK_LISTEN_ALL_NSID: Operation not permitted");

  if (geteuid() != 0) return;  // the rest is what root has
  LinkWatch root;
  std::string err;
  ASSERT_TRUE(root.open(&err)) << err;
  EXPECT_TRUE(root.all_namespaces());
  EXPECT_EQ(root.all_namespaces_why(), "");
}

// A namespace with an id for itself (`ip netns set` naming it from inside)
// gets its own messages marked with that id. The watch still names them as
// its own, whether the id came before it opened or while it listened, and
// so does an RTM_DELNSID it marks so (a container's namespace going).
TEST(LinkWatch, OwnMessagesAreOwnWhenTheNamespaceHasAnIdForItself) {
  std::string skip = in_own_netns([] {
    int ctl = ctl_socket();
    ASSERT_EQ(system("ip link add vtself type veth peer name vtselfp"), 0);
    const int idx = if_index(ctl, "vtself");
    const LinkName own{LinkName::kOwnNamespace, idx};
    LinkWatch w;
    std::string err;
    ASSERT_TRUE(w.open(&err)) << err;
    std::vector<LinkName> got;
    w.drain(&got);

    // The id comes while the watch listens.
    const int nl = rtnl_socket();
    ASSERT_GE(nl, 0);
    const int self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    ASSERT_GE(self, 0);
    const int id = netns_id(nl, self);
    ASSERT_GE(id, 0) << strerror(-id);
    ASSERT_EQ(if_set_flags(ctl, "vtself", IFF_UP, 0), 0);
    got.clear();
    EXPECT_TRUE(w.drain(&got));
    EXPECT_NE(std::find(got.begin(), got.end(), own), got.end()) << "came up, named as ours";
    EXPECT_EQ(std::find(got.begin(), got.end(), LinkName{id, idx}), got.end()) << "not as namespace " << id;

    // A watch opened after the id was given.
    LinkWatch w2;
    ASSERT_TRUE(w2.open(&err)) << err;
    ASSERT_EQ(if_set_flags(ctl, "vtself", 0, IFF_UP), 0);
    got.clear();
    EXPECT_TRUE(w2.drain(&got));
    EXPECT_NE(std::find(got.begin(), got.end(), own), got.end()) << "went down, named as ours";

    // A container's namespace with an id here goes: its RTM_DELNSID, marked
    // with our own id, still names it.
    {
      ContainerNetns c;
      ASSERT_TRUE(c.ok());
      const std::string path = "/proc/" + c.id() + "/ns/net";
      const int cfd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
      ASSERT_GE(cfd, 0);
      const int cid = netns_id(nl, cfd);
      close(cfd);
      ASSERT_GE(cid, 0);
      w2.drain(&got);
      got.clear();
      c.end();
      bool gone = false;
      for (int i = 0; i < 200 && !gone; ++i) {
        w2.drain(&got);
        gone = std::find(got.begin(), got.end(), LinkName{cid, 0}) != got.end();
        if (!gone) usleep(10000);
      }
      EXPECT_TRUE(gone) << "the container's namespace went unnoticed";
    }
    close(self);
    close(nl);
    close(ctl);
  });
  if (!skip.empty()) GTEST_SKIP() << skip;
}

class LinkWatchEngine : public testutil::EngineHarness {
 public:
  static constexpr int kPorts = 40;
  std::vector<PortId> ports;
  uint64_t t_ms = 0;

  uint64_t counter(EngineCounter k) { return cnt_read(engine().engine_counters().c[size_t(k)]); }
  static std::string tap_name(int i) { return "vtlw" + std::to_string(i); }

  // 40 tap ports on one switch, the engine stepped for 1.2 s so that every
  // port has been checked (and is watched).
  void start(uint32_t period_ms = 100) {
    EngineOptions o = testutil::small_engine_options();
    o.idle_poll_ms = period_ms;
    make_engine(o);
    SwitchConfig sc;
    sc.vni = 10;
    Result sw = try_create_switch(sc);
    ASSERT_TRUE(sw.ok()) << sw.message;
    for (int i = 0; i < kPorts; ++i) {
      auto c = cmd(CmdOp::kCreatePort);
      c->new_port = TapPort::open(tap_name(i), KernelPortOptions{}, engine().pool(), std::make_shared<PortStatus>());
      c->untagged = sw.id;
      Result r = run(std::move(c));
      ASSERT_TRUE(r.ok()) << r.message;
      ports.push_back(r.id);
    }
    step_to(12 * period_ms);
  }
  void step_to(uint64_t until_ms, uint64_t step_ms = 5) {
    for (; t_ms < until_ms; t_ms += step_ms) engine().run_once_at(t_ms * kMs);
  }
  size_t downs() {
    size_t n = 0;
    for (const Event& e : events())
      if (e.type == EventType::kLink && !e.up) ++n;
    return n;
  }
};

TEST(LinkWatch, EngineChecksTheNamedPortAtTheNextSliceAndTheOthersRarely) {
  std::string skip = in_own_netns([] {
    LinkWatchEngine h;
    h.start();
    ASSERT_EQ(h.downs(), 0u) << "every tap up";
    EXPECT_EQ(h.counter(EngineCounter::link_watch), 2u) << "listening here and in namespaces with an id";
    EXPECT_EQ(h.engine().link_watch_mode(), 2u);
    EXPECT_EQ(h.engine().link_watch_why(), "") << "nothing refused";

    // Quiet: a watched tap is checked every 10 s (WatchKey::recheck_ms), not
    // on the round robin's turn (8 checks every 25 ms: 3,520 in 11 s).
    uint64_t before = h.counter(EngineCounter::link_checks);
    h.step_to(h.t_ms + 11000);
    const uint64_t quiet = h.counter(EngineCounter::link_checks) - before;
    EXPECT_GE(quiet, uint64_t(LinkWatchEngine::kPorts)) << "every port still checked";
    EXPECT_LE(quiet, uint64_t(2 * LinkWatchEngine::kPorts)) << "once or twice in 11 s each";

    // One interface goes down: its port is reported at the next slice (the
    // engine's clock moves 25 ms), long before its round robin turn.
    int ctl = ctl_socket();
    ASSERT_EQ(if_set_flags(ctl, LinkWatchEngine::tap_name(17), 0, IFF_UP), 0);
    const uint64_t msgs = h.counter(EngineCounter::link_messages);
    h.step_to(h.t_ms + 30);
    EXPECT_GT(h.counter(EngineCounter::link_messages), msgs);
    std::vector<Event> ev = h.events_of(EventType::kLink);
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_EQ(ev[0].port, h.ports[17]);
    EXPECT_EQ(ev[0].up, 0);

    // All of them: a slice's worth (8) each 25 ms, all 40 within 5 slices.
    for (int i = 0; i < LinkWatchEngine::kPorts; ++i)
      if (i != 17) if_set_flags(ctl, LinkWatchEngine::tap_name(i), 0, IFF_UP);
    h.step_to(h.t_ms + 5 * 25 + 10);
    EXPECT_EQ(h.downs(), size_t(LinkWatchEngine::kPorts));
    std::set<PortId> seen;
    for (const Event& e : h.events_of(EventType::kLink)) seen.insert(e.port);
    EXPECT_EQ(seen.size(), size_t(LinkWatchEngine::kPorts)) << "each port once";

    // A deleted interface: the port notices at once and comes back on its own
    // (polled while it reopens; watched again once open).
    const size_t events_before = h.events_of(EventType::kLink).size();
    ASSERT_EQ(system(("ip link del " + LinkWatchEngine::tap_name(3) + " 2>/dev/null").c_str()), 0);
    h.step_to(h.t_ms + 30);
    EXPECT_EQ(h.events_of(EventType::kLink).size(), events_before) << "it was down already: no new event";
    h.step_to(h.t_ms + 3000);
    EXPECT_EQ(h.events_of(EventType::kLink).size(), events_before + 1) << "the recreated tap is up again";
    EXPECT_EQ(h.events_of(EventType::kLink).back().up, 1);
    EXPECT_EQ(h.events_of(EventType::kLink).back().port, h.ports[3]);
    close(ctl);
    EXPECT_EQ(h.engine().check_invariants(), "");
    h.destroy_all();
  }, "/dev/net/tun");
  if (!skip.empty()) GTEST_SKIP() << skip;
}

// A Core (no engine: the test drives it) with one tap port, checked by the
// slice due at 0 ms; its clock then stands at 1 ms, the next slice at 25.
std::unique_ptr<Core> core_with_tap(const char* tap) {
  CoreOptions o;
  o.pool.count = 1024;
  o.pool.hugepages = false;
  o.max_ports = 4;
  auto core = std::make_unique<Core>(o);
  core->set_now_ms(0);
  core->open_port(TapPort::open(tap, KernelPortOptions{}, core->pool_ptr(), std::make_shared<PortStatus>()),
                  PortConfig{}, false);
  core->tick_links(100);
  core->set_now_ms(1);
  core->tick_links(100);
  return core;
}

// An engine asleep in poll(2) wakes for the message and checks the named
// port at once, between slices. Driven on the Core directly: the clock
// stands between two slices, so only the wake can bring the check.
TEST(LinkWatch, ASleepingEngineWakesForALinkMessageAndChecksThePort) {
  std::string skip = in_own_netns([] {
    auto c = core_with_tap("vtlw0");
    Core& core = *c;
    const PortId p = core.active_ports().at(0);
    ASSERT_GT(core.port(p).watch_ifindex, 0) << "checked once: watched, the tap is in the watch's namespace";
    ASSERT_TRUE(core.port(p).up);
    int ctl = ctl_socket();
    ASSERT_EQ(if_set_flags(ctl, "vtlw0", 0, IFF_UP), 0);
    core.tick_links(100);
    EXPECT_TRUE(core.port(p).up) << "not due, not woken: not checked yet";
    core.sleep_until_work(5000);  // returns at once: the message is there
    core.tick_links(100);
    EXPECT_FALSE(core.port(p).up);
    Event ev[4];
    ASSERT_EQ(core.drain_events(ev, 4), 1u);
    EXPECT_EQ(ev[0].type, EventType::kLink);
    EXPECT_EQ(ev[0].port, p);
    EXPECT_EQ(ev[0].up, 0);
    close(ctl);
    core.close_port(p);
  }, "/dev/net/tun");
  if (!skip.empty()) GTEST_SKIP() << skip;
}

// A tap followed into a container's namespace stays watched there: the
// kernel's messages of that namespace (by the id ours has for it) wake the
// engine, and so does the namespace's end. The clock stands between two
// slices throughout, so only the messages bring the checks.
TEST(LinkWatch, ATapInAContainersNamespaceIsWatchedThereAndWhenItGoes) {
  std::string skip = in_own_netns([] {
    auto c = core_with_tap("vtlwmv");
    Core& core = *c;
    const PortId p = core.active_ports().at(0);
    // Wakes for a message, checks what it named; the events since.
    std::vector<Event> got;
    auto wake_and_check = [&] {
      core.sleep_until_work(2000);
      core.tick_links(100);
      Event ev[8];
      for (uint32_t n; (n = core.drain_events(ev, 8)) != 0;) got.insert(got.end(), ev, ev + n);
    };
    ContainerNetns container;
    ASSERT_TRUE(container.ok());
    const std::string ns = container.id();
    ASSERT_EQ(system(("ip link set dev vtlwmv netns " + ns).c_str()), 0);
    wake_and_check();  // RTM_DELLINK here: the port follows the tap (down: a move takes it down)
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].up, 0);
    EXPECT_GE(core.port(p).watch_nsid, 0) << "watched by the id ours has for the container's namespace";
    EXPECT_GT(core.port(p).watch_ifindex, 0);
    ASSERT_EQ(system(("nsenter -t " + ns + " -n ip link set dev vtlwmv up").c_str()), 0);
    wake_and_check();  // that namespace's RTM_NEWLINK
    ASSERT_EQ(got.size(), 2u) << "up in the container, seen from here";
    EXPECT_EQ(got[1].up, 1);
    container.end();  // the container goes: RTM_DELNSID, then the tap goes too
    // (The namespace is dismantled in the background. Nothing reads the
    // tap's queue here, so its descriptor may stay readable and the sleep
    // return at once: hence the pause.)
    for (int i = 0; i < 300 && got.size() < 3; ++i) {
      wake_and_check();
      if (got.size() < 3) usleep(10000);
    }
    ASSERT_EQ(got.size(), 3u) << "the namespace's end was noticed";
    EXPECT_EQ(got[2].up, 0);
    // Then the round robin finds the tap deleted and the port creates it
    // again at home.
    for (uint32_t t = 25; t < 5000 && got.size() < 4; t += 25) {
      core.set_now_ms(t);
      core.tick_links(100);
      Event ev[8];
      for (uint32_t n; (n = core.drain_events(ev, 8)) != 0;) got.insert(got.end(), ev, ev + n);
      if (got.size() < 4) usleep(2000);
    }
    ASSERT_EQ(got.size(), 4u) << "back";
    EXPECT_EQ(got[3].up, 1);
    EXPECT_NE(if_nametoindex("vtlwmv"), 0u);
    core.close_port(p);
  }, "/dev/net/tun");
  if (!skip.empty()) GTEST_SKIP() << skip;
}

}  // namespace
}  // namespace vpc

namespace vpc {
namespace {

// What the kernel path asks before it hands a decapsulated frame straight to
// a guest's end of its veth (bpf_redirect_peer): a veth, the other end in
// another namespace (else the helper drops the frame), and no qdisc on this
// end that the shortcut would skip.
TEST(LinkWatch, AVethIsAPeerIngressOnlyWithItsOtherEndElsewhereAndNoQdisc) {
  std::string skip = in_own_netns([] {
    ASSERT_EQ(system("ip link add vtpia type veth peer name vtpib && ip link set vtpia up && ip link set vtpib up"), 0);
    const int nl = rtnl_socket();
    ASSERT_GE(nl, 0);
    const int idx = int(if_nametoindex("vtpia"));
    EXPECT_EQ(veth_peer_ingress(nl, idx), 0) << "both ends here";
    EXPECT_EQ(veth_peer_ingress(nl, int(if_nametoindex("lo"))), 0) << "not a veth";
    ContainerNetns guest;
    ASSERT_TRUE(guest.ok());
    ASSERT_EQ(system(("ip link set vtpib netns " + guest.id()).c_str()), 0);
    EXPECT_EQ(veth_peer_ingress(nl, idx), 1) << "the other end in the guest's namespace, noqueue";
    ASSERT_EQ(system("tc qdisc add dev vtpia root tbf rate 100mbit burst 32kbit latency 50ms"), 0);
    EXPECT_EQ(veth_peer_ingress(nl, idx), 0) << "a shaper on this end's transmit side";
    ASSERT_EQ(system("tc qdisc del dev vtpia root"), 0);
    EXPECT_EQ(veth_peer_ingress(nl, idx), 1);
    EXPECT_LT(veth_peer_ingress(nl, 999999), 0) << "no such interface: netlink's error";
    close(nl);
    guest.end();
  });
  if (!skip.empty()) GTEST_SKIP() << skip;
}

// The netlink helpers the uplink's GRO stage is made, counted and deleted
// with (ports/kpath.cc): a veth pair with its queues and MTU; the transmit
// drops of an end whose other end is down (a frame sent into it is lost
// there, and counted); deleting one end takes both.
TEST(LinkWatch, AVethPairIsMadeItsTransmitDropsReadAndDeleted) {
  std::string skip = in_own_netns([] {
    const int nl = rtnl_socket(), ctl = ctl_socket();
    ASSERT_GE(nl, 0);
    ASSERT_GE(ctl, 0);
    ASSERT_EQ(veth_pair_create(nl, "vtgroa", "vtgrob", 9000, 3), 0);
    EXPECT_EQ(veth_pair_create(nl, "vtgroa", "vtgroc", 9000, 3), -EEXIST);
    EXPECT_EQ(if_mtu(ctl, "vtgroa"), 9000);
    EXPECT_EQ(if_mtu(ctl, "vtgrob"), 9000);
    EXPECT_EQ(if_rx_queues(ctl, "vtgrob"), 3u);
    const int a = if_index(ctl, "vtgroa");
    ASSERT_GT(a, 0);
    uint64_t dropped = 99;
    ASSERT_EQ(link_tx_dropped(nl, a, &dropped), 0);
    EXPECT_EQ(dropped, 0u);
    ASSERT_EQ(if_set_flags(ctl, "vtgroa", IFF_UP, 0), 0);  // b stays down: what a sends is lost
    const int s = socket(AF_PACKET, SOCK_RAW, 0);
    ASSERT_GE(s, 0);
    sockaddr_ll to{};
    to.sll_family = AF_PACKET;
    to.sll_ifindex = a;
    to.sll_halen = 6;
    uint8_t frame[60] = {0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x88, 0xb5};
    for (int i = 0; i < 3; ++i) ASSERT_EQ(sendto(s, frame, sizeof frame, 0, reinterpret_cast<sockaddr*>(&to), sizeof to), ssize_t(sizeof frame));
    close(s);
    ASSERT_EQ(link_tx_dropped(nl, a, &dropped), 0);
    EXPECT_EQ(dropped, 3u);
    EXPECT_EQ(link_delete(nl, "vtgroa"), 0);
    EXPECT_EQ(if_index(ctl, "vtgrob"), -ENODEV) << "its other end went with it";
    EXPECT_EQ(link_delete(nl, "vtgroa"), -ENODEV);
    close(nl);
    close(ctl);
  });
  if (!skip.empty()) GTEST_SKIP() << skip;
}

}  // namespace
}  // namespace vpc
