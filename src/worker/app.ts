// Loading the user's app module. Two kinds of app:
// - a handler app: the default export is a request listener `(req, res) =>
//   ...`, or `{ handler, init?, setup?, close? }`; the worker creates one
//   server per address and calls `setup(server, ctx)` on each (attach ws or
//   socket.io there);
// - a server app: an unmodified file that creates its own server and calls
//   `listen(port)` (Express `app.listen`, Fastify, Koa, Hono's `serve`...);
//   its listen is given the inherited socket (see inherited.ts). Its export,
//   if any, may still carry `init` and `close`.
// Plain `module.exports = fn` (CommonJS) works too, since `import()` puts it
// on `default`.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Server } from 'node:net';
import { pathToFileURL } from 'node:url';

export interface AppContext {
  readonly generation: number;
  readonly worker: number;
  /** Fires when this worker starts draining: end WebSockets (close code 1001) and streams. */
  readonly signal: AbortSignal;
  /** The server of each listen address, by address, once it was given its socket. */
  readonly servers: ReadonlyMap<string, Server>;
}

export type RequestListener = (req: IncomingMessage, res: ServerResponse) => void;

export interface Hooks {
  readonly init?: (ctx: AppContext) => unknown;
  /** Runs once the worker's connections are gone (or were destroyed at the drain deadline). */
  readonly close?: (ctx: AppContext) => unknown;
}

export type App =
  | (Hooks & { readonly kind: 'handler'; readonly handler: RequestListener; readonly setup?: (server: Server, ctx: AppContext) => unknown })
  | (Hooks & { readonly kind: 'server' });

export class AppShapeError extends Error {
  override name = 'AppShapeError';
}

/**
 * Imports `file` and reads its export. `listened()` says whether the module
 * called listen() while it was imported: then it is a server app whatever
 * it exports (an Express file that ends in `module.exports = app;
 * app.listen(3000)` exports a function too).
 */
export async function loadApp(file: string, listened: () => boolean): Promise<App> {
  const mod: unknown = await import(pathToFileURL(file).href);
  const exported = (mod as { default?: unknown }).default ?? mod;
  return toApp(exported, file, listened());
}

const HOOKS = ['init', 'setup', 'close'] as const;

function toApp(value: unknown, file: string, listened: boolean): App {
  if (typeof value === 'function') return listened ? { kind: 'server' } : { kind: 'handler', handler: value as RequestListener };
  const fields = value !== null && typeof value === 'object' ? (value as Record<string, unknown>) : {};
  for (const name of HOOKS) {
    const hook = fields[name];
    if (hook !== undefined && typeof hook !== 'function') throw new AppShapeError(`${file}: ${name} must be a function`);
  }
  const hooks: Hooks = {
    ...(fields['init'] ? { init: fields['init'] as Hooks['init'] & {} } : {}),
    ...(fields['close'] ? { close: fields['close'] as Hooks['close'] & {} } : {}),
  };
  const { handler, setup } = fields;
  if (handler !== undefined && typeof handler !== 'function') throw new AppShapeError(`${file}: handler must be a function`);
  if (listened || handler === undefined) {
    if (setup !== undefined) {
      throw new AppShapeError(`${file}: setup(server, ctx) needs a handler; an app that listens itself has its own server`);
    }
    return { kind: 'server', ...hooks };
  }
  return {
    kind: 'handler',
    handler: handler as RequestListener,
    ...(setup ? { setup: setup as (server: Server, ctx: AppContext) => unknown } : {}),
    ...hooks,
  };
}
