// AF_PACKET port: the fallback that works on every Linux interface.
//
//   kernel rx ring (mmap, TPACKET_V2) ──copy──► engine buffer ──► rx_burst
//   tx_burst ──copy──► kernel tx ring (mmap) ──► one sendto() kick per batch
//
// - Socket bound to the interface's ifindex with ETH_P_ALL, promiscuous
//   through PACKET_ADD_MEMBERSHIP (undone by the kernel when the socket
//   closes), PACKET_QDISC_BYPASS on tx, PACKET_IGNORE_OUTGOING so frames that
//   others send on the interface do not come back as received ones.
// - One copy in (ring slot -> buffer at headroom) and one copy out. An 802.1Q
//   tag the kernel took off into the slot header is put back while copying.
//   A frame that does not fit a buffer (or was cut to the slot size) is
//   dropped and counted, never truncated. A frame with a partial checksum
//   (CHECKSUM_PARTIAL, from a peer with tx checksumming on) is completed.
// - No system call per packet: rx reads the ring, tx fills it and kicks once.
// - Offloads: GRO/LRO/GSO/TSO/tx-checksum are turned off on the interface at
//   open and restored at detach (see docs/ports.md).
// - Link: IFF_UP && IFF_RUNNING, checked by link_state() (the engine calls it
//   every housekeeping tick, ~100 ms). If the interface disappears, the
//   socket and rings are released and the port is down; when an interface of
//   that name appears again, the port re-opens it by itself.
// - poll_fd() is an epoll descriptor that stays the same across re-opens.
#pragma once

#include <memory>
#include <string>

#include "core/buffer_pool.h"
#include "ports/ifutil.h"
#include "ports/port.h"
#include "ports/spec.h"

namespace vpc {

class AfPacketPort final : public Port {
 public:
  // Throws PortError.
  static std::unique_ptr<AfPacketPort> open(const std::string& ifname, const KernelPortOptions& opts,
                                            std::shared_ptr<BufferPool> pool, std::shared_ptr<PortStatus> status);
  ~AfPacketPort() override;

  const char* kind() const override { return "afpacket"; }
  uint16_t rx_burst(Pkt* pkts, uint16_t max) override;
  uint16_t tx_burst(Pkt* pkts, uint16_t n) override;
  int poll_fd() const override { return epfd_; }
  LinkState link_state() const override { return const_cast<AfPacketPort*>(this)->check_link(); }
  // The interface's MAC as it was when the port was opened: an uplink sources
  // its frames from it, so NICs that filter unicast still accept replies.
  Mac hw_mac() const override { return mac_; }
  uint32_t tx_frame_limit() const override { return tx_limit_; }
  void detach() override;

 private:
  AfPacketPort(const std::string& ifname, const KernelPortOptions& opts, std::shared_ptr<BufferPool> pool,
               std::shared_ptr<PortStatus> status);
  // Opens socket + rings and binds; on failure returns false with *st/*err set.
  bool open_socket(Status* st, std::string* err);
  void close_socket();
  LinkState check_link();
  void explain_too_big();  // lastError: why frames too long for a buffer arrive
  void kick();
  uint8_t* rx_frame(uint32_t i) const;
  uint8_t* tx_frame(uint32_t i) const;

  std::string ifname_;
  KernelPortOptions opts_;
  std::shared_ptr<BufferPool> pool_;
  std::shared_ptr<PortStatus> status_;
  BufferCache cache_;  // engine thread only, once attached

  int ctl_ = -1;   // interface ioctls
  int epfd_ = -1;  // what the engine polls; holds fd_ while it is open
  int fd_ = -1;    // the packet socket; -1 while the interface is gone
  int ifindex_ = 0;
  Mac mac_ = 0;
  uint8_t* ring_ = nullptr;
  size_t ring_bytes_ = 0;
  uint32_t block_size_ = 0, frame_size_ = 0, frames_per_block_ = 0;
  uint32_t rx_frames_ = 0, tx_frames_ = 0;
  uint32_t rx_head_ = 0, tx_head_ = 0;
  uint32_t tx_data_off_ = 0, tx_max_ = 0;
  uint32_t tx_limit_ = 0;  // interface MTU + 14, re-read on every link check (tx_frame_limit)
  void read_mtu();
  uint32_t burst_ = kMaxBurst;
  bool tx_pending_ = false;  // slots handed to the kernel that a kick may still need to push
  uint32_t empty_polls_ = 0;
  uint64_t last_open_try_ms_ = 0;
  uint64_t too_big_seen_ = 0;  // rx_too_big when check_link last explained it
  bool claimed_ = false;
  OffloadSaved offloads_;
};

}  // namespace vpc
