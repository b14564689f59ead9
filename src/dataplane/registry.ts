// The name registry: TypeScript's mirror of the engine's switch, port, uplink
// and peer tables. The engine speaks ids; the API speaks names (and VNIs).
//
// Contract:
// - The maps change only after the engine acknowledged a command
//   (dataplane.ts calls add*/remove* once the command resolved), so they
//   always describe what the engine holds.
// - A create in flight reserves its name (and VNI) here from the moment it is
//   called, so a second concurrent create of the same name is refused at once.
// - A deleted object's name is kept by its last id until the id is reused, so
//   late events still name it.

import { DataplaneError, makeError } from './errors';
import type { NormalizedUplink, PeerSpec } from './overlay';
import { NormalizedPort, NormalizedSwitch, switchesOfPort } from './specs';
import type { PortInfo, PortType, SwitchInfo } from './types';

export interface SwitchState extends NormalizedSwitch {
  id: number;
}

export interface PortState extends NormalizedPort {
  id: number;
}

export interface UplinkState {
  spec: NormalizedUplink;
  id: number;
}

// A port or the uplink, found by name: both are ports of the engine (pipe
// far ends, backend status).
export interface Endpoint {
  id: number;
  type: PortType;
  kind: 'port' | 'uplink';
  object: PortState | UplinkState;
}

export class NameRegistry {
  private readonly switchesByName = new Map<string, SwitchState>();
  private readonly switchesById = new Map<number, SwitchState>();
  private readonly switchesByVni = new Map<number, SwitchState>();
  private readonly portsByName = new Map<string, PortState>();
  private readonly portsById = new Map<number, PortState>();
  // switch name -> names of its member ports
  private readonly members = new Map<string, Set<string>>();
  // Names of deleted objects by their last id.
  private readonly formerSwitchNames = new Map<number, string>();
  private readonly formerPortNames = new Map<number, string>();
  private uplinkState: UplinkState | undefined;
  private readonly peerSets = new Map<string, Set<string>>(); // switch name -> peer IPs

  // Names and VNIs of creates that are in flight.
  private readonly reservedSwitchNames = new Set<string>();
  private readonly reservedVnis = new Set<number>();
  private readonly reservedPortNames = new Set<string>();

  // ------------------------------------------------------------ reservations

  // Reserves a switch name and VNI for a create in flight; returns the
  // release. Throws ERR_DUPLICATE_NAME / ERR_DUPLICATE_VNI when another create
  // holds them.
  reserveSwitch(name: string, vni: number): () => void {
    if (this.reservedSwitchNames.has(name)) throw duplicateSwitchName(name, true);
    if (this.reservedVnis.has(vni)) throw duplicateVni(vni, undefined);
    this.reservedSwitchNames.add(name);
    this.reservedVnis.add(vni);
    return () => {
      this.reservedSwitchNames.delete(name);
      this.reservedVnis.delete(vni);
    };
  }

  reservePort(name: string): () => void {
    if (this.reservedPortNames.has(name)) throw duplicatePortName(name, true);
    this.reservedPortNames.add(name);
    return () => {
      this.reservedPortNames.delete(name);
    };
  }

  clearReservations(): void {
    this.reservedSwitchNames.clear();
    this.reservedVnis.clear();
    this.reservedPortNames.clear();
  }

  // ------------------------------------------------------------ switches

  findSwitch(name: string): SwitchState | undefined {
    return this.switchesByName.get(name);
  }

  requireSwitch(name: string, field: string): SwitchState {
    const s = this.switchesByName.get(name);
    if (s === undefined) throw makeError('ERR_UNKNOWN_SWITCH', `no switch named "${name}"`, field);
    return s;
  }

  // Throws when a switch of this name or VNI exists already.
  checkNewSwitch(name: string, vni: number): void {
    if (this.switchesByName.has(name)) throw duplicateSwitchName(name, false);
    const owner = this.switchesByVni.get(vni);
    if (owner !== undefined) throw duplicateVni(vni, owner.name);
  }

  addSwitch(state: SwitchState): void {
    this.switchesByName.set(state.name, state);
    this.switchesById.set(state.id, state);
    this.switchesByVni.set(state.vni, state);
    this.members.set(state.name, new Set());
    this.formerSwitchNames.delete(state.id);
  }

