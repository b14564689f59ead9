// The managed BGP speaker: a gobgpd that vpcd configures, starts and
// supervises.
//
// vpcd writes STATE_DIR/gobgpd.toml (global AS, router ID and port; one
// neighbour per configured one, with the l2vpn-evpn family and the timers),
// then runs `gobgpd -f gobgpd.toml --api-hosts 127.0.0.1:<port>`. The API
// port is a free loopback port picked at start, so several vpcds (tests,
// namespaces sharing a loopback) never collide. When gobgpd exits without
// being asked to, it is started again after a backoff (1 s, doubling to
// 30 s, back to 1 s once it ran for a minute), and `onStart` runs again so
// that vpcd re-advertises everything.
//
// gobgpd writes its log (stdout and stderr) to STATE_DIR/gobgpd.log, opened
// O_APPEND, not to a pipe: a gobgpd that outlives a killed vpcd is taken
// over by the next one, and a pipe to the dead vpcd killed it with SIGPIPE at
// its next line. vpcd follows the file (the adopting vpcd too) and logs each
// line at gobgpd's own level.

import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import type { Logger } from '../logging';
import { ResolvedBgp } from './config';
import type { PeerConfig } from './gobgp';

export const GOBGPD_PACKAGE = 'gobgpd';
const SEARCH = ['/usr/bin', '/usr/sbin', '/usr/local/bin', '/usr/local/sbin', '/bin', '/sbin'];

export class SpeakerError extends Error {}

// The gobgpd binary: VPCD_GOBGPD, else the PATH and the usual directories.
export function findGobgpd(env: NodeJS.ProcessEnv = process.env, search: readonly string[] = SEARCH): string {
  const given = env.VPCD_GOBGPD;
  if (given !== undefined && given !== '') {
    if (!isExecutable(given)) throw new SpeakerError(`VPCD_GOBGPD=${given} is not an executable file`);
    return given;
  }
  const dirs = [...(env.PATH ?? '').split(':').filter((d) => d !== ''), ...search];
  for (const d of dirs) {
    const f = path.join(d, 'gobgpd');
    if (isExecutable(f)) return f;
  }
  throw new SpeakerError(`gobgpd was not found (searched PATH and ${search.join(', ')}): bgp.managed needs it; install the Debian package ${GOBGPD_PACKAGE} (apt install ${GOBGPD_PACKAGE}), or run your own gobgpd and set bgp.managed: false with bgp.address`);
}

function isExecutable(f: string): boolean {
  try {
    fs.accessSync(f, fs.constants.X_OK);
    return fs.statSync(f).isFile();
  } catch {
    return false;
  }
}

function q(s: string): string {
  return JSON.stringify(s); // a TOML basic string (the values are addresses)
}

// The neighbours gobgpd gets for `bgp`, one PeerConfig each: written to
// gobgpd.toml at start and sent with AddPeer when the neighbours change while
// it runs (service.ts), so that both ways configure the same session.
export function peerConfigs(b: ResolvedBgp): PeerConfig[] {
  return b.neighbors.map((n) => {
    const p: PeerConfig = { address: n.address, asn: n.asn, holdTime: b.holdTime, keepalive: b.keepalive, connectRetry: CONNECT_RETRY };
    if (b.localAddress !== undefined) p.localAddress = b.localAddress;
    if (n.routeReflectorClient) {
      p.routeReflectorClient = true;
      p.clusterId = b.clusterId ?? b.routerId;
    }
    return p;
  });
}

const CONNECT_RETRY = 2; // seconds

// The export policy of every managed gobgpd: next hops stay as they are.
// An EVPN route's next hop is its VTEP, and gobgpd sets its own session
// address as the next hop of every route it passes to an eBGP neighbour
// that is not its own (table/path.go UpdatePathAttrs), so a third host's
// MACs reached an eBGP neighbour behind this host's BGP address instead of
// their VTEP. gobgpd applies policies per neighbour only to route-server
// clients; the global export policy covers every neighbour, and for iBGP
// ones it changes nothing (gobgpd keeps their next hops anyway), so the
// neighbours can still change while gobgpd runs.
export const NEXT_HOP_POLICY = 'vpcd-evpn-next-hop-unchanged';

