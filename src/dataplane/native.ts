// The addon's surface, exactly as native/addon exports it. Nothing outside
// src/dataplane imports this file: the rest of the project uses Dataplane.
//
// Contract notes:
// - Every command is validated in TypeScript before it gets here; the addon
//   checks again and rejects with a NativeError whose `code` is one of
//   NativeErrorCode. Commands resolve when the change is live in the engine.
// - Ids are small integers chosen by the engine (slot numbers); they can be
//   reused after a delete.
// - MACs cross the boundary as lower-case "aa:bb:cc:dd:ee:ff" strings.
// - Counter values are plain numbers (exact up to 2^53).

import { createRequire } from 'node:module';
import * as path from 'node:path';
import { NATIVE_TABLES } from './native-tables';

// The lists shared with the engine come from its X-macro tables through
// native-tables.ts (generated; see scripts/gen-native-tables.js).
export type NativeOp = (typeof NATIVE_TABLES.ops)[number];
export type NativeStatusCode = (typeof NATIVE_TABLES.statuses)[number]['code'];
export type NativeEventType = (typeof NATIVE_TABLES.events)[number];
export type NativeLimitId = (typeof NATIVE_TABLES.limits)[number]['id'];

export interface NativeLimit {
  field: string; // the field the range applies to, as error messages name it
  min: number;
  max: number;
}

// Inclusive value ranges the engine checks too (native/netmap/core/limits.h).
export const NATIVE_LIMITS: Readonly<Record<NativeLimitId, Readonly<NativeLimit>>> = Object.freeze(
  Object.fromEntries(NATIVE_TABLES.limits.map((l) => [l.id, Object.freeze({ field: l.field, min: l.min, max: l.max })])) as Record<NativeLimitId, NativeLimit>,
);
import type { LinkWatchMode, VhostUserStatus } from './types';

export interface NativeEngineOptions {
  bufferCount: number; // buffers in the pool
  largeBufferCount?: number; // 64 KiB buffers (default 512)
  bufferSize: number; // bytes per buffer (power of two, 2048..16384)
  headroom: number; // bytes kept in front of every frame for encapsulation
  hugepages: boolean; // try MAP_HUGETLB first
  maxPorts: number;
  maxSwitches: number;
  maxVteps?: number; // remote VTEPs (default 4096)
  maxLearnedVteps?: number; // of those, learned from traffic (default maxVteps / 4)
  busyPoll: boolean; // true: spin; false: poll(2) sleep when idle
  idleSpinUs?: number; // adaptive polling window after the last frame (default 200)
  cpu: number; // pin the engine thread to this CPU; -1: no pinning
  burst: number; // rx burst size, 1..256
  eventRing: number; // event ring capacity (power of two)
  eventMask: number; // bitmask of NativeEventType bits to report (see EVENT_BITS)
  icmpTooBigPerSecond?: number; // ICMP too-big answers a second per switch (default 100)
}

// An event type's bit in eventMask is 1 << its position in the engine's table.
export const EVENT_BITS: Readonly<Record<NativeEventType, number>> = Object.freeze(
  Object.fromEntries(NATIVE_TABLES.events.map((type, i) => [type, 1 << i])) as Record<NativeEventType, number>,
);

export interface NativeVlanMapping {
  vlan: number; // 1..4094
  switchId: number;
}

