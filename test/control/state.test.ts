// The state file: atomic round trip, and every kind of corruption detected
// and reported (never repaired).

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseConfig } from '../../src/control/config';
import { ControlError } from '../../src/control/errors';
import { emptyModel, Model } from '../../src/control/model';
import { resolveTarget } from '../../src/control/reconcile';
import { checksumOf, isRunningVpcd, STATE_VERSION, StateStore, WriteFn } from '../../src/control/state';
import { diskWithRoom, removeDir, tempDir } from './helpers';

function sampleModel(): Model {
  return resolveTarget(emptyModel({ bufferCount: 4096 }), parseConfig(
    'switches:\n  - name: a\n    vni: 1\n    ports: [{ name: p, type: pipe }]\n    fdb: [{ mac: 02:00:00:00:00:01, port: p }]\n',
  ));
}

function withStore(fn: (store: StateStore, dir: string) => void): void {
  const dir = tempDir();
  try {
    fn(new StateStore(path.join(dir, 'state')), dir);
  } finally {
    removeDir(dir);
  }
}

function corruptCode(store: StateStore): ControlError {
  try {
    store.load();
  } catch (err) {
    assert.ok(err instanceof ControlError, String(err));
    return err;
  }
  assert.fail('load should have failed');
}

describe('state file', () => {
  test('save then load returns the same model; generation counts; no temp file is left', () => {
    withStore((store) => {
      assert.equal(store.load(), undefined, 'no file yet: empty start');
      const m = sampleModel();
      store.save(m);
      store.save(m);
      const again = new StateStore(store.dir);
      assert.deepEqual(again.load(), m);
      assert.equal(again.generation, 2);
      assert.deepEqual(fs.readdirSync(store.dir), ['state.json']);
      const doc = JSON.parse(fs.readFileSync(store.file, 'utf8'));
      assert.equal(doc.format, 'vpcd-state');
      assert.equal(doc.version, 1);
      assert.match(doc.checksum, /^sha256:[0-9a-f]{64}$/);
    });
  });

  test('bad JSON (a torn or truncated file) is reported, and the file is left alone', () => {
    withStore((store) => {
      store.save(sampleModel());
      const text = fs.readFileSync(store.file, 'utf8');
      fs.writeFileSync(store.file, text.slice(0, text.length / 2));
      const e = corruptCode(store);
      assert.equal(e.code, 'ERR_STATE_CORRUPT');
      assert.match(e.message, /state\.json: not valid JSON/);
      assert.match(e.message, /does not start on a corrupt state file/);
      assert.equal(fs.readFileSync(store.file, 'utf8'), text.slice(0, text.length / 2));
    });
  });

  test('a changed byte fails the checksum', () => {
    withStore((store) => {
      store.save(sampleModel());
      fs.writeFileSync(store.file, fs.readFileSync(store.file, 'utf8').replace('"vni": 1', '"vni": 2'));
      const e = corruptCode(store);
      assert.equal(e.code, 'ERR_STATE_CORRUPT');
      assert.match(e.message, /checksum mismatch/);
    });
  });

  test('a valid checksum over an invalid object fails the schema check', () => {
    withStore((store) => {
      store.save(sampleModel());
      const doc = JSON.parse(fs.readFileSync(store.file, 'utf8'));
      doc.state.switches[0].spec.vni = 0;
      doc.checksum = checksumOf(doc.state);
      fs.writeFileSync(store.file, JSON.stringify(doc));
      const e = corruptCode(store);
      assert.equal(e.code, 'ERR_STATE_CORRUPT');
      assert.match(e.message, /schema: state\.switches\[0\]\.spec\.vni: must be an integer/);
    });
  });

  test('a dangling reference fails the schema check', () => {
    withStore((store) => {
      store.save(sampleModel());
      const doc = JSON.parse(fs.readFileSync(store.file, 'utf8'));
      doc.state.ports = [];
      doc.checksum = checksumOf(doc.state);
      fs.writeFileSync(store.file, JSON.stringify(doc));
      assert.match(corruptCode(store).message, /schema: .*no port named "p"/);
    });
  });

  test('a port whose switch does not exist fails the schema check (the path "state.ports[0]" is no nested config port)', () => {
    withStore((store) => {
      store.save(sampleModel());
      const doc = JSON.parse(fs.readFileSync(store.file, 'utf8'));
      doc.state.ports[0].spec.switch = 'nope';
      doc.state.fdb = []; // else the entry's port, no member of "a", is reported first
      doc.checksum = checksumOf(doc.state);
      fs.writeFileSync(store.file, JSON.stringify(doc));
      const e = corruptCode(store);
      assert.equal(e.code, 'ERR_STATE_CORRUPT');
      assert.match(e.message, /schema: state\.ports\[0\]\.switch: no switch named "nope"/);
    });
  });

  test('promiscuous on a port whose backend never read it (taken before it was refused there) is dropped, not refused', () => {
    withStore((store) => {
      store.save(sampleModel());
      const doc = JSON.parse(fs.readFileSync(store.file, 'utf8'));
      const spec = doc.state.ports[0].spec;
      doc.state.ports[0].spec = { ...spec, type: 'tap', interface: 'tap0', promiscuous: false };
      doc.checksum = checksumOf(doc.state);
      fs.writeFileSync(store.file, JSON.stringify(doc));
      const m = store.load()!;
      assert.deepEqual(m.ports[0]!.spec, { ...spec, type: 'tap', interface: 'tap0' });
      // A pipe never took it: still a schema error.
      doc.state.ports[0].spec = { ...spec, promiscuous: false };
      doc.checksum = checksumOf(doc.state);
      fs.writeFileSync(store.file, JSON.stringify(doc));
      assert.match(corruptCode(store).message, /state\.ports\[0\]\.spec\.promiscuous: applies only to kernel-facing ports/);
    });
  });

  test('an uplink stored with xdpDecap: on beside kernelPath: false (taken before the pair was refused) loads without xdpDecap', () => {
    withStore((store) => {
      store.save(sampleModel());
      const doc = JSON.parse(fs.readFileSync(store.file, 'utf8'));
      const spec = { name: 'up', type: 'afpacket', interface: 'eth1', localIp: '198.18.0.1/24', mac: '02:00:00:00:00:42', kernelPath: false };
      doc.version = STATE_VERSION; // the oldest format that has uplinks is written for a model without
      doc.state.uplinks = [{ uuid: '6f1c2a4e-8b1d-4c2e-9a3f-0b5d7e9f1a2c', spec: { ...spec, xdpDecap: 'on' } }];
      doc.state.peers = [];
      doc.checksum = checksumOf(doc.state);
      fs.writeFileSync(store.file, JSON.stringify(doc));
      assert.deepEqual(store.load()!.uplinks[0]!.spec, spec);
    });
  });

  test('a file from a newer vpcd is refused with ERR_STATE_VERSION; a foreign file with ERR_STATE_CORRUPT', () => {
    withStore((store) => {
      store.save(sampleModel());
      const doc = JSON.parse(fs.readFileSync(store.file, 'utf8'));
      fs.writeFileSync(store.file, JSON.stringify({ ...doc, version: 99 }));
      assert.equal(corruptCode(store).code, 'ERR_STATE_VERSION');
      fs.writeFileSync(store.file, JSON.stringify({ hello: 'world' }));
      assert.equal(corruptCode(store).code, 'ERR_STATE_CORRUPT');
    });
  });
});

