// Reconcile: desired state -> target model -> ordered plan -> apply, with
// rollback.
//
// resolveTarget() turns a validated desired state into a concrete model:
// every object gets its UUID (the running object's, the given one, or a new
// one) and every port a MAC (the running port's or a new one), so the plan
// and the state file describe exactly what will run.
//
// plan() compares two models. An object whose only differences are mutable
// fields (SWITCH_MUTABLE, PORT_MUTABLE) is updated in place; any other
// difference replaces it, and replacing a switch replaces its ports, and
// replacing either replaces their static FDB entries. The uplink has no
// mutable field: any change replaces it, and with it every peer and every
// remote (vtep) FDB entry; replacing a switch replaces its peers too. Steps
// are ordered so that every step finds what it needs:
//   1 delete fdb   2 delete peers   3 delete ports   4 delete uplink
//   5 delete switches   6 update switches   7 create switches
//   8 update ports   9 create ports   10 create uplink   11 create peers
//   12 create fdb
// applyPlan() runs the steps one by one; when one fails it undoes the steps
// already applied, newest first, and rethrows the failure.

import { Dataplane, PeerSpec, PortSpec, SwitchSpec, UplinkSpec } from '../dataplane';
import { DesiredState } from './config';
import { ControlError, toControlError } from './errors';
import {
  changedFields,
  fdbKey,
  FdbSpec,
  isRemote,
  maxMtuOf,
  Model,
  newUuid,
  normalPort,
  normalSwitch,
  normalUplink,
  peerKey,
  portSwitches,
  PORT_MUTABLE,
  SWITCH_MUTABLE,
  withMac,
} from './model';

type CreateDelete<K extends string, S> =
  | { op: 'create'; kind: K; name: string; uuid: string; spec: S; reason?: string }
  | { op: 'delete'; kind: K; name: string; uuid: string; spec: S; reason?: string };
type Update<K extends string> = { op: 'update'; kind: K; name: string; uuid: string; from: Record<string, unknown>; to: Record<string, unknown> };

export type Step =
  | CreateDelete<'switch', SwitchSpec>
  | Update<'switch'>
  | CreateDelete<'port', PortSpec>
  | Update<'port'>
  | CreateDelete<'uplink', UplinkSpec>
  | CreateDelete<'peer', PeerSpec>
  | CreateDelete<'fdb', FdbSpec>;

// ---------------------------------------------------------------- target

