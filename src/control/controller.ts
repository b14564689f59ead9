// The controller: the one place that changes what runs.
//
// Every change, whether a config file (startup, SIGHUP, `vpcctl apply`) or a
// single API call, takes the same road:
//   desired state -> resolveTarget -> plan -> applyPlan (rollback on failure)
//   -> state file written (atomic, fsync) -> acknowledged.
// Changes are serialized: one runs at a time, in arrival order, so concurrent
// clients cannot interleave half-applied plans. If the state file cannot be
// written, the applied steps are undone and the caller gets
// ERR_PERSIST_FAILED: nothing is acknowledged that a restart would lose.

import { isIP } from 'node:net';

import {
  Dataplane,
  DataplaneOptions,
  inSubnet,
  PeerSpec,
  PortSpec,
  SwitchSpec,
  UplinkSpec,
  validateCidr,
  validatePortUpdate,
  validateSwitchUpdate,
  validateOptions,
} from '../dataplane';
import { crossCheck, DesiredObject, DesiredState } from './config';
import { ControlError, toControlError } from './errors';
import type { Logger } from './logging';
import {
  changedFields,
  cloneModel,
  emptyModel,
  fdbKey,
  FdbObject,
  FdbSpec,
  findByRef,
  isRemote,
  maxMtuOf,
  Model,
  normalPort,
  normalSwitch,
  followsInterfaceMac,
  normalUplink,
  parseFdb,
  parsePeer,
  parsePort,
  parseSwitch,
  parseUplink,
  peerKey,
  PeerObject,
  portSwitches,
  PortObject,
  sameValue,
  SwitchObject,
  UplinkObject,
} from './model';
import { bgpHostWarnings, modelBgp, ResolvedBgp } from './evpn/config';
import { restartReason } from './evpn/speaker';
import { interfaceMissing, socketDirectoryMissing, vtepHeldByKernel } from './hostcheck';
import { mtuWarnings } from './port-mtu';
import { applyPlan, describeStep, plan, resolveTarget, runBestEffort, Step, summarize, undo } from './reconcile';
import { StateStore } from './state';

export interface ApplyResult {
  plan: string[]; // human-readable steps
  steps: Step[];
  summary: { create: number; update: number; delete: number };
  applied: boolean;
  warnings: string[];
}

export interface MutationResult<T> {
  object: T;
  created?: boolean; // creates: false when it existed with the same spec
  plan: string[];
  warnings?: string[]; // what the change touches that works badly (also logged)
}

export class Controller {
  private model: Model;
  private queue: Promise<unknown> = Promise.resolve();
  private stopping = false;
  readonly startedAt = Date.now();
  // Called after every change that was applied and persisted (and after a
  // restore), with the new model: the EVPN speaker follows it.
  onChange?: (model: Model) => void;
  // Called before a plan that deletes switches runs, with their names, or
  // that deletes or replaces the uplink, with every switch's: the EVPN sync
  // hands them back first (it put flood-list peers in them that the plan
  // does not know, and the engine refuses to delete a switch or the uplink
  // while peers use it). onChange then runs with the model the plan left,
  // applied or, if it failed, unchanged, and the sync takes over what is
  // there again.
  beforeSwitchesReleased?: (names: string[]) => Promise<void>;

  constructor(readonly dp: Dataplane, readonly store: StateStore, private readonly log: Logger, engine: DataplaneOptions) {
    this.model = emptyModel(engine);
  }

  get current(): Model {
    return cloneModel(this.model);
  }

  get generation(): number {
    return this.store.generation;
  }

  // Recreates the objects of the state file (at startup, before any config).
  async restore(saved: Model): Promise<number> {
    return this.serial(async () => {
      const target = { ...cloneModel(saved), engine: this.model.engine };
      const steps = plan(this.model, target);
      await applyPlan(this.dp, steps);
      this.model = target;
      this.onChange?.(cloneModel(target));
      for (const w of [...uplinkWarnings(steps), ...portWarnings(steps), ...bgpHostWarnings(target)]) this.log.warn({ source: 'state' }, w);
      return steps.length;
    });
  }

