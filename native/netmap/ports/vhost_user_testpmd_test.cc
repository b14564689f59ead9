// Functional tests of vhost-user ports against a real front end: DPDK's
// testpmd with its virtio-user vdev (no VM, no hugepages). The engine runs
// with two vhost-user ports on one switch; one testpmd process owns both
// virtio-user ports (two busy pollers on a 2-core machine, not three).
//
// Every run gets its own socket directory and DPDK file prefix; testpmd is
// started with fork/exec and stopped by its PID (SIGINT, then SIGKILL).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <dirent.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <regex>
#include <sstream>

#include "core/test_harness.h"
#include "ports/vhost_user.h"

namespace vpc {
namespace {

using testutil::wait_until;

constexpr const char* kTestpmd = "/usr/bin/dpdk-testpmd";

std::string unique_dir() {
  static std::atomic<int> n{0};
  std::string d = "/tmp/vpc-vhost-" + std::to_string(getpid()) + "-" + std::to_string(n++);
  mkdir(d.c_str(), 0700);
  return d;
}

struct Testpmd {
  pid_t pid = -1;
  int cmd_fd = -1;  // interactive mode: testpmd's stdin
  std::string log;
  ~Testpmd() { stop(); }
  // vdevs: "net_virtio_user0,path=..." strings; args after "--"; eal: more
  // EAL arguments. With `interactive`, testpmd reads commands from a pipe
  // (command()); otherwise its stdin is /dev/null.
  bool start(const std::string& prefix, const std::vector<std::string>& vdevs, const std::vector<std::string>& args,
             const std::string& logfile, bool interactive = false, const std::vector<std::string>& eal = {},
             const std::string& mem = "512") {
    log = logfile;
    std::vector<std::string> argv = {kTestpmd, "--no-huge", "-m", mem, "--no-pci", "--file-prefix", prefix,
                                     "--log-level", "lib.eal:error"};
    for (const auto& e : eal) argv.push_back(e);
    for (const auto& v : vdevs) {
      argv.push_back("--vdev");
      argv.push_back(v);
    }
    argv.push_back("--");
    if (interactive) argv.push_back("-i");
    for (const auto& a : args) argv.push_back(a);
    // Everything the child needs is made before fork(): this process has
    // other threads (the engine's, the vhost-user ports'), and one of them
    // may hold a lock (an allocator's, stdio's) at fork time; the child, a
    // copy of this thread alone, would wait for it forever. In the
    // sanitizer runs the test failed so, twice in three CI runs: no link,
    // and an empty log even after SIGINT, which testpmd answers with its
    // totals: the child was still waiting before exec (in freopen()) when
    // SIGINT ended it. Between fork and exec it now only dup2()s and execs.
    std::vector<char*> av;
    for (auto& s : argv) av.push_back(s.data());
    av.push_back(nullptr);
    int in[2] = {-1, -1};
    if (interactive && pipe2(in, O_CLOEXEC) != 0) return false;
    const int out = ::open(logfile.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    const int src = interactive ? in[0] : ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (out < 0 || src < 0) {
      for (int fd : {out, src, in[0], in[1]})
        if (fd >= 0) ::close(fd);
      return false;
    }
    pid = fork();
    if (pid == 0) {
      dup2(out, 1);  // dup2 clears O_CLOEXEC on the copy
      dup2(out, 2);
      dup2(src, 0);
      execv(kTestpmd, av.data());
      _exit(127);
    }
    ::close(out);
    if (!interactive) ::close(src);
    if (interactive) {
      ::close(in[0]);
      cmd_fd = in[1];
      if (pid < 0) {
        ::close(cmd_fd);
        cmd_fd = -1;
      }
    }
    return pid > 0;
  }
  void command(const std::string& line) {
    const std::string l = line + "\n";
    if (cmd_fd >= 0 && ::write(cmd_fd, l.data(), l.size()) != ssize_t(l.size())) ADD_FAILURE() << "testpmd stdin";
  }
  // Interactive mode: what the benchmark does at the end of a round. Waits
  // for the process to exit (SIGKILL after `ms`); false if it had to be killed.
  bool quit(int ms) {
    command("stop");
    command("quit");
    ::close(cmd_fd);
    cmd_fd = -1;
    for (int i = 0; i < ms / 10; ++i) {
      int st;
      if (waitpid(pid, &st, WNOHANG) == pid) {
        pid = -1;
        return true;
      }
      usleep(10000);
    }
    stop();
    return false;
  }
  std::string output() const {
    std::ifstream in(log);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  // SIGINT makes testpmd stop forwarding and print its totals.
  void stop() {
    if (cmd_fd >= 0) {
      ::close(cmd_fd);
      cmd_fd = -1;
    }
    if (pid <= 0) return;
    kill(pid, SIGINT);
    for (int i = 0; i < 100; ++i) {
      int st;
      if (waitpid(pid, &st, WNOHANG) == pid) {
        pid = -1;
        return;
      }
      usleep(50000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    pid = -1;
  }
};

// "RX-packets: N ... TX-packets: M" of the accumulated totals.
bool totals(const std::string& out, uint64_t* rx, uint64_t* tx) {
  auto at = out.rfind("Accumulated forward statistics for all ports");
  if (at == std::string::npos) return false;
  std::smatch m;
  std::string tail = out.substr(at);
  if (!std::regex_search(tail, m, std::regex("RX-packets: (\\d+)"))) return false;
  *rx = std::stoull(m[1]);
  if (!std::regex_search(tail, m, std::regex("TX-packets: (\\d+)"))) return false;
  *tx = std::stoull(m[1]);
  return true;
}

class VhostTestpmd : public ::testing::Test {
 protected:
  void SetUp() override {
    if (access(kTestpmd, X_OK) != 0) GTEST_SKIP() << kTestpmd << " is not installed (Debian: dpdk)";
    EngineOptions o;
    o.pool.count = 16384;
    o.pool.large_count = 64;
    o.pool.hugepages = false;
    h.make_engine(o);
    SwitchConfig sc;
    sc.vni = 100;
    sw = h.try_create_switch(sc).id;
    dir = unique_dir();
  }
  void TearDown() override {
    h.destroy_all();
    if (!dir.empty()) {
      unlink((dir + "/a.sock").c_str());
      unlink((dir + "/b.sock").c_str());
      rmdir(dir.c_str());
    }
  }
  PortId add_vhost(const std::string& sock, bool client, std::shared_ptr<PortStatus>* st) {
    *st = std::make_shared<PortStatus>();
    VhostUserOptions vo;
    vo.socket = sock;
    vo.client = client;
    auto c = testutil::EngineHarness::cmd(CmdOp::kCreatePort);
    c->new_port = VhostUserPort::open(vo, h.engine().pool(), *st);
    c->untagged = sw;
    Result r = h.run(std::move(c));
    EXPECT_TRUE(r.ok()) << r.message;
    return r.id;
  }
  uint64_t port_counter(PortId p, PortCounter k) {
    return cnt_read(h.engine().port_counters(p).c[size_t(k)]);
  }

  testutil::EngineHarness h;
  SwitchId sw = 0;
  std::string dir;
};

// One testpmd, io forwarding with --tx-first, owns both virtio-user ports:
// its first burst goes into port a, the switch floods it to b, testpmd
// sends it back out of the other port, and so on in a closed loop. Frames
// cross the switch both ways.
TEST_F(VhostTestpmd, IoLoopThroughTheSwitchBothWays) {
  std::shared_ptr<PortStatus> sa, sb;
  PortId a = add_vhost(dir + "/a.sock", false, &sa), b = add_vhost(dir + "/b.sock", false, &sb);
  h.engine().start();
  Testpmd t;
  ASSERT_TRUE(t.start("vpcvu" + std::to_string(getpid()),
                      {"net_virtio_user0,path=" + dir + "/a.sock", "net_virtio_user1,path=" + dir + "/b.sock"},
                      {"--forward-mode=io", "--tx-first", "--stats-period", "1", "--total-num-mbufs=16384",
                       "--nb-cores=1"},
                      dir + "/testpmd.log"));
  EXPECT_TRUE(wait_until([&] { return port_counter(a, PortCounter::link_up) && port_counter(b, PortCounter::link_up); },
                         20000))
      << t.output() << sa->error() << sb->error();
  EXPECT_TRUE(wait_until([&] {
    return port_counter(a, PortCounter::rx_packets) > 10000 && port_counter(b, PortCounter::rx_packets) > 10000 &&
           port_counter(a, PortCounter::tx_packets) > 10000 && port_counter(b, PortCounter::tx_packets) > 10000;
  }, 20000)) << t.output() << " a rx " << port_counter(a, PortCounter::rx_packets) << " b rx "
             << port_counter(b, PortCounter::rx_packets) << " " << sa->error() << sb->error();
  // A figure for the log (no assertion on it: the machine is shared).
  const uint64_t r0 = port_counter(a, PortCounter::rx_packets) + port_counter(b, PortCounter::rx_packets);
  const auto t0 = std::chrono::steady_clock::now();
  usleep(2000000);
  const uint64_t r1 = port_counter(a, PortCounter::rx_packets) + port_counter(b, PortCounter::rx_packets);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("[ figure   ] io loop through the switch: %.2f Mpps (both ports' rx)\n", double(r1 - r0) / s / 1e6);
  t.stop();
  uint64_t rx = 0, tx = 0;
  ASSERT_TRUE(totals(t.output(), &rx, &tx)) << t.output();
  EXPECT_GT(rx, 10000u);
  EXPECT_GT(tx, 10000u);
  // testpmd quit: both ports go down with the connection, and come back for
  // the next front end.
  EXPECT_TRUE(wait_until([&] { return !port_counter(a, PortCounter::link_up) && !port_counter(b, PortCounter::link_up); },
                         5000));
  EXPECT_FALSE(sa->vhost->connected.load());
  std::vector<VhostStatus::Queue> qs;
  std::vector<VhostStatus::Region> rs;
  sa->vhost->layout(&qs, &rs);
  EXPECT_TRUE(rs.empty()) << "mappings released";
  EXPECT_GE(sa->vhost->disconnects.load(), 1u);
}

// A front end connects, forwards and quits, again and again, against the
// same two switch ports: what `npm run bench -- e2e vhost` does with a fresh
// testpmd per round (interactive, both lcores on one CPU, mac forwarding,
// 1518-byte frames, queue_size=1024, `start tx_first 4` once both links are
// up, then `stop` and `quit`). Every cycle must come up (both links up, frames
// through both ports) and quit by itself; the switch must not keep anything
// of a gone front end (fds, mappings). The bound per cycle is a hang
// detector (a stalled front end waits forever), not a timing assertion.
TEST_F(VhostTestpmd, FrontEndReconnectsCycleAfterCycle) {
  std::shared_ptr<PortStatus> sa, sb;
  PortId a = add_vhost(dir + "/a.sock", false, &sa), b = add_vhost(dir + "/b.sock", false, &sb);
  h.engine().start();
  const char* env = getenv("VPC_VHOST_CYCLES");  // more cycles when hunting a rare failure
  const int cycles = env && atoi(env) > 0 ? atoi(env) : 15;
  const std::string mac[2] = {"02:00:00:00:0a:01", "02:00:00:00:0a:02"};
  const std::string cpu = std::to_string(sysconf(_SC_NPROCESSORS_ONLN) > 1 ? 1 : 0);
  size_t fds_after_first = 0, maps_after_first = 0;
  // Mappings: those of files only. A guest's memory is a file's (memfd,
  // hugepages) mapped per region; anonymous ones come and go with the C
  // library (a malloc arena made when a thread first allocates under
  // contention adds some, once, at a time that depends on timing).
  auto count = [](const char* path, bool lines) {
    size_t n = 0;
    if (lines) {
      std::ifstream in(path);
      for (std::string l; std::getline(in, l);) {
        std::istringstream f(l);
        std::string range, perms, off, dev, inode, name;
        f >> range >> perms >> off >> dev >> inode >> name;
        n += inode != "0" && !name.empty();
      }
    } else if (DIR* d = opendir(path)) {
      while (readdir(d)) ++n;
      closedir(d);
    }
    return n;
  };
  // As the benchmark's cases: one flow, then many (the tx_first bursts vary
  // the IPv4 source), cycle after cycle.
  auto args = [&](int c) {
    std::vector<std::string> v = {"--forward-mode=mac", "--eth-peer=0," + mac[1], "--eth-peer=1," + mac[0],
                                  "--burst=128", "--rxd=1024", "--txd=1024", "--total-num-mbufs=32768",
                                  "--txpkts=1514"};
    if (c % 2) v.push_back("--txonly-multi-flow");
    return v;
  };
  for (int c = 0; c < cycles; ++c) {
    const uint64_t ra = port_counter(a, PortCounter::rx_packets), rb = port_counter(b, PortCounter::rx_packets);
    const uint64_t connects = sa->vhost->connects.load() + sb->vhost->connects.load();
    Testpmd t;
    ASSERT_TRUE(t.start("vpcvr" + std::to_string(getpid()) + "c" + std::to_string(c),
                        {"net_virtio_user0,path=" + dir + "/a.sock,queue_size=1024,mac=" + mac[0],
                         "net_virtio_user1,path=" + dir + "/b.sock,queue_size=1024,mac=" + mac[1]},
                        args(c),
                        dir + "/testpmd.log", true, {"--lcores=0@" + cpu + ",1@" + cpu}, "1024"));
    auto state = [&] {
      std::ostringstream o;
      o << "cycle " << c << " of " << cycles << "; a: connects " << sa->vhost->connects.load() << " messages "
        << sa->vhost->messages.load() << " refused " << sa->vhost->refused.load() << " link "
        << port_counter(a, PortCounter::link_up) << " rx " << port_counter(a, PortCounter::rx_packets) - ra << " ("
        << sa->error() << "); b: connects " << sb->vhost->connects.load() << " messages "
        << sb->vhost->messages.load() << " refused " << sb->vhost->refused.load() << " link "
        << port_counter(b, PortCounter::link_up) << " rx " << port_counter(b, PortCounter::rx_packets) - rb << " ("
        << sb->error() << ")\n"
        << t.output();
      return o.str();
    };
    ASSERT_TRUE(wait_until([&] {
      return sa->vhost->connects.load() + sb->vhost->connects.load() >= connects + 2 &&
             port_counter(a, PortCounter::link_up) && port_counter(b, PortCounter::link_up);
    }, 30000)) << "the front end's ports did not come up: " << state();
    t.command("start tx_first 4");
    ASSERT_TRUE(wait_until([&] {
      return port_counter(a, PortCounter::rx_packets) > ra + 1000 && port_counter(b, PortCounter::rx_packets) > rb + 1000;
    }, 30000)) << "no frames through the switch: " << state();
    ASSERT_TRUE(t.quit(30000)) << "testpmd did not quit: " << state();
    ASSERT_TRUE(wait_until([&] { return !sa->vhost->connected.load() && !sb->vhost->connected.load(); }, 10000))
        << state();
    // What the switch holds with no front end: the same after every cycle.
    usleep(200000);  // the housekeeping that follows a disconnect
    const size_t fds = count("/proc/self/fd", false), maps = count("/proc/self/maps", true);
    if (c == 0) {
      fds_after_first = fds;
      maps_after_first = maps;
    } else {
      EXPECT_LE(fds, fds_after_first) << "cycle " << c << ": file descriptors leak";
      EXPECT_LE(maps, maps_after_first) << "cycle " << c << ": mappings leak";
    }
  }
  EXPECT_EQ(sa->vhost->refused.load(), 0u) << sa->error();
  EXPECT_EQ(sb->vhost->refused.load(), 0u) << sb->error();
  EXPECT_EQ(sa->vhost->connects.load(), uint64_t(cycles));
  EXPECT_EQ(sb->vhost->disconnects.load(), uint64_t(cycles));
}

// Client mode: testpmd owns socket a (server=1) and waits for the switch to
// connect. The switch side is then deleted and created again (what a vpcd
// restart does to its ports): it reconnects by itself and frames flow again.
// Two testpmd processes here (txonly into a, rxonly on b): a functional
// check, not a measurement.
TEST_F(VhostTestpmd, ClientModeReconnectsAfterTheSwitchSideRestarts) {
  std::shared_ptr<PortStatus> sa, sb;
  PortId b = add_vhost(dir + "/b.sock", false, &sb);
  h.engine().start();
  const std::string prefix = "vpcvc" + std::to_string(getpid());
  Testpmd rx, tx;
  ASSERT_TRUE(rx.start(prefix + "r", {"net_virtio_user1,path=" + dir + "/b.sock"},
                       {"--forward-mode=rxonly", "--stats-period", "1", "--total-num-mbufs=8192"}, dir + "/rx.log"));
  ASSERT_TRUE(tx.start(prefix + "t", {"net_virtio_user0,path=" + dir + "/a.sock,server=1"},
                       {"--forward-mode=txonly", "--stats-period", "1", "--total-num-mbufs=8192"}, dir + "/tx.log"));
  // testpmd creates the socket and blocks in accept(): the port connects
  // within a second of its creation, whichever came first.
  ASSERT_TRUE(wait_until([&] { return access((dir + "/a.sock").c_str(), F_OK) == 0; }, 20000)) << tx.output();
  PortId a = add_vhost(dir + "/a.sock", true, &sa);
  EXPECT_TRUE(wait_until([&] { return port_counter(a, PortCounter::rx_packets) > 1000 &&
                                      port_counter(b, PortCounter::tx_packets) > 1000; }, 30000))
      << tx.output() << rx.output() << sa->error() << sb->error();
  EXPECT_EQ(sa->vhost->connects.load(), 1u);

  // The switch side goes away and comes back.
  auto del = testutil::EngineHarness::cmd(CmdOp::kDeletePort);
  del->port = a;
  ASSERT_TRUE(h.run(std::move(del)).ok());
  const uint64_t b_before = port_counter(b, PortCounter::tx_packets);
  std::shared_ptr<PortStatus> sa2;
  PortId a2 = add_vhost(dir + "/a.sock", true, &sa2);
  EXPECT_TRUE(wait_until([&] { return port_counter(a2, PortCounter::rx_packets) > 1000 &&
                                      port_counter(b, PortCounter::tx_packets) > b_before + 1000; }, 30000))
      << tx.output() << sa2->error();
  EXPECT_GE(sa2->vhost->connects.load(), 1u);
  tx.stop();
  rx.stop();
  uint64_t rxn = 0, txn = 0;
  ASSERT_TRUE(totals(rx.output(), &rxn, &txn)) << rx.output();
  EXPECT_GT(rxn, 2000u) << "frames from a reached b's guest before and after the reconnection";
}

}  // namespace
}  // namespace vpc
