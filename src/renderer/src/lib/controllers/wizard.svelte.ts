// State of the "Create a new cluster" wizard (components/views/NewClusterView.svelte). The form
// and its rules are pure (lib/wizard.ts); this class adds what talks to main:
// - entering Pre-flight writes the inventory: the cluster (created once, renamed when the name
//   changes), one node per machine with its roles, the shared credential's secrets through
//   secrets.set (as NodeFormDialog does); then every node's host key (ssh.test) — unknown ones are
//   confirmed together in HostKeysManyDialog — then cluster.preflight;
// - entering Plan plans the create-cluster job; Start runs it.
import { parseSetupConf } from '@shared/setup-conf';
import type { Cni } from '@shared/cluster-spec';
import type { ClusterNode, HostKeyInfo, SecretKind } from '@shared/domain';
import type { JobRecord } from '@shared/jobs';
import type { PreflightReport } from '@shared/preflight';
import { api, ApiCallError } from '../api';
import { errorMessage, isCancelled, serverFieldErrors } from '../errors';
import {
  applyImport,
  blockingErrors,
  createRequest,
  formToSpec,
  importedFields,
  inventoryNodes,
  authOf,
  messageFor,
  newWizardForm,
  nextName,
  OPTIONS_STEP,
  preflightLbPort,
  row,
  stepOfField,
  switchCni,
  syncInventory,
  wizardIssues,
  WIZARD_STEPS,
  type CredentialForm,
  type WizardForm,
} from '../wizard';
import type { ClustersController } from './clusters.svelte';
import type { HostKeyController } from './hostkeys.svelte';
import type { JobsController } from './jobs.svelte';

export const PREFLIGHT_STEP = 4;
export const PLAN_STEP = 5;
/** A setup.conf is a few lines; anything bigger is not one. */
const MAX_SETUP_CONF = 256 * 1024;

export type PreflightPhase = 'inventory' | 'hostkeys' | 'checks';

export class WizardController {
  step = $state(0);
  form = $state<WizardForm>(newWizardForm());
  /** Fields whose problems are shown (blurred, imported, or all of a step after a refused Next). */
  touched = $state<Record<string, boolean>>({});
  /** Steps where Next was pressed while problems remained: all their problems are shown. */
  attempted = $state<Record<number, boolean>>({});
  imported = $state.raw<{ file: string; warnings: string[] } | null>(null);

  clusterId = $state<string | null>(null);
  phase = $state<PreflightPhase | null>(null);
  report = $state.raw<PreflightReport | null>(null);
  /** Pre-flight (inventory, host keys, checks) or plan failure, shown on its step. */
  error = $state<string | null>(null);
  /** Host keys the user did not confirm (the checks then report those nodes unreachable). */
  hostKeysSkipped = $state(false);
  plan = $state.raw<JobRecord | null>(null);
  planning = $state(false);
  starting = $state(false);

  spec = $derived(formToSpec(this.form));
  /** Errors and warnings of the whole form; another cluster's name is taken (the draft's own is not). */
  issues = $derived.by(() => {
    const others = this.clusters.list.filter((c) => c.id !== this.clusterId).map((c) => c.name);
    return wizardIssues(this.form, this.spec, others);
  });
  /** Errors that keep the user on the current step (this one's and earlier steps'). */
  blocking = $derived(this.step <= OPTIONS_STEP ? blockingErrors(this.issues.errors, this.step) : []);
  busy = $derived(this.phase !== null || this.planning || this.starting);
  canNext = $derived.by(() => {
    if (this.busy) return false;
    if (this.step <= OPTIONS_STEP) return this.blocking.length === 0;
    if (this.step === PREFLIGHT_STEP) return !!this.report?.ok && !this.error;
    return false;
  });

  /** The credential the secrets were last stored with, per node id: a change stores them again. */
  // Plumbing, not UI state: a plain Map on purpose.
  // eslint-disable-next-line svelte/prefer-svelte-reactivity
  private stored = new Map<string, string>();

  constructor(
    private readonly clusters: ClustersController,
    private readonly hostKeys: HostKeyController,
    private readonly jobs: JobsController,
  ) {}

  get stepId() {
    return WIZARD_STEPS[this.step].id;
  }

  /** The problem to show next to `field` (once touched, or after a refused Next on its step). */
  fieldError(field: string): string | undefined {
    if (!this.touched[field] && !this.attempted[stepOfField(field)]) return undefined;
    return messageFor(this.issues.errors, field);
  }

  fieldWarning(field: string): string | undefined {
    return messageFor(this.issues.warnings, field);
  }

  /** Warnings of one step's fields (even master count, flannel CIDR, …), always shown. */
  warningsOf(step: number) {
    return this.issues.warnings.filter((w) => stepOfField(w.field) === step);
  }

