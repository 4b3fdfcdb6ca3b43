// Loading the user's app module: a default-exported request listener, or
// `{ handler, init?, close? }`. Plain `module.exports = fn` (CommonJS) works
// too, since `import()` puts it on `default`.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { pathToFileURL } from 'node:url';

export interface AppContext {
  readonly generation: number;
  readonly worker: number;
  /** Fires when this worker starts draining: end WebSockets and streams. */
  readonly signal: AbortSignal;
}

export type RequestListener = (req: IncomingMessage, res: ServerResponse) => void;

export interface App {
  readonly handler: RequestListener;
  readonly init?: (ctx: AppContext) => unknown;
  readonly close?: (ctx: AppContext) => unknown;
}

export class AppShapeError extends Error {
  override name = 'AppShapeError';
}

export async function loadApp(file: string): Promise<App> {
  const mod: unknown = await import(pathToFileURL(file).href);
  const exported = (mod as { default?: unknown }).default ?? mod;
  return toApp(exported, file);
}

function toApp(value: unknown, file: string): App {
  if (typeof value === 'function') return { handler: value as RequestListener };
  if (value !== null && typeof value === 'object') {
    const { handler, init, close } = value as Record<string, unknown>;
    if (typeof handler !== 'function') {
      throw new AppShapeError(`${file}: the default export has no handler function`);
    }
    for (const [name, hook] of [['init', init], ['close', close]] as const) {
      if (hook !== undefined && typeof hook !== 'function') {
        throw new AppShapeError(`${file}: ${name} must be a function`);
      }
    }
    return {
      handler: handler as RequestListener,
      ...(init ? { init: init as App['init'] & {} } : {}),
      ...(close ? { close: close as App['close'] & {} } : {}),
    };
  }
  throw new AppShapeError(
    `${file}: default export must be a request listener (req, res) => ... or { handler, init?, close? }`,
  );
}
