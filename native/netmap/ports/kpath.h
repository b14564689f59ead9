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

struct bpf_object;  // libbpf

namespace vpc {

// Mirrors struct kp_port of kpath.bpf.c.
struct KpathPort {
  uint32_t ifindex = 0;
  uint32_t sw = 0;
  uint32_t mtu = 0;
  uint32_t on = 0;
};

struct KpathStats {
  uint64_t rx_packets = 0, rx_bytes = 0, tx_packets = 0, tx_bytes = 0;
};

class KernelPath {
 public:
  // Loads the programs with maps for port ids below max_ports, switch ids
  // below max_switches and up to max_entries MAC entries. nullptr, with the
  // reason in *why, where the kernel or the build cannot (no BPF, no
  // CAP_BPF/CAP_NET_ADMIN, not built in).
  static std::unique_ptr<KernelPath> load(uint32_t max_ports, uint32_t max_switches, uint32_t max_entries,
                                          std::string* why);
  ~KernelPath();
  KernelPath(const KernelPath&) = delete;
  KernelPath& operator=(const KernelPath&) = delete;

  int tc_prog() const { return tc_prog_; }
  int sock_prog() const { return sock_prog_; }

  // Each returns false when the kernel refused (the map is full, say).
  bool set_on(bool on);
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

 private:
  KernelPath() = default;
  ::bpf_object* obj_ = nullptr;
  int tc_prog_ = -1, sock_prog_ = -1;
  int ports_ = -1, ifx_ = -1, fdb_ = -1, gen_ = -1, stats_ = -1, global_ = -1;
  int ncpu_ = 1;
};

// A port backend's hooks. attach_socket puts the filter on its packet
// socket (closing the socket removes it). attach_tc links the TC program to
// the interface's ingress with a TCX link (Linux 6.6): the link is a
// descriptor of this process, so the program leaves the interface when the
// port detaches, or when the process ends, even by a crash. Other programs
// and filters on the interface stay as they are.
struct KpathHook {
  int link_fd = -1;
};
bool kpath_attach_socket(int fd, int prog_fd, std::string* why);
bool kpath_attach_tc(int ifindex, int prog_fd, KpathHook* h, std::string* why);
void kpath_detach_tc(KpathHook* h);

}  // namespace vpc
