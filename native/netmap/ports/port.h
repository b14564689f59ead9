// The port interface every backend implements.
//
// A port moves descriptors of the engine's buffer pool in bursts. rx_burst
// hands buffers to the engine (the engine now owns them); tx_burst takes
// buffers from the engine, and the ones it did not accept stay with the caller
// (the engine counts them as tx_ring_full and frees them). Both take at most
// kMaxBurst frames per call (a backend may size its per-call arrays by it);
// the engine splits a longer staged queue. Neither call may
// block or make a system call per packet. A port is driven only by the engine
// thread once attached.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <utility>

#include "core/offload.h"
#include "core/types.h"

namespace vpc {

struct PortCounterBlock;  // core/counters.h

// The kernel fast path's programs (ports/kpath.h): descriptors, -1 for none.
struct KpathProgs {
  int tc = -1;    // TC ingress of every hooked interface
  int sock = -1;  // the filter of every hooked packet socket
  int xdp = -1;   // XDP of the uplink's interface
  bool xdp_refused = false;  // the kernel would not load the XDP program (xdp < 0)
};

// How a sleeping engine can be woken by someone who just gave it work.
// Producers check `sleeping` after publishing work and, if set, write to the
// eventfd; the engine sets it before its last look at the rings (both sides use
// seq_cst, so at least one of them sees the other).
struct Waker {
  std::atomic<bool> sleeping{false};
  int fd = -1;  // eventfd
  void wake();
};

enum class LinkState : uint8_t { kDown = 0, kUp = 1 };

class Port {
 public:
  virtual ~Port() = default;
  virtual const char* kind() const = 0;
  virtual uint16_t rx_burst(Pkt* pkts, uint16_t max) = 0;
  virtual uint16_t tx_burst(Pkt* pkts, uint16_t n) = 0;
  // A descriptor the engine can poll(2) for readability while it sleeps, or -1
  // when the port wakes the engine through the Waker instead.
  virtual int poll_fd() const { return -1; }
  virtual LinkState link_state() const { return LinkState::kUp; }
  // The interface whose kernel link messages (ports/link_watch.h) announce
  // every change link_state(), tx_frame_limit() and tx_offloads() would
  // show: the namespace whose view this is (socket_netns: the switch's),
  // the id that namespace has for the interface's own (-1: the interface is
  // in it; else RTM_NEWNSID's id, as for a tap followed into a container's
  // namespace) and the interface's index there. The engine then
  // checks the port when a message names that interface, and otherwise only
  // every recheck_ms: what the check reads besides the link (an afpacket
  // port's kernel drop counters, its socket's error) comes no later than
  // that. ifindex 0, the default: no such interface now (another kind of port,
  // an interface that is gone or being reopened), and the port is checked
  // on the usual round robin. Read on the engine thread after link_state().
  struct WatchKey {
    uint64_t netns = 0;
    int ifindex = 0;
    uint32_t recheck_ms = 1000;
    int nsid = -1;
  };
  virtual WatchKey link_watch_key() const { return {}; }
  // The interface's own MAC when the backend has one (kernel interfaces),
  // else 0 and the configured MAC is used.
  virtual Mac hw_mac() const { return 0; }
  // The longest untagged frame the interface takes for transmission (its MTU
  // plus the Ethernet header; an 802.1Q-tagged frame may be 4 bytes longer),
  // or 0 when only the buffer limits it. Kernel interfaces refuse longer
  // frames (an AF_PACKET ring would stall on one), so the engine drops them
  // first (Drop::egress_too_big). Read on the engine thread after link_state().
  virtual uint32_t tx_frame_limit() const { return 0; }
  // The port's MTU as the switch enforces it (PortConfig::mtu: a longer
  // frame is an oversize drop at ingress), when the port is opened and on
  // every change, on the engine thread. A backend that rebuilds a frame's
  // offload state from its size (afxdp) must not rebuild more than that.
  virtual void set_mtu(uint32_t l3_mtu) { (void)l3_mtu; }
  // Called once when the port is attached to an engine.
  virtual void attach(Waker* waker) { (void)waker; }
  // A backend that keeps frames tx_burst took and sends them later (a
  // vhost-user port's backlog) counts the port's transmissions itself, so
  // that a frame it holds and then loses is a tx drop, never a transmitted
  // frame: it adds tx_packets and tx_bytes for each frame as it leaves, and
  // a drop_tx for each one it took and could not send; a frame it holds is
  // in neither yet. The engine hands it the port's counter block when the
  // port opens (the backend returns true: the engine then counts only what
  // tx_burst did not take) and null when the port closes (the backend counts
  // what it still holds as port_deleted, then never touches the block
  // again). Engine thread only.
  virtual bool count_tx(PortCounterBlock* pc) {
    (void)pc;
    return false;
  }
  // Called on the engine thread before the port is destroyed: give back every
  // buffer still held in rings the engine can reach.
  virtual void detach() {}

