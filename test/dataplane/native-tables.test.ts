// The lists TypeScript shares with the engine (command ops, status codes,
// event types, value ranges, counter kinds) are declared once, in the
// engine's X-macros. src/dataplane/native-tables.ts is generated from the
// compiled addon's tables(); these tests fail when the two drift (run
// `npm run gen:tables` after changing a table) and check that both sides
// enforce the same ranges.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { EVENT_BITS, loadNative, NATIVE_LIMITS, NativeCommand, NativeEngine } from '../../src/dataplane/native';
import { NATIVE_TABLES } from '../../src/dataplane/native-tables';
import { NATIVE_CODE_MAP, isErrorCode } from '../../src/dataplane/errors';
import { LIMITS, validateMacLimit, validatePortMacLimit, validateVni } from '../../src/dataplane/validate';
import { toNativeOptions, validateOptions } from '../../src/dataplane/specs';

const plain = (v: unknown): unknown => JSON.parse(JSON.stringify(v));

function withEngine(fn: (e: NativeEngine) => Promise<void>): Promise<void> {
  const mod = loadNative();
  const e = new mod.Engine(toNativeOptions(validateOptions({ hugepages: false, bufferCount: 1024, maxPorts: 4, maxSwitches: 4 })), () => {});
  e.start();
  return fn(e).finally(() => e.close());
}

// The addon throws argument errors synchronously and the engine rejects.
async function nativeError(call: () => Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await call();
  } catch (err) {
    return err as { code: string; message: string };
  }
  return { code: 'OK', message: '' };
}

describe('native tables', () => {
  test('native-tables.ts is what the compiled addon exports (else: npm run gen:tables)', () => {
    const tables = loadNative().tables;
    assert.ok(tables, 'the addon exports tables()');
    assert.deepEqual(plain(tables()), plain(NATIVE_TABLES));
  });

  test('status codes map to known ErrorCodes, OK excepted', () => {
    assert.deepEqual(Object.keys(NATIVE_CODE_MAP), NATIVE_TABLES.statuses.filter((s) => s.code !== 'OK').map((s) => s.code));
    for (const s of NATIVE_TABLES.statuses) {
      if (s.code === 'OK') assert.equal(s.error, '');
      else assert.ok(isErrorCode(s.error), `${s.code} -> ${s.error}`);
    }
  });

  test('event bits follow the engine table order', () => {
    assert.deepEqual(Object.keys(EVENT_BITS), [...NATIVE_TABLES.events]);
    NATIVE_TABLES.events.forEach((type, i) => assert.equal(EVENT_BITS[type], 1 << i));
  });

  test('every op of the table parses in the addon, an unknown one does not', async () => {
    await withEngine(async (e) => {
      for (const op of NATIVE_TABLES.ops) {
        // Without fields an op resolves, names its first missing field, or
        // is refused by the engine; never "unknown command".
        const err = await nativeError(() => e.command({ op } as NativeCommand));
        assert.doesNotMatch(err.message, /unknown command/, op);
        assert.ok(['OK', 'INVALID_ARGUMENT', 'NOT_FOUND'].includes(err.code), `${op}: ${err.code} ${err.message}`);
      }
      const unknown = await nativeError(() => e.command({ op: 'nope' } as unknown as NativeCommand));
      assert.equal(unknown.code, 'INVALID_ARGUMENT');
      assert.match(unknown.message, /op: unknown command 'nope'/);
      assert.deepEqual(await e.command({ op: 'barrier' }), {});
    });
  });

  test('counter kinds come from the engine: the gauges are levels', () => {
    const mod = loadNative();
    const e = new mod.Engine(toNativeOptions(validateOptions({ hugepages: false, bufferCount: 1024, maxPorts: 4, maxSwitches: 4 })), () => {});
    try {
      const s = e.schema();
      const gauges = (['engine', 'port', 'switch', 'peer', 'uplink', 'drop'] as const).flatMap((k) =>
        s[k].filter((i) => i.kind === 'gauge').map((i) => `${k}.${i.name}`),
      );
      assert.deepEqual(gauges.sort(), ['engine.buffers_free', 'engine.iteration_max_ns', 'engine.kernel_path_entries', 'engine.kernel_path_paused', 'engine.large_buffers_free', 'engine.link_watch', 'peer.fdb_learned', 'port.fdb_learned', 'port.link_up', 'switch.fdb_entries', 'switch.fdb_static']);
      for (const k of ['engine', 'port', 'switch', 'peer', 'uplink', 'drop', 'backend'] as const) {
        for (const i of s[k] ?? []) assert.ok(i.kind === 'counter' || i.kind === 'gauge', `${k}.${i.name}: ${i.kind}`);
      }
    } finally {
      e.close();
    }
  });

  test('TypeScript validation and the engine accept the same ranges', async () => {
    // The switch MAC limit once was 1,000,000 here and 16,777,216 in the engine.
    assert.equal(LIMITS.macLimitMax, NATIVE_LIMITS.switchMacLimit.max);
    assert.equal(validateMacLimit(LIMITS.macLimitMax), LIMITS.macLimitMax);
    assert.throws(() => validateMacLimit(LIMITS.macLimitMax + 1), /macLimit: must be an integer in 1\.\.1000000/);
    assert.throws(() => validatePortMacLimit(LIMITS.portMacLimitMax + 1), /macLimit/);
    assert.throws(() => validateVni(LIMITS.vniMax + 1), /vni/);
    await withEngine(async (e) => {
      const sw = (vni: number, macLimit: number) =>
        e.command({ op: 'createSwitch', vni, macLimit, agingMs: 300_000, learning: true, remoteLearning: true, allowUnknownPeers: false, fdbCapacity: 16 });
      assert.equal((await nativeError(() => sw(LIMITS.vniMax + 1, 10))).code, 'INVALID_ARGUMENT');
      await assert.rejects(sw(7, NATIVE_LIMITS.switchMacLimit.max + 1), /macLimit: must be in 1\.\.1000000/);
      const { id } = await sw(7, NATIVE_LIMITS.switchMacLimit.max);
      const set = (agingMs: number) =>
        e.command({ op: 'setSwitch', switchId: id!, macLimit: 10, agingMs, learning: true, remoteLearning: true, allowUnknownPeers: false });
      await assert.rejects(set(LIMITS.agingSecondsMax * 1000 + 1), /agingMs: must be in 1000\.\.1000000000/);
      await set(LIMITS.agingSecondsMax * 1000);
      await assert.rejects(set(LIMITS.agingSecondsMin * 1000 - 1), /agingMs/);
    });
    // Engine options: the addon refuses what TypeScript refuses.
    const mod = loadNative();
    const opts = toNativeOptions(validateOptions({ hugepages: false, bufferCount: 1024 }));
    assert.throws(() => validateOptions({ maxVteps: NATIVE_LIMITS.maxVteps.max + 1 }), /maxVteps/);
    assert.throws(() => new mod.Engine({ ...opts, maxVteps: NATIVE_LIMITS.maxVteps.max + 1 }, () => {}), /maxVteps: must be in 1\.\.65536/);
    assert.throws(() => new mod.Engine({ ...opts, bufferSize: 32768 }, () => {}), /bufferSize: must be in 2048\.\.16384/);
  });
});

