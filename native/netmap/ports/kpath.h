// The kernel fast path, Linux side: the BPF programs of ports/kpath.bpf.c,
// their maps, and how a port backend hooks them to its interface and socket.
// What goes into the maps, and when, is the bridge's business
// (bridge/kpath_keeper.h); design and measurements: docs/design/kernel-path.md.
//
// One KernelPath per engine (its maps hold that engine's port and switch ids).
// Every call is a bpf(2) system call: the engine makes them between bursts,
// never per frame. Built only with clang and libbpf (VPC_HAVE_KPATH); without
// them load() says so and nothing else is ever called.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "core/types.h"
#include "ports/port.h"

struct bpf_object;  // libbpf

namespace vpc {

// Mirrors struct kp_port of kpath.bpf.c.
struct KpathPort {
  uint32_t ifindex = 0;
  uint32_t sw = 0;
  uint32_t mtu = 0;
  uint32_t on = 0;
  uint32_t uplink = 0;  // the VXLAN uplink (sw unused)
  uint32_t peer = 0;    // decapsulated frames enter the guest's end of the veth directly (Port::kernel_peer_ingress)
  uint32_t merge = 0;   // the uplink: its GRO stage's sending end (Port::kernel_gro_stage), 0 for none
  bool operator==(const KpathPort&) const = default;
};

// Mirrors struct kp_global: the capture switch and this host's VTEP.
struct KpathGlobal {
  uint32_t on = 0;
  uint32_t uplink = 0;    // the uplink's port id
  uint32_t ip4 = 0;       // our VTEP address, as on the wire (0: none, no decapsulation)
  uint32_t udp_port = 0;  // the VXLAN UDP port
  uint8_t mac[6] = {};    // the uplink's MAC
  uint16_t xdp = 0;       // kp_xdp sets it once it decapsulates; written 0 here
  uint8_t ip6[16] = {};   // our IPv6 VTEP address (all zeros: none)
  bool operator==(const KpathGlobal&) const = default;
};

// Mirrors struct kp_remote: one remote member (a VTEP in one switch), what
// encapsulation towards it needs (overlay/kpath.cc builds it).
struct KpathRemote {
  uint8_t hdr[50] = {};  // outer Ethernet, IPv4, UDP, VXLAN with the VNI; lengths, id, checksum, source port zero
  uint16_t sport_min = 0;
  uint32_t sport_span = 1;
  uint32_t sum = 0;      // the IPv4 header's ones'-complement sum (big-endian words), unfolded
  uint32_t sw = 0;
  uint32_t ifindex = 0;  // the uplink's interface
  uint32_t mtu = 0;      // the overlay's inner MTU (L3 bytes)
  uint32_t on = 0;
  uint32_t peer_ip4 = 0;  // as on the wire
  uint32_t df = 0;
  bool operator==(const KpathRemote&) const = default;
};
static_assert(sizeof(KpathRemote) == 84, "the layout of struct kp_remote");

// The kernel's counters of a port or a remote member. errors: frames the
// kernel took but could not rewrite (out of memory), dropped.
struct KpathStats {
  uint64_t rx_packets = 0, rx_bytes = 0, tx_packets = 0, tx_bytes = 0, errors = 0;
};

// kp_fdb's destination for a remote member: this bit and the member's id.
constexpr uint32_t kKpathRemote = 0x80000000u;

class KernelPath {
 public:
  // Loads the programs with maps for port ids below max_ports, switch ids
  // below max_switches and up to max_entries MAC entries. nullptr, with the
  // reason in *why, where the kernel or the build cannot (no BPF, no
  // CAP_BPF/CAP_NET_ADMIN, not built in).
  // max_remotes: remote members (VTEP in a switch) the kernel may encapsulate to.
  static std::unique_ptr<KernelPath> load(uint32_t max_ports, uint32_t max_switches, uint32_t max_entries,
                                          uint32_t max_remotes, std::string* why);
  ~KernelPath();
  KernelPath(const KernelPath&) = delete;
  KernelPath& operator=(const KernelPath&) = delete;

  int tc_prog() const { return tc_prog_; }
  int sock_prog() const { return sock_prog_; }
  int xdp_prog() const { return xdp_prog_; }
  KpathProgs progs() const { return {tc_prog_, sock_prog_, xdp_prog_, xdp_refused_}; }
  int map_fd(const char* name) const;  // test seam: a map of the object by name (-1: none)