export type NativeCommand =
  | { op: 'createSwitch'; vni: number; macLimit: number; agingMs: number; learning: boolean; remoteLearning: boolean; allowUnknownPeers: boolean; fdbCapacity: number }
  | { op: 'setSwitch'; switchId: number; macLimit: number; agingMs: number; learning: boolean; remoteLearning: boolean; allowUnknownPeers: boolean }
  | { op: 'deleteSwitch'; switchId: number }
  | {
      op: 'createPort';
      kind: NativePortKind;
      ringSize: number; // power of two (pipe ring)
      // Kernel-facing ports (kind !== 'pipe'); see native/netmap/ports/spec.h.
      spec?: string; // "afpacket:veth0", "tap:vm1", "netmap:eth0", "vale0:p1", "afxdp:eth0@1"
      rxRing?: number; // 0: backend default; else power of two 64..65536
      txRing?: number;
      portBurst?: number; // 0: engine burst; else 1..256
      queues?: number; // 0..16: tap multi-queue; afxdp 0 = every rx queue
      disableOffloads?: boolean; // afpacket, afxdp: GRO/GSO/TSO/tx-csum off while attached
      promiscuous?: boolean; // afpacket: PACKET_MR_PROMISC
      kernelPath?: boolean; // afpacket: the kernel fast path (default on)
      xdpDecap?: string; // afpacket uplinks: the kernel path's XDP stage, 'auto' | 'on' | 'off'
      xdpMode?: string; // afxdp: 'auto' | 'native' | 'generic'
      zeroCopy?: string; // afxdp: 'auto' | 'on' | 'off'
      persistent?: boolean; // tap: a tap the switch creates outlives the port
      ioUring?: string; // tap: 'auto' | 'on' | 'off'
      vhostMode?: string; // vhostuser: 'server' | 'client'
      waitForInterface?: boolean; // afpacket, afxdp: a missing interface makes the port down until it appears, not NOT_FOUND
      mtu: number; // L3 MTU; a frame may be mtu + 14 bytes (+4 when tagged)
      mac: string; // the port's own MAC (informational for pipes)
      learning: boolean;
      flood: boolean; // false: gets no unknown-unicast or multicast floods (broadcast still)
      macLimit: number; // 0: no per-port limit
      lockedMacs: string[]; // empty: no port security
      untaggedSwitchId: number; // -1: untagged frames are not accepted
      vlans: NativeVlanMapping[]; // trunk mappings; empty for an access port
    }
  | {
      op: 'setPort';
      portId: number;
      mtu: number;
      learning: boolean;
      flood: boolean;
      macLimit: number;
      lockedMacs: string[];
    }
  | { op: 'deletePort'; portId: number }
  | { op: 'addStaticMac'; switchId: number; mac: string; portId: number }
  | { op: 'deleteStaticMac'; switchId: number; mac: string; evpn?: boolean }
  | {
      op: 'createUplink';
      kind: NativePortKind;
      ringSize: number;
      spec?: string;
      rxRing?: number;
      txRing?: number;
      portBurst?: number;
      queues?: number;
      disableOffloads?: boolean;
      promiscuous?: boolean;
      waitForInterface?: boolean; // as for createPort; mac is a stand-in until the interface appears
      mtu: number;
      mac: string;
      localIp4: string; // '' for none
      prefix4: number;
      localIp6: string;
      prefix6: number;
      gateway4: string;
      gateway6: string;
      udpPort: number;
      srcPortMin: number;
      srcPortMax: number;
      ttl: number;
      df: boolean;
      udp6ZeroChecksum: boolean;
      allowUnknownPeers: boolean;
      neighborReachableMs: number;
      neighborRetryMs: number;
    }
  | { op: 'deleteUplink' }
  | { op: 'addPeer'; switchId: number; ip: string }
  | { op: 'deletePeer'; switchId: number; ip: string }
  | { op: 'addRemoteMac'; switchId: number; mac: string; vtep: string; evpn?: boolean }
  | { op: 'dumpNeighbors' }
  | { op: 'dumpFdb'; switchId: number }
  | { op: 'flushFdb'; switchId: number; portId: number /* -1: whole switch */ }
  | { op: 'barrier' }; // resolves once every earlier command is live

// Every op of the engine's table has its fields declared above, and no other:
// adding a row to VPC_COMMAND_OPS without its shape here fails to compile.
// Capture and trace are the exception: they carry a ring the addon creates,
// so they go through startCapture()/startTrace(), never command().
type ObserveOp = 'startCapture' | 'stopCapture' | 'startTrace' | 'stopTrace';
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const commandsCoverOps: Same<NativeCommand['op'], Exclude<NativeOp, ObserveOp>> = true;
void commandsCoverOps;

