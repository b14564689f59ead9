// Dataplane: the typed face of one native engine.
//
// Contract of every mutating call:
// - The arguments are validated completely (specs.ts) before anything else;
//   a malformed call rejects with a ValidationError and changes nothing.
// - Calls are applied one at a time, in call order (one TypeScript writer in
//   front of the engine's one writer). When a call's turn comes, it is checked
//   against the state left by the calls before it (names, references, in-use),
//   then sent to the engine; the name maps change only after the engine
//   acknowledged. A failed call therefore leaves the state as it was.
// - A create reserves its name (and VNI) from the moment it is called, so a
//   second concurrent create of the same name rejects at once with
//   ERR_DUPLICATE_NAME, whatever the first one's fate.
// - Native failures are mapped through errors.ts; callers only ever see
//   DataplaneError subclasses.
// - After close() every method throws (sync) or rejects (async) ERR_CLOSED.
// - Commands work whether or not the engine loop runs (the addon applies them
//   directly while it is stopped), so a configuration can be loaded before
//   start().

import { EventEmitter } from 'node:events';
import * as path from 'node:path';
import { DataplaneError, makeError, mapNativeError, NativeErrorContext } from './errors';
import {
  loadNative,
  NativeCommand,
  NativeEngine,
  NativeEvent,
  NativeModule,
  NativeResult,
} from './native';
import {
  NormalizedPort,
  NormalizedSwitch,
  switchesOfPort,
  toNativeOptions,
  validateOptions,
  validatePortSpec,
  validatePortUpdate,
  validateStaticMacRef,
  validateStaticMacSpec,
  validateSwitchSpec,
  validateSwitchUpdate,
} from './specs';
import {
  DataplaneEvent,
  DataplaneEventMap,
  DataplaneOptions,
  DataplaneSchema,
  PortType,
  DataplaneStats,
  EngineInfo,
  FdbEntry,
  PipeEnd,
  PortInfo,
  PortSpec,
  PortStatus,
  PortUpdate,
  ResolvedDataplaneOptions,
  StaticMacRef,
  StaticMacSpec,
  SwitchInfo,
  SwitchSpec,
  SwitchUpdate,
  TableFullEvent,
} from './types';
import { maxMtuFor, validateBoolean, validateInteger, validateName } from './validate';
import {
  type NeighborEntry,
  type NormalizedUplink,
  type PeerSpec,
  type RemoteMacSpec,
  type UplinkInfo,
  type UplinkSpec,
  uplinkInfo,
  validatePeerSpec,
  validateRemoteMacSpec,
  validateUplinkSpec,
} from './overlay';

interface SwitchState extends NormalizedSwitch {
  id: number;
}

interface PortState extends NormalizedPort {
  id: number;
}

const PIPE_POLL_MS = 2;
const PIPE_RECEIVE_MAX = 65536;

export class Dataplane extends EventEmitter<DataplaneEventMap> {
  readonly options: Readonly<ResolvedDataplaneOptions>;
  // Largest port MTU the buffer geometry allows.
  readonly maxMtu: number;

  private readonly engine: NativeEngine;
  private readonly native: NativeModule;
  private isClosed = false;

  private readonly switchesByName = new Map<string, SwitchState>();
  private readonly switchesById = new Map<number, SwitchState>();
  private readonly switchesByVni = new Map<number, SwitchState>();
  private readonly portsByName = new Map<string, PortState>();
  private readonly portsById = new Map<number, PortState>();
  // switch name -> names of its member ports
  private readonly members = new Map<string, Set<string>>();
  // Names of deleted objects by their last id, so late events still name them
  // (until the id is reused).
  private readonly formerSwitchNames = new Map<number, string>();
  private readonly formerPortNames = new Map<number, string>();
  private uplinkState: { spec: NormalizedUplink; id: number } | undefined;
  private readonly peerSets = new Map<string, Set<string>>(); // switch name -> peer IPs

  // Names and VNIs of creates that are in flight.
  private readonly reservedSwitchNames = new Set<string>();
  private readonly reservedVnis = new Set<number>();
  private readonly reservedPortNames = new Set<string>();

  // Tail of the call queue; never rejects.
  private queue: Promise<unknown> = Promise.resolve();
  private schemaCache: DataplaneSchema | undefined;
  private namesCache: { engine: string[]; port: string[]; switch: string[]; drop: string[] } | undefined;

  // `native` replaces the compiled addon (tests); by default loadNative().
  constructor(options: DataplaneOptions = {}, native?: NativeModule) {
    super();
    const resolved = validateOptions(options);
    this.options = Object.freeze({ ...resolved, events: [...resolved.events] });
    this.maxMtu = maxMtuFor(resolved.bufferSize, resolved.headroom);

    let mod: NativeModule;
    try {
      mod = native ?? loadNative();
    } catch (err) {
      throw makeError('ERR_NATIVE', `native addon could not be loaded: ${err instanceof Error ? err.message : String(err)}`, undefined, { cause: err });
    }
    try {
      this.engine = new mod.Engine(toNativeOptions(resolved), (events) => this.onNativeEvents(events));
    } catch (err) {
      throw mapNativeError(err, { op: 'create engine' });
    }
    this.native = mod;
  }

