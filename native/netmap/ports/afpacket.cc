#include "ports/afpacket.h"

#include <fcntl.h>

#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "ports/link_watch.h"
#include "ports/vnet.h"

namespace vpc {

namespace {
// Frames per ring, each way: 2 x 4 MiB of kernel memory a port (2 KiB
// slots). The receive ring absorbs a guest's bursts while the engine wakes
// or learns: with 512 slots, a burst of 1,000 new MACs into a sleeping
// engine lost up to half of its frames (the EVPN tests, 2026-12-06).
constexpr uint32_t kDefaultRing = 2048;
constexpr uint32_t kBlockSize = 1u << 16;
// Where a slot's frame data starts on transmit (TPACKET_V2 without
// PACKET_TX_HAS_OFF): right after the aligned header.
constexpr uint32_t kTxDataOff = TPACKET_ALIGN(sizeof(tpacket2_hdr));
constexpr uint32_t kSllOff = TPACKET_ALIGN(sizeof(tpacket2_hdr));

// Kernel memory a socket may hold in super-frames waiting for recvmmsg (the
// kernel charges what is queued, nothing up front). A 64 KiB TSO frame from a
// veth costs ~70-130 KiB of it; 16 MiB holds a ring's worth of bursts.
constexpr int kQueuedBytes = 16 << 20;
constexpr uint16_t kSkipPos = 0xFFFF;  // a queued frame read only to be dropped

uint32_t pow2_at_least(uint32_t v) {
  uint32_t p = 1;
  while (p < v) p <<= 1;
  return p;
}
}  // namespace

AfPacketPort::AfPacketPort(const std::string& ifname, const KernelPortOptions& opts,
                           std::shared_ptr<BufferPool> pool, std::shared_ptr<PortStatus> status)
    : ifname_(ifname), opts_(opts), pool_(std::move(pool)), status_(std::move(status)), cache_(pool_) {}

std::unique_ptr<AfPacketPort> AfPacketPort::open(const std::string& ifname, const KernelPortOptions& opts,
                                                 std::shared_ptr<BufferPool> pool,
                                                 std::shared_ptr<PortStatus> status) {
  if (Claim c = claim_interface(ifname); c != Claim::kOk)
    throw PortError(Status::kInUse, claim_refused("interface " + ifname, c));
  std::unique_ptr<AfPacketPort> p(new AfPacketPort(ifname, opts, std::move(pool), std::move(status)));
  p->claimed_ = true;
  p->ctl_ = ctl_socket();
  p->epfd_ = epoll_create1(EPOLL_CLOEXEC);
  if (p->ctl_ < 0 || p->epfd_ < 0) throw PortError(Status::kSystem, sys_error("afpacket:" + ifname + ": socket", errno, nullptr));
  p->netns_ = socket_netns(p->ctl_);
  int idx = if_index(p->ctl_, ifname);
  const bool missing = idx == -ENODEV;
  if (missing && !opts.wait_for_interface)
    throw PortError(Status::kNotFound, "interface " + ifname +
                                           " does not exist: create it first (for example: ip link add " + ifname +
                                           " type veth peer name " + ifname + "-peer) or check the name with: ip link");
  if (idx < 0 && !missing) throw PortError(Status::kSystem, sys_error("afpacket:" + ifname + ": looking up the interface", -idx, nullptr));
  if (missing || if_hwaddr(p->ctl_, ifname, &p->mac_) < 0) p->mac_ = 0;  // then the configured MAC is used
  p->status_->mac.store(p->mac_, std::memory_order_relaxed);

  PortStatus& st = *p->status_;
  st.rx_ring = opts.rx_ring ? opts.rx_ring : kDefaultRing;
  st.tx_ring = opts.tx_ring ? opts.tx_ring : kDefaultRing;
  p->burst_ = opts.burst ? std::min<uint32_t>(opts.burst, kMaxBurst) : kMaxBurst;
  st.burst = p->burst_;
  st.queues = 1;
  st.set_io("TPACKET_V2 mmap rings: frames are read from and written to shared memory, one sendto() kick per "
            "transmitted batch; no system call on receive. Frames larger than a slot (TSO/GSO super-frames): one "
            "recvmmsg() per receive burst, one sendmmsg() per transmitted run");
  const std::string vnet = "virtio-net headers (PACKET_VNET_HDR): checksum-partial and TSO/GSO frames up to 64 KiB "
                           "are received and transmitted as they are";
  st.set_kernel_path(opts.kernel_path ? "off: the port is in no switch yet" : "off: turned off (kernelPath: false)");
  if (missing) {
    // Down until the interface appears: check_link opens it then (and turns
    // its offloads off first, when asked), as after it disappeared.
    st.set_offloads(vnet + (opts.offloads_off ? "; interface offloads turned off when the interface appears"
                                              : "; interface offloads left as they are"));
    st.set_error("interface " + ifname + " does not exist (yet); the port comes up when it appears");
    return p;
  }
  st.set_offloads(opts.offloads_off ? vnet + "; interface offloads " + offloads_off(p->ctl_, ifname, &p->offloads_)
                                    : vnet + "; interface offloads left as they are");

  AfPacketSocket sock;
  p->open_socket(&sock);
  if (sock.fd < 0) throw PortError(sock.code, sock.err);  // the destructor restores the offloads
  p->adopt(std::move(sock));
  return p;
}

namespace {

void close_progs(KpathProgs* p) {
  for (int* fd : {&p->tc, &p->sock, &p->xdp})
    if (*fd >= 0) close(std::exchange(*fd, -1));
}

// Copies of the programs' descriptors (the uplink's XDP one too), all or
// none: false when the process is out of descriptors.
bool dup_progs(const KpathProgs& from, bool xdp, KpathProgs* to) {
  to->tc = fcntl(from.tc, F_DUPFD_CLOEXEC, 3);
  to->sock = fcntl(from.sock, F_DUPFD_CLOEXEC, 3);
  to->xdp = xdp && from.xdp >= 0 ? fcntl(from.xdp, F_DUPFD_CLOEXEC, 3) : -1;
  to->xdp_refused = from.xdp_refused;
  if (to->tc >= 0 && to->sock >= 0 && (to->xdp >= 0 || !xdp || from.xdp < 0)) return true;
  close_progs(to);
  return false;
}

}  // namespace

AfPacketPort::~AfPacketPort() {
  reopen_.wait();  // what it made goes with it
  close_socket();
  if (ctl_ >= 0) {
    offloads_restore(ctl_, &offloads_);
    close(ctl_);
  }
  if (epfd_ >= 0) close(epfd_);
  close_progs(&kp_);
  if (claimed_) release_interface(ifname_);
}

AfPacketSocket& AfPacketSocket::operator=(AfPacketSocket&& o) noexcept {
  if (this == &o) return *this;
  close();
  fd = std::exchange(o.fd, -1);
  big_fd = std::exchange(o.big_fd, -1);
  ring = std::exchange(o.ring, nullptr);
  ring_bytes = std::exchange(o.ring_bytes, 0);
  frame_size = o.frame_size;
  rx_frames = o.rx_frames;
  tx_frames = o.tx_frames;
  ifindex = o.ifindex;
  code = o.code;
  err = std::move(o.err);
  kp_tried = o.kp_tried;
  kp_hooked = std::exchange(o.kp_hooked, false);
  kp_link = std::exchange(o.kp_link, KpathHook{});
  kp_why = std::move(o.kp_why);
  return *this;
}

void AfPacketSocket::close() {
  kpath_detach_tc(&kp_link);
  kp_hooked = false;
  if (fd >= 0) ::close(fd);  // also drops the promiscuous membership
  if (big_fd >= 0) ::close(big_fd);
  if (ring) munmap(ring, ring_bytes);
  fd = big_fd = -1;
  ring = nullptr;
  ring_bytes = 0;
}

void AfPacketPort::open_socket(AfPacketSocket* s) const {
  const std::string where = "afpacket:" + ifname_;
  auto fail = [&](Status st, const std::string& what, int e, const char* cap) {
    s->close();
    s->code = st;
    s->err = sys_error(where + ": " + what, e, cap);
  };
  int idx = if_index(ctl_, ifname_);
  if (idx < 0) {
    s->code = idx == -ENODEV ? Status::kNotFound : Status::kSystem;
    s->err = where + ": interface does not exist (any more); the port comes up when it returns";
    return;
  }
  // Protocol 0: nothing is received until bind(), after the rings exist.
  const int fd = s->fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return fail(Status::kSystem, "socket(AF_PACKET)", errno, "CAP_NET_RAW");
  int v = TPACKET_V2;
  if (setsockopt(fd, SOL_PACKET, PACKET_VERSION, &v, sizeof(v)) < 0)
    return fail(Status::kSystem, "PACKET_VERSION", errno, nullptr);
  // A frame the kernel refuses (longer than the MTU, say) is skipped and its
  // slot handed back, instead of halting the TX ring on it. Before the rings.
  v = 1;
  if (setsockopt(fd, SOL_PACKET, PACKET_LOSS, &v, sizeof(v)) < 0)
    return fail(Status::kSystem, "PACKET_LOSS", errno, nullptr);
  // Before the rings: the kernel refuses PACKET_VNET_HDR once they exist.
  if (setsockopt(fd, SOL_PACKET, PACKET_VNET_HDR, &v, sizeof(v)) < 0)
    return fail(Status::kSystem, "PACKET_VNET_HDR", errno, nullptr);
  // A frame larger than a slot is queued whole on the socket as well, its
  // slot marked TP_STATUS_COPY (any nonzero value turns this on).
  if (setsockopt(fd, SOL_PACKET, PACKET_COPY_THRESH, &v, sizeof(v)) < 0)
    return fail(Status::kSystem, "PACKET_COPY_THRESH", errno, nullptr);
  setsockopt(fd, SOL_PACKET, PACKET_AUXDATA, &v, sizeof(v));  // the VLAN tag of a queued frame
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &kQueuedBytes, sizeof(kQueuedBytes)) < 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &kQueuedBytes, sizeof(kQueuedBytes));  // capped by net.core.rmem_max

  // Slots hold the largest frame a buffer can hold plus the slot header.
  const uint32_t frame_size = std::max<uint32_t>(2048, pow2_at_least(pool_->max_frame() + 128));
  const uint32_t block_size = std::max(kBlockSize, frame_size);
  const uint32_t per_block = block_size / frame_size;
  auto blocks = [&](uint32_t frames) { return (std::max<uint32_t>(frames, per_block) + per_block - 1) / per_block; };
  tpacket_req rx{}, tx{};
  rx.tp_block_size = tx.tp_block_size = block_size;
  rx.tp_frame_size = tx.tp_frame_size = frame_size;
  rx.tp_block_nr = blocks(status_->rx_ring);
  tx.tp_block_nr = blocks(status_->tx_ring);
  rx.tp_frame_nr = rx.tp_block_nr * per_block;
  tx.tp_frame_nr = tx.tp_block_nr * per_block;
  if (setsockopt(fd, SOL_PACKET, PACKET_RX_RING, &rx, sizeof(rx)) < 0)
    return fail(Status::kSystem, "PACKET_RX_RING (" + std::to_string(rx.tp_frame_nr) + " frames; try a smaller rxRing)", errno, nullptr);
  if (setsockopt(fd, SOL_PACKET, PACKET_TX_RING, &tx, sizeof(tx)) < 0)
    return fail(Status::kSystem, "PACKET_TX_RING (" + std::to_string(tx.tp_frame_nr) + " frames; try a smaller txRing)", errno, nullptr);
  s->frame_size = frame_size;
  s->rx_frames = rx.tp_frame_nr;
  s->tx_frames = tx.tp_frame_nr;
  v = 1;
  setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &v, sizeof(v));     // best effort (Linux >= 3.14)
  setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &v, sizeof(v));  // best effort (Linux >= 4.20)
  const size_t bytes = size_t(s->rx_frames + s->tx_frames) * frame_size;
  void* m = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (m == MAP_FAILED) return fail(Status::kSystem, "mmap of the packet rings", errno, nullptr);
  s->ring = static_cast<uint8_t*>(m);
  s->ring_bytes = bytes;

  sockaddr_ll sll{};
  sll.sll_family = AF_PACKET;
  sll.sll_protocol = htons(ETH_P_ALL);
  sll.sll_ifindex = idx;
  if (bind(fd, reinterpret_cast<sockaddr*>(&sll), sizeof(sll)) < 0)
    return fail(errno == ENODEV ? Status::kNotFound : Status::kSystem, "bind", errno, nullptr);
  if (opts_.promisc) {
    packet_mreq mr{};
    mr.mr_ifindex = idx;
    mr.mr_type = PACKET_MR_PROMISC;
    if (setsockopt(fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof(mr)) < 0)
      return fail(Status::kSystem, "promiscuous mode (PACKET_ADD_MEMBERSHIP)", errno, "CAP_NET_RAW");
  }
  // Frames larger than a slot, or to be segmented, go through a second
  // socket (ports/vnet_sender.h: no ring, and through the qdisc).
  std::string what;
  int e = 0;
  s->big_fd = VnetSender::open_socket(idx, &what, &e);
  if (s->big_fd < 0) return fail(e == ENODEV ? Status::kNotFound : Status::kSystem, what, e, "CAP_NET_RAW");
  s->ifindex = idx;
}

