// The user-editable scripts folder: the remote scripts shipped in resources/scripts are copied into
// <dataDir>/scripts, where the local console opens, and jobs run the user's copy.
//
// App upgrades ship new scripts. Beside each copy the folder keeps the shipped version it came
// from (`.shipped/<name>`), so an upgrade can tell "the user changed this" from "an older app
// shipped this": a copy still equal to the version it came from is updated to the new one; a copy
// the user changed is kept — it is reported with the update available (diff + "take the new
// version", see ScriptLibrary) and never overwritten here. Folders made before `.shipped` existed
// have no record: a copy equal to the new version is recorded, any other copy is treated as
// changed by the user (kept and reported), since the app cannot know which older version it was.
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';

export const SHIPPED_DIR = '.shipped';

export interface ScriptsSync {
  dir: string;
  /** Copies that were still as shipped and now hold the new shipped version. */
  updated: string[];
  /** Copies the user changed while the app ships a newer version: kept, reported. */
  kept: string[];
  /** Copies written because they were missing. */
  added: string[];
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const readOrNull = (p: string): Promise<Buffer | null> => fs.readFile(p).catch(() => null);

/** Write `data` to `path` through a temp file and a rename (a crash leaves the old or the new file). */
async function writeAtomic(path: string, data: Buffer, mode: number): Promise<void> {
  const tmp = `${path}.kes-tmp`;
  await fs.writeFile(tmp, data, { mode });
  await fs.rename(tmp, path);
}

export async function syncScriptsFolder(defaultsDir: string, dataDir: string): Promise<ScriptsSync> {
  const dir = join(dataDir, 'scripts');
  const shippedDir = join(dir, SHIPPED_DIR);
  await fs.mkdir(shippedDir, { recursive: true, mode: 0o700 });
  const out: ScriptsSync = { dir, updated: [], kept: [], added: [] };
  let names: string[];
  try {
    names = (await fs.readdir(defaultsDir, { withFileTypes: true })).filter((e) => e.isFile()).map((e) => e.name);
  } catch {
    return out; // no defaults shipped (e.g. a unit test without resources)
  }
  for (const name of names.sort()) {
    const shipped = await fs.readFile(join(defaultsDir, name));
    const userPath = join(dir, name);
    const basePath = join(shippedDir, name);
    const mode = name.endsWith('.sh') ? 0o755 : 0o644;
    const [user, base] = await Promise.all([readOrNull(userPath), readOrNull(basePath)]);
    if (!user) {
      await writeAtomic(userPath, shipped, mode);
      await writeAtomic(basePath, shipped, 0o644);
      out.added.push(name);
      continue;
    }
    const [u, s] = [sha(user), sha(shipped)];
    if (base && sha(base) === s) continue; // nothing new shipped
    if (u === s) {
      await writeAtomic(basePath, shipped, 0o644); // already the new version: record it
      continue;
    }
    if (base && sha(base) === u) {
      await writeAtomic(userPath, shipped, mode); // unchanged by the user: take the new version
      await writeAtomic(basePath, shipped, 0o644);
      out.updated.push(name);
      continue;
    }
    out.kept.push(name); // changed by the user (or of unknown origin): theirs stays
  }
  return out;
}

/** The folder's path; creates and upgrades it (see syncScriptsFolder). */
export async function ensureScriptsFolder(defaultsDir: string, dataDir: string): Promise<string> {
  return (await syncScriptsFolder(defaultsDir, dataDir)).dir;
}
