#include "ports/link_watch.h"

#include <linux/if.h>
#include <linux/if_link.h>
#include <linux/net_namespace.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sockios.h>
#include <linux/veth.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstring>

namespace vpc {

namespace {
// One read takes one datagram, which holds one notification: a link
// message is 1-2 KB, more with an interface's VF information; 64 KB holds
// any (a longer one counts as lost: every watched port is checked).
constexpr size_t kReadBytes = 64 * 1024;
// The socket's receive buffer: room for a few hundred interfaces changing at
// once before messages are lost (then every watched port is checked).
constexpr int kRcvBuf = 1 << 20;

// The attribute `type` among those in buf[from, end): 1 with its payload's
// offset and length, 0 when absent, -1 when the attributes are malformed.
int find_attr(const uint8_t* buf, size_t from, size_t end, uint16_t type, size_t* at, size_t* len) {
  while (from + NLA_HDRLEN <= end) {
    nlattr a;
    std::memcpy(&a, buf + from, sizeof(a));
    if (a.nla_len < NLA_HDRLEN || from + a.nla_len > end) return -1;
    if ((a.nla_type & NLA_TYPE_MASK) == type) {
      *at = from + NLA_HDRLEN;
      *len = a.nla_len - NLA_HDRLEN;
      return 1;
    }
    from += NLA_ALIGN(a.nla_len);
  }
  return 0;
}

// *v when found, 0 when absent, -1 when the attributes are malformed.
int find_s32_attr(const uint8_t* buf, size_t from, size_t end, uint16_t type, int32_t* v) {
  size_t at = 0, len = 0;
  const int r = find_attr(buf, from, end, type, &at, &len);
  if (r <= 0) return r;
  if (len < sizeof(int32_t)) return 0;
  std::memcpy(v, buf + at, sizeof(*v));
  return 1;
}

// Whether a string attribute's payload is `want` (NUL-terminated or not).
bool attr_is(const uint8_t* buf, size_t at, size_t len, const char* want) {
  const size_t n = std::strlen(want);
  return (len == n || (len > n && buf[at + n] == 0)) && std::memcmp(buf + at, want, n) == 0;
}
}  // namespace

uint64_t socket_netns(int fd) {
  int nsfd = ioctl(fd, SIOCGSKNS);
  if (nsfd < 0) return 0;
  struct stat sb {};
  const uint64_t ino = fstat(nsfd, &sb) == 0 ? uint64_t(sb.st_ino) : 0;
  ::close(nsfd);
  return ino;
}

bool parse_link_messages(const uint8_t* buf, size_t len, int nsid, std::vector<LinkName>* names, bool* ids_changed) {
  size_t off = 0;
  while (len - off >= sizeof(nlmsghdr)) {
    nlmsghdr h;
    std::memcpy(&h, buf + off, sizeof(h));
    if (h.nlmsg_len < sizeof(nlmsghdr) || h.nlmsg_len > len - off) return false;
    if ((h.nlmsg_type == RTM_NEWLINK || h.nlmsg_type == RTM_DELLINK) &&
        h.nlmsg_len >= NLMSG_LENGTH(sizeof(ifinfomsg))) {
      ifinfomsg ifi;
      std::memcpy(&ifi, buf + off + NLMSG_HDRLEN, sizeof(ifi));
      if (ifi.ifi_index > 0) names->push_back(LinkName{nsid, ifi.ifi_index});
    } else if (h.nlmsg_type == RTM_NEWNSID || h.nlmsg_type == RTM_DELNSID) {
      if (ids_changed) *ids_changed = true;
      if (h.nlmsg_type == RTM_DELNSID && nsid == LinkName::kOwnNamespace) {
        // rtgenmsg, then NETNSA_NSID: the id our namespace had for the one gone.
        int32_t id = -1;
        const int r = find_s32_attr(buf, off + NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(rtgenmsg)), off + h.nlmsg_len,
                                    NETNSA_NSID, &id);
        if (r < 0) return false;
        if (r > 0 && id >= 0) names->push_back(LinkName{id, 0});
      }
    }
    const size_t step = NLMSG_ALIGN(h.nlmsg_len);
    if (step >= len - off) break;
    off += step;
  }
  return true;
}

int rtnl_socket() {
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd < 0) return -1;
  sockaddr_nl sa{};
  sa.nl_family = AF_NETLINK;
  if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) < 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

