// The state file: vpcd's record of the objects it runs, in STATE_DIR/state.json.
//
//   { "format": "vpcd-state", "version": 2, "generation": 7,
//     "writtenAt": "2025-01-01T00:00:00.000Z",
//     "checksum": "sha256:<hex of JSON.stringify(state)>",
//     "state": { "engine": {...}, "switches": [...], "ports": [...],
//                "uplinks": [...], "peers": [...], "fdb": [...] } }
//
// Versions: 1 has no overlay (no uplinks, peers or vtep FDB entries); 2 adds
// them; 3 adds `bgp` (the EVPN speaker), and is written only with it. A state without overlay objects is still written as version 1, so
// that an older vpcd can read it back after a downgrade; one with overlay
// objects is version 2, which an older vpcd refuses (ERR_STATE_VERSION)
// rather than silently dropping the overlay. Both versions are read.
//
// Writes are atomic and durable: write a temp file in the same directory
// (every write's length checked: a nearly full disk writes short), fsync it,
// read it back and compare, rename it over state.json, fsync the directory.
// A reader (or a restart after kill -9) sees the old file or the new one,
// never a mix. When any step before the rename fails, the temp file is
// removed, state.json is untouched and save() throws: the controller undoes
// the change and answers ERR_PERSIST_FAILED. A kill -9 during a write leaves
// the temp file (.state.json.<pid>.tmp) behind: the next start removes such
// leftovers (removeLeftovers()), but not one whose pid is a running vpcd (a
// write of another vpcd on the same directory, in flight).
//
// Loading checks, in order: JSON syntax, format/version, checksum, then the
// schema of every object (with the dataplane's validators). Any failure is
// ERR_STATE_CORRUPT (or ERR_STATE_VERSION) naming the file and the problem;
// the file is never replaced or repaired automatically.

import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { crossCheck, DesiredState } from './config';
import { ControlError } from './errors';
import { emptyModel, isRemote, maxMtuOf, Model, parseFdb, parsePeer, parsePort, parseSwitch, parseUplink, validateUuid } from './model';
import { validateOptions } from '../dataplane';
import { resolveBgp } from './evpn/config';

export const STATE_FORMAT = 'vpcd-state';
export const STATE_VERSION = 3;

// The oldest format version that can hold `model` (see the header).
export function stateVersionFor(model: Model): number {
  if (model.bgp !== undefined) return 3;
  return model.uplinks.length > 0 || model.peers.length > 0 || model.fdb.some((f) => isRemote(f.spec)) ? 2 : 1;
}
export const STATE_FILE = 'state.json';
export const PID_FILE = 'vpcd.pid';

export interface StateDocument {
  format: string;
  version: number;
  generation: number;
  writtenAt: string;
  checksum: string;
  state: Model;
}

// The state file's document for `model`: what save() writes, and what
// `vpcctl state --state-file` prints (a backup that restores by a copy).
export function stateDocument(model: Model, generation: number): StateDocument {
  const state = JSON.parse(JSON.stringify(model)) as Model;
  const version = stateVersionFor(state);
  if (version < 2) {
    // Exactly the version-1 shape.
    delete (state as Partial<Model>).uplinks;
    delete (state as Partial<Model>).peers;
  }
  return { format: STATE_FORMAT, version, generation, writtenAt: new Date().toISOString(), checksum: checksumOf(state), state };
}

export function stateDocumentText(doc: StateDocument): string {
  return `${JSON.stringify(doc, null, 1)}\n`;
}

export function checksumOf(state: unknown): string {
  return `sha256:${createHash('sha256').update(JSON.stringify(state)).digest('hex')}`;
}

// The one write the state file needs, replaceable in tests: a short write, a
// write that lies about its length, a full disk. Returns the bytes written,
// as fs.writeSync does.
export type WriteFn = (fd: number, buffer: Buffer, offset: number, length: number, position: number) => number;

export class StateStore {
  readonly dir: string;
  readonly file: string;
  generation = 0;
  private locked = false;

  constructor(dir: string, private readonly write: WriteFn = fs.writeSync) {
    this.dir = dir;
    this.file = path.join(dir, STATE_FILE);
  }

