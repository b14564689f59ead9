// The e2e vhost suite's testpmd driver (bench/e2e/testpmd.ts) against a
// stand-in that writes the way testpmd does: its command line puts the prompt
// out one character at a time on stdout, while error lines go to stderr, a
// second pipe. One round in about twenty of `npm run bench -- e2e vhost`
// failed with "no testpmd> within 60000 ms" although testpmd had printed its
// prompt and was waiting for a command: the stderr line "Error during
// enabling promiscuous mode ..." had landed between "testpmd>" and " " in the
// driver's one merged buffer. The stand-in forces that order.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { Testpmd } from '../../bench/e2e/testpmd';

// Writes `text` to stdout one character per write, with a pause after
// `splitAt` characters during which a line goes to stderr; then answers
// `show port summary all` the same way, and exits on `quit`.
const STAND_IN = `
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const chars = async (s, splitAt, err) => {
  for (let i = 0; i < s.length; i++) {
    if (i === splitAt) { await sleep(100); process.stderr.write(err); await sleep(100); }
    process.stdout.write(s[i]);
  }
};
(async () => {
  process.stdout.write('Configuring Port 0 (socket 0)\\nPort 0: 02:00:00:00:0A:01\\nChecking link statuses...\\nDone\\n');
  await chars('testpmd> ', 8, 'Error during enabling promiscuous mode for port 0: Operation not supported - ignore\\n');
  let buf = '';
  process.stdin.on('data', async (d) => {
    buf += d.toString();
    for (let nl; (nl = buf.indexOf('\\n')) >= 0; ) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (line === 'quit') process.exit(0);
      if (line === 'show port summary all') {
        process.stdout.write('Number of available ports: 1\\nPort MAC Address       Name         Driver         Status   Link\\n0    02:00:00:00:0A:01 net_virtio_user0 net_virtio_user up   Unknown\\n');
        await chars('testpmd> ', 7, 'Port 0: link state change event\\n');
      }
    }
  });
})();
`;

test('the prompt is found on stdout even when stderr output lands inside it', async () => {
  const child = spawn(process.execPath, ['-e', STAND_IN], { stdio: ['pipe', 'pipe', 'pipe'] });
  const f = Testpmd.attach(child, 'stand-in testpmd');
  try {
    await f.waitFor(/testpmd> /, 10_000);
    const summary = await f.cmd('show port summary all', 10_000);
    assert.match(summary, /net_virtio_user0 .* up /, summary);
    assert.doesNotMatch(summary, /link state change/, 'stderr stays out of a command\'s answer');
    // The report still shows both streams.
    assert.match(f.log(), /Error during enabling promiscuous mode/);
    assert.match(f.log(), /Port 0: link state change event/);
  } finally {
    await f.quit();
  }
});
