// The part of zod handover uses, as one module. `npm run build` replaces
// this file's output with a bundle of just these exports (scripts/vendor.mjs):
// zod's own entry points load 94 modules, its 50 locales among them, and that
// was the largest share of `handover check`'s start-up. Everything imports
// zod from here (`import * as z from '../vendor/zod.js'`), so one copy is
// loaded; a function missing here is a type error, not a runtime surprise.
// Under tsx (tests, bench) this file is a plain re-export.
export {
  NEVER,
  array,
  boolean,
  discriminatedUnion,
  enum,
  int,
  literal,
  number,
  object,
  record,
  strictObject,
  string,
  toJSONSchema,
  union,
} from 'zod';
export type { input, output } from 'zod';
export type * as core from 'zod/v4/core';
