// The default control socket's hash (src/config/sha256.ts) against
// node:crypto's SHA-256: every length across the padding's block
// boundaries, multi-byte characters, and the socket name a master of an
// earlier version computed for the same path (so a new CLI finds it).
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import { defaultControlSocket } from '../../src/config/index.js';
import { sha256Hex } from '../../src/config/sha256.js';

const reference = (text: string): string => createHash('sha256').update(text).digest('hex');

describe('sha256Hex', () => {
  test('equals node:crypto for every length up to 200 characters, and across two blocks of padding', () => {
    for (let n = 0; n <= 200; n++) {
      const text = randomBytes(n).toString('latin1');
      assert.equal(sha256Hex(text), reference(text), `length ${n}`);
    }
  });

  test('hashes UTF-8 bytes, as node:crypto does with a string', () => {
    for (const text of ['/etc/é.yaml', '/srv/日本語/handover.yaml', '/tmp/🙂'.repeat(20), '']) assert.equal(sha256Hex(text), reference(text));
  });

  test('gives the known digest of "abc" (FIPS 180-4, B.1)', () => {
    assert.equal(sha256Hex('abc'), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });

  test('names the default control socket as before: 10 hex of sha256(absolute path)', () => {
    const path = '/srv/web/handover.yaml';
    assert.equal(defaultControlSocket(path, {}, 1000), `/tmp/handover-1000/handover-${reference(path).slice(0, 10)}.sock`);
  });
});
