// The example configurations use a port's `mac` for what it is: a MAC that
// names the port, not the guest's MAC (it is not applied to the interface).
// So no example refers to a port's `mac` anywhere else (an FDB entry, locked
// MACs, the other host's lines in a comment) as if a guest had it.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseConfig } from '../../src/control/config';
import { ROOT } from './helpers';

test('no example uses a port\'s own `mac` as a guest\'s MAC', () => {
  const dir = path.join(ROOT, 'examples');
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.yaml'));
  assert.ok(files.length >= 3);
  for (const f of files) {
    const text = fs.readFileSync(path.join(dir, f), 'utf8');
    const desired = parseConfig(text, f);
    for (const p of desired.ports) {
      if (p.spec.mac === undefined) continue;
      const uses = text.toLowerCase().split(p.spec.mac.toLowerCase()).length - 1;
      assert.equal(uses, 1, `${f}: port ${p.spec.name}'s mac ${p.spec.mac} appears ${uses} times; a port's mac names the port, no guest has it`);
    }
  }
});