void AfPacketPort::adopt(AfPacketSocket&& s) {
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = s.fd;
  if (epoll_ctl(epfd_, EPOLL_CTL_ADD, s.fd, &ev) < 0) {  // ENOMEM: s closes (here, rare); the next check tries again
    status_->set_error(sys_error("afpacket:" + ifname_ + ": epoll_ctl", errno, nullptr));
    return;
  }
  fd_ = std::exchange(s.fd, -1);
  big_.adopt(std::exchange(s.big_fd, -1));
  ring_ = std::exchange(s.ring, nullptr);
  ring_bytes_ = std::exchange(s.ring_bytes, 0);
  frame_size_ = s.frame_size;
  rx_frames_ = s.rx_frames;
  tx_frames_ = s.tx_frames;
  tx_max_ = frame_size_ - kTxDataOff - kVnetHdrLen;  // the slot holds the header, then the frame
  rx_head_ = tx_head_ = 0;
  tx_pending_ = false;
  ifindex_ = s.ifindex;
  read_mtu();
  if (!status_->frame_size) status_->frame_size = frame_size_;  // same on every re-open
  status_->ifindex.store(ifindex_, std::memory_order_relaxed);
  status_->attached.store(true, std::memory_order_relaxed);
  if (s.kp_hooked && kp_.tc >= 0) {  // hooked off the engine thread (reopen_off_thread)
    kp_link_ = std::exchange(s.kp_link, KpathHook{});
    s.kp_hooked = false;
    kp_set_hooked(true, "");
  } else if (s.kp_tried && kp_.tc >= 0) {
    kp_set_hooked(false, s.kp_why);
  } else if (kp_.tc >= 0) {
    kp_hook();  // the first open, or the path was turned on meanwhile
  } else if (s.kp_hooked) {  // the path was turned off meanwhile: s's hooks go
    kpath_detach_tc(&s.kp_link);
    int none = 0;
    setsockopt(fd_, SOL_SOCKET, SO_DETACH_BPF, &none, sizeof none);
  }
}