// `current` is what runs. Throws ERR_UUID_CONFLICT when a given UUID
// contradicts a running object.
export function resolveTarget(current: Model, desired: DesiredState): Model {
  const engine = desired.engine ?? current.engine;
  const target: Model = { engine: { ...engine }, switches: [], ports: [], uplinks: [], peers: [], fdb: [] };
  if (desired.bgp !== undefined) target.bgp = JSON.parse(JSON.stringify(desired.bgp)) as NonNullable<Model['bgp']>;
  const taken = new Map<string, string>(); // uuid -> "kind name" among running objects
  for (const s of current.switches) taken.set(s.uuid, `switch "${s.spec.name}"`);
  for (const p of current.ports) taken.set(p.uuid, `port "${p.spec.name}"`);
  for (const u of current.uplinks) taken.set(u.uuid, `uplink "${u.spec.name}"`);
  for (const p of current.peers) taken.set(p.uuid, `peer ${peerKey(p.spec)}`);
  for (const f of current.fdb) taken.set(f.uuid, `fdb entry ${fdbKey(f.spec)}`);

  // A conflict of a file's UUID names the file and line, as its other errors do.
  const conflict = (field: string, why: string): ControlError => {
    const at = desired.at?.(field);
    return new ControlError('ERR_UUID_CONFLICT', `${at === undefined ? '' : `${at.source}:${at.line}: `}${field}: ${why}`, { field, ...(at === undefined ? {} : { line: at.line }) });
  };
  const pick = (kind: string, label: string, path: string, given: string | undefined, running: string | undefined): string => {
    if (given === undefined) return running ?? newUuid();
    if (running !== undefined && running !== given) {
      throw conflict(`${path}.uuid`, `${kind} ${label} runs with UUID ${running}, not ${given}; delete it first or drop the uuid`);
    }
    const owner = taken.get(given);
    if (running === undefined && owner !== undefined && owner !== `${kind} ${label}`) {
      throw conflict(`${path}.uuid`, `UUID ${given} belongs to ${owner}`);
    }
    return given;
  };

  for (const s of desired.switches) {
    const running = current.switches.find((o) => o.spec.name === s.spec.name);
    const spec = { ...s.spec };
    // No fdbCapacity given: keep the running table's (its default follows
    // macLimit, and a macLimit update must not replace the switch), unless the
    // switch is replaced anyway.
    if (spec.fdbCapacity === undefined && running !== undefined && fixedSame(normalSwitch(spec, true), normalSwitch(running.spec, true), SWITCH_MUTABLE)) {
      const capacity = normalSwitch(running.spec).fdbCapacity as number;
      if (capacity !== normalSwitch(spec).fdbCapacity) spec.fdbCapacity = capacity;
    }
    target.switches.push({ uuid: pick('switch', `"${s.spec.name}"`, s.path, s.uuid, running?.uuid), spec });
  }
  for (const p of desired.ports) {
    const running = current.ports.find((o) => o.spec.name === p.spec.name);
    let spec = { ...p.spec };
    // No MAC given: keep the running port's, replaced or not: the MAC names
    // the port (configuration.md), as its UUID does.
    if (spec.mac === undefined && running !== undefined) spec.mac = running.spec.mac;
    spec = withMac(spec);
    target.ports.push({ uuid: pick('port', `"${p.spec.name}"`, p.path, p.uuid, running?.uuid), spec });
  }
  for (const u of desired.uplinks) {
    const running = current.uplinks.find((o) => o.spec.name === u.spec.name);
    let spec = { ...u.spec };
    // The VTEP keeps its MAC when the uplink is replaced: peers' neighbour
    // entries for it stay right.
    if (spec.mac === undefined && running !== undefined) spec.mac = running.spec.mac;
    spec = withMac(spec);
    target.uplinks.push({ uuid: pick('uplink', `"${u.spec.name}"`, u.path, u.uuid, running?.uuid), spec });
  }
  for (const p of desired.peers) {
    const running = current.peers.find((o) => peerKey(o.spec) === peerKey(p.spec));
    target.peers.push({ uuid: pick('peer', peerKey(p.spec), p.path, p.uuid, running?.uuid), spec: { ...p.spec } });
  }
  for (const f of desired.fdb) {
    const running = current.fdb.find((o) => fdbKey(o.spec) === fdbKey(f.spec));
    target.fdb.push({ uuid: pick('fdb entry', fdbKey(f.spec), f.path, f.uuid, running?.uuid), spec: { ...f.spec } });
  }
  return target;
}

// Why an object is replaced. An object given without a MAC keeps its running
// one unless something else replaces it, and then gets a new one: the MAC
// is named only when it is all that changed (the file gave another).
function replaced(fields: string[]): string {
  const named = fields.length > 1 ? fields.filter((k) => k !== 'mac') : fields;
  return `${named.join(', ')} changed`;
}

function fixedSame(a: Record<string, unknown>, b: Record<string, unknown>, mutable: readonly string[]): boolean {
  return changedFields(a, b).every((k) => mutable.includes(k));
}

// ---------------------------------------------------------------- plan

