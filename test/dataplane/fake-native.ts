// Test helper: a stand-in for the compiled addon that implements the command
// contract of native.ts (ids, existence checks, IN_USE, static FDB entries)
// without moving packets. It lets the Dataplane's TypeScript logic be tested
// without the addon. Not a test file itself.

import type {
  NativeCommand,
  NativeEngine,
  NativeEngineOptions,
  NativeErrorCode,
  NativeEvent,
  NativeFdbEntry,
  NativeModule,
  NativeResult,
  NativeSchema,
  NativeCounterTable,
  NativeStats,
} from '../../src/dataplane/native';

export function nativeError(code: NativeErrorCode, message: string): Error & { code: NativeErrorCode } {
  return Object.assign(new Error(message), { code });
}

interface FakeSwitch {
  vni: number;
  fdb: Map<string, NativeFdbEntry>;
}

interface FakePort {
  switchIds: number[];
  sent: Buffer[];
  inbox: Buffer[];
  up: boolean;
}

export class FakeEngine implements NativeEngine {
  readonly commands: NativeCommand[] = [];
  running = false;
  closed = false;
  delayMs = 0;
  // Fails the next command with this code, after recording it.
  failNext: NativeErrorCode | undefined;
  readonly switches = new Map<number, FakeSwitch>();
  readonly ports = new Map<number, FakePort>();
  private pending = new Set<(err: Error) => void>();

  constructor(
    readonly options: NativeEngineOptions,
    readonly onEvents: (events: NativeEvent[]) => void,
  ) {}

  start(): void {
    if (this.closed) throw nativeError('CLOSED', 'closed');
    this.running = true;
  }
  stop(): void {
    this.running = false;
  }
  close(): void {
    this.running = false;
    this.closed = true;
    for (const reject of this.pending) reject(nativeError('CLOSED', 'engine closed'));
    this.pending.clear();
  }
  isRunning(): boolean {
    return this.running;
  }

  command(cmd: NativeCommand): Promise<NativeResult> {
    this.commands.push(structuredClone(cmd));
    return new Promise((resolve, reject) => {
      if (this.closed) return reject(nativeError('CLOSED', 'engine closed'));
      this.pending.add(reject);
      setTimeout(() => {
        if (!this.pending.delete(reject)) return;
        try {
          if (this.failNext !== undefined) {
            const code = this.failNext;
            this.failNext = undefined;
            throw nativeError(code, `injected ${code}`);
          }
          resolve(this.apply(cmd));
        } catch (err) {
          reject(err);
        }
      }, this.delayMs);
    });
  }

  private freeId(map: Map<number, unknown>): number {
    let id = 0;
    while (map.has(id)) id++;
    return id;
  }

  private sw(id: number): FakeSwitch {
    const s = this.switches.get(id);
    if (s === undefined) throw nativeError('NOT_FOUND', `switch ${id}`);
    return s;
  }

  private apply(cmd: NativeCommand): NativeResult {
    switch (cmd.op) {
      case 'createSwitch': {
        for (const s of this.switches.values()) if (s.vni === cmd.vni) throw nativeError('ALREADY_EXISTS', `vni ${cmd.vni}`);
        if (this.switches.size >= this.options.maxSwitches) throw nativeError('LIMIT_EXCEEDED', 'maxSwitches');
        const id = this.freeId(this.switches);
        this.switches.set(id, { vni: cmd.vni, fdb: new Map() });
        return { id };
      }
      case 'setSwitch':
        this.sw(cmd.switchId);
        return {};
      case 'deleteSwitch': {
        this.sw(cmd.switchId);
        for (const p of this.ports.values()) if (p.switchIds.includes(cmd.switchId)) throw nativeError('IN_USE', 'ports attached');
        this.switches.delete(cmd.switchId);
        return {};
      }
      case 'createPort': {
        const ids = [...(cmd.untaggedSwitchId >= 0 ? [cmd.untaggedSwitchId] : []), ...cmd.vlans.map((m) => m.switchId)];
        for (const id of ids) this.sw(id);
        if (this.ports.size >= this.options.maxPorts) throw nativeError('LIMIT_EXCEEDED', 'maxPorts');
        const id = this.freeId(this.ports);
        this.ports.set(id, { switchIds: ids, sent: [], inbox: [], up: true });
        return { id };
      }
      case 'setPort':
        if (!this.ports.has(cmd.portId)) throw nativeError('NOT_FOUND', `port ${cmd.portId}`);
        return {};
      case 'deletePort':
        if (!this.ports.delete(cmd.portId)) throw nativeError('NOT_FOUND', `port ${cmd.portId}`);
        for (const s of this.switches.values()) for (const [mac, e] of s.fdb) if (e.portId === cmd.portId) s.fdb.delete(mac);
        return {};
      case 'addStaticMac': {
        const s = this.sw(cmd.switchId);
        if (!this.ports.has(cmd.portId)) throw nativeError('NOT_FOUND', `port ${cmd.portId}`);
        const old = s.fdb.get(cmd.mac);
        if (old?.static && old.portId !== cmd.portId) throw nativeError('ALREADY_EXISTS', `mac: ${cmd.mac} is already a static entry on another port`);
        s.fdb.set(cmd.mac, { mac: cmd.mac, portId: cmd.portId, vlan: 0, static: true, ageMs: 0, vtep: '' });
        return {};
      }
      case 'deleteStaticMac': {
        const s = this.sw(cmd.switchId);
        if (!s.fdb.get(cmd.mac)?.static) throw nativeError('NOT_FOUND', cmd.mac);
        s.fdb.delete(cmd.mac);
        return {};
      }
      case 'dumpFdb':
        return { entries: [...this.sw(cmd.switchId).fdb.values()].map((e) => ({ ...e })) };
      case 'flushFdb': {
        const s = this.sw(cmd.switchId);
        let removed = 0;
        for (const [mac, e] of s.fdb) {
          if (!e.static && (cmd.portId < 0 || e.portId === cmd.portId)) {
            s.fdb.delete(mac);
            removed++;
          }
        }
        return { removed };
      }
      default:
        // The overlay is exercised against the real engine (test/dataplane/overlay.test.ts).
        throw nativeError('INVALID_ARGUMENT', `${cmd.op}: not modelled by the fake engine`);
    }
  }