bool AfPacketPort::kernel_path(const KpathProgs& progs, const std::string& why_not) {
  if (progs.tc < 0) {
    if (kp_.tc >= 0) kp_unhook();
    status_->set_kernel_path(why_not);
    return false;
  }
  if (kp_.tc >= 0) return kp_hooked_ || fd_ < 0;  // hooked already (by the submitter)
  if (!dup_progs(progs, opts_.underlay, &kp_)) {
    status_->set_kernel_path(std::string("off: ") + strerror(errno));
    return false;
  }
  if (fd_ < 0) {
    status_->set_kernel_path("on once the interface is back");
    return true;
  }
  return kp_hook();
}

namespace {
// The socket's filter first: from then on it refuses what the TC program
// redirects, so no frame is both switched by the kernel and read here.
// The uplink's GRO stage and XDP program last, and only as a help (XDP when
// xdp_why is empty: AfPacketPort::xdp_unwanted): without them TC ingress
// decapsulates and delivers packet by packet.
bool hook_kpath(int fd, int ifindex, const KpathProgs& progs, bool uplink, const std::string& xdp_why, KpathHook* link,
                std::string* why) {
  if (kpath_attach_socket(fd, progs.sock, why) && kpath_attach_tc(ifindex, progs.tc, link, why)) {
    if (uplink) kpath_attach_gro(ifindex, progs.tc, link);
    if (progs.xdp < 0) {
      if (progs.xdp_refused) link->xdp_why = "this kernel gives XDP programs no bpf_xdp_adjust_meta, which the XDP stage needs: docs/design/kernel-path.md#xdp";
      return true;
    }
    if (xdp_why.empty()) kpath_attach_xdp(ifindex, progs.xdp, link);
    else link->xdp_why = xdp_why;
    return true;
  }
  int none = 0;
  setsockopt(fd, SOL_SOCKET, SO_DETACH_BPF, &none, sizeof none);  // no filter left without its TC half
  return false;
}
}  // namespace

