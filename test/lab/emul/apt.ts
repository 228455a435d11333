// Package-tool stand-ins of bare lab hosts (bare.ts puts them at the real paths inside the host only):
//   apt-get, apt (update/install/remove/purge/autoremove/upgrade/clean), apt-cache (madison/policy/show),
//   apt-mark (hold/unhold/showhold/auto/manual), dpkg-query (-W/-s/-l/-L), dpkg (queries only),
//   modprobe, swapoff, sysctl.
// apt works like apt where the app depends on it:
// - `apt-get update` reads /etc/apt/sources.list and sources.list.d/*.list|*.sources. The Kubernetes
//   repository https://pkgs.k8s.io/core:/stable:/v1.36/deb/ (suite "/") needs its signed-by keyring
//   (a dearmored key in a .gpg file, or an armored one in .asc); then its package list is "fetched".
//   Another minor fails: the lab has only the Kubernetes 1.36 binaries (its cache). Debian's own
//   sources always "hit" (their lists are on the image). Unknown hosts cannot be resolved (no network).
// - `install` finds Kubernetes packages only after such an update ("E: Unable to locate package
//   kubeadm", exit 100, as apt); Debian packages are those of the lab's archive (archive.json, made by
//   bare.ts) or already installed on the image ("is already the newest version"); anything else is
//   "Unable to locate". Files come from the lab's pool; services are enabled and started like
//   Debian's maintainer scripts do (unless /usr/sbin/policy-rc.d exits 101).
// - holds (apt-mark) are kept like dpkg selections; changing a held package needs
//   --allow-change-held-packages, as with apt.
// Every call is appended to /var/log/kes-lab/tools.log (one JSON line: time, tool, args, exit code).
// State: /var/lib/kes-lab-apt/status.json (what the lab installed, holds); the image's own packages
// come from the real /var/lib/dpkg/status minus the ones bare hosts hide (archive.json "hidden").
import { spawnSync } from 'node:child_process';
import {
  appendFileSync,
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { release } from 'node:os';
import { dirname, join } from 'node:path';

export const LIB = '/usr/local/lib/kes-lab/apt';
export const ARCHIVE = `${LIB}/archive.json`;
export const STATE = '/var/lib/kes-lab-apt/status.json';
export const TOOLS_LOG = '/var/log/kes-lab/tools.log';
const LISTS = '/var/lib/apt/lists';
const DPKG_STATUS = '/var/lib/dpkg/status';
const K8S_KEY_ID = '234654DA9A296436'; // the pkgs.k8s.io signing key
const REAL_SYSCTL = '/usr/local/lib/kes-lab/sysctl.real';

export interface ArchiveFile {
  path: string;
  pool?: string; // file in the lab's pool to copy
  symlink?: string;
  mode?: number;
  conffile?: boolean; // kept on remove and when it exists already, like dpkg conffiles
}

export interface ArchivePackage {
  name: string;
  version: string;
  arch: string;
  origin: 'kubernetes' | 'debian';
  section: string;
  depends: string[];
  description: string;
  installedSizeKB: number;
  files: ArchiveFile[];
  dirs?: string[];
  /** Units the maintainer scripts enable and start. */
  services?: string[];
}

export interface Archive {
  /** "v1.36": the only pkgs.k8s.io minor the lab can serve. */
  k8sMinor: string;
  k8sVersion: string; // "1.36.3"
  debianSuite: string; // "bookworm"
  packages: ArchivePackage[];
  /** Package names the image's own dpkg database knows but a bare host must not have. */
  hidden: string[];
}

interface Installed {
  version: string;
  arch: string;
  status: 'installed' | 'config-files';
  auto: boolean;
  files: string[];
  section: string;
  description: string;
  installedSizeKB: number;
  depends: string[];
}

interface State {
  packages: Record<string, Installed>;
  holds: string[];
}

interface DbEntry {
  name: string;
  version: string;
  arch: string;
  status: 'installed' | 'config-files';
  hold: boolean;
  section: string;
  description: string;
  installedSizeKB: number;
  depends: string[];
  files: string[];
  lab: boolean;
}

// ---------------------------------------------------------------- plumbing

/** Lab-only remarks for the tools log (never printed: the app sees what a real host prints). */
const notes: string[] = [];

class Exit extends Error {
  constructor(readonly code: number) {
    super(`exit ${code}`);
  }
}
const out = (s: string): void => void process.stdout.write(s.endsWith('\n') || s === '' ? s : `${s}\n`);
const err = (s: string): void => void process.stderr.write(s.endsWith('\n') ? s : `${s}\n`);
function die(msg: string, code = 100): never {
  err(msg);
  throw new Exit(code);
}

function readJson<T>(file: string, dflt: T): T {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as T;
  } catch {
    return dflt;
  }
}

function writeJson(file: string, v: unknown): void {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(`${file}.tmp`, JSON.stringify(v, null, 2));
  renameSync(`${file}.tmp`, file);
}

function archive(): Archive {
  const a = readJson<Archive | undefined>(ARCHIVE, undefined);
  if (!a) die(`E: kes-lab: ${ARCHIVE} is missing (this stand-in belongs to a bare lab host)`);
  return a;
}

function loadState(): State {
  return readJson<State>(STATE, { packages: {}, holds: [] });
}

