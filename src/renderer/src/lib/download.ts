// Save something the page holds as a file: a browser download in web mode; in Electron the same
// anchor opens the save dialog (the session's default download handling). No Node, no bridge call.
export function saveBlob(blob: Blob, fileName: string): void {
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = fileName;
  a.rel = 'noopener';
  a.style.display = 'none';
  document.body.append(a);
  a.click();
  a.remove();
  // The download has taken its copy once the click is handled; let the page's memory go.
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
