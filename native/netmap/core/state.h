// The engine's tables: switches, ports and the members that join them.
// Owned and written by the engine thread only (see engine.h).
#pragma once

#include <memory>
#include <vector>

#include "core/command.h"
#include "core/counters.h"
#include "tables/fdb.h"

namespace vpc {

// One (port, VLAN) attachment to a switch. The FDB maps a MAC to a member, so
// a single lookup yields the egress port and the tag to push (vlan 0: none).
// Member ids stay below the special destinations of stages/forward.cc
// (0xFFFC..0xFFFF: flood kinds and drop).
constexpr uint32_t kMaxMembers = 0xFFFC;

struct Member {
  PortId port = kNoId;
  SwitchId sw = kNoId;
  uint16_t vlan = 0;
  bool in_use = false;
};

struct SwitchState {
  bool in_use = false;
  SwitchConfig cfg;
  Fdb fdb;
  std::vector<MemberId> members;  // flood list, in attach order
  uint32_t static_entries = 0;
  // Bumped whenever an entry is removed or changes port, so per-port
  // last-source caches know to look again.
  uint32_t generation = 0;
  bool full_reported = false;  // one table_full event per episode
  SwitchCounterBlock* counters = nullptr;
};

constexpr uint16_t kTxQueueLen = 512;

struct PortState {
  bool in_use = false;
  std::unique_ptr<Port> port;
  PortConfig cfg;
  uint32_t max_len = 0;  // largest untagged frame accepted: mtu + 14
  MemberId untagged = kNoMember;
  std::unique_ptr<MemberId[]> vlan_map;  // 4096 entries, trunks only
  std::vector<MemberId> members;         // every member of this port
  bool up = true;
  bool limit_reported = false;
  uint32_t learned = 0;  // learned FDB entries pointing at this port

  // Last-source cache (the VALE trick): a port usually sends from one MAC,
  // so when the source, member and switch generation match and the entry
  // was refreshed recently, learning is skipped.
  Mac cache_src = 0;
  MemberId cache_member = kNoMember;
  uint32_t cache_gen = 0;
  uint32_t cache_ms = 0;

  // Frames staged for transmission, flushed once per iteration (or when full).
  uint16_t txn = 0;
  bool tx_dirty = false;
  Pkt txq[kTxQueueLen];

  PortCounterBlock* counters = nullptr;
};

}  // namespace vpc
