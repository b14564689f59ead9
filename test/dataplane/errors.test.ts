// Unit tests of errors.ts: the code table and the native error mapping.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  ConflictError,
  DataplaneError,
  ERROR_CODES,
  ErrorCode,
  LimitError,
  NATIVE_CODE_MAP,
  NativeFailure,
  NotFoundError,
  StateError,
  ValidationError,
  errorClassFor,
  isErrorCode,
  makeError,
  mapNativeError,
} from '../../src/dataplane/errors';
import { NATIVE_TABLES } from '../../src/dataplane/native-tables';
import type { NativeErrorCode } from '../../src/dataplane/native';

function nativeError(code: string, message = `native says ${code}`): Error & { code: string } {
  return Object.assign(new Error(message), { code });
}

// The engine's status table (native-tables.ts mirrors it; native-tables.test.ts checks the mirror).
const ALL_NATIVE_CODES = NATIVE_TABLES.statuses.map((s) => s.code).filter((c): c is NativeErrorCode => c !== 'OK');

describe('error table', () => {
  test('every code is stable-looking, described and has a class', () => {
    for (const [code, entry] of Object.entries(ERROR_CODES)) {
      assert.match(code, /^ERR_[A-Z_]+$/);
      assert.ok(entry.description.length > 10, code);
      const e = makeError(code as ErrorCode, 'why');
      assert.ok(e instanceof DataplaneError);
      assert.ok(e instanceof Error);
      assert.ok(e instanceof errorClassFor(code as ErrorCode));
      assert.equal(e.code, code);
      assert.equal(e.category, entry.category);
    }
  });
  test('categories pick the class', () => {
    assert.ok(makeError('ERR_INVALID_MAC', 'x') instanceof ValidationError);
    assert.ok(makeError('ERR_INVALID_VLAN', 'x') instanceof ValidationError);
    assert.ok(makeError('ERR_TRUNK_DUPLICATE_VLAN', 'x') instanceof ValidationError);
    assert.ok(makeError('ERR_UNKNOWN_PORT', 'x') instanceof NotFoundError);
    assert.ok(makeError('ERR_UNKNOWN_MAC', 'x') instanceof NotFoundError);
    assert.ok(makeError('ERR_DUPLICATE_VNI', 'x') instanceof ConflictError);
    assert.ok(makeError('ERR_SWITCH_IN_USE', 'x') instanceof ConflictError);
    assert.ok(makeError('ERR_LIMIT', 'x') instanceof LimitError);
    assert.ok(makeError('ERR_CLOSED', 'x') instanceof StateError);
    assert.ok(makeError('ERR_NATIVE', 'x') instanceof NativeFailure);
    assert.ok(!(makeError('ERR_NATIVE', 'x') instanceof ValidationError));
  });
  test('message is "<field>: <reason>"; name is the class name; JSON is stable', () => {
    const e = makeError('ERR_INVALID_VNI', 'must be an integer in 1..16777215 (got 0)', 'vni');
    assert.equal(e.message, 'vni: must be an integer in 1..16777215 (got 0)');
    assert.equal(e.field, 'vni');
    assert.equal(e.name, 'ValidationError');
    assert.deepEqual(JSON.parse(JSON.stringify(e)), { code: 'ERR_INVALID_VNI', message: e.message, field: 'vni' });
    const f = makeError('ERR_CLOSED', 'the dataplane is closed');
    assert.equal(f.message, 'the dataplane is closed');
    assert.equal(f.field, undefined);
    assert.equal('field' in f, false);
    assert.deepEqual(f.toJSON(), { code: 'ERR_CLOSED', message: 'the dataplane is closed' });
  });
  test('isErrorCode', () => {
    assert.equal(isErrorCode('ERR_CLOSED'), true);
    assert.equal(isErrorCode('ERR_NOPE'), false);
    assert.equal(isErrorCode('toString'), false);
    assert.equal(isErrorCode(1), false);
  });
});