  // Test hook: a learned entry as the engine would create it.
  learn(switchId: number, mac: string, portId: number, ageMs = 1500): void {
    this.sw(switchId).fdb.set(mac, { mac, portId, vlan: 0, static: false, ageMs, vtep: '' });
  }

  stats(): NativeStats {
    // width: counters per row (schema() below); first: the leading values of a row.
    const table = (ids: number[], width: number, first: (id: number) => number[]): NativeCounterTable => {
      const counters = new Float64Array(ids.length * width);
      ids.forEach((id, r) => counters.set(first(id), r * width));
      return { ids: Uint32Array.from(ids), counters, drops: new Float64Array(ids.length * 2) };
    };
    return {
      engine: { iterations: 7 },
      // Tables in schema() order: port rx_packets and switch fdb_entries first.
      ports: table([...this.ports.keys()], 4, (id) => [this.ports.get(id)!.sent.length]),
      switches: table([...this.switches.keys()], 5, (id) => [this.switches.get(id)!.fdb.size]),
      peers: [],
      switchPeers: [],
      eventsDropped: 0,
    };
  }

  schema(): NativeSchema {
    const gauges = new Set(['fdb_entries']);
    const c = (...names: string[]) => names.map((name) => ({ name, kind: gauges.has(name) ? ('gauge' as const) : ('counter' as const), help: `${name} help` }));
    return {
      engine: c('iterations'),
      port: c('rx_packets', 'rx_bytes', 'tx_packets', 'tx_bytes'),
      switch: c('fdb_entries', 'learned', 'moved', 'aged', 'flooded'),
      drop: c('runt', 'port_security'),
      peer: c('rx_packets'),
      switchPeer: c('rx_packets', 'tx_packets'),
      uplink: c('vxlan_rx'),
    };
  }

  pipeSend(portId: number, frames: Buffer[]): number {
    const p = this.ports.get(portId);
    if (p === undefined) throw nativeError('NOT_FOUND', `port ${portId}`);
    p.sent.push(...frames);
    return frames.length;
  }

  pipeReceive(portId: number, max: number): Buffer[] {
    const p = this.ports.get(portId);
    if (p === undefined) throw nativeError('NOT_FOUND', `port ${portId}`);
    return p.inbox.splice(0, max);
  }

  pipeSetLink(portId: number, up: boolean): void {
    const p = this.ports.get(portId);
    if (p === undefined) throw nativeError('NOT_FOUND', `port ${portId}`);
    p.up = up;
  }

  info(): ReturnType<NativeEngine['info']> {
    return { hugepages: false, bufferCount: this.options.bufferCount, bufferSize: this.options.bufferSize, buffersFree: this.options.bufferCount, linkWatch: { mode: 'all-namespaces' } };
  }

  // The fake moves no frames: capture and trace are the real engine's
  // (test/dataplane/observe.test.ts, test/ports/capture.test.ts).
  captureStart(): Promise<{ id: number }> {
    return Promise.reject(nativeError('INTERNAL', 'capture: not in the fake engine'));
  }
  captureRead(): undefined {
    return undefined;
  }
  captureStop(): Promise<unknown> {
    return Promise.reject(nativeError('NOT_FOUND', 'capture: not running'));
  }
  traceStart(): Promise<unknown> {
    return Promise.reject(nativeError('INTERNAL', 'trace: not in the fake engine'));
  }
  traceRead(): undefined {
    return undefined;
  }
  traceStop(): Promise<unknown> {
    return Promise.resolve({});
  }
}

// A NativeModule whose engines are FakeEngines; `last` is the latest one.
export function fakeNative(): NativeModule & { last: FakeEngine | undefined } {
  const mod = {
    last: undefined as FakeEngine | undefined,
    Engine: class extends FakeEngine {
      constructor(options: NativeEngineOptions, onEvents: (events: NativeEvent[]) => void) {
        super(options, onEvents);
        mod.last = this;
      }
    },
  };
  return mod;
}
