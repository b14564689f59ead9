// vhostuser ports through the Dataplane API and the real addon: validation,
// what portStatus() and stats() show, the Prometheus families, the socket's
// life. No root needed (a unix socket in a private directory). The rings and
// the protocol are covered natively (ports/vhost_user_test.cc with a fake
// front end, vhost_user_testpmd_test.cc with DPDK testpmd).

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { Dataplane, DataplaneError } from '../../src/dataplane/index';
import { validatePortSpec } from '../../src/dataplane/specs';
import { Metrics } from '../../src/control/metrics';
import { formatVhost } from '../../src/control/cli/vhost';

function tmpdir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'vpc-vhu-'));
}

function rejects(fn: () => unknown, field: string, pattern: RegExp): void {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof DataplaneError, `expected an error on ${field}, got ${String(caught)}`);
  assert.equal(caught.field, field, caught.message);
  assert.match(caught.message, pattern);
}

describe('vhostuser port specs', () => {
  const base = { name: 'vm1', type: 'vhostuser', switch: 'a' };
  test('socket, mode and queues, with their defaults', () => {
    const p = validatePortSpec({ ...base, socket: '/run/vpc/vm1.sock' }, 9000);
    assert.equal(p.kernel?.spec, 'vhostuser:/run/vpc/vm1.sock');
    assert.equal(p.kernel?.vhostMode, 'server');
    assert.equal(p.kernel?.queues, 1);
    const c = validatePortSpec({ ...base, socket: '/run/vpc/vm1.sock', mode: 'client', queues: 4, burst: 64 }, 9000);
    assert.equal(c.kernel?.vhostMode, 'client');
    assert.equal(c.kernel?.queues, 4);
    assert.equal(c.kernel?.burst, 64);
  });
  test('refuses what does not make a socket path, naming the field', () => {
    rejects(() => validatePortSpec(base, 9000), 'socket', /required for vhostuser ports/);
    rejects(() => validatePortSpec({ ...base, socket: 'vm1.sock' }, 9000), 'socket', /absolute path/);
    rejects(() => validatePortSpec({ ...base, socket: `/${'x'.repeat(107)}` }, 9000), 'socket', /108 bytes long; a unix socket path holds at most 107/);
    rejects(() => validatePortSpec({ ...base, socket: '/run/a b.sock' }, 9000), 'socket', /space or control character at position 7/);
    rejects(() => validatePortSpec({ ...base, socket: '/s', mode: 'listen' }, 9000), 'mode', /'server'.*'client'/);
    rejects(() => validatePortSpec({ ...base, socket: '/s', queues: 17 }, 9000), 'queues', /16/);
    rejects(() => validatePortSpec({ ...base, socket: '/s', interface: 'tap0' }, 9000), 'interface', /does not apply to vhostuser ports/);
    rejects(() => validatePortSpec({ ...base, socket: '/s', rxRing: 1024 }, 9000), 'rxRing', /does not apply to vhostuser ports/);
    rejects(() => validatePortSpec({ name: 'x', type: 'afpacket', interface: 'veth0', switch: 'a', socket: '/s' }, 9000), 'socket', /only to vhostuser ports/);
    rejects(() => validatePortSpec({ name: 'x', type: 'pipe', switch: 'a', mode: 'client' }, 9000), 'mode', /kernel-facing ports/);
  });
});

