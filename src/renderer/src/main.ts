// Renderer entry: build the controllers once, then mount the Svelte 5 root component.
import { mount } from 'svelte';
import '@xterm/xterm/css/xterm.css';
import './styles/app.css';
import App from './App.svelte';
import { createRoot } from './lib/controllers/root.svelte';

const target = document.getElementById('app');
if (!target) throw new Error('#app element missing');

const root = createRoot();
const app = mount(App, { target, props: { root } });
void root.start();

export default app;
