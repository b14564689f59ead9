// Configuration limits (issue 10, items 3 and 8): a configuration is bounded
// in size, nesting depth and aliases before it is parsed, and every way of
// hitting a limit is a 400 with its own code, through POST /v1/apply, the
// config file at start and on SIGHUP. Client mistakes in the request itself
// (a malformed %-escape) are 4xx too, never 500 ERR_INTERNAL.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import fc from 'fast-check';
import { isMap, isSeq, parseDocument, stringify } from 'yaml';
import { checkConfigLimits, CONFIG_LIMITS, parseConfig } from '../../src/control/config';
import { ControlError } from '../../src/control/errors';
import { eventually, removeDir, ROOT, spawnVpcd, TEST_ENGINE, tempDir } from './helpers';

// The issue's input: 100,000 nested brackets (200 KB).
const BRACKETS = `switches: ${'['.repeat(100000)}${']'.repeat(100000)}`;
// A billion-laughs document: few aliases, each expanding the previous level ten times.
const LAUGHS = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
  ...'bcdefgh'.split('').map((k, i) => `${k}: &${k} [${Array(10).fill(`*${'abcdefgh'[i]}`).join(',')}]`)].join('\n');

function refused(fn: () => unknown, code: string, message?: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ControlError, String(err));
    assert.equal(err.code, code, err.message);
    assert.equal(err.status, 400);
    if (message !== undefined) assert.match(err.message, message);
    return true;
  });
}

// The real nesting depth of a parsed YAML document: collections in
// collections, keys included (the parser's tree, before any conversion).
function depthOf(node: unknown): number {
  if (isMap(node)) return 1 + Math.max(0, ...node.items.map((p) => Math.max(depthOf(p.key), depthOf(p.value))));
  if (isSeq(node)) return 1 + Math.max(0, ...node.items.map(depthOf));
  return 0;
}

