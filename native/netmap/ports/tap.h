// tap port: a tap device whose descriptor the switch holds: a container's or
// host stack's NIC (the interface moves into that namespace). A VM's tap is
// held by its hypervisor; the switch takes its interface with afpacket.
//
//   guest/host stack ──► tap ──read──► engine buffer ──► rx_burst
//   tx_burst ──write──► tap ──► guest/host stack
//
// - Opens /dev/net/tun with IFF_TAP | IFF_NO_PI, blocking with io_uring and
//   nonblocking without. The device is created when it does not exist (and
//   then disappears when the port is deleted) or attached to when it does
//   (then it is left as it was found, down again if the port brought it up).
//   queues > 1 uses IFF_MULTI_QUEUE, one descriptor per queue.
// - Frames are copied once in (read into a buffer at headroom) and once out;
//   tap has no ring the switch can share, and tun takes one frame per read or
//   write. Where io_uring is available (liburing at build time, allowed by the
//   kernel; ioUring 'auto' or 'on') those reads and writes are batched
//   (tap_uring.h): one parked read per queue tells when the tap has frames
//   (an idle port costs no system call), then one io_uring_enter per burst
//   carries up to a burst of reads, and one per transmit call every write. Otherwise (ioUring 'off', or auto without io_uring) each frame is
//   one read() or write() on a nonblocking descriptor, rx stopping at EAGAIN;
//   portStatus().io says which and why.
// - Transmit picks a queue per frame from a hash of the MACs and the IPv4
//   addresses and ports, so a flow stays on one queue (a multi-queue guest
//   sees it in order).
// - Offloads: the tap is opened with IFF_VNET_HDR (a 10-byte virtio_net_hdr
//   in front of every frame, both ways) and TUNSETOFFLOAD(CSUM, TSO4, TSO6,
//   TSO_ECN, and USO4/USO6 where the kernel has them, Linux 6.2), so the
//   guest's stack hands over checksum-partial frames, TCP super-frames and
//   UDP GSO batches of up to 64 KiB instead of segmenting them itself, and
//   gets them back the same way (tx_offloads()). A read lands as header + regular
//   buffer + large buffer (readv): a frame that fits a regular buffer stays
//   there and the large buffer goes back; a super-frame continues into
//   the large buffer, and its head (< 2 KiB) is copied over (details in
//   tap_uring.h). An invalid
//   header is a counted drop (rx_bad_vnet). A write carries the header, put
//   in the buffer's headroom right in front of the frame (one write, no
//   extra copy).
// - Link: the device's IFF_UP && IFF_RUNNING, read in whatever network
//   namespace the device lives in now (a tap is often moved into a guest's
//   namespace). A deleted tap marks the port down; the port creates it again
//   (if the switch created it) or re-attaches when it returns.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/buffer_pool.h"
#include "ports/off_thread.h"
#include "ports/port.h"
#include "ports/spec.h"
#include "ports/tap_uring.h"

namespace vpc {

class TapPort final : public Port {
 public:
  static std::unique_ptr<TapPort> open(const std::string& ifname, const KernelPortOptions& opts,
                                       std::shared_ptr<BufferPool> pool, std::shared_ptr<PortStatus> status);
  ~TapPort() override;

  const char* kind() const override { return "tap"; }
  uint16_t rx_burst(Pkt* pkts, uint16_t max) override;
  uint16_t tx_burst(Pkt* pkts, uint16_t n) override;
  int poll_fd() const override { return epfd_; }
  LinkState link_state() const override { return const_cast<TapPort*>(this)->check_link(); }
  void detach() override;
  // The device while it is open, in the switch's namespace or in the one it
  // was moved to (by the id ours has for it). Its check reads nothing the
  // messages do not announce (the device's flags, its deletion, a move):
  // rechecked only every 10 s, in case.
  WatchKey link_watch_key() const override {
    if (fds_.empty() || dead_ || ifindex_ <= 0 || ns_ino_ == 0) return {};
    if (ns_ino_ == home_netns_) return WatchKey{home_netns_, ifindex_, 10000, -1};
    // Held in a container's namespace (pinned_ino_): no message says when
    // that namespace has nobody else left, so it is checked every 2 s.
    return nsid_ >= 0 ? WatchKey{home_netns_, ifindex_, pinned_ino_ ? 2000u : 10000u, nsid_} : WatchKey{};
  }
  uint32_t tx_offloads() const override {
    return kOffCsum | kOffTso4 | kOffTso6 | kOffTsoEcn | (uso_ ? kOffUso : 0u);
  }

 private:
  TapPort(const std::string& ifname, const KernelPortOptions& opts, std::shared_ptr<BufferPool> pool,
          std::shared_ptr<PortStatus> status);
  bool open_queues(Status* code, std::string* err, int nsfd = -1);  // nsfd: the device's namespace (-1: ours)
  void close_queues();
  LinkState check_link();
  bool let_go_of_orphaned_namespace();
  int read_flags(const char* name, unsigned* flags);  // 0 or -errno; ifindex_ too
  void set_down();  // the device's IFF_UP off, wherever it is
  // Puts the virtio-net header in front of pkts[i]'s frame (moving a frame
  // that has no room in front of it); false: no room at all (dropped).
  bool put_vnet(Pkt* p);
  uint16_t rx_fallback(Pkt* pkts, uint16_t max);

  std::string ifname_;
  KernelPortOptions opts_;
  std::shared_ptr<BufferPool> pool_;
  std::shared_ptr<PortStatus> status_;
  BufferCache cache_;
  std::unique_ptr<TapUring> uring_;  // null: one read()/write() per frame (destroyed before cache_)

  std::vector<int> fds_;  // one per queue; empty while the device is gone
  int ctl_ = -1;          // control socket in the switch's namespace
  int nl_ = -1;           // netlink requests for a device in another namespace
  int nsid_ = -1;         // that namespace's id in ours (netns_id); -1: ours
  unsigned long ns_ino_ = 0;
  uint64_t home_netns_ = 0;  // ctl_'s namespace
  int ifindex_ = 0;          // the device's index in the namespace ns_ino_ names
  int epfd_ = -1;
  bool created_ = false;  // the switch created the device
  bool brought_up_ = false;  // the switch set IFF_UP on a device it found down
  bool claimed_ = false;
  // A persistent tap re-attached in a container's namespace after a restart:
  // its descriptors were opened there, and a tun descriptor keeps the
  // namespace it was opened in alive. When nothing else holds it any more
  // (no task in it, no mount of it: the container is gone, see
  // netns_orphaned), twice in a row, the port lets go of the tap, the kernel
  // dismantles the namespace with it, and the port makes its tap again at
  // home, as when a tap it followed there goes with its container.
  uint64_t pinned_ino_ = 0;  // that namespace; 0: the descriptors hold none but ours
  OffThread<bool> orphan_check_;
  uint64_t last_orphan_check_ms_ = 0;
  int orphan_votes_ = 0;
  uint32_t burst_ = kMaxBurst;
  uint32_t rx_q_ = 0;
  uint64_t last_open_try_ms_ = 0;
  bool dead_ = false;  // a read or write said the device is gone
  bool uso_ = true;    // the tap takes UDP GSO (TUN_F_USO4/6); false once a kernel refused it
  std::unique_ptr<uint8_t[]> scratch_;  // read() path: where a super-frame's rest lands before its large buffer
};

}  // namespace vpc
