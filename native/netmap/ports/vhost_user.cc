// vhost-user port (see vhost_user.h): connection handling, the message set,
// the memory table, and the rings driven from rx_burst/tx_burst.
#include "ports/vhost_user.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <sys/eventfd.h>

#include "ports/flow_hash.h"
#include "ports/guest_fault.h"
#include "ports/ifutil.h"

namespace vpc {

namespace {

constexpr uint32_t kHdrSize = kVuHeaderSize;

// Takes the kicks counted on a queue's eventfd so far (the look that follows
// covers them), so that it wakes the engine again only for a new one.
void take_kicks(int kick_fd) {
  if (kick_fd < 0) return;
  uint64_t v;
  ssize_t r = ::read(kick_fd, &v, sizeof v);
  (void)r;
}

const char* request_name(uint32_t r) {
  switch (r) {
    case kVuGetFeatures: return "GET_FEATURES";
    case kVuSetFeatures: return "SET_FEATURES";
    case kVuSetOwner: return "SET_OWNER";
    case kVuResetOwner: return "RESET_OWNER";
    case kVuSetMemTable: return "SET_MEM_TABLE";
    case kVuSetLogBase: return "SET_LOG_BASE";
    case kVuSetLogFd: return "SET_LOG_FD";
    case kVuSetVringNum: return "SET_VRING_NUM";
    case kVuSetVringAddr: return "SET_VRING_ADDR";
    case kVuSetVringBase: return "SET_VRING_BASE";
    case kVuGetVringBase: return "GET_VRING_BASE";
    case kVuSetVringKick: return "SET_VRING_KICK";
    case kVuSetVringCall: return "SET_VRING_CALL";
    case kVuSetVringErr: return "SET_VRING_ERR";
    case kVuGetProtocolFeatures: return "GET_PROTOCOL_FEATURES";
    case kVuSetProtocolFeatures: return "SET_PROTOCOL_FEATURES";
    case kVuGetQueueNum: return "GET_QUEUE_NUM";
    case kVuSetVringEnable: return "SET_VRING_ENABLE";
    case kVuSendRarp: return "SEND_RARP";
    case kVuGetConfig: return "GET_CONFIG";
    case kVuPostcopyAdvise: return "POSTCOPY_ADVISE";
    case kVuGetInflightFd: return "GET_INFLIGHT_FD";
    case kVuGetMaxMemSlots: return "GET_MAX_MEM_SLOTS";
    case kVuSetStatus: return "SET_STATUS";
    case kVuGetStatus: return "GET_STATUS";
  }
  return "unknown";
}

// Requests whose answer is a message of their own even without REPLY_ACK:
// refused ones get an empty reply, which front ends take as an error.
bool expects_reply(uint32_t r) {
  return r == kVuGetFeatures || r == kVuGetProtocolFeatures || r == kVuGetVringBase || r == kVuGetQueueNum ||
         r == kVuGetStatus || r == kVuGetConfig || r == kVuPostcopyAdvise || r == kVuGetInflightFd ||
         r == kVuGetMaxMemSlots;
}

uint64_t get_u64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}
uint32_t get_u32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

void close_fds(std::vector<int>& fds) {
  for (int f : fds)
    if (f >= 0) ::close(f);
  fds.clear();
}

}  // namespace

#define VPC_ROW(name, help) #name,
const char* const kVhostDropNames[kVhostDrops] = {VPC_VHOST_DROPS(VPC_ROW)};
#undef VPC_ROW

std::string virtio_feature_names(uint64_t f) {
  std::string s;
  for (int b = 0; b < 64; ++b) {
    if (!(f & (1ull << b))) continue;
    if (!s.empty()) s += ' ';
    const char* n = vfeat::name(b);
    s += n ? n : "bit" + std::to_string(b);
  }
  return s;
}

void VhostStatus::set_layout(std::vector<Queue> queues, std::vector<Region> regions) {
  std::lock_guard<std::mutex> g(mu_);
  queues_ = std::move(queues);
  regions_ = std::move(regions);
}

void VhostStatus::layout(std::vector<Queue>* queues, std::vector<Region>* regions) const {
  std::lock_guard<std::mutex> g(mu_);
  *queues = queues_;
  *regions = regions_;
}

// ------------------------------------------------------------------ opening

VhostUserPort::VhostUserPort(const VhostUserOptions& opts, std::shared_ptr<BufferPool> pool,
                             std::shared_ptr<PortStatus> status)
    : opts_(opts), pool_(std::move(pool)), status_(std::move(status)), vst_(std::make_shared<VhostStatus>()),
      cache_(pool_) {
  vqs_.resize(2 * opts_.queue_pairs);
  for (size_t i = 0; i < vqs_.size(); ++i) vqs_[i].ctr = &vst_->q[i];
  ctx_.mem = &mem_;
  ctx_.pool = pool_.get();
  ctx_.cache = &cache_;
}

