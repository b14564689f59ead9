#include "ports/tap.h"

#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <set>
#include <thread>

#include "ports/flow_hash.h"
#include "ports/ifutil.h"
#include "ports/link_watch.h"
#include "ports/vnet.h"
#include "proto/inet.h"

namespace vpc {

namespace {
// A socket keeps the network namespace it was created in. setns() changes
// only the calling thread's namespace, so a short-lived thread makes it.
int socket_in_netns(int nsfd) {
  int s = -1;
  std::thread t([&] {
    if (setns(nsfd, CLONE_NEWNET) == 0) s = ctl_socket();
  });
  t.join();
  return s;
}

// /dev/net/tun attaches to (or creates) a device by name in the namespace
// the descriptor was opened in: opened from a thread that entered `nsfd`
// (-1: ours). Returns the descriptor or -errno.
int open_tun_in(int nsfd, int flags) {
  if (nsfd < 0) {
    int fd = ::open("/dev/net/tun", flags);
    return fd < 0 ? -errno : fd;
  }
  int fd = -EBADF;
  std::thread t([&] {
    if (setns(nsfd, CLONE_NEWNET) < 0) {
      fd = -errno;
      return;
    }
    fd = ::open("/dev/net/tun", flags);
    if (fd < 0) fd = -errno;
  });
  t.join();
  return fd;
}

// Whether the namespace `nsfd` has a tun/tap device named `name`.
bool has_tun_device(int nsfd, const std::string& name) {
  bool found = false;
  std::thread t([&] {
    if (setns(nsfd, CLONE_NEWNET) < 0) return;
    int s = ctl_socket();
    if (s < 0) return;
    found = if_index(s, name) > 0 && if_driver(s, name) == "tun";
    close(s);
  });
  t.join();
  return found;
}

// A persistent tap the switch made, found again after a restart when it is
// no longer in the switch's namespace: a container's NIC that was moved
// there (ports.md, "VMs, containers and host stacks"). Looked for in the
// namespaces this process can open: the named ones (ip netns, CNI and
// podman under /run/netns, docker's under /run/docker/netns) and those of
// running processes. Returns an open descriptor of the first namespace that
// has a tun device of that name, or -1; `seen` counts them.
int find_tap_namespace(const std::string& name, uint64_t home, int* seen) {
  *seen = 0;
  std::vector<uint64_t> tried{home};
  int found = -1;
  auto consider = [&](const std::string& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    struct stat sb;
    if (fstat(fd, &sb) < 0 || std::find(tried.begin(), tried.end(), uint64_t(sb.st_ino)) != tried.end() ||
        tried.size() > 4096) {
      close(fd);
      return;
    }
    tried.push_back(sb.st_ino);
    if (!has_tun_device(fd, name)) {
      close(fd);
      return;
    }
    ++*seen;
    if (found < 0)
      found = fd;
    else
      close(fd);
  };
  auto each = [&](const char* dir, bool pids) {
    DIR* d = opendir(dir);
    if (!d) return;
    while (dirent* e = readdir(d)) {
      if (e->d_name[0] == '.') continue;
      if (pids && !(e->d_name[0] >= '1' && e->d_name[0] <= '9')) continue;
      consider(std::string(dir) + "/" + e->d_name + (pids ? "/ns/net" : ""));
    }
    closedir(d);
  };
  each("/run/netns", false);
  each("/run/docker/netns", false);
  each("/proc", true);
  return found;
}

// The network namespaces something holds besides descriptors: those of
// every task of every process, and those mounted (seen from here or from
// init's mount namespace: ip netns, CNI and docker keep theirs there).
// One scan of /proc serves every port that asks within 1.5 s (with many
// containers, many ports ask every 2 s). Off the engine thread.
std::set<uint64_t> held_namespaces() {
  static std::mutex mu;
  static std::set<uint64_t> cached;
  static uint64_t cached_ms = 0;
  std::lock_guard<std::mutex> g(mu);
  const uint64_t now = mono_ms();
  if (cached_ms != 0 && now - cached_ms < 1500) return cached;
  std::set<uint64_t> held;
  auto note = [&](const char* text) {  // every "net:[N]" in text
    for (const char* p = text; (p = std::strstr(p, "net:[")) != nullptr;) {
      p += 5;
      held.insert(std::strtoull(p, nullptr, 10));
    }
  };
  for (const char* mounts : {"/proc/self/mountinfo", "/proc/1/mountinfo"}) {
    std::ifstream in(mounts);
    std::string line;
    while (std::getline(in, line)) note(line.c_str());
  }
  // Every process is seen only from the initial PID namespace (its inode
  // is fixed: PROC_PID_INIT_INO). A vpcd in a container's PID namespace
  // cannot tell: then nothing counts as orphaned.
  char self_pid_ns[64] = {};
  const ssize_t sn = readlink("/proc/self/ns/pid", self_pid_ns, sizeof self_pid_ns - 1);
  const bool sees_all = sn > 0 && std::strcmp(self_pid_ns, "pid:[4026531836]") == 0;
  DIR* procs = sees_all ? opendir("/proc") : nullptr;
  if (procs) {
    char link[64];
    while (dirent* p = readdir(procs)) {
      if (!(p->d_name[0] >= '1' && p->d_name[0] <= '9')) continue;
      const std::string task_dir = std::string("/proc/") + p->d_name + "/task";
      DIR* tasks = opendir(task_dir.c_str());
      if (!tasks) continue;  // gone meanwhile
      while (dirent* t = readdir(tasks)) {
        if (t->d_name[0] == '.') continue;
        const ssize_t n = readlink((task_dir + "/" + t->d_name + "/ns/net").c_str(), link, sizeof link - 1);
        if (n <= 0) continue;
        link[n] = 0;
        note(link);
      }
      closedir(tasks);
    }
    closedir(procs);
  } else {
    held.insert(0);  // cannot tell: nothing counts as orphaned (see netns_orphaned)
  }
  cached = held;
  cached_ms = now;
  return held;
}

// Whether nothing but descriptors (ours) holds the network namespace `ino`
// (TapPort::check_link).
bool netns_orphaned(uint64_t ino) {
  const std::set<uint64_t> held = held_namespaces();
  return !held.count(0) && !held.count(ino);
}

constexpr uint32_t kDefaultDepth = 256;  // reads per queue and burst, writes in flight (io_uring)

}  // namespace

TapPort::TapPort(const std::string& ifname, const KernelPortOptions& opts, std::shared_ptr<BufferPool> pool,
                 std::shared_ptr<PortStatus> status)
    : ifname_(ifname), opts_(opts), pool_(std::move(pool)), status_(std::move(status)), cache_(pool_),
      scratch_(new uint8_t[kTapScratch]) {}

std::unique_ptr<TapPort> TapPort::open(const std::string& ifname, const KernelPortOptions& opts,
                                       std::shared_ptr<BufferPool> pool, std::shared_ptr<PortStatus> status) {
  if (opts.queues < 1 || opts.queues > 16)
    throw PortError(Status::kInvalidArgument, "queues: a tap port has 1..16 queues");
  if (Claim c = claim_interface(ifname); c != Claim::kOk)
    throw PortError(Status::kInUse, claim_refused("interface " + ifname, c));
  std::unique_ptr<TapPort> p(new TapPort(ifname, opts, std::move(pool), std::move(status)));
  p->claimed_ = true;
  p->ctl_ = ctl_socket();
  p->epfd_ = epoll_create1(EPOLL_CLOEXEC);
  if (p->ctl_ < 0 || p->epfd_ < 0) throw PortError(Status::kSystem, sys_error("tap:" + ifname + ": socket", errno, nullptr));
  p->home_netns_ = socket_netns(p->ctl_);
  p->created_ = if_index(p->ctl_, ifname) <= 0;
  // A persistent tap is not made again in our namespace when it lives in
  // another one (a container's, after a restart): the port attaches to it
  // there, as it would have followed it there. It stays the switch's own
  // (created_): made again here if it is ever deleted, as before.
  int away = -1, seen = 0;
  if (p->created_ && opts.persistent) away = find_tap_namespace(ifname, p->home_netns_, &seen);
  p->burst_ = opts.burst ? std::min<uint32_t>(opts.burst, kMaxBurst) : kMaxBurst;
  PortStatus& st = *p->status_;
  st.burst = p->burst_;
  st.queues = opts.queues;
  st.frame_size = p->pool_->max_frame();
  if (opts.io_uring != KernelPortOptions::IoUring::kOff) {
    const uint32_t rx_depth = opts.rx_ring ? opts.rx_ring : kDefaultDepth;
    const uint32_t tx_depth = opts.tx_ring ? opts.tx_ring : kDefaultDepth;
    std::string why;
    p->uring_ = TapUring::open(opts.queues, rx_depth, tx_depth, &p->cache_, p->status_.get(), &why);
    if (p->uring_) {
      st.rx_ring = rx_depth;
      st.tx_ring = tx_depth;
      st.set_io("io_uring: one waiting read per queue while idle, then up to " + std::to_string(rx_depth) +
                " reads per queue and burst, up to " + std::to_string(tx_depth) +
                " writes in flight; one io_uring_enter per burst");
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.fd = p->uring_->ring_fd();
      epoll_ctl(p->epfd_, EPOLL_CTL_ADD, p->uring_->ring_fd(), &ev);
    } else if (opts.io_uring == KernelPortOptions::IoUring::kOn) {
      throw PortError(Status::kSystem, "tap:" + ifname + ": ioUring is 'on' but " + why +
                                           "; use ioUring: 'auto' to fall back to one read()/write() per frame");
    } else {
      st.set_io("read()/write(), one system call per frame: " + why);
    }
  } else {
    st.set_io("read()/write(), one system call per frame (ioUring: 'off')");
  }
  Status code;
  std::string err;
  const bool opened = p->open_queues(&code, &err, away);
  struct stat away_st;
  if (opened && away >= 0 && fstat(away, &away_st) == 0) p->pinned_ino_ = away_st.st_ino;
  if (away >= 0) close(away);
  if (!opened) throw PortError(code, err);
  if (seen > 1)
    st.set_error("tap " + ifname + " was found in " + std::to_string(seen) +
                 " other network namespaces; the port attached to the first (rename the others)");
  st.set_offloads(std::string("virtio-net headers (IFF_VNET_HDR) with TUNSETOFFLOAD csum tso4 tso6 tso_ecn") +
                  (p->uso_ ? " uso4 uso6: the guest sends and receives checksum-partial frames, TSO super-frames and "
                             "UDP GSO batches up to 64 KiB"
                           : ": the guest sends and receives checksum-partial and TSO super-frames up to 64 KiB (no "
                             "UDP GSO: the kernel has no TUN_F_USO4/6, before Linux 6.2)"));
  // Bring it up; a device the switch found down goes down again at detach.
  unsigned fl = 0;
  if (if_flags(p->ctl_, ifname, &fl) == 0 && !(fl & IFF_UP)) {
    if (if_set_flags(p->ctl_, ifname, IFF_UP, 0) < 0)
      throw PortError(Status::kSystem, sys_error("tap:" + ifname + ": bringing the device up", errno, "CAP_NET_ADMIN"));
    p->brought_up_ = !p->created_;
  }
  return p;
}

TapPort::~TapPort() {
  if (brought_up_ && !fds_.empty()) set_down();
  close_queues();
  if (nl_ >= 0) close(nl_);
  if (ctl_ >= 0) close(ctl_);
  if (epfd_ >= 0) close(epfd_);
  if (claimed_) release_interface(ifname_);
}

bool TapPort::open_queues(Status* code, std::string* err, int nsfd) {
  const std::string where = "tap:" + ifname_;
  for (uint32_t q = 0; q < opts_.queues; ++q) {
    // With io_uring the descriptor blocks, so that the queue's one waiting
    // read is parked by the kernel until a frame comes (tap_uring.h).
    int fd = open_tun_in(nsfd, O_RDWR | O_CLOEXEC | (uring_ ? 0 : O_NONBLOCK));
    if (fd < 0) {
      int e = -fd;
      close_queues();
      *code = Status::kSystem;
      *err = e == ENOENT ? where + ": /dev/net/tun does not exist: load the tun module (modprobe tun)"
                         : sys_error(where + ": open /dev/net/tun", e, "CAP_NET_ADMIN");
      return false;
    }
    ifreq ifr{};
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR | (opts_.queues > 1 ? IFF_MULTI_QUEUE : 0);
    std::strncpy(ifr.ifr_name, ifname_.c_str(), IFNAMSIZ - 1);
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
      int e = errno;
      ::close(fd);
      close_queues();
      *code = Status::kSystem;
      if (e == EBUSY) {
        *code = Status::kInUse;
        *err = where + ": the tap is busy (another process, e.g. a VM, has it open" +
               std::string(opts_.queues > 1 ? "" : ", or it is a multi-queue tap: set queues > 1") +
               "). A VM's tap that its hypervisor holds is switched from the host side: use afpacket:" + ifname_ +
               " (or afxdp:" + ifname_ + ")";
      } else if (e == EINVAL) {
        *code = Status::kInvalidArgument;
        *err = where + ": an interface of that name exists but is not a " +
               (opts_.queues > 1 ? std::string("multi-queue ") : std::string()) +
               "tap device (for a veth or NIC use afpacket:" + ifname_ +
               (opts_.queues > 1 ? std::string("; for a single-queue tap set queues: 1)") : std::string(")"));
      } else {
        *err = sys_error(where + ": TUNSETIFF", e, "CAP_NET_ADMIN");
      }
      return false;
    }
    // The header's size and byte order (little endian: what ports/vnet.h
    // reads; a no-op on little-endian hosts, refused only by kernels without
    // cross-endian support, which are little endian), then the offloads the
    // switch takes from the guest.
    // UDP GSO both ways (TUN_F_USO4 | TUN_F_USO6, together or not at all)
    // where the kernel has it (Linux 6.2): a guest's UDP_SEGMENT batch then
    // crosses as one frame, as TSO does for TCP. The offloads are the
    // device's, so every queue asks for the same.
    int hdr_sz = int(kVnetHdrLen), le = 1;
    constexpr unsigned kTunFUso4 = 0x20, kTunFUso6 = 0x40;  // linux/if_tun.h, 6.2
    const unsigned offl = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN;
    bool set = ioctl(fd, TUNSETVNETHDRSZ, &hdr_sz) == 0;
    if (set && !(uso_ && ioctl(fd, TUNSETOFFLOAD, offl | kTunFUso4 | kTunFUso6) == 0)) {
      uso_ = false;
      set = ioctl(fd, TUNSETOFFLOAD, offl) == 0;
    }
    if (!set) {
      int e = errno;
      ::close(fd);
      close_queues();
      *code = Status::kSystem;
      *err = sys_error(where + ": TUNSETVNETHDRSZ/TUNSETOFFLOAD", e, "CAP_NET_ADMIN");
      return false;
    }
    ioctl(fd, TUNSETVNETLE, &le);
    // A persistent tap the switch created stays when the port closes it (the
    // VM, or the next start of the switch, attaches to it again); without it
    // the kernel removes the tap with its last descriptor.
    if (created_ && opts_.persistent && fds_.empty() && ioctl(fd, TUNSETPERSIST, 1) < 0) {
      int e = errno;
      ::close(fd);
      close_queues();
      *code = Status::kSystem;
      *err = sys_error(where + ": TUNSETPERSIST", e, "CAP_NET_ADMIN");
      return false;
    }
    if (!uring_) {
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.fd = fd;
      epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev);
    }
    fds_.push_back(fd);
  }
  if (uring_)
    for (uint32_t q = 0; q < fds_.size(); ++q) uring_->add_queue(q, fds_[q]);
  int idx = if_index(ctl_, ifname_);
  ifindex_ = idx > 0 ? idx : 0;
  status_->ifindex.store(ifindex_, std::memory_order_relaxed);
  status_->attached.store(true, std::memory_order_relaxed);
  dead_ = false;
  return true;
}