  // At start: the engine options vpcd started with are stored when the state
  // file has others (the config's `engine:` changed, and no object did), so
  // that a start without --config, or a copy of state.json, has them too.
  async storeEngineOptions(): Promise<boolean> {
    return this.serial(async () => {
      // What the file holds now (the config's apply may have written it).
      if (sameValue(this.store.load()?.engine ?? {}, this.model.engine)) return false;
      try {
        this.store.save(this.model);
      } catch (err) {
        throw new ControlError('ERR_PERSIST_FAILED', `state file ${this.store.file} could not be written (${(err as Error).message}) with the engine options vpcd started with`, { cause: err });
      }
      this.log.info({ engine: this.model.engine, generation: this.store.generation }, 'engine options stored');
      return true;
    });
  }

  // Applies a whole desired state (config file or `vpcctl apply`).
  async apply(desired: DesiredState, opts: { dryRun?: boolean; source?: string } = {}): Promise<ApplyResult> {
    return this.serial(async () => {
      const m = this.model;
      const running = m.switches.length + m.ports.length + m.uplinks.length + m.peers.length + m.fdb.length + (m.bgp === undefined ? 0 : 1);
      if (desired.empty === true && running > 0) {
        throw new ControlError('ERR_CONFIG_EMPTY', `the configuration is empty (no keys, only comments or nothing): applied, it would delete all ${running} objects that run ` +
          `(${m.switches.length} switches, ${m.ports.length} ports, ${m.uplinks.length} uplinks, ${m.peers.length} peers, ${m.fdb.length} static entries${m.bgp === undefined ? '' : ', the BGP speaker'}). ` +
          'An empty file is most often one cut short or not yet written; to delete everything, apply a file that says so: switches: []');
      }
      const warnings: string[] = [];
      if (desired.engine !== undefined) {
        const want = validateOptions(desired.engine) as unknown as Record<string, unknown>;
        const have = validateOptions(m.engine) as unknown as Record<string, unknown>;
        const differ = Object.keys(want).filter((k) => !sameValue(want[k], have[k]));
        if (differ.length > 0) {
          warnings.push(`engine: ${differ.join(', ')} ${differ.length === 1 ? 'differs' : 'differ'} from the running engine's; engine options are read only when vpcd starts, from its --config file ` +
            '(without one, the state keeps those the engine runs with): they take effect when vpcd restarts with a --config file that has them; an apply does not store them');
        }
      }
      for (const u of desired.uplinks) {
        if (u.spec.mac !== undefined && followsInterfaceMac(u.spec.type)) {
          warnings.push(`${u.path === '' ? '' : `${u.path}.`}mac: ignored: an uplink of type ${u.spec.type} uses its interface's own MAC and follows it (set it on the interface: ip link set dev ${u.spec.interface ?? 'IF'} address ...)`);
        }
      }
      const target = { ...resolveTarget(this.model, desired), engine: this.model.engine };
      return this.commit(target, { dryRun: opts.dryRun === true, source: opts.source ?? 'api', warnings, whole: true });
    });
  }

  // ---------------------------------------------------------------- switches

  async createSwitch(body: unknown): Promise<MutationResult<SwitchObject>> {
    return this.serial(async () => {
      const given = parseSwitch(body);
      const existing = this.model.switches.find((s) => s.spec.name === given.spec.name);
      if (existing !== undefined) {
        const ignoreCapacity = given.spec.fdbCapacity === undefined;
        this.sameOrConflict('switch', given.spec.name, existing.uuid, given.uuid, normalSwitch(existing.spec, ignoreCapacity), normalSwitch(given.spec, ignoreCapacity), body);
        return { object: existing, created: false, plan: [] };
      }
      const d = this.desired();
      d.switches.push({ uuid: given.uuid, spec: given.spec, path: '' });
      const r = await this.commitDesired(d, 'api');
      return { object: this.findSwitch(given.spec.name)!, created: true, plan: r.plan, warnings: r.warnings };
    });
  }

  async updateSwitch(ref: string, body: unknown): Promise<MutationResult<SwitchObject>> {
    return this.serial(async () => {
      const sw = this.requireSwitch(ref);
      const update = checked(() => validateSwitchUpdate(body));
      const d = this.desired();
      const item = d.switches.find((s) => s.spec.name === sw.spec.name)!;
      item.spec = { ...item.spec, ...update };
      const r = await this.commitDesired(d, 'api');
      return { object: this.findSwitch(sw.spec.name)!, plan: r.plan, warnings: r.warnings };
    });
  }

