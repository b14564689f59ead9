// The YAML configuration: parse, validate completely, locate every error.
//
//   version: 1                 # optional; the only version is 1
//   engine: { maxPorts: 64 }   # DataplaneOptions; read when vpcd starts
//   uplinks:                   # at most one: this host's VTEP on the underlay
//     - { name: uplink0, type: afpacket, interface: eth1, localIp: 198.18.0.1/24 }
//   switches:
//     - name: tenant-a
//       vni: 1001
//       remoteLearning: true   # learn MACs behind remote VTEPs (default true)
//       peers: [198.18.0.2]    # remote VTEPs in the flood list (or {ip, uuid})
//       ports:                 # access ports of this switch (`switch` implied)
//         - { name: vm1, type: pipe }
//       fdb:                   # static FDB entries of this switch
//         - { mac: 02:00:00:00:00:01, port: vm1 }
//         - { mac: 02:00:00:00:00:02, vtep: 198.18.0.2 }   # behind a remote VTEP
//   ports:                     # any port, trunks included (`switch`/`vlans`/`untagged`)
//     - { name: trunk0, type: pipe, vlans: [{ vlan: 10, switch: tenant-a }] }
//
// Every object may carry `uuid`. Keys are camelCase, as in the API.
//
// parseConfig() never stops at the first error: it returns all of them, each
// with its path (switches[0].ports[1].mtu), its line and a reason.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { CST, isMap, isPair, isScalar, isSeq, Lexer, LineCounter, Node, parseDocument, Document } from 'yaml';
import { DataplaneOptions, PeerSpec, PortSpec, subnetEdge, SwitchSpec, UplinkSpec, validateCidr, validateName, validateOptions } from '../dataplane';
import { AnyErrorCode, ControlError, ErrorDetail } from './errors';
import { BgpSpec, parseBgp, unknownBgpSwitches } from './evpn/config';
import {
  combinedError, ENGINE_RULES, fdbKey, FdbSpec, fieldErrors, ipFamily, isRemote, maxMtuOf, parseFdb, parsePeer, parsePort, parseSwitch, parseUplink, peerKey,
  portSwitches, prefixed,
} from './model';

export interface DesiredObject<S> {
  uuid?: string;
  spec: S;
  path: string; // where it was declared, for later error messages
}

export interface DesiredState {
  engine?: DataplaneOptions;
  switches: DesiredObject<SwitchSpec>[];
  ports: DesiredObject<PortSpec>[];
  uplinks: DesiredObject<UplinkSpec>[];
  peers: DesiredObject<PeerSpec>[];
  fdb: DesiredObject<FdbSpec>[];
  bgp?: BgpSpec; // the BGP EVPN speaker (src/control/evpn/config.ts)
  // The document had no content at all (an empty file, or only comments):
  // most often a file truncated or not yet written, so it is not taken as
  // "delete everything" while objects run (Controller.apply).
  empty?: boolean;
  // parseConfig: the file and line a field path was declared at.
  at?: (field: string) => { source: string; line: number } | undefined;
}

const TOP_KEYS = ['version', 'engine', 'switches', 'ports', 'uplinks', 'bgp'];

// Bounds on a configuration, checked before it is parsed: a YAML parser
// given 100,000 nested brackets or an alias bomb runs out of memory or time.
// A configuration of a full engine (65,535 ports) is about 4 MiB and nests 8
// deep; parsing 4 MiB takes seconds.
export interface ConfigLimits {
  maxBytes: number;
  maxDepth: number;
  maxAliases: number;
}
export const CONFIG_LIMITS: Readonly<ConfigLimits> = Object.freeze({
  maxBytes: 4 * 1024 * 1024, // ERR_CONFIG_TOO_LARGE
  maxDepth: 32, // nested collections, block and flow (ERR_CONFIG_TOO_DEEP)
  maxAliases: 100, // *alias references (ERR_CONFIG_ALIASES)
});

export function configTooLarge(source: string, bytes: number, limits: Readonly<ConfigLimits> = CONFIG_LIMITS): ControlError {
  return new ControlError('ERR_CONFIG_TOO_LARGE', `${source}: the configuration is ${bytes} bytes; at most ${limits.maxBytes} are accepted`);
}

// Lexer tokens that do not start a block node (a flow collection's bracket
// is counted as flow nesting).
const NOT_A_NODE = new Set<string | null>(['map-value-ind', 'comma', 'flow-map-start', 'flow-seq-start', 'flow-map-end', 'flow-seq-end']);