void TapPort::close_queues() {
  for (uint32_t q = 0; q < fds_.size(); ++q) {
    if (uring_) {
      uring_->close_queue(q);  // the kernel gives back the buffers of posted reads first
    } else if (epfd_ >= 0) {
      epoll_ctl(epfd_, EPOLL_CTL_DEL, fds_[q], nullptr);
    }
    ::close(fds_[q]);  // the last close removes a non-persistent tap the switch created
  }
  fds_.clear();
  if (status_) status_->attached.store(false, std::memory_order_relaxed);
}

void TapPort::detach() {
  if (brought_up_ && !fds_.empty()) set_down();
  brought_up_ = false;
  close_queues();
  cache_.flush();
}

uint16_t TapPort::rx_burst(Pkt* pkts, uint16_t max) {
  if (fds_.empty()) return 0;
  if (max > burst_) max = uint16_t(burst_);
  if (uring_) {
    uint16_t n = uring_->rx(pkts, max);
    if (uring_->dead()) dead_ = true;
    return n;
  }
  return rx_fallback(pkts, max);
}

uint16_t TapPort::rx_fallback(Pkt* pkts, uint16_t max) {
  uint16_t n = 0;
  const uint32_t nq = uint32_t(fds_.size());
  for (uint32_t k = 0; k < nq && n < max; ++k) {
    const uint32_t q = (rx_q_ + k) % nq;
    const int fd = fds_[q];
    const uint16_t first = n;
    while (n < max) {
      uint32_t idx;
      if (!cache_.alloc(&idx)) {
        status_->add(PortStatus::rx_no_buffer);  // leave the frames in the device queue
        return n;
      }
      const TapRead rd = tap_read_layout(*pool_, idx, kNoId, scratch_.get());
      ssize_t r = ::readv(fd, rd.iov, int(rd.iovcnt));
      if (r < 0) {
        int e = errno;
        cache_.free(idx);
        if (e == EAGAIN || e == EINTR) break;
        if (e == EFAULT || e == EINVAL || e == EMSGSIZE) {  // did not fit: consumed, not truncated
          status_->add(PortStatus::rx_too_big);
          continue;
        }
        dead_ = true;  // EBADFD/EIO: the device is gone; link_state() handles it
        return n;
      }
      if (r == 0) {
        cache_.free(idx);
        break;
      }
      Pkt p;
      const TapVerdict v = tap_read_done(cache_, idx, kNoId, scratch_.get(), uint32_t(r), &p, status_.get());
      if (v != TapVerdict::kRegular) cache_.free(idx);  // dropped, or copied into a large buffer
      if (v != TapVerdict::kDropped) pkts[n++] = p;
    }
    if (n != first && q < PortStatus::kMaxQueues) status_->queue_rx[q].fetch_add(n - first, std::memory_order_relaxed);
  }
  rx_q_++;
  return n;
}

