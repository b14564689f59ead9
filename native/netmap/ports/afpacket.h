// AF_PACKET port: the fallback that works on every Linux interface.
//
//   kernel rx ring (mmap, TPACKET_V2) ──copy──► engine buffer ──► rx_burst
//     └ a super-frame: its slot says TP_STATUS_COPY, the whole frame waits in
//       the socket queue ──recvmmsg (one per burst)──► large buffer
//   tx_burst ──copy──► kernel tx ring (mmap) ──► one sendto() kick per batch
//     └ a frame larger than a slot ──sendmmsg (one per run)──► second socket
//
// - Socket bound to the interface's ifindex with ETH_P_ALL, promiscuous
//   through PACKET_ADD_MEMBERSHIP (undone by the kernel when the socket
//   closes), PACKET_QDISC_BYPASS on the ring's tx, PACKET_IGNORE_OUTGOING so frames that
//   others send on the interface do not come back as received ones.
// - Offloads (PACKET_VNET_HDR): every frame comes with a virtio_net_hdr, so
//   a guest with TSO/GSO and checksum offload on (every veth's default) hands
//   over checksum-partial frames and TCP super-frames of up to 64 KiB as they
//   are; the header becomes the frame's OffloadMeta (ports/vnet.h), an invalid
//   one a counted drop (rx_bad_vnet). On transmit the header is written from
//   the frame's OffloadMeta (a zero header for a plain frame), so a guest gets
//   super-frames whole: tx_offloads() = checksum, TSO4, TSO6, ECN, and UDP
//   GSO (the kernel segments a super-frame for a device without the offload;
//   an uplink sends batches of VXLAN packets that way, overlay/uso.cc).
//   Frames with GSO state leave through the second socket below, which goes
//   through the qdisc layer: only that path segments in software
//   (PACKET_QDISC_BYPASS would drop them).
// - Rings and memory: regular 2 KiB slots (2048 per ring, 4 MiB each way),
//   the same as without offloads, so the 64-byte path is unchanged. A frame
//   larger than a slot is not given a slot of its own size: on receive the
//   kernel queues it whole on the socket as well (PACKET_COPY_THRESH) and
//   marks its slot TP_STATUS_COPY, in ring order; the burst reads every such
//   frame with one recvmmsg() into large pool buffers. On transmit, a run of
//   such frames goes out through a second packet socket (no ring) with one
//   sendmmsg(), after a kick of what the ring holds, so the order is kept.
//   Measured against big-slot rings in docs/ports.md.
// - One copy in (ring slot or socket -> buffer at headroom) and one copy out.
//   An 802.1Q tag the kernel took off into the slot header (or the auxdata of
//   a queued frame) is put back while copying, and the offsets move with it.
//   A frame that does not fit (or was cut without a queued copy, e.g. the
//   socket's receive buffer was full) is dropped and counted, never truncated.
// - No system call per packet: rx reads the ring, tx fills it and kicks once;
//   super-frames cost one recvmmsg/sendmmsg per burst (or run), not per frame.
// - Interface offloads are left as they are unless disableOffloads asks to
//   turn GRO/LRO/GSO/TSO/tx-checksum off (restored at detach).
// - Link: IFF_UP && IFF_RUNNING, checked by link_state() (the engine calls it
//   every housekeeping tick, ~100 ms). If the interface disappears, the
//   socket and rings are released and the port is down; when an interface of
//   that name appears again, the port re-opens it by itself. Closing the old
//   sockets and opening the new ones happen off the engine thread
//   (ports/off_thread.h): the other ports do not wait for them.
// - poll_fd() is an epoll descriptor that stays the same across re-opens.
#pragma once

#include <sys/socket.h>
#include <sys/uio.h>

#include <atomic>
#include <memory>
#include <string>

#include "core/buffer_pool.h"
#include "ports/ifutil.h"
#include "ports/kpath.h"
#include "ports/off_thread.h"
#include "ports/port.h"
#include "ports/spec.h"
#include "ports/vnet_sender.h"

namespace vpc {

// One opening of the interface: the packet socket with its mapped rings,
// and the socket for frames larger than a slot. Closed when destroyed.
struct AfPacketSocket {
  int fd = -1;
  int big_fd = -1;  // VnetSender's
  uint8_t* ring = nullptr;
  size_t ring_bytes = 0;
  uint32_t frame_size = 0, rx_frames = 0, tx_frames = 0;
  int ifindex = 0;
  Status code = Status::kOk;  // why it could not be opened (fd < 0)
  std::string err;
  // The kernel fast path's programs, when the port had them at the start of
  // a re-open: hooked to this socket and interface (kp_why: why not).
  bool kp_tried = false, kp_hooked = false;
  KpathHook kp_link;
  std::string kp_why;

  AfPacketSocket() = default;
  AfPacketSocket(AfPacketSocket&& o) noexcept { *this = std::move(o); }
  AfPacketSocket& operator=(AfPacketSocket&& o) noexcept;
  ~AfPacketSocket() { close(); }
  void close();
};

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
  uint32_t tx_offloads() const override { return kOffCsum | kOffTso4 | kOffTso6 | kOffTsoEcn | kOffUso; }
  void detach() override;
  bool kernel_path_wanted() const override { return opts_.kernel_path; }
  bool kernel_path(const KpathProgs& progs, const std::string& why_not) override;
  int kernel_ifindex() const override { return kp_hooked_ ? ifindex_ : 0; }
  bool kernel_peer_ingress() const override { return kp_hooked_ && peer_ingress_; }
  uint64_t kernel_gro_lost() const override { return gro_lost_.load(std::memory_order_relaxed); }
  std::pair<int, int> kernel_gro_stage() const override {
    return kp_hooked_ ? std::pair<int, int>{kp_link_.gro_tx, kp_link_.gro_rx} : std::pair<int, int>{0, 0};
  }
  // The interface while the port holds it (not while it reopens).
  // Rechecked every 10 s: the link, the MTU and a socket error come with
  // link messages, and the kernel's drops are read as soon as a burst finds
  // the ring full or a frame says there were some (TP_STATUS_LOSING).
  WatchKey link_watch_key() const override {
    return fd_ >= 0 && !reopen_.busy() ? WatchKey{netns_, ifindex_, 10000} : WatchKey{};
  }

