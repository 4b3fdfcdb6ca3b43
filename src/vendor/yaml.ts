// The part of yaml handover uses, as one module: `npm run build` replaces
// this file's output with a bundle of just these exports (scripts/vendor.mjs)
// instead of the package's 60-odd CommonJS files. Under tsx (tests, bench)
// this file is a plain re-export.
export { LineCounter, isAlias, isMap, isNode, isPair, isScalar, isSeq, parseDocument, visit } from 'yaml';
export type { Document, Node } from 'yaml';
