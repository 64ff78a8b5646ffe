// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import { dirname, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

// docs/ARCHITECTURE.md §2 dependency rules, enforced here so a wrong import fails `npm run lint`.
const NODE_AND_RUNTIME = ['node:*', 'cloudflare:*', 'fs', 'path', 'os', 'crypto', 'net', 'http', 'child_process', 'kafkajs', '@clickhouse/*', 'chdb', 'chdb/*', 'pino', 'prom-client', '@hono/node-server'];

// Which folder may import which (ADR 0019). A relative import is resolved to its path in the
// repository first, so a rule holds however deep the importing file is. `importers` and `except`
// name the importing files (a prefix ending in `/` is a folder, else one file; no `importers` =
// every file); a target is refused when it is under `forbidden`, or not under `allowOnly`.
const BOUNDARIES = [
  {
    importers: ['core/'], except: ['core/cli/', 'core/pipeline.ts', 'core/services.ts'], forbidden: ['edge/'],
    message: 'core/ imports edge/ only in its composition roots (core/cli/, core/pipeline.ts, core/services.ts): move what both tiers use to shared/ (docs/ARCHITECTURE.md §2, ADR 0019).',
  },
  {
    except: ['tools/', 'core/cli/', 'scripts/', 'bench/', 'test/'], forbidden: ['tools/'],
    message: 'tools/ is development tooling: only core/cli/, scripts/, bench/ and test/ import it (docs/ARCHITECTURE.md §2, ADR 0019).',
  },
  {
    importers: ['edge/'], except: ['edge/node/', 'edge/worker/', 'edge/deno/'], allowOnly: ['edge/', 'shared/', 'schemas/'],
    message: 'edge/ outside its runtime entries imports only edge/, shared/ and schemas/ (docs/ARCHITECTURE.md §2, ADR 0019).',
  },
  {
    importers: ['edge/worker/', 'edge/deno/'], forbidden: ['core/'],
    message: 'the Workers and Deno edges reach the central tier through the gateway, never by import (docs/ARCHITECTURE.md §2).',
  },
  {
    importers: ['edge/node/'], allowOnly: ['edge/', 'shared/', 'schemas/', 'core/kafka/client.ts', 'core/kafka/pipeline-producer.ts', 'core/kafka/partials-router.ts', 'core/config/kafka-security.ts', 'core/background.ts'],
    message: 'edge/node/ uses of the central tier only its Kafka client, producer and router, the Kafka security settings and the health type (ADR 0019).',
  },
  {
    importers: ['shared/'], allowOnly: ['shared/', 'schemas/'],
    message: 'shared/ imports only shared/ and schemas/: both tiers use it (docs/ARCHITECTURE.md §2).',
  },
];

const ROOT = dirname(fileURLToPath(import.meta.url));
const repoPath = (/** @type {string} */ abs) => relative(ROOT, abs).split(sep).join('/');
const within = (/** @type {string} */ path, /** @type {string[]} */ prefixes) => prefixes.some((p) => (p.endsWith('/') ? path.startsWith(p) : path === p));

/** @type {import('eslint').Rule.RuleModule} */
export const importBoundaries = {
  meta: { type: 'problem', schema: [], docs: { description: 'folder dependency rules of docs/ARCHITECTURE.md §2 over resolved import paths' } },
  create(context) {
    const from = repoPath(context.filename);
    const zones = BOUNDARIES.filter((z) => (z.importers === undefined || within(from, z.importers)) && !within(from, z.except ?? []));
    if (zones.length === 0) return {};
    /** @param {any} node */
    const check = (node) => {
      const spec = node.source?.value;
      if (typeof spec !== 'string' || !spec.startsWith('.')) return;
      const target = repoPath(resolve(dirname(context.filename), spec));
      for (const z of zones) {
        const refused = z.allowOnly ? !within(target, z.allowOnly) : within(target, z.forbidden ?? []);
        if (refused) context.report({ node: node.source, message: `${spec} (${target}): ${z.message}` });
      }
    };
    return { ImportDeclaration: check, ExportNamedDeclaration: check, ExportAllDeclaration: check, ImportExpression: check };
  },
};