describe('configuration limits (parseConfig)', () => {
  test('the issue\'s 100,000 nested brackets: ERR_CONFIG_TOO_DEEP at once, with the line and column', () => {
    refused(() => parseConfig(BRACKETS, 'vpcd.yaml'), 'ERR_CONFIG_TOO_DEEP', /^vpcd\.yaml:1:\d+: the configuration nests more than 32 levels deep$/);
    refused(() => parseConfig(`switches: ${'{a: '.repeat(50000)}1${'}'.repeat(50000)}`), 'ERR_CONFIG_TOO_DEEP');
    refused(() => parseConfig(`${'- '.repeat(100000)}x\n`), 'ERR_CONFIG_TOO_DEEP'); // block sequences on one line
    refused(() => parseConfig(`${'a: '.repeat(100000)}x\n`), 'ERR_CONFIG_TOO_DEEP'); // compact mappings (invalid, still refused first)
    refused(() => parseConfig(`${'? '.repeat(100000)}x\n`), 'ERR_CONFIG_TOO_DEEP');
    refused(() => parseConfig(Array.from({ length: 40 }, (_, i) => `${' '.repeat(i)}k${i}:`).join('\n')), 'ERR_CONFIG_TOO_DEEP'); // a staircase of keys
  });

  test('depth 32 is accepted, 33 refused (the limit is exact for flow nesting)', () => {
    // `x:` is one level, then 31 brackets: 32.
    refused(() => parseConfig(`x: ${'['.repeat(31)}${']'.repeat(31)}`), 'ERR_CONFIG_INVALID', /x: unknown key/);
    refused(() => parseConfig(`x: ${'['.repeat(32)}${']'.repeat(32)}`), 'ERR_CONFIG_TOO_DEEP');
  });

  test('brackets in comments and quoted scalars do not count; quotes cannot hide real ones', () => {
    const deep = '['.repeat(200);
    const ok = `# ${deep}\nswitches:\n  - name: a # ${deep}\n    vni: 1\nx: "${deep}"\ny: '${deep} # not a comment'\nz: |\n  ${deep}\n`;
    refused(() => parseConfig(ok), 'ERR_CONFIG_INVALID', /x: unknown key/);
    refused(() => parseConfig(`switches: ["x #", ${'['.repeat(100)}${']'.repeat(100)}]`), 'ERR_CONFIG_TOO_DEEP');
    refused(() => parseConfig(`switches: ['it''s', "]]]]]]", ${'['.repeat(100)}${']'.repeat(100)}]`), 'ERR_CONFIG_TOO_DEEP');
    refused(() => parseConfig(`switches: [it's, ${'['.repeat(100)}${']'.repeat(100)}]`), 'ERR_CONFIG_TOO_DEEP');
  });

  test('an alias bomb is ERR_CONFIG_ALIASES: by expansion (few aliases) and by count', () => {
    refused(() => parseConfig(LAUGHS), 'ERR_CONFIG_ALIASES', /aliases expand to more than 100 copies/);
    const many = `x: &x 1\nswitches: [${Array(101).fill('*x').join(', ')}]\n`;
    refused(() => parseConfig(many), 'ERR_CONFIG_ALIASES', /^config:2:\d+: more than 100 aliases/);
    refused(() => parseConfig('switches: [*nowhere]\n'), 'ERR_CONFIG_SYNTAX');
    // A few aliases are fine (and their targets validated like any value).
    refused(() => parseConfig('x: &v 0\nswitches: [{ name: a, vni: *v }]\n'), 'ERR_CONFIG_INVALID', /switches\[0\]\.vni/);
  });

  test('a configuration over 4 MiB is ERR_CONFIG_TOO_LARGE, before parsing', () => {
    const big = `# ${'x'.repeat(CONFIG_LIMITS.maxBytes)}\n`;
    refused(() => parseConfig(big, 'big.yaml'), 'ERR_CONFIG_TOO_LARGE', /^big\.yaml: the configuration is 4194307 bytes; at most 4194304 are accepted$/);
    // Bytes, not characters: 2-byte UTF-8 characters count twice.
    refused(() => checkConfigLimits(`#${'é'.repeat(CONFIG_LIMITS.maxBytes / 2)}`), 'ERR_CONFIG_TOO_LARGE');
  });

  test('every example configuration and a large realistic one are within the limits', () => {
    const dir = path.join(ROOT, 'examples');
    for (const f of fs.readdirSync(dir).filter((n) => n.endsWith('.yaml'))) {
      checkConfigLimits(fs.readFileSync(path.join(dir, f), 'utf8'), f, { ...CONFIG_LIMITS, maxDepth: 12 });
    }
    // An engine that holds what the file declares (smaller limits are refused).
    let text = 'engine: { bufferCount: 4096, hugepages: false, maxPorts: 2048, maxSwitches: 256 }\nswitches:\n';
    for (let s = 0; s < 200; s++) {
      text += `  - name: s${s}\n    vni: ${s + 1}\n    ports:\n`;
      for (let p = 0; p < 8; p++) text += `      - { name: p${s}x${p}, type: pipe, lockedMacs: [02:00:00:00:${(s >> 8).toString(16).padStart(2, '0')}:${(s & 255).toString(16).padStart(2, '0')}] }\n`;
    }
    text += 'ports:\n  - name: trunk\n    type: pipe\n    vlans:\n      - vlan: 10\n        switch: s0\n';
    assert.equal(parseConfig(text).ports.length, 1601);
  });

  test('property: the depth check never counts lower than the real nesting (any YAML style)', () => {
    const value = fc.letrec((tie) => ({
      node: fc.oneof({ depthSize: 'small', withCrossShrink: true }, tie('leaf'), tie('list'), tie('map')),
      leaf: fc.oneof(fc.integer(), fc.constantFrom('x', 'a b', "it's", '[', '# c', ']: {'), fc.boolean()),
      list: fc.array(tie('node'), { maxLength: 3 }),
      map: fc.dictionary(fc.constantFrom('k', 'name', 'a-b', '[x]'), tie('node'), { maxKeys: 3 }),
    })).node;
    fc.assert(fc.property(value, fc.boolean(), fc.integer({ min: 0, max: 4 }), (v, flow, indentSeq) => {
      const text = stringify({ top: v }, { collectionStyle: flow ? 'flow' : 'block', indentSeq: indentSeq % 2 === 0 });
      const real = depthOf(parseDocument(text).contents);
      // Refused at any limit below the real depth...
      if (real > 1) refused(() => checkConfigLimits(text, 'p', { ...CONFIG_LIMITS, maxDepth: real - 1 }), 'ERR_CONFIG_TOO_DEEP');
      // ...and accepted at twice the real depth.
      checkConfigLimits(text, 'p', { ...CONFIG_LIMITS, maxDepth: 2 * real });
    }), { numRuns: 300, seed: 10 });
  });
});