  async deleteSwitch(ref: string): Promise<MutationResult<SwitchObject>> {
    return this.serial(async () => {
      const sw = this.requireSwitch(ref);
      const users = this.model.ports.filter((p) => portSwitches(p.spec).includes(sw.spec.name)).map((p) => p.spec.name);
      if (users.length > 0) {
        throw new ControlError('ERR_SWITCH_IN_USE', `name: switch "${sw.spec.name}" still has ports attached: ${users.sort().join(', ')}`, { field: 'name' });
      }
      const d = this.desired();
      d.switches = d.switches.filter((s) => s.spec.name !== sw.spec.name);
      d.peers = d.peers.filter((p) => p.spec.switch !== sw.spec.name);
      d.fdb = d.fdb.filter((f) => f.spec.switch !== sw.spec.name);
      // bgp.switches may name only switches (an empty list: EVPN manages none).
      if (d.bgp?.switches !== undefined) d.bgp.switches = d.bgp.switches.filter((n) => n !== sw.spec.name);
      const r = await this.commitDesired(d, 'api');
      return { object: sw, plan: r.plan, warnings: r.warnings };
    });
  }

  // ---------------------------------------------------------------- ports

  async createPort(body: unknown): Promise<MutationResult<PortObject>> {
    return this.serial(async () => {
      const maxMtu = maxMtuOf(this.model.engine);
      const given = parsePort(body, maxMtu);
      const existing = this.model.ports.find((p) => p.spec.name === given.spec.name);
      if (existing !== undefined) {
        const ignoreMac = given.spec.mac === undefined;
        this.sameOrConflict('port', given.spec.name, existing.uuid, given.uuid, normalPort(existing.spec, maxMtu, ignoreMac), normalPort(given.spec, maxMtu, ignoreMac), body);
        return { object: existing, created: false, plan: [] };
      }
      const d = this.desired();
      d.ports.push({ uuid: given.uuid, spec: given.spec, path: '' });
      // By hand: a missing interface is refused at once (reconcile.ts).
      const r = await this.commitDesired(d, 'api', { waitForInterface: false });
      return { object: this.findPort(given.spec.name)!, created: true, plan: r.plan, warnings: r.warnings };
    });
  }

  async updatePort(ref: string, body: unknown): Promise<MutationResult<PortObject>> {
    return this.serial(async () => {
      const port = this.requirePort(ref);
      const update = checked(() => validatePortUpdate(body, maxMtuOf(this.model.engine)));
      const d = this.desired();
      const item = d.ports.find((p) => p.spec.name === port.spec.name)!;
      item.spec = { ...item.spec, ...update };
      const r = await this.commitDesired(d, 'api');
      return { object: this.findPort(port.spec.name)!, plan: r.plan, warnings: r.warnings };
    });
  }

  // Static FDB entries that point at the port are removed with it.
  async deletePort(ref: string): Promise<MutationResult<PortObject>> {
    return this.serial(async () => {
      const port = this.requirePort(ref);
      const d = this.desired();
      d.ports = d.ports.filter((p) => p.spec.name !== port.spec.name);
      d.fdb = d.fdb.filter((f) => isRemote(f.spec) || f.spec.port !== port.spec.name);
      const r = await this.commitDesired(d, 'api');
      return { object: port, plan: r.plan, warnings: r.warnings };
    });
  }

  // ---------------------------------------------------------------- uplink

  async createUplink(body: unknown): Promise<MutationResult<UplinkObject>> {
    return this.serial(async () => {
      const maxMtu = maxMtuOf(this.model.engine);
      const given = parseUplink(body, maxMtu);
      const existing = this.model.uplinks.find((u) => u.spec.name === given.spec.name);
      if (existing !== undefined) {
        const ignoreMac = given.spec.mac === undefined;
        this.sameOrConflict('uplink', given.spec.name, existing.uuid, given.uuid, normalUplink(existing.spec, maxMtu, ignoreMac), normalUplink(given.spec, maxMtu, ignoreMac), body);
        return { object: existing, created: false, plan: [] };
      }
      const d = this.desired();
      d.uplinks.push({ uuid: given.uuid, spec: given.spec, path: '' });
      const r = await this.commitDesired(d, 'api');
      return { object: this.findUplink(given.spec.name)!, created: true, plan: r.plan, warnings: r.warnings };
    });
  }

