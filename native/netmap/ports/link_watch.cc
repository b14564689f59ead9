#include "ports/link_watch.h"

#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace vpc {

namespace {
// A link message is about 1.5 KB with its statistics; 64 KB takes a burst
// of forty in one read.
constexpr size_t kReadBytes = 64 * 1024;
// The socket's receive buffer: room for a few hundred interfaces changing at
// once before messages are lost (then every watched port is checked).
constexpr int kRcvBuf = 1 << 20;
}  // namespace

uint64_t socket_netns(int fd) {
  int nsfd = ioctl(fd, SIOCGSKNS);
  if (nsfd < 0) return 0;
  struct stat sb {};
  const uint64_t ino = fstat(nsfd, &sb) == 0 ? uint64_t(sb.st_ino) : 0;
  ::close(nsfd);
  return ino;
}

bool parse_link_messages(const uint8_t* buf, size_t len, std::vector<int>* ifindexes) {
  size_t off = 0;
  while (len - off >= sizeof(nlmsghdr)) {
    nlmsghdr h;
    std::memcpy(&h, buf + off, sizeof(h));
    if (h.nlmsg_len < sizeof(nlmsghdr) || h.nlmsg_len > len - off) return false;
    if ((h.nlmsg_type == RTM_NEWLINK || h.nlmsg_type == RTM_DELLINK) &&
        h.nlmsg_len >= NLMSG_LENGTH(sizeof(ifinfomsg))) {
      ifinfomsg ifi;
      std::memcpy(&ifi, buf + off + NLMSG_HDRLEN, sizeof(ifi));
      if (ifi.ifi_index > 0) ifindexes->push_back(ifi.ifi_index);
    }
    const size_t step = NLMSG_ALIGN(h.nlmsg_len);
    if (step >= len - off) break;
    off += step;
  }
  return true;
}

LinkWatch::~LinkWatch() { close(); }

bool LinkWatch::open(std::string* err) {
  close();
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd < 0) {
    *err = std::string("netlink socket: ") + strerror(errno);
    return false;
  }
  // Larger than the default where the process may (CAP_NET_ADMIN), else as
  // large as rmem_max allows.
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &kRcvBuf, sizeof(kRcvBuf)) < 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &kRcvBuf, sizeof(kRcvBuf));
  sockaddr_nl sa{};
  sa.nl_family = AF_NETLINK;
  sa.nl_groups = RTMGRP_LINK;
  if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) < 0) {
    *err = std::string("netlink bind to the link group: ") + strerror(errno);
    ::close(fd);
    return false;
  }
  fd_ = fd;
  netns_ = socket_netns(fd);
  buf_.resize(kReadBytes);
  return true;
}

void LinkWatch::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  netns_ = 0;
}

bool LinkWatch::drain(std::vector<int>* ifindexes) {
  if (fd_ < 0) return true;
  bool whole = true;
  for (;;) {
    ssize_t n = recv(fd_, buf_.data(), buf_.size(), MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == ENOBUFS) {  // the kernel dropped messages; the socket goes on
        whole = false;
        continue;
      }
      return whole;  // EAGAIN: all read
    }
    if (n == 0) return whole;
    if (!parse_link_messages(buf_.data(), size_t(n), ifindexes)) whole = false;
  }
}

}  // namespace vpc
