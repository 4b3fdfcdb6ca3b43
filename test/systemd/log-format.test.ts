// The log's formats and the worker-output labelling, in this process:
// which format is chosen (JOURNAL_STREAM against stdout's real device and
// inode), journal lines, and how worker lines are split, bounded, labelled
// and flushed.
import assert from 'node:assert/strict';
import { closeSync, fstatSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { after, describe, it } from 'node:test';
import { chooseLogFormat, isJournalStream } from '../../src/log/format.js';
import { journalLine, syslogPriority } from '../../src/log/journal.js';
import type { LogRecord, StreamFd } from '../../src/log/output.js';
import { MAX_LINE_CHARS, pipeWorkerOutput, recordOf, workerOutputClosed } from '../../src/master/worker-output.js';

const dir = mkdtempSync(join(tmpdir(), 'handover-log-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('choosing the format', () => {
  it('journal only when JOURNAL_STREAM names the device and inode stdout is open on', () => {
    const fd = openSync(join(dir, 'stream'), 'w');
    const other = openSync(join(dir, 'other'), 'w');
    try {
      const st = fstatSync(fd);
      const env = { JOURNAL_STREAM: `${st.dev}:${st.ino}` };
      assert.equal(isJournalStream(env, fd), true);
      assert.equal(isJournalStream(env, other), false, 'inherited by a process whose stdout went elsewhere');
      assert.equal(isJournalStream({ JOURNAL_STREAM: 'x:y' }, fd), false);
      assert.equal(chooseLogFormat('auto', env, fd, true), 'journal');
      assert.equal(chooseLogFormat('auto', env, other, true), 'pretty', 'a terminal');
      assert.equal(chooseLogFormat('auto', env, other, false), 'json');
      assert.equal(chooseLogFormat('json', env, fd, true), 'json', 'the configuration wins over detection');
      assert.equal(chooseLogFormat('journal', { HANDOVER_LOG_PRETTY: '0' }, fd, true), 'json', 'HANDOVER_LOG_PRETTY=0 (what the tests set) wins');
      assert.equal(chooseLogFormat('json', { HANDOVER_LOG_FORMAT: 'journal', HANDOVER_LOG_PRETTY: '0' }, other, true), 'journal');
    } finally {
      closeSync(fd);
      closeSync(other);
    }
  });

  it('journal lines: <priority>, [g w] for worker events, message, key=value; one line whatever the message', () => {
    assert.equal(journalLine({ level: 40, time: 't', pid: 1, name: 'master', msg: 'a b', port: 80, host: 'x y' }), '<4>a b port=80 host="x y"');
    assert.equal(journalLine({ level: 30, generation: 3, worker: 1, msg: 'hi\nthere', err: { type: 'Error', message: 'boom', stack: '...' } }), '<6>[g3 w1] hi\\nthere err="boom"');
    assert.deepEqual([10, 20, 30, 40, 50, 60].map((l) => syslogPriority(l)), [7, 7, 6, 4, 3, 2]);
    assert.deepEqual(['warn', 'ERROR', 'bogus'].map((l) => syslogPriority(l)), [4, 3, 6]);
  });
});

describe('worker output', () => {
  const labels = { generation: 2, worker: 1, pid: 4242 };

  it('labels a JSON line by adding only what it lacks, keeping its exact text', () => {
    const [record, verbatim] = recordOf('{"msg":"x","big":12345678901234567890}', 1, labels);
    assert.equal(verbatim, '{"generation":2,"worker":1,"msg":"x","big":12345678901234567890}');
    assert.equal(record['msg'], 'x');
    assert.equal(recordOf('{"generation":7,"worker":0,"msg":"own"}', 1, labels)[1], '{"generation":7,"worker":0,"msg":"own"}');
    assert.equal(recordOf('{}', 2, labels)[1], '{"generation":2,"worker":1}');
    const [text] = recordOf('<4>careful', 1, labels);
    assert.deepEqual([text['level'], text['msg'], text['stream'], text['pid']], [40, 'careful', 'stdout', 4242]);
    assert.equal(recordOf('{not json}', 2, labels)[0]['level'], 40, 'stderr text is a warning');
  });

  it('splits lines across chunks, bounds long ones, strips CR, flushes the last line at close', async () => {
    const written: [LogRecord, StreamFd][] = [];
    const output = { writeRecord: (r: LogRecord, fd: StreamFd) => void written.push([r, fd]) };
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    pipeWorkerOutput({ stdout, stderr }, labels, output);
    stdout.write('one\r\ntw');
    stdout.write('o\n\n');
    stdout.write(`${'x'.repeat(MAX_LINE_CHARS * 2 + 5)}\n`);
    stderr.write('err line\n');
    stdout.end('tail without newline');
    stderr.end();
    await workerOutputClosed(2_000);
    const out = written.filter(([, fd]) => fd === 1).map(([r]) => String(r['msg']));
    assert.deepEqual(out.map((m) => (m.startsWith('x') ? `x*${m.length}` : m)), ['one', 'two', '', `x*${MAX_LINE_CHARS}`, `x*${MAX_LINE_CHARS}`, 'x*5', 'tail without newline']);
    assert.deepEqual(written.filter(([, fd]) => fd === 2).map(([r]) => r['msg']), ['err line']);
    assert.ok(written.every(([r]) => r['generation'] === 2 && r['worker'] === 1));
  });
});
