// Writes the JSON Schema files of the public contracts (npm run schemas). A test keeps them in sync.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { ClickToDialJobSchema } from '../calls/click-to-dial-job';

export const SCHEMA_FILES = { 'click-to-dial-job.v1.json': ClickToDialJobSchema } as const;

export function schemaText(schema: object): string {
  return `${JSON.stringify({ $schema: 'http://json-schema.org/draft-07/schema#', ...schema }, null, 2)}\n`;
}

if (require.main === module) {
  for (const [file, schema] of Object.entries(SCHEMA_FILES)) {
    writeFileSync(path.resolve(__dirname, '../../schemas', file), schemaText(schema));
    process.stdout.write(`schemas/${file}\n`);
  }
}
