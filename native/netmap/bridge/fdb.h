// Per-switch MAC forwarding table (FDB): MAC -> member, with learning
// timestamps and incremental aging.
//
// Threading: the engine thread is the only reader and writer (the control
// plane reaches the table through the engine's command queue), so there are
// no locks or atomics; lookups take no locks by construction.
//
// Layout: open addressing with linear probing over a power-of-two array of
// 16-byte slots (four per 64-byte cache line, the array is line aligned), so
// a lookup usually touches one cache line. The load factor is kept at or
// below 3/4 by doubling. Deletion uses backward shift, so there are no
// tombstones and probe lengths do not degrade under churn. Design notes and
// measured numbers: docs/design/fdb.md (bench: bridge/fdb_bench.cc).
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>

#include "core/types.h"

namespace vpc {

// flags bits of FdbEntry.
constexpr uint16_t kFdbStatic = 1;  // configured: never aged, never moved by learning
constexpr uint16_t kFdbRemote = 2;  // reserved for VXLAN remote entries; the table gives it no meaning
// With kFdbStatic: installed by the EVPN control plane (a BGP route). Kept
// like a static entry (never aged, counted as static), except that the MAC
// appearing on a learning source is a move (MAC mobility), not a conflict.
constexpr uint16_t kFdbEvpn = 4;

struct FdbEntry {
  Mac mac;                // 48-bit key; kFdbEmptyMac marks a free slot
  MemberId member;        // where frames to `mac` go
  uint16_t flags;         // kFdbStatic | kFdbRemote | ...
  uint32_t last_seen_ms;  // engine clock (wrapping ms) of the last frame from `mac`
};
static_assert(sizeof(FdbEntry) == 16, "four slots per cache line");

// Marks a free slot. No 48-bit MAC can equal it, so MAC 0 and the broadcast
// address remain storable keys.
constexpr Mac kFdbEmptyMac = ~0ull;
// Keys are 48 bits; the upper 16 bits of a Mac passed to the table are ignored.
constexpr Mac kFdbMacMask = 0xFFFFFFFFFFFFull;

class Fdb {
 public:
  // initial_capacity is rounded up to a power of two (at least 16).
  // seed 0 picks a random per-table seed, so crafted source MACs cannot be
  // aimed at one probe cluster of this table (hash flooding). Tests and
  // benches pass a fixed seed for reproducibility.
  // Throws std::bad_alloc if the first array cannot be allocated (control
  // plane context); growth later never throws (see insert).
  explicit Fdb(uint32_t initial_capacity = 1024, uint64_t seed = 0);
  ~Fdb();
  Fdb(const Fdb&) = delete;
  Fdb& operator=(const Fdb&) = delete;
  Fdb(Fdb&& o) noexcept;
  Fdb& operator=(Fdb&& o) noexcept;

  // nullptr if absent. The pointer stays valid until the next insert that
  // adds a key, erase, erase_if, age, reserve or clear.
  FdbEntry* find(Mac mac) {
    return const_cast<FdbEntry*>(static_cast<const Fdb*>(this)->find(mac));
  }
  const FdbEntry* find(Mac mac) const {
    mac &= kFdbMacMask;
    uint32_t i = uint32_t(hash(mac)) & mask_;
    for (;;) {
      const FdbEntry& s = slots_[i];
      if (s.mac == mac) return &s;
      if (s.mac == kFdbEmptyMac) return nullptr;
      i = (i + 1) & mask_;
    }
  }

  // Prefetches the home slot of `mac`: issue for a whole batch, then find().
  void prefetch(Mac mac) const {
    __builtin_prefetch(&slots_[uint32_t(hash(mac & kFdbMacMask)) & mask_]);
  }

  // Inserts a new entry, or returns the existing one untouched
  // (inserted=false); the caller refreshes last_seen_ms / member itself, so
  // learning costs one probe. Only adding a key can grow the table (which
  // moves every entry and invalidates earlier pointers); returning an existing
  // entry never does. If growing fails (allocation failure or the capacity
  // limit), returns {nullptr, false} and the table is unchanged: the caller
  // counts a learn failure and floods.
  struct InsertResult {
    FdbEntry* entry;
    bool inserted;
  };
  InsertResult insert(Mac mac, MemberId member, uint16_t flags, uint32_t now_ms) {
    mac &= kFdbMacMask;
    uint32_t i = uint32_t(hash(mac)) & mask_;
    for (;;) {
      FdbEntry& s = slots_[i];
      if (s.mac == mac) return {&s, false};
      if (s.mac == kFdbEmptyMac) break;
      i = (i + 1) & mask_;
    }
    if (size_ + 1 > grow_at_) [[unlikely]] {
      if (!rehash(capacity() * 2)) return {nullptr, false};
      i = free_slot_for(mac);
    }
    FdbEntry& s = slots_[i];
    s = FdbEntry{mac, member, flags, now_ms};
    ++size_;
    return {&s, true};
  }

  // Removes `mac`; false if absent.
  bool erase(Mac mac);

  uint32_t size() const { return size_; }
  uint32_t capacity() const { return mask_ + 1; }
  // Bytes owned by the table (the slot array dominates).
  size_t memory_bytes() const { return sizeof(*this) + size_t(capacity()) * sizeof(FdbEntry); }

  // Grows (never shrinks) so that n entries fit without a rehash. Returns
  // false on allocation failure or if n is beyond the capacity limit.
  bool reserve(uint32_t n);
  // Removes every entry; keeps the capacity.
  void clear();