describe('state file writes', () => {
  test('short writes are continued until everything is written', () => {
    withStore((store0) => {
      let calls = 0;
      const store = new StateStore(store0.dir, (fd, buffer, offset, length, position) => {
        calls++;
        return fs.writeSync(fd, buffer, offset, Math.min(length, 100), position);
      });
      const m = sampleModel();
      store.save(m);
      assert.ok(calls > 3, `${calls} writes`);
      assert.deepEqual(new StateStore(store.dir).load(), m);
    });
  });

  for (const [what, write, reason] of [
    ['a short write then a full disk (ENOSPC)', diskWithRoom(200), /ENOSPC/],
    ['a write that returns 0', (() => 0) as WriteFn, /short write: 0 of \d+ bytes written, then a write returned 0/],
    ['a write that claims more than it wrote', ((fd, buffer, offset, length, position) => {
      fs.writeSync(fd, buffer, offset, length - 10, position);
      return length;
    }) as WriteFn, /does not read back as written \(\d+ bytes, expected \d+ bytes\)/],
    ['a write that changes a byte', ((fd, buffer, offset, length, position) => {
      const copy = Buffer.from(buffer.subarray(offset, offset + length));
      copy[copy.length >> 1] ^= 1;
      return fs.writeSync(fd, copy, 0, length, position);
    }) as WriteFn, /does not read back as written \(\d+ bytes, expected \d+ bytes with different content\)/],
  ] as [string, WriteFn, RegExp][]) {
    test(`${what} fails the save: the old file stays, the temp file goes`, () => {
      withStore((store0) => {
        const before = sampleModel();
        store0.save(before);
        const text = fs.readFileSync(store0.file, 'utf8');
        const store = new StateStore(store0.dir, write);
        store.load();
        const bigger = resolveTarget(before, parseConfig('switches:\n' + Array.from({ length: 20 }, (_, i) => `  - { name: s${i}, vni: ${i + 10} }\n`).join('')));
        assert.throws(() => store.save(bigger), reason);
        assert.equal(store.generation, 1, 'generation unchanged');
        assert.equal(fs.readFileSync(store.file, 'utf8'), text, 'state.json untouched');
        assert.deepEqual(fs.readdirSync(store.dir), ['state.json'], 'no temp file left');
        assert.deepEqual(new StateStore(store.dir).load(), before);
      });
    });
  }
});