 private:
  AfPacketPort(const std::string& ifname, const KernelPortOptions& opts, std::shared_ptr<BufferPool> pool,
               std::shared_ptr<PortStatus> status);
  // Opens socket + rings and binds: any thread (reads only what does not
  // change after open). On failure s->fd < 0, with s->code/err set.
  void open_socket(AfPacketSocket* s) const;
  // Engine thread: the port takes what open_socket made.
  void adopt(AfPacketSocket&& s);
  void refresh_mac();
  // Engine thread: the port lets go of its sockets, to be closed elsewhere.
  AfPacketSocket release_socket();
  void close_socket();  // release_socket() and close, here (detach)
  LinkState check_link();
  // Closes what the port holds and, with `reopen`, opens the interface
  // again, off the engine thread; check_link() adopts the result.
  void reopen_off_thread(bool reopen);
  void count_too_big();    // rx_too_big, explained at the end of the burst
  void explain_too_big();  // lastError: why frames too long for a buffer arrive
  void read_kernel_drops();  // PACKET_STATISTICS: rx_kernel_drops
  void kick();
  uint8_t* rx_frame(uint32_t i) const;
  uint8_t* tx_frame(uint32_t i) const;
  // Reads the `n` super-frames whose slots said TP_STATUS_COPY into large
  // buffers (one recvmmsg) and fills their reserved places in pkts; returns
  // how many of them failed (their places hold kNoId).
  uint32_t rx_queued(Pkt* pkts, uint32_t n);

  std::string ifname_;
  KernelPortOptions opts_;
  std::shared_ptr<BufferPool> pool_;
  std::shared_ptr<PortStatus> status_;
  BufferCache cache_;  // engine thread only, once attached

  int ctl_ = -1;   // interface ioctls
  uint64_t netns_ = 0;  // ctl_'s network namespace (link_watch_key)
  int epfd_ = -1;  // what the engine polls; holds fd_ while it is open
  int fd_ = -1;    // the packet socket; -1 while the interface is gone
  VnetSender big_;  // frames larger than a slot, or to be segmented (its own socket, see vnet_sender.h)
  int ifindex_ = 0;
  Mac mac_ = 0;
  uint8_t* ring_ = nullptr;
  size_t ring_bytes_ = 0;
  uint32_t frame_size_ = 0;
  uint32_t rx_frames_ = 0, tx_frames_ = 0;
  uint32_t rx_head_ = 0, tx_head_ = 0;
  uint32_t tx_max_ = 0;
  uint32_t tx_limit_ = 0;  // interface MTU + 14, re-read on every link check (tx_frame_limit)
  void read_mtu();
  // The kernel fast path (ports/kpath.h): our copies of the programs, hooked
  // to every socket and interface this port opens.
  bool kp_hook();
  void kp_set_hooked(bool hooked, const std::string& why);  // kp_hooked_ and the port's status
  // peer_ingress_ and the uplink's XDP stage (read_xdp), when hooked: at
  // hooking and at every link check; the status says so when either changed
  // (or `say`).
  void read_peer_ingress(bool say = false);
  bool check_gro_stage();
  void kp_status();  // the kernel path's line of the port's status
  std::string xdp_unwanted() const;
  bool read_xdp();
  void kp_unhook();  // the hooks go, the port stays on the engine path
  KpathProgs kp_;  // our copies (tc < 0: none)
  KpathHook kp_link_;
  bool kp_hooked_ = false;
  bool peer_ingress_ = false;  // veth_peer_ingress() of the interface (kernel_peer_ingress)
  std::atomic<uint64_t> gro_lost_{0};  // kernel_gro_lost
  int gro_seen_tx_ = 0;                // the stage whose transmit drops gro_seen_ is
  uint64_t gro_seen_ = 0;
  void read_gro_lost();
  std::string kp_why_;         // why the kernel path is off (kp_status)
  uint32_t burst_ = kMaxBurst;
  bool tx_pending_ = false;  // slots handed to the kernel that a kick may still need to push
  uint32_t empty_polls_ = 0;
  uint64_t last_open_try_ms_ = 0;
  OffThread<AfPacketSocket> reopen_;  // closing and opening the sockets when the interface comes and goes
  uint64_t too_big_seen_ = 0;  // rx_too_big when last explained
  uint64_t too_big_explained_ms_ = 0;
  bool too_big_unexplained_ = false;  // rx_too_big moved since explain_too_big()
  bool claimed_ = false;
  OffloadSaved offloads_;

  // Super-frames of the current burst: where they go in pkts, their large
  // buffers, and the recvmmsg/sendmmsg arguments (kept here: no allocation
  // on the hot path).
  struct RxQueued {
    uint16_t pos;
    uint32_t buf;  // kNoId: no large buffer (read into scratch_ and dropped)
  };
  RxQueued rxq_[kMaxBurst];
  mmsghdr rx_mm_[kMaxBurst];
  iovec rx_iov_[kMaxBurst][2];
  alignas(8) uint8_t rx_cmsg_[kMaxBurst][64];
  uint8_t scratch_[64];
};

}  // namespace vpc