export interface NativeFdbEntry {
  mac: string;
  portId: number;
  vlan: number; // 0: untagged member
  static: boolean;
  ageMs: number; // since last seen; 0 for static entries
  vtep: string; // remote entries: the VTEP's address; '' for local ones
  evpn?: boolean; // installed by the EVPN control plane
}

export interface NativeNeighbor {
  ip: string;
  mac: string; // '' while unresolved
  state: 'incomplete' | 'reachable' | 'stale' | 'failed';
  ageMs: number;
}

export interface NativeResult {
  id?: number; // createSwitch / createPort
  entries?: NativeFdbEntry[]; // dumpFdb
  removed?: number; // flushFdb
  mac?: string; // createUplink: the MAC the VTEP uses (a kernel interface's own)
  neighbors?: NativeNeighbor[]; // dumpNeighbors
}

export type NativePortKind = 'pipe' | 'afpacket' | 'tap' | 'netmap' | 'afxdp' | 'vhostuser';

// What a kernel-facing port reports about itself (engine.portStatus()).
export interface NativePortStatus {
  backend: string;
  spec: string;
  interface: string;
  ifindex: number; // 0 while the interface is gone
  attached: boolean; // the backend holds the interface right now
  mac?: string; // afpacket, afxdp: the interface's MAC, once seen
  rxRing: number;
  txRing: number;
  frameSize: number;
  burst: number;
  queues: number;
  offloads: string;
  io: string;
  kernelPath: string;
  queueRx: number[];
  lastError: string;
  counters: Record<string, number>; // rx_too_big, rx_no_buffer, rx_kernel_drops, ...
  vhost?: VhostUserStatus; // vhostuser ports
}

export type NativeErrorCode = Exclude<NativeStatusCode, 'OK'>;

export interface NativeError extends Error {
  code: NativeErrorCode;
}

export interface NativeEvent {
  type: NativeEventType;
  switchId: number; // -1 when not switch related (link)
  portId: number; // -1 when not port related (table_full)
  oldPortId: number; // moved: where the MAC was before; else -1
  vlan: number;
  oldVlan: number;
  mac: string; // '' when not MAC related
  up: boolean; // link: new state
  vtep: string; // MACs behind a remote VTEP: its address; else ''
  oldVtep: string; // moved: where it was before, when remote
}

// The counters of every slot in use of one kind, as flat tables: row r is
// slot ids[r]; its counters are counters[r * n .. (r + 1) * n) in the order of
// schema().port / schema().switch (n names), its drops likewise in the order
// of schema().drop.
export interface NativeCounterTable {
  ids: Uint32Array;
  counters: Float64Array;
  drops: Float64Array;
}

export interface NativeStats {
  engine: Record<string, number>;
  ports: NativeCounterTable; // every port slot in use
  switches: NativeCounterTable; // every switch slot in use
  peers: { id: number; ip: string; counters: Record<string, number> }[]; // every remote VTEP known
  // Per switch and peer (a VNI's traffic with one remote VTEP): every switch
  // membership of a remote VTEP; peerId is the id in `peers`. Counter names
  // in schema().switchPeer.
  switchPeers: { switchId: number; peerId: number; counters: Record<string, number> }[];
  uplink?: { portId: number; counters: Record<string, number> };
  backend?: {
    portId: number;
    counters: Record<string, number>;
    queues?: { queue: number; counters: Record<string, number>; drops: Record<string, number> }[]; // vhostuser
  }[]; // kernel-facing ports (the uplink's too)
  eventsDropped: number;
}

export interface NativeCounterInfo {
  name: string;
  kind: 'counter' | 'gauge'; // gauge: a level that goes up and down (counters.h)
  help: string;
}

