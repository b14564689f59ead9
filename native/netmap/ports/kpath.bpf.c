// The kernel fast path (design: docs/design/kernel-path.md): BPF programs
// that share one decision over the maps the engine keeps.
//
//   kp_tc    TC ingress (TCX) on an afpacket port's interface, and on the
//            uplink's. A frame the decision takes is redirected to the egress
//            interface (bpf_redirect, as a bridge's forwarding would transmit
//            it), VXLAN-encapsulated or -decapsulated on the way when one
//            side is a remote VTEP, and counted; everything else goes on
//            (TC_ACT_OK) as before, but for VXLAN to our VTEP that the
//            engine took: the host's stack gets no copy (engines_own).
//            On the uplink's GRO stage (a veth pair of the engine's), it
//            takes back what it sent through to be merged (from_merge).
//   kp_xdp   XDP on the uplink's interface while it has GRO on: decapsulates
//            what kp_tc would, before GRO, so a flow's packets reach the
//            guest merged; kp_tc redirects them by the metadata it leaves.
//   kp_sock  socket filter on the port's packet socket. Packet taps run
//            before TC ingress, so the engine's socket would see every frame
//            first: this filter refuses exactly the frames kp_tc will take.
//            It decides, and leaves its verdict for kp_tc (kp_last), which
//            runs next on the same CPU for the same frame and follows it
//            instead of deciding again: a table update between the two
//            cannot make them disagree, and the work (lookups, a UDP
//            checksum) is done once.
//
// A frame is taken only when all of this holds (anything else goes to the
// engine, which learns, floods, drops, answers ICMP too-big and counts):
//   - the fast path is on (kp_global: off while a capture or trace runs);
//   - the ingress interface is a port the engine enabled (kp_ifx, kp_ports);
//   - untagged, unicast destination;
//   - its source MAC is in the switch's table on this very port, and its
//     destination on another enabled port of the same switch, both entries
//     written by the engine at the switch's current generation (kp_gen):
//     an entry removed or moved in the engine bumps the generation, which
//     voids every entry of that switch at once;
//   - it fits both ports' MTU (a super-frame: its segments do).
// Over VXLAN (IPv4 underlay only; RFC 7348), one side is a remote member
// (kp_remote: the VTEP's outer headers, built by the engine):
//   - encapsulation: an IPv4 or IPv6 frame, plain or a TCP super-frame (the
//     uplink's device segments it, as for Linux's vxlan device), to a MAC
//     the engine learned behind that VTEP;
//   - decapsulation, on the uplink: a frame to our VTEP address and UDP
//     port, its IPv4 header checksum right, its UDP checksum zero (this
//     switch sends none, RFC 7348 5) or verified here (Linux's vxlan device
//     sends one by default), no IP options or fragments, VXLAN flags exactly
//     I, a VNI of a switch, from the VTEP the inner source MAC was learned
//     behind, to a local access port; a tunnel super-frame (a VTEP on this
//     host over a veth) only when it holds one inner TCP super-frame and
//     goes into the guest's end of a veth (decap_check). Everything else
//     goes to the engine, which checks and counts every case.
// Built with clang -target bpf (CMakeLists.txt), embedded in the library.
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

// kp_dest.port: a remote member (the low bits are its id) instead of a port.
#define KP_REMOTE 0x80000000u
// Linux 6.3 (Debian 12's headers predate them).
#define KP_DECAP_L3_IPV4 (1ULL << 7)
#define KP_DECAP_L3_IPV6 (1ULL << 8)
#define KP_VXLAN_LEN 50  // outer Ethernet is the frame's own: IPv4 20 + UDP 8 + VXLAN 8 + inner Ethernet 14

struct kp_port {
  __u32 ifindex;  // where frames to this port are redirected
  __u32 sw;       // the switch its untagged member joins
  __u32 mtu;      // the smaller of the port's MTU and its interface's
  __u32 on;
  __u32 uplink;   // the VXLAN uplink (sw unused)
  __u32 peer;     // a veth whose other end is in another namespace, noqueue: bpf_redirect_peer for decapsulated frames
  __u32 merge;    // the uplink: its GRO stage's sending end (0: none), where plain decapsulated frames go to be merged
};

struct kp_global {
  __u32 on;           // off while a capture or trace runs
  __u32 uplink;       // the uplink's port id
  __u32 ip4;          // our VTEP address, as on the wire
  __u32 udp_port;     // the VXLAN UDP port
  __u8 mac[6];        // the uplink's MAC
  __u16 xdp;          // set by kp_xdp once it has decapsulated a packet (the engine writes 0)
  __u8 ip6[16];       // our IPv6 VTEP address (all zeros: none)
};

// A remote member (a VTEP in one switch): everything encapsulation needs.
struct kp_remote {
  __u8 hdr[50];       // outer Ethernet, IPv4, UDP, VXLAN (VNI in); lengths, id, checksum, source port zero
  __u16 sport_min;    // UDP source ports: sport_min + flow hash % sport_span
  __u32 sport_span;
  __u32 sum;          // the ones'-complement sum of hdr's IPv4 header (big-endian words), unfolded
  __u32 sw;
  __u32 ifindex;      // the uplink's interface
  __u32 mtu;          // the overlay's inner MTU (L3 bytes)
  __u32 on;
  __u32 peer_ip4;     // the VTEP's address, as on the wire
  __u32 df;           // hdr has DF set (no IP id needed)
};

struct kp_key {
  __u32 sw;
  __u8 mac[6];
  __u16 pad;
};

struct kp_dest {
  __u32 port;     // a port id, or KP_REMOTE | a remote member id
  __u32 gen;
  __u64 last_ns;  // last frame from this MAC taken here (refreshed twice a second at most)
};

struct kp_stats {
  __u64 rx_packets, rx_bytes, tx_packets, tx_bytes, errors;
};

// Sizes are set by the loader (ports/kpath.cc) before the object is loaded.
struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __type(key, __u32);
  __type(value, struct kp_port);
  __uint(max_entries, 1);
} kp_ports SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __type(key, __u32);
  __type(value, __u32);
  __uint(max_entries, 1);
} kp_ifx SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __type(key, struct kp_key);
  __type(value, struct kp_dest);
  __uint(max_entries, 1);
} kp_fdb SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __type(key, __u32);
  __type(value, __u32);
  __uint(max_entries, 1);
} kp_gen SEC(".maps");

