// What the kernel fast path needs of the overlay (design: bridge/kpath.h,
// docs/design/kernel-path.md): this host's VTEP, a remote member's outer
// headers, and the counters of what the kernel encapsulated and
// decapsulated. The bridge asks, on the engine thread, between bursts.
#include "overlay/overlay.h"

namespace vpc {

void Overlay::kpath_uplink(KpathGlobal* g) const {
  if (!uplink_.active) return;
  const UplinkConfig& u = uplink_.cfg;
  if (!u.ip4.is_zero()) std::memcpy(&g->ip4, u.ip4.b + 12, 4);
  if (!u.ip6.is_zero()) std::memcpy(g->ip6, u.ip6.b, 16);
  g->udp_port = u.udp_port;
  mac_store(g->mac, uplink_.mac);
}

// The kernel takes VTEPs over IPv4 whose next hop is resolved: the same
// template encap() writes in front of a frame, with the switch's VNI.
bool Overlay::kpath_remote(uint32_t vt, uint32_t vni, KpathRemote* r) {
  if (vt >= peers_.size() || !uplink_up()) return false;
  PeerState& v = peers_[vt];
  if (!v.in_use || !v.ip.is_v4() || !v.reachable) return false;
  Neighbor& nb = neighbors_[v.neighbor];
  if (nb.state != Neighbor::kReachable && nb.state != Neighbor::kStale) return false;
  if (v.outer_gen != uplink_.generation || v.outer_mac != nb.mac || v.outer_len == 0) build_outer(v, nb);
  if (v.outer_len != kVxlanOverhead4) return false;
  const PortState& up = core_.port(uplink_.port);
  const uint32_t mtu = up.l3_mtu();
  const int ifindex = up.port->kernel_ifindex();
  if (mtu <= kVxlanOverhead4 || ifindex <= 0) return false;
  const UplinkConfig& u = uplink_.cfg;
  *r = KpathRemote{};
  std::memcpy(r->hdr, v.outer, kVxlanOverhead4);
  store_be32(r->hdr + kVxlanOverhead4 - kVxlanHeaderLen + 4, vni << 8);
  r->sport_min = u.src_port_min;
  r->sport_span = uint32_t(u.src_port_max - u.src_port_min) + 1;
  r->sum = v.outer_sum;
  r->ifindex = uint32_t(ifindex);
  r->mtu = mtu - kVxlanOverhead4;
  r->on = 1;
  std::memcpy(&r->peer_ip4, v.ip.b + 12, 4);
  r->df = u.df ? 1 : 0;
  return true;
}

// What the kernel carried for remote member m since the last look: the
// switch's traffic with the peer, in inner bytes, and the uplink's VXLAN
// packets (a super-frame counts once, as the kernel sees it).
void Overlay::kpath_count(MemberId m, const KpathStats& d) {
  SwitchPeerCounterBlock& sp = switch_peer_ctr_.at(m);
  if (d.rx_packets) {
    sp.add(SwitchPeerCounter::rx_packets, d.rx_packets);
    sp.add(SwitchPeerCounter::rx_bytes, d.rx_bytes);
    uplink_.counters->add(UplinkCounter::vxlan_rx, d.rx_packets);
  }
  if (d.tx_packets) {
    sp.add(SwitchPeerCounter::tx_packets, d.tx_packets);
    sp.add(SwitchPeerCounter::tx_bytes, d.tx_bytes);
    uplink_.counters->add(UplinkCounter::vxlan_tx, d.tx_packets);
  }
}

}  // namespace vpc