// Checks CONFIG_LIMITS with one pass of the YAML lexer (tokens only: it
// builds no tree and stops at the first limit hit), so quotes and comments
// are exactly what the parser will see. Flow collections are counted by
// their brackets; block collections by a stack of the columns at which their
// nodes start (first on a line, or after a `-`, `?` or `:` indicator), so
// "- - - x" is three deep, as is a staircase of keys; a sequence at its key's
// column ("key:\n- x") is a level of its own. The count errs high, never low:
// a scalar after `key:` or `- ` counts as a level too.
export function checkConfigLimits(text: string, source = 'config', limits: Readonly<ConfigLimits> = CONFIG_LIMITS): void {
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > limits.maxBytes) throw configTooLarge(source, bytes, limits);
  const blocks: { col: number; seq: boolean }[] = []; // open block nodes, by column
  let flow = 0;
  let aliases = 0;
  let offset = 0;
  let line = 1;
  let lineStart = 0;
  let firstOnLine = true;
  let afterIndicator = false;
  const tooDeep = (col: number): ControlError => new ControlError('ERR_CONFIG_TOO_DEEP',
    `${source}:${line}:${col + 1}: the configuration nests more than ${limits.maxDepth} levels deep`, { line });
  for (const token of new Lexer().lex(text)) {
    if (token === CST.DOCUMENT || token === CST.FLOW_END || token === CST.SCALAR) continue; // markers, no source
    const col = offset - lineStart;
    const type = CST.tokenType(token);
    const blank = type === 'newline' || type === 'space' || type === 'comment' || type === 'byte-order-mark';
    if (type === 'doc-start' || type === 'doc-end') {
      blocks.length = 0;
      flow = 0;
    } else if (!blank && flow === 0 && (firstOnLine || afterIndicator) && !NOT_A_NODE.has(type)) {
      // A `-` opens a sequence even at its parent key's column ("key:\n- x").
      const seq = type === 'seq-item-ind';
      const top = (): { col: number; seq: boolean } | undefined => blocks[blocks.length - 1];
      while (top() !== undefined && (top()!.col > col || (top()!.col === col && top()!.seq && !seq))) blocks.pop();
      if (top() === undefined || top()!.col < col || top()!.seq !== seq) blocks.push({ col, seq });
      if (blocks.length > limits.maxDepth) throw tooDeep(col);
    }
    if (type === 'flow-map-start' || type === 'flow-seq-start') {
      flow++;
      if (blocks.length + flow > limits.maxDepth) throw tooDeep(col);
    } else if (type === 'flow-map-end' || type === 'flow-seq-end') {
      flow = Math.max(0, flow - 1);
    } else if (type === 'alias' && ++aliases > limits.maxAliases) {
      throw new ControlError('ERR_CONFIG_ALIASES', `${source}:${line}:${col + 1}: more than ${limits.maxAliases} aliases (*name)`, { line });
    }
    if (!blank) {
      firstOnLine = false;
      afterIndicator = type === 'seq-item-ind' || type === 'explicit-key-ind' || type === 'map-value-ind';
    }
    offset += token.length;
    // A newline token, or a scalar that spans lines.
    for (let i = token.indexOf('\n'); i >= 0; i = token.indexOf('\n', i + 1)) {
      line++;
      lineStart = offset - token.length + i + 1;
      firstOnLine = true;
    }
  }
}