// VNI -> switch.
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __type(key, __u32);
  __type(value, __u32);
  __uint(max_entries, 1);
} kp_vni SEC(".maps");

// Remote member id -> its VTEP's outer headers.
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __type(key, __u32);
  __type(value, struct kp_remote);
  __uint(max_entries, 1);
} kp_remote SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __type(key, __u32);
  __type(value, struct kp_stats);
  __uint(max_entries, 1);
} kp_stats SEC(".maps");

// Per remote member (created by the engine with its kp_remote entry).
struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_HASH);
  __type(key, __u32);
  __type(value, struct kp_stats);
  __uint(max_entries, 1);
} kp_rstats SEC(".maps");

// Flows whose VXLAN super-frames go to the engine (outer source, UDP source
// port, VNI: the source port is the sender's hash of the inner flow) -> when
// the last one came. Their plain frames follow them there for a while, so a
// flow is never split between two paths and reordered.
struct kp_flow {
  __u32 saddr;
  __u32 sport_vni;
};
#define KP_FLOW_HOLD_NS 1000000000ull
struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __type(key, struct kp_flow);
  __type(value, __u64);
  __uint(max_entries, 4096);
} kp_gso_flows SEC(".maps");
// When the last super-frame of any flow came (0: never).
struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __type(key, __u32);
  __type(value, __u64);
  __uint(max_entries, 1);
} kp_gso_any SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __type(key, __u32);
  __type(value, struct kp_global);
  __uint(max_entries, 1);
} kp_global SEC(".maps");

enum { KP_NONE, KP_LOCAL, KP_ENCAP, KP_DECAP, KP_XDP };

// What kp_xdp leaves in front of a frame it decapsulated (XDP metadata),
// for kp_tc: the switch and the port the frame goes to. GRO merges only
// frames whose metadata is the same. Metadata proves nothing (an XDP
// program beyond a veth underlay can send frames with any), so kp_tc checks
// the inner frame against the tables again (from_xdp).
#define KP_META_MAGIC 0x6b707864u  // "kpxd"
struct kp_meta {
  __u32 magic;
  __u32 out;
  __u32 sw;
  __u32 pad;
};

// The socket filter's last verdict on this CPU, for the TC program that runs
// right after it on the same frame (packet taps, then TC ingress, in one
// pass of the receive path). The frame is recognised by its interface,
// length, GSO size and first 32 bytes; the TC program takes the verdict once
// (ifindex 0: none waiting). A frame the filter did not see (no socket yet,
// or gone) finds no verdict of its own and is decided by the TC program.
#define KP_SEEN_LEN 32
struct kp_last {
  __u32 ifindex;  // 0: no verdict waiting
  __u32 len;
  __u32 gso_size;
  __u32 kind;
  __u32 in, out, member, to_ifindex, inner_v6, shrink, peer;
  __u32 merge;  // also keeps the size a multiple of 8 bytes, as a per-CPU value is read (kpath_test's KpLast)
  __u8 seen[KP_SEEN_LEN];
};
struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __type(key, __u32);
  __type(value, struct kp_last);
  __uint(max_entries, 1);
} kp_last SEC(".maps");

struct kp_verdict {
  __u32 kind;
  __u32 in, out;       // ports: ingress, egress (the uplink's for encap)
  __u32 member;        // the remote member (encap, decap)
  __u32 ifindex;       // where the frame goes
  __u32 inner_v6;      // decap: the inner frame is IPv6
  __u32 shrink;        // encap: the super-frame's segments get 50 bytes smaller
  __u32 peer;          // decap: into the guest's end of its veth (kp_port.peer)
  __u32 sw;            // decap: the VNI's switch
  __u32 merge;         // decap: a plain frame goes through the uplink's GRO stage (its sending end)
  struct kp_dest* src;
  struct kp_remote* r;  // encap
};

static __always_inline __u8 byte_at(struct __sk_buff* skb, __u32 off, int* bad) {
  __u8 b = 0;
  if (bpf_skb_load_bytes(skb, off, &b, 1)) *bad = 1;
  return b;
}

// The L3 and L4 header bytes of each of a super-frame's segments: TCP (and,
// unless tcp_only, UDP) over IPv4 and IPv6 without extension headers; 0 for
// anything else, which goes to the engine.
static __always_inline __u32 seg_headers(struct __sk_buff* skb, __u32 proto, int tcp_only) {
  int bad = 0;
  __u32 l3, l4p;
  if (proto == 0x0800) {
    l3 = (byte_at(skb, 14, &bad) & 0xf) * 4;
    l4p = byte_at(skb, 23, &bad);
  } else if (proto == 0x86dd) {
    l3 = 40;
    l4p = byte_at(skb, 20, &bad);
  } else {
    return 0;
  }
  __u32 l4;
  if (l4p == 6)
    l4 = (byte_at(skb, 14 + l3 + 12, &bad) >> 4) * 4;
  else if (l4p == 17 && !tcp_only)
    l4 = 8;
  else
    return 0;
  return bad || l3 < 20 ? 0 : l3 + l4;
}

// Every segment of the frame fits `mtu` (L3 bytes); for a super-frame, once
// its segment size is `shrink` bytes smaller.
static __always_inline int fits(struct __sk_buff* skb, __u32 proto, __u32 mtu, int tcp_only, __u32 shrink) {
  if (!skb->gso_size) return !shrink && skb->len <= mtu + 14;
  __u32 hl = seg_headers(skb, proto, tcp_only);
  return hl && skb->gso_size > 2 * shrink && hl + skb->gso_size - shrink <= mtu;
}

static __always_inline __u32 be16(const __u8* p) { return (__u32)p[0] << 8 | p[1]; }

static __always_inline int mac_eq(const __u8* a, const __u8* b) {
  int d = 0;
#pragma unroll
  for (int i = 0; i < 6; ++i) d |= a[i] ^ b[i];
  return d == 0;
}

static __always_inline __u32 fold(__u32 sum) {
  sum = (sum & 0xffff) + (sum >> 16);
  sum = (sum & 0xffff) + (sum >> 16);
  return sum;
}

