// A fake vhost-user front end for the tests (ports/vhost_user_test.cc,
// ports/vhost_user_engine_test.cc): it connects to a port's socket, speaks
// the protocol, shares a memfd as guest memory and plays the guest's
// virtio-net driver on split rings laid out in it. While call() waits for a
// reply it plays the engine through a Pump: the port's rx_burst on the test
// thread, or a step of its own (an engine's run_once).
#pragma once

#include <gtest/gtest.h>
#include <linux/sockios.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <functional>
#include <string>
#include <type_traits>
#include <vector>

#include "core/test_util.h"
#include "ports/vhost_user.h"
#include "ports/vhost_user_request.h"

namespace vpc::vhost_fake {

using testutil::Bytes;
using namespace vfeat;

constexpr uint64_t kMemSize = 4 << 20;
constexpr uint64_t kGpaBase = 0x40000000;  // guest-physical address of the region
constexpr uint32_t kQ = 256;               // queue size

inline std::shared_ptr<BufferPool> test_pool() {
  BufferPoolOptions o;
  o.count = 2048;
  o.large_count = 16;
  o.hugepages = false;
  return BufferPool::create(o);
}

// The offload state a guest's virtio-net header gives a TCPv4 TSO frame
// with a 54-byte header (Ethernet, IPv4, TCP without options): segments of
// 1448 bytes, the TCP checksum partial.
inline OffloadMeta tso4_meta() {
  OffloadMeta m;
  m.flags = OffloadMeta::kNeedsCsum;
  m.gso_type = OffloadMeta::kGsoTcpv4;
  m.gso_size = 1448;
  m.hdr_len = 54;
  m.csum_start = 34;
  m.csum_offset = 16;
  return m;
}

// Guest memory layout: per queue q, rings at q * 64 KiB; buffers from 1 MiB.
struct Layout {
  static uint64_t desc(uint32_t q) { return uint64_t(q) * 0x10000; }
  static uint64_t avail(uint32_t q) { return desc(q) + 16 * kQ; }
  static uint64_t used(uint32_t q) { return desc(q) + 0x8000; }
  static constexpr uint64_t kBuffers = 1 << 20;
};

// A request's bytes, to be sent whole, in pieces, or spoilt.
inline std::vector<uint8_t> vu_message(uint32_t req, uint32_t flags, const void* payload = nullptr, uint32_t size = 0) {
  std::vector<uint8_t> m(12 + size);
  vu_encode(m.data(), req, flags, payload, size);
  return m;
}

// Plays the engine while the fake waits for a reply: pumps a port's rx_burst
// (frames it returns are kept in `stray`), or runs a step of the caller's.
class Pump {
 public:
  Pump(Port& port) : port_(&port) {}  // NOLINT: implicit, call(*port, ...) reads well
  template <class F, class = std::enable_if_t<std::is_invocable_v<F&>>>
  Pump(F step) : step_(std::move(step)) {}  // NOLINT
  void operator()(std::vector<Pkt>& stray) const {
    if (step_) return step_();
    Pkt scratch[kMaxBurst];
    const uint16_t n = port_->rx_burst(scratch, kMaxBurst);
    stray.insert(stray.end(), scratch, scratch + n);
  }

