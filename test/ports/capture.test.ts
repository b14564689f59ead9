// vpcctl capture and vpcctl trace against real traffic: guests in private
// namespaces behind veths, vpcd attaching the switch ends with AF_PACKET,
// tshark decoding what vpcctl wrote (docs/operations.md "Seeing packets").

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ApiError } from '../../src/control/client';
import { eventually, removeDir, spawnVpcd, TEST_ENGINE, VPCCTL, VpcdProcess } from '../control/helpers';
import { Guest, Lab, run, skipReason, sleep } from './lab';

const mac = (n: number): string => `02:00:5e:30:00:${n.toString(16).padStart(2, '0')}`;

interface Ran {
  code: number | null;
  stdout: Buffer;
  stderr: string;
}

// vpcctl as a child process (stdout is a pipe, not a terminal); bounded.
function vpcctl(socket: string, args: string[], timeoutMs = 30_000): { done: Promise<Ran>; kill(signal?: NodeJS.Signals): void } {
  const p = spawn(process.execPath, [VPCCTL, '--socket', socket, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const out: Buffer[] = [];
  let err = '';
  p.stdout.on('data', (d: Buffer) => out.push(d));
  p.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
  const done = new Promise<Ran>((resolve) => p.on('close', (code) => {
    clearTimeout(timer);
    resolve({ code, stdout: Buffer.concat(out), stderr: err });
  }));
  return { done, kill: (signal: NodeJS.Signals = 'SIGKILL') => p.kill(signal) };
}

interface Decoded {
  src: string;
  dst: string;
  protocols: string;
}

function tshark(file: string): Decoded[] {
  const out = run('tshark', ['-r', file, '-n', '-T', 'fields', '-E', 'separator=|', '-e', 'eth.src', '-e', 'eth.dst', '-e', 'frame.protocols'], 30_000);
  return out.split('\n').filter((l) => l.trim() !== '').map((l) => {
    const [src, dst, protocols] = l.split('|');
    return { src: src!, dst: dst!, protocols: protocols! };
  });
}

interface Setup {
  lab: Lab;
  d: VpcdProcess;
  g1: Guest;
  g2: Guest;
  g3: Guest;
  tmp: string;
}

async function withSetup(t: { skip(msg: string): void }, fn: (s: Setup) => Promise<void>): Promise<void> {
  const reason = skipReason(['ip', 'ping', 'tshark']);
  if (reason !== undefined) {
    t.skip(reason);
    return;
  }
  const lab = new Lab();
  let d: VpcdProcess | undefined;
  try {
    const g1 = lab.vethGuest('g1', lab.name('s1'), mac(1), '198.18.30.1/24');
    const g2 = lab.vethGuest('g2', lab.name('s2'), mac(2), '198.18.30.2/24');
    const g3 = lab.vethGuest('g3', lab.name('s3'), mac(3), '198.18.30.3/24');
    // No IPv6 chatter (router solicitations, ND): the frames are the test's.
    for (const g of [g1, g2, g3]) lab.ns(g.ns, 'sysctl', ['-qw', 'net.ipv6.conf.all.disable_ipv6=1']);
    d = await spawnVpcd({
      config: `version: 1\n${TEST_ENGINE}switches:\n  - name: a\n    vni: 100\n    ports:\n` +
        `      - { name: p1, type: afpacket, interface: ${lab.name('s1')} }\n` +
        `      - { name: p2, type: afpacket, interface: ${lab.name('s2')} }\n` +
        `      - { name: p3, type: afpacket, interface: ${lab.name('s3')}, mtu: 1400 }\n`,
    });
    await fn({ lab, d, g1, g2, g3, tmp: d.dir });
  } finally {
    if (d !== undefined) {
      await d.stop();
      removeDir(d.dir);
    }
    lab.cleanup();
  }
}

// ARP and ICMP from g1 to g2, a round every 100 ms, until `until` settles
// (at most 30 s). Bounded by time, not by rounds: the captures (each a
// vpcctl process) may attach seconds after the traffic starts on a busy
// machine, and 40 quick rounds once ended before they had (CI saw "1 frames
// captured" of 6).
async function traffic(lab: Lab, from: Guest, to: string, until: Promise<unknown>, extra: string[] = []): Promise<void> {
  let done = false;
  void until.finally(() => (done = true));
  const end = Date.now() + 30_000;
  while (!done && Date.now() < end) {
    lab.ns(from.ns, 'ip', ['neigh', 'flush', 'dev', from.dev]);
    await lab.nsAsync(from.ns, 'ping', ['-c', '1', '-W', '1', ...extra, to], 5000);
    await sleep(100);
  }
}

test('vpcctl capture: pcap that tshark decodes, ARP and ICMP, with the direction asked for (file and stdout)', async (t) => {
  await withSetup(t, async ({ lab, d, g1, g2, tmp }) => {
    const inFile = path.join(tmp, 'in.pcap');
    const outFile = path.join(tmp, 'out.pcap');
    const cin = vpcctl(d.socket, ['capture', 'p1', '--direction', 'in', '--count', '6', '--seconds', '25', '-w', inFile]);
    const cout = vpcctl(d.socket, ['capture', 'port:p1', '--direction', 'out', '--count', '6', '--seconds', '25', '-w', outFile]);
    const csw = vpcctl(d.socket, ['capture', 'a', '--count', '8', '--seconds', '25', '--snaplen', '60']);  // a switch, to stdout
    const all = Promise.all([cin.done, cout.done, csw.done]);
    await traffic(lab, g1, g2.ip, all);
    const [rin, rout, rsw] = await all;
    assert.equal(rin.code, 0, rin.stderr);
    assert.equal(rout.code, 0, rout.stderr);
    assert.equal(rsw.code, 0, rsw.stderr);
    assert.match(rin.stderr, /^6 frames captured\n$/);

    const fin = tshark(inFile);
    const fout = tshark(outFile);
    t.diagnostic(`in: ${JSON.stringify(fin)}\nout: ${JSON.stringify(fout)}`);
    assert.equal(fin.length, 6);
    assert.equal(fout.length, 6);
    // In on p1: sent by g1. Out on p1: towards g1, from g2.
    for (const f of fin) assert.equal(f.src, g1.mac, JSON.stringify(f));
    for (const f of fout) assert.equal(f.src, g2.mac, JSON.stringify(f));
    for (const f of [...fin, ...fout]) assert.match(f.protocols, /^eth:ethertype:(arp|ip:icmp)/, JSON.stringify(f));
    assert.ok(fin.some((f) => /arp/.test(f.protocols)) && fin.some((f) => /icmp/.test(f.protocols)), 'both ARP and ICMP from g1');

    // The switch capture went to stdout (not a terminal): pcap too, cut at 60 bytes.
    const swFile = path.join(tmp, 'switch.pcap');
    fs.writeFileSync(swFile, rsw.stdout);
    assert.equal(rsw.stdout.readUInt32LE(16), 60, 'snaplen in the file header');
    const fsw = tshark(swFile);
    assert.equal(fsw.length, 8);
    assert.ok(fsw.some((f) => f.src === g1.mac) && fsw.some((f) => f.src === g2.mac), JSON.stringify(fsw));
    // tshark reads it from a pipe too (vpcctl capture ... | tshark -r -).
    const piped = run('sh', ['-c', `tshark -r - -n -T fields -e eth.src < ${swFile}`], 30_000).trim().split('\n');
    assert.equal(piped.length, 8);
  });
});

test('vpcctl capture: killing vpcctl removes the engine\'s capture (no leak); bad requests name the field', async (t) => {
  await withSetup(t, async ({ d }) => {
    const start = (): Promise<unknown> => d.client.stream('/v1/capture?port=p2&seconds=1', () => undefined);
    const kernelPath = async (): Promise<{ status: string; paused: number }> => ({
      status: (await d.client.call<{ port: { backend: { kernelPath: string } } }>('GET', '/v1/ports/p1')).port.backend.kernelPath,
      paused: (await d.client.call<{ engine: Record<string, number> }>('GET', '/v1/stats')).engine.kernel_path_paused!,
    });
    // Eight captures run at once at most: fill them with vpcctl processes,
    // each attached once its file has the pcap header.
    const files = Array.from({ length: 8 }, (_, i) => path.join(d.dir, `kill${i}.pcap`));
    const procs = files.map((f) => vpcctl(d.socket, ['capture', 'p1', '-w', f]));
    try {
      await eventually(() => files.every((f) => fs.existsSync(f) && fs.statSync(f).size >= 24) || undefined, 20_000, 100);
      await assert.rejects(start(), (e: ApiError) => e.code === 'ERR_LIMIT' && /at most 8 captures/.test(e.message));
      // The kernel path is off while they run, and the port says so.
      const paused = await eventually(async () => {
        const kp = await kernelPath();
        return kp.paused === 1 ? kp : undefined;
      }, 5000);
      assert.match(paused.status, /^paused: a capture or trace is running, so every frame goes through the engine until it ends; then on: /);
    } finally {
      for (const p of procs) p.kill();
    }
    const ended = await Promise.all(procs.map((p) => p.done));
    assert.ok(ended.every((r) => r.code === null), 'killed, not ended by themselves');
    // vpcd noticed the clients go and removed their captures.
    await eventually(async () => {
      try {
        await start();
        return true;
      } catch {
        return undefined;
      }
    }, 15_000, 200);
    const back = await eventually(async () => {
      const kp = await kernelPath();
      return kp.paused === 0 ? kp : undefined;
    }, 5000);
    assert.match(back.status, /^on: /, 'every capture ended: the kernel path is back');

    await assert.rejects(d.client.stream('/v1/capture?port=nope', () => undefined), (e: ApiError) => e.status === 404 && /nope/.test(e.message));
    await assert.rejects(d.client.stream('/v1/capture?port=p1&direction=sideways', () => undefined), (e: ApiError) => e.status === 400 && e.body.error !== undefined && (e.body.error as { field?: string }).field === 'direction');
    await assert.rejects(d.client.stream('/v1/capture?port=p1&switch=a', () => undefined), (e: ApiError) => e.status === 400);
    const r = await vpcctl(d.socket, ['capture', 'nothing', '--count', '1']).done;
    assert.equal(r.code, 5, r.stderr);
    assert.match(r.stderr.toString(), /no port or switch named "nothing"/); // a bare name is looked up as both
    for (const [file, why] of [['/nonexistent-dir/x.pcap', 'its directory does not exist'], [os.tmpdir(), 'it is a directory']]) {
      const w = await vpcctl(d.socket, ['capture', 'p1', '--count', '1', '-w', file]).done;
      assert.equal(w.code, 2, w.stderr.toString());
      assert.equal(w.stderr.toString(), `vpcctl: capture: cannot write ${file}: ${why}\n`, 'one line, no stack trace');
    }
  });
});

test('vpcctl trace: a forwarded frame shows rx, classify, learn, lookup and tx; a dropped one names its reason', async (t) => {
  await withSetup(t, async ({ lab, d, g1, g2, g3 }) => {
    const tr = vpcctl(d.socket, ['trace', '--count', '2', '--port', 'p1', '--seconds', '20']);
    await traffic(lab, g1, g2.ip, tr.done);
    const r = await tr.done;
    assert.equal(r.code, 0, r.stderr);
    const text = r.stdout.toString();
    t.diagnostic(text);
    assert.match(text, /^Frame 1: port p1, \d+ bytes\n/);
    assert.match(text, /Frame 2: port p1/);
    for (const stage of ['rx', 'classify', 'learn', 'lookup', 'tx']) assert.match(text, new RegExp(`^  \\d\\d:\\d\\d:\\d\\d\\.\\d{6} ${stage} `, 'm'), stage);
    assert.match(text, /classify +switch a \(vni 100\), member \d+, untagged/);
    assert.match(text, /tx +port p2, \d+ bytes/);
    assert.doesNotMatch(text, / drop /);

    // p3's MTU is 1400: a 1450-byte ping from g3 (MTU 1500) is too long.
    // Sent without DF (-M dont): with DF the switch answers the first one
    // with ICMP fragmentation-needed, g3 learns MTU 1400 and cuts the next
    // ones itself, so a trace that starts late would see no long frame.
    await lab.nsAsync(g3.ns, 'ping', ['-c', '1', '-W', '1', g2.ip], 5000);  // ARP first
    // Up to 3 frames: ARP may come first (g2 asking for g3, or g3 refreshing).
    const tr2 = vpcctl(d.socket, ['--json', 'trace', '--count', '3', '--port', 'p3', '--seconds', '20']);
    let done = false;
    void tr2.done.finally(() => (done = true));
    for (let i = 0; i < 40 && !done; i++) await lab.nsAsync(g3.ns, 'ping', ['-c', '1', '-W', '1', '-M', 'dont', '-s', '1450', g2.ip], 5000);
    const r2 = await tr2.done;
    assert.equal(r2.code, 0, r2.stderr);
    const j = JSON.parse(r2.stdout.toString()) as { records: { port: string; length: number; lines: { stage: string; text: string }[] }[] };
    assert.equal(j.records.length, 3);
    const rec = j.records.find((x) => x.length === 1492);
    assert.ok(rec !== undefined, `the 1492-byte frame was traced: ${JSON.stringify(j.records)}`);
    assert.equal(rec.port, 'p3');
    assert.deepEqual(rec.lines.map((l) => l.stage), ['rx', 'drop']);
    assert.match(rec.lines[1]!.text, /^oversize: /);
    const st = await d.client.call<{ ports: Record<string, { drops: Record<string, number> }> }>('GET', '/v1/stats');
    assert.ok((st.ports.p3?.drops.oversize ?? 0) >= 1, JSON.stringify(st.ports.p3));

    // Two vpcctl traces: the second replaces the first (one trace runs at a
    // time). The first's end must not stop the second: it says it was
    // replaced, and the second still gets its frames. The first waits long
    // enough (60 s) that only the replacement can end it (a starting vpcctl
    // may take seconds on a loaded machine), and is known to have started
    // when the trace's id moves on (the trace before was on p3 too).
    const current = async (): Promise<{ id: number; port?: string }> => d.client.call('GET', '/v1/trace');
    const before = (await current()).id;
    const t1 = Date.now();
    const first = vpcctl(d.socket, ['trace', '--count', '1000', '--port', 'p3', '--seconds', '60']);
    await eventually(async () => ((await current()).id > before || undefined), 10_000, 50);
    assert.equal((await current()).port, 'p3');
    // Not waited for by its port in GET /v1/trace: p2's own traffic may end
    // it (and vpcctl stop it) before a poll sees it.
    const second = vpcctl(d.socket, ['--json', 'trace', '--count', '2', '--port', 'p2', '--seconds', '25']);
    const f1 = await first.done;
    assert.equal(f1.code, 0, f1.stderr);
    assert.ok(Date.now() - t1 < 30_000, 'the first ended when it was replaced, not at its deadline');
    assert.match(f1.stdout.toString(), /\(\d+ of 1000 frames: another trace replaced this one\)\n$/);
    await traffic(lab, g2, g1.ip, second.done);
    const f2 = await second.done;
    assert.equal(f2.code, 0, f2.stderr);
    const j2 = JSON.parse(f2.stdout.toString()) as { port: string; records: Array<{ port: string }> };
    assert.deepEqual([j2.port, j2.records.length, j2.records.every((x) => x.port === 'p2')], ['p2', 2, true], 'the second trace ran to its count');

    // Ctrl-C on a waiting vpcctl trace stops the trace at once, not at
    // vpcd's deadline (65 s here), and prints what it has.
    const paused = async (): Promise<number> => (await d.client.call<{ engine: Record<string, number> }>('GET', '/v1/stats')).engine.kernel_path_paused!;
    const before3 = (await current()).id;
    const third = vpcctl(d.socket, ['trace', '--count', '1000', '--port', 'p3', '--seconds', '60']);
    await eventually(async () => ((await current()).id > before3 || undefined), 10_000, 50);
    await eventually(async () => ((await paused()) === 1 ? true : undefined), 5000, 50);
    third.kill('SIGINT');
    const f3 = await third.done;
    assert.equal(f3.code, 0, f3.stderr);
    assert.match(f3.stdout.toString(), /\(\d+ of 1000 frames: interrupted\)\n$/);
    await eventually(async () => ((await paused()) === 0 ? true : undefined), 5000, 50);

    // A trace waiting on an idle port pauses the kernel path. Its client
    // gone (no DELETE), vpcd ends it by itself after `seconds` (vpcctl asks
    // for its --seconds plus 5), and the path comes back.
    const t0 = Date.now();
    const { id } = await d.client.call<{ id: number }>('POST', '/v1/trace', { count: 1000, port: 'p3', seconds: 5 }); // more frames than p3's guest sends meanwhile
    await eventually(async () => ((await paused()) === 1 ? true : undefined), 5000, 50);
    await eventually(async () => ((await paused()) === 0 ? true : undefined), 20_000, 100);
    const s = (Date.now() - t0) / 1000;
    assert.ok(s >= 4.9, `ended ${s} s after it started: by vpcd's deadline (5 s), not before`);
    assert.ok((await d.client.call<{ records: unknown[] }>('GET', '/v1/trace')).records.length < 1000, 'the deadline ended it, not its count');
    // vpcd says so in its log.
    const said = await eventually(() => d.logs.map((l) => JSON.parse(l) as { msg: string; trace?: number; seconds?: number }).find((l) => l.trace === id && /^a trace ended at its deadline/.test(l.msg)), 5000);
    assert.equal(said.seconds, 5);
    assert.equal(d.logs.filter((l) => l.includes('a trace ended at its deadline')).length, 1, 'the traces vpcctl stopped (at their count, or on Ctrl-C), or another replaced, are not logged');
  });
});
