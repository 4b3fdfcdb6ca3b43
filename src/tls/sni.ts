// Which certificate a server name gets: an exact name first, then a wildcard
// of one label (`*.example.org` covers `a.example.org`, neither
// `example.org` nor `a.b.example.org`, as RFC 6125 has clients match), else
// the address's default pair. Names are compared in lower case.

export class SniTable<T> {
  private readonly exact = new Map<string, T>();
  private readonly wildcard = new Map<string, T>();

  constructor(entries: Iterable<readonly [name: string, value: T]>) {
    for (const [name, value] of entries) {
      const lower = name.toLowerCase();
      if (lower.startsWith('*.')) this.wildcard.set(lower.slice(2), value);
      else this.exact.set(lower, value);
    }
  }

  get size(): number {
    return this.exact.size + this.wildcard.size;
  }

  /** The entry for `servername`, or undefined for the default. */
  lookup(servername: string): T | undefined {
    const name = servername.toLowerCase().replace(/\.$/, '');
    const exact = this.exact.get(name);
    if (exact !== undefined) return exact;
    const dot = name.indexOf('.');
    return dot > 0 ? this.wildcard.get(name.slice(dot + 1)) : undefined;
  }
}