  // Keeps a journal of the offloads kernel ports turn off in `dir` (vpcd's
  // state directory), so that a process killed before it could restore them
  // (kill -9) does not leave interfaces without checksum offload and GSO for
  // good: first restores whatever an earlier process recorded there, then
  // records from now on. Call before creating ports. Process-wide (the last
  // call wins). Returns the interfaces whose offloads were restored.
  useOffloadJournal(dir: string): string[] {
    this.assertOpen();
    if (typeof dir !== 'string' || !path.isAbsolute(dir)) {
      throw makeError('ERR_INVALID_ARGUMENT', 'offload journal: must be an absolute directory path', 'dir');
    }
    const restored = this.callNative(() => this.native.recoverOffloads?.(dir) ?? [], 'recoverOffloads');
    this.callNative(() => this.native.setOffloadJournal?.(dir), 'setOffloadJournal');
    return [...restored];
  }

  // ---------------------------------------------------------------- lifecycle

  get running(): boolean {
    if (this.isClosed) return false;
    try {
      return this.engine.isRunning();
    } catch {
      return false;
    }
  }

  get closed(): boolean {
    return this.isClosed;
  }

  start(): void {
    this.assertOpen();
    if (this.running) return;
    this.callNative(() => this.engine.start(), 'start');
  }

  stop(): void {
    this.assertOpen();
    if (!this.running) return;
    this.callNative(() => this.engine.stop(), 'stop');
  }

  // Stops the engine and frees it. Pending commands reject with ERR_CLOSED.
  // Idempotent.
  close(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.reservedSwitchNames.clear();
    this.reservedVnis.clear();
    this.reservedPortNames.clear();
    try {
      this.engine.close();
    } catch (err) {
      throw mapNativeError(err, { op: 'close' });
    }
  }

  info(): EngineInfo {
    this.assertOpen();
    const i = this.callNative(() => this.engine.info(), 'info');
    return { hugepages: i.hugepages, bufferCount: i.bufferCount, bufferSize: i.bufferSize, buffersFree: i.buffersFree };
  }

  // ---------------------------------------------------------------- switches

  async createSwitch(spec: SwitchSpec): Promise<SwitchInfo> {
    this.assertOpen();
    const s = validateSwitchSpec(spec);
    if (this.reservedSwitchNames.has(s.name)) throw this.duplicateSwitchName(s.name, true);
    if (this.reservedVnis.has(s.vni)) throw this.duplicateVni(s.vni, undefined);
    this.reservedSwitchNames.add(s.name);
    this.reservedVnis.add(s.vni);
    try {
      return await this.serial(async () => {
        if (this.switchesByName.has(s.name)) throw this.duplicateSwitchName(s.name, false);
        const owner = this.switchesByVni.get(s.vni);
        if (owner !== undefined) throw this.duplicateVni(s.vni, owner.name);
        const result = await this.command(
          { op: 'createSwitch', vni: s.vni, macLimit: s.macLimit, agingMs: s.agingSeconds * 1000, learning: s.learning, remoteLearning: s.remoteLearning, allowUnknownPeers: s.allowUnknownPeers, fdbCapacity: s.fdbCapacity },
          { op: 'createSwitch', codes: { ALREADY_EXISTS: 'ERR_DUPLICATE_VNI' } },
        );
        const state: SwitchState = { ...s, id: this.resultId(result, 'createSwitch') };
        this.switchesByName.set(state.name, state);
        this.switchesById.set(state.id, state);
        this.switchesByVni.set(state.vni, state);
        this.members.set(state.name, new Set());
        this.formerSwitchNames.delete(state.id);
        return this.switchInfo(state);
      });
    } finally {
      this.reservedSwitchNames.delete(s.name);
      this.reservedVnis.delete(s.vni);
    }
  }

  async updateSwitch(name: string, update: SwitchUpdate): Promise<SwitchInfo> {
    this.assertOpen();
    validateName(name, 'name');
    const u = validateSwitchUpdate(update);
    return this.serial(async () => {
      const current = this.requireSwitch(name, 'name');
      const next: SwitchState = { ...current, ...u };
      await this.command(
        { op: 'setSwitch', switchId: current.id, macLimit: next.macLimit, agingMs: next.agingSeconds * 1000, learning: next.learning, remoteLearning: next.remoteLearning, allowUnknownPeers: next.allowUnknownPeers },
        { op: 'updateSwitch', codes: { NOT_FOUND: 'ERR_UNKNOWN_SWITCH' } },
      );
      Object.assign(current, u);
      return this.switchInfo(current);
    });
  }

