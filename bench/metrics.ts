// npm run bench -- metrics [--ports N] [--scrapes N]
//
// Cost of one Prometheus scrape of vpcd's /metrics with 1,000 ports (pipe
// ports over 10 switches, counters non-zero): the lock-free counter read
// (dp.stats()) alone, and the whole render (prom-client registry, text
// exposition) that the metrics endpoint serves. Prints the figures and writes
// bench/results/metrics.json.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { Dataplane } from '../src/dataplane';
import { Metrics } from '../src/control/metrics';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

function frame(dst: number, src: number): Buffer {
  const b = Buffer.alloc(60);
  b.writeUInt16BE(0x0200, 0);
  b.writeUInt32BE(dst, 2);
  b.writeUInt16BE(0x0200, 6);
  b.writeUInt32BE(src, 8);
  b.writeUInt16BE(0x88b5, 12);
  return b;
}

function summary(samples: number[]): { mean: number; p50: number; p99: number; min: number; max: number } {
  const s = [...samples].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
  const r = (v: number) => Math.round(v * 1000) / 1000;
  return { mean: r(s.reduce((a, b) => a + b, 0) / s.length), p50: r(q(0.5)), p99: r(q(0.99)), min: r(s[0]!), max: r(s[s.length - 1]!) };
}

async function main(): Promise<void> {
  const ports = arg('ports', 1000);
  const scrapes = arg('scrapes', 50);
  const switches = 10;
  const dp = new Dataplane({ bufferCount: 65536, hugepages: false, maxPorts: ports + 16, maxSwitches: switches + 1 });
  dp.start();
  try {
    const portSwitch = new Map<string, string>();
    for (let s = 0; s < switches; s++) await dp.createSwitch({ name: `sw${s}`, vni: 100 + s });
    for (let p = 0; p < ports; p++) {
      const sw = `sw${p % switches}`;
      await dp.createPort({ name: `p${p}`, type: 'pipe', switch: sw, ringSize: 64 });
      portSwitch.set(`p${p}`, sw);
    }
    // Some traffic so that counters and the FDB are not all zero.
    for (let p = 0; p < ports; p++) dp.pipe(`p${p}`).send([frame((p + switches) % ports, p)]);
    await new Promise((r) => setTimeout(r, 200));
    for (let p = 0; p < ports; p++) dp.pipe(`p${p}`).receive(64);

    const metrics = new Metrics({ dp, portSwitches: (n) => [portSwitch.get(n) ?? ''], generation: () => 1 });
    const statsMs: number[] = [];
    const renderMs: number[] = [];
    let bytes = 0;
    let series = 0;
    for (let i = 0; i < 5; i++) await metrics.render(); // warm-up
    for (let i = 0; i < scrapes; i++) {
      let t0 = process.hrtime.bigint();
      dp.stats();
      statsMs.push(Number(process.hrtime.bigint() - t0) / 1e6);
      t0 = process.hrtime.bigint();
      const text = await metrics.render();
      renderMs.push(Number(process.hrtime.bigint() - t0) / 1e6);
      bytes = Buffer.byteLength(text);
      series = text.split('\n').filter((l) => l !== '' && !l.startsWith('#')).length;
    }
    // The engine keeps running during scrapes: commands applied and
    // iterations before vs after show it was never paused.
    const engineBefore = dp.stats().engine.iterations ?? 0;
    for (let i = 0; i < 10; i++) await metrics.render();
    const engineAfter = dp.stats().engine.iterations ?? 0;

    const result = {
      benchmark: 'metrics',
      ports,
      switches,
      scrapes,
      series,
      bytes,
      statsMs: summary(statsMs),
      renderMs: summary(renderMs),
      engineIterationsDuring10Scrapes: engineAfter - engineBefore,
      node: process.version,
      date: new Date().toISOString(),
    };
    console.log(`metrics scrape with ${ports} ports, ${switches} switches: ${series} series, ${(bytes / 1024).toFixed(0)} KiB`);
    console.log(`  dp.stats() (lock-free counter read): mean ${result.statsMs.mean} ms, p50 ${result.statsMs.p50} ms, p99 ${result.statsMs.p99} ms`);
    console.log(`  full scrape (read + render):         mean ${result.renderMs.mean} ms, p50 ${result.renderMs.p50} ms, p99 ${result.renderMs.p99} ms`);
    console.log(`  engine iterations during 10 scrapes: ${result.engineIterationsDuring10Scrapes} (the engine is never paused)`);
    const out = path.join(__dirname, '../../bench/results/metrics.json');
    fs.mkdirSync(path.dirname(out), { recursive: true });
    fs.writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
    console.log(`  -> ${path.relative(process.cwd(), out)}`);
  } finally {
    dp.close();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
