import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const HEADER = '# Benchmarks\n\nResults of `npm run bench:*` on the machine named in each section. Targets come from the issues; see ARCHITECTURE §6.\n\n';

/** Replaces the `## <title>` section of docs/BENCHMARKS.md (up to the next `## `), keeping the others. */
export function writeBenchmarkSection(title: string, section: string): string {
  const path = fileURLToPath(new URL('../docs/BENCHMARKS.md', import.meta.url));
  let doc: string;
  try {
    doc = readFileSync(path, 'utf8');
  } catch {
    doc = HEADER;
  }
  const start = doc.search(new RegExp(`^## ${title}\\s*$`, 'm'));
  if (start >= 0) {
    const rest = doc.slice(start + 1);
    const next = rest.search(/^## /m);
    doc = doc.slice(0, start) + section + (next >= 0 ? `\n${rest.slice(next)}` : '');
  } else {
    doc = `${doc.trimEnd()}\n\n${section}`;
  }
  writeFileSync(path, doc);
  return path;
}
