// The desired-state model: what the config file, the API and the state file
// all describe. An object is its user-given spec plus a UUID; validation is
// the dataplane's own (src/dataplane/specs.ts), so a config and an API call
// are held to exactly the rules the engine applies.
//
// Specs are kept as given (plus a concrete MAC for ports), not normalised:
// fields that later builds add to a port type pass through untouched. Two
// specs are "the same" when their normalised forms are equal.

import { randomUUID } from 'node:crypto';
import {
  DataplaneError,
  DataplaneOptions,
  PeerSpec,
  PortSpec,
  RemoteMacSpec,
  StaticMacSpec,
  SwitchSpec,
  UplinkSpec,
  generateMac,
  maxMtuFor,
  switchesOfPort,
  uplinkProblem,
  validateOptions,
  validatePeerSpec,
  validatePortSpec,
  validateRemoteMacSpec,
  validateStaticMacSpec,
  validateUplinkSpec,
  validateSwitchSpec,
  vtepAddressProblem,
  PORT_UPDATE_KEYS,
  SWITCH_UPDATE_KEYS,
} from '../dataplane';
import { ControlError, ErrorDetail } from './errors';
import type { BgpSpec } from './evpn/config';

export interface SwitchObject {
  uuid: string;
  spec: SwitchSpec;
}

export interface PortObject {
  uuid: string;
  spec: PortSpec; // always carries `mac` once the object exists
}

// A static FDB entry points at a local port ({switch, mac, port}) or at a
// remote VTEP ({switch, mac, vtep}: the MAC lives behind that VTEP).
export type FdbSpec = StaticMacSpec | RemoteMacSpec;

export interface FdbObject {
  uuid: string;
  spec: FdbSpec;
}

// The VXLAN uplink (at most one: the dataplane has one VTEP).
export interface UplinkObject {
  uuid: string;
  spec: UplinkSpec; // always carries `mac` once the object exists
}

// A remote VTEP in a switch's flood list.
export interface PeerObject {
  uuid: string;
  spec: PeerSpec; // ip in canonical form
}

export interface Model {
  engine: DataplaneOptions;
  switches: SwitchObject[];
  ports: PortObject[];
  uplinks: UplinkObject[];
  peers: PeerObject[];
  fdb: FdbObject[];
  bgp?: BgpSpec; // the BGP EVPN speaker, when this host has one
}

export type ObjectKind = 'switch' | 'port' | 'uplink' | 'peer' | 'fdb';

export function emptyModel(engine: DataplaneOptions = {}): Model {
  return { engine: { ...engine }, switches: [], ports: [], uplinks: [], peers: [], fdb: [] };
}

export function isRemote(spec: FdbSpec): spec is RemoteMacSpec {
  return (spec as RemoteMacSpec).vtep !== undefined;
}

// One spelling per address: IPv6 compressed and lower case. A zone index
// ("fe80::1%eth0", which isIP() accepts) names no remote VTEP: refused.
export function canonicalIp(ip: string, field = 'ip'): string {
  if (!ip.includes(':')) return ip;
  if (ip.includes('%')) {
    throw new ControlError('ERR_INVALID_ARGUMENT', `${field}: ${JSON.stringify(ip)} has a zone index (%...); a VTEP address is a global IPv6 address without one`, { field });
  }
  return new URL(`http://[${ip}]/`).hostname.slice(1, -1);
}

export function ipFamily(ip: string): 4 | 6 {
  return ip.includes(':') ? 6 : 4;
}

export function peerKey(spec: { switch: string; ip: string }): string {
  return `${spec.switch}/${spec.ip}`;
}

export function cloneModel(m: Model): Model {
  return JSON.parse(JSON.stringify(m)) as Model;
}

// Fields of a running object that an update can change; a difference in any
// other field means the object is replaced (deleted and created again). They
// are the dataplane's own update keys (what updateSwitch()/updatePort()
// accept), so the two cannot drift apart.
export const SWITCH_MUTABLE: readonly string[] = SWITCH_UPDATE_KEYS;
export const PORT_MUTABLE: readonly string[] = PORT_UPDATE_KEYS;
// The dataplane has no updateUplink(): every uplink field is fixed, and a
// change replaces the uplink (its peers and remote entries are removed first
// and added again after). Peers and FDB entries have no update either.
export const UPLINK_MUTABLE: readonly string[] = [];

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function newUuid(): string {
  return randomUUID();
}