// Parses and validates YAML text. Throws ControlError ERR_CONFIG_TOO_LARGE,
// ERR_CONFIG_TOO_DEEP or ERR_CONFIG_ALIASES (a limit, before parsing),
// ERR_CONFIG_SYNTAX or ERR_CONFIG_INVALID (with every problem in `details`).
export function parseConfig(text: string, source = 'config'): DesiredState {
  checkConfigLimits(text, source);
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const details: ErrorDetail[] = doc.errors.map((e) => {
      const pos = lineCounter.linePos(e.pos[0]);
      return { code: 'ERR_CONFIG_SYNTAX', message: `${source}:${pos.line}:${pos.col}: ${e.message.split('\n')[0]}`, line: pos.line, column: pos.col };
    });
    throw new ControlError('ERR_CONFIG_SYNTAX', `${details[0]!.message}`, { line: details[0]!.line, details });
  }
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: CONFIG_LIMITS.maxAliases });
  } catch (err) {
    // The yaml package throws ReferenceError for aliases: too many
    // expansions (an alias bomb), or an alias without its anchor.
    const message = err instanceof Error ? err.message : String(err);
    if (/excessive alias count/i.test(message)) {
      throw new ControlError('ERR_CONFIG_ALIASES', `${source}: the aliases expand to more than ${CONFIG_LIMITS.maxAliases} copies (${message})`, { cause: err });
    }
    throw new ControlError('ERR_CONFIG_SYNTAX', `${source}: ${message}`, { cause: err });
  }
  const errors: ErrorDetail[] = [];
  // One error, or every error of an object (`details` of a combined error).
  const report = (err: unknown, fallbackPath = ''): void => {
    const c = err instanceof ControlError ? err : prefixed(err, fallbackPath);
    for (const d of c.details ?? [{ code: c.code, message: c.message, field: c.field }]) {
      const detail: ErrorDetail = { code: d.code, message: d.message };
      if (d.field !== undefined) detail.field = d.field;
      const pos = locate(doc, lineCounter, d.field ?? '');
      if (pos !== undefined) {
        detail.line = pos.line;
        detail.column = pos.col;
      }
      errors.push(detail);
    }
  };
  const fail = (code: AnyErrorCode, field: string, reason: string): void => report(new ControlError(code, field === '' ? reason : `${field}: ${reason}`, field === '' ? {} : { field }));

  const desired: DesiredState = { switches: [], ports: [], uplinks: [], peers: [], fdb: [] };
  if (data === null || data === undefined) {
    // An empty file is a valid, empty desired state, marked as such.
    desired.empty = true;
  } else if (typeof data !== 'object' || Array.isArray(data)) {
    fail('ERR_INVALID_ARGUMENT', '', `the configuration must be a mapping (keys: ${TOP_KEYS.join(', ')}), not ${Array.isArray(data) ? 'a list' : `a ${typeof data}`}`);
  } else if ((data as Record<string, unknown>).format === 'vpcd-state') {
    // A state file (a backup) given where a configuration goes: one error
    // that says so, not one per key it has.
    fail('ERR_INVALID_ARGUMENT', 'format', 'this is a vpcd state file (state.json, or `vpcctl state --state-file`), not a configuration: ' +
      'restore it by copying it over the state directory\'s state.json while vpcd is stopped (docs/operations.md)');
  } else {
    const top = data as Record<string, unknown>;
    for (const key of Object.keys(top)) {
      if (!TOP_KEYS.includes(key)) fail('ERR_INVALID_ARGUMENT', key, `unknown key; expected one of ${TOP_KEYS.join(', ')}`);
    }
    if (top.version !== undefined && top.version !== 1) fail('ERR_INVALID_ARGUMENT', 'version', `must be 1 (got ${JSON.stringify(top.version)})`);
    let maxMtu = 9000;
    if (top.engine !== undefined) {
      const problems = fieldErrors(top.engine, validateOptions, ENGINE_RULES).map((e) => prefixed(e, 'engine'));
      if (problems.length === 0) {
        desired.engine = top.engine as DataplaneOptions;
        maxMtu = maxMtuOf(desired.engine);
      } else {
        report(combinedError(problems));
      }
    }
    parseUplinks(top.uplinks, desired, maxMtu, report, fail);
    if (top.bgp !== undefined) {
      const own = [desired.uplinks[0]?.spec.localIp, desired.uplinks[0]?.spec.localIp6].filter((a): a is string => a !== undefined).map((a) => a.split('/')[0]!);
      const b = parseBgp(top.bgp, 'bgp', own);
      for (const e of b.errors) report(new ControlError(e.code, e.message, { field: e.field }));
      if (b.spec !== undefined) desired.bgp = b.spec;
    }
    parseSwitches(top.switches, desired, maxMtu, report, fail);
    const refusedPorts: RefusedPort[] = [];
    parseTopPorts(top.ports, desired, maxMtu, report, fail, refusedPorts);
    const refused = refusedOf(top, desired);
    errors.push(...[...crossCheck(desired, refused), ...refusedPortRefs(refusedPorts, desired, refused)].map((d) => {
      const pos = locate(doc, lineCounter, d.field ?? '');
      return pos === undefined ? d : { ...d, line: pos.line, column: pos.col };
    }));
  }
  if (errors.length > 0) {
    errors.sort((a, b) => (a.line ?? 0) - (b.line ?? 0));
    const lines = errors.map((e) => `${source}:${e.line ?? '?'}: ${e.message} [${e.code}]`);
    throw new ControlError('ERR_CONFIG_INVALID', `${errors.length} error(s) in ${source}:\n  ${lines.join('\n  ')}`, {
      field: errors[0]!.field,
      line: errors[0]!.line,
      details: errors,
    });
  }
  // Where a field was declared, for the errors the apply finds later (a UUID
  // that conflicts with what runs).
  // Not enumerable: the desired state compares and prints as its objects.
  Object.defineProperty(desired, 'at', {
    value: (field: string): { source: string; line: number } | undefined => {
      const pos = locate(doc, lineCounter, field);
      return pos === undefined ? undefined : { source, line: pos.line };
    },
  });
  return desired;
}

