// Pure validation of whole specs: options, switch/port specs and updates,
// static MAC specs. Each function checks shape and ranges, applies defaults
// and returns a normalised copy; it never looks at running state (whether a
// referenced switch exists is dataplane.ts's business).

import { EVENT_BITS, NATIVE_LIMITS as N, NativeEngineOptions, NativeLimitId } from './native';
import {
  DEFAULT_OPTIONS,
  EVENT_TYPES,
  EventType,
  PortType,
  ResolvedDataplaneOptions,
  StaticMacRef,
  StaticMacSpec,
  SwitchUpdate,
  VlanMapping,
} from './types';
import {
  fieldPath,
  generateMac,
  invalid,
  maxMtuFor,
  parseMac,
  validateAgingSeconds,
  validateArray,
  validateBoolean,
  validateInteger,
  validateMacLimit,
  validateMtu,
  validateName,
  validateObject,
  validatePortMacLimit,
  validatePowerOfTwo,
  validateUnicastMac,
  validateVlan,
  validateVni,
} from './validate';

// [min, max] of each option, from the engine's table (core/limits.h).
const limitRange = (id: NativeLimitId): readonly [number, number] => Object.freeze([N[id].min, N[id].max] as const);
export const SPEC_LIMITS = Object.freeze({
  bufferCount: limitRange('bufferCount'),
  largeBufferCount: limitRange('largeBufferCount'),
  icmpTooBigPerSecond: limitRange('icmpTooBigPerSecond'),
  bufferSize: limitRange('bufferSize'),
  headroom: limitRange('headroom'), // and at most bufferSize / 4
  maxPorts: limitRange('maxPorts'),
  maxSwitches: limitRange('maxSwitches'),
  maxVteps: limitRange('maxVteps'),
  cpu: limitRange('cpu'),
  idleSpinUs: limitRange('idleSpinUs'),
  burst: limitRange('burst'),
  eventRing: limitRange('eventRing'),
  fdbCapacity: limitRange('fdbCapacity'),
  ringSize: limitRange('ringSize'),
  lockedMacs: N.lockedMacs.max,
  trunkVlans: N.trunkVlans.max,
});

export const DEFAULT_SWITCH = Object.freeze({ macLimit: 65536, agingSeconds: 300, learning: true, remoteLearning: true, allowUnknownPeers: false });
// macLimit: a safe default (docs/configuration.md): one VM cannot fill its switch's table;
// 0 (no limit) must be asked for.
export const DEFAULT_PORT = Object.freeze({ mtu: 1500, learning: true, flood: true, macLimit: 1024, ringSize: 1024 });

// ---------------------------------------------------------------- options

const OPTION_KEYS = [
  'bufferCount', 'largeBufferCount', 'bufferSize', 'headroom', 'hugepages', 'maxPorts', 'maxSwitches', 'maxVteps', 'maxLearnedVteps',
  'busyPoll', 'idleSpinUs', 'cpu', 'burst', 'eventRing', 'events', 'icmpTooBigPerSecond',
] as const;

export function validateEventTypes(value: unknown, field = 'events'): EventType[] {
  const list = validateArray(value, field, 64);
  const out: EventType[] = [];
  list.forEach((item, i) => {
    if (typeof item !== 'string' || !Object.prototype.hasOwnProperty.call(EVENT_BITS, item)) {
      throw invalid('ERR_INVALID_ARGUMENT', fieldPath(field, i), `must be one of ${EVENT_TYPES.join(', ')}`, item);
    }
    if (!out.includes(item as EventType)) out.push(item as EventType);
  });
  return out;
}

export function eventMask(events: readonly EventType[]): number {
  let mask = 0;
  for (const type of events) mask |= EVENT_BITS[type];
  return mask;
}

