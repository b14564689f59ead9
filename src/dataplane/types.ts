// Public types of the dataplane API. They speak the user's vocabulary: objects
// are named (switch "tenant-a", port "vm1"); the engine's numeric ids never
// leave src/dataplane except as informational `id` fields.

import { EVENT_BITS } from './native';

// ---------------------------------------------------------------- options

export type EventType = keyof typeof EVENT_BITS;

// Every event type the engine can report, in bit order.
export const EVENT_TYPES: readonly EventType[] = Object.freeze(Object.keys(EVENT_BITS) as EventType[]);

export interface DataplaneOptions {
  bufferCount?: number; // buffers in the pool (default 65536)
  largeBufferCount?: number; // 64 KiB buffers for offloaded super-frames, 0..65536 (default 512)
  bufferSize?: number; // bytes per buffer, power of two 2048..16384 (default 2048)
  headroom?: number; // bytes kept before each frame for encapsulation (default 128)
  hugepages?: boolean; // try hugepages first (default true; falls back natively)
  maxPorts?: number; // default 1024
  maxSwitches?: number; // default 4096
  maxVteps?: number; // remote VTEPs (peers and remote FDB entries' VTEPs), 1..65536 (default 4096)
  maxLearnedVteps?: number; // of those, VTEPs learned from traffic, 0..maxVteps (default maxVteps / 4)
  busyPoll?: boolean; // spin instead of sleeping when idle (default false)
  idleSpinUs?: number; // keep polling this long after the last frame before sleeping, 0..100000 (default 200)
  cpu?: number; // pin the engine thread (while it runs, the process's other threads keep off that CPU); -1 or undefined: no pinning
  burst?: number; // rx burst, 1..256 (default 256)
  eventRing?: number; // event ring capacity, power of two (default 65536)
  events?: EventType[]; // event types to report (default: all)
  icmpTooBigPerSecond?: number; // ICMP too-big answers a second per switch, 0..1000000, 0: none (default 100)
}

// Options after validation and defaults: every field present.
export interface ResolvedDataplaneOptions {
  bufferCount: number;
  largeBufferCount: number;
  bufferSize: number;
  headroom: number;
  hugepages: boolean;
  maxPorts: number;
  maxSwitches: number;
  maxVteps: number;
  maxLearnedVteps: number;
  busyPoll: boolean;
  idleSpinUs: number;
  cpu: number;
  burst: number;
  eventRing: number;
  events: EventType[];
  icmpTooBigPerSecond: number;
}

export const DEFAULT_OPTIONS: Readonly<ResolvedDataplaneOptions> = Object.freeze({
  bufferCount: 65536,
  largeBufferCount: 512,
  bufferSize: 2048,
  headroom: 128,
  hugepages: true,
  maxPorts: 1024,
  maxSwitches: 4096,
  maxVteps: 4096,
  maxLearnedVteps: 1024, // maxVteps / 4
  busyPoll: false,
  idleSpinUs: 200,
  cpu: -1,
  burst: 256,
  eventRing: 65536,
  events: [...EVENT_TYPES],
  icmpTooBigPerSecond: 100,
});

// ---------------------------------------------------------------- switches

export interface SwitchSpec {
  name: string;
  vni: number; // 1..16777215, unique per dataplane
  macLimit?: number; // FDB entries (learned and static) before learning stops, 1..1,000,000 (default 65536)
  agingSeconds?: number; // learned entries expire after this idle time, 1..1,000,000 (default 300)
  learning?: boolean; // learn source MACs from local ports (default true)
  remoteLearning?: boolean; // learn inner source MACs behind remote VTEPs (default true)
  allowUnknownPeers?: boolean; // accept VXLAN for this VNI from VTEPs that are not its peers (default false)
  fdbCapacity?: number; // initial FDB table size (default min(macLimit, 1024)); the table doubles as it fills
}

// Fields of a running switch that can change. name, vni and fdbCapacity cannot.
export interface SwitchUpdate {
  macLimit?: number;
  agingSeconds?: number;
  learning?: boolean;
  remoteLearning?: boolean;
  allowUnknownPeers?: boolean;
}

export interface SwitchInfo {
  name: string;
  id: number; // engine slot; informational, reused after delete
  vni: number;
  macLimit: number;
  agingSeconds: number;
  learning: boolean;
  remoteLearning: boolean;
  allowUnknownPeers: boolean;
  fdbCapacity: number;
  ports: string[]; // names of attached ports, sorted
}

// ---------------------------------------------------------------- ports

