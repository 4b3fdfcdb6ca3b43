// Validation of control requests at the edge (the master's control server).
// Apart from control.ts so that the types the CLI and the package's
// declarations use do not load zod.
import * as z from '../vendor/zod.js';
import type { ControlRequest, ParsedControlRequest } from './control.js';

export const controlRequestSchema = z.discriminatedUnion('cmd', [
  z.object({ cmd: z.literal('status') }),
  z.object({ cmd: z.literal('stop'), fast: z.boolean().default(false) }),
  z.object({ cmd: z.literal('reload'), waitDrain: z.boolean().default(false) }),
]);

// The written-out types and the schema must agree, in both directions.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
export const requestTypesAgree: Same<z.input<typeof controlRequestSchema>, ControlRequest> &
  Same<z.output<typeof controlRequestSchema>, ParsedControlRequest> = true;
