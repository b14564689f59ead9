// Commands from the control plane to the engine, their results, and the
// events the engine reports back.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/types.h"
#include "ports/port.h"

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

struct VlanMapping {
  uint16_t vlan;
  SwitchId sw;
};

struct FdbDumpEntry {
  Mac mac;
  PortId port;
  uint16_t vlan;
  bool is_static;
  uint32_t age_ms;
};

struct Result {
  Status status = Status::kOk;
  std::string message;
  uint32_t id = kNoId;
  uint32_t removed = 0;
  std::vector<FdbDumpEntry> entries;
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
  kBarrier,  // does nothing; resolves once every earlier command is live
};

struct Command {
  CmdOp op = CmdOp::kBarrier;
  SwitchId sw = kNoId;
  PortId port = kNoId;
  Mac mac = 0;
  SwitchConfig switch_cfg;
  PortConfig port_cfg;
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
  PortId port;
  PortId old_port;    // kMoved
  Mac mac;
};

}  // namespace vpc
