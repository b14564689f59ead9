// The kernel fast path (design: docs/design/kernel-path.md): two BPF programs
// that share one decision over the maps the engine keeps.
//
//   kp_tc    TC ingress (clsact) on an afpacket port's interface. A frame the
//            decision takes is redirected to the egress port's interface
//            (bpf_redirect, as a bridge's forwarding would transmit it) and
//            counted; everything else goes on (TC_ACT_OK) as before.
//   kp_sock  socket filter on the port's packet socket. Packet taps run
//            before TC ingress, so the engine's socket would see every frame
//            first: this filter refuses exactly the frames kp_tc will take.
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
// Built with clang -target bpf (CMakeLists.txt), embedded in the library.
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

struct kp_port {
  __u32 ifindex;  // where frames to this port are redirected
  __u32 sw;       // the switch its untagged member joins
  __u32 mtu;      // the smaller of the port's MTU and its interface's
  __u32 on;
};

struct kp_key {
  __u32 sw;
  __u8 mac[6];
  __u16 pad;
};

struct kp_dest {
  __u32 port;
  __u32 gen;
  __u64 last_ns;  // last frame from this MAC taken here (refreshed twice a second at most)
};

struct kp_stats {
  __u64 rx_packets, rx_bytes, tx_packets, tx_bytes;
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

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __type(key, __u32);
  __type(value, struct kp_stats);
  __uint(max_entries, 1);
} kp_stats SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __type(key, __u32);
  __type(value, __u32);
  __uint(max_entries, 1);
} kp_global SEC(".maps");

struct kp_verdict {
  __u32 in, out;
  struct kp_dest* src;
  struct kp_port* to;
};

static __always_inline __u8 byte_at(struct __sk_buff* skb, __u32 off, int* bad) {
  __u8 b = 0;
  if (bpf_skb_load_bytes(skb, off, &b, 1)) *bad = 1;
  return b;
}

// Every segment of the frame fits `mtu` (L3 bytes). A super-frame's segments
// are its L3 and L4 headers plus gso_size; only TCP and UDP over IPv4 and
// IPv6 without extension headers are judged, anything else goes to the engine.
static __always_inline int fits(struct __sk_buff* skb, __u32 proto, __u32 mtu) {
  if (!skb->gso_size) return skb->len <= mtu + 14;
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
  else if (l4p == 17)
    l4 = 8;
  else
    return 0;
  return !bad && l3 >= 20 && l3 + l4 + skb->gso_size <= mtu;
}

static __always_inline int decide(struct __sk_buff* skb, struct kp_verdict* v) {
  __u32 zero = 0;
  __u32* on = bpf_map_lookup_elem(&kp_global, &zero);
  if (!on || !*on) return 0;
  __u32 ifx = skb->ifindex;
  __u32* in = bpf_map_lookup_elem(&kp_ifx, &ifx);
  if (!in) return 0;
  __u32 in_port = *in;
  struct kp_port* from = bpf_map_lookup_elem(&kp_ports, &in_port);
  if (!from || !from->on || skb->vlan_present) return 0;
  __u8 eth[14];
  if (bpf_skb_load_bytes(skb, 0, eth, sizeof eth)) return 0;
  if (eth[0] & 1) return 0;  // broadcast and multicast: the engine floods
  __u32 proto = (__u32)eth[12] << 8 | eth[13];
  if (proto == 0x8100 || proto == 0x88a8) return 0;
  __u32 sw = from->sw;
  __u32* gen = bpf_map_lookup_elem(&kp_gen, &sw);
  if (!gen) return 0;
  struct kp_key k = {.sw = sw};
  __builtin_memcpy(k.mac, eth + 6, 6);
  struct kp_dest* src = bpf_map_lookup_elem(&kp_fdb, &k);
  if (!src || src->port != in_port || src->gen != *gen) return 0;
  __builtin_memcpy(k.mac, eth, 6);
  struct kp_dest* dst = bpf_map_lookup_elem(&kp_fdb, &k);
  if (!dst || dst->gen != *gen || dst->port == in_port) return 0;
  __u32 out_port = dst->port;
  struct kp_port* to = bpf_map_lookup_elem(&kp_ports, &out_port);
  if (!to || !to->on || to->sw != sw || !to->ifindex) return 0;
  if (!fits(skb, proto, from->mtu < to->mtu ? from->mtu : to->mtu)) return 0;
  v->in = in_port;
  v->out = out_port;
  v->src = src;
  v->to = to;
  return 1;
}

SEC("tc")
int kp_tc(struct __sk_buff* skb) {
  struct kp_verdict v;
  if (!decide(skb, &v)) return TC_ACT_OK;
  __u64 len = skb->len;
  struct kp_stats* s = bpf_map_lookup_elem(&kp_stats, &v.in);
  if (s) {
    s->rx_packets++;
    s->rx_bytes += len;
  }
  s = bpf_map_lookup_elem(&kp_stats, &v.out);
  if (s) {
    s->tx_packets++;
    s->tx_bytes += len;
  }
  // The engine ages this MAC by this stamp; writing it twice a second at
  // most keeps the entry's cache line from bouncing between CPUs.
  __u64 now = bpf_ktime_get_ns();
  if (now - v.src->last_ns > 500000000ull) v.src->last_ns = now;
  return bpf_redirect(v.to->ifindex, 0);
}

SEC("socket")
int kp_sock(struct __sk_buff* skb) {
  struct kp_verdict v;
  return decide(skb, &v) ? 0 : skb->len;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
