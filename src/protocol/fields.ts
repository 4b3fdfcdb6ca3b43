// Hand-written validators for the master <-> worker messages: a worker
// loads these on every spawn, and zod cost ~60 ms of CPU per worker start.
// Each throws a ProtocolError (or the subclass a caller names) with the key.

export class ProtocolError extends Error {
  override name = 'ProtocolError';
}

export type Obj = Record<string, unknown>;

type ErrorClass = new (message: string) => Error;

export function object(v: unknown, what: string, Err: ErrorClass = ProtocolError): Obj {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Err(`${what}: expected an object`);
  return v as Obj;
}

export function int(o: Obj, key: string, min = 0): number {
  const v = o[key];
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min) throw new ProtocolError(`${key}: expected an integer >= ${min}`);
  return v;
}

export function num(o: Obj, key: string): number {
  const v = o[key];
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new ProtocolError(`${key}: expected a number >= 0`);
  return v;
}

export function str(o: Obj, key: string): string {
  const v = o[key];
  if (typeof v !== 'string') throw new ProtocolError(`${key}: expected a string`);
  return v;
}

export function strings(o: Obj, key: string): string[] {
  const v = o[key];
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw new ProtocolError(`${key}: expected a list of strings`);
  return v as string[];
}

export function bool(o: Obj, key: string): boolean {
  const v = o[key];
  if (typeof v !== 'boolean') throw new ProtocolError(`${key}: expected true or false`);
  return v;
}
