// Instructions per frame on the engine's hot path, counted by callgrind.
//
//   npm run bench -- core --callgrind [--only CASE]
//   npm run bench -- vxlan --callgrind [--only CASE]   (passes --suite vxlan)
//   npm run bench -- vhost --callgrind [--only CASE]   (passes --suite vhost)
//
// Each case runs twice under valgrind with the engine stepped on one thread
// (engine_bench --callgrind), collecting only inside Engine::process and
// Engine::flush_tx (rx classification, learning, lookup, flooding, tx flush).
// The vhost suite (virtio_bench --callgrind) collects the whole
// Engine::iterate instead: the ports' rx_burst is the point there (the copy
// out of a guest's transmit queue), so its figures include both ports' code
// and are not comparable with the core rows; its pipe-pipe-64 case is the
// reference collected the same way.
// The two runs differ only in the number of frames, so set-up and priming
// cancel out: (Ir(N2) - Ir(N1)) / (N2 - N1) is the marginal cost of a frame.
// Instruction counts are deterministic, so a change in this figure is a real
// change in the code, not noise.

import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const root = path.resolve(__dirname, '..', '..');

// One entry per benchmark binary. The vxlan suite collects from
// Engine::process( only: the stages process calls (the bridge's and the
// overlay's) are counted inside it, and a second matching --toggle-collect on
// the way in would switch collection off (so no Engine::process* may run
// inside Engine::process).
interface Suite {
  binary: string;
  cases: string[];
  collect: string[];
  out: string;
  frameBytes: number | string;
}
const SUITES: Record<string, Suite> = {
  core: {
    binary: 'engine_bench',
    cases: ['unicast-1k', 'unicast-1m-table', 'unicast-1m', 'single-flow', 'bcast-4'],
    collect: ['vpc::Engine::process*', 'vpc::Engine::flush_tx*'],
    out: 'core-callgrind.json',
    frameBytes: 64,
  },
  vxlan: {
    binary: 'vxlan_bench',
    cases: ['encap-v4', 'decap-v4', 'encap-v6', 'decap-v6'],
    collect: ['vpc::Engine::process(*', 'vpc::Engine::flush_tx*'],
    out: 'vxlan-callgrind.json',
    frameBytes: 64,
  },
  // pipe <-> vhost-user (a guest played by the benchmark over the port's
  // socket and a shared memfd); frame size with FCS in the case name.
  vhost: {
    binary: 'virtio_bench',
    cases: ['pipe-vhost-64', 'vhost-pipe-64', 'pipe-vhost-1518', 'vhost-pipe-1518', 'pipe-pipe-64'],
    collect: ['vpc::Engine::iterate*'],
    out: 'vhost-callgrind.json',
    frameBytes: 'in the case name (with FCS)',
  },
};
let suiteName = 'core';
let suite = SUITES.core;
let binary = path.join(root, 'build', suite.binary);
let CASES = suite.cases;
const N1 = 100_000;
const N2 = 300_000;

function collected(caseName: string, frames: number): number {
  const r = spawnSync(
    'valgrind',
    [
      '--tool=callgrind',
      '--callgrind-out-file=/dev/null',
      ...suite.collect.map((f) => `--toggle-collect=${f}`),
      binary,
      '--callgrind',
      '--only',
      caseName,
      '--frames',
      String(frames),
    ],
    { encoding: 'utf8', maxBuffer: 16 << 20 },
  );
  if (r.error) throw new Error(`valgrind: ${r.error.message} (Debian package: valgrind)`);
  const m = /Collected\s*:\s*(\d+)/.exec(r.stderr);
  if (r.status !== 0 || !m) throw new Error(`valgrind failed for ${caseName}:\n${r.stderr.slice(-2000)}`);
  return Number(m[1]);
}

function main(): void {
  const args = process.argv.slice(2);
  const suiteAt = args.indexOf('--suite');
  if (suiteAt >= 0) {
    suiteName = args[suiteAt + 1];
    if (!SUITES[suiteName]) throw new Error(`--suite: unknown suite '${suiteName}' (known: ${Object.keys(SUITES).join(', ')})`);
    suite = SUITES[suiteName];
    binary = path.join(root, 'build', suite.binary);
    CASES = suite.cases;
  }
  const onlyAt = args.indexOf('--only');
  const cases = onlyAt >= 0 ? [args[onlyAt + 1]] : CASES;
  for (const c of cases) if (!CASES.includes(c)) throw new Error(`--only: unknown case '${c}' (known: ${CASES.join(', ')})`);
  const results: { name: string; instructions_per_frame: number }[] = [];
  for (const c of cases) {
    const a = collected(c, N1);
    const b = collected(c, N2);
    const per = (b - a) / (N2 - N1);
    results.push({ name: c, instructions_per_frame: Math.round(per * 10) / 10 });
    console.log(`${c.padEnd(Math.max(12, ...CASES.map((x) => x.length)))} ${per.toFixed(1).padStart(7)} instructions/frame (callgrind, hot path only)`);
  }
  const out = path.join(root, 'bench', 'results', suite.out);
  fs.writeFileSync(
    out,
    JSON.stringify(
      {
        bench: suiteName,
        mode: 'callgrind',
        frame_bytes: suite.frameBytes,
        collected: suite.collect,
        frames: [N1, N2],
        machine: { cpus: os.cpus().length, cpu_model: os.cpus()[0]?.model ?? 'unknown' },
        cases: results,
      },
      null,
      2,
    ) + '\n',
  );
  console.log(`wrote ${path.relative(root, out)}`);
}

main();
