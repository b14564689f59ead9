// taprelay: the ceiling of a switch that holds tap fds on one thread (npm run
// bench -- e2e tcp, system `tap-relay`).
//
//   taprelay --a IFNAME --b IFNAME [--cpu C] [--max-seconds S]
//
// Creates two taps in its network namespace with what this switch's tap
// ports ask for (IFF_VNET_HDR, a 10-byte virtio-net header, TUNSETOFFLOAD
// csum tso4 tso6 tso_ecn), so a guest on either sends TSO super-frames and
// partial checksums. One thread (pinned to --cpu, or not pinned with -1)
// then moves every frame from one tap to the other as it came, header and
// all: one read() and one write() per frame, no switching, no learning, no
// copy of its own. Every byte still crosses user space twice (the tap's
// read copies it out, the other tap's write copies it in, and runs the
// receiving guest's stack in the writer's context), which is the part no
// user-space holder of a tap can avoid. What this relay moves is what those
// two copies on one thread allow on the machine; the switch's tap ports are
// measured against it.
//
// Prints "ready" on stdout once the taps exist (the caller moves them into
// the guests' namespaces), relays until stdin closes or --max-seconds pass,
// then prints one JSON object: frames and bytes each way, failed writes.
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

[[noreturn]] void die(const std::string& msg) {
  std::fprintf(stderr, "taprelay: %s\n", msg.c_str());
  std::exit(2);
}

constexpr int kVnetHdr = 10;     // struct virtio_net_hdr, as the switch's tap ports use it
constexpr size_t kFrame = 65536 + kVnetHdr + 64;  // a 64 KiB super-frame, its header and its Ethernet/VLAN header
constexpr int kBurst = 64;  // frames from one tap before the other gets its turn

int open_tap(const std::string& name) {
  int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) die("/dev/net/tun: " + std::string(std::strerror(errno)));
  ifreq ifr{};
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
  std::strncpy(ifr.ifr_name, name.c_str(), IFNAMSIZ - 1);
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) die("TUNSETIFF " + name + ": " + std::strerror(errno));
  int sz = kVnetHdr;
  if (ioctl(fd, TUNSETVNETHDRSZ, &sz) < 0) die("TUNSETVNETHDRSZ " + name + ": " + std::strerror(errno));
  unsigned offl = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN;
  if (ioctl(fd, TUNSETOFFLOAD, offl) < 0) die("TUNSETOFFLOAD " + name + ": " + std::strerror(errno));
  return fd;
}

struct Way {
  uint64_t frames = 0, bytes = 0, write_errors = 0;
};

double now_s() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return double(ts.tv_sec) + double(ts.tv_nsec) / 1e9;
}

// Up to kBurst frames from `from` to `to`; true if `from` may have more.
bool relay(int from, int to, std::vector<uint8_t>& buf, Way& w) {
  for (int i = 0; i < kBurst; ++i) {
    ssize_t n = read(from, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;  // EAGAIN: drained (anything else: the poll says so next)
    }
    if (n <= kVnetHdr) continue;
    if (write(to, buf.data(), size_t(n)) != n) {
      ++w.write_errors;
      continue;
    }
    ++w.frames;
    w.bytes += uint64_t(n - kVnetHdr);
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  std::string a, b;
  int cpu = -1;
  double max_seconds = 300;
  for (int i = 1; i < argc; ++i) {
    std::string k = argv[i];
    auto val = [&]() -> std::string {
      if (i + 1 >= argc) die(k + " needs a value");
      return argv[++i];
    };
    if (k == "--a") a = val();
    else if (k == "--b") b = val();
    else if (k == "--cpu") cpu = std::atoi(val().c_str());
    else if (k == "--max-seconds") max_seconds = std::atof(val().c_str());
    else die("unknown option " + k + " (use --a IF --b IF [--cpu C] [--max-seconds S])");
  }
  if (a.empty() || b.empty() || a.size() > 15 || b.size() > 15 || a == b) die("--a and --b name two taps (1-15 characters)");
  if (!(max_seconds > 0 && max_seconds <= 3600)) die("--max-seconds must be in (0, 3600]");
  if (cpu >= 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof set, &set) < 0) die("--cpu " + std::to_string(cpu) + ": " + std::strerror(errno));
  }
  int fa = open_tap(a), fb = open_tap(b);
  std::printf("ready\n");
  std::fflush(stdout);

  std::vector<uint8_t> buf(kFrame);
  Way ab, ba;
  const double deadline = now_s() + max_seconds;
  pollfd p[3] = {{fa, POLLIN, 0}, {fb, POLLIN, 0}, {STDIN_FILENO, POLLIN, 0}};
  for (;;) {
    // Drain both taps in turns; sleep in poll() only when both are empty.
    bool more = true;
    while (more) {
      more = relay(fa, fb, buf, ab);
      more = relay(fb, fa, buf, ba) || more;
      if (now_s() > deadline) break;
    }
    if (now_s() > deadline) break;
    int r = poll(p, 3, 200);
    if (r < 0 && errno != EINTR) die(std::string("poll: ") + std::strerror(errno));
    if (p[2].revents) {
      char c[64];
      if (read(STDIN_FILENO, c, sizeof c) <= 0) break;  // the caller is done
    }
    if ((p[0].revents | p[1].revents) & (POLLERR | POLLHUP | POLLNVAL)) die("a tap went away");
  }
  std::printf(
      "{\"a_to_b\":{\"frames\":%llu,\"bytes\":%llu,\"write_errors\":%llu},"
      "\"b_to_a\":{\"frames\":%llu,\"bytes\":%llu,\"write_errors\":%llu}}\n",
      (unsigned long long)ab.frames, (unsigned long long)ab.bytes, (unsigned long long)ab.write_errors,
      (unsigned long long)ba.frames, (unsigned long long)ba.bytes, (unsigned long long)ba.write_errors);
  return 0;
}