  // Transmit offloads (core/offload.h). The engine reads these when the port
  // is attached (tx_offloads() again with every link check, as a vhost-user
  // guest negotiates after), and adapts every frame before tx_burst: a frame whose
  // descriptor has kPktMeta set reaches tx_burst only if the port accepts
  // what BufferPool::meta() says (offload_needs(meta) within tx_offloads()),
  // its length is within tx_max_frame() and, when it lives in a large buffer,
  // tx_large_buffers() is true. Everything else is checksum-completed,
  // segmented or copied by the engine first; frames reaching a port that
  // accepts nothing are plain frames without the flag.
  //
  // PortOffload bits the port takes as they are on transmit.
  virtual uint32_t tx_offloads() const { return 0; }
  // Largest frame (Ethernet header included, no virtio_net_hdr) the port
  // can transmit in one piece.
  virtual uint32_t tx_max_frame() const { return 65535; }
  // False for backends that hand buffers to the kernel by address (AF_XDP's
  // UMEM chunks): they only ever get regular buffers.
  virtual bool tx_large_buffers() const { return true; }
  // True when a received frame longer than a regular buffer holds lands in
  // one of the pool's large buffers: the port's MTU may then exceed what a
  // regular buffer holds (a 9000-byte MTU over 2 KiB buffers). False for
  // backends whose frames must fit the buffer the kernel wrote (netmap).
  virtual bool rx_large_frames() const { return true; }

  // The kernel fast path (ports/kpath.h, docs/design/kernel-path.md), for
  // backends whose frames come from a kernel interface. Called on the engine
  // thread, or on the submitter's before the port is handed over
  // (Bridge::kpath_preload). kernel_path_wanted(): the backend can hook the
  // programs and its options did not turn the path off. kernel_path() hooks
  // them (progs.tc < 0: it may not, and any hooks go; `why_not` goes to the
  // port's status), false when it could not; hooking again changes nothing.
  // The uplink's backend also hooks progs.xdp, where its driver can.
  // kernel_ifindex(): the interface the kernel path may redirect frames to
  // now, 0 while there is none (not hooked, interface gone).
  // kernel_peer_ingress(): that interface is a veth whose other end (the
  // guest's) is in another namespace, with nothing on its transmit side: a
  // frame the kernel decapsulated for it may enter the guest's end directly
  // (bpf_redirect_peer), one queue and softirq pass fewer.
  virtual bool kernel_path_wanted() const { return false; }
  virtual bool kernel_path(const KpathProgs& progs, const std::string& why_not) {
    (void)progs, (void)why_not;
    return false;
  }
  virtual int kernel_ifindex() const { return 0; }
  virtual bool kernel_peer_ingress() const { return false; }
  // The uplink's GRO stage (KpathHook): its sending and receiving ends'
  // interface indexes, 0 while it has none.
  virtual std::pair<int, int> kernel_gro_stage() const { return {0, 0}; }
  // Frames the GRO stage lost (its ring full, an end down), summed over
  // every stage the port had; read at its link checks.
  virtual uint64_t kernel_gro_lost() const { return 0; }
};

}  // namespace vpc
