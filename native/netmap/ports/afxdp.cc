// AF_XDP port (design in afxdp.h). Built only with libxdp and libbpf
// (VPC_HAVE_AFXDP); otherwise opening an afxdp: port says what to install.
#include "ports/afxdp.h"
#include "ports/ifutil.h"
#include "proto/inet.h"

namespace vpc {

// XDP does not say which frames carry a partial checksum (the guest's
// CHECKSUM_PARTIAL becomes plain bytes on a veth), so a field that equals the
// pseudo-header sum is completed, but only when the full checksum does not
// already verify: a correct frame is never changed.
bool complete_hidden_partial_checksum(uint8_t* f, uint32_t len) {
  L4Checksum c;
  if (!locate_l4_checksum(f, len, &c)) return false;
  const uint16_t pseudo = uint16_t(~csum_fold(c.pseudo));  // folded, not complemented
  if (load_be16(f + c.field) != pseudo) return false;     // the usual case, cheap
  const uint32_t seg = csum_partial(f + c.l4, c.end - c.l4, 0);
  if (csum_fold(seg + c.pseudo) == 0) return false;        // it verifies: complete already
  uint16_t sum = csum_fold(seg);                           // the field holds the pseudo sum already
  if (c.proto == kIpProtoUdp && sum == 0) sum = 0xFFFF;
  store_be16(f + c.field, sum);
  return true;
}

}  // namespace vpc

#ifndef VPC_HAVE_AFXDP

namespace vpc {

bool afxdp_built() { return false; }

std::unique_ptr<Port> open_afxdp_port(const PortSpec& spec, const KernelPortOptions&, std::shared_ptr<BufferPool>,
                                      std::shared_ptr<PortStatus>) {
  throw PortError(Status::kInvalidArgument,
                  "afxdp:" + spec.ifname +
                      ": AF_XDP support is not built in this version (libxdp/libbpf were not found at build time: "
                      "install them, on Debian `apt-get install libxdp-dev libbpf-dev pkg-config`, and rebuild); "
                      "meanwhile use afpacket:" + spec.ifname + " (works on every interface)");
}

}  // namespace vpc

#else  // VPC_HAVE_AFXDP

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>
#include <linux/if_xdp.h>
#include <net/if.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <xdp/libxdp.h>
#include <xdp/xsk.h>

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <cstring>
#include <map>
#include <mutex>
#include <vector>

#include "ports/ifutil.h"

namespace vpc {

bool afxdp_built() { return true; }

namespace {

constexpr uint32_t kDefaultRing = 2048;
constexpr uint32_t kRefillAt = 32;  // refill the fill ring once this many slots are free

uint64_t mono_ms() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000 + uint64_t(ts.tv_nsec) / 1000000;
}

// The UMEM of each buffer pool: the kernel keeps one UMEM alive as long as a
// socket uses it; a new socket shares it through any socket that is bound to
// it right now (the kernel wants a bound one), or registers the pool afresh
// when there is none.
struct UmemRegistry {
  std::mutex mu;
  std::map<const BufferPool*, std::vector<std::pair<int, bool>>> bound;  // pool -> (bound socket, zero-copy)
};
UmemRegistry& umems() {
  static UmemRegistry r;
  return r;
}

template <class Ring>
void setup_ring(Ring* r, void* map, const xdp_ring_offset& o, uint32_t n, bool producer) {
  auto* base = static_cast<uint8_t*>(map);
  r->mask = n - 1;
  r->size = n;
  r->producer = reinterpret_cast<uint32_t*>(base + o.producer);
  r->consumer = reinterpret_cast<uint32_t*>(base + o.consumer);
  r->ring = base + o.desc;
  r->flags = reinterpret_cast<uint32_t*>(base + o.flags);
  r->cached_prod = *r->producer;
  r->cached_cons = *r->consumer;
  if (producer) r->cached_cons += n;  // free slots = cached_cons - cached_prod
}

// libbpf and libxdp print their own diagnostics to stderr; the port reports
// failures itself (PortStatus, PortError), so they are silenced.
int quiet_libbpf(enum libbpf_print_level, const char*, va_list) { return 0; }
int quiet_libxdp(enum libxdp_print_level, const char*, va_list) { return 0; }
void quiet_libs() {
  static std::once_flag once;
  std::call_once(once, [] {
    libbpf_set_print(quiet_libbpf);
    libxdp_set_print(quiet_libxdp);
  });
}

uint32_t log2_of(uint32_t v) {
  uint32_t s = 0;
  while ((1u << s) < v) ++s;
  return s;
}

}  // namespace

