/** A file-system-friendly folder (and zip) name for a run. */
export function folderName(name: string): string {
  return name.replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^[-.]+|-+$/g, '').slice(0, 60) || 'run';
}
