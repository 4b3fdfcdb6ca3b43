// Control socket protocol: newline-delimited JSON over a Unix stream socket.
// One request per connection; the master answers with one line. For `stop`
// the master keeps the connection open until it exits, so the client can
// wait for the close.
import { z } from 'zod';

export const ControlRequest = z.discriminatedUnion('cmd', [
  z.object({ cmd: z.literal('status') }),
  z.object({ cmd: z.literal('stop'), fast: z.boolean().default(false) }),
  z.object({ cmd: z.literal('reload'), waitDrain: z.boolean().default(false) }),
]);
export type ControlRequest = z.input<typeof ControlRequest>;
export type ParsedControlRequest = z.output<typeof ControlRequest>;

export type ControlResponse =
  | { ok: true; result: unknown }
  | { ok: false; error: string; code?: string; result?: unknown };

export const MAX_CONTROL_LINE = 64 * 1024;