namespace {

// A request being built: header, fixed body, attributes.
struct NlRequest {
  alignas(nlmsghdr) uint8_t buf[256] = {};
  size_t len = NLMSG_HDRLEN;
  NlRequest(uint16_t type, uint16_t flags, const void* body, size_t body_len) {
    std::memcpy(buf + len, body, body_len);
    len += NLMSG_ALIGN(body_len);
    nlmsghdr h{};
    h.nlmsg_type = type;
    h.nlmsg_flags = uint16_t(NLM_F_REQUEST | flags);
    std::memcpy(buf, &h, sizeof(h));
  }
  void attr(uint16_t type, const void* data, size_t n) {
    nlattr a{};
    a.nla_len = uint16_t(NLA_HDRLEN + n);
    a.nla_type = type;
    std::memcpy(buf + len, &a, sizeof(a));
    if (n) std::memcpy(buf + len + NLA_HDRLEN, data, n);
    len += NLA_ALIGN(NLA_HDRLEN + n);
  }
  // A nested attribute: its header now, its length at end_nest(the offset).
  size_t begin_nest(uint16_t type) {
    const size_t at = len;
    attr(type, nullptr, 0);
    return at;
  }
  void end_nest(size_t at) {
    const uint16_t n = uint16_t(len - at);
    std::memcpy(buf + at + offsetof(nlattr, nla_len), &n, sizeof(n));
  }
};

// Sends the request and reads its answer into `out` (the kernel answers
// within the send, so the read does not wait). Returns the answer's length,
// 0 for an ack, or -errno (an NLMSG_ERROR with an error, or a failed call).
ssize_t nl_transact(int nl, NlRequest& rq, uint8_t* out, size_t cap) {
  static std::atomic<uint32_t> seq{0};
  nlmsghdr h;
  std::memcpy(&h, rq.buf, sizeof(h));
  h.nlmsg_len = uint32_t(rq.len);
  h.nlmsg_seq = ++seq;
  std::memcpy(rq.buf, &h, sizeof(h));
  sockaddr_nl to{};
  to.nl_family = AF_NETLINK;
  if (sendto(nl, rq.buf, rq.len, 0, reinterpret_cast<sockaddr*>(&to), sizeof(to)) < 0) return -errno;
  for (;;) {
    ssize_t n = recv(nl, out, cap, MSG_DONTWAIT);
    if (n < 0) return errno == EINTR ? -EAGAIN : -errno;
    if (size_t(n) < sizeof(nlmsghdr)) return -EPROTO;
    nlmsghdr r;
    std::memcpy(&r, out, sizeof(r));
    if (r.nlmsg_seq != h.nlmsg_seq) continue;  // an answer to an earlier request that gave up
    if (r.nlmsg_type == NLMSG_ERROR) {
      nlmsgerr e;
      if (size_t(n) < NLMSG_HDRLEN + sizeof(e)) return -EPROTO;
      std::memcpy(&e, out + NLMSG_HDRLEN, sizeof(e));
      return e.error;  // 0: an ack
    }
    return n;
  }
}

// Sends the RTM_GETLINK request `rq` (asking for no statistics: a shorter
// answer) and reads the answer into `out`: 0 with its length in *end (the
// ifinfomsg at NLMSG_HDRLEN, the attributes after it), or -errno.
int get_link(int nl, NlRequest& rq, uint8_t* out, size_t cap, size_t* end) {
  const uint32_t mask = RTEXT_FILTER_SKIP_STATS;
  rq.attr(IFLA_EXT_MASK, &mask, sizeof(mask));
  ssize_t n = nl_transact(nl, rq, out, cap);
  if (n <= 0) return n < 0 ? int(n) : -EPROTO;
  nlmsghdr r;
  std::memcpy(&r, out, sizeof(r));
  if (r.nlmsg_type != RTM_NEWLINK || r.nlmsg_len > size_t(n) || r.nlmsg_len < NLMSG_LENGTH(sizeof(ifinfomsg))) return -EPROTO;
  *end = r.nlmsg_len;
  return 0;
}

// 0 with *id (NETNSA_NSID_NOT_ASSIGNED when it has none), or -errno.
int get_nsid(int nl, int nsfd, int32_t* id) {
  rtgenmsg g{};
  g.rtgen_family = AF_UNSPEC;
  NlRequest rq(RTM_GETNSID, 0, &g, sizeof(g));
  const uint32_t fd = uint32_t(nsfd);
  rq.attr(NETNSA_FD, &fd, sizeof(fd));
  alignas(nlmsghdr) uint8_t out[512];
  ssize_t n = nl_transact(nl, rq, out, sizeof(out));
  if (n <= 0) return n < 0 ? int(n) : -EPROTO;
  if (find_s32_attr(out, NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(rtgenmsg)), size_t(n), NETNSA_NSID, id) <= 0) return -EPROTO;
  return 0;
}

}  // namespace

