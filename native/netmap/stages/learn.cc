// Stage 2, learn: port security and source-MAC learning.
//
// Learning is kept apart from forwarding (as in VPP's l2-learn) because it has
// its own policy: per-port and per-switch limits, static entries that learning
// may never overwrite, move detection. Its fast path is the per-port
// last-source cache: a port that keeps sending from the MAC it sent from last
// costs one comparison per frame, and a table lookup once a second to keep
// the entry's age fresh.
#include <algorithm>

#include "core/engine.h"
#include "stages/learn.h"

namespace vpc {

// Slow path: the caller already checked learn_cache_hit().
bool Engine::learn(PortState& in, MemberId mid, Mac src, Drop* why) {
  const Member& mem = members_[mid];
  SwitchState& sw = switches_[mem.sw];

  if (mac_is_multicast(src)) {
    *why = Drop::src_mac_multicast;
    return false;
  }
  if (src == 0) {
    *why = Drop::src_mac_zero;
    return false;
  }
  if (!in.cfg.locked_macs.empty() &&
      !std::binary_search(in.cfg.locked_macs.begin(), in.cfg.locked_macs.end(), src)) {
    *why = Drop::port_security;
    return false;
  }

  FdbEntry* e = sw.fdb.find(src);
  if (e) {
    if (e->member != mid) {
      if (e->flags & kFdbStatic) {
        *why = Drop::static_mac_conflict;
        return false;
      }
      if (!in.cfg.learning || !sw.cfg.learning) {
        // Not allowed to learn here: forward, but leave the entry alone.
        in.cache_member = kNoMember;
        return true;
      }
      // A move: the host is now behind this port (VM migration, cable move).
      const Member& old = members_[e->member];
      PortState& op = ports_[old.port];
      if (op.learned) op.learned--;
      op.counters->set(PortCounter::fdb_learned, op.learned);
      Event ev{};
      ev.type = EventType::kMoved;
      ev.sw = mem.sw;
      ev.mac = src;
      ev.port = mem.port;
      ev.vlan = mem.vlan;
      ev.old_port = old.port;
      ev.old_vlan = old.vlan;
      emit(ev);
      e->member = mid;
      in.learned++;
      in.counters->set(PortCounter::fdb_learned, in.learned);
      sw.counters->add(SwitchCounter::moved, 1);
      sw.generation++;
    }
    // Aging works in seconds: refreshing a fresh entry would only dirty a
    // cache line per frame, which at a million MACs doubles memory traffic.
    if (now_ms_ - e->last_seen_ms >= kLearnRefreshMs) e->last_seen_ms = now_ms_;
  } else if (in.cfg.learning && sw.cfg.learning) {
    if (sw.fdb.size() >= sw.cfg.mac_limit) {
      // Full: stop learning, keep forwarding (unknown destinations flood).
      sw.counters->add(SwitchCounter::learn_table_full, 1);
      if (!sw.full_reported) {
        sw.full_reported = true;
        Event ev{};
        ev.type = EventType::kTableFull;
        ev.sw = mem.sw;
        ev.port = mem.port;
        ev.old_port = kNoId;
        ev.mac = src;
        emit(ev);
      }
      in.cache_member = kNoMember;
      return true;
    }
    if (in.cfg.mac_limit && in.learned >= in.cfg.mac_limit) {
      sw.counters->add(SwitchCounter::learn_port_limit, 1);
      if (!in.limit_reported) {
        in.limit_reported = true;
        Event ev{};
        ev.type = EventType::kPortLimit;
        ev.sw = mem.sw;
        ev.port = mem.port;
        ev.vlan = mem.vlan;
        ev.old_port = kNoId;
        ev.mac = src;
        emit(ev);
      }
      in.cache_member = kNoMember;
      return true;
    }
    auto ins = sw.fdb.insert(src, mid, 0, now_ms_);
    if (!ins.entry) {  // could not grow: treat as full
      sw.counters->add(SwitchCounter::learn_table_full, 1);
      in.cache_member = kNoMember;
      return true;
    }
    in.learned++;
    in.counters->set(PortCounter::fdb_learned, in.learned);
    sw.counters->add(SwitchCounter::learned, 1);
    sw.counters->set(SwitchCounter::fdb_entries, sw.fdb.size());
    Event ev{};
    ev.type = EventType::kLearned;
    ev.sw = mem.sw;
    ev.mac = src;
    ev.port = mem.port;
    ev.vlan = mem.vlan;
    ev.old_port = kNoId;
    emit(ev);
  }
  in.cache_src = src;
  in.cache_member = mid;
  in.cache_gen = sw.generation;
  in.cache_ms = now_ms_;
  return true;
}

}  // namespace vpc