  // Each returns false when the kernel refused (the map is full, say).
  bool set_global(const KpathGlobal& g);
  bool set_port(uint32_t port, const KpathPort& p);
  bool set_ifindex(int ifindex, uint32_t port);
  bool clear_ifindex(int ifindex);
  bool set_gen(uint32_t sw, uint32_t gen);
  bool set_entry(uint32_t sw, Mac mac, uint32_t port, uint32_t gen);
  bool erase_entry(uint32_t sw, Mac mac);
  // The kernel's stamp (CLOCK_MONOTONIC ns) of the last frame from `mac`
  // it switched; false if the entry is gone.
  bool last_use_ns(uint32_t sw, Mac mac, uint64_t* ns);
  // The port's counters summed over every CPU.
  KpathStats stats(uint32_t port);
  // Zeroes a port's counters (a port id is reused after a delete).
  void clear_stats(uint32_t port);
  // VXLAN: a VNI's switch, and the remote members. set_remote gives a new
  // member zeroed counters; erase_remote drops them with it.
  bool set_vni(uint32_t vni, uint32_t sw);
  bool erase_vni(uint32_t vni);
  bool set_remote(uint32_t member, const KpathRemote& r);
  void erase_remote(uint32_t member);
  KpathStats remote_stats(uint32_t member);

 private:
  KernelPath() = default;
  ::bpf_object* obj_ = nullptr;
  int tc_prog_ = -1, sock_prog_ = -1, xdp_prog_ = -1;
  bool xdp_refused_ = false;  // this kernel would not load kp_xdp: no XDP stage
  KpathStats sum_stats(int map, uint32_t key);
  int ports_ = -1, ifx_ = -1, fdb_ = -1, gen_ = -1, stats_ = -1, global_ = -1;
  int vni_ = -1, remote_ = -1, rstats_ = -1;
  int ncpu_ = 1;
};

// A port backend's hooks. attach_socket puts the filter on its packet
// socket (closing the socket removes it). attach_tc links the TC program to
// the interface's ingress with a TCX link (Linux 6.6): the link is a
// descriptor of this process, so the program leaves the interface when the
// port detaches, or when the process ends, even by a crash. Other programs
// and filters on the interface stay as they are.
//
// The uplink's interface also gets the XDP program, in the driver's own mode
// (a generic-mode program would turn the interface's GRO off, which is what
// it is for), through a link too. Where it cannot (no native XDP in the
// driver, another XDP program there), TC ingress decapsulates as before;
// xdp_why says why.
//
// The uplink's GRO stage (docs/design/kernel-path.md#gro-stage): a veth pair
// of the engine's, vpcgro<uplink ifindex>a and ...b, where `a` has TSO off
// and `b` GRO on (so `a`'s frames reach `b` through the veth's NAPI and its
// GRO), and the TC program on b's ingress. kp_tc sends the plain frames it
// decapsulates through it, so a flow's packets reach the guest merged, as
// Linux's vxlan device merges them (gro_cells). kpath_attach_gro makes it
// (a pair left by a process that was killed goes first); kpath_detach_tc
// deletes it. gro_why says why there is none.
struct KpathHook {
  int link_fd = -1;
  int xdp_fd = -1;
  std::string xdp_why;
  int gro_tx = 0, gro_rx = 0;  // the stage's ends (ifindex; 0: none)
  int gro_link_fd = -1;
  std::string gro_name;  // its sending end's name ("": none)
  std::string gro_why;
};
bool kpath_attach_socket(int fd, int prog_fd, std::string* why);
bool kpath_attach_tc(int ifindex, int prog_fd, KpathHook* h, std::string* why);
bool kpath_attach_xdp(int ifindex, int prog_fd, KpathHook* h);
bool kpath_attach_gro(int uplink_ifindex, int prog_fd, KpathHook* h);
// The stage's receiving end's name ("": none).
inline std::string kpath_gro_rx_name(const KpathHook& h) {
  return h.gro_name.empty() ? std::string() : h.gro_name.substr(0, h.gro_name.size() - 1) + "b";
}
void kpath_detach_gro(KpathHook* h);  // the GRO stage alone
void kpath_detach_tc(KpathHook* h);   // every link, and the GRO stage

}  // namespace vpc
