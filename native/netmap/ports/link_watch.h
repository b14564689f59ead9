// The kernel's link messages, so that the engine checks a port's link when
// its interface changes instead of asking every interface ten times a second.
//
// A LinkWatch is a netlink route socket subscribed to RTMGRP_LINK in one
// network namespace (the one it was opened in: the engine's). The kernel
// sends it RTM_NEWLINK for every change of an interface's flags, carrier,
// MTU, name or namespace, and RTM_DELLINK when one goes (or moves away).
// With NETLINK_LISTEN_ALL_NSID it also gets those of every namespace ours
// has an id for (RTM_NEWNSID: a tap the switch followed into a container's
// namespace), each marked with that id, and RTM_DELNSID when such a
// namespace goes (its interfaces go with it, and their own messages no
// longer reach us). If our namespace has an id for itself, our own messages
// carry it too; drain() names them as our own. drain() reads what came, without blocking, and names
// the interfaces by namespace id and index; the engine then checks the
// ports on those interfaces (core/core.cc, Core::link_slices). A port says
// which interface that is with Port::link_watch_key(); one without (gone,
// reopening, another kind of port) is read on the engine's usual round
// robin.
//
// Messages can be lost: the socket's receive buffer overflows (ENOBUFS)
// when many interfaces change at once. drain() says so, and the engine then
// checks every watched port.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace vpc {

// An interface a message named: its namespace's id (kOwnNamespace: the
// watch's own namespace) and index (0: every interface of that namespace,
// which is gone).
struct LinkName {
  static constexpr int kOwnNamespace = -1;
  int nsid = kOwnNamespace;
  int ifindex = 0;
  bool operator==(const LinkName&) const = default;
};

class LinkWatch {
 public:
  LinkWatch() = default;
  ~LinkWatch();
  LinkWatch(const LinkWatch&) = delete;
  LinkWatch& operator=(const LinkWatch&) = delete;

  // Opens the socket in the calling thread's network namespace. False (with
  // the reason) when netlink refuses: then nothing is watched.
  bool open(std::string* err);
  void close();
  int fd() const { return fd_; }
  // The namespace's identity (the inode of its nsfs file), 0 when not open.
  uint64_t netns() const { return netns_; }
  // Whether messages of other namespaces come too (NETLINK_LISTEN_ALL_NSID),
  // and if not, why (the kernel's refusal; empty when they do).
  bool all_namespaces() const { return all_nsid_; }
  const std::string& all_namespaces_why() const { return all_nsid_why_; }
  // Appends every interface a pending message names (it may repeat one).
  // False when messages were lost since the last drain.
  bool drain(std::vector<LinkName>* names);

 private:
  void read_self_nsid();
  int fd_ = -1;
  uint64_t netns_ = 0;
  int self_nsfd_ = -1;  // the watch's namespace
  int self_nsid_ = -1;  // its id for itself, -1: none (read_self_nsid)
  bool all_nsid_ = false;
  std::string all_nsid_why_;
  std::vector<uint8_t> buf_;
};

// The network namespace a socket belongs to (SIOCGSKNS), 0 when the kernel
// cannot say.
uint64_t socket_netns(int fd);

// Requests over a netlink route socket (one of its own, no groups), for an
// interface in another network namespace without holding a socket there: a
// socket keeps its namespace alive, so a port that followed a tap into a
// container's namespace with one kept that namespace, and the tap, after the
// container was gone. A namespace id (an index the caller's namespace keeps
// for another one, RTM_NEWNSID) does not keep it.
int rtnl_socket();  // -1 on failure (errno)
// The id nl's namespace has for the namespace `nsfd` refers to, assigned
// now if it has none; -errno on failure.
int netns_id(int nl, int nsfd);
// The flags (as SIOCGIFFLAGS gives them: IFF_UP, IFF_RUNNING, ...) and the
// index of the interface `name` in the namespace with id `nsid`; 0 or
// -errno (-ENODEV: no such interface there).
int link_get_by_nsid(int nl, int nsid, const std::string& name, unsigned* flags, int* ifindex);

// Whether the kernel path may hand a frame for the interface `ifindex`
// straight to the other end of it (bpf_redirect_peer, docs/design/
// kernel-path.md): it is a veth, its other end is in another network
// namespace (the helper's condition), and its root qdisc is noqueue, a
// veth's own (no shaping on its transmit side that the shortcut would skip).
// 1 or 0, or -errno when netlink could not tell.
int veth_peer_ingress(int nl, int ifindex);

// A veth pair `a` and `b` in nl's namespace, both with MTU `mtu` and
// `queues` transmit and receive queues: 0 or -errno (-EEXIST: a name is
// taken). link_delete: the interface `name` (a veth's
// other end goes with it); 0 or -errno (-ENODEV: none).
int veth_pair_create(int nl, const std::string& a, const std::string& b, uint32_t mtu, uint32_t queues);
int link_delete(int nl, const std::string& name);
// The interface's transmit drops (IFLA_STATS64 tx_dropped: on a veth, what
// its other end did not take): 0 or -errno.
int link_tx_dropped(int nl, int ifindex, uint64_t* dropped);

// Parses one read's worth of netlink messages, from the namespace with id
// `nsid` (LinkName::kOwnNamespace: the socket's own): appends the interface
// of every RTM_NEWLINK and RTM_DELLINK, and {id, 0} for every RTM_DELNSID.
// Returns false on a malformed buffer (what came before the fault is kept).
// With ids_changed, sets it when a message says a namespace id was assigned
// or removed (RTM_NEWNSID, RTM_DELNSID).
bool parse_link_messages(const uint8_t* buf, size_t len, int nsid, std::vector<LinkName>* names,
                         bool* ids_changed = nullptr);

}  // namespace vpc