bool AfPacketPort::kp_hook() {
  std::string why;
  kp_set_hooked(hook_kpath(fd_, ifindex_, kp_, opts_.underlay, xdp_unwanted(), &kp_link_, &why), why);
  return kp_hooked_;
}

void AfPacketPort::kp_set_hooked(bool hooked, const std::string& why) {
  kp_hooked_ = hooked;
  kp_why_ = why;
  read_peer_ingress(true);
}

void AfPacketPort::kp_status() {
  status_->set_kernel_path(
      kp_hooked_ ? std::string("on: known-unicast frames between afpacket access ports of a switch, and VXLAN between them "
                               "and remote VTEPs over an IPv4 uplink that has it too, are switched in the kernel (TC "
                               "ingress program and socket filter); everything else comes to the engine") +
                       (peer_ingress_ ? "; decapsulated frames enter the guest's end of the veth directly "
                                        "(bpf_redirect_peer: they skip this end's transmit side)"
                                      : "") +
                       (!opts_.underlay ? ""
                        : kp_link_.xdp_fd >= 0
                            ? "; VXLAN over IPv4 is decapsulated in XDP, before the interface's GRO merges it"
                            : "; VXLAN is decapsulated at TC ingress (XDP stage: " + kp_link_.xdp_why + ")") +
                       (!opts_.underlay ? ""
                        : kp_link_.gro_link_fd >= 0
                            ? "; what TC ingress decapsulates is merged by the GRO stage " + kp_link_.gro_name + "/" +
                                  kpath_gro_rx_name(kp_link_)
                            : "; no GRO stage (" + kp_link_.gro_why + "): delivered packet by packet")
                 : "off: " + kp_why_);
}

// A netlink question per hooking and per link check (every 10 s, or on a
// link message): the qdisc may be changed at any time (tc qdisc add ...), and
// then the next check takes the shortcut away.
void AfPacketPort::read_peer_ingress(bool say) {
  const bool was = peer_ingress_;
  peer_ingress_ = false;
  if (kp_hooked_ && fd_ >= 0 && !opts_.underlay) {  // the uplink decapsulates; it is never the guest
    const int nl = rtnl_socket();
    if (nl >= 0) {
      peer_ingress_ = veth_peer_ingress(nl, ifindex_) == 1;
      close(nl);
    }
  }
  const bool xdp_changed = read_xdp();
  const bool gro_changed = check_gro_stage();
  if (say || (kp_hooked_ && was != peer_ingress_) || xdp_changed || gro_changed) kp_status();  // the line is ours only while hooked
}

// What the stage's sending end could not hand to the other (its ring full,
// the other end down): the switch counted those frames delivered, so they
// become the uplink's kernel_path_error (Bridge::kpath_collect).
void AfPacketPort::read_gro_lost() {
  const int tx = kp_link_.gro_tx;
  if (tx != gro_seen_tx_) {
    gro_seen_tx_ = tx;
    gro_seen_ = 0;
  }
  if (tx <= 0) return;
  const int nl = rtnl_socket();
  if (nl < 0) return;
  uint64_t now = 0;
  if (link_tx_dropped(nl, tx, &now) == 0 && now > gro_seen_) {
    gro_lost_.fetch_add(now - gro_seen_, std::memory_order_relaxed);
    gro_seen_ = now;
  }
  close(nl);
}

// The uplink's GRO stage is still whole (both ends there, with the indexes
// the maps hold, and up); if not (`ip link del`, `ip link set ... down`), it
// is made again, so decapsulated frames are not sent into nothing until the
// uplink flaps. A stage that could not be made is tried again. True when it
// changed.
bool AfPacketPort::check_gro_stage() {
  if (!kp_hooked_ || !opts_.underlay || fd_ < 0 || kp_.tc < 0) return false;
  KpathHook& h = kp_link_;
  read_gro_lost();
  if (h.gro_link_fd >= 0) {
    const std::string b = kpath_gro_rx_name(h);
    unsigned fa = 0, fb = 0;
    if (if_index(ctl_, h.gro_name) == h.gro_tx && if_index(ctl_, b) == h.gro_rx && if_flags(ctl_, h.gro_name, &fa) == 0 &&
        if_flags(ctl_, b, &fb) == 0 && (fa & fb & IFF_UP))
      return false;
    kpath_detach_gro(&h);
  }
  const std::string was = h.gro_why;
  return kpath_attach_gro(ifindex_, kp_.tc, &h) || h.gro_why != was;
}

