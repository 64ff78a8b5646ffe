import { Linter } from 'eslint';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
// @ts-expect-error eslint.config.js is plain JavaScript without declarations
import { importBoundaries } from '../../../eslint.config.js';

// The folder rules of docs/ARCHITECTURE.md §2 (ADR 0019), run on one import line as if it were
// written in a file at `at` (a path in this repository).
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const linter = new Linter({ configType: 'flat', cwd: ROOT });
const config = [{ files: ['**/*.ts'], plugins: { tributary: { rules: { 'import-boundaries': importBoundaries } } }, rules: { 'tributary/import-boundaries': 'error' as const } }];

function refusals(at: string, code: string): string[] {
  return linter.verify(code, config, { filename: `${ROOT}${at}` }).map((m) => m.message);
}

describe('folder dependency rules', () => {
  it('refuses edge/ in core/ outside the composition roots, and allows it in them', () => {
    expect(refusals('core/gateway/app.ts', "import { x } from '../../edge/config.ts';")).toEqual([expect.stringContaining('core/ imports edge/ only in its composition roots')]);
    expect(refusals('core/gateway/app.ts', "export { x } from '../../edge/config.ts';")).toHaveLength(1);
    expect(refusals('core/services.ts', "import { x } from '../edge/config.ts';")).toEqual([]);
    expect(refusals('core/pipeline.ts', "import { x } from '../edge/config.ts';")).toEqual([]);
    expect(refusals('core/cli/commands.ts', "import { x } from '../../edge/node/server.ts';")).toEqual([]);
  });

  it('lets only core/cli/, scripts/, bench/ and test/ import tools/', () => {
    expect(refusals('core/metrics.ts', "const m = () => import('../tools/kafka-local/local-broker.ts');")).toEqual([expect.stringContaining('tools/ is development tooling')]);
    expect(refusals('core/clickhouse/client.ts', "import { x } from '../../tools/kafka-local/file-lock.ts';")).toHaveLength(1);
    for (const at of ['core/cli/kafka-command.ts', 'scripts/measure-restart.ts', 'bench/aggregator/run.ts', 'test/integration/setup/global-kafka.ts']) {
      const up = '../'.repeat(at.split('/').length - 1);
      expect(refusals(at, `import { x } from '${up}tools/kafka-local/local-broker.ts';`), at).toEqual([]);
    }
  });

  it('keeps the edge outside its runtime entries on edge/, shared/ and schemas/', () => {
    expect(refusals('edge/flusher.ts', "import { x } from '../core/log.ts';")).toEqual([expect.stringContaining('edge/ outside its runtime entries')]);
    expect(refusals('edge/pipeline/dedup.ts', "import type { X } from '../../core/kafka/client.ts';")).toHaveLength(1);
    expect(refusals('edge/pipeline/dedup.ts', "import { x } from '../../shared/bounded-cache.ts'; import { y } from '../../schemas/validators.ts'; import { z } from '../ports.ts';")).toEqual([]);
  });

  it('lets edge/node/ use the Kafka producer and router, and the Workers and Deno entries no core/ at all', () => {
    expect(refusals('edge/node/server.ts', "import { x } from '../../core/kafka/pipeline-producer.ts'; import { y } from '../../core/kafka/partials-router.ts';")).toEqual([]);
    expect(refusals('edge/node/server.ts', "import { x } from '../../core/clickhouse/client.ts';")).toEqual([expect.stringContaining('edge/node/ uses of the central tier only')]);
    expect(refusals('edge/worker/index.ts', "import { x } from '../../core/kafka/client.ts';")).toEqual([expect.stringContaining('Workers and Deno edges')]);
    expect(refusals('edge/deno/main.ts', "import { x } from '../../core/gateway/app.ts';")).toHaveLength(1);
  });

  it('keeps shared/ on shared/ and schemas/, at any depth', () => {
    // A specifier pattern cannot tell `../edge/` from `../config/` at the top of shared/; the resolved path can.
    expect(refusals('shared/errors.ts', "import { x } from '../edge/config.ts';")).toEqual([expect.stringContaining('shared/ imports only shared/ and schemas/')]);
    expect(refusals('shared/privacy/redact.ts', "import { x } from '../../core/log.ts';")).toHaveLength(1);
    expect(refusals('shared/privacy/redact.ts', "import { x } from '../config/index.ts'; import { y } from '../../schemas/rejected-record.ts';")).toEqual([]);
  });
});