  // The stored model, or undefined when there is no state file yet.
  load(): Model | undefined {
    let text: string;
    try {
      text = fs.readFileSync(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new ControlError('ERR_STATE_CORRUPT', `${this.file}: cannot be read: ${(err as Error).message}`, { cause: err });
    }
    const doc = parseStateDocument(text, this.file);
    this.generation = doc.generation;
    return doc.state;
  }

  // Takes the directory for this process: `vpcd.pid`, created exclusively.
  // Two vpcds on one state directory (a second one started by hand with
  // another --socket) would overwrite each other's state and restore each
  // other's objects. A pid file whose pid is no running vpcd (a kill -9)
  // is taken over. Returns undefined, or the pid of the vpcd that holds it.
  lock(isVpcd: (pid: number) => boolean = isRunningVpcd): number | undefined {
    fs.mkdirSync(this.dir, { recursive: true, mode: 0o750 });
    const file = path.join(this.dir, PID_FILE);
    // Written aside, then linked into place: the file appears whole (with
    // its pid) or not at all, so a racing start never reads it empty.
    const mine = path.join(this.dir, `.${PID_FILE}.${process.pid}`);
    fs.writeFileSync(mine, `${process.pid}\n`, { mode: 0o640 });
    try {
      for (let attempt = 0; attempt < 3; attempt++) {
        try {
          fs.linkSync(mine, file);
          this.locked = true;
          return undefined;
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        }
        const pid = Number.parseInt(fs.readFileSync(file, 'utf8'), 10);
        if (isVpcd(pid)) return pid;
        fs.rmSync(file, { force: true }); // stale: its vpcd is gone (kill -9)
      }
      throw new Error(`${file}: could not be taken (starts racing for it)`);
    } finally {
      fs.rmSync(mine, { force: true });
    }
  }

  // Gives the directory back (a clean stop); only our own pid file.
  unlock(): void {
    if (!this.locked) return;
    this.locked = false;
    const file = path.join(this.dir, PID_FILE);
    try {
      if (Number.parseInt(fs.readFileSync(file, 'utf8'), 10) === process.pid) fs.rmSync(file, { force: true });
    } catch {
      // gone already
    }
  }

  // Removes the temp files of writes that a kill -9 (or a crash) cut short:
  // `.state.json.<pid>.tmp` whose pid is no running vpcd. Returns the files
  // removed (the caller logs them), those of a running vpcd, left alone, and
  // those that could not be removed (with why: they do no harm but clutter).
  removeLeftovers(isVpcd: (pid: number) => boolean = isRunningVpcd): { removed: string[]; kept: string[]; failed: string[] } {
    const out = { removed: [] as string[], kept: [] as string[], failed: [] as string[] };
    let names: string[];
    try {
      names = fs.readdirSync(this.dir);
    } catch {
      return out; // no directory yet: nothing left over
    }
    for (const name of names.sort()) {
      const m = TEMP_RE.exec(name);
      if (m === null) continue;
      const file = path.join(this.dir, name);
      const pid = Number(m[1]);
      if (pid !== process.pid && isVpcd(pid)) {
        out.kept.push(file);
        continue;
      }
      try {
        fs.rmSync(file, { force: true });
        out.removed.push(file);
      } catch (err) {
        out.failed.push(`${file}: ${(err as Error).message}`);
      }
    }
    return out;
  }

  // Atomically replaces the state file with `model`. Throws when any step
  // fails (the caller undoes the change: ERR_PERSIST_FAILED); the old file is
  // then untouched and the temp file removed.
  save(model: Model): void {
    fs.mkdirSync(this.dir, { recursive: true, mode: 0o750 });
    const doc = stateDocument(model, this.generation + 1);
    const bytes = Buffer.from(stateDocumentText(doc), 'utf8');
    const tmp = path.join(this.dir, tempName(process.pid));
    try {
      const fd = fs.openSync(tmp, 'w+', 0o640);
      try {
        this.writeAll(fd, bytes, tmp);
        fs.fsyncSync(fd);
        verifyWritten(fd, bytes, tmp);
      } finally {
        fs.closeSync(fd);
      }
      fs.renameSync(tmp, this.file);
    } catch (err) {
      fs.rmSync(tmp, { force: true });
      throw err;
    }
    const dirFd = fs.openSync(this.dir, 'r');
    try {
      fs.fsyncSync(dirFd);
    } finally {
      fs.closeSync(dirFd);
    }
    this.generation = doc.generation;
  }

  // write(2) may write less than asked (a nearly full disk): write the rest,
  // and fail when a write makes no progress.
  private writeAll(fd: number, bytes: Buffer, file: string): void {
    let done = 0;
    while (done < bytes.length) {
      const n = this.write(fd, bytes, done, bytes.length - done, done);
      if (!Number.isInteger(n) || n <= 0 || n > bytes.length - done) {
        throw new Error(`${file}: short write: ${done} of ${bytes.length} bytes written, then a write returned ${n}`);
      }
      done += n;
    }
  }
}

// The temp file a write of process `pid` uses, and how to recognise one.
function tempName(pid: number): string {
  return `.${STATE_FILE}.${pid}.tmp`;
}
const TEMP_RE = new RegExp(`^\\.${STATE_FILE.replace('.', '\\.')}\\.(\\d+)\\.tmp$`);

// Whether `pid` is a running vpcd: its command line names vpcd (the program,
// or the script node runs). Our own pid is not (a start writes nothing yet);
// a pid now reused by another program is not.
export function isRunningVpcd(pid: number): boolean {
  if (pid === process.pid) return false;
  let argv: string[];
  try {
    argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').slice(0, 2);
  } catch {
    return false; // no such process
  }
  return argv.some((a) => /^vpcd(\.js)?$/.test(path.basename(a)));
}

// Reads the file back and compares it with what was meant to be written.
function verifyWritten(fd: number, expected: Buffer, file: string): void {
  const back = Buffer.alloc(expected.length + 1); // one more: a longer file is wrong too
  let got = 0;
  while (got < back.length) {
    const n = fs.readSync(fd, back, got, back.length - got, got);
    if (n === 0) break;
    got += n;
  }
  if (got !== expected.length || !back.subarray(0, got).equals(expected)) {
    const size = got > expected.length ? `more than ${expected.length}` : String(got);
    throw new Error(`${file}: the written file does not read back as written (${size} bytes, expected ${expected.length} bytes${got === expected.length ? ' with different content' : ''})`);
  }
}

function corrupt(file: string, reason: string, cause?: unknown): ControlError {
  return new ControlError('ERR_STATE_CORRUPT',
    `${file}: ${reason}. vpcd does not start on a corrupt state file; restore a backup (see docs/operations.md) or move the file away to start empty`,
    { cause });
}

export function parseStateDocument(text: string, file: string): StateDocument {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw corrupt(file, `not valid JSON (${(err as Error).message})`, err);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw corrupt(file, 'not a JSON object');
  const d = doc as Record<string, unknown>;
  if (d.format !== STATE_FORMAT) throw corrupt(file, `format is ${JSON.stringify(d.format)}, expected "${STATE_FORMAT}"`);
  if (typeof d.version !== 'number' || !Number.isInteger(d.version)) throw corrupt(file, 'version is missing or not an integer');
  if (d.version > STATE_VERSION) {
    throw new ControlError('ERR_STATE_VERSION', `${file}: format version ${d.version} was written by a newer vpcd (this one reads version ${STATE_VERSION}); upgrade vpcd or restore a backup`);
  }
  if (d.version < 1) throw corrupt(file, `version ${d.version} is not valid`);
  if (typeof d.generation !== 'number' || !Number.isInteger(d.generation) || d.generation < 0) throw corrupt(file, 'generation is missing or invalid');
  if (typeof d.checksum !== 'string') throw corrupt(file, 'checksum is missing');
  const actual = checksumOf(d.state);
  if (actual !== d.checksum) throw corrupt(file, `checksum mismatch (file says ${d.checksum.slice(0, 19)}..., content is ${actual.slice(0, 19)}...)`);
  const state = validateModel(d.state, file, d.version);
  return { format: STATE_FORMAT, version: d.version, generation: d.generation, writtenAt: String(d.writtenAt), checksum: d.checksum, state };
}

// Fields taken before they were refused where nothing reads them; a state
// file written then still loads, without them, which changes nothing:
// - `promiscuous` on every kernel port type (the backend reads it on
//   afpacket only);
// - an uplink's `xdpDecap: on` beside `kernelPath: false` (the XDP stage is
//   part of the kernel path; refused since 2026-12-07).
function withoutIgnored(spec: unknown): unknown {
  if (typeof spec !== 'object' || spec === null) return spec;
  const { ...s } = spec as Record<string, unknown>;
  if (s.promiscuous !== undefined && ['tap', 'netmap', 'afxdp'].includes(s.type as string)) delete s.promiscuous;
  if (s.kernelPath === false && s.xdpDecap === 'on') delete s.xdpDecap;
  return s;
}

// Schema of the stored model: every object valid on its own and together.
export function validateModel(value: unknown, file: string, version = STATE_VERSION): Model {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw corrupt(file, 'state is not an object');
  const v = { ...(value as Record<string, unknown>) };
  // Version 1 files have no overlay lists.
  if (version < 2) {
    for (const key of ['uplinks', 'peers']) {
      if (v[key] !== undefined && !(Array.isArray(v[key]) && (v[key] as unknown[]).length === 0)) {
        throw corrupt(file, `state.${key} is not part of format version ${version}`);
      }
      v[key] = [];
    }
  }
  for (const key of ['switches', 'ports', 'uplinks', 'peers', 'fdb']) {
    if (!Array.isArray(v[key])) throw corrupt(file, `state.${key} is not a list`);
  }
  if (v.bgp !== undefined && version < 3) throw corrupt(file, `state.bgp is not part of format version ${version}`);
  const model = emptyModel();
  if (v.bgp !== undefined) {
    try {
      resolveBgp(v.bgp, 'state.bgp');
    } catch (err) {
      throw corrupt(file, `schema: ${(err as Error).message}`, err);
    }
    model.bgp = v.bgp as NonNullable<Model['bgp']>;
  }
  try {
    model.engine = (v.engine ?? {}) as Model['engine'];
    validateOptions(model.engine);
    const maxMtu = maxMtuOf(model.engine);
    const desired: DesiredState = { switches: [], ports: [], uplinks: [], peers: [], fdb: [] };
    const objectAt = (list: unknown[], i: number, key: string): { uuid: string; spec: unknown } => {
      const o = list[i];
      if (typeof o !== 'object' || o === null) throw new ControlError('ERR_INVALID_ARGUMENT', `state.${key}[${i}]: not an object`);
      const r = o as Record<string, unknown>;
      return { uuid: validateUuid(r.uuid, `state.${key}[${i}].uuid`), spec: r.spec };
    };
    (v.switches as unknown[]).forEach((_, i) => {
      const o = objectAt(v.switches as unknown[], i, 'switches');
      const s = parseSwitch(o.spec, `state.switches[${i}].spec`);
      model.switches.push({ uuid: o.uuid, spec: s.spec });
      desired.switches.push({ uuid: o.uuid, spec: s.spec, path: `state.switches[${i}]` });
    });
    (v.ports as unknown[]).forEach((_, i) => {
      const o = objectAt(v.ports as unknown[], i, 'ports');
      const p = parsePort(withoutIgnored(o.spec), maxMtu, `state.ports[${i}].spec`);
      if (p.spec.mac === undefined) throw new ControlError('ERR_INVALID_MAC', `state.ports[${i}].spec.mac: missing`);
      model.ports.push({ uuid: o.uuid, spec: p.spec });
      desired.ports.push({ uuid: o.uuid, spec: p.spec, path: `state.ports[${i}]` });
    });
    (v.uplinks as unknown[]).forEach((_, i) => {
      const o = objectAt(v.uplinks as unknown[], i, 'uplinks');
      const u = parseUplink(withoutIgnored(o.spec), maxMtu, `state.uplinks[${i}].spec`, { stored: true });
      if (u.spec.mac === undefined) throw new ControlError('ERR_INVALID_MAC', `state.uplinks[${i}].spec.mac: missing`);
      model.uplinks.push({ uuid: o.uuid, spec: u.spec });
      desired.uplinks.push({ uuid: o.uuid, spec: u.spec, path: `state.uplinks[${i}]` });
    });
    (v.peers as unknown[]).forEach((_, i) => {
      const o = objectAt(v.peers as unknown[], i, 'peers');
      const p = parsePeer(o.spec, `state.peers[${i}].spec`, { stored: true });
      model.peers.push({ uuid: o.uuid, spec: p.spec });
      desired.peers.push({ uuid: o.uuid, spec: p.spec, path: `state.peers[${i}]` });
    });
    (v.fdb as unknown[]).forEach((_, i) => {
      const o = objectAt(v.fdb as unknown[], i, 'fdb');
      const f = parseFdb(o.spec, `state.fdb[${i}].spec`, { stored: true });
      if (version < 2 && isRemote(f.spec)) throw new ControlError('ERR_INVALID_ARGUMENT', `state.fdb[${i}].spec.vtep: not part of format version ${version}`);
      model.fdb.push({ uuid: o.uuid, spec: f.spec });
      desired.fdb.push({ uuid: o.uuid, spec: f.spec, path: `state.fdb[${i}]` });
    });
    const problems = crossCheck(desired);
    if (problems.length > 0) throw new ControlError(problems[0]!.code, problems[0]!.message);
  } catch (err) {
    if (err instanceof ControlError && err.code === 'ERR_STATE_CORRUPT') throw err;
    throw corrupt(file, `schema: ${err instanceof Error ? err.message : String(err)}`, err);
  }
  return model;
}
