// Ports whose guests can send frames longer than the switch takes from them,
// reported as warnings when a configuration is applied and in `vpcctl port
// show`; never refused (the guest may use a smaller MTU than its
// interface's).
//
// - The port's own MTU: a kernel interface (afpacket, afxdp, netmap, tap)
//   whose MTU is larger than the port's `mtu` hands over frames the port
//   does not take. They are dropped (oversize) and answered with ICMP too
//   big when DF is set or over IPv6, so TCP falls back to the port's MTU
//   after a round trip while anything else is lost.
// - The overlay: a switch with remote VTEPs (peers, or static MACs behind a
//   VTEP) carries its frames to them inside VXLAN: the inner frame must fit
//   the uplink's MTU minus 50 bytes (VXLAN over IPv4) or 70 (over IPv6). A
//   guest whose interface has a larger MTU sends frames the switch cannot
//   encapsulate: they are dropped (vxlan_too_big) and answered the same way.
//   Linux's vxlan device has the same limit.

import * as fs from 'node:fs';
import { LIMITS, switchesOfPort, VXLAN_OVERHEAD, type PortSpec } from '../dataplane';
import { isRemote, type Model, type PortObject } from './model';

// The MTU of a kernel interface of vpcd's namespace (undefined: none such).
export type InterfaceMtu = (ifname: string) => number | undefined;

export function hostInterfaceMtu(ifname: string): number | undefined {
  try {
    const v = Number(fs.readFileSync(`/sys/class/net/${ifname}/mtu`, 'utf8').trim());
    return Number.isInteger(v) && v > 0 ? v : undefined;
  } catch {
    return undefined;
  }
}

// The switch's inner MTU over the overlay: the smallest over its remote
// VTEPs' address families; undefined when it has no remote VTEP or there is
// no uplink.
export function overlayInnerMtu(model: Model, sw: string, ifMtu: InterfaceMtu = hostInterfaceMtu): { mtu: number; uplinkMtu: number } | undefined {
  const up = model.uplinks[0];
  if (up === undefined) return undefined;
  const vteps = [
    ...model.peers.filter((p) => p.spec.switch === sw).map((p) => p.spec.ip),
    ...model.fdb.flatMap((f) => (isRemote(f.spec) && f.spec.switch === sw ? [f.spec.vtep] : [])),
  ];
  if (vteps.length === 0) return undefined;
  const uplinkMtu = uplinkPathMtu(up.spec, ifMtu);
  const overhead = vteps.some((ip) => ip.includes(':')) ? VXLAN_OVERHEAD.ipv6 : VXLAN_OVERHEAD.ipv4;
  return { mtu: uplinkMtu - overhead, uplinkMtu };
}

// What the uplink sends: its MTU, or its interface's where that is smaller
// (the engine goes by the smaller too, and answers too-big with it).
export function uplinkPathMtu(spec: { mtu?: number; interface?: string }, ifMtu: InterfaceMtu = hostInterfaceMtu): number {
  const own = spec.mtu ?? 1500;
  const iface = spec.interface !== undefined ? ifMtu(spec.interface) : undefined;
  return iface !== undefined && iface < own ? iface : own;
}

// An uplink configured above its interface's MTU: its packets are cut to
// the interface's, and the overlay's inner MTU with them.
export function uplinkMtuWarnings(model: Model, ifMtu: InterfaceMtu = hostInterfaceMtu): string[] {
  return model.uplinks.flatMap((u) => {
    const own = u.spec.mtu ?? 1500;
    const path = uplinkPathMtu(u.spec, ifMtu);
    if (path >= own) return [];
    return [`uplink "${u.spec.name}": its mtu ${own} is above its interface ${u.spec.interface}'s MTU ${path}: VXLAN ` +
      `packets go by ${path} (guests are answered with ICMP too big for the inner MTU that leaves). Raise the ` +
      `interface's MTU (ip link set ${u.spec.interface} mtu ${own}; every underlay hop must take it) or set the ` +
      `uplink's mtu to ${path} (docs/configuration.md, uplinks: mtu)`];
  });
}

