import { runAdminCli } from '../../src/cli/admin';

export interface CliRun {
  readonly code: number;
  readonly lines: string[];
  /** The lines that are JSON objects, parsed. */
  readonly json: Array<Record<string, unknown>>;
}

/** One invocation of the admin CLI in this process, with `env` as its environment: exit code and output. */
export async function runCli(env: Record<string, string>, argv: string[]): Promise<CliRun> {
  const lines: string[] = [];
  const code = await runAdminCli(argv, (l) => lines.push(...l.split('\n')), env);
  return { code, lines, json: lines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>) };
}