std::unique_ptr<VhostUserPort> VhostUserPort::open(const VhostUserOptions& opts, std::shared_ptr<BufferPool> pool,
                                                   std::shared_ptr<PortStatus> status) {
  const std::string where = "vhostuser:" + opts.socket;
  if (opts.queue_pairs < 1 || opts.queue_pairs > VhostStatus::kMaxPairs)
    throw PortError(Status::kInvalidArgument, "queues: a vhost-user port has 1..16 queue pairs");
  sockaddr_un sa{};
  if (opts.socket.empty() || opts.socket[0] != '/' || opts.socket.size() >= sizeof(sa.sun_path))
    throw PortError(Status::kInvalidArgument,
                    "socket: give an absolute path of at most " + std::to_string(sizeof(sa.sun_path) - 1) + " bytes");
  if (Claim c = claim_interface("vhostuser:" + opts.socket); c != Claim::kOk)
    throw PortError(Status::kInUse, c == Claim::kOtherProcess
                                        ? where + ": another process of this switch (another vpcd) serves that socket: stop that one, or use another socket"
                                        : where + ": another port already uses that socket: delete it first (one port per socket)");
  std::unique_ptr<VhostUserPort> p(new VhostUserPort(opts, std::move(pool), std::move(status)));
  p->claimed_ = true;
  p->backlog_ = std::make_unique<Backlog[]>(opts.queue_pairs);
  // Super-frames: the backlogs hold at most half the pool's large buffers
  // (256 with the default pool, 16 MiB), and nothing is held while a
  // quarter or less of the pool's large or regular buffers are free, so
  // stalled guests never take the last buffers from the other ports (whose
  // frames would then be no_buffer drops). A quarter of the large buffers
  // still dropped frames for a guest stopped 300 ms under eight TCP flows
  // (test/vhost/vms.test.ts); a tap holds 1,000 frames of any size.
  p->held_large_max_ = std::max(1u, p->pool_->large_count() / 2);
  p->large_floor_ = p->pool_->large_count() / 4;
  p->regular_floor_ = p->pool_->count() / 4;
  p->epfd_ = epoll_create1(EPOLL_CLOEXEC);
  p->stop_efd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  p->ack_efd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (p->epfd_ < 0 || p->stop_efd_ < 0 || p->ack_efd_ < 0)
    throw PortError(Status::kSystem, sys_error(where + ": epoll/eventfd", errno, nullptr));
  std::memcpy(sa.sun_path, opts.socket.c_str(), opts.socket.size());
  sa.sun_family = AF_UNIX;
  if (!opts.client) {
    struct stat sb;
    if (::lstat(opts.socket.c_str(), &sb) == 0) {
      if (!S_ISSOCK(sb.st_mode))
        throw PortError(Status::kInvalidArgument, where + ": the path exists and is not a socket; remove it or choose another");
      // A socket file: in use when someone answers, else left over.
      int t = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
      bool live = t >= 0 && ::connect(t, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0;
      if (t >= 0) ::close(t);
      if (live) throw PortError(Status::kInUse, where + ": another process listens on this socket");
      ::unlink(opts.socket.c_str());
    }
    const int e = p->listen_now();
    if (e == ENOENT && opts.wait_for_directory) {
      // Restored or applied by vpcd, its directory not made yet (a
      // RuntimeDirectory's subdirectory, say): the port waits for it, down,
      // as a port waits for its interface, and the others come up.
      p->status_->set_error(where + ": the socket's directory does not exist (yet); the port listens when it appears");
    } else if (e == ENOTDIR) {
      // "/run/vm.img/../vm.sock": the kernel walks the path as written, so a
      // file on the way is an error in the path, not in the system.
      throw PortError(Status::kInvalidArgument, where + ": a part of the path before the socket's name is a file, not a directory");
    } else if (e != 0) {
      throw PortError(e == ENOENT ? Status::kNotFound : Status::kSystem,
                      sys_error(where + ": creating the socket" +
                                    (e == ENOENT ? std::string(" (does its directory exist?)") : std::string()),
                                e, nullptr));
    }
  }
  VhostStatus& v = *p->vst_;
  v.socket = opts.socket;
  v.client = opts.client;
  v.max_pairs = opts.queue_pairs;
  PortStatus& st = *p->status_;
  st.queues = opts.queue_pairs;
  st.burst = opts.burst;
  st.frame_size = p->pool_->max_frame();
  st.vhost = p->vst_;
  st.set_io(std::string("vhost-user ") + (opts.client ? "client (connects to the front end's socket, every second until it answers)"
                                                      : "server (listens; the front end connects)") +
            ": split virtqueues in the guest's memory, one copy per direction");
  st.set_offloads("as negotiated with the guest: csum, host_tso4/6 (guest to switch), guest_csum, guest_tso4/6 "
                  "(switch to guest); see features");
  p->publish_layout();
  p->watcher_ = std::thread([q = p.get()] { q->watch(); });
  return p;
}

// The listening socket (server mode): 0, or the errno of what failed.
int VhostUserPort::listen_now() {
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::memcpy(sa.sun_path, opts_.socket.c_str(), opts_.socket.size());
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return errno;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0 || ::listen(fd, 1) < 0) {
    const int e = errno;
    ::close(fd);
    return e;
  }
  // A front end connects with write permission on the socket: it gets
  // 0660 and its directory's group (vpcd runs as its own user; a QEMU run
  // by libvirt as another joins that group). Best effort: where the group
  // cannot be given, the owner's stays.
  const size_t slash = opts_.socket.rfind('/');
  struct stat ds;
  if (::stat(slash == 0 ? "/" : opts_.socket.substr(0, slash).c_str(), &ds) == 0) {
    int r = ::chown(opts_.socket.c_str(), uid_t(-1), ds.st_gid);
    (void)r;
  }
  ::chmod(opts_.socket.c_str(), 0660);
  struct stat ss;
  socket_ino_ = ::stat(opts_.socket.c_str(), &ss) == 0 ? ss.st_ino : 0;
  listen_fd_ = fd;
  return 0;
}

// Whether the socket file has gone (rm, a directory removed and made again)
// while the port listens: a front end could then never reach it, and
// nothing else would say why. A file of that name that is not ours (put
// there since) is left alone and said.
bool VhostUserPort::socket_file_gone() {
  struct stat ss;
  if (::stat(opts_.socket.c_str(), &ss) < 0) return errno == ENOENT;
  if (socket_ino_ != 0 && ss.st_ino != socket_ino_)
    status_->set_error("vhost-user: " + opts_.socket + " is no longer this port's socket (another file was put there); "
                       "front ends cannot reach the port: remove that file, or delete and create the port again");
  return false;
}

VhostUserPort::~VhostUserPort() {
  stop_watcher();
  disconnect();
  int c = conn_fd_.exchange(-1);
  if (c >= 0) ::close(c);
  if (listen_fd_ >= 0) {
    ::close(listen_fd_);
    struct stat ss;  // the file, if it is still ours (not one put there since)
    if (::stat(opts_.socket.c_str(), &ss) == 0 && ss.st_ino == socket_ino_) ::unlink(opts_.socket.c_str());
  }
  for (int fd : {epfd_, stop_efd_, ack_efd_})
    if (fd >= 0) ::close(fd);
  if (claimed_) release_interface("vhostuser:" + opts_.socket);
}

void VhostUserPort::stop_watcher() {
  if (!watcher_.joinable()) return;
  {
    std::lock_guard<std::mutex> g(stop_mu_);
    stopping_ = true;
  }
  stop_cv_.notify_all();  // a watcher pausing after a failure
  uint64_t one = 1;       // a watcher in poll
  ssize_t r = ::write(stop_efd_, &one, sizeof one);
  (void)r;
  watcher_.join();
}

void VhostUserPort::attach(Waker* waker) { waker_.store(waker, std::memory_order_release); }

// The port's tx is counted where frames reach the guest's receive queues or
// are lost on the way (vq_enqueue, the backlog), not when tx_burst takes
// them: a frame the backlog holds is in neither tx_packets nor tx_drops
// until it leaves, and one it loses is a drop only (docs/ports.md).
bool VhostUserPort::count_tx(PortCounterBlock* pc) {
  if (!pc && ctx_.port && held_) ctx_.port->drop_tx(Drop::port_deleted, held_);
  ctx_.port = pc;
  return true;
}

void VhostUserPort::detach() {
  stop_watcher();
  waker_.store(nullptr);
  disconnect();
  int c = conn_fd_.exchange(-1);
  if (c >= 0) ::close(c);
  cache_.flush();
}

// ------------------------------------------------------------------ watcher

int VhostUserPort::watcher_poll(pollfd* pf, nfds_t n, int timeout_ms) {
  return opts_.poll_for_test ? opts_.poll_for_test(pf, n, timeout_ms) : ::poll(pf, n, timeout_ms);
}

bool VhostUserPort::pause(int ms) {
  // A condition variable rather than poll(2) on stop_efd_: the pause that
  // follows a failing poll must not depend on poll.
  std::unique_lock<std::mutex> g(stop_mu_);
  return !stop_cv_.wait_for(g, std::chrono::milliseconds(ms), [this] { return stopping_; });
}

// A failed call in the watcher: the thread must neither end (the port would
// never accept or read again, silently) nor spin on a call that fails at
// once (an fd limit reached makes accept fail while the listening socket
// stays readable). It says what failed and retries after a pause that
// doubles from 10 ms to 1 s; the caller resets *backoff_ms after a success.
bool VhostUserPort::watcher_failed(const char* call, int err, int* backoff_ms) {
  *backoff_ms = std::min(*backoff_ms ? *backoff_ms * 2 : 10, 1000);
  vst_->watcher_errors.fetch_add(1, std::memory_order_relaxed);
  const char* name = strerrorname_np(err);
  status_->set_error("vhost-user watcher: " + std::string(call) + " failed: " + strerror(err) + " (" +
                     (name ? name : "errno " + std::to_string(err)) + "); retrying in " +
                     std::to_string(*backoff_ms) + " ms");
  return pause(*backoff_ms);
}

