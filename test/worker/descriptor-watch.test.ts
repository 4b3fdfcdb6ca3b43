// The worker's descriptor check: the descriptor table's size (its shortcut)
// is never below the count of open descriptors (in this process), and in a
// child whose soft limit is lowered to just above what it holds it warns,
// once per WARN_EVERY_MS; with room it says nothing.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { it } from 'node:test';
import { descriptorTableSize, descriptorUse } from '../../src/sys/descriptors.js';
import { hasPrlimit, setNofile } from '../harness/prlimit.js';

it('the descriptor table is never smaller than the descriptors open, with 0 to 600 more opened', () => {
  const fds: number[] = [];
  try {
    for (let n = 0; n <= 600; n += 50) {
      while (fds.length < n) fds.push(openSync('/dev/null', 'r'));
      const table = descriptorTableSize();
      const use = descriptorUse();
      assert.ok(table !== undefined && use !== undefined);
      assert.ok(table >= use.open, `${n} more: table ${table}, open ${use.open}`);
    }
  } finally {
    for (const fd of fds) closeSync(fd);
  }
});

// In a child, whose soft limit the test lowers with prlimit once it has
// said how many descriptors it holds: the test process itself could not
// spawn prlimit again to raise its own limit back.
const CHILD = `
import { descriptorUse } from ${JSON.stringify(new URL('../../src/sys/descriptors.ts', import.meta.url).pathname)};
import { DescriptorWatch, WARN_EVERY_MS } from ${JSON.stringify(new URL('../../src/worker/descriptor-watch.ts', import.meta.url).pathname)};
process.stdout.write(descriptorUse().open + '\\n');
process.stdin.once('data', () => {
  const lines = [];
  let now = 0;
  const watch = new DescriptorWatch((_fields, line) => lines.push(line), () => now);
  watch.check();
  watch.check();
  now += WARN_EVERY_MS;
  watch.check();
  process.stdout.write(JSON.stringify(lines) + '\\n');
  process.exit(0);
});
`;

async function watchIn(child: ChildProcess, soft: (open: number) => number | undefined): Promise<{ lines: string[]; limit: number | undefined }> {
  const out = child.stdout!.setEncoding('utf8');
  let text = '';
  const line = (n: number): Promise<string> => new Promise((resolve, reject) => {
    const onData = (d: string): void => {
      text += d;
      const all = text.split('\n');
      if (all.length > n) {
        out.off('data', onData);
        resolve(all[n - 1]!);
      }
    };
    out.on('data', onData);
    child.once('exit', (code) => reject(new Error(`child exited ${code} before line ${n}: ${text}`)));
  });
  const open = Number(await line(1));
  const limit = soft(open);
  if (limit !== undefined) {
    setNofile(child.pid!, `${limit}:`);
  }
  child.stdin!.write('go\n');
  return { lines: JSON.parse(await line(2)) as string[], limit };
}

it('warns when the soft limit is just above what is open, at most once per WARN_EVERY_MS; not with room', { skip: hasPrlimit ? false : 'no prlimit' }, async () => {
  for (const tight of [true, false]) {
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', CHILD], { stdio: ['pipe', 'pipe', 'inherit'] });
    try {
      const { lines, limit } = await watchIn(child, (open) => (tight ? open + 8 : undefined));
      if (tight) {
        assert.equal(lines.length, 2, lines.join('\n'));
        assert.match(lines[0]!, new RegExp(`^worker near its descriptor limit: \\d+ of ${limit} open \\(RLIMIT_NOFILE\\)`));
      } else {
        assert.deepEqual(lines, [], 'no warning with room');
      }
    } finally {
      child.kill('SIGKILL');
    }
  }
});
