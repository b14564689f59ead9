// AF_XDP port (design in afxdp.h). Built only with libxdp and libbpf
// (VPC_HAVE_AFXDP); otherwise opening an afxdp: port says what to install.
#include "ports/afxdp.h"

#include <algorithm>

#include "ports/ifutil.h"
#include "proto/gso.h"
#include "proto/inet.h"

namespace vpc {

namespace {
// True when the frame's L4 checksum field holds the folded pseudo-header sum
// and the full checksum does not verify: a partial checksum, as the sender's
// kernel left it (*seg: the sum over the L4 bytes, for completing it).
bool partial_checksum(const uint8_t* f, uint32_t len, L4Checksum* c, uint32_t* seg) {
  if (!locate_l4_checksum(f, len, c)) return false;
  const uint16_t pseudo = uint16_t(~csum_fold(c->pseudo));  // folded, not complemented
  if (load_be16(f + c->field) != pseudo) return false;      // the usual case, cheap
  *seg = csum_partial(f + c->l4, c->end - c->l4, 0);
  return csum_fold(*seg + c->pseudo) != 0;                   // else it verifies: complete already
}
}  // namespace

// XDP does not say which frames carry a partial checksum (the guest's
// CHECKSUM_PARTIAL becomes plain bytes on a veth), so a field that equals the
// pseudo-header sum is completed, but only when the full checksum does not
// already verify: a correct frame is never changed.
bool complete_hidden_partial_checksum(uint8_t* f, uint32_t len) {
  L4Checksum c;
  uint32_t seg = 0;
  if (!partial_checksum(f, len, &c, &seg)) return false;
  uint16_t sum = csum_fold(seg);  // the field holds the pseudo sum already
  if (c.proto == kIpProtoUdp && sum == 0) sum = 0xFFFF;
  store_be16(f + c.field, sum);
  return true;
}

// A TCP frame longer than the MTU can only be a sender's TSO batch that
// the kernel handed over whole (generic XDP sees the GSO skb before it is cut;
// so does native XDP on a frags-aware driver). XDP drops the GSO state, so it
// is rebuilt: the segment size the sender's TCP cut for is the MTU less the
// IP header and the TCP header with its options (what MSS minus the options
// gives), and the checksum field holds the pseudo-header sum, as for any TSO
// frame (CHECKSUM_PARTIAL).
//
// Over a jumbo MTU a frame within it may be a batch too: a guest whose path
// to a peer is narrower (it learnt 1450 across VXLAN from the switch's ICMP)
// keeps TSO on, and its batches of 1398-byte segments come in any length,
// 4,000 bytes as well as 40,000. Refused as single frames too big for the
// tunnel, they stalled TCP (0.00 Gbit/s). So a TCP packet longer than
// kTsoFloor is taken as a batch too when its checksum is partial, as a TSO
// batch's is (a complete checksum is a complete frame: left as it is). If it
// was one segment, nothing changes where it fits (egress sends a one-segment
// batch as one frame); where it does not, it is cut to that path's MTU
// instead of refused, which TCP takes as it takes any segmentation.
bool infer_tso(const uint8_t* f, uint32_t len, uint32_t mtu, OffloadMeta* m, uint32_t if_mtu) {
  FrameLayout l;
  if (!frame_layout(f, len, &l) || l.l4_proto != kIpProtoTcp) return false;
  const uint16_t mss = gso_mss_for_mtu(l, mtu);
  const uint32_t ip_len = l.ip_end - l.l3_off;
  if (ip_len <= std::min(mtu, kTsoFloor) || mss == 0) return false;
  L4Checksum c;
  uint32_t seg = 0;
  if (ip_len <= std::max(mtu, if_mtu) && !partial_checksum(f, len, &c, &seg)) return false;
  *m = OffloadMeta{};
  m->flags = OffloadMeta::kNeedsCsum;
  m->gso_type = l.ip_version == 4 ? OffloadMeta::kGsoTcpv4 : OffloadMeta::kGsoTcpv6;
  m->gso_size = mss;
  m->hdr_len = l.hdr_len;
  m->csum_start = l.l4_off;
  m->csum_offset = 16;  // TCP's checksum field
  return true;
}

bool udp_batch_without_size(const uint8_t* f, uint32_t len, uint32_t mtu) {
  FrameLayout l;
  return frame_layout(f, len, &l) && l.l4_proto == kIpProtoUdp && l.ip_end - l.l3_off > mtu;
}

namespace {
// "3" or "0-3": queue ids first..first+count-1.
std::string queue_span(uint32_t first, uint32_t count) {
  return count == 1 ? std::to_string(first) : std::to_string(first) + "-" + std::to_string(first + count - 1);
}
}  // namespace

bool resolve_xsk_queues(const std::string& ifname, int spec_queue, uint32_t requested, uint32_t if_queues,
                        uint32_t map_entries, XskQueues* out, std::string* err) {
  const std::string w = "afxdp:" + ifname + (spec_queue >= 0 ? "@" + std::to_string(spec_queue) : "");
  XskQueues q;
  q.first = spec_queue < 0 ? 0 : uint32_t(spec_queue);
  q.of_interface = if_queues;
  if (requested > PortStatus::kMaxQueues) {
    *err = w + ": queues " + std::to_string(requested) + " is more than a port opens (at most " +
           std::to_string(PortStatus::kMaxQueues) + ")";
    return false;
  }
  if (requested == 0 && spec_queue < 0) {
    // Every queue, as far as a port and the XSKMAP reach (0 when unknown: one).
    q.count = std::max<uint32_t>(1, std::min({if_queues, PortStatus::kMaxQueues, map_entries}));
  } else {
    q.count = requested ? requested : 1;
    if (if_queues && q.first + q.count > if_queues) {
      const std::string has = ifname + " has " + std::to_string(if_queues) +
                              (if_queues == 1 ? " rx queue (" : " rx queues (") + queue_span(0, if_queues) + ")";
      if (!requested)
        *err = w + ": queue " + std::to_string(q.first) + " does not exist: " + has;
      else
        *err = w + ": queues " + std::to_string(requested) + " needs rx queues " + queue_span(q.first, q.count) +
               ", but " + has + (spec_queue < 0 ? ": lower queues, or leave it unset for every queue"
                                                : ": lower queues or the first queue");
      return false;
    }
  }
  if (q.first + q.count > map_entries) {
    *err = w + ": queue " + std::to_string(q.first + q.count - 1) + " is beyond the " + std::to_string(map_entries) +
           " queues libxdp's XDP program supports";
    return false;
  }
  *out = q;
  return true;
}

}  // namespace vpc

#ifndef VPC_HAVE_AFXDP

