// State and validation of the add/edit node form. Validation runs the same zod schema main uses
// (NodeInput from @shared/domain), so client and server messages match; server INVALID_INPUT
// issues (paths like `node.address`) land next to the same fields. A new node starts from the
// node added last (port, user, jump host, auth method and key file; its stored key, password or
// passphrase offered as a copy made inside main — lib/addnodes.ts).
import { NodeInput, type Auth, type ClusterNode, type Role, type SecretFlags, type SecretKind } from '@shared/domain';
import { serverFieldErrors, zodFieldErrors, type FieldErrors } from '../errors';
import { prefillFrom, previousNode, reusable } from '../addnodes';
import type { ClustersController } from './clusters.svelte';

export type AuthMethod = Auth['method'];
export type FormField =
  | 'name'
  | 'address'
  | 'port'
  | 'user'
  | 'roles'
  | 'authMethod'
  | 'keyPath'
  | 'pastedKey'
  | 'passphrase'
  | 'password'
  | 'jumpNodeId'
  | '_';

export const ROLES: { value: Role; label: string }[] = [
  { value: 'lb', label: 'Load balancer' },
  { value: 'master', label: 'Master' },
  { value: 'worker', label: 'Worker' },
  { value: 'etcd', label: 'etcd' },
];

export const AUTH_METHODS: { value: AuthMethod; label: string; hint: string }[] = [
  { value: 'key-file', label: 'Key file', hint: 'A private key file on this computer' },
  { value: 'key-stored', label: 'Paste key', hint: 'Stored in the keychain, never shown again' },
  { value: 'agent', label: 'ssh-agent', hint: 'Keys in the running ssh-agent' },
  { value: 'password', label: 'Password', hint: 'Stored in the keychain' },
];

const MAX_SECRET = 64 * 1024;

/** Map schema paths to form fields. */
function fieldOf(path: string): FormField {
  if (path === 'auth.keyPath') return 'keyPath';
  if (path.startsWith('auth')) return 'authMethod';
  if (path.startsWith('roles')) return 'roles';
  if (path === 'jumpNodeId') return 'jumpNodeId';
  if (['name', 'address', 'port', 'user'].includes(path)) return path as FormField;
  return '_';
}

function remap(errors: FieldErrors): Partial<Record<FormField, string>> {
  const out: Partial<Record<FormField, string>> = {};
  for (const [path, message] of Object.entries(errors)) out[fieldOf(path)] ??= message;
  return out;
}

export class NodeFormController {
  nodeId = $state<string | null>(null);
  name = $state('');
  address = $state('');
  port = $state('22');
  user = $state('root');
  roles = $state<Role[]>([]);
  authMethod = $state<AuthMethod>('key-file');
  keyPath = $state('~/.ssh/id_ed25519');
  pastedKey = $state('');
  passphrase = $state('');
  password = $state('');
  jumpNodeId = $state('');
  /** What the keychain holds for this node (edit mode). Values are never read back. */
  flags = $state.raw<SecretFlags>({ privateKey: false, passphrase: false, password: false });
  /** Replace a stored key/password: shows the input again. */
  replaceKey = $state(false);
  replacePassword = $state(false);
  /** New node: the node its fields were prefilled from, and what that node has in the keychain. */
  prefilledFrom = $state.raw<{ id: string; name: string } | null>(null);
  prevFlags = $state.raw<SecretFlags | null>(null);
  /** Use (a copy of) the previous node's stored secret instead of typing it again. */
  reuse = $state(true);

  touched = $state<Partial<Record<FormField, boolean>>>({});
  submitted = $state(false);
  saving = $state(false);
  serverErrors = $state<Partial<Record<FormField, string>>>({});
  formError = $state<string | null>(null);

  readonly clusterId: string;

  constructor(
    private readonly clusters: ClustersController,
    clusterId: string,
    node?: ClusterNode,
  ) {
    this.clusterId = clusterId;
    if (node) {
      this.nodeId = node.id;
      this.name = node.name;
      this.address = node.address;
      this.port = String(node.port);
      this.user = node.user;
      this.roles = [...node.roles];
      this.authMethod = node.auth.method;
      if (node.auth.method === 'key-file') this.keyPath = node.auth.keyPath;
      this.jumpNodeId = node.jumpNodeId ?? '';
      void this.loadFlags();
    } else {
      const prev = previousNode(clusters.byId(clusterId)?.nodes ?? []);
      const p = prefillFrom(prev);
      this.port = p.port;
      this.user = p.user;
      this.jumpNodeId = p.jumpNodeId;
      this.authMethod = p.credential.method;
      this.keyPath = p.credential.keyPath;
      this.prefilledFrom = p.from ?? null;
      if (prev) void this.loadPrevFlags(prev.id);
    }
  }

  async loadPrevFlags(nodeId: string): Promise<void> {
    try {
      this.prevFlags = await this.clusters.secretStatus({ clusterId: this.clusterId, nodeId });
    } catch {
      // Nothing offered: the secrets are typed as usual.
    }
  }

  /** The previous node's stored secret can stand in for what this method needs. */
  canReuse = $derived(!this.nodeId && reusable(this.authMethod, this.prevFlags));
  reusing = $derived(this.canReuse && this.reuse);

  get editing(): boolean {
    return this.nodeId !== null;
  }

  async loadFlags(): Promise<void> {
    if (!this.nodeId) return;
    try {
      this.flags = await this.clusters.secretStatus({ clusterId: this.clusterId, nodeId: this.nodeId });
    } catch {
      // Leave the flags false; saving will still work.
    }
  }