// One warning per switch of the port whose inner MTU the port's MTU (or its
// kernel interface's, when larger) exceeds.
export function portOverlayMtuWarnings(model: Model, port: PortObject, ifMtu: InterfaceMtu = hostInterfaceMtu): string[] {
  const spec = port.spec as PortSpec;
  const own = spec.mtu ?? 1500;
  const iface = spec.interface !== undefined ? ifMtu(spec.interface) : undefined;
  const mtu = Math.max(own, iface ?? 0);
  const why = iface !== undefined && iface > own ? `its interface ${spec.interface} has MTU ${iface}` : `its MTU is ${own}`;
  const out: string[] = [];
  for (const sw of switchesOfPort({ switch: spec.switch, untagged: spec.untagged, vlans: spec.vlans ?? [] })) {
    const inner = overlayInnerMtu(model, sw, ifMtu);
    if (inner === undefined || mtu <= inner.mtu) continue;
    // Where the interface fits already, only the port's own mtu is left to lower.
    const fix = iface !== undefined && iface <= inner.mtu
      ? `Set the port's mtu to ${inner.mtu} (its interface has ${iface} already)`
      : `Give the guest MTU ${inner.mtu} and set the port's mtu to it, or raise the uplink's MTU to ${mtu + (inner.uplinkMtu - inner.mtu)}`;
    out.push(`port "${spec.name}": ${why}, above the inner MTU ${inner.mtu} of switch "${sw}" over the overlay ` +
      `(uplink MTU ${inner.uplinkMtu} minus the VXLAN headers): frames to remote VTEPs larger than that are dropped ` +
      `and answered with ICMP too big (DF or IPv6). ${fix} (docs/configuration.md, uplinks: mtu)`);
  }
  return out;
}

export function overlayMtuWarnings(model: Model, ifMtu: InterfaceMtu = hostInterfaceMtu): string[] {
  return model.ports.flatMap((p) => portOverlayMtuWarnings(model, p, ifMtu));
}

// The port's interface has a larger MTU than the port takes.
export function portInterfaceMtuWarnings(port: PortObject, ifMtu: InterfaceMtu = hostInterfaceMtu): string[] {
  const spec = port.spec as PortSpec;
  if (spec.interface === undefined) return [];
  const own = spec.mtu ?? 1500;
  const iface = ifMtu(spec.interface);
  if (iface === undefined || iface <= own) return [];
  const fix = iface <= LIMITS.mtuMax ? `Set the port's mtu to ${iface}, or give the interface MTU ${own}` : `Give the interface MTU ${own} or less`;
  return [`port "${spec.name}": its interface ${spec.interface} has MTU ${iface}, above the port's MTU ${own}: frames ` +
    `longer than that are dropped at the port and answered with ICMP too big (DF or IPv6), so TCP falls back to ` +
    `MTU ${own} and anything else is lost. ${fix} (docs/configuration.md, ports: mtu)`];
}

// Every MTU warning of one port, then of a whole model.
export function portMtuWarnings(model: Model, port: PortObject, ifMtu: InterfaceMtu = hostInterfaceMtu): string[] {
  return [...portInterfaceMtuWarnings(port, ifMtu), ...portOverlayMtuWarnings(model, port, ifMtu)];
}

// `scope`: the ports to speak of, and the uplink when it is `model` itself
// (controller.ts touchedModel); each is judged against the whole model.
export function mtuWarnings(model: Model, ifMtu: InterfaceMtu = hostInterfaceMtu, scope: Model = model): string[] {
  return [...(scope === model ? uplinkMtuWarnings(model, ifMtu) : []), ...scope.ports.flatMap((p) => portMtuWarnings(model, p, ifMtu))];
}
