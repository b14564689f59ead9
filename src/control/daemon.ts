// vpcd: the daemon's life cycle.
//
// Start (nothing is touched before everything is read and validated):
//   1. read the state file (corrupt -> exit 3, the file is left alone)
//   2. read and validate --config (invalid -> exit 4)
//   3. create the engine with the config's `engine:` options (else the state
//      file's, else defaults) and start it
//   4. recreate the objects of the state file, then apply the config as a diff
//   5. listen on the control socket (mode 0660) and the metrics address
// SIGHUP re-reads the config and applies it (an invalid config is refused
// and logged; what runs stays as it was). SIGTERM/SIGINT: stop accepting
// requests, wait for the change in progress, detach every port and remove
// every switch from the engine, close it, remove the socket, exit 0.

import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';
import { Dataplane, DataplaneOptions } from '../dataplane';
import { createApiServer } from './api';
import { CONFIG_LIMITS, configTooLarge, DesiredState, parseConfig } from './config';
import { Controller, stateOverLimits } from './controller';
import { ControlError, toControlError } from './errors';
import { createLogger, EventLogger, LogFormat, Logger } from './logging';
import { Metrics } from './metrics';
import { maxMtuOf, Model, portSwitches, storedProblems } from './model';
import { StateStore } from './state';
import { EvpnService } from './evpn/service';
import { registerEvpnMetrics } from './evpn/metrics';
import { SpeakerError } from './evpn/speaker';

export const DEFAULT_SOCKET = '/run/vpc/vpcd.sock';
export const DEFAULT_STATE_DIR = '/var/lib/vpcd';
export const DEFAULT_METRICS = '127.0.0.1:9273';

// Exit codes of vpcd, declared once (docs/operations.md lists them).
export const VPCD_EXIT = {
  OK: 0,
  FATAL: 1, // unexpected failure while starting or running
  USAGE: 2, // bad command line
  STATE_CORRUPT: 3, // the state file is corrupt or from a newer vpcd
  CONFIG_INVALID: 4, // the --config file is invalid at startup
  SOCKET_IN_USE: 5, // another vpcd answers on the socket or holds the state directory; an address in use
  RESTORE_FAILED: 6, // the engine refused the stored objects or the startup config
} as const;

export interface DaemonOptions {
  config?: string;
  stateDir: string;
  socket: string;
  socketMode: number;
  metrics?: string; // HOST:PORT, or undefined for none
  logLevel: string;
  logFormat?: LogFormat; // default json (vpcd's command line defaults to auto)
  testHooks: boolean;
  version: string;
}

export class DaemonExit extends Error {
  constructor(readonly exitCode: number, message: string, readonly detail?: unknown) {
    super(message);
  }
}

export function parseHostPort(value: string): { host: string; port: number } {
  const m = /^(\[[^\]]+\]|[^:]+):(\d+)$/.exec(value);
  if (m === null || Number(m[2]) > 65535) throw new Error(`--metrics: expected HOST:PORT (e.g. 127.0.0.1:9273) or "off" (got "${value}")`);
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port: Number(m[2]) };
}

// Is this bound address reachable only from the host itself?
export function isLoopback(address: string): boolean {
  const a = address.toLowerCase();
  if (a === '::1' || a === 'localhost') return true;
  const v4 = a.startsWith('::ffff:') ? a.slice(7) : a;
  return /^127\.\d+\.\d+\.\d+$/.test(v4);
}

// Reads and parses the --config file (at start, SIGHUP, POST /v1/reload). A
// file over the size limit is refused without being read.
function readConfig(file: string): DesiredState {
  let text: string;
  try {
    const size = fs.statSync(file).size;
    if (size > CONFIG_LIMITS.maxBytes) throw configTooLarge(file, size);
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if (err instanceof ControlError) throw err;
    throw new ControlError('ERR_CONFIG_INVALID', `${file}: cannot be read: ${(err as Error).message}`);
  }
  return parseConfig(text, file);
}

// vpcd --check-config: the file validated with this version's rules, and
// nothing else read or touched. 0 and "config ok", or 4 and every error
// with its line (as a start would refuse it).
export function checkConfig(file: string, out: (s: string) => void, err: (s: string) => void): number {
  try {
    readConfig(file);
  } catch (e) {
    err(`vpcd: ${toControlError(e).message}\n`);
    return VPCD_EXIT.CONFIG_INVALID;
  }
  out(`${file}: config ok\n`);
  return VPCD_EXIT.OK;
}