// The names the file declares whose objects were refused by their own
// checks (their errors are reported already).
function refusedOf(top: Record<string, unknown>, desired: DesiredState): Refused {
  const named = (v: unknown): string[] =>
    (Array.isArray(v) ? v : []).flatMap((o) => (typeof o === 'object' && o !== null && typeof (o as { name?: unknown }).name === 'string' ? [(o as { name: string }).name] : []));
  const ok = { switches: new Set(desired.switches.map((o) => o.spec.name)), ports: new Set(desired.ports.map((o) => o.spec.name)) };
  const switches = named(top.switches);
  const nestedPorts = (Array.isArray(top.switches) ? top.switches : []).flatMap((sw) => named((sw as { ports?: unknown } | null)?.ports));
  return {
    switches: new Set(switches.filter((n) => !ok.switches.has(n))),
    ports: new Set([...named(top.ports), ...nestedPorts].filter((n) => !ok.ports.has(n))),
    uplink: Array.isArray(top.uplinks) && top.uplinks.length > 0 && desired.uplinks.length === 0,
  };
}

type Report = (err: unknown, fallbackPath?: string) => void;
type Fail = (code: AnyErrorCode, field: string, reason: string) => void;

function asList(value: unknown, field: string, fail: Fail): unknown[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) {
    fail('ERR_INVALID_ARGUMENT', field, 'must be a list');
    return [];
  }
  return value;
}