export function validateUuid(value: unknown, field: string): string {
  if (typeof value !== 'string' || !UUID_RE.test(value.toLowerCase())) {
    throw new ControlError('ERR_INVALID_ARGUMENT', `${field}: must be a UUID like 123e4567-e89b-12d3-a456-426614174000 (got ${JSON.stringify(value)})`, { field });
  }
  return value.toLowerCase();
}

export function fdbKey(spec: { switch: string; mac: string }): string {
  return `${spec.switch}/${spec.mac}`;
}

export function maxMtuOf(engine: DataplaneOptions): number {
  const o = validateOptions(engine);
  return maxMtuFor(o.bufferSize, o.headroom, o.largeBufferCount);
}

// Re-throws a dataplane validation error with `prefix` put in front of its
// field path, so "vni: ..." becomes "switches[2].vni: ...".
export function prefixed(err: unknown, prefix: string): ControlError {
  if (err instanceof DataplaneError || err instanceof ControlError) {
    const inner = err.field;
    const field = inner === undefined || inner === '' ? prefix : prefix === '' ? inner : inner.startsWith('[') ? `${prefix}${inner}` : `${prefix}.${inner}`;
    let reason = err.message;
    if (inner !== undefined && reason.startsWith(`${inner}: `)) reason = reason.slice(inner.length + 2);
    return new ControlError(err.code, field === '' ? reason : `${field}: ${reason}`, { field: field === '' ? undefined : field, cause: err });
  }
  throw err;
}

// ---------------------------------------------------------------- specs

// How to find every error of one object with a validator that stops at the
// first: validate, record the error, set its field aside, validate again.
// A field set aside is replaced by a valid stand-in when the object cannot
// do without it (`standIns`), else removed. An error about a field the
// object does not have is recorded only when it is the object's own (before
// anything was set aside, or a `required` field it lacks and that no field
// set aside stands for: `alternatives`), not one that setting a field aside
// caused. After a `pivots` field (the port type, which decides which other
// fields apply) nothing more is checked. A bad element of a list (lockedMacs[1],
// vlans[0].switch) sets aside that element only, so the others are checked
// too; the errors after it are renumbered to the given list's indices.
interface FieldRules {
  standIns: Record<string, unknown>;
  required: readonly string[];
  alternatives?: Record<string, readonly string[]>;
  pivots: readonly string[];
  // A field checked against another (a gateway against localIp's subnet):
  // once that one is set aside, or stood in for because the object lacks
  // it, its stand-in would be the measure, so the dependent field's error
  // is not reported.
  dependsOn?: Record<string, string>;
}

const SWITCH_RULES: FieldRules = { standIns: { name: 'x', vni: 1 }, required: ['name', 'vni'], pivots: [] };
const PORT_RULES: FieldRules = {
  standIns: { name: 'x', switch: 'x', interface: 'x', socket: '/x' },
  required: ['name', 'type', 'interface', 'switch'],
  // A trunk needs no `switch`; a vhostuser port has a `socket`, no `interface`.
  alternatives: { switch: ['vlans', 'untagged'], interface: ['socket'] },
  pivots: ['type'],
  // A trunk's fields are checked against `switch` (not both): against a
  // stand-in for a switch the port lacks, that says nothing of the port.
  dependsOn: { vlans: 'switch', untagged: 'switch' },
};
const UPLINK_RULES: FieldRules = {
  standIns: { name: 'x', interface: 'x', localIp: '198.18.0.1/24', localIp6: '2001:db8::1/64' },
  required: ['name', 'type', 'interface', 'localIp'],
  pivots: ['type'],
  dependsOn: { gateway: 'localIp', gateway6: 'localIp6' },
};
const PEER_RULES: FieldRules = { standIns: { switch: 'x', ip: '198.18.0.1' }, required: ['switch', 'ip'], pivots: [] };
const FDB_RULES: FieldRules = {
  standIns: { switch: 'x', mac: '02:00:00:00:00:01', port: 'x', vtep: '198.18.0.1' },
  required: ['switch', 'mac', 'port'],
  pivots: [],
};
export const ENGINE_RULES: FieldRules = { standIns: {}, required: [], pivots: [] };