bool TapPort::put_vnet(Pkt* p) {
  uint32_t off = pkt_off(*p);
  if (off < kVnetHdrLen) {
    // No room in front (rare: a frame placed at the start of its buffer):
    // move it up, if the buffer has the room at the end.
    if (kVnetHdrLen + p->len > pool_->capacity(p->buf)) return false;
    uint8_t* b = pool_->data(p->buf);
    std::memmove(b + kVnetHdrLen, b + off, p->len);
    p->off = uint16_t((p->off & kPktMeta) | kVnetHdrLen);
    off = kVnetHdrLen;
  }
  uint8_t* f = pool_->data(p->buf) + off;
  const OffloadMeta* meta = pkt_has_meta(*p) ? &pool_->meta(p->buf) : nullptr;
  vnet_write(meta, f - kVnetHdrLen);
  if (meta && meta->pending()) status_->add(PortStatus::tx_offload);
  return true;
}

uint16_t TapPort::tx_burst(Pkt* pkts, uint16_t n) {
  if (fds_.empty() || dead_) return 0;
  const uint32_t nq = uint32_t(fds_.size());
  if (n > kMaxBurst) n = kMaxBurst;
  // The header goes in front of each frame first (harmless for frames the
  // queue then has no room for: they go back to the engine, which frees
  // them). A frame that cannot take one is dropped and moved to the front,
  // so that what is not accepted stays at the end, as the engine expects.
  uint16_t dropped = 0;
  for (uint16_t i = 0; i < n; ++i) {
    if (put_vnet(&pkts[i])) continue;
    status_->add(PortStatus::tx_too_big);
    cache_.free(pkts[i].buf);
    std::memmove(pkts + dropped + 1, pkts + dropped, (i - dropped) * sizeof(Pkt));
    ++dropped;
  }
  Pkt* const out = pkts + dropped;
  const uint16_t m = uint16_t(n - dropped);
  if (uring_) {
    if (nq == 1) return uint16_t(dropped + uring_->tx(out, nullptr, m));
    uint8_t qs[kMaxBurst];
    for (uint16_t i = 0; i < m; ++i) qs[i] = flow_queue(pool_->data(out[i].buf) + pkt_off(out[i]), out[i].len, nq);
    return uint16_t(dropped + uring_->tx(out, qs, m));
  }
  uint16_t i = 0;
  for (; i < m; ++i) {
    const uint8_t* f = pool_->data(out[i].buf) + pkt_off(out[i]);
    const int fd = fds_[nq == 1 ? 0 : flow_queue(f, out[i].len, nq)];
    ssize_t r = ::write(fd, f - kVnetHdrLen, out[i].len + kVnetHdrLen);
    if (r < 0) {
      if (errno == EAGAIN) break;  // the rest stay with the engine (tx_ring_full)
      status_->add(PortStatus::tx_errors);
    }
    cache_.free(out[i].buf);
  }
  return uint16_t(dropped + i);
}

