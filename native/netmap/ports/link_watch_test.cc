// The kernel's link messages (ports/link_watch.h) and the engine's use of
// them (Core::link_slices): a port whose interface changes is checked at
// the next slice, not on its turn of the round robin, and a port the watch
// covers is otherwise checked only as often as it asks (a tap every 10 s). The engine tests run alone in a
// network namespace of their own with taps the ports create; they need root
// and /dev/net/tun, and are skipped with the reason otherwise.
#include "ports/link_watch.h"

#include <gtest/gtest.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <unistd.h>

#include <cstring>
#include <set>
#include <string>
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
  std::vector<uint8_t> b;
  put_msg(&b, RTM_NEWLINK, 7, 3);  // odd length: the next message is aligned
  put_msg(&b, RTM_NEWADDR, 8);
  put_msg(&b, RTM_DELLINK, 9);
  put_msg(&b, RTM_NEWLINK, 0);  // no interface named
  std::vector<int> got;
  EXPECT_TRUE(parse_link_messages(b.data(), b.size(), &got));
  EXPECT_EQ(got, (std::vector<int>{7, 9}));

  // A length past the end, or shorter than a header: malformed, what came
  // before is kept.
  std::vector<uint8_t> bad;
  put_msg(&bad, RTM_NEWLINK, 3);
  put_msg(&bad, RTM_NEWLINK, 4);
  uint32_t len = 4096;
  std::memcpy(bad.data() + NLMSG_ALIGN(NLMSG_LENGTH(sizeof(ifinfomsg))), &len, sizeof(len));
  got.clear();
  EXPECT_FALSE(parse_link_messages(bad.data(), bad.size(), &got));
  EXPECT_EQ(got, (std::vector<int>{3}));
  len = 4;
  std::memcpy(bad.data(), &len, sizeof(len));
  got.clear();
  EXPECT_FALSE(parse_link_messages(bad.data(), bad.size(), &got));
  EXPECT_TRUE(got.empty());
  // A message too short for its ifinfomsg names nothing.
  std::vector<uint8_t> shortmsg(NLMSG_HDRLEN, 0);
  nlmsghdr h{};
  h.nlmsg_len = NLMSG_HDRLEN;
  h.nlmsg_type = RTM_NEWLINK;
  std::memcpy(shortmsg.data(), &h, sizeof(h));
  EXPECT_TRUE(parse_link_messages(shortmsg.data(), shortmsg.size(), &got));
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
    std::vector<int> got;
    EXPECT_TRUE(w.drain(&got));
    EXPECT_TRUE(got.empty()) << "nothing changed yet";
    ASSERT_EQ(if_set_flags(ctl, "lo", IFF_UP, 0), 0);
    EXPECT_TRUE(w.drain(&got));
    EXPECT_NE(std::find(got.begin(), got.end(), if_index(ctl, "lo")), got.end()) << "lo came up";
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

// An engine asleep in poll(2) wakes for the message and checks the named
// port at once, between slices. Driven on the Core directly: the clock
// stands between two slices, so only the wake can bring the check.
TEST(LinkWatch, ASleepingEngineWakesForALinkMessageAndChecksThePort) {
  std::string skip = in_own_netns([] {
    CoreOptions o;
    o.pool.count = 1024;
    o.pool.hugepages = false;
    o.max_ports = 4;
    Core core(o);
    core.set_now_ms(0);
    PortId p = core.open_port(TapPort::open("vtlw0", KernelPortOptions{}, core.pool_ptr(), std::make_shared<PortStatus>()),
                              PortConfig{}, false);
    ASSERT_NE(p, kNoId);
    core.tick_links(100);  // the slice due at 0 checks the port: now watched
    ASSERT_GT(core.port(p).watch_ifindex, 0) << "the tap is in the watch's namespace";
    ASSERT_TRUE(core.port(p).up);
    core.set_now_ms(1);  // the next slice is at 25 ms
    core.tick_links(100);
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

}  // namespace
}  // namespace vpc