class AfXdpPort final : public Port {
 public:
  AfXdpPort(const PortSpec& spec, const KernelPortOptions& opts, std::shared_ptr<BufferPool> pool,
            std::shared_ptr<PortStatus> status)
      : ifname_(spec.ifname),
        queue_(spec.queue < 0 ? 0 : uint32_t(spec.queue)),
        opts_(opts),
        pool_(std::move(pool)),
        status_(std::move(status)),
        cache_(pool_),
        shift_(log2_of(pool_->buf_size())),
        lent_(pool_->count(), 0) {}
  ~AfXdpPort() override;

  static std::unique_ptr<AfXdpPort> open(const PortSpec& spec, const KernelPortOptions& opts,
                                         std::shared_ptr<BufferPool> pool, std::shared_ptr<PortStatus> status);

  const char* kind() const override { return "afxdp"; }
  uint16_t rx_burst(Pkt* pkts, uint16_t max) override;
  uint16_t tx_burst(Pkt* pkts, uint16_t n) override;
  int poll_fd() const override { return epfd_; }
  LinkState link_state() const override { return const_cast<AfXdpPort*>(this)->check_link(); }
  Mac hw_mac() const override { return mac_; }
  void detach() override;

 private:
  bool open_socket(Status* code, std::string* err);
  // share: bind to the UMEM another port already registered (mode inherited);
  // else register the pool as a UMEM of this socket's own.
  bool create_xsk(bool share, bool zero_copy, int ifindex, int* bind_errno, Status* code, std::string* err);
  bool attach_prog(int ifindex, Status* code, std::string* err);
  void detach_prog();
  void close_xsk();    // socket + rings; takes back every lent buffer
  void close_all();    // socket and XDP program
  void refill();
  void reap_completions();
  void flush_tx();
  LinkState check_link();

  std::string where() const { return "afxdp:" + ifname_ + "@" + std::to_string(queue_); }

  std::string ifname_;
  uint32_t queue_;
  KernelPortOptions opts_;
  std::shared_ptr<BufferPool> pool_;
  std::shared_ptr<PortStatus> status_;
  BufferCache cache_;
  uint32_t shift_;
  std::vector<uint8_t> lent_;  // 1: the kernel holds this buffer (fill or tx ring)

  int ctl_ = -1, epfd_ = -1, fd_ = -1;
  int ifindex_ = 0;
  Mac mac_ = 0;
  uint32_t rx_n_ = 0, tx_n_ = 0, burst_ = kMaxBurst;
  xsk_ring_prod fill_{}, tx_{};
  xsk_ring_cons rx_{}, comp_{};
  void* maps_[4] = {};
  size_t map_len_[4] = {};
  bool zc_ = false;
  bool shared_ = false;  // bound through another port's UMEM

  xdp_program* prog_ = nullptr;
  int prog_fd_ = -1, map_fd_ = -1, prog_ifindex_ = 0;
  uint32_t prog_mode_ = 0;  // XDP_FLAGS_DRV_MODE or XDP_FLAGS_SKB_MODE

  xdp_statistics last_stats_{};
  uint64_t last_open_try_ms_ = 0;
  bool claimed_ = false;
  OffloadSaved offloads_;
  std::string offload_note_;
};