export function validateOptions(value: unknown = {}): ResolvedDataplaneOptions {
  const o = validateObject(value, '', OPTION_KEYS, 'options');
  const pick = <T>(key: (typeof OPTION_KEYS)[number], check: (v: unknown, field: string) => T, fallback: T): T =>
    o[key] === undefined ? fallback : check(o[key], key);
  const range = (key: keyof typeof SPEC_LIMITS) => SPEC_LIMITS[key] as readonly [number, number];
  const int = (
    key: 'bufferCount' | 'largeBufferCount' | 'headroom' | 'maxPorts' | 'maxSwitches' | 'maxVteps' | 'idleSpinUs' | 'cpu' | 'burst' | 'icmpTooBigPerSecond',
  ) =>
    pick(key, (v, f) => validateInteger(v, f, range(key)[0], range(key)[1]), DEFAULT_OPTIONS[key]);

  const bufferSize = pick('bufferSize', (v, f) => validatePowerOfTwo(v, f, range('bufferSize')[0], range('bufferSize')[1]), DEFAULT_OPTIONS.bufferSize);
  const headroom = int('headroom');
  if (headroom > bufferSize / 4) {
    throw invalid('ERR_INVALID_ARGUMENT', 'headroom', `must be at most bufferSize / 4 (${bufferSize / 4})`, headroom);
  }
  if (maxMtuFor(bufferSize, headroom) < 68) {
    throw invalid('ERR_INVALID_ARGUMENT', 'headroom', `leaves no room for a minimal frame in a ${bufferSize}-byte buffer`, headroom);
  }
  const maxVteps = int('maxVteps');
  return {
    bufferCount: int('bufferCount'),
    largeBufferCount: int('largeBufferCount'),
    bufferSize,
    headroom,
    hugepages: pick('hugepages', validateBoolean, DEFAULT_OPTIONS.hugepages),
    maxPorts: int('maxPorts'),
    maxSwitches: int('maxSwitches'),
    maxVteps,
    maxLearnedVteps: pick('maxLearnedVteps', (v, f) => validateInteger(v, f, 0, maxVteps), Math.floor(maxVteps / 4)),
    busyPoll: pick('busyPoll', validateBoolean, DEFAULT_OPTIONS.busyPoll),
    idleSpinUs: int('idleSpinUs'),
    cpu: int('cpu'),
    burst: int('burst'),
    eventRing: pick('eventRing', (v, f) => validatePowerOfTwo(v, f, range('eventRing')[0], range('eventRing')[1]), DEFAULT_OPTIONS.eventRing),
    events: pick('events', validateEventTypes, [...DEFAULT_OPTIONS.events]),
    icmpTooBigPerSecond: int('icmpTooBigPerSecond'),
  };
}

export function toNativeOptions(o: ResolvedDataplaneOptions): NativeEngineOptions {
  return {
    bufferCount: o.bufferCount,
    largeBufferCount: o.largeBufferCount,
    bufferSize: o.bufferSize,
    headroom: o.headroom,
    hugepages: o.hugepages,
    maxPorts: o.maxPorts,
    maxSwitches: o.maxSwitches,
    maxVteps: o.maxVteps,
    maxLearnedVteps: o.maxLearnedVteps,
    busyPoll: o.busyPoll,
    idleSpinUs: o.idleSpinUs,
    cpu: o.cpu,
    burst: o.burst,
    eventRing: o.eventRing,
    eventMask: eventMask(o.events),
    icmpTooBigPerSecond: o.icmpTooBigPerSecond,
  };
}

// ---------------------------------------------------------------- switches

export interface NormalizedSwitch {
  name: string;
  vni: number;
  macLimit: number;
  agingSeconds: number;
  learning: boolean;
  remoteLearning: boolean;
  allowUnknownPeers: boolean;
  fdbCapacity: number;
}

