// The far end of a pipe port (PipeEnd): what a test or a demo uses to play
// the VM (or, on a pipe uplink, the underlay). send/receive/setLink are
// synchronous calls into the engine; waitFor polls receive until enough
// frames arrived or the time is up.

import { makeError } from './errors';
import type { PipeEnd } from './types';
import { validateBoolean, validateInteger } from './validate';

const PIPE_POLL_MS = 2;
const PIPE_RECEIVE_MAX = 65536;

// What a pipe end needs of its dataplane. `portId` returns the port's engine
// id, or throws when the port is gone (or the dataplane closed); the others
// are the engine's calls, with failures already mapped.
export interface PipeAccess {
  portId(): number;
  send(portId: number, frames: Buffer[]): number;
  receive(portId: number, max: number): Buffer[];
  setLink(portId: number, up: boolean): void;
}

// `burst` is receive()'s default batch.
export function createPipeEnd(port: string, burst: number, access: PipeAccess): PipeEnd {
  const receive = (max: number = burst): Buffer[] => {
    validateInteger(max, 'max', 1, PIPE_RECEIVE_MAX);
    return access.receive(access.portId(), max);
  };
  return {
    port,
    send: (frames: Buffer[]): number => {
      if (!Array.isArray(frames)) throw makeError('ERR_INVALID_ARGUMENT', 'must be an array of Buffers', 'frames');
      frames.forEach((f, i) => {
        if (!Buffer.isBuffer(f)) throw makeError('ERR_INVALID_ARGUMENT', 'must be a Buffer', `frames[${i}]`);
      });
      const id = access.portId();
      if (frames.length === 0) return 0;
      return access.send(id, frames);
    },
    receive,
    setLink: (up: boolean): void => {
      validateBoolean(up, 'up');
      access.setLink(access.portId(), up);
    },
    waitFor: async (count: number, timeoutMs = 1000): Promise<Buffer[]> => {
      validateInteger(count, 'count', 0, Number.MAX_SAFE_INTEGER);
      validateInteger(timeoutMs, 'timeoutMs', 0, 2 ** 31 - 1);
      const got: Buffer[] = [];
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        while (got.length < count) {
          const batch = receive(Math.min(count - got.length, PIPE_RECEIVE_MAX));
          if (batch.length === 0) break;
          got.push(...batch);
        }
        if (got.length >= count || Date.now() >= deadline) return got;
        await sleep(Math.max(0, Math.min(PIPE_POLL_MS, deadline - Date.now())));
      }
    },
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