export function plan(current: Model, target: Model): Step[] {
  const maxMtu = maxMtuOf(target.engine);
  const switches = diff('switch', current.switches, target.switches, (s) => s.name, switchChange);
  const ports = diff('port', current.ports, target.ports, (s) => s.name, (c, t) => portChange(c, t, maxMtu, switches.replaced));
  // The uplink (at most one). Replacing or removing it takes its peers and
  // remote entries with it (the dataplane refuses to delete an uplink with peers).
  const uplinks = diff('uplink', current.uplinks, target.uplinks, (s) => s.name, (c, t) => uplinkChange(c, t, maxMtu));
  const goneUplink = uplinks.deletes[uplinks.deletes.length - 1];
  const uplinkGone = goneUplink === undefined ? undefined : `uplink "${goneUplink.name}" is replaced`;
  const peers = diff('peer', current.peers, target.peers, peerKey, (c) => {
    const why = switches.replaced.has(c.switch) ? `switch "${c.switch}" is replaced` : uplinkGone;
    return why === undefined ? undefined : { replace: why };
  });
  const fdb = diff('fdb', current.fdb, target.fdb, fdbKey, (c, t) => fdbChange(c, t, { switches: switches.replaced, ports: ports.replaced, uplink: uplinkGone }));
  return [
    ...fdb.deletes, ...peers.deletes, ...ports.deletes, ...uplinks.deletes, ...switches.deletes, ...switches.updates, ...switches.creates,
    ...ports.updates, ...ports.creates, ...uplinks.creates, ...peers.creates, ...fdb.creates,
  ];
}

interface SpecOf {
  switch: SwitchSpec;
  port: PortSpec;
  uplink: UplinkSpec;
  peer: PeerSpec;
  fdb: FdbSpec;
}
type Kind = keyof SpecOf;

// How a running object must change to become its target (same key, same
// UUID): replaced (with the reason), updated in place (the changed mutable
// fields), or not at all (undefined).
type Change = { replace: string } | { update: { from: Record<string, unknown>; to: Record<string, unknown> } } | undefined;

// The steps of one kind of object, by phase; `replaced` holds the keys of
// the objects replaced (their dependents are replaced too).
interface KindSteps {
  deletes: Step[];
  updates: Step[];
  creates: Step[];
  replaced: Set<string>;
}

// Compares the running objects of one kind with their targets, matched by
// `key`: a new key is created, a missing one deleted, and one whose UUID
// changed replaced; the rest change as `change` says.
function diff<K extends Kind>(
  kind: K,
  current: readonly { uuid: string; spec: SpecOf[K] }[],
  target: readonly { uuid: string; spec: SpecOf[K] }[],
  key: (spec: SpecOf[K]) => string,
  change: (current: SpecOf[K], target: SpecOf[K]) => Change,
): KindSteps {
  const out: KindSteps = { deletes: [], updates: [], creates: [], replaced: new Set() };
  const step = (op: 'create' | 'delete', o: { uuid: string; spec: SpecOf[K] }, reason?: string): Step =>
    ({ op, kind, name: key(o.spec), uuid: o.uuid, spec: o.spec, ...(reason === undefined ? {} : { reason }) }) as Step;
  for (const t of target) {
    const name = key(t.spec);
    const c = current.find((o) => key(o.spec) === name);
    if (c === undefined) {
      out.creates.push(step('create', t));
      continue;
    }
    // Compared even when the UUID changed: a spec the engine would refuse
    // fails the plan either way.
    const fields = change(c.spec, t.spec);
    const ch: Change = c.uuid !== t.uuid ? { replace: 'uuid changed' } : fields;
    if (ch === undefined) continue;
    if ('replace' in ch) {
      out.replaced.add(name);
      out.deletes.push(step('delete', c, `replace: ${ch.replace}`));
      out.creates.push(step('create', t, `replace: ${ch.replace}`));
    } else {
      out.updates.push({ op: 'update', kind, name, uuid: t.uuid, from: ch.update.from, to: ch.update.to } as Step);
    }
  }
  for (const c of current) {
    if (!target.some((t) => key(t.spec) === key(c.spec))) out.deletes.push(step('delete', c));
  }
  return out;
}

// Replaced when a fixed field changed, updated when only mutable ones did.
function fieldChange(a: Record<string, unknown>, b: Record<string, unknown>, mutable: readonly string[]): Change {
  const changed = changedFields(a, b);
  const fixed = changed.filter((k) => !mutable.includes(k));
  if (fixed.length > 0) return { replace: replaced(fixed) };
  return changed.length > 0 ? { update: { from: pick(a, changed), to: pick(b, changed) } } : undefined;
}