const SWITCH_KEYS = ['name', 'vni', 'macLimit', 'agingSeconds', 'learning', 'remoteLearning', 'allowUnknownPeers', 'fdbCapacity'] as const;
// The fields updateSwitch() / updatePort() change in place (exported: the
// control plane's plan updates exactly these, and replaces on any other change).
export const SWITCH_UPDATE_KEYS = ['macLimit', 'agingSeconds', 'learning', 'remoteLearning', 'allowUnknownPeers'] as const;
const SWITCH_FIXED_KEYS = ['name', 'vni', 'fdbCapacity'];

export function validateSwitchSpec(value: unknown): NormalizedSwitch {
  const s = validateObject(value, '', SWITCH_KEYS);
  const name = validateName(s.name, 'name');
  const vni = validateVni(s.vni, 'vni');
  const macLimit = s.macLimit === undefined ? DEFAULT_SWITCH.macLimit : validateMacLimit(s.macLimit, 'macLimit');
  const agingSeconds = s.agingSeconds === undefined ? DEFAULT_SWITCH.agingSeconds : validateAgingSeconds(s.agingSeconds, 'agingSeconds');
  const learning = s.learning === undefined ? DEFAULT_SWITCH.learning : validateBoolean(s.learning, 'learning');
  const remoteLearning =
    s.remoteLearning === undefined ? DEFAULT_SWITCH.remoteLearning : validateBoolean(s.remoteLearning, 'remoteLearning');
  const allowUnknownPeers =
    s.allowUnknownPeers === undefined ? DEFAULT_SWITCH.allowUnknownPeers : validateBoolean(s.allowUnknownPeers, 'allowUnknownPeers');
  // The table grows by doubling as it fills, so the default starts small: a
  // host with thousands of switches must not reserve every switch's limit.
  const fdbCapacity = s.fdbCapacity === undefined
    ? Math.min(macLimit, 1024)
    : validateInteger(s.fdbCapacity, 'fdbCapacity', SPEC_LIMITS.fdbCapacity[0], SPEC_LIMITS.fdbCapacity[1]);
  return { name, vni, macLimit, agingSeconds, learning, remoteLearning, allowUnknownPeers, fdbCapacity };
}

function rejectFixed(value: unknown, fixed: readonly string[], what: string): void {
  if (typeof value !== 'object' || value === null) return;
  for (const key of fixed) {
    if (key in value) throw invalid('ERR_INVALID_ARGUMENT', key, `cannot be changed on a running ${what}; delete and recreate it`, undefined, false);
  }
}

// Returns only the fields given; the caller merges them into the current state.
export function validateSwitchUpdate(value: unknown): SwitchUpdate {
  rejectFixed(value, SWITCH_FIXED_KEYS, 'switch');
  const u = validateObject(value, '', SWITCH_UPDATE_KEYS);
  const out: SwitchUpdate = {};
  if (u.macLimit !== undefined) out.macLimit = validateMacLimit(u.macLimit, 'macLimit');
  if (u.agingSeconds !== undefined) out.agingSeconds = validateAgingSeconds(u.agingSeconds, 'agingSeconds');
  if (u.learning !== undefined) out.learning = validateBoolean(u.learning, 'learning');
  if (u.remoteLearning !== undefined) out.remoteLearning = validateBoolean(u.remoteLearning, 'remoteLearning');
  if (u.allowUnknownPeers !== undefined) out.allowUnknownPeers = validateBoolean(u.allowUnknownPeers, 'allowUnknownPeers');
  return out;
}

// ---------------------------------------------------------------- ports

export interface NormalizedPort {
  name: string;
  type: PortType;
  mode: 'access' | 'trunk';
  switch?: string;
  untagged?: string;
  vlans: VlanMapping[]; // in the order given
  mtu: number;
  mac: string;
  learning: boolean;
  flood: boolean;
  macLimit: number;
  lockedMacs: string[];
  ringSize: number;
  kernel?: KernelPortSettings; // every type but 'pipe'
}