namespace vpc {

bool afxdp_built() { return false; }

std::vector<std::string> xdp_recover(const std::string&) { return {}; }

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

#include "core/coalesce.h"
#include "ports/ifutil.h"
#include "ports/link_watch.h"
#include "ports/off_thread.h"
#include "ports/vnet_sender.h"

namespace vpc {

bool afxdp_built() { return true; }

namespace {

constexpr uint32_t kDefaultRing = 2048;
// Multi-buffer AF_XDP (Linux 6.6): the bind flag, and the descriptor option
// saying that the frame continues in the next descriptor. Spelled out here
// because older uapi headers lack them.
constexpr uint16_t kXdpUseSg = 1 << 4;      // XDP_USE_SG
constexpr uint32_t kXdpPktContd = 1 << 0;   // XDP_PKT_CONTD
// Most descriptors one transmitted frame may use: the kernel builds one skb
// of them (a head and page fragments, MAX_SKB_FRAGS = 17 by default) and
// refuses longer chains as invalid.
constexpr uint32_t kMaxTxDescs = 16;
constexpr uint32_t kRefillAt = 32;  // refill the fill ring once this many slots are free
// The kernel frees a closed socket's queue in deferred work, so a port
// deleted and re-created at once (a replaced port) can find its queues busy
// for a few milliseconds (seen with 4 queues); opening waits up to this long.
constexpr uint32_t kBusyWaitMs = 1000;

// The UMEM of each buffer pool: the kernel keeps one UMEM alive as long as a
// socket uses it; a new socket shares it through any socket that is bound to
// it right now (the kernel wants a bound one), or registers the pool afresh
// when there is none.
struct UmemUser {
  int fd;
  bool zc;  // zero-copy
  bool sg;  // multi-buffer (XDP_USE_SG): the kernel takes it from the UMEM's first socket
};
struct UmemRegistry {
  std::mutex mu;
  std::map<const BufferPool*, std::vector<UmemUser>> bound;  // pool -> its bound sockets
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

// One AF_XDP socket: one receive queue of the interface and its four rings.
struct Xsk {
  uint32_t queue = 0;  // the interface's queue id
  int fd = -1;
  xsk_ring_prod fill{}, tx{};
  xsk_ring_cons rx{}, comp{};
  void* maps[4] = {};
  size_t map_len[4] = {};
  bool zc = false;
  bool sg = false;      // multi-buffer: a frame may span several chunks (XDP_PKT_CONTD)
  bool shared = false;  // bound through a UMEM another socket registered
  xdp_statistics last_stats{};
};

}  // namespace

class AfXdpPort final : public Port {
 public:
  AfXdpPort(const PortSpec& spec, const KernelPortOptions& opts, std::shared_ptr<BufferPool> pool,
            std::shared_ptr<PortStatus> status)
      : ifname_(spec.ifname),
        spec_queue_(spec.queue),
        opts_(opts),
        pool_(std::move(pool)),
        status_(std::move(status)),
        cache_(pool_),
        shift_(log2_of(pool_->buf_size())),
        lent_(pool_->index_limit(), 0) {}
  ~AfXdpPort() override;

  static std::unique_ptr<AfXdpPort> open(const PortSpec& spec, const KernelPortOptions& opts,
                                         std::shared_ptr<BufferPool> pool, std::shared_ptr<PortStatus> status);

  const char* kind() const override { return "afxdp"; }
  uint16_t rx_burst(Pkt* pkts, uint16_t max) override;
  uint16_t tx_burst(Pkt* pkts, uint16_t n) override;
  // Frames go to the kernel by UMEM address (a large buffer's chunks are
  // contiguous in the UMEM, so with multi-buffer a frame of up to
  // kMaxTxDescs chunks is one descriptor chain); what does not fit that
  // leaves through vnet_ (a copy), so any frame is taken.
  bool tx_large_buffers() const override { return true; }
  // Without multi-buffer the kernel drops a frame longer than a chunk.
  bool rx_large_frames() const override { return !xsks_.empty() && xsks_[0].sg; }
  // Frames with offload state leave through vnet_ (a packet socket with
  // virtio-net headers): the kernel keeps a TSO frame whole to the device.
  // With disableOffloads the interface's TSO/GSO/tx-checksum are off, and
  // the kernel's software GSO cuts and completes such a frame on its way to
  // the device, as it would a bridge's (as for afpacket ports). The switch
  // cutting them itself and sending each segment through the rings gave
  // 0.09x the default bridge's TCP (0.48x a bridge whose port segments);
  // this way 0.16-0.22x (0.53-0.88x), docs/ports.md.
  uint32_t tx_offloads() const override { return kOffCsum | kOffTso4 | kOffTso6 | kOffTsoEcn | kOffUso; }
  int poll_fd() const override { return epfd_; }
  LinkState link_state() const override { return const_cast<AfXdpPort*>(this)->check_link(); }
  // The interface while the port holds it (not while it reopens).
  WatchKey link_watch_key() const override {
    return is_open() && !reopen_.busy() ? WatchKey{netns_, ifindex_} : WatchKey{};
  }
  Mac hw_mac() const override { return mac_; }
  void detach() override;