// The UDP checksum of an IPv4 packet (RFC 768), from the pseudo-header and
// the `ulen` bytes from offset 34, summed in 256-byte chunks. The ones'-
// complement sum does not depend on byte order (RFC 1071), so the words are
// added as they lie in memory, and the pseudo-header's protocol and length in
// network order to match. Up to KP_CSUM_CHUNKS chunks (a 9,216-byte datagram);
// anything longer is not verified here.
#define KP_CSUM_CHUNKS 36
struct kp_chunk {
  __u32 w[64];
};
struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __type(key, __u32);
  __type(value, struct kp_chunk);
  __uint(max_entries, 1);
} kp_scratch SEC(".maps");  // the chunk being summed (the stack is too small)

// ctx is an skb or, when xdp, an XDP buffer (the caller's constant: the
// compiler keeps one helper).
static __always_inline long load(void* ctx, int xdp, __u32 off, void* to, __u32 len) {
  return xdp ? bpf_xdp_load_bytes(ctx, off, to, len) : bpf_skb_load_bytes(ctx, off, to, len);
}

static __always_inline int udp_csum_ok(void* ctx, int xdp, const __u8* h, __u32 ulen) {
  __u32 zero = 0;
  struct kp_chunk* c = bpf_map_lookup_elem(&kp_scratch, &zero);
  if (!c || ulen > KP_CSUM_CHUNKS * 256) return 0;
  __u32 a, b;
  __builtin_memcpy(&a, h + 26, 4);
  __builtin_memcpy(&b, h + 30, 4);
  __u64 sum = (__u64)a + b + __builtin_bswap16(17) + __builtin_bswap16((__u16)ulen);
  for (__u32 i = 0; i < KP_CSUM_CHUNKS; ++i) {
    __u32 off = i * 256;
    if (off >= ulen) break;
    __u32 rem = ulen - off;
    if (rem >= 256) {
      if (load(ctx, xdp, 34 + off, c->w, 256)) return 0;
    } else {
      __u64 t = rem;
      asm volatile("%0 &= 0xff" : "+r"(t));  // 0..255 in terms the verifier follows (the compiler drops a C mask)
      if (!t) break;
      __builtin_memset(c, 0, sizeof *c);  // the tail's padding is zeros
      if (load(ctx, xdp, 34 + off, c->w, t)) return 0;
    }
#pragma unroll
    for (int j = 0; j < 64; ++j) sum += c->w[j];
  }
  sum = (sum & 0xffffffff) + (sum >> 32);
  sum = (sum & 0xffffffff) + (sum >> 32);
  return fold((__u32)sum) == 0xffff;
}

// A TCP super-frame inside VXLAN, as a VTEP on this host hands it over a veth
// underlay (the sending kernel's UDP-tunnel GSO: outer headers once, then
// the inner frame whole; or GRO for a tunnel socket): the inner frame is
// IPv4 without options or IPv6 without extension headers, TCP, and spans
// the rest of the frame (a UDP GSO batch of VXLAN datagrams, this switch's
// own, holds several inner frames: it fails here). Its L3 and L4 header
// bytes, or 0.
static __always_inline __u32 inner_tcp_headers(void* ctx, int xdp, __u32 len, __u32 proto) {
  __u8 ih[56];
  if (load(ctx, xdp, 64, ih, sizeof ih)) return 0;
  __u32 l3;
  if (proto == 0x0800) {
    if (ih[0] != 0x45 || ih[9] != 6 || (ih[6] & 0x3f) || ih[7] || be16(ih + 2) != len - 64) return 0;
    l3 = 20;
  } else {
    if ((ih[0] >> 4) != 6 || ih[6] != 6 || be16(ih + 4) != len - 64 - 40) return 0;
    l3 = 40;
  }
  __u32 doff = (__u32)(ih[l3 + 12] >> 4) * 4;
  return doff < 20 || l3 + doff >= len - 64 ? 0 : l3 + doff;  // headers within the inner packet, data behind them
}