// The backend settings of a kernel-facing port, after validation.
export interface KernelPortSettings {
  interface: string;
  spec: string; // the spec string the native side parses (native/netmap/ports/spec.h)
  queue?: number;
  rxRing: number; // 0: backend default
  txRing: number;
  burst: number; // 0: the dataplane's burst
  queues: number; // afxdp: 0 = every rx queue of the interface (or one with `queue`)
  disableOffloads: boolean;
  promiscuous: boolean;
  kernelPath?: boolean; // afpacket only (always set there): the kernel fast path (default true)
  xdpDecap?: 'auto' | 'on' | 'off'; // afpacket uplinks only (always set there): the kernel path's XDP stage (default 'auto')
  xdpMode?: 'auto' | 'native' | 'generic'; // afxdp only (always set there)
  zeroCopy?: 'auto' | 'on' | 'off'; // afxdp only (always set there)
  ioUring?: 'auto' | 'on' | 'off'; // tap only (always set there)
  persistent: boolean;
  socket?: string; // vhostuser only: the unix socket path
  vhostMode?: 'server' | 'client'; // vhostuser only (the spec's `mode`)
}

export interface NormalizedPortUpdate {
  mtu?: number;
  learning?: boolean;
  flood?: boolean;
  macLimit?: number;
  lockedMacs?: string[];
}

const KERNEL_PORT_KEYS_LIST = [
  'interface', 'queue', 'rxRing', 'txRing', 'burst', 'queues', 'disableOffloads', 'promiscuous', 'kernelPath', 'xdpMode', 'zeroCopy', 'ioUring', 'persistent',
  'socket', 'mode',
] as const;

// sun_path holds 108 bytes with the terminating NUL.
export const SOCKET_PATH_MAX = 107;

// A vhost-user socket path as the native spec grammar takes it (ports/spec.h).
export function validateSocketPath(value: unknown, field = 'socket'): string {
  if (typeof value !== 'string' || value.length === 0) {
    const what = value === undefined || value === '' ? 'is required for vhostuser ports' : 'must be a string';
    throw invalid('ERR_INVALID_ARGUMENT', field, `${what}: the absolute path of the vhost-user unix socket, e.g. "/run/vpc/vm1.sock"`, value, value !== undefined);
  }
  if (!value.startsWith('/')) throw invalid('ERR_INVALID_ARGUMENT', field, 'must be an absolute path (start with "/")', value);
  const bytes = Buffer.byteLength(value);
  if (bytes > SOCKET_PATH_MAX) {
    throw invalid('ERR_INVALID_ARGUMENT', field, `is ${bytes} bytes long; a unix socket path holds at most ${SOCKET_PATH_MAX}: use a shorter one`, value);
  }
  const bad = /[^\x21-\x7e]/.exec(value);
  if (bad !== null) throw invalid('ERR_INVALID_ARGUMENT', field, `has a space or control character at position ${bad.index + 1}: use printable characters only`, value);
  return value;
}

// vhostuser: `socket`, `mode`, `queues` and `burst`; nothing that names an
// interface or a kernel ring.
function validateVhostSettings(p: Record<string, unknown>): KernelPortSettings {
  for (const key of ['interface', 'queue', 'rxRing', 'txRing', 'disableOffloads', 'promiscuous', 'kernelPath', 'xdpMode', 'zeroCopy', 'ioUring', 'persistent'] as const) {
    if (p[key] !== undefined) throw invalid('ERR_INVALID_ARGUMENT', key, 'does not apply to vhostuser ports (they take socket, mode, queues and burst)', undefined, false);
  }
  const socket = validateSocketPath(p.socket);
  if (p.mode !== undefined && p.mode !== 'server' && p.mode !== 'client') {
    throw invalid('ERR_INVALID_ARGUMENT', 'mode', "must be 'server' (vpcd listens on the socket) or 'client' (the hypervisor listens, vpcd connects)", p.mode);
  }
  return {
    interface: socket,
    spec: `vhostuser:${socket}`,
    socket,
    vhostMode: (p.mode as 'server' | 'client' | undefined) ?? 'server',
    rxRing: 0,
    txRing: 0,
    burst: p.burst === undefined ? 0 : validateInteger(p.burst, 'burst', 1, 256),
    queues: p.queues === undefined ? 1 : validateInteger(p.queues, 'queues', 1, 16),
    disableOffloads: false,
    promiscuous: true,
    persistent: false,
  };
}

