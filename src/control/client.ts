// Client of the control API (vpcctl, tests): JSON over HTTP on the Unix socket.
//
// Every request goes on a connection of its own (`agent: false`, which sends
// `Connection: close`): never on a kept-alive one. Node's global agent keeps
// connections alive, and one that vpcd closed as idle just as a request went
// out on it fails with ECONNRESET or EPIPE: for a GET that is a spurious
// error, for a POST a request the daemon may or may not have applied, which
// the client must not send again. A connection to a local Unix socket costs
// a few microseconds; vpcctl makes one or two calls; there is nothing to save
// by reusing one.

import * as fs from 'node:fs';
import * as http from 'node:http';
import { SOCKET_PATH_MAX } from '../dataplane/specs';

export class ApiError extends Error {
  constructor(readonly status: number, readonly code: string, message: string, readonly body: Record<string, unknown>) {
    super(message);
    this.name = 'ApiError';
  }
}

// What a path that should be vpcd's socket is instead, or undefined when it
// is a socket (or cannot be looked at).
function notASocket(p: string): string | undefined {
  try {
    const st = fs.statSync(p);
    if (st.isSocket()) return undefined;
    return `${p} is ${st.isDirectory() ? 'a directory' : st.isFile() ? 'a regular file' : 'not a socket'}, not vpcd's socket: check --socket (or VPCD_SOCKET)`;
  } catch {
    return undefined;
  }
}

// Why `p` cannot be a Unix socket's path (SOCKET_PATH_MAX), or undefined.
// Node truncates a longer one without a word, so vpcd would listen on (and
// vpcctl reach) a path other than the one given.
export function socketPathProblem(p: string): string | undefined {
  const n = Buffer.byteLength(p);
  return n > SOCKET_PATH_MAX ? `${p} is ${n} bytes, longer than a Unix socket's path can be (${SOCKET_PATH_MAX}): give a shorter one` : undefined;
}

// The daemon could not be reached at all.
export class UnreachableError extends Error {
  constructor(readonly socketPath: string, readonly reason: string) {
    super(UnreachableError.explain(socketPath, reason));
    this.name = 'UnreachableError';
  }

  static explain(socketPath: string, reason: string): string {
    let why: string;
    if (reason === 'ENAMETOOLONG') return `${socketPathProblem(socketPath) ?? `${socketPath}: name too long`} (--socket or VPCD_SOCKET).`;
    if (reason === 'ENOENT') why = `no socket at ${socketPath}: vpcd is not running, or listens elsewhere`;
    else if (reason === 'ECONNREFUSED' || reason === 'ENOTSOCK') why = notASocket(socketPath) ?? `nothing listens on ${socketPath}: vpcd is not running (stale socket)`;
    else if (reason === 'EACCES' || reason === 'EPERM') why = `permission denied on ${socketPath}: run as root or as a member of the socket's group`;
    else if (reason === 'ETIMEDOUT') why = `vpcd on ${socketPath} did not answer in time`;
    else why = `cannot reach vpcd on ${socketPath} (${reason})`;
    // vpcd runs when the socket refuses us: starting it is no advice then.
    if (reason === 'EACCES' || reason === 'EPERM') return `${why} (the systemd unit's group is vpc: docs/operations.md).`;
    return `${why}.\n  Start it with:  sudo vpcd --config /etc/vpcd/vpcd.yaml   (or: systemctl start vpcd)\n  Or point vpcctl at its socket:  vpcctl --socket PATH ...  (or VPCD_SOCKET=PATH)`;
  }
}

export interface Response {
  status: number;
  body: unknown;
}

export class Client {
  constructor(readonly socketPath: string, readonly timeoutMs = 30_000) {}

  raw(method: string, path: string, body?: unknown): Promise<Response> {
    if (socketPathProblem(this.socketPath)) return Promise.reject(new UnreachableError(this.socketPath, 'ENAMETOOLONG'));
    return new Promise((resolve, reject) => {
      const payload = body === undefined ? undefined : JSON.stringify(body);
      const req = http.request(
        {
          socketPath: this.socketPath,
          agent: false,
          method,
          path,
          headers: payload === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
          timeout: this.timeoutMs,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let parsed: unknown = text;
            try {
              parsed = text === '' ? undefined : JSON.parse(text);
            } catch {
              // not JSON: keep the text
            }
            resolve({ status: res.statusCode ?? 0, body: parsed });
          });
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })));
      req.on('error', (err: NodeJS.ErrnoException) => {
        const code = err.code ?? 'EUNKNOWN';
        if (['ENOENT', 'ECONNREFUSED', 'EACCES', 'EPERM', 'ETIMEDOUT', 'ENOTSOCK', 'ECONNRESET'].includes(code)) {
          if (code === 'ENOENT' && !fs.existsSync(this.socketPath)) reject(new UnreachableError(this.socketPath, 'ENOENT'));
          else reject(new UnreachableError(this.socketPath, code));
        } else {
          reject(err);
        }
      });
      if (payload !== undefined) req.write(payload);
      req.end();
    });
  }

  // A streamed GET (capture): calls onData for every chunk of a 2xx answer
  // and resolves with the trailers at its end; rejects with ApiError for any
  // other answer. No timeout: the server ends the stream. `abort` ends it
  // early from this side (the server then stops what it streams).
  stream(path: string, onData: (chunk: Buffer) => void, abort?: AbortSignal): Promise<Record<string, string | undefined>> {
    if (socketPathProblem(this.socketPath)) return Promise.reject(new UnreachableError(this.socketPath, 'ENAMETOOLONG'));
    return new Promise((resolve, reject) => {
      const req = http.request({ socketPath: this.socketPath, agent: false, method: 'GET', path, signal: abort }, (res) => {
        const status = res.statusCode ?? 0;
        if (status < 200 || status >= 300) {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            let b: Record<string, any> = {};
            try {
              b = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, any>;
            } catch {
              // not JSON
            }
            const e = (b.error ?? {}) as Record<string, unknown>;
            reject(new ApiError(status, typeof e.code === 'string' ? e.code : `HTTP_${status}`, typeof e.message === 'string' ? e.message : `HTTP ${status}`, b));
          });
          return;
        }
        res.on('data', onData);
        res.on('end', () => resolve(res.trailers));
        res.on('error', reject);
        res.on('aborted', () => resolve(res.trailers));
      });
      req.on('error', (err: NodeJS.ErrnoException) => {
        if (err.name === 'AbortError') resolve({});
        else if (['ENOENT', 'ECONNREFUSED', 'EACCES', 'EPERM', 'ENOTSOCK'].includes(err.code ?? '')) reject(new UnreachableError(this.socketPath, err.code!));
        else reject(err);
      });
      req.end();
    });
  }

  // Resolves with the body of a 2xx answer; rejects with ApiError otherwise.
  async call<T = Record<string, unknown>>(method: string, path: string, body?: unknown): Promise<T> {
    const r = await this.raw(method, path, body);
    if (r.status >= 200 && r.status < 300) return r.body as T;
    const b = (typeof r.body === 'object' && r.body !== null ? r.body : {}) as Record<string, unknown>;
    const e = (b.error ?? {}) as Record<string, unknown>;
    throw new ApiError(r.status, typeof e.code === 'string' ? e.code : `HTTP_${r.status}`, typeof e.message === 'string' ? e.message : String(r.body), b);
  }
}
