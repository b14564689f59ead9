// The bridge's side of the kernel fast path (docs/design/kernel-path.md):
// what the BPF programs of ports/kpath.bpf.c may know of the bridge's tables.
//
// The engine stays the only writer of the FDB. The kernel gets a mirror of
// the entries it has used, written by the engine thread between bursts:
//   - when the engine forwards a known-unicast frame from one kernel-path
//     port to another (both access ports of one switch), it notes the
//     source and destination entries; sync() writes them, stamped with the
//     switch's generation;
//   - the generation changes whenever an entry is removed or moves
//     (SwitchState::generation), and sync() writes it too: every entry of
//     the switch is then void in the kernel until the engine sees the next
//     frame of each flow and notes it again. No removal is ever missed;
//   - ports: interface, switch, MTU and link state, re-read every
//     housekeeping tick; the whole path is off while a capture or trace runs
//     (they must see every frame);
//   - counters: what the kernel switched is added to the ports' and
//     switches' counters every tick (and counted apart in rx/tx_kernel_path);
//   - VXLAN (IPv4 underlay): with the programs hooked to the uplink too, a
//     remote member's entries are written with kKpathRemote | its member id,
//     and the member's outer headers (the overlay builds them, overlay/
//     kpath.cc) go to kp_remote; frames from a kernel-path port to it are
//     encapsulated in the kernel, VXLAN packets from its VTEP to a
//     kernel-path port decapsulated. The records are rebuilt every tick (the
//     next hop's MAC, its reachability, the uplink), and leave with the
//     member;
//   - aging: a MAC the kernel keeps switching would age out of the FDB, since
//     the engine no longer sees its frames; once a second (or every quarter
//     of the shortest aging time, if shorter), an entry past half its aging
//     time takes the kernel's last-use stamp as a refresh.
// Everything here runs on the engine thread, in commands, between bursts and
// in housekeeping; only note() looks at frames, once per burst from a
// kernel-path port, and only at frames the kernel did not take.
#pragma once

#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "core/types.h"
#include "ports/kpath.h"

namespace vpc {

struct KpathState {
  struct PortRec {
    bool attached = false;  // its backend hooked the programs to its interface
    bool uplink = false;    // the VXLAN uplink
    SwitchId sw = kNoId;
    MemberId member = kNoMember;
    KpathPort pushed;        // what kp_ports holds for it
    int gro_rx = 0;          // the uplink: its GRO stage's receiving end, in kp_ifx as this port
    uint64_t gro_lost = 0;   // the uplink: Port::kernel_gro_lost() already counted
    KpathStats seen;         // the kernel's counters already added to the port's
  };
  struct Key {
    SwitchId sw;
    Mac mac;
    bool operator==(const Key& o) const { return sw == o.sw && mac == o.mac; }
  };
  struct KeyHash {
    size_t operator()(const Key& k) const { return size_t((k.mac * 0x9E3779B97F4A7C15ull) ^ k.sw); }
  };
  struct Installed {
    uint32_t port;  // a port id, or kKpathRemote | a remote member id
    uint32_t gen;
    uint64_t last_ns;  // the kernel's stamp when last read
  };
  struct Pending {
    Key key;
    uint32_t port;  // as Installed::port
    uint32_t gen;  // the switch's generation when the engine used the entry
  };

  std::unique_ptr<KernelPath> kp;
  std::string why;  // why kp is null, once loading was tried
  bool tried = false;
  bool preloaded = false;  // kp (or why) came from a submitter's preload
  uint32_t engine_hooks = 0;  // ports the engine thread hooked itself (the others: their submitters)
  KpathGlobal global;  // what kp_global holds (on: no capture or trace runs)
  PortId uplink = kNoId;  // the uplink, when the programs are hooked to it
  struct RemoteRec {
    KpathRemote pushed;
    KpathStats seen;  // the kernel's counters already added to the member's
  };
  std::unordered_map<MemberId, RemoteRec> remotes;  // what kp_remote holds
  std::unordered_map<uint32_t, SwitchId> vnis;      // what kp_vni holds: a VNI's switch
  uint32_t ticks = 0;                               // kpath_tick calls
  uint32_t refused_tick = 0;                        // when `refused` was filled
  std::unordered_set<MemberId> refused;             // remote members refused since
  std::vector<PortRec> ports;  // by PortId
  std::vector<PortId> active;  // ports with the programs attached
  std::unordered_map<Key, Installed, KeyHash> installed;  // what kp_fdb holds
  std::unordered_map<SwitchId, uint32_t> gens;            // what kp_gen holds
  std::vector<Pending> pending;                           // noted since the last sync
  uint32_t last_pass_ms = 0;  // kpath_tick's last pass over `installed`
};

// Room for MAC entries in the kernel's table (kp_fdb). When it is full, new
// entries are not written and their frames keep going through the engine.
constexpr uint32_t kKpathMaxEntries = 65536;
// Room for remote members (a VTEP in a switch) in kp_remote; beyond it, the
// frames of further members go through the engine.
constexpr uint32_t kKpathMaxRemotes = 4096;

// The BPF object loaded on a submitter's thread (Bridge::kpath_preload) and
// handed to the engine with the command that first wants it: loading takes
// tens of milliseconds (the verifier), which the engine thread must not
// spend between bursts.
struct KpathPreload {
  std::unique_ptr<KernelPath> kp;
  std::string why;  // why kp is null
};

}  // namespace vpc
