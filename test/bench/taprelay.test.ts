// The tap relay (bench/taprelay), the ceiling row of `npm run bench -- e2e
// tcp`: it must really carry a guest's frames both ways, give its guests the
// offloads this switch's tap ports give (so the row compares like with
// like), stop by itself, and refuse bad options with a clear error.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { type ChildProcess, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Topo, firstLine, trySh } from '../../bench/e2e/topo';

const RELAY = path.resolve(__dirname, '..', '..', '..', 'build', 'taprelay');
const root = typeof process.getuid === 'function' && process.getuid() === 0;

function exited(child: ChildProcess, ms: number): Promise<{ code: number | null; out: string }> {
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve({ code: null, out }), ms);
    child.once('exit', (code) => {
      clearTimeout(timer);
      // the last stdout chunk may land after 'exit'
      setImmediate(() => resolve({ code, out }));
    });
  });
}

test('taprelay refuses bad options, naming them', () => {
  assert.ok(fs.existsSync(RELAY), `${RELAY} is built with the rest (cmake --build build --target taprelay)`);
  const cases: Array<[string[], RegExp]> = [
    [['--a', 'x0'], /--a and --b name two taps/],
    [['--a', 'x0', '--b', 'x0'], /--a and --b name two taps/],
    [['--a', 'x0', '--b', 'x1', '--max-seconds', '0'], /--max-seconds must be in/],
    [['--a', 'x0', '--b', 'x1', '--frobnicate', '1'], /unknown option --frobnicate/],
    [['--a'], /--a needs a value/],
  ];
  for (const [args, why] of cases) {
    const r = spawnSync(RELAY, args, { encoding: 'utf8', timeout: 5000 });
    assert.equal(r.status, 2, `${args.join(' ')}: exit status`);
    assert.match(r.stderr, why, args.join(' '));
  }
});

test('taprelay carries two guests\' frames both ways with TSO on, then stops when its caller closes stdin or at --max-seconds', { skip: root ? undefined : 'needs root (namespaces and taps)' }, async () => {
  const t = new Topo();
  try {
    const b = t.netns('b');
    const g = t.netns('g');
    const s = t.netns('s');
    const relay = t.spawnIn(b, RELAY, ['--a', 'g0', '--b', 's0', '--cpu', '-1', '--max-seconds', '60']);
    assert.equal(await firstLine(relay, 10_000), 'ready');
    for (const [ns, dev, ip] of [[g, 'g0', '198.18.0.1/24'], [s, 's0', '198.18.0.2/24']] as const) {
      t.ip(b, 'link', 'set', dev, 'netns', ns);
      t.ip(ns, 'addr', 'add', ip, 'dev', dev);
      t.ip(ns, 'link', 'set', dev, 'up');
      // The guest's own defaults, as the switch's tap ports leave them.
      assert.match(t.exec(ns, 'ethtool', ['-k', dev]), /tcp-segmentation-offload: on/, `${dev} keeps TSO`);
    }
    const ping = spawnSync('ip', ['netns', 'exec', g, 'ping', '-c', '3', '-i', '0.2', '-W', '2', '198.18.0.2'], { encoding: 'utf8', timeout: 15_000 });
    assert.equal(ping.status, 0, `ping through the relay: ${ping.stdout}${ping.stderr}`);
    // TCP for a second, with the guests' TSO on: super-frames cross whole.
    t.spawnIn(s, 'iperf3', ['-s', '-1', '-B', '198.18.0.2', '-p', '5201']);
    for (const until = Date.now() + 20_000; !t.exec(s, 'ss', ['-ltn']).includes(':5201');) { // listening: may take seconds on a loaded machine
      assert.ok(Date.now() < until, 'iperf3 listens on 5201 within 20 s');
      await new Promise((r) => setTimeout(r, 100));
    }
    const client = spawnSync('ip', ['netns', 'exec', g, 'iperf3', '-c', '198.18.0.2', '-p', '5201', '-t', '1', '-J', '--connect-timeout', '3000'], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(client.status, 0, `iperf3 through the relay: ${client.stderr}`);
    const got = JSON.parse(client.stdout) as { end: { sum_received: { bytes: number } } };
    assert.ok(got.end.sum_received.bytes >= 1_000_000, `received ${got.end.sum_received.bytes} bytes`);

    const done = exited(relay, 5000);
    relay.stdin!.end();
    const { code, out } = await done;
    assert.equal(code, 0, 'the relay ends when its caller closes stdin');
    const counts = JSON.parse(out.trim().split('\n').pop() ?? '{}') as Record<string, { frames: number; bytes: number }>;
    assert.ok(counts.a_to_b.frames >= 3 && counts.b_to_a.frames >= 3, `frames each way: ${out}`);
    assert.ok(counts.a_to_b.bytes >= 1_000_000, `bytes g0 -> s0: ${counts.a_to_b.bytes}`);
    // Frames longer than the MTU on average: TSO super-frames went through
    // whole, as through the switch's tap ports.
    assert.ok(counts.a_to_b.bytes / counts.a_to_b.frames > 1514, `g0 -> s0: ${counts.a_to_b.frames} frames, ${counts.a_to_b.bytes} bytes`);

    // Left alone, it stops by itself at --max-seconds.
    const bounded = t.spawnIn(b, RELAY, ['--a', 'h0', '--b', 'h1', '--max-seconds', '1']);
    assert.equal(await firstLine(bounded, 10_000), 'ready');
    const end = await exited(bounded, 5000);
    assert.equal(end.code, 0, 'exits by itself within --max-seconds');
    // Its taps were not persistent: they went with it.
    assert.equal(trySh('ip', ['-n', b, 'link', 'show', 'h0']).ok, false, 'the relay leaves no tap behind');
  } finally {
    t.cleanup();
  }
});
