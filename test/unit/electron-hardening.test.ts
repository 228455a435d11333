// Intent: a packaged app never loads the renderer from ELECTRON_RENDERER_URL (only a development
// run does, and only an http(s) URL), and the packaging config flips the Electron fuses that turn
// the installed binary into something other than this app (run-as-node, inspect, NODE_OPTIONS,
// code from outside the integrity-checked app.asar) and encrypts cookies.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { rendererUrl } from '../../src/main/window';

describe('renderer URL', () => {
  const dev = { ELECTRON_RENDERER_URL: 'http://localhost:5173' };
  it('is ignored in a packaged app', () => {
    expect(rendererUrl(true, dev)).toBeNull();
    expect(rendererUrl(true, { ELECTRON_RENDERER_URL: 'https://evil.example/' })).toBeNull();
  });
  it('is the dev server in development, http(s) only', () => {
    expect(rendererUrl(false, dev)).toBe('http://localhost:5173');
    expect(rendererUrl(false, {})).toBeNull();
    expect(rendererUrl(false, { ELECTRON_RENDERER_URL: 'file:///tmp/evil.html' })).toBeNull();
    expect(rendererUrl(false, { ELECTRON_RENDERER_URL: 'javascript:alert(1)' })).toBeNull();
  });
});

describe('electron-builder fuses', () => {
  it('sets the hardening fuses', () => {
    const config = parse(readFileSync(join(import.meta.dirname, '../../build/electron-builder.yml'), 'utf8'));
    expect(config.electronFuses).toEqual({
      runAsNode: false,
      enableNodeCliInspectArguments: false,
      enableNodeOptionsEnvironmentVariable: false,
      enableCookieEncryption: true,
      onlyLoadAppFromAsar: true,
      enableEmbeddedAsarIntegrityValidation: true,
    });
    // The app code must be in app.asar for onlyLoadAppFromAsar (asar is on unless turned off).
    expect(config.asar).not.toBe(false);
  });
});
