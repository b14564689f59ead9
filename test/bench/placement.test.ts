// Where the e2e suites put the switch (bench/e2e/systems.ts): `--switch-cpu
// any` leaves this switch's engine unpinned, as vpcd runs it by default,
// while OVS's PMD and testpmd, which always pin, stay on CPU 0.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { type Placement, cpuText, enginePlacement, pmdCpu } from '../../bench/e2e/systems';

const at = (switchCpu: number): Placement => ({ genCpu: 1, sinkCpu: 1, switchCpu, busyPoll: false });

test('a pinned engine and the PMD share the CPU asked for', () => {
  assert.equal(pmdCpu(at(1)), 1);
  assert.equal(enginePlacement(at(1)), 'engine pinned to CPU 1');
  assert.equal(cpuText(1), 'on CPU 1');
});

test('an unpinned engine says so; the PMD and testpmd stay on CPU 0', () => {
  assert.equal(pmdCpu(at(-1)), 0);
  assert.equal(enginePlacement(at(-1)), "engine not pinned (vpcd's default)");
  assert.match(cpuText(-1), /^not pinned .*CPU 0/);
});