// gobgpd's TOML configuration for `bgp`.
export function gobgpdConfig(b: ResolvedBgp): string {
  const lines = ['# Written by vpcd from its `bgp:` configuration; rewritten at every start and neighbour change.', '[global.config]', `  as = ${b.asn}`, `  router-id = ${q(b.routerId)}`, `  port = ${b.port}`];
  if (b.localAddress !== undefined) lines.push(`  local-address-list = [${q(b.localAddress)}]`);
  lines.push(
    '[global.apply-policy.config]',
    `  export-policy-list = [${q(NEXT_HOP_POLICY)}]`,
    '  default-export-policy = "accept-route"',
    '',
    '[[policy-definitions]]',
    `  name = ${q(NEXT_HOP_POLICY)}`,
    '  [[policy-definitions.statements]]',
    '    name = "next-hop-unchanged"',
    '    [policy-definitions.statements.actions.bgp-actions]',
    '      set-next-hop = "unchanged"',
  );
  for (const n of peerConfigs(b)) {
    lines.push(
      '',
      '[[neighbors]]',
      '  [neighbors.config]',
      `    neighbor-address = ${q(n.address)}`,
      `    peer-as = ${n.asn}`,
      '  [neighbors.timers.config]',
      `    hold-time = ${n.holdTime}`,
      `    keepalive-interval = ${n.keepalive}`,
      `    connect-retry = ${n.connectRetry}`,
    );
    if (n.localAddress !== undefined) lines.push('  [neighbors.transport.config]', `    local-address = ${q(n.localAddress)}`);
    if (n.routeReflectorClient === true) {
      lines.push('  [neighbors.route-reflector.config]', '    route-reflector-client = true', `    route-reflector-cluster-id = ${q(n.clusterId!)}`);
    }
    lines.push('  [[neighbors.afi-safis]]', '    [neighbors.afi-safis.config]', '      afi-safi-name = "l2vpn-evpn"');
  }
  return `${lines.join('\n')}\n`;
}

// What only a new gobgpd (and a new sync) takes: every setting but the
// neighbours and their session settings (timers, cluster ID), which the
// running gobgpd changes through its API, and the sync's own settings,
// which gobgpd never sees: advertiseRate (read at every tick), and
// switches and remoteLearning (followed by the sync's next refresh).
// undefined: a and b differ in those at most.
export function restartReason(a: ResolvedBgp, b: ResolvedBgp): string | undefined {
  const rest = (x: ResolvedBgp): Record<string, unknown> => {
    const { neighbors: _n, holdTime: _h, keepalive: _k, clusterId: _c, advertiseRate: _r, switches: _s, remoteLearning: _l, ...others } = x;
    return others;
  };
  const ra = rest(a);
  const rb = rest(b);
  const changed = [...new Set([...Object.keys(ra), ...Object.keys(rb)])].filter((k) => JSON.stringify(ra[k]) !== JSON.stringify(rb[k])).sort();
  return changed.length === 0 ? undefined : changed.map((k) => `bgp.${k}`).join(', ');
}

// A free TCP port on 127.0.0.1.
export function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

export interface ManagedSpeakerOptions {
  bgp: ResolvedBgp;
  dir: string; // where gobgpd.toml goes (the state dir)
  log: Logger;
  binary?: string;
  // Runs after every (re)start, with the API address (`adopted`: a gobgpd
  // an earlier vpcd started and that kept running); a rejection is logged
  // and gobgpd restarted.
  onStart: (apiAddress: string, adopted: boolean) => Promise<void>;
  onExit?: (code: number | null, signal: string | null) => void;
}

export const GOBGPD_LOG = 'gobgpd.log';
const LOG_POLL_MS = 250;
// The log file is emptied once vpcd has read past this many bytes: gobgpd
// appends (O_APPEND), so it goes on writing at the new end.
const LOG_MAX_BYTES = 8 * 1024 * 1024;

type PinoLevel = 'debug' | 'info' | 'warn' | 'error' | 'fatal';
// logrus's level names (gobgpd's JSON log) as pino's.
const GOBGPD_LEVELS: Record<string, PinoLevel> = { trace: 'debug', debug: 'debug', info: 'info', warning: 'warn', warn: 'warn', error: 'error', fatal: 'fatal', panic: 'fatal' };