 private:
  bool is_open() const { return !xsks_.empty() && xsks_[0].fd >= 0; }
  // Opens the interface's queues: the XDP program, the sockets and their
  // rings (busy_wait_ms: how long a queue that is busy may be waited for).
  // Touches neither the buffer cache nor lent_, so a re-open runs it off
  // the engine thread (reopen_off_thread). arm_queues() then puts buffers on
  // the fill rings and the sockets in the XSKMAP, on the thread that owns
  // the cache; the port is live after that.
  bool open_queues(uint32_t busy_wait_ms, Status* code, std::string* err);
  bool arm_queues(Status* code, std::string* err);
  // Engine thread: closes the sockets and the program off the thread and,
  // with `reopen`, opens the interface again; check_link() arms the result.
  void reopen_off_thread(bool reopen);
  // Fixes the queue range at the first open; later opens must find the same.
  bool pick_queues(uint32_t map_entries, Status* code, std::string* err);
  // Joins the UMEM other sockets of this pool use (if its copy mode is
  // acceptable), else registers one of its own: zero-copy, then copy.
  bool open_xsk(Xsk& x, int ifindex, std::string* zc_note, int* bind_errno, Status* code, std::string* err);
  // share: bind to the UMEM another socket already registered (mode inherited);
  // else register the pool as a UMEM of this socket's own.
  bool create_xsk(Xsk& x, bool share, bool zero_copy, int ifindex, int* bind_errno, Status* code, std::string* err);
  bool attach_prog(int ifindex, uint32_t* map_entries, Status* code, std::string* err);
  void detach_prog();
  void journal_prog();
  void close_xsk(Xsk& x);  // socket and rings only
  void close_xsks();       // every socket (the buffers the kernel held stay in lent_)
  void close_kernel();     // sockets and XDP program: any thread, while the port is not live
  void reclaim_lent();     // takes back every lent buffer, once the sockets are closed
  // The interface's MAC as it is now (after a reopen, at every link check):
  // an uplink follows it (AfPacketPort::refresh_mac).
  void refresh_mac() {
    if (if_hwaddr_follow(ctl_, ifname_, &mac_)) status_->mac.store(mac_, std::memory_order_relaxed);
  }
  void close_all();        // close_kernel() and reclaim_lent()
  uint32_t receive(Xsk& x, Pkt* pkts, uint32_t max);
  // Copies the n descriptors of one multi-buffer frame, from rx ring index
  // `first`, into a large buffer, and gives their chunks back. False (and
  // counted) when the frame is too big or no large buffer is free.
  bool gather(Xsk& x, uint32_t first, uint32_t n, Pkt* out);
  // What XDP dropped of a received frame's state: a TSO batch's GSO state
  // (infer_tso, TCP frames longer than the MTU or kTsoFloor) or a hidden
  // partial checksum.
  void restore_state(Pkt& p) {
    uint8_t* f = pool_->frame(p);
    if (p.len > tso_frame_ && infer_tso(f, p.len, tso_mtu_, &pool_->meta(p.buf), mtu_)) {
      pkt_set_meta(p, true);
      status_->add(PortStatus::rx_offload);
    } else if (p.len > mtu_frame_ && udp_batch_without_size(f, p.len, mtu_)) [[unlikely]] {
      status_->add(PortStatus::rx_udp_gso_lost);  // the engine drops it (oversize); check_link says why
    } else if (complete_hidden_partial_checksum(f, p.len)) {
      status_->add(PortStatus::rx_csum_completed);
    }
  }
  // The buffer a UMEM chunk belongs to: itself, or the large buffer it is part of.
  uint32_t buffer_of_chunk(uint32_t c) const {
    const uint32_t regular = pool_->count();
    return c < regular ? c : regular + (c - regular) / pool_->large_span() * pool_->large_span();
  }
  void refill(Xsk& x);
  void reap_completions();
  void flush_tx();
  void describe_io();
  LinkState check_link();
  void explain_udp_gso_lost();  // lastError, when rx_udp_gso_lost moved since the last look
  uint64_t udp_gso_lost_seen_ = 0;
  void read_mtu() {
    const int m = if_mtu(ctl_, ifname_);
    if (m > 0) mtu_ = uint32_t(m);
    mtu_frame_ = mtu_ + 14;
    // A batch's segment size is guessed from the smaller of the interface's
    // MTU and the port's: guessed from the interface's alone (9000, the port
    // left at 1500), every batch of a guest that cuts for 1500 looked like
    // 8,948-byte segments, was refused at ingress (oversize), and TCP stood
    // at 0.00 Gbit/s. Cut smaller than the sender meant is always valid TCP.
    tso_mtu_ = port_mtu_ ? std::min(mtu_, port_mtu_) : mtu_;
    tso_frame_ = std::min(tso_mtu_, kTsoFloor) + 14;
  }
  void set_mtu(uint32_t l3_mtu) override {
    port_mtu_ = l3_mtu;
    read_mtu();
  }

  Xsk& txq() { return xsks_[0]; }
  std::string where() const {
    return "afxdp:" + ifname_ + (spec_queue_ >= 0 ? "@" + std::to_string(spec_queue_) : "");
  }

  std::string ifname_;
  int spec_queue_;
  KernelPortOptions opts_;
  std::shared_ptr<BufferPool> pool_;
  std::shared_ptr<PortStatus> status_;
  BufferCache cache_;
  uint32_t shift_;
  // Per UMEM chunk, 1: the kernel holds it (a fill ring buffer, or the last
  // chunk of a frame on the tx ring, which stands for its whole buffer).
  std::vector<uint8_t> lent_;
  VnetSender vnet_;          // frames with offload state (see tx_offloads)
  uint32_t mtu_ = 1500;      // the interface's MTU (read_mtu)
  uint32_t mtu_frame_ = 1514;  // mtu_ + 14: a longer UDP frame is a batch whose size XDP lost
  uint32_t port_mtu_ = 0;      // the port's MTU (set_mtu), 0 until the engine says
  uint32_t tso_mtu_ = 1500;    // min(mtu_, port_mtu_): what infer_tso rebuilds a batch's segments for
  uint32_t tso_frame_ = 1514;  // min(tso_mtu_, kTsoFloor) + 14: longer frames are looked at by infer_tso

  int ctl_ = -1, epfd_ = -1;
  uint64_t netns_ = 0;  // ctl_'s network namespace (link_watch_key)
  int ifindex_ = 0;
  Mac mac_ = 0;
  uint32_t rx_n_ = 0, tx_n_ = 0, burst_ = kMaxBurst;
  XskQueues range_;
  std::vector<Xsk> xsks_;  // range_.count sockets once the range is fixed
  uint32_t next_rx_ = 0;   // the queue rx_burst starts with

  xdp_program* prog_ = nullptr;
  int prog_fd_ = -1, map_fd_ = -1, prog_ifindex_ = 0;
  uint32_t prog_mode_ = 0;  // XDP_FLAGS_DRV_MODE or XDP_FLAGS_SKB_MODE
  std::string prog_journal_;  // the journal's record of the attached program

  uint64_t last_open_try_ms_ = 0;
  bool claimed_ = false;
  OffloadSaved offloads_;
  std::string offload_note_;

