// The lab's "image store", shared by the containerd stand-in (CRI ImageService), the crictl stand-in
// (pull/images/inspecti/rmi) and the kubelet stand-in:
// - the CATALOGUE is what a registry mirror could serve here: every <name>/<tag> directory under
//   /usr/local/lib/kes-lab/images (hard links of the cached real binaries, or an empty directory for an
//   image the lab has no program for, e.g. pause, coredns, kube-proxy: its containers run a
//   placeholder). There is no network in the lab: any other image cannot be pulled.
// - the STORE is what this host has "pulled": one JSON file per image in
//   /var/lib/containerd/kes-lab-images/ (so it survives reboots, is private to the host and a
//   concurrent writer never clobbers another's entry). Pulling a catalogue image costs nothing.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const IMAGES_DIR = '/usr/local/lib/kes-lab/images';
export const IMAGE_STORE_DIR = '/var/lib/containerd/kes-lab-images';
const REGISTRY = 'registry.k8s.io';

export interface StoredImage {
  ref: string; // normalized: registry.k8s.io/etcd:3.6.8-0
  id: string; // sha256:<64 hex>
  size: number;
  pulledAt: string;
}

/** Normalize an image reference like containerd does (docker.io/library/ for short names, :latest). */
export function normalizeRef(image: string): string {
  let ref = image.trim().replace(/@sha256:[0-9a-f]{64}$/, '');
  const first = ref.split('/')[0];
  if (!ref.includes('/') || !(first.includes('.') || first.includes(':') || first === 'localhost'))
    ref = `docker.io/${ref.includes('/') ? '' : 'library/'}${ref}`;
  if (!/:[^/:]+$/.test(ref)) ref += ':latest';
  return ref;
}

/** registry.k8s.io/coredns/coredns:v1.14.2 → { dir: images/coredns/v1.14.2 } (the catalogue layout). */
function catalogueDir(ref: string): string | undefined {
  const m = /^([^/]+)\/(.+):([^/:]+)$/.exec(ref);
  if (!m || m[1] !== REGISTRY) return undefined;
  const name = m[2].split('/').at(-1)!;
  const dir = join(IMAGES_DIR, name, m[3]);
  return existsSync(dir) && statSync(dir).isDirectory() ? dir : undefined;
}

/** Every image the lab could "pull", as full references. */
export function catalogue(): string[] {
  const out: string[] = [];
  let names: string[];
  try {
    names = readdirSync(IMAGES_DIR);
  } catch {
    return out;
  }
  for (const n of names) {
    let tags: string[];
    try {
      tags = readdirSync(join(IMAGES_DIR, n)).filter((t) => statSync(join(IMAGES_DIR, n, t)).isDirectory());
    } catch {
      continue;
    }
    for (const t of tags) out.push(`${REGISTRY}/${n === 'coredns' ? 'coredns/coredns' : n}:${t}`);
  }
  return out.sort();
}

export function imageId(ref: string): string {
  return `sha256:${createHash('sha256').update(`kes-lab-image ${ref}`).digest('hex')}`;
}

function storeFile(ref: string): string {
  return join(IMAGE_STORE_DIR, `${createHash('sha256').update(ref).digest('hex').slice(0, 32)}.json`);
}

export function storedImages(): StoredImage[] {
  let files: string[];
  try {
    files = readdirSync(IMAGE_STORE_DIR).filter((f) => f.endsWith('.json'));
  } catch {
    return [];
  }
  const out: StoredImage[] = [];
  for (const f of files) {
    try {
      out.push(JSON.parse(readFileSync(join(IMAGE_STORE_DIR, f), 'utf8')) as StoredImage);
    } catch {
      /* being written */
    }
  }
  return out.sort((a, b) => a.ref.localeCompare(b.ref));
}

/** The stored image a reference (or an image id / id prefix) names, if this host has it. */
export function findImage(image: string): StoredImage | undefined {
  const all = storedImages();
  const ref = normalizeRef(image);
  const id = image.replace(/^sha256:/, '');
  return (
    all.find((i) => i.ref === ref) ?? (id.length >= 12 ? all.find((i) => i.id.slice(7).startsWith(id)) : undefined)
  );
}

export class PullError extends Error {}

/** "Pull" an image: only catalogue images exist; anything else fails the way a pull without network does. */
export function pullImage(image: string): StoredImage {
  const ref = normalizeRef(image);
  const dir = catalogueDir(ref);
  if (!dir) {
    const host = ref.split('/')[0] === 'docker.io' ? 'registry-1.docker.io' : ref.split('/')[0];
    throw new PullError(
      `failed to pull and unpack image "${ref}": failed to resolve reference "${ref}": failed to do request: ` +
        `Head "https://${host}/v2/${ref.slice(ref.indexOf('/') + 1).replace(/:([^:]+)$/, '/manifests/$1')}": ` +
        `dial tcp: lookup ${host}: no such host (kes-lab: no network; only the lab's image catalogue can be pulled)`,
    );
  }
  const existing = findImage(ref);
  if (existing) return existing;
  let size = 0;
  for (const f of readdirSync(dir)) size += statSync(join(dir, f)).size;
  const img: StoredImage = { ref, id: imageId(ref), size: size || 321_000, pulledAt: new Date().toISOString() };
  mkdirSync(IMAGE_STORE_DIR, { recursive: true });
  writeFileSync(storeFile(ref), JSON.stringify(img));
  return img;
}

/** Record an image as present without asking (the kubelet pulled it IfNotPresent); ignores failures. */
export function ensureImage(image: string): void {
  try {
    if (!findImage(image)) pullImage(image);
  } catch {
    /* not in the catalogue: the kubelet stand-in runs a placeholder anyway */
  }
}

export function removeImage(image: string): boolean {
  const img = findImage(image);
  if (!img) return false;
  rmSync(storeFile(img.ref), { force: true });
  return true;
}
