// The lab's "container runtime" state: one JSON file per running container, written by the kubelet
// stand-in and read by the crictl stand-in (what an operator uses when a kubelet will not let go).
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export const CONTAINER_STATE_DIR = '/run/kes-lab/kubelet';

export interface ContainerState {
  pid: number;
  restartCount: number;
  startedAt: string;
  containerID: string; // "containerd://<64 hex>"
  hash: string; // the pod content hash the container was started for
  name: string;
  image: string;
  podName: string;
  podNamespace: string;
  podUid: string;
  static: boolean;
  logPath: string;
}

export function containerStateFile(podUid: string, name: string): string {
  return join(CONTAINER_STATE_DIR, `${podUid}_${name}.json`);
}

/** Every container state file (unreadable ones skipped). */
export function listContainerStates(): (ContainerState & { file: string })[] {
  let files: string[];
  try {
    files = readdirSync(CONTAINER_STATE_DIR).filter((f) => f.endsWith('.json'));
  } catch {
    return [];
  }
  const out: (ContainerState & { file: string })[] = [];
  for (const f of files) {
    try {
      const file = join(CONTAINER_STATE_DIR, f);
      out.push({ ...(JSON.parse(readFileSync(file, 'utf8')) as ContainerState), file });
    } catch {
      /* being written or removed */
    }
  }
  return out;
}

/** A live, non-zombie process. */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}
