// A front end's side of one vhost-user request, for the programs that play a
// front end against a port: the fake guest of the tests (ports/
// vhost_user_fake.h) and the callgrind benchmark (ports/virtio_bench.cc).
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <cstring>

#include "ports/vhost_user.h"

namespace vpc {

// Writes request `req` (header, then `size` payload bytes) into buf, which
// holds 12 + size bytes.
inline void vu_encode(uint8_t* buf, uint32_t req, uint32_t flags, const void* payload, uint32_t size) {
  std::memcpy(buf, &req, 4);
  std::memcpy(buf + 4, &flags, 4);
  std::memcpy(buf + 8, &size, 4);
  if (size) std::memcpy(buf + 12, payload, size);
}

// Sends request `req` (header, then `size` payload bytes, with `nfds` file
// descriptors as SCM_RIGHTS) in one sendmsg. Returns what sendmsg returned.
inline ssize_t vu_send_request(int sock, uint32_t req, uint32_t flags, const void* payload, uint32_t size,
                               const int* fds = nullptr, size_t nfds = 0) {
  uint8_t buf[12 + kVuMaxPayload];
  if (size > kVuMaxPayload || nfds > kVuMaxFds) return -1;
  vu_encode(buf, req, flags, payload, size);
  iovec iov{buf, 12 + size};
  msghdr mh{};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  alignas(cmsghdr) char cbuf[CMSG_SPACE(sizeof(int) * kVuMaxFds)];
  if (nfds) {
    mh.msg_control = cbuf;
    mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
    cmsghdr* c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
    std::memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
  }
  return ::sendmsg(sock, &mh, MSG_NOSIGNAL);
}

}  // namespace vpc