export const IFNAME_MAX = 15; // Linux IFNAMSIZ - 1

// The interface-name rules of the native spec grammar (ports/spec.h), checked
// here first so that a bad name never reaches the addon.
export function validateInterfaceName(value: unknown, field = 'interface'): string {
  if (typeof value !== 'string' || value.length === 0) {
    const what = value === undefined || value === '' ? 'is required for this port type' : 'must be a string';
    throw invalid('ERR_INVALID_ARGUMENT', field, `${what}: the name of the interface to attach, e.g. "veth0"`, value, value !== undefined);
  }
  if (value.length > IFNAME_MAX) {
    throw invalid('ERR_INVALID_ARGUMENT', field, `is ${value.length} characters long; Linux allows at most ${IFNAME_MAX}: use a shorter name`, value);
  }
  const bad = /[^A-Za-z0-9._-]/.exec(value);
  if (bad !== null) {
    throw invalid('ERR_INVALID_ARGUMENT', field, `has ${JSON.stringify(bad[0])} at position ${bad.index + 1}: use only letters, digits, '.', '-' and '_'`, value);
  }
  if (value === '.' || value === '..') throw invalid('ERR_INVALID_ARGUMENT', field, 'is not a valid interface name', value);
  return value;
}

export function validateKernelSettings(p: Record<string, unknown>, type: PortType): KernelPortSettings | undefined {
  if (type === 'pipe') {
    for (const key of KERNEL_PORT_KEYS_LIST) {
      if (p[key] !== undefined) throw invalid('ERR_INVALID_ARGUMENT', key, 'applies only to kernel-facing ports (type afpacket, tap, netmap, afxdp or vhostuser)', undefined, false);
    }
    return undefined;
  }
  if (type === 'vhostuser') return validateVhostSettings(p);
  for (const key of ['socket', 'mode'] as const) {
    if (p[key] !== undefined) throw invalid('ERR_INVALID_ARGUMENT', key, 'applies only to vhostuser ports', undefined, false);
  }
  let iface: string;
  let spec: string;
  const raw = p.interface;
  const vale = typeof raw === 'string' ? /^(vale[A-Za-z0-9_]*):(.*)$/.exec(raw) : null;
  if (type === 'netmap' && vale !== null) {
    if (vale[1].length > IFNAME_MAX) throw invalid('ERR_INVALID_ARGUMENT', 'interface', 'VALE switch name is longer than 15 characters', raw);
    validateInterfaceName(vale[2], 'interface');
    iface = raw as string;
    spec = iface;
  } else {
    iface = validateInterfaceName(raw, 'interface');
    spec = `${type}:${iface}`;
  }
  const settings: KernelPortSettings = {
    interface: iface,
    spec,
    rxRing: 0,
    txRing: 0,
    burst: 0,
    queues: type === 'afxdp' ? 0 : 1,
    // Every kernel port carries offload state by default: afpacket and tap
    // in virtio-net headers, afxdp through a packet socket beside its rings.
    disableOffloads: false,
    promiscuous: true,
    persistent: false,
  };
  if (p.queue !== undefined) {
    if (type !== 'afxdp' && type !== 'netmap') throw invalid('ERR_INVALID_ARGUMENT', 'queue', 'applies only to afxdp and netmap ports', undefined, false);
    if (vale !== null) throw invalid('ERR_INVALID_ARGUMENT', 'queue', 'does not apply to VALE ports', undefined, false);
    settings.queue = validateInteger(p.queue, 'queue', 0, 1023);
    settings.spec = `${spec}@${settings.queue}`;
  }
  if (p.rxRing !== undefined) settings.rxRing = validatePowerOfTwo(p.rxRing, 'rxRing', 64, 65536);
  if (p.txRing !== undefined) settings.txRing = validatePowerOfTwo(p.txRing, 'txRing', 64, 65536);
  if (p.burst !== undefined) settings.burst = validateInteger(p.burst, 'burst', 1, N.portBurst.max); // 0 (the engine's burst) is what omitting it gives
  if (p.queues !== undefined) {
    settings.queues = validateInteger(p.queues, 'queues', 1, N.queues.max);
    if (settings.queues > 1 && type !== 'tap' && type !== 'afxdp') {
      throw invalid('ERR_INVALID_ARGUMENT', 'queues', 'more than one queue is supported for tap and afxdp ports only', p.queues);
    }
  }
  if (p.disableOffloads !== undefined) settings.disableOffloads = validateBoolean(p.disableOffloads, 'disableOffloads');
  if (p.promiscuous !== undefined) {
    // Only the afpacket backend sets its interface promiscuous
    // (PACKET_MR_PROMISC); tap, netmap and afxdp never read the field, so
    // `promiscuous: false` there would be a promise nothing keeps.
    if (type !== 'afpacket') throw invalid('ERR_INVALID_ARGUMENT', 'promiscuous', 'applies only to afpacket ports and uplinks (the other backends never set their interface promiscuous)', undefined, false);
    settings.promiscuous = validateBoolean(p.promiscuous, 'promiscuous');
  }
  if (p.kernelPath !== undefined) {
    if (type !== 'afpacket') throw invalid('ERR_INVALID_ARGUMENT', 'kernelPath', 'applies only to afpacket ports and uplinks (the kernel fast path, docs/design/kernel-path.md)', undefined, false);
    settings.kernelPath = validateBoolean(p.kernelPath, 'kernelPath');
  }
  for (const [key, allowed] of [['xdpMode', ['auto', 'native', 'generic']], ['zeroCopy', ['auto', 'on', 'off']]] as const) {
    const v = p[key];
    if (v === undefined) continue;
    if (type !== 'afxdp') throw invalid('ERR_INVALID_ARGUMENT', key, 'applies only to afxdp ports and uplinks', undefined, false);
    if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) {
      throw invalid('ERR_INVALID_ARGUMENT', key, `must be one of ${allowed.map((a) => `'${a}'`).join(', ')}`, v);
    }
    (settings as unknown as Record<string, string>)[key] = v;
  }
  if (p.ioUring !== undefined) {
    if (type !== 'tap') throw invalid('ERR_INVALID_ARGUMENT', 'ioUring', 'applies only to tap ports', undefined, false);
    if (p.ioUring !== 'auto' && p.ioUring !== 'on' && p.ioUring !== 'off') {
      throw invalid('ERR_INVALID_ARGUMENT', 'ioUring', "must be one of 'auto', 'on', 'off'", p.ioUring);
    }
    settings.ioUring = p.ioUring;
  }
  if (p.persistent !== undefined) {
    if (type !== 'tap') throw invalid('ERR_INVALID_ARGUMENT', 'persistent', 'applies only to tap ports', p.persistent);
    settings.persistent = validateBoolean(p.persistent, 'persistent');
  }
  // The backend's defaults written out, as the fields above are: a spec
  // that states a default is then the same spec as one that leaves it out,
  // and a plan does not replace the port for it.
  if (type === 'afpacket') settings.kernelPath ??= true;
  if (type === 'afxdp') {
    settings.xdpMode ??= 'auto';
    settings.zeroCopy ??= 'auto';
  }
  if (type === 'tap') settings.ioUring ??= 'auto';
  return settings;
}

