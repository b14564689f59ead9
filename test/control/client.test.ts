// The control API client (vpcctl -> vpcd) against a server that closes
// idle kept-alive connections: a request must never go out on a connection
// the server is closing (a GET would fail with ECONNRESET/EPIPE, a POST could
// not be told applied or not), and a POST reaches the server exactly once.

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { Client, UnreachableError } from '../../src/control/client';

// An HTTP server on a Unix socket that answers with keep-alive, and closes a
// connection, without an answer, when a second request arrives on it: what a
// client sees when the server's idle timeout fires as it reuses the connection.
async function closingServer(): Promise<{ socket: string; requests: string[]; reusedCloses: () => number; close: () => Promise<void> }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vpc-client-'));
  const socket = path.join(dir, 'api.sock');
  const served = new WeakSet<object>();
  const requests: string[] = [];
  let closes = 0;
  const server = http.createServer((req, res) => {
    if (served.has(req.socket)) {
      closes++;
      req.socket.destroy();
      return;
    }
    served.add(req.socket);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      requests.push(`${req.method} ${req.url} ${Buffer.concat(chunks).toString()}`);
      res.writeHead(200, { 'content-type': 'application/json', connection: 'keep-alive' });
      res.end(JSON.stringify({ n: requests.length }));
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((r) => server.listen(socket, r));
  return {
    socket,
    requests,
    reusedCloses: () => closes,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => {
          fs.rmSync(dir, { recursive: true, force: true });
          r();
        });
      }),
  };
}

test('control client: no request goes out on a kept-alive connection the server closes; a POST is sent once', async () => {
  const s = await closingServer();
  try {
    const c = new Client(s.socket, 10_000);
    const got: number[] = [];
    for (let i = 0; i < 5; i++) {
      got.push((await c.call<{ n: number }>('GET', `/v1/status?i=${i}`)).n);
      // Let a kept-alive connection go back to the pool before the next call.
      await new Promise((r) => setImmediate(r));
      got.push((await c.call<{ n: number }>('POST', '/v1/apply', { i })).n);
      await new Promise((r) => setImmediate(r));
    }
    assert.deepEqual(got, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 'every call answered in order');
    assert.equal(s.reusedCloses(), 0, 'no request arrived on a connection that had served one');
    const posts = s.requests.filter((r) => r.startsWith('POST'));
    assert.deepEqual(posts, [0, 1, 2, 3, 4].map((i) => `POST /v1/apply {"i":${i}}`), 'each POST reached the server exactly once');
  } finally {
    await s.close();
  }
});

test('an unreachable vpcd is explained by its cause: start it when nothing listens, the group when the socket refuses us', () => {
  const gone = UnreachableError.explain('/run/vpc/vpcd.sock', 'ENOENT');
  assert.match(gone, /^no socket at \/run\/vpc\/vpcd\.sock: vpcd is not running, or listens elsewhere\.\n {2}Start it with: /);
  const denied = UnreachableError.explain('/run/vpc/vpcd.sock', 'EACCES');
  assert.equal(denied, 'permission denied on /run/vpc/vpcd.sock: run as root or as a member of the socket\'s group (the systemd unit\'s group is vpc: docs/operations.md).');
  assert.doesNotMatch(denied, /Start it/, 'vpcd runs: it is the socket that refuses');
});
