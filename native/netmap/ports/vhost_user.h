// vhost-user port: a VM's (or testpmd's) virtio-net device served straight
// from the guest's memory. Written from QEMU's docs/interop/vhost-user.rst
// (the protocol) and the virtio 1.x specification (the rings,
// ports/virtio_ring.h).
//
//   guest virtio-net  ──transmitq──►  vq_dequeue (one copy)  ──► rx_burst
//   tx_burst ──► vq_enqueue (one copy) ──receiveq──►  guest virtio-net
//
// Threads. Everything that touches the device state (the memory table, the
// rings, the eventfds) runs on the engine thread: the rings in rx_burst and
// tx_burst, the vhost-user messages in rx_burst too, but only when there are
// some. A small watcher thread per port owns nothing but waiting: it accepts
// (server mode) or connects every second (client mode), then polls the
// connection; when bytes are readable it raises a flag, wakes a sleeping
// engine and waits until the engine has taken what was queued. The engine's
// cost is one relaxed load per rx_burst; no lock, no system call on the
// frame path but the guest notifications the rings ask for.
//
// The engine never waits for a front end. It reads without blocking, and a
// message that arrived in pieces is kept (bytes and file descriptors) until
// the rest is readable: a front end that sends half a message and stops
// costs the engine nothing, it only holds its own connection. A message
// that cannot be vhost-user (wrong version, a payload larger than any
// request, too many descriptors) drops the connection, counted by reason
// (VhostStatus::drops) and named in lastError. The watcher never ends on an
// error of its own either: a failing poll/accept is shown (lastError,
// watcher_errors) and retried after a pause growing from 10 ms to 1 s; only
// detaching the port stops it.
//
// Sleeping. poll_fd() is an epoll descriptor holding the kick eventfds of the
// transmit queues (and of a receive queue while frames wait in its backlog,
// below). While the engine polls, the guest is told not to kick
// (EVENT_IDX: avail_event left behind; otherwise VRING_USED_F_NO_NOTIFY).
// When the engine announces that it is about to sleep (Waker::sleeping), the
// next rx_burst drains the kick eventfds, asks for kicks again and looks at
// the rings once more, so a frame published meanwhile is never missed.
//
// Link. Up while a front end is connected and a queue is ready (memory
// mapped, addresses set, kick received, enabled, not broken). A disconnect
// (the front end exits or closes) unmaps every region and closes every fd;
// the port goes down (an event) until the next connection. In client mode
// the port reconnects every second, also after the switch restarts, so a
// guest is never stranded.
#pragma once

#include <poll.h>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/buffer_pool.h"
#include "ports/port.h"
#include "ports/spec.h"
#include "ports/virtio_ring.h"