// Why the uplink's XDP stage is not wanted now ("": it is). It decapsulates
// so that the interface's GRO merges what it passes on; without GRO it
// would only add its cost (on a veth, a copy of every packet). `auto`
// leaves the two drivers alone whose XDP changes the interface's other
// traffic (the kernel's rules): a veth takes TSO and GSO from its other
// end, virtio_net turns the host's offloads to the guest off (GRO_HW,
// checksums) for everything the device receives.
std::string AfPacketPort::xdp_unwanted() const {
  using D = KernelPortOptions::XdpDecap;
  if (opts_.xdp_decap == D::kOff) return "xdpDecap: off";
  if (!if_gro(ctl_, ifname_)) return "the interface's GRO is off, so nothing would merge what XDP decapsulates";
  if (opts_.xdp_decap == D::kAuto) {
    const std::string drv = if_driver(ctl_, ifname_);
    if (drv == "veth") return "xdpDecap: auto leaves a veth alone: XDP on a veth takes TSO and GSO from its other end; 'on' to have it";
    if (drv == "virtio_net")
      return "xdpDecap: auto leaves virtio_net alone: XDP there turns the host's receive offloads (GRO_HW, checksums) off "
             "for all of the device's traffic; 'on' to have it";
  }
  return "";
}

// The uplink's XDP stage follows the interface's GRO (ethtool -K ... gro):
// true when it came or went, or why it is off changed.
bool AfPacketPort::read_xdp() {
  if (!kp_hooked_ || kp_.xdp < 0 || fd_ < 0) return false;
  const std::string unwanted = xdp_unwanted(), was = kp_link_.xdp_why;
  const bool have = kp_link_.xdp_fd >= 0;
  if (unwanted.empty()) {
    if (have) return false;
    return kpath_attach_xdp(ifindex_, kp_.xdp, &kp_link_) || kp_link_.xdp_why != was;  // a failure: tried again next check
  }
  if (have) close(std::exchange(kp_link_.xdp_fd, -1));
  kp_link_.xdp_why = unwanted;
  return have || unwanted != was;
}

void AfPacketPort::kp_unhook() {
  kpath_detach_tc(&kp_link_);
  if (fd_ >= 0) {
    int none = 0;
    setsockopt(fd_, SOL_SOCKET, SO_DETACH_BPF, &none, sizeof none);
  }
  close_progs(&kp_);
  kp_hooked_ = false;
  peer_ingress_ = false;
}

AfPacketSocket AfPacketPort::release_socket() {
  AfPacketSocket s;
  // The GRO stage goes with the socket: deleting its veth pair waits for
  // the kernel (tens of milliseconds), which a re-open's job does off the
  // engine thread. The other hooks go now.
  s.kp_link.gro_link_fd = std::exchange(kp_link_.gro_link_fd, -1);
  s.kp_link.gro_tx = std::exchange(kp_link_.gro_tx, 0);
  s.kp_link.gro_rx = std::exchange(kp_link_.gro_rx, 0);
  s.kp_link.gro_name = std::exchange(kp_link_.gro_name, std::string());
  kpath_detach_tc(&kp_link_);
  kp_hooked_ = false;
  peer_ingress_ = false;
  if (fd_ >= 0 && epfd_ >= 0) epoll_ctl(epfd_, EPOLL_CTL_DEL, fd_, nullptr);
  s.fd = std::exchange(fd_, -1);
  s.big_fd = big_.release();
  s.ring = std::exchange(ring_, nullptr);
  s.ring_bytes = std::exchange(ring_bytes_, 0);
  ifindex_ = 0;
  if (status_) status_->attached.store(false, std::memory_order_relaxed);
  return s;
}

void AfPacketPort::close_socket() { release_socket().close(); }

void AfPacketPort::reopen_off_thread(bool reopen) {
  // The job hooks the kernel path's programs itself (attaching the TC
  // program waits for an RCU grace period too), through copies of their
  // descriptors: the engine thread may let go of its own meanwhile.
  KpathProgs progs;
  if (reopen && kp_.tc >= 0) dup_progs(kp_, true, &progs);
  reopen_.start([this, old = release_socket(), reopen, progs]() mutable {
    old.close();
    AfPacketSocket s;
    if (reopen) open_socket(&s);
    if (s.fd >= 0 && progs.tc >= 0) {
      s.kp_tried = true;
      s.kp_hooked = hook_kpath(s.fd, s.ifindex, progs, opts_.underlay, xdp_unwanted(), &s.kp_link, &s.kp_why);
    }
    close_progs(&progs);
    return s;
  });
}

void AfPacketPort::detach() {
  reopen_.wait();
  close_socket();
  if (ctl_ >= 0) offloads_restore(ctl_, &offloads_);
  cache_.flush();
}

uint8_t* AfPacketPort::rx_frame(uint32_t i) const { return ring_ + size_t(i) * frame_size_; }
uint8_t* AfPacketPort::tx_frame(uint32_t i) const { return ring_ + size_t(rx_frames_ + i) * frame_size_; }