std::unique_ptr<AfXdpPort> AfXdpPort::open(const PortSpec& spec, const KernelPortOptions& opts,
                                           std::shared_ptr<BufferPool> pool, std::shared_ptr<PortStatus> status) {
  const std::string w = "afxdp:" + spec.ifname;
  if (pool->buf_size() > 4096)
    throw PortError(Status::kInvalidArgument,
                    w + ": AF_XDP needs buffers of at most 4096 bytes (a UMEM chunk fits in a page); the buffer pool "
                        "uses " + std::to_string(pool->buf_size()) + ": lower the buffer size or use afpacket:" +
                        spec.ifname);
  if (!claim_interface(spec.ifname))
    throw PortError(Status::kInUse, "interface " + spec.ifname +
                                        " is already attached to another port of this switch: delete that port "
                                        "first (one port per interface)");
  std::unique_ptr<AfXdpPort> p(new AfXdpPort(spec, opts, std::move(pool), std::move(status)));
  p->claimed_ = true;
  p->ctl_ = ctl_socket();
  p->epfd_ = epoll_create1(EPOLL_CLOEXEC);
  if (p->ctl_ < 0 || p->epfd_ < 0) throw PortError(Status::kSystem, sys_error(w + ": socket", errno, nullptr));
  int idx = if_index(p->ctl_, spec.ifname);
  if (idx == -ENODEV)
    throw PortError(Status::kNotFound, "interface " + spec.ifname +
                                           " does not exist: create it first (for example: ip link add " +
                                           spec.ifname + " type veth peer name " + spec.ifname +
                                           "-peer) or check the name with: ip link");
  if (idx < 0) throw PortError(Status::kSystem, sys_error(w + ": looking up the interface", -idx, nullptr));
  if (if_hwaddr(p->ctl_, spec.ifname, &p->mac_) < 0) p->mac_ = 0;

  PortStatus& st = *p->status_;
  p->rx_n_ = opts.rx_ring ? opts.rx_ring : kDefaultRing;
  p->tx_n_ = opts.tx_ring ? opts.tx_ring : kDefaultRing;
  st.rx_ring = p->rx_n_;
  st.tx_ring = p->tx_n_;
  p->burst_ = opts.burst ? std::min<uint32_t>(opts.burst, kMaxBurst) : kMaxBurst;
  st.burst = p->burst_;
  st.queues = 1;
  st.frame_size = p->pool_->buf_size();
  p->offload_note_ = opts.offloads_off ? offloads_off(p->ctl_, spec.ifname, &p->offloads_)
                                       : "left as they are (disableOffloads: false)";
  Status code;
  std::string err;
  if (!p->open_socket(&code, &err)) throw PortError(code, err);  // the destructor cleans up
  return p;
}

AfXdpPort::~AfXdpPort() {
  close_all();
  cache_.flush();
  if (ctl_ >= 0) {
    offloads_restore(ctl_, &offloads_);
    close(ctl_);
  }
  if (epfd_ >= 0) close(epfd_);
  if (claimed_) release_interface(ifname_);
}

void AfXdpPort::detach() {
  close_all();
  if (ctl_ >= 0) offloads_restore(ctl_, &offloads_);
  cache_.flush();
}

