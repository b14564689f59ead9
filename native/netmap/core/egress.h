// Egress adaptation shared by the core's tx path (core/egress.cc) and the
// overlay's encapsulation (overlay/encap.cc): the drop reason for an offload
// error, and software segmentation of a GSO super-frame.
#pragma once

#include <algorithm>

#include "core/core.h"
#include "proto/gso.h"

namespace vpc {

inline Drop offload_drop(OffloadError e) {
  switch (e) {
    case OffloadError::not_ip:
    case OffloadError::ip_fragment:
    case OffloadError::ipv6_ext:
    case OffloadError::not_tcp_udp:
    case OffloadError::gso_ufo:
    case OffloadError::gso_unknown:
    case OffloadError::no_room:  // a segment larger than a buffer: not a pool shortage
      return Drop::gso_unsupported;
    default:
      return Drop::gso_malformed;
  }
}


// A GSO frame whose payload is one segment where it goes (within its
// gso_size and a path of l3_mtu bytes) is not a batch: its GSO state is
// cleared and it goes on whole, as a frame with a partial checksum, rather
// than being cut to fit a regular buffer. An AF_XDP port marks jumbo TCP
// frames as batches without knowing whether they are (ports/afxdp.cc,
// infer_tso). True when it cleared the state. Not for a frame with bytes
// past its IP packet: sent whole, they would go where they do not fit (a
// guest's TSO frame of 40 KB whose IP length says 100 bytes reached a port
// of MTU 1500 whole; found by fuzz_offload); segmenting leaves them out.
inline bool gso_single_segment(const uint8_t* f, uint32_t len, OffloadMeta& m, uint32_t l3_mtu) {
  FrameLayout L;
  if (!frame_layout(f, len, &L) || L.ip_end != len) return false;  // segmenting says why, or cuts the rest off
  const uint32_t mss = std::min<uint32_t>(m.gso_size, gso_mss_for_mtu(L, l3_mtu));
  if (mss == 0 || L.payload_len() > mss) return false;
  m.gso_type = OffloadMeta::kGsoNone;
  m.gso_size = 0;
  return true;
}

// Cuts a super-frame into segments whose IP packets fit `l3_mtu` (and a
// regular buffer), hands each to emit, frees the super-frame. Counts the
// super-frame and its segments on pc; whatever could not be produced is a
// counted drop. Returns true when every segment was emitted.
template <class Emit>
inline bool Core::segment(Pkt p, const OffloadMeta& m, uint32_t l3_mtu, PortCounterBlock* pc, SwitchCounterBlock* sw,
                   Emit&& emit) {
  BufferPool& pool = *pool_;
  const uint8_t* f = pool.frame(p);
  const uint32_t room = pool.max_frame();
  FrameLayout L;
  OffloadError err = OffloadError::none;
  uint32_t n = 0;
  uint16_t mss = 0;
  if (frame_layout(f, p.len, &L, &err)) {
    uint32_t fit = std::min<uint32_t>(gso_mss_for_mtu(L, l3_mtu), room > L.hdr_len ? room - L.hdr_len : 0);
    mss = uint16_t(std::min<uint32_t>(m.gso_size, fit));
    if (mss) n = gso_segments(f, p.len, m, L, mss, &err);
  }
  if (n == 0) {
    drop_frame(p, err == OffloadError::none ? Drop::mtu_exceeded : offload_drop(err), pc, sw);
    return false;
  }
  uint32_t done = 0;
  auto lose_rest = [&](Drop why) {
    pc->drop_tx(why, n - done);
    if (sw) sw->drop(why, n - done);
  };
  for (; done < n; ++done) {
    uint32_t idx;
    if (!cache_->alloc(&idx)) [[unlikely]] {
      lose_rest(Drop::no_buffer);
      break;
    }
    Pkt q{idx, pool.headroom(), 0};
    uint32_t k = gso_write_segment(f, p.len, L, mss, done, pool.frame(q), room, &err);
    if (k == 0) [[unlikely]] {
      cache_->free(idx);
      lose_rest(offload_drop(err));
      break;
    }
    q.len = uint16_t(k);
    emit(q);
  }
  pc->add(PortCounter::tx_gso_frames, 1);
  pc->add(PortCounter::tx_gso_segments, done);
  cache_->free(p.buf);
  return done == n;
}

}  // namespace vpc
