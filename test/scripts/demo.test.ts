// scripts/demo.sh (sudo npm start): the checks it makes before it installs or
// creates anything. A second demo, or a demo beside a running vpcd, is
// refused with a clear message and touches nothing; the hints fit the shell
// that started the demo; npm dependencies are detected as missing on a fresh
// clone. The functions are tested by sourcing the script (which then runs
// nothing); the refusals by running it.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { removeDir, ROOT, tempDir } from '../control/helpers';

const DEMO = path.join(ROOT, 'scripts/demo.sh');

// Runs `snippet` in bash after sourcing demo.sh.
function sourced(snippet: string, env: NodeJS.ProcessEnv, cwd = ROOT): { code: number | null; out: string; err: string } {
  const r = spawnSync('/bin/bash', ['-c', `source '${DEMO}' && ${snippet}`], { cwd, env, encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

function runDemo(env: NodeJS.ProcessEnv): { code: number | null; out: string; err: string } {
  const r = spawnSync('/bin/bash', [DEMO], { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

function demoNamespaces(): string {
  try {
    return execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }).split('\n').filter((l) => l.startsWith('vpcdemo-')).map((l) => l.split(' ')[0]).sort().join('\n');
  } catch {
    return '';
  }
}

describe('demo.sh preflight', () => {
  const root = process.getuid?.() === 0;

  test('hints: "sudo " only for a user who ran sudo npm start, and only where sudo exists', () => {
    const dir = tempDir();
    try {
      const withSudo = path.join(dir, 'with');
      const without = path.join(dir, 'without');
      fs.mkdirSync(withSudo);
      fs.mkdirSync(without);
      fs.writeFileSync(path.join(withSudo, 'sudo'), '#!/bin/sh\nexit 0\n', { mode: 0o755 });
      const prefix = (env: NodeJS.ProcessEnv): string => {
        const r = sourced('printf "[%s]" "$(root_prefix)"', env);
        assert.equal(r.code, 0, r.err);
        return r.out;
      };
      assert.equal(prefix({ PATH: withSudo, SUDO_USER: 'alice' }), '[sudo ]', 'sudo npm start from alice\'s shell');
      assert.equal(prefix({ PATH: withSudo }), '[]', 'a root shell');
      assert.equal(prefix({ PATH: withSudo, SUDO_USER: 'root' }), '[]', 'sudo from a root shell');
      assert.equal(prefix({ PATH: without, SUDO_USER: 'alice' }), '[]', 'no sudo on this machine');
    } finally {
      removeDir(dir);
    }
  });

  test('npm dependencies: missing on a fresh clone, present once installed', () => {
    const dir = tempDir();
    try {
      fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ dependencies: { pino: '^1', yaml: '^2' }, devDependencies: { typescript: '^5' } }));
      const missing = (): number | null => sourced('npm_deps_missing', { PATH: process.env.PATH }, dir).code;
      assert.equal(missing(), 0, 'no node_modules: missing');
      for (const m of ['pino', 'typescript']) {
        fs.mkdirSync(path.join(dir, 'node_modules', m), { recursive: true });
        fs.writeFileSync(path.join(dir, 'node_modules', m, 'package.json'), '{}');
      }
      assert.equal(missing(), 0, 'yaml is still missing');
      fs.mkdirSync(path.join(dir, 'node_modules', 'yaml'));
      fs.writeFileSync(path.join(dir, 'node_modules', 'yaml', 'package.json'), '{}');
      assert.equal(missing(), 1, 'all there');
      assert.equal(sourced('npm_deps_missing', { PATH: process.env.PATH }).code, 1, 'this checkout has them all');
    } finally {
      removeDir(dir);
    }
  });

  test('not root: refused with the command to use', { skip: root && fs.existsSync('/usr/bin/setpriv') ? false : 'needs root and setpriv to run the script as another user' }, () => {
    const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', '/bin/bash', DEMO], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /demo: needs root .*: sudo npm start/);
  });

  test('a running demo (its lock held) is refused; nothing is installed or created', { skip: root ? false : 'needs root (the script refuses earlier otherwise)' }, async () => {
    const dir = tempDir();
    const lock = path.join(dir, 'demo.lock');
    let holder: ChildProcess | undefined;
    try {
      fs.writeFileSync(`${lock}.pid`, 'demo pid 4242, vpcd pid 4243, socket /run/vpc/vpcd.sock\n');
      holder = spawn('flock', [lock, 'sleep', '60'], { stdio: 'ignore' });
      // Held once flock -n fails on it.
      const held = (): boolean => spawnSync('flock', ['-n', lock, 'true']).status !== 0;
      for (let i = 0; i < 400 && !held(); i++) await new Promise((r) => setTimeout(r, 50));
      assert.ok(held(), 'the stand-in demo holds the lock');
      const before = demoNamespaces();
      const r = runDemo({ VPC_DEMO_LOCK: lock, VPCD_SOCKET: path.join(dir, 'none.sock') });
      assert.equal(r.code, 1, r.out + r.err);
      assert.match(r.err, /demo: a demo is already running \(demo pid 4242, vpcd pid 4243, socket \/run\/vpc\/vpcd\.sock\)\./);
      assert.match(r.err, /stop it first \(Ctrl-C in its terminal\)/);
      assert.doesNotMatch(r.out, /setup-deps|building|leftovers/);
      assert.equal(demoNamespaces(), before, 'no namespace created or removed');
    } finally {
      holder?.kill();
      removeDir(dir);
    }
  });

  test('a vpcd answering on the socket is refused, with the way to run beside it; the lock is released', { skip: root ? false : 'needs root (the script refuses earlier otherwise)' }, async () => {
    const dir = tempDir();
    const socket = path.join(dir, 'vpcd.sock');
    const lock = path.join(dir, 'demo.lock');
    const server = net.createServer((c) => c.end());
    await new Promise<void>((resolve) => server.listen(socket, resolve));
    try {
      const before = demoNamespaces();
      const r = await new Promise<{ code: number | null; err: string; out: string }>((resolve) => {
        // Asynchronously: this process must keep accepting on the socket.
        const p = spawn('/bin/bash', [DEMO], { env: { ...process.env, VPC_DEMO_LOCK: lock, VPCD_SOCKET: socket, SUDO_USER: '' } });
        let out = '';
        let err = '';
        p.stdout.on('data', (d: Buffer) => (out += d.toString()));
        p.stderr.on('data', (d: Buffer) => (err += d.toString()));
        p.on('exit', (code) => resolve({ code, out, err }));
      });
      assert.equal(r.code, 1, r.out + r.err);
      assert.match(r.err, new RegExp(`demo: a vpcd already answers on ${socket.replace(/[.]/g, '\\.')}`));
      assert.match(r.err, /demo: {3}env VPCD_SOCKET=\/run\/vpc-demo\.sock VPCD_METRICS=127\.0\.0\.1:9274 npm start/);
      assert.doesNotMatch(r.out, /setup-deps|building|leftovers/);
      assert.equal(demoNamespaces(), before);
      assert.equal(spawnSync('flock', ['-n', lock, 'true']).status, 0, 'the lock is free again');
    } finally {
      server.close();
      removeDir(dir);
    }
  });

  // The demo's own lock (/run/vpc-demo.lock), not one of the test's: the
  // lock is what tells a demo that the vpcdemo-* namespaces and state
  // directories it finds are a killed run's leftovers, so a demo on another
  // lock would remove the guests and state of one that runs (npm start in
  // one terminal, npm test in another).
  test('a whole demo: the guests of a tenant answer each other and not the other tenant\'s; Ctrl-C removes all it made, a killed run\'s state too', { skip: root && fs.existsSync(path.join(ROOT, 'build/Release/vpc_native.node')) ? false : 'needs root and a built tree', timeout: 120_000 }, async (t) => {
    const lock = '/run/vpc-demo.lock';
    if (fs.existsSync(lock) && spawnSync('flock', ['-n', lock, 'true']).status !== 0) {
      t.skip(`a demo runs on this host (${lock} is held): this test would stop at its lock, as a second demo does`);
      return;
    }
    const dir = tempDir();
    const socket = path.join(dir, 'run', 'vpcd.sock'); // its directory does not exist yet: vpcd makes it, the demo removes it
    const stale = fs.mkdtempSync('/tmp/vpcd-demo.'); // as a demo killed with -9 leaves it
    fs.writeFileSync(path.join(stale, 'state.json'), '{}');
    const srv = net.createServer();
    await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
    const metrics = `127.0.0.1:${(srv.address() as net.AddressInfo).port}`;
    await new Promise<void>((resolve) => srv.close(() => resolve()));
    const env: NodeJS.ProcessEnv = { ...process.env, VPCD_SOCKET: socket, VPCD_METRICS: metrics, VPC_DEMO_BUILT: '1', SUDO_USER: '' };
    delete env.VPC_DEMO_LOCK;
    const p = spawn('/bin/bash', [DEMO], { env, detached: true });
    let out = '';
    p.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => p.on('exit', (code) => resolve(code)));
    const ping = (to: string): number | null => spawnSync('ip', ['netns', 'exec', 'vpcdemo-a1', 'ping', '-c', '1', '-W', '1', to]).status;
    try {
      for (let i = 0; i < 600 && !/Ctrl-C here stops vpcd/.test(out); i++) await new Promise((r) => setTimeout(r, 100));
      assert.match(out, /Ctrl-C here stops vpcd/, out);
      assert.match(out, new RegExp(`state of an earlier run that was killed found \\(${stale.replace(/[.]/g, '\\.')}\\); removing it`));
      assert.ok(!fs.existsSync(stale));
      assert.equal(demoNamespaces(), ['vpcdemo-a1', 'vpcdemo-a2', 'vpcdemo-b1', 'vpcdemo-b2'].join('\n'));
      // a1 -> a2 answers (the first ping may wait for ARP and learning).
      let ok = false;
      for (let i = 0; i < 10 && !ok; i++) ok = ping('198.18.1.2') === 0;
      assert.ok(ok, 'a1 -> a2 answers');
      assert.notEqual(ping('198.18.1.11'), 0, 'a1 -> b1 (the other tenant) does not');
      const body = await new Promise<string>((resolve, reject) => {
        const [host, port] = metrics.split(':');
        const c = net.connect(Number(port), host!, () => c.write('GET /metrics HTTP/1.0\r\n\r\n'));
        let b = '';
        c.on('data', (d) => (b += d.toString())).on('end', () => resolve(b)).on('error', reject);
      });
      assert.match(body, /vpc_port_rx_packets_total\{[^}]*port="a1"[^}]*\} [1-9]/);
      process.kill(-p.pid!, 'SIGINT'); // Ctrl-C: the terminal signals the whole group
      assert.equal(await exited, 0, out);
      assert.match(out, /demo: stopped; namespaces, veths, state and lock removed\./);
      assert.equal(demoNamespaces(), '');
      assert.equal(spawnSync('ip', ['link', 'show', 'vpcd-a1']).status !== 0, true, 'the host ends of the veths are gone');
      assert.ok(!fs.existsSync(lock) && !fs.existsSync(`${lock}.pid`), 'no lock file left');
      assert.ok(!fs.existsSync(path.dirname(socket)), 'the socket directory vpcd made is gone');
      assert.deepEqual(fs.readdirSync('/tmp').filter((f) => f.startsWith('vpcd-demo.')), [], 'no state directory left');
    } finally {
      if (p.exitCode === null) {
        try {
          process.kill(-p.pid!, 'SIGINT');
        } catch {
          // gone
        }
        await exited;
      }
      fs.rmSync(stale, { recursive: true, force: true });
      removeDir(dir);
    }
  });
});

