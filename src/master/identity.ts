// Resolving `user` / `group` from the configuration to numeric ids for the
// workers. Node has no getpwnam(), so read the databases the way libc's
// "files" service does; numeric ids are accepted as they are.
import { readFileSync } from 'node:fs';
import { ResourceShortage } from '../config/index.js';

export interface Identity {
  readonly uid?: number;
  readonly gid?: number;
}

export class IdentityError extends Error {
  override name = 'IdentityError';
}

/** The entry whose field `column` (0: name, 2: id) is `key`. */
function lookup(file: string, key: string, column = 0): string[] | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    // No file: no such user. Out of descriptors is not "not found".
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    ResourceShortage.check(err, file);
    throw new IdentityError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  for (const line of text.split('\n')) {
    const fields = line.split(':');
    if (fields[column] === key) return fields;
  }
  return undefined;
}

export function resolveIdentity(user?: string, group?: string): Identity {
  let uid: number | undefined;
  let gid: number | undefined;
  if (user !== undefined) {
    if (/^\d+$/.test(user)) {
      uid = Number(user);
      // Without a group, a worker would keep the master's (root's) gid.
      const entry = lookup('/etc/passwd', String(uid), 2);
      if (entry) gid = Number(entry[3]);
      else if (group === undefined) throw new IdentityError(`user ${user} has no entry in /etc/passwd; set group too`);
    } else {
      const entry = lookup('/etc/passwd', user);
      if (!entry) throw new IdentityError(`user "${user}" not found in /etc/passwd`);
      uid = Number(entry[2]);
      gid = Number(entry[3]);
    }
  }
  if (group !== undefined) {
    if (/^\d+$/.test(group)) gid = Number(group);
    else {
      const entry = lookup('/etc/group', group);
      if (!entry) throw new IdentityError(`group "${group}" not found in /etc/group`);
      gid = Number(entry[2]);
    }
  }
  if ((uid !== undefined || gid !== undefined) && process.getuid?.() !== 0) {
    throw new IdentityError('user/group need the master to run as root');
  }
  return { ...(uid === undefined ? {} : { uid }), ...(gid === undefined ? {} : { gid }) };
}
