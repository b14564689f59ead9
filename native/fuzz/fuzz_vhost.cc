// Fuzz target: a hostile guest on a vhost-user port's split virtqueues
// (ports/virtio_ring.h). The guest's memory is two separate heap blocks of
// exact size (two regions, not adjacent in this process), so AddressSanitizer
// reports any access outside them; the guest writes arbitrary descriptor
// tables, avail rings, indexes and flags into them, and the device dequeues
// (guest transmit) and enqueues (guest receive) frames with and without
// offload state, with every combination of negotiated features.
//
// Input:
//   setup: u8 features (bit 0 mrg_rxbuf, 1 indirect, 2 event_idx, 3 12-byte
//          header, 4 guest_csum, 5 guest_tso), u8 log2 queue size (% 9: 1..256),
//          u16 last_avail, u16 used index (the device's starting state)
//   then operations, each starting with one byte (op % 5):
//   0 write:   u8 region, u16 offset, u8 count, count bytes: guest memory
//   1 desc:    u16 index, u64-ish addr (u8 region, u16 offset, or u32 raw
//              when region & 0x80), u16 len (or u32 when flag bit 7), u16
//              flags, u16 next: one descriptor of the main table
//   2 avail:   u16 ring slot, u16 head, then u16 avail idx (added or set)
//   3 dequeue: u8 max frames
//   4 enqueue: u8 count, per frame u16 length (% 2000, >= 14), u8 offload
//              (bit 0 checksum-partial, bit 1 TSO4, bit 2 in a large buffer;
//              a frame longer than a regular buffer is always in a large one)
// After every operation: buffers are either with the test, in the cache or
// in the pool (the audit checks double frees), and a broken queue stays
// broken (the device never touches it again).
#include <cstring>
#include <memory>

#include "fuzz_common.h"
#include "ports/virtio_ring.h"

namespace vpc::fuzz {
namespace {

constexpr uint64_t kGpa0 = 0x100000, kGpa1 = 0x900000;
constexpr size_t kSize0 = 64 * 1024, kSize1 = 16 * 1024;

struct Guest {
  std::unique_ptr<uint8_t[]> r0{new uint8_t[kSize0]()}, r1{new uint8_t[kSize1]()};
  GuestMemory mem;
  Guest() {
    mem.add(GuestRegion{kGpa0, kSize0, 0x7f0000000000ull, r0.get()});
    mem.add(GuestRegion{kGpa1, kSize1, 0x7f1000000000ull, r1.get()});
  }
  uint8_t* at(uint8_t region, uint16_t off, size_t* room) {
    if (region & 1) {
      off = uint16_t(off % kSize1);
      *room = kSize1 - off;
      return r1.get() + off;
    }
    *room = kSize0 - off;
    return r0.get() + off;
  }
  uint64_t gpa(uint8_t region, uint16_t off) const { return (region & 1) ? kGpa1 + off % kSize1 : kGpa0 + off; }
};

std::shared_ptr<BufferPool> make_pool() {
  BufferPoolOptions o;
  o.count = 1024;
  o.large_count = 8;
  o.hugepages = false;
  return BufferPool::create(o);
}

}  // namespace
}  // namespace vpc::fuzz