function isFieldError(err: unknown): err is DataplaneError | ControlError {
  return err instanceof DataplaneError || err instanceof ControlError;
}

// "vlans[1].switch" -> "vlans"
function topField(field: string | undefined): string {
  return /^[^.[]*/.exec(field ?? '')![0];
}

// Every field error `validate` finds in `value`, in the validator's order
// (empty when it is valid).
export function fieldErrors(value: unknown, validate: (v: unknown) => unknown, rules: FieldRules): (DataplaneError | ControlError)[] {
  const errors: (DataplaneError | ControlError)[] = [];
  const given = (typeof value === 'object' && value !== null && !Array.isArray(value) ? value : undefined) as Record<string, unknown> | undefined;
  const work: Record<string, unknown> | undefined = given === undefined ? undefined : { ...given };
  const setAside = new Set<string>();
  const stoodIn = new Set<string>(); // fields the object lacks, given a stand-in
  // Lists some elements of which are set aside: the given index of each
  // element left in work[key].
  const indices = new Map<string, number[]>();
  const elements = given === undefined ? 0 : Object.values(given).reduce<number>((n, v) => n + (Array.isArray(v) ? v.length : 0), 0);
  const rounds = (given === undefined ? 0 : Object.keys(given).length) + rules.required.length + elements + 2;
  for (let i = 0; i < rounds; i++) {
    try {
      validate(work ?? value);
      return errors;
    } catch (thrown) {
      if (!isFieldError(thrown)) throw thrown;
      const key = topField(thrown.field);
      const err = renumbered(thrown, key, indices.get(key));
      if (work === undefined || key === '') {
        errors.push(err); // the object as a whole
        return errors;
      }
      const own = Object.prototype.hasOwnProperty.call(given, key);
      if (own && Object.prototype.hasOwnProperty.call(work, key) && (work[key] === given![key] || indices.has(key))) {
        const on = rules.dependsOn?.[key];
        if (on === undefined || !(setAside.has(on) || stoodIn.has(on))) errors.push(err);
        setAside.add(key);
        if (rules.pivots.includes(key)) return errors;
        // One bad element of a list: set that one aside, check the others.
        const element = new RegExp(`^${key}\\[(\\d+)\\]`).exec(thrown.field ?? '');
        const list = work[key];
        if (element !== null && Array.isArray(list) && list.length > 1 && Number(element[1]) < list.length) {
          const at = Number(element[1]);
          const index = indices.get(key) ?? list.map((_, j) => j);
          work[key] = list.filter((_, j) => j !== at);
          indices.set(key, index.filter((_, j) => j !== at));
          continue;
        }
        indices.delete(key);
        if (Object.prototype.hasOwnProperty.call(rules.standIns, key)) work[key] = rules.standIns[key];
        else delete work[key];
        continue;
      }
      // A field the object lacks (or a stand-in refused: give up).
      const lacking = rules.required.includes(key) && !own && !(rules.alternatives?.[key] ?? []).some((k) => setAside.has(k));
      if (setAside.size === 0 || lacking) errors.push(err);
      if (rules.pivots.includes(key) || !Object.prototype.hasOwnProperty.call(rules.standIns, key) || work[key] === rules.standIns[key]) return errors;
      work[key] = rules.standIns[key];
      stoodIn.add(key);
    }
  }
  return errors;
}

// An error about a list some elements of which were set aside, with the
// given list's indices (in its field and its message: "duplicates
// lockedMacs[0]"), not those of what was left.
function renumbered<E extends DataplaneError | ControlError>(err: E, key: string, index: number[] | undefined): E | ControlError {
  if (index === undefined) return err;
  const re = new RegExp(`\\b${key}\\[(\\d+)\\]`, 'g');
  const fix = (text: string): string => text.replace(re, (whole, n: string) => (index[Number(n)] === undefined ? whole : `${key}[${index[Number(n)]}]`));
  return new ControlError(err.code, fix(err.message), { field: err.field === undefined ? undefined : fix(err.field), cause: err });
}

// One error for all of them: the first one's code and field, every message,
// and each in `details` (the config and the API list them all).
export function combinedError(errors: ControlError[]): ControlError {
  if (errors.length === 1) return errors[0]!;
  const first = errors[0]!;
  const details: ErrorDetail[] = errors.map((e) => (e.field === undefined ? { code: e.code, message: e.message } : { code: e.code, message: e.message, field: e.field }));
  return new ControlError(first.code, `${errors.length} errors: ${errors.map((e) => e.message).join('; ')}`, { field: first.field, details, status: first.status });
}

// Validates an object given with an optional `uuid` (an API body, a config
// item): throws every error at once, field paths prefixed with `at`. `also`:
// the other keys the caller takes beside the spec's (a config switch's
// `ports`, `fdb`, `peers`), named with `uuid` where an unknown key is reported.
function parseGiven(value: unknown, at: string, validate: (v: unknown) => unknown, rules: FieldRules, also: readonly string[] = []): { uuid?: string; rest: unknown } {
  let uuid: unknown;
  let rest: unknown = value;
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    const { uuid: given, ...others } = value as Record<string, unknown>;
    uuid = given;
    rest = others;
  }
  const errors = fieldErrors(rest, validate, rules).map((e) => withOtherKeys(prefixed(e, at), at, ['uuid', ...also]));
  let id: string | undefined;
  if (uuid !== undefined) {
    try {
      id = validateUuid(uuid, at === '' ? 'uuid' : `${at}.uuid`);
    } catch (err) {
      errors.push(err as ControlError);
    }
  }
  if (errors.length > 0) throw combinedError(errors);
  return id === undefined ? { rest } : { uuid: id, rest };
}

