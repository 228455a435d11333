// The whole renderer ↔ main surface: request methods (input schema + output type) and events.
// Both transports (Electron IPC and the headless WebSocket) carry exactly this; the handler table
// in src/main/api/handlers.ts must implement every method (a missing or extra one is a type error).
import { z } from 'zod';
import {
  ClusterName,
  hostSchema,
  Id,
  LocalPath,
  NodeInput,
  Port,
  scriptNameSchema,
  SecretKind,
  SettingsPatch,
  sshAliasSchema,
  Uuid,
  type AppInfo,
  type ClusterFacts,
  type ScriptInfo,
  type ToolArchive,
  type Settings,
  type Cluster,
  type ClusterNode,
  type ConnectionTest,
  type KeychainStatus,
  type NodeStatus,
  type SecretFlags,
  type SshConfigEntry,
  type TrustedHostKey,
} from './domain';
import { JobRequest, type JobRecord, type JobSummary, type LogChunk, type LogLine, type Schedule } from './jobs';
import { WorkloadNamespaces, type HealthReport } from './health';
import type { PreflightReport } from './preflight';
import { SnapshotNote, type SnapshotMeta, type StateManifest } from './vault';

/** Declares one method: `returns<Output>()(inputSchema)` — the input type comes from the schema. */
function returns<O>() {
  return <I extends z.ZodType>(input: I): { input: I; output: O } => ({ input, output: undefined as unknown as O });
}

const Empty = z.object({}).strict();
const NodeRef = z.object({ clusterId: Id, nodeId: Id }).strict();
const Cols = z.number().int().min(2).max(1000);
const Rows = z.number().int().min(1).max(500);
/** A secret value: bounded so a paste accident cannot exhaust memory; never logged. */
const SecretValue = z
  .string()
  .min(1, 'Value is empty')
  .max(64 * 1024, 'Value is too large');
const Fingerprint = z.string().regex(/^SHA256:[A-Za-z0-9+/]{43}$/, 'Malformed fingerprint');
type Opened = { id: string; title: string };
/** Where a kubectl console's kubeconfig is and how its tunnel goes (no credentials). */
export type KubectlAccessInfo = { path: string; port: number; via: string; server: string };
const ClusterRef = z.object({ clusterId: Id }).strict();

