#include "proto/tunnel_gso.h"

#include <cstring>

#include "proto/ethernet.h"
#include "proto/gro.h"
#include "proto/gso.h"
#include "proto/inet.h"

namespace vpc {

bool uso_coalesce(uint8_t* p, uint32_t len, uint32_t chunk, bool verify, UsoCoalesced* out) {
  if (chunk <= kVxlanHeaderLen + kEthHeaderLen || len <= chunk) return false;
  const uint32_t n = (len + chunk - 1) / chunk;
  uint8_t* f0 = p + kVxlanHeaderLen;
  TcpRun r;
  if (!tcp_run_start(f0, chunk - kVxlanHeaderLen, verify, &r)) return false;
  for (uint32_t i = 1; i < n; ++i) {
    const uint8_t* c = p + size_t(i) * chunk;
    const uint32_t clen = i + 1 < n ? chunk : len - i * chunk;
    if (clen <= kVxlanHeaderLen || std::memcmp(c, p, kVxlanHeaderLen) != 0) return false;
    if (!tcp_run_next(&r, f0, c + kVxlanHeaderLen, clen - kVxlanHeaderLen, verify)) return false;
    // Every chunk but the last is a full one: a run closed early (PSH, FIN, a
    // short segment) with chunks behind it is no sender's split.
    if (r.closed && i + 1 < n) return false;
  }
  // Checked: now rewrite. The payloads move down over the headers in between.
  const uint32_t hdr = r.L.hdr_len;
  uint8_t* w = f0 + chunk - kVxlanHeaderLen;
  for (uint32_t i = 1; i < n; ++i) {
    const uint8_t* c = p + size_t(i) * chunk;
    const uint32_t clen = i + 1 < n ? chunk : len - i * chunk;
    const uint32_t pay = clen - kVxlanHeaderLen - hdr;
    std::memmove(w, c + kVxlanHeaderLen + hdr, pay);
    w += pay;
  }
  out->inner_len = hdr + r.payload;
  out->segments = n;
  out->meta = tcp_run_finish(f0, r);
  return true;
}

}  // namespace vpc
