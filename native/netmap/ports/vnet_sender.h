// Frames with their offload state through a plain AF_PACKET socket.
//
// A transmit-only packet socket (no ring, protocol 0 so that it receives
// nothing) with PACKET_VNET_HDR, bound to one interface: each frame goes out
// as a virtio_net_hdr and the frame (two iovecs, one sendmmsg per run), and
// the kernel keeps its state, so a TSO super-frame stays one skb up to the
// device (or a veth's peer) and a checksum-partial frame stays partial.
// sendmmsg copies each frame into an skb, so buffers go back to the pool as
// soon as the call returns.
//
// No PACKET_QDISC_BYPASS: the bypass (dev_direct_xmit) drops a frame that the
// device cannot take as it is rather than segmenting it, so a super-frame or
// a VXLAN batch sent to an interface without TSO or UDP segmentation was lost
// whole. Through the qdisc path the kernel segments in software.
//
// Used by the afpacket port for frames larger than a ring slot or to be
// segmented, and by the afxdp port for every frame with offload state (XDP has
// no way to hand the kernel a GSO frame).
#pragma once

#include <sys/socket.h>
#include <sys/uio.h>

#include <cstdint>
#include <memory>
#include <string>

#include "core/buffer_pool.h"
#include "core/types.h"
#include "ports/spec.h"

namespace vpc {

class VnetSender {
 public:
  // Opens and binds the socket to ifindex. On failure returns false with
  // *what (the step) and *err (errno) set; the sender stays closed.
  bool open(int ifindex, std::string* what, int* err);
  void close();
  // The same in two steps, for a port that opens off the engine thread
  // (ports/off_thread.h): open_socket() makes the socket (-1 on failure, as
  // open()), adopt() takes it; release() hands the socket back for closing
  // elsewhere and leaves the sender closed.
  static int open_socket(int ifindex, std::string* what, int* err);
  void adopt(int fd) {
    close();
    fd_ = fd;
  }
  int release() {
    const int fd = fd_;
    fd_ = -1;
    n_ = 0;
    return fd;
  }
  bool is_open() const { return fd_ >= 0; }
  ~VnetSender() { close(); }

  // Queues pkts[pos] (offload state from the pool when its descriptor says
  // so) for the next flush().
  void add(const BufferPool& pool, const Pkt* pkts, uint16_t pos);
  uint32_t pending() const { return n_; }
  // Sends what add() queued, in order; frees the buffers of the frames sent
  // (counting tx_offload, tx_super and kicks in `st`) and drops a frame the
  // kernel refuses (tx_errors), so one bad frame cannot stall the port.
  // Returns how many of the queued frames are done; the rest (the socket's
  // buffer is full) stay with the caller, who still owns them.
  uint32_t flush(BufferCache& cache, const BufferPool& pool, const Pkt* pkts, PortStatus& st);

 private:
  int fd_ = -1;
  uint32_t n_ = 0;
  mmsghdr mm_[kMaxBurst];
  iovec iov_[kMaxBurst][2];
  uint8_t hdr_[kMaxBurst][16];
  uint16_t pos_[kMaxBurst];  // positions in pkts of the queued run
};

}  // namespace vpc