bool VhostUserPort::wait_for_engine() {
  pending_.store(true, std::memory_order_seq_cst);
  if (Waker* w = waker_.load(std::memory_order_acquire); w && w->sleeping.load(std::memory_order_seq_cst)) w->wake();
  int backoff = 0;
  for (;;) {
    pollfd pf[2] = {{ack_efd_, POLLIN, 0}, {stop_efd_, POLLIN, 0}};
    const int r = watcher_poll(pf, 2, 1000);
    if (r < 0) {
      // The flag stays raised: the engine takes the messages meanwhile and
      // its acknowledgement waits in ack_efd_ for the next poll.
      if (errno != EINTR && !watcher_failed("poll (waiting for the engine)", errno, &backoff)) return false;
      continue;
    }
    backoff = 0;
    if (pf[1].revents) return false;
    if (pf[0].revents) {
      uint64_t v;
      ssize_t n = ::read(ack_efd_, &v, sizeof v);
      (void)n;
      return true;
    }
    // The engine has not come by for a second (stopped, or not attached
    // yet): wake it again in case it went to sleep meanwhile.
    if (Waker* w = waker_.load(std::memory_order_acquire); w && w->sleeping.load()) w->wake();
  }
}

// What lastError says when the front end closed the connection.
constexpr const char* kFrontEndClosed = "vhost-user front end closed the connection";

void VhostUserPort::watch() {
  pthread_setname_np(pthread_self(), "vpc-vhost");
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::memcpy(sa.sun_path, opts_.socket.c_str(), opts_.socket.size());
  int backoff = 0;  // ms; grows while a call keeps failing (watcher_failed)
  // A front end that closes each connection at once (QEMU with more queue
  // pairs than the port has: "you are asking more queues than supported")
  // gets one connection a second, as one that is not listening does, not
  // thousands; and lastError says so.
  using Clock = std::chrono::steady_clock;
  Clock::time_point last_connect{};
  bool connected_once = false;
  uint32_t short_lived = 0;  // connections in a row that ended within the second
  for (;;) {
    const int cfd = conn_fd_.load(std::memory_order_acquire);
    if (cfd < 0) {
      if (connected_once) {
        const auto since = Clock::now() - last_connect;
        if (since < std::chrono::seconds(1)) {
          // Said in place of a bare "closed" (not of a reason the port
          // dropped the connection for).
          if (++short_lived >= 3 && status_->error() == kFrontEndClosed)
            status_->set_error("vhost-user: the front end closed each of its last " + std::to_string(short_lived) +
                               " connections within a second; connecting once a second (a VM with more queue pairs "
                               "than the port's queues: " + std::to_string(opts_.queue_pairs) + " does so; see its log)");
          if (!pause(int(std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::seconds(1) - since).count()) + 1)) return;
        } else {
          short_lived = 0;
        }
      }
      int fd = -1;
      if (opts_.client) {
        fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) {
          if (!watcher_failed("socket", errno, &backoff)) return;
          continue;
        }
        if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0) {
          // The front end is not listening (yet): the normal wait, every
          // second, said (a misspelt path is seen, not only waited on).
          const int e = errno;
          status_->set_error("vhost-user client: connecting to " + opts_.socket + ": " + strerror(e) +
                             " (the front end is not listening there yet?); trying again every second");
          ::close(fd);
          if (!pause(1000)) return;
          continue;
        }
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
      } else {
        if (listen_fd_ < 0) {  // waiting for the socket's directory (open), or the file went
          if (listen_now() != 0) {
            if (socket_remade_)
              status_->set_error("vhost-user: the socket file " + opts_.socket +
                                 " was removed while the port listened, and cannot be made again yet (its directory "
                                 "gone?); trying every second");
            if (!pause(1000)) return;
            continue;
          }
          status_->set_error(socket_remade_ ? "vhost-user: the socket file " + opts_.socket +
                                                  " was removed while the port listened; made again"
                                            : std::string());
        }
        pollfd pf[2] = {{listen_fd_, POLLIN, 0}, {stop_efd_, POLLIN, 0}};
        const int r = watcher_poll(pf, 2, 1000);
        if (r < 0) {
          if (errno != EINTR && !watcher_failed("poll (listening socket)", errno, &backoff)) return;
          continue;
        }
        if (r == 0) {  // a second without a front end: is the file still there?
          if (socket_file_gone()) {
            ::close(listen_fd_);
            listen_fd_ = -1;
            socket_remade_ = true;
          }
          continue;
        }
        if (pf[1].revents) return;
        if (!(pf[0].revents & POLLIN)) continue;
        fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0) {
          // Gone before it was accepted, or nothing after all: wait again.
          // Anything else (EMFILE, ENFILE, ENOBUFS, ENOMEM) leaves the
          // connection queued and the socket readable: pause, then retry.
          if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED &&
              errno != EPROTO && !watcher_failed("accept", errno, &backoff))
            return;
          continue;
        }
      }
      backoff = 0;
      last_connect = Clock::now();
      connected_once = true;
      if (short_lived < 3) status_->set_error("");  // what the last connection left (closed, refused) is over
      conn_fd_.store(fd, std::memory_order_release);
      if (!wait_for_engine()) return;
      continue;
    }
    // A second front end on a connected port (another VM given the same
    // socket) is closed at once and said, not left waiting in the backlog
    // to take the port over when the first goes.
    pollfd pf[3] = {{cfd, POLLIN | POLLRDHUP, 0}, {stop_efd_, POLLIN, 0}, {listen_fd_, POLLIN, 0}};
    if (watcher_poll(pf, listen_fd_ >= 0 ? 3 : 2, -1) < 0) {
      if (errno != EINTR && !watcher_failed("poll (connection)", errno, &backoff)) return;
      continue;
    }
    backoff = 0;
    if (pf[1].revents) return;
    // A front end that closed and connects again (a VM restarting) is no
    // second one: its new connection waits until the engine has let the
    // old one go.
    const bool closing = pf[0].revents & (POLLHUP | POLLRDHUP | POLLERR);
    if (listen_fd_ >= 0 && (pf[2].revents & POLLIN) && !closing) {
      const int extra = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (extra >= 0) {
        // Counted and said before the close, which is what the front end sees.
        vst_->refused.fetch_add(1, std::memory_order_relaxed);
        status_->set_error("vhost-user: a second front end connected while one is connected: closed (one front end per "
                           "port; give the other VM a port and socket of its own)");
        ::close(extra);
      }
    }
    if (pf[0].revents && !wait_for_engine()) return;
  }
}

// ------------------------------------------------------------------ messages (engine thread)

void VhostUserPort::service() {
  const int fd = conn_fd_.load(std::memory_order_acquire);
  if (fd >= 0) {
    if (!connected_) {
      connected_ = true;
      reply_lost_ = false;
      in_.clear();
      vst_->connected.store(true);
      status_->attached.store(true, std::memory_order_relaxed);
      vst_->connects.fetch_add(1, std::memory_order_relaxed);
    }
    // A connection the port shut down itself (lost_guest_memory) is closed
    // without reading on, so that lastError keeps its reason.
    bool alive = !shut_down_, more = true;
    // Bounded, so that a flood of messages cannot keep the engine from its
    // rings; the watcher raises the flag again for the rest.
    for (int i = 0; i < 64 && alive && more; ++i) alive = handle_message(fd, &more);
    if (!alive) {
      shut_down_ = false;
      disconnect();
      conn_fd_.store(-1, std::memory_order_release);
      ::close(fd);
    }
  }
  refresh();
  pending_.store(false, std::memory_order_release);
  uint64_t one = 1;
  ssize_t r = ::write(ack_efd_, &one, sizeof one);
  (void)r;
}