// Is something answering on the socket?
function socketAlive(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createConnection(socketPath);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

export class Daemon {
  private controller!: Controller;
  private api?: http.Server;
  private metricsServer?: http.Server;
  private events?: EventLogger;
  private store?: StateStore;
  private evpn?: EvpnService;
  private stopping?: Promise<void>;
  metricsAddress?: string;
  private moveConverged?: (phase: 'advertise' | 'install', seconds: number) => void;

  constructor(readonly opts: DaemonOptions, readonly log: Logger = createLogger(opts.logLevel as never, undefined, opts.logFormat)) {}

  async start(): Promise<void> {
    const { opts } = this;
    const store = new StateStore(opts.stateDir);
    const holder = store.lock();
    if (holder !== undefined) {
      throw new DaemonExit(VPCD_EXIT.SOCKET_IN_USE, `another vpcd (pid ${holder}) uses the state directory ${opts.stateDir}; stop it first or give --state-dir`);
    }
    this.store = store;
    try {
      await this.startHolding(store);
    } catch (err) {
      store.unlock(); // a start that fails gives the directory back, as a stop does
      throw err;
    }
  }

  // The start, once the state directory is this process's.
  private async startHolding(store: StateStore): Promise<void> {
    const { opts, log } = this;
    let saved: Model | undefined;
    // What a write cut short by kill -9 left is no state: state.json is the
    // last complete write.
    const left = store.removeLeftovers();
    if (left.removed.length > 0) {
      log.warn({ files: left.removed }, `state: removed ${left.removed.length} temp file(s) left by a state write that was cut short (vpcd killed while writing); state.json is the last complete write`);
    }
    if (left.kept.length > 0) log.warn({ files: left.kept }, 'state: temp file(s) of a running vpcd left alone: another vpcd uses this state directory');
    if (left.failed.length > 0) log.warn({ files: left.failed }, 'state: temp file(s) left by a state write that was cut short could not be removed');
    try {
      saved = store.load();
    } catch (err) {
      const e = toControlError(err);
      throw new DaemonExit(VPCD_EXIT.STATE_CORRUPT, e.message, e.toJSON());
    }
    let desired: DesiredState | undefined;
    if (opts.config !== undefined) {
      try {
        desired = readConfig(opts.config);
      } catch (err) {
        const e = toControlError(err);
        throw new DaemonExit(VPCD_EXIT.CONFIG_INVALID, e.message, e.toJSON());
      }
    }
    if (await socketAlive(opts.socket)) {
      throw new DaemonExit(VPCD_EXIT.SOCKET_IN_USE, `another vpcd answers on ${opts.socket}; stop it first or give --socket`);
    }
    const engine: DataplaneOptions = desired?.engine ?? saved?.engine ?? {};
    const over = saved === undefined ? undefined : stateOverLimits(saved, engine);
    if (over !== undefined) {
      // Only a config can lower them (a state file carries its own): exit 4,
      // which systemd does not retry, as the restore could never pass.
      throw new DaemonExit(VPCD_EXIT.CONFIG_INVALID, `${opts.config ?? 'the state file'}: ${over}`, { code: 'ERR_LIMIT', field: 'engine' });
    }
    const dp = new Dataplane(engine);
    // Offloads a killed vpcd left off come back before any port opens.
    // The journal lives in the state directory, which must exist before the
    // first port opens (a first start creates it only with its first save).
    fs.mkdirSync(opts.stateDir, { recursive: true, mode: 0o750 });
    const restored = dp.useOffloadJournal(path.resolve(opts.stateDir));
    if (restored.offloads.length > 0) log.warn({ interfaces: restored.offloads }, 'offloads restored that an earlier vpcd left off (it did not stop cleanly)');
    if (restored.xdp.length > 0) log.warn({ interfaces: restored.xdp }, 'XDP programs removed that an earlier vpcd\'s afxdp ports left attached (it did not stop cleanly)');
    this.events = new EventLogger(log);
    dp.on('event', (e) => this.events?.event(e));
    // A trace pauses the kernel path: say when one ends unattended.
    dp.on('traceExpired', (e) => log.info({ trace: e.id, seconds: e.seconds, frames: `${e.records} of ${e.count}` }, 'a trace ended at its deadline with frames still to come (no client stopped it): it no longer holds the kernel path paused'));
    dp.start();
    const linkWatch = dp.info().linkWatch;
    if (linkWatch.mode === 'off') {
      log.warn({ why: linkWatch.why }, 'the engine cannot follow the kernel\'s link messages (netlink refused): every port is checked in turn, so a link change is seen up to a second late with many ports (metric vpc_engine_link_watch)');
    } else if (linkWatch.mode === 'own-namespace') {
      log.info({ why: linkWatch.why }, 'the engine follows link messages of its own namespace only: ports whose interface moved into another namespace are checked in turn (metric vpc_engine_link_watch)');
    }
    this.controller = new Controller(dp, store, log, engine);
    // The EVPN speaker follows every applied change (src/control/evpn).
    const evpn = new EvpnService({ dp, stateDir: path.resolve(opts.stateDir), log, onMoveConverged: (phase, s) => this.moveConverged?.(phase, s) });
    this.evpn = evpn;
    this.controller.onChange = (m) => {
      evpn.update(m).catch(() => undefined); // logged by the service
    };
    this.controller.beforeSwitchesReleased = (names) => evpn.releaseSwitches(names);
    try {
      if (saved !== undefined) {
        const n = await this.controller.restore(saved);
        log.info({ stateFile: store.file, generation: store.generation, steps: n }, 'state restored');
        for (const p of storedProblems(saved, maxMtuOf(engine))) {
          log.warn({ stateFile: store.file }, `state: ${p}; kept as stored, though this version refuses it in a configuration or an API call: replace it`);
        }
      }
      if (desired !== undefined) await this.applyConfig(desired, 'config');
      await this.controller.storeEngineOptions();
    } catch (err) {
      const e = toControlError(err);
      dp.close();
      // An empty --config beside a state with objects is the file's fault
      // (exit 4, which systemd does not retry), not the engine's.
      throw new DaemonExit(e.code === 'ERR_CONFIG_EMPTY' ? VPCD_EXIT.CONFIG_INVALID : VPCD_EXIT.RESTORE_FAILED, e.message, e.toJSON());
    }
    try {
      await evpn.update(this.controller.current);
    } catch (err) {
      await evpn.stop().catch(() => undefined);
      await this.controller.shutdown();
      throw new DaemonExit(VPCD_EXIT.FATAL, `bgp: ${(err as Error).message}${err instanceof SpeakerError ? '' : ' (see the log)'}`);
    }

    // Which listener failed: the socket's server may be listening already
    // when its chmod or a later step fails.
    let where = `--socket ${opts.socket}`;
    try {
      await this.listenApi();
      where = `--metrics ${opts.metrics}`;
      if (opts.metrics !== undefined) await this.listenMetrics(opts.metrics, dp);
    } catch (err) {
      // The switches run by now: stop them as SIGTERM would (ports detached,
      // offloads and XDP programs given back, the socket removed) before
      // exiting, not leave that to the process's end.
      await this.stop('start failed').catch(() => undefined);
      const e = err as NodeJS.ErrnoException;
      const why = e.code === 'EADDRINUSE' ? 'the address is in use (another vpcd, or another exporter)' : e.code === 'EACCES' ? 'permission denied' : e.message;
      // In use: a human must choose another address (exit 5, as for the socket).
      throw new DaemonExit(e.code === 'EADDRINUSE' ? VPCD_EXIT.SOCKET_IN_USE : VPCD_EXIT.FATAL, `${where}: cannot listen: ${why}`);
    }
    log.info({ socket: opts.socket, metrics: this.metricsAddress ?? null, config: opts.config ?? null, stateDir: opts.stateDir, version: opts.version }, 'vpcd ready');
  }

  private async applyConfig(desired: DesiredState, source: string, dryRun = false): Promise<unknown> {
    const r = await this.controller.apply(desired, { source, dryRun });
    // r.warnings are logged by the controller with the change.
    if (!dryRun) this.log.info({ source, ...r.summary, applied: r.applied }, r.plan.length === 0 ? 'config unchanged' : 'config applied');
    return r;
  }

  // SIGHUP and POST /v1/reload (dryRun: the plan only, nothing changed).
  async reload(opts: { dryRun?: boolean } = {}): Promise<unknown> {
    if (this.opts.config === undefined) {
      const e = new ControlError('ERR_BAD_REQUEST', 'vpcd was started without --config; there is nothing to reload (use vpcctl apply -f FILE)');
      this.log.warn(`reload refused: ${e.message}`); // SIGHUP has no one else to tell
      throw e;
    }
    try {
      return await this.applyConfig(readConfig(this.opts.config), 'reload', opts.dryRun === true);
    } catch (err) {
      const e = toControlError(err);
      this.log.error({ code: e.code, details: e.details, config: this.opts.config }, `reload refused: ${e.message}`);
      throw e;
    }
  }

  private async listenApi(): Promise<void> {
    const { opts } = this;
    fs.mkdirSync(path.dirname(opts.socket), { recursive: true, mode: 0o755 });
    try {
      fs.unlinkSync(opts.socket); // stale: nothing answered above
    } catch {
      // absent
    }
    this.api = createApiServer({
      controller: this.controller,
      log: this.log,
      version: opts.version,
      testHooks: opts.testHooks,
      configPath: opts.config,
      socketPath: opts.socket,
      metricsAddress: opts.metrics,
      reload: (o) => this.reload(o),
      bgp: this.evpn,
    });
    await new Promise<void>((resolve, reject) => {
      this.api!.once('error', reject);
      // The mode is set through the umask so that the socket is never
      // reachable with wider permissions, not even briefly.
      const old = process.umask(0o777 & ~opts.socketMode);
      this.api!.listen(opts.socket, () => {
        process.umask(old);
        resolve();
      });
    });
    fs.chmodSync(opts.socket, opts.socketMode);
    if ((opts.socketMode & 0o002) !== 0) {
      this.log.warn({ socket: opts.socket, mode: `0${opts.socketMode.toString(8)}` },
        'the control socket is writable by every local user: anyone on this host can change or delete every switch and port (give a group access instead: --socket-mode 0660)');
    }
  }

  private async listenMetrics(address: string, dp: Dataplane): Promise<void> {
    const { host, port } = parseHostPort(address);
    const controller = this.controller;
    const metrics = new Metrics({
      dp,
      portSwitches: (name) => {
        const p = controller.findPort(name);
        return p === undefined ? [] : portSwitches(p.spec);
      },
      generation: () => controller.generation,
    });
    if (this.evpn !== undefined) this.moveConverged = registerEvpnMetrics(metrics.registry, this.evpn);
    this.metricsServer = http.createServer((req, res) => {
      const url = (req.url ?? '/').split('?')[0];
      if (url !== '/metrics') {
        res.writeHead(url === '/' ? 200 : 404, { 'content-type': 'text/plain' });
        res.end(url === '/' ? 'vpcd metrics: see /metrics\n' : 'not found\n');
        return;
      }
      metrics.render().then(
        (text) => {
          res.writeHead(200, { 'content-type': metrics.contentType });
          res.end(text);
        },
        (err) => {
          this.log.error({ err: (err as Error).message }, 'metrics scrape failed');
          res.writeHead(500, { 'content-type': 'text/plain' });
          res.end(`scrape failed: ${(err as Error).message}\n`);
        },
      );
    });
    await new Promise<void>((resolve, reject) => {
      this.metricsServer!.once('error', reject);
      this.metricsServer!.listen(port, host, () => resolve());
    });
    const a = this.metricsServer.address() as net.AddressInfo;
    this.metricsAddress = `${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`;
    if (!isLoopback(a.address)) {
      this.log.warn({ metrics: this.metricsAddress },
        `metrics are served on ${this.metricsAddress}, which is not a loopback address: anyone who reaches it reads every switch, port, peer and counter, without authentication (see docs/operations.md, "Metrics exposure")`);
    }
  }

  // Graceful stop; idempotent.
  stop(reason: string): Promise<void> {
    if (this.stopping === undefined) {
      this.stopping = (async () => {
        this.log.info({ reason }, 'vpcd stopping');
        this.api?.close();
        this.metricsServer?.close();
        this.api?.closeAllConnections?.();
        this.metricsServer?.closeAllConnections?.();
        await this.evpn?.stop().catch((err) => this.log.error({ err: (err as Error).message }, 'EVPN: stop failed'));
        await this.controller.shutdown();
        this.events?.close();
        try {
          fs.unlinkSync(this.opts.socket);
        } catch {
          // already gone
        }
        this.store?.unlock();
        this.log.info('vpcd stopped: engine closed, ports detached');
      })();
    }
    return this.stopping;
  }
}

// Runs vpcd until a signal stops it. Resolves with the process exit code.
// Signal handlers are installed first: a SIGTERM that arrives while vpcd is
// still starting stops it as soon as the start is complete.
export async function runDaemon(opts: DaemonOptions): Promise<number> {
  const log = createLogger(opts.logLevel as never, undefined, opts.logFormat);
  const daemon = new Daemon(opts, log);
  let started = false;
  let stopSignal: string | undefined;
  let finish: (code: number) => void = () => undefined;
  const done = new Promise<number>((resolve) => (finish = resolve));
  const stop = (signal: string): void => {
    if (!started) {
      stopSignal = signal;
      return;
    }
    daemon.stop(signal).then(() => finish(VPCD_EXIT.OK), (err) => {
      log.error({ err: (err as Error)?.message }, 'shutdown failed');
      finish(VPCD_EXIT.FATAL);
    });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGHUP', () => {
    if (!started) return;
    log.info('SIGHUP: reloading the configuration');
    daemon.reload().catch(() => undefined);
  });
  try {
    await daemon.start();
  } catch (err) {
    if (err instanceof DaemonExit) {
      log.fatal({ exitCode: err.exitCode, error: err.detail }, err.message);
      process.stderr.write(`vpcd: ${err.message}\n`);
      return err.exitCode;
    }
    log.fatal({ err: (err as Error)?.stack ?? String(err) }, 'vpcd failed to start');
    process.stderr.write(`vpcd: ${(err as Error)?.message ?? String(err)}\n`);
    return VPCD_EXIT.FATAL;
  }
  started = true;
  if (stopSignal !== undefined) stop(stopSignal);
  return done;
}
