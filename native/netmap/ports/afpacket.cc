#include "ports/afpacket.h"

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

namespace vpc {

namespace {
constexpr uint32_t kDefaultRing = 2048;  // frames per ring
constexpr uint32_t kBlockSize = 1u << 16;
// Where a slot's frame data starts on transmit (TPACKET_V2 without
// PACKET_TX_HAS_OFF): right after the aligned header.
constexpr uint32_t kTxDataOff = TPACKET_ALIGN(sizeof(tpacket2_hdr));
constexpr uint32_t kSllOff = TPACKET_ALIGN(sizeof(tpacket2_hdr));

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
  if (!claim_interface(ifname))
    throw PortError(Status::kInUse, "interface " + ifname +
                                        " is already attached to another port of this switch: delete that port "
                                        "first (one port per interface)");
  std::unique_ptr<AfPacketPort> p(new AfPacketPort(ifname, opts, std::move(pool), std::move(status)));
  p->claimed_ = true;
  p->ctl_ = ctl_socket();
  p->epfd_ = epoll_create1(EPOLL_CLOEXEC);
  if (p->ctl_ < 0 || p->epfd_ < 0) throw PortError(Status::kSystem, sys_error("afpacket:" + ifname + ": socket", errno, nullptr));
  int idx = if_index(p->ctl_, ifname);
  if (idx == -ENODEV)
    throw PortError(Status::kNotFound, "interface " + ifname +
                                           " does not exist: create it first (for example: ip link add " + ifname +
                                           " type veth peer name " + ifname + "-peer) or check the name with: ip link");
  if (idx < 0) throw PortError(Status::kSystem, sys_error("afpacket:" + ifname + ": looking up the interface", -idx, nullptr));
  if (if_hwaddr(p->ctl_, ifname, &p->mac_) < 0) p->mac_ = 0;  // then the configured MAC is used

  PortStatus& st = *p->status_;
  st.rx_ring = opts.rx_ring ? opts.rx_ring : kDefaultRing;
  st.tx_ring = opts.tx_ring ? opts.tx_ring : kDefaultRing;
  p->burst_ = opts.burst ? std::min<uint32_t>(opts.burst, kMaxBurst) : kMaxBurst;
  st.burst = p->burst_;
  st.queues = 1;
  st.set_io("TPACKET_V2 mmap rings: frames are read from and written to shared memory, one sendto() kick per "
            "transmitted batch; no system call on receive");
  st.set_offloads(opts.offloads_off ? offloads_off(p->ctl_, ifname, &p->offloads_)
                                    : "left as they are (disableOffloads: false)");

  Status code;
  std::string err;
  if (!p->open_socket(&code, &err)) throw PortError(code, err);  // the destructor restores the offloads
  return p;
}

AfPacketPort::~AfPacketPort() {
  close_socket();
  if (ctl_ >= 0) {
    offloads_restore(ctl_, &offloads_);
    close(ctl_);
  }
  if (epfd_ >= 0) close(epfd_);
  if (claimed_) release_interface(ifname_);
}

bool AfPacketPort::open_socket(Status* code, std::string* err) {
  const std::string where = "afpacket:" + ifname_;
  auto fail = [&](Status s, const std::string& what, int e, const char* cap) {
    *code = s;
    *err = sys_error(where + ": " + what, e, cap);
    close_socket();
    return false;
  };
  int idx = if_index(ctl_, ifname_);
  if (idx < 0) {
    *code = idx == -ENODEV ? Status::kNotFound : Status::kSystem;
    *err = where + ": interface does not exist (any more); the port comes up when it returns";
    return false;
  }
  // Protocol 0: nothing is received until bind(), after the rings exist.
  fd_ = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd_ < 0) return fail(Status::kSystem, "socket(AF_PACKET)", errno, "CAP_NET_RAW");
  int v = TPACKET_V2;
  if (setsockopt(fd_, SOL_PACKET, PACKET_VERSION, &v, sizeof(v)) < 0)
    return fail(Status::kSystem, "PACKET_VERSION", errno, nullptr);
  // A frame the kernel refuses (longer than the MTU, say) is skipped and its
  // slot handed back, instead of halting the TX ring on it. Before the rings.
  v = 1;
  if (setsockopt(fd_, SOL_PACKET, PACKET_LOSS, &v, sizeof(v)) < 0)
    return fail(Status::kSystem, "PACKET_LOSS", errno, nullptr);
  read_mtu();

