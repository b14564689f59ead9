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
//
// The pieces, one file each: registry.ts (the names of what the engine
// holds), commands.ts (specs -> engine commands), stats.ts (counter tables ->
// counters by name), pipe.ts (a pipe port's far end), events.ts (engine
// events -> API events). This file holds the calls and their order.

import { EventEmitter } from 'node:events';
import * as path from 'node:path';
import {
  createPortCommand,
  createSwitchCommand,
  createUplinkCommand,
  resultId,
  sendCommand,
  setPortCommand,
  setSwitchCommand,
} from './commands';
import { makeError, mapNativeError, NativeErrorContext } from './errors';
import { convertEvents } from './events';
import { loadNative, NativeCommand, NativeEngine, NativeEvent, NativeModule, NativeResult } from './native';
import {
  type NeighborEntry,
  type PeerSpec,
  type RemoteMacSpec,
  type UplinkInfo,
  type UplinkSpec,
  uplinkInfo,
  validatePeerSpec,
  validateRemoteMacSpec,
  validateUplinkSpec,
} from './overlay';
import { Capture, CaptureSpec, openCapture, TRACE_DEFAULT_SECONDS, TraceResult, TraceSpec, traceResult, validateCaptureSpec, validateTraceSpec } from './observe';
import { createPipeEnd } from './pipe';
import { duplicatePortName, NameRegistry, PortState, portInfo, SwitchState } from './registry';
import {
  toNativeOptions,
  validateOptions,
  validatePortSpec,
  validatePortUpdate,
  validateStaticMacRef,
  validateStaticMacSpec,
  validateSwitchSpec,
  validateSwitchUpdate,
} from './specs';
import { copySchema, CounterNames, counterNamesOf, decodeStats } from './stats';
import {
  DataplaneEventMap,
  DataplaneOptions,
  DataplaneSchema,
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
} from './types';
import { maxMtuFor, validateName } from './validate';

export class Dataplane extends EventEmitter<DataplaneEventMap> {
  readonly options: Readonly<ResolvedDataplaneOptions>;
  // Largest port MTU the buffer geometry allows.
  readonly maxMtu: number;

  private readonly engine: NativeEngine;
  private readonly native: NativeModule;
  private isClosed = false;
  private traceTimer: NodeJS.Timeout | undefined; // ends a trace whose frames did not all come (TraceSpec.seconds)
  private traceNext = 0; // ids given to traces
  private traceLive = 0; // the id of the trace the engine holds (0: none started)

  private readonly names = new NameRegistry();

  // Tail of the call queue; never rejects.
  private queue: Promise<unknown> = Promise.resolve();
  private schemaCache: DataplaneSchema | undefined;
  private namesCache: CounterNames | undefined;