describe('mapNativeError', () => {
  const expected: Record<NativeErrorCode, [ErrorCode, Function]> = {
    INVALID_ARGUMENT: ['ERR_INVALID_ARGUMENT', ValidationError],
    NOT_FOUND: ['ERR_NOT_FOUND', NotFoundError],
    ALREADY_EXISTS: ['ERR_ALREADY_EXISTS', ConflictError],
    LIMIT_EXCEEDED: ['ERR_LIMIT', LimitError],
    IN_USE: ['ERR_IN_USE', ConflictError],
    CLOSED: ['ERR_CLOSED', StateError],
    SYSTEM: ['ERR_SYSTEM', NativeFailure],
    INTERNAL: ['ERR_NATIVE', NativeFailure],
  };

  for (const nativeCode of ALL_NATIVE_CODES) {
    test(`${nativeCode} -> ${expected[nativeCode][0]}`, () => {
      const cause = nativeError(nativeCode);
      const e = mapNativeError(cause);
      assert.equal(e.code, expected[nativeCode][0]);
      assert.ok(e instanceof expected[nativeCode][1]);
      assert.equal(e.nativeCode, nativeCode);
      assert.equal(e.cause, cause);
      assert.match(e.message, new RegExp(`native says ${nativeCode} \\(native ${nativeCode}\\)`));
      assert.equal(NATIVE_CODE_MAP[nativeCode], expected[nativeCode][0]);
    });
  }

  test('the table covers every native code', () => {
    assert.deepEqual(Object.keys(NATIVE_CODE_MAP).sort(), [...ALL_NATIVE_CODES].sort());
  });

  test('context refines codes and adds op and field', () => {
    const e = mapNativeError(nativeError('NOT_FOUND', 'no such port'), {
      op: 'deletePort',
      field: 'name',
      codes: { NOT_FOUND: 'ERR_UNKNOWN_PORT' },
    });
    assert.ok(e instanceof NotFoundError);
    assert.equal(e.code, 'ERR_UNKNOWN_PORT');
    assert.equal(e.field, 'name');
    assert.equal(e.message, 'name: deletePort: no such port (native NOT_FOUND)');
    // a field the native message already names is not repeated
    const dup = mapNativeError(nativeError('ALREADY_EXISTS', 'mac: 02:00:00:00:00:55 is static elsewhere'), {
      op: 'addStaticMac',
      field: 'mac',
      codes: { ALREADY_EXISTS: 'ERR_DUPLICATE_MAC' },
    });
    assert.equal(dup.message, 'mac: addStaticMac: 02:00:00:00:00:55 is static elsewhere (native ALREADY_EXISTS)');
    assert.ok(dup instanceof ConflictError);
    // overrides only apply to their own code
    assert.equal(mapNativeError(nativeError('CLOSED'), { codes: { NOT_FOUND: 'ERR_UNKNOWN_PORT' } }).code, 'ERR_CLOSED');
    assert.equal(mapNativeError(nativeError('IN_USE'), { codes: { IN_USE: 'ERR_SWITCH_IN_USE' } }).code, 'ERR_SWITCH_IN_USE');
    assert.equal(mapNativeError(nativeError('ALREADY_EXISTS'), { codes: { ALREADY_EXISTS: 'ERR_DUPLICATE_VNI' } }).code, 'ERR_DUPLICATE_VNI');
  });

  test('unknown codes, plain errors and non-errors become ERR_NATIVE', () => {
    const a = mapNativeError(nativeError('EWHAT'));
    assert.equal(a.code, 'ERR_NATIVE');
    assert.equal(a.nativeCode, 'EWHAT');
    const b = mapNativeError(new Error('boom'));
    assert.equal(b.code, 'ERR_NATIVE');
    assert.equal(b.nativeCode, undefined);
    assert.match(b.message, /boom \(native error\)/);
    assert.equal(mapNativeError('text').code, 'ERR_NATIVE');
    assert.equal(mapNativeError(undefined).code, 'ERR_NATIVE');
    assert.equal(mapNativeError({ code: 42 }).code, 'ERR_NATIVE');
    assert.equal(mapNativeError(nativeError('toString')).code, 'ERR_NATIVE');
    assert.ok(mapNativeError(null) instanceof NativeFailure);
  });

  test('DataplaneErrors pass through unchanged', () => {
    const e = makeError('ERR_UNKNOWN_SWITCH', 'no switch named "x"', 'switch');
    assert.equal(mapNativeError(e, { codes: { NOT_FOUND: 'ERR_UNKNOWN_PORT' } }), e);
  });
});