  async deleteSwitch(name: string): Promise<void> {
    this.assertOpen();
    validateName(name, 'name');
    return this.serial(async () => {
      const current = this.requireSwitch(name, 'name');
      const users = this.members.get(name);
      if (users !== undefined && users.size > 0) {
        throw makeError('ERR_SWITCH_IN_USE', `switch "${name}" still has ports attached: ${[...users].sort().join(', ')}`, 'name');
      }
      await this.command(
        { op: 'deleteSwitch', switchId: current.id },
        { op: 'deleteSwitch', field: 'name', codes: { NOT_FOUND: 'ERR_UNKNOWN_SWITCH', IN_USE: 'ERR_SWITCH_IN_USE' } },
      );
      this.switchesByName.delete(name);
      this.switchesById.delete(current.id);
      this.switchesByVni.delete(current.vni);
      this.members.delete(name);
      this.formerSwitchNames.set(current.id, name);
    });
  }

  switches(): SwitchInfo[] {
    this.assertOpen();
    return [...this.switchesByName.values()].sort(byName).map((s) => this.switchInfo(s));
  }

  getSwitch(name: string): SwitchInfo | undefined {
    this.assertOpen();
    const s = this.switchesByName.get(name);
    return s === undefined ? undefined : this.switchInfo(s);
  }

  // ---------------------------------------------------------------- ports

  async createPort(spec: PortSpec): Promise<PortInfo> {
    this.assertOpen();
    const p = validatePortSpec(spec, this.maxMtu);
    if (this.reservedPortNames.has(p.name)) throw this.duplicatePortName(p.name, true);
    this.reservedPortNames.add(p.name);
    try {
      return await this.serial(async () => {
        if (this.portsByName.has(p.name)) throw this.duplicatePortName(p.name, false);
        const access = p.switch === undefined ? undefined : this.requireSwitch(p.switch, 'switch');
        const untagged = p.untagged === undefined ? undefined : this.requireSwitch(p.untagged, 'untagged');
        const vlans = p.vlans.map((m, i) => ({ vlan: m.vlan, switchId: this.requireSwitch(m.switch, `vlans[${i}].switch`).id }));
        const result = await this.command(
          {
            op: 'createPort',
            kind: p.type,
            ringSize: p.ringSize,
            mtu: p.mtu,
            mac: p.mac,
            learning: p.learning,
            flood: p.flood,
            macLimit: p.macLimit,
            lockedMacs: [...p.lockedMacs],
            untaggedSwitchId: (access ?? untagged)?.id ?? -1,
            vlans,
            ...(p.kernel === undefined
              ? {}
              : {
                  spec: p.kernel.spec,
                  rxRing: p.kernel.rxRing,
                  txRing: p.kernel.txRing,
                  portBurst: p.kernel.burst,
                  queues: p.kernel.queues,
                  disableOffloads: p.kernel.disableOffloads,
                  persistent: p.kernel.persistent,
                  promiscuous: p.kernel.promiscuous,
                  xdpMode: p.kernel.xdpMode,
                  zeroCopy: p.kernel.zeroCopy,
                  ioUring: p.kernel.ioUring,
                }),
          },
          { op: 'createPort', codes: { NOT_FOUND: 'ERR_UNKNOWN_SWITCH' } },
        );
        const state: PortState = { ...p, id: this.resultId(result, 'createPort') };
        this.portsByName.set(state.name, state);
        this.portsById.set(state.id, state);
        this.formerPortNames.delete(state.id);
        for (const sw of switchesOfPort(state)) this.members.get(sw)?.add(state.name);
        return portInfo(state);
      });
    } finally {
      this.reservedPortNames.delete(p.name);
    }
  }

  async updatePort(name: string, update: PortUpdate): Promise<PortInfo> {
    this.assertOpen();
    validateName(name, 'name');
    const u = validatePortUpdate(update, this.maxMtu);
    return this.serial(async () => {
      const current = this.requirePort(name, 'name');
      const next: PortState = { ...current, ...u };
      await this.command(
        {
          op: 'setPort',
          portId: current.id,
          mtu: next.mtu,
          learning: next.learning,
          flood: next.flood,
          macLimit: next.macLimit,
          lockedMacs: [...next.lockedMacs],
        },
        { op: 'updatePort', codes: { NOT_FOUND: 'ERR_UNKNOWN_PORT' } },
      );
      Object.assign(current, u);
      return portInfo(current);
    });
  }

  async deletePort(name: string): Promise<void> {
    this.assertOpen();
    validateName(name, 'name');
    return this.serial(async () => {
      const current = this.requirePort(name, 'name');
      await this.command(
        { op: 'deletePort', portId: current.id },
        { op: 'deletePort', field: 'name', codes: { NOT_FOUND: 'ERR_UNKNOWN_PORT' } },
      );
      this.portsByName.delete(name);
      this.portsById.delete(current.id);
      for (const sw of switchesOfPort(current)) this.members.get(sw)?.delete(name);
      this.formerPortNames.set(current.id, name);
    });
  }