/** The image's own packages (the real dpkg database), minus what a bare host must not have. */
function imagePackages(hidden: Set<string>): Map<string, DbEntry> {
  const m = new Map<string, DbEntry>();
  let text: string;
  try {
    text = readFileSync(DPKG_STATUS, 'utf8');
  } catch {
    return m;
  }
  for (const stanza of text.split(/\n\n+/)) {
    const f = new Map<string, string>();
    for (const line of stanza.split('\n')) {
      if (/^\s/.test(line)) continue; // continuation lines (descriptions, conffiles)
      const i = line.indexOf(':');
      if (i > 0) f.set(line.slice(0, i), line.slice(i + 1).trim());
    }
    const name = f.get('Package');
    if (!name || hidden.has(name) || !/ installed$/.test(f.get('Status') ?? '')) continue;
    m.set(name, {
      name,
      version: f.get('Version') ?? '',
      arch: f.get('Architecture') ?? 'all',
      status: 'installed',
      hold: /^hold /.test(f.get('Status') ?? ''),
      section: f.get('Section') ?? 'misc',
      description: f.get('Description') ?? '',
      installedSizeKB: Number(f.get('Installed-Size') ?? 0),
      depends: [],
      files: [],
      lab: false,
    });
  }
  return m;
}

/** Everything dpkg knows on this host: the image's packages plus the lab-installed ones. */
function database(a: Archive, st: State): Map<string, DbEntry> {
  const db = imagePackages(new Set([...a.hidden, ...a.packages.map((p) => p.name)]));
  for (const [name, p] of Object.entries(st.packages))
    db.set(name, { name, ...p, hold: st.holds.includes(name), lab: true });
  for (const [name, e] of db) if (st.holds.includes(name)) e.hold = true;
  return db;
}

// ---------------------------------------------------------------- sources and lists

interface Source {
  file: string;
  uri: string;
  suite: string;
  components: string[];
  signedBy?: string; // a path, or "inline"
  trusted: boolean;
}

function parseOneLine(file: string, text: string): Source[] {
  const res: Source[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*$/, '').trim();
    if (!line.startsWith('deb ')) continue;
    let rest = line.slice(4).trim();
    const opts = new Map<string, string>();
    if (rest.startsWith('[')) {
      const end = rest.indexOf(']');
      for (const o of rest.slice(1, end).trim().split(/\s+/)) {
        const [k, v] = o.split('=');
        if (k) opts.set(k, v ?? '');
      }
      rest = rest.slice(end + 1).trim();
    }
    const [uri, suite, ...components] = rest.split(/\s+/);
    if (!uri || !suite) continue;
    res.push({ file, uri, suite, components, signedBy: opts.get('signed-by'), trusted: opts.get('trusted') === 'yes' });
  }
  return res;
}