bool AfXdpPort::attach_prog(int idx, Status* code, std::string* err) {
  const std::string w = where();
  auto fail = [&](Status s, const std::string& m) {
    *code = s;
    *err = m;
    detach_prog();
    return false;
  };
  quiet_libs();
  bpf_xdp_query_opts q{};
  q.sz = sizeof(q);
  if (bpf_xdp_query(idx, 0, &q) == 0 && q.attach_mode != XDP_ATTACHED_NONE)
    return fail(Status::kInUse, w + ": interface " + ifname_ +
                                    " already has an XDP program attached (see: ip link show dev " + ifname_ +
                                    "); remove it (ip link set dev " + ifname_ +
                                    " xdp off, or xdpgeneric off) or use afpacket:" + ifname_ + " instead");
  prog_ = xdp_program__find_file("xsk_def_xdp_prog.o", nullptr, nullptr);
  long perr = libxdp_get_error(prog_);
  if (perr) {
    prog_ = nullptr;
    return fail(Status::kSystem, w + ": cannot find libxdp's AF_XDP program xsk_def_xdp_prog.o (" +
                                     std::string(strerror(int(-perr))) +
                                     "): install libxdp1 (Debian) or set LIBXDP_OBJECT_PATH to its directory");
  }
  bpf_object* obj = xdp_program__bpf_obj(prog_);
  int r = bpf_object__load(obj);
  if (r < 0)
    return fail(r == -EPERM ? Status::kSystem : Status::kSystem,
                sys_error(w + ": loading the XDP program", -r, "CAP_BPF and CAP_NET_ADMIN (run as root)"));
  bpf_program* bp = bpf_object__find_program_by_name(obj, "xsk_def_prog");
  prog_fd_ = bp ? bpf_program__fd(bp) : -1;
  map_fd_ = bpf_object__find_map_fd_by_name(obj, "xsks_map");
  bpf_map* m = bpf_object__find_map_by_name(obj, "xsks_map");
  if (prog_fd_ < 0 || map_fd_ < 0 || !m) return fail(Status::kSystem, w + ": xsk_def_xdp_prog.o has no xsk_def_prog/xsks_map");
  if (queue_ >= bpf_map__max_entries(m))
    return fail(Status::kInvalidArgument, w + ": queue " + std::to_string(queue_) + " is beyond the " +
                                              std::to_string(bpf_map__max_entries(m)) +
                                              " queues libxdp's XDP program supports");
  std::vector<uint32_t> modes;
  if (opts_.xdp_mode != KernelPortOptions::XdpMode::kGeneric) modes.push_back(XDP_FLAGS_DRV_MODE);
  if (opts_.xdp_mode != KernelPortOptions::XdpMode::kNative) modes.push_back(XDP_FLAGS_SKB_MODE);
  int last = 0;
  for (uint32_t mode : modes) {
    r = bpf_xdp_attach(idx, prog_fd_, XDP_FLAGS_UPDATE_IF_NOEXIST | mode, nullptr);
    if (r == 0) {
      prog_mode_ = mode;
      prog_ifindex_ = idx;
      return true;
    }
    last = -r;
    if (last == EBUSY || last == EEXIST)
      return fail(Status::kInUse, w + ": interface " + ifname_ + " already has an XDP program attached (see: ip link show dev " +
                                      ifname_ + "); remove it or use afpacket:" + ifname_ + " instead");
    if (last == EPERM || last == EACCES) break;
  }
  std::string hint = opts_.xdp_mode == KernelPortOptions::XdpMode::kNative
                         ? " (the driver may not support native XDP: try xdpMode: 'generic' or 'auto')"
                         : "";
  return fail(last == ENODEV ? Status::kNotFound : Status::kSystem,
              sys_error(w + ": attaching the XDP program" + hint, last, "CAP_NET_ADMIN and CAP_BPF (run as root)"));
}

void AfXdpPort::detach_prog() {
  if (prog_ifindex_ && prog_fd_ >= 0) {
    bpf_xdp_attach_opts o{};
    o.sz = sizeof(o);
    o.old_prog_fd = prog_fd_;  // only if it is still ours
    bpf_xdp_detach(prog_ifindex_, prog_mode_, &o);
  }
  prog_ifindex_ = 0;
  if (prog_) xdp_program__close(prog_);
  prog_ = nullptr;
  prog_fd_ = map_fd_ = -1;
}