  ports(): PortInfo[] {
    this.assertOpen();
    return [...this.portsByName.values()].sort(byName).map(portInfo);
  }

  getPort(name: string): PortInfo | undefined {
    this.assertOpen();
    const p = this.portsByName.get(name);
    return p === undefined ? undefined : portInfo(p);
  }

  // The live state of a kernel-facing port: what its backend opened (rings,
  // burst, queues, offloads), whether it holds the interface now, its last
  // error and its backend counters. undefined for pipe ports.
  portStatus(name: string): PortStatus | undefined {
    this.assertOpen();
    validateName(name, 'name');
    // The uplink is a kernel-facing port too.
    const u = this.uplinkState !== undefined && this.uplinkState.spec.name === name ? this.uplinkState : undefined;
    const p: { id: number; type: PortType } = u !== undefined ? { id: u.id, type: u.spec.type } : this.requirePort(name, 'name');
    if (p.type === 'pipe' || this.engine.portStatus === undefined) return undefined;
    const st = this.callNative(() => this.engine.portStatus?.(p.id), 'portStatus');
    return st === undefined ? undefined : { ...st, counters: { ...st.counters }, queueRx: [...st.queueRx] };
  }

  // ---------------------------------------------------------------- fdb

  // Static entries live in the engine's FDB (one writer per table); the
  // engine decides whether the MAC is already there.
  async addStaticMac(spec: StaticMacSpec): Promise<void> {
    this.assertOpen();
    const s = validateStaticMacSpec(spec);
    return this.serial(async () => {
      const sw = this.requireSwitch(s.switch, 'switch');
      const port = this.requirePort(s.port, 'port');
      this.requireMember(port, sw, 'port');
      await this.command(
        { op: 'addStaticMac', switchId: sw.id, mac: s.mac, portId: port.id },
        { op: 'addStaticMac', field: 'mac', codes: { ALREADY_EXISTS: 'ERR_DUPLICATE_MAC' } },
      );
    });
  }

  // opts.evpn: removes the entry of kind `evpn` (addRemoteMac with evpn)
  // instead of a static one; neither removes the other.
  async deleteStaticMac(ref: StaticMacRef, opts: { evpn?: boolean } = {}): Promise<void> {
    this.assertOpen();
    const r = validateStaticMacRef(ref);
    return this.serial(async () => {
      const sw = this.requireSwitch(r.switch, 'switch');
      await this.command(
        { op: 'deleteStaticMac', switchId: sw.id, mac: r.mac, ...(opts.evpn === true ? { evpn: true } : {}) },
        { op: 'deleteStaticMac', field: 'mac', codes: { NOT_FOUND: 'ERR_UNKNOWN_MAC' } },
      );
    });
  }

  // A consistent snapshot of the switch's FDB, sorted by MAC (then VLAN).
  async fdb(switchName: string): Promise<FdbEntry[]> {
    this.assertOpen();
    validateName(switchName, 'switch');
    return this.serial(async () => {
      const sw = this.requireSwitch(switchName, 'switch');
      const result = await this.command({ op: 'dumpFdb', switchId: sw.id }, { op: 'fdb', codes: { NOT_FOUND: 'ERR_UNKNOWN_SWITCH' } });
      const entries = (result.entries ?? []).map(
        (e): FdbEntry => {
          const entry: FdbEntry = { mac: e.mac, port: this.portName(e.portId), vlan: e.vlan, static: e.static, ageSeconds: e.static ? 0 : e.ageMs / 1000 };
          if (e.evpn === true) entry.evpn = true;
          if (e.vtep) {
            entry.vtep = e.vtep;
            entry.port = this.uplinkState?.spec.name ?? '';
          }
          return entry;
        },
      );
      return entries.sort((a, b) => (a.mac < b.mac ? -1 : a.mac > b.mac ? 1 : a.vlan - b.vlan));
    });
  }

  // Removes the switch's learned entries (only those on `port` when given);
  // resolves with how many the engine removed.
  async flushFdb(switchName: string, port?: string): Promise<number> {
    this.assertOpen();
    validateName(switchName, 'switch');
    if (port !== undefined) validateName(port, 'port');
    return this.serial(async () => {
      const sw = this.requireSwitch(switchName, 'switch');
      let portId = -1;
      if (port !== undefined) {
        const p = this.requirePort(port, 'port');
        this.requireMember(p, sw, 'port');
        portId = p.id;
      }
      const result = await this.command({ op: 'flushFdb', switchId: sw.id, portId }, { op: 'flushFdb' });
      return result.removed ?? 0;
    });
  }

  // ---------------------------------------------------------------- overlay

