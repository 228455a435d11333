// Host-key decisions in the UI. Every call that opens an SSH connection goes through `guard`:
// - HOST_KEY_UNKNOWN: show the SHA256 fingerprint; Trust → hostKeys.trust (main only accepts the
//   exact key the node presented) and retry the call; Cancel → the call ends quietly.
// - HOST_KEY_CHANGED: show expected vs presented in red; the only way on is an explicitly
//   confirmed "Forget old key", after which the retry asks about the new key like a first contact.
import type { HostKeyInfo, TrustedHostKey } from '@shared/domain';
import { api, ApiCallError } from '../api';
import { CancelledByUser } from '../errors';

export interface NodeRefNamed {
  clusterId: string;
  nodeId: string;
  name: string;
}

export type HostKeyPrompt =
  | { kind: 'unknown'; node: NodeRefNamed; presented: HostKeyInfo; message: string }
  | { kind: 'changed'; node: NodeRefNamed; presented: HostKeyInfo; expected?: HostKeyInfo; message: string };

export type HostKeyDecision = 'trust' | 'forget' | 'cancel';

/** Several first contacts at once (initialize discovered new masters, a new cluster's nodes): one dialog for all. */
export interface ManyHostKeysPrompt {
  clusterId: string;
  nodes: { nodeId: string; name: string; hostKey: HostKeyInfo }[];
  message: string;
  /** Dialog title and first sentence; the defaults speak of masters found by initialize. */
  title?: string;
  lead?: string;
}

function hostKeyOf(v: unknown): HostKeyInfo | undefined {
  const k = v as Partial<HostKeyInfo> | undefined;
  if (k && typeof k.fingerprint === 'string' && typeof k.host === 'string' && typeof k.port === 'number') {
    return { host: k.host, port: k.port, keyType: String(k.keyType ?? ''), fingerprint: k.fingerprint };
  }
  return undefined;
}

/** Finds the node of a cluster that answers at host:port (the key may be a jump host's). */
export type NodeFinder = (
  clusterId: string,
  host: string,
  port: number,
  preferId: string,
) => { id: string; name: string } | undefined;

export class HostKeyController {
  /** Set by the root controller: lets a jump host's key be trusted under the jump node. */
  findNode: NodeFinder = () => undefined;
  prompt = $state.raw<HostKeyPrompt | null>(null);
  busy = $state(false);
  error = $state<string | null>(null);
  trusted = $state.raw<TrustedHostKey[]>([]);
  many = $state.raw<ManyHostKeysPrompt | null>(null);
  private answer: ((d: HostKeyDecision) => void) | null = null;
  private manyAnswer: ((trust: boolean) => void) | null = null;

  async loadTrusted(): Promise<void> {
    this.trusted = await api.invoke('hostKeys.list', {});
  }

