// Archived cluster "states": every configuration the cluster has been in. One .tar.gz per state
// in <dataDir>/vault/states/, holding a readable `manifest.json` and, under files/<node>/, the
// exact files collected from each node (etcd.yaml, kube-apiserver.yaml, etcd unit + env).
// Archives are written to a .part file and renamed, like snapshots.
import { promises as fs, createReadStream } from 'node:fs';
import { join } from 'node:path';
import { createHash, randomUUID } from 'node:crypto';
import * as tar from 'tar';
import { VaultError } from './snapshots';

import { StateFile, StateManifest, StateNode } from '@shared/vault';

export { StateFile, StateManifest, StateNode };

export interface CollectedNode extends Omit<StateNode, 'files'> {
  files: { path: string; mode: number; content: Buffer | null }[];
}

/** Node names become folder names inside the archive; anything else is refused. */
function safeName(n: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(n) || n.includes('..'))
    throw new VaultError('INVALID_INPUT', `Bad node name for a state archive: ${n}`);
  return n;
}

export class StateVault {
  readonly dir: string;
  private constructor(dataDir: string) {
    this.dir = join(dataDir, 'vault', 'states');
  }

  static async open(dataDir: string): Promise<StateVault> {
    const v = new StateVault(dataDir);
    await fs.mkdir(v.dir, { recursive: true, mode: 0o700 });
    for (const f of await fs.readdir(v.dir))
      if (f.endsWith('.part') || f.startsWith('.build-')) await fs.rm(join(v.dir, f), { recursive: true, force: true });
    return v;
  }

  async save(input: {
    clusterId: string;
    clusterName: string;
    mode: string;
    reason: string;
    nodes: CollectedNode[];
  }): Promise<StateManifest> {
    const id = randomUUID();
    const build = join(this.dir, `.build-${id}`);
    await fs.mkdir(build, { mode: 0o700 });
    try {
      const nodes: StateNode[] = [];
      for (const n of input.nodes) {
        const files: StateFile[] = [];
        for (const f of n.files) {
          if (f.content) {
            const rel = join('files', safeName(n.name), f.path);
            await fs.mkdir(join(build, rel, '..'), { recursive: true });
            await fs.writeFile(join(build, rel), f.content, { mode: 0o600 });
          }
          files.push({
            path: f.path,
            mode: f.mode,
            sha256: f.content ? createHash('sha256').update(f.content).digest('hex') : null,
          });
        }
        nodes.push(StateNode.parse({ ...n, files }));
      }
      const manifest = StateManifest.parse({
        format: 1,
        id,
        clusterId: input.clusterId,
        clusterName: input.clusterName,
        mode: input.mode,
        reason: input.reason,
        createdAt: new Date().toISOString(),
        nodes,
      });
      await fs.writeFile(join(build, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
      const part = join(this.dir, `${id}.tar.gz.part`);
      const hasFiles = await fs.stat(join(build, 'files')).then(
        () => true,
        () => false,
      );
      await tar.create(
        { gzip: true, file: part, cwd: build, portable: true },
        hasFiles ? ['manifest.json', 'files'] : ['manifest.json'],
      );
      await fs.rename(part, join(this.dir, `${id}.tar.gz`));
      return manifest;
    } finally {
      await fs.rm(build, { recursive: true, force: true });
    }
  }

  async list(clusterId?: string): Promise<StateManifest[]> {
    const out: StateManifest[] = [];
    for (const f of await fs.readdir(this.dir)) {
      if (!f.endsWith('.tar.gz')) continue;
      try {
        const m = await this.manifest(f.slice(0, -'.tar.gz'.length));
        if (!clusterId || m.clusterId === clusterId) out.push(m);
      } catch {
        // unreadable archives are skipped in the list
      }
    }
    return out.sort((a, b) => b.createdAt.localeCompare(a.createdAt));
  }

  async manifest(id: string): Promise<StateManifest> {
    const entries = await this.read(id, ['manifest.json']);
    const raw = entries.get('manifest.json');
    if (!raw) throw new VaultError('SNAPSHOT_INVALID', `State ${id} has no manifest`);
    return StateManifest.parse(JSON.parse(raw.toString('utf8')));
  }

  /** The manifest plus every file's content, checked against the recorded sha256. */
  async load(id: string): Promise<{ manifest: StateManifest; content: (node: string, path: string) => Buffer | null }> {
    const entries = await this.read(id);
    const manifest = StateManifest.parse(JSON.parse(entries.get('manifest.json')!.toString('utf8')));
    for (const n of manifest.nodes) {
      for (const f of n.files) {
        if (!f.sha256) continue;
        const c = entries.get(join('files', n.name, f.path));
        if (!c || createHash('sha256').update(c).digest('hex') !== f.sha256) {
          throw new VaultError(
            'STATE_INVALID',
            `State ${id}: ${n.name}:${f.path} is missing or damaged in the archive`,
          );
        }
      }
    }
    return { manifest, content: (node, path) => entries.get(join('files', node, path)) ?? null };
  }

  async remove(id: string): Promise<void> {
    await fs.rm(this.path(id));
  }

  path(id: string): string {
    if (!/^[0-9a-f-]{36}$/.test(id)) throw new VaultError('INVALID_INPUT', 'Malformed state id');
    return join(this.dir, `${id}.tar.gz`);
  }

  private async read(id: string, only?: string[]): Promise<Map<string, Buffer>> {
    const file = this.path(id);
    await fs.access(file).catch(() => {
      throw new VaultError('NOT_FOUND', `No state ${id}`);
    });
    const out = new Map<string, Buffer>();
    await new Promise<void>((resolve, reject) => {
      const parser = new tar.Parser({
        filter: (p) => !only || only.includes(p),
        onReadEntry: (entry) => {
          const chunks: Buffer[] = [];
          entry.on('data', (c: Buffer) => chunks.push(c));
          entry.on('end', () => out.set(entry.path.replace(/^\.\//, ''), Buffer.concat(chunks)));
        },
      });
      parser.on('end', () => resolve());
      parser.on('error', reject);
      createReadStream(file).on('error', reject).pipe(parser);
    });
    return out;
  }
}
