// VXLAN super-frames across the underlay (proto/tunnel_gso.h).
//
// Send: a TCP super-frame for a remote VTEP is segmented to the overlay's
// inner MTU as before, but when the uplink takes UDP GSO (kOffUso) the
// segments leave as one frame per up to 64 KiB: outer headers once, then
// VXLAN header + segment, chunk after chunk, with the state of a UDP GSO
// frame. The kernel (or a NIC with USO) cuts it into the VXLAN packets the
// switch would have sent one by one; a veth underlay carries it whole. What
// the underlay sees on the wire is unchanged, and the host pays one skb and
// one system call per 64 KiB instead of one per segment.
//
// Receive: an uplink super-frame (the backend reports GSO state: a veth or
// virtio underlay delivers it unsegmented) is
//   - UDP GSO of VXLAN datagrams (this switch's batches): the inner segments
//     are coalesced back into one TCP super-frame for the guest when they
//     are consecutive segments of one connection, else decapsulated chunk by
//     chunk;
//   - TCP GSO with the checksum start in the inner frame (Linux's vxlan
//     device hands over its tunnel GSO frames this way, AF_PACKET reports
//     them as TCPv4/TCPv6): decapsulated as one inner TCP super-frame.
// Either way each outer segment must fit the uplink's MTU, as one packet
// would have to.
#include <algorithm>

#include "core/egress.h"
#include "overlay/overlay.h"
#include "proto/gso.h"
#include "proto/tunnel_gso.h"

