// Instructions per frame on the engine's hot path, counted by callgrind.
//
//   npm run bench -- core --callgrind [--only CASE]
//
// Each case runs twice under valgrind with the engine stepped on one thread
// (engine_bench --callgrind), collecting only inside Engine::process and
// Engine::flush_tx (rx classification, learning, lookup, flooding, tx flush).
// The two runs differ only in the number of frames, so set-up and priming
// cancel out: (Ir(N2) - Ir(N1)) / (N2 - N1) is the marginal cost of a frame.
// Instruction counts are deterministic, so a change in this figure is a real
// change in the code, not noise.

import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const root = path.resolve(__dirname, '..', '..');
const binary = path.join(root, 'build', 'engine_bench');
const CASES = ['unicast-1k', 'unicast-1m', 'single-flow', 'bcast-4'];
const N1 = 100_000;
const N2 = 300_000;

function collected(caseName: string, frames: number): number {
  const r = spawnSync(
    'valgrind',
    [
      '--tool=callgrind',
      '--callgrind-out-file=/dev/null',
      '--toggle-collect=vpc::Engine::process*',
      '--toggle-collect=vpc::Engine::flush_tx*',
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
  const onlyAt = args.indexOf('--only');
  const cases = onlyAt >= 0 ? [args[onlyAt + 1]] : CASES;
  for (const c of cases) if (!CASES.includes(c)) throw new Error(`--only: unknown case '${c}' (known: ${CASES.join(', ')})`);
  const results: { name: string; instructions_per_frame: number }[] = [];
  for (const c of cases) {
    const a = collected(c, N1);
    const b = collected(c, N2);
    const per = (b - a) / (N2 - N1);
    results.push({ name: c, instructions_per_frame: Math.round(per * 10) / 10 });
    console.log(`${c.padEnd(12)} ${per.toFixed(1).padStart(7)} instructions/frame (callgrind, hot path only)`);
  }
  const out = path.join(root, 'bench', 'results', 'core-callgrind.json');
  fs.writeFileSync(
    out,
    JSON.stringify(
      {
        bench: 'core',
        mode: 'callgrind',
        frame_bytes: 64,
        collected: ['vpc::Engine::process', 'vpc::Engine::flush_tx'],
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
