// Every error the dataplane API raises, declared once.
//
// Codes are stable strings (part of the public API: the control plane puts
// them on the wire). Each code belongs to one category, and the category picks
// the class, so `err instanceof NotFoundError` and `err.code ===
// 'ERR_UNKNOWN_PORT'` never disagree. Native failures are mapped onto the same
// codes by mapNativeError(), so callers never see a raw addon error.
//
// Messages always read `<field>: <reason>` when a field is involved, e.g.
// `vni: must be an integer in 1..16777215 (got 0)`.

import type { NativeErrorCode } from './native';
import { NATIVE_TABLES } from './native-tables';

export type ErrorCategory = 'validation' | 'not_found' | 'conflict' | 'limit' | 'state' | 'native';

export const ERROR_CODES = {
  // validation: the call itself is malformed; nothing was attempted
  ERR_INVALID_ARGUMENT: { category: 'validation', description: 'an argument or option is malformed or out of range' },
  ERR_INVALID_NAME: { category: 'validation', description: 'a name is not 1..64 characters of [A-Za-z0-9._-] starting alphanumeric' },
  ERR_INVALID_MAC: { category: 'validation', description: 'a MAC address is malformed, or multicast/zero where a unicast address is required' },
  ERR_INVALID_VNI: { category: 'validation', description: 'a VNI is not an integer in 1..16777215' },
  ERR_INVALID_VLAN: { category: 'validation', description: 'a VLAN id is not an integer in 1..4094' },
  ERR_TRUNK_DUPLICATE_VLAN: { category: 'validation', description: 'a trunk port maps the same VLAN twice' },
  ERR_TRUNK_DUPLICATE_SWITCH: { category: 'validation', description: 'a trunk port maps the same switch twice (VLAN or untagged)' },
  // not found: a name refers to nothing
  ERR_UNKNOWN_SWITCH: { category: 'not_found', description: 'no switch has this name' },
  ERR_UNKNOWN_PORT: { category: 'not_found', description: 'no port has this name' },
  ERR_UNKNOWN_MAC: { category: 'not_found', description: 'no static FDB entry for this MAC on this switch' },
  ERR_NOT_FOUND: { category: 'not_found', description: 'the engine did not find the object (native NOT_FOUND)' },
  // conflict: the call is well formed but clashes with the running state
  ERR_DUPLICATE_NAME: { category: 'conflict', description: 'an object of this kind with this name exists or is being created' },
  ERR_DUPLICATE_VNI: { category: 'conflict', description: 'another switch uses this VNI or is being created with it' },
  ERR_DUPLICATE_MAC: { category: 'conflict', description: 'a static FDB entry for this MAC exists on this switch' },
  ERR_PORT_NOT_MEMBER: { category: 'conflict', description: 'the port is not a member of the switch' },
  ERR_ALREADY_EXISTS: { category: 'conflict', description: 'the engine already has this object (native ALREADY_EXISTS)' },
  ERR_SWITCH_IN_USE: { category: 'conflict', description: 'the switch still has ports attached' },
  ERR_IN_USE: { category: 'conflict', description: 'the object is still referenced (native IN_USE)' },
  // limit: a configured capacity is exhausted
  ERR_LIMIT: { category: 'limit', description: 'a capacity limit (maxPorts, maxSwitches, FDB size) is reached' },
  // state: the dataplane is not in a state that accepts the call
  ERR_CLOSED: { category: 'state', description: 'the dataplane is closed' },
  // native: the addon or the OS failed
  ERR_SYSTEM: { category: 'native', description: 'an operating system call failed in the engine (memory, hugepages, threads)' },
  ERR_NATIVE: { category: 'native', description: 'the native addon failed unexpectedly or could not be loaded' },
} as const satisfies Record<string, { category: ErrorCategory; description: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface DataplaneErrorOptions {
  field?: string;
  cause?: unknown;
  nativeCode?: string;
}

export class DataplaneError extends Error {
  readonly code: ErrorCode;
  // Path of the offending field, e.g. "vlans[1].switch"; absent when none.
  declare readonly field?: string;
  // The addon's code when the error came from native code.
  declare readonly nativeCode?: string;

  constructor(code: ErrorCode, message: string, options: DataplaneErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    if (options.field !== undefined) this.field = options.field;
    if (options.nativeCode !== undefined) this.nativeCode = options.nativeCode;
  }

  get category(): ErrorCategory {
    return ERROR_CODES[this.code].category;
  }

  toJSON(): { code: ErrorCode; message: string; field?: string } {
    return this.field === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, field: this.field };
  }
}