  // Refused while peers or remote entries use the uplink: removing it would
  // cut every switch off the overlay.
  async deleteUplink(ref: string): Promise<MutationResult<UplinkObject>> {
    return this.serial(async () => {
      const uplink = this.requireUplink(ref);
      const users = [
        ...this.model.peers.map((p) => `peer ${peerKey(p.spec)}`),
        ...this.model.fdb.filter((f) => isRemote(f.spec)).map((f) => `fdb ${fdbKey(f.spec)}`),
      ];
      if (users.length > 0) {
        const more = users.length > 5 ? ` and ${users.length - 5} more` : '';
        throw new ControlError('ERR_UPLINK_IN_USE', `name: uplink "${uplink.spec.name}" is still used by ${users.slice(0, 5).join(', ')}${more}; delete them first`, { field: 'name' });
      }
      const d = this.desired();
      d.uplinks = d.uplinks.filter((u) => u.spec.name !== uplink.spec.name);
      const r = await this.commitDesired(d, 'api');
      return { object: uplink, plan: r.plan, warnings: r.warnings };
    });
  }

  // ---------------------------------------------------------------- peers

  async createPeer(body: unknown): Promise<MutationResult<PeerObject>> {
    return this.serial(async () => {
      const given = parsePeer(body);
      const key = peerKey(given.spec);
      const existing = this.model.peers.find((p) => peerKey(p.spec) === key);
      if (existing !== undefined) {
        this.sameOrConflict('peer', key, existing.uuid, given.uuid, {}, {});
        return { object: existing, created: false, plan: [] };
      }
      const d = this.desired();
      d.peers.push({ uuid: given.uuid, spec: given.spec, path: '' });
      const r = await this.commitDesired(d, 'api');
      return { object: this.model.peers.find((p) => peerKey(p.spec) === key)!, created: true, plan: r.plan, warnings: r.warnings };
    });
  }

  async deletePeer(switchName: string, ip: string): Promise<MutationResult<PeerObject>> {
    return this.serial(async () => {
      const peer = this.requirePeer(switchName, ip);
      const d = this.desired();
      d.peers = d.peers.filter((p) => peerKey(p.spec) !== peerKey(peer.spec));
      const r = await this.commitDesired(d, 'api');
      return { object: peer, plan: r.plan, warnings: r.warnings };
    });
  }

  // ---------------------------------------------------------------- fdb

  async createFdb(body: unknown): Promise<MutationResult<FdbObject>> {
    return this.serial(async () => {
      const given = parseFdb(body);
      const existing = this.model.fdb.find((f) => fdbKey(f.spec) === fdbKey(given.spec));
      if (existing !== undefined) {
        this.sameOrConflict('fdb entry', fdbKey(given.spec), existing.uuid, given.uuid, fdbFields(existing.spec), fdbFields(given.spec));
        return { object: existing, created: false, plan: [] };
      }
      const d = this.desired();
      d.fdb.push({ uuid: given.uuid, spec: given.spec, path: '' });
      const r = await this.commitDesired(d, 'api');
      return { object: this.model.fdb.find((f) => fdbKey(f.spec) === fdbKey(given.spec))!, created: true, plan: r.plan, warnings: r.warnings };
    });
  }

  async deleteFdb(switchName: string, mac: string): Promise<MutationResult<FdbObject>> {
    return this.serial(async () => {
      const ref = parseFdb({ switch: switchName, mac, port: 'x' }, '', { stored: true }).spec;
      const entry = this.model.fdb.find((f) => fdbKey(f.spec) === fdbKey(ref));
      if (entry === undefined) {
        throw new ControlError('ERR_UNKNOWN_MAC', `mac: no static FDB entry for ${ref.mac} on switch "${ref.switch}"`, { field: 'mac' });
      }
      const d = this.desired();
      d.fdb = d.fdb.filter((f) => fdbKey(f.spec) !== fdbKey(ref));
      const r = await this.commitDesired(d, 'api');
      return { object: entry, plan: r.plan, warnings: r.warnings };
    });
  }

  // ---------------------------------------------------------------- lookups

  findSwitch(ref: string): SwitchObject | undefined {
    return findByRef(this.model.switches, ref, (s) => s.spec.name);
  }

  findPort(ref: string): PortObject | undefined {
    return findByRef(this.model.ports, ref, (p) => p.spec.name);
  }

  findFdb(switchName: string, mac: string): FdbObject | undefined {
    const m = mac.toLowerCase().replace(/-/g, ':');
    return this.model.fdb.find((f) => f.spec.switch === switchName && f.spec.mac === m);
  }

  findUplink(ref: string): UplinkObject | undefined {
    return findByRef(this.model.uplinks, ref, (u) => u.spec.name);
  }

  findPeer(switchName: string, ip: string): PeerObject | undefined {
    let key: string;
    try {
      key = peerKey(parsePeer({ switch: switchName, ip }, '', { stored: true }).spec);
    } catch {
      return undefined;
    }
    return this.model.peers.find((p) => peerKey(p.spec) === key);
  }