// 'pipe': in-process. The others are kernel-facing backends (docs/ports.md):
// 'afpacket' (any interface), 'tap' (the switch holds the tap: a container's or host stack's NIC; a VM's tap is an afpacket port), 'netmap' (NIC or
// VALE port, needs /dev/netmap), 'afxdp' (AF_XDP, one socket per rx queue; built when libxdp/libbpf are present),
// 'vhostuser' (a VM's virtio-net over a vhost-user socket: `socket`, `mode`, `queues`).
export type PortType = 'pipe' | 'afpacket' | 'tap' | 'netmap' | 'afxdp' | 'vhostuser';

export interface VlanMapping {
  vlan: number; // 1..4094
  switch: string;
}

// An access port gives `switch`. A trunk port gives `vlans` (tagged members)
// and optionally `untagged` (its native switch). `switch` and
// `untagged`/`vlans` are mutually exclusive.
export interface PortSpec {
  name: string;
  type: PortType;
  switch?: string;
  vlans?: VlanMapping[];
  untagged?: string;
  mtu?: number; // L3 MTU, 68..min(9000, bufferSize - headroom - 18) (default 1500)
  mac?: string; // the port's own unicast MAC (default: random locally administered)
  learning?: boolean; // default true
  flood?: boolean; // receive unknown-unicast/multicast floods (default true; broadcast always)
  macLimit?: number; // learned MACs on this port, 0..1,000,000; 0: no limit (default 1024, DEFAULT_PORT in specs.ts: one guest cannot fill its switch)
  lockedMacs?: string[]; // port security: only these source MACs pass (default [] = off)
  ringSize?: number; // pipe ring size, power of two (default 1024)
  // Kernel-facing ports (type !== 'pipe'):
  interface?: string; // required (not for vhostuser): the interface (1..15 of [A-Za-z0-9._-]); netmap also "valeN:port"
  socket?: string; // vhostuser: required, the unix socket's absolute path (at most 107 bytes)
  mode?: 'server' | 'client'; // vhostuser: server = vpcd listens on `socket`; client = the hypervisor does and vpcd connects, every second until it answers (default 'server')
  queue?: number; // afxdp: the first queue (alone unless `queues` says more); netmap: this one ring pair; 0..1023
  rxRing?: number; // frames/slots in the receive ring, power of two 64..65536 (default: backend's, afpacket 2048)
  txRing?: number; // same for transmit
  burst?: number; // most frames taken per receive call, 1..256 (default: the dataplane's burst)
  queues?: number; // vhostuser: 1..16 queue pairs offered (MQ when > 1; default 1); tap: 1..16 queues (IFF_MULTI_QUEUE when > 1; default 1); afxdp: 1..16 queues from `queue` (default: every rx queue, at most 16; one with `queue`)
  disableOffloads?: boolean; // GRO/LRO/GSO/TSO/tx-csum off while attached, restored after; super-frames are then cut by the kernel's software GSO (default false; afxdp always turns GRO/LRO off)
  promiscuous?: boolean; // afpacket: receive frames for every MAC (default true)
  kernelPath?: boolean; // afpacket: known-unicast frames between afpacket access ports of one switch are switched in the kernel (TC + BPF), the rest in the engine (default true; docs/design/kernel-path.md)
  xdpMode?: 'auto' | 'native' | 'generic'; // afxdp: XDP hook; auto = native, else generic (on a veth: generic first) (default 'auto')
  zeroCopy?: 'auto' | 'on' | 'off'; // afxdp: AF_XDP zero-copy; auto = where the driver has it (default 'auto')
  ioUring?: 'auto' | 'on' | 'off'; // tap: batch reads and writes through io_uring; auto = where the kernel allows it, else read()/write() per frame (default 'auto')
  persistent?: boolean; // tap: a tap the switch creates stays after the port is deleted or vpcd stops (default false)
}

// The live state of a kernel-facing port (Dataplane.portStatus()).
export interface PortStatus {
  backend: string;
  spec: string; // canonical spec string, e.g. "afpacket:veth0"
  interface: string;
  ifindex: number; // 0 while the interface is gone
  attached: boolean; // the backend holds the interface right now
  mac?: string; // afpacket, afxdp: the interface's MAC, once seen (an uplink uses it as its VTEP's)
  rxRing: number; // as opened (rounded up to whole ring blocks)
  txRing: number;
  frameSize: number; // bytes per ring slot
  burst: number;
  queues: number;
  offloads: string; // what was done about offloads
  io: string; // how frames cross the kernel: rings, io_uring, or a system call per frame (and why)
  kernelPath: string; // the kernel fast path: "on: ..." or "off: why" (docs/design/kernel-path.md)
  queueRx: number[]; // frames received per queue of the port (length = queues)
  lastError: string; // '' when fine; else what went wrong and what the port does about it
  counters: Record<string, number>; // backend drops and syscalls: rx_too_big, rx_no_buffer, kicks, ...
  vhost?: VhostUserStatus; // vhostuser ports
}