  /** Other nodes of the cluster that can serve as jump host. */
  jumpCandidates = $derived.by(() => {
    const c = this.clusters.byId(this.clusterId);
    return (c?.nodes ?? []).filter((n) => n.id !== this.nodeId);
  });

  portValue(): number {
    const t = this.port.trim();
    return t === '' ? 22 : Number(t);
  }

  authValue(): Auth {
    switch (this.authMethod) {
      case 'key-file':
        return { method: 'key-file', keyPath: this.keyPath.trim() };
      case 'key-stored':
        return { method: 'key-stored' };
      case 'agent':
        return { method: 'agent' };
      case 'password':
        return { method: 'password' };
    }
  }

  /** The payload for nodes.upsert. */
  input(): NodeInput {
    return {
      ...(this.nodeId ? { id: this.nodeId } : {}),
      name: this.name,
      address: this.address,
      port: this.portValue(),
      user: this.user,
      roles: [...this.roles],
      auth: this.authValue(),
      jumpNodeId: this.jumpNodeId || null,
    };
  }

  /** Client-side errors for every field (whether shown yet or not). */
  clientErrors = $derived.by((): Partial<Record<FormField, string>> => {
    const parsed = NodeInput.safeParse(this.input());
    const errors = parsed.success ? {} : remap(zodFieldErrors(parsed.error));
    if (this.authMethod === 'key-stored' && (!this.flags.privateKey || this.replaceKey) && !this.reusing) {
      const k = this.pastedKey.trim();
      if (!k) errors.pastedKey ??= 'Paste the private key (it is stored in the keychain)';
      else if (!/-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/.test(k))
        errors.pastedKey ??= 'This does not look like a private key (-----BEGIN … PRIVATE KEY-----)';
      else if (k.length > MAX_SECRET) errors.pastedKey ??= 'Value is too large';
    }
    if (
      this.authMethod === 'password' &&
      (!this.flags.password || this.replacePassword) &&
      !this.password &&
      !this.reusing
    ) {
      errors.password ??= 'Enter the password (it is stored in the keychain)';
    }
    if (this.passphrase.length > MAX_SECRET) errors.passphrase ??= 'Value is too large';
    return errors;
  });

  hasErrors = $derived(Object.keys(this.clientErrors).length > 0);

  /** The message to show next to a field: the server's, else the client's once touched/submitted. */
  error(field: FormField): string | undefined {
    const server = this.serverErrors[field];
    if (server) return server;
    if (this.submitted || this.touched[field]) return this.clientErrors[field];
    return undefined;
  }

  touch(field: FormField): void {
    this.touched[field] = true;
  }

  /** A field changed: its server-side message no longer applies. */
  edited(field: FormField): void {
    if (this.serverErrors[field]) {
      const next = { ...this.serverErrors };
      delete next[field];
      this.serverErrors = next;
    }
  }

  toggleRole(role: Role, on: boolean): void {
    const others = this.roles.filter((r) => r !== role);
    this.roles = on ? [...others, role] : others;
    this.edited('roles');
  }

  /** Validate, save the node, then store any secrets that were entered. Returns the node, or null. */
  async save(): Promise<ClusterNode | null> {
    this.submitted = true;
    this.formError = null;
    if (this.hasErrors) return null;
    // Read before the node gets its id (a saved node no longer takes the previous node's secret).
    const reusing = this.reusing;
    const from = this.prefilledFrom;
    this.saving = true;
    try {
      let saved: ClusterNode;
      try {
        saved = await this.clusters.upsertNode(this.clusterId, this.input());
      } catch (e) {
        const fields = serverFieldErrors(e, 'node.');
        if (fields && Object.keys(fields).some((k) => k !== '_')) this.serverErrors = remap(fields);
        else this.formError = (e as Error).message;
        return null;
      }
      // From here on a retry edits the node we just created.
      this.nodeId = saved.id;
      const ref = { clusterId: this.clusterId, nodeId: saved.id };
      const store = async (kind: SecretKind, value: string, field: FormField): Promise<boolean> => {
        try {
          this.flags = await this.clusters.setSecret(ref, kind, value);
          return true;
        } catch (e) {
          const fields = serverFieldErrors(e);
          this.serverErrors = { ...this.serverErrors, [field]: fields?.value ?? (e as Error).message };
          return false;
        }
      };
      let ok = true;
      if (reusing && from) {
        try {
          this.flags = await this.clusters.copySecrets(this.clusterId, from.id, saved.id);
          this.prefilledFrom = null;
        } catch (e) {
          this.formError = `Node saved, but the secret of the previous node was not copied: ${(e as Error).message}`;
          ok = false;
        }
      }
      if (this.authMethod === 'key-stored' && this.pastedKey.trim() && !reusing) {
        ok = (await store('privateKey', this.pastedKey.trim() + '\n', 'pastedKey')) && ok;
        if (ok) {
          this.pastedKey = '';
          this.replaceKey = false;
        }
      }
      if ((this.authMethod === 'key-file' || this.authMethod === 'key-stored') && this.passphrase) {
        ok = (await store('passphrase', this.passphrase, 'passphrase')) && ok;
        if (ok) this.passphrase = '';
      }
      if (this.authMethod === 'password' && this.password && !reusing) {
        ok = (await store('password', this.password, 'password')) && ok;
        if (ok) {
          this.password = '';
          this.replacePassword = false;
        }
      }
      return ok ? saved : null;
    } finally {
      this.saving = false;
    }
  }

  async forgetSecret(kind: SecretKind): Promise<void> {
    if (!this.nodeId) return;
    try {
      this.flags = await this.clusters.clearSecret({ clusterId: this.clusterId, nodeId: this.nodeId }, kind);
    } catch (e) {
      this.formError = (e as Error).message;
    }
  }
}