// One line of gobgpd's log as vpcd logs it: gobgpd's level, message and
// fields (logrus JSON); anything else (a Go panic on stderr) is a warning.
export function gobgpdLogLine(line: string): { level: PinoLevel; msg: string; fields: Record<string, unknown> } {
  const text = line.trim().slice(0, 2000);
  try {
    const o = JSON.parse(text) as Record<string, unknown>;
    if (typeof o === 'object' && o !== null && typeof o.msg === 'string') {
      const { level, msg, time: _t, ...fields } = o;
      return { level: GOBGPD_LEVELS[String(level)] ?? 'warn', msg, fields };
    }
  } catch {
    // not JSON
  }
  return { level: 'warn', msg: text.slice(0, 500), fields: {} };
}

// A BGP NOTIFICATION's error code and subcode in words (RFC 4271 section
// 4.5 and 6, RFC 5492 for the OPEN capability subcode, RFC 4486 and 8538 for
// Cease), as gobgpd logs only the numbers ("Code": 6, "Subcode": 3).
const NOTIFICATION_CODES: Record<number, [string, Record<number, string>]> = {
  1: ['message header error', { 1: 'connection not synchronized', 2: 'bad message length', 3: 'bad message type' }],
  2: ['OPEN message error', { 1: 'unsupported version number', 2: 'bad peer AS', 3: 'bad BGP identifier', 4: 'unsupported optional parameter', 6: 'unacceptable hold time', 7: 'unsupported capability' }],
  3: ['UPDATE message error', {
    1: 'malformed attribute list', 2: 'unrecognized well-known attribute', 3: 'missing well-known attribute', 4: 'attribute flags error', 5: 'attribute length error',
    6: 'invalid ORIGIN attribute', 8: 'invalid NEXT_HOP attribute', 9: 'optional attribute error', 10: 'invalid network field', 11: 'malformed AS_PATH',
  }],
  4: ['hold timer expired', {}],
  5: ['finite state machine error', {}],
  6: ['cease', {
    1: 'maximum number of prefixes reached', 2: 'administrative shutdown', 3: 'peer de-configured', 4: 'administrative reset', 5: 'connection rejected',
    6: 'other configuration change', 7: 'connection collision resolution', 8: 'out of resources', 9: 'hard reset',
  }],
};

export function notificationText(code: number, subcode: unknown): string {
  const [name, subs] = NOTIFICATION_CODES[code] ?? [`error code ${code}`, {}];
  const sub = typeof subcode === 'number' && subcode !== 0 ? subs[subcode] ?? `subcode ${subcode}` : undefined;
  return sub === undefined ? name : `${name} (${sub})`;
}

// Follows gobgpd's log file from `offset`: every complete new line is
// logged (as gobgpdLogLine says, with gobgpd's PID as gobgpdPid; vpcd's own
// is the logger's `pid`). Keeps the last error or fatal line: the reason a
// gobgpd that keeps exiting gives (`bgp status`).
export class GobgpdLogFollower {
  private partial = '';
  private readonly timer: NodeJS.Timeout;
  lastError?: { msg: string; at: number };
  // The last warning or error gobgpd logged about each neighbour (Topic
  // Peer, Key: its address), e.g. "sent notification: as number mismatch
  // expected 64513, received 64514": why a session does not come up.
  readonly peerProblems = new Map<string, { msg: string; at: number }>();

  constructor(
    private readonly file: string,
    private readonly gobgpdPid: number,
    private readonly log: Logger,
    private offset: number,
    private readonly onError?: (msg: string) => void,
  ) {
    this.timer = setInterval(() => this.poll(), LOG_POLL_MS);
    this.timer.unref();
  }