  removeSwitch(state: SwitchState): void {
    this.switchesByName.delete(state.name);
    this.switchesById.delete(state.id);
    this.switchesByVni.delete(state.vni);
    this.members.delete(state.name);
    this.formerSwitchNames.set(state.id, state.name);
  }

  // Names of the ports attached to the switch.
  membersOf(name: string): ReadonlySet<string> {
    return this.members.get(name) ?? new Set();
  }

  switchList(): SwitchState[] {
    return [...this.switchesByName.values()].sort(byName);
  }

  switchInfo(s: SwitchState): SwitchInfo {
    return {
      name: s.name,
      id: s.id,
      vni: s.vni,
      macLimit: s.macLimit,
      agingSeconds: s.agingSeconds,
      learning: s.learning,
      remoteLearning: s.remoteLearning,
      allowUnknownPeers: s.allowUnknownPeers,
      fdbCapacity: s.fdbCapacity,
      ports: [...this.membersOf(s.name)].sort(),
    };
  }

  // ------------------------------------------------------------ ports

  findPort(name: string): PortState | undefined {
    return this.portsByName.get(name);
  }

  requirePort(name: string, field: string): PortState {
    const p = this.portsByName.get(name);
    if (p === undefined) throw makeError('ERR_UNKNOWN_PORT', `no port named "${name}"`, field);
    return p;
  }

  requireMember(port: PortState, sw: SwitchState, field: string): void {
    if (!switchesOfPort(port).includes(sw.name)) {
      throw makeError('ERR_PORT_NOT_MEMBER', `port "${port.name}" is not a member of switch "${sw.name}"`, field);
    }
  }

  // Throws when a port of this name exists already.
  checkNewPort(name: string): void {
    if (this.portsByName.has(name)) throw duplicatePortName(name, false);
  }

  addPort(state: PortState): void {
    this.portsByName.set(state.name, state);
    this.portsById.set(state.id, state);
    this.formerPortNames.delete(state.id);
    for (const sw of switchesOfPort(state)) this.members.get(sw)?.add(state.name);
  }

  removePort(state: PortState): void {
    this.portsByName.delete(state.name);
    this.portsById.delete(state.id);
    for (const sw of switchesOfPort(state)) this.members.get(sw)?.delete(state.name);
    this.formerPortNames.set(state.id, state.name);
  }

  portList(): PortState[] {
    return [...this.portsByName.values()].sort(byName);
  }

  // A port or the uplink by name (the uplink first).
  requireEndpoint(name: string, field: string): Endpoint {
    const u = this.uplinkState;
    if (u !== undefined && u.spec.name === name) return { id: u.id, type: u.spec.type, kind: 'uplink', object: u };
    const p = this.requirePort(name, field);
    return { id: p.id, type: p.type, kind: 'port', object: p };
  }

  // Whether `e` is still what `name` refers to: false once it was deleted,
  // even if a new object reuses the name or the engine id.
  isCurrent(name: string, e: Endpoint): boolean {
    const now = e.kind === 'uplink' ? this.uplinkState : this.portsByName.get(name);
    return now === e.object;
  }

  // ------------------------------------------------------------ uplink

  get uplink(): UplinkState | undefined {
    return this.uplinkState;
  }

  setUplink(state: UplinkState): void {
    this.uplinkState = state;
    this.formerPortNames.delete(state.id);
  }

  removeUplink(): void {
    const u = this.uplinkState;
    if (u === undefined) return;
    this.formerPortNames.set(u.id, u.spec.name);
    this.uplinkState = undefined;
  }

  // The port that MACs behind a remote VTEP are reported on: the uplink they
  // came through ('' without one).
  remotePortName(): string {
    return this.uplinkState?.spec.name ?? '';
  }

  // ------------------------------------------------------------ peers

  addPeer(switchName: string, ip: string): void {
    const set = this.peerSets.get(switchName) ?? new Set<string>();
    set.add(ip);
    this.peerSets.set(switchName, set);
  }

  deletePeer(switchName: string, ip: string): void {
    this.peerSets.get(switchName)?.delete(ip);
  }