const PORT_KEYS = [
  'name', 'type', 'switch', 'vlans', 'untagged', 'mtu', 'mac', 'learning', 'flood', 'macLimit', 'lockedMacs', 'ringSize',
  ...KERNEL_PORT_KEYS_LIST,
] as const;
export const PORT_UPDATE_KEYS = ['mtu', 'learning', 'flood', 'macLimit', 'lockedMacs'] as const;
const PORT_FIXED_KEYS = ['name', 'type', 'switch', 'vlans', 'untagged', 'mac', 'ringSize', ...KERNEL_PORT_KEYS_LIST];
const PORT_TYPES: readonly PortType[] = ['pipe', 'afpacket', 'tap', 'netmap', 'afxdp', 'vhostuser'];

export function validateLockedMacs(value: unknown, field = 'lockedMacs'): string[] {
  const list = validateArray(value, field, SPEC_LIMITS.lockedMacs);
  const seen = new Map<string, number>();
  return list.map((item, i) => {
    const mac = validateUnicastMac(item, fieldPath(field, i));
    const first = seen.get(mac);
    if (first !== undefined) {
      throw invalid('ERR_INVALID_MAC', fieldPath(field, i), `duplicates ${fieldPath(field, first)} (${mac})`, undefined, false);
    }
    seen.set(mac, i);
    return mac;
  });
}

