// The state file: atomic round trip, and every kind of corruption detected
// and reported (never repaired).

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseConfig } from '../../src/control/config';
import { ControlError } from '../../src/control/errors';
import { emptyModel, Model } from '../../src/control/model';
import { resolveTarget } from '../../src/control/reconcile';
import { checksumOf, StateStore } from '../../src/control/state';
import { removeDir, tempDir } from './helpers';

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