function parseSwitches(value: unknown, desired: DesiredState, maxMtu: number, report: Report, fail: Fail): void {
  asList(value, 'switches', fail).forEach((item, i) => {
    const at = `switches[${i}]`;
    if (typeof item !== 'object' || item === null || Array.isArray(item)) {
      fail('ERR_INVALID_ARGUMENT', at, 'must be a mapping (name, vni, ...)');
      return;
    }
    const { ports, fdb, peers, ...rest } = item as Record<string, unknown>;
    let name: string | undefined;
    // The nested objects are kept with their switch; under a switch that
    // failed they are only checked.
    let keep = true;
    try {
      const s = parseSwitch(rest, at, ['ports', 'fdb', 'peers']);
      name = s.spec.name;
      desired.switches.push({ ...s, path: at });
    } catch (err) {
      report(err);
      // Keep going with the nested objects under the name when it is usable.
      // One that is not, or none (said above), is not said again for each of
      // them, at a `switch` key nobody wrote: they are checked under a
      // stand-in, and not kept.
      try {
        name = validateName(rest.name);
      } catch {
        name = 'stand-in';
        keep = false;
      }
    }
    asList(ports, `${at}.ports`, fail).forEach((p, j) => {
      const pat = `${at}.ports[${j}]`;
      if (typeof p === 'object' && p !== null && !Array.isArray(p)) {
        const { switch: sw, vlans, untagged, ...given } = p as Record<string, unknown>;
        const misplaced = Object.entries({ switch: sw, vlans, untagged }).filter(([, v]) => v !== undefined).map(([k]) => k);
        for (const key of misplaced) {
          fail('ERR_INVALID_ARGUMENT', `${pat}.${key}`, key === 'switch'
            ? 'implied by the enclosing switch; omit it'
            : 'a port listed under a switch is an access port of that switch; declare trunks in the top-level `ports:` list');
        }
        if (name === undefined) return;
        try {
          const parsed = parsePort({ ...given, switch: name }, maxMtu, pat);
          if (misplaced.length > 0 || !keep) return; // its other fields are checked, but it is not kept
          desired.ports.push({ ...parsed, path: pat });
        } catch (err) {
          report(err);
        }
      } else {
        fail('ERR_INVALID_ARGUMENT', pat, 'must be a mapping (name, type, ...)');
      }
    });
    asList(peers, `${at}.peers`, fail).forEach((p, j) => {
      const pat = `${at}.peers[${j}]`;
      if (typeof p === 'string') {
        if (name === undefined) return;
        try {
          const parsed = parsePeer({ switch: name, ip: p });
          if (keep) desired.peers.push({ ...parsed, path: pat });
        } catch (err) {
          const reason = err instanceof Error ? err.message.replace(/^ip: /, '') : String(err);
          fail('ERR_INVALID_ARGUMENT', pat, reason);
        }
      } else if (typeof p === 'object' && p !== null && !Array.isArray(p)) {
        const { switch: sw, ...given } = p as Record<string, unknown>;
        if (sw !== undefined) fail('ERR_INVALID_ARGUMENT', `${pat}.switch`, 'implied by the enclosing switch; omit it');
        if (name === undefined) return;
        try {
          const parsed = parsePeer({ ...given, switch: name }, pat);
          if (sw === undefined && keep) desired.peers.push({ ...parsed, path: pat });
        } catch (err) {
          report(nestedHint(err));
        }
      } else {
        fail('ERR_INVALID_ARGUMENT', pat, 'must be the remote VTEP\'s IP address (or a mapping {ip, uuid})');
      }
    });
    asList(fdb, `${at}.fdb`, fail).forEach((f, j) => {
      const fat = `${at}.fdb[${j}]`;
      if (typeof f !== 'object' || f === null || Array.isArray(f)) {
        fail('ERR_INVALID_ARGUMENT', fat, 'must be a mapping (mac, and port or vtep)');
        return;
      }
      const { switch: sw, ...given } = f as Record<string, unknown>;
      if (sw !== undefined) fail('ERR_INVALID_ARGUMENT', `${fat}.switch`, 'implied by the enclosing switch; omit it');
      if (name === undefined) return;
      try {
        const parsed = parseFdb({ ...given, switch: name }, fat);
        if (sw === undefined && keep) desired.fdb.push({ ...parsed, path: fat });
      } catch (err) {
        report(nestedHint(err));
      }
    });
  });
}

// Under a switch, `switch` is implied (and refused): an unknown key's hint
// does not offer it.
function nestedHint(err: unknown): unknown {
  if (!(err instanceof ControlError) || !err.message.includes('unknown field; expected one of ')) return err;
  return new ControlError(err.code, err.message.replace(/(expected one of )switch, /, '$1'), { field: err.field, cause: err });
}

function parseUplinks(value: unknown, desired: DesiredState, maxMtu: number, report: Report, fail: Fail): void {
  asList(value, 'uplinks', fail).forEach((u, j) => {
    const at = `uplinks[${j}]`;
    try {
      const parsed = parseUplink(u, maxMtu, at);
      desired.uplinks.push({ ...parsed, path: at });
    } catch (err) {
      report(err);
    }
  });
}

// A top-level port refused by its own checks: what it was given, and the
// fields its errors named.
interface RefusedPort {
  path: string;
  value: unknown;
  fields: Set<string>;
}

function parseTopPorts(value: unknown, desired: DesiredState, maxMtu: number, report: Report, fail: Fail, refused: RefusedPort[]): void {
  asList(value, 'ports', fail).forEach((p, j) => {
    const at = `ports[${j}]`;
    try {
      const parsed = parsePort(p, maxMtu, at);
      desired.ports.push({ ...parsed, path: at });
    } catch (err) {
      report(err);
      const c = err instanceof ControlError ? err : undefined;
      refused.push({ path: at, value: p, fields: new Set((c?.details ?? (c === undefined ? [] : [c])).map((d) => d.field ?? '')) });
    }
  });
}