  // `native` replaces the compiled addon (tests); by default loadNative().
  constructor(options: DataplaneOptions = {}, native?: NativeModule) {
    super();
    const resolved = validateOptions(options);
    this.options = Object.freeze({ ...resolved, events: [...resolved.events] });
    this.maxMtu = maxMtuFor(resolved.bufferSize, resolved.headroom, resolved.largeBufferCount);

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

  // Keeps a journal of what kernel ports change on their interfaces in `dir`
  // (vpcd's state directory): the offloads they turn off, the XDP programs
  // afxdp ports attach. A process killed before it could undo them (kill -9)
  // would otherwise leave interfaces without checksum offload and GSO for
  // good, and an XDP program that makes the next afxdp port on the interface
  // fail. First undoes whatever an earlier process recorded there, then
  // records from now on. Call before creating ports. Process-wide (the last
  // call wins). Returns the interfaces whose offloads were restored, and
  // those whose XDP program was detached.
  useOffloadJournal(dir: string): { offloads: string[]; xdp: string[] } {
    this.assertOpen();
    if (typeof dir !== 'string' || !path.isAbsolute(dir)) {
      throw makeError('ERR_INVALID_ARGUMENT', 'offload journal: must be an absolute directory path', 'dir');
    }
    const offloads = this.callNative(() => this.native.recoverOffloads?.(dir) ?? [], 'recoverOffloads');
    const xdp = this.callNative(() => this.native.recoverXdp?.(dir) ?? [], 'recoverXdp');
    this.callNative(() => this.native.setOffloadJournal?.(dir), 'setOffloadJournal');
    return { offloads: [...offloads], xdp: [...xdp] };
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
    clearTimeout(this.traceTimer);
    this.names.clearReservations();
    try {
      this.engine.close();
    } catch (err) {
      throw mapNativeError(err, { op: 'close' });
    }
  }

  info(): EngineInfo {
    this.assertOpen();
    const i = this.callNative(() => this.engine.info(), 'info');
    const linkWatch = i.linkWatch.why === undefined ? { mode: i.linkWatch.mode } : { mode: i.linkWatch.mode, why: i.linkWatch.why };
    return { hugepages: i.hugepages, bufferCount: i.bufferCount, bufferSize: i.bufferSize, buffersFree: i.buffersFree, linkWatch };
  }


  // ---------------------------------------------------------------- switches

  async createSwitch(spec: SwitchSpec): Promise<SwitchInfo> {
    this.assertOpen();
    const s = validateSwitchSpec(spec);
    const release = this.names.reserveSwitch(s.name, s.vni);
    try {
      return await this.serial(async () => {
        this.names.checkNewSwitch(s.name, s.vni);
        const result = await this.command(createSwitchCommand(s), { op: 'createSwitch', codes: { ALREADY_EXISTS: 'ERR_DUPLICATE_VNI' } });
        const state: SwitchState = { ...s, id: resultId(result, 'createSwitch') };
        this.names.addSwitch(state);
        return this.names.switchInfo(state);
      });
    } finally {
      release();
    }
  }

  async updateSwitch(name: string, update: SwitchUpdate): Promise<SwitchInfo> {
    this.assertOpen();
    validateName(name, 'name');
    const u = validateSwitchUpdate(update);
    return this.serial(async () => {
      const current = this.names.requireSwitch(name, 'name');
      await this.command(setSwitchCommand(current.id, { ...current, ...u }), { op: 'updateSwitch', codes: { NOT_FOUND: 'ERR_UNKNOWN_SWITCH' } });
      Object.assign(current, u);
      return this.names.switchInfo(current);
    });
  }

  async deleteSwitch(name: string): Promise<void> {
    this.assertOpen();
    validateName(name, 'name');
    return this.serial(async () => {
      const current = this.names.requireSwitch(name, 'name');
      const users = this.names.membersOf(name);
      if (users.size > 0) {
        throw makeError('ERR_SWITCH_IN_USE', `switch "${name}" still has ports attached: ${[...users].sort().join(', ')}`, 'name');
      }
      await this.command(
        { op: 'deleteSwitch', switchId: current.id },
        { op: 'deleteSwitch', field: 'name', codes: { NOT_FOUND: 'ERR_UNKNOWN_SWITCH', IN_USE: 'ERR_SWITCH_IN_USE' } },
      );
      this.names.removeSwitch(current);
    });
  }

  switches(): SwitchInfo[] {
    this.assertOpen();
    return this.names.switchList().map((s) => this.names.switchInfo(s));
  }

  getSwitch(name: string): SwitchInfo | undefined {
    this.assertOpen();
    const s = this.names.findSwitch(name);
    return s === undefined ? undefined : this.names.switchInfo(s);
  }

  // ---------------------------------------------------------------- ports

  // `waitForInterface`: an afpacket or afxdp port whose interface does not
  // exist is made down and comes up when the interface appears, instead of
  // refused with ERR_NOT_FOUND (vpcd restores and applies its state so: a
  // guest's interface comes and goes with the guest).
  async createPort(spec: PortSpec, opts: { waitForInterface?: boolean } = {}): Promise<PortInfo> {
    this.assertOpen();
    const p = validatePortSpec(spec, this.maxMtu);
    const release = this.names.reservePort(p.name);
    try {
      return await this.serial(async () => {
        this.names.checkNewPort(p.name);
        const access = p.switch === undefined ? undefined : this.names.requireSwitch(p.switch, 'switch');
        const untagged = p.untagged === undefined ? undefined : this.names.requireSwitch(p.untagged, 'untagged');
        const vlans = p.vlans.map((m, i) => ({ vlan: m.vlan, switchId: this.names.requireSwitch(m.switch, `vlans[${i}].switch`).id }));
        const result = await this.command(createPortCommand(p, (access ?? untagged)?.id ?? -1, vlans, opts.waitForInterface === true), { op: 'createPort', codes: { NOT_FOUND: 'ERR_UNKNOWN_SWITCH' } });
        const state: PortState = { ...p, id: resultId(result, 'createPort') };
        this.names.addPort(state);
        return portInfo(state);
      });
    } finally {
      release();
    }
  }

  async updatePort(name: string, update: PortUpdate): Promise<PortInfo> {
    this.assertOpen();
    validateName(name, 'name');
    const u = validatePortUpdate(update, this.maxMtu);
    return this.serial(async () => {
      const current = this.names.requirePort(name, 'name');
      await this.command(setPortCommand(current.id, { ...current, ...u }), { op: 'updatePort', codes: { NOT_FOUND: 'ERR_UNKNOWN_PORT' } });
      Object.assign(current, u);
      return portInfo(current);
    });
  }

  async deletePort(name: string): Promise<void> {
    this.assertOpen();
    validateName(name, 'name');
    return this.serial(async () => {
      const current = this.names.requirePort(name, 'name');
      await this.command(
        { op: 'deletePort', portId: current.id },
        { op: 'deletePort', field: 'name', codes: { NOT_FOUND: 'ERR_UNKNOWN_PORT' } },
      );
      this.names.removePort(current);
    });
  }

  ports(): PortInfo[] {
    this.assertOpen();
    return this.names.portList().map(portInfo);
  }

  getPort(name: string): PortInfo | undefined {
    this.assertOpen();
    const p = this.names.findPort(name);
    return p === undefined ? undefined : portInfo(p);
  }

  // The live state of a kernel-facing port: what its backend opened (rings,
  // burst, queues, offloads), whether it holds the interface now, its last
  // error and its backend counters. undefined for pipe ports.
  portStatus(name: string): PortStatus | undefined {
    this.assertOpen();
    validateName(name, 'name');
    // The uplink is a kernel-facing port too.
    const p = this.names.requireEndpoint(name, 'name');
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
      const sw = this.names.requireSwitch(s.switch, 'switch');
      const port = this.names.requirePort(s.port, 'port');
      this.names.requireMember(port, sw, 'port');
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
      const sw = this.names.requireSwitch(r.switch, 'switch');
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
      const sw = this.names.requireSwitch(switchName, 'switch');
      const result = await this.command({ op: 'dumpFdb', switchId: sw.id }, { op: 'fdb', codes: { NOT_FOUND: 'ERR_UNKNOWN_SWITCH' } });
      const entries = (result.entries ?? []).map(
        (e): FdbEntry => {
          const entry: FdbEntry = { mac: e.mac, port: this.names.portName(e.portId), vlan: e.vlan, static: e.static, ageSeconds: e.static ? 0 : e.ageMs / 1000 };
          if (e.evpn === true) entry.evpn = true;
          if (e.vtep) {
            entry.vtep = e.vtep;
            entry.port = this.names.remotePortName();
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
      const sw = this.names.requireSwitch(switchName, 'switch');
      let portId = -1;
      if (port !== undefined) {
        const p = this.names.requirePort(port, 'port');
        this.names.requireMember(p, sw, 'port');
        portId = p.id;
      }
      const result = await this.command({ op: 'flushFdb', switchId: sw.id, portId }, { op: 'flushFdb' });
      return result.removed ?? 0;
    });
  }

  // ---------------------------------------------------------------- overlay

  // The uplink: this host's VTEP on the underlay (one per dataplane). Its
  // port carries every switch's VNI.
  // `waitForInterface`: as for createPort; the uplink takes its interface's
  // MAC when the interface appears (nothing is sent before).
  async createUplink(spec: UplinkSpec, opts: { waitForInterface?: boolean } = {}): Promise<UplinkInfo> {
    this.assertOpen();
    const u = validateUplinkSpec(spec, this.maxMtu);
    return this.serial(async () => {
      const existing = this.names.uplink;
      if (existing !== undefined) {
        throw makeError('ERR_ALREADY_EXISTS', `an uplink ("${existing.spec.name}") exists already; a dataplane has one`, 'name');
      }
      if (this.names.findPort(u.name) !== undefined) throw duplicatePortName(u.name, false);
      const result = await this.command(createUplinkCommand(u, opts.waitForInterface === true), { op: 'createUplink', field: 'interface', codes: { ALREADY_EXISTS: 'ERR_ALREADY_EXISTS' } });
      const id = resultId(result, 'createUplink');
      // A kernel interface keeps its own MAC; the engine says which it uses.
      if (result.mac !== undefined) u.mac = result.mac;
      this.names.setUplink({ spec: u, id });
      return uplinkInfo(u, id);
    });
  }

  async deleteUplink(): Promise<void> {
    this.assertOpen();
    return this.serial(async () => {
      if (this.names.uplink === undefined) throw makeError('ERR_NOT_FOUND', 'there is no uplink', 'uplink');
      const withPeers = this.names.switchesWithPeers();
      if (withPeers.length > 0) {
        throw makeError('ERR_IN_USE', `switches still have peers: ${withPeers.join(', ')}; delete them first`, 'uplink');
      }
      await this.command({ op: 'deleteUplink' }, { op: 'deleteUplink', codes: { NOT_FOUND: 'ERR_NOT_FOUND', IN_USE: 'ERR_IN_USE' } });
      this.names.removeUplink();
    });
  }

  uplink(): UplinkInfo | undefined {
    this.assertOpen();
    const u = this.names.uplink;
    if (u === undefined) return undefined;
    // The MAC the engine uses: the interface's, also for one created before
    // its interface appeared (it took the interface's MAC then).
    const live = u.spec.kernel === undefined ? undefined : this.callNative(() => this.engine.portStatus?.(u.id), 'portStatus')?.mac;
    return uplinkInfo(live === undefined ? u.spec : { ...u.spec, mac: live }, u.id);
  }

  // A remote VTEP joins the switch's flood list: broadcast, multicast and
  // unknown unicast are replicated to it (head-end replication).
  async addPeer(spec: PeerSpec): Promise<void> {
    this.assertOpen();
    const p = validatePeerSpec(spec);
    return this.serial(async () => {
      const sw = this.names.requireSwitch(p.switch, 'switch');
      await this.command({ op: 'addPeer', switchId: sw.id, ip: p.ip }, { op: 'addPeer', field: 'ip', codes: { NOT_FOUND: 'ERR_UNKNOWN_SWITCH' } });
      this.names.addPeer(sw.name, p.ip);
    });
  }

  async deletePeer(spec: PeerSpec): Promise<void> {
    this.assertOpen();
    const p = validatePeerSpec(spec);
    return this.serial(async () => {
      const sw = this.names.requireSwitch(p.switch, 'switch');
      await this.command({ op: 'deletePeer', switchId: sw.id, ip: p.ip }, { op: 'deletePeer', field: 'ip', codes: { NOT_FOUND: 'ERR_NOT_FOUND' } });
      this.names.deletePeer(sw.name, p.ip);
    });
  }

  // The configured peers of a switch (or of every switch), sorted.
  peers(switchName?: string): PeerSpec[] {
    this.assertOpen();
    return this.names.peerList(switchName);
  }

  // A static MAC -> VTEP entry (deleted with deleteStaticMac). With
  // opts.evpn, an entry of kind `evpn` (the EVPN control plane's): never
  // aged either, but it replaces a learned or EVPN entry of the MAC, and the
  // MAC speaking on a local port moves it there (a `moved` event).
  async addRemoteMac(spec: RemoteMacSpec, opts: { evpn?: boolean } = {}): Promise<void> {
    this.assertOpen();
    const r = validateRemoteMacSpec(spec);
    return this.serial(async () => {
      const sw = this.names.requireSwitch(r.switch, 'switch');
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
    return decodeStats(raw, this.counterNames(), this.names);
  }

  schema(): DataplaneSchema {
    this.assertOpen();
    if (this.schemaCache === undefined) {
      this.schemaCache = copySchema(this.callNative(() => this.engine.schema(), 'schema'));
    }
    return copySchema(this.schemaCache);
  }

  // ---------------------------------------------------------------- capture and trace (observe.ts)

  async startCapture(spec: CaptureSpec): Promise<Capture> {
    this.assertOpen();
    const s = validateCaptureSpec(spec);
    return this.serial(async () => openCapture(this.engine, this.names, s));
  }

  // Starts tracing the next `count` frames (replacing a running trace).
  // Returns the trace's id: trace() says which trace its records are of,
  // and stopTrace(id) stops that one only, so that one client cannot end
  // another's.
  async startTrace(spec: TraceSpec): Promise<number> {
    this.assertOpen();
    const s = validateTraceSpec(spec);
    return this.serial(async () => {
      const portId = s.port === undefined ? -1 : this.names.requireEndpoint(s.port, 'port').id;
      const id = ++this.traceNext;
      try {
        await this.engine.traceStart({ count: s.count, portId });
      } catch (err) {
        throw mapNativeError(err, { op: 'trace' });
      }
      this.traceLive = id;
      // The deadline stops this trace only, through the queue the other
      // calls take: a previous trace's cannot stop this one, even firing
      // while it starts, and if this one had failed to start, the previous
      // one would have kept its deadline. Stopping a trace keeps its records
      // (trace() still reads them).
      clearTimeout(this.traceTimer);
      const seconds = s.seconds ?? TRACE_DEFAULT_SECONDS;
      this.traceTimer = setTimeout(() => {
        this.traceTimer = undefined;
        void this.serial(async () => {
          if (this.isClosed || id !== this.traceLive) return;
          await this.engine.traceStop();
          const records = this.trace()?.records.length ?? 0;
          if (records < s.count) this.emit('traceExpired', { id, seconds, count: s.count, records });
        }).catch(() => undefined);
      }, seconds * 1000);
      this.traceTimer.unref();
      return id;
    });
  }

  // The last trace's records so far, with its id; undefined before any trace.
  trace(): TraceResult | undefined {
    this.assertOpen();
    const raw = this.callNative(() => this.engine.traceRead(), 'trace');
    return raw === undefined ? undefined : { id: this.traceLive, ...traceResult(raw, this.names, new Map(this.schema().drop.map((d) => [d.name, d.help]))) };
  }

  // Stops the trace; given an id, only if that trace is still the one that
  // runs (false when another replaced it: that one goes on).
  // Queued behind a start, so that the answer is about the trace the
  // engine holds once the start went through.
  async stopTrace(id?: number): Promise<boolean> {
    this.assertOpen();
    return this.serial(async () => {
      if (id !== undefined && id !== this.traceLive) return false;
      clearTimeout(this.traceTimer);
      this.traceTimer = undefined;
      try {
        await this.engine.traceStop();
      } catch (err) {
        throw mapNativeError(err, { op: 'trace' });
      }
      return true;
    });
  }

  // ---------------------------------------------------------------- pipes

  // The far end of a pipe port. It stays bound to this port: after the port
  // is deleted its methods throw ERR_UNKNOWN_PORT, even if a new port reuses
  // the name or the engine id.
  pipe(portName: string): PipeEnd {
    this.assertOpen();
    validateName(portName, 'port');
    // A pipe uplink has a far end too: there a test plays the underlay.
    const end = this.names.requireEndpoint(portName, 'port');
    if (end.type !== 'pipe') throw makeError('ERR_INVALID_ARGUMENT', `port "${portName}" is not a pipe port`, 'port');
    return createPipeEnd(portName, this.options.burst, {
      portId: () => {
        this.assertOpen();
        if (!this.names.isCurrent(portName, end)) throw makeError('ERR_UNKNOWN_PORT', `port "${portName}" was deleted`, 'port');
        return end.id;
      },
      send: (id, frames) => this.callNative(() => this.engine.pipeSend(id, frames), 'pipeSend'),
      receive: (id, max) => this.callNative(() => this.engine.pipeReceive(id, max), 'pipeReceive'),
      setLink: (id, up) => this.callNative(() => this.engine.pipeSetLink(id, up), 'pipeSetLink'),
    });
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
    return sendCommand(this.engine, cmd, context);
  }

  private callNative<T>(fn: () => T, op: string): T {
    try {
      return fn();
    } catch (err) {
      throw mapNativeError(err, { op });
    }
  }

  // The counter names of schema(), in table order, read once.
  private counterNames(): CounterNames {
    if (this.namesCache === undefined) this.namesCache = counterNamesOf(this.schema());
    return this.namesCache;
  }

  // Runs on the JS thread for every batch the engine reports.
  private onNativeEvents(batch: NativeEvent[]): void {
    if (this.isClosed || !Array.isArray(batch)) return;
    if (this.listenerCount('event') === 0 && this.listenerCount('events') === 0) return;
    const events = convertEvents(batch, this.names);
    if (events.length === 0) return;
    for (const e of events) this.emit('event', e);
    this.emit('events', events);
  }
}
