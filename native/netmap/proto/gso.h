// Software offloads: where a frame's headers are, checksum completion of
// checksum-partial frames, segmentation of GSO super-frames (TCP over IPv4
// and IPv6, UDP L4 / USO), and the ICMP "too big" answer a bridge gives for a
// frame that does not fit the path. Wire formats only: RFC 791, 8200, 9293,
// 768, 1071, 1191, 792, 4443, 8201. The offload state itself is OffloadMeta
// (core/offload.h), the fields of a virtio_net_hdr.
//
// Portable C++20: no Linux headers, no engine or pool dependency. The engine
// allocates the buffers; every function here reads only [f, f + len) and
// writes only [out, out + cap), whatever the bytes say.
//
// Design note with what is refused and why, and the benchmark figures:
// docs/design/offload.md.
#pragma once

#include <cstdint>

#include "core/offload.h"
#include "proto/reasons.h"

namespace vpc {

// Why an offload could not be carried out. Every function below takes an
// optional OffloadError* and writes it only when it fails. One table, so the
// engine can map each reason onto a drop counter (name = "gso_" + name, say)
// without a second list drifting from this one.
#define VPC_OFFLOAD_ERRORS(X)                                                                                    \
  X(none, "no error")                                                                                            \
  X(truncated, "a header runs past the end of the frame")                                                        \
  X(not_ip, "the EtherType is not IPv4 or IPv6 (after at most two VLAN tags)")                                   \
  X(bad_ip_header, "IP version or IPv4 header length invalid")                                                   \
  X(bad_ip_length, "the IP length field disagrees with the frame (or an IPv6 jumbogram)")                        \
  X(ip_fragment, "an IP fragment (never segmented)")                                                             \
  X(ipv6_ext, "an IPv6 extension header that is not supported (AH, ESP, a routing header with segments left, " \
               "more than 8 headers)")                                                                         \
  X(not_tcp_udp, "the transport protocol is not TCP or UDP")                                                     \
  X(bad_l4_header, "TCP data offset or UDP length invalid")                                                      \
  X(gso_mismatch, "the GSO type does not match the IP version or transport protocol")                           \
  X(gso_ufo, "UDP fragmentation offload (UFO) is refused")                                                       \
  X(gso_unknown, "unknown GSO type")                                                                             \
  X(bad_mss, "segment size 0 or larger than the frame's gso_size")                                                 \
  X(too_many_segments, "the segment size would cut the frame into more than kGsoMaxSegments segments")            \
  X(bad_csum_offsets, "csum_start/csum_offset point outside the frame")                                          \
  X(no_room, "the output buffer is too small")                                                                   \
  X(bad_segment, "segment index beyond the last segment")

enum class OffloadError : uint8_t { VPC_OFFLOAD_ERRORS(VPC_REASON_ENUM_ROW) kCount };
constexpr uint32_t kOffloadErrorCount = uint32_t(OffloadError::kCount);
const char* offload_error_name(OffloadError e);  // "truncated", ...
const char* offload_error_help(OffloadError e);  // one sentence

// ------------------------------------------------------------------ layout

// Ethernet II with up to two VLAN tags (802.1Q 0x8100 or 802.1ad 0x88A8, in
// any order): where the L3 header starts and its EtherType.
struct EthL3 {
  uint16_t off = 0;   // 14 + 4 per tag
  uint16_t type = 0;  // the EtherType after the tags
  uint8_t tags = 0;
};
// none, truncated (the frame ends inside the Ethernet header or a tag) or
// not_ip (a third tag).
OffloadError eth_l3(const uint8_t* f, uint32_t len, EthL3* out);

// Where the headers of an Ethernet/IP/TCP-or-UDP frame are. Offsets count
// from the first byte of the frame. Invariants frame_layout() guarantees (and
// the segmentation functions check again, so a stale or hand-made layout can
// never make them read or write out of bounds):
//   l3_off + 20 (IPv4) or 40 (IPv6) <= l4_off,  l4_off + l4_len == hdr_len,
//   hdr_len <= ip_end <= frame length.
struct FrameLayout {
  uint16_t l3_off = 0;    // IP header: 14 + 4 per VLAN tag
  uint16_t l4_off = 0;    // TCP/UDP header (after IPv4 options / IPv6 extension headers)
  uint16_t l4_len = 0;    // TCP header with options (data offset * 4), or 8 for UDP
  uint16_t hdr_len = 0;   // l4_off + l4_len: the bytes every segment starts with
  uint32_t ip_end = 0;    // l3_off + IP length: where the IP packet ends (Ethernet padding may follow);
                          // 32 bits because 22 bytes of tags + a 65535-byte IP packet exceed 16
  uint8_t ip_version = 0; // 4 or 6
  uint8_t l4_proto = 0;   // 6 (TCP) or 17 (UDP)
  uint8_t vlan_tags = 0;  // 0..2 (802.1Q 0x8100 or 802.1ad 0x88A8)