  // Re-opening off the engine thread. While a job runs, it owns the
  // interface's members (xsks_, vnet_, prog_..., range_, ifindex_, offloads_);
  // the engine thread touches only live_, cache_ and lent_.
  struct Reopened {
    bool ok = false;
    std::string err;
  };
  OffThread<Reopened> reopen_;
  bool live_ = false;  // engine thread: the sockets are open and armed (rx_burst, tx_burst)
};

std::unique_ptr<AfXdpPort> AfXdpPort::open(const PortSpec& spec, const KernelPortOptions& opts,
                                           std::shared_ptr<BufferPool> pool, std::shared_ptr<PortStatus> status) {
  const std::string w = "afxdp:" + spec.ifname;
  if (pool->buf_size() > 4096)
    throw PortError(Status::kInvalidArgument,
                    w + ": AF_XDP needs buffers of at most 4096 bytes (a UMEM chunk fits in a page); the buffer pool "
                        "uses " + std::to_string(pool->buf_size()) + ": lower the buffer size (a jumbo MTU does not "
                        "need large buffers: longer frames span several chunks and land in the pool's large "
                        "buffers) or use afpacket:" + spec.ifname);
  if (Claim c = claim_interface(spec.ifname); c != Claim::kOk)
    throw PortError(Status::kInUse, claim_refused("interface " + spec.ifname, c));
  std::unique_ptr<AfXdpPort> p(new AfXdpPort(spec, opts, std::move(pool), std::move(status)));
  p->claimed_ = true;
  p->ctl_ = ctl_socket();
  p->epfd_ = epoll_create1(EPOLL_CLOEXEC);
  if (p->ctl_ < 0 || p->epfd_ < 0) throw PortError(Status::kSystem, sys_error(w + ": socket", errno, nullptr));
  p->netns_ = socket_netns(p->ctl_);
  int idx = if_index(p->ctl_, spec.ifname);
  const bool missing = idx == -ENODEV;
  if (missing && !opts.wait_for_interface)
    throw PortError(Status::kNotFound, "interface " + spec.ifname +
                                           " does not exist: create it first (for example: ip link add " +
                                           spec.ifname + " type veth peer name " + spec.ifname +
                                           "-peer) or check the name with: ip link");
  if (idx < 0 && !missing) throw PortError(Status::kSystem, sys_error(w + ": looking up the interface", -idx, nullptr));
  if (missing || if_hwaddr(p->ctl_, spec.ifname, &p->mac_) < 0) p->mac_ = 0;

  PortStatus& st = *p->status_;
  st.mac.store(p->mac_, std::memory_order_relaxed);
  p->rx_n_ = opts.rx_ring ? opts.rx_ring : kDefaultRing;
  p->tx_n_ = opts.tx_ring ? opts.tx_ring : kDefaultRing;
  st.rx_ring = p->rx_n_;
  st.tx_ring = p->tx_n_;
  p->burst_ = opts.burst ? std::min<uint32_t>(opts.burst, kMaxBurst) : kMaxBurst;
  st.burst = p->burst_;
  st.frame_size = p->pool_->buf_size();
  if (missing) {
    // Down until the interface appears: check_link opens its queues then
    // (offloads first), as after it disappeared.
    st.set_error("interface " + spec.ifname + " does not exist (yet); the port comes up when it appears");
    return p;
  }
  p->offload_note_ = offloads_off(p->ctl_, spec.ifname, &p->offloads_, !opts.offloads_off);
  Status code;
  std::string err;
  if (!p->open_queues(kBusyWaitMs, &code, &err) || !p->arm_queues(&code, &err))
    throw PortError(code, err);  // the destructor cleans up
  st.queues = p->range_.count;
  return p;
}

AfXdpPort::~AfXdpPort() {
  reopen_.wait();
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
  reopen_.wait();
  close_all();
  if (ctl_ >= 0) offloads_restore(ctl_, &offloads_);
  cache_.flush();
}

bool AfXdpPort::attach_prog(int idx, uint32_t* map_entries, Status* code, std::string* err) {
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
  // Loaded as frags-aware (BPF_F_XDP_HAS_FRAGS): the program only looks at
  // the receive queue, so it is correct for multi-buffer frames, and the
  // kernel then hands over frames larger than a page (a generic-XDP TSO
  // batch, a jumbo frame on native XDP) instead of dropping them.
  bpf_program* bp = bpf_object__find_program_by_name(obj, "xsk_def_prog");
  if (bp) bpf_program__set_flags(bp, bpf_program__flags(bp) | BPF_F_XDP_HAS_FRAGS);
  int r = bpf_object__load(obj);
  if (r < 0 && bp) {  // a kernel before 5.18: load it again without the flag
    xdp_program__close(prog_);
    prog_ = xdp_program__find_file("xsk_def_xdp_prog.o", nullptr, nullptr);
    if (libxdp_get_error(prog_)) prog_ = nullptr;
    obj = prog_ ? xdp_program__bpf_obj(prog_) : nullptr;
    r = obj ? bpf_object__load(obj) : -ENOENT;
    bp = obj ? bpf_object__find_program_by_name(obj, "xsk_def_prog") : nullptr;
  }
  if (r < 0)
    return fail(r == -EPERM ? Status::kSystem : Status::kSystem,
                sys_error(w + ": loading the XDP program", -r, "CAP_BPF and CAP_NET_ADMIN (run as root)"));
  prog_fd_ = bp ? bpf_program__fd(bp) : -1;
  map_fd_ = bpf_object__find_map_fd_by_name(obj, "xsks_map");
  bpf_map* m = bpf_object__find_map_by_name(obj, "xsks_map");
  if (prog_fd_ < 0 || map_fd_ < 0 || !m) return fail(Status::kSystem, w + ": xsk_def_xdp_prog.o has no xsk_def_prog/xsks_map");
  *map_entries = bpf_map__max_entries(m);
  std::vector<uint32_t> modes;
  if (opts_.xdp_mode != KernelPortOptions::XdpMode::kGeneric) modes.push_back(XDP_FLAGS_DRV_MODE);
  if (opts_.xdp_mode != KernelPortOptions::XdpMode::kNative) modes.push_back(XDP_FLAGS_SKB_MODE);
  // On a veth, native XDP makes the kernel take TSO and GSO away from the
  // other end (a container's or guest's interface), which then sends every
  // TCP segment on its own; generic XDP leaves them on and sees each batch
  // whole (multi-buffer, infer_tso). Measured with default guests, one
  // stream: 2.4 Gbit/s native, 11.5 generic. So auto means generic there.
  // Not for an uplink: its veth's other end is another VTEP's underlay
  // interface, and under generic XDP that VTEP's UDP GSO batches (this
  // switch's own VXLAN batches, or a Linux vxlan device's tunnel TSO frames)
  // arrive whole without their segment size and have to be dropped
  // (rx_udp_gso_lost): TCP between two switches over a veth underlay stood
  // at 0.00 Gbit/s. Native XDP makes that end cut them before they cross, as
  // a wire would.
  if (opts_.xdp_mode == KernelPortOptions::XdpMode::kAuto && !opts_.underlay && if_driver(ctl_, ifname_) == "veth")
    std::swap(modes[0], modes[1]);
  int last = 0;
  for (uint32_t mode : modes) {
    r = bpf_xdp_attach(idx, prog_fd_, XDP_FLAGS_UPDATE_IF_NOEXIST | mode, nullptr);
    if (r == 0) {
      prog_mode_ = mode;
      prog_ifindex_ = idx;
      journal_prog();
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

// The attached program in the journal (ports/ifutil.h), so that a process
// killed before it detaches (kill -9) does not leave it on the interface,
// where the next start's port would find the interface taken: xdp_recover.
void AfXdpPort::journal_prog() {
  bpf_prog_info info{};
  uint32_t len = sizeof(info);
  if (bpf_obj_get_info_by_fd(prog_fd_, &info, &len) != 0) return;
  prog_journal_ = journal_record(kXdpJournalPrefix + ifname_, std::to_string(prog_ifindex_) + " " + std::to_string(info.id) +
                                                                   " " + std::to_string(prog_mode_) + "\n");
}

void AfXdpPort::detach_prog() {
  if (prog_ifindex_ && prog_fd_ >= 0) {
    bpf_xdp_attach_opts o{};
    o.sz = sizeof(o);
    o.old_prog_fd = prog_fd_;  // only if it is still ours
    bpf_xdp_detach(prog_ifindex_, prog_mode_, &o);
  }
  if (!prog_journal_.empty()) std::remove(prog_journal_.c_str());
  prog_journal_.clear();
  prog_ifindex_ = 0;
  if (prog_) xdp_program__close(prog_);
  prog_ = nullptr;
  prog_fd_ = map_fd_ = -1;
}

bool AfXdpPort::pick_queues(uint32_t map_entries, Status* code, std::string* err) {
  XskQueues r;
  if (!resolve_xsk_queues(ifname_, spec_queue_, opts_.queues, if_rx_queues(ctl_, ifname_), map_entries, &r, err)) {
    *code = Status::kInvalidArgument;
    return false;
  }
  if (xsks_.empty()) {
    range_ = r;
    xsks_.resize(r.count);
    for (uint32_t k = 0; k < r.count; ++k) xsks_[k].queue = r.first + k;
    return true;
  }
  if (r.first == range_.first && r.count == range_.count) return true;
  *code = Status::kInvalidArgument;
  *err = where() + ": " + ifname_ + " came back with " + std::to_string(r.of_interface) +
         " rx queues; this port uses queues " + queue_span(range_.first, range_.count) +
         ": delete and re-create the port to use the new ones";
  return false;
}

bool AfXdpPort::create_xsk(Xsk& x, bool want_share, bool zero_copy, int idx, int* bind_errno, Status* code,
                           std::string* err) {
  const std::string w = where();
  *bind_errno = 0;
  UmemRegistry& reg = umems();
  std::unique_lock<std::mutex> g(reg.mu, std::defer_lock);
  auto fail = [&](Status s, const std::string& what, int e, const char* cap) {
    if (g.owns_lock()) g.unlock();  // close_xsk() takes it
    *code = s;
    *err = sys_error(w + ": " + what, e, cap);
    close_xsk(x);
    return false;
  };
  x.fd = socket(AF_XDP, SOCK_RAW | SOCK_CLOEXEC, 0);
  if (x.fd < 0) return fail(Status::kSystem, "socket(AF_XDP)", errno, "CAP_NET_RAW (run as root)");
  g.lock();
  auto& users = reg.bound[pool_.get()];
  const int share = want_share && !users.empty() ? users.front().fd : -1;
  if (share >= 0) zero_copy = users.front().zc;
  bool sg = share >= 0 ? users.front().sg : true;
  if (share < 0) {
    xdp_umem_reg mr{};
    mr.addr = reinterpret_cast<uint64_t>(pool_->base());
    mr.len = pool_->bytes();
    mr.chunk_size = pool_->buf_size();
    mr.headroom = 0;
    if (setsockopt(x.fd, SOL_XDP, XDP_UMEM_REG, &mr, sizeof(mr)) < 0)
      return fail(Status::kSystem, "registering the buffer pool as UMEM", errno, "CAP_IPC_LOCK or a higher RLIMIT_MEMLOCK");
  }
  uint32_t fill_n = rx_n_, comp_n = tx_n_;
  if (setsockopt(x.fd, SOL_XDP, XDP_UMEM_FILL_RING, &fill_n, sizeof(fill_n)) < 0 ||
      setsockopt(x.fd, SOL_XDP, XDP_UMEM_COMPLETION_RING, &comp_n, sizeof(comp_n)) < 0 ||
      setsockopt(x.fd, SOL_XDP, XDP_RX_RING, &rx_n_, sizeof(rx_n_)) < 0 ||
      setsockopt(x.fd, SOL_XDP, XDP_TX_RING, &tx_n_, sizeof(tx_n_)) < 0)
    return fail(Status::kSystem, "ring setup (rxRing " + std::to_string(rx_n_) + ", txRing " + std::to_string(tx_n_) + ")",
                errno, nullptr);
  xdp_mmap_offsets off{};
  socklen_t ol = sizeof(off);
  if (getsockopt(x.fd, SOL_XDP, XDP_MMAP_OFFSETS, &off, &ol) < 0)
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
    void* m = mmap(nullptr, spec[i].bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, x.fd, spec[i].pgoff);
    if (m == MAP_FAILED) return fail(Status::kSystem, "mmap of an AF_XDP ring", errno, nullptr);
    x.maps[i] = m;
    x.map_len[i] = spec[i].bytes;
  }
  setup_ring(&x.fill, x.maps[0], off.fr, fill_n, true);
  setup_ring(&x.comp, x.maps[1], off.cr, comp_n, false);
  setup_ring(&x.rx, x.maps[2], off.rx, rx_n_, false);
  setup_ring(&x.tx, x.maps[3], off.tx, tx_n_, true);

  sockaddr_xdp sa{};
  sa.sxdp_family = AF_XDP;
  sa.sxdp_ifindex = uint32_t(idx);
  sa.sxdp_queue_id = x.queue;
  sa.sxdp_flags = XDP_USE_NEED_WAKEUP | (zero_copy ? XDP_ZEROCOPY : XDP_COPY) | kXdpUseSg;
  if (share >= 0) {
    sa.sxdp_flags = XDP_SHARED_UMEM;  // the kernel takes copy/zero-copy/need_wakeup/SG from the UMEM's first socket
    sa.sxdp_shared_umem_fd = uint32_t(share);
  }
  int rc = bind(x.fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa));
  if (rc < 0 && share < 0 && (errno == EOPNOTSUPP || errno == EINVAL)) {
    // A kernel before 6.6, or a zero-copy driver without multi-buffer: one
    // chunk per frame.
    sa.sxdp_flags &= ~kXdpUseSg;
    sg = false;
    rc = bind(x.fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa));
  }
  if (rc < 0) {
    *bind_errno = errno;
    Status s = errno == EBUSY ? Status::kInUse : errno == ENODEV ? Status::kNotFound : Status::kSystem;
    std::string what = errno == EBUSY ? "queue " + std::to_string(x.queue) + " of " + ifname_ +
                                            " is already used by another AF_XDP socket: stop that program or pick "
                                            "other queues (afxdp:" + ifname_ + "@N, queues)"
                                      : std::string("bind (") + (zero_copy ? "zero-copy" : "copy") + " mode, queue " +
                                            std::to_string(x.queue) + ")";
    return fail(s, what, errno, nullptr);
  }
  users.push_back({x.fd, zero_copy, sg});
  x.zc = zero_copy;
  x.sg = sg;
  x.shared = share >= 0;
  return true;
}

bool AfXdpPort::open_xsk(Xsk& x, int idx, std::string* zc_note, int* bind_errno, Status* code, std::string* err) {
  bool have_users;
  bool users_zc = false;
  {
    std::lock_guard<std::mutex> g(umems().mu);
    auto it = umems().bound.find(pool_.get());
    have_users = it != umems().bound.end() && !it->second.empty();
    if (have_users) users_zc = it->second.front().zc;
  }
  const bool mode_ok = users_zc ? opts_.zero_copy != KernelPortOptions::ZeroCopy::kOff
                                : opts_.zero_copy != KernelPortOptions::ZeroCopy::kOn;
  if (have_users && mode_ok) {
    if (create_xsk(x, true, users_zc, idx, bind_errno, code, err)) return true;
    if (*bind_errno == EBUSY) return false;
  }
  std::vector<bool> tries;
  if (opts_.zero_copy != KernelPortOptions::ZeroCopy::kOff) tries.push_back(true);
  if (opts_.zero_copy != KernelPortOptions::ZeroCopy::kOn) tries.push_back(false);
  for (bool zc : tries) {
    if (create_xsk(x, false, zc, idx, bind_errno, code, err)) return true;
    if (!zc || *bind_errno == 0 || *bind_errno == EBUSY) break;  // only a refused zero-copy bind falls back to copy
    *zc_note = " (zero-copy refused by the driver: " + std::string(strerror(*bind_errno)) + ")";
  }
  if (opts_.zero_copy == KernelPortOptions::ZeroCopy::kOn)
    *err += "; the driver may not support zero-copy: try zeroCopy: 'auto' or 'off'";
  return false;
}

bool AfXdpPort::open_queues(uint32_t busy_wait_ms, Status* code, std::string* err) {
  const std::string w = where();
  int idx = if_index(ctl_, ifname_);
  if (idx < 0) {
    *code = idx == -ENODEV ? Status::kNotFound : Status::kSystem;
    *err = w + ": interface does not exist (any more); the port comes up when it returns";
    return false;
  }
  uint32_t map_entries = 0;
  if (!attach_prog(idx, &map_entries, code, err)) return false;
  if (!pick_queues(map_entries, code, err)) {
    detach_prog();
    return false;
  }
  std::string zc_note;
  for (Xsk& x : xsks_) {
    int be = 0;
    bool ok = open_xsk(x, idx, &zc_note, &be, code, err);
    for (uint32_t waited = 0; !ok && be == EBUSY && waited < busy_wait_ms; waited += 10) {
      usleep(10000);
      ok = open_xsk(x, idx, &zc_note, &be, code, err);
    }
    if (!ok) {
      close_kernel();
      return false;
    }
  }
  {
    std::string what;
    int e = 0;
    if (!vnet_.open(idx, &what, &e)) {
      *code = Status::kSystem;
      *err = sys_error(w + ": " + what, e, "CAP_NET_RAW");
      close_kernel();
      return false;
    }
  }
  ifindex_ = idx;
  const Xsk& first = xsks_[0];
  status_->set_offloads(std::string(prog_mode_ == XDP_FLAGS_DRV_MODE ? "native XDP" : "generic XDP") + ", " +
                        (first.zc ? "zero-copy" : "copy") + " mode" + zc_note +
                        (first.sg ? ", multi-buffer" : ", one chunk per frame") +
                        (first.shared ? "; UMEM = the buffer pool, shared with other AF_XDP ports" : "; UMEM = the buffer pool") +
                        "; frames with offload state (TSO, checksum) or too long for a descriptor chain: through a "
                        "packet socket" +
                        (opts_.offloads_off ? " (the kernel segments them); interface offloads: " : "; interface receive offloads: ") +
                        offload_note_);
  describe_io();
  return true;
}

bool AfXdpPort::arm_queues(Status* code, std::string* err) {
  const std::string w = where();
  auto fail = [&](const std::string& what, int e, const char* cap) {
    *code = Status::kSystem;
    *err = sys_error(w + ": " + what, e, cap);
    close_all();
    return false;
  };
  for (Xsk& x : xsks_) {
    // Buffers on the fill ring before the XSKMAP entry: a frame redirected
    // to a socket with an empty fill ring is dropped by the kernel
    // (rx_kernel_drops; seen as one lost frame at attach).
    refill(x);
    if (bpf_map_update_elem(map_fd_, &x.queue, &x.fd, BPF_ANY) < 0)
      return fail("adding the socket of queue " + std::to_string(x.queue) + " to the XSKMAP", errno, "CAP_BPF");
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u32 = x.queue;
    if (epoll_ctl(epfd_, EPOLL_CTL_ADD, x.fd, &ev) < 0) return fail("epoll_ctl", errno, nullptr);
  }
  read_mtu();
  status_->ifindex.store(ifindex_, std::memory_order_relaxed);
  status_->attached.store(true, std::memory_order_relaxed);
  live_ = true;
  return true;
}

void AfXdpPort::describe_io() {
  const XskQueues& r = range_;
  std::string io = "AF_XDP rings, " + std::to_string(r.count) + (r.count == 1 ? " queue (" : " queues (") +
                   queue_span(r.first, r.count) + ")";
  if (r.of_interface > r.count)
    io += " of the interface's " + std::to_string(r.of_interface) + ": frames on the others go to the kernel";
  io += ", need_wakeup; tx on queue " + std::to_string(r.first);
  status_->set_io(std::move(io));
}

void AfXdpPort::close_xsk(Xsk& x) {
  if (x.fd < 0) return;
  if (epfd_ >= 0) epoll_ctl(epfd_, EPOLL_CTL_DEL, x.fd, nullptr);
  {
    UmemRegistry& reg = umems();
    std::lock_guard<std::mutex> g(reg.mu);
    auto it = reg.bound.find(pool_.get());
    if (it != reg.bound.end()) {
      auto& v = it->second;
      v.erase(std::remove_if(v.begin(), v.end(), [&](const UmemUser& u) { return u.fd == x.fd; }), v.end());
      if (v.empty()) reg.bound.erase(it);
    }
  }
  for (int i = 0; i < 4; ++i)
    if (x.maps[i]) munmap(x.maps[i], x.map_len[i]);
  close(x.fd);  // unbinds: the kernel lets go of every buffer it held
  x = Xsk{x.queue};
}

void AfXdpPort::close_xsks() {
  vnet_.close();
  for (Xsk& x : xsks_) close_xsk(x);
  ifindex_ = 0;
  if (status_) status_->attached.store(false, std::memory_order_relaxed);
}

void AfXdpPort::close_kernel() {
  close_xsks();
  detach_prog();
}

void AfXdpPort::reclaim_lent() {
  for (uint32_t c = 0; c < lent_.size(); ++c)
    if (lent_[c]) {
      lent_[c] = 0;
      cache_.free(buffer_of_chunk(c));
    }
}

void AfXdpPort::close_all() {
  live_ = false;
  close_kernel();
  reclaim_lent();
}

void AfXdpPort::reopen_off_thread(bool reopen) {
  live_ = false;
  status_->attached.store(false, std::memory_order_relaxed);
  reopen_.start([this, reopen] {
    Reopened r;
    close_kernel();  // the kernel lets go of the buffers it held; check_link takes them back
    if (!reopen) return r;
    offloads_restore(ctl_, &offloads_);
    offload_note_ = offloads_off(ctl_, ifname_, &offloads_, !opts_.offloads_off);
    Status code;
    r.ok = open_queues(0, &code, &r.err);  // a busy queue: the next try is a second away
    return r;
  });
}

void AfXdpPort::refill(Xsk& x) {
  uint32_t want = xsk_prod_nb_free(&x.fill, rx_n_);
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
    xsk_ring_prod__reserve(&x.fill, n, &at);  // n <= free slots: always succeeds
    for (uint32_t i = 0; i < n; ++i) {
      *xsk_ring_prod__fill_addr(&x.fill, at + i) = xsk_addr_of(bufs[i], 0, shift_) + headroom;
      lent_[bufs[i]] = 1;
    }
    xsk_ring_prod__submit(&x.fill, n);
    want -= n;
    if (n < lim) return;
  }
}

void AfXdpPort::reap_completions() {
  Xsk& x = txq();
  uint32_t at = 0;
  uint32_t n = xsk_ring_cons__peek(&x.comp, tx_n_, &at);
  for (uint32_t i = 0; i < n; ++i) {
    // The chunk of a frame's last descriptor is marked lent (see tx_burst);
    // the others of a chain come back unmarked and are skipped.
    uint32_t c = uint32_t(*xsk_ring_cons__comp_addr(&x.comp, at + i) >> shift_);
    if (c < lent_.size() && lent_[c]) {
      lent_[c] = 0;
      cache_.free(buffer_of_chunk(c));
    }
  }
  if (n) xsk_ring_cons__release(&x.comp, n);
}

void AfXdpPort::flush_tx() {
  Xsk& x = txq();
  // Copy mode sends at most a few dozen frames per kick: kick until the
  // kernel has taken what is queued (a bounded number of times).
  for (int i = 0; i < 16; ++i) {
    if (__atomic_load_n(x.tx.consumer, __ATOMIC_ACQUIRE) == x.tx.cached_prod) return;
    if (!xsk_ring_prod__needs_wakeup(&x.tx)) return;
    status_->add(PortStatus::kicks);
    if (sendto(x.fd, nullptr, 0, MSG_DONTWAIT, nullptr, 0) < 0) {
      if (errno == EAGAIN || errno == EBUSY) continue;
      if (errno != ENOBUFS && errno != ENETDOWN) status_->add(PortStatus::tx_errors);
      return;
    }
  }
}

uint32_t AfXdpPort::receive(Xsk& x, Pkt* pkts, uint32_t max) {
  uint32_t at = 0;
  // With multi-buffer a frame may take several descriptors: look at all
  // there are, so that a chain is seen whole, and consume whole frames only.
  const uint32_t avail = xsk_ring_cons__peek(&x.rx, x.sg ? rx_n_ : max, &at);
  uint32_t used = 0, got = 0;
  while (used < avail && got < max) {
    const xdp_desc* d = xsk_ring_cons__rx_desc(&x.rx, at + used);
    if (!(d->options & kXdpPktContd)) {
      Pkt p = xsk_pkt_of(d->addr, d->len, shift_);
      lent_[p.buf] = 0;
      ++used;
      restore_state(p);
      pkts[got++] = p;
      continue;
    }
    uint32_t last = used + 1;
    while (last < avail && (xsk_ring_cons__rx_desc(&x.rx, at + last)->options & kXdpPktContd)) ++last;
    if (last == avail) break;  // the chain's end is not there yet: next time
    Pkt p;
    if (gather(x, at + used, last - used + 1, &p)) pkts[got++] = p;
    used = last + 1;
  }
  if (used < avail) xsk_ring_cons__cancel(&x.rx, avail - used);
  if (used) xsk_ring_cons__release(&x.rx, used);
  refill(x);
  if (!avail && xsk_ring_prod__needs_wakeup(&x.fill)) recvfrom(x.fd, nullptr, 0, MSG_DONTWAIT, nullptr, nullptr);
  return got;
}

bool AfXdpPort::gather(Xsk& x, uint32_t first, uint32_t n, Pkt* out) {
  uint32_t total = 0;
  for (uint32_t i = 0; i < n; ++i) total += xsk_ring_cons__rx_desc(&x.rx, first + i)->len;
  uint32_t big = kNoId;
  const uint32_t room = pool_->large_count() ? pool_->capacity(pool_->count()) - pool_->headroom() : 0;
  if (total > kMaxLargeFrame || total > room) {
    status_->add(PortStatus::rx_too_big);
  } else if (!cache_.alloc_large(&big)) {
    status_->add(PortStatus::rx_no_buffer);
    big = kNoId;
  }
  uint8_t* to = big == kNoId ? nullptr : pool_->data(big) + pool_->headroom();
  for (uint32_t i = 0; i < n; ++i) {
    const xdp_desc* d = xsk_ring_cons__rx_desc(&x.rx, first + i);
    const Pkt piece = xsk_pkt_of(d->addr, d->len, shift_);
    if (to) {
      std::memcpy(to, pool_->frame(piece), piece.len);
      to += piece.len;
    }
    lent_[piece.buf] = 0;
    cache_.free(piece.buf);
  }
  if (big == kNoId) return false;
  Pkt p{big, pool_->headroom(), uint16_t(total)};
  status_->add(PortStatus::rx_super);
  restore_state(p);
  *out = p;
  return true;
}

uint16_t AfXdpPort::rx_burst(Pkt* pkts, uint16_t max) {
  if (!live_) return 0;
  if (max > burst_) max = uint16_t(burst_);
  const uint32_t nq = uint32_t(xsks_.size());
  const uint32_t start = next_rx_;
  next_rx_ = start + 1 == nq ? 0 : start + 1;
  uint32_t got = 0;
  for (uint32_t i = 0; i < nq && got < max; ++i) {
    const uint32_t k = start + i < nq ? start + i : start + i - nq;
    const uint32_t n = receive(xsks_[k], pkts + got, max - got);
    if (n) status_->queue_rx[k].fetch_add(n, std::memory_order_relaxed);
    got += n;
  }
  if (!got) {
    reap_completions();
    flush_tx();
    return 0;
  }
  if (!opts_.offloads_off && got >= 2) {
    // GRO: segments of one TCP connection that arrived one by one (from a
    // wire, or a veth guest without TSO under native XDP) become one TSO
    // frame, which a guest's port takes whole.
    uint64_t bytes = 0;
    for (uint32_t i = 0; i < got; ++i) bytes += pkts[i].len;
    if (coalesce_worth(bytes, got))
      got = coalesce_tcp_runs(
          *pool_, cache_, pkts, uint16_t(got), true, [](uint16_t, uint16_t) { return true; },
          [](uint16_t, uint16_t) {},
          [&](uint16_t i, uint16_t j, Pkt) {
            status_->add(PortStatus::rx_gro, uint64_t(j - i));
            status_->add(PortStatus::rx_offload);
          });
  }
  return uint16_t(got);
}

uint16_t AfXdpPort::tx_burst(Pkt* pkts, uint16_t n) {
  if (!live_) return 0;
  Xsk& x = txq();
  reap_completions();
  const uint32_t free_slots = xsk_prod_nb_free(&x.tx, tx_n_);
  const uint32_t chunk = 1u << shift_;
  uint32_t at = x.tx.cached_prod;  // the first free slot; reserved once the count is known
  uint32_t used = 0, queued = 0;   // slots taken so far; of them, not yet handed over
  // Hands the queued descriptors to the kernel and kicks, so that what
  // follows through vnet_ leaves after them (frames of a flow stay in order).
  auto submit = [&] {
    if (!queued) return;
    uint32_t idx = 0;
    xsk_ring_prod__reserve(&x.tx, queued, &idx);  // queued <= free slots: takes exactly these
    xsk_ring_prod__submit(&x.tx, queued);
    at += queued;
    queued = 0;
    flush_tx();
  };
  uint16_t k = 0;
  for (; k < n; ++k) {
    const Pkt& p = pkts[k];
    const uint64_t addr = xsk_addr_of(p.buf, pkt_off(p), shift_);
    const uint32_t head = chunk - uint32_t(addr & (chunk - 1));  // bytes left in the first chunk
    const uint32_t descs = p.len <= head ? 1 : 1 + (p.len - head + chunk - 1) / chunk;
    if ((pkt_has_meta(p) && pool_->meta(p.buf).pending()) || (descs > 1 && (!x.sg || descs > kMaxTxDescs))) {
      // Offload state, or more chunks than a frame may take: the packet socket.
      submit();
      vnet_.add(*pool_, pkts, k);
      continue;
    }
    if (vnet_.pending()) {
      const uint32_t want = vnet_.pending(), sent = vnet_.flush(cache_, *pool_, pkts, *status_);
      if (sent < want) return uint16_t(k - (want - sent));  // the rest stay with the engine
    }
    if (used + descs > free_slots) break;
    uint64_t a = addr;
    uint32_t left = p.len, piece = std::min(left, head);
    for (uint32_t i = 0; i < descs; ++i) {
      xdp_desc* d = xsk_ring_prod__tx_desc(&x.tx, at + queued + i);
      d->addr = a;
      d->len = piece;
      d->options = i + 1 < descs ? kXdpPktContd : 0;
      left -= piece;
      a = (a | (chunk - 1)) + 1;  // the next chunk of the (large) buffer
      piece = std::min(left, chunk);
    }
    // The chunk of the last descriptor stands for the whole buffer: its
    // completion comes last (reap_completions frees the buffer then).
    lent_[uint32_t((addr + p.len - 1) >> shift_)] = 1;
    used += descs;
    queued += descs;
  }
  if (vnet_.pending()) {
    const uint32_t want = vnet_.pending(), sent = vnet_.flush(cache_, *pool_, pkts, *status_);
    if (sent < want) return uint16_t(k - (want - sent));
  }
  if (queued) submit();
  else flush_tx();
  return k;
}

void AfXdpPort::explain_udp_gso_lost() {
  const uint64_t n = status_->c[PortStatus::rx_udp_gso_lost].load(std::memory_order_relaxed);
  if (n == udp_gso_lost_seen_) return;
  udp_gso_lost_seen_ = n;
  status_->set_error(std::to_string(n) + " UDP GSO batches (a sender's UDP_SEGMENT sends) arrived whole on " +
                     ifname_ + " without their segment size, which " +
                     (prog_mode_ == XDP_FLAGS_SKB_MODE ? "generic" : "native") +
                     " XDP does not pass on: they cannot be cut as the sender meant and were dropped (oversize). "
                     "An afpacket port takes them; on a veth, xdpMode: 'native' makes the sender cut them itself");
}

LinkState AfXdpPort::check_link() {
  if (reopen_.busy()) {
    Reopened r;
    if (!reopen_.take(&r)) return LinkState::kDown;  // still closing or opening
    reclaim_lent();  // the old sockets are closed
    Status code;
    std::string err;
    if (!r.ok) {
      if (!r.err.empty()) status_->set_error(r.err);  // the next try is a second away
    } else if (arm_queues(&code, &err)) {
      status_->add(PortStatus::reopens);
      status_->set_error("");
      refresh_mac();
    } else {
      status_->set_error(err);
    }
  }
  int idx = if_index(ctl_, ifname_);
  if (idx <= 0) {
    if (is_open() || prog_) {
      reopen_off_thread(false);
      status_->set_error("interface " + ifname_ + " disappeared; the port comes back when it returns");
    }
    return LinkState::kDown;
  }
  const bool replaced = is_open() && idx != ifindex_;  // deleted and created again
  if (!is_open() || replaced) {
    uint64_t now = mono_ms();
    if (!replaced && last_open_try_ms_ != 0 && now - last_open_try_ms_ < 1000) return LinkState::kDown;
    last_open_try_ms_ = now;
    reopen_off_thread(true);
    return LinkState::kDown;
  }
  refresh_mac();
  uint64_t drops = 0, invalid = 0;
  for (Xsk& x : xsks_) {
    xdp_statistics xs{};
    socklen_t l = sizeof(xs);
    if (getsockopt(x.fd, SOL_XDP, XDP_STATISTICS, &xs, &l) < 0) continue;
    drops += (xs.rx_dropped - x.last_stats.rx_dropped) + (xs.rx_ring_full - x.last_stats.rx_ring_full);
    invalid += xs.tx_invalid_descs - x.last_stats.tx_invalid_descs;
    x.last_stats = xs;
  }
  if (drops) status_->add(PortStatus::rx_kernel_drops, drops);
  explain_udp_gso_lost();
  read_mtu();  // an MTU change takes effect within a link check
  if (invalid) status_->add(PortStatus::tx_errors, invalid);
  unsigned fl = 0;
  if (if_flags(ctl_, ifname_, &fl) < 0) return LinkState::kDown;
  status_->set_link_reason(ifname_, fl);
  return (fl & IFF_UP) && (fl & IFF_RUNNING) ? LinkState::kUp : LinkState::kDown;
}

std::unique_ptr<Port> open_afxdp_port(const PortSpec& spec, const KernelPortOptions& opts,
                                      std::shared_ptr<BufferPool> pool, std::shared_ptr<PortStatus> status) {
  return AfXdpPort::open(spec, opts, std::move(pool), std::move(status));
}

std::vector<std::string> xdp_recover(const std::string& dir) {
  std::vector<std::string> removed;
  for (const std::string& n : journal_records(dir, kXdpJournalPrefix)) {
    const std::string path = dir + "/" + n, ifname = n.substr(sizeof(kXdpJournalPrefix) - 1);
    int ifindex = 0;
    unsigned id = 0, mode = 0;
    FILE* f = std::fopen(path.c_str(), "r");
    const bool ok = f && std::fscanf(f, "%d %u %u", &ifindex, &id, &mode) == 3;
    if (f) std::fclose(f);
    // Only the program that process attached, on the same interface: the
    // same ifindex, and the same program id still attached in that mode (an
    // id is not reused while its program lives). Anything else is left alone.
    uint32_t now = 0;
    if (ok && int(if_nametoindex(ifname.c_str())) == ifindex && bpf_xdp_query_id(ifindex, int(mode), &now) == 0 && now == id) {
      bpf_xdp_attach_opts o{};
      o.sz = sizeof(o);
      o.old_prog_fd = bpf_prog_get_fd_by_id(id);
      if (o.old_prog_fd >= 0 && bpf_xdp_detach(ifindex, mode, &o) == 0) removed.push_back(ifname);
      if (o.old_prog_fd >= 0) close(o.old_prog_fd);
    }
    std::remove(path.c_str());
  }
  return removed;
}

}  // namespace vpc

#endif  // VPC_HAVE_AFXDP
