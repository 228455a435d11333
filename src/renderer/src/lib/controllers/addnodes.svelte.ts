// State of "Add several nodes" (components/domain/AddNodesDialog.svelte). The rules are pure
// (lib/addnodes.ts); this class holds the table, the shared credential (the wizard's form,
// prefilled from the node added last) and the ~/.ssh/config picker, and writes every valid row
// with one nodes.addMany call — all or nothing; the server's per-entry refusals land on their rows.
import type { ClusterNode, Role, SecretFlags, SshConfigEntry } from '@shared/domain';
import { api } from '../api';
import {
  credentialPayload,
  nodesToAdd,
  parseHostList,
  prefillFrom,
  previousNode,
  reusable,
  rowsFromSshConfig,
  serverRowIssues,
  sharedCredentialIssues,
  validateRows,
  validRowIndexes,
  type AddRow,
  type Issue,
} from '../addnodes';
import { errorMessage, serverFieldErrors } from '../errors';
import type { CredentialForm } from '../wizard';
import type { ClustersController } from './clusters.svelte';

export class AddNodesController {
  source = $state<'paste' | 'ssh-config'>('paste');
  text = $state('');
  rows = $state<AddRow[]>([]);
  cred = $state<CredentialForm>({ method: 'key-file', keyPath: '', pastedKey: '', passphrase: '', password: '' });
  jumpNodeId = $state('');
  reuse = $state(true);
  readonly prev: { id: string; name: string } | null;
  prevFlags = $state.raw<SecretFlags | null>(null);
  /** Port and user a line without them gets (the previous node's). */
  readonly defaults: { port: string; user: string };

  touched = $state<Record<string, boolean>>({});
  submitted = $state(false);
  saving = $state(false);
  error = $state<string | null>(null);
  serverIssues = $state.raw<Issue[]>([]);

  sshPath = $state('');
  sshEntries = $state.raw<SshConfigEntry[]>([]);
  sshChosen = $state<Record<string, boolean>>({});
  sshLoading = $state(false);
  sshLoaded = $state(false);
  sshError = $state<string | null>(null);

  constructor(
    private readonly clusters: ClustersController,
    readonly clusterId: string,
    sshConfigPath: string,
  ) {
    const prev = previousNode(clusters.byId(clusterId)?.nodes ?? []);
    const p = prefillFrom(prev);
    this.cred = p.credential;
    this.jumpNodeId = p.jumpNodeId;
    this.defaults = { port: p.port, user: p.user };
    this.prev = p.from ?? null;
    this.sshPath = sshConfigPath;
    if (prev) void this.loadPrevFlags(prev.id);
  }

  private async loadPrevFlags(nodeId: string): Promise<void> {
    try {
      this.prevFlags = await this.clusters.secretStatus({ clusterId: this.clusterId, nodeId });
    } catch {
      // Nothing offered: the secrets are typed.
    }
  }

  existing = $derived.by((): ClusterNode[] => this.clusters.byId(this.clusterId)?.nodes ?? []);
  jumpCandidates = $derived(this.existing);
  issues = $derived([...this.serverIssues, ...validateRows(this.rows, this.existing)]);
  valid = $derived(validRowIndexes(this.rows, this.issues));
  canReuse = $derived.by(() => !!this.prev && reusable(this.cred.method, this.prevFlags));
  reusing = $derived(this.canReuse && this.reuse);
  /** Whether any row to add uses the shared credential (an ssh config row may bring its own key). */
  usesShared = $derived(this.valid.some((i) => !this.rows[i].keyPath) || this.valid.length === 0);
  credIssues = $derived(this.usesShared ? sharedCredentialIssues(this.cred, this.reusing) : []);
  picked = $derived(this.sshEntries.filter((e) => this.sshChosen[e.host]));

  /** Every problem of row `i` (shown at once: the point of the table is to see them). */
  rowIssues(i: number): Issue[] {
    const prefix = `rows.${i}.`;
    return this.issues.filter((x) => x.field.startsWith(prefix));
  }

  rowError(i: number, field: string): string | undefined {
    return this.issues.find((x) => x.field === `rows.${i}.${field}`)?.message;
  }

  credError(field: string): string | undefined {
    if (!this.touched[field] && !this.submitted) return undefined;
    return this.credIssues.find((i) => i.field === field)?.message;
  }

  touch(field: string): void {
    if (!this.touched[field]) this.touched = { ...this.touched, [field]: true };
  }

  /** A row changed: the server's verdicts (made for the old rows) no longer apply. */
  edited(): void {
    if (this.serverIssues.length) this.serverIssues = [];
    this.error = null;
  }

  /** Parse the pasted text into rows (appended to the table); the text box is emptied. */
  readList(): number {
    const rows = parseHostList(this.text, this.defaults);
    this.rows.push(...rows);
    this.text = '';
    this.edited();
    return rows.length;
  }

  async loadSshConfig(): Promise<void> {
    this.sshLoading = true;
    this.sshError = null;
    try {
      const entries = await api.invoke('sshConfig.read', { path: this.sshPath.trim() || undefined });
      this.sshEntries = entries.filter((e) => !/[*?!]/.test(e.host));
      this.sshChosen = {};
      this.sshLoaded = true;
    } catch (e) {
      this.sshEntries = [];
      this.sshError = errorMessage(e);
    } finally {
      this.sshLoading = false;
    }
  }

  /** The ticked ssh config Hosts become rows. */
  addPicked(): void {
    this.rows.push(...rowsFromSshConfig(this.picked, this.defaults));
    this.sshChosen = {};
    this.edited();
  }

  removeRow(i: number): void {
    this.rows.splice(i, 1);
    this.edited();
  }

  toggleRole(i: number, role: Role, on: boolean): void {
    const r = this.rows[i];
    const others = r.roles.filter((x) => x !== role);
    r.roles = on ? [...others, role] : others;
  }

  /** Give every row of the table the role `role` (or take it away). */
  setRoleAll(role: Role, on: boolean): void {
    for (let i = 0; i < this.rows.length; i++) this.toggleRole(i, role, on);
  }

  /** Write every valid row (one nodes.addMany). Resolves with the nodes added, or null. */
  async add(): Promise<ClusterNode[] | null> {
    this.submitted = true;
    this.error = null;
    if (this.saving || !this.valid.length || this.credIssues.length) return null;
    const indexes = [...this.valid];
    const nodes = nodesToAdd(this.rows, indexes, this.cred, this.jumpNodeId, this.existing);
    const credential = credentialPayload(this.cred, this.reusing && this.prev ? this.prev.id : null);
    this.saving = true;
    try {
      return await this.clusters.addNodes(this.clusterId, nodes, credential);
    } catch (e) {
      const fields = serverFieldErrors(e) ?? {};
      this.serverIssues = serverRowIssues(fields, indexes);
      this.error = errorMessage(e);
      return null;
    } finally {
      this.saving = false;
    }
  }
}