bool AfXdpPort::create_xsk(bool want_share, bool zero_copy, int idx, int* bind_errno, Status* code, std::string* err) {
  const std::string w = where();
  *bind_errno = 0;
  UmemRegistry& reg = umems();
  std::unique_lock<std::mutex> g(reg.mu, std::defer_lock);
  auto fail = [&](Status s, const std::string& what, int e, const char* cap) {
    if (g.owns_lock()) g.unlock();  // close_xsk() takes it
    *code = s;
    *err = sys_error(w + ": " + what, e, cap);
    close_xsk();
    return false;
  };
  fd_ = socket(AF_XDP, SOCK_RAW | SOCK_CLOEXEC, 0);
  if (fd_ < 0) return fail(Status::kSystem, "socket(AF_XDP)", errno, "CAP_NET_RAW (run as root)");
  g.lock();
  auto& users = reg.bound[pool_.get()];
  const int share = want_share && !users.empty() ? users.front().first : -1;
  if (share >= 0) zero_copy = users.front().second;
  if (share < 0) {
    xdp_umem_reg mr{};
    mr.addr = reinterpret_cast<uint64_t>(pool_->base());
    mr.len = pool_->bytes();
    mr.chunk_size = pool_->buf_size();
    mr.headroom = 0;
    if (setsockopt(fd_, SOL_XDP, XDP_UMEM_REG, &mr, sizeof(mr)) < 0)
      return fail(Status::kSystem, "registering the buffer pool as UMEM", errno, "CAP_IPC_LOCK or a higher RLIMIT_MEMLOCK");
  }
  uint32_t fill_n = rx_n_, comp_n = tx_n_;
  if (setsockopt(fd_, SOL_XDP, XDP_UMEM_FILL_RING, &fill_n, sizeof(fill_n)) < 0 ||
      setsockopt(fd_, SOL_XDP, XDP_UMEM_COMPLETION_RING, &comp_n, sizeof(comp_n)) < 0 ||
      setsockopt(fd_, SOL_XDP, XDP_RX_RING, &rx_n_, sizeof(rx_n_)) < 0 ||
      setsockopt(fd_, SOL_XDP, XDP_TX_RING, &tx_n_, sizeof(tx_n_)) < 0)
    return fail(Status::kSystem, "ring setup (rxRing " + std::to_string(rx_n_) + ", txRing " + std::to_string(tx_n_) + ")",
                errno, nullptr);
  xdp_mmap_offsets off{};
  socklen_t ol = sizeof(off);
  if (getsockopt(fd_, SOL_XDP, XDP_MMAP_OFFSETS, &off, &ol) < 0)
    return fail(Status::kSystem, "XDP_MMAP_OFFSETS", errno, nullptr);
  const struct {
    off_t pgoff;
    const xdp_ring_offset* o;
    size_t bytes;
  } spec[4] = {
      {XDP_UMEM_PGOFF_FILL_RING, &off.fr, off.fr.desc + size_t(fill_n) * sizeof(uint64_t)},
      {XDP_UMEM_PGOFF_COMPLETION_RING, &off.cr, off.cr.desc + size_t(comp_n) * sizeof(uint64_t)},
      {XDP_PGOFF_RX_RING, &off.rx, off.rx.desc + size_t(rx_n_) * sizeof(xdp_desc)},
      {XDP_PGOFF_TX_RING, &off.tx, off.tx.desc + size_t(tx_n_) * sizeof(xdp_desc)},
  };
  for (int i = 0; i < 4; ++i) {
    void* m = mmap(nullptr, spec[i].bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd_, spec[i].pgoff);
    if (m == MAP_FAILED) return fail(Status::kSystem, "mmap of an AF_XDP ring", errno, nullptr);
    maps_[i] = m;
    map_len_[i] = spec[i].bytes;
  }
  setup_ring(&fill_, maps_[0], off.fr, fill_n, true);
  setup_ring(&comp_, maps_[1], off.cr, comp_n, false);
  setup_ring(&rx_, maps_[2], off.rx, rx_n_, false);
  setup_ring(&tx_, maps_[3], off.tx, tx_n_, true);

  sockaddr_xdp sa{};
  sa.sxdp_family = AF_XDP;
  sa.sxdp_ifindex = uint32_t(idx);
  sa.sxdp_queue_id = queue_;
  sa.sxdp_flags = XDP_USE_NEED_WAKEUP | (zero_copy ? XDP_ZEROCOPY : XDP_COPY);
  if (share >= 0) {
    sa.sxdp_flags = XDP_SHARED_UMEM;  // the kernel takes copy/zero-copy/need_wakeup from the UMEM's first socket
    sa.sxdp_shared_umem_fd = uint32_t(share);
  }
  if (bind(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) < 0) {
    *bind_errno = errno;
    Status s = errno == EBUSY ? Status::kInUse : errno == ENODEV ? Status::kNotFound : Status::kSystem;
    std::string what = errno == EBUSY ? "queue " + std::to_string(queue_) + " of " + ifname_ +
                                            " is already used by another AF_XDP socket: stop that program or pick "
                                            "another queue (afxdp:" + ifname_ + "@N)"
                                      : std::string("bind (") + (zero_copy ? "zero-copy" : "copy") + " mode, queue " +
                                            std::to_string(queue_) + ")";
    return fail(s, what, errno, nullptr);
  }
  users.push_back({fd_, zero_copy});
  zc_ = zero_copy;
  shared_ = share >= 0;
  return true;
}

