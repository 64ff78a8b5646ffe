/** The configuration schema and its readers, shared by the edge (Node, Workers, Deno) and the central processes. */
export * from './kinds.ts';
export * from './settings.ts';
export * from './readers.ts';
export * from './checks.ts';
export * from './hosts.ts';
export * from './near-miss.ts';
