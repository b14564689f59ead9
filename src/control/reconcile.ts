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
// replacing either replaces their static FDB entries. Steps are ordered so
// that every step finds what it needs:
//   1 delete fdb   2 delete ports   3 delete switches
//   4 update switches   5 create switches   6 update ports   7 create ports
//   8 create fdb
// applyPlan() runs the steps one by one; when one fails it undoes the steps
// already applied, newest first, and rethrows the failure.

import { Dataplane, PortSpec, StaticMacSpec, SwitchSpec } from '../dataplane';
import { DesiredState } from './config';
import { ControlError, toControlError } from './errors';
import {
  changedFields,
  fdbKey,
  maxMtuOf,
  Model,
  newUuid,
  normalPort,
  normalSwitch,
  portSwitches,
  PORT_MUTABLE,
  SWITCH_MUTABLE,
  withMac,
} from './model';

export type Step =
  | { op: 'create'; kind: 'switch'; name: string; uuid: string; spec: SwitchSpec; reason?: string }
  | { op: 'delete'; kind: 'switch'; name: string; uuid: string; spec: SwitchSpec; reason?: string }
  | { op: 'update'; kind: 'switch'; name: string; uuid: string; from: Record<string, unknown>; to: Record<string, unknown> }
  | { op: 'create'; kind: 'port'; name: string; uuid: string; spec: PortSpec; reason?: string }
  | { op: 'delete'; kind: 'port'; name: string; uuid: string; spec: PortSpec; reason?: string }
  | { op: 'update'; kind: 'port'; name: string; uuid: string; from: Record<string, unknown>; to: Record<string, unknown> }
  | { op: 'create'; kind: 'fdb'; name: string; uuid: string; spec: StaticMacSpec; reason?: string }
  | { op: 'delete'; kind: 'fdb'; name: string; uuid: string; spec: StaticMacSpec; reason?: string };

// ---------------------------------------------------------------- target

// `current` is what runs. Throws ERR_UUID_CONFLICT when a given UUID
// contradicts a running object.
export function resolveTarget(current: Model, desired: DesiredState): Model {
  const engine = desired.engine ?? current.engine;
  const target: Model = { engine: { ...engine }, switches: [], ports: [], fdb: [] };
  const taken = new Map<string, string>(); // uuid -> "kind name" among running objects
  for (const s of current.switches) taken.set(s.uuid, `switch "${s.spec.name}"`);
  for (const p of current.ports) taken.set(p.uuid, `port "${p.spec.name}"`);
  for (const f of current.fdb) taken.set(f.uuid, `fdb entry ${fdbKey(f.spec)}`);

  const pick = (kind: string, label: string, path: string, given: string | undefined, running: string | undefined): string => {
    if (given === undefined) return running ?? newUuid();
    if (running !== undefined && running !== given) {
      throw new ControlError('ERR_UUID_CONFLICT', `${path}.uuid: ${kind} ${label} runs with UUID ${running}, not ${given}; delete it first or drop the uuid`, { field: `${path}.uuid` });
    }
    const owner = taken.get(given);
    if (running === undefined && owner !== undefined && owner !== `${kind} ${label}`) {
      throw new ControlError('ERR_UUID_CONFLICT', `${path}.uuid: UUID ${given} belongs to ${owner}`, { field: `${path}.uuid` });
    }
    return given;
  };

  for (const s of desired.switches) {
    const running = current.switches.find((o) => o.spec.name === s.spec.name);
    target.switches.push({ uuid: pick('switch', `"${s.spec.name}"`, s.path, s.uuid, running?.uuid), spec: { ...s.spec } });
  }
  const maxMtu = maxMtuOf(engine);
  for (const p of desired.ports) {
    const running = current.ports.find((o) => o.spec.name === p.spec.name);
    let spec = { ...p.spec };
    // No MAC given: keep the running port's, unless the port is replaced
    // anyway (then a new one is generated below).
    if (spec.mac === undefined && running !== undefined && fixedSame(normalPort(spec, maxMtu, true), normalPort(running.spec, maxMtu, true), PORT_MUTABLE)) {
      spec.mac = running.spec.mac;
    }
    spec = withMac(spec);
    target.ports.push({ uuid: pick('port', `"${p.spec.name}"`, p.path, p.uuid, running?.uuid), spec });
  }
  for (const f of desired.fdb) {
    const running = current.fdb.find((o) => fdbKey(o.spec) === fdbKey(f.spec));
    target.fdb.push({ uuid: pick('fdb entry', fdbKey(f.spec), f.path, f.uuid, running?.uuid), spec: { ...f.spec } });
  }
  return target;
}

function fixedSame(a: Record<string, unknown>, b: Record<string, unknown>, mutable: readonly string[]): boolean {
  return changedFields(a, b).every((k) => mutable.includes(k));
}

// ---------------------------------------------------------------- plan