  /**
   * Run `fn`; when it fails on a host key, ask the user and retry as they decide. The user's
   * Cancel surfaces as CancelledByUser so callers do not show an error toast for it.
   */
  async guard<T>(node: NodeRefNamed, fn: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await fn();
      } catch (e) {
        if (!(e instanceof ApiCallError) || attempt >= 3) throw e;
        const details = (e.details ?? {}) as { hostKey?: unknown; expected?: unknown };
        const presented = hostKeyOf(details.hostKey);
        if (!presented || (e.code !== 'HOST_KEY_UNKNOWN' && e.code !== 'HOST_KEY_CHANGED')) throw e;
        // Through a jump host the refused key can be the jump node's: trust it under that node.
        const owner = this.findNode(node.clusterId, presented.host, presented.port, node.nodeId);
        const keyNode: NodeRefNamed = owner ? { clusterId: node.clusterId, nodeId: owner.id, name: owner.name } : node;
        if (e.code === 'HOST_KEY_UNKNOWN') {
          await this.decide({ kind: 'unknown', node: keyNode, presented, message: e.message }, async (d) => {
            if (d !== 'trust') return false;
            await api.invoke('hostKeys.trust', {
              clusterId: keyNode.clusterId,
              nodeId: keyNode.nodeId,
              fingerprint: presented.fingerprint,
            });
            return true;
          });
        } else {
          let expected = hostKeyOf(details.expected);
          if (!expected) {
            await this.loadTrusted().catch(() => undefined);
            expected = this.trusted.find((k) => k.host === presented.host && k.port === presented.port);
          }
          await this.decide({ kind: 'changed', node: keyNode, presented, expected, message: e.message }, async (d) => {
            if (d !== 'forget') return false;
            await api.invoke('hostKeys.forget', { host: presented.host, port: presented.port });
            return true;
          });
        }
        void this.loadTrusted().catch(() => undefined);
        // Decided: loop and retry the original call.
      }
    }
  }

  /** Show the prompt and wait; `act` runs the chosen action and keeps the dialog open on failure. */
  private decide(prompt: HostKeyPrompt, act: (d: HostKeyDecision) => Promise<boolean>): Promise<void> {
    // A second prompt while one is open (two quick clicks) replaces it; the first is cancelled.
    this.answer?.('cancel');
    this.error = null;
    this.prompt = prompt;
    return new Promise<void>((resolve, reject) => {
      this.answer = (d) => {
        if (d === 'cancel') {
          this.close();
          reject(new CancelledByUser('Host key not accepted'));
          return;
        }
        this.busy = true;
        act(d)
          .then((proceed) => {
            this.close();
            if (proceed) resolve();
            else reject(new CancelledByUser());
          })
          .catch((err: unknown) => {
            this.error = (err as Error).message;
          })
          .finally(() => {
            this.busy = false;
          });
      };
    });
  }

  private close(): void {
    this.prompt = null;
    this.answer = null;
    this.error = null;
  }

  /**
   * Ask once about every node in `details.nodes` of a HOST_KEYS_UNKNOWN error; Trust all →
   * hostKeys.trust per node (the dialog stays open on failure); Cancel → CancelledByUser.
   */
  confirmMany(
    clusterId: string,
    details: unknown,
    message: string,
    text: { title?: string; lead?: string } = {},
  ): Promise<void> {
    const raw = (details as { nodes?: unknown } | undefined)?.nodes;
    const nodes: ManyHostKeysPrompt['nodes'] = [];
    for (const n of Array.isArray(raw) ? raw : []) {
      const x = n as { nodeId?: unknown; name?: unknown; hostKey?: unknown };
      const hostKey = hostKeyOf(x.hostKey);
      if (typeof x.nodeId === 'string' && hostKey)
        nodes.push({ nodeId: x.nodeId, name: typeof x.name === 'string' ? x.name : x.nodeId, hostKey });
    }
    if (!nodes.length) return Promise.reject(new Error(message));
    this.manyAnswer?.(false);
    this.error = null;
    this.many = { clusterId, nodes, message, ...text };
    return new Promise<void>((resolve, reject) => {
      this.manyAnswer = (trust) => {
        if (!trust) {
          this.closeMany();
          reject(new CancelledByUser('Host keys not accepted'));
          return;
        }
        this.busy = true;
        this.error = null;
        (async () => {
          for (const n of nodes)
            await api.invoke('hostKeys.trust', { clusterId, nodeId: n.nodeId, fingerprint: n.hostKey.fingerprint });
        })()
          .then(() => {
            this.closeMany();
            void this.loadTrusted().catch(() => undefined);
            resolve();
          })
          .catch((err: unknown) => {
            this.error = (err as Error).message;
          })
          .finally(() => {
            this.busy = false;
          });
      };
    });
  }

  respondMany(trust: boolean): void {
    this.manyAnswer?.(trust);
  }

  private closeMany(): void {
    this.many = null;
    this.manyAnswer = null;
    this.error = null;
  }

  respond(d: HostKeyDecision): void {
    this.answer?.(d);
  }

  async forget(host: string, port: number): Promise<void> {
    await api.invoke('hostKeys.forget', { host, port });
    await this.loadTrusted();
  }
}