  // The uplink: this host's VTEP on the underlay (one per dataplane). Its
  // port carries every switch's VNI.
  async createUplink(spec: UplinkSpec): Promise<UplinkInfo> {
    this.assertOpen();
    const u = validateUplinkSpec(spec, this.maxMtu);
    return this.serial(async () => {
      if (this.uplinkState !== undefined) {
        throw makeError('ERR_ALREADY_EXISTS', `an uplink ("${this.uplinkState.spec.name}") exists already; a dataplane has one`, 'name');
      }
      if (this.portsByName.has(u.name)) throw this.duplicatePortName(u.name, false);
      const k = u.kernel;
      const result = await this.command(
        {
          op: 'createUplink',
          kind: u.type,
          ringSize: u.ringSize,
          ...(k === undefined
            ? {}
            : { spec: k.spec, rxRing: k.rxRing, txRing: k.txRing, portBurst: k.burst, queues: k.queues, disableOffloads: k.disableOffloads, promiscuous: k.promiscuous, xdpMode: k.xdpMode, zeroCopy: k.zeroCopy }),
          mtu: u.mtu,
          mac: u.mac,
          localIp4: u.ip4?.addr ?? '',
          prefix4: u.ip4?.prefix ?? 24,
          localIp6: u.ip6?.addr ?? '',
          prefix6: u.ip6?.prefix ?? 64,
          gateway4: u.gateway ?? '',
          gateway6: u.gateway6 ?? '',
          udpPort: u.udpPort,
          srcPortMin: u.srcPortRange[0],
          srcPortMax: u.srcPortRange[1],
          ttl: u.ttl,
          df: u.df,
          udp6ZeroChecksum: u.udp6ZeroChecksum,
          allowUnknownPeers: u.allowUnknownPeers,
          neighborReachableMs: u.neighborReachableSeconds * 1000,
          neighborRetryMs: 1000,
        },
        { op: 'createUplink', field: 'interface', codes: { ALREADY_EXISTS: 'ERR_ALREADY_EXISTS' } },
      );
      const id = this.resultId(result, 'createUplink');
      // A kernel interface keeps its own MAC; the engine says which it uses.
      if (result.mac !== undefined) u.mac = result.mac;
      this.uplinkState = { spec: u, id };
      this.formerPortNames.delete(id);
      return uplinkInfo(u, id);
    });
  }

  async deleteUplink(): Promise<void> {
    this.assertOpen();
    return this.serial(async () => {
      const u = this.uplinkState;
      if (u === undefined) throw makeError('ERR_NOT_FOUND', 'there is no uplink', 'uplink');
      const withPeers = [...this.peerSets.entries()].filter(([, set]) => set.size > 0).map(([name]) => name);
      if (withPeers.length > 0) {
        throw makeError('ERR_IN_USE', `switches still have peers: ${withPeers.sort().join(', ')}; delete them first`, 'uplink');
      }
      await this.command({ op: 'deleteUplink' }, { op: 'deleteUplink', codes: { NOT_FOUND: 'ERR_NOT_FOUND', IN_USE: 'ERR_IN_USE' } });
      this.formerPortNames.set(u.id, u.spec.name);
      this.uplinkState = undefined;
    });
  }

  uplink(): UplinkInfo | undefined {
    this.assertOpen();
    return this.uplinkState === undefined ? undefined : uplinkInfo(this.uplinkState.spec, this.uplinkState.id);
  }

  // A remote VTEP joins the switch's flood list: broadcast, multicast and
  // unknown unicast are replicated to it (head-end replication).
  async addPeer(spec: PeerSpec): Promise<void> {
    this.assertOpen();
    const p = validatePeerSpec(spec);
    return this.serial(async () => {
      const sw = this.requireSwitch(p.switch, 'switch');
      await this.command({ op: 'addPeer', switchId: sw.id, ip: p.ip }, { op: 'addPeer', field: 'ip', codes: { NOT_FOUND: 'ERR_UNKNOWN_SWITCH' } });
      const set = this.peerSets.get(sw.name) ?? new Set<string>();
      set.add(p.ip);
      this.peerSets.set(sw.name, set);
    });
  }

  async deletePeer(spec: PeerSpec): Promise<void> {
    this.assertOpen();
    const p = validatePeerSpec(spec);
    return this.serial(async () => {
      const sw = this.requireSwitch(p.switch, 'switch');
      await this.command({ op: 'deletePeer', switchId: sw.id, ip: p.ip }, { op: 'deletePeer', field: 'ip', codes: { NOT_FOUND: 'ERR_NOT_FOUND' } });
      this.peerSets.get(sw.name)?.delete(p.ip);
    });
  }

  // The configured peers of a switch (or of every switch), sorted.
  peers(switchName?: string): PeerSpec[] {
    this.assertOpen();
    const out: PeerSpec[] = [];
    for (const [name, set] of this.peerSets) {
      if (switchName !== undefined && name !== switchName) continue;
      for (const ip of set) out.push({ switch: name, ip });
    }
    return out.sort((a, b) => (a.switch === b.switch ? (a.ip < b.ip ? -1 : a.ip > b.ip ? 1 : 0) : a.switch < b.switch ? -1 : 1));
  }