export function plan(current: Model, target: Model): Step[] {
  const maxMtu = maxMtuOf(target.engine);
  const delFdb: Step[] = [];
  const delPorts: Step[] = [];
  const delSwitches: Step[] = [];
  const updSwitches: Step[] = [];
  const newSwitches: Step[] = [];
  const updPorts: Step[] = [];
  const newPorts: Step[] = [];
  const newFdb: Step[] = [];

  const replacedSwitches = new Map<string, string>();
  for (const t of target.switches) {
    const c = current.switches.find((o) => o.spec.name === t.spec.name);
    if (c === undefined) {
      newSwitches.push({ op: 'create', kind: 'switch', name: t.spec.name, uuid: t.uuid, spec: t.spec });
      continue;
    }
    const a = normalSwitch(c.spec);
    const b = normalSwitch(t.spec);
    const changed = changedFields(a, b);
    if (c.uuid !== t.uuid || changed.some((k) => !(SWITCH_MUTABLE as readonly string[]).includes(k))) {
      const why = c.uuid !== t.uuid ? 'uuid changed' : `${changed.filter((k) => !(SWITCH_MUTABLE as readonly string[]).includes(k)).join(', ')} changed`;
      replacedSwitches.set(t.spec.name, why);
      delSwitches.push({ op: 'delete', kind: 'switch', name: c.spec.name, uuid: c.uuid, spec: c.spec, reason: `replace: ${why}` });
      newSwitches.push({ op: 'create', kind: 'switch', name: t.spec.name, uuid: t.uuid, spec: t.spec, reason: `replace: ${why}` });
    } else if (changed.length > 0) {
      updSwitches.push({ op: 'update', kind: 'switch', name: t.spec.name, uuid: t.uuid, from: pick(a, changed), to: pick(b, changed) });
    }
  }
  for (const c of current.switches) {
    if (!target.switches.some((t) => t.spec.name === c.spec.name)) {
      delSwitches.push({ op: 'delete', kind: 'switch', name: c.spec.name, uuid: c.uuid, spec: c.spec });
    }
  }

  const replacedPorts = new Set<string>();
  for (const t of target.ports) {
    const c = current.ports.find((o) => o.spec.name === t.spec.name);
    if (c === undefined) {
      newPorts.push({ op: 'create', kind: 'port', name: t.spec.name, uuid: t.uuid, spec: t.spec });
      continue;
    }
    const a = normalPort(c.spec, maxMtu);
    const b = normalPort(t.spec, maxMtu);
    const changed = changedFields(a, b);
    const fixed = changed.filter((k) => !(PORT_MUTABLE as readonly string[]).includes(k));
    const hit = portSwitches(c.spec).find((s) => replacedSwitches.has(s));
    if (c.uuid !== t.uuid || fixed.length > 0 || hit !== undefined) {
      const why = c.uuid !== t.uuid ? 'uuid changed' : fixed.length > 0 ? `${fixed.join(', ')} changed` : `switch "${hit}" is replaced`;
      replacedPorts.add(t.spec.name);
      delPorts.push({ op: 'delete', kind: 'port', name: c.spec.name, uuid: c.uuid, spec: c.spec, reason: `replace: ${why}` });
      newPorts.push({ op: 'create', kind: 'port', name: t.spec.name, uuid: t.uuid, spec: t.spec, reason: `replace: ${why}` });
    } else if (changed.length > 0) {
      updPorts.push({ op: 'update', kind: 'port', name: t.spec.name, uuid: t.uuid, from: pick(a, changed), to: pick(b, changed) });
    }
  }
  for (const c of current.ports) {
    if (!target.ports.some((t) => t.spec.name === c.spec.name)) {
      delPorts.push({ op: 'delete', kind: 'port', name: c.spec.name, uuid: c.uuid, spec: c.spec });
    }
  }

  for (const t of target.fdb) {
    const key = fdbKey(t.spec);
    const c = current.fdb.find((o) => fdbKey(o.spec) === key);
    if (c === undefined) {
      newFdb.push({ op: 'create', kind: 'fdb', name: key, uuid: t.uuid, spec: t.spec });
      continue;
    }
    const why = c.uuid !== t.uuid ? 'uuid changed'
      : c.spec.port !== t.spec.port ? 'port changed'
        : replacedSwitches.has(c.spec.switch) ? `switch "${c.spec.switch}" is replaced`
          : replacedPorts.has(c.spec.port) ? `port "${c.spec.port}" is replaced` : undefined;
    if (why !== undefined) {
      delFdb.push({ op: 'delete', kind: 'fdb', name: key, uuid: c.uuid, spec: c.spec, reason: `replace: ${why}` });
      newFdb.push({ op: 'create', kind: 'fdb', name: key, uuid: t.uuid, spec: t.spec, reason: `replace: ${why}` });
    }
  }
  for (const c of current.fdb) {
    if (!target.fdb.some((t) => fdbKey(t.spec) === fdbKey(c.spec))) {
      delFdb.push({ op: 'delete', kind: 'fdb', name: fdbKey(c.spec), uuid: c.uuid, spec: c.spec });
    }
  }
  return [...delFdb, ...delPorts, ...delSwitches, ...updSwitches, ...newSwitches, ...updPorts, ...newPorts, ...newFdb];
}

function pick(o: Record<string, unknown>, keys: string[]): Record<string, unknown> {
  return Object.fromEntries(keys.map((k) => [k, o[k]]));
}

// ---------------------------------------------------------------- apply

export interface ApplyHooks {
  // Called after each step succeeded (logging).
  onStep?: (step: Step) => void;
}

async function run(dp: Dataplane, step: Step): Promise<void> {
  switch (step.kind) {
    case 'switch':
      if (step.op === 'create') await dp.createSwitch(step.spec);
      else if (step.op === 'delete') await dp.deleteSwitch(step.name);
      else await dp.updateSwitch(step.name, step.to);
      return;
    case 'port':
      if (step.op === 'create') await dp.createPort(step.spec);
      else if (step.op === 'delete') await dp.deletePort(step.name);
      else await dp.updatePort(step.name, step.to);
      return;
    case 'fdb':
      if (step.op === 'create') await dp.addStaticMac(step.spec);
      else await dp.deleteStaticMac({ switch: step.spec.switch, mac: step.spec.mac });
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
      await run(dp, step);
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
  } else {
    text += ` -> port ${step.spec.port}`;
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
