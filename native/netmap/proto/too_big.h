// The answer a bridge gives for a frame too big for its path: ICMP
// Destination Unreachable / Fragmentation Needed (RFC 792, RFC 1191 next-hop
// MTU) or ICMPv6 Packet Too Big (RFC 4443 3.2, RFC 8201), sent back to the
// sender as if from the destination it tried to reach, which is what Linux's
// vxlan device does for bridged traffic. The switch has no IP address of its
// own on a guest's network, and the sender only needs an answer whose inner
// packet it recognises.
//
// Portable C++20, no engine dependency. Rate-limiting and counting are the
// caller's.
#pragma once

#include <cstdint>

#include "proto/reasons.h"

namespace vpc {

// Why no answer was built. One table, for the caller's counters.
#define VPC_TOO_BIG_SKIPS(X)                                                                                      \
  X(none, "an answer was built")                                                                                  \
  X(not_ip, "not IPv4 or IPv6 (after at most two VLAN tags)")                                                     \
  X(truncated, "the headers are cut short, or an IP length disagrees with the frame")                            \
  X(fits, "the IP packet is not larger than the MTU")                                                             \
  X(mtu_below_minimum, "the MTU is below the IP minimum (68 for IPv4, 1280 for IPv6): no useful answer")          \
  X(not_df, "IPv4 without DF: the sender allows routers to fragment it")                                          \
  X(fragment, "a non-first fragment (RFC 1812 4.3.2.7, RFC 4443 2.4)")                                            \
  X(icmp_error, "the packet is itself an ICMP or ICMPv6 error message")                                           \
  X(multicast_dst, "the destination MAC or IP address is multicast or broadcast")                                 \
  X(bad_src, "the source MAC is multicast, or the source IP is unspecified, multicast, broadcast or loopback")   \
  X(no_room, "the output buffer is too small for the answer")

enum class TooBigSkip : uint8_t { VPC_TOO_BIG_SKIPS(VPC_REASON_ENUM_ROW) kCount };
constexpr uint32_t kTooBigSkipCount = uint32_t(TooBigSkip::kCount);
const char* too_big_skip_name(TooBigSkip s);
const char* too_big_skip_help(TooBigSkip s);

// Largest IP packet of an answer: IPv4 576 (RFC 1812 4.3.2.3), IPv6 1280
// (RFC 4443 2.4(c)).
constexpr uint32_t kTooBigMax4 = 576;
constexpr uint32_t kTooBigMax6 = 1280;
// Room that is always enough for an answer: Ethernet + two VLAN tags + 1280.
constexpr uint32_t kTooBigMaxFrame = 14 + 8 + kTooBigMax6;

// Builds in out the answer to frame f (Ethernet II, up to two VLAN tags,
// copied into the answer) whose IP packet exceeds a path of `mtu` bytes of IP
// (an interface MTU, or a VXLAN inner MTU), and returns its length; 0 when it
// must not be answered, with the reason in *why.
//
//   Ethernet: destination = the frame's source MAC, source = its destination.
//   IPv4: type 3 code 4, next-hop MTU = mtu (RFC 1191), source = the original
//     destination, destination = the original source, TTL 64, TOS 0xC0
//     (precedence 6, RFC 1812 4.3.2.5), DF clear (it is at most 576 bytes),
//     ID = the original's (stateless; a different (src, dst, protocol)
//     triple, so it cannot mix with the original's fragments); carries the
//     original IP header and as much of what follows as keeps the answer
//     within 576 bytes.
//   IPv6: type 2 code 0, MTU = mtu, addresses swapped likewise, hop limit 64,
//     carries as much of the original packet as keeps it within 1280 bytes;
//     checksum over the pseudo-header.
//
// Not answered: an IP packet that fits; an IPv4 packet without DF (Linux's
// tunnels answer only DF packets: without DF the sender asked routers to
// fragment, which a bridge cannot, so the caller drops and counts it); a
// non-first fragment; an ICMP error (types 3, 4, 5, 11, 12) or ICMPv6 error
// (types below 128) found after the IPv6 hop-by-hop, routing, destination
// options and fragment headers; a multicast or broadcast destination, MAC or
// IP (RFC 4443 would allow a Packet Too Big to a multicast group, but a
// bridge answering for a group would answer once per member); an unspecified,
// multicast, broadcast, loopback or 0/8 source; an MTU below the family's
// minimum (68, 1280), which no answer can make the sender respect.
// out must not overlap f.
uint32_t icmp_too_big(const uint8_t* f, uint32_t len, uint32_t mtu, uint8_t* out, uint32_t cap,
                      TooBigSkip* why = nullptr);

}  // namespace vpc
