// User settings (timeouts, known_hosts, ssh config path) in settings.json, same durability rules
// as the inventory.
import { join } from 'node:path';
import { Settings, type Settings as SettingsT } from '@shared/domain';
import { readJsonFile, writeJsonAtomic } from '../util/jsonfile';
import type { LoadProblem } from '../inventory/store';

export class SettingsStore {
  private current: SettingsT = Settings.parse({});
  private readonly listeners = new Set<(s: SettingsT) => void>();
  loadProblem: LoadProblem | null = null;

  private constructor(readonly file: string) {}

  static async open(dataDir: string): Promise<SettingsStore> {
    const s = new SettingsStore(join(dataDir, 'settings.json'));
    const loaded = await readJsonFile(
      s.file,
      (raw) => Settings.parse(raw),
      () => Settings.parse({}),
    );
    s.current = loaded.value;
    if (loaded.status === 'corrupt') s.loadProblem = { file: s.file, backup: loaded.backup, error: loaded.error };
    return s;
  }

  get(): SettingsT {
    return { ...this.current };
  }

  async update(patch: Partial<SettingsT>): Promise<SettingsT> {
    this.current = Settings.parse({ ...this.current, ...patch });
    await writeJsonAtomic(this.file, this.current);
    for (const l of this.listeners) l(this.get());
    return this.get();
  }

  onChange(l: (s: SettingsT) => void): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }
}