// The switches a refused port names that do not exist: reported too (every
// error, not only the port's first; crossCheck() sees only ports that
// passed), unless the field's own error was reported already.
function refusedPortRefs(ports: RefusedPort[], d: DesiredState, refused: Refused): ErrorDetail[] {
  const known = new Set(d.switches.map((s) => s.spec.name));
  const out: ErrorDetail[] = [];
  for (const p of ports) {
    if (typeof p.value !== 'object' || p.value === null) continue;
    const v = p.value as Record<string, unknown>;
    const refs: [unknown, string][] = [[v.switch, 'switch'], [v.untagged, 'untagged']];
    if (Array.isArray(v.vlans)) {
      v.vlans.forEach((m, i) => refs.push([typeof m === 'object' && m !== null ? (m as Record<string, unknown>).switch : undefined, `vlans[${i}].switch`]));
    }
    for (const [sw, f] of refs) {
      const field = `${p.path}.${f}`;
      if (typeof sw !== 'string' || known.has(sw) || refused.switches.has(sw) || p.fields.has(field)) continue;
      out.push({ code: 'ERR_UNKNOWN_SWITCH', message: `${field}: no switch named "${sw}"`, field });
    }
  }
  return out;
}

// Checks between objects: unique names, VNIs, UUIDs and MACs; references to
// switches and ports the state defines; static entries on member ports.
// Also used for API mutations (on the whole resulting state).
// `refused`: objects the file declares whose own checks failed (their errors
// are reported already); a reference to one is not reported again as
// unknown (a switch with a typo in one field is no "unknown switch" to its
// ports and peers).
export interface Refused {
  switches: Set<string>;
  ports: Set<string>;
  uplink: boolean;
}

// The file a socket path names, however written: "//", "." and ".." parts
// resolved, and the directory's symbolic links (/var/run is /run on
// Debian) where it exists. Two ports on one file would find it taken only
// when the second opens it, and a start would fail then.
function socketFile(p: string): string {
  const n = path.normalize(p);
  try {
    return path.join(fs.realpathSync(path.dirname(n)), path.basename(n));
  } catch {
    return n;
  }
}