bool AfXdpPort::open_socket(Status* code, std::string* err) {
  const std::string w = where();
  int idx = if_index(ctl_, ifname_);
  if (idx < 0) {
    *code = idx == -ENODEV ? Status::kNotFound : Status::kSystem;
    *err = w + ": interface does not exist (any more); the port comes up when it returns";
    return false;
  }
  if (!attach_prog(idx, code, err)) return false;
  bool ok = false;
  std::string zc_note;
  {
    // First join the UMEM other ports of this pool use (if its copy mode is
    // acceptable), then register one of our own: zero-copy, then copy.
    bool have_users;
    bool users_zc = false;
    {
      std::lock_guard<std::mutex> g(umems().mu);
      auto it = umems().bound.find(pool_.get());
      have_users = it != umems().bound.end() && !it->second.empty();
      if (have_users) users_zc = it->second.front().second;
    }
    const bool mode_ok = users_zc ? opts_.zero_copy != KernelPortOptions::ZeroCopy::kOff
                                  : opts_.zero_copy != KernelPortOptions::ZeroCopy::kOn;
    if (have_users && mode_ok) {
      int be = 0;
      ok = create_xsk(true, users_zc, idx, &be, code, err);
      if (!ok && be == EBUSY) {
        detach_prog();
        return false;
      }
    }
  }
  if (!ok) {
    std::vector<bool> tries;
    if (opts_.zero_copy != KernelPortOptions::ZeroCopy::kOff) tries.push_back(true);
    if (opts_.zero_copy != KernelPortOptions::ZeroCopy::kOn) tries.push_back(false);
    for (bool zc : tries) {
      int be = 0;
      ok = create_xsk(false, zc, idx, &be, code, err);
      if (ok) break;
      if (!zc || be == 0 || be == EBUSY) break;  // only a refused zero-copy bind falls back to copy
      zc_note = " (zero-copy refused by the driver: " + std::string(strerror(be)) + ")";
    }
  }
  if (!ok) {
    if (opts_.zero_copy == KernelPortOptions::ZeroCopy::kOn)
      *err += "; the driver may not support zero-copy: try zeroCopy: 'auto' or 'off'";
    detach_prog();
    return false;
  }
  if (bpf_map_update_elem(map_fd_, &queue_, &fd_, BPF_ANY) < 0) {
    int e = errno;
    *code = Status::kSystem;
    *err = sys_error(w + ": adding the socket to the XSKMAP", e, "CAP_BPF");
    close_all();
    return false;
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = fd_;
  if (epoll_ctl(epfd_, EPOLL_CTL_ADD, fd_, &ev) < 0) {
    *code = Status::kSystem;
    *err = sys_error(w + ": epoll_ctl", errno, nullptr);
    close_all();
    return false;
  }
  refill();
  ifindex_ = idx;
  last_stats_ = {};
  status_->set_offloads(std::string(prog_mode_ == XDP_FLAGS_DRV_MODE ? "native XDP" : "generic XDP") + ", " +
                        (zc_ ? "zero-copy" : "copy") + " mode" + zc_note + (shared_ ? "; UMEM = the buffer pool, shared with other AF_XDP ports" : "; UMEM = the buffer pool") + "; offloads: " +
                        offload_note_);
  status_->ifindex.store(idx, std::memory_order_relaxed);
  status_->attached.store(true, std::memory_order_relaxed);
  return true;
}

void AfXdpPort::close_xsk() {
  if (fd_ >= 0) {
    if (epfd_ >= 0) epoll_ctl(epfd_, EPOLL_CTL_DEL, fd_, nullptr);
    UmemRegistry& reg = umems();
    std::lock_guard<std::mutex> g(reg.mu);
    auto it = reg.bound.find(pool_.get());
    if (it != reg.bound.end()) {
      auto& v = it->second;
      v.erase(std::remove_if(v.begin(), v.end(), [&](const std::pair<int, bool>& u) { return u.first == fd_; }), v.end());
      if (v.empty()) reg.bound.erase(it);
    }
    for (int i = 0; i < 4; ++i) {
      if (maps_[i]) munmap(maps_[i], map_len_[i]);
      maps_[i] = nullptr;
      map_len_[i] = 0;
    }
    close(fd_);  // unbinds: the kernel lets go of every buffer it held
    fd_ = -1;
  }
  for (int i = 0; i < 4; ++i) {
    if (maps_[i]) munmap(maps_[i], map_len_[i]);
    maps_[i] = nullptr;
  }
  fill_ = {};
  tx_ = {};
  rx_ = {};
  comp_ = {};
  for (uint32_t b = 0; b < lent_.size(); ++b)
    if (lent_[b]) {
      lent_[b] = 0;
      cache_.free(b);
    }
  ifindex_ = 0;
  if (status_) status_->attached.store(false, std::memory_order_relaxed);
}

void AfXdpPort::close_all() {
  close_xsk();
  detach_prog();
}

void AfXdpPort::refill() {
  uint32_t want = xsk_prod_nb_free(&fill_, rx_n_);
  if (want < kRefillAt && want < rx_n_) return;
  const uint64_t headroom = pool_->headroom();
  while (want) {
    uint32_t bufs[BufferCache::kBatch];
    uint32_t n = 0;
    const uint32_t lim = std::min<uint32_t>(want, BufferCache::kBatch);
    while (n < lim && cache_.alloc(&bufs[n])) ++n;
    if (!n) {
      status_->add(PortStatus::rx_no_buffer);
      return;
    }
    uint32_t at = 0;
    xsk_ring_prod__reserve(&fill_, n, &at);  // n <= free slots: always succeeds
    for (uint32_t i = 0; i < n; ++i) {
      *xsk_ring_prod__fill_addr(&fill_, at + i) = xsk_addr_of(bufs[i], 0, shift_) + headroom;
      lent_[bufs[i]] = 1;
    }
    xsk_ring_prod__submit(&fill_, n);
    want -= n;
    if (n < lim) return;
  }
}

void AfXdpPort::reap_completions() {
  uint32_t at = 0;
  uint32_t n = xsk_ring_cons__peek(&comp_, tx_n_, &at);
  for (uint32_t i = 0; i < n; ++i) {
    uint32_t b = uint32_t(*xsk_ring_cons__comp_addr(&comp_, at + i) >> shift_);
    if (b < lent_.size() && lent_[b]) {
      lent_[b] = 0;
      cache_.free(b);
    }
  }
  if (n) xsk_ring_cons__release(&comp_, n);
}

void AfXdpPort::flush_tx() {
  // Copy mode sends at most a few dozen frames per kick: kick until the
  // kernel has taken what is queued (a bounded number of times).
  for (int i = 0; i < 16; ++i) {
    if (__atomic_load_n(tx_.consumer, __ATOMIC_ACQUIRE) == tx_.cached_prod) return;
    if (!xsk_ring_prod__needs_wakeup(&tx_)) return;
    status_->add(PortStatus::kicks);
    if (sendto(fd_, nullptr, 0, MSG_DONTWAIT, nullptr, 0) < 0) {
      if (errno == EAGAIN || errno == EBUSY) continue;
      if (errno != ENOBUFS && errno != ENETDOWN) status_->add(PortStatus::tx_errors);
      return;
    }
  }
}

uint16_t AfXdpPort::rx_burst(Pkt* pkts, uint16_t max) {
  if (fd_ < 0) return 0;
  if (max > burst_) max = uint16_t(burst_);
  uint32_t at = 0;
  uint32_t n = xsk_ring_cons__peek(&rx_, max, &at);
  for (uint32_t i = 0; i < n; ++i) {
    const xdp_desc* d = xsk_ring_cons__rx_desc(&rx_, at + i);
    Pkt p = xsk_pkt_of(d->addr, d->len, shift_);
    lent_[p.buf] = 0;
    if (complete_hidden_partial_checksum(pool_->frame(p), p.len)) status_->add(PortStatus::rx_csum_completed);
    pkts[i] = p;
  }
  if (n) xsk_ring_cons__release(&rx_, n);
  refill();
  if (!n) {
    reap_completions();
    flush_tx();
    if (xsk_ring_prod__needs_wakeup(&fill_)) recvfrom(fd_, nullptr, 0, MSG_DONTWAIT, nullptr, nullptr);
  }
  return uint16_t(n);
}

uint16_t AfXdpPort::tx_burst(Pkt* pkts, uint16_t n) {
  if (fd_ < 0) return 0;
  reap_completions();
  uint32_t k = std::min<uint32_t>(n, xsk_prod_nb_free(&tx_, n));
  if (k) {
    uint32_t at = 0;
    xsk_ring_prod__reserve(&tx_, k, &at);
    for (uint32_t i = 0; i < k; ++i) {
      xdp_desc* d = xsk_ring_prod__tx_desc(&tx_, at + i);
      d->addr = xsk_addr_of(pkts[i].buf, pkts[i].off, shift_);
      d->len = pkts[i].len;
      d->options = 0;
      lent_[pkts[i].buf] = 1;
    }
    xsk_ring_prod__submit(&tx_, k);
  }
  flush_tx();
  return uint16_t(k);
}

LinkState AfXdpPort::check_link() {
  int idx = if_index(ctl_, ifname_);
  if (idx <= 0) {
    if (fd_ >= 0 || prog_) {
      close_all();
      status_->set_error("interface " + ifname_ + " disappeared; the port comes back when it returns");
    }
    return LinkState::kDown;
  }
  if (fd_ >= 0 && idx != ifindex_) close_all();  // deleted and created again
  if (fd_ < 0) {
    uint64_t now = mono_ms();
    if (last_open_try_ms_ != 0 && now - last_open_try_ms_ < 1000) return LinkState::kDown;
    last_open_try_ms_ = now;
    if (opts_.offloads_off) {
      offloads_restore(ctl_, &offloads_);
      offload_note_ = offloads_off(ctl_, ifname_, &offloads_);
    }
    Status code;
    std::string err;
    if (!open_socket(&code, &err)) {
      status_->set_error(err);
      return LinkState::kDown;
    }
    status_->add(PortStatus::reopens);
    status_->set_error("");
  }
  xdp_statistics xs{};
  socklen_t l = sizeof(xs);
  if (getsockopt(fd_, SOL_XDP, XDP_STATISTICS, &xs, &l) == 0) {
    uint64_t drops = (xs.rx_dropped - last_stats_.rx_dropped) + (xs.rx_ring_full - last_stats_.rx_ring_full);
    if (drops) status_->add(PortStatus::rx_kernel_drops, drops);
    if (xs.tx_invalid_descs > last_stats_.tx_invalid_descs)
      status_->add(PortStatus::tx_errors, xs.tx_invalid_descs - last_stats_.tx_invalid_descs);
    last_stats_ = xs;
  }
  unsigned fl = 0;
  if (if_flags(ctl_, ifname_, &fl) < 0) return LinkState::kDown;
  return (fl & IFF_UP) && (fl & IFF_RUNNING) ? LinkState::kUp : LinkState::kDown;
}

std::unique_ptr<Port> open_afxdp_port(const PortSpec& spec, const KernelPortOptions& opts,
                                      std::shared_ptr<BufferPool> pool, std::shared_ptr<PortStatus> status) {
  return AfXdpPort::open(spec, opts, std::move(pool), std::move(status));
}

}  // namespace vpc

#endif  // VPC_HAVE_AFXDP