export default tseslint.config(
  { ignores: ['node_modules/**', 'schemas/generated/**', 'data/**', '.wrangler/**', 'dist/**', 'sdk/browser/dist/**', 'bench/results/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts', '**/*.js', '**/*.mjs'],
    plugins: { tributary: { rules: { 'import-boundaries': importBoundaries } } },
    rules: { 'tributary/import-boundaries': 'error' },
  },
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly', URL: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', setInterval: 'readonly', clearInterval: 'readonly', Buffer: 'readonly', TextEncoder: 'readonly', TextDecoder: 'readonly', crypto: 'readonly', fetch: 'readonly', Response: 'readonly', Request: 'readonly' } },
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
    },
  },
  {
    // shared/ is runtime-neutral code used by the edge (Node, Workers, Deno) and the central tier:
    // it imports only shared/ (and schemas/), no runtime, no dependencies.
    files: ['shared/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [
        { regex: '^(?!\\.{1,2}/(?!\\.\\.)|\\.\\./\\.\\./schemas/)', message: 'shared/ imports only shared/ and schemas/: it runs on Node, Workers and Deno alike (no node:*, no packages).' },
      ] }],
      'no-restricted-globals': ['error',
        { name: 'process', message: 'shared/ is runtime-neutral: take the environment as a parameter.' },
        { name: 'Buffer', message: 'shared/ is runtime-neutral: use strings or Uint8Array.' },
        { name: 'Deno', message: 'shared/ is runtime-neutral: runtime specifics belong in the entries.' },
        { name: 'require', message: 'shared/ is runtime-neutral: use ES imports of shared/ files.' },
      ],
    },
  },
  {
    // shared/algebra is pure and runtime-neutral: it imports nothing but itself. (After the shared/ block: the later block's options win.)
    files: ['shared/algebra/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [
        { regex: '^(?!\\./[^/]+$)', message: 'shared/algebra imports only its own files (docs/ARCHITECTURE.md §2): no runtime, no I/O, no dependencies.' },
      ] }],
      'no-restricted-globals': ['error',
        { name: 'process', message: 'shared/algebra is runtime-neutral: pass configuration in.' },
        { name: 'Buffer', message: 'use Uint8Array in shared/algebra.' },
        { name: 'Date', message: 'shared/algebra has no clock: time is passed in.' },
        { name: 'Deno', message: 'shared/ is runtime-neutral: runtime specifics belong in the entries.' },
        { name: 'require', message: 'shared/ is runtime-neutral: use ES imports of shared/ files.' },
      ],
    },
  },
  {
    // shared/privacy also uses the phone-number metadata of the scrubber (ADR 0001): a pure package that runs in workerd.
    files: ['shared/privacy/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [
        { regex: '^(?!\\.{1,2}/(?!\\.\\.)|\\.\\./\\.\\./schemas/|libphonenumber-js/min$)', message: 'shared/privacy imports only shared/, schemas/ and libphonenumber-js/min: it runs on Node, Workers and Deno alike.' },
      ] }],
    },
  },
  {
    // The edge imports only hono, shared and schemas; runtime entries live in edge/node, edge/worker, edge/deno.
    files: ['edge/**/*.ts'],
    ignores: ['edge/node/**', 'edge/worker/**', 'edge/deno/**'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [
        { group: NODE_AND_RUNTIME, message: 'edge/ uses web-standard APIs only; runtime specifics belong in edge/node, edge/worker or edge/deno (docs/ARCHITECTURE.md §2).' },
        // An allowlist of packages: hono, the UA parser and bot list of the enrichment step (ADR 0001); which folders: BOUNDARIES.
        { regex: '^(?!\\.|hono(/|$)|isbot$|ua-parser-js$)', message: 'edge/ imports only hono, isbot, ua-parser-js, shared/ and schemas/ (ADR 0001): add a package to the allowlist in eslint.config.js and the ADR only with a reason.' },
      ] }],
    },
  },
  {
    // Adapters depend on the domain, never the reverse: the aggregator domain knows nothing of Kafka or ClickHouse.
    files: ['core/aggregator/partition-aggregator.ts', 'core/aggregator/emission.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ group: ['kafkajs', '@clickhouse/*', 'chdb', 'node:*'], message: 'aggregator domain code is pure; adapters live in kafka-runner.ts and core/clickhouse.' }] }],
    },
  },
  {
    // The browser SDK ships to browsers on its own: it imports only its own files, no Node globals.
    files: ['sdk/browser/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [
        { regex: '^(?!\\./[^/]+$)', message: 'sdk/browser imports only its own files: it is bundled for browsers (no node:*, no dependencies).' },
      ] }],
      'no-restricted-globals': ['error',
        { name: 'process', message: 'sdk/browser runs in browsers: there is no process.' },
        { name: 'Buffer', message: 'sdk/browser runs in browsers: use strings or Uint8Array.' },
        { name: 'require', message: 'sdk/browser runs in browsers: use ES imports of its own files.' },
      ],
    },
  },
  {
    // Only configuration parsing reads the environment.
    files: ['core/**/*.ts', 'edge/**/*.ts', 'tools/**/*.ts'],
    ignores: ['core/config/**', 'core/cli/**', 'tools/kafka-local/local-kafka-config.ts'],
    rules: {
      'no-restricted-properties': ['error', { object: 'process', property: 'env', message: 'read configuration in core/config (or edge/config.ts, tools/kafka-local/local-kafka-config.ts) and pass it in.' }],
    },
  },
);