namespace vpc {

// vhost-user request codes (front end -> back end) used here.
enum VhostUserRequest : uint32_t {
  kVuGetFeatures = 1,
  kVuSetFeatures = 2,
  kVuSetOwner = 3,
  kVuResetOwner = 4,
  kVuSetMemTable = 5,
  kVuSetLogBase = 6,
  kVuSetLogFd = 7,
  kVuSetVringNum = 8,
  kVuSetVringAddr = 9,
  kVuSetVringBase = 10,
  kVuGetVringBase = 11,
  kVuSetVringKick = 12,
  kVuSetVringCall = 13,
  kVuSetVringErr = 14,
  kVuGetProtocolFeatures = 15,
  kVuSetProtocolFeatures = 16,
  kVuGetQueueNum = 17,
  kVuSetVringEnable = 18,
  kVuSendRarp = 19,
  kVuGetConfig = 24,
  kVuPostcopyAdvise = 28,
  kVuGetInflightFd = 31,
  kVuGetMaxMemSlots = 36,
  kVuSetStatus = 39,
  kVuGetStatus = 40,
};
constexpr uint32_t kVuVersion = 1, kVuFlagReply = 1u << 2, kVuFlagNeedReply = 1u << 3;
constexpr int kVuProtocolFeaturesBit = 30;  // VHOST_USER_F_PROTOCOL_FEATURES
constexpr int kVuPfMq = 0, kVuPfReplyAck = 3, kVuPfStatus = 16;
constexpr uint64_t kVuVringNoFd = 1ull << 8;
constexpr uint32_t kVuHeaderSize = 12;  // request, flags, size
constexpr uint32_t kVuMaxPayload = 8 + 32 * GuestMemory::kMaxRegions + 64;
constexpr uint32_t kVuMaxFds = 8;

// Why the port dropped a front end's connection (VhostStatus::drops); the
// message in lastError gives the details.
#define VPC_VHOST_DROPS(X)                                                                                   \
  X(closed_mid_message, "the front end closed the connection in the middle of a message")                 \
  X(bad_version, "a message header without protocol version 1 (not vhost-user, or the stream is out of step)") \
  X(too_big, "a message announcing a payload larger than any request the switch handles")                 \
  X(too_many_fds, "a message carrying more file descriptors than any request does")                       \
  X(reply_lost, "a reply could not be sent (the front end stopped reading its replies)")                   \
  X(memory_shrunk, "the front end shrank a memory file after the table was accepted (a touch past its end faulted)")
#define VPC_ROW(name, help) name,
enum class VhostDrop : uint8_t { VPC_VHOST_DROPS(VPC_ROW) kCount };
#undef VPC_ROW
constexpr size_t kVhostDrops = size_t(VhostDrop::kCount);
extern const char* const kVhostDropNames[kVhostDrops];

// What a vhost-user port shows in its status, readable from any thread.
struct VhostStatus {
  static constexpr uint32_t kMaxPairs = PortStatus::kMaxQueues;
  std::string socket;
  bool client = false;
  uint32_t max_pairs = 1;

  std::atomic<bool> connected{false};
  std::atomic<uint64_t> features{0}, protocol_features{0};
  std::atomic<uint32_t> device_status{0};
  std::atomic<uint64_t> connects{0}, disconnects{0}, messages{0}, refused{0};
  std::atomic<uint64_t> drops[kVhostDrops] = {};  // connections dropped, by reason
  std::atomic<uint64_t> watcher_errors{0};         // failed poll/accept/socket calls, each retried
  // Per virtqueue (index 2k: guest receiveq k, 2k + 1: transmitq k); the
  // engine is the only writer.
  VirtqCounters q[2 * kMaxPairs];

  struct Queue {
    uint32_t index = 0, size = 0;
    bool enabled = false, started = false, ready = false, broken = false;
    uint16_t last_avail = 0, used_idx = 0;
    std::string error;
  };
  struct Region {
    uint64_t gpa = 0, size = 0, uva = 0;
  };
  void set_layout(std::vector<Queue> queues, std::vector<Region> regions);
  void layout(std::vector<Queue>* queues, std::vector<Region>* regions) const;

 private:
  mutable std::mutex mu_;
  std::vector<Queue> queues_;
  std::vector<Region> regions_;
};

// Names of the negotiated feature bits, space separated ("version_1 mrg_rxbuf ...").
std::string virtio_feature_names(uint64_t features);

struct VhostUserOptions {
  std::string socket;      // path of the unix socket
  bool client = false;     // connect to it (the front end listens) instead of listening
  uint32_t queue_pairs = 1;  // most queue pairs offered (MQ when > 1), 1..16
  uint32_t burst = kMaxBurst;
  // Server mode: a socket whose directory does not exist makes the port wait
  // for it (down) instead of failing (vpcd's restores and applies).
  bool wait_for_directory = false;
  // Tests only: stands in for poll(2) in the watcher thread (fault injection).
  std::function<int(pollfd*, nfds_t, int)> poll_for_test;
};

class VhostUserPort final : public Port {
 public:
  static std::unique_ptr<VhostUserPort> open(const VhostUserOptions& opts, std::shared_ptr<BufferPool> pool,
                                             std::shared_ptr<PortStatus> status);
  ~VhostUserPort() override;