export function crossCheck(d: DesiredState, refused: Refused = { switches: new Set(), ports: new Set(), uplink: false }): ErrorDetail[] {
  const errors: ErrorDetail[] = [];
  const err = (code: AnyErrorCode, at: string, reason: string): void => {
    const field = at.startsWith('.') ? at.slice(1) : at;
    errors.push({ code, message: field === '' ? reason : `${field}: ${reason}`, field: field === '' ? undefined : field });
  };
  const switchNames = new Map<string, string>();
  const vnis = new Map<number, string>();
  for (const s of d.switches) {
    const first = switchNames.get(s.spec.name);
    if (first !== undefined) err('ERR_DUPLICATE_NAME', `${s.path}.name`, `switch "${s.spec.name}" is already defined at ${first}`);
    else switchNames.set(s.spec.name, s.path);
    const vfirst = vnis.get(s.spec.vni);
    if (vfirst !== undefined) err('ERR_DUPLICATE_VNI', `${s.path}.vni`, `VNI ${s.spec.vni} is already used by ${vfirst}`);
    else vnis.set(s.spec.vni, s.path);
  }
  errors.push(...unknownBgpSwitches(d.bgp, (name) => switchNames.has(name) || refused.switches.has(name)));
  const ports = new Map<string, DesiredObject<PortSpec>>();
  for (const p of d.ports) {
    const first = ports.get(p.spec.name);
    if (first !== undefined) err('ERR_DUPLICATE_NAME', `${p.path}.name`, `port "${p.spec.name}" is already defined at ${first.path}`);
    else ports.set(p.spec.name, p);
    // A port nested in a config switch takes that switch's name, checked with
    // the switch itself; every other port (top level, state file, API) names
    // its switch, and that name must exist. Only the config's own nesting
    // counts: "state.ports[0]" holds ".ports[" too.
    const nested = /^switches\[\d+\]\.ports\[/.test(p.path);
    const refs: [string | undefined, string][] = [
      [nested ? undefined : p.spec.switch, 'switch'],
      [p.spec.untagged, 'untagged'],
      ...(p.spec.vlans ?? []).map((m, i): [string, string] => [m.switch, `vlans[${i}].switch`]),
    ];
    for (const [sw, field] of refs) {
      if (sw !== undefined && !switchNames.has(sw) && !refused.switches.has(sw)) err('ERR_UNKNOWN_SWITCH', `${p.path}.${field}`, `no switch named "${sw}"`);
    }
  }
  // One port per interface: afpacket, tap and afxdp ports claim their
  // interface by name whatever their type, the uplink included, and
  // vhostuser ports their socket; the engine refuses a second claim
  // (ERR_IN_USE) only when the step runs, so it is refused here. netmap
  // ports are left out: they claim rings, which the kernel arbitrates (ports
  // on different queues of one interface may share it). Objects the API is
  // adding (path '') come last, so the error names the new one.
  const claims = new Map<string, { by: string; value: string }>();
  const claimers: { path: string; what: string; type: string; spec: { interface?: string; socket?: string } }[] = [
    ...d.uplinks.slice(0, 1).map((u) => ({ path: u.path, what: 'uplink', type: u.spec.type, spec: u.spec })),
    ...d.ports.map((p) => ({ path: p.path, what: 'port', type: p.spec.type, spec: p.spec })),
  ];
  for (const o of [...claimers.filter((c) => c.path !== ''), ...claimers.filter((c) => c.path === '')]) {
    const field = o.type === 'vhostuser' ? 'socket' : 'interface';
    const value = o.type === 'vhostuser' ? o.spec.socket : ['afpacket', 'tap', 'afxdp'].includes(o.type) ? o.spec.interface : undefined;
    if (typeof value !== 'string') continue;
    const key = `${field}:${field === 'socket' ? socketFile(value) : value}`;
    const first = claims.get(key);
    if (first === undefined) {
      claims.set(key, { by: `the ${o.what} defined at ${o.path || 'the running state'}`, value });
      continue;
    }
    const why = field === 'socket' ? 'one port per vhost-user socket' : 'one port or uplink per interface';
    const same = first.value === value ? '' : `, as ${JSON.stringify(first.value)}: the same file`;
    err('ERR_IN_USE', `${o.path}.${field}`, `${JSON.stringify(value)} is already used by ${first.by}${same} (${why})`);
  }
  // The overlay: one uplink; peers and remote entries need it, and an
  // address of a family the uplink has a VTEP address for.
  const uplink = d.uplinks[0];
  d.uplinks.slice(1).forEach((u) => {
    err('ERR_TOO_MANY_UPLINKS', u.path, `a dataplane has one uplink (one VTEP); "${uplink!.spec.name}" is already defined at ${uplink!.path || 'the running state'}`);
  });
  for (const u of d.uplinks.slice(0, 1)) {
    const clash = ports.get(u.spec.name);
    if (clash !== undefined) err('ERR_DUPLICATE_NAME', `${u.path}.name`, `"${u.spec.name}" is already the name of the port defined at ${clash.path}`);
  }
  const families = new Set<4 | 6>();
  if (uplink?.spec.localIp !== undefined) families.add(4);
  if (uplink?.spec.localIp6 !== undefined) families.add(6);
  const ownAddresses = [uplink?.spec.localIp, uplink?.spec.localIp6].filter((a): a is string => a !== undefined).map((a) => a.split('/')[0]!.toLowerCase());
  // As the engine takes it: a localIp without a prefix is a /24.
  const uplinkNet = uplink?.spec.localIp === undefined ? undefined : validateCidr(uplink.spec.localIp, 'localIp', 4);
  const overlayAddress = (path: string, ip: string, what: string): void => {
    if (uplink === undefined) {
      if (!refused.uplink) err('ERR_NO_UPLINK', path, `${what} needs an uplink (VXLAN VTEP); declare one under \`uplinks:\``);
    } else if (!families.has(ipFamily(ip))) {
      err('ERR_ADDRESS_FAMILY', path, `${ip} is an IPv${ipFamily(ip)} address but uplink "${uplink.spec.name}" has no ${ipFamily(ip) === 4 ? 'localIp' : 'localIp6'}`);
    } else if (ownAddresses.includes(ip)) {
      err('ERR_INVALID_ARGUMENT', path, `${ip} is this host's own VTEP address (uplink "${uplink.spec.name}")`);
    } else {
      const edge = uplinkNet === undefined ? undefined : subnetEdge(ip, uplinkNet);
      if (edge !== undefined) err('ERR_INVALID_ARGUMENT', path, `${ip} is ${edge} (uplink "${uplink.spec.name}"), which no VTEP has`);
    }
  };
  const peerKeys = new Map<string, string>();
  for (const p of d.peers) {
    const at = p.path.startsWith('switches[') ? p.path : `${p.path}.ip`;
    const key = peerKey(p.spec);
    const first = peerKeys.get(key);
    if (first !== undefined) err('ERR_DUPLICATE_PEER', at, `peer ${p.spec.ip} of switch "${p.spec.switch}" is already defined at ${first}`);
    else peerKeys.set(key, p.path);
    if (!switchNames.has(p.spec.switch) && !refused.switches.has(p.spec.switch)) err('ERR_UNKNOWN_SWITCH', `${p.path}.switch`, `no switch named "${p.spec.switch}"`);
    overlayAddress(at, p.spec.ip, 'a peer');
  }

  const macs = new Map<string, string>();
  for (const f of d.fdb) {
    const key = fdbKey(f.spec);
    const first = macs.get(key);
    if (first !== undefined) err('ERR_DUPLICATE_MAC', `${f.path}.mac`, `a static entry for ${f.spec.mac} on switch "${f.spec.switch}" is already defined at ${first}`);
    else macs.set(key, f.path);
    if (!switchNames.has(f.spec.switch) && !refused.switches.has(f.spec.switch)) err('ERR_UNKNOWN_SWITCH', `${f.path}.switch`, `no switch named "${f.spec.switch}"`);
    if (isRemote(f.spec)) {
      overlayAddress(`${f.path}.vtep`, f.spec.vtep, 'an entry behind a remote VTEP');
      continue;
    }
    const port = ports.get(f.spec.port);
    if (port === undefined) {
      if (!refused.ports.has(f.spec.port)) err('ERR_UNKNOWN_PORT', `${f.path}.port`, `no port named "${f.spec.port}"`);
    } else if (!portSwitches(port.spec).includes(f.spec.switch)) {
      err('ERR_PORT_NOT_MEMBER', `${f.path}.port`, `port "${f.spec.port}" is not a member of switch "${f.spec.switch}"`);
    }
  }
  // Engine options take effect when vpcd starts: limits below what this
  // very file declares would stop that start (exit 6), so they are refused
  // now, where the file is checked.
  if (d.engine !== undefined) {
    const o = validateOptions(d.engine);
    const nPorts = d.ports.length + d.uplinks.length;
    if (nPorts > o.maxPorts) err('ERR_LIMIT', 'engine.maxPorts', `${o.maxPorts} is fewer than the ${nPorts} ports this configuration declares (the uplink counts as one)`);
    if (d.switches.length > o.maxSwitches) err('ERR_LIMIT', 'engine.maxSwitches', `${o.maxSwitches} is fewer than the ${d.switches.length} switches this configuration declares`);
  }
  const uuids = new Map<string, string>();
  for (const o of [...d.switches, ...d.ports, ...d.uplinks, ...d.peers, ...d.fdb]) {
    if (o.uuid === undefined) continue;
    const first = uuids.get(o.uuid);
    if (first !== undefined) err('ERR_DUPLICATE_UUID', `${o.path}.uuid`, `UUID ${o.uuid} is already used by ${first}`);
    else uuids.set(o.uuid, o.path);
  }
  return errors;
}

// ---------------------------------------------------------------- lines

// "switches[0].ports[1].mtu" -> ['switches', 0, 'ports', 1, 'mtu']
export function splitPath(path: string): (string | number)[] {
  const out: (string | number)[] = [];
  for (const part of path.split('.')) {
    if (part === '') continue;
    const m = /^([^[]*)((\[\d+\])*)$/.exec(part);
    if (m === null) {
      out.push(part);
      continue;
    }
    if (m[1] !== '') out.push(m[1]!);
    for (const idx of m[2]!.matchAll(/\[(\d+)\]/g)) out.push(Number(idx[1]));
  }
  return out;
}

// Line and column of the deepest node on `path` that exists in the document
// (the key itself for the last segment, so an unknown key points at itself).
export function locate(doc: Document, lc: LineCounter, path: string): { line: number; col: number } | undefined {
  let node: unknown = doc.contents;
  let offset: number | undefined = (node as Node | null)?.range?.[0];
  for (const seg of splitPath(path)) {
    if (isMap(node)) {
      const pair = node.items.find((it) => isPair(it) && isScalar(it.key) && String(it.key.value) === String(seg));
      if (pair === undefined) break;
      const keyNode = pair.key as Node;
      offset = keyNode.range?.[0] ?? offset;
      node = pair.value;
    } else if (isSeq(node) && typeof seg === 'number') {
      const item = node.items[seg] as Node | undefined;
      if (item === undefined) break;
      offset = item.range?.[0] ?? offset;
      node = item;
    } else {
      break;
    }
  }
  return offset === undefined ? undefined : lc.linePos(offset);
}