int netns_id(int nl, int nsfd) {
  int32_t id = NETNSA_NSID_NOT_ASSIGNED;
  int r = get_nsid(nl, nsfd, &id);
  if (r < 0) return r;
  if (id >= 0) return id;
  rtgenmsg g{};
  g.rtgen_family = AF_UNSPEC;
  NlRequest rq(RTM_NEWNSID, NLM_F_ACK, &g, sizeof(g));
  const uint32_t fd = uint32_t(nsfd);
  const int32_t any = -1;  // the kernel picks one
  rq.attr(NETNSA_FD, &fd, sizeof(fd));
  rq.attr(NETNSA_NSID, &any, sizeof(any));
  alignas(nlmsghdr) uint8_t out[512];
  ssize_t n = nl_transact(nl, rq, out, sizeof(out));
  if (n < 0 && n != -EEXIST) return int(n);  // EEXIST: another process assigned one meanwhile
  r = get_nsid(nl, nsfd, &id);
  if (r < 0) return r;
  return id >= 0 ? id : -ENOENT;
}

int veth_peer_ingress(int nl, int ifindex) {
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  ifi.ifi_index = ifindex;
  NlRequest rq(RTM_GETLINK, 0, &ifi, sizeof(ifi));
  alignas(nlmsghdr) uint8_t out[8192];
  size_t end = 0;
  if (int e = get_link(nl, rq, out, sizeof(out), &end); e < 0) return e;
  const size_t from = NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(ifinfomsg));
  size_t at = 0, len = 0, kat = 0, klen = 0;
  if (find_attr(out, from, end, IFLA_LINKINFO, &at, &len) <= 0) return 0;  // no kind: not a veth
  if (find_attr(out, at, at + len, IFLA_INFO_KIND, &kat, &klen) <= 0 || !attr_is(out, kat, klen, "veth")) return 0;
  int32_t peer_ns = -1;
  if (find_s32_attr(out, from, end, IFLA_LINK_NETNSID, &peer_ns) <= 0) return 0;  // its other end is here
  if (find_attr(out, from, end, IFLA_QDISC, &at, &len) > 0 && !attr_is(out, at, len, "noqueue")) return 0;
  return 1;
}

int veth_pair_create(int nl, const std::string& a, const std::string& b, uint32_t mtu, uint32_t queues) {
  if (a.empty() || b.empty() || a.size() >= IFNAMSIZ || b.size() >= IFNAMSIZ) return -EINVAL;
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  NlRequest rq(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK, &ifi, sizeof(ifi));
  rq.attr(IFLA_IFNAME, a.c_str(), a.size() + 1);
  rq.attr(IFLA_MTU, &mtu, sizeof(mtu));
  rq.attr(IFLA_NUM_TX_QUEUES, &queues, sizeof(queues));
  rq.attr(IFLA_NUM_RX_QUEUES, &queues, sizeof(queues));
  const size_t info = rq.begin_nest(IFLA_LINKINFO);
  rq.attr(IFLA_INFO_KIND, "veth", 5);
  const size_t data = rq.begin_nest(IFLA_INFO_DATA);
  const size_t peer = rq.begin_nest(VETH_INFO_PEER);
  std::memcpy(rq.buf + rq.len, &ifi, sizeof(ifi));  // the peer's own ifinfomsg, then its attributes
  rq.len += NLMSG_ALIGN(sizeof(ifi));
  rq.attr(IFLA_IFNAME, b.c_str(), b.size() + 1);
  rq.attr(IFLA_MTU, &mtu, sizeof(mtu));
  rq.attr(IFLA_NUM_TX_QUEUES, &queues, sizeof(queues));
  rq.attr(IFLA_NUM_RX_QUEUES, &queues, sizeof(queues));
  rq.end_nest(peer);
  rq.end_nest(data);
  rq.end_nest(info);
  alignas(nlmsghdr) uint8_t out[512];
  ssize_t n = nl_transact(nl, rq, out, sizeof(out));
  return n < 0 ? int(n) : 0;
}

int link_delete(int nl, const std::string& name) {
  if (name.empty() || name.size() >= IFNAMSIZ) return -EINVAL;
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  NlRequest rq(RTM_DELLINK, NLM_F_ACK, &ifi, sizeof(ifi));
  rq.attr(IFLA_IFNAME, name.c_str(), name.size() + 1);
  alignas(nlmsghdr) uint8_t out[512];
  ssize_t n = nl_transact(nl, rq, out, sizeof(out));
  return n < 0 ? int(n) : 0;
}