// Trunk mappings: each VLAN and each switch at most once (the untagged switch
// counts as a mapping too).
export function validateVlanMappings(value: unknown, untagged: string | undefined, field = 'vlans'): VlanMapping[] {
  const list = validateArray(value, field, SPEC_LIMITS.trunkVlans);
  const byVlan = new Map<number, number>();
  const bySwitch = new Map<string, string>();
  if (untagged !== undefined) bySwitch.set(untagged, 'untagged');
  const out = list.map((item, i) => {
    const at = fieldPath(field, i);
    const m = validateObject(item, at, ['vlan', 'switch']);
    const vlan = validateVlan(m.vlan, fieldPath(at, 'vlan'));
    const sw = validateName(m.switch, fieldPath(at, 'switch'));
    const firstVlan = byVlan.get(vlan);
    if (firstVlan !== undefined) {
      throw invalid('ERR_TRUNK_DUPLICATE_VLAN', fieldPath(at, 'vlan'), `VLAN ${vlan} is already mapped by ${fieldPath(field, firstVlan)}`, undefined, false);
    }
    const firstSwitch = bySwitch.get(sw);
    if (firstSwitch !== undefined) {
      throw invalid('ERR_TRUNK_DUPLICATE_SWITCH', fieldPath(at, 'switch'), `switch "${sw}" is already mapped by ${firstSwitch}`, undefined, false);
    }
    byVlan.set(vlan, i);
    bySwitch.set(sw, at);
    return { vlan, switch: sw };
  });
  return out;
}

