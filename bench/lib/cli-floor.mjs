#!/usr/bin/env node
// The least a `status` command can cost: the project's own control-socket
// client and nothing else (no config schema, no logger, no libc bindings).
// With --yaml CONFIG it also parses the config with yaml to find the socket,
// as a CLI must when the file sets control.socket.
//   node bench/lib/cli-floor.mjs SOCKET
//   node bench/lib/cli-floor.mjs --yaml CONFIG
import { readFileSync } from 'node:fs';
import { request } from '../../dist/cli/client.js';

const ANSWER_TIMEOUT_MS = 10_000;
let socket = process.argv[2];
if (socket === '--yaml') {
  const { parse } = await import('yaml');
  socket = parse(readFileSync(process.argv[3], 'utf8')).control.socket;
}
const { response } = await request(socket, { cmd: 'status' }, ANSWER_TIMEOUT_MS);
process.stdout.write(`${response.ok ? 'ok' : response.error}\n`);