  // Reads what was appended since the last poll.
  poll(): void {
    let fd: number;
    try {
      fd = fs.openSync(this.file, 'r+');
    } catch {
      return;
    }
    try {
      const size = fs.fstatSync(fd).size;
      if (size < this.offset) this.offset = 0; // emptied meanwhile
      while (this.offset < size) {
        const buf = Buffer.alloc(Math.min(size - this.offset, 1 << 20));
        const n = fs.readSync(fd, buf, 0, buf.length, this.offset);
        if (n <= 0) break;
        this.offset += n;
        this.take(buf.subarray(0, n).toString());
      }
      if (this.offset > LOG_MAX_BYTES) {
        fs.ftruncateSync(fd, 0);
        this.offset = 0;
      }
    } catch {
      // read again at the next poll
    } finally {
      fs.closeSync(fd);
    }
  }

  private take(text: string): void {
    const lines = (this.partial + text).split('\n');
    this.partial = lines.pop() ?? '';
    if (this.partial.length > 64 * 1024) this.partial = ''; // no newline in sight: not a log line
    for (const line of lines) {
      if (line.trim() === '') continue;
      const l = gobgpdLogLine(line);
      this.log[l.level]({ gobgpdPid: this.gobgpdPid, gobgpd: l.msg, ...(Object.keys(l.fields).length > 0 ? { gobgpdFields: l.fields } : {}) }, 'gobgpd');
      const key = l.fields.Key;
      if ((l.level === 'warn' || l.level === 'error' || l.level === 'fatal') && l.fields.Topic === 'Peer' && typeof key === 'string' && net.isIP(key) !== 0) {
        const data = l.fields.Data;
        const said = typeof data === 'string' ? (data === '' ? [] : [data]) : data === undefined || data === null ? [] : [JSON.stringify(data)];
        const why = typeof l.fields.Code === 'number' ? [notificationText(l.fields.Code, l.fields.Subcode)] : [];
        this.peerProblems.set(key, { msg: [l.msg, ...why, ...said].join(': '), at: Date.now() });
      }
      if (l.level === 'error' || l.level === 'fatal') {
        const why = [l.msg, ...Object.entries(l.fields).filter(([k]) => k !== 'Topic').map(([k, v]) => `${k}: ${typeof v === 'string' ? v : JSON.stringify(v)}`)].join('; ');
        this.lastError = { msg: why, at: Date.now() };
        this.onError?.(why);
      }
    }
  }

  // Reads the rest (gobgpd exited: its last lines) and stops.
  stop(): void {
    clearInterval(this.timer);
    this.poll();
  }
}

// gobgpd's log file, opened for appending (its stdout and stderr); emptied
// first when it grew past LOG_MAX_BYTES. Returns the fd and the offset
// where this gobgpd's lines begin.
function openGobgpdLog(file: string): { fd: number; offset: number } {
  const fd = fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_APPEND, 0o640);
  if (fs.fstatSync(fd).size > LOG_MAX_BYTES) fs.ftruncateSync(fd, 0);
  return { fd, offset: fs.fstatSync(fd).size };
}

function fileSize(file: string): number {
  try {
    return fs.statSync(file).size;
  } catch {
    return 0;
  }
}

export class ManagedSpeaker {
  private child?: ChildProcess;
  private adopted?: { pid: number; poll: NodeJS.Timeout };
  private stopping = false;
  private timer?: NodeJS.Timeout;
  private backoffMs = 1000;
  private startedAt = 0;
  restarts = 0;
  apiAddress = '';
  readonly binary: string;
  readonly configFile: string;

  constructor(private readonly o: ManagedSpeakerOptions) {
    this.binary = o.binary ?? findGobgpd();
    this.configFile = path.join(o.dir, 'gobgpd.toml');
    this.pidFile = path.join(o.dir, 'gobgpd.json');
    this.logFile = path.join(o.dir, GOBGPD_LOG);
  }

  readonly logFile: string;
  private follower?: GobgpdLogFollower;

  // The last error or fatal line of gobgpd's log (what a gobgpd that keeps
  // exiting said last), if any.
  // The last problem gobgpd logged about a neighbour (GobgpdLogFollower).
  peerProblem(address: string): { msg: string; at: number } | undefined {
    return this.follower?.peerProblems.get(address);
  }

  get lastError(): { msg: string; at: number } | undefined {
    return this.follower?.lastError ?? this.lastErrorBefore;
  }
  private lastErrorBefore?: { msg: string; at: number };

