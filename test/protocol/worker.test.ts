// The master <-> worker messages are validated at the edge, by hand.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { envelope, ENVELOPE_KEY, openEnvelope, parseMasterMessage, parseWorkerMessage, ProtocolError } from '../../src/protocol/worker.js';

const start = {
  type: 'start', generation: 2, index: 0, app: '/srv/app.js', drainTimeoutMs: 1000, heartbeatMs: 1000, countRequests: true,
  listeners: [{ fd: 4, address: '127.0.0.1:8080', backlog: 511 }, { fd: 5, address: '[::]:443', backlog: 16, tls: { cert: 'C', key: 'K', sni: [], http2: false } }],
};

describe('protocol', () => {
  it('accepts every message either side sends', () => {
    assert.deepEqual(parseMasterMessage(start), start);
    const drain = { type: 'drain', seq: 3, drainTimeoutMs: 5, keep: ['127.0.0.1:8081'] };
    assert.deepEqual(parseMasterMessage(drain), drain);
    const close = { type: 'close', seq: 4, addresses: ['127.0.0.1:8081'] };
    assert.deepEqual(parseMasterMessage(close), close);
    for (const m of [
      { type: 'ready' },
      { type: 'heartbeat' },
      { type: 'ack', seq: 1, result: 'ok' },
      { type: 'ack', seq: 2, result: 'refused', reason: 'no such address' },
      { type: 'failed', phase: 'init', error: { name: 'Error', message: 'boom', stack: 'Error: boom' } },
      { type: 'drained', connections: 3, killed: 0, durationMs: 1.5 },
    ]) assert.deepEqual(parseWorkerMessage(m), m);
  });

  it('refuses malformed messages with the key at fault', () => {
    const bad: [unknown, RegExp][] = [
      [null, /expected an object/],
      [{ type: 'nope' }, /unknown message type/],
      [{ ...start, listeners: [{ fd: 2, address: 'x', backlog: 1 }] }, /fd: expected an integer >= 3/],
      [{ ...start, listeners: 'x' }, /listeners: expected an array/],
      [{ ...start, generation: 0 }, /generation/],
      [{ ...start, countRequests: 'yes' }, /countRequests: expected true or false/],
      [{ type: 'drain', seq: 1.5, drainTimeoutMs: 1, keep: [] }, /seq/],
      [{ type: 'drain', seq: 1, drainTimeoutMs: 1, keep: [1] }, /keep: expected a list of strings/],
      [{ type: 'close', seq: 1 }, /addresses/],
    ];
    for (const [raw, message] of bad) assert.throws(() => parseMasterMessage(raw), (e: unknown) => e instanceof ProtocolError && message.test(e.message));
    assert.throws(() => parseWorkerMessage({ type: 'failed', phase: 'lunch', error: { name: 'E', message: 'm' } }), /phase/);
    assert.throws(() => parseWorkerMessage({ type: 'drained', connections: -1, killed: 0, durationMs: 0 }), /connections/);
  });

  it('carries its messages in an envelope of its own and ignores everything else on the channel', () => {
    const ready = { type: 'ready' } as const;
    assert.deepEqual(openEnvelope(envelope(ready)), ready);
    assert.deepEqual(openEnvelope(JSON.parse(JSON.stringify(envelope(ready)))), ready, 'survives the IPC serialization');
    for (const foreign of ['ready', { type: 'ready' }, { message: { type: 'ready' } }, { [ENVELOPE_KEY]: 2, message: ready }, null, 42]) {
      assert.equal(openEnvelope(foreign), undefined, `not ours: ${JSON.stringify(foreign)}`);
    }
  });
});
