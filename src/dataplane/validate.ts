// Pure validation and normalisation of single values. Each helper returns the
// normalised value or throws a ValidationError naming `field` and the reason.
// Nothing here knows about running state; specs.ts composes these into whole
// specs, dataplane.ts checks names against what exists.

import { randomBytes } from 'node:crypto';
import { DataplaneError, ErrorCode, makeError } from './errors';
import { NATIVE_LIMITS as N } from './native';

// The ranges the engine checks too come from its table (core/limits.h,
// through NATIVE_LIMITS); names are the control plane's own.
export const LIMITS = Object.freeze({
  nameMaxLength: 64,
  vniMin: N.vni.min,
  vniMax: N.vni.max,
  vlanMin: N.vlan.min,
  vlanMax: N.vlan.max,
  mtuMin: N.mtu.min,
  mtuMax: N.mtu.max,
  // Ethernet header (14) + one 802.1Q tag (4): what a frame adds to the MTU.
  l2Overhead: 18,
  agingSecondsMin: N.agingSeconds.min,
  agingSecondsMax: N.agingSeconds.max,
  macLimitMin: N.switchMacLimit.min,
  macLimitMax: N.switchMacLimit.max,
  portMacLimitMin: N.portMacLimit.min,
  portMacLimitMax: N.portMacLimit.max,
});

// Renders a received value for an error message, short and unambiguous.
export function describe(value: unknown): string {
  let text: string;
  if (typeof value === 'string') text = JSON.stringify(value);
  else if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') text = String(value);
  else if (value === null) text = 'null';
  else if (value === undefined) text = 'undefined';
  else if (Array.isArray(value)) text = value.length <= 4 && value.every((x) => typeof x === 'number' || typeof x === 'string') ? JSON.stringify(value) : 'an array';
  else if (Buffer.isBuffer(value)) text = 'a Buffer';
  else text = `a ${typeof value}`;
  return text.length > 48 ? `${text.slice(0, 45)}...` : text;
}

export function invalid(code: ErrorCode, field: string, reason: string, value?: unknown, withValue = true): DataplaneError {
  return makeError(code, withValue ? `${reason} (got ${describe(value)})` : reason, field);
}

// "vlans" + 1 -> "vlans[1]"; "vlans[1]" + "switch" -> "vlans[1].switch".
export function fieldPath(base: string, key: string | number): string {
  if (typeof key === 'number') return `${base}[${key}]`;
  return base === '' ? key : `${base}.${key}`;
}

// ---------------------------------------------------------------- generic

export function validateInteger(value: unknown, field: string, min: number, max: number, code: ErrorCode = 'ERR_INVALID_ARGUMENT'): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw invalid(code, field, `must be an integer in ${min}..${max}`, value);
  }
  return value;
}

export function validateBoolean(value: unknown, field: string): boolean {
  if (typeof value !== 'boolean') throw invalid('ERR_INVALID_ARGUMENT', field, 'must be a boolean', value);
  return value;
}

export function isPowerOfTwo(value: number): boolean {
  return Number.isInteger(value) && value > 0 && (value & (value - 1)) === 0 && value <= 2 ** 30;
}

export function validatePowerOfTwo(value: unknown, field: string, min: number, max: number): number {
  if (typeof value !== 'number' || !isPowerOfTwo(value) || value < min || value > max) {
    throw invalid('ERR_INVALID_ARGUMENT', field, `must be a power of two in ${min}..${max}`, value);
  }
  return value;
}

export function validateString(value: unknown, field: string): string {
  if (typeof value !== 'string') throw invalid('ERR_INVALID_ARGUMENT', field, 'must be a string', value);
  return value;
}

export function validateArray(value: unknown, field: string, maxLength = 1_000_000): unknown[] {
  if (!Array.isArray(value)) throw invalid('ERR_INVALID_ARGUMENT', field, 'must be an array', value);
  if (value.length > maxLength) throw invalid('ERR_INVALID_ARGUMENT', field, `must have at most ${maxLength} elements (got ${value.length})`, undefined, false);
  return value;
}

// A plain object whose keys are all in `allowed`. Unknown keys are errors so
// that a typo ("maclimit") is reported instead of silently ignored.
// `field` is the path prefix of the keys ('' at the top of a spec); `label`
// names the object itself when it is not an object at all.
export function validateObject(value: unknown, field: string, allowed: readonly string[], label = field === '' ? 'spec' : field): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value) || Buffer.isBuffer(value)) {
    throw invalid('ERR_INVALID_ARGUMENT', label, 'must be an object', value);
  }
  const record = value as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    if (!allowed.includes(key)) {
      throw invalid('ERR_INVALID_ARGUMENT', fieldPath(field, key), `unknown field; expected one of ${allowed.join(', ')}`, undefined, false);
    }
  }
  return record;
}

// ---------------------------------------------------------------- names

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