void VhostUserPort::Incoming::clear() {
  close_fds(fds);
  got = 0;
}

bool VhostUserPort::drop_connection(VhostDrop why, const std::string& detail) {
  vst_->drops[size_t(why)].fetch_add(1, std::memory_order_relaxed);
  status_->set_error("vhost-user: " + detail + "; connection dropped (" + kVhostDropNames[size_t(why)] + ")");
  return false;
}

// Reads what the socket holds of the current message, never past its end
// (the next message's file descriptors must not be taken with this one's),
// and dispatches the message once it is whole. What is not whole yet stays
// in in_ until the watcher sees more bytes: the engine never waits for a
// front end, so one that stalls in the middle of a message (hostile, or
// stopped by a debugger) holds its own connection and nothing else. The
// header is checked as soon as it is complete, before any payload is
// waited for.
bool VhostUserPort::handle_message(int fd, bool* more) {
  for (;;) {
    const bool in_hdr = in_.got < kHdrSize;
    const uint32_t size = in_hdr ? 0 : get_u32(in_.hdr + 8);
    const uint32_t end = kHdrSize + size;
    if (!in_hdr && in_.got == end) break;
    iovec iov = in_hdr ? iovec{in_.hdr + in_.got, kHdrSize - in_.got}
                       : iovec{in_.payload + (in_.got - kHdrSize), end - in_.got};
    alignas(cmsghdr) char cbuf[CMSG_SPACE(sizeof(int) * kVuMaxFds)];
    msghdr mh{};
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = cbuf;
    mh.msg_controllen = sizeof cbuf;
    const ssize_t r = ::recvmsg(fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      *more = false;
      return true;
    }
    for (cmsghdr* c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
        for (size_t i = 0; i < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); ++i) {
          int f;
          std::memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof f);
          in_.fds.push_back(f);
        }
    if (r == 0 && in_.got)
      return drop_connection(VhostDrop::closed_mid_message,
                             "the front end closed the connection in the middle of a message (" +
                                 std::to_string(in_.got) + " of " +
                                 (in_hdr ? std::string("the 12 header") : std::to_string(end)) + " bytes)");
    if (r <= 0) {
      status_->set_error(r == 0 ? std::string(kFrontEndClosed)
                                : "vhost-user socket: " + std::string(strerror(errno)));
      return false;
    }
    in_.got += uint32_t(r);
    if ((mh.msg_flags & MSG_CTRUNC) || in_.fds.size() > kVuMaxFds)
      return drop_connection(VhostDrop::too_many_fds, "a message came with more than " +
                                                          std::to_string(kVuMaxFds) + " file descriptors");
    if (in_hdr && in_.got == kHdrSize) {
      const uint32_t req = get_u32(in_.hdr), flags = get_u32(in_.hdr + 4), sz = get_u32(in_.hdr + 8);
      if ((flags & 3) != kVuVersion)
        return drop_connection(VhostDrop::bad_version, "message " + std::to_string(req) + " has protocol version " +
                                                           std::to_string(flags & 3) + ", expected 1");
      if (sz > kVuMaxPayload)
        return drop_connection(VhostDrop::too_big, std::string("message ") + request_name(req) + " (" +
                                                       std::to_string(req) + ") announces " + std::to_string(sz) +
                                                       " bytes of payload, at most " +
                                                       std::to_string(kVuMaxPayload) + " are taken");
    }
  }
  const uint32_t req = get_u32(in_.hdr), flags = get_u32(in_.hdr + 4), size = get_u32(in_.hdr + 8);
  vst_->messages.fetch_add(1, std::memory_order_relaxed);
  dispatch(req, flags, in_.payload, size, in_.fds, fd);
  in_.clear();  // and whatever file descriptors the message did not keep
  return !reply_lost_ && conn_fd_.load(std::memory_order_relaxed) >= 0 && connected_;
}

bool VhostUserPort::reply(int fd, uint32_t req, const void* payload, uint32_t size) {
  uint8_t buf[kHdrSize + 64];
  const uint32_t flags = kVuVersion | kVuFlagReply;
  std::memcpy(buf, &req, 4);
  std::memcpy(buf + 4, &flags, 4);
  std::memcpy(buf + 8, &size, 4);
  if (size) std::memcpy(buf + kHdrSize, payload, size);
  const uint8_t* p = buf;
  size_t n = kHdrSize + size;
  while (n) {
    ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w > 0) {
      p += w;
      n -= size_t(w);
      continue;
    }
    if (w < 0 && errno == EINTR) continue;
    // The front end waits for this reply (or has a part of it): the stream
    // cannot go on without it. The connection is dropped (handle_message),
    // so that the front end sees the error instead of waiting forever, or
    // taking the next reply for this one. A full socket (hundreds of replies
    // unread) is a front end that stopped reading: the engine does not wait
    // for it, every other port would wait too.
    const int e = w < 0 ? errno : EAGAIN;
    reply_lost_ = true;
    vst_->drops[size_t(VhostDrop::reply_lost)].fetch_add(1, std::memory_order_relaxed);
    status_->set_error("vhost-user: the reply to " + std::string(request_name(req)) + " could not be sent (" +
                       (e == EAGAIN ? std::string("the front end reads no replies") : std::string(strerror(e))) +
                       "); connection dropped");
    return false;
  }
  return true;
}

void VhostUserPort::refuse(int fd, uint32_t req, uint32_t flags, const std::string& why) {
  vst_->refused.fetch_add(1, std::memory_order_relaxed);
  status_->set_error("vhost-user: refused " + std::string(request_name(req)) + " (" + std::to_string(req) + "): " + why);
  if (expects_reply(req)) {
    reply(fd, req, nullptr, 0);
  } else if (flags & kVuFlagNeedReply) {
    uint64_t err = 1;
    reply(fd, req, &err, 8);
  }
}

uint64_t VhostUserPort::offered_features() const {
  using namespace vfeat;
  uint64_t f = bit(kVersion1) | bit(kAnyLayout) | bit(kRingIndirect) | bit(kRingEventIdx) | bit(kNetMrgRxbuf) |
               bit(kNetCsum) | bit(kNetGuestCsum) | bit(kNetHostTso4) | bit(kNetHostTso6) | bit(kNetHostEcn) |
               bit(kNetGuestTso4) | bit(kNetGuestTso6) | bit(kNetGuestEcn) | bit(kVuProtocolFeaturesBit);
  if (opts_.queue_pairs > 1) f |= bit(kNetMq);
  return f;
}

uint64_t VhostUserPort::offered_protocol_features() {
  return (1ull << kVuPfMq) | (1ull << kVuPfReplyAck) | (1ull << kVuPfStatus);
}

