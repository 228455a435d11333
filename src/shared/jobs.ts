// Jobs as declarative step trees (after kubeadm's phases/workflow): a step is data — id, title,
// target node, runIf, plan, run — nested, and flattened into `job/step` paths. The same
// declaration drives the plan preview, the run, and the record kept afterwards.
import { z } from 'zod';
import { archiveNameSchema, ClusterCreation, Id, namespaceSchema, noteSchema, stateNoteSchema, Uuid } from './domain';

/** Something the plan shows the user before anything runs. */
export type PlanItem =
  | { kind: 'command'; node: string; command: string; asRoot?: boolean }
  | { kind: 'file'; node: string; path: string; diff: string }
  | { kind: 'upload'; node: string; from: string; to: string; bytes?: number }
  | { kind: 'note'; text: string };

export interface StepContext {
  signal: AbortSignal;
  /** Append to this step's live log (commands, stdout/stderr lines, results). */
  log(stream: 'info' | 'cmd' | 'stdout' | 'stderr' | 'error', text: string): void;
  /** Fraction 0..1 of this step, for long transfers. */
  progress(fraction: number, detail?: string): void;
  /** Record a measurement on the job (shown with the outcome). */
  metric?(name: string, value: number): void;
}

export interface StepDef<C> {
  id: string;
  title: string;
  /** Node the step acts on (name), shown in plan and log. */
  node?: string;
  /** Skip the step (and its children) when this is false at run time. */
  runIf?: (ctx: C) => boolean | Promise<boolean>;
  /** What the step will do, for the preview. */
  plan?: (ctx: C) => PlanItem[] | Promise<PlanItem[]>;
  run?: (ctx: C, step: StepContext) => Promise<void>;
  /** Children run in order, or in parallel (bounded) when `parallel` is set. */
  children?: StepDef<C>[];
  parallel?: boolean;
  /**
   * Cancellation is honoured only before steps marked as safe points (and between parallel
   * siblings' starts); a step already running is allowed to finish so the cluster is never left
   * between two halves of one change.
   */
  safePoint?: boolean;
}

export interface JobDef<C> {
  kind: string;
  title: string;
  /** Destructive jobs ask the user to type the cluster name to confirm. */
  destructive: boolean;
  clusterId: string;
  clusterName: string;
  steps: StepDef<C>[];
  /** What to tell the user about the cluster if the job stops half-way (cancel, failure, crash). */
  describeStop?: (ctx: C, done: string[]) => string;
  /**
   * Automatic way back when a step fails (e.g. a health gate): runs as an extra `rollback` step
   * when `when(ctx)` says the cluster was changed. Its own failure is reported, not hidden.
   */
  rollback?: { title: string; when: (ctx: C) => boolean; run: (ctx: C, step: StepContext) => Promise<void> };
}

/** `interrupted`: the step was running when the app stopped (crash); whether it finished is unknown. */
export type StepStatus = 'pending' | 'running' | 'done' | 'failed' | 'skipped' | 'cancelled' | 'interrupted';
export type JobStatus = 'planned' | 'running' | 'succeeded' | 'failed' | 'cancelled' | 'interrupted';

export interface StepRecord {
  path: string;
  title: string;
  node?: string;
  depth: number;
  status: StepStatus;
  startedAt?: string;
  endedAt?: string;
  error?: string;
  progress?: number;
}

export interface LogLine {
  t: number;
  path: string;
  stream: 'info' | 'cmd' | 'stdout' | 'stderr' | 'error';
  text: string;
}

export interface PlanEntry {
  path: string;
  title: string;
  node?: string;
  depth: number;
  items: PlanItem[];
}

export interface JobRecord {
  id: string;
  kind: string;
  title: string;
  clusterId: string;
  clusterName: string;
  destructive: boolean;
  status: JobStatus;
  createdAt: string;
  startedAt?: string;
  endedAt?: string;
  plan: PlanEntry[];
  steps: StepRecord[];
  /** The log kept in the record: bounded (its start and its end); the full log is a file beside it. */
  log: LogLine[];
  /** How many lines the job logged in all (the record's `log` may keep fewer; see jobs.logChunk). */
  logLines?: number;
  /** For failed/cancelled/interrupted jobs: what state the cluster is in and what to do next. */
  outcome?: string;
  /** Measurements a job made (e.g. how long the apiservers were unavailable during a switch). */
  metrics?: Record<string, number>;
  /** Set when an automatic rollback ran after a failure. */
  rollback?: { status: 'succeeded' | 'failed'; error?: string };
  error?: string;
}

/** One piece of a job's full log (plain text, whole lines); `next` is null at the end of what is written. */
export interface LogChunk {
  text: string;
  next: number | null;
}