  requireUplink(ref: string): UplinkObject {
    const u = this.findUplink(ref);
    if (u === undefined) throw new ControlError('ERR_NOT_FOUND', `name: no uplink named "${ref}" (or with that UUID)`, { field: 'name' });
    return u;
  }

  requirePeer(switchName: string, ip: string): PeerObject {
    const ref = parsePeer({ switch: switchName, ip }, '', { stored: true }).spec;
    if (this.findSwitch(switchName) === undefined) throw new ControlError('ERR_UNKNOWN_SWITCH', `switch: no switch named "${switchName}"`, { field: 'switch' });
    const p = this.model.peers.find((o) => peerKey(o.spec) === peerKey(ref));
    if (p === undefined) throw new ControlError('ERR_NOT_FOUND', `ip: ${ref.ip} is not a peer of switch "${ref.switch}"`, { field: 'ip' });
    return p;
  }

  requireSwitch(ref: string): SwitchObject {
    const s = this.findSwitch(ref);
    if (s === undefined) throw new ControlError('ERR_UNKNOWN_SWITCH', `name: no switch named "${ref}" (or with that UUID)`, { field: 'name' });
    return s;
  }

  requirePort(ref: string): PortObject {
    const p = this.findPort(ref);
    if (p === undefined) throw new ControlError('ERR_UNKNOWN_PORT', `name: no port named "${ref}" (or with that UUID)`, { field: 'name' });
    return p;
  }

  // ---------------------------------------------------------------- shutdown

  // Detaches every port and removes every switch from the engine (devices
  // the dataplane created go with their ports), then closes it. The state
  // file is left as it is: the next start brings the same objects back.
  async shutdown(): Promise<void> {
    await this.serial(async () => {
      this.stopping = true;
      const steps = plan(this.model, emptyModel(this.model.engine));
      const errors = await runBestEffort(this.dp, steps);
      for (const e of errors) this.log.error({ err: e }, 'shutdown: could not remove an object');
    });
    this.dp.close();
  }