// A VXLAN packet on the uplink that the kernel may decapsulate and deliver:
// its first 64 bytes h, its length, and its GSO size (a super-frame's), read
// from ctx (an skb, or an XDP buffer when xdp) by the caller.
static __always_inline int decap_check(void* ctx, int xdp, const __u8* h, __u32 len, __u32 gso_size,
                                       struct kp_global* g, __u32 in_port, struct kp_port* from,
                                       struct kp_verdict* v) {
  __u32 tot = be16(h + 16);
  if (tot != len - 14 || (!gso_size && tot > from->mtu) || (h[20] & 0x3f) || h[21]) return KP_NONE;
  __u32 sum = 0;
#pragma unroll
  for (int i = 0; i < 10; ++i) sum += be16(h + 14 + 2 * i);
  if (fold(sum) != 0xffff) return KP_NONE;
  // UDP (a checksum, when there is one, right: Linux's vxlan device sends
  // one by default; one left for a NIC to finish, from a VTEP on this host,
  // fails here and goes to the engine, which knows it is partial) and VXLAN.
  // A super-frame's checksums are the sending kernel's to finish (it came
  // from a stack on this host, or GRO checked it): not summed.
  __u32 ulen = tot - 20;
  if (be16(h + 38) != ulen || h[42] != 0x08) return KP_NONE;
  if (!gso_size && (h[40] || h[41]) && !udp_csum_ok(ctx, xdp, h, ulen)) return KP_NONE;
  __u32 vni = (__u32)h[46] << 16 | (__u32)h[47] << 8 | h[48];
  __u32* swp = bpf_map_lookup_elem(&kp_vni, &vni);
  if (!swp) return KP_NONE;
  __u32 sw = *swp;
  // The inner frame: unicast IPv4 or IPv6.
  const __u8* in = h + 50;
  __u32 proto = be16(in + 12);
  if ((in[0] & 1) || (proto != 0x0800 && proto != 0x86dd)) return KP_NONE;
  __u32 hl = 0;
  if (gso_size) {
    hl = inner_tcp_headers(ctx, xdp, len, proto);
    // Each outer packet fits the uplink; more than one segment.
    if (!hl || KP_VXLAN_LEN + hl + gso_size > from->mtu || len - 64 - hl <= gso_size) return KP_NONE;
  }
  // Decapsulated in XDP, it is on the uplink by this MAC until TC ingress
  // takes it: never the uplink's own.
  if (xdp && mac_eq(in, g->mac)) return KP_NONE;
  __u32* gen = bpf_map_lookup_elem(&kp_gen, &sw);
  if (!gen) return KP_NONE;
  struct kp_key k = {.sw = sw};
  __builtin_memcpy(k.mac, in + 6, 6);
  struct kp_dest* src = bpf_map_lookup_elem(&kp_fdb, &k);
  if (!src || !(src->port & KP_REMOTE) || src->gen != *gen) return KP_NONE;
  __u32 member = src->port & ~KP_REMOTE;
  struct kp_remote* r = bpf_map_lookup_elem(&kp_remote, &member);
  __u32 saddr;
  __builtin_memcpy(&saddr, h + 26, 4);
  if (!r || !r->on || r->sw != sw || r->peer_ip4 != saddr) return KP_NONE;
  __builtin_memcpy(k.mac, in, 6);
  struct kp_dest* dst_e = bpf_map_lookup_elem(&kp_fdb, &k);
  if (!dst_e || dst_e->gen != *gen || (dst_e->port & KP_REMOTE)) return KP_NONE;
  __u32 out_port = dst_e->port;
  struct kp_port* to = bpf_map_lookup_elem(&kp_ports, &out_port);
  if (!to || !to->on || to->uplink || to->sw != sw || !to->ifindex) return KP_NONE;
  if (gso_size) {
    // On this kernel the helper leaves the tunnel GSO state on a super-frame
    // it strips (the flag that clears it, BPF_F_ADJ_ROOM_DECAP_L4_UDP, is
    // newer): harmless to the stack that receives it, which a guest's end of
    // a veth leads to, but a device that segments tunnels itself (a NIC)
    // would be handed a wrong one. So only into the guest's end of a veth.
    if (!to->peer || hl + gso_size > to->mtu) return KP_NONE;
  } else if (len - KP_VXLAN_LEN - 14 > to->mtu) {
    return KP_NONE;
  }
  v->kind = KP_DECAP;
  v->sw = sw;
  v->in = in_port;
  v->out = out_port;
  v->member = member;
  v->ifindex = to->ifindex;
  v->inner_v6 = proto == 0x86dd;
  v->peer = to->peer;
  // A plain frame through the uplink's GRO stage, into a guest's veth only
  // (the merged frame keeps the sender's encapsulation flag over a veth
  // underlay, like the super-frames above), and only TCP with data: GRO
  // merges nothing else, and a pure ACK would only pay the extra hop.
  v->merge = !gso_size && !xdp && to->peer && from->merge && inner_tcp_headers(ctx, 0, len, proto) ? from->merge : 0;
  v->src = src;
  v->r = 0;
  return KP_DECAP;
}

// decap_check, after the outer addresses, and with super-frames the kernel
// cannot take kept with the engine together with their flow's plain frames.
static __always_inline int decap_verdict(void* ctx, int xdp, const __u8* h, __u32 len, __u32 gso_size,
                                         struct kp_global* g, __u32 in_port, struct kp_port* from,
                                         struct kp_verdict* v) {
  // Outer Ethernet and IPv4: to our MAC, no options, to our address.
  if (!mac_eq(h, g->mac) || be16(h + 12) != 0x0800 || h[14] != 0x45) return KP_NONE;
  __u32 dst;
  __builtin_memcpy(&dst, h + 30, 4);
  if (dst != g->ip4 || h[23] != 17 || be16(h + 36) != g->udp_port) return KP_NONE;
  // A super-frame the kernel does not take (below) goes to the engine, and
  // so that its flow is not split between two paths and reordered, the
  // flow's plain frames follow it there for a while (kp_gso_flows). One the
  // kernel takes ends its flow's hold at once.
  struct kp_flow fl = {.saddr = 0, .sport_vni = (__u32)h[34] << 24 | (__u32)h[35] << 16 | (__u32)h[47] << 8 | h[48]};
  __builtin_memcpy(&fl.saddr, h + 26, 4);
  __u64 now = bpf_ktime_get_coarse_ns();
  __u32 zero = 0;
  __u64* any = bpf_map_lookup_elem(&kp_gso_any, &zero);
  // Over a wire no super-frame ever comes: then no flow is held, and the
  // per-packet lookup is skipped.
  __u64* held = 0;
  if (!any || now - *any < KP_FLOW_HOLD_NS) held = bpf_map_lookup_elem(&kp_gso_flows, &fl);
  if (!gso_size && held && now - *held < KP_FLOW_HOLD_NS) return KP_NONE;
  int kind = decap_check(ctx, xdp, h, len, gso_size, g, in_port, from, v);
  if (!gso_size) return kind;
  if (kind == KP_DECAP) {
    if (held) bpf_map_delete_elem(&kp_gso_flows, &fl);
    return kind;
  }
  bpf_map_update_elem(&kp_gso_flows, &fl, &now, BPF_ANY);
  if (any && *any != now) *any = now;
  return KP_NONE;
}

static __always_inline int decide_decap(struct __sk_buff* skb, struct kp_global* g, __u32 in_port,
                                        struct kp_port* from, struct kp_verdict* v) {
  if (skb->vlan_present) return KP_NONE;
  __u8 h[64];
  if (bpf_skb_load_bytes(skb, 0, h, sizeof h)) return KP_NONE;
  // A unicast frame to another MAC, while the XDP stage decapsulates: a
  // frame kp_xdp decapsulated on its way to TC ingress (which finds kp_xdp's
  // metadata on it), or one the engine would drop (outer_dst_mac) and the
  // host's stack drops (not for this host). The socket filter refuses both.
  if (!mac_eq(h, g->mac)) return g->xdp && !(h[0] & 1) ? KP_XDP : KP_NONE;
  return decap_verdict(skb, 0, h, skb->len, skb->gso_size, g, in_port, from, v);
}

