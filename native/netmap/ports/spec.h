// Port spec strings: how a kernel-facing port is named, and how it is opened.
//
// Grammar (the one place it is defined; docs/ports.md repeats it for users):
//
//   spec     = "afpacket:" ifname              AF_PACKET, TPACKET_V2 mmap rings
//            | "tap:"      ifname              tap device (created if absent)
//            | "afxdp:"    ifname [ "@" queue ]  AF_XDP sockets: every rx queue,
//                                              or "@q" queue q (with the queues
//                                              option: q..q+queues-1)
//            | "netmap:"   ifname [ "^" | "@" queue ]
//                                              netmap NIC rings: all pairs,
//                                              "^" the host ring pair, "@k" pair k
//            | vale ":" vport                  netmap VALE switch port
//            | "vhostuser:" path               vhost-user socket (a VM's virtio-net);
//                                              server or client by the port options
//   vale     = "vale" *15( ALNUM / "_" )       e.g. vale0, valeA
//   ifname   = 1*15( ALNUM / "." / "-" / "_" ), not "." or ".."
//   vport    = 1*15( ALNUM / "." / "-" / "_" )
//   queue    = 1*4DIGIT                        0..1023
//   path     = "/" 1*106( VCHAR )              absolute; sun_path holds 107 bytes
//
// Examples: afpacket:veth-a  tap:vm1  afxdp:eth0@2  netmap:eth0  netmap:eth0^
//           vale0:p1  vhostuser:/run/vpc/vm1.sock
//
// 15 characters is Linux's limit (IFNAMSIZ - 1). The character set is the
// portable subset every tool (ip, ethtool, udev) accepts; Linux allows more,
// but names with ':', '/', '@', spaces or quotes only cause trouble.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>

#include "core/buffer_pool.h"
#include "core/command.h"
#include "ports/port.h"

namespace vpc {

enum class PortBackend : uint8_t { kAfPacket, kTap, kAfXdp, kNetmap, kVale, kVhostUser };
const char* backend_name(PortBackend b);

struct PortSpec {
  PortBackend backend = PortBackend::kAfPacket;
  std::string ifname;     // interface name; for VALE the port name ("p1"); for vhostuser the socket path
  std::string vale;       // VALE switch name ("vale0"); empty otherwise
  int queue = -1;         // "@k"; -1: every queue
  bool host_rings = false;  // netmap "^"
  std::string canonical;  // the spec re-written in canonical form
};

constexpr size_t kIfNameMax = 15;

// Parses `text`. On failure returns false and sets *err to a message that
// says what is wrong and how to write it instead.
bool parse_port_spec(std::string_view text, PortSpec* out, std::string* err);
// Checks an interface (or VALE port) name against the grammar above.
bool valid_ifname(std::string_view name, const char* what, std::string* err);

// Per-port settings from the control plane; 0 means "backend default".
struct KernelPortOptions {
  uint32_t rx_ring = 0;  // frames (afpacket) or slots (netmap, afxdp); power of two
  uint32_t tx_ring = 0;
  uint32_t burst = 0;    // most frames one rx_burst returns (<= kMaxBurst)
  // tap: IFF_MULTI_QUEUE queues (fds), 1..16. afxdp: sockets from the spec's
  // queue; 0 = every rx queue (one with "@q"), what the TypeScript API sends
  // when `queues` is unset; this default of 1 opens the first queue only.
  uint32_t queues = 1;
  // Turn GRO/LRO/GSO/TSO/tx-csum off on the interface while attached. afxdp
  // needs it (AF_XDP carries no offload state, so the TypeScript default is
  // true there); afpacket and tap carry the state (virtio-net headers) and
  // leave the interface as it is unless asked.
  bool offloads_off = false;
  bool promisc = true;       // afpacket: PACKET_MR_PROMISC
  bool persistent = false;   // tap: a tap the switch creates outlives the port (TUNSETPERSIST)
  bool kernel_path = true;   // afpacket: the kernel fast path (docs/design/kernel-path.md)
  // afpacket uplinks: the kernel path's XDP stage, while the interface's GRO
  // is on; auto leaves veth and virtio_net interfaces alone (AfPacketPort::xdp_unwanted).
  enum class XdpDecap : uint8_t { kAuto, kOn, kOff } xdp_decap = XdpDecap::kAuto;
  // afxdp: which XDP hook and which copy mode; auto tries native XDP then
  // generic, zero-copy then copy.
  enum class XdpMode : uint8_t { kAuto, kNative, kGeneric } xdp_mode = XdpMode::kAuto;
  // The port is a VXLAN uplink (createUplink), not a guest's: afxdp's auto
  // mode then means native XDP on a veth too (ports/afxdp.cc says why).
  bool underlay = false;
  enum class ZeroCopy : uint8_t { kAuto, kOn, kOff } zero_copy = ZeroCopy::kAuto;
  // tap: batch reads and writes through io_uring; auto falls back to one
  // read()/write() per frame where io_uring is missing or forbidden.
  enum class IoUring : uint8_t { kAuto, kOn, kOff } io_uring = IoUring::kAuto;
  // vhostuser: connect to the front end's socket (it listens) instead of
  // listening on it; `queues` is the most queue pairs offered (0: 1).
  bool vhost_client = false;
  // afpacket, afxdp: an interface that does not exist yet is waited for (the
  // port is made down and comes up when the interface appears, as after it
  // disappeared) instead of refused with kNotFound. For a port restored from
  // vpcd's state or applied from a configuration: a VM's tap or a
  // container's veth comes and goes with its guest.
  bool wait_for_interface = false;
};

struct VhostStatus;  // ports/vhost_user.h

// What a backend reports about itself, readable from any thread. The engine
// owns the port; the addon keeps this block by port id so that `details`
// can be shown without stopping the engine.
struct PortStatus {
#define VPC_KPORT_COUNTERS(X)                                                        \
  X(rx_too_big, "Frames dropped because they do not fit a buffer or a ring slot (never truncated)") \
  X(rx_no_buffer, "Frames dropped because the buffer pool was empty")                \
  X(rx_kernel_drops, "Frames the kernel dropped because the receive ring was full")  \
  X(rx_csum_completed, "Frames whose partial (offloaded) checksum was completed in software") \
  X(rx_offload, "Frames received with offload state (checksum-partial or TSO/GSO), kept beside the frame") \
  X(rx_super, "Frames received larger than a regular buffer (TSO/GSO super-frames), held in large buffers") \
  X(rx_gro, "TCP segments received one by one and coalesced into super-frames (GRO; afxdp)") \
  X(rx_udp_gso_lost, "UDP GSO batches (a sender's UDP_SEGMENT sends) that XDP handed over whole without their segment size: they cannot be cut as the sender meant and are dropped as oversize (afxdp; native XDP or an afpacket port takes them)") \
  X(rx_bad_vnet, "Frames dropped because their virtio-net header was invalid or asked for an offload the switch does not do (UFO)") \
  X(tx_offload, "Frames transmitted with offload state in their virtio-net header") \
  X(tx_super, "Frames transmitted through the port's packet socket for large or offloaded frames (larger than a ring slot, or with TSO state: one sendmmsg per run of them)") \
  X(tx_too_big, "Frames dropped because they do not fit a transmit slot")            \
  X(tx_errors, "Transmit system calls that failed")                                  \
  X(kicks, "Transmit kicks (one system call per transmitted batch)")                 \
  X(reopens, "Times the backend re-opened its interface after losing it")
#define VPC_ROW(name, help) name,
  enum Counter : uint16_t { VPC_KPORT_COUNTERS(VPC_ROW) kCount };
#undef VPC_ROW
  static const char* const kNames[kCount];
  static const char* const kHelp[kCount];