describe('state file leftovers', () => {
  test('temp files of writes cut short are removed at start, but not those of a running vpcd', () => {
    withStore((store) => {
      store.save(sampleModel());
      const dead = spawnSync(process.execPath, ['-e', '']).pid!;
      const names = [`.state.json.${dead}.tmp`, `.state.json.${process.pid}.tmp`, '.state.json.77.tmp', 'notes.tmp'];
      for (const n of names) fs.writeFileSync(path.join(store.dir, n), '{"format": "vpcd-st');
      const r = store.removeLeftovers((pid) => pid === 77); // 77 plays a running vpcd
      assert.deepEqual(r.removed.map((f) => path.basename(f)).sort(), [`.state.json.${dead}.tmp`, `.state.json.${process.pid}.tmp`].sort());
      assert.deepEqual(r.kept.map((f) => path.basename(f)), ['.state.json.77.tmp']);
      assert.deepEqual(fs.readdirSync(store.dir).sort(), ['.state.json.77.tmp', 'notes.tmp', 'state.json'], 'state.json and files of other names stay');
      assert.notEqual(new StateStore(store.dir).load(), undefined, 'state.json still loads');
      assert.deepEqual(new StateStore(path.join(store.dir, 'none')).removeLeftovers(), { removed: [], kept: [], failed: [] }, 'no directory yet');
    });
  });

  test('the state directory is held by one vpcd (vpcd.pid): a second is told who holds it; a stale pid file is taken over; unlock gives it back', () => {
    withStore((store) => {
      const pidFile = path.join(store.dir, 'vpcd.pid');
      assert.equal(store.lock(() => false), undefined, 'taken');
      assert.equal(fs.readFileSync(pidFile, 'utf8'), `${process.pid}\n`);
      const other = new StateStore(store.dir);
      assert.equal(other.lock((pid) => pid === process.pid), process.pid, 'a running vpcd holds it');
      assert.equal(fs.readFileSync(pidFile, 'utf8'), `${process.pid}\n`, 'left as it was');
      other.unlock(); // did not take it: removes nothing
      assert.ok(fs.existsSync(pidFile));
      store.unlock();
      assert.equal(fs.existsSync(pidFile), false, 'given back');
      fs.writeFileSync(pidFile, '424242\n'); // a vpcd killed with kill -9
      assert.equal(other.lock(() => false), undefined, 'a stale pid file is taken over');
      assert.equal(fs.readFileSync(pidFile, 'utf8'), `${process.pid}\n`);
      assert.deepEqual(fs.readdirSync(store.dir).filter((f) => f.startsWith('.')), [], 'no file of the take is left');
      other.unlock();
    });
  });

  test('isRunningVpcd: a process whose program is vpcd(.js); not a finished one, not another program, not this one', async () => {
    const dir = tempDir();
    const script = path.join(dir, 'vpcd.js');
    fs.writeFileSync(script, 'setTimeout(() => undefined, 20000);\n');
    const p = spawn(process.execPath, [script], { stdio: 'ignore' });
    try {
      await new Promise((r) => p.once('spawn', r));
      assert.equal(isRunningVpcd(p.pid!), true);
      assert.equal(isRunningVpcd(spawnSync(process.execPath, ['-e', '']).pid!), false, 'finished');
      assert.equal(isRunningVpcd(1), false, 'init is no vpcd');
      assert.equal(isRunningVpcd(process.pid), false, 'this process writes nothing yet');
    } finally {
      p.kill('SIGKILL');
      removeDir(dir);
    }
  });
});