  // A static MAC -> VTEP entry (deleted with deleteStaticMac). With
  // opts.evpn, an entry of kind `evpn` (the EVPN control plane's): never
  // aged either, but it replaces a learned or EVPN entry of the MAC, and the
  // MAC speaking on a local port moves it there (a `moved` event).
  async addRemoteMac(spec: RemoteMacSpec, opts: { evpn?: boolean } = {}): Promise<void> {
    this.assertOpen();
    const r = validateRemoteMacSpec(spec);
    return this.serial(async () => {
      const sw = this.requireSwitch(r.switch, 'switch');
      await this.command(
        { op: 'addRemoteMac', switchId: sw.id, mac: r.mac, vtep: r.vtep, ...(opts.evpn === true ? { evpn: true } : {}) },
        { op: 'addRemoteMac', field: 'mac', codes: { ALREADY_EXISTS: 'ERR_DUPLICATE_MAC', NOT_FOUND: 'ERR_UNKNOWN_SWITCH' } },
      );
    });
  }

  // The uplink's neighbour cache (next hops resolved by ARP/ND).
  async neighbors(): Promise<NeighborEntry[]> {
    this.assertOpen();
    return this.serial(async () => {
      const result = await this.command({ op: 'dumpNeighbors' }, { op: 'neighbors' });
      return (result.neighbors ?? []).map((n) => ({ ip: n.ip, mac: n.mac, state: n.state, ageSeconds: n.ageMs / 1000 }));
    });
  }

  // ---------------------------------------------------------------- stats

  // Counters by object name. Every name of schema() is present (0 when the
  // engine did not report it). Read lock-free: does not wait for the engine.
  stats(): DataplaneStats {
    this.assertOpen();
    const raw = this.callNative(() => this.engine.stats(), 'stats');
    const names = this.counterNames();
    const out: DataplaneStats = { engine: {}, eventsDropped: raw.eventsDropped, ports: {}, switches: {}, peers: {} };
    for (const name of names.engine) out.engine[name] = 0;
    Object.assign(out.engine, raw.engine);
    const ports = raw.ports;
    for (let r = 0; r < ports.ids.length; r++) {
      // The uplink is a port too: its drops by reason are the decap checks.
      const id = ports.ids[r]!;
      const name = this.portsById.get(id)?.name ?? (this.uplinkState?.id === id ? this.uplinkState.spec.name : undefined);
      if (name !== undefined) out.ports[name] = { counters: tableRow(ports.counters, r, names.port), drops: tableRow(ports.drops, r, names.drop) };
    }
    const sws = raw.switches;
    for (let r = 0; r < sws.ids.length; r++) {
      const s = this.switchesById.get(sws.ids[r]!);
      if (s !== undefined) out.switches[s.name] = { counters: tableRow(sws.counters, r, names.switch), drops: tableRow(sws.drops, r, names.drop) };
    }
    for (const peer of raw.peers) out.peers[peer.ip] = { ...peer.counters };
    if (raw.uplink !== undefined && this.uplinkState !== undefined) {
      out.uplink = { name: this.uplinkState.spec.name, counters: { ...raw.uplink.counters } };
    }
    for (const b of raw.backend ?? []) {
      const name = this.portsById.get(b.portId)?.name ?? (this.uplinkState?.id === b.portId ? this.uplinkState.spec.name : undefined);
      const set = name === undefined ? undefined : out.ports[name];
      if (set !== undefined) set.backend = { ...b.counters };
    }
    return out;
  }

  schema(): DataplaneSchema {
    this.assertOpen();
    if (this.schemaCache === undefined) {
      const s = this.callNative(() => this.engine.schema(), 'schema');
      this.schemaCache = {
        engine: s.engine.map(copyInfo),
        port: s.port.map(copyInfo),
        switch: s.switch.map(copyInfo),
        drop: s.drop.map(copyInfo),
        peer: s.peer.map(copyInfo),
        uplink: s.uplink.map(copyInfo),
        backend: (s.backend ?? []).map(copyInfo),
      };
    }
    const c = this.schemaCache;
    return {
      engine: c.engine.map(copyInfo),
      port: c.port.map(copyInfo),
      switch: c.switch.map(copyInfo),
      drop: c.drop.map(copyInfo),
      peer: c.peer.map(copyInfo),
      uplink: c.uplink.map(copyInfo),
      backend: c.backend.map(copyInfo),
    };
  }

  // ---------------------------------------------------------------- pipes