// A vhost-user port's device as its front end set it up.
export interface VhostUserStatus {
  socket: string;
  mode: 'server' | 'client';
  connected: boolean;
  features: string; // negotiated virtio feature bits, hex
  featureNames: string; // the same by name: "csum guest_csum ... mrg_rxbuf ... event_idx ... version_1"
  protocolFeatures: string; // hex
  deviceStatus: number; // virtio device status byte (SET_STATUS)
  maxQueuePairs: number;
  connects: number;
  disconnects: number;
  messages: number;
  refused: number; // vhost-user messages refused (unsupported, malformed); lastError says the latest
  // Connections the port dropped, by reason (closed_mid_message, bad_version, too_big,
  // too_many_fds, reply_lost, memory_shrunk: ports/vhost_user.h); lastError says the latest.
  connectionDrops: Record<string, number>;
  watcherErrors: number; // failed poll/accept/socket calls of the port's watcher thread, each retried
  queues: VhostQueueStatus[]; // 2 per queue pair: even = guest receive, odd = guest transmit
  regions: { guestPhysical: string; size: number; frontendVirtual: string }[];
}

export interface VhostQueueStatus {
  index: number;
  role: 'guest-rx' | 'guest-tx';
  size: number; // 0: not set up
  enabled: boolean;
  started: boolean;
  ready: boolean;
  broken: boolean; // the guest broke the ring rules; see lastError
  lastAvail: number;
  usedIdx: number;
  lastError: string;
  counters: Record<string, number>; // names in schema().virtq
  drops: Record<string, number>; // names in schema().virtqDrop
}

// Fields of a running port that can change.
export interface PortUpdate {
  mtu?: number;
  learning?: boolean;
  flood?: boolean;
  macLimit?: number;
  lockedMacs?: string[];
}

export interface PortInfo {
  name: string;
  id: number; // engine slot; informational, reused after delete
  type: PortType;
  mode: 'access' | 'trunk';
  switch?: string; // access ports
  untagged?: string; // trunk ports with a native switch
  vlans: VlanMapping[]; // trunk ports, in the order given; [] for access ports
  mtu: number;
  mac: string;
  learning: boolean;
  flood: boolean;
  macLimit: number;
  lockedMacs: string[];
  ringSize: number;
  // Kernel-facing ports only:
  interface?: string;
  spec?: string; // e.g. "afpacket:veth0"
  queue?: number;
  rxRing?: number; // 0: backend default (see portStatus() for what was opened)
  txRing?: number;
  burst?: number; // 0: the dataplane's burst
  queues?: number; // as asked; afxdp 0: every rx queue (portStatus().queues says how many were opened)
  disableOffloads?: boolean;
  promiscuous?: boolean;
  persistent?: boolean; // tap ports
  kernelPath?: boolean; // afpacket ports (always set there, default true)
  ioUring?: 'auto' | 'on' | 'off'; // tap ports (always set there, default 'auto')
  socket?: string; // vhostuser ports
  vhostMode?: 'server' | 'client'; // vhostuser ports (the spec's `mode`)
}

// ---------------------------------------------------------------- fdb

export interface StaticMacSpec {
  switch: string;
  mac: string; // unicast
  port: string; // must be a member of `switch`
}

export interface StaticMacRef {
  switch: string;
  mac: string;
}

export interface FdbEntry {
  mac: string; // lower-case aa:bb:cc:dd:ee:ff
  port: string;
  vlan: number; // 0: learned on an untagged member
  static: boolean;
  ageSeconds: number; // since last seen; 0 for static entries
  vtep?: string; // remote entries: the VTEP behind which the MAC lives (port is the uplink's name)
  evpn?: boolean; // kind `evpn`: installed from a BGP EVPN route (static: true too: never aged)
}

// ---------------------------------------------------------------- stats

export interface CounterSet {
  counters: Record<string, number>;
  drops: Record<string, number>;
  backend?: Record<string, number>; // kernel-facing ports (the uplink too): the backend's counters, names in schema().backend
  // vhostuser ports: per virtqueue (even: guest receive, odd: guest transmit),
  // names in schema().virtq and schema().virtqDrop.
  queues?: { queue: number; counters: Record<string, number>; drops: Record<string, number> }[];
}

