// Test helper (not a test file) for the vhost-user QEMU tests: vpcd as a real
// child process with a YAML config (test/control/helpers.ts), its port views
// through the API, and what the process holds (/proc/PID/fd, /proc/PID/maps),
// to show that a guest that goes away leaves nothing behind.

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { ApiError } from '../../src/control/client';
import { type VpcdProcess } from '../control/helpers';
import { sleep } from '../ports/lab';

export interface PortView {
  name: string;
  link?: 'up' | 'down';
  backend?: {
    lastError?: string;
    vhost?: {
      connected: boolean;
      features: string;
      featureNames: string;
      regions: Array<{ guestPhysical: string; size: number; frontendVirtual: string }>;
      queues: Array<{ index: number; ready: boolean; broken: boolean; lastError: string }>;
      connects: number;
      disconnects: number;
    };
  };
}

export async function portView(d: VpcdProcess, name: string): Promise<PortView> {
  const r = await d.client.call<{ port: PortView }>('GET', `/v1/ports/${name}`);
  return r.port;
}

// Waits until `check` holds (it throws an assertion error while not),
// at most `timeoutMs`.
export async function until<T>(check: () => Promise<T> | T, timeoutMs: number, stepMs = 250): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (err) {
      if (Date.now() > end || (err instanceof ApiError && err.status >= 500)) throw err;
      await sleep(stepMs);
    }
  }
}

export interface Holdings {
  fds: number;
  byKind: Record<string, number>; // socket, eventfd, memfd, file, pipe, other anon inodes
  guestMappings: string[]; // /proc/PID/maps lines of shared guest memory (memfd)
  mappedGuestBytes: number;
}

// What the process holds now: its descriptors by kind and its mappings of
// memfd-backed (guest) memory.
export function holdings(pid: number): Holdings {
  const byKind: Record<string, number> = {};
  let fds = 0;
  for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
    let target: string;
    try {
      target = fs.readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      continue; // closed meanwhile
    }
    fds++;
    const kind = target.startsWith('socket:')
      ? 'socket'
      : target.startsWith('pipe:')
        ? 'pipe'
        : target.includes('[eventfd]')
          ? 'eventfd'
          : target.startsWith('/memfd:')
            ? 'memfd'
            : target.startsWith('anon_inode:')
              ? target
              : 'file';
    byKind[kind] = (byKind[kind] ?? 0) + 1;
  }
  const guestMappings: string[] = [];
  let mappedGuestBytes = 0;
  for (const line of fs.readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n')) {
    if (!line.includes('/memfd:')) continue;
    guestMappings.push(line);
    const [range] = line.split(' ');
    const [a, b] = range!.split('-').map((x) => BigInt(`0x${x}`));
    mappedGuestBytes += Number(b! - a!);
  }
  return { fds, byKind, guestMappings, mappedGuestBytes };
}

// The process's holdings at rest: the fewest descriptors seen over a
// second (a client-mode port's connect attempt holds a socket for a moment).
export async function restingHoldings(pid: number): Promise<Holdings> {
  let best = holdings(pid);
  for (let i = 0; i < 10; i++) {
    await sleep(100);
    const h = holdings(pid);
    if (h.fds < best.fds) best = h;
  }
  return best;
}

export function assertSameHoldings(now: Holdings, base: Holdings): void {
  assert.deepEqual(now.guestMappings, [], 'no guest memory is mapped any more');
  assert.equal(now.byKind.memfd ?? 0, 0, 'no memfd descriptor is held');
  assert.equal(now.byKind.eventfd ?? 0, base.byKind.eventfd ?? 0, `eventfds back to the baseline (${JSON.stringify(now.byKind)} vs ${JSON.stringify(base.byKind)})`);
  assert.equal(now.fds, base.fds, `descriptors back to the baseline (${JSON.stringify(now.byKind)} vs ${JSON.stringify(base.byKind)})`);
}

export function linkEvents(d: VpcdProcess, port: string): boolean[] {
  const out: boolean[] = [];
  for (const l of d.logs) {
    try {
      const o = JSON.parse(l) as { event?: string; port?: string; up?: boolean };
      if (o.event === 'link' && o.port === port && typeof o.up === 'boolean') out.push(o.up);
    } catch {
      // not JSON
    }
  }
  return out;
}

export interface EngineStats {
  engine: Record<string, number>;
  ports: Record<string, { counters: Record<string, number>; drops: Record<string, number>; queues?: { queue: number; counters: Record<string, number>; drops: Record<string, number> }[] }>;
  switches: Record<string, { counters: Record<string, number>; drops: Record<string, number> }>;
}

export async function stats(d: VpcdProcess): Promise<EngineStats> {
  return d.client.call<EngineStats>('GET', '/v1/stats');
}

export function sumDrops(s: EngineStats): number {
  let n = 0;
  for (const p of Object.values(s.ports)) for (const v of Object.values(p.drops)) n += v;
  for (const w of Object.values(s.switches)) for (const v of Object.values(w.drops)) n += v;
  return n;
}
