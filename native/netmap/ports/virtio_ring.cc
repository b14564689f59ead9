// Split virtqueue processing (see virtio_ring.h).
#include "ports/virtio_ring.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>

#include "ports/vnet.h"
#include "proto/gso.h"

namespace vpc {

const char* vfeat::name(int b) {
  switch (b) {
    case kNetCsum: return "csum";
    case kNetGuestCsum: return "guest_csum";
    case kNetMtu: return "mtu";
    case kNetMac: return "mac";
    case kNetGuestTso4: return "guest_tso4";
    case kNetGuestTso6: return "guest_tso6";
    case kNetGuestEcn: return "guest_ecn";
    case kNetGuestUfo: return "guest_ufo";
    case kNetHostTso4: return "host_tso4";
    case kNetHostTso6: return "host_tso6";
    case kNetHostEcn: return "host_ecn";
    case kNetHostUfo: return "host_ufo";
    case kNetMrgRxbuf: return "mrg_rxbuf";
    case kNetStatus: return "status";
    case kNetCtrlVq: return "ctrl_vq";
    case kNetMq: return "mq";
    case kNotifyOnEmpty: return "notify_on_empty";
    case kAnyLayout: return "any_layout";
    case kRingIndirect: return "indirect_desc";
    case kRingEventIdx: return "event_idx";
    case 30: return "protocol_features";
    case kVersion1: return "version_1";
  }
  return nullptr;
}

bool GuestMemory::add(const GuestRegion& r) {
  if (n_ == kMaxRegions || r.size == 0 || r.gpa + r.size < r.gpa || r.uva + r.size < r.uva) return false;
  r_[n_++] = r;
  return true;
}

uint8_t* GuestMemory::uva(uint64_t addr, uint64_t len) const {
  for (uint32_t i = 0; i < n_; ++i) {
    const GuestRegion& r = r_[i];
    const uint64_t off = addr - r.uva;
    if (addr >= r.uva && off < r.size && len <= r.size - off) return r.host + off;
  }
  return nullptr;
}

namespace {

constexpr VirtqDrop kOk = VirtqDrop::kCount;
// Longest chain walked, indirect tables included: a guest's real chains are
// a header and up to 17 pages (Linux's MAX_SKB_FRAGS + 2); Linux's vhost
// stops at 1,024 (UIO_MAXIOV) too. Bounds the work a hostile chain costs.
constexpr uint32_t kMaxChain = 1024;
// Descriptors one call of vq_dequeue/vq_enqueue walks at most (it stops after
// the frame that crosses it): a burst of 256 real frames walks a few hundred;
// a guest whose chains are all 1,024 descriptors long cannot make one burst
// cost the engine more than this, so other ports are not held up.
constexpr uint32_t kBurstWalkBudget = 8192;

// Loads from guest memory: the guest writes it concurrently, so each value is
// loaded once into a local and the compiler is told memory may change.
inline uint16_t load16(const uint16_t* p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
inline uint16_t load16_acquire(const uint16_t* p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
inline void store16(uint16_t* p, uint16_t v) { __atomic_store_n(p, v, __ATOMIC_RELAXED); }
inline VringDesc load_desc(const VringDesc* d) {
  VringDesc r;
  std::memcpy(&r, d, sizeof r);
  asm volatile("" ::: "memory");
  return r;
}

inline uint16_t* used_idx_ptr(const VirtQueue& q) { return reinterpret_cast<uint16_t*>(q.used + 2); }
inline uint16_t* avail_event_ptr(const VirtQueue& q) { return reinterpret_cast<uint16_t*>(q.used + 4 + 8 * q.num); }
inline const uint16_t* used_event_ptr(const VirtQueue& q) { return q.avail + 2 + q.num; }

inline void put_used(VirtQueue& q, uint16_t at, uint32_t id, uint32_t len) {
  uint8_t* e = q.used + 4 + 8 * size_t(at & (q.num - 1));
  std::memcpy(e, &id, 4);
  std::memcpy(e + 4, &len, 4);
}

inline void publish_used(VirtQueue& q) { __atomic_store_n(used_idx_ptr(q), q.used_idx, __ATOMIC_RELEASE); }

// GuestMemory::gpa() for the shortcuts below, with the region the last
// translation hit kept in locals for one vq_enqueue/vq_dequeue call (the
// memory table only changes between calls): a guest's buffers mostly lie in
// one region, and then a translation is two compares. Same answer as gpa():
// a pointer only when the whole range lies inside one mapped region.
class GpaCache {
 public:
  explicit GpaCache(const GuestMemory& m) : m_(m) {}
  uint8_t* range(uint64_t addr, uint64_t len) {
    const uint64_t off = addr - gpa_;
    if (off < size_ && len <= size_ - off) [[likely]] return host_ + off;
    uint8_t* p = m_.gpa(addr, len);
    if (p) {
      const GuestRegion& r = m_.last();
      gpa_ = r.gpa, size_ = r.size, host_ = r.host;
    }
    return p;
  }

 private:
  const GuestMemory& m_;
  uint64_t gpa_ = 0, size_ = 0;  // size 0: the first translation asks m_
  uint8_t* host_ = nullptr;
};

// Walks one descriptor chain (and its indirect table), yielding host pieces
// of guest memory: a descriptor that spans two regions gives two pieces.
class DescWalker {
 public:
  DescWalker(const VirtQueue& q, const VirtioNetCtx& c, uint32_t* walked)
      : mem_(*c.mem), main_(q.desc), main_num_(q.num), indirect_ok_(c.indirect), walked_(walked) {}

  VirtqDrop begin(uint16_t head) {
    tab_ = main_;
    tab_num_ = main_num_;
    in_indirect_ = false;
    steps_ = table_steps_ = 0;
    left_ = 0;
    more_ = false;
    return load(head);
  }

  // One piece; *len == 0 at the end of the chain.
  VirtqDrop next(uint8_t** p, uint32_t* len, bool* write) {
    while (left_ == 0) {
      if (!more_) {
        *len = 0;
        return kOk;
      }
      if (next_ >= tab_num_) return VirtqDrop::ring_bad_next;
      if (VirtqDrop e = load(next_); e != kOk) return e;
    }
    uint32_t got;
    uint8_t* h = mem_.gpa_piece(addr_, left_, &got);
    if (!h) return VirtqDrop::ring_bad_addr;
    addr_ += got;
    left_ -= got;
    *p = h;
    *len = got;
    *write = write_;
    return kOk;
  }

 private:
  VirtqDrop load(uint32_t i) {
    ++*walked_;
    if (++steps_ > kMaxChain || ++table_steps_ > tab_num_) return VirtqDrop::ring_desc_loop;
    const VringDesc d = load_desc(tab_ + i);
    if (d.flags & kDescIndirect) {
      if (!indirect_ok_ || in_indirect_ || (d.flags & kDescNext) || d.len == 0 || d.len % sizeof(VringDesc) ||
          d.len / sizeof(VringDesc) > kMaxChain)
        return VirtqDrop::ring_bad_indirect;
      const auto* t = reinterpret_cast<const VringDesc*>(mem_.gpa(d.addr, d.len));
      if (!t) return VirtqDrop::ring_bad_addr;
      tab_ = t;
      tab_num_ = d.len / uint32_t(sizeof(VringDesc));
      in_indirect_ = true;
      table_steps_ = 0;
      return load(0);
    }
    addr_ = d.addr;
    left_ = d.len;
    write_ = (d.flags & kDescWrite) != 0;
    more_ = (d.flags & kDescNext) != 0;
    next_ = d.next;
    return kOk;
  }

  const GuestMemory& mem_;
  const VringDesc* main_;
  uint32_t main_num_;
  bool indirect_ok_;
  uint32_t* walked_;
  const VringDesc* tab_ = nullptr;
  uint32_t tab_num_ = 0;
  bool in_indirect_ = false;
  uint32_t steps_ = 0, table_steps_ = 0;
  uint64_t addr_ = 0;
  uint32_t left_ = 0;
  bool write_ = false, more_ = false;
  uint16_t next_ = 0;
};

enum class Chain : uint8_t { kOk, kDrop, kBroken, kFull };

// The frame copied into pool buffer idx: its virtio-net header (a local copy)
// checked and turned into offload metadata. Frees idx on a bad header.
[[gnu::always_inline]] inline Chain finish_tx(const VirtioNetCtx& c, const uint8_t* hdr, uint32_t idx, uint32_t flen, bool large, Pkt* out,
                                               VirtqDrop* why) {
  BufferPool& pool = *c.pool;
  Pkt pk{idx, pool.headroom(), uint16_t(flen)};
  OffloadMeta m;
  // A plain header (no flags, no GSO) is the common case: decided here
  // without the call; vnet_read says the same for it.
  const VnetVerdict v = (hdr[0] | hdr[1]) == 0 ? VnetVerdict::kPlain : vnet_read(hdr, flen, &m);
  if (v == VnetVerdict::kInvalid) {
    c.cache->free(idx);
    *why = VirtqDrop::bad_vnet_hdr;
    return Chain::kDrop;
  }
  if (v == VnetVerdict::kOffload || large) {
    pool.meta(idx) = v == VnetVerdict::kOffload ? m : OffloadMeta{};
    pkt_set_meta(pk, true);
  }
  *out = pk;
  return Chain::kOk;
}

// The common transmit case without the chain walker: one descriptor, neither
// chained nor indirect nor device-writable, header and frame in one mapped
// region, the frame fits a regular buffer. Returns false, having written
// nothing and taken no buffer, for anything else (or when no buffer is
// free): read_tx_chain then reads the descriptor anew and decides.
bool tx_fast(const VirtQueue& q, const VirtioNetCtx& c, GpaCache& gc, uint16_t head, Pkt* out, Chain* r,
             VirtqDrop* why) {
  const VringDesc d = load_desc(q.desc + head);
  if (d.flags & (kDescNext | kDescIndirect | kDescWrite)) return false;
  if (d.len <= c.hdr_len || d.len - c.hdr_len > c.pool->max_frame()) return false;
  const uint8_t* h = gc.range(d.addr, d.len);
  if (!h) return false;
  uint32_t idx;
  if (!c.cache->alloc(&idx)) return false;
  uint8_t hdr[kVnetHdrMrgLen];  // vnet_read looks at the first 10 bytes only
  std::memcpy(hdr, h, kVnetHdrLen);
  const uint32_t flen = d.len - c.hdr_len;
  std::memcpy(c.pool->data(idx) + c.pool->headroom(), h + c.hdr_len, flen);
  *r = finish_tx(c, hdr, idx, flen, false, out, why);
  return true;
}

// One transmit chain into a pool buffer (upgraded to a large buffer when the
// frame outgrows a regular one).
Chain read_tx_chain(const VirtQueue& q, const VirtioNetCtx& c, uint16_t head, Pkt* out, VirtqDrop* why,
                    uint32_t* walked) {
  BufferPool& pool = *c.pool;
  DescWalker w(q, c, walked);
  uint8_t hdr[kVnetHdrMrgLen];
  uint32_t hgot = 0, idx = kNoId, cap = 0, flen = 0;
  uint8_t* dst = nullptr;
  bool large = false;
  auto give_back = [&] {
    if (idx != kNoId) c.cache->free(idx);
  };
  if ((*why = w.begin(head)) != kOk) return Chain::kBroken;
  for (;;) {
    uint8_t* p;
    uint32_t l;
    bool wr;
    if ((*why = w.next(&p, &l, &wr)) != kOk) {
      give_back();
      return Chain::kBroken;
    }
    if (l == 0) break;
    if (wr) {
      give_back();
      *why = VirtqDrop::ring_wrong_direction;
      return Chain::kBroken;
    }
    if (hgot < c.hdr_len) {
      const uint32_t t = std::min(l, c.hdr_len - hgot);
      std::memcpy(hdr + hgot, p, t);
      hgot += t;
      p += t;
      l -= t;
      if (!l) continue;
    }
    if (idx == kNoId) {
      if (!c.cache->alloc(&idx)) {
        *why = VirtqDrop::no_buffer;
        return Chain::kDrop;
      }
      dst = pool.data(idx) + pool.headroom();
      cap = pool.max_frame();
    }
    if (l > cap - flen) {
      uint32_t li;
      if (large || uint64_t(flen) + l > kMaxLargeFrame || !pool.max_large_frame()) {
        give_back();
        *why = VirtqDrop::too_big;
        return Chain::kDrop;
      }
      if (!c.cache->alloc_large(&li)) {
        give_back();
        *why = VirtqDrop::no_buffer;
        return Chain::kDrop;
      }
      uint8_t* ld = pool.data(li) + pool.headroom();
      std::memcpy(ld, dst, flen);
      c.cache->free(idx);
      idx = li;
      dst = ld;
      cap = kMaxLargeFrame;
      large = true;
    }
    std::memcpy(dst + flen, p, l);
    flen += l;
  }
  if (hgot < c.hdr_len || flen == 0) {
    give_back();
    *why = VirtqDrop::short_chain;
    return Chain::kDrop;
  }
  return finish_tx(c, hdr, idx, flen, large, out, why);
}

// The virtio-net header for a frame going to the guest, its checksum
// completed first when the guest does not take partial ones.
bool rx_header(const VirtioNetCtx& c, const Pkt& p, uint8_t* hdr, VirtqDrop* why) {
  std::memset(hdr, 0, kVnetHdrMrgLen);
  hdr[10] = 1;  // num_buffers (12-byte header): patched for merged buffers
  if (!pkt_has_meta(p)) return true;
  OffloadMeta m = c.pool->meta(p.buf);
  if (m.gso() && (!c.guest_csum || (offload_needs(m) & ~uint32_t(kOffCsum) & ~c.guest_gso))) {
    *why = VirtqDrop::offload_refused;
    return false;
  }
  if (m.needs_csum() && !c.guest_csum) {
    if (!csum_complete(c.pool->frame(p), p.len, m)) {
      *why = VirtqDrop::offload_refused;
      return false;
    }
    m.flags &= uint8_t(~OffloadMeta::kNeedsCsum);
  }
  // DATA_VALID only means something to a guest that negotiated GUEST_CSUM.
  m.flags &= c.guest_csum ? uint8_t(OffloadMeta::kNeedsCsum | OffloadMeta::kDataValid) : uint8_t(0);
  offload_to_vnet(m, hdr);
  return true;
}

// The common receive case without the chain walker: a frame without offload
// metadata, whole into the next avail buffer when that is one descriptor,
// neither chained nor indirect, device-writable, header and frame in one
// mapped region. Returns false, having written nothing, for anything else:
// write_rx_frame then reads the buffer anew and decides.
bool rx_fast(VirtQueue& q, const VirtioNetCtx& c, GpaCache& gc, const Pkt& p, uint16_t avail_idx) {
  if (pkt_has_meta(p) || q.last_avail == avail_idx) return false;
  const uint16_t head = load16(q.avail + 2 + (q.last_avail & (q.num - 1)));
  if (head >= q.num) return false;
  const VringDesc d = load_desc(q.desc + head);
  if ((d.flags & (kDescNext | kDescIndirect | kDescWrite)) != kDescWrite) return false;
  const uint32_t blen = c.hdr_len + p.len;
  if (d.len < blen) return false;
  uint8_t* h = gc.range(d.addr, blen);
  if (!h) return false;
  // The header rx_header() writes for such a frame: zero, num_buffers 1.
  const uint64_t zero = 0;
  const uint16_t tail[2] = {0, 1};
  std::memcpy(h, &zero, 8);
  if (c.hdr_len == kVnetHdrMrgLen) std::memcpy(h + 8, tail, 4);
  else std::memcpy(h + 8, tail, 2);
  std::memcpy(h + c.hdr_len, c.pool->frame(p), p.len);
  put_used(q, q.used_idx, head, blen);
  q.used_idx++;
  q.last_avail++;
  return true;
}

// One frame into the guest's receive buffers: one chain, or as many
// mergeable buffers as it takes. Nothing is published here; on kOk the
// caller's used index and last_avail have moved.
Chain write_rx_frame(VirtQueue& q, const VirtioNetCtx& c, const Pkt& p, uint16_t* avail_idx, bool* reread,
                     VirtqDrop* why, uint32_t* walked) {
  uint8_t hdr[kVnetHdrMrgLen];
  if (!rx_header(c, p, hdr, why)) return Chain::kDrop;
  const uint8_t* f = c.pool->frame(p);
  const uint32_t len = p.len, mask = q.num - 1;
  uint32_t hw = 0, fw = 0;
  uint16_t idx = q.last_avail, nbufs = 0;
  uint8_t* num_buffers = nullptr;
  DescWalker w(q, c, walked);
  while (hw < c.hdr_len || fw < len) {
    if (nbufs && !c.mrg_rxbuf) {
      *why = VirtqDrop::guest_buffer_small;
      return Chain::kDrop;
    }
    if (idx == *avail_idx) {
      if (*reread) return Chain::kFull;
      *reread = true;
      *avail_idx = load16_acquire(q.avail + 1);
      if (uint16_t(*avail_idx - q.last_avail) > q.num) {
        *why = VirtqDrop::ring_bad_avail_idx;
        return Chain::kBroken;
      }
      if (idx == *avail_idx) return Chain::kFull;
    }
    const uint16_t head = load16(q.avail + 2 + (idx & mask));
    if (head >= q.num) {
      *why = VirtqDrop::ring_bad_head;
      return Chain::kBroken;
    }
    if ((*why = w.begin(head)) != kOk) return Chain::kBroken;
    uint32_t blen = 0;
    bool first = true;
    while (hw < c.hdr_len || fw < len) {
      uint8_t* d;
      uint32_t l;
      bool wr;
      if ((*why = w.next(&d, &l, &wr)) != kOk) return Chain::kBroken;
      if (l == 0) break;
      if (!wr) {
        *why = VirtqDrop::ring_wrong_direction;
        return Chain::kBroken;
      }
      if (first && c.mrg_rxbuf) {
        // Each mergeable buffer holds at least a header (5.1.6.3.1).
        if (l < c.hdr_len) {
          *why = VirtqDrop::ring_short_buffer;
          return Chain::kBroken;
        }
        if (nbufs == 0) num_buffers = d + 10;
      }
      first = false;
      if (hw < c.hdr_len) {
        const uint32_t t = std::min(l, c.hdr_len - hw);
        std::memcpy(d, hdr + hw, t);
        hw += t;
        d += t;
        l -= t;
        blen += t;
      }
      const uint32_t t = std::min(l, len - fw);
      std::memcpy(d, f + fw, t);
      fw += t;
      blen += t;
    }
    if (first && c.mrg_rxbuf) {  // an empty mergeable buffer: not even a header fits
      *why = VirtqDrop::ring_short_buffer;
      return Chain::kBroken;
    }
    put_used(q, uint16_t(q.used_idx + nbufs), head, blen);
    ++nbufs;
    ++idx;
  }
  if (nbufs > 1) {
    num_buffers[0] = uint8_t(nbufs);
    num_buffers[1] = uint8_t(nbufs >> 8);
  }
  q.last_avail = idx;
  q.used_idx = uint16_t(q.used_idx + nbufs);
  return Chain::kOk;
}

}  // namespace

bool VirtQueue::map(const GuestMemory& mem, std::string* err) {
  unmap();
  if (!addr_set || !num) return false;
  auto* d = mem.uva(desc_uva, uint64_t(num) * sizeof(VringDesc));
  auto* a = mem.uva(avail_uva, 6 + 2ull * num);
  auto* u = mem.uva(used_uva, 6 + 8ull * num);
  if (!d || !a || !u) {
    *err = std::string("vring address outside the memory table: ") + (!d ? "descriptor table" : !a ? "avail ring" : "used ring");
    return false;
  }
  if ((uintptr_t(d) & 15) || (uintptr_t(a) & 1) || (uintptr_t(u) & 3)) {
    *err = "vring address misaligned (descriptor table 16, avail ring 2, used ring 4 bytes)";
    return false;
  }
  desc = reinterpret_cast<VringDesc*>(d);
  avail = reinterpret_cast<uint16_t*>(a);
  used = u;
  used_idx = load16(used_idx_ptr(*this));
  signalled_valid = false;
  kicks_on = true;
  return true;
}

void VirtQueue::fail(VirtqDrop why, std::string detail) {
  broken = true;
  broken_reason = why;
  last_error = std::move(detail);
  if (ctr) ctr->drop(why);
  if (err_fd >= 0) {
    uint64_t one = 1;
    ssize_t r = ::write(err_fd, &one, sizeof one);
    (void)r;
  }
}

void VirtQueue::reset() {
  VirtqCounters* keep = ctr;
  *this = VirtQueue{};
  ctr = keep;
}

uint16_t vq_pending(const VirtQueue& q) {
  if (!q.ready()) return 0;
  return uint16_t(load16_acquire(q.avail + 1) - q.last_avail);
}

uint16_t vq_dequeue(VirtQueue& q, const VirtioNetCtx& c, Pkt* out, uint16_t max) {
  if (q.broken) return 0;
  const uint16_t pending = uint16_t(load16_acquire(q.avail + 1) - q.last_avail);
  if (pending == 0) return 0;
  if (pending > q.num) {
    q.fail(VirtqDrop::ring_bad_avail_idx, "transmit queue: avail index " + std::to_string(q.last_avail + pending) +
                                              " is more than the queue size ahead of " + std::to_string(q.last_avail));
    return 0;
  }
  const uint16_t todo = std::min(pending, max);
  const uint32_t mask = q.num - 1;
  uint16_t n = 0, k = 0;
  uint64_t bytes = 0;
  uint32_t walked = 0;
  GpaCache gc(*c.mem);
  for (; k < todo && walked < kBurstWalkBudget; ++k) {
    const uint16_t head = load16(q.avail + 2 + (q.last_avail & mask));
    if (head >= q.num) {
      q.fail(VirtqDrop::ring_bad_head, "transmit queue: avail entry names descriptor " + std::to_string(head) +
                                           " of a queue of " + std::to_string(q.num));
      break;
    }
    VirtqDrop why = kOk;
    Chain r;
    if (tx_fast(q, c, gc, head, &out[n], &r, &why)) ++walked;
    else r = read_tx_chain(q, c, head, &out[n], &why, &walked);
    if (r == Chain::kBroken) {
      q.fail(why, std::string("transmit queue: chain at descriptor ") + std::to_string(head) + ": " +
                      kVirtqDropInfo[size_t(why)].help);
      break;
    }
    if (r == Chain::kOk) bytes += out[n++].len;
    else q.ctr->drop(why);
    put_used(q, q.used_idx++, head, 0);
    q.last_avail++;
  }
  if (k) publish_used(q);
  if (n) {
    q.ctr->add(VirtqCounter::packets, n);
    q.ctr->add(VirtqCounter::bytes, bytes);
  }
  return n;
}

Drop port_drop_of(VirtqDrop why) {
  switch (why) {
    case VirtqDrop::guest_stalled:
      return Drop::tx_ring_full;
    case VirtqDrop::guest_buffer_small:
      return Drop::egress_too_big;
    case VirtqDrop::offload_refused:
      return Drop::gso_unsupported;
    case VirtqDrop::not_ready:
    case VirtqDrop::ring_bad_avail_idx:
    case VirtqDrop::ring_bad_head:
    case VirtqDrop::ring_bad_next:
    case VirtqDrop::ring_desc_loop:
    case VirtqDrop::ring_bad_addr:
    case VirtqDrop::ring_bad_indirect:
    case VirtqDrop::ring_wrong_direction:
    case VirtqDrop::ring_short_buffer:
      return Drop::link_down;
    // A guest's transmit queue only: never a frame for the guest.
    case VirtqDrop::short_chain:
    case VirtqDrop::too_big:
    case VirtqDrop::bad_vnet_hdr:
    case VirtqDrop::no_buffer:
    case VirtqDrop::kCount:
      break;
  }
  return Drop::link_down;
}

uint16_t vq_enqueue(VirtQueue& q, const VirtioNetCtx& c, const Pkt* in, uint16_t n) {
  uint16_t avail_idx = q.broken ? 0 : load16_acquire(q.avail + 1);
  const uint16_t start_used = q.used_idx;
  bool reread = false, full = false;
  uint16_t done = 0, sent = 0;
  uint32_t walked = 0;
  uint64_t bytes = 0;
  if (q.broken) {
    // Never looked at again until the front end sets the queue up anew.
  } else if (uint16_t(avail_idx - q.last_avail) > q.num) {
    q.fail(VirtqDrop::ring_bad_avail_idx, "receive queue: avail index more than the queue size ahead");
  } else {
    GpaCache gc(*c.mem);
    for (; done < n && walked < kBurstWalkBudget; ++done) {
      VirtqDrop why = kOk;
      Chain r = Chain::kOk;
      if (rx_fast(q, c, gc, in[done], avail_idx)) ++walked;
      else r = write_rx_frame(q, c, in[done], &avail_idx, &reread, &why, &walked);
      if (r == Chain::kFull) {
        full = true;
        break;  // the caller holds the rest (VhostUserPort's backlog)
      }
      if (r == Chain::kBroken) {
        q.fail(why, std::string("receive queue: ") + kVirtqDropInfo[size_t(why)].help);  // counts the frame
        if (c.port) c.port->drop_tx(port_drop_of(why));
        c.cache->free(in[done++].buf);
        break;
      }
      if (r == Chain::kOk) {
        ++sent;
        bytes += in[done].len;
      } else {
        rxq_drop(q, c, why);
      }
      c.cache->free(in[done].buf);
    }
  }
  if (q.broken) {  // the rest cannot be delivered: counted here, not left to the engine
    if (done < n) rxq_drop(q, c, VirtqDrop::not_ready, n - done);
    for (; done < n; ++done) c.cache->free(in[done].buf);
  }
  if (q.used_idx != start_used) publish_used(q);
  if (sent) {
    q.ctr->add(VirtqCounter::packets, sent);
    q.ctr->add(VirtqCounter::bytes, bytes);
    if (c.port) {
      c.port->add(PortCounter::tx_packets, sent);
      c.port->add(PortCounter::tx_bytes, bytes);
    }
  }
  q.rx_seen = avail_idx;
  q.rx_full = full;
  return done;
}

void vq_notify(VirtQueue& q, const VirtioNetCtx& c) {
  if (q.call_fd < 0 || (q.signalled_valid && q.signalled_used == q.used_idx)) return;
  // The used index is published; the guest's suppression state must be read
  // after it (the guest writes its state, then re-checks the used index).
  std::atomic_thread_fence(std::memory_order_seq_cst);
  const uint16_t old = q.signalled_used;
  const bool valid = q.signalled_valid;
  q.signalled_used = q.used_idx;
  q.signalled_valid = true;
  if (c.event_idx) {
    // vring_need_event (2.7.10): notify when used_event lies in (old, new].
    const uint16_t ev = load16(used_event_ptr(q));
    if (valid && uint16_t(q.used_idx - ev - 1) >= uint16_t(q.used_idx - old)) return;
  } else if (load16(q.avail) & kAvailNoInterrupt) {
    return;
  }
  uint64_t one = 1;
  ssize_t r = ::write(q.call_fd, &one, sizeof one);
  (void)r;
  q.ctr->add(VirtqCounter::notifies);
}

namespace {
// Asks the guest to kick when it publishes the avail entry at `at` (EVENT_IDX:
// avail_event; otherwise the used ring's flags), then fences, so that a look
// at the avail index afterwards cannot miss an entry published without a kick.
void ask_kick_at(VirtQueue& q, const VirtioNetCtx& c, uint16_t at) {
  q.kicks_on = true;
  if (c.event_idx) store16(avail_event_ptr(q), at);
  else store16(reinterpret_cast<uint16_t*>(q.used), 0);
  std::atomic_thread_fence(std::memory_order_seq_cst);
}
}  // namespace

void vq_set_kicks(VirtQueue& q, const VirtioNetCtx& c, bool on) {
  if (on) {
    ask_kick_at(q, c, q.last_avail);
    return;
  }
  if (!q.kicks_on) return;
  q.kicks_on = false;
  // EVENT_IDX: avail_event is left behind and the guest kicks once per
  // 65,536 entries; otherwise NO_NOTIFY.
  if (!c.event_idx) store16(reinterpret_cast<uint16_t*>(q.used), kUsedNoNotify);
}

bool vq_kick_on_next_buffer(VirtQueue& q, const VirtioNetCtx& c) {
  const uint16_t seen = q.rx_seen;  // vring_need_event: the guest kicks once its index passes it
  ask_kick_at(q, c, seen);
  return load16_acquire(q.avail + 1) == seen;
}

}  // namespace vpc
