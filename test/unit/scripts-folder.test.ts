// App upgrades and the user-editable scripts folder: copies the user never touched follow the
// shipped version; copies the user changed are kept and reported with the diff to the new
// version; "take the new version" replaces them and records it, so the next upgrade updates them.
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync, existsSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SHIPPED_DIR, syncScriptsFolder } from '../../src/main/scripts/folder';
import { ScriptLibrary } from '../../src/main/remote/scripts';

let root: string;
let shipped: string;
let data: string;
const user = (name: string): string => join(data, 'scripts', name);
const ship = (files: Record<string, string>): void => {
  rmSync(shipped, { recursive: true, force: true });
  mkdirSync(shipped, { recursive: true });
  for (const [n, t] of Object.entries(files)) writeFileSync(join(shipped, n), t);
};

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'kes-scripts-'));
  shipped = join(root, 'resources');
  data = join(root, 'data');
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

describe('scripts folder across app upgrades', () => {
  it('first start: copies every shipped script, executable, and records the version it came from', async () => {
    ship({ 'a.sh': 'echo a1\n', 'README.md': '# r\n' });
    const r = await syncScriptsFolder(shipped, data);
    expect(r.added).toEqual(['README.md', 'a.sh']);
    expect(readFileSync(user('a.sh'), 'utf8')).toBe('echo a1\n');
    expect(statSync(user('a.sh')).mode & 0o777).toBe(0o755);
    expect(readFileSync(join(data, 'scripts', SHIPPED_DIR, 'a.sh'), 'utf8')).toBe('echo a1\n');
  });

  it('upgrade: an untouched copy takes the new version; a changed one is kept and reported with its diff', async () => {
    ship({ 'a.sh': 'echo a1\n', 'b.sh': 'echo b1\n', 'c.sh': 'echo c1\n' });
    await syncScriptsFolder(shipped, data);
    writeFileSync(user('b.sh'), 'echo b1\necho mine\n'); // the user's edit
    ship({ 'a.sh': 'echo a2\n', 'b.sh': 'echo b2\n', 'c.sh': 'echo c1\n' }); // the new app

    const r = await syncScriptsFolder(shipped, data);
    expect(r.updated).toEqual(['a.sh']);
    expect(r.kept).toEqual(['b.sh']);
    expect(readFileSync(user('a.sh'), 'utf8')).toBe('echo a2\n');
    expect(readFileSync(user('b.sh'), 'utf8')).toBe('echo b1\necho mine\n');

    const lib = new ScriptLibrary(shipped, join(data, 'scripts'));
    const info = Object.fromEntries((await lib.list()).map((i) => [i.name, i]));
    expect(info['a.sh']).toMatchObject({ modified: false, updateAvailable: false });
    expect(info['b.sh']).toMatchObject({ modified: true, updateAvailable: true });
    expect(info['c.sh']).toMatchObject({ modified: false, updateAvailable: false });
    const d = (await lib.diff('b.sh')).diff;
    expect(d).toContain('-echo b1');
    expect(d).toContain('-echo mine');
    expect(d).toContain('+echo b2');
    // jobs keep running the user's copy until they take the new version
    expect(await lib.read('b.sh')).toBe('echo b1\necho mine\n');

    const after = await lib.reset('b.sh');
    expect(after).toMatchObject({ modified: false, updateAvailable: false });
    expect(await lib.read('b.sh')).toBe('echo b2\n');
    // the next upgrade updates it by itself
    ship({ 'a.sh': 'echo a2\n', 'b.sh': 'echo b3\n', 'c.sh': 'echo c1\n' });
    expect((await syncScriptsFolder(shipped, data)).updated).toEqual(['b.sh']);
    expect(readFileSync(user('b.sh'), 'utf8')).toBe('echo b3\n');
  });

  it('a change the user made without a new shipped version is "modified", with no update offered', async () => {
    ship({ 'a.sh': 'echo a1\n' });
    await syncScriptsFolder(shipped, data);
    writeFileSync(user('a.sh'), 'echo edited\n');
    expect((await syncScriptsFolder(shipped, data)).kept).toEqual([]);
    const [i] = await new ScriptLibrary(shipped, join(data, 'scripts')).list();
    expect(i).toMatchObject({ modified: true, updateAvailable: false });
  });

  it('a folder from before versions were recorded: copies equal to the new version are recorded, others kept and reported', async () => {
    mkdirSync(join(data, 'scripts'), { recursive: true });
    writeFileSync(user('a.sh'), 'echo a2\n'); // happens to equal the new version
    writeFileSync(user('b.sh'), 'echo b-old\n'); // an older shipped version, or an edit: unknown
    ship({ 'a.sh': 'echo a2\n', 'b.sh': 'echo b2\n' });
    const r = await syncScriptsFolder(shipped, data);
    expect(r.kept).toEqual(['b.sh']);
    expect(existsSync(join(data, 'scripts', SHIPPED_DIR, 'a.sh'))).toBe(true);
    expect(readFileSync(user('b.sh'), 'utf8')).toBe('echo b-old\n');
    const info = Object.fromEntries(
      (await new ScriptLibrary(shipped, join(data, 'scripts')).list()).map((i) => [i.name, i]),
    );
    expect(info['b.sh']).toMatchObject({ modified: true, updateAvailable: true });
  });

  it('a deleted copy comes back at the next start', async () => {
    ship({ 'a.sh': 'echo a1\n' });
    await syncScriptsFolder(shipped, data);
    rmSync(user('a.sh'));
    expect((await syncScriptsFolder(shipped, data)).added).toEqual(['a.sh']);
    expect(readFileSync(user('a.sh'), 'utf8')).toBe('echo a1\n');
  });
});
