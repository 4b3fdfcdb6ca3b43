// The contenders by id, as the scenarios and --contenders name them.
import type { Box } from '../lib/box.js';
import { Cluster } from './cluster.js';
import type { Contender, ContenderOptions } from './contender.js';
import { Handover } from './handover.js';
import { Pm2 } from './pm2.js';
import { Reuseport } from './reuseport.js';

export const CONTENDERS = ['reuseport', 'handover-migrate', 'handover-inherit', 'cluster-none', 'cluster-rr', 'pm2'] as const;
/**
 * Not in `npm run bench`, for bench/head-to-head.ts: handover (migrate) with
 * `metrics.listen` set, so that its workers count every response (the
 * others run without an endpoint, and their workers count nothing).
 */
export const VARIANTS = ['handover-metrics'] as const;
export type ContenderId = (typeof CONTENDERS)[number] | (typeof VARIANTS)[number];
/** Those that can reload (scenarios 3 and 4). */
export const RELOADING: readonly ContenderId[] = CONTENDERS.filter((c) => c !== 'reuseport');

export function makeContender(id: ContenderId, box: Box, o: ContenderOptions): Contender {
  switch (id) {
    case 'reuseport':
      return new Reuseport(box, o);
    case 'handover-migrate':
      return new Handover(box, 'migrate', o);
    case 'handover-inherit':
      return new Handover(box, 'inherit', o);
    case 'handover-metrics':
      return new Handover(box, 'migrate', { ...o, metrics: true }, '-metrics');
    case 'cluster-none':
      return new Cluster(box, 'none', o);
    case 'cluster-rr':
      return new Cluster(box, 'rr', o);
    case 'pm2':
      return new Pm2(box, o);
  }
}