VirtQueue* VhostUserPort::queue_of(const uint8_t* p, uint32_t size, int fd, uint32_t req, uint32_t flags) {
  const uint32_t idx = size >= 4 ? (req == kVuSetVringKick || req == kVuSetVringCall || req == kVuSetVringErr
                                        ? uint32_t(get_u64(p) & 0xFF)
                                        : get_u32(p))
                                  : ~0u;
  if (idx >= vqs_.size()) {
    refuse(fd, req, flags,
           size < 4 ? "payload too short"
                    : "queue " + std::to_string(idx) + " does not exist (the port has " + std::to_string(vqs_.size()) +
                          " virtqueues: set queues on the port for more)");
    return nullptr;
  }
  return &vqs_[idx];
}

void VhostUserPort::replace_fd(int* slot, int fd) {
  if (*slot >= 0) ::close(*slot);
  *slot = fd;
}

bool VhostUserPort::set_kick(uint32_t i, int fd, std::string* err) {
  VirtQueue& q = vqs_[i];
  if (!(i & 1)) rx_kicks(i / 2, false);  // a backlog's registration is of the old descriptor
  if (q.kick_fd >= 0 && (i & 1)) epoll_ctl(epfd_, EPOLL_CTL_DEL, q.kick_fd, nullptr);
  replace_fd(&q.kick_fd, fd);
  if (fd >= 0 && (i & 1)) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u32 = i;
    if (epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
      // Not something to wait on (a regular file, say): the guest's kicks
      // would never wake a sleeping engine.
      if (err) *err = std::string("the kick descriptor cannot be waited on (epoll: ") + strerror(errno) + "): an eventfd is expected";
      replace_fd(&q.kick_fd, -1);
      return false;
    }
  }
  return true;
}

void VhostUserPort::remap_queue(uint32_t i) {
  VirtQueue& q = vqs_[i];
  std::string err;
  if (!q.map(mem_, &err)) {
    if (!err.empty() && mem_.count()) status_->set_error("virtqueue " + std::to_string(i) + ": " + err);
    return;
  }
  // Receive queues are filled by polling: the guest need not kick them.
  if (!(i & 1)) vq_set_kicks(q, ctx_, false);
}

void VhostUserPort::apply_features() {
  using namespace vfeat;
  const uint64_t f = features_;
  ctx_.mrg_rxbuf = f & bit(kNetMrgRxbuf);
  ctx_.hdr_len = (f & (bit(kVersion1) | bit(kNetMrgRxbuf))) ? kVnetHdrMrgLen : kVnetHdrLen;
  ctx_.event_idx = f & bit(kRingEventIdx);
  ctx_.indirect = f & bit(kRingIndirect);
  ctx_.guest_csum = f & bit(kNetGuestCsum);
  ctx_.guest_gso = ((f & bit(kNetGuestTso4)) ? uint32_t(kOffTso4) : 0u) |
                   ((f & bit(kNetGuestTso6)) ? uint32_t(kOffTso6) : 0u) |
                   ((f & bit(kNetGuestEcn)) ? uint32_t(kOffTsoEcn) : 0u);
  tx_offloads_ = ctx_.guest_csum ? (uint32_t(kOffCsum) | ctx_.guest_gso) : 0u;
  vst_->features.store(f, std::memory_order_relaxed);
}

void VhostUserPort::dispatch(uint32_t req, uint32_t flags, const uint8_t* p, uint32_t size, std::vector<int>& fds,
                             int fd) {
  const bool ack = (flags & kVuFlagNeedReply) && (protocol_features_ & (1ull << kVuPfReplyAck));
  uint64_t result = 0;  // REPLY_ACK payload: 0 success
  auto need = [&](uint32_t n) {
    if (size >= n) return true;
    refuse(fd, req, flags, "payload of " + std::to_string(size) + " bytes, expected " + std::to_string(n));
    return false;
  };
  switch (req) {
    case kVuGetFeatures: {
      const uint64_t f = offered_features();
      reply(fd, req, &f, 8);
      return;
    }
    case kVuSetFeatures: {
      if (!need(8)) return;
      const uint64_t f = get_u64(p);
      if (f & ~offered_features()) {
        refuse(fd, req, flags, "features " + virtio_feature_names(f & ~offered_features()) + " were not offered");
        return;
      }
      features_ = f;
      apply_features();
      // Without PROTOCOL_FEATURES a ring is enabled as soon as it starts.
      break;
    }
    case kVuSetOwner:
      break;
    case kVuResetOwner:
      reset_device();
      break;
    case kVuGetProtocolFeatures: {
      const uint64_t f = offered_protocol_features();
      reply(fd, req, &f, 8);
      return;
    }
    case kVuSetProtocolFeatures:
      if (!need(8)) return;
      protocol_features_ = get_u64(p) & offered_protocol_features();
      vst_->protocol_features.store(protocol_features_, std::memory_order_relaxed);
      break;
    case kVuGetQueueNum: {
      const uint64_t n = opts_.queue_pairs;
      reply(fd, req, &n, 8);
      return;
    }
    case kVuSetMemTable: {
      std::string err;
      if (!set_mem_table(p, size, fds, &err)) {
        refuse(fd, req, flags, err);
        return;
      }
      break;
    }
    case kVuSetVringNum: {
      VirtQueue* q = queue_of(p, size, fd, req, flags);
      if (!q || !need(8)) return;
      const uint32_t num = get_u32(p + 4);
      if (num == 0 || num > kMaxQueueSize || (num & (num - 1))) {
        refuse(fd, req, flags, "queue size " + std::to_string(num) + ": a split virtqueue has a power of two up to 32768");
        return;
      }
      q->num = num;
      q->broken = false;
      remap_queue(uint32_t(q - vqs_.data()));
      break;
    }
    case kVuSetVringAddr: {
      VirtQueue* q = queue_of(p, size, fd, req, flags);
      if (!q || !need(40)) return;
      q->desc_uva = get_u64(p + 8);
      q->used_uva = get_u64(p + 16);
      q->avail_uva = get_u64(p + 24);
      q->addr_set = true;
      q->broken = false;
      remap_queue(uint32_t(q - vqs_.data()));
      break;
    }
    case kVuSetVringBase: {
      VirtQueue* q = queue_of(p, size, fd, req, flags);
      if (!q || !need(8)) return;
      q->last_avail = uint16_t(get_u32(p + 4));
      break;
    }
    case kVuGetVringBase: {
      VirtQueue* q = queue_of(p, size, fd, req, flags);
      if (!q || !need(8)) return;
      // Stops the ring: no more processing until the next kick fd.
      const uint32_t i = uint32_t(q - vqs_.data());
      q->started = false;
      set_kick(i, -1);
      replace_fd(&q->call_fd, -1);
      const uint32_t st[2] = {i, q->last_avail};
      reply(fd, req, st, 8);
      return;
    }
    case kVuSetVringKick:
    case kVuSetVringCall:
    case kVuSetVringErr: {
      VirtQueue* q = queue_of(p, size, fd, req, flags);
      if (!q || !need(8)) return;
      const bool nofd = get_u64(p) & kVuVringNoFd;
      if (!nofd && fds.size() != 1) {
        refuse(fd, req, flags, "expected one file descriptor, got " + std::to_string(fds.size()));
        return;
      }
      int f = -1;
      if (!nofd) {
        f = fds[0];
        fds.clear();
        // The engine drains kicks and signals calls and errors, never
        // waiting: a front end that passes a pipe nobody reads (not an
        // eventfd) would otherwise stop it in write() once the pipe is full.
        fcntl(f, F_SETFL, fcntl(f, F_GETFL) | O_NONBLOCK);
      }
      const uint32_t i = uint32_t(q - vqs_.data());
      if (req == kVuSetVringKick) {
        std::string err;
        if (!set_kick(i, f, &err)) {
          refuse(fd, req, flags, "virtqueue " + std::to_string(i) + ": " + err);
          return;
        }
        q->started = true;
        q->broken = false;
        q->last_error.clear();
        if (!(features_ & vfeat::bit(kVuProtocolFeaturesBit))) q->enabled = true;
        remap_queue(i);  // also takes the used index from the ring
        // A base the avail ring cannot have (more than the queue size behind
        // its index) comes from a front end that lost track: DPDK's
        // virtio-user reconnecting in server mode sends 0, and a restarted
        // switch could not answer its GET_VRING_BASE. Every descriptor taken
        // is given back at once and in order, so the used index in guest
        // memory is where the ring stands: start from there.
        if (q->desc && q->used_idx != q->last_avail &&
            uint16_t(__atomic_load_n(q->avail + 1, __ATOMIC_ACQUIRE) - q->last_avail) > q->num)
          q->last_avail = q->used_idx;
      } else if (req == kVuSetVringCall) {
        replace_fd(&q->call_fd, f);
      } else {
        replace_fd(&q->err_fd, f);
      }
      break;
    }
    case kVuSetVringEnable: {
      VirtQueue* q = queue_of(p, size, fd, req, flags);
      if (!q || !need(8)) return;
      q->enabled = get_u32(p + 4) != 0;
      break;
    }
    case kVuSetStatus:
      if (!need(8)) return;
      dev_status_ = uint8_t(get_u64(p));
      vst_->device_status.store(dev_status_, std::memory_order_relaxed);
      break;
    case kVuGetStatus: {
      const uint64_t s = dev_status_;
      reply(fd, req, &s, 8);
      return;
    }
    default:
      refuse(fd, req, flags, "not supported by this switch");
      return;
  }
  if (ack) reply(fd, req, &result, 8);
}