export interface NativeSchema {
  engine: NativeCounterInfo[];
  port: NativeCounterInfo[];
  switch: NativeCounterInfo[];
  drop: NativeCounterInfo[]; // drop reasons, shared by ports and switches
  peer: NativeCounterInfo[];
  switchPeer: NativeCounterInfo[]; // per switch and peer
  uplink: NativeCounterInfo[];
  backend?: NativeCounterInfo[]; // kernel-facing ports' backend counters
  virtq?: NativeCounterInfo[]; // vhostuser ports, per virtqueue
  virtqDrop?: NativeCounterInfo[];
}

export interface NativeEngine {
  start(): void;
  stop(): void;
  close(): void; // stops, rejects pending commands with CLOSED, frees everything
  isRunning(): boolean;
  // A bad field throws at once; everything else settles the Promise, in the
  // order the commands were made. A kernel-facing port is opened off this
  // thread (native/addon/submitter.h): an interface that cannot be opened
  // rejects with `stage: 'open'`.
  command(cmd: NativeCommand): Promise<NativeResult>;
  stats(): NativeStats;
  schema(): NativeSchema;
  pipeSend(portId: number, frames: Buffer[]): number; // frames accepted
  pipeReceive(portId: number, max: number): Buffer[];
  pipeSetLink(portId: number, up: boolean): void;
  info(): { hugepages: boolean; bufferCount: number; bufferSize: number; buffersFree: number; linkWatch: { mode: LinkWatchMode; why?: string } };
  // Kernel-facing ports only; undefined for pipes and unknown ids.
  portStatus?(portId: number): NativePortStatus | undefined;
  // Capture and trace (native/addon/observe_wrap.cc).
  captureStart(o: { portId: number; switchId: number; direction: number; snaplen: number; slots: number }): Promise<{ id: number }>;
  captureRead(id: number, maxRecords: number): NativeCaptureRead | undefined; // undefined: no such capture
  captureStop(id: number): Promise<unknown>;
  traceStart(o: { count: number; portId: number }): Promise<unknown>;
  traceRead(): NativeTraceRead | undefined; // undefined: no trace started yet
  traceStop(): Promise<unknown>;
}

export interface NativeCaptureRead {
  pcap: Buffer; // libpcap records
  ports: Uint16Array; // per record
  dirs: Uint8Array; // per record: 1 in, 2 out
  captured: number;
  dropped: number;
  ended: boolean; // its port or switch was deleted: nothing more will come
  header: Buffer; // pcap file header
}

export interface NativeTraceRead {
  count: number;
  portId: number; // -1: any port
  records: { portId: number; length: number; truncated: boolean; lines: { ns: number; stage: string; text: string }[] }[];
}

export interface NativeModule {
  Engine: new (options: NativeEngineOptions, onEvents: (events: NativeEvent[]) => void) => NativeEngine;
  // The offload journal (ports/ifutil.h), process-wide.
  setOffloadJournal?(dir: string): void;
  recoverOffloads?(dir: string): string[]; // interfaces whose offloads were restored
  recoverXdp?(dir: string): string[]; // interfaces whose XDP program (an afxdp port's) was detached
  // The shared lists as the compiled engine has them (native-tables.ts mirrors them).
  tables?(): NativeTablesExport;
}

export interface NativeTablesExport {
  ops: string[];
  statuses: { code: string; error: string }[];
  events: string[];
  limits: { id: string; field: string; min: number; max: number }[];
}

let cached: NativeModule | undefined;

// Loads build/Release/vpc_native.node relative to the package root (this file
// is compiled to dist/src/dataplane/native.js).
export function loadNative(): NativeModule {
  if (cached) return cached;
  const require = createRequire(__filename);
  const root = path.resolve(__dirname, '..', '..', '..');
  cached = require(path.join(root, 'build', 'Release', 'vpc_native.node')) as NativeModule;
  return cached;
}
