// vpcd as a real child process on a private socket and state dir:
// restart and kill -9 restore the same objects, a corrupt state file or an
// invalid config stops the start, SIGHUP reloads (and refuses an invalid
// config without touching what runs), SIGTERM cleans up.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { ApiError, Client } from '../../src/control/client';
import { runCli } from '../../src/control/cli';
import { isLoopback } from '../../src/control/daemon';
import { eventually, frameHex, removeDir, sleep, spawnVpcd, TEST_ENGINE, tempDir, VPCD, type VpcdProcess } from './helpers';

const CONFIG = `${TEST_ENGINE}switches:
  - name: tenant-a
    vni: 1001
    ports:
      - { name: vm1, type: pipe }
`;

describe('vpcd process', () => {
  test('kill -9 then restart restores the same objects (UUIDs, MACs, specs)', async () => {
    const d = await spawnVpcd({ config: CONFIG });
    try {
      // Changes through the API, each acknowledged before the kill.
      await d.client.call('POST', '/v1/switches', { name: 'tenant-b', vni: 1002, macLimit: 100 });
      await d.client.call('POST', '/v1/ports', { name: 'vm2', type: 'pipe', switch: 'tenant-b', mtu: 1400 });
      await d.client.call('POST', '/v1/ports', { name: 'trunk', type: 'pipe', vlans: [{ vlan: 10, switch: 'tenant-a' }, { vlan: 20, switch: 'tenant-b' }] });
      await d.client.call('POST', '/v1/fdb', { switch: 'tenant-b', mac: '02:00:00:00:00:02', port: 'vm2' });
      await d.client.call('PATCH', '/v1/ports/vm1', { mtu: 1300 });
      const before = await d.client.call<Record<string, any>>('GET', '/v1/state');
      const portsBefore = await d.client.call<Record<string, any>>('GET', '/v1/ports');
      await d.kill9();
      // A kill -9 during a write leaves its temp file: the restart removes it, and says so.
      const leftover = path.join(d.stateDir, `.state.json.${d.proc.pid}.tmp`);
      fs.writeFileSync(leftover, '{"format": "vpcd-st');

      // Restart without --config: the state file alone brings everything back.
      const d2 = await spawnVpcd({ dir: d.dir, noConfig: true });
      try {
        assert.deepEqual(fs.readdirSync(d.stateDir), ['state.json', 'vpcd.pid'], 'the leftover is gone (the killed vpcd\'s pid file is taken over)');
        assert.equal(fs.readFileSync(path.join(d.stateDir, 'vpcd.pid'), 'utf8'), `${d2.proc.pid}\n`);
        assert.ok(d2.logs.some((l) => l.includes('removed 1 temp file(s) left by a state write that was cut short') && l.includes(leftover)), d2.logs.join('\n'));
        const after = await d2.client.call<Record<string, any>>('GET', '/v1/state');
        assert.deepEqual(after.state, before.state);
        assert.deepEqual(await d2.client.call('GET', '/v1/ports'), portsBefore);
        const fdb = await d2.client.call<Record<string, any>>('GET', '/v1/switches/tenant-b/fdb');
        assert.deepEqual(fdb.entries.map((e: any) => [e.mac, e.port, e.static]), [['02:00:00:00:00:02', 'vm2', true]]);
      } finally {
        await d2.stop();
      }

      // Restart with the config: API-made objects not in it are removed
      // (the config is the desired state), the config's own keep their UUIDs.
      const d3 = await spawnVpcd({ dir: d.dir });
      try {
        const st = await d3.client.call<Record<string, any>>('GET', '/v1/state');
        assert.deepEqual(st.state.switches.map((s: any) => [s.spec.name, s.uuid]), [['tenant-a', before.state.switches[0].uuid]]);
        assert.deepEqual(st.state.ports.map((p: any) => [p.spec.name, p.spec.mtu, p.spec.mac]),
          [['vm1', undefined, before.state.ports.find((p: any) => p.spec.name === 'vm1').spec.mac]]);
      } finally {
        await d3.stop();
      }
    } finally {
      await d.kill9();
      removeDir(d.dir);
    }
  });

  test('engine options changed in the config, and nothing else, are stored at start: a start without --config and a copy of state.json have them', async () => {
    const d = await spawnVpcd({ config: CONFIG });
    const stateFile = path.join(d.stateDir, 'state.json');
    const storedBuffers = (): unknown => (JSON.parse(fs.readFileSync(stateFile, 'utf8')) as { state: { engine: { bufferCount?: number } } }).state.engine.bufferCount;
    try {
      assert.equal(await d.stop(), 0);
      assert.equal(storedBuffers(), 4096);
      const d2 = await spawnVpcd({ dir: d.dir, config: CONFIG.replace('bufferCount: 4096', 'bufferCount: 8192') });
      try {
        assert.equal((await d2.client.call<any>('GET', '/v1/status')).engine.bufferCount, 8192);
        assert.equal(storedBuffers(), 8192, 'stored before vpcd said ready');
        const api = await d2.client.call<any>('GET', '/v1/state');
        assert.equal(JSON.parse(fs.readFileSync(stateFile, 'utf8')).generation, api.generation, 'the file and the API give one generation');
      } finally {
        await d2.stop();
      }
      const d3 = await spawnVpcd({ dir: d.dir, noConfig: true });
      try {
        assert.equal((await d3.client.call<any>('GET', '/v1/status')).engine.bufferCount, 8192);
      } finally {
        await d3.stop();
      }
    } finally {
      await d.stop();
      removeDir(d.dir);
    }
  });

  test('SIGTERM stops gracefully: exit 0, ports detached, socket removed, state kept', async () => {
    const d = await spawnVpcd({ config: CONFIG });
    try {
      const mode = fs.statSync(d.socket).mode & 0o777;
      assert.equal(mode, 0o660, 'socket mode');
      const code = await d.stop();
      assert.equal(code, 0);
      assert.equal(fs.existsSync(d.socket), false);
      assert.ok(d.logs.some((l) => l.includes('vpcd stopped: engine closed, ports detached')));
      assert.ok(fs.existsSync(path.join(d.stateDir, 'state.json')));
    } finally {
      removeDir(d.dir);
    }
  });

  test('a corrupt state file is reported and vpcd refuses to start (exit 3); the file is not replaced', async () => {
    const dir = tempDir();
    try {
      fs.mkdirSync(path.join(dir, 'state'));
      const file = path.join(dir, 'state', 'state.json');
      fs.writeFileSync(file, '{"format": "vpcd-state", "version": 1, "gen');
      const d = await spawnVpcd({ dir, config: CONFIG, waitReady: false });
      assert.equal(await d.exited, 3);
      assert.match(d.stderr.join(''), /state\.json: not valid JSON/);
      assert.equal(fs.readFileSync(file, 'utf8'), '{"format": "vpcd-state", "version": 1, "gen');
      assert.equal(fs.existsSync(d.socket), false);
      assert.equal(fs.existsSync(path.join(dir, 'state', 'vpcd.pid')), false, 'a start that fails gives the directory back');
    } finally {
      removeDir(dir);
    }
  });

  test('a second vpcd on the same state directory (another socket) exits 5 naming the first; the first runs on', async () => {
    const d = await spawnVpcd({ config: CONFIG });
    try {
      const second = await spawnVpcd({ dir: d.dir, config: CONFIG, waitReady: false, extraArgs: ['--socket', path.join(d.dir, 'other.sock')] });
      assert.equal(await second.exited, 5, second.stderr.join(''));
      assert.match(second.stderr.join(''), new RegExp(`another vpcd \\(pid ${d.proc.pid}\\) uses the state directory .*state; stop it first or give --state-dir`));
      assert.equal((await d.client.call<any>('GET', '/v1/ports')).ports.length, 1, 'the first is untouched');
      await d.stop();
      assert.equal(fs.existsSync(path.join(d.stateDir, 'vpcd.pid')), false, 'a clean stop gives the directory back');
    } finally {
      await d.stop();
      removeDir(d.dir);
    }
  });

  test('a metrics address in use: exit 5 naming it, after a clean stop (socket removed, the engine closed, the state directory given back)', async () => {
    const dir = tempDir();
    const busy = net.createServer();
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', () => r()));
    try {
      const port = (busy.address() as net.AddressInfo).port;
      const d = await spawnVpcd({ dir, config: CONFIG, waitReady: false, extraArgs: ['--metrics', `127.0.0.1:${port}`] });
      assert.equal(await d.exited, 5, d.stderr.join(''));
      assert.match(d.stderr.join(''), new RegExp(`--metrics 127\\.0\\.0\\.1:${port}: cannot listen: the address is in use`));
      assert.equal(fs.existsSync(d.socket), false, 'the socket is removed');
      assert.equal(fs.existsSync(path.join(d.stateDir, 'vpcd.pid')), false, 'the state directory is given back');
      assert.ok(d.logs.some((l) => l.includes('vpcd stopped: engine closed, ports detached')), d.logs.join('\n'));
    } finally {
      busy.close();
      removeDir(dir);
    }
  });

  test('a --socket path longer than a Unix socket can have: vpcd exits 2 naming it (Node would listen on it cut short), vpcctl says the same', async () => {
    const dir = tempDir();
    try {
      const long = path.join(dir, `${'s'.repeat(120)}.sock`);
      const d = await spawnVpcd({ dir, config: CONFIG, waitReady: false, extraArgs: ['--socket', long] });
      assert.equal(await d.exited, 2, d.stderr.join(''));
      const bytes = Buffer.byteLength(long);
      assert.match(d.stderr.join(''), new RegExp(`--socket \\(or VPCD_SOCKET\\) ${long} is ${bytes} bytes, longer than a Unix socket's path can be \\(107\\)`));
      assert.deepEqual(fs.readdirSync(dir).filter((f) => f.endsWith('.sock') || f.startsWith('s')), [], 'no socket, under any name');
      assert.equal(fs.existsSync(path.join(dir, 'state', 'vpcd.pid')), false, 'nothing was started');
      const out: string[] = [];
      const code = await runCli(['--socket', long, 'status'], { out: (t) => out.push(t), err: (t) => out.push(t) });
      assert.equal(code, 3, out.join(''));
      assert.match(out.join(''), new RegExp(`is ${bytes} bytes, longer than a Unix socket's path can be \\(107\\).*--socket or VPCD_SOCKET`));
    } finally {
      removeDir(dir);
    }
  });

  test('vpcd -s names the state directory (vpcctl -s is its socket): one named like a socket is refused (exit 2), nothing made', async () => {
    const dir = tempDir();
    try {
      const d = await spawnVpcd({ dir, config: CONFIG, waitReady: false, extraArgs: ['-s', path.join(dir, 'my.sock')] });
      assert.equal(await d.exited, 2, d.stderr.join(''));
      assert.match(d.stderr.join(''), /--state-dir .*my\.sock looks like a socket's path: vpcd's -s is --state-dir \(vpcctl's is --socket\)/);
      assert.equal(fs.existsSync(path.join(dir, 'my.sock')), false);
      // Only a slip on the command line: a directory that is there, or one
      // given by VPCD_STATE_DIR, is taken as it is named.
      fs.mkdirSync(path.join(dir, 'there.sock'));
      const there = await spawnVpcd({ dir, config: CONFIG, extraArgs: ['-s', path.join(dir, 'there.sock')] });
      await there.stop();
      assert.ok(fs.existsSync(path.join(dir, 'there.sock', 'state.json')), 'an existing directory is used');
    } finally {
      removeDir(dir);
    }
  });

  test('an invalid config at startup is refused with path and line (exit 4)', async () => {
    const dir = tempDir();
    try {
      const d = await spawnVpcd({ dir, config: `${TEST_ENGINE}switches:\n  - name: a\n    vni: 99999999\n`, waitReady: false });
      assert.equal(await d.exited, 4);
      assert.match(d.stderr.join(''), /vpcd\.yaml:4: switches\[0\]\.vni: must be an integer in 1\.\.16777215/);
      assert.equal(fs.existsSync(path.join(dir, 'state', 'state.json')), false, 'nothing was touched');
      assert.equal(fs.existsSync(path.join(dir, 'state', 'vpcd.pid')), false, 'and the directory is given back');
    } finally {
      removeDir(dir);
    }
  });

  test('vpcd --check-config: "config ok" (exit 0) or every error with its line (exit 4); nothing else is touched', () => {
    const dir = tempDir();
    try {
      const file = path.join(dir, 'vpcd.yaml');
      const run = (args: string[]): { status: number | null; stdout: string; stderr: string } =>
        spawnSync(process.execPath, [VPCD, '--check-config', '--state-dir', path.join(dir, 'state'), ...args], { encoding: 'utf8' });
      fs.writeFileSync(file, CONFIG);
      const ok = run(['--config', file]);
      assert.deepEqual([ok.status, ok.stdout, ok.stderr], [0, `${file}: config ok\n`, '']);
      fs.writeFileSync(file, `${CONFIG}  - name: b\n    vni: 99999999\n  - { name: c, vni: x }\n`);
      const bad = run(['--config', file]);
      assert.equal(bad.status, 4);
      assert.match(bad.stderr, /vpcd\.yaml:8: switches\[1\]\.vni: must be an integer in 1\.\.16777215/);
      assert.match(bad.stderr, /vpcd\.yaml:9: switches\[2\]\.vni: must be an integer/);
      assert.doesNotMatch(bad.stderr, /    at /, 'no stack trace');
      const none = run([]);
      assert.deepEqual([none.status, none.stderr], [2, 'vpcd: --check-config needs --config FILE\n']);
      assert.deepEqual(fs.readdirSync(dir), ['vpcd.yaml'], 'no state directory, socket or pid file');
    } finally {
      removeDir(dir);
    }
  });

  test('SIGHUP applies a changed config; an invalid one is refused and what runs is unchanged', async () => {
    const d = await spawnVpcd({ config: CONFIG });
    try {
      fs.writeFileSync(d.configFile, `${CONFIG}      - { name: vm2, type: pipe }\n`);
      d.proc.kill('SIGHUP');
      await eventually(async () => (await d.client.call<any>('GET', '/v1/ports')).ports.length === 2 || undefined);
      const good = await d.client.call<any>('GET', '/v1/state');

      fs.writeFileSync(d.configFile, `${CONFIG}      - { name: vm2, type: pipe }\n      - { name: vm3, type: nonsense }\n`);
      d.proc.kill('SIGHUP');
      await eventually(() => d.logs.some((l) => l.includes('reload refused')) || undefined);
      const line = d.logs.find((l) => l.includes('reload refused'))!;
      assert.match(line, /vpcd\.yaml:8: switches\[0\]\.ports\[2\]\.type/);
      assert.deepEqual(await d.client.call('GET', '/v1/state'), good);

      // The same refusal through the API route.
      await assert.rejects(d.client.call('POST', '/v1/reload'), (err: unknown) =>
        err instanceof ApiError && err.status === 400 && err.code === 'ERR_CONFIG_INVALID');

      // A dry run plans the reload and changes nothing; a field the route
      // does not know is refused, naming it.
      fs.writeFileSync(d.configFile, CONFIG);
      const dry = await d.client.call<any>('POST', '/v1/reload', { dryRun: true });
      assert.deepEqual([dry.applied, dry.summary.delete], [false, 1]);
      assert.deepEqual(await d.client.call('GET', '/v1/state'), good);
      for (const body of [{ dryrun: true }, { dryRun: 'yes' }]) {
        await assert.rejects(d.client.call('POST', '/v1/reload', body), (err: unknown) =>
          err instanceof ApiError && err.status === 400 && err.code === 'ERR_BAD_REQUEST' && /^dry[rR]un: /.test(err.message));
      }
      assert.deepEqual(await d.client.call('GET', '/v1/state'), good);
      const wet = await d.client.call<any>('POST', '/v1/reload', {});
      assert.deepEqual([wet.applied, wet.summary.delete], [true, 1]);

      // An apply of other text than the --config file's is said to last only
      // until the next reload or start; the file's own text is not.
      const STALE = /^vpcd runs with --config .*vpcd\.yaml, which says otherwise: a reload \(SIGHUP\) or restart applies that file again and undoes this change/;
      const other = await d.client.call<any>('POST', '/v1/apply', { config: `${CONFIG}      - { name: vm9, type: pipe }\n`, source: 'other.yaml' });
      assert.equal(other.warnings.filter((w: string) => STALE.test(w)).length, 1, other.warnings.join('\n'));
      fs.writeFileSync(d.configFile, `${CONFIG}      - { name: vm8, type: pipe }\n`);
      // The file's objects, with a comment of the applier's own: the same.
      const same = await d.client.call<any>('POST', '/v1/apply', { config: `# from the change ticket\n${fs.readFileSync(d.configFile, 'utf8')}`, source: 'vpcd.yaml' });
      assert.equal(same.applied, true);
      assert.deepEqual(same.warnings.filter((w: string) => STALE.test(w)), []);
    } finally {
      await d.stop();
      removeDir(d.dir);
    }
  });

  test('an empty config beside running objects is refused on SIGHUP and at start (exit 4); without --config SIGHUP logs that there is nothing to reload', async () => {
    const d = await spawnVpcd({ config: CONFIG });
    try {
      const before = await d.client.call<any>('GET', '/v1/state');
      fs.writeFileSync(d.configFile, ''); // truncated, say, by an editor or a full disk
      d.proc.kill('SIGHUP');
      await eventually(() => d.logs.some((l) => l.includes('reload refused')) || undefined);
      assert.match(d.logs.find((l) => l.includes('reload refused'))!, /ERR_CONFIG_EMPTY.*the configuration is empty/);
      assert.deepEqual(await d.client.call('GET', '/v1/state'), before, 'nothing deleted');
      await d.stop();
      const again = await spawnVpcd({ dir: d.dir, waitReady: false });
      assert.equal(await again.exited, 4, again.logs.join('\n'));
      assert.match(again.stderr.join(''), /the configuration is empty .*it would delete all 2 objects/);

      const bare = await spawnVpcd({ dir: d.dir, noConfig: true });
      bare.proc.kill('SIGHUP');
      await eventually(() => bare.logs.some((l) => l.includes('reload refused')) || undefined);
      assert.match(bare.logs.find((l) => l.includes('reload refused'))!, /started without --config; there is nothing to reload/);
      assert.deepEqual((await bare.client.call<any>('GET', '/v1/state')).state, before.state, 'the state is intact');
      await bare.stop();
    } finally {
      await d.stop();
      removeDir(d.dir);
    }
  });

  test('a second vpcd on the same socket refuses to start (exit 5)', async () => {
    const d = await spawnVpcd({ config: CONFIG });
    try {
      const other = tempDir();
      fs.writeFileSync(path.join(other, 'x.yaml'), CONFIG);
      const d2 = await spawnVpcd({ dir: other, config: CONFIG, waitReady: false, extraArgs: ['--socket', d.socket] });
      assert.equal(await d2.exited, 5);
      assert.match(d2.stderr.join(''), /another vpcd answers on/);
      removeDir(other);
      await sleep(10);
      await d.client.call('GET', '/v1/status');
    } finally {
      await d.stop();
      removeDir(d.dir);
    }
  });
});

// Logs: human-readable lines on a terminal (pino-pretty), JSON when piped
// (every other test here reads JSON through a pipe). `script` gives vpcd a
// pseudo-terminal as its stdout.
describe('vpcd logs on a terminal', () => {
  const hasScript = (() => {
    try {
      execFileSync('script', ['--version'], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  })();

  test('are pretty lines, not JSON; --log-format json keeps JSON', { skip: hasScript ? false : 'needs script(1) from util-linux for a pseudo-terminal' }, async () => {
    for (const format of ['auto', 'json'] as const) {
      const dir = tempDir();
      const socket = path.join(dir, 'vpcd.sock');
      fs.writeFileSync(path.join(dir, 'vpcd.yaml'), CONFIG);
      const cmd = [process.execPath, VPCD, '--socket', socket, '--state-dir', path.join(dir, 'state'), '--metrics', 'off',
        '--config', path.join(dir, 'vpcd.yaml'), '--log-format', format].map((a) => `'${a}'`).join(' ');
      const proc = spawn('script', ['-qfec', `exec ${cmd}`, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] });
      let out = '';
      proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
      try {
        await eventually(() => out.includes('vpcd ready') || undefined, 15000);
        const status = await new Client(socket).call<{ pid: number }>('GET', '/v1/status');
        process.kill(status.pid, 'SIGTERM');
        assert.equal(await exited, 0);
        // eslint-disable-next-line no-control-regex
        const lines = out.replace(/\x1b\[[0-9;]*m/g, '').split(/\r?\n/).filter((l) => l.trim() !== '');
        const ready = lines.find((l) => l.includes('vpcd ready'))!;
        if (format === 'auto') {
          assert.match(ready, /^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: vpcd ready \{/, out);
          assert.ok(lines.every((l) => !l.startsWith('{')), `no JSON line on a terminal:\n${out}`);
        } else {
          assert.equal(JSON.parse(ready).msg, 'vpcd ready');
        }
      } finally {
        proc.kill('SIGKILL');
        removeDir(dir);
      }
    }
  });
});

// A guest's interface comes and goes with the guest: a VM's tap with QEMU,
// a container's veth with its container. A restart must bring up a state
// whose port lost its interface (down until it returns), not refuse it and
// with it every other tenant. vpcd runs in a namespace of the test's own.
describe('ports whose interface is missing', () => {
  const root = process.getuid?.() === 0;
  const ip = (...a: string[]): void => void execFileSync('ip', a);
  test('a restart from the state, and a start from a configuration, make such a port down with a warning; it comes up when the interface appears', { skip: root ? false : 'needs root (a network namespace of its own, veths)' }, async () => {
    const ns = `vpcdi-${process.pid}`;
    ip('netns', 'add', ns);
    const dirs: string[] = [];
    try {
      ip('-n', ns, 'link', 'set', 'lo', 'up');
      const veth = (): void => {
        ip('-n', ns, 'link', 'add', 'vti1', 'type', 'veth', 'peer', 'name', 'vti1p');
        ip('-n', ns, 'link', 'set', 'vti1', 'up');
        ip('-n', ns, 'link', 'set', 'vti1p', 'up');
      };
      veth();
      const config = `${TEST_ENGINE}switches:\n  - name: s1\n    vni: 100\n    ports:\n      - { name: v1, type: afpacket, interface: vti1 }\n      - { name: p1, type: pipe }\n`;
      const d = await spawnVpcd({ netns: ns, noConfig: true });
      dirs.push(d.dir);
      const applied = await d.client.call<{ applied: boolean; warnings: string[] }>('POST', '/v1/apply', { config });
      assert.equal(applied.applied, true);
      assert.deepEqual(applied.warnings.filter((w) => /does not exist/.test(w)), [], 'the interface was there');
      const before = await d.client.call<{ state: unknown }>('GET', '/v1/state');
      ip('-n', ns, 'link', 'del', 'vti1'); // the guest went away
      await d.kill9();

      const port = async (c: VpcdProcess): Promise<Record<string, any>> => (await c.client.call<{ port: Record<string, any> }>('GET', '/v1/ports/v1')).port;
      const d2 = await spawnVpcd({ dir: d.dir, netns: ns, noConfig: true });
      try {
        assert.deepEqual((await d2.client.call<{ state: unknown }>('GET', '/v1/state')).state, (before as { state: unknown }).state, 'every object is back');
        const v1 = await port(d2);
        assert.equal(v1.link, 'down', JSON.stringify(v1));
        assert.match(JSON.stringify(v1), /interface vti1 does not exist \(yet\); the port comes up when it appears/);
        assert.ok(d2.logs.some((l) => /port \\"v1\\": interface vti1 does not exist \(yet\); the port is down until it appears/.test(l)), d2.logs.join('\n'));
        assert.equal((await port(d2)).switch, 's1');
        veth(); // the guest is back
        await eventually(async () => (await port(d2)).link === 'up' || undefined, 10_000, 100);
      } finally {
        await d2.stop();
      }

      // A first start from a configuration whose interface is not there yet.
      ip('-n', ns, 'link', 'del', 'vti1');
      const d3 = await spawnVpcd({ netns: ns, config });
      dirs.push(d3.dir);
      try {
        assert.equal((await port(d3)).link, 'down');
        assert.ok(d3.logs.some((l) => /interface vti1 does not exist \(yet\)/.test(l)), d3.logs.join('\n'));
        // The API's own create still refuses a missing interface at once (a
        // misspelt name is told, not waited for).
        await assert.rejects(d3.client.call('POST', '/v1/ports', { name: 'v2', type: 'afpacket', interface: 'vti9', switch: 's1' }), (e: ApiError) => e.status === 404 && /vti9 does not exist/.test(e.message));
        // And its log does not first say the port is down until vti9 appears.
        await sleep(100);
        assert.ok(!d3.logs.some((l) => /vti9 does not exist \(yet\)/.test(l)), d3.logs.filter((l) => l.includes('vti9')).join('\n'));
      } finally {
        await d3.stop();
      }
    } finally {
      for (const dir of dirs) removeDir(dir);
      ip('netns', 'del', ns);
    }
  });
});

// The uplink's interface may be missing at a restart too (a bond or VLAN
// interface not made yet): the local switches must come up all the same, the
// uplink down until the interface appears, its VTEP then using the
// interface's MAC as a start with the interface there would have.
describe('an uplink whose interface is missing', () => {
  const root = process.getuid?.() === 0;
  const ip = (...a: string[]): void => void execFileSync('ip', a);
  test('a restart brings up every switch; the uplink comes up with the interface, takes its MAC and resolves its peer', { skip: root ? false : 'needs root (a network namespace of its own, veths)' }, async () => {
    const ns = `vpcdu-${process.pid}`;
    ip('netns', 'add', ns);
    let d: VpcdProcess | undefined;
    try {
      ip('-n', ns, 'link', 'set', 'lo', 'up');
      const config = `${TEST_ENGINE}uplinks:\n  - { name: up0, type: afpacket, interface: vtu0, localIp: 198.18.91.1/24 }\n` +
        'switches:\n  - name: s1\n    vni: 100\n    peers: [198.18.91.2]\n    ports:\n      - { name: p1, type: pipe }\n      - { name: p2, type: pipe }\n';
      d = await spawnVpcd({ netns: ns, config, testHooks: true });
      assert.ok(d.logs.some((l) => /uplink \\"up0\\": interface vtu0 does not exist \(yet\); the uplink is down until it appears/.test(l)), d.logs.join('\n'));
      const uplink = async (): Promise<Record<string, any>> => (await d!.client.call<{ uplink: Record<string, any> }>('GET', '/v1/uplinks/up0')).uplink;
      const standIn = (await uplink()).mac as string;
      // The local switch works meanwhile.
      await d.client.call('POST', '/v1/test/ports/p1/send', { frames: [frameHex('02:00:00:00:0a:02', '02:00:00:00:0a:01')] });
      await eventually(async () => (await d!.client.call<{ frames: string[] }>('POST', '/v1/test/ports/p2/receive', {})).frames.length > 0 || undefined, 5_000, 50);

      // The interface appears; its far end answers ARP for the peer's address.
      ip('-n', ns, 'link', 'add', 'vtu0', 'type', 'veth', 'peer', 'name', 'vtu0p');
      ip('-n', ns, 'addr', 'add', '198.18.91.2/24', 'dev', 'vtu0p');
      ip('-n', ns, 'link', 'set', 'vtu0', 'up');
      ip('-n', ns, 'link', 'set', 'vtu0p', 'up');
      const mac = /link\/ether ([0-9a-f:]{17})/.exec(execFileSync('ip', ['-n', ns, '-o', 'link', 'show', 'vtu0'], { encoding: 'utf8' }))![1]!;
      await eventually(async () => (await uplink()).backend?.attached === true || undefined, 10_000, 100);
      await eventually(async () => (await uplink()).mac === mac || undefined, 5_000, 50);
      assert.notEqual(standIn, mac);
      // vpcctl uplink show lays the backend out as port show does.
      let shown = '';
      await runCli(['--socket', d.socket, 'uplink', 'show', 'up0'], { out: (t) => (shown += t), err: (t) => (shown += t), sleep: async () => undefined });
      assert.match(shown, new RegExp(`^mac +${mac}$`, 'm'));
      assert.match(shown, /^backend:$/m);
      assert.match(shown, /^attached +true$/m);
      // A flood to the peer needs its next hop: the request goes out with the
      // interface's MAC, and the far end's answer comes back to it.
      await d.client.call('POST', '/v1/test/ports/p1/send', { frames: [frameHex('ff:ff:ff:ff:ff:ff', '02:00:00:00:0a:01')] });
      const neighbor = await eventually(async () => (await d!.client.call<{ neighbors: { ip: string; mac: string; state: string }[] }>('GET', '/v1/neighbors')).neighbors.find((n) => n.state === 'reachable'), 10_000, 100);
      assert.equal(neighbor.ip, '198.18.91.2');
      assert.match(execFileSync('ip', ['-n', ns, 'neigh', 'show', '198.18.91.1', 'dev', 'vtu0p'], { encoding: 'utf8' }), new RegExp(`lladdr ${mac}`));
    } finally {
      await d?.stop();
      if (d !== undefined) removeDir(d.dir);
      ip('netns', 'del', ns);
    }
  });
});

// A vhost-user socket in a directory that is gone at a restart (a service's
// runtime directory is removed when it stops): the port waits for it, and
// every other port comes up.
describe('a vhost-user port whose socket directory is missing', () => {
  test('a start brings up the other ports and warns; the port listens once the directory is made', async () => {
    const base = tempDir();
    const dir = path.join(base, 'vms');
    const sock = path.join(dir, 'vm1.sock');
    const config = `${TEST_ENGINE}switches:\n  - name: s1\n    vni: 100\n    ports:\n      - { name: vm1, type: vhostuser, socket: ${sock} }\n      - { name: p1, type: pipe }\n`;
    let d: VpcdProcess | undefined;
    try {
      d = await spawnVpcd({ config });
      assert.ok(d.logs.some((l) => l.includes(`the directory ${dir} of its socket does not exist (yet)`)), d.logs.join('\n'));
      const ports = (await d.client.call<{ ports: { name: string }[] }>('GET', '/v1/ports')).ports.map((p) => p.name).sort();
      assert.deepEqual(ports, ['p1', 'vm1']);
      const vm1 = async (): Promise<Record<string, any>> => (await d!.client.call<{ port: Record<string, any> }>('GET', '/v1/ports/vm1')).port;
      assert.equal((await vm1()).link, 'down');
      assert.match((await vm1()).backend.lastError, /the socket's directory does not exist \(yet\); the port listens when it appears/);
      // A port created by hand is refused at once instead, and the log does
      // not first say that it waits for the directory.
      const other = path.join(base, 'other', 'vm2.sock');
      await assert.rejects(d.client.call('POST', '/v1/ports', { name: 'vm2', type: 'vhostuser', socket: other, switch: 's1' }), (e: ApiError) => e.status >= 400, 'refused');
      await sleep(100);
      assert.ok(!d.logs.some((l) => l.includes(`the directory ${path.dirname(other)} of its socket does not exist (yet)`)), d.logs.filter((l) => l.includes('vm2')).join('\n'));
      fs.mkdirSync(dir);
      await eventually(() => (fs.existsSync(sock) && fs.statSync(sock).isSocket()) || undefined, 5_000, 50);
      await eventually(async () => (await vm1()).backend.lastError === '' || undefined, 5_000, 50);
    } finally {
      await d?.stop();
      if (d !== undefined) removeDir(d.dir);
      removeDir(base);
    }
  });
});

// The metrics endpoint has no authentication: a non-loopback address is
// logged as a warning. vpcd runs in a namespace of the test's own, so
// 0.0.0.0 there reaches nothing but that namespace.
describe('metrics address', () => {
  const root = process.getuid?.() === 0;
  const WARNING = /not a loopback address: anyone who reaches it reads/;

  test('a non-loopback address is logged as a warning; loopback is not', { skip: root ? false : 'needs root (a network namespace of its own)' }, async () => {
    const ns = `vpcdm-${process.pid}`;
    execFileSync('ip', ['netns', 'add', ns]);
    try {
      execFileSync('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
      const open = await spawnVpcd({ netns: ns, config: CONFIG, extraArgs: ['--metrics', '0.0.0.0:0'] });
      const warnings = open.logs.map((l) => JSON.parse(l) as { level: string; msg: string; metrics?: string }).filter((l) => WARNING.test(l.msg));
      await open.stop();
      removeDir(open.dir);
      assert.equal(warnings.length, 1, open.logs.join('\n'));
      assert.equal(warnings[0]!.level, 'warn');
      assert.match(warnings[0]!.metrics ?? '', /^0\.0\.0\.0:\d+$/);

      const loop = await spawnVpcd({ netns: ns, config: CONFIG, metrics: true });
      await loop.stop();
      removeDir(loop.dir);
      assert.match(loop.metrics ?? '', /^127\.0\.0\.1:\d+$/);
      assert.ok(!loop.logs.some((l) => WARNING.test(l)), loop.logs.join('\n'));
    } finally {
      execFileSync('ip', ['netns', 'del', ns]);
    }
  });

  test('a control socket every local user may write is logged as a warning, with its mode; 0660 is not', async () => {
    const WIDE = /the control socket is writable by every local user/;
    const open = await spawnVpcd({ config: CONFIG, extraArgs: ['--socket-mode', '0666'] });
    await open.stop();
    removeDir(open.dir);
    const said = open.logs.map((l) => JSON.parse(l) as { level: string; msg: string; mode?: string }).filter((l) => WIDE.test(l.msg));
    assert.deepEqual(said.map((l) => [l.level, l.mode]), [['warn', '0666']], open.logs.join('\n'));
    const usual = await spawnVpcd({ config: CONFIG });
    await usual.stop();
    removeDir(usual.dir);
    assert.ok(!usual.logs.some((l) => WIDE.test(l)));
  });

  test('isLoopback', () => {
    for (const a of ['127.0.0.1', '127.1.2.3', '::1', '::ffff:127.0.0.1', 'localhost']) assert.equal(isLoopback(a), true, a);
    for (const a of ['0.0.0.0', '::', '198.18.0.1', '2001:db8::1', '::ffff:198.18.0.1', '128.0.0.1']) assert.equal(isLoopback(a), false, a);
  });
});
