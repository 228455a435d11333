// Settings (SSH timeouts, known_hosts fallback, ssh config path) and the keychain status.
import type { KeychainStatus, Settings } from '@shared/domain';
import { api } from '../api';

export type SettingsPatch = Partial<Settings>;

export class SettingsController {
  settings = $state.raw<Settings | null>(null);
  keychain = $state.raw<KeychainStatus | null>(null);
  loadError = $state<string | null>(null);

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
}