  // ---------------------------------------------------------------- internals

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = async (): Promise<T> => {
      if (this.stopping) throw new ControlError('ERR_SHUTTING_DOWN', 'vpcd is shutting down');
      return fn();
    };
    const result = this.queue.then(run, run);
    this.queue = result.catch(() => undefined);
    return result;
  }

  // The running model as a desired state (to be edited by one API call).
  private desired(): DesiredState {
    const tag = <S>(list: { uuid: string; spec: S }[], kind: string, label: (s: S) => string): DesiredObject<S>[] =>
      list.map((o) => ({ uuid: o.uuid, spec: JSON.parse(JSON.stringify(o.spec)) as S, path: `${kind}[${JSON.stringify(label(o.spec))}]` }));
    const byName = (s: { name?: string }): string => s.name ?? '';
    return {
      switches: tag<SwitchSpec>(this.model.switches, 'switches', byName),
      ports: tag<PortSpec>(this.model.ports, 'ports', byName),
      uplinks: tag<UplinkSpec>(this.model.uplinks, 'uplinks', byName),
      peers: tag<PeerSpec>(this.model.peers, 'peers', peerKey),
      fdb: tag<FdbSpec>(this.model.fdb, 'fdb', fdbKey),
      ...(this.model.bgp === undefined ? {} : { bgp: JSON.parse(JSON.stringify(this.model.bgp)) as NonNullable<Model['bgp']> }),
    };
  }

  private async commitDesired(d: DesiredState, source: string, hooks: { waitForInterface?: boolean } = {}): Promise<ApplyResult> {
    const problems = crossCheck(d);
    if (problems.length > 0) {
      const p = problems[0]!;
      throw new ControlError(p.code, p.message, { field: p.field, status: 400 });
    }
    const target = { ...resolveTarget(this.model, d), engine: this.model.engine };
    return this.commit(target, { dryRun: false, source, warnings: [], ...hooks });
  }

  private async commit(target: Model, opts: { dryRun: boolean; source: string; warnings: string[]; waitForInterface?: boolean; whole?: boolean }): Promise<ApplyResult> {
    const steps = plan(this.model, target);
    // A new uplink whose VTEP address the kernel holds too works badly, a new
    // kernel port whose interface is missing is down until it appears, and
    // a port whose interface MTU exceeds the port's, or whose MTU
    // exceeds its switch's inner MTU over the overlay (port-mtu.ts); said for
    // a dry run as well.
    // A whole configuration is said whole; a single change, only what it
    // touches (not every port's MTU again at each FDB entry).
    const scope = opts.whole === true ? target : touchedModel(target, steps);
    // A missing interface is waited for only where waitForInterface is not
    // false; a single API create is refused instead (ERR_NOT_FOUND), and a
    // warning that the port is down until it appears would be untrue.
    const waits = opts.waitForInterface !== false;
    const warnings = [...opts.warnings, ...uplinkWarnings(steps, waits), ...portWarnings(steps, waits), ...mtuWarnings(target, undefined, scope), ...peerRouteWarnings(scope)];
    const result: ApplyResult = { plan: steps.map(describeStep), steps, summary: summarize(steps), applied: false, warnings };
    // The BGP speaker is no dataplane object: a change is one line of the plan.
    const bgpChange = bgpPlanLine(this.model.bgp, target.bgp);
    if (bgpChange !== undefined) {
      result.plan.push(bgpChange.line);
      result.summary[bgpChange.op] += 1;
      warnings.push(...bgpRestartWarnings(this.model, target), ...bgpHostWarnings(target));
    }
    if (opts.dryRun) return result;
    for (const w of warnings) this.log.warn({ source: opts.source }, w);
    if (steps.length === 0 && bgpChange === undefined) return result;
    const t0 = process.hrtime.bigint();
    const uplinkGoes = steps.some((s) => s.kind === 'uplink' && s.op === 'delete'); // deleted or replaced
    const released = uplinkGoes ? this.model.switches.map((s) => s.spec.name)
      : steps.filter((s) => s.kind === 'switch' && s.op === 'delete').map((s) => s.name);
    if (released.length > 0) await this.beforeSwitchesReleased?.(released);
    const unchanged = (): void => {
      if (released.length > 0) this.onChange?.(cloneModel(this.model));
    };
    try {
      await applyPlan(this.dp, steps, { onStep: (s) => this.logStep(s, opts.source), waitForInterface: opts.waitForInterface });
    } catch (err) {
      const e = toControlError(err);
      this.log.error({ source: opts.source, code: e.code, err: e.message }, 'plan failed; rolled back');
      unchanged();
      throw e;
    }
    try {
      this.store.save(target);
    } catch (err) {
      const undoErrors = await undo(this.dp, steps);
      unchanged();
      this.log.error({ err: (err as Error).message, undoErrors }, 'state file write failed; change undone');
      throw new ControlError(undoErrors.length > 0 ? 'ERR_ROLLBACK_FAILED' : 'ERR_PERSIST_FAILED',
        `state file ${this.store.file} could not be written (${(err as Error).message}); the change was ${undoErrors.length > 0 ? 'NOT fully undone' : 'undone'}`, { cause: err });
    }
    this.model = target;
    this.onChange?.(cloneModel(target));
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    this.log.info({ source: opts.source, ...result.summary, generation: this.store.generation, ms: Math.round(ms * 10) / 10 }, 'state changed');
    result.applied = true;
    return result;
  }

  // One line per applied step; a new kernel port also says how its backend
  // moves frames, and a tap that had to fall back to a system call per frame
  // is a warning (it works, slower).
  private logStep(s: Step, source: string): void {
    const backend = s.kind === 'port' && s.op === 'create' ? this.dp.portStatus(s.name) : undefined;
    this.log.info({ source, step: describeStep(s), ...(backend === undefined ? {} : { io: backend.io, offloads: backend.offloads }) }, 'applied');
    if (backend !== undefined && /^read\(\)\/write\(\), one system call per frame: /.test(backend.io)) {
      this.log.warn({ port: s.name, io: backend.io }, 'tap port without io_uring batching');
    }
  }

  // `body`: the request, whose own fields are named first; a value it did
  // not give is the default, and said so.
  private sameOrConflict(kind: string, name: string, uuid: string, givenUuid: string | undefined, a: Record<string, unknown>, b: Record<string, unknown>, body?: unknown): void {
    if (givenUuid !== undefined && givenUuid !== uuid) {
      throw new ControlError('ERR_UUID_CONFLICT', `uuid: ${kind} "${name}" exists with UUID ${uuid}, not ${givenUuid}`, { field: 'uuid' });
    }
    const given = new Set(body !== null && typeof body === 'object' ? Object.keys(body) : Object.keys(b));
    // A normalised field named after the request's own (a vhost-user
    // port's `mode` and `socket`) is said by the request's name.
    const said = (k: string): string => NORMAL_ALIASES[k]?.find((alias) => given.has(alias)) ?? k;
    const isGiven = (k: string): boolean => given.has(said(k));
    // Another type: that is the difference (each type's own defaults would
    // read as more).
    // (`interface`, copied from `socket`, is said once, as `socket`.)
    const changed = changedFields(a, b).filter((k, _i, all) => said(k) === k || !all.includes(said(k)));
    const diff = changed.includes('type') ? ['type'] : [...changed.filter(isGiven), ...changed.filter((k) => !isGiven(k))];
    if (diff.length > 0) {
      const requested = (k: string): string => (b[k] === undefined ? 'not given' : `${JSON.stringify(b[k])} ${isGiven(k) ? 'requested' : 'by default (not given)'}`);
      const field = said(diff[0]!);
      throw new ControlError('ERR_SPEC_CONFLICT', `${field}: ${kind} "${name}" exists with a different spec (${diff.map((k) => `${said(k)}: ${JSON.stringify(a[k])} running, ${requested(k)}`).join('; ')}); ${conflictAdvice(kind, name)}`, { field });
    }
  }
}