bool VhostUserPort::set_mem_table(const uint8_t* p, uint32_t size, std::vector<int>& fds, std::string* err) {
  if (size < 8) {
    *err = "payload too short";
    return false;
  }
  const uint32_t n = get_u32(p);
  if (n == 0 || n > GuestMemory::kMaxRegions || size < 8 + 32 * n || fds.size() != n) {
    *err = std::to_string(n) + " regions with " + std::to_string(fds.size()) + " fds in " + std::to_string(size) +
           " bytes: expected 1..8 regions, one fd each";
    return false;
  }
  GuestMemory mem;
  std::vector<Mapping> maps;
  for (uint32_t i = 0; i < n; ++i) {
    const uint8_t* r = p + 8 + 32 * i;
    GuestRegion g;
    g.gpa = get_u64(r);
    g.size = get_u64(r + 8);
    g.uva = get_u64(r + 16);
    const uint64_t off = get_u64(r + 24);
    const std::string what = "region " + std::to_string(i) + " (" + std::to_string(g.size) + " bytes at offset " +
                             std::to_string(off) + ")";
    auto give_up = [&](const std::string& why) {
      *err = what + ": " + why;
      for (auto& m : maps) {
        GuestFaultZones::remove(m.zone);
        ::munmap(m.base, m.len);
      }
      return false;
    };
    // Guest memory is a shared file (a memfd, or a file on hugetlbfs or
    // tmpfs) that holds the whole region. A region that runs past the end
    // of its file maps without complaint, but the first touch of a page
    // beyond the end is a SIGBUS: the whole switch would die of one bad
    // memory table.
    struct stat sb;
    if (::fstat(fds[i], &sb) != 0) return give_up(std::string("fstat: ") + strerror(errno));
    if (!S_ISREG(sb.st_mode)) return give_up("its fd is not a regular file: guest memory must be a shared memfd, hugetlbfs or tmpfs file");
    const uint64_t want = g.size + off;
    if (g.size == 0 || want < g.size || want >= (1ull << 47)) return give_up("size or offset out of range");
    if (want > uint64_t(sb.st_size))
      return give_up("ends beyond its file's " + std::to_string(sb.st_size) +
                     " bytes (touching it would fault)");
    const size_t align = sb.st_blksize > 4096 ? size_t(sb.st_blksize) : 4096;  // hugetlbfs: its page size
    void* base = ::mmap(nullptr, (want + align - 1) & ~(uint64_t(align) - 1), PROT_READ | PROT_WRITE, MAP_SHARED,
                        fds[i], 0);
    if (base == MAP_FAILED) return give_up(std::string("mmap: ") + strerror(errno));
    const size_t len = size_t((want + align - 1) & ~(uint64_t(align) - 1));
    // The file may still shrink under the mapping later (guest_fault.h).
    const int zone = GuestFaultZones::add(base, len, align);
    if (zone < 0) {
      ::munmap(base, len);
      return give_up("no room to guard it against the front end shrinking its file (" +
                     std::to_string(GuestFaultZones::kMaxZones) + " guest regions mapped in this process)");
    }
    maps.push_back({base, len, zone});
    g.host = static_cast<uint8_t*>(base) + off;
    if (!mem.add(g)) return give_up("wraps the address space");
  }
  close_fds(fds);
  for (auto& q : vqs_) q.unmap();
  unmap_memory();
  mem_ = mem;
  maps_ = std::move(maps);
  for (uint32_t i = 0; i < vqs_.size(); ++i) remap_queue(i);
  return true;
}

void VhostUserPort::unmap_memory() {
  for (auto& q : vqs_) q.unmap();
  for (auto& m : maps_) {
    GuestFaultZones::remove(m.zone);
    ::munmap(m.base, m.len);
  }
  maps_.clear();
  mem_.clear();
}

void VhostUserPort::reset_device() {
  for (uint32_t i = 0; i < vqs_.size(); ++i) {
    set_kick(i, -1);
    replace_fd(&vqs_[i].call_fd, -1);
    replace_fd(&vqs_[i].err_fd, -1);
    vqs_[i].reset();
  }
  unmap_memory();
  features_ = 0;
  protocol_features_ = 0;
  dev_status_ = 0;
  apply_features();
  vst_->protocol_features.store(0);
  vst_->device_status.store(0);
}

void VhostUserPort::disconnect() {
  if (connected_) {
    vst_->disconnects.fetch_add(1, std::memory_order_relaxed);
    if (status_->error().empty()) status_->set_error("vhost-user front end disconnected");
  }
  connected_ = false;
  in_.clear();  // a message the front end left half sent
  vst_->connected.store(false);
  status_->attached.store(false, std::memory_order_relaxed);
  reset_device();
  refresh();
}

void VhostUserPort::refresh() {
  ready_rx_ = ready_tx_ = 0;
  for (uint32_t k = 0; k < opts_.queue_pairs; ++k) {
    rxq_ready_[k] = vqs_[2 * k].ready();
    ready_rx_ += rxq_ready_[k];
    ready_tx_ += vqs_[2 * k + 1].ready();
  }
  link_up_ = connected_ && (ready_rx_ || ready_tx_);
  for (uint32_t k = 0; k < opts_.queue_pairs; ++k)
    if (!rxq_ready_[k] && backlog_[k].n) drop_backlog(k, VirtqDrop::not_ready);
  kicks_wanted_ = true;  // rings (re)started: the guest is asked to kick, as map() left them
  publish_layout();
}

