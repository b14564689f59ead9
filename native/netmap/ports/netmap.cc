#include "ports/netmap.h"

#include <fcntl.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "ports/ifutil.h"
#include "ports/netmap_abi.h"

namespace vpc {

using netmap_abi::buf_at;
using netmap_abi::ring_at;
using netmap_abi::ring_next;

std::string netmap_absent_message(const PortSpec& spec) {
  std::string alt = spec.backend == PortBackend::kVale ? std::string("veth0") : spec.ifname;
  return spec.canonical +
         ": /dev/netmap does not exist: the netmap kernel module is not loaded (load it with: modprobe netmap, "
         "after installing netmap). Without netmap, use afxdp:" + alt + ", afpacket:" + alt +
         " (works on every interface) or tap:" + alt + " (a VM or host tap) instead";
}

NetmapPort::NetmapPort(std::shared_ptr<BufferPool> pool, std::shared_ptr<PortStatus> status)
    : pool_(std::move(pool)), status_(std::move(status)), cache_(pool_) {}

std::unique_ptr<NetmapPort> NetmapPort::open(const PortSpec& spec, const KernelPortOptions& opts,
                                             std::shared_ptr<BufferPool> pool, std::shared_ptr<PortStatus> status,
                                             const char* device) {
  if (access(device, F_OK) != 0) throw PortError(Status::kNotFound, netmap_absent_message(spec));
  std::unique_ptr<NetmapPort> p(new NetmapPort(std::move(pool), std::move(status)));
  p->vale_ = spec.backend == PortBackend::kVale;
  p->ifname_ = p->vale_ ? spec.vale + ":" + spec.ifname : spec.ifname;
  p->fd_ = ::open(device, O_RDWR | O_CLOEXEC);
  if (p->fd_ < 0) throw PortError(Status::kSystem, sys_error(spec.canonical + ": open " + device, errno, "CAP_NET_ADMIN"));
  p->ctl_ = ctl_socket();

  nmreq_header hdr{};
  nmreq_register reg{};
  hdr.nr_version = NETMAP_API;
  hdr.nr_reqtype = NETMAP_REQ_REGISTER;
  std::strncpy(hdr.nr_name, p->ifname_.c_str(), sizeof(hdr.nr_name) - 1);
  hdr.nr_body = reinterpret_cast<uintptr_t>(&reg);
  reg.nr_mode = spec.host_rings ? NR_REG_SW : spec.queue >= 0 ? NR_REG_ONE_NIC : NR_REG_ALL_NIC;
  reg.nr_ringid = uint16_t(spec.queue >= 0 ? spec.queue : 0);
  reg.nr_tx_slots = opts.tx_ring;
  reg.nr_rx_slots = opts.rx_ring;
  reg.nr_flags = NR_EXCLUSIVE;
  if (ioctl(p->fd_, NIOCCTRL, &hdr) < 0) {
    int e = errno;
    Status s = e == ENXIO || e == ENOENT || e == ENODEV ? Status::kNotFound : e == EBUSY ? Status::kInUse : Status::kSystem;
    std::string hint = s == Status::kNotFound ? ": no such interface (check the name with: ip link)"
                       : s == Status::kInUse  ? ": the rings are in use by another netmap program"
                                              : "";
    if (e == EINVAL && hdr.nr_version != NETMAP_API)
      hint = ": the kernel speaks netmap API " + std::to_string(hdr.nr_version) + ", this build " +
             std::to_string(NETMAP_API);
    throw PortError(s, sys_error(spec.canonical + ": register", e, "CAP_NET_ADMIN") + hint);
  }
  p->mem_size_ = reg.nr_memsize;
  p->mem_ = mmap(nullptr, p->mem_size_, PROT_READ | PROT_WRITE, MAP_SHARED, p->fd_, 0);
  if (p->mem_ == MAP_FAILED) {
    p->mem_ = nullptr;
    throw PortError(Status::kSystem, sys_error(spec.canonical + ": mmap", errno, nullptr));
  }
  p->nifp_ = reinterpret_cast<netmap_if*>(static_cast<char*>(p->mem_) + reg.nr_offset);
  // Ring numbering: NIC tx rings, one host tx ring, NIC rx rings, one host rx ring.
  const uint32_t ntx = p->nifp_->ni_tx_rings, nrx = p->nifp_->ni_rx_rings;
  if (spec.host_rings) {
    p->tx_first_ = ntx, p->tx_count_ = 1;
    p->rx_first_ = ntx + 1 + nrx, p->rx_count_ = 1;
  } else if (spec.queue >= 0) {
    p->tx_first_ = uint32_t(spec.queue), p->tx_count_ = 1;
    p->rx_first_ = ntx + 1 + uint32_t(spec.queue), p->rx_count_ = 1;
  } else {
    p->tx_first_ = 0, p->tx_count_ = ntx;
    p->rx_first_ = ntx + 1, p->rx_count_ = nrx;
  }
  PortStatus& st = *p->status_;
  st.rx_ring = reg.nr_rx_slots;
  st.tx_ring = reg.nr_tx_slots;
  st.queues = std::max(p->rx_count_, p->tx_count_);
  st.frame_size = p->tx_count_ ? ring_at(p->nifp_, p->tx_first_)->nr_buf_size : 0;
  p->burst_ = opts.burst ? std::min<uint32_t>(opts.burst, kMaxBurst) : kMaxBurst;
  st.burst = p->burst_;
  st.set_io("netmap rings: frames copied between the rings and the pool, one NIOCTXSYNC per transmitted batch, NIOCRXSYNC only when the rings are empty");
  st.set_offloads("left as they are: turn them off with ethtool -K (netmap does not handle TSO/partial checksums)");
  st.attached.store(true);
  return p;
}

NetmapPort::~NetmapPort() {
  if (mem_) munmap(mem_, mem_size_);
  if (fd_ >= 0) close(fd_);
  if (ctl_ >= 0) close(ctl_);
}

void NetmapPort::detach() { cache_.flush(); }

LinkState NetmapPort::link_state() const {
  if (vale_ || ctl_ < 0) return LinkState::kUp;
  unsigned fl = 0;
  if (if_flags(ctl_, ifname_, &fl) < 0) return LinkState::kDown;
  return (fl & IFF_UP) && (fl & IFF_RUNNING) ? LinkState::kUp : LinkState::kDown;
}

uint16_t NetmapPort::rx_burst(Pkt* pkts, uint16_t max) {
  if (max > burst_) max = uint16_t(burst_);
  const uint32_t room = pool_->max_frame();
  const uint16_t headroom = pool_->headroom();
  uint16_t n = 0;
  bool any = false;
  for (int pass = 0; pass < 2 && n == 0; ++pass) {
    if (pass == 1) {
      if (any) break;
      ioctl(fd_, NIOCRXSYNC, nullptr);  // rings were empty: ask the kernel for more
    }
    for (uint32_t r = 0; r < rx_count_ && n < max; ++r) {
      netmap_ring* ring = ring_at(nifp_, rx_first_ + r);
      uint32_t i = ring->head;
      bool frag = false;  // inside a multi-slot frame being dropped
      while (i != ring->tail && n < max) {
        any = true;
        netmap_slot& s = ring->slot[i];
        bool more = s.flags & NS_MOREFRAG;
        if (frag || more || s.len > room) {
          if (!more) status_->add(PortStatus::rx_too_big);  // counted once, at its last slot
          frag = more;
        } else {
          uint32_t idx;
          if (!cache_.alloc(&idx)) {
            status_->add(PortStatus::rx_no_buffer);
          } else {
            std::memcpy(pool_->data(idx) + headroom, buf_at(ring, s.buf_idx), s.len);
            pkts[n++] = Pkt{idx, headroom, s.len};
          }
        }
        i = ring_next(ring, i);
      }
      ring->head = ring->cur = i;
    }
  }
  return n;
}

uint16_t NetmapPort::tx_burst(Pkt* pkts, uint16_t n) {
  if (!tx_count_) return 0;
  netmap_ring* ring = ring_at(nifp_, tx_first_ + (tx_next_++ % tx_count_));
  uint32_t i = ring->head;
  uint16_t k = 0;
  for (; k < n && i != ring->tail; ++k) {
    netmap_slot& s = ring->slot[i];
    if (pkts[k].len > ring->nr_buf_size) {
      status_->add(PortStatus::tx_too_big);
    } else {
      std::memcpy(buf_at(ring, s.buf_idx), pool_->frame(pkts[k]), pkts[k].len);
      s.len = pkts[k].len;
      s.flags = 0;
      i = ring_next(ring, i);
    }
    cache_.free(pkts[k].buf);
  }
  ring->head = ring->cur = i;
  if (k) {
    status_->add(PortStatus::kicks);
    if (ioctl(fd_, NIOCTXSYNC, nullptr) < 0) status_->add(PortStatus::tx_errors);
  }
  return k;
}

}  // namespace vpc
