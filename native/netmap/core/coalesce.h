// Receive coalescing over a burst of descriptors (proto/gro.h has the TCP
// run rules): consecutive segments of one TCP connection are copied into one
// large buffer, the first segment whole and then the others' payloads, and
// become one frame with the state of a TSO frame (checksum partial, GSO TCP,
// gso_size = the first segment's payload). A port that takes TSO gets it
// whole; any other port gets it cut again at egress (core/egress.cc).
//
// Used by the overlay's decapsulation (segments that arrived one VXLAN packet
// each) and by the AF_XDP port (segments from a wire or a veth without TSO).
//
// What is not coalesced stays as it was, in order: frames with offload state,
// segments whose TCP checksum is wrong (with `verify`), anything but a run of
// two or more. When no large buffer is free the segments go on one by one.
// Callers look for runs only in bursts worth it (coalesce_worth), so 64-byte
// traffic pays nothing per frame.
#pragma once

#include <cstdint>
#include <cstring>

#include "core/buffer_pool.h"
#include "core/types.h"
#include "proto/gro.h"

namespace vpc {

// Shorter frames are pure ACKs or small requests: never the start of a run.
constexpr uint16_t kCoalesceMinLen = 128;

// A burst of n frames carrying `bytes` in all is worth looking at when its
// frames average kCoalesceMinLen + `overhead` bytes (outer headers the
// caller's byte count includes, e.g. 50 for VXLAN over IPv4).
inline bool coalesce_worth(uint64_t bytes, uint32_t n, uint32_t overhead = 0) {
  return n >= 2 && bytes >= uint64_t(n) * (kCoalesceMinLen + overhead);
}

// Coalesces pkts[0, n) in place and returns the new count.
// - same(i, j): may pkts[j] join a run pkts[i] started, beyond the TCP rules
//   (the overlay: from the same VTEP);
// - keep(to, from): pkts[from] is now at position `to` (the caller moves its
//   parallel arrays; pkts itself is moved here);
// - coalesced(i, j, q): pkts[i, j) became q, before their buffers are freed
//   (counters, traces).
template <class Same, class Keep, class Coalesced>
uint16_t coalesce_tcp_runs(BufferPool& pool, BufferCache& cache, Pkt* pkts, uint16_t n, bool verify, Same same,
                           Keep keep, Coalesced coalesced) {
  uint16_t i = 0;
  while (i < n && pkts[i].len < kCoalesceMinLen) ++i;
  if (i + 1 >= n) return n;
  const uint32_t max_frame = pool.max_large_frame();
  uint16_t w = i;
  auto put = [&](uint16_t from) {
    if (w != from) {
      pkts[w] = pkts[from];
      keep(w, from);
    }
    ++w;
  };
  while (i < n) {
    const Pkt p = pkts[i];
    uint16_t j = uint16_t(i + 1);
    TcpRun r;
    const uint8_t* f0 = pool.frame(p);
    if (j < n && p.len >= kCoalesceMinLen && !pkt_has_meta(p) && tcp_run_start(f0, p.len, verify, &r)) {
      const uint32_t hdr = r.L.hdr_len;
      while (j < n && same(i, j) && !pkt_has_meta(pkts[j]) && pkts[j].len > hdr &&
             hdr + r.payload + (pkts[j].len - hdr) <= max_frame &&
             tcp_run_next(&r, f0, pool.frame(pkts[j]), pkts[j].len, verify))
        ++j;
    }
    uint32_t idx;
    if (j - i < 2 || !cache.alloc_large(&idx)) {
      for (; i < j; ++i) put(i);
      continue;
    }
    const uint32_t hdr = r.L.hdr_len;
    uint8_t* o = pool.data(idx) + pool.headroom();
    std::memcpy(o, f0, p.len);
    uint32_t pos = p.len;
    for (uint16_t k = uint16_t(i + 1); k < j; ++k) {
      std::memcpy(o + pos, pool.frame(pkts[k]) + hdr, pkts[k].len - hdr);
      pos += pkts[k].len - hdr;
    }
    pool.meta(idx) = tcp_run_finish(o, r);
    Pkt q{idx, pool.headroom(), uint16_t(pos)};
    pkt_set_meta(q, true);
    coalesced(i, j, q);
    for (uint16_t k = i; k < j; ++k) cache.free(pkts[k].buf);
    pkts[i] = q;
    put(i);
    i = j;
  }
  return w;
}

}  // namespace vpc