// After `npm install` / `npm run build`: what the build left out, said last
// and plainly (cmake's own line scrolls away), with the packages to install.
describe('build report', () => {
  const report = (features: string | undefined): { code: number | null; out: string; err: string } => {
    const dir = tempDir();
    try {
      const file = path.join(dir, 'features.env');
      if (features !== undefined) fs.writeFileSync(file, features);
      const r = spawnSync('/bin/bash', [path.join(ROOT, 'scripts/build-report.sh'), file], { encoding: 'utf8' });
      return { code: r.status, out: r.stdout, err: r.stderr };
    } finally {
      removeDir(dir);
    }
  };

  test('names what is missing and the packages that bring it', () => {
    const none = report('afxdp=0\nio_uring=0\nkpath=0\n');
    assert.equal(none.code, 0, 'a build without them works');
    assert.match(none.err, /Built WITHOUT:\n {3}- AF_XDP ports \(type: afxdp\): libxdp\/libbpf not found\n {3}- io_uring batching of tap ports.*\n {3}- the kernel fast path of afpacket ports/);
    assert.match(none.err, /sudo apt-get install clang libbpf-dev liburing-dev libxdp-dev pkg-config/);
    assert.match(none.err, /npm run build/);

    const uringOnly = report('afxdp=1\nio_uring=0\nkpath=1\n');
    assert.doesNotMatch(uringOnly.err, /AF_XDP|kernel fast path/);
    assert.match(uringOnly.err, /sudo apt-get install liburing-dev pkg-config /);

    const kpathOnly = report('afxdp=1\nio_uring=1\nkpath=0\n');
    assert.match(kpathOnly.err, /kernel fast path of afpacket ports \(every frame goes through the engine\): clang or libbpf not found/);
    assert.match(kpathOnly.err, /sudo apt-get install clang libbpf-dev pkg-config /);

    const all = report('afxdp=1\nio_uring=1\nkpath=1\n');
    assert.equal(all.err, '');
    assert.match(all.out, /built with every port backend/);
  });

  test('this build wrote its features file', () => {
    assert.match(fs.readFileSync(path.join(ROOT, 'build/features.env'), 'utf8'), /^afxdp=[01]\nio_uring=[01]\nkpath=[01]\n$/);
  });
});