// `maxMtu` comes from the engine's buffer geometry (maxMtuFor()).
export function validatePortSpec(value: unknown, maxMtu: number): NormalizedPort {
  const p = validateObject(value, '', PORT_KEYS);
  const name = validateName(p.name, 'name');
  if (typeof p.type !== 'string' || !PORT_TYPES.includes(p.type as PortType)) {
    throw invalid('ERR_INVALID_ARGUMENT', 'type', `must be one of ${PORT_TYPES.map((t) => `"${t}"`).join(', ')}`, p.type);
  }
  const type = p.type as PortType;

  const access = p.switch === undefined ? undefined : validateName(p.switch, 'switch');
  const untagged = p.untagged === undefined ? undefined : validateName(p.untagged, 'untagged');
  if (access !== undefined && untagged !== undefined) {
    throw invalid('ERR_INVALID_ARGUMENT', 'untagged', 'cannot be combined with `switch`: an access port has `switch`, a trunk has `vlans` and optionally `untagged`', undefined, false);
  }
  if (access !== undefined && p.vlans !== undefined) {
    throw invalid('ERR_INVALID_ARGUMENT', 'vlans', 'cannot be combined with `switch`: give a trunk its native switch with `untagged`', undefined, false);
  }
  const vlans = p.vlans === undefined ? [] : validateVlanMappings(p.vlans, untagged, 'vlans');
  if (access === undefined && untagged === undefined && vlans.length === 0) {
    throw invalid('ERR_INVALID_ARGUMENT', 'switch', 'a port needs a switch: `switch` (access port) or `vlans`/`untagged` (trunk port)', undefined, false);
  }

  const port: NormalizedPort = {
    name,
    type,
    mode: access !== undefined ? 'access' : 'trunk',
    vlans,
    mtu: p.mtu === undefined ? Math.min(DEFAULT_PORT.mtu, maxMtu) : validateMtu(p.mtu, 'mtu', maxMtu),
    mac: p.mac === undefined ? generateMac() : validateUnicastMac(p.mac, 'mac'),
    learning: p.learning === undefined ? DEFAULT_PORT.learning : validateBoolean(p.learning, 'learning'),
    flood: p.flood === undefined ? DEFAULT_PORT.flood : validateBoolean(p.flood, 'flood'),
    macLimit: p.macLimit === undefined ? DEFAULT_PORT.macLimit : validatePortMacLimit(p.macLimit, 'macLimit'),
    lockedMacs: p.lockedMacs === undefined ? [] : validateLockedMacs(p.lockedMacs, 'lockedMacs'),
    ringSize: p.ringSize === undefined
      ? DEFAULT_PORT.ringSize
      : validatePowerOfTwo(p.ringSize, 'ringSize', SPEC_LIMITS.ringSize[0], SPEC_LIMITS.ringSize[1]),
  };
  if (access !== undefined) port.switch = access;
  if (untagged !== undefined) port.untagged = untagged;
  const kernel = validateKernelSettings(p as Record<string, unknown>, type);
  if (kernel !== undefined) port.kernel = kernel;
  return port;
}

export function validatePortUpdate(value: unknown, maxMtu: number): NormalizedPortUpdate {
  rejectFixed(value, PORT_FIXED_KEYS, 'port');
  const u = validateObject(value, '', PORT_UPDATE_KEYS);
  const out: NormalizedPortUpdate = {};
  if (u.mtu !== undefined) out.mtu = validateMtu(u.mtu, 'mtu', maxMtu);
  if (u.learning !== undefined) out.learning = validateBoolean(u.learning, 'learning');
  if (u.flood !== undefined) out.flood = validateBoolean(u.flood, 'flood');
  if (u.macLimit !== undefined) out.macLimit = validatePortMacLimit(u.macLimit, 'macLimit');
  if (u.lockedMacs !== undefined) out.lockedMacs = validateLockedMacs(u.lockedMacs, 'lockedMacs');
  return out;
}

// Every switch a port is a member of.
export function switchesOfPort(port: Pick<NormalizedPort, 'switch' | 'untagged' | 'vlans'>): string[] {
  const out: string[] = [];
  if (port.switch !== undefined) out.push(port.switch);
  if (port.untagged !== undefined) out.push(port.untagged);
  for (const m of port.vlans) out.push(m.switch);
  return out;
}

// ---------------------------------------------------------------- static MACs

export function validateStaticMacSpec(value: unknown): StaticMacSpec {
  const s = validateObject(value, '', ['switch', 'mac', 'port']);
  return {
    switch: validateName(s.switch, 'switch'),
    mac: validateUnicastMac(s.mac, 'mac'),
    port: validateName(s.port, 'port'),
  };
}

export function validateStaticMacRef(value: unknown): StaticMacRef {
  const s = validateObject(value, '', ['switch', 'mac']);
  // Deleting accepts any well-formed MAC: a multicast one simply is not there.
  return { switch: validateName(s.switch, 'switch'), mac: parseMac(s.mac, 'mac') };
}