 private:
  Port* port_ = nullptr;
  std::function<void()> step_;
};

class FakeFrontend {
 public:
  explicit FakeFrontend(const std::string& path) {
    memfd_ = memfd_create("guest", MFD_CLOEXEC);
    EXPECT_EQ(ftruncate(memfd_, kMemSize), 0);
    mem_ = static_cast<uint8_t*>(mmap(nullptr, kMemSize, PROT_READ | PROT_WRITE, MAP_SHARED, memfd_, 0));
    std::memset(mem_, 0, kMemSize);
    connected_ = dial(path);
  }
  // Closes the connection and connects again, as QEMU does with a client
  // chardev's reconnect: every 10 ms until the socket answers, at most
  // `tries` times. Guest memory and the rings stay as they are.
  bool reconnect(const std::string& path, int tries = 500) {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
    for (int i = 0; i < tries && !(connected_ = dial(path)); ++i) usleep(10000);
    return connected_;
  }
  ~FakeFrontend() {
    if (fd_ >= 0) close(fd_);
    munmap(mem_, kMemSize);
    close(memfd_);
    for (int f : efds_) close(f);
  }
  bool connected() const { return connected_; }
  void hang_up() {
    close(fd_);
    fd_ = -1;
  }
  int fd() const { return fd_; }
  int memfd() const { return memfd_; }  // the guest memory file (a test may shrink it)
  // Sends bytes as they are (a piece of a message, or garbage), with `fds`
  // as SCM_RIGHTS. Returns what sendmsg returned.
  ssize_t send_raw(const void* p, size_t n, std::vector<int> fds = {}) {
    iovec iov{const_cast<void*>(p), n};
    msghdr mh{};
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    alignas(cmsghdr) char cbuf[CMSG_SPACE(sizeof(int) * 16)];
    if (!fds.empty()) {
      mh.msg_control = cbuf;
      mh.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
      cmsghdr* c = CMSG_FIRSTHDR(&mh);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
      std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
    }
    return sendmsg(fd_, &mh, MSG_NOSIGNAL);
  }
  // Reads one reply (header and payload) if one is there; false if not.
  bool read_reply(uint32_t req, std::vector<uint8_t>* out) {
    uint8_t hdr[12];
    if (recv(fd_, hdr, 12, MSG_DONTWAIT) != 12) return false;
    uint32_t rsize, rflags, rreq;
    std::memcpy(&rreq, hdr, 4);
    std::memcpy(&rflags, hdr + 4, 4);
    std::memcpy(&rsize, hdr + 8, 4);
    EXPECT_EQ(rreq, req);
    EXPECT_TRUE(rflags & kVuFlagReply);
    out->assign(rsize, 0);
    if (rsize) {
      EXPECT_EQ(recv(fd_, out->data(), rsize, MSG_DONTWAIT), ssize_t(rsize));
    }
    return true;
  }
  // Plays the engine until the port has taken every byte sent so far (the
  // socket's send queue is empty), at most about 5 s; false if it has not.
  bool wait_taken(const Pump& pump) {
    int outq = -1;
    for (int i = 0; i < 5000; ++i) {
      pump(stray_);
      if (ioctl(fd_, SIOCOUTQ, &outq) != 0) return false;
      if (outq == 0) return true;
      usleep(1000);
    }
    return false;
  }
  // Plays the engine until a reply is readable (at most about 4 s).
  bool wait_reply(const Pump& pump) {
    for (int i = 0; i < 4000; ++i) {
      pump(stray_);
      pollfd pf{fd_, POLLIN, 0};
      if (poll(&pf, 1, 1) == 1) return true;
    }
    return false;
  }
  uint8_t* host(uint64_t off) { return mem_ + off; }
  uint64_t gpa(uint64_t off) const { return kGpaBase + off; }
  uint64_t uva(uint64_t off) const { return uint64_t(uintptr_t(mem_)) + off; }

  // Sends one message; plays the engine until a reply arrives when one is
  // expected. Returns the reply payload.
  std::vector<uint8_t> call(const Pump& pump, uint32_t req, const void* payload, uint32_t size,
                            std::vector<int> fds = {}, bool want_reply = true, bool need_reply = false) {
    const uint32_t flags = 1 | (need_reply ? kVuFlagNeedReply : 0);
    EXPECT_EQ(vu_send_request(fd_, req, flags, payload, size, fds.data(), fds.size()), ssize_t(12 + size));
    if (!want_reply && !need_reply) {
      // No reply to wait for: give the engine a few rounds to take it.
      for (int i = 0; i < 20; ++i) {
        pump(stray_);
        usleep(1000);
      }
      return {};
    }
    wait_reply(pump);
    std::vector<uint8_t> out;
    if (!read_reply(req, &out)) ADD_FAILURE() << "no reply to request " << req;
    return out;
  }
  // For messages without an inherent reply: REPLY_ACK's status (0: ok).
  uint64_t ack(const Pump& port, uint32_t req, const void* payload, uint32_t size, std::vector<int> fds = {}) {
    auto r = call(port, req, payload, size, std::move(fds), false, true);
    uint64_t v = ~0ull;
    if (r.size() == 8) std::memcpy(&v, r.data(), 8);
    return v;
  }
  uint64_t get_u64(const Pump& port, uint32_t req) {
    auto r = call(port, req, nullptr, 0);
    uint64_t v = 0;
    if (r.size() == 8) std::memcpy(&v, r.data(), 8);
    return v;
  }

  // The whole set-up QEMU does, with REPLY_ACK on every message. `resume`:
  // the rings go on where they stand (a reconnection: each ring's base is
  // its used index, as QEMU restores it when the back end went away).
  void setup(const Pump& port, uint64_t features, uint32_t queues = 2, bool resume = false) {
    uint64_t pf = get_u64(port, kVuGetProtocolFeatures);
    ASSERT_TRUE(pf & (1ull << kVuPfReplyAck));
    const uint64_t f = get_u64(port, kVuGetFeatures);
    ASSERT_EQ(features & ~f, 0u) << "asked for features the port does not offer";
    uint64_t want_pf = (1ull << kVuPfReplyAck) | (1ull << kVuPfMq);
    call(port, kVuSetProtocolFeatures, &want_pf, 8, {}, false);  // REPLY_ACK is on from the next message
    ASSERT_EQ(ack(port, kVuSetOwner, nullptr, 0), 0u);
    uint64_t feat = features | bit(kVuProtocolFeaturesBit);
    ASSERT_EQ(ack(port, kVuSetFeatures, &feat, 8), 0u);
    send_mem_table(port);
    for (uint32_t q = 0; q < queues; ++q) {
      uint32_t num[2] = {q, kQ};
      ASSERT_EQ(ack(port, kVuSetVringNum, num, 8), 0u);
      uint32_t base[2] = {q, resume ? used_idx(q) : 0u};
      ASSERT_EQ(ack(port, kVuSetVringBase, base, 8), 0u);
      uint8_t addr[40] = {};
      uint64_t a[4] = {uva(Layout::desc(q)), uva(Layout::used(q)), uva(Layout::avail(q)), 0};
      std::memcpy(addr, &q, 4);
      std::memcpy(addr + 8, a, 32);
      ASSERT_EQ(ack(port, kVuSetVringAddr, addr, 40), 0u);
      int call = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK), kick = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
      efds_.push_back(call);
      efds_.push_back(kick);
      calls_[q] = call;
      kicks_[q] = kick;
      uint64_t idx = q;
      ASSERT_EQ(ack(port, kVuSetVringCall, &idx, 8, {call}), 0u);
      ASSERT_EQ(ack(port, kVuSetVringKick, &idx, 8, {kick}), 0u);
      uint32_t en[2] = {q, 1};
      ASSERT_EQ(ack(port, kVuSetVringEnable, en, 8), 0u);
    }
  }