export const methods = {
  'app.info': returns<AppInfo>()(Empty),

  'clusters.list': returns<Cluster[]>()(Empty),
  'clusters.create': returns<Cluster>()(z.object({ name: ClusterName }).strict()),
  'clusters.rename': returns<Cluster>()(z.object({ clusterId: Id, name: ClusterName }).strict()),
  'clusters.remove': returns<void>()(z.object({ clusterId: Id }).strict()),

  'nodes.upsert': returns<ClusterNode>()(z.object({ clusterId: Id, node: NodeInput }).strict()),
  /**
   * Add several nodes at once (the "Add several…" dialog): all or none are written. `credential`
   * is what every new node gets in the keychain: secrets typed once, and/or those stored for an
   * existing node of the cluster (`copyFrom`, copied inside main; typed values win). Should storing
   * a secret fail, the nodes just added are removed again.
   */
  'nodes.addMany': returns<ClusterNode[]>()(
    z
      .object({
        clusterId: Id,
        nodes: z
          .array(NodeInput.omit({ id: true }))
          .min(1, 'No nodes to add')
          .max(200, 'At most 200 nodes at once'),
        credential: z
          .object({
            copyFrom: Id.optional(),
            privateKey: SecretValue.optional(),
            passphrase: SecretValue.optional(),
            password: SecretValue.optional(),
          })
          .strict()
          .optional(),
      })
      .strict(),
  ),
  'nodes.remove': returns<void>()(NodeRef),
  'nodes.status': returns<NodeStatus[]>()(z.object({ clusterId: Id }).strict()),

  'sshConfig.read': returns<SshConfigEntry[]>()(z.object({ path: LocalPath.optional() }).strict()),
  'sshConfig.import': returns<ClusterNode[]>()(
    z
      .object({
        clusterId: Id,
        path: LocalPath.optional(),
        hosts: z.array(sshAliasSchema).min(1).max(200),
      })
      .strict(),
  ),

  'secrets.status': returns<SecretFlags>()(NodeRef),
  'secrets.set': returns<SecretFlags>()(
    z.object({ clusterId: Id, nodeId: Id, kind: SecretKind, value: SecretValue }).strict(),
  ),
  /**
   * Give node `toNodeId` the secrets stored for `fromNodeId` (same cluster) that its auth method
   * uses — the key and passphrase of a pasted key, a key file's passphrase, a password. The values
   * stay in main: the renderer only learns the flags.
   */
  'secrets.copy': returns<SecretFlags>()(z.object({ clusterId: Id, fromNodeId: Id, toNodeId: Id }).strict()),
  'secrets.clear': returns<SecretFlags>()(z.object({ clusterId: Id, nodeId: Id, kind: SecretKind }).strict()),
  'keychain.status': returns<KeychainStatus>()(Empty),

  'ssh.test': returns<ConnectionTest>()(NodeRef),
  'ssh.connect': returns<NodeStatus>()(NodeRef),
  'ssh.disconnect': returns<NodeStatus>()(NodeRef),

  'hostKeys.list': returns<TrustedHostKey[]>()(Empty),
  /** Trust the key the node presented at its last (refused) attempt; the fingerprint must match it. */
  'hostKeys.trust': returns<TrustedHostKey>()(
    z.object({ clusterId: Id, nodeId: Id, fingerprint: Fingerprint }).strict(),
  ),
  'hostKeys.forget': returns<void>()(z.object({ host: hostSchema, port: Port }).strict()),

  'terminal.openLocal': returns<Opened>()(z.object({ cols: Cols, rows: Rows }).strict()),
  'terminal.openSsh': returns<Opened>()(z.object({ clusterId: Id, nodeId: Id, cols: Cols, rows: Rows }).strict()),
  /**
   * A new local console with kubectl access to the cluster: KUBECONFIG points at a 0600 kubeconfig
   * whose server is an SSH tunnel (127.0.0.1:port through a master to the control-plane endpoint);
   * file and tunnel are removed when this console closes. The credentials never reach the UI.
   */
  'terminal.openKubectl': returns<Opened & { kubeconfig: KubectlAccessInfo }>()(
    z.object({ clusterId: Id, cols: Cols, rows: Rows }).strict(),
  ),
  'terminal.write': returns<void>()(z.object({ id: Id, data: z.string().max(1024 * 1024) }).strict()),
  'terminal.resize': returns<void>()(z.object({ id: Id, cols: Cols, rows: Rows }).strict()),
  /** Flow control: the renderer reports how many characters it has rendered. */
  'terminal.ack': returns<void>()(
    z
      .object({
        id: Id,
        chars: z
          .number()
          .int()
          .min(0)
          .max(1 << 30),
      })
      .strict(),
  ),
  'terminal.close': returns<void>()(z.object({ id: Id }).strict()),

  'cluster.initialize': returns<ClusterFacts>()(NodeRef),
  /** `namespaces`: whose workloads to show; remembered per cluster (the last ones, `default` at first). */
  'cluster.health': returns<HealthReport>()(
    z.object({ clusterId: Id, namespaces: WorkloadNamespaces.optional() }).strict(),
  ),
  /** "New cluster" pre-flight: every lb/master/worker node of the cluster's inventory, read-only. */
  /** Save the admin kubeconfig (cluster-admin!) to a new local file, 0600. Only on explicit request. */
  'cluster.exportKubeconfig': returns<{ path: string; bytes: number }>()(
    z.object({ clusterId: Id, path: LocalPath }).strict(),
  ),
  'cluster.preflight': returns<PreflightReport>()(z.object({ clusterId: Id, lbPort: Port.optional() }).strict()),

  'snapshots.list': returns<SnapshotMeta[]>()(z.object({ clusterId: Id.optional() }).strict()),
  'snapshots.update': returns<SnapshotMeta>()(z.object({ id: Uuid, note: SnapshotNote }).strict()),
  'snapshots.verify': returns<SnapshotMeta>()(z.object({ id: Uuid, clusterId: Id.optional() }).strict()),
  'snapshots.export': returns<void>()(z.object({ id: Uuid, path: LocalPath }).strict()),
  'snapshots.import': returns<SnapshotMeta>()(z.object({ path: LocalPath, note: SnapshotNote.default('') }).strict()),
  'snapshots.delete': returns<void>()(z.object({ id: Uuid }).strict()),
  'snapshots.schedule.get': returns<Schedule | null>()(ClusterRef),
  'snapshots.schedule.set': returns<Schedule>()(
    z
      .object({
        clusterId: Id,
        everyHours: z.number().min(0.01).max(720),
        keep: z.number().int().min(1).max(1000),
        enabled: z.boolean(),
      })
      .strict(),
  ),

  'states.list': returns<StateManifest[]>()(ClusterRef),

  /** Plan a job: nothing runs; the record carries the plan (commands, diffs) to show. */
  'jobs.plan': returns<JobRecord>()(z.object({ clusterId: Id, job: JobRequest }).strict()),
  /** Run a planned job. Destructive jobs need the cluster name typed as confirmation. */
  /** The confirmation is a typed cluster name: anything that cannot be one is refused outright. */
  'jobs.start': returns<JobSummary>()(z.object({ jobId: Uuid, confirmation: ClusterName.optional() }).strict()),
  'jobs.cancel': returns<boolean>()(z.object({ jobId: Uuid }).strict()),
  'jobs.list': returns<JobSummary[]>()(z.object({ clusterId: Id.optional() }).strict()),
  'jobs.get': returns<JobRecord | null>()(z.object({ jobId: Uuid }).strict()),
  /**
   * The job's full log as text, in pieces of at most ~1 MiB (whole lines): start at offset 0 and
   * ask again with `next` until it is null ("Download full log"; the record keeps only its start and end).
   */
  'jobs.logChunk': returns<LogChunk>()(
    z.object({ jobId: Uuid, offset: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER) }).strict(),
  ),

  'scripts.list': returns<ScriptInfo[]>()(Empty),
  'scripts.reset': returns<ScriptInfo>()(z.object({ name: scriptNameSchema }).strict()),
  'scripts.diff': returns<{ name: string; diff: string }>()(z.object({ name: scriptNameSchema }).strict()),

  'tools.list': returns<ToolArchive[]>()(Empty),
  'tools.add': returns<ToolArchive>()(
    z
      .object({
        path: LocalPath,
        sha256: z
          .string()
          .regex(/^[0-9a-fA-F]{64}$/)
          .optional(),
      })
      .strict(),
  ),
  // The sha256 is needed only for a release whose checksum the app does not pin.
  'tools.download': returns<ToolArchive>()(
    z
      .object({
        version: z.string().regex(/^\d+\.\d+\.\d+$/),
        arch: z.enum(['amd64', 'arm64']).optional(),
        sha256: z
          .string()
          .regex(/^[0-9a-fA-F]{64}$/)
          .optional(),
      })
      .strict(),
  ),

  'settings.get': returns<Settings>()(Empty),
  'settings.set': returns<Settings>()(SettingsPatch),
} as const;