  const char* kind() const override { return "vhostuser"; }
  uint16_t rx_burst(Pkt* pkts, uint16_t max) override;
  uint16_t tx_burst(Pkt* pkts, uint16_t n) override;
  int poll_fd() const override { return epfd_; }
  LinkState link_state() const override;
  void attach(Waker* waker) override;
  bool count_tx(PortCounterBlock* pc) override;
  void detach() override;
  uint32_t tx_offloads() const override { return tx_offloads_; }

  // Features offered to the front end.
  uint64_t offered_features() const;
  static uint64_t offered_protocol_features();
  const std::shared_ptr<VhostStatus>& vhost_status() const { return vst_; }

 private:
  VhostUserPort(const VhostUserOptions& opts, std::shared_ptr<BufferPool> pool, std::shared_ptr<PortStatus> status);
  void watch();                 // the watcher thread
  bool wait_for_engine();       // watcher: raise the flag, wake the engine, wait; false: stopping
  int watcher_poll(pollfd* pf, nfds_t n, int timeout_ms);
  bool watcher_failed(const char* call, int err, int* backoff_ms);  // shows it, pauses; false: stopping
  bool pause(int ms);           // watcher: sleeps unless told to stop; false: stopping
  void stop_watcher();
  void service();               // engine: handle queued messages (and a new or lost connection)
  bool handle_message(int fd, bool* more);  // false: the connection is to be dropped
  bool drop_connection(VhostDrop why, const std::string& detail);  // counts, says why; false
  void dispatch(uint32_t req, uint32_t flags, const uint8_t* p, uint32_t size, std::vector<int>& fds, int fd);
  bool reply(int fd, uint32_t req, const void* payload, uint32_t size);  // false: lost, connection to drop
  void refuse(int fd, uint32_t req, uint32_t flags, const std::string& why);
  bool set_mem_table(const uint8_t* p, uint32_t size, std::vector<int>& fds, std::string* err);
  void unmap_memory();
  // After a burst in which a guest page faulted somewhere in the process:
  // true when it was one of this port's, which then drops the front end.
  bool lost_guest_memory();
  void disconnect();           // engine: drop the connection and everything it set up
  void reset_device();         // features, queues (fds closed), memory
  void apply_features();
  void remap_queue(uint32_t i);
  // Takes fd as queue i's kick descriptor (-1: none). False, with the fd
  // closed and the reason in *err, when a transmit queue's kick cannot be
  // waited on.
  bool set_kick(uint32_t i, int fd, std::string* err = nullptr);
  void replace_fd(int* slot, int fd);
  void refresh();              // recompute readiness and publish the status
  void publish_layout();
  VirtQueue* queue_of(const uint8_t* p, uint32_t size, int fd, uint32_t req, uint32_t flags);

  VhostUserOptions opts_;
  std::shared_ptr<BufferPool> pool_;
  std::shared_ptr<PortStatus> status_;
  std::shared_ptr<VhostStatus> vst_;
  BufferCache cache_;
  std::atomic<Waker*> waker_{nullptr};

  // Watcher <-> engine.
  std::thread watcher_;
  int listen_fd_ = -1;  // -1 in server mode: waiting for the socket's directory
  ino_t socket_ino_ = 0;  // the socket file listen_now() made (to see it removed)
  bool socket_remade_ = false;  // the file was removed and made again (said in lastError)
  int listen_now();     // 0 or errno
  bool socket_file_gone();  // the watcher's: the listening socket's file was removed
  int stop_efd_ = -1;   // the watcher stops
  int ack_efd_ = -1;    // the engine is done with the pending messages
  std::atomic<int> conn_fd_{-1};
  std::atomic<bool> pending_{false};
  bool claimed_ = false;
  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;  // under stop_mu_

  // The message being received (engine thread). A front end may send one in
  // pieces: what came so far, file descriptors included, waits here for the
  // next readable event instead of the engine waiting for the rest.
  struct Incoming {
    uint8_t hdr[kVuHeaderSize];
    uint8_t payload[kVuMaxPayload];
    uint32_t got = 0;       // bytes of header and payload received
    std::vector<int> fds;   // received with them
    void clear();           // closes the fds
  } in_;

