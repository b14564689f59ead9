// Command serialization: normalized specs (specs.ts, overlay.ts) become the
// engine's commands (NativeCommand), and the engine's answers come back with
// native failures mapped to DataplaneErrors (errors.ts). Units change here:
// the API speaks seconds, the engine milliseconds.

import { makeError, mapNativeError, NativeErrorContext } from './errors';
import type { NativeCommand, NativeEngine, NativeResult, NativeVlanMapping } from './native';
import type { NormalizedUplink } from './overlay';
import type { NormalizedPort, NormalizedSwitch } from './specs';

export function createSwitchCommand(s: NormalizedSwitch): NativeCommand {
  return { op: 'createSwitch', vni: s.vni, macLimit: s.macLimit, agingMs: s.agingSeconds * 1000, learning: s.learning, remoteLearning: s.remoteLearning, allowUnknownPeers: s.allowUnknownPeers, fdbCapacity: s.fdbCapacity };
}

// The switch's mutable fields, all of them (the engine replaces them as one).
export function setSwitchCommand(switchId: number, s: NormalizedSwitch): NativeCommand {
  return { op: 'setSwitch', switchId, macLimit: s.macLimit, agingMs: s.agingSeconds * 1000, learning: s.learning, remoteLearning: s.remoteLearning, allowUnknownPeers: s.allowUnknownPeers };
}

// `untaggedSwitchId` (-1: none) and `vlans` carry the engine ids of the
// switches the port's names refer to.
export function createPortCommand(p: NormalizedPort, untaggedSwitchId: number, vlans: NativeVlanMapping[], waitForInterface = false): NativeCommand {
  return {
    op: 'createPort',
    kind: p.type,
    ringSize: p.ringSize,
    mac: p.mac,
    ...portSettings(p),
    untaggedSwitchId,
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
          kernelPath: p.kernel.kernelPath,
          xdpMode: p.kernel.xdpMode,
          zeroCopy: p.kernel.zeroCopy,
          ioUring: p.kernel.ioUring,
          vhostMode: p.kernel.vhostMode,
          ...(waitForInterface ? { waitForInterface } : {}),
        }),
  };
}

// The port's mutable fields, all of them (the engine replaces them as one).
export function setPortCommand(portId: number, p: NormalizedPort): NativeCommand {
  return { op: 'setPort', portId, ...portSettings(p) };
}

// What setPort changes; createPort sets it first.
function portSettings(p: NormalizedPort): { mtu: number; learning: boolean; flood: boolean; macLimit: number; lockedMacs: string[] } {
  return { mtu: p.mtu, learning: p.learning, flood: p.flood, macLimit: p.macLimit, lockedMacs: [...p.lockedMacs] };
}

export function createUplinkCommand(u: NormalizedUplink, waitForInterface = false): NativeCommand {
  const k = u.kernel;
  return {
    op: 'createUplink',
    kind: u.type,
    ringSize: u.ringSize,
    ...(k === undefined
      ? {}
      : { spec: k.spec, rxRing: k.rxRing, txRing: k.txRing, portBurst: k.burst, queues: k.queues, disableOffloads: k.disableOffloads, promiscuous: k.promiscuous, xdpMode: k.xdpMode, zeroCopy: k.zeroCopy, kernelPath: k.kernelPath, xdpDecap: k.xdpDecap, ...(waitForInterface ? { waitForInterface } : {}) }),
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
  };
}

// Sends one command; a failure, thrown at once or rejected later, becomes a
// DataplaneError in the terms of `context`. A kernel-facing port that could
// not be opened (a bad spec throws at once; a missing interface, a busy one,
// no privilege reject later, since ports open off Node's thread): its codes
// are about the interface, not switches.
export async function sendCommand(engine: NativeEngine, cmd: NativeCommand, context: NativeErrorContext): Promise<NativeResult> {
  // A vhost-user port's "interface" is its socket: the field the user gave.
  const openField = cmd.op === 'createPort' && cmd.kind === 'vhostuser' ? 'socket' : 'interface';
  const mapped = (err: unknown): Error => mapNativeError(err, isOpenError(err) ? { op: context.op, field: openField } : context);
  let pending: Promise<NativeResult>;
  try {
    pending = engine.command(cmd);
  } catch (err) {
    throw mapped(err);
  }
  try {
    return await pending;
  } catch (err) {
    throw mapped(err);
  }
}

// The id a create was answered with.
export function resultId(result: NativeResult, op: string): number {
  const id = result?.id;
  if (typeof id !== 'number' || !Number.isInteger(id) || id < 0) {
    throw makeError('ERR_NATIVE', `${op}: the engine acknowledged without a valid id (got ${String(id)})`);
  }
  return id;
}

function isOpenError(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { stage?: unknown }).stage === 'open';
}
