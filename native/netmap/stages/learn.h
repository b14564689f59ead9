// Stage 2, learn: the inline fast path. The slow path is Engine::learn
// (learn.cc).
#pragma once

#include "core/state.h"

namespace vpc {

// Refresh period for an entry whose source hits the last-source cache: the
// table is touched at most once a second to keep the entry's age fresh.
constexpr uint32_t kLearnRefreshMs = 1000;

// True when the frame's source is the one this port sent from last, through
// the same member, and nothing in the switch's table changed since: learning
// has nothing to do.
inline bool learn_cache_hit(const PortState& in, MemberId m, Mac src, uint32_t generation, uint32_t now_ms) {
  return src == in.cache_src && m == in.cache_member && generation == in.cache_gen &&
         now_ms - in.cache_ms < kLearnRefreshMs;
}

}  // namespace vpc
