/**
 * `workerSetup` of `tributary edge` with EDGE_PROCESSES > 1: each edge worker process builds its
 * own salt provider (a ClickHouse client or gateway client cannot be handed from the primary to
 * another process), from the same environment the primary parsed. An embedded ClickHouse store
 * belongs to one process: with several edge processes use CLICKHOUSE_URL, the gateway or static salts.
 */
import { parseCoreConfig } from '../config/core-config.ts';
import { createLogger } from '../log.ts';
import { parseEdgeConfig } from '../../edge/config.ts';
import type { NodeEdgeWorkerSetup } from '../../edge/node/server.ts';
import { edgeSalts } from './commands.ts';
import { SETTINGS, readEnum } from '../../shared/config/index.ts';

export const nodeEdgeWorker: NodeEdgeWorkerSetup = async ({ sourceId }) => {
  const core = parseCoreConfig(process.env);
  if (!core.ok) throw new Error(core.errors.join('; '));
  const edge = parseEdgeConfig(process.env, { pseudonymSaltRequired: core.config.saltSource === 'static' });
  if (!edge.ok) throw new Error(edge.errors.join('; '));
  if (core.config.saltSource === 'clickhouse' && core.config.clickhouse.kind === 'embedded') {
    throw new Error('EDGE_PROCESSES > 1 with SALT_SOURCE=clickhouse needs a ClickHouse server (CLICKHOUSE_URL): an embedded store belongs to one process');
  }
  const salts = await edgeSalts(core.config, edge.config, createLogger('tributary', readEnum(process.env, SETTINGS.LOG_LEVEL, [])).child({ source_id: sourceId }));
  return { ...(salts.provider ? { saltProvider: salts.provider } : {}), afterClose: () => salts.close() };
};
