// The one's-complement sum (RFC 1071) at memory speed, shared by the
// checksum helpers in proto/inet.cc (csum_partial) and the segmentation code
// in proto/gso.cc (checksum completion, copy-and-sum of each segment).
// Sums run in native byte order; by RFC 1071's byte-order independence a
// folded native sum byte-swapped is the network-order sum.
#pragma once

#include <cstdint>
#include <cstring>

namespace vpc::csum_detail {

// Folds a 64-bit one's-complement accumulator to 16 bits (not complemented).
inline uint32_t fold64(uint64_t s) {
  s = (s & 0xFFFFFFFFull) + (s >> 32);  // < 2^33
  s = (s & 0xFFFF) + (s >> 16);         // < 2^18
  s = (s & 0xFFFF) + (s >> 16);         // < 2^17
  s = (s & 0xFFFF) + (s >> 16);         // <= 0xFFFF
  return uint32_t(s);
}

// The sum of 32-bit native words into 64-bit lanes: each word is at most
// 2^32 - 1, so a lane cannot overflow before 2^32 additions (beyond any
// 32-bit length), and no carry has to be propagated inside the loop. With the
// compiler's vector extensions this is two lanes per SSE2 register, 64 bytes
// per iteration: load, mask, shift, add, no branch on the data. (Summing
// 32-bit words is the same as summing 16-bit ones modulo 0xFFFF, since
// 2^16 = 1 modulo 0xFFFF.) An odd last byte is padded with a zero, as RFC
// 1071 prescribes.
// Copy = true also stores every byte read into dst: the copy and the sum in
// one pass, about as fast as memcpy alone (docs/design/offload.md).
typedef uint64_t u64x2 __attribute__((vector_size(16)));

template <bool Copy>
inline uint32_t sum_words(uint8_t* dst, const uint8_t* p, uint32_t n) {
  const u64x2 lo32 = {0xFFFFFFFFull, 0xFFFFFFFFull};
  u64x2 a0 = {0, 0}, a1 = {0, 0}, a2 = {0, 0}, a3 = {0, 0};
  while (n >= 64) {
    u64x2 x, y, z, w;
    std::memcpy(&x, p, 16);
    std::memcpy(&y, p + 16, 16);
    std::memcpy(&z, p + 32, 16);
    std::memcpy(&w, p + 48, 16);
    if constexpr (Copy) {
      std::memcpy(dst, &x, 16);
      std::memcpy(dst + 16, &y, 16);
      std::memcpy(dst + 32, &z, 16);
      std::memcpy(dst + 48, &w, 16);
      dst += 64;
    }
    a0 += (x & lo32) + (z & lo32);
    a1 += (x >> 32) + (z >> 32);
    a2 += (y & lo32) + (w & lo32);
    a3 += (y >> 32) + (w >> 32);
    p += 64;
    n -= 64;
  }
  while (n >= 16) {
    u64x2 x;
    std::memcpy(&x, p, 16);
    if constexpr (Copy) {
      std::memcpy(dst, &x, 16);
      dst += 16;
    }
    a0 += x & lo32;
    a1 += x >> 32;
    p += 16;
    n -= 16;
  }
  // The tail, by fixed-size pieces (a variable-length memcpy would be a
  // library call). Each piece sits at its own offset inside the padded
  // 16-byte block; in native order, a piece of bytes summed as a zero-padded
  // word keeps its bytes at their positions modulo 2 as long as every piece
  // starts at an even offset, which 8, 4 and 2 do.
  uint64_t t = 0;
  if (n & 8) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    if constexpr (Copy) std::memcpy(dst, &v, 8), dst += 8;
    t += (v & 0xFFFFFFFFull) + (v >> 32);
    p += 8;
  }
  if (n & 4) {
    uint32_t v;
    std::memcpy(&v, p, 4);
    if constexpr (Copy) std::memcpy(dst, &v, 4), dst += 4;
    t += v;
    p += 4;
  }
  if (n & 2) {
    uint16_t v;
    std::memcpy(&v, p, 2);
    if constexpr (Copy) std::memcpy(dst, &v, 2), dst += 2;
    t += v;
    p += 2;
  }
  if (n & 1) {
    uint16_t v = 0;  // the odd byte, padded with a zero byte after it
    std::memcpy(&v, p, 1);
    if constexpr (Copy) *dst = *p;
    t += v;
  }
  const u64x2 s = a0 + a1 + a2 + a3;  // each lane < 4 * 2 * (n / 64) * 2^32 < 2^61 for any 32-bit n
  return fold64(uint64_t(fold64(s[0])) + fold64(s[1]) + t);
}

}  // namespace vpc::csum_detail
