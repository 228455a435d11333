// Vault records shared by main (which writes them) and the renderer (which lists them).
import { z } from 'zod';
import { noteSchema } from './domain';

/** Snapshot notes: the shared note field schema (see domain.ts). */
export const SnapshotNote = noteSchema;

export const SnapshotMeta = z.object({
  id: z.string().regex(/^[0-9a-f-]{36}$/),
  note: SnapshotNote,
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  size: z.number().int().nonnegative(),
  revision: z.number().int().nonnegative().nullable(),
  hash: z.number().int().nonnegative().nullable(),
  totalKeys: z.number().int().nonnegative().nullable(),
  etcdVersion: z.string().max(64).nullable(),
  integrity: z.enum(['ok', 'absent']),
  source: z.object({
    kind: z.enum(['cluster', 'import']),
    clusterId: z.string().max(64).nullable(),
    clusterName: z.string().max(64).nullable(),
    mode: z.string().max(64).nullable(),
    node: z.string().max(253).nullable(),
    originalName: z.string().max(255).nullable(),
    /** Which etcd it was saved from (the one in use or the standby one); null for imports and older snapshots. */
    etcd: z.enum(['embedded', 'external']).nullable().default(null),
  }),
  createdAt: z.string(),
  verifiedAt: z.string().nullable(),
});
export type SnapshotMeta = z.infer<typeof SnapshotMeta>;

export const StateFile = z.object({
  path: z
    .string()
    .regex(/^\/[^\0]*$/, 'absolute path')
    .max(4096),
  /** File mode (e.g. 0o600); restored with the content. */
  mode: z.number().int().min(0).max(0o7777),
  /** Present: the file existed; null: it did not (restoring removes it). */
  sha256: z
    .string()
    .regex(/^[0-9a-f]{64}$/)
    .nullable(),
});
export type StateFile = z.infer<typeof StateFile>;

export const StateNode = z.object({
  name: z.string().max(63),
  nodeId: z.string().max(64),
  address: z.string().max(253),
  roles: z.array(z.string()).max(4),
  files: z.array(StateFile),
  /** etcd data dir this node's member used (stacked or external), if any. */
  etcdDataDir: z.string().nullable(),
  /** Whether the external etcd unit was running. */
  etcdUnitActive: z.boolean().nullable(),
});
export type StateNode = z.infer<typeof StateNode>;

export const StateManifest = z.object({
  format: z.literal(1),
  id: z.string().regex(/^[0-9a-f-]{36}$/),
  clusterId: z.string(),
  clusterName: z.string(),
  mode: z.string().max(64),
  reason: z.string().max(500),
  createdAt: z.string(),
  nodes: z.array(StateNode),
});
export type StateManifest = z.infer<typeof StateManifest>;