  // The far end of a pipe port. It stays bound to this port: after the port
  // is deleted its methods throw ERR_UNKNOWN_PORT, even if a new port reuses
  // the name or the engine id.
  pipe(portName: string): PipeEnd {
    this.assertOpen();
    validateName(portName, 'port');
    // A pipe uplink has a far end too: there a test plays the underlay.
    const uplink = this.uplinkState !== undefined && this.uplinkState.spec.name === portName ? this.uplinkState : undefined;
    const state: { id: number; type: PortType } = uplink !== undefined ? { id: uplink.id, type: uplink.spec.type } : this.requirePort(portName, 'port');
    if (state.type !== 'pipe') throw makeError('ERR_INVALID_ARGUMENT', `port "${portName}" is not a pipe port`, 'port');
    const live = (): { id: number } => {
      this.assertOpen();
      const current = uplink !== undefined ? this.uplinkState : this.portsByName.get(portName);
      if (current !== (uplink ?? state)) {
        throw makeError('ERR_UNKNOWN_PORT', `port "${portName}" was deleted`, 'port');
      }
      return state;
    };
    const receive = (max: number = this.options.burst): Buffer[] => {
      validateInteger(max, 'max', 1, PIPE_RECEIVE_MAX);
      const p = live();
      return this.callNative(() => this.engine.pipeReceive(p.id, max), 'pipeReceive');
    };
    return {
      port: portName,
      send: (frames: Buffer[]): number => {
        if (!Array.isArray(frames)) throw makeError('ERR_INVALID_ARGUMENT', 'must be an array of Buffers', 'frames');
        frames.forEach((f, i) => {
          if (!Buffer.isBuffer(f)) throw makeError('ERR_INVALID_ARGUMENT', 'must be a Buffer', `frames[${i}]`);
        });
        const p = live();
        if (frames.length === 0) return 0;
        return this.callNative(() => this.engine.pipeSend(p.id, frames), 'pipeSend');
      },
      receive,
      setLink: (up: boolean): void => {
        validateBoolean(up, 'up');
        const p = live();
        this.callNative(() => this.engine.pipeSetLink(p.id, up), 'pipeSetLink');
      },
      waitFor: async (count: number, timeoutMs = 1000): Promise<Buffer[]> => {
        validateInteger(count, 'count', 0, Number.MAX_SAFE_INTEGER);
        validateInteger(timeoutMs, 'timeoutMs', 0, 2 ** 31 - 1);
        const got: Buffer[] = [];
        const deadline = Date.now() + timeoutMs;
        for (;;) {
          while (got.length < count) {
            const batch = receive(Math.min(count - got.length, PIPE_RECEIVE_MAX));
            if (batch.length === 0) break;
            got.push(...batch);
          }
          if (got.length >= count || Date.now() >= deadline) return got;
          await sleep(Math.max(0, Math.min(PIPE_POLL_MS, deadline - Date.now())));
        }
      },
    };
  }

  // ---------------------------------------------------------------- internals

  private assertOpen(): void {
    if (this.isClosed) throw makeError('ERR_CLOSED', 'the dataplane is closed');
  }