static __always_inline int decide(struct __sk_buff* skb, struct kp_verdict* v) {
  __u32 zero = 0;
  struct kp_global* g = bpf_map_lookup_elem(&kp_global, &zero);
  if (!g || !g->on) return KP_NONE;
  __u32 ifx = skb->ifindex;
  __u32* in = bpf_map_lookup_elem(&kp_ifx, &ifx);
  if (!in) return KP_NONE;
  __u32 in_port = *in;
  struct kp_port* from = bpf_map_lookup_elem(&kp_ports, &in_port);
  if (!from || !from->on) return KP_NONE;
  if (from->uplink) return decide_decap(skb, g, in_port, from, v);
  if (skb->vlan_present) return KP_NONE;
  __u8 eth[14];
  if (bpf_skb_load_bytes(skb, 0, eth, sizeof eth)) return KP_NONE;
  if (eth[0] & 1) return KP_NONE;  // broadcast and multicast: the engine floods
  __u32 proto = be16(eth + 12);
  if (proto == 0x8100 || proto == 0x88a8) return KP_NONE;
  __u32 sw = from->sw;
  __u32* gen = bpf_map_lookup_elem(&kp_gen, &sw);
  if (!gen) return KP_NONE;
  struct kp_key k = {.sw = sw};
  __builtin_memcpy(k.mac, eth + 6, 6);
  struct kp_dest* src = bpf_map_lookup_elem(&kp_fdb, &k);
  if (!src || src->port != in_port || src->gen != *gen) return KP_NONE;
  __builtin_memcpy(k.mac, eth, 6);
  struct kp_dest* dst = bpf_map_lookup_elem(&kp_fdb, &k);
  if (!dst || dst->gen != *gen || dst->port == in_port) return KP_NONE;
  __u32 out_port = dst->port;
  v->in = in_port;
  v->src = src;
  if (out_port & KP_REMOTE) {
    // To a VTEP: IPv4 or IPv6 only (the encapsulation helper needs it), a
    // super-frame only when it is TCP, an IPv4 total length that fits.
    __u32 member = out_port & ~KP_REMOTE;
    struct kp_remote* r = bpf_map_lookup_elem(&kp_remote, &member);
    if (!r || !r->on || r->sw != sw || !r->ifindex) return KP_NONE;
    if (proto != 0x0800 && proto != 0x86dd) return KP_NONE;
    if (skb->len + KP_VXLAN_LEN - 14 > 0xffff) return KP_NONE;
    // A super-frame whose segments would not fit the inner MTU is cut 50
    // bytes smaller (a guest with the underlay's MTU), as the engine cuts it.
    __u32 mtu = from->mtu < r->mtu ? from->mtu : r->mtu;
    if (fits(skb, proto, mtu, 1, 0))
      v->shrink = 0;
    else if (fits(skb, proto, mtu, 1, KP_VXLAN_LEN))
      v->shrink = 1;
    else
      return KP_NONE;
    v->kind = KP_ENCAP;
    v->out = g->uplink;
    v->member = member;
    v->ifindex = r->ifindex;
    v->r = r;
    return KP_ENCAP;
  }
  struct kp_port* to = bpf_map_lookup_elem(&kp_ports, &out_port);
  if (!to || !to->on || to->uplink || to->sw != sw || !to->ifindex) return KP_NONE;
  if (!fits(skb, proto, from->mtu < to->mtu ? from->mtu : to->mtu, 0, 0)) return KP_NONE;
  v->kind = KP_LOCAL;
  v->out = out_port;
  v->ifindex = to->ifindex;
  v->r = 0;
  return KP_LOCAL;
}

// The engine's hash of the inner flow (inner_flow_hash, overlay/encap.cc),
// step for step: MACs and EtherType, then for IPv4 the addresses and
// protocol and, in a first fragment of TCP or UDP, the ports; for IPv6 the
// addresses, next header and, for TCP or UDP, the ports. A flow keeps one
// outer UDP source port (RFC 7348 5) whether the engine or the kernel
// encapsulates it, so it moves between them without changing its ECMP path
// or its receiver's queue. Fields past the frame's end are left out, as the
// engine's length checks leave them out.
static __always_inline __u64 flow_mix(__u64 h, __u64 v) {
  h ^= v + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2);
  return h * 0xD6E8FEB86659FD93ull;
}

static __always_inline __u32 inner_flow_hash(struct __sk_buff* skb) {
  __u8 f[14];
  __u64 h = 0x9E3779B97F4A7C15ull;
  if (bpf_skb_load_bytes(skb, 0, f, 14)) return 0;
  __u64 a, b;
  __u32 c;
  __builtin_memcpy(&a, f, 8);
  __builtin_memcpy(&c, f + 8, 4);
  const __u32 et = be16(f + 12);
  b = c | ((__u64)et << 32);
  h = flow_mix(h, a);
  h = flow_mix(h, b);
  __u32 ports;
  if (et == 0x0800) {
    __u8 ip[20];
    if (bpf_skb_load_bytes(skb, 14, ip, 20)) return h >> 32;
    __u64 addrs;
    __builtin_memcpy(&addrs, ip + 12, 8);
    h = flow_mix(h, addrs ^ ip[9]);
    const __u32 ihl = (ip[0] & 0x0F) * 4;
    const int first_fragment = (be16(ip + 6) & 0x1FFF) == 0;
    if (first_fragment && (ip[9] == 6 || ip[9] == 17) && !bpf_skb_load_bytes(skb, 14 + ihl, &ports, 4))
      h = flow_mix(h, ports);
  } else if (et == 0x86DD) {
    __u8 ip[40];
    if (bpf_skb_load_bytes(skb, 14, ip, 40)) return h >> 32;
    __u64 w[4];
    __builtin_memcpy(w, ip + 8, 32);
    h = flow_mix(h, w[0] ^ w[2]);
    h = flow_mix(h, w[1] ^ w[3] ^ ip[6]);
    if ((ip[6] == 6 || ip[6] == 17) && !bpf_skb_load_bytes(skb, 14 + 40, &ports, 4)) h = flow_mix(h, ports);
  }
  return h >> 32;
}