  // Slots hold the largest frame a buffer can hold plus the slot header.
  frame_size_ = std::max<uint32_t>(2048, pow2_at_least(pool_->max_frame() + 128));
  block_size_ = std::max(kBlockSize, frame_size_);
  frames_per_block_ = block_size_ / frame_size_;
  auto blocks = [&](uint32_t frames) { return (std::max<uint32_t>(frames, frames_per_block_) + frames_per_block_ - 1) / frames_per_block_; };
  tpacket_req rx{}, tx{};
  rx.tp_block_size = tx.tp_block_size = block_size_;
  rx.tp_frame_size = tx.tp_frame_size = frame_size_;
  rx.tp_block_nr = blocks(status_->rx_ring);
  tx.tp_block_nr = blocks(status_->tx_ring);
  rx.tp_frame_nr = rx.tp_block_nr * frames_per_block_;
  tx.tp_frame_nr = tx.tp_block_nr * frames_per_block_;
  if (setsockopt(fd_, SOL_PACKET, PACKET_RX_RING, &rx, sizeof(rx)) < 0)
    return fail(Status::kSystem, "PACKET_RX_RING (" + std::to_string(rx.tp_frame_nr) + " frames; try a smaller rxRing)", errno, nullptr);
  if (setsockopt(fd_, SOL_PACKET, PACKET_TX_RING, &tx, sizeof(tx)) < 0)
    return fail(Status::kSystem, "PACKET_TX_RING (" + std::to_string(tx.tp_frame_nr) + " frames; try a smaller txRing)", errno, nullptr);
  rx_frames_ = rx.tp_frame_nr;
  tx_frames_ = tx.tp_frame_nr;
  v = 1;
  setsockopt(fd_, SOL_PACKET, PACKET_QDISC_BYPASS, &v, sizeof(v));     // best effort (Linux >= 3.14)
  setsockopt(fd_, SOL_PACKET, PACKET_IGNORE_OUTGOING, &v, sizeof(v));  // best effort (Linux >= 4.20)
  ring_bytes_ = size_t(rx_frames_ + tx_frames_) * frame_size_;
  void* m = mmap(nullptr, ring_bytes_, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0);
  if (m == MAP_FAILED) {
    ring_bytes_ = 0;
    return fail(Status::kSystem, "mmap of the packet rings", errno, nullptr);
  }
  ring_ = static_cast<uint8_t*>(m);
  tx_data_off_ = kTxDataOff;
  tx_max_ = frame_size_ - kTxDataOff;