// Fields a normalised spec (model.ts) names otherwise than a request does.
const NORMAL_ALIASES: Record<string, string[]> = { vhostMode: ['mode'], interface: ['socket'] };

// The plan's line for a change of the `bgp` section, if it changed.
function bgpPlanLine(from: Model['bgp'], to: Model['bgp']): { line: string; op: 'create' | 'update' | 'delete' } | undefined {
  if (sameValue(from ?? null, to ?? null)) return undefined;
  if (from === undefined) return { line: `+ bgp (AS ${to!.asn}, router ID ${to!.routerId})`, op: 'create' };
  if (to === undefined) return { line: `- bgp (AS ${from.asn}, router ID ${from.routerId})`, op: 'delete' };
  const keys = [...new Set([...Object.keys(from), ...Object.keys(to)])].filter((k) => !sameValue((from as unknown as Record<string, unknown>)[k], (to as unknown as Record<string, unknown>)[k])).sort();
  return { line: `~ bgp (${keys.join(', ')})`, op: 'update' };
}

// A change of `bgp` that the running managed gobgpd cannot take (a global
// key, evpn/speaker.ts restartReason): said before it is applied, dry run
// included, since every BGP session of the host goes down and comes back.
function bgpRestartWarnings(from: Model, to: Model): string[] {
  let a: ResolvedBgp | undefined;
  let b: ResolvedBgp | undefined;
  try {
    a = modelBgp(from);
    b = modelBgp(to);
  } catch {
    return []; // a bad section is refused with its own error
  }
  const why = a === undefined || b === undefined || !a.managed ? undefined : restartReason(a, b);
  if (why === undefined) return [];
  return [`${why}: gobgpd cannot take this change while it runs; applying it restarts gobgpd, and every BGP session of this host goes down and comes back (neighbours, their timers, switches, remoteLearning and advertiseRate change without a restart)`];
}

// What is wrong around the uplinks a plan creates (read from the host, see hostcheck.ts).
function uplinkWarnings(steps: Step[], waits = true): string[] {
  return steps.flatMap((s) => (s.kind === 'uplink' && s.op === 'create' ? [...(waits ? interfaceMissing(s.spec, undefined, 'uplink') : []), ...vtepHeldByKernel(s.spec)] : []));
}

// What to do about a create that names an existing object with another
// spec: switches and ports have updates (for their mutable fields); an
// uplink or a static entry is replaced whole.
function conflictAdvice(kind: string, name: string): string {
  if (kind === 'switch' || kind === 'port') return `update it (vpcctl ${kind} update ${name}, for the fields that can change) or delete it first`;
  const del = kind === 'uplink' ? `vpcctl uplink delete ${name}` : 'vpcctl fdb delete';
  return `${kind === 'uplink' ? 'an' : 'a'} ${kind} cannot be changed in place: delete it (${del}) and create it again, or apply a configuration with the new spec, which replaces it`;
}

