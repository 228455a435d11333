// The local snapshot vault: <dataDir>/vault/snapshots/<id>/{snapshot.db,meta.json}.
// A snapshot appears only once complete: data arrives in a `.part` file inside a hidden staging
// folder, is checked, and the folder is renamed into place (one atomic step on one filesystem).
// Names and notes are data, never paths: ids are generated, and user text is bounded and stored
// only inside meta.json.
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { writeJsonAtomic } from '../util/jsonfile';
import { checkSnapshotFile, type SnapshotHasher } from './snapfile';

import { SnapshotMeta, SnapshotNote } from '@shared/vault';

export { SnapshotMeta, SnapshotNote };

export type NewSnapshotMeta = Omit<SnapshotMeta, 'id' | 'sha256' | 'size' | 'integrity' | 'createdAt' | 'verifiedAt'>;

export class VaultError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'VaultError';
  }
}

/** A transfer into the vault in progress; nothing is listed until `commit`. */
export interface Incoming {
  /** Write the snapshot bytes here. */
  partPath: string;
  /** `hashed`: a hasher that saw every byte written to partPath (spares reading it again). */
  commit(meta: NewSnapshotMeta, expectedSha256?: string, hashed?: SnapshotHasher): Promise<SnapshotMeta>;
  abort(): Promise<void>;
}

export class SnapshotVault {
  readonly dir: string;
  private readonly staging: string;

  private constructor(dataDir: string) {
    this.dir = join(dataDir, 'vault', 'snapshots');
    this.staging = join(dataDir, 'vault', '.staging');
  }

  static async open(dataDir: string): Promise<SnapshotVault> {
    const v = new SnapshotVault(dataDir);
    await fs.mkdir(v.dir, { recursive: true, mode: 0o700 });
    // Leftovers of transfers cut short by a crash are never snapshots: clear them.
    await fs.rm(v.staging, { recursive: true, force: true });
    await fs.mkdir(v.staging, { recursive: true, mode: 0o700 });
    return v;
  }

  async begin(): Promise<Incoming> {
    const id = randomUUID();
    const stage = join(this.staging, id);
    await fs.mkdir(stage, { mode: 0o700 });
    const partPath = join(stage, 'snapshot.db.part');
    return {
      partPath,
      commit: async (meta, expectedSha256, hashed) => {
        const check = await checkSnapshotFile(partPath, { requireIntegrity: meta.source.kind === 'cluster', hashed });
        if (expectedSha256 && expectedSha256 !== check.sha256) {
          await fs.rm(stage, { recursive: true, force: true });
          throw new VaultError(
            'SNAPSHOT_INVALID',
            `Transfer corrupted: sha256 ${check.sha256} differs from the source's ${expectedSha256}`,
          );
        }
        const full = SnapshotMeta.parse({
          ...meta,
          id,
          sha256: check.sha256,
          size: check.size,
          integrity: check.integrity,
          createdAt: new Date().toISOString(),
          verifiedAt: null,
        });
        await fs.rename(partPath, join(stage, 'snapshot.db'));
        await writeJsonAtomic(join(stage, 'meta.json'), full);
        await fs.rename(stage, join(this.dir, id));
        return full;
      },
      abort: () => fs.rm(stage, { recursive: true, force: true }),
    };
  }

  /** Copy a snapshot file taken elsewhere into the vault after validating it. */
  async importFile(src: string, note: string): Promise<SnapshotMeta> {
    // Only a regular file: a folder, a FIFO or a device (/dev/zero) is refused before any copy.
    const st = await fs.stat(src).catch(() => null);
    if (!st) throw new VaultError('NOT_FOUND', `No file ${src}`);
    if (!st.isFile()) throw new VaultError('SNAPSHOT_INVALID', `${src} is not a regular file`);
    const incoming = await this.begin();
    try {
      await fs.copyFile(src, incoming.partPath);
      return await incoming.commit({
        note: SnapshotNote.parse(note),
        revision: null,
        hash: null,
        totalKeys: null,
        etcdVersion: null,
        source: {
          kind: 'import',
          clusterId: null,
          clusterName: null,
          mode: null,
          node: null,
          originalName: src.split(/[\\/]/).pop()!.slice(0, 255),
          etcd: null,
        },
      });
    } catch (e) {
      await incoming.abort();
      throw e;
    }
  }

  async list(): Promise<SnapshotMeta[]> {
    const out: SnapshotMeta[] = [];
    for (const id of await fs.readdir(this.dir)) {
      const m = await this.readMeta(id).catch(() => null);
      if (m) out.push(m);
    }
    return out.sort((a, b) => b.createdAt.localeCompare(a.createdAt));
  }

  async get(id: string): Promise<SnapshotMeta> {
    return this.readMeta(checkId(id));
  }

  filePath(id: string): string {
    return join(this.dir, checkId(id), 'snapshot.db');
  }

  async update(
    id: string,
    patch: Partial<Pick<SnapshotMeta, 'note' | 'revision' | 'hash' | 'totalKeys' | 'etcdVersion' | 'verifiedAt'>>,
  ): Promise<SnapshotMeta> {
    const cur = await this.get(id);
    const next = SnapshotMeta.parse({ ...cur, ...patch });
    await writeJsonAtomic(join(this.dir, id, 'meta.json'), next);
    return next;
  }

  /** Re-hash the stored file and compare with the recorded sha256. */
  async verify(id: string, signal?: AbortSignal): Promise<SnapshotMeta> {
    const meta = await this.get(id);
    const check = await checkSnapshotFile(this.filePath(id), { signal });
    if (check.sha256 !== meta.sha256)
      throw new VaultError(
        'SNAPSHOT_INVALID',
        `Snapshot ${id} changed on disk: sha256 ${check.sha256} ≠ recorded ${meta.sha256}`,
      );
    return this.update(id, { verifiedAt: new Date().toISOString() });
  }

  async exportTo(id: string, dest: string): Promise<void> {
    const part = `${dest}.part`;
    await fs.copyFile(this.filePath(id), part);
    await fs.rename(part, dest);
  }

  async remove(id: string): Promise<void> {
    await this.get(id);
    // Rename first so a half-deleted folder can never look like a snapshot.
    const trash = join(this.staging, `deleted-${checkId(id)}`);
    await fs.rename(join(this.dir, id), trash);
    await fs.rm(trash, { recursive: true, force: true });
  }

  /** Keep the newest `keep` snapshots of a cluster taken by the schedule; returns removed ids. */
  async prune(clusterId: string, keep: number, filter: (m: SnapshotMeta) => boolean = () => true): Promise<string[]> {
    const mine = (await this.list()).filter((m) => m.source.clusterId === clusterId && filter(m));
    const doomed = mine.slice(Math.max(0, keep));
    for (const m of doomed) await this.remove(m.id);
    return doomed.map((m) => m.id);
  }

  private async readMeta(id: string): Promise<SnapshotMeta> {
    try {
      return SnapshotMeta.parse(JSON.parse(await fs.readFile(join(this.dir, id, 'meta.json'), 'utf8')));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new VaultError('NOT_FOUND', `No snapshot ${id}`);
      throw e;
    }
  }
}

function checkId(id: string): string {
  if (!/^[0-9a-f-]{36}$/.test(id)) throw new VaultError('INVALID_INPUT', 'Malformed snapshot id');
  return id;
}