  touch(field: string): void {
    if (!this.touched[field]) this.touched = { ...this.touched, [field]: true };
  }

  // ---- Form edits ----

  addMaster(): void {
    this.form.masters.push(row(nextName('master', this.form.masters)));
  }

  addWorker(): void {
    this.form.workers.push(row(nextName('worker', this.form.workers)));
  }

  removeRow(list: 'masters' | 'workers', i: number): void {
    this.form[list].splice(i, 1);
    // Problems shown for the rows below move up with them.
    const touched: Record<string, boolean> = {};
    for (const [k, v] of Object.entries(this.touched)) {
      const m = new RegExp(`^${list}\\.(\\d+)(\\..*)?$`).exec(k);
      if (!m) touched[k] = v;
      else if (Number(m[1]) < i) touched[k] = v;
      else if (Number(m[1]) > i) touched[`${list}.${Number(m[1]) - 1}${m[2] ?? ''}`] = v;
    }
    this.touched = touched;
  }

  setCni(cni: Cni): void {
    this.form.options = switchCni(this.form.options, cni);
  }

  setCredential(patch: Partial<CredentialForm>): void {
    this.form.credential = { ...this.form.credential, ...patch };
  }

  /** Fill the form from the old tool's setup.conf (never executed); its warnings are kept to show. */
  async importSetupConf(file: File): Promise<void> {
    if (file.size > MAX_SETUP_CONF) {
      this.imported = { file: file.name, warnings: [`${file.name} is ${file.size} bytes: not a setup.conf`] };
      return;
    }
    const text = await file.text();
    const { spec, warnings } = parseSetupConf(text);
    this.form = applyImport(this.form, spec);
    const touched = { ...this.touched };
    for (const f of importedFields(spec)) touched[f] = true;
    this.touched = touched;
    this.imported = { file: file.name, warnings };
  }

  // ---- Navigation ----

  back(): void {
    if (this.step > 0 && !this.starting) this.step--;
    this.error = null;
  }

  /** Go back to an earlier step (the stepper). */
  goTo(step: number): void {
    if (step < this.step && !this.busy) {
      this.step = step;
      this.error = null;
    }
  }

  /** Next: refused (all problems of the step shown) while errors remain; entering steps 5 and 6 does their work. */
  async next(): Promise<boolean> {
    if (this.busy) return false;
    if (this.step <= OPTIONS_STEP && this.blocking.length) {
      this.attempted = { ...this.attempted, [this.step]: true };
      // A problem of an earlier step (an LB port that now collides with a master): show it there.
      for (let s = 0; s < this.step; s++)
        if (this.blocking.some((e) => stepOfField(e.field) === s)) this.attempted[s] = true;
      return false;
    }
    if (this.step === PREFLIGHT_STEP && !this.canNext) return false;
    if (this.step >= PLAN_STEP) return false;
    this.step++;
    if (this.step === PREFLIGHT_STEP) await this.runPreflight();
    else if (this.step === PLAN_STEP) await this.makePlan();
    return true;
  }

  // ---- Pre-flight: inventory, host keys, checks ----

  /** Create the cluster once, then bring its nodes and their secrets in line with the form. */
  async writeInventory(): Promise<string> {
    let clusterId = this.clusterId;
    const name = this.spec.name;
    if (!clusterId) {
      clusterId = (await this.clusters.create(name)).id;
      this.clusterId = clusterId;
    } else if (this.clusters.byId(clusterId)?.name !== name) {
      await this.clusters.rename(clusterId, name);
    }
    const existing = this.clusters.byId(clusterId)?.nodes ?? [];
    const auth = authOf(this.form.credential);
    const desired = inventoryNodes(this.spec, auth);
    const { upserts, removes } = syncInventory(existing, desired);
    for (const n of removes) {
      await this.clusters.removeNode({ clusterId, nodeId: n.id });
      this.stored.delete(n.id);
    }
    for (const { key: _key, ...node } of upserts) {
      try {
        await this.clusters.upsertNode(clusterId, node);
      } catch (e) {
        const fields = serverFieldErrors(e, 'node.');
        const first = fields && Object.entries(fields)[0];
        throw new Error(`Node ${node.name}: ${first ? `${first[0]}: ${first[1]}` : errorMessage(e)}`, { cause: e });
      }
    }
    const nodes = this.clusters.byId(clusterId)?.nodes ?? [];
    await this.storeSecrets(clusterId, nodes);
    return clusterId;
  }

