// The CLI's cheap way to the master's control socket must land exactly where
// the full validation (what the master itself uses) lands, for every way a
// file can name, hide or leave out control.socket.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { DEFAULT_DEADLINES, locateMaster } from '../../src/cli/target.js';
import { configSchema, loadConfig } from '../../src/config/index.js';
import { HELLO } from '../harness/master.js';

const dir = mkdtempSync(join(tmpdir(), 'handover-target-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const base = `app: ${HELLO}\nlisten: [{ address: 127.0.0.1:0 }]\n`;

const cases: [string, string][] = [
  ['no control key', base],
  ['control only in comment lines', `# control: { socket: ./a.sock }\n${base}  # control:\n`],
  ['a relative control.socket', `${base}control: { socket: ./run/x.sock }\n`],
  ['an absolute control.socket', `${base}control:\n  socket: ${join(dir, 'abs.sock')}\n`],
  ['control.socket after a trailing comment naming control', `app: ${HELLO} # control panel\nlisten: [{ address: 127.0.0.1:0 }]\n`],
  ['a key spelt with an escape', `${base}"\\x63ontrol": { socket: ./escaped.sock }\n`],
  ['a block scalar with a # line', `${base}env:\n  NOTE: |\n    # control: { socket: ./no.sock }\n    text\n`],
  ['an anchored control section', `control: &c { socket: ./anchored.sock }\n${base}`],
  ['control.socket as a block, with comments', `${base}control:   # where the CLI finds the master\n\n  # the socket:\n  socket: /run/handover/web.sock  # 0600\n`],
  ['control.socket quoted', `${base}control: { socket: "./quoted.sock" }\n`],
  ['control.socket in single quotes, as a block', `${base}control:\n  socket: '${join(dir, 'single.sock')}'\n`],
  ['control.socket quoted with a space inside', `${base}control: { socket: "./with space.sock" }\n`],
  ['control.socket without a slash', `${base}control: { socket: plain.sock }\n`],
  ['control in another value', `${base}env: { MODE: remote-control }\ncontrol: { socket: ./two.sock }\n`],
  ['deadlines set', `${base}reload: { ready_timeout: 2m, settle: 1500ms, drain_timeout: 90 }\n`],
  ['deadlines in a block, quoted', `${base}reload:\n  ready_timeout: "20s"\n  drain_timeout: '1m30s'\n`],
];

describe('locateMaster: the control socket without full validation', () => {
  for (const [name, text] of cases) {
    it(`finds what the master finds: ${name}`, async () => {
      const file = join(dir, `${name.replace(/\W+/g, '-')}.yaml`);
      writeFileSync(file, text);
      const config = loadConfig(file);
      // Without deadlines (status, stop) the cheapest path is taken.
      assert.equal((await locateMaster(file, false)).socket, config.controlSocket);
      const target = await locateMaster(file, true);
      assert.equal(target.socket, config.controlSocket);
      // The CLI needs an upper bound of each deadline (how long to wait for the master).
      for (const key of ['readyTimeoutMs', 'settleMs', 'drainTimeoutMs'] as const) {
        assert.ok(target.deadlines[key] >= config.reload[key], `${key}: ${target.deadlines[key]} >= ${config.reload[key]}`);
      }
    });
  }

  it('falls back to the full validation, which explains, for a file it cannot read', async () => {
    const file = join(dir, 'broken.yaml');
    writeFileSync(file, `${base}control: { socket: [not, a, path] }\n`);
    await assert.rejects(locateMaster(file, false), (err: Error) => err.name === 'ConfigError' && /control\.socket/.test(err.message));
    writeFileSync(file, `${base}control: { socket: "unterminated\n`);
    await assert.rejects(locateMaster(file, false), (err: Error) => err.name === 'ConfigError' && /broken\.yaml:\d+/.test(err.message));
    await assert.rejects(locateMaster(join(dir, 'absent.yaml'), false), /cannot read: ENOENT/);
  });

  it("assumes deadlines no shorter than the schema's defaults", () => {
    const d = configSchema.parse({ app: HELLO, listen: [{ address: '127.0.0.1:0' }] }).reload;
    assert.ok(DEFAULT_DEADLINES.readyTimeoutMs >= d.ready_timeout);
    assert.ok(DEFAULT_DEADLINES.settleMs >= d.settle);
    assert.ok(DEFAULT_DEADLINES.drainTimeoutMs >= d.drain_timeout);
  });
});