// configuration.md writes the engine's ranges out by hand; they come from
// native/netmap/core/limits.h (one owner). Each range the page gives for a
// limit must be the table's, so the page cannot drift from what is enforced
// (it had: bufferCount 256.., headroom 0.., ringSize 16..).
describe('configuration.md ranges', () => {
  test('every engine option and port ringSize the page lists has the range limits.h enforces', () => {
    const page = fs.readFileSync(path.join(__dirname, '../../../docs/configuration.md'), 'utf8');
    // The rows of one section's tables: key -> the rest of the row.
    const section = (heading: string): Map<string, string> => {
      const body = page.split(/^## /m).find((s) => s.startsWith(heading)) ?? '';
      return new Map([...body.matchAll(/^\| `([A-Za-z]+)` \|(.*)\|$/gm)].map((m) => [m[1]!, m[2]!]));
    };
    const engine = section('`engine`');
    const ports = section('Ports');
    let checked = 0;
    const check = (rows: Map<string, string>, id: string): void => {
      const l = NATIVE_TABLES.limits.find((x) => x.id === id)!;
      const text = rows.get(l.field);
      assert.ok(text !== undefined, `${l.field}: no row`);
      const ranges = [...text.matchAll(/(-?\d+)\.\.(-?\d+)/g)].map((r) => `${r[1]}..${r[2]}`);
      assert.ok(ranges.includes(`${l.min}..${l.max}`), `${l.field}: the page says ${ranges.join(', ') || 'no range'}, limits.h ${l.min}..${l.max}`);
      checked++;
    };
    for (const id of ['bufferCount', 'largeBufferCount', 'bufferSize', 'headroom', 'maxPorts', 'maxSwitches', 'maxVteps', 'burst', 'eventRing', 'idleSpinUs', 'cpu']) check(engine, id);
    check(ports, 'ringSize');
    assert.equal(checked, 12);
  });
});