void VhostUserPort::publish_layout() {
  std::vector<VhostStatus::Queue> qs;
  for (uint32_t i = 0; i < vqs_.size(); ++i) {
    const VirtQueue& q = vqs_[i];
    VhostStatus::Queue s;
    s.index = i;
    s.size = q.num;
    s.enabled = q.enabled;
    s.started = q.started;
    s.ready = q.ready();
    s.broken = q.broken;
    s.last_avail = q.last_avail;
    s.used_idx = q.used_idx;
    s.error = q.last_error;
    qs.push_back(std::move(s));
  }
  std::vector<VhostStatus::Region> rs;
  for (uint32_t i = 0; i < mem_.count(); ++i) rs.push_back({mem_.region(i).gpa, mem_.region(i).size, mem_.region(i).uva});
  vst_->set_layout(std::move(qs), std::move(rs));
}

LinkState VhostUserPort::link_state() const {
  // Housekeeping (the engine thread, every 100 ms): a queue the rings found
  // broken is reported here, off the frame path.
  auto* self = const_cast<VhostUserPort*>(this);
  if (self->layout_dirty_.exchange(false, std::memory_order_relaxed)) {
    for (size_t i = 0; i < vqs_.size(); ++i)
      if (vqs_[i].broken && !vqs_[i].last_error.empty())
        status_->set_error("virtqueue " + std::to_string(i) + " broken: " + vqs_[i].last_error);
    self->refresh();
  } else if (connected_) {
    self->publish_layout();  // ring indexes move
  }
  if (backlogged_) self->check_stall();
  return link_up_ ? LinkState::kUp : LinkState::kDown;
}

// ------------------------------------------------------------------ the rings (engine thread)

// The front end shrank a file under one of this port's regions, and a touch
// past its new end faulted: the fault handler put a zero page there and the
// burst went on (guest_fault.h). The memory table can no longer be trusted,
// so the device is reset (every region unmapped, the queues stopped: the
// port goes down) and the connection shut down; the watcher sees it end and
// the engine closes it as any other (service()). A new connection starts
// afresh.
bool VhostUserPort::lost_guest_memory() {
  fault_epoch_ = GuestFaultZones::epoch();
  for (size_t i = 0; i < maps_.size(); ++i) {
    if (!GuestFaultZones::faults(maps_[i].zone)) continue;
    const GuestRegion& r = mem_.region(uint32_t(i));
    drop_connection(VhostDrop::memory_shrunk,
                    "a page of region " + std::to_string(i) + " (" + std::to_string(r.size) + " bytes at guest address " +
                        std::to_string(r.gpa) +
                        ") faulted: the front end shrank its memory file after the table was accepted");
    reset_device();
    refresh();
    const int fd = conn_fd_.load(std::memory_order_acquire);
    if (fd >= 0) {
      ::shutdown(fd, SHUT_RDWR);  // the watcher sees it end; service() closes it
      shut_down_ = true;
    }
    return true;
  }
  return false;
}

uint16_t VhostUserPort::rx_burst(Pkt* pkts, uint16_t max) {
  if (pending_.load(std::memory_order_acquire)) [[unlikely]]
    service();
  // Kicks are wanted only while the engine is about to sleep.
  const Waker* w = waker_.load(std::memory_order_relaxed);
  const bool want = w && w->sleeping.load(std::memory_order_relaxed);
  if (backlogged_) [[unlikely]]
    serve_backlogs(want);
  if (!ready_tx_) return 0;
  if (max > opts_.burst) max = uint16_t(opts_.burst);
  const uint32_t pairs = opts_.queue_pairs;
  if (want || want != kicks_wanted_) {
    kicks_wanted_ = want;
    for (uint32_t k = 0; k < pairs; ++k) {
      VirtQueue& q = vqs_[2 * k + 1];
      if (!q.ready()) continue;
      if (want) take_kicks(q.kick_fd);
      vq_set_kicks(q, ctx_, want);
    }
  }
  uint16_t n = 0;
  for (uint32_t k = 0; k < pairs && n < max; ++k) {
    VirtQueue& q = vqs_[2 * ((rr_ + k) % pairs) + 1];
    if (!q.ready()) continue;
    const uint16_t got = vq_dequeue(q, ctx_, pkts + n, uint16_t(max - n));
    if (q.broken) [[unlikely]] {
      ready_tx_--;
      layout_dirty_.store(true, std::memory_order_relaxed);
    }
    if (got) {
      n = uint16_t(n + got);
      const uint32_t pair = (rr_ + k) % pairs;
      if (pair < PortStatus::kMaxQueues) status_->queue_rx[pair].fetch_add(got, std::memory_order_relaxed);
    }
    vq_notify(q, ctx_);
  }
  rr_++;
  if (GuestFaultZones::epoch() != fault_epoch_) [[unlikely]] {
    if (lost_guest_memory()) {
      // What this burst read may come from the zero page: none of it goes on.
      for (uint16_t i = 0; i < n; ++i) cache_.free(pkts[i].buf);
      return 0;
    }
  }
  return n;
}

uint16_t VhostUserPort::tx_burst(Pkt* pkts, uint16_t n) {
  if (!ready_rx_) {
    // Connected but the guest's receive queue is not set up (yet): counted here.
    for (uint16_t i = 0; i < n; ++i) cache_.free(pkts[i].buf);
    if (!vqs_.empty()) rxq_drop(vqs_[0], ctx_, VirtqDrop::not_ready, n);
    return n;
  }
  if (n > kMaxBurst) n = kMaxBurst;
  if (ready_rx_ == 1 && rxq_ready_[0]) {
    VirtQueue& q = vqs_[0];
    uint16_t done = backlog_[0].n ? 0 : vq_enqueue(q, ctx_, pkts, n);
    if (q.broken) [[unlikely]]
      rx_queue_broke(0);
    else if (done < n) [[unlikely]]
      done = uint16_t(done + hold(0, pkts + done, uint16_t(n - done)));
    vq_notify(q, ctx_);
    if (GuestFaultZones::epoch() != fault_epoch_) [[unlikely]]
      lost_guest_memory();  // the frames went to the zero page: sent, as far as the engine knows
    return done;
  }
  // Several receive queues: one flow, one queue. Frames a queue did not take
  // go to the end, in order, as the engine expects.
  uint8_t qs[kMaxBurst];
  uint8_t ready[VhostStatus::kMaxPairs];
  uint32_t nr = 0;
  for (uint32_t k = 0; k < opts_.queue_pairs; ++k)
    if (rxq_ready_[k]) ready[nr++] = uint8_t(k);
  for (uint16_t i = 0; i < n; ++i) qs[i] = ready[flow_queue(pool_->frame(pkts[i]), pkts[i].len, nr)];
  Pkt taken[kMaxBurst], left[kMaxBurst], run[kMaxBurst];
  uint16_t nt = 0, nl = 0;
  for (uint32_t k = 0; k < nr; ++k) {
    const uint8_t qi = ready[k];
    uint16_t m = 0;
    for (uint16_t i = 0; i < n; ++i)
      if (qs[i] == qi) run[m++] = pkts[i];
    if (!m) continue;
    VirtQueue& q = vqs_[2 * qi];
    uint16_t done = backlog_[qi].n ? 0 : vq_enqueue(q, ctx_, run, m);
    if (q.broken) [[unlikely]]
      rx_queue_broke(qi);
    else if (done < m) [[unlikely]]
      done = uint16_t(done + hold(qi, run + done, uint16_t(m - done)));
    vq_notify(q, ctx_);
    std::memcpy(taken + nt, run, done * sizeof(Pkt));
    nt = uint16_t(nt + done);
    std::memcpy(left + nl, run + done, (m - done) * sizeof(Pkt));
    nl = uint16_t(nl + m - done);
  }
  std::memcpy(pkts, taken, nt * sizeof(Pkt));
  std::memcpy(pkts + nt, left, nl * sizeof(Pkt));
  if (GuestFaultZones::epoch() != fault_epoch_) [[unlikely]] lost_guest_memory();
  return nt;
}