  // ---- the guest driver's side of the rings
  VringDesc* desc(uint32_t q) { return reinterpret_cast<VringDesc*>(host(Layout::desc(q))); }
  uint16_t* avail(uint32_t q) { return reinterpret_cast<uint16_t*>(host(Layout::avail(q))); }
  uint8_t* used(uint32_t q) { return host(Layout::used(q)); }
  uint16_t used_idx(uint32_t q) { return __atomic_load_n(reinterpret_cast<uint16_t*>(used(q) + 2), __ATOMIC_ACQUIRE); }
  void used_elem(uint32_t q, uint16_t i, uint32_t* id, uint32_t* len) {
    std::memcpy(id, used(q) + 4 + 8 * (i % kQ), 4);
    std::memcpy(len, used(q) + 8 + 8 * (i % kQ), 4);
  }
  void publish(uint32_t q, uint16_t head) {
    uint16_t* a = avail(q);
    const uint16_t i = a[1];
    a[2 + i % kQ] = head;
    __atomic_store_n(&a[1], uint16_t(i + 1), __ATOMIC_RELEASE);
  }
  // Transmits hdr + frame from one descriptor (each descriptor slot d has a
  // 64 KiB + header buffer of its own... a 4 KiB one here, enough for tests).
  uint64_t buf(uint32_t q, uint32_t d) { return Layout::kBuffers + (uint64_t(q) * kQ + d) * 4096 % (kMemSize - Layout::kBuffers); }
  void send(const Bytes& f, const uint8_t* vnet = nullptr) {
    const uint16_t d = next_tx_++ % kQ;
    uint8_t* b = host(buf(1, d));
    std::memset(b, 0, 12);
    if (vnet) std::memcpy(b, vnet, 10);
    std::memcpy(b + 12, f.data(), f.size());
    desc(1)[d] = VringDesc{gpa(buf(1, d)), uint32_t(12 + f.size()), 0, 0};
    publish(1, d);
  }
  // Gives the device `n` receive buffers of `size` bytes (<= 4096) on
  // receive queue `q` (0, or 2 for a second queue pair).
  void post_rx(uint32_t n, uint32_t size, uint32_t q = 0) {
    for (uint32_t i = 0; i < n; ++i) {
      const uint16_t d = next_rx_[q / 2]++ % kQ;
      desc(q)[d] = VringDesc{gpa(buf(q, d)), size, kDescWrite, 0};
      publish(q, d);
    }
  }
  // Gives queue `q` a new kick eventfd (SET_VRING_KICK, as QEMU does when
  // the guest's driver restarts a queue); the old one stays open here.
  void new_kick(const Pump& port, uint32_t q) {
    const int kick = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    efds_.push_back(kick);
    kicks_[q] = kick;
    uint64_t idx = q;
    ASSERT_EQ(ack(port, kVuSetVringKick, &idx, 8, {kick}), 0u);
  }
  // Sends the memory table: one region, the whole memfd. QEMU sends it
  // again whenever the guest's memory layout changes.
  void send_mem_table(const Pump& port) {
    uint8_t mt[8 + 32] = {};
    uint32_t n = 1;
    std::memcpy(mt, &n, 4);
    uint64_t reg[4] = {kGpaBase, kMemSize, uva(0), 0};
    std::memcpy(mt + 8, reg, 32);
    ASSERT_EQ(ack(port, kVuSetMemTable, mt, sizeof mt, {memfd_}), 0u);
  }
  int call_fd(uint32_t q) const { return calls_[q]; }
  int kick_fd(uint32_t q) const { return kicks_[q]; }
  std::vector<Pkt> stray_;  // frames rx_burst returned while pumping messages

 private:
  bool dial(const std::string& path) {
    fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::strncpy(sa.sun_path, path.c_str(), sizeof sa.sun_path - 1);
    if (connect(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0) return true;
    close(fd_);
    fd_ = -1;
    return false;
  }

  int memfd_ = -1, fd_ = -1;
  uint8_t* mem_ = nullptr;
  bool connected_ = false;
  std::vector<int> efds_;
  int calls_[4] = {-1, -1, -1, -1}, kicks_[4] = {-1, -1, -1, -1};
  uint16_t next_tx_ = 0, next_rx_[2] = {0, 0};
};

}  // namespace vpc::vhost_fake
