// The kernel's link messages, so that the engine checks a port's link when
// its interface changes instead of asking every interface ten times a second.
//
// A LinkWatch is a netlink route socket subscribed to RTMGRP_LINK in one
// network namespace (the one it was opened in: the engine's). The kernel
// sends it RTM_NEWLINK for every change of an interface's flags, carrier,
// MTU, name or namespace, and RTM_DELLINK when one goes (or moves away).
// drain() reads what came, without blocking, and names the interfaces by
// index; the engine then checks the ports on those interfaces
// (core/core.cc, Core::link_slices). A port says which interface that is
// with Port::link_watch_key(); one in another namespace, or between an
// interface and its reopening, is read on the engine's usual round robin.
//
// Messages can be lost: the socket's receive buffer overflows (ENOBUFS)
// when many interfaces change at once. drain() says so, and the engine then
// checks every watched port.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace vpc {

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
  // Appends the index of every interface a pending message names (it may
  // repeat one). False when messages were lost since the last drain.
  bool drain(std::vector<int>* ifindexes);

 private:
  int fd_ = -1;
  uint64_t netns_ = 0;
  std::vector<uint8_t> buf_;
};

// The network namespace a socket belongs to (SIOCGSKNS), 0 when the kernel
// cannot say.
uint64_t socket_netns(int fd);

// Parses one read's worth of netlink messages: appends the ifindex of every
// RTM_NEWLINK and RTM_DELLINK. Returns false on a malformed buffer (what
// came before the fault is kept).
bool parse_link_messages(const uint8_t* buf, size_t len, std::vector<int>* ifindexes);

}  // namespace vpc
