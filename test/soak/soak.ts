// Soak test (npm run soak -- --minutes N [--out DIR]): the switch under
// everything at once for N minutes, while its memory, buffer pool and file
// descriptors are sampled; fails if any of them grows.
//
// Topology (every namespace, veth and address is this run's own; addresses
// from 198.18.0.0/15):
//
//   g1 ─┐                                 ┌─ Linux VTEP (vxlan100 + bridge) ── gb
//   g2 ─┤ afpacket ports   switch (agent) │
//   g3 ─┘ (g3's veth churns)  uplink ─────┘ underlay veth, VXLAN VNI 100 over IPv4
//
// At the same time:
//   - traffic at the maximum rate (bench/trafgen): g1 -> g2 (local), and
//     g2 -> gb (encapsulated, decapsulated by Linux, and back for learning);
//   - TCP from gb to g1 (iperf3, 10 s runs, the guests' default offloads):
//     Linux's VXLAN super-frames go through the engine's large buffers
//     (decapsulated whole, segmented or handed on as TSO frames);
//   - MAC churn: every second 200 frames from fresh source MACs out of g3
//     (learning, floods to the VTEP, aging at 10 s, the MAC limit);
//   - a config apply every second through the Dataplane API (switch aging and
//     MAC limit, port MAC limit and flood, a static MAC added and removed);
//   - a scrape every 500 ms: dp.stats() and dp.schema(), what /metrics reads;
//   - every 15 s g3's veth is deleted under its live port, then the port is
//     deleted, the veth re-created and the port created again.
// Sampled every 2 s from the switch process (the agent): RSS (/proc VmRSS),
// open descriptors (/proc/PID/fd), and the engine's buffers_free and
// large_buffers_free counters.
//
// "Grows": the first 25% of the run (at least 20 s) is warm-up; of the rest,
// the median of the second half is compared with the median of the first
// half. RSS may not rise by more than 8% + 4 MiB, descriptors by more than 2,
// free buffers may not fall by more than 2% of the pool + 1024, free large
// buffers by more than 2% of theirs + 64 (the counters
// excludes the per-thread caches, which hold up to 512 buffers each and move
// it in steps of 256). Medians ignore the moment-to-moment swings (a burst in
// flight, a port being re-created).
//
// Writes DIR/soak.json (samples, verdicts) and DIR/soak.svg (the chart).
import { spawn } from 'node:child_process';
import { readFileSync, readdirSync, writeFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { Lab, run, runAsync, sleep } from '../ports/lab';
import { Agent, eth, guest, linuxVtep, quietNetns, repoRoot, sendFrames, overlaySkipReason } from '../overlay/vxlab';

interface Sample {
  t: number; // seconds since start
  rssMiB: number;
  fds: number;
  buffersFree: number;
  largeFree: number;
}

interface CounterSetLike {
  counters: Record<string, number>;
  drops: Record<string, number>;
  backend?: Record<string, number>;
}

interface Verdict {
  metric: string;
  firstHalf: number;
  secondHalf: number;
  limit: number;
  grew: boolean;
}

const A4 = '198.18.200.1';
const B4 = '198.18.200.2';
const POOL = 16384;
const LARGE = 512; // the engine's default large-buffer count

function args(): { minutes: number; out: string } {
  const a = process.argv.slice(2);
  let minutes = 2;
  let out = path.join(repoRoot(), 'bench', 'results');
  for (let i = 0; i < a.length; i++) {
    if (a[i] === '--minutes') minutes = Number(a[++i]);
    else if (a[i] === '--out') out = a[++i]!;
    else throw new Error(`soak: unknown option ${a[i]} (usage: --minutes N [--out DIR])`);
  }
  if (!(minutes > 0 && minutes <= 120)) throw new Error('soak: --minutes must be in (0, 120]');
  return { minutes, out };
}

function median(v: number[]): number {
  const s = [...v].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function sampleProc(pid: number): { rssMiB: number; fds: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rss = Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? NaN) / 1024;
  return { rssMiB: rss, fds: readdirSync(`/proc/${pid}/fd`).length };
}

export function verdicts(samples: Sample[], totalSeconds: number): Verdict[] {
  const warm = Math.max(20, totalSeconds * 0.25);
  const rest = samples.filter((s) => s.t >= warm);
  if (rest.length < 4) throw new Error(`soak: only ${rest.length} samples after warm-up; run longer`);
  const h1 = rest.slice(0, rest.length >> 1);
  const h2 = rest.slice(rest.length >> 1);
  const cmp = (metric: string, pick: (s: Sample) => number, limit: (first: number) => number, higherIsWorse: boolean): Verdict => {
    const a = median(h1.map(pick));
    const b = median(h2.map(pick));
    const l = limit(a);
    return { metric, firstHalf: a, secondHalf: b, limit: l, grew: higherIsWorse ? b > l : b < l };
  };
  return [
    cmp('rssMiB', (s) => s.rssMiB, (a) => a * 1.08 + 4, true),
    cmp('fds', (s) => s.fds, (a) => a + 2, true),
    cmp('buffersFree', (s) => s.buffersFree, (a) => a - (POOL * 0.02 + 1024), false),
    cmp('largeFree', (s) => s.largeFree, (a) => a - (LARGE * 0.02 + 64), false),
  ];
}

// Four stacked panels, one polyline each; the dashed line is the warm-up end.
export function chart(samples: Sample[], totalSeconds: number, title: string): string {
  const W = 720, H = 170, L = 70, R = 20, T = 30;
  const panels: Array<[string, (s: Sample) => number]> = [
    ['RSS (MiB)', (s) => s.rssMiB],
    ['free buffers', (s) => s.buffersFree],
    ['free large buffers', (s) => s.largeFree],
    ['open fds', (s) => s.fds],
  ];
  const warm = Math.max(20, totalSeconds * 0.25);
  const x = (t: number): number => L + ((W - L - R) * t) / totalSeconds;
  let svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${T + panels.length * H}" font-family="sans-serif" font-size="11">\n`;
  svg += `<rect width="100%" height="100%" fill="white"/><text x="${L}" y="18" font-size="13">${title}</text>\n`;
  panels.forEach(([name, pick], i) => {
    const top = T + i * H + 10, bottom = T + (i + 1) * H - 25;
    const v = samples.map(pick);
    let lo = Math.min(...v), hi = Math.max(...v);
    const pad = Math.max((hi - lo) * 0.1, Math.abs(hi) * 0.02, 1);
    lo -= pad;
    hi += pad;
    const y = (val: number): number => bottom - ((bottom - top) * (val - lo)) / (hi - lo);
    const pts = samples.map((s) => `${x(s.t).toFixed(1)},${y(pick(s)).toFixed(1)}`).join(' ');
    svg += `<rect x="${L}" y="${top}" width="${W - L - R}" height="${bottom - top}" fill="none" stroke="#999"/>\n`;
    svg += `<text x="${L - 6}" y="${top + 10}" text-anchor="end">${hi.toFixed(0)}</text><text x="${L - 6}" y="${bottom}" text-anchor="end">${lo.toFixed(0)}</text>\n`;
    svg += `<text x="${L + 6}" y="${top + 14}" font-weight="bold">${name}</text>\n`;
    svg += `<line x1="${x(warm).toFixed(1)}" y1="${top}" x2="${x(warm).toFixed(1)}" y2="${bottom}" stroke="#aaa" stroke-dasharray="4,3"/>\n`;
    svg += `<polyline fill="none" stroke="#1f77b4" stroke-width="1.5" points="${pts}"/>\n`;
    svg += `<text x="${W - R}" y="${bottom + 14}" text-anchor="end">${totalSeconds.toFixed(0)} s</text><text x="${L}" y="${bottom + 14}">0 s</text>\n`;
  });
  return svg + '</svg>\n';
}

function nonZero(c: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(c).filter(([, v]) => typeof v === 'number' && v !== 0));
}

