// Settings (SSH timeouts, known_hosts fallback, ssh config path) and the keychain status.
import type { KeychainStatus, ScriptInfo, Settings, ToolArchive } from '@shared/domain';
import { api } from '../api';

export type SettingsPatch = Partial<Settings>;

export class SettingsController {
  settings = $state.raw<Settings | null>(null);
  keychain = $state.raw<KeychainStatus | null>(null);
  loadError = $state<string | null>(null);
  /** Remote scripts in the user-editable scripts folder (loaded by the settings view). */
  scripts = $state.raw<ScriptInfo[]>([]);
  /** etcd release archives in the desktop cache. */
  tools = $state.raw<ToolArchive[]>([]);

  async load(): Promise<void> {
    try {
      const [settings, keychain] = await Promise.all([
        api.invoke('settings.get', {}),
        api.invoke('keychain.status', {}),
      ]);
      this.settings = settings;
      this.keychain = keychain;
      this.loadError = null;
    } catch (e) {
      this.loadError = (e as Error).message;
    }
  }

  async save(patch: SettingsPatch): Promise<Settings> {
    this.settings = await api.invoke('settings.set', patch);
    return this.settings;
  }

  async loadScripts(): Promise<ScriptInfo[]> {
    this.scripts = await api.invoke('scripts.list', {});
    return this.scripts;
  }

  async resetScript(name: string): Promise<ScriptInfo> {
    const info = await api.invoke('scripts.reset', { name });
    this.scripts = this.scripts.map((s) => (s.name === info.name ? info : s));
    return info;
  }

  /** The user's copy → the version this app ships (for "take the new version"). */
  scriptDiff(name: string): Promise<{ name: string; diff: string }> {
    return api.invoke('scripts.diff', { name });
  }

  async loadTools(): Promise<ToolArchive[]> {
    this.tools = await api.invoke('tools.list', {});
    return this.tools;
  }

  async addTool(path: string, sha256?: string): Promise<ToolArchive> {
    const t = await api.invoke('tools.add', sha256 ? { path, sha256 } : { path });
    this.tools = [...this.tools.filter((x) => x.name !== t.name), t];
    return t;
  }
}