  // The configured peers of a switch (or of every switch), sorted.
  peerList(switchName?: string): PeerSpec[] {
    const out: PeerSpec[] = [];
    for (const [name, set] of this.peerSets) {
      if (switchName !== undefined && name !== switchName) continue;
      for (const ip of set) out.push({ switch: name, ip });
    }
    return out.sort((a, b) => (a.switch === b.switch ? (a.ip < b.ip ? -1 : a.ip > b.ip ? 1 : 0) : a.switch < b.switch ? -1 : 1));
  }

  // Names of the switches that have peers, sorted.
  switchesWithPeers(): string[] {
    return [...this.peerSets.entries()].filter(([, set]) => set.size > 0).map(([name]) => name).sort();
  }

  // ------------------------------------------------------------ ids -> names

  // The name of a switch id, also of one deleted since (events, FDB dumps).
  switchName(id: number): string {
    return this.switchesById.get(id)?.name ?? this.formerSwitchNames.get(id) ?? `#${id}`;
  }

  // The name of a port id (the uplink's too), also of one deleted since.
  portName(id: number): string {
    if (this.uplinkState !== undefined && this.uplinkState.id === id) return this.uplinkState.spec.name;
    return this.portsById.get(id)?.name ?? this.formerPortNames.get(id) ?? `#${id}`;
  }

  // The name of a live switch id; undefined for ids of no switch (counters).
  liveSwitchName(id: number): string | undefined {
    return this.switchesById.get(id)?.name;
  }

  // The name of a live port or uplink id; undefined for ids of neither.
  livePortName(id: number): string | undefined {
    return this.portsById.get(id)?.name ?? (this.uplinkState?.id === id ? this.uplinkState.spec.name : undefined);
  }
}

export function portInfo(p: PortState): PortInfo {
  const info: PortInfo = {
    name: p.name,
    id: p.id,
    type: p.type,
    mode: p.mode,
    vlans: p.vlans.map((m) => ({ vlan: m.vlan, switch: m.switch })),
    mtu: p.mtu,
    mac: p.mac,
    learning: p.learning,
    flood: p.flood,
    macLimit: p.macLimit,
    lockedMacs: [...p.lockedMacs],
    ringSize: p.ringSize,
  };
  if (p.switch !== undefined) info.switch = p.switch;
  if (p.untagged !== undefined) info.untagged = p.untagged;
  if (p.kernel !== undefined && p.type === 'vhostuser') {
    // Only what applies to a vhost-user port (the rest is refused for it).
    const k = p.kernel;
    Object.assign(info, { spec: k.spec, burst: k.burst, queues: k.queues });
    if (k.socket !== undefined) info.socket = k.socket;
    if (k.vhostMode !== undefined) info.vhostMode = k.vhostMode;
  } else if (p.kernel !== undefined) {
    const k = p.kernel;
    Object.assign(info, {
      interface: k.interface,
      spec: k.spec,
      rxRing: k.rxRing,
      txRing: k.txRing,
      burst: k.burst,
      queues: k.queues,
      disableOffloads: k.disableOffloads,
      promiscuous: k.promiscuous,
    });
    if (p.type === 'tap') info.persistent = k.persistent;
    if (k.ioUring !== undefined) info.ioUring = k.ioUring;
    if (k.kernelPath !== undefined) info.kernelPath = k.kernelPath;
    if (k.socket !== undefined) info.socket = k.socket;
    if (k.vhostMode !== undefined) info.vhostMode = k.vhostMode;
    if (k.queue !== undefined) info.queue = k.queue;
  }
  return info;
}

export function duplicatePortName(name: string, pending: boolean): DataplaneError {
  return makeError('ERR_DUPLICATE_NAME', `a port named "${name}" ${pending ? 'is being created' : 'exists'}`, 'name');
}

function duplicateSwitchName(name: string, pending: boolean): DataplaneError {
  return makeError('ERR_DUPLICATE_NAME', `a switch named "${name}" ${pending ? 'is being created' : 'exists'}`, 'name');
}

function duplicateVni(vni: number, owner: string | undefined): DataplaneError {
  const who = owner === undefined ? 'a switch being created' : `switch "${owner}"`;
  return makeError('ERR_DUPLICATE_VNI', `VNI ${vni} is used by ${who}`, 'vni');
}

function byName(a: { name: string }, b: { name: string }): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}