export function validateName(value: unknown, field = 'name'): string {
  if (typeof value !== 'string') throw invalid('ERR_INVALID_NAME', field, 'must be a string', value);
  if (value.length < 1 || value.length > LIMITS.nameMaxLength) {
    throw invalid('ERR_INVALID_NAME', field, `must be 1..${LIMITS.nameMaxLength} characters (got ${value.length})`, undefined, false);
  }
  if (!NAME_RE.test(value)) {
    throw invalid('ERR_INVALID_NAME', field, 'must use only A-Z a-z 0-9 . _ - and start with a letter or digit', value);
  }
  return value;
}

// ---------------------------------------------------------------- MACs

const MAC_COLON_RE = /^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$/;
const MAC_DASH_RE = /^[0-9A-Fa-f]{2}(-[0-9A-Fa-f]{2}){5}$/;

// Accepts aa:bb:cc:dd:ee:ff or aa-bb-cc-dd-ee-ff in any case (one separator
// style per address); returns the lower-case colon form.
export function parseMac(value: unknown, field = 'mac'): string {
  if (typeof value !== 'string') throw invalid('ERR_INVALID_MAC', field, 'must be a string like 02:00:00:00:00:01', value);
  if (!MAC_COLON_RE.test(value) && !MAC_DASH_RE.test(value)) {
    throw invalid('ERR_INVALID_MAC', field, 'must be six two-digit hex octets separated by ":" or "-"', value);
  }
  return value.toLowerCase().replace(/-/g, ':');
}

// The group bit (least significant bit of the first octet) marks multicast
// and broadcast addresses.
export function isMulticastMac(mac: string): boolean {
  return (parseInt(mac.slice(0, 2), 16) & 1) === 1;
}

export function isZeroMac(mac: string): boolean {
  return mac === '00:00:00:00:00:00';
}

// A MAC that may be a frame's source: not multicast, not broadcast, not zero.
export function validateUnicastMac(value: unknown, field = 'mac'): string {
  const mac = parseMac(value, field);
  if (isMulticastMac(mac)) throw invalid('ERR_INVALID_MAC', field, 'must be a unicast address (group bit of the first octet clear)', value);
  if (isZeroMac(mac)) throw invalid('ERR_INVALID_MAC', field, 'must not be the all-zero address', value);
  return mac;
}

// A random locally administered unicast MAC (first octet xxxxxx10).
export function generateMac(): string {
  const bytes = randomBytes(6);
  bytes[0] = (bytes[0]! & 0xfc) | 0x02;
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join(':');
}

// ---------------------------------------------------------------- L2 numbers

export function validateVni(value: unknown, field = 'vni'): number {
  return validateInteger(value, field, LIMITS.vniMin, LIMITS.vniMax, 'ERR_INVALID_VNI');
}

export function validateVlan(value: unknown, field = 'vlan'): number {
  return validateInteger(value, field, LIMITS.vlanMin, LIMITS.vlanMax, 'ERR_INVALID_VLAN');
}

// Largest MTU a buffer can carry: a tagged frame (mtu + 18) must fit after
// the headroom. With large buffers (largeBufferCount > 0) a port that
// receives long frames into them (every backend but netmap; afxdp with
// multi-buffer) takes any MTU up to the maximum: the engine checks the port.
export function maxMtuFor(bufferSize: number, headroom: number, largeBufferCount = 0): number {
  if (largeBufferCount > 0) return LIMITS.mtuMax;
  return Math.min(LIMITS.mtuMax, bufferSize - headroom - LIMITS.l2Overhead);
}

export function validateMtu(value: unknown, field = 'mtu', max: number = LIMITS.mtuMax): number {
  const limit = Math.min(max, LIMITS.mtuMax);
  if (typeof value !== 'number' || !Number.isInteger(value) || value < LIMITS.mtuMin || value > limit) {
    const why = limit < LIMITS.mtuMax ? '; larger MTUs need a larger bufferSize or a smaller headroom' : '';
    throw makeError('ERR_INVALID_ARGUMENT', `must be an integer in ${LIMITS.mtuMin}..${limit} (got ${describe(value)})${why}`, field);
  }
  return value;
}

export function validateAgingSeconds(value: unknown, field = 'agingSeconds'): number {
  return validateInteger(value, field, LIMITS.agingSecondsMin, LIMITS.agingSecondsMax);
}

// Switch-wide limit of learned MACs.
export function validateMacLimit(value: unknown, field = 'macLimit'): number {
  return validateInteger(value, field, LIMITS.macLimitMin, LIMITS.macLimitMax);
}

// Per-port limit of learned MACs; 0 means none.
export function validatePortMacLimit(value: unknown, field = 'macLimit'): number {
  return validateInteger(value, field, LIMITS.portMacLimitMin, LIMITS.portMacLimitMax);
}
