// Out-of-line parts of the FDB: allocation, growth and backward-shift
// deletion. The lookup and learning fast paths are inline in fdb.h.
#include "bridge/fdb.h"

#include <sys/mman.h>

#include <cstdlib>
#include <cstring>
#include <new>
#include <random>

namespace vpc {

namespace {

constexpr size_t kHugePage = 2u << 20;

// Slot arrays are cache-line aligned so a 16-byte slot never straddles two
// lines. Arrays of 2 MiB and up (>= 131072 slots) are 2 MiB aligned and
// advised as transparent huge pages: at 1M entries a random lookup otherwise
// pays a TLB miss on top of the cache miss (see docs/design/fdb.md).
// Every byte is set to 0xFF, which makes every slot's mac kFdbEmptyMac.
// Returns nullptr on failure (never throws).
FdbEntry* alloc_slots(uint32_t capacity) {
  const size_t bytes = size_t(capacity) * sizeof(FdbEntry);
  const bool huge = bytes >= kHugePage;
  void* p = std::aligned_alloc(huge ? kHugePage : 64, bytes);  // bytes is a multiple of either
  if (p == nullptr) return nullptr;
  if (huge) (void)madvise(p, bytes, MADV_HUGEPAGE);  // advisory; fine if refused
  std::memset(p, 0xFF, bytes);
  return static_cast<FdbEntry*>(p);
}

uint32_t round_capacity(uint32_t n) {
  uint32_t c = 16;
  while (c < n && c < Fdb::kMaxCapacity) c <<= 1;
  return c;
}

}  // namespace

Fdb::Fdb(uint32_t initial_capacity, uint64_t seed) : seed_(seed) {
  if (seed_ == 0) {
    std::random_device rd;
    while (seed_ == 0) seed_ = (uint64_t(rd()) << 32) ^ rd();
  }
  const uint32_t cap = round_capacity(initial_capacity);
  slots_ = alloc_slots(cap);
  if (slots_ == nullptr) throw std::bad_alloc();
  mask_ = cap - 1;
  grow_at_ = cap / 4 * 3;
}

Fdb::~Fdb() { release(); }

void Fdb::release() {
  std::free(slots_);
  slots_ = nullptr;
}

Fdb::Fdb(Fdb&& o) noexcept
    : slots_(std::exchange(o.slots_, nullptr)),
      mask_(o.mask_),
      size_(std::exchange(o.size_, 0)),
      grow_at_(o.grow_at_),
      age_cursor_(std::exchange(o.age_cursor_, 0)),
      seed_(o.seed_) {}

Fdb& Fdb::operator=(Fdb&& o) noexcept {
  if (this != &o) {
    release();
    slots_ = std::exchange(o.slots_, nullptr);
    mask_ = o.mask_;
    size_ = std::exchange(o.size_, 0);
    grow_at_ = o.grow_at_;
    age_cursor_ = std::exchange(o.age_cursor_, 0);
    seed_ = o.seed_;
  }
  return *this;
}

// Moves every entry into a fresh array of new_capacity slots. On failure the
// table is left as it was. The age cursor restarts at 0: positions mean
// nothing in the new array.
bool Fdb::rehash(uint32_t new_capacity) {
  if (new_capacity > kMaxCapacity || new_capacity <= mask_) return false;
  FdbEntry* fresh = alloc_slots(new_capacity);
  if (fresh == nullptr) return false;
  const uint32_t old_cap = capacity();
  const uint32_t new_mask = new_capacity - 1;
  for (uint32_t i = 0; i < old_cap; ++i) {
    const FdbEntry& e = slots_[i];
    if (e.mac == kFdbEmptyMac) continue;
    uint32_t j = uint32_t(hash(e.mac)) & new_mask;
    while (fresh[j].mac != kFdbEmptyMac) j = (j + 1) & new_mask;
    fresh[j] = e;
  }
  std::free(slots_);
  slots_ = fresh;
  mask_ = new_mask;
  grow_at_ = new_capacity / 4 * 3;
  age_cursor_ = 0;
  return true;
}

// Backward-shift deletion: walk the rest of the cluster after the hole and
// pull back every entry whose home slot is not inside (hole, j], i.e. an
// entry that would stay reachable from its home in the hole's position. The
// cluster ends at the first free slot, which exists because load <= 3/4.
void Fdb::remove_at(uint32_t i) {
  uint32_t hole = i;
  uint32_t j = i;
  for (;;) {
    j = (j + 1) & mask_;
    const FdbEntry& e = slots_[j];
    if (e.mac == kFdbEmptyMac) break;
    const uint32_t home = uint32_t(hash(e.mac)) & mask_;
    if (((j - home) & mask_) >= ((j - hole) & mask_)) {
      slots_[hole] = e;
      hole = j;
    }
  }
  slots_[hole].mac = kFdbEmptyMac;
  --size_;
}

bool Fdb::erase(Mac mac) {
  mac &= kFdbMacMask;
  uint32_t i = uint32_t(hash(mac)) & mask_;
  for (;;) {
    const FdbEntry& s = slots_[i];
    if (s.mac == mac) break;
    if (s.mac == kFdbEmptyMac) return false;
    i = (i + 1) & mask_;
  }
  remove_at(i);
  return true;
}

bool Fdb::reserve(uint32_t n) {
  if (n <= grow_at_) return true;
  if (n > kMaxCapacity / 4 * 3) return false;
  uint32_t cap = capacity();
  while (cap / 4 * 3 < n) cap <<= 1;
  return rehash(cap);
}

void Fdb::clear() {
  std::memset(static_cast<void*>(slots_), 0xFF, size_t(capacity()) * sizeof(FdbEntry));
  size_ = 0;
  age_cursor_ = 0;
}

Fdb::ProbeStats Fdb::probe_stats() const {
  const uint32_t cap = capacity();
  uint64_t total = 0;
  uint32_t max = 0;
  for (uint32_t i = 0; i < cap; ++i) {
    if (slots_[i].mac == kFdbEmptyMac) continue;
    const uint32_t probes = ((i - (uint32_t(hash(slots_[i].mac)) & mask_)) & mask_) + 1;
    total += probes;
    if (probes > max) max = probes;
  }
  return {size_ ? double(total) / size_ : 0.0, max};
}

bool Fdb::validate() const {
  const uint32_t cap = capacity();
  uint32_t count = 0;
  bool have_free = false;
  for (uint32_t i = 0; i < cap; ++i) {
    const FdbEntry& e = slots_[i];
    if (e.mac == kFdbEmptyMac) {
      have_free = true;
      continue;
    }
    ++count;
    if (e.mac & ~kFdbMacMask) return false;
    // Walk from home to i: no free slot and no other copy of the key.
    for (uint32_t j = uint32_t(hash(e.mac)) & mask_; j != i; j = (j + 1) & mask_) {
      if (slots_[j].mac == kFdbEmptyMac || slots_[j].mac == e.mac) return false;
    }
  }
  return have_free && count == size_ && size_ <= grow_at_;
}

}  // namespace vpc