namespace vpc {

bool Overlay::encap_uso(uint32_t vt, SwitchState& sw, Pkt p, MemberId via, uint32_t inner_mtu) {
  BufferPool& pool = core_.pool();
  PeerState& v = peers_[vt];
  const Neighbor& nb = neighbors_[v.neighbor];
  if (nb.state != Neighbor::kReachable && nb.state != Neighbor::kStale) return false;  // encap() queues
  const OffloadMeta m = pool.meta(p.buf);
  const uint8_t* f = pool.frame(p);
  FrameLayout L;
  OffloadError err = OffloadError::none;
  if (!frame_layout(f, p.len, &L, &err)) return false;
  const uint16_t mss = uint16_t(std::min<uint32_t>(m.gso_size, gso_mss_for_mtu(L, inner_mtu)));
  // A segment may be larger than a regular buffer (a jumbo underlay): it is
  // written into the batch's large buffer, never a regular one.
  if (mss == 0) return false;
  const uint32_t n = gso_segments(f, p.len, m, L, mss, &err);
  if (n < 2) return false;  // the ordinary path says why, or sends the one segment

  const UplinkConfig& u = uplink_.cfg;
  PortState& up = core_.port(uplink_.port);
  const uint16_t overhead = v.outer_len;                          // Ethernet + IP + UDP + VXLAN
  const uint16_t hdr = uint16_t(overhead - kVxlanHeaderLen);     // Ethernet + IP + UDP
  const uint16_t udp_off = uint16_t(hdr - kUdpHeaderLen);
  const uint32_t chunk = kVxlanHeaderLen + L.hdr_len + mss;
  // The outer IP length field and the descriptor hold 65535 bytes at most,
  // a large buffer a little more.
  if (!up.tx_large) return false;
  const uint32_t room = std::min<uint32_t>({0xFFFF, up.tx_max_frame, pool.max_large_frame()});
  if (room < hdr + 2 * chunk) return false;
  const uint32_t per_frame = (room - hdr) / chunk;
  const uint32_t span = uint32_t(u.src_port_max - u.src_port_min) + 1;
  const uint16_t sport = uint16_t(u.src_port_min + vxlan_flow_hash(f, uint16_t(std::min<uint32_t>(p.len, 0xFFFF))) % span);
  const bool v4 = overhead == kVxlanOverhead4;

  uint32_t done = 0;
  uint64_t inner_bytes = 0;
  Drop lost = Drop::no_buffer;
  while (done < n) {
    const uint32_t k = std::min(per_frame, n - done);
    uint32_t idx;
    if (!core_.cache().alloc_large(&idx)) break;
    Pkt q{idx, pool.headroom(), 0};
    uint8_t* o = pool.frame(q);
    std::memcpy(o, v.outer, hdr);
    uint32_t pos = hdr;
    bool ok = true;
    for (uint32_t j = 0; j < k; ++j) {
      uint8_t* c = o + pos;
      std::memcpy(c, v.outer + hdr, kVxlanHeaderLen);
      store_be32(c + 4, sw.cfg.vni << 8);
      const uint32_t w = gso_write_segment(f, p.len, L, mss, done + j, c + kVxlanHeaderLen, room - pos - kVxlanHeaderLen, &err);
      if (w == 0) [[unlikely]] {
        ok = false;
        break;
      }
      pos += kVxlanHeaderLen + w;
      inner_bytes += w;
    }
    if (!ok) [[unlikely]] {
      core_.cache().free(idx);
      lost = Drop::gso_malformed;
      break;
    }
    q.len = uint16_t(pos);
    uint8_t* ip = o + kEthHeaderLen;
    uint8_t* udp = o + udp_off;
    const uint16_t udp_len = uint16_t(pos - udp_off);
    uint32_t pseudo;
    if (v4) {
      const uint16_t total = uint16_t(pos - kEthHeaderLen);
      uint32_t sum = v.outer_sum + total;
      store_be16(ip + 2, total);
      if (!u.df) {
        // The segmenter numbers the packets from this ID on.
        const uint16_t id = uplink_.ip_id;
        uplink_.ip_id = uint16_t(uplink_.ip_id + k);
        store_be16(ip + 4, id);
        sum += id;
      }
      store_be16(ip + 10, csum_fold(sum));
      pseudo = csum_pseudo4(ip + 12, ip + 16, udp_len, kIpProtoUdp);
    } else {
      store_be16(ip + 4, udp_len);
      pseudo = csum_pseudo6(ip + 8, ip + 24, udp_len, kIpProtoUdp);
    }
    store_be16(udp, sport);
    store_be16(udp + 4, udp_len);
    // Checksum partial: the field holds the pseudo-header sum; whoever
    // segments computes each packet's checksum (never zero: a UDP GSO frame
    // always has one, which RFC 7348 allows over IPv4 and RFC 8200 requires
    // over IPv6).
    store_be16(udp + 6, uint16_t(~csum_fold(pseudo)));
    OffloadMeta om;
    om.flags = OffloadMeta::kNeedsCsum;
    om.csum_start = udp_off;
    om.csum_offset = 6;
    if (k > 1) {
      om.gso_type = OffloadMeta::kGsoUdpL4;
      om.gso_size = uint16_t(chunk);
      om.hdr_len = hdr;
    }
    pool.meta(idx) = om;
    pkt_set_meta(q, true);
    done += k;
    uplink_.counters->add(UplinkCounter::vxlan_tx, k);
    if (k > 1) uplink_.counters->add(UplinkCounter::vxlan_tx_batched, k);
    transmit_uplink(q);
  }
  PortCounterBlock* pc = up.counters;
  pc->add(PortCounter::tx_gso_frames, 1);
  pc->add(PortCounter::tx_gso_segments, done);
  SwitchPeerCounterBlock& sp = switch_peer_ctr_.at(via);
  sp.add(SwitchPeerCounter::tx_packets, done);
  sp.add(SwitchPeerCounter::tx_bytes, inner_bytes);
  if (done < n) {
    peer_drop(v, via);
    pc->drop_tx(lost, n - done);
    sw.counters->drop(lost, n - done);
  }
  core_.cache().free(p.buf);
  return true;
}

// An uplink frame longer than the uplink's MTU is taken only as a
// super-frame whose segments fit it.
bool Overlay::super_fits(Pkt p, uint32_t max_len) const {
  if (!pkt_has_meta(p)) return false;
  const OffloadMeta& m = core_.pool().meta(p.buf);
  if (!m.gso() || !m.needs_csum()) return false;
  if (m.gso_kind() == OffloadMeta::kGsoUdpL4) return uint32_t(m.csum_start) + kUdpHeaderLen + m.gso_size <= max_len;
  return std::max<uint32_t>(m.hdr_len, uint32_t(m.csum_start) + 20) + m.gso_size <= max_len;
}

// p: an uplink super-frame already decapsulated as far as its first VXLAN
// header (p names the inner frame behind it); udp_off: where the outer UDP
// header is in the original frame; m: the remote member it comes from. True:
// p is the inner frame to switch (state set). False: consumed here, dropped
// and counted or switched chunk by chunk.
bool Overlay::take_super(Pkt& p, const OffloadMeta& gso, uint16_t udp_off, uint16_t outer_len, MemberId m,
                         uint32_t vt) {
  BufferPool& pool = core_.pool();
  PeerState& v = peers_[vt];
  PortCounterBlock* pc = core_.port(uplink_.port).counters;
  auto drop = [&](Drop why) {
    peer_drop(v, m);
    pc->drop_rx(why);
    core_.cache().free(p.buf);
    return false;
  };
  if (gso.gso_kind() != OffloadMeta::kGsoUdpL4) {
    // TCP GSO whose checksum (and segmentation) is the inner frame's; the
    // caller moves the state onto the inner frame.
    if (gso.gso_kind() != OffloadMeta::kGsoTcpv4 && gso.gso_kind() != OffloadMeta::kGsoTcpv6) return drop(Drop::gso_unsupported);
    if (gso.csum_start < outer_len + kEthHeaderLen) return drop(Drop::gso_malformed);
    return true;
  }
  if (gso.csum_start != udp_off) return drop(Drop::gso_malformed);
  uint8_t* chunks = pool.frame(p) - kVxlanHeaderLen;
  const uint32_t span = uint32_t(p.len) + kVxlanHeaderLen;
  const uint32_t chunk = gso.gso_size;
  UsoCoalesced c;
  // super_fits() let only a checksum-partial batch this far: one built on
  // this host (the far end's switch, over a veth or virtio underlay), whose
  // inner TCP checksums need no second pass (tunnel_gso.h).
  if (uso_coalesce(chunks, span, chunk, !gso.needs_csum(), &c)) {
    p.len = uint16_t(c.inner_len);
    pool.meta(p.buf) = c.meta;
    pkt_set_meta(p, true);
    switch_peer_ctr_.at(m).add(SwitchPeerCounter::rx_packets, c.segments - 1);
    uplink_.counters->add(UplinkCounter::vxlan_rx, c.segments - 1);
    uplink_.counters->add(UplinkCounter::vxlan_rx_coalesced, c.segments);
    return true;
  }
  // Chunk by chunk, each inner frame in a regular buffer (a large one when
  // a jumbo underlay's does not fit).
  const uint32_t n = chunk > kVxlanHeaderLen ? (span + chunk - 1) / chunk : 0;
  if (n == 0 || n > kMaxBurst) return drop(Drop::gso_malformed);
  Pkt out[kMaxBurst];
  Burst ob;
  uint16_t k = 0;
  for (uint32_t i = 0; i < n; ++i) {
    const uint8_t* ch = chunks + size_t(i) * chunk;
    const uint32_t clen = i + 1 < n ? chunk : span - i * chunk;
    const uint32_t ilen = clen > kVxlanHeaderLen ? clen - kVxlanHeaderLen : 0;
    Drop why = Drop::gso_malformed;
    uint32_t idx = kNoId;
    bool ok = false;
    if (i && std::memcmp(ch, chunks, kVxlanHeaderLen) != 0) {
      why = Drop::gso_malformed;  // another VNI or flags inside one batch
    } else if (ilen < kEthHeaderLen) {
      why = Drop::vxlan_inner_runt;
    } else if (ilen > std::max(pool.max_frame(), pool.max_large_frame())) {
      why = Drop::oversize;  // (a pool without large buffers: max_large_frame() is 0)
    } else if (ilen > pool.max_frame() ? !core_.cache().alloc_large(&idx) : !core_.cache().alloc(&idx)) {
      why = Drop::no_buffer;
    } else {
      ok = true;
    }
    if (!ok) {
      peer_drop(v, m);
      pc->drop_rx(why);
      continue;
    }
    Pkt q{idx, pool.headroom(), uint16_t(ilen)};
    if (pool.is_large(idx)) {
      // A jumbo underlay's inner frame; a large buffer always has a
      // side-table entry (core/types.h).
      pool.meta(idx) = OffloadMeta{};
      pkt_set_meta(q, true);
    }
    uint8_t* d = pool.frame(q);
    std::memcpy(d, ch + kVxlanHeaderLen, ilen);
    out[k] = q;
    ob.inm[k] = m;
    ob.dst[k] = eth_dst(d);
    ob.src[k] = eth_src(d);
    ob.dest[k] = 0;
    ++k;
  }
  if (k > 1) {
    switch_peer_ctr_.at(m).add(SwitchPeerCounter::rx_packets, k - 1);
    uplink_.counters->add(UplinkCounter::vxlan_rx, k - 1);
  }
  core_.cache().free(p.buf);
  // Straight to the bridge (decap() forwarded the frames before this one).
  ob.pkts = out;
  ob.n = k;
  if (k) bridge_.forward(ob, pc, nullptr);
  return false;
}

}  // namespace vpc