uint16_t AfPacketPort::rx_burst(Pkt* pkts, uint16_t max) {
  if (fd_ < 0) return 0;
  if (max > burst_) max = uint16_t(burst_);
  const uint32_t max_frame = pool_->max_frame();
  const uint16_t headroom = pool_->headroom();
  uint16_t n = 0;
  uint32_t seen = 0, queued = 0, losing = 0;
  // A ring found full (the slot the kernel fills last is still ours) may
  // have made the kernel drop frames: as with TP_STATUS_LOSING below, read
  // its count after the burst.
  const auto* first = reinterpret_cast<const tpacket2_hdr*>(rx_frame(rx_head_));
  if (__atomic_load_n(&first->tp_status, __ATOMIC_ACQUIRE) & TP_STATUS_USER) {
    const auto* last = reinterpret_cast<const tpacket2_hdr*>(rx_frame(rx_head_ ? rx_head_ - 1 : rx_frames_ - 1));
    if (__atomic_load_n(&last->tp_status, __ATOMIC_ACQUIRE) & TP_STATUS_USER) losing = TP_STATUS_LOSING;
  }
  while (n < max && seen < rx_frames_ && queued < kMaxBurst) {
    auto* h = reinterpret_cast<tpacket2_hdr*>(rx_frame(rx_head_));
    uint32_t st = __atomic_load_n(&h->tp_status, __ATOMIC_ACQUIRE);
    if (!(st & TP_STATUS_USER)) break;
    ++seen;
    losing |= st;
    const auto* sll = reinterpret_cast<const sockaddr_ll*>(reinterpret_cast<uint8_t*>(h) + kSllOff);
    const bool tagged = (st & TP_STATUS_VLAN_VALID) != 0;
    const uint32_t snap = h->tp_snaplen;
    const uint32_t len = snap + (tagged ? 4 : 0);
    if (sll->sll_pkttype == PACKET_OUTGOING) {
      // Someone else's transmission on this interface: not ours to switch
      // (its queued copy, if any, is read and dropped, to keep the queue in
      // step with the ring).
      if (st & TP_STATUS_COPY) rxq_[queued++] = RxQueued{kSkipPos, kNoId};
    } else if (st & TP_STATUS_COPY) {
      // Larger than a slot: the whole frame waits in the socket queue, in
      // ring order. Its place in the burst is kept; rx_queued() fills it.
      uint32_t big = kNoId;
      if (!cache_.alloc_large(&big)) big = kNoId;  // still read (into scratch) to keep the order, then dropped
      rxq_[queued++] = RxQueued{n, big};
      pkts[n++] = Pkt{kNoId, 0, 0};
    } else if (snap < h->tp_len || snap < 12) {
      count_too_big();  // cut without a queued copy (socket receive buffer full)
    } else {
      OffloadMeta meta;
      const uint8_t* src = reinterpret_cast<uint8_t*>(h) + h->tp_mac;
      const VnetVerdict vv = vnet_read(src - kVnetHdrLen, snap, &meta);
      // A frame that fits its slot but not a regular buffer (a slot holds a
      // few dozen bytes more) goes to a large buffer, like a queued one.
      const bool large = len > max_frame;
      uint32_t idx;
      if (vv == VnetVerdict::kInvalid) {
        status_->add(PortStatus::rx_bad_vnet);
      } else if (large ? !cache_.alloc_large(&idx) : !cache_.alloc(&idx)) {
        status_->add(PortStatus::rx_no_buffer);
      } else {
        uint8_t* dst = pool_->data(idx) + headroom;
        if (tagged) {
          // The kernel moved the tag into the slot header: put it back.
          uint16_t tpid = (st & TP_STATUS_VLAN_TPID_VALID) ? h->tp_vlan_tpid : 0x8100;
          std::memcpy(dst, src, 12);
          dst[12] = uint8_t(tpid >> 8);
          dst[13] = uint8_t(tpid);
          dst[14] = uint8_t(h->tp_vlan_tci >> 8);
          dst[15] = uint8_t(h->tp_vlan_tci);
          std::memcpy(dst + 16, src + 12, snap - 12);
        } else {
          std::memcpy(dst, src, snap);
        }
        Pkt p{idx, headroom, uint16_t(len)};
        if (vv == VnetVerdict::kOffload) {
          if (tagged) offload_shift(meta, 4);
          pool_->meta(idx) = meta;
          pkt_set_meta(p, true);
          status_->add(PortStatus::rx_offload);
        } else if (large) [[unlikely]] {
          pool_->meta(idx) = OffloadMeta{};  // a large buffer always has a side-table entry
          pkt_set_meta(p, true);
        }
        if (large) status_->add(PortStatus::rx_super);
        pkts[n++] = p;
      }
    }
    __atomic_store_n(&h->tp_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
    if (++rx_head_ == rx_frames_) rx_head_ = 0;
  }
  if (queued && rx_queued(pkts, queued)) {
    uint16_t k = 0;  // drop the places of super-frames that could not be read
    for (uint16_t i = 0; i < n; ++i)
      if (pkts[i].buf != kNoId) pkts[k++] = pkts[i];
    n = k;
  }
  // The kernel marks the frames it places after dropping some (the ring was
  // full) until the drops are read: read them now, not at the next check
  // (link_watch_key: every 10 s).
  if (losing & TP_STATUS_LOSING) [[unlikely]] read_kernel_drops();
  if (too_big_unexplained_) [[unlikely]] {  // at most once a second from here
    const uint64_t now = mono_ms();
    if (now - too_big_explained_ms_ >= 1000) explain_too_big();
  }
  if (n) {
    empty_polls_ = 0;
    status_->queue_rx[0].fetch_add(n, std::memory_order_relaxed);  // one queue: portStatus().queueRx[0]
  } else if (++empty_polls_ == 16) {
    // A socket error (the interface went down or away) keeps the socket
    // "readable" for poll(2) until it is read: clear it once per idle streak
    // so a sleeping engine does not spin on it.
    int e = 0;
    socklen_t l = sizeof(e);
    getsockopt(fd_, SOL_SOCKET, SO_ERROR, &e, &l);
  }
  return n;
}

// The layout a queued frame is read into, so that an 802.1Q tag can be put
// back without moving the payload: the header and the two MAC addresses land
// just in front of where the payload goes, 4 bytes apart from it; with a tag
// the MACs move 4 bytes down and the tag fills the gap, without one the frame
// simply starts 4 bytes later.
//   [headroom-6, headroom+4)  virtio_net_hdr     (iov 0, with the MACs)
//   [headroom+4, headroom+16) destination + source MAC
//   [headroom+16, ...)        EtherType onwards  (iov 1)
uint32_t AfPacketPort::rx_queued(Pkt* pkts, uint32_t n) {
  const uint16_t headroom = pool_->headroom();
  for (uint32_t k = 0; k < n; ++k) {
    mmsghdr& m = rx_mm_[k];
    m = mmsghdr{};
    if (rxq_[k].buf == kNoId) {
      rx_iov_[k][0] = iovec{scratch_, sizeof(scratch_)};
      m.msg_hdr.msg_iovlen = 1;
    } else {
      uint8_t* b = pool_->data(rxq_[k].buf);
      rx_iov_[k][0] = iovec{b + headroom + 4 - kVnetHdrLen, kVnetHdrLen + 12};
      rx_iov_[k][1] = iovec{b + headroom + 16, pool_->capacity(rxq_[k].buf) - headroom - 16};
      m.msg_hdr.msg_iovlen = 2;
    }
    m.msg_hdr.msg_iov = rx_iov_[k];
    m.msg_hdr.msg_control = rx_cmsg_[k];
    m.msg_hdr.msg_controllen = sizeof(rx_cmsg_[k]);
  }
  int got = recvmmsg(fd_, rx_mm_, n, MSG_DONTWAIT, nullptr);
  if (got < 0) got = 0;
  uint32_t failed = 0;
  for (uint32_t k = 0; k < n; ++k) {
    if (rxq_[k].pos == kSkipPos) continue;
    Pkt& p = pkts[rxq_[k].pos];
    const uint32_t big = rxq_[k].buf;
    const mmsghdr& m = rx_mm_[k];
    const uint32_t r = int(k) < got ? m.msg_len : 0;
    OffloadMeta meta;
    VnetVerdict vv = VnetVerdict::kInvalid;
    bool ok = false;
    if (int(k) >= got) {
      count_too_big();  // the slot said a copy was queued, but none was there
    } else if (big == kNoId) {
      status_->add(PortStatus::rx_no_buffer);
    } else if ((m.msg_hdr.msg_flags & MSG_TRUNC) || r < kVnetHdrLen + 14) {
      count_too_big();
    } else if ((vv = vnet_read(pool_->data(big) + headroom + 4 - kVnetHdrLen, r - kVnetHdrLen, &meta)) ==
               VnetVerdict::kInvalid) {
      status_->add(PortStatus::rx_bad_vnet);
    } else {
      ok = true;
    }
    if (!ok) {
      if (big != kNoId) cache_.free(big);
      p.buf = kNoId;
      ++failed;
      continue;
    }
    uint32_t len = r - kVnetHdrLen;
    uint16_t off = uint16_t(headroom + 4);
    for (cmsghdr* c = CMSG_FIRSTHDR(&m.msg_hdr); c; c = CMSG_NXTHDR(const_cast<msghdr*>(&m.msg_hdr), c)) {
      if (c->cmsg_level != SOL_PACKET || c->cmsg_type != PACKET_AUXDATA) continue;
      tpacket_auxdata aux;
      std::memcpy(&aux, CMSG_DATA(c), sizeof(aux));
      if (!(aux.tp_status & TP_STATUS_VLAN_VALID)) break;
      uint8_t* f = pool_->data(big) + headroom;
      const uint16_t tpid = (aux.tp_status & TP_STATUS_VLAN_TPID_VALID) ? aux.tp_vlan_tpid : 0x8100;
      std::memmove(f, f + 4, 12);
      f[12] = uint8_t(tpid >> 8);
      f[13] = uint8_t(tpid);
      f[14] = uint8_t(aux.tp_vlan_tci >> 8);
      f[15] = uint8_t(aux.tp_vlan_tci);
      off = headroom;
      len += 4;
      if (vv == VnetVerdict::kOffload) offload_shift(meta, 4);
      break;
    }
    if (len > 0xFFFF) {  // cannot be described (an IP packet is at most 64 KiB)
      cache_.free(big);
      count_too_big();
      p.buf = kNoId;
      ++failed;
      continue;
    }
    // A frame in a large buffer always has a side-table entry (core/types.h).
    p = Pkt{big, off, uint16_t(len)};
    pool_->meta(big) = vv == VnetVerdict::kOffload ? meta : OffloadMeta{};
    pkt_set_meta(p, true);
    if (vv == VnetVerdict::kOffload) status_->add(PortStatus::rx_offload);
    status_->add(PortStatus::rx_super);
  }
  return failed;
}

void AfPacketPort::kick() {
  status_->add(PortStatus::kicks);
  if (sendto(fd_, nullptr, 0, MSG_DONTWAIT, nullptr, 0) < 0 && errno != EAGAIN && errno != ENOBUFS)
    status_->add(PortStatus::tx_errors);
}

uint16_t AfPacketPort::tx_burst(Pkt* pkts, uint16_t n) {
  if (fd_ < 0) return 0;
  uint16_t i = 0, queued = 0;
  for (; i < n; ++i) {
    const Pkt& p = pkts[i];
    const OffloadMeta* meta = pkt_has_meta(p) ? &pool_->meta(p.buf) : nullptr;
    if (p.len > tx_max_ || (meta && meta->gso())) {
      // Larger than a slot, or to be segmented (even if small: the ring's
      // socket bypasses the qdisc, see open_socket): what the ring holds
      // leaves first (a kick sends every pending slot before it returns),
      // then the run goes through the second socket.
      if (queued) {
        kick();
        queued = 0;
      }
      big_.add(*pool_, pkts, i);
      continue;
    }
    if (big_.pending()) {
      const uint32_t want = big_.pending(), sent = big_.flush(cache_, *pool_, pkts, *status_);
      if (sent < want) return uint16_t(i - (want - sent));  // the rest stay with the engine
    }
    auto* h = reinterpret_cast<tpacket2_hdr*>(tx_frame(tx_head_));
    uint32_t st = __atomic_load_n(&h->tp_status, __ATOMIC_ACQUIRE);
    if (st & TP_STATUS_WRONG_FORMAT) status_->add(PortStatus::tx_errors);
    else if (st != TP_STATUS_AVAILABLE) break;  // the kernel still owns it: ring full
    uint8_t* d = reinterpret_cast<uint8_t*>(h) + kTxDataOff;
    vnet_write(meta, d);
    std::memcpy(d + kVnetHdrLen, pool_->data(p.buf) + pkt_off(p), p.len);
    h->tp_len = p.len + kVnetHdrLen;
    __atomic_store_n(&h->tp_status, TP_STATUS_SEND_REQUEST, __ATOMIC_RELEASE);
    if (meta && meta->pending()) status_->add(PortStatus::tx_offload);
    cache_.free(p.buf);
    if (++tx_head_ == tx_frames_) tx_head_ = 0;
    ++queued;
  }
  if (queued) kick();
  if (big_.pending()) {
    const uint32_t want = big_.pending(), sent = big_.flush(cache_, *pool_, pkts, *status_);
    if (sent < want) return uint16_t(i - (want - sent));
  }
  return i;
}

// Frames that could not be taken are dropped (never cut); lastError says why
// they come, which the counter alone does not.
void AfPacketPort::count_too_big() {
  status_->add(PortStatus::rx_too_big);
  too_big_unexplained_ = true;
}

void AfPacketPort::explain_too_big() {
  too_big_unexplained_ = false;
  too_big_explained_ms_ = mono_ms();
  const uint64_t n = status_->c[PortStatus::rx_too_big].load(std::memory_order_relaxed);
  if (n == too_big_seen_) return;
  too_big_seen_ = n;
  status_->set_error(std::to_string(n) + " frames were dropped on " + ifname_ +
                     " because they did not fit: a frame larger than a ring slot waits whole in the socket's receive "
                     "queue, which was full (the switch fell behind), or the frame is longer than 64 KiB + headers");
}

// PACKET_STATISTICS hands over the kernel's drop count and starts it again
// from zero (and ends the TP_STATUS_LOSING marks).
void AfPacketPort::read_kernel_drops() {
  tpacket_stats ks{};
  socklen_t l = sizeof(ks);
  if (getsockopt(fd_, SOL_PACKET, PACKET_STATISTICS, &ks, &l) == 0 && ks.tp_drops)
    status_->add(PortStatus::rx_kernel_drops, ks.tp_drops);
}

// The kernel refuses to send a frame longer than the MTU plus the Ethernet
// header (4 more for an 802.1Q tag); the MTU can change at any time.
void AfPacketPort::read_mtu() {
  int mtu = if_mtu(ctl_, ifname_);
  if (mtu > 0) tx_limit_ = uint32_t(mtu) + 14;
}

// The interface's MAC as it is now: after a reopen (an interface made again
// may have another) and at every link check (`ip link set ... address`
// sends a link message). The overlay follows it on an uplink
// (Overlay::adopt_interface_mac); an interface that is gone keeps the last.
void AfPacketPort::refresh_mac() {
  if (if_hwaddr_follow(ctl_, ifname_, &mac_)) status_->mac.store(mac_, std::memory_order_relaxed);
}

LinkState AfPacketPort::check_link() {
  if (reopen_.busy()) {
    AfPacketSocket s;
    if (!reopen_.take(&s)) return LinkState::kDown;  // still closing or opening
    if (s.fd >= 0) {
      adopt(std::move(s));
      if (fd_ >= 0) {
        status_->add(PortStatus::reopens);
        status_->set_error("");
        refresh_mac();
      }
    } else if (!s.err.empty()) {
      status_->set_error(s.err);  // the next try is a second away
    }
  }
  int idx = if_index(ctl_, ifname_);
  if (idx <= 0) {
    if (fd_ >= 0) {
      reopen_off_thread(false);
      status_->set_error("interface " + ifname_ + " disappeared; the port comes back when it returns");
    }
    return LinkState::kDown;
  }
  const bool replaced = fd_ >= 0 && idx != ifindex_;  // deleted and created again
  if (fd_ < 0 || replaced) {
    uint64_t now = mono_ms();
    if (!replaced && last_open_try_ms_ != 0 && now - last_open_try_ms_ < 1000) return LinkState::kDown;
    last_open_try_ms_ = now;
    if (opts_.offloads_off) {
      offloads_restore(ctl_, &offloads_);  // no-op for an interface that is gone
      status_->set_offloads(offloads_off(ctl_, ifname_, &offloads_));
    }
    reopen_off_thread(true);
    return LinkState::kDown;
  }
  read_kernel_drops();
  explain_too_big();
  read_mtu();
  refresh_mac();
  read_peer_ingress();
  int e = 0;
  socklen_t l = sizeof(e);
  getsockopt(fd_, SOL_SOCKET, SO_ERROR, &e, &l);
  unsigned fl = 0;
  if (if_flags(ctl_, ifname_, &fl) < 0) return LinkState::kDown;
  status_->set_link_reason(ifname_, fl);
  return (fl & IFF_UP) && (fl & IFF_RUNNING) ? LinkState::kUp : LinkState::kDown;
}

}  // namespace vpc