export type Methods = typeof methods;
export type MethodName = keyof Methods;
export type Input<M extends MethodName> = z.input<Methods[M]['input']>;
export type ParsedInput<M extends MethodName> = z.output<Methods[M]['input']>;
export type Output<M extends MethodName> = Methods[M]['output'];

/** Events pushed from main to the renderer. */
export interface Events {
  'node.status': NodeStatus;
  'job.update': JobSummary;
  /** New log lines of a job, batched by main (a few per event, or thousands during a flood). */
  'job.log': { jobId: string; lines: LogLine[] };
  'terminal.data': { id: string; data: string };
  'terminal.exit': { id: string; code: number | null; message?: string };
}
export type EventName = keyof Events;

/** Error shape that crosses either transport. `code` is stable; `message` is for people. */
export interface ApiErrorShape {
  code: string;
  message: string;
  details?: unknown;
}

export { IPC_EVENT, IPC_INVOKE } from './ipc';

/** The API the renderer sees, whichever transport carries it. */
export interface Api {
  invoke<M extends MethodName>(method: M, input: Input<M>): Promise<Output<M>>;
  on<E extends EventName>(event: E, listener: (payload: Events[E]) => void): () => void;
}

/** Wire envelopes for the WebSocket transport. */
export type WireRequest = { t: 'req'; id: number; method: string; input: unknown };
export type WireMessage =
  | { t: 'res'; id: number; ok: true; value: unknown }
  | { t: 'res'; id: number; ok: false; error: ApiErrorShape }
  | { t: 'evt'; event: string; payload: unknown };
