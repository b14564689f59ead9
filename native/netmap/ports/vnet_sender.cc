// See vnet_sender.h.
#include "ports/vnet_sender.h"

#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <unistd.h>

#include <cerrno>

#include "ports/vnet.h"

namespace vpc {

namespace {
// Socket send buffer: room for a full burst of 64 KiB frames.
constexpr int kSendBytes = 4 << 20;
}  // namespace

bool VnetSender::open(int ifindex, std::string* what, int* err) {
  adopt(open_socket(ifindex, what, err));
  return fd_ >= 0;
}

int VnetSender::open_socket(int ifindex, std::string* what, int* err) {
  int fd = -1;
  auto fail = [&](const char* step) {
    *what = step;
    *err = errno;
    if (fd >= 0) ::close(fd);
    return -1;
  };
  fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return fail("socket(AF_PACKET) for offloaded frames");
  int v = 1;
  if (setsockopt(fd, SOL_PACKET, PACKET_VNET_HDR, &v, sizeof(v)) < 0) return fail("PACKET_VNET_HDR (offloaded-frame socket)");
  if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &kSendBytes, sizeof(kSendBytes)) < 0)
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &kSendBytes, sizeof(kSendBytes));
  sockaddr_ll sll{};
  sll.sll_family = AF_PACKET;
  sll.sll_protocol = 0;
  sll.sll_ifindex = ifindex;
  if (bind(fd, reinterpret_cast<sockaddr*>(&sll), sizeof(sll)) < 0) return fail("bind (offloaded-frame socket)");
  return fd;
}

void VnetSender::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  n_ = 0;
}

void VnetSender::add(const BufferPool& pool, const Pkt* pkts, uint16_t pos) {
  const Pkt& p = pkts[pos];
  const OffloadMeta* meta = pkt_has_meta(p) ? &pool.meta(p.buf) : nullptr;
  uint8_t* hdr = hdr_[n_];
  vnet_write(meta, hdr);
  iov_[n_][0] = iovec{hdr, kVnetHdrLen};
  iov_[n_][1] = iovec{pool.data(p.buf) + pkt_off(p), p.len};
  pos_[n_++] = pos;
}

uint32_t VnetSender::flush(BufferCache& cache, const BufferPool& pool, const Pkt* pkts, PortStatus& st) {
  const uint32_t n = n_;
  n_ = 0;
  for (uint32_t k = 0; k < n; ++k) {
    mm_[k] = mmsghdr{};
    mm_[k].msg_hdr.msg_iov = iov_[k];
    mm_[k].msg_hdr.msg_iovlen = 2;
  }
  uint32_t done = 0;  // sent, or refused and dropped
  while (done < n) {
    st.add(PortStatus::kicks);
    const int r = sendmmsg(fd_, mm_ + done, n - done, MSG_DONTWAIT);
    if (r > 0) {
      for (uint32_t k = done; k < done + uint32_t(r); ++k) {
        const Pkt& p = pkts[pos_[k]];
        if (pkt_has_meta(p) && pool.meta(p.buf).pending()) st.add(PortStatus::tx_offload);
        st.add(PortStatus::tx_super);
        cache.free(p.buf);
      }
      done += uint32_t(r);
      continue;
    }
    if (r < 0 && (errno == EAGAIN || errno == ENOBUFS)) break;  // the rest stay with the caller
    // The kernel refused the first one (an invalid header, the interface
    // went away): count and drop it.
    st.add(PortStatus::tx_errors);
    cache.free(pkts[pos_[done]].buf);
    ++done;
  }
  return done;
}

}  // namespace vpc