// Outer headers in front of the frame (RFC 7348 5): the frame's Ethernet
// header becomes the inner one. A super-frame is marked as a UDP tunnel with
// its gso_size kept, so the uplink's device (or software GSO) cuts it into
// VXLAN packets of the inner MTU, as Linux's vxlan device's are.
static __always_inline int encap(struct __sk_buff* skb, struct kp_remote* r, int shrink) {
  __u32 inner = skb->len;
  __u32 hash = inner_flow_hash(skb);
  __u8 h[64];
  if (bpf_skb_load_bytes(skb, 0, h + 50, 14)) return -1;
  __builtin_memcpy(h, r->hdr, 50);
  __u32 tot = inner + KP_VXLAN_LEN - 14;
  __u32 id = r->df ? 0 : (bpf_get_prandom_u32() & 0xffff);
  h[16] = tot >> 8;
  h[17] = tot;
  h[18] = id >> 8;
  h[19] = id;
  __u32 c = ~fold(r->sum + tot + id) & 0xffff;
  h[24] = c >> 8;
  h[25] = c;
  __u32 span = r->sport_span ? r->sport_span : 1;
  __u32 sport = r->sport_min + hash % span;
  h[34] = sport >> 8;
  h[35] = sport;
  __u32 ulen = tot - 20;
  h[38] = ulen >> 8;
  h[39] = ulen;
  // The tunnel metadata (inner headers, the outer protocol, UDP-tunnel GSO)
  // lets devices offload checksums and segmentation. A plain frame the
  // sender already tunnelled itself (a guest's own VXLAN with a partial
  // checksum) cannot take it twice, and does not need it: it goes without.
  __u64 flags = (shrink ? 0 : BPF_F_ADJ_ROOM_FIXED_GSO) | BPF_F_ADJ_ROOM_ENCAP_L3_IPV4 | BPF_F_ADJ_ROOM_ENCAP_L4_UDP |
                BPF_F_ADJ_ROOM_ENCAP_L2_ETH | BPF_F_ADJ_ROOM_ENCAP_L2(14);
  if (bpf_skb_adjust_room(skb, KP_VXLAN_LEN, BPF_ADJ_ROOM_MAC, flags) &&
      (skb->gso_size || bpf_skb_adjust_room(skb, KP_VXLAN_LEN, BPF_ADJ_ROOM_MAC, 0)))
    return -1;
  return bpf_skb_store_bytes(skb, 0, h, sizeof h, 0) ? -1 : 0;
}

// The inner Ethernet header replaces the outer one, and what was between
// them goes.
static __always_inline int decap(struct __sk_buff* skb, int inner_v6) {
  __u8 eth[14];
  if (bpf_skb_load_bytes(skb, KP_VXLAN_LEN, eth, sizeof eth)) return -1;
  // A super-frame keeps its segment size (the inner TCP's MSS).
  __u64 flags = BPF_F_ADJ_ROOM_FIXED_GSO | (inner_v6 ? KP_DECAP_L3_IPV6 : KP_DECAP_L3_IPV4);
  if (bpf_skb_adjust_room(skb, -KP_VXLAN_LEN, BPF_ADJ_ROOM_MAC, flags))
    return -1;
  return bpf_skb_store_bytes(skb, 0, eth, sizeof eth, 0) ? -1 : 0;
}

static __always_inline void count(void* map, __u32 key, int rx, __u64 len) {
  struct kp_stats* s = bpf_map_lookup_elem(map, &key);
  if (!s) return;
  if (rx) {
    s->rx_packets++;
    s->rx_bytes += len;
  } else {
    s->tx_packets++;
    s->tx_bytes += len;
  }
}

// The engine ages a MAC by this stamp; writing it twice a second at most
// keeps the entry's cache line from bouncing between CPUs.
static __always_inline void stamp(struct kp_dest* src) {
  __u64 now = bpf_ktime_get_coarse_ns();
  if (now - src->last_ns > 500000000ull) src->last_ns = now;
}

// What the socket filter decided, left for the TC program (kp_last).
static __always_inline void leave(struct __sk_buff* skb, int kind, const struct kp_verdict* v) {
  __u32 zero = 0;
  struct kp_last* l = bpf_map_lookup_elem(&kp_last, &zero);
  if (!l) return;
  if (bpf_skb_load_bytes(skb, 0, l->seen, KP_SEEN_LEN)) {
    l->ifindex = 0;  // a runt: the TC program decides for itself
    return;
  }
  l->ifindex = skb->ifindex;
  l->len = skb->len;
  l->gso_size = skb->gso_size;
  l->kind = kind;
  l->in = v->in;
  l->out = v->out;
  l->member = v->member;
  l->to_ifindex = v->ifindex;
  l->inner_v6 = v->inner_v6;
  l->shrink = v->shrink;
  l->peer = v->peer;
  l->merge = v->merge;
}

// The filter's verdict on this very frame, taken once; or none.
static __always_inline struct kp_last* left_for(struct __sk_buff* skb) {
  __u32 zero = 0;
  struct kp_last* l = bpf_map_lookup_elem(&kp_last, &zero);
  if (!l || !l->ifindex) return 0;
  __u32 ifindex = l->ifindex;
  l->ifindex = 0;
  if (ifindex != skb->ifindex || l->len != skb->len || l->gso_size != skb->gso_size) return 0;
  __u64 seen[KP_SEEN_LEN / 8];
  if (bpf_skb_load_bytes(skb, 0, seen, sizeof seen)) return 0;
  const __u64* was = (const __u64*)l->seen;
#pragma unroll
  for (int i = 0; i < KP_SEEN_LEN / 8; ++i)
    if (seen[i] != was[i]) return 0;
  return l;
}

// A VXLAN datagram to our VTEP that the engine takes: untagged, on the
// uplink, to its MAC, UDP to our VTEP address (IPv4 without options and not
// a fragment, or IPv6 with UDP as its next header) and port. The engine's
// packet socket had its copy before TC ingress; the address is the
// engine's, not the kernel's, so the host's own stack could only look up a
// route for it and drop it, or (IPv6) answer it with ICMPv6 address
// unreachable (rate-limited, but the lookups are paid per packet): 7.8% of
// the engines' samples in one profile over an IPv6 underlay, in the
// sender's softirq. So the kernel's copy ends here.
static __always_inline int engines_own(struct __sk_buff* skb) {
  __u32 zero = 0;
  struct kp_global* g = bpf_map_lookup_elem(&kp_global, &zero);
  if (!g || !g->udp_port || skb->vlan_present) return 0;
  __u32 ifx = skb->ifindex;
  __u32* in = bpf_map_lookup_elem(&kp_ifx, &ifx);
  if (!in) return 0;
  __u32 in_port = *in;
  struct kp_port* from = bpf_map_lookup_elem(&kp_ports, &in_port);
  if (!from || !from->on || !from->uplink) return 0;
  __u8 h[58];
  if (bpf_skb_load_bytes(skb, 0, h, sizeof h) || !mac_eq(h, g->mac)) return 0;
  __u32 proto = be16(h + 12);
  if (proto == 0x0800) {
    __u32 dst;
    __builtin_memcpy(&dst, h + 30, 4);
    return g->ip4 && dst == g->ip4 && h[14] == 0x45 && h[23] == 17 && !(be16(h + 20) & 0x3fff) &&
           be16(h + 36) == g->udp_port;
  }
  if (proto != 0x86dd || h[20] != 17) return 0;
  __u8 any = 0, diff = 0;
#pragma unroll
  for (int i = 0; i < 16; ++i) {
    any |= g->ip6[i];
    diff |= h[38 + i] ^ g->ip6[i];
  }
  return any && !diff && be16(h + 56) == g->udp_port;
}

