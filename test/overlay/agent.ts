// Test helper (not a test file): one instance of the switch in its own
// process, started by the overlay tests inside a network namespace with
//
//   ip netns exec <ns> node dist/test/overlay/agent.js --agent '<options JSON>'
//
// so that its AF_PACKET sockets open that namespace's interfaces and the
// underlay veth never sits in the root namespace (where the host's kernel
// could route what arrives on it). It drives a Dataplane exactly as an
// in-process user would: each stdin line is {"id", "method", "args"} and is
// answered on stdout by {"id", "ok", "result"} or {"id", "ok": false,
// "error": {code, message}}. "events" returns (and clears) the events seen
// so far. Closing stdin closes the dataplane and ends the process.
//
// node --test also loads this file when given the directory: without
// --agent it does nothing.

import { createInterface } from 'node:readline';
import { Capture, CaptureSpec, Dataplane, DataplaneEvent } from '../../src/dataplane/index';

if (process.argv[2] === '--agent') {
  const options = JSON.parse(process.argv[3] ?? '{}') as Record<string, unknown>;
  // The agent's own lifetime bound (not a Dataplane option): the soak test
  // runs longer than the default.
  const lifetimeMs = typeof options.agentLifetimeMs === 'number' ? options.agentLifetimeMs : 300_000;
  delete options.agentLifetimeMs;
  const dp = new Dataplane(options);
  dp.start();
  const events: DataplaneEvent[] = [];
  const captures = new Map<number, { cap: Capture; chunks: Buffer[]; frames: { port: string; direction: string }[] }>();
  dp.on('event', (ev: DataplaneEvent) => {
    if (events.length < 10_000) events.push(ev);
  });
  const reply = (msg: unknown): void => {
    process.stdout.write(`${JSON.stringify(msg)}\n`);
  };
  const rl = createInterface({ input: process.stdin });
  rl.on('line', (line) => {
    let id = -1;
    void (async () => {
      try {
        const req = JSON.parse(line) as { id: number; method: string; args?: unknown[] };
        id = req.id;
        let result: unknown;
        if (req.method === 'events') {
          result = events.splice(0, events.length);
        } else if (req.method === 'captureStart') {
          // A capture lives here; the test collects it as one pcap file.
          const cap = await dp.startCapture(req.args?.[0] as CaptureSpec);
          captures.set(cap.id, { cap, chunks: [cap.header], frames: [] });
          result = cap.id;
        } else if (req.method === 'captureCollect') {
          // Stops the capture; returns the pcap (base64) and each frame's port and direction.
          const c = captures.get(req.args?.[0] as number);
          if (c === undefined) throw new Error('no such capture');
          const chunk = c.cap.read();
          await c.cap.stop();
          captures.delete(c.cap.id);
          result = { pcap: Buffer.concat([...c.chunks, chunk.pcap]).toString('base64'), frames: [...c.frames, ...chunk.frames], dropped: chunk.dropped };
        } else if (req.method === 'statsPlus') {
          // dp.stats() plus the uplink port's counter set on its own (stats()
          // lists it under the uplink's name among the ports).
          const st = dp.stats();
          const up = dp.uplink();
          const own = up === undefined ? undefined : st.ports[up.name];
          result = { ...st, uplinkPortNative: own === undefined || up === undefined ? null : { id: up.id, ...own } };
        } else {
          const fn = (dp as unknown as Record<string, (...a: unknown[]) => unknown>)[req.method];
          if (typeof fn !== 'function') throw new Error(`no such Dataplane method: ${req.method}`);
          result = await fn.apply(dp, req.args ?? []);
        }
        reply({ id, ok: true, result: result === undefined ? null : result });
      } catch (err) {
        const e = err as { code?: string; message?: string };
        reply({ id, ok: false, error: { code: e.code ?? 'ERR', message: e.message ?? String(err) } });
      }
    })();
  });
  rl.on('close', () => {
    try {
      dp.close();
    } finally {
      process.exit(0);
    }
  });
  // Bounded: a forgotten agent ends by itself.
  setTimeout(() => {
    dp.close();
    process.exit(3);
  }, lifetimeMs).unref();
}