function switchChange(c: SwitchSpec, t: SwitchSpec): Change {
  return fieldChange(normalSwitch(c), normalSwitch(t), SWITCH_MUTABLE);
}

// A port is replaced with its switch, too.
function portChange(c: PortSpec, t: PortSpec, maxMtu: number, replacedSwitches: ReadonlySet<string>): Change {
  const ch = fieldChange(normalPort(c, maxMtu), normalPort(t, maxMtu), PORT_MUTABLE);
  if (ch !== undefined && 'replace' in ch) return ch;
  const hit = portSwitches(c).find((s) => replacedSwitches.has(s));
  return hit !== undefined ? { replace: `switch "${hit}" is replaced` } : ch;
}

// The uplink has no update: any change replaces it.
function uplinkChange(c: UplinkSpec, t: UplinkSpec, maxMtu: number): Change {
  const changed = changedFields(normalUplink(c, maxMtu), normalUplink(t, maxMtu));
  return changed.length === 0 ? undefined : { replace: replaced(changed) };
}

// An entry is replaced when it points elsewhere, or when what it points
// through (its switch, its port, or the uplink for a remote entry) is.
function fdbChange(c: FdbSpec, t: FdbSpec, replaced: { switches: ReadonlySet<string>; ports: ReadonlySet<string>; uplink: string | undefined }): Change {
  const whereOf = (f: FdbSpec): string => (isRemote(f) ? `vtep ${f.vtep}` : `port ${f.port}`);
  const why = whereOf(c) !== whereOf(t) ? (isRemote(t) || isRemote(c) ? 'target changed' : 'port changed')
    : replaced.switches.has(c.switch) ? `switch "${c.switch}" is replaced`
      : isRemote(c) ? replaced.uplink
        : replaced.ports.has(c.port) ? `port "${c.port}" is replaced` : undefined;
  return why === undefined ? undefined : { replace: why };
}

function pick(o: Record<string, unknown>, keys: string[]): Record<string, unknown> {
  return Object.fromEntries(keys.map((k) => [k, o[k]]));
}

// ---------------------------------------------------------------- apply

export interface ApplyHooks {
  // Called after each step succeeded (logging).
  onStep?: (step: Step) => void;
  // A new afpacket or afxdp port whose interface does not exist is made down
  // until the interface appears (true, the default: a state or a
  // configuration names guests' interfaces, which come and go with the
  // guests), or refused with ERR_NOT_FOUND (false: a port created by hand is
  // told at once that its interface is missing, a misspelt name say).
  waitForInterface?: boolean;
}

async function run(dp: Dataplane, step: Step, waitForInterface = true): Promise<void> {
  switch (step.kind) {
    case 'switch':
      if (step.op === 'create') await dp.createSwitch(step.spec);
      else if (step.op === 'delete') await dp.deleteSwitch(step.name);
      else await dp.updateSwitch(step.name, step.to);
      return;
    case 'port':
      if (step.op === 'create') await dp.createPort(step.spec, { waitForInterface });
      else if (step.op === 'delete') await dp.deletePort(step.name);
      else await dp.updatePort(step.name, step.to);
      return;
    case 'uplink':
      if (step.op === 'create') await dp.createUplink(step.spec, { waitForInterface });
      else await dp.deleteUplink();
      return;
    case 'peer':
      if (step.op === 'create') await dp.addPeer(step.spec);
      else await dp.deletePeer(step.spec);
      return;
    case 'fdb':
      if (step.op === 'create') {
        if (isRemote(step.spec)) await dp.addRemoteMac(step.spec);
        else await dp.addStaticMac(step.spec);
      } else {
        await dp.deleteStaticMac({ switch: step.spec.switch, mac: step.spec.mac });
      }
      return;
  }
}

