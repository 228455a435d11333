// crictl stand-in: the lab's "containers" are the processes the kubelet stand-in runs, described by
// its state files (runtime-state.ts). It answers the subset an operator (and the app) uses when a
// kubelet will not let go of a static pod, with crictl's own output shapes:
//   crictl ps [-a] [-q] [--name RE] [--pod ID] [--state running] [-o json]
//   crictl pods [-q] [--name RE] [--namespace NS] [-o json]
//   crictl stop [-t SEC] ID…      crictl rm [-f] ID…      crictl stopp ID…      crictl rmp [-f] ID…
//   crictl logs [--tail N] ID     crictl inspect ID       crictl version
//   crictl pull IMAGE   crictl images [-q] [-o json]   crictl inspecti IMAGE   crictl rmi IMAGE…
//   (images: the lab's image catalogue and this host's store, images.ts; no network: other pulls fail)
// Stopping a container does what the runtime does: SIGTERM, SIGKILL after the timeout. The kubelet
// restarts it if its pod is still wanted (like the real kubelet); an orphan stays stopped.
import { readFileSync, rmSync } from 'node:fs';
import { findImage, pullImage, PullError, removeImage, storedImages } from './images';
import { listContainerStates, processAlive, type ContainerState } from './runtime-state';

type C = ContainerState & { file: string };

const shortId = (c: C): string => c.containerID.replace(/^containerd:\/\//, '').slice(0, 13);
const fullId = (c: C): string => c.containerID.replace(/^containerd:\/\//, '');
const podId = (c: C): string => c.podUid.replace(/-/g, '').padEnd(64, '0');

function out(s: string): void {
  if (s === '') return; // e.g. `crictl pods -q` with no pods prints nothing
  process.stdout.write(s.endsWith('\n') ? s : `${s}\n`);
}
function fail(msg: string, code = 1): never {
  process.stderr.write(`${msg}\n`);
  process.exit(code);
}

function parseArgs(argv: string[]): { cmd: string; flags: Map<string, string>; args: string[] } {
  const flags = new Map<string, string>();
  const args: string[] = [];
  const valued = new Set([
    '--name',
    '--pod',
    '-p',
    '--state',
    '-o',
    '--output',
    '--namespace',
    '-t',
    '--timeout',
    '--tail',
  ]);
  let cmd = '';
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a.startsWith('--') && a.includes('=')) flags.set(a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1));
    else if (valued.has(a)) flags.set(a, argv[++i] ?? '');
    else if (a.startsWith('-')) flags.set(a, 'true');
    else if (!cmd) cmd = a;
    else args.push(a);
  }
  return { cmd, flags, args };
}

function running(c: C): boolean {
  return processAlive(c.pid);
}

/** Containers whose id starts with `id` (crictl accepts unique prefixes). */
function find(id: string, all: C[]): C[] {
  const hits = all.filter((c) => fullId(c).startsWith(id));
  if (!hits.length)
    fail(`rpc error: code = NotFound desc = an error occurred when try to find container "${id}": not found`);
  return hits;
}