function parseDeb822(file: string, text: string): Source[] {
  const res: Source[] = [];
  for (const para of text.split(/\n\s*\n/)) {
    const f = new Map<string, string>();
    let key = '';
    for (const line of para.split('\n')) {
      if (/^\s*#/.test(line)) continue;
      if (/^\s/.test(line) && key) f.set(key, `${f.get(key)}\n${line.trim()}`);
      else {
        const i = line.indexOf(':');
        if (i > 0) f.set((key = line.slice(0, i).trim().toLowerCase()), line.slice(i + 1).trim());
      }
    }
    if (!(f.get('types') ?? '').split(/\s+/).includes('deb') || f.get('enabled') === 'no') continue;
    const sb = f.get('signed-by');
    for (const uri of (f.get('uris') ?? '').split(/\s+/).filter(Boolean))
      for (const suite of (f.get('suites') ?? '').split(/\s+/).filter(Boolean))
        res.push({
          file,
          uri,
          suite,
          components: (f.get('components') ?? '').split(/\s+/).filter(Boolean),
          signedBy: sb?.includes('BEGIN PGP') ? 'inline' : sb,
          trusted: f.get('trusted') === 'yes',
        });
  }
  return res;
}

function readSources(): { sources: Source[]; notices: string[] } {
  const sources: Source[] = [];
  const notices: string[] = [];
  const read = (p: string): string => {
    try {
      return readFileSync(p, 'utf8');
    } catch {
      return '';
    }
  };
  if (existsSync('/etc/apt/sources.list'))
    sources.push(...parseOneLine('/etc/apt/sources.list', read('/etc/apt/sources.list')));
  let files: string[] = [];
  try {
    files = readdirSync('/etc/apt/sources.list.d').sort();
  } catch {
    /* none */
  }
  for (const f of files) {
    const p = `/etc/apt/sources.list.d/${f}`;
    if (f.endsWith('.list')) sources.push(...parseOneLine(p, read(p)));
    else if (f.endsWith('.sources')) sources.push(...parseDeb822(p, read(p)));
    else
      notices.push(
        `N: Ignoring file '${f}' in directory '/etc/apt/sources.list.d/' as it has an invalid filename extension`,
      );
  }
  return { sources, notices };
}

type RepoKind =
  | { kind: 'k8s'; minor: string }
  | { kind: 'k8s-other'; what: string }
  | { kind: 'legacy-k8s' }
  | { kind: 'debian' }
  | { kind: 'unreachable'; host: string };

function classify(s: Source): RepoKind {
  const m = /^https?:\/\/pkgs\.k8s\.io\/core:\/stable:\/(v\d+\.\d+)\/deb\/?$/.exec(s.uri);
  if (m) return { kind: 'k8s', minor: m[1] };
  if (/^https?:\/\/pkgs\.k8s\.io\//.test(s.uri)) return { kind: 'k8s-other', what: s.uri };
  if (/^https?:\/\/(apt\.kubernetes\.io|packages\.cloud\.google\.com\/apt)/.test(s.uri)) return { kind: 'legacy-k8s' };
  const host = /^[a-z+]+:\/\/([^/:]+)/.exec(s.uri)?.[1] ?? s.uri;
  if (/(^|\.)debian\.org$/.test(host) || /^(deb|security|ftp\.[a-z]+)\.debian\.org$/.test(host))
    return { kind: 'debian' };
  return { kind: 'unreachable', host };
}

function k8sListFile(minor: string): string {
  return join(LISTS, `pkgs.k8s.io_core:_stable:_${minor}_deb_Packages`);
}

/** The Kubernetes minor whose package list is present (after a successful update), if any. */
function k8sListMinor(a: Archive): string | undefined {
  return existsSync(k8sListFile(a.k8sMinor)) ? a.k8sMinor : undefined;
}

function repoLabel(s: Source): string {
  return s.suite === '/' ? `${s.uri.replace(/\/$/, '')} ` : `${s.uri.replace(/\/$/, '')} ${s.suite}`;
}

/** Is the repository's signature verifiable? Returns the warning lines otherwise. */
function keyProblem(s: Source): string[] | undefined {
  if (s.trusted || s.signedBy === 'inline') return undefined;
  const path = s.signedBy;
  const nokey = [
    `  The following signatures couldn't be verified because the public key is not available: NO_PUBKEY ${K8S_KEY_ID}`,
  ];
  if (!path) return nokey;
  let data: Buffer;
  try {
    data = readFileSync(path);
  } catch {
    return [
      `  The key(s) in the keyring ${path} are ignored as the file is not readable by user '_apt' executing apt-key.`,
      ...nokey,
    ];
  }
  const armored = data.subarray(0, 40).toString('latin1').includes('-----BEGIN PGP');
  if (!data.length || (path.endsWith('.gpg') && armored) || (path.endsWith('.asc') && !armored))
    return [`  The key(s) in the keyring ${path} are ignored as the file has an unsupported filetype.`, ...nokey];
  return undefined;
}

function update(a: Archive): void {
  const { sources, notices } = readSources();
  let n = 0;
  const warnings: string[] = [];
  const errors: string[] = [];
  const keepLists = new Set<string>();
  let fetched = 0;
  for (const s of sources) {
    n++;
    const c = classify(s);
    const label = repoLabel(s);
    if (c.kind === 'debian') {
      out(`Hit:${n} ${label} InRelease`);
      continue;
    }
    if (c.kind === 'unreachable') {
      out(`Ign:${n} ${label} InRelease\nErr:${n} ${label} InRelease\n  Temporary failure resolving '${c.host}'`);
      warnings.push(
        `W: Failed to fetch ${s.uri.replace(/\/$/, '')}/dists/${s.suite}/InRelease  Temporary failure resolving '${c.host}'`,
      );
      continue;
    }
    if (c.kind === 'legacy-k8s' || c.kind === 'k8s-other') {
      out(`Ign:${n} ${label} InRelease\nErr:${n} ${label} Release\n  404  Not Found`);
      errors.push(`E: The repository '${label} Release' does not have a Release file.`);
      continue;
    }
    if (c.minor !== a.k8sMinor) {
      out(
        `Err:${n} ${label} InRelease\n  kes-lab: the lab's package cache has Kubernetes ${a.k8sVersion} only ` +
          `(the binaries in /var/cache/kes-lab); pkgs.k8s.io ${c.minor} cannot be served here`,
      );
      errors.push(`E: The repository '${label} InRelease' is not available in the test lab (only ${a.k8sMinor}).`);
      continue;
    }
    const problem = keyProblem(s);
    if (problem) {
      out(`Get:${n} ${label} InRelease [1,186 B]\nErr:${n} ${label} InRelease\n${problem.join('\n')}`);
      warnings.push(
        `W: GPG error: ${label} InRelease: The following signatures couldn't be verified because the public key is not available: NO_PUBKEY ${K8S_KEY_ID}`,
      );
      errors.push(
        `E: The repository '${label} InRelease' is not signed.`,
        "N: Updating from such a repository can't be done securely, and is therefore disabled by default.",
        'N: See apt-secure(8) manpage for repository creation and user configuration details.',
      );
      continue;
    }
    const pkgs = a.packages.filter((p) => p.origin === 'kubernetes');
    const text = pkgs
      .map(
        (p) =>
          `Package: ${p.name}\nVersion: ${p.version}\nArchitecture: ${p.arch}\nSection: ${p.section}\n` +
          `${p.depends.length ? `Depends: ${p.depends.join(', ')}\n` : ''}Installed-Size: ${p.installedSizeKB}\nDescription: ${p.description}\n`,
      )
      .join('\n');
    out(`Get:${n} ${label} InRelease [1,186 B]`);
    out(`Get:${++n} ${label} Packages [${text.length.toLocaleString('en-US')} B]`);
    fetched += 1186 + text.length;
    mkdirSync(LISTS, { recursive: true });
    writeFileSync(k8sListFile(c.minor), text);
    keepLists.add(k8sListFile(c.minor));
  }
  // lists of repositories no longer configured go away
  try {
    for (const f of readdirSync(LISTS))
      if (f.startsWith('pkgs.k8s.io_') && !keepLists.has(join(LISTS, f))) rmSync(join(LISTS, f), { force: true });
  } catch {
    /* no lists dir */
  }
  out(fetched ? `Fetched ${fetched.toLocaleString('en-US')} B in 0s (${fetched.toLocaleString('en-US')} B/s)` : '');
  out('Reading package lists...');
  for (const l of notices) out(l);
  for (const w of warnings) err(w);
  if (warnings.some((w) => w.startsWith('W: Failed to fetch')))
    err('W: Some index files failed to download. They have been ignored, or old ones used instead.');
  if (errors.length) die(errors.join('\n'));
}

// ---------------------------------------------------------------- install / remove

interface Opts {
  yes: boolean;
  quiet: number;
  allowHeld: boolean;
  reinstall: boolean;
  args: string[];
}

function parseOpts(argv: string[]): Opts {
  const o: Opts = { yes: false, quiet: 0, allowHeld: false, reinstall: false, args: [] };
  for (let i = 0; i < argv.length; i++) {
    const x = argv[i];
    if (x === '-y' || x === '--yes' || x === '--assume-yes') o.yes = true;
    else if (x === '-q' || x === '--quiet') o.quiet++;
    else if (x === '-qq') o.quiet += 2;
    else if (x === '-o' || x === '-c' || x === '-t') i++;
    else if (x === '--allow-change-held-packages') o.allowHeld = true;
    else if (x === '--reinstall') o.reinstall = true;
    else if (/^-[a-z]*y[a-z]*$/.test(x)) o.yes = true;
    else if (x.startsWith('-')) continue;
    else o.args.push(x);
  }
  return o;
}

function candidate(a: Archive, name: string): ArchivePackage | undefined {
  const p = a.packages.find((x) => x.name === name);
  if (!p) return undefined;
  if (p.origin === 'kubernetes' && k8sListMinor(a) !== a.k8sMinor) return undefined;
  return p;
}

function policyRcdDenies(): boolean {
  if (!existsSync('/usr/sbin/policy-rc.d')) return false;
  return spawnSync('/usr/sbin/policy-rc.d', ['x', 'start'], { stdio: 'ignore' }).status === 101;
}

function systemctl(args: string[]): { code: number; output: string } {
  const r = spawnSync('systemctl', args, { encoding: 'utf8' });
  return { code: r.status ?? 1, output: `${r.stdout ?? ''}${r.stderr ?? ''}` };
}

function installFiles(p: ArchivePackage): string[] {
  const files: string[] = [];
  for (const d of p.dirs ?? []) mkdirSync(d, { recursive: true });
  for (const f of p.files) {
    mkdirSync(dirname(f.path), { recursive: true });
    files.push(f.path);
    if (f.conffile && existsSync(f.path)) continue;
    rmSync(f.path, { force: true });
    if (f.symlink !== undefined) symlinkSync(f.symlink, f.path);
    else {
      copyFileSync(f.pool!, `${f.path}.dpkg-new`);
      chmodSync(`${f.path}.dpkg-new`, f.mode ?? 0o644);
      renameSync(`${f.path}.dpkg-new`, f.path);
    }
  }
  return files;
}

/** Dependencies before the packages that need them (dpkg configures in that order). */
function configureOrder(pkgs: ArchivePackage[]): ArchivePackage[] {
  const done: ArchivePackage[] = [];
  const visit = (p: ArchivePackage): void => {
    if (done.includes(p)) return;
    for (const d of p.depends) {
      const dep = pkgs.find((x) => x.name === d.split(/[\s(]/)[0]);
      if (dep && dep !== p) visit(dep);
    }
    if (!done.includes(p)) done.push(p);
  };
  pkgs.forEach(visit);
  return done;
}

function install(a: Archive, o: Opts): void {
  out('Reading package lists...\nBuilding dependency tree...\nReading state information...');
  const st = loadState();
  const db = database(a, st);
  const errors: string[] = [];
  const want: ArchivePackage[] = [];
  const already: string[] = [];
  for (const arg of o.args) {
    const [name, ver] = arg.split('=');
    const c = candidate(a, name);
    const have = db.get(name);
    if (!c) {
      if (have?.status === 'installed' && !have.lab && (!ver || ver === have.version)) {
        already.push(`${name} is already the newest version (${have.version}).`);
        continue;
      }
      errors.push(`E: Unable to locate package ${name}`);
      continue;
    }
    if (ver && ver !== c.version) {
      errors.push(`E: Version '${ver}' for '${name}' was not found`);
      continue;
    }
    if (have?.status === 'installed' && have.version === c.version && !o.reinstall) {
      already.push(`${name} is already the newest version (${c.version}).`);
      if (have.lab && st.packages[name].auto) st.packages[name].auto = false;
      continue;
    }
    if (have?.hold && have.status === 'installed' && !o.allowHeld) {
      errors.push('E: Held packages were changed and -y was used without --allow-change-held-packages.');
      continue;
    }
    want.push(c);
  }
  if (errors.length) die([...new Set(errors)].join('\n'));
  // dependencies (one level is all the archive needs, applied until nothing changes)
  const auto: ArchivePackage[] = [];
  for (let changed = true; changed;) {
    changed = false;
    for (const p of [...want, ...auto])
      for (const d of p.depends) {
        const dn = d.split(/[\s(]/)[0];
        if (db.get(dn)?.status === 'installed' || [...want, ...auto].some((x) => x.name === dn)) continue;
        const c = candidate(a, dn);
        if (!c)
          die(
            `Some packages could not be installed.\nThe following packages have unmet dependencies:\n ${p.name} : Depends: ${d} but it is not installable\nE: Unable to correct problems, you have held broken packages.`,
          );
        auto.push(c);
        changed = true;
      }
  }
  for (const l of already) out(l);
  const all = [...auto, ...want].sort((x, y) => x.name.localeCompare(y.name));
  const order = configureOrder(all);
  if (!all.length) {
    out('0 upgraded, 0 newly installed, 0 to remove and 0 not upgraded.');
    return;
  }
  if (auto.length)
    out(
      `The following additional packages will be installed:\n  ${auto
        .map((p) => p.name)
        .sort()
        .join(' ')}`,
    );
  out(`The following NEW packages will be installed:\n  ${all.map((p) => p.name).join(' ')}`);
  out(`0 upgraded, ${all.length} newly installed, 0 to remove and 0 not upgraded.`);
  const kb = all.reduce((s, p) => s + p.installedSizeKB, 0);
  out(`After this operation, ${(kb / 1024).toFixed(1)} MB of additional disk space will be used.`);
  if (auto.length && !o.yes) {
    out('Do you want to continue? [Y/n] Abort.');
    throw new Exit(1);
  }
  const debianUri = `http://deb.debian.org/debian ${a.debianSuite}/main`;
  all.forEach((p, i) =>
    out(
      `Get:${i + 1} ${p.origin === 'kubernetes' ? `https://pkgs.k8s.io/core:/stable:/${a.k8sMinor}/deb ` : debianUri} ${p.arch} ${p.name} ${p.arch} ${p.version}`,
    ),
  );
  const failed: string[] = [];
  const noStart = policyRcdDenies();
  for (const p of order) {
    out(`Selecting previously unselected package ${p.name}.`);
    out(`Preparing to unpack .../${p.name}_${p.version}_${p.arch}.deb ...\nUnpacking ${p.name} (${p.version}) ...`);
    const files = installFiles(p);
    st.packages[p.name] = {
      version: p.version,
      arch: p.arch,
      status: 'installed',
      auto: auto.includes(p),
      files,
      section: p.section,
      description: p.description,
      installedSizeKB: p.installedSizeKB,
      depends: p.depends,
    };
    writeJson(STATE, st);
  }
  for (const p of order) {
    out(`Setting up ${p.name} (${p.version}) ...`);
    if (!p.services?.length) continue;
    systemctl(['daemon-reload']);
    for (const u of p.services) {
      const en = systemctl(['enable', u]);
      out(en.output.trim());
      if (noStart) {
        out(`invoke-rc.d: policy-rc.d denied execution of start.`);
        continue;
      }
      const r = systemctl(['start', u]);
      if (r.code !== 0) {
        err(r.output.trim());
        failed.push(p.name);
      }
    }
  }
  if (failed.length) {
    for (const f of failed)
      err(
        `dpkg: error processing package ${f} (--configure):\n installed ${f} package post-installation script subprocess returned error exit status 1`,
      );
    die(
      `Errors were encountered while processing:\n ${failed.join('\n ')}\nE: Sub-process /usr/bin/dpkg returned an error code (1)`,
    );
  }
}

function remove(a: Archive, o: Opts, purge: boolean): void {
  out('Reading package lists...\nBuilding dependency tree...\nReading state information...');
  const st = loadState();
  const db = database(a, st);
  const gone: string[] = [];
  for (const name of o.args) {
    const e = db.get(name);
    if (!e || (e.status === 'config-files' && !purge)) {
      out(`Package '${name}' is not installed, so not removed`);
      continue;
    }
    if (!e.lab) die(`E: kes-lab: removing ${name} (a package of the lab machine's image) is not supported`);
    if (e.hold && !o.allowHeld)
      die('E: Held packages were changed and -y was used without --allow-change-held-packages.');
    gone.push(name);
  }
  if (!gone.length) {
    out('0 upgraded, 0 newly installed, 0 to remove and 0 not upgraded.');
    return;
  }
  out(`The following packages will be REMOVED:\n  ${gone.map((n) => `${n}${purge ? '*' : ''}`).join(' ')}`);
  out(`0 upgraded, 0 newly installed, ${gone.length} to remove and 0 not upgraded.`);
  for (const name of gone) {
    const p = a.packages.find((x) => x.name === name);
    const inst = st.packages[name];
    out(`Removing ${name} (${inst.version}) ...`);
    for (const u of p?.services ?? []) {
      systemctl(['stop', u]);
      if (purge) systemctl(['disable', u]);
    }
    const conf = new Set((p?.files ?? []).filter((f) => f.conffile).map((f) => f.path));
    for (const f of inst.files) if (purge || !conf.has(f)) rmSync(f, { force: true });
    if (purge) {
      out(`Purging configuration files for ${name} (${inst.version}) ...`);
      delete st.packages[name];
      st.holds = st.holds.filter((h) => h !== name);
    } else {
      inst.status = 'config-files';
      inst.files = inst.files.filter((f) => conf.has(f));
    }
  }
  writeJson(STATE, st);
}

function aptGet(argv: string[], tool: string): void {
  if (tool === 'apt') err('\nWARNING: apt does not have a stable CLI interface. Use with caution in scripts.\n');
  const o = parseOpts(argv);
  const cmd = o.args.shift();
  const a = archive();
  switch (cmd) {
    case 'update':
      return update(a);
    case 'install':
      if (!o.args.length) return out('0 upgraded, 0 newly installed, 0 to remove and 0 not upgraded.');
      return install(a, o);
    case 'remove':
      return remove(a, o, false);
    case 'purge':
      return remove(a, o, true);
    case 'upgrade':
    case 'dist-upgrade':
    case 'full-upgrade':
    case 'autoremove':
      out('Reading package lists...\nBuilding dependency tree...\nReading state information...');
      return out('0 upgraded, 0 newly installed, 0 to remove and 0 not upgraded.');
    case 'clean':
    case 'autoclean':
      return;
    case undefined:
      return die('E: Invalid operation (none given)');
    default:
      return die(`E: Invalid operation ${cmd}`);
  }
}

function aptCache(argv: string[]): void {
  const o = parseOpts(argv);
  const cmd = o.args.shift();
  const a = archive();
  const db = database(a, loadState());
  const uri = (p: ArchivePackage): string =>
    p.origin === 'kubernetes'
      ? `https://pkgs.k8s.io/core:/stable:/${a.k8sMinor}/deb  Packages`
      : `http://deb.debian.org/debian ${a.debianSuite}/main ${p.arch} Packages`;
  for (const name of o.args) {
    const c = candidate(a, name);
    const have = db.get(name);
    if (cmd === 'madison') {
      if (c) out(`${name.padStart(10)} | ${c.version} | ${uri(c)}`);
      else if (have)
        out(
          `${name.padStart(10)} | ${have.version} | http://deb.debian.org/debian ${a.debianSuite}/main ${have.arch} Packages`,
        );
      else err(`N: Unable to locate package ${name}`);
    } else if (cmd === 'policy') {
      if (!c && !have) {
        err(`N: Unable to locate package ${name}`);
        continue;
      }
      const inst = have?.status === 'installed' ? have.version : '(none)';
      const cand = c?.version ?? have?.version ?? '(none)';
      out(`${name}:\n  Installed: ${inst}\n  Candidate: ${cand}\n  Version table:`);
      out(
        `${inst === cand ? ' *** ' : '     '}${cand} 500\n        500 ${c ? uri(c) : `http://deb.debian.org/debian ${a.debianSuite}/main amd64 Packages`}`,
      );
      if (inst === cand) out('        100 /var/lib/dpkg/status');
    } else if (cmd === 'show') {
      if (!c && !have) die(`E: No packages found`);
      const p = c ?? have!;
      out(
        `Package: ${name}\nVersion: ${p.version}\nArchitecture: ${p.arch}\nSection: ${p.section}\nInstalled-Size: ${p.installedSizeKB}\n` +
          `${p.depends.length ? `Depends: ${p.depends.join(', ')}\n` : ''}Description: ${p.description}\n`,
      );
    } else die(`E: kes-lab apt-cache stand-in: unsupported command ${cmd ?? '(none)'} (madison, policy, show)`);
  }
}

function aptMark(argv: string[]): void {
  const [cmd, ...names] = argv.filter((x) => !x.startsWith('-'));
  const a = archive();
  const st = loadState();
  const db = database(a, st);
  switch (cmd) {
    case 'hold':
    case 'unhold':
      for (const n of names) {
        if (!db.has(n) && !candidate(a, n)) die(`E: Unable to locate package ${n}`);
        const held = st.holds.includes(n);
        if (cmd === 'hold') {
          if (held) out(`${n} was already set on hold.`);
          else {
            st.holds.push(n);
            out(`${n} set on hold.`);
          }
        } else if (!held) out(`${n} was already not on hold.`);
        else {
          st.holds = st.holds.filter((h) => h !== n);
          out(`Canceled hold on ${n}.`);
        }
      }
      writeJson(STATE, st);
      return;
    case 'showhold':
      for (const n of [...st.holds].sort()) if (!names.length || names.includes(n)) out(n);
      return;
    case 'auto':
    case 'manual':
      for (const n of names) {
        const p = st.packages[n];
        if (p) p.auto = cmd === 'auto';
        out(`${n} set to ${cmd === 'auto' ? 'automatically' : 'manually'} installed.`);
      }
      writeJson(STATE, st);
      return;
    case 'showmanual':
    case 'showauto':
      for (const [n, p] of Object.entries(st.packages))
        if (p.status === 'installed' && p.auto === (cmd === 'showauto')) out(n);
      return;
    default:
      die(`E: kes-lab apt-mark stand-in: unsupported command ${cmd ?? '(none)'}`);
  }
}

// ---------------------------------------------------------------- dpkg-query / dpkg

function statusWords(e: DbEntry): string {
  return e.status === 'installed' ? `${e.hold ? 'hold' : 'install'} ok installed` : 'deinstall ok config-files';
}

function format(fmt: string, e: DbEntry): string {
  return fmt
    .replace(/\\n/g, '\n')
    .replace(/\\t/g, '\t')
    .replace(/\$\{([^};]+)(;-?\d+)?\}/g, (_, k: string, w?: string) => {
      const v =
        k === 'Package' || k === 'binary:Package'
          ? e.name
          : k === 'Version'
            ? e.version
            : k === 'Status'
              ? statusWords(e)
              : k === 'db:Status-Abbrev'
                ? `${e.hold ? 'h' : e.status === 'installed' ? 'i' : 'r'}${e.status === 'installed' ? 'i' : 'c'} `
                : k === 'db:Status-Status'
                  ? e.status
                  : k === 'db:Status-Want'
                    ? e.hold
                      ? 'hold'
                      : e.status === 'installed'
                        ? 'install'
                        : 'deinstall'
                    : k === 'Architecture'
                      ? e.arch
                      : k === 'Installed-Size'
                        ? String(e.installedSizeKB)
                        : k === 'Section'
                          ? e.section
                          : '';
      if (!w) return v;
      const n = Number(w.slice(1));
      return n < 0 ? v.padEnd(-n) : v.padStart(n);
    });
}

function globMatch(pattern: string, name: string): boolean {
  const re = new RegExp(
    `^${pattern
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.')}$`,
  );
  return re.test(name.replace(/:[a-z0-9]+$/, ''));
}

function dpkgQuery(argv: string[], tool: string): void {
  const a = archive();
  const db = database(a, loadState());
  let mode = '';
  let fmt = '${binary:Package}\t${Version}\n';
  const pkgs: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const x = argv[i];
    if (x === '-W' || x === '--show') mode = 'W';
    else if (x === '-s' || x === '--status') mode = 's';
    else if (x === '-l' || x === '--list') mode = 'l';
    else if (x === '-L' || x === '--listfiles') mode = 'L';
    else if (x === '-f' || x === '--showformat') fmt = argv[++i] ?? '';
    else if (x.startsWith('--showformat=')) fmt = x.slice(13);
    else if (x.startsWith('-f') && x.length > 2) fmt = x.slice(2).replace(/^=/, '');
    else if (x === '--print-architecture' && tool === 'dpkg') mode = 'arch';
    else if (x === '--get-selections' && tool === 'dpkg') mode = 'sel';
    else if (x.startsWith('-') && tool === 'dpkg')
      die(
        `dpkg: kes-lab stand-in: only queries (-s, -l, -L, --print-architecture, --get-selections) work on lab hosts; install packages with apt-get`,
        2,
      );
    else if (!x.startsWith('-')) pkgs.push(x);
  }
  let rc = 0;
  const entries = [...db.values()].sort((x, y) => x.name.localeCompare(y.name));
  const matching = (p: string): DbEntry[] => entries.filter((e) => globMatch(p, e.name));
  switch (mode) {
    case 'arch':
      return out(process.arch === 'arm64' ? 'arm64' : 'amd64');
    case 'sel':
      for (const e of entries)
        out(`${e.name}\t\t\t\t\t\t${e.hold ? 'hold' : e.status === 'installed' ? 'install' : 'deinstall'}`);
      return;
    case 'W':
      for (const e of pkgs.length ? [] : entries.filter((x) => x.status === 'installed'))
        out(format(fmt, e).replace(/\n$/, '\n'));
      for (const p of pkgs) {
        const m = matching(p);
        if (!m.length) {
          err(`dpkg-query: no packages found matching ${p}`);
          rc = 1;
        }
        for (const e of m) process.stdout.write(format(fmt, e));
      }
      break;
    case 's':
      if (!pkgs.length) die(`${tool}: error: --status needs at least one package name argument`, 2);
      pkgs.forEach((p, i) => {
        const e = db.get(p);
        if (!e) {
          err(
            `dpkg-query: package '${p}' is not installed and no information is available\nUse dpkg --info (= dpkg-deb --info) to examine archive files.`,
          );
          rc = 1;
          return;
        }
        out(
          `${i ? '\n' : ''}Package: ${e.name}\nStatus: ${statusWords(e)}\nPriority: optional\nSection: ${e.section}\nInstalled-Size: ${e.installedSizeKB}\n` +
            `Architecture: ${e.arch}\nVersion: ${e.version}\n${e.depends.length ? `Depends: ${e.depends.join(', ')}\n` : ''}Description: ${e.description}`,
        );
      });
      break;
    case 'l': {
      const rows = pkgs.length
        ? pkgs.flatMap((p) => {
            const m = matching(p);
            if (!m.length) {
              err(`dpkg-query: no packages found matching ${p}`);
              rc = 1;
            }
            return m;
          })
        : entries;
      if (rows.length) {
        out(
          'Desired=Unknown/Install/Remove/Purge/Hold\n| Status=Not/Inst/Conf-files/Unpacked/halF-conf/Half-inst/trig-aWait/Trig-pend\n|/ Err?=(none)/Reinst-required (Status,Err: uppercase=bad)\n||/ Name           Version      Architecture Description\n+++-==============-============-============-=================================',
        );
        for (const e of rows)
          out(
            `${format('${db:Status-Abbrev}', e)}${e.name.padEnd(14)} ${e.version.padEnd(12)} ${e.arch.padEnd(12)} ${e.description}`,
          );
      }
      break;
    }
    case 'L':
      for (const p of pkgs) {
        const e = db.get(p);
        if (!e) {
          err(`dpkg-query: package '${p}' is not installed`);
          rc = 1;
          continue;
        }
        out(e.lab ? e.files.join('\n') : `(kes-lab: file list of ${p} not tracked)`);
      }
      break;
    default:
      die(`${tool}: kes-lab stand-in: need an action option (-W, -s, -l, -L)`, 2);
  }
  if (rc) throw new Exit(rc);
}

// ---------------------------------------------------------------- modprobe / swapoff / sysctl

/** Built-in kernel features, by the module name that would provide them (this kernel has no modules). */
const BUILTIN_EVIDENCE: Record<string, string> = {
  overlay: '/proc/filesystems:overlay',
  br_netfilter: '/proc/sys/net/bridge',
  bridge: '/sys/class/net/lo/../../virtual/net',
  nf_conntrack: '/proc/sys/net/netfilter/nf_conntrack_max',
  configs: '/proc/config.gz',
  ip_tables: '/proc/net/ip_tables_names',
  ip_vs: '/proc/net/ip_vs',
  veth: '/proc/sys/net/ipv4',
};

function moduleKnown(name: string): boolean {
  const n = name.replace(/-/g, '_');
  const dir = `/lib/modules/${release()}`;
  for (const f of ['modules.dep', 'modules.builtin']) {
    try {
      const text = readFileSync(join(dir, f), 'utf8');
      if (new RegExp(`(^|/)${n.replace(/_/g, '[-_]')}\\.ko(\\.[a-z]+)?(:|$)`, 'm').test(text)) return true;
    } catch {
      /* no such file */
    }
  }
  const ev = BUILTIN_EVIDENCE[n];
  if (!ev) return false;
  const [path, word] = ev.split(':');
  try {
    return word ? readFileSync(path, 'utf8').split(/\s+/).includes(word) : existsSync(path);
  } catch {
    return false;
  }
}

function modprobe(argv: string[]): void {
  let quiet = false;
  let remove = false;
  let all = false;
  const mods: string[] = [];
  for (const x of argv) {
    if (x === '-q' || x === '--quiet') quiet = true;
    else if (x === '-r' || x === '--remove') remove = true;
    else if (x === '-a' || x === '--all') all = true;
    else if (/^-[a-zA-Z]+$/.test(x)) {
      if (x.includes('q')) quiet = true;
      if (x.includes('r')) remove = true;
      if (x.includes('a')) all = true;
    } else if (!x.startsWith('-')) mods.push(x);
  }
  if (!mods.length) die('modprobe: ERROR: missing module name.', 1);
  for (const m of all ? mods : mods.slice(0, 1)) {
    if (!moduleKnown(m)) {
      if (!quiet) err(`modprobe: FATAL: Module ${m} not found in directory /lib/modules/${release()}`);
      throw new Exit(1);
    }
    // never touches the kernel (it is the machine's, shared by every lab host): only recorded
    mkdirSync('/run/kes-lab', { recursive: true });
    appendFileSync('/run/kes-lab/modules', `${remove ? '-' : '+'}${m.replace(/-/g, '_')}\n`);
  }
}

function swapoff(argv: string[]): void {
  if (!argv.includes('-a') && !argv.includes('--all')) {
    const dev = argv.find((x) => !x.startsWith('-'));
    if (!dev) die("swapoff: bad usage\nTry 'swapoff --help' for more information.", 1);
    die(`swapoff: ${dev}: swapoff failed: Invalid argument`, 255);
  }
  let swaps: string[] = [];
  try {
    swaps = readFileSync('/proc/swaps', 'utf8').trim().split('\n').slice(1).filter(Boolean);
  } catch {
    /* none */
  }
  // swap is the machine's (shared by every lab host): never turned off from inside a host
  if (swaps.length)
    notes.push(`swapoff: the machine's swap (${swaps.length} device(s)) is not turned off from a lab host`);
}

function sysctlPath(key: string): string {
  return `/proc/sys/${key.replace(/\./g, '/')}`;
}

/** Set one key: net.* is per network namespace (really written); other keys are the machine's. */
function sysctlSet(key: string, value: string, quiet: boolean): boolean {
  const v = value.trim().replace(/\s+/g, '\t');
  if (key.startsWith('net.')) {
    try {
      writeFileSync(sysctlPath(key), `${value.trim()}\n`);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      err(
        code === 'ENOENT'
          ? `sysctl: cannot stat ${sysctlPath(key)}: No such file or directory`
          : `sysctl: setting key "${key}": ${(e as Error).message}`,
      );
      return false;
    }
    if (!quiet) out(`${key} = ${value.trim()}`);
    return true;
  }
  let cur: string;
  try {
    cur = readFileSync(sysctlPath(key), 'utf8').trim().replace(/\s+/g, '\t');
  } catch {
    err(`sysctl: cannot stat ${sysctlPath(key)}: No such file or directory`);
    return false;
  }
  if (cur !== v) {
    // machine-wide keys are shared by every lab host (and the machine): never written from a host.
    // A real host would take the value; the lab answers as if it had, and notes it in the tools log.
    notes.push(`sysctl ${key}: machine-wide, not changed (asked ${value.trim()}, machine has ${cur})`);
  }
  if (!quiet) out(`${key} = ${value.trim()}`);
  return true;
}

function sysctlFile(path: string, quiet: boolean): boolean {
  let ok = true;
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    err(`sysctl: cannot open "${path}": No such file or directory`);
    return false;
  }
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith(';')) continue;
    const i = line.indexOf('=');
    if (i < 0) continue;
    let key = line.slice(0, i).trim();
    const ignoreErr = key.startsWith('-');
    if (ignoreErr) key = key.slice(1);
    if (!sysctlSet(key.replace(/\//g, '.'), line.slice(i + 1), quiet) && !ignoreErr) ok = false;
  }
  return ok;
}

function sysctl(argv: string[]): void {
  const quiet = argv.includes('-q') || argv.includes('--quiet');
  const writeArgs = argv.filter((x) => !x.startsWith('-') && x.includes('='));
  if (argv.includes('--system')) {
    const dirs = ['/etc/sysctl.d', '/run/sysctl.d', '/usr/local/lib/sysctl.d', '/usr/lib/sysctl.d', '/lib/sysctl.d'];
    const byName = new Map<string, string>();
    for (const d of [...dirs].reverse()) {
      try {
        for (const f of readdirSync(d)) if (f.endsWith('.conf')) byName.set(f, join(d, f));
      } catch {
        /* missing dir */
      }
    }
    // /lib is /usr/lib on merged-/usr systems: one entry per real file
    let ok = true;
    for (const f of [...byName.keys()].sort()) {
      out(`* Applying ${byName.get(f)} ...`);
      if (!sysctlFile(byName.get(f)!, quiet)) ok = false;
    }
    if (existsSync('/etc/sysctl.conf')) {
      out('* Applying /etc/sysctl.conf ...');
      if (!sysctlFile('/etc/sysctl.conf', quiet)) ok = false;
    }
    if (!ok) throw new Exit(1);
    return;
  }
  const pi = argv.findIndex((x) => x === '-p' || x === '--load' || x.startsWith('--load=') || x.startsWith('-p'));
  if (pi >= 0) {
    const x = argv[pi];
    const files = x.includes('=')
      ? [x.slice(x.indexOf('=') + 1)]
      : x.length > 2 && x.startsWith('-p') && !x.startsWith('--')
        ? [x.slice(2)]
        : argv.slice(pi + 1).filter((y) => !y.startsWith('-'));
    let ok = true;
    for (const f of files.length ? files : ['/etc/sysctl.conf']) if (!sysctlFile(f, quiet)) ok = false;
    if (!ok) throw new Exit(1);
    return;
  }
  if (writeArgs.length) {
    let ok = true;
    for (const w of writeArgs) {
      const i = w.indexOf('=');
      if (!sysctlSet(w.slice(0, i).trim(), w.slice(i + 1), quiet)) ok = false;
    }
    if (!ok) throw new Exit(1);
    return;
  }
  // reads: the real sysctl
  const r = spawnSync(REAL_SYSCTL, argv, { stdio: 'inherit' });
  if (r.status) throw new Exit(r.status);
}

// ---------------------------------------------------------------- entry

export async function main(): Promise<void> {
  const tool = process.argv[2] ?? '';
  const argv = process.argv.slice(3);
  let code = 0;
  try {
    switch (tool) {
      case 'apt-get':
      case 'apt':
        aptGet(argv, tool);
        break;
      case 'apt-cache':
        aptCache(argv);
        break;
      case 'apt-mark':
        aptMark(argv);
        break;
      case 'dpkg-query':
      case 'dpkg':
        dpkgQuery(argv, tool);
        break;
      case 'modprobe':
        modprobe(argv);
        break;
      case 'swapoff':
        swapoff(argv);
        break;
      case 'sysctl':
        sysctl(argv);
        break;
      default:
        err(`kes-lab package tools: unknown tool ${tool}`);
        code = 2;
    }
  } catch (e) {
    if (e instanceof Exit) code = e.code;
    else {
      err(`${tool}: kes-lab stand-in failed: ${(e as Error).stack ?? String(e)}`);
      code = 1;
    }
  }
  try {
    mkdirSync(dirname(TOOLS_LOG), { recursive: true });
    appendFileSync(
      TOOLS_LOG,
      `${JSON.stringify({ time: new Date().toISOString(), tool, args: argv, exit: code, ...(notes.length ? { notes } : {}) })}\n`,
    );
  } catch {
    /* a full disk must not change the tool's answer */
  }
  process.exitCode = code;
}
