// Commands from the control plane to the engine, their results, and the
// events the engine reports back.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/types.h"
#include "ports/port.h"
#include "proto/inet.h"

namespace vpc {

enum class Status : uint8_t {
  kOk = 0,
  kInvalidArgument,
  kNotFound,
  kAlreadyExists,
  kLimitExceeded,
  kInUse,
  kClosed,
  kSystem,
  kInternal,
};
const char* status_code(Status s);  // "INVALID_ARGUMENT", ...

struct SwitchConfig {
  uint32_t vni = 0;              // 1..16777215
  uint32_t mac_limit = 65536;    // learned + static entries
  uint32_t aging_ms = 300000;
  bool learning = true;
  bool remote_learning = true;   // learn inner source MACs behind remote VTEPs
  // Accept VXLAN for this VNI from VTEPs that are not its configured peers
  // (each becomes a learned VTEP, up to EngineOptions::max_learned_vteps).
  // Off: only the switch's own peers (RFC 7348 section 7: a VNI should not
  // take frames from any host that can reach the VTEP's UDP port).
  bool allow_unknown_peers = false;
  uint32_t fdb_capacity = 1024;  // initial table size hint
};

struct PortConfig {
  uint32_t mtu = 1500;
  Mac mac = 0;
  bool learning = true;
  bool flood = true;            // false: no unknown-unicast or multicast floods (broadcast still)
  uint32_t mac_limit = 0;       // 0: no per-port limit
  std::vector<Mac> locked_macs;  // empty: port security off
};

// The underlay side of the VTEP (one per engine).
struct UplinkConfig {
  IpAddr ip4;             // zero: no IPv4 VTEP address
  uint8_t prefix4 = 24;   // on-link prefix of ip4
  IpAddr ip6;             // zero: no IPv6 VTEP address
  uint8_t prefix6 = 64;
  IpAddr gateway4;        // zero: none (off-link peers unreachable)
  IpAddr gateway6;
  uint16_t udp_port = 4789;
  uint16_t src_port_min = 49152;  // outer UDP source port range (flow hash)
  uint16_t src_port_max = 65535;
  uint8_t ttl = 64;       // IPv4 TTL / IPv6 hop limit
  bool df = true;         // IPv4 don't-fragment
  bool udp6_zero_checksum = false;  // RFC 6935: send and accept zero UDP checksums over IPv6
  // false: no switch accepts VXLAN from VTEPs that are not its peers, whatever
  // the switches' own allow_unknown_peers says (a host-wide off switch).
  bool allow_unknown_peers = true;
  uint32_t neighbor_reachable_ms = 30000;
  uint32_t neighbor_retry_ms = 1000;
};

struct VlanMapping {
  uint16_t vlan;
  SwitchId sw;
};

struct FdbDumpEntry {
  Mac mac;
  PortId port;     // for remote entries: the uplink's port
  uint16_t vlan;
  bool is_static;
  uint32_t age_ms;
  bool remote = false;
  IpAddr vtep;     // remote entries: the VTEP behind which the MAC lives
  bool evpn = false;  // installed by EVPN (kFdbEvpn)
};

struct NeighborDumpEntry {
  IpAddr ip;
  Mac mac;
  const char* state;
  uint32_t age_ms;
};

struct Result {
  Status status = Status::kOk;
  std::string message;
  uint32_t id = kNoId;
  uint32_t removed = 0;
  Mac mac = 0;  // createUplink: the MAC the VTEP uses
  std::vector<FdbDumpEntry> entries;
  std::vector<NeighborDumpEntry> neighbors;
  static Result error(Status s, std::string msg) {
    Result r;
    r.status = s;
    r.message = std::move(msg);
    return r;
  }
  bool ok() const { return status == Status::kOk; }
};

enum class CmdOp : uint8_t {
  kCreateSwitch,
  kSetSwitch,
  kDeleteSwitch,
  kCreatePort,
  kSetPort,
  kDeletePort,
  kAddStaticMac,
  kDeleteStaticMac,
  kDumpFdb,
  kFlushFdb,
  kCreateUplink,    // new_port + uplink_cfg
  kDeleteUplink,
  kAddPeer,         // sw + ip: the VTEP joins the switch's flood list
  kDeletePeer,
  kAddRemoteMac,    // sw + mac + ip: static MAC -> VTEP entry
  kDumpNeighbors,
  kBarrier,  // does nothing; resolves once every earlier command is live
};

struct Command {
  CmdOp op = CmdOp::kBarrier;
  SwitchId sw = kNoId;
  PortId port = kNoId;
  Mac mac = 0;
  SwitchConfig switch_cfg;
  PortConfig port_cfg;
  IpAddr ip;                         // peers, remote MACs
  bool evpn = false;                 // AddRemoteMac/DeleteStaticMac: the EVPN kind (kFdbEvpn)
  UplinkConfig uplink_cfg;
  SwitchId untagged = kNoId;         // CreatePort: switch for untagged frames
  std::vector<VlanMapping> vlans;    // CreatePort: trunk mappings
  std::unique_ptr<Port> new_port;    // CreatePort: opened outside the engine thread
  std::function<void(Result&&)> done;  // called exactly once, on the engine thread
                                       // (or on the caller's thread when the engine is stopped)
};

enum class EventType : uint8_t {
  kLearned = 0,
  kMoved = 1,
  kAged = 2,
  kTableFull = 3,
  kPortLimit = 4,
  kLink = 5,
};
constexpr uint32_t event_bit(EventType t) { return 1u << uint32_t(t); }
constexpr uint32_t kAllEvents = 0x3F;

struct Event {
  EventType type;
  uint8_t up;         // kLink
  uint16_t vlan;
  uint16_t old_vlan;  // kMoved
  SwitchId sw;
  PortId port;        // for MACs behind a remote VTEP: the uplink's port
  PortId old_port;    // kMoved
  Mac mac;
  IpAddr vtep;        // zero unless the MAC is behind a remote VTEP
  IpAddr old_vtep;    // kMoved
};

}  // namespace vpc