async function stopOne(c: C, timeoutS: number): Promise<void> {
  if (!running(c)) return;
  try {
    process.kill(c.pid, 'SIGTERM');
  } catch {
    /* gone */
  }
  const deadline = Date.now() + timeoutS * 1000;
  while (running(c) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  if (running(c)) {
    try {
      process.kill(c.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
    while (running(c)) await new Promise((r) => setTimeout(r, 20));
  }
}

function age(startedAt: string): string {
  const s = Math.max(0, Math.round((Date.now() - Date.parse(startedAt)) / 1000));
  return s < 60
    ? `${s} seconds ago`
    : s < 3600
      ? `${Math.round(s / 60)} minutes ago`
      : `${Math.round(s / 3600)} hours ago`;
}

function table(rows: string[][]): string {
  const w = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows
    .map((r) =>
      r
        .map((c, i) => c.padEnd(w[i]))
        .join('   ')
        .trimEnd(),
    )
    .join('\n');
}

export async function main(): Promise<void> {
  const { cmd, flags, args } = parseArgs(process.argv.slice(2));
  const all = listContainerStates() as C[];
  const nameRe = flags.has('--name') ? new RegExp(flags.get('--name')!) : undefined;
  const json = ['json'].includes(flags.get('-o') ?? flags.get('--output') ?? '');
  switch (cmd) {
    case 'version':
      out(
        'Version:  0.1.0\nRuntimeName:  containerd\nRuntimeVersion:  1.7.24 (kes-lab stand-in)\nRuntimeApiVersion:  v1',
      );
      return;
    case 'ps': {
      const pod = flags.get('--pod') ?? flags.get('-p');
      const list = all.filter(
        (c) =>
          (flags.has('-a') || flags.has('--all') || running(c)) &&
          (!nameRe || nameRe.test(c.name)) &&
          (!pod || podId(c).startsWith(pod)) &&
          (!flags.has('--state') || (flags.get('--state')!.toLowerCase() === 'running') === running(c)),
      );
      if (json)
        return out(
          JSON.stringify(
            {
              containers: list.map((c) => ({
                id: fullId(c),
                podSandboxId: podId(c),
                metadata: { name: c.name, attempt: c.restartCount },
                image: { image: c.image },
                state: running(c) ? 'CONTAINER_RUNNING' : 'CONTAINER_EXITED',
                createdAt: String(Date.parse(c.startedAt) * 1e6),
                labels: {
                  'io.kubernetes.container.name': c.name,
                  'io.kubernetes.pod.name': c.podName,
                  'io.kubernetes.pod.namespace': c.podNamespace,
                  'io.kubernetes.pod.uid': c.podUid,
                },
              })),
            },
            null,
            2,
          ),
        );
      if (flags.has('-q') || flags.has('--quiet')) return out(list.map(fullId).join('\n'));
      return out(
        table([
          ['CONTAINER', 'IMAGE', 'CREATED', 'STATE', 'NAME', 'ATTEMPT', 'POD ID', 'POD'],
          ...list.map((c) => [
            shortId(c),
            c.image,
            age(c.startedAt),
            running(c) ? 'Running' : 'Exited',
            c.name,
            String(c.restartCount),
            podId(c).slice(0, 13),
            c.podName,
          ]),
        ]),
      );
    }
    case 'pods': {
      const seen = new Map<string, C>();
      for (const c of all) if (!seen.has(c.podUid)) seen.set(c.podUid, c);
      const ns = flags.get('--namespace');
      const list = [...seen.values()].filter(
        (c) => (!nameRe || nameRe.test(c.podName)) && (!ns || c.podNamespace === ns),
      );
      if (json)
        return out(
          JSON.stringify(
            {
              items: list.map((c) => ({
                id: podId(c),
                metadata: { name: c.podName, uid: c.podUid, namespace: c.podNamespace, attempt: 0 },
                state: 'SANDBOX_READY',
              })),
            },
            null,
            2,
          ),
        );
      if (flags.has('-q') || flags.has('--quiet')) return out(list.map(podId).join('\n'));
      return out(
        table([
          ['POD ID', 'CREATED', 'STATE', 'NAME', 'NAMESPACE', 'ATTEMPT', 'RUNTIME'],
          ...list.map((c) => [
            podId(c).slice(0, 13),
            age(c.startedAt),
            'Ready',
            c.podName,
            c.podNamespace,
            '0',
            '(default)',
          ]),
        ]),
      );
    }
    case 'stop': {
      if (!args.length) fail('ID cannot be empty');
      const t = Number(flags.get('-t') ?? flags.get('--timeout') ?? 10);
      for (const id of args)
        for (const c of find(id, all)) {
          await stopOne(c, t);
          out(id);
        }
      return;
    }
    case 'rm': {
      if (!args.length) fail('ID cannot be empty');
      for (const id of args)
        for (const c of find(id, all)) {
          if (running(c)) {
            if (!flags.has('-f') && !flags.has('--force'))
              fail(`rpc error: code = Unknown desc = failed to remove container "${id}": container is running`);
            await stopOne(c, 0);
          }
          rmSync(c.file, { force: true });
          out(id);
        }
      return;
    }
    case 'stopp':
    case 'rmp': {
      if (!args.length) fail('ID cannot be empty');
      for (const id of args) {
        const hits = all.filter((c) => podId(c).startsWith(id));
        if (!hits.length)
          fail(`rpc error: code = NotFound desc = an error occurred when try to find sandbox "${id}": not found`);
        if (cmd === 'rmp' && hits.some(running) && !flags.has('-f') && !flags.has('--force'))
          fail(`rpc error: code = Unknown desc = failed to remove pod sandbox "${id}": pod sandbox is running`);
        for (const c of hits) {
          await stopOne(c, cmd === 'rmp' ? 0 : 10);
          if (cmd === 'rmp') rmSync(c.file, { force: true });
        }
        out(`${cmd === 'stopp' ? 'Stopped' : 'Removed'} sandbox ${id}`);
      }
      return;
    }
    case 'logs': {
      const [c] = find(args[0] ?? fail('ID cannot be empty'), all);
      let text = '';
      try {
        text = readFileSync(c.logPath, 'utf8');
      } catch {
        /* no log yet */
      }
      const tail = flags.get('--tail');
      if (tail)
        text = text
          .split('\n')
          .slice(-Number(tail) - 1)
          .join('\n');
      process.stdout.write(text);
      return;
    }
    case 'inspect': {
      const [c] = find(args[0] ?? fail('ID cannot be empty'), all);
      return out(
        JSON.stringify(
          {
            status: {
              id: fullId(c),
              metadata: { name: c.name, attempt: c.restartCount },
              state: running(c) ? 'CONTAINER_RUNNING' : 'CONTAINER_EXITED',
              image: { image: c.image },
              logPath: c.logPath,
            },
            info: { pid: c.pid },
          },
          null,
          2,
        ),
      );
    }
    case 'pull': {
      const image = args[0] ?? fail('Image name cannot be empty');
      try {
        return out(`Image is up to date for ${pullImage(image).id}`);
      } catch (e) {
        if (e instanceof PullError)
          fail(`time="${new Date().toISOString()}" level=fatal msg="pulling image: ${e.message}"`);
        throw e;
      }
    }
    case 'images':
    case 'image':
    case 'img': {
      const list = storedImages().filter((i) => !args[0] || findImage(args[0])?.ref === i.ref);
      if (json)
        return out(
          JSON.stringify(
            {
              images: list.map((i) => ({
                id: i.id,
                repoTags: [i.ref],
                repoDigests: [`${i.ref.replace(/:[^/:]+$/, '')}@${i.id}`],
                size: String(i.size),
                pinned: false,
              })),
            },
            null,
            2,
          ),
        );
      if (flags.has('-q') || flags.has('--quiet')) return out(list.map((i) => i.id).join('\n'));
      return out(
        table([
          ['IMAGE', 'TAG', 'IMAGE ID', 'SIZE'],
          ...list.map((i) => [
            i.ref.replace(/:[^/:]+$/, ''),
            i.ref.replace(/^.*:/, ''),
            i.id.slice(7, 20),
            `${(i.size / 1e6).toFixed(1)}MB`,
          ]),
        ]),
      );
    }
    case 'inspecti': {
      const i = findImage(args[0] ?? fail('ID cannot be empty'));
      if (!i) fail(`time="${new Date().toISOString()}" level=fatal msg="no such image ${args[0]} present"`);
      return out(
        JSON.stringify(
          { status: { id: i.id, repoTags: [i.ref], repoDigests: [], size: String(i.size), pinned: false } },
          null,
          2,
        ),
      );
    }
    case 'rmi': {
      if (!args.length) fail('ImageID cannot be empty');
      for (const a of args) {
        const i = findImage(a);
        if (!i || !removeImage(a)) fail(`time="${new Date().toISOString()}" level=fatal msg="no such image ${a}"`);
        out(`Deleted: ${i.ref}`);
      }
      return;
    }
    default:
      fail(`crictl (kes-lab stand-in): unsupported command "${cmd}"`);
  }
}