int link_tx_dropped(int nl, int ifindex, uint64_t* dropped) {
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  ifi.ifi_index = ifindex;
  NlRequest rq(RTM_GETLINK, 0, &ifi, sizeof(ifi));
  alignas(nlmsghdr) uint8_t out[16384];
  ssize_t n = nl_transact(nl, rq, out, sizeof(out));
  if (n <= 0) return n < 0 ? int(n) : -EPROTO;
  nlmsghdr r;
  std::memcpy(&r, out, sizeof(r));
  if (r.nlmsg_type != RTM_NEWLINK || r.nlmsg_len > size_t(n) || r.nlmsg_len < NLMSG_LENGTH(sizeof(ifinfomsg))) return -EPROTO;
  size_t at = 0, len = 0;
  if (find_attr(out, NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(ifinfomsg)), r.nlmsg_len, IFLA_STATS64, &at, &len) <= 0 ||
      len < offsetof(rtnl_link_stats64, tx_dropped) + sizeof(uint64_t))
    return -EPROTO;
  std::memcpy(dropped, out + at + offsetof(rtnl_link_stats64, tx_dropped), sizeof(uint64_t));
  return 0;
}

int link_get_by_nsid(int nl, int nsid, const std::string& name, unsigned* flags, int* ifindex) {
  if (name.empty() || name.size() >= IFNAMSIZ) return -EINVAL;
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  NlRequest rq(RTM_GETLINK, 0, &ifi, sizeof(ifi));
  const int32_t id = nsid;
  rq.attr(IFLA_TARGET_NETNSID, &id, sizeof(id));
  rq.attr(IFLA_IFNAME, name.c_str(), name.size() + 1);
  alignas(nlmsghdr) uint8_t out[8192];
  size_t end = 0;
  if (int e = get_link(nl, rq, out, sizeof(out), &end); e < 0) return e;
  ifinfomsg got;
  std::memcpy(&got, out + NLMSG_HDRLEN, sizeof(got));
  *flags = got.ifi_flags;
  *ifindex = got.ifi_index;
  return 0;
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
  sa.nl_groups = RTMGRP_LINK | (1u << (RTNLGRP_NSID - 1));
  if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) < 0) {
    *err = std::string("netlink bind to the link group: ") + strerror(errno);
    ::close(fd);
    return false;
  }
  const int on = 1;
  all_nsid_ = setsockopt(fd, SOL_NETLINK, NETLINK_LISTEN_ALL_NSID, &on, sizeof(on)) == 0;
  if (!all_nsid_)  // EPERM without CAP_NET_BROADCAST
    all_nsid_why_ = std::string("NETLINK_LISTEN_ALL_NSID: ") + strerror(errno);
  fd_ = fd;
  netns_ = socket_netns(fd);
  self_nsfd_ = ioctl(fd, SIOCGSKNS);  // the namespace itself, to ask for its id for itself
  read_self_nsid();
  buf_.resize(kReadBytes);
  return true;
}

// A namespace can have an id for itself (`ip netns set NAME ID` run inside
// it, naming it). Then its own messages come marked with that id, like
// another namespace's; drain() turns it back into kOwnNamespace.
void LinkWatch::read_self_nsid() {
  self_nsid_ = -1;
  if (self_nsfd_ < 0) return;
  const int nl = rtnl_socket();
  if (nl < 0) return;
  int32_t id = NETNSA_NSID_NOT_ASSIGNED;
  if (get_nsid(nl, self_nsfd_, &id) == 0 && id >= 0) self_nsid_ = id;
  ::close(nl);
}

void LinkWatch::close() {
  if (fd_ >= 0) ::close(fd_);
  if (self_nsfd_ >= 0) ::close(self_nsfd_);
  fd_ = self_nsfd_ = -1;
  self_nsid_ = -1;
  netns_ = 0;
  all_nsid_ = false;
  all_nsid_why_.clear();
}

bool LinkWatch::drain(std::vector<LinkName>* names) {
  if (fd_ < 0) return true;
  bool whole = true;
  for (;;) {
    iovec iov{buf_.data(), buf_.size()};
    alignas(cmsghdr) uint8_t control[CMSG_SPACE(sizeof(int))];
    msghdr m{};
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = control;
    m.msg_controllen = sizeof(control);
    ssize_t n = recvmsg(fd_, &m, MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == ENOBUFS) {  // the kernel dropped messages; the socket goes on
        whole = false;
        continue;
      }
      return whole;  // EAGAIN: all read
    }
    if (n == 0) return whole;
    // A message of another namespace carries that namespace's id.
    int nsid = LinkName::kOwnNamespace;
    for (cmsghdr* c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c))
      if (c->cmsg_level == SOL_NETLINK && c->cmsg_type == NETLINK_LISTEN_ALL_NSID && c->cmsg_len >= CMSG_LEN(sizeof(int)))
        std::memcpy(&nsid, CMSG_DATA(c), sizeof(int));
    if (nsid >= 0 && nsid == self_nsid_) nsid = LinkName::kOwnNamespace;
    bool ids_changed = false;
    if ((m.msg_flags & MSG_TRUNC) || !parse_link_messages(buf_.data(), size_t(n), nsid, names, &ids_changed)) whole = false;
    // Before the next message, which may already carry a new id of ours.
    if (ids_changed) read_self_nsid();
  }
}

}  // namespace vpc