// Rare (a port deleted while the tap it found down and brought up lives in
// another namespace): a socket made there for the one call, and closed.
void TapPort::set_down() {
  ifreq ifr{};
  if (ioctl(fds_[0], TUNGETIFF, &ifr) < 0) return;
  if (nsid_ < 0) {
    if_set_flags(ctl_, ifr.ifr_name, 0, IFF_UP);
    return;
  }
  int nsfd = ioctl(fds_[0], TUNGETDEVNETNS);
  if (nsfd < 0) return;
  int s = socket_in_netns(nsfd);
  close(nsfd);
  if (s < 0) return;
  if_set_flags(s, ifr.ifr_name, 0, IFF_UP);
  close(s);
}

// The device's flags and index, wherever it is. In the switch's namespace
// an ioctl; in another one a netlink request by namespace id, so that the
// port holds nothing there (a socket would keep the namespace, and the tap
// in it, alive after its container is gone).
int TapPort::read_flags(const char* name, unsigned* flags) {
  if (nsid_ < 0) return if_flags(ctl_, name, flags);
  if (nl_ < 0) return -EBADF;
  int idx = 0;
  int r = link_get_by_nsid(nl_, nsid_, name, flags, &idx);
  if (r == 0) ifindex_ = idx;
  return r;
}