  // Runs `fn` after every call queued before it.
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.queue.then(fn);
    this.queue = result.catch(() => undefined);
    return result;
  }

  private async command(cmd: NativeCommand, context: NativeErrorContext): Promise<NativeResult> {
    this.assertOpen();
    let pending: Promise<NativeResult>;
    try {
      pending = this.engine.command(cmd);
    } catch (err) {
      // A kernel-facing port that could not be opened (missing interface,
      // busy, no privilege): its codes are about the interface, not switches.
      if (isOpenError(err)) throw mapNativeError(err, { op: context.op, field: 'interface' });
      throw mapNativeError(err, context);
    }
    try {
      return await pending;
    } catch (err) {
      throw mapNativeError(err, context);
    }
  }

  private callNative<T>(fn: () => T, op: string): T {
    try {
      return fn();
    } catch (err) {
      throw mapNativeError(err, { op });
    }
  }

  private resultId(result: NativeResult, op: string): number {
    const id = result?.id;
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0) {
      throw makeError('ERR_NATIVE', `${op}: the engine acknowledged without a valid id (got ${String(id)})`);
    }
    return id;
  }

  private requireSwitch(name: string, field: string): SwitchState {
    const s = this.switchesByName.get(name);
    if (s === undefined) throw makeError('ERR_UNKNOWN_SWITCH', `no switch named "${name}"`, field);
    return s;
  }

  private requirePort(name: string, field: string): PortState {
    const p = this.portsByName.get(name);
    if (p === undefined) throw makeError('ERR_UNKNOWN_PORT', `no port named "${name}"`, field);
    return p;
  }

  private requireMember(port: PortState, sw: SwitchState, field: string): void {
    if (!switchesOfPort(port).includes(sw.name)) {
      throw makeError('ERR_PORT_NOT_MEMBER', `port "${port.name}" is not a member of switch "${sw.name}"`, field);
    }
  }

  private duplicateSwitchName(name: string, pending: boolean): DataplaneError {
    return makeError('ERR_DUPLICATE_NAME', `a switch named "${name}" ${pending ? 'is being created' : 'exists'}`, 'name');
  }

  private duplicateVni(vni: number, owner: string | undefined): DataplaneError {
    const who = owner === undefined ? 'a switch being created' : `switch "${owner}"`;
    return makeError('ERR_DUPLICATE_VNI', `VNI ${vni} is used by ${who}`, 'vni');
  }

  private duplicatePortName(name: string, pending: boolean): DataplaneError {
    return makeError('ERR_DUPLICATE_NAME', `a port named "${name}" ${pending ? 'is being created' : 'exists'}`, 'name');
  }

  private switchInfo(s: SwitchState): SwitchInfo {
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
      ports: [...(this.members.get(s.name) ?? [])].sort(),
    };
  }

  private switchName(id: number): string {
    return this.switchesById.get(id)?.name ?? this.formerSwitchNames.get(id) ?? `#${id}`;
  }

  private portName(id: number): string {
    if (this.uplinkState !== undefined && this.uplinkState.id === id) return this.uplinkState.spec.name;
    return this.portsById.get(id)?.name ?? this.formerPortNames.get(id) ?? `#${id}`;
  }

  // The counter names of schema(), in table order, read once.
  private counterNames(): { engine: string[]; port: string[]; switch: string[]; drop: string[] } {
    if (this.namesCache === undefined) {
      const s = this.schema();
      this.namesCache = { engine: s.engine.map((c) => c.name), port: s.port.map((c) => c.name), switch: s.switch.map((c) => c.name), drop: s.drop.map((c) => c.name) };
    }
    return this.namesCache;
  }

  // Runs on the JS thread for every batch the engine reports.
  private onNativeEvents(batch: NativeEvent[]): void {
    if (this.isClosed || !Array.isArray(batch)) return;
    if (this.listenerCount('event') === 0 && this.listenerCount('events') === 0) return;
    const events: DataplaneEvent[] = [];
    for (const e of batch) {
      const converted = this.convertEvent(e);
      if (converted !== undefined) events.push(converted);
    }
    if (events.length === 0) return;
    for (const e of events) this.emit('event', e);
    this.emit('events', events);
  }

  private convertEvent(e: NativeEvent): DataplaneEvent | undefined {
    const ev = this.convertEventBody(e);
    if (ev !== undefined && ev.type !== 'link' && e.vtep) {
      // MACs behind a remote VTEP: the port is the uplink they came through.
      (ev as { vtep?: string }).vtep = e.vtep;
      if ('port' in ev) ev.port = this.uplinkState?.spec.name ?? '';
    }
    if (ev?.type === 'moved' && e.oldVtep) {
      ev.oldVtep = e.oldVtep;
      ev.oldPort = this.uplinkState?.spec.name ?? '';
    }
    return ev;
  }

  private convertEventBody(e: NativeEvent): DataplaneEvent | undefined {
    switch (e.type) {
      case 'learned':
        return { type: 'learned', switch: this.switchName(e.switchId), port: this.portName(e.portId), vlan: e.vlan, mac: e.mac };
      case 'moved':
        return {
          type: 'moved',
          switch: this.switchName(e.switchId),
          port: this.portName(e.portId),
          oldPort: this.portName(e.oldPortId),
          vlan: e.vlan,
          oldVlan: e.oldVlan,
          mac: e.mac,
        };
      case 'aged':
        return { type: 'aged', switch: this.switchName(e.switchId), port: this.portName(e.portId), vlan: e.vlan, mac: e.mac };
      case 'table_full': {
        const ev: TableFullEvent = { type: 'table_full', switch: this.switchName(e.switchId), mac: e.mac };
        if (e.portId >= 0) ev.port = this.portName(e.portId);
        return ev;
      }
      case 'port_limit':
        return { type: 'port_limit', switch: this.switchName(e.switchId), port: this.portName(e.portId), vlan: e.vlan, mac: e.mac };
      case 'link':
        return { type: 'link', port: this.portName(e.portId), up: e.up };
      default:
        return undefined;
    }
  }
}

function isOpenError(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { stage?: unknown }).stage === 'open';
}

function byName(a: { name: string }, b: { name: string }): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

function portInfo(p: PortState): PortInfo {
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
  if (p.kernel !== undefined) {
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
    if (k.queue !== undefined) info.queue = k.queue;
  }
  return info;
}

// Row r of a counter table (NativeCounterTable) as name -> value. The rows
// of one kind are built by one object literal made for its names, so they
// share one shape and stay fast to read (the metrics renderer reads tens of
// thousands of them per scrape). The names are the engine's own counter
// identifiers, quoted with JSON.stringify.
type RowReader = (table: Float64Array, base: number) => Record<string, number>;
const rowReaders = new WeakMap<string[], RowReader>();
function tableRow(table: Float64Array, r: number, names: string[]): Record<string, number> {
  let read = rowReaders.get(names);
  if (read === undefined) {
    const fields = names.map((n, k) => `${JSON.stringify(n)}: t[b + ${k}]`).join(', ');
    read = new Function('t', 'b', `return { ${fields} };`) as RowReader;
    rowReaders.set(names, read);
  }
  return read(table, r * names.length);
}

function copyInfo(c: { name: string; help: string }): { name: string; help: string } {
  return { name: c.name, help: c.help };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
