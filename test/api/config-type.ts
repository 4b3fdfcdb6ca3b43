// Checked by `tsc -p test` (part of npm test), not run: the hand-written
// ConfigOptions that the package's declarations show is the schema's input
// type, key for key, and each is assignable to the other.
import type { ConfigInput } from '../../src/config/schema.js';
import type { ConfigOptions } from '../../src/config/options.js';

/** The shape of keys, down to the leaves, with optionality and element types folded away. */
type Keys<T> = T extends readonly (infer E)[] ? Keys<E> : T extends object ? { -readonly [K in keyof T]-?: Keys<NonNullable<T[K]>> } : 'leaf';
type Same<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;

export const sameKeys: Same<Keys<ConfigOptions>, Keys<ConfigInput>> = true;
export const optionsFitSchema = ({ listen, env, node_args: args, ...rest }: ConfigOptions): ConfigInput => ({
  ...rest,
  listen: [...listen],
  ...(env ? { env: { ...env } } : {}),
  ...(args ? { node_args: [...args] } : {}),
});
export const schemaFitsOptions = (i: ConfigInput): ConfigOptions => i;
