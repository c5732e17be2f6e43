/** Writes docs/ERRORS.md from the catalog: `node --import tsx shared/error-catalog-doc.ts`. */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { renderErrorDoc } from './error-catalog.ts';

export const ERRORS_DOC = fileURLToPath(new URL('../docs/ERRORS.md', import.meta.url));

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  writeFileSync(ERRORS_DOC, renderErrorDoc());
  process.stdout.write(`wrote ${ERRORS_DOC}\n`);
}