function counterSet(c: CounterSetLike): Record<string, Record<string, number>> {
  return { counters: nonZero(c.counters), drops: nonZero(c.drops), backend: nonZero(c.backend ?? {}) };
}

function randomMac(n: number): string {
  const b = [0x02, 0xcc, (n >> 24) & 0xff, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff];
  return b.map((x) => x.toString(16).padStart(2, '0')).join(':');
}

async function main(): Promise<void> {
  const { minutes, out } = args();
  const skip = overlaySkipReason(['python3', 'iperf3']);
  if (skip) {
    console.error(`soak: cannot run: ${skip}`);
    process.exit(1);
  }
  const trafgen = path.join(repoRoot(), 'build', 'trafgen');
  const totalMs = minutes * 60_000;
  const lab = new Lab();
  const children = new Set<ReturnType<typeof spawn>>();
  let agent: Agent | undefined;
  let failure: string | undefined;
  const errors: string[] = [];
  const counts = { applies: 0, scrapes: 0, churnFrames: 0, vethCycles: 0, trafgenRuns: 0, framesSent: 0, framesDelivered: 0, tcpRuns: 0, tcpConnectLost: 0, tcpBytes: 0 };
  try {
    // ---- topology
    const nsA = quietNetns(lab, 'A');
    const nsB = quietNetns(lab, 'B');
    lab.vethBetween(nsA, 'up0', nsB, 'eth0');
    run('ip', ['-n', nsB, 'addr', 'add', `${B4}/24`, 'dev', 'eth0']);
    const { br } = linuxVtep(nsB, 100, B4, 'eth0', [A4]);
    const gb = guest(lab, 'gb', nsB, 'gb100', '02:0b:00:00:00:01', '198.19.200.11/24', 1450);
    run('ip', ['-n', nsB, 'link', 'set', 'gb100', 'master', br]);
    const g1 = guest(lab, 'g1', nsA, 'ga1', '02:0a:00:00:00:01', '198.19.200.1/24', 1450);
    const g2 = guest(lab, 'g2', nsA, 'ga2', '02:0a:00:00:00:02', '198.19.200.2/24', 1450);
    const g3 = guest(lab, 'g3', nsA, 'ga3', '02:0a:00:00:00:03', '198.19.200.3/24', 1450);

    agent = new Agent(lab, nsA, { bufferCount: POOL, agentLifetimeMs: totalMs + 120_000 });
    const a = agent;
    await a.call('createSwitch', { name: 's100', vni: 100, agingSeconds: 10, macLimit: 4096 });
    for (const p of ['1', '2', '3']) await a.call('createPort', { name: `p${p}`, type: 'afpacket', interface: `ga${p}`, switch: 's100' });
    await a.call('createUplink', { name: 'up', type: 'afpacket', interface: 'up0', localIp: `${A4}/24` });
    await a.call('addPeer', { switch: 's100', ip: B4 });
    const pid = a.pid;
    if (pid === undefined) throw new Error('soak: no agent pid');

    const t0 = Date.now();
    const end = t0 + totalMs;
    const live = (): boolean => Date.now() < end && failure === undefined;
    const note = (what: string, err: unknown): void => {
      const msg = `${((Date.now() - t0) / 1000).toFixed(1)}s ${what}: ${(err as Error).message ?? String(err)}`;
      if (errors.length < 50) errors.push(msg);
    };

    // ---- traffic at the maximum rate, in bounded segments
    const traffic = async (tx: string, rx: string): Promise<void> => {
      while (live()) {
        const secs = Math.min(20, Math.max(1, Math.floor((end - Date.now()) / 1000)));
        const child = spawn(trafgen, ['--tx', tx, '--rx', rx, '--seconds', String(secs), '--max-seconds', String(secs + 15), '--size', '64', '--macs', '16', '--flows', '64'], {
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        children.add(child);
        lab.own(child);
        let outText = '';
        child.stdout.on('data', (d: Buffer) => (outText += d.toString()));
        child.stderr.on('data', (d: Buffer) => (outText += d.toString()));
        const code = await new Promise<number>((r) => child.on('close', (c) => r(c ?? 1)));
        children.delete(child);
        counts.trafgenRuns++;
        try {
          const j = JSON.parse(outText.trim().split('\n').filter((l) => l.startsWith('{')).pop() ?? '{}') as { sent?: number; delivered?: number };
          counts.framesSent += j.sent ?? 0;
          counts.framesDelivered += j.delivered ?? 0;
        } catch {
          // reported below
        }
        if (code !== 0) note(`trafgen ${tx} -> ${rx} exited ${code}`, new Error(outText.slice(-300)));
      }
    };

    // ---- TCP gb -> g1 over VXLAN, in bounded runs (a server that serves one
    // client and exits, then the client). The rings overflow by design here,
    // so a SYN can be lost: the client waits up to 10 s to connect. Now and
    // then every try within those 10 s is lost (2 runs of 52 in eight soaks on
    // 2026-12-06). Captured on g1 and gb once: g1 received each SYN and
    // answered it, and its SYN-ACKs died in p1's packet ring. g1 is
    // also trafgen's generator at the maximum rate, and p1's ring drops about
    // half of g1's frames (p1's rx_kernel_drops in soak.json). The kernel path
    // carries g1's answers past that ring only while the switch's kernel
    // entries are valid, and every MAC move voids them: both trafgen runs use
    // the same MAC sets, so those MACs move between p1 and p2 thousands of
    // times a second (s100's moved). Such a run counts as tcpConnectLost; the
    // soak fails if most runs are lost (or no TCP data went through).
    const tcp = async (): Promise<void> => {
      while (live()) {
        const secs = Math.min(10, Math.floor((end - Date.now()) / 1000) - 2);
        if (secs < 2) break;
        const server = spawn('ip', ['netns', 'exec', g1.ns, 'iperf3', '-s', '-1', '-B', g1.ip], { stdio: 'ignore' });
        children.add(server);
        lab.own(server);
        await sleep(300);
        const client = spawn('ip', ['netns', 'exec', gb.ns, 'iperf3', '-c', g1.ip, '-t', String(secs), '-J', '--connect-timeout', '10000'], {
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        children.add(client);
        lab.own(client);
        let outText = '';
        let errText = '';
        client.stdout.on('data', (d: Buffer) => (outText += d.toString()));
        client.stderr.on('data', (d: Buffer) => (errText += d.toString()));
        const started = Date.now();
        let killed = false;
        let sockets = '';
        const timer = setTimeout(() => {
          killed = true;
          // What the client's connections were waiting for (retransmits,
          // backoff, unacknowledged data), for the note.
          void runAsync('ip', ['netns', 'exec', gb.ns, 'ss', '-tni', 'dst', g1.ip], 3000).then((r) => {
            sockets = r.out.replace(/\s+/g, ' ');
            client.kill('SIGKILL');
          });
        }, (secs + 15) * 1000);
        const code = await new Promise<number>((r) => client.on('close', (c) => r(c ?? 1)));
        clearTimeout(timer);
        children.delete(client);
        server.kill('SIGKILL');
        children.delete(server);
        counts.tcpRuns++;
        try {
          const j = JSON.parse(outText) as { end?: { sum_received?: { bytes?: number } }; error?: string };
          counts.tcpBytes += j.end?.sum_received?.bytes ?? 0;
          // A connect lost to the overload is expected now and then (see the
          // TCP section above); every other failure is noted.
          if (j.error && /unable to connect.*timed out/i.test(j.error)) counts.tcpConnectLost++;
          else if (j.error) note('iperf3', new Error(j.error));
        } catch {
          const how = killed ? `killed after ${((Date.now() - started) / 1000).toFixed(1)} s (a ${secs} s run)` : `exited ${code}`;
          note(`iperf3 ${how}`, new Error(`${(outText + errText).slice(-300)}${sockets === '' ? '' : ` sockets: ${sockets.slice(0, 1200)}`}`));
        }
      }
    };

    // ---- MAC churn from g3 (its veth comes and goes: failures are expected then)
    const churn = async (): Promise<void> => {
      let n = 1;
      while (live()) {
        const frames: Buffer[] = [];
        for (let i = 0; i < 200; i++) frames.push(eth('ff:ff:ff:ff:ff:ff', randomMac(n++), 0x88b5, Buffer.alloc(46, 0x5a)));
        try {
          counts.churnFrames += await sendFrames(g3.ns, 'eth0', frames);
        } catch {
          // g3's link is down or gone during a veth cycle
        }
        await sleep(1000);
      }
    };

    // ---- a config apply every second
    const applies = async (): Promise<void> => {
      let i = 0;
      while (live()) {
        try {
          const k = i++ % 4;
          if (k === 0) await a.call('updateSwitch', 's100', { agingSeconds: 10 + (i % 3), macLimit: 4096 - (i % 2) });
          else if (k === 1) await a.call('updatePort', 'p1', { macLimit: i % 2 ? 1000 : 0, flood: true });
          else if (k === 2) await a.call('addStaticMac', { switch: 's100', port: 'p2', mac: '02:0d:00:00:00:01' });
          else await a.call('deleteStaticMac', { switch: 's100', mac: '02:0d:00:00:00:01' });
          counts.applies++;
        } catch (err) {
          note('apply', err);
        }
        await sleep(1000);
      }
    };

    // ---- scrapes
    const scrapes = async (): Promise<void> => {
      while (live()) {
        try {
          await a.call('stats');
          await a.call('schema');
          counts.scrapes++;
        } catch (err) {
          note('scrape', err);
        }
        await sleep(500);
      }
    };

    // ---- g3's veth deleted under its live port, then re-created
    const vethCycles = async (): Promise<void> => {
      while (live()) {
        await sleep(15_000);
        if (!live()) break;
        try {
          run('ip', ['-n', nsA, 'link', 'del', 'ga3']);
          await sleep(1000);
          await a.call('deletePort', 'p3');
          lab.vethBetween(nsA, 'ga3', g3.ns, 'eth0');
          lab.ns(nsA, 'sysctl', ['-qw', 'net.ipv6.conf.ga3.disable_ipv6=1']);
          run('ip', ['-n', nsA, 'link', 'set', 'ga3', 'mtu', '1450']);
          lab.configure(g3.ns, 'eth0', g3.mac, '198.19.200.3/24', 1450);
          await a.call('createPort', { name: 'p3', type: 'afpacket', interface: 'ga3', switch: 's100' });
          counts.vethCycles++;
        } catch (err) {
          note('veth cycle', err);
          failure = `veth cycle failed: ${(err as Error).message}`;
        }
      }
    };

    // ---- samples
    const samples: Sample[] = [];
    const sampler = async (): Promise<void> => {
      while (live()) {
        try {
          const st = await a.call<{ engine: Record<string, number> }>('stats');
          const p = sampleProc(pid);
          samples.push({ t: (Date.now() - t0) / 1000, ...p, buffersFree: st.engine.buffers_free ?? NaN, largeFree: st.engine.large_buffers_free ?? NaN });
        } catch (err) {
          note('sample', err);
          if (!a.alive()) failure = `the switch process died: ${a.stderr.slice(-500)}`;
        }
        await sleep(2000);
      }
    };

    console.error(`soak: ${minutes} min: traffic g1->g2 and g2->gb (VXLAN), TCP gb->g1, MAC churn, applies, scrapes, veth cycles`);
    await Promise.all([
      traffic(`afpacket:eth0@${g1.ns}`, `afpacket:eth0@${g2.ns}`),
      traffic(`afpacket:eth0@${g2.ns}`, `afpacket:eth0@${gb.ns}`),
      tcp(),
      churn(),
      applies(),
      scrapes(),
      vethCycles(),
      sampler(),
    ]);
    const seconds = (Date.now() - t0) / 1000;
    const v = failure ? [] : verdicts(samples, seconds);
    const grew = v.filter((x) => x.grew);
    const final = await a.call<{ engine: Record<string, number>; ports: Record<string, CounterSetLike>; switches: Record<string, CounterSetLike> }>('stats');
    const result = {
      minutes,
      seconds,
      date: new Date().toISOString(),
      counts,
      pool: POOL,
      verdicts: v,
      failure: failure ?? null,
      errors,
      // Every port's and the engine's non-zero counters at the end (drop
      // reasons included): where the overload lost its frames.
      ports: Object.fromEntries(Object.entries(final.ports).map(([k, p]) => [k, counterSet(p)])),
      switches: Object.fromEntries(Object.entries(final.switches).map(([k, p]) => [k, counterSet(p)])),
      engine: nonZero(final.engine),
      samples,
    };
    mkdirSync(out, { recursive: true });
    writeFileSync(path.join(out, 'soak.json'), `${JSON.stringify(result, null, 1)}\n`);
    writeFileSync(path.join(out, 'soak.svg'), chart(samples, seconds, `soak: ${minutes} min, ${samples.length} samples (dashed: end of warm-up)`));
    for (const x of v) {
      console.log(`soak: ${x.metric}: first half ${x.firstHalf.toFixed(1)}, second half ${x.secondHalf.toFixed(1)}, limit ${x.limit.toFixed(1)}: ${x.grew ? 'GREW' : 'flat'}`);
    }
    console.log(`soak: ${JSON.stringify(counts)}; ${errors.length} errors noted; wrote ${path.join(out, 'soak.json')} and soak.svg`);
    for (const e of errors.slice(0, 10)) console.log(`soak: noted: ${e}`);
    if (failure) throw new Error(failure);
    if (grew.length) throw new Error(`soak: ${grew.map((x) => x.metric).join(', ')} grew`);
    if (counts.framesDelivered === 0) throw new Error('soak: no traffic was delivered');
    if (counts.tcpBytes === 0) throw new Error('soak: no TCP data went through');
    if (counts.tcpConnectLost * 2 > counts.tcpRuns) throw new Error(`soak: ${counts.tcpConnectLost} of ${counts.tcpRuns} TCP runs could not connect`);
    if (counts.vethCycles === 0 && minutes >= 1) throw new Error('soak: no veth cycle completed');
  } finally {
    for (const c of children) c.kill('SIGKILL');
    if (agent) await agent.close().catch(() => undefined);
    lab.cleanup();
  }
}

if (require.main === module) {
  main().catch((err) => {
    console.error((err as Error).message);
    process.exit(1);
  });
}
