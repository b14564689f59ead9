// Stage 2, learn: the inline fast path. The slow path is Bridge::learn
// (learn.cc).
#pragma once

#include "core/state.h"

namespace vpc {

// How often an active source touches its entry to keep it from aging: at
// most once a second, and at least four times per aging period (so with the
// shortest aging, 1 s, an entry is never more than ~0.5 s stale).
inline uint32_t learn_refresh_ms(uint32_t aging_ms) { return aging_ms / 4 < 1000 ? aging_ms / 4 : 1000; }

// True when the frame's source is the one this port (or VTEP) sent from last,
// through the same member, and nothing in the switch's table changed since:
// learning has nothing to do.
inline bool learn_cache_hit(const LearnSource& ls, MemberId m, Mac src, const SwitchState& sw, uint32_t now_ms) {
  return src == ls.cache_src && m == ls.cache_member && sw.generation == ls.cache_gen &&
         now_ms - ls.cache_ms < sw.refresh_ms;
}

}  // namespace vpc