  private follow(pid: number, offset: number): void {
    this.unfollow();
    this.follower = new GobgpdLogFollower(this.logFile, pid, this.o.log, offset);
  }

  private unfollow(): void {
    if (this.follower === undefined) return;
    this.follower.stop();
    this.lastErrorBefore = this.follower.lastError ?? this.lastErrorBefore;
    this.follower = undefined;
  }

  readonly pidFile: string;

  get pid(): number | undefined {
    return this.child?.pid ?? this.adopted?.pid;
  }

  // The gobgpd an earlier vpcd of this state dir started, if it still runs
  // with the configuration we would write: vpcd was killed, gobgpd was not,
  // and its sessions and routes are still up. Taking it over keeps the
  // guests' traffic flowing across the vpcd restart.
  private adoptable(config: string): { pid: number; api: string } | undefined {
    try {
      const rec = JSON.parse(fs.readFileSync(this.pidFile, 'utf8')) as { pid: number; api: string; config: string };
      if (rec.config !== config || !Number.isInteger(rec.pid) || rec.pid <= 1) return undefined;
      const cmdline = fs.readFileSync(`/proc/${rec.pid}/cmdline`, 'utf8').split('\0');
      if (!path.basename(cmdline[0] ?? '').startsWith('gobgpd') || !cmdline.includes(this.configFile) || !cmdline.includes(rec.api)) return undefined;
      return { pid: rec.pid, api: rec.api };
    } catch {
      return undefined;
    }
  }

  async start(): Promise<void> {
    fs.mkdirSync(this.o.dir, { recursive: true, mode: 0o750 });
    const config = gobgpdConfig(this.o.bgp);
    const old = this.restarts === 0 ? this.adoptable(config) : undefined;
    if (old !== undefined) {
      this.apiAddress = old.api;
      this.startedAt = Date.now();
      // Its log from here on (what it wrote while no vpcd ran is in the file).
      this.follow(old.pid, fileSize(this.logFile));
      const poll = setInterval(() => {
        try {
          process.kill(old.pid, 0);
        } catch {
          clearInterval(poll);
          this.adopted = undefined;
          this.unfollow();
          if (this.stopping) return;
          this.o.log.error({ gobgpdPid: old.pid, restartInMs: this.backoffMs, lastError: this.lastError?.msg }, 'gobgpd (adopted) exited; starting a new one');
          this.schedule();
        }
      }, 1000);
      poll.unref();
      this.adopted = { pid: old.pid, poll };
      this.o.log.info({ gobgpdPid: old.pid, api: old.api, log: this.logFile }, 'gobgpd of the previous vpcd still runs with this configuration: taken over (its sessions and routes stay up)');
      try {
        await this.o.onStart(this.apiAddress, true);
      } catch (err) {
        this.o.log.error({ err: (err as Error).message }, 'the running gobgpd could not be taken over; replacing it');
        clearInterval(poll);
        this.adopted = undefined;
        await killAndWait(old.pid);
        this.unfollow();
        this.restarts++;
        await this.start();
      }
      return;
    }
    const stray = this.strayPid();
    if (stray !== undefined) {
      this.o.log.warn({ gobgpdPid: stray }, 'stopping the gobgpd an earlier vpcd left running with another configuration');
      await killAndWait(stray);
    }
    fs.writeFileSync(this.configFile, config, { mode: 0o640 });
    const port = await freeLoopbackPort();
    this.apiAddress = `127.0.0.1:${port}`;
    // gobgpd 3.10 knows the log levels debug and info only (any other is info).
    const args = ['-f', this.configFile, '-t', 'toml', '--api-hosts', this.apiAddress, '--pprof-disable', '-l', 'info'];
    const out = openGobgpdLog(this.logFile);
    let child: ChildProcess;
    try {
      child = spawn(this.binary, args, { stdio: ['ignore', out.fd, out.fd] });
    } finally {
      fs.closeSync(out.fd); // gobgpd has its own copy
    }
    this.child = child;
    this.startedAt = Date.now();
    child.once('exit', (code, signal) => {
      if (this.child === child) this.child = undefined;
      this.unfollow(); // its last lines: why it exited
      this.o.onExit?.(code, signal);
      if (this.stopping) return;
      this.o.log.error({ code, signal, restartInMs: this.backoffMs, lastError: this.lastError?.msg }, 'gobgpd exited; restarting it');
      this.schedule();
    });
    const spawned = await new Promise<Error | undefined>((resolve) => {
      child.once('spawn', () => resolve(undefined));
      child.once('error', (err) => resolve(err));
    });
    if (spawned !== undefined) {
      this.child = undefined;
      throw new SpeakerError(`gobgpd (${this.binary}) could not be started: ${spawned.message}`);
    }
    this.follow(child.pid!, out.offset);
    this.o.log.info({ gobgpdPid: child.pid, api: this.apiAddress, config: this.configFile, log: this.logFile }, 'gobgpd started');
    fs.writeFileSync(this.pidFile, JSON.stringify({ pid: child.pid, api: this.apiAddress, config }), { mode: 0o640 });
    // A gobgpd that exits at start (a bad localAddress: bind fails) is not
    // waited for until the API times out: vpcd's own start would hang on
    // it, and the exit handler restarts it anyway.
    const died = new Promise<never>((_resolve, reject) => {
      child.once('exit', () => reject(new SpeakerError(`gobgpd exited at start${this.lastError === undefined ? '' : `: ${this.lastError.msg}`}`)));
    });
    try {
      await Promise.race([this.o.onStart(this.apiAddress, false), died]);
    } catch (err) {
      if (child.exitCode !== null || child.signalCode !== null) return; // logged by the exit handler
      this.o.log.error({ err: (err as Error).message }, 'gobgpd started but vpcd could not set it up; restarting it');
      child.kill('SIGKILL');
    }
  }

