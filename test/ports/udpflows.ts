// Test helper (not a test file): many UDP flows and a sink that counts them,
// run with node inside a guest namespace (ip netns exec NS node udpflows.js).
//
//   send DST_IP PORT FLOWS COUNT RATE   COUNT datagrams from FLOWS sockets
//                                       (one source port each), RATE per second;
//                                       prints {"sent":N,"errors":E}
//   sink PORT EXPECT SECONDS            counts datagrams on PORT until EXPECT
//                                       arrived, 1 s passed without one, or
//                                       SECONDS; prints {"received":N} (wait
//                                       for the port in `ss -lun` before sending)
//
// The sockets stay unconnected, so the kernel picks a transmit queue per
// datagram by its flow hash: a multi-queue veth spreads the flows over the
// peer's receive queues. Bounded in count and time.

import dgram from 'node:dgram';

const MAGIC = 'vpcmqflow';

function send(dst: string, port: number, flows: number, count: number, rate: number): void {
  const socks = Array.from({ length: flows }, () => dgram.createSocket('udp4'));
  const payload = Buffer.from(MAGIC);
  const perTick = Math.max(1, Math.round(rate / 100));
  let queued = 0;
  let done = 0;
  let sent = 0;
  let errors = 0;
  const finish = (): void => {
    for (const s of socks) s.close();
    process.stdout.write(`${JSON.stringify({ sent, errors })}\n`);
  };
  const timer = setInterval(() => {
    for (let i = 0; i < perTick && queued < count; ++i, ++queued) {
      socks[queued % flows].send(payload, port, dst, (err) => {
        if (err) ++errors;
        else ++sent;
        if (++done === count) finish();
      });
    }
    if (queued >= count) clearInterval(timer);
  }, 10);
}

function sink(port: number, expect: number, seconds: number): void {
  const sock = dgram.createSocket('udp4');
  let received = 0;
  let last = 0;
  let finished = false;
  const finish = (): void => {
    if (finished) return;
    finished = true;
    clearInterval(idle);
    clearTimeout(limit);
    sock.close();
    process.stdout.write(`${JSON.stringify({ received })}\n`);
  };
  sock.on('message', (msg) => {
    if (msg.toString() !== MAGIC) return;
    last = Date.now();
    if (++received === expect) finish();
  });
  const idle = setInterval(() => {
    if (last !== 0 && Date.now() - last > 1000) finish();
  }, 100);
  const limit = setTimeout(finish, seconds * 1000);
  sock.bind(port);
}

const [mode, ...args] = process.argv.slice(2);
if (mode === 'send') send(args[0], Number(args[1]), Number(args[2]), Number(args[3]), Number(args[4]));
else if (mode === 'sink') sink(Number(args[0]), Number(args[1]), Number(args[2]));
else {
  process.stderr.write('usage: udpflows.js send DST_IP PORT FLOWS COUNT RATE | sink PORT EXPECT SECONDS\n');
  process.exit(2);
}