// An unknown key directly in the object (not in a nested one): its hint also
// names the keys the spec's validator does not know of.
function withOtherKeys(err: ControlError, at: string, keys: readonly string[]): ControlError {
  const field = err.field ?? '';
  const direct = at === '' ? !field.includes('.') && !field.includes('[') : field.startsWith(`${at}.`) && !/[.[]/.test(field.slice(at.length + 1));
  const hint = 'unknown field; expected one of ';
  if (!direct || !err.message.includes(hint)) return err;
  return new ControlError(err.code, `${err.message}, ${keys.join(', ')}`, { field: err.field, cause: err });
}

// A switch as given (API body or config item, `uuid` optional; `also`: see
// parseGiven).
export function parseSwitch(value: unknown, at = '', also: readonly string[] = []): { uuid?: string; spec: SwitchSpec } {
  const { uuid, rest } = parseGiven(value, at, validateSwitchSpec, SWITCH_RULES, also);
  const out: { uuid?: string; spec: SwitchSpec } = { spec: rest as SwitchSpec };
  if (uuid !== undefined) out.uuid = uuid;
  return out;
}

export function parsePort(value: unknown, maxMtu: number, at = ''): { uuid?: string; spec: PortSpec } {
  const { uuid, rest } = parseGiven(value, at, (v) => validatePortSpec(v, maxMtu), PORT_RULES);
  const spec = { ...(rest as PortSpec) };
  if (spec.mac !== undefined) spec.mac = spec.mac.toLowerCase().replace(/-/g, ':');
  const out: { uuid?: string; spec: PortSpec } = { spec };
  if (uuid !== undefined) out.uuid = uuid;
  return out;
}

// {switch, mac, port} (local) or {switch, mac, vtep} (remote).
const FDB_KEYS = ['switch', 'mac', 'port', 'vtep', 'uuid'];
// `stored`: an object a state file holds, or one looked up to delete it.
// Objects this version would refuse in a configuration or an API call
// (vtepAddressProblem, uplinkProblem: rules newer than the object) are kept
// as they are, and said at start (storedProblems).
export interface ParseOptions {
  stored?: boolean;
}

export function parseFdb(value: unknown, at = '', opts: ParseOptions = {}): { uuid?: string; spec: FdbSpec } {
  const r = (typeof value === 'object' && value !== null ? value : {}) as Record<string, unknown>;
  const fail = (key: string, why: string): never => {
    const field = at === '' ? key : `${at}.${key}`;
    throw new ControlError('ERR_INVALID_ARGUMENT', `${field}: ${why}`, { field });
  };
  if (r.vtep !== undefined && r.port !== undefined) fail('vtep', 'give either port (a local port) or vtep (a remote VTEP), not both');
  // Named here, not by the local or remote validator, which knows only its own half.
  const unknown = Object.keys(r).find((k) => !FDB_KEYS.includes(k));
  if (unknown !== undefined) fail(unknown, `unknown field; expected one of ${FDB_KEYS.join(', ')}`);
  if (typeof value === 'object' && value !== null && r.vtep === undefined && r.port === undefined) fail('port', 'give port (a local port) or vtep (a remote VTEP)');
  const remote = r.vtep !== undefined;
  const { uuid, rest } = parseGiven(value, at, remote ? (v) => validateRemote(v, opts.stored === true) : validateStaticMacSpec, FDB_RULES);
  let spec: FdbSpec;
  if (remote) {
    const v = validateRemoteMacSpec(rest);
    spec = { ...v, vtep: canonicalIp(v.vtep, 'vtep') };
  } else {
    spec = validateStaticMacSpec(rest);
  }
  const out: { uuid?: string; spec: FdbSpec } = { spec };
  if (uuid !== undefined) out.uuid = uuid;
  return out;
}

export function parseUplink(value: unknown, maxMtu: number, at = '', opts: ParseOptions = {}): { uuid?: string; spec: UplinkSpec } {
  const validate = (v: unknown): unknown => {
    const r = (typeof v === 'object' && v !== null ? v : {}) as Record<string, unknown>;
    // First, so that an mtu out of range is told the uplink's range
    // (validateUplinkSpec would give a port's). Stored objects keep what an
    // earlier version took.
    if (opts.stored !== true) policy(uplinkProblem(r, maxMtu));
    return validateUplinkSpec(v, maxMtu);
  };
  const { uuid, rest } = parseGiven(value, at, validate, UPLINK_RULES);
  const spec = { ...(rest as UplinkSpec) };
  if (spec.mac !== undefined) spec.mac = spec.mac.toLowerCase().replace(/-/g, ':');
  const out: { uuid?: string; spec: UplinkSpec } = { spec };
  if (uuid !== undefined) out.uuid = uuid;
  return out;
}

// A control-plane rule's refusal, as a field error.
function policy(p: { field: string; why: string } | undefined): void {
  if (p !== undefined) throw new ControlError('ERR_INVALID_ARGUMENT', `${p.field}: ${p.why}`, { field: p.field });
}

// The dataplane's validators, plus the IPv6 spelling the control plane keeps
// and, unless stored, its rules for VTEP addresses.
function validateRemote(value: unknown, stored: boolean): RemoteMacSpec {
  const v = validateRemoteMacSpec(value);
  canonicalIp(v.vtep, 'vtep');
  const why = stored ? undefined : vtepAddressProblem(v.vtep);
  if (why !== undefined) policy({ field: 'vtep', why });
  return v;
}

function validatePeer(value: unknown, stored: boolean): PeerSpec {
  const p = validatePeerSpec(value);
  canonicalIp(p.ip, 'ip');
  const why = stored ? undefined : vtepAddressProblem(p.ip);
  if (why !== undefined) policy({ field: 'ip', why });
  return p;
}

// What a state file holds that this version refuses in a configuration or
// an API call (kept, and said at start: daemon.ts).
export function storedProblems(model: Model, maxMtu: number): string[] {
  const out: string[] = [];
  for (const u of model.uplinks) {
    const p = uplinkProblem(u.spec, maxMtu);
    if (p !== undefined) out.push(`uplink "${u.spec.name}": ${p.field}: ${p.why}`);
  }
  for (const p of model.peers) {
    const why = vtepAddressProblem(p.spec.ip);
    if (why !== undefined) out.push(`peer ${p.spec.ip} of switch "${p.spec.switch}": ${why}`);
  }
  for (const f of model.fdb) {
    const why = isRemote(f.spec) ? vtepAddressProblem(f.spec.vtep) : undefined;
    if (why !== undefined) out.push(`static entry ${f.spec.mac} of switch "${f.spec.switch}": vtep ${why}`);
  }
  return out;
}

export function parsePeer(value: unknown, at = '', opts: ParseOptions = {}): { uuid?: string; spec: PeerSpec } {
  const { uuid, rest } = parseGiven(value, at, (v) => validatePeer(v, opts.stored === true), PEER_RULES);
  const p = validatePeerSpec(rest);
  const out: { uuid?: string; spec: PeerSpec } = { spec: { switch: p.switch, ip: canonicalIp(p.ip) } };
  if (uuid !== undefined) out.uuid = uuid;
  return out;
}

// ---------------------------------------------------------------- comparing

// Normalised form for comparison. A port without a MAC matches any MAC (the
// running one was generated). A switch's fdbCapacity is the table's initial
// size, its default follows macLimit; with `ignoreCapacity` (a spec that does
// not give one) it is left out, and the spec matches any running capacity.
export function normalSwitch(spec: SwitchSpec, ignoreCapacity = false): Record<string, unknown> {
  const n: Record<string, unknown> = { ...validateSwitchSpec(spec) };
  if (ignoreCapacity) delete n.fdbCapacity;
  return n;
}

export function normalPort(spec: PortSpec, maxMtu: number, ignoreMac = false): Record<string, unknown> {
  const n = flatKernel({ ...validatePortSpec({ ...spec, mac: spec.mac ?? '02:00:00:00:00:01' }, maxMtu) });
  delete n.mode;
  if (ignoreMac || spec.mac === undefined) delete n.mac;
  return n;
}

// The backend's settings (`kernel`, nested in a normalised spec) compared,
// and named in a plan or a conflict, by their own names (`queues`, not
// `kernel`); `spec`, the string made of them, is left out.
function flatKernel(n: Record<string, unknown>): Record<string, unknown> {
  const k = n.kernel;
  if (typeof k !== 'object' || k === null) return n;
  const { kernel: _kernel, ...rest } = n;
  const { spec: _spec, ...fields } = k as Record<string, unknown>;
  return { ...rest, ...fields };
}

// The VTEP addresses by their spec names too (`localIp: "198.18.0.1/24"`, not
// the engine's `ip4: {addr, prefix}`), as a conflict or a plan names them.
export function normalUplink(spec: UplinkSpec, maxMtu: number, ignoreMac = false): Record<string, unknown> {
  const { ip4, ip6, ...n } = flatKernel({ ...validateUplinkSpec({ ...spec, mac: spec.mac ?? '02:00:00:00:00:01' }, maxMtu) });
  const cidr = (a: unknown): string | undefined => {
    const c = a as { addr: string; prefix: number } | undefined;
    return c === undefined ? undefined : `${c.addr}/${c.prefix}`;
  };
  if (ip4 !== undefined) n.localIp = cidr(ip4);
  if (ip6 !== undefined) n.localIp6 = cidr(ip6);
  // An afpacket or afxdp uplink uses and follows its interface's MAC; its
  // spec's `mac` is only the stand-in until the interface appears, so it
  // makes no difference (writing out the MAC `uplink show` gives must not
  // replace the uplink). Other types keep the configured one.
  if (ignoreMac || spec.mac === undefined || followsInterfaceMac(spec.type)) delete n.mac;
  return n;
}

// The uplink types whose backend reports its interface's MAC to the engine
// (AfPacketPort, AfXdpPort hw_mac()), which the VTEP then uses.
export function followsInterfaceMac(type: string): boolean {
  return type === 'afpacket' || type === 'afxdp';
}

export function sameValue(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

// Field names whose values differ between two normalised specs.
export function changedFields(a: Record<string, unknown>, b: Record<string, unknown>): string[] {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  return [...keys].filter((k) => !sameValue(a[k], b[k])).sort();
}

export function portSwitches(spec: PortSpec): string[] {
  return switchesOfPort({ switch: spec.switch, untagged: spec.untagged, vlans: spec.vlans ?? [] });
}

export function withMac<S extends { mac?: string }>(spec: S): S {
  return spec.mac === undefined ? { ...spec, mac: generateMac() } : spec;
}

export function findByRef<T extends { uuid: string }>(list: T[], ref: string, nameOf: (o: T) => string): T | undefined {
  const lower = ref.toLowerCase();
  return list.find((o) => nameOf(o) === ref) ?? list.find((o) => o.uuid === lower);
}