describe('limits and client errors through vpcd', () => {
  test('POST /v1/apply: 400 with the limit\'s code, and vpcd lives on; a malformed %-escape is 400', async () => {
    const d = await spawnVpcd({ config: TEST_ENGINE });
    try {
      for (let i = 0; i < 5; i++) {
        const r = await d.client.raw('POST', '/v1/apply', { config: BRACKETS });
        assert.equal(r.status, 400);
        assert.equal((r.body as any).error.code, 'ERR_CONFIG_TOO_DEEP');
      }
      const bomb = await d.client.raw('POST', '/v1/apply', { config: LAUGHS });
      assert.equal(bomb.status, 400);
      assert.equal((bomb.body as any).error.code, 'ERR_CONFIG_ALIASES');
      const big = await d.client.raw('POST', '/v1/apply', { config: `# ${'x'.repeat(CONFIG_LIMITS.maxBytes)}\n` });
      assert.equal(big.status, 400);
      assert.equal((big.body as any).error.code, 'ERR_CONFIG_TOO_LARGE');
      for (const p of ['/v1/switches/%ZZ', '/v1/ports/%E0%A4%A', '/v1/peers/a/%ZZ', '/v1/fdb/%/02:00:00:00:00:01']) {
        const r = await d.client.raw('GET', p);
        assert.equal(r.status, 400, p);
        assert.equal((r.body as any).error.code, 'ERR_BAD_REQUEST', p);
        assert.match((r.body as any).error.message, /is not valid percent-encoding/);
      }
      assert.equal((await d.client.raw('GET', '/v1/switches/no%20such')).status, 404);
      // An IPv6 address with a zone index passes isIP() but names no VTEP.
      for (const [method, p, body, field] of [
        ['POST', '/v1/peers', { switch: 'a', ip: 'fe80::1%eth0' }, 'ip'],
        ['GET', '/v1/peers/a/fe80::1%25eth0', undefined, 'ip'],
        ['POST', '/v1/fdb', { switch: 'a', mac: '02:00:00:00:00:09', vtep: '2001:db8::2%1' }, 'vtep'],
      ] as const) {
        const r = await d.client.raw(method, p, body);
        assert.equal(r.status, 400, p);
        assert.equal((r.body as any).error.code, 'ERR_INVALID_ARGUMENT');
        assert.equal((r.body as any).error.field, field);
        assert.match((r.body as any).error.message, /has a zone index/);
      }
      // A static entry takes port or vtep: a misspelt vtep is named with the whole list, neither is said so.
      for (const [body, field, message] of [
        [{ switch: 'a', mac: '02:00:00:00:00:09', vtpe: '198.18.0.2' }, 'vtpe', 'vtpe: unknown field; expected one of switch, mac, port, vtep, uuid'],
        [{ switch: 'a', mac: '02:00:00:00:00:09' }, 'port', 'port: give port (a local port) or vtep (a remote VTEP)'],
      ] as const) {
        const r = await d.client.raw('POST', '/v1/fdb', body);
        assert.equal(r.status, 400);
        assert.deepEqual([(r.body as any).error.code, (r.body as any).error.field, (r.body as any).error.message], ['ERR_INVALID_ARGUMENT', field, message]);
      }
      // A trace id is a positive integer, named when it is not (query parameters: ERR_BAD_REQUEST).
      for (const bad of ['0', '-1', '1.5', 'x']) {
        const r = await d.client.raw('DELETE', `/v1/trace?id=${bad}`);
        assert.equal(r.status, 400, bad);
        assert.deepEqual([(r.body as any).error.code, (r.body as any).error.field], ['ERR_BAD_REQUEST', 'id'], bad);
      }
      assert.deepEqual((await d.client.raw('DELETE', '/v1/trace?id=7')).body, { stopped: false }, 'no trace 7 runs: nothing stopped');
      // A trace's deadline: 1..7200 s (vpcctl's --seconds 3600 asks for 3605).
      for (const seconds of [0, 7201, 1.5]) {
        const r = await d.client.raw('POST', '/v1/trace', { count: 1, seconds });
        assert.equal(r.status, 400, String(seconds));
        assert.deepEqual([(r.body as any).error.code, (r.body as any).error.field], ['ERR_INVALID_ARGUMENT', 'seconds'], String(seconds));
      }
      assert.equal((await d.client.raw('GET', '/v1/status')).status, 200);
      assert.equal(d.logs.filter((l) => l.includes('internal error')).length, 0, 'no ERR_INTERNAL logged');
    } finally {
      await d.stop();
      removeDir(d.dir);
    }
  });

  test('engine limits lowered in the config below what the state holds: exit 4 at start, naming each limit and the count, before anything is made', async () => {
    const dir = tempDir();
    try {
      const ports = Array.from({ length: 5 }, (_, i) => `      - { name: p${i}, type: pipe }`).join('\n');
      const d = await spawnVpcd({ dir, config: `${TEST_ENGINE}switches:\n  - name: a\n    vni: 1\n    ports:\n${ports}\n  - { name: b, vni: 2 }\n` });
      await d.stop();
      const low = TEST_ENGINE.replace('maxPorts: 64, maxSwitches: 64', 'maxPorts: 4, maxSwitches: 1');
      const d1 = await spawnVpcd({ dir, config: `${low}switches: [{ name: a, vni: 1 }]\n`, waitReady: false });
      assert.equal(await d1.exited, 4, d1.stderr.join(''));
      const err = d1.stderr.join('');
      assert.match(err, /engine maxPorts 4 is below the 5 the state file holds \(5 ports\); maxSwitches 1 is below the 2 the state file holds \(2 switches\)\. vpcd restores the state before it applies the config/);
      assert.doesNotMatch(d1.logs.join('\n'), /applied|rolled back/, 'nothing was made');
      // With room, the same config starts and removes what it no longer lists.
      const d2 = await spawnVpcd({ dir, config: `${TEST_ENGINE}switches: [{ name: a, vni: 1 }]\n` });
      const st = await d2.client.call<Record<string, any>>('GET', '/v1/state');
      assert.equal(st.state.ports.length, 0);
      await d2.stop();
    } finally {
      removeDir(dir);
    }
  });

  test('config file: a limit hit at start exits 4; on SIGHUP and POST /v1/reload it is refused and vpcd lives on', async () => {
    const dir = tempDir();
    try {
      const d0 = await spawnVpcd({ dir, config: `${TEST_ENGINE}${BRACKETS}\n`, waitReady: false });
      assert.equal(await d0.exited, 4);
      assert.match(d0.stderr.join(''), /vpcd\.yaml:\d+:\d+: the configuration nests more than 32 levels deep/);

      const d = await spawnVpcd({ dir, config: `${TEST_ENGINE}switches: [{ name: a, vni: 1 }]\n` });
      try {
        for (const [text, code] of [[BRACKETS, 'ERR_CONFIG_TOO_DEEP'], [LAUGHS, 'ERR_CONFIG_ALIASES'], [`#${'x'.repeat(CONFIG_LIMITS.maxBytes)}`, 'ERR_CONFIG_TOO_LARGE']]) {
          fs.writeFileSync(d.configFile, text!);
          d.proc.kill('SIGHUP');
          await eventually(() => d.logs.some((l) => l.includes('reload refused') && l.includes(code!)));
          const r = await d.client.raw('POST', '/v1/reload');
          assert.equal(r.status, 400);
          assert.equal((r.body as any).error.code, code);
        }
        const st = await d.client.call<Record<string, any>>('GET', '/v1/state');
        assert.deepEqual(st.state.switches.map((s: any) => s.spec.name), ['a'], 'what runs is unchanged');
      } finally {
        await d.stop();
      }
    } finally {
      removeDir(dir);
    }
  });
});