  // The neighbours changed and the running gobgpd took them through its API
  // (service.ts): gobgpd.toml and the takeover record follow, so that a
  // restart (gobgpd died) and a later vpcd (takeover) see the new ones.
  reconfigure(bgp: ResolvedBgp): void {
    this.o.bgp = bgp;
    const config = gobgpdConfig(bgp);
    fs.writeFileSync(this.configFile, config, { mode: 0o640 });
    const pid = this.pid;
    if (pid !== undefined) fs.writeFileSync(this.pidFile, JSON.stringify({ pid, api: this.apiAddress, config }), { mode: 0o640 });
  }

  private schedule(): void {
    if (this.timer !== undefined || this.stopping) return;
    if (Date.now() - this.startedAt > 60_000) this.backoffMs = 1000;
    const wait = this.backoffMs;
    this.backoffMs = Math.min(30_000, this.backoffMs * 2);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.restarts++;
      this.start().catch((err) => {
        this.o.log.error({ err: (err as Error).message }, 'gobgpd restart failed');
        this.schedule();
      });
    }, wait);
  }

  // A gobgpd recorded in the pid file that still runs our config file.
  private strayPid(): number | undefined {
    try {
      const rec = JSON.parse(fs.readFileSync(this.pidFile, 'utf8')) as { pid: number };
      const cmdline = fs.readFileSync(`/proc/${rec.pid}/cmdline`, 'utf8').split('\0');
      return path.basename(cmdline[0] ?? '').startsWith('gobgpd') && cmdline.includes(this.configFile) ? rec.pid : undefined;
    } catch {
      return undefined;
    }
  }

  // Stops gobgpd (SIGTERM, SIGKILL after 5 s) and does not restart it.
  async stop(): Promise<void> {
    this.stopping = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.adopted !== undefined) {
      clearInterval(this.adopted.poll);
      await killAndWait(this.adopted.pid);
      this.adopted = undefined;
    }
    fs.rmSync(this.pidFile, { force: true });
    const child = this.child;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) {
      this.unfollow();
      return;
    }
    const gone = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), 5000);
    await gone;
    clearTimeout(t);
    this.unfollow();
  }
}

// SIGTERM, then SIGKILL after 5 s; resolves once the process is gone (it is
// not our child: polled).
async function killAndWait(pid: number): Promise<void> {
  const alive = (): boolean => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  const deadline = Date.now() + 5000;
  while (alive() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  if (alive()) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
    while (alive()) await new Promise((r) => setTimeout(r, 20));
  }
}