  /** secrets.set per node for what the credential holds (key, passphrase, password), once per change. */
  private async storeSecrets(clusterId: string, nodes: ClusterNode[]): Promise<void> {
    const c = this.form.credential;
    const values: [SecretKind, string][] = [];
    if (c.method === 'key-stored' && c.pastedKey.trim()) values.push(['privateKey', c.pastedKey.trim() + '\n']);
    if ((c.method === 'key-file' || c.method === 'key-stored') && c.passphrase)
      values.push(['passphrase', c.passphrase]);
    if (c.method === 'password' && c.password) values.push(['password', c.password]);
    const version = JSON.stringify([c.method, values]);
    for (const n of nodes) {
      if (this.stored.get(n.id) === version) continue;
      for (const [kind, value] of values) await this.clusters.setSecret({ clusterId, nodeId: n.id }, kind, value);
      this.stored.set(n.id, version);
    }
  }

  /**
   * Connect to every node once (ssh.test): keys seen for the first time are confirmed together in
   * one dialog (hostKeys.trust per node). Changed keys are left to the checks, which say what to do.
   */
  private async confirmHostKeys(clusterId: string): Promise<void> {
    const nodes = this.clusters.byId(clusterId)?.nodes ?? [];
    const unknown: { nodeId: string; name: string; hostKey: HostKeyInfo }[] = [];
    await Promise.all(
      nodes.map(async (n) => {
        let code: string | undefined;
        let hostKey: HostKeyInfo | undefined;
        try {
          const r = await api.invoke('ssh.test', { clusterId, nodeId: n.id });
          code = r.error?.code;
          hostKey = r.hostKey;
        } catch (e) {
          if (!(e instanceof ApiCallError)) throw e;
          code = e.code;
          hostKey = (e.details as { hostKey?: HostKeyInfo } | undefined)?.hostKey;
        }
        if (code === 'HOST_KEY_UNKNOWN' && hostKey) {
          const { host, port, keyType, fingerprint } = hostKey;
          unknown.push({ nodeId: n.id, name: n.name, hostKey: { host, port, keyType, fingerprint } });
        }
      }),
    );
    if (!unknown.length) return;
    const order = nodes.map((n) => n.id);
    unknown.sort((a, b) => order.indexOf(a.nodeId) - order.indexOf(b.nodeId));
    const n = unknown.length;
    await this.hostKeys.confirmMany(clusterId, { nodes: unknown }, `${n} host key${n === 1 ? '' : 's'} to confirm`, {
      title: 'Confirm the host keys of the new nodes',
      lead: `The app has not connected to ${n === 1 ? 'this node' : `these ${n} nodes`} before.`,
    });
  }

  /** Write the inventory, confirm host keys, run the checks. Safe to repeat ("Run again"). */
  async runPreflight(): Promise<void> {
    if (this.busy) return;
    this.error = null;
    this.report = null;
    this.hostKeysSkipped = false;
    // The form is done: what its import skipped was read by now.
    this.imported = null;
    try {
      this.phase = 'inventory';
      const clusterId = await this.writeInventory();
      this.phase = 'hostkeys';
      try {
        await this.confirmHostKeys(clusterId);
      } catch (e) {
        // Not trusted: the checks still run and say which nodes they could not reach, and why.
        if (!isCancelled(e)) throw e;
        this.hostKeysSkipped = true;
      }
      this.phase = 'checks';
      const lbPort = preflightLbPort(this.spec);
      this.report = await api.invoke('cluster.preflight', lbPort === undefined ? { clusterId } : { clusterId, lbPort });
    } catch (e) {
      this.error = errorMessage(e);
    } finally {
      this.phase = null;
    }
  }

  // ---- Plan and start ----

  async makePlan(): Promise<void> {
    if (!this.clusterId) return;
    this.error = null;
    this.plan = null;
    this.planning = true;
    try {
      this.plan = await this.jobs.plan(this.clusterId, createRequest(this.spec, this.form.options));
    } catch (e) {
      const fields = serverFieldErrors(e, 'job.');
      const first = fields && Object.entries(fields)[0];
      this.error = first ? `${first[0]}: ${first[1]}` : errorMessage(e);
    } finally {
      this.planning = false;
    }
  }

  /** Run the planned job; resolves with its id (the view then shows it). */
  async start(): Promise<{ clusterId: string; jobId: string } | null> {
    if (!this.plan || !this.clusterId || this.starting) return null;
    this.starting = true;
    this.error = null;
    try {
      await this.jobs.start(this.plan.id);
      return { clusterId: this.clusterId, jobId: this.plan.id };
    } catch (e) {
      this.error = errorMessage(e);
      return null;
    } finally {
      this.starting = false;
    }
  }

  /** Cancel: the draft cluster (if one was written) is removed from the app; nothing ran on the nodes. */
  async discard(): Promise<void> {
    if (this.clusterId) await this.clusters.remove(this.clusterId);
    this.clusterId = null;
  }
}
