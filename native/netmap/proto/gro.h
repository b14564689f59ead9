// TCP receive coalescing (what Linux calls GRO): consecutive segments of one
// TCP connection become one super-frame with the state of a TSO frame, so a
// guest that takes TSO gets one frame and one pass through its stack for up
// to 64 KiB instead of one per segment.
//
// Used twice: by uso_coalesce() (proto/tunnel_gso.h) for the chunks of a
// VXLAN batch that arrived whole, and by the overlay's decapsulation for
// inner segments that arrived one VXLAN packet each (a wire, a NIC without
// GRO for tunnels), where the segments sit in separate buffers.
//
// A run starts with a segment (tcp_run_start) and takes the next ones while
// they continue it (tcp_run_next): same headers but for the fields a
// segmenter changes (IPv4 total length, ID and header checksum, IPv6 payload
// length, TCP sequence number, flags, checksum); IPv4 header checksum right;
// no Ethernet padding; the sequence number right after the run's last byte;
// no SYN, RST or URG; CWR only on the first; ECE and ACK as the first's; every
// segment but the last of the first one's payload size, which must not be
// zero. PSH, FIN or a shorter payload close the run (that segment is its
// last). With `verify`, each segment's TCP checksum must be right too (frames
// from a wire; a batch built on this host is trusted as the kernel trusts
// checksum-partial frames).
//
// Wire formats only: reads [f, f + len) of each segment, writes only the
// first segment's headers in tcp_run_finish.
#pragma once

#include <cstdint>

#include "core/offload.h"
#include "proto/gso.h"

namespace vpc {

struct TcpRun {
  FrameLayout L;             // the first segment's layout (every segment's)
  uint32_t mss = 0;          // the first segment's payload bytes
  uint32_t next_seq = 0;     // the sequence number the next segment must have
  uint32_t payload = 0;      // payload bytes so far
  uint32_t segments = 0;
  uint8_t flags0 = 0;        // the first segment's TCP flags
  uint8_t last_flags = 0;    // the last one's
  bool closed = false;       // PSH, FIN or a short segment came: nothing may follow
};

// Frame f (len bytes) starts a run: Ethernet (up to two tags) + IPv4/IPv6 +
// TCP with a payload, within the rules above. False: it cannot be coalesced
// with anything (the caller passes it on as it is).
bool tcp_run_start(const uint8_t* f, uint32_t len, bool verify, TcpRun* r);

// Frame s (len bytes) continues run r, whose first segment is f0: r is
// updated. False: it does not, and r is unchanged.
bool tcp_run_next(TcpRun* r, const uint8_t* f0, const uint8_t* s, uint32_t len, bool verify);

// The first segment's headers at f0 made those of the coalesced frame of r
// (its payloads follow the headers back to back, put there by the caller):
// IP length and IPv4 header checksum, PSH and FIN of the last segment, the
// TCP checksum field seeded with the pseudo-header sum as a TSO sender leaves
// it. Returns the frame's state (TCP GSO, checksum partial, gso_size = mss).
OffloadMeta tcp_run_finish(uint8_t* f0, const TcpRun& r);

}  // namespace vpc