// A decapsulated frame on its way to a port from an interface whose MAC is
// not its destination (the uplink after XDP, the GRO stage's end): the
// receive path typed it for another host, and before Linux 6.15 a redirect
// into a veth's other end keeps that type, which the guest's IP input drops.
#define KP_PACKET_HOST 0
static __always_inline int to_port(struct __sk_buff* skb, struct kp_port* to) {
  if (!to->peer) return bpf_redirect(to->ifindex, 0);
  bpf_skb_change_type(skb, KP_PACKET_HOST);
  return bpf_redirect_peer(to->ifindex, 0);
}

// The inner frame behind kp_meta still fits the tables: unicast from a MAC
// learned behind a remote VTEP of switch sw, to port `out` of that switch,
// both entries of its current generation. What kp_xdp checked of the outer
// headers (VNI, the VTEP's address, checksums) is gone with them, so metadata
// forged beyond a veth underlay gets no further than forged VXLAN would.
static __always_inline struct kp_port* xdp_target(struct __sk_buff* skb, __u32 sw, __u32 out) {
  __u8 eth[12];
  if (bpf_skb_load_bytes(skb, 0, eth, sizeof eth) || (eth[0] & 1)) return 0;
  __u32* gen = bpf_map_lookup_elem(&kp_gen, &sw);
  if (!gen) return 0;
  struct kp_key k = {.sw = sw};
  __builtin_memcpy(k.mac, eth + 6, 6);
  struct kp_dest* src = bpf_map_lookup_elem(&kp_fdb, &k);
  if (!src || !(src->port & KP_REMOTE) || src->gen != *gen) return 0;
  __u32 member = src->port & ~KP_REMOTE;
  struct kp_remote* r = bpf_map_lookup_elem(&kp_remote, &member);
  if (!r || !r->on || r->sw != sw) return 0;
  __builtin_memcpy(k.mac, eth, 6);
  struct kp_dest* dst = bpf_map_lookup_elem(&kp_fdb, &k);
  if (!dst || dst->port != out || dst->gen != *gen) return 0;
  struct kp_port* to = bpf_map_lookup_elem(&kp_ports, &out);
  if (!to || !to->on || to->uplink || to->sw != sw || !to->ifindex) return 0;
  return to;
}

// A frame kp_xdp decapsulated on the uplink (its metadata says where it
// goes; counted and stamped there, packet by packet, before GRO merged
// them): -1 if this is not one. One that no longer fits the tables (its
// port or entries went since, or forged metadata) is a counted drop
// (kernel_path_error), never the host's.
static __always_inline int from_xdp(struct __sk_buff* skb) {
  void* data = (void*)(long)skb->data;
  struct kp_meta* m = (void*)(long)skb->data_meta;
  if ((void*)(m + 1) > data || m->magic != KP_META_MAGIC) return -1;
  __u32 out = m->out, sw = m->sw;
  __u32 ifx = skb->ifindex;
  __u32* in = bpf_map_lookup_elem(&kp_ifx, &ifx);
  if (!in) return -1;
  __u32 in_port = *in;
  struct kp_port* from = bpf_map_lookup_elem(&kp_ports, &in_port);
  if (!from || !from->uplink) return -1;  // not on the uplink: not kp_xdp's
  left_for(skb);                          // the socket filter refused it: its verdict goes
  struct kp_port* to = xdp_target(skb, sw, out);
  if (!to) {
    struct kp_stats* s = bpf_map_lookup_elem(&kp_stats, &in_port);
    if (s) s->errors++;
    return TC_ACT_SHOT;
  }
  return to_port(skb, to);
}

// The uplink's GRO stage (docs/design/kernel-path.md#gro-stage): a veth
// pair of the engine's whose receiving end has GRO, and this program at its
// TC ingress. kp_tc sends a plain frame it decapsulated into the sending end
// with its port in the mark (KP_MERGE_TAG | port; the mark stays within a
// namespace), the receiving end's GRO merges a flow's frames, and here the
// merged frame goes on to its port, checked against the tables again as
// kp_xdp's are (xdp_target). -1: this is not a stage's receiving end (it is
// in kp_ifx as the uplink's port, by another index than the uplink's).
#define KP_MERGE_TAG 0x6b000000u
static __always_inline int from_merge(struct __sk_buff* skb) {
  // The mark first, cheap, for every frame on every port: a frame without
  // it is no stage's (one on the stage without it, which nothing of ours
  // sends, goes to the host's stack, which drops it as for another host).
  // A mark does not cross namespaces, so no guest can set it.
  __u32 mark = skb->mark;
  if ((mark & 0xff000000u) != KP_MERGE_TAG) return -1;
  __u32 ifx = skb->ifindex;
  __u32* in = bpf_map_lookup_elem(&kp_ifx, &ifx);
  if (!in) return -1;
  __u32 in_port = *in;
  struct kp_port* from = bpf_map_lookup_elem(&kp_ports, &in_port);
  if (!from || !from->uplink || from->ifindex == ifx) return -1;
  __u32 out = mark & 0xffffffu;
  skb->mark = 0;
  struct kp_port* p = bpf_map_lookup_elem(&kp_ports, &out);
  struct kp_port* to = p ? xdp_target(skb, p->sw, out) : 0;
  if (!to) {
    struct kp_stats* s = bpf_map_lookup_elem(&kp_stats, &in_port);
    if (s) s->errors++;
    return TC_ACT_SHOT;
  }
  return to_port(skb, to);
}

