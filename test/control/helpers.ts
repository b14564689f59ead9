// Shared helpers of the control-plane tests: temp dirs, a real vpcd child
// process on a private socket and state dir, frames.

import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Client } from '../../src/control/client';
import type { WriteFn } from '../../src/control/state';

export const ROOT = path.resolve(__dirname, '../../..');
export const VPCD = path.join(ROOT, 'dist/src/control/vpcd.js');
export const VPCCTL = path.join(ROOT, 'dist/src/control/vpcctl.js');

// Small engine: tests run several daemons one after the other.
export const TEST_ENGINE = 'engine: { bufferCount: 4096, hugepages: false, maxPorts: 64, maxSwitches: 64, eventRing: 1024 }\n';

export function tempDir(prefix = 'vpcd-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export function removeDir(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true });
}

export interface VpcdProcess {
  proc: ChildProcess;
  dir: string;
  socket: string;
  stateDir: string;
  configFile: string;
  client: Client;
  metrics?: string; // host:port actually bound
  logs: string[]; // stdout lines (JSON)
  stderr: string[];
  exited: Promise<number | null>;
  stop(): Promise<number | null>; // SIGTERM and wait
  kill9(): Promise<void>;
}

export interface SpawnOptions {
  dir?: string; // reuse (restart)
  config?: string; // YAML text; written to dir/vpcd.yaml
  noConfig?: boolean;
  metrics?: boolean;
  testHooks?: boolean;
  extraArgs?: string[];
  waitReady?: boolean; // default true
  netns?: string; // run vpcd inside this network namespace (ip netns exec)
  wrapper?: string[]; // a command that runs node (e.g. setpriv with its options)
}

export async function spawnVpcd(opts: SpawnOptions = {}): Promise<VpcdProcess> {
  const dir = opts.dir ?? tempDir();
  const socket = path.join(dir, 'vpcd.sock');
  const stateDir = path.join(dir, 'state');
  const configFile = path.join(dir, 'vpcd.yaml');
  if (opts.config !== undefined) fs.writeFileSync(configFile, opts.config);
  const args = [VPCD, '--socket', socket, '--state-dir', stateDir, '--metrics', opts.metrics ? '127.0.0.1:0' : 'off'];
  if (!opts.noConfig) args.push('--config', configFile);
  if (opts.testHooks) args.push('--test-hooks');
  args.push(...(opts.extraArgs ?? []));
  const cmd = [...(opts.netns === undefined ? [] : ['ip', 'netns', 'exec', opts.netns]), ...(opts.wrapper ?? []), process.execPath, ...args];
  const proc = spawn(cmd[0]!, cmd.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  const logs: string[] = [];
  const stderr: string[] = [];
  let ready: (v: boolean) => void;
  const readyP = new Promise<boolean>((r) => (ready = r));
  let metrics: string | undefined;
  let buf = '';
  proc.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      logs.push(line);
      try {
        const o = JSON.parse(line) as { msg?: string; metrics?: string };
        if (o.msg === 'vpcd ready') {
          metrics = o.metrics ?? undefined;
          ready(true);
        }
      } catch {
        // not JSON
      }
    }
  });
  proc.stderr!.on('data', (d: Buffer) => stderr.push(d.toString()));
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => {
    ready(false);
    resolve(code);
  }));
  const v: VpcdProcess = {
    proc, dir, socket, stateDir, configFile, client: new Client(socket), logs, stderr, exited,
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      return exited;
    },
    async kill9() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      await exited;
    },
  };
  if (opts.waitReady !== false) {
    const timer = setTimeout(() => ready(false), 15000);
    const ok = await readyP;
    clearTimeout(timer);
    if (!ok) {
      proc.kill('SIGKILL');
      throw new Error(`vpcd did not become ready (exit ${proc.exitCode}):\n${logs.join('\n')}\n${stderr.join('')}`);
    }
    v.metrics = metrics;
  }
  return v;
}

// A test frame: Ethernet II, experimental EtherType, padded to 60 bytes.
export function frameHex(dst: string, src: string): string {
  const b = Buffer.alloc(60);
  Buffer.from(dst.replace(/:/g, ''), 'hex').copy(b, 0);
  Buffer.from(src.replace(/:/g, ''), 'hex').copy(b, 6);
  b.writeUInt16BE(0x88b5, 12);
  return b.toString('hex');
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

// Retries `fn` until it returns a value other than undefined or false, and
// returns it; an exception ends the wait at once. Not ports/lab.ts's
// untilPasses(), which retries until its check stops throwing.
export async function eventually<T>(fn: () => Promise<T | undefined> | T | undefined, timeoutMs = 5000, stepMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(stepMs);
  }
}

// A state-file write (StateStore's seam) on a nearly full disk: at most
// `room` bytes reach the file in all, then ENOSPC, as write(2) behaves.
export function diskWithRoom(room: number): WriteFn {
  let left = room;
  return (fd, buffer, offset, length, position) => {
    if (left === 0) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
    const n = fs.writeSync(fd, buffer, offset, Math.min(length, left), position);
    left -= n;
    return n;
  };
}
