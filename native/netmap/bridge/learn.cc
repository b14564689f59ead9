// Stage 2, learn: port security and source-MAC learning.
//
// Learning is kept apart from forwarding (as in VPP's l2-learn) because it has
// its own policy: per-source and per-switch limits, static entries that
// learning may never overwrite, move detection. A source is a local port or a
// remote VTEP (MACs learned from decapsulated frames): both go through here,
// so remote entries age, count against limits and move exactly like local
// ones. The fast path is the per-source last-source cache (bridge/learn.h).
#include <algorithm>

#include "bridge/bridge.h"
#include "bridge/learn.h"
#include "overlay/overlay.h"

namespace vpc {

// An event about `mac` on member `m`. MACs behind a remote VTEP are reported
// on the uplink's port, with the VTEP's address.
Event Bridge::mac_event(EventType t, SwitchId sw, const Member& m, Mac mac) const {
  Event ev{};
  ev.type = t;
  ev.sw = sw;
  ev.mac = mac;
  ev.port = m.port;
  ev.vlan = m.vlan;
  ev.old_port = kNoId;
  if (m.remote()) {
    ev.vtep = overlay_.peer_ip(m.vtep);
    ev.port = overlay_.uplink_port();
  }
  return ev;
}

// `mac` moved from member `old` to member `now` (of the same switch).
Event Bridge::moved_event(const Member& now, const Member& old, Mac mac) const {
  Event ev = mac_event(EventType::kMoved, now.sw, now, mac);
  ev.old_port = old.port;
  ev.old_vlan = old.vlan;
  if (old.remote()) {
    ev.old_vtep = overlay_.peer_ip(old.vtep);
    ev.old_port = overlay_.uplink_port();
  }
  return ev;
}

// The EVPN control plane put `e` behind a remote VTEP, and the MAC now speaks
// from a learning source here: it moved (RFC 7432 section 15). The entry
// becomes an ordinary learned one and the move is reported, so that the
// control plane advertises it with a higher sequence number. The VTEP, if
// nothing else refers to it any more, is released by the housekeeping.
void Bridge::learn_over_evpn(SwitchState& sw, FdbEntry& e, LearnSource& ls, MemberId mid) {
  core_.emit(moved_event(members_[mid], members_[e.member], e.mac));
  remove_entry_effects(sw, e);  // counted as static until now
  e.member = mid;
  e.flags = 0;
  e.last_seen_ms = core_.now_ms();
  ls.learned++;
  if (ls.learned_gauge) cnt_set(*ls.learned_gauge, ls.learned);
  sw.counters->add(SwitchCounter::moved, 1);
  sw.counters->set(SwitchCounter::fdb_static, sw.static_entries);
}

// The switch table is full and `ls` wants to learn a new MAC. When `ls` is
// below its fair share (the limit over the switch's sources), the source with
// the most learned entries, if above its share, gives up its oldest entry:
// one noisy port then cannot lock every other port out of learning until its
// entries age (as OVS does when its MAC table is full). A source at or over
// its share never evicts anyone. Runs only while the table is full and a
// well-behaved source meets a new MAC: two passes over the table.
bool Bridge::evict_for(SwitchState& sw, SwitchId s, const LearnSource& ls) {
  const uint32_t sources = std::max<uint32_t>(1, uint32_t(sw.members.size()));
  const uint32_t share = std::max<uint32_t>(1, sw.cfg.mac_limit / sources);
  if (ls.learned >= share) return false;
  LearnSource* victim = nullptr;
  for (MemberId m : sw.members) {
    LearnSource& cand = source_of(m);
    if (cand.learned > share && (!victim || cand.learned > victim->learned)) victim = &cand;
  }
  if (!victim) return false;
  const FdbEntry* oldest = nullptr;
  sw.fdb.for_each([&](const FdbEntry& e) {
    if ((e.flags & kFdbStatic) || &source_of(e.member) != victim) return;
    if (!oldest || int32_t(e.last_seen_ms - oldest->last_seen_ms) < 0) oldest = &e;
  });
  if (!oldest) return false;  // its entries are in other switches (a trunk)
  const FdbEntry gone = *oldest;
  core_.emit(mac_event(EventType::kAged, s, members_[gone.member], gone.mac));
  remove_entry_effects(sw, gone);
  sw.fdb.erase(gone.mac);
  sw.counters->add(SwitchCounter::evicted, 1);
  sw.counters->set(SwitchCounter::fdb_entries, sw.fdb.size());
  return sw.fdb.size() < sw.cfg.mac_limit;
}

// Slow path: the caller already checked learn_cache_hit().
bool Bridge::learn(LearnSource& ls, const std::vector<Mac>* locked, MemberId mid, Mac src, Drop* why) {
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
  if (locked && !locked->empty() && !std::binary_search(locked->begin(), locked->end(), src)) {
    *why = Drop::port_security;
    return false;
  }
  const bool may_learn = ls.learning && (mem.remote() ? sw.cfg.remote_learning : sw.cfg.learning);
  // The source is at its own MAC limit: count, report once per episode, and
  // forward without learning.
  auto refuse_port_limit = [&] {
    sw.counters->add(SwitchCounter::learn_port_limit, 1);
    if (!ls.limit_reported) {
      ls.limit_reported = true;
      core_.emit(mac_event(EventType::kPortLimit, mem.sw, mem, src));
    }
    ls.cache_member = kNoMember;
  };

  FdbEntry* e = sw.fdb.find(src);
  if (e) {
    if (e->member != mid && (e->flags & kFdbEvpn) && may_learn && !(ls.mac_limit && ls.learned >= ls.mac_limit))
      learn_over_evpn(sw, *e, ls, mid);  // now e->member == mid
    if (e->member != mid) {
      if (e->flags & kFdbStatic) {
        *why = Drop::static_mac_conflict;
        return false;
      }
      if (!may_learn) {
        // Not allowed to learn here: forward, but leave the entry alone.
        ls.cache_member = kNoMember;
        return true;
      }
      if (ls.mac_limit && ls.learned >= ls.mac_limit) {
        // A move counts against the new source's limit like a new MAC.
        refuse_port_limit();
        return true;
      }
      // A move: the host is now behind this source (VM migration, a cable
      // moved, a VM that now lives on another host).
      const Member& old = members_[e->member];
      LearnSource& ols = source_of(e->member);
      if (ols.learned) ols.learned--;
      if (ols.learned_gauge) cnt_set(*ols.learned_gauge, ols.learned);
      if (ols.mac_limit == 0 || ols.learned < ols.mac_limit) ols.limit_reported = false;
      core_.emit(moved_event(mem, old, src));
      e->member = mid;
      ls.learned++;
      if (ls.learned_gauge) cnt_set(*ls.learned_gauge, ls.learned);
      sw.counters->add(SwitchCounter::moved, 1);
      sw.generation++;
    }
    // Aging works in seconds: refreshing a fresh entry would only dirty a
    // cache line per frame, which at a million MACs doubles memory traffic.
    if (core_.now_ms() - e->last_seen_ms >= sw.refresh_ms) e->last_seen_ms = core_.now_ms();
  } else if (may_learn) {
    if (sw.fdb.size() >= sw.cfg.mac_limit && evict_for(sw, mem.sw, ls)) {
      // Room was made: learn below.
    } else if (sw.fdb.size() >= sw.cfg.mac_limit) {
      // Full: stop learning, keep forwarding (unknown destinations flood).
      sw.counters->add(SwitchCounter::learn_table_full, 1);
      if (!sw.full_reported) {
        sw.full_reported = true;
        core_.emit(mac_event(EventType::kTableFull, mem.sw, mem, src));
      }
      ls.cache_member = kNoMember;
      return true;
    }
    if (ls.mac_limit && ls.learned >= ls.mac_limit) {
      refuse_port_limit();
      return true;
    }
    auto ins = sw.fdb.insert(src, mid, 0, core_.now_ms());
    if (!ins.entry) {  // could not grow: treat as full
      sw.counters->add(SwitchCounter::learn_table_full, 1);
      ls.cache_member = kNoMember;
      return true;
    }
    ls.learned++;
    if (ls.learned_gauge) cnt_set(*ls.learned_gauge, ls.learned);
    sw.counters->add(SwitchCounter::learned, 1);
    sw.counters->set(SwitchCounter::fdb_entries, sw.fdb.size());
    core_.emit(mac_event(EventType::kLearned, mem.sw, mem, src));
  }
  ls.cache_src = src;
  ls.cache_member = mid;
  ls.cache_gen = sw.generation;
  ls.cache_ms = core_.now_ms();
  return true;
}

// ---------------------------------------------------------------- aging

// What removing entry e means for its source and the switch: the learned
// count of its port or VTEP, the static count, the full-table episode, the
// generation that invalidates last-source caches.
void Bridge::remove_entry_effects(SwitchState& sw, const FdbEntry& e) {
  if (e.flags & kFdbStatic) {
    sw.static_entries--;
    const Member& m = members_[e.member];
    if (m.remote() && peers_[m.vtep].statics) peers_[m.vtep].statics--;
  } else if (e.member < members_.size()) {
    LearnSource& ls = source_of(e.member);
    if (ls.learned) ls.learned--;
    if (ls.learned_gauge) cnt_set(*ls.learned_gauge, ls.learned);
    if (ls.mac_limit == 0 || ls.learned < ls.mac_limit) ls.limit_reported = false;
  }
  if (sw.fdb.size() <= sw.cfg.mac_limit) sw.full_reported = false;
  sw.generation++;
}

void Bridge::age_switch(SwitchId s, SwitchState& sw) {
  if (sw.fdb.size() == sw.static_entries) return;
  // Sweep the whole table once per `period`: a tenth of the aging time,
  // between one housekeeping tick and ten seconds. A stale entry therefore
  // disappears at most aging + period + one tick after its last frame.
  uint32_t period = std::clamp<uint32_t>(sw.cfg.aging_ms / 10, core_.housekeeping_ms(), 10000);
  uint64_t budget = uint64_t(sw.fdb.capacity()) * core_.housekeeping_ms() / period + 1;
  uint32_t aged = sw.fdb.age(core_.now_ms(), sw.cfg.aging_ms, uint32_t(std::min<uint64_t>(budget, sw.fdb.capacity())),
                             [&](const FdbEntry& e) {
                               core_.emit(mac_event(EventType::kAged, s, members_[e.member], e.mac));
                               remove_entry_effects(sw, e);
                             });
  core_.engine_counters().add(EngineCounter::aging_scanned, std::min<uint64_t>(budget, sw.fdb.capacity()));
  if (aged) {
    sw.counters->add(SwitchCounter::aged, aged);
    sw.counters->set(SwitchCounter::fdb_entries, sw.fdb.size());
    if (sw.fdb.size() < sw.cfg.mac_limit) sw.full_reported = false;
  }
}

void Bridge::age_all() {
  // The switches in use, not the table: it has maxSwitches slots (4,096 by
  // default), and touching each one's flag took 50 us of every tick.
  for (const auto& [vni, s] : vni_map_) age_switch(s, switches_[s]);
}

}  // namespace vpc