SEC("tc")
int kp_tc(struct __sk_buff* skb) {
  int x = from_xdp(skb);
  if (x >= 0) return x;
  x = from_merge(skb);
  if (x >= 0) return x;
  struct kp_verdict v = {};
  int kind;
  struct kp_last* l = left_for(skb);
  if (l) {
    // The socket filter has decided for this frame (and stamped its source):
    // follow it, even if a table changed since.
    kind = l->kind;
    if (kind == KP_NONE || kind == KP_XDP) return engines_own(skb) ? TC_ACT_SHOT : TC_ACT_OK;
    v.in = l->in;
    v.out = l->out;
    v.member = l->member;
    v.ifindex = l->to_ifindex;
    v.inner_v6 = l->inner_v6;
    v.shrink = l->shrink;
    v.peer = l->peer;
    v.merge = l->merge;
    if (kind == KP_ENCAP) v.r = bpf_map_lookup_elem(&kp_remote, &v.member);
  } else {
    kind = decide(skb, &v);
    if (kind == KP_NONE || kind == KP_XDP) return engines_own(skb) ? TC_ACT_SHOT : TC_ACT_OK;
    stamp(v.src);
  }
  __u64 len = skb->len;
  __u64 out_len = len;
  if (kind == KP_ENCAP || kind == KP_DECAP) {
    // The socket filter refused the frame already: if the kernel cannot
    // rewrite it (no memory, or the VTEP's record left since the filter
    // decided), it is a counted drop.
    int bad = kind == KP_ENCAP ? (!v.r || encap(skb, v.r, v.shrink)) : decap(skb, v.inner_v6);
    if (bad) {
      struct kp_stats* s = bpf_map_lookup_elem(&kp_stats, &v.in);
      if (s) s->errors++;
      return TC_ACT_SHOT;
    }
    out_len = skb->len;
    // The switch's traffic with the VTEP, in inner bytes.
    count(&kp_rstats, v.member, kind == KP_DECAP, kind == KP_DECAP ? out_len : len);
  }
  count(&kp_stats, v.in, 1, len);
  count(&kp_stats, v.out, 0, out_len);
  // Decapsulated, from the uplink's receive softirq straight into the
  // guest's end of its veth (this is TC ingress): no pass through the host
  // end's transmit and the backlog queue. Only for decapsulation: between
  // two local ports the egress redirect measured as fast or faster
  // (docs/design/kernel-path.md).
  // A plain frame, where the uplink has a GRO stage: through it first.
  if (kind == KP_DECAP && v.merge && v.out <= 0xffffffu) {
    skb->mark = KP_MERGE_TAG | v.out;
    // On one of this CPU's queues of the stage, by the frame's flow hash (a
    // queue recorded here is the one the device's queue choice takes, less
    // one): each queue's NAPI runs on the CPU that fills it.
    skb->queue_mapping = bpf_get_smp_processor_id() * 4 + (bpf_get_hash_recalc(skb) & 3) + 1;
    return bpf_redirect(v.merge, 0);
  }
  if (kind == KP_DECAP && v.peer) return bpf_redirect_peer(v.ifindex, 0);
  return bpf_redirect(v.ifindex, 0);
}

SEC("socket")
int kp_sock(struct __sk_buff* skb) {
  struct kp_verdict v = {};
  int kind = decide(skb, &v);
  if (kind != KP_NONE && kind != KP_XDP) stamp(v.src);
  leave(skb, kind, &v);
  return kind != KP_NONE ? 0 : skb->len;
}

// XDP on the uplink: a plain VXLAN packet that TC ingress would decapsulate
// is decapsulated here instead, before the stack sees it, so that the
// uplink's GRO merges the inner TCP segments of a flow into one super-frame
// (as Linux's vxlan device merges them, gro_cells) and the guest's stack, the
// redirect and the socket filter run once per super-frame, not per packet.
// The port it goes to rides along as metadata (kp_meta) for kp_tc. Counted
// and stamped here, per packet. Anything else passes untouched. A frame
// whose buffer has no room for metadata (a driver without it) is left
// whole, for TC ingress.
SEC("xdp.frags")
int kp_xdp(struct xdp_md* ctx) {
  __u32 zero = 0;
  struct kp_global* g = bpf_map_lookup_elem(&kp_global, &zero);
  if (!g || !g->on || !g->ip4) return XDP_PASS;
  __u32 ifx = ctx->ingress_ifindex;
  __u32* in = bpf_map_lookup_elem(&kp_ifx, &ifx);
  if (!in) return XDP_PASS;
  __u32 in_port = *in;
  struct kp_port* from = bpf_map_lookup_elem(&kp_ports, &in_port);
  if (!from || !from->on || !from->uplink) return XDP_PASS;
  // Metadata on a frame that came in with some (redirected into a veth by
  // another XDP program) goes: only this program's is ever on the uplink.
  if ((void*)(long)ctx->data_meta < (void*)(long)ctx->data)
    bpf_xdp_adjust_meta(ctx, (int)((long)ctx->data - (long)ctx->data_meta));
  __u8 h[64];
  if (bpf_xdp_load_bytes(ctx, 0, h, sizeof h)) return XDP_PASS;
  __u32 len = bpf_xdp_get_buff_len(ctx);
  struct kp_verdict v = {};
  if (decap_verdict(ctx, 1, h, len, 0, g, in_port, from, &v) != KP_DECAP) return XDP_PASS;
  if (bpf_xdp_adjust_head(ctx, KP_VXLAN_LEN)) return XDP_PASS;
  if (bpf_xdp_adjust_meta(ctx, -(int)sizeof(struct kp_meta))) {
    bpf_xdp_adjust_head(ctx, -KP_VXLAN_LEN);  // the bytes are still there: whole again
    return XDP_PASS;
  }
  void* data = (void*)(long)ctx->data;
  struct kp_meta* m = (void*)(long)ctx->data_meta;
  if ((void*)(m + 1) > data) return XDP_PASS;  // cannot happen (adjust_meta made it)
  m->magic = KP_META_MAGIC;
  m->out = v.out;
  m->sw = v.sw;
  m->pad = 0;
  if (!g->xdp) g->xdp = 1;
  stamp(v.src);
  count(&kp_rstats, v.member, 1, len - KP_VXLAN_LEN);
  count(&kp_stats, v.in, 1, len);
  count(&kp_stats, v.out, 0, len - KP_VXLAN_LEN);
  return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