describe('vhostuser ports in the dataplane', () => {
  test('a server port listens, shows its device, counts per queue, and removes its socket', async () => {
    const dir = tmpdir();
    const sock = path.join(dir, 'vm1.sock');
    const dp = new Dataplane({ hugepages: false, bufferCount: 4096, maxPorts: 8 });
    try {
      dp.start();
      await dp.createSwitch({ name: 'a', vni: 1 });
      await dp.createPort({ name: 'vm1', type: 'vhostuser', socket: sock, switch: 'a', queues: 2 });
      assert.ok(fs.statSync(sock).isSocket(), 'vpcd created and listens on the socket');
      const info = dp.getPort('vm1')!;
      assert.equal(info.socket, sock);
      assert.equal(info.vhostMode, 'server');
      assert.equal(info.spec, `vhostuser:${sock}`);

      const st = dp.portStatus('vm1');
      assert.ok(st !== undefined);
      assert.equal(st.backend, 'vhostuser');
      assert.equal(st.queues, 2);
      const v = st.vhost!;
      assert.equal(v.socket, sock);
      assert.equal(v.mode, 'server');
      assert.equal(v.connected, false);
      assert.equal(v.maxQueuePairs, 2);
      assert.equal(v.queues.length, 4);
      assert.deepEqual(v.queues.map((q) => q.role), ['guest-rx', 'guest-tx', 'guest-rx', 'guest-tx']);
      assert.deepEqual(v.regions, []);
      assert.ok('ring_desc_loop' in v.queues[1]!.drops);

      // What `vpcctl port show` prints under "vhost-user device:".
      const shown = formatVhost(v);
      assert.match(shown, new RegExp(`^socket +${sock.replace(/[.]/g, '\\.')} \\(server\\)$`, 'm'));
      assert.match(shown, /^ {2} 3 guest-tx size 0 +unset /m);
      assert.match(shown, /^ {2}\(none mapped\)$/m);

      // Not connected: the link is down (frames for it count link_down).
      assert.equal(dp.stats().ports.vm1!.counters.link_up, 0);

      // A front end that connects and hangs up is seen and forgotten.
      await new Promise<void>((resolve, reject) => {
        const c = net.createConnection(sock, () => {
          c.end();
          resolve();
        });
        c.on('error', reject);
      });
      const deadline = Date.now() + 5000;
      while (dp.portStatus('vm1')!.vhost!.disconnects < 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      const after = dp.portStatus('vm1')!.vhost!;
      assert.equal(after.connects, 1);
      assert.equal(after.disconnects, 1);
      assert.equal(after.connected, false);
      assert.deepEqual(after.connectionDrops, { closed_mid_message: 0, bad_version: 0, too_big: 0, too_many_fds: 0, reply_lost: 0, memory_shrunk: 0 });
      assert.equal(after.watcherErrors, 0);

      // One that writes what is not vhost-user is dropped, with the reason.
      await new Promise<void>((resolve, reject) => {
        const c = net.createConnection(sock, () => c.write('GET / HTTP/1.1\r\n\r\n'));
        c.on('close', () => resolve());
        c.on('error', (e: NodeJS.ErrnoException) => (e.code === 'ECONNRESET' ? resolve() : reject(e)));
      });
      const dropped = dp.portStatus('vm1')!;
      assert.equal(dropped.vhost!.disconnects, 2);
      assert.equal(dropped.vhost!.connectionDrops.bad_version, 1);
      assert.match(dropped.lastError, /protocol version 3, expected 1; connection dropped \(bad_version\)/);
      assert.match(formatVhost(dropped.vhost!), /^dropped +bad_version=1 \(watcher errors 0\)$/m);

      // Per-queue counters in stats() and in the Prometheus families.
      const s = dp.stats().ports.vm1!;
      assert.equal(s.queues?.length, 4);
      const schema = dp.schema();
      assert.ok(schema.virtq.some((c) => c.name === 'packets'));
      assert.ok(schema.virtqDrop.some((c) => c.name === 'ring_bad_addr'));
      const m = new Metrics({ dp, portSwitches: () => ['a'], generation: () => 1 }, { defaultMetrics: false });
      const text = await m.render();
      assert.match(text, /^vpc_vhost_queue_packets_total\{switch="a",port="vm1",queue="3"\} 0$/m);
      assert.match(text, /^vpc_vhost_queue_drops_total\{switch="a",port="vm1",queue="1",reason="ring_desc_loop"\} 0$/m);
      assert.match(text, /^# HELP vpc_vhost_queue_notifies_total /m);

      // The same socket for a second port: refused, the first one unharmed.
      await assert.rejects(dp.createPort({ name: 'vm2', type: 'vhostuser', socket: sock, switch: 'a' }), (e: DataplaneError) => e.code === 'ERR_IN_USE');
      assert.ok(fs.existsSync(sock));

      await dp.deletePort('vm1');
      assert.equal(fs.existsSync(sock), false, 'the socket file goes with the port');
    } finally {
      dp.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a client port waits for the front end\'s socket and stays down meanwhile', async () => {
    const dir = tmpdir();
    const sock = path.join(dir, 'qemu.sock');
    const dp = new Dataplane({ hugepages: false, bufferCount: 4096, maxPorts: 8 });
    const server = net.createServer();
    try {
      dp.start();
      await dp.createSwitch({ name: 'a', vni: 1 });
      await dp.createPort({ name: 'vm3', type: 'vhostuser', socket: sock, mode: 'client', switch: 'a' });
      assert.equal(fs.existsSync(sock), false, 'a client port never creates the socket');
      assert.equal(dp.portStatus('vm3')!.vhost!.mode, 'client');
      // The "hypervisor" starts listening later: the port connects by itself.
      const connected = new Promise<void>((resolve) => server.once('connection', (c) => {
        c.destroy();
        resolve();
      }));
      await new Promise<void>((resolve) => server.listen(sock, resolve));
      await connected;
      const deadline = Date.now() + 5000;
      while (dp.portStatus('vm3')!.vhost!.connects < 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      assert.ok(dp.portStatus('vm3')!.vhost!.connects >= 1);
      await dp.deletePort('vm3');
      assert.ok(fs.existsSync(sock), 'the hypervisor\'s socket is left alone');
    } finally {
      server.close();
      dp.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
