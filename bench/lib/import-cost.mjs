#!/usr/bin/env node
// What importing one module costs a fresh process: wall and CPU ms of
// `await import(SPEC)` (a package name, a node: builtin, or a path relative
// to the checkout such as dist/config/index.js). Lives inside the checkout
// so that package names resolve from its node_modules. Prints one JSON line.
//   node bench/lib/import-cost.mjs SPEC
import { performance } from 'node:perf_hooks';

const spec = process.argv[2];
const target = spec.startsWith('dist/') ? new URL(`../../${spec}`, import.meta.url).href : spec;
const cpu = process.cpuUsage();
const started = performance.now();
await import(target);
const wallMs = performance.now() - started;
const used = process.cpuUsage(cpu);
process.stdout.write(`${JSON.stringify({ wallMs, cpuMs: (used.user + used.system) / 1000 })}\n`);