/** A job record without its log and plan (lists, live updates). */
export type JobSummary = Omit<JobRecord, 'log' | 'plan'>;

/** "New cluster": the options of the creation job (the nodes are the cluster's inventory, by role). */
export const CreateClusterRequest = ClusterCreation.extend({ kind: z.literal('create-cluster') }).strict();
export type CreateClusterRequest = z.infer<typeof CreateClusterRequest>;

/** What a user can ask for; each becomes a job with a plan. */
/**
 * Where a switch's target gets its data: a fresh snapshot of the etcd the apiservers use now (no
 * write lost), a snapshot from the vault ("restore onto the target and point the apiservers at
 * it": writes after that snapshot are discarded), or what the target already holds (it was just
 * restored; nothing is copied and nothing overwrites it).
 */
export const SwitchData = z.enum(['fresh-snapshot', 'vault-snapshot', 'on-target']);
export type SwitchData = z.infer<typeof SwitchData>;

/**
 * What a disaster drill deletes in each namespace of its scope. "rbac" is the namespaced Roles and
 * RoleBindings; workloads go first (Background propagation: their ReplicaSets and pods follow).
 */
/** Which etcd a snapshot is saved from: the one the apiservers use, or one named (the standby one too). */
export const SnapshotSource = z.enum(['in-use', 'embedded', 'external']);
export type SnapshotSource = z.infer<typeof SnapshotSource>;

export const DrillKind = z.enum(['deployments', 'daemonsets', 'statefulsets', 'pods', 'configmaps', 'secrets', 'rbac']);
export type DrillKind = z.infer<typeof DrillKind>;

export const JobRequest = z.discriminatedUnion('kind', [
  z
    .object({
      kind: z.literal('snapshot'),
      note: noteSchema.default(''),
      nodeId: Id.optional(),
      source: SnapshotSource.default('in-use'),
    })
    .strict(),
  z.object({ kind: z.literal('restore-embedded'), snapshotId: Uuid }).strict(),
  z.object({ kind: z.literal('capture-state'), note: stateNoteSchema.default('') }).strict(),
  z.object({ kind: z.literal('restore-state'), stateId: Uuid }).strict(),
  z
    .object({
      kind: z.literal('drill'),
      /** Namespaces to wipe; with allNamespaces, ignored (every namespace but kube-*, resolved at plan time). */
      namespaces: z.array(namespaceSchema).max(50).default([]),
      allNamespaces: z.boolean().default(false),
      kinds: z.array(DrillKind).min(1).max(DrillKind.options.length).default(['pods']),
    })
    .strict(),
  z
    .object({ kind: z.literal('install-tools'), nodeIds: z.array(Id).min(1).max(50), archive: archiveNameSchema })
    .strict(),
  z
    .object({
      kind: z.literal('provision-external'),
      nodeIds: z.array(Id).min(1).max(5),
      startEmpty: z.boolean().default(false),
    })
    .strict(),
  z
    .object({ kind: z.literal('external-unit'), nodeIds: z.array(Id).min(1).max(5), action: z.enum(['start', 'stop']) })
    .strict(),
  z.object({ kind: z.literal('restore-external'), snapshotId: Uuid }).strict(),
  z
    .object({
      kind: z.literal('switch'),
      direction: z.enum(['to-external', 'to-embedded']),
      keepExternalRunning: z.boolean().default(false),
      data: SwitchData.default('fresh-snapshot'),
      /** With data 'vault-snapshot': the snapshot restored onto the target. */
      snapshotId: Uuid.optional(),
    })
    .strict(),
  z.object({ kind: z.literal('member-remove'), nodeId: Id }).strict(),
  z.object({ kind: z.literal('member-add'), nodeId: Id }).strict(),
  z.object({ kind: z.literal('defrag') }).strict(),
  z.object({ kind: z.literal('alarm-disarm') }).strict(),
  CreateClusterRequest,
  /** Take one master or worker out of a cluster (drain, etcd member, kubeadm reset, LB config). */
  z.object({ kind: z.literal('reset-node'), nodeId: Id }).strict(),
  /** "Clean up everything": kubeadm reset on every master and worker, the load balancer removed. */
  z.object({ kind: z.literal('teardown-cluster') }).strict(),
  z.object({ kind: z.literal('restart-runtime'), nodeIds: z.array(Id).min(1).max(50) }).strict(),
]);
export type JobRequest = z.infer<typeof JobRequest>;

export const Schedule = z.object({
  clusterId: Id,
  everyHours: z
    .number()
    .min(0.01)
    .max(24 * 30),
  keep: z.number().int().min(1).max(1000),
  enabled: z.boolean(),
  lastRunAt: z.string().nullable().default(null),
});
export type Schedule = z.infer<typeof Schedule>;