export function inverse(step: Step): Step {
  switch (step.op) {
    case 'create':
      return { ...step, op: 'delete' } as Step;
    case 'delete':
      return { ...step, op: 'create' } as Step;
    case 'update':
      return { ...step, from: step.to, to: step.from };
  }
}

// Applies `steps` in order. On a failure, undoes the applied steps in reverse
// order and throws the failure (code of the failing call, plus `step` and
// `rolledBack`), or ERR_ROLLBACK_FAILED when undoing failed too.
export async function applyPlan(dp: Dataplane, steps: Step[], hooks: ApplyHooks = {}): Promise<void> {
  const done: Step[] = [];
  for (const step of steps) {
    try {
      await run(dp, step, hooks.waitForInterface ?? true);
    } catch (err) {
      const cause = toControlError(err);
      const undoErrors = await undo(dp, done);
      const where = describeStep(step);
      if (undoErrors.length > 0) {
        throw new ControlError('ERR_ROLLBACK_FAILED', `${where} failed: ${cause.message}; rollback failed: ${undoErrors.join('; ')}`, {
          cause: err,
          extra: { step: where, failure: cause.toJSON(), rollbackErrors: undoErrors },
        });
      }
      throw new ControlError(cause.code, `${where} failed: ${cause.message} (${done.length} applied step(s) rolled back)`, {
        field: cause.field,
        cause: err,
        status: cause.status,
        extra: { step: where, rolledBack: done.length },
      });
    }
    done.push(step);
    hooks.onStep?.(step);
  }
}

// Undoes applied steps, newest first; returns the messages of those that failed.
export async function undo(dp: Dataplane, done: Step[]): Promise<string[]> {
  const errors: string[] = [];
  for (const step of [...done].reverse()) {
    const inv = inverse(step);
    try {
      await run(dp, inv);
    } catch (err) {
      errors.push(`${describeStep(inv)}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  return errors;
}

// Runs every step, going on after failures (shutdown); returns the failures.
export async function runBestEffort(dp: Dataplane, steps: Step[]): Promise<string[]> {
  const errors: string[] = [];
  for (const step of steps) {
    try {
      await run(dp, step);
    } catch (err) {
      errors.push(`${describeStep(step)}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  return errors;
}

// ---------------------------------------------------------------- display

export function describeStep(step: Step): string {
  const sign = step.op === 'create' ? '+' : step.op === 'delete' ? '-' : '~';
  let text = `${sign} ${step.kind} ${step.name}`;
  if (step.op === 'update') {
    text += `: ${Object.keys(step.to).map((k) => `${k} ${JSON.stringify(step.from[k])} -> ${JSON.stringify(step.to[k])}`).join(', ')}`;
  } else if (step.kind === 'switch') {
    text += ` (vni ${step.spec.vni})`;
  } else if (step.kind === 'port') {
    const s = step.spec;
    const where = s.switch !== undefined ? `switch ${s.switch}` : [s.untagged ? `untagged ${s.untagged}` : '', ...(s.vlans ?? []).map((m) => `vlan ${m.vlan}=${m.switch}`)].filter(Boolean).join(' ');
    text += ` (${s.type}, ${where})`;
  } else if (step.kind === 'uplink') {
    const s = step.spec;
    text += ` (${s.type}${s.interface === undefined ? '' : ` ${s.interface}`}, ${[s.localIp, s.localIp6].filter(Boolean).join(' ')})`;
  } else if (step.kind === 'peer') {
    text += ` (vtep ${step.spec.ip})`;
  } else {
    text += isRemote(step.spec) ? ` -> vtep ${step.spec.vtep}` : ` -> port ${step.spec.port}`;
  }
  if ('reason' in step && step.reason !== undefined) text += ` [${step.reason}]`;
  return text;
}

export function summarize(steps: Step[]): { create: number; update: number; delete: number } {
  return {
    create: steps.filter((s) => s.op === 'create').length,
    update: steps.filter((s) => s.op === 'update').length,
    delete: steps.filter((s) => s.op === 'delete').length,
  };
}
