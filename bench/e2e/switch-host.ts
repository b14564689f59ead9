// One instance of this switch for the end-to-end benchmark, run as a child
// process inside a network namespace the harness created:
//
//   ip netns exec NS node dist/bench/e2e/switch-host.js '<HostConfig JSON>'
//
// It builds the switch (ports, optional VXLAN uplink and peers), prints one
// JSON line {"ready": ...} or {"error": ...}, then answers lines on stdin:
// "stats" prints {"stats": dp.stats(), "ports": portStatus()...}; "cpu"
// prints {"cpuNs": N}, the CPU time the engine thread has used so far; "rss"
// prints {"rssBytes": N}, the process's resident memory; "stop" or
// the end of stdin closes the dataplane and exits. It exits by itself after
// `deadlineMs` whatever happens, so no switch outlives a benchmark run.

import * as fs from 'node:fs';
import * as readline from 'node:readline';
import { Dataplane } from '../../src/dataplane';
import type { PeerSpec, PortSpec, UplinkSpec } from '../../src/dataplane';

export interface HostConfig {
  cpu?: number;
  busyPoll?: boolean;
  idleSpinUs?: number; // undefined: the engine's default
  bufferSize?: number; // default 2048 (longer frames, up to a 9000-byte MTU, go to the large buffers)
  bufferCount?: number; // default 65536
  switches: Array<{ name: string; vni: number }>;
  ports: PortSpec[];
  uplink?: UplinkSpec;
  peers?: PeerSpec[];
  deadlineMs: number;
}

// CPU time of this process's engine threads (named vpc-engine), in ns, from
// the scheduler's own accounting (/proc/self/task/TID/schedstat: time spent
// on a CPU), which is exact where utime/stime count 10 ms ticks.
function engineCpuNs(): number {
  let ns = 0;
  for (const tid of fs.readdirSync('/proc/self/task')) {
    try {
      if (fs.readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim() !== 'vpc-engine') continue;
      ns += Number(fs.readFileSync(`/proc/self/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // the thread ended meanwhile
    }
  }
  return ns;
}

function out(obj: unknown): void {
  process.stdout.write(`${JSON.stringify(obj)}\n`);
}

async function main(): Promise<void> {
  const cfg = JSON.parse(process.argv[2] ?? '{}') as HostConfig;
  const deadline = setTimeout(() => {
    out({ error: 'deadline reached, exiting' });
    process.exit(3);
  }, cfg.deadlineMs);
  deadline.unref();

  const dp = new Dataplane({ cpu: cfg.cpu ?? -1, busyPoll: cfg.busyPoll ?? false, ...(cfg.idleSpinUs === undefined ? {} : { idleSpinUs: cfg.idleSpinUs }), hugepages: false, bufferCount: cfg.bufferCount ?? 65536, bufferSize: cfg.bufferSize ?? 2048 });
  dp.start();
  const portsOf = (): Record<string, unknown> => {
    const r: Record<string, unknown> = {};
    for (const p of cfg.ports) r[p.name] = dp.portStatus(p.name);
    return r;
  };
  try {
    for (const s of cfg.switches) await dp.createSwitch({ name: s.name, vni: s.vni });
    if (cfg.uplink) await dp.createUplink(cfg.uplink);
    for (const p of cfg.ports) await dp.createPort(p);
    for (const peer of cfg.peers ?? []) await dp.addPeer(peer);
  } catch (err) {
    const e = err as { code?: string; message?: string };
    out({ error: `${e.code ?? 'ERR'}: ${e.message ?? String(err)}`, code: e.code });
    dp.close();
    process.exit(2);
  }
  out({ ready: true, ports: portsOf(), uplink: dp.uplink() });

  const rl = readline.createInterface({ input: process.stdin });
  const finish = (): void => {
    try {
      dp.close();
    } finally {
      process.exit(0);
    }
  };
  rl.on('line', (line) => {
    const cmd = line.trim();
    if (cmd === 'stats') {
      out({ stats: dp.stats(), ports: portsOf() });
    } else if (cmd === 'cpu') {
      out({ cpuNs: engineCpuNs() });
    } else if (cmd === 'rss') {
      out({ rssBytes: process.memoryUsage().rss });
    } else if (cmd === 'stop') {
      finish();
    }
  });
  rl.on('close', finish);
  process.on('SIGTERM', finish);
  process.on('SIGINT', finish);
}

main().catch((err) => {
  out({ error: err instanceof Error ? err.message : String(err) });
  process.exit(1);
});
