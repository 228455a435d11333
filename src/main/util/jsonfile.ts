// Durable JSON files for the data directory: atomic replace (write temp, fsync, rename), and a
// reader that never lets a corrupt file be silently overwritten — it is moved aside first and the
// caller is told, so the user can recover it by hand.
import { promises as fs } from 'node:fs';
import { dirname, basename, join } from 'node:path';
import { randomBytes } from 'node:crypto';

export async function writeFileAtomic(path: string, data: string | Buffer, mode = 0o600): Promise<void> {
  await fs.mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  const fh = await fs.open(tmp, 'w', mode);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await fs.rename(tmp, path);
  } catch (e) {
    await fs.rm(tmp, { force: true });
    throw e;
  }
}

export async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  await writeFileAtomic(path, JSON.stringify(value, null, 2) + '\n');
}

export type JsonLoad<T> =
  | { status: 'missing'; value: T }
  | { status: 'ok'; value: T }
  /** The file could not be used; it was copied to `backup` and `value` is the fallback. */
  | { status: 'corrupt'; value: T; backup: string; error: string };

/**
 * Read and validate a JSON file. `parse` throws on invalid content. A corrupt file is renamed to
 * `<name>.corrupt-<timestamp>` so the next save cannot destroy it.
 */
export async function readJsonFile<T>(
  path: string,
  parse: (raw: unknown) => T,
  fallback: () => T,
): Promise<JsonLoad<T>> {
  let text: string;
  try {
    text = await fs.readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { status: 'missing', value: fallback() };
    throw new Error(`Cannot read ${path}: ${(e as Error).message}`, { cause: e });
  }
  try {
    return { status: 'ok', value: parse(JSON.parse(text)) };
  } catch (e) {
    const backup = `${path}.corrupt-${new Date().toISOString().replace(/[:.]/g, '-')}`;
    await fs.rename(path, backup);
    return { status: 'corrupt', value: fallback(), backup, error: (e as Error).message };
  }
}
