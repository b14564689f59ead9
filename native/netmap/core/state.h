// The core's table: ports, with their staged tx queue. Owned and written by
// the engine thread only (see engine.h). A port's switch memberships and
// learning state are the bridge's (bridge/state.h: BridgePort).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "core/command.h"
#include "core/counters.h"
#include "ports/port.h"

namespace vpc {

// A token bucket for ICMP too-big answers (Core::too_big_reply), one per
// switch: a tenant that sends floods of oversized frames uses up its own
// answers, not another tenant's. In thousandths of a token; starts full.
struct TooBigBucket {
  uint64_t tokens = UINT64_MAX;  // full: clamped to the capacity at first use
  uint32_t ms = 0;               // when it was last filled
};

constexpr uint16_t kTxQueueLen = 512;

struct PortState {
  bool in_use = false;
  std::unique_ptr<Port> port;
  PortConfig cfg;
  uint32_t max_len = 0;  // largest untagged frame accepted: mtu + 14
  bool up = true;
  bool is_uplink = false;
  uint32_t tx_limit = 0;  // Port::tx_frame_limit(), refreshed with the link state
  // The largest L3 packet both the port's MTU and its interface take.
  uint32_t l3_mtu() const {
    return tx_limit && tx_limit - kEthHeaderLen < cfg.mtu ? tx_limit - kEthHeaderLen : cfg.mtu;
  }
  // What the backend takes as it is on transmit (ports/port.h), read once
  // when the port is attached.
  bool tx_large = true;
  bool tx_counted_by_port = false;  // Port::count_tx(): the backend counts what tx_burst takes
  uint32_t tx_offloads = 0;
  uint32_t tx_max_frame = 65535;
  // Link checks (Core::link_slices): the interface whose kernel link
  // messages name this port (0: none, the port is polled) and how often the
  // port is checked meanwhile (Port::WatchKey), when it was last checked,
  // and whether a message asked for a check.
  int watch_ifindex = 0;
  int watch_nsid = -1;
  uint32_t watch_recheck_ms = 0;
  uint32_t link_checked_ms = 0;
  bool link_dirty = false;
  bool polled = false;  // its poll_fd() is in the sleep's epoll set
  // Frames staged for transmission, flushed once per iteration (or when full).
  uint16_t txn = 0;
  bool tx_dirty = false;
  Pkt txq[kTxQueueLen];

  PortCounterBlock* counters = nullptr;
};

}  // namespace vpc