export class ValidationError extends DataplaneError {}
export class NotFoundError extends DataplaneError {}
export class ConflictError extends DataplaneError {}
export class LimitError extends DataplaneError {}
export class StateError extends DataplaneError {}
export class NativeFailure extends DataplaneError {}

const CLASS_BY_CATEGORY: Record<ErrorCategory, new (code: ErrorCode, message: string, options?: DataplaneErrorOptions) => DataplaneError> = {
  validation: ValidationError,
  not_found: NotFoundError,
  conflict: ConflictError,
  limit: LimitError,
  state: StateError,
  native: NativeFailure,
};

export function errorClassFor(code: ErrorCode): new (code: ErrorCode, message: string, options?: DataplaneErrorOptions) => DataplaneError {
  return CLASS_BY_CATEGORY[ERROR_CODES[code].category];
}

// The one way errors are made: picks the class from the table and formats the
// message as `<field>: <reason>`.
export function makeError(code: ErrorCode, reason: string, field?: string, options: Omit<DataplaneErrorOptions, 'field'> = {}): DataplaneError {
  const Class = errorClassFor(code);
  const message = field === undefined ? reason : `${field}: ${reason}`;
  return new Class(code, message, { ...options, field });
}

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.prototype.hasOwnProperty.call(ERROR_CODES, value);
}

// Default translation of the addon's codes, from the engine's status table
// (VPC_STATUS_CODES in native/netmap/core/command.h, through native-tables.ts).
// Callers that know what the command was about refine NOT_FOUND /
// ALREADY_EXISTS / IN_USE / LIMIT_EXCEEDED through NativeErrorContext.
type TableErrorCode = Exclude<(typeof NATIVE_TABLES.statuses)[number]['error'], ''>;
// Every error the status table names is one of ERROR_CODES (fails to compile otherwise).
const tableErrorsKnown: [Exclude<TableErrorCode, ErrorCode>] extends [never] ? true : false = true;
void tableErrorsKnown;
export const NATIVE_CODE_MAP: Readonly<Record<NativeErrorCode, ErrorCode>> = Object.freeze(
  Object.fromEntries(NATIVE_TABLES.statuses.filter((s) => s.code !== 'OK').map((s) => [s.code, s.error])) as Record<NativeErrorCode, ErrorCode>,
);

export interface NativeErrorContext {
  // What the call was, used as a prefix: "createPort: ...".
  op?: string;
  // Field the error is about, when the caller knows it.
  field?: string;
  // Per-code overrides, e.g. { NOT_FOUND: 'ERR_UNKNOWN_PORT' }.
  codes?: Partial<Record<NativeErrorCode, ErrorCode>>;
}

function nativeCodeOf(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err) {
    const code = (err as { code: unknown }).code;
    if (typeof code === 'string') return code;
  }
  return undefined;
}

function messageOf(err: unknown): string {
  if (err instanceof Error) return err.message;
  if (typeof err === 'string') return err;
  try {
    return String(err);
  } catch {
    return 'unknown error';
  }
}

// Turns anything the addon throws or rejects with into a DataplaneError.
// DataplaneErrors pass through unchanged; unknown codes and non-errors become
// ERR_NATIVE. The original error is kept as `cause`.
export function mapNativeError(err: unknown, context: NativeErrorContext = {}): DataplaneError {
  if (err instanceof DataplaneError) return err;
  const nativeCode = nativeCodeOf(err);
  let code: ErrorCode = 'ERR_NATIVE';
  if (nativeCode !== undefined && Object.prototype.hasOwnProperty.call(NATIVE_CODE_MAP, nativeCode)) {
    const known = nativeCode as NativeErrorCode;
    code = context.codes?.[known] ?? NATIVE_CODE_MAP[known];
  }
  let detail = messageOf(err) || ERROR_CODES[code].description;
  // The addon already names the field ("mac: ..."); do not say it twice.
  if (context.field !== undefined && detail.startsWith(`${context.field}: `)) detail = detail.slice(context.field.length + 2);
  const origin = nativeCode === undefined ? 'native error' : `native ${nativeCode}`;
  const reason = `${context.op === undefined ? '' : `${context.op}: `}${detail} (${origin})`;
  const options: Omit<DataplaneErrorOptions, 'field'> = { cause: err };
  if (nativeCode !== undefined) options.nativeCode = nativeCode;
  return makeError(code, reason, context.field, options);
}