// What a plan touches, as a model for the warnings: the ports, peers and
// remote entries of the switches it touches, and every one of them when it
// touches the uplink (its MTU and subnet are everyone's).
export function touchedModel(target: Model, steps: readonly Step[]): Model {
  if (steps.some((s) => s.kind === 'uplink')) return target;
  const ports = new Set<string>();
  const switches = new Set<string>();
  for (const s of steps) {
    if (s.kind === 'port') ports.add(s.name);
    else if (s.kind === 'switch') switches.add(s.name);
    else if (s.kind === 'peer' || s.kind === 'fdb') switches.add(s.spec.switch);
  }
  return {
    ...target,
    ports: target.ports.filter((p) => ports.has(p.spec.name) || portSwitches(p.spec).some((n) => switches.has(n))),
    peers: target.peers.filter((p) => switches.has(p.spec.switch)),
    fdb: target.fdb.filter((f) => switches.has(f.spec.switch)),
  };
}

// Remote VTEPs (peers, static entries) the uplink has no route to: off its
// subnet with no gateway of that family. The engine keeps them but sends them
// nothing; their frames count as neighbor_unresolved drops.
export function peerRouteWarnings(model: Model): string[] {
  const u = model.uplinks[0]?.spec;
  if (u === undefined) return [];
  const routes = ([[4, u.localIp, u.gateway, 'gateway'], [6, u.localIp6, u.gateway6, 'gateway6']] as const).flatMap(([family, given, gw, gwField]) =>
    given === undefined || gw !== undefined ? [] : [{ family, gwField, net: validateCidr(given, family === 4 ? 'localIp' : 'localIp6', family) }]);
  const said = new Set<string>();
  const out: string[] = [];
  const check = (ip: string, what: string): void => {
    const r = routes.find((x) => x.family === isIP(ip));
    if (r === undefined || inSubnet(ip, r.net, r.family) || said.has(ip)) return;
    said.add(ip);
    const subnet = `${r.net.addr}/${r.net.prefix}`;
    out.push(`${what} is off uplink "${u.name}"'s subnet ${subnet} and the uplink has no ${r.gwField}: the switch cannot reach it ` +
      `and drops what it would send there (neighbor_unresolved). Set the uplink's ${r.gwField} to a router on ${subnet}, or fix the address`);
  };
  for (const p of model.peers) check(p.spec.ip, `peer ${p.spec.ip} of switch "${p.spec.switch}"`);
  for (const f of model.fdb) if (isRemote(f.spec)) check(f.spec.vtep, `VTEP ${f.spec.vtep} of the static entry for ${f.spec.mac} (switch "${f.spec.switch}")`);
  return out;
}

// Why the engine limits `engine` resolves to cannot hold what a state file
// holds (vpcd restores the state before it applies its config: a limit
// lowered in the config below the running objects fails that restore), or
// undefined. An uplink takes a port slot; each remote VTEP address (a peer
// or a static entry's vtep) takes a VTEP slot.
export function stateOverLimits(saved: Model, engine: DataplaneOptions): string | undefined {
  const o = validateOptions(engine);
  const vteps = new Set([...saved.peers.map((p) => p.spec.ip), ...saved.fdb.flatMap((f) => (isRemote(f.spec) ? [f.spec.vtep] : []))]);
  const over = [
    ['maxPorts', o.maxPorts, saved.ports.length + saved.uplinks.length, `${saved.ports.length} ports${saved.uplinks.length ? ' and an uplink' : ''}`],
    ['maxSwitches', o.maxSwitches, saved.switches.length, `${saved.switches.length} switches`],
    ['maxVteps', o.maxVteps, vteps.size, `${vteps.size} remote VTEP addresses`],
  ] as const;
  const bad = over.filter(([, limit, n]) => n > limit);
  if (bad.length === 0) return undefined;
  return `engine ${bad.map(([key, limit, n, what]) => `${key} ${limit} is below the ${n} the state file holds (${what})`).join('; ')}. ` +
    'vpcd restores the state before it applies the config, so raise the limit to at least that, start, remove the objects ' +
    '(vpcctl apply), and lower it at the next start';
}

// New kernel ports whose interface is not there (yet): they are made down.
function portWarnings(steps: Step[], waits = true): string[] {
  return steps.flatMap((s) => (s.kind === 'port' && s.op === 'create' && waits ? [...interfaceMissing(s.spec), ...socketDirectoryMissing(s.spec)] : []));
}

// An FDB entry's fields for comparison (port or vtep, whichever it has).
function fdbFields(spec: FdbSpec): Record<string, unknown> {
  return isRemote(spec) ? { switch: spec.switch, mac: spec.mac, vtep: spec.vtep } : { switch: spec.switch, mac: spec.mac, port: spec.port };
}

// Runs a dataplane validator; its errors become ControlErrors (same code and field).
function checked<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw toControlError(err);
  }
}