// ------------------------------------------------------------------ the backlog (engine thread)

void VhostUserPort::rx_queue_broke(uint32_t k) {
  if (!rxq_ready_[k]) return;
  ready_rx_--;
  rxq_ready_[k] = 0;
  layout_dirty_.store(true, std::memory_order_relaxed);
}

void VhostUserPort::rx_kicks(uint32_t k, bool on) {
  Backlog& b = backlog_[k];
  VirtQueue& q = vqs_[2 * k];
  if (on == b.kicks) return;
  b.kicks = on;
  if (q.kick_fd >= 0) {
    // A descriptor epoll refuses: the backlog then moves only while the
    // engine runs, and at the link checks (check_stall). A kick left
    // counted when it leaves costs one wake-up after it comes back (the
    // next look before a sleep reads it).
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u32 = 2 * k;
    epoll_ctl(epfd_, on ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, q.kick_fd, on ? &ev : nullptr);
  }
  if (!on && q.ready()) vq_set_kicks(q, ctx_, false);  // on: drain() asks, at the right index
}

uint16_t VhostUserPort::hold(uint32_t k, const Pkt* pkts, uint16_t n) {
  Backlog& b = backlog_[k];
  // At most one look at each of the pool's free lists per call.
  uint32_t room = Backlog::kFrames - held_;
  if (room && pool_->available() <= regular_floor_) room = 0;
  int large_ok = -1;  // looked up at the first large frame
  uint16_t i = 0;
  for (; i < n && room; ++i, --room) {
    if (pool_->is_large(pkts[i].buf)) {
      if (large_ok < 0) large_ok = pool_->large_available() > large_floor_;
      if (!large_ok || held_large_ >= held_large_max_) break;  // in order: nothing after it either
      ++held_large_;
    }
    b.f[(b.head + b.n++) % Backlog::kFrames] = pkts[i];
  }
  if (!i) return 0;
  held_ += i;
  vqs_[2 * k].ctr->add(VirtqCounter::guest_full, i);
  if (b.n == i) {
    ++backlogged_;
    b.stall_since_ms = 0;  // check_stall() starts the clock
    rx_kicks(k, true);
    drain(k);  // asks the guest to kick, and looks once more
  }
  return i;
}

void VhostUserPort::drain(uint32_t k) {
  Backlog& b = backlog_[k];
  VirtQueue& q = vqs_[2 * k];
  if (!q.ready() && !q.broken) [[unlikely]] {
    drop_backlog(k, VirtqDrop::not_ready);  // refresh() does it too; the rings may be unmapped now
    return;
  }
  const uint32_t n0 = b.n;
  for (int asks = 0;; ++asks) {
    while (b.n) {
      const uint16_t run = uint16_t(std::min({b.n, Backlog::kFrames - b.head, uint32_t(kMaxBurst)}));
      const uint16_t done = vq_enqueue(q, ctx_, b.f + b.head, run);
      for (uint16_t i = 0; i < done; ++i) held_large_ -= pool_->is_large(b.f[b.head + i].buf);
      b.head = (b.head + done) % Backlog::kFrames;
      b.n -= done;
      if (done < run) break;
    }
    if (!b.n || !b.kicks) break;
    if (!q.rx_full) {
      self_kick(k);  // the walk budget ended the burst, buffers are left
      break;
    }
    if (ctx_.mrg_rxbuf && uint16_t(q.rx_seen - q.last_avail) == q.num) {
      // Every buffer of the ring is there and the frame at the head still
      // does not fit: it never will (a tiny ring, or tiny buffers).
      held_large_ -= pool_->is_large(b.f[b.head].buf);
      rxq_drop(q, ctx_, VirtqDrop::guest_buffer_small);
      cache_.free(b.f[b.head].buf);
      b.head = (b.head + 1) % Backlog::kFrames;
      --b.n;
      continue;
    }
    // Still waiting: the guest kicks for its next buffer, unless it
    // published some meanwhile (look again; a guest that keeps moving its
    // index is looked at again at the engine's next iteration, not now).
    if (vq_kick_on_next_buffer(q, ctx_)) break;
    if (asks == 2) {
      self_kick(k);
      break;
    }
  }
  held_ -= n0 - b.n;
  b.delivered += n0 - b.n;  // delivered, or dropped and counted
  if (q.broken) [[unlikely]]
    rx_queue_broke(k);  // vq_enqueue counted and freed the rest (not_ready)
  vq_notify(q, ctx_);
  if (!b.n) {
    b.head = 0;
    --backlogged_;
    rx_kicks(k, false);
  }
}

void VhostUserPort::self_kick(uint32_t k) {
  const int fd = vqs_[2 * k].kick_fd;
  if (fd < 0) return;  // no descriptor: the next link check drains it
  uint64_t one = 1;
  ssize_t r = ::write(fd, &one, sizeof one);
  (void)r;
}

void VhostUserPort::serve_backlogs(bool sleeping) {
  for (uint32_t k = 0; k < opts_.queue_pairs; ++k) {
    Backlog& b = backlog_[k];
    if (!b.n) continue;
    VirtQueue& q = vqs_[2 * k];
    if (!b.kicks) {
      rx_kicks(k, true);  // its kick descriptor was replaced while frames waited
    } else if (sleeping) {
      take_kicks(q.kick_fd);
    }
    drain(k);
  }
  if (GuestFaultZones::epoch() != fault_epoch_) [[unlikely]]
    lost_guest_memory();
}

void VhostUserPort::drop_backlog(uint32_t k, VirtqDrop why) {
  Backlog& b = backlog_[k];
  if (!b.n) return;
  rxq_drop(vqs_[2 * k], ctx_, why, b.n);
  held_ -= b.n;
  for (; b.n; --b.n, b.head = (b.head + 1) % Backlog::kFrames) {
    held_large_ -= pool_->is_large(b.f[b.head].buf);
    cache_.free(b.f[b.head].buf);
  }
  b.head = 0;
  --backlogged_;
  rx_kicks(k, false);
}

void VhostUserPort::check_stall() {
  const uint64_t now = mono_ms();
  for (uint32_t k = 0; k < opts_.queue_pairs; ++k) {
    Backlog& b = backlog_[k];
    if (!b.n) continue;
    drain(k);  // what the guest added since, whether or not its kick woke the engine
    if (!b.n) continue;
    if (b.stall_since_ms == 0 || b.delivered != b.stall_seen) {
      b.stall_seen = b.delivered;
      b.stall_since_ms = now;
    } else if (now - b.stall_since_ms >= kStallMs) {
      drop_backlog(k, VirtqDrop::guest_stalled);
    }
  }
  if (GuestFaultZones::epoch() != fault_epoch_) [[unlikely]]
    lost_guest_memory();
}

}  // namespace vpc