export interface SwitchCounterSet extends CounterSet {
  // The switch's traffic with each remote VTEP (its peers, and VTEPs it
  // learned or holds remote MACs behind), by address; names in schema().switchPeer.
  peers: Record<string, Record<string, number>>;
}

export interface DataplaneStats {
  engine: Record<string, number>;
  eventsDropped: number;
  ports: Record<string, CounterSet>; // by port name
  switches: Record<string, SwitchCounterSet>; // by switch name
  peers: Record<string, Record<string, number>>; // remote VTEPs by address, totals over every switch
  uplink?: { name: string; counters: Record<string, number> };
}

export interface CounterInfo {
  name: string;
  kind: 'counter' | 'gauge'; // gauge: a current level (table occupancy, free buffers), not a running total
  help: string;
}

// The counter and drop-reason names the engine reports; authoritative.
export interface DataplaneSchema {
  engine: CounterInfo[];
  port: CounterInfo[];
  switch: CounterInfo[];
  drop: CounterInfo[];
  peer: CounterInfo[];
  switchPeer: CounterInfo[]; // per switch and peer: stats().switches[name].peers[ip]
  uplink: CounterInfo[];
  backend: CounterInfo[]; // kernel-facing ports' backend counters (rx_too_big, rx_kernel_drops, tx_errors, ...)
  virtq: CounterInfo[]; // vhostuser ports, per virtqueue (packets, bytes, notifies, guest_full)
  virtqDrop: CounterInfo[]; // vhostuser ports, per virtqueue drop reasons (ring_* = a guest breaking the virtio rules)
}

export interface EngineInfo {
  hugepages: boolean;
  bufferCount: number;
  bufferSize: number;
  buffersFree: number;
  // How the engine learns of link changes (the gauge vpc_engine_link_watch:
  // 0, 1, 2): from the kernel's link messages of every namespace that has an
  // id here (taps followed into containers), of its own namespace only, or
  // not at all (every port is then checked in turn). `why` gives the
  // kernel's refusal when it is less than all-namespaces.
  linkWatch: { mode: LinkWatchMode; why?: string };
}

export type LinkWatchMode = 'all-namespaces' | 'own-namespace' | 'off';

// ---------------------------------------------------------------- events
//
// Object names are resolved when the event batch reaches JavaScript. An event
// about an object that is already gone names it "#<id>".

export interface LearnedEvent {
  type: 'learned';
  switch: string;
  port: string;
  vlan: number;
  mac: string;
  vtep?: string; // the MAC lives behind this remote VTEP (port is then the uplink)
}

export interface MovedEvent {
  type: 'moved';
  switch: string;
  port: string; // where the MAC is now
  oldPort: string; // where it was
  vlan: number;
  oldVlan: number;
  mac: string;
  vtep?: string; // now behind this remote VTEP
  oldVtep?: string; // was behind this remote VTEP
}

export interface AgedEvent {
  type: 'aged';
  switch: string;
  port: string;
  vlan: number;
  mac: string;
  vtep?: string; // the MAC lives behind this remote VTEP (port is then the uplink)
}

export interface TableFullEvent {
  type: 'table_full';
  switch: string;
  port?: string; // present when the engine names the ingress port
  mac: string;
  vtep?: string; // learning was refused for a MAC behind this remote VTEP
}

export interface PortLimitEvent {
  type: 'port_limit';
  switch: string;
  port: string;
  vlan: number;
  mac: string;
  vtep?: string; // the MAC lives behind this remote VTEP (port is then the uplink)
}

export interface LinkEvent {
  type: 'link';
  port: string;
  up: boolean;
}

export type DataplaneEvent = LearnedEvent | MovedEvent | AgedEvent | TableFullEvent | PortLimitEvent | LinkEvent;

// Typed EventEmitter map of Dataplane.
export interface DataplaneEventMap {
  event: [DataplaneEvent];
  events: [DataplaneEvent[]];
  // A trace its deadline ended (TraceSpec.seconds) before all its frames came.
  traceExpired: [{ id: number; seconds: number; count: number; records: number }];
}

// ---------------------------------------------------------------- pipes

// The far end of a pipe port: what a VM would see. Frames sent here enter the
// switch through the port; frames the switch forwards to the port come out of
// receive().
export interface PipeEnd {
  readonly port: string;
  send(frames: Buffer[]): number; // frames accepted (the rest did not fit the ring)
  receive(max?: number): Buffer[];
  setLink(up: boolean): void;
  // Polls receive() every ~2 ms until `count` frames arrived or `timeoutMs`
  // passed; resolves with what arrived (possibly fewer than count).
  waitFor(count: number, timeoutMs?: number): Promise<Buffer[]>;
}