  // Fixed after open (written before the port is handed to the engine).
  std::string backend;
  std::string spec;
  std::string ifname;
  uint32_t rx_ring = 0, tx_ring = 0, frame_size = 0, burst = 0, queues = 1;

  // Frames received per queue (multi-queue backends; queue k of the port, not
  // the interface's queue id). Only the first `queues` entries are reported.
  static constexpr uint32_t kMaxQueues = 16;
  std::atomic<uint64_t> queue_rx[kMaxQueues] = {};

  std::atomic<uint64_t> c[kCount] = {};
  std::atomic<int32_t> ifindex{0};
  std::atomic<bool> attached{false};  // backend currently holds the interface
  std::atomic<uint64_t> mac{0};       // the interface's MAC (afpacket, afxdp; 0: not seen yet)
  // vhost-user ports: negotiated features, queues, memory regions, per-queue
  // counters (ports/vhost_user.h); null for every other backend.
  std::shared_ptr<VhostStatus> vhost;

  void add(Counter k, uint64_t n = 1) { c[k].fetch_add(n, std::memory_order_relaxed); }
  void set_error(std::string e);
  std::string error() const;
  void set_offloads(std::string o);  // what was done about offloads, human readable
  std::string offloads() const;
  void set_io(std::string o);  // how frames cross the kernel boundary, human readable
  std::string io() const;
  void set_kernel_path(std::string k);  // the kernel fast path: on, or off and why
  // An attached interface's flags: why its link is down (administratively
  // down, no carrier) in lastError, or that said no more once it is up.
  void set_link_reason(const std::string& ifname, unsigned flags);
  std::string kernel_path() const;

 private:
  mutable std::mutex mu_;
  std::string last_error_;
  std::string offloads_;
  std::string io_;
  std::string kernel_path_ = "off: not this backend (afpacket ports only)";
};

// An opening failure: `status` is kInvalidArgument, kNotFound, kInUse or
// kSystem, and the message says what to do.
struct PortError : std::runtime_error {
  PortError(Status s, const std::string& m) : std::runtime_error(m), status(s) {}
  Status status;
};

// Opens the backend a spec names. Runs on the control thread (never the
// engine's); throws PortError. `status` is filled in and shared with the port.
std::unique_ptr<Port> open_port(const PortSpec& spec, const KernelPortOptions& opts,
                                std::shared_ptr<BufferPool> pool, std::shared_ptr<PortStatus> status);

}  // namespace vpc