  sockaddr_ll sll{};
  sll.sll_family = AF_PACKET;
  sll.sll_protocol = htons(ETH_P_ALL);
  sll.sll_ifindex = idx;
  if (bind(fd_, reinterpret_cast<sockaddr*>(&sll), sizeof(sll)) < 0)
    return fail(errno == ENODEV ? Status::kNotFound : Status::kSystem, "bind", errno, nullptr);
  if (opts_.promisc) {
    packet_mreq mr{};
    mr.mr_ifindex = idx;
    mr.mr_type = PACKET_MR_PROMISC;
    if (setsockopt(fd_, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof(mr)) < 0)
      return fail(Status::kSystem, "promiscuous mode (PACKET_ADD_MEMBERSHIP)", errno, "CAP_NET_RAW");
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = fd_;
  if (epoll_ctl(epfd_, EPOLL_CTL_ADD, fd_, &ev) < 0) return fail(Status::kSystem, "epoll_ctl", errno, nullptr);
  rx_head_ = tx_head_ = 0;
  ifindex_ = idx;
  if (!status_->frame_size) status_->frame_size = frame_size_;  // same on every re-open
  status_->ifindex.store(idx, std::memory_order_relaxed);
  status_->attached.store(true, std::memory_order_relaxed);
  return true;
}

void AfPacketPort::close_socket() {
  if (fd_ >= 0) {
    if (epfd_ >= 0) epoll_ctl(epfd_, EPOLL_CTL_DEL, fd_, nullptr);
    close(fd_);  // also drops the promiscuous membership
    fd_ = -1;
  }
  if (ring_) munmap(ring_, ring_bytes_);
  ring_ = nullptr;
  ring_bytes_ = 0;
  ifindex_ = 0;
  if (status_) status_->attached.store(false, std::memory_order_relaxed);
}

void AfPacketPort::detach() {
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
  uint32_t seen = 0;
  while (n < max && seen < rx_frames_) {
    auto* h = reinterpret_cast<tpacket2_hdr*>(rx_frame(rx_head_));
    uint32_t st = __atomic_load_n(&h->tp_status, __ATOMIC_ACQUIRE);
    if (!(st & TP_STATUS_USER)) break;
    ++seen;
    const auto* sll = reinterpret_cast<const sockaddr_ll*>(reinterpret_cast<uint8_t*>(h) + kSllOff);
    const bool tagged = (st & TP_STATUS_VLAN_VALID) != 0;
    const uint32_t snap = h->tp_snaplen;
    const uint32_t len = snap + (tagged ? 4 : 0);
    if (sll->sll_pkttype == PACKET_OUTGOING) {
      // Someone else's transmission on this interface: not ours to switch.
    } else if (snap < h->tp_len || len > max_frame || snap < 12) {
      status_->add(PortStatus::rx_too_big);
    } else {
      uint32_t idx;
      if (!cache_.alloc(&idx)) {
        status_->add(PortStatus::rx_no_buffer);
      } else {
        uint8_t* dst = pool_->data(idx) + headroom;
        const uint8_t* src = reinterpret_cast<uint8_t*>(h) + h->tp_mac;
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
        if ((st & TP_STATUS_CSUMNOTREADY) && finish_partial_checksum(dst, len))
          status_->add(PortStatus::rx_csum_completed);
        pkts[n++] = Pkt{idx, headroom, uint16_t(len)};
      }
    }
    __atomic_store_n(&h->tp_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
    if (++rx_head_ == rx_frames_) rx_head_ = 0;
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

void AfPacketPort::kick() {
  status_->add(PortStatus::kicks);
  if (sendto(fd_, nullptr, 0, MSG_DONTWAIT, nullptr, 0) < 0 && errno != EAGAIN && errno != ENOBUFS)
    status_->add(PortStatus::tx_errors);
}

uint16_t AfPacketPort::tx_burst(Pkt* pkts, uint16_t n) {
  if (fd_ < 0) return 0;
  uint16_t i = 0, queued = 0;
  for (; i < n; ++i) {
    auto* h = reinterpret_cast<tpacket2_hdr*>(tx_frame(tx_head_));
    uint32_t st = __atomic_load_n(&h->tp_status, __ATOMIC_ACQUIRE);
    if (st & TP_STATUS_WRONG_FORMAT) status_->add(PortStatus::tx_errors);
    else if (st != TP_STATUS_AVAILABLE) break;  // the kernel still owns it: ring full
    const Pkt& p = pkts[i];
    if (p.len > tx_max_) {
      status_->add(PortStatus::tx_too_big);
      cache_.free(p.buf);
      continue;
    }
    std::memcpy(reinterpret_cast<uint8_t*>(h) + tx_data_off_, pool_->frame(p), p.len);
    h->tp_len = p.len;
    __atomic_store_n(&h->tp_status, TP_STATUS_SEND_REQUEST, __ATOMIC_RELEASE);
    cache_.free(p.buf);
    if (++tx_head_ == tx_frames_) tx_head_ = 0;
    ++queued;
  }
  if (queued) kick();
  return i;
}

// Frames too long for a buffer are dropped (never cut); lastError says why
// they come, which the counter alone does not. On a tap, the usual cause is a
// VM whose virtio-net hands the tap TSO super-frames.
void AfPacketPort::explain_too_big() {
  const uint64_t n = status_->c[PortStatus::rx_too_big].load(std::memory_order_relaxed);
  if (n == too_big_seen_) return;
  too_big_seen_ = n;
  const std::string head = std::to_string(n) + " frames longer than a buffer (" + std::to_string(pool_->max_frame()) +
                           " bytes) were dropped on " + ifname_ + ": ";
  if (if_driver(ctl_, ifname_) == "tun")
    status_->set_error(head + "a VM on this tap sends TSO/GSO super-frames; start QEMU with vnet_hdr=off on its "
                              "-netdev tap, or turn TSO/GSO off in the guest (ethtool -K eth0 tso off gso off)");
  else
    status_->set_error(head + "the sender passes super-frames (its TSO/GSO, or GRO/LRO here) or uses a larger MTU; "
                              "turn those offloads off or lower its MTU");
}

// The kernel refuses to send a frame longer than the MTU plus the Ethernet
// header (4 more for an 802.1Q tag); the MTU can change at any time.
void AfPacketPort::read_mtu() {
  int mtu = if_mtu(ctl_, ifname_);
  if (mtu > 0) tx_limit_ = uint32_t(mtu) + 14;
}

LinkState AfPacketPort::check_link() {
  int idx = if_index(ctl_, ifname_);
  if (idx <= 0) {
    if (fd_ >= 0) {
      close_socket();
      status_->set_error("interface " + ifname_ + " disappeared; the port comes back when it returns");
    }
    return LinkState::kDown;
  }
  if (fd_ >= 0 && idx != ifindex_) close_socket();  // deleted and created again
  if (fd_ < 0) {
    uint64_t now = mono_ms();
    if (last_open_try_ms_ != 0 && now - last_open_try_ms_ < 1000) return LinkState::kDown;
    last_open_try_ms_ = now;
    if (opts_.offloads_off) {
      offloads_restore(ctl_, &offloads_);  // no-op for an interface that is gone
      status_->set_offloads(offloads_off(ctl_, ifname_, &offloads_));
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
  tpacket_stats ks{};
  socklen_t l = sizeof(ks);
  if (getsockopt(fd_, SOL_PACKET, PACKET_STATISTICS, &ks, &l) == 0 && ks.tp_drops)
    status_->add(PortStatus::rx_kernel_drops, ks.tp_drops);
  explain_too_big();
  read_mtu();
  int e = 0;
  l = sizeof(e);
  getsockopt(fd_, SOL_SOCKET, SO_ERROR, &e, &l);
  unsigned fl = 0;
  if (if_flags(ctl_, ifname_, &fl) < 0) return LinkState::kDown;
  return (fl & IFF_UP) && (fl & IFF_RUNNING) ? LinkState::kUp : LinkState::kDown;
}

}  // namespace vpc