  // Incremental aging. Examines up to `budget` slots starting at an internal
  // cursor (wrapping), and removes each entry without kFdbStatic whose age
  // (uint32_t)(now_ms - last_seen_ms) >= max_age_ms, calling
  // on_aged(const FdbEntry&) BEFORE removing it. Returns the number removed.
  //
  // Ages are computed modulo 2^32, so now_ms may wrap; an entry is judged
  // correctly as long as it is aged within 2^32 ms (~49 days) of its last
  // refresh, which any sane max_age_ms and sweep rate guarantee.
  //
  // Backward shift vs the cursor: removing at the cursor shifts later
  // entries of the same cluster back *into* the cursor slot or beyond, so the
  // cursor re-examines its slot instead of advancing; nothing unseen lands
  // behind it. Repeated calls with no other mutation in between therefore see
  // every entry within capacity()+removed slot examinations. An erase() by
  // someone else between calls can shift an entry back over the cursor; that
  // entry is seen one sweep later. Entries only ever move back towards their
  // home slot, so it can dodge a bounded number of times, never forever. An
  // entry is reported at most once because it is removed right after.
  // A grow or clear restarts the sweep at slot 0.
  template <class F>
  uint32_t age(uint32_t now_ms, uint32_t max_age_ms, uint32_t budget, F&& on_aged) {
    if (size_ == 0) return 0;
    uint32_t removed = 0;
    uint32_t i = age_cursor_;
    for (; budget != 0; --budget) {
      FdbEntry& s = slots_[i];
      if (s.mac != kFdbEmptyMac && !(s.flags & kFdbStatic) &&
          uint32_t(now_ms - s.last_seen_ms) >= max_age_ms) {
        on_aged(static_cast<const FdbEntry&>(s));
        remove_at(i);  // may refill slot i: examine it again
        ++removed;
        if (size_ == 0) break;
      } else {
        i = (i + 1) & mask_;
      }
    }
    age_cursor_ = i;
    return removed;
  }

  // Removes every entry for which pred(const FdbEntry&) is true, calling
  // on_removed(const FdbEntry&) for each just before removing it. O(capacity).
  // Used when a member or port is deleted. Each entry is tested exactly once:
  // the scan starts just after a free slot, so no probe cluster wraps past
  // the scan's start and backward shifts only move unseen entries into
  // unseen slots (or the current one, which is re-examined).
  template <class P, class F>
  uint32_t erase_if(P&& pred, F&& on_removed) {
    if (size_ == 0) return 0;
    const uint32_t start = first_free_slot();
    uint32_t removed = 0;
    uint32_t i = (start + 1) & mask_;
    while (i != start) {
      FdbEntry& s = slots_[i];
      if (s.mac != kFdbEmptyMac && pred(static_cast<const FdbEntry&>(s))) {
        on_removed(static_cast<const FdbEntry&>(s));
        remove_at(i);
        ++removed;
      } else {
        i = (i + 1) & mask_;
      }
    }
    return removed;
  }

  // f(const FdbEntry&) for every entry, in slot order. f must not modify the table.
  template <class F>
  void for_each(F&& f) const {
    const uint32_t cap = capacity();
    for (uint32_t i = 0; i < cap; ++i)
      if (slots_[i].mac != kFdbEmptyMac) f(static_cast<const FdbEntry&>(slots_[i]));
  }

  // The seeded hash; its low bits pick the home slot. Public for tests (to
  // build colliding keys) and for callers that want to shard by it.
  uint64_t hash(Mac mac) const {
    // Multiply-xorshift: the multiplies spread each key bit upwards, the
    // shifts fold the well-mixed high half back into the low bits that index
    // the table. The secret seed enters before the first multiply.
    uint64_t x = (mac ^ seed_) * 0x9E3779B97F4A7C15ull;
    x ^= x >> 32;
    x *= 0xD6E8FEB86659FD93ull;
    x ^= x >> 32;
    return x;
  }
  uint32_t home_slot(Mac mac) const { return uint32_t(hash(mac & kFdbMacMask)) & mask_; }
  uint64_t seed() const { return seed_; }

  // Probe-length statistics over all entries: a hit on an entry costs
  // (displacement from its home slot + 1) slot reads. A uniform hash at load
  // 3/4 averages ~2.5; a much larger mean or max means clustering, e.g. a
  // hash flood. O(capacity); for tests and diagnostics, not the fast path.
  struct ProbeStats {
    double mean_hit_probes;
    uint32_t max_hit_probes;
  };
  ProbeStats probe_stats() const;

  // Checks the probing invariant (every entry reachable from its home slot
  // without crossing a free slot, no duplicate keys) and the size count.
  // O(capacity * probe length); for tests.
  bool validate() const;

  // Largest capacity the table will grow to (2^30 slots = 16 GiB).
  static constexpr uint32_t kMaxCapacity = 1u << 30;

 private:
  bool rehash(uint32_t new_capacity);
  // Removes the entry in slot i by backward shift.
  void remove_at(uint32_t i);
  // Index of the free slot where `mac` (known absent) would go.
  uint32_t free_slot_for(Mac mac) const {
    uint32_t i = uint32_t(hash(mac)) & mask_;
    while (slots_[i].mac != kFdbEmptyMac) i = (i + 1) & mask_;
    return i;
  }
  uint32_t first_free_slot() const {
    uint32_t i = 0;
    while (slots_[i].mac != kFdbEmptyMac) ++i;  // load <= 3/4: one exists
    return i;
  }
  void release();

  FdbEntry* slots_ = nullptr;
  uint32_t mask_ = 0;        // capacity - 1
  uint32_t size_ = 0;
  uint32_t grow_at_ = 0;     // largest size allowed at this capacity (3/4)
  uint32_t age_cursor_ = 0;
  uint64_t seed_ = 0;
};

}  // namespace vpc
