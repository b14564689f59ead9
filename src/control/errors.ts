// Every error the control plane puts on the wire, declared once.
//
// The control API answers errors as {error: {code, message, field?, line?,
// details?}}. Codes are stable strings: the dataplane's own codes
// (src/dataplane/errors.ts) pass through unchanged, and the control plane adds
// the codes below. The HTTP status follows from the code: for dataplane codes
// from their category, for control codes from this table.

import { DataplaneError, ERROR_CODES, ErrorCategory, isErrorCode } from '../dataplane';

export const CONTROL_ERROR_CODES = {
  ERR_CONFIG_SYNTAX: { status: 400, description: 'the configuration is not well-formed YAML' },
  ERR_CONFIG_INVALID: { status: 400, description: 'the configuration has one or more errors (listed in details)' },
  ERR_CONFIG_TOO_LARGE: { status: 400, description: 'the configuration is larger than CONFIG_LIMITS.maxBytes; it was not parsed' },
  ERR_CONFIG_TOO_DEEP: { status: 400, description: 'the configuration nests deeper than CONFIG_LIMITS.maxDepth; it was not parsed' },
  ERR_CONFIG_ALIASES: { status: 400, description: 'the configuration has more YAML aliases (*name) than CONFIG_LIMITS.maxAliases, or they expand too much' },
  ERR_CONFIG_EMPTY: { status: 400, description: 'the configuration is empty (no keys) while objects run: applied, it would delete every one; a file meant to delete everything says so (switches: [])' },
  ERR_UNSUPPORTED: { status: 400, description: 'a key or object kind is not supported by this build' },
  ERR_TOO_MANY_UPLINKS: { status: 400, description: 'more than one uplink: a dataplane has a single uplink (one VTEP)' },
  ERR_NO_UPLINK: { status: 400, description: 'peers and remote (vtep) FDB entries need an uplink' },
  ERR_ADDRESS_FAMILY: { status: 400, description: 'the address family of a peer or VTEP has no local VTEP address on the uplink' },
  ERR_DUPLICATE_PEER: { status: 400, description: 'the same peer (VTEP address) is listed twice for a switch' },
  ERR_UPLINK_IN_USE: { status: 409, description: 'the uplink still has peers or remote FDB entries' },
  ERR_DUPLICATE_UUID: { status: 400, description: 'two objects in one configuration share a UUID' },
  ERR_SPEC_CONFLICT: { status: 409, description: 'an object with this name exists with a different spec' },
  ERR_UUID_CONFLICT: { status: 409, description: 'the UUID is taken by another object, or the object has another UUID' },
  ERR_PORT_IN_USE: { status: 409, description: 'the port is still referenced by static FDB entries' },
  ERR_BAD_REQUEST: { status: 400, description: 'the request body is not valid JSON or lacks a required field' },
  ERR_ROUTE_NOT_FOUND: { status: 404, description: 'no such API route' },
  ERR_METHOD_NOT_ALLOWED: { status: 405, description: 'the route exists but not with this method' },
  ERR_ROLLBACK_FAILED: { status: 500, description: 'a plan step failed and undoing the applied steps failed too; running state may differ from the state file' },
  ERR_PERSIST_FAILED: { status: 500, description: 'the change was applied but could not be written to the state file, and was undone' },
  ERR_STATE_CORRUPT: { status: 500, description: 'the state file is unreadable, fails its checksum or its schema' },
  ERR_STATE_VERSION: { status: 500, description: 'the state file was written by a newer, incompatible vpcd' },
  ERR_SHUTTING_DOWN: { status: 503, description: 'vpcd is stopping and accepts no more changes' },
  ERR_INTERNAL: { status: 500, description: 'an unexpected error in vpcd (a bug)' },
} as const satisfies Record<string, { status: number; description: string }>;

export type ControlErrorCode = keyof typeof CONTROL_ERROR_CODES;
export type AnyErrorCode = ControlErrorCode | keyof typeof ERROR_CODES;

// HTTP status of a dataplane error, by its category.
const STATUS_BY_CATEGORY: Record<ErrorCategory, number> = {
  validation: 400,
  not_found: 404,
  conflict: 409,
  limit: 422,
  state: 503,
  native: 500,
};

// One error found in a configuration or request: where and what.
export interface ErrorDetail {
  code: AnyErrorCode;
  message: string; // "<path>: <reason>"
  field?: string; // path, e.g. switches[0].ports[1].mtu
  line?: number; // 1-based, in the YAML file
  column?: number;
}

export class ControlError extends Error {
  readonly code: AnyErrorCode;
  readonly status: number;
  declare readonly field?: string;
  declare readonly line?: number;
  declare readonly details?: ErrorDetail[];
  // Extra fields for the wire (e.g. the failed plan step).
  declare readonly extra?: Record<string, unknown>;

  constructor(code: AnyErrorCode, message: string, opts: { field?: string; line?: number; details?: ErrorDetail[]; cause?: unknown; extra?: Record<string, unknown>; status?: number } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'ControlError';
    this.code = code;
    this.status = opts.status ?? statusOf(code);
    if (opts.field !== undefined) this.field = opts.field;
    if (opts.line !== undefined) this.line = opts.line;
    if (opts.details !== undefined) this.details = opts.details;
    if (opts.extra !== undefined) this.extra = opts.extra;
  }

  toJSON(): Record<string, unknown> {
    const out: Record<string, unknown> = { code: this.code, message: this.message };
    if (this.field !== undefined) out.field = this.field;
    if (this.line !== undefined) out.line = this.line;
    if (this.details !== undefined) out.details = this.details;
    if (this.extra !== undefined) Object.assign(out, this.extra);
    return out;
  }
}

export function statusOf(code: string): number {
  if (Object.prototype.hasOwnProperty.call(CONTROL_ERROR_CODES, code)) return CONTROL_ERROR_CODES[code as ControlErrorCode].status;
  if (isErrorCode(code)) return STATUS_BY_CATEGORY[ERROR_CODES[code].category];
  return 500;
}

// Anything thrown -> ControlError (dataplane errors keep code, message, field).
export function toControlError(err: unknown): ControlError {
  if (err instanceof ControlError) return err;
  if (err instanceof DataplaneError) {
    return new ControlError(err.code, err.message, { field: err.field, cause: err });
  }
  const message = err instanceof Error ? err.message : String(err);
  return new ControlError('ERR_INTERNAL', message, { cause: err });
}