// pinned_ino_ (tap.h): a scan every 2 s at most, off the engine thread;
// true when the port let go of the tap (it is down, and at the next checks
// makes it again at home).
bool TapPort::let_go_of_orphaned_namespace() {
  bool orphaned = false;
  if (orphan_check_.take(&orphaned)) {
    orphan_votes_ = orphaned ? orphan_votes_ + 1 : 0;
    if (orphan_votes_ >= 2) {
      close_queues();  // the namespace, and the tap in it, go with our last descriptor
      brought_up_ = false;
      pinned_ino_ = 0;
      orphan_votes_ = 0;
      last_open_try_ms_ = mono_ms();  // give the kernel a second to dismantle it
      status_->set_error("tap " + ifname_ + ": the container namespace it was in has no process or mount left " +
                         "(the container is gone); the port let go of it and creates its tap again here");
      return true;
    }
  }
  const uint64_t now = mono_ms();
  if (!orphan_check_.busy() && now - last_orphan_check_ms_ >= 2000) {
    last_orphan_check_ms_ = now;
    const uint64_t ino = pinned_ino_;
    orphan_check_.start([ino] { return netns_orphaned(ino); });
  }
  return false;
}

LinkState TapPort::check_link() {
  if (!fds_.empty()) {
    ifreq ifr{};
    if (dead_ || ioctl(fds_[0], TUNGETIFF, &ifr) < 0) {
      close_queues();
      brought_up_ = false;
      status_->set_error("tap " + ifname_ + " was deleted; " +
                         (created_ ? "the port creates it again" : "the port re-attaches when it returns"));
      return LinkState::kDown;
    }
    if (pinned_ino_ && let_go_of_orphaned_namespace()) return LinkState::kDown;
    // Follow the device into whatever namespace it was moved to (the
    // descriptor is closed at once: holding it would keep the namespace).
    int nsfd = ioctl(fds_[0], TUNGETDEVNETNS);
    if (nsfd >= 0) {
      struct stat sb;
      if (fstat(nsfd, &sb) == 0 && sb.st_ino != ns_ino_) {
        ns_ino_ = sb.st_ino;
        if (ns_ino_ == home_netns_) {
          nsid_ = -1;
          const int idx = if_index(ctl_, ifr.ifr_name);
          ifindex_ = idx > 0 ? idx : 0;
        } else {
          if (nl_ < 0) nl_ = rtnl_socket();
          nsid_ = nl_ >= 0 ? netns_id(nl_, nsfd) : -errno;
          if (nsid_ < 0) {
            status_->set_error("tap " + ifname_ + " moved to another network namespace, where its link state " +
                               "cannot be read: " + strerror(-nsid_));
            ns_ino_ = 0;  // try again at the next check
            nsid_ = -1;
            close(nsfd);
            return LinkState::kDown;
          }
        }
      }
      close(nsfd);
    }
    unsigned fl = 0;
    if (read_flags(ifr.ifr_name, &fl) < 0) {
      // Its namespace is going (its id is gone first, then the device): look
      // again from the start at the next check, on the round robin.
      if (nsid_ >= 0) ns_ino_ = 0, nsid_ = -1;
      return LinkState::kDown;
    }
    return (fl & IFF_UP) && (fl & IFF_RUNNING) ? LinkState::kUp : LinkState::kDown;
  }
  uint64_t now = mono_ms();
  if (last_open_try_ms_ != 0 && now - last_open_try_ms_ < 1000) return LinkState::kDown;
  last_open_try_ms_ = now;
  if (!created_ && if_index(ctl_, ifname_) <= 0) return LinkState::kDown;
  Status code;
  std::string err;
  if (!open_queues(&code, &err)) {
    status_->set_error(err);
    return LinkState::kDown;
  }
  nsid_ = -1;
  ns_ino_ = 0;
  pinned_ino_ = 0;
  if (created_) if_set_flags(ctl_, ifname_, IFF_UP, 0);
  status_->add(PortStatus::reopens);
  status_->set_error("");
  return LinkState::kDown;  // reported up at the next check, once the flags are read
}

}  // namespace vpc