  uint32_t payload_len() const { return ip_end - hdr_len; }
};

// Parses Ethernet II with up to two VLAN tags, IPv4 (options allowed) or IPv6,
// then TCP or UDP. IPv6: the hop-by-hop, destination-options and routing
// extension headers are walked (at most 8; hop-by-hop only first; a routing
// header only with segments left 0, because otherwise the checksum's
// pseudo-header needs the final destination from inside it); a fragment
// header, AH, ESP or anything else ends with false (ipv6_ext or ip_fragment).
// IPv4 fragments are refused too. The IP length must fit in len (trailing
// Ethernet padding is allowed and excluded by ip_end); a UDP length must equal
// the IP payload left after the headers. Does not verify any checksum.
// Returns false, with the reason in *err when err is given, on anything
// inconsistent.
bool frame_layout(const uint8_t* f, uint32_t len, FrameLayout* out, OffloadError* err = nullptr);

// ------------------------------------------------------ checksum completion

// Completes a checksum-partial frame in place: the 16-bit field at
// csum_start + csum_offset holds the pseudo-header sum the sender seeded; the
// one's-complement sum of bytes [csum_start, len) is folded, complemented and
// stored there. A result of 0 is stored as 0xFFFF (the same value in one's
// complement; required for UDP, where 0 means "no checksum", and harmless for
// TCP and ICMPv6, as Linux does). The sum runs to len, not to the IP length:
// the frame must not carry Ethernet padding (a sender's checksum-partial frame
// never does).
// Does nothing and returns true when m does not ask for a checksum. Returns
// false (bad_csum_offsets), leaving the frame unchanged, when the field does not
// lie inside the frame.
bool csum_complete(uint8_t* f, uint32_t len, const OffloadMeta& m, OffloadError* err = nullptr);

// ------------------------------------------------------------ segmentation

// Segmentation of a GSO super-frame, for an engine that allocates its own
// buffers:
//
//   FrameLayout L;
//   if (!frame_layout(f, len, &L, &why)) drop(why);
//   uint16_t mss = std::min(m.gso_size, gso_mss_for_mtu(L, egress_l3_mtu));
//   uint32_t n = gso_segments(f, len, m, L, mss, &why);   // 0: drop(why)
//   for (i < n) { out = alloc(); k = gso_write_segment(f, len, L, mss, i, out, cap, &why); ... }
//
// `mss` is the payload per segment the caller wants; it may be smaller than
// m.gso_size (an overlay whose inner MTU is smaller than the guest's), never
// larger (segments would exceed what the sender sized them for). Every
// segment is complete: headers copied from the super-frame (VLAN tags
// included), IPv4 total length, ID (original + i, so segment 0 keeps the
// original's) and header checksum, IPv6 payload length, TCP sequence number
// (+ i * mss), FIN and PSH on the last segment only, CWR on the first only,
// the urgent pointer moved or cleared, the UDP length (USO), and the TCP/UDP
// checksum computed in full (pseudo-header from the addresses, header,
// payload) in the same pass that copies the payload. The super-frame's
// checksum field and m.csum_* are not trusted. Ethernet padding after ip_end
// is dropped. A frame whose payload fits in one mss gives one segment: the
// frame with its checksum completed.

// The most segments one super-frame is cut into: 64 KiB at 48 bytes a
// segment, Linux's smallest TCP MSS (tcp_min_snd_mss). A sender's TCP never
// asks for more; a gso_size of 1 (a hostile guest's, through its own packet
// socket or virtqueue) would otherwise make one frame 65,000 segments, and
// the engine would spend milliseconds and thousands of buffers on it.
constexpr uint32_t kGsoMaxSegments = (65535 + 47) / 48;

// Number of segments, or 0 with the reason: gso type unknown, UFO, or not
// matching L (TCPv4 needs IPv4/TCP, TCPv6 IPv6/TCP, USO UDP), mss 0 or above
// m.gso_size, more than kGsoMaxSegments, or a layout that does not fit the
// frame.
uint32_t gso_segments(const uint8_t* f, uint32_t len, const OffloadMeta& m, const FrameLayout& L, uint16_t mss,
                      OffloadError* err = nullptr);

// Writes segment i (0-based) into out and returns its length, or 0 with the
// reason (layout not fitting the frame, i past the last segment, cap too
// small). Needs no OffloadMeta: L says whether it is TCP or UDP.
uint32_t gso_write_segment(const uint8_t* f, uint32_t len, const FrameLayout& L, uint16_t mss, uint32_t i,
                           uint8_t* out, uint32_t cap, OffloadError* err = nullptr);

// Largest segment gso_write_segment() writes for this layout and mss: the
// buffer size the caller needs (hdr_len + mss).
inline uint32_t gso_max_segment_len(const FrameLayout& L, uint16_t mss) { return uint32_t(L.hdr_len) + mss; }

// The mss whose segments' IP packets are exactly `l3_mtu` bytes (an interface
// MTU, or a VXLAN inner MTU): l3_mtu minus the IP, extension and TCP/UDP
// header bytes of L. 0 when the headers alone do not fit; capped at 65535.
inline uint16_t gso_mss_for_mtu(const FrameLayout& L, uint32_t l3_mtu) {
  const uint32_t hdr = uint32_t(L.hdr_len) - L.l3_off;
  if (l3_mtu <= hdr) return 0;
  const uint32_t mss = l3_mtu - hdr;
  return uint16_t(mss > 0xFFFF ? 0xFFFF : mss);
}

// ---------------------------------------------------------- the sum itself

// One's-complement sum (RFC 1071) of [p, p + n) in the machine's byte order,
// 16-bit folded but not complemented. Byte-order independence (RFC 1071
// section 2(B)) means the result, stored with memcpy, is the sum in network
// order. Exposed for tests and the benchmark; `p` must start at an even offset
// from the start of the checksummed region.
uint16_t csum_native(const uint8_t* p, uint32_t n);

}  // namespace vpc