  // Device state (engine thread).
  int epfd_ = -1;
  bool connected_ = false;
  bool reply_lost_ = false;  // a reply could not be sent: the connection is dropped
  bool shut_down_ = false;   // the port shut the connection down (lost_guest_memory): close it
  uint64_t features_ = 0, protocol_features_ = 0;
  uint8_t dev_status_ = 0;
  GuestMemory mem_;
  struct Mapping {
    void* base;
    size_t len;
    int zone;  // GuestFaultZones: a SIGBUS in it is caught
  };
  std::vector<Mapping> maps_;
  uint64_t fault_epoch_ = 0;  // GuestFaultZones::epoch() when last looked
  std::vector<VirtQueue> vqs_;  // 2 * queue_pairs
  VirtioNetCtx ctx_;
  uint32_t tx_offloads_ = 0;
  uint32_t ready_rx_ = 0, ready_tx_ = 0;  // ready guest receive / transmit queues
  uint8_t rxq_ready_[VhostStatus::kMaxPairs] = {};  // guest receiveq k ready
  bool link_up_ = false;
  bool kicks_wanted_ = true;

  // Frames for a guest receive queue that found no free buffer: held, in
  // order, and delivered first once the guest adds buffers, as a tap's
  // queue holds a burst its reader has not taken yet (docs/ports.md, "The
  // backlog"). What does not fit goes back to the engine (tx_ring_full).
  // The port counts its own tx (count_tx): a held frame is the port's
  // tx_packets when it reaches the ring, its tx drop when the backlog
  // loses it (a stalled guest: tx_ring_full; a guest gone: link_down).
  // While a queue holds frames, and only then, the guest is asked to kick
  // that receive queue when it adds a buffer, and its kick descriptor is in
  // epfd_, so a sleeping engine wakes for the buffers.
  struct Backlog {
    static constexpr uint32_t kFrames = 1024;  // also the port's limit, over all its queues
    Pkt f[kFrames];
    uint32_t head = 0, n = 0;
    bool kicks = false;  // the guest is asked to kick; its kick fd is in epfd_
    // Stall clock (check_stall): frames delivered, and since when none.
    uint64_t delivered = 0, stall_seen = 0, stall_since_ms = 0;
  };
  std::unique_ptr<Backlog[]> backlog_;  // one per queue pair (guest receiveq k)
  uint32_t backlogged_ = 0;             // queues holding frames
  uint32_t held_ = 0, held_large_ = 0;  // frames, and large buffers among them, over all queues
  uint32_t held_large_max_ = 1;         // large buffers the port holds at most
  uint32_t large_floor_ = 0, regular_floor_ = 0;  // none held while the pool has this many or fewer free
  // A receive queue whose guest takes no buffer for kStallMs while frames
  // wait (a hung or paused guest) loses them (guest_stalled). Checked from
  // link_state(), at the engine's link checks (every 100 ms for up to 32
  // ports, less often beyond), which also drain every backlog: a wake-up
  // missed for any reason costs at most one check interval.
  static constexpr uint64_t kStallMs = 1000;
  // Into queue k's backlog, after what it holds: returns how many it took.
  uint16_t hold(uint32_t k, const Pkt* pkts, uint16_t n);
  // Queue k's backlog into its ring, as far as the guest's buffers go.
  void drain(uint32_t k);
  // Every backlog: drained; while the engine is about to sleep (`sleeping`),
  // the kicks that came so far are read first.
  void serve_backlogs(bool sleeping);
  void rx_kicks(uint32_t k, bool on);
  void rx_queue_broke(uint32_t k);
  void drop_backlog(uint32_t k, VirtqDrop why);  // freed, counted on the queue
  void check_stall();
  void self_kick(uint32_t k);  // the engine comes back to queue k at its next look
  uint32_t rr_ = 0;
  std::atomic<bool> layout_dirty_{false};
};

}  // namespace vpc
