// Single-producer single-consumer ring with bulk operations.
//
// Used for pipe ports (descriptors) and for the engine's event stream. The
// producer and consumer each keep a private copy of the other side's index and
// re-read the shared one only when the copy says the ring looks full (or
// empty), so in steady state a burst costs one acquire load and one release
// store per side, not one per element.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <new>
#include <stdexcept>

namespace vpc {

constexpr size_t kCacheLine = 64;

template <class T>
class SpscRing {
 public:
  explicit SpscRing(uint32_t capacity) {
    if (capacity < 2 || (capacity & (capacity - 1)) != 0)
      throw std::invalid_argument("ring size: must be a power of two >= 2");
    mask_ = capacity - 1;
    slots_.reset(new T[capacity]);
  }
  uint32_t capacity() const { return mask_ + 1; }

  // Producer side. Enqueues up to n items; returns how many went in.
  uint32_t push(const T* items, uint32_t n) {
    uint32_t tail = prod_.tail;
    uint32_t free = capacity() - (tail - prod_.head_cache);
    if (free < n) {
      prod_.head_cache = head_.load(std::memory_order_acquire);
      free = capacity() - (tail - prod_.head_cache);
      if (n > free) n = free;
    }
    for (uint32_t i = 0; i < n; ++i) slots_[(tail + i) & mask_] = items[i];
    prod_.tail = tail + n;
    tail_.store(tail + n, std::memory_order_release);
    return n;
  }

  // Consumer side. Dequeues up to max items; returns how many came out.
  uint32_t pop(T* out, uint32_t max) {
    uint32_t head = cons_.head;
    uint32_t avail = cons_.tail_cache - head;
    if (avail < max) {
      cons_.tail_cache = tail_.load(std::memory_order_acquire);
      avail = cons_.tail_cache - head;
      if (max > avail) max = avail;
    }
    for (uint32_t i = 0; i < max; ++i) out[i] = slots_[(head + i) & mask_];
    cons_.head = head + max;
    head_.store(head + max, std::memory_order_release);
    return max;
  }

  // Either side: an instantaneous (possibly stale) count.
  uint32_t size() const {
    return tail_.load(std::memory_order_acquire) - head_.load(std::memory_order_acquire);
  }
  bool empty() const { return size() == 0; }

 private:
  uint32_t mask_ = 0;
  std::unique_ptr<T[]> slots_;
  alignas(kCacheLine) std::atomic<uint32_t> head_{0};  // written by the consumer
  alignas(kCacheLine) std::atomic<uint32_t> tail_{0};  // written by the producer
  alignas(kCacheLine) struct {
    uint32_t tail = 0;
    uint32_t head_cache = 0;
  } prod_;
  alignas(kCacheLine) struct {
    uint32_t head = 0;
    uint32_t tail_cache = 0;
  } cons_;
};

// Bounded multi-producer multi-consumer queue (the sequence-number design
// described by D. Vyukov): each cell carries a sequence number that says
// whether it is ready to be written or read in the current lap, so producers
// and consumers claim cells with one CAS on their own index and never wait on
// a lock. The control plane uses it for commands (any thread may submit).
template <class T>
class MpmcQueue {
 public:
  explicit MpmcQueue(uint32_t capacity) {
    if (capacity < 2 || (capacity & (capacity - 1)) != 0)
      throw std::invalid_argument("queue size: must be a power of two >= 2");
    mask_ = capacity - 1;
    cells_.reset(new Cell[capacity]);
    for (uint32_t i = 0; i < capacity; ++i) cells_[i].seq.store(i, std::memory_order_relaxed);
  }

  bool push(T v) {
    uint32_t pos = enq_.load(std::memory_order_relaxed);
    for (;;) {
      Cell& c = cells_[pos & mask_];
      uint32_t seq = c.seq.load(std::memory_order_acquire);
      int32_t dif = int32_t(seq - pos);
      if (dif == 0) {
        if (enq_.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed)) {
          c.value = std::move(v);
          c.seq.store(pos + 1, std::memory_order_release);
          return true;
        }
      } else if (dif < 0) {
        return false;  // full
      } else {
        pos = enq_.load(std::memory_order_relaxed);
      }
    }
  }

  bool pop(T* out) {
    uint32_t pos = deq_.load(std::memory_order_relaxed);
    for (;;) {
      Cell& c = cells_[pos & mask_];
      uint32_t seq = c.seq.load(std::memory_order_acquire);
      int32_t dif = int32_t(seq - (pos + 1));
      if (dif == 0) {
        if (deq_.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed)) {
          *out = std::move(c.value);
          c.seq.store(pos + mask_ + 1, std::memory_order_release);
          return true;
        }
      } else if (dif < 0) {
        return false;  // empty
      } else {
        pos = deq_.load(std::memory_order_relaxed);
      }
    }
  }

  // Cheap emptiness hint for the consumer's fast path (may be stale).
  bool maybe_empty() const {
    return enq_.load(std::memory_order_relaxed) == deq_.load(std::memory_order_relaxed);
  }

 private:
  struct Cell {
    std::atomic<uint32_t> seq;
    T value;
  };
  uint32_t mask_ = 0;
  std::unique_ptr<Cell[]> cells_;
  alignas(kCacheLine) std::atomic<uint32_t> enq_{0};
  alignas(kCacheLine) std::atomic<uint32_t> deq_{0};
};

}  // namespace vpc