using namespace vpc;
using namespace vpc::fuzz;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static std::shared_ptr<BufferPool> pool = make_pool();
  Input in(data, size);
  Guest g;
  VirtqCounters ctr;
  {
    BufferCache cache(pool);
    const uint8_t feat = in.u8();
    VirtioNetCtx c;
    c.mem = &g.mem;
    c.pool = pool.get();
    c.cache = &cache;
    c.mrg_rxbuf = feat & 1;
    c.indirect = feat & 2;
    c.event_idx = feat & 4;
    c.hdr_len = (feat & 8) || c.mrg_rxbuf ? kVnetHdrMrgLen : kVnetHdrLen;
    c.guest_csum = feat & 16;
    c.guest_gso = (feat & 32) ? uint32_t(kOffTso4) : 0u;
    const uint32_t num = 1u << (in.u8() % 9);
    // The rings at fixed places of region 0; the guest may write over them.
    VirtQueue q;
    q.ctr = &ctr;
    q.num = num;
    q.desc_uva = 0x7f0000000000ull;
    q.avail_uva = q.desc_uva + 16 * 256;
    q.used_uva = q.avail_uva + 1024;
    q.addr_set = q.enabled = q.started = true;
    std::string err;
    if (!q.map(g.mem, &err)) fail("rings did not map: " + err);
    q.last_avail = in.u16();
    q.used_idx = in.u16();

    std::vector<Pkt> held;
    for (int ops = 0; !in.done() && ops < 64; ++ops) {
      switch (in.u8() % 5) {
        case 0: {
          const uint8_t r = in.u8();
          const uint16_t off = in.u16();
          size_t room;
          uint8_t* p = g.at(r, off, &room);
          Bytes b = in.bytes(in.u8());
          if (!b.empty()) std::memcpy(p, b.data(), std::min(room, b.size()));
          break;
        }
        case 1: {
          const uint16_t i = in.u16() % num;
          const uint8_t r = in.u8();
          uint64_t addr = (r & 0x80) ? uint64_t(in.u32()) << (r & 0x3F) : g.gpa(r, in.u16());
          const uint16_t fl = in.u16();
          const uint32_t len = (fl & 0x80) ? in.u32() : in.u16();
          const uint16_t next = in.u16();
          VringDesc d{addr, len, uint16_t(fl & 7), next};
          std::memcpy(&q.desc[i], &d, sizeof d);
          break;
        }
        case 2: {
          const uint16_t slot = in.u16() % num, head = in.u16();
          q.avail[2 + slot] = head;
          const uint16_t v = in.u16();
          q.avail[1] = (v & 0x8000) ? v : uint16_t(q.avail[1] + (v & 0xFF));
          break;
        }
        case 3: {
          const bool was_broken = q.broken;
          Pkt out[kMaxBurst];
          const uint16_t n = vq_dequeue(q, c, out, uint16_t(in.u8() % kMaxBurst + 1));
          if (was_broken && n) fail("a broken queue gave frames");
          for (uint16_t k = 0; k < n; ++k) {
            if (out[k].len == 0 || out[k].len > kMaxLargeFrame) fail("dequeued frame of bad length");
            if (pkt_off(out[k]) + out[k].len > pool->capacity(out[k].buf)) fail("frame beyond its buffer");
            held.push_back(out[k]);
          }
          vq_notify(q, c);
          break;
        }
        case 4: {
          const uint32_t n = in.u8() % 16 + 1;
          Pkt ps[16];
          uint32_t made = 0;
          for (uint32_t k = 0; k < n; ++k) {
            const uint16_t len = uint16_t(in.u16() % 2000 + 14);
            const uint8_t off = in.u8();
            uint32_t idx;
            const bool large = (off & 4) || len > pool->max_frame();
            if (!(large ? cache.alloc_large(&idx) : cache.alloc(&idx))) break;
            Pkt p{idx, pool->headroom(), len};
            std::memset(pool->data(idx) + pool->headroom(), 0xAB, len);
            if (off & 3 || large) {
              OffloadMeta m;
              if (off & 1) {
                m.flags = OffloadMeta::kNeedsCsum;
                m.csum_start = 14;
                m.csum_offset = 6;
              }
              if (off & 2) {
                m.flags = OffloadMeta::kNeedsCsum;
                m.gso_type = OffloadMeta::kGsoTcpv4;
                m.gso_size = 1000;
              }
              pool->meta(idx) = m;
              pkt_set_meta(p, true);
            }
            ps[made++] = p;
          }
          const bool was_broken = q.broken;
          const uint16_t took = made ? vq_enqueue(q, c, ps, uint16_t(made)) : 0;
          if (took > made) fail("enqueue took more than it was given");
          if (was_broken && took != made) fail("a broken queue must drop (and count) everything");
          for (uint32_t k = took; k < made; ++k) held.push_back(ps[k]);
          vq_notify(q, c);
          break;
        }
      }
      if (q.broken && q.last_error.empty()) fail("broken queue without lastError");
    }
    for (const Pkt& p : held) cache.free(p.buf);
  }
  if (pool->audit() && pool->audit()->held() != 0)
    fail("buffers leaked: " + std::to_string(pool->audit()->held()) + " still held");
  return 0;
}
